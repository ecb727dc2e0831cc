//! The operation language: one [`Op`] type drives proptest, the fuzzer, trace
//! files, the command line and the kernel worker.
//!
//! Every op is *total*: it may be attempted in any state. Where Linux fails it
//! with an errno, every backend must fail it with the same errno. Addresses,
//! lengths and file offsets are counted in pages relative to the arena.
//!
//! The text form of an op is one trace line, and `Display` and `FromStr` are
//! inverses: `"map 0 20 rw- anon".parse::<Op>()?.to_string() == "map 0 20 rw- anon"`.

use std::fmt;
use std::str::FromStr;

use arbitrary::Arbitrary;

/// A page number or page count, relative to the start of the arena.
pub type Page = u64;

/// How many userfaultfd contexts a sequence may use (`ctx` is `0..MAX_CTX`).
pub const MAX_CTX: u8 = 4;
/// How many memfd files a sequence may map (`file` is `0..MAX_FILES`).
pub const MAX_FILES: u8 = 4;
/// Largest file page offset an op may name (keeps file sizes small).
pub const MAX_PGOFF: Page = 1 << 20;
/// The largest arena, in pages (4 GiB): the page model keeps an entry per
/// page (about 50 MB at this size), and the kernel backend maps it whole.
pub const MAX_PAGES: Page = 1 << 20;

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

/// A madvise(2) advice that changes VMA flags (the ones the trace
/// language knows). Its trace text is its name.
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
}

impl Advice {
    /// Every advice with its trace name.
    pub const ALL: [(Advice, &'static str); 10] = [
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
    ];

    pub fn name(self) -> &'static str {
        name_in(&Self::ALL, self)
    }
}

impl fmt::Display for Advice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Advice {
    type Err = String;
    fn from_str(s: &str) -> Result<Advice, String> {
        by_name(&Self::ALL, s, "advice")
    }
}

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

/// The UFFDIO_API features an `open` asks for (UFFD_FEATURE_SIGBUS is
/// always added). Its trace text is its name.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Arbitrary)]
pub enum Features {
    /// `none`: what a ctx used before any `open` gets.
    #[default]
    None,
    /// `event-remap`: UFFD_FEATURE_EVENT_REMAP. A registered VMA that mremap
    /// moves keeps its registration, and mremap waits until the uffd's
    /// reader has read the REMAP event.
    EventRemap,
}

impl Features {
    pub const ALL: [(Features, &'static str); 2] = [
        (Features::None, "none"),
        (Features::EventRemap, "event-remap"),
    ];
    pub fn name(self) -> &'static str {
        name_in(&Self::ALL, self)
    }
}

impl fmt::Display for Features {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Features {
    type Err = String;
    fn from_str(s: &str) -> Result<Features, String> {
        by_name(&Self::ALL, s, "features")
    }
}

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

/// One operation of the language (see DESIGN.md). Its `Debug` is its trace
/// line too, so proptest's "minimal failing input" and the seeds saved under
/// `proptest-regressions/` read as traces.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Arbitrary)]
pub enum Op {
    /// `map START LEN PROT KIND`: mmap(MAP_FIXED).
    Map {
        start: Page,
        len: Page,
        prot: Prot,
        kind: Kind,
    },
    /// `unmap START LEN`: munmap.
    Unmap { start: Page, len: Page },
    /// `protect START LEN PROT`: mprotect.
    Protect { start: Page, len: Page, prot: Prot },
    /// `register CTX START LEN MODE`: UFFDIO_REGISTER on uffd CTX (opened on first use).
    Register {
        ctx: u8,
        start: Page,
        len: Page,
        mode: Mode,
    },
    /// `unregister CTX START LEN`: UFFDIO_UNREGISTER on uffd CTX (opened on first use).
    Unregister { ctx: u8, start: Page, len: Page },
    /// `close CTX`: close uffd CTX; its registrations are released. A ctx that
    /// is not open: EBADF.
    Close { ctx: u8 },
    /// `madvise START LEN ADVICE`: madvise(2) with a flag-changing advice.
    Madvise {
        start: Page,
        len: Page,
        advice: Advice,
    },
    /// `mlock START LEN` (mlock2 with no flags) or `mlock START LEN onfault`
    /// (MLOCK_ONFAULT): sets VM_LOCKED (and VM_LOCKONFAULT), then, without
    /// onfault, populates the range.
    Mlock {
        start: Page,
        len: Page,
        onfault: bool,
    },
    /// `munlock START LEN`: clears VM_LOCKED and VM_LOCKONFAULT.
    Munlock { start: Page, len: Page },
    /// `fault PAGE`: a one-byte write at PAGE, as a user store would do it
    /// (the kernel backend writes with `process_vm_writev` to itself, every
    /// uffd opened with UFFD_FEATURE_SIGBUS, so a write userfaultfd refuses
    /// comes back as EFAULT instead of blocking). `ok`, or EFAULT where the
    /// page is not mapped, not writable, or the write is refused.
    Fault { page: Page },
    /// `mremap START LEN NEWLEN [DST [dontunmap]]`: mremap(2) of
    /// `[START, START+LEN)` to NEWLEN pages, in place or moved to DST.
    Mremap {
        start: Page,
        len: Page,
        newlen: Page,
        to: Remap,
    },
    /// `open CTX FEATURES`: (re)opens uffd CTX with these features, closing
    /// it first if it is open (its registrations are released then).
    Open { ctx: u8, features: Features },
    /// `fork`: fork(2). The step's layout is the CHILD's, read right after
    /// the fork; the child then exits and the sequence goes on in the parent.
    Fork,
}

impl Op {
    /// The op's name, its first word in a trace.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Map { .. } => "map",
            Op::Unmap { .. } => "unmap",
            Op::Protect { .. } => "protect",
            Op::Register { .. } => "register",
            Op::Unregister { .. } => "unregister",
            Op::Close { .. } => "close",
            Op::Fault { .. } => "fault",
            Op::Madvise { .. } => "madvise",
            Op::Mlock { .. } => "mlock",
            Op::Munlock { .. } => "munlock",
            Op::Mremap { .. } => "mremap",
            Op::Open { .. } => "open",
            Op::Fork => "fork",
        }
    }

    /// All op names, in declaration order (for statistics tables).
    pub const NAMES: [&'static str; 13] = [
        "map",
        "unmap",
        "protect",
        "register",
        "unregister",
        "close",
        "fault",
        "madvise",
        "mlock",
        "munlock",
        "mremap",
        "open",
        "fork",
    ];

    /// The page range the op touches, if it has one.
    pub fn range(&self) -> Option<(Page, Page)> {
        match *self {
            Op::Map { start, len, .. }
            | Op::Unmap { start, len }
            | Op::Protect { start, len, .. }
            | Op::Register { start, len, .. }
            | Op::Unregister { start, len, .. }
            | Op::Madvise { start, len, .. }
            | Op::Mlock { start, len, .. }
            | Op::Munlock { start, len }
            | Op::Mremap { start, len, .. } => Some((start, len)),
            Op::Fault { page } => Some((page, 1)),
            Op::Close { .. } | Op::Open { .. } | Op::Fork => None,
        }
    }

    /// The same op over another range (a `fault` takes `start` as its page;
    /// an op without a range is returned as it is).
    pub fn with_range(self, new_start: Page, new_len: Page) -> Op {
        let mut op = self;
        match &mut op {
            Op::Map { start, len, .. }
            | Op::Unmap { start, len }
            | Op::Protect { start, len, .. }
            | Op::Register { start, len, .. }
            | Op::Unregister { start, len, .. }
            | Op::Madvise { start, len, .. }
            | Op::Mlock { start, len, .. }
            | Op::Munlock { start, len }
            | Op::Mremap { start, len, .. } => {
                *start = new_start;
                *len = new_len;
            }
            Op::Fault { page } => *page = new_start,
            Op::Close { .. } | Op::Open { .. } | Op::Fork => {}
        }
        op
    }

    /// Checks that the op stays inside an arena of `pages` pages and names
    /// only contexts and files that exist. A violation is a bad input, not an
    /// errno: no backend ever sees such an op.
    pub fn validate(&self, pages: Page) -> Result<(), String> {
        if let Some((start, len)) = self.range() {
            match start.checked_add(len) {
                Some(end) if end <= pages => {}
                _ => {
                    return Err(format!(
                        "range [{start}, {start}+{len}) is outside the arena of {pages} pages"
                    ))
                }
            }
        }
        if let Op::Mremap {
            start, newlen, to, ..
        } = *self
        {
            // Everything mremap looks at or maps lies inside the arena: its
            // first page (even with LEN 0), the grown range, the destination.
            if start >= pages {
                return Err(format!(
                    "mremap START {start} is not a page of the arena of {pages} pages"
                ));
            }
            let base = to.dst().unwrap_or(start);
            match base.checked_add(newlen) {
                Some(end) if end <= pages => {}
                _ => {
                    return Err(format!(
                        "mremap target [{base}, {base}+{newlen}) is outside the arena of \
                         {pages} pages"
                    ))
                }
            }
        }
        let ctx = match *self {
            Op::Register { ctx, .. }
            | Op::Unregister { ctx, .. }
            | Op::Close { ctx }
            | Op::Open { ctx, .. } => Some(ctx),
            _ => None,
        };
        if let Some(ctx) = ctx {
            if ctx >= MAX_CTX {
                return Err(format!(
                    "uffd context {ctx} does not exist: contexts are 0 to {}",
                    MAX_CTX - 1
                ));
            }
        }
        if let Op::Map { kind, .. } = *self {
            if let Some((file, pgoff)) = kind.file() {
                if file >= MAX_FILES {
                    return Err(format!(
                        "file {file} does not exist: files are 0 to {}",
                        MAX_FILES - 1
                    ));
                }
                if pgoff > MAX_PGOFF {
                    return Err(format!(
                        "file page offset {pgoff} is larger than the limit {MAX_PGOFF}"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Folds any op (for example one made by `arbitrary` from fuzzer bytes)
    /// into a valid op for an arena of `pages` pages.
    pub fn fit(self, pages: Page) -> Op {
        let pages = pages.max(1);
        let range = |start: Page, len: Page| {
            let start = start % (pages + 1);
            (start, len % (pages - start + 1))
        };
        let ctx = |c: u8| c % MAX_CTX;
        let kind = |k: Kind| match k {
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
        };
        match self {
            Op::Map {
                start,
                len,
                prot,
                kind: k,
            } => {
                let (start, len) = range(start, len);
                Op::Map {
                    start,
                    len,
                    prot: Prot::from_bits(prot.bits()),
                    kind: kind(k),
                }
            }
            Op::Unmap { start, len } => {
                let (start, len) = range(start, len);
                Op::Unmap { start, len }
            }
            Op::Protect { start, len, prot } => {
                let (start, len) = range(start, len);
                Op::Protect {
                    start,
                    len,
                    prot: Prot::from_bits(prot.bits()),
                }
            }
            Op::Register {
                ctx: c,
                start,
                len,
                mode,
            } => {
                let (start, len) = range(start, len);
                Op::Register {
                    ctx: ctx(c),
                    start,
                    len,
                    mode,
                }
            }
            Op::Unregister { ctx: c, start, len } => {
                let (start, len) = range(start, len);
                Op::Unregister {
                    ctx: ctx(c),
                    start,
                    len,
                }
            }
            Op::Close { ctx: c } => Op::Close { ctx: ctx(c) },
            Op::Fault { page } => Op::Fault { page: page % pages },
            Op::Madvise { start, len, advice } => {
                let (start, len) = range(start, len);
                Op::Madvise { start, len, advice }
            }
            Op::Mlock {
                start,
                len,
                onfault,
            } => {
                let (start, len) = range(start, len);
                Op::Mlock {
                    start,
                    len,
                    onfault,
                }
            }
            Op::Munlock { start, len } => {
                let (start, len) = range(start, len);
                Op::Munlock { start, len }
            }
            Op::Mremap {
                start,
                len,
                newlen,
                to,
            } => {
                let (start, len) = range(start % pages, len);
                let to = match to {
                    Remap::InPlace => Remap::InPlace,
                    Remap::Fixed(d) => Remap::Fixed(d % (pages + 1)),
                    Remap::DontUnmap(d) => Remap::DontUnmap(d % (pages + 1)),
                };
                let base = to.dst().unwrap_or(start);
                Op::Mremap {
                    start,
                    len,
                    newlen: newlen % (pages - base + 1),
                    to,
                }
            }
            Op::Open { ctx: c, features } => Op::Open {
                ctx: ctx(c),
                features,
            },
            Op::Fork => Op::Fork,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Op::Map {
                start,
                len,
                prot,
                kind,
            } => write!(f, "map {start} {len} {prot} {kind}"),
            Op::Unmap { start, len } => write!(f, "unmap {start} {len}"),
            Op::Protect { start, len, prot } => write!(f, "protect {start} {len} {prot}"),
            Op::Register {
                ctx,
                start,
                len,
                mode,
            } => write!(f, "register {ctx} {start} {len} {mode}"),
            Op::Unregister { ctx, start, len } => write!(f, "unregister {ctx} {start} {len}"),
            Op::Close { ctx } => write!(f, "close {ctx}"),
            Op::Fault { page } => write!(f, "fault {page}"),
            Op::Madvise { start, len, advice } => write!(f, "madvise {start} {len} {advice}"),
            Op::Mlock {
                start,
                len,
                onfault: false,
            } => write!(f, "mlock {start} {len}"),
            Op::Mlock {
                start,
                len,
                onfault: true,
            } => write!(f, "mlock {start} {len} onfault"),
            Op::Munlock { start, len } => write!(f, "munlock {start} {len}"),
            Op::Mremap {
                start,
                len,
                newlen,
                to,
            } => {
                write!(f, "mremap {start} {len} {newlen}")?;
                match to {
                    Remap::InPlace => Ok(()),
                    Remap::Fixed(d) => write!(f, " {d}"),
                    Remap::DontUnmap(d) => write!(f, " {d} dontunmap"),
                }
            }
            Op::Open { ctx, features } => write!(f, "open {ctx} {features}"),
            Op::Fork => write!(f, "fork"),
        }
    }
}

impl fmt::Debug for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A parse error inside one trace line: the 1-based column of the word that
/// is wrong and what is wrong with it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ParseError {
    pub col: usize,
    pub msg: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.col, self.msg)
    }
}

impl std::error::Error for ParseError {}

/// Splits a line into words with their 1-based columns.
pub fn words(line: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, ch) in line.char_indices() {
        if ch.is_whitespace() {
            if let Some(s) = start.take() {
                out.push((s + 1, &line[s..i]));
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        out.push((s + 1, &line[s..]));
    }
    out
}

impl FromStr for Op {
    type Err = ParseError;

    /// Parses one trace line (without its comment).
    fn from_str(line: &str) -> Result<Op, ParseError> {
        let w = words(line);
        let Some(&(col0, name)) = w.first() else {
            return Err(ParseError {
                col: 1,
                msg: "empty line: expected an operation".into(),
            });
        };
        let (arity, usage) = match name {
            "map" => (5, "map START LEN PROT KIND"),
            "unmap" => (3, "unmap START LEN"),
            "protect" => (4, "protect START LEN PROT"),
            "register" => (5, "register CTX START LEN MODE"),
            "unregister" => (4, "unregister CTX START LEN"),
            "close" => (2, "close CTX"),
            "fault" => (2, "fault PAGE"),
            "madvise" => (4, "madvise START LEN ADVICE"),
            "mlock" if w.len() == 4 => (4, "mlock START LEN onfault"),
            "mlock" => (3, "mlock START LEN [onfault]"),
            "munlock" => (3, "munlock START LEN"),
            "mremap" if w.len() == 6 => (6, "mremap START LEN NEWLEN DST dontunmap"),
            "mremap" if w.len() == 5 => (5, "mremap START LEN NEWLEN DST"),
            "mremap" => (4, "mremap START LEN NEWLEN [DST [dontunmap]]"),
            "open" => (3, "open CTX FEATURES"),
            "fork" => (1, "fork"),
            _ => {
                return Err(ParseError {
                    col: col0,
                    msg: format!(
                        "unknown operation {name:?}: expected map, unmap, protect, register, \
                         unregister, close, fault, madvise, mlock, munlock, mremap, open or fork"
                    ),
                })
            }
        };
        if w.len() != arity {
            let col = if w.len() > arity {
                w[arity].0
            } else {
                line.trim_end().len() + 1
            };
            return Err(ParseError {
                col,
                msg: format!(
                    "`{name}` takes {} argument(s), found {}: usage `{usage}`",
                    arity - 1,
                    w.len() - 1
                ),
            });
        }
        fn field<T: FromStr>(
            w: &[(usize, &str)],
            i: usize,
            what: &str,
            conv: impl Fn(&str) -> Result<T, String>,
        ) -> Result<T, ParseError> {
            let (col, s) = w[i];
            conv(s).map_err(|msg| ParseError {
                col,
                msg: format!("{what}: {msg}"),
            })
        }
        /// An optional last word that must be `word` when it is there.
        fn keyword(w: &[(usize, &str)], i: usize, word: &str) -> Result<bool, ParseError> {
            match w.get(i) {
                None => Ok(false),
                Some(&(_, s)) if s == word => Ok(true),
                Some(&(col, other)) => Err(ParseError {
                    col,
                    msg: format!("expected `{word}` or nothing, found {other:?}"),
                }),
            }
        }
        let num = |s: &str| {
            s.parse::<Page>()
                .map_err(|_| format!("expected a page count in decimal, found {s:?}"))
        };
        let ctx = |s: &str| {
            s.parse::<u8>()
                .map_err(|_| format!("expected a context number, found {s:?}"))
        };
        let op = match name {
            "map" => Op::Map {
                start: field(&w, 1, "START", num)?,
                len: field(&w, 2, "LEN", num)?,
                prot: field(&w, 3, "PROT", |s| s.parse())?,
                kind: field(&w, 4, "KIND", |s| s.parse())?,
            },
            "unmap" => Op::Unmap {
                start: field(&w, 1, "START", num)?,
                len: field(&w, 2, "LEN", num)?,
            },
            "protect" => Op::Protect {
                start: field(&w, 1, "START", num)?,
                len: field(&w, 2, "LEN", num)?,
                prot: field(&w, 3, "PROT", |s| s.parse())?,
            },
            "register" => Op::Register {
                ctx: field(&w, 1, "CTX", ctx)?,
                start: field(&w, 2, "START", num)?,
                len: field(&w, 3, "LEN", num)?,
                mode: field(&w, 4, "MODE", |s| s.parse())?,
            },
            "unregister" => Op::Unregister {
                ctx: field(&w, 1, "CTX", ctx)?,
                start: field(&w, 2, "START", num)?,
                len: field(&w, 3, "LEN", num)?,
            },
            "close" => Op::Close {
                ctx: field(&w, 1, "CTX", ctx)?,
            },
            "fault" => Op::Fault {
                page: field(&w, 1, "PAGE", num)?,
            },
            "mlock" => Op::Mlock {
                start: field(&w, 1, "START", num)?,
                len: field(&w, 2, "LEN", num)?,
                onfault: keyword(&w, 3, "onfault")?,
            },
            "munlock" => Op::Munlock {
                start: field(&w, 1, "START", num)?,
                len: field(&w, 2, "LEN", num)?,
            },
            "madvise" => Op::Madvise {
                start: field(&w, 1, "START", num)?,
                len: field(&w, 2, "LEN", num)?,
                advice: field(&w, 3, "ADVICE", |s| s.parse())?,
            },
            "mremap" => Op::Mremap {
                start: field(&w, 1, "START", num)?,
                len: field(&w, 2, "LEN", num)?,
                newlen: field(&w, 3, "NEWLEN", num)?,
                to: match w.get(4) {
                    None => Remap::InPlace,
                    Some(_) if keyword(&w, 5, "dontunmap")? => {
                        Remap::DontUnmap(field(&w, 4, "DST", num)?)
                    }
                    Some(_) => Remap::Fixed(field(&w, 4, "DST", num)?),
                },
            },
            "open" => Op::Open {
                ctx: field(&w, 1, "CTX", ctx)?,
                features: field(&w, 2, "FEATURES", |s| s.parse())?,
            },
            "fork" => Op::Fork,
            _ => unreachable!("names were matched above"),
        };
        Ok(op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse_are_inverses() {
        for line in [
            "map 0 20 rw- anon",
            "map 3 1 --x anon-noreserve",
            "map 0 4 r-- shmem",
            "map 1 2 rwx file=2@7",
            "map 1 2 rw- shared-file=0@0",
            "map 1 2 r-- shared-ro-file=3@9",
            "unmap 5 5",
            "protect 0 5 ---",
            "register 0 0 10 missing",
            "register 2 0 10 missing+wp+minor",
            "register 1 0 10 0",
            "register 1 0 10 9",
            "unregister 3 5 5",
            "close 1",
            "fault 7",
            "madvise 0 4 dontfork",
            "madvise 2 1 unmergeable",
            "mlock 0 4",
            "mlock 1 2 onfault",
            "munlock 0 16",
            "mremap 0 4 8",
            "mremap 0 4 2 8",
            "mremap 0 4 4 8 dontunmap",
            "open 1 event-remap",
            "open 0 none",
            "fork",
        ] {
            let op: Op = line.parse().unwrap();
            assert_eq!(op.to_string(), line);
        }
    }

    #[test]
    fn parse_errors_name_the_column() {
        let e = "map 0 x rw- anon".parse::<Op>().unwrap_err();
        assert_eq!(e.col, 7);
        assert!(e.msg.contains("LEN"), "{e}");
        let e = "frob 1".parse::<Op>().unwrap_err();
        assert_eq!(e.col, 1);
        let e = "register 0 0 10 missing extra".parse::<Op>().unwrap_err();
        assert_eq!(e.col, 25);
        let e = "map 0 1 rw- file=1".parse::<Op>().unwrap_err();
        assert_eq!(e.col, 13);
        let e = "close".parse::<Op>().unwrap_err();
        assert_eq!(e.col, 6);
    }

    #[test]
    fn mode_names_and_numbers() {
        assert_eq!("missing+wp".parse::<Mode>().unwrap(), Mode(3));
        assert_eq!(Mode(3).to_string(), "missing+wp");
        assert_eq!(Mode(0).to_string(), "0");
        assert_eq!(Mode(12).to_string(), "12");
        assert!("missing+bogus".parse::<Mode>().is_err());
    }

    #[test]
    fn validate_rejects_ranges_outside_the_arena() {
        let op: Op = "unmap 10 7".parse().unwrap();
        assert!(op.validate(17).is_ok());
        assert!(op.validate(16).unwrap_err().contains("outside the arena"));
        let op: Op = "unmap 18446744073709551615 2".parse().unwrap();
        assert!(op.validate(16).is_err());
        assert!("close 4".parse::<Op>().unwrap().validate(16).is_err());
        assert!("map 0 1 rw- file=4@0"
            .parse::<Op>()
            .unwrap()
            .validate(16)
            .is_err());
    }

    #[test]
    fn with_range_keeps_everything_else() {
        for line in [
            "map 2 3 r-- file=1@5",
            "madvise 2 3 dontdump",
            "mlock 2 3 onfault",
        ] {
            let op: Op = line.parse().unwrap();
            let moved = op.with_range(1, 2);
            assert_eq!(moved.range(), Some((1, 2)));
            assert_eq!(moved.with_range(2, 3), op);
        }
        let f: Op = "fault 4".parse().unwrap();
        assert_eq!(f.with_range(3, 1).to_string(), "fault 3");
    }

    #[test]
    fn fit_always_validates() {
        let ops = [
            Op::Unmap {
                start: u64::MAX,
                len: u64::MAX,
            },
            Op::Map {
                start: 7,
                len: 1000,
                prot: Prot::from_bits(0xff),
                kind: Kind::SharedFile {
                    file: 200,
                    pgoff: u64::MAX,
                },
            },
            Op::Close { ctx: 255 },
        ];
        for op in ops {
            op.fit(16).validate(16).unwrap();
        }
    }
}
