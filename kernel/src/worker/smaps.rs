//! Reading the arena back: `layout` reads /proc/self/smaps (or the last fork
//! child's smaps), picks the arena's entries, checks the guards and decodes
//! each arena VMA into the vocabulary's `vma` line; `outside` lists every
//! mapping outside the arena.
//!
//! Invariant: every arena VMA is answered as exactly one `vma` line or one
//! `error` line, never left out: a VMA that crosses the arena's edge, a
//! missing or replaced guard, an entry that cannot be parsed or classified,
//! perms that disagree with VmFlags, a registered VMA no open uffd owns (a
//! fork child's: no fd its FORK events gave, see `fork.rs`) are all
//! errors. What smaps does not show (the page offset of private anonymous
//! memory, anon_vmas) is `?` on the wire ([`crate::UNOBSERVED`]).

use std::io::Write;
use std::os::unix::fs::FileExt;
use std::time::Instant;

use uffd_vocab::{Backing, Contexts, Mode, Page, Prot, SmapsFlags, VmFlags, Vma};

use super::arena::{Worker, PAGE};

impl Worker {
    /// Reads /proc/self/smaps up to the end of the upper guard's entry,
    /// into the buffer kept from the last read (see [`read_to_guard`]).
    fn read_smaps(&mut self) -> Result<(), String> {
        read_to_guard(&self.smaps, &self.guard_marker, &mut self.buf)
            .map_err(|e| format!("reading /proc/self/smaps: {e}"))
    }

    /// Writes the `layout` answer.
    pub(super) fn layout(&mut self, out: &mut impl Write) -> std::io::Result<()> {
        let t0 = Instant::now();
        let child = self.child_smaps.take();
        // A fork child's registered VMAs have their owners asked already.
        let owners = child
            .is_some()
            .then(|| std::mem::take(&mut self.child_owners));
        let read = match child {
            Some(text) => {
                self.buf = text;
                Ok(())
            }
            None => self.read_smaps(),
        };
        let t1 = Instant::now();
        if let Err(e) = read {
            writeln!(out, "error {e}")?;
            return writeln!(out, "end {} 0", (t1 - t0).as_nanos());
        }
        let text = std::mem::take(&mut self.buf);
        let (vmas, mut errors) = self.arena_entries(&text);
        self.buf = text;
        for e in &vmas {
            match self.describe(e, owners.as_deref()) {
                Ok(line) => writeln!(out, "{line}")?,
                Err(err) => errors.push(err),
            }
        }
        let ptes = match self.child_ptes.take() {
            Some(ptes) => ptes,
            None => self.ptes(None, &self.readable(&vmas)),
        };
        match ptes {
            Ok(ptes) => writeln!(out, "ptes {}", uffd_vocab::ptes_text(&ptes))?,
            Err(e) => errors.push(e),
        }
        for e in errors {
            writeln!(out, "error {e}")?;
        }
        let mut open = Contexts::default();
        for (c, slot) in self.uffd.iter().enumerate() {
            if let Some((_, features)) = slot {
                open.insert_with(c as u8, *features);
            }
        }
        writeln!(out, "open {open}")?;
        let t2 = Instant::now();
        writeln!(out, "end {} {}", (t1 - t0).as_nanos(), (t2 - t1).as_nanos())
    }

    /// The arena pages of the readable entries among `vmas`.
    fn readable(&self, vmas: &[Entry]) -> Vec<std::ops::Range<Page>> {
        vmas.iter()
            .filter(|e| e.perms.starts_with('r') && e.start >= self.base)
            .map(|e| (e.start - self.base) / PAGE..(e.end - self.base) / PAGE)
            .collect()
    }

    /// The arena pages of the readable VMAs in the smaps `text`.
    pub(super) fn readable_in(&self, text: &[u8]) -> Vec<std::ops::Range<Page>> {
        self.readable(&self.arena_entries(text).0)
    }

    /// The registered arena VMAs in the smaps `text`: start, end and
    /// uffd bits (an entry that cannot be decoded is left to `layout`).
    pub(super) fn registered_in(&self, text: &[u8]) -> Vec<(u64, u64, Mode)> {
        let decoded = self.arena_entries(text).0.into_iter().filter_map(|e| {
            let uffd = SmapsFlags::decode(&e.vmflags).ok()?.uffd;
            (!uffd.is_empty()).then_some((e.start, e.end, uffd))
        });
        decoded.collect()
    }

    /// The arena's entries in the smaps `text`, and what is wrong with it: a
    /// header that does not parse, a VMA that crosses the arena's edge or
    /// replaced a guard, a guard missing.
    fn arena_entries(&self, text: &[u8]) -> (Vec<Entry>, Vec<String>) {
        let (lo, hi) = (self.base, self.end());
        let guard_lo = lo - PAGE;
        let guard_hi = hi + PAGE;
        let mut errors: Vec<String> = Vec::new();
        let mut vmas: Vec<Entry> = Vec::new();
        let mut guards = 0;
        let mut cur: Option<Entry> = None;
        for line in text.split(|&b| b == b'\n') {
            let Some(&c) = line.first() else { continue };
            if c.is_ascii_digit() || (b'a'..=b'f').contains(&c) {
                let line = String::from_utf8_lossy(line);
                cur = match Entry::header(&line) {
                    Some(e) if e.end > guard_lo && e.start < guard_hi => Some(e),
                    Some(_) => None,
                    None => {
                        errors.push(format!("cannot parse smaps header {line:?}"));
                        None
                    }
                };
            } else if let Some(flags) = line.strip_prefix(b"VmFlags:") {
                if let Some(mut e) = cur.take() {
                    e.vmflags = String::from_utf8_lossy(flags).trim().to_string();
                    let guard = (e.start == guard_lo && e.end == lo)
                        || (e.start == hi && e.end == guard_hi);
                    if guard && e.perms.starts_with("---p") && e.inode == self.guard_ino {
                        guards += 1;
                    } else if e.start < lo || e.end > hi {
                        errors.push(format!(
                            "a VMA crosses the arena edge or replaced a guard: {}",
                            e.line
                        ));
                    } else {
                        vmas.push(e);
                    }
                }
            }
        }
        if guards != 2 {
            errors.push(format!(
                "expected the two guard VMAs [{:#x},{lo:#x}) and [{hi:#x},{guard_hi:#x}), found {guards}",
                guard_lo
            ));
        }
        (vmas, errors)
    }

    /// One arena VMA as a `vma` line; the ctx is asked of the kernel, or,
    /// for a fork child's VMA, taken from its `child` owners (asked through
    /// the fork fds while it lived: our own fds would probe our VMAs).
    fn describe(
        &self,
        e: &Entry,
        child: Option<&[(u64, Result<u8, String>)]>,
    ) -> Result<String, String> {
        let SmapsFlags { prot, flags, uffd } = SmapsFlags::decode(&e.vmflags)
            .map_err(|err| format!("{err} in an arena VMA: {} (VmFlags: {})", e.line, e.vmflags))?;
        let perms: String = e.perms.chars().take(3).collect();
        let consistent = perms == prot.to_string()
            && (e.perms.as_bytes()[3] == b's') == flags.has(VmFlags::MAYSHARE);
        if !consistent {
            return Err(format!(
                "perms and VmFlags disagree: {} (VmFlags: {})",
                e.line, e.vmflags
            ));
        }
        let start = (e.start - self.base) / PAGE;
        let end = (e.end - self.base) / PAGE;
        let (backing, pgoff) = if e.inode == 0 && e.path.is_empty() {
            // smaps prints 0: unobserved, and so `?` on the wire.
            (Backing::Anon, 0)
        } else if let Some(f) = self
            .files
            .iter()
            .position(|f| f.ino == e.inode && e.path.starts_with("/memfd:uffd-check-"))
        {
            (Backing::File(f as u8), e.offset / PAGE)
        } else if e.inode != 0 && e.path.starts_with("/dev/zero") {
            (Backing::Shmem(e.inode as u32), e.offset / PAGE)
        } else {
            return Err(format!("cannot classify the arena VMA {}", e.line));
        };
        let ctx = if uffd.is_empty() {
            None
        } else if let Some(owners) = child {
            match owners.iter().find(|(start, _)| *start == e.start) {
                Some((_, Ok(c))) => Some(*c),
                Some((_, Err(err))) => {
                    return Err(format!(
                        "a fork child's VMA kept uffd bits, but {err}: {}",
                        e.line
                    ))
                }
                None => return Err(format!("a fork child's VMA has no owner asked: {}", e.line)),
            }
        } else {
            match self.owner(e.start, e.end - e.start, uffd) {
                Ok(c) => Some(c),
                Err(err) => return Err(format!("{err}: {}", e.line)),
            }
        };
        let vma = Vma {
            start,
            end,
            prot: Prot::from_bits(prot.bits()),
            backing,
            pgoff,
            flags,
            uffd,
            ctx,
            anon_vma: None,
        };
        Ok(format!("vma {}", vma.display(crate::UNOBSERVED)))
    }

    /// Writes the `outside` answer: every /proc/self/maps line not inside the arena.
    pub(super) fn outside(&mut self, out: &mut impl Write) -> std::io::Result<()> {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
        let (lo, hi) = (self.base, self.end());
        for line in maps.lines() {
            match Entry::header(line) {
                Some(e) if e.start >= lo && e.end <= hi => {}
                _ => writeln!(out, "{line}")?,
            }
        }
        writeln!(out, "end")
    }
}

/// Reads the smaps `file` into `buf` up to the end of the entry whose
/// header starts with `marker` (the upper guard's).
/// The arena lies below every other mapping, so its entries come
/// first, and smaps formats entries lazily as they are read: reading
/// in small chunks and stopping after the upper guard spares the
/// kernel the rest of the process (most of the cost). Each chunk is
/// one pread at the offset the last one ended (no seek; a pread at the
/// offset seq_file stopped at continues without formatting again).
/// Without an upper guard it reads everything.
pub(super) fn read_to_guard(
    file: &std::fs::File,
    marker: &str,
    buf: &mut Vec<u8>,
) -> std::io::Result<()> {
    const CHUNK: usize = 4096;
    buf.clear();
    let marker = memchr::memmem::Finder::new(marker.as_bytes());
    let mut scan = 0;
    loop {
        let len = buf.len();
        buf.resize(len + CHUNK, 0);
        let n = loop {
            match file.read_at(&mut buf[len..], len as u64) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        };
        buf.truncate(len + n);
        if n == 0 {
            return Ok(());
        }
        if let Some(p) = marker.find(&buf[scan..]) {
            let at = scan + p;
            if let Some(q) = memchr::memmem::find(&buf[at..], b"\nVmFlags:") {
                let flags = at + q + 1;
                if let Some(r) = memchr::memchr(b'\n', &buf[flags..]) {
                    buf.truncate(flags + r + 1);
                    return Ok(());
                }
            }
        } else {
            scan = buf.len().saturating_sub(marker.needle().len());
        }
    }
}

/// One smaps entry of interest.
struct Entry {
    line: String,
    start: u64,
    end: u64,
    perms: String,
    offset: u64,
    inode: u64,
    path: String,
    vmflags: String,
}

impl Entry {
    /// `start-end perms offset dev inode [path]`.
    fn header(line: &str) -> Option<Entry> {
        let mut w = line.splitn(6, ' ');
        let (s, e) = w.next()?.split_once('-')?;
        let perms = w.next()?;
        let offset = u64::from_str_radix(w.next()?, 16).ok()?;
        let _dev = w.next()?;
        let inode = w.next()?.parse().ok()?;
        let path = w.next().unwrap_or("").trim().to_string();
        if perms.len() != 4 {
            return None;
        }
        Some(Entry {
            line: line.to_string(),
            start: u64::from_str_radix(s, 16).ok()?,
            end: u64::from_str_radix(e, 16).ok()?,
            perms: perms.to_string(),
            offset,
            inode,
            path,
            vmflags: String::new(),
        })
    }
}
