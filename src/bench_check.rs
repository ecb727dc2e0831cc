//! `bench`'s rows for the checker as a whole (issue 20's figures), each
//! measured side by side in one run, so that a regression shows as a
//! ratio: generating `check`'s sequences (proptest's value trees against
//! [`crate::sequences`]), `check` on model and impl and on the live kernel
//! with one job and with one a core, and `explore` (states/s, bytes a
//! state).

use std::fmt::Write;
use std::time::{Duration, Instant};

use crate::explore::{explore, ExploreConfig};
use crate::jobs::run_jobs;
use crate::runner::{runner_seed, seeded_runner, RunConfig};
use crate::sequences::Sequences;
use crate::setup::Setup;

fn per_sec(n: u64, t: Duration) -> f64 {
    n as f64 / t.as_secs_f64().max(1e-9)
}

/// The cores, as `--jobs` counts them by default.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `check`'s default run (seed 1, 10,000 sequences of up to 40 ops on 16
/// pages).
fn default_check() -> RunConfig {
    RunConfig {
        seed: 1,
        cases: 10_000,
        ops: 40,
        pages: 16,
    }
}

/// Generating `check`'s sequences: through proptest's value trees (as its
/// runner does) and straight from the RNG, the same sequences; and the
/// share of a default `check` run that generating them takes now.
pub fn generation_table() -> Result<String, String> {
    let config = default_check();
    let t = Instant::now();
    let strategy = crate::gen::ops(config.pages, config.ops);
    let counted = std::cell::Cell::new(0u64);
    seeded_runner(config.seed, config.cases)
        .run(&strategy, |ops| {
            counted.set(counted.get() + ops.len() as u64);
            Ok(())
        })
        .map_err(|e| format!("proptest's runner: {e}"))?;
    let proptest_ops = counted.get();
    let by_proptest = t.elapsed();
    let t = Instant::now();
    let fast_ops: u64 = Sequences::new(runner_seed(config.seed), config.pages, config.ops)
        .take(config.cases as usize)
        .map(|g| g.ops.len() as u64)
        .sum();
    let fast = t.elapsed();
    if fast_ops != proptest_ops {
        return Err(format!(
            "the fast generator made {fast_ops} ops, proptest {proptest_ops}: not the same sequences"
        ));
    }
    let (check, _) = check_row(&config, "model,impl", 1)?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "generating check's sequences ({} of up to {} ops on {} pages, seed {}):\n  \
         proptest's value trees {:>9.0} ops/s\n  \
         straight from the RNG  {:>9.0} ops/s ({:.1}x)\n  \
         share of a default check run (1 job): {:.0}%",
        config.cases,
        config.ops,
        config.pages,
        config.seed,
        per_sec(proptest_ops, by_proptest),
        per_sec(fast_ops, fast),
        by_proptest.as_secs_f64() / fast.as_secs_f64().max(1e-9),
        100.0 * fast.as_secs_f64() / check.as_secs_f64().max(1e-9),
    );
    Ok(out)
}

/// One `check` run of `config` on `backends` with `jobs` jobs: its wall
/// time and ops.
fn check_row(config: &RunConfig, backends: &str, jobs: usize) -> Result<(Duration, u64), String> {
    let kernel = backends.contains("kernel");
    let list = backends.parse()?;
    let setup = Setup::new(kernel, Some(list), Vec::new(), false, Vec::new()).with_profile();
    let make = || setup.make(config.pages);
    let t = Instant::now();
    let (report, _) = run_jobs(config, jobs, &make, |_| {})?;
    let wall = t.elapsed();
    if let Some(f) = report.failure {
        return Err(format!("check failed on {backends}: {f}"));
    }
    Ok((wall, report.stats.steps))
}

/// `check` with one job and with `--jobs` at its default (the cores), on
/// model and impl, and on the live kernel when it can run here: the best
/// of two runs of each, one job and all the jobs in turn (the first run
/// starts the kernel's workers cold).
pub fn jobs_table() -> Result<String, String> {
    let cores = cores();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "check on 1 job and on {cores} (the cores), best of 2 runs each, in turn\n\
         (the machine's load shows in the speedup; load average before: {}):\n  \
         backends           sequences  1 job ops/s  {cores} jobs ops/s  speedup",
        load_average()
    );
    let mut rows = vec![("model,impl", default_check())];
    match uffd_kernel::available() {
        Ok(()) => rows.push((
            "model,impl,kernel",
            RunConfig {
                cases: 1_000,
                ..default_check()
            },
        )),
        Err(why) => {
            let _ = writeln!(out, "  (no kernel row: {why})");
        }
    }
    for (backends, config) in rows {
        let (mut one, mut all) = (Duration::MAX, Duration::MAX);
        let mut ops = 0;
        for _ in 0..2 {
            let (t, n) = check_row(&config, backends, 1)?;
            one = one.min(t);
            ops = n;
            all = all.min(check_row(&config, backends, cores)?.0);
        }
        let _ = writeln!(
            out,
            "  {backends:<18} {:>9} {:>12.0} {:>13.0} {:>7.2}x",
            config.cases,
            per_sec(ops, one),
            per_sec(ops, all),
            one.as_secs_f64() / all.as_secs_f64().max(1e-9)
        );
    }
    Ok(out)
}

/// The first figure of /proc/loadavg (runnable tasks over the last
/// minute), or `?`.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split(' ').next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// `explore` of 4 pages to depth 3 on model and impl: states, states/s,
/// transitions/s and bytes a state.
pub fn explore_table() -> Result<String, String> {
    let config = ExploreConfig {
        pages: 4,
        depth: 3,
        max_states: 2_000_000,
    };
    let setup = Setup::new(false, None, Vec::new(), false, Vec::new());
    let mut boxes = setup.make(config.pages)?;
    let mut backends = crate::backends::as_refs(&mut boxes);
    let t = Instant::now();
    let r = explore(config, &mut backends, |_, _, _| {});
    let took = t.elapsed();
    Ok(format!(
        "explore {} pages to depth {} on model,impl: {} states in {:.2} s,\n  \
         {:.0} states/s, {:.0} transitions/s, {} bytes a state\n",
        config.pages,
        config.depth,
        r.states(),
        took.as_secs_f64(),
        per_sec(r.states(), took),
        per_sec(r.transitions, took),
        r.bytes_per_state()
    ))
}
