//! `uffd-check`: the command line. `check` runs random differential
//! sequences, `replay` runs a trace file, `explore` checks every short
//! sequence, `repro` writes a C reproducer, `bench` measures the backends.
//! The work and the text printed are in the library (`uffd_check::print`);
//! this file parses arguments, dispatches, and writes the files.

mod cli;

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use uffd_check::backends::as_refs;
use uffd_check::check::{run_trace_with, Failure};
use uffd_check::explore::ExploreConfig;
use uffd_check::found;
use uffd_check::jobs::{run_jobs, BackendTime, MAX_JOBS};
use uffd_check::print;
use uffd_check::runner::{self, RunConfig, RunReport};
use uffd_check::setup::Setup;
use uffd_check::trace::Trace;

use crate::cli::{Cli, Command, KernelsCommand, EXIT_INTERRUPTED, EXIT_TRUNCATED};
use uffd_check::matrix::MatrixConfig;

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("__worker") {
        uffd_kernel::worker_main();
    }
    install_handlers();
    match run(Cli::parse().command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("uffd-check: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs one command; an error is bad input (exit code 2).
fn run(command: Command) -> Result<ExitCode, String> {
    match command {
        Command::Check {
            seed,
            cases,
            ops,
            pages,
            jobs,
            on,
            vm,
            out,
            rules,
        } => {
            let in_vm = vm.vm.is_some();
            let setup = rules.setup(on.kernel, on.backends, vm)?;
            let config = RunConfig {
                seed: 0,
                cases,
                ops,
                pages,
            };
            check(seed, config, jobs_of(jobs, in_vm)?, &setup, &out)
        }
        Command::Replay {
            file,
            backend,
            json,
            vm,
            rules,
        } => replay(&file, &rules.setup(false, backend, vm)?, json),
        Command::Bench { vmas, ops, long } => uffd_check::bench::BenchConfig::new(vmas, ops, long)
            .and_then(|config| uffd_check::bench::run(&config))
            .map(|()| ExitCode::SUCCESS),
        Command::Repro {
            fetch_kselftest_headers: true,
            ..
        } => {
            let dir = uffd_check::repro::kselftest::fetch()?;
            println!("{}", dir.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Repro {
            file,
            output,
            strict,
            kselftest,
            ..
        } => {
            let file = file.ok_or("repro: no trace named")?;
            let opts = uffd_check::repro::Options { strict, kselftest };
            repro(&file, output.as_deref(), opts)
        }
        Command::Explore {
            pages,
            depth,
            jobs,
            on,
            max_states,
            vm,
            out,
            rules,
        } => {
            let in_vm = vm.vm.is_some();
            let setup = rules.setup(on.kernel, on.backends, vm)?;
            let config = ExploreConfig {
                pages,
                depth,
                max_states,
            };
            explore(config, jobs_of(jobs, in_vm)?, &setup, &out)
        }
        Command::Kernels { what } => kernels(what),
        Command::Matrix {
            kernels,
            sequences,
            ops,
            pages,
            seed,
            cases,
            shrink,
            out,
            vm_mem,
        } => {
            let config = MatrixConfig {
                kernels,
                cases: uffd_check::cases::case_files(&cases)?,
                sequences,
                ops,
                pages,
                seed,
                out,
                mem_mb: vm_mem,
                shrink,
            };
            matrix(&config)
        }
        Command::Worker => unreachable!("handled in main"),
    }
}

/// SIGPIPE, SIGINT, and a panic hook for a standard output that cannot be
/// written.
fn install_handlers() {
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
    // (see found::report).
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
}

extern "C" fn on_sigint(_: libc::c_int) {
    runner::INTERRUPTED.store(true, std::sync::atomic::Ordering::Relaxed);
    // SAFETY: signal(2) is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_DFL);
    }
}

/// A seed from the clock.
fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Prints the command that reproduces a run, and the kernel's release if
/// it runs.
fn print_command(command: &str, setup: &Setup) {
    println!("{command}");
    if let Some(k) = setup.kernel_note() {
        println!("{k}");
    }
}

/// `--jobs`: as given (1 to [`MAX_JOBS`]), else the cores (1 in a guest:
/// each job would boot its own).
fn jobs_of(jobs: Option<usize>, in_vm: bool) -> Result<usize, String> {
    match jobs {
        Some(n) if (1..=MAX_JOBS).contains(&n) => Ok(n),
        Some(n) => Err(format!("--jobs {n}: 1 to {MAX_JOBS} jobs")),
        None if in_vm => Ok(1),
        None => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
    }
}

/// Runs `check`'s sequences on `jobs` threads, with a progress bar on a
/// terminal; answers the report, each backend's time and the wall time.
fn run_with_bar(
    config: &RunConfig,
    jobs: usize,
    setup: &Setup,
) -> Result<(RunReport, Vec<BackendTime>, Duration), String> {
    let bar = indicatif::ProgressBar::new(config.cases as u64);
    bar.set_style(print::progress_style());
    let start = Instant::now();
    let make = || setup.make(config.pages);
    let (report, times) = run_jobs(config, jobs, &make, |passed| bar.set_position(passed))?;
    bar.finish_and_clear();
    Ok((report, times, start.elapsed()))
}

fn check(
    seed: Option<u64>,
    mut config: RunConfig,
    jobs: usize,
    setup: &Setup,
    out: &Path,
) -> Result<ExitCode, String> {
    config.check_bounds()?;
    found::writable_dir(out)?;
    config.seed = seed.unwrap_or_else(clock_seed);
    let RunConfig {
        seed,
        cases,
        ops,
        pages,
    } = config;
    let command = format!(
        "uffd-check check --seed {seed} --cases {cases} --ops {ops} --pages {pages}{}",
        setup.flags("--backends")
    );
    print_command(&command, setup);
    let (report, times, wall) = run_with_bar(&config, jobs, setup)?;
    let path = out.join(format!("seed-{seed}.trace"));
    let failure = report.failure.map(|f| found::prepared(f, setup));
    if let Some(f) = &failure {
        // Written before any table is printed: see found::report.
        let _ = std::fs::write(&path, print::failure_file(f, setup, &command));
    }
    print!("{}", print::stats(&report.stats, &setup.rules_off));
    print!(
        "{}",
        print::throughput(&report.stats, wall, report.elapsed, jobs, &times)
    );
    let Some(f) = failure else {
        if report.interrupted {
            println!(
                "\ninterrupted: no failure in the {} sequences run",
                report.stats.sequences
            );
            return Ok(ExitCode::from(EXIT_INTERRUPTED));
        }
        println!("\nno failures");
        return Ok(ExitCode::SUCCESS);
    };
    let header = format!(
        "FAILED after shrinking ({} shrink steps) to {} ops:",
        report.shrink_steps,
        f.trace.steps.len()
    );
    found::report(&f, &header, &path, setup, &command);
    Ok(ExitCode::FAILURE)
}

fn replay(file: &Path, setup: &Setup, json: bool) -> Result<ExitCode, String> {
    let trace = Trace::load(file).map_err(|e| e.to_string())?;
    let mut boxes = setup.make(trace.pages)?;
    let mut backends = as_refs(&mut boxes);
    if !json {
        print!("{}", print::replay_header(file, setup, trace.pages));
    }
    let mut deviations = 0;
    let result = run_trace_with(&mut backends, &trace, |v| {
        deviations += v.known_deviations().len();
        print!("{}", print::replay_step(v, json));
    });
    match result {
        Ok(_) => {
            if !json {
                print!(
                    "{}",
                    print::replay_passed(trace.steps.len(), setup, deviations)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(mut f) => {
            found::name_the_deviation(&mut f, setup);
            found::name_the_bug(&mut f, setup);
            print!("{}", print::replay_failed(&f, json));
            Ok(ExitCode::FAILURE)
        }
    }
}

fn explore(
    config: ExploreConfig,
    jobs: usize,
    setup: &Setup,
    out: &Path,
) -> Result<ExitCode, String> {
    config.check_bounds()?;
    found::writable_dir(out)?;
    let command = format!(
        "uffd-check explore --pages {} --depth {} --max-states {}{}",
        config.pages,
        config.depth,
        config.max_states,
        setup.flags("--backends")
    );
    print_command(&command, setup);
    let t = Instant::now();
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let progress = |d, states, transitions| {
        if tty {
            eprint!("\rdepth {d}: {states} states, {transitions} transitions ");
        }
    };
    let mut r = if jobs > 1 {
        let make = || setup.make(config.pages);
        uffd_check::explore_jobs::explore_jobs(config, jobs, &make, progress)?
    } else {
        let mut boxes = setup.make(config.pages)?;
        uffd_check::explore::explore(config, &mut as_refs(&mut boxes), progress)
    };
    if tty {
        eprint!("\r\x1b[K");
    }
    let path = |f: &Failure| {
        let name = format!("explore-{}p-{}ops.trace", config.pages, f.trace.steps.len());
        out.join(name)
    };
    let failure = r.failure.take().map(|f| found::prepared(f, setup));
    if let Some(f) = &failure {
        // Written before any table is printed: see found::report.
        let _ = std::fs::write(path(f), print::failure_file(f, setup, &command));
    }
    let secs = t.elapsed().as_secs_f64();
    print!("{}", print::explore_summary(setup, &config, &r, secs));
    print!("{}", print::stats(&r.stats, &setup.rules_off));
    let Some(f) = failure else {
        return Ok(if r.interrupted {
            println!("\ninterrupted: no failure in the states explored");
            ExitCode::from(EXIT_INTERRUPTED)
        } else if r.truncated {
            println!("\nno failure in the states explored, but the search is incomplete");
            ExitCode::from(EXIT_TRUNCATED)
        } else {
            println!("\nno failures");
            ExitCode::SUCCESS
        });
    };
    let header = "FAILED (a shortest failing sequence):";
    found::report(&f, header, &path(&f), setup, &command);
    Ok(ExitCode::FAILURE)
}

fn repro(
    file: &Path,
    output: Option<&Path>,
    opts: uffd_check::repro::Options,
) -> Result<ExitCode, String> {
    let c = uffd_check::repro::repro_file(file, &program_name(file, output), opts)?;
    match output {
        Some(out) => {
            std::fs::write(out, c).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
            let build = uffd_check::setup::build_command(out);
            // The kselftest form includes "../kselftest.h": it builds in (or
            // with -I) a kernel tree's tools/testing/selftests/mm.
            let build = if opts.kselftest {
                build.replacen("cc ", "cc -I TREE/tools/testing/selftests/mm ", 1)
            } else {
                build
            };
            eprintln!("wrote {}; build and run: {build}", out.display());
        }
        None => print!("{c}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// The C program's name: the trace's file name without `.trace`; for
/// standard input (`-`), the output's without `.c`, or `repro`.
fn program_name(file: &Path, output: Option<&Path>) -> String {
    let named = if file == Path::new("-") {
        output
    } else {
        Some(file)
    };
    named
        .and_then(Path::file_stem)
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "repro".into())
}

/// `kernels list` and `kernels fetch SERIES…`.
fn kernels(what: KernelsCommand) -> Result<ExitCode, String> {
    use uffd_check::vm::kernels;
    match what {
        KernelsCommand::List => {
            for k in kernels::list()? {
                println!("{:<28} {}", k.release, k.image.display());
            }
        }
        KernelsCommand::Fetch { series } => {
            for s in series {
                let k = kernels::fetch(&s)?;
                println!("{s}: {} {}", k.release, k.image.display());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `matrix`: the table, then exit 1 if any kernel had a finding.
fn matrix(config: &MatrixConfig) -> Result<ExitCode, String> {
    config.check_bounds()?;
    let rows = uffd_check::matrix::run(config, &mut |line| eprintln!("{line}"))?;
    print!("{}", uffd_check::matrix::table(&rows));
    Ok(if rows.iter().any(|r| r.findings() > 0) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
