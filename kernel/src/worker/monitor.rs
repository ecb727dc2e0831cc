//! The EVENT_REMAP monitor: a thread that reads and drops the events of the
//! uffds opened with UFFD_FEATURE_EVENT_REMAP while an mremap runs. The
//! kernel does not return from moving a VMA so registered before its REMAP
//! event has been read, so without a reader mremap would wait forever.
//!
//! Invariant: the thread is started once, with the worker, and `start`
//! returns only once it runs (its stacks mapped); after that it never
//! allocates (its loop uses the stack only), so the worker's mappings
//! outside the arena never change. It holds a uffd only while `watching`
//! runs, so a later close of that uffd releases it.

use std::os::fd::{BorrowedFd, OwnedFd};

/// The monitor of the uffds opened with UFFD_FEATURE_EVENT_REMAP: a thread,
/// started once with the worker (so its stack is there before the arena's
/// neighbourhood is first looked at, and never changes after), that reads
/// and drops the events of the uffds it is given while an mremap runs: the
/// kernel does not return from moving a VMA so registered before its REMAP
/// event has been read. It never allocates (its loop uses the stack only).
pub(super) struct Monitor {
    fds: std::sync::Arc<[std::sync::atomic::AtomicI32; MONITOR_FDS]>,
    ctl: OwnedFd,
    ack: OwnedFd,
}

/// How many uffds the monitor watches at most.
const MONITOR_FDS: usize = 8;
// Every open uffd fits.
const _: () = assert!(uffd_vocab::MAX_CTX as usize <= MONITOR_FDS);

impl Monitor {
    /// Starts the thread and waits until it runs.
    pub(super) fn start() -> Result<Monitor, String> {
        use std::sync::atomic::AtomicI32;
        let (ctl_r, ctl) = rustix::pipe::pipe().map_err(|e| format!("pipe: {e}"))?;
        let (ack, ack_w) = rustix::pipe::pipe().map_err(|e| format!("pipe: {e}"))?;
        let fds = std::sync::Arc::new([const { AtomicI32::new(-1) }; MONITOR_FDS]);
        let theirs = fds.clone();
        std::thread::Builder::new()
            .name("uffd-monitor".into())
            .spawn(move || monitor_loop(&theirs, ctl_r, ack_w))
            .map_err(|e| format!("cannot start the uffd monitor thread: {e}"))?;
        // Wait until the thread runs: Rust's runtime maps its signal stack
        // as it starts, and on a busy machine that could come late, after
        // the worker's mappings outside the arena were first looked at.
        let mut b = [0u8; 1];
        match rustix::io::read(&ack, &mut b) {
            Ok(1) => Ok(Monitor { fds, ctl, ack }),
            _ => Err("the uffd monitor thread did not start".into()),
        }
    }

    /// Runs `f` (an mremap) while the monitor reads the events of `fds`;
    /// when it returns the monitor holds none of them any more (a uffd it
    /// still polled could not be released by a later close).
    pub(super) fn watching<T>(&self, fds: &[BorrowedFd<'_>], f: impl FnOnce() -> T) -> T {
        use std::os::fd::AsRawFd;
        use std::sync::atomic::Ordering;
        for (slot, fd) in self
            .fds
            .iter()
            .zip(fds.iter().map(Some).chain(std::iter::repeat(None)))
        {
            slot.store(fd.map_or(-1, |fd| fd.as_raw_fd()), Ordering::SeqCst);
        }
        self.command(b'g');
        let r = f();
        self.command(b's');
        r
    }

    /// Sends a command and waits for the monitor to have taken it.
    fn command(&self, c: u8) {
        let _ = rustix::io::write(&self.ctl, &[c]);
        let mut b = [0u8; 1];
        let _ = rustix::io::read(&self.ack, &mut b);
    }
}

/// The monitor thread: says it runs, then `g` (re)loads the fds to watch,
/// `s` drops them; each command is acknowledged; events of watched fds are read and dropped.
fn monitor_loop(fds: &[std::sync::atomic::AtomicI32; MONITOR_FDS], ctl: OwnedFd, ack: OwnedFd) {
    use std::os::fd::AsRawFd;
    use std::sync::atomic::Ordering;
    let mut watched = [-1i32; MONITOR_FDS];
    let mut msg = [0u8; 32]; // sizeof(struct uffd_msg)
                             // Running (see `Monitor::start`).
    let _ = rustix::io::write(&ack, b"r");
    loop {
        let mut set = [libc::pollfd {
            fd: -1,
            events: libc::POLLIN,
            revents: 0,
        }; MONITOR_FDS + 1];
        set[0].fd = ctl.as_raw_fd();
        for (p, &fd) in set[1..].iter_mut().zip(&watched) {
            p.fd = fd;
        }
        // SAFETY: `set` is a valid array of pollfd; negative fds are ignored.
        let n = unsafe { libc::poll(set.as_mut_ptr(), set.len() as libc::nfds_t, -1) };
        if n < 0 {
            continue;
        }
        for p in &set[1..] {
            if p.fd >= 0 && p.revents != 0 {
                // SAFETY: reads into our own buffer from an fd we were given.
                while unsafe { libc::read(p.fd, msg.as_mut_ptr().cast(), msg.len()) } > 0 {}
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
