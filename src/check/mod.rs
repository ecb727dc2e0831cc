//! The checker: runs one op sequence on several backends in lock step and,
//! after every step, runs every invariant of [`INVARIANTS`] over that step.
//!
//! [`step_checked`] is the one stepping loop (a sequence's [`run_trace`],
//! `explore`'s transitions and the shrinker's tries all go through it):
//! it runs the op on every backend still in, leaves out and counts one
//! that answers [`uffd_vocab::Unsupported`], and checks the invariants
//! over the step's [`StepView`]. The first invariant that fails stops the
//! run with a [`Failure`], which prints the sequence as a trace ready to
//! paste, the failing step, every layout drawn, and a diff.
//!
//! - [`invariants`]: the invariants and [`check_view`];
//! - [`diff`]: the plain line diff of layouts;
//! - [`stats`] and [`goals`]: what a run counted and the coverage goals;
//! - [`failure`]: a failure, its text and JSON;
//! - [`view`]: what an invariant sees of a step.

pub mod diff;
pub mod failure;
pub mod goals;
pub mod invariants;
pub mod stats;
pub mod view;

pub use uffd_vocab::Outcome;
use uffd_vocab::{Backend, Layout, Op, Page};

pub use self::diff::{layout_diff, line_diff};
pub use self::failure::{failure_json, step_json, Failure};
pub use self::goals::{Goal, Reach, GOALS};
pub use self::invariants::{check_view, Invariant, INVARIANTS};
pub use self::stats::Stats;
pub use self::view::{Before, StepAt, StepView};
use crate::trace::Trace;

/// What one step in lock step gave.
pub enum Stepped {
    /// No backend is left that can run the op: the rest is unchecked.
    NoneLeft,
    /// Every invariant held: the outcomes of the backends still in, in
    /// order.
    Passed(Vec<Outcome>),
    /// An invariant failed over these outcomes.
    Failed {
        invariant: &'static str,
        message: String,
        outcomes: Vec<Outcome>,
    },
}

/// The one stepping loop: runs `at.op` on every backend still in
/// (`active`), in order (`step_all`), checks every invariant over the
/// step's view, and, when they all hold, calls `each` with the view and
/// counts the step in `stats`.
pub fn step_checked(
    backends: &mut [&mut dyn Backend],
    active: &mut [bool],
    at: StepAt,
    stats: &mut Stats,
    each: impl FnMut(&StepView),
) -> Stepped {
    let outcomes = Vec::with_capacity(backends.len());
    step_checked_in(outcomes, backends, active, at, stats, each)
}

/// [`step_checked`], with the outcomes put in `outcomes` (empty: a run
/// hands the vector of its last step back, to step without allocating).
pub(crate) fn step_checked_in(
    mut outcomes: Vec<Outcome>,
    backends: &mut [&mut dyn Backend],
    active: &mut [bool],
    at: StepAt,
    stats: &mut Stats,
    mut each: impl FnMut(&StepView),
) -> Stepped {
    step_all(&mut outcomes, backends, active, at.op, stats);
    if outcomes.is_empty() {
        return Stepped::NoneLeft;
    }
    // The outcomes are those of the backends still active.
    let before = at.before.map(|layouts| Before {
        layouts,
        active: &*active,
    });
    let view = StepView {
        index: at.index,
        op: at.op,
        pages: at.pages,
        outcomes: &outcomes,
        expect: at.expect,
        before,
    };
    if let Err((invariant, message)) = check_view(&view) {
        return Stepped::Failed {
            invariant,
            message,
            outcomes,
        };
    }
    each(&view);
    stats.count(at.op, &outcomes);
    Stepped::Passed(outcomes)
}

/// Runs `op` on every active backend, in order, pushing their outcomes
/// onto `outcomes`. A backend that answers `Unsupported` becomes inactive
/// (and is counted in `stats`).
fn step_all(
    outcomes: &mut Vec<Outcome>,
    backends: &mut [&mut dyn Backend],
    active: &mut [bool],
    op: &Op,
    stats: &mut Stats,
) {
    for (b, on) in backends.iter_mut().zip(active.iter_mut()) {
        if !*on {
            continue;
        }
        match b.step(op) {
            Ok(o) => outcomes.push(o),
            Err(uffd_vocab::Unsupported) => {
                *on = false;
                *stats
                    .unsupported
                    .entry(format!("{}: {}", b.name(), op.name()))
                    .or_default() += 1;
            }
        }
    }
}

/// Hands each outcome of a step back to the backend that answered it
/// ([`Backend::recycle`]: the outcomes are those of the `active` backends,
/// in order), and empties `outcomes`.
#[inline]
pub(crate) fn hand_back(
    backends: &mut [&mut dyn Backend],
    active: &[bool],
    outcomes: &mut Vec<Outcome>,
) {
    let on = backends.iter_mut().zip(active).filter(|(_, &on)| on);
    for ((b, _), o) in on.zip(outcomes.iter_mut()) {
        b.recycle(o);
    }
    outcomes.clear();
}

/// Runs `trace` on `backends` (reset first), checking every invariant after
/// every step. The first backend is the one the others are compared to.
pub fn run_trace(backends: &mut [&mut dyn Backend], trace: &Trace) -> Result<Stats, Failure> {
    run_trace_with(backends, trace, |_| {})
}

/// [`run_trace`], calling `each` with every step's view after it passed.
///
/// A backend that answers [`uffd_vocab::Unsupported`] is left out from that
/// step to the end of the sequence and counted in [`Stats::unsupported`];
/// the others go on.
pub fn run_trace_with(
    backends: &mut [&mut dyn Backend],
    trace: &Trace,
    each: impl FnMut(&StepView),
) -> Result<Stats, Failure> {
    let mut stats = Stats::default();
    let ops = trace.ops();
    run_steps(backends, trace.pages, &ops, Some(trace), &mut stats, each)?;
    Ok(stats)
}

/// [`run_trace`] for a plain op sequence.
pub fn run_ops(
    backends: &mut [&mut dyn Backend],
    pages: Page,
    ops: &[Op],
) -> Result<Stats, Failure> {
    let mut stats = Stats::default();
    run_ops_counted(backends, pages, ops, &mut stats)?;
    Ok(stats)
}

/// [`run_ops`], counting into `stats` as the steps pass: on a failure the
/// steps before it are counted, but not the sequence.
pub fn run_ops_counted(
    backends: &mut [&mut dyn Backend],
    pages: Page,
    ops: &[Op],
    stats: &mut Stats,
) -> Result<(), Failure> {
    run_steps(backends, pages, ops, None, stats, |_| {})
}

/// The loop of [`run_trace_with`] and [`run_ops_counted`]: `ops` are the
/// trace's ops when there is a trace (which may say what each step gives).
fn run_steps(
    backends: &mut [&mut dyn Backend],
    pages: Page,
    ops: &[Op],
    trace: Option<&Trace>,
    stats: &mut Stats,
    mut each: impl FnMut(&StepView),
) -> Result<(), Failure> {
    assert!(!backends.is_empty(), "run_trace needs a backend");
    for b in backends.iter_mut() {
        b.reset();
        b.plan(ops);
    }
    let mut active = vec![true; backends.len()];
    // Each backend's layout before the step (the arena starts empty).
    let mut last = vec![Layout::default(); backends.len()];
    // The outcomes' vector, handed from step to step.
    let mut spare = Vec::with_capacity(backends.len());
    for (index, op) in ops.iter().enumerate() {
        let at = StepAt {
            index,
            op,
            pages,
            expect: trace.map(|t| &t.steps[index]),
            before: Some(&last),
        };
        match step_checked_in(spare, backends, &mut active, at, stats, &mut each) {
            Stepped::Passed(mut outcomes) => {
                // Each layout becomes the backend's last, and the outcome
                // goes back to the backend with the layout it replaces
                // (a fork's layout is the child's: the parent's stays).
                if !matches!(op, Op::Fork) {
                    let on = (0..backends.len()).filter(|&i| active[i]);
                    for (i, o) in on.zip(outcomes.iter_mut()) {
                        std::mem::swap(&mut last[i], &mut o.layout);
                    }
                }
                hand_back(backends, &active, &mut outcomes);
                spare = outcomes;
            }
            // Nobody can run this op: the rest of the sequence is unchecked.
            Stepped::NoneLeft => break,
            Stepped::Failed {
                invariant,
                message,
                outcomes,
            } => {
                let trace = match trace {
                    Some(t) => Trace {
                        kind: Default::default(),
                        pages,
                        steps: t.steps[..=index].to_vec(),
                    },
                    None => Trace::from_ops(pages, &ops[..=index]),
                };
                return Err(Failure {
                    invariant,
                    message,
                    step: index,
                    trace,
                    outcomes,
                });
            }
        }
    }
    stats.sequences += 1;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The page model, but it does not know `close` yet.
    struct NoClose(uffd_model::PageModel);

    impl Backend for NoClose {
        fn name(&self) -> &'static str {
            "no-close"
        }
        fn pages(&self) -> Page {
            self.0.pages()
        }
        fn step(&mut self, op: &Op) -> Result<Outcome, uffd_vocab::Unsupported> {
            if matches!(op, Op::Close { .. }) {
                return Err(uffd_vocab::Unsupported);
            }
            self.0.step(op).map(|o| Outcome {
                backend: "no-close",
                ..o
            })
        }
        fn reset(&mut self) {
            self.0.reset()
        }
    }

    #[test]
    fn an_unsupported_op_leaves_that_backend_out_for_the_rest_and_is_counted() {
        let ops: Vec<Op> = [
            "map 0 8 rw- anon",
            "register 0 0 4 wp",
            "close 0",
            "unmap 0 2",
        ]
        .iter()
        .map(|l| l.parse().unwrap())
        .collect();
        let mut model = uffd_model::PageModel::new(8);
        let mut nc = NoClose(uffd_model::PageModel::new(8));
        let mut imp = uffd_impl::IntervalImpl::new(8);
        let mut seen = Vec::new();
        let stats = run_trace_with(
            &mut [&mut nc, &mut model, &mut imp],
            &Trace::from_ops(8, &ops),
            |v| seen.push(v.outcomes.iter().map(|o| o.backend).collect::<Vec<_>>()),
        )
        .unwrap();
        assert_eq!(stats.steps, 4, "the others went on");
        assert_eq!(stats.unsupported.get("no-close: close"), Some(&1));
        assert_eq!(seen[1], ["no-close", "model", "impl"]);
        assert_eq!(seen[2], ["model", "impl"]);
        assert_eq!(
            seen[3],
            ["model", "impl"],
            "left out for the rest of the sequence"
        );
        // A disagreement among the others is still caught after it.
        let mut bad = uffd_impl::IntervalImpl::with_bugs(
            8,
            uffd_impl::Bugs::of(&[uffd_impl::Switch::UnadjustedPgoff]),
        );
        let mut nc = NoClose(uffd_model::PageModel::new(8));
        let mut model = uffd_model::PageModel::new(8);
        let ops: Vec<Op> = [
            "close 0",
            "map 0 3 rw- anon",
            "register 0 0 2 missing",
            "unregister 0 1 1",
        ]
        .iter()
        .map(|l| l.parse().unwrap())
        .collect();
        let f = run_ops(&mut [&mut nc, &mut model, &mut bad], 8, &ops).unwrap_err();
        assert_eq!(f.invariant, "same-layout", "{f}");
    }
}
