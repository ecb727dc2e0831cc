//! Demonstration target: the same differential check as `differential`, but
//! against the implementation with the May 2023 pgoff bug switched on
//! (`Bugs::unadjusted_pgoff`: userfaultfd_unregister/register pass
//! `vma.pgoff` instead of `vma.pgoff + (start - vma.start)`). It is meant to
//! crash: the crash shows that the fuzzer finds that bug, and its panic
//! message is the trace.

#![no_main]

use libfuzzer_sys::fuzz_target;
use uffd_impl::{Bugs, IntervalImpl};
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
    let mut imp = IntervalImpl::with_bugs(
        pages,
        Bugs {
            unadjusted_pgoff: true,
            ..Default::default()
        },
    );
    if let Err(failure) = uffd_check::check::run_ops(&mut [&mut model, &mut imp], pages, &ops) {
        panic!("{failure}");
    }
});
