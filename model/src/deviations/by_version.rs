//! The rules of kernels older or newer than 6.18 (rules 24 to 29), off by
//! default: one hook each, called where the contract does that step, doing
//! nothing while its rule is off.

use std::ops::Range;

use uffd_vocab::{Errno, Mode, Op, OpResult, Page, VmFlags};

use super::Deviation;
use crate::events::Unmapping;
use crate::page_model::{PageModel, PageState};

/// Around a new mapping, before it (rule 26).
pub(crate) struct MapNeighbours {
    prev_vma: Range<usize>,
    prev: PageState,
    next: PageState,
}

impl PageModel {
    /// Rule 24, for a move of the `len` pages at `start` to `dst` with the
    /// new length `newlen` (MREMAP_FIXED, or DONTUNMAP with `dontunmap`),
    /// as mremap_to did before 6.17. `None` while the rule is off: the
    /// contract's checks and moves follow.
    pub(crate) fn mremap_within_one_vma(
        &mut self,
        start: Page,
        len: Page,
        newlen: Page,
        dst: Page,
        dontunmap: bool,
    ) -> Option<OpResult> {
        let rule = Deviation::MremapWithinOneVma;
        if !self.applies(rule) {
            return None;
        }
        self.took_part(rule);
        let s = start as usize;
        if self.pages[s].is_none() {
            return Some(Err(Errno::EFAULT));
        }
        if start < dst + newlen && dst < start + len {
            return Some(Err(Errno::EINVAL));
        }
        self.unmap_pages(Self::range(dst, newlen), Unmapping::Destination);
        let old_len = len;
        let len = if newlen < len {
            self.unmap_pages(Self::range(start + newlen, len - newlen), Unmapping::Other);
            newlen
        } else {
            len
        };
        // vma_to_resize looks the source up again: the destination may
        // have been it (a length of 0 at the same address).
        let Some(p) = self.pages[s] else {
            return Some(Err(Errno::EFAULT));
        };
        let vma = self.vma_of(s);
        if len == 0 && !p.flags.has(VmFlags::MAYSHARE) {
            return Some(Err(Errno::EINVAL));
        }
        if s + len as usize > vma.end {
            return Some(Err(Errno::EFAULT));
        }
        let moved = self.move_range(s, len as usize, dst as usize, newlen as usize, dontunmap);
        if moved.is_ok() && len < old_len {
            self.remap_event_has_the_old_length(old_len);
        }
        Some(moved)
    }

    /// Rule 25: may `unregister` clear a registration of another ctx? Yes
    /// while the rule is on (before 6.17).
    pub(crate) fn unregisters_any_ctx(&mut self) -> bool {
        let rule = Deviation::UnregisterAnyCtx;
        let on = self.applies(rule);
        if on {
            self.took_part(rule);
        }
        on
    }

    /// What rule 26 needs to know of a map of `new`, taken before it: the
    /// VMA before it and the page before and after it. `None` while the
    /// rule is off.
    pub(crate) fn map_neighbours(&self, new: &Range<usize>) -> Option<MapNeighbours> {
        if !self.applies(Deviation::NewMappingJoinsNext)
            || new.start == 0
            || new.end >= self.pages.len()
        {
            return None;
        }
        Some(MapNeighbours {
            prev_vma: self.vma_of(new.start - 1),
            prev: self.pages[new.start - 1]?,
            next: self.pages[new.end]?,
        })
    }

    /// Rule 26, after the `new` pages of a map merged (rule 5), with what
    /// was around them before (`around`): when they could merge with the
    /// VMAs on both sides, whose anon_vmas differ, they take the anon_vma
    /// of the VMA after them (before 6.12): mmap_region tries the next VMA
    /// first. Where the VMA before has no anon_vma, it could take that one
    /// too, but those kernels test the anon_vma chain of the VMA merged
    /// into (the historic bug disallowed-anon-merge, which every kernel
    /// with this rule has): it keeps none, and stays apart.
    pub(crate) fn new_mapping_joins_next(&mut self, new: Range<usize>, around: MapNeighbours) {
        let (Some(first), Some(last)) = (self.pages[new.start], self.pages[new.end - 1]) else {
            return;
        };
        let MapNeighbours {
            prev_vma,
            prev,
            mut next,
        } = around;
        let Some(right) = next.anon_vma else {
            return;
        };
        // A boundary kept next to a new mapping ends (rule 20).
        next.apart = false;
        if prev.anon_vma == Some(right)
            || !prev.same_but_anon_vma(&first)
            || !last.same_but_anon_vma(&next)
        {
            return;
        }
        for p in self.pages[new.clone()].iter_mut().flatten() {
            p.anon_vma = Some(right);
        }
        if prev.anon_vma.is_none() {
            for p in self.pages[prev_vma].iter_mut().flatten() {
                p.anon_vma = None;
            }
            if let Some(p) = self.pages[new.start].as_mut() {
                p.apart = true;
            }
        }
        self.took_part(Deviation::NewMappingJoinsNext);
    }

    /// Rule 27, after a DONTUNMAP move whose `copy` may have merged with
    /// `source`, the VMA its pages came from (as it was before the move):
    /// the boundary between the two stays.
    pub(crate) fn dontunmap_copy_apart(&mut self, source: Range<usize>, copy: Range<usize>) {
        let rule = Deviation::DontUnmapCopyApart;
        if !self.applies(rule) {
            return;
        }
        let boundary = if copy.end == source.start {
            copy.end
        } else if copy.start == source.end {
            copy.start
        } else {
            return;
        };
        if self.vma_of(boundary - 1) == self.vma_of(boundary) {
            if let Some(p) = self.pages[boundary].as_mut() {
                p.apart = true;
            }
            self.took_part(rule);
        }
        // Rule 36: on the copy's other side too.
        let rule = Deviation::DontUnmapCopyMergesWithNothing;
        if !self.applies(rule) {
            return;
        }
        let other = if boundary == copy.end {
            copy.start
        } else {
            copy.end
        };
        let joined = other > 0
            && other < self.pages.len()
            && self.pages[other].is_some()
            && self.pages[other - 1].is_some()
            && self.vma_of(other - 1) == self.vma_of(other);
        if joined {
            if let Some(p) = self.pages[other].as_mut() {
                p.apart = true;
            }
            self.took_part(rule);
        }
    }

    /// Rules 27 and 36 together, where rule 21 would merge a DONTUNMAP
    /// `copy` next to its `source` with its old registration: the copy,
    /// unregistered, stays a VMA of its own on both sides. Returns whether
    /// both rules are on (with one of them only, as 7.2 would have it by
    /// their histories, unmeasured, rule 21 merges as it does alone).
    pub(crate) fn dontunmap_copy_stays_alone(
        &mut self,
        source: Range<usize>,
        copy: Range<usize>,
    ) -> bool {
        let near = copy.end == source.start || copy.start == source.end;
        let rules = [
            Deviation::DontUnmapCopyApart,
            Deviation::DontUnmapCopyMergesWithNothing,
        ];
        if !near || !rules.iter().all(|&r| self.applies(r)) {
            return false;
        }
        for p in self.pages[copy.clone()].iter_mut().flatten() {
            p.uffd = Mode::NONE;
            p.ctx = None;
        }
        self.keep_apart(copy);
        for r in rules {
            self.took_part(r);
        }
        true
    }

    /// Rules 37 to 39: an ioctl (or a mode of one) the kernel does not
    /// have is EINVAL before anything is done. `None`: the kernel has it.
    pub(crate) fn ioctl_missing(&mut self, op: &Op) -> Option<OpResult> {
        let rule = match *op {
            Op::Move { .. } => Deviation::NoUffdioMove,
            Op::Fill {
                how: uffd_vocab::Fill::Poison,
                ..
            } => Deviation::NoUffdioPoison,
            Op::Fill {
                how: uffd_vocab::Fill::Continue,
                wp: true,
                ..
            } => Deviation::NoContinueWp,
            _ => return None,
        };
        if !self.applies(rule) {
            return None;
        }
        self.took_part(rule);
        Some(Err(Errno::EINVAL))
    }

    /// Rule 43: the REMAP a move that shrank from `old_len` pages sent
    /// says `old_len`.
    pub(crate) fn remap_event_has_the_old_length(&mut self, old_len: Page) {
        let rule = Deviation::RemapEventOldLength;
        if self.applies(rule) && self.set_remap_len(old_len) {
            self.took_part(rule);
        }
    }

    /// Rule 40: does a fill prepare the anon_vma only after its checks?
    pub(crate) fn fill_prepares_late(&mut self) -> bool {
        let rule = Deviation::RefusedFillLeavesNoAnonVma;
        if !self.applies(rule) {
            return false;
        }
        self.took_part(rule);
        true
    }

    /// Rule 28, where a move's `copy` lost its registration (rule 18):
    /// the copy stays a VMA of its own, unmerged. Returns whether it did
    /// (the rule is on, and rule 21, which does more, is off).
    pub(crate) fn moved_copy_stays_apart(&mut self, copy: Range<usize>) -> bool {
        let rule = Deviation::MovedCopyStaysApart;
        if !self.applies(rule) || self.applies(Deviation::MremapOldRegistration) {
            return false;
        }
        self.keep_apart(copy);
        self.took_part(rule);
        true
    }

    /// Rule 29, for UFFDIO_REGISTER by `ctx` with `mode`, at the page `p`
    /// (in address order, after the contract's checks of that page, as
    /// 7.3 checks VMA by VMA): is it refused (EBUSY) because it would drop
    /// WP from a VMA that ctx registered with it?
    pub(crate) fn register_keeps_wp(&mut self, ctx: u8, p: &PageState, mode: Mode) -> bool {
        let rule = Deviation::RegisterKeepsWp;
        let drops = self.applies(rule)
            && !mode.contains(Mode::WP)
            && p.ctx == Some(ctx)
            && p.uffd.contains(Mode::WP);
        if drops {
            self.took_part(rule);
        }
        drops
    }

    /// Rule 30, after a DONTUNMAP move from `source` (6.16): the VMA the
    /// source is in loses VM_ACCOUNT, whole, and stays apart.
    pub(crate) fn dontunmap_source_loses_account(&mut self, source: Range<usize>) {
        let rule = Deviation::DontUnmapSourceLosesAccount;
        if !self.applies(rule) || self.pages[source.start].is_none() {
            return;
        }
        let vma = self.vma_of(source.start);
        for p in self.pages[vma.clone()].iter_mut().flatten() {
            p.flags.set(VmFlags::ACCOUNT, false);
        }
        self.keep_apart(vma);
        self.took_part(rule);
    }

    /// Rule 32, for UFFDIO_WRITEPROTECT of `len` pages at `start`: is it
    /// refused (ENOENT) because the range is not inside one VMA registered
    /// with WP (before 6.12)?
    pub(crate) fn writeprotect_refuses_vmas(&mut self, start: Page, len: Page) -> bool {
        let rule = Deviation::WriteprotectWithinOneVma;
        if !self.applies(rule) {
            return false;
        }
        let s = start as usize;
        let one_wp_vma = self.pages[s].is_some_and(|p| p.uffd.contains(Mode::WP))
            && self.vma_end(s) >= s + len as usize;
        if !one_wp_vma {
            self.took_part(rule);
        }
        !one_wp_vma
    }
}
