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
//! - `unmap`; `protect` to rw- or r--;
//! - `register` on ctx 0 or 1 with `missing`, `wp`, `minor` or `missing+wp`;
//! - `unregister` on ctx 0 or 1; `close` 0 or 1.

use std::collections::HashSet;

use uffd_impl::{Bugs, IntervalImpl};
use uffd_model::{Backend, Kind, Layout, Mode, Op, Page, PageModel, Prot};

use crate::check::{check_step, run_ops, Failure, Stats};
use crate::trace::{Step, Trace};

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
    ops.extend((0..2).map(|ctx| Op::Close { ctx }));
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
}

impl ExploreReport {
    pub fn states(&self) -> u64 {
        self.states_by_depth.iter().sum()
    }
}

/// One explored state: both backends as they are, and the ops that led here.
struct Node {
    model: PageModel,
    imp: IntervalImpl,
    path: Vec<Op>,
}

fn key(layout: &Layout, model: &PageModel) -> (Layout, Vec<u8>) {
    (layout.clone(), model.open_contexts())
}

/// Explores every sequence of up to `depth` ops of the alphabet on an arena
/// of `pages` pages, model against implementation; with `kernel`, every
/// transition is also replayed from the empty arena on the kernel and
/// checked, model against kernel, after every step.
pub fn explore(
    pages: Page,
    depth: usize,
    bugs: Bugs,
    mut kernel: Option<&mut dyn Backend>,
) -> ExploreReport {
    let ops = alphabet(pages);
    let mut stats = Stats::default();
    let mut transitions = 0;
    let root = Node {
        model: PageModel::new(pages),
        imp: IntervalImpl::with_bugs(pages, bugs),
        path: Vec::new(),
    };
    let mut seen: HashSet<(Layout, Vec<u8>)> = HashSet::new();
    seen.insert(key(&Layout::default(), &root.model));
    let mut states_by_depth = vec![1];
    let mut frontier = vec![root];
    for _ in 0..depth {
        let mut next = Vec::new();
        for node in &frontier {
            for op in &ops {
                let mut model = node.model.clone();
                let mut imp = node.imp.clone();
                let step = Step {
                    op: *op,
                    line: node.path.len() + 2,
                    expect_result: None,
                    expect_layout: None,
                    expect_draw: None,
                };
                let index = node.path.len();
                let checked = check_step(&mut [&mut model, &mut imp], pages, index, &step, |_| {});
                transitions += 1;
                let mut path = node.path.clone();
                path.push(*op);
                let checked = match (checked, kernel.as_deref_mut()) {
                    (Ok(outcomes), Some(k)) => {
                        let mut fresh = PageModel::new(pages);
                        match run_ops(&mut [&mut fresh, k], pages, &path) {
                            Ok(_) => Ok(outcomes),
                            Err(f) => Err((f.invariant, f.message, f.outcomes)),
                        }
                    }
                    (checked, _) => checked,
                };
                match checked {
                    Ok(outcomes) => {
                        stats.count(op, &outcomes);
                        if seen.insert(key(&outcomes[0].layout, &model)) {
                            next.push(Node { model, imp, path });
                        }
                    }
                    Err((invariant, message, outcomes)) => {
                        return ExploreReport {
                            states_by_depth,
                            transitions,
                            alphabet: ops.len(),
                            stats,
                            failure: Some(Failure {
                                invariant,
                                message,
                                step: index,
                                trace: Trace::from_ops(pages, &path),
                                outcomes,
                            }),
                        };
                    }
                }
            }
        }
        states_by_depth.push(next.len() as u64);
        frontier = next;
        if frontier.is_empty() {
            break;
        }
    }
    ExploreReport {
        states_by_depth,
        transitions,
        alphabet: ops.len(),
        stats,
        failure: None,
    }
}
