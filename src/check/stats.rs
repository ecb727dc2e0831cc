//! What a run counted: ops, results, merge cases, coverage events, known
//! deviations and backends left out, for `check`'s tables and the
//! coverage goals ([`super::goals`]).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use uffd_vocab::{result_str, EventKind, Op, Outcome};

use super::view::known_deviations;

/// Counts of what a run did, for the `check` table.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub sequences: u64,
    pub steps: u64,
    /// Count by op, in the order of [`Op::NAMES`] ([`Op::kind`]).
    pub ops: [u64; Op::NAMES.len()],
    /// Result name (`ok`, `EINVAL`, …) -> count.
    pub results: NameCounts,
    /// Merge case 0-8 -> count, from the backends that report them.
    pub merges: [u64; 9],
    /// `backend: op` -> how many sequences that backend left at that op,
    /// answering [`uffd_vocab::Unsupported`].
    pub unsupported: BTreeMap<String, u64>,
    /// Coverage event -> count, from the backends that report them.
    pub events: NameCounts,
    /// (op name, uffd event name: a fault's is `missing fault`, `wp
    /// fault` or `minor fault`) -> how many such events the ops sent
    /// (from the first backend: every backend sends the same, or the step
    /// failed `same-events`).
    pub uffd_events: BTreeMap<(&'static str, &'static str), u64>,
    /// Op name -> how many of its steps took a merge case other than 0.
    pub merges_after: BTreeMap<&'static str, u64>,
    /// Known deviation rule -> how many steps it changed (from the first
    /// backend that reports deviations).
    pub deviations: BTreeMap<&'static str, u64>,
}

impl Stats {
    /// How many steps ran the op named `name`.
    pub fn op_count(&self, name: &str) -> u64 {
        Op::NAMES
            .iter()
            .position(|&n| n == name)
            .map_or(0, |i| self.ops[i])
    }

    /// Counts one step that passed.
    pub fn count(&mut self, op: &Op, outcomes: &[Outcome]) {
        self.steps += 1;
        self.ops[op.kind()] += 1;
        self.results.add(result_str(&outcomes[0].result), 1);
        // Merge cases from the first backend that reports any.
        if let Some(o) = outcomes.iter().find(|o| !o.report.merges.is_empty()) {
            for &c in &o.report.merges {
                self.merges[(c as usize).min(8)] += 1;
            }
        }
        if outcomes
            .iter()
            .any(|o| o.report.merges.iter().any(|&c| c != 0))
        {
            *self.merges_after.entry(op.name()).or_default() += 1;
        }
        // Coverage events: every backend's.
        for o in outcomes {
            for &e in &o.report.covered {
                self.events.add_static(e, 1);
            }
        }
        for e in &outcomes[0].events {
            let name = match e.what {
                EventKind::Fault { flags, .. } if flags & EventKind::WP != 0 => "wp fault",
                EventKind::Fault { flags, .. } if flags & EventKind::MINOR != 0 => "minor fault",
                EventKind::Fault { .. } => "missing fault",
                what => what.name(),
            };
            *self.uffd_events.entry((op.name(), name)).or_default() += 1;
        }
        for &d in known_deviations(outcomes) {
            *self.deviations.entry(d).or_default() += 1;
        }
    }

    /// Adds the counts of `other` (another job's, another chunk's).
    pub fn add(&mut self, other: &Stats) {
        self.sequences += other.sequences;
        self.steps += other.steps;
        for (a, b) in self.ops.iter_mut().zip(other.ops) {
            *a += b;
        }
        self.results.add_all(&other.results);
        for (a, b) in self.merges.iter_mut().zip(other.merges) {
            *a += b;
        }
        for (k, n) in &other.unsupported {
            *self.unsupported.entry(k.clone()).or_default() += n;
        }
        self.events.add_all(&other.events);
        for (k, n) in &other.uffd_events {
            *self.uffd_events.entry(*k).or_default() += n;
        }
        for (k, n) in &other.merges_after {
            *self.merges_after.entry(k).or_default() += n;
        }
        for (k, n) in &other.deviations {
            *self.deviations.entry(k).or_default() += n;
        }
    }
}

/// Counts by name, for names that are mostly `&'static str`s (coverage
/// events, result names), read as a map from name to count in the order
/// of the names.
///
/// `Stats::count` counts a name or more at every step, into a table that
/// starts empty for every chunk of sequences and holds a few tens of
/// names. A map keyed by the text compared strings at every node it
/// passed, which was most of the cost of counting; a hash map costs a
/// hash at every count and its growing at every chunk. Here the names are
/// a list in the order they came, and a `&'static str` is found in it by
/// its address and length ([`NameCounts::add_static`]): no string compare
/// but for a name not counted from that address before. Each name has one
/// entry, whatever addresses its text comes at (equal literals need not
/// be one), and the readers see the counts only through the methods
/// below, which sort the names: there is no second copy to keep in step.
#[derive(Clone, Default)]
pub struct NameCounts {
    /// Each name counted, once, with its count, in the order first
    /// counted.
    entries: Vec<(Cow<'static, str>, u64)>,
}

impl NameCounts {
    /// Counts `n` more of `name`: found by its address and length where
    /// the entry was made from this very `&'static str`, else by its text.
    #[inline]
    pub fn add_static(&mut self, name: &'static str, n: u64) {
        let same = |(k, _): &&mut (Cow<'static, str>, u64)| matches!(k, Cow::Borrowed(k) if std::ptr::eq(*k, name));
        match self.entries.iter_mut().find(same) {
            Some((_, count)) => *count += n,
            None => self.add_by_text(Cow::Borrowed(name), n),
        }
    }

    /// Counts `n` more of `name` ([`NameCounts::add_static`] when it is
    /// borrowed).
    #[inline]
    pub fn add(&mut self, name: Cow<'static, str>, n: u64) {
        match name {
            Cow::Borrowed(name) => self.add_static(name, n),
            Cow::Owned(_) => self.add_by_text(name, n),
        }
    }

    /// Adds every count of `other`.
    pub fn add_all(&mut self, other: &NameCounts) {
        for (name, n) in &other.entries {
            self.add(name.clone(), *n);
        }
    }

    /// Counts `n` more of `name`, found by its text; a new entry at the
    /// end if it was never counted.
    fn add_by_text(&mut self, name: Cow<'static, str>, n: u64) {
        match self.entries.iter_mut().find(|(k, _)| *k == name) {
            Some((_, count)) => *count += n,
            None => self.entries.push((name, n)),
        }
    }

    /// The count of `name`, if it was counted.
    pub fn get(&self, name: &str) -> Option<&u64> {
        self.entries
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, count)| count)
    }

    /// Every name counted and its count, in the order of the names.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        let mut sorted: Vec<(&str, u64)> = self.entries.iter().map(|(k, n)| (&**k, *n)).collect();
        sorted.sort_unstable_by_key(|&(k, _)| k);
        sorted.into_iter()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// As the map from name to count that it is, in the order of the names.
impl fmt::Debug for NameCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two `&'static str`s of the same text at different addresses.
    fn two_copies() -> (&'static str, &'static str) {
        let a: &'static str = "fault: anon_vma reused from next";
        let b: &'static str = String::from(a).leak();
        assert_ne!(a.as_ptr(), b.as_ptr());
        (a, b)
    }

    #[test]
    fn one_count_per_name_whatever_its_address() {
        let (a, b) = two_copies();
        let mut c = NameCounts::default();
        c.add_static(a, 1);
        c.add_static(b, 2);
        c.add(Cow::Owned(a.to_string()), 4);
        c.add_static(&a[..5], 8);
        assert_eq!(c.get(a), Some(&7));
        assert_eq!(c.get("fault"), Some(&8));
        assert_eq!(c.get("fault:"), None);
        let all: Vec<(&str, u64)> = c.iter().collect();
        assert_eq!(all, [("fault", 8), (a, 7)]);
        assert_eq!(format!("{c:?}"), format!("{{\"fault\": 8, \"{a}\": 7}}"));
    }

    /// The counts read as a `BTreeMap` of the names counted would: the
    /// same names in the same order, the same counts, the same `Debug`;
    /// `add_all` as adding each count.
    #[test]
    fn reads_as_a_map_of_the_names() {
        let (a, b) = two_copies();
        let names: [Cow<'static, str>; 6] = [
            "ok".into(),
            "EINVAL".into(),
            Cow::Owned("errno42".into()),
            "ENOENT".into(),
            a.into(),
            b.into(),
        ];
        let mut counts = NameCounts::default();
        let mut map: BTreeMap<String, u64> = BTreeMap::new();
        let mut other = NameCounts::default();
        for step in 0..200u64 {
            let name = &names[(step * step % 7 % 6) as usize];
            let into = if step % 3 == 0 {
                &mut other
            } else {
                &mut counts
            };
            into.add(name.clone(), step % 4);
            *map.entry(name.to_string()).or_default() += step % 4;
        }
        counts.add_all(&other);
        let read: Vec<(String, u64)> = counts.iter().map(|(k, n)| (k.into(), n)).collect();
        let want: Vec<(String, u64)> = map.clone().into_iter().collect();
        assert_eq!(read, want);
        assert_eq!(format!("{counts:?}"), format!("{map:?}"));
        for name in &names {
            assert_eq!(counts.get(name), map.get(name.as_ref()));
        }
        assert!(!counts.is_empty() && NameCounts::default().is_empty());
    }
}
