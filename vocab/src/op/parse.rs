//! The text form of an op: one trace line, parsed into an [`Op`], with the
//! 1-based column of the word that is wrong in every error.

use std::fmt;
use std::str::FromStr;

use super::{Fill, Op, Page, Remap};

/// A parse error inside one trace line: the 1-based column of the word that
/// is wrong and what is wrong with it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ParseError {
    pub col: usize,
    pub msg: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.col, self.msg)
    }
}

impl std::error::Error for ParseError {}

/// Splits a line into words with their 1-based columns.
pub fn words(line: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, ch) in line.char_indices() {
        if ch.is_whitespace() {
            if let Some(s) = start.take() {
                out.push((s + 1, &line[s..i]));
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        out.push((s + 1, &line[s..]));
    }
    out
}

impl FromStr for Op {
    type Err = ParseError;

    /// Parses one trace line (without its comment).
    fn from_str(line: &str) -> Result<Op, ParseError> {
        let w = words(line);
        let Some(&(col0, name)) = w.first() else {
            return Err(ParseError {
                col: 1,
                msg: "empty line: expected an operation".into(),
            });
        };
        let (arity, usage) = arity(name, w.len()).ok_or_else(|| ParseError {
            col: col0,
            msg: format!(
                "unknown operation {name:?}: expected map, unmap, protect, register, \
                 unregister, close, fault, madvise, mlock, munlock, mremap, open, fork, \
                 writeprotect, copy, zeropage, continue, poison or move"
            ),
        })?;
        if w.len() != arity {
            let col = if w.len() > arity {
                w[arity].0
            } else {
                line.trim_end().len() + 1
            };
            return Err(ParseError {
                col,
                msg: format!(
                    "`{name}` takes {} argument(s), found {}: usage `{usage}`",
                    arity - 1,
                    w.len() - 1
                ),
            });
        }
        match name {
            "map" | "unmap" | "protect" | "madvise" => mapping(name, &w),
            "register" | "unregister" | "close" | "open" | "writeprotect" => uffd(name, &w),
            "mlock" | "munlock" => lock(name, &w),
            "fault" => Ok(Op::Fault {
                page: field(&w, 1, "PAGE", num)?,
                read: keyword(&w, 2, "read")?,
            }),
            "copy" | "zeropage" | "continue" | "poison" => fill(name, &w),
            "move" => Ok(Op::Move {
                ctx: field(&w, 1, "CTX", ctx)?,
                src: field(&w, 2, "SRC", num)?,
                start: field(&w, 3, "DST", num)?,
                len: field(&w, 4, "LEN", num)?,
                holes: keyword(&w, 5, "holes")?,
            }),
            "mremap" => mremap(&w),
            "fork" => Ok(Op::Fork),
            _ => unreachable!("names were matched by arity"),
        }
    }
}

/// How many words the op `name` takes (itself included) in a line of `len`
/// words, and its usage; `None` for an unknown op.
fn arity(name: &str, len: usize) -> Option<(usize, &'static str)> {
    Some(match name {
        "map" => (5, "map START LEN PROT KIND"),
        "unmap" => (3, "unmap START LEN"),
        "protect" => (4, "protect START LEN PROT"),
        "register" => (5, "register CTX START LEN MODE"),
        "unregister" => (4, "unregister CTX START LEN"),
        "close" => (2, "close CTX"),
        "fault" if len == 3 => (3, "fault PAGE read"),
        "fault" => (2, "fault PAGE [read]"),
        "copy" if len == 5 => (5, "copy CTX START LEN wp"),
        "copy" => (4, "copy CTX START LEN [wp]"),
        "continue" if len == 5 => (5, "continue CTX START LEN wp"),
        "continue" => (4, "continue CTX START LEN [wp]"),
        "zeropage" => (4, "zeropage CTX START LEN"),
        "poison" => (4, "poison CTX START LEN"),
        "move" if len == 6 => (6, "move CTX SRC DST LEN holes"),
        "move" => (5, "move CTX SRC DST LEN [holes]"),
        "madvise" => (4, "madvise START LEN ADVICE"),
        "mlock" if len == 4 => (4, "mlock START LEN onfault"),
        "mlock" => (3, "mlock START LEN [onfault]"),
        "munlock" => (3, "munlock START LEN"),
        "mremap" if len == 6 => (6, "mremap START LEN NEWLEN DST dontunmap"),
        "mremap" if len == 5 => (5, "mremap START LEN NEWLEN DST"),
        "mremap" => (4, "mremap START LEN NEWLEN [DST [dontunmap]]"),
        "open" => (3, "open CTX FEATURES"),
        "fork" => (1, "fork"),
        "writeprotect" => (5, "writeprotect CTX START LEN on|off"),
        _ => return None,
    })
}

/// Word `i`, converted by `conv`; an error names the field `what`.
fn field<T>(
    w: &[(usize, &str)],
    i: usize,
    what: &str,
    conv: impl Fn(&str) -> Result<T, String>,
) -> Result<T, ParseError> {
    let (col, s) = w[i];
    conv(s).map_err(|msg| ParseError {
        col,
        msg: format!("{what}: {msg}"),
    })
}

/// An optional last word that must be `word` when it is there.
fn keyword(w: &[(usize, &str)], i: usize, word: &str) -> Result<bool, ParseError> {
    match w.get(i) {
        None => Ok(false),
        Some(&(_, s)) if s == word => Ok(true),
        Some(&(col, other)) => Err(ParseError {
            col,
            msg: format!("expected `{word}` or nothing, found {other:?}"),
        }),
    }
}

/// A page number or count.
fn num(s: &str) -> Result<Page, String> {
    s.parse::<Page>()
        .map_err(|_| format!("expected a page count in decimal, found {s:?}"))
}

/// A uffd context number.
fn ctx(s: &str) -> Result<u8, String> {
    s.parse::<u8>()
        .map_err(|_| format!("expected a context number, found {s:?}"))
}

/// `on` or `off`.
fn on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("expected `on` or `off`, found {s:?}")),
    }
}

/// An argument in its own text form (`Prot`, `Kind`, `Mode`…).
fn parsed<T: FromStr<Err = String>>(s: &str) -> Result<T, String> {
    s.parse()
}

/// `map`, `unmap`, `protect` and `madvise`: a range and what to do with it.
fn mapping(name: &str, w: &[(usize, &str)]) -> Result<Op, ParseError> {
    let start = field(w, 1, "START", num)?;
    let len = field(w, 2, "LEN", num)?;
    Ok(match name {
        "map" => Op::Map {
            start,
            len,
            prot: field(w, 3, "PROT", parsed)?,
            kind: field(w, 4, "KIND", parsed)?,
        },
        "unmap" => Op::Unmap { start, len },
        "protect" => Op::Protect {
            start,
            len,
            prot: field(w, 3, "PROT", parsed)?,
        },
        _ => Op::Madvise {
            start,
            len,
            advice: field(w, 3, "ADVICE", parsed)?,
        },
    })
}

/// `register`, `unregister`, `close`, `open` and `writeprotect`: a uffd
/// context first.
fn uffd(name: &str, w: &[(usize, &str)]) -> Result<Op, ParseError> {
    let ctx = field(w, 1, "CTX", ctx)?;
    Ok(match name {
        "register" => Op::Register {
            ctx,
            start: field(w, 2, "START", num)?,
            len: field(w, 3, "LEN", num)?,
            mode: field(w, 4, "MODE", parsed)?,
        },
        "unregister" => Op::Unregister {
            ctx,
            start: field(w, 2, "START", num)?,
            len: field(w, 3, "LEN", num)?,
        },
        "close" => Op::Close { ctx },
        "writeprotect" => Op::WriteProtect {
            ctx,
            start: field(w, 2, "START", num)?,
            len: field(w, 3, "LEN", num)?,
            on: field(w, 4, "on|off", on_off)?,
        },
        _ => Op::Open {
            ctx,
            features: field(w, 2, "FEATURES", parsed)?,
        },
    })
}

/// `mlock START LEN [onfault]` and `munlock START LEN`.
fn lock(name: &str, w: &[(usize, &str)]) -> Result<Op, ParseError> {
    let start = field(w, 1, "START", num)?;
    let len = field(w, 2, "LEN", num)?;
    Ok(if name == "mlock" {
        Op::Mlock {
            start,
            len,
            onfault: keyword(w, 3, "onfault")?,
        }
    } else {
        Op::Munlock { start, len }
    })
}

/// `copy|zeropage|continue|poison CTX START LEN [wp]`.
fn fill(name: &str, w: &[(usize, &str)]) -> Result<Op, ParseError> {
    Ok(Op::Fill {
        how: name.parse::<Fill>().expect("names were matched by arity"),
        ctx: field(w, 1, "CTX", ctx)?,
        start: field(w, 2, "START", num)?,
        len: field(w, 3, "LEN", num)?,
        wp: keyword(w, 4, "wp")?,
    })
}

/// `mremap START LEN NEWLEN [DST [dontunmap]]`.
fn mremap(w: &[(usize, &str)]) -> Result<Op, ParseError> {
    Ok(Op::Mremap {
        start: field(w, 1, "START", num)?,
        len: field(w, 2, "LEN", num)?,
        newlen: field(w, 3, "NEWLEN", num)?,
        to: match w.get(4) {
            None => Remap::InPlace,
            Some(_) if keyword(w, 5, "dontunmap")? => Remap::DontUnmap(field(w, 4, "DST", num)?),
            Some(_) => Remap::Fixed(field(w, 4, "DST", num)?),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse_are_inverses() {
        for line in [
            "map 0 20 rw- anon",
            "map 3 1 --x anon-noreserve",
            "map 0 4 r-- shmem",
            "map 1 2 rwx file=2@7",
            "map 1 2 rw- shared-file=0@0",
            "map 1 2 r-- shared-ro-file=3@9",
            "unmap 5 5",
            "protect 0 5 ---",
            "register 0 0 10 missing",
            "register 2 0 10 missing+wp+minor",
            "register 1 0 10 0",
            "register 1 0 10 9",
            "unregister 3 5 5",
            "close 1",
            "fault 7",
            "fault 7 read",
            "copy 0 2 3",
            "copy 1 2 3 wp",
            "zeropage 0 2 3",
            "continue 3 0 1 wp",
            "poison 0 0 16",
            "move 0 1 8 4",
            "move 2 8 1 4 holes",
            "madvise 0 4 dontneed",
            "madvise 0 4 dontfork",
            "madvise 2 1 unmergeable",
            "mlock 0 4",
            "mlock 1 2 onfault",
            "munlock 0 16",
            "mremap 0 4 8",
            "mremap 0 4 2 8",
            "mremap 0 4 4 8 dontunmap",
            "open 1 event-remap",
            "open 0 none",
            "fork",
        ] {
            let op: Op = line.parse().unwrap();
            assert_eq!(op.to_string(), line);
        }
    }

    #[test]
    fn parse_errors_name_the_column() {
        let e = "map 0 x rw- anon".parse::<Op>().unwrap_err();
        assert_eq!(e.col, 7);
        assert!(e.msg.contains("LEN"), "{e}");
        let e = "frob 1".parse::<Op>().unwrap_err();
        assert_eq!(e.col, 1);
        let e = "register 0 0 10 missing extra".parse::<Op>().unwrap_err();
        assert_eq!(e.col, 25);
        let e = "map 0 1 rw- file=1".parse::<Op>().unwrap_err();
        assert_eq!(e.col, 13);
        let e = "close".parse::<Op>().unwrap_err();
        assert_eq!(e.col, 6);
    }
}
