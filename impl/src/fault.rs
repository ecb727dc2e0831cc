//! A user write to one page: the write side of `handle_mm_fault`, shaped
//! like Linux's `do_anonymous_page`, `do_cow_fault` and `do_shared_fault`,
//! with `anon_vma_prepare` / `find_mergeable_anon_vma` /
//! `anon_vma_compatible` (mm/rmap.c, mm/vma.c) and userfaultfd's
//! `handle_userfault` answering with SIGBUS (UFFD_FEATURE_SIGBUS): see
//! docs/kernel-rules.md §9 to §13.

use uffd_vocab::{Backing, Errno, Mode, OpResult, Page, VmFlags};

use crate::{IntervalImpl, VmaState};

/// Why `anon_vma_compatible(a, b)` says no, if it does.
fn anon_vma_incompatible(a: &VmaState, b: &VmaState) -> Option<&'static str> {
    if a.end != b.start {
        Some("not adjacent")
    } else if a.attrs.object != b.attrs.object {
        Some("another object")
    } else if a.attrs.uffd != b.attrs.uffd {
        // The VM_UFFD_* bits are vm_flags: they count; the ctx does not.
        Some("uffd bits differ")
    } else if a.attrs.flags != b.attrs.flags {
        Some("flags differ beyond prot")
    } else if b.pgoff != a.pgoff.wrapping_add(a.len()) {
        Some("page offsets not linear")
    } else {
        None
    }
}

impl IntervalImpl {
    /// `process_vm_writev` of one byte at `page`: `get_user_pages_remote`
    /// with FOLL_WRITE, faulting the page in if it is not there.
    pub(crate) fn handle_write_fault(&mut self, page: Page) -> OpResult {
        // vma_lookup, then check_vma_flags(): FOLL_WRITE needs VM_WRITE.
        let Some(vma) = self.vma_lookup(page) else {
            return Err(Errno::EFAULT);
        };
        if !vma.attrs.prot.write() {
            return Err(Errno::EFAULT);
        }
        self.fault_page(vma, page, true)
    }

    /// `handle_mm_fault` at `page` of `vma` for a write (`write`) or a
    /// read: what `get_user_pages` does for a page that is not there, or
    /// there read-only and written to.
    pub(crate) fn fault_page(&mut self, vma: VmaState, page: Page, write: bool) -> OpResult {
        let private = !vma.attrs.flags.has(VmFlags::MAYSHARE);
        // handle_userfault() for a write to a uffd-wp pte or marker in a
        // VMA registered WP (do_wp_page, handle_pte_marker): SIGBUS here.
        if write && vma.attrs.uffd.contains(Mode::WP) && self.uffd_wp.contains(&page) {
            if !self.ptes.contains_key(&page) {
                // A marker: handle_pte_marker() -> do_fault() brings the
                // page in, write-protected (do_cow_fault() preparing the
                // anon_vma first), before the write faults again.
                if private {
                    self.anon_vma_prepare(vma);
                }
                self.fault_page(vma, page, false)?;
            }
            self.event("fault refused by userfaultfd (uffd-wp bit)");
            return Err(Errno::EFAULT);
        }
        // pte_marker_handle_uffd_wp(): a marker in a VMA that is not
        // registered WP is cleared, then the fault is taken again.
        if !self.ptes.contains_key(&page) && !vma.attrs.uffd.contains(Mode::WP) {
            self.uffd_wp.remove(&page);
        }
        match self.ptes.get(&page).copied() {
            // follow_page_mask(): there, writable, or only read.
            Some(true) => return Ok(()),
            Some(false) if !write => return Ok(()),
            // do_wp_page(): a write to a page mapped read-only (the zero
            // page, a file page): wp_page_copy() on private memory starts
            // with vmf_anon_prepare(); userfaultfd sees nothing (no
            // UFFDIO_WRITEPROTECT here).
            Some(false) => {
                if private {
                    self.anon_vma_prepare(vma);
                    // wp_page_copy(): the new pte has no uffd-wp bit.
                    self.uffd_wp.remove(&page);
                }
                self.ptes.insert(page, true);
                return Ok(());
            }
            None => {}
        }
        if private && write {
            // do_anonymous_page() and do_cow_fault() both start with
            // vmf_anon_prepare(): the VMA gets its anon_vma even if the
            // write is then refused. A read fault maps the zero page or the
            // file page and needs none.
            self.anon_vma_prepare(vma);
        }
        let uffd = vma.attrs.uffd;
        if vma.attrs.object == Backing::Anon {
            // do_anonymous_page(): userfaultfd_missing() -> handle_userfault,
            // for the zero page of a read as for a write.
            if uffd.contains(Mode::MISSING) {
                self.event("fault refused by userfaultfd (missing, anonymous)");
                return Err(Errno::EFAULT);
            }
        } else {
            // __do_fault() -> shmem_fault() -> shmem_get_folio_gfp(): MINOR
            // when the folio is in the page cache, MISSING when it is not.
            let key = (vma.attrs.object, vma.pgoff.wrapping_add(page - vma.start));
            // shmem_get_folio_gfp(): past i_size (a mapping mremap grew
            // past its object) is SIGBUS, before userfaultfd is asked.
            if let Backing::Shmem(id) = vma.attrs.object {
                if self.shmem_size.get(&id).is_some_and(|&size| key.1 >= size) {
                    self.event("fault past the end of a shmem object");
                    return Err(Errno::EFAULT);
                }
            }
            let cached = self.page_cache.contains(&key);
            if cached && uffd.contains(Mode::MINOR) {
                self.event("fault refused by userfaultfd (minor, page cached)");
                return Err(Errno::EFAULT);
            }
            if !cached && uffd.contains(Mode::MISSING) {
                self.event("fault refused by userfaultfd (missing, page not cached)");
                return Err(Errno::EFAULT);
            }
            self.page_cache.insert(key);
        }
        self.ptes.insert(page, write);
        Ok(())
    }

    /// `anon_vma_prepare(vma)`: a VMA without an anon_vma reuses its next
    /// neighbour's, then its previous neighbour's, when
    /// `anon_vma_compatible` (and the neighbour's anon_vma chain is
    /// singular: always, with no fork); otherwise it gets a new one.
    fn anon_vma_prepare(&mut self, vma: VmaState) {
        // The VMA as it is now (a fault earlier in the same op may have
        // given it one already).
        let vma = self.vmas.get(&vma.start).copied().unwrap_or(vma);
        if vma.anon_vma.is_some() {
            return;
        }
        let anon_vma = self.find_mergeable_anon_vma(vma).unwrap_or_else(|| {
            self.event("fault: a new anon_vma");
            self.next_anon_vma += 1;
            self.next_anon_vma
        });
        if let Some(v) = self.vmas.get_mut(&vma.start) {
            v.anon_vma = Some(anon_vma);
        }
    }

    /// `find_mergeable_anon_vma(vma)`: try next first, then prev.
    fn find_mergeable_anon_vma(&mut self, vma: VmaState) -> Option<u32> {
        let next = self.vmas.range(vma.end..).next().map(|(_, v)| *v);
        if let Some(next) = next.filter(|n| n.anon_vma.is_some()) {
            match anon_vma_incompatible(&vma, &next) {
                None => {
                    self.event("fault: anon_vma reused from next");
                    return next.anon_vma;
                }
                Some("not adjacent") => {}
                Some(why) => self.event(reuse_refused(why)),
            }
        }
        let prev = self.vma_before(vma.start);
        if let Some(prev) = prev.filter(|p| p.anon_vma.is_some()) {
            match anon_vma_incompatible(&prev, &vma) {
                None => {
                    self.event("fault: anon_vma reused from prev");
                    return prev.anon_vma;
                }
                Some("not adjacent") => {}
                Some(why) => self.event(reuse_refused(why)),
            }
        }
        None
    }
}

/// The coverage event of a refused reuse.
fn reuse_refused(why: &'static str) -> &'static str {
    match why {
        "another object" => "fault: anon_vma reuse refused: another object",
        "uffd bits differ" => "fault: anon_vma reuse refused: uffd bits differ",
        "flags differ beyond prot" => "fault: anon_vma reuse refused: flags differ beyond prot",
        _ => "fault: anon_vma reuse refused: page offsets not linear",
    }
}
