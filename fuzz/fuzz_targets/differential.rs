//! Differential target: the page model and the interval implementation run
//! the same op sequence in lock step; every invariant of
//! `uffd_check::check::INVARIANTS` is checked after every step. A failure
//! panics with the `Failure`'s Display, which prints the trace to save under
//! `cases/`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use uffd_impl::IntervalImpl;
use uffd_model::{Op, Page, PageModel};

/// Longest sequence one input runs.
const MAX_OPS: usize = 64;

fuzz_target!(|input: (u8, Vec<Op>)| {
    let (size, ops) = input;
    let pages: Page = 1 + Page::from(size % 32);
    let ops: Vec<Op> = ops
        .into_iter()
        .take(MAX_OPS)
        .map(|op| op.fit(pages))
        .collect();
    let mut model = PageModel::new(pages);
    let mut imp = IntervalImpl::new(pages);
    if let Err(failure) = uffd_check::check::run_ops(&mut [&mut model, &mut imp], pages, &ops) {
        panic!("{failure}");
    }
});
