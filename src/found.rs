//! A failing case found by `check` or `explore`: its directory checked
//! before the run, its trace written to a file before anything is
//! printed, then printed in full with the commands that replay it.

use std::path::Path;

use crate::check::Failure;
use crate::setup::Setup;

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
            let _ = write!(out, "{}", crate::print::failure_written(setup, path));
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
