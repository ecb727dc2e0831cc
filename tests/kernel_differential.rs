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
use uffd_check::kernel::KernelBackend;
use uffd_check::trace::Trace;
use uffd_impl::IntervalImpl;
use uffd_model::{Kind, Mode, Op, OpResult, Page, PageModel, Prot};

/// The kernel backend, or `None` where there is none (see
/// `common::kernel_available`).
fn kernel(pages: Page) -> Option<KernelBackend> {
    if !common::kernel_available() {
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

/// The kernel backend, with the worker made to crash or hang just before
/// op number `at` of a sequence, `times` times at most.
struct FaultAt {
    inner: KernelBackend,
    fault: uffd_check::kernel::Fault,
    at: usize,
    n: usize,
    times: u32,
}

impl uffd_model::Backend for FaultAt {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn pages(&self) -> Page {
        self.inner.pages()
    }
    fn map(&mut self, s: Page, l: Page, p: Prot, k: Kind) -> OpResult {
        self.apply(&Op::Map {
            start: s,
            len: l,
            prot: p,
            kind: k,
        })
    }
    fn unmap(&mut self, start: Page, len: Page) -> OpResult {
        self.apply(&Op::Unmap { start, len })
    }
    fn protect(&mut self, start: Page, len: Page, prot: Prot) -> OpResult {
        self.apply(&Op::Protect { start, len, prot })
    }
    fn register(&mut self, ctx: u8, start: Page, len: Page, mode: Mode) -> OpResult {
        self.apply(&Op::Register {
            ctx,
            start,
            len,
            mode,
        })
    }
    fn unregister(&mut self, ctx: u8, start: Page, len: Page) -> OpResult {
        self.apply(&Op::Unregister { ctx, start, len })
    }
    fn close(&mut self, ctx: u8) -> OpResult {
        self.apply(&Op::Close { ctx })
    }
    fn apply(&mut self, op: &Op) -> OpResult {
        if self.n == self.at && self.times > 0 {
            self.times -= 1;
            self.inner.inject_fault(self.fault);
        }
        self.n += 1;
        self.inner.apply(op)
    }
    fn layout(&mut self) -> uffd_model::Layout {
        self.inner.layout()
    }
    fn reset(&mut self) {
        self.n = 0;
        self.inner.reset()
    }
    fn take_report(&mut self) -> uffd_model::StepReport {
        self.inner.take_report()
    }
}

#[test]
fn a_crashing_or_hanging_worker_fails_the_sequence_that_hit_it_and_the_run_goes_on() {
    use uffd_check::kernel::Fault;
    let Some(inner) = kernel(8) else { return };
    let ops: Vec<Op> = [
        "map 0 8 rw- anon",
        "register 0 2 2 missing",
        "unregister 0 0 8",
    ]
    .iter()
    .map(|l| l.parse().unwrap())
    .collect();
    let mut k = FaultAt {
        inner,
        fault: Fault::Crash,
        at: 1,
        n: 0,
        times: u32::MAX,
    };
    k.inner.set_timeout(std::time::Duration::from_millis(500));
    for fault in [Fault::Crash, Fault::Hang] {
        k.fault = fault;
        k.at = 1;
        let mut model = PageModel::new(8);
        let f = run_ops(&mut [&mut model, &mut k], 8, &ops).unwrap_err();
        assert_eq!(f.invariant, "backend-healthy", "{f}");
        assert_eq!(f.step, 1, "{f}");
        let text = f.to_string();
        assert!(text.contains("kernel-worker"), "{text}");
        assert!(
            text.contains("map 0 8 rw- anon\n  register 0 2 2 missing"),
            "{text}"
        );
        // The backend has a fresh worker: the same sequence now passes.
        k.at = usize::MAX;
        run_ops(&mut [&mut model, &mut k], 8, &ops).unwrap();
    }
}

#[test]
fn a_one_off_worker_crash_in_a_random_run_is_reported_not_lost() {
    use uffd_check::kernel::Fault;
    use uffd_check::runner::{run, RunConfig};
    let Some(inner) = kernel(16) else { return };
    // Crash once, at the 4th op of some sequence: shrinking then finds that
    // nothing fails any more, and the run must still report what it saw.
    let mut k = FaultAt {
        inner,
        fault: Fault::Crash,
        at: 3,
        n: 0,
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
