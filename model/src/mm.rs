//! mmap, munmap and mprotect (rules 2 to 4).

use uffd_vocab::{Backing, Errno, Kind, Mode, OpResult, Page, Prot, VmFlags};

use crate::events::Unmapping;
use crate::page_model::{PageModel, PageState, Pte};

impl PageModel {
    /// mmap(MAP_FIXED) (rule 2): replaces every page of the range.
    pub fn map(&mut self, start: Page, len: Page, prot: Prot, kind: Kind) -> OpResult {
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        // A read-only fd gives no VM_MAYWRITE, and PROT_WRITE needs it.
        if matches!(kind, Kind::SharedRoFile { .. }) && prot.write() {
            return Err(Errno::EACCES);
        }
        let mut flags = VmFlags::default();
        let (backing, first_pgoff) = match kind {
            Kind::Anon | Kind::AnonNoreserve => (Backing::Anon, start),
            Kind::Shmem => {
                self.next_shmem += 1;
                self.shmem_size.push(len);
                (Backing::Shmem(self.next_shmem), 0)
            }
            Kind::File { file, pgoff }
            | Kind::SharedFile { file, pgoff }
            | Kind::SharedRoFile { file, pgoff } => (Backing::File(file), pgoff),
        };
        let shared = matches!(
            kind,
            Kind::Shmem | Kind::SharedFile { .. } | Kind::SharedRoFile { .. }
        );
        let read_only_fd = matches!(kind, Kind::SharedRoFile { .. });
        let noreserve = matches!(kind, Kind::AnonNoreserve);
        // MAP_SHARED of a read-only fd keeps VM_MAYSHARE but loses VM_SHARED
        // and VM_MAYWRITE.
        flags.set(VmFlags::SHARED, shared && !read_only_fd);
        flags.set(VmFlags::MAYSHARE, shared);
        flags.set(VmFlags::MAYWRITE, !read_only_fd);
        flags.set(VmFlags::NORESERVE, noreserve);
        // accountable_mapping(): private, writable, not NORESERVE.
        flags.set(VmFlags::ACCOUNT, !shared && !noreserve && prot.write());
        // What was mapped there is unmapped first (rule 41's UNMAP).
        self.unmap_pages(Self::range(start, len), Unmapping::Other);
        for (i, page) in self.pages[Self::range(start, len)].iter_mut().enumerate() {
            *page = Some(PageState {
                prot,
                backing,
                pgoff: first_pgoff + i as Page,
                flags,
                uffd: Mode::NONE,
                ctx: None,
                tag: 0,
                exclusive: true,
                anon_vma: None,
                pte: Pte::None,
                wp: false,
                apart: false,
            });
        }
        Ok(())
    }

    /// munmap (rule 3): holes are fine.
    pub fn unmap(&mut self, start: Page, len: Page) -> OpResult {
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        self.unmap_pages(Self::range(start, len), Unmapping::Other);
        Ok(())
    }

    /// mprotect (rule 4): VMA by VMA from `start`, as mprotect_fixup goes,
    /// each changed, the changed pages merged (rule 5) before a VMA is
    /// populated (rule 14) and at the end: merging once, not after each VMA,
    /// keeps the op linear in its pages (a page model finds a VMA by walking
    /// it). The first hole stops it with ENOMEM, keeping what was already
    /// changed.
    pub fn protect(&mut self, start: Page, len: Page, prot: Prot) -> OpResult {
        let end = (start + len) as usize;
        let mut i = start as usize;
        // The pages changed and not merged yet (see below).
        let mut pending: Vec<usize> = Vec::new();
        while i < end {
            if self.pages[i].is_none() {
                self.merge_around(&pending);
                return Err(Errno::ENOMEM);
            }
            let run = i..self.vma_end(i).min(end);
            let before = self.pages[run.clone()].to_vec();
            let mut populate = false;
            for page in &mut self.pages[run.clone()] {
                let p = page.as_mut().expect("one VMA: mapped");
                if prot.write() && !p.flags.has(VmFlags::MAYWRITE) {
                    self.merge_around(&pending);
                    return Err(Errno::EACCES);
                }
                let old = p.flags;
                let was_writable = p.prot.write();
                // Rule 14: a locked private page made writable is populated.
                let locked_private = old.has(VmFlags::LOCKED)
                    && !old.has(VmFlags::LOCKONFAULT)
                    && !old.has(VmFlags::SHARED);
                populate = locked_private && !was_writable && prot.write();
                if prot.write() {
                    let exempt = old.has(VmFlags::ACCOUNT)
                        || was_writable
                        || old.has(VmFlags::SHARED)
                        || old.has(VmFlags::NORESERVE);
                    if !exempt {
                        p.flags.set(VmFlags::ACCOUNT, true);
                    }
                } else if p.prot != prot
                    && old.has(VmFlags::ACCOUNT)
                    && p.backing == Backing::Anon
                    && p.anon_vma.is_none()
                {
                    // Private anonymous memory with no anon_vma gives its
                    // VM_ACCOUNT back (when its protection changes: the
                    // same protection changes nothing).
                    p.flags.set(VmFlags::ACCOUNT, false);
                }
                p.prot = prot;
            }
            pending.extend(self.changed_since(run.clone(), &before));
            if populate {
                self.merge_around(&std::mem::take(&mut pending));
                // Without a retry: no fault goes to a reader (rule 42).
                self.events.no_retry = true;
                for j in run.clone() {
                    if self.write_fault(j).is_err() {
                        break;
                    }
                }
                self.events.no_retry = false;
            }
            i = run.end;
        }
        self.merge_around(&pending);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{lines, run};
    use uffd_vocab::Errno;

    #[test]
    fn protect_stops_at_the_first_hole_keeping_earlier_changes() {
        let (m, r) = run(8, "map 0 3 rw- anon\nmap 4 4 rw- anon\nprotect 0 8 r--");
        assert_eq!(r[2], Err(Errno::ENOMEM));
        assert_eq!(
            lines(&m),
            [
                "[0,3) r-- anon@0 maywrite",
                "[4,8) rw- anon@4 account maywrite",
            ]
        );
    }

    #[test]
    fn shmem_objects_of_two_mmaps_never_merge() {
        let (m, _) = run(8, "map 0 4 rw- shmem\nmap 4 4 rw- shmem");
        assert_eq!(m.layout().len(), 2);
        let (m, _) = run(8, "map 0 8 rw- shmem\nprotect 2 2 r--");
        assert_eq!(m.layout().len(), 3);
        let (m, _) = run(8, "map 0 8 rw- shmem\nprotect 2 2 r--\nprotect 2 2 rw-");
        assert_eq!(m.layout().len(), 1);
    }
}
