//! `uffd-check`: the command line. `check` runs random differential
//! sequences, `replay` runs a trace file, `bench` measures the backends.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use uffd_check::check::{run_trace_with, Stats};
use uffd_check::kernel::KernelBackend;
use uffd_check::runner::{self, RunConfig, Timed};
use uffd_check::trace::Trace;
use uffd_impl::IntervalImpl;
use uffd_model::{result_name, Backend, Page, PageModel};

#[derive(Parser)]
#[command(
    name = "uffd-check",
    version,
    about = "Model-check Linux VMA layouts under userfaultfd register/unregister"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run random op sequences on the model and the implementation (and the
    /// live kernel with --kernel), checking every invariant after every step.
    Check {
        /// Seed of the sequences (default: from the clock; printed).
        #[arg(long)]
        seed: Option<u64>,
        /// How many sequences to run.
        #[arg(long, default_value_t = 10_000)]
        cases: u32,
        /// The longest sequence, in ops.
        #[arg(long, default_value_t = 40)]
        ops: usize,
        /// The arena size, in pages.
        #[arg(long, default_value_t = 16)]
        pages: Page,
        /// Run the live kernel as the third backend.
        #[arg(long)]
        kernel: bool,
        /// Where a shrunk failing case is written.
        #[arg(long, default_value = "failures")]
        out: PathBuf,
        /// Put one of the May 2023 bugs back into the implementation, to see
        /// the harness catch it.
        #[arg(long, value_enum)]
        inject_bug: Vec<Bug>,
    },
    /// Run a trace file, print each step's result and layout, and check
    /// every invariant and `expect` line.
    Replay {
        file: PathBuf,
        /// The backends to run, the first one printed
        /// (default: model and impl).
        #[arg(long, value_delimiter = ',')]
        backend: Vec<Which>,
        /// One JSON object per step instead of drawings.
        #[arg(long)]
        json: bool,
        /// Put one of the May 2023 bugs back into the implementation.
        #[arg(long, value_enum)]
        inject_bug: Vec<Bug>,
    },
    /// Check every sequence of up to --depth ops of a small alphabet on a
    /// tiny arena, breadth first, model against implementation.
    Explore {
        /// The arena size, in pages.
        #[arg(long, default_value_t = 4)]
        pages: Page,
        /// The longest sequence, in ops.
        #[arg(long, default_value_t = 3)]
        depth: usize,
        /// Also replay every transition on the live kernel (slow: depth 2
        /// takes seconds, depth 3 minutes).
        #[arg(long)]
        kernel: bool,
        /// Put one of the May 2023 bugs back into the implementation.
        #[arg(long, value_enum)]
        inject_bug: Vec<Bug>,
    },
    /// Measure ops/s of the model and the implementation alone, side by side,
    /// at growing VMA counts.
    Bench {
        /// VMA counts of the scaling table.
        #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000")]
        vmas: Vec<u64>,
        /// Ops timed per row.
        #[arg(long, default_value_t = 200_000)]
        ops: u64,
    },
    #[command(name = "__worker", hide = true)]
    Worker,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
enum Bug {
    /// userfaultfd_{,un}register hands vma_merge the VMA before a range that
    /// starts inside a VMA (6.1 to 6.4-rc).
    StalePrev,
    /// userfaultfd_{,un}register hands vma_merge the whole VMA's pgoff, not
    /// the piece's (4.3 to 6.4-rc).
    UnadjustedPgoff,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
enum Which {
    Model,
    Impl,
    Kernel,
}

fn bugs_of(bugs: &[Bug]) -> uffd_impl::Bugs {
    uffd_impl::Bugs {
        stale_prev: bugs.contains(&Bug::StalePrev),
        unadjusted_pgoff: bugs.contains(&Bug::UnadjustedPgoff),
    }
}

fn make(which: Which, pages: Page, bugs: uffd_impl::Bugs) -> Result<Box<dyn Backend>, String> {
    Ok(match which {
        Which::Model => Box::new(PageModel::new(pages)),
        Which::Impl => Box::new(IntervalImpl::with_bugs(pages, bugs)),
        Which::Kernel => {
            uffd_check::kernel::available()?;
            let exe = std::env::current_exe().map_err(|e| format!("cannot find myself: {e}"))?;
            Box::new(KernelBackend::spawn(pages, &exe)?)
        }
    })
}

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("__worker") {
        uffd_check::kernel::worker_main();
    }
    // Die quietly on a closed pipe (`uffd-check explore | head`), like any
    // command-line tool, instead of panicking in println!.
    // SAFETY: setting a signal's disposition to the default is always sound.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check {
            seed,
            cases,
            ops,
            pages,
            kernel,
            out,
            inject_bug,
        } => check(seed, cases, ops, pages, kernel, bugs_of(&inject_bug), &out),
        Command::Replay {
            file,
            backend,
            json,
            inject_bug,
        } => replay(&file, &backend, json, bugs_of(&inject_bug)),
        Command::Bench { vmas, ops } => bench(&vmas, ops),
        Command::Explore {
            pages,
            depth,
            kernel,
            inject_bug,
        } => explore(pages, depth, kernel, bugs_of(&inject_bug)),
        Command::Worker => unreachable!("handled above"),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("uffd-check: {e}");
            ExitCode::from(2)
        }
    }
}

fn check(
    seed: Option<u64>,
    cases: u32,
    ops: usize,
    pages: Page,
    kernel: bool,
    bugs: uffd_impl::Bugs,
    out: &Path,
) -> Result<ExitCode, String> {
    if pages == 0 || pages > 1 << 20 {
        return Err(format!(
            "--pages {pages}: the arena must be 1 to {} pages",
            1 << 20
        ));
    }
    if ops == 0 {
        return Err("--ops 0: a sequence needs at least one op".into());
    }
    let seed = seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
    });
    let config = RunConfig {
        seed,
        cases,
        ops,
        pages,
    };
    let command = format!(
        "uffd-check check --seed {seed} --cases {cases} --ops {ops} --pages {pages}{}{}{}",
        if kernel { " --kernel" } else { "" },
        if bugs.stale_prev {
            " --inject-bug stale-prev"
        } else {
            ""
        },
        if bugs.unadjusted_pgoff {
            " --inject-bug unadjusted-pgoff"
        } else {
            ""
        },
    );
    println!("{command}");
    let mut model = Timed::new(PageModel::new(pages));
    let mut imp = Timed::new(IntervalImpl::with_bugs(pages, bugs));
    let mut kern = if kernel {
        uffd_check::kernel::available()?;
        let exe = std::env::current_exe().map_err(|e| format!("cannot find myself: {e}"))?;
        Some(Timed::new(KernelBackend::spawn(pages, &exe)?))
    } else {
        None
    };
    let bar = indicatif::ProgressBar::new(cases as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} sequences, {per_sec}, eta {eta} {msg}",
        )
        .expect("the progress template is valid"),
    );
    let start = Instant::now();
    let report = {
        let mut backends: Vec<&mut dyn Backend> = vec![&mut model, &mut imp];
        if let Some(k) = kern.as_mut() {
            backends.push(k);
        }
        runner::run(&config, &mut backends, |s| {
            bar.set_position(s.sequences);
        })
    };
    bar.finish_and_clear();
    let wall = start.elapsed();
    print_stats(&report.stats);
    let secs = wall.as_secs_f64().max(1e-9);
    println!(
        "\nthroughput: {} sequences, {} ops in {:.2} s: {:.0} sequences/s, {:.0} ops/s \
         (generating, running and checking; {:.2} s of it running the backends and invariants)",
        report.stats.sequences,
        report.stats.steps,
        secs,
        report.stats.sequences as f64 / secs,
        report.stats.steps as f64 / secs,
        report.elapsed.as_secs_f64()
    );
    println!("time per backend (ops and layout reads):");
    let row = |name: &str, ops: u64, t: Duration| {
        println!(
            "  {name:<7} {:>9.3} s  {:>12.0} ops/s",
            t.as_secs_f64(),
            ops as f64 / t.as_secs_f64().max(1e-9)
        );
    };
    row("model", model.ops, model.time);
    row("impl", imp.ops, imp.time);
    if let Some(k) = &kern {
        row("kernel", k.ops, k.time);
        let t = k.inner.timings();
        println!(
            "  kernel split: ops {:.3} s waiting for {} answers (the syscalls themselves {:.3} s in the worker), layouts {:.3} s waiting for {} (the worker reading smaps {:.3} s, parsing {:.3} s), {} worker(s) started",
            t.op_time.as_secs_f64(),
            t.ops,
            t.syscalls.as_secs_f64(),
            t.layout_time.as_secs_f64(),
            t.layouts,
            t.smaps_read.as_secs_f64(),
            t.smaps_parse.as_secs_f64(),
            t.spawns
        );
    }
    let Some(f) = report.failure else {
        println!("\nno failures");
        return Ok(ExitCode::SUCCESS);
    };
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let path = out.join(format!("seed-{seed}.trace"));
    let mut text = format!(
        "# found by: {command}\n# invariant `{}` failed at step {}\n",
        f.invariant,
        f.step + 1
    );
    text.push_str(&f.trace.to_text());
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    println!(
        "\nFAILED after shrinking ({} shrink steps) to {} ops:\n\n{f}",
        report.shrink_steps,
        f.trace.steps.len()
    );
    let mut flags = String::new();
    if kernel {
        flags.push_str(" --backend model,impl,kernel");
    }
    if bugs.stale_prev {
        flags.push_str(" --inject-bug stale-prev");
    }
    if bugs.unadjusted_pgoff {
        flags.push_str(" --inject-bug unadjusted-pgoff");
    }
    println!(
        "written to {p}\nreplay it: cargo run --release -- replay {p}{flags}\nkeep it:   cp {p} cases/NAME.trace   (then it replays in `cargo test`)",
        p = path.display(),
    );
    Ok(ExitCode::FAILURE)
}

fn print_stats(s: &Stats) {
    println!("\nops:");
    for name in uffd_model::Op::NAMES {
        println!("  {name:<11} {:>10}", s.ops.get(name).copied().unwrap_or(0));
    }
    println!("results:");
    for (name, n) in &s.results {
        println!("  {name:<11} {n:>10}");
    }
    println!("merge cases (implementation; the table is uffd_impl::MERGE_CASES):");
    for row in uffd_impl::MERGE_CASES {
        let n = s.merges[row.case as usize];
        println!(
            "  case {}  {:<24} {:<36} {n:>8}",
            row.case,
            format!("{:?}", row.shape),
            row.after
        );
    }
}

fn replay(
    file: &Path,
    which: &[Which],
    json: bool,
    bugs: uffd_impl::Bugs,
) -> Result<ExitCode, String> {
    let trace = Trace::load(file).map_err(|e| e.to_string())?;
    let which = if which.is_empty() {
        vec![Which::Model, Which::Impl]
    } else {
        which.to_vec()
    };
    let mut boxes = which
        .iter()
        .map(|w| make(*w, trace.pages, bugs))
        .collect::<Result<Vec<_>, _>>()?;
    let mut backends = runner::as_refs(&mut boxes);
    let names: Vec<&str> = backends.iter().map(|b| b.name()).collect();
    if !json {
        println!(
            "replaying {} on {} ({} pages)",
            file.display(),
            names.join(", "),
            trace.pages
        );
    }
    let result = run_trace_with(&mut backends, &trace, |v| {
        let o = &v.outcomes[0];
        if json {
            println!("{}", step_json(v.index + 1, v.op, o));
        } else {
            println!(
                "\nstep {}: {}  -> {}",
                v.index + 1,
                v.op,
                result_name(&o.result)
            );
            print!("{}", uffd_check::draw::draw(&o.layout, v.pages, "  "));
            for b in v.outcomes.iter().filter(|b| !b.report.merges.is_empty()) {
                let shapes: Vec<String> = b
                    .report
                    .merges
                    .iter()
                    .map(|&c| match uffd_impl::Shape::of_case(c) {
                        Some(shape) => format!("case {c} ({shape:?})"),
                        None => format!("case {c}"),
                    })
                    .collect();
                println!("  {} took {}", b.backend, shapes.join(", "));
            }
        }
    });
    match result {
        Ok(_) => {
            if !json {
                println!(
                    "\nok: {} steps, every invariant held on {}",
                    trace.steps.len(),
                    names.join(", ")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(f) => {
            eprintln!("\n{f}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn step_json(step: usize, op: &uffd_model::Op, o: &uffd_check::check::Outcome) -> String {
    use serde_json::json;
    let layout: Vec<_> = o
        .layout
        .vmas()
        .iter()
        .map(|v| {
            json!({
                "start": v.start,
                "end": v.end,
                "prot": v.prot.to_string(),
                "kind": v.backing.kind_name(),
                "object": v.backing.object(),
                "pgoff": v.pgoff,
                "flags": v.flags.names(),
                "uffd": v.uffd.names(),
                "ctx": v.ctx,
            })
        })
        .collect();
    json!({
        "step": step,
        "op": op.to_string(),
        "result": result_name(&o.result),
        "layout": layout,
    })
    .to_string()
}

fn explore(
    pages: Page,
    depth: usize,
    kernel: bool,
    bugs: uffd_impl::Bugs,
) -> Result<ExitCode, String> {
    if !(1..=8).contains(&pages) {
        return Err(format!("--pages {pages}: explore takes 1 to 8 pages"));
    }
    let mut kern = if kernel {
        Some(make(Which::Kernel, pages, bugs)?)
    } else {
        None
    };
    let t = Instant::now();
    let kern = kern.as_mut().map(|b| &mut **b as &mut dyn Backend);
    let r = uffd_check::explore::explore(pages, depth, bugs, kern);
    let secs = t.elapsed().as_secs_f64();
    println!(
        "explored {pages} pages to depth {depth}: alphabet of {} ops, {} unique states \
         (by depth {:?}), {} transitions in {secs:.2} s ({:.0}/s)",
        r.alphabet,
        r.states(),
        r.states_by_depth,
        r.transitions,
        r.transitions as f64 / secs.max(1e-9)
    );
    print_stats(&r.stats);
    match r.failure {
        None => {
            println!("\nno failures");
            Ok(ExitCode::SUCCESS)
        }
        Some(f) => {
            println!("\nFAILED (a shortest failing sequence):\n\n{f}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn bench(vmas: &[u64], ops: u64) -> Result<ExitCode, String> {
    if ops == 0 {
        return Err("--ops 0: the scaling table needs at least one op per row".into());
    }
    println!("{}", uffd_check::bench::random_sequences_table());
    println!("{}", uffd_check::bench::scaling_table(vmas, ops)?);
    Ok(ExitCode::SUCCESS)
}
