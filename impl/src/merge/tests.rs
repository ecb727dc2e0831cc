use super::*;
use crate::testing::fixed;

/// `commit` warns, and keeps what it took out, when a plan names a VMA
/// that is not there: the VMA to keep, or the one whose edge moves.
#[test]
fn a_plan_naming_a_missing_vma_warns() {
    let mut imp = IntervalImpl::new(16);
    let _ = crate::testing::run(&mut imp, "map 0 4 rw- anon");
    let vma = *imp.vmas.get(&0).unwrap();
    let vmg = Vmg::new_range("test", Some(vma), 4, 6, 4, vma.attrs);
    let plan = |keep: Page, adjust: Option<(Page, Page, Page, Page)>| Plan {
        shape: Shape::NewMergeLeft,
        keep,
        start: 0,
        end: 6,
        pgoff: 0,
        delete: vec![],
        adjust,
    };
    // The VMA to keep is missing.
    assert_eq!(imp.commit(&plan(8, None), &vmg), None);
    assert_eq!(imp.report.violations.len(), 1);
    // The one to adjust is missing: the kept VMA still grows.
    let kept = imp.commit(&plan(0, Some((10, 10, 12, 10))), &vmg);
    assert_eq!(kept.map(|v| (v.start, v.end)), Some((0, 6)));
    assert_eq!(
        imp.report.violations.len(),
        2,
        "{:?}",
        imp.report.violations
    );
    assert!(imp.report.violations[1]
        .1
        .contains("a VMA of the plan is missing"));
}

#[test]
fn the_case_table_is_one_to_one() {
    for (i, row) in MERGE_CASES.iter().enumerate() {
        assert_eq!(row.case as usize, i);
        assert_eq!(row.shape.case(), row.case);
        assert_eq!(Shape::of_case(row.case), Some(row.shape));
    }
    assert_eq!(Shape::of_case(9), None);
}

// Case 0: the range is strictly inside a VMA, no neighbour compatible.
#[test]
fn existing_range_strictly_inside_splits_in_three() {
    let (layout, merges) = fixed(
        "map 0 10 rw- anon
         protect 3 4 r--",
    );
    assert_eq!(
        layout,
        [
            "[0,3) rw- anon@0 account maywrite",
            "[3,7) r-- anon@3 maywrite",
            "[7,10) rw- anon@7 account maywrite",
        ]
    );
    assert_eq!(merges, [0]);
}

#[test]
fn new_range_next_to_incompatible_neighbours_is_inserted() {
    let (layout, merges) = fixed(
        "map 0 3 r-- anon
         map 7 3 r-- anon
         map 3 4 rw- anon",
    );
    assert_eq!(layout.len(), 3);
    assert_eq!(merges, [0]);
}

// Case 1.
#[test]
fn new_range_fills_gap_between_compatible_neighbours() {
    let (layout, merges) = fixed(
        "map 0 3 rw- anon
         map 7 3 rw- anon
         map 3 4 rw- anon",
    );
    assert_eq!(layout, ["[0,10) rw- anon@0 account maywrite"]);
    assert_eq!(merges, [1]);
}

// Case 2.
#[test]
fn new_range_after_compatible_prev_extends_prev() {
    let (layout, merges) = fixed(
        "map 0 3 rw- anon
         map 7 3 r-- anon
         map 3 4 rw- anon",
    );
    assert_eq!(
        layout,
        [
            "[0,7) rw- anon@0 account maywrite",
            "[7,10) r-- anon@7 maywrite",
        ]
    );
    assert_eq!(merges, [2]);
}

// Case 3.
#[test]
fn new_range_before_compatible_next_extends_next_down() {
    let (layout, merges) = fixed(
        "map 0 3 r-- anon
         map 7 3 rw- file=1@17
         map 3 4 rw- file=1@13",
    );
    assert_eq!(
        layout,
        [
            "[0,3) r-- anon@0 maywrite",
            "[3,10) rw- file=1@13 account maywrite",
        ]
    );
    assert_eq!(merges, [3]);
}

// Case 4.
#[test]
fn existing_range_at_tail_of_prev_moves_into_next() {
    let (layout, merges) = fixed(
        "map 0 10 rw- anon
         map 10 10 r-- anon
         protect 5 5 r--",
    );
    assert_eq!(
        layout,
        [
            "[0,5) rw- anon@0 account maywrite",
            "[5,20) r-- anon@5 maywrite",
        ]
    );
    assert_eq!(merges, [4]);
}

// Case 5.
#[test]
fn existing_range_at_head_of_curr_moves_into_prev() {
    let (layout, merges) = fixed(
        "map 0 10 r-- anon
         map 10 10 rw- anon
         protect 10 5 r--",
    );
    assert_eq!(
        layout,
        [
            "[0,15) r-- anon@0 maywrite",
            "[15,20) rw- anon@15 account maywrite",
        ]
    );
    assert_eq!(merges, [5]);
}

// Case 6.
#[test]
fn existing_range_wholly_curr_joins_prev_and_next() {
    let (layout, merges) = fixed(
        "map 0 5 r-- anon
         map 5 5 rw- anon
         map 10 5 r-- anon
         protect 5 5 r--",
    );
    assert_eq!(layout, ["[0,15) r-- anon@0 maywrite"]);
    assert_eq!(merges, [6]);
}

// Case 7.
#[test]
fn existing_range_wholly_curr_joins_prev() {
    let (layout, merges) = fixed(
        "map 0 5 r-- anon
         map 5 5 rw- anon
         map 10 5 rwx anon
         protect 5 5 r--",
    );
    assert_eq!(
        layout,
        [
            "[0,10) r-- anon@0 maywrite",
            "[10,15) rwx anon@10 account maywrite",
        ]
    );
    assert_eq!(merges, [7]);
}

// Case 8.
#[test]
fn existing_range_wholly_curr_joins_next() {
    let (layout, merges) = fixed(
        "map 0 5 rwx anon
         map 5 5 rw- anon
         map 10 5 r-- anon
         protect 5 5 r--",
    );
    assert_eq!(
        layout,
        [
            "[0,5) rwx anon@0 account maywrite",
            "[5,15) r-- anon@5 maywrite",
        ]
    );
    assert_eq!(merges, [8]);
}

#[test]
fn file_ranges_merge_only_when_pgoff_is_linear() {
    let (layout, merges) = fixed(
        "map 0 4 rw- file=0@0
         map 4 4 rw- file=0@5",
    );
    assert_eq!(layout.len(), 2);
    assert_eq!(merges, [0]);
    let (layout, merges) = fixed(
        "map 0 4 rw- file=0@0
         map 4 4 rw- file=0@4",
    );
    assert_eq!(layout, ["[0,8) rw- file=0@0 account maywrite"]);
    assert_eq!(merges, [2]);
}

#[test]
fn separate_shmem_mmaps_never_merge_but_their_pieces_do() {
    let (layout, _) = fixed(
        "map 0 4 rw- shmem
         map 4 4 rw- shmem",
    );
    assert_eq!(layout.len(), 2);
    let (layout, merges) = fixed(
        "map 0 8 rw- shmem
         protect 2 2 r--
         protect 2 2 rw-",
    );
    assert_eq!(layout, ["[0,8) rw- shmem#0@0 shared mayshare maywrite"]);
    assert_eq!(merges, [6]);
}
