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

use proptest::test_runner::{TestCaseError, TestRunner};
use uffd_check::cases::run_cases;
use uffd_check::check::run_ops;
use uffd_check::gen;
use uffd_check::kernel::{Fault, KernelBackend};
use uffd_impl::IntervalImpl;
use uffd_model::PageModel;
use uffd_vocab::{Backend, Op, Outcome, Page, Unsupported};

/// The kernel backend, or `None` where there is none (see
/// `common::kernel_available`).
fn kernel(pages: Page) -> Option<KernelBackend> {
    if !common::kernel_available() {
        return None;
    }
    Some(common::kernel_backend(pages))
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
    if !common::kernel_available() {
        return;
    }
    let files = common::case_files();
    let r = run_cases(&files, |pages| {
        let mut b = common::model_and_impl(pages);
        b.push(Box::new(common::kernel_backend(pages)));
        Ok(b)
    });
    assert!(r.failed.is_empty(), "\n{}", r.failures_text());
    assert_eq!(r.passed.len(), files.len());
}

/// The kernel backend, with a fault armed in the worker at op number `at`
/// of a sequence, `times` sequences at most. It wraps `step` (and `plan`,
/// `reset`) like any backend, so the fault strikes in the planned,
/// pipelined path that `check --kernel` uses.
struct FaultAt {
    inner: KernelBackend,
    fault: Fault,
    at: u64,
    times: u32,
}

impl Backend for FaultAt {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn pages(&self) -> Page {
        self.inner.pages()
    }
    fn step(&mut self, op: &Op) -> Result<Outcome, Unsupported> {
        let o = self.inner.step(op)?;
        if !o.report.violations.is_empty() {
            self.times = self.times.saturating_sub(1);
        }
        Ok(o)
    }
    fn reset(&mut self) {
        self.inner.reset();
        if self.times > 0 {
            self.inner.inject_fault(self.fault, Some(self.at));
        }
    }
    fn plan(&mut self, ops: &[Op]) {
        self.inner.plan(ops)
    }
}

fn three_ops() -> Vec<Op> {
    [
        "map 0 8 rw- anon",
        "register 0 2 2 missing",
        "unregister 0 0 8",
    ]
    .iter()
    .map(|l| l.parse().unwrap())
    .collect()
}

#[test]
fn a_crashing_or_hanging_worker_fails_the_sequence_that_hit_it_and_the_run_goes_on() {
    let Some(inner) = kernel(8) else { return };
    let ops = three_ops();
    let mut k = FaultAt {
        inner,
        fault: Fault::Crash,
        at: 1,
        times: 1,
    };
    k.inner.set_timeout(std::time::Duration::from_millis(500));
    for fault in [Fault::Crash, Fault::Hang, Fault::CrashReadingLayout] {
        k.fault = fault;
        k.times = 1;
        let mut model = PageModel::new(8);
        let f = run_ops(&mut [&mut model, &mut k], 8, &ops).unwrap_err();
        assert_eq!(f.invariant, "backend-healthy", "{fault:?}: {f}");
        assert_eq!(f.step, 1, "{fault:?}: {f}");
        let text = f.to_string();
        assert!(text.contains("kernel-worker"), "{text}");
        assert!(
            text.contains("map 0 8 rw- anon\n  register 0 2 2 missing"),
            "{text}"
        );
        // The backend has a fresh worker: the same sequence now passes.
        assert_eq!(k.times, 0);
        run_ops(&mut [&mut model, &mut k], 8, &ops).unwrap();
    }
}

/// The worker dies while the layout of the LAST step is read: the checker
/// blames that step. (Before the backends answered one step with the report
/// taken after the layout, this violation was lost: the run failed
/// `same-layout` on an empty kernel layout, or passed when nothing followed.)
#[test]
fn a_failure_while_reading_the_layout_is_blamed_on_its_step() {
    let Some(inner) = kernel(8) else { return };
    let mut k = FaultAt {
        inner,
        fault: Fault::CrashReadingLayout,
        at: 2,
        times: 1,
    };
    let mut model = PageModel::new(8);
    let f = run_ops(&mut [&mut model, &mut k], 8, &three_ops()).expect_err("the crash was lost");
    assert_eq!(f.invariant, "backend-healthy", "{f}");
    assert_eq!(f.step, 2, "{f}");
    assert!(f.message.contains("layout"), "{f}");
}

#[test]
fn a_one_off_worker_crash_in_a_random_run_is_reported_not_lost() {
    use uffd_check::runner::{run, RunConfig};
    let Some(inner) = kernel(16) else { return };
    // Crash once, at the 4th op of some sequence: shrinking then finds that
    // nothing fails any more, and the run must still report what it saw.
    let mut k = FaultAt {
        inner,
        fault: Fault::Crash,
        at: 3,
        times: 1,
    };
    let mut model = PageModel::new(16);
    let config = RunConfig {
        seed: 3,
        cases: 50,
        ..RunConfig::default()
    };
    let report = run(&config, &mut [&mut model, &mut k], |_| {});
    let f = report.failure.expect("the crash was lost");
    assert_eq!(f.invariant, "backend-healthy", "{f}");
    assert!(f.message.contains("did not happen again"), "{f}");
}
