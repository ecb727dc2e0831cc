//! The checker: runs one op sequence on several backends in lock step and,
//! after every step, runs every invariant of [`INVARIANTS`] over that step.
//!
//! An invariant is a plain function over a [`StepView`] (the op, and each
//! backend's result, layout and report). Adding one is writing the function
//! and adding one line to [`INVARIANTS`]. The first invariant that fails stops
//! the run with a [`Failure`], which prints the sequence as a trace ready to
//! paste, the first diverging step, every layout drawn, and a diff.

use std::collections::BTreeMap;
use std::fmt;

use uffd_model::{result_name, Backend, Backing, Layout, Mode, Op, OpResult, Page, StepReport};

use crate::draw::draw;
use crate::trace::{Step, Trace};

/// One backend's answer to one step.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub backend: &'static str,
    pub result: OpResult,
    pub layout: Layout,
    pub report: StepReport,
}

/// What an invariant sees: one step on every backend.
pub struct StepView<'a> {
    /// 0-based index of the step.
    pub index: usize,
    pub op: &'a Op,
    pub pages: Page,
    /// In backend order; the first is the reference the others are compared to.
    pub outcomes: &'a [Outcome],
    /// What the trace says this step must give, if it says.
    pub expect: Option<&'a Step>,
}

/// A named check over one step. `Err` says what is wrong.
pub struct Invariant {
    pub name: &'static str,
    pub check: fn(&StepView) -> Result<(), String>,
}

/// Every invariant, run after every step, in this order.
pub const INVARIANTS: &[Invariant] = &[
    Invariant {
        name: "backend-healthy",
        check: backend_healthy,
    },
    Invariant {
        name: "impl-internal",
        check: impl_internal,
    },
    Invariant {
        name: "well-formed",
        check: well_formed,
    },
    Invariant {
        name: "same-result",
        check: same_result,
    },
    Invariant {
        name: "same-layout",
        check: same_layout,
    },
    Invariant {
        name: "minimal-fragmentation",
        check: minimal_fragmentation,
    },
    Invariant {
        name: "minor-only-on-shmem",
        check: minor_only_on_shmem,
    },
    Invariant {
        name: "expected",
        check: expected,
    },
];

/// The violations the backends reported for this step whose name passes
/// `keep`, one line each, or `Ok` when there are none.
fn reported(v: &StepView, keep: impl Fn(&str) -> bool) -> Result<(), String> {
    let bad: Vec<String> = v
        .outcomes
        .iter()
        .flat_map(|o| {
            o.report
                .violations
                .iter()
                .filter(|(name, _)| keep(name))
                .map(move |(name, text)| format!("{} {name}: {text}", o.backend))
        })
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(bad.join("\n"))
    }
}

/// No backend failed as a program (a kernel worker that died or hung, or a
/// layout it could not read).
fn backend_healthy(v: &StepView) -> Result<(), String> {
    reported(v, |name| name != "impl-internal")
}

/// The implementation's own preconditions (the kernel's VM_WARN_ONs) held.
fn impl_internal(v: &StepView) -> Result<(), String> {
    reported(v, |name| name == "impl-internal")
}

/// Sorted, non-overlapping, non-empty, inside the arena, uffd bits iff a ctx,
/// and only known uffd bits.
fn well_formed(v: &StepView) -> Result<(), String> {
    for o in v.outcomes {
        let mut prev_end = 0;
        for vma in o.layout.vmas() {
            let what = if vma.start >= vma.end {
                "is empty"
            } else if vma.start < prev_end {
                "overlaps or is out of order"
            } else if vma.end > v.pages {
                "is outside the arena"
            } else if vma.uffd.is_empty() != vma.ctx.is_none() {
                "has uffd bits without a ctx or a ctx without uffd bits"
            } else if vma.uffd.has_unknown_bits() {
                "has unknown uffd bits"
            } else {
                prev_end = vma.end;
                continue;
            };
            return Err(format!("{}: VMA {vma} {what}", o.backend));
        }
    }
    Ok(())
}

/// Every backend returned what the first one returned.
fn same_result(v: &StepView) -> Result<(), String> {
    let first = &v.outcomes[0];
    for o in &v.outcomes[1..] {
        if o.result != first.result {
            return Err(format!(
                "{} returned {} but {} returned {}",
                first.backend,
                result_name(&first.result),
                o.backend,
                result_name(&o.result)
            ));
        }
    }
    Ok(())
}

/// Every backend has the layout of the first one.
fn same_layout(v: &StepView) -> Result<(), String> {
    let first = &v.outcomes[0];
    for o in &v.outcomes[1..] {
        if o.layout != first.layout {
            return Err(format!(
                "{} and {} have different layouts",
                first.backend, o.backend
            ));
        }
    }
    Ok(())
}

/// No two adjacent VMAs of any backend could be one VMA.
fn minimal_fragmentation(v: &StepView) -> Result<(), String> {
    for o in v.outcomes {
        for w in o.layout.vmas().windows(2) {
            if w[0].mergeable_with(&w[1]) {
                return Err(format!(
                    "{}: {} and {} could be one VMA",
                    o.backend, w[0], w[1]
                ));
            }
        }
    }
    Ok(())
}

/// No VMA registered with MINOR is private anonymous memory
/// (MINOR needs shmem or hugetlb: reference §2).
fn minor_only_on_shmem(v: &StepView) -> Result<(), String> {
    for o in v.outcomes {
        for vma in o.layout.vmas() {
            if vma.uffd.contains(Mode::MINOR) && vma.backing == Backing::Anon {
                return Err(format!("{}: {vma} is anonymous with MINOR", o.backend));
            }
        }
    }
    Ok(())
}

/// The trace's `expect` lines for this step hold on every backend.
fn expected(v: &StepView) -> Result<(), String> {
    let Some(step) = v.expect else {
        return Ok(());
    };
    for o in v.outcomes {
        if let Some(r) = &step.expect_result {
            if *r != o.result {
                return Err(format!(
                    "{} returned {}, the trace expects {}",
                    o.backend,
                    result_name(&o.result),
                    result_name(r)
                ));
            }
        }
        if let Some(d) = &step.expect_draw {
            let got = crate::draw::row(&o.layout, v.pages);
            if !crate::draw::same_boundaries(d, &got) {
                return Err(format!(
                    "{} draws {got} but the trace expects {d} for the op at line {}",
                    o.backend, step.line
                ));
            }
        }
        if let Some(l) = &step.expect_layout {
            if *l != o.layout {
                return Err(format!(
                    "{b}'s layout is not the one the trace expects for the op at line {} \
                     (< expected, > {b}):\n{}",
                    step.line,
                    pretty_assertions::Comparison::new(l, &o.layout),
                    b = o.backend,
                ));
            }
        }
    }
    Ok(())
}

/// Counts of what a run did, for the `check` table.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub sequences: u64,
    pub steps: u64,
    /// Op name -> count.
    pub ops: BTreeMap<&'static str, u64>,
    /// Result name (`ok`, `EINVAL`, …) -> count.
    pub results: BTreeMap<String, u64>,
    /// Merge case 0-8 -> count, from the backends that report them.
    pub merges: [u64; 9],
}

impl Stats {
    /// Counts one step that passed.
    pub fn count(&mut self, op: &Op, outcomes: &[Outcome]) {
        self.steps += 1;
        *self.ops.entry(op.name()).or_default() += 1;
        *self
            .results
            .entry(result_name(&outcomes[0].result))
            .or_default() += 1;
        // Merge cases from the first backend that reports any.
        if let Some(o) = outcomes.iter().find(|o| !o.report.merges.is_empty()) {
            for &c in &o.report.merges {
                self.merges[(c as usize).min(8)] += 1;
            }
        }
    }

    pub fn add(&mut self, other: &Stats) {
        self.sequences += other.sequences;
        self.steps += other.steps;
        for (k, n) in &other.ops {
            *self.ops.entry(k).or_default() += n;
        }
        for (k, n) in &other.results {
            *self.results.entry(k.clone()).or_default() += n;
        }
        for (a, b) in self.merges.iter_mut().zip(other.merges) {
            *a += b;
        }
    }
}

/// A violated invariant, with everything needed to understand and replay it.
#[derive(Clone, Debug)]
pub struct Failure {
    pub invariant: &'static str,
    pub message: String,
    /// 0-based index of the failing step.
    pub step: usize,
    /// The whole sequence up to and including the failing step.
    pub trace: Trace,
    pub outcomes: Vec<Outcome>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = self.trace.steps[self.step].op;
        writeln!(
            f,
            "invariant `{}` failed at step {} of {}: {op}",
            self.invariant,
            self.step + 1,
            self.trace.steps.len()
        )?;
        for l in self.message.lines() {
            writeln!(f, "  {l}")?;
        }
        writeln!(
            f,
            "\ntrace (save it under cases/ and it replays in `cargo test`):"
        )?;
        for l in self.trace.to_text().lines() {
            writeln!(f, "  {l}")?;
        }
        writeln!(f, "\nafter step {}:", self.step + 1)?;
        for o in &self.outcomes {
            writeln!(f, "  {} returned {}:", o.backend, result_name(&o.result))?;
            write!(f, "{}", draw(&o.layout, self.trace.pages, "    "))?;
        }
        let first = &self.outcomes[0];
        for o in &self.outcomes[1..] {
            if o.layout != first.layout {
                writeln!(
                    f,
                    "\nlayout diff (< {}, > {}):\n{}",
                    first.backend,
                    o.backend,
                    pretty_assertions::Comparison::new(&first.layout, &o.layout)
                )?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Failure {}

/// Runs `trace` on `backends` (reset first), checking every invariant after
/// every step. The first backend is the one the others are compared to.
pub fn run_trace(backends: &mut [&mut dyn Backend], trace: &Trace) -> Result<Stats, Failure> {
    run_trace_with(backends, trace, |_| {})
}

/// [`run_trace`], calling `each` with every step's view after it passed.
pub fn run_trace_with(
    backends: &mut [&mut dyn Backend],
    trace: &Trace,
    mut each: impl FnMut(&StepView),
) -> Result<Stats, Failure> {
    assert!(!backends.is_empty(), "run_trace needs a backend");
    let mut stats = Stats {
        sequences: 1,
        ..Stats::default()
    };
    let ops = trace.ops();
    for b in backends.iter_mut() {
        b.reset();
        b.take_report();
        b.plan(&ops);
    }
    for (index, step) in trace.steps.iter().enumerate() {
        let outcomes = match check_step(backends, trace.pages, index, step, &mut each) {
            Ok(outcomes) => outcomes,
            Err((invariant, message, outcomes)) => {
                return Err(Failure {
                    invariant,
                    message,
                    step: index,
                    trace: Trace {
                        pages: trace.pages,
                        steps: trace.steps[..=index].to_vec(),
                    },
                    outcomes,
                })
            }
        };
        stats.count(&step.op, &outcomes);
    }
    Ok(stats)
}

/// One step: runs `step.op` on every backend, then every invariant over the
/// outcomes. On success calls `each` with the view and returns the
/// outcomes; otherwise returns the first failing invariant, what it said,
/// and the outcomes.
#[allow(clippy::type_complexity)]
pub fn check_step(
    backends: &mut [&mut dyn Backend],
    pages: Page,
    index: usize,
    step: &Step,
    mut each: impl FnMut(&StepView),
) -> Result<Vec<Outcome>, (&'static str, String, Vec<Outcome>)> {
    let outcomes: Vec<Outcome> = backends
        .iter_mut()
        .map(|b| {
            let result = b.apply(&step.op);
            let report = b.take_report();
            Outcome {
                backend: b.name(),
                result,
                layout: b.layout(),
                report,
            }
        })
        .collect();
    let view = StepView {
        index,
        op: &step.op,
        pages,
        outcomes: &outcomes,
        expect: Some(step),
    };
    for inv in INVARIANTS {
        if let Err(message) = (inv.check)(&view) {
            return Err((inv.name, message, outcomes));
        }
    }
    each(&view);
    Ok(outcomes)
}

/// [`run_trace`] for a plain op sequence.
pub fn run_ops(
    backends: &mut [&mut dyn Backend],
    pages: Page,
    ops: &[Op],
) -> Result<Stats, Failure> {
    run_trace(backends, &Trace::from_ops(pages, ops))
}
