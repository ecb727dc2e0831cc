//! # uffd-impl
//!
//! The VMAs of the arena are kept the way the kernel keeps them: a sorted,
//! non-overlapping map of intervals, where every modifying operation touches
//! only the VMAs in its range and merges only at the edges of that range,
//! chaining `prev` left to right. With no faults (so no `anon_vma`), that keeps
//! the layout maximally merged, and this crate's job is to show that it does,
//! case by case, against the page model and the live kernel.
//!
//! The shape follows Linux 6.5 so that an mm developer can read it side by
//! side with the source of that release:
//!
//! | here | Linux 6.5 |
//! |---|---|
//! | [`merge`]: `Vmg`, `vma_merge`, the case table [`MERGE_CASES`] | `vma_merge()` in mm/mmap.c |
//! | `mm.rs`: `mmap_region`, `munmap_range`, `do_mprotect`, `mprotect_fixup` | mm/mmap.c, mm/mprotect.c |
//! | `uffd.rs`: `userfaultfd_register`, `_unregister`, `_release` | fs/userfaultfd.c (with the May 2023 fixes) |
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
//! [`Bugs`] puts back the two May 2023 bugs of the uffd callers (docs/kernel-rules.md §7),
//! with exactly the kernel's consequences, so the harness can show that it
//! finds them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use uffd_vocab::{
    Backend, Backing, Contexts, Layout, Mode, Op, OpResult, Outcome, Page, Prot, StepReport,
    Unsupported, VmFlags, Vma,
};

mod fault;
mod fork;
pub mod madvise;
pub mod merge;
mod mlock;
mod mm;
mod mremap;
mod uffd;

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

/// Historic kernel bugs, each switchable on, each a re-creation of what the
/// kernel code did (see [`HISTORIC_BUGS`] for names and history). All off
/// is the fixed kernel.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug)]
pub struct Bugs {
    /// (a) 6.1 to 6.4-rc: pass the VMA *before* the one the range starts in
    /// as `prev`, even when `start` is strictly inside that VMA.
    pub stale_prev: bool,
    /// (b) since 4.3: pass `vma.pgoff` for the piece instead of
    /// `vma.pgoff + (start - vma.start)`.
    pub unadjusted_pgoff: bool,
    /// Before 6.16 (879bca0a2c4f): `is_mergeable_anon_vma` tested the
    /// anon_vma chain of the VMA merged INTO, so a range with an anon_vma
    /// could not merge into a neighbour without one.
    pub disallowed_anon_merge: bool,
    /// Before "mm/mprotect: allow unfaulted VMAs to be unaccounted on
    /// mprotect()" (2023): mprotect never gave VM_ACCOUNT back, so RW->R
    /// left `ac` on unfaulted anonymous memory.
    pub unaccounted_mprotect: bool,
    /// 6.2 to 6.3, fixed by 82f951340f25: `do_mprotect_pkey` overwrote an
    /// error that ended the VMA walk early (EACCES) with ENOMEM.
    pub mprotect_errno: bool,
    /// 6.1-rc (69dbe6daf104 to 59f2f4b8a757, Liam Howlett, Nov 2022): the
    /// userfaultfd_unregister loop did not `mas_pause()` its maple state
    /// after a merge or split, and read on from the node they replaced.
    pub unregister_iterator: bool,
    /// 6.3, fixed by 7e7757876f25: vma_merge case 3 (a moved range merging
    /// into the next VMA, which extends down) left next's vm_pgoff as it was.
    pub mremap_case3_pgoff: bool,
    /// 6.1 (ca3d76b0aa80), fixed by 6f12be792fde: growing in place a range
    /// that starts inside its VMA proposed `vm_pgoff + old_len` for the extension, not
    /// linear with the VMA, so nothing merged and mremap said ENOMEM.
    pub mremap_expand_inside: bool,
    /// The rejected v2 fix of May 2023 ("mm: userfaultfd: avoid passing an
    /// invalid range to vma_merge()"): split the VMA to the range first,
    /// and offer vma_merge only a VMA that was not split at its start.
    pub split_first: bool,
}

/// One historic bug: its `--inject-bug` name, a one-line history, the
/// switches that put it back, the invariant that catches it, and the length
/// of its shortest failing sequence (what `explore` finds).
#[derive(Clone, Copy, Debug)]
pub struct HistoricBug {
    pub name: &'static str,
    pub history: &'static str,
    pub bugs: Bugs,
    pub caught_by: &'static str,
    pub shortest: usize,
}

/// Every historic bug the implementation can put back.
pub const HISTORIC_BUGS: &[HistoricBug] = &[
    HistoricBug {
        name: "stale-prev",
        history:
            "userfaultfd_register/unregister as in 6.1 to 6.4-rc: vma_merge is handed the VMA \
                  before a range that starts inside a VMA (and the unadjusted pgoff of 4.3+); \
                  VM_WARN_ON, found by syzkaller, fixed May 2023",
        bugs: Bugs {
            stale_prev: true,
            unadjusted_pgoff: true,
            ..Bugs::NONE
        },
        caught_by: "impl-internal",
        shortest: 2,
    },
    HistoricBug {
        name: "stale-prev-fixed-pgoff",
        history: "the stale prev with the pgoff already fixed: merge case 8 then takes the whole \
                  VMA and silently unmaps [vm_start, start) (the LKML thread's point: the pgoff \
                  bug had hidden it)",
        bugs: Bugs {
            stale_prev: true,
            ..Bugs::NONE
        },
        caught_by: "impl-internal",
        shortest: 2,
    },
    HistoricBug {
        name: "unadjusted-pgoff",
        history: "userfaultfd_register/unregister 4.3 to 6.4-rc: vma_merge is handed the whole \
                  VMA's pgoff, not the piece's, so case 4 never merges; fixed May 2023",
        bugs: Bugs {
            unadjusted_pgoff: true,
            ..Bugs::NONE
        },
        caught_by: "same-layout",
        shortest: 3,
    },
    HistoricBug {
        name: "disallowed-anon-merge",
        history: "is_mergeable_anon_vma tests the anon_vma chain of the VMA merged into, so a \
                  faulted range cannot merge into an unfaulted neighbour; to 6.15, fixed by \
                  879bca0a2c4f in 6.16",
        bugs: Bugs {
            disallowed_anon_merge: true,
            ..Bugs::NONE
        },
        caught_by: "same-layout",
        shortest: 3,
    },
    HistoricBug {
        name: "split-first",
        history: "the rejected v2 of the May 2023 fix (\"mm: userfaultfd: avoid passing an \
                  invalid range to vma_merge()\", 6.4-rc): split the VMA to the range first, \
                  merge only a VMA not split at its start, so such a piece never merges \
                  with its next neighbour (the LKML thread's fragmentation objection)",
        bugs: Bugs {
            split_first: true,
            ..Bugs::NONE
        },
        caught_by: "same-layout",
        shortest: 3,
    },
    HistoricBug {
        name: "unaccounted-mprotect",
        history: "mprotect never gives VM_ACCOUNT back, so RW->R leaves `ac` on unfaulted \
                  anonymous memory; before \"mm/mprotect: allow unfaulted VMAs to be unaccounted \
                  on mprotect()\" (2023)",
        bugs: Bugs {
            unaccounted_mprotect: true,
            ..Bugs::NONE
        },
        caught_by: "same-layout",
        shortest: 2,
    },
    HistoricBug {
        name: "mprotect-errno",
        history: "do_mprotect_pkey overwrites an error that ended the VMA walk early (EACCES) \
                  with ENOMEM; 6.2 to 6.3, fixed by 82f951340f25",
        bugs: Bugs {
            mprotect_errno: true,
            ..Bugs::NONE
        },
        caught_by: "same-result",
        shortest: 2,
    },
    HistoricBug {
        name: "unregister-iterator",
        history: "userfaultfd_unregister did not mas_pause() after a merge or split, so its \
                  next mas_find() read the maple node they had replaced (syzbot: KASAN \
                  use-after-free Read in mas_next_nentry); 6.1-rc, since 69dbe6daf104, fixed \
                  by 59f2f4b8a757 (Liam Howlett, Nov 2022)",
        bugs: Bugs {
            unregister_iterator: true,
            ..Bugs::NONE
        },
        caught_by: "impl-internal",
        shortest: 3,
    },
    HistoricBug {
        name: "mremap-case3-pgoff",
        history: "vma_merge case 3: a moved range merging into the next VMA extends it down \
                  without lowering its page offset (found when rpm, mremapping its db, \
                  segfaulted); 6.3, since 0503ea8f5ba7, fixed by 7e7757876f25",
        bugs: Bugs {
            mremap_case3_pgoff: true,
            ..Bugs::NONE
        },
        caught_by: "same-layout",
        shortest: 2,
    },
    HistoricBug {
        name: "mremap-expand-inside",
        history: "mremap growing in place a range that starts inside its VMA computes the \
                  extension's page offset from the range, not the VMA: ENOMEM instead of \
                  growing (rpm installs failed); 6.1, since ca3d76b0aa80, fixed by \
                  6f12be792fde (6.2-rc, 6.1.y)",
        bugs: Bugs {
            mremap_expand_inside: true,
            ..Bugs::NONE
        },
        caught_by: "same-result",
        shortest: 2,
    },
];

impl Bugs {
    /// No bug: the fixed kernel.
    pub const NONE: Bugs = Bugs {
        stale_prev: false,
        unadjusted_pgoff: false,
        disallowed_anon_merge: false,
        unaccounted_mprotect: false,
        mprotect_errno: false,
        unregister_iterator: false,
        mremap_case3_pgoff: false,
        mremap_expand_inside: false,
        split_first: false,
    };

    /// The bugs of a list of [`HISTORIC_BUGS`] names, together.
    pub fn named(names: &[&str]) -> Result<Bugs, String> {
        let mut b = Bugs::NONE;
        for name in names {
            let h = HISTORIC_BUGS
                .iter()
                .find(|h| h.name == *name)
                .ok_or_else(|| format!("no historic bug {name:?}"))?;
            b.stale_prev |= h.bugs.stale_prev;
            b.unadjusted_pgoff |= h.bugs.unadjusted_pgoff;
            b.disallowed_anon_merge |= h.bugs.disallowed_anon_merge;
            b.unaccounted_mprotect |= h.bugs.unaccounted_mprotect;
            b.mprotect_errno |= h.bugs.mprotect_errno;
            b.unregister_iterator |= h.bugs.unregister_iterator;
            b.mremap_case3_pgoff |= h.bugs.mremap_case3_pgoff;
            b.mremap_expand_inside |= h.bugs.mremap_expand_inside;
            b.split_first |= h.bugs.split_first;
        }
        Ok(b)
    }
}

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

    /// An empty arena of `pages` pages, with the given 2023 bugs put back.
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
    fn bugs_are_named_from_the_table() {
        let b = Bugs::named(&["stale-prev", "disallowed-anon-merge"]).unwrap();
        assert_eq!(
            b,
            Bugs {
                stale_prev: true,
                unadjusted_pgoff: true,
                disallowed_anon_merge: true,
                ..Bugs::NONE
            }
        );
        assert_eq!(Bugs::named(&[]).unwrap(), Bugs::NONE);
        assert!(Bugs::named(&["nope"]).unwrap_err().contains("nope"));
        for h in HISTORIC_BUGS {
            assert_eq!(Bugs::named(&[h.name]).unwrap(), h.bugs, "{}", h.name);
        }
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
