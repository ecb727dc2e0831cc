//! Parsing trace text, one function per kind of line: `arena`, `kind:`,
//! `expect` (a result, `empty`, a VMA, a drawing) and ops.

use uffd_vocab::{words, Layout, Op, Page, Unobserved, Vma, MAX_PAGES};

use super::{strip_comment, CaseKind, Step, Trace, TraceError, DEFAULT_PAGES};

/// The words of a line with their 1-based columns.
type Words<'a> = [(usize, &'a str)];

/// A trace being read, line by line.
struct Parser<'a> {
    file: &'a str,
    pages: Option<Page>,
    kind: Option<CaseKind>,
    steps: Vec<Step>,
    /// The layout lines of the step being read, if it has any, and the
    /// fields they leave unknown (`anon@?`).
    vmas: Vec<Vma>,
    unknown: Unobserved,
    open_layout: bool,
}

/// An error at `line:col` of `file`.
fn at(file: &str, line: usize, col: usize, msg: impl Into<String>) -> TraceError {
    TraceError {
        file: file.to_string(),
        line,
        col,
        msg: msg.into(),
    }
}

/// Parses trace text; `file` names it in errors.
pub(super) fn parse(text: &str, file: &str) -> Result<Trace, TraceError> {
    let mut p = Parser {
        file,
        pages: None,
        kind: None,
        steps: Vec::new(),
        vmas: Vec::new(),
        unknown: Unobserved::NONE,
        open_layout: false,
    };
    for (i, raw) in text.lines().enumerate() {
        p.line(i + 1, strip_comment(raw))?;
    }
    p.finish()
}

impl Parser<'_> {
    fn err(&self, line: usize, col: usize, msg: impl Into<String>) -> TraceError {
        at(self.file, line, col, msg)
    }

    /// Line `n`, without its comment.
    fn line(&mut self, n: usize, line: &str) -> Result<(), TraceError> {
        let w = words(line);
        let Some(&(col0, first)) = w.first() else {
            return Ok(());
        };
        match first {
            "arena" => self.arena(n, &w),
            "kind:" => self.kind(n, line, &w),
            "expect" => self.expect(n, line, &w),
            _ => self.op(n, line, col0),
        }
    }

    /// `arena PAGES`.
    fn arena(&mut self, n: usize, w: &Words) -> Result<(), TraceError> {
        let col0 = w[0].0;
        if self.pages.is_some() || !self.steps.is_empty() {
            return Err(self.err(n, col0, "`arena` must come once, before the first op"));
        }
        let (col, arg) = match w {
            [_, arg] => *arg,
            _ => return Err(self.err(n, col0, "usage: `arena PAGES`")),
        };
        let p: Page = arg
            .parse()
            .map_err(|_| self.err(n, col, format!("expected a page count, found {arg:?}")))?;
        if p == 0 || p > MAX_PAGES {
            return Err(self.err(
                n,
                col,
                format!("arena of {p} pages: it must be 1 to {MAX_PAGES} pages"),
            ));
        }
        self.pages = Some(p);
        Ok(())
    }

    /// `kind: …` (see [`CaseKind`]).
    fn kind(&mut self, n: usize, line: &str, w: &Words) -> Result<(), TraceError> {
        if self.kind.is_some() || !self.steps.is_empty() {
            return Err(self.err(n, w[0].0, "`kind:` must come once, before the first op"));
        }
        let end = line.trim_end().len() + 1;
        let kind = CaseKind::parse(end, &w[1..]).map_err(|(col, msg)| self.err(n, col, msg))?;
        self.kind = Some(kind);
        Ok(())
    }

    /// `expect …`: a drawing, a VMA of the layout, or a result or `empty`.
    fn expect(&mut self, n: usize, line: &str, w: &Words) -> Result<(), TraceError> {
        let col0 = w[0].0;
        if self.steps.is_empty() {
            return Err(self.err(n, col0, "`expect` before any op"));
        }
        let Some(&(col1, what)) = w.get(1) else {
            return Err(self.err(
                n,
                col0 + 6,
                "`expect` needs a result (`ok`, `EINVAL`…), `empty` or a VMA `[S,E) …`",
            ));
        };
        if what == "draw" {
            self.expect_draw(n, w)
        } else if what == "uffd-wp" {
            self.expect_wp(n, w)
        } else if what == "ptes" {
            self.expect_ptes(n, w)
        } else if what == "events" {
            self.expect_events(n, w)
        } else if what.starts_with('[') {
            self.expect_vma(n, &line[col1 - 1..], col1)
        } else if w.len() > 2 {
            Err(self.err(n, w[2].0, "unexpected words after the expectation"))
        } else if what == "empty" {
            self.expect_empty(n, col1)
        } else {
            self.expect_result(n, what, col1)
        }
    }

    /// The step the `expect` lines are about (there is one: checked first).
    fn last_step(&mut self) -> &mut Step {
        self.steps.last_mut().expect("an op before `expect`")
    }

    /// `expect draw ROW`.
    fn expect_draw(&mut self, n: usize, w: &Words) -> Result<(), TraceError> {
        let col1 = w[1].0;
        let (col2, row) = match w {
            [_, _, row] => *row,
            _ => {
                return Err(self.err(
                    n,
                    col1,
                    "usage: `expect draw ROW`, one letter a page and `.` a hole",
                ))
            }
        };
        let arena = self.pages.unwrap_or(DEFAULT_PAGES);
        if let Some((i, ch)) = row
            .char_indices()
            .find(|(_, c)| !(c.is_ascii_alphabetic() || *c == '.'))
        {
            return Err(self.err(
                n,
                col2 + i,
                format!("{ch:?} in a drawing: use letters for VMAs and `.` for holes"),
            ));
        }
        if row.len() as Page != arena {
            return Err(self.err(
                n,
                col2,
                format!(
                    "the drawing has {} columns but the arena has {arena} pages",
                    row.len()
                ),
            ));
        }
        if self.last_step().expect_draw.is_some() {
            return Err(self.err(n, col1, "this step's drawing was already given"));
        }
        self.last_step().expect_draw = Some(row.to_string());
        Ok(())
    }

    /// `expect uffd-wp PAGES|none`: the pages with the uffd-wp bit.
    fn expect_wp(&mut self, n: usize, w: &Words) -> Result<(), TraceError> {
        let col = w[1].0;
        let rest: Vec<&str> = w[2..].iter().map(|(_, s)| *s).collect();
        let pages = uffd_vocab::parse_wp(&rest.join(" "))
            .filter(|p| !p.is_empty() || rest == ["none"])
            .ok_or_else(|| {
                self.err(
                    n,
                    col,
                    "usage: `expect uffd-wp PAGES`, page numbers in the arena, or `none`",
                )
            })?;
        if pages.windows(2).any(|p| p[0] >= p[1]) {
            return Err(self.err(n, col, "uffd-wp pages must be in increasing order"));
        }
        if self.last_step().expect_wp.is_some() {
            return Err(self.err(n, col, "this step's uffd-wp pages were already given"));
        }
        self.last_step().expect_wp = Some(pages);
        Ok(())
    }

    /// `expect ptes ENTRIES|none`: every page table entry of the step.
    fn expect_ptes(&mut self, n: usize, w: &Words) -> Result<(), TraceError> {
        let col = w[1].0;
        let rest: Vec<&str> = w[2..].iter().map(|(_, s)| *s).collect();
        if rest.is_empty() {
            return Err(self.err(
                n,
                col,
                "usage: `expect ptes PAGE:STATE…` (like `0-3:a 5:f+wp 7:a=8`) or `none`",
            ));
        }
        let ptes = uffd_vocab::parse_ptes(&rest.join(" ")).map_err(|e| self.err(n, col, e))?;
        if ptes.windows(2).any(|p| p[0].0 >= p[1].0) {
            return Err(self.err(
                n,
                col,
                "page table entries must be in increasing page order",
            ));
        }
        if ptes.last().is_some_and(|(p, _)| Some(*p) >= self.pages) {
            return Err(self.err(n, col, "a page table entry lies outside the arena"));
        }
        if self.last_step().expect_ptes.is_some() {
            return Err(self.err(n, col, "this step's page table entries were already given"));
        }
        self.last_step().expect_ptes = Some(ptes);
        Ok(())
    }

    /// `expect events EVENTS|none`: the step's uffd events, in order.
    fn expect_events(&mut self, n: usize, w: &Words) -> Result<(), TraceError> {
        let col = w[1].0;
        let rest: Vec<&str> = w[2..].iter().map(|(_, s)| *s).collect();
        if rest.is_empty() {
            return Err(self.err(
                n,
                col,
                "usage: `expect events CTX:EVENT…` (like `0:unmap[4,8) 1:remove[2,3)`) or `none`",
            ));
        }
        let events = uffd_vocab::parse_events(&rest.join(" ")).map_err(|e| self.err(n, col, e))?;
        let arena = self.pages.unwrap_or(DEFAULT_PAGES);
        let outside = |p: Page| p > arena;
        let beyond = events.iter().any(|e| match e.what {
            uffd_vocab::EventKind::Fork => false,
            uffd_vocab::EventKind::Fault { page, .. } => outside(page + 1),
            uffd_vocab::EventKind::Remap { from, to, len } => {
                outside(from + len) || outside(to + len)
            }
            uffd_vocab::EventKind::Remove { end, .. }
            | uffd_vocab::EventKind::Unmap { end, .. } => outside(end),
        });
        if beyond {
            return Err(self.err(n, col, "an event's range lies outside the arena"));
        }
        if self.last_step().expect_events.is_some() {
            return Err(self.err(n, col, "this step's events were already given"));
        }
        self.last_step().expect_events = Some(events);
        Ok(())
    }

    /// `expect [S,E) …`: one VMA of the step's layout, from column `col1`.
    fn expect_vma(&mut self, n: usize, rest: &str, col1: usize) -> Result<(), TraceError> {
        let (v, u) = Vma::parse(rest).map_err(|(c, m)| self.err(n, col1 + c, m))?;
        self.unknown = self.unknown.union(u);
        if self.last_step().expect_layout.is_some() {
            return Err(self.err(n, col1, "this step's layout was already given"));
        }
        self.open_layout = true;
        self.vmas.push(v);
        Ok(())
    }

    /// `expect empty`: the step leaves no VMA.
    fn expect_empty(&mut self, n: usize, col1: usize) -> Result<(), TraceError> {
        if self.open_layout || self.last_step().expect_layout.is_some() {
            return Err(self.err(n, col1, "this step's layout was already given"));
        }
        self.last_step().expect_layout = Some(Layout::default().project(Unobserved::PTES));
        Ok(())
    }

    /// `expect ok` or `expect ERRNO`.
    fn expect_result(&mut self, n: usize, what: &str, col1: usize) -> Result<(), TraceError> {
        let r = uffd_vocab::parse_result(what).ok_or_else(|| {
            self.err(
                n,
                col1,
                format!(
                    "expected `ok`, an errno like `EINVAL`, `empty` or `[S,E) …`, \
                     found {what:?}"
                ),
            )
        })?;
        if self.last_step().expect_result.is_some() {
            return Err(self.err(n, col1, "this step's result was already given"));
        }
        self.last_step().expect_result = Some(r);
        Ok(())
    }

    /// Closes the layout the `expect [S,E) …` lines of the last step gave.
    fn finish_layout(&mut self) {
        if self.open_layout {
            let vmas = std::mem::take(&mut self.vmas);
            let unknown = self.unknown;
            if let Some(last) = self.steps.last_mut() {
                // The page table entries are `expect ptes`'s, not the layout's.
                last.expect_layout = Some(Layout::observed(vmas, unknown.union(Unobserved::PTES)));
            }
            self.unknown = Unobserved::NONE;
            self.open_layout = false;
        }
    }

    /// An op, its first word at `col0`.
    fn op(&mut self, n: usize, line: &str, col0: usize) -> Result<(), TraceError> {
        self.finish_layout();
        let op: Op = line.parse().map_err(|e: uffd_vocab::ParseError| {
            let mut msg = e.msg;
            if e.col == col0 && msg.starts_with("unknown operation") {
                msg.push_str(" (or a trace line: `arena PAGES`, `expect …`, `# comment`)");
            }
            self.err(n, e.col, msg)
        })?;
        op.validate(self.pages.unwrap_or(DEFAULT_PAGES))
            .map_err(|m| self.err(n, col0, m))?;
        self.steps.push(Step {
            op,
            line: n,
            expect_result: None,
            expect_layout: None,
            expect_draw: None,
            expect_wp: None,
            expect_ptes: None,
            expect_events: None,
        });
        Ok(())
    }

    /// The trace, once every line is read: it has an op, and no expected
    /// layout overlaps itself or leaves the arena.
    fn finish(mut self) -> Result<Trace, TraceError> {
        self.finish_layout();
        let pages = self.pages.unwrap_or(DEFAULT_PAGES);
        if self.steps.is_empty() {
            return Err(self.err(0, 0, "the trace has no op (an empty or truncated file?)"));
        }
        for s in &self.steps {
            if let Some(l) = &s.expect_layout {
                self.check_layout(s.line, l, pages)?;
            }
        }
        Ok(Trace {
            kind: self.kind.unwrap_or_default(),
            pages,
            steps: self.steps,
        })
    }

    /// An expected layout (of the op at `line`) is well formed in the arena.
    fn check_layout(&self, line: usize, l: &Layout, pages: Page) -> Result<(), TraceError> {
        if let Some(w) = l.vmas().windows(2).find(|w| w[0].end > w[1].start) {
            return Err(self.err(
                line,
                1,
                format!(
                    "the expected layout of this op has overlapping VMAs {} and {}",
                    w[0], w[1]
                ),
            ));
        }
        if let Some(v) = l.vmas().iter().find(|v| v.end > pages) {
            return Err(self.err(
                line,
                1,
                format!("expected VMA {v} is outside the arena of {pages} pages"),
            ));
        }
        Ok(())
    }
}
