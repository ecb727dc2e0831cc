//! The program's header comment: what it does, what the contract says, what
//! the kernel is known to do instead and which kernels do it (from the
//! model's deviations and the implementation's historic bugs), the first
//! sentence of the trace's comments, and how to build and run it.

use uffd_impl::HistoricBug;
use uffd_vocab::Op;

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

/// Text safe inside a C block comment: no `*/`, no `/*`, no control
/// character (a tab or a line break is a space, any other `?`); UTF-8 is
/// kept (a C comment may hold it: `§` stays `§`).
pub fn comment_safe(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => ' ',
            c if c.is_control() => '?',
            c => c,
        })
        .collect();
    s.replace("*/", "* /").replace("/*", "/ *")
}

/// The header's width: the kernel's coding style allows 100 columns.
const WIDTH: usize = 100;

/// Appends `text` as a comment paragraph, wrapped at [`WIDTH`] columns.
fn para(out: &mut String, text: &str) {
    out.push_str(&wrap(&comment_safe(text), " * ", " * ", WIDTH));
}

/// The most of the trace's comments the header quotes, in characters.
const QUOTE: usize = 240;

/// What the header quotes of the trace's comments: their first sentence
/// (most of the rest repeats the contract and the kernel the header states
/// already), cut at a word before [`QUOTE`] characters if longer; `found
/// by:` lines are left out (the header's build line says what they imply).
pub fn first_sentence(comments: &[String]) -> Option<String> {
    let text = comments
        .iter()
        .filter(|c| !c.starts_with("found by:"))
        .flat_map(|c| c.split_whitespace())
        .collect::<Vec<_>>()
        .join(" ");
    let end = text
        .match_indices(". ")
        .map(|(i, _)| i + 1)
        .next()
        .unwrap_or(text.len());
    let first = &text[..end];
    if first.is_empty() {
        return None;
    }
    if first.chars().count() <= QUOTE {
        return Some(first.to_string());
    }
    let mut cut = String::new();
    for word in first.split(' ') {
        if cut.chars().count() + word.chars().count() + 1 > QUOTE - 4 {
            break;
        }
        if !cut.is_empty() {
            cut.push(' ');
        }
        cut.push_str(word);
    }
    Some(format!("{cut} ..."))
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
    para(out, &format!("{name}: made by `uffd-check repro`."));
    out.push_str(" *\n");
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
    // The steps themselves are in `main`, each in words in its TAP line.
    let mut what = format!(
        "What it does: the {} steps in main, in {} pages at 0x100000000000, each result \
         checked; the layout after step {} from smaps (pages, perms, VmFlags {codes}{owner}).",
        p.steps.len(),
        p.pages,
        after.join(", ")
    );
    let watched: Vec<String> = super::emit::watch_masks(&p.steps)
        .iter()
        .enumerate()
        .filter(|(_, &m)| m != 0)
        .map(|(i, _)| (i + 1).to_string())
        .collect();
    if !watched.is_empty() {
        let faults = if super::emit::delivers_faults(&p.steps) {
            "; a page fault until it has resolved it"
        } else {
            ""
        };
        what.push_str(&format!(
            " The uffd events of step {}, as a thread reads them (the call waits until it has{faults}).",
            watched.join(", ")
        ));
    }
    if let Some(c) = consequence(p) {
        what.push(' ');
        what.push_str(&c);
    }
    para(out, &what);
    // Each paragraph on the kernels after a blank line; the trace's words
    // right after them.
    let before = out.len();
    kernels(out, trace, p);
    if let Some(quote) = first_sentence(comments) {
        if out.len() == before {
            out.push_str(" *\n");
        }
        para(out, &format!("The trace says: {quote}"));
    }
    out.push_str(" *\n");
    let build = if opts.kselftest {
        "cc -Wall -I TREE/tools/testing/selftests/mm THIS.c (beside merge.c)"
    } else {
        "cc -Wall THIS.c"
    };
    para(
        out,
        &format!(
            "Build: {build}; run as root. Exit 0: the contract holds, 1: not, 4: no \
             userfaultfd.{}",
            if p.deviations.is_empty() {
                ""
            } else if opts.strict {
                " The known deviation fails (-DSTRICT=0: a TODO)."
            } else {
                " The known deviation is a TODO (-DSTRICT=1: it fails)."
            }
        ),
    );
    out.push_str(" */\n");
}

/// The sentences on the writes that show what the finding costs a user.
fn consequence(p: &Plan) -> Option<String> {
    let mut out = Vec::new();
    for (i, s) in p.steps.iter().enumerate().filter(|(_, s)| s.consequence) {
        let Op::Fault { page, read: false } = s.op else {
            continue;
        };
        let text = if s.want.is_err() {
            format!(
                "Step {} is what a user loses: page {page}, MISSING-registered by the contract, \
                 refuses a write: EFAULT; unregistered, it lets it through.",
                i + 1
            )
        } else {
            format!(
                "Step {} is what a user sees: page {page} is unregistered by the contract, so \
                 the write succeeds; a registration left behind refuses it: EFAULT.",
                i + 1
            )
        };
        out.push(text);
    }
    (!out.is_empty()).then(|| out.join(" "))
}

/// The contract, what the kernel does instead and since when: the known
/// deviations the trace shows, and the historic bugs of its `kind:` line.
fn kernels(out: &mut String, trace: &Trace, p: &Plan) {
    for d in &p.deviations {
        out.push_str(" *\n");
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
    }
    if let CaseKind::Bug(bugs) = trace.kind {
        for h in bugs.names().filter_map(HistoricBug::named) {
            let when = match h.kernels {
                Some(k) => format!("Kernels with it: {k}."),
                None => "No released kernel had it.".to_string(),
            };
            out.push_str(" *\n");
            para(
                out,
                &format!(
                    "The contract is the fixed kernel's. The historic bug {}: {}. {when}",
                    h.name, h.history
                ),
            );
        }
    }
}
