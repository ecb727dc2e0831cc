//! `repro`: a trace turned into one standalone C program, shaped like a
//! kselftest, that replays the trace on the live kernel with raw syscalls and
//! checks every step against what the page model (the contract) expects.
//!
//! The program does exactly what the kernel worker (`uffd_kernel::worker`)
//! does: it reserves the arena at the same fixed addresses between the same
//! two guard pages (a private PROT_NONE mapping of a memfd of its own), maps
//! the same four memfds (and a read-only fd of each), opens a userfaultfd per
//! context on first use the same three ways with `UFFD_FEATURE_SIGBUS`, and
//! reads the arena back from `/proc/self/smaps` into the vocabulary's one
//! VMA text form, exactly as `uffd-check replay --backend kernel` prints a
//! kernel layout (`anon@?`, `anon_vma=?`, the owning ctx asked of the kernel
//! by re-registering each registered VMA on every open uffd).
//!
//! The expectation is computed here, in Rust, by running the trace through
//! [`uffd_model::PageModel`] with its deviation rules off (the contract) and
//! projecting each layout onto what the kernel can observe
//! ([`uffd_kernel::UNOBSERVED`]); it is embedded in the program as C string
//! data, one result name and one list of VMA lines per step. Where the
//! model with its deviation rules on (what the kernel is known to do)
//! expects something else, that is embedded too, with the deviation's name:
//! a step that matches it is `not ok N - OP # TODO known deviation: NAME`,
//! which TAP does not count as a failure. `mremap` of a uffd opened with
//! `event-remap` runs with a monitor thread reading the uffd's events (the
//! kernel waits for them); `fork`'s layout is the child's, read from
//! `/proc/CHILD/smaps` while the child waits on a pipe.
//!
//! The program prints TAP 13: `ok N - OP` or `not ok N - OP` per step, with
//! `# expected:` / `# actual:` diagnostics for a step that is not ok, and for
//! every step the machine-readable `# result N: NAME` and one
//! `# layout N: VMA` line per actual VMA. It exits 0 when every step is as
//! expected, 1 when one is not (or the setup fails: `Bail out!`), and 4
//! (KSFT_SKIP, with `1..0 # SKIP reason`) when no userfaultfd can be opened.

use std::fmt::Write as _;

use uffd_vocab::layout::SMAPS_IGNORED;
use uffd_vocab::{result_name, Backend, Features, Kind, Mode, Op, Prot, Remap, VmFlags};

use crate::trace::Trace;

/// One step's expectation: the result name (`ok`, `EINVAL`, `errno42`) and
/// the layout after it, one VMA a line in the text form.
pub type Expectation = (String, Vec<String>);

/// What the contract (the page model with its deviation rules off,
/// `--strict`) expects of each step of `trace`, as the kernel can see it:
/// the result name and the layout projected onto
/// [`uffd_kernel::UNOBSERVED`] (so `anon@?` and `anon_vma=?`), one entry a
/// step.
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
    let mut model = uffd_model::PageModel::with_strict(trace.pages, strict);
    trace
        .steps
        .iter()
        .map(|s| {
            let o = model
                .step(&s.op)
                .expect("the page model answers every op of the language");
            (
                (
                    result_name(&o.result),
                    o.layout.project(uffd_kernel::UNOBSERVED).lines(),
                ),
                o.report.deviations,
            )
        })
        .collect()
}

/// For each step where what the kernel is known to do differs from the
/// contract: that expectation, and why (the deviation, or the step whose
/// deviation it follows from).
fn known_deviations(trace: &Trace) -> Vec<Option<(Expectation, String)>> {
    let mut first: Option<usize> = None;
    let contract = model_expectation(trace);
    kernel_expectation(trace)
        .into_iter()
        .zip(&contract)
        .enumerate()
        .map(|(i, ((known, names), want))| {
            if known == *want {
                return None;
            }
            let why = if !names.is_empty() {
                first.get_or_insert(i);
                format!("known deviation: {}", names.join(", "))
            } else if let Some(k) = first {
                format!("follows from the known deviation at step {}", k + 1)
            } else {
                "the kernel's known behaviour".to_string()
            };
            Some((known, why))
        })
        .collect()
}

/// The C program for `trace`, named `name` (its file is `NAME.c`), checking
/// every step against the page model's expectation
/// ([`model_expectation`]).
pub fn repro_c(trace: &Trace, name: &str) -> String {
    repro_c_with(trace, name, model_expectation(trace))
}

/// The C program for `trace` with an explicit expectation, one entry a step
/// (the result name and the expected VMA lines, in the text form the
/// program prints). Panics if `expected` does not have one entry a step.
pub fn repro_c_with(trace: &Trace, name: &str, expected: Vec<Expectation>) -> String {
    assert_eq!(
        expected.len(),
        trace.steps.len(),
        "repro_c_with: one expectation a step"
    );
    let mut out = String::new();
    header(&mut out, trace, name);
    out.push('\n');
    out.push_str(PRELUDE);
    out.push('\n');
    smaps_tables(&mut out);
    let _ = writeln!(out, "#define NPAGES {}UL", trace.pages);
    let _ = writeln!(out, "#define NSTEPS {}", trace.steps.len());
    let _ = writeln!(out, "static const char NAME[] = {};", c_string(name));
    out.push('\n');
    for (i, (_, lines)) in expected.iter().enumerate() {
        let _ = writeln!(out, "static const char *const expect_{}[] = {{", i + 1);
        for l in lines {
            let _ = writeln!(out, "\t{},", c_string(l));
        }
        out.push_str("\tNULL,\n};\n");
    }
    let known = known_deviations(trace);
    for (i, k) in known.iter().enumerate() {
        if let Some(((_, lines), _)) = k {
            let _ = writeln!(out, "static const char *const known_{}[] = {{", i + 1);
            for l in lines {
                let _ = writeln!(out, "\t{},", c_string(l));
            }
            out.push_str("\tNULL,\n};\n");
        }
    }
    out.push_str("\nstatic const struct step steps[NSTEPS + 1] = {\n");
    for (i, (step, (result, _))) in trace.steps.iter().zip(&expected).enumerate() {
        let known = match &known[i] {
            Some(((r, _), why)) => format!(
                ", .known_result = {}, .known_layout = known_{}, .known_why = {}",
                c_string(r),
                i + 1,
                c_string(why)
            ),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "\t{{ .line = {}, {}, .expect_result = {}, .expect_layout = expect_{}{known} }},",
            c_string(&step.op.to_string()),
            op_fields(&step.op),
            c_string(result),
            i + 1
        );
    }
    out.push_str("\t{ .line = NULL },\n};\n");
    for part in BODY {
        out.push('\n');
        out.push_str(part);
    }
    out
}

/// The op's fields of `struct step`, as designated initializers.
fn op_fields(op: &Op) -> String {
    match *op {
        Op::Map {
            start,
            len,
            prot,
            kind,
        } => {
            let (k, file, pgoff) = match kind {
                Kind::Anon => ("K_ANON", 0, 0),
                Kind::AnonNoreserve => ("K_ANON_NORESERVE", 0, 0),
                Kind::Shmem => ("K_SHMEM", 0, 0),
                Kind::File { file, pgoff } => ("K_FILE", file, pgoff),
                Kind::SharedFile { file, pgoff } => ("K_SHARED_FILE", file, pgoff),
                Kind::SharedRoFile { file, pgoff } => ("K_SHARED_RO_FILE", file, pgoff),
            };
            format!(
                ".op = OP_MAP, .start = {start}, .len = {len}, .prot = {}, .kind = {k}, \
                 .file = {file}, .pgoff = {pgoff}",
                prot.bits()
            )
        }
        Op::Unmap { start, len } => format!(".op = OP_UNMAP, .start = {start}, .len = {len}"),
        Op::Protect { start, len, prot } => format!(
            ".op = OP_PROTECT, .start = {start}, .len = {len}, .prot = {}",
            prot.bits()
        ),
        Op::Register {
            ctx,
            start,
            len,
            mode,
        } => format!(
            ".op = OP_REGISTER, .ctx = {ctx}, .start = {start}, .len = {len}, .mode = {}ULL",
            mode.0
        ),
        Op::Unregister { ctx, start, len } => {
            format!(".op = OP_UNREGISTER, .ctx = {ctx}, .start = {start}, .len = {len}")
        }
        Op::Close { ctx } => format!(".op = OP_CLOSE, .ctx = {ctx}"),
        Op::Fault { page } => format!(".op = OP_FAULT, .start = {page}, .len = 1"),
        Op::Madvise { start, len, advice } => format!(
            ".op = OP_MADVISE, .start = {start}, .len = {len}, .advice = MADV_{}",
            advice.name().to_ascii_uppercase()
        ),
        Op::Mlock {
            start,
            len,
            onfault,
        } => format!(
            ".op = OP_MLOCK, .start = {start}, .len = {len}, .onfault = {}",
            u8::from(onfault)
        ),
        Op::Munlock { start, len } => {
            format!(".op = OP_MUNLOCK, .start = {start}, .len = {len}")
        }
        Op::Mremap {
            start,
            len,
            newlen,
            to,
        } => {
            let (how, dst) = match to {
                Remap::InPlace => ("REMAP_IN_PLACE", 0),
                Remap::Fixed(d) => ("REMAP_FIXED", d),
                Remap::DontUnmap(d) => ("REMAP_DONTUNMAP", d),
            };
            format!(
                ".op = OP_MREMAP, .start = {start}, .len = {len}, .newlen = {newlen}, \
                 .to = {how}, .dst = {dst}"
            )
        }
        Op::Open { ctx, features } => format!(
            ".op = OP_OPEN, .ctx = {ctx}, .event_remap = {}",
            u8::from(features == Features::EventRemap)
        ),
        Op::Fork => ".op = OP_FORK".to_string(),
    }
}

/// The smaps `VmFlags` codes, from the vocabulary's own tables (the ones the
/// kernel worker decodes through): the VMA flags in display order with
/// their names, the uffd bits with theirs, the prot bits, and the codes
/// that say nothing here. Any other code in an arena VMA is an error, as it
/// is for the worker.
fn smaps_tables(out: &mut String) {
    out.push_str("/* The smaps VmFlags codes, from uffd-check's vocabulary. */\n");
    out.push_str("static const char *const vmflag_codes[][2] = {\n");
    for (_, name, code) in VmFlags::NAMES.iter() {
        let _ = writeln!(out, "\t{{ {}, {} }},", c_string(code), c_string(name));
    }
    out.push_str("};\n");
    let mayshare = VmFlags::NAMES
        .iter()
        .position(|(bit, _, _)| *bit == VmFlags::MAYSHARE)
        .expect("VM_MAYSHARE is in VmFlags::NAMES");
    let _ = writeln!(
        out,
        "/* VM_MAYSHARE's place in vmflag_codes: no `ms` means private. */\n\
         #define F_MAYSHARE (1UL << {mayshare})"
    );
    out.push_str("static const struct code uffd_codes[] = {\n");
    for (mode, code) in Mode::SMAPS_CODES.iter() {
        let _ = writeln!(
            out,
            "\t{{ {}, {}, {} }},",
            c_string(code),
            mode.0,
            c_string(&mode.names().join("+"))
        );
    }
    out.push_str("};\nstatic const struct code prot_codes[] = {\n");
    for (bit, code) in Prot::SMAPS_CODES.iter() {
        let _ = writeln!(out, "\t{{ {}, {bit}, NULL }},", c_string(code));
    }
    out.push_str("};\nstatic const char *const ignored_codes[] = {\n");
    for code in SMAPS_IGNORED.iter() {
        let _ = writeln!(out, "\t{},", c_string(code));
    }
    out.push_str("};\n\n");
}

/// `s` as a C string literal: quotes, backslashes and anything not
/// printable ASCII escaped (in octal, which never runs on into the next
/// character), and a `?` after a `?` escaped so that no trigraph forms.
fn c_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut prev = 0u8;
    for &b in s.as_bytes() {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'?' if prev == b'?' => out.push_str("\\?"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\{b:03o}");
            }
        }
        prev = b;
    }
    out.push('"');
    out
}

/// Text safe inside a C block comment: no `*/`, no `/*`, printable ASCII.
fn comment_safe(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    s.replace("*/", "* /").replace("/*", "/ *")
}

/// The comment header: what the program is, the trace, how to build and run it.
fn header(out: &mut String, trace: &Trace, name: &str) {
    let name = comment_safe(name);
    let _ = writeln!(out, "/*");
    let _ = writeln!(
        out,
        " * {name}: a uffd-check trace as a standalone kselftest-style program."
    );
    out.push_str(
        " *\n\
         \x20* Generated by uffd-check (src/repro.rs). It replays the trace below on\n\
         \x20* the live kernel with raw syscalls (mmap, munmap, mprotect, madvise,\n\
         \x20* mlock2, mremap, fork, userfaultfd with UFFD_FEATURE_SIGBUS (and\n\
         \x20* EVENT_REMAP) and UFFDIO_REGISTER/UNREGISTER,\n\
         \x20* close, and a one-byte process_vm_writev to itself for `fault`), in\n\
         \x20* an arena at a fixed address between two guard pages, exactly as\n\
         \x20* uffd-check's kernel worker does. After every step it reads the\n\
         \x20* arena's VMAs back from /proc/self/smaps and checks the step's result\n\
         \x20* and layout against what uffd-check's page model (the contract)\n\
         \x20* expects; a step where this kernel is known to depart from the\n\
         \x20* contract (a named deviation) is `not ok N - OP # TODO ...`. smaps\n\
         \x20* shows neither the page offset of private anonymous memory nor\n\
         \x20* anon_vmas: both sides print them as `anon@?` and `anon_vma=?`.\n\
         \x20*\n\
         \x20* The trace (all numbers are pages, relative to the arena):\n\
         \x20*\n",
    );
    for line in trace.to_text().lines() {
        let _ = writeln!(out, " *   {}", comment_safe(line));
    }
    let _ = writeln!(out, " *\n * Build and run:\n *");
    let _ = writeln!(out, " *   cc -O2 -Wall -Werror -o {name} {name}.c");
    let _ = writeln!(out, " *   ./{name}");
    out.push_str(
        " *\n\
         \x20* It prints TAP 13: `ok N - OP` or `not ok N - OP` a step (a step that is\n\
         \x20* not ok is followed by its `# expected:` and `# actual:` result and\n\
         \x20* VMAs), and for every step `# result N: NAME` and one `# layout N: VMA`\n\
         \x20* line per VMA it found. Exit status: 0 when every step is as expected,\n\
         \x20* 1 when one is not (or the setup fails), 4 (KSFT_SKIP) when no\n\
         \x20* userfaultfd can be opened (it needs root, or Linux 5.11+ for\n\
         \x20* UFFD_USER_MODE_ONLY, or read-write access to /dev/userfaultfd).\n\
         \x20*/\n",
    );
}

/// The fixed C, in `src/repro/` (its README.md says how to lint it): the
/// headers, constants and types, emitted before the generated part, which
/// uses them.
const PRELUDE: &str = include_str!("repro/prelude.h");

/// The fixed C of the program proper, by job, emitted in this order after
/// the generated part, whose definitions it uses (`NPAGES`, `NSTEPS`,
/// `NAME`, `steps`, the smaps code tables and `F_MAYSHARE`): the program's
/// state and small helpers, the arena's setup, the ops, reading the layout
/// from smaps, and the TAP report (`main`).
const BODY: [&str; 5] = [
    include_str!("repro/common.c"),
    include_str!("repro/arena.c"),
    include_str!("repro/ops.c"),
    include_str!("repro/layout.c"),
    include_str!("repro/main.c"),
];

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    /// `src/repro/check.c` (the fixed C as one translation unit, with a
    /// stand-in for the generated part) builds without a warning, so the C
    /// files can be linted on their own. Skipped, saying why, without `cc`.
    #[test]
    fn the_fixed_c_builds_on_its_own() {
        let check = concat!(env!("CARGO_MANIFEST_DIR"), "/src/repro/check.c");
        let o = match Command::new("cc")
            .args([
                "-O2",
                "-Wall",
                "-Wextra",
                "-Werror",
                "-c",
                "-o",
                "/dev/null",
                check,
            ])
            .output()
        {
            Ok(o) => o,
            Err(e) => return eprintln!("SKIPPED: cannot run `cc`: {e}"),
        };
        assert!(
            o.status.success(),
            "cc -O2 -Wall -Wextra -Werror -c {check} failed:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    /// The emitted program is one file: every fixed part in it, in order,
    /// and no `#include` of a project file.
    #[test]
    fn the_program_holds_every_part_and_includes_none() {
        let trace = Trace::parse("arena 4\nfork\n", "test").expect("a trace");
        let c = repro_c(&trace, "t");
        let mut at = 0;
        for part in std::iter::once(PRELUDE).chain(BODY) {
            at += c[at..].find(part).expect("every part, in order") + part.len();
        }
        assert!(!c.contains("#include \""));
    }
}
