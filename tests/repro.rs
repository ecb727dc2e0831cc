//! `repro`: every trace of `cases/` as a standalone C program, built with
//! `cc -O2 -Wall -Wextra -Werror`, run on the live kernel (passing; its
//! strict form failing exactly where this kernel has a known deviation),
//! each layout it checks held to the kernel backend's reading of the same
//! step; the programs' length; and the kselftest form, built against a
//! kernel tree's kselftest.h.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Instant;

use uffd_check::kernel::KernelBackend;
use uffd_check::repro::{checks, deviations, event_checks, layout_text, repro_c, Options};
use uffd_check::trace::Trace;
use uffd_vocab::Backend;

/// Can `cc` be run here? If not, says so and the test returns.
fn have_cc() -> bool {
    match Command::new("cc").arg("--version").output() {
        Ok(o) if o.status.success() => true,
        r => {
            let why = match r {
                Ok(o) => format!("`cc --version` exited with {}", o.status),
                Err(e) => format!("cannot run `cc`: {e}"),
            };
            eprintln!("SKIPPED: no C compiler ({why})");
            false
        }
    }
}

/// A fresh directory of this test's own under the target's temp dir.
fn work_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("repro")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}

/// The compiler's flags for every program.
const CFLAGS: [&str; 4] = ["-O2", "-Wall", "-Wextra", "-Werror"];

/// `cc CFLAGS -o NAME NAME.c` (and `extra` flags), started in `dir`.
fn start_cc(dir: &Path, name: &str, extra: &[String]) -> Child {
    Command::new("cc")
        .current_dir(dir)
        .args(CFLAGS)
        .args(extra)
        .args(["-o", name])
        .arg(format!("{name}.c"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cc runs")
}

/// Writes each `(NAME, SOURCE)` to `dir/NAME.c` and compiles them all, as
/// many at a time as there are CPUs; panics with the compiler's output on
/// any warning or error. Returns the executables, in order.
fn compile_all(dir: &Path, programs: &[(String, String)], extra: &[String]) -> Vec<PathBuf> {
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    for chunk in programs.chunks(jobs) {
        let children: Vec<(&String, Child)> = chunk
            .iter()
            .map(|(name, source)| {
                let c = dir.join(format!("{name}.c"));
                std::fs::write(&c, source).unwrap_or_else(|e| panic!("{}: {e}", c.display()));
                (name, start_cc(dir, name, extra))
            })
            .collect();
        for (name, child) in children {
            let o = child.wait_with_output().expect("cc runs");
            assert!(
                o.status.success(),
                "cc {} {} -o {name} {name}.c failed in {}:\n{}",
                CFLAGS.join(" "),
                extra.join(" "),
                dir.display(),
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
    programs.iter().map(|(name, _)| dir.join(name)).collect()
}

/// [`compile_all`] of one program.
fn compile(dir: &Path, name: &str, source: &str) -> PathBuf {
    compile_all(dir, &[(name.to_string(), source.to_string())], &[]).remove(0)
}

fn run(exe: &Path) -> (Output, String) {
    let o = Command::new(exe)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", exe.display()));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    (o, text)
}

fn stem(file: &Path) -> String {
    file.file_stem()
        .expect("a file name")
        .to_string_lossy()
        .into_owned()
}

/// Every advice of the language, on anonymous memory, a registered range,
/// shmem and memfds, with a failing one.
const MADVISE_TRACE: &str = "\
arena 12
map 0 8 rw- anon
madvise 2 2 dontdump
madvise 0 8 dontfork
register 0 0 4 missing
madvise 4 4 mergeable
madvise 2 2 dodump
madvise 6 2 wipeonfork
madvise 6 1 keeponfork
map 6 2 rw- shmem
madvise 6 2 wipeonfork
madvise 0 2 hugepage
madvise 0 1 nohugepage
madvise 4 2 unmergeable
madvise 7 1 dofork
map 8 2 rw- file=1@3
map 10 2 r-- shared-file=2@0
madvise 8 4 dontdump
madvise 9 3 dontfork
fault 8
";

/// Every case of `cases/`, and the madvise trace: (name, file, trace).
fn all_traces() -> Vec<(String, PathBuf, Trace)> {
    let mut out: Vec<(String, PathBuf, Trace)> = common::case_files()
        .into_iter()
        .map(|f| {
            let t = Trace::load(&f).unwrap_or_else(|e| panic!("{e}"));
            (stem(&f), f, t)
        })
        .collect();
    let inline = Path::new(env!("CARGO_TARGET_TMPDIR")).join("inline-madvise.trace");
    std::fs::write(&inline, MADVISE_TRACE).expect("the madvise trace is written");
    let t = Trace::parse(MADVISE_TRACE, "inline-madvise.trace").unwrap_or_else(|e| panic!("{e}"));
    out.push(("inline-madvise".into(), inline, t));
    out
}

/// The program of `file`, as `uffd-check repro` writes it.
fn program(file: &Path, name: &str, opts: Options) -> String {
    uffd_check::repro::repro_file(file, name, opts).unwrap_or_else(|e| panic!("{e}"))
}

/// The known deviations this kernel has, by its profile.
fn host_deviations() -> Vec<uffd_model::Deviation> {
    uffd_check::profile::Profile::of_release(&uffd_check::kernel::release()).rules_on
}

/// The kernel backend's layout after each step of `ops`, as the program
/// prints the checks of `trace` (the `# arena:` lines), in order.
fn kernel_arenas(k: &mut KernelBackend, trace: &Trace) -> Vec<String> {
    let (checks, ops) = checks(trace);
    k.reset();
    let layouts: Vec<_> = ops
        .iter()
        .map(|op| k.step(op).expect("the kernel answers every op").layout)
        .collect();
    checks
        .iter()
        .map(|c| layout_text(&layouts[c.after - 1], &c.codes, c.owner))
        .collect()
}

#[test]
fn every_case_passes_its_strict_form_fails_exactly_on_this_kernels_deviations() {
    if !have_cc() {
        return;
    }
    let t0 = Instant::now();
    let dir = work_dir("cases");
    let traces = all_traces();
    let mut programs = Vec::new();
    for (name, file, _) in &traces {
        programs.push((name.clone(), program(file, name, Options::default())));
        let strict = Options {
            strict: true,
            kselftest: false,
        };
        programs.push((format!("{name}-strict"), program(file, name, strict)));
    }
    let exes = compile_all(&dir, &programs, &[]);
    eprintln!(
        "built {} programs in {:.1} s",
        exes.len(),
        t0.elapsed().as_secs_f64()
    );
    if !common::kernel_available() {
        return;
    }
    let host = host_deviations();
    let mut kernels: BTreeMap<u64, KernelBackend> = BTreeMap::new();
    for ((name, file, trace), exe) in traces.iter().zip(exes.chunks(2)) {
        let (o, tap) = run(&exe[0]);
        let file = file.display();
        assert_eq!(o.status.code(), Some(0), "{file}: did not pass:\n{tap}");
        assert!(tap.starts_with("TAP version 13\n1.."), "{file}:\n{tap}");
        for line in tap.lines().filter(|l| l.starts_with("not ok")) {
            assert!(
                line.contains(" # TODO known deviation: "),
                "{file}: {line}\n{tap}"
            );
        }
        let shown = deviations(trace);
        let fails = shown.iter().any(|d| host.contains(d));
        let (o, strict) = run(&exe[1]);
        assert_eq!(
            o.status.code(),
            Some(if fails { 1 } else { 0 }),
            "{file}: strict, with the deviations {shown:?} of which this kernel has {host:?}:\n{strict}"
        );
        assert!(!strict.contains("# TODO"), "{file}:\n{strict}");
        assert_eq!(strict.contains("\nnot ok "), fails, "{file}:\n{strict}");
        // What the program read at each layout check is what the kernel
        // backend reads at that step.
        let k = kernels
            .entry(trace.pages)
            .or_insert_with(|| common::kernel_backend(trace.pages));
        let read: Vec<&str> = tap
            .lines()
            .filter_map(|l| l.strip_prefix("# arena: "))
            .collect();
        assert_eq!(read, kernel_arenas(k, trace), "{name}:\n{tap}");
    }
    eprintln!(
        "built and ran {} programs in {:.1} s",
        exes.len(),
        t0.elapsed().as_secs_f64()
    );
}

const MREMAP_DEVIATION: &str =
    "cases/deviations/deviation-mremap-neighbour-loses-its-registration.trace";

#[test]
fn the_mremap_deviation_shows_the_lost_registration_and_fails_strict() {
    if !have_cc() || !common::kernel_available() {
        return;
    }
    let dir = work_dir("mremap");
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(MREMAP_DEVIATION);
    let strict = Options {
        strict: true,
        kselftest: false,
    };
    let exe = compile(&dir, "dev", &program(&file, "dev", strict));
    let (o, tap) = run(&exe);
    if !host_deviations().contains(&uffd_model::Deviation::MremapOldRegistration) {
        assert_eq!(o.status.code(), Some(0), "{tap}");
        return eprintln!("this kernel keeps the contract of mremap:\n{tap}");
    }
    assert_eq!(o.status.code(), Some(1), "{tap}");
    assert!(
        tap.contains("\nok 5 - 5. mremap [0,4) to [8,12)\n"),
        "{tap}"
    );
    assert!(
        tap.contains(
            "\nnot ok 6 - the layout after 5\n\
             # arena: [8,16) rw-p\n\
             # the contract: [8,12) rw-p [12,16) rw-p um\n\
             # /proc/self/smaps:\n"
        ),
        "{tap}"
    );
    assert!(
        tap.contains(
            "\nnot ok 7 - 6. write a byte to page 12\n# success, the contract says Bad address\n"
        ),
        "{tap}"
    );
}

const EVENTS_DIR: &str = "cases/uffd-events";

/// The cases of `cases/uffd-events`: every program checks the events of
/// each call that can raise one, at least where the trace states them, and
/// passes; a wrong expectation fails its check, saying what was read.
#[test]
fn the_events_programs_check_what_the_monitor_read() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = uffd_check::cases::case_files(&root.join(EVENTS_DIR)).unwrap();
    assert!(files.len() >= 3, "{files:?}");
    let mut programs = Vec::new();
    let mut wrong = None;
    for file in &files {
        let trace = Trace::load(file).unwrap_or_else(|e| panic!("{e}"));
        let checks = event_checks(&trace);
        for (i, s) in trace.steps.iter().enumerate() {
            if let Some(e) = &s.expect_events {
                let c = checks.iter().find(|c| c.after == i + 1);
                assert_eq!(
                    c.map(|c| c.want.as_str()),
                    Some(uffd_vocab::events_text(e).as_str()),
                    "{}: step {}",
                    file.display(),
                    i + 1
                );
            }
        }
        let name = stem(file);
        let c = program(file, &name, Options::default());
        if wrong.is_none() {
            if let Some(check) = checks.iter().find(|c| c.want != "none") {
                let line = format!("\"the events of {}\", \"{}\"", check.after, check.want);
                assert!(c.contains(&line), "{line} not in\n{c}");
                let bad = c.replace(
                    &line,
                    &format!("\"the events of {}\", \"none\"", check.after),
                );
                wrong = Some((check.clone(), bad));
            }
        }
        programs.push((name, c));
    }
    let (check, bad) = wrong.expect("a case with events");
    programs.push(("wrong".into(), bad));
    if !have_cc() {
        return;
    }
    let dir = work_dir("events");
    let exes = compile_all(&dir, &programs, &[]);
    if !common::kernel_available() {
        return;
    }
    for ((name, _), exe) in programs.iter().zip(&exes) {
        let (o, tap) = run(exe);
        if name == "wrong" {
            assert_eq!(o.status.code(), Some(1), "{tap}");
            let says = format!(
                "- the events of {}\n# events: {}, the contract says none\n",
                check.after, check.want
            );
            assert!(tap.contains(&says), "{says} not in\n{tap}");
            continue;
        }
        assert_eq!(o.status.code(), Some(0), "{name}:\n{tap}");
        let n = tap.matches(" - the events of ").count();
        assert!(n > 0 && !tap.contains("\nnot ok"), "{name}:\n{tap}");
    }
}

#[test]
fn the_programs_are_short() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lines = |rel: &str| {
        let f = root.join(rel);
        program(&f, &stem(&f), Options::default()).lines().count()
    };
    let mut short = vec![MREMAP_DEVIATION.to_string()];
    // The page table entries' decoder (pagemap and mem) and the event
    // monitor (a thread and its uffd_msg decoder, with its page faults'
    // resolver where it gets them) are fixed parts a program holds when
    // it checks them: not counted.
    let part = |name: &str| {
        std::fs::read_to_string(root.join("src/repro").join(name))
            .unwrap()
            .lines()
            .count()
            + 1
    };
    let (ptes_part, monitor_part) = (part("ptes.c"), part("monitor.c"));
    let faults_part = part("faults.c");
    for (_, file, trace) in all_traces() {
        let c = program(&file, "t", Options::default());
        let decoder = if c.contains("\tcheck_ptes(") {
            ptes_part
        } else {
            0
        };
        let monitor = match (
            c.contains("\tcheck_events("),
            c.contains("\nstatic void resolve("),
        ) {
            (false, _) => 0,
            // Without the 3 lines that hand a fault to `resolve`.
            (true, false) => monitor_part - 3,
            (true, true) => monitor_part + faults_part,
        };
        let n = c.lines().count() - decoder - monitor;
        assert!(
            n <= 200,
            "{}: {n} lines (besides the ptes decoder and the event monitor)",
            file.display()
        );
        if matches!(trace.kind, uffd_check::trace::CaseKind::Bug(_)) && trace.steps.len() <= 3 {
            short.push(file.strip_prefix(root).unwrap().display().to_string());
        }
    }
    assert!(short.len() > 3, "{short:?}");
    for rel in &short {
        let n = lines(rel);
        eprintln!("{rel}: {n} lines");
        assert!(n < 120, "{rel}: {n} lines");
    }
}

#[test]
fn the_header_says_what_the_contract_and_the_kernel_say_and_since_when() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(MREMAP_DEVIATION);
    let c = program(&file, "dev", Options::default()).replace("\n * ", " ");
    let d = uffd_model::Deviation::MremapOldRegistration;
    for text in [d.contract(), d.kernel(), &d.history().to_string()] {
        let words: Vec<&str> = text.split_whitespace().collect();
        assert!(c.contains(&words.join(" ")), "{text:?} in\n{c}");
    }
    assert!(
        c.contains("KNOWN DEVIATION mremap-merges-with-old-registration"),
        "{c}"
    );
    assert!(c.contains("\"5. mremap [0,4) to [8,12)\""), "{c}");
    // A name that would end the comment or the string is made harmless.
    let trace = Trace::parse("arena 4\nmap 0 4 rw- anon\n", "t").unwrap();
    let c = repro_c(&trace, "a*/b\"c", &[], Options::default());
    assert!(c.contains(" * a* /b\"c: "), "{c}");
}

#[test]
fn a_trace_found_under_strict_gives_a_strict_program() {
    let dir = work_dir("found");
    let f = dir.join("found.trace");
    std::fs::write(
        &f,
        "# found by: uffd-check check --strict --seed 1\narena 4\nmap 0 4 rw- anon\n",
    )
    .unwrap();
    let c = program(&f, "found", Options::default());
    assert!(c.contains("#define KNOWN NULL"), "{c}");
    std::fs::write(
        &f,
        format!(
            "# found by: uffd-check check --strict --seed 1\n{}",
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(MREMAP_DEVIATION))
                .unwrap()
        ),
    )
    .unwrap();
    assert!(program(&f, "found", Options::default()).contains("#define STRICT 1 "));
    let plain = Path::new(env!("CARGO_MANIFEST_DIR")).join(MREMAP_DEVIATION);
    assert!(program(&plain, "p", Options::default()).contains("#define STRICT 0 "));
}

#[test]
fn without_a_userfaultfd_the_program_says_skip_and_exits_4() {
    if !have_cc() {
        return;
    }
    use std::os::unix::process::CommandExt;
    let dir = work_dir("skip");
    let trace = Trace::parse("arena 4\nmap 0 4 rw- anon\nregister 0 0 4 missing\n", "t").unwrap();
    std::fs::write(
        dir.join("skip.c"),
        repro_c(&trace, "skip", &[], Options::default()),
    )
    .unwrap();
    // Static, so that the dynamic loader needs no file descriptor either.
    let o = Command::new("cc")
        .current_dir(&dir)
        .args(["-static", "-O2", "-Wall", "-Werror", "-o", "skip", "skip.c"])
        .output()
        .expect("cc runs");
    if !o.status.success() {
        eprintln!(
            "SKIPPED: cannot link statically (no static libc?): {}",
            String::from_utf8_lossy(&o.stderr)
        );
        return;
    }
    let exe = dir.join("skip");
    // With no file descriptor to spare (stdin, stdout and stderr only), no
    // userfaultfd can be opened.
    let mut cmd = Command::new(&exe);
    // SAFETY: setrlimit is async-signal-safe; it only lowers our own limit.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 3,
                rlim_max: 3,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let o = cmd.output().expect("the program runs");
    let tap = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(4), "{tap}");
    assert!(
        tap.starts_with("TAP version 13\n1..0 # SKIP userfaultfd: "),
        "{tap}"
    );
    assert_eq!(tap.lines().count(), 2, "{tap}");
}

/// The kselftest headers' `mm` directory, or `None` (saying why) where they
/// are not in the cache; with `UFFD_CHECK_REQUIRE_KSELFTEST` set (as
/// `.ci/run` sets it) that is a failure instead.
fn kselftest_dir() -> Option<PathBuf> {
    match uffd_check::repro::kselftest::cached() {
        Ok(d) => Some(d),
        Err(why) => {
            if std::env::var_os("UFFD_CHECK_REQUIRE_KSELFTEST").is_some() {
                panic!("UFFD_CHECK_REQUIRE_KSELFTEST is set but {why}");
            }
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: the kselftest form: no kernel tree's headers: {why}"
            );
            None
        }
    }
}

#[test]
fn the_kselftest_form_builds_against_a_kernel_trees_headers_and_runs() {
    if !have_cc() {
        return;
    }
    let Some(mm) = kselftest_dir() else { return };
    let dir = work_dir("kselftest");
    let opts = Options {
        strict: false,
        kselftest: true,
    };
    let programs: Vec<(String, String)> = all_traces()
        .iter()
        .filter(|(_, _, t)| !matches!(t.kind, uffd_check::trace::CaseKind::Plain))
        .map(|(name, file, _)| (name.clone(), program(file, name, opts)))
        .collect();
    let include = vec!["-I".to_string(), mm.display().to_string()];
    let exes = compile_all(&dir, &programs, &include);
    eprintln!(
        "built {} kselftest programs with -I {}",
        exes.len(),
        mm.display()
    );
    if !common::kernel_available() {
        return;
    }
    for ((name, _), exe) in programs.iter().zip(&exes) {
        let (o, tap) = run(exe);
        assert_eq!(o.status.code(), Some(0), "{name}:\n{tap}");
        assert!(tap.contains("# Totals: pass:"), "{name}:\n{tap}");
        assert!(!tap.contains("\nnot ok"), "{name}:\n{tap}");
    }
}
