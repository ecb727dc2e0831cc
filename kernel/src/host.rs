//! What this machine allows the kernel backend: whether userfaultfd can be
//! used at all, whether an arena of a given size fits the kernel's
//! overcommit accounting, and which kernel runs.
//!
//! Invariant: these only look (they read /proc, and open and close one
//! userfaultfd); a refusal always says why, so a test skips or a run stops
//! with a reason instead of a false alarm.

use uffd_vocab::Page;

/// Can this process use userfaultfd? `Err` says why not (not Linux, EPERM,
/// ENOSYS..., or `UFFD_CHECK_NO_KERNEL` set to leave the kernel out), for
/// tests that skip.
pub fn available() -> Result<(), String> {
    if std::env::var_os("UFFD_CHECK_NO_KERNEL").is_some() {
        return Err("UFFD_CHECK_NO_KERNEL is set".into());
    }
    #[cfg(not(target_os = "linux"))]
    {
        Err(format!(
            "userfaultfd is Linux-only; this is {}",
            std::env::consts::OS
        ))
    }
    #[cfg(target_os = "linux")]
    {
        match crate::sys::userfaultfd(crate::sys::UFFD_FEATURE_SIGBUS) {
            Ok(fd) => {
                drop(fd);
                Ok(())
            }
            Err(e) => {
                let hint = if e.contains("ENOSYS") || e.contains("not implemented") {
                    " (the kernel is built without CONFIG_USERFAULTFD)"
                } else if e.contains("not permitted") || e.contains("denied") {
                    " (vm.unprivileged_userfaultfd=0 needs CAP_SYS_PTRACE, or read-write access to /dev/userfaultfd)"
                } else {
                    ""
                };
                Err(format!("userfaultfd cannot be used: {e}{hint}"))
            }
        }
    }
}

/// The running kernel's release (`uname -r`), for reports.
pub fn release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| format!("unknown ({})", std::env::consts::OS))
}

/// Can this machine map an arena of `pages` pages whole without the
/// kernel's overcommit accounting refusing it? A refusal would be an ENOMEM
/// that says nothing about VMAs (the model has no memory limit), a false
/// alarm: better refused here, before the run, with the reason.
pub fn arena_fits(pages: Page) -> Result<(), String> {
    let bytes = pages.saturating_mul(4096);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib = |key: &str| -> Option<u64> {
        meminfo
            .lines()
            .find(|l| l.starts_with(key))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    let mode = std::fs::read_to_string("/proc/sys/vm/overcommit_memory")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(0);
    let limit = match mode {
        1 => return Ok(()),
        2 => kib("CommitLimit:")
            .zip(kib("Committed_AS:"))
            .map(|(l, c)| l.saturating_sub(c)),
        _ => kib("MemTotal:").zip(kib("SwapTotal:")).map(|(m, s)| m + s),
    };
    match limit {
        Some(kib) if bytes / 1024 > kib => Err(format!(
            "an arena of {pages} pages ({} MiB) is more than this machine lets one mmap commit \
             (vm.overcommit_memory={mode}: {} MiB); the kernel would answer ENOMEM where the \
             model says ok, a false alarm: use a smaller arena",
            bytes >> 20,
            kib >> 10
        )),
        _ => Ok(()),
    }
}
