//! A user write to one page: the write side of `handle_mm_fault`, shaped
//! like Linux's `do_anonymous_page`, `do_cow_fault` and `do_shared_fault`,
//! with `anon_vma_prepare` / `find_mergeable_anon_vma` /
//! `anon_vma_compatible` (mm/rmap.c, mm/vma.c) and userfaultfd's
//! `handle_userfault` (fs/userfaultfd.c): SIGBUS for a uffd with
//! UFFD_FEATURE_SIGBUS, else the fault goes to the uffd's reader, which
//! resolves it, and the access is tried again (rule 42): see
//! docs/kernel-rules.md §9 to §13 and §21.

use uffd_vocab::{
    Backing, Errno, Event, EventKind, Features, Fill, Mode, OpResult, Page, PteKind, VmFlags,
};

use crate::pgtable::Pte;
use crate::{IntervalImpl, VmaState};

/// The pte index (in its page table of 512) of arena page 0: the kernel
/// backend (and a `repro` program) aligns arena page 0 to 2 MiB, and
/// fault-around works in blocks aligned in addresses.
const ARENA_PTE_INDEX: Page = 0;

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

/// The kernel's `struct vm_fault` of one fault: the VMA, the page, and
/// the two `FAULT_FLAG_*` bits that matter here.
#[derive(Clone, Copy)]
pub(crate) struct Vmf {
    vma: VmaState,
    page: Page,
    /// FAULT_FLAG_WRITE.
    write: bool,
    /// FAULT_FLAG_ALLOW_RETRY: GUP with FOLL_UNLOCKABLE (a `locked`
    /// pointer), so `handle_userfault` may wait and answer VM_FAULT_RETRY.
    allow_retry: bool,
}

/// What `handle_mm_fault` answers, short of an error (VM_FAULT_SIGBUS and
/// the like, EFAULT to GUP's callers).
#[derive(Clone, Copy, PartialEq, Eq)]
enum VmFault {
    /// The page is there as the access needs it.
    Done,
    /// VM_FAULT_RETRY: userfaultfd's reader resolved the fault; GUP looks
    /// the VMA up again and faults from the start.
    Retry,
}

impl IntervalImpl {
    /// `process_vm_writev` (`write`) or `process_vm_readv` of one byte at
    /// `page`: `get_user_pages_remote` with or without FOLL_WRITE,
    /// faulting the page in if it is not there.
    pub(crate) fn handle_access_fault(&mut self, page: Page, write: bool) -> OpResult {
        // vma_lookup, then check_vma_flags(): FOLL_WRITE needs VM_WRITE, a
        // read VM_READ.
        let Some(vma) = self.vma_lookup(page) else {
            return Err(Errno::EFAULT);
        };
        let prot = vma.attrs.prot;
        if !(if write { prot.write() } else { prot.read() }) {
            return Err(Errno::EFAULT);
        }
        // pin_user_pages_remote() with a `locked`: FOLL_UNLOCKABLE.
        self.fault_page(vma, page, write, true)
    }

    /// GUP's `faultin_page` loop at `page` of `vma` for a write (`write`)
    /// or a read: `handle_mm_fault` until the page is there, again after
    /// each VM_FAULT_RETRY (`allow_retry`: FOLL_UNLOCKABLE) with the VMA
    /// looked up anew (resolving a fault may have given it an anon_vma).
    pub(crate) fn fault_page(
        &mut self,
        vma: VmaState,
        page: Page,
        write: bool,
        allow_retry: bool,
    ) -> OpResult {
        let mut vmf = Vmf {
            vma,
            page,
            write,
            allow_retry,
        };
        while self.handle_mm_fault(vmf)? == VmFault::Retry {
            vmf.vma = self.vma_lookup(page).ok_or(Errno::EFAULT)?;
        }
        Ok(())
    }

    /// `handle_mm_fault` at `page` of `vma` for a write (`write`) or a
    /// read: what `get_user_pages` does for a page that is not there, or
    /// there read-only and written to. (`process_vm_readv` pins the page
    /// with FOLL_PIN, so a read of an anonymous page that fork shared
    /// unshares it: `gup_must_unshare`, then `do_wp_page` reuses it.)
    fn handle_mm_fault(&mut self, vmf: Vmf) -> Result<VmFault, Errno> {
        let Vmf {
            vma, page, write, ..
        } = vmf;
        let private = !vma.attrs.flags.has(VmFlags::MAYSHARE);
        let pte = self.ptes.get(&page).copied();
        // handle_pte_marker(): a poison marker is VM_FAULT_HWPOISON.
        if pte.is_some_and(|e| e.kind == PteKind::Poison) {
            self.event("fault on a poison marker");
            return Err(Errno::EFAULT);
        }
        let wp_bit = pte.is_some_and(|e| e.wp);
        // handle_userfault() for a write to a uffd-wp pte or marker in a
        // VMA registered WP (do_wp_page, handle_pte_marker).
        if write && vma.attrs.uffd.contains(Mode::WP) && wp_bit {
            if pte.is_some_and(|e| e.kind == PteKind::Marker) {
                // A marker: handle_pte_marker() -> do_fault() brings the
                // page in for the write (do_cow_fault(): an anonymous
                // copy; do_shared_fault(): the cache page), with the
                // marker's uffd-wp bit, so write-protected, before the
                // write faults again on it.
                if self.do_fault(vmf, true)? == VmFault::Retry {
                    return Ok(VmFault::Retry);
                }
            }
            return self.handle_userfault(vmf, Mode::WP);
        }
        // pte_marker_handle_uffd_wp(): a marker in a VMA that is not
        // registered WP is cleared, then the fault is taken again.
        let marker = pte.filter(|e| e.kind == PteKind::Marker);
        if marker.is_some() && !vma.attrs.uffd.contains(Mode::WP) {
            self.ptes.remove(&page);
            return self.handle_mm_fault(vmf);
        }
        match pte.filter(|e| e.present()) {
            // follow_page_mask(): there, and only read; an anonymous page
            // shared by fork is unshared (reused: it is ours alone again).
            Some(e) if !write => {
                if e.kind == PteKind::Anon && !e.exclusive {
                    self.event("fault unshares an anonymous page");
                    self.ptes.insert(
                        page,
                        Pte {
                            exclusive: true,
                            ..e
                        },
                    );
                }
                return Ok(VmFault::Done);
            }
            // do_wp_page(): an anonymous page is reused (wp_page_reuse).
            Some(e) if e.kind == PteKind::Anon => {
                self.ptes.insert(
                    page,
                    Pte {
                        exclusive: true,
                        ..e
                    },
                );
                return Ok(VmFault::Done);
            }
            // do_wp_page(): a write to a page mapped read-only (the zero
            // page, a file page): wp_page_copy() on private memory starts
            // with vmf_anon_prepare() and copies the page (its tag) into
            // a new anonymous page whose pte has no uffd-wp bit;
            // userfaultfd sees nothing (no UFFDIO_WRITEPROTECT here).
            Some(e) => {
                if private {
                    self.anon_vma_prepare(vma);
                    self.ptes.insert(page, Pte::anon(e.tag));
                }
                return Ok(VmFault::Done);
            }
            None => {}
        }
        self.do_fault(vmf, marker.is_some())
    }

    /// `do_anonymous_page` / `do_fault` for a page with no pte (or a
    /// uffd-wp marker, `uffd_wp`, whose bit the new pte takes).
    fn do_fault(&mut self, vmf: Vmf, uffd_wp: bool) -> Result<VmFault, Errno> {
        let Vmf {
            vma, page, write, ..
        } = vmf;
        let private = !vma.attrs.flags.has(VmFlags::MAYSHARE);
        if private && write {
            // do_anonymous_page() and do_cow_fault() both start with
            // vmf_anon_prepare(): the VMA gets its anon_vma even if the
            // write is then refused. A read fault maps the zero page or the
            // file page and needs none.
            self.anon_vma_prepare(vma);
        }
        let uffd = vma.attrs.uffd;
        let new = if vma.attrs.object == Backing::Anon {
            // do_anonymous_page(): userfaultfd_missing() -> handle_userfault,
            // for the zero page of a read as for a write.
            if uffd.contains(Mode::MISSING) {
                return self.handle_userfault(vmf, Mode::MISSING);
            }
            if write {
                Pte::anon(0)
            } else {
                Pte::ZERO
            }
        } else {
            // __do_fault() -> shmem_fault() -> shmem_get_folio_gfp(): MINOR
            // when the folio is in the page cache, MISSING when it is not.
            let key = (vma.attrs.object, vma.pgoff.wrapping_add(page - vma.start));
            // do_read_fault(): do_fault_around() first, before the page
            // itself is looked up (and userfaultfd perhaps asked).
            if !write && !uffd_wp {
                self.do_fault_around(vma, page);
                if self.ptes.contains_key(&page) {
                    return Ok(VmFault::Done);
                }
            }
            // shmem_get_folio_gfp(): past i_size (a mapping mremap grew
            // past its object) is SIGBUS, before userfaultfd is asked.
            if self.past_i_size(key) {
                self.event("fault past the end of a shmem object");
                return Err(Errno::EFAULT);
            }
            let cached = self.cached(key);
            if cached.is_some() && uffd.contains(Mode::MINOR) {
                return self.handle_userfault(vmf, Mode::MINOR);
            }
            if cached.is_none() && uffd.contains(Mode::MISSING) {
                return self.handle_userfault(vmf, Mode::MISSING);
            }
            let tag = *self.page_cache.entry(key).or_insert(0);
            // do_cow_fault() copies the cache page into an anonymous one;
            // do_read_fault() and do_shared_fault() map the cache page.
            if private && write {
                Pte::anon(tag)
            } else {
                Pte::file(tag)
            }
        };
        // finish_fault(): a marker's uffd-wp bit goes to the new pte.
        self.ptes.insert(page, new.with_wp(uffd_wp));
        Ok(VmFault::Done)
    }

    /// `handle_userfault(vmf, reason)` (fs/userfaultfd.c): the fault is
    /// the registration's (`reason`: MISSING, WP or MINOR). A ctx opened
    /// without `faults` has UFFD_FEATURE_SIGBUS: VM_FAULT_SIGBUS, as is a
    /// fault without FAULT_FLAG_ALLOW_RETRY (mprotect's populate). Else
    /// the UFFD_EVENT_PAGEFAULT message (`userfault_msg`: the PAGEFAULT
    /// flags) is queued for the ctx's reader and the fault waits; the
    /// reader resolves it as the harness's monitor does, through the
    /// ioctls' own code (UFFDIO_COPY of a missing page with its tag
    /// `page + 1`, which may replace a uffd-wp marker; UFFDIO_CONTINUE of
    /// a minor one; UFFDIO_WRITEPROTECT mode 0 of a write-protected one),
    /// and wakes it: VM_FAULT_RETRY. A reader whose ioctl fails (EAGAIN
    /// while `mmap_changing` is up: a grown move's populate, before its
    /// REMAP is read) closes the uffd: `userfaultfd_release` takes the
    /// registrations away (and wakes the fault), the events the call still
    /// has for the ctx are dropped when sent (`ctx->released`), and the
    /// retried fault finds the VMA unregistered. A fault the reader got
    /// already in this step would wait for ever: EFAULT (as the model has
    /// it).
    fn handle_userfault(&mut self, vmf: Vmf, reason: Mode) -> Result<VmFault, Errno> {
        let Some(ctx) = vmf.vma.attrs.ctx else {
            return Err(Errno::EFAULT);
        };
        if !self.open.has(ctx, Features::FAULTS) {
            self.event(refused(vmf.vma, reason));
            return Err(Errno::EFAULT);
        }
        if !vmf.allow_retry {
            self.event("fault refused by userfaultfd: no FAULT_FLAG_ALLOW_RETRY");
            return Err(Errno::EFAULT);
        }
        let mut flags = if vmf.write { EventKind::WRITE } else { 0 };
        if reason.contains(Mode::WP) {
            flags |= EventKind::WP;
        }
        if reason.contains(Mode::MINOR) {
            flags |= EventKind::MINOR;
        }
        let page = vmf.page;
        let msg = Event::new(ctx, EventKind::Fault { page, flags });
        if self.events.contains(&msg) {
            self.event("fault: the same fault again, not resolved twice");
            return Err(Errno::EFAULT);
        }
        self.event(match flags & (EventKind::WP | EventKind::MINOR) {
            0 => "fault delivered to the uffd's reader (missing)",
            EventKind::WP => "fault delivered to the uffd's reader (uffd-wp bit)",
            _ => "fault delivered to the uffd's reader (minor)",
        });
        self.events.push(msg);
        let resolved = if reason.contains(Mode::WP) {
            self.userfaultfd_writeprotect(ctx, page, 1, false)
        } else if reason.contains(Mode::MINOR) {
            self.mfill_atomic(Fill::Continue, ctx, page, 1, false)
        } else {
            self.mfill_atomic(Fill::Copy, ctx, page, 1, false)
        };
        if resolved.is_err() {
            // The monitor cannot resolve it (the kernel would wait for
            // ever): it closes the uffd, which wakes the fault.
            self.event("fault not resolved: the reader closes its uffd");
            self.userfaultfd_release(ctx)?;
        }
        Ok(VmFault::Retry)
    }

    /// `do_fault_around` → `filemap_map_pages`: a read fault in a file
    /// VMA not registered WP or MINOR (`uffd_disable_fault_around`) maps,
    /// read-only, every page of the page cache in the fault-around window
    /// (`fault_around_bytes`, 64 KiB: the 16-pte-aligned block of the
    /// faulting page, within the VMA and its page table) whose pte is
    /// none.
    fn do_fault_around(&mut self, vma: VmaState, page: Page) {
        if vma.attrs.uffd.contains(Mode::WP) || vma.attrs.uffd.contains(Mode::MINOR) {
            return;
        }
        const NR_PAGES: Page = 16;
        const PTRS_PER_PTE: Page = 512;
        let pte_off = (page + ARENA_PTE_INDEX) % PTRS_PER_PTE;
        let vma_off = page - vma.start;
        let from_pte = (pte_off / NR_PAGES * NR_PAGES).max(pte_off - pte_off.min(vma_off));
        let to_pte = (from_pte + NR_PAGES)
            .min(PTRS_PER_PTE)
            .min(pte_off + vma.len() - vma_off);
        let (lo, hi) = (page - (pte_off - from_pte), page + (to_pte - pte_off));
        let mut mapped = false;
        for p in lo..hi {
            if self.ptes.contains_key(&p) {
                continue;
            }
            let key = (vma.attrs.object, vma.pgoff.wrapping_add(p - vma.start));
            if let Some(tag) = self.cached(key) {
                self.ptes.insert(p, Pte::file(tag));
                mapped |= p != page;
            }
        }
        if mapped {
            self.event("fault around maps cached neighbours");
        }
    }

    /// `mfill_file_over_size` / `shmem_get_folio_gfp`'s i_size check: is
    /// the page offset past the end of its shmem object? (The memfds are
    /// larger than any offset a mapping reaches.)
    pub(crate) fn past_i_size(&self, key: (Backing, Page)) -> bool {
        match key.0 {
            Backing::Shmem(id) => self.shmem_size.get(&id).is_some_and(|&size| key.1 >= size),
            _ => false,
        }
    }

    /// `anon_vma_prepare(vma)`: a VMA without an anon_vma reuses its next
    /// neighbour's, then its previous neighbour's, when
    /// `anon_vma_compatible` (and the neighbour's anon_vma chain is
    /// singular: always, with no fork); otherwise it gets a new one.
    pub(crate) fn anon_vma_prepare(&mut self, vma: VmaState) {
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

/// The coverage event of a fault userfaultfd refuses with SIGBUS.
fn refused(vma: VmaState, reason: Mode) -> &'static str {
    if reason.contains(Mode::WP) {
        "fault refused by userfaultfd (uffd-wp bit)"
    } else if reason.contains(Mode::MINOR) {
        "fault refused by userfaultfd (minor, page cached)"
    } else if vma.attrs.object == Backing::Anon {
        "fault refused by userfaultfd (missing, anonymous)"
    } else {
        "fault refused by userfaultfd (missing, page not cached)"
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
