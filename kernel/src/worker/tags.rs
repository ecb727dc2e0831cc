//! The source buffer of `copy` (UFFDIO_COPY): one page per arena page,
//! page `p` holding the content tag `p+1` (a little-endian u64 at byte 8,
//! the rest zero), so that `copy CTX START LEN` copies from its pages
//! `START..START+LEN`. Mapped on the first copy (where the kernel likes,
//! never in the arena), and a page is written only when a copy first needs
//! it: the buffer costs what the copies touch, whatever the arena's size.

use std::ffi::c_void;

use uffd_vocab::Page;

use super::arena::{Worker, PAGE};

/// The mapping and which of its pages hold their tag yet.
pub(super) struct TagBuffer {
    at: *mut c_void,
    written: Vec<bool>,
}

impl Drop for TagBuffer {
    fn drop(&mut self) {
        // SAFETY: our own mapping, of this size, unmapped once.
        let _ = unsafe { rustix::mm::munmap(self.at, self.written.len() * PAGE as usize) };
    }
}

impl Worker {
    /// The address of the source pages `[start, start+len)` of a copy,
    /// with their tags written.
    pub(super) fn tag_source(&mut self, start: Page, len: Page) -> Result<u64, String> {
        if self.tags.is_none() {
            let size = (self.pages.max(1) * PAGE) as usize;
            // SAFETY: a fresh private mapping, placed by the kernel.
            let at = unsafe {
                rustix::mm::mmap_anonymous(
                    std::ptr::null_mut(),
                    size,
                    rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
                    rustix::mm::MapFlags::PRIVATE | rustix::mm::MapFlags::NORESERVE,
                )
            }
            .map_err(|e| format!("mmap of the copy buffer: errno {}", e.raw_os_error()))?;
            self.tags = Some(TagBuffer {
                at,
                written: vec![false; self.pages.max(1) as usize],
            });
        }
        let buf = self.tags.as_mut().expect("mapped above");
        for p in start..start + len {
            let done = &mut buf.written[p as usize];
            if !*done {
                let tag = (p + 1).to_le_bytes();
                // SAFETY: byte 8 of page p of our own writable mapping of
                // `written.len()` pages (p < pages: the op was validated).
                unsafe {
                    let at = (buf.at as *mut u8).add((p * PAGE) as usize + 8);
                    std::ptr::copy_nonoverlapping(tag.as_ptr(), at, 8);
                }
                *done = true;
            }
        }
        Ok(buf.at as u64 + start * PAGE)
    }
}
