//! The page tables: one entry per arena page that has one, in a `BTreeMap`
//! keyed by page (O(log n) per entry, O(log n + k) per range), the way
//! the kernel keeps them outside the VMA tree. An entry is a present pte
//! (the zero page, an anonymous page, a page of the page cache) or a pte
//! marker (uffd-wp, poison), with its uffd-wp bit, the content tag of the
//! page it maps (see `Op::Fill`), and for an anonymous page its
//! `PageAnonExclusive`. Zapping, shaped like mm/memory.c's
//! `zap_pte_range` and `zap_install_uffd_wp_if_needed`, lives here too.

use uffd_vocab::{Backing, Mode, Page, PteKind, PteState, VmFlags};

use crate::{IntervalImpl, VmaState};

/// One page table entry.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Pte {
    pub kind: PteKind,
    /// The uffd-wp bit (always set on a uffd-wp marker).
    pub wp: bool,
    /// The content tag of the page (0 for the zero page and markers).
    pub tag: u64,
    /// `PageAnonExclusive` of an anonymous page: cleared when fork shares
    /// it, set again by the next fault that reuses it.
    pub exclusive: bool,
}

impl Pte {
    /// A uffd-wp pte marker (`PTE_MARKER_UFFD_WP`).
    pub const MARKER: Pte = Pte {
        kind: PteKind::Marker,
        wp: true,
        tag: 0,
        exclusive: false,
    };
    /// A poison pte marker (`PTE_MARKER_POISONED`).
    pub const POISON: Pte = Pte {
        kind: PteKind::Poison,
        wp: false,
        tag: 0,
        exclusive: false,
    };
    /// The zero page.
    pub const ZERO: Pte = Pte {
        kind: PteKind::Zero,
        wp: false,
        tag: 0,
        exclusive: false,
    };
    /// A new anonymous page (`folio_add_new_anon_rmap(.., RMAP_EXCLUSIVE)`)
    /// holding `tag`.
    pub const fn anon(tag: u64) -> Pte {
        Pte {
            kind: PteKind::Anon,
            wp: false,
            tag,
            exclusive: true,
        }
    }
    /// A page of the page cache holding `tag`.
    pub const fn file(tag: u64) -> Pte {
        Pte {
            kind: PteKind::File,
            wp: false,
            tag,
            exclusive: false,
        }
    }
    /// The same entry with the uffd-wp bit `wp`.
    pub const fn with_wp(self, wp: bool) -> Pte {
        Pte { wp, ..self }
    }
    /// `pte_present()`.
    pub const fn present(self) -> bool {
        self.kind.present()
    }
    /// `is_pte_marker()`: no page, a marker (`pte_none_mostly` lets
    /// UFFDIO_COPY and UFFDIO_CONTINUE overwrite either kind).
    pub const fn is_marker(self) -> bool {
        matches!(self.kind, PteKind::Marker | PteKind::Poison)
    }
    /// The vocabulary's view of the entry.
    pub const fn state(self) -> PteState {
        PteState {
            kind: self.kind,
            wp: self.wp,
            tag: self.tag,
        }
    }
}

/// `vma_is_anonymous(vma)`: private anonymous memory (no `vm_ops`).
pub(crate) fn vma_is_anonymous(vma: &VmaState) -> bool {
    vma.attrs.object == Backing::Anon
}

/// `userfaultfd_wp(vma)`: VM_UFFD_WP.
pub(crate) fn userfaultfd_wp(vma: &VmaState) -> bool {
    vma.attrs.uffd.contains(Mode::WP)
}

/// `is_cow_mapping(vm_flags)`: private and may be written.
pub(crate) fn is_cow_mapping(vma: &VmaState) -> bool {
    !vma.attrs.flags.has(VmFlags::SHARED) && vma.attrs.flags.has(VmFlags::MAYWRITE)
}

/// How a zap treats what it finds (the kernel's `zap_details`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Zap {
    /// MADV_DONTNEED (`zap_page_range_single` without details): every
    /// page and poison marker goes; a file VMA registered WP keeps a
    /// uffd-wp bit as a marker, and keeps its uffd-wp markers.
    DontNeed,
    /// `unmap_mapping_range(.., even_cows = false)` of a hole punched in
    /// the file: only what maps the page cache (file pages, the zero
    /// page); anonymous COW pages and markers stay.
    FileOnly,
}

impl IntervalImpl {
    /// The page table entries as pagemap shows them, sorted, pushed onto
    /// `out`.
    pub(crate) fn push_pte_states(&self, out: &mut Vec<(Page, PteState)>) {
        // Both maps are sorted: one walk over the VMAs alongside the
        // entries finds each entry's VMA (`vma_lookup`) without a search.
        let mut vmas = self.vmas.iter().peekable();
        let mut vma: Option<&VmaState> = None;
        for (&p, e) in self.ptes.iter() {
            while let Some((_, v)) = vmas.next_if(|(&key, _)| key <= p) {
                vma = Some(v);
            }
            let readable = vma.is_some_and(|v| v.end > p && v.attrs.prot.read());
            out.push((p, shown(e.state(), readable)));
        }
    }

    /// The entries of `[start, end)`, in order (a copy, to edit the map
    /// while walking them).
    pub(crate) fn ptes_in(&self, start: Page, end: Page) -> Vec<(Page, Pte)> {
        if start >= end {
            return Vec::new();
        }
        self.ptes.range(start..end).map(|(&p, &e)| (p, e)).collect()
    }

    /// `free_pgtables` after an unmap (`ZAP_FLAG_DROP_MARKER`,
    /// `even_cows`): every entry of `[start, end)` goes, markers too.
    pub(crate) fn drop_ptes(&mut self, start: Page, end: Page) {
        for (p, _) in self.ptes_in(start, end) {
            self.ptes.remove(&p);
        }
    }

    /// `zap_pte_range` over `[start, end)` of `vma`, as `how` says.
    pub(crate) fn zap_pte_range(&mut self, vma: VmaState, start: Page, end: Page, how: Zap) {
        let anonymous = vma_is_anonymous(&vma);
        let wp_vma = userfaultfd_wp(&vma);
        for (p, e) in self.ptes_in(start.max(vma.start), end.min(vma.end)) {
            let zapped = match e.kind {
                PteKind::Zero | PteKind::File => true,
                PteKind::Anon => how == Zap::DontNeed,
                // "For anon: always drop the marker; for file: only drop
                // the marker if explicitly requested."
                PteKind::Marker => anonymous,
                // is_poisoned_swp_entry(): `if (!should_zap_cows(details))`.
                PteKind::Poison => how == Zap::DontNeed,
            };
            if !zapped {
                continue;
            }
            self.ptes.remove(&p);
            // zap_install_uffd_wp_if_needed(): a file VMA registered WP
            // keeps the bit of a wr-protected pte as a marker.
            if !anonymous && wp_vma && e.wp {
                self.event("zap leaves a uffd-wp marker");
                self.ptes.insert(p, Pte::MARKER);
            }
        }
    }

    /// The tag of the page cache page of `key`, if there is one.
    pub(crate) fn cached(&self, key: (Backing, Page)) -> Option<u64> {
        self.page_cache.get(&key).copied()
    }
}

/// What the layout shows of an entry: its content tag only where the page
/// is readable (the kernel backend reads tags through /proc/self/mem, which
/// not every kernel lets read a page without PROT_READ).
pub(crate) fn shown(state: PteState, readable: bool) -> PteState {
    PteState {
        tag: if readable { state.tag } else { 0 },
        ..state
    }
}
