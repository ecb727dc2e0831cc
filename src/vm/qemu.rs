//! Booting a kernel image under qemu-system-x86_64 with the tool's
//! initramfs, and talking to the task it runs over the second serial port
//! (see the module docs of [`crate::vm`] for the channel).

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long a guest may take from start to the task's first line by
/// default: TCG on a loaded machine with two cores boots a Debian kernel
/// in 3 s to a minute. `UFFD_CHECK_VM_TIMEOUT` (seconds) overrides it.
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(120);

/// Guest memory in MB by default.
pub const DEFAULT_MEM_MB: u32 = 512;

/// The boot timeout in force: `UFFD_CHECK_VM_TIMEOUT` seconds, or
/// [`BOOT_TIMEOUT`].
pub fn boot_timeout() -> Duration {
    std::env::var("UFFD_CHECK_VM_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(BOOT_TIMEOUT)
}

/// What to boot.
#[derive(Clone, Debug)]
pub struct VmConfig {
    /// The kernel image (bzImage, e.g. Debian's `/boot/vmlinuz-*`).
    pub image: PathBuf,
    /// The initramfs ([`crate::vm::initramfs::build`]).
    pub initramfs: PathBuf,
    /// Guest memory in MB.
    pub mem_mb: u32,
}

/// The command that boots `cfg` and runs `task` (words, passed to the
/// guest's `/init` after `--` on the kernel command line) with its stdin
/// and stdout on the guest's ttyS1, which is qemu's stdin and stdout; the
/// kernel console goes to the file `console`. TCG unless
/// `UFFD_CHECK_VM_ACCEL=kvm`. The command dies with the thread that
/// spawns it (PR_SET_PDEATHSIG), so a qemu is never left behind.
pub fn command(cfg: &VmConfig, console: &Path, task: &[&str]) -> Result<Command, String> {
    if let Some(w) = task
        .iter()
        .find(|w| w.is_empty() || w.contains(|c: char| c.is_whitespace() || c == '"'))
    {
        return Err(format!(
            "vm: task word {w:?} cannot go on a kernel command line"
        ));
    }
    let (accel, cpu) = match std::env::var("UFFD_CHECK_VM_ACCEL").as_deref() {
        Ok("kvm") => ("kvm", "host"),
        _ => ("tcg", "max,pku=off"),
    };
    let append = format!("console=ttyS0 quiet panic=-1 -- {}", task.join(" "));
    let mut c = Command::new("qemu-system-x86_64");
    c.args(["-accel", accel, "-cpu", cpu, "-smp", "1", "-m"])
        .arg(cfg.mem_mb.to_string())
        .arg("-kernel")
        .arg(&cfg.image)
        .arg("-initrd")
        .arg(&cfg.initramfs)
        .args(["-append", &append])
        .args([
            "-nographic",
            "-no-reboot",
            "-nodefaults",
            "-monitor",
            "none",
        ])
        .args(["-chardev", "stdio,id=proto,signal=off", "-serial"])
        .arg(format!("file:{}", console.display()))
        .args(["-serial", "chardev:proto"]);
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        c.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    Ok(c)
}

/// The command that boots `cfg` with the kernel worker (`uffd-check
/// __worker PAGES`) on the channel: for a backend that spawns its worker
/// from a command whose stdin and stdout speak the worker protocol.
pub fn worker_command(cfg: &VmConfig, console: &Path, pages: u64) -> Result<Command, String> {
    command(
        cfg,
        console,
        &["uffd-check", "__worker", &pages.to_string()],
    )
}

/// A fresh path for a console log in the temporary directory.
pub fn console_path() -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("uffd-check-vm-{}-{n}.log", std::process::id()))
}

/// A running guest. Dropping it kills qemu and removes the console log.
pub struct Vm {
    child: Child,
    console: PathBuf,
    stdin: Option<ChildStdin>,
    lines: Option<Lines>,
}

impl Vm {
    /// Boots `cfg` running `task` (see [`command`]); returns at once,
    /// without waiting for the guest.
    pub fn boot(cfg: &VmConfig, task: &[&str]) -> Result<Vm, String> {
        crate::vm::check_dependencies()?;
        let console = console_path();
        let mut child = command(cfg, &console, task)?
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("vm: cannot start qemu-system-x86_64: {e}"))?;
        let stdin = child.stdin.take();
        let lines = child.stdout.take().map(Lines::new);
        Ok(Vm {
            child,
            console,
            stdin,
            lines,
        })
    }

    /// The protocol channel: what is written to the stdin goes to the
    /// task's stdin, the lines are the task's stdout. Once only.
    pub fn take_channel(&mut self) -> Option<(ChildStdin, Lines)> {
        Some((self.stdin.take()?, self.lines.take()?))
    }

    /// The kernel console log (ttyS0).
    pub fn console(&self) -> &Path {
        &self.console
    }

    /// The last `n` lines of the console log, for error messages.
    pub fn console_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.console).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Kills qemu and reaps it; says how it ended.
    pub fn kill(&mut self) -> String {
        let _ = self.child.kill();
        match self.child.wait() {
            Ok(s) => format!("qemu {s}"),
            Err(e) => format!("qemu: {e}"),
        }
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.console);
    }
}

/// Lines read from a guest's channel, each wait bounded by a deadline.
pub struct Lines {
    out: ChildStdout,
    buf: Vec<u8>,
}

impl Lines {
    fn new(out: ChildStdout) -> Lines {
        Lines {
            out,
            buf: Vec::new(),
        }
    }

    /// The next line (without `\r` or `\n`), `Ok(None)` at the end of the
    /// channel (qemu exited), `Err` when `deadline` passes first.
    pub fn read_line(&mut self, deadline: Instant) -> Result<Option<String>, String> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                let text = String::from_utf8_lossy(&line[..i]);
                return Ok(Some(text.trim_end_matches('\r').to_string()));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err("no answer within the timeout".into());
            }
            let mut pfd = libc::pollfd {
                fd: self.out.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = left.as_millis().min(i32::MAX as u128) as i32;
            // SAFETY: one valid pollfd, for the duration of the call.
            if unsafe { libc::poll(&mut pfd, 1, ms.max(1)) } <= 0 {
                continue;
            }
            let mut chunk = [0u8; 4096];
            match self.out.read(&mut chunk) {
                Ok(0) => return Ok(None),
                Ok(k) => self.buf.extend_from_slice(&chunk[..k]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("reading the guest's channel: {e}")),
            }
        }
    }
}

/// Boots `cfg`, runs the one-shot `task` in the guest and returns its
/// standard output; `Err` when it exits non-zero, when the guest dies
/// first, or when `timeout` passes (then qemu is killed), with the end of
/// the kernel console.
pub fn run_task(cfg: &VmConfig, task: &[&str], timeout: Duration) -> Result<String, String> {
    let mut vm = Vm::boot(cfg, task)?;
    let (_stdin, mut lines) = vm.take_channel().expect("a fresh vm has its channel");
    let deadline = Instant::now() + timeout;
    let mut out = String::new();
    let fail = |vm: &mut Vm, why: String| {
        let how = vm.kill();
        let console = vm.console_tail(20);
        Err(format!(
            "vm: {} on {}: {why} ({how}); console:\n{console}",
            task.join(" "),
            cfg.image.display()
        ))
    };
    loop {
        match lines.read_line(deadline) {
            Ok(Some(l)) => match l.strip_prefix("__exit ") {
                Some("0") => return Ok(out),
                Some(n) => return fail(&mut vm, format!("exit status {n}, output {out:?}")),
                None => {
                    out.push_str(&l);
                    out.push('\n');
                }
            },
            Ok(None) => return fail(&mut vm, "the guest stopped before the task ended".into()),
            Err(e) => return fail(&mut vm, format!("{e} ({}s)", timeout.as_secs())),
        }
    }
}

/// The release of a kernel image (`6.1.0-57-amd64`), read from its bzImage
/// header without booting it: the setup header's `kernel_version` field
/// (at 0x20E) points, less 0x200, at the version string, whose first word
/// is the release.
pub fn image_release(image: &Path) -> Result<String, String> {
    let mut head = vec![0u8; 0x8000];
    let n = std::fs::File::open(image)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| format!("vm: reading {}: {e}", image.display()))?;
    head.truncate(n);
    release_from_header(&head).ok_or_else(|| {
        format!(
            "vm: {} is not a bzImage with a version string",
            image.display()
        )
    })
}

fn release_from_header(head: &[u8]) -> Option<String> {
    if head.get(0x202..0x206)? != b"HdrS" {
        return None;
    }
    let ptr = u16::from_le_bytes([*head.get(0x20E)?, *head.get(0x20F)?]) as usize;
    let s = head.get(ptr + 0x200..)?;
    let end = s.iter().position(|&b| b == 0 || b == b' ')?;
    let release = std::str::from_utf8(&s[..end]).ok()?;
    (!release.is_empty()).then(|| release.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_from_a_made_up_header() {
        let mut h = vec![0u8; 0x400];
        h[0x202..0x206].copy_from_slice(b"HdrS");
        h[0x20E..0x210].copy_from_slice(&0x100u16.to_le_bytes());
        h[0x300..0x31a].copy_from_slice(b"6.1.0-57-amd64 (debian) #1");
        assert_eq!(release_from_header(&h).as_deref(), Some("6.1.0-57-amd64"));
        h[0x202] = b'X';
        assert_eq!(release_from_header(&h), None);
    }

    #[test]
    fn task_words_are_checked() {
        let cfg = VmConfig {
            image: "/k".into(),
            initramfs: "/i".into(),
            mem_mb: 64,
        };
        assert!(command(&cfg, Path::new("/c"), &["echo", "a b"]).is_err());
        assert!(command(&cfg, Path::new("/c"), &["uname", "-r"]).is_ok());
    }
}
