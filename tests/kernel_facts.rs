//! Facts about the live kernel (Linux 6.18 x86-64): the rules of
//! docs/kernel-rules.md, and the ones it is silent about, each pinned down
//! so that a kernel that behaves differently shows up.
//!
//! The facts are case files, `cases/kernel-facts/*.trace` with
//! `kind: fact`: a trace and `expect` lines for its results and layouts.
//! Like every case they replay on the model, the implementation
//! (tests/cases.rs) and the live kernel (tests/kernel_differential.rs), and
//! as C programs (tests/repro.rs). Two facts this file once held inline are
//! historic-bug cases: `cases/historic-bugs/lkml-unregister-tail-merges-right.trace`
//! and `lkml-syzkaller-register-inside-vma.trace`.
//!
//! What remains here is what a trace cannot say about itself: that the
//! facts hold on the kernel ALONE, checked against their `expect` lines
//! with no model to compare to (so no rule of the model, deviation or
//! otherwise, can excuse the kernel), and that the folder holds facts and
//! only facts.

mod common;

use std::path::PathBuf;

use uffd_check::cases::{case_files, run_cases};
use uffd_check::trace::{CaseKind, Trace};

fn fact_files() -> Vec<PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("cases/kernel-facts");
    case_files(&dir).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_kernel_facts_are_facts_with_expectations_and_every_fact_is_there() {
    let files = fact_files();
    assert!(
        files.len() >= 39,
        "cases/kernel-facts lost facts: {files:?}"
    );
    for file in &files {
        let trace = Trace::load(file).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(trace.kind, CaseKind::Fact, "{}", file.display());
        assert!(
            trace
                .steps
                .iter()
                .any(|s| s.expect_result.is_some() || s.expect_layout.is_some()),
            "{}: a fact without an `expect` line states nothing",
            file.display()
        );
    }
    for file in common::case_files() {
        let trace = Trace::load(&file).unwrap_or_else(|e| panic!("{e}"));
        if trace.kind == CaseKind::Fact {
            assert!(
                files.contains(&file),
                "{}: a fact outside cases/kernel-facts",
                file.display()
            );
        }
    }
}

#[test]
fn every_fact_holds_on_the_kernel_alone() {
    if !common::kernel_available() {
        return;
    }
    let files = fact_files();
    let r = run_cases(&files, |pages| {
        Ok(vec![
            Box::new(common::kernel_backend(pages)) as Box<dyn uffd_vocab::Backend>
        ])
    });
    assert!(r.failed.is_empty(), "\n{}", r.failures_text());
    assert_eq!(r.passed.len(), files.len());
}
