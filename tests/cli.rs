//! The command line as a user meets it: `check`, `replay`, `--json`, and
//! the errors for bad input.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh empty directory of its own under the system's temp dir, for one
/// command or one test: nothing a test runs writes into the checkout.
fn fresh_dir(what: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "uffd-check-cli-{}-{what}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What a command left in `dir`, its working directory, which it must
/// leave empty: a test says where it writes (`--out`), and writes only to a
/// temp dir.
fn assert_left_empty(dir: &Path, args: &[&str]) {
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        left.is_empty(),
        "{args:?} wrote {left:?} into its working directory"
    );
    let _ = std::fs::remove_dir(dir);
}

/// Runs the binary in an empty working directory of its own, which it must
/// leave empty; answers the exit code, standard output and standard error.
fn uffd_check(args: &[&str]) -> (i32, String, String) {
    let cwd = fresh_dir("cwd");
    let out = Command::new(env!("CARGO_BIN_EXE_uffd-check"))
        .args(args)
        .current_dir(&cwd)
        .output()
        .expect("the binary runs");
    assert_left_empty(&cwd, args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A file `name` holding `text`, in a temp dir.
fn temp(name: &str, text: &str) -> PathBuf {
    let p = fresh_dir("trace").join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// `--out DIR` for a fresh temp dir, which the caller keeps alive.
fn out_dir(what: &str) -> String {
    fresh_dir(what).to_str().unwrap().to_owned()
}

#[test]
fn check_passes_and_prints_the_tables() {
    let out_dir = out_dir("out");
    let (code, out, err) =
        uffd_check(&["check", "--seed", "5", "--cases", "200", "--out", &out_dir]);
    assert_eq!(code, 0, "{out}\n{err}");
    for part in [
        "ops:",
        "results:",
        "merge cases",
        "case 8",
        "throughput:",
        "no failures",
    ] {
        assert!(out.contains(part), "lacks {part:?}:\n{out}");
    }
}

/// `check --seed SEED --inject-bug BUG --out OUT`.
fn check_with_bug(seed: &str, bug: &str, out: &str) -> (i32, String, String) {
    uffd_check(&["check", "--seed", seed, "--inject-bug", bug, "--out", out])
}

#[test]
fn check_catches_an_injected_bug_and_writes_the_case() {
    let dir = fresh_dir("out");
    let (code, out, err) = check_with_bug("1", "unadjusted-pgoff", dir.to_str().unwrap());
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("FAILED after shrinking"), "{out}");
    let written = dir.join("seed-1.trace");
    let trace = std::fs::read_to_string(&written).unwrap();
    // The printed C-repro build line builds the program next to the trace,
    // not in the current directory.
    let d = dir.display();
    let build = format!("cc -O2 -Wall -o {d}/seed-1 {d}/seed-1.c && {d}/seed-1");
    assert!(
        out.lines().any(|l| l.trim() == build),
        "no {build:?}:\n{out}"
    );
    assert!(trace.contains("--inject-bug unadjusted-pgoff"), "{trace}");
    // Kept as the printed line says, it is a case of that bug.
    assert!(trace.contains("\nkind: bug unadjusted-pgoff\n"), "{trace}");
    let keep = format!(
        "keep it:   cp {} cases/historic-bugs/NAME.trace",
        written.display()
    );
    assert!(out.contains(&keep), "no {keep:?}:\n{out}");
    // Replays as a failure with the bug, and passes without it.
    let p = written.to_str().unwrap();
    let (code, out, err) = uffd_check(&["replay", p, "--inject-bug", "unadjusted-pgoff"]);
    assert_eq!(code, 1, "{err}");
    assert!(out.contains("invariant `same-layout` failed"), "{out}");
    let (code, out, err) = uffd_check(&["replay", p]);
    assert_eq!(code, 0, "{out}\n{err}");
}

/// A finding under `--strict` names the known deviation behind it, and its
/// written trace says so (`kind: deviation NAME`): kept as the printed line
/// says, under cases/deviations/, it is a case `cargo test` passes, which
/// replays with the model's rules on and fails under `--strict`.
#[test]
fn a_strict_finding_names_its_deviation_and_is_kept_as_one() {
    let dir = fresh_dir("out");
    let args = [
        "check", "--seed", "1", "--cases", "300", "--strict", "--out",
    ];
    let (code, out, err) = uffd_check(&[&args[..], &[dir.to_str().unwrap()]].concat());
    assert_eq!(code, 1, "{out}\n{err}");
    let written = dir.join("seed-1.trace");
    let trace = std::fs::read_to_string(&written).unwrap();
    let name = trace
        .lines()
        .find_map(|l| l.strip_prefix("kind: deviation "))
        .unwrap_or_else(|| panic!("no kind: deviation line:\n{trace}"));
    let behind = format!("behind it: known deviation {name}, off (--strict)");
    assert!(out.contains(&behind), "no {behind:?}:\n{out}");
    let keep = format!(
        "keep it:   cp {} cases/deviations/NAME.trace",
        written.display()
    );
    assert!(out.contains(&keep), "no {keep:?}:\n{out}");
    let p = written.to_str().unwrap();
    let (code, out, err) = uffd_check(&["replay", p]);
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, out, err) = uffd_check(&["replay", p, "--strict"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.contains(&behind),
        "replay --strict does not say {behind:?}:\n{out}"
    );
}

/// The README's walk-through ("A failing case, from the run to a test") is
/// what the tool prints: its command, run in an empty temp directory,
/// prints the lines of the README's block after `…`, from the failure to
/// the end, exactly (paths included: the finding goes to `failures/`
/// there).
#[test]
fn the_readme_walk_through_is_what_the_tool_prints() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("## A failing case, from the run to a test")
        .nth(1)
        .expect("the README has its walk-through");
    let block = section.split("```text\n").nth(1).unwrap();
    let block = &block[..block.find("\n```").unwrap()];
    let mut lines = block.lines();
    let command = lines.next().unwrap();
    let args = command
        .strip_prefix("$ cargo run --release -- ")
        .unwrap_or_else(|| panic!("not a command: {command:?}"));
    assert_eq!(lines.next(), Some("…"), "{block}");
    let want: Vec<&str> = lines.collect();
    let cwd = fresh_dir("readme");
    let out = Command::new(env!("CARGO_BIN_EXE_uffd-check"))
        .args(args.split_whitespace())
        .current_dir(&cwd)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&cwd);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let got: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("FAILED"))
        .collect();
    assert!(
        got == want,
        "the README's walk-through is not what `{args}` prints; it prints:\n{}",
        got.join("\n")
    );
}

/// Every line `check` and `explore` print fits 80 columns (the tables, the
/// failure), but the commands to paste, which a line break would break.
#[test]
fn output_fits_80_columns() {
    let out_dir = out_dir("out");
    let strict_rule = "--strict-rule=fork-keeps-parent-boundaries";
    let check = [
        "check",
        "--seed",
        "5",
        "--cases",
        "200",
        strict_rule,
        "--out",
        &out_dir,
    ];
    let truncated = [
        "explore",
        "--depth",
        "5",
        "--max-states",
        "2000",
        "--out",
        &out_dir,
    ];
    let (_, passing, _) = uffd_check(&check);
    let (_, failing, _) = check_with_bug("1", "unadjusted-pgoff", &out_dir);
    let (_, explored, _) = uffd_check(&truncated);
    let command = |l: &str| l.contains("uffd-check ") || l.contains("cc -O2") || l.contains(" cp ");
    for out in [passing, failing, explored] {
        assert!(out.contains("coverage goals"), "{out}");
        let wide: Vec<&str> = out
            .lines()
            .filter(|l| l.chars().count() > 80 && !command(l))
            .collect();
        assert!(
            wide.is_empty(),
            "wider than 80 columns:\n{}",
            wide.join("\n")
        );
    }
}

/// When the first sequence fails, the tables count its steps before the
/// failure: they are not all zeros.
#[test]
fn the_tables_count_the_first_failing_sequence() {
    let (code, out, err) = check_with_bug("1", "stale-prev", &out_dir("out"));
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("throughput: 0 sequences passed"), "{out}");
    let map = out
        .lines()
        .find(|l| l.trim_start().starts_with("map "))
        .unwrap();
    assert_ne!(map.split_whitespace().nth(1), Some("0"), "{out}");
}

#[test]
fn replay_json_is_one_object_per_step() {
    let p = temp(
        "lkml.trace",
        "arena 20\nmap 0 20 rw- anon\nregister 0 0 10 missing\nunregister 0 5 5\n",
    );
    let (code, out, err) = uffd_check(&["replay", p.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    let last = &lines[2];
    assert_eq!(last["step"], 3);
    assert_eq!(last["op"], "unregister 0 5 5");
    assert_eq!(last["result"], "ok");
    assert_eq!(
        last["layout"][0],
        serde_json::json!({"start":0,"end":5,"prot":"rw-","kind":"anon","object":null,"pgoff":0,
            "flags":["account","maywrite"],"anon_vma":null,"uffd":["missing"],"ctx":0})
    );
    assert_eq!(last["layout"][1]["start"], 5);
    assert_eq!(last["layout"][1]["ctx"], serde_json::Value::Null);
}

#[test]
fn bad_input_gets_a_located_error_not_a_panic() {
    let malformed = temp(
        "bad.trace",
        "arena 16\nmap 0 16 rw- anon\nregister 0 0 8 mising\n",
    );
    let (code, _, err) = uffd_check(&["replay", malformed.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        err.contains("bad.trace:3:16: MODE: bad mode \"mising\""),
        "{err}"
    );

    let outside = temp("outside.trace", "arena 16\nunmap 10 7\n");
    let (code, _, err) = uffd_check(&["replay", outside.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        err.contains("outside.trace:2:1: range [10, 10+7) is outside the arena of 16 pages"),
        "{err}"
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

/// Runs the binary with `stdin` as standard input, as [`uffd_check`] does.
fn uffd_check_stdin(args: &[&str], stdin: &str) -> (i32, String, String) {
    use std::io::Write;
    let cwd = fresh_dir("cwd");
    let mut child = Command::new(env!("CARGO_BIN_EXE_uffd-check"))
        .args(args)
        .current_dir(&cwd)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_left_empty(&cwd, args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
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
    let (code, _, err) = uffd_check(&["replay", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        err.contains("utf8.trace:4:10: the line is not UTF-8"),
        "{err}"
    );
    let p = temp("frob.trace", "frob 1\n");
    let (code, _, err) = uffd_check(&["replay", p.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("`arena PAGES`"), "{err}");
    // `-` is standard input.
    let (code, out, err) = uffd_check_stdin(&["replay", "-"], "arena 4\nmap 0 4 rw- anon\n");
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("replaying <stdin>") || out.contains("replaying -"),
        "{out}"
    );
}

#[test]
fn output_is_plain_text_when_piped() {
    let (code, out, err) = uffd_check(&[
        "check",
        "--seed",
        "3",
        "--cases",
        "300",
        "--inject-bug",
        "unadjusted-pgoff",
        "--out",
        &out_dir("out"),
    ]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("layout diff (< model, > impl):"), "{out}");
    assert!(!out.contains('\x1b') && !err.contains('\x1b'), "{out:?}");
    assert!(!out.contains("Diff <"), "{out}");
}

/// `repro -` names the program after its output file, or `repro`, never
/// `-`; the build line it prints builds the program next to the output.
#[test]
fn repro_of_standard_input_names_the_program() {
    let trace = "arena 4\nmap 0 4 rw- anon\n";
    let (code, out, err) = uffd_check_stdin(&["repro", "-"], trace);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(" * repro: a uffd-check trace")
            && out.contains("static const char NAME[] = \"repro\";"),
        "{out}"
    );
    let dir = fresh_dir("out");
    let c = dir.join("dev.c");
    let (code, _, err) = uffd_check_stdin(&["repro", "-", "-o", c.to_str().unwrap()], trace);
    assert_eq!(code, 0, "{err}");
    let d = dir.display();
    assert!(
        err.contains(&format!("cc -O2 -Wall -o {d}/dev {d}/dev.c && {d}/dev")),
        "{err}"
    );
    let source = std::fs::read_to_string(&c).unwrap();
    assert!(source.contains("NAME[] = \"dev\";"), "{source}");
}

#[test]
fn replay_json_carries_the_failure() {
    let p = temp(
        "pgoff.trace",
        "arena 12\nmap 0 12 rw- anon\nregister 0 0 8 missing\nunregister 0 1 7\n",
    );
    let (code, out, _) = uffd_check(&[
        "replay",
        p.to_str().unwrap(),
        "--json",
        "--inject-bug",
        "unadjusted-pgoff",
    ]);
    assert_eq!(code, 1);
    let last: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(last["step"], 3);
    assert_eq!(last["failure"]["invariant"], "same-layout");
    assert_eq!(last["outcomes"][1]["backend"], "impl");
    assert_eq!(last["outcomes"][1]["merges"], serde_json::json!([0]));
    let first: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(first["backends"], serde_json::json!(["model", "impl"]));
}

#[test]
fn explore_writes_its_failing_case() {
    let dir = fresh_dir("out");
    let (code, out, err) = uffd_check(&[
        "explore",
        "--pages",
        "3",
        "--depth",
        "3",
        "--inject-bug",
        "stale-prev",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}\n{err}");
    let written = dir.join("explore-3p-2ops.trace");
    let text = std::fs::read_to_string(&written).unwrap_or_else(|e| panic!("{e}\n{out}"));
    assert!(
        text.contains("register 0 1 1 missing") || text.contains("register 0"),
        "{text}"
    );
    assert!(out.contains("uffd-check replay"), "{out}");
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

/// A known deviation, as a user meets it: `replay` says at which step the
/// model applied which rule, with what the contract says and what the
/// kernel does; `--strict` turns the rule off and the same trace fails;
/// `check` prints each rule's count, and `off` under `--strict-rule`.
#[test]
fn a_known_deviation_is_named_counted_and_strict_turns_it_off() {
    let case = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/cases/deviations/deviation-fork-keeps-the-parents-boundaries.trace"
    );
    let (code, out, err) = uffd_check(&["replay", case]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("known deviation fork-keeps-parent-boundaries")
            && out.contains("contract: the child has the parent's memory")
            && out.contains("kernel:   dup_mmap copies VMA by VMA"),
        "{out}"
    );
    let (code, out, _) = uffd_check(&["replay", case, "--strict"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAILED") && out.contains("--strict"), "{out}");
    let out_dir = out_dir("out");
    let (code, out, err) = uffd_check(&[
        "check",
        "--seed",
        "3",
        "--cases",
        "300",
        "--strict-rule",
        "dontunmap-unlocks-the-whole-vma",
        "--out",
        &out_dir,
    ]);
    assert!(code == 0 || code == 1, "{out}\n{err}");
    let table = out
        .split("known deviations of the kernel")
        .nth(1)
        .unwrap_or_else(|| panic!("no deviation table:\n{out}"));
    assert!(
        table.contains("dontunmap-unlocks-the-whole-vma") && table.contains(" off"),
        "{table}"
    );
    let (code, out, _) = uffd_check(&["check", "--seed", "3", "--cases", "300", "--out", &out_dir]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("fork-keeps-parent-boundaries"), "{out}");
}
