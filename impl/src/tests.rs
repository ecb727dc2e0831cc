use super::testing::{ok, run, run_all};
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
            .map(|(_, r)| r.covered.clone())
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
    let e = events("map 8 8 rw- anon\nregister 1 12 4 wp\nfault 8\nfault 12\nunregister 1 12 4");
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

/// The page table entries of a layout, as the `ptes` line writes them.
fn ptes(imp: &IntervalImpl) -> String {
    uffd_vocab::ptes_text(imp.layout().ptes())
}

/// Runs a trace and returns each op's result.
fn results(imp: &mut IntervalImpl, trace: &str) -> Vec<uffd_vocab::OpResult> {
    run_all(imp, trace).into_iter().map(|(r, _)| r).collect()
}

use uffd_vocab::Errno::{EAGAIN, EBUSY, EEXIST, EFAULT, EINVAL, ENOENT};

#[test]
fn copy_zeropage_and_poison_on_anonymous_memory() {
    let mut imp = IntervalImpl::new(16);
    let r = results(
        &mut imp,
        "map 0 4 rw- anon
         copy 0 0 1
         register 0 0 4 missing+wp
         copy 1 1 2 wp
         zeropage 0 0 1
         poison 0 3 1
         zeropage 0 3 1
         copy 0 2 2
         continue 0 0 1
         copy 0 0 1 wp
         fault 3 read",
    );
    // Not registered: ENOENT. Any ctx fills a registered VMA. ZEROPAGE
    // refuses the poison marker; the copy of [2,4) stops at page 2.
    assert_eq!(
        r,
        [
            Ok(()),
            Err(ENOENT),
            Ok(()),
            Ok(()),
            Ok(()),
            Ok(()),
            Err(EEXIST),
            Err(EEXIST),
            Err(EINVAL),
            Err(EEXIST),
            Err(EFAULT),
        ]
    );
    assert_eq!(ptes(&imp), "0:z 1:a+wp=2 2:a+wp=3 3:p");
    // The copy that failed still gave the VMA its anon_vma.
    assert!(imp.layout().vmas()[0].anon_vma.is_some());
}

#[test]
fn a_copy_stopped_after_some_pages_is_eagain() {
    let mut imp = IntervalImpl::new(16);
    let r = results(
        &mut imp,
        "map 0 4 rw- anon
         register 0 0 4 missing
         zeropage 0 2 1
         copy 0 0 4",
    );
    assert_eq!(r[3], Err(EAGAIN));
    assert_eq!(ptes(&imp), "0:a=1 1:a=2 2:z");
    // A range past its VMA: ENOENT, nothing done.
    assert_eq!(run(&mut imp, "copy 0 3 2").0, Err(ENOENT));
}

#[test]
fn shmem_fills_go_through_the_page_cache() {
    let mut imp = IntervalImpl::new(16);
    let r = results(
        &mut imp,
        "map 0 4 rw- shmem
         register 0 0 4 missing+wp
         poison 0 0 1
         copy 0 0 1 wp
         writeprotect 0 2 2 on
         zeropage 0 2 1
         copy 0 2 1
         poison 0 3 1
         continue 0 3 1
         madvise 0 4 dontneed
         continue 0 0 2",
    );
    assert_eq!(
        r,
        [
            Ok(()),
            Ok(()),
            Ok(()),
            // COPY overwrites a poison marker (pte_none_mostly).
            Ok(()),
            Ok(()),
            // A shared ZEROPAGE replaces a uffd-wp marker.
            Ok(()),
            // The cache has page 2.
            Err(EEXIST),
            // POISON refuses a marker.
            Err(EEXIST),
            // Nothing in the cache.
            Err(EFAULT),
            Ok(()),
            // Page 0 is cached, page 1 not: partial.
            Err(EAGAIN),
        ]
    );
    // DONTNEED left page 0's uffd-wp bit as a marker, and the marker of
    // page 3; CONTINUE mapped the cache page over the marker, without
    // the bit (no MODE_WP).
    assert_eq!(ptes(&imp), "0:f=1 3:w");
}

#[test]
fn continue_past_the_end_of_a_shmem_object_is_einval() {
    let mut imp = IntervalImpl::new(16);
    let r = results(
        &mut imp,
        "map 0 1 rw- shmem
         mremap 0 1 2
         register 0 1 1 missing
         continue 0 1 1
         copy 0 1 1",
    );
    assert_eq!(r[3..], [Err(EINVAL), Err(EFAULT)]);
}

#[test]
fn move_pages_moves_anonymous_pages_and_refuses_shared_ones() {
    let mut imp = IntervalImpl::new(16);
    let r = results(
        &mut imp,
        "map 0 8 rw- anon
         register 0 0 8 missing+wp
         copy 0 0 2 wp
         zeropage 0 2 1
         move 0 0 4 3
         move 1 4 0 1
         move 0 6 0 2 holes
         move 0 4 0 2
         fork
         move 0 5 1 1
         fault 5 read
         move 0 5 1 1",
    );
    assert_eq!(
        r,
        [
            Ok(()),
            Ok(()),
            Ok(()),
            Ok(()),
            Ok(()),
            // Another ctx than the destination's: EINVAL.
            Err(EINVAL),
            // A hole moved, then the destination is taken.
            Ok(()),
            Err(EEXIST),
            Ok(()),
            // Shared with the child: EBUSY, until a fault reuses it.
            Err(EBUSY),
            Ok(()),
            Ok(()),
        ]
    );
    // The moved pages keep their tags, lose their uffd-wp bits.
    assert_eq!(ptes(&imp), "0:z 1:a=2 4:a=1");
}

#[test]
fn move_pages_needs_two_private_anonymous_writable_vmas() {
    for (setup, want) in [
        ("map 8 4 rw- shmem", EINVAL),
        ("map 8 4 r-- anon", EINVAL),
        ("map 8 4 rw- file=0@0", EINVAL),
        ("map 8 4 rw- anon\nmlock 8 4", EINVAL),
        ("map 8 4 rw- anon", ENOENT),
    ] {
        let mut imp = IntervalImpl::new(16);
        let trace = format!("map 0 4 rw- anon\nregister 0 0 4 missing\n{setup}\nmove 0 8 0 2");
        assert_eq!(run(&mut imp, &trace).0, Err(want), "{setup}");
    }
    // No VMA at the source: ENOENT.
    let mut imp = IntervalImpl::new(16);
    let trace = "map 0 4 rw- anon\nregister 0 0 4 missing\nmove 0 8 0 2";
    assert_eq!(run(&mut imp, trace).0, Err(ENOENT));
}

#[test]
fn fork_copies_the_page_tables_of_vmas_with_an_anon_vma_only() {
    let mut imp = IntervalImpl::new(16);
    run_all(
        &mut imp,
        "map 0 4 rw- anon
         register 0 0 4 missing+wp
         copy 0 0 1 wp
         zeropage 0 1 1
         poison 0 2 1
         map 4 2 rw- shmem
         fault 4
         map 6 2 rw- anon
         fault 6
         madvise 6 2 wipeonfork
         map 8 2 rw- file=0@0
         fault 8 read",
    );
    let child = imp.step(&Op::Fork).unwrap().layout;
    assert_eq!(uffd_vocab::ptes_text(child.ptes()), "0:a=1 1:z 2:p");
    // The parent keeps its entries.
    assert_eq!(ptes(&imp), "0:a+wp=1 1:z 2:p 4:f 6:a 8:f");
}

#[test]
fn dontneed_free_and_remove() {
    let mut imp = IntervalImpl::new(16);
    let r = results(
        &mut imp,
        "map 0 4 rw- anon
         fault 0
         register 0 0 4 missing
         poison 0 1 1
         madvise 0 4 free
         madvise 0 4 remove
         map 4 4 rw- shared-file=1@0
         map 8 4 rw- file=1@0
         fault 4
         fault 9
         fault 10 read
         madvise 4 4 remove
         madvise 8 4 remove
         madvise 8 4 free
         madvise 0 4 dontneed",
    );
    assert_eq!(
        r,
        [
            Ok(()),
            Ok(()),
            Ok(()),
            Ok(()),
            Ok(()),
            Err(EINVAL),
            Ok(()),
            Ok(()),
            Ok(()),
            Ok(()),
            Ok(()),
            Ok(()),
            Err(uffd_vocab::Errno::EACCES),
            Err(EINVAL),
            Ok(()),
        ]
    );
    // FREE cleared the poison marker and kept the page; REMOVE of the
    // shared file punched the cache: the private mapping's file pages
    // went, its COW copy stayed; DONTNEED zapped the anonymous page.
    assert_eq!(ptes(&imp), "9:a");
}

#[test]
fn a_read_fault_in_a_file_vma_maps_its_cached_neighbours() {
    let mut imp = IntervalImpl::new(40);
    ok(
        &mut imp,
        "map 3 30 rw- shared-file=0@0
         mlock 3 30
         munlock 3 30
         madvise 3 30 dontneed
         fault 20 read",
    );
    assert_eq!(ptes(&imp), "16-31:f");
    ok(&mut imp, "madvise 3 30 dontneed\nfault 5 read");
    assert_eq!(ptes(&imp), "3-18:f");
}

#[test]
fn a_write_to_a_marker_of_a_private_file_vma_leaves_a_protected_copy() {
    let mut imp = IntervalImpl::new(16);
    let r = results(
        &mut imp,
        "map 0 1 rw- file=0@0
         register 0 0 1 wp
         writeprotect 0 0 1 on
         fault 0",
    );
    assert_eq!(r[3], Err(EFAULT));
    assert_eq!(ptes(&imp), "0:a+wp");
}

/// A restored copy is its base, whatever it held before: the same state,
/// and the same outcomes for the ops after (the layout it keeps to hand
/// out again included).
#[test]
fn a_restored_copy_steps_as_its_base() {
    let mut copy = IntervalImpl::new(8);
    run_all(&mut copy, "map 0 8 rw- anon\nfault 3\nopen 1 none");
    let mut base = IntervalImpl::new(8);
    let steps = [
        "map 0 4 rw- shmem",
        "map 4 4 rw- shared-file=0@0",
        "fault 0",
        "open 0 none",
        "register 0 4 2 wp",
        "protect 0 2 r--",
        "unmap 6 1",
    ];
    for (i, line) in steps.iter().enumerate() {
        run_all(&mut base, line);
        assert!(copy.restore(&base));
        assert_eq!(format!("{copy:?}"), format!("{base:?}"), "{line}");
        let rest = steps[i + 1..].join("\n");
        let mut other = base.clone();
        assert_eq!(
            testing::outcomes(&mut copy, &rest),
            testing::outcomes(&mut other, &rest),
            "{line}"
        );
    }
}

/// Outcomes handed back ([`Backend::recycle`]) change nothing in the
/// outcomes after: their vectors are emptied or overwritten before use.
#[test]
fn recycled_outcomes_change_nothing_after() {
    let trace = "map 0 4 rw- shmem\nmap 4 4 rw- anon\nfault 0\nopen 0 none\n\
                 register 0 0 6 wp\nfault 5\nfork\nprotect 0 2 r--\nunmap 6 1\nfault 1";
    let plain = testing::outcomes(&mut IntervalImpl::new(8), trace);
    let mut imp = IntervalImpl::new(8);
    for (line, want) in trace.lines().zip(&plain) {
        let op: Op = line.parse().unwrap();
        let mut got = imp.step(&op).unwrap();
        assert_eq!(&got, want, "{line}");
        imp.recycle(&mut got);
    }
}
