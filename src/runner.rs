//! Random differential runs: generate sequences with [`crate::gen`], run
//! them through the checker on a set of backends, and on a failure let
//! proptest shrink the sequence to a minimal one. Used by `uffd-check check`
//! and by the tests that show the harness catches the 2023 bugs.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use rand::{Rng, SeedableRng};
use uffd_vocab::{Backend, Op, Outcome, Page, Unsupported};

use crate::check::{run_ops, Failure, Stats};
use crate::gen;

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

/// Set (by the command line's SIGINT handler) to stop a run: the sequence
/// running ends, nothing more is generated or shrunk, and the run reports
/// what it has, a failure seen included.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

/// What a run did.
#[derive(Debug)]
pub struct RunReport {
    /// The run was stopped by [`INTERRUPTED`].
    pub interrupted: bool,
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

/// The last shrinking pass, after proptest's: a local search to a fixpoint.
/// Proptest deletes ops only before it simplifies them, and simplifies each
/// op only in its own ways, so an op that became deletable later, or a
/// number that could go lower once another op changed, stays. This tries,
/// again and again until nothing applies: deleting each op, then each
/// simplification of each op ([`simpler`]: shorter range, moved left, lower
/// numbers, fewer mode or prot bits, a simpler kind), keeping a change when
/// the sequence still fails the same invariant. Every change makes the
/// sequence strictly smaller (fewer ops, or a smaller op), so it ends.
/// Returns the ops and how many sequences were tried.
pub fn minimize(
    backends: &mut [&mut dyn Backend],
    pages: Page,
    mut ops: Vec<Op>,
) -> (Vec<Op>, u64) {
    let Err(first) = run_ops(backends, pages, &ops) else {
        return (ops, 1);
    };
    let mut tries = 1;
    let mut still_fails = |candidate: &[Op], tries: &mut u64| {
        if candidate.iter().any(|op| op.validate(pages).is_err()) {
            return false;
        }
        *tries += 1;
        matches!(run_ops(backends, pages, candidate), Err(f) if f.invariant == first.invariant)
    };
    'again: loop {
        if interrupted() {
            return (ops, tries);
        }
        for i in 0..ops.len() {
            if ops.len() > 1 {
                let mut candidate = ops.clone();
                candidate.remove(i);
                if still_fails(&candidate, &mut tries) {
                    ops = candidate;
                    continue 'again;
                }
            }
        }
        for i in 0..ops.len() {
            for smaller in simpler(ops[i]) {
                let mut candidate = ops.clone();
                candidate[i] = smaller;
                if still_fails(&candidate, &mut tries) {
                    ops = candidate;
                    continue 'again;
                }
            }
        }
        // The whole sequence one page to the left (smaller numbers, and
        // fewer pages for the explore pass below).
        if let Some(shifted) = shift_left(&ops) {
            if still_fails(&shifted, &mut tries) {
                ops = shifted;
                continue 'again;
            }
        }
        // Two moves at once, where neither alone keeps the failure: delete
        // one op and delete or simplify another (`map; protect` becomes one
        // `map`, `register; unregister` one `register`). Quadratic, so only
        // for short sequences, which is what is left by now.
        if ops.len() <= 12 {
            for i in 0..ops.len() {
                for j in (0..ops.len()).filter(|&j| j != i) {
                    let mut changes: Vec<Option<Op>> = vec![None];
                    changes.extend(simpler(ops[j]).into_iter().map(Some));
                    for change in changes {
                        let mut candidate = ops.clone();
                        match change {
                            Some(op) => candidate[j] = op,
                            None if j > i => continue,
                            None => {
                                candidate.remove(j);
                            }
                        }
                        let at = if change.is_none() && j < i { i - 1 } else { i };
                        candidate.remove(at);
                        if !candidate.is_empty() && still_fails(&candidate, &mut tries) {
                            ops = candidate;
                            continue 'again;
                        }
                    }
                }
            }
        }
        return (ops, tries);
    }
}

/// Every op one page to the left (file offsets stay), if none is at page 0.
fn shift_left(ops: &[Op]) -> Option<Vec<Op>> {
    ops.iter()
        .map(|op| match op.range() {
            Some((start, len)) => Some(op.with_range(start.checked_sub(1)?, len)),
            None => Some(*op),
        })
        .collect()
}

/// The local search can stop in a local minimum that needs several moves
/// at once to leave (ops reordered, two maps made one). When every backend
/// can fork (no live kernel) and the case is short (3 to 5 ops), ask
/// `explore` (breadth first: its failures are shortest) for a shorter
/// sequence failing the same invariant on the pages the case uses (at most
/// 4; at most 3 ops on 4 pages), and take it if it fails the same way on
/// the run's arena.
fn shorter_by_explore(backends: &mut [&mut dyn Backend], pages: Page, ops: Vec<Op>) -> Vec<Op> {
    let Err(first) = run_ops(backends, pages, &ops) else {
        return ops;
    };
    let touched = ops
        .iter()
        .filter_map(|op| op.range().map(|(s, l)| s + l.max(1)))
        .max()
        .unwrap_or(1);
    let forkable = backends.iter().all(|b| b.snapshot().is_some());
    if ops.len() < 3 || ops.len() > 5 || !forkable {
        return ops;
    }
    // A case on more than 4 pages may have a shorter one on 4; explore
    // stays within a few seconds: at most 3 ops on 4 pages.
    let explore_pages = touched.min(4);
    let depth = if explore_pages >= 4 {
        (ops.len() - 1).min(3)
    } else {
        ops.len() - 1
    };
    let config = crate::explore::ExploreConfig {
        pages: explore_pages,
        depth,
        max_states: 2_000_000,
    };
    let r = crate::explore::explore(config, backends, |_, _, _| {});
    match r.failure {
        Some(f) if f.invariant == first.invariant && f.trace.steps.len() < ops.len() => {
            let shorter = f.trace.ops();
            // It must fail the same way on the run's own arena too.
            match run_ops(backends, pages, &shorter) {
                Err(g) if g.invariant == first.invariant => shorter,
                _ => ops,
            }
        }
        _ => ops,
    }
}

/// The one-step simplifications of an op, each strictly smaller: a range
/// one page shorter or one page to the left, a lower context, page or file
/// offset, a mode or prot with one bit fewer, a simpler map kind (anon
/// before anon-noreserve before shmem before the file kinds; file 0
/// before the others), or a simpler op (`protect` as a `map` of anonymous
/// memory with that prot, `unregister` as a `register` of MISSING).
pub fn simpler(op: Op) -> Vec<Op> {
    use uffd_vocab::{Kind, Mode, Prot};
    let mut out = Vec::new();
    // Any op with a range: one page shorter at either end, or one page to
    // the left (a `fault` only moves left).
    match op.range() {
        Some((page, _)) if matches!(op, Op::Fault { .. }) && page > 0 => {
            out.push(op.with_range(page - 1, 1));
        }
        Some(_) if matches!(op, Op::Fault { .. }) => {}
        Some((start, len)) => {
            if len > 1 {
                out.push(op.with_range(start, len - 1));
                out.push(op.with_range(start + 1, len - 1));
            }
            if start > 0 {
                out.push(op.with_range(start - 1, len));
            }
        }
        None => {}
    }
    let fewer_prot = |p: Prot| {
        [Prot::READ, Prot::WRITE, Prot::EXEC]
            .into_iter()
            .filter(move |b| p.bits() & b != 0)
            .map(move |b| Prot::from_bits(p.bits() & !b))
    };
    let fewer_mode = |m: Mode| {
        (0..64)
            .map(|i| 1u64 << i)
            .filter(move |b| m.0 & b != 0 && m.0 != *b)
            .map(move |b| Mode(m.0 & !b))
    };
    let lower = |x: u8| x.checked_sub(1);
    // What only some ops have: fewer bits, lower numbers, simpler kinds
    // and simpler ops. An op not named here shrinks by its range alone.
    match op {
        Op::Map {
            start,
            len,
            prot,
            kind,
        } => {
            for prot in fewer_prot(prot) {
                out.push(Op::Map {
                    start,
                    len,
                    prot,
                    kind,
                });
            }
            let rank = |k: Kind| match k {
                Kind::Anon => 0,
                Kind::AnonNoreserve => 1,
                Kind::Shmem => 2,
                Kind::File { .. } => 3,
                Kind::SharedFile { .. } => 4,
                Kind::SharedRoFile { .. } => 5,
            };
            let mut kinds = vec![Kind::Anon, Kind::AnonNoreserve, Kind::Shmem];
            if let Some((file, pgoff)) = kind.file() {
                kinds.push(Kind::File { file, pgoff });
                kinds.push(Kind::SharedFile { file, pgoff });
                let with = |file: u8, pgoff: Page| match kind {
                    Kind::File { .. } => Kind::File { file, pgoff },
                    Kind::SharedFile { .. } => Kind::SharedFile { file, pgoff },
                    _ => Kind::SharedRoFile { file, pgoff },
                };
                if let Some(f) = lower(file) {
                    out.push(Op::Map {
                        start,
                        len,
                        prot,
                        kind: with(f, pgoff),
                    });
                }
                if pgoff > 0 {
                    out.push(Op::Map {
                        start,
                        len,
                        prot,
                        kind: with(file, pgoff - 1),
                    });
                    out.push(Op::Map {
                        start,
                        len,
                        prot,
                        kind: with(file, 0),
                    });
                }
            }
            for k in kinds.into_iter().filter(|k| rank(*k) < rank(kind)) {
                out.push(Op::Map {
                    start,
                    len,
                    prot,
                    kind: k,
                });
            }
        }
        Op::Protect { start, len, prot } => {
            if len > 0 {
                out.push(Op::Map {
                    start,
                    len,
                    prot,
                    kind: Kind::Anon,
                });
            }
            for prot in fewer_prot(prot) {
                out.push(Op::Protect { start, len, prot });
            }
        }
        Op::Register {
            ctx,
            start,
            len,
            mode,
        } => {
            for mode in fewer_mode(mode) {
                out.push(Op::Register {
                    ctx,
                    start,
                    len,
                    mode,
                });
            }
            if let Some(ctx) = lower(ctx) {
                out.push(Op::Register {
                    ctx,
                    start,
                    len,
                    mode,
                });
            }
        }
        Op::Unregister { ctx, start, len } => {
            out.push(Op::Register {
                ctx,
                start,
                len,
                mode: Mode::MISSING,
            });
            if let Some(ctx) = lower(ctx) {
                out.push(Op::Unregister { ctx, start, len });
            }
        }
        Op::Close { ctx } => {
            if let Some(ctx) = lower(ctx) {
                out.push(Op::Close { ctx });
            }
        }
        Op::Mlock {
            start,
            len,
            onfault: true,
        } => out.push(Op::Mlock {
            start,
            len,
            onfault: false,
        }),
        _ => {}
    }
    out
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
