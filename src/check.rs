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
/// boundary the model, as the reference, keeps itself: the model keeps
/// equal neighbours apart only by a deviation rule (`uffd_model::Deviation`,
/// off with `--strict`), where the kernel is known to do so.
fn minimal_fragmentation(v: &StepView) -> Result<(), String> {
    let reference = &v.outcomes[0];
    let kept: Vec<Page> = if reference.backend == "model" {
        reference
            .layout
            .vmas()
            .windows(2)
            .filter(|w| w[0].mergeable_with(&w[1]))
            .map(|w| w[1].start)
            .collect()
    } else {
        Vec::new()
    };
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
}

/// A coverage goal (stateright's `sometimes`): a situation a good run goes
/// through, reached when any of its coverage events occurred.
pub struct Goal {
    pub name: &'static str,
    /// The `StepReport::events` that reach it.
    pub events: &'static [&'static str],
}

impl Goal {
    /// How often a run reached it.
    pub fn count(&self, s: &Stats) -> u64 {
        self.events
            .iter()
            .map(|e| s.events.get(e).copied().unwrap_or(0))
            .sum()
    }
}

/// Every coverage goal: `check` prints how often each was reached, and the
/// coverage tests require each of them.
pub const GOALS: &[Goal] = &[
    Goal {
        name: "a fault reuses a neighbour's anon_vma",
        events: &[
            "fault: anon_vma reused from next",
            "fault: anon_vma reused from prev",
        ],
    },
    Goal {
        name: "anon_vma reuse refused: another object",
        events: &["fault: anon_vma reuse refused: another object"],
    },
    Goal {
        name: "anon_vma reuse refused: uffd bits differ",
        events: &["fault: anon_vma reuse refused: uffd bits differ"],
    },
    Goal {
        name: "anon_vma reuse refused: flags differ beyond prot",
        events: &["fault: anon_vma reuse refused: flags differ beyond prot"],
    },
    Goal {
        name: "anon_vma reuse refused: page offsets not linear",
        events: &["fault: anon_vma reuse refused: page offsets not linear"],
    },
    Goal {
        name: "an unfaulted VMA merges with a faulted one",
        events: &["merge of a VMA without anon_vma with one that has one"],
    },
    Goal {
        name: "two faulted neighbours left apart",
        events: &["merge refused: two different anon_vmas"],
    },
    Goal {
        name: "a range joins the left one of two neighbours with different anon_vmas",
        events: &["merge with both refused: prev and next have different anon_vmas"],
    },
    Goal {
        name: "VM_ACCOUNT kept after RW->R because of a fault",
        events: &["mprotect keeps VM_ACCOUNT: the VMA has an anon_vma"],
    },
    Goal {
        name: "a write refused by userfaultfd (MISSING, anonymous)",
        events: &["fault refused by userfaultfd (missing, anonymous)"],
    },
    Goal {
        name: "a write refused by userfaultfd (MISSING, page not cached)",
        events: &["fault refused by userfaultfd (missing, page not cached)"],
    },
    Goal {
        name: "a write refused by userfaultfd (MINOR, page cached)",
        events: &["fault refused by userfaultfd (minor, page cached)"],
    },
    Goal {
        name: "madvise sets dontcopy",
        events: &["madvise sets dontcopy"],
    },
    Goal {
        name: "madvise clears dontcopy",
        events: &["madvise clears dontcopy"],
    },
    Goal {
        name: "madvise sets wipeonfork",
        events: &["madvise sets wipeonfork"],
    },
    Goal {
        name: "madvise clears wipeonfork",
        events: &["madvise clears wipeonfork"],
    },
    Goal {
        name: "madvise sets dontdump",
        events: &["madvise sets dontdump"],
    },
    Goal {
        name: "madvise clears dontdump",
        events: &["madvise clears dontdump"],
    },
    Goal {
        name: "madvise sets hugepage",
        events: &["madvise sets hugepage"],
    },
    Goal {
        name: "madvise clears hugepage",
        events: &["madvise clears hugepage"],
    },
    Goal {
        name: "madvise sets nohugepage",
        events: &["madvise sets nohugepage"],
    },
    Goal {
        name: "madvise clears nohugepage",
        events: &["madvise clears nohugepage"],
    },
    Goal {
        name: "madvise sets mergeable",
        events: &["madvise sets mergeable"],
    },
    Goal {
        name: "madvise clears mergeable",
        events: &["madvise clears mergeable"],
    },
    Goal {
        name: "mlock sets locked",
        events: &["mlock sets locked"],
    },
    Goal {
        name: "munlock clears locked",
        events: &["munlock clears locked"],
    },
    Goal {
        name: "mlock onfault sets lockonfault",
        events: &["mlock sets lockonfault"],
    },
    Goal {
        name: "mlock populating fails (ENOMEM, still locked)",
        events: &["mlock populate fails: ENOMEM, the range stays locked"],
    },
    Goal {
        name: "mprotect populates a locked VMA made writable",
        events: &["mprotect populates a locked VMA made writable"],
    },
    Goal {
        name: "mremap: a moved VMA merges at its destination",
        events: &["mremap: the moved VMA merges at its destination"],
    },
    Goal {
        name: "mremap: a moved VMA does not merge",
        events: &["mremap: the moved VMA does not merge"],
    },
    Goal {
        name: "mremap: a VMA grows in place",
        events: &["mremap: expand in place"],
    },
    Goal {
        name: "mremap: a grow in place merges with the next VMA",
        events: &["mremap: grow in place merges with the next VMA"],
    },
    Goal {
        name: "mremap: a same-length move over several VMAs",
        events: &["mremap: a multi-VMA move"],
    },
    Goal {
        name: "mremap: a multi-VMA move stopped by a registered VMA (EFAULT)",
        events: &["mremap: a multi-VMA move stopped by a registered VMA"],
    },
    Goal {
        name: "mremap: a registration moves along (event-remap)",
        events: &["mremap: the registration moves along (event-remap)"],
    },
    Goal {
        name: "mremap: a moved VMA loses its registration (no event-remap)",
        events: &["mremap: userfaultfd_reset_ctx of the moved VMA"],
    },
    Goal {
        name: "mremap: DONTUNMAP unlocks the source VMA",
        events: &["mremap: dontunmap unlocks the source VMA"],
    },
    Goal {
        name: "a fault past the end of a shmem object (grown by mremap)",
        events: &["fault past the end of a shmem object"],
    },
    Goal {
        name: "fork: the child keeps a boundary between equal VMAs",
        events: &["fork child keeps a boundary between equal VMAs"],
    },
    Goal {
        name: "deviation hit: mremap-merges-with-old-registration",
        events: &["deviation mremap-merges-with-old-registration"],
    },
    Goal {
        name: "deviation hit: fork-keeps-parent-boundaries",
        events: &["deviation fork-keeps-parent-boundaries"],
    },
    Goal {
        name: "deviation hit: dontunmap-unlocks-the-whole-vma",
        events: &["deviation dontunmap-unlocks-the-whole-vma"],
    },
    Goal {
        name: "a merge after map",
        events: &["a merge after map"],
    },
    Goal {
        name: "a merge after protect",
        events: &["a merge after protect"],
    },
    Goal {
        name: "a merge after register",
        events: &["a merge after register"],
    },
    Goal {
        name: "a merge after unregister",
        events: &["a merge after unregister"],
    },
    Goal {
        name: "a merge after close",
        events: &["a merge after close"],
    },
    Goal {
        name: "a merge after madvise",
        events: &["a merge after madvise"],
    },
    Goal {
        name: "a merge after mlock",
        events: &["a merge after mlock"],
    },
    Goal {
        name: "a merge after munlock",
        events: &["a merge after munlock"],
    },
    Goal {
        name: "a merge after mremap",
        events: &["a merge after mremap"],
    },
    Goal {
        name: "a merge after open",
        events: &["a merge after open"],
    },
];

/// The coverage event of a step of op `name` that merged VMAs (a merge
/// case other than 0).
pub fn merge_after(name: &str) -> Option<&'static str> {
    const EVENTS: [&str; 13] = [
        "a merge after map",
        "a merge after unmap",
        "a merge after protect",
        "a merge after register",
        "a merge after unregister",
        "a merge after close",
        "a merge after fault",
        "a merge after madvise",
        "a merge after mlock",
        "a merge after munlock",
        "a merge after mremap",
        "a merge after open",
        "a merge after fork",
    ];
    Op::NAMES.iter().position(|n| *n == name).map(|i| EVENTS[i])
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
        if outcomes
            .iter()
            .any(|o| o.report.merges.iter().any(|&c| c != 0))
        {
            if let Some(e) = merge_after(op.name()) {
                *self.events.entry(e).or_default() += 1;
            }
        }
        // Coverage events from the implementation, deviation events from
        // the model: every backend's.
        for o in outcomes {
            for &e in &o.report.events {
                *self.events.entry(e).or_default() += 1;
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
