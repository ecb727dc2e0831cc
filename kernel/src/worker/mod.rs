//! The kernel worker: a child process (`uffd-check __worker PAGES`) that owns
//! an arena of its own address space and runs ops on it with real syscalls.
//!
//! Protocol (text lines; requests on stdin, answers on stdout):
//!
//! | request | answer |
//! |---|---|
//! | (start) | `ready BASE PAGES` (BASE in hex), or `fail TEXT` and exit |
//! | an op's trace line | `ok NS` or the errno name and `NS` (`EINVAL 2100`, `errno42 900`), NS the nanoseconds the op took in the worker, then the uffd events the op raised, if any, in the kernel's order (`ok 5100 0:unmap[4,8) 1:remove[2,3)`, [`uffd_vocab::Event`]'s text); or `refused TEXT`; or `unsupported TEXT` (an `open` with a feature this process cannot have: `event-fork` without CAP_SYS_PTRACE, `faults` with only UFFD_USER_MODE_ONLY uffds) |
//! | `layout` | `vma VMA` lines (VMA in the vocabulary's one text form), `error TEXT` lines, `ptes PTES` (the arena's page table entries from pagemap, in `expect ptes`'s form, `0-3:a 5:w` or `none`), `open CTXS` (the open uffd contexts, `0,2` or `none`), then `end READ_NS PARSE_NS` (reading smaps; parsing it and probing the owners) |
//! | `outside` | `/proc/self/maps` lines of everything outside the arena, then `end` |
//! | `reset` | `ok` or `refused TEXT` |
//! | `__fault KIND [N]` | none: arms a fault for tests, at op N since the last reset (default: the next op): `crash` or `hang` instead of running it, `crash-reading-layout` when the layout after it is read |
//!
//! Requests may be sent ahead: the worker answers them in order, so the
//! parent can send a whole sequence at once (`Backend::plan`) and read the
//! answers as it needs them.
//!
//! A `vma` line is the text form of [`uffd_vocab::Vma`] with arena pages:
//! `vma [0,5) rw- anon@? account maywrite anon_vma=? uffd=missing ctx=0`.
//! The page offset of private anonymous memory and the anon_vma of a
//! private VMA are `?` (smaps prints 0 for the one and has no field for the
//! other: the worker does not observe them); a shmem object is named by its
//! inode (`shmem#INODE`), which the parent renumbers.
//!
//! The worker's parts, one job each (all Linux-only):
//!
//! - `arena`: the worker's state; reserving the arena between its two
//!   guards (which no arena VMA can ever merge with), the memfds, `reset`;
//! - `serve`: [`worker_main`] and the request loop;
//! - `ops`: the syscalls of each op, confined to the arena;
//! - `fork`: the `fork` op, the child's smaps read while it lives;
//! - `monitor`: the thread that reads the uffd events while a call runs;
//! - `events`: the events an op raised, in arena pages, for its answer;
//! - `smaps`: reading /proc/self/smaps back into `vma` lines;
//! - `owner`: which open uffd owns a registered VMA, asked of the kernel.

#[cfg(target_os = "linux")]
mod arena;
#[cfg(target_os = "linux")]
mod events;
#[cfg(target_os = "linux")]
mod fork;
#[cfg(target_os = "linux")]
mod monitor;
#[cfg(target_os = "linux")]
mod ops;

#[cfg(target_os = "linux")]
mod owner;
mod pagemap;
#[cfg(target_os = "linux")]
mod serve;
#[cfg(target_os = "linux")]
mod smaps;
#[cfg(target_os = "linux")]
mod tags;

#[cfg(target_os = "linux")]
pub use serve::worker_main;

/// The worker's entry point: `uffd-check __worker PAGES`. Never returns.
/// Off Linux there is no userfaultfd: it answers `fail` and exits.
#[cfg(not(target_os = "linux"))]
pub fn worker_main() -> ! {
    println!(
        "fail userfaultfd is Linux-only; this is {}",
        std::env::consts::OS
    );
    std::process::exit(1)
}
