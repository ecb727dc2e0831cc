//! [`WorkerCommand`]: how to start a worker, as data the backend keeps to
//! start a fresh one after a failure. The local case runs `EXE __worker
//! PAGES` on this machine; any other program whose stdin and stdout speak
//! the worker protocol (see [`crate::worker`]) will do, such as a
//! `qemu-system-x86_64` that boots a guest running the worker on a serial
//! port (the harness builds that one: this crate knows nothing of VMs).
//!
//! A remote worker differs from a local one in three ways the recipe says:
//! its `ready` line may take much longer (a boot), each answer may take
//! longer (an emulated CPU), and what went wrong is in a log of its own
//! (the guest's kernel console), whose end every error message quotes.
//! Such a worker never sees the end of its input (a serial port has none):
//! the backend kills the child when it is dropped or replaced, and a
//! worker that exits says so on its channel with an `__exit N` line,
//! which the backend takes as a dead worker.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use uffd_vocab::Page;

use crate::DEFAULT_TIMEOUT;

/// How to start a worker: a program, its arguments, its timeouts, and
/// what to quote and say about where it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerCommand {
    /// The program to run; its stdin and stdout are the protocol.
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// How long the worker may take to answer `ready` after it is started.
    pub start_timeout: Duration,
    /// How long it may take to answer one request (the backend's default;
    /// [`crate::KernelBackend::set_timeout`] changes it).
    pub timeout: Duration,
    /// A log the child writes (a guest's kernel console): every error
    /// message about the worker quotes its end, and the backend removes it
    /// when dropped. With a log, the child's stderr is captured and quoted
    /// too; without, it is the caller's stderr.
    pub log: Option<PathBuf>,
    /// Where the worker runs, when not on this machine (`in a VM: IMAGE`).
    pub place: Option<String>,
    /// The release of the kernel the worker runs on, when not this
    /// machine's (`6.1.0-57-amd64`).
    pub release: Option<String>,
}

impl WorkerCommand {
    /// The local worker: `exe __worker PAGES` on this machine, which starts
    /// and answers within [`DEFAULT_TIMEOUT`]. `exe` is the uffd-check
    /// binary.
    pub fn local(exe: &Path, pages: Page) -> WorkerCommand {
        WorkerCommand {
            program: exe.to_path_buf(),
            args: vec!["__worker".into(), pages.to_string().into()],
            start_timeout: DEFAULT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            log: None,
            place: None,
            release: None,
        }
    }

    /// The kernel the worker runs on, for headers and messages:
    /// `Linux 6.18.44` here, `Linux 6.1.0-57-amd64 (in a VM: IMAGE)` for a
    /// recipe that says where it runs.
    pub fn kernel(&self) -> String {
        let release = self.release.clone().unwrap_or_else(crate::release);
        match &self.place {
            Some(place) => format!("Linux {release} ({place})"),
            None => format!("Linux {release}"),
        }
    }

    /// The worker, in messages: `the kernel worker EXE`, or `the kernel
    /// worker (in a VM: IMAGE)`.
    pub(crate) fn name(&self) -> String {
        match &self.place {
            Some(place) => format!("the kernel worker ({place})"),
            None => format!("the kernel worker {}", self.program.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_recipe_runs_the_worker_here() {
        let c = WorkerCommand::local(Path::new("/bin/uffd-check"), 16);
        assert_eq!(c.args, ["__worker", "16"]);
        assert_eq!(c.start_timeout, DEFAULT_TIMEOUT);
        assert!(c.kernel().starts_with("Linux "));
        assert!(!c.kernel().contains('('));
        assert_eq!(c.name(), "the kernel worker /bin/uffd-check");
        let vm = WorkerCommand {
            place: Some("in a VM: vmlinuz".into()),
            release: Some("6.1.0-57-amd64".into()),
            ..c
        };
        assert_eq!(vm.kernel(), "Linux 6.1.0-57-amd64 (in a VM: vmlinuz)");
        assert_eq!(vm.name(), "the kernel worker (in a VM: vmlinuz)");
    }
}
