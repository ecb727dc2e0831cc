//! Other kernels than the running one: boot a kernel image under
//! `qemu-system-x86_64` with a small initramfs the tool builds itself, and
//! run a task there (a one-shot command, or the kernel backend's worker).
//!
//! - [`kernels`]: the cache of kernel images, and fetching Debian's images
//!   of a series (`6.1`, `6.12`, `7.x`) with a private apt configuration;
//! - [`initramfs`]: busybox-static, the harness binary, the libraries it
//!   links and an `/init` that runs the task named on the kernel command
//!   line;
//! - [`qemu`]: booting, the protocol channel, one-shot tasks, and the
//!   release of an image read from its header (no boot needed);
//! - [`backend`]: the kernel backend with its worker in a guest
//!   ([`backend::KernelTarget`]), for `--vm IMAGE`.
//!
//! # The worker protocol over a serial port
//!
//! The guest has two serial ports. `ttyS0` is the kernel's console: qemu
//! writes it to a log file ([`qemu::Vm::console`]) that error messages quote.
//! `ttyS1` is the protocol: qemu connects it to its own stdin and stdout
//! (`-chardev stdio,id=proto,signal=off -serial chardev:proto`), and the
//! guest's `/init` puts it in raw mode (`stty -F /dev/ttyS1 raw -echo`: no
//! echo, no line editing, no `\n` to `\r\n`) and runs the task with its
//! stdin and stdout on it, its stderr on the console:
//!
//! ```text
//! host process  --stdin-->  qemu  --ttyS1-->  uffd-check __worker PAGES (guest)
//!               <--stdout--       <--ttyS1--
//! ```
//!
//! So a host process talks to the guest's worker through qemu's stdin and
//! stdout exactly as it talks to a local worker through pipes: the same
//! lines (`ready BASE PAGES`, an op line then `ok NS`, `layout` then `vma`
//! lines up to `end`). Differences the caller must allow for: the first
//! line (`ready`) comes only after the guest booted (seconds to a minute
//! under TCG on a loaded machine: use [`qemu::BOOT_TIMEOUT`], not the
//! worker's per-request timeout); nothing may be sent before `ready` (the
//! UART drops what arrives before the guest opens it); the worker never
//! sees end of input (a serial port has none), so ending means killing
//! qemu ([`qemu::Vm`] does on drop); a crash of the worker shows as
//! `__exit N` on the channel after which the guest powers off.
//! [`qemu::worker_command`] gives the command that boots such a guest, and
//! [`backend::worker_command`] the recipe the kernel backend starts (and
//! restarts) its worker from.

pub mod backend;
mod cpio;
pub mod initramfs;
pub mod kernels;
pub mod qemu;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The programs the VM needs, each with the Debian package that has it.
pub const DEPENDENCIES: [(&str, &str); 2] = [
    ("qemu-system-x86_64", "qemu-system-x86"),
    ("busybox", "busybox-static"),
];

/// The tool's cache directory: `$UFFD_CHECK_CACHE`, else
/// `$XDG_CACHE_HOME/uffd-check`, else `~/.cache/uffd-check` (not created here).
pub fn cache_dir() -> Result<PathBuf, String> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(d) = var("UFFD_CHECK_CACHE") {
        return Ok(d);
    }
    if let Some(d) = var("XDG_CACHE_HOME") {
        return Ok(d.join("uffd-check"));
    }
    var("HOME")
        .map(|h| h.join(".cache/uffd-check"))
        .ok_or_else(|| "vm: no cache directory: set UFFD_CHECK_CACHE or HOME".to_string())
}

/// Checks up front that the VM's programs are installed: `Err` names each
/// missing Debian package (`.ci/install-vm-deps` installs them all).
pub fn check_dependencies() -> Result<(), String> {
    let mut missing = Vec::new();
    for (prog, package) in DEPENDENCIES {
        if which(prog).is_none() {
            missing.push(package);
        }
    }
    if let Some(bb) = which("busybox") {
        if !is_static(&bb) {
            missing.push("busybox-static");
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "vm: missing Debian package(s): {} (apt-get install --no-install-recommends {})",
            missing.join(", "),
            missing.join(" ")
        ))
    }
}

/// The first `prog` on `$PATH` (or `/usr/bin`, `/bin`, `/usr/sbin`, `/sbin`).
pub fn which(prog: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/bin", "/bin", "/usr/sbin", "/sbin"])
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(prog))
        .find(|p| p.is_file());
    found
}

/// Is the ELF file at `path` statically linked (no `PT_INTERP` program
/// header)? A file that cannot be read or parsed counts as not static.
pub fn is_static(path: &Path) -> bool {
    let Ok(b) = std::fs::read(path) else {
        return false;
    };
    let u16_at = |o: usize| b.get(o..o + 2).map(|s| u16::from_le_bytes([s[0], s[1]]));
    let u64_at = |o: usize| {
        b.get(o..o + 8)
            .map(|s| u64::from_le_bytes(s.try_into().expect("8 bytes")))
    };
    if b.get(..5) != Some(b"\x7fELF\x02") {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    (0..phnum as usize).all(|i| {
        let at = phoff as usize + i * phentsize as usize;
        b.get(at..at + 4).is_some_and(|t| t != [3, 0, 0, 0])
    })
}

/// Runs `cmd` to completion with its output captured, killing it after
/// `timeout`; its stdin is what the caller set (inherited by default).
/// `what` names the step in the error.
pub fn run_bounded(mut cmd: Command, timeout: Duration, what: &str) -> Result<Output, String> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{what}: cannot start {:?}: {e}", cmd.get_program()))?;
    // Drain the pipes in threads, so a chatty child never blocks on them.
    let out = child.stdout.take().map(drain);
    let err = child.stderr.take().map(drain);
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{what}: killed after {}s", timeout.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("{what}: {e}")),
        }
    };
    let join = |h: Option<std::thread::JoinHandle<Vec<u8>>>| {
        h.and_then(|h| h.join().ok()).unwrap_or_default()
    };
    let output = Output {
        status,
        stdout: join(out),
        stderr: join(err),
    };
    if output.status.success() {
        Ok(output)
    } else {
        Err(format!(
            "{what}: {} ({})",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

fn drain(mut r: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = r.read_to_end(&mut v);
        v
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dynamic_binary_is_not_static() {
        // The test binary itself links libc.
        let me = std::env::current_exe().unwrap();
        assert!(!is_static(&me));
        assert!(!is_static(Path::new("/nonexistent")));
    }

    #[test]
    fn bounded_commands_are_killed() {
        let mut c = Command::new("sleep");
        c.arg("10");
        let t = Instant::now();
        let e = run_bounded(c, Duration::from_millis(200), "sleeping").unwrap_err();
        assert!(e.contains("killed"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(5));
    }
}
