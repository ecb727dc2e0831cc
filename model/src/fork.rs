//! fork (rule 19). Where the kernel departs from it, rule 22 says what it
//! does instead (crate::deviations).

use uffd_vocab::{Features, Layout, Mode, VmFlags};

use crate::page_model::{PageModel, Pte};

impl PageModel {
    /// fork (rule 19): the child's layout. The parent does not change.
    pub(crate) fn fork_child(&mut self) -> Layout {
        let mut child = self.clone();
        // The anonymous pages the child gets a copy of are shared with it,
        // exclusive to neither (rule 34).
        for p in self.pages.iter_mut().flatten() {
            let copied = p.anon_vma.is_some()
                && !p.flags.has(VmFlags::DONTCOPY)
                && !p.flags.has(VmFlags::WIPEONFORK);
            if copied && p.pte == Pte::Written && !p.flags.has(VmFlags::MAYSHARE) {
                p.exclusive = false;
            }
        }
        for page in &mut child.pages {
            let Some(p) = page else { continue };
            if p.flags.has(VmFlags::DONTCOPY) {
                *page = None;
                continue;
            }
            // Rule 41: a ctx with event-fork gives the child a uffd of its
            // own (shown as the parent's ctx number), and one FORK event.
            match p.ctx.filter(|&c| self.open.has(c, Features::FORK)) {
                Some(c) => self.fork_event(c),
                None => {
                    p.uffd = Mode::NONE;
                    p.ctx = None;
                }
            }
            // Rule 31: copy_pte_range keeps the uffd-wp bits (and markers)
            // only in a child VMA registered WP.
            let child_wp = p.uffd.contains(Mode::WP);
            p.wp &= child_wp;
            p.flags.set(VmFlags::LOCKED, false);
            p.flags.set(VmFlags::LOCKONFAULT, false);
            // Page tables are copied only for a VMA with an anon_vma or
            // registered WP (the others fault their pages in again, from
            // the page cache or the zero page); a wipe-on-fork VMA starts
            // empty.
            if p.flags.has(VmFlags::WIPEONFORK) {
                p.anon_vma = None;
                p.pte = Pte::None;
                p.wp = false;
            }
            if p.anon_vma.is_none() && !child_wp {
                p.pte = Pte::None;
            }
        }
        // Each child VMA is a copy of one of the parent's, with an anon_vma
        // of its own if the parent's had one (anon_vma_fork).
        let parent = self.layout();
        for (k, vma) in parent.vmas().iter().enumerate() {
            let fresh = u32::MAX - k as u32;
            for p in child.pages[vma.start as usize..vma.end as usize]
                .iter_mut()
                .flatten()
            {
                if p.anon_vma.is_some() {
                    p.anon_vma = Some(fresh);
                }
            }
        }
        // Then equal neighbours are one VMA (rule 5, which also ends every
        // boundary the parent kept, rule 20), unless rule 22.
        if !self.fork_keeps_boundaries(&mut child, &parent) {
            let all: Vec<usize> = (0..child.pages.len()).collect();
            child.merge_around(&all);
        }
        child.layout()
    }
}
