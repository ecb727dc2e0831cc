//! The text form of a VMA, read back: `[S,E) PROT BACKING@PGOFF FLAGS…
//! [anon_vma=N] [uffd=MODE] [ctx=C]`, with `?` for what a backend does not
//! observe. An error is (0-based column, message), so the caller can point
//! at the place in its own line.

use super::{Backing, Unobserved, VmFlags, Vma};
use crate::op::{words, Mode, Page, Prot};

type Error = (usize, String);

impl Vma {
    /// Parses the text form. Returns the VMA and the fields it leaves
    /// unknown (`anon@?`); an error is (0-based column within `s`, message).
    pub fn parse(s: &str) -> Result<(Vma, Unobserved), Error> {
        let s_trim = s.trim_start();
        let lead = s.len() - s_trim.len();
        let s = s_trim;
        let (start, end, close) = bounds(s, lead)?;
        let rest_off = lead + close + 1;
        let w = words(&s[close + 1..]);
        let at = |i: usize| rest_off + w[i].0 - 1;
        if w.len() < 2 {
            return Err((
                rest_off,
                "a VMA needs `PROT BACKING@PGOFF` after its bounds".into(),
            ));
        }
        let prot: Prot = w[0].1.parse().map_err(|m| (at(0), m))?;
        let (backing, pgoff, mut unobserved) = backing_at(w[1].1, at(1))?;
        let mut v = Vma {
            start,
            end,
            prot,
            backing,
            pgoff,
            flags: VmFlags::default(),
            uffd: Mode::NONE,
            ctx: None,
            anon_vma: None,
        };
        for (i, &(_, t)) in w.iter().enumerate().skip(2) {
            word(&mut v, &mut unobserved, t, at(i))?;
        }
        Ok((v, unobserved))
    }
}

/// `[START,END)`: the bounds, and where the `)` is.
fn bounds(s: &str, lead: usize) -> Result<(Page, Page, usize), Error> {
    let bad_bounds = || (lead, "a VMA starts `[START,END)`".to_string());
    if !s.starts_with('[') {
        return Err(bad_bounds());
    }
    let close = s.find(')').ok_or_else(bad_bounds)?;
    let (a, b) = s[1..close].split_once(',').ok_or_else(bad_bounds)?;
    let num = |t: &str, at: usize| {
        t.trim()
            .parse::<Page>()
            .map_err(|_| (lead + at, format!("expected a page number, found {t:?}")))
    };
    let start = num(a, 1)?;
    let end = num(b, 2 + a.len())?;
    if end <= start {
        return Err((lead, format!("empty or reversed VMA [{start},{end})")));
    }
    Ok((start, end, close))
}

/// `BACKING@PGOFF` (the word at column `at`): the backing, the page offset,
/// and whether the offset is unknown (`anon@?`).
fn backing_at(word: &str, at: usize) -> Result<(Backing, Page, Unobserved), Error> {
    let (backing, pgoff) = word
        .split_once('@')
        .ok_or((at, format!("expected BACKING@PGOFF, found {word:?}")))?;
    let bad_backing = || {
        (
            at,
            format!("bad backing {backing:?}: expected `anon`, `shmem#N` or `file=F`"),
        )
    };
    let backing = if backing == "anon" {
        Backing::Anon
    } else if let Some(n) = backing.strip_prefix("shmem#") {
        Backing::Shmem(n.parse().map_err(|_| bad_backing())?)
    } else if let Some(n) = backing.strip_prefix("file=") {
        Backing::File(n.parse().map_err(|_| bad_backing())?)
    } else {
        return Err(bad_backing());
    };
    if pgoff == "?" && backing == Backing::Anon {
        return Ok((backing, 0, Unobserved::ANON_PGOFF));
    }
    let pgoff = pgoff.parse().map_err(|_| {
        (
            at,
            format!(
                "bad page offset {pgoff:?}: a number (`?` only for `anon`, where it is unknown)"
            ),
        )
    })?;
    Ok((backing, pgoff, Unobserved::NONE))
}

/// One word after `BACKING@PGOFF` (at column `at`): a flag, `anon_vma=N`,
/// `uffd=MODE` or `ctx=C`.
fn word(v: &mut Vma, unobserved: &mut Unobserved, t: &str, at: usize) -> Result<(), Error> {
    if let Some(a) = t.strip_prefix("anon_vma=") {
        if a == "?" {
            *unobserved = unobserved.union(Unobserved::ANON_VMA);
        } else {
            v.anon_vma = Some(a.parse().map_err(|_| {
                (
                    at,
                    format!("bad anon_vma {a:?}: a number, or `?` for unknown"),
                )
            })?);
        }
    } else if let Some(m) = t.strip_prefix("uffd=") {
        v.uffd = m.parse().map_err(|e| (at, e))?;
    } else if let Some(c) = t.strip_prefix("ctx=") {
        v.ctx = Some(c.parse().map_err(|_| (at, format!("bad context {c:?}")))?);
    } else if let Some((bit, _, _)) = VmFlags::NAMES.iter().find(|(_, n, _)| *n == t) {
        v.flags.set(*bit, true);
    } else {
        let names: Vec<&str> = VmFlags::NAMES.iter().map(|(_, n, _)| *n).collect();
        return Err((
            at,
            format!(
                "unknown word {t:?}: expected a flag ({}), `anon_vma=N`, `uffd=MODE` or `ctx=C`",
                names.join(", ")
            ),
        ));
    }
    Ok(())
}
