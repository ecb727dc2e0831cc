//! Random differential runs: generate sequences with [`crate::gen`], run
//! them through the checker on a set of backends, and on a failure let
//! proptest shrink the sequence, then [`crate::shrink`] finish the job.
//! Used by `uffd-check check`, by the fuzz targets, and by the tests that
//! show the harness catches the historic bugs (`uffd_impl::HISTORIC_BUGS`).

use std::cell::RefCell;
use std::time::{Duration, Instant};

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use rand::{Rng, SeedableRng};
use uffd_vocab::{Backend, Op, Outcome, Page, Unsupported};

use crate::check::{run_ops, Failure, Stats};
use crate::gen;
use crate::interrupt::interrupted;
pub use crate::interrupt::INTERRUPTED;
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

/// A deterministic proptest runner for `seed` (rand expands the seed).
pub fn seeded_runner(seed: u64, cases: u32) -> TestRunner {
    let mut bytes = [0u8; 32];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut bytes);
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 100_000,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

/// Runs `config.cases` random sequences on `backends` (the first is the
/// reference); `progress` is called after each passing sequence with the
/// stats so far.
pub fn run(
    config: &RunConfig,
    backends: &mut [&mut dyn Backend],
    progress: impl FnMut(&Stats),
) -> RunReport {
    let progress = RefCell::new(progress);
    let backends = RefCell::new(backends);
    let stats = RefCell::new(Stats::default());
    let elapsed = RefCell::new(Duration::ZERO);
    let failing = RefCell::new(false);
    let shrink_steps = RefCell::new(0u64);
    // The failure of the last failing sequence: proptest accepts every
    // failing simplification, so at the end this is the minimal one's.
    let last_failure: RefCell<Option<Failure>> = RefCell::new(None);
    let mut runner = seeded_runner(config.seed, config.cases);
    let strategy = gen::ops(config.pages, config.ops);
    let outcome = runner.run(&strategy, |ops| {
        if interrupted() {
            // Ends the run at once (proptest then "shrinks" through this
            // arm in no time); the real failure, if any, is kept below.
            return Err(TestCaseError::fail("interrupted"));
        }
        let t = Instant::now();
        let mut b = backends.borrow_mut();
        match run_ops(&mut b, config.pages, &ops) {
            Ok(s) => {
                if !*failing.borrow() {
                    *elapsed.borrow_mut() += t.elapsed();
                    stats.borrow_mut().add(&s);
                    (progress.borrow_mut())(&stats.borrow());
                } else {
                    *shrink_steps.borrow_mut() += 1;
                }
                Ok(())
            }
            Err(f) => {
                if *failing.borrow() {
                    *shrink_steps.borrow_mut() += 1;
                } else {
                    // The first failing sequence: its steps before the
                    // failure count too (so a run whose first sequence
                    // fails does not show empty tables).
                    if let Ok(mut s) = run_ops(&mut b, config.pages, &ops[..f.step]) {
                        s.sequences = 0;
                        stats.borrow_mut().add(&s);
                    }
                }
                *failing.borrow_mut() = true;
                let invariant = f.invariant;
                *last_failure.borrow_mut() = Some(f);
                Err(TestCaseError::fail(invariant))
            }
        }
    });
    let failure = match outcome {
        Ok(()) => None,
        Err(_) if interrupted() => last_failure.into_inner().map(|mut f| {
            f.message
                .push_str("\n(interrupted: this case may not be shrunk to the end)");
            f
        }),
        Err(TestError::Fail(_, minimal)) => {
            let mut b = backends.borrow_mut();
            let (ops, tries) = minimize(&mut b, config.pages, minimal);
            *shrink_steps.borrow_mut() += tries;
            let ops = shorter_by_explore(&mut b, config.pages, ops);
            match run_ops(&mut b, config.pages, &ops) {
                Err(f) => Some(f),
                // It does not fail again (a worker that crashed or hung once):
                // report it as it was seen, and say so.
                Ok(_) => last_failure.into_inner().map(|mut f| {
                    f.message.push_str(
                        "\n(this failure did not happen again when the case was run once more: \
                         a flaky backend, such as a worker that crashed or hung)",
                    );
                    f
                }),
            }
        }
        Err(TestError::Abort(why)) => panic!("proptest aborted the run: {why}"),
    };
    RunReport {
        interrupted: interrupted(),
        stats: stats.into_inner(),
        elapsed: elapsed.into_inner(),
        failure,
        shrink_steps: shrink_steps.into_inner(),
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

/// `n` sequences from the generator for `seed`, for benchmarks.
pub fn sample(config: &RunConfig, n: usize) -> Vec<Vec<Op>> {
    use proptest::strategy::ValueTree;
    let mut runner = seeded_runner(config.seed, 1);
    let strategy = gen::ops(config.pages, config.ops);
    (0..n)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect()
}

/// A backend wrapped to measure the time spent in it (each step: the op and
/// its layout),
/// so one run can report each backend's cost side by side.
pub struct Timed<B> {
    pub inner: B,
    pub ops: u64,
    pub time: Duration,
}

impl<B: Backend> Timed<B> {
    pub fn new(inner: B) -> Timed<B> {
        Timed {
            inner,
            ops: 0,
            time: Duration::ZERO,
        }
    }
    fn timed<T>(&mut self, f: impl FnOnce(&mut B) -> T) -> T {
        let t = Instant::now();
        let r = f(&mut self.inner);
        self.time += t.elapsed();
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
        self.timed(|b| b.step(op))
    }
    fn reset(&mut self) {
        self.timed(|b| b.reset())
    }
    fn plan(&mut self, ops: &[Op]) {
        self.timed(|b| b.plan(ops))
    }
    fn costs(&self) -> Option<String> {
        self.inner.costs()
    }
    fn fingerprint(&self) -> Option<u128> {
        self.inner.fingerprint()
    }
    /// The inner backend's copy, untimed.
    fn snapshot(&self) -> Option<Box<dyn Backend>> {
        self.inner.snapshot()
    }
}
