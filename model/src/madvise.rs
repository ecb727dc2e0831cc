//! madvise and mlock (rules 8 and 9): flags set page by page.

use uffd_vocab::{Advice, Backing, Errno, OpResult, Page, VmFlags};

use crate::page_model::PageModel;

impl PageModel {
    /// madvise with a flag-changing advice (rule 8): page by page; a hole
    /// makes the result ENOMEM but the pages after it are still changed; an
    /// advice a page cannot take (WIPEONFORK on anything but private
    /// anonymous memory) is EINVAL, the pages before it changed, those
    /// after not.
    pub fn madvise(&mut self, start: Page, len: Page, advice: Advice) -> OpResult {
        if advice.drops_pages() {
            return self.madvise_drop(start, len, advice);
        }
        let mut hole = false;
        for page in &mut self.pages[Self::range(start, len)] {
            let Some(p) = page else {
                hole = true;
                continue;
            };
            let f = &mut p.flags;
            match advice {
                // Rule 35, above.
                Advice::DontNeed | Advice::Remove | Advice::Free => {}
                Advice::DontFork => f.set(VmFlags::DONTCOPY, true),
                Advice::DoFork => f.set(VmFlags::DONTCOPY, false),
                Advice::WipeOnFork => {
                    if p.backing != Backing::Anon {
                        return Err(Errno::EINVAL);
                    }
                    f.set(VmFlags::WIPEONFORK, true)
                }
                Advice::KeepOnFork => f.set(VmFlags::WIPEONFORK, false),
                Advice::DontDump => f.set(VmFlags::DONTDUMP, true),
                Advice::DoDump => f.set(VmFlags::DONTDUMP, false),
                Advice::Hugepage => {
                    f.set(VmFlags::NOHUGEPAGE, false);
                    f.set(VmFlags::HUGEPAGE, true)
                }
                Advice::NoHugepage => {
                    f.set(VmFlags::HUGEPAGE, false);
                    f.set(VmFlags::NOHUGEPAGE, true)
                }
                // Shared memory takes it and changes nothing.
                Advice::Mergeable => {
                    if !f.has(VmFlags::MAYSHARE) {
                        f.set(VmFlags::MERGEABLE, true)
                    }
                }
                Advice::Unmergeable => f.set(VmFlags::MERGEABLE, false),
            }
        }
        if hole {
            Err(Errno::ENOMEM)
        } else {
            Ok(())
        }
    }

    /// mlock / mlock2(MLOCK_ONFAULT) (`locked`) or munlock (`!locked`),
    /// rule 9: page by page the flags change, the first hole stops it with
    /// ENOMEM (keeping what changed); the changed pages merge (rule 5);
    /// then mlock without onfault populates the range page by page (rule
    /// 14); the first fault that fails makes it ENOMEM, the flags staying
    /// set.
    pub fn mlock(&mut self, start: Page, len: Page, locked: bool, onfault: bool) -> OpResult {
        if len == 0 {
            return Ok(());
        }
        if self.pages[start as usize].is_none() {
            return Err(Errno::ENOMEM);
        }
        let before = self.pages[Self::range(start, len)].to_vec();
        let mut hole = false;
        for page in &mut self.pages[Self::range(start, len)] {
            let Some(p) = page else {
                hole = true;
                break;
            };
            p.flags.set(VmFlags::LOCKED, locked);
            p.flags.set(VmFlags::LOCKONFAULT, locked && onfault);
        }
        // The flags and merges of every VMA first, then populate.
        let changed = self.changed_since(Self::range(start, len), &before);
        self.merge_around(&changed);
        if hole {
            return Err(Errno::ENOMEM);
        }
        if !locked || onfault {
            return Ok(());
        }
        for i in Self::range(start, len) {
            if self.populate_fault(i).is_err() {
                return Err(Errno::ENOMEM);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{lines, run};
    use uffd_vocab::Errno;

    /// A hole makes madvise ENOMEM, the pages after it changed all the
    /// same; mlock stops at it.
    #[test]
    fn madvise_goes_past_a_hole_and_mlock_stops_at_it() {
        let (m, r) = run(
            8,
            "map 0 2 rw- anon\nmap 3 2 rw- anon\nmadvise 0 5 dontdump",
        );
        assert_eq!(r[2], Err(Errno::ENOMEM));
        assert_eq!(
            lines(&m),
            [
                "[0,2) rw- anon@0 account maywrite dontdump",
                "[3,5) rw- anon@3 account maywrite dontdump",
            ]
        );
        let (m, r) = run(8, "map 0 2 rw- anon\nmap 3 2 rw- anon\nmlock 0 5 onfault");
        assert_eq!(r[2], Err(Errno::ENOMEM));
        assert_eq!(
            lines(&m),
            [
                "[0,2) rw- anon@0 account maywrite locked lockonfault",
                "[3,5) rw- anon@3 account maywrite",
            ]
        );
    }
}
