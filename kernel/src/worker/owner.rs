//! Which open uffd owns a registered VMA. smaps shows a VMA's uffd bits but
//! not its ctx, so the worker asks the kernel.
//!
//! Invariant: the probe changes nothing. UFFDIO_REGISTER of exactly one
//! registered VMA with exactly its uffd bits is EBUSY from every ctx but
//! the owner (the VMA is registered elsewhere) and, from the owner, a no-op
//! (the kernel skips a VMA already registered by this ctx with these bits):
//! the probe leaves every VMA as it was.

use std::os::fd::AsFd;

use rustix::io::Errno;

use uffd_vocab::Mode;

use super::arena::Worker;
use crate::sys;

impl Worker {
    /// Which open uffd owns the VMA `[addr, addr+len)` that has the uffd
    /// bits `mode`: the one ctx whose UFFDIO_REGISTER of it succeeds (see
    /// the module docs), so the kernel itself names the owner.
    pub(super) fn owner(&self, addr: u64, len: u64, mode: Mode) -> Result<u8, String> {
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
}
