//! The raw Linux interfaces the kernel backend needs: userfaultfd(2) and its
//! ioctls (the libc crate does not define them), errno helpers.

use std::io;

/// `UFFD_API`: the only API version.
pub const UFFD_API: u64 = 0xAA;
/// `_IOWR(0xAA, 0x3F, struct uffdio_api)` (24 bytes).
pub const UFFDIO_API: u64 = 0xC018_AA3F;
/// `_IOWR(0xAA, 0x00, struct uffdio_register)` (32 bytes).
pub const UFFDIO_REGISTER: u64 = 0xC020_AA00;
/// `_IOR(0xAA, 0x01, struct uffdio_range)` (16 bytes).
pub const UFFDIO_UNREGISTER: u64 = 0x8010_AA01;
/// `_IO(0xAA, 0x00)` on /dev/userfaultfd: a new userfaultfd.
pub const USERFAULTFD_IOC_NEW: u64 = 0xAA00;

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

/// The errno of the last failed libc call.
pub fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// A new userfaultfd (O_CLOEXEC|O_NONBLOCK) through the syscall, or through
/// /dev/userfaultfd when the syscall is refused; not yet through UFFDIO_API.
pub fn userfaultfd_raw() -> Result<i32, String> {
    let flags = libc::O_CLOEXEC | libc::O_NONBLOCK;
    // SAFETY: userfaultfd(2) takes one int of flags and returns an fd.
    let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, flags) } as i32;
    if fd >= 0 {
        return Ok(fd);
    }
    let sys_err = io::Error::last_os_error();
    // SAFETY: a plain open of a NUL-terminated path.
    let dev = unsafe { libc::open(c"/dev/userfaultfd".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if dev < 0 {
        return Err(format!(
            "userfaultfd(2) failed ({sys_err}) and /dev/userfaultfd cannot be opened ({})",
            io::Error::last_os_error()
        ));
    }
    // SAFETY: USERFAULTFD_IOC_NEW takes the flags as its argument.
    let fd = unsafe { libc::ioctl(dev, USERFAULTFD_IOC_NEW as _, flags) };
    let dev_err = io::Error::last_os_error();
    // SAFETY: dev is our fd.
    unsafe { libc::close(dev) };
    if fd < 0 {
        return Err(format!(
            "userfaultfd(2) failed ({sys_err}) and USERFAULTFD_IOC_NEW on /dev/userfaultfd failed ({dev_err})"
        ));
    }
    Ok(fd)
}

/// A userfaultfd after a successful UFFDIO_API handshake (features 0).
pub fn userfaultfd() -> Result<i32, String> {
    let fd = userfaultfd_raw()?;
    let mut api = UffdioApi {
        api: UFFD_API,
        ..Default::default()
    };
    // SAFETY: UFFDIO_API reads and writes one struct uffdio_api.
    let r = unsafe { libc::ioctl(fd, UFFDIO_API as _, &mut api as *mut UffdioApi) };
    if r < 0 {
        let e = io::Error::last_os_error();
        // SAFETY: fd is ours.
        unsafe { libc::close(fd) };
        return Err(format!("UFFDIO_API failed: {e}"));
    }
    Ok(fd)
}

/// UFFDIO_REGISTER; the errno on failure.
pub fn uffd_register(fd: i32, start: u64, len: u64, mode: u64) -> Result<(), i32> {
    let mut reg = UffdioRegister {
        range: UffdioRange { start, len },
        mode,
        ioctls: 0,
    };
    // SAFETY: UFFDIO_REGISTER reads and writes one struct uffdio_register.
    let r = unsafe { libc::ioctl(fd, UFFDIO_REGISTER as _, &mut reg as *mut UffdioRegister) };
    if r < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

/// UFFDIO_UNREGISTER; the errno on failure.
pub fn uffd_unregister(fd: i32, start: u64, len: u64) -> Result<(), i32> {
    let mut range = UffdioRange { start, len };
    // SAFETY: UFFDIO_UNREGISTER reads one struct uffdio_range.
    let r = unsafe { libc::ioctl(fd, UFFDIO_UNREGISTER as _, &mut range as *mut UffdioRange) };
    if r < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}
