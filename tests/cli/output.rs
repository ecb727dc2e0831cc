//! What the command line prints: JSON, plain text when piped, 80
//! columns, the C program of `repro`.

use super::*;

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

#[test]
fn output_is_plain_text_when_piped() {
    let out_dir = out_dir("out");
    let (code, out, err) = check_300("3", &["--inject-bug=unadjusted-pgoff", "--out", &out_dir]);
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
        out.starts_with("/*\n * repro: made by `uffd-check repro`"),
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
    assert!(source.starts_with("/*\n * dev: made by"), "{source}");
}
