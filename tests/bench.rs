//! `uffd-check bench`: its defaults are the short rows (the whole command
//! in seconds, not minutes), and its whole-arena table tells an op linear
//! in the pages it touches from a quadratic one.

use uffd_check::bench::{whole_arena, BenchConfig, ARENAS, LONG_ARENAS, LONG_VMAS, VMAS};

#[test]
fn the_defaults_leave_the_long_rows_to_long() {
    let short = BenchConfig::new(None, 200_000, false).unwrap();
    assert_eq!(short.vmas, VMAS);
    assert_eq!(short.arenas, ARENAS);
    assert!(!short.explore_long, "{short:?}");
    assert!(short.vmas.iter().all(|&n| n <= 10_000), "{short:?}");
    assert!(short.arenas[1] <= 32_768, "{short:?}");
    let long = BenchConfig::new(None, 200_000, true).unwrap();
    assert_eq!(long.vmas, LONG_VMAS);
    assert_eq!(long.arenas, LONG_ARENAS);
    assert!(long.explore_long, "{long:?}");
    // An explicit --vmas is what is run, with or without --long.
    let given = BenchConfig::new(Some(vec![100_000]), 1, false).unwrap();
    assert_eq!(given.vmas, [100_000]);
    for (vmas, ops, what) in [
        (None, 0, "--ops 0"),
        (None, 1_000_001, "--ops 1000001"),
        (Some(vec![1]), 1, "--vmas 1"),
        (Some(vec![2, 1_048_577]), 1, "--vmas 1048577"),
    ] {
        let e = BenchConfig::new(vmas, ops, false).unwrap_err();
        assert!(e.starts_with(what), "{e}");
    }
}

/// The ops the model still does in time quadratic in the arena: none (an
/// mprotect over many VMAs was, until it merged once instead of after each
/// VMA). A row that turns quadratic fails the test; one listed here that
/// turns linear fails it too, to be taken off the list.
const QUADRATIC_TODAY: [(&str, &str); 0] = [];

#[test]
fn whole_arena_ops_are_linear_in_their_pages() {
    // 16 times the pages: a quadratic op costs 16 times as much a page.
    let rows = whole_arena([1_024, 16_384]).unwrap();
    assert_eq!(rows.len(), 4);
    for row in rows {
        let known = QUADRATIC_TODAY.contains(&(row.op, row.backend));
        let linear = row.growth() < 4.0;
        assert!(
            linear != known,
            "{} on the {}: {:.1} ns a page at 1,024 pages, {:.1} at 16,384 ({:.1}x){}",
            row.op,
            row.backend,
            row.ns_per_page[0],
            row.ns_per_page[1],
            row.growth(),
            if known {
                ": linear now, take it out of QUADRATIC_TODAY"
            } else {
                ": not linear in the pages it touches"
            }
        );
    }
}

/// `bench`'s rows of issue 20's figures: the generation row refuses to
/// print when the fast generator's sequences are not proptest's, and the
/// explore row counts the states explore pins (tests/explore.rs) and the
/// bytes they took.
#[test]
fn the_checker_rows_measure_what_they_say() {
    let generation = uffd_check::bench_check::generation_table().unwrap();
    assert!(generation.contains("straight from the RNG"), "{generation}");
    let explore = uffd_check::bench_check::explore_table().unwrap();
    assert!(explore.contains(": 180585 states, "), "{explore}");
    let bytes: u64 = explore
        .split(", ")
        .find_map(|part| part.split_once(" bytes a state;").map(|(n, _)| n))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no bytes a state in {explore}"));
    // Most of the states are the last depth's, counted in 9 bytes a slot.
    assert!((9..=60).contains(&bytes), "{explore}");
}
