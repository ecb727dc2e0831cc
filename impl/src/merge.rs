//! The merge step, shaped like Linux 6.5's `vma_merge()` (mm/mmap.c).
//!
//! A caller proposes a range `[start, end)` with new attributes and a page
//! offset, and hands in `prev`: the VMA before the range, or the VMA the range
//! starts in when it starts inside one. `vma_merge` looks up `curr` (the
//! existing VMA the range covers, if any) and `next` (the VMA after the range),
//! decides whether the range can join `prev`, `next` or both, *plans* the
//! edits (a `Plan`: extend one VMA, delete up to two, move one VMA's edge),
//! and one commit function applies the plan. When nothing can merge it
//! returns `None` and the caller splits (case 0).
//!
//! The legacy case numbers of the 2023 LKML thread live in one place only,
//! [`MERGE_CASES`]; the code names each branch by its shape and the step's
//! report records the number from the table.

use std::fmt;

use uffd_vocab::{MergeCase, Page, VmFlags};

use crate::bugs::Switch;
use crate::{vm_warn_on, Attrs, IntervalImpl, VmaState};

mod plan;
use plan::{plan, Plan};

/// The shapes `vma_merge` handles. "New range" is a range in a hole (mmap);
/// "existing range" lies in VMAs that are there (mprotect, uffd).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Shape {
    /// Nothing could merge: the caller splits the range off (or inserts it).
    NoMerge,
    /// A new range between P and N, both compatible: P swallows it and N.
    NewMergeBoth,
    /// A new range after P, only P compatible: P extends over it.
    NewMergeLeft,
    /// A new range before N, only N compatible: N extends down over it.
    NewMergeRight,
    /// The range is the tail of P (the VMA it lies in), N compatible:
    /// P shrinks, N extends down over the range.
    ExistingTailMergeRight,
    /// The range is the head of C, P compatible: P extends over it, C's
    /// start moves up.
    ExistingHeadMergeLeft,
    /// The range is exactly C, P and N compatible: P swallows C and N.
    ExistingWholeMergeBoth,
    /// The range is exactly C, only P compatible: P swallows C.
    ExistingWholeMergeLeft,
    /// The range is exactly C, only N compatible: N extends down over C.
    ExistingWholeMergeRight,
}

/// One row of [`MERGE_CASES`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CaseRow {
    /// The legacy `vma_merge` case number (0: no merge, split).
    pub case: MergeCase,
    pub shape: Shape,
    /// The range `****` with P, C and N before the step.
    pub before: &'static str,
    /// The VMAs after the step.
    pub after: &'static str,
}

const fn row(case: MergeCase, shape: Shape, before: &'static str, after: &'static str) -> CaseRow {
    CaseRow {
        case,
        shape,
        before,
        after,
    }
}

/// THE table: legacy case number to shape (docs/kernel-rules.md §5). `****` is the
/// range, P the VMA before it, C the existing VMA it covers, N the one after;
/// `pp**` is a range that is the tail of P, `**cc` one that is the head of C.
#[rustfmt::skip]
pub const MERGE_CASES: [CaseRow; 9] = [
    row(0, Shape::NoMerge,                 "PPPP****NNNN none compatible", "PPPP****NNNN (split off / inserted)"),
    row(1, Shape::NewMergeBoth,            "PPPP****NNNN new range",       "PPPPPPPPPPPP (N deleted)"),
    row(2, Shape::NewMergeLeft,            "PPPP****NNNN new range",       "PPPPPPPPNNNN"),
    row(3, Shape::NewMergeRight,           "PPPP****NNNN new range",       "PPPPNNNNNNNN (N's pgoff drops)"),
    row(4, Shape::ExistingTailMergeRight,  "PPPPpp**NNNN",                 "PPPPppNNNNNN (P shrinks)"),
    row(5, Shape::ExistingHeadMergeLeft,   "PPPP**ccCCCC",                 "PPPPPPccCCCC (C's start moves up)"),
    row(6, Shape::ExistingWholeMergeBoth,  "PPPPCCCCNNNN **** = C",        "PPPPPPPPPPPP (C, N deleted)"),
    row(7, Shape::ExistingWholeMergeLeft,  "PPPPCCCCNNNN **** = C",        "PPPPPPPPNNNN (C deleted)"),
    row(8, Shape::ExistingWholeMergeRight, "PPPPCCCCNNNN **** = C",        "PPPPNNNNNNNN (C deleted)"),
];

impl Shape {
    /// The legacy case number, from [`MERGE_CASES`].
    pub fn case(self) -> MergeCase {
        MERGE_CASES
            .iter()
            .find(|row| row.shape == self)
            .map_or(0, |row| row.case)
    }
    /// The shape of a legacy case number, from [`MERGE_CASES`].
    pub fn of_case(case: MergeCase) -> Option<Shape> {
        MERGE_CASES
            .iter()
            .find(|row| row.case == case)
            .map(|row| row.shape)
    }
}

/// The merge state threaded through one merge (the kernel's
/// `vma_merge_struct`): what the caller proposes, and what `vma_merge` found.
pub(crate) struct Vmg {
    /// Which caller asked (for the violation text).
    pub caller: &'static str,
    /// The VMA before the range, or the VMA the range starts in.
    pub prev: Option<VmaState>,
    /// The VMA the caller is modifying (none for a new range).
    pub middle: Option<VmaState>,
    pub start: Page,
    pub end: Page,
    /// The page offset proposed for `start`.
    pub pgoff: Page,
    pub attrs: Attrs,
    /// The range's anon_vma (the kernel's `vmg->anon_vma`): `middle`'s for
    /// an existing range, none for a new one.
    pub anon_vma: Option<u32>,
    // Found by `vma_merge`:
    pub curr: Option<VmaState>,
    pub next: Option<VmaState>,
    pub merge_prev: bool,
    pub merge_next: bool,
}

impl Vmg {
    /// A new range in a hole (mmap_region).
    pub fn new_range(
        caller: &'static str,
        prev: Option<VmaState>,
        start: Page,
        end: Page,
        pgoff: Page,
        attrs: Attrs,
    ) -> Vmg {
        Vmg {
            caller,
            prev,
            middle: None,
            start,
            end,
            pgoff,
            attrs,
            anon_vma: None,
            curr: None,
            next: None,
            merge_prev: false,
            merge_next: false,
        }
    }

    /// A range `[start, end)` inside the existing VMA `middle` that is to get
    /// new attributes (mprotect, uffd).
    pub fn existing(
        caller: &'static str,
        prev: Option<VmaState>,
        middle: VmaState,
        start: Page,
        end: Page,
        pgoff: Page,
        attrs: Attrs,
    ) -> Vmg {
        Vmg {
            middle: Some(middle),
            anon_vma: middle.anon_vma,
            ..Vmg::new_range(caller, prev, start, end, pgoff, attrs)
        }
    }

    fn pglen(&self) -> Page {
        self.end.wrapping_sub(self.start)
    }
}

impl fmt::Debug for Vmg {
    /// The whole merge state on one line per VMA, for violation texts.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let vma = |v: &Option<VmaState>| v.map_or("none".to_string(), |v| format!("{v:?}"));
        write!(
            f,
            "merge state of {}:\n  range  [{},{}) pgoff {}, anon_vma {:?}, merge_prev {} \
             merge_next {}\n  attrs  {:?}\n  prev   {}\n  middle {}\n  curr   {}\n  next   {}",
            self.caller,
            self.start,
            self.end,
            self.pgoff,
            self.anon_vma,
            self.merge_prev,
            self.merge_next,
            self.attrs,
            vma(&self.prev),
            vma(&self.middle),
            vma(&self.curr),
            vma(&self.next),
        )
    }
}

/// `is_mergeable_vma`: the same flags, object and ctx (no anon_vma, policy
/// or name exists here).
fn is_mergeable(vma: &VmaState, attrs: &Attrs) -> bool {
    vma.attrs == *attrs
}

/// `is_mergeable_anon_vma(vmg, merge_next)` of 6.16+: may a range whose
/// anon_vma is `src` join `tgt`? Yes when either has none (the one without
/// takes the other's), or both have the same (no fork here, so no VMA is a
/// fork child). With `bug` (before 6.16, 879bca0a2c4f), the 6.5 test
/// `(!src || !tgt_anon) && list_is_singular(&tgt->anon_vma_chain)`: the
/// chain tested is the target's, empty when the target has no anon_vma, so
/// a range with one cannot join a neighbour without.
fn is_mergeable_anon_vma(src: Option<u32>, tgt: &VmaState, bug: bool) -> bool {
    let one_missing = src.is_none() || tgt.anon_vma.is_none();
    if bug {
        let tgt_chain_singular = tgt.anon_vma.is_some();
        return (one_missing && tgt_chain_singular) || src == tgt.anon_vma;
    }
    one_missing || src == tgt.anon_vma
}

/// `can_vma_merge_after(prev, …, pgoff)`: may a range at `pgoff` follow `prev`?
fn can_merge_after(prev: &VmaState, vmg: &Vmg, bug: bool) -> bool {
    is_mergeable(prev, &vmg.attrs)
        && prev.pgoff.wrapping_add(prev.len()) == vmg.pgoff
        && is_mergeable_anon_vma(vmg.anon_vma, prev, bug)
}

/// `can_vma_merge_before(next, …, pgoff_end)`: may a range ending at page
/// offset `pgoff_end` precede `next`?
fn can_merge_before(next: &VmaState, vmg: &Vmg, bug: bool) -> bool {
    is_mergeable(next, &vmg.attrs)
        && next.pgoff == vmg.pgoff.wrapping_add(vmg.pglen())
        && is_mergeable_anon_vma(vmg.anon_vma, next, bug)
}

/// Would `prev` and `next` both merging be one VMA with one anon_vma?
/// (6.5: `is_mergeable_anon_vma(prev->anon_vma, next->anon_vma, NULL)`.)
fn prev_next_anon_vmas_compatible(prev: &VmaState, next: &VmaState) -> bool {
    prev.anon_vma.is_none() || next.anon_vma.is_none() || prev.anon_vma == next.anon_vma
}

impl IntervalImpl {
    /// `vma_merge(prev, addr, end, vm_flags, file, pgoff, uffd_ctx)` of
    /// Linux 6.5: merges the range with `prev` and/or `next` if it can, and
    /// returns the VMA that now covers the range; `None` when nothing could
    /// merge (the caller then splits). Records the case it took.
    ///
    /// Assumptions (checked like the kernel's `VM_WARN_ON`, which 6.4-rc
    /// made unconditional):
    /// - `prev`, if any, starts below the range;
    /// - `curr`, the first VMA after `prev` that the range meets, if any,
    ///   starts exactly at the range and does not end inside it; so when the
    ///   range starts inside a VMA, `prev` must be that VMA;
    /// - the range is not empty;
    /// - for an existing range: it lies in `middle`, the VMA the caller
    ///   modifies, and `prev` is `middle` when the range starts inside it;
    /// - the proposed attributes have uffd bits iff they have a ctx.
    pub(crate) fn vma_merge(&mut self, mut vmg: Vmg) -> Option<VmaState> {
        let (addr, end) = (vmg.start, vmg.end);
        vmg.curr = self.find_vma_intersection(vmg.prev.map_or(0, |p| p.end), end);
        // Is there a VMA next to the range: after a hole (new range) or
        // after prev (tail), or right after curr (whole)? Not after a head.
        vmg.next = match vmg.curr {
            Some(curr) if end != curr.end => None,
            _ => self.vma_lookup(end),
        };
        let bug = self.bugs.has(Switch::DisallowedAnonMerge);
        vmg.merge_prev = vmg
            .prev
            .is_some_and(|p| addr == p.end && can_merge_after(&p, &vmg, bug));
        vmg.merge_next = vmg.next.is_some_and(|n| can_merge_before(&n, &vmg, bug));
        self.anon_vma_merge_events(&vmg);

        // Verify some invariants that must be enforced by the caller.
        vm_warn_on!(
            self,
            "prev && addr <= prev->vm_start",
            vmg.prev.is_some_and(|prev| addr <= prev.start),
            vmg
        );
        vm_warn_on!(
            self,
            "curr && (addr != curr->vm_start || end > curr->vm_end)",
            vmg.curr
                .is_some_and(|curr| addr != curr.start || end > curr.end),
            vmg
        );
        vm_warn_on!(self, "addr >= end", addr >= end, vmg);
        // The same rule, stated for the callers that modify a VMA: the range
        // lies in `middle`, and if it starts inside it, `prev` is `middle`.
        vm_warn_on!(
            self,
            "middle && (addr < middle->vm_start || end > middle->vm_end)",
            vmg.middle.is_some_and(|m| addr < m.start || end > m.end),
            vmg
        );
        vm_warn_on!(
            self,
            "middle && middle->vm_start < addr && prev != middle",
            vmg.middle
                .is_some_and(|m| m.start < addr && vmg.prev != Some(m)),
            vmg
        );
        vm_warn_on!(
            self,
            "!(vm_flags & __VM_UFFD_FLAGS) != !uffd_ctx",
            vmg.attrs.uffd.is_empty() != vmg.attrs.ctx.is_none(),
            vmg
        );
        let next_is_prev = vmg.merge_next && vmg.next.map(|n| n.start) == vmg.prev.map(|p| p.start);
        if vm_warn_on!(self, "merge_next && next == prev", next_is_prev, vmg) {
            self.report.merges.push(Shape::NoMerge.case());
            return None;
        }

        // 6.3's mmap_region and brk extended next themselves, with the
        // right pgoff; of the callers here, only mremap's copy_vma took
        // vma_merge's case 3 there.
        let case3_bug = self.bugs.has(Switch::MremapCase3Pgoff) && vmg.caller == "copy_vma";
        let Some(plan) = plan(&vmg, case3_bug) else {
            self.report.merges.push(Shape::NoMerge.case());
            return None;
        };
        self.report.merges.push(plan.shape.case());
        self.commit(&plan, &vmg)
    }

    /// Coverage: merges that the anon_vmas decide.
    fn anon_vma_merge_events(&mut self, vmg: &Vmg) {
        let linear_prev = |p: &VmaState| {
            is_mergeable(p, &vmg.attrs) && p.pgoff.wrapping_add(p.len()) == vmg.pgoff
        };
        let linear_next = |n: &VmaState| {
            is_mergeable(n, &vmg.attrs) && n.pgoff == vmg.pgoff.wrapping_add(vmg.pglen())
        };
        let differ = |t: &VmaState| {
            vmg.anon_vma.is_some() && t.anon_vma.is_some() && vmg.anon_vma != t.anon_vma
        };
        let prev = vmg.prev.filter(|p| p.end == vmg.start && linear_prev(p));
        let next = vmg.next.filter(|n| linear_next(n));
        if prev.is_some_and(|p| differ(&p)) || next.is_some_and(|n| differ(&n)) {
            self.event("merge refused: two different anon_vmas");
        }
        if let (Some(p), Some(n)) = (prev, next) {
            if vmg.merge_prev && vmg.merge_next && !prev_next_anon_vmas_compatible(&p, &n) {
                self.event("merge with both refused: prev and next have different anon_vmas");
            }
        }
        let joins = |t: &VmaState| t.anon_vma.is_some() != vmg.anon_vma.is_some();
        if (vmg.merge_prev && prev.is_some_and(|p| joins(&p)))
            || (vmg.merge_next && next.is_some_and(|n| joins(&n)))
        {
            self.event("merge of a VMA without anon_vma with one that has one");
        }
    }

    /// The callers' common step (6.5 open-codes it in each caller; later
    /// kernels call it `vma_modify`): try to merge `[start, end)` of `vma`
    /// with new attributes; if nothing merged, split the head and the tail
    /// off (case 0); then set the attributes on the VMA that covers the
    /// range, and return it (the caller's next `prev`).
    pub(crate) fn vma_modify(&mut self, vmg: Vmg) -> Option<VmaState> {
        let (vma, start, end, attrs) = (vmg.middle, vmg.start, vmg.end, vmg.attrs);
        let res = match self.vma_merge(vmg) {
            Some(res) => {
                vm_warn_on!(
                    self,
                    "the merged VMA lacks the requested flags",
                    res.attrs != attrs,
                    (res, attrs)
                );
                res
            }
            None => self.split_to(vma?, start, end)?,
        };
        self.set_attrs(res.start, attrs)
    }

    /// Splits the head `[vma.start, start)` and the tail `[end, vma.end)`
    /// off `vma`, as far as they are not empty; returns the VMA left
    /// between (the kernel's pair of `split_vma` calls).
    pub(crate) fn split_to(&mut self, vma: VmaState, start: Page, end: Page) -> Option<VmaState> {
        let mut key = vma.start;
        if vma.start < start {
            key = self.split(vma.start, start)?.start;
        }
        if vma.end > end {
            self.split(key, end);
        }
        self.vmas.get(&key).copied()
    }

    /// `vma_modify_flags`: the range `[start, end)` of `vma` gets `flags`.
    /// Nothing when they stay (`*prev` becomes `vma`); else merged or split
    /// through [`IntervalImpl::vma_modify`], `*prev` becoming the VMA that
    /// covers the range. `events` names, for each flag bit, the coverage
    /// events of setting and of clearing it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn vma_modify_flags(
        &mut self,
        caller: &'static str,
        prev: &mut Option<VmaState>,
        vma: VmaState,
        start: Page,
        end: Page,
        flags: VmFlags,
        events: &[(u16, &'static str, &'static str)],
    ) {
        if flags == vma.attrs.flags {
            *prev = Some(vma);
            return;
        }
        for &(bit, set, cleared) in events {
            match (vma.attrs.flags.has(bit), flags.has(bit)) {
                (false, true) => self.event(set),
                (true, false) => self.event(cleared),
                _ => {}
            }
        }
        let new = Attrs { flags, ..vma.attrs };
        let pgoff = vma.pgoff.wrapping_add(start.wrapping_sub(vma.start));
        let vmg = Vmg::existing(caller, *prev, vma, start, end, pgoff, new);
        *prev = self.vma_modify(vmg);
    }

    /// Applies a plan: deletes, moves one edge, extends the kept VMA.
    fn commit(&mut self, plan: &Plan, vmg: &Vmg) -> Option<VmaState> {
        let mut missing = false;
        // dup_anon_vma(): the VMA that stays takes the anon_vma of the
        // range or of a VMA it swallows when it has none of its own.
        let mut inherited = vmg.anon_vma;
        for key in &plan.delete {
            match self.vmas.remove(key) {
                Some(v) => inherited = inherited.or(v.anon_vma),
                None => missing = true,
            }
        }
        let adjusted = plan.adjust.map(|(key, start, end, pgoff)| {
            self.vmas.remove(&key).map(|mut v| {
                v.start = start;
                v.end = end;
                v.pgoff = pgoff;
                v
            })
        });
        let kept = self.vmas.remove(&plan.keep).map(|mut v| {
            v.start = plan.start;
            v.end = plan.end;
            v.pgoff = plan.pgoff;
            v.anon_vma = v.anon_vma.or(inherited);
            v
        });
        missing |= matches!(adjusted, Some(None)) || kept.is_none();
        if vm_warn_on!(self, "a VMA of the plan is missing", missing, (plan, vmg)) {
            // Keep whatever was taken out rather than lose it.
        }
        if let Some(Some(v)) = adjusted {
            self.vmas.insert(v.start, v);
        }
        let v = kept?;
        self.vmas.insert(v.start, v);
        Some(v)
    }
}

#[cfg(test)]
mod tests;
