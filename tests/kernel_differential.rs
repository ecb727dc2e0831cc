//! Three-way checking: random sequences on the page model, the interval
//! implementation and the live kernel together, every invariant after every
//! step; and every trace of `cases/` replayed on all three.
//!
//! Where userfaultfd cannot be used (not Linux, not permitted) these tests
//! print why and pass without running; set `UFFD_CHECK_REQUIRE_KERNEL=1`
//! (as `.ci/run` does) to make that a failure instead.
//! `UFFD_CHECK_CASES=N` sets the number of random sequences.

mod common;

use std::cell::RefCell;
use std::path::Path;

use proptest::test_runner::{TestCaseError, TestRunner};
use uffd_check::check::{run_ops, run_trace};
use uffd_check::gen;
use uffd_check::kernel::{available, KernelBackend};
use uffd_check::trace::Trace;
use uffd_impl::IntervalImpl;
use uffd_model::{Page, PageModel};

/// The kernel backend, or `None` (with the reason printed) where there is none.
fn kernel(pages: Page) -> Option<KernelBackend> {
    if let Err(why) = available() {
        if std::env::var_os("UFFD_CHECK_REQUIRE_KERNEL").is_some() {
            panic!("UFFD_CHECK_REQUIRE_KERNEL is set but {why}");
        }
        eprintln!("SKIPPED: the live-kernel backend is not available here: {why}");
        return None;
    }
    Some(
        KernelBackend::spawn(pages, Path::new(env!("CARGO_BIN_EXE_uffd-check")))
            .unwrap_or_else(|e| panic!("{e}")),
    )
}

fn three_way(name: &'static str, pages: Page, max_ops: usize, default_cases: u32) {
    let Some(kern) = kernel(pages) else { return };
    let kern = RefCell::new(kern);
    let mut runner = TestRunner::new(common::config(name, default_cases));
    let result = runner.run(&gen::ops(pages, max_ops), |ops| {
        let mut model = PageModel::new(pages);
        let mut imp = IntervalImpl::new(pages);
        let mut k = kern.borrow_mut();
        run_ops(&mut [&mut model, &mut imp, &mut *k], pages, &ops)
            .map(|_| ())
            .map_err(|f| TestCaseError::fail(format!("\n{f}")))
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn model_impl_and_kernel_agree_on_6_pages() {
    three_way("kernel_differential_6", 6, 30, 3000);
}

#[test]
fn model_impl_and_kernel_agree_on_16_pages() {
    three_way("kernel_differential_16", 16, 40, 3000);
}

#[test]
fn every_case_replays_on_the_kernel() {
    let Some(mut kern) = kernel(64) else { return };
    let mut failures = Vec::new();
    for path in common::case_files() {
        let trace = Trace::load(&path).unwrap_or_else(|e| panic!("{e}"));
        // The arena of each trace is its own.
        let mut k = if trace.pages == 64 {
            None
        } else {
            Some(
                KernelBackend::spawn(trace.pages, Path::new(env!("CARGO_BIN_EXE_uffd-check")))
                    .unwrap_or_else(|e| panic!("{e}")),
            )
        };
        let k: &mut KernelBackend = k.as_mut().unwrap_or(&mut kern);
        let mut model = PageModel::new(trace.pages);
        let mut imp = IntervalImpl::new(trace.pages);
        if let Err(f) = run_trace(&mut [&mut model, &mut imp, k], &trace) {
            failures.push(format!("{}:\n{f}", path.display()));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
