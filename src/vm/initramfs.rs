//! The guest's initramfs: busybox-static, the harness binary (a stripped
//! copy), the shared libraries it links at the paths `ldd` gives, and an
//! `/init` that mounts proc, sysfs, devtmpfs and a tmpfs on /tmp, runs the
//! task given after `--` on the kernel command line with its stdin and
//! stdout on ttyS1 and its stderr on the console, writes `__exit STATUS` on
//! ttyS1 and powers off. A gzip'd newc cpio (about 3.7 MB), cached under
//! `CACHE/initramfs/` by the path, size and modification time of the
//! harness and of busybox and by the init script, so repeated runs reuse
//! it (old ones are not pruned; a library upgrade needs the cache cleared).

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::cpio::Cpio;
use super::run_bounded;

/// The guest's `/init`. The task is its arguments.
pub const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox mount -t tmpfs tmpfs /tmp
/bin/busybox --install -s /bin
export PATH=/bin
stty -F /dev/ttyS1 raw -echo
"$@" </dev/ttyS1 >/dev/ttyS1 2>/dev/ttyS0
echo "__exit $?" >/dev/ttyS1
poweroff -f
"#;

/// Where the harness binary is in the guest (on its `PATH`).
pub const HARNESS: &str = "bin/uffd-check";

/// The initramfs for `harness` (the uffd-check binary), from the cache
/// when one was built from the same binary, busybox and init; built and
/// cached otherwise. Returns its path.
pub fn build(harness: &Path) -> Result<PathBuf, String> {
    super::check_dependencies()?;
    let busybox = super::which("busybox").expect("checked above");
    let dir = super::cache_dir()?.join("initramfs");
    let path = dir.join(format!(
        "initramfs-{:016x}.cpio.gz",
        key(harness, &busybox)?
    ));
    if path.is_file() {
        return Ok(path);
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("vm: creating {}: {e}", dir.display()))?;
    let cpio = archive(harness, &busybox)?;
    let tmp = dir.join(format!("building-{}.cpio", std::process::id()));
    std::fs::write(&tmp, cpio).map_err(|e| format!("vm: writing {}: {e}", tmp.display()))?;
    let mut gz = Command::new("gzip");
    gz.args(["-6", "-n", "-f"]).arg(&tmp);
    let r = run_bounded(gz, Duration::from_secs(120), "vm: gzip of the initramfs");
    let gzipped = PathBuf::from(format!("{}.gz", tmp.display()));
    r.and_then(|_| {
        std::fs::rename(&gzipped, &path).map_err(|e| format!("vm: {}: {e}", path.display()))
    })
    .inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
        let _ = std::fs::remove_file(&gzipped);
    })?;
    Ok(path)
}

/// What decides the archive's contents: each input's path, size and
/// modification time, and the init script.
fn key(harness: &Path, busybox: &Path) -> Result<u64, String> {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for p in [harness, busybox] {
        let m = std::fs::metadata(p).map_err(|e| format!("vm: {}: {e}", p.display()))?;
        (p, m.len(), m.modified().ok()).hash(&mut h);
    }
    INIT.hash(&mut h);
    Ok(h.finish())
}

/// The uncompressed archive.
fn archive(harness: &Path, busybox: &Path) -> Result<Vec<u8>, String> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("vm: reading {}: {e}", p.display()));
    let mut c = Cpio::new();
    for d in [
        "bin", "dev", "proc", "sys", "tmp", "lib", "lib64", "usr", "usr/lib",
    ] {
        c.dir(d);
    }
    c.file("init", INIT.as_bytes(), true);
    c.file("bin/busybox", &read(busybox)?, true);
    c.symlink("bin/sh", "busybox");
    c.file(HARNESS, &stripped(harness)?, true);
    let mut made = std::collections::BTreeSet::new();
    for lib in libraries(harness)? {
        let rel = lib.strip_prefix("/").unwrap_or(&lib);
        // Parent directories first, each once.
        let mut dirs: Vec<&Path> = rel.ancestors().skip(1).collect();
        dirs.reverse();
        for d in dirs.into_iter().filter(|d| !d.as_os_str().is_empty()) {
            let d = d.to_string_lossy().into_owned();
            if made.insert(d.clone()) && !["lib", "lib64", "usr", "usr/lib"].contains(&&*d) {
                c.dir(&d);
            }
        }
        c.file(&rel.to_string_lossy(), &read(&lib)?, true);
    }
    Ok(c.finish())
}

/// The harness's bytes, stripped of symbols and debug info when `strip`
/// is there (binutils), as they are otherwise.
fn stripped(harness: &Path) -> Result<Vec<u8>, String> {
    let tmp = std::env::temp_dir().join(format!("uffd-check-stripped-{}", std::process::id()));
    let mut strip = Command::new("strip");
    strip.arg("-o").arg(&tmp).arg(harness);
    let bytes = match run_bounded(strip, Duration::from_secs(60), "vm: strip") {
        Ok(_) => std::fs::read(&tmp).ok(),
        Err(_) => None,
    };
    let _ = std::fs::remove_file(&tmp);
    match bytes {
        Some(b) => Ok(b),
        None => {
            std::fs::read(harness).map_err(|e| format!("vm: reading {}: {e}", harness.display()))
        }
    }
}

/// The shared libraries `binary` loads, as `ldd` lists them (the dynamic
/// loader included), at the paths the guest must have them.
pub fn libraries(binary: &Path) -> Result<Vec<PathBuf>, String> {
    let mut ldd = Command::new("ldd");
    ldd.arg(binary);
    let out = run_bounded(ldd, Duration::from_secs(30), "vm: ldd of the harness")?;
    Ok(parse_ldd(&String::from_utf8_lossy(&out.stdout)))
}

/// The library paths in `ldd` output: `name => /path (addr)` and
/// `/path (addr)` lines; the vdso and `not found` lines are left out.
fn parse_ldd(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let p = l.split_once("=>").map_or(l, |(_, r)| r.trim());
            let p = p.split_whitespace().next()?;
            p.starts_with('/').then(|| PathBuf::from(p))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_lines() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                    \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f)\n\
                    \tlibfoo.so => not found\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n";
        assert_eq!(
            parse_ldd(text),
            vec![
                PathBuf::from("/lib/x86_64-linux-gnu/libgcc_s.so.1"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
            ]
        );
    }
}
