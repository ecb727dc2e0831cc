//! The cache of kernel images (`CACHE/kernels/RELEASE/vmlinuz-RELEASE`),
//! and fetching Debian's newest image of a series into it with a private
//! apt configuration (its own sources list, lists and caches under
//! `CACHE/apt/`; nothing is written into /etc/apt and nothing is
//! installed). The archives are the ones the machine's own apt sources
//! name; the suites tried are [`SUITES`].

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::run_bounded;

/// The suites searched for kernel images, each with whether it lives in the
/// security archive (the machine's `*-security` URI) or the main one.
pub const SUITES: [(&str, bool); 7] = [
    ("bookworm", false),
    ("bookworm-security", true),
    ("bookworm-backports", false),
    ("trixie", false),
    ("trixie-backports", false),
    ("sid", false),
    ("experimental", false),
];

/// The machine's apt sources, read at run time.
pub const SYSTEM_SOURCES: [&str; 2] = [
    "/etc/apt/sources.list.d/debian.sources",
    "/etc/apt/sources.list",
];

/// The keyring used when a source names none.
pub const DEFAULT_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// A kernel image in the cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedKernel {
    /// The release, from the image's header (`6.1.0-57-amd64`).
    pub release: String,
    /// The bzImage.
    pub image: PathBuf,
}

/// One apt source: an archive URI, its suites and its keyring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub uri: String,
    pub suites: Vec<String>,
    pub signed_by: Option<String>,
}

/// The kernels directory of the cache.
pub fn kernels_dir() -> Result<PathBuf, String> {
    Ok(super::cache_dir()?.join("kernels"))
}

/// The cached images, oldest release first.
pub fn list() -> Result<Vec<CachedKernel>, String> {
    let dir = kernels_dir()?;
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(Vec::new());
    };
    let mut out: Vec<CachedKernel> = entries
        .flatten()
        .filter_map(|e| image_in(&e.path()))
        .filter_map(|image| {
            let release = super::qemu::image_release(&image).ok()?;
            Some(CachedKernel { release, image })
        })
        .collect();
    out.sort_by_key(|k| release_key(&k.release));
    Ok(out)
}

/// The newest cached image of `series` (as [`fetch`] understands it).
pub fn find(series: &str) -> Result<Option<CachedKernel>, String> {
    Ok(list()?.into_iter().rfind(|k| in_series(&k.release, series)))
}

/// The `vmlinuz-*` file in `dir`, if any.
fn image_in(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
}

/// Numbers of a release for ordering (`6.12.3-1` before `6.12.10`).
fn release_key(r: &str) -> Vec<u64> {
    r.split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect()
}

/// Is `version` (a release or a Debian version) of `series`: `6.1` takes
/// `6.1.192-3` and `6.1.0-57-amd64` but not `6.12.1`; `7.x` takes any 7;
/// `7.3` takes `7.3~rc5-1`.
pub fn in_series(version: &str, series: &str) -> bool {
    let v = version.split_once(':').map_or(version, |(_, v)| v);
    if let Some(major) = series.strip_suffix(".x") {
        return v.strip_prefix(major).is_some_and(|r| r.starts_with('.'));
    }
    v.strip_prefix(series)
        .is_some_and(|r| r.is_empty() || r.starts_with(['.', '~', '-', '+']))
}

/// Parses apt sources: deb822 stanzas (`URIs:`, `Suites:`, `Signed-By:`)
/// and one-line `deb [signed-by=K] URI SUITE COMPONENTS...` entries.
pub fn parse_sources(text: &str) -> Vec<Source> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let field = |name: &str| {
            stanza.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_string())
            })
        };
        if let (Some(uris), Some(suites)) = (field("URIs"), field("Suites")) {
            for uri in uris.split_whitespace() {
                out.push(Source {
                    uri: uri.to_string(),
                    suites: suites.split_whitespace().map(String::from).collect(),
                    signed_by: field("Signed-By"),
                });
            }
        }
    }
    for l in text.lines().map(str::trim) {
        let Some(rest) = l.strip_prefix("deb ") else {
            continue;
        };
        let (opts, rest) = match rest.trim().strip_prefix('[') {
            Some(r) => r.split_once(']').unwrap_or(("", r)),
            None => ("", rest),
        };
        let mut words = rest.split_whitespace();
        if let (Some(uri), Some(suite)) = (words.next(), words.next()) {
            out.push(Source {
                uri: uri.to_string(),
                suites: vec![suite.to_string()],
                signed_by: opts
                    .split_whitespace()
                    .find_map(|o| o.strip_prefix("signed-by="))
                    .map(String::from),
            });
        }
    }
    out
}

/// The private sources list: each of [`SUITES`] on the machine's main or
/// security archive URI. `Err` when the machine's sources name neither.
pub fn private_sources_list(sources: &[Source]) -> Result<String, String> {
    let security = |s: &Source| s.suites.iter().any(|x| x.ends_with("-security"));
    let main = sources.iter().find(|s| !security(s));
    let sec = sources.iter().find(|s| security(s));
    let mut out = String::new();
    for (suite, in_security) in SUITES {
        let Some(src) = (if in_security { sec } else { main }) else {
            continue;
        };
        let key = src.signed_by.as_deref().unwrap_or(DEFAULT_KEYRING);
        out.push_str(&format!("deb [signed-by={key}] {} {suite} main\n", src.uri));
    }
    if out.is_empty() {
        return Err(format!(
            "vm: no Debian archive in the machine's apt sources ({})",
            SYSTEM_SOURCES.join(", ")
        ));
    }
    Ok(out)
}

/// The private apt configuration under `CACHE/apt`: its directory and the
/// `-o` options that point apt at it.
pub(crate) struct PrivateApt {
    pub dir: PathBuf,
    opts: Vec<String>,
}

impl PrivateApt {
    /// `prog` (`apt-get`, `apt-cache`) with the private configuration.
    pub fn command(&self, prog: &str) -> Command {
        let mut c = Command::new(prog);
        c.args(&self.opts).stdin(Stdio::null());
        c
    }

    /// `apt-get update` of the private lists, bounded in time; `what`
    /// names the caller in an error (`vm`, `kselftest`).
    pub fn update(&self, what: &str) -> Result<(), String> {
        let mut update = self.command("apt-get");
        update.args(["-q", "update"]);
        run_bounded(
            update,
            Duration::from_secs(600),
            &format!("{what}: apt-get update (private)"),
        )
        .map(drop)
    }
}

/// The private apt configuration, made ready ([`PrivateApt`]).
pub(crate) fn private_apt() -> Result<PrivateApt, String> {
    let dir = super::cache_dir()?.join("apt");
    let text: String = SYSTEM_SOURCES
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect::<Vec<_>>()
        .join("\n\n");
    let list = private_sources_list(&parse_sources(&text))?;
    let io = |e: std::io::Error| format!("vm: preparing {}: {e}", dir.display());
    for d in ["lists/partial", "cache/archives/partial", "download"] {
        std::fs::create_dir_all(dir.join(d)).map_err(io)?;
    }
    std::fs::write(dir.join("sources.list"), list).map_err(io)?;
    std::fs::write(dir.join("status"), "").map_err(io)?;
    let d = dir.display();
    let opts = [
        format!("Dir::Etc::sourcelist={d}/sources.list"),
        "Dir::Etc::sourceparts=-".into(),
        format!("Dir::State::Lists={d}/lists"),
        format!("Dir::State::status={d}/status"),
        format!("Dir::Cache={d}/cache"),
        "Acquire::Languages=none".into(),
        "APT::Get::List-Cleanup=false".into(),
        // Downloads go to the cache, which apt's sandbox user may not write.
        "APT::Sandbox::User=root".into(),
    ];
    Ok(PrivateApt {
        dir,
        opts: opts
            .iter()
            .flat_map(|o| ["-o".to_string(), o.clone()])
            .collect(),
    })
}

/// Resolves the newest Debian kernel image of `series` (`6.1`, `6.12`,
/// `7.3`, `7.x`), downloads it with the private apt configuration and
/// keeps its image in the cache. Returns the cached image.
pub fn fetch(series: &str) -> Result<CachedKernel, String> {
    let apt = private_apt()?;
    apt.update("vm")?;
    let (name, version) = newest(series, &apt)?;
    let dir = &apt.dir;
    let mut download = apt.command("apt-get");
    download
        .args(["-q", "download", &format!("{name}={version}")])
        .current_dir(dir.join("download"));
    run_bounded(download, Duration::from_secs(900), "vm: apt-get download")?;
    let deb = std::fs::read_dir(dir.join("download"))
        .map_err(|e| format!("vm: {e}"))?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{name}_")))
        })
        .ok_or_else(|| format!("vm: apt-get download left no {name}_*.deb"))?;
    let r = extract_image(&deb);
    let _ = std::fs::remove_file(&deb);
    r
}

/// The newest package of `series` with a kernel image in it: name and version.
fn newest(series: &str, apt: &PrivateApt) -> Result<(String, String), String> {
    let mut search = apt.command("apt-cache");
    search.args(["search", "--names-only", "^linux-(image|binary)-.*amd64"]);
    let found = run_bounded(search, Duration::from_secs(120), "vm: apt-cache search")?;
    let names: Vec<String> = String::from_utf8_lossy(&found.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| {
            !["-dbg", "cloud", "-rt-", "template"]
                .iter()
                .any(|x| n.contains(x))
        })
        .map(String::from)
        .collect();
    if names.is_empty() {
        return Err("vm: no linux-image package in the private apt lists".into());
    }
    let mut show = apt.command("apt-cache");
    show.arg("show").args(&names);
    let shown = run_bounded(show, Duration::from_secs(120), "vm: apt-cache show")?;
    let mut best: Option<(String, String)> = None;
    for (name, version) in image_packages(&String::from_utf8_lossy(&shown.stdout)) {
        if !in_series(&version, series) {
            continue;
        }
        let better = match &best {
            None => true,
            Some((n, v)) => match newer(&version, v)? {
                std::cmp::Ordering::Greater => true,
                std::cmp::Ordering::Equal => name.contains("unsigned") && !n.contains("unsigned"),
                std::cmp::Ordering::Less => false,
            },
        };
        if better {
            best = Some((name, version));
        }
    }
    best.ok_or_else(|| format!("vm: no Debian kernel image of series {series} in {SUITES:?}"))
}

/// Package and version of each `apt-cache show` stanza big enough to hold
/// a kernel (Installed-Size over 10 MB: meta packages are a few KB).
fn image_packages(text: &str) -> Vec<(String, String)> {
    text.split("\n\n")
        .filter_map(|st| {
            let field = |k: &str| {
                st.lines().find_map(|l| {
                    l.strip_prefix(k)?
                        .strip_prefix(':')
                        .map(|v| v.trim().to_string())
                })
            };
            let size: u64 = field("Installed-Size")?.parse().ok()?;
            (size > 10_000).then_some((field("Package")?, field("Version")?))
        })
        .collect()
}

/// Orders two Debian versions with `dpkg --compare-versions`.
fn newer(a: &str, b: &str) -> Result<std::cmp::Ordering, String> {
    let gt = Command::new("dpkg")
        .args(["--compare-versions", a, "gt", b])
        .status()
        .map_err(|e| format!("vm: dpkg --compare-versions: {e}"))?;
    Ok(if gt.success() {
        std::cmp::Ordering::Greater
    } else if a == b {
        std::cmp::Ordering::Equal
    } else {
        std::cmp::Ordering::Less
    })
}

/// The kernel image's path inside `deb`: a regular file named
/// `vmlinuz*` (`./boot/vmlinuz-RELEASE` up to 6.18, from 6.19
/// `./usr/lib/modules/RELEASE/vmlinuz` or `vmlinuz.unsigned`).
fn image_member(deb: &Path) -> Result<String, String> {
    let mut list = Command::new("dpkg-deb");
    list.arg("-c").arg(deb);
    let out = run_bounded(list, Duration::from_secs(300), "vm: dpkg-deb -c")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('-'))
        .filter_map(|l| l.split_whitespace().last())
        .find(|p| {
            p.rsplit('/')
                .next()
                .is_some_and(|n| n.starts_with("vmlinuz"))
        })
        .map(String::from)
        .ok_or_else(|| format!("vm: {} has no vmlinuz", deb.display()))
}

/// Extracts the kernel image of `deb` into the cache as
/// `kernels/RELEASE/vmlinuz-RELEASE`.
fn extract_image(deb: &Path) -> Result<CachedKernel, String> {
    let member = image_member(deb)?;
    let kernels = kernels_dir()?;
    let tmp = kernels.join(format!(".extract-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| format!("vm: {}: {e}", tmp.display()))?;
    let mut dpkg = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(deb)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("vm: dpkg-deb: {e}"))?;
    let mut tar = Command::new("tar");
    tar.arg("-x").arg("-C").arg(&tmp).arg(&member);
    tar.stdin(Stdio::from(dpkg.stdout.take().expect("piped")));
    let r = run_bounded(
        tar,
        Duration::from_secs(300),
        "vm: extracting the kernel image",
    );
    let _ = dpkg.kill();
    let _ = dpkg.wait();
    let moved = r.and_then(|_| {
        let image = tmp.join(&member);
        let release = super::qemu::image_release(&image)?;
        let dest = kernels.join(&release);
        let _ = std::fs::remove_dir_all(&dest);
        let io = |e: std::io::Error| format!("vm: {}: {e}", dest.display());
        std::fs::create_dir_all(&dest).map_err(io)?;
        let cached = dest.join(format!("vmlinuz-{release}"));
        std::fs::rename(&image, &cached).map_err(io)?;
        Ok(CachedKernel {
            release,
            image: cached,
        })
    });
    let _ = std::fs::remove_dir_all(&tmp);
    moved
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEB822: &str = "Types: deb\n# a comment\nURIs: http://archive.example/debian\n\
        Suites: bookworm bookworm-updates\nComponents: main\n\
        Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n\
        Types: deb\nURIs: http://archive.example/debian-security\n\
        Suites: bookworm-security\nComponents: main\n";

    #[test]
    fn deb822_and_one_line_sources() {
        let s = parse_sources(DEB822);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].uri, "http://archive.example/debian");
        assert_eq!(s[0].suites, ["bookworm", "bookworm-updates"]);
        assert_eq!(s[0].signed_by.as_deref(), Some(DEFAULT_KEYRING));
        assert_eq!(s[1].signed_by, None);
        let one = parse_sources("deb [arch=amd64 signed-by=/k.gpg] http://a/debian sid main\n");
        assert_eq!(one[0].uri, "http://a/debian");
        assert_eq!(one[0].suites, ["sid"]);
        assert_eq!(one[0].signed_by.as_deref(), Some("/k.gpg"));
    }

    #[test]
    fn private_list_uses_both_archives() {
        let list = private_sources_list(&parse_sources(DEB822)).unwrap();
        assert!(list.contains(&format!(
            "deb [signed-by={DEFAULT_KEYRING}] http://archive.example/debian trixie-backports main"
        )));
        assert!(list.contains("http://archive.example/debian-security bookworm-security main"));
        assert_eq!(list.lines().count(), SUITES.len());
        assert!(private_sources_list(&[]).is_err());
    }

    #[test]
    fn series() {
        assert!(in_series("6.1.192-3", "6.1"));
        assert!(in_series("6.1.0-57-amd64", "6.1"));
        assert!(!in_series("6.12.107-1", "6.1"));
        assert!(in_series("7.3~rc5-1~exp1", "7.3"));
        assert!(in_series("7.2.1-1", "7.x"));
        assert!(!in_series("6.19.1-1", "7.x"));
        assert!(release_key("6.12.10") > release_key("6.12.3-1"));
    }

    #[test]
    fn meta_packages_are_not_images() {
        let text = "Package: linux-image-amd64\nVersion: 6.1.192-3\nInstalled-Size: 13\n\n\
                    Package: linux-image-6.1.0-57-amd64-unsigned\nVersion: 6.1.192-3\n\
                    Installed-Size: 400000\n";
        assert_eq!(
            image_packages(text),
            [(
                "linux-image-6.1.0-57-amd64-unsigned".into(),
                "6.1.192-3".into()
            )]
        );
    }
}
