//! The shrinker's own passes, after proptest's (which deletes ops only
//! before it simplifies them, and simplifies each op only in its own
//! ways): [`minimize`], a local search to a fixpoint over deletions and
//! one-step simplifications ([`simpler`]), then [`shorter_by_explore`],
//! which asks `explore` for a shorter case when the local search is stuck.
//! Every try is one run of the checker ([`run_ops`]).

use uffd_vocab::{Backend, Kind, Mode, Op, Page, Prot, Remap};

use crate::check::run_ops;
use crate::explore::{explore, ExploreConfig};
use crate::interrupt::interrupted;

/// The last shrinking pass, after proptest's: a local search to a fixpoint.
/// Proptest deletes ops only before it simplifies them, and simplifies each
/// op only in its own ways, so an op that became deletable later, or a
/// number that could go lower once another op changed, stays. This tries,
/// again and again until nothing applies: deleting each op, then each
/// simplification of each op ([`simpler`]: shorter range, moved left, lower
/// numbers, fewer mode bits, a more familiar prot, a simpler kind), the
/// whole sequence one page to the left, a context renumbered lower
/// everywhere ([`fewer_contexts`]), then two of these at once; it keeps a
/// change when the sequence still fails the same invariant. Every change
/// makes the sequence strictly smaller (fewer ops; or the same ops with
/// the contexts in order lower; or one op smaller), so it ends.
/// Returns the ops and how many sequences were tried.
pub fn minimize(
    backends: &mut [&mut dyn Backend],
    pages: Page,
    mut ops: Vec<Op>,
) -> (Vec<Op>, u64) {
    let Err(first) = run_ops(backends, pages, &ops) else {
        return (ops, 1);
    };
    let mut tries = 1;
    let mut still_fails = |candidate: &[Op]| {
        if candidate.iter().any(|op| op.validate(pages).is_err()) {
            return false;
        }
        tries += 1;
        matches!(run_ops(backends, pages, candidate), Err(f) if f.invariant == first.invariant)
    };
    while !interrupted() {
        let smaller = one_move(&ops)
            .chain(shift_left(&ops))
            .chain(fewer_contexts(&ops))
            .chain(two_moves(&ops))
            .find(|candidate| still_fails(candidate));
        match smaller {
            Some(candidate) => ops = candidate,
            None => break,
        }
    }
    (ops, tries)
}

/// Every sequence one move smaller than `ops`: one op deleted (while more
/// than one is left), then one op made [`simpler`], in order.
fn one_move(ops: &[Op]) -> impl Iterator<Item = Vec<Op>> + '_ {
    let deleted = (0..ops.len()).filter(|_| ops.len() > 1).map(|i| {
        let mut candidate = ops.to_vec();
        candidate.remove(i);
        candidate
    });
    let simplified = (0..ops.len()).flat_map(move |i| {
        simpler(ops[i]).into_iter().map(move |smaller| {
            let mut candidate = ops.to_vec();
            candidate[i] = smaller;
            candidate
        })
    });
    deleted.chain(simplified)
}

/// Two moves at once, where neither alone keeps the failure: delete one op
/// and delete or simplify another (`map; protect` becomes one `map`,
/// `register; unregister` one `register`). Quadratic, so only for short
/// sequences (12 ops or fewer), which is what is left by then.
fn two_moves(ops: &[Op]) -> impl Iterator<Item = Vec<Op>> + '_ {
    let n = if ops.len() <= 12 { ops.len() } else { 0 };
    (0..n).flat_map(move |i| {
        (0..n).filter(move |&j| j != i).flat_map(move |j| {
            let changes = std::iter::once(None).chain(simpler(ops[j]).into_iter().map(Some));
            changes.filter_map(move |change| {
                let mut candidate = ops.to_vec();
                match change {
                    Some(op) => candidate[j] = op,
                    None if j > i => return None,
                    None => {
                        candidate.remove(j);
                    }
                }
                let at = if change.is_none() && j < i { i - 1 } else { i };
                candidate.remove(at);
                (!candidate.is_empty()).then_some(candidate)
            })
        })
    })
}

/// Every op one page to the left (file offsets stay), if none is at page 0:
/// smaller numbers, and fewer pages for [`shorter_by_explore`].
fn shift_left(ops: &[Op]) -> Option<Vec<Op>> {
    ops.iter()
        .map(|op| match op.range() {
            Some((start, len)) => Some(op.with_range(start.checked_sub(1)?, len)),
            None => Some(*op),
        })
        .collect()
}

/// The contexts a person would write: each context `c` that appears
/// before `c - 1` does (or where `c - 1` is not used) swapped with `c - 1`
/// in every op, so `register 1 …; unregister 1 …` becomes
/// `register 0 …; unregister 0 …`, which lowering one op at a time cannot
/// reach. The contexts, read in op order, get lexicographically smaller.
fn fewer_contexts(ops: &[Op]) -> impl Iterator<Item = Vec<Op>> + '_ {
    let first_use = |c: u8| ops.iter().position(|op| ctx_of(*op) == Some(c));
    (1..uffd_vocab::MAX_CTX).filter_map(move |c| {
        let here = first_use(c)?;
        if first_use(c - 1).is_some_and(|lower| lower < here) {
            return None;
        }
        let swap = |x: u8| match x {
            x if x == c => c - 1,
            x if x == c - 1 => c,
            x => x,
        };
        Some(
            ops.iter()
                .map(|op| match ctx_of(*op) {
                    Some(x) => with_ctx(*op, swap(x)),
                    None => *op,
                })
                .collect(),
        )
    })
}

/// The uffd context an op names.
fn ctx_of(op: Op) -> Option<u8> {
    match op {
        Op::Register { ctx, .. }
        | Op::Unregister { ctx, .. }
        | Op::Close { ctx }
        | Op::Open { ctx, .. } => Some(ctx),
        _ => None,
    }
}

/// The same op on context `to` (an op naming none is returned as it is).
fn with_ctx(mut op: Op, to: u8) -> Op {
    match &mut op {
        Op::Register { ctx, .. }
        | Op::Unregister { ctx, .. }
        | Op::Close { ctx }
        | Op::Open { ctx, .. } => *ctx = to,
        _ => {}
    }
    op
}

/// The local search can stop in a local minimum that needs several moves
/// at once to leave (ops reordered, two maps made one). When every backend
/// can take a snapshot (no live kernel) and the case is short (3 to 5 ops),
/// ask `explore` (breadth first: its failures are shortest) for a shorter
/// sequence failing the same invariant on the pages the case uses (at most
/// 4; at most 3 ops on 4 pages), and take it if it fails the same way on
/// the run's arena.
pub fn shorter_by_explore(backends: &mut [&mut dyn Backend], pages: Page, ops: Vec<Op>) -> Vec<Op> {
    let Err(first) = run_ops(backends, pages, &ops) else {
        return ops;
    };
    let touched = ops
        .iter()
        .filter_map(|op| op.range().map(|(s, l)| s + l.max(1)))
        .max()
        .unwrap_or(1);
    let snapshots = backends.iter().all(|b| b.snapshot().is_some());
    if ops.len() < 3 || ops.len() > 5 || !snapshots {
        return ops;
    }
    // A case on more than 4 pages may have a shorter one on 4; explore
    // stays within a few seconds: at most 3 ops on 4 pages.
    let explore_pages = touched.min(4);
    let depth = if explore_pages >= 4 {
        (ops.len() - 1).min(3)
    } else {
        ops.len() - 1
    };
    let config = ExploreConfig {
        pages: explore_pages,
        depth,
        max_states: 2_000_000,
    };
    let r = explore(config, backends, |_, _, _| {});
    match r.failure {
        Some(f) if f.invariant == first.invariant && f.trace.steps.len() < ops.len() => {
            let shorter = f.trace.ops();
            // It must fail the same way on the run's own arena too.
            match run_ops(backends, pages, &shorter) {
                Err(g) if g.invariant == first.invariant => shorter,
                _ => ops,
            }
        }
        _ => ops,
    }
}

/// The one-step simplifications of an op, each strictly smaller: a range
/// one page shorter or one page to the left, a lower context, page or file
/// offset, a mode with one bit fewer, a more familiar prot
/// ([`familiar_prots`]: `rw-` first), a simpler map kind (anon before
/// anon-noreserve before shmem before the file kinds; file 0 before the
/// others), an `mremap` to a smaller length or a lower destination, or a
/// simpler op (`protect` as a `map` of anonymous memory with that prot,
/// `unregister` as a `register` of MISSING, `mremap … dontunmap` without
/// dontunmap).
pub fn simpler(op: Op) -> Vec<Op> {
    let mut out = smaller_ranges(op);
    // What only some ops have: fewer bits, lower numbers, simpler kinds
    // and simpler ops. An op not named here shrinks by its range alone.
    match op {
        Op::Map {
            start,
            len,
            prot,
            kind,
        } => {
            let map = |prot, kind| Op::Map {
                start,
                len,
                prot,
                kind,
            };
            out.extend(familiar_prots(prot).map(|prot| map(prot, kind)));
            out.extend(simpler_kinds(kind).into_iter().map(|kind| map(prot, kind)));
        }
        Op::Protect { start, len, prot } => {
            if len > 0 {
                out.push(Op::Map {
                    start,
                    len,
                    prot,
                    kind: Kind::Anon,
                });
            }
            out.extend(familiar_prots(prot).map(|prot| Op::Protect { start, len, prot }));
        }
        Op::Register {
            ctx,
            start,
            len,
            mode,
        } => {
            let register = |ctx, mode| Op::Register {
                ctx,
                start,
                len,
                mode,
            };
            out.extend(fewer_mode(mode).map(|mode| register(ctx, mode)));
            out.extend(lower(ctx).map(|ctx| register(ctx, mode)));
        }
        Op::Unregister { ctx, start, len } => {
            out.push(Op::Register {
                ctx,
                start,
                len,
                mode: Mode::MISSING,
            });
            out.extend(lower(ctx).map(|ctx| Op::Unregister { ctx, start, len }));
        }
        Op::Close { ctx } => out.extend(lower(ctx).map(|ctx| Op::Close { ctx })),
        Op::Open { ctx, features } => {
            out.extend(lower(ctx).map(|ctx| Op::Open { ctx, features }));
        }
        Op::Mremap {
            start,
            len,
            newlen,
            to,
        } => out.extend(simpler_remaps(newlen, to).map(|(newlen, to)| Op::Mremap {
            start,
            len,
            newlen,
            to,
        })),
        Op::Mlock {
            start,
            len,
            onfault: true,
        } => out.push(Op::Mlock {
            start,
            len,
            onfault: false,
        }),
        _ => {}
    }
    out
}

/// Any op with a range: one page shorter at either end, or one page to the
/// left (a `fault` only moves left).
fn smaller_ranges(op: Op) -> Vec<Op> {
    let mut out = Vec::new();
    match op.range() {
        Some((page, _)) if matches!(op, Op::Fault { .. }) && page > 0 => {
            out.push(op.with_range(page - 1, 1));
        }
        Some(_) if matches!(op, Op::Fault { .. }) => {}
        Some((start, len)) => {
            if len > 1 {
                out.push(op.with_range(start, len - 1));
                out.push(op.with_range(start + 1, len - 1));
            }
            if start > 0 {
                out.push(op.with_range(start - 1, len));
            }
        }
        None => {}
    }
    out
}

/// A context, file or page number one lower, if it is above 0.
fn lower(x: u8) -> Option<u8> {
    x.checked_sub(1)
}

/// The protections from the most familiar to the least: what a program
/// maps most (`rw-` data, `r--`, a `---` guard, `r-x` text), then the
/// rest.
const FAMILIAR_PROTS: [u8; 8] = [3, 1, 0, 5, 7, 2, 4, 6];

/// The protections more familiar than `p` ([`FAMILIAR_PROTS`]), the most
/// familiar first.
fn familiar_prots(p: Prot) -> impl Iterator<Item = Prot> {
    FAMILIAR_PROTS
        .into_iter()
        .take_while(move |&bits| bits != p.bits())
        .map(Prot::from_bits)
}

/// An `mremap`'s simpler lengths and destinations: one page shorter, one
/// page lower, and a `dontunmap` move as a plain move.
fn simpler_remaps(newlen: Page, to: Remap) -> impl Iterator<Item = (Page, Remap)> {
    let shorter = newlen.checked_sub(1).map(|n| (n, to));
    let lower = match to {
        Remap::InPlace => None,
        Remap::Fixed(d) => d.checked_sub(1).map(Remap::Fixed),
        Remap::DontUnmap(d) => d.checked_sub(1).map(Remap::DontUnmap),
    };
    let plain = match to {
        Remap::DontUnmap(d) => Some(Remap::Fixed(d)),
        _ => None,
    };
    shorter
        .into_iter()
        .chain(lower.into_iter().chain(plain).map(move |to| (newlen, to)))
}

/// `m` with one of its bits cleared, for each bit it has, never all of
/// them.
fn fewer_mode(m: Mode) -> impl Iterator<Item = Mode> {
    (0..64)
        .map(|i| 1u64 << i)
        .filter(move |b| m.0 & b != 0 && m.0 != *b)
        .map(move |b| Mode(m.0 & !b))
}

/// The simpler map kinds than `kind`: the same file kind with a lower file
/// number, a lower page offset or offset 0, then each kind of a lower rank
/// (anon, anon-noreserve, shmem, file, shared-file, shared-ro-file).
fn simpler_kinds(kind: Kind) -> Vec<Kind> {
    let rank = |k: Kind| match k {
        Kind::Anon => 0,
        Kind::AnonNoreserve => 1,
        Kind::Shmem => 2,
        Kind::File { .. } => 3,
        Kind::SharedFile { .. } => 4,
        Kind::SharedRoFile { .. } => 5,
    };
    let mut out = Vec::new();
    let mut kinds = vec![Kind::Anon, Kind::AnonNoreserve, Kind::Shmem];
    if let Some((file, pgoff)) = kind.file() {
        kinds.push(Kind::File { file, pgoff });
        kinds.push(Kind::SharedFile { file, pgoff });
        let with = |file: u8, pgoff: Page| match kind {
            Kind::File { .. } => Kind::File { file, pgoff },
            Kind::SharedFile { .. } => Kind::SharedFile { file, pgoff },
            _ => Kind::SharedRoFile { file, pgoff },
        };
        out.extend(lower(file).map(|f| with(f, pgoff)));
        if pgoff > 0 {
            out.push(with(file, pgoff - 1));
            out.push(with(file, 0));
        }
    }
    out.extend(kinds.into_iter().filter(|k| rank(*k) < rank(kind)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use uffd_impl::{IntervalImpl, HISTORIC_BUGS};
    use uffd_model::PageModel;

    fn ops(lines: &[&str]) -> Vec<Op> {
        lines.iter().map(|l| l.parse().unwrap()).collect()
    }

    /// What the shrinker left before it preferred familiar values (ctx 1
    /// where ctx 0 does, `---` and `-w-` over `rw-`, an mremap's length
    /// as generated), and what it leaves now: the same length, the values
    /// a person would write.
    #[test]
    fn minimize_prefers_ctx_0_rw_and_small_numbers() {
        let shrunk_to = [
            (
                "unadjusted-pgoff",
                &[
                    "map 0 3 --- anon",
                    "register 1 0 2 missing",
                    "unregister 1 1 1",
                ][..],
                &[
                    "map 0 3 rw- anon",
                    "register 0 0 2 missing",
                    "unregister 0 1 1",
                ][..],
            ),
            (
                "unaccounted-mprotect",
                &["map 0 1 -w- anon", "protect 0 1 ---"],
                &["map 0 1 rw- anon", "protect 0 1 r--"],
            ),
            (
                "mprotect-errno",
                &["map 0 1 --- shared-ro-file=0@0", "protect 0 1 -w-"],
                &["map 0 1 r-- shared-ro-file=0@0", "protect 0 1 rw-"],
            ),
            (
                "mremap-expand-inside",
                &["map 0 2 --- anon", "mremap 1 1 11"],
                &["map 0 2 rw- anon", "mremap 1 1 2"],
            ),
        ];
        for (bug, before, after) in shrunk_to {
            let bugs = HISTORIC_BUGS.iter().find(|h| h.name == bug).unwrap().bugs;
            let mut model = PageModel::new(16);
            let mut imp = IntervalImpl::with_bugs(16, bugs);
            let (shrunk, _) = minimize(&mut [&mut model, &mut imp], 16, ops(before));
            let text: Vec<String> = shrunk.iter().map(Op::to_string).collect();
            assert_eq!(text, after, "{bug}");
        }
    }

    #[test]
    fn familiar_prots_put_rw_first_and_end() {
        let all: Vec<String> = FAMILIAR_PROTS
            .iter()
            .map(|&b| Prot::from_bits(b).to_string())
            .collect();
        assert_eq!(
            all,
            ["rw-", "r--", "---", "r-x", "rwx", "-w-", "--x", "-wx"]
        );
        let mut seen: Vec<u8> = FAMILIAR_PROTS.to_vec();
        seen.sort();
        assert_eq!(seen, (0..8).collect::<Vec<u8>>(), "each prot once");
        assert_eq!(familiar_prots(Prot::RW).count(), 0);
        let from_none: Vec<String> = familiar_prots(Prot::NONE).map(|p| p.to_string()).collect();
        assert_eq!(from_none, ["rw-", "r--"]);
    }

    #[test]
    fn contexts_are_renumbered_in_order_of_first_use() {
        let text = |v: Vec<Op>| v.iter().map(Op::to_string).collect::<Vec<_>>();
        let two = ops(&["register 2 0 1 missing", "register 0 0 1 wp", "close 2"]);
        let moves: Vec<Vec<String>> = fewer_contexts(&two).map(text).collect();
        // 2 first used before 1 (unused): 2 and 1 swap; 1 is unused, 0 is
        // first used after 2 but is not 2 - 1.
        assert_eq!(
            moves,
            [["register 1 0 1 missing", "register 0 0 1 wp", "close 1"]]
        );
        let settled = ops(&["open 0 event-remap", "register 1 0 1 missing"]);
        assert_eq!(fewer_contexts(&settled).count(), 0);
    }
}
