//! Every trace under `cases/` replays on the model and the implementation,
//! with every invariant after every step and every `expect` line holding
//! (through the one case runner, `uffd_check::cases`).

mod common;

use uffd_check::cases::run_cases;
use uffd_check::check::run_trace;
use uffd_check::trace::Trace;
use uffd_impl::IntervalImpl;
use uffd_model::PageModel;

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
    // merge-case-N-*.trace must make the implementation report case N.
    let files = common::case_files();
    let r = run_cases(&files, |pages| Ok(common::model_and_impl(pages)));
    let mut seen = 0;
    for (path, stats) in &r.passed {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(n) = name
            .strip_prefix("merge-case-")
            .and_then(|r| r[..1].parse::<usize>().ok())
        else {
            continue;
        };
        seen += 1;
        assert!(
            stats.merges[n] > 0,
            "{name} did not take merge case {n}: {:?}",
            stats.merges
        );
    }
    assert_eq!(seen, 9, "one trace per merge case 0 to 8");
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

/// Each `cases/deviation-*.trace` shows a known deviation of the kernel:
/// it passes with the model's deviation rules on, and with them off
/// (`--strict`) the contract and the implementation (which does what the
/// kernel does) part at a step where the model reports the deviation.
#[test]
fn every_deviation_case_fails_under_the_contract_alone() {
    let files: Vec<_> = common::case_files()
        .into_iter()
        .filter(|f| {
            f.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("deviation-"))
        })
        .collect();
    assert!(files.len() >= 3, "cases/ lost its deviation traces");
    let mut seen = std::collections::BTreeSet::new();
    for file in &files {
        let trace = Trace::load(file).unwrap_or_else(|e| panic!("{e}"));
        // Not the expect lines: they say what the kernel does.
        let ops = Trace::from_ops(trace.pages, &trace.ops());
        let mut model = PageModel::with_strict(trace.pages, true);
        let mut imp = IntervalImpl::new(trace.pages);
        let f = run_trace(&mut [&mut model, &mut imp], &ops)
            .expect_err(&format!("{} passes under the contract", file.display()));
        assert!(
            ["same-layout", "same-result"].contains(&f.invariant),
            "{}: {f}",
            file.display()
        );
        // The step that parted is one where the rules-on model reports
        // a deviation.
        let mut with_rules = PageModel::new(trace.pages);
        let mut names = Vec::new();
        for op in &ops.ops()[..=f.step] {
            use uffd_vocab::Backend;
            names = with_rules.step(op).unwrap().report.deviations;
        }
        assert!(
            !names.is_empty(),
            "{}: no deviation at step {}",
            file.display(),
            f.step + 1
        );
        seen.extend(names);
    }
    for d in uffd_model::Deviation::ALL {
        assert!(seen.contains(d.name()), "no case shows {}", d.name());
    }
}

/// A case whose comment names `--inject-bug NAME` is the fixed kernel's side
/// of a historic bug: with that bug put back, the model and the
/// implementation part on it, by the invariant `uffd_impl::HISTORIC_BUGS`
/// names. Every historic bug has such a case.
#[test]
fn every_historic_bug_case_fails_with_its_bug_put_back() {
    use uffd_impl::{Bugs, HISTORIC_BUGS};
    let mut seen = std::collections::BTreeSet::new();
    for file in common::case_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        // The comment at the top, its lines joined (a name may wrap).
        let comment: Vec<&str> = text
            .lines()
            .map_while(|l| l.strip_prefix('#'))
            .map(str::trim)
            .collect();
        let comment = comment.join(" ");
        let names = comment.split("--inject-bug ").skip(1).map(|rest| {
            rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .next()
        });
        for name in names.flatten() {
            let h = HISTORIC_BUGS
                .iter()
                .find(|h| h.name == name)
                .unwrap_or_else(|| panic!("{}: no historic bug {name:?}", file.display()));
            let trace = Trace::load(&file).unwrap_or_else(|e| panic!("{e}"));
            let ops = Trace::from_ops(trace.pages, &trace.ops());
            let mut model = PageModel::new(trace.pages);
            let mut imp = IntervalImpl::with_bugs(trace.pages, Bugs::named(&[name]).unwrap());
            let f = run_trace(&mut [&mut model, &mut imp], &ops)
                .expect_err(&format!("{} passes with {name}", file.display()));
            assert_eq!(f.invariant, h.caught_by, "{}: {f}", file.display());
            seen.insert(name.to_string());
        }
    }
    for h in HISTORIC_BUGS {
        assert!(
            seen.contains(h.name),
            "no case names --inject-bug {}",
            h.name
        );
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
    for file in common::case_files().iter().filter(|f| {
        f.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("deviation-"))
    }) {
        let trace = Trace::load(file).unwrap_or_else(|e| panic!("{e}"));
        let ops = Trace::from_ops(trace.pages, &trace.ops());
        let mut b = make_all(&only_impl, trace.pages, Default::default(), &[]).unwrap();
        if let Err(f) = run_trace(&mut as_refs(&mut b), &trace) {
            panic!("{}: {f}", file.display());
        }
        let mut b = make_all(&only_impl, trace.pages, Default::default(), &Deviation::ALL).unwrap();
        failed_strict += usize::from(run_trace(&mut as_refs(&mut b), &ops).is_err());
    }
    // Some deviations show only against the contract's layout (a lost
    // registration), not as a boundary between equal VMAs.
    assert!(failed_strict >= 2, "{failed_strict}");
}
