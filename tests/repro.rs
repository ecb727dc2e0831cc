//! `repro`: every trace of `cases/` as a standalone C program, built with
//! `cc -O2 -Wall -Werror`, run on the live kernel, and held to the kernel
//! backend's own reading of the same trace, step by step.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Instant;

use uffd_check::kernel::KernelBackend;
use uffd_check::repro::{kernel_expectation, model_expectation, repro_c, repro_c_with};
use uffd_check::trace::{CaseKind, Trace};
use uffd_vocab::{result_name, Backend};

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

/// `cc -O2 -Wall -Werror -o NAME NAME.c`, started in `dir`.
fn start_cc(dir: &Path, name: &str) -> Child {
    Command::new("cc")
        .current_dir(dir)
        .args(["-O2", "-Wall", "-Werror", "-o", name])
        .arg(format!("{name}.c"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cc runs")
}

/// Writes each `(NAME, SOURCE)` to `dir/NAME.c` and compiles them all, as
/// many at a time as there are CPUs; panics with the compiler's output on
/// any warning or error. Returns the executables, in order.
fn compile_all(dir: &Path, programs: &[(String, String)]) -> Vec<PathBuf> {
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    for chunk in programs.chunks(jobs) {
        let children: Vec<(&String, Child)> = chunk
            .iter()
            .map(|(name, source)| {
                let c = dir.join(format!("{name}.c"));
                std::fs::write(&c, source).unwrap_or_else(|e| panic!("{}: {e}", c.display()));
                (name, start_cc(dir, name))
            })
            .collect();
        for (name, child) in children {
            let o = child.wait_with_output().expect("cc runs");
            assert!(
                o.status.success(),
                "cc -O2 -Wall -Werror -o {name} {name}.c failed in {}:\n{}",
                dir.display(),
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
    programs.iter().map(|(name, _)| dir.join(name)).collect()
}

/// [`compile_all`] of one program.
fn compile(dir: &Path, name: &str, source: &str) -> PathBuf {
    compile_all(dir, &[(name.to_string(), source.to_string())]).remove(0)
}

fn run(exe: &Path) -> (Output, String) {
    let o = Command::new(exe)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", exe.display()));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    (o, text)
}

/// The machine-readable lines of a run: per step (1-based), the result and
/// the actual VMA lines.
fn actual(tap: &str, steps: usize) -> Vec<(String, Vec<String>)> {
    let mut out = vec![(String::new(), Vec::new()); steps];
    for line in tap.lines() {
        let parse = |prefix: &str| -> Option<(usize, String)> {
            let rest = line.strip_prefix(prefix)?;
            let (n, text) = rest.split_once(": ")?;
            Some((n.parse().ok()?, text.to_string()))
        };
        let step = |n: usize| {
            assert!((1..=steps).contains(&n), "step {n} of {steps}: {line:?}");
            n - 1
        };
        if let Some((n, r)) = parse("# result ") {
            out[step(n)].0 = r;
        } else if let Some((n, v)) = parse("# layout ") {
            out[step(n)].1.push(v);
        }
    }
    out
}

/// The kernel backend's answer to every step of `trace`: result name and
/// layout lines.
fn kernel_answers(k: &mut KernelBackend, trace: &Trace, file: &Path) -> Vec<(String, Vec<String>)> {
    k.reset();
    trace
        .steps
        .iter()
        .map(|s| {
            let o = k.step(&s.op).expect("the kernel answers every op");
            assert!(
                o.report.violations.is_empty(),
                "{}: `{}`: the kernel backend reports {:?}",
                file.display(),
                s.op,
                o.report.violations
            );
            (result_name(&o.result), o.layout.lines())
        })
        .collect()
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

#[test]
fn every_case_builds_passes_and_reads_the_kernel_as_the_kernel_backend_does() {
    if !have_cc() {
        return;
    }
    let t0 = Instant::now();
    let dir = work_dir("cases");
    let files = common::case_files();
    assert!(!files.is_empty());
    let mut traces: Vec<(PathBuf, Trace)> = files
        .iter()
        .map(|f| (f.clone(), Trace::load(f).unwrap_or_else(|e| panic!("{e}"))))
        .collect();
    // And the flags madvise sets, on every kind of backing, until cases/
    // has a trace of them.
    traces.push((
        PathBuf::from("inline-madvise.trace"),
        Trace::parse(MADVISE_TRACE, "inline-madvise.trace").unwrap_or_else(|e| panic!("{e}")),
    ));
    let programs: Vec<(String, String)> = traces
        .iter()
        .map(|(f, t)| (stem(f), repro_c(t, &stem(f))))
        .collect();
    let exes = compile_all(&dir, &programs);
    let built: Vec<(PathBuf, Trace, PathBuf)> = traces
        .into_iter()
        .zip(exes)
        .map(|((f, t), e)| (f, t, e))
        .collect();
    eprintln!(
        "built {} programs in {:.1} s",
        built.len(),
        t0.elapsed().as_secs_f64()
    );
    if !common::kernel_available() {
        return;
    }
    let mut kernels: BTreeMap<u64, KernelBackend> = BTreeMap::new();
    for (file, trace, exe) in &built {
        let (o, tap) = run(exe);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}: the program did not pass:\n{tap}\n{}",
            file.display(),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(tap.starts_with("TAP version 13\n"), "{tap}");
        assert!(
            tap.contains(&format!("\n1..{}\n", trace.steps.len())),
            "{tap}"
        );
        // Every step is as the contract says, or as a known deviation
        // says the kernel does instead (`not ok … # TODO known deviation`,
        // in the cases of `kind: deviation NAME`; it must show where this
        // kernel, 6.18, has the case's rule: the rules of other kernels
        // are off by default).
        let any_deviation = matches!(trace.kind, CaseKind::Deviation(_));
        let deviation = matches!(trace.kind, CaseKind::Deviation(d)
            if !uffd_model::Deviation::off_by_default().contains(&d));
        for line in tap.lines().filter(|l| l.starts_with("not ok")) {
            assert!(
                any_deviation && line.contains(" # TODO "),
                "{}: {line}\n{tap}",
                file.display()
            );
        }
        if deviation {
            assert!(
                tap.contains(" # TODO known deviation: "),
                "{}: the deviation does not show:\n{tap}",
                file.display()
            );
        }
        let k = kernels
            .entry(trace.pages)
            .or_insert_with(|| common::kernel_backend(trace.pages));
        let want = kernel_answers(k, trace, file);
        let got = actual(&tap, trace.steps.len());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(
                g,
                w,
                "{} step {} `{}`: the program (left) and the kernel backend (right) differ\n{tap}",
                file.display(),
                i + 1,
                trace.steps[i].op
            );
        }
        // And both are what the model expects (with its deviation rules:
        // what the kernel is known to do), as the kernel sees it.
        let known: Vec<_> = kernel_expectation(trace)
            .into_iter()
            .map(|(e, _)| e)
            .collect();
        assert_eq!(got, known, "{}", file.display());
    }
    eprintln!(
        "built and ran {} programs in {:.1} s",
        built.len(),
        t0.elapsed().as_secs_f64()
    );
}

#[test]
fn an_expectation_the_kernel_does_not_meet_is_not_ok_and_exit_1() {
    if !have_cc() || !common::kernel_available() {
        return;
    }
    let dir = work_dir("wrong");
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("cases/historic-bugs/lkml-unregister-tail-merges-right.trace");
    let trace = Trace::load(&file).unwrap_or_else(|e| panic!("{e}"));
    let mut expected = model_expectation(&trace);
    // What the 2023 pgoff bug left behind: [5,10) did not merge with [10,20).
    let last = expected.len() - 1;
    let right = expected[last].1.clone();
    assert_eq!(right[1], "[5,20) rw- anon@? account maywrite anon_vma=?");
    expected[last].1 = vec![
        right[0].clone(),
        "[5,10) rw- anon@? account maywrite anon_vma=?".into(),
        "[10,20) rw- anon@? account maywrite anon_vma=?".into(),
    ];
    let exe = compile(
        &dir,
        "wrong",
        &repro_c_with(&trace, "wrong", expected.clone()),
    );
    let (o, tap) = run(&exe);
    assert_eq!(o.status.code(), Some(1), "{tap}");
    assert!(tap.contains("\nok 1 - map 0 20 rw- anon\n"), "{tap}");
    assert!(tap.contains("\nok 2 - register 0 0 10 missing\n"), "{tap}");
    assert!(tap.contains("\nnot ok 3 - unregister 0 5 5\n"), "{tap}");
    assert!(
        tap.contains(
            "# expected: ok\n\
             #   [0,5) rw- anon@? account maywrite anon_vma=? uffd=missing ctx=0\n\
             #   [5,10) rw- anon@? account maywrite anon_vma=?\n\
             #   [10,20) rw- anon@? account maywrite anon_vma=?\n\
             # actual: ok\n\
             #   [0,5) rw- anon@? account maywrite anon_vma=? uffd=missing ctx=0\n\
             #   [5,20) rw- anon@? account maywrite anon_vma=?\n"
        ),
        "{tap}"
    );
    assert!(tap.contains("# Totals: pass:2 fail:1"), "{tap}");
    // A wrong result alone is not ok too.
    let mut expected = model_expectation(&trace);
    expected[0].0 = "EINVAL".into();
    let exe = compile(
        &dir,
        "wrong-result",
        &repro_c_with(&trace, "wrong-result", expected),
    );
    let (o, tap) = run(&exe);
    assert_eq!(o.status.code(), Some(1), "{tap}");
    assert!(
        tap.contains("\nnot ok 1 - map 0 20 rw- anon\n# expected: EINVAL\n"),
        "{tap}"
    );
    assert!(tap.contains("\nok 3 - unregister 0 5 5\n"), "{tap}");
}

#[test]
fn the_program_embeds_the_trace_the_build_line_and_the_model_expectation() {
    let text = "arena 8\nmap 0 8 rw- anon\nregister 1 0 4 missing+wp\nunregister 1 0 2\nclose 1\nclose 1\n";
    let trace = Trace::parse(text, "t").unwrap();
    let c = repro_c(&trace, "two-ctx");
    assert!(c.starts_with("/*\n * two-ctx: "), "{c}");
    for line in text.lines() {
        assert!(c.contains(&format!(" *   {line}\n")), "{line} in\n{c}");
    }
    assert!(c.contains(" *   cc -O2 -Wall -Werror -o two-ctx two-ctx.c\n"));
    assert!(c.contains("#include <linux/userfaultfd.h>"));
    assert!(c.contains("#define NPAGES 8UL\n#define NSTEPS 5\n"));
    assert!(c.contains(
        "\t{ .line = \"register 1 0 4 missing+wp\", .op = OP_REGISTER, .ctx = 1, .start = 0, \
         .len = 4, .mode = 3ULL, .expect_result = \"ok\", .expect_layout = expect_2 },"
    ));
    assert!(c.contains(".line = \"close 1\", .op = OP_CLOSE, .ctx = 1, .expect_result = \"EBADF\""));
    // The model's layout as the kernel sees it: no anon pgoff, no anon_vma.
    assert!(
        c.contains(
            "static const char *const expect_2[] = {\n\
             \t\"[0,4) rw- anon@? account maywrite anon_vma=? uffd=missing+wp ctx=1\",\n\
             \t\"[4,8) rw- anon@? account maywrite anon_vma=?\",\n\
             \tNULL,\n};\n"
        ),
        "{c}"
    );
    // A name that would end the comment or the string is made harmless.
    let c = repro_c(&trace, "a*/b\"c");
    assert!(c.contains(" * a* /b\"c: "), "{c}");
    assert!(
        c.contains("static const char NAME[] = \"a*/b\\\"c\";"),
        "{c}"
    );
}

#[test]
fn without_a_userfaultfd_the_program_says_skip_and_exits_4() {
    if !have_cc() {
        return;
    }
    use std::os::unix::process::CommandExt;
    let dir = work_dir("skip");
    let trace = Trace::parse("arena 4\nmap 0 4 rw- anon\n", "t").unwrap();
    std::fs::write(dir.join("skip.c"), repro_c(&trace, "skip")).unwrap();
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
    // userfaultfd can be opened by any of the three ways.
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
        tap.starts_with("TAP version 13\n1..0 # SKIP userfaultfd cannot be used: "),
        "{tap}"
    );
    assert_eq!(tap.lines().count(), 2, "{tap}");
}
