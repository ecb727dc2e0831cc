//! The planning half of `vma_merge`: from the merge state, which shape the
//! merge takes and what it edits, decided before anything changes. Each
//! branch opens with the drawing of its shape (`P`rev, `C`urr, `N`ext, `*`
//! the proposed range); [`super::MERGE_CASES`] maps shapes to the legacy
//! case numbers.

use uffd_vocab::Page;

use super::{prev_next_anon_vmas_compatible, Shape, Vmg};
use crate::VmaState;

/// What a merge does, decided before anything changes. VMAs are named by
/// their start now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    pub shape: Shape,
    /// The VMA that ends up covering the range, and its new bounds and pgoff.
    pub keep: Page,
    pub start: Page,
    pub end: Page,
    pub pgoff: Page,
    /// VMAs that disappear into `keep`.
    pub delete: Vec<Page>,
    /// A VMA that stays but whose edge moves: its key, new start, new end,
    /// new pgoff (P shrinking in the tail shape, C's start moving up in the
    /// head shape).
    pub adjust: Option<(Page, Page, Page, Page)>,
}

/// Decides the shape and its edits from the merge state (the body of 6.5's
/// `vma_merge` after `merge_prev` / `merge_next` are known).
///
/// `case3_pgoff_bug` (6.3, 7e7757876f25): a new range merging into next
/// leaves next's page offset as it was.
pub(super) fn plan(vmg: &Vmg, case3_pgoff_bug: bool) -> Option<Plan> {
    match (vmg.prev, vmg.curr, vmg.next) {
        (Some(prev), curr, Some(next))
            if vmg.merge_prev && vmg.merge_next && prev_next_anon_vmas_compatible(&prev, &next) =>
        {
            Some(plan_merge_both(prev, curr, next))
        }
        (Some(prev), curr, _) if vmg.merge_prev => Some(plan_merge_left(prev, curr, vmg.end)),
        (_, curr, Some(next)) if vmg.merge_next => {
            Some(plan_merge_right(vmg, curr, next, case3_pgoff_bug))
        }
        _ => None,
    }
}

/// The range joins `prev` and `next`: cases 1 (a new range) and 6 (exactly
/// `curr`).
fn plan_merge_both(prev: VmaState, curr: Option<VmaState>, next: VmaState) -> Plan {
    if let Some(curr) = curr {
        //     PPPPPPCCCCCCNNNNNN   ->   PPPPPPPPPPPPPPPPPP
        //     extend delete delete
        Plan {
            shape: Shape::ExistingWholeMergeBoth,
            keep: prev.start,
            start: prev.start,
            end: next.end,
            pgoff: prev.pgoff,
            delete: vec![curr.start, next.start],
            adjust: None,
        }
    } else {
        //     PPPPPP******NNNNNN   ->   PPPPPPPPPPPPPPPPPP
        //     extend        delete
        Plan {
            shape: Shape::NewMergeBoth,
            keep: prev.start,
            start: prev.start,
            end: next.end,
            pgoff: prev.pgoff,
            delete: vec![next.start],
            adjust: None,
        }
    }
}

/// The range joins `prev` only: cases 2 (a new range), 7 (exactly `curr`)
/// and 5 (the head of `curr`).
fn plan_merge_left(prev: VmaState, curr: Option<VmaState>, end: Page) -> Plan {
    match curr {
        //     PPPPPP******NNNNNN   ->   PPPPPPPPPPPPNNNNNN
        //     extend
        None => Plan {
            shape: Shape::NewMergeLeft,
            keep: prev.start,
            start: prev.start,
            end,
            pgoff: prev.pgoff,
            delete: vec![],
            adjust: None,
        },
        //     PPPPPPCCCCCCNNNNNN   ->   PPPPPPPPPPPPNNNNNN
        //     extend delete
        Some(curr) if end == curr.end => Plan {
            shape: Shape::ExistingWholeMergeLeft,
            keep: prev.start,
            start: prev.start,
            end,
            pgoff: prev.pgoff,
            delete: vec![curr.start],
            adjust: None,
        },
        //     PPPPPP***CCC         ->   PPPPPPPPPCCC
        //     extend    adjust start up
        Some(curr) => Plan {
            shape: Shape::ExistingHeadMergeLeft,
            keep: prev.start,
            start: prev.start,
            end,
            pgoff: prev.pgoff,
            delete: vec![],
            adjust: Some((
                curr.start,
                end,
                curr.end,
                curr.pgoff.wrapping_add(end.wrapping_sub(curr.start)),
            )),
        },
    }
}

/// The range joins `next` only: cases 3 (a new range), 8 (exactly `curr`)
/// and 4 (the tail of `prev`).
fn plan_merge_right(
    vmg: &Vmg,
    curr: Option<VmaState>,
    next: VmaState,
    case3_pgoff_bug: bool,
) -> Plan {
    let (addr, pglen) = (vmg.start, vmg.pglen());
    if let Some(prev) = vmg.prev.filter(|p| addr < p.end) {
        //     PPPPPP***NNNNNN      ->   PPPPPPNNNNNNNNN
        //     shrink   extend down
        let adj = prev.end.wrapping_sub(addr);
        Plan {
            shape: Shape::ExistingTailMergeRight,
            keep: next.start,
            start: addr,
            end: next.end,
            pgoff: next.pgoff.wrapping_sub(adj),
            delete: vec![],
            adjust: Some((prev.start, prev.start, addr, prev.pgoff)),
        }
    } else if let Some(curr) = curr {
        //     PPPPPPCCCCCCNNNNNN   ->   PPPPPPNNNNNNNNNNNN
        //            delete extend down
        // The new pgoff is C's own, as in the kernel: right when the
        // range is exactly C, which the caller must make sure of.
        Plan {
            shape: Shape::ExistingWholeMergeRight,
            keep: next.start,
            start: addr,
            end: next.end,
            pgoff: curr.pgoff,
            delete: vec![curr.start],
            adjust: None,
        }
    } else {
        //     PPPPPP******NNNNNN   ->   PPPPPPNNNNNNNNNNNN
        //                 extend down
        let pgoff = if case3_pgoff_bug {
            next.pgoff
        } else {
            next.pgoff.wrapping_sub(pglen)
        };
        Plan {
            shape: Shape::NewMergeRight,
            keep: next.start,
            start: addr,
            end: next.end,
            pgoff,
            delete: vec![],
            adjust: None,
        }
    }
}
