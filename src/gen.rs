//! Random op sequences, as proptest strategies (generation here; shrinking
//! is proptest's: drop ops, then simplify the ones left).
//!
//! The distributions are tuned so that merges and splits are common, not
//! rare: ranges start and end on a coarse grid more often than not (so edges
//! of different ops coincide), file offsets are usually the page they are
//! mapped at (so neighbouring mappings of a file are linear), and most
//! register modes are valid. Edge cases (mode 0, unknown bits, len 0,
//! read-only shared files) stay reachable.

use proptest::prelude::*;
use uffd_vocab::{Advice, Features, Fill, Kind, Mode, Op, Page, Prot, Remap, MAX_CTX, MAX_FILES};

/// A range inside an arena of `pages` pages: (start, len), len may be 0.
pub fn range(pages: Page) -> impl Strategy<Value = (Page, Page)> {
    let grid = (pages / 4).max(1);
    let edge = move || {
        prop_oneof![
            3 => (0..=pages / grid).prop_map(move |i| i * grid),
            2 => 0..=pages,
        ]
        .prop_map(move |x| x.min(pages))
        .boxed()
    };
    prop_oneof![
        // Two edges, in order: the common case.
        20 => (edge(), edge()).prop_map(|(a, b)| (a.min(b), a.max(b) - a.min(b))).boxed(),
        // Small ranges anywhere.
        6 => (0..pages, 1..=3u64).prop_map(move |(s, l)| (s, l.min(pages - s))).boxed(),
        // Everything.
        2 => Just((0, pages)).boxed(),
        // Empty.
        1 => (0..=pages).prop_map(|s| (s, 0)).boxed(),
    ]
}

/// A page to write: on the coarse grid of [`range`]'s edges more often than
/// not (where ranges start, so writes meet the VMAs other ops made), else
/// anywhere.
pub fn page(pages: Page) -> impl Strategy<Value = Page> {
    let grid = (pages / 4).max(1);
    prop_oneof![
        3 => (0..pages.div_ceil(grid)).prop_map(move |i| (i * grid).min(pages - 1)),
        2 => 0..pages,
    ]
}

pub fn prot() -> impl Strategy<Value = Prot> {
    prop_oneof![
        6 => Just(Prot::RW),
        3 => Just(Prot::from_bits(Prot::READ)),
        1 => Just(Prot::NONE),
        1 => (0..8u8).prop_map(Prot::from_bits),
    ]
}

/// A kind to map at `start`, chosen before `start` is known (so the map
/// strategy needs no `prop_flat_map`, which is slow to generate and shrinks
/// badly): a file's offset is most often the page it is mapped at, so that
/// neighbouring mappings of a file are linear and can merge.
#[derive(Clone, Copy, Debug)]
pub struct KindPick {
    tag: u8,
    file: u8,
    /// `None`: the page it is mapped at; `Some(p)`: page offset `p`.
    pgoff: Option<Page>,
}

impl KindPick {
    /// Kind `tag` (0 anon, 1 anon noreserve, 2 shmem, 3 file, 4 shared
    /// file, 5 read-only shared file), of file `file` (for files) at
    /// `pgoff` (see [`KindPick`]).
    pub fn new(tag: u8, file: u8, pgoff: Option<Page>) -> KindPick {
        KindPick { tag, file, pgoff }
    }

    pub fn at(self, start: Page) -> Kind {
        let (file, pgoff) = (self.file, self.pgoff.unwrap_or(start));
        match self.tag {
            0 => Kind::Anon,
            1 => Kind::AnonNoreserve,
            2 => Kind::Shmem,
            3 => Kind::File { file, pgoff },
            4 => Kind::SharedFile { file, pgoff },
            _ => Kind::SharedRoFile { file, pgoff },
        }
    }
}

/// Kinds for an arena of `pages` pages (see [`KindPick`]).
pub fn kind(pages: Page) -> impl Strategy<Value = KindPick> {
    let tag = prop_oneof![8 => Just(0u8), 2 => Just(1u8), 3 => Just(2u8), 3 => Just(3u8), 2 => Just(4u8), 1 => Just(5u8)];
    let file = prop_oneof![4 => Just(0u8), 2 => Just(1u8), 1 => 0..MAX_FILES];
    // Mostly linear with the address; sometimes anywhere; sometimes one of
    // the first few pages, so that two mappings share file pages (a page
    // one mapping wrote is then cached for the other: MINOR faults).
    let pgoff = prop_oneof![
        6 => Just(None),
        1 => (0..pages + 8).prop_map(Some),
        2 => (0..4u64).prop_map(Some),
    ];
    (tag, file, pgoff).prop_map(|(tag, file, pgoff)| KindPick { tag, file, pgoff })
}

/// Any advice; each is as likely as its undo.
pub fn advice() -> impl Strategy<Value = Advice> {
    (0..Advice::ALL.len()).prop_map(|i| Advice::ALL[i].0)
}

pub fn ctx() -> impl Strategy<Value = u8> {
    prop_oneof![6 => Just(0u8), 3 => Just(1u8), 1 => 0..MAX_CTX]
}

pub fn mode() -> impl Strategy<Value = Mode> {
    prop_oneof![
        5 => Just(Mode::MISSING),
        3 => Just(Mode::WP),
        2 => Just(Mode(3)),
        2 => Just(Mode::MINOR),
        1 => (1..8u64).prop_map(Mode),
        1 => prop_oneof![Just(Mode(0)), Just(Mode(8)), Just(Mode(9))],
    ]
}

/// An mremap: in place (grow, often up to the next grid page where a
/// neighbour may start; shrink; or the same), moved to a grid page (most
/// often keeping its length, as moves usually do), or moved with
/// DONTUNMAP; the new length is cut to what fits in the arena.
pub fn mremap(pages: Page) -> impl Strategy<Value = Op> {
    (range(pages), 0..8u8, range(pages), 0..10u8)
        .prop_map(move |(src, how, dst, form)| mremap_of(pages, src, how, dst, form))
}

/// The mremap [`mremap`] makes of its draws: the range `(start, len)`, the
/// choice of length `how` (0 to 7), the range whose start is the
/// destination and whose length is the other length, and the form (0 to
/// 9).
pub fn mremap_of(
    pages: Page,
    (start, len): (Page, Page),
    how: u8,
    (dst, other): (Page, Page),
    form: u8,
) -> Op {
    let grid = (pages / 4).max(1);
    // The first page is in the arena, even for a length of 0.
    let start = start.min(pages - 1);
    let len = len.min(pages - start);
    let to = match form {
        0..=3 => Remap::InPlace,
        4..=8 => Remap::Fixed(dst),
        _ => Remap::DontUnmap(dst),
    };
    let next_grid = ((start + len) / grid + 1) * grid - start;
    let newlen = match (to, how) {
        // In place: mostly grown, up to the next grid page (where a
        // neighbour often starts) or by a grid step.
        (Remap::InPlace, 0..=3) => next_grid,
        (Remap::InPlace, 4) => len + grid,
        (Remap::InPlace, 5) => len.saturating_sub(grid),
        (Remap::InPlace, 6) => other,
        // Moved: mostly the same length.
        (_, 0..=4) => len,
        (_, 5) => len + grid,
        (_, 6) => len.saturating_sub(grid),
        _ => other,
    };
    let room = pages - to.dst().unwrap_or(start);
    Op::Mremap {
        start,
        len,
        newlen: newlen.min(room),
        to,
    }
}

/// Any set of the features, shrinking towards none.
pub fn features() -> impl Strategy<Value = Features> {
    (0u8..32).prop_map(Features::from_bits)
}

/// One op for an arena of `pages` pages (`pages` ≥ 1).
pub fn op(pages: Page) -> impl Strategy<Value = Op> {
    // Each alternative is boxed: proptest's union value trees hold every
    // alternative inline, and moving those large trees around was half of
    // `check`'s time.
    let map = (range(pages), prot(), kind(pages))
        .prop_map(|((start, len), prot, kind)| Op::Map {
            start,
            len,
            prot,
            kind: kind.at(start),
        })
        .boxed();
    prop_oneof![
        6 => map,
        2 => range(pages).prop_map(|(start, len)| Op::Unmap { start, len }).boxed(),
        4 => (range(pages), prot())
            .prop_map(|((start, len), prot)| Op::Protect { start, len, prot })
            .boxed(),
        7 => (ctx(), range(pages), mode())
            .prop_map(|(ctx, (start, len), mode)| Op::Register { ctx, start, len, mode })
            .boxed(),
        5 => (ctx(), range(pages))
            .prop_map(|(ctx, (start, len))| Op::Unregister { ctx, start, len })
            .boxed(),
        2 => ctx().prop_map(|ctx| Op::Close { ctx }).boxed(),
        6 => (page(pages), proptest::bool::weighted(0.25))
            .prop_map(|(page, read)| Op::Fault { page, read })
            .boxed(),
        4 => (range(pages), advice())
            .prop_map(|((start, len), advice)| Op::Madvise { start, len, advice })
            .boxed(),
        2 => (range(pages), proptest::bool::weighted(0.3))
            .prop_map(|((start, len), onfault)| Op::Mlock { start, len, onfault })
            .boxed(),
        1 => range(pages).prop_map(|(start, len)| Op::Munlock { start, len }).boxed(),
        8 => mremap(pages).boxed(),
        2 => (ctx(), features())
            .prop_map(|(ctx, features)| Op::Open { ctx, features })
            .boxed(),
        2 => Just(Op::Fork).boxed(),
        8 => (ctx(), range(pages), proptest::bool::weighted(0.8))
            .prop_map(|(ctx, (start, len), on)| Op::WriteProtect { ctx, start, len, on })
            .boxed(),
        8 => (
            fill(),
            ctx(),
            range(pages),
            page(pages),
            1..=2u64,
            proptest::bool::weighted(0.5),
            proptest::bool::weighted(0.3),
        )
            .prop_map(move |(how, ctx, range, page, n, small, wp)| {
                fill_op(pages, how, ctx, range, (page, n, small), wp)
            })
            .boxed(),
        3 => (range(pages), drop_advice())
            .prop_map(|((start, len), advice)| Op::Madvise { start, len, advice })
            .boxed(),
        4 => (
            ctx(),
            page(pages),
            1..=2u64,
            page(pages),
            0..=2 * MOVE_NEAR,
            proptest::bool::weighted(0.7),
            proptest::bool::weighted(0.3),
        )
            .prop_map(move |(ctx, start, len, far, off, near, holes)| {
                let len = len.min(pages - start);
                Op::Move {
                    ctx,
                    src: move_src(pages, start, len, far, off, near),
                    start,
                    len,
                    holes,
                }
            })
            .boxed(),
    ]
}

/// How far a `move`'s source is from its destination, most of the time: in
/// the same VMA often, registered by the same ctx and alike, so that pages
/// move (a source anywhere mostly fails validation). A move is of one or
/// two pages, as a fault handler's are.
pub(crate) const MOVE_NEAR: u64 = 4;

/// A `move`'s source page: `near` its destination `start` (`off` -
/// [`MOVE_NEAR`] away), else the page `far`; the range inside the arena.
pub(crate) fn move_src(
    pages: Page,
    start: Page,
    len: Page,
    far: Page,
    off: u64,
    near: bool,
) -> Page {
    let src = if near {
        (start + off).saturating_sub(MOVE_NEAR)
    } else {
        far
    };
    src.min(pages - len)
}

/// A fill op: over `range`, or, `small`, over `n` pages (one or two, as a
/// fault handler's are) at `page`; `wp` where the ioctl takes it.
pub(crate) fn fill_op(
    pages: Page,
    how: Fill,
    ctx: u8,
    range: (Page, Page),
    (page, n, small): (Page, Page, bool),
    wp: bool,
) -> Op {
    let (start, len) = if small {
        (page, n.min(pages - page))
    } else {
        range
    };
    Op::Fill {
        how,
        ctx,
        start,
        len,
        wp: wp && how.takes_wp(),
    }
}

/// An advice that drops pages: DONTNEED most, as users do.
pub fn drop_advice() -> impl Strategy<Value = Advice> {
    prop_oneof![
        3 => Just(Advice::DontNeed),
        1 => Just(Advice::Remove),
        1 => Just(Advice::Free),
    ]
}

/// Which ioctl of the mfill family: copies most, as users do.
pub fn fill() -> impl Strategy<Value = Fill> {
    prop_oneof![
        3 => Just(Fill::Copy),
        1 => Just(Fill::ZeroPage),
        2 => Just(Fill::Continue),
        1 => Just(Fill::Poison),
    ]
}

/// A sequence of up to `max_len` ops that usually starts by mapping
/// something, so that the rest has a layout to work on. The first map is
/// optional so that shrinking can drop it like any other op.
pub fn ops(pages: Page, max_len: usize) -> impl Strategy<Value = Vec<Op>> {
    let first = (1..=pages, prot(), kind(pages)).prop_map(|(len, prot, kind)| Op::Map {
        start: 0,
        len,
        prot,
        kind: kind.at(0),
    });
    let max_len = max_len.max(1);
    (
        proptest::option::weighted(0.9, first),
        proptest::collection::vec(op(pages), 0..max_len),
        proptest::bool::weighted(0.2),
        proptest::bool::weighted(0.15),
    )
        .prop_map(|(first, rest, memfd, moving)| {
            let all = first.into_iter().chain(rest);
            if memfd {
                all.map(memfd_flavour).collect()
            } else if moving {
                all.map(move_flavour).collect()
            } else {
                all.collect()
            }
        })
        .prop_filter("a sequence has at least one op", |v: &Vec<Op>| {
            !v.is_empty()
        })
}

/// Swarm testing: one sequence in five is made of memfd mappings only,
/// with MINOR+WP where the others have MISSING, so that the situations of
/// memory shared between mappings (a page one mapping wrote is cached for
/// the others: MINOR refuses a write there) are frequent, not rare, and so
/// are uffd-wp bits (every page of a memfd mapping gets one: a marker);
/// every uffd opened has `faults`, so minor and write-protect faults go to
/// a reader (rule 42).
pub(crate) fn memfd_flavour(op: Op) -> Op {
    match op {
        Op::Map {
            start,
            len,
            prot,
            kind: Kind::Anon,
        } => Op::Map {
            start,
            len,
            prot,
            kind: Kind::File {
                file: 0,
                pgoff: start % 4,
            },
        },
        Op::Map {
            start,
            len,
            prot,
            kind: Kind::AnonNoreserve,
        } => Op::Map {
            start,
            len,
            prot,
            kind: Kind::SharedFile {
                file: 0,
                pgoff: start % 4,
            },
        },
        Op::Register {
            ctx,
            start,
            len,
            mode,
        } if mode.contains(Mode::MISSING) && !mode.has_unknown_bits() => Op::Register {
            ctx,
            start,
            len,
            mode: Mode((mode.0 & !Mode::MISSING.0) | Mode::MINOR.0 | Mode::WP.0),
        },
        // A move has no anonymous memory to move here: DONTNEED instead
        // empties entries whose pages stay cached, for CONTINUE to map.
        Op::Move { start, len, .. } => Op::Madvise {
            start,
            len,
            advice: Advice::DontNeed,
        },
        // A memfd's pages are often cached here: CONTINUE maps them.
        Op::Fill {
            how: Fill::Copy,
            ctx,
            start,
            len,
            wp,
        } => Op::Fill {
            how: Fill::Continue,
            ctx,
            start,
            len,
            wp,
        },
        // Minor and write-protect faults go to a reader (rule 42).
        Op::Open { ctx, features } => Op::Open {
            ctx,
            features: features.union(Features::FAULTS),
        },
        op => op,
    }
}

/// Swarm testing again: one sequence in eight or so is made of private
/// anonymous read-write mappings registered MISSING by ctx 0, every uffd op
/// on ctx 0, so that UFFDIO_MOVE, which wants all of that at once (rule
/// 34), moves pages (pages a copy or a write put there, the zero page, a
/// page a fork shared) instead of failing its checks: unmaps map, closes
/// fork, unregisters register.
pub(crate) fn move_flavour(op: Op) -> Op {
    let mut op = op;
    match &mut op {
        Op::Map { prot, kind, .. } => {
            *prot = Prot::RW;
            *kind = Kind::Anon;
        }
        Op::Protect { prot, .. } => *prot = Prot::RW,
        Op::Register { ctx, mode, .. } => {
            *ctx = 0;
            *mode = Mode::MISSING;
        }
        // A fork shares the pages a move then refuses (EBUSY); a close
        // would only unregister.
        Op::Close { .. } => op = Op::Fork,
        // Mapped and registered more than not: a move's destination is.
        Op::Unmap { start, len } => {
            op = Op::Map {
                start: *start,
                len: *len,
                prot: Prot::RW,
                kind: Kind::Anon,
            }
        }
        Op::Unregister { start, len, .. } => {
            op = Op::Register {
                ctx: 0,
                start: *start,
                len: *len,
                mode: Mode::MISSING,
            }
        }
        Op::WriteProtect { ctx, .. } | Op::Fill { ctx, .. } | Op::Move { ctx, .. } => *ctx = 0,
        // A read fault in a registered hole maps the zero page for a move
        // only where the fault is refused, not resolved by a copy.
        Op::Open { features, .. } => *features = features.without(Features::FAULTS),
        _ => {}
    }
    op
}

/// The small alphabet `explore` tries from every state: every op, for an
/// arena of `pages` pages, at every non-empty range, and
/// - `map` rw- or r-- of `anon`, `shmem`, `file=0@START` and
///   `shared-ro-file=0@START` (file offsets follow the address, so
///   neighbouring file mappings are linear and can merge);
/// - `unmap`; `protect` to rw- or r--; `madvise` dontdump, dodump (a flag
///   set and cleared) and wipeonfork (EINVAL outside private anonymous
///   memory); `mlock` (populating) and `munlock`;
/// - `register` on ctx 0 or 1 with `missing`, `wp`, `minor` or `missing+wp`;
/// - `unregister` on ctx 0 or 1; `close` 0 or 1; `writeprotect` on ctx 0,
///   `on` and `off`;
/// - `fault` of every page;
/// - `mremap` in place to every other length, and moved (same length) to
///   every other page; `open 0` with every event feature; `fork`.
///
/// A new op adds its instances here, next to its strategy in [`op`]; the
/// tests below fail for an op missing from either.
pub fn alphabet(pages: Page) -> Vec<Op> {
    let ranges: Vec<(Page, Page)> = (0..pages)
        .flat_map(|start| (1..=pages - start).map(move |len| (start, len)))
        .collect();
    let prots = [Prot::RW, Prot::from_bits(Prot::READ)];
    let mut ops = Vec::new();
    for &(start, len) in &ranges {
        for prot in prots {
            for kind in [
                Kind::Anon,
                Kind::Shmem,
                Kind::File {
                    file: 0,
                    pgoff: start,
                },
                Kind::SharedRoFile {
                    file: 0,
                    pgoff: start,
                },
            ] {
                ops.push(Op::Map {
                    start,
                    len,
                    prot,
                    kind,
                });
            }
            ops.push(Op::Protect { start, len, prot });
        }
        ops.push(Op::Unmap { start, len });
        for advice in [Advice::DontDump, Advice::DoDump, Advice::WipeOnFork] {
            ops.push(Op::Madvise { start, len, advice });
        }
        ops.push(Op::Mlock {
            start,
            len,
            onfault: false,
        });
        ops.push(Op::Munlock { start, len });
        for ctx in 0..2 {
            for mode in [Mode::MISSING, Mode::WP, Mode::MINOR, Mode(3)] {
                ops.push(Op::Register {
                    ctx,
                    start,
                    len,
                    mode,
                });
            }
            ops.push(Op::Unregister { ctx, start, len });
        }
        for on in [true, false] {
            ops.push(Op::WriteProtect {
                ctx: 0,
                start,
                len,
                on,
            });
        }
    }
    for &(start, len) in &ranges {
        for newlen in 1..=pages - start {
            if newlen != len {
                ops.push(Op::Mremap {
                    start,
                    len,
                    newlen,
                    to: Remap::InPlace,
                });
            }
        }
        for dst in (0..=pages - len).filter(|&d| d != start) {
            ops.push(Op::Mremap {
                start,
                len,
                newlen: len,
                to: Remap::Fixed(dst),
            });
        }
    }
    ops.extend((0..2).map(|ctx| Op::Close { ctx }));
    ops.push(Op::Open {
        ctx: 0,
        features: Features::EVERY,
    });
    ops.extend((0..pages).map(|page| Op::Fault { page, read: false }));
    ops.extend((0..pages).map(|page| Op::Fault { page, read: true }));
    ops.push(Op::Fork);
    for &(start, len) in ranges.iter().filter(|(_, len)| *len <= 2) {
        for (how, _) in Fill::ALL {
            ops.push(Op::Fill {
                how,
                ctx: 0,
                start,
                len,
                wp: false,
            });
        }
        ops.push(Op::Fill {
            how: Fill::Copy,
            ctx: 0,
            start,
            len,
            wp: true,
        });
        for src in (0..=pages - len).filter(|&s| s != start) {
            ops.push(Op::Move {
                ctx: 0,
                src,
                start,
                len,
                holes: false,
            });
        }
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    #[test]
    fn every_generated_op_is_valid() {
        let mut runner = TestRunner::deterministic();
        for pages in [1, 2, 7, 16, 64] {
            for _ in 0..300 {
                let v = ops(pages, 20).new_tree(&mut runner).unwrap().current();
                for op in v {
                    op.validate(pages).unwrap();
                }
            }
        }
    }

    /// No hidden index: every op of the language is generated, and is in
    /// explore's alphabet, valid for its arena.
    #[test]
    fn every_op_is_generated_and_in_the_alphabet() {
        let mut runner = TestRunner::deterministic();
        let mut generated = std::collections::BTreeSet::new();
        for _ in 0..5_000 {
            generated.insert(op(16).new_tree(&mut runner).unwrap().current().name());
        }
        let alphabet = alphabet(4);
        for op in &alphabet {
            op.validate(4).unwrap();
            // `Op::kind`'s rows: the name is the first word of the op's text.
            let text = op.to_string();
            assert_eq!(text.split(' ').next(), Some(op.name()), "{text}");
        }
        for name in Op::NAMES {
            assert!(generated.contains(name), "gen::op never makes `{name}`");
            assert!(
                alphabet.iter().any(|o| o.name() == name),
                "gen::alphabet has no `{name}`"
            );
        }
    }
}
