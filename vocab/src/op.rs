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

use arbitrary::Arbitrary;

mod args;
mod parse;

pub use args::{Advice, Features, Fill, Kind, Mode, Prot, Remap};
pub use parse::{words, ParseError};

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

/// One operation of the language (README.md, "Traces"). Its `Debug` is its trace
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
    /// `fault PAGE`: a one-byte write (of 0, at the page's first byte) at
    /// PAGE, as a user store would do it (the kernel backend writes with
    /// `process_vm_writev` to itself, every uffd opened with
    /// UFFD_FEATURE_SIGBUS, so a write userfaultfd refuses comes back as
    /// EFAULT instead of blocking). `ok`, or EFAULT where the page is not
    /// mapped, not writable, or the write is refused. `fault PAGE read`: a
    /// one-byte read (`process_vm_readv`), EFAULT where the page is not
    /// mapped, not readable, or the read is refused.
    Fault { page: Page, read: bool },
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
    /// `writeprotect CTX START LEN on|off`: UFFDIO_WRITEPROTECT on uffd CTX
    /// (opened on first use), setting (`on`) or clearing the uffd-wp bit of
    /// the range's pages.
    WriteProtect {
        ctx: u8,
        start: Page,
        len: Page,
        on: bool,
    },
    /// `copy|zeropage|continue|poison CTX START LEN [wp]`: UFFDIO_COPY,
    /// UFFDIO_ZEROPAGE, UFFDIO_CONTINUE or UFFDIO_POISON on uffd CTX (opened
    /// on first use) over `[START, START+LEN)`; `wp` (copy and continue
    /// only) is MODE_WP. UFFDIO_COPY copies from a buffer outside the arena
    /// whose page `i` holds the content tag `START+i+1` (a little-endian
    /// u64 at byte 8 of the page, the rest zero), so that where a page's
    /// bytes came from is part of the page state ([`crate::PteState`]).
    Fill {
        how: Fill,
        ctx: u8,
        start: Page,
        len: Page,
        wp: bool,
    },
    /// `move CTX SRC DST LEN [holes]`: UFFDIO_MOVE on uffd CTX (opened on
    /// first use) of the pages of `[SRC, SRC+LEN)` to `[DST, DST+LEN)`;
    /// `holes` is MODE_ALLOW_SRC_HOLES. Its range ([`Op::range`]) is the
    /// destination's.
    Move {
        ctx: u8,
        src: Page,
        start: Page,
        len: Page,
        holes: bool,
    },
}

impl Op {
    /// The op's name, its first word in a trace.
    pub fn name(&self) -> &'static str {
        Self::NAMES[self.kind()]
    }

    /// The op's row in [`Op::NAMES`]: tables of counts by op index by it.
    pub fn kind(&self) -> usize {
        match self {
            Op::Map { .. } => 0,
            Op::Unmap { .. } => 1,
            Op::Protect { .. } => 2,
            Op::Register { .. } => 3,
            Op::Unregister { .. } => 4,
            Op::Close { .. } => 5,
            Op::Fault { .. } => 6,
            Op::Madvise { .. } => 7,
            Op::Mlock { .. } => 8,
            Op::Munlock { .. } => 9,
            Op::Mremap { .. } => 10,
            Op::Open { .. } => 11,
            Op::Fork => 12,
            Op::WriteProtect { .. } => 13,
            Op::Fill { how, .. } => 14 + *how as usize,
            Op::Move { .. } => 18,
        }
    }

    /// All op names, in declaration order (for statistics tables).
    pub const NAMES: [&'static str; 19] = [
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
        "writeprotect",
        "copy",
        "zeropage",
        "continue",
        "poison",
        "move",
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
            | Op::WriteProtect { start, len, .. }
            | Op::Fill { start, len, .. }
            | Op::Move { start, len, .. }
            | Op::Mremap { start, len, .. } => Some((start, len)),
            Op::Fault { page, .. } => Some((page, 1)),
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
            | Op::WriteProtect { start, len, .. }
            | Op::Fill { start, len, .. }
            | Op::Mremap { start, len, .. } => {
                *start = new_start;
                *len = new_len;
            }
            // The source moves along with the destination.
            Op::Move {
                src, start, len, ..
            } => {
                *src = (*src + new_start).saturating_sub(*start);
                *start = new_start;
                *len = new_len;
            }
            Op::Fault { page, .. } => *page = new_start,
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
        if let Op::Move { src, len, .. } = *self {
            match src.checked_add(len) {
                Some(end) if end <= pages => {}
                _ => {
                    return Err(format!(
                        "move source [{src}, {src}+{len}) is outside the arena of {pages} pages"
                    ))
                }
            }
        }
        if let Op::Fill { how, wp: true, .. } = *self {
            if !how.takes_wp() {
                return Err(format!("`{how}` takes no `wp`"));
            }
        }
        let ctx = match *self {
            Op::Register { ctx, .. }
            | Op::Fill { ctx, .. }
            | Op::Move { ctx, .. }
            | Op::Unregister { ctx, .. }
            | Op::Close { ctx }
            | Op::WriteProtect { ctx, .. }
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
        match self {
            Op::Fault { page, read } => Op::Fault {
                page: page % pages,
                read,
            },
            Op::Move {
                ctx,
                src,
                start,
                len,
                holes,
            } => {
                let (start, len) = fit_range(start, len, pages);
                Op::Move {
                    ctx: ctx % MAX_CTX,
                    src: src % (pages - len + 1),
                    start,
                    len,
                    holes,
                }
            }
            Op::Mremap {
                start,
                len,
                newlen,
                to,
            } => fit_mremap(start, len, newlen, to, pages),
            op => {
                let op = match op.range() {
                    Some((start, len)) => {
                        let (start, len) = fit_range(start, len, pages);
                        op.with_range(start, len)
                    }
                    None => op,
                };
                op.fit_args()
            }
        }
    }

    /// The op with its context, protection and mapping kind folded into
    /// valid values (its range left as it is).
    fn fit_args(self) -> Op {
        let mut op = self;
        match &mut op {
            Op::Map { prot, kind, .. } => {
                *prot = Prot::from_bits(prot.bits());
                *kind = kind.fit();
            }
            Op::Protect { prot, .. } => *prot = Prot::from_bits(prot.bits()),
            Op::Register { ctx, .. }
            | Op::Unregister { ctx, .. }
            | Op::Close { ctx }
            | Op::WriteProtect { ctx, .. }
            | Op::Open { ctx, .. } => *ctx %= MAX_CTX,
            Op::Fill { how, ctx, wp, .. } => {
                *ctx %= MAX_CTX;
                *wp &= how.takes_wp();
            }
            _ => {}
        }
        op
    }
}

/// A range folded into an arena of `pages` pages (at least 1).
fn fit_range(start: Page, len: Page, pages: Page) -> (Page, Page) {
    let start = start % (pages + 1);
    (start, len % (pages - start + 1))
}

/// An mremap folded into an arena of `pages` pages (at least 1): its first
/// page, its destination and its new length inside.
fn fit_mremap(start: Page, len: Page, newlen: Page, to: Remap, pages: Page) -> Op {
    let (start, len) = fit_range(start % pages, len, pages);
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
            Op::Fault { page, read: false } => write!(f, "fault {page}"),
            Op::Fault { page, read: true } => write!(f, "fault {page} read"),
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
            Op::WriteProtect {
                ctx,
                start,
                len,
                on,
            } => {
                let on = if on { "on" } else { "off" };
                write!(f, "writeprotect {ctx} {start} {len} {on}")
            }
            Op::Fill {
                how,
                ctx,
                start,
                len,
                wp,
            } => {
                write!(f, "{how} {ctx} {start} {len}")?;
                if wp {
                    write!(f, " wp")?;
                }
                Ok(())
            }
            Op::Move {
                ctx,
                src,
                start,
                len,
                holes,
            } => {
                write!(f, "move {ctx} {src} {start} {len}")?;
                if holes {
                    write!(f, " holes")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Debug for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_rejects_ranges_outside_the_arena() {
        let op: Op = "unmap 10 7".parse().unwrap();
        assert!(op.validate(17).is_ok());
        assert!(op.validate(16).unwrap_err().contains("outside the arena"));
        let op: Op = "unmap 18446744073709551615 2".parse().unwrap();
        assert!(op.validate(16).is_err());
        assert!("close 4".parse::<Op>().unwrap().validate(16).is_err());
        assert!("move 0 15 0 2".parse::<Op>().unwrap().validate(16).is_err());
        assert!("move 0 14 0 2".parse::<Op>().unwrap().validate(16).is_ok());
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
            "writeprotect 1 2 3 off",
        ] {
            let op: Op = line.parse().unwrap();
            let moved = op.with_range(1, 2);
            assert_eq!(moved.range(), Some((1, 2)));
            assert_eq!(moved.with_range(2, 3), op);
        }
        let f: Op = "fault 4".parse().unwrap();
        assert_eq!(f.with_range(3, 1).to_string(), "fault 3");
        let f: Op = "fault 4 read".parse().unwrap();
        assert_eq!(f.with_range(3, 1).to_string(), "fault 3 read");
        let m: Op = "move 1 2 8 3 holes".parse().unwrap();
        assert_eq!(m.with_range(6, 2).to_string(), "move 1 0 6 2 holes");
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
            Op::Move {
                ctx: 9,
                src: u64::MAX,
                start: 3,
                len: 100,
                holes: true,
            },
            Op::Fill {
                how: Fill::Poison,
                ctx: 200,
                start: 1,
                len: 2,
                wp: true,
            },
        ];
        for op in ops {
            op.fit(16).validate(16).unwrap();
        }
    }
}
