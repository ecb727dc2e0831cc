//! The page model's state and the rules every op shares: what a page
//! carries and the layout it gives (rule 1), merging (rule 5), the boundary
//! a deviation rule keeps (rule 20); the ops themselves are in the modules of
//! their syscall family (see the crate docs).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use uffd_vocab::{
    Backend, Backing, Contexts, Layout, Mode, Op, OpResult, Outcome, Page, Prot, PteKind, PteState,
    StepReport, Unsupported, VmFlags, Vma,
};

pub use crate::deviations::Deviation;

/// Everything one mapped page knows about itself (rule 1).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct PageState {
    pub(crate) prot: Prot,
    pub(crate) backing: Backing,
    /// This page's own offset (vm_pgoff of a one-page VMA here).
    pub(crate) pgoff: Page,
    pub(crate) flags: VmFlags,
    pub(crate) uffd: Mode,
    pub(crate) ctx: Option<u8>,
    /// The identity of this page's VMA's anon_vma.
    pub(crate) anon_vma: Option<u32>,
    /// What the page table has here.
    pub(crate) pte: Pte,
    /// The content tag of the private anonymous page here (`Pte::Written`
    /// in private memory): what UFFDIO_COPY put in it (rule 33), or what a
    /// copy on write took from the page cache; 0 otherwise.
    pub(crate) tag: u64,
    /// That anonymous page is exclusive to this process (PageAnonExclusive):
    /// false once a fork shared it, until a write takes it back (rule 34).
    pub(crate) exclusive: bool,
    /// The page table entry's uffd-wp bit (rule 31): on a present page, or
    /// a marker on a page of a non-anonymous VMA that is not there.
    pub(crate) wp: bool,
    /// A VMA starts here even if the page before is equal to this one: a
    /// boundary the kernel leaves between equal VMAs (a [`Deviation`]). It
    /// lasts until an op changes the flags of a page on either side of it
    /// (rule 20).
    pub(crate) apart: bool,
}

/// What the page table has at a page.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum Pte {
    /// Nothing: the next access faults.
    None,
    /// A page mapped read-only (the zero page, or a file page): a write
    /// takes a write-protect fault, which userfaultfd does not see here.
    Read,
    /// A page written since it was mapped (or filled by UFFDIO_COPY).
    Written,
    /// The zero page in a private file mapping (UFFDIO_ZEROPAGE): read
    /// only, a write copies it.
    Zero,
    /// A poison marker (UFFDIO_POISON): any access fails.
    Poison,
}

impl PageState {
    /// Are `self` and `next` (the page right after it) in one VMA?
    pub(crate) fn same_vma(&self, next: &PageState) -> bool {
        self.same_but_anon_vma(next) && self.anon_vma == next.anon_vma
    }

    /// Equal attributes and a linear page offset, anon_vmas aside.
    pub(crate) fn same_but_anon_vma(&self, next: &PageState) -> bool {
        !next.apart
            && self.prot == next.prot
            && self.backing == next.backing
            && self.flags == next.flags
            && self.uffd == next.uffd
            && self.ctx == next.ctx
            && self.pgoff + 1 == next.pgoff
    }
}

/// The page model. See the crate docs.
#[derive(Clone, Debug)]
pub struct PageModel {
    /// The deviation rules turned off (bits of [`Deviation::bit`]): all of
    /// them, and the model is the contract alone.
    pub(crate) rules_off: u32,
    /// The deviation rules that changed the current step (their names).
    pub(crate) deviations: Vec<&'static str>,
    /// The uffd events the current step raised (rule 41).
    pub(crate) events: crate::events::StepEvents,
    pub(crate) pages: Vec<Option<PageState>>,
    pub(crate) open: Contexts,
    pub(crate) next_shmem: u32,
    /// The size in pages of each shmem object (`shmem#N` at index N-1):
    /// the length of the mmap that made it.
    pub(crate) shmem_size: Vec<Page>,
    pub(crate) next_anon_vma: u32,
    /// The memfd and shmem pages in the page cache: (object, page offset).
    pub(crate) cache: BTreeSet<(Backing, Page)>,
    /// The content tags of the pages of `cache` that have one (rule 33).
    pub(crate) cache_tags: BTreeMap<(Backing, Page), u64>,
    /// Buffers [`PageModel::run_op`] reuses from step to step.
    scratch: Scratch,
}

/// Buffers kept only for their memory: no state, so a clone starts with
/// empty ones, and a reset and a restore leave them as they are.
#[derive(Default, Debug)]
struct Scratch {
    /// The pages of an op's span before it ([`PageModel::run_op`] fills
    /// and empties it again within the step).
    before: Vec<Option<PageState>>,
    /// The pages of that span the op changed (the same).
    changed: Vec<usize>,
    /// The layout and the report of the last outcome handed back
    /// ([`Backend::recycle`]), for the next step to build its own in: the
    /// layout's content is never read (building one empties it first),
    /// the report is emptied.
    layout: Layout,
    report: StepReport,
}

impl Clone for Scratch {
    fn clone(&self) -> Scratch {
        Scratch::default()
    }
}

impl PageModel {
    /// The model with the deviation rules of [`crate::MODEL_SERIES`] on:
    /// what that kernel does.
    pub fn new(pages: Page) -> PageModel {
        PageModel::with_rules_off(pages, &Deviation::off_by_default())
    }

    /// `strict`: the deviation rules off, the contract alone; else the
    /// default rules ([`PageModel::new`]).
    pub fn with_strict(pages: Page, strict: bool) -> PageModel {
        if strict {
            PageModel::with_rules_off(pages, &Deviation::ALL)
        } else {
            PageModel::new(pages)
        }
    }

    /// The model with the deviation rules `off` turned off.
    pub fn with_rules_off(pages: Page, off: &[Deviation]) -> PageModel {
        PageModel {
            rules_off: off.iter().fold(0, |bits, d| bits | d.bit()),
            deviations: Vec::new(),
            events: Default::default(),
            pages: vec![None; pages as usize],
            open: Contexts::default(),
            next_shmem: 0,
            shmem_size: Vec::new(),
            next_anon_vma: 0,
            cache: BTreeSet::new(),
            cache_tags: BTreeMap::new(),
            scratch: Scratch::default(),
        }
    }

    /// The uffd contexts that are open now (part of the state besides the
    /// layout: closing a context that is not open is EBADF).
    pub fn open_contexts(&self) -> Contexts {
        self.open
    }

    pub(crate) fn range(start: Page, len: Page) -> Range<usize> {
        start as usize..(start + len) as usize
    }

    pub(crate) fn any_mapped(&self, start: Page, len: Page) -> bool {
        self.pages[Self::range(start, len)]
            .iter()
            .any(|p| p.is_some())
    }

    /// Which pages differ from `before` (a copy of `self.pages[range]`)
    /// and are mapped: where an op changed something, in order.
    pub(crate) fn changed_since(
        &self,
        range: Range<usize>,
        before: &[Option<PageState>],
    ) -> Vec<usize> {
        let mut changed = Vec::new();
        self.push_changed(range, before, &mut changed);
        changed
    }

    /// [`PageModel::changed_since`], pushed onto `changed`.
    fn push_changed(
        &self,
        range: Range<usize>,
        before: &[Option<PageState>],
        changed: &mut Vec<usize>,
    ) {
        changed.extend(
            range
                .zip(before)
                .filter(|(i, old)| self.pages[*i].is_some() && self.pages[*i] != **old)
                .map(|(i, _)| i),
        );
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
        let (result, layout) = self.step_reporting_deviations(op);
        // (An empty report, in the vectors of the last one handed back.)
        let mut report = std::mem::take(&mut self.scratch.report);
        // Equal neighbours are apart only where a deviation rule keeps them.
        report.kept_apart.extend(
            layout
                .vmas()
                .windows(2)
                .filter(|w| w[0].mergeable_with(&w[1]))
                .map(|w| w[1].start),
        );
        std::mem::swap(&mut report.deviations, &mut self.deviations);
        Ok(Outcome {
            backend: "model",
            result,
            layout,
            open: self.open,
            events: self.take_events(),
            report,
        })
    }

    /// Keeps the outcome's layout and report, for the next step.
    fn recycle(&mut self, outcome: &mut Outcome) {
        std::mem::swap(&mut self.scratch.layout, &mut outcome.layout);
        std::mem::swap(&mut self.scratch.report, &mut outcome.report);
        self.scratch.report.clear();
    }

    /// Back to the model [`PageModel::with_rules_off`] makes, the rules
    /// kept: every other field as it starts, in place (the buffers keep
    /// their memory). Every field is named, so a new one cannot be
    /// forgotten here.
    fn reset(&mut self) {
        let PageModel {
            rules_off: _,
            deviations,
            events,
            pages,
            open,
            next_shmem,
            shmem_size,
            next_anon_vma,
            cache,
            cache_tags,
            scratch: _,
        } = self;
        deviations.clear();
        *events = Default::default();
        pages.fill(None);
        *open = Contexts::default();
        *next_shmem = 0;
        shmem_size.clear();
        *next_anon_vma = 0;
        cache.clear();
        cache_tags.clear();
    }

    fn snapshot(&self) -> Option<Box<dyn Backend>> {
        Some(Box::new(self.clone()))
    }

    fn restore(&mut self, base: &dyn Backend) -> bool {
        uffd_vocab::restore_with(base, |base: &PageModel| self.restore_from(base))
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }

    /// The layout, the open contexts, the pages written, and the page
    /// cache of the objects still mapped (shmem objects renamed in layout
    /// order, as the layout names them).
    fn fingerprint(&self) -> Option<u128> {
        let layout = self.layout();
        Some(uffd_vocab::fingerprint128(&Canonical(self, &layout)))
    }

    /// The step's layout is the model's own but after a fork (the
    /// child's, rule 19): it need not be built again.
    fn fingerprint_after(&self, op: &Op, outcome: &Outcome) -> Option<u128> {
        if matches!(op, Op::Fork) {
            return self.fingerprint();
        }
        debug_assert!(
            outcome.layout == self.layout(),
            "a step's layout is the model's"
        );
        Some(uffd_vocab::fingerprint128(&Canonical(
            self,
            &outcome.layout,
        )))
    }
}

impl PageModel {
    /// Makes this model what `base` is, as a clone would, in the memory
    /// it holds ([`Backend::restore`]). Every field is named, so a new one
    /// cannot be forgotten here.
    pub fn restore_from(&mut self, base: &PageModel) {
        let PageModel {
            rules_off,
            deviations,
            events,
            pages,
            open,
            next_shmem,
            shmem_size,
            next_anon_vma,
            cache,
            cache_tags,
            scratch: _,
        } = self;
        *rules_off = base.rules_off;
        deviations.clone_from(&base.deviations);
        events.clone_from(&base.events);
        pages.clone_from(&base.pages);
        *open = base.open;
        *next_shmem = base.next_shmem;
        shmem_size.clone_from(&base.shmem_size);
        *next_anon_vma = base.next_anon_vma;
        cache.clone_from(&base.cache);
        cache_tags.clone_from(&base.cache_tags);
    }
}

/// What [`PageModel::fingerprint`] hashes: the layout, the open contexts,
/// the pages written, the page cache of the objects still mapped (shmem
/// objects renamed in layout order, as the layout names them) and the
/// boundaries kept by a deviation rule, seen or not in the layout. Each
/// list is hashed as a `Vec` of it would be (its length, then its items),
/// walked in place: `explore` takes a fingerprint a transition. The
/// layout is the model's, given.
struct Canonical<'a>(&'a PageModel, &'a Layout);

impl std::hash::Hash for Canonical<'_> {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        let m = self.0;
        self.1.hash(h);
        m.open.hash(h);
        let written = || {
            m.pages
                .iter()
                .enumerate()
                .filter_map(|(i, p)| p.map(|p| (i, p.pte)))
                .filter(|(_, pte)| *pte != Pte::None)
        };
        hash_list(h, written);
        let mut shmem_order: Vec<u32> = Vec::new();
        for p in m.pages.iter().flatten() {
            if let Backing::Shmem(id) = p.backing {
                if !shmem_order.contains(&id) {
                    shmem_order.push(id);
                }
            }
        }
        let cache = || {
            m.cache.iter().filter_map(|&(b, off)| match b {
                Backing::Shmem(id) => shmem_order
                    .iter()
                    .position(|&x| x == id)
                    .map(|i| (Backing::Shmem(i as u32), off)),
                b => Some((b, off)),
            })
        };
        hash_list(h, cache);
        let apart = || (0..m.pages.len()).filter(|&i| m.pages[i].is_some_and(|p| p.apart));
        hash_list(h, apart);
    }
}

/// Hashes the items `list` yields as a `Vec` of them would hash.
fn hash_list<H: std::hash::Hasher, I: Iterator<Item = impl std::hash::Hash>>(
    h: &mut H,
    list: impl Fn() -> I,
) {
    h.write_usize(list().count());
    for item in list() {
        item.hash(h);
    }
}

impl PageModel {
    /// One step under the rules that are on: the op's result and the
    /// step's layout, which for a fork is the child's (rule 19).
    pub(crate) fn step_rules(&mut self, op: &Op) -> (OpResult, Layout) {
        match op {
            Op::Fork => (Ok(()), self.fork_child()),
            _ => {
                let result = self.run_op(op);
                let room = std::mem::take(&mut self.scratch.layout);
                (result, self.layout_in(room))
            }
        }
    }

    /// Runs one op (without reading the layout back), then merges around
    /// the pages it changed (rule 5).
    pub fn run_op(&mut self, op: &Op) -> OpResult {
        self.deviations.clear();
        let span = match op.range() {
            Some((start, len)) => Self::range(start, len),
            None => 0..self.pages.len(),
        };
        // (mprotect and mlock merge before they populate, themselves; so
        // does mremap, rule 18.)
        let merges_itself = matches!(
            op,
            Op::Protect { .. } | Op::Mlock { .. } | Op::Munlock { .. } | Op::Mremap { .. }
        );
        // (UFFDIO_WRITEPROTECT and the other ioctls change page tables
        // only; so do the advices that drop pages.)
        let drops = matches!(op, Op::Madvise { advice, .. } if advice.drops_pages());
        let no_merge = drops
            || matches!(
                op,
                Op::Fault { .. }
                    | Op::Unmap { .. }
                    | Op::WriteProtect { .. }
                    | Op::Fill { .. }
                    | Op::Move { .. }
            );
        let merges_after = !merges_itself && !no_merge;
        // The buffers, taken out of `self` for the op and put back empty;
        // only an op merged here needs its span's pages from before it.
        let mut before = std::mem::take(&mut self.scratch.before);
        let mut changed = std::mem::take(&mut self.scratch.changed);
        if merges_after {
            before.extend_from_slice(&self.pages[span.clone()]);
        }
        let around = match op {
            Op::Map { .. } => self.map_neighbours(&span),
            _ => None,
        };
        let r = self.dispatch(op);
        if merges_after {
            // A map is a new VMA even where it equals what it replaced
            // (rule 2).
            if matches!(op, Op::Map { .. }) && r.is_ok() {
                changed.extend(span.clone().filter(|&i| self.pages[i].is_some()));
            } else {
                self.push_changed(span.clone(), &before, &mut changed);
            }
            self.merge_around(&changed);
        }
        before.clear();
        changed.clear();
        self.scratch.before = before;
        self.scratch.changed = changed;
        if let Some(around) = around.filter(|_| r.is_ok()) {
            self.new_mapping_joins_next(span, around);
        }
        r
    }

    fn dispatch(&mut self, op: &Op) -> OpResult {
        if let Op::Fill { ctx, .. } | Op::Move { ctx, .. } = *op {
            if let Some(r) = self.ioctl_missing(op) {
                self.open.insert(ctx);
                return r;
            }
        }
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
            Op::Fault { page, read } => self.access(page, !read),
            Op::Fill {
                how,
                ctx,
                start,
                len,
                wp,
            } => self.fill(how, ctx, start, len, wp),
            Op::Move {
                ctx,
                src,
                start,
                len,
                holes,
            } => self.move_pages(ctx, src, start, len, holes),
            Op::Madvise { start, len, advice } => self.madvise(start, len, advice),
            Op::Mlock {
                start,
                len,
                onfault,
            } => self.mlock(start, len, true, onfault),
            Op::Munlock { start, len } => self.mlock(start, len, false, false),
            Op::Open { ctx, features } => self.open(ctx, features),
            Op::Mremap {
                start,
                len,
                newlen,
                to,
            } => self.mremap(start, len, newlen, to),
            // The parent does not change (`step` reads the child).
            Op::Fork => Ok(()),
            Op::WriteProtect {
                ctx,
                start,
                len,
                on,
            } => self.writeprotect(ctx, start, len, on),
        }
    }

    /// Where the VMA that holds `page` ends (the forward half of
    /// [`PageModel::vma_of`]).
    pub(crate) fn vma_end(&self, page: usize) -> usize {
        let mut end = page + 1;
        while end < self.pages.len() {
            match (&self.pages[end - 1], &self.pages[end]) {
                (Some(a), Some(b)) if a.same_vma(b) => end += 1,
                _ => break,
            }
        }
        end
    }

    /// The VMA that holds `page`: the maximal run of pages in one VMA.
    pub(crate) fn vma_of(&self, page: usize) -> Range<usize> {
        let mut start = page;
        while start > 0 {
            match (&self.pages[start - 1], &self.pages[start]) {
                (Some(a), Some(b)) if a.same_vma(b) => start -= 1,
                _ => break,
            }
        }
        start..self.vma_end(page)
    }

    /// Rule 5: left to right over neighbouring VMAs, at least one holding a
    /// changed page, equal but for the anon_vma, one without: the one
    /// without takes the other's.
    ///
    /// `changed` lists the changed pages in order; only the VMAs around
    /// them are looked at, so the cost follows the pages an op touched,
    /// not the arena.
    pub(crate) fn merge_around(&mut self, changed: &[usize]) {
        let (Some(&lo), Some(&hi)) = (changed.first(), changed.last()) else {
            return;
        };
        // Rule 20: a boundary next to a changed page goes.
        for &i in changed {
            for j in [i, i + 1] {
                if let Some(Some(p)) = self.pages.get_mut(j) {
                    p.apart = false;
                }
            }
        }
        let has_changed = |r: &Range<usize>| {
            let k = changed.partition_point(|&i| i < r.start);
            changed.get(k).is_some_and(|&i| i < r.end)
        };
        // From the VMA before the one of the first changed page, to the
        // last changed page.
        let first = self.vma_of(lo).start;
        let mut page = match first.checked_sub(1).filter(|&p| self.pages[p].is_some()) {
            Some(p) => self.vma_of(p).start,
            None => first,
        };
        while page <= hi && page < self.pages.len() {
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
            let touched = has_changed(&left) || has_changed(&right);
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

    /// Unmaps the pages of `range` (rule 3): the boundary after it goes
    /// (rule 20).
    pub(crate) fn clear(&mut self, range: Range<usize>) {
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

    /// What pagemap shows of page `p`'s page table entry (rule 1): a page
    /// read in private anonymous memory is the zero page, one written in
    /// private memory an anonymous page with its own content, any other a
    /// page of the page cache with the cache's content (the content tag
    /// shown where the page is readable).
    pub(crate) fn pte_state(&self, p: &PageState) -> Option<PteState> {
        let private = !p.flags.has(VmFlags::MAYSHARE);
        let (kind, tag) = match p.pte {
            Pte::None if p.wp => (PteKind::Marker, 0),
            Pte::None => return None,
            Pte::Poison => (PteKind::Poison, 0),
            Pte::Zero => (PteKind::Zero, 0),
            Pte::Read if p.backing == Backing::Anon => (PteKind::Zero, 0),
            Pte::Written if private => (PteKind::Anon, p.tag),
            Pte::Read | Pte::Written => (PteKind::File, self.cache_tag(p.backing, p.pgoff)),
        };
        // The tag is shown where the page is readable only (rule 1: the
        // kernel backend cannot read the others on every kernel).
        let tag = if p.prot.read() { tag } else { 0 };
        Some(PteState {
            kind,
            wp: p.wp,
            tag,
        })
    }

    /// The content tag of a page of the page cache (0 where none is set).
    pub(crate) fn cache_tag(&self, backing: Backing, pgoff: Page) -> u64 {
        self.cache_tags.get(&(backing, pgoff)).copied().unwrap_or(0)
    }

    /// The layout (rule 1): maximal runs of pages that are equal but for a
    /// page offset that advances by one per page, cut where a boundary is
    /// kept (rule 20): the runs of pages in one VMA
    /// ([`PageState::same_vma`]), with the page table entries, in one pass.
    pub fn layout(&self) -> Layout {
        self.layout_in(Layout::default())
    }

    /// [`PageModel::layout`], built in the vectors of `room` (a step's:
    /// the last layout handed back).
    fn layout_in(&self, room: Layout) -> Layout {
        // At most one VMA a page: a small arena's fit in what is reserved
        // up front, a larger one's grow as needed. The page table entries,
        // often none, get as much room at the first one (one allocation,
        // not one per doubling).
        let reserve = self.pages.len().min(LAYOUT_RESERVE);
        let (mut vmas, mut ptes) = room.into_buffers();
        vmas.reserve(reserve);
        // The page before this one, if it is mapped.
        let mut prev: Option<&PageState> = None;
        for (i, page) in self.pages.iter().enumerate() {
            let Some(p) = page else {
                prev = None;
                continue;
            };
            let i = i as Page;
            match vmas.last_mut() {
                Some(last) if prev.is_some_and(|q| q.same_vma(p)) => last.end += 1,
                _ => vmas.push(Vma {
                    start: i,
                    end: i + 1,
                    prot: p.prot,
                    backing: p.backing,
                    pgoff: p.pgoff,
                    flags: p.flags,
                    uffd: p.uffd,
                    ctx: p.ctx,
                    anon_vma: p.anon_vma,
                }),
            }
            if let Some(pte) = self.pte_state(p) {
                if ptes.capacity() == 0 {
                    ptes.reserve_exact(reserve);
                }
                ptes.push((i, pte));
            }
            prev = Some(p);
        }
        Layout::new(vmas).with_ptes(ptes)
    }
}

/// The VMAs [`PageModel::layout`] makes room for up front, and the page
/// table entries at the first one (the default arena of `check` has 16
/// pages).
const LAYOUT_RESERVE: usize = 32;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::run;

    /// The fingerprint walks its lists in place, and hashes each as the
    /// `Vec` of it would: the same value as the tuple of `Vec`s.
    #[test]
    fn the_fingerprint_hashes_the_lists_as_vecs() {
        let (m, _) = run(
            8,
            "map 0 4 rw- shmem
             map 4 4 rw- shared-file=0@0
             fault 0
             fault 5
             open 0 none
             register 0 4 2 wp
             unmap 6 1",
        );
        let written: Vec<(usize, Pte)> = (0..m.pages.len())
            .filter_map(|i| m.pages[i].map(|p| (i, p.pte)))
            .filter(|(_, pte)| *pte != Pte::None)
            .collect();
        assert!(!written.is_empty() && !m.cache.is_empty());
        let mut shmem_order: Vec<u32> = Vec::new();
        for p in m.pages.iter().flatten() {
            if let Backing::Shmem(id) = p.backing {
                if !shmem_order.contains(&id) {
                    shmem_order.push(id);
                }
            }
        }
        let cache: Vec<(Backing, Page)> = m
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
        let apart: Vec<usize> = (0..m.pages.len())
            .filter(|&i| m.pages[i].is_some_and(|p| p.apart))
            .collect();
        let tuple = (m.layout(), m.open, written, cache, apart);
        assert_eq!(m.fingerprint(), Some(uffd_vocab::fingerprint128(&tuple)));
    }

    /// A restored copy is its base, whatever it held before; the
    /// fingerprint after each step, a fork's included, is the plain one.
    #[test]
    fn restore_and_fingerprint_after_are_the_plain_ones() {
        let (mut copy, _) = run(8, "map 0 8 rw- anon\nfault 3\nopen 1 none");
        let mut m = PageModel::new(8);
        for line in [
            "map 0 4 rw- shmem",
            "map 4 4 rw- shared-file=0@0",
            "fault 0",
            "open 0 none",
            "register 0 4 2 wp",
            "fork",
            "unmap 6 1",
        ] {
            let op: Op = line.parse().unwrap();
            let o = m.step(&op).unwrap();
            assert_eq!(m.fingerprint_after(&op, &o), m.fingerprint(), "{op}");
            assert!(copy.restore(&m));
            assert_eq!(format!("{copy:?}"), format!("{m:?}"), "{op}");
        }
        assert!(!copy.restore(&crate::testing::NotAModel));
    }

    /// Outcomes handed back ([`Backend::recycle`]) change nothing in the
    /// outcomes after: their vectors are emptied or overwritten first.
    #[test]
    fn recycled_outcomes_change_nothing_after() {
        let trace = [
            "map 0 4 rw- shmem",
            "map 4 4 rw- anon",
            "fault 0",
            "open 0 none",
            "register 0 0 6 wp",
            "fault 5",
            "fork",
            "protect 0 2 r--",
            "unmap 6 1",
            "fault 1",
        ];
        let mut plain = PageModel::new(8);
        let mut m = PageModel::new(8);
        for line in trace {
            let op: Op = line.parse().unwrap();
            let want = plain.step(&op).unwrap();
            let mut got = m.step(&op).unwrap();
            assert_eq!(got, want, "{line}");
            m.recycle(&mut got);
        }
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
}
