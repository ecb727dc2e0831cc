//! `uffd-check`: the command line. `check` runs random differential
//! sequences, `replay` runs a trace file, `explore` checks every short
//! sequence, `bench` measures the backends. The work is in the library;
//! this file parses arguments and prints.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use uffd_check::backends::{as_refs, make_all, BackendList, Which};
use uffd_check::check::{run_trace_with, Failure, Stats};
use uffd_check::explore::ExploreConfig;
use uffd_check::runner::{self, RunConfig, Timed};
use uffd_check::trace::Trace;
use uffd_vocab::{result_name, Backend, Page};

/// The largest arena `check` and `explore` take (pages), and the longest
/// sequence `check` makes (ops): past these, memory grows past what a
/// run should take.
const MAX_CHECK_PAGES: Page = uffd_vocab::MAX_PAGES;
const MAX_CHECK_OPS: usize = 10_000;
const MAX_EXPLORE_PAGES: Page = 8;
const MAX_EXPLORE_DEPTH: usize = 8;
const MAX_EXPLORE_STATES: u64 = 20_000_000;

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
        /// The longest sequence, in ops (1 to 10,000).
        #[arg(long, default_value_t = 40)]
        ops: usize,
        /// The arena size, in pages (1 to 1,048,576).
        #[arg(long, default_value_t = 16)]
        pages: Page,
        /// Run the live kernel as the third backend (= --backends model,impl,kernel).
        #[arg(long)]
        kernel: bool,
        /// The backends, the first the reference (default model,impl).
        #[arg(long)]
        backends: Option<BackendList>,
        /// Where a shrunk failing case is written.
        #[arg(long, default_value = "failures")]
        out: PathBuf,
        /// Turn the model's deviation rules off: the model states the
        /// contract alone, and the kernel's known deviations from it are
        /// findings.
        #[arg(long)]
        strict: bool,
        /// Turn off only this deviation rule (may be given more than once).
        #[arg(long, value_parser = deviation_names())]
        strict_rule: Vec<String>,
        /// Put a historic kernel bug back into the implementation, to see the
        /// harness catch it (may be given more than once).
        #[arg(long, value_parser = bug_names())]
        inject_bug: Vec<String>,
    },
    /// Run a trace file, print each step's result and layout, and check
    /// every invariant and `expect` line.
    Replay {
        file: PathBuf,
        /// The backends to run, the first one printed (default model,impl).
        #[arg(long, alias = "backends")]
        backend: Option<BackendList>,
        /// One JSON object per step instead of drawings.
        #[arg(long)]
        json: bool,
        /// Turn the model's deviation rules off: the model states the
        /// contract alone, and the kernel's known deviations from it are
        /// findings.
        #[arg(long)]
        strict: bool,
        /// Turn off only this deviation rule (may be given more than once).
        #[arg(long, value_parser = deviation_names())]
        strict_rule: Vec<String>,
        /// Put a historic kernel bug back into the implementation.
        #[arg(long, value_parser = bug_names())]
        inject_bug: Vec<String>,
    },
    /// Check every sequence of up to --depth ops of a small alphabet on a
    /// tiny arena, breadth first.
    Explore {
        /// The arena size, in pages (1 to 8).
        #[arg(long, default_value_t = 4)]
        pages: Page,
        /// The longest sequence, in ops (up to 8).
        #[arg(long, default_value_t = 3)]
        depth: usize,
        /// Also replay every transition on the live kernel (= --backends
        /// model,impl,kernel; slow: depth 2 takes seconds, depth 3 minutes).
        #[arg(long)]
        kernel: bool,
        /// The backends, the first the reference (default model,impl).
        #[arg(long)]
        backends: Option<BackendList>,
        /// Stop after this many unique states (1 to 20,000,000; about 60
        /// bytes each).
        #[arg(long, default_value_t = 2_000_000)]
        max_states: u64,
        /// Where a failing case is written.
        #[arg(long, default_value = "failures")]
        out: PathBuf,
        /// Turn the model's deviation rules off: the model states the
        /// contract alone, and the kernel's known deviations from it are
        /// findings.
        #[arg(long)]
        strict: bool,
        /// Turn off only this deviation rule (may be given more than once).
        #[arg(long, value_parser = deviation_names())]
        strict_rule: Vec<String>,
        /// Put a historic kernel bug back into the implementation.
        #[arg(long, value_parser = bug_names())]
        inject_bug: Vec<String>,
    },
    /// Turn a trace into one standalone C program (kselftest-shaped, TAP
    /// output) that replays it on the live kernel and checks each step
    /// against what the model expects.
    Repro {
        /// The trace (`-` reads standard input).
        file: PathBuf,
        /// Where to write the program (default: standard output).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Measure ops/s of the model and the implementation alone, side by side,
    /// at growing VMA counts.
    Bench {
        /// VMA counts of the scaling table (2 to 1,048,576 each).
        #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000")]
        vmas: Vec<u64>,
        /// Ops timed per row (1 to 1,000,000).
        #[arg(long, default_value_t = 200_000)]
        ops: u64,
    },
    #[command(name = "__worker", hide = true)]
    Worker,
}

/// `--inject-bug NAME`: the names of [`uffd_impl::HISTORIC_BUGS`], each
/// with its history as help.
fn bug_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(
        uffd_impl::HISTORIC_BUGS
            .iter()
            .map(|h| clap::builder::PossibleValue::new(h.name).help(h.history)),
    )
}

/// `--strict-rule NAME`: the names of [`uffd_model::Deviation`], each with
/// what the kernel does instead of the contract as help.
fn deviation_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(
        uffd_model::Deviation::ALL
            .iter()
            .map(|d| clap::builder::PossibleValue::new(d.name()).help(d.kernel())),
    )
}

/// What a run ran on: the backends and the bugs put back. Prints the flags
/// that reproduce it, in the one place that does.
struct Setup {
    backends: BackendList,
    bugs: Vec<String>,
    /// The model's deviation rules turned off.
    rules_off: Vec<uffd_model::Deviation>,
}

impl Setup {
    fn new(
        kernel: bool,
        backends: Option<BackendList>,
        bugs: Vec<String>,
        strict: bool,
        strict_rule: Vec<String>,
    ) -> Setup {
        let rules_off = uffd_model::Deviation::ALL
            .into_iter()
            .filter(|d| strict || strict_rule.iter().any(|n| n == d.name()))
            .collect();
        let backends = backends.unwrap_or_else(|| {
            let mut v = vec![Which::Model, Which::Impl];
            if kernel {
                v.push(Which::Kernel);
            }
            BackendList(v)
        });
        Setup {
            backends,
            bugs,
            rules_off,
        }
    }
    fn impl_bugs(&self) -> uffd_impl::Bugs {
        let names: Vec<&str> = self.bugs.iter().map(String::as_str).collect();
        uffd_impl::Bugs::named(&names).expect("clap checked the names")
    }
    /// ` --backends … --inject-bug …`, as `flag` names the backend list.
    fn flags(&self, flag: &str) -> String {
        let mut s = format!(" {flag} {}", self.backends);
        for b in &self.bugs {
            s.push_str(&format!(" --inject-bug {b}"));
        }
        s + &self.strict_flags()
    }
    /// ` --strict`, or ` --strict-rule NAME` for each rule off, or nothing.
    fn strict_flags(&self) -> String {
        if self.rules_off.len() == uffd_model::Deviation::ALL.len() {
            " --strict".to_string()
        } else {
            self.rules_off
                .iter()
                .map(|d| format!(" --strict-rule {}", d.name()))
                .collect()
        }
    }
    fn make(&self, pages: Page) -> Result<Vec<Box<dyn Backend>>, String> {
        make_all(&self.backends, pages, self.impl_bugs(), &self.rules_off)
    }
    /// `live kernel: Linux 6.18.44`, when the kernel is one of the backends.
    fn kernel_note(&self) -> Option<String> {
        self.backends
            .contains(Which::Kernel)
            .then(|| format!("live kernel: Linux {}", uffd_kernel::release()))
    }
    /// The command that turns a written trace into a C reproducer.
    fn repro_command(path: &Path) -> String {
        let c = path.with_extension("c");
        format!(
            "uffd-check repro {} -o {}   (then: cc -O2 -Wall -o repro {} && ./repro)",
            path.display(),
            c.display(),
            c.display()
        )
    }
    /// The command that replays a written trace.
    fn replay_command(&self, path: &Path) -> String {
        format!(
            "uffd-check replay {}{}",
            path.display(),
            self.flags("--backend")
        )
    }
}

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("__worker") {
        uffd_kernel::worker_main();
    }
    // Die quietly on a closed pipe (`uffd-check explore | head`), like any
    // command-line tool, instead of panicking in println!.
    // SAFETY: setting a signal's disposition to the default is always sound.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Ctrl-C stops a run and prints what it has (a second one kills).
    // SAFETY: the handler only stores to an atomic and resets the
    // disposition, both async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t);
    }
    // A closed or full standard output (`> /dev/full`) ends the program
    // with a message, not a panic; a finding goes to its file regardless
    // (see report_failure).
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to stdout") {
            eprintln!("uffd-check: cannot write to standard output: {msg}");
            std::process::exit(2);
        }
        default_hook(info)
    }));
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check {
            seed,
            cases,
            ops,
            pages,
            kernel,
            backends,
            out,
            strict,
            strict_rule,
            inject_bug,
        } => {
            let setup = Setup::new(kernel, backends, inject_bug, strict, strict_rule);
            check(seed, cases, ops, pages, &setup, &out)
        }
        Command::Replay {
            file,
            backend,
            json,
            strict,
            strict_rule,
            inject_bug,
        } => replay(
            &file,
            &Setup::new(false, backend, inject_bug, strict, strict_rule),
            json,
        ),
        Command::Bench { vmas, ops } => bench(&vmas, ops),
        Command::Repro { file, output } => repro(&file, output.as_deref()),
        Command::Explore {
            pages,
            depth,
            kernel,
            backends,
            max_states,
            out,
            strict,
            strict_rule,
            inject_bug,
        } => {
            let setup = Setup::new(kernel, backends, inject_bug, strict, strict_rule);
            explore(pages, depth, max_states, &setup, &out)
        }
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

extern "C" fn on_sigint(_: libc::c_int) {
    runner::INTERRUPTED.store(true, std::sync::atomic::Ordering::Relaxed);
    // SAFETY: signal(2) is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_DFL);
    }
}

/// Makes `dir` (if needed) and checks that a file can be written in it,
/// before a run whose finding would go there.
fn writable_dir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("--out {}: cannot create it: {e}", dir.display()))?;
    let probe = dir.join(format!(".uffd-check-probe-{}", std::process::id()));
    std::fs::write(&probe, b"")
        .map_err(|e| format!("--out {}: cannot write in it: {e}", dir.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Prints a failure, then writes its trace to `path`; if writing fails the
/// trace is already on stdout, and a warning says so. Never loses it.
/// The file text of a failing case.
fn failure_text(f: &Failure, setup: &Setup, found_by: &str) -> String {
    let mut text = format!(
        "# found by: {found_by}\n# invariant `{}` failed at step {}\n",
        f.invariant,
        f.step + 1
    );
    if let Some(k) = setup.kernel_note() {
        text.push_str(&format!("# {k}\n"));
    }
    text.push_str(&f.trace.to_text());
    text
}

/// Reports a failure: its trace is written to `path` at once (so a closed
/// or full standard output cannot lose it), then the failure is printed in
/// full with the command that replays it; if the file could not be
/// written, the printed trace is the copy and a warning says so.
fn report_failure(f: &Failure, header: &str, path: &Path, setup: &Setup, found_by: &str) {
    use std::io::Write;
    let written = std::fs::write(path, failure_text(f, setup, found_by));
    let mut out = std::io::stdout().lock();
    let printed = writeln!(out, "\n{header}\n\n{f}").is_ok();
    match written {
        Ok(()) => {
            let _ = writeln!(
                out,
                "written to {p}\nreplay it: {}\nC repro:   {}\nkeep it:   cp {p} cases/NAME.trace   (then it replays in `cargo test`)",
                setup.replay_command(path),
                Setup::repro_command(path),
                p = path.display(),
            );
            if !printed {
                eprintln!(
                    "uffd-check: cannot write to standard output; the failing case is in {}",
                    path.display()
                );
            }
        }
        Err(e) if printed => eprintln!(
            "uffd-check: warning: cannot write {}: {e}; the trace is above",
            path.display()
        ),
        Err(e) => eprintln!(
            "uffd-check: cannot write {} ({e}) nor to standard output; the failing case:\n{}",
            path.display(),
            failure_text(f, setup, found_by)
        ),
    }
}

fn check(
    seed: Option<u64>,
    cases: u32,
    ops: usize,
    pages: Page,
    setup: &Setup,
    out: &Path,
) -> Result<ExitCode, String> {
    if pages == 0 || pages > MAX_CHECK_PAGES {
        return Err(format!(
            "--pages {pages}: the arena must be 1 to {MAX_CHECK_PAGES} pages"
        ));
    }
    if ops == 0 || ops > MAX_CHECK_OPS {
        return Err(format!(
            "--ops {ops}: a sequence must be 1 to {MAX_CHECK_OPS} ops"
        ));
    }
    if cases == 0 {
        return Err("--cases 0: run at least one sequence".into());
    }
    writable_dir(out)?;
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
        "uffd-check check --seed {seed} --cases {cases} --ops {ops} --pages {pages}{}",
        setup.flags("--backends")
    );
    println!("{command}");
    if let Some(k) = setup.kernel_note() {
        println!("{k}");
    }
    let mut timed: Vec<Timed<Box<dyn Backend>>> =
        setup.make(pages)?.into_iter().map(Timed::new).collect();
    let bar = indicatif::ProgressBar::new(cases as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} sequences, {per_sec}, eta {eta} {msg}",
        )
        .expect("the progress template is valid"),
    );
    let start = Instant::now();
    let report = {
        let mut backends: Vec<&mut dyn Backend> =
            timed.iter_mut().map(|b| b as &mut dyn Backend).collect();
        runner::run(&config, &mut backends, |s| {
            bar.set_position(s.sequences);
        })
    };
    bar.finish_and_clear();
    let wall = start.elapsed();
    let path = out.join(format!("seed-{seed}.trace"));
    if let Some(f) = &report.failure {
        // Written before any table is printed: see report_failure.
        let _ = std::fs::write(&path, failure_text(f, setup, &command));
    }
    print_stats(&report.stats, &setup.rules_off);
    let secs = wall.as_secs_f64().max(1e-9);
    println!(
        "\nthroughput: {} sequences passed, {} ops in {:.2} s: {:.0} sequences/s, {:.0} ops/s \
         (generating, running and checking; {:.2} s of it running the backends and invariants)",
        report.stats.sequences,
        report.stats.steps,
        secs,
        report.stats.sequences as f64 / secs,
        report.stats.steps as f64 / secs,
        report.elapsed.as_secs_f64()
    );
    println!("time per backend (each step: the op and reading its layout):");
    for b in &timed {
        println!(
            "  {:<7} {:>9.3} s  {:>12.0} steps/s",
            b.inner.name(),
            b.time.as_secs_f64(),
            b.ops as f64 / b.time.as_secs_f64().max(1e-9)
        );
        if let Some(costs) = b.inner.costs() {
            println!("    {costs}");
        }
    }
    let Some(f) = report.failure else {
        if report.interrupted {
            println!(
                "\ninterrupted: no failure in the {} sequences run",
                report.stats.sequences
            );
            return Ok(ExitCode::from(130));
        }
        println!("\nno failures");
        return Ok(ExitCode::SUCCESS);
    };
    let header = format!(
        "FAILED after shrinking ({} shrink steps) to {} ops:",
        report.shrink_steps,
        f.trace.steps.len()
    );
    report_failure(&f, &header, &path, setup, &command);
    Ok(ExitCode::FAILURE)
}

fn print_stats(s: &Stats, rules_off: &[uffd_model::Deviation]) {
    println!("\nops:");
    for name in uffd_vocab::Op::NAMES {
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
    println!("coverage goals (the list is uffd_check::check::GOALS):");
    for g in uffd_check::check::GOALS {
        println!("  {:<72} {:>8}", g.name, g.count(s));
    }
    println!(
        "known deviations of the kernel from the contract (steps where the model's rule \
         changed the outcome; --strict turns them off):"
    );
    for d in uffd_model::Deviation::ALL {
        if rules_off.contains(&d) {
            println!("  {:<72} {:>8}", d.name(), "off");
        } else {
            let n = s.deviations.get(d.name()).copied().unwrap_or(0);
            println!("  {:<72} {n:>8}", d.name());
        }
    }
    if !s.unsupported.is_empty() {
        println!(
            "left out (a backend that does not support an op yet, for the rest of the sequence):"
        );
        for (what, n) in &s.unsupported {
            println!("  {what:<24} {n:>8} sequences");
        }
    }
}

/// The merge cases a step took, as `case 4 (ExistingTailMergeNext)`.
fn merge_names(merges: &[u8]) -> Vec<String> {
    merges
        .iter()
        .map(|&c| match uffd_impl::Shape::of_case(c) {
            Some(shape) => format!("case {c} ({shape:?})"),
            None => format!("case {c}"),
        })
        .collect()
}

fn replay(file: &Path, setup: &Setup, json: bool) -> Result<ExitCode, String> {
    let trace = Trace::load(file).map_err(|e| e.to_string())?;
    let mut boxes = setup.make(trace.pages)?;
    let mut backends = as_refs(&mut boxes);
    let names = setup.backends.to_string();
    if !json {
        let rules = if setup.rules_off.is_empty() {
            String::new()
        } else {
            format!(", deviation rules off:{}", setup.strict_flags())
        };
        println!(
            "replaying {} on {names} ({} pages{rules})",
            file.display(),
            trace.pages
        );
    }
    let mut deviations = 0;
    let result = run_trace_with(&mut backends, &trace, |v| {
        let o = &v.outcomes[0];
        let known: Vec<&str> = v
            .outcomes
            .iter()
            .find(|o| !o.report.deviations.is_empty())
            .map_or(Vec::new(), |o| o.report.deviations.clone());
        deviations += known.len();
        if json {
            println!("{}", uffd_check::check::step_json(v));
        } else {
            println!(
                "\nstep {}: {}  -> {}",
                v.index + 1,
                v.op,
                result_name(&o.result)
            );
            print!("{}", uffd_check::draw::draw(&o.layout, v.pages, "  "));
            for b in v.outcomes.iter().filter(|b| !b.report.merges.is_empty()) {
                println!(
                    "  {} took {}",
                    b.backend,
                    merge_names(&b.report.merges).join(", ")
                );
            }
            for d in &known {
                println!("  known deviation {d}: the model says what the kernel does (--strict: the contract)");
                if let Some(dev) = uffd_model::Deviation::from_name(d) {
                    println!("    contract: {}", dev.contract());
                    println!("    kernel:   {}", dev.kernel());
                }
            }
        }
    });
    match result {
        Ok(_) => {
            if !json {
                println!(
                    "\nok: {} steps, every invariant held on {names}{}",
                    trace.steps.len(),
                    if deviations > 0 {
                        format!(" ({deviations} step(s) by a known deviation rule)")
                    } else {
                        String::new()
                    }
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(f) => {
            if json {
                println!("{}", uffd_check::check::failure_json(&f));
            } else {
                println!("\nFAILED:\n\n{f}");
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

fn explore(
    pages: Page,
    depth: usize,
    max_states: u64,
    setup: &Setup,
    out: &Path,
) -> Result<ExitCode, String> {
    if !(1..=MAX_EXPLORE_PAGES).contains(&pages) {
        return Err(format!(
            "--pages {pages}: explore takes 1 to {MAX_EXPLORE_PAGES} pages"
        ));
    }
    if !(1..=MAX_EXPLORE_STATES).contains(&max_states) {
        return Err(format!(
            "--max-states {max_states}: explore keeps 1 to {MAX_EXPLORE_STATES} states (about 60 bytes each)"
        ));
    }
    if depth > MAX_EXPLORE_DEPTH {
        return Err(format!(
            "--depth {depth}: explore takes 0 to {MAX_EXPLORE_DEPTH} ops (and --max-states bounds it)"
        ));
    }
    writable_dir(out)?;
    let command = format!(
        "uffd-check explore --pages {pages} --depth {depth} --max-states {max_states}{}",
        setup.flags("--backends")
    );
    println!("{command}");
    if let Some(k) = setup.kernel_note() {
        println!("{k}");
    }
    let mut boxes = setup.make(pages)?;
    let mut backends = as_refs(&mut boxes);
    let t = Instant::now();
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let r = uffd_check::explore::explore(
        ExploreConfig {
            pages,
            depth,
            max_states,
        },
        &mut backends,
        |d, states, transitions| {
            if tty {
                eprint!("\rdepth {d}: {states} states, {transitions} transitions ");
            }
        },
    );
    if tty {
        eprint!("\r\x1b[K");
    }
    let path = |f: &Failure| out.join(format!("explore-{pages}p-{}ops.trace", f.trace.steps.len()));
    if let Some(f) = &r.failure {
        // Written before any table is printed: see report_failure.
        let _ = std::fs::write(path(f), failure_text(f, setup, &command));
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "explored {pages} pages to depth {depth} on {}: alphabet of {} ops, {} unique states \
         (by depth {:?}), {} transitions in {secs:.2} s ({:.0}/s){}",
        setup.backends,
        r.alphabet,
        r.states(),
        r.states_by_depth,
        r.transitions,
        r.transitions as f64 / secs.max(1e-9),
        if r.interrupted {
            " -- INTERRUPTED: the last depth is incomplete".to_string()
        } else if r.truncated {
            format!(" -- TRUNCATED at --max-states {max_states}: the last depth is incomplete")
        } else {
            String::new()
        }
    );
    print_stats(&r.stats, &setup.rules_off);
    match r.failure {
        None => {
            println!("\nno failures");
            Ok(ExitCode::SUCCESS)
        }
        Some(f) => {
            report_failure(
                &f,
                "FAILED (a shortest failing sequence):",
                &path(&f),
                setup,
                &command,
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

fn repro(file: &Path, output: Option<&Path>) -> Result<ExitCode, String> {
    let trace = Trace::load(file).map_err(|e| e.to_string())?;
    let name = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "repro".into());
    let c = uffd_check::repro::repro_c(&trace, &name);
    match output {
        Some(out) => {
            std::fs::write(out, c).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
            eprintln!(
                "wrote {o}; build and run: cc -O2 -Wall -Werror -o {n} {o} && ./{n}",
                o = out.display(),
                n = name
            );
        }
        None => print!("{c}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn bench(vmas: &[u64], ops: u64) -> Result<ExitCode, String> {
    if !(1..=1_000_000).contains(&ops) {
        return Err(format!(
            "--ops {ops}: the scaling table times 1 to 1,000,000 ops per row"
        ));
    }
    let max = uffd_vocab::MAX_PAGES;
    if let Some(n) = vmas.iter().find(|&&n| !(2..=max).contains(&n)) {
        return Err(format!("--vmas {n}: each VMA count must be 2 to {max}"));
    }
    println!("{}", uffd_check::bench::random_sequences_table());
    println!("{}", uffd_check::bench::scaling_table(vmas, ops)?);
    Ok(ExitCode::SUCCESS)
}
