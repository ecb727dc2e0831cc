//! The userfaultfd callers, shaped like Linux 6.5's fs/userfaultfd.c with
//! the May 2023 fixes (docs/kernel-rules.md §2, §3, §7): `userfaultfd_register`,
//! `userfaultfd_unregister` and `userfaultfd_release` (close); and the
//! non-cooperative events of fs/userfaultfd.c in 6.18 (§20, rule 41):
//! `userfaultfd_unmap_prep` / `_complete`, `userfaultfd_remove`,
//! `dup_userfaultfd` / `_complete` (`mremap_userfaultfd_*` are in
//! `mremap.rs`, beside their caller).
//!
//! Both register and unregister walk the VMAs of the range left to right,
//! passing each piece `[max(start, vma.start), min(end, vma.end))` to the
//! merge with `prev` chained from the previous piece. The two places where
//! the 2023 bugs lived are `uffd_first_prev` and `uffd_piece_pgoff`.

use uffd_vocab::{
    Backing, Errno, Event, EventKind, Features, Mode, OpResult, Page, PteKind, VmFlags, Vma,
};

use crate::bugs::Switch;
use crate::merge::Vmg;
use crate::pgtable::Pte;
use crate::{vm_warn_on, Attrs, IntervalImpl, VmaState};

impl IntervalImpl {
    /// The `prev` of the first VMA of the range. Fixed: the VMA the range
    /// starts in when it starts strictly inside it
    /// (`if (vma->vm_start < start) prev = vma;`), else the VMA before.
    /// Bug (a) `stale_prev`: always the VMA before.
    fn uffd_first_prev(&self, first: VmaState, start: Page) -> Option<VmaState> {
        if first.start < start && !self.bugs.has(Switch::StalePrev) {
            Some(first)
        } else {
            self.vma_before(first.start)
        }
    }

    /// The pgoff of the piece starting at `start` in `vma`. Fixed:
    /// `vma->vm_pgoff + (start - vma->vm_start)`. Bug (b)
    /// `unadjusted_pgoff`: `vma->vm_pgoff`.
    fn uffd_piece_pgoff(&self, vma: VmaState, start: Page) -> Page {
        if self.bugs.has(Switch::UnadjustedPgoff) {
            vma.pgoff
        } else {
            vma.pgoff.wrapping_add(start.wrapping_sub(vma.start))
        }
    }

    /// The piece `[max(start, vma.start), min(end, vma.end))` of `vma` gets
    /// `new`, merged with its neighbours or split off (the kernel's
    /// `vma_modify_flags_uffd`); returns the VMA that now holds the piece.
    fn uffd_modify_piece(
        &mut self,
        caller: &'static str,
        prev: Option<VmaState>,
        vma: VmaState,
        start: Page,
        end: Page,
        new: Attrs,
    ) -> Option<VmaState> {
        if self.bugs.has(Switch::SplitFirst) {
            // Bug `split_first`: the v2 patch of the May 2023 thread, which
            // was not taken. Its `clamp_range` splits `vma` at `start` (then
            // it may not merge) and at `end`; only a VMA not split at its
            // start goes to `vma_merge`, whole, at its own pgoff. A piece
            // that starts inside its VMA so never merges, not even with an
            // equal next VMA: the fragmentation Peter Xu objected to
            // (`[0,10)` registered, `[10,20)` plain, unregister `[5,10)`:
            // three VMAs).
            let can_merge = vma.start >= start;
            let vma = self.split_to(vma, start, end)?;
            if can_merge {
                let vmg = Vmg::existing(caller, prev, vma, vma.start, vma.end, vma.pgoff, new);
                if let Some(merged) = self.vma_merge(vmg) {
                    return self.set_attrs(merged.start, new);
                }
            }
            return self.set_attrs(vma.start, new);
        }
        let start = start.max(vma.start);
        let pgoff = self.uffd_piece_pgoff(vma, start);
        let vmg = Vmg::existing(caller, prev, vma, start, vma.end.min(end), pgoff, new);
        self.vma_modify(vmg)
    }

    /// UFFDIO_REGISTER: every check first (nothing changes on failure), then
    /// per VMA: skip it if this ctx already tracks the mode, else the piece
    /// in range gets exactly `mode` and `ctx`, merged or split off.
    pub(crate) fn userfaultfd_register(
        &mut self,
        ctx: u8,
        start: Page,
        len: Page,
        mode: Mode,
    ) -> OpResult {
        self.open.insert(ctx);
        if mode.is_empty() || mode.has_unknown_bits() || len == 0 {
            return Err(Errno::EINVAL);
        }
        let end = start.saturating_add(len);
        let Some(first) = self.find_vma_intersection(start, end) else {
            return Err(Errno::EINVAL);
        };
        // Search for incompatible VMAs, left to right.
        let refused = self.vmas_in(start, end).find_map(|cur| {
            if mode.contains(Mode::MINOR) && cur.attrs.object == Backing::Anon {
                Some(Errno::EINVAL)
            } else if !cur.attrs.flags.has(VmFlags::MAYWRITE) {
                Some(Errno::EPERM)
            } else if cur.attrs.ctx.is_some_and(|c| c != ctx) {
                Some(Errno::EBUSY)
            } else {
                None
            }
        });
        if let Some(errno) = refused {
            return Err(errno);
        }

        let mut prev = self.uffd_first_prev(first, start);
        let mut start = start;
        while let Some(vma) = self.find_vma_intersection(start, end) {
            // Nothing to do: already registered into this ctx with the mode.
            if vma.attrs.ctx == Some(ctx) && vma.attrs.uffd.contains(mode) {
                prev = Some(vma);
                start = vma.end;
                continue;
            }
            let new = Attrs {
                uffd: mode,
                ctx: Some(ctx),
                ..vma.attrs
            };
            prev = self.uffd_modify_piece("userfaultfd_register", prev, vma, start, end, new);
            let Some(done) = prev else { break };
            start = done.end;
        }
        Ok(())
    }

    /// UFFDIO_UNREGISTER: any VMA of the range owned by another ctx is
    /// EINVAL with no change; then every owned piece loses its uffd bits and
    /// ctx, merged or split off; VMAs with no ctx are skipped.
    pub(crate) fn userfaultfd_unregister(&mut self, ctx: u8, start: Page, len: Page) -> OpResult {
        self.open.insert(ctx);
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        let end = start.saturating_add(len);
        let Some(first) = self.find_vma_intersection(start, end) else {
            return Err(Errno::EINVAL);
        };
        if self
            .vmas_in(start, end)
            .any(|cur| cur.attrs.ctx.is_some_and(|c| c != ctx))
        {
            return Err(Errno::EINVAL);
        }

        let mut prev = self.uffd_first_prev(first, start);
        let mut start = start;
        while let Some(vma) = self.find_vma_intersection(start, end) {
            if vma.attrs.ctx.is_none() {
                prev = Some(vma);
                start = vma.end;
                continue;
            }
            let new = Attrs {
                uffd: Mode::NONE,
                ctx: None,
                ..vma.attrs
            };
            // userfaultfd_clear_vma(): reset the ptes wr-protected.
            if vma.attrs.uffd.contains(Mode::WP) && !self.bugs.has(Switch::UnregisterKeepsUffdWp) {
                self.uffd_wp_range(start.max(vma.start), end.min(vma.end), false);
            }
            let merges_before = self.report.merges.len();
            prev = self.uffd_modify_piece("userfaultfd_unregister", prev, vma, start, end, new);
            let Some(done) = prev else { break };
            self.unregister_iterator_check(vma, start, end, merges_before);
            start = done.end;
        }
        Ok(())
    }

    /// Bug `unregister_iterator` (6.1-rc, 69dbe6daf104 to 59f2f4b8a757):
    /// the loop did not `mas_pause()` after a merge or a split, which
    /// rewrite the maple tree, so its next `mas_find()` read the node the
    /// change had replaced (syzbot: "KASAN: use-after-free Read in
    /// mas_next_nentry"). That read happens when the range goes on past
    /// `vma`'s old end; when `vma` only had its flags set, the tree did not
    /// change. The fixed loop walks the tree again (here, each iteration's
    /// `find_vma_intersection`), and so does this one after reporting:
    /// whether the stale node still held the right entries, only the
    /// maple tree's node layout, which this crate does not have, decides.
    fn unregister_iterator_check(
        &mut self,
        vma: VmaState,
        start: Page,
        end: Page,
        merges_before: usize,
    ) {
        let merged = self.report.merges[merges_before..].iter().any(|&c| c != 0);
        let split = vma.start < start || vma.end > end;
        if self.bugs.has(Switch::UnregisterIterator) && (merged || split) && vma.end < end {
            self.warn(
                "BUG: KASAN: use-after-free Read in mas_next_nentry (userfaultfd_unregister: \
                 mas_find() on a maple state that a merge or split invalidated, no mas_pause())",
                &vma,
            );
        }
    }

    /// `open CTX FEATURES`: close(uffd) if it is open (`userfaultfd_release`),
    /// then userfaultfd(2) and UFFDIO_API with the features.
    pub(crate) fn userfaultfd_open(&mut self, ctx: u8, features: Features) -> OpResult {
        if self.open.contains(ctx) {
            self.userfaultfd_release(ctx)?;
        }
        self.open.insert_with(ctx, features);
        Ok(())
    }

    /// close(uffd), `userfaultfd_release`: walk every VMA, clear each one
    /// this ctx owns, whole VMA by whole VMA, merging as it goes. O(n), like
    /// the kernel's walk of the whole mm.
    pub(crate) fn userfaultfd_release(&mut self, ctx: u8) -> OpResult {
        if !self.open.contains(ctx) {
            return Err(Errno::EBADF);
        }
        self.open.remove(ctx);
        let mut prev: Option<VmaState> = None;
        let mut cursor = 0;
        while let Some(vma) = self.vmas.range(cursor..).next().map(|(_, v)| *v) {
            vm_warn_on!(
                self,
                "!vma->vm_userfaultfd_ctx.ctx == userfaultfd_armed(vma)",
                vma.attrs.ctx.is_none() != vma.attrs.uffd.is_empty(),
                vma
            );
            if vma.attrs.ctx != Some(ctx) {
                prev = Some(vma);
                cursor = vma.end;
                continue;
            }
            let new = Attrs {
                uffd: Mode::NONE,
                ctx: None,
                ..vma.attrs
            };
            if vma.attrs.uffd.contains(Mode::WP) {
                self.uffd_wp_range(vma.start, vma.end, false);
            }
            let vmg = Vmg::existing(
                "userfaultfd_release",
                prev,
                vma,
                vma.start,
                vma.end,
                vma.pgoff,
                new,
            );
            prev = self.vma_modify(vmg);
            cursor = prev.map_or(vma.end, |p| p.end);
        }
        Ok(())
    }
}

impl IntervalImpl {
    /// UFFDIO_WRITEPROTECT (`userfaultfd_writeprotect`, then
    /// `mwriteprotect_range`): EAGAIN while the ctx's `mmap_changing` is
    /// up; len 0 is EINVAL (`validate_range`); every VMA
    /// of the range, left to right, must have VM_UFFD_WP, else ENOENT (the
    /// ones before it are done), as is a range with no VMA. The ctx is not
    /// checked against the VMA's.
    pub(crate) fn userfaultfd_writeprotect(
        &mut self,
        ctx: u8,
        start: Page,
        len: Page,
        on: bool,
    ) -> OpResult {
        self.open.insert(ctx);
        if self.mmap_changing == Some(ctx) {
            return Err(Errno::EAGAIN);
        }
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        let end = start.saturating_add(len);
        let mut err = Err(Errno::ENOENT);
        let mut cursor = start;
        while let Some(vma) = self.find_vma_intersection(cursor, end) {
            if !vma.attrs.uffd.contains(Mode::WP) {
                return Err(Errno::ENOENT);
            }
            let (lo, hi) = (start.max(vma.start), end.min(vma.end));
            if on && vma.attrs.object == Backing::Anon {
                // change_pte_range(): anonymous memory, pte_none skipped
                // (no UFFD_FEATURE_WP_UNPOPULATED here).
                for (p, e) in self.ptes_in(lo, hi) {
                    if e.present() {
                        self.ptes.insert(p, e.with_wp(true));
                    }
                }
            } else {
                self.uffd_wp_range(lo, hi, on);
            }
            if on && self.ptes_in(lo, hi).iter().any(|(_, e)| e.wp) {
                self.event("writeprotect: a page gets the uffd-wp bit");
            }
            err = Ok(());
            cursor = vma.end;
        }
        err
    }

    /// `uffd_wp_range` over `[lo, hi)` of one non-anonymous VMA (or to
    /// clear), `change_pte_range`: every present pte gets, or loses, the
    /// bit; a pte_none gets a marker, a uffd-wp marker cleared goes; a
    /// poison marker is left alone.
    pub(crate) fn uffd_wp_range(&mut self, lo: Page, hi: Page, on: bool) {
        for p in lo..hi {
            match self.ptes.get(&p).copied() {
                None if on => {
                    self.ptes.insert(p, Pte::MARKER);
                }
                None => {}
                Some(e) if e.kind == PteKind::Poison => {}
                Some(e) if e.kind == PteKind::Marker && !on => {
                    self.ptes.remove(&p);
                }
                Some(e) if e.kind == PteKind::Marker => {}
                Some(e) => {
                    self.ptes.insert(p, e.with_wp(on));
                }
            }
        }
    }
}

/// The kernel's `struct list_head *uf` of an unmapping: the UNMAP events
/// it gathered (`struct userfaultfd_unmap_ctx`), sent by
/// [`IntervalImpl::userfaultfd_unmap_complete`] once the call is done.
pub(crate) type UnmapList = Vec<Event>;

/// The kernel's `struct list_head fcs` of a fork: the ctxs with
/// UFFD_FEATURE_EVENT_FORK whose VMAs the child kept registered
/// (`struct userfaultfd_fork_ctx`), in the order of their first VMA.
pub(crate) type ForkList = Vec<u8>;

impl IntervalImpl {
    /// `userfaultfd_unmap_prep(vma, start, end, unmaps)` (fs/userfaultfd.c):
    /// called for each VMA an unmapping of `[start, end)` takes; when the
    /// VMA's ctx has UFFD_FEATURE_EVENT_UNMAP, `(ctx, start, end)` joins
    /// the list unless it is there already (`has_unmap_ctx`). The range is
    /// the whole call's, not the VMA's part.
    pub(crate) fn userfaultfd_unmap_prep(
        &self,
        vma: VmaState,
        start: Page,
        end: Page,
        unmaps: &mut UnmapList,
    ) {
        let Some(ctx) = vma.attrs.ctx else {
            return;
        };
        let event = Event::new(ctx, EventKind::Unmap { start, end });
        if !self.open.has(ctx, Features::UNMAP) || unmaps.contains(&event) {
            return;
        }
        unmaps.push(event);
    }

    /// `userfaultfd_unmap_complete(mm, uf)` (fs/userfaultfd.c): the UNMAP
    /// events gathered, sent in order once the unmapping is done.
    /// An event to a ctx released meanwhile (its reader closed it while
    /// the call ran) is not waited for (`userfaultfd_event_wait_completion`
    /// sees `ctx->released`): no one reads it.
    pub(crate) fn userfaultfd_unmap_complete(&mut self, uf: UnmapList) {
        let (mut sent, mut lost) = (false, false);
        for event in uf {
            if self.open.contains(event.ctx) {
                self.events.push(event);
                sent = true;
            } else {
                lost = true;
            }
        }
        if sent {
            self.event("uffd: UNMAP event");
        }
        if lost {
            self.event("uffd: an event to a released ctx is dropped");
        }
    }

    /// `userfaultfd_remove(vma, start, end)` (fs/userfaultfd.c): madvise is
    /// about to drop the pages of `[start, end)`, inside `vma`; when the
    /// VMA's ctx has UFFD_FEATURE_EVENT_REMOVE, the REMOVE event is sent
    /// (and waited for) now.
    pub(crate) fn userfaultfd_remove(&mut self, vma: VmaState, start: Page, end: Page) {
        let Some(ctx) = vma
            .attrs
            .ctx
            .filter(|&c| self.open.has(c, Features::REMOVE))
        else {
            return;
        };
        self.event("uffd: REMOVE event");
        self.events
            .push(Event::new(ctx, EventKind::Remove { start, end }));
    }

    /// `dup_userfaultfd(vma, fcs)` (fs/userfaultfd.c) on the child's copy
    /// `tmp`: without UFFD_FEATURE_EVENT_FORK the copy loses its
    /// registration (`userfaultfd_reset_ctx`); with it, it keeps its uffd
    /// bits, registered with the child's new uffd for that ctx (shown as
    /// the parent's ctx number), and the ctx joins `fcs` once.
    pub(crate) fn dup_userfaultfd(&mut self, tmp: &mut Vma, fcs: &mut ForkList) {
        let Some(octx) = tmp.ctx else {
            return;
        };
        if !self.open.has(octx, Features::FORK) {
            tmp.uffd = Mode::NONE;
            tmp.ctx = None;
            return;
        }
        self.event("fork: the child keeps a registration (event-fork)");
        if !fcs.contains(&octx) {
            fcs.push(octx);
        }
    }

    /// `dup_userfaultfd_complete(fcs)` (fs/userfaultfd.c): one FORK event
    /// per ctx of `fcs`, in its order (`dup_fctx`).
    pub(crate) fn dup_userfaultfd_complete(&mut self, fcs: ForkList) {
        self.events
            .extend(fcs.into_iter().map(|c| Event::new(c, EventKind::Fork)));
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod event_tests;
