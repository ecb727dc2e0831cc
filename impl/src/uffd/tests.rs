use crate::testing::{bounds, fixed, lines, ok, run, run_all};
use crate::{Bugs, IntervalImpl, Switch, IMPL_INTERNAL};
use uffd_vocab::Errno;

const BUG_A: Bugs = Bugs::of(&[Switch::StalePrev]);
const BUG_B: Bugs = Bugs::of(&[Switch::UnadjustedPgoff]);
const BOTH: Bugs = Bugs::of(&[Switch::StalePrev, Switch::UnadjustedPgoff]);

/// [0,10) registered next to [10,20) plain; unregister [5,10).
const LKML: &str = "map 0 20 rw- anon
                    register 0 0 10 missing
                    unregister 0 5 5";
/// The mirror: [0,10) plain, [10,20) registered; register [5,10).
const MIRROR: &str = "map 0 20 rw- anon
                      register 0 10 10 missing
                      register 0 5 5 missing";

fn with(bugs: Bugs, pages: u64, trace: &str) -> (IntervalImpl, Vec<u8>, Vec<String>) {
    let mut b = IntervalImpl::with_bugs(pages, bugs);
    let steps = run_all(&mut b, trace);
    assert!(steps.iter().all(|s| s.0.is_ok()), "{steps:?}");
    let (_, rep) = steps.last().unwrap().clone();
    let warnings = rep.violations.iter().map(|(n, t)| {
        assert_eq!(*n, IMPL_INTERNAL);
        t.clone()
    });
    let warnings = warnings.collect();
    (b, rep.merges, warnings)
}

/// The 6.1-rc unregister loop without `mas_pause()`: after a merge or
/// a split, a range that goes on past the VMA reads the stale maple
/// state; the layout is the fixed loop's.
#[test]
fn unregister_iterator_bug_reads_a_stale_maple_state() {
    let bug = Bugs::of(&[Switch::UnregisterIterator]);
    for (trace, merge) in [
        // Merge case 8, then on to [2,3).
        (
            "map 0 3 rw- anon\nregister 0 0 1 missing\nunregister 0 0 3",
            8,
        ),
        // Merge case 6, then on past the VMA it freed.
        (
            "map 0 3 rw- anon\nregister 0 1 1 missing\nunregister 0 0 3",
            6,
        ),
        // A split at the start (no merge: r-- next), then on to [2,3).
        (
            "map 0 2 rw- anon\nmap 2 1 r-- anon\nregister 0 0 2 missing\nunregister 0 1 2",
            0,
        ),
    ] {
        let (mut buggy, merges, warnings) = with(bug, 8, trace);
        let (mut fixed, _, _) = with(Bugs::NONE, 8, trace);
        assert_eq!(merges, [merge], "{trace}");
        assert_eq!(warnings.len(), 1, "{trace}: {warnings:?}");
        assert!(warnings[0].contains("mas_next_nentry"), "{warnings:?}");
        assert_eq!(lines(&mut buggy), lines(&mut fixed), "{trace}");
    }
    // The range ends with the VMA: no further mas_find(). Flags set on
    // a whole VMA: the tree did not change. A VMA without a ctx: skipped.
    for trace in [
        "map 0 3 rw- anon\nregister 0 1 1 missing\nunregister 0 1 1",
        "map 0 3 rw- anon\nregister 0 1 2 missing\nunregister 0 1 2",
        "map 0 1 rw- anon\nmap 1 1 r-- anon\nregister 0 0 1 missing\nunregister 0 0 2",
        "map 0 3 rw- anon\nregister 0 2 1 missing\nunregister 0 0 3",
    ] {
        let (_, _, warnings) = with(bug, 8, trace);
        assert_eq!(warnings, Vec::<String>::new(), "{trace}");
    }
}

#[test]
fn unregister_tail_of_registered_next_to_plain_merges_right() {
    let (layout, merges) = fixed(LKML);
    assert_eq!(
        layout,
        [
            "[0,5) rw- anon@0 account maywrite uffd=missing ctx=0",
            "[5,20) rw- anon@5 account maywrite",
        ]
    );
    assert_eq!(merges, [4]);
}

#[test]
fn register_tail_of_plain_next_to_registered_merges_right() {
    let (layout, merges) = fixed(MIRROR);
    assert_eq!(
        layout,
        [
            "[0,5) rw- anon@0 account maywrite",
            "[5,20) rw- anon@5 account maywrite uffd=missing ctx=0",
        ]
    );
    assert_eq!(merges, [4]);
}

#[test]
fn unadjusted_pgoff_leaves_three_vmas() {
    for trace in [LKML, MIRROR] {
        let (mut b, merges, warnings) = with(BUG_B, 64, trace);
        assert_eq!(bounds(&mut b), [(0, 5), (5, 10), (10, 20)]);
        assert_eq!(merges, [0]);
        assert!(warnings.is_empty(), "{warnings:?}");
    }
}

/// The v2 patch of the thread: a piece split off inside its VMA never
/// merges (three VMAs, no vma_merge call, no warning, the stale prev
/// never used); a range from a VMA's start still merges, whole.
#[test]
fn split_first_never_merges_a_piece_split_at_its_start() {
    let bug = Bugs::of(&[Switch::SplitFirst]);
    for trace in [LKML, MIRROR] {
        let (mut b, merges, warnings) = with(bug, 64, trace);
        assert_eq!(bounds(&mut b), [(0, 5), (5, 10), (10, 20)]);
        assert_eq!(merges, Vec::<u8>::new());
        assert!(warnings.is_empty(), "{warnings:?}");
    }
    // [10,20) joins [0,10) (case 7); then [0,20) is split at 15 and
    // [15,20) stays apart from an equal [20,30).
    let (mut b, merges, _) = with(
        bug,
        64,
        "map 0 30 rw- anon
         register 0 0 10 missing
         register 0 10 10 missing",
    );
    assert_eq!(bounds(&mut b), [(0, 20), (20, 30)]);
    assert_eq!(merges, [7]);
    let (mut b, _, _) = with(
        bug,
        64,
        "map 0 30 rw- anon
         register 0 0 20 missing
         unregister 0 15 5",
    );
    assert_eq!(bounds(&mut b), [(0, 15), (15, 20), (20, 30)]);
}

#[test]
fn stale_prev_fires_the_warning_on_the_syzkaller_case() {
    let trace = "map 0 4096 rw- anon
                 register 0 16 2 missing";
    let (mut b, merges, warnings) = with(BUG_A, 4096, trace);
    // The kernel's own check, and this crate's restatement of it: two
    // conditions on one state, reported once, in short lines.
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let w = &warnings[0];
    assert!(
        w.starts_with(
            "VM_WARN_ON(curr && (addr != curr->vm_start || end > curr->vm_end))\n\
             VM_WARN_ON(middle && middle->vm_start < addr && prev != middle)\n\
             merge state of userfaultfd_register:\n"
        ),
        "{w}"
    );
    assert_eq!(w.matches("merge state").count(), 1, "{w}");
    assert!(w.lines().all(|l| l.len() <= 100), "{w}");
    // Nothing could merge, so the split still gives the right layout.
    assert_eq!(merges, [0]);
    assert_eq!(bounds(&mut b), [(0, 16), (16, 18), (18, 4096)]);

    let (_, merges, warnings) = with(Bugs::default(), 4096, trace);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(merges, [0]);
}

#[test]
fn stale_prev_with_adjusted_pgoff_takes_whole_merge_right_and_unmaps_head() {
    // Unregister: C = [0,10) registered, N = [10,20) plain.
    let (mut b, merges, warnings) = with(BUG_A, 64, LKML);
    assert_eq!(merges, [8]);
    assert!(!warnings.is_empty());
    // [0,5) is gone, and N took C's pgoff.
    assert_eq!(lines(&mut b), ["[5,20) rw- anon@0 account maywrite"]);

    // Register: C = [0,10) plain, N = [10,20) registered.
    let (mut b, merges, _) = with(BUG_A, 64, MIRROR);
    assert_eq!(merges, [8]);
    assert_eq!(
        lines(&mut b),
        ["[5,20) rw- anon@0 account maywrite uffd=missing ctx=0"]
    );
}

#[test]
fn unadjusted_pgoff_hides_stale_prev() {
    let (mut b, merges, warnings) = with(BOTH, 64, LKML);
    assert_eq!(merges, [0]);
    assert!(!warnings.is_empty());
    assert_eq!(bounds(&mut b), [(0, 5), (5, 10), (10, 20)]);
}

#[test]
fn register_errno_order() {
    let mut b = IntervalImpl::new(64);
    // Mode and length come before looking at VMAs.
    assert_eq!(run(&mut b, "register 0 0 4 0").0, Err(Errno::EINVAL));
    assert_eq!(run(&mut b, "register 0 0 4 8").0, Err(Errno::EINVAL));
    assert_eq!(run(&mut b, "register 0 0 0 missing").0, Err(Errno::EINVAL));
    assert_eq!(run(&mut b, "register 0 0 4 missing").0, Err(Errno::EINVAL));
    ok(
        &mut b,
        "map 0 4 rw- shmem
         map 4 4 rw- anon
         map 8 4 r-- shared-ro-file=0@0
         register 1 0 4 minor",
    );
    let before = lines(&mut b);
    // Left to right, the first VMA that fails decides.
    assert_eq!(run(&mut b, "register 0 0 12 minor").0, Err(Errno::EBUSY));
    assert_eq!(run(&mut b, "register 0 4 8 minor").0, Err(Errno::EINVAL));
    assert_eq!(run(&mut b, "register 0 4 8 missing").0, Err(Errno::EPERM));
    assert_eq!(run(&mut b, "register 0 8 4 minor").0, Err(Errno::EPERM));
    assert_eq!(lines(&mut b), before);
    // Holes are fine.
    assert_eq!(run(&mut b, "register 0 4 20 wp").0, Err(Errno::EPERM));
    assert_eq!(run(&mut b, "register 0 4 4 wp").0, Ok(()));
    assert_eq!(run(&mut b, "register 1 2 4 wp").0, Err(Errno::EBUSY));
}

#[test]
fn register_replaces_mode_or_skips_when_contained() {
    let (layout, _) = fixed(
        "map 0 8 rw- anon
         register 0 0 8 missing
         register 0 0 8 wp",
    );
    assert_eq!(layout, ["[0,8) rw- anon@0 account maywrite uffd=wp ctx=0"]);
    let (layout, merges) = fixed(
        "map 0 8 rw- anon
         register 0 0 8 missing+wp
         register 0 2 4 missing",
    );
    assert_eq!(
        layout,
        ["[0,8) rw- anon@0 account maywrite uffd=missing+wp ctx=0"]
    );
    assert!(merges.is_empty());
}

#[test]
fn register_over_holes_and_several_vmas_chains_prev() {
    let (layout, merges) = fixed(
        "map 0 4 rw- anon
         map 6 4 rw- anon
         protect 8 2 r--
         register 0 2 10 missing",
    );
    assert_eq!(
        layout,
        [
            "[0,2) rw- anon@0 account maywrite",
            "[2,4) rw- anon@2 account maywrite uffd=missing ctx=0",
            "[6,8) rw- anon@6 account maywrite uffd=missing ctx=0",
            "[8,10) r-- anon@8 maywrite uffd=missing ctx=0",
        ]
    );
    assert_eq!(merges, [0, 0, 0]);
}

#[test]
fn unregister_errno_order_and_other_ctx() {
    let mut b = IntervalImpl::new(64);
    assert_eq!(run(&mut b, "unregister 0 0 0").0, Err(Errno::EINVAL));
    assert_eq!(run(&mut b, "unregister 0 0 4").0, Err(Errno::EINVAL));
    ok(
        &mut b,
        "map 0 8 rw- anon
         register 0 0 2 missing
         register 1 6 2 missing",
    );
    let before = lines(&mut b);
    assert_eq!(run(&mut b, "unregister 0 0 8").0, Err(Errno::EINVAL));
    assert_eq!(lines(&mut b), before);
    // Plain VMAs are skipped: unregister of never-registered memory is Ok.
    assert_eq!(run(&mut b, "unregister 2 3 2").0, Ok(()));
    assert_eq!(run(&mut b, "unregister 0 0 6").0, Ok(()));
    assert_eq!(
        lines(&mut b),
        [
            "[0,6) rw- anon@0 account maywrite",
            "[6,8) rw- anon@6 account maywrite uffd=missing ctx=1",
        ]
    );
}

#[test]
fn close_releases_registrations_whole_vma_by_whole_vma() {
    let mut b = IntervalImpl::new(64);
    assert_eq!(run(&mut b, "close 0").0, Err(Errno::EBADF));
    let (r, rep) = run(
        &mut b,
        "map 0 20 rw- anon
         register 0 2 2 missing
         register 1 6 2 missing
         register 0 10 4 wp
         close 0",
    );
    assert_eq!(r, Ok(()));
    assert!(rep.violations.is_empty(), "{:?}", rep.violations);
    assert_eq!(rep.merges, [6, 6]);
    assert_eq!(
        lines(&mut b),
        [
            "[0,6) rw- anon@0 account maywrite",
            "[6,8) rw- anon@6 account maywrite uffd=missing ctx=1",
            "[8,20) rw- anon@8 account maywrite",
        ]
    );
    assert_eq!(run(&mut b, "close 0").0, Err(Errno::EBADF));
    let (r, rep) = run(&mut b, "close 1");
    assert_eq!(r, Ok(()));
    assert_eq!(rep.merges, [6]);
    assert_eq!(b.vma_count(), 1);
}

#[test]
fn a_failed_unregister_still_opens_the_ctx() {
    let mut b = IntervalImpl::new(64);
    assert_eq!(run(&mut b, "unregister 3 0 1").0, Err(Errno::EINVAL));
    assert_eq!(run(&mut b, "close 3").0, Ok(()));
    assert_eq!(run(&mut b, "close 3").0, Err(Errno::EBADF));
}

#[test]
fn split_registrations_remerge_on_unregister() {
    let (layout, merges) = fixed(
        "map 0 20 rw- shmem
         register 0 5 10 missing
         unregister 0 0 20",
    );
    assert_eq!(layout, ["[0,20) rw- shmem#0@0 shared mayshare maywrite"]);
    assert_eq!(merges, [6]);
}
