//! `explore --jobs N`: each depth's states expanded by N threads, each on
//! its own backends (for the kernel, its own worker), with the same
//! result as one thread.
//!
//! The states of a depth are handed out in chunks, in order; a thread
//! tries every op of the alphabet from each state of its chunk (as
//! [`Search::expand`] does, up to a state's first failure) and sends back
//! each transition's fingerprint with the stats it counted. The calling
//! thread merges the chunks in order, as one thread would have met them:
//! the same states get the same parents, the first failure met is the
//! same shortest one, and the stats are the same. Only where the state
//! budget runs out inside a state does it expand that state again itself,
//! so that a truncated search stops at the same transition too.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::Mutex;

use uffd_vocab::{Backend, Op};

use crate::backends::as_refs;
use crate::check::{Failure, Stats};
use crate::explore::{
    bring_to, failure_of, path_to, transition, ExploreConfig, ExploreReport, Led, Node, Scratch,
    Search, Stop,
};
use crate::interrupt::interrupted;
use crate::jobs::MakeBackends;

/// States a thread takes at a time.
const CHUNK: usize = 8;
/// Chunks handed out ahead of the one merged next, per job.
const AHEAD: usize = 4;

/// What trying every op from one state gave, in the alphabet's order, up
/// to its first failure.
struct Expansion {
    node: u32,
    /// The op (its index in the alphabet) and the fingerprint of the state
    /// it led to, for each transition that passed.
    passed: Vec<(u32, u128)>,
    failed: Option<Failure>,
    stats: Stats,
    transitions: u64,
}

/// A chunk's states, with their paths, by the chunk's number.
type Task = (usize, Vec<(u32, Vec<Op>)>);
type Done = (usize, Result<Vec<Expansion>, String>);

/// Tries every op of `ops` from the state `path` leads to.
fn expand_one(
    config: &ExploreConfig,
    ops: &[Op],
    snapshots: &[bool],
    backends: &mut [&mut dyn Backend],
    scratch: &mut Scratch,
    (node, path): (u32, Vec<Op>),
) -> Expansion {
    let mut e = Expansion {
        node,
        passed: Vec::new(),
        failed: None,
        stats: Stats::default(),
        transitions: 0,
    };
    if interrupted() {
        return e;
    }
    let (bases, active) = bring_to(snapshots, backends, &path);
    for (i, &op) in ops.iter().enumerate() {
        let at = (config.pages, path.as_slice(), op);
        e.transitions += 1;
        match transition(scratch, backends, &bases, &active, at, &mut e.stats) {
            Led::Nowhere => {}
            Led::Failed(failed) => {
                e.failed = Some(failure_of(config.pages, &path, op, failed));
                break;
            }
            Led::To(print) => e.passed.push((i as u32, print)),
        }
    }
    e
}

/// One job: chunks until the channel closes, on its own backends.
fn job(
    config: &ExploreConfig,
    make: &MakeBackends,
    tasks: &Mutex<mpsc::Receiver<Task>>,
    done: mpsc::Sender<Done>,
) {
    let mut boxes = match make() {
        Ok(b) => b,
        Err(e) => {
            let _ = done.send((0, Err(e)));
            return;
        }
    };
    let mut backends = as_refs(&mut boxes);
    let snapshots: Vec<bool> = backends.iter().map(|b| b.snapshot().is_some()).collect();
    let ops = crate::explore::alphabet(config.pages);
    let mut scratch = Scratch::default();
    loop {
        let task = tasks.lock().unwrap_or_else(|e| e.into_inner()).recv();
        let Ok((n, states)) = task else { return };
        let expansions = states
            .into_iter()
            .map(|s| expand_one(config, &ops, &snapshots, &mut backends, &mut scratch, s))
            .collect();
        if done.send((n, Ok(expansions))).is_err() {
            return;
        }
    }
}

/// Adds one state's expansion to the search, as [`Search::expand`] would
/// have; `Err(None)` where the budget runs out inside it (nothing of it
/// is then added).
fn merge(
    search: &mut Search,
    e: Expansion,
    mut next: Option<&mut Vec<u32>>,
) -> Result<(), Option<Stop>> {
    let (nodes, queued) = (search.nodes.len(), next.as_ref().map_or(0, |n| n.len()));
    let mut added = Vec::new();
    let last = next.is_none();
    for (op, print) in e.passed {
        let Ok(new) = search.add(print, last) else {
            for print in added {
                search.remove(print, last);
            }
            search.nodes.truncate(nodes);
            if let Some(next) = next {
                next.truncate(queued);
            }
            return Err(None);
        };
        if !new {
            continue;
        }
        added.push(print);
        if let Some(next) = next.as_deref_mut() {
            search.nodes.push(Node { parent: e.node, op });
            next.push((search.nodes.len() - 1) as u32);
        }
    }
    search.stats.add(&e.stats);
    search.transitions += e.transitions;
    match e.failed {
        Some(f) => Err(Some(Stop::Failed(f))),
        None => Ok(()),
    }
}

/// [`crate::explore::explore`] on `jobs` threads (2 or more), each on the
/// backends `make` returns; the same report.
pub fn explore_jobs(
    config: ExploreConfig,
    jobs: usize,
    make: &MakeBackends,
    mut progress: impl FnMut(usize, u64, u64),
) -> Result<ExploreReport, String> {
    let mut boxes = make()?;
    let mut backends = as_refs(&mut boxes);
    let mut search = Search::new(config, &mut backends);
    let (task_tx, task_rx) = mpsc::channel::<Task>();
    let (done_tx, done_rx) = mpsc::channel::<Done>();
    let tasks = Mutex::new(task_rx);
    let mut states_by_depth = vec![1];
    let mut stop = None;
    std::thread::scope(|scope| -> Result<(), String> {
        for _ in 0..jobs {
            let done = done_tx.clone();
            let tasks = &tasks;
            scope.spawn(move || job(&config, make, tasks, done));
        }
        drop(done_tx);
        let mut level: Vec<u32> = vec![0];
        for depth in 0..config.depth {
            let last = depth + 1 == config.depth;
            let mut next = Vec::new();
            let before = search.states();
            let chunks: Vec<&[u32]> = level.chunks(CHUNK).collect();
            let (mut sent, mut merged) = (0, 0);
            let mut ready: BTreeMap<usize, Vec<Expansion>> = BTreeMap::new();
            'level: while merged < chunks.len() {
                while sent < chunks.len() && sent < merged + AHEAD * jobs {
                    let states = chunks[sent]
                        .iter()
                        .map(|&n| (n, path_to(&search.nodes, &search.ops, n)))
                        .collect();
                    task_tx
                        .send((sent, states))
                        .map_err(|_| "explore: every job stopped")?;
                    sent += 1;
                }
                let (n, expansions) = done_rx.recv().map_err(|_| "explore: every job stopped")?;
                ready.insert(n, expansions?);
                while let Some(expansions) = ready.remove(&merged) {
                    for e in expansions {
                        if interrupted() {
                            stop = Some(Stop::Truncated);
                            break 'level;
                        }
                        let node = e.node;
                        match merge(&mut search, e, (!last).then_some(&mut next)) {
                            Ok(()) => {}
                            Err(Some(s)) => {
                                stop = Some(s);
                                break 'level;
                            }
                            Err(None) => {
                                // The budget ran out inside this state:
                                // expanded again here, to stop where one
                                // thread would have.
                                let queue = (!last).then_some(&mut next);
                                let again =
                                    search.expand(&mut backends, node, queue, &mut |_, _| {});
                                stop = Some(again.err().unwrap_or(Stop::Truncated));
                                break 'level;
                            }
                        }
                    }
                    merged += 1;
                    progress(depth + 1, search.states(), search.transitions);
                }
            }
            states_by_depth.push(search.states() - before);
            if stop.is_some() || next.is_empty() {
                break;
            }
            level = next;
        }
        // Closing the channel ends the jobs.
        drop(task_tx);
        Ok(())
    })?;
    Ok(search.report(states_by_depth, stop))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explore::explore;
    use crate::jobs::model_and_impl;
    use uffd_impl::{Bugs, Switch};

    /// What a report says.
    fn said(r: &ExploreReport) -> String {
        let failure = r.failure.as_ref().map(|f| f.to_string());
        format!(
            "{:?} {} {} {:?}\n{failure:?}",
            r.states_by_depth, r.transitions, r.truncated, r.stats
        )
    }

    /// The same states, transitions, stats, failure and truncation as one
    /// thread, whatever the jobs: a whole search, two that run out of
    /// budget (inside a state), and one that fails.
    #[test]
    fn the_same_report_as_one_thread() {
        for (pages, depth, max_states, bugs) in [
            (3, 3, u64::MAX, Bugs::NONE),
            (4, 3, 1_000, Bugs::NONE),
            (4, 3, 20_000, Bugs::NONE),
            (4, 3, u64::MAX, Bugs::of(&[Switch::UnadjustedPgoff])),
        ] {
            let config = ExploreConfig {
                pages,
                depth,
                max_states,
            };
            let mut boxes = model_and_impl(pages, bugs);
            let one = said(&explore(config, &mut as_refs(&mut boxes), |_, _, _| {}));
            assert_eq!(one.contains("same-layout"), bugs != Bugs::NONE, "{one}");
            for jobs in [2, 3] {
                let make = || Ok(model_and_impl(pages, bugs));
                let r = explore_jobs(config, jobs, &make, |_, _, _| {}).unwrap();
                assert_eq!(said(&r), one, "{config:?}, {jobs} jobs");
            }
        }
    }
}
