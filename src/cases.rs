//! The one case runner: every trace under a directory (`cases/` and its
//! topic folders) on any list of backends, with every invariant and
//! `expect` line after every step. `cargo test` runs it on the model and the implementation, and on
//! the live kernel; a user can point it at a directory of their own.

use std::path::{Path, PathBuf};

use uffd_vocab::{Backend, Page};

use crate::backends::as_refs;
use crate::check::{run_trace, Stats};
use crate::trace::Trace;

/// What a directory of cases gave.
#[derive(Debug, Default)]
pub struct CasesReport {
    /// Every trace that ran and passed, with its stats.
    pub passed: Vec<(PathBuf, Stats)>,
    /// Every trace that did not load or failed, with why (the failure in
    /// full).
    pub failed: Vec<(PathBuf, String)>,
}

impl CasesReport {
    /// All failures, one block each, for an assertion message.
    pub fn failures_text(&self) -> String {
        self.failed
            .iter()
            .map(|(p, why)| format!("{}:\n{why}", p.display()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Every `*.trace` under `dir` and its folders, at any depth, sorted by
/// path (so the cases of one folder come together).
pub fn case_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    collect_traces(dir, &mut files)?;
    files.sort();
    Ok(files)
}

/// Adds every `*.trace` under `dir` to `files`, descending into folders.
fn collect_traces(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        if path.is_dir() {
            collect_traces(&path, files)?;
        } else if path.extension().is_some_and(|x| x == "trace") {
            files.push(path);
        }
    }
    Ok(())
}

/// Runs every trace of `files` on the backends `make(pages)` gives for its
/// arena (a maker may keep backends between calls of the same size).
pub fn run_cases(
    files: &[PathBuf],
    mut make: impl FnMut(Page) -> Result<Vec<Box<dyn Backend>>, String>,
) -> CasesReport {
    let mut report = CasesReport::default();
    for path in files {
        let trace = match Trace::load(path) {
            Ok(t) => t,
            Err(e) => {
                report.failed.push((path.clone(), e.to_string()));
                continue;
            }
        };
        let mut backends = match make(trace.pages) {
            Ok(b) => b,
            Err(e) => {
                report.failed.push((path.clone(), e));
                continue;
            }
        };
        match run_trace(&mut as_refs(&mut backends), &trace) {
            Ok(stats) => report.passed.push((path.clone(), stats)),
            Err(f) => report.failed.push((path.clone(), f.to_string())),
        }
    }
    report
}
