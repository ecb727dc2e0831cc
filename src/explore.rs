//! Bounded exhaustive exploration (`uffd-check explore`), the way stateright
//! checks a model: breadth first from the empty arena, every op of a small
//! alphabet from every state, every invariant after every transition, states
//! deduplicated by what they are (the layout and the open uffd contexts).
//! Within its bounds this leaves nothing to chance, and the first failure it
//! finds is a shortest one.
//!
//! The alphabet is [`crate::gen::alphabet`]: every op, in small instances.
//!
//! Any list of backends can be explored (`--backends model,impl,kernel`);
//! the first is the reference. States are deduplicated on a 128-bit
//! fingerprint of the reference's canonical state (its layout and open
//! contexts), and each state keeps only its parent and the op that reached
//! it (8 bytes), so the shortest path to any state is rebuilt by following
//! parents. To try every op from a state, each backend is brought there
//! once: a backend that can take a [`Backend::snapshot`] (the model, the
//! implementation) is copied for each op; one that cannot (the kernel) is
//! reset and replays the path for each op. Each transition is one step of
//! the checker's one stepping loop ([`crate::check::step_checked`]); a
//! backend that answers `Unsupported` on the path to a state, or at the
//! transition, is left out of it (and counted), as in a run.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

use uffd_vocab::{Backend, Contexts, Layout, Op, Outcome, Page};

pub use crate::gen::alphabet;

use crate::check::{hand_back, step_checked_in, Failure, Stats, StepAt, Stepped};
use crate::interrupt::interrupted;
use crate::trace::Trace;

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
    /// Stopped by Ctrl-C ([`crate::interrupt::INTERRUPTED`]).
    pub interrupted: bool,
    /// The bytes the states took at the end: the set of fingerprints and
    /// the list of states, as allocated.
    pub state_bytes: u64,
}

impl ExploreReport {
    pub fn states(&self) -> u64 {
        self.states_by_depth.iter().sum()
    }

    /// The bytes a state took, on average ([`ExploreReport::state_bytes`]).
    pub fn bytes_per_state(&self) -> u64 {
        self.state_bytes / self.states().max(1)
    }
}

/// The hasher of the set of fingerprints: a fingerprint is already a hash
/// (128 bits of one), so its low 64 bits are the set's hash, not hashed
/// again.
#[derive(Default)]
pub(crate) struct FingerprintHasher(u64);

impl Hasher for FingerprintHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only u128s are hashed here; this is for any other key.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u128(&mut self, n: u128) {
        self.0 = n as u64;
    }
}

pub(crate) type Fingerprints = HashSet<u128, BuildHasherDefault<FingerprintHasher>>;

/// The bounds of an exploration.
#[derive(Clone, Copy, Debug)]
pub struct ExploreConfig {
    pub pages: Page,
    pub depth: usize,
    /// Stop (truncated) once this many unique states are known: memory is
    /// 10 to 50 bytes a state (the last depth's the fewest).
    pub max_states: u64,
}

/// The largest arena, depth and state budget `explore` takes: past these,
/// memory or time grows past what a run should take.
pub const MAX_EXPLORE_PAGES: Page = 8;
pub const MAX_EXPLORE_DEPTH: usize = 8;
pub const MAX_EXPLORE_STATES: u64 = 200_000_000;

impl ExploreConfig {
    /// `explore`'s bounds: an error, naming the flag, for an arena, a
    /// state budget or a depth out of range.
    pub fn check_bounds(&self) -> Result<(), String> {
        let ExploreConfig {
            pages,
            depth,
            max_states,
        } = *self;
        if !(1..=MAX_EXPLORE_PAGES).contains(&pages) {
            return Err(format!(
                "--pages {pages}: explore takes 1 to {MAX_EXPLORE_PAGES} pages"
            ));
        }
        if !(1..=MAX_EXPLORE_STATES).contains(&max_states) {
            return Err(format!(
                "--max-states {max_states}: explore keeps 1 to {MAX_EXPLORE_STATES} states (10 to 50 bytes each)"
            ));
        }
        if depth > MAX_EXPLORE_DEPTH {
            return Err(format!(
                "--depth {depth}: explore takes 0 to {MAX_EXPLORE_DEPTH} ops (and --max-states bounds it)"
            ));
        }
        Ok(())
    }
}

/// One explored state: how it was first reached.
#[derive(Clone, Copy)]
pub(crate) struct Node {
    /// Index of the parent in the node list (the root points at itself).
    pub(crate) parent: u32,
    /// Index of the op in the alphabet.
    pub(crate) op: u32,
}

/// The fingerprint of the reference's state after a step: its own
/// ([`Backend::fingerprint`]) when it has one, else its layout and open
/// contexts.
pub(crate) fn fingerprint(reference: Option<u128>, layout: &Layout, open: Contexts) -> u128 {
    reference.unwrap_or_else(|| uffd_vocab::fingerprint128(&(layout, open)))
}

/// The ops that lead from the root to `node`.
pub(crate) fn path_to(nodes: &[Node], alphabet: &[Op], mut node: u32) -> Vec<Op> {
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
    let mut search = Search::new(config, backends);
    let mut states_by_depth = vec![1];
    let mut level: Vec<u32> = vec![0];
    let mut stop = None;
    for depth in 0..config.depth {
        // The states of the last depth are counted, not kept: nothing
        // goes from them.
        let last = depth + 1 == config.depth;
        let mut next: Vec<u32> = Vec::new();
        let before = search.states();
        let expanded = level.iter().try_for_each(|&node| {
            let next = (!last).then_some(&mut next);
            search.expand(backends, node, next, &mut |states, transitions| {
                progress(depth + 1, states, transitions)
            })
        });
        states_by_depth.push(search.states() - before);
        if let Err(s) = expanded {
            stop = Some(s);
            break;
        }
        level = next;
        if level.is_empty() {
            break;
        }
    }
    search.report(states_by_depth, stop)
}

/// Why a search stopped before its depth.
pub(crate) enum Stop {
    /// An invariant failed: a shortest failing sequence.
    Failed(Failure),
    /// The state budget ran out, or the run was interrupted.
    Truncated,
}

/// A breadth-first search in progress.
pub(crate) struct Search {
    pub(crate) config: ExploreConfig,
    /// The alphabet.
    pub(crate) ops: Vec<Op>,
    /// Every state found, by index; 0 is the empty arena.
    pub(crate) nodes: Vec<Node>,
    /// The fingerprints of the states found, but for the last depth's.
    pub(crate) seen: Fingerprints,
    /// The last depth's new states, by 64 bits of their fingerprints:
    /// nothing goes from them, so they are only counted (two of them
    /// taken for one would make the count one less, at odds of about
    /// 1 in 10,000 for 80 million states).
    pub(crate) last: HashSet<u64, BuildHasherDefault<FingerprintHasher>>,
    pub(crate) stats: Stats,
    pub(crate) transitions: u64,
    /// Which backends can take a snapshot: asked once, not at every state.
    pub(crate) snapshots: Vec<bool>,
    /// What the transitions reuse, from state to state.
    scratch: Scratch,
}

impl Search {
    pub(crate) fn new(config: ExploreConfig, backends: &mut [&mut dyn Backend]) -> Search {
        backends[0].reset();
        let root = fingerprint(
            backends[0].fingerprint(),
            &Layout::default(),
            Contexts::default(),
        );
        Search {
            config,
            ops: alphabet(config.pages),
            nodes: vec![Node { parent: 0, op: 0 }],
            seen: Fingerprints::from_iter([root]),
            last: HashSet::default(),
            stats: Stats::default(),
            transitions: 0,
            snapshots: backends.iter().map(|b| b.snapshot().is_some()).collect(),
            scratch: Scratch::default(),
        }
    }

    pub(crate) fn report(self, states_by_depth: Vec<u64>, stop: Option<Stop>) -> ExploreReport {
        let (failure, truncated) = match stop {
            None => (None, false),
            Some(Stop::Truncated) => (None, true),
            Some(Stop::Failed(f)) => (Some(f), false),
        };
        // A hash set's slot: the key and a control byte.
        let set = self.seen.capacity() * (std::mem::size_of::<u128>() + 1)
            + self.last.capacity() * (std::mem::size_of::<u64>() + 1);
        let nodes = self.nodes.capacity() * std::mem::size_of::<Node>();
        ExploreReport {
            state_bytes: (set + nodes) as u64,
            states_by_depth,
            transitions: self.transitions,
            alphabet: self.ops.len(),
            stats: self.stats,
            failure,
            truncated,
            interrupted: interrupted(),
        }
    }

    /// The states found, the root's included.
    pub(crate) fn states(&self) -> u64 {
        (self.seen.len() + self.last.len()) as u64
    }

    /// Adds the state of fingerprint `print` (of the `last` depth, or
    /// not): whether it is new, or `Truncated` (and not added) when it is
    /// new past the budget (the root counted, as in `--max-states`).
    pub(crate) fn add(&mut self, print: u128, last: bool) -> Result<bool, Stop> {
        let new = if last {
            !self.seen.contains(&print) && self.last.insert(print as u64)
        } else {
            self.seen.insert(print)
        };
        if new && self.states() > self.config.max_states {
            self.remove(print, last);
            return Err(Stop::Truncated);
        }
        Ok(new)
    }

    /// Takes back [`Search::add`] of a new state.
    pub(crate) fn remove(&mut self, print: u128, last: bool) {
        if last {
            self.last.remove(&(print as u64));
        } else {
            self.seen.remove(&print);
        }
    }

    /// Tries every op of the alphabet from `node`, adding the new states
    /// it reaches to the search and, unless there is no `next` (the last
    /// depth: they are only counted), to the nodes and to `next`.
    pub(crate) fn expand(
        &mut self,
        backends: &mut [&mut dyn Backend],
        node: u32,
        mut next: Option<&mut Vec<u32>>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<(), Stop> {
        if interrupted() {
            return Err(Stop::Truncated);
        }
        let path = path_to(&self.nodes, &self.ops, node);
        let (bases, active) = bring_to(&self.snapshots, backends, &path);
        for i in 0..self.ops.len() {
            let op = self.ops[i];
            let at = (self.config.pages, path.as_slice(), op);
            let scratch = &mut self.scratch;
            let led = transition(scratch, backends, &bases, &active, at, &mut self.stats);
            self.transitions += 1;
            if self.transitions.is_multiple_of(65_536) {
                progress(self.states(), self.transitions);
            }
            match led {
                Led::Nowhere => {}
                Led::Failed(failed) => {
                    return Err(Stop::Failed(failure_of(
                        self.config.pages,
                        &path,
                        op,
                        failed,
                    )));
                }
                Led::To(print) => {
                    let last = next.is_none();
                    if self.add(print, last)? {
                        if let Some(next) = next.as_deref_mut() {
                            self.nodes.push(Node {
                                parent: node,
                                op: i as u32,
                            });
                            next.push((self.nodes.len() - 1) as u32);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// The failure of the transition `op` from the state `path` leads to,
/// whose step `failed` is (a [`Stepped::Failed`]).
pub(crate) fn failure_of(pages: Page, path: &[Op], op: Op, failed: Stepped) -> Failure {
    let Stepped::Failed {
        invariant,
        message,
        outcomes,
    } = failed
    else {
        unreachable!("failure_of is given a failed step");
    };
    let mut all = path.to_vec();
    all.push(op);
    Failure {
        invariant,
        message,
        step: path.len(),
        trace: Trace::from_ops(pages, &all),
        outcomes,
    }
}

/// Brings each backend that can take a snapshot to the state `path`
/// leads to, once, and keeps a snapshot of it there; the others get
/// `None` (they replay the path for each op). Also says which backends
/// are still in: not one that answered `Unsupported` on the path.
pub(crate) fn bring_to(
    snapshots: &[bool],
    backends: &mut [&mut dyn Backend],
    path: &[Op],
) -> (Vec<Option<Box<dyn Backend>>>, Vec<bool>) {
    let mut active = vec![true; backends.len()];
    let bases = backends
        .iter_mut()
        .zip(snapshots)
        .zip(active.iter_mut())
        .map(|((b, &snapshots), on)| {
            if !snapshots {
                return None;
            }
            *on = walk(&mut **b, path, None);
            b.snapshot()
        })
        .collect();
    (bases, active)
}

/// What the transitions reuse, one after another (explore makes a
/// billion transitions at 6 pages and depth 4): three vectors, and the
/// copies of the bases, restored for each ([`Backend::restore`]).
#[derive(Default)]
pub(crate) struct Scratch {
    active: Vec<bool>,
    copies: Vec<Option<Box<dyn Backend>>>,
    /// The outcomes' vector, handed from transition to transition.
    outcomes: Vec<Outcome>,
}

/// Where one transition led.
pub(crate) enum Led {
    /// No backend is left that can run the op.
    Nowhere,
    /// Every invariant held: to the state of this fingerprint.
    To(u128),
    /// An invariant failed: the step, a [`Stepped::Failed`].
    Failed(Stepped),
}

/// One transition: `op` from the state `path` leads to, on a copy of
/// each base, or on the backend itself after it replayed the path,
/// through the checker's stepping loop, counted in `stats`; `at` is the
/// arena's pages, the path and the op. When it passed, the fingerprint
/// is the reference's (the first backend still in), and the outcomes go
/// back to their backends ([`Backend::recycle`]).
pub(crate) fn transition(
    scratch: &mut Scratch,
    backends: &mut [&mut dyn Backend],
    bases: &[Option<Box<dyn Backend>>],
    active: &[bool],
    (pages, path, op): (Page, &[Op], Op),
    stats: &mut Stats,
) -> Led {
    let Scratch {
        active: on_now,
        copies,
        outcomes,
    } = scratch;
    on_now.clear();
    on_now.extend_from_slice(active);
    copies.resize_with(bases.len(), || None);
    for (copy, base) in copies.iter_mut().zip(bases) {
        let restored = match (copy.as_mut(), base) {
            (Some(copy), Some(base)) => copy.restore(&**base),
            _ => false,
        };
        if !restored {
            *copy = base.as_ref().and_then(|base| base.snapshot());
        }
    }
    let mut set: Vec<&mut dyn Backend> = Vec::with_capacity(backends.len());
    for ((b, copy), on) in backends
        .iter_mut()
        .zip(copies.iter_mut())
        .zip(on_now.iter_mut())
    {
        match copy {
            Some(copy) => set.push(&mut **copy),
            None => {
                if *on {
                    let mut all = path.to_vec();
                    all.push(op);
                    *on = walk(&mut **b, path, Some(&all));
                }
                set.push(&mut **b);
            }
        }
    }
    let at = StepAt {
        index: path.len(),
        op: &op,
        pages,
        expect: None,
        before: None,
    };
    let spare = std::mem::take(outcomes);
    match step_checked_in(spare, &mut set, on_now, at, stats, |_| {}) {
        Stepped::NoneLeft => Led::Nowhere,
        failed @ Stepped::Failed { .. } => Led::Failed(failed),
        Stepped::Passed(mut passed) => {
            // The outcomes are those of the backends still in: the
            // reference's is the first.
            let (reference, _) = set
                .iter()
                .zip(on_now.iter())
                .find(|(_, &on)| on)
                .expect("a step that passed has an outcome");
            let print = fingerprint(
                reference.fingerprint_after(&op, &passed[0]),
                &passed[0].layout,
                passed[0].open,
            );
            hand_back(&mut set, on_now, &mut passed);
            *outcomes = passed;
            Led::To(print)
        }
    }
}

/// Resets `b`, gives it `plan` if any, and runs `path` on it; false if it
/// answered `Unsupported` on the way (it is then out, as in a run).
fn walk(b: &mut dyn Backend, path: &[Op], plan: Option<&[Op]>) -> bool {
    b.reset();
    if let Some(ops) = plan {
        b.plan(ops);
    }
    path.iter().all(|op| b.step(op).is_ok())
}
