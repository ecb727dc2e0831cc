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

pub use uffd_vocab::Outcome;
use uffd_vocab::{result_name, Backend, Backing, Layout, Mode, Op, Page};

use crate::draw::draw;
use crate::trace::{Step, Trace};

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
        name: "same-contexts",
        check: same_contexts,
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

/// Every backend has the layout of the first one, on every field both
/// observe (a field one of them does not observe is unknown, not equal).
fn same_layout(v: &StepView) -> Result<(), String> {
    let first = &v.outcomes[0];
    for o in &v.outcomes[1..] {
        if !o.layout.agrees_with(&first.layout) {
            return Err(format!(
                "{} and {} have different layouts",
                first.backend, o.backend
            ));
        }
    }
    Ok(())
}

/// Every backend has the open uffd contexts of the first one.
fn same_contexts(v: &StepView) -> Result<(), String> {
    let first = &v.outcomes[0];
    for o in &v.outcomes[1..] {
        if o.open != first.open {
            return Err(format!(
                "{} has uffd contexts {} open but {} has {}",
                first.backend, first.open, o.backend, o.open
            ));
        }
    }
    Ok(())
}

/// No two adjacent VMAs of any backend could be one VMA. A pair whose merge
/// depends on a field the backend does not observe is not judged there
/// (`same-layout` holds its boundaries to the reference's). Nor is a
/// boundary that a backend reports as kept by a known deviation rule
/// ([`uffd_vocab::StepReport::kept_apart`]: the model's rules, off with
/// `--strict`, where the kernel is known to keep equal VMAs apart).
fn minimal_fragmentation(v: &StepView) -> Result<(), String> {
    let kept: Vec<Page> = v
        .outcomes
        .iter()
        .flat_map(|o| o.report.kept_apart.iter().copied())
        .collect();
    for o in v.outcomes {
        let hidden = o.layout.unobserved();
        for w in o.layout.vmas().windows(2) {
            if w[0].surely_mergeable_with(&w[1], hidden) && !kept.contains(&w[1].start) {
                return Err(format!(
                    "{}: {} and {} could be one VMA",
                    o.backend,
                    w[0].display(hidden),
                    w[1].display(hidden)
                ));
            }
        }
    }
    Ok(())
}

/// No VMA registered with MINOR is private anonymous memory
/// (MINOR needs shmem or hugetlb: docs/kernel-rules.md §2).
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
            if !o.layout.agrees_with(l) {
                return Err(format!(
                    "{b}'s layout is not the one the trace expects for the op at line {} \
                     (< expected, > {b}):\n{}",
                    step.line,
                    layout_diff(l, &o.layout),
                    b = o.backend,
                ));
            }
        }
    }
    Ok(())
}

/// A plain line diff of two layouts: ` ` common, `<` only in `a`, `>` only
/// in `b`; no colour, no header, so it survives a mail client. Compared on
/// what both observe.
pub fn layout_diff(a: &Layout, b: &Layout) -> String {
    let both = a.unobserved().union(b.unobserved());
    line_diff(&a.project(both).lines(), &b.project(both).lines())
}

/// A longest-common-subsequence line diff; past 1,000 lines a side it
/// pairs lines by position (bounded memory).
pub fn line_diff(a: &[String], b: &[String]) -> String {
    let mut out = String::new();
    if a.len() > 1000 || b.len() > 1000 {
        for i in 0..a.len().max(b.len()) {
            match (a.get(i), b.get(i)) {
                (Some(x), Some(y)) if x == y => out.push_str(&format!(" {x}\n")),
                (x, y) => {
                    if let Some(x) = x {
                        out.push_str(&format!("<{x}\n"));
                    }
                    if let Some(y) = y {
                        out.push_str(&format!(">{y}\n"));
                    }
                }
            }
        }
        return out;
    }
    // lcs[i][j]: the LCS length of a[i..] and b[j..].
    let mut lcs = vec![vec![0u16; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push_str(&format!(" {}\n", a[i]));
            i += 1;
            j += 1;
        } else if j == b.len() || (i < a.len() && lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push_str(&format!("<{}\n", a[i]));
            i += 1;
        } else {
            out.push_str(&format!(">{}\n", b[j]));
            j += 1;
        }
    }
    out
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
    /// `backend: op` -> how many sequences that backend left at that op,
    /// answering [`uffd_vocab::Unsupported`].
    pub unsupported: BTreeMap<String, u64>,
    /// Coverage event -> count, from the backends that report them.
    pub events: BTreeMap<&'static str, u64>,
    /// Op name -> how many of its steps took a merge case other than 0.
    pub merges_after: BTreeMap<&'static str, u64>,
    /// Known deviation rule -> how many steps it changed (from the first
    /// backend that reports deviations).
    pub deviations: BTreeMap<&'static str, u64>,
}

/// A coverage goal (stateright's `sometimes`): a situation a good run goes
/// through, reached when any of its ways to reach it occurred.
pub struct Goal {
    pub name: &'static str,
    pub reached_by: &'static [Reach],
}

/// One way to reach a coverage goal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// A coverage event of a step report ([`uffd_vocab::StepReport::events`]).
    Event(&'static str),
    /// A step of this op (by [`Op::name`]) that took a merge case other
    /// than 0.
    MergeAfter(&'static str),
    /// A known deviation rule, by name, that changed a step's outcome.
    Deviation(&'static str),
}

impl Reach {
    /// How often a run reached it.
    pub fn count(&self, s: &Stats) -> u64 {
        let map = match self {
            Reach::Event(_) => &s.events,
            Reach::MergeAfter(_) => &s.merges_after,
            Reach::Deviation(_) => &s.deviations,
        };
        let (Reach::Event(k) | Reach::MergeAfter(k) | Reach::Deviation(k)) = self;
        map.get(k).copied().unwrap_or(0)
    }
}

impl Goal {
    /// How often a run reached it.
    pub fn count(&self, s: &Stats) -> u64 {
        self.reached_by.iter().map(|r| r.count(s)).sum()
    }
}

/// Every coverage goal: `check` prints how often each was reached, and the
/// coverage tests require each of them.
pub const GOALS: &[Goal] = &[
    Goal {
        name: "a fault reuses a neighbour's anon_vma",
        reached_by: &[
            Reach::Event("fault: anon_vma reused from next"),
            Reach::Event("fault: anon_vma reused from prev"),
        ],
    },
    Goal {
        name: "anon_vma reuse refused: another object",
        reached_by: &[Reach::Event(
            "fault: anon_vma reuse refused: another object",
        )],
    },
    Goal {
        name: "anon_vma reuse refused: uffd bits differ",
        reached_by: &[Reach::Event(
            "fault: anon_vma reuse refused: uffd bits differ",
        )],
    },
    Goal {
        name: "anon_vma reuse refused: flags differ beyond prot",
        reached_by: &[Reach::Event(
            "fault: anon_vma reuse refused: flags differ beyond prot",
        )],
    },
    Goal {
        name: "anon_vma reuse refused: page offsets not linear",
        reached_by: &[Reach::Event(
            "fault: anon_vma reuse refused: page offsets not linear",
        )],
    },
    Goal {
        name: "an unfaulted VMA merges with a faulted one",
        reached_by: &[Reach::Event(
            "merge of a VMA without anon_vma with one that has one",
        )],
    },
    Goal {
        name: "two faulted neighbours left apart",
        reached_by: &[Reach::Event("merge refused: two different anon_vmas")],
    },
    Goal {
        name: "a range joins the left one of two neighbours with different anon_vmas",
        reached_by: &[Reach::Event(
            "merge with both refused: prev and next have different anon_vmas",
        )],
    },
    Goal {
        name: "VM_ACCOUNT kept after RW->R because of a fault",
        reached_by: &[Reach::Event(
            "mprotect keeps VM_ACCOUNT: the VMA has an anon_vma",
        )],
    },
    Goal {
        name: "a write refused by userfaultfd (MISSING, anonymous)",
        reached_by: &[Reach::Event(
            "fault refused by userfaultfd (missing, anonymous)",
        )],
    },
    Goal {
        name: "a write refused by userfaultfd (MISSING, page not cached)",
        reached_by: &[Reach::Event(
            "fault refused by userfaultfd (missing, page not cached)",
        )],
    },
    Goal {
        name: "a write refused by userfaultfd (MINOR, page cached)",
        reached_by: &[Reach::Event(
            "fault refused by userfaultfd (minor, page cached)",
        )],
    },
    Goal {
        name: "madvise sets dontcopy",
        reached_by: &[Reach::Event("madvise sets dontcopy")],
    },
    Goal {
        name: "madvise clears dontcopy",
        reached_by: &[Reach::Event("madvise clears dontcopy")],
    },
    Goal {
        name: "madvise sets wipeonfork",
        reached_by: &[Reach::Event("madvise sets wipeonfork")],
    },
    Goal {
        name: "madvise clears wipeonfork",
        reached_by: &[Reach::Event("madvise clears wipeonfork")],
    },
    Goal {
        name: "madvise sets dontdump",
        reached_by: &[Reach::Event("madvise sets dontdump")],
    },
    Goal {
        name: "madvise clears dontdump",
        reached_by: &[Reach::Event("madvise clears dontdump")],
    },
    Goal {
        name: "madvise sets hugepage",
        reached_by: &[Reach::Event("madvise sets hugepage")],
    },
    Goal {
        name: "madvise clears hugepage",
        reached_by: &[Reach::Event("madvise clears hugepage")],
    },
    Goal {
        name: "madvise sets nohugepage",
        reached_by: &[Reach::Event("madvise sets nohugepage")],
    },
    Goal {
        name: "madvise clears nohugepage",
        reached_by: &[Reach::Event("madvise clears nohugepage")],
    },
    Goal {
        name: "madvise sets mergeable",
        reached_by: &[Reach::Event("madvise sets mergeable")],
    },
    Goal {
        name: "madvise clears mergeable",
        reached_by: &[Reach::Event("madvise clears mergeable")],
    },
    Goal {
        name: "mlock sets locked",
        reached_by: &[Reach::Event("mlock sets locked")],
    },
    Goal {
        name: "munlock clears locked",
        reached_by: &[Reach::Event("munlock clears locked")],
    },
    Goal {
        name: "mlock onfault sets lockonfault",
        reached_by: &[Reach::Event("mlock sets lockonfault")],
    },
    Goal {
        name: "mlock populating fails (ENOMEM, still locked)",
        reached_by: &[Reach::Event(
            "mlock populate fails: ENOMEM, the range stays locked",
        )],
    },
    Goal {
        name: "mprotect populates a locked VMA made writable",
        reached_by: &[Reach::Event(
            "mprotect populates a locked VMA made writable",
        )],
    },
    Goal {
        name: "mremap: a moved VMA merges at its destination",
        reached_by: &[Reach::Event(
            "mremap: the moved VMA merges at its destination",
        )],
    },
    Goal {
        name: "mremap: a moved VMA does not merge",
        reached_by: &[Reach::Event("mremap: the moved VMA does not merge")],
    },
    Goal {
        name: "mremap: a VMA grows in place",
        reached_by: &[Reach::Event("mremap: expand in place")],
    },
    Goal {
        name: "mremap: a grow in place merges with the next VMA",
        reached_by: &[Reach::Event(
            "mremap: grow in place merges with the next VMA",
        )],
    },
    Goal {
        name: "mremap: a same-length move over several VMAs",
        reached_by: &[Reach::Event("mremap: a multi-VMA move")],
    },
    Goal {
        name: "mremap: a multi-VMA move stopped by a registered VMA (EFAULT)",
        reached_by: &[Reach::Event(
            "mremap: a multi-VMA move stopped by a registered VMA",
        )],
    },
    Goal {
        name: "mremap: a registration moves along (event-remap)",
        reached_by: &[Reach::Event(
            "mremap: the registration moves along (event-remap)",
        )],
    },
    Goal {
        name: "mremap: a moved VMA loses its registration (no event-remap)",
        reached_by: &[Reach::Event(
            "mremap: userfaultfd_reset_ctx of the moved VMA",
        )],
    },
    Goal {
        name: "mremap: DONTUNMAP unlocks the source VMA",
        reached_by: &[Reach::Event("mremap: dontunmap unlocks the source VMA")],
    },
    Goal {
        name: "a fault past the end of a shmem object (grown by mremap)",
        reached_by: &[Reach::Event("fault past the end of a shmem object")],
    },
    Goal {
        name: "fork: the child keeps a boundary between equal VMAs",
        reached_by: &[Reach::Event(
            "fork child keeps a boundary between equal VMAs",
        )],
    },
    Goal {
        name: "deviation hit: mremap-merges-with-old-registration",
        reached_by: &[Reach::Deviation("mremap-merges-with-old-registration")],
    },
    Goal {
        name: "deviation hit: fork-keeps-parent-boundaries",
        reached_by: &[Reach::Deviation("fork-keeps-parent-boundaries")],
    },
    Goal {
        name: "deviation hit: dontunmap-unlocks-the-whole-vma",
        reached_by: &[Reach::Deviation("dontunmap-unlocks-the-whole-vma")],
    },
    Goal {
        name: "a merge after map",
        reached_by: &[Reach::MergeAfter("map")],
    },
    Goal {
        name: "a merge after protect",
        reached_by: &[Reach::MergeAfter("protect")],
    },
    Goal {
        name: "a merge after register",
        reached_by: &[Reach::MergeAfter("register")],
    },
    Goal {
        name: "a merge after unregister",
        reached_by: &[Reach::MergeAfter("unregister")],
    },
    Goal {
        name: "a merge after close",
        reached_by: &[Reach::MergeAfter("close")],
    },
    Goal {
        name: "a merge after madvise",
        reached_by: &[Reach::MergeAfter("madvise")],
    },
    Goal {
        name: "a merge after mlock",
        reached_by: &[Reach::MergeAfter("mlock")],
    },
    Goal {
        name: "a merge after munlock",
        reached_by: &[Reach::MergeAfter("munlock")],
    },
    Goal {
        name: "a merge after mremap",
        reached_by: &[Reach::MergeAfter("mremap")],
    },
    Goal {
        name: "a merge after open",
        reached_by: &[Reach::MergeAfter("open")],
    },
];

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
        if outcomes
            .iter()
            .any(|o| o.report.merges.iter().any(|&c| c != 0))
        {
            *self.merges_after.entry(op.name()).or_default() += 1;
        }
        // Coverage events: every backend's.
        for o in outcomes {
            for &e in &o.report.events {
                *self.events.entry(e).or_default() += 1;
            }
        }
        // Deviations: the first backend's that reports any (one step, one
        // count, however many backends know the rule).
        if let Some(o) = outcomes.iter().find(|o| !o.report.deviations.is_empty()) {
            for &d in &o.report.deviations {
                *self.deviations.entry(d).or_default() += 1;
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
        for (k, n) in &other.unsupported {
            *self.unsupported.entry(k.clone()).or_default() += n;
        }
        for (k, n) in &other.events {
            *self.events.entry(k).or_default() += n;
        }
        for (k, n) in &other.merges_after {
            *self.merges_after.entry(k).or_default() += n;
        }
        for (k, n) in &other.deviations {
            *self.deviations.entry(k).or_default() += n;
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
            if !o.layout.agrees_with(&first.layout) {
                writeln!(
                    f,
                    "\nlayout diff (< {}, > {}):\n{}",
                    first.backend,
                    o.backend,
                    layout_diff(&first.layout, &o.layout).trim_end()
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
///
/// A backend that answers [`uffd_vocab::Unsupported`] is left out from that
/// step to the end of the sequence and counted in [`Stats::unsupported`];
/// the others go on.
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
        b.plan(&ops);
    }
    let mut active = vec![true; backends.len()];
    for (index, step) in trace.steps.iter().enumerate() {
        let outcomes = step_all(backends, &mut active, &step.op, &mut stats);
        if outcomes.is_empty() {
            // Nobody can run this op: the rest of the sequence is unchecked.
            break;
        }
        let view = StepView {
            index,
            op: &step.op,
            pages: trace.pages,
            outcomes: &outcomes,
            expect: Some(step),
        };
        if let Err((invariant, message)) = check_view(&view) {
            return Err(Failure {
                invariant,
                message,
                step: index,
                trace: Trace {
                    kind: Default::default(),
                    pages: trace.pages,
                    steps: trace.steps[..=index].to_vec(),
                },
                outcomes,
            });
        }
        each(&view);
        stats.count(&step.op, &outcomes);
    }
    Ok(stats)
}

/// Runs `op` on every active backend, in order. A backend that answers
/// `Unsupported` becomes inactive (and is counted in `stats`).
pub fn step_all(
    backends: &mut [&mut dyn Backend],
    active: &mut [bool],
    op: &Op,
    stats: &mut Stats,
) -> Vec<Outcome> {
    let mut outcomes = Vec::with_capacity(backends.len());
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
    outcomes
}

/// Every invariant over one step's view: the first that fails, with what it
/// said.
pub fn check_view(view: &StepView) -> Result<(), (&'static str, String)> {
    for inv in INVARIANTS {
        (inv.check)(view).map_err(|m| (inv.name, m))?;
    }
    Ok(())
}

/// One step as a JSON object (`replay --json`): `{"step","op","result",
/// "layout","backends","merges"}`; the layout is the first backend's.
pub fn step_json(v: &StepView) -> serde_json::Value {
    let o = &v.outcomes[0];
    serde_json::json!({
        "step": v.index + 1,
        "op": v.op.to_string(),
        "result": result_name(&o.result),
        "layout": o.layout.to_json(),
        "backends": v.outcomes.iter().map(|o| o.backend).collect::<Vec<_>>(),
        "merges": v.outcomes.iter().flat_map(|o| o.report.merges.iter().copied()).collect::<Vec<_>>(),
    })
}

/// A failure as a JSON object: the failing step with every backend's
/// result and layout, the invariant and its message, and the trace.
pub fn failure_json(f: &Failure) -> serde_json::Value {
    serde_json::json!({
        "step": f.step + 1,
        "op": f.trace.steps[f.step].op.to_string(),
        "failure": {"invariant": f.invariant, "message": f.message},
        "outcomes": f.outcomes.iter().map(|o| serde_json::json!({
            "backend": o.backend,
            "result": result_name(&o.result),
            "layout": o.layout.to_json(),
            "merges": o.report.merges,
            "violations": o.report.violations.iter().map(|(n, t)| format!("{n}: {t}")).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "trace": f.trace.to_text(),
    })
}

/// [`run_trace`] for a plain op sequence.
pub fn run_ops(
    backends: &mut [&mut dyn Backend],
    pages: Page,
    ops: &[Op],
) -> Result<Stats, Failure> {
    run_trace(backends, &Trace::from_ops(pages, ops))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

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
            uffd_impl::Bugs {
                unadjusted_pgoff: true,
                ..Default::default()
            },
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

    #[test]
    fn the_line_diff_is_plain() {
        let d = line_diff(&l(&["a", "b", "c"]), &l(&["a", "x", "c", "d"]));
        assert_eq!(d, " a\n<b\n>x\n c\n>d\n");
        assert!(!d.contains('\x1b'));
    }
}
