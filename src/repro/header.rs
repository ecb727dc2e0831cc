//! The program's header comment: what it does, what the contract says, what
//! the kernel is known to do instead and which kernels do it (from the
//! model's deviations and the implementation's historic bugs), the trace's
//! own comments, and how to build and run it.

use std::fmt::Write as _;

use uffd_impl::HistoricBug;
use uffd_vocab::Op;

use super::emit::describe;
use super::plan::Plan;
use super::Options;
use crate::print::wrap;
use crate::trace::{CaseKind, Trace};

/// The trace's full-line comments, without the `#` and one space.
pub fn comments(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim_start().strip_prefix('#'))
        .map(|c| c.strip_prefix(' ').unwrap_or(c).trim_end().to_string())
        .collect()
}

/// Was the trace found by a run with deviation rules off (its `# found
/// by:` line names `--strict` or `--strict-rule`)?
pub fn found_under_strict(comments: &[String]) -> bool {
    comments.iter().any(|c| {
        c.strip_prefix("found by:")
            .is_some_and(|cmd| cmd.split_whitespace().any(|w| w.starts_with("--strict")))
    })
}

/// Text safe inside a C block comment: no `*/`, no `/*`, printable ASCII.
pub fn comment_safe(s: &str) -> String {
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

/// Appends `text` as a comment paragraph, wrapped at 80 columns.
fn para(out: &mut String, text: &str) {
    out.push_str(&wrap(&comment_safe(text), " * ", " * ", 80));
}

pub fn header(
    out: &mut String,
    trace: &Trace,
    p: &Plan,
    name: &str,
    comments: &[String],
    opts: Options,
) {
    let name = comment_safe(name);
    out.push_str("/*\n");
    para(
        out,
        &format!("{name}: made by `uffd-check repro` from the trace of that name."),
    );
    out.push_str(" *\n");
    para(
        out,
        &format!(
            "What it does, in {} pages at 0x100000000000 (page 0), checking each result:",
            p.pages
        ),
    );
    for (i, s) in p.steps.iter().enumerate() {
        let _ = writeln!(out, " *   {}. {}", i + 1, comment_safe(&describe(&s.op)));
    }
    let after: Vec<String> = p
        .steps
        .iter()
        .enumerate()
        .filter(|(_, s)| s.layout.is_some())
        .map(|(i, _)| (i + 1).to_string())
        .collect();
    let codes = if p.codes.is_empty() {
        "none".to_string()
    } else {
        p.codes.join(" ")
    };
    let owner = if p.ask_owner {
        ", and which uffd owns each registered VMA"
    } else {
        ""
    };
    para(
        out,
        &format!(
            "Then it reads the layout after step {} from smaps: pages, perms, VmFlags \
             {codes}{owner}.",
            after.join(", ")
        ),
    );
    consequence(out, p);
    out.push_str(" *\n");
    kernels(out, trace, p);
    if !comments.is_empty() {
        out.push_str(" * From the trace:\n");
        for c in comments {
            let _ = writeln!(out, " *   {}", comment_safe(c));
        }
        out.push_str(" *\n");
    }
    let build = if opts.kselftest {
        "cc -O2 -Wall -I TREE/tools/testing/selftests/mm THIS.c (beside merge.c)"
    } else {
        "cc -O2 -Wall THIS.c"
    };
    para(
        out,
        &format!(
            "Build: {build}; run as root. TAP; exit 0: the contract holds, 1: not, 4: no \
             userfaultfd{}.",
            if p.deviations.is_empty() {
                ""
            } else if opts.strict {
                "; the known deviation fails (-DSTRICT=0: TODO)"
            } else {
                "; the known deviation is a TODO (-DSTRICT=1: fails)"
            }
        ),
    );
    out.push_str(" */\n");
}

/// The sentence on the write that shows what the finding costs a user.
fn consequence(out: &mut String, p: &Plan) {
    for (i, s) in p.steps.iter().enumerate().filter(|(_, s)| s.consequence) {
        let Op::Fault { page } = s.op else { continue };
        let text = if s.want.is_err() {
            format!(
                "Step {} is what a user loses: page {page} is registered MISSING by the \
                 contract, so the write faults into the uffd, which refuses it (SIGBUS feature): \
                 EFAULT. Unregistered, it succeeds unseen by the uffd.",
                i + 1
            )
        } else {
            format!(
                "Step {} is what a user sees: page {page} is unregistered by the contract, so \
                 the write succeeds; a registration left behind refuses it: EFAULT.",
                i + 1
            )
        };
        para(out, &text);
    }
}

/// The contract, what the kernel does instead and since when: the known
/// deviations the trace shows, and the historic bugs of its `kind:` line.
fn kernels(out: &mut String, trace: &Trace, p: &Plan) {
    for d in &p.deviations {
        para(out, &format!("The contract: {}.", d.contract()));
        para(
            out,
            &format!(
                "The kernel (known deviation {}): {}. Kernels: {} (as measured).",
                d.name(),
                d.kernel(),
                d.history()
            ),
        );
        out.push_str(" *\n");
    }
    if let CaseKind::Bug(bugs) = trace.kind {
        for h in bugs.names().filter_map(HistoricBug::named) {
            let when = match h.kernels {
                Some(k) => format!("Kernels with it: {k}."),
                None => "No released kernel had it.".to_string(),
            };
            para(
                out,
                &format!(
                    "The contract is the fixed kernel's. The historic bug {}: {}. {when}",
                    h.name, h.history
                ),
            );
            out.push_str(" *\n");
        }
    }
}
