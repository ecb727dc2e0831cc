//! What `check`, `explore` and `replay` find and write: the failure, the
//! files, the commands printed with it, the README's walk-through.

use super::*;

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

/// When the first sequence fails, the tables count its steps before the
/// failure: they are not all zeros.
#[test]
fn the_tables_count_the_first_failing_sequence() {
    let (code, out, err) = check_with_bug("8", "stale-prev", &out_dir("out"));
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("throughput: 0 sequences passed"), "{out}");
    let map = out
        .lines()
        .find(|l| l.trim_start().starts_with("map "))
        .unwrap();
    assert_ne!(map.split_whitespace().nth(1), Some("0"), "{out}");
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
    let rule = "--strict-rule=dontunmap-unlocks-the-whole-vma";
    let (code, out, err) = check_300("3", &[rule, "--out", &out_dir]);
    assert!(code == 0 || code == 1, "{out}\n{err}");
    let table = out
        .split("known deviations of the kernel")
        .nth(1)
        .unwrap_or_else(|| panic!("no deviation table:\n{out}"));
    assert!(
        table.contains("dontunmap-unlocks-the-whole-vma") && table.contains(" off"),
        "{table}"
    );
    let (code, out, _) = check_300("3", &["--out", &out_dir]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("fork-keeps-parent-boundaries"), "{out}");
}
