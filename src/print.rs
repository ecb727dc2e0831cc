//! What the command line prints, as Strings (so tests can call them and
//! the command line prints them as they come): `check`'s and `explore`'s
//! tables, `replay`'s steps, and a failing case's file and the commands
//! that follow it.

use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

use uffd_model::Deviation;
use uffd_vocab::{result_name, Op};

use crate::check::{failure_json, step_json, Failure, Stats, StepView, GOALS};
use crate::draw::draw;
use crate::explore::{ExploreConfig, ExploreReport};
use crate::jobs::BackendTime;
use crate::setup::Setup;
use crate::trace::CaseKind;

/// The width of the names of the named rows (coverage goals, deviations):
/// with a count of up to 8 digits, a row is at most 80 columns.
const NAME_WIDTH: usize = 69;

/// `check`'s and `explore`'s tables: ops, results, merge cases, coverage
/// goals, known deviations (`off` for a rule in `rules_off`) and the
/// backends left out; starts with an empty line. Every line fits 80
/// columns.
pub fn stats(s: &Stats, rules_off: &[Deviation]) -> String {
    let mut out = String::from("\nops:\n");
    for name in Op::NAMES {
        let _ = writeln!(out, "  {name:<11} {:>10}", s.op_count(name));
    }
    out.push_str("results:\n");
    for (name, n) in s.results.iter() {
        let _ = writeln!(out, "  {name:<11} {n:>10}");
    }
    out.push_str("merge cases (implementation; the table is uffd_impl::MERGE_CASES):\n");
    for row in uffd_impl::MERGE_CASES {
        let n = s.merges[row.case as usize];
        let shape = format!("{:?}", row.shape);
        let _ = writeln!(
            out,
            "  case {}  {shape:<24} {:<36} {n:>8}",
            row.case, row.after
        );
    }
    out.push_str("coverage goals (the list is uffd_check::check::GOALS):\n");
    for g in GOALS {
        let _ = writeln!(out, "  {:<NAME_WIDTH$} {:>8}", g.name, g.count(s));
    }
    out.push_str(&wrap(
        "known deviations of the kernel from the contract (steps where the model's \
         rule changed the outcome; --strict turns them off):",
        "",
        "",
        80,
    ));
    for d in Deviation::ALL {
        let n = s.deviations.get(d.name()).copied().unwrap_or(0).to_string();
        let n = if rules_off.contains(&d) { "off" } else { &n };
        let _ = writeln!(out, "  {:<NAME_WIDTH$} {n:>8}", d.name());
    }
    if !s.unsupported.is_empty() {
        out.push_str(&wrap(
            "left out (a backend that does not support an op yet, for the rest of \
             the sequence):",
            "",
            "",
            80,
        ));
        for (what, n) in &s.unsupported {
            let _ = writeln!(out, "  {what:<24} {n:>8} sequences");
        }
    }
    out
}

/// A rate per second as a reader wants it: whole from 100 up, one decimal
/// below (`13411`, `5.3`).
pub fn per_sec(rate: f64) -> String {
    if rate >= 100.0 {
        format!("{rate:.0}")
    } else {
        format!("{rate:.1}")
    }
}

/// A duration as `m:ss`, or `h:mm:ss` from an hour up.
pub fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// `check`'s progress bar: a bar, the sequences done of all, their rate
/// ([`per_sec`]) and the time left ([`clock`]); at most 80 columns.
pub const PROGRESS: &str = "{bar:16} {pos}/{len} sequences, {rate}/s, eta {left}";

/// The style of `check`'s progress bar ([`PROGRESS`]).
pub fn progress_style() -> indicatif::ProgressStyle {
    use indicatif::ProgressState;
    indicatif::ProgressStyle::with_template(PROGRESS)
        .expect("the progress template is valid")
        .with_key("rate", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = w.write_str(&per_sec(s.per_sec()));
        })
        .with_key("left", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = w.write_str(&clock(s.eta()));
        })
}

/// `check`'s throughput: sequences and ops per second over `wall`, the
/// part of it spent `running` the backends and invariants, and each
/// backend's own time; starts with an empty line.
pub fn throughput(
    s: &Stats,
    wall: Duration,
    running: Duration,
    jobs: usize,
    backends: &[BackendTime],
) -> String {
    let secs = wall.as_secs_f64().max(1e-9);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nthroughput: {} sequences passed, {} ops in {secs:.2} s on {jobs} job(s)\n  \
         {} sequences/s, {} ops/s (generating, running and checking)\n  \
         {:.2} s of it running the backends and invariants (summed over the jobs)",
        s.sequences,
        s.steps,
        per_sec(s.sequences as f64 / secs),
        per_sec(s.steps as f64 / secs),
        running.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "time per backend (each step: op and layout; one step, one reset in {} timed):",
        crate::runner::TIMED_EVERY
    );
    for b in backends {
        let _ = writeln!(
            out,
            "  {:<7} {:>9.3} s  {:>12} steps/s",
            b.name,
            b.time.as_secs_f64(),
            per_sec(b.ops as f64 / b.time.as_secs_f64().max(1e-9))
        );
        for (job, costs) in b.costs.iter().enumerate() {
            let costs = if b.costs.len() > 1 {
                format!("job {}: {costs}", job + 1)
            } else {
                costs.clone()
            };
            out.push_str(&wrap(&costs, "    ", "      ", 80));
        }
    }
    out
}

/// `explore`'s summary: the bounds, the alphabet, the states by depth, the
/// transitions and their rate over `secs`, and whether the search stopped
/// early (a line of its own).
pub fn explore_summary(
    setup: &Setup,
    config: &ExploreConfig,
    r: &ExploreReport,
    secs: f64,
) -> String {
    let summary = format!(
        "explored {} pages to depth {} on {}: alphabet of {} ops, {} unique states \
         (by depth {:?}), {} transitions in {secs:.2} s ({}/s; {} states/s, \
         {} bytes a state)",
        config.pages,
        config.depth,
        setup.backends,
        r.alphabet,
        r.states(),
        r.states_by_depth,
        r.transitions,
        per_sec(r.transitions as f64 / secs.max(1e-9)),
        per_sec(r.states() as f64 / secs.max(1e-9)),
        r.bytes_per_state(),
    );
    let mut out = wrap(&summary, "", "  ", 80);
    if r.interrupted {
        out.push_str("INTERRUPTED: the last depth is incomplete\n");
    } else if r.truncated {
        let _ = writeln!(
            out,
            "TRUNCATED at --max-states {}: the last depth is incomplete",
            config.max_states
        );
    }
    out
}

/// The merge cases a step took, as `case 4 (ExistingTailMergeNext)`.
pub fn merge_names(merges: &[u8]) -> Vec<String> {
    merges
        .iter()
        .map(|&c| match uffd_impl::Shape::of_case(c) {
            Some(shape) => format!("case {c} ({shape:?})"),
            None => format!("case {c}"),
        })
        .collect()
}

/// `replay`'s first line: the file, the backends, the arena and the
/// deviation rules turned off.
pub fn replay_header(file: &Path, setup: &Setup, pages: u64) -> String {
    let rules = if setup.rules_from_profile {
        let on: Vec<&str> = Deviation::ALL
            .iter()
            .filter(|d| !setup.rules_off.contains(d))
            .map(|d| d.name())
            .collect();
        let on = if on.is_empty() {
            "none".to_string()
        } else {
            on.join(", ")
        };
        format!(", deviation rules by {}: {on}", setup.rules_off_by())
    } else if setup.rules_turned_off().is_empty() {
        String::new()
    } else {
        format!(", deviation rules off:{}", setup.strict_flags())
    };
    format!(
        "replaying {} on {} ({pages} pages{rules})\n",
        file.display(),
        setup.backends
    )
}

/// One step of `replay`: a JSON object on one line, or the op and its
/// result, the first backend's layout drawn, the merge cases each backend
/// took and the known deviations that changed the step.
pub fn replay_step(v: &StepView, json: bool) -> String {
    if json {
        return format!("{}\n", step_json(v));
    }
    let o = &v.outcomes[0];
    let mut out = format!(
        "\nstep {}: {}  -> {}\n",
        v.index + 1,
        v.op,
        result_name(&o.result)
    );
    out.push_str(&draw(&o.layout, v.pages, "  "));
    if !o.events.is_empty() {
        let _ = writeln!(out, "  events {}", uffd_vocab::events_text(&o.events));
    }
    for b in v.outcomes.iter().filter(|b| !b.report.merges.is_empty()) {
        let merges = merge_names(&b.report.merges).join(", ");
        let _ = writeln!(out, "  {} took {merges}", b.backend);
    }
    for d in v.known_deviations() {
        let _ = writeln!(
            out,
            "  known deviation {d}: the model says what the kernel does (--strict: the contract)"
        );
        if let Some(dev) = Deviation::from_name(d) {
            let _ = writeln!(out, "    contract: {}", dev.contract());
            let _ = writeln!(out, "    kernel:   {}", dev.kernel());
        }
    }
    out
}

/// `replay`'s last line when every invariant held on its `steps` steps,
/// `deviations` of them by a known deviation rule.
pub fn replay_passed(steps: usize, setup: &Setup, deviations: usize) -> String {
    let by_rule = if deviations > 0 {
        format!(" ({deviations} step(s) by a known deviation rule)")
    } else {
        String::new()
    };
    format!(
        "\nok: {steps} steps, every invariant held on {}{by_rule}\n",
        setup.backends
    )
}

/// `replay`'s failure: the JSON object on one line, or the failure in full.
pub fn replay_failed(f: &Failure, json: bool) -> String {
    if json {
        format!("{}\n", failure_json(f))
    } else {
        format!("\nFAILED:\n\n{f}\n")
    }
}

/// The file text of a failing case: how it was found (`found_by`, the
/// command), which invariant failed where, the live kernel's release if it
/// ran, and the trace.
pub fn failure_file(f: &Failure, setup: &Setup, found_by: &str) -> String {
    let mut text = format!(
        "# found by: {found_by}\n# invariant `{}` failed at step {}\n",
        f.invariant,
        f.step + 1
    );
    if let Some(k) = setup.kernel_note() {
        text.push_str(&format!("# {k}\n"));
    }
    text.push_str(&f.trace.to_text());
    text
}

/// What follows a failure written to `path`: where it is, and the commands
/// that replay it, make a C reproducer of it (built next to it) and keep it,
/// in the folder of `cases/` for its `kind` (the trace's `kind:` line),
/// saying what `cargo test` then checks.
pub fn failure_written(setup: &Setup, path: &Path, kind: CaseKind) -> String {
    const INDENT: &str = "           ";
    let (folder, checks) = match kind {
        CaseKind::Bug(_) => ("historic-bugs/", "fails with the bug put back"),
        CaseKind::Deviation(_) => ("deviations/", "fails under --strict"),
        _ => ("", ""),
    };
    let then = if checks.is_empty() {
        "(then it replays in `cargo test`)".to_string()
    } else {
        format!("(then `cargo test` replays it and, by its `kind:` line, checks that it {checks})")
    };
    format!(
        "written to {p}\nreplay it: {}\nC repro:   {}\nkeep it:   cp {p} cases/{folder}NAME.trace\n{}",
        setup.replay_command(path),
        Setup::repro_command(path, INDENT),
        wrap(&then, INDENT, INDENT, 80),
        p = path.display(),
    )
}

/// `text` wrapped at spaces to lines of at most `width` columns where its
/// words allow, the first line starting with `first`, the others with
/// `rest`; every line ends with a newline.
pub fn wrap(text: &str, first: &str, rest: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = first.to_string();
    let mut empty = true;
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        if !empty && line.chars().count() + 1 + word.chars().count() > width {
            out.push_str(&line);
            out.push('\n');
            line = rest.to_string();
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(&line);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_times_are_rounded_for_a_reader() {
        assert_eq!(per_sec(13411.3328), "13411");
        assert_eq!(per_sec(5.34), "5.3");
        assert_eq!(clock(Duration::from_secs(75)), "1:15");
        assert_eq!(clock(Duration::from_secs(3 * 3600 + 61)), "3:01:01");
    }

    /// The progress bar at its widest: every count at `u32::MAX` (the most
    /// `--cases` takes), ten million sequences a second, and the time left
    /// at that many seconds.
    #[test]
    fn the_progress_bar_fits_80_columns() {
        let most = u32::MAX.to_string();
        let line = PROGRESS
            .replace("{bar:16}", &"#".repeat(16))
            .replace("{pos}", &most)
            .replace("{len}", &most)
            .replace("{rate}", &per_sec(9_999_999.0))
            .replace("{left}", &clock(Duration::from_secs(u32::MAX.into())));
        assert!(!line.contains('{'), "{line}");
        assert!(line.len() <= 80, "{} columns: {line}", line.len());
    }

    #[test]
    fn wrap_breaks_at_spaces_within_the_width() {
        let text = "the kernel split: ops 0.173 s waiting for 4030 answers (the syscalls \
                    themselves 0.155 s in the worker), layouts 0.077 s waiting for 4030";
        let wrapped = wrap(text, "    ", "      ", 40);
        assert!(wrapped.lines().all(|l| l.len() <= 40), "{wrapped}");
        assert!(wrapped.starts_with("    the kernel") && wrapped.ends_with("4030\n"));
        assert_eq!(
            wrapped.split_whitespace().collect::<Vec<_>>().join(" "),
            text
        );
        assert_eq!(
            wrap("a-word-longer-than-the-width", "", "", 4),
            "a-word-longer-than-the-width\n"
        );
    }
}
