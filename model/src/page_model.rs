//! The naive reference: one entry per page, every op a loop over pages.
//!
//! Each page carries every attribute a VMA carries (docs/kernel-rules.md §1), including
//! its own page offset. The rules of the reference (§2 to §4) are applied
//! page by page, in address order, which is the kernel's VMA order: a VMA's
//! pages all share its attributes, so "the first VMA that fails a check" is
//! "the first page that fails it". The layout is derived: maximal runs of
//! pages with equal attributes and linear page offsets.
//!
//! Nothing here is clever on purpose. If a rule needs cleverness to be
//! written here, the rule is wrong or the model is the wrong place for it.
//!
//! ## Faults and anon_vma (docs/kernel-rules.md §9 to §13)
//!
//! Each page also records the identity of its VMA's anon_vma (or none),
//! whether it has been written (its page is there: a later write takes no
//! fault), and the model keeps the set of memfd and shmem pages that are in
//! the page cache. The rules, as the model applies them:
//!
//! 1. A write to a hole, or to a page without write permission: EFAULT,
//!    nothing changes.
//! 2. A write to a page already written: ok, nothing changes.
//! 3. Otherwise it is a write fault. On private memory (anonymous or a
//!    private memfd) the fault first gives the page's VMA an anon_vma if it
//!    has none, even when the write then fails: the next VMA's, if that one
//!    is adjacent, has one, the same object, a linear page offset and flags
//!    that differ only in prot (uffd bits count, the ctx does not); else the
//!    previous VMA's under the same test; else a new one. The whole VMA gets
//!    it.
//! 4. Then userfaultfd: MISSING refuses the write (EFAULT) when the page is
//!    not there: for anonymous memory, always; for a memfd or shmem page,
//!    when it is not in the page cache. MINOR refuses it when the page IS in
//!    the page cache. WP refuses nothing. Otherwise the write is done: the
//!    page is written, and a memfd or shmem page enters the page cache.
//! 5. Merging: after an op changes pages, two neighbouring VMAs at least one
//!    of which holds a changed page are one VMA when they are equal but for
//!    the anon_vma and one of them has none: the one without takes the
//!    other's. Neighbours with two different anon_vmas stay apart. Looked at
//!    left to right, so a range that could join two neighbours with
//!    different anon_vmas joins the left one.
//! 6. mprotect to a protection without write gives VM_ACCOUNT back only on
//!    private anonymous memory without an anon_vma, and only where the
//!    protection changes (a VMA left `r--` with VM_ACCOUNT and no anon_vma,
//!    which MREMAP_DONTUNMAP can leave, keeps it under `protect … r--`).
//! 7. A write to a page that is there read-only (rule 8) is a
//!    write-protect fault: ok, and on private memory it gives the VMA an
//!    anon_vma as rule 3 does; userfaultfd does not see it.
//! 8. A read fault (mlock populating read-only or shared memory) maps the
//!    zero page or the file page read-only: no anon_vma; MISSING and MINOR
//!    refuse it as they refuse a write.
//! 9. mlock (docs/kernel-rules.md §14): see [`PageModel::mlock`].
//! 10. mprotect goes VMA by VMA: it changes one, merges it (rule 5), and,
//!     when it made a locked (not lock-on-fault) private VMA writable,
//!     populates it with a write fault per page, stopping at the first
//!     refused page and ignoring the error; then the next VMA.
//!
//! 11. fork (docs/kernel-rules.md §16): the step's layout is the child's.
//!     The child has every page without DONTCOPY, without uffd bits and
//!     locks; a WIPEONFORK page is there, empty, without anon_vma; each VMA
//!     copied with an anon_vma gets one of its own. Then equal neighbours
//!     are one VMA (rule 5). The parent does not change.
//! 12. A boundary between equal pages that a deviation rule keeps (a
//!     page's `apart`) lasts until an op changes the flags of a page on
//!     either side of it (a fault, which changes only the anon_vma, does
//!     not); a map, munmap or mremap next to it ends it too.
//! 13. (Deviation `mremap-merges-with-old-registration`.) See rule 18.
//! 14. (Deviation `fork-keeps-parent-boundaries`.) The child keeps every
//!     boundary of the parent.
//! 15. A shmem page past the end of its object (a mapping mremap grew)
//!     cannot be faulted in: EFAULT, before userfaultfd is asked.
//! 16. mremap (docs/kernel-rules.md §15): a new length of 0 is EINVAL; with
//!     a destination, DONTUNMAP with a new length is EINVAL, and so is a
//!     destination overlapping the source. The same length with a
//!     destination is rule 17. Otherwise the first page must be mapped
//!     (EFAULT); in place, a shrink unmaps the tail and the same length
//!     does nothing; growing needs a length (EINVAL for 0 on private
//!     memory), a range inside one VMA (EFAULT) that ends it, and free
//!     pages after it (ENOMEM); the new pages copy the VMA's attributes,
//!     empty, merge, and are populated if it is locked (errors ignored).
//!     Moved with a new length: `[START, START+min(LEN, NEWLEN))` inside
//!     one VMA (EFAULT), the destination unmapped, the source's tail cut,
//!     then rule 18; LEN 0 of shared memory maps its pages a second time.
//! 17. The same length with a destination goes VMA by VMA from the first
//!     page (which must be mapped: EFAULT), each piece moved by rule 18 to
//!     the same distance from DST (holes stay holes, their destinations
//!     untouched). A registered VMA stops it with EFAULT, the pieces
//!     before moved; unless the range lies in it alone.
//! 18. A move: the copy is placed first, the source still there; each
//!     page takes its attributes along, private anonymous memory without an
//!     anon_vma takes the new address as page offset; the copy merges. A
//!     registration whose ctx has no UFFD_FEATURE_EVENT_REMAP does not go
//!     along: under rule 13 the copy merges with its old registration and
//!     the VMA it is then in loses its registration, whole, and stays
//!     apart from its neighbours. Then the source is unmapped, or, with
//!     DONTUNMAP, stays mapped, empty, still registered, unlocked (rule
//!     19), without its anon_vma when all of its VMA moved.
//! 19. (Deviation `dontunmap-unlocks-the-whole-vma`.) DONTUNMAP unlocks the
//!     whole VMA the source is in, without split or merge; by the contract
//!     only the source range.
//!
//! The layout is then maximal runs of pages with equal attributes, linear
//! page offsets and equal anon_vmas (none being a value of its own), cut
//! where a page is `apart`.
//!
//! ## Deviations
//!
//! Where the live kernel departs from the contract, the difference is a
//! [`Deviation`]: a rule (13, 14, 19) that is on by default, so the model
//! says what the kernel does, and that `--strict` turns off, so the model
//! says what the contract promises and a run against the kernel (or the
//! implementation, which follows the kernel's code) finds the deviation.

use std::collections::BTreeSet;

use uffd_vocab::{
    Advice, Backend, Backing, Contexts, Errno, Features, Kind, Layout, Mode, Op, OpResult, Outcome,
    Page, Prot, Remap, StepReport, Unsupported, VmFlags, Vma,
};

/// Everything one mapped page knows about itself.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct PageState {
    prot: Prot,
    backing: Backing,
    /// This page's own offset (vm_pgoff of a one-page VMA here).
    pgoff: Page,
    flags: VmFlags,
    uffd: Mode,
    ctx: Option<u8>,
    /// The identity of this page's VMA's anon_vma.
    anon_vma: Option<u32>,
    /// What the page table has here.
    pte: Pte,
    /// A VMA starts here even if the page before is equal to this one: a
    /// boundary the kernel leaves between equal VMAs (a [`Deviation`]). It
    /// lasts until an op changes the flags of a page on either side of it
    /// (rule 12).
    apart: bool,
}

/// What the page table has at a page.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Pte {
    /// Nothing: the next access faults.
    None,
    /// A page mapped read-only (the zero page, or a file page): a write
    /// takes a write-protect fault, which userfaultfd does not see here.
    Read,
    /// A page written since it was mapped.
    Written,
}

impl PageState {
    /// Are `self` and `next` (the page right after it) in one VMA?
    fn same_vma(&self, next: &PageState) -> bool {
        self.same_but_anon_vma(next) && self.anon_vma == next.anon_vma
    }

    /// Equal attributes and a linear page offset, anon_vmas aside.
    fn same_but_anon_vma(&self, next: &PageState) -> bool {
        !next.apart
            && self.prot == next.prot
            && self.backing == next.backing
            && self.flags == next.flags
            && self.uffd == next.uffd
            && self.ctx == next.ctx
            && self.pgoff + 1 == next.pgoff
    }

    /// May a VMA of `self`'s attributes reuse the anon_vma of one of
    /// `next`'s, right after it (`anon_vma_compatible`)? The same object,
    /// a linear page offset, flags (uffd bits included, the ctx not) that
    /// differ only in prot.
    fn anon_vma_compatible(&self, next: &PageState) -> bool {
        self.backing == next.backing
            && self.flags == next.flags
            && self.uffd == next.uffd
            && self.pgoff + 1 == next.pgoff
    }
}

/// A place where the live kernel departs from the contract the model
/// states. Each is a small rule of the model, on by default (the model then
/// says what the kernel does), off with `strict` (the model says what the
/// contract promises, and checking against the kernel finds the
/// difference). A step where a rule changed the model's outcome reports the
/// rule's [`Deviation::event`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Deviation {
    /// Rule 13.
    MremapOldRegistration,
    /// Rule 14.
    ForkKeepsBoundaries,
    /// Rule 19.
    DontUnmapUnlocksVma,
}

impl Deviation {
    pub const ALL: [Deviation; 3] = [
        Deviation::MremapOldRegistration,
        Deviation::ForkKeepsBoundaries,
        Deviation::DontUnmapUnlocksVma,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Deviation::MremapOldRegistration => "mremap-merges-with-old-registration",
            Deviation::ForkKeepsBoundaries => "fork-keeps-parent-boundaries",
            Deviation::DontUnmapUnlocksVma => "dontunmap-unlocks-the-whole-vma",
        }
    }

    /// Its bit in a set of rules.
    pub fn bit(self) -> u8 {
        1 << (self as u8)
    }

    /// The rule of this name.
    pub fn from_name(name: &str) -> Option<Deviation> {
        Deviation::ALL.into_iter().find(|d| d.name() == name)
    }

    /// What the contract says.
    pub fn contract(self) -> &'static str {
        match self {
            Deviation::MremapOldRegistration => {
                "a move by a ctx without UFFD_FEATURE_EVENT_REMAP unregisters exactly the moved \
                 pages, which then merge with equal neighbours"
            }
            Deviation::ForkKeepsBoundaries => {
                "the child has the parent's memory without DONTFORK ranges, uffd bits and \
                 locks, maximally merged"
            }
            Deviation::DontUnmapUnlocksVma => {
                "mremap with MREMAP_DONTUNMAP leaves the source range mapped, empty and \
                 unlocked, and changes nothing outside it"
            }
        }
    }

    /// What the kernel does instead.
    pub fn kernel(self) -> &'static str {
        match self {
            Deviation::MremapOldRegistration => {
                "copy_vma merges the moved VMA at its destination with its OLD registration, \
                 then the registration of the merged VMA is cleared: a neighbour registered \
                 with the same ctx and mode silently loses its registration, and an equal \
                 unregistered neighbour stays apart"
            }
            Deviation::ForkKeepsBoundaries => {
                "dup_mmap copies VMA by VMA and clears the uffd and lock bits without \
                 merging: VMAs that only those bits kept apart stay apart in the child"
            }
            Deviation::DontUnmapUnlocksVma => {
                "dontunmap_complete clears VM_LOCKED and VM_LOCKONFAULT on the whole source \
                 VMA, also outside the moved range, without splitting or merging it"
            }
        }
    }
}

/// The page model. See the module docs.
#[derive(Clone, Debug)]
pub struct PageModel {
    /// The deviation rules turned off (bits of [`Deviation::bit`]): all of
    /// them, and the model is the contract alone.
    rules_off: u8,
    /// The deviation rules that changed the current step (their names).
    deviations: Vec<&'static str>,
    pages: Vec<Option<PageState>>,
    open: Contexts,
    next_shmem: u32,
    /// The size in pages of each shmem object (`shmem#N` at index N-1):
    /// the length of the mmap that made it.
    shmem_size: Vec<Page>,
    next_anon_vma: u32,
    /// The memfd and shmem pages in the page cache: (object, page offset).
    cache: BTreeSet<(Backing, Page)>,
}

impl PageModel {
    /// The model with the deviation rules on: what the kernel does.
    pub fn new(pages: Page) -> PageModel {
        PageModel::with_rules_off(pages, &[])
    }

    /// `strict`: the deviation rules off, the contract alone.
    pub fn with_strict(pages: Page, strict: bool) -> PageModel {
        let all: &[Deviation] = if strict { &Deviation::ALL } else { &[] };
        PageModel::with_rules_off(pages, all)
    }

    /// The model with the deviation rules `off` turned off.
    pub fn with_rules_off(pages: Page, off: &[Deviation]) -> PageModel {
        PageModel {
            rules_off: off.iter().fold(0, |bits, d| bits | d.bit()),
            deviations: Vec::new(),
            pages: vec![None; pages as usize],
            open: Contexts::default(),
            next_shmem: 0,
            shmem_size: Vec::new(),
            next_anon_vma: 0,
            cache: BTreeSet::new(),
        }
    }

    /// Is the deviation rule `d` on?
    fn applies(&self, d: Deviation) -> bool {
        self.rules_off & d.bit() == 0
    }

    /// The uffd contexts that are open now (part of the state besides the
    /// layout: closing a context that is not open is EBADF).
    pub fn open_contexts(&self) -> Contexts {
        self.open
    }

    fn range(start: Page, len: Page) -> std::ops::Range<usize> {
        start as usize..(start + len) as usize
    }

    fn any_mapped(&self, start: Page, len: Page) -> bool {
        self.pages[Self::range(start, len)]
            .iter()
            .any(|p| p.is_some())
    }
}

impl Backend for PageModel {
    fn name(&self) -> &'static str {
        "model"
    }

    fn pages(&self) -> Page {
        self.pages.len() as Page
    }

    fn step(&mut self, op: &Op) -> Result<Outcome, Unsupported> {
        self.deviations.clear();
        let (result, layout) = match op {
            // The step's layout is the child's.
            Op::Fork => (Ok(()), self.fork_child()),
            _ => (self.run_op(op), self.layout()),
        };
        // Equal neighbours are apart only where a deviation rule keeps them.
        let kept_apart = layout
            .vmas()
            .windows(2)
            .filter(|w| w[0].mergeable_with(&w[1]))
            .map(|w| w[1].start)
            .collect();
        Ok(Outcome {
            backend: "model",
            result,
            layout,
            open: self.open,
            report: StepReport {
                deviations: std::mem::take(&mut self.deviations),
                kept_apart,
                ..StepReport::default()
            },
        })
    }

    fn reset(&mut self) {
        let off: Vec<Deviation> = Deviation::ALL
            .into_iter()
            .filter(|d| !self.applies(*d))
            .collect();
        *self = PageModel::with_rules_off(self.pages(), &off);
    }

    fn snapshot(&self) -> Option<Box<dyn Backend>> {
        Some(Box::new(self.clone()))
    }

    /// The layout, the open contexts, the pages written, and the page
    /// cache of the objects still mapped (shmem objects renamed in layout
    /// order, as the layout names them).
    fn fingerprint(&self) -> Option<u128> {
        let layout = self.layout();
        let written: Vec<(usize, Pte)> = (0..self.pages.len())
            .filter_map(|i| self.pages[i].map(|p| (i, p.pte)))
            .filter(|(_, pte)| *pte != Pte::None)
            .collect();
        let mut shmem_order: Vec<u32> = Vec::new();
        for p in self.pages.iter().flatten() {
            if let Backing::Shmem(id) = p.backing {
                if !shmem_order.contains(&id) {
                    shmem_order.push(id);
                }
            }
        }
        let cache: Vec<(Backing, Page)> = self
            .cache
            .iter()
            .filter_map(|&(b, off)| match b {
                Backing::Shmem(id) => shmem_order
                    .iter()
                    .position(|&x| x == id)
                    .map(|i| (Backing::Shmem(i as u32), off)),
                b => Some((b, off)),
            })
            .collect();
        // Boundaries kept by a deviation rule, seen or not in the layout.
        let apart: Vec<usize> = (0..self.pages.len())
            .filter(|&i| self.pages[i].is_some_and(|p| p.apart))
            .collect();
        Some(uffd_vocab::fingerprint128(&(
            layout, self.open, written, cache, apart,
        )))
    }
}

impl PageModel {
    /// Runs one op (without reading the layout back), then merges around
    /// the pages it changed (rule 5).
    pub fn run_op(&mut self, op: &Op) -> OpResult {
        let span = match op.range() {
            Some((start, len)) => Self::range(start, len),
            None => 0..self.pages.len(),
        };
        let before = self.pages[span.clone()].to_vec();
        let r = self.dispatch(op);
        // (mprotect and mlock merge before they populate, themselves; so
        // does mremap, which also keeps boundaries apart, rules 13 and 19.)
        let merges_itself = matches!(
            op,
            Op::Protect { .. } | Op::Mlock { .. } | Op::Munlock { .. } | Op::Mremap { .. }
        );
        if !merges_itself && !matches!(op, Op::Fault { .. } | Op::Unmap { .. }) {
            let mut changed = vec![false; self.pages.len()];
            // A map is a new VMA even where it equals what it replaced.
            let remapped = matches!(op, Op::Map { .. }) && r.is_ok();
            for (i, old) in span.clone().zip(before) {
                changed[i] = self.pages[i].is_some() && (remapped || self.pages[i] != old);
            }
            self.merge_around(&changed);
        }
        r
    }

    fn dispatch(&mut self, op: &Op) -> OpResult {
        match *op {
            Op::Map {
                start,
                len,
                prot,
                kind,
            } => self.map(start, len, prot, kind),
            Op::Unmap { start, len } => self.unmap(start, len),
            Op::Protect { start, len, prot } => self.protect(start, len, prot),
            Op::Register {
                ctx,
                start,
                len,
                mode,
            } => self.register(ctx, start, len, mode),
            Op::Unregister { ctx, start, len } => self.unregister(ctx, start, len),
            Op::Close { ctx } => self.close(ctx),
            Op::Fault { page } => self.fault(page),
            Op::Madvise { start, len, advice } => self.madvise(start, len, advice),
            Op::Mlock {
                start,
                len,
                onfault,
            } => self.mlock(start, len, true, onfault),
            Op::Munlock { start, len } => self.mlock(start, len, false, false),
            Op::Open { ctx, features } => {
                if self.open.contains(ctx) {
                    let _ = self.close(ctx);
                }
                self.open.insert_with(ctx, features);
                Ok(())
            }
            Op::Mremap {
                start,
                len,
                newlen,
                to,
            } => self.mremap(start, len, newlen, to),
            // The parent does not change (`step` reads the child).
            Op::Fork => Ok(()),
        }
    }

    /// fork (rule 11): the child's layout. The parent does not change.
    fn fork_child(&mut self) -> Layout {
        let mut child = self.clone();
        for page in &mut child.pages {
            let Some(p) = page else { continue };
            if p.flags.has(VmFlags::DONTCOPY) {
                *page = None;
                continue;
            }
            p.uffd = Mode::NONE;
            p.ctx = None;
            p.flags.set(VmFlags::LOCKED, false);
            p.flags.set(VmFlags::LOCKONFAULT, false);
            if p.flags.has(VmFlags::WIPEONFORK) {
                p.anon_vma = None;
                p.pte = Pte::None;
            }
        }
        // Each child VMA is a copy of one of the parent's, with an anon_vma
        // of its own if the parent's had one (anon_vma_fork).
        for (k, vma) in self.layout().vmas().iter().enumerate() {
            let fresh = u32::MAX - k as u32;
            for i in vma.start as usize..vma.end as usize {
                if let Some(p) = child.pages[i].as_mut() {
                    p.apart = i as Page == vma.start;
                    if p.anon_vma.is_some() {
                        p.anon_vma = Some(fresh);
                    }
                }
            }
        }
        // The contract: then equal neighbours are one VMA (rule 5).
        let mut contract = child.clone();
        for p in contract.pages.iter_mut().flatten() {
            p.apart = false;
        }
        let all = vec![true; contract.pages.len()];
        contract.merge_around(&all);
        let contract = contract.layout();
        // Rule 14, the kernel: the copies stay apart.
        let kernel = child.layout();
        let bounds = |l: &Layout| -> Vec<(Page, Page)> {
            l.vmas().iter().map(|v| (v.start, v.end)).collect()
        };
        if bounds(&contract) == bounds(&kernel) {
            return contract;
        }
        if self.applies(Deviation::ForkKeepsBoundaries) {
            self.deviations.push(Deviation::ForkKeepsBoundaries.name());
            kernel
        } else {
            contract
        }
    }

    /// madvise with a flag-changing advice: page by page; a hole makes the
    /// result ENOMEM but the pages after it are still changed; an advice a
    /// page cannot take (WIPEONFORK on anything but private anonymous
    /// memory) is EINVAL, the pages before it changed, those after not.
    pub fn madvise(&mut self, start: Page, len: Page, advice: Advice) -> OpResult {
        let mut hole = false;
        for page in &mut self.pages[Self::range(start, len)] {
            let Some(p) = page else {
                hole = true;
                continue;
            };
            let f = &mut p.flags;
            match advice {
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

    /// The VMA that holds `page`: the maximal run of pages in one VMA.
    fn vma_of(&self, page: usize) -> std::ops::Range<usize> {
        let mut start = page;
        while start > 0 {
            match (self.pages[start - 1], self.pages[start]) {
                (Some(a), Some(b)) if a.same_vma(&b) => start -= 1,
                _ => break,
            }
        }
        let mut end = page + 1;
        while end < self.pages.len() {
            match (self.pages[end - 1], self.pages[end]) {
                (Some(a), Some(b)) if a.same_vma(&b) => end += 1,
                _ => break,
            }
        }
        start..end
    }

    /// Rule 5: left to right over neighbouring VMAs, at least one holding a
    /// changed page, equal but for the anon_vma, one without: the one
    /// without takes the other's.
    fn merge_around(&mut self, changed: &[bool]) {
        // Rule 12: a boundary next to a changed page goes.
        for i in (0..self.pages.len()).filter(|&i| changed[i]) {
            for j in [i, i + 1] {
                if let Some(Some(p)) = self.pages.get_mut(j) {
                    p.apart = false;
                }
            }
        }
        let mut page = 0;
        while page < self.pages.len() {
            if self.pages[page].is_none() {
                page += 1;
                continue;
            }
            let left = self.vma_of(page);
            let end = left.end;
            let right_exists = end < self.pages.len() && self.pages[end].is_some();
            if !right_exists {
                page = end;
                continue;
            }
            let right = self.vma_of(end);
            let touched = changed[left.clone()].iter().any(|&c| c)
                || changed[right.clone()].iter().any(|&c| c);
            let (a, b) = (
                self.pages[left.end - 1].expect("mapped"),
                self.pages[right.start].expect("mapped"),
            );
            if touched && a.same_but_anon_vma(&b) {
                let (none_side, id) = match (a.anon_vma, b.anon_vma) {
                    (None, Some(id)) => (left.clone(), id),
                    (Some(id), None) => (right.clone(), id),
                    _ => (0..0, 0),
                };
                if !none_side.is_empty() {
                    for p in self.pages[none_side].iter_mut().flatten() {
                        p.anon_vma = Some(id);
                    }
                    // The two are one VMA now: look at its right edge next.
                    page = left.start;
                    continue;
                }
            }
            page = end;
        }
    }

    /// Rule 3: gives the VMA of `page` an anon_vma if it has none.
    fn anon_vma_prepare(&mut self, page: usize) {
        let vma = self.vma_of(page);
        let me = self.pages[page].expect("mapped");
        if me.anon_vma.is_some() {
            return;
        }
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

    /// A one-byte write at `page` (rules 1 to 4).
    pub fn fault(&mut self, page: Page) -> OpResult {
        let i = page as usize;
        let Some(p) = self.pages[i] else {
            return Err(Errno::EFAULT);
        };
        if !p.prot.write() {
            return Err(Errno::EFAULT);
        }
        self.write_fault(i)
    }

    /// Rule 15: a shmem page past the end of its object (a mapping grown
    /// by mremap) cannot be faulted in (SIGBUS, EFAULT for a write from
    /// the kernel), whatever userfaultfd says.
    fn beyond_eof(&self, p: &PageState) -> bool {
        match p.backing {
            Backing::Shmem(id) => self
                .shmem_size
                .get(id as usize - 1)
                .is_some_and(|&size| p.pgoff >= size),
            _ => false,
        }
    }

    /// Whether userfaultfd refuses a fault on the not-there page `p`
    /// (rule 4).
    fn uffd_refuses(&self, p: &PageState) -> bool {
        if p.backing == Backing::Anon {
            p.uffd.contains(Mode::MISSING)
        } else {
            let cached = self.cache.contains(&(p.backing, p.pgoff));
            (!cached && p.uffd.contains(Mode::MISSING)) || (cached && p.uffd.contains(Mode::MINOR))
        }
    }

    /// A write to the mapped, writable page `i` (rules 2 to 4; rule 7 for
    /// a page that is there read-only).
    fn write_fault(&mut self, i: usize) -> OpResult {
        let p = self.pages[i].expect("mapped");
        if p.pte == Pte::Written {
            return Ok(());
        }
        if self.beyond_eof(&p) {
            return Err(Errno::EFAULT);
        }
        if !p.flags.has(VmFlags::MAYSHARE) {
            self.anon_vma_prepare(i);
        }
        if p.pte == Pte::None {
            if self.uffd_refuses(&p) {
                return Err(Errno::EFAULT);
            }
            if p.backing != Backing::Anon {
                self.cache.insert((p.backing, p.pgoff));
            }
        }
        if let Some(p) = self.pages[i].as_mut() {
            p.pte = Pte::Written;
        }
        Ok(())
    }

    /// A read of the mapped page `i` (rule 8): the zero page or the file
    /// page is mapped read-only, no anon_vma.
    fn read_fault(&mut self, i: usize) -> OpResult {
        let p = self.pages[i].expect("mapped");
        if p.pte != Pte::None {
            return Ok(());
        }
        if self.beyond_eof(&p) {
            return Err(Errno::EFAULT);
        }
        if self.uffd_refuses(&p) {
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

    /// mlock / mlock2(MLOCK_ONFAULT) (`locked`) or munlock (`!locked`),
    /// rule 9: page by page the flags change, the first hole stops it with
    /// ENOMEM (keeping what changed); then mlock without onfault populates
    /// the range page by page: a write fault where the page is writable
    /// and private, a read fault otherwise; the first fault that fails
    /// (PROT_NONE, or refused by userfaultfd) makes it ENOMEM, the flags
    /// staying set.
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
        // The flags and merges of every VMA first (rule 5), then populate.
        let mut changed = vec![false; self.pages.len()];
        for (j, old) in Self::range(start, len).zip(before) {
            changed[j] = self.pages[j].is_some() && self.pages[j] != old;
        }
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

    /// Populating the mapped page `i` (rule 9): nothing where it is
    /// PROT_NONE (EFAULT), a write fault where it is writable and private,
    /// a read fault otherwise.
    fn populate_fault(&mut self, i: usize) -> OpResult {
        let p = self.pages[i].expect("mapped");
        if p.prot == Prot::NONE {
            Err(Errno::EFAULT)
        } else if p.prot.write() && !p.flags.has(VmFlags::SHARED) {
            self.write_fault(i)
        } else {
            self.read_fault(i)
        }
    }

    /// mmap(MAP_FIXED): replaces every page of the range.
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
        for (i, page) in self.pages[Self::range(start, len)].iter_mut().enumerate() {
            *page = Some(PageState {
                prot,
                backing,
                pgoff: first_pgoff + i as Page,
                flags,
                uffd: Mode::NONE,
                ctx: None,
                anon_vma: None,
                pte: Pte::None,
                apart: false,
            });
        }
        Ok(())
    }

    /// munmap: holes are fine.
    pub fn unmap(&mut self, start: Page, len: Page) -> OpResult {
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        self.clear(start as usize..(start + len) as usize);
        Ok(())
    }

    /// Unmaps the pages of `range`: the boundary after it goes (rule 12).
    fn clear(&mut self, range: std::ops::Range<usize>) {
        if range.is_empty() {
            return;
        }
        let end = range.end;
        for page in &mut self.pages[range] {
            *page = None;
        }
        if let Some(Some(p)) = self.pages.get_mut(end) {
            p.apart = false;
        }
    }

    /// mprotect: page by page from `start`; the first hole stops it with
    /// ENOMEM, keeping what was already changed.
    pub fn protect(&mut self, start: Page, len: Page, prot: Prot) -> OpResult {
        let end = (start + len) as usize;
        let mut i = start as usize;
        // VMA by VMA, as mprotect_fixup goes: change it, merge it (rule 5),
        // populate it (rule 10), then the next.
        while i < end {
            if self.pages[i].is_none() {
                return Err(Errno::ENOMEM);
            }
            let run = i..self.vma_of(i).end.min(end);
            let before = self.pages[run.clone()].to_vec();
            let mut populate = false;
            for page in &mut self.pages[run.clone()] {
                let p = page.as_mut().expect("one VMA: mapped");
                if prot.write() && !p.flags.has(VmFlags::MAYWRITE) {
                    return Err(Errno::EACCES);
                }
                let old = p.flags;
                let was_writable = p.prot.write();
                // Rule 10: a locked private page made writable is populated.
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
                    // Rule 6: private anonymous memory with no anon_vma
                    // gives its VM_ACCOUNT back (when its protection
                    // changes: the same protection changes nothing).
                    p.flags.set(VmFlags::ACCOUNT, false);
                }
                p.prot = prot;
            }
            let mut changed = vec![false; self.pages.len()];
            for (j, old) in run.clone().zip(before) {
                changed[j] = self.pages[j] != old;
            }
            self.merge_around(&changed);
            if populate {
                for j in run.clone() {
                    if self.write_fault(j).is_err() {
                        break;
                    }
                }
            }
            i = run.end;
        }
        Ok(())
    }

    pub fn register(&mut self, ctx: u8, start: Page, len: Page, mode: Mode) -> OpResult {
        self.open.insert(ctx);
        if mode.is_empty() || mode.has_unknown_bits() || len == 0 {
            return Err(Errno::EINVAL);
        }
        if !self.any_mapped(start, len) {
            return Err(Errno::EINVAL);
        }
        for p in self.pages[Self::range(start, len)].iter().flatten() {
            // MINOR needs shmem (every file kind here is a memfd: shmem).
            if mode.contains(Mode::MINOR) && p.backing == Backing::Anon {
                return Err(Errno::EINVAL);
            }
            if !p.flags.has(VmFlags::MAYWRITE) {
                return Err(Errno::EPERM);
            }
            if p.ctx.is_some_and(|c| c != ctx) {
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

    pub fn unregister(&mut self, ctx: u8, start: Page, len: Page) -> OpResult {
        self.open.insert(ctx);
        if len == 0 || !self.any_mapped(start, len) {
            return Err(Errno::EINVAL);
        }
        let pages = &mut self.pages[Self::range(start, len)];
        if pages
            .iter()
            .flatten()
            .any(|p| p.ctx.is_some_and(|c| c != ctx))
        {
            return Err(Errno::EINVAL);
        }
        for p in pages.iter_mut().flatten() {
            p.uffd = Mode::NONE;
            p.ctx = None;
        }
        Ok(())
    }

    pub fn close(&mut self, ctx: u8) -> OpResult {
        if !self.open.contains(ctx) {
            return Err(Errno::EBADF);
        }
        self.open.remove(ctx);
        for p in self.pages.iter_mut().flatten() {
            if p.ctx == Some(ctx) {
                p.uffd = Mode::NONE;
                p.ctx = None;
            }
        }
        Ok(())
    }

    /// mremap (rules 16 to 19). Under the deviation rules (not `strict`),
    /// the step is also run as the contract says, on a copy, and a rule
    /// that changed the result or the layout reports its event.
    pub fn mremap(&mut self, start: Page, len: Page, newlen: Page, to: Remap) -> OpResult {
        let rules = [
            Deviation::MremapOldRegistration,
            Deviation::DontUnmapUnlocksVma,
        ];
        if !rules.iter().any(|d| self.applies(*d)) {
            return self.mremap_rules(start, len, newlen, to);
        }
        let mut contract = self.clone();
        contract.rules_off = u8::MAX;
        let want = contract.mremap_rules(start, len, newlen, to);
        self.deviations.clear();
        let got = self.mremap_rules(start, len, newlen, to);
        if got == want && self.layout() == contract.layout() {
            self.deviations.clear();
        }
        got
    }

    /// The parameter checks, then the multi-VMA move, the in-place resize
    /// or the single-VMA move (rule 16).
    fn mremap_rules(&mut self, start: Page, len: Page, newlen: Page, to: Remap) -> OpResult {
        if newlen == 0 {
            return Err(Errno::EINVAL);
        }
        if let Some(dst) = to.dst() {
            if matches!(to, Remap::DontUnmap(_)) && len != newlen {
                return Err(Errno::EINVAL);
            }
            if start < dst + newlen && dst < start + len {
                return Err(Errno::EINVAL);
            }
            if len == newlen {
                return self.remap_move(start, len, dst, matches!(to, Remap::DontUnmap(_)));
            }
        }
        let s = start as usize;
        let Some(p) = self.pages[s] else {
            return Err(Errno::EFAULT);
        };
        let vma = self.vma_of(s);
        let shared = p.flags.has(VmFlags::MAYSHARE);
        let Some(dst) = to.dst() else {
            // In place. A shrink or the same length checks nothing more.
            if newlen <= len {
                if newlen < len {
                    self.clear((start + newlen) as usize..(start + len) as usize);
                }
                return Ok(());
            }
            if len == 0 && !shared {
                return Err(Errno::EINVAL);
            }
            let (end, new_end) = ((start + len) as usize, (start + newlen) as usize);
            if end > vma.end {
                return Err(Errno::EFAULT);
            }
            let free = self.pages[vma.end.min(new_end)..new_end]
                .iter()
                .all(|p| p.is_none());
            if end != vma.end || !free {
                return Err(Errno::ENOMEM);
            }
            self.grow(end - 1, end..new_end);
            return Ok(());
        };
        // Moved with a new length: [start, start+min(len, newlen)) must lie
        // in one VMA.
        if len == 0 && !shared {
            return Err(Errno::EINVAL);
        }
        if (start + len.min(newlen)) as usize > vma.end {
            return Err(Errno::EFAULT);
        }
        self.clear(dst as usize..(dst + newlen) as usize);
        if self.pages[s].is_none() {
            // Length 0 and the destination starting at the source: that
            // unmapped it.
            return Err(Errno::EFAULT);
        }
        let kept = len.min(newlen);
        if newlen < len {
            self.clear((start + newlen) as usize..(start + len) as usize);
        }
        self.move_range(s, kept as usize, dst as usize, newlen as usize, false);
        Ok(())
    }

    /// Same length, moved (`remap_move`, rule 17): VMA by VMA from the
    /// first, each piece to the same distance from `dst`, holes kept; the
    /// range must start in a VMA. A registered VMA is refused with EFAULT
    /// (the pieces before it stay moved), unless the range lies in it
    /// alone.
    fn remap_move(&mut self, start: Page, len: Page, dst: Page, dontunmap: bool) -> OpResult {
        let (s, e) = (start as usize, (start + len) as usize);
        if len == 0 || self.pages[s].is_none() {
            return Err(Errno::EFAULT);
        }
        let first = self.vma_of(s);
        if first.end >= e {
            self.clear(dst as usize..dst as usize + (e - s));
            self.move_range(s, e - s, dst as usize, e - s, dontunmap);
            return Ok(());
        }
        let mut i = s;
        while i < e {
            if self.pages[i].is_none() {
                i += 1;
                continue;
            }
            let piece = i..self.vma_of(i).end.min(e);
            if !self.pages[i].expect("mapped").uffd.is_empty() {
                return Err(Errno::EFAULT);
            }
            let to = dst as usize + (i - s);
            self.clear(to..to + piece.len());
            self.move_range(i, piece.len(), to, piece.len(), dontunmap);
            i = piece.end;
        }
        Ok(())
    }

    /// Moves the `len` pages at `src` (one VMA's) to `dst`, where `newlen`
    /// pages are a hole (rule 18): each page takes its attributes along,
    /// and pages past `len` are new, empty copies of the last (of the
    /// page at `src` when `len` is 0: a second mapping of shared memory);
    /// private anonymous memory without an anon_vma takes the new address
    /// as its page offset. The source is unmapped, or, with DONTUNMAP,
    /// stays mapped, empty and unlocked, and loses its anon_vma when the
    /// whole VMA moved. A registration by a ctx without
    /// UFFD_FEATURE_EVENT_REMAP does not go along (rule 13 says what the
    /// kernel does instead). New pages of a locked VMA are populated.
    fn move_range(&mut self, src: usize, len: usize, dst: usize, newlen: usize, dontunmap: bool) {
        let template: Vec<PageState> = self.pages[src..src + len.max(1)]
            .iter()
            .map(|p| p.expect("one VMA: mapped"))
            .collect();
        let first = template[0];
        let keeps = first
            .ctx
            .is_some_and(|c| self.open.features(c) == Some(Features::EventRemap));
        // The copy first, the source still there (it may merge with it).
        let mut changed = vec![false; self.pages.len()];
        let last = *template.last().expect("one page at least");
        for k in 0..newlen {
            let mut p = if k < len { template[k] } else { last };
            if k >= len {
                p.pte = Pte::None;
            }
            if p.backing == Backing::Anon && p.anon_vma.is_none() {
                p.pgoff = (dst + k) as Page;
            } else {
                p.pgoff = first.pgoff + k as Page;
            }
            p.apart = false;
            if !keeps && !self.applies(Deviation::MremapOldRegistration) {
                p.uffd = Mode::NONE;
                p.ctx = None;
            }
            self.pages[dst + k] = Some(p);
            changed[dst + k] = true;
        }
        for i in src..src + len {
            // The pages have moved away.
            if let Some(p) = self.pages[i].as_mut() {
                p.pte = Pte::None;
            }
        }
        self.merge_around(&changed);
        if !keeps && self.applies(Deviation::MremapOldRegistration) && !first.uffd.is_empty() {
            // Rule 13: the copy merged with its old registration; the VMA
            // it is in now is unregistered as a whole (with whatever of
            // the source it merged with), and stays apart from its
            // neighbours.
            let merged = self.vma_of(dst);
            for p in self.pages[merged.clone()].iter_mut().flatten() {
                p.uffd = Mode::NONE;
                p.ctx = None;
            }
            self.keep_apart(merged);
            self.deviations
                .push(Deviation::MremapOldRegistration.name());
        }
        if !dontunmap {
            if len > 0 {
                self.clear(src..src + len);
            }
        } else {
            // Rule 19: DONTUNMAP leaves the source range mapped and empty,
            // unlocked, still registered; under the deviation rules the
            // whole VMA it is in (now) is unlocked, with no split or merge.
            // Its anon_vma goes when all of the source VMA moved.
            let vma = self.vma_of(src);
            let whole_vma_rule = self.applies(Deviation::DontUnmapUnlocksVma);
            let unlock = if whole_vma_rule {
                vma.clone()
            } else {
                src..src + len
            };
            let whole = vma == (src..src + len);
            let before = self.pages.clone();
            for i in unlock.clone() {
                if let Some(p) = self.pages[i].as_mut() {
                    p.flags.set(VmFlags::LOCKED, false);
                    p.flags.set(VmFlags::LOCKONFAULT, false);
                }
            }
            if whole {
                for p in self.pages[vma].iter_mut().flatten() {
                    p.anon_vma = None;
                }
            }
            if !whole_vma_rule {
                let changed: Vec<bool> = (0..self.pages.len())
                    .map(|i| self.pages[i] != before[i])
                    .collect();
                self.merge_around(&changed);
            } else if unlock.clone().any(|i| self.pages[i] != before[i]) {
                self.keep_apart(unlock);
                self.deviations.push(Deviation::DontUnmapUnlocksVma.name());
            }
        }
        if newlen > len {
            self.populate_if_locked(dst + len..dst + newlen);
        }
    }

    /// Marks `range` as a VMA of its own: boundaries at both of its ends.
    fn keep_apart(&mut self, range: std::ops::Range<usize>) {
        for i in [range.start, range.end] {
            if let Some(Some(p)) = self.pages.get_mut(i) {
                p.apart = true;
            }
        }
    }

    /// Grows the VMA whose last page is `last` over the hole `new` (rule
    /// 16): the new pages take its attributes, empty, with linear page
    /// offsets; merged with what follows; populated if locked.
    fn grow(&mut self, last: usize, new: std::ops::Range<usize>) {
        let from = self.pages[last].expect("mapped");
        let mut changed = vec![false; self.pages.len()];
        for (k, i) in new.clone().enumerate() {
            let mut p = from;
            p.pgoff = from.pgoff + 1 + k as Page;
            p.pte = Pte::None;
            p.apart = false;
            self.pages[i] = Some(p);
            changed[i] = true;
        }
        self.merge_around(&changed);
        self.populate_if_locked(new);
    }

    /// mm_populate of `range` after a locked VMA grew into it: as mlock
    /// populates, but a failure only stops it (the result stays ok).
    fn populate_if_locked(&mut self, range: std::ops::Range<usize>) {
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

    /// Maximal runs of pages that are equal but for a page offset that
    /// advances by one per page.
    pub fn layout(&self) -> Layout {
        let mut vmas: Vec<Vma> = Vec::new();
        for (i, page) in self.pages.iter().enumerate() {
            let Some(p) = *page else { continue };
            let i = i as Page;
            if let Some(last) = vmas.last_mut() {
                let continues = last.end == i
                    && last.prot == p.prot
                    && last.backing == p.backing
                    && last.flags == p.flags
                    && last.uffd == p.uffd
                    && last.ctx == p.ctx
                    && last.anon_vma == p.anon_vma
                    && last.pgoff + (i - last.start) == p.pgoff
                    && !p.apart;
                if continues {
                    last.end += 1;
                    continue;
                }
            }
            vmas.push(Vma {
                start: i,
                end: i + 1,
                prot: p.prot,
                backing: p.backing,
                pgoff: p.pgoff,
                flags: p.flags,
                uffd: p.uffd,
                ctx: p.ctx,
                anon_vma: p.anon_vma,
            });
        }
        Layout::new(vmas)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(pages: Page, trace: &str) -> (PageModel, Vec<OpResult>) {
        let mut m = PageModel::new(pages);
        let results = trace
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| m.step(&l.parse::<Op>().unwrap()).unwrap().result)
            .collect();
        (m, results)
    }

    fn lines(m: &PageModel) -> Vec<String> {
        m.layout().vmas().iter().map(|v| v.to_string()).collect()
    }

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

    #[test]
    fn shmem_objects_of_two_mmaps_never_merge() {
        let (m, _) = run(8, "map 0 4 rw- shmem\nmap 4 4 rw- shmem");
        assert_eq!(m.layout().len(), 2);
        let (m, _) = run(8, "map 0 8 rw- shmem\nprotect 2 2 r--\nprotect 2 2 rw-");
        assert_eq!(m.layout().len(), 1);
    }

    #[test]
    fn open_contexts_and_name() {
        let (m, _) = run(
            8,
            "map 0 8 rw- anon\nregister 2 0 4 wp\nunregister 0 4 4\nclose 2",
        );
        assert_eq!(m.open_contexts().to_string(), "0");
        assert_eq!(m.name(), "model");
    }

    /// The fingerprint tells apart what the layout does not show (pages
    /// written, the page cache) and not what only names differ in.
    #[test]
    fn the_fingerprint_sees_the_whole_state_up_to_names() {
        let print = |trace: &str| run(8, trace).0.fingerprint().unwrap();
        let base = "map 0 4 rw- file=0@0\nmap 4 4 rw- anon";
        assert_ne!(print(base), print(&format!("{base}\nfault 5")));
        assert_eq!(
            print(&format!("{base}\nfault 5")),
            print(&format!("{base}\nfault 5\nfault 5"))
        );
        // The page cache of a file page written through one mapping.
        assert_ne!(
            print("map 0 4 rw- shared-file=0@0\nfault 1\nmap 0 4 rw- shared-file=0@0"),
            print("map 0 4 rw- shared-file=0@0\nmap 0 4 rw- shared-file=0@0")
        );
        // A shmem object's cache, whatever the object is called inside.
        let shmem = "map 0 2 rw- shmem\nmap 2 2 rw- shmem\nfault 3";
        assert_eq!(
            print(shmem),
            print(&format!("map 6 1 rw- shmem\nunmap 6 1\n{shmem}"))
        );
        assert_ne!(
            print(shmem),
            print("map 0 2 rw- shmem\nmap 2 2 rw- shmem\nfault 1")
        );
        // One object, its written page in the cache, seen through a second
        // mapping of it (a zero-length mremap) whose pages are not mapped.
        let cached = "map 0 2 rw- shmem\nfault 1\nmremap 0 0 2 4\nunmap 0 2";
        let empty = "map 0 2 rw- shmem\nmremap 0 0 2 4\nunmap 0 2";
        assert_eq!(run(8, cached).0.layout(), run(8, empty).0.layout());
        assert_ne!(print(cached), print(empty));
        // A page read and a page written, under the same layout and cache.
        let shared = "map 0 2 rw- shared-file=0@0";
        let read = format!("{shared}\nprotect 0 2 r--\nmlock 0 2\nmunlock 0 2\nprotect 0 2 rw-");
        let written = format!("{shared}\nfault 0\nfault 1");
        assert_eq!(run(8, &read).0.layout(), run(8, &written).0.layout());
        assert_ne!(print(&read), print(&written));
    }

    /// With the DONTUNMAP rule off, the unlocked source merges by rule 5
    /// around the pages it changed, and only those: a boundary another rule
    /// keeps elsewhere stays.
    #[test]
    fn the_contract_of_dontunmap_merges_only_around_what_it_changed() {
        let mut m = PageModel::with_rules_off(20, &[Deviation::DontUnmapUnlocksVma]);
        let trace = "map 0 4 rw- anon\nmap 12 4 rw- anon\nregister 0 0 4 missing\n\
                     mremap 0 4 4 8\nmap 17 2 rw- anon\nmlock 17 1\nmremap 17 1 1 0 dontunmap";
        let mut layout = Layout::default();
        for l in trace.lines() {
            layout = m.step(&l.trim().parse::<Op>().unwrap()).unwrap().layout;
        }
        let bounds: Vec<(Page, Page)> = layout.vmas().iter().map(|v| (v.start, v.end)).collect();
        assert_eq!(bounds, [(0, 1), (8, 12), (12, 16), (17, 19)]);
    }

    /// Each deviation rule is turned off on its own: with the fork rule off
    /// the mremap rule still says what the kernel does, and the other way.
    #[test]
    fn deviation_rules_are_independent() {
        let mremap = "map 0 4 rw- anon\nmap 12 4 rw- anon\nregister 0 0 4 missing\n\
                      register 0 12 4 missing\nmremap 0 4 4 8";
        let fork = "map 8 8 rw- anon\nregister 0 12 4 wp\nfork";
        let last_step = |off: &[Deviation], trace: &str| {
            let mut m = PageModel::with_rules_off(16, off);
            let mut events = Vec::new();
            let mut layout = Layout::default();
            for l in trace.lines() {
                let o = m.step(&l.trim().parse::<Op>().unwrap()).unwrap();
                events = o.report.deviations;
                layout = o.layout;
            }
            (layout.len(), events)
        };
        let kernel = Deviation::MremapOldRegistration.name();
        assert_eq!(last_step(&[], mremap), (1, vec![kernel]));
        assert_eq!(
            last_step(&[Deviation::ForkKeepsBoundaries], mremap),
            (1, vec![kernel])
        );
        assert_eq!(
            last_step(&[Deviation::MremapOldRegistration], mremap),
            (2, vec![])
        );
        let kernel = Deviation::ForkKeepsBoundaries.name();
        assert_eq!(
            last_step(&[Deviation::MremapOldRegistration], fork),
            (2, vec![kernel])
        );
        assert_eq!(
            last_step(&[Deviation::ForkKeepsBoundaries], fork),
            (1, vec![])
        );
        // A rule named twice (`--strict-rule R --strict-rule R`) is off.
        let twice = [Deviation::ForkKeepsBoundaries; 2];
        assert_eq!(last_step(&twice, fork), (1, vec![]));
    }

    /// A rule that applied but changed nothing (a registered VMA moved with
    /// no neighbour to merge with) reports no deviation.
    #[test]
    fn a_rule_that_changes_nothing_reports_nothing() {
        let (m, r) = run(16, "map 0 4 rw- anon\nregister 0 0 4 missing");
        assert!(r.iter().all(|r| r.is_ok()));
        let mut m = m;
        let o = m.step(&"mremap 0 4 4 8".parse::<Op>().unwrap()).unwrap();
        assert_eq!(o.result, Ok(()));
        assert_eq!(o.layout.lines(), ["[8,12) rw- anon@8 account maywrite"]);
        assert!(o.report.deviations.is_empty(), "{:?}", o.report.deviations);
    }

    #[test]
    fn deviation_names_and_texts() {
        let mut names = std::collections::BTreeSet::new();
        for d in Deviation::ALL {
            assert!(names.insert(d.name()), "{} twice", d.name());
            assert_eq!(Deviation::from_name(d.name()), Some(d));
            assert_ne!(d.contract(), d.kernel());
            assert!(d.contract().len() > 40 && d.kernel().len() > 40);
            assert_eq!(d.bit().count_ones(), 1);
        }
        let bits = Deviation::ALL.iter().fold(0, |b, d| b | d.bit());
        assert_eq!(bits.count_ones() as usize, Deviation::ALL.len());
    }

    /// With its deviation rules off the model states the contract; each
    /// known deviation's minimal case, as the contract answers it.
    #[test]
    fn the_contract_of_each_deviation() {
        let strict = |trace: &str| {
            let mut m = PageModel::with_strict(16, true);
            let mut last = Layout::default();
            for l in trace.lines() {
                last = m.step(&l.trim().parse::<Op>().unwrap()).unwrap().layout;
            }
            last.lines()
        };
        // Only the moved pages lose their registration, and the neighbour
        // of the same ctx keeps its own.
        assert_eq!(
            strict(
                "map 0 4 rw- anon\nmap 12 4 rw- anon\nregister 0 0 4 missing\n\
                 register 0 12 4 missing\nmremap 0 4 4 8"
            ),
            [
                "[8,12) rw- anon@8 account maywrite",
                "[12,16) rw- anon@12 account maywrite uffd=missing ctx=0"
            ]
        );
        // The moved, unregistered VMA merges with its equal neighbour.
        assert_eq!(
            strict("map 0 4 rw- anon\nmap 12 4 rw- anon\nregister 0 0 4 missing\nmremap 0 4 4 8"),
            ["[8,16) rw- anon@8 account maywrite"]
        );
        // With event-remap the registration goes along.
        assert_eq!(
            strict("open 0 event-remap\nmap 0 4 rw- anon\nregister 0 0 4 missing\nmremap 0 4 4 8"),
            ["[8,12) rw- anon@8 account maywrite uffd=missing ctx=0"]
        );
        // The fork child is maximally merged.
        assert_eq!(
            strict("map 8 8 rw- anon\nregister 0 12 4 wp\nfork"),
            ["[8,16) rw- anon@8 account maywrite"]
        );
        // DONTUNMAP unlocks the source range only.
        assert_eq!(
            strict("map 0 8 rw- anon\nmlock 0 8 onfault\nmremap 2 2 2 12 dontunmap"),
            [
                "[0,2) rw- anon@0 account maywrite locked lockonfault",
                "[2,4) rw- anon@2 account maywrite",
                "[4,8) rw- anon@4 account maywrite locked lockonfault",
                "[12,14) rw- anon@12 account maywrite locked lockonfault"
            ]
        );
    }
}
