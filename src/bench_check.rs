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
    let (check, _, _) = check_row(&config, "model,impl", 1)?;
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

/// The CPU time this process and its reaped children (the kernel's
/// workers, reaped when their backend is dropped) have used.
fn cpu_time() -> Duration {
    let used = |who| {
        // SAFETY: getrusage only writes the struct it is given.
        let mut r: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(who, &mut r) } != 0 {
            return Duration::ZERO;
        }
        let t = |tv: libc::timeval| {
            Duration::from_secs(tv.tv_sec as u64) + Duration::from_micros(tv.tv_usec as u64)
        };
        t(r.ru_utime) + t(r.ru_stime)
    };
    used(libc::RUSAGE_SELF) + used(libc::RUSAGE_CHILDREN)
}

/// One `check` run of `config` on `backends` with `jobs` jobs: its wall
/// time, the CPU time it used, and its ops.
fn check_row(
    config: &RunConfig,
    backends: &str,
    jobs: usize,
) -> Result<(Duration, Duration, u64), String> {
    let kernel = backends.contains("kernel");
    let list = backends.parse()?;
    let setup = Setup::new(kernel, Some(list), Vec::new(), false, Vec::new()).with_profile();
    let make = || setup.make(config.pages);
    let (t, cpu) = (Instant::now(), cpu_time());
    let (report, _) = run_jobs(config, jobs, &make, |_| {})?;
    let (wall, cpu) = (t.elapsed(), cpu_time().saturating_sub(cpu));
    if let Some(f) = report.failure {
        return Err(format!("check failed on {backends}: {f}"));
    }
    Ok((wall, cpu, report.stats.steps))
}

/// `check` with one job and with `--jobs` at its default (the cores), on
/// model and impl, and on the live kernel when it can run here: the best
/// of two runs of each, one job and all the jobs in turn (the first run
/// starts the kernel's workers cold), and the CPU time each took, whose
/// ratio, unlike the speedup, other work on the machine does not change.
pub fn jobs_table() -> Result<String, String> {
    let cores = cores();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "check on 1 job and on {cores} (the cores), best of 2 runs each, in turn\n\
         (the machine's load shows in the speedup; load average before: {}):\n  \
         backends           seqs  ops/s 1 job  ops/s {cores} jobs  speedup  CPU s 1, {cores} jobs",
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
        let (mut one, mut all) = (
            (Duration::MAX, Duration::MAX),
            (Duration::MAX, Duration::MAX),
        );
        let mut ops = 0;
        for _ in 0..2 {
            let (t, cpu, n) = check_row(&config, backends, 1)?;
            one = (one.0.min(t), one.1.min(cpu));
            ops = n;
            let (t, cpu, _) = check_row(&config, backends, cores)?;
            all = (all.0.min(t), all.1.min(cpu));
        }
        let _ = writeln!(
            out,
            "  {backends:<18} {:>5} {:>12.0} {:>13.0} {:>7.2}x  {:.2}, {:.2}",
            config.cases,
            per_sec(ops, one.0),
            per_sec(ops, all.0),
            one.0.as_secs_f64() / all.0.as_secs_f64().max(1e-9),
            one.1.as_secs_f64(),
            all.1.as_secs_f64()
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

/// `explore` of 4 pages to depth 3 on model and impl, on one job and on
/// the cores: states, states/s, transitions/s and bytes a state.
pub fn explore_table() -> Result<String, String> {
    let config = ExploreConfig {
        pages: 4,
        depth: 3,
        max_states: 2_000_000,
    };
    let setup = Setup::new(false, None, Vec::new(), false, Vec::new());
    let mut boxes = setup.make(config.pages)?;
    let t = Instant::now();
    let r = explore(
        config,
        &mut crate::backends::as_refs(&mut boxes),
        |_, _, _| {},
    );
    let one = t.elapsed();
    let cores = cores();
    let make = || setup.make(config.pages);
    let t = Instant::now();
    let all = crate::explore_jobs::explore_jobs(config, cores, &make, |_, _, _| {})?;
    let took = t.elapsed();
    if all.states() != r.states() || all.transitions != r.transitions {
        return Err(format!(
            "explore on {cores} jobs did not find what it found on one"
        ));
    }
    Ok(format!(
        "explore {} pages to depth {} on model,impl: {} states, {} bytes a state;\n  \
         1 job {:.2} s ({:.0} states/s, {:.0} transitions/s),\n  \
         {cores} jobs {:.2} s ({:.2}x)\n",
        config.pages,
        config.depth,
        r.states(),
        r.bytes_per_state(),
        one.as_secs_f64(),
        per_sec(r.states(), one),
        per_sec(r.transitions, one),
        took.as_secs_f64(),
        one.as_secs_f64() / took.as_secs_f64().max(1e-9)
    ))
}

/// `bench --long`'s explore row: 6 pages to depth 4 on model and impl on
/// the cores (issue 20's goal: under 10 minutes and 2 GB), with states/s,
/// transitions/s, the bytes a state and the process's peak memory.
pub fn explore_long_table() -> Result<String, String> {
    let config = ExploreConfig {
        pages: 6,
        depth: 4,
        max_states: crate::explore::MAX_EXPLORE_STATES,
    };
    let setup = Setup::new(false, None, Vec::new(), false, Vec::new());
    let make = || setup.make(config.pages);
    let cores = cores();
    let t = Instant::now();
    let r = crate::explore_jobs::explore_jobs(config, cores, &make, |_, _, _| {})?;
    let took = t.elapsed();
    let stopped = if r.states() >= config.max_states {
        " (stopped at --max-states)"
    } else {
        ""
    };
    Ok(format!(
        "explore {} pages to depth {} on model,impl, {cores} jobs: {} states{stopped}\n  \
         (by depth {:?}), {} transitions in {:.0} s\n  \
         ({:.0} states/s, {:.0} transitions/s), {} bytes a state, {} MB at most\n",
        config.pages,
        config.depth,
        r.states(),
        r.states_by_depth,
        r.transitions,
        took.as_secs_f64(),
        per_sec(r.states(), took),
        per_sec(r.transitions, took),
        r.bytes_per_state(),
        peak_mb().map_or("?".to_string(), |m| m.to_string()),
    ))
}

/// The process's peak resident memory so far (VmHWM), in MB.
fn peak_mb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}
