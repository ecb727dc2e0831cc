//! The `fork` op: fork(2) the worker and read the child's smaps while it
//! lives, for the next `layout` to answer with.
//!
//! Invariant: the child runs nothing but async-signal-safe calls (the worker
//! has a thread, the uffd monitor), touches no memory the worker relies on,
//! and is killed and reaped before the op answers: after a `fork` op the
//! worker has no child, and its own address space is as before.

use std::ffi::c_void;
use std::os::fd::AsRawFd;

use uffd_vocab::PteKind;

use super::arena::Worker;

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
        // Up to the upper guard, as the worker reads its own.
        let mut text = Vec::new();
        let read = std::fs::File::open(format!("/proc/{pid}/smaps"))
            .and_then(|f| super::smaps::read_to_guard(&f, &self.guard_marker, &mut text));
        let mut ptes = match &read {
            Ok(()) => self.ptes(Some(pid), &self.readable_in(&text)),
            Err(e) => Err(format!("reading the fork child's smaps: {e}")),
        };
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
        read.map_err(|e| format!("reading the fork child's smaps: {e}"))?;
        self.child_smaps = Some(text);
        self.child_ptes = Some(ptes);
        Ok(())
    }
}
