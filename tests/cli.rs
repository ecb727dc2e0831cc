//! The command line as a user meets it: `check`, `replay`, `--json`, and
//! the errors for bad input.

use std::process::Command;

fn uffd_check(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_uffd-check"))
        .args(args)
        .output()
        .expect("the binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn temp(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("uffd-check-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn check_passes_and_prints_the_tables() {
    let (code, out, err) = uffd_check(&["check", "--seed", "5", "--cases", "200"]);
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

#[test]
fn check_catches_an_injected_bug_and_writes_the_case() {
    let dir = std::env::temp_dir().join(format!("uffd-check-cli-fail-{}", std::process::id()));
    let (code, out, err) = uffd_check(&[
        "check",
        "--seed",
        "1",
        "--inject-bug",
        "unadjusted-pgoff",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("FAILED after shrinking"), "{out}");
    let written = dir.join("seed-1.trace");
    let trace = std::fs::read_to_string(&written).unwrap();
    assert!(trace.contains("--inject-bug unadjusted-pgoff"), "{trace}");
    // Replays as a failure with the bug, and passes without it.
    let p = written.to_str().unwrap();
    let (code, out, err) = uffd_check(&["replay", p, "--inject-bug", "unadjusted-pgoff"]);
    assert_eq!(code, 1, "{err}");
    assert!(out.contains("invariant `same-layout` failed"), "{out}");
    let (code, out, err) = uffd_check(&["replay", p]);
    assert_eq!(code, 0, "{out}\n{err}");
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
            "flags":["account","maywrite"],"uffd":["missing"],"ctx":0})
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
