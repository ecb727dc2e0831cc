//! The differential properties: random op sequences on the page model and the
//! interval implementation, every invariant checked after every step.
//!
//! `UFFD_CHECK_CASES=N cargo test --release --test properties` runs N
//! sequences per property instead of the default.

mod common;

use proptest::prelude::*;
use uffd_check::check::run_ops;
use uffd_check::gen;
use uffd_impl::IntervalImpl;
use uffd_model::{Op, Page, PageModel};

fn agree(pages: Page, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut model = PageModel::new(pages);
    let mut imp = IntervalImpl::new(pages);
    run_ops(&mut [&mut model, &mut imp], pages, ops)
        .map(|_| ())
        .map_err(|f| TestCaseError::fail(format!("\n{f}")))
}

proptest! {
    #![proptest_config(common::config("properties", 5000))]

    /// A tiny arena: almost every op touches every VMA.
    #[test]
    fn model_and_impl_agree_on_6_pages(ops in gen::ops(6, 30)) {
        agree(6, &ops)?;
    }

    /// The default size of `uffd-check check`.
    #[test]
    fn model_and_impl_agree_on_16_pages(ops in gen::ops(16, 40)) {
        agree(16, &ops)?;
    }

    /// Longer sequences on a larger arena: many VMAs at once.
    #[test]
    fn model_and_impl_agree_on_64_pages(ops in gen::ops(64, 80)) {
        agree(64, &ops)?;
    }
}
