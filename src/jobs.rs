//! `check --jobs N`: the sequences of a run shared among N threads, each
//! with its own backends (for the kernel, its own worker process), with the
//! same results whatever N.
//!
//! The sequences are made in their one order by [`Sequences`] (cheap next
//! to running them), handed out in chunks under a lock, and each chunk's
//! stats are kept apart: at the end the chunks are added up in order, up
//! to the first failing sequence, the one of lowest index. A thread stops
//! at a sequence past a failure already seen; every sequence before the
//! first failure is run by some thread, so the failure reported, and the
//! stats, are those of the sequential run. That failure alone is shrunk,
//! once, on a set of backends of its own.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uffd_vocab::Backend;

use crate::check::{run_ops_counted, Failure, Stats};
use crate::interrupt::interrupted;
use crate::runner::{runner_seed, shrink, RunConfig, RunReport, Timed};
use crate::sequences::{Generated, Sequences};

/// Sequences a thread takes at a time.
const CHUNK: usize = 16;

/// The most jobs `--jobs` takes.
pub const MAX_JOBS: usize = 256;

/// What a backend of one job did: its name, steps, time, and its costs
/// (the kernel's split), summed over the jobs by [`run_jobs`].
#[derive(Clone, Debug)]
pub struct BackendTime {
    pub name: &'static str,
    pub ops: u64,
    pub time: Duration,
    /// Each job's [`Backend::costs`], in the order of the jobs.
    pub costs: Vec<String>,
}

impl<B: Backend> From<&Timed<B>> for BackendTime {
    fn from(t: &Timed<B>) -> BackendTime {
        BackendTime {
            name: t.inner.name(),
            ops: t.ops,
            time: t.time(),
            costs: t.inner.costs().into_iter().collect(),
        }
    }
}

/// The backends of one job: a fresh set each call (`Setup::make`).
pub type MakeBackends<'a> = dyn Fn() -> Result<Vec<Box<dyn Backend>>, String> + Sync + 'a;

/// One chunk's outcome.
struct Chunk {
    first: u64,
    stats: Stats,
    elapsed: Duration,
    failure: Option<(Generated, Failure)>,
}

/// The work shared by the jobs.
struct Shared {
    sequences: Mutex<(Sequences, u64)>,
    cases: u64,
    /// The lowest index of a failing sequence seen so far (u64::MAX: none).
    first_failure: AtomicU64,
    passed: AtomicU64,
}

impl Shared {
    /// The next chunk of sequences, in order; empty at the end.
    fn take(&self) -> Vec<Generated> {
        let mut guard = self.sequences.lock().unwrap_or_else(|e| e.into_inner());
        let (sequences, taken) = &mut *guard;
        let n = (self.cases - *taken).min(CHUNK as u64);
        if n == 0 || interrupted() || self.first_failure.load(Ordering::Relaxed) < *taken {
            return Vec::new();
        }
        *taken += n;
        sequences.take(n as usize).collect()
    }
}

/// One job: chunks until there is none left, on its own backends.
fn job(
    config: &RunConfig,
    shared: &Shared,
    make: &MakeBackends,
) -> Result<(Vec<Chunk>, Vec<BackendTime>), String> {
    let mut timed: Vec<Timed<Box<dyn Backend>>> = make()?.into_iter().map(Timed::new).collect();
    let mut backends: Vec<&mut dyn Backend> =
        timed.iter_mut().map(|b| b as &mut dyn Backend).collect();
    let mut chunks = Vec::new();
    loop {
        let sequences = shared.take();
        let Some(first) = sequences.first().map(|g| g.index) else {
            break;
        };
        let mut chunk = Chunk {
            first,
            stats: Stats::default(),
            elapsed: Duration::ZERO,
            failure: None,
        };
        for g in sequences {
            if interrupted() || shared.first_failure.load(Ordering::Relaxed) < g.index {
                break;
            }
            let t = Instant::now();
            match run_ops_counted(&mut backends, config.pages, &g.ops, &mut chunk.stats) {
                Ok(()) => {
                    chunk.elapsed += t.elapsed();
                    shared.passed.fetch_add(1, Ordering::Relaxed);
                }
                Err(f) => {
                    shared.first_failure.fetch_min(g.index, Ordering::Relaxed);
                    chunk.failure = Some((g, f));
                    break;
                }
            }
        }
        chunks.push(chunk);
    }
    drop(backends);
    Ok((chunks, timed.iter().map(BackendTime::from).collect()))
}

/// Runs `config.cases` sequences on `jobs` threads (1 to [`MAX_JOBS`]),
/// each on the backends `make` returns; `progress` is called now and then
/// with how many sequences passed. The report is the one [`crate::runner::run`]
/// gives for the same config, whatever `jobs` (but for the times); with it,
/// each backend's steps and time summed over the jobs (the shrinking's not
/// counted).
pub fn run_jobs(
    config: &RunConfig,
    jobs: usize,
    make: &MakeBackends,
    mut progress: impl FnMut(u64),
) -> Result<(RunReport, Vec<BackendTime>), String> {
    let shared = Shared {
        sequences: Mutex::new((
            Sequences::new(runner_seed(config.seed), config.pages, config.ops),
            0,
        )),
        cases: u64::from(config.cases),
        first_failure: AtomicU64::new(u64::MAX),
        passed: AtomicU64::new(0),
    };
    let results = std::thread::scope(|scope| {
        // Each job holds a sender until it ends (panicking or not): the
        // channel disconnects the moment the last one does, and progress
        // is told every 20 ms until then.
        let (alive, ended) = mpsc::channel::<()>();
        let handles: Vec<_> = (0..jobs.clamp(1, MAX_JOBS))
            .map(|_| {
                let alive = alive.clone();
                let shared = &shared;
                scope.spawn(move || {
                    let _alive = alive;
                    job(config, shared, make)
                })
            })
            .collect();
        drop(alive);
        while let Err(RecvTimeoutError::Timeout) = ended.recv_timeout(Duration::from_millis(20)) {
            progress(shared.passed.load(Ordering::Relaxed));
        }
        progress(shared.passed.load(Ordering::Relaxed));
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect::<Result<Vec<_>, String>>()
    })?;
    let mut chunks = Vec::new();
    let mut times: Vec<BackendTime> = Vec::new();
    for (c, t) in results {
        chunks.extend(c);
        for t in t {
            match times.iter_mut().find(|s| s.name == t.name) {
                Some(s) => {
                    s.ops += t.ops;
                    s.time += t.time;
                    s.costs.extend(t.costs);
                }
                None => times.push(t),
            }
        }
    }
    chunks.sort_by_key(|c| c.first);
    let mut stats = Stats::default();
    let mut elapsed = Duration::ZERO;
    let mut failing = None;
    for c in chunks {
        stats.add(&c.stats);
        elapsed += c.elapsed;
        if let Some(f) = c.failure {
            failing = Some(f);
            break;
        }
    }
    let (failure, shrink_steps) = match failing {
        Some((g, f)) => {
            let mut boxes = make()?;
            let mut backends = crate::backends::as_refs(&mut boxes);
            let (f, steps) = shrink(config, &mut backends, &g, f);
            (Some(f), steps)
        }
        None => (None, 0),
    };
    let report = RunReport {
        interrupted: interrupted(),
        stats,
        elapsed,
        failure,
        shrink_steps,
    };
    Ok((report, times))
}

/// The model and the implementation with `bugs`, for the tests of jobs.
#[cfg(test)]
pub(crate) fn model_and_impl(
    pages: uffd_vocab::Page,
    bugs: uffd_impl::Bugs,
) -> Vec<Box<dyn Backend>> {
    vec![
        Box::new(uffd_model::PageModel::new(pages)),
        Box::new(uffd_impl::IntervalImpl::with_bugs(pages, bugs)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use uffd_impl::{Bugs, Switch};

    /// What a report says, but for the times.
    fn said(r: &RunReport) -> String {
        let failure = r.failure.as_ref().map(|f| f.to_string());
        format!("{:?}\n{failure:?}\n{}", r.stats, r.shrink_steps)
    }

    /// The same stats, failure and shrinking whatever the jobs, and the
    /// same as the sequential run's.
    #[test]
    fn the_same_results_whatever_the_jobs() {
        for (seed, cases, bugs) in [
            (1, 600, Bugs::NONE),
            (35, 2_000, Bugs::of(&[Switch::UnadjustedPgoff])),
            (2023, 2_000, Bugs::of(&[Switch::StalePrev])),
        ] {
            let config = RunConfig {
                seed,
                cases,
                ops: 40,
                pages: 16,
            };
            let mut boxes = model_and_impl(config.pages, bugs);
            let mut backends = crate::backends::as_refs(&mut boxes);
            let report = crate::runner::run(&config, &mut backends, |_| {});
            assert_eq!(report.failure.is_some(), bugs != Bugs::NONE, "seed {seed}");
            let sequential = said(&report);
            for jobs in [1, 2, 3, 8] {
                let make = || Ok(model_and_impl(config.pages, bugs));
                let (report, times) = run_jobs(&config, jobs, &make, |_| {}).unwrap();
                assert_eq!(said(&report), sequential, "seed {seed}, {jobs} jobs");
                assert_eq!(times.len(), 2);
            }
        }
    }
}
