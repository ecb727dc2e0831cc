//! userfaultfd: open, UFFDIO_REGISTER, UFFDIO_UNREGISTER and close (rules 6
//! and 7).

use uffd_vocab::{Backing, Errno, Features, Mode, OpResult, Page, VmFlags};

use crate::page_model::{PageModel, Pte};

impl PageModel {
    /// Opens `ctx` with `features`; an open ctx is closed first (rule 7).
    pub(crate) fn open(&mut self, ctx: u8, features: Features) -> OpResult {
        if self.open.contains(ctx) {
            let _ = self.close(ctx);
        }
        self.open.insert_with(ctx, features);
        Ok(())
    }

    /// UFFDIO_REGISTER (rule 6).
    pub fn register(&mut self, ctx: u8, start: Page, len: Page, mode: Mode) -> OpResult {
        self.open.insert(ctx);
        if mode.is_empty() || mode.has_unknown_bits() || len == 0 {
            return Err(Errno::EINVAL);
        }
        if !self.any_mapped(start, len) {
            return Err(Errno::EINVAL);
        }
        for i in Self::range(start, len) {
            let Some(p) = self.pages[i] else { continue };
            // MINOR needs shmem (every file kind here is a memfd: shmem).
            if mode.contains(Mode::MINOR) && p.backing == Backing::Anon {
                return Err(Errno::EINVAL);
            }
            if !p.flags.has(VmFlags::MAYWRITE) {
                return Err(Errno::EPERM);
            }
            if p.ctx.is_some_and(|c| c != ctx) || self.register_keeps_wp(ctx, &p, mode) {
                return Err(Errno::EBUSY);
            }
        }
        for p in self.pages[Self::range(start, len)].iter_mut().flatten() {
            let already = p.ctx == Some(ctx) && p.uffd.contains(mode);
            if !already {
                p.uffd = mode;
                p.ctx = Some(ctx);
            }
        }
        Ok(())
    }

    /// UFFDIO_UNREGISTER (rule 7).
    pub fn unregister(&mut self, ctx: u8, start: Page, len: Page) -> OpResult {
        self.open.insert(ctx);
        if len == 0 || !self.any_mapped(start, len) {
            return Err(Errno::EINVAL);
        }
        let range = Self::range(start, len);
        if self.pages[range.clone()]
            .iter()
            .flatten()
            .any(|p| p.ctx.is_some_and(|c| c != ctx))
            && !self.unregisters_any_ctx()
        {
            return Err(Errno::EINVAL);
        }
        for p in self.pages[range].iter_mut().flatten() {
            // Only a VMA registered WP has its bits cleared (rule 31).
            p.wp &= !p.uffd.contains(Mode::WP);
            p.uffd = Mode::NONE;
            p.ctx = None;
        }
        Ok(())
    }

    /// UFFDIO_WRITEPROTECT (rule 31): len 0 is EINVAL; left to right, a
    /// mapped page whose VMA is not registered with WP stops it with ENOENT
    /// (the pages before it stay changed), and so does a range with no page
    /// mapped; holes are skipped. Any ctx may do it. `on` sets the bit of
    /// every page that is there, and of every page of a non-anonymous VMA
    /// (a marker); `off` clears it.
    pub fn writeprotect(&mut self, ctx: u8, start: Page, len: Page, on: bool) -> OpResult {
        self.open.insert(ctx);
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        if !self.any_mapped(start, len) || self.writeprotect_refuses_vmas(start, len) {
            return Err(Errno::ENOENT);
        }
        for p in self.pages[Self::range(start, len)].iter_mut().flatten() {
            if !p.uffd.contains(Mode::WP) {
                return Err(Errno::ENOENT);
            }
            // A poison marker is never touched.
            if p.pte != Pte::Poison {
                p.wp = on && (p.backing != Backing::Anon || p.pte != Pte::None);
            }
        }
        Ok(())
    }

    /// close of the uffd `ctx` (rule 7).
    pub fn close(&mut self, ctx: u8) -> OpResult {
        if !self.open.contains(ctx) {
            return Err(Errno::EBADF);
        }
        self.open.remove(ctx);
        for p in self.pages.iter_mut().flatten() {
            if p.ctx == Some(ctx) {
                p.wp &= !p.uffd.contains(Mode::WP);
                p.uffd = Mode::NONE;
                p.ctx = None;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{lines, run};
    use uffd_vocab::Errno;

    #[test]
    fn unregister_tail_of_registered_next_to_plain_merges_right() {
        let (m, r) = run(
            20,
            "map 0 20 rw- anon
             register 0 0 10 missing
             unregister 0 5 5",
        );
        assert!(r.iter().all(|r| r.is_ok()));
        assert_eq!(
            lines(&m),
            [
                "[0,5) rw- anon@0 account maywrite uffd=missing ctx=0",
                "[5,20) rw- anon@5 account maywrite",
            ]
        );
    }

    #[test]
    fn register_errno_order_is_per_vma_left_to_right() {
        // First VMA owned by ctx 1 (EBUSY), second read-only shared (EPERM):
        // the first VMA's failure wins.
        let (_, r) = run(
            8,
            "map 0 4 rw- anon
             register 1 0 4 missing
             map 4 4 r-- shared-ro-file=0@0
             register 0 0 8 missing",
        );
        assert_eq!(r[3], Err(Errno::EBUSY));
        let (_, r) = run(
            8,
            "map 0 4 r-- shared-ro-file=0@0
             map 4 4 rw- anon
             register 1 4 4 missing
             register 0 0 8 missing+minor",
        );
        assert_eq!(r[3], Err(Errno::EPERM), "shmem passes MINOR, then EPERM");
    }

    #[test]
    fn register_replaces_the_mode_or_skips_a_superset() {
        let (m, _) = run(
            4,
            "map 0 4 rw- anon
             register 0 0 2 missing+wp
             register 0 0 4 missing",
        );
        assert_eq!(
            lines(&m),
            [
                "[0,2) rw- anon@0 account maywrite uffd=missing+wp ctx=0",
                "[2,4) rw- anon@2 account maywrite uffd=missing ctx=0",
            ]
        );
        let (m, _) = run(
            4,
            "map 0 4 rw- anon\nregister 0 0 4 missing\nregister 0 0 4 wp",
        );
        assert_eq!(
            lines(&m),
            ["[0,4) rw- anon@0 account maywrite uffd=wp ctx=0"]
        );
    }

    #[test]
    fn foreign_unregister_is_einval_and_changes_nothing() {
        let (m, r) = run(
            8,
            "map 0 8 rw- anon\nregister 1 0 4 missing\nunregister 0 0 8",
        );
        assert_eq!(r[2], Err(Errno::EINVAL));
        assert_eq!(m.layout().len(), 2);
    }

    #[test]
    fn close_releases_and_remerges() {
        let (m, r) = run(8, "map 0 8 rw- anon\nregister 2 2 4 wp\nclose 2\nclose 2");
        assert_eq!(r[2], Ok(()));
        assert_eq!(r[3], Err(Errno::EBADF));
        assert_eq!(lines(&m), ["[0,8) rw- anon@0 account maywrite"]);
    }
}
