//! The raw Linux interfaces the kernel backend needs that rustix does not
//! wrap: userfaultfd(2) and its ioctls (through rustix's ioctl support), and
//! `process_vm_writev` and `process_vm_readv` (through libc) for one-byte
//! writes and reads. The structs and
//! ioctl numbers come from `linux/userfaultfd.h` (neither rustix nor libc
//! defines them); the opcodes are composed with [`rustix::ioctl::opcode`]
//! and checked against the header's numbers at compile time.
//!
//! Invariant: every function here acts only on the fd or the address it is
//! given, and turns a failure into an errno or a message, never a panic.

use std::ffi::c_void;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::ioctl::{ioctl, opcode, Ioctl, IoctlOutput, Opcode, Setter, Updater};
use rustix::mm::UserfaultfdFlags;

/// `UFFD_USER_MODE_ONLY`: report only faults from user mode (rustix has no
/// name for it).
const USER_MODE_ONLY: UserfaultfdFlags = UserfaultfdFlags::from_bits_retain(1);

/// `UFFD_API`: the only API version.
pub const UFFD_API: u64 = 0xAA;
/// The userfaultfd ioctl group, `UFFDIO`.
const UFFDIO: u8 = 0xAA;
/// `_IOWR(0xAA, 0x3F, struct uffdio_api)`.
pub const UFFDIO_API: Opcode = opcode::read_write::<UffdioApi>(UFFDIO, 0x3F);
/// `_IOWR(0xAA, 0x00, struct uffdio_register)`.
pub const UFFDIO_REGISTER: Opcode = opcode::read_write::<UffdioRegister>(UFFDIO, 0x00);
/// `_IOR(0xAA, 0x01, struct uffdio_range)`: the kernel only reads the range.
pub const UFFDIO_UNREGISTER: Opcode = opcode::read::<UffdioRange>(UFFDIO, 0x01);
/// `_IOWR(0xAA, 0x06, struct uffdio_writeprotect)`.
pub const UFFDIO_WRITEPROTECT: Opcode = opcode::read_write::<UffdioWriteprotect>(UFFDIO, 0x06);
/// `UFFDIO_WRITEPROTECT_MODE_WP`: set the bit (clear it without).
pub const UFFDIO_WRITEPROTECT_MODE_WP: u64 = 1;
/// `_IOR(0xAA, 0x02, struct uffdio_range)`: wakes the faults waiting in
/// the range.
pub const UFFDIO_WAKE: Opcode = opcode::read::<UffdioRange>(UFFDIO, 0x02);
/// `_IOWR(0xAA, 0x03, struct uffdio_copy)`.
pub const UFFDIO_COPY: Opcode = opcode::read_write::<UffdioCopy>(UFFDIO, 0x03);
/// `_IOWR(0xAA, 0x04, struct uffdio_zeropage)`.
pub const UFFDIO_ZEROPAGE: Opcode = opcode::read_write::<UffdioFill>(UFFDIO, 0x04);
/// `_IOWR(0xAA, 0x05, struct uffdio_move)`.
pub const UFFDIO_MOVE: Opcode = opcode::read_write::<UffdioCopy>(UFFDIO, 0x05);
/// `_IOWR(0xAA, 0x07, struct uffdio_continue)`.
pub const UFFDIO_CONTINUE: Opcode = opcode::read_write::<UffdioFill>(UFFDIO, 0x07);
/// `_IOWR(0xAA, 0x08, struct uffdio_poison)`.
pub const UFFDIO_POISON: Opcode = opcode::read_write::<UffdioFill>(UFFDIO, 0x08);
/// `UFFDIO_COPY_MODE_WP` and `UFFDIO_CONTINUE_MODE_WP` (both bit 1).
pub const FILL_MODE_WP: u64 = 1 << 1;
/// `UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES`.
pub const UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES: u64 = 1 << 1;
/// `_IO(0xAA, 0x00)` on /dev/userfaultfd: a new userfaultfd.
pub const USERFAULTFD_IOC_NEW: Opcode = opcode::none(UFFDIO, 0x00);

// The numbers of linux/userfaultfd.h on this ABI.
const _: () = assert!(UFFDIO_API == 0xC018_AA3F);
const _: () = assert!(UFFDIO_REGISTER == 0xC020_AA00);
const _: () = assert!(UFFDIO_UNREGISTER == 0x8010_AA01);
const _: () = assert!(USERFAULTFD_IOC_NEW == 0xAA00);
const _: () = assert!(UFFDIO_WRITEPROTECT == 0xC018_AA06);
const _: () = assert!(UFFDIO_WAKE == 0x8010_AA02);
const _: () = assert!(UFFDIO_COPY == 0xC028_AA03);
const _: () = assert!(UFFDIO_ZEROPAGE == 0xC020_AA04);
const _: () = assert!(UFFDIO_MOVE == 0xC028_AA05);
const _: () = assert!(UFFDIO_CONTINUE == 0xC020_AA07);
const _: () = assert!(UFFDIO_POISON == 0xC020_AA08);

/// `struct uffdio_copy`, and `struct uffdio_move` (the same shape: dst,
/// src, len, mode, and what was done, or a negative errno).
#[repr(C)]
#[derive(Default)]
pub struct UffdioCopy {
    pub dst: u64,
    pub src: u64,
    pub len: u64,
    pub mode: u64,
    pub done: i64,
}

/// `struct uffdio_zeropage`, `uffdio_continue` and `uffdio_poison` (the
/// same shape: a range, a mode, and what was done, or a negative errno).
#[repr(C)]
#[derive(Default)]
pub struct UffdioFill {
    pub range: UffdioRange,
    pub mode: u64,
    pub done: i64,
}

#[repr(C)]
#[derive(Default)]
pub struct UffdioWriteprotect {
    pub range: UffdioRange,
    pub mode: u64,
}

#[repr(C)]
#[derive(Default)]
pub struct UffdioApi {
    pub api: u64,
    pub features: u64,
    pub ioctls: u64,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
pub struct UffdioRange {
    pub start: u64,
    pub len: u64,
}

#[repr(C)]
#[derive(Default)]
pub struct UffdioRegister {
    pub range: UffdioRange,
    pub mode: u64,
    pub ioctls: u64,
}

/// `USERFAULTFD_IOC_NEW`: the flags go in the argument itself and the new fd
/// comes back as the ioctl's return value, a shape none of rustix's ioctl
/// patterns has.
struct NewUffd(UserfaultfdFlags);

// SAFETY: USERFAULTFD_IOC_NEW takes the flags as an integer argument, touches
// no memory, and returns a new fd that nobody else owns.
unsafe impl Ioctl for NewUffd {
    type Output = OwnedFd;

    const IS_MUTATING: bool = false;

    fn opcode(&self) -> Opcode {
        USERFAULTFD_IOC_NEW
    }

    fn as_ptr(&mut self) -> *mut c_void {
        self.0.bits() as usize as *mut c_void
    }

    unsafe fn output_from_ptr(out: IoctlOutput, _: *mut c_void) -> rustix::io::Result<OwnedFd> {
        // SAFETY: a successful USERFAULTFD_IOC_NEW returns a new fd.
        Ok(unsafe { OwnedFd::from_raw_fd(out) })
    }
}

/// A new userfaultfd (O_CLOEXEC|O_NONBLOCK) through the syscall, or through
/// /dev/userfaultfd when the syscall is refused; not yet through UFFDIO_API.
/// `true` with it: it reports faults from user mode only
/// (UFFD_USER_MODE_ONLY), so the kernel's own accesses never deliver one.
pub fn userfaultfd_raw() -> Result<(OwnedFd, bool), String> {
    let flags = UserfaultfdFlags::CLOEXEC | UserfaultfdFlags::NONBLOCK;
    // SAFETY: the fd lets us handle faults of our own memory: the worker
    // registers arena ranges only, and its monitor thread resolves the
    // faults delivered (a uffd opened with `faults`) one page at a time.
    let sys_err = match unsafe { rustix::mm::userfaultfd(flags) } {
        Ok(fd) => return Ok((fd, false)),
        Err(e) => io::Error::from(e),
    };
    // An unprivileged user with vm.unprivileged_userfaultfd=0 may still ask
    // for faults from user mode only (UFFD_USER_MODE_ONLY, Linux 5.11+),
    // which is all that register/unregister need (but the kernel's own
    // accesses, process_vm_writev's, then never deliver a fault: SIGBUS,
    // EFAULT, even with `faults`).
    // SAFETY: as above.
    if let Ok(fd) = unsafe { rustix::mm::userfaultfd(flags | USER_MODE_ONLY) } {
        return Ok((fd, true));
    }
    let dev = rustix::fs::open(
        "/dev/userfaultfd",
        OFlags::RDWR | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| {
        format!(
            "userfaultfd(2) failed ({sys_err}) and /dev/userfaultfd cannot be opened ({})",
            io::Error::from(e)
        )
    })?;
    // SAFETY: USERFAULTFD_IOC_NEW on /dev/userfaultfd, flags as its argument.
    let fd = unsafe { ioctl(&dev, NewUffd(flags)) }.map_err(|e| {
        format!(
            "userfaultfd(2) failed ({sys_err}) and USERFAULTFD_IOC_NEW on /dev/userfaultfd failed ({})",
            io::Error::from(e)
        )
    })?;
    Ok((fd, false))
}

/// `UFFD_FEATURE_SIGBUS`: a fault userfaultfd would report gets SIGBUS
/// instead (EFAULT for a kernel access such as `process_vm_writev`), so
/// nothing ever waits for a monitor.
pub const UFFD_FEATURE_SIGBUS: u64 = 1 << 7;

/// `UFFD_FEATURE_EVENT_REMAP`: mremap keeps a moved VMA's registration
/// and posts a REMAP event that a reader must read before mremap returns.
pub const UFFD_FEATURE_EVENT_REMAP: u64 = 1 << 2;

/// The UFFDIO_API feature bits of an `open`'s features: the
/// UFFD_FEATURE_EVENT_* bits, FORK (1 << 1), REMAP (1 << 2), REMOVE
/// (1 << 3), UNMAP (1 << 6); and UFFD_FEATURE_SIGBUS unless `faults` is
/// among them (rule 42: then a fault is delivered to the uffd's reader and
/// waits for it).
pub fn feature_bits(f: uffd_vocab::Features) -> u64 {
    use uffd_vocab::Features;
    let sigbus = if f.contains(Features::FAULTS) {
        0
    } else {
        UFFD_FEATURE_SIGBUS
    };
    [
        (Features::FORK, 1 << 1),
        (Features::REMAP, UFFD_FEATURE_EVENT_REMAP),
        (Features::REMOVE, 1 << 3),
        (Features::UNMAP, 1 << 6),
    ]
    .iter()
    .filter(|(x, _)| f.contains(*x))
    .fold(sigbus, |bits, (_, b)| bits | b)
}

/// `sizeof(struct uffd_msg)`: what one read of a uffd returns.
pub const UFFD_MSG_SIZE: usize = 32;

/// `UFFD_EVENT_PAGEFAULT`: the `event` byte of a page fault's message.
pub const UFFD_EVENT_PAGEFAULT: u8 = 0x12;

/// A `struct uffd_msg`, decoded: `event` (a u8 at offset 0) and its `arg`
/// (at offset 8), addresses and lengths in bytes as the kernel sent them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UffdMsg {
    /// UFFD_EVENT_PAGEFAULT (0x12), sent only without UFFD_FEATURE_SIGBUS:
    /// `arg.pagefault.{flags, address}` (the address rounded down to its
    /// page: no UFFD_FEATURE_EXACT_ADDRESS).
    Fault { flags: u64, address: u64 },
    /// UFFD_EVENT_FORK (0x13): `arg.fork.ufd`, a new fd the read installed
    /// in the reader's process (a uffd on the child's mm).
    Fork { ufd: u32 },
    /// UFFD_EVENT_REMAP (0x14): `arg.remap.{from, to, len}`.
    Remap { from: u64, to: u64, len: u64 },
    /// UFFD_EVENT_REMOVE (0x15): `arg.remove.{start, end}`.
    Remove { start: u64, end: u64 },
    /// UFFD_EVENT_UNMAP (0x16): `arg.remove.{start, end}`.
    Unmap { start: u64, end: u64 },
    /// Anything else: its event byte.
    Other(u8),
}

impl UffdMsg {
    /// Decodes one message as read from a uffd.
    pub fn decode(m: &[u8; UFFD_MSG_SIZE]) -> UffdMsg {
        let u64_at = |o: usize| u64::from_ne_bytes(m[o..o + 8].try_into().expect("8 bytes"));
        match m[0] {
            UFFD_EVENT_PAGEFAULT => UffdMsg::Fault {
                flags: u64_at(8),
                address: u64_at(16),
            },
            0x13 => UffdMsg::Fork {
                ufd: u32::from_ne_bytes(m[8..12].try_into().expect("4 bytes")),
            },
            0x14 => UffdMsg::Remap {
                from: u64_at(8),
                to: u64_at(16),
                len: u64_at(24),
            },
            0x15 => UffdMsg::Remove {
                start: u64_at(8),
                end: u64_at(16),
            },
            0x16 => UffdMsg::Unmap {
                start: u64_at(8),
                end: u64_at(16),
            },
            e => UffdMsg::Other(e),
        }
    }
}

/// A userfaultfd after a successful UFFDIO_API handshake asking for the
/// feature bits `features` ([`feature_bits`]: UFFD_FEATURE_SIGBUS is one
/// of them unless the ctx is open with `faults`).
pub fn userfaultfd(features: u64) -> Result<OwnedFd, String> {
    let (fd, _) = userfaultfd_raw()?;
    uffd_api(fd.as_fd(), features)
        .map_err(|e| format!("UFFDIO_API failed: {}", io::Error::from(e)))?;
    Ok(fd)
}

/// The UFFDIO_API handshake of a new userfaultfd, asking for the feature
/// bits `features` (EPERM: a feature this process may not have, such as
/// UFFD_FEATURE_EVENT_FORK without CAP_SYS_PTRACE).
pub fn uffd_api(fd: BorrowedFd<'_>, features: u64) -> Result<(), Errno> {
    let mut api = UffdioApi {
        api: UFFD_API,
        features,
        ..Default::default()
    };
    // SAFETY: UFFDIO_API reads and writes one struct uffdio_api.
    unsafe { ioctl(fd, Updater::<UFFDIO_API, UffdioApi>::new(&mut api)) }
}

/// UFFDIO_REGISTER of `[start, start+len)` with `mode` passed through as is.
pub fn uffd_register(fd: BorrowedFd<'_>, start: u64, len: u64, mode: u64) -> Result<(), Errno> {
    let mut reg = UffdioRegister {
        range: UffdioRange { start, len },
        mode,
        ioctls: 0,
    };
    // SAFETY: UFFDIO_REGISTER reads and writes one struct uffdio_register.
    unsafe {
        ioctl(
            fd,
            Updater::<UFFDIO_REGISTER, UffdioRegister>::new(&mut reg),
        )
    }
}

/// UFFDIO_WRITEPROTECT of `[start, start+len)`: sets (`on`) or clears the
/// uffd-wp bit.
pub fn uffd_writeprotect(fd: BorrowedFd<'_>, start: u64, len: u64, on: bool) -> Result<(), Errno> {
    let mut wp = UffdioWriteprotect {
        range: UffdioRange { start, len },
        mode: if on { UFFDIO_WRITEPROTECT_MODE_WP } else { 0 },
    };
    // SAFETY: UFFDIO_WRITEPROTECT reads and writes one struct
    // uffdio_writeprotect.
    unsafe {
        ioctl(
            fd,
            Updater::<UFFDIO_WRITEPROTECT, UffdioWriteprotect>::new(&mut wp),
        )
    }
}

/// UFFDIO_COPY (`src` is a buffer of ours of `len` bytes) or UFFDIO_MOVE
/// (`op` says which) of `len` bytes at `dst`, with `mode`.
pub fn uffd_copy_or_move(
    fd: BorrowedFd<'_>,
    op: Opcode,
    dst: u64,
    src: u64,
    len: u64,
    mode: u64,
) -> Result<(), Errno> {
    let mut arg = UffdioCopy {
        dst,
        src,
        len,
        mode,
        done: 0,
    };
    // SAFETY: UFFDIO_COPY and UFFDIO_MOVE read and write one struct of
    // this shape; UFFDIO_COPY reads `len` bytes at `src`, which the caller
    // owns; UFFDIO_MOVE touches only this process's own pages at `src` and
    // `dst`, both in the arena.
    match op {
        UFFDIO_COPY => unsafe { ioctl(fd, Updater::<UFFDIO_COPY, UffdioCopy>::new(&mut arg)) },
        _ => unsafe { ioctl(fd, Updater::<UFFDIO_MOVE, UffdioCopy>::new(&mut arg)) },
    }
}

/// UFFDIO_ZEROPAGE, UFFDIO_CONTINUE or UFFDIO_POISON (`op`) of
/// `[start, start+len)` with `mode`.
pub fn uffd_fill(
    fd: BorrowedFd<'_>,
    op: Opcode,
    start: u64,
    len: u64,
    mode: u64,
) -> Result<(), Errno> {
    let mut arg = UffdioFill {
        range: UffdioRange { start, len },
        mode,
        done: 0,
    };
    // SAFETY: each of these reads and writes one struct uffdio_zeropage,
    // uffdio_continue or uffdio_poison (one shape), and acts on the range.
    match op {
        UFFDIO_ZEROPAGE => unsafe {
            ioctl(fd, Updater::<UFFDIO_ZEROPAGE, UffdioFill>::new(&mut arg))
        },
        UFFDIO_CONTINUE => unsafe {
            ioctl(fd, Updater::<UFFDIO_CONTINUE, UffdioFill>::new(&mut arg))
        },
        _ => unsafe { ioctl(fd, Updater::<UFFDIO_POISON, UffdioFill>::new(&mut arg)) },
    }
}

/// A one-byte write (`write`) or read at `addr` from user space, as
/// `process_vm_writev` or `process_vm_readv` to this very process: the
/// kernel faults the page in like a user store or load would, and a fault
/// that fails (no VMA, no permission, userfaultfd refusing it with SIGBUS)
/// comes back as EFAULT instead of a signal. A fault delivered to a uffd
/// opened with `faults` waits until the monitor resolves it.
pub fn access_byte(addr: u64, write: bool) -> Result<(), Errno> {
    let mut byte = [0x5au8];
    let local = libc::iovec {
        iov_base: byte.as_mut_ptr() as *mut c_void,
        iov_len: 1,
    };
    let remote = libc::iovec {
        iov_base: addr as *mut c_void,
        iov_len: 1,
    };
    // SAFETY: `local` is one byte of ours, readable and writable; the
    // kernel checks the remote range itself (it is never dereferenced
    // here), and the pid is our own. rustix has neither call.
    let n = unsafe {
        if write {
            libc::process_vm_writev(libc::getpid(), &local, 1, &remote, 1, 0)
        } else {
            libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0)
        }
    };
    match n {
        1 => Ok(()),
        0 => Err(Errno::FAULT),
        _ => Err(Errno::from_raw_os_error(
            io::Error::last_os_error().raw_os_error().unwrap_or(14),
        )),
    }
}

/// UFFDIO_UNREGISTER of `[start, start+len)`.
pub fn uffd_unregister(fd: BorrowedFd<'_>, start: u64, len: u64) -> Result<(), Errno> {
    let range = UffdioRange { start, len };
    // SAFETY: UFFDIO_UNREGISTER reads one struct uffdio_range.
    unsafe { ioctl(fd, Setter::<UFFDIO_UNREGISTER, UffdioRange>::new(range)) }
}
