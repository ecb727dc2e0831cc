//! The invariants: named checks over one step, run after every step in the
//! order of [`INVARIANTS`]. An invariant is a plain function over a
//! [`StepView`]; adding one is writing the function and adding one line to
//! the list. Each judges what the backends answered and reported, never
//! which backend answered.

use uffd_vocab::{result_name, Backing, Mode, Page};

use super::diff::layout_diff;
use super::StepView;

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

/// Every invariant over one step's view: the first that fails, with what it
/// said.
pub fn check_view(view: &StepView) -> Result<(), (&'static str, String)> {
    for inv in INVARIANTS {
        (inv.check)(view).map_err(|m| (inv.name, m))?;
    }
    Ok(())
}
