//! # uffd-kernel
//!
//! The live Linux kernel as a backend.
//!
//! [`KernelBackend`] drives a worker process (the harness binary run as
//! `uffd-check __worker PAGES`, see [`worker`]) that reserves an arena between
//! two guard mappings and runs every op there with the real syscalls: mmap
//! (MAP_FIXED), munmap, mprotect, madvise, mlock2, munlock, mremap, fork,
//! one-byte writes (`process_vm_writev` to itself), userfaultfd(2) with
//! UFFDIO_REGISTER and UFFDIO_UNREGISTER, close. The layout is read back
//! from /proc/self/smaps (a fork child's from /proc/CHILD/smaps).
//!
//! The uffd events (FORK, REMAP, REMOVE, UNMAP) that the uffds opened with
//! `event-…` features get while a call runs are read by a thread of the
//! worker (the call waits until each is read), in the kernel's order, and
//! come back with the op's result as the step's `events`.
//!
//! What it does not observe ([`UNOBSERVED`]): the page offset of private
//! anonymous memory (smaps prints 0 for it) and which anon_vma a private VMA
//! has. Its layouts say so, and the checker compares those fields as
//! unknown: the kernel is checked on their consequences (boundaries, `ac`).
//!
//! Confinement: the worker never maps outside its arena (it re-validates every
//! op) and its guards are private mappings of a memfd of their own, which no
//! op can map, so no arena VMA can ever merge with them (see the worker's `arena`). A
//! worker that dies or gives no answer within the timeout is killed, reported
//! as a `kernel-worker` violation, and replaced by a fresh one (with an empty
//! arena), so a run goes on.
//!
//! Ownership of registrations (the VMA's uffd ctx) is not in smaps; the worker
//! asks the kernel: UFFDIO_REGISTER of exactly one registered VMA with exactly
//! its uffd bits is EBUSY from every ctx but the owner, and a no-op from the
//! owner.
//!
//! Where the worker runs is a recipe ([`WorkerCommand`]): this machine's
//! kernel by default ([`KernelBackend::spawn`]), or any program whose stdin
//! and stdout speak the worker protocol ([`KernelBackend::start`]), such as
//! a qemu that boots another kernel with the worker on a serial port (the
//! harness's `vm` module makes that recipe). [`available`] and [`release`]
//! are about this machine; [`KernelBackend::kernel`] names the kernel the
//! worker actually runs on.
//!
//! The modules: `backend` ([`KernelBackend`]: requests, answers, timings,
//! respawns), `spawn` ([`WorkerCommand`], the recipe), `process` (the
//! worker process, its pipes, deadlines and log),
//! `host` (what this machine allows: userfaultfd, the arena's size),
//! [`worker`] (the worker itself), `sys` (the userfaultfd interfaces and
//! `process_vm_writev`, which neither rustix nor libc wraps).

mod backend;
mod host;
mod process;
mod spawn;
#[cfg(target_os = "linux")]
mod sys;
pub mod worker;

use std::time::Duration;

use uffd_vocab::Unobserved;

pub use backend::{KernelBackend, KernelTimings};
pub use host::{arena_fits, available, release};
pub use spawn::WorkerCommand;
pub use worker::worker_main;

/// The invariant name of a worker that died, hung or refused a request.
pub const WORKER_VIOLATION: &str = "kernel-worker";
/// The invariant name of an arena that cannot be read back faithfully
/// (an unclassifiable VMA, a VMA crossing the arena edge, a missing guard).
pub const LAYOUT_VIOLATION: &str = "kernel-layout";

/// How long a worker may take to answer one request by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// What the kernel backend does not observe: the page offset of private
/// anonymous memory (smaps prints 0) and anon_vmas (smaps has no field).
pub const UNOBSERVED: Unobserved = Unobserved(Unobserved::ANON_PGOFF.0 | Unobserved::ANON_VMA.0);

/// A fault to inject into the worker (tests of the backend's robustness).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The worker aborts instead of running the op.
    Crash,
    /// The worker sleeps forever instead of running the op.
    Hang,
    /// The worker runs the op, then aborts while reading the layout after it.
    CrashReadingLayout,
}

impl Fault {
    /// Every fault.
    const ALL: [Fault; 3] = [Fault::Crash, Fault::Hang, Fault::CrashReadingLayout];

    /// The fault's word in the worker's `__fault` request.
    fn word(self) -> &'static str {
        match self {
            Fault::Crash => "crash",
            Fault::Hang => "hang",
            Fault::CrashReadingLayout => "crash-reading-layout",
        }
    }

    /// The fault a `__fault` request names, if any.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    fn from_word(word: &str) -> Option<Fault> {
        Fault::ALL.into_iter().find(|f| f.word() == word)
    }
}
