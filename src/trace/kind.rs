//! The `kind:` line of a trace: what the case stands for, stated in the
//! trace itself so that no test guesses it from a file name or a comment.

use std::fmt;

use uffd_impl::HISTORIC_BUGS;
use uffd_model::Deviation;
use uffd_vocab::MergeCase;

/// What a case shows, from its `kind:` line (at most one, before the first
/// op). A trace without one is [`CaseKind::Plain`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CaseKind {
    /// No `kind:` line: a case like any other.
    #[default]
    Plain,
    /// `kind: fact`: a fact about the live kernel, pinned down by `expect`
    /// lines.
    Fact,
    /// `kind: merge-case N`: the implementation takes `vma_merge` case N
    /// (0 to 8) somewhere in the trace.
    MergeCase(MergeCase),
    /// `kind: deviation NAME`: the trace shows this known deviation of the
    /// kernel (a name of [`Deviation::ALL`]).
    Deviation(Deviation),
    /// `kind: bug NAME…`: the fixed kernel's side of these historic bugs
    /// (names of [`HISTORIC_BUGS`], as `--inject-bug` takes them): with any
    /// one of them put back, the trace fails.
    Bug(BugSet),
}

/// A set of historic bugs: bit `i` is `HISTORIC_BUGS[i]` (a bit set, not a
/// list, keeps a [`Trace`](super::Trace) small).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BugSet(u16);

const _: () = assert!(HISTORIC_BUGS.len() <= 16, "BugSet holds 16 bugs");

impl BugSet {
    /// The names of the set, in the order of [`HISTORIC_BUGS`].
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        HISTORIC_BUGS
            .iter()
            .enumerate()
            .filter(move |(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, h)| h.name)
    }
}

/// The highest `vma_merge` case.
pub const MAX_MERGE_CASE: MergeCase = 8;

const USAGE: &str =
    "usage: `kind: merge-case N`, `kind: deviation NAME`, `kind: bug NAME…` or `kind: fact`";

impl CaseKind {
    /// Parses the words after `kind:`; `end` is the column after the last
    /// word (where a missing word is reported). An error is a column and
    /// what is wrong there.
    pub fn parse(end: usize, args: &[(usize, &str)]) -> Result<CaseKind, (usize, String)> {
        match args {
            [(_, "fact")] => Ok(CaseKind::Fact),
            [(_, "merge-case"), (col, n)] => merge_case(*col, n),
            [(_, "deviation"), (col, name)] => deviation(*col, name),
            [(_, "bug"), names @ ..] if !names.is_empty() => bugs(names),
            [(col, _), ..] => Err((*col, USAGE.into())),
            [] => Err((end, USAGE.into())),
        }
    }
}

fn merge_case(col: usize, n: &str) -> Result<CaseKind, (usize, String)> {
    match n.parse::<MergeCase>() {
        Ok(n) if n <= MAX_MERGE_CASE => Ok(CaseKind::MergeCase(n)),
        _ => Err((
            col,
            format!("expected a merge case 0 to {MAX_MERGE_CASE}, found {n:?}"),
        )),
    }
}

fn deviation(col: usize, name: &str) -> Result<CaseKind, (usize, String)> {
    Deviation::from_name(name)
        .map(CaseKind::Deviation)
        .ok_or_else(|| {
            let known: Vec<&str> = Deviation::ALL.iter().map(|d| d.name()).collect();
            (
                col,
                format!(
                    "unknown deviation {name:?}: the known deviations are {}",
                    known.join(", ")
                ),
            )
        })
}

fn bugs(names: &[(usize, &str)]) -> Result<CaseKind, (usize, String)> {
    let mut found = BugSet::default();
    for &(col, name) in names {
        let Some(i) = HISTORIC_BUGS.iter().position(|h| h.name == name) else {
            let known: Vec<&str> = HISTORIC_BUGS.iter().map(|h| h.name).collect();
            return Err((
                col,
                format!(
                    "unknown historic bug {name:?}: the historic bugs are {}",
                    known.join(", ")
                ),
            ));
        };
        if found.0 & (1 << i) != 0 {
            return Err((col, format!("historic bug {name:?} is named twice")));
        }
        found.0 |= 1 << i;
    }
    Ok(CaseKind::Bug(found))
}

impl fmt::Display for CaseKind {
    /// The words after `kind:` (nothing for a plain case).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaseKind::Plain => Ok(()),
            CaseKind::Fact => write!(f, "fact"),
            CaseKind::MergeCase(n) => write!(f, "merge-case {n}"),
            CaseKind::Deviation(d) => write!(f, "deviation {}", d.name()),
            CaseKind::Bug(bugs) => {
                write!(f, "bug {}", bugs.names().collect::<Vec<_>>().join(" "))
            }
        }
    }
}
