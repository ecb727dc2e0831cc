//! # uffd-impl
//!
//! The VMAs of the arena are kept the way the kernel keeps them: a sorted,
//! non-overlapping map of intervals, where every modifying operation touches
//! only the VMAs in its range and merges only at the edges of that range,
//! chaining `prev` left to right. This crate's job is to show, case by case
//! against the page model and the live kernel, that the kernel's way of
//! doing it keeps the layout maximally merged (or, where it does not, to do
//! what the kernel does: the known deviations).
//!
//! Each module is shaped like one kernel file, under the kernel's names, so
//! that an mm developer can read it side by side with the source. The merge
//! step keeps the shape of Linux 6.5's `vma_merge()` (its cases 1 to 8 are
//! the vocabulary of the May 2023 LKML thread); the callers follow the
//! release named in each module:
//!
//! | here | Linux |
//! |---|---|
//! | [`merge`]: `Vmg`, `vma_merge`, the case table [`MERGE_CASES`], `is_mergeable_anon_vma` | `vma_merge()` of 6.5 (mm/mmap.c), the anon_vma test of 6.16 |
//! | `mm.rs`: `mmap_region`, `do_vmi_munmap`, `do_mprotect_pkey`, `mprotect_fixup` | mm/mmap.c, mm/mprotect.c |
//! | `uffd.rs`: `userfaultfd_register`, `_unregister`, `_release`; the events: `userfaultfd_unmap_prep`, `_unmap_complete`, `userfaultfd_remove`, `dup_userfaultfd`, `_complete` | fs/userfaultfd.c with the May 2023 fixes; its events as in 6.18 |
//! | `fault.rs`: the write and read faults, `do_fault_around`, `anon_vma_prepare`, `find_mergeable_anon_vma` | mm/memory.c, mm/rmap.c |
//! | `pgtable.rs`: the page table entries (pages, markers, uffd-wp bits, content tags, `PageAnonExclusive`), `zap_pte_range` | mm/memory.c |
//! | `userfaultfd.rs`: `mfill_atomic` (UFFDIO_COPY, ZEROPAGE, CONTINUE, POISON), `move_pages` (UFFDIO_MOVE) | mm/userfaultfd.c, mm/shmem.c |
//! | [`madvise`]: `madvise_walk_vmas`, `madvise_update_vma`, `madvise_dontneed_free`, `madvise_remove` | mm/madvise.c |
//! | `mlock.rs`: `apply_vma_lock_flags`, `mlock_fixup`, `__mm_populate` | mm/mlock.c, mm/gup.c |
//! | `mremap.rs`: `do_mremap`, `remap_move`, `move_vma`, `copy_vma`, `dontunmap_complete`, `notify_uffd`, `mremap_userfaultfd_prep`, `_complete` | mm/mremap.c of 6.18 |
//! | `fork.rs`: `dup_mmap` for the child's VMAs, `copy_page_range` | kernel/fork.c of 6.18, mm/memory.c |
//! | [`bugs`]: the historic bugs, one table, and the switches that put them back | their fixes |
//!
//! Costs: VMAs live in a `BTreeMap` keyed by start, never in a per-page array,
//! so `map`, `unmap`, `protect`, `register` and `unregister` cost
//! O(log n + k) for n VMAs of which k are in the range. `close` walks every
//! VMA, as the kernel's `userfaultfd_release` walks the whole mm.
//!
//! Preconditions are checked the way the kernel's `VM_WARN_ON` checks them: a
//! violation is recorded as an `impl-internal` entry of the step's
//! [`StepReport`] with the condition and the whole merge state, and the step
//! goes on. Nothing here panics.
//!
//! [`Bugs`] puts back historic kernel bugs ([`HISTORIC_BUGS`], ten of them:
//! the two May 2023 bugs of the uffd callers and their rejected fix, the
//! 2022 unregister iterator, two mremap and two mprotect bugs, the anon_vma
//! merge bug fixed in 6.16), with exactly the kernel's consequences, so the
//! harness can show that it finds them.

use std::collections::BTreeMap;
use std::fmt;

use uffd_vocab::{
    Backend, Backing, Contexts, Event, Layout, Mode, Op, OpResult, Outcome, Page, Prot, StepReport,
    Unsupported, VmFlags, Vma,
};

pub mod bugs;
mod fault;
mod fork;
pub mod madvise;
pub mod merge;
mod mlock;
mod mm;
mod mremap;
mod pgtable;
mod uffd;
mod userfaultfd;

pub use bugs::{Bugs, HistoricBug, Switch, HISTORIC_BUGS};
pub use merge::{CaseRow, Shape, MERGE_CASES};

/// The invariant name under which precondition violations are reported.
pub const IMPL_INTERNAL: &str = "impl-internal";

/// Records a violated precondition, like the kernel's `VM_WARN_ON_VMG`: the
/// condition, written as the kernel writes it (`$text`), and the state it
/// was checked against go into the step's report as an `impl-internal`
/// violation. Evaluates to the condition, so a caller can also bail out.
macro_rules! vm_warn_on {
    ($imp:expr, $text:literal, $cond:expr, $state:expr) => {{
        let hit: bool = $cond;
        if hit {
            $imp.warn(concat!("VM_WARN_ON(", $text, ")"), &$state);
        }
        hit
    }};
}
pub(crate) use vm_warn_on;

/// Everything that decides whether two adjacent VMAs merge, besides their
/// bounds and page offsets (docs/kernel-rules.md §1): the kernel's `vm_flags` (prot,
/// flags, uffd bits), `vm_file` and `vm_userfaultfd_ctx`. Also the attributes
/// a merge proposes for a range.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Attrs {
    pub prot: Prot,
    pub flags: VmFlags,
    pub object: Backing,
    pub uffd: Mode,
    pub ctx: Option<u8>,
}

impl fmt::Debug for Attrs {
    /// `rw- anon account maywrite uffd=missing ctx=0`, as in a layout line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {:?}", self.prot, self.object, self.flags)?;
        if !self.uffd.is_empty() {
            write!(f, " uffd={}", self.uffd)?;
        }
        if let Some(c) = self.ctx {
            write!(f, " ctx={c}")?;
        }
        Ok(())
    }
}

/// One VMA: `[start, end)` at page offset `pgoff` into its object.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct VmaState {
    pub start: Page,
    pub end: Page,
    pub pgoff: Page,
    pub attrs: Attrs,
    /// `vma->anon_vma`, by identity.
    pub anon_vma: Option<u32>,
}

impl VmaState {
    pub fn len(&self) -> Page {
        self.end.wrapping_sub(self.start)
    }
    /// The vocabulary's view of this VMA.
    pub fn to_vma(self) -> Vma {
        Vma {
            start: self.start,
            end: self.end,
            prot: self.attrs.prot,
            backing: self.attrs.object,
            pgoff: self.pgoff,
            flags: self.attrs.flags,
            uffd: self.attrs.uffd,
            ctx: self.attrs.ctx,
            anon_vma: self.anon_vma,
        }
    }
}

impl fmt::Debug for VmaState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_vma())
    }
}

/// A `BTreeMap` that remembers whether it was changed: reads go through
/// `Deref`, and every way to change it ([`Tracked::insert`],
/// [`Tracked::remove`], [`Tracked::get_mut`]) marks it changed, so that
/// [`Backend::step`] can hand out the layout it built before when neither
/// the VMAs nor the page tables changed since.
pub(crate) struct Tracked<K, V> {
    map: BTreeMap<K, V>,
    changed: bool,
}

impl<K: Clone + PartialEq, V: Clone + PartialEq> Clone for Tracked<K, V> {
    fn clone(&self) -> Self {
        Tracked {
            map: self.map.clone(),
            changed: self.changed,
        }
    }

    /// The map is cloned only where it differs ([`clone_if_differs`]).
    fn clone_from(&mut self, source: &Self) {
        clone_if_differs(&mut self.map, &source.map);
        self.changed = source.changed;
    }
}

/// `*to = from.clone()`, but only when they differ: a B-tree cannot be
/// cloned into the memory of another, and most of explore's transitions
/// leave a copy's maps as its base has them ([`Backend::restore`]).
fn clone_if_differs<K: Clone + PartialEq, V: Clone + PartialEq>(
    to: &mut BTreeMap<K, V>,
    from: &BTreeMap<K, V>,
) {
    if to != from {
        *to = from.clone();
    }
}

impl<K: Ord, V> Tracked<K, V> {
    pub fn new() -> Self {
        Tracked {
            map: BTreeMap::new(),
            changed: true,
        }
    }
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        self.changed = true;
        self.map.insert(key, value)
    }
    pub fn remove(&mut self, key: &K) -> Option<V> {
        self.changed = true;
        self.map.remove(key)
    }
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.changed = true;
        self.map.get_mut(key)
    }
    /// Was the map changed since the last call?
    fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }
}

impl<K, V> std::ops::Deref for Tracked<K, V> {
    type Target = BTreeMap<K, V>;
    fn deref(&self) -> &BTreeMap<K, V> {
        &self.map
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for Tracked<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.map.fmt(f)
    }
}

/// The interval implementation of the [`Backend`] trait (see the crate docs).
#[derive(Clone, Debug)]
pub struct IntervalImpl {
    pages: Page,
    bugs: Bugs,
    /// The VMAs, keyed by start.
    vmas: Tracked<Page, VmaState>,
    /// The uffd contexts that are open, with their features (opened by
    /// open, register or unregister, closed by close).
    open: Contexts,
    /// Name of the next shmem object (one per `MAP_SHARED|MAP_ANONYMOUS` mmap).
    next_shmem: u32,
    /// The size in pages of each shmem object (`i_size`).
    shmem_size: BTreeMap<u32, Page>,
    /// Name of the next anon_vma.
    next_anon_vma: u32,
    /// The page tables ([`pgtable`]): the arena pages that have an
    /// entry, present or a marker, kept as the kernel keeps them, outside
    /// the VMA tree.
    ptes: Tracked<Page, pgtable::Pte>,
    /// The page cache of the memfds and shmem objects: (object, page
    /// offset) with the content tag of the page.
    page_cache: BTreeMap<(Backing, Page), u64>,
    /// The uffd events the current step raised, in the order the kernel
    /// sends them ([`uffd`]'s `userfaultfd_*_complete`).
    events: Vec<Event>,
    /// `ctx->mmap_changing`: the ctx whose REMAP an mremap has still to
    /// send (from `mremap_userfaultfd_prep` to `notify_uffd`); its fill and
    /// write-protect ioctls are EAGAIN meanwhile. Only a fault that the
    /// mremap's own populate delivers can see it.
    mmap_changing: Option<u8>,
    report: StepReport,
    /// The layout the last step returned, while `vmas` and `ptes` have not
    /// changed since (only what they hold decides a layout).
    shown: Option<Layout>,
    /// The vectors of outcomes handed back ([`Backend::recycle`]).
    spare: Spare,
}

/// The vectors of the last outcome [`Backend::recycle`] handed back, kept
/// only for their memory, for the next step to fill: the layout's content
/// is never read (building one empties it first, a clone overwrites it),
/// the rest is emptied. No state: a clone starts with none, a reset and a
/// restore keep it, and it does not print.
#[derive(Default)]
struct Spare {
    layout: Layout,
    events: Vec<Event>,
    report: StepReport,
}

impl Clone for Spare {
    fn clone(&self) -> Spare {
        Spare::default()
    }
}

impl fmt::Debug for Spare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("..")
    }
}

impl IntervalImpl {
    /// An empty arena of `pages` pages, with the kernel's fixes in.
    pub fn new(pages: Page) -> Self {
        Self::with_bugs(pages, Bugs::default())
    }

    /// An empty arena of `pages` pages, with the given historic bugs put back.
    pub fn with_bugs(pages: Page, bugs: Bugs) -> Self {
        IntervalImpl {
            pages,
            bugs,
            vmas: Tracked::new(),
            open: Contexts::default(),
            next_shmem: 0,
            shmem_size: BTreeMap::new(),
            next_anon_vma: 0,
            ptes: Tracked::new(),
            page_cache: BTreeMap::new(),
            events: Vec::new(),
            mmap_changing: None,
            report: StepReport::default(),
            shown: None,
            spare: Spare::default(),
        }
    }

    /// The bugs this implementation was made with.
    pub fn bugs(&self) -> Bugs {
        self.bugs
    }

    /// How many VMAs the arena has now (O(1)).
    pub fn vma_count(&self) -> usize {
        self.vmas.len()
    }

    // --- Lookups, each O(log n) or O(log n + k), named as in the kernel. ---

    /// The VMAs that intersect `[start, end)`, left to right.
    pub(crate) fn vmas_in(&self, start: Page, end: Page) -> impl Iterator<Item = VmaState> + '_ {
        let head = self.vma_straddling(start).filter(|_| start < end);
        // (One search, for the lower bound only: the walk stops at `end`.)
        let rest = self
            .vmas
            .range(start..)
            .take_while(move |(&key, _)| key < end)
            .map(|(_, v)| *v);
        head.into_iter().chain(rest)
    }

    /// The VMA that starts below `start` and reaches past it, if any.
    fn vma_straddling(&self, start: Page) -> Option<VmaState> {
        self.vmas
            .range(..start)
            .next_back()
            .map(|(_, v)| *v)
            .filter(|v| v.end > start)
    }

    /// `find_vma_intersection(mm, start, end)`: the first VMA that intersects
    /// `[start, end)`; none when the range is empty.
    pub(crate) fn find_vma_intersection(&self, start: Page, end: Page) -> Option<VmaState> {
        if start >= end {
            return None;
        }
        self.vma_straddling(start).or_else(|| {
            self.vmas
                .range(start..)
                .next()
                .filter(|(&key, _)| key < end)
                .map(|(_, v)| *v)
        })
    }

    /// `vma_lookup(mm, addr)`: the VMA that contains `addr`.
    pub(crate) fn vma_lookup(&self, addr: Page) -> Option<VmaState> {
        self.vmas
            .range(..=addr)
            .next_back()
            .map(|(_, v)| *v)
            .filter(|v| v.end > addr)
    }

    /// The VMA before the one that starts at `start` (or before the hole at
    /// `start`): the last VMA that starts below `start`.
    pub(crate) fn vma_before(&self, start: Page) -> Option<VmaState> {
        self.vmas.range(..start).next_back().map(|(_, v)| *v)
    }

    // --- The primitive edits. ---

    /// `__split_vma`: splits the VMA that starts at `key` at `at`; the upper
    /// piece's pgoff stays linear. Returns the upper piece.
    pub(crate) fn split(&mut self, key: Page, at: Page) -> Option<VmaState> {
        let Some(lower) = self.vmas.get_mut(&key) else {
            self.warn("split: no VMA starts at the key", &(key, at));
            return None;
        };
        if !(lower.start < at && at < lower.end) {
            let state = (*lower, at);
            self.warn(
                "split: the split point is not strictly inside the VMA",
                &state,
            );
            return None;
        }
        let upper = VmaState {
            start: at,
            end: lower.end,
            pgoff: lower.pgoff.wrapping_add(at - lower.start),
            attrs: lower.attrs,
            // anon_vma_clone(): the halves share it.
            anon_vma: lower.anon_vma,
        };
        lower.end = at;
        self.vmas.insert(at, upper);
        Some(upper)
    }

    /// Sets the attributes of the VMA that starts at `key` (the callers'
    /// `vm_flags_reset` / `userfaultfd_set_vm_flags` and ctx assignment).
    pub(crate) fn set_attrs(&mut self, key: Page, attrs: Attrs) -> Option<VmaState> {
        match self.vmas.get_mut(&key) {
            Some(v) => {
                v.attrs = attrs;
                Some(*v)
            }
            None => {
                self.warn("set_attrs: no VMA starts at the key", &(key, attrs));
                None
            }
        }
    }

    /// Records a coverage event of the step (see `StepReport::covered`).
    pub(crate) fn event(&mut self, name: &'static str) {
        self.report.covered.push(name);
    }

    /// Records an `impl-internal` violation (see `vm_warn_on!`). Conditions
    /// that fire on the same state in one step share one violation: the
    /// conditions first, then the state once.
    pub(crate) fn warn(&mut self, cond: &str, state: &dyn fmt::Debug) {
        let state = format!("{state:?}");
        if let Some((_, text)) = self
            .report
            .violations
            .iter_mut()
            .rev()
            .find(|(name, text)| *name == IMPL_INTERNAL && text.ends_with(&state))
        {
            let at = text.len() - state.len();
            text.insert_str(at, &format!("{cond}\n"));
            return;
        }
        self.report
            .violations
            .push((IMPL_INTERNAL, format!("{cond}\n{state}")));
    }

    /// Checks the map around `[lo, hi)` after a step, in O(log n + k): every
    /// VMA non-empty and inside the arena, neighbours sorted and not
    /// overlapping, keys equal to starts, and uffd bits set iff a ctx is.
    fn check_window(&mut self, lo: Page, hi: Page) {
        let from = self.vma_before(lo).map_or(0, |v| v.start);
        let mut bad = Vec::new();
        // (By reference: copying each VMA out stalled on its stack copy.)
        let mut last: Option<&VmaState> = None;
        for (&key, v) in self.vmas.range(from..) {
            if key != v.start || v.start >= v.end || v.end > self.pages {
                bad.push(format!("malformed VMA under key {key}: {v:?}"));
            }
            if v.attrs.uffd.is_empty() != v.attrs.ctx.is_none() {
                bad.push(format!("uffd bits set iff a ctx is set: {v:?}"));
            }
            if let Some(l) = last.filter(|l| l.end > v.start) {
                bad.push(format!("overlap: {l:?} and {v:?}"));
            }
            last = Some(v);
            // The first VMA at or after `hi` is the last one checked.
            if key >= hi {
                break;
            }
        }
        for b in bad {
            self.warn("well-formed map after the step", &b);
        }
    }

    /// Runs one op (without reading the layout back): clears the report,
    /// runs it, checks the touched window.
    pub fn run_op(&mut self, op: &Op) -> OpResult {
        self.report = StepReport::default();
        self.events.clear();
        let (lo, hi) = match op.range() {
            Some((start, len)) => (start, start.saturating_add(len)),
            None => (0, self.pages),
        };
        let r = match *op {
            Op::Map {
                start,
                len,
                prot,
                kind,
            } => self.do_mmap(start, len, prot, kind),
            Op::Unmap { start, len } => self.do_munmap(start, len),
            Op::Protect { start, len, prot } => self.do_mprotect(start, len, prot),
            Op::Register {
                ctx,
                start,
                len,
                mode,
            } => self.userfaultfd_register(ctx, start, len, mode),
            Op::Unregister { ctx, start, len } => self.userfaultfd_unregister(ctx, start, len),
            Op::Close { ctx } => self.userfaultfd_release(ctx),
            Op::Fault { page, read } => self.handle_access_fault(page, !read),
            Op::Fill {
                how,
                ctx,
                start,
                len,
                wp,
            } => self.mfill_atomic(how, ctx, start, len, wp),
            Op::Move {
                ctx,
                src,
                start,
                len,
                holes,
            } => self.move_pages(ctx, start, src, len, holes),
            Op::Madvise { start, len, advice } => self.do_madvise(start, len, advice),
            Op::Mlock {
                start,
                len,
                onfault,
            } => self.do_mlock(start, len, true, onfault),
            Op::Munlock { start, len } => self.do_mlock(start, len, false, false),
            Op::Open { ctx, features } => self.userfaultfd_open(ctx, features),
            Op::Mremap {
                start,
                len,
                newlen,
                to,
            } => self.do_mremap(start, len, newlen, to),
            // The parent does not change; `step` reads the child.
            Op::Fork => Ok(()),
            Op::WriteProtect {
                ctx,
                start,
                len,
                on,
            } => self.userfaultfd_writeprotect(ctx, start, len, on),
        };
        self.check_window(lo, hi);
        r
    }

    /// The VMAs of the arena now.
    pub fn layout(&self) -> Layout {
        self.layout_in(Layout::default())
    }

    /// [`IntervalImpl::layout`], built in the vectors of `room`.
    fn layout_in(&self, room: Layout) -> Layout {
        let (mut vmas, mut ptes) = room.into_buffers();
        vmas.extend(self.vmas.values().map(|v| v.to_vma()));
        self.push_pte_states(&mut ptes);
        Layout::new(vmas).with_ptes(ptes)
    }

    /// [`IntervalImpl::layout`], for `step`, in a spare layout's vectors:
    /// the last step's layout again when neither the VMAs nor the page
    /// tables changed since (most steps: faults, fills, failed ops…),
    /// else built anew (and kept, in the memory of the one it replaces).
    fn shown_layout(&mut self) -> Layout {
        let changed = self.vmas.take_changed() | self.ptes.take_changed();
        let room = std::mem::take(&mut self.spare.layout);
        match &self.shown {
            Some(shown) if !changed => {
                let mut layout = room;
                layout.clone_from(shown);
                layout
            }
            _ => {
                let layout = self.layout_in(room);
                let shown = self.shown.get_or_insert_with(Layout::default);
                shown.clone_from(&layout);
                layout
            }
        }
    }

    /// The uffd contexts open now.
    pub fn open_contexts(&self) -> Contexts {
        self.open
    }
}

impl Backend for IntervalImpl {
    fn name(&self) -> &'static str {
        "impl"
    }
    fn pages(&self) -> Page {
        self.pages
    }
    fn step(&mut self, op: &Op) -> Result<Outcome, Unsupported> {
        let result = self.run_op(op);
        let layout = match op {
            Op::Fork => self.dup_mmap(),
            _ => self.shown_layout(),
        };
        let events = std::mem::take(&mut self.spare.events);
        let report = std::mem::take(&mut self.spare.report);
        Ok(Outcome {
            backend: "impl",
            result,
            layout,
            open: self.open_contexts(),
            events: std::mem::replace(&mut self.events, events),
            report: std::mem::replace(&mut self.report, report),
        })
    }
    /// Takes the outcome's vectors, for the next step.
    fn recycle(&mut self, outcome: &mut Outcome) {
        let spare = &mut self.spare;
        std::mem::swap(&mut spare.layout, &mut outcome.layout);
        std::mem::swap(&mut spare.events, &mut outcome.events);
        spare.events.clear();
        std::mem::swap(&mut spare.report, &mut outcome.report);
        spare.report.clear();
    }
    fn reset(&mut self) {
        let spare = std::mem::take(&mut self.spare);
        *self = Self::with_bugs(self.pages, self.bugs);
        self.spare = spare;
    }
    fn snapshot(&self) -> Option<Box<dyn Backend>> {
        Some(Box::new(self.clone()))
    }
    fn restore(&mut self, base: &dyn Backend) -> bool {
        uffd_vocab::restore_with(base, |base: &IntervalImpl| self.restore_from(base))
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

impl IntervalImpl {
    /// Makes this implementation what `base` is, as a clone would, in the
    /// memory its vectors hold ([`Backend::restore`]; a B-tree is cloned
    /// anew where it differs). Every field is named, so a new one cannot be
    /// forgotten here.
    pub fn restore_from(&mut self, base: &IntervalImpl) {
        let IntervalImpl {
            pages,
            bugs,
            vmas,
            open,
            next_shmem,
            shmem_size,
            next_anon_vma,
            ptes,
            page_cache,
            events,
            mmap_changing,
            report,
            shown,
            spare: _,
        } = self;
        *pages = base.pages;
        *bugs = base.bugs;
        vmas.clone_from(&base.vmas);
        *open = base.open;
        *next_shmem = base.next_shmem;
        clone_if_differs(shmem_size, &base.shmem_size);
        *next_anon_vma = base.next_anon_vma;
        ptes.clone_from(&base.ptes);
        clone_if_differs(page_cache, &base.page_cache);
        events.clone_from(&base.events);
        *mmap_changing = base.mmap_changing;
        report.clone_from(&base.report);
        shown.clone_from(&base.shown);
    }
}

/// Helpers for the unit tests of every module.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// Runs a trace (one op per line, `#` comments) and returns each op's
    /// outcome.
    pub fn outcomes(imp: &mut IntervalImpl, trace: &str) -> Vec<Outcome> {
        let mut out = Vec::new();
        for line in trace.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let op: Op = line.parse().unwrap_or_else(|e| panic!("{line}: {e}"));
            op.validate(imp.pages()).unwrap();
            out.push(imp.step(&op).expect("the implementation knows every op"));
        }
        out
    }

    /// Runs a trace and returns each op's result and report.
    pub fn run_all(imp: &mut IntervalImpl, trace: &str) -> Vec<(OpResult, StepReport)> {
        outcomes(imp, trace)
            .into_iter()
            .map(|o| (o.result, o.report))
            .collect()
    }

    /// Runs a trace and returns the result and report of its last op.
    pub fn run(imp: &mut IntervalImpl, trace: &str) -> (OpResult, StepReport) {
        run_all(imp, trace).pop().expect("an empty trace")
    }

    /// The layout, one `Vma` display line per VMA.
    pub fn lines(imp: &mut IntervalImpl) -> Vec<String> {
        imp.layout().vmas().iter().map(|v| v.to_string()).collect()
    }

    /// Runs a trace that must succeed throughout, without violations.
    pub fn ok(imp: &mut IntervalImpl, trace: &str) {
        for (r, rep) in run_all(imp, trace) {
            assert_eq!(r, Ok(()), "{trace}");
            assert!(rep.violations.is_empty(), "{:#?}", rep.violations);
        }
    }

    /// The bounds of the VMAs.
    pub fn bounds(imp: &mut IntervalImpl) -> Vec<(Page, Page)> {
        imp.layout()
            .vmas()
            .iter()
            .map(|v| (v.start, v.end))
            .collect()
    }

    /// Runs `trace` on a fresh, correct implementation of 64 pages and
    /// returns the layout lines and the last op's report, asserting that
    /// every op succeeded and no precondition was violated.
    pub fn fixed(trace: &str) -> (Vec<String>, Vec<u8>) {
        let mut imp = IntervalImpl::new(64);
        let steps = run_all(&mut imp, trace);
        for (r, rep) in &steps {
            assert_eq!(*r, Ok(()), "{trace}");
            assert!(rep.violations.is_empty(), "{:#?}", rep.violations);
        }
        let merges = steps.last().map(|s| s.1.merges.clone()).unwrap_or_default();
        (lines(&mut imp), merges)
    }
}

/// Tests of the crate's own bookkeeping (what the differential tests see
/// only through its consequences): the bug table, the debug forms, the
/// window check, the warnings, the coverage events.
#[cfg(test)]
mod tests;
