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
//! | `uffd.rs`: `userfaultfd_register`, `_unregister`, `_release` | fs/userfaultfd.c with the May 2023 fixes |
//! | `fault.rs`: the write fault, `anon_vma_prepare`, `find_mergeable_anon_vma` | mm/memory.c, mm/rmap.c |
//! | [`madvise`]: `madvise_walk_vmas`, `madvise_update_vma` | mm/madvise.c |
//! | `mlock.rs`: `apply_vma_lock_flags`, `mlock_fixup`, `__mm_populate` | mm/mlock.c, mm/gup.c |
//! | `mremap.rs`: `do_mremap`, `remap_move`, `move_vma`, `copy_vma`, `dontunmap_complete` | mm/mremap.c of 6.18 |
//! | `fork.rs`: `dup_mmap` for the child's VMAs | kernel/fork.c of 6.18 |
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

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use uffd_vocab::{
    Backend, Backing, Contexts, Layout, Mode, Op, OpResult, Outcome, Page, Prot, StepReport,
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
mod uffd;

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

/// The interval implementation of the [`Backend`] trait (see the crate docs).
#[derive(Clone, Debug)]
pub struct IntervalImpl {
    pages: Page,
    bugs: Bugs,
    /// The VMAs, keyed by start.
    vmas: BTreeMap<Page, VmaState>,
    /// The uffd contexts that are open, with their features (opened by
    /// open, register or unregister, closed by close).
    open: Contexts,
    /// Name of the next shmem object (one per `MAP_SHARED|MAP_ANONYMOUS` mmap).
    next_shmem: u32,
    /// The size in pages of each shmem object (`i_size`).
    shmem_size: BTreeMap<u32, Page>,
    /// Name of the next anon_vma.
    next_anon_vma: u32,
    /// The page tables: arena pages with a page mapped, writable (`true`:
    /// written since it was mapped, a write takes no fault) or read-only
    /// (`false`: the zero page or a file page mapped by a read fault, a
    /// write takes a write-protect fault).
    ptes: BTreeMap<Page, bool>,
    /// The page cache of the memfds and shmem objects: (object, page offset).
    page_cache: BTreeSet<(Backing, Page)>,
    report: StepReport,
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
            vmas: BTreeMap::new(),
            open: Contexts::default(),
            next_shmem: 0,
            shmem_size: BTreeMap::new(),
            next_anon_vma: 0,
            ptes: BTreeMap::new(),
            page_cache: BTreeSet::new(),
            report: StepReport::default(),
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
        let head = self
            .vmas
            .range(..start)
            .next_back()
            .filter(|(_, v)| v.end > start && start < end);
        let rest = self.vmas.range(start..end.max(start));
        head.into_iter().chain(rest).map(|(_, v)| *v)
    }

    /// `find_vma_intersection(mm, start, end)`: the first VMA that intersects
    /// `[start, end)`; none when the range is empty.
    pub(crate) fn find_vma_intersection(&self, start: Page, end: Page) -> Option<VmaState> {
        if start >= end {
            return None;
        }
        self.vmas_in(start, end).next()
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

    /// Records a coverage event of the step (see `StepReport::events`).
    pub(crate) fn event(&mut self, name: &'static str) {
        self.report.events.push(name);
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
        let after = self.vmas.range(hi..).next().map(|(k, _)| *k);
        let mut bad = Vec::new();
        let mut last: Option<VmaState> = None;
        for (&key, &v) in self.vmas.range(from..) {
            if after.is_some_and(|a| key > a) {
                break;
            }
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
        }
        for b in bad {
            self.warn("well-formed map after the step", &b);
        }
    }

    /// Runs one op (without reading the layout back): clears the report,
    /// runs it, checks the touched window.
    pub fn run_op(&mut self, op: &Op) -> OpResult {
        self.report = StepReport::default();
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
            Op::Fault { page } => self.handle_write_fault(page),
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
        };
        self.check_window(lo, hi);
        r
    }

    /// The VMAs of the arena now.
    pub fn layout(&self) -> Layout {
        Layout::new(self.vmas.values().map(|v| v.to_vma()).collect())
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
            _ => self.layout(),
        };
        Ok(Outcome {
            backend: "impl",
            result,
            layout,
            open: self.open_contexts(),
            report: std::mem::take(&mut self.report),
        })
    }
    fn reset(&mut self) {
        *self = Self::with_bugs(self.pages, self.bugs);
    }
    fn snapshot(&self) -> Option<Box<dyn Backend>> {
        Some(Box::new(self.clone()))
    }
}

/// Helpers for the unit tests of every module.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// Runs a trace (one op per line, `#` comments) and returns each op's
    /// result and report.
    pub fn run_all(imp: &mut IntervalImpl, trace: &str) -> Vec<(OpResult, StepReport)> {
        let mut out = Vec::new();
        for line in trace.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let op: Op = line.parse().unwrap_or_else(|e| panic!("{line}: {e}"));
            op.validate(imp.pages()).unwrap();
            let o = imp.step(&op).expect("the implementation knows every op");
            out.push((o.result, o.report));
        }
        out
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
mod tests {
    use super::testing::run_all;
    use super::*;

    #[test]
    fn the_implementation_keeps_its_bugs() {
        let imp = IntervalImpl::with_bugs(4, HISTORIC_BUGS[3].bugs);
        assert_eq!(imp.bugs(), HISTORIC_BUGS[3].bugs);
        assert_eq!(imp.name(), "impl");
    }

    #[test]
    fn debug_forms_are_layout_lines() {
        let mut imp = IntervalImpl::new(8);
        run_all(&mut imp, "map 0 4 rw- anon\nregister 1 0 4 missing");
        let v = *imp.vmas.get(&0).unwrap();
        assert_eq!(
            format!("{v:?}"),
            "[0,4) rw- anon@0 account maywrite uffd=missing ctx=1"
        );
        assert_eq!(
            format!("{:?}", v.attrs),
            "rw- anon account maywrite uffd=missing ctx=1"
        );
    }

    #[test]
    fn a_split_outside_the_vma_warns_and_changes_nothing() {
        let mut imp = IntervalImpl::new(8);
        run_all(&mut imp, "map 0 4 rw- anon");
        for at in [0, 4, 5] {
            assert!(imp.split(0, at).is_none(), "split at {at}");
        }
        assert_eq!(imp.report.violations.len(), 3);
        assert_eq!(imp.vma_count(), 1);
        assert!(imp.split(0, 1).is_some());
        assert_eq!(imp.vma_count(), 2);
    }

    /// `find_vma_intersection(mm, start, end)` with `end <= start` finds
    /// nothing, even inside a VMA: the range is empty.
    #[test]
    fn an_empty_range_intersects_nothing() {
        let mut imp = IntervalImpl::new(8);
        let (r, _) = crate::testing::run(&mut imp, "map 0 4 rw- anon");
        assert_eq!(r, Ok(()));
        assert_eq!(imp.find_vma_intersection(2, 2), None);
        assert_eq!(imp.find_vma_intersection(3, 1), None);
        assert_eq!(imp.vmas_in(2, 2).count(), 0);
        assert_eq!(imp.find_vma_intersection(2, 3).map(|v| v.start), Some(0));
        assert_eq!(imp.find_vma_intersection(0, 1).map(|v| v.start), Some(0));
    }

    #[test]
    fn warnings_on_different_states_stay_apart() {
        let mut imp = IntervalImpl::new(8);
        imp.warn("VM_WARN_ON(a)", &1);
        imp.warn("VM_WARN_ON(b)", &1);
        imp.warn("VM_WARN_ON(c)", &2);
        let v = &imp.report.violations;
        assert_eq!(v.len(), 2, "{v:?}");
        assert_eq!(v[0].1, "VM_WARN_ON(a)\nVM_WARN_ON(b)\n1");
        assert_eq!(v[1].1, "VM_WARN_ON(c)\n2");
    }

    #[test]
    fn the_window_check_reports_a_broken_map() {
        for broken in [
            // Overlapping neighbours.
            (0u64, 4u64, 2u64, 6u64, None, Mode::NONE),
            // A VMA past the arena.
            (0, 2, 6, 9, None, Mode::NONE),
            // uffd bits without a ctx.
            (0, 2, 4, 6, None, Mode::WP),
            // A ctx without uffd bits.
            (0, 2, 4, 6, Some(1), Mode::NONE),
        ] {
            let (s1, e1, s2, e2, ctx, uffd) = broken;
            let mut imp = IntervalImpl::new(8);
            run_all(&mut imp, &format!("map {s1} {} rw- anon", e1 - s1));
            let mut v = *imp.vmas.get(&s1).unwrap();
            v.start = s2;
            v.end = e2;
            v.pgoff = s2;
            v.attrs.ctx = ctx;
            v.attrs.uffd = uffd;
            v.attrs.prot = Prot::NONE;
            imp.vmas.insert(s2, v);
            let o = imp.step(&"madvise 0 8 dodump".parse().unwrap()).unwrap();
            assert!(
                o.report
                    .violations
                    .iter()
                    .any(|(n, t)| *n == IMPL_INTERNAL && t.contains("well-formed")),
                "{broken:?}: {:?}",
                o.report
            );
        }
        // An empty VMA, and one filed under a key that is not its start.
        for (key, start, end) in [(4u64, 4u64, 4u64), (4, 5, 6)] {
            let mut imp = IntervalImpl::new(8);
            run_all(&mut imp, "map 0 2 rw- anon");
            let mut v = *imp.vmas.get(&0).unwrap();
            (v.start, v.end) = (start, end);
            imp.vmas.insert(key, v);
            // (An op that does not walk the broken map: only the check sees it.)
            let o = imp.step(&"unmap 3 1".parse().unwrap()).unwrap();
            assert!(
                !o.report.violations.is_empty(),
                "[{start},{end}) under {key}: {:?}",
                o.report
            );
        }
        // The window reaches the first VMA after the op's range, and no
        // further: a broken VMA right there is seen, and so is one inside.
        for (op, broken_at) in [("madvise 0 2 dodump", 2u64), ("madvise 0 2 dodump", 0)] {
            let mut imp = IntervalImpl::new(8);
            run_all(
                &mut imp,
                "map 0 2 rw- anon\nmap 2 2 r-- anon\nmap 6 2 rw- anon",
            );
            imp.vmas.get_mut(&broken_at).unwrap().attrs.ctx = Some(1);
            let o = imp.step(&op.parse().unwrap()).unwrap();
            assert!(
                o.report
                    .violations
                    .iter()
                    .any(|(_, t)| t.contains("uffd bits set iff")),
                "{op} with a broken VMA at {broken_at}: {:?}",
                o.report
            );
        }
        // A sound map says nothing.
        let mut imp = IntervalImpl::new(8);
        let steps = run_all(&mut imp, "map 0 4 rw- anon\nmap 4 2 r-- anon\nunmap 7 1");
        assert!(steps.iter().all(|(_, r)| r.violations.is_empty()));
    }

    #[test]
    fn madvise_from_a_hole_is_enomem_and_changes_what_is_mapped() {
        let mut imp = IntervalImpl::new(8);
        let r = run_all(&mut imp, "map 4 4 rw- anon\nmadvise 0 8 dontdump");
        assert_eq!(r[1].0, Err(uffd_vocab::Errno::ENOMEM));
        let l = imp.layout();
        assert!(l.vmas()[0].flags.has(VmFlags::DONTDUMP), "{l}");
    }

    /// The coverage events of merges decided by anon_vmas, each where it
    /// belongs and nowhere else.
    #[test]
    fn anon_vma_merge_events_name_what_happened() {
        let events = |trace: &str| -> Vec<&'static str> {
            let mut imp = IntervalImpl::new(24);
            run_all(&mut imp, trace)
                .last()
                .map(|(_, r)| r.events.clone())
                .unwrap_or_default()
        };
        let apart = "merge refused: two different anon_vmas";
        let both = "merge with both refused: prev and next have different anon_vmas";
        let joins = "merge of a VMA without anon_vma with one that has one";
        // The gap between two faulted VMAs filled: joins the left only.
        let e = events("map 8 4 rw- anon\nmap 16 4 rw- anon\nfault 8\nfault 16\nmap 12 4 rw- anon");
        assert!(e.contains(&both) && e.contains(&joins), "{e:?}");
        assert!(!e.contains(&apart), "{e:?}");
        // Two faulted halves made equal again: refused.
        let e =
            events("map 8 8 rw- anon\nregister 1 12 4 wp\nfault 8\nfault 12\nunregister 1 12 4");
        assert!(e.contains(&apart), "{e:?}");
        assert!(!e.contains(&both) && !e.contains(&joins), "{e:?}");
        // An unfaulted range into a faulted neighbour.
        let e = events("map 0 10 rw- anon-noreserve\nprotect 0 5 r--\nfault 5\nprotect 5 5 r--");
        assert_eq!(e, [joins]);
        // Nothing faulted: none of them.
        let e = events("map 0 8 rw- anon\nregister 1 4 4 wp\nunregister 1 4 4");
        assert!(e.is_empty(), "{e:?}");
        // A gap filled between two unfaulted VMAs: all three merge.
        let e = events("map 0 2 rw- anon\nmap 4 2 rw- anon\nmap 2 2 rw- anon");
        assert!(e.is_empty(), "{e:?}");
        // Written neighbours at linear page offsets, with another anon_vma,
        // but other flags than the range will have: no merge to refuse.
        for trace in [
            "map 0 4 rw- anon\nregister 1 2 2 wp\nfault 0\nfault 2\nprotect 2 2 r--",
            "map 0 4 rw- anon\nregister 1 0 2 wp\nfault 0\nfault 2\nprotect 0 2 r--",
        ] {
            let e = events(trace);
            assert!(
                ![apart, both, joins].iter().any(|x| e.contains(x)),
                "{trace}: {e:?}"
            );
        }
        // A VMA before the range, written, at a linear page offset, but
        // not adjacent: not a neighbour, whatever its anon_vma.
        let e = events(
            "map 0 2 rw- file=1@0\nfault 0\nmap 3 2 rw- file=1@2\nfault 3\n\
             protect 3 2 r--\nprotect 3 2 rw-",
        );
        assert!(e.is_empty(), "{e:?}");
    }
}
