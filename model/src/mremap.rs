//! mremap (rules 16 to 18): pages move and take their attributes along,
//! and the layout is what they make. Where the kernel departs from it in a
//! move, rules 21 and 23 say what it does instead (crate::deviations).

use std::ops::Range;

use uffd_vocab::{Backing, Errno, Features, Mode, OpResult, Page, Remap, VmFlags};

use crate::events::Unmapping;
use crate::page_model::{PageModel, Pte};

impl PageModel {
    /// mremap: the checks and the forms of rule 16; the same length with a
    /// destination is rule 17, a move rule 18.
    pub fn mremap(&mut self, start: Page, len: Page, newlen: Page, to: Remap) -> OpResult {
        let dontunmap = matches!(to, Remap::DontUnmap(_));
        if newlen == 0 || (dontunmap && len != newlen) {
            return Err(Errno::EINVAL);
        }
        if let Some(dst) = to.dst() {
            if let Some(r) = self.mremap_within_one_vma(start, len, newlen, dst, dontunmap) {
                return r;
            }
            if start < dst + newlen && dst < start + len {
                return Err(Errno::EINVAL);
            }
            if len == newlen {
                return self.remap_move(start, len, dst, dontunmap);
            }
        }
        let s = start as usize;
        let Some(p) = self.pages[s] else {
            return Err(Errno::EFAULT);
        };
        if to.dst().is_none() && newlen <= len {
            // In place, a shrink unmaps the tail; the same length does
            // nothing.
            self.unmap_pages(Self::range(start + newlen, len - newlen), Unmapping::Other);
            return Ok(());
        }
        let vma = self.vma_of(s);
        if len == 0 && !p.flags.has(VmFlags::MAYSHARE) {
            return Err(Errno::EINVAL);
        }
        if s + len.min(newlen) as usize > vma.end {
            return Err(Errno::EFAULT);
        }
        let Some(dst) = to.dst() else {
            // Grown in place: the range ends its VMA, free pages follow.
            let (end, new_end) = ((start + len) as usize, (start + newlen) as usize);
            if end != vma.end || self.pages[end..new_end].iter().any(Option::is_some) {
                return Err(Errno::ENOMEM);
            }
            self.grow(end - 1, end..new_end);
            return Ok(());
        };
        if newlen < len {
            self.unmap_pages(Self::range(start + newlen, len - newlen), Unmapping::Other);
        }
        let kept = len.min(newlen) as usize;
        self.move_range(s, kept, dst as usize, newlen as usize, false)?;
        if newlen < len {
            self.remap_event_has_the_old_length(len);
        }
        Ok(())
    }

    /// The same length with a destination (rule 17): VMA by VMA from the
    /// first, each piece moved to the same distance from `dst`, holes kept.
    /// A registered VMA stops it with EFAULT (the pieces before it stay
    /// moved), unless the range lies in it alone.
    fn remap_move(&mut self, start: Page, len: Page, dst: Page, dontunmap: bool) -> OpResult {
        let (s, e) = (start as usize, (start + len) as usize);
        if len == 0 || self.pages[s].is_none() {
            return Err(Errno::EFAULT);
        }
        let alone = self.vma_of(s).end >= e;
        let mut i = s;
        while i < e {
            if self.pages[i].is_none() {
                i += 1;
                continue;
            }
            let piece = i..self.vma_of(i).end.min(e);
            if !alone && !self.pages[i].expect("mapped").uffd.is_empty() {
                return Err(Errno::EFAULT);
            }
            let to = dst as usize + (i - s);
            self.move_range(i, piece.len(), to, piece.len(), dontunmap)?;
            i = piece.end;
        }
        Ok(())
    }

    /// A move (rule 18) of the `len` pages at `src`, all in one VMA, to
    /// `dst`, where `newlen` pages are unmapped first: each page takes its
    /// attributes along, and pages past `len` are new, empty copies of the
    /// last (of the page at `src` when `len` is 0: a second mapping of
    /// shared memory); private anonymous memory without an anon_vma takes
    /// the new address as its page offset. A registration by a ctx without
    /// UFFD_FEATURE_EVENT_REMAP does not go along. The copy merges, the
    /// source still there; then the source is unmapped, or left by
    /// DONTUNMAP; new pages of a locked VMA are populated (rule 14).
    pub(crate) fn move_range(
        &mut self,
        src: usize,
        len: usize,
        dst: usize,
        newlen: usize,
        dontunmap: bool,
    ) -> OpResult {
        self.unmap_pages(dst..dst + newlen, Unmapping::Destination);
        let source = self.vma_of(src);
        let Some(first) = self.pages[src] else {
            // Length 0 and the destination starting at the source: that
            // unmapped it.
            return Err(Errno::EFAULT);
        };
        let keeps = first.ctx.is_some_and(|c| self.open.has(c, Features::REMAP));
        // Rule 41: the REMAP comes after the destination's UNMAPs, before
        // the source's.
        self.remap_event(first.ctx, src, dst, len);
        let mut changed = Vec::with_capacity(newlen);
        for k in 0..newlen {
            let mut p = self.pages[src + k.min(len.max(1) - 1)].expect("one VMA: mapped");
            if k >= len {
                p.pte = Pte::None;
                p.wp = false;
            }
            if p.backing == Backing::Anon && p.anon_vma.is_none() {
                p.pgoff = (dst + k) as Page;
            } else {
                p.pgoff = first.pgoff + k as Page;
            }
            p.apart = false;
            if !keeps {
                // The uffd-wp bits of a registered VMA go too (0cef0bb836e3,
                // rule 31); an unregistered one keeps them.
                p.wp &= p.ctx.is_none();
                p.uffd = Mode::NONE;
                p.ctx = None;
            }
            self.pages[dst + k] = Some(p);
            changed.push(dst + k);
        }
        // The pages have moved away.
        for p in self.pages[src..src + len].iter_mut().flatten() {
            p.pte = Pte::None;
            p.wp = false;
        }
        let dontunmap_source = dontunmap.then(|| source.clone());
        self.merge_copy(dst..dst + newlen, &changed, first, !keeps, dontunmap_source);
        if dontunmap {
            self.leave_source(src..src + len);
            self.dontunmap_copy_apart(source, dst..dst + newlen);
            self.dontunmap_source_loses_account(src..src + len);
        } else {
            self.unmap_pages(src..src + len, Unmapping::Other);
        }
        // Rule 42: the ctx that keeps the registration cannot resolve a
        // fault of this populate: its REMAP is read only after it.
        self.events.changing = first.ctx.filter(|_| keeps);
        self.populate_if_locked(dst + len..dst + newlen);
        self.events.changing = None;
        Ok(())
    }

    /// DONTUNMAP leaves the `source` of a move mapped, empty, still
    /// registered and unlocked, and its VMA loses its anon_vma when all of
    /// it moved; then it merges (rule 5). Rules 23 and 44 say what the
    /// kernel does instead.
    fn leave_source(&mut self, source: Range<usize>) {
        let vma = self.vma_of(source.start);
        let whole = vma == source;
        if self.dontunmap_unlocks_whole_vma(vma.clone(), whole) {
            return;
        }
        let before = self.pages[vma.clone()].to_vec();
        self.unlock_source(source.clone(), vma.clone(), whole);
        if self.dontunmap_source_stays_apart(source, vma.clone(), &before) {
            return;
        }
        let changed = self.changed_since(vma, &before);
        self.merge_around(&changed);
    }

    /// Unlocks the pages of `unlock`, and takes the anon_vma of `vma` when
    /// `whole` (all of it moved).
    pub(crate) fn unlock_source(&mut self, unlock: Range<usize>, vma: Range<usize>, whole: bool) {
        for p in self.pages[unlock].iter_mut().flatten() {
            p.flags.set(VmFlags::LOCKED, false);
            p.flags.set(VmFlags::LOCKONFAULT, false);
        }
        if whole {
            for p in self.pages[vma].iter_mut().flatten() {
                p.anon_vma = None;
            }
        }
    }

    /// Grows the VMA whose last page is `last` over the hole `new` (rule
    /// 16): the new pages take its attributes, empty, with linear page
    /// offsets; merged with what follows; populated if locked (rule 14).
    fn grow(&mut self, last: usize, new: Range<usize>) {
        let from = self.pages[last].expect("mapped");
        let mut changed = Vec::with_capacity(new.len());
        for (k, i) in new.clone().enumerate() {
            let mut p = from;
            p.pgoff = from.pgoff + 1 + k as Page;
            p.pte = Pte::None;
            p.wp = false;
            p.apart = false;
            self.pages[i] = Some(p);
            changed.push(i);
        }
        self.merge_around(&changed);
        self.populate_if_locked(new);
    }
}
