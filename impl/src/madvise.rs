//! madvise with the advices that change VMA flags, shaped like Linux's
//! mm/madvise.c: `madvise_walk_vmas` (a hole makes the result ENOMEM and
//! the walk goes on; an error from a VMA ends it) and `madvise_update_vma`
//! (nothing to do when the flags do not change, else `vma_modify_flags`:
//! merge or split). See docs/kernel-rules.md §14.

use uffd_vocab::{Advice, Backing, Errno, OpResult, Page, VmFlags};

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
