//! What the command line prints, as Strings (so tests can call them and
//! the command line prints them as they come): `check`'s and `explore`'s
//! tables, `replay`'s steps, and a failing case's file and the commands
//! that follow it.

use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

use uffd_model::Deviation;
use uffd_vocab::{result_name, Backend, Op};

use crate::check::{failure_json, step_json, Failure, Stats, StepView, GOALS};
use crate::draw::draw;
use crate::explore::{ExploreConfig, ExploreReport};
use crate::runner::Timed;
use crate::setup::Setup;
use crate::trace::CaseKind;

/// `check`'s and `explore`'s tables: ops, results, merge cases, coverage
/// goals, known deviations (`off` for a rule in `rules_off`) and the
/// backends left out; starts with an empty line.
pub fn stats(s: &Stats, rules_off: &[Deviation]) -> String {
    let mut out = String::from("\nops:\n");
    for name in Op::NAMES {
        let _ = writeln!(
            out,
            "  {name:<11} {:>10}",
            s.ops.get(name).copied().unwrap_or(0)
        );
    }
    out.push_str("results:\n");
    for (name, n) in &s.results {
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
        let _ = writeln!(out, "  {:<72} {:>8}", g.name, g.count(s));
    }
    out.push_str(
        "known deviations of the kernel from the contract (steps where the model's rule \
         changed the outcome; --strict turns them off):\n",
    );
    for d in Deviation::ALL {
        if rules_off.contains(&d) {
            let _ = writeln!(out, "  {:<72} {:>8}", d.name(), "off");
        } else {
            let n = s.deviations.get(d.name()).copied().unwrap_or(0);
            let _ = writeln!(out, "  {:<72} {n:>8}", d.name());
        }
    }
    if !s.unsupported.is_empty() {
        out.push_str(
            "left out (a backend that does not support an op yet, for the rest of the sequence):\n",
        );
        for (what, n) in &s.unsupported {
            let _ = writeln!(out, "  {what:<24} {n:>8} sequences");
        }
    }
    out
}

/// `check`'s throughput: sequences and ops per second over `wall`, the
/// part of it spent `running` the backends and invariants, and each
/// backend's own time; starts with an empty line.
pub fn throughput<B: Backend>(
    s: &Stats,
    wall: Duration,
    running: Duration,
    backends: &[Timed<B>],
) -> String {
    let secs = wall.as_secs_f64().max(1e-9);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nthroughput: {} sequences passed, {} ops in {:.2} s: {:.0} sequences/s, {:.0} ops/s \
         (generating, running and checking; {:.2} s of it running the backends and invariants)",
        s.sequences,
        s.steps,
        secs,
        s.sequences as f64 / secs,
        s.steps as f64 / secs,
        running.as_secs_f64()
    );
    out.push_str("time per backend (each step: the op and reading its layout):\n");
    for b in backends {
        let _ = writeln!(
            out,
            "  {:<7} {:>9.3} s  {:>12.0} steps/s",
            b.inner.name(),
            b.time.as_secs_f64(),
            b.ops as f64 / b.time.as_secs_f64().max(1e-9)
        );
        if let Some(costs) = b.inner.costs() {
            let _ = writeln!(out, "    {costs}");
        }
    }
    out
}

/// `explore`'s summary line: the bounds, the alphabet, the states by
/// depth, the transitions and their rate over `secs`, and whether the
/// search stopped early.
pub fn explore_summary(
    setup: &Setup,
    config: &ExploreConfig,
    r: &ExploreReport,
    secs: f64,
) -> String {
    let stopped = if r.interrupted {
        " -- INTERRUPTED: the last depth is incomplete".to_string()
    } else if r.truncated {
        format!(
            " -- TRUNCATED at --max-states {}: the last depth is incomplete",
            config.max_states
        )
    } else {
        String::new()
    };
    format!(
        "explored {} pages to depth {} on {}: alphabet of {} ops, {} unique states \
         (by depth {:?}), {} transitions in {secs:.2} s ({:.0}/s){stopped}\n",
        config.pages,
        config.depth,
        setup.backends,
        r.alphabet,
        r.states(),
        r.states_by_depth,
        r.transitions,
        r.transitions as f64 / secs.max(1e-9),
    )
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
    let rules = if setup.rules_off.is_empty() {
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

/// The known deviations that changed a step: the first backend's that
/// reports any (one step, one count, however many backends know the rule).
pub fn known_deviations<'a>(v: &StepView<'a>) -> &'a [&'static str] {
    v.outcomes
        .iter()
        .find(|o| !o.report.deviations.is_empty())
        .map_or(&[], |o| &o.report.deviations)
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
    for b in v.outcomes.iter().filter(|b| !b.report.merges.is_empty()) {
        let merges = merge_names(&b.report.merges).join(", ");
        let _ = writeln!(out, "  {} took {merges}", b.backend);
    }
    for d in known_deviations(v) {
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
