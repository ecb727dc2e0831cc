//! mremap(2), shaped like Linux 6.18's mm/mremap.c: `do_mremap` →
//! `check_mremap_params`, then `remap_move` (a same-length move, VMA by
//! VMA, 6.17+) or `vma_lookup` + `check_prep_vma` and `mremap_at` (in
//! place: `shrink_vma`, `expand_vma_in_place` → `vma_merge_extend`) or
//! `mremap_to` (moved: `move_vma` → `copy_vma_and_data` → `copy_vma`,
//! `mremap_userfaultfd_prep`, then `unmap_source_vma` or
//! `dontunmap_complete`), and `mm_populate` of a grown locked VMA; then
//! `notify_uffd`: the UNMAP events of the destination, the REMAP event, the
//! UNMAP events of the shrunk tail and the source (§20). See
//! docs/kernel-rules.md §15.

use uffd_vocab::{
    Backing, Errno, Event, EventKind, Features, Mode, OpResult, Page, PteKind, Remap, VmFlags,
};

use crate::bugs::Switch;
use crate::merge::Vmg;
use crate::uffd::UnmapList;
use crate::{Attrs, IntervalImpl, VmaState};

/// The kernel's `struct vma_remap_struct`, as far as it matters here.
#[derive(Clone, Debug)]
struct Vrm {
    addr: Page,
    old_len: Page,
    new_len: Page,
    /// `Some` with MREMAP_FIXED: where it goes.
    new_addr: Option<Page>,
    dontunmap: bool,
    /// A locked VMA grew: populate the new part after the move.
    populate_expand: bool,
    /// `vrm->uf`: the ctx of the moved VMA when it has
    /// UFFD_FEATURE_EVENT_REMAP (set by `mremap_userfaultfd_prep`).
    uf: Option<u8>,
    /// `vrm->uf_unmap_early`: what unmapping the destination gathered.
    uf_unmap_early: UnmapList,
    /// `vrm->uf_unmap`: what unmapping the shrunk tail and the source
    /// gathered.
    uf_unmap: UnmapList,
}

impl Vrm {
    /// `vrm_implies_new_addr`.
    fn implies_new_addr(&self) -> bool {
        self.new_addr.is_some()
    }
}

impl IntervalImpl {
    /// `do_mremap`.
    pub(crate) fn do_mremap(
        &mut self,
        addr: Page,
        old_len: Page,
        new_len: Page,
        to: Remap,
    ) -> OpResult {
        let mut vrm = Vrm {
            addr,
            old_len,
            new_len,
            new_addr: to.dst(),
            dontunmap: matches!(to, Remap::DontUnmap(_)),
            populate_expand: false,
            uf: None,
            uf_unmap_early: UnmapList::new(),
            uf_unmap: UnmapList::new(),
        };
        check_mremap_params(&vrm)?;
        // vrm_move_only(): MREMAP_FIXED and no resize.
        let res = if vrm.implies_new_addr() && old_len == new_len {
            self.event("mremap: remap_move");
            self.remap_move(&mut vrm)
        } else {
            // `goto out` on failure: to notify_uffd all the same.
            let vrm = &mut vrm;
            self.vma_lookup(addr).ok_or(Errno::EFAULT).and_then(|vma| {
                self.check_prep_vma(vrm, vma)?;
                if vrm.implies_new_addr() {
                    self.mremap_to(vrm)
                } else {
                    self.mremap_at(vrm, vma)
                }
            })
        };
        if res.is_ok() && vrm.populate_expand {
            // mm_populate(new_addr + old_len, delta), after the lock is
            // dropped; errors are ignored.
            let at = vrm.new_addr.unwrap_or(vrm.addr);
            let _ = self.mm_populate(at + vrm.old_len, vrm.new_len - vrm.old_len, true);
        }
        self.notify_uffd(vrm, res.is_err());
        res
    }

    /// `notify_uffd`: whatever the result, the UNMAP events of the
    /// destination (`uf_unmap_early`), then the REMAP event, only on
    /// success (else `mremap_userfaultfd_fail`), then the UNMAP events of
    /// the shrunk tail and the source (`uf_unmap`).
    fn notify_uffd(&mut self, vrm: Vrm, failed: bool) {
        // mremap_userfaultfd_complete() / _fail(): mmap_changing drops.
        self.mmap_changing = None;
        self.userfaultfd_unmap_complete(vrm.uf_unmap_early);
        if !failed {
            let to = vrm.new_addr.unwrap_or(vrm.addr);
            self.mremap_userfaultfd_complete(vrm.uf, vrm.addr, to, vrm.old_len);
        }
        self.userfaultfd_unmap_complete(vrm.uf_unmap);
    }

    /// `check_prep_vma`: the checks on the VMA at `addr`, only when the
    /// op maps something new (grows or moves).
    fn check_prep_vma(&mut self, vrm: &mut Vrm, vma: VmaState) -> OpResult {
        let expand = vrm.new_len > vrm.old_len;
        // vrm_will_map_new()
        if !expand && !vrm.implies_new_addr() {
            return Ok(());
        }
        // !old_len is a special case where an attempt is made to
        // 'duplicate' a mapping: only shared mappings may.
        if vrm.old_len == 0 && !vma.attrs.flags.has(VmFlags::MAYSHARE) {
            return Err(Errno::EINVAL);
        }
        // We can't remap across vm area boundaries (a shrink keeps only
        // new_len of it).
        let old_len = vrm.old_len.min(vrm.new_len);
        if old_len > vma.end - vrm.addr {
            return Err(Errno::EFAULT);
        }
        if expand && vma.attrs.flags.has(VmFlags::LOCKED) {
            vrm.populate_expand = true;
        }
        Ok(())
    }

    /// `mremap_at`: resize in place.
    fn mremap_at(&mut self, vrm: &mut Vrm, vma: VmaState) -> OpResult {
        if vrm.new_len == vrm.old_len {
            return Ok(());
        }
        if vrm.new_len < vrm.old_len {
            // shrink_vma(): do_vmi_munmap of the tail, across anything.
            let (start, end) = (vrm.addr + vrm.new_len, vrm.addr + vrm.old_len);
            self.munmap_range(start, end, &mut vrm.uf_unmap);
            return Ok(());
        }
        // vrm_can_expand_in_place(): the range ends the VMA, and the space
        // after it is free (vma_expandable). No MREMAP_MAYMOVE here.
        let delta = vrm.new_len - vrm.old_len;
        let expandable = vrm.addr + vrm.old_len == vma.end
            && self
                .find_vma_intersection(vma.end, vma.end + delta)
                .is_none();
        if !expandable {
            return Err(Errno::ENOMEM);
        }
        self.vma_merge_extend(vma, delta, vrm.old_len)
    }

    /// `vma_merge_extend`: `vma` grows by `delta` as a new range after it
    /// (`vma_merge_new_range` with `prev` = the VMA itself), which may
    /// also take in the next VMA.
    ///
    /// Bug `mremap_expand_inside` (6.1, fixed by 6f12be792fde): the
    /// extension's pgoff was `vma->vm_pgoff + (old_len >> PAGE_SHIFT)`,
    /// right only when the range starts at `vm_start`; then `vma` cannot
    /// take the extension, and when nothing merges, `vma_merge` returns
    /// NULL and mremap -ENOMEM.
    fn vma_merge_extend(&mut self, vma: VmaState, delta: Page, old_len: Page) -> OpResult {
        let pgoff = if self.bugs.has(Switch::MremapExpandInside) {
            vma.pgoff.wrapping_add(old_len)
        } else {
            vma.pgoff.wrapping_add(vma.len())
        };
        let mut vmg = Vmg::new_range(
            "vma_merge_extend",
            Some(vma),
            vma.end,
            vma.end + delta,
            pgoff,
            vma.attrs,
        );
        vmg.anon_vma = vma.anon_vma;
        let Some(v) = self.vma_merge(vmg) else {
            return Err(Errno::ENOMEM);
        };
        self.event("mremap: expand in place");
        if v.end > vma.end + delta {
            self.event("mremap: grow in place merges with the next VMA");
        }
        Ok(())
    }

    /// `remap_move`: a same-length move, VMA by VMA from the first, each
    /// piece to the same distance from the destination as from the start
    /// (gaps kept, their destinations left alone). A VMA with userfaultfd
    /// armed may not take part in a multi-VMA move (`vma_multi_allowed`).
    /// Each piece is set up in `vrm` itself, as the kernel does, so the
    /// UNMAP lists gather over all of them.
    fn remap_move(&mut self, vrm: &mut Vrm) -> OpResult {
        let (start, end) = (vrm.addr, vrm.addr + vrm.old_len);
        let new_addr = vrm.new_addr.expect("a move");
        let mut target_addr = new_addr;
        let mut res = Err(Errno::EFAULT);
        let mut last_end = 0;
        let mut seen_vma = false;
        let mut cursor = start;
        while let Some(vma) = self.find_vma_intersection(cursor, end) {
            // No gap permitted at the start of the range.
            if !seen_vma && start < vma.start {
                return Err(Errno::EFAULT);
            }
            let addr = vma.start.max(start);
            let len = end.min(vma.end) - addr;
            let offset = if seen_vma { vma.start - last_end } else { 0 };
            last_end = vma.end;
            vrm.addr = addr;
            vrm.old_len = len;
            vrm.new_len = len;
            vrm.new_addr = Some(target_addr + offset);
            let multi_allowed = vma.attrs.uffd.is_empty();
            // Not allowed: abort if this is not the first VMA, or the
            // first but more VMAs are to move.
            if !multi_allowed && (seen_vma || vma.end < end) {
                self.event("mremap: a multi-VMA move stopped by a registered VMA");
                return Err(Errno::EFAULT);
            }
            if seen_vma {
                self.event("mremap: a multi-VMA move");
            }
            self.check_prep_vma(vrm, vma)?;
            self.mremap_to(vrm)?;
            if !seen_vma {
                res = Ok(());
            }
            seen_vma = true;
            target_addr = vrm.new_addr.expect("a move") + len;
            cursor = addr + len;
        }
        res
    }

    /// `mremap_to`: unmap the destination (into `uf_unmap_early`), shrink
    /// the source (`shrink_vma`, into `uf_unmap`), move.
    fn mremap_to(&mut self, vrm: &mut Vrm) -> OpResult {
        let new_addr = vrm.new_addr.expect("a move");
        let mut unannounced = UnmapList::new();
        let uf = if self.bugs.has(Switch::SilentDestinationUnmap) {
            &mut unannounced
        } else {
            &mut vrm.uf_unmap_early
        };
        self.munmap_range(new_addr, new_addr + vrm.new_len, uf);
        // The source's VMA again: the munmap may have split it.
        if self.vma_lookup(vrm.addr).is_none() {
            return Err(Errno::EFAULT);
        }
        if vrm.new_len < vrm.old_len {
            let (start, end) = (vrm.addr + vrm.new_len, vrm.addr + vrm.old_len);
            self.munmap_range(start, end, &mut vrm.uf_unmap);
            vrm.old_len = vrm.new_len;
        }
        self.move_vma(vrm)
    }

    /// `move_vma`: copy the VMA and its page tables, then unmap the source
    /// (or, with MREMAP_DONTUNMAP, keep it, empty).
    fn move_vma(&mut self, vrm: &mut Vrm) -> OpResult {
        let Some(vma) = self.vma_lookup(vrm.addr) else {
            return Err(Errno::EFAULT);
        };
        // copy_vma_and_data()
        let new_addr = vrm.new_addr.expect("a move");
        let new_pgoff = vma.pgoff.wrapping_add(vrm.addr - vma.start);
        let Some(new_vma) = self.copy_vma(vma, new_addr, vrm.new_len, new_pgoff) else {
            return Err(Errno::ENOMEM);
        };
        self.move_page_tables(vrm.addr, new_addr, vrm.old_len);
        let new_vma = self.mremap_userfaultfd_prep(new_vma, &mut vrm.uf);
        if vrm.dontunmap {
            self.dontunmap_complete(vrm, new_vma);
        } else if vrm.old_len > 0 {
            // unmap_source_vma(): do_vmi_munmap of the old range into
            // `uf_unmap`, the source VMA still registered (with length 0,
            // a duplicate of shared memory, that fails: ignored).
            let (start, end) = (vrm.addr, vrm.addr + vrm.old_len);
            self.munmap_range(start, end, &mut vrm.uf_unmap);
        }
        Ok(())
    }

    /// `copy_vma(&vma, addr, len, pgoff)`: an unfaulted private anonymous
    /// VMA takes its new address as page offset; then the new range merges
    /// with its neighbours at the destination (`vma_merge_new_range`, the
    /// range carrying the VMA's anon_vma and, still, its registration), or
    /// a copy is inserted.
    fn copy_vma(&mut self, vma: VmaState, addr: Page, len: Page, pgoff: Page) -> Option<VmaState> {
        let pgoff = if vma.attrs.object == Backing::Anon && vma.anon_vma.is_none() {
            addr
        } else {
            pgoff
        };
        let prev = self.vma_before(addr);
        if self.find_vma_intersection(addr, addr + len).is_some() {
            // "should never get here": the destination was unmapped.
            self.warn("copy_vma: the destination is not a hole", &(addr, len));
            return None;
        }
        let mut vmg = Vmg::new_range("copy_vma", prev, addr, addr + len, pgoff, vma.attrs);
        vmg.anon_vma = vma.anon_vma;
        if let Some(new_vma) = self.vma_merge(vmg) {
            self.event("mremap: the moved VMA merges at its destination");
            return Some(new_vma);
        }
        self.event("mremap: the moved VMA does not merge");
        let new_vma = VmaState {
            start: addr,
            end: addr + len,
            pgoff,
            attrs: vma.attrs,
            // anon_vma_clone()
            anon_vma: vma.anon_vma,
        };
        self.vmas.insert(addr, new_vma);
        Some(new_vma)
    }

    /// `move_page_tables`: the entries of `[old, old+len)` now sit at
    /// `new`, whatever they are (pages, markers).
    fn move_page_tables(&mut self, old: Page, new: Page, len: Page) {
        // move_ptes(): the uffd-wp bits move too, cleared when the VMA is
        // registered (in any mode) by a ctx without UFFD_FEATURE_EVENT_REMAP
        // (it loses its registration: 0cef0bb836e3, unless the bug is put
        // back), a uffd-wp marker then dropped; a VMA not registered at
        // all keeps them.
        // vma_has_uffd_without_event_remap(): any registration.
        let clear = self.vma_lookup(old).is_some_and(|v| {
            v.attrs
                .ctx
                .is_some_and(|c| !self.open.has(c, Features::REMAP))
        }) && !self.bugs.has(Switch::MremapKeepsUffdWp);
        let moved = self.ptes_in(old, old + len);
        for (p, _) in &moved {
            self.ptes.remove(p);
        }
        if moved.iter().any(|(_, e)| e.wp) {
            self.event(if clear {
                "mremap: uffd-wp bits cleared (no event-remap)"
            } else {
                "mremap: uffd-wp bits move along"
            });
        }
        for (p, e) in moved {
            let e = if clear && e.wp {
                if e.kind == PteKind::Marker {
                    continue;
                }
                e.with_wp(false)
            } else {
                e
            };
            self.ptes.insert(new + (p - old), e);
        }
    }

    /// `mremap_userfaultfd_prep(new_vma, uf)` (fs/userfaultfd.c): with
    /// UFFD_FEATURE_EVENT_REMAP the registration stays and `uf` takes the
    /// ctx, for the REMAP event after the call; without,
    /// `userfaultfd_reset_ctx` clears it on the VMA the copy is now part
    /// of, whole, whatever it merged with (docs/kernel-rules.md §15).
    fn mremap_userfaultfd_prep(&mut self, new_vma: VmaState, uf: &mut Option<u8>) -> VmaState {
        let Some(ctx) = new_vma.attrs.ctx else {
            return new_vma;
        };
        if self.open.has(ctx, Features::REMAP) {
            self.event("mremap: the registration moves along (event-remap)");
            *uf = Some(ctx);
            // atomic_inc(&ctx->mmap_changing) until the REMAP is read.
            self.mmap_changing = Some(ctx);
            return new_vma;
        }
        self.event("mremap: userfaultfd_reset_ctx of the moved VMA");
        let attrs = Attrs {
            uffd: Mode::NONE,
            ctx: None,
            ..new_vma.attrs
        };
        self.set_attrs(new_vma.start, attrs).unwrap_or(new_vma)
    }

    /// `mremap_userfaultfd_complete(uf, from, to, len)` (fs/userfaultfd.c):
    /// the REMAP event to the ctx `mremap_userfaultfd_prep` kept.
    fn mremap_userfaultfd_complete(&mut self, uf: Option<u8>, from: Page, to: Page, len: Page) {
        let Some(ctx) = uf else {
            return;
        };
        // userfaultfd_event_wait_completion(): a ctx its reader released
        // meanwhile gets nothing.
        if !self.open.contains(ctx) {
            self.event("uffd: an event to a released ctx is dropped");
            return;
        }
        self.event("uffd: REMAP event");
        self.events
            .push(Event::new(ctx, EventKind::Remap { from, to, len }));
    }

    /// `dontunmap_complete`: VM_LOCKED_MASK cleared on the whole source VMA
    /// (no split, no merge); its anon_vmas unlinked when all of it moved.
    fn dontunmap_complete(&mut self, vrm: &Vrm, new_vma: VmaState) {
        let Some(vma) = self.vma_lookup(vrm.addr) else {
            return;
        };
        let mut attrs = vma.attrs;
        attrs.flags.set(VmFlags::LOCKED, false);
        attrs.flags.set(VmFlags::LOCKONFAULT, false);
        if attrs != vma.attrs {
            self.event("mremap: dontunmap unlocks the source VMA");
        }
        self.set_attrs(vma.start, attrs);
        let whole = vrm.addr == vma.start && vrm.addr + vrm.old_len == vma.end;
        if new_vma.start != vma.start && whole {
            if let Some(v) = self.vmas.get_mut(&vma.start) {
                v.anon_vma = None;
            }
        }
    }
}

/// `check_mremap_params`: the checks before any VMA is looked at.
fn check_mremap_params(vrm: &Vrm) -> OpResult {
    if vrm.new_len == 0 {
        return Err(Errno::EINVAL);
    }
    let Some(new_addr) = vrm.new_addr else {
        return Ok(());
    };
    if vrm.dontunmap && vrm.old_len != vrm.new_len {
        return Err(Errno::EINVAL);
    }
    // vrm_overlaps()
    if vrm.addr < new_addr + vrm.new_len && new_addr < vrm.addr + vrm.old_len {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::testing::{lines, run, run_all};
    use crate::{Bugs, IntervalImpl, Switch};
    use uffd_vocab::Errno;

    /// 6f12be792fde: a grow in place from inside the VMA fails with the
    /// 6.1 extension pgoff, and still works from the VMA's start, or
    /// when the extension can merge into the next VMA with that pgoff.
    #[test]
    fn mremap_expand_inside_bug_refuses_a_grow_from_inside_the_vma() {
        let bug = Bugs::of(&[Switch::MremapExpandInside]);
        let mut imp = IntervalImpl::with_bugs(16, bug);
        let steps = run_all(&mut imp, "map 0 2 rw- anon\nmremap 1 1 3\nmremap 0 2 3");
        let results: Vec<_> = steps.iter().map(|s| s.0).collect();
        assert_eq!(results, [Ok(()), Err(Errno::ENOMEM), Ok(())]);
        assert_eq!(lines(&mut imp), ["[0,3) rw- anon@0 account maywrite"]);
        let mut fixed = IntervalImpl::new(16);
        let (r, _) = run(&mut fixed, "map 0 2 rw- anon\nmremap 1 1 3");
        assert_eq!(r, Ok(()));
        assert_eq!(lines(&mut fixed), ["[0,4) rw- anon@0 account maywrite"]);
        // The wrong pgoff of the extension [2,4), 0 + 1, is linear with a
        // next VMA at offset 3: the extension joins next instead (case 3)
        // and mremap succeeds.
        let mut imp = IntervalImpl::with_bugs(16, bug);
        let steps = run_all(
            &mut imp,
            "map 0 2 rw- shared-file=1@0\nmap 4 4 rw- shared-file=1@3\nmremap 1 1 3",
        );
        assert!(steps.iter().all(|s| s.0.is_ok()), "{steps:?}");
        assert_eq!(steps[2].1.merges, [3]);
        let split = lines(&mut imp);
        assert_eq!(split.len(), 2, "{split:?}");
        assert!(split[1].starts_with("[2,8) rw- file=1@1 "), "{split:?}");
    }

    /// 7e7757876f25: a move into the page before a compatible VMA extends
    /// it down (case 3) but leaves its pgoff; mmap's merge is not affected.
    #[test]
    fn mremap_case3_pgoff_bug_keeps_next_pgoff() {
        let bug = Bugs::of(&[Switch::MremapCase3Pgoff]);
        let trace = "map 1 4 rw- shared-file=1@1\nmap 8 1 rw- shared-file=1@0\nmremap 8 1 1 0";
        let mut imp = IntervalImpl::with_bugs(16, bug);
        let steps = run_all(&mut imp, trace);
        assert_eq!(steps[2].1.merges, [3]);
        assert_eq!(
            lines(&mut imp),
            ["[0,5) rw- file=1@1 shared mayshare maywrite"]
        );
        let mut fixed = IntervalImpl::new(16);
        run_all(&mut fixed, trace);
        assert_eq!(
            lines(&mut fixed),
            ["[0,5) rw- file=1@0 shared mayshare maywrite"]
        );
        let mut imp = IntervalImpl::with_bugs(16, bug);
        let (r, rep) = run(&mut imp, "map 2 2 rw- anon\nmap 0 2 rw- anon");
        assert_eq!((r, rep.merges), (Ok(()), vec![3]));
        assert_eq!(lines(&mut imp), ["[0,4) rw- anon@0 account maywrite"]);
    }

    #[test]
    fn grow_in_place_up_to_a_neighbour_merges_with_it() {
        let mut imp = IntervalImpl::new(16);
        let (r, rep) = run(&mut imp, "map 0 4 rw- anon\nmap 8 4 rw- anon\nmremap 0 4 8");
        assert_eq!(r, Ok(()));
        assert_eq!(lines(&mut imp), ["[0,12) rw- anon@0 account maywrite"]);
        assert!(
            rep.covered
                .contains(&"mremap: grow in place merges with the next VMA"),
            "{rep:?}"
        );
        // Grown into free pages only: no merge with a next VMA to report.
        let (r, rep) = run(&mut imp, "mremap 0 12 14");
        assert_eq!(r, Ok(()));
        assert!(rep.covered.contains(&"mremap: expand in place"), "{rep:?}");
        assert!(
            !rep.covered
                .contains(&"mremap: grow in place merges with the next VMA"),
            "{rep:?}"
        );
    }

    #[test]
    fn grow_in_place_needs_the_range_to_end_the_vma_and_room_after_it() {
        let mut imp = IntervalImpl::new(16);
        let steps = run_all(
            &mut imp,
            "map 0 8 rw- anon\nmremap 2 4 6\nmremap 0 8 10\nmap 9 1 r-- anon\nmremap 4 4 6\n\
             mremap 3 6 7\nmremap 8 2 3",
        );
        let results: Vec<_> = steps.iter().map(|s| s.0).collect();
        assert_eq!(
            results,
            [
                Ok(()),
                Err(Errno::ENOMEM),
                Ok(()),
                Ok(()),
                Err(Errno::ENOMEM),
                Err(Errno::ENOMEM),
                Err(Errno::EFAULT)
            ]
        );
    }

    #[test]
    fn dontunmap_unlocks_the_whole_source_vma_and_says_so_only_then() {
        const EVENT: &str = "mremap: dontunmap unlocks the source VMA";
        let mut imp = IntervalImpl::new(16);
        let (r, rep) = run(
            &mut imp,
            "map 0 8 rw- anon\nmlock 0 8 onfault\nmremap 2 2 2 12 dontunmap",
        );
        assert_eq!(r, Ok(()));
        assert!(rep.covered.contains(&EVENT), "{rep:?}");
        assert_eq!(
            lines(&mut imp),
            [
                "[0,8) rw- anon@0 account maywrite",
                "[12,14) rw- anon@12 account maywrite locked lockonfault"
            ]
        );
        // Not locked: nothing to unlock, nothing to say.
        let (r, rep) = run(&mut imp, "mremap 0 2 2 8 dontunmap");
        assert_eq!(r, Ok(()));
        assert!(!rep.covered.contains(&EVENT), "{rep:?}");
    }

    #[test]
    fn dontunmap_of_a_whole_written_vma_takes_its_anon_vma_away() {
        let mut imp = IntervalImpl::new(16);
        let (r, _) = run(
            &mut imp,
            "map 0 4 rw- anon\nfault 0\nmremap 0 4 4 8 dontunmap",
        );
        assert_eq!(r, Ok(()));
        assert_eq!(
            lines(&mut imp),
            [
                "[0,4) rw- anon@0 account maywrite",
                "[8,12) rw- anon@0 account maywrite anon_vma=0"
            ]
        );
    }
}
