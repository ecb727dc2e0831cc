//! `repro`: a trace turned into one short, straight-line C program that
//! replays it on the live kernel with the syscalls it uses, in order, at
//! literal pages of one reserved arena, each followed by a check of its
//! result; then a check of the layout where the finding shows (read from
//! `/proc/self/smaps`, only the VmFlags codes that tell the case's VMAs
//! apart; all of it is printed when the check fails), and, where the
//! finding costs the user something, the check of that (a write that a
//! registration should refuse), and the uffd events of every call that
//! can raise one, read by a monitor thread (the call waits until they are
//! read) and compared in the trace's form. Helpers come only with the ops
//! that need them (a memfd with a file mapping, the event monitor with an
//! `event-…` feature, the child's smaps with fork).
//!
//! What each check expects is the contract: the page model
//! ([`uffd_model::PageModel`]) with its deviation rules off, projected onto
//! what the kernel can observe ([`uffd_kernel::UNOBSERVED`]). Where the
//! model with its rules on (what the kernel is known to do) says otherwise,
//! that is in the program too: a check that meets it is
//! `not ok N - WHAT # TODO known deviation: NAME` (TAP does not count it as
//! a failure) unless the program is strict ([`Options::strict`], or built
//! with `-DSTRICT=1`), where it fails.
//!
//! The program prints TAP 13 and exits 0 when every check passes (or is a
//! TODO), 1 when one fails or the arena cannot be set up (`Bail out!`), and
//! 4 (KSFT_SKIP, `1..0 # SKIP`) when the trace uses userfaultfd and none
//! can be opened. [`Options::kselftest`] gives the same test written with
//! the kselftest.h of a kernel tree (`ksft_*`; a known deviation is XFAIL).

use std::fmt::Write as _;

use uffd_vocab::Op;

use std::path::Path;

use crate::trace::{Trace, MAX_TRACE_BYTES};

mod emit;
mod header;
pub mod kselftest;
mod plan;

pub use plan::layout_text;

/// How the program is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// A known deviation fails the program (exit 1), as the contract
    /// alone decides; without, it is a TODO.
    pub strict: bool,
    /// The kselftest form: `#include "../kselftest.h"` and its `ksft_*`
    /// calls, to build in a kernel tree's tools/testing/selftests/mm.
    pub kselftest: bool,
}

/// One step's expectation: the result name (`ok`, `EINVAL`, `errno42`) and
/// the layout after it, one VMA a line in the text form.
pub type Expectation = (String, Vec<String>);

/// What the contract (the page model with its deviation rules off,
/// `--strict`) expects of each step of `trace`, as the kernel can see it.
pub fn model_expectation(trace: &Trace) -> Vec<Expectation> {
    expectations(trace, true)
        .into_iter()
        .map(|(e, _)| e)
        .collect()
}

/// What the page model expects with its deviation rules on (what the
/// kernel is known to do), each step with the deviation rules that changed it.
pub fn kernel_expectation(trace: &Trace) -> Vec<(Expectation, Vec<&'static str>)> {
    expectations(trace, false)
}

fn expectations(trace: &Trace, strict: bool) -> Vec<(Expectation, Vec<&'static str>)> {
    use uffd_vocab::{result_name, Backend};
    let mut model = uffd_model::PageModel::with_strict(trace.pages, strict);
    trace
        .steps
        .iter()
        .map(|s| {
            let o = model
                .step(&s.op)
                .expect("the page model answers every op of the language");
            let lines = o.layout.project(uffd_kernel::UNOBSERVED).lines();
            ((result_name(&o.result), lines), o.report.deviations)
        })
        .collect()
}

/// A layout check the program makes, as the tests read it back: after which
/// step (1-based, of the program's ops), the VmFlags codes it compares and
/// whether it names owners ([`layout_text`]'s arguments), the contract's
/// text and the known kernel's, if different.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub after: usize,
    pub codes: Vec<&'static str>,
    pub owner: bool,
    pub want: String,
    pub known: Option<String>,
}

/// The layout checks the program for `trace` makes, in order; and the ops
/// it runs (the trace's, then any write that shows the consequence).
pub fn checks(trace: &Trace) -> (Vec<Check>, Vec<Op>) {
    let p = plan::plan(trace);
    let checks = p
        .steps
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let l = s.layout.as_ref()?;
            Some(Check {
                after: i + 1,
                codes: p.codes.clone(),
                owner: p.ask_owner,
                want: l.want.clone(),
                known: l.known.clone(),
            })
        })
        .collect();
    (checks, p.steps.iter().map(|s| s.op).collect())
}

/// An events check the program makes: after which step (1-based, of the
/// program's ops), the contract's events ([`uffd_vocab::events_text`]) and
/// the known kernel's, if different.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventCheck {
    pub after: usize,
    pub want: String,
    pub known: Option<String>,
}

/// The events checks the program for `trace` makes, in order: one after
/// every call that can raise an event on a uffd open with its feature.
pub fn event_checks(trace: &Trace) -> Vec<EventCheck> {
    let p = plan::plan(trace);
    emit::watch_masks(&p.steps)
        .into_iter()
        .zip(&p.steps)
        .enumerate()
        .filter(|(_, (mask, _))| *mask != 0)
        .map(|(i, (_, s))| EventCheck {
            after: i + 1,
            want: s.events.0.clone(),
            known: s.events.1.clone(),
        })
        .collect()
}

/// The known deviations that change a step of the program for `trace` (in
/// [`uffd_model::Deviation::ALL`]'s order): a strict program fails on a
/// kernel that has one of them.
pub fn deviations(trace: &Trace) -> Vec<uffd_model::Deviation> {
    plan::plan(trace).deviations
}

/// The program for the trace in `file` (`-`: standard input), named `name`:
/// [`repro_c`] with the trace's comments, strict also when the trace was
/// found under `--strict` (its `# found by:` line says so).
pub fn repro_file(file: &Path, name: &str, opts: Options) -> Result<String, String> {
    use std::io::Read as _;
    let shown = file.display();
    let input: Box<dyn std::io::Read> = if file == Path::new("-") {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(
            std::fs::File::open(file)
                .map_err(|e| format!("{shown}: cannot read the trace: {e}"))?,
        )
    };
    let mut text = String::new();
    input
        .take(MAX_TRACE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("{shown}: cannot read the trace: {e}"))?;
    if text.len() as u64 > MAX_TRACE_BYTES {
        return Err(format!(
            "{shown}: the trace is over {MAX_TRACE_BYTES} bytes"
        ));
    }
    let trace = Trace::parse(&text, &shown.to_string()).map_err(|e| e.to_string())?;
    let comments = header::comments(&text);
    let strict = opts.strict || header::found_under_strict(&comments);
    Ok(repro_c(&trace, name, &comments, Options { strict, ..opts }))
}

/// The program for `trace`, named `name` (its file is `NAME.c`); `comments`
/// are the trace's own comment lines (without `#`), whose first sentence
/// its header quotes.
pub fn repro_c(trace: &Trace, name: &str, comments: &[String], opts: Options) -> String {
    let p = plan::plan(trace);
    let need = Needs::of(&p);
    let mut out = String::new();
    header::header(&mut out, trace, &p, name, comments, opts);
    prelude(&mut out, &p, &need, opts);
    let mut main = String::new();
    main_fn(&mut main, &p, &need, opts);
    for (part, used) in [
        (if opts.kselftest { KSFT } else { TAP }, true),
        (RESULT, true),
        (UFFD, need.uffd_open),
        (TOUCH, need.touch),
        (PEEK, need.peek),
        (fill_c(need.compat), need.fill),
        (PTES, need.ptes),
        (MEMFD, need.memfd),
        (FORK, need.fork),
        (&monitor_c(need.faults), need.monitor),
        (FAULTS, need.faults),
        (OWNER, p.ask_owner),
    ] {
        if used {
            out.push('\n');
            out.push_str(part);
        }
    }
    out.push('\n');
    out.push_str(&layout_c(p.ask_owner, need.memfd || need.shmem));
    out.push_str(&main);
    out
}

/// `fill.c`, without the definitions for older headers (`compat`: the
/// program uses one of them).
fn fill_c(compat: bool) -> &'static str {
    if compat {
        FILL
    } else {
        &FILL[FILL.find(TAGGED).expect("fill.c has `tagged`")..]
    }
}

/// `monitor.c`, without its call of `resolve` (`faults.c`) where no page
/// fault can be delivered.
fn monitor_c(faults: bool) -> String {
    let mut c = MONITOR.to_string();
    if !faults {
        for (with, without) in FAULT_PARTS {
            c = c.replace(with, without);
        }
    }
    c
}

/// `layout.c` with only what the program needs: the owner's line where it
/// asks for owners, the file@offset of a VMA where it maps a file (a memfd
/// or shared anonymous memory).
fn layout_c(owner: bool, files: bool) -> String {
    let mut c = LAYOUT.to_string();
    if !owner {
        c = c.replace(OWNER_CALL, "");
    }
    if !files {
        for (with, without) in FILE_PARTS {
            c = c.replace(with, without);
        }
    }
    c
}

/// The helpers (and declarations) a plan's program needs.
#[derive(Default)]
struct Needs {
    uffd: bool,
    touch: bool,
    /// A read fault.
    peek: bool,
    /// A copy, zeropage, continue, poison or move.
    fill: bool,
    /// A UFFDIO_CONTINUE with MODE_WP, a UFFDIO_POISON or a UFFDIO_MOVE:
    /// what `fill.c` defines for headers older than them.
    compat: bool,
    /// A check of the page table entries.
    ptes: bool,
    /// An arena that can hold a huge page where MADV_HUGEPAGE asks for
    /// one: the program turns THP off, as the worker does.
    no_thp: bool,
    memfd: bool,
    fork: bool,
    monitor: bool,
    /// The monitor resolves page faults (a uffd open with `faults`), with
    /// a tagged page for UFFDIO_COPY.
    faults: bool,
    reg: bool,
    /// A shared anonymous mapping (smaps names its file: /dev/zero).
    shmem: bool,
    /// A uffd opened after the first (`uffd_open`; the first is opened in
    /// `main`).
    uffd_open: bool,
    unreg: bool,
    files: Vec<(u8, u64)>,
    /// The ctx of the first uffd op, when that is a register or an
    /// unregister (which opens it on first use).
    first_ctx: Option<u8>,
}

impl Needs {
    fn of(p: &plan::Plan) -> Needs {
        let mut n = Needs {
            monitor: emit::watch_masks(&p.steps).iter().any(|&m| m != 0),
            faults: emit::delivers_faults(&p.steps),
            ..Needs::default()
        };
        for s in &p.steps {
            match s.op {
                Op::Register { .. } => n.reg = true,
                Op::Unregister { .. } => n.unreg = true,
                Op::Fault { read: false, .. } => n.touch = true,
                Op::Fault { read: true, .. } => n.peek = true,
                Op::Fill { how, wp, .. } => {
                    n.fill = true;
                    n.compat |= how == uffd_vocab::Fill::Poison
                        || (how == uffd_vocab::Fill::Continue && wp);
                }
                Op::Move { .. } => (n.fill, n.compat) = (true, true),
                Op::Fork => n.fork = true,
                Op::Map {
                    kind: uffd_vocab::Kind::Shmem,
                    ..
                } => n.shmem = true,
                Op::Map { kind, len, .. } => {
                    if let Some((f, off)) = kind_file(kind) {
                        match n.files.iter_mut().find(|(g, _)| *g == f) {
                            Some((_, size)) => *size = (*size).max(off + len),
                            None => n.files.push((f, off + len)),
                        }
                    }
                }
                _ => {}
            }
            n.uffd |= matches!(
                s.op,
                Op::Register { .. }
                    | Op::Unregister { .. }
                    | Op::Close { .. }
                    | Op::Open { .. }
                    | Op::Fill { .. }
                    | Op::Move { .. }
            );
        }
        n.memfd = !n.files.is_empty();
        n.fill |= n.faults;
        n.no_thp = p.pages >= 512
            && p.steps.iter().any(|s| {
                matches!(
                    s.op,
                    Op::Madvise {
                        advice: uffd_vocab::Advice::Hugepage,
                        ..
                    }
                )
            });
        n.ptes = p
            .steps
            .iter()
            .any(|s| s.layout.as_ref().is_some_and(|l| l.ptes.is_some()));
        n.first_ctx = p
            .steps
            .iter()
            .find_map(|s| match s.op {
                Op::Register { ctx, .. }
                | Op::Unregister { ctx, .. }
                | Op::Fill { ctx, .. }
                | Op::Move { ctx, .. } => Some(Some(ctx)),
                Op::Close { .. } | Op::Open { .. } => Some(None),
                _ => None,
            })
            .flatten();
        n.files.sort();
        let mut body = String::new();
        main_fn(&mut body, p, &n, Options::default());
        n.uffd_open = body.contains("uffd_open(");
        n
    }
}

fn kind_file(kind: uffd_vocab::Kind) -> Option<(u8, u64)> {
    use uffd_vocab::Kind;
    match kind {
        Kind::File { file, pgoff }
        | Kind::SharedFile { file, pgoff }
        | Kind::SharedRoFile { file, pgoff } => Some((file, pgoff)),
        _ => None,
    }
}

/// `#include`s, constants, and the program's state.
fn prelude(out: &mut String, p: &plan::Plan, need: &Needs, opts: Options) {
    out.push_str("#define _GNU_SOURCE\n#include <errno.h>\n");
    // O_* for `uffd_open` (the first uffd is opened in `main` without
    // flags) and `memfd`.
    let mut headers = if need.memfd || need.uffd_open || need.ptes {
        vec!["fcntl.h"]
    } else {
        vec![]
    };
    headers.extend(["stdio.h", "stdlib.h", "string.h", "sys/mman.h"]);
    if need.uffd {
        headers.extend(["sys/ioctl.h", "sys/syscall.h"]);
    }
    if need.touch || need.peek {
        headers.push("sys/uio.h");
    }
    if need.fork {
        headers.push("sys/wait.h");
    }
    if need.no_thp {
        headers.push("sys/prctl.h");
    }
    if need.monitor {
        headers.extend(["poll.h", "pthread.h"]);
    }
    headers.push("unistd.h");
    if need.uffd {
        headers.push("linux/userfaultfd.h");
    }
    for h in headers {
        let _ = writeln!(out, "#include <{h}>");
    }
    if opts.kselftest {
        out.push_str("#include \"../kselftest.h\"\n");
    }
    let _ = writeln!(out, "\n#define NPAGES {}UL", p.pages);
    out.push_str(
        "#define PAGE 4096UL\n\
         #define ARENA 0x100000000000UL /* page 0, between two guard pages nothing merges with */\n\
         #define P(n) ((void *)(ARENA + (n) * PAGE))\n\
         #define ERR(failed) ((failed) ? errno : 0)\n",
    );
    if p.deviations.is_empty() {
        out.push_str("#define KNOWN NULL /* no known deviation here */\n");
    } else {
        let names: Vec<&str> = p.deviations.iter().map(|d| d.name()).collect();
        let _ = writeln!(
            out,
            "#ifndef STRICT\n#define STRICT {} /* 1: the known deviation fails */\n#endif\n\
             #define KNOWN (STRICT ? NULL : \"known deviation: {}\")",
            u8::from(opts.strict),
            names.join(", ")
        );
    }
    if need.uffd {
        out.push_str("\nstatic int uffd[4] = { -1, -1, -1, -1 };");
    }
}

/// `main`: the set-up, every step, the layout checks, the exit.
fn main_fn(out: &mut String, p: &plan::Plan, need: &Needs, opts: Options) {
    out.push_str("\nint main(void)\n{\n");
    let mut decls = Vec::new();
    if need.uffd {
        decls.push(
            "\tstruct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_SIGBUS };"
                .to_string(),
        );
    }
    if need.uffd && need.first_ctx.is_none() {
        decls.push("\tint probe;".to_string());
    }
    if need.reg {
        decls.push("\tstruct uffdio_register reg;".to_string());
    }
    if need.unreg {
        decls.push("\tstruct uffdio_range range;".to_string());
    }
    if need.fork {
        decls.push("\tchar smaps[64];\n\tpid_t pid;".to_string());
    }
    for (f, _) in &need.files {
        decls.push(format!("\tint f{f}, f{f}_ro;"));
    }
    for d in &decls {
        let _ = writeln!(out, "{d}");
    }
    if !decls.is_empty() {
        out.push('\n');
    }
    let checks = p.steps.iter().filter(|s| s.layout.is_some()).count()
        + p.steps
            .iter()
            .filter(|s| s.layout.as_ref().is_some_and(|l| l.ptes.is_some()))
            .count();
    let masks = emit::watch_masks(&p.steps);
    let checks = checks + masks.iter().filter(|&&m| m != 0).count();
    let bail = |why: &str| {
        if opts.kselftest {
            format!("\t\tksft_exit_fail_msg(\"{why}: %s\\n\", strerror(errno));\n")
        } else {
            format!("\t\treturn printf(\"Bail out! {why}: %s\\n\", strerror(errno)), 1;\n")
        }
    };
    out.push_str(if opts.kselftest {
        "\tksft_print_header();\n"
    } else {
        "\tprintf(\"TAP version 13\\n\");\n"
    });
    if need.uffd {
        // The uffd of the first ctx used, when a register or unregister
        // opens it (on first use), is opened here; else a probe.
        let probe = need
            .first_ctx
            .map_or("probe".to_string(), |c| format!("uffd[{c}]"));
        let skip = if opts.kselftest {
            "\t\tksft_exit_skip(\"userfaultfd: %s\\n\", strerror(errno));\n"
        } else {
            "\t\treturn printf(\"1..0 # SKIP userfaultfd: %s\\n\", strerror(errno)), 4;\n"
        };
        // UFFD_FEATURE_SIGBUS: a fault the uffd would report fails at once
        // (EFAULT in a syscall); `uffd_open` opens the later ones so too,
        // but for those opened with `faults` (rule 42: the fault waits
        // for the monitor, which resolves it).
        let _ = write!(
            out,
            "\t{probe} = syscall(__NR_userfaultfd, 0);\n\
             \tif ({probe} < 0 || ioctl({probe}, UFFDIO_API, &api))\n{skip}{}",
            if need.first_ctx.is_some() {
                String::new()
            } else {
                format!("\tclose({probe});\n")
            }
        );
    }
    if need.no_thp {
        // As the worker: 4 KiB pages only (a huge page would show as 512).
        out.push_str(
            "\tprctl(PR_SET_THP_DISABLE, 1, 0, 0, 0); /* 4 KiB pages, as uffd-check's worker */\n",
        );
    }
    let _ = write!(
        out,
        "\tif (mmap(P(-1), (NPAGES + 2) * PAGE, PROT_NONE, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) != P(-1) ||\n\
         \t    munmap(P(0), NPAGES * PAGE))\n{}",
        bail("the arena is not free")
    );
    for (f, size) in &need.files {
        let _ = write!(
            out,
            "\tf{f} = memfd(\"f{f}\", {size}, &f{f}_ro);\n\tif (f{f} < 0)\n{}",
            bail(&format!("memfd f{f}"))
        );
    }
    let tests = p.steps.len() + checks;
    if opts.kselftest {
        let _ = writeln!(out, "\tksft_set_plan({tests});");
    } else {
        let _ = writeln!(out, "\tprintf(\"1..{tests}\\n\");");
    }
    let mut st = emit::State::default();
    if let Some(c) = need.first_ctx {
        st.opened(c);
    }
    for ((i, s), mask) in p.steps.iter().enumerate().zip(masks) {
        let what = format!("{}. {}", i + 1, emit::describe(&s.op));
        if mask != 0 {
            let _ = writeln!(out, "\twatch({mask:#x});");
        }
        emit::step(out, s, &what, &mut st);
        if let Some(l) = &s.layout {
            let smaps = if matches!(s.op, Op::Fork) {
                "smaps"
            } else {
                "\"/proc/self/smaps\""
            };
            let known = l
                .known
                .as_ref()
                .map_or("NULL".into(), |k| format!("\"{k}\""));
            let _ = writeln!(
                out,
                "\tcheck_layout(\"the layout after {}\", {smaps}, \"{}\",\n\t\t     \"{}\", {known});",
                i + 1,
                p.codes.iter().map(|c| format!("{c} ")).collect::<String>(),
                l.want
            );
            if let Some((want, known)) = &l.ptes {
                let known = known.as_ref().map_or("NULL".into(), |k| format!("\"{k}\""));
                let pid = if matches!(s.op, Op::Fork) { "pid" } else { "0" };
                let _ = writeln!(
                    out,
                    "\tcheck_ptes(\"the page table entries after {}\", {pid}, \"{want}\", {known});",
                    i + 1
                );
            }
        }
        if matches!(s.op, Op::Fork) {
            out.push_str("\tend_child(pid);\n");
        }
        // After the child's checks: closing a fork's uffd releases the
        // child's registrations.
        if mask != 0 {
            let (want, known) = &s.events;
            let known = known.as_ref().map_or("NULL".into(), |k| format!("\"{k}\""));
            let _ = writeln!(
                out,
                "\tcheck_events(\"the events of {}\", \"{want}\", {known});",
                i + 1
            );
        }
    }
    out.push_str(if opts.kselftest {
        "\tksft_finished();\n}\n"
    } else {
        "\treturn failures ? 1 : 0;\n}\n"
    });
}

/// The fixed C, in `src/repro/` (its README.md says how to lint it), each
/// part emitted only where the program needs it.
const TAP: &str = include_str!("repro/tap.c");
const KSFT: &str = include_str!("repro/ksft.c");
const RESULT: &str = include_str!("repro/result.c");
const UFFD: &str = include_str!("repro/uffd.c");
const TOUCH: &str = include_str!("repro/touch.c");
const PEEK: &str = include_str!("repro/peek.c");
const FILL: &str = include_str!("repro/fill.c");
const PTES: &str = include_str!("repro/ptes.c");
const MEMFD: &str = include_str!("repro/memfd.c");
const FORK: &str = include_str!("repro/fork.c");
const MONITOR: &str = include_str!("repro/monitor.c");
const FAULTS: &str = include_str!("repro/faults.c");
const OWNER: &str = include_str!("repro/owner.c");
const LAYOUT: &str = include_str!("repro/layout.c");
/// The line of `layout.c` that asks for the owner, cut where not needed.
const OWNER_CALL: &str = "\t\task_owner(g, line, in);\n";
/// Where `tagged` starts in `fill.c`, after the definitions for older
/// headers.
const TAGGED: &str = "/* The source of UFFDIO_COPY";
/// The parts of `monitor.c` that hand a page fault to `resolve`, and what
/// they are without.
const FAULT_PARTS: [(&str, &str); 2] = [
    (
        "static void resolve(int c, const struct uffd_msg *m, int *fd); /* faults.c */\n",
        "",
    ),
    (
        "\t\t\t\tif (m.event == UFFD_EVENT_PAGEFAULT)\n\t\t\t\t\tresolve(c, &m, &p[c].fd);\n\t\t\t\telse if",
        "\t\t\t\tif",
    ),
];
/// The parts of `layout.c` that read a file mapping's file and offset, and
/// what they are without a file mapping.
const FILE_PARTS: [(&str, &str); 3] = [
    (", file[256]", ""),
    (
        " %*s %*s %255s\", &s, &e, perms, &off, file);",
        "\", &s, &e, perms, &off);",
    ),
    (
        "\t\tif (n == 5 && in)\n\t\t\tfprintf(g, \" %s@%llu\", file, off / PAGE);\n",
        "",
    ),
];

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    /// `src/repro/lint.c` (every fixed part as one translation unit, with a
    /// stand-in for the generated part) builds without a warning, so the C
    /// can be linted on its own. Skipped, saying why, without `cc`.
    #[test]
    fn the_fixed_c_builds_on_its_own() {
        let lint = concat!(env!("CARGO_MANIFEST_DIR"), "/src/repro/lint.c");
        let args = [
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-c",
            "-o",
            "/dev/null",
        ];
        let o = match Command::new("cc").args(args).arg(lint).output() {
            Ok(o) => o,
            Err(e) => return eprintln!("SKIPPED: cannot run `cc`: {e}"),
        };
        assert!(
            o.status.success(),
            "cc {} {lint} failed:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr)
        );
    }

    /// A program holds only the helpers its ops need.
    #[test]
    fn helpers_come_only_with_the_ops_that_need_them() {
        let t = Trace::parse("arena 4\nmap 0 4 rw- anon\n", "t").unwrap();
        let c = repro_c(&t, "t", &[], Options::default());
        for helper in [
            "uffd_open",
            "TOUCH(",
            "memfd(",
            "fork_child",
            "monitor(",
            "ask_owner",
        ] {
            assert!(!c.contains(helper), "{helper} in\n{c}");
        }
        let t = Trace::parse(
            "arena 8\nmap 0 4 rw- file=1@2\nopen 0 event-remap\nregister 0 0 4 missing\n\
             register 1 4 1 wp\nmremap 0 2 2 6\nfork\nfault 1\n",
            "t",
        )
        .unwrap();
        let c = repro_c(&t, "t", &[], Options::default());
        for helper in [
            "uffd_open(",
            "TOUCH(",
            "memfd(",
            "fork_child(",
            "watch(0x1);",
            "check_events(\"the events of 5\", \"0:remap[0,2)->6\", NULL);",
            "ask_owner(",
        ] {
            assert!(c.contains(helper), "{helper} not in\n{c}");
        }
        assert!(!c.contains("resolve(c"), "{c}");
    }

    /// A uffd open with `faults` has no UFFD_FEATURE_SIGBUS; the monitor
    /// watches it around the calls that can fault (not mprotect) and
    /// resolves what it reads, with a tagged page; the uffd it closes (a
    /// grown move's populate: EAGAIN) is not watched any more, and is
    /// opened anew by a later register.
    #[test]
    fn faults_go_to_the_monitor_which_resolves_them() {
        let t = Trace::parse(
            "arena 8\nopen 0 event-remap+faults\nmap 0 1 rw- anon\nmlock 0 1\n\
             register 0 0 1 missing\nprotect 0 1 r--\nmremap 0 1 2 4\nfault 4 read\n\
             register 0 4 2 missing\n",
            "t",
        )
        .unwrap();
        let c = repro_c(&t, "t", &[], Options::default());
        for want in [
            "uffd[0] = uffd_open(UFFD_FEATURE_EVENT_REMAP);",
            "\t\t\t\tif (m.event == UFFD_EVENT_PAGEFAULT)\n\t\t\t\t\tresolve(c, &m, &p[c].fd);",
            "static void resolve(int c, const struct uffd_msg *m, int *fd)\n{",
            "static inline unsigned long tagged(",
            "\twatch(0x1);\n\tcheck(\"3. mlock2 [0,1)\"",
            "\tcheck_events(\"the events of 6\", \"0:fault[5]\", NULL);",
            "\tuffd[0] = uffd_open(UFFD_FEATURE_SIGBUS);\n\treg = ",
        ] {
            assert!(c.contains(want), "{want} not in\n{c}");
        }
        assert!(!c.contains("UFFDIO_POISON"), "{c}");
        // mprotect does not wait for a reader; a closed uffd is not watched.
        for unwatched in ["5. mprotect", "7. read"] {
            let line = format!("\twatch(0x1);\n\tcheck(\"{unwatched}");
            assert!(!c.contains(&line), "{line} in\n{c}");
        }
    }
}
