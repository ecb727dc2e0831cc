//! Faults (rules 10 to 15): a write, a read, the anon_vma a write fault
//! gives, what userfaultfd refuses, and populating.

use std::ops::Range;

use uffd_vocab::{Backing, Errno, EventKind, Mode, OpResult, Page, Prot, VmFlags};

use crate::page_model::{PageModel, PageState, Pte};

/// The kernel's fault-around window, in pages (fault_around_bytes, 64 KiB
/// by default).
pub(crate) const FAULT_AROUND: usize = 16;

impl PageState {
    /// May a VMA of `self`'s attributes reuse the anon_vma of one of
    /// `next`'s, right after it (`anon_vma_compatible`, rule 10)? The same
    /// object, a linear page offset, flags (uffd bits included, the ctx
    /// not) that differ only in prot.
    fn anon_vma_compatible(&self, next: &PageState) -> bool {
        self.backing == next.backing
            && self.flags == next.flags
            && self.uffd == next.uffd
            && self.pgoff + 1 == next.pgoff
    }
}

impl PageModel {
    /// Rule 10: gives the VMA of `page` an anon_vma if it has none.
    pub(crate) fn anon_vma_prepare(&mut self, page: usize) {
        if self.pages[page].expect("mapped").anon_vma.is_some() {
            return;
        }
        let vma = self.vma_of(page);
        let first = self.pages[vma.start].expect("mapped");
        let last = self.pages[vma.end - 1].expect("mapped");
        let next = self.pages.get(vma.end).copied().flatten();
        let prev = vma.start.checked_sub(1).and_then(|p| self.pages[p]);
        let reuse = next
            .filter(|n| last.anon_vma_compatible(n))
            .and_then(|n| n.anon_vma)
            .or_else(|| {
                prev.filter(|p| p.anon_vma_compatible(&first))
                    .and_then(|p| p.anon_vma)
            });
        let id = reuse.unwrap_or_else(|| {
            self.next_anon_vma += 1;
            self.next_anon_vma
        });
        for p in self.pages[vma].iter_mut().flatten() {
            p.anon_vma = Some(id);
        }
    }

    /// A one-byte write (`write`, rule 11) or read (rule 13) at `page`:
    /// EFAULT where nothing is mapped or the page does not allow it.
    pub fn access(&mut self, page: Page, write: bool) -> OpResult {
        let i = page as usize;
        let Some(p) = self.pages[i] else {
            return Err(Errno::EFAULT);
        };
        if !(if write { p.prot.write() } else { p.prot.read() }) {
            return Err(Errno::EFAULT);
        }
        if write {
            return self.write_fault(i);
        }
        // process_vm_readv pins the page: an anonymous page a fork shared
        // is unshared first, and is exclusive again (rule 34).
        if p.pte == Pte::Written {
            if let Some(p) = self.pages[i].as_mut() {
                p.exclusive = true;
            }
        }
        self.read_fault(i)
    }

    /// Rule 15: a shmem page past the end of its object (a mapping grown
    /// by mremap) cannot be faulted in (SIGBUS, EFAULT for a write from
    /// the kernel), whatever userfaultfd says.
    pub(crate) fn beyond_eof(&self, p: &PageState) -> bool {
        match p.backing {
            Backing::Shmem(id) => self
                .shmem_size
                .get(id as usize - 1)
                .is_some_and(|&size| p.pgoff >= size),
            _ => false,
        }
    }

    /// Whether userfaultfd takes a fault on the not-there page `p` (rule
    /// 12), and as what: `Some(0)` a missing page, `Some(MINOR)` a page
    /// the page cache has (the PAGEFAULT flags, rule 42).
    fn uffd_takes(&self, p: &PageState) -> Option<u8> {
        let cached = p.backing != Backing::Anon && self.cache.contains(&(p.backing, p.pgoff));
        if !cached && p.uffd.contains(Mode::MISSING) {
            Some(0)
        } else if cached && p.uffd.contains(Mode::MINOR) {
            Some(EventKind::MINOR)
        } else {
            None
        }
    }

    /// A write to the mapped, writable page `i` (rule 11; a write-protect
    /// fault for a page that is there read-only).
    pub(crate) fn write_fault(&mut self, i: usize) -> OpResult {
        let p = self.pages[i].expect("mapped");
        // Rule 31: a write to a page with the uffd-wp bit in a VMA
        // registered WP goes to userfaultfd (EFAULT here); where the VMA is
        // not, the bit is ignored and kept.
        if p.wp && p.uffd.contains(Mode::WP) {
            // A marker (a page not there): the page comes in first,
            // write-protected (a private mapping gets its anon_vma first),
            // by the write's own fault, which userfaultfd may take (rule
            // 42: with the write flag; resolved, the write starts again).
            if p.pte == Pte::None && !self.beyond_eof(&p) {
                if let Some(flags) = self.uffd_takes(&p) {
                    // do_cow_fault prepares the anon_vma first.
                    if !p.flags.has(VmFlags::MAYSHARE) {
                        self.anon_vma_prepare(i);
                    }
                    if self.deliver_fault(i, flags | EventKind::WRITE) {
                        return self.write_fault(i);
                    }
                    return Err(Errno::EFAULT);
                }
            }
            if p.pte == Pte::None {
                if p.flags.has(VmFlags::MAYSHARE) {
                    self.read_fault(i)?;
                } else {
                    // do_cow_fault: a private copy of the file page, with
                    // the marker's bit.
                    self.anon_vma_prepare(i);
                    self.read_fault(i)?;
                    let tag = self.cache_tag(p.backing, p.pgoff);
                    if let Some(q) = self.pages[i].as_mut() {
                        q.pte = Pte::Written;
                        q.tag = tag;
                        q.exclusive = true;
                    }
                }
            }
            // Rule 42: delivered and resolved, the write is tried again.
            if self.deliver_fault(i, EventKind::WP | EventKind::WRITE) {
                return self.write_fault(i);
            }
            return Err(Errno::EFAULT);
        }
        if p.pte == Pte::Poison {
            return Err(Errno::EFAULT);
        }
        if p.pte == Pte::Written {
            // A page a fork shared takes a write-protect fault, and is
            // reused: exclusive again (rule 34).
            if let Some(p) = self.pages[i].as_mut() {
                p.exclusive = true;
            }
            return Ok(());
        }
        self.stale_marker_goes(i);
        if self.beyond_eof(&p) {
            return Err(Errno::EFAULT);
        }
        if !p.flags.has(VmFlags::MAYSHARE) {
            self.anon_vma_prepare(i);
        }
        if p.pte == Pte::None {
            if let Some(flags) = self.uffd_takes(&p) {
                if self.deliver_fault(i, flags | EventKind::WRITE) {
                    return self.write_fault(i);
                }
                return Err(Errno::EFAULT);
            }
            if p.backing != Backing::Anon {
                self.cache.insert((p.backing, p.pgoff));
            }
        }
        let private = !p.flags.has(VmFlags::MAYSHARE);
        let copied = matches!(p.pte, Pte::Read | Pte::Zero) && private;
        // A private page takes its content from the page it copies: the
        // page cache's (a file page), or none (the zero page, a new page).
        let tag = match p.pte {
            Pte::Zero => 0,
            _ if private && p.backing != Backing::Anon => self.cache_tag(p.backing, p.pgoff),
            _ => 0,
        };
        if let Some(p) = self.pages[i].as_mut() {
            p.pte = Pte::Written;
            p.tag = tag;
            p.exclusive = true;
            // Rule 31: a copy on write makes a new pte, without the bit.
            p.wp &= !copied;
        }
        Ok(())
    }

    /// Rule 31: a fault on a page that is not there but has the uffd-wp bit
    /// (a marker) in a VMA not registered WP drops the marker first.
    fn stale_marker_goes(&mut self, i: usize) {
        if let Some(p) = self.pages[i].as_mut() {
            if p.pte == Pte::None && !p.uffd.contains(Mode::WP) {
                p.wp = false;
            }
        }
    }

    /// A read of the mapped page `i` (rule 13): the zero page or the file
    /// page is mapped read-only, no anon_vma.
    fn read_fault(&mut self, i: usize) -> OpResult {
        let p = self.pages[i].expect("mapped");
        if p.pte == Pte::Poison {
            return Err(Errno::EFAULT);
        }
        if p.pte != Pte::None {
            return Ok(());
        }
        self.stale_marker_goes(i);
        if p.backing != Backing::Anon {
            self.fault_around(i);
        }
        if self.beyond_eof(&p) {
            return Err(Errno::EFAULT);
        }
        if let Some(flags) = self.uffd_takes(&p) {
            if self.deliver_fault(i, flags) {
                return self.read_fault(i);
            }
            return Err(Errno::EFAULT);
        }
        if p.backing != Backing::Anon {
            self.cache.insert((p.backing, p.pgoff));
        }
        if let Some(p) = self.pages[i].as_mut() {
            p.pte = Pte::Read;
        }
        Ok(())
    }

    /// Rule 13: a read fault in file or shmem memory first maps, read
    /// only, the pages of the page cache around it that have an empty
    /// entry: those of the same VMA in the window of [`FAULT_AROUND`]
    /// pages that starts at the aligned block the page is in (counted from
    /// arena page 0, which the kernel backend aligns), or at the VMA's
    /// start if that is later. Not in a VMA registered WP or MINOR.
    fn fault_around(&mut self, i: usize) {
        let p = self.pages[i].expect("mapped");
        if p.uffd.contains(Mode::WP) || p.uffd.contains(Mode::MINOR) {
            return;
        }
        let vma = self.vma_of(i);
        let from = (i - i % FAULT_AROUND).max(vma.start);
        let to = (from + FAULT_AROUND).min(vma.end);
        for j in from..to {
            let q = self.pages[j].expect("in the VMA");
            let empty = q.pte == Pte::None && !q.wp;
            if empty && self.cache.contains(&(q.backing, q.pgoff)) && !self.beyond_eof(&q) {
                if let Some(q) = self.pages[j].as_mut() {
                    q.pte = Pte::Read;
                }
            }
        }
    }

    /// Populating the mapped page `i` (rule 14): nothing where it is
    /// PROT_NONE (EFAULT), a write fault where it is writable and private,
    /// a read fault otherwise.
    pub(crate) fn populate_fault(&mut self, i: usize) -> OpResult {
        let p = self.pages[i].expect("mapped");
        if p.prot == Prot::NONE {
            Err(Errno::EFAULT)
        } else if p.prot.write() && !p.flags.has(VmFlags::SHARED) {
            self.write_fault(i)
        } else {
            self.read_fault(i)
        }
    }

    /// mm_populate of `range` after a locked VMA grew into it (rule 14): as
    /// mlock populates, but a failure only stops it (the result stays ok).
    pub(crate) fn populate_if_locked(&mut self, range: Range<usize>) {
        for i in range {
            let p = self.pages[i].expect("mapped");
            if !p.flags.has(VmFlags::LOCKED) || p.flags.has(VmFlags::LOCKONFAULT) {
                return;
            }
            if self.populate_fault(i).is_err() {
                return;
            }
        }
    }
}
