//! The worker's state and its arena: [`Worker`] reserves the arena between
//! two guard pages at a fixed address, creates the memfds the ops map, and
//! `reset` empties it all again (arena, uffds, the memfds' page caches).
//!
//! Invariant: the guards are one page below and one above the arena, each a
//! private PROT_NONE mapping of the worker's own guard memfd, mapped once
//! here and never touched again. A VMA merges only with a VMA of the same
//! file, and no op of the language can map that file (ops map anonymous
//! memory, a new shmem object, or memfds 0 to MAX_FILES-1), so whatever an
//! op does to the arena, no arena VMA can ever merge with a guard, nor can
//! an op grow into one (it is mapped).

use std::ffi::c_void;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use rustix::fs::{MemfdFlags, OFlags};
use rustix::mm::{MapFlags, ProtFlags};

use uffd_vocab::{Event, Features, Page, PteState, MAX_CTX, MAX_FILES, MAX_PGOFF};

use super::monitor::Monitor;
use super::serve::Answer;
use crate::{sys, Fault};

/// The page size the worker assumes (and the vocabulary's pages are).
pub(super) const PAGE: u64 = 4096;
/// Where the worker tries to put its arena: far below the executable
/// (PIE loads at 2/3 of the address space), the heap and the mmap area,
/// so that the kernel's top-down search for free space, which takes the
/// highest gap that fits, never picks the arena's hole.
const ARENA_HINT: u64 = 0x1000_0000_0000;
/// The distance between two addresses tried for the arena, and the most an
/// arena (with its guards) may span.
const ARENA_STEP: u64 = 0x100_0000_0000;
/// The alignment of the arena's page 0 (a page table's span, 2 MiB).
const ARENA_ALIGN: u64 = 0x20_0000;

/// One of the memfds that `map` ops map: read-write, a read-only fd of the
/// same file (for shared read-only mappings), and its inode (how smaps
/// names it).
pub(super) struct MemFile {
    pub(super) rw: OwnedFd,
    pub(super) ro: OwnedFd,
    pub(super) ino: u64,
}

/// The worker process's own state: the arena it runs ops in, the memfds,
/// the open uffds, and what it needs to read the arena back.
pub(super) struct Worker {
    /// The address of arena page 0.
    pub(super) base: u64,
    pub(super) pages: Page,
    pub(super) files: Vec<MemFile>,
    /// The inode of the guards' memfd.
    pub(super) guard_ino: u64,
    /// Ops run since the last reset (for armed faults).
    pub(super) ops: u64,
    /// A fault armed for tests: what, and at which op since the last reset.
    pub(super) fault: Option<(Fault, u64)>,
    pub(super) uffd: [Option<(OwnedFd, Features)>; MAX_CTX as usize],
    pub(super) smaps: File,
    /// /proc/self/pagemap and /proc/self/mem, kept open for the page table
    /// entries (`pagemap.rs`).
    pub(super) pagemap: File,
    pub(super) mem: File,
    /// Reads the uffd events that a call waits for (see `events.rs`).
    pub(super) monitor: Monitor,
    /// The events the last op raised, in the order the kernel sent them.
    pub(super) events: Vec<Event>,
    /// The smaps text of the last `fork`'s child, read while the child
    /// still lived: the next `layout` answers with it (once).
    pub(super) child_smaps: Option<Vec<u8>>,
    /// The fork child's page table entries, read with its smaps.
    pub(super) child_ptes: Option<Result<Vec<(Page, PteState)>, String>>,
    /// The ctx that owns each registered VMA of the fork child (by its
    /// start address), asked of the kernel through the fds its FORK
    /// events gave while the child lived (`fork.rs`).
    pub(super) child_owners: Vec<(u64, Result<u8, String>)>,
    /// The PFN of the zero page ([`super::pagemap::zero_pfn`]).
    pub(super) zero_pfn: Option<u64>,
    /// Has a `copy` run since the last reset (so that a page may have a
    /// content tag that is not 0)?
    pub(super) copied: bool,
    /// The source pages of `copy` ([`super::tags`]), mapped on first use.
    pub(super) tags: Option<super::tags::TagBuffer>,
    /// The smaps text last read (kept to reuse its allocation).
    pub(super) buf: Vec<u8>,
    /// `\nHI-GUARD_HI `: the start of the upper guard's smaps entry.
    pub(super) guard_marker: String,
}

impl Worker {
    /// Reserves the arena of `pages` pages with its guards, creates the
    /// memfds, opens smaps and starts the uffd monitor.
    pub(super) fn new(pages: Page) -> Result<Worker, String> {
        // The arena's page 0 is aligned to ARENA_ALIGN (as it is in `repro`
        // programs): the kernel's fault-around window is aligned in
        // addresses, and the model's rule 13 counts it from page 0.
        let bytes = pages
            .checked_add(1)
            .and_then(|p| p.checked_mul(PAGE))
            .and_then(|b| b.checked_add(ARENA_ALIGN))
            .filter(|b| *b < ARENA_STEP)
            .ok_or_else(|| format!("arena of {pages} pages is too large"))?;
        let reserved = reserve(bytes)?;
        let at = reserved + ARENA_ALIGN - PAGE;
        // SAFETY: the head of our own reservation, before the lower guard.
        unsafe { rustix::mm::munmap(reserved as *mut c_void, (at - reserved) as usize) }.map_err(
            |e| {
                format!(
                    "munmap of the reservation's head: errno {}",
                    e.raw_os_error()
                )
            },
        )?;
        let guard_ino = map_guards(at, pages)?;
        let base = at + PAGE;
        if pages > 0 {
            // SAFETY: the arena's part of our own reservation.
            unsafe { rustix::mm::munmap(base as *mut c_void, (pages * PAGE) as usize) }
                .map_err(|e| format!("munmap of the arena: errno {}", e.raw_os_error()))?;
        }
        let files = create_files(pages)?;
        let pagemap = File::open("/proc/self/pagemap")
            .map_err(|e| format!("cannot open /proc/self/pagemap: {e}"))?;
        let mem =
            File::open("/proc/self/mem").map_err(|e| format!("cannot open /proc/self/mem: {e}"))?;
        let smaps = File::open("/proc/self/smaps")
            .map_err(|e| format!("cannot open /proc/self/smaps: {e}"))?;
        Ok(Worker {
            base,
            pages,
            files,
            guard_ino,
            ops: 0,
            fault: None,
            uffd: [const { None }; MAX_CTX as usize],
            smaps,
            pagemap,
            mem,
            child_smaps: None,
            child_ptes: None,
            child_owners: Vec::new(),
            zero_pfn: super::pagemap::zero_pfn()?,
            copied: false,
            tags: None,
            monitor: Monitor::start(base)?,
            events: Vec::new(),
            buf: Vec::with_capacity(1 << 20),
            guard_marker: format!(
                "\n{:x}-{:x} ",
                base + pages * PAGE,
                base + (pages + 1) * PAGE
            ),
        })
    }

    /// The address of arena page `page`.
    pub(super) fn addr(&self, page: Page) -> u64 {
        self.base + page * PAGE
    }

    /// The address just past the arena (where the upper guard starts).
    pub(super) fn end(&self) -> u64 {
        self.addr(self.pages)
    }

    /// The uffd of `ctx`, opened (and through UFFDIO_API) on first use.
    pub(super) fn uffd(&mut self, ctx: u8) -> Result<BorrowedFd<'_>, String> {
        let slot = &mut self.uffd[ctx as usize];
        if slot.is_none() {
            *slot = Some((
                sys::userfaultfd(sys::feature_bits(Features::NONE))?,
                Features::NONE,
            ));
        }
        Ok(slot.as_ref().expect("opened above").0.as_fd())
    }

    /// Back to a fresh worker's state, but for an armed fault, which stays
    /// armed (op numbers start again at 0): no uffd open, no fork child's
    /// smaps pending, the memfds' page caches empty, the arena empty.
    pub(super) fn reset(&mut self) -> Answer {
        self.ops = 0;
        self.child_smaps = None;
        self.child_ptes = None;
        self.child_owners.clear();
        self.events.clear();
        self.copied = false;
        for slot in &mut self.uffd {
            // Dropping the OwnedFd closes the uffd.
            *slot = None;
        }
        // Empty the memfds' page caches (a write put pages there, and
        // whether a page is cached decides MISSING and MINOR faults):
        // truncate to nothing and back.
        let size = (MAX_PGOFF + self.pages + 1) * PAGE;
        for (f, file) in self.files.iter().enumerate() {
            let r = rustix::fs::ftruncate(&file.rw, 0)
                .and_then(|()| rustix::fs::ftruncate(&file.rw, size));
            if let Err(e) = r {
                return Answer::Refused(format!(
                    "truncating memfd {f}: errno {}",
                    e.raw_os_error()
                ));
            }
        }
        if self.pages > 0 {
            // SAFETY: exactly the arena.
            let r = unsafe {
                rustix::mm::munmap(self.base as *mut c_void, (self.pages * PAGE) as usize)
            };
            if let Err(e) = r {
                return Answer::Refused(format!("munmap of the arena: errno {}", e.raw_os_error()));
            }
        }
        Answer::Ok
    }
}

/// Reserves `bytes` (the arena and its two guard pages) in one go, at a
/// fixed low address that nothing else uses; returns where.
fn reserve(bytes: u64) -> Result<u64, String> {
    for k in 0..64 {
        let want = ARENA_HINT + k * ARENA_STEP;
        // SAFETY: MAP_FIXED_NOREPLACE never replaces a mapping.
        let p = unsafe {
            rustix::mm::mmap_anonymous(
                want as *mut c_void,
                bytes as usize,
                ProtFlags::empty(),
                MapFlags::PRIVATE | MapFlags::NORESERVE | MapFlags::FIXED_NOREPLACE,
            )
        };
        let Ok(p) = p else { continue };
        if p as u64 != want {
            // An old kernel that took the address as a hint only.
            // SAFETY: p is the mapping just made.
            let _ = unsafe { rustix::mm::munmap(p, bytes as usize) };
            continue;
        }
        return Ok(want);
    }
    Err("cannot reserve the arena: no free address range found".into())
}

/// The guards: one page at each end of the reservation at `at` (an arena of
/// `pages` between them), a private PROT_NONE mapping of a memfd of their
/// own (see the module docs for why nothing in the arena can merge with
/// them). Returns the memfd's inode; the memfd itself is closed.
fn map_guards(at: u64, pages: Page) -> Result<u64, String> {
    let guard = rustix::fs::memfd_create("uffd-check-guard", MemfdFlags::CLOEXEC)
        .map_err(|e| format!("memfd_create of the guard: errno {}", e.raw_os_error()))?;
    rustix::fs::ftruncate(&guard, PAGE)
        .map_err(|e| format!("ftruncate of the guard: errno {}", e.raw_os_error()))?;
    let guard_ino = rustix::fs::fstat(&guard)
        .map_err(|e| format!("fstat of the guard: errno {}", e.raw_os_error()))?
        .st_ino;
    for g in [at, at + (pages + 1) * PAGE] {
        // SAFETY: MAP_FIXED over a page of our own reservation.
        unsafe {
            rustix::mm::mmap(
                g as *mut c_void,
                PAGE as usize,
                ProtFlags::empty(),
                MapFlags::PRIVATE | MapFlags::FIXED,
                &guard,
                0,
            )
        }
        .map_err(|e| format!("mmap of a guard: errno {}", e.raw_os_error()))?;
    }
    Ok(guard_ino)
}

/// The memfds 0 to MAX_FILES-1 that `map` ops map, each large enough for
/// any page offset an op can give plus an arena of `pages`.
fn create_files(pages: Page) -> Result<Vec<MemFile>, String> {
    let mut files = Vec::new();
    let size = (MAX_PGOFF + pages + 1) * PAGE;
    for f in 0..MAX_FILES {
        let rw = rustix::fs::memfd_create(format!("uffd-check-{f}"), MemfdFlags::CLOEXEC)
            .map_err(|e| format!("memfd_create: errno {}", e.raw_os_error()))?;
        rustix::fs::ftruncate(&rw, size)
            .map_err(|e| format!("ftruncate of memfd {f}: errno {}", e.raw_os_error()))?;
        let ro = rustix::fs::open(
            format!("/proc/self/fd/{}", rw.as_raw_fd()),
            OFlags::RDONLY | OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| format!("read-only open of memfd {f}: errno {}", e.raw_os_error()))?;
        let st = rustix::fs::fstat(&rw)
            .map_err(|e| format!("fstat of memfd {f}: errno {}", e.raw_os_error()))?;
        files.push(MemFile {
            rw,
            ro,
            ino: st.st_ino,
        });
    }
    Ok(files)
}
