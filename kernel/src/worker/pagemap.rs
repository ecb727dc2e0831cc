//! The uffd-wp bit of the arena's pages: bit 57 (PM_UFFD_WP) of each
//! page's 64-bit entry in /proc/PID/pagemap, set for a present pte with the
//! bit and for a pte marker (a page of a non-anonymous VMA that is not
//! there).

use std::os::unix::fs::FileExt;

use uffd_vocab::Page;

use super::arena::{Worker, PAGE};

/// PM_UFFD_WP in a pagemap entry.
const PM_UFFD_WP: u64 = 1 << 57;

impl Worker {
    /// The arena pages whose pagemap entry has PM_UFFD_WP, in the process
    /// `pid` (the worker itself for `None`).
    pub(super) fn wp_pages(&self, pid: Option<i32>) -> Result<Vec<Page>, String> {
        let path = match pid {
            Some(pid) => format!("/proc/{pid}/pagemap"),
            None => "/proc/self/pagemap".to_string(),
        };
        let file = std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?;
        let mut buf = vec![0u8; self.pages as usize * 8];
        file.read_exact_at(&mut buf, self.base / PAGE * 8)
            .map_err(|e| format!("reading {path}: {e}"))?;
        Ok(buf
            .chunks_exact(8)
            .enumerate()
            .filter(|(_, e)| {
                u64::from_le_bytes((*e).try_into().expect("8 bytes")) & PM_UFFD_WP != 0
            })
            .map(|(i, _)| i as Page)
            .collect())
    }
}
