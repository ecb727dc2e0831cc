//! The callers that build layouts: mmap (MAP_FIXED), munmap and mprotect,
//! shaped like Linux 6.5's `mmap_region`, `do_vmi_munmap`,
//! `do_mprotect_pkey` and `mprotect_fixup` (docs/kernel-rules.md §4).

use uffd_vocab::{Backing, Errno, Kind, Mode, OpResult, Page, Prot, VmFlags};

use crate::bugs::Switch;
use crate::merge::Vmg;
use crate::uffd::UnmapList;
use crate::{Attrs, IntervalImpl, VmaState};

impl IntervalImpl {
    /// mmap(MAP_FIXED): the flags of the new mapping, then `mmap_region`.
    pub(crate) fn do_mmap(&mut self, start: Page, len: Page, prot: Prot, kind: Kind) -> OpResult {
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        const SHARED: u16 = VmFlags::SHARED | VmFlags::MAYSHARE | VmFlags::MAYWRITE;
        let account = if prot.write() { VmFlags::ACCOUNT } else { 0 };
        let (object, pgoff, flags) = match kind {
            Kind::Anon => (Backing::Anon, start, VmFlags::MAYWRITE | account),
            Kind::AnonNoreserve => (Backing::Anon, start, VmFlags::MAYWRITE | VmFlags::NORESERVE),
            Kind::Shmem => (Backing::Shmem(self.next_shmem), 0, SHARED),
            Kind::File { file, pgoff } => (Backing::File(file), pgoff, VmFlags::MAYWRITE | account),
            Kind::SharedFile { file, pgoff } => (Backing::File(file), pgoff, SHARED),
            Kind::SharedRoFile { file, pgoff } => (Backing::File(file), pgoff, VmFlags::MAYSHARE),
        };
        // MAP_SHARED with PROT_WRITE of an fd not open for writing.
        if prot.write() && !VmFlags(flags).has(VmFlags::MAYWRITE) {
            return Err(Errno::EACCES);
        }
        if kind == Kind::Shmem {
            // shmem_zero_setup(): a new object of the mapping's size.
            self.shmem_size.insert(self.next_shmem, len);
            self.next_shmem += 1;
        }
        let attrs = Attrs {
            prot,
            flags: VmFlags(flags),
            object,
            uffd: Mode::NONE,
            ctx: None,
        };
        self.mmap_region(start, start.saturating_add(len), pgoff, attrs);
        Ok(())
    }

    /// `mmap_region`: unmap what is there (its UNMAP events sent after the
    /// call, `vm_mmap_pgoff`'s `userfaultfd_unmap_complete`), then try to
    /// expand a neighbour over the new range (new-range shapes, cases 1-3),
    /// else insert it.
    fn mmap_region(&mut self, addr: Page, end: Page, pgoff: Page, attrs: Attrs) {
        let mut uf = UnmapList::new();
        self.munmap_range(addr, end, &mut uf);
        let prev = self.vma_before(addr);
        let vmg = Vmg::new_range("mmap_region", prev, addr, end, pgoff, attrs);
        if self.vma_merge(vmg).is_none() {
            let vma = VmaState {
                start: addr,
                end,
                pgoff,
                attrs,
                anon_vma: None,
            };
            self.vmas.insert(addr, vma);
        }
        self.userfaultfd_unmap_complete(uf);
    }

    /// munmap (`__vm_munmap`): holes are fine; no merge. The UNMAP events
    /// go after the unmapping (`userfaultfd_unmap_complete`).
    pub(crate) fn do_munmap(&mut self, start: Page, len: Page) -> OpResult {
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        let mut uf = UnmapList::new();
        self.munmap_range(start, start.saturating_add(len), &mut uf);
        self.userfaultfd_unmap_complete(uf);
        Ok(())
    }

    /// `do_vmi_align_munmap`: split the VMAs at the edges, remove what is
    /// inside, each first passed to `userfaultfd_unmap_prep` with the whole
    /// range, in address order (`vms_gather_munmap_vmas`), gathering into
    /// `uf`. O(log n + k).
    pub(crate) fn munmap_range(&mut self, start: Page, end: Page, uf: &mut UnmapList) {
        if let Some(vma) = self.vma_lookup(start).filter(|v| v.start < start) {
            self.split(vma.start, start);
        }
        if let Some(vma) = self.vma_lookup(end).filter(|v| v.start < end) {
            self.split(vma.start, end);
        }
        let doomed: Vec<VmaState> = self.vmas.range(start..end).map(|(_, v)| *v).collect();
        for vma in doomed {
            self.userfaultfd_unmap_prep(vma, start, end, uf);
            self.vmas.remove(&vma.start);
        }
        // unmap_region(): the pages go with the mappings, and the markers
        // with the page tables (ZAP_FLAG_DROP_MARKER).
        self.drop_ptes(start, end);
    }

    /// `do_mprotect_pkey`: the range must start in a VMA; walk the VMAs left
    /// to right, stop at the first hole (ENOMEM) or the first VMA that may
    /// not become writable (EACCES), keeping the changes made before it.
    pub(crate) fn do_mprotect(&mut self, start: Page, len: Page, prot: Prot) -> OpResult {
        if len == 0 {
            return Ok(());
        }
        let end = start.saturating_add(len);
        let Some(first) = self.find_vma_intersection(start, end) else {
            return Err(Errno::ENOMEM);
        };
        if first.start > start {
            return Err(Errno::ENOMEM);
        }
        let mut prev = if start > first.start {
            Some(first)
        } else {
            self.vma_before(first.start)
        };
        let mut tmp = first.start;
        while let Some(vma) = self.find_vma_intersection(tmp, end) {
            if vma.start != tmp {
                return Err(Errno::ENOMEM);
            }
            // newflags >> 4 puts VM_MAY* in place of VM_*.
            if prot.write() && !vma.attrs.flags.has(VmFlags::MAYWRITE) {
                // 82f951340f25's bug: `if (tmp < end) error = -ENOMEM;`
                // after the walk, whatever ended it.
                if self.bugs.has(Switch::MprotectErrno) && tmp < end {
                    return Err(Errno::ENOMEM);
                }
                return Err(Errno::EACCES);
            }
            let newattrs = Attrs { prot, ..vma.attrs };
            let res =
                self.mprotect_fixup(&mut prev, vma, tmp.max(start), vma.end.min(end), newattrs);
            tmp = res.map_or(vma.end.min(end), |r| r.end);
        }
        if tmp < end {
            return Err(Errno::ENOMEM);
        }
        Ok(())
    }

    /// `mprotect_fixup`: VM_ACCOUNT bookkeeping, then merge or split.
    /// Returns the VMA that covers the range afterwards; `*pprev` becomes it.
    fn mprotect_fixup(
        &mut self,
        pprev: &mut Option<VmaState>,
        vma: VmaState,
        start: Page,
        end: Page,
        mut new: Attrs,
    ) -> Option<VmaState> {
        let old = vma.attrs;
        if new == old {
            *pprev = Some(vma);
            return Some(vma);
        }
        // Making a private mapping writable charges it; making an anonymous
        // one (`vma_is_anonymous`) unwritable again uncharges it while it has
        // no anon_vma (never faulted).
        if new.prot.write() {
            let charged = VmFlags::ACCOUNT | VmFlags::SHARED | VmFlags::NORESERVE;
            if !old.flags.has(charged) && !old.prot.write() {
                new.flags.set(VmFlags::ACCOUNT, true);
            }
        } else if old.flags.has(VmFlags::ACCOUNT)
            && old.object == Backing::Anon
            && !self.bugs.has(Switch::UnaccountedMprotect)
        {
            if vma.anon_vma.is_none() {
                new.flags.set(VmFlags::ACCOUNT, false);
            } else {
                self.event("mprotect keeps VM_ACCOUNT: the VMA has an anon_vma");
            }
        }
        let pgoff = vma.pgoff.wrapping_add(start.wrapping_sub(vma.start));
        let vmg = Vmg::existing("mprotect_fixup", *pprev, vma, start, end, pgoff, new);
        let res = self.vma_modify(vmg);
        *pprev = res;
        // "Private VM_LOCKED VMA becoming writable: trigger COW to avoid
        // major fault on access." The result is ignored.
        let locked = VmFlags::LOCKED | VmFlags::SHARED | VmFlags::LOCKONFAULT;
        let only_locked = old.flags.0 & locked == VmFlags::LOCKED;
        if only_locked && !old.prot.write() && new.prot.write() {
            if let Some(v) = res {
                self.event("mprotect populates a locked VMA made writable");
                // populate_vma_page_range(vma, start, end, NULL): no
                // FOLL_UNLOCKABLE, so userfaultfd answers SIGBUS (measured
                // on 6.18.44: no fault reaches the reader).
                let _ = self.populate_vma_page_range(v, start, end, false);
                // The faults may have given it an anon_vma: the next
                // VMA's merge sees the VMA as it is now.
                *pprev = self.vmas.get(&v.start).copied();
                return *pprev;
            }
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{lines, ok, run, run_all};
    use crate::IntervalImpl;
    use uffd_vocab::Errno;

    fn imp() -> IntervalImpl {
        IntervalImpl::new(64)
    }

    #[test]
    fn map_of_zero_length_is_einval() {
        let mut b = imp();
        assert_eq!(run(&mut b, "map 0 0 rw- anon").0, Err(Errno::EINVAL));
        assert_eq!(b.vma_count(), 0);
    }

    #[test]
    fn map_writable_of_read_only_fd_is_eacces() {
        let mut b = imp();
        let (r, _) = run(&mut b, "map 0 4 rw- shared-ro-file=0@0");
        assert_eq!(r, Err(Errno::EACCES));
        assert_eq!(b.vma_count(), 0);
        let (r, _) = run(&mut b, "map 0 4 r-- shared-ro-file=0@0");
        assert_eq!(r, Ok(()));
        assert_eq!(lines(&mut b), ["[0,4) r-- file=0@0 mayshare"]);
    }

    #[test]
    fn map_flags_per_kind() {
        let mut b = imp();
        let steps = run_all(
            &mut b,
            "map 0 2 rw- anon
             map 2 2 r-- anon
             map 4 2 rw- anon-noreserve
             map 6 2 rw- shmem
             map 8 2 rw- file=1@3
             map 10 2 r-- file=1@5
             map 12 2 rw- shared-file=2@0",
        );
        assert!(steps.iter().all(|s| s.0.is_ok()));
        assert_eq!(
            lines(&mut b),
            [
                "[0,2) rw- anon@0 account maywrite",
                "[2,4) r-- anon@2 maywrite",
                "[4,6) rw- anon@4 noreserve maywrite",
                "[6,8) rw- shmem#0@0 shared mayshare maywrite",
                "[8,10) rw- file=1@3 account maywrite",
                "[10,12) r-- file=1@5 maywrite",
                "[12,14) rw- file=2@0 shared mayshare maywrite",
            ]
        );
    }

    #[test]
    fn map_fixed_over_registered_range_replaces_it() {
        let mut b = imp();
        ok(
            &mut b,
            "map 0 20 rw- anon
             register 0 5 10 missing
             map 5 10 rw- anon",
        );
        assert_eq!(lines(&mut b), ["[0,20) rw- anon@0 account maywrite"]);
    }

    #[test]
    fn unmap_splits_at_edges_without_merging_and_allows_holes() {
        let mut b = imp();
        let (r, rep) = run(
            &mut b,
            "map 0 10 rw- anon
             map 20 10 rw- anon
             unmap 5 20",
        );
        assert_eq!(r, Ok(()));
        assert!(rep.merges.is_empty());
        assert_eq!(
            lines(&mut b),
            [
                "[0,5) rw- anon@0 account maywrite",
                "[25,30) rw- anon@25 account maywrite",
            ]
        );
        assert_eq!(run(&mut b, "unmap 40 4").0, Ok(()));
        assert_eq!(run(&mut b, "unmap 40 0").0, Err(Errno::EINVAL));
    }

    #[test]
    fn protect_of_zero_length_is_ok_without_change() {
        let mut b = imp();
        assert_eq!(run(&mut b, "protect 3 0 r--").0, Ok(()));
    }

    #[test]
    fn protect_starting_in_hole_is_enomem_without_change() {
        let mut b = imp();
        ok(&mut b, "map 4 4 rw- anon");
        assert_eq!(run(&mut b, "protect 2 4 r--").0, Err(Errno::ENOMEM));
        assert_eq!(run(&mut b, "protect 10 4 r--").0, Err(Errno::ENOMEM));
        assert_eq!(lines(&mut b), ["[4,8) rw- anon@4 account maywrite"]);
    }

    #[test]
    fn protect_across_hole_keeps_changes_before_it() {
        let mut b = imp();
        let (r, _) = run(
            &mut b,
            "map 0 4 rw- anon
             map 6 4 rw- anon
             protect 2 6 r--",
        );
        assert_eq!(r, Err(Errno::ENOMEM));
        assert_eq!(
            lines(&mut b),
            [
                "[0,2) rw- anon@0 account maywrite",
                "[2,4) r-- anon@2 maywrite",
                "[6,10) rw- anon@6 account maywrite",
            ]
        );
        // Past the last VMA: the same.
        let (r, _) = run(&mut b, "protect 6 8 r--");
        assert_eq!(r, Err(Errno::ENOMEM));
        assert_eq!(lines(&mut b)[2], "[6,10) r-- anon@6 maywrite");
    }

    #[test]
    fn protect_writable_without_maywrite_is_eacces_after_earlier_changes() {
        let mut b = imp();
        let (r, _) = run(
            &mut b,
            "map 0 4 r-- anon
             map 4 4 r-- shared-ro-file=0@0
             protect 0 8 rw-",
        );
        assert_eq!(r, Err(Errno::EACCES));
        assert_eq!(
            lines(&mut b),
            [
                "[0,4) rw- anon@0 account maywrite",
                "[4,8) r-- file=0@0 mayshare",
            ]
        );
    }

    #[test]
    fn protect_drops_account_on_anon_and_keeps_it_on_private_file() {
        let mut b = imp();
        ok(
            &mut b,
            "map 0 4 rw- anon
             map 8 4 rw- file=0@0
             map 16 4 r-- anon-noreserve
             protect 0 4 r--
             protect 8 4 r--
             protect 16 4 rw-",
        );
        assert_eq!(
            lines(&mut b),
            [
                "[0,4) r-- anon@0 maywrite",
                "[8,12) r-- file=0@0 account maywrite",
                "[16,20) rw- anon@16 noreserve maywrite",
            ]
        );
        // Writable again: charged again.
        ok(&mut b, "protect 0 4 rw-");
        assert_eq!(lines(&mut b)[0], "[0,4) rw- anon@0 account maywrite");
    }

    #[test]
    fn protect_to_same_prot_changes_nothing_and_tries_no_merge() {
        let mut b = imp();
        let (r, rep) = run(
            &mut b,
            "map 0 4 rw- anon
             protect 0 4 rw-",
        );
        assert_eq!(r, Ok(()));
        assert!(rep.merges.is_empty());
    }

    #[test]
    fn protect_over_many_vmas_chains_prev_and_merges_all() {
        let mut b = imp();
        let steps = run_all(
            &mut b,
            "map 0 16 rw- anon
             protect 2 1 r--
             protect 5 1 r--
             protect 9 3 r--
             protect 1 14 r--",
        );
        assert_eq!(
            lines(&mut b),
            [
                "[0,1) rw- anon@0 account maywrite",
                "[1,15) r-- anon@1 maywrite",
                "[15,16) rw- anon@15 account maywrite",
            ]
        );
        let last = &steps.last().unwrap().1;
        assert!(last.violations.is_empty(), "{:?}", last.violations);
        // Tail of [0,2) into [2,3), then twice whole-merge-both, then head of [12,16).
        assert_eq!(last.merges, [4, 6, 6, 5]);
    }
}
