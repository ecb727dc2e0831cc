//! The `fork` op: fork(2) the worker and read the child's smaps while it
//! lives, for the next `layout` to answer with.
//!
//! With `event-fork`, fork(2) returns only once the monitor has read each
//! FORK event, whose new fd (installed in the worker) is a uffd on the
//! child's mm: the child's VMAs stay registered with it only while it is
//! open. So the fork fds are kept until the child's smaps and pagemap are
//! read and each registered child VMA's owner is asked through them (the
//! ctx whose FORK event gave the fd: `owner.rs`), then closed.
//!
//! Invariant: the child runs nothing but async-signal-safe calls (the worker
//! has a thread, the uffd monitor), touches no memory the worker relies on,
//! and is killed and reaped before the op answers: after a `fork` op the
//! worker has no child and no fork fd, and its own address space is as
//! before.

use std::ffi::c_void;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use uffd_vocab::PteKind;

use super::arena::Worker;
use super::owner::owner_among;

impl Worker {
    /// fork(2): the child waits on a pipe while the worker reads its
    /// smaps, then is killed and reaped, all before the op answers.
    pub(super) fn fork(&mut self) -> Result<(), String> {
        // Without the PFNs (not root), the zero page is told by nobody
        // mapping it exclusively, which the pages the child shares are not:
        // take their kinds from the worker's own entries, read before.
        let before = match self.zero_pfn {
            None => Some(self.ptes(None, &[])),
            Some(_) => None,
        };
        let (r, w) = rustix::pipe::pipe().map_err(|e| format!("pipe: {e}"))?;
        // The FORK events come while fork(2) runs in here.
        let (pid, forks) = self.watched(|_| {
            // SAFETY: the child calls only async-signal-safe functions
            // (prctl, close, read, _exit), as it must in a process with
            // threads (the uffd monitor), and never leaves this closure.
            let pid = unsafe { libc::fork() };
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
            (pid >= 0)
                .then_some(pid)
                .ok_or_else(std::io::Error::last_os_error)
        });
        let pid = pid.map_err(|e| format!("fork: {e}"))?;
        drop(r);
        // Up to the upper guard, as the worker reads its own.
        let mut text = Vec::new();
        let read = std::fs::File::open(format!("/proc/{pid}/smaps"))
            .and_then(|f| super::smaps::read_to_guard(&f, &self.guard_marker, &mut text));
        let mut ptes = match &read {
            Ok(()) => self.ptes(Some(pid), &self.readable_in(&text)),
            Err(e) => Err(format!("reading the fork child's smaps: {e}")),
        };
        // Each registered child VMA's owner, asked through the fork fds.
        let owners = match (&read, &forks) {
            (Ok(()), Ok(forks)) => self.child_owners(&text, forks),
            _ => Vec::new(),
        };
        // Closing them releases the child's registrations: only now.
        let forks = forks.map(drop);
        if let (Ok(child), Some(Ok(parent))) = (&mut ptes, &before) {
            for (page, e) in child.iter_mut() {
                if matches!(e.kind, PteKind::Zero | PteKind::Anon) {
                    if let Ok(i) = parent.binary_search_by_key(page, |(p, _)| *p) {
                        e.kind = parent[i].1.kind;
                    }
                }
            }
        }
        // The child's read returns and it exits; killed anyway, in case
        // it has not yet, then reaped.
        drop(w);
        // SAFETY: our own child.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
        forks?;
        read.map_err(|e| format!("reading the fork child's smaps: {e}"))?;
        self.child_smaps = Some(text);
        self.child_ptes = Some(ptes);
        self.child_owners = owners;
        Ok(())
    }

    /// The owner of each registered arena VMA in the child's smaps `text`
    /// (by its start address): the ctx of the one fork fd whose probe
    /// succeeds. A VMA no fork fd owns gets the reason, an error of the
    /// child's layout.
    fn child_owners(&self, text: &[u8], forks: &[(u8, OwnedFd)]) -> Vec<(u64, Result<u8, String>)> {
        let fds = || forks.iter().map(|(c, fd)| (*c, fd.as_fd()));
        self.registered_in(text)
            .into_iter()
            .map(|(start, end, mode)| {
                let owner = if forks.is_empty() {
                    Err("no FORK event gave the child a uffd (no ctx has event-fork)".into())
                } else {
                    owner_among(fds(), start, end - start, mode)
                };
                (start, owner)
            })
            .collect()
    }
}
