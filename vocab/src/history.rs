//! Which kernels do something: the one way the project writes it down for a
//! known deviation (the model's `Deviation`) and a historic bug (the
//! implementation's `HISTORIC_BUGS`), so that a kernel's release can pick
//! the rules and bugs that describe it.

use std::fmt;

/// A kernel series, `major.minor`: 6.1, 6.12, 7.3. A release string such as
/// `6.18.0-1-amd64` or `7.3.0-rc4` belongs to its series.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Series {
    pub major: u16,
    pub minor: u16,
}

impl Series {
    pub const fn new(major: u16, minor: u16) -> Series {
        Series { major, minor }
    }

    /// The series of a release as `uname -r` prints it (`6.1.0-40-amd64`,
    /// `6.18.7`, `7.3.0-rc4+`), or `None` when it does not start with
    /// `MAJOR.MINOR`.
    pub fn of_release(release: &str) -> Option<Series> {
        let mut parts = release.splitn(3, '.');
        let major = parts.next()?.parse().ok()?;
        let minor: String = parts
            .next()?
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        Some(Series::new(major, minor.parse().ok()?))
    }
}

impl fmt::Display for Series {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Which kernels have a behaviour, and the commits that brought it and took
/// it away, where known. Stable backports are not tracked: a fix is
/// counted from the first series that had it when it was released.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct History {
    /// The first series that has it; `None`: as far back as anyone looked.
    pub since: Option<Series>,
    /// The first series without it; `None`: not fixed.
    pub fixed: Option<Series>,
    /// The commit that brought it, where known (12 hex digits).
    pub introduced_by: Option<&'static str>,
    /// The commit that fixed it, where known.
    pub fixed_by: Option<&'static str>,
    /// Where it came back after `fixed`: the first series that has it
    /// again, and the first without it again (`None`: not fixed again);
    /// `None`: it did not come back.
    pub again: Option<(Series, Option<Series>)>,
}

impl History {
    /// Does a kernel of `series` have it?
    pub fn has(&self, series: Series) -> bool {
        let first = self.since.is_none_or(|s| s <= series) && self.fixed.is_none_or(|f| series < f);
        first
            || self
                .again
                .is_some_and(|(a, f)| a <= series && f.is_none_or(|f| series < f))
    }

    /// Every kernel from `since` on, commits not known.
    pub const fn since(since: Series) -> History {
        History {
            since: Some(since),
            fixed: None,
            introduced_by: None,
            fixed_by: None,
            again: None,
        }
    }

    /// Every kernel up to `fixed` (not included), commits not known.
    pub const fn until(fixed: Series) -> History {
        History {
            since: None,
            fixed: Some(fixed),
            introduced_by: None,
            fixed_by: None,
            again: None,
        }
    }
}

impl fmt::Display for History {
    /// `6.1 to 6.3 (since 0503ea8f5ba7, fixed by 7e7757876f25)`,
    /// `since 6.13, unfixed`, `to 6.15 (fixed by 879bca0a2c4f)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.since, self.fixed) {
            (Some(s), Some(x)) => write!(f, "{s} until {x}")?,
            (Some(s), None) => write!(f, "since {s}, unfixed")?,
            (None, Some(x)) => write!(f, "until {x}")?,
            (None, None) => write!(f, "every kernel looked at, unfixed")?,
        }
        match self.again {
            Some((a, Some(x))) => write!(f, ", again from {a} until {x}")?,
            Some((a, None)) => write!(f, ", again since {a}")?,
            None => {}
        }
        let commits: Vec<String> = [("since", self.introduced_by), ("fixed by", self.fixed_by)]
            .iter()
            .filter_map(|(what, c)| c.map(|c| format!("{what} {c}")))
            .collect();
        if !commits.is_empty() {
            write!(f, " ({})", commits.join(", "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_belong_to_their_series() {
        for (release, want) in [
            ("6.1.0-40-amd64", Series::new(6, 1)),
            ("6.18.7", Series::new(6, 18)),
            ("7.3.0-rc4+", Series::new(7, 3)),
            ("6.12", Series::new(6, 12)),
        ] {
            assert_eq!(Series::of_release(release), Some(want), "{release}");
        }
        assert_eq!(Series::of_release("linux"), None);
        assert!(Series::new(6, 9) < Series::new(6, 12));
        assert!(Series::new(6, 18) < Series::new(7, 0));
    }

    #[test]
    fn a_history_says_which_series_have_it() {
        let h = History {
            since: Some(Series::new(6, 1)),
            fixed: Some(Series::new(6, 4)),
            introduced_by: Some("0503ea8f5ba7"),
            fixed_by: None,
            again: None,
        };
        assert!(!h.has(Series::new(6, 0)));
        assert!(h.has(Series::new(6, 1)) && h.has(Series::new(6, 3)));
        assert!(!h.has(Series::new(6, 4)));
        assert_eq!(h.to_string(), "6.1 until 6.4 (since 0503ea8f5ba7)");
        let open = History {
            since: None,
            fixed: None,
            introduced_by: None,
            fixed_by: None,
            again: None,
        };
        assert!(open.has(Series::new(3, 0)) && open.has(Series::new(9, 9)));
        let back = History {
            again: Some((Series::new(7, 2), None)),
            ..History::until(Series::new(6, 16))
        };
        let has = |minor: u16| back.has(Series::new(minor / 100, minor % 100));
        assert!(has(601) && has(615) && !has(616) && !has(701) && has(702) && has(800));
        assert_eq!(back.to_string(), "until 6.16, again since 7.2");
        let twice = History {
            again: Some((Series::new(6, 16), Some(Series::new(7, 3)))),
            ..History::until(Series::new(6, 12))
        };
        let has = |minor: u16| twice.has(Series::new(minor / 100, minor % 100));
        assert!(has(601) && !has(612) && has(616) && has(702) && !has(703));
        assert_eq!(twice.to_string(), "until 6.12, again from 6.16 until 7.3");
    }
}
