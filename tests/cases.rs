//! Every trace under `cases/` replays on the model and the implementation,
//! with every invariant after every step and every `expect` line holding.

mod common;

use uffd_check::check::run_trace;
use uffd_check::trace::Trace;
use uffd_impl::IntervalImpl;
use uffd_model::PageModel;

#[test]
fn every_case_replays_on_model_and_impl() {
    let files = common::case_files();
    assert!(files.len() >= 12, "cases/ lost traces: {files:?}");
    let mut failures = Vec::new();
    for path in &files {
        let trace = Trace::load(path).unwrap_or_else(|e| panic!("{e}"));
        let mut model = PageModel::new(trace.pages);
        let mut imp = IntervalImpl::new(trace.pages);
        if let Err(f) = run_trace(&mut [&mut model, &mut imp], &trace) {
            failures.push(format!("{}:\n{f}", path.display()));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn merge_case_traces_take_their_case() {
    // merge-case-N-*.trace must make the implementation report case N.
    for path in common::case_files() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(n) = name
            .strip_prefix("merge-case-")
            .and_then(|r| r[..1].parse::<usize>().ok())
        else {
            continue;
        };
        let trace = Trace::load(&path).unwrap();
        let mut model = PageModel::new(trace.pages);
        let mut imp = IntervalImpl::new(trace.pages);
        let stats = run_trace(&mut [&mut model, &mut imp], &trace).unwrap();
        assert!(
            stats.merges[n] > 0,
            "{name} did not take merge case {n}: {:?}",
            stats.merges
        );
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
    ] {
        let trace = Trace::parse(&format!("{good}{wrong}\n"), "wrong.trace").unwrap();
        let mut model = PageModel::new(trace.pages);
        let mut imp = IntervalImpl::new(trace.pages);
        let f = run_trace(&mut [&mut model, &mut imp], &trace)
            .expect_err(&format!("{wrong:?} was not caught"));
        assert_eq!(f.invariant, "expected", "{f}");
    }
}
