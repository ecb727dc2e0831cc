//! A writer of the "newc" cpio format, the one the kernel unpacks as an
//! initramfs: per entry a 110-byte ASCII header (`070701` and thirteen
//! 8-digit hex fields), the name with its NUL, padding to 4 bytes, the
//! data, padding to 4 bytes; the archive ends with the entry `TRAILER!!!`.
//! Written here rather than with the `cpio` command so that building an
//! initramfs needs no package beyond busybox-static and no shell pipeline,
//! and the archive is the same bytes for the same inputs.

/// One archive being written, in memory (an initramfs is a few MB).
#[derive(Default)]
pub struct Cpio {
    out: Vec<u8>,
    ino: u32,
}

const DIR: u32 = 0o040000;
const FILE: u32 = 0o100000;
const SYMLINK: u32 = 0o120000;

impl Cpio {
    /// An empty archive.
    pub fn new() -> Cpio {
        Cpio::default()
    }

    /// A directory `name` (no leading `/`), mode 0755.
    pub fn dir(&mut self, name: &str) {
        self.entry(name, DIR | 0o755, &[]);
    }

    /// A regular file `name` with `data`; `exec` makes it mode 0755, else 0644.
    pub fn file(&mut self, name: &str, data: &[u8], exec: bool) {
        self.entry(name, FILE | if exec { 0o755 } else { 0o644 }, data);
    }

    /// A symbolic link `name` pointing to `target`.
    pub fn symlink(&mut self, name: &str, target: &str) {
        self.entry(name, SYMLINK | 0o777, target.as_bytes());
    }

    /// Ends the archive with its trailer and returns its bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.ino = 0;
        self.entry("TRAILER!!!", 0, &[]);
        self.out
    }

    fn entry(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.ino += 1;
        let nlink = if mode & DIR == DIR { 2 } else { 1 };
        let fields = [
            self.ino,
            mode,
            0, // uid
            0, // gid
            nlink,
            0, // mtime: fixed, so the same inputs give the same archive
            data.len() as u32,
            0, // devmajor
            0, // devminor
            0, // rdevmajor
            0, // rdevminor
            name.len() as u32 + 1,
            0, // check
        ];
        self.out.extend_from_slice(b"070701");
        for f in fields {
            self.out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields_and_alignment() {
        let mut c = Cpio::new();
        c.file("init", b"hello", true);
        let out = c.finish();
        assert_eq!(&out[..6], b"070701");
        // mode, then filesize and namesize at fields 7 and 12.
        assert_eq!(&out[14..22], b"000081ed");
        assert_eq!(&out[54..62], b"00000005");
        assert_eq!(&out[94..102], b"00000005");
        assert_eq!(&out[110..115], b"init\0");
        // 110 + 5 = 115, padded to 116; data 5 bytes padded to 124.
        assert_eq!(&out[116..121], b"hello");
        assert_eq!(&out[124..130], b"070701");
        assert!(out.windows(11).any(|w| w == b"TRAILER!!!\0"));
        assert_eq!(out.len() % 4, 0);
    }

    /// The `cpio` command (Debian package cpio), when present, reads the
    /// archive back with the same names and contents.
    #[test]
    fn cpio_command_reads_it_back() {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let mut c = Cpio::new();
        c.dir("bin");
        c.file("bin/a", b"abc", false);
        c.symlink("bin/sh", "busybox");
        let bytes = c.finish();
        let child = Command::new("cpio")
            .args(["-t", "--quiet"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn();
        let Ok(mut child) = child else {
            println!("SKIPPED: no cpio command (Debian package cpio)");
            return;
        };
        child.stdin.take().unwrap().write_all(&bytes).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout), "bin\nbin/a\nbin/sh\n");
    }
}
