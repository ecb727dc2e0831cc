//! madvise with the advices that change VMA flags, shaped like Linux's
//! mm/madvise.c: `madvise_walk_vmas` (a hole makes the result ENOMEM and
//! the walk goes on; an error from a VMA ends it) and `madvise_update_vma`
//! (nothing to do when the flags do not change, else `vma_modify_flags`:
//! merge or split). See docs/kernel-rules.md §14.

use uffd_vocab::{Advice, Backing, Errno, OpResult, Page, PteKind, VmFlags};

use crate::pgtable::{vma_is_anonymous, Zap};
use crate::{IntervalImpl, VmaState};

/// Coverage events: each madvise flag set and cleared.
pub const FLAG_EVENTS: [(u16, &str, &str); 6] = [
    (
        VmFlags::DONTCOPY,
        "madvise sets dontcopy",
        "madvise clears dontcopy",
    ),
    (
        VmFlags::WIPEONFORK,
        "madvise sets wipeonfork",
        "madvise clears wipeonfork",
    ),
    (
        VmFlags::DONTDUMP,
        "madvise sets dontdump",
        "madvise clears dontdump",
    ),
    (
        VmFlags::HUGEPAGE,
        "madvise sets hugepage",
        "madvise clears hugepage",
    ),
    (
        VmFlags::NOHUGEPAGE,
        "madvise sets nohugepage",
        "madvise clears nohugepage",
    ),
    (
        VmFlags::MERGEABLE,
        "madvise sets mergeable",
        "madvise clears mergeable",
    ),
];

impl IntervalImpl {
    /// `do_madvise` -> `madvise_walk_vmas` with `madvise_vma_behavior`.
    pub(crate) fn do_madvise(&mut self, start: Page, len: Page, advice: Advice) -> OpResult {
        if len == 0 {
            return Ok(());
        }
        let end = start.saturating_add(len);
        let mut unmapped_error = false;
        // find_vma_prev(): the first VMA that ends above start.
        let Some(mut vma) = self.find_vma_intersection(start, end) else {
            return Err(Errno::ENOMEM);
        };
        let mut prev = if vma.start < start {
            Some(vma)
        } else {
            self.vma_before(vma.start)
        };
        let mut start = start;
        loop {
            if start < vma.start {
                unmapped_error = true;
                start = vma.start;
            }
            let tmp = vma.end.min(end);
            self.madvise_vma_behavior(&mut prev, vma, start, tmp, advice)?;
            start = tmp;
            if let Some(p) = prev.filter(|p| start < p.end) {
                start = p.end;
            }
            if start >= end {
                break;
            }
            match self.find_vma_intersection(start, end) {
                Some(next) => vma = next,
                None => {
                    // The rest of the range is a hole.
                    unmapped_error = true;
                    break;
                }
            }
        }
        if unmapped_error {
            Err(Errno::ENOMEM)
        } else {
            Ok(())
        }
    }

    /// `madvise_vma_behavior` for the flag advices: the new flags, then
    /// `madvise_update_vma`.
    fn madvise_vma_behavior(
        &mut self,
        prev: &mut Option<VmaState>,
        vma: VmaState,
        start: Page,
        end: Page,
        advice: Advice,
    ) -> OpResult {
        let mut flags = vma.attrs.flags;
        match advice {
            Advice::DontNeed | Advice::Free => {
                *prev = Some(vma);
                return self.madvise_dontneed_free(vma, start, end, advice);
            }
            Advice::Remove => {
                // `*prev = NULL; /* tell sys_madvise we drop mmap_lock */`
                *prev = None;
                return self.madvise_remove(vma, start, end);
            }
            Advice::DontFork => flags.set(VmFlags::DONTCOPY, true),
            Advice::DoFork => flags.set(VmFlags::DONTCOPY, false),
            Advice::WipeOnFork => {
                // `if (vma->vm_file || vma->vm_flags & VM_SHARED) return -EINVAL;`
                if vma.attrs.object != Backing::Anon || flags.has(VmFlags::SHARED) {
                    return Err(Errno::EINVAL);
                }
                flags.set(VmFlags::WIPEONFORK, true)
            }
            Advice::KeepOnFork => flags.set(VmFlags::WIPEONFORK, false),
            Advice::DontDump => flags.set(VmFlags::DONTDUMP, true),
            Advice::DoDump => flags.set(VmFlags::DONTDUMP, false),
            // hugepage_madvise(): the two are exclusive.
            Advice::Hugepage => {
                flags.set(VmFlags::NOHUGEPAGE, false);
                flags.set(VmFlags::HUGEPAGE, true)
            }
            Advice::NoHugepage => {
                flags.set(VmFlags::HUGEPAGE, false);
                flags.set(VmFlags::NOHUGEPAGE, true)
            }
            // ksm_madvise(): `vma_ksm_compatible` refuses shared memory
            // quietly (0, nothing set).
            Advice::Mergeable => {
                let shared = flags.has(VmFlags::SHARED) || flags.has(VmFlags::MAYSHARE);
                if !shared {
                    flags.set(VmFlags::MERGEABLE, true)
                }
            }
            Advice::Unmergeable => flags.set(VmFlags::MERGEABLE, false),
        }
        // madvise_update_vma()
        self.vma_modify_flags(
            "madvise_update_vma",
            prev,
            vma,
            start,
            end,
            flags,
            &FLAG_EVENTS,
        );
        Ok(())
    }
}

impl IntervalImpl {
    /// `madvise_dontneed_free`: `madvise_dontneed_free_valid_vma` (a
    /// VM_LOCKED VMA is EINVAL), `userfaultfd_remove` (the REMOVE event of
    /// the range, clipped to the VMA), then MADV_DONTNEED's
    /// `zap_page_range_single` or MADV_FREE's `madvise_free_single_vma`
    /// (private anonymous memory only, else EINVAL), whose
    /// `madvise_free_pte_range` clears poison markers and leaves the pages
    /// mapped, lazily freed (nothing reclaims them here).
    fn madvise_dontneed_free(
        &mut self,
        vma: VmaState,
        start: Page,
        end: Page,
        advice: Advice,
    ) -> OpResult {
        if vma.attrs.flags.has(VmFlags::LOCKED) {
            return Err(Errno::EINVAL);
        }
        // The VMA looked up again after the event (the lock was dropped)
        // is the same: nothing else runs meanwhile here.
        self.userfaultfd_remove(vma, start, end);
        if advice == Advice::DontNeed {
            if !self.ptes_in(start, end).is_empty() {
                self.event("madvise dontneed zaps page table entries");
            }
            self.zap_pte_range(vma, start, end, Zap::DontNeed);
            return Ok(());
        }
        if !vma_is_anonymous(&vma) {
            return Err(Errno::EINVAL);
        }
        for (p, e) in self.ptes_in(start, end) {
            if e.kind == PteKind::Poison {
                self.event("madvise free clears a poison marker");
                self.ptes.remove(&p);
            }
        }
        Ok(())
    }

    /// `madvise_remove`: VM_LOCKED is EINVAL, as is a VMA without a file;
    /// a file VMA not shared and writable (`vma_is_shared_maywrite`) is
    /// EACCES. Then `userfaultfd_remove` (the REMOVE event), and
    /// `vfs_fallocate(PUNCH_HOLE | KEEP_SIZE)` of the range's
    /// page offsets: `shmem_fallocate` unmaps them from every VMA of the
    /// object (`unmap_mapping_range`, even_cows false: anonymous COW pages
    /// and markers stay) and truncates them out of the page cache.
    fn madvise_remove(&mut self, vma: VmaState, start: Page, end: Page) -> OpResult {
        if vma.attrs.flags.has(VmFlags::LOCKED) || vma_is_anonymous(&vma) {
            return Err(Errno::EINVAL);
        }
        let shared_maywrite = VmFlags::SHARED | VmFlags::MAYWRITE;
        if vma.attrs.flags.0 & shared_maywrite != shared_maywrite {
            return Err(Errno::EACCES);
        }
        self.userfaultfd_remove(vma, start, end);
        let object = vma.attrs.object;
        let first = vma.pgoff.wrapping_add(start - vma.start);
        let last = first.wrapping_add(end - start);
        // unmap_mapping_range(): every VMA that maps the hole, O(n) as the
        // kernel's walk of the file's i_mmap tree is over its VMAs.
        let mapping: Vec<VmaState> = self
            .vmas
            .values()
            .filter(|v| v.attrs.object == object)
            .copied()
            .collect();
        for v in mapping {
            let lo = first.max(v.pgoff);
            let hi = last.min(v.pgoff.wrapping_add(v.len()));
            if lo < hi {
                let at = v.start + (lo - v.pgoff);
                self.zap_pte_range(v, at, at + (hi - lo), Zap::FileOnly);
            }
        }
        // shmem_truncate_range()
        let punched: Vec<(Backing, Page)> = self
            .page_cache
            .range((object, first)..(object, last))
            .map(|(k, _)| *k)
            .collect();
        if !punched.is_empty() {
            self.event("madvise remove punches the page cache");
        }
        for k in punched {
            self.page_cache.remove(&k);
        }
        Ok(())
    }
}
