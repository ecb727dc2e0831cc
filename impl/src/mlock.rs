//! mlock, mlock2(MLOCK_ONFAULT) and munlock, shaped like Linux's
//! mm/mlock.c: `apply_vma_lock_flags` (the range must start in a VMA; at the
//! first hole ENOMEM, the VMAs before it changed), `mlock_fixup` (nothing
//! when the flags stay, else `vma_modify_flags`), then `__mm_populate`
//! with `populate_vma_page_range` (mm/gup.c). See docs/kernel-rules.md §14.

use uffd_vocab::{Errno, OpResult, Page, VmFlags};

use crate::{IntervalImpl, VmaState};

/// Coverage events: the lock flags set and cleared.
const LOCK_EVENTS: [(u16, &str, &str); 2] = [
    (
        VmFlags::LOCKED,
        "mlock sets locked",
        "munlock clears locked",
    ),
    (
        VmFlags::LOCKONFAULT,
        "mlock sets lockonfault",
        "munlock clears lockonfault",
    ),
];

impl IntervalImpl {
    /// `do_mlock` (`locked`: VM_LOCKED, with `onfault` VM_LOCKONFAULT too)
    /// or `munlock` (`!locked`).
    pub(crate) fn do_mlock(
        &mut self,
        start: Page,
        len: Page,
        locked: bool,
        onfault: bool,
    ) -> OpResult {
        self.apply_vma_lock_flags(start, len, locked, onfault)?;
        if !locked {
            return Ok(());
        }
        // __mlock_posix_error_return(): EFAULT from populating is ENOMEM.
        self.mm_populate(start, len, false).map_err(|e| {
            self.event("mlock populate fails: ENOMEM, the range stays locked");
            match e {
                Errno::EFAULT => Errno::ENOMEM,
                e => e,
            }
        })
    }

    /// `apply_vma_lock_flags`: `vma_iter_load(start)` must find a VMA;
    /// then VMA by VMA, stopping at a hole with ENOMEM.
    fn apply_vma_lock_flags(
        &mut self,
        start: Page,
        len: Page,
        locked: bool,
        onfault: bool,
    ) -> OpResult {
        if len == 0 {
            return Ok(());
        }
        let end = start.saturating_add(len);
        let Some(first) = self.vma_lookup(start) else {
            return Err(Errno::ENOMEM);
        };
        let mut prev = if start > first.start {
            Some(first)
        } else {
            self.vma_before(first.start)
        };
        let mut nstart = start;
        let mut tmp = first.start;
        while let Some(vma) = self.find_vma_intersection(nstart, end) {
            if vma.start != tmp {
                return Err(Errno::ENOMEM);
            }
            let mut flags = vma.attrs.flags;
            flags.set(VmFlags::LOCKED, locked);
            flags.set(VmFlags::LOCKONFAULT, locked && onfault);
            tmp = vma.end.min(end);
            // mlock_fixup()
            self.vma_modify_flags(
                "mlock_fixup",
                &mut prev,
                vma,
                nstart,
                tmp,
                flags,
                &LOCK_EVENTS,
            );
            tmp = prev.map_or(tmp, |p| p.end.min(end).max(tmp));
            nstart = tmp;
            if nstart >= end {
                break;
            }
        }
        if tmp < end {
            return Err(Errno::ENOMEM);
        }
        Ok(())
    }

    /// `__mm_populate(start, len, ignore_errors)`: VMA by VMA,
    /// `populate_vma_page_range`; an error ends it (mlock), or, ignored,
    /// only that VMA (mremap's `mm_populate`).
    pub(crate) fn mm_populate(&mut self, start: Page, len: Page, ignore_errors: bool) -> OpResult {
        let end = start.saturating_add(len);
        let mut nstart = start;
        while nstart < end {
            let Some(vma) = self.find_vma_intersection(nstart, end) else {
                break;
            };
            let nend = end.min(vma.end);
            nstart = nstart.max(vma.start);
            let r = self.populate_vma_page_range(vma, nstart, nend, true);
            if r.is_err() && !ignore_errors {
                return r;
            }
            nstart = nend;
        }
        Ok(())
    }

    /// `populate_vma_page_range`: nothing for VM_LOCKONFAULT; a write
    /// fault (FOLL_WRITE) where the VMA is writable and not shared, a read
    /// fault otherwise; FOLL_FORCE only where the VMA is accessible, so
    /// PROT_NONE fails in `check_vma_flags` with EFAULT. `locked` is the
    /// kernel's `int *locked` (`__mm_populate` passes one, mprotect none):
    /// with it FOLL_UNLOCKABLE, so a fault userfaultfd takes may go to the
    /// uffd's reader (FAULT_FLAG_ALLOW_RETRY); without, it is SIGBUS.
    pub(crate) fn populate_vma_page_range(
        &mut self,
        vma: VmaState,
        start: Page,
        end: Page,
        locked: bool,
    ) -> OpResult {
        if vma.attrs.flags.has(VmFlags::LOCKONFAULT) {
            return Ok(());
        }
        let prot = vma.attrs.prot;
        if !prot.read() && !prot.write() && !prot.exec() {
            return Err(Errno::EFAULT);
        }
        let write = prot.write() && !vma.attrs.flags.has(VmFlags::SHARED);
        for page in start..end {
            // The VMA as it is after the faults before (an anon_vma).
            let vma = self.vma_lookup(page).unwrap_or(vma);
            self.fault_page(vma, page, write, locked)?;
        }
        Ok(())
    }
}
