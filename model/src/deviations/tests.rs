//! The deviation rules, each on its own and against the contract.

use super::*;
use crate::testing::{last_step, run};
use uffd_vocab::Backend;

/// With the DONTUNMAP rules (23, 44) off, the unlocked source merges by rule 5
/// around the pages it changed, and only those: a boundary another rule
/// keeps elsewhere stays.
#[test]
fn the_contract_of_dontunmap_merges_only_around_what_it_changed() {
    let trace = "map 0 4 rw- anon\nmap 12 4 rw- anon\nregister 0 0 4 missing\n\
                 mremap 0 4 4 8\nmap 17 2 rw- anon\nmlock 17 1\nmremap 17 1 1 0 dontunmap";
    let contract = [
        Deviation::DontUnmapUnlocksVma,
        Deviation::DontUnmapSourceStaysApart,
    ];
    let mut m = PageModel::with_rules_off(20, &contract);
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
    let last = |off: &[Deviation], trace: &str| {
        let (layout, events) = last_step(off, trace);
        (layout.len(), events)
    };
    let kernel = Deviation::MremapOldRegistration.name();
    assert_eq!(last(&[], mremap), (1, vec![kernel]));
    assert_eq!(
        last(&[Deviation::ForkKeepsBoundaries], mremap),
        (1, vec![kernel])
    );
    assert_eq!(
        last(&[Deviation::MremapOldRegistration], mremap),
        (2, vec![])
    );
    let kernel = Deviation::ForkKeepsBoundaries.name();
    assert_eq!(
        last(&[Deviation::MremapOldRegistration], fork),
        (2, vec![kernel])
    );
    assert_eq!(last(&[Deviation::ForkKeepsBoundaries], fork), (1, vec![]));
    // A rule named twice (`--strict-rule R --strict-rule R`) is off.
    let twice = [Deviation::ForkKeepsBoundaries; 2];
    assert_eq!(last(&twice, fork), (1, vec![]));
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
    // The table has each deviation once, and the rules 21 to 30, 32, 36
    // to 40, 43 and 44.
    assert_eq!(KNOWN.len(), Deviation::ALL.len());
    let rules: Vec<u8> = Deviation::ALL.iter().map(|d| d.rule()).collect();
    assert_eq!(
        rules,
        (21..=30)
            .chain([32])
            .chain(36..=40)
            .chain([43, 44])
            .collect::<Vec<u8>>()
    );
}

/// The kernels measured: 6.1 to 7.3.
#[test]
fn the_kernels_that_have_each_deviation() {
    let has = |d: Deviation, minor: u16| d.history().has(Series::new(minor / 100, minor % 100));
    for v in [601, 612, 616, 618, 700, 701, 702, 703] {
        assert!(has(Deviation::ForkKeepsBoundaries, v), "{v}");
        let dontunmap = (616..=701).contains(&v);
        assert_eq!(has(Deviation::DontUnmapUnlocksVma, v), dontunmap, "{v}");
        let apart = !(616..702).contains(&v);
        assert_eq!(has(Deviation::DontUnmapSourceStaysApart, v), apart, "{v}");
        let mremap = v < 612 || (616..=702).contains(&v);
        assert_eq!(has(Deviation::MremapOldRegistration, v), mremap, "{v}");
        assert_eq!(has(Deviation::MremapWithinOneVma, v), v < 617, "{v}");
        assert_eq!(has(Deviation::UnregisterAnyCtx, v), v < 617, "{v}");
        assert_eq!(has(Deviation::NewMappingJoinsNext, v), v < 612, "{v}");
        let copy_apart = !(616..702).contains(&v);
        assert_eq!(has(Deviation::DontUnmapCopyApart, v), copy_apart, "{v}");
        let copy = v == 612 || v >= 703;
        assert_eq!(has(Deviation::MovedCopyStaysApart, v), copy, "{v}");
        assert_eq!(has(Deviation::RegisterKeepsWp, v), v >= 703, "{v}");
        let account = v == 616;
        assert_eq!(
            has(Deviation::DontUnmapSourceLosesAccount, v),
            account,
            "{v}"
        );
        assert_eq!(has(Deviation::WriteprotectWithinOneVma, v), v < 612, "{v}");
        let old = v < 612;
        assert_eq!(has(Deviation::DontUnmapCopyMergesWithNothing, v), old);
        assert_eq!(has(Deviation::NoUffdioMove, v), v < 608, "{v}");
        assert_eq!(has(Deviation::NoUffdioPoison, v), v < 606, "{v}");
        assert_eq!(has(Deviation::NoContinueWp, v), v < 604, "{v}");
        assert_eq!(has(Deviation::RefusedFillLeavesNoAnonVma, v), old);
        assert_eq!(has(Deviation::RemapEventOldLength, v), v < 616, "{v}");
    }
    // By default, the rules of 6.18.
    let off: Vec<&str> = Deviation::off_by_default()
        .iter()
        .map(|d| d.name())
        .collect();
    assert_eq!(
        off,
        [
            "mremap-moves-within-one-vma",
            "unregister-through-any-ctx",
            "new-mapping-joins-next",
            "dontunmap-copy-stays-apart-from-its-source",
            "moved-copy-stays-apart",
            "register-keeps-wp",
            "dontunmap-source-loses-account",
            "writeprotect-within-one-vma",
            "dontunmap-copy-merges-with-nothing",
            "no-uffdio-move",
            "no-uffdio-poison",
            "no-continue-wp",
            "refused-fill-leaves-no-anon-vma",
            "remap-event-has-the-old-length",
            "dontunmap-source-stays-apart"
        ]
    );
}

/// Rules 37 to 40, as 6.1 answered: the ioctls and the mode it has not,
/// EINVAL before anything; a refused fill leaves no anon_vma.
#[test]
fn before_6_12_the_newer_ioctls_are_einval() {
    let rules = [
        Deviation::NoUffdioMove,
        Deviation::NoUffdioPoison,
        Deviation::NoContinueWp,
    ];
    for (op, rule) in ["move 0 0 1 1", "poison 1 0 1", "continue 2 0 1 wp"]
        .into_iter()
        .zip(rules)
    {
        let mut m = PageModel::with_rules_off(4, &[]);
        let o = m.step(&op.parse::<Op>().unwrap()).unwrap();
        assert_eq!(o.result, Err(uffd_vocab::Errno::EINVAL), "{op}");
        assert_eq!(o.report.deviations, [rule.name()], "{op}");
        assert!(
            m.open_contexts().to_string() != "none",
            "{op}: the ctx opens"
        );
        let mut m = PageModel::new(4);
        let o = m.step(&op.parse::<Op>().unwrap()).unwrap();
        assert_eq!(o.result, Err(uffd_vocab::Errno::ENOENT), "{op}");
    }
    let trace = "map 0 1 rw- file=0@0\ncopy 1 0 1";
    let (layout, _) = last_step(&[], trace);
    assert_eq!(layout.vmas()[0].anon_vma, None, "6.1: no anon_vma");
    let (layout, _) = last_step(&Deviation::off_by_default(), trace);
    assert!(layout.vmas()[0].anon_vma.is_some(), "6.18: an anon_vma");
}

/// Rule 32, as 6.1 answered: one VMA registered with WP, or ENOENT and
/// nothing done.
#[test]
fn before_6_12_writeprotect_takes_one_vma() {
    let rule = Deviation::WriteprotectWithinOneVma;
    let trace = "map 0 8 rw- anon\nregister 0 0 4 wp\nfault 2\nwriteprotect 0 0 4 on\n\
                 writeprotect 0 2 4 off";
    let (r, _, reported) = with_only(rule, trace);
    assert_eq!(r[4], "ENOENT");
    assert_eq!(reported, [rule.name()]);
    // Across a hole, both VMAs registered: the contract skips the hole.
    let trace = "map 0 2 rw- anon\nmap 4 2 rw- anon\nregister 0 0 6 wp\nwriteprotect 0 0 6 on";
    assert_eq!(with_only(rule, trace).0[3], "ENOENT");
    assert_eq!(last_results_strict(trace).0[3], "ok");
    let (r, _, reported) = with_only(
        rule,
        "map 0 8 rw- anon\nregister 0 0 4 wp\nwriteprotect 0 1 2 on",
    );
    assert_eq!(r[2], "ok");
    assert!(reported.is_empty());
}

/// Rule 30, as 6.16 answered: the DONTUNMAP source's VMA loses
/// VM_ACCOUNT, whole.
#[test]
fn on_6_16_the_dontunmap_source_loses_account() {
    let rule = Deviation::DontUnmapSourceLosesAccount;
    let (_, layout, reported) = with_only(rule, "map 0 2 rw- anon\nmremap 0 1 1 8 dontunmap");
    assert_eq!(
        layout,
        [
            "[0,2) rw- anon@0 maywrite",
            "[8,9) rw- anon@8 account maywrite"
        ]
    );
    assert_eq!(reported, [rule.name()]);
}

/// Rule 27, as 6.1, 6.12 and 7.3 answered: the DONTUNMAP copy next to its
/// source's VMA stays apart; next to another VMA it merges.
#[test]
fn a_dontunmap_copy_stays_apart_from_its_source() {
    let rule = Deviation::DontUnmapCopyApart;
    let (_, layout, reported) = with_only(rule, "map 0 4 rw- anon\nmremap 2 2 2 4 dontunmap");
    assert_eq!(
        layout,
        [
            "[0,4) rw- anon@0 account maywrite",
            "[4,6) rw- anon@4 account maywrite"
        ]
    );
    assert_eq!(reported, [rule.name()]);
    let (_, layout, reported) = with_only(
        rule,
        "map 0 2 rw- anon\nmap 6 2 rw- anon\nmremap 6 2 2 2 dontunmap",
    );
    assert_eq!(layout[0], "[0,4) rw- anon@0 account maywrite");
    assert!(reported.is_empty());
}

/// Rule 28, as 7.3 answered: the moved copy, unregistered, stays apart
/// from an equal neighbour (rule 21 off, as on 7.3).
#[test]
fn a_moved_copy_that_lost_its_registration_stays_apart() {
    let rule = Deviation::MovedCopyStaysApart;
    let trace = "map 0 4 rw- anon\nmap 12 4 rw- anon\nregister 0 0 4 missing\nmremap 0 4 4 8";
    let (_, layout, reported) = with_only(rule, trace);
    assert_eq!(
        layout,
        [
            "[8,12) rw- anon@8 account maywrite",
            "[12,16) rw- anon@12 account maywrite"
        ]
    );
    assert_eq!(reported, [rule.name()]);
    // With rule 21 on too (6.16 to 7.2), rule 21 says it all.
    let (_, reported) = last_step(&Deviation::off_by_default(), trace);
    assert_eq!(reported, [Deviation::MremapOldRegistration.name()]);
}

/// Rule 29, as 7.3 answered: WP is not dropped by registering again.
#[test]
fn register_keeps_wp_on_7_3() {
    let rule = Deviation::RegisterKeepsWp;
    let (r, layout, reported) = with_only(
        rule,
        "map 0 4 rw- anon\nregister 0 0 2 wp\nregister 0 0 4 missing",
    );
    assert_eq!(r[2], "EBUSY");
    assert_eq!(layout[0], "[0,2) rw- anon@0 account maywrite uffd=wp ctx=0");
    assert_eq!(reported, [rule.name()]);
    // VMA by VMA: the WP VMA comes first, before the anonymous one that
    // MINOR refuses (EINVAL by the contract).
    let trace = "map 0 1 rw- shmem\nmap 1 1 rw- anon\nregister 0 0 1 wp\nregister 0 0 2 minor";
    assert_eq!(with_only(rule, trace).0[3], "EBUSY");
    assert_eq!(last_results_strict(trace).0[3], "EINVAL");
    // Keeping WP, or adding it, is as before.
    for trace in [
        "map 0 4 rw- anon\nregister 0 0 4 missing+wp\nregister 0 0 4 wp",
        "map 0 4 rw- anon\nregister 0 0 4 missing\nregister 0 0 4 wp",
    ] {
        let (r, _, reported) = with_only(rule, trace);
        assert_eq!(r[2], "ok", "{trace}");
        assert!(reported.is_empty());
    }
}

/// The model with only `on` of the rules on: the results of `trace`, and
/// the layout and reported rules of its last step.
fn with_only(on: Deviation, trace: &str) -> Outcomes {
    let off: Vec<Deviation> = Deviation::ALL.into_iter().filter(|d| *d != on).collect();
    outcomes(&off, trace)
}

/// `with_only` with every rule off.
fn last_results_strict(trace: &str) -> Outcomes {
    outcomes(&Deviation::ALL, trace)
}

/// Results, last layout and last reported rules.
type Outcomes = (Vec<String>, Vec<String>, Vec<&'static str>);

/// The model with the rules `off` off: the results of `trace`, and the
/// layout and reported rules of its last step.
fn outcomes(off: &[Deviation], trace: &str) -> Outcomes {
    let mut m = PageModel::with_rules_off(16, off);
    let (mut results, mut last) = (Vec::new(), None);
    for l in trace.lines() {
        let o = m.step(&l.trim().parse::<Op>().unwrap()).unwrap();
        results.push(uffd_vocab::result_name(&o.result).to_string());
        last = Some(o);
    }
    let o = last.expect("a trace");
    (results, o.layout.lines(), o.report.deviations)
}

/// Rule 24, as Linux 6.1 and 6.12 answered these moves under qemu: the
/// source is looked up first, the destination is unmapped before the range
/// is refused.
#[test]
fn before_6_17_a_move_stays_within_one_vma() {
    let rule = Deviation::MremapWithinOneVma;
    // Across two VMAs: EFAULT, and the destination is gone.
    let (r, layout, reported) = with_only(
        rule,
        "map 0 2 rw- anon\nmap 2 2 r-- anon\nmap 8 4 rw- shmem\nmremap 0 4 4 8",
    );
    assert_eq!(r.last().unwrap(), "EFAULT");
    assert_eq!(
        layout,
        [
            "[0,2) rw- anon@0 account maywrite",
            "[2,4) r-- anon@2 maywrite"
        ]
    );
    assert_eq!(reported, [rule.name()]);
    // A private length 0: EINVAL after the destination went.
    let (r, layout, _) = with_only(rule, "map 0 2 rw- anon\nmap 8 4 rw- shmem\nmremap 0 0 4 8");
    assert_eq!((r[2].as_str(), layout.len()), ("EINVAL", 1));
    // An empty source is EFAULT before the overlap is EINVAL.
    let (r, _, reported) = with_only(rule, "mremap 5 1 1 5");
    assert_eq!((r[0].as_str(), reported), ("EFAULT", vec![rule.name()]));
    // Within one VMA: the move of the contract, nothing reported.
    let (r, layout, reported) = with_only(rule, "map 0 4 rw- anon\nmremap 0 4 2 8");
    assert_eq!(r[1], "ok");
    assert_eq!(layout, ["[8,10) rw- anon@8 account maywrite"]);
    assert!(reported.is_empty(), "{reported:?}");
}

/// Rule 25, as 6.1 and 6.12 answered: ctx 1 unregisters ctx 0's range.
#[test]
fn before_6_17_any_ctx_unregisters() {
    let rule = Deviation::UnregisterAnyCtx;
    let trace = "map 0 4 rw- anon\nregister 0 0 2 missing\nunregister 1 0 4";
    let (r, layout, reported) = with_only(rule, trace);
    assert_eq!(r[2], "ok");
    assert_eq!(layout, ["[0,4) rw- anon@0 account maywrite"]);
    assert_eq!(reported, [rule.name()]);
    let (r, _, _) = last_results_strict(trace);
    assert_eq!(r[2], "EINVAL");
}

/// Rule 26, as 6.1 answered: the new mapping joins the faulted VMA after
/// it, where 6.12 and later join the one before.
#[test]
fn before_6_12_a_new_mapping_joins_next() {
    let rule = Deviation::NewMappingJoinsNext;
    let trace = "map 0 1 rw- anon\nfault 0\nmap 5 1 rw- anon\nfault 5\nmap 1 4 rw- anon";
    let (_, layout, reported) = with_only(rule, trace);
    assert_eq!(
        layout,
        [
            "[0,1) rw- anon@0 account maywrite anon_vma=0",
            "[1,6) rw- anon@1 account maywrite anon_vma=1"
        ]
    );
    assert_eq!(reported, [rule.name()]);
    let (_, layout, _) = last_results_strict(trace);
    assert_eq!(layout[0], "[0,5) rw- anon@0 account maywrite anon_vma=0");
    // The one before without an anon_vma could take either, but those
    // kernels' anon_vma test (disallowed-anon-merge) keeps it apart.
    let (_, layout, reported) = with_only(
        rule,
        "map 0 1 rw- anon\nmap 5 1 rw- anon\nfault 5\nmap 1 4 rw- anon",
    );
    assert_eq!(
        layout,
        [
            "[0,1) rw- anon@0 account maywrite",
            "[1,6) rw- anon@1 account maywrite anon_vma=0"
        ]
    );
    assert_eq!(reported, [rule.name()]);
}

/// With its deviation rules off the model states the contract; each
/// known deviation's minimal case, as the contract answers it.
#[test]
fn the_contract_of_each_deviation() {
    let strict = |trace: &str| last_step(&Deviation::ALL, trace).0.lines();
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

/// Rules 21, 27 and 36 together, as 6.1 answered (the matrix's finding
/// `map 1 1 rw- anon; register 0 1 1 missing; mremap 1 1 1 2 dontunmap`):
/// the DONTUNMAP copy merges with nothing, loses its registration alone,
/// and the source keeps its own; 6.18 (rule 21 alone) merges the copy into
/// the source, which loses it.
#[test]
fn on_6_1_a_dontunmap_copy_next_to_its_source_stays_alone() {
    let series = Series::new(6, 1);
    let off: Vec<Deviation> = Deviation::ALL
        .into_iter()
        .filter(|d| !d.history().has(series))
        .collect();
    let trace = "map 1 1 rw- anon\nregister 0 1 1 missing\nmremap 1 1 1 2 dontunmap";
    let (layout, _) = last_step(&off, trace);
    assert_eq!(
        layout.lines(),
        [
            "[1,2) rw- anon@1 account maywrite uffd=missing ctx=0",
            "[2,3) rw- anon@2 account maywrite"
        ]
    );
    let (layout, _) = last_step(&Deviation::off_by_default(), trace);
    assert_eq!(layout.lines(), ["[1,3) rw- anon@1 account maywrite"]);
}

/// Rule 40 takes part in the fills a monitor makes to resolve the faults
/// an op delivers (rule 42: a fault, mlock's populate), not only in the
/// fill ops: there too it is reported only where it changed the step. A
/// missing fault on private memory resolved by UFFDIO_COPY prepares the
/// anon_vma late, but the copy is not refused: nothing changes. (It was
/// reported on every such fault under the 6.1 profile.)
#[test]
fn a_resolved_fault_reports_no_refused_fill() {
    let off: Vec<Deviation> = Deviation::ALL
        .into_iter()
        .filter(|&d| d != Deviation::RefusedFillLeavesNoAnonVma)
        .collect();
    let open = "open 0 faults\nmap 0 4 rw- anon\nregister 0 0 4 missing\n";
    for op in ["fault 1", "mlock 0 4"] {
        let (layout, deviations) = last_step(&off, &format!("{open}{op}"));
        assert!(deviations.is_empty(), "{op}: {deviations:?}");
        let (contract, _) = last_step(&Deviation::ALL, &format!("{open}{op}"));
        assert_eq!(layout, contract, "{op}");
    }
}
