//! The arena's page table entries, from each page's 64-bit entry in
//! /proc/PID/pagemap (Documentation/admin-guide/mm/pagemap.rst): present
//! (bit 63), a swap entry, which here is a pte marker (bit 62), a page of
//! the page cache (bit 61, PM_FILE), the uffd-wp bit (bit 57). The zero page
//! is told from an anonymous page by its PFN (bits 0-54, shown to root),
//! learnt once at start (without it, by bit 56, PM_MMAP_EXCLUSIVE, which
//! an anonymous page mapped once has); the content tag of a page (the u64
//! at byte 8, see `Op::Fill`) is read from /proc/PID/mem, only for a
//! present page that is not the zero page, in a readable VMA, and only once
//! a `copy` has run (before, every tag is 0).

use std::os::unix::fs::FileExt;

use uffd_vocab::{Page, PteKind, PteState};

use super::arena::{Worker, PAGE};

const PM_PRESENT: u64 = 1 << 63;
const PM_SWAP: u64 = 1 << 62;
const PM_FILE: u64 = 1 << 61;
const PM_UFFD_WP: u64 = 1 << 57;
const PM_MMAP_EXCLUSIVE: u64 = 1 << 56;
const PM_PFN: u64 = (1 << 55) - 1;

/// A page table entry from its pagemap entry; `None` for an empty one.
fn decode(e: u64, zero_pfn: Option<u64>) -> Option<PteState> {
    let wp = e & PM_UFFD_WP != 0;
    let kind = if e & PM_PRESENT != 0 {
        if e & PM_FILE != 0 {
            PteKind::File
        } else if zero_pfn.map_or(e & PM_MMAP_EXCLUSIVE == 0, |z| z == e & PM_PFN) {
            // Without the PFNs (not root), the zero page is the present
            // page mapped by nobody exclusively: wrong only for the pages
            // a fork child shares.
            PteKind::Zero
        } else {
            PteKind::Anon
        }
    } else if e & PM_SWAP != 0 {
        if wp {
            PteKind::Marker
        } else {
            PteKind::Poison
        }
    } else if wp {
        // A uffd-wp marker that pagemap did not flag as a swap entry.
        PteKind::Marker
    } else {
        return None;
    };
    Some(PteState { kind, wp, tag: 0 })
}

/// The PFN of the zero page: a private anonymous page (mapped where the
/// kernel likes, not in the arena) read once, its pagemap entry read, then
/// unmapped. `None` where pagemap hides PFNs (without CAP_SYS_ADMIN).
pub(super) fn zero_pfn() -> Result<Option<u64>, String> {
    // SAFETY: a fresh private mapping of our own, read and unmapped here.
    let p = unsafe {
        rustix::mm::mmap_anonymous(
            std::ptr::null_mut(),
            PAGE as usize,
            rustix::mm::ProtFlags::READ,
            rustix::mm::MapFlags::PRIVATE,
        )
    }
    .map_err(|e| format!("mmap for the zero page: errno {}", e.raw_os_error()))?;
    // SAFETY: the page mapped above, readable.
    let _ = unsafe { std::ptr::read_volatile(p as *const u8) };
    let file = std::fs::File::open("/proc/self/pagemap").map_err(|e| format!("pagemap: {e}"))?;
    let mut b = [0u8; 8];
    let read = file.read_exact_at(&mut b, p as u64 / PAGE * 8);
    // SAFETY: unmapping our own mapping from above.
    unsafe { rustix::mm::munmap(p, PAGE as usize) }
        .map_err(|e| format!("munmap: errno {}", e.raw_os_error()))?;
    read.map_err(|e| format!("reading pagemap: {e}"))?;
    let e = u64::from_le_bytes(b);
    let pfn = e & PM_PFN;
    Ok((e & PM_PRESENT != 0 && pfn != 0).then_some(pfn))
}

impl Worker {
    /// The arena's non-empty page table entries in the process `pid` (the
    /// worker itself for `None`), sorted.
    pub(super) fn ptes(
        &self,
        pid: Option<i32>,
        readable: &[std::ops::Range<Page>],
    ) -> Result<Vec<(Page, PteState)>, String> {
        // The worker's own files stay open (as its smaps does); a child's
        // are opened for its one read.
        let open = |name: &str| -> Result<std::fs::File, String> {
            let path = format!("/proc/{}/{name}", pid.expect("a child's pid"));
            std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"))
        };
        let child_pagemap;
        let pagemap = match pid {
            Some(_) => {
                child_pagemap = open("pagemap")?;
                &child_pagemap
            }
            None => &self.pagemap,
        };
        let mut buf = vec![0u8; self.pages as usize * 8];
        pagemap
            .read_exact_at(&mut buf, self.base / PAGE * 8)
            .map_err(|e| format!("reading pagemap: {e}"))?;
        let mut out: Vec<(Page, PteState)> = buf
            .chunks_exact(8)
            .enumerate()
            .filter_map(|(i, e)| {
                let e = u64::from_le_bytes(e.try_into().expect("8 bytes"));
                decode(e, self.zero_pfn).map(|s| (i as Page, s))
            })
            .collect();
        if self.copied {
            let child_mem;
            let mem = match pid {
                Some(_) => {
                    child_mem = open("mem")?;
                    &child_mem
                }
                None => &self.mem,
            };
            // The tag of a readable page only (a VMA with PROT_READ): mem
            // does not read the others on every kernel (7.3's FOLL_FORCE
            // policy: EIO), so the model shows none there either.
            for (page, s) in &mut out {
                let read = readable.iter().any(|r| r.contains(page));
                if read && matches!(s.kind, PteKind::Anon | PteKind::File) {
                    let mut b = [0u8; 8];
                    mem.read_exact_at(&mut b, self.addr(*page) + 8)
                        .map_err(|e| format!("reading the tag of page {page}: {e}"))?;
                    s.tag = u64::from_le_bytes(b);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_decode_to_kinds() {
        let zero = Some(77);
        assert_eq!(decode(0, zero), None);
        assert_eq!(decode(PM_PRESENT | 77, zero).unwrap().kind, PteKind::Zero);
        assert_eq!(decode(PM_PRESENT | 78, zero).unwrap().kind, PteKind::Anon);
        assert_eq!(decode(PM_PRESENT, None).unwrap().kind, PteKind::Zero);
        let anon = PM_PRESENT | PM_MMAP_EXCLUSIVE;
        assert_eq!(decode(anon, None).unwrap().kind, PteKind::Anon);
        assert_eq!(
            decode(PM_PRESENT | PM_FILE | 77, zero).unwrap().kind,
            PteKind::File
        );
        let m = decode(PM_SWAP | PM_UFFD_WP, zero).unwrap();
        assert_eq!(m, PteState::MARKER);
        assert_eq!(decode(PM_SWAP, zero).unwrap().kind, PteKind::Poison);
        assert!(decode(PM_PRESENT | PM_UFFD_WP | 78, zero).unwrap().wp);
    }
}
