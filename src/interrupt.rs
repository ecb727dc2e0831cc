//! Ctrl-C: the command line's SIGINT handler sets [`INTERRUPTED`], and a
//! run (`check`'s sequences, their shrinking, `explore`'s search) stops at
//! its next step and reports what it has.

use std::sync::atomic::{AtomicBool, Ordering};

/// Set (by the command line's SIGINT handler) to stop a run: the sequence
/// running ends, nothing more is generated, shrunk or explored, and the
/// run reports what it has, a failure seen included.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Has the run been asked to stop?
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}
