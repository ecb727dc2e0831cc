//! Bad input and flags: located errors, limits, refused flag pairs, exit
//! codes, before any work.

use super::*;

/// `replay FILE` refuses the trace (exit code 2) and `says` why on
/// standard error.
fn assert_refused(file: &Path, says: &str) {
    let (code, out, err) = uffd_check(&["replay", file.to_str().unwrap()]);
    assert_eq!(code, 2, "{}: {out}\n{err}", file.display());
    assert!(err.contains(says), "{}: {err}", file.display());
}

#[test]
fn bad_input_gets_a_located_error_not_a_panic() {
    let malformed = temp(
        "bad.trace",
        "arena 16\nmap 0 16 rw- anon\nregister 0 0 8 mising\n",
    );
    assert_refused(&malformed, "bad.trace:3:16: MODE: bad mode \"mising\"");

    let outside = temp("outside.trace", "arena 16\nunmap 10 7\n");
    assert_refused(
        &outside,
        "outside.trace:2:1: range [10, 10+7) is outside the arena of 16 pages",
    );

    let (code, _, err) = uffd_check(&["replay", "/nonexistent/x.trace"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("/nonexistent/x.trace: cannot read the trace"),
        "{err}"
    );

    let (code, _, err) = uffd_check(&["check", "--pages", "0"]);
    assert_eq!(code, 2);
    assert!(err.contains("--pages 0"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn every_size_has_a_limit_checked_before_any_work() {
    for (args, says) in [
        (&["check", "--ops", "18446744073709551615"][..], "--ops"),
        (&["check", "--ops", "100000000"][..], "1 to 10000 ops"),
        (&["check", "--cases", "0"][..], "--cases 0"),
        (&["check", "--pages", "1048577"][..], "--pages 1048577"),
        (&["check", "--backends", "model,model"][..], "twice"),
        (&["explore", "--depth", "9"][..], "--depth 9"),
        (&["explore", "--pages", "9"][..], "--pages 9"),
        (&["explore", "--max-states", "0"][..], "--max-states 0"),
        (&["bench", "--ops", "1000001"][..], "--ops 1000001"),
        (&["bench", "--vmas", "1048577"][..], "--vmas 1048577"),
        (&["bench", "--vmas", "0"][..], "--vmas 0"),
        (&["bench", "--ops", "0"][..], "--ops 0"),
        (&["check", "--out", "/proc/nope"][..], "--out /proc/nope"),
    ] {
        let t = std::time::Instant::now();
        let (code, out, err) = uffd_check(args);
        assert_eq!(code, 2, "{args:?}: {out}\n{err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(
            !out.contains("sequences"),
            "{args:?} ran before refusing: {out}"
        );
        assert!(t.elapsed().as_secs() < 5, "{args:?} took {:?}", t.elapsed());
    }
}

/// Flags that would do nothing, or contradict each other, are refused
/// before any work, naming both; `--backend` and `--backends` are one flag.
#[test]
fn flags_that_would_do_nothing_are_refused() {
    let case = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/cases/historic-bugs/lkml-unregister-tail-merges-right.trace"
    );
    let out = out_dir("out");
    let o = &["--out", &out][..];
    let strict = &["--strict", "--strict-rule", "fork-keeps-parent-boundaries"][..];
    let kernel = &["--kernel", "--backends", "model,impl"][..];
    let (bug, model_kernel) = (
        &["--inject-bug", "stale-prev"][..],
        &["--backends", "model,kernel"][..],
    );
    for (args, names) in [
        ([&["check"], kernel, o].concat(), ["--kernel", "--backends"]),
        (
            [&["explore"], kernel, o].concat(),
            ["--kernel", "--backends"],
        ),
        (
            [&["check"], strict, o].concat(),
            ["--strict", "--strict-rule"],
        ),
        (
            [&["replay", case], strict].concat(),
            ["--strict", "--strict-rule"],
        ),
        (
            [&["check"], bug, model_kernel, o].concat(),
            ["--inject-bug", "--backends"],
        ),
        (
            [&["explore"], bug, model_kernel, o].concat(),
            ["--inject-bug", "--backends"],
        ),
        (
            [&["replay", case], bug, model_kernel].concat(),
            ["--inject-bug", "--backends"],
        ),
    ] {
        let (code, stdout, err) = uffd_check(&args);
        assert_eq!(code, 2, "{args:?}: {stdout}\n{err}");
        for name in names {
            assert!(err.contains(name), "{args:?} does not name {name}: {err}");
        }
        assert!(stdout.is_empty(), "{args:?} ran before refusing: {stdout}");
    }
    for args in [
        &[
            "check",
            "--backend",
            "model,impl",
            "--cases",
            "1",
            "--out",
            &out,
        ][..],
        &[
            "explore",
            "--backend",
            "model,impl",
            "--depth",
            "1",
            "--out",
            &out,
        ][..],
        &["replay", case, "--backends", "model,impl"][..],
    ] {
        let (code, stdout, err) = uffd_check(args);
        assert_eq!(code, 0, "{args:?}: {stdout}\n{err}");
    }
}

#[test]
fn traces_are_read_line_by_line_with_limits() {
    let (code, _, err) = uffd_check(&["replay", "/dev/zero"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("/dev/zero:1:1: the line is longer than 4096 bytes"),
        "{err}"
    );
    let bad = temp(
        "utf8.trace",
        "arena 4\nmap 0 1 rw- anon\nmap 1 1 rw\u{0}- anon\n",
    );
    let mut bytes = std::fs::read(&bad).unwrap();
    bytes.extend_from_slice(b"map 2 1 r\xff- anon\n");
    std::fs::write(&bad, bytes).unwrap();
    assert_refused(&bad, "utf8.trace:4:10: the line is not UTF-8");
    let p = temp("frob.trace", "frob 1\n");
    assert_refused(&p, "`arena PAGES`");
    // `-` is standard input.
    let (code, out, err) = uffd_check_stdin(&["replay", "-"], "arena 4\nmap 0 4 rw- anon\n");
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("replaying <stdin>") || out.contains("replaying -"),
        "{out}"
    );
}

#[test]
fn explore_stops_at_its_state_budget() {
    let (code, out, err) = uffd_check(&[
        "explore",
        "--pages",
        "6",
        "--depth",
        "5",
        "--max-states",
        "2000",
        "--out",
        &out_dir("out"),
    ]);
    assert_eq!(
        code, 3,
        "a truncated search has its own exit code: {out}\n{err}"
    );
    assert!(out.contains("TRUNCATED at --max-states 2000"), "{out}");
    let (_, help, _) = uffd_check(&["explore", "--help"]);
    assert!(
        help.contains("3    explore stopped at --max-states"),
        "{help}"
    );
}

/// `--kernel` and `--vm` are alternatives (the kernel runs here or in a
/// guest), and a guest needs an image.
#[test]
fn the_kernel_runs_here_or_in_a_guest_not_both() {
    let out = out_dir("out");
    let (code, _, err) = uffd_check(&["check", "--kernel", "--vm", "/nonexistent", "--out", &out]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--kernel") && err.contains("--vm"), "{err}");
    let (code, _, err) = uffd_check(&["check", "--vm-mem", "256", "--out", &out]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--vm"), "{err}");
}

/// `matrix` on this machine's kernel alone: every case of a folder agrees
/// under the kernel's profile, the table says so, and nothing is written
/// but the (empty) findings folder.
#[test]
fn the_matrix_on_this_kernel() {
    if std::env::var_os("UFFD_CHECK_NO_KERNEL").is_some() || uffd_kernel::available().is_err() {
        eprintln!("SKIPPED: no userfaultfd here");
        return;
    }
    let cases = concat!(env!("CARGO_MANIFEST_DIR"), "/cases/merge");
    let out = out_dir("matrix");
    let (code, table, err) = uffd_check(&[
        "matrix",
        "--kernels",
        "host",
        "--cases",
        cases,
        "--sequences",
        "20",
        "--out",
        &out,
    ]);
    assert_eq!(code, 0, "{table}\n{err}");
    assert!(
        table.contains(" 9/9 ") && table.contains("20/20"),
        "{table}"
    );
    assert!(err.contains("profile of"), "{err}");
    for line in table.lines() {
        assert!(line.chars().count() <= 80, "{line:?}");
    }
    let (code, _, err) = uffd_check(&["matrix", "--kernels", "", "--out", &out]);
    assert_eq!(code, 2, "{err}");
}
