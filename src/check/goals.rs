//! The coverage goals (stateright's `sometimes`): situations a good run
//! goes through, each reached by coverage events, merges after an op, or
//! known deviations, counted in [`Stats`].

use super::stats::Stats;

/// A coverage goal (stateright's `sometimes`): a situation a good run goes
/// through, reached when any of its ways to reach it occurred.
pub struct Goal {
    pub name: &'static str,
    pub reached_by: &'static [Reach],
}

/// One way to reach a coverage goal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// A coverage event of a step report ([`uffd_vocab::StepReport::covered`]).
    Event(&'static str),
    /// A step of this op (by [`Op::name`]) that took a merge case other
    /// than 0.
    MergeAfter(&'static str),
    /// A known deviation rule, by name, that changed a step's outcome.
    Deviation(&'static str),
    /// A uffd event (by [`uffd_vocab::EventKind::name`], a fault's by its
    /// kind: `missing fault`, `wp fault`, `minor fault`) that an op (by
    /// [`Op::name`]) sent.
    UffdEvent(&'static str, &'static str),
}

impl Reach {
    /// How often a run reached it.
    pub fn count(&self, s: &Stats) -> u64 {
        let n = match self {
            Reach::Event(event) => s.events.get(event),
            Reach::MergeAfter(op) => s.merges_after.get(op),
            Reach::Deviation(rule) => s.deviations.get(rule),
            Reach::UffdEvent(op, event) => s.uffd_events.get(&(*op, *event)),
        };
        n.copied().unwrap_or(0)
    }
}

impl Goal {
    /// How often a run reached it.
    pub fn count(&self, s: &Stats) -> u64 {
        self.reached_by.iter().map(|r| r.count(s)).sum()
    }
}

/// Every coverage goal: `check` prints how often each was reached, and the
/// coverage tests require each of them.
pub const GOALS: &[Goal] = &[
    Goal {
        name: "a fault reuses a neighbour's anon_vma",
        reached_by: &[
            Reach::Event("fault: anon_vma reused from next"),
            Reach::Event("fault: anon_vma reused from prev"),
        ],
    },
    Goal {
        name: "anon_vma reuse refused: another object",
        reached_by: &[Reach::Event(
            "fault: anon_vma reuse refused: another object",
        )],
    },
    Goal {
        name: "anon_vma reuse refused: uffd bits differ",
        reached_by: &[Reach::Event(
            "fault: anon_vma reuse refused: uffd bits differ",
        )],
    },
    Goal {
        name: "anon_vma reuse refused: flags differ beyond prot",
        reached_by: &[Reach::Event(
            "fault: anon_vma reuse refused: flags differ beyond prot",
        )],
    },
    Goal {
        name: "anon_vma reuse refused: page offsets not linear",
        reached_by: &[Reach::Event(
            "fault: anon_vma reuse refused: page offsets not linear",
        )],
    },
    Goal {
        name: "an unfaulted VMA merges with a faulted one",
        reached_by: &[Reach::Event(
            "merge of a VMA without anon_vma with one that has one",
        )],
    },
    Goal {
        name: "two faulted neighbours left apart",
        reached_by: &[Reach::Event("merge refused: two different anon_vmas")],
    },
    Goal {
        name: "a range joins the left one of two neighbours with different anon_vmas",
        reached_by: &[Reach::Event(
            "merge with both refused: prev and next have different anon_vmas",
        )],
    },
    Goal {
        name: "VM_ACCOUNT kept after RW->R because of a fault",
        reached_by: &[Reach::Event(
            "mprotect keeps VM_ACCOUNT: the VMA has an anon_vma",
        )],
    },
    Goal {
        name: "a write refused by userfaultfd (MISSING, anonymous)",
        reached_by: &[Reach::Event(
            "fault refused by userfaultfd (missing, anonymous)",
        )],
    },
    Goal {
        name: "writeprotect sets a uffd-wp bit",
        reached_by: &[Reach::Event("writeprotect: a page gets the uffd-wp bit")],
    },
    Goal {
        name: "a write refused by userfaultfd (uffd-wp bit)",
        reached_by: &[Reach::Event("fault refused by userfaultfd (uffd-wp bit)")],
    },
    Goal {
        name: "mremap: uffd-wp bits cleared on a move (no event-remap)",
        reached_by: &[Reach::Event(
            "mremap: uffd-wp bits cleared (no event-remap)",
        )],
    },
    Goal {
        name: "a write refused by userfaultfd (MISSING, page not cached)",
        reached_by: &[Reach::Event(
            "fault refused by userfaultfd (missing, page not cached)",
        )],
    },
    Goal {
        name: "a write refused by userfaultfd (MINOR, page cached)",
        reached_by: &[Reach::Event(
            "fault refused by userfaultfd (minor, page cached)",
        )],
    },
    Goal {
        name: "madvise sets dontcopy",
        reached_by: &[Reach::Event("madvise sets dontcopy")],
    },
    Goal {
        name: "madvise clears dontcopy",
        reached_by: &[Reach::Event("madvise clears dontcopy")],
    },
    Goal {
        name: "madvise sets wipeonfork",
        reached_by: &[Reach::Event("madvise sets wipeonfork")],
    },
    Goal {
        name: "madvise clears wipeonfork",
        reached_by: &[Reach::Event("madvise clears wipeonfork")],
    },
    Goal {
        name: "madvise sets dontdump",
        reached_by: &[Reach::Event("madvise sets dontdump")],
    },
    Goal {
        name: "madvise clears dontdump",
        reached_by: &[Reach::Event("madvise clears dontdump")],
    },
    Goal {
        name: "madvise sets hugepage",
        reached_by: &[Reach::Event("madvise sets hugepage")],
    },
    Goal {
        name: "madvise clears hugepage",
        reached_by: &[Reach::Event("madvise clears hugepage")],
    },
    Goal {
        name: "madvise sets nohugepage",
        reached_by: &[Reach::Event("madvise sets nohugepage")],
    },
    Goal {
        name: "madvise clears nohugepage",
        reached_by: &[Reach::Event("madvise clears nohugepage")],
    },
    Goal {
        name: "madvise sets mergeable",
        reached_by: &[Reach::Event("madvise sets mergeable")],
    },
    Goal {
        name: "madvise clears mergeable",
        reached_by: &[Reach::Event("madvise clears mergeable")],
    },
    Goal {
        name: "mlock sets locked",
        reached_by: &[Reach::Event("mlock sets locked")],
    },
    Goal {
        name: "munlock clears locked",
        reached_by: &[Reach::Event("munlock clears locked")],
    },
    Goal {
        name: "mlock onfault sets lockonfault",
        reached_by: &[Reach::Event("mlock sets lockonfault")],
    },
    Goal {
        name: "mlock populating fails (ENOMEM, still locked)",
        reached_by: &[Reach::Event(
            "mlock populate fails: ENOMEM, the range stays locked",
        )],
    },
    Goal {
        name: "mprotect populates a locked VMA made writable",
        reached_by: &[Reach::Event(
            "mprotect populates a locked VMA made writable",
        )],
    },
    Goal {
        name: "mremap: a moved VMA merges at its destination",
        reached_by: &[Reach::Event(
            "mremap: the moved VMA merges at its destination",
        )],
    },
    Goal {
        name: "mremap: a moved VMA does not merge",
        reached_by: &[Reach::Event("mremap: the moved VMA does not merge")],
    },
    Goal {
        name: "mremap: a VMA grows in place",
        reached_by: &[Reach::Event("mremap: expand in place")],
    },
    Goal {
        name: "mremap: a grow in place merges with the next VMA",
        reached_by: &[Reach::Event(
            "mremap: grow in place merges with the next VMA",
        )],
    },
    Goal {
        name: "mremap: a same-length move over several VMAs",
        reached_by: &[Reach::Event("mremap: a multi-VMA move")],
    },
    Goal {
        name: "mremap: a multi-VMA move stopped by a registered VMA (EFAULT)",
        reached_by: &[Reach::Event(
            "mremap: a multi-VMA move stopped by a registered VMA",
        )],
    },
    Goal {
        name: "mremap: a registration moves along (event-remap)",
        reached_by: &[Reach::Event(
            "mremap: the registration moves along (event-remap)",
        )],
    },
    Goal {
        name: "mremap: a moved VMA loses its registration (no event-remap)",
        reached_by: &[Reach::Event(
            "mremap: userfaultfd_reset_ctx of the moved VMA",
        )],
    },
    Goal {
        name: "mremap: DONTUNMAP unlocks the source VMA",
        reached_by: &[Reach::Event("mremap: dontunmap unlocks the source VMA")],
    },
    Goal {
        name: "a fault past the end of a shmem object (grown by mremap)",
        reached_by: &[Reach::Event("fault past the end of a shmem object")],
    },
    Goal {
        name: "fork: the child keeps a boundary between equal VMAs",
        reached_by: &[Reach::Event(
            "fork child keeps a boundary between equal VMAs",
        )],
    },
    Goal {
        name: "deviation hit: mremap-merges-with-old-registration",
        reached_by: &[Reach::Deviation("mremap-merges-with-old-registration")],
    },
    Goal {
        name: "deviation hit: fork-keeps-parent-boundaries",
        reached_by: &[Reach::Deviation("fork-keeps-parent-boundaries")],
    },
    Goal {
        name: "deviation hit: dontunmap-unlocks-the-whole-vma",
        reached_by: &[Reach::Deviation("dontunmap-unlocks-the-whole-vma")],
    },
    Goal {
        name: "a merge after map",
        reached_by: &[Reach::MergeAfter("map")],
    },
    Goal {
        name: "a merge after protect",
        reached_by: &[Reach::MergeAfter("protect")],
    },
    Goal {
        name: "a merge after register",
        reached_by: &[Reach::MergeAfter("register")],
    },
    Goal {
        name: "a merge after unregister",
        reached_by: &[Reach::MergeAfter("unregister")],
    },
    Goal {
        name: "a merge after close",
        reached_by: &[Reach::MergeAfter("close")],
    },
    Goal {
        name: "a merge after madvise",
        reached_by: &[Reach::MergeAfter("madvise")],
    },
    Goal {
        name: "a merge after mlock",
        reached_by: &[Reach::MergeAfter("mlock")],
    },
    Goal {
        name: "a merge after munlock",
        reached_by: &[Reach::MergeAfter("munlock")],
    },
    Goal {
        name: "a merge after mremap",
        reached_by: &[Reach::MergeAfter("mremap")],
    },
    Goal {
        name: "a merge after open",
        reached_by: &[Reach::MergeAfter("open")],
    },
    Goal {
        name: "munmap sends UNMAP",
        reached_by: &[Reach::UffdEvent("unmap", "unmap")],
    },
    Goal {
        name: "an mmap over registered pages sends UNMAP",
        reached_by: &[Reach::UffdEvent("map", "unmap")],
    },
    Goal {
        name: "mremap sends REMAP",
        reached_by: &[Reach::UffdEvent("mremap", "remap")],
    },
    Goal {
        name: "mremap sends UNMAP",
        reached_by: &[Reach::UffdEvent("mremap", "unmap")],
    },
    Goal {
        name: "madvise sends REMOVE",
        reached_by: &[Reach::UffdEvent("madvise", "remove")],
    },
    Goal {
        name: "fork sends FORK (the child stays registered)",
        reached_by: &[Reach::UffdEvent("fork", "fork")],
    },
    Goal {
        name: "a missing fault is delivered and resolved",
        reached_by: &[Reach::UffdEvent("fault", "missing fault")],
    },
    Goal {
        name: "a write-protect fault is delivered and resolved",
        reached_by: &[Reach::UffdEvent("fault", "wp fault")],
    },
    Goal {
        name: "a minor fault is delivered and resolved",
        reached_by: &[Reach::UffdEvent("fault", "minor fault")],
    },
    Goal {
        name: "populating (mlock) delivers a fault",
        reached_by: &[
            Reach::UffdEvent("mlock", "missing fault"),
            Reach::UffdEvent("mlock", "wp fault"),
            Reach::UffdEvent("mlock", "minor fault"),
        ],
    },
    Goal {
        name: "copy fills a page",
        reached_by: &[Reach::Event("mfill: copy fills a page")],
    },
    Goal {
        name: "copy fills a page write-protected (MODE_WP)",
        reached_by: &[Reach::Event("mfill: copy fills a page, write-protected")],
    },
    Goal {
        name: "copy replaces a marker",
        reached_by: &[
            Reach::Event("mfill: copy replaces a marker"),
            Reach::Event("mfill: shmem fill replaces a marker"),
        ],
    },
    Goal {
        name: "a shmem fill adds a page to the page cache",
        reached_by: &[Reach::Event(
            "mfill: a shmem fill adds a page to the page cache",
        )],
    },
    Goal {
        name: "zeropage maps the zero page",
        reached_by: &[Reach::Event("mfill: zeropage maps the zero page")],
    },
    Goal {
        name: "continue maps a cached page",
        reached_by: &[Reach::Event("mfill: continue maps the page cache page")],
    },
    Goal {
        name: "poison puts a marker",
        reached_by: &[Reach::Event("mfill: poison puts a marker")],
    },
    Goal {
        name: "a fill stops part way (EAGAIN)",
        reached_by: &[Reach::Event("mfill_atomic: partial, EAGAIN")],
    },
    Goal {
        name: "move moves an anonymous page",
        reached_by: &[Reach::Event("move_pages: an anonymous page moves")],
    },
    Goal {
        name: "move moves the zero page",
        reached_by: &[Reach::Event("move_pages: the zero page moves")],
    },
    Goal {
        name: "move refuses a page a fork shared (EBUSY)",
        reached_by: &[Reach::Event("move_pages: a page fork shared is EBUSY")],
    },
    Goal {
        name: "a fault on a poison marker",
        reached_by: &[Reach::Event("fault on a poison marker")],
    },
    Goal {
        name: "fault-around maps cached neighbours",
        reached_by: &[Reach::Event("fault around maps cached neighbours")],
    },
    Goal {
        name: "madvise dontneed zaps page table entries",
        reached_by: &[Reach::Event("madvise dontneed zaps page table entries")],
    },
    Goal {
        name: "dontneed leaves a uffd-wp marker",
        reached_by: &[Reach::Event("zap leaves a uffd-wp marker")],
    },
    Goal {
        name: "madvise remove punches the page cache",
        reached_by: &[Reach::Event("madvise remove punches the page cache")],
    },
];
