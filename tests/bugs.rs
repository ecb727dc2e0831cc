//! The harness catches the two May 2023 bugs at once: with each bug put back
//! into the implementation, a default random run fails and shrinks to the
//! minimal case the LKML thread argued about.

use uffd_check::runner::{run, RunConfig};
use uffd_impl::{Bugs, IntervalImpl};
use uffd_model::PageModel;

fn run_with(bugs: Bugs) -> uffd_check::check::Failure {
    let config = RunConfig {
        seed: 2023,
        cases: 2000,
        ops: 40,
        pages: 16,
    };
    let mut model = PageModel::new(config.pages);
    let mut imp = IntervalImpl::with_bugs(config.pages, bugs);
    let report = run(&config, &mut [&mut model, &mut imp], |_| {});
    report
        .failure
        .unwrap_or_else(|| panic!("{bugs:?} survived {} sequences", report.stats.sequences))
}

#[test]
fn catches_the_unadjusted_pgoff_bug() {
    let f = run_with(Bugs {
        unadjusted_pgoff: true,
        ..Bugs::default()
    });
    eprintln!("{f}");
    assert_eq!(f.invariant, "same-layout", "{f}");
    // map, register, then the register/unregister that should have merged.
    assert!(f.trace.steps.len() <= 3, "not shrunk far enough:\n{f}");
    let text = f.to_string();
    for part in [
        "trace (save it under cases/",
        "arena 16",
        "layout diff",
        "model returned ok",
    ] {
        assert!(
            text.contains(part),
            "failure output lacks {part:?}:\n{text}"
        );
    }
}

/// The pre-6.16 `is_mergeable_anon_vma` (879bca0a2c4f): found and shrunk to
/// 4 ops, the shortest (explore finds nothing in 3, below).
#[test]
fn catches_the_disallowed_anon_merge_bug() {
    let f = run_with(Bugs {
        disallowed_anon_merge: true,
        ..Bugs::default()
    });
    eprintln!("{f}");
    assert_eq!(f.invariant, "same-layout", "{f}");
    assert_eq!(f.trace.steps.len(), 4, "not shrunk to 4 ops:\n{f}");
    // A write fault (which made the anon_vma) before the merge it blocks.
    assert!(f.trace.ops().iter().any(|op| op.name() == "fault"), "{f}");
}

#[test]
fn catches_the_stale_prev_bug() {
    let f = run_with(Bugs {
        stale_prev: true,
        ..Bugs::default()
    });
    eprintln!("{f}");
    // The kernel's VM_WARN_ON in vma_merge fires, as it did for syzkaller.
    assert_eq!(f.invariant, "impl-internal", "{f}");
    // map, then register strictly inside the VMA.
    assert!(f.trace.steps.len() <= 2, "not shrunk far enough:\n{f}");
}
