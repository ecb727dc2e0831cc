//! Historic kernel bugs, as one table: [`HISTORIC_BUGS`]. Each entry says
//! what the kernel did, which released kernels did it ([`History`]: first
//! series with it, first without, the commits), which invariant catches it,
//! the length of its shortest failing sequence, and the [`Switch`]es of this
//! crate's code that put it back (`--inject-bug NAME`).
//!
//! A switch is a place in the kernel-shaped code that can do what the old
//! kernel did (`if self.bugs.has(Switch::StalePrev)`); a bug is one or more
//! switches together (the stale `prev` of 6.1 came with the unadjusted page
//! offset of 4.3). Adding a bug is one entry here, plus a new switch where
//! the code needs one; `switches_are_all_used` keeps the two in step.

use uffd_vocab::{History, Series};

/// A place in this crate's code that can behave as a historic kernel did.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Switch {
    /// userfaultfd_register/unregister pass the VMA *before* the one the
    /// range starts in as `prev`, even when `start` is strictly inside it.
    StalePrev,
    /// userfaultfd_register/unregister pass `vma.pgoff` for the piece
    /// instead of `vma.pgoff + (start - vma.start)`.
    UnadjustedPgoff,
    /// `is_mergeable_anon_vma` tests the anon_vma chain of the VMA merged
    /// INTO, so a range with an anon_vma cannot merge into one without.
    DisallowedAnonMerge,
    /// mprotect never gives VM_ACCOUNT back.
    UnaccountedMprotect,
    /// `do_mprotect_pkey` overwrites an error that ended the VMA walk early
    /// (EACCES) with ENOMEM.
    MprotectErrno,
    /// The userfaultfd_unregister loop does not `mas_pause()` after a merge
    /// or split, and reads on from the maple node they replaced.
    UnregisterIterator,
    /// vma_merge case 3 (a moved range merging into next, which extends
    /// down) leaves next's vm_pgoff as it was.
    MremapCase3Pgoff,
    /// Growing in place a range that starts inside its VMA proposes
    /// `vm_pgoff + old_len` for the extension.
    MremapExpandInside,
    /// The rejected v2 fix of May 2023: split the VMA to the range first,
    /// and offer vma_merge only a VMA that was not split at its start.
    SplitFirst,
    /// move_ptes() keeps the uffd-wp bits of a VMA that a move takes out
    /// of its registration (no UFFD_FEATURE_EVENT_REMAP).
    MremapKeepsUffdWp,
    /// userfaultfd_unregister clears VM_UFFD_WP but leaves the uffd-wp
    /// bits (and markers) of the range's ptes for later faults to find.
    UnregisterKeepsUffdWp,
    /// copy_nonpresent_pte copies a uffd-wp marker into the fork child's
    /// VMA, which has no VM_UFFD_WP.
    ForkCopiesUffdWpMarkers,
    /// move_pages_pte takes the zero page for a page it cannot move:
    /// `vm_normal_folio()` is NULL, EBUSY.
    MoveRefusesZeroPage,
    /// mremap unmaps its destination with no `uf` list: no UNMAP event.
    SilentDestinationUnmap,
}

impl Switch {
    pub const ALL: [Switch; 14] = [
        Switch::StalePrev,
        Switch::UnadjustedPgoff,
        Switch::DisallowedAnonMerge,
        Switch::UnaccountedMprotect,
        Switch::MprotectErrno,
        Switch::UnregisterIterator,
        Switch::MremapCase3Pgoff,
        Switch::MremapExpandInside,
        Switch::SplitFirst,
        Switch::MremapKeepsUffdWp,
        Switch::UnregisterKeepsUffdWp,
        Switch::ForkCopiesUffdWpMarkers,
        Switch::MoveRefusesZeroPage,
        Switch::SilentDestinationUnmap,
    ];
}

/// A set of [`Switch`]es turned on. Empty ([`Bugs::NONE`], the default) is
/// the fixed kernel.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Bugs(u16);

impl Bugs {
    /// No bug: the fixed kernel.
    pub const NONE: Bugs = Bugs(0);

    /// These switches on.
    pub const fn of(switches: &[Switch]) -> Bugs {
        let mut bits = 0;
        let mut i = 0;
        while i < switches.len() {
            bits |= 1 << switches[i] as u16;
            i += 1;
        }
        Bugs(bits)
    }

    /// Is `switch` on?
    pub const fn has(self, switch: Switch) -> bool {
        self.0 & (1 << switch as u16) != 0
    }

    /// Both sets together.
    pub const fn union(self, other: Bugs) -> Bugs {
        Bugs(self.0 | other.0)
    }

    /// The bugs of a list of [`HISTORIC_BUGS`] names, together.
    pub fn named(names: &[&str]) -> Result<Bugs, String> {
        names.iter().try_fold(Bugs::NONE, |b, name| {
            let h = HistoricBug::named(name).ok_or_else(|| format!("no historic bug {name:?}"))?;
            Ok(b.union(h.bugs))
        })
    }
}

impl std::fmt::Debug for Bugs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let on: Vec<Switch> = Switch::ALL.into_iter().filter(|s| self.has(*s)).collect();
        write!(f, "Bugs{on:?}")
    }
}

/// One historic bug.
#[derive(Clone, Copy, Debug)]
pub struct HistoricBug {
    /// Its `--inject-bug` name.
    pub name: &'static str,
    /// What the kernel did, in a sentence, with where it was found and
    /// argued out.
    pub history: &'static str,
    /// The released kernels that have it; `None` for code that never was
    /// in a release (a rejected patch, a hypothetical the LKML thread
    /// argued about). A bug fixed inside the release candidates of the
    /// series that brought it has `since == fixed`: no release has it.
    pub kernels: Option<History>,
    /// The switches that put it back.
    pub bugs: Bugs,
    /// The invariant that catches it.
    pub caught_by: &'static str,
    /// The length of its shortest failing sequence (what `explore` finds).
    pub shortest: usize,
}

impl HistoricBug {
    /// The entry of this `--inject-bug` name.
    pub fn named(name: &str) -> Option<&'static HistoricBug> {
        HISTORIC_BUGS.iter().find(|h| h.name == name)
    }

    /// Does a released kernel of `series` have it?
    pub fn in_series(&self, series: Series) -> bool {
        self.kernels.is_some_and(|k| k.has(series))
    }
}

const fn series(major: u16, minor: u16) -> Option<Series> {
    Some(Series::new(major, minor))
}

/// Every historic bug the implementation can put back.
pub const HISTORIC_BUGS: &[HistoricBug] = &[
    HistoricBug {
        name: "stale-prev",
        history:
            "userfaultfd_register/unregister as in 6.1 to 6.4-rc: vma_merge is handed the VMA \
                  before a range that starts inside a VMA (and the unadjusted pgoff of 4.3+); \
                  VM_WARN_ON, found by syzkaller, fixed May 2023",
        kernels: Some(History {
            since: series(6, 1),
            fixed: series(6, 4),
            introduced_by: Some("69dbe6daf104"),
            fixed_by: Some("270aa0106206"),
            again: None,
        }),
        bugs: Bugs::of(&[Switch::StalePrev, Switch::UnadjustedPgoff]),
        caught_by: "impl-internal",
        shortest: 2,
    },
    HistoricBug {
        name: "stale-prev-fixed-pgoff",
        history: "the stale prev with the pgoff already fixed: merge case 8 then takes the whole \
                  VMA and silently unmaps [vm_start, start) (the LKML thread's point: the pgoff \
                  bug had hidden it)",
        kernels: None,
        bugs: Bugs::of(&[Switch::StalePrev]),
        caught_by: "impl-internal",
        shortest: 2,
    },
    HistoricBug {
        name: "unadjusted-pgoff",
        history: "userfaultfd_register/unregister 4.3 to 6.4-rc: vma_merge is handed the whole \
                  VMA's pgoff, not the piece's, so case 4 never merges; fixed May 2023",
        kernels: Some(History {
            since: series(4, 3),
            fixed: series(6, 4),
            introduced_by: Some("86039bd3b4e6"),
            fixed_by: Some("5543d3c43c41"),
            again: None,
        }),
        bugs: Bugs::of(&[Switch::UnadjustedPgoff]),
        caught_by: "same-layout",
        shortest: 3,
    },
    HistoricBug {
        name: "disallowed-anon-merge",
        history: "is_mergeable_anon_vma tests the anon_vma chain of the VMA merged into, so a \
                  faulted range cannot merge into an unfaulted neighbour; to 6.15, fixed by \
                  879bca0a2c4f in 6.16",
        kernels: Some(History {
            since: None,
            fixed: series(6, 16),
            introduced_by: None,
            fixed_by: Some("879bca0a2c4f"),
            again: None,
        }),
        bugs: Bugs::of(&[Switch::DisallowedAnonMerge]),
        caught_by: "same-layout",
        shortest: 3,
    },
    HistoricBug {
        name: "split-first",
        history: "the rejected v2 of the May 2023 fix (\"mm: userfaultfd: avoid passing an \
                  invalid range to vma_merge()\", 6.4-rc): split the VMA to the range first, \
                  merge only a VMA not split at its start, so such a piece never merges \
                  with its next neighbour (the LKML thread's fragmentation objection)",
        kernels: None,
        bugs: Bugs::of(&[Switch::SplitFirst]),
        caught_by: "same-layout",
        shortest: 3,
    },
    HistoricBug {
        name: "unaccounted-mprotect",
        history: "mprotect never gives VM_ACCOUNT back, so RW->R leaves `ac` on unfaulted \
                  anonymous memory; before \"mm/mprotect: allow unfaulted VMAs to be unaccounted \
                  on mprotect()\" (MM updates for 6.7)",
        kernels: Some(History {
            since: None,
            fixed: series(6, 7),
            introduced_by: None,
            fixed_by: None,
            again: None,
        }),
        bugs: Bugs::of(&[Switch::UnaccountedMprotect]),
        caught_by: "same-layout",
        shortest: 2,
    },
    HistoricBug {
        name: "mprotect-errno",
        history: "do_mprotect_pkey overwrites an error that ended the VMA walk early (EACCES) \
                  with ENOMEM; 6.2, fixed by 82f951340f25 (6.3-rc, April 2023)",
        kernels: Some(History {
            since: series(6, 2),
            fixed: series(6, 3),
            introduced_by: None,
            fixed_by: Some("82f951340f25"),
            again: None,
        }),
        bugs: Bugs::of(&[Switch::MprotectErrno]),
        caught_by: "same-result",
        shortest: 2,
    },
    HistoricBug {
        name: "unregister-iterator",
        history: "userfaultfd_unregister did not mas_pause() after a merge or split, so its \
                  next mas_find() read the maple node they had replaced (syzbot: KASAN \
                  use-after-free Read in mas_next_nentry); 6.1-rc, since 69dbe6daf104, fixed \
                  by 59f2f4b8a757 (Liam Howlett, Nov 2022)",
        kernels: Some(History {
            since: series(6, 1),
            fixed: series(6, 1),
            introduced_by: Some("69dbe6daf104"),
            fixed_by: Some("59f2f4b8a757"),
            again: None,
        }),
        bugs: Bugs::of(&[Switch::UnregisterIterator]),
        caught_by: "impl-internal",
        shortest: 3,
    },
    HistoricBug {
        name: "mremap-case3-pgoff",
        history: "vma_merge case 3: a moved range merging into the next VMA extends it down \
                  without lowering its page offset (found when rpm, mremapping its db, \
                  segfaulted); 6.3, since 0503ea8f5ba7, fixed by 7e7757876f25",
        kernels: Some(History {
            since: series(6, 3),
            fixed: series(6, 4),
            introduced_by: Some("0503ea8f5ba7"),
            fixed_by: Some("7e7757876f25"),
            again: None,
        }),
        bugs: Bugs::of(&[Switch::MremapCase3Pgoff]),
        caught_by: "same-layout",
        shortest: 2,
    },
    HistoricBug {
        name: "mremap-expand-inside",
        history: "mremap growing in place a range that starts inside its VMA computes the \
                  extension's page offset from the range, not the VMA: ENOMEM instead of \
                  growing (rpm installs failed); 6.1, since ca3d76b0aa80, fixed by \
                  6f12be792fde (6.2-rc, 6.1.y)",
        kernels: Some(History {
            since: series(6, 1),
            fixed: series(6, 2),
            introduced_by: Some("ca3d76b0aa80"),
            fixed_by: Some("6f12be792fde"),
            again: None,
        }),
        bugs: Bugs::of(&[Switch::MremapExpandInside]),
        caught_by: "same-result",
        shortest: 2,
    },
    HistoricBug {
        name: "mremap-keeps-uffd-wp",
        history: "CVE-2025-21696: mremap moving a VMA registered WP by a uffd without \
                  UFFD_FEATURE_EVENT_REMAP unregisters the copy but move_ptes() keeps the \
                  uffd-wp bits of its ptes (and markers), in a VMA without VM_UFFD_WP; a later \
                  mprotect(PROT_WRITE) warned in page_table_check. Since anonymous uffd-wp \
                  (5.7), fixed by 0cef0bb836e3 (6.13; backported to 6.12.11, not to 6.6, 6.1 \
                  or 5.15)",
        kernels: Some(History {
            since: series(5, 7),
            fixed: series(6, 13),
            introduced_by: None,
            fixed_by: Some("0cef0bb836e3"),
            again: None,
        }),
        bugs: Bugs::of(&[Switch::MremapKeepsUffdWp]),
        caught_by: "same-layout",
        shortest: 4,
    },
    HistoricBug {
        name: "unregister-keeps-uffd-wp",
        history: "UFFDIO_UNREGISTER of a WP registration cleared VM_UFFD_WP and left the \
                  uffd-wp bits and markers of the range's ptes (a lazy reset: they were \
                  thought harmless in a VMA without the flag); David Hildenbrand's hugetlb \
                  report showed they were not. Since anonymous uffd-wp (5.7), fixed by \
                  \"mm/uffd: reset write protection when unregister with wp-mode\" (Peter \
                  Xu, 6.0, as its title and release read; not measured: the 6.1 kernel \
                  measured here has the fix)",
        kernels: Some(History {
            since: series(5, 7),
            fixed: series(6, 0),
            introduced_by: None,
            fixed_by: None,
            again: None,
        }),
        bugs: Bugs::of(&[Switch::UnregisterKeepsUffdWp]),
        caught_by: "same-layout",
        shortest: 4,
    },
    HistoricBug {
        name: "fork-copies-uffd-wp-markers",
        history: "fork without UFFD_FEATURE_EVENT_FORK copied a uffd-wp pte marker of a \
                  file-backed VMA with an anon_vma into the child, whose VMA has no \
                  VM_UFFD_WP (with a WARN_ON_ONCE in copy_nonpresent_pte). Since pte markers \
                  (5.19), fixed by \"mm/uffd: fix pte marker when fork() without fork event\" \
                  (Peter Xu, 6.2, backported; as its title and release read; not measured: \
                  the 6.1.y kernel measured here has the fix)",
        kernels: Some(History {
            since: series(5, 19),
            fixed: series(6, 2),
            introduced_by: None,
            fixed_by: None,
            again: None,
        }),
        bugs: Bugs::of(&[Switch::ForkCopiesUffdWpMarkers]),
        caught_by: "same-layout",
        shortest: 5,
    },
    HistoricBug {
        name: "move-refuses-the-zero-page",
        history: "UFFDIO_MOVE as it came in 6.8-rc refused a source page mapped to the \
                  zero page (a read fault's): vm_normal_folio() is NULL there, EBUSY. \
                  Fixed by \"userfaultfd: handle zeropage moves by UFFDIO_MOVE\" (Suren \
                  Baghdasaryan) in the same release cycle, as its title and date read: no \
                  release has it",
        kernels: Some(History {
            since: series(6, 8),
            fixed: series(6, 8),
            introduced_by: None,
            fixed_by: None,
            again: None,
        }),
        bugs: Bugs::of(&[Switch::MoveRefusesZeroPage]),
        caught_by: "same-result",
        shortest: 4,
    },
    HistoricBug {
        name: "silent-destination-unmap",
        history: "UFFD_FEATURE_EVENT_UNMAP as it came in 4.11-rc: mremap moving onto \
                  mapped pages unmapped its destination with no uf list, so a monitor \
                  registering the destination was not told (and went on resolving faults \
                  there). Fixed by \"userfaultfd: non-cooperative: notify about unmap of \
                  destination during mremap\" (Mike Rapoport), which added mremap's early \
                  unmap list, in the same release cycle, as its title and release read: no \
                  release has it",
        kernels: Some(History {
            since: series(4, 11),
            fixed: series(4, 11),
            introduced_by: None,
            fixed_by: None,
            again: None,
        }),
        bugs: Bugs::of(&[Switch::SilentDestinationUnmap]),
        caught_by: "same-events",
        shortest: 4,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bugs_are_named_from_the_table() {
        let b = Bugs::named(&["stale-prev", "disallowed-anon-merge"]).unwrap();
        assert_eq!(
            b,
            Bugs::of(&[
                Switch::StalePrev,
                Switch::UnadjustedPgoff,
                Switch::DisallowedAnonMerge
            ])
        );
        assert_eq!(Bugs::named(&[]).unwrap(), Bugs::NONE);
        assert!(Bugs::named(&["nope"]).unwrap_err().contains("nope"));
        for h in HISTORIC_BUGS {
            assert_eq!(Bugs::named(&[h.name]).unwrap(), h.bugs, "{}", h.name);
            assert_ne!(h.bugs, Bugs::NONE, "{}", h.name);
        }
        assert_eq!(
            format!("{b:?}"),
            "Bugs[StalePrev, UnadjustedPgoff, DisallowedAnonMerge]"
        );
    }

    /// Every switch is put back by some bug, every name is unique, every
    /// history is well-formed.
    #[test]
    fn switches_are_all_used() {
        for s in Switch::ALL {
            assert!(
                HISTORIC_BUGS.iter().any(|h| h.bugs.has(s)),
                "{s:?} puts back no bug"
            );
        }
        let mut names = std::collections::BTreeSet::new();
        for h in HISTORIC_BUGS {
            assert!(names.insert(h.name), "{} twice", h.name);
            if let Some(k) = h.kernels {
                if let (Some(s), Some(f)) = (k.since, k.fixed) {
                    assert!(s <= f, "{}", h.name);
                }
            }
        }
    }

    #[test]
    fn a_release_has_the_bugs_of_its_series() {
        let on = |major, minor| -> Vec<&str> {
            HISTORIC_BUGS
                .iter()
                .filter(|h| h.in_series(Series::new(major, minor)))
                .map(|h| h.name)
                .collect()
        };
        assert_eq!(
            on(6, 1),
            [
                "stale-prev",
                "unadjusted-pgoff",
                "disallowed-anon-merge",
                "unaccounted-mprotect",
                "mremap-expand-inside",
                "mremap-keeps-uffd-wp",
                "fork-copies-uffd-wp-markers"
            ]
        );
        // A bug fixed inside the release candidates is in no release.
        assert!(!on(6, 8).contains(&"move-refuses-the-zero-page"));
        assert!(on(5, 19).contains(&"unregister-keeps-uffd-wp"));
        // (6.12.11 and later have the fix of mremap-keeps-uffd-wp; the
        // series, from 6.12.0, has the bug.)
        assert_eq!(on(6, 12), ["disallowed-anon-merge", "mremap-keeps-uffd-wp"]);
        assert!(on(6, 18).is_empty());
    }
}
