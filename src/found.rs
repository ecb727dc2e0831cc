//! A failing case found by `check` or `explore`: its directory checked
//! before the run, the known deviation behind it named, what it stands for
//! as a kept case (its `kind:` line) worked out, its trace written to a
//! file before anything is printed, then printed in full with the commands
//! that replay it and keep it.

use std::path::Path;

use uffd_impl::{Bugs, HistoricBug, IntervalImpl};
use uffd_model::{Deviation, PageModel};
use uffd_vocab::{Backend, Op, Page};

use crate::check::{run_ops, Failure};
use crate::print;
use crate::setup::Setup;
use crate::trace::CaseKind;

/// A failure as `check` and `explore` write and print it: the known
/// deviation behind it named ([`name_the_deviation`]), its trace's `kind:`
/// line set ([`case_kind`]).
pub fn prepared(mut f: Failure, setup: &Setup) -> Failure {
    name_the_deviation(&mut f, setup);
    name_the_bug(&mut f, setup);
    f.trace.kind = case_kind(&f, setup);
    f
}

/// What a kept copy of the failure `f` stands for, judged as `cargo test`
/// judges a case under `cases/` (tests/cases.rs), on the model and the
/// implementation, for the trace's `kind:` line:
/// - `kind: bug NAME…`: the bugs put back (`--inject-bug`) of which each,
///   alone, makes the two part by the invariant the bug is caught by;
/// - `kind: deviation NAME`: with deviation rules off (`--strict`,
///   `--strict-rule`), the contract alone and the implementation part at a
///   step where the model with its rules on reports the deviation NAME;
/// - otherwise a plain case, and a plain case too when the trace does not
///   pass on the model (rules on) and the implementation without bugs.
pub fn case_kind(f: &Failure, setup: &Setup) -> CaseKind {
    let (pages, ops) = (f.trace.pages, f.trace.ops());
    let parts = |model: &mut PageModel, imp: &mut IntervalImpl| {
        run_ops(&mut [model, imp], pages, &ops).err()
    };
    let fixed = || IntervalImpl::new(pages);
    if parts(&mut PageModel::new(pages), &mut fixed()).is_some() {
        return CaseKind::Plain;
    }
    let bugs: Vec<&str> = setup
        .bugs
        .iter()
        .map(String::as_str)
        .filter(|&name| {
            let caught_by = HistoricBug::named(name).map(|h| h.caught_by);
            let bug = Bugs::named(&[name]).unwrap_or_default();
            let mut imp = IntervalImpl::with_bugs(pages, bug);
            parts(&mut PageModel::new(pages), &mut imp).map(|g| g.invariant) == caught_by
        })
        .collect();
    if !bugs.is_empty() {
        let words: Vec<(usize, &str)> =
            std::iter::once("bug").chain(bugs).map(|w| (0, w)).collect();
        return CaseKind::parse(0, &words).unwrap_or_default();
    }
    if setup.rules_turned_off().is_empty() {
        return CaseKind::Plain;
    }
    match parts(&mut PageModel::with_strict(pages, true), &mut fixed()) {
        Some(g) if ["same-layout", "same-result"].contains(&g.invariant) => {
            deviations_at(pages, &ops[..=g.step])
                .first()
                .map_or(CaseKind::Plain, |&d| CaseKind::Deviation(d))
        }
        _ => CaseKind::Plain,
    }
}

/// The known deviations the model with its rules on reports at the last
/// of `ops`: the rules that changed that step.
fn deviations_at(pages: Page, ops: &[Op]) -> Vec<Deviation> {
    let mut model = PageModel::new(pages);
    let mut last = Vec::new();
    for op in ops {
        last = model
            .step(op)
            .map(|o| o.report.deviations)
            .unwrap_or_default();
    }
    last.iter()
        .filter_map(|n| Deviation::from_name(n))
        .collect()
}

/// With deviation rules off (`--strict`, `--strict-rule`): adds to `f`'s
/// message each rule turned off that would have changed its failing step
/// (the model with its rules on reports it), with what the contract says
/// and what the kernel does.
pub fn name_the_deviation(f: &mut Failure, setup: &Setup) {
    if setup.rules_turned_off().is_empty() {
        return;
    }
    let ops = f.trace.ops();
    for d in deviations_at(f.trace.pages, &ops[..=f.step]) {
        if setup.rules_off.contains(&d) {
            // The message is printed indented by 2: lines of 78 fit 80.
            let (first, rest) = ("  contract: ", "            ");
            let behind = format!(
                "behind it: known deviation {}, off ({})",
                d.name(),
                setup.rules_off_by()
            );
            f.message.push_str(&format!(
                "\n{}{}{}",
                print::wrap(&behind, "", "  ", 78),
                print::wrap(d.contract(), first, rest, 78),
                print::wrap(d.kernel(), "  kernel:   ", rest, 78).trim_end()
            ));
        }
    }
}

/// On a kernel whose profile lists historic bugs: adds to `f`'s message the
/// bug that explains it, if one does (the implementation with that bug put
/// back answers the failing step as the kernel did): a known bug of that
/// kernel, not a new finding.
pub fn name_the_bug(f: &mut Failure, setup: &Setup) {
    let Some(profile) = &setup.profile else {
        return;
    };
    if let Some(h) = crate::profile::explain(profile, f) {
        let kernels = h.kernels.map_or(String::new(), |k| format!(" ({k})"));
        let known = format!(
            "known: historic bug {} of Linux {}{kernels}: the implementation with \
             --inject-bug {} answers this step as the kernel did",
            h.name, profile.release, h.name
        );
        f.message.push_str(&format!(
            "\n{}",
            print::wrap(&known, "", "  ", 78).trim_end()
        ));
    }
}

/// Makes `dir` (if needed) and checks that a file can be written in it,
/// before a run whose finding would go there.
pub fn writable_dir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("--out {}: cannot create it: {e}", dir.display()))?;
    let probe = dir.join(format!(".uffd-check-probe-{}", std::process::id()));
    std::fs::write(&probe, b"")
        .map_err(|e| format!("--out {}: cannot write in it: {e}", dir.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Reports a failure: its trace is written to `path` at once (so a closed
/// or full standard output cannot lose it), then the failure is printed in
/// full with the command that replays it; if the file could not be
/// written, the printed trace is the copy and a warning says so.
pub fn report(f: &Failure, header: &str, path: &Path, setup: &Setup, found_by: &str) {
    use std::io::Write;
    let written = std::fs::write(path, crate::print::failure_file(f, setup, found_by));
    let mut out = std::io::stdout().lock();
    let printed = writeln!(out, "\n{header}\n\n{f}").is_ok();
    match written {
        Ok(()) => {
            let written = crate::print::failure_written(setup, path, f.trace.kind);
            let _ = write!(out, "{written}");
            if !printed {
                eprintln!(
                    "uffd-check: cannot write to standard output; the failing case is in {}",
                    path.display()
                );
            }
        }
        Err(e) if printed => eprintln!(
            "uffd-check: warning: cannot write {}: {e}; the trace is above",
            path.display()
        ),
        Err(e) => eprintln!(
            "uffd-check: cannot write {} ({e}) nor to standard output; the failing case:\n{}",
            path.display(),
            crate::print::failure_file(f, setup, found_by)
        ),
    }
}
