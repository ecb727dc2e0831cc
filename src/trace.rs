//! Trace files: a sequence of ops, one per line, that replays on every
//! backend. Traces store operations, not seeds, so a saved case survives any
//! change of generator.
//!
//! ```text
//! # [0,10) registered next to [10,20) plain; unregister [5,10)
//! kind: merge-case 4
//! arena 20
//! map 0 20 rw- anon
//! register 0 0 10 missing
//! unregister 0 5 5
//! expect ok
//! expect [0,5) rw- anon@0 account maywrite uffd=missing ctx=0
//! expect [5,20) rw- anon@5 account maywrite
//! ```
//!
//! - `#` starts a comment, anywhere on a line.
//! - `arena N` (once, before the first op) sets the arena size in pages;
//!   without it the arena is [`DEFAULT_PAGES`] pages.
//! - `kind: …` (once, before the first op) says what the case shows, for
//!   the tests that need to know ([`CaseKind`]): `kind: merge-case N`
//!   (the implementation takes `vma_merge` case N), `kind: deviation NAME`
//!   (a known deviation of the kernel), `kind: bug NAME…` (the fixed side
//!   of historic bugs, by their `--inject-bug` names) or `kind: fact` (a
//!   fact about the live kernel). Without it a case is
//!   [`CaseKind::Plain`].
//! - `expect` lines after an op state what that step must give on every
//!   backend: `expect ok` or `expect EINVAL` for the result, and either
//!   `expect empty` or one `expect [S,E) …` line per VMA, in address order,
//!   for the whole layout (the form `replay` prints); and/or
//!   `expect draw AAAABBBB..CC`, the layout drawn one letter a page, `.` a
//!   hole: it states only where VMAs begin and end (any letters will do,
//!   so the LKML thread's `PPPPNNNN` reads as it should).
//!
//! Every error names its place: `file:line:col: what is wrong`.

use std::fmt;
use std::path::Path;

use std::io::Read;

use uffd_vocab::{Layout, Op, OpResult, Page};

mod kind;
mod parse;

pub use kind::{BugSet, CaseKind, MAX_MERGE_CASE};

/// The line without its comment: from the first `#` that starts a word (so
/// `shmem#0@0` in an `expect` line is not a comment).
pub fn strip_comment(line: &str) -> &str {
    let mut prev_space = true;
    for (i, c) in line.char_indices() {
        if c == '#' && prev_space {
            return &line[..i];
        }
        prev_space = c.is_whitespace();
    }
    line
}

/// The arena size of a trace with no `arena` line.
pub const DEFAULT_PAGES: Page = 64;
/// The largest trace file read, in bytes.
pub const MAX_TRACE_BYTES: u64 = 16 << 20;
/// The longest line of a trace, in bytes.
pub const MAX_LINE_BYTES: usize = 4096;

/// One op of a trace with what the trace expects of it.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub op: Op,
    /// 1-based line of the op in its file.
    pub line: usize,
    pub expect_result: Option<OpResult>,
    pub expect_layout: Option<Layout>,
    /// `expect draw ROW`: the VMA boundaries and holes, one letter a page.
    pub expect_draw: Option<String>,
    /// `expect uffd-wp PAGES|none`: the pages whose page table entry has
    /// the uffd-wp bit (without it, the step's uffd-wp bits are not
    /// expected to be anything).
    pub expect_wp: Option<Vec<Page>>,
    /// `expect ptes ENTRIES|none`: the step's page table entries, every
    /// one ([`uffd_vocab::ptes_text`]; without it they are not checked).
    pub expect_ptes: Option<Vec<(Page, uffd_vocab::PteState)>>,
    /// `expect events EVENTS|none`: the uffd events the step raised, in
    /// order ([`uffd_vocab::events_text`]; without it they are not
    /// checked).
    pub expect_events: Option<Vec<uffd_vocab::Event>>,
}

/// A parsed trace.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    /// What the case shows (its `kind:` line).
    pub kind: CaseKind,
    pub pages: Page,
    pub steps: Vec<Step>,
}

/// A malformed trace: where, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceError {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub msg: String,
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.msg)
        } else {
            write!(f, "{}:{}:{}: {}", self.file, self.line, self.col, self.msg)
        }
    }
}

impl std::error::Error for TraceError {}

impl Trace {
    /// A trace of plain ops with no expectations.
    pub fn from_ops(pages: Page, ops: &[Op]) -> Trace {
        Trace {
            kind: CaseKind::Plain,
            pages,
            steps: ops
                .iter()
                .enumerate()
                .map(|(i, op)| Step {
                    op: *op,
                    line: i + 2,
                    expect_result: None,
                    expect_layout: None,
                    expect_draw: None,
                    expect_wp: None,
                    expect_ptes: None,
                    expect_events: None,
                })
                .collect(),
        }
    }

    pub fn ops(&self) -> Vec<Op> {
        self.steps.iter().map(|s| s.op).collect()
    }

    /// Reads and parses a trace file; `-` is standard input. At most
    /// [`MAX_TRACE_BYTES`] are read, line by line, and no line may be longer
    /// than [`MAX_LINE_BYTES`], so any input (`/dev/zero`, a binary) ends
    /// in a located error with bounded memory.
    pub fn load(path: &Path) -> Result<Trace, TraceError> {
        let name = if path == Path::new("-") {
            "<stdin>".to_string()
        } else {
            path.display().to_string()
        };
        let err = |line: usize, msg: String| TraceError {
            file: name.clone(),
            line,
            col: if line == 0 { 0 } else { 1 },
            msg,
        };
        let input: Box<dyn std::io::Read> = if path == Path::new("-") {
            Box::new(std::io::stdin().lock())
        } else {
            Box::new(
                std::fs::File::open(path)
                    .map_err(|e| err(0, format!("cannot read the trace: {e}")))?,
            )
        };
        let mut input = std::io::BufReader::new(input.take(MAX_TRACE_BYTES + 1));
        let mut text = String::new();
        let mut line = Vec::new();
        for n in 1.. {
            line.clear();
            let got = std::io::BufRead::read_until(
                &mut (&mut input).take(MAX_LINE_BYTES as u64 + 1),
                b'\n',
                &mut line,
            )
            .map_err(|e| err(0, format!("cannot read the trace: {e}")))?;
            if got == 0 {
                break;
            }
            if text.len() + got > MAX_TRACE_BYTES as usize {
                return Err(err(
                    n,
                    format!("the trace is longer than {MAX_TRACE_BYTES} bytes"),
                ));
            }
            if got > MAX_LINE_BYTES && line.last() != Some(&b'\n') {
                return Err(err(
                    n,
                    format!("the line is longer than {MAX_LINE_BYTES} bytes"),
                ));
            }
            let s = std::str::from_utf8(&line).map_err(|e| TraceError {
                file: name.clone(),
                line: n,
                col: e.valid_up_to() + 1,
                msg: "the line is not UTF-8 text".into(),
            })?;
            text.push_str(s);
        }
        Trace::parse(&text, &name)
    }

    /// Parses trace text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Trace, TraceError> {
        parse::parse(text, file)
    }

    /// The trace as text, ready to save under `cases/`.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        if self.kind != CaseKind::Plain {
            out.push_str(&format!("kind: {}\n", self.kind));
        }
        out.push_str(&format!("arena {}\n", self.pages));
        for s in &self.steps {
            out.push_str(&s.op.to_string());
            out.push('\n');
            if let Some(r) = &s.expect_result {
                out.push_str(&format!("expect {}\n", uffd_vocab::result_name(r)));
            }
            if let Some(d) = &s.expect_draw {
                out.push_str(&format!("expect draw {d}\n"));
            }
            if let Some(wp) = &s.expect_wp {
                out.push_str(&format!("expect uffd-wp {}\n", uffd_vocab::wp_text(wp)));
            }
            if let Some(e) = &s.expect_events {
                out.push_str(&format!("expect events {}\n", uffd_vocab::events_text(e)));
            }
            if let Some(ptes) = &s.expect_ptes {
                out.push_str(&format!("expect ptes {}\n", uffd_vocab::ptes_text(ptes)));
            }
            if let Some(l) = &s.expect_layout {
                if l.is_empty() {
                    out.push_str("expect empty\n");
                }
                for v in l.lines() {
                    out.push_str(&format!("expect {v}\n"));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_starts_a_comment_only_at_the_start_of_a_word() {
        let t = Trace::parse(
            "arena 8 # eight\nmap 0 4 rw- shmem #map it\nexpect [0,4) rw- shmem#0@0 shared mayshare maywrite\n",
            "t",
        )
        .unwrap();
        assert_eq!(t.steps[0].expect_layout.as_ref().unwrap().len(), 1);
        assert_eq!(strip_comment("a b#c # d"), "a b#c ");
    }

    #[test]
    fn an_empty_trace_or_an_overlapping_expectation_is_an_error() {
        for text in ["", "# only a comment\n", "arena 4\n"] {
            let e = Trace::parse(text, "e.trace").unwrap_err();
            assert!(e.msg.contains("no op"), "{e}");
        }
        let e = Trace::parse(
            "map 0 4 rw- anon\nexpect [0,4) rw- anon@0 account maywrite\nexpect [0,4) rw- anon@0 account maywrite\n",
            "o.trace",
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("o.trace:1:1: the expected layout"),
            "{e}"
        );
    }

    #[test]
    fn parses_ops_expectations_and_comments() {
        let t = Trace::parse(
            "# a comment\narena 20\nmap 0 20 rw- anon # trailing\nregister 0 0 10 missing\n\
             unregister 0 5 5\nexpect ok\n\
             expect [0,5) rw- anon@0 account maywrite uffd=missing ctx=0\n\
             expect [5,20) rw- anon@5 account maywrite\n",
            "t",
        )
        .unwrap();
        assert_eq!(t.pages, 20);
        assert_eq!(t.steps.len(), 3);
        assert_eq!(t.steps[2].expect_result, Some(Ok(())));
        assert_eq!(t.steps[2].expect_layout.as_ref().unwrap().len(), 2);
        // to_text and parse are inverses (up to line numbers)
        let again = Trace::parse(&t.to_text(), "t2").unwrap();
        assert_eq!(again.to_text(), t.to_text());
        assert_eq!(again.ops(), t.ops());
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let e = Trace::parse("arena 20\nmap 0 20 rw- anon\nunmap 3 x\n", "c.trace").unwrap_err();
        assert_eq!((e.line, e.col), (3, 9));
        assert!(e.to_string().starts_with("c.trace:3:9: LEN"), "{e}");

        let e = Trace::parse("arena 20\nmap 10 20 rw- anon\n", "c.trace").unwrap_err();
        assert_eq!((e.line, e.col), (2, 1));
        assert!(e.msg.contains("outside the arena"), "{e}");

        let e = Trace::parse("expect ok\n", "c").unwrap_err();
        assert!(e.msg.contains("before any op"));

        let e = Trace::parse("map 0 1 rw- anon\nexpect [0,1) rw- anon@0 bogus\n", "c").unwrap_err();
        assert_eq!((e.line, e.col), (2, 25));

        let e = Trace::parse("map 0 1 rw- anon\nexpect EWHAT\n", "c").unwrap_err();
        assert_eq!((e.line, e.col), (2, 8));

        let e = Trace::parse("arena 4\nmap 0 1 rw- anon\nexpect draw AA-A\n", "c").unwrap_err();
        assert_eq!((e.line, e.col), (3, 15));
        let e = Trace::parse("arena 4\nmap 0 1 rw- anon\nexpect draw AAA\n", "c").unwrap_err();
        assert!(e.msg.contains("3 columns but the arena has 4 pages"), "{e}");

        let e = Trace::parse("map 0 1 rw- anon\narena 4\n", "c").unwrap_err();
        assert!(e.msg.contains("before the first op"));

        let e = Trace::load(Path::new("/nonexistent/x.trace")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/x.trace"), "{e}");
    }

    #[test]
    fn the_kind_line_is_parsed_validated_and_printed_back() {
        let parse = |line: &str| {
            let t = Trace::parse(&format!("{line}\narena 4\nmap 0 4 rw- anon\n"), "k").unwrap();
            assert!(t.to_text().starts_with(&format!("{line}\narena 4\n")));
            assert_eq!(Trace::parse(&t.to_text(), "k2").unwrap().kind, t.kind);
            t.kind
        };
        assert_eq!(parse("kind: fact"), CaseKind::Fact);
        assert_eq!(parse("kind: merge-case 4"), CaseKind::MergeCase(4));
        assert_eq!(
            parse("kind: deviation fork-keeps-parent-boundaries"),
            CaseKind::Deviation(uffd_model::Deviation::ForkKeepsBoundaries)
        );
        let CaseKind::Bug(bugs) = parse("kind: bug unadjusted-pgoff split-first") else {
            panic!("not a bug kind")
        };
        assert_eq!(
            bugs.names().collect::<Vec<_>>(),
            ["unadjusted-pgoff", "split-first"]
        );
        let plain = Trace::parse("map 0 4 rw- anon\n", "p").unwrap();
        assert_eq!(plain.kind, CaseKind::Plain);
        assert!(plain.to_text().starts_with("arena "));
        for (text, at, what) in [
            ("kind: merge-case 9\n", (1, 18), "merge case 0 to 8"),
            (
                "kind: deviation nope\n",
                (1, 17),
                "unknown deviation \"nope\"",
            ),
            (
                "kind: bug stale-prev nope\n",
                (1, 22),
                "unknown historic bug",
            ),
            ("kind: bug stale-prev stale-prev\n", (1, 22), "named twice"),
            ("kind: frob\n", (1, 7), "usage: `kind:"),
            ("kind:\n", (1, 6), "usage: `kind:"),
            (
                "kind: fact\nkind: fact\n",
                (2, 1),
                "once, before the first op",
            ),
            (
                "map 0 4 rw- anon\nkind: fact\n",
                (2, 1),
                "once, before the first op",
            ),
        ] {
            let e = Trace::parse(text, "k").unwrap_err();
            assert_eq!((e.line, e.col), at, "{e}");
            assert!(e.msg.contains(what), "{e}");
        }
    }
}
