//! The event monitor: a thread that reads the messages of the uffds opened
//! with an `event-…` feature or `faults` while a call that can raise them
//! runs (mmap, munmap, mprotect, mremap, madvise, mlock, the one-byte
//! access, fork), and records each message with its ctx, in the order
//! read. The kernel sends such an event and waits until it has been read
//! before it goes on (one event at a time), so without a reader the call
//! would wait forever, and the order read is the kernel's order.
//!
//! A page fault (UFFD_EVENT_PAGEFAULT, only on a uffd opened with
//! `faults`: rule 42) waits until it is resolved: the monitor resolves it
//! at once, on the same uffd, for its one page (docs/kernel-rules.md §21):
//! UFFDIO_WRITEPROTECT off for a write-protect fault, UFFDIO_CONTINUE for
//! a minor one, UFFDIO_COPY of the page's content tag (page + 1, from a
//! page of its own) for a missing one; each wakes the access. A fault it
//! cannot resolve (mremap's populate of a grown, locked, moved VMA, whose
//! REMAP keeps the ctx's mmap_changing set until mremap returns: every
//! resolution is EAGAIN) makes it close that uffd, as rule 42 says: the
//! release wakes the access, which finds the VMA unregistered, and the
//! worker forgets the fd ([`Resolved::Closed`]). A fault that still comes
//! back too often can never complete: the monitor says so on stderr and
//! ends the worker at once ([`STUCK_EXIT`]), a dead worker the backend
//! reports, rather than leave it to the hang detector.
//!
//! Invariant: the thread is started once, with the worker, and `start`
//! returns only once it runs (its stacks mapped); after that it never
//! allocates (its loop uses the stack and a log of [`LOG_MSGS`] messages
//! allocated at start), so the worker's mappings outside the arena never
//! change, and a fork(2) that waits for it while glibc holds malloc's locks
//! cannot deadlock. It holds a uffd only while `watching` runs, so a later
//! close of that uffd releases it. No message is lost silently: past the
//! log's capacity a message is counted (and a FORK message's new fd
//! closed), and `watching` reports the count.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};

use uffd_vocab::MAX_CTX;

use crate::sys::{self, UffdMsg, UFFD_EVENT_PAGEFAULT, UFFD_MSG_SIZE};

use super::arena::PAGE;

/// How many messages one call may raise: more is a refusal, never a loss.
/// (Each registered VMA gets at most one REMOVE, each ctx one UNMAP.)
pub(super) const LOG_MSGS: usize = 256;

/// The monitor: the thread, the fds it is to watch (by ctx), and the log
/// it records into.
pub(super) struct Monitor {
    fds: Arc<[AtomicI32; MAX_CTX as usize]>,
    log: Arc<Mutex<Log>>,
    ctl: OwnedFd,
    ack: OwnedFd,
}

/// How the monitor dealt with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Resolved {
    /// Not a page fault: nothing to resolve.
    NoFault,
    /// A page fault, resolved by its ioctl (which woke the access).
    Done,
    /// A page fault whose resolution failed: the monitor closed the uffd
    /// (rule 42), read nothing more of it, and the worker must forget it.
    Closed,
}

/// How often one fault may come back within a call before the monitor
/// stops resolving it (the access would go on for ever).
const MAX_REPEATS: usize = 8;

/// The worker's exit status when a fault can never be resolved.
pub(super) const STUCK_EXIT: i32 = 75;

/// The page UFFDIO_COPY copies from when it resolves a missing fault: its
/// u64 at byte 8 is the content tag (page + 1), the rest zero.
#[repr(C, align(4096))]
struct TagPage([u8; PAGE as usize]);

/// The messages read while one call ran, each with its ctx, in order.
struct Log {
    msgs: [(u8, [u8; UFFD_MSG_SIZE], Resolved); LOG_MSGS],
    len: usize,
    /// Messages read past the capacity.
    lost: usize,
}

/// What the monitor read while a call ran.
pub(super) struct Read {
    /// Each message with its ctx and how it was resolved, in the order
    /// read (the kernel's).
    pub(super) msgs: Vec<(u8, UffdMsg, Resolved)>,
    /// How many more it read than the log holds (their FORK fds closed).
    pub(super) lost: usize,
}

impl Monitor {
    /// Starts the thread, for the arena at `base`, and waits until it
    /// runs.
    pub(super) fn start(base: u64) -> Result<Monitor, String> {
        let (ctl_r, ctl) = rustix::pipe::pipe().map_err(|e| format!("pipe: {e}"))?;
        let (ack, ack_w) = rustix::pipe::pipe().map_err(|e| format!("pipe: {e}"))?;
        let fds = Arc::new([const { AtomicI32::new(-1) }; MAX_CTX as usize]);
        let log = Arc::new(Mutex::new(Log {
            msgs: [(0, [0; UFFD_MSG_SIZE], Resolved::NoFault); LOG_MSGS],
            len: 0,
            lost: 0,
        }));
        let (their_fds, their_log) = (fds.clone(), log.clone());
        let mut src = Box::new(TagPage([0; PAGE as usize]));
        std::thread::Builder::new()
            .name("uffd-monitor".into())
            .spawn(move || monitor_loop(&their_fds, &their_log, ctl_r, ack_w, base, &mut src))
            .map_err(|e| format!("cannot start the uffd monitor thread: {e}"))?;
        // Wait until the thread runs: Rust's runtime maps its signal stack
        // as it starts, and on a busy machine that could come late, after
        // the worker's mappings outside the arena were first looked at.
        let mut b = [0u8; 1];
        match rustix::io::read(&ack, &mut b) {
            Ok(1) => Ok(Monitor { fds, log, ctl, ack }),
            _ => Err("the uffd monitor thread did not start".into()),
        }
    }

    /// Runs `f` while the monitor reads the events of `fds` (indexed by
    /// ctx); returns what `f` returned and the messages read. When it
    /// returns the monitor holds none of the fds any more (a uffd it still
    /// polled could not be released by a later close).
    pub(super) fn watching<T>(
        &self,
        fds: &[Option<BorrowedFd<'_>>; MAX_CTX as usize],
        f: impl FnOnce() -> T,
    ) -> (T, Read) {
        for (slot, fd) in self.fds.iter().zip(fds) {
            slot.store(fd.map_or(-1, |fd| fd.as_raw_fd()), Ordering::SeqCst);
        }
        {
            let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
            log.len = 0;
            log.lost = 0;
        }
        self.command(b'g');
        let r = f();
        self.command(b's');
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        let msgs = log.msgs[..log.len]
            .iter()
            .map(|(c, m, r)| (*c, UffdMsg::decode(m), *r))
            .collect();
        (
            r,
            Read {
                msgs,
                lost: log.lost,
            },
        )
    }

    /// Sends a command and waits for the monitor to have taken it.
    fn command(&self, c: u8) {
        let _ = rustix::io::write(&self.ctl, &[c]);
        let mut b = [0u8; 1];
        let _ = rustix::io::read(&self.ack, &mut b);
    }
}

impl Log {
    /// Keeps the message `m` of ctx `c` and how it was resolved, or
    /// counts it lost (closing the fd a FORK message installed: nobody
    /// else will).
    fn record(&mut self, c: u8, m: &[u8; UFFD_MSG_SIZE], r: Resolved) {
        if self.len < LOG_MSGS {
            self.msgs[self.len] = (c, *m, r);
            self.len += 1;
        } else {
            self.lost += 1;
            if let UffdMsg::Fork { ufd } = UffdMsg::decode(m) {
                // SAFETY: the fd the kernel just installed for this
                // message; nobody else knows it.
                unsafe { libc::close(ufd as i32) };
            }
        }
    }

    /// Whether the fault `m` of ctx `c` can never be resolved: it came
    /// back more than [`MAX_REPEATS`] times (or the log is too full to
    /// tell). (A fault whose resolution failed cannot come back: its uffd
    /// is closed.)
    fn stuck(&self, c: u8, m: &[u8; UFFD_MSG_SIZE]) -> bool {
        let same = |(d, n, _): &&(u8, [u8; UFFD_MSG_SIZE], Resolved)| *d == c && n[..24] == m[..24];
        let mut before = self.msgs[..self.len].iter().filter(same);
        before.nth(MAX_REPEATS).is_some() || self.lost > LOG_MSGS
    }
}

/// Resolves the page fault `m` that the uffd `fd` of ctx `c` delivered
/// (see the module docs), a missing page by a copy of `src` tagged for
/// its page of the arena at `base`; `stuck`: it never can be, so say so
/// and end the worker.
fn resolve(
    c: u8,
    fd: i32,
    m: &[u8; UFFD_MSG_SIZE],
    stuck: bool,
    base: u64,
    src: &mut TagPage,
) -> Resolved {
    let UffdMsg::Fault { flags, address } = UffdMsg::decode(m) else {
        return Resolved::NoFault;
    };
    let page = address & !(PAGE - 1);
    if stuck {
        say_stuck(c, page, flags);
        // SAFETY: ends the process at once; nothing is left to clean up
        // that the kernel does not (the backend reports a dead worker).
        unsafe { libc::_exit(STUCK_EXIT) };
    }
    // SAFETY: `fd` is a uffd the worker holds open while `watching` runs.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    let r = if flags & u64::from(uffd_vocab::EventKind::WP) != 0 {
        sys::uffd_writeprotect(fd, page, PAGE, false)
    } else if flags & u64::from(uffd_vocab::EventKind::MINOR) != 0 {
        sys::uffd_fill(fd, sys::UFFDIO_CONTINUE, page, PAGE, 0)
    } else {
        let tag = (page.wrapping_sub(base) / PAGE + 1).to_le_bytes();
        src.0[8..16].copy_from_slice(&tag);
        let from = src.0.as_ptr() as u64;
        sys::uffd_copy_or_move(fd, sys::UFFDIO_COPY, page, from, PAGE, 0)
    };
    match r {
        Ok(()) => Resolved::Done,
        Err(_) => {
            // The access still waits, and nothing can resolve it: release
            // the uffd, which wakes it (rule 42). The worker forgets the fd.
            // SAFETY: the fd of a uffd the worker holds; it no longer uses
            // this number (see `Resolved::Closed`).
            unsafe { libc::close(fd.as_raw_fd()) };
            Resolved::Closed
        }
    }
}

/// Says on stderr (without allocating) that the fault of ctx `c` at
/// `addr` can never be resolved.
fn say_stuck(c: u8, addr: u64, flags: u64) {
    use std::io::Write;
    let mut buf = [0u8; 320];
    let mut w = &mut buf[..];
    let _ = writeln!(
        w,
        "uffd-monitor: ctx {c}'s fault at {addr:#x} (flags {flags:#x}) came back more \
         than {MAX_REPEATS} times: the worker exits {STUCK_EXIT}"
    );
    let n = 320 - w.len();
    // SAFETY: writes our own buffer to stderr.
    unsafe { libc::write(2, buf.as_ptr().cast(), n) };
}

/// The monitor thread: says it runs, then `g` (re)loads the fds to watch
/// and `s` drops them; each command is acknowledged; each message of a
/// watched fd is read, a page fault resolved, and recorded with its ctx.
fn monitor_loop(
    fds: &[AtomicI32; MAX_CTX as usize],
    log: &Mutex<Log>,
    ctl: OwnedFd,
    ack: OwnedFd,
    base: u64,
    src: &mut TagPage,
) {
    let mut watched = [-1i32; MAX_CTX as usize];
    let mut msg = [0u8; UFFD_MSG_SIZE];
    // Running (see `Monitor::start`).
    let _ = rustix::io::write(&ack, b"r");
    loop {
        let mut set = [libc::pollfd {
            fd: -1,
            events: libc::POLLIN,
            revents: 0,
        }; MAX_CTX as usize + 1];
        set[0].fd = ctl.as_raw_fd();
        for (p, &fd) in set[1..].iter_mut().zip(&watched) {
            p.fd = fd;
        }
        // SAFETY: `set` is a valid array of pollfd; negative fds are ignored.
        let n = unsafe { libc::poll(set.as_mut_ptr(), set.len() as libc::nfds_t, -1) };
        if n < 0 {
            continue;
        }
        for (c, p) in set[1..].iter().enumerate() {
            if p.fd < 0 || p.revents == 0 {
                continue;
            }
            // SAFETY: reads into our own buffer from an fd we were given
            // (non-blocking: the loop ends at EAGAIN).
            while unsafe { libc::read(p.fd, msg.as_mut_ptr().cast(), msg.len()) }
                == UFFD_MSG_SIZE as isize
            {
                let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
                let r = match msg[0] {
                    UFFD_EVENT_PAGEFAULT => {
                        let stuck = log.stuck(c as u8, &msg);
                        resolve(c as u8, p.fd, &msg, stuck, base, src)
                    }
                    _ => Resolved::NoFault,
                };
                log.record(c as u8, &msg, r);
                if r == Resolved::Closed {
                    // Closed: no more reading it.
                    watched[c] = -1;
                    break;
                }
            }
        }
        if set[0].revents != 0 {
            let mut c = [0u8; 1];
            match rustix::io::read(&ctl, &mut c) {
                Ok(1) => {}
                // The worker is gone: so is the monitor.
                _ => return,
            }
            for (w, slot) in watched.iter_mut().zip(fds.iter()) {
                *w = if c[0] == b'g' {
                    slot.load(Ordering::SeqCst)
                } else {
                    -1
                };
            }
            let _ = rustix::io::write(&ack, &c);
        }
    }
}
