//! Bounded exhaustive exploration: every sequence of up to 3 ops of the
//! explore alphabet on a 4-page arena, model against implementation, and of
//! up to 2 ops against the live kernel too. The numbers of unique states are
//! pinned, so a change in the state space (a rule, the alphabet, the state
//! key) is noticed.

mod common;

use uffd_check::explore::{explore, ExploreConfig, ExploreReport};
use uffd_impl::{Bugs, IntervalImpl, Switch};
use uffd_model::PageModel;
use uffd_vocab::{Backend, Op};

/// Explores `pages` pages to `depth` on the model, the implementation with
/// `bugs`, and optionally the live kernel.
fn run(pages: u64, depth: usize, bugs: Bugs, kernel: bool) -> ExploreReport {
    let mut model = PageModel::new(pages);
    let mut imp = IntervalImpl::with_bugs(pages, bugs);
    let mut backends: Vec<&mut dyn Backend> = vec![&mut model, &mut imp];
    let mut k;
    if kernel {
        k = common::kernel_backend(pages);
        backends.push(&mut k);
    }
    let config = ExploreConfig {
        pages,
        depth,
        max_states: u64::MAX,
    };
    explore(config, &mut backends, |_, _, _| {})
}

#[test]
fn every_sequence_of_3_ops_on_4_pages_agrees() {
    let r = run(4, 3, Bugs::default(), false);
    assert!(r.failure.is_none(), "{}", r.failure.unwrap());
    assert_eq!(r.alphabet, 385);
    assert_eq!(r.states_by_depth, [1, 73, 4024, 176487]);
    assert_eq!(r.transitions, 385 * (1 + 73 + 4024));
    for (case, n) in r.stats.merges.iter().enumerate() {
        assert!(
            *n > 0,
            "merge case {case} never taken: {:?}",
            r.stats.merges
        );
    }
}

#[test]
fn every_sequence_of_2_ops_on_4_pages_agrees_with_the_kernel() {
    if !common::kernel_available() {
        return;
    }
    let r = run(4, 2, Bugs::default(), true);
    assert!(r.failure.is_none(), "{}", r.failure.unwrap());
    assert_eq!(r.states_by_depth, [1, 73, 4024]);
}

#[test]
fn the_shortest_pgoff_bug_is_three_ops() {
    let r = run(4, 3, Bugs::of(&[Switch::UnadjustedPgoff]), false);
    let f = r.failure.expect("the pgoff bug is within 3 ops");
    assert_eq!(f.invariant, "same-layout");
    // Breadth first: nothing shorter fails, so this is a shortest case.
    assert_eq!(f.trace.steps.len(), 3, "{f}");
    let ops: Vec<String> = f.trace.ops().iter().map(Op::to_string).collect();
    assert_eq!(
        ops,
        [
            "map 0 3 rw- anon",
            "register 0 0 2 missing",
            "unregister 0 1 1"
        ]
    );
}

#[test]
fn the_shortest_stale_prev_bug_is_two_ops() {
    let r = run(4, 3, Bugs::of(&[Switch::StalePrev]), false);
    let f = r.failure.expect("the stale prev bug is within 2 ops");
    assert_eq!(f.invariant, "impl-internal");
    let ops: Vec<String> = f.trace.ops().iter().map(Op::to_string).collect();
    assert_eq!(ops, ["map 0 2 rw- anon", "register 0 1 1 missing"]);
}

#[test]
fn the_disallowed_anon_merge_bug_needs_three_ops() {
    let r = run(4, 2, Bugs::of(&[Switch::DisallowedAnonMerge]), false);
    assert!(
        r.failure.is_none(),
        "shorter than 4 ops: {}",
        r.failure.unwrap()
    );
}

/// The long version, about four minutes: every sequence of up to 3 ops on 4
/// pages (1,285,104 transitions) replayed on the live kernel.
/// `cargo test --release --test explore -- --ignored`.
#[test]
#[ignore = "about four minutes; run with --ignored"]
fn every_sequence_of_3_ops_on_4_pages_agrees_with_the_kernel() {
    if !common::kernel_available() {
        return;
    }
    let r = run(4, 3, Bugs::default(), true);
    assert!(r.failure.is_none(), "{}", r.failure.unwrap());
    assert_eq!(r.states_by_depth, [1, 73, 4024, 176487]);
}

/// With the model stating the contract alone (`--strict`, every deviation
/// rule off), exploring finds the kernel's known deviations (here against
/// the implementation, which follows the kernel's code) as 3-op cases:
/// map, register (or mlock), then fork or mremap.
#[test]
fn the_contract_alone_finds_each_deviation_in_three_ops() {
    use uffd_model::Deviation;
    for d in [
        Deviation::ForkKeepsBoundaries,
        Deviation::MremapOldRegistration,
    ] {
        let mut off = Deviation::off_by_default();
        off.push(d);
        let mut model = PageModel::with_rules_off(4, &off);
        let mut imp = IntervalImpl::new(4);
        let config = ExploreConfig {
            pages: 4,
            depth: 3,
            max_states: u64::MAX,
        };
        let r = explore(config, &mut [&mut model, &mut imp], |_, _, _| {});
        let f = r
            .failure
            .unwrap_or_else(|| panic!("{} not found in 3 ops", d.name()));
        assert_eq!(f.trace.steps.len(), 3, "{f}");
        let last = f.trace.steps[2].op.name();
        let want = match d {
            Deviation::ForkKeepsBoundaries => "fork",
            _ => "mremap",
        };
        assert_eq!(last, want, "{}: {f}", d.name());
    }
}
