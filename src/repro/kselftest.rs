//! The kselftest headers a `repro --kselftest` program builds against,
//! fetched from Debian's `linux-source-6.12` package with the project's
//! private apt configuration (the archives the machine's apt sources name;
//! see [`crate::vm::kernels`]) into the cache, as
//! `CACHE/kselftest/linux-source-6.12/tools/testing/selftests/`
//! (`kselftest.h`, `kselftest_harness.h`, and an empty `mm/` to build in:
//! `cc -I DIR/mm` finds `"../kselftest.h"` as merge.c does).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::vm::kernels::{private_apt, PrivateApt};
use crate::vm::{cache_dir, run_bounded};

/// The Debian package whose source tarball holds the headers.
pub const PACKAGE: &str = "linux-source-6.12";
/// The headers taken from it, under tools/testing/selftests/.
pub const HEADERS: [&str; 2] = ["kselftest.h", "kselftest_harness.h"];

/// `CACHE/kselftest/PACKAGE/tools/testing/selftests`.
pub fn selftests_dir() -> Result<PathBuf, String> {
    Ok(cache_dir()?
        .join("kselftest")
        .join(PACKAGE)
        .join("tools/testing/selftests"))
}

/// The `mm` directory to build in (`-I`), if the headers are in the cache;
/// `Err` says what is missing.
pub fn cached() -> Result<PathBuf, String> {
    let dir = selftests_dir()?;
    for h in HEADERS {
        if !dir.join(h).is_file() {
            return Err(format!(
                "no {} (fetch it: uffd-check repro --fetch-kselftest-headers)",
                dir.join(h).display()
            ));
        }
    }
    Ok(dir.join("mm"))
}

/// Downloads [`PACKAGE`] with the private apt configuration, extracts
/// [`HEADERS`] from its source tarball into the cache and returns the `mm`
/// directory to build in. Each step is bounded in time.
pub fn fetch() -> Result<PathBuf, String> {
    let apt = private_apt()?;
    apt.update("kselftest")?;
    let work = apt.dir.join(format!("kselftest-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| format!("kselftest: {}: {e}", work.display()))?;
    let r = fetch_into(&work, &apt);
    let _ = std::fs::remove_dir_all(&work);
    r
}

fn fetch_into(work: &Path, apt: &PrivateApt) -> Result<PathBuf, String> {
    let mut download = apt.command("apt-get");
    download.args(["-q", "download", PACKAGE]).current_dir(work);
    run_bounded(
        download,
        Duration::from_secs(900),
        &format!("kselftest: apt-get download {PACKAGE}"),
    )?;
    let deb = std::fs::read_dir(work)
        .map_err(|e| format!("kselftest: {e}"))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .ok_or_else(|| format!("kselftest: apt-get download left no {PACKAGE}_*.deb"))?;
    let mut unpack = Command::new("dpkg-deb");
    unpack.arg("-x").arg(&deb).arg(work.join("deb"));
    run_bounded(
        unpack,
        Duration::from_secs(300),
        &format!("kselftest: dpkg-deb -x {}", deb.display()),
    )?;
    let tarball = work.join(format!("deb/usr/src/{PACKAGE}.tar.xz"));
    if !tarball.is_file() {
        return Err(format!(
            "kselftest: {} has no usr/src/{PACKAGE}.tar.xz",
            deb.display()
        ));
    }
    let mut tar = Command::new("tar");
    tar.arg("-xJf").arg(&tarball).arg("-C").arg(work);
    for h in HEADERS {
        tar.arg(format!("{PACKAGE}/tools/testing/selftests/{h}"));
    }
    run_bounded(
        tar,
        Duration::from_secs(300),
        &format!(
            "kselftest: extracting {HEADERS:?} from {}",
            tarball.display()
        ),
    )?;
    let dest = selftests_dir()?;
    let io = |e: std::io::Error| format!("kselftest: {}: {e}", dest.display());
    std::fs::create_dir_all(dest.join("mm")).map_err(io)?;
    for h in HEADERS {
        let from = work.join(format!("{PACKAGE}/tools/testing/selftests/{h}"));
        std::fs::copy(&from, dest.join(h)).map_err(io)?;
    }
    Ok(dest.join("mm"))
}
