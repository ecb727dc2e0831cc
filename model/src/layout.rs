//! What every backend reports after a step: the list of VMAs in the arena.
//!
//! A [`Layout`] is sorted by address and is in *canonical form*: shmem objects
//! (one per `MAP_SHARED|MAP_ANONYMOUS` mmap, known to each backend by its own
//! private name) are renumbered 0, 1, 2… in order of first appearance, so two
//! layouts compare equal exactly when they are equal up to renaming objects.

use std::collections::BTreeMap;
use std::fmt;

use crate::op::{Mode, Page, Prot};

/// The object behind a VMA (the kernel's `vm_file`, or none).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum Backing {
    /// Private anonymous memory (`vm_file == NULL`).
    Anon,
    /// The shmem object of one `MAP_SHARED|MAP_ANONYMOUS` mmap.
    Shmem(u32),
    /// Memfd number F of the sequence.
    File(u8),
}

impl Backing {
    /// The JSON `kind`: `anon`, `shmem` or `file`.
    pub fn kind_name(self) -> &'static str {
        match self {
            Backing::Anon => "anon",
            Backing::Shmem(_) => "shmem",
            Backing::File(_) => "file",
        }
    }
    /// The JSON `object`: the shmem or file number, none for anonymous memory.
    pub fn object(self) -> Option<u32> {
        match self {
            Backing::Anon => None,
            Backing::Shmem(n) => Some(n),
            Backing::File(f) => Some(f as u32),
        }
    }
}

impl fmt::Display for Backing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backing::Anon => write!(f, "anon"),
            Backing::Shmem(n) => write!(f, "shmem#{n}"),
            Backing::File(n) => write!(f, "file={n}"),
        }
    }
}

/// The VmFlags bits (besides prot and uffd) that decide merging and that
/// smaps shows: `ac nr sh ms mw`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct VmFlags(pub u8);

impl VmFlags {
    /// VM_ACCOUNT (`ac`).
    pub const ACCOUNT: u8 = 1;
    /// VM_NORESERVE (`nr`).
    pub const NORESERVE: u8 = 2;
    /// VM_SHARED (`sh`).
    pub const SHARED: u8 = 4;
    /// VM_MAYSHARE (`ms`).
    pub const MAYSHARE: u8 = 8;
    /// VM_MAYWRITE (`mw`).
    pub const MAYWRITE: u8 = 16;

    /// Names in display order, with the smaps code of each.
    pub const NAMES: [(u8, &'static str, &'static str); 5] = [
        (Self::ACCOUNT, "account", "ac"),
        (Self::NORESERVE, "noreserve", "nr"),
        (Self::SHARED, "shared", "sh"),
        (Self::MAYSHARE, "mayshare", "ms"),
        (Self::MAYWRITE, "maywrite", "mw"),
    ];

    pub const fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
    pub fn set(&mut self, bit: u8, on: bool) {
        if on {
            self.0 |= bit
        } else {
            self.0 &= !bit
        }
    }
    pub fn names(self) -> Vec<&'static str> {
        Self::NAMES
            .iter()
            .filter(|(b, _, _)| self.has(*b))
            .map(|(_, n, _)| *n)
            .collect()
    }
}

impl fmt::Debug for VmFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.names().join(" "))
    }
}

/// One VMA as every backend reports it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Vma {
    pub start: Page,
    pub end: Page,
    pub prot: Prot,
    pub backing: Backing,
    /// vm_pgoff relative to the arena for anonymous memory (so it equals the
    /// page the memory was mapped at), the file page offset otherwise.
    pub pgoff: Page,
    pub flags: VmFlags,
    /// VM_UFFD_MISSING / VM_UFFD_WP / VM_UFFD_MINOR.
    pub uffd: Mode,
    /// The owning userfaultfd context; `None` iff `uffd` is empty.
    pub ctx: Option<u8>,
}

impl Vma {
    pub fn len(&self) -> Page {
        self.end - self.start
    }
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// Reference §1: may `self` (left) and `right` (adjacent, to its right)
    /// be one VMA? Equal flags, prot, uffd bits and ctx, the same object, and
    /// a linear page offset.
    pub fn mergeable_with(&self, right: &Vma) -> bool {
        self.end == right.start
            && self.prot == right.prot
            && self.flags == right.flags
            && self.uffd == right.uffd
            && self.ctx == right.ctx
            && self.backing == right.backing
            && self.pgoff + self.len() == right.pgoff
    }
}

impl fmt::Display for Vma {
    /// `[0,5) rw- anon@0 account maywrite uffd=missing ctx=0`; this is also
    /// the form of a trace's `expect` line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{},{}) {} {}@{}",
            self.start, self.end, self.prot, self.backing, self.pgoff
        )?;
        for n in self.flags.names() {
            write!(f, " {n}")?;
        }
        if !self.uffd.is_empty() {
            write!(f, " uffd={}", self.uffd)?;
        }
        if let Some(c) = self.ctx {
            write!(f, " ctx={c}")?;
        }
        Ok(())
    }
}

/// The VMAs of the arena, sorted, in canonical form (see the module docs).
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Layout(Vec<Vma>);

impl Layout {
    /// Sorts the VMAs and renumbers shmem objects by first appearance.
    pub fn new(mut vmas: Vec<Vma>) -> Layout {
        vmas.sort_by_key(|v| (v.start, v.end));
        let mut names: BTreeMap<u32, u32> = BTreeMap::new();
        for v in &mut vmas {
            if let Backing::Shmem(id) = v.backing {
                let next = names.len() as u32;
                v.backing = Backing::Shmem(*names.entry(id).or_insert(next));
            }
        }
        Layout(vmas)
    }

    pub fn vmas(&self) -> &[Vma] {
        &self.0
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// The VMA that contains `page`, if any.
    pub fn find(&self, page: Page) -> Option<&Vma> {
        self.0.iter().find(|v| v.start <= page && page < v.end)
    }
}

impl fmt::Debug for Layout {
    /// One VMA per line, so `pretty_assertions` diffs line by line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return writeln!(f, "(no VMAs)");
        }
        for v in &self.0 {
            writeln!(f, "{v}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vma(start: Page, end: Page, backing: Backing) -> Vma {
        Vma {
            start,
            end,
            prot: Prot::RW,
            backing,
            pgoff: 0,
            flags: VmFlags(VmFlags::SHARED | VmFlags::MAYSHARE | VmFlags::MAYWRITE),
            uffd: Mode::NONE,
            ctx: None,
        }
    }

    #[test]
    fn shmem_objects_are_renumbered_by_first_appearance() {
        let a = Layout::new(vec![
            vma(4, 6, Backing::Shmem(77)),
            vma(0, 2, Backing::Shmem(9)),
            vma(2, 4, Backing::Shmem(77)),
        ]);
        let b = Layout::new(vec![
            vma(0, 2, Backing::Shmem(1)),
            vma(2, 4, Backing::Shmem(0)),
            vma(4, 6, Backing::Shmem(0)),
        ]);
        assert_eq!(a, b);
        assert_eq!(a.vmas()[0].backing, Backing::Shmem(0));
        assert_eq!(a.vmas()[2].backing, Backing::Shmem(1));
    }

    #[test]
    fn display_is_the_expect_form() {
        let mut v = vma(0, 5, Backing::Anon);
        v.flags = VmFlags(VmFlags::ACCOUNT | VmFlags::MAYWRITE);
        v.uffd = Mode::MISSING;
        v.ctx = Some(0);
        assert_eq!(
            v.to_string(),
            "[0,5) rw- anon@0 account maywrite uffd=missing ctx=0"
        );
    }
}
