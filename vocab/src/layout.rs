//! What every backend reports after a step: the list of VMAs in the arena,
//! and the one text form of a VMA.
//!
//! A [`Layout`] is sorted by address and is in *canonical form*: shmem objects
//! (one per `MAP_SHARED|MAP_ANONYMOUS` mmap) and anon_vmas, known to each
//! backend by its own private names, are renumbered 0, 1, 2… in order of
//! first appearance, so two layouts compare equal exactly when they are
//! equal up to renaming objects.
//!
//! A layout also says which fields its backend does NOT observe
//! ([`Unobserved`]): the live kernel cannot see the page offset of private
//! anonymous memory (smaps prints 0 for it). Such a field is blanked and
//! printed as `?` (`anon@?`); [`Layout::agrees_with`] compares two layouts on
//! what both observe, and never treats an unknown as equal by construction:
//! the raw `==` of a layout with unknowns and one without is false.
//!
//! The text form of a VMA (its `Display`, parsed by [`Vma::parse`]) is
//! `[S,E) PROT BACKING@PGOFF FLAG… [anon_vma=N] [uffd=MODE] [ctx=C]`, for example
//! `[0,5) rw- anon@0 account maywrite uffd=missing ctx=0`. Trace `expect`
//! lines, the kernel worker's answers and `replay` all use it.

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

mod parse;

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
/// smaps shows: `ac nr sh ms mw`, those madvise sets: `dc wf dd hg nh mg`,
/// and those mlock sets: `lo lf`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct VmFlags(pub u16);

impl VmFlags {
    /// VM_ACCOUNT (`ac`).
    pub const ACCOUNT: u16 = 1;
    /// VM_NORESERVE (`nr`).
    pub const NORESERVE: u16 = 2;
    /// VM_SHARED (`sh`).
    pub const SHARED: u16 = 4;
    /// VM_MAYSHARE (`ms`).
    pub const MAYSHARE: u16 = 8;
    /// VM_MAYWRITE (`mw`).
    pub const MAYWRITE: u16 = 16;
    /// VM_DONTCOPY (`dc`): MADV_DONTFORK.
    pub const DONTCOPY: u16 = 32;
    /// VM_WIPEONFORK (`wf`): MADV_WIPEONFORK.
    pub const WIPEONFORK: u16 = 64;
    /// VM_DONTDUMP (`dd`): MADV_DONTDUMP.
    pub const DONTDUMP: u16 = 128;
    /// VM_HUGEPAGE (`hg`): MADV_HUGEPAGE.
    pub const HUGEPAGE: u16 = 256;
    /// VM_NOHUGEPAGE (`nh`): MADV_NOHUGEPAGE.
    pub const NOHUGEPAGE: u16 = 512;
    /// VM_MERGEABLE (`mg`): MADV_MERGEABLE.
    pub const MERGEABLE: u16 = 1024;
    /// VM_LOCKED (`lo`): mlock.
    pub const LOCKED: u16 = 2048;
    /// VM_LOCKONFAULT (`lf`): mlock2(MLOCK_ONFAULT).
    pub const LOCKONFAULT: u16 = 4096;

    /// Names in display order, with the smaps code of each.
    pub const NAMES: [(u16, &'static str, &'static str); 13] = [
        (Self::ACCOUNT, "account", "ac"),
        (Self::NORESERVE, "noreserve", "nr"),
        (Self::SHARED, "shared", "sh"),
        (Self::MAYSHARE, "mayshare", "ms"),
        (Self::MAYWRITE, "maywrite", "mw"),
        (Self::DONTCOPY, "dontcopy", "dc"),
        (Self::WIPEONFORK, "wipeonfork", "wf"),
        (Self::DONTDUMP, "dontdump", "dd"),
        (Self::HUGEPAGE, "hugepage", "hg"),
        (Self::NOHUGEPAGE, "nohugepage", "nh"),
        (Self::MERGEABLE, "mergeable", "mg"),
        (Self::LOCKED, "locked", "lo"),
        (Self::LOCKONFAULT, "lockonfault", "lf"),
    ];

    pub const fn has(self, bit: u16) -> bool {
        self.0 & bit != 0
    }
    pub fn set(&mut self, bit: u16, on: bool) {
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

/// The `VmFlags:` line of an smaps entry, decoded through the tables of
/// the vocabulary ([`VmFlags::NAMES`], [`Mode::SMAPS_CODES`], the prot
/// codes `rd wr ex`): the one place the kernel worker reads flags from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SmapsFlags {
    /// `rd wr ex` as [`Prot`] bits.
    pub prot: Prot,
    pub flags: VmFlags,
    pub uffd: Mode,
}

/// Codes that an arena VMA may carry and that decide nothing here:
/// VM_MAYREAD and VM_MAYEXEC (every mapping of the arena has both), and
/// VM_SOFTDIRTY (`sd`: every new VMA of a kernel built with
/// CONFIG_MEM_SOFT_DIRTY, as Debian's are, has it; it is in
/// VM_IGNORE_MERGE, so the kernel ignores it when merging).
pub const SMAPS_IGNORED: [&str; 3] = ["mr", "me", "sd"];

impl SmapsFlags {
    /// Decodes the codes after `VmFlags:`. A code outside the tables is an
    /// error: a flag the harness would otherwise silently ignore; except
    /// one `??` on a locked VMA, which is VM_LOCKONFAULT on kernels before
    /// 6.12 (they print no mnemonic for it).
    pub fn decode(codes: &str) -> Result<SmapsFlags, String> {
        let mut unnamed = 0;
        let mut out = SmapsFlags {
            prot: Prot::NONE,
            flags: VmFlags::default(),
            uffd: Mode::NONE,
        };
        for code in codes.split_ascii_whitespace() {
            if let Some((bit, _, _)) = VmFlags::NAMES.iter().find(|(_, _, c)| *c == code) {
                out.flags.set(*bit, true);
            } else if let Some((m, _)) = Mode::SMAPS_CODES.iter().find(|(_, c)| *c == code) {
                out.uffd = out.uffd.union(*m);
            } else if let Some((b, _)) = Prot::SMAPS_CODES.iter().find(|(_, c)| *c == code) {
                out.prot = Prot::from_bits(out.prot.bits() | b);
            } else if code == "??" {
                unnamed += 1;
            } else if !SMAPS_IGNORED.contains(&code) {
                return Err(format!("unexpected VmFlags code `{code}`"));
            }
        }
        // Before 6.12 smaps has no mnemonic for VM_LOCKONFAULT and prints
        // `??`: on a locked VMA that is the one flag it can be.
        if unnamed == 1 && out.flags.has(VmFlags::LOCKED) && !out.flags.has(VmFlags::LOCKONFAULT) {
            out.flags.set(VmFlags::LOCKONFAULT, true);
        } else if unnamed > 0 {
            return Err("unexpected VmFlags code `??`".to_string());
        }
        Ok(out)
    }
}

impl fmt::Debug for VmFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.names().join(" "))
    }
}

/// The fields a backend may be unable to observe. A layout carries the set
/// its backend does not observe; those fields are blanked in it (set to 0)
/// and printed as `?`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug)]
pub struct Unobserved(pub u8);

impl Unobserved {
    /// Everything observed.
    pub const NONE: Unobserved = Unobserved(0);
    /// The page offset (vm_pgoff) of private anonymous memory: smaps prints
    /// 0 for it, so the live kernel cannot be asked.
    pub const ANON_PGOFF: Unobserved = Unobserved(1);
    /// Which anon_vma a private VMA has, if any: smaps has no such field
    /// (its `Anonymous:` bytes say nothing of a VMA whose write failed).
    pub const ANON_VMA: Unobserved = Unobserved(2);
    /// The page table entries ([`Layout::ptes`]: what each page has, its
    /// uffd-wp bit, its content tag): a trace's `expect` layout says
    /// nothing of them unless it has an `expect ptes` or `expect uffd-wp`
    /// line.
    pub const PTES: Unobserved = Unobserved(4);

    pub const fn contains(self, other: Unobserved) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }
    pub const fn union(self, other: Unobserved) -> Unobserved {
        Unobserved(self.0 | other.0)
    }
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// Is the page offset of `vma` unobserved?
    pub fn hides_pgoff(self, vma: &Vma) -> bool {
        self.contains(Self::ANON_PGOFF) && vma.backing == Backing::Anon
    }
    /// Is the anon_vma of `vma` unobserved? (A shared VMA never has one,
    /// so that is known.)
    pub fn hides_anon_vma(self, vma: &Vma) -> bool {
        self.contains(Self::ANON_VMA) && vma.is_private()
    }
}

/// One VMA as every backend reports it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Vma {
    pub start: Page,
    pub end: Page,
    pub prot: Prot,
    pub backing: Backing,
    /// vm_pgoff relative to the arena for anonymous memory (so it is the page
    /// the memory was mapped at), the file page offset otherwise.
    pub pgoff: Page,
    pub flags: VmFlags,
    /// VM_UFFD_MISSING / VM_UFFD_WP / VM_UFFD_MINOR.
    pub uffd: Mode,
    /// The owning userfaultfd context; `None` iff `uffd` is empty.
    pub ctx: Option<u8>,
    /// The VMA's anon_vma, by identity (numbered by first appearance in a
    /// layout); `None` until a write fault gives it one. Only private VMAs
    /// have one.
    pub anon_vma: Option<u32>,
}

impl Vma {
    /// A private mapping (anonymous, or MAP_PRIVATE of a file): the kind
    /// that can have an anon_vma.
    pub fn is_private(&self) -> bool {
        !self.flags.has(VmFlags::MAYSHARE)
    }
    pub fn len(&self) -> Page {
        self.end - self.start
    }
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// May `self` (left) and `right` (adjacent, to its right) be one VMA?
    /// Equal flags, prot, uffd bits and ctx, the same object, a linear
    /// page offset, and compatible anon_vmas: equal, or one of them has
    /// none (the kernel's `is_mergeable_vma`, `can_vma_merge_before/after`
    /// and `is_mergeable_anon_vma`, with no fork).
    pub fn mergeable_with(&self, right: &Vma) -> bool {
        self.same_but_anon_vma(right)
            && (self.anon_vma.is_none()
                || right.anon_vma.is_none()
                || self.anon_vma == right.anon_vma)
    }

    /// Everything of [`Vma::mergeable_with`] but the anon_vmas.
    pub fn same_but_anon_vma(&self, right: &Vma) -> bool {
        self.end == right.start
            && self.prot == right.prot
            && self.flags == right.flags
            && self.uffd == right.uffd
            && self.ctx == right.ctx
            && self.backing == right.backing
            && self.pgoff + self.len() == right.pgoff
    }

    /// [`Vma::mergeable_with`], judged only on what is observed: a pair
    /// whose merge depends on an unobserved field is not surely mergeable.
    pub fn surely_mergeable_with(&self, right: &Vma, unobserved: Unobserved) -> bool {
        let hidden = |v: &Vma| unobserved.hides_pgoff(v) || unobserved.hides_anon_vma(v);
        if hidden(self) || hidden(right) {
            return false;
        }
        self.mergeable_with(right)
    }

    /// The text form with the `unobserved` fields printed as `?`.
    pub fn display(&self, unobserved: Unobserved) -> impl fmt::Display + '_ {
        VmaText(self, unobserved)
    }

    /// The JSON object of `replay --json`: `{"start","end","prot","kind",
    /// "object","pgoff","flags","uffd","ctx"}`, `pgoff` null when unobserved.
    pub fn to_json(&self, unobserved: Unobserved) -> serde_json::Value {
        serde_json::json!({
            "start": self.start,
            "end": self.end,
            "prot": self.prot.to_string(),
            "kind": self.backing.kind_name(),
            "object": self.backing.object(),
            "pgoff": if unobserved.hides_pgoff(self) { None } else { Some(self.pgoff) },
            "flags": self.flags.names(),
            "anon_vma": if unobserved.hides_anon_vma(self) {
                serde_json::json!("?")
            } else {
                serde_json::json!(self.anon_vma)
            },
            "uffd": self.uffd.names(),
            "ctx": self.ctx,
        })
    }
}

struct VmaText<'a>(&'a Vma, Unobserved);

impl fmt::Display for VmaText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        write!(f, "[{},{}) {} {}@", v.start, v.end, v.prot, v.backing)?;
        if self.1.hides_pgoff(v) {
            write!(f, "?")?;
        } else {
            write!(f, "{}", v.pgoff)?;
        }
        for n in v.flags.names() {
            write!(f, " {n}")?;
        }
        if self.1.hides_anon_vma(v) {
            write!(f, " anon_vma=?")?;
        } else if let Some(a) = v.anon_vma {
            write!(f, " anon_vma={a}")?;
        }
        if !v.uffd.is_empty() {
            write!(f, " uffd={}", v.uffd)?;
        }
        if let Some(c) = v.ctx {
            write!(f, " ctx={c}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Vma {
    /// `[0,5) rw- anon@0 account maywrite uffd=missing ctx=0`: the text form
    /// (see the module docs), everything observed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        VmaText(self, Unobserved::NONE).fmt(f)
    }
}

/// What a page table entry holds, as the kernel's pagemap tells it apart.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum PteKind {
    /// `w`: no page, a uffd-wp marker (pagemap: PM_SWAP with PM_UFFD_WP;
    /// its [`PteState::wp`] is set).
    Marker,
    /// `z`: the shared zero page (present, no page behind it).
    Zero,
    /// `a`: a private anonymous page (present, not PM_FILE).
    Anon,
    /// `f`: a page of the page cache of a file or shmem object (PM_FILE).
    File,
    /// `p`: a poison marker (UFFDIO_POISON; PM_SWAP without PM_UFFD_WP).
    Poison,
}

impl PteKind {
    /// Every kind with its one-letter code.
    pub const CODES: [(PteKind, char); 5] = [
        (PteKind::Marker, 'w'),
        (PteKind::Zero, 'z'),
        (PteKind::Anon, 'a'),
        (PteKind::File, 'f'),
        (PteKind::Poison, 'p'),
    ];
    pub fn code(self) -> char {
        Self::CODES
            .iter()
            .find(|(k, _)| *k == self)
            .map(|(_, c)| *c)
            .expect("every kind has a code")
    }
    /// Is a page there (pagemap's PM_PRESENT)?
    pub const fn present(self) -> bool {
        matches!(self, PteKind::Zero | PteKind::Anon | PteKind::File)
    }
}

/// One page's page table entry: what it holds, its uffd-wp bit (pagemap bit
/// 57), and the content tag of the page it maps (the little-endian u64 at
/// byte 8 of the page; 0 for a page that no UFFDIO_COPY filled, see
/// [`crate::Op::Fill`], and 0 where the page is not readable: the kernel
/// backend reads it through /proc/PID/mem, which 7.3 refuses for a page
/// without PROT_READ). Its text is `CODE[+wp][=TAG]`: `a`, `f+wp`, `a=5`,
/// `w` (a marker has the bit by definition).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct PteState {
    pub kind: PteKind,
    pub wp: bool,
    pub tag: u64,
}

impl PteState {
    /// A present page of `kind`, without the bit, tag 0.
    pub const fn page(kind: PteKind) -> PteState {
        PteState {
            kind,
            wp: false,
            tag: 0,
        }
    }
    /// A uffd-wp marker on a page that is not there.
    pub const MARKER: PteState = PteState {
        kind: PteKind::Marker,
        wp: true,
        tag: 0,
    };
}

impl fmt::Display for PteState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind.code())?;
        if self.wp && self.kind != PteKind::Marker {
            write!(f, "+wp")?;
        }
        if self.tag != 0 {
            write!(f, "={}", self.tag)?;
        }
        Ok(())
    }
}

/// Names 0, 1, 2… given in order of first appearance: the first few
/// looked up in a short array, the rest in a map (a layout of thousands
/// of VMAs may have thousands of objects).
#[derive(Default)]
struct Renumber {
    first: [u32; Renumber::SHORT],
    len: usize,
    rest: BTreeMap<u32, u32>,
}

impl Renumber {
    /// How many ids the short array holds before the map takes the rest.
    const SHORT: usize = 16;

    /// The name of `id`: its own if seen before, else the next.
    fn name(&mut self, id: u32) -> u32 {
        if let Some(i) = self.first[..self.len].iter().position(|&f| f == id) {
            return i as u32;
        }
        if self.len < Self::SHORT {
            self.first[self.len] = id;
            self.len += 1;
            return self.len as u32 - 1;
        }
        let next = (Self::SHORT + self.rest.len()) as u32;
        *self.rest.entry(id).or_insert(next)
    }
}

/// The VMAs of the arena, sorted, in canonical form, with the fields their
/// backend does not observe (see the module docs).
#[derive(PartialEq, Eq, Hash, Default)]
pub struct Layout {
    vmas: Vec<Vma>,
    unobserved: Unobserved,
    /// The pages (arena-relative, sorted) whose page table entry is not
    /// empty, with what it holds; empty when unobserved.
    ptes: Vec<(Page, PteState)>,
}

impl Clone for Layout {
    fn clone(&self) -> Layout {
        Layout {
            vmas: self.vmas.clone(),
            unobserved: self.unobserved,
            ptes: self.ptes.clone(),
        }
    }

    /// Into the vectors `self` holds (a backend's copy restored from a
    /// base keeps its memory: [`crate::Backend::restore`]).
    fn clone_from(&mut self, source: &Layout) {
        let Layout {
            vmas,
            unobserved,
            ptes,
        } = self;
        vmas.clone_from(&source.vmas);
        *unobserved = source.unobserved;
        ptes.clone_from(&source.ptes);
    }
}

impl Layout {
    /// Sorts the VMAs and renumbers shmem objects by first appearance;
    /// everything observed.
    pub fn new(vmas: Vec<Vma>) -> Layout {
        Layout::observed(vmas, Unobserved::NONE)
    }

    /// [`Layout::new`] for a backend that does not observe `unobserved`:
    /// those fields are blanked.
    pub fn observed(mut vmas: Vec<Vma>, unobserved: Unobserved) -> Layout {
        if !vmas.is_sorted_by_key(|v| (v.start, v.end)) {
            vmas.sort_by_key(|v| (v.start, v.end));
        }
        let mut names = Renumber::default();
        let mut anon_vmas = Renumber::default();
        for v in &mut vmas {
            if let Backing::Shmem(id) = v.backing {
                v.backing = Backing::Shmem(names.name(id));
            }
            if unobserved.hides_pgoff(v) {
                v.pgoff = 0;
            }
            if unobserved.hides_anon_vma(v) {
                v.anon_vma = None;
            }
            if let Some(id) = v.anon_vma {
                v.anon_vma = Some(anon_vmas.name(id));
            }
        }
        Layout {
            vmas,
            unobserved,
            ptes: Vec::new(),
        }
    }

    /// The layout with `ptes` as its page table entries (ignored when this
    /// layout does not observe them). A page listed twice keeps its last
    /// entry. (Inlined: every backend calls it on every step, with entries
    /// sorted without repeats, as it builds them.)
    #[inline]
    pub fn with_ptes(mut self, mut ptes: Vec<(Page, PteState)>) -> Layout {
        if !self.unobserved.contains(Unobserved::PTES) {
            if !ptes.windows(2).all(|w| w[0].0 < w[1].0) {
                sort_ptes(&mut ptes);
            }
            self.ptes = ptes;
        }
        self
    }

    /// The layout's two vectors, emptied, for a backend to build another
    /// layout in ([`crate::Backend::recycle`]).
    pub fn into_buffers(self) -> (Vec<Vma>, Vec<(Page, PteState)>) {
        let Layout {
            mut vmas,
            unobserved: _,
            mut ptes,
        } = self;
        vmas.clear();
        ptes.clear();
        (vmas, ptes)
    }

    /// The pages whose page table entry is not empty, sorted, with what it
    /// holds.
    pub fn ptes(&self) -> &[(Page, PteState)] {
        &self.ptes
    }

    /// The entry of `page`, if it has one.
    pub fn pte(&self, page: Page) -> Option<PteState> {
        self.ptes
            .binary_search_by_key(&page, |(p, _)| *p)
            .ok()
            .map(|i| self.ptes[i].1)
    }

    /// The pages whose page table entry has the uffd-wp bit, sorted.
    pub fn wp_pages(&self) -> Vec<Page> {
        self.ptes
            .iter()
            .filter(|(_, e)| e.wp)
            .map(|(p, _)| *p)
            .collect()
    }

    pub fn vmas(&self) -> &[Vma] {
        &self.vmas
    }
    /// The fields this layout's backend does not observe.
    pub fn unobserved(&self) -> Unobserved {
        self.unobserved
    }
    pub fn len(&self) -> usize {
        self.vmas.len()
    }
    pub fn is_empty(&self) -> bool {
        self.vmas.is_empty()
    }
    /// The VMA that contains `page`, if any.
    pub fn find(&self, page: Page) -> Option<&Vma> {
        self.vmas.iter().find(|v| v.start <= page && page < v.end)
    }

    /// This layout as a backend that also misses `more` would see it.
    pub fn project(&self, more: Unobserved) -> Layout {
        Layout::observed(self.vmas.clone(), self.unobserved.union(more))
            .with_ptes(self.ptes.clone())
    }

    /// Equal on every field that both layouts observe.
    pub fn agrees_with(&self, other: &Layout) -> bool {
        if self.unobserved == other.unobserved {
            return self == other;
        }
        let both = self.unobserved.union(other.unobserved);
        self.project(both) == other.project(both)
    }

    /// The layout's `expect` lines' bodies, one per VMA, in the text form.
    pub fn lines(&self) -> Vec<String> {
        self.vmas
            .iter()
            .map(|v| v.display(self.unobserved).to_string())
            .collect()
    }

    /// The JSON array of `replay --json`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Array(
            self.vmas
                .iter()
                .map(|v| v.to_json(self.unobserved))
                .collect(),
        )
    }
}

impl fmt::Debug for Layout {
    /// One VMA per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.vmas.is_empty() {
            writeln!(f, "(no VMAs)")?;
        }
        for v in &self.vmas {
            writeln!(f, "{}", v.display(self.unobserved))?;
        }
        if !self.ptes.is_empty() {
            writeln!(f, "ptes {}", ptes_text(&self.ptes))?;
        }
        Ok(())
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Sorts `ptes` by page, a page listed twice keeping its last entry.
fn sort_ptes(ptes: &mut Vec<(Page, PteState)>) {
    ptes.sort_by_key(|(p, _)| *p);
    ptes.reverse();
    ptes.dedup_by_key(|(p, _)| *p);
    ptes.reverse();
}

/// Pages as the `expect uffd-wp` line writes them: `3 4 5`, or `none`.
pub fn wp_text(pages: &[Page]) -> String {
    if pages.is_empty() {
        return "none".to_string();
    }
    let v: Vec<String> = pages.iter().map(|p| p.to_string()).collect();
    v.join(" ")
}

/// Page table entries as the `expect ptes` line writes them: each entry
/// `PAGE:STATE` ([`PteState`]'s text), a run of consecutive pages with one
/// state as `FIRST-LAST:STATE`, `none` for no entry: `0-3:a 5:f+wp 7:a=8`.
pub fn ptes_text(ptes: &[(Page, PteState)]) -> String {
    if ptes.is_empty() {
        return "none".to_string();
    }
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < ptes.len() {
        let (first, state) = ptes[i];
        let mut last = first;
        while i + 1 < ptes.len() && ptes[i + 1] == (last + 1, state) {
            i += 1;
            last += 1;
        }
        out.push(if last == first {
            format!("{first}:{state}")
        } else {
            format!("{first}-{last}:{state}")
        });
        i += 1;
    }
    out.join(" ")
}

/// The inverse of [`ptes_text`], with what is wrong on error.
pub fn parse_ptes(s: &str) -> Result<Vec<(Page, PteState)>, String> {
    if s.trim() == "none" {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for w in s.split_ascii_whitespace() {
        let bad = |what: &str| format!("bad page table entry {w:?}: {what}");
        let (pages, state) = w
            .split_once(':')
            .ok_or_else(|| bad("expected PAGE:STATE"))?;
        let (first, last) = match pages.split_once('-') {
            Some((a, b)) => (a, b),
            None => (pages, pages),
        };
        let first: Page = first.parse().map_err(|_| bad("expected a page number"))?;
        let last: Page = last.parse().map_err(|_| bad("expected a page number"))?;
        if last < first || last - first >= crate::op::MAX_PAGES {
            return Err(bad("the run's last page is before its first, or too far"));
        }
        let (state, tag) = match state.split_once('=') {
            Some((st, t)) => (st, t.parse().map_err(|_| bad("expected a tag number"))?),
            None => (state, 0),
        };
        let (code, wp) = match state.strip_suffix("+wp") {
            Some(c) => (c, true),
            None => (state, false),
        };
        let mut chars = code.chars();
        let (Some(c), None) = (chars.next(), chars.next()) else {
            return Err(bad("expected one of the codes w z a f p"));
        };
        let kind = PteKind::CODES
            .iter()
            .find(|(_, k)| *k == c)
            .map(|(k, _)| *k)
            .ok_or_else(|| bad("expected one of the codes w z a f p"))?;
        let wp = wp || kind == PteKind::Marker;
        for p in first..=last {
            out.push((p, PteState { kind, wp, tag }));
        }
    }
    Ok(out)
}

/// The inverse of [`wp_text`].
pub fn parse_wp(s: &str) -> Option<Vec<Page>> {
    if s.trim() == "none" {
        return Some(Vec::new());
    }
    s.split_ascii_whitespace().map(|w| w.parse().ok()).collect()
}

#[cfg(test)]
mod tests;
