//! Which uffd owns a registered VMA. smaps shows a VMA's uffd bits but
//! not its ctx, so the worker asks the kernel: of the worker's own open
//! uffds, or, for a fork child's VMA, of the fds the FORK events gave
//! (each a uffd on the child's mm, so its probe acts on the child's VMAs).
//!
//! Invariant: the probe changes nothing. UFFDIO_REGISTER of exactly one
//! registered VMA with exactly its uffd bits is EBUSY from every ctx but
//! the owner (the VMA is registered elsewhere) and, from the owner, a no-op
//! (the kernel skips a VMA already registered by this ctx with these bits):
//! the probe leaves every VMA as it was.

use std::os::fd::{AsFd, BorrowedFd};

use rustix::io::Errno;

use uffd_vocab::Mode;

use super::arena::Worker;
use crate::sys;

impl Worker {
    /// Which open uffd owns the VMA `[addr, addr+len)` that has the uffd
    /// bits `mode` (see [`owner_among`]).
    pub(super) fn owner(&self, addr: u64, len: u64, mode: Mode) -> Result<u8, String> {
        let open = self.uffd.iter().enumerate();
        let fds = open.filter_map(|(c, slot)| slot.as_ref().map(|(fd, _)| (c as u8, fd.as_fd())));
        owner_among(fds, addr, len, mode)
    }
}

/// Which of `fds` (each with its ctx) owns the VMA `[addr, addr+len)` that
/// has the uffd bits `mode`: the one whose UFFDIO_REGISTER of it succeeds
/// (see the module docs), so the kernel itself names the owner.
pub(super) fn owner_among<'a>(
    fds: impl IntoIterator<Item = (u8, BorrowedFd<'a>)>,
    addr: u64,
    len: u64,
    mode: Mode,
) -> Result<u8, String> {
    let mut seen = Vec::new();
    for (c, fd) in fds {
        match sys::uffd_register(fd, addr, len, mode.0) {
            Ok(()) => return Ok(c),
            Err(Errno::BUSY) => {}
            Err(e) => seen.push(format!("ctx {c}: errno {}", e.raw_os_error())),
        }
    }
    Err(format!(
        "no uffd owns this registered VMA (probe: EBUSY from every ctx{}{})",
        if seen.is_empty() { "" } else { "; " },
        seen.join(", ")
    ))
}
