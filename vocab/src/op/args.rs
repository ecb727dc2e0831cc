//! The arguments of ops: page protection, registration modes, madvise
//! advice, uffd features, mremap targets and mapping kinds, each with its
//! one text form (`Display` and `FromStr` are inverses).

use std::fmt;
use std::str::FromStr;

use arbitrary::Arbitrary;

use super::{Page, MAX_FILES, MAX_PGOFF};

/// `Display` and `FromStr` for a type whose text is its name in its `ALL`
/// table; `what` names the type in errors.
macro_rules! named_text {
    ($t:ty, $what:literal) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<$t, String> {
                by_name(&Self::ALL, s, $what)
            }
        }
    };
}

/// Page protection: any combination of read, write and exec.
/// The bits are the kernel's `PROT_READ` (1), `PROT_WRITE` (2), `PROT_EXEC` (4).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Arbitrary)]
pub struct Prot(u8);

impl Prot {
    pub const NONE: Prot = Prot(0);
    pub const READ: u8 = 1;
    pub const WRITE: u8 = 2;
    pub const EXEC: u8 = 4;
    pub const RW: Prot = Prot(3);
    /// The smaps `VmFlags` codes of the bits.
    pub const SMAPS_CODES: [(u8, &'static str); 3] =
        [(Self::READ, "rd"), (Self::WRITE, "wr"), (Self::EXEC, "ex")];

    /// Any value is accepted; bits above `rwx` are dropped.
    pub const fn from_bits(bits: u8) -> Prot {
        Prot(bits & 7)
    }
    pub const fn bits(self) -> u8 {
        self.0 & 7
    }
    pub const fn read(self) -> bool {
        self.0 & Self::READ != 0
    }
    pub const fn write(self) -> bool {
        self.0 & Self::WRITE != 0
    }
    pub const fn exec(self) -> bool {
        self.0 & Self::EXEC != 0
    }
}

impl fmt::Display for Prot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = |on: bool, ch: char| if on { ch } else { '-' };
        write!(
            f,
            "{}{}{}",
            c(self.read(), 'r'),
            c(self.write(), 'w'),
            c(self.exec(), 'x')
        )
    }
}

impl fmt::Debug for Prot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Prot {
    type Err = String;
    fn from_str(s: &str) -> Result<Prot, String> {
        let b = s.as_bytes();
        let ok = b.len() == 3
            && matches!(b[0], b'r' | b'-')
            && matches!(b[1], b'w' | b'-')
            && matches!(b[2], b'x' | b'-');
        if !ok {
            return Err(format!(
                "bad protection {s:?}: expected three characters like `rw-` (r, w, x or -)"
            ));
        }
        let mut bits = 0;
        if b[0] == b'r' {
            bits |= Prot::READ;
        }
        if b[1] == b'w' {
            bits |= Prot::WRITE;
        }
        if b[2] == b'x' {
            bits |= Prot::EXEC;
        }
        Ok(Prot(bits))
    }
}

/// A raw `uffdio_register.mode`. Any number is allowed (so `0` and unknown
/// bits are testable); the known bits are `UFFDIO_REGISTER_MODE_*`.
/// As a VMA attribute it holds the VM_UFFD_* bits, spelled the same way.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Arbitrary)]
pub struct Mode(pub u64);

impl Mode {
    pub const NONE: Mode = Mode(0);
    pub const MISSING: Mode = Mode(1);
    pub const WP: Mode = Mode(2);
    pub const MINOR: Mode = Mode(4);
    pub const KNOWN: u64 = 7;
    /// The smaps `VmFlags` codes of the VM_UFFD_* bits.
    pub const SMAPS_CODES: [(Mode, &'static str); 3] =
        [(Self::MISSING, "um"), (Self::WP, "uw"), (Self::MINOR, "ui")];

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub const fn contains(self, other: Mode) -> bool {
        self.0 & other.0 == other.0
    }
    pub const fn has_unknown_bits(self) -> bool {
        self.0 & !Self::KNOWN != 0
    }
    pub const fn union(self, other: Mode) -> Mode {
        Mode(self.0 | other.0)
    }
    /// The names of the known bits, in `missing`, `wp`, `minor` order.
    pub fn names(self) -> Vec<&'static str> {
        [
            (Self::MISSING, "missing"),
            (Self::WP, "wp"),
            (Self::MINOR, "minor"),
        ]
        .into_iter()
        .filter(|(m, _)| self.contains(*m))
        .map(|(_, n)| n)
        .collect()
    }
}

impl fmt::Display for Mode {
    /// `missing+wp` when every bit has a name and there is at least one;
    /// the plain decimal number otherwise (`0`, `8`, `9`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() || self.has_unknown_bits() {
            write!(f, "{}", self.0)
        } else {
            write!(f, "{}", self.names().join("+"))
        }
    }
}

impl fmt::Debug for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Mode, String> {
        if let Ok(n) = s.parse::<u64>() {
            return Ok(Mode(n));
        }
        let mut m = Mode::NONE;
        for part in s.split('+') {
            m = m.union(match part {
                "missing" => Mode::MISSING,
                "wp" => Mode::WP,
                "minor" => Mode::MINOR,
                _ => {
                    return Err(format!(
                    "bad mode {s:?}: expected `missing`, `wp`, `minor` joined by `+`, or a number"
                ))
                }
            });
        }
        Ok(m)
    }
}

/// A madvise(2) advice the trace language knows: those that change VMA
/// flags, and those that drop pages (`dontneed`, `remove`, `free`). Its
/// trace text is its name.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Arbitrary)]
pub enum Advice {
    DontFork,
    DoFork,
    WipeOnFork,
    KeepOnFork,
    DontDump,
    DoDump,
    Hugepage,
    NoHugepage,
    Mergeable,
    Unmergeable,
    /// MADV_DONTNEED: the range's page table entries are zapped.
    DontNeed,
    /// MADV_REMOVE: the backing file's pages are punched out (shared
    /// writable mappings only), and the entries zapped.
    Remove,
    /// MADV_FREE: private anonymous pages are freed lazily (here: kept,
    /// as nothing reclaims them in a short run).
    Free,
}

impl Advice {
    /// Every advice with its trace name.
    pub const ALL: [(Advice, &'static str); 13] = [
        (Advice::DontFork, "dontfork"),
        (Advice::DoFork, "dofork"),
        (Advice::WipeOnFork, "wipeonfork"),
        (Advice::KeepOnFork, "keeponfork"),
        (Advice::DontDump, "dontdump"),
        (Advice::DoDump, "dodump"),
        (Advice::Hugepage, "hugepage"),
        (Advice::NoHugepage, "nohugepage"),
        (Advice::Mergeable, "mergeable"),
        (Advice::Unmergeable, "unmergeable"),
        (Advice::DontNeed, "dontneed"),
        (Advice::Remove, "remove"),
        (Advice::Free, "free"),
    ];

    /// Does this advice drop pages (rather than change VMA flags)?
    pub const fn drops_pages(self) -> bool {
        matches!(self, Advice::DontNeed | Advice::Remove | Advice::Free)
    }

    pub fn name(self) -> &'static str {
        name_in(&Self::ALL, self)
    }
}

named_text!(Advice, "advice");

/// The name of `v` in a table of names that lists every value.
fn name_in<T: Copy + PartialEq>(all: &[(T, &'static str)], v: T) -> &'static str {
    all.iter()
        .find(|(a, _)| *a == v)
        .map(|(_, n)| *n)
        .expect("the table lists every value")
}

/// The value named `s` in a table of names, or an error listing them.
fn by_name<T: Copy>(all: &[(T, &'static str)], s: &str, what: &str) -> Result<T, String> {
    all.iter()
        .find(|(_, n)| *n == s)
        .map(|(a, _)| *a)
        .ok_or_else(|| {
            let names: Vec<&str> = all.iter().map(|(_, n)| *n).collect();
            format!("bad {what} {s:?}: expected one of {}", names.join(", "))
        })
}

/// The UFFDIO_API features an `open` asks for: a set of the
/// non-cooperative events, and `faults`. Its trace text is `none` or the
/// names joined by `+`, in this order:
/// `event-fork+event-remap+event-remove+event-unmap+faults`. Each event,
/// once raised, makes the call wait until the uffd's reader has read it.
/// Without `faults` the uffd has UFFD_FEATURE_SIGBUS: a fault userfaultfd
/// would deliver fails instead (SIGBUS, EFAULT for a kernel access).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Features(u8);

impl Features {
    /// `none`: what a ctx used before any `open` gets.
    pub const NONE: Features = Features(0);
    /// `event-fork`: UFFD_FEATURE_EVENT_FORK. fork(2) gives the child a new
    /// uffd for each such ctx, keeps the child's VMAs registered with it,
    /// and reports it in a FORK event.
    pub const FORK: Features = Features(1);
    /// `event-remap`: UFFD_FEATURE_EVENT_REMAP. A registered VMA that
    /// mremap moves keeps its registration, and a REMAP event says where.
    pub const REMAP: Features = Features(2);
    /// `event-remove`: UFFD_FEATURE_EVENT_REMOVE. madvise DONTNEED, FREE
    /// and REMOVE report each registered VMA's part in a REMOVE event.
    pub const REMOVE: Features = Features(4);
    /// `event-unmap`: UFFD_FEATURE_EVENT_UNMAP. munmap, an mmap over, and
    /// mremap's unmapping report the unmapped range in an UNMAP event.
    pub const UNMAP: Features = Features(8);
    /// `faults`: no UFFD_FEATURE_SIGBUS. A fault userfaultfd would refuse
    /// is delivered to the uffd's reader as a PAGEFAULT message, and waits
    /// until the reader resolves it (rule 42).
    pub const FAULTS: Features = Features(16);
    /// Every feature.
    pub const EVERY: Features = Features(31);
    /// Every feature with its name, in text order.
    pub const ALL: [(Features, &'static str); 5] = [
        (Self::FORK, "event-fork"),
        (Self::REMAP, "event-remap"),
        (Self::REMOVE, "event-remove"),
        (Self::UNMAP, "event-unmap"),
        (Self::FAULTS, "faults"),
    ];

    /// Any value is accepted; unknown bits are dropped.
    pub const fn from_bits(bits: u8) -> Features {
        Features(bits & Self::EVERY.0)
    }
    pub const fn bits(self) -> u8 {
        self.0
    }
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// Has every feature of `other`.
    pub const fn contains(self, other: Features) -> bool {
        self.0 & other.0 == other.0
    }
    pub const fn union(self, other: Features) -> Features {
        Features(self.0 | other.0)
    }
    /// These features but those of `other`.
    pub const fn without(self, other: Features) -> Features {
        Features(self.0 & !other.0)
    }
}

impl<'a> Arbitrary<'a> for Features {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Features::from_bits(u.arbitrary()?))
    }
}

impl fmt::Display for Features {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        let names: Vec<&str> = Self::ALL
            .iter()
            .filter(|(x, _)| self.contains(*x))
            .map(|(_, n)| *n)
            .collect();
        f.write_str(&names.join("+"))
    }
}

impl fmt::Debug for Features {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Features {
    type Err = String;
    /// `none`, or feature names joined by `+` in any order, each once.
    fn from_str(s: &str) -> Result<Features, String> {
        if s == "none" {
            return Ok(Features::NONE);
        }
        let mut all = Features::NONE;
        for name in s.split('+') {
            let f = by_name(&Self::ALL, name, "feature")
                .map_err(|e| format!("{e} (or `none`), joined by `+`"))?;
            if all.contains(f) {
                return Err(format!("feature {name:?} twice in {s:?}"));
            }
            all = all.union(f);
        }
        Ok(all)
    }
}

/// Which UFFDIO ioctl of the `mfill_atomic` family a `copy`, `zeropage`,
/// `continue` or `poison` op is (the kernel's `MFILL_ATOMIC_*` modes). Its
/// trace text is the op's name.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Arbitrary)]
pub enum Fill {
    /// UFFDIO_COPY: a new page with the op's content tags (see `Op::Fill`).
    Copy,
    /// UFFDIO_ZEROPAGE: the zero page (private) or a zeroed page (shared).
    ZeroPage,
    /// UFFDIO_CONTINUE: maps the page the page cache already has.
    Continue,
    /// UFFDIO_POISON: a marker that makes any access fail.
    Poison,
}

impl Fill {
    pub const ALL: [(Fill, &'static str); 4] = [
        (Fill::Copy, "copy"),
        (Fill::ZeroPage, "zeropage"),
        (Fill::Continue, "continue"),
        (Fill::Poison, "poison"),
    ];
    pub fn name(self) -> &'static str {
        name_in(&Self::ALL, self)
    }
    /// Does the ioctl take a MODE_WP flag (`copy … wp`, `continue … wp`)?
    pub const fn takes_wp(self) -> bool {
        matches!(self, Fill::Copy | Fill::Continue)
    }
}

named_text!(Fill, "fill");

/// Where an `mremap` puts the range.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Arbitrary)]
pub enum Remap {
    /// No DST: flags 0, resized where it is.
    InPlace,
    /// `DST`: MREMAP_MAYMOVE|MREMAP_FIXED to page DST.
    Fixed(Page),
    /// `DST dontunmap`: MREMAP_MAYMOVE|MREMAP_FIXED|MREMAP_DONTUNMAP.
    DontUnmap(Page),
}

impl Remap {
    /// The destination page, for the moving forms.
    pub fn dst(self) -> Option<Page> {
        match self {
            Remap::InPlace => None,
            Remap::Fixed(d) | Remap::DontUnmap(d) => Some(d),
        }
    }
}

/// What a `map` op maps.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Arbitrary)]
pub enum Kind {
    /// `anon`: MAP_PRIVATE|MAP_ANONYMOUS.
    Anon,
    /// `anon-noreserve`: MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE.
    AnonNoreserve,
    /// `shmem`: MAP_SHARED|MAP_ANONYMOUS, a new shmem object per mmap.
    Shmem,
    /// `file=F@PGOFF`: MAP_PRIVATE of memfd F (opened read-write).
    File { file: u8, pgoff: Page },
    /// `shared-file=F@PGOFF`: MAP_SHARED of memfd F through its read-write fd.
    SharedFile { file: u8, pgoff: Page },
    /// `shared-ro-file=F@PGOFF`: MAP_SHARED of memfd F through a read-only fd
    /// of it: no VM_MAYWRITE, so registering it is EPERM and writing EACCES.
    SharedRoFile { file: u8, pgoff: Page },
}

impl Kind {
    /// The kind with its file and page offset folded into valid values.
    pub(super) fn fit(self) -> Kind {
        match self {
            Kind::File { file, pgoff } => Kind::File {
                file: file % MAX_FILES,
                pgoff: pgoff % (MAX_PGOFF + 1),
            },
            Kind::SharedFile { file, pgoff } => Kind::SharedFile {
                file: file % MAX_FILES,
                pgoff: pgoff % (MAX_PGOFF + 1),
            },
            Kind::SharedRoFile { file, pgoff } => Kind::SharedRoFile {
                file: file % MAX_FILES,
                pgoff: pgoff % (MAX_PGOFF + 1),
            },
            k => k,
        }
    }

    /// The memfd and page offset, for the file kinds.
    pub fn file(self) -> Option<(u8, Page)> {
        match self {
            Kind::File { file, pgoff }
            | Kind::SharedFile { file, pgoff }
            | Kind::SharedRoFile { file, pgoff } => Some((file, pgoff)),
            _ => None,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Kind::Anon => write!(f, "anon"),
            Kind::AnonNoreserve => write!(f, "anon-noreserve"),
            Kind::Shmem => write!(f, "shmem"),
            Kind::File { file, pgoff } => write!(f, "file={file}@{pgoff}"),
            Kind::SharedFile { file, pgoff } => write!(f, "shared-file={file}@{pgoff}"),
            Kind::SharedRoFile { file, pgoff } => write!(f, "shared-ro-file={file}@{pgoff}"),
        }
    }
}

impl FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Kind, String> {
        match s {
            "anon" => return Ok(Kind::Anon),
            "anon-noreserve" => return Ok(Kind::AnonNoreserve),
            "shmem" => return Ok(Kind::Shmem),
            _ => {}
        }
        let bad = || {
            format!(
                "bad kind {s:?}: expected `anon`, `anon-noreserve`, `shmem`, `file=F@PGOFF`, \
                 `shared-file=F@PGOFF` or `shared-ro-file=F@PGOFF`"
            )
        };
        let (name, rest) = s.split_once('=').ok_or_else(bad)?;
        let (file, pgoff) = rest.split_once('@').ok_or_else(bad)?;
        let file: u8 = file
            .parse()
            .map_err(|_| format!("bad file number {file:?} in {s:?}"))?;
        let pgoff: Page = pgoff
            .parse()
            .map_err(|_| format!("bad page offset {pgoff:?} in {s:?}"))?;
        match name {
            "file" => Ok(Kind::File { file, pgoff }),
            "shared-file" => Ok(Kind::SharedFile { file, pgoff }),
            "shared-ro-file" => Ok(Kind::SharedRoFile { file, pgoff }),
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_names_and_numbers() {
        assert_eq!("missing+wp".parse::<Mode>().unwrap(), Mode(3));
        assert_eq!(Mode(3).to_string(), "missing+wp");
        assert_eq!(Mode(0).to_string(), "0");
        assert_eq!(Mode(12).to_string(), "12");
        assert!("missing+bogus".parse::<Mode>().is_err());
    }
}
