//! Every trace under `cases/` replays on the model and the implementation,
//! with every invariant after every step and every `expect` line holding
//! (through the one case runner, `uffd_check::cases`).

mod common;

use uffd_check::cases::run_cases;
use uffd_check::check::run_trace;
use uffd_check::trace::{CaseKind, Trace, MAX_MERGE_CASE};
use uffd_impl::IntervalImpl;
use uffd_model::PageModel;
use uffd_vocab::Series;

/// Every case with its trace, loaded.
fn cases() -> Vec<(std::path::PathBuf, Trace)> {
    common::case_files()
        .into_iter()
        .map(|f| {
            let t = Trace::load(&f).unwrap_or_else(|e| panic!("{e}"));
            (f, t)
        })
        .collect()
}

/// Every case of a kind `pick` picks, with what it picks of the kind.
fn cases_of<T>(pick: impl Fn(&CaseKind) -> Option<T>) -> Vec<(std::path::PathBuf, Trace, T)> {
    cases()
        .into_iter()
        .filter_map(|(f, t)| pick(&t.kind).map(|k| (f, t, k)))
        .collect()
}

#[test]
fn every_case_replays_on_model_and_impl() {
    let files = common::case_files();
    assert!(files.len() >= 12, "cases/ lost traces: {files:?}");
    let r = run_cases(&files, |pages| Ok(common::model_and_impl(pages)));
    assert!(r.failed.is_empty(), "\n{}", r.failures_text());
    assert_eq!(r.passed.len(), files.len());
}

#[test]
fn merge_case_traces_take_their_case() {
    // A case of `kind: merge-case N` makes the implementation report case N,
    // and every case 0 to 8 has one.
    let mut seen = std::collections::BTreeSet::new();
    for (file, trace, n) in cases_of(|k| match k {
        CaseKind::MergeCase(n) => Some(*n),
        _ => None,
    }) {
        let r = run_cases(std::slice::from_ref(&file), |pages| {
            Ok(common::model_and_impl(pages))
        });
        assert!(r.failed.is_empty(), "\n{}", r.failures_text());
        let stats = &r.passed[0].1;
        assert!(
            stats.merges[usize::from(n)] > 0,
            "{} did not take merge case {n}: {:?}",
            file.display(),
            stats.merges
        );
        assert_eq!(trace.kind, CaseKind::MergeCase(n));
        seen.insert(n);
    }
    for n in 0..=MAX_MERGE_CASE {
        assert!(seen.contains(&n), "no case of kind: merge-case {n}");
    }
}

#[test]
fn a_wrong_expectation_fails_the_case() {
    // The checker really reads `expect` lines: each wrong one is caught.
    let good = "arena 12\nmap 0 12 rw- anon\nregister 0 8 4 missing\nregister 0 4 4 missing\n";
    for wrong in [
        "expect EINVAL",
        "expect draw PPPPPPPPNNNN",
        "expect draw PPPPNNNNNNN.",
        "expect [0,12) rw- anon@0 account maywrite",
        "expect [0,4) rw- anon@? account maywrite\nexpect [4,12) rw- anon@? maywrite uffd=missing ctx=0",
    ] {
        let trace = Trace::parse(&format!("{good}{wrong}\n"), "wrong.trace").unwrap();
        let mut model = PageModel::new(trace.pages);
        let mut imp = IntervalImpl::new(trace.pages);
        let f = run_trace(&mut [&mut model, &mut imp], &trace)
            .expect_err(&format!("{wrong:?} was not caught"));
        assert_eq!(f.invariant, "expected", "{f}");
    }
    // An unknown page offset (`anon@?`) states nothing about it, and the
    // rest still counts.
    let trace = Trace::parse(
        &format!("{good}expect [0,4) rw- anon@? account maywrite\nexpect [4,12) rw- anon@? account maywrite uffd=missing ctx=0\n"),
        "unknown.trace",
    )
    .unwrap();
    let mut model = PageModel::new(trace.pages);
    let mut imp = IntervalImpl::new(trace.pages);
    run_trace(&mut [&mut model, &mut imp], &trace).unwrap();
}

/// Each case of `kind: deviation NAME` shows that known deviation of a
/// kernel. A rule of 6.18 (on by default): the case passes with the
/// model's default rules, and with them off (`--strict`) the contract and
/// the implementation (which does what 6.18 does) part at a step where the
/// model reports that deviation. A rule of other kernels only (off by
/// default): the case states what 6.18 does, and with the rules of the
/// first kernel that has it (its profile) the model parts from the
/// implementation at a step where it reports the rule. Every deviation
/// has such a case.
#[test]
fn every_deviation_case_fails_with_its_rule_turned_over() {
    use uffd_check::profile::Profile;
    use uffd_model::Deviation;
    let files = cases_of(|k| match k {
        CaseKind::Deviation(d) => Some(*d),
        _ => None,
    });
    let mut seen = std::collections::BTreeSet::new();
    for (file, trace, deviation) in &files {
        // Not the expect lines: they say what 6.18 does.
        let ops = Trace::from_ops(trace.pages, &trace.ops());
        let (turned, reporting) = if Deviation::off_by_default().contains(deviation) {
            // 6.1 is the oldest kernel measured.
            let first = deviation.history().since.unwrap_or(Series::new(6, 1));
            let off = Profile::of_release(&first.to_string()).rules_off();
            assert!(!off.contains(deviation), "{first} has {}", deviation.name());
            (off.clone(), off)
        } else {
            (Deviation::ALL.to_vec(), Deviation::off_by_default())
        };
        let mut model = PageModel::with_rules_off(trace.pages, &turned);
        let mut imp = IntervalImpl::new(trace.pages);
        let f = run_trace(&mut [&mut model, &mut imp], &ops).expect_err(&format!(
            "{} passes with its rule turned over",
            file.display()
        ));
        assert!(
            ["same-layout", "same-result", "same-events"].contains(&f.invariant),
            "{}: {f}",
            file.display()
        );
        // The step that parted is one where the model with the rule on
        // reports the case's deviation.
        let mut with_rules = PageModel::with_rules_off(trace.pages, &reporting);
        let mut names = Vec::new();
        for op in &ops.ops()[..=f.step] {
            use uffd_vocab::Backend;
            names = with_rules.step(op).unwrap().report.deviations;
        }
        assert!(
            names.contains(&deviation.name()),
            "{}: no {} at step {} (only {names:?})",
            file.display(),
            deviation.name(),
            f.step + 1
        );
        seen.insert(deviation.name());
    }
    for d in uffd_model::Deviation::ALL {
        assert!(
            seen.contains(d.name()),
            "no case of kind: deviation {}",
            d.name()
        );
    }
}

/// A case of `kind: bug NAME…` is the fixed kernel's side of those historic
/// bugs: with each put back, the model and the implementation part on it,
/// by the invariant `uffd_impl::HISTORIC_BUGS` names. Every historic bug has
/// such a case.
#[test]
fn every_historic_bug_case_fails_with_its_bug_put_back() {
    use uffd_impl::{Bugs, HISTORIC_BUGS};
    let mut seen = std::collections::BTreeSet::new();
    for (file, trace, bugs) in cases_of(|k| match k {
        CaseKind::Bug(bugs) => Some(*bugs),
        _ => None,
    }) {
        let ops = Trace::from_ops(trace.pages, &trace.ops());
        for name in bugs.names() {
            let h = HISTORIC_BUGS.iter().find(|h| h.name == name).unwrap();
            let mut model = PageModel::new(trace.pages);
            let mut imp = IntervalImpl::with_bugs(trace.pages, Bugs::named(&[name]).unwrap());
            let f = run_trace(&mut [&mut model, &mut imp], &ops)
                .expect_err(&format!("{} passes with {name}", file.display()));
            assert_eq!(f.invariant, h.caught_by, "{}: {f}", file.display());
            seen.insert(name);
        }
    }
    for h in HISTORIC_BUGS {
        assert!(seen.contains(h.name), "no case of kind: bug {}", h.name);
    }
}

/// A known deviation is judged the same way whichever backends run: the
/// implementation alone (which keeps the kernel's boundaries) passes every
/// deviation case, because the backend factory lends it the model's
/// knowledge; under `--strict` nothing is lent, and the implementation
/// alone fails it (`minimal-fragmentation` or an `expect` line).
#[test]
fn a_deviation_is_known_without_the_model_among_the_backends() {
    use uffd_check::backends::{as_refs, make_all, BackendList};
    use uffd_model::Deviation;
    let only_impl: BackendList = "impl".parse().unwrap();
    let mut failed_strict = 0;
    let files = cases_of(|k| matches!(k, CaseKind::Deviation(_)).then_some(()));
    assert!(
        files.len() >= Deviation::ALL.len(),
        "cases/ lost its deviation traces"
    );
    for (file, trace, ()) in &files {
        let ops = Trace::from_ops(trace.pages, &trace.ops());
        let default = Deviation::off_by_default();
        let mut b = make_all(&only_impl, trace.pages, Default::default(), &default).unwrap();
        if let Err(f) = run_trace(&mut as_refs(&mut b), trace) {
            panic!("{}: {f}", file.display());
        }
        let mut b = make_all(&only_impl, trace.pages, Default::default(), &Deviation::ALL).unwrap();
        failed_strict += usize::from(run_trace(&mut as_refs(&mut b), &ops).is_err());
    }
    // Some deviations show only against the contract's layout (a lost
    // registration), not as a boundary between equal VMAs.
    assert!(failed_strict >= 2, "{failed_strict}");
}
