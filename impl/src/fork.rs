//! fork(2): `dup_mmap` (kernel/fork.c in 6.18, mm/mmap.c before), as far
//! as the child's VMAs go.

use uffd_vocab::{Layout, Mode, Page, PteKind, PteState, VmFlags, Vma};

use crate::bugs::Switch;
use crate::pgtable::{shown, Pte};
use crate::uffd::ForkList;
use crate::{IntervalImpl, VmaState};

impl IntervalImpl {
    /// `dup_mmap`: the child's VMAs. VMA by VMA, with no merging: a
    /// VM_DONTCOPY VMA is not copied; each copy goes through
    /// `dup_userfaultfd` (without UFFD_FEATURE_EVENT_FORK it loses its uffd
    /// bits and ctx; with it, it keeps them), loses VM_LOCKED_MASK
    /// (`vm_flags_clear(tmp, VM_LOCKED_MASK)`); a VM_WIPEONFORK copy gets
    /// no anon_vma (and no pages), any other copy of a VMA with an
    /// anon_vma gets an anon_vma of its own (`anon_vma_fork`), and its
    /// page tables (`copy_page_range`). Then `dup_userfaultfd_complete`:
    /// one FORK event per ctx that kept a registration. The child exits
    /// before the next op, so only its layout is returned; the parent
    /// keeps its pages shared until a fault reuses them.
    pub(crate) fn dup_mmap(&mut self) -> Layout {
        let mut child = Vec::new();
        let mut child_ptes = Vec::new();
        let mut fresh = 0u32;
        let mut uf = ForkList::new();
        let parent: Vec<VmaState> = self.vmas.values().copied().collect();
        for v in parent {
            if v.attrs.flags.has(VmFlags::DONTCOPY) {
                continue;
            }
            let mut tmp = v.to_vma();
            self.dup_userfaultfd(&mut tmp, &mut uf);
            let wipe = tmp.flags.has(VmFlags::WIPEONFORK);
            tmp.anon_vma = if wipe {
                None
            } else {
                tmp.anon_vma.map(|_| {
                    fresh += 1;
                    fresh
                })
            };
            tmp.flags.set(VmFlags::LOCKED, false);
            tmp.flags.set(VmFlags::LOCKONFAULT, false);
            child.push(tmp);
            if !wipe {
                self.copy_page_range(&tmp, v, &mut child_ptes);
            }
        }
        if child
            .windows(2)
            .any(|w| w[0].end == w[1].start && w[0].mergeable_with(&w[1]))
        {
            self.event("fork child keeps a boundary between equal VMAs");
        }
        self.dup_userfaultfd_complete(uf);
        Layout::new(child).with_ptes(child_ptes)
    }

    /// `copy_page_range(dst_vma, src_vma)` into the child's entries, only
    /// where `vma_needs_copy`: the child's VMA is registered WP (its page
    /// tables hold the uffd-wp state), or the parent's has an anon_vma.
    /// `copy_present_pte` keeps the uffd-wp bit only where the child's VMA
    /// is registered WP (`userfaultfd_wp(dst_vma)`) and shares the
    /// parent's anonymous pages (`folio_try_dup_anon_rmap_pte`: no longer
    /// PageAnonExclusive in the parent); `copy_pte_marker` keeps a poison
    /// marker, and a uffd-wp one only where the child's VMA is registered
    /// WP.
    fn copy_page_range(&mut self, dst: &Vma, src: VmaState, out: &mut Vec<(Page, PteState)>) {
        // userfaultfd_wp(dst_vma)
        let dst_wp = dst.uffd.contains(Mode::WP);
        if !dst_wp && src.anon_vma.is_none() {
            return;
        }
        if dst_wp && src.anon_vma.is_none() {
            self.event("fork: page tables copied for a VMA registered WP");
        }
        for (p, e) in self.ptes_in(src.start, src.end) {
            let copy = match e.kind {
                // The historic bug copies it into a VMA without
                // VM_UFFD_WP, as it is.
                PteKind::Marker if !dst_wp && !self.bugs.has(Switch::ForkCopiesUffdWpMarkers) => {
                    continue
                }
                PteKind::Marker | PteKind::Poison => e,
                _ => {
                    if e.kind == PteKind::Anon && e.exclusive {
                        self.ptes.insert(
                            p,
                            Pte {
                                exclusive: false,
                                ..e
                            },
                        );
                    }
                    Pte {
                        exclusive: false,
                        ..e.with_wp(e.wp && dst_wp)
                    }
                }
            };
            if dst_wp && copy.wp {
                self.event("fork: the child keeps uffd-wp bits and markers");
            }
            out.push((p, shown(copy.state(), src.attrs.prot.read())));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::ok;
    use crate::IntervalImpl;
    use uffd_vocab::{Backend, Op};

    const EVENT: &str = "fork child keeps a boundary between equal VMAs";

    fn child(trace: &str) -> (Vec<String>, bool) {
        let mut imp = IntervalImpl::new(16);
        ok(&mut imp, trace);
        let o = imp.step(&Op::Fork).unwrap();
        (o.layout.lines(), o.report.covered.contains(&EVENT))
    }

    #[test]
    fn the_child_keeps_the_parents_boundaries_and_says_so_only_then() {
        let (layout, kept) = child("map 8 8 rw- anon\nregister 0 12 4 wp");
        assert_eq!(
            layout,
            [
                "[8,12) rw- anon@8 account maywrite",
                "[12,16) rw- anon@12 account maywrite"
            ]
        );
        assert!(kept);
        // Different VMAs, or equal ones with a hole between: no event.
        assert!(!child("map 0 4 rw- anon\nmap 4 4 r-- anon").1);
        assert!(!child("map 0 4 rw- anon\nmap 5 4 rw- anon").1);
    }

    #[test]
    fn dontfork_is_a_hole_and_wipeonfork_has_no_anon_vma() {
        let (layout, _) = child(
            "map 0 8 rw- anon\nfault 0\nmadvise 0 2 dontfork\nmadvise 4 2 wipeonfork\nmlock 6 2",
        );
        assert_eq!(
            layout,
            [
                "[2,4) rw- anon@2 account maywrite anon_vma=0",
                "[4,6) rw- anon@4 account maywrite wipeonfork",
                "[6,8) rw- anon@6 account maywrite anon_vma=1"
            ]
        );
    }
}
