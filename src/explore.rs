//! Bounded exhaustive exploration (`uffd-check explore`), the way stateright
//! checks a model: breadth first from the empty arena, every op of a small
//! alphabet from every state, every invariant after every transition, states
//! deduplicated by what they are (the layout and the open uffd contexts).
//! Within its bounds this leaves nothing to chance, and the first failure it
//! finds is a shortest one.
//!
//! The alphabet, for an arena of `pages` pages: every non-empty range, and
//! - `map` rw- or r-- of `anon`, `shmem`, `file=0@START` and
//!   `shared-ro-file=0@START` (file offsets follow the address, so
//!   neighbouring file mappings are linear and can merge);
//! - `unmap`; `protect` to rw- or r--; `madvise` dontdump, dodump (a flag
//!   set and cleared) and wipeonfork (EINVAL outside private anonymous
//!   memory); `mlock` (populating) and `munlock`;
//! - `register` on ctx 0 or 1 with `missing`, `wp`, `minor` or `missing+wp`;
//! - `unregister` on ctx 0 or 1; `close` 0 or 1;
//! - `fault` of every page;
//! - `mremap` in place to every other length, and moved (same length) to
//!   every other page; `open 0 event-remap`; `fork`.
//!
//! Any list of backends can be explored (`--backends model,impl,kernel`);
//! the first is the reference. States are deduplicated on a 128-bit
//! fingerprint of the reference's canonical state (its layout and open
//! contexts), and each state keeps only its parent and the op that reached
//! it (8 bytes), so the shortest path to any state is rebuilt by following
//! parents. To try every op from a state, each backend is brought there
//! once: a backend that can [`Backend::fork`] (the model, the
//! implementation) is forked for each op; one that cannot (the kernel) is
//! reset and replays the path for each op.

use std::collections::HashSet;

use uffd_vocab::{Advice, Backend, Contexts, Features, Kind, Layout, Mode, Op, Page, Prot, Remap};

use crate::check::{check_view, Failure, Outcome, Stats, StepView};
use crate::trace::Trace;

/// Every op of the alphabet (see the module docs).
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
        features: Features::EventRemap,
    });
    ops.extend((0..pages).map(|page| Op::Fault { page }));
    ops.push(Op::Fork);
    ops
}

/// What an exploration found.
#[derive(Debug)]
pub struct ExploreReport {
    /// New unique states found at each depth (index 0: the empty arena).
    pub states_by_depth: Vec<u64>,
    /// Transitions checked (op applications).
    pub transitions: u64,
    pub alphabet: usize,
    pub stats: Stats,
    /// The first failure, a shortest one.
    pub failure: Option<Failure>,
    /// The state budget ran out, or the run was interrupted: the last depth
    /// was not explored to its end.
    pub truncated: bool,
    /// Stopped by Ctrl-C ([`crate::runner::INTERRUPTED`]).
    pub interrupted: bool,
}

impl ExploreReport {
    pub fn states(&self) -> u64 {
        self.states_by_depth.iter().sum()
    }
}

/// The bounds of an exploration.
#[derive(Clone, Copy, Debug)]
pub struct ExploreConfig {
    pub pages: Page,
    pub depth: usize,
    /// Stop (truncated) once this many unique states are known: memory is
    /// about 60 bytes a state.
    pub max_states: u64,
}

/// One explored state: how it was first reached.
#[derive(Clone, Copy)]
struct Node {
    /// Index of the parent in the node list (the root points at itself).
    parent: u32,
    /// Index of the op in the alphabet.
    op: u32,
}

/// The fingerprint of the reference's state after a step: its own
/// ([`Backend::fingerprint`]) when it has one, else its layout and open
/// contexts.
fn fingerprint(reference: Option<u128>, layout: &Layout, open: Contexts) -> u128 {
    reference.unwrap_or_else(|| uffd_vocab::fingerprint128(&(layout, open)))
}

/// The ops that lead from the root to `node`.
fn path_to(nodes: &[Node], alphabet: &[Op], mut node: u32) -> Vec<Op> {
    let mut path = Vec::new();
    while node != 0 {
        let n = nodes[node as usize];
        path.push(alphabet[n.op as usize]);
        node = n.parent;
    }
    path.reverse();
    path
}

/// Explores every sequence of up to `config.depth` ops of the alphabet on
/// an arena of `config.pages` pages, on `backends` (the first is the
/// reference), checking every invariant after every transition.
/// `progress(depth, states, transitions)` is called now and then.
pub fn explore(
    config: ExploreConfig,
    backends: &mut [&mut dyn Backend],
    mut progress: impl FnMut(usize, u64, u64),
) -> ExploreReport {
    assert!(!backends.is_empty(), "explore needs a backend");
    let pages = config.pages;
    let ops = alphabet(pages);
    let mut stats = Stats::default();
    let mut transitions: u64 = 0;
    let mut nodes = vec![Node { parent: 0, op: 0 }];
    let mut seen: HashSet<u128> = HashSet::new();
    backends[0].reset();
    seen.insert(fingerprint(
        backends[0].fingerprint(),
        &Layout::default(),
        Contexts::default(),
    ));
    let mut states_by_depth = vec![1];
    let mut level: Vec<u32> = vec![0];
    let mut truncated = false;
    // Which backends can fork: asked once, not at every state.
    let forkable: Vec<bool> = backends.iter().map(|b| b.snapshot().is_some()).collect();
    let report = |states_by_depth, transitions, stats, failure, truncated| ExploreReport {
        states_by_depth,
        transitions,
        alphabet: ops.len(),
        stats,
        failure,
        truncated,
        interrupted: crate::runner::INTERRUPTED.load(std::sync::atomic::Ordering::Relaxed),
    };
    'depths: for depth in 0..config.depth {
        let mut next: Vec<u32> = Vec::new();
        for &node in &level {
            if crate::runner::INTERRUPTED.load(std::sync::atomic::Ordering::Relaxed) {
                truncated = true;
                states_by_depth.push(next.len() as u64);
                break 'depths;
            }
            let path = path_to(&nodes, &ops, node);
            // Bring each backend that can fork to this state once.
            let bases: Vec<Option<Box<dyn Backend>>> = backends
                .iter_mut()
                .zip(&forkable)
                .map(|(b, &forks)| {
                    if !forks {
                        return None;
                    }
                    b.reset();
                    for op in &path {
                        let _ = b.step(op);
                    }
                    b.snapshot()
                })
                .collect();
            for (i, op) in ops.iter().enumerate() {
                let mut outcomes: Vec<Outcome> = Vec::with_capacity(backends.len());
                let mut reference_print = None;
                for (k, (b, base)) in backends.iter_mut().zip(&bases).enumerate() {
                    let answer = match base.as_ref().and_then(|base| base.snapshot()) {
                        Some(mut f) => {
                            let a = f.step(op);
                            if k == 0 {
                                reference_print = f.fingerprint();
                            }
                            a
                        }
                        None => {
                            b.reset();
                            let mut all = path.clone();
                            all.push(*op);
                            b.plan(&all);
                            for p in &path {
                                let _ = b.step(p);
                            }
                            let a = b.step(op);
                            if k == 0 {
                                reference_print = b.fingerprint();
                            }
                            a
                        }
                    };
                    match answer {
                        Ok(o) => outcomes.push(o),
                        Err(uffd_vocab::Unsupported) => {
                            *stats
                                .unsupported
                                .entry(format!("{}: {}", b.name(), op.name()))
                                .or_default() += 1;
                        }
                    }
                }
                transitions += 1;
                if transitions.is_multiple_of(65_536) {
                    progress(depth + 1, nodes.len() as u64, transitions);
                }
                if outcomes.is_empty() {
                    continue;
                }
                let view = StepView {
                    index: path.len(),
                    op,
                    pages,
                    outcomes: &outcomes,
                    expect: None,
                };
                if let Err((invariant, message)) = check_view(&view) {
                    let mut all = path.clone();
                    all.push(*op);
                    let failure = Failure {
                        invariant,
                        message,
                        step: path.len(),
                        trace: Trace::from_ops(pages, &all),
                        outcomes,
                    };
                    states_by_depth.push(next.len() as u64);
                    return report(states_by_depth, transitions, stats, Some(failure), false);
                }
                stats.count(op, &outcomes);
                let print = fingerprint(reference_print, &outcomes[0].layout, outcomes[0].open);
                if seen.insert(print) {
                    if nodes.len() as u64 >= config.max_states {
                        truncated = true;
                        states_by_depth.push(next.len() as u64);
                        break 'depths;
                    }
                    nodes.push(Node {
                        parent: node,
                        op: i as u32,
                    });
                    next.push((nodes.len() - 1) as u32);
                }
            }
        }
        states_by_depth.push(next.len() as u64);
        level = next;
        if level.is_empty() {
            break;
        }
    }
    report(states_by_depth, transitions, stats, None, truncated)
}
