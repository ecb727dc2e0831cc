//! The ops: [`Worker::op`] checks an op against the arena again and
//! dispatches it to one small function per syscall family (mmap; munmap and
//! mprotect; mlock2 and munlock; madvise; mremap; the userfaultfd ops; the
//! one-byte write; fork in `fork.rs`), each making the real syscall.
//!
//! Invariant: every syscall acts on arena pages only (`Op::validate` against
//! the arena's size, before any of them runs), so no op maps, moves, grows
//! into or unmaps anything outside the arena, guards included. A syscall
//! that answers with anything but what it was asked for (an address other
//! than the fixed one) is a refusal, never a result.

use std::ffi::c_void;
use std::os::fd::AsFd;

use rustix::io::Errno;
use rustix::mm::{MapFlags, MprotectFlags, MremapFlags, ProtFlags};

use uffd_vocab::{Advice, Features, Fill, Kind, Mode, Op, Page, Prot, Remap};

use super::arena::{Worker, PAGE};
use super::serve::Answer;
use crate::sys;

/// What running an op gave: the syscall's result, or `Err` a refusal (the
/// worker could not run the op as asked: a uffd it could not open, an
/// address the kernel should never have returned).
type Ran = Result<Result<(), Errno>, String>;

impl Worker {
    /// Runs one op with the real syscalls.
    pub(super) fn op(&mut self, op: &Op) -> Answer {
        // Ops arrive validated; check again, never touch outside the arena.
        if let Err(e) = op.validate(self.pages) {
            return Answer::Refused(e);
        }
        self.events.clear();
        let ran = match *op {
            Op::Map {
                start,
                len,
                prot,
                kind,
            } => self.with_events(|w| w.map(start, len, prot, kind)),
            Op::Unmap { start, len } => self.with_events(|w| Ok(w.unmap(start, len))),
            // Populating a locked VMA made writable may fault (rule 42).
            Op::Protect { start, len, prot } => {
                self.with_events(|w| Ok(w.protect(start, len, prot)))
            }
            Op::Register {
                ctx,
                start,
                len,
                mode,
            } => self.register(ctx, start, len, mode),
            Op::Unregister { ctx, start, len } => self.unregister(ctx, start, len),
            Op::Fault { page, read } => {
                self.with_events(|w| Ok(sys::access_byte(w.addr(page), !read)))
            }
            Op::Fill {
                how,
                ctx,
                start,
                len,
                wp,
            } => self.fill(how, ctx, start, len, wp),
            Op::Move {
                ctx,
                src,
                start,
                len,
                holes,
            } => self.move_pages(ctx, src, start, len, holes),
            Op::Mlock {
                start,
                len,
                onfault,
            } => self.with_events(|w| Ok(w.mlock(start, len, onfault))),
            Op::Munlock { start, len } => Ok(self.munlock(start, len)),
            Op::Madvise { start, len, advice } => {
                self.with_events(|w| Ok(w.madvise(start, len, advice)))
            }
            Op::Mremap {
                start,
                len,
                newlen,
                to,
            } => self.with_events(|w| w.mremap(start, len, newlen, to)),
            Op::Open { ctx, features } => return self.open(ctx, features),
            Op::Fork => self.fork().map(Ok),
            Op::Close { ctx } => Ok(self.close(ctx)),
            Op::WriteProtect {
                ctx,
                start,
                len,
                on,
            } => self.writeprotect(ctx, start, len, on),
        };
        match ran {
            Ok(Ok(())) => Answer::Ok,
            Ok(Err(e)) => Answer::Errno(e.raw_os_error()),
            Err(e) => Answer::Refused(e),
        }
    }

    /// Runs `call`, an op that may raise events (but no FORK) or fault in
    /// the arena (mlock's populate, a locked VMA's after mprotect or
    /// mremap, the one-byte access), while the monitor reads them into
    /// `self.events` and resolves the faults (see `events.rs`); a message
    /// it could not keep, or a fault it could not resolve, is a refusal.
    /// The ops left out cannot fault in the arena: the uffd ioctls (a
    /// copy reads the tag buffer, outside), open, close, munlock.
    fn with_events(&mut self, call: impl FnOnce(&Self) -> Ran) -> Ran {
        let (ran, forks) = self.watched(call);
        forks.and(ran)
    }

    /// mmap(MAP_FIXED) of `kind` over `[start, start+len)`.
    fn map(&self, start: Page, len: Page, prot: Prot, kind: Kind) -> Ran {
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
            Err(e) => Ok(Err(e)),
            Ok(p) if p != addr => Err(format!(
                "mmap(MAP_FIXED) returned {p:p}, not {:#x}",
                self.addr(start)
            )),
            Ok(_) => Ok(Ok(())),
        }
    }

    /// munmap of `[start, start+len)`.
    fn unmap(&self, start: Page, len: Page) -> Result<(), Errno> {
        // SAFETY: inside the arena.
        unsafe { rustix::mm::munmap(self.addr(start) as *mut c_void, (len * PAGE) as usize) }
    }

    /// mprotect of `[start, start+len)` to `prot`.
    fn protect(&self, start: Page, len: Page, prot: Prot) -> Result<(), Errno> {
        // SAFETY: inside the arena.
        unsafe {
            rustix::mm::mprotect(
                self.addr(start) as *mut c_void,
                (len * PAGE) as usize,
                MprotectFlags::from_bits_retain(prot.bits().into()),
            )
        }
    }

    /// mlock2 of `[start, start+len)`, with MLOCK_ONFAULT when `onfault`.
    fn mlock(&self, start: Page, len: Page, onfault: bool) -> Result<(), Errno> {
        let (addr, len) = (self.addr(start) as *mut c_void, (len * PAGE) as usize);
        let flags = if onfault {
            rustix::mm::MlockFlags::ONFAULT
        } else {
            rustix::mm::MlockFlags::empty()
        };
        // SAFETY: inside the arena; locking pages changes flags and faults
        // pages in, never the contents.
        unsafe { rustix::mm::mlock_with(addr, len, flags) }
    }

    /// munlock of `[start, start+len)`.
    fn munlock(&self, start: Page, len: Page) -> Result<(), Errno> {
        // SAFETY: inside the arena; unlocking pages changes flags, never the
        // contents.
        unsafe { rustix::mm::munlock(self.addr(start) as *mut c_void, (len * PAGE) as usize) }
    }

    /// madvise of `[start, start+len)` with one of the advices that change
    /// VMA flags.
    fn madvise(&self, start: Page, len: Page, advice: Advice) -> Result<(), Errno> {
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
            Advice::DontNeed => rustix::mm::Advice::LinuxDontNeed,
            Advice::Remove => rustix::mm::Advice::LinuxRemove,
            Advice::Free => rustix::mm::Advice::LinuxFree,
        };
        // SAFETY: inside the arena; these advices change flags (and
        // MADV_UNMERGEABLE unmerges KSM pages) or drop the arena's pages,
        // whose contents the worker never relies on.
        unsafe {
            rustix::mm::madvise(
                self.addr(start) as *mut c_void,
                (len * PAGE) as usize,
                advice,
            )
        }
    }

    /// mremap. `Err`: a refusal (an address it should never have
    /// returned).
    fn mremap(&self, start: Page, len: Page, newlen: Page, to: Remap) -> Ran {
        let (old, old_size) = (self.addr(start) as *mut c_void, (len * PAGE) as usize);
        let new_size = (newlen * PAGE) as usize;
        {
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
        }
    }

    /// `open`: closes ctx's uffd if open, then opens a new one with
    /// `features` (a refusal if the kernel will not give one). Unsupported
    /// where this process may not have them: the kernel refuses a feature
    /// (EPERM: `event-fork` without CAP_SYS_PTRACE), or `faults` where
    /// the uffd reports user-mode faults only (UFFD_USER_MODE_ONLY: the
    /// one-byte access, process_vm_writev, would never deliver one).
    fn open(&mut self, ctx: u8, features: Features) -> Answer {
        // Close first, as the op says, then open anew.
        self.uffd[ctx as usize] = None;
        let (fd, user_only) = match sys::userfaultfd_raw() {
            Ok(opened) => opened,
            Err(e) => return Answer::Refused(e),
        };
        if user_only && features.contains(Features::FAULTS) {
            return Answer::Unsupported(
                "`faults` on a uffd of user-mode faults only (UFFD_USER_MODE_ONLY)".into(),
            );
        }
        match sys::uffd_api(fd.as_fd(), sys::feature_bits(features)) {
            Ok(()) => {
                self.uffd[ctx as usize] = Some((fd, features));
                Answer::Ok
            }
            Err(Errno::PERM) => Answer::Unsupported(format!(
                "UFFDIO_API with `{features}`: EPERM (event-fork needs CAP_SYS_PTRACE)"
            )),
            Err(e) => Answer::Refused(format!("UFFDIO_API failed: errno {}", e.raw_os_error())),
        }
    }

    /// UFFDIO_REGISTER of `[start, start+len)` with ctx's uffd (opened on
    /// first use).
    fn register(&mut self, ctx: u8, start: Page, len: Page, mode: Mode) -> Ran {
        let addr = self.addr(start);
        let fd = self.uffd(ctx)?;
        Ok(sys::uffd_register(fd, addr, len * PAGE, mode.0))
    }

    /// UFFDIO_UNREGISTER of `[start, start+len)` with ctx's uffd (opened on
    /// first use).
    fn unregister(&mut self, ctx: u8, start: Page, len: Page) -> Ran {
        let addr = self.addr(start);
        let fd = self.uffd(ctx)?;
        Ok(sys::uffd_unregister(fd, addr, len * PAGE))
    }

    /// UFFDIO_WRITEPROTECT of `[start, start+len)` with ctx's uffd (opened
    /// on first use).
    fn writeprotect(&mut self, ctx: u8, start: Page, len: Page, on: bool) -> Ran {
        let addr = self.addr(start);
        let fd = self.uffd(ctx)?;
        Ok(sys::uffd_writeprotect(fd, addr, len * PAGE, on))
    }

    /// UFFDIO_COPY, ZEROPAGE, CONTINUE or POISON of `[start, start+len)`
    /// on ctx's uffd; a copy's source is the tag buffer's same pages.
    fn fill(&mut self, how: Fill, ctx: u8, start: Page, len: Page, wp: bool) -> Ran {
        let (dst, size) = (self.addr(start), len * PAGE);
        let mode = if wp { sys::FILL_MODE_WP } else { 0 };
        let src = match how {
            Fill::Copy => {
                self.copied = true;
                self.tag_source(start, len)?
            }
            _ => 0,
        };
        let fd = self.uffd(ctx)?;
        Ok(match how {
            Fill::Copy => sys::uffd_copy_or_move(fd, sys::UFFDIO_COPY, dst, src, size, mode),
            Fill::ZeroPage => sys::uffd_fill(fd, sys::UFFDIO_ZEROPAGE, dst, size, mode),
            Fill::Continue => sys::uffd_fill(fd, sys::UFFDIO_CONTINUE, dst, size, mode),
            Fill::Poison => sys::uffd_fill(fd, sys::UFFDIO_POISON, dst, size, mode),
        })
    }

    /// UFFDIO_MOVE of `[src, src+len)` to `[dst, dst+len)` on ctx's uffd.
    fn move_pages(&mut self, ctx: u8, src: Page, dst: Page, len: Page, holes: bool) -> Ran {
        let mode = if holes {
            sys::UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES
        } else {
            0
        };
        let (d, s) = (self.addr(dst), self.addr(src));
        let fd = self.uffd(ctx)?;
        Ok(sys::uffd_copy_or_move(
            fd,
            sys::UFFDIO_MOVE,
            d,
            s,
            len * PAGE,
            mode,
        ))
    }

    /// close of ctx's uffd: EBADF if it is not open.
    fn close(&mut self, ctx: u8) -> Result<(), Errno> {
        match self.uffd[ctx as usize].take() {
            // Dropping the OwnedFd closes it. close(2) of a uffd
            // cannot fail (it has no flush, and the fd is ours), so
            // nothing is lost by close errors going unreported.
            Some(fd) => {
                drop(fd);
                Ok(())
            }
            None => Err(Errno::BADF),
        }
    }
}
