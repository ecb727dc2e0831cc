//! The non-cooperative events (docs/kernel-rules.md §20, rule 41): the
//! exact events each op raises, in order.

use crate::IntervalImpl;
use uffd_vocab::{events_text, Backend, Errno, Op, OpResult};

/// Runs `trace` on a fresh 64-page arena; returns the last op's result and
/// its events as text. The ops before it must succeed.
fn last(trace: &str) -> (OpResult, String) {
    let mut imp = IntervalImpl::new(64);
    let mut all = steps(&mut imp, trace);
    let last = all.pop().expect("an empty trace");
    assert!(all.iter().all(|s| s.0.is_ok()), "{trace}: {all:?}");
    last
}

/// Each op's result and events as text, no op violating a precondition.
fn steps(imp: &mut IntervalImpl, trace: &str) -> Vec<(OpResult, String)> {
    let mut out = Vec::new();
    for o in crate::testing::outcomes(imp, trace) {
        assert!(o.report.violations.is_empty(), "{:#?}", o.report.violations);
        out.push((o.result, events_text(&o.events)));
    }
    out
}

fn ok(trace: &str) -> String {
    let (r, events) = last(trace);
    assert_eq!(r, Ok(()), "{trace}");
    events
}

#[test]
fn munmap_sends_one_unmap_per_ctx_with_the_whole_range() {
    let trace = "map 0 8 rw- anon
                 open 0 event-unmap
                 register 0 2 2 missing
                 register 0 5 2 wp
                 unmap 0 8";
    assert_eq!(ok(trace), "0:unmap[0,8)");
    // Two ctxs: two events, in the order of their first VMA; a ctx
    // without event-unmap, or a VMA not registered, none.
    let trace = "map 0 12 rw- anon
                 open 1 event-unmap
                 open 0 event-unmap
                 open 2 event-remap
                 register 1 2 2 missing
                 register 0 5 2 missing
                 register 1 8 1 missing
                 register 2 10 1 missing
                 unmap 1 10";
    assert_eq!(ok(trace), "1:unmap[1,11) 0:unmap[1,11)");
    assert_eq!(
        ok("map 0 8 rw- anon\nopen 0 event-unmap\nunmap 0 8"),
        "none"
    );
}

#[test]
fn mmap_over_a_registered_range_sends_unmap() {
    let trace = "map 0 8 rw- anon
                 open 0 event-unmap
                 register 0 0 8 missing
                 map 4 8 r-- anon";
    assert_eq!(ok(trace), "0:unmap[4,12)");
}

#[test]
fn mremap_sends_remap_then_unmaps_the_source() {
    let setup = "map 0 4 rw- anon
                 open 0 event-remap+event-unmap
                 register 0 0 4 missing\n";
    assert_eq!(
        ok(&format!("{setup}mremap 0 4 4 8")),
        "0:remap[0,4)->8 0:unmap[0,4)"
    );
    // A shrinking move: the tail, then the source.
    assert_eq!(
        ok(&format!("{setup}mremap 0 4 2 8")),
        "0:remap[0,2)->8 0:unmap[2,4) 0:unmap[0,2)"
    );
    // A growing move: the length moved is the old one.
    assert_eq!(
        ok(&format!("{setup}mremap 0 4 6 8")),
        "0:remap[0,4)->8 0:unmap[0,4)"
    );
    // DONTUNMAP unmaps nothing of the source.
    assert_eq!(
        ok(&format!("{setup}mremap 0 4 4 8 dontunmap")),
        "0:remap[0,4)->8"
    );
    // In place: a shrink unmaps the tail; a grow sends nothing.
    assert_eq!(ok(&format!("{setup}mremap 0 4 1")), "0:unmap[1,4)");
    assert_eq!(ok(&format!("{setup}mremap 0 4 6")), "none");
}

#[test]
fn mremap_onto_a_registered_range_unmaps_the_destination_first() {
    let trace = "map 0 2 rw- anon
                 map 8 4 rw- anon
                 open 0 event-remap+event-unmap
                 register 0 0 2 missing
                 register 0 8 4 missing
                 mremap 0 2 2 9";
    assert_eq!(ok(trace), "0:unmap[9,11) 0:remap[0,2)->9 0:unmap[0,2)");
}

#[test]
fn a_ctx_with_only_one_of_remap_and_unmap_gets_only_that() {
    let setup = |f: &str| {
        format!(
            "map 0 4 rw- anon
             open 0 {f}
             register 0 0 4 missing
             mremap 0 4 4 8"
        )
    };
    // Without event-remap the copy loses its registration; the source,
    // unmapped after, still has it.
    assert_eq!(ok(&setup("event-unmap")), "0:unmap[0,4)");
    assert_eq!(ok(&setup("event-remap")), "0:remap[0,4)->8");
    assert_eq!(ok(&setup("none")), "none");
}

#[test]
fn a_failed_multi_vma_move_sends_the_unmaps_it_gathered() {
    // [0,2) plain and [3,5) registered move together to 20: the first
    // piece unmaps its destination [20,22), registered by ctx 1, and
    // moves; the second is registered: EFAULT.
    let trace = "map 0 2 rw- anon
                 map 3 2 r-- anon
                 map 20 4 rw- anon
                 open 1 event-unmap
                 register 1 20 4 missing
                 register 0 3 2 missing
                 mremap 0 5 5 20";
    assert_eq!(last(trace), (Err(Errno::EFAULT), "1:unmap[20,22)".into()));
}

#[test]
fn dontneed_sends_one_remove_per_vma_clipped_even_across_a_hole() {
    let trace = "map 0 4 rw- anon
                 map 6 4 r-- anon
                 open 0 event-remove
                 register 0 0 4 missing
                 register 0 6 4 missing
                 madvise 2 6 dontneed";
    assert_eq!(
        last(trace),
        (Err(Errno::ENOMEM), "0:remove[2,4) 0:remove[6,8)".into())
    );
    // FREE likewise; a VMA not registered, or by a ctx without
    // event-remove, none.
    let trace = "map 0 8 rw- anon
                 open 1 event-remap
                 open 0 event-remove
                 register 1 0 2 missing
                 register 0 4 4 missing
                 madvise 0 8 free";
    assert_eq!(ok(trace), "0:remove[4,8)");
}

#[test]
fn a_locked_vma_is_einval_before_its_remove_event() {
    let trace = "map 0 8 rw- anon
                 open 0 event-remove
                 register 0 0 8 missing
                 mlock 4 4 onfault
                 madvise 0 8 dontneed";
    // The VMA before it had its event.
    assert_eq!(last(trace), (Err(Errno::EINVAL), "0:remove[0,4)".into()));
    let trace = "map 0 8 rw- anon
                 open 0 event-remove
                 register 0 0 8 missing
                 mlock 0 8 onfault
                 madvise 0 8 dontneed";
    assert_eq!(last(trace), (Err(Errno::EINVAL), "none".into()));
}

#[test]
fn remove_checks_the_file_first_then_sends_its_event() {
    let setup = "map 0 4 rw- anon
                 map 4 4 rw- shmem
                 map 8 4 rw- file=1@0
                 open 0 event-remove
                 register 0 0 12 missing\n";
    let r = |m: &str| last(&format!("{setup}{m}"));
    assert_eq!(r("madvise 0 4 remove"), (Err(Errno::EINVAL), "none".into()));
    assert_eq!(r("madvise 8 4 remove"), (Err(Errno::EACCES), "none".into()));
    assert_eq!(r("madvise 5 2 remove"), (Ok(()), "0:remove[5,7)".into()));
    // MADV_FREE refuses file memory in madvise_free_single_vma, after
    // the event (mm/madvise.c).
    assert_eq!(
        r("madvise 4 4 free"),
        (Err(Errno::EINVAL), "0:remove[4,8)".into())
    );
}

/// The child's layout lines and page table entries, and the events of a
/// fork after `trace`.
fn fork(trace: &str) -> (Vec<String>, String, String) {
    let mut imp = IntervalImpl::new(64);
    assert!(
        steps(&mut imp, trace).iter().all(|s| s.0.is_ok()),
        "{trace}"
    );
    let o = imp.step(&Op::Fork).unwrap();
    assert!(o.report.violations.is_empty(), "{:#?}", o.report.violations);
    let ptes = uffd_vocab::ptes_text(o.layout.ptes());
    (o.layout.lines(), ptes, events_text(&o.events))
}

#[test]
fn fork_with_event_fork_keeps_the_registration_and_the_uffd_wp_bits() {
    let (layout, ptes, events) = fork(
        "map 0 4 rw- anon
         open 0 event-fork
         fault 0
         register 0 0 4 wp
         writeprotect 0 0 4 on",
    );
    assert_eq!(events, "0:fork");
    assert_eq!(
        layout,
        ["[0,4) rw- anon@0 account maywrite anon_vma=0 uffd=wp ctx=0"]
    );
    assert_eq!(ptes, "0:a+wp");
    // Without event-fork: the registration and the bit go, no event.
    let (layout, ptes, events) = fork(
        "map 0 4 rw- anon
         open 0 event-remap+event-unmap
         fault 0
         register 0 0 4 wp
         writeprotect 0 0 4 on",
    );
    assert_eq!(events, "none");
    assert_eq!(layout, ["[0,4) rw- anon@0 account maywrite anon_vma=0"]);
    assert_eq!(ptes, "0:a");
}

#[test]
fn fork_sends_one_event_per_ctx_in_the_order_of_its_first_vma() {
    let (layout, _, events) = fork(
        "map 0 12 rw- anon
         open 0 event-fork
         open 1 event-fork+event-unmap
         open 2 none
         register 1 0 2 missing
         register 0 4 2 missing
         register 1 8 1 missing
         register 2 10 1 missing
         map 20 2 rw- anon
         register 0 20 2 missing
         madvise 20 2 dontfork",
    );
    assert_eq!(events, "1:fork 0:fork");
    let uffd: Vec<&str> = layout
        .iter()
        .map(|l| l.split_once(" uffd=").map_or("-", |x| x.1))
        .collect();
    assert_eq!(
        uffd,
        [
            "missing ctx=1",
            "-",
            "missing ctx=0",
            "-",
            "missing ctx=1",
            "-",
            "-",
            "-"
        ]
    );
}

#[test]
fn a_child_vma_registered_wp_gets_its_page_tables_without_an_anon_vma() {
    // Shared memory has no anon_vma: its uffd-wp markers go along only
    // because the child's VMA keeps VM_UFFD_WP (vma_needs_copy).
    let trace = "map 0 4 rw- shmem
                 register 0 0 4 wp
                 fault 1
                 writeprotect 0 0 4 on";
    let (_, ptes, events) = fork(&format!("open 0 event-fork\n{trace}"));
    assert_eq!(
        (ptes.as_str(), events.as_str()),
        ("0:w 1:f+wp 2-3:w", "0:fork")
    );
    let (_, ptes, events) = fork(&format!("open 0 none\n{trace}"));
    assert_eq!((ptes.as_str(), events.as_str()), ("none", "none"));
}

/// Rule 21's corner (not measured): without event-remap, a copy that
/// merges with what is left of its own source VMA takes that VMA's
/// registration with it (`userfaultfd_reset_ctx` of the merged VMA), so
/// the source, unmapped after, has no ctx left: no UNMAP. Away from its
/// source, the source keeps its ctx until it is unmapped.
#[test]
fn a_copy_merged_into_its_own_source_vma_leaves_the_source_no_ctx_to_unmap() {
    let setup = "map 0 8 rw- anon
                 open 0 event-unmap
                 register 0 0 8 missing\n";
    assert_eq!(ok(&format!("{setup}mremap 4 4 4 8")), "none");
    assert_eq!(ok(&format!("{setup}mremap 4 4 4 9")), "0:unmap[4,8)");
}

/// The last op's result, events and page table entries.
fn fault(trace: &str) -> (String, String, String) {
    let mut imp = IntervalImpl::new(64);
    let mut o = None;
    for line in trace.lines() {
        let op: Op = line
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{line}: {e}"));
        if let Some(prev) = o.take().map(|o: uffd_vocab::Outcome| o.result) {
            assert_eq!(prev, Ok(()), "{trace}");
        }
        let out = imp.step(&op).unwrap();
        assert!(
            out.report.violations.is_empty(),
            "{:#?}",
            out.report.violations
        );
        o = Some(out);
    }
    let o = o.expect("an empty trace");
    (
        uffd_vocab::result_name(&o.result),
        events_text(&o.events),
        uffd_vocab::ptes_text(o.layout.ptes()),
    )
}

fn got(r: &str, events: &str, ptes: &str) -> (String, String, String) {
    (r.into(), events.into(), ptes.into())
}

/// Rule 42 (§21): a missing page goes to the reader of a uffd opened with
/// `faults`, which fills it (UFFDIO_COPY, the page's tag `page + 1`); the
/// access then runs again and finds the page. mlock's populate
/// (FOLL_UNLOCKABLE) delivers its faults too, one a page.
#[test]
fn a_missing_fault_is_delivered_and_copied() {
    let setup = "open 0 faults\nmap 0 4 rw- anon\nregister 0 0 4 missing\n";
    assert_eq!(
        fault(&format!("{setup}fault 1")),
        got("ok", "0:fault[1]+write", "1:a=2")
    );
    assert_eq!(
        fault(&format!("{setup}fault 2 read")),
        got("ok", "0:fault[2]", "2:a=3")
    );
    let (r, events, ptes) = fault(&format!("{setup}mlock 0 2"));
    assert_eq!(
        (r.as_str(), events.as_str(), ptes.as_str()),
        ("ok", "0:fault[0]+write 0:fault[1]+write", "0:a=1 1:a=2")
    );
}

/// A write through a uffd-wp bit: delivered with WP|WRITE, the reader
/// takes the bit away (UFFDIO_WRITEPROTECT mode 0), the write is done.
#[test]
fn a_write_through_a_uffd_wp_bit_is_delivered_and_unprotected() {
    let trace = "open 0 faults
                 map 0 4 rw- anon
                 fault 0
                 register 0 0 4 wp
                 writeprotect 0 0 4 on
                 fault 0";
    assert_eq!(fault(trace), got("ok", "0:fault[0]+wp+write", "0:a"));
}

/// A read of a page the page cache has, in a VMA registered MINOR:
/// delivered with MINOR, the reader maps the cache page (UFFDIO_CONTINUE).
#[test]
fn a_minor_fault_is_delivered_and_continued() {
    let trace = "open 0 faults
                 map 0 4 rw- shared-file=0@0
                 fault 0
                 madvise 0 4 dontneed
                 register 0 0 4 minor
                 fault 0 read";
    let (r, events, ptes) = fault(trace);
    assert_eq!((r.as_str(), events.as_str()), ("ok", "0:fault[0]+minor"));
    assert_eq!(ptes, "0:f");
}

/// Without `faults` (UFFD_FEATURE_SIGBUS) the same faults are EFAULT and
/// nothing is delivered.
#[test]
fn without_faults_a_fault_is_sigbus_and_delivers_nothing() {
    let missing = "open 0 none\nmap 0 4 rw- anon\nregister 0 0 4 missing\nfault 1";
    assert_eq!(fault(missing), got("EFAULT", "none", "none"));
    let wp = "open 0 none
              map 0 4 rw- anon
              fault 0
              register 0 0 4 wp
              writeprotect 0 0 4 on
              fault 0";
    assert_eq!(fault(wp), got("EFAULT", "none", "0:a+wp"));
}

/// mprotect's populate of a locked private VMA made writable passes no
/// `locked` to GUP (no FAULT_FLAG_ALLOW_RETRY): userfaultfd answers
/// SIGBUS even with `faults`, nothing is delivered and the populate stops
/// (measured on 6.18.44 by a C probe). mremap's growing of a locked VMA
/// goes through `mm_populate`, which delivers.
#[test]
fn mprotect_populate_does_not_deliver_but_mremap_grow_does() {
    let trace = "open 0 faults
                 map 0 4 r-- anon
                 mlock 0 4
                 register 0 0 4 wp
                 writeprotect 0 0 4 on
                 protect 0 4 rw-";
    assert_eq!(fault(trace), got("ok", "none", "0-3:z+wp"));
    let grow = "open 0 faults
                map 0 2 rw- anon
                register 0 0 2 missing
                mlock 0 2
                mremap 0 2 3";
    let (r, events, _) = fault(grow);
    assert_eq!((r.as_str(), events.as_str()), ("ok", "0:fault[2]+write"));
}

/// A write on a uffd-wp marker of a private memfd mapping registered
/// MISSING and WP is the write's own MISSING fault (no page in the
/// cache) with WRITE; UFFDIO_COPY replaces the marker (ZEROPAGE would
/// refuse it: EEXIST, `pte_none` only) and the write goes through.
#[test]
fn a_write_on_a_marker_is_a_missing_fault_and_the_copy_replaces_it() {
    let trace = "open 0 faults
                 map 0 1 rw- file=0@0
                 register 0 0 1 missing+wp
                 writeprotect 0 0 1 on
                 fault 0";
    assert_eq!(fault(trace), got("ok", "0:fault[0]+write", "0:a=1"));
}

/// mremap moving and growing a locked VMA whose ctx has `event-remap`
/// and `faults`: `mm_populate` runs before `notify_uffd`, so its fault
/// comes before the REMAP, while the ctx's `mmap_changing` is still up:
/// the reader's UFFDIO_COPY is EAGAIN (measured on 6.18.44 by a C probe:
/// the fault is read first, the fill EAGAIN, and the mremap then waits
/// for ever). The reader closes the uffd: the registration goes, the
/// REMAP and UNMAP are dropped, and the retried fault is an ordinary one.
#[test]
fn a_fault_the_reader_cannot_resolve_closes_its_uffd() {
    let trace = "open 0 event-remap+event-unmap+faults
                 map 0 1 rw- anon
                 mlock 0 1
                 register 0 0 1 missing
                 mremap 0 1 2 1";
    assert_eq!(fault(trace), got("ok", "0:fault[2]+write", "1-2:a"));
}
