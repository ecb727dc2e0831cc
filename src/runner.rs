//! Random differential runs: generate sequences of [`crate::gen`] (fast, by
//! [`crate::sequences`]), run
//! them through the checker on a set of backends, and on a failure let
//! proptest shrink the sequence, then [`crate::shrink`] finish the job.
//! Used by `uffd-check check`, by the fuzz targets, and by the tests that
//! show the harness catches the historic bugs (`uffd_impl::HISTORIC_BUGS`).

use std::time::{Duration, Instant};

use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use rand::{Rng, SeedableRng};
use uffd_vocab::{Backend, Op, Outcome, Page, Unsupported};

use crate::check::{run_ops, run_ops_counted, Failure, Stats};
use crate::interrupt::interrupted;
pub use crate::interrupt::INTERRUPTED;
use crate::sequences::{Generated, Sequences};
use crate::shrink::shorter_by_explore;
pub use crate::shrink::{minimize, simpler};

/// What to run.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// Same seed, same sequences.
    pub seed: u64,
    /// How many passing sequences to run.
    pub cases: u32,
    /// The longest sequence, in ops.
    pub ops: usize,
    /// The arena size in pages.
    pub pages: Page,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            seed: 0,
            cases: 1000,
            ops: 40,
            pages: 16,
        }
    }
}

/// The largest arena `check` takes (pages), and the longest sequence it
/// makes (ops): past these, memory grows past what a run should take.
pub const MAX_CHECK_PAGES: Page = uffd_vocab::MAX_PAGES;
pub const MAX_CHECK_OPS: usize = 10_000;

impl RunConfig {
    /// `check`'s bounds: an error, naming the flag, for an arena, a
    /// sequence length or a count of sequences out of range.
    pub fn check_bounds(&self) -> Result<(), String> {
        let (pages, ops) = (self.pages, self.ops);
        if pages == 0 || pages > MAX_CHECK_PAGES {
            return Err(format!(
                "--pages {pages}: the arena must be 1 to {MAX_CHECK_PAGES} pages"
            ));
        }
        if ops == 0 || ops > MAX_CHECK_OPS {
            return Err(format!(
                "--ops {ops}: a sequence must be 1 to {MAX_CHECK_OPS} ops"
            ));
        }
        if self.cases == 0 {
            return Err("--cases 0: run at least one sequence".into());
        }
        Ok(())
    }
}

/// What a run did.
#[derive(Debug)]
pub struct RunReport {
    /// The run was stopped by [`INTERRUPTED`].
    pub interrupted: bool,
    /// What the passing sequences did, and the steps of the first failing
    /// one before its failure.
    pub stats: Stats,
    /// Time spent on passing sequences (not on shrinking).
    pub elapsed: Duration,
    /// The shrunk failure, if any sequence failed.
    pub failure: Option<Failure>,
    /// How many sequences were tried while shrinking.
    pub shrink_steps: u64,
}

/// The 32 bytes of the RNG of [`seeded_runner`] for `seed` (rand expands
/// the seed).
pub fn runner_seed(seed: u64) -> [u8; 32] {
    let mut bytes = [0u8; 32];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut bytes);
    bytes
}

/// A deterministic proptest runner for `seed` (rand expands the seed).
pub fn seeded_runner(seed: u64, cases: u32) -> TestRunner {
    let bytes = runner_seed(seed);
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: MAX_SHRINK_ITERS,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

/// Proptest's bound on the sequences tried while it shrinks.
pub const MAX_SHRINK_ITERS: u32 = 100_000;

/// Runs `config.cases` random sequences on `backends` (the first is the
/// reference); `progress` is called after each passing sequence with the
/// stats so far. The sequences are proptest's for the seed
/// ([`crate::sequences`]); the first failing one is shrunk ([`shrink`]).
pub fn run(
    config: &RunConfig,
    backends: &mut [&mut dyn Backend],
    mut progress: impl FnMut(&Stats),
) -> RunReport {
    let mut stats = Stats::default();
    let mut elapsed = Duration::ZERO;
    let sequences = Sequences::new(runner_seed(config.seed), config.pages, config.ops);
    for g in sequences.take(config.cases as usize) {
        if interrupted() {
            break;
        }
        let t = Instant::now();
        match run_ops_counted(backends, config.pages, &g.ops, &mut stats) {
            Ok(()) => {
                elapsed += t.elapsed();
                progress(&stats);
            }
            Err(f) => {
                let (failure, shrink_steps) = shrink(config, backends, &g, f);
                return RunReport {
                    interrupted: interrupted(),
                    stats,
                    elapsed,
                    failure: Some(failure),
                    shrink_steps,
                };
            }
        }
    }
    RunReport {
        interrupted: interrupted(),
        stats,
        elapsed,
        failure: None,
        shrink_steps: 0,
    }
}

/// Shrinks the failing sequence `g` (whose failure is `first`): proptest's
/// own shrinking on its value tree, as its runner does it, then
/// [`minimize`] and [`shorter_by_explore`]. Returns the failure of the
/// shortest case and how many sequences were tried.
pub fn shrink(
    config: &RunConfig,
    backends: &mut [&mut dyn Backend],
    g: &Generated,
    first: Failure,
) -> (Failure, u64) {
    let mut tree = g.tree(config.pages, config.ops);
    let mut last = first;
    let mut steps = 0u64;
    if tree.simplify() {
        loop {
            if steps >= u64::from(MAX_SHRINK_ITERS) {
                while tree.complicate() {}
                break;
            }
            if interrupted() {
                last.message
                    .push_str("\n(interrupted: this case may not be shrunk to the end)");
                return (last, steps);
            }
            steps += 1;
            match run_ops(backends, config.pages, &tree.current()) {
                Ok(_) if !tree.complicate() => break,
                Ok(_) => {}
                Err(f) => {
                    last = f;
                    if !tree.simplify() {
                        break;
                    }
                }
            }
        }
    }
    let (ops, tries) = minimize(backends, config.pages, tree.current());
    steps += tries;
    let ops = shorter_by_explore(backends, config.pages, ops);
    match run_ops(backends, config.pages, &ops) {
        Err(f) => (f, steps),
        // It does not fail again (a worker that crashed or hung once):
        // report it as it was seen, and say so.
        Ok(_) => {
            last.message.push_str(
                "\n(this failure did not happen again when the case was run once more: \
                 a flaky backend, such as a worker that crashed or hung)",
            );
            (last, steps)
        }
    }
}

/// The longest sequence one fuzzer input runs.
pub const FUZZ_MAX_OPS: usize = 64;

/// One fuzzer input (`fuzz/`): an arena of `1 + size % 32` pages, at most
/// [`FUZZ_MAX_OPS`] ops folded into it with [`Op::fit`], run on the model and
/// the implementation (with `bugs` put back) with every invariant checked.
pub fn check_fuzz_input(size: u8, ops: Vec<Op>, bugs: uffd_impl::Bugs) -> Result<(), Failure> {
    let pages: Page = 1 + Page::from(size % 32);
    let ops: Vec<Op> = ops
        .into_iter()
        .take(FUZZ_MAX_OPS)
        .map(|op| op.fit(pages))
        .collect();
    let mut model = uffd_model::PageModel::new(pages);
    let mut imp = uffd_impl::IntervalImpl::with_bugs(pages, bugs);
    run_ops(&mut [&mut model, &mut imp], pages, &ops).map(|_| ())
}

/// The first `n` sequences of a run of `config` (those `check` runs), for
/// benchmarks.
pub fn sample(config: &RunConfig, n: usize) -> Vec<Vec<Op>> {
    Sequences::new(runner_seed(config.seed), config.pages, config.ops)
        .take(n)
        .map(|g| g.ops)
        .collect()
}

/// A backend wrapped to measure the time spent in it (each step: the op and
/// its layout), so one run can report each backend's cost side by side.
///
/// One step in [`TIMED_EVERY`] is timed, and the time of the others
/// estimated from theirs: reading the clock around every step cost a
/// twentieth of a fast run. So are `reset` and the `plan` after it: one
/// sequence's in [`TIMED_EVERY`].
pub struct Timed<B> {
    pub inner: B,
    pub ops: u64,
    /// The time of the steps timed (every [`TIMED_EVERY`]th).
    timed_time: Duration,
    /// How many times the backend was reset (a sequence each).
    resets: u64,
    /// The time of the `reset`s timed (every [`TIMED_EVERY`]th) and of
    /// the `plan` after each.
    rest: Duration,
}

/// The time of `n` calls, from that of the one in [`TIMED_EVERY`] timed.
fn estimate(timed_time: Duration, n: u64) -> Duration {
    match n / TIMED_EVERY {
        0 => Duration::ZERO,
        timed => timed_time.mul_f64(n as f64 / timed as f64),
    }
}

/// [`Timed`] times one step in this many.
pub const TIMED_EVERY: u64 = 8;

impl<B: Backend> Timed<B> {
    pub fn new(inner: B) -> Timed<B> {
        Timed {
            inner,
            ops: 0,
            timed_time: Duration::ZERO,
            resets: 0,
            rest: Duration::ZERO,
        }
    }

    /// The time spent in the backend, estimated from the steps, `reset`s
    /// and `plan`s timed.
    pub fn time(&self) -> Duration {
        estimate(self.timed_time, self.ops) + estimate(self.rest, self.resets)
    }

    /// Is the `reset` and `plan` of this sequence timed?
    fn sequence_timed(&self) -> bool {
        self.resets.is_multiple_of(TIMED_EVERY)
    }

    /// `f` on the inner backend `b`, its time added to `time` when
    /// `sampled`.
    fn timed<T>(sampled: bool, time: &mut Duration, b: &mut B, f: impl FnOnce(&mut B) -> T) -> T {
        if !sampled {
            return f(b);
        }
        let t = Instant::now();
        let r = f(b);
        *time += t.elapsed();
        r
    }
}

impl<B: Backend> Backend for Timed<B> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn pages(&self) -> Page {
        self.inner.pages()
    }
    fn step(&mut self, op: &Op) -> Result<Outcome, Unsupported> {
        self.ops += 1;
        let sampled = self.ops.is_multiple_of(TIMED_EVERY);
        Self::timed(sampled, &mut self.timed_time, &mut self.inner, |b| {
            b.step(op)
        })
    }
    fn reset(&mut self) {
        self.resets += 1;
        let sampled = self.sequence_timed();
        Self::timed(sampled, &mut self.rest, &mut self.inner, |b| b.reset())
    }
    fn plan(&mut self, ops: &[Op]) {
        let sampled = self.sequence_timed();
        Self::timed(sampled, &mut self.rest, &mut self.inner, |b| b.plan(ops))
    }
    fn costs(&self) -> Option<String> {
        self.inner.costs()
    }
    fn fingerprint(&self) -> Option<u128> {
        self.inner.fingerprint()
    }
    /// To the inner backend, untimed: it only keeps the vectors.
    fn recycle(&mut self, outcome: &mut Outcome) {
        self.inner.recycle(outcome)
    }
    /// The inner backend's copy, untimed.
    fn snapshot(&self) -> Option<Box<dyn Backend>> {
        self.inner.snapshot()
    }
}
