//! The kernel worker: a child process (`uffd-check __worker PAGES`) that owns
//! an arena of its own address space and runs ops on it with real syscalls.
//!
//! Protocol (text lines; requests on stdin, answers on stdout):
//!
//! | request | answer |
//! |---|---|
//! | (start) | `ready BASE PAGES` (BASE in hex), or `fail TEXT` and exit |
//! | an op's trace line | `ok NS` or the errno name and `NS` (`EINVAL 2100`, `errno42 900`), NS the nanoseconds the op took in the worker; or `refused TEXT` |
//! | `layout` | `vma VMA` lines (VMA in the vocabulary's one text form), `error TEXT` lines, `open CTXS` (the open uffd contexts, `0,2` or `none`), then `end READ_NS PROBE_NS` |
//! | `outside` | `/proc/self/maps` lines of everything outside the arena, then `end` |
//! | `reset` | `ok` or `refused TEXT` |
//! | `__fault KIND [N]` | none: arms a fault (`crash`, `hang`, `crash-reading-layout`) for op N since the last reset (default: the next op), for tests |
//!
//! Requests may be sent ahead: the worker answers them in order, so the
//! parent can send a whole sequence at once (`Backend::plan`) and read the
//! answers as it needs them.
//!
//! A `vma` line is the text form of [`uffd_vocab::Vma`] with arena pages:
//! `vma [0,5) rw- anon@? account maywrite uffd=missing ctx=0`. The page
//! offset of private anonymous memory is `?` (smaps prints 0 for it: the
//! worker does not observe it); a shmem object is named by its inode
//! (`shmem#INODE`), which the parent renumbers.
//!
//! The guards: one page below and one above the arena, each a private
//! PROT_NONE mapping of the worker's own guard memfd. A VMA merges only
//! with a VMA of the same file, and no op of the language can map that
//! file (ops map anonymous memory, a new shmem object, or memfds 0 to
//! MAX_FILES-1), so whatever an op does to the arena, no arena VMA can ever
//! merge with a guard, nor can an op grow into one (it is mapped).

#[cfg(target_os = "linux")]
pub use linux::worker_main;

#[cfg(not(target_os = "linux"))]
pub fn worker_main() -> ! {
    println!(
        "fail userfaultfd is Linux-only; this is {}",
        std::env::consts::OS
    );
    std::process::exit(1)
}

#[cfg(target_os = "linux")]
mod linux {
    use std::ffi::c_void;
    use std::fs::File;
    use std::io::{BufRead, Read, Seek, SeekFrom, Write};
    use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
    use std::time::Instant;

    use rustix::fs::{MemfdFlags, OFlags};
    use rustix::io::Errno;
    use rustix::mm::{MapFlags, MprotectFlags, MremapFlags, ProtFlags};

    use uffd_vocab::{
        Advice, Backing, Contexts, Features, Kind, Mode, Op, Page, Prot, Remap, SmapsFlags,
        Unobserved, VmFlags, Vma, MAX_CTX, MAX_FILES, MAX_PGOFF,
    };

    use crate::sys;

    const PAGE: u64 = 4096;
    /// What smaps does not show: see `crate::UNOBSERVED`.
    const UNOBSERVED: Unobserved = crate::UNOBSERVED;
    /// Where the worker tries to put its arena: far below the executable
    /// (PIE loads at 2/3 of the address space), the heap and the mmap area,
    /// so that the kernel's top-down search for free space, which takes the
    /// highest gap that fits, never picks the arena's hole.
    const ARENA_HINT: u64 = 0x1000_0000_0000;
    const ARENA_STEP: u64 = 0x100_0000_0000;

    struct MemFile {
        rw: OwnedFd,
        ro: OwnedFd,
        ino: u64,
    }

    /// A fault armed for tests: what, and at which op since the last reset.
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Fault {
        Crash,
        Hang,
        CrashReadingLayout,
    }

    struct Worker {
        base: u64,
        pages: Page,
        files: Vec<MemFile>,
        /// The inode of the guards' memfd.
        guard_ino: u64,
        /// Ops run since the last reset (for armed faults).
        ops: u64,
        fault: Option<(Fault, u64)>,
        uffd: [Option<(OwnedFd, Features)>; MAX_CTX as usize],
        smaps: File,
        /// Reads the uffd events that an mremap waits for.
        monitor: sys::Monitor,
        /// The smaps text of the last `fork`'s child, read while the child
        /// still lived: the next `layout` answers with it (once).
        child_smaps: Option<Vec<u8>>,
        buf: Vec<u8>,
        /// `\nHI-GUARD_HI `: the start of the upper guard's smaps entry.
        guard_marker: String,
    }

    enum Answer {
        Ok,
        Errno(i32),
        Refused(String),
    }

    impl Worker {
        fn new(pages: Page) -> Result<Worker, String> {
            let bytes = pages
                .checked_add(2)
                .and_then(|p| p.checked_mul(PAGE))
                .filter(|b| *b < ARENA_STEP)
                .ok_or_else(|| format!("arena of {pages} pages is too large"))?;
            // Reserve the arena and its two guard pages in one go, at a fixed
            // low address that nothing else uses.
            let mut at = None;
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
                at = Some(want);
                break;
            }
            let at = at.ok_or("cannot reserve the arena: no free address range found")?;
            // The guards: one page at each end of the reservation, a private
            // PROT_NONE mapping of a memfd of their own (see the module docs
            // for why nothing in the arena can merge with them).
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
            drop(guard);
            let base = at + PAGE;
            if pages > 0 {
                // SAFETY: the arena's part of our own reservation.
                unsafe { rustix::mm::munmap(base as *mut c_void, (pages * PAGE) as usize) }
                    .map_err(|e| format!("munmap of the arena: errno {}", e.raw_os_error()))?;
            }
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
                child_smaps: None,
                monitor: sys::Monitor::start()?,
                buf: Vec::with_capacity(1 << 20),
                guard_marker: format!(
                    "\n{:x}-{:x} ",
                    base + pages * PAGE,
                    base + (pages + 1) * PAGE
                ),
            })
        }

        fn addr(&self, page: Page) -> u64 {
            self.base + page * PAGE
        }

        fn end(&self) -> u64 {
            self.addr(self.pages)
        }

        /// The uffd of `ctx`, opened (and through UFFDIO_API) on first use.
        fn uffd(&mut self, ctx: u8) -> Result<BorrowedFd<'_>, String> {
            let slot = &mut self.uffd[ctx as usize];
            if slot.is_none() {
                *slot = Some((sys::userfaultfd(0)?, Features::None));
            }
            Ok(slot.as_ref().expect("opened above").0.as_fd())
        }

        /// mremap, with a monitor thread reading the REMAP events of the
        /// event-remap contexts while it runs (the kernel does not return
        /// before they are read). `Err`: a refusal (an address it should
        /// never have returned).
        fn mremap(
            &self,
            start: Page,
            len: Page,
            newlen: Page,
            to: Remap,
        ) -> Result<Result<(), Errno>, String> {
            let (old, old_size) = (self.addr(start) as *mut c_void, (len * PAGE) as usize);
            let new_size = (newlen * PAGE) as usize;
            let call = || {
                // SAFETY: the source range and the target (grown range or
                // destination) lie inside the arena: `validate` checked
                // both, so nothing outside it is moved, grown into or
                // unmapped.
                let (r, want) = unsafe {
                    let flags = match to {
                        Remap::InPlace => MremapFlags::empty(),
                        Remap::Fixed(_) => MremapFlags::MAYMOVE,
                        Remap::DontUnmap(_) => MremapFlags::MAYMOVE | MremapFlags::DONTUNMAP,
                    };
                    match to.dst() {
                        None => (rustix::mm::mremap(old, old_size, new_size, flags), start),
                        Some(dst) => {
                            let new = self.addr(dst) as *mut c_void;
                            let r = rustix::mm::mremap_fixed(old, old_size, new_size, flags, new);
                            (r, dst)
                        }
                    }
                };
                match r {
                    Ok(p) if p as u64 == self.addr(want) => Ok(Ok(())),
                    // Never with these flags; a refusal, as for map.
                    Ok(p) => Err(format!("mremap returned {p:p}, not {:#x}", self.addr(want))),
                    Err(e) => Ok(Err(e)),
                }
            };
            let monitored: Vec<BorrowedFd<'_>> = self
                .uffd
                .iter()
                .flatten()
                .filter(|(_, f)| *f == Features::EventRemap)
                .map(|(fd, _)| fd.as_fd())
                .collect();
            if monitored.is_empty() {
                call()
            } else {
                self.monitor.watching(&monitored, call)
            }
        }

        /// fork(2): the child waits on a pipe while the worker reads its
        /// smaps, then is killed and reaped, all before the op answers.
        fn fork(&mut self) -> Result<(), String> {
            let (r, w) = rustix::pipe::pipe().map_err(|e| format!("pipe: {e}"))?;
            // SAFETY: the child calls only async-signal-safe functions
            // (prctl, read, _exit), as it must in a process with threads
            // (the uffd monitor, which waits in poll).
            let pid = unsafe { libc::fork() };
            if pid < 0 {
                return Err(format!("fork: {}", std::io::Error::last_os_error()));
            }
            if pid == 0 {
                // SAFETY: see above.
                unsafe {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    // Only the worker's end may keep the pipe open, so that
                    // its close ends the read below.
                    libc::close(w.as_raw_fd());
                    let mut b = [0u8; 1];
                    libc::read(r.as_raw_fd(), b.as_mut_ptr() as *mut c_void, 1);
                    libc::_exit(0);
                }
            }
            drop(r);
            let text = std::fs::read(format!("/proc/{pid}/smaps"));
            // The child's read returns and it exits; killed anyway, in case
            // it has not yet, then reaped.
            drop(w);
            // SAFETY: our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
            let text = text.map_err(|e| format!("reading the fork child's smaps: {e}"))?;
            self.child_smaps = Some(text);
            Ok(())
        }

        fn op(&mut self, op: &Op) -> Answer {
            // Ops arrive validated; check again, never touch outside the arena.
            if let Err(e) = op.validate(self.pages) {
                return Answer::Refused(e);
            }
            let r = match *op {
                Op::Map {
                    start,
                    len,
                    prot,
                    kind,
                } => {
                    let addr = self.addr(start) as *mut c_void;
                    let size = (len * PAGE) as usize;
                    let prot = ProtFlags::from_bits_retain(prot.bits().into());
                    // Decide the sharing flags and the fd first, then one call.
                    let files = &self.files;
                    let (flags, fd, pgoff) = match kind {
                        Kind::Anon => (MapFlags::PRIVATE, None, 0),
                        Kind::AnonNoreserve => (MapFlags::PRIVATE | MapFlags::NORESERVE, None, 0),
                        Kind::Shmem => (MapFlags::SHARED, None, 0),
                        Kind::File { file, pgoff } => {
                            (MapFlags::PRIVATE, Some(&files[file as usize].rw), pgoff)
                        }
                        Kind::SharedFile { file, pgoff } => {
                            (MapFlags::SHARED, Some(&files[file as usize].rw), pgoff)
                        }
                        Kind::SharedRoFile { file, pgoff } => {
                            (MapFlags::SHARED, Some(&files[file as usize].ro), pgoff)
                        }
                    };
                    let flags = flags | MapFlags::FIXED;
                    // SAFETY: MAP_FIXED inside the arena, which holds nothing
                    // but the mappings of earlier ops.
                    let r = unsafe {
                        match fd {
                            None => rustix::mm::mmap_anonymous(addr, size, prot, flags),
                            Some(fd) => rustix::mm::mmap(addr, size, prot, flags, fd, pgoff * PAGE),
                        }
                    };
                    match r {
                        Err(e) => Err(e),
                        Ok(p) if p != addr => {
                            return Answer::Refused(format!(
                                "mmap(MAP_FIXED) returned {p:p}, not {:#x}",
                                self.addr(start)
                            ));
                        }
                        Ok(_) => Ok(()),
                    }
                }
                Op::Unmap { start, len } => unsafe {
                    // SAFETY: inside the arena.
                    rustix::mm::munmap(self.addr(start) as *mut c_void, (len * PAGE) as usize)
                },
                Op::Protect { start, len, prot } => unsafe {
                    // SAFETY: inside the arena.
                    rustix::mm::mprotect(
                        self.addr(start) as *mut c_void,
                        (len * PAGE) as usize,
                        MprotectFlags::from_bits_retain(prot.bits().into()),
                    )
                },
                Op::Register {
                    ctx,
                    start,
                    len,
                    mode,
                } => {
                    let addr = self.addr(start);
                    match self.uffd(ctx) {
                        Ok(fd) => sys::uffd_register(fd, addr, len * PAGE, mode.0),
                        Err(e) => return Answer::Refused(e),
                    }
                }
                Op::Unregister { ctx, start, len } => {
                    let addr = self.addr(start);
                    match self.uffd(ctx) {
                        Ok(fd) => sys::uffd_unregister(fd, addr, len * PAGE),
                        Err(e) => return Answer::Refused(e),
                    }
                }
                Op::Fault { page } => sys::write_byte(self.addr(page)),
                // SAFETY (these three): inside the arena; locking pages
                // changes flags and faults pages in, never the contents.
                Op::Mlock {
                    start,
                    len,
                    onfault,
                } => unsafe {
                    let (addr, len) = (self.addr(start) as *mut c_void, (len * PAGE) as usize);
                    if onfault {
                        rustix::mm::mlock_with(addr, len, rustix::mm::MlockFlags::ONFAULT)
                    } else {
                        rustix::mm::mlock_with(addr, len, rustix::mm::MlockFlags::empty())
                    }
                },
                Op::Munlock { start, len } => unsafe {
                    rustix::mm::munlock(self.addr(start) as *mut c_void, (len * PAGE) as usize)
                },
                Op::Madvise { start, len, advice } => {
                    let advice = match advice {
                        Advice::DontFork => rustix::mm::Advice::LinuxDontFork,
                        Advice::DoFork => rustix::mm::Advice::LinuxDoFork,
                        Advice::WipeOnFork => rustix::mm::Advice::LinuxWipeOnFork,
                        Advice::KeepOnFork => rustix::mm::Advice::LinuxKeepOnFork,
                        Advice::DontDump => rustix::mm::Advice::LinuxDontDump,
                        Advice::DoDump => rustix::mm::Advice::LinuxDoDump,
                        Advice::Hugepage => rustix::mm::Advice::LinuxHugepage,
                        Advice::NoHugepage => rustix::mm::Advice::LinuxNoHugepage,
                        Advice::Mergeable => rustix::mm::Advice::LinuxMergeable,
                        Advice::Unmergeable => rustix::mm::Advice::LinuxUnmergeable,
                    };
                    // SAFETY: inside the arena; these advices change flags
                    // (and MADV_UNMERGEABLE unmerges KSM pages), never the
                    // contents the worker relies on.
                    unsafe {
                        rustix::mm::madvise(
                            self.addr(start) as *mut c_void,
                            (len * PAGE) as usize,
                            advice,
                        )
                    }
                }
                Op::Mremap {
                    start,
                    len,
                    newlen,
                    to,
                } => match self.mremap(start, len, newlen, to) {
                    Ok(r) => r,
                    Err(e) => return Answer::Refused(e),
                },
                Op::Open { ctx, features } => {
                    // Close first, as the op says, then open anew.
                    self.uffd[ctx as usize] = None;
                    let bits = match features {
                        Features::None => 0,
                        Features::EventRemap => sys::UFFD_FEATURE_EVENT_REMAP,
                    };
                    match sys::userfaultfd(bits) {
                        Ok(fd) => {
                            self.uffd[ctx as usize] = Some((fd, features));
                            Ok(())
                        }
                        Err(e) => return Answer::Refused(e),
                    }
                }
                Op::Fork => match self.fork() {
                    Ok(()) => Ok(()),
                    Err(e) => return Answer::Refused(e),
                },
                Op::Close { ctx } => match self.uffd[ctx as usize].take() {
                    // Dropping the OwnedFd closes it. close(2) of a uffd
                    // cannot fail (it has no flush, and the fd is ours), so
                    // nothing is lost by close errors going unreported.
                    Some(fd) => {
                        drop(fd);
                        Ok(())
                    }
                    None => Err(Errno::BADF),
                },
            };
            match r {
                Ok(()) => Answer::Ok,
                Err(e) => Answer::Errno(e.raw_os_error()),
            }
        }

        fn reset(&mut self) -> Answer {
            self.ops = 0;
            self.child_smaps = None;
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
                    return Answer::Refused(format!(
                        "munmap of the arena: errno {}",
                        e.raw_os_error()
                    ));
                }
            }
            Answer::Ok
        }

        /// Reads /proc/self/smaps up to the end of the upper guard's entry.
        /// The arena lies below every other mapping, so its entries come
        /// first, and smaps formats entries lazily as they are read: reading
        /// in small chunks and stopping after the upper guard spares the
        /// kernel the rest of the process (most of the cost). Without an
        /// upper guard it reads everything.
        fn read_smaps(&mut self) -> Result<(), String> {
            const CHUNK: usize = 4096;
            self.buf.clear();
            self.smaps
                .seek(SeekFrom::Start(0))
                .map_err(|e| format!("seeking /proc/self/smaps: {e}"))?;
            let marker = self.guard_marker.as_bytes();
            let mut scan = 0;
            loop {
                let len = self.buf.len();
                self.buf.resize(len + CHUNK, 0);
                let n = loop {
                    match self.smaps.read(&mut self.buf[len..]) {
                        Ok(n) => break n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(format!("reading /proc/self/smaps: {e}")),
                    }
                };
                self.buf.truncate(len + n);
                if n == 0 {
                    return Ok(());
                }
                if let Some(p) = find(&self.buf[scan..], marker) {
                    let at = scan + p;
                    if let Some(q) = find(&self.buf[at..], b"\nVmFlags:") {
                        let flags = at + q + 1;
                        if let Some(r) = self.buf[flags..].iter().position(|&b| b == b'\n') {
                            self.buf.truncate(flags + r + 1);
                            return Ok(());
                        }
                    }
                } else {
                    scan = self.buf.len().saturating_sub(marker.len());
                }
            }
        }

        /// Writes the `layout` answer.
        fn layout(&mut self, out: &mut impl Write) -> std::io::Result<()> {
            let t0 = Instant::now();
            let child = self.child_smaps.take();
            let of_child = child.is_some();
            let read = match child {
                Some(text) => {
                    self.buf = text;
                    Ok(())
                }
                None => self.read_smaps(),
            };
            let t1 = Instant::now();
            if let Err(e) = read {
                writeln!(out, "error {e}")?;
                return writeln!(out, "end {} 0", (t1 - t0).as_nanos());
            }
            let (lo, hi) = (self.base, self.end());
            let guard_lo = lo - PAGE;
            let guard_hi = hi + PAGE;
            let text = std::mem::take(&mut self.buf);
            let mut errors: Vec<String> = Vec::new();
            let mut vmas: Vec<Entry> = Vec::new();
            let mut guards = 0;
            let mut cur: Option<Entry> = None;
            for line in text.split(|&b| b == b'\n') {
                let Some(&c) = line.first() else { continue };
                if c.is_ascii_digit() || (b'a'..=b'f').contains(&c) {
                    let line = String::from_utf8_lossy(line);
                    cur = match Entry::header(&line) {
                        Some(e) if e.end > guard_lo && e.start < guard_hi => Some(e),
                        Some(_) => None,
                        None => {
                            errors.push(format!("cannot parse smaps header {line:?}"));
                            None
                        }
                    };
                } else if let Some(flags) = line.strip_prefix(b"VmFlags:") {
                    if let Some(mut e) = cur.take() {
                        e.vmflags = String::from_utf8_lossy(flags).trim().to_string();
                        let guard = (e.start == guard_lo && e.end == lo)
                            || (e.start == hi && e.end == guard_hi);
                        if guard && e.perms.starts_with("---p") && e.inode == self.guard_ino {
                            guards += 1;
                        } else if e.start < lo || e.end > hi {
                            errors.push(format!(
                                "a VMA crosses the arena edge or replaced a guard: {}",
                                e.line
                            ));
                        } else {
                            vmas.push(e);
                        }
                    }
                }
            }
            self.buf = text;
            if guards != 2 {
                errors.push(format!(
                    "expected the two guard VMAs [{:#x},{lo:#x}) and [{hi:#x},{guard_hi:#x}), found {guards}",
                    guard_lo
                ));
            }
            for e in &vmas {
                match self.describe(e, of_child) {
                    Ok(line) => writeln!(out, "{line}")?,
                    Err(err) => errors.push(err),
                }
            }
            for e in errors {
                writeln!(out, "error {e}")?;
            }
            let mut open = Contexts::default();
            for (c, slot) in self.uffd.iter().enumerate() {
                if let Some((_, features)) = slot {
                    open.insert_with(c as u8, *features);
                }
            }
            writeln!(out, "open {open}")?;
            let t2 = Instant::now();
            writeln!(out, "end {} {}", (t1 - t0).as_nanos(), (t2 - t1).as_nanos())
        }

        /// One arena VMA as a `vma` line; the ctx is asked of the kernel
        /// (not for a fork child's VMA: the probe would act on ours).
        fn describe(&mut self, e: &Entry, of_child: bool) -> Result<String, String> {
            let SmapsFlags { prot, flags, uffd } =
                SmapsFlags::decode(&e.vmflags).map_err(|err| {
                    format!("{err} in an arena VMA: {} (VmFlags: {})", e.line, e.vmflags)
                })?;
            let perms: String = e.perms.chars().take(3).collect();
            let consistent = perms == prot.to_string()
                && (e.perms.as_bytes()[3] == b's') == flags.has(VmFlags::MAYSHARE);
            if !consistent {
                return Err(format!(
                    "perms and VmFlags disagree: {} (VmFlags: {})",
                    e.line, e.vmflags
                ));
            }
            let start = (e.start - self.base) / PAGE;
            let end = (e.end - self.base) / PAGE;
            let (backing, pgoff) = if e.inode == 0 && e.path.is_empty() {
                // smaps prints 0: unobserved, and so `?` on the wire.
                (Backing::Anon, 0)
            } else if let Some(f) = self
                .files
                .iter()
                .position(|f| f.ino == e.inode && e.path.starts_with("/memfd:uffd-check-"))
            {
                (Backing::File(f as u8), e.offset / PAGE)
            } else if e.inode != 0 && e.path.starts_with("/dev/zero") {
                (Backing::Shmem(e.inode as u32), e.offset / PAGE)
            } else {
                return Err(format!("cannot classify the arena VMA {}", e.line));
            };
            let ctx = if uffd.is_empty() {
                None
            } else if of_child {
                return Err(format!(
                    "a fork child's VMA kept uffd bits (no ctx has EVENT_FORK): {}",
                    e.line
                ));
            } else {
                match self.owner(e.start, e.end - e.start, uffd) {
                    Ok(c) => Some(c),
                    Err(err) => return Err(format!("{err}: {}", e.line)),
                }
            };
            let vma = Vma {
                start,
                end,
                prot: Prot::from_bits(prot.bits()),
                backing,
                pgoff,
                flags,
                uffd,
                ctx,
                anon_vma: None,
            };
            Ok(format!("vma {}", vma.display(UNOBSERVED)))
        }

        /// Which open uffd owns the VMA `[addr, addr+len)` that has the uffd
        /// bits `mode`: UFFDIO_REGISTER of exactly that VMA with exactly its
        /// bits is EBUSY from any other ctx (nothing changes) and, from the
        /// owner, a no-op (the kernel skips a VMA already registered by this
        /// ctx with these bits). So the kernel itself names the owner.
        fn owner(&self, addr: u64, len: u64, mode: Mode) -> Result<u8, String> {
            let mut seen = Vec::new();
            for (c, slot) in self.uffd.iter().enumerate() {
                let Some((fd, _)) = slot else { continue };
                match sys::uffd_register(fd.as_fd(), addr, len, mode.0) {
                    Ok(()) => return Ok(c as u8),
                    Err(Errno::BUSY) => {}
                    Err(e) => seen.push(format!("ctx {c}: errno {}", e.raw_os_error())),
                }
            }
            Err(format!(
                "no open uffd owns this registered VMA (probe: EBUSY from every ctx{}{})",
                if seen.is_empty() { "" } else { "; " },
                seen.join(", ")
            ))
        }

        /// Writes the `outside` answer: every /proc/self/maps line not inside the arena.
        fn outside(&mut self, out: &mut impl Write) -> std::io::Result<()> {
            let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
            let (lo, hi) = (self.base, self.end());
            for line in maps.lines() {
                match Entry::header(line) {
                    Some(e) if e.start >= lo && e.end <= hi => {}
                    _ => writeln!(out, "{line}")?,
                }
            }
            writeln!(out, "end")
        }
    }

    /// Where `needle` first occurs in `hay`.
    fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
        hay.windows(needle.len()).position(|w| w == needle)
    }

    /// One smaps entry of interest.
    struct Entry {
        line: String,
        start: u64,
        end: u64,
        perms: String,
        offset: u64,
        inode: u64,
        path: String,
        vmflags: String,
    }

    impl Entry {
        /// `start-end perms offset dev inode [path]`.
        fn header(line: &str) -> Option<Entry> {
            let mut w = line.splitn(6, ' ');
            let (s, e) = w.next()?.split_once('-')?;
            let perms = w.next()?;
            let offset = u64::from_str_radix(w.next()?, 16).ok()?;
            let _dev = w.next()?;
            let inode = w.next()?.parse().ok()?;
            let path = w.next().unwrap_or("").trim().to_string();
            if perms.len() != 4 {
                return None;
            }
            Some(Entry {
                line: line.to_string(),
                start: u64::from_str_radix(s, 16).ok()?,
                end: u64::from_str_radix(e, 16).ok()?,
                perms: perms.to_string(),
                offset,
                inode,
                path,
                vmflags: String::new(),
            })
        }
    }

    /// The worker's entry point: `uffd-check __worker PAGES`. Never returns.
    pub fn worker_main() -> ! {
        // Die with the parent, even when hung.
        let _ =
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
        // Keep malloc on the brk heap: no new mappings after start. mallopt
        // is glibc's allocator tuning, not a syscall, so rustix has no
        // counterpart: it stays on libc.
        // SAFETY: a plain allocator setting, made before any thread starts.
        unsafe {
            libc::mallopt(libc::M_MMAP_MAX, 0);
            // One malloc arena for every thread (the uffd monitor's), so
            // that no thread maps an arena of its own.
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        let pages: Option<Page> = std::env::args().nth(2).and_then(|s| s.parse().ok());
        let mut w = match pages.ok_or_else(|| "usage: uffd-check __worker PAGES".to_string()) {
            Ok(p) => match Worker::new(p) {
                Ok(w) => w,
                Err(e) => {
                    let _ = writeln!(out, "fail {e}");
                    let _ = out.flush();
                    std::process::exit(1)
                }
            },
            Err(e) => {
                let _ = writeln!(out, "fail {e}");
                let _ = out.flush();
                std::process::exit(2)
            }
        };
        let _ = writeln!(out, "ready {:#x} {}", w.base, w.pages);
        let _ = out.flush();
        let stdin = std::io::stdin();
        let mut input = stdin.lock();
        let mut line = String::with_capacity(256);
        loop {
            line.clear();
            match input.read_line(&mut line) {
                Ok(0) | Err(_) => std::process::exit(0),
                Ok(_) => {}
            }
            let req = line.trim();
            let r = match req {
                "layout" => {
                    if w.fault == Some((Fault::CrashReadingLayout, w.ops.wrapping_sub(1))) {
                        std::process::abort();
                    }
                    w.layout(&mut out)
                }
                "outside" => w.outside(&mut out),
                "reset" => answer(&mut out, w.reset()),
                _ if req.starts_with("__fault ") => {
                    let mut words = req.split(' ').skip(1);
                    let kind = match words.next() {
                        Some("crash") => Some(Fault::Crash),
                        Some("hang") => Some(Fault::Hang),
                        Some("crash-reading-layout") => Some(Fault::CrashReadingLayout),
                        _ => None,
                    };
                    let at = words.next().and_then(|n| n.parse().ok()).unwrap_or(w.ops);
                    w.fault = kind.map(|k| (k, at));
                    Ok(())
                }
                _ => match req.parse::<Op>() {
                    Ok(op) => {
                        let n = w.ops;
                        w.ops += 1;
                        match w.fault {
                            Some((Fault::Crash, at)) if at == n => std::process::abort(),
                            Some((Fault::Hang, at)) if at == n => loop {
                                std::thread::sleep(std::time::Duration::from_secs(3600));
                            },
                            _ => {}
                        }
                        let t = Instant::now();
                        let a = w.op(&op);
                        let ns = t.elapsed().as_nanos();
                        match a {
                            // The result, then the time the op took in here.
                            Answer::Ok => writeln!(out, "ok {ns}"),
                            Answer::Errno(e) => {
                                writeln!(out, "{} {ns}", uffd_vocab::Errno::from_raw(e))
                            }
                            a => answer(&mut out, a),
                        }
                    }
                    Err(e) => answer(
                        &mut out,
                        Answer::Refused(format!("bad request {req:?}: {e}")),
                    ),
                },
            };
            if r.and_then(|_| out.flush()).is_err() {
                std::process::exit(0);
            }
        }
    }

    fn answer(out: &mut impl Write, a: Answer) -> std::io::Result<()> {
        match a {
            Answer::Ok => writeln!(out, "ok"),
            Answer::Errno(e) => writeln!(out, "{}", uffd_vocab::Errno::from_raw(e)),
            Answer::Refused(t) => writeln!(out, "refused {t}"),
        }
    }
}
