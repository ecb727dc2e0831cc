//! What a run counted: ops, results, merge cases, coverage events, known
//! deviations and backends left out, for `check`'s tables and the
//! coverage goals ([`super::goals`]).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use uffd_vocab::{result_str, EventKind, Op, OpResult, Outcome};

use super::view::known_deviations;

/// Counts of what a run did, for the `check` table.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub sequences: u64,
    pub steps: u64,
    /// Count by op, in the order of [`Op::NAMES`] ([`Op::kind`]).
    pub ops: [u64; Op::NAMES.len()],
    /// Result name (`ok`, `EINVAL`, …) -> count.
    pub results: Counts<OpResult>,
    /// Merge case 0-8 -> count, from the backends that report them.
    pub merges: [u64; 9],
    /// `backend: op` -> how many sequences that backend left at that op,
    /// answering [`uffd_vocab::Unsupported`].
    pub unsupported: BTreeMap<String, u64>,
    /// Coverage event -> count, from the backends that report them.
    pub events: Counts<&'static str>,
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
        self.results.add(outcomes[0].result, 1);
        // Merge cases from the first backend that reports any; a merge case
        // other than 0 from any backend (none before that one reports any:
        // most steps report none, and walk the backends once, not twice).
        if let Some(i) = outcomes.iter().position(|o| !o.report.merges.is_empty()) {
            for &c in &outcomes[i].report.merges {
                self.merges[(c as usize).min(8)] += 1;
            }
            if outcomes[i..]
                .iter()
                .any(|o| o.report.merges.iter().any(|&c| c != 0))
            {
                *self.merges_after.entry(op.name()).or_default() += 1;
            }
        }
        // Coverage events: every backend's.
        for o in outcomes {
            for &e in &o.report.covered {
                self.events.add(e, 1);
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

/// Counts by name, kept by a key that is cheaper to compare than the
/// name: a coverage event by its `&'static str`'s address and length, a
/// result by the result itself. Read as a map from name to count, in the
/// order of the names.
///
/// `Stats::count` counts a result and any coverage events at every step,
/// into a table that starts empty for every chunk of sequences and holds
/// a few tens of names. A map keyed by the text compared strings at every
/// node it passed, and naming a result took a table lookup: that was most
/// of the cost of counting. Here the entries are a list in the order
/// they came, found by [`Key::same`]; only a key not found so is looked
/// for by its name ([`Key::name`]) before it makes a new entry. So each
/// name has one entry, whatever keys it comes by (equal literals need
/// not be one), and the readers see the counts only through the methods
/// below, by name: there is no second copy to keep in step.
#[derive(Clone)]
pub struct Counts<K> {
    /// Each name counted, once, by the first key it came by, with its
    /// count, in the order first counted.
    entries: Vec<(K, u64)>,
}

/// A key of [`Counts`].
pub trait Key: Copy {
    /// The same key, as cheaply as can be: keys that are not the same may
    /// still have the same name.
    fn same(self, other: Self) -> bool;
    /// The name counted.
    fn name(self) -> Cow<'static, str>;
}

/// A coverage event (or any name that is a literal): the same by address
/// and length.
impl Key for &'static str {
    fn same(self, other: Self) -> bool {
        std::ptr::eq(self, other)
    }
    fn name(self) -> Cow<'static, str> {
        Cow::Borrowed(self)
    }
}

/// A result: named `ok` or by its errno ([`result_str`]), one name per
/// result.
impl Key for OpResult {
    /// `==` by its parts: the derived `==` of `Result<(), Errno>` takes
    /// twice the instructions.
    fn same(self, other: Self) -> bool {
        match (self, other) {
            (Ok(()), Ok(())) => true,
            (Err(a), Err(b)) => a == b,
            _ => false,
        }
    }
    fn name(self) -> Cow<'static, str> {
        result_str(&self)
    }
}

impl<K> Default for Counts<K> {
    fn default() -> Self {
        Counts {
            entries: Vec::new(),
        }
    }
}

impl<K: Key> Counts<K> {
    /// Counts `n` more of the name of `key`.
    #[inline]
    pub fn add(&mut self, key: K, n: u64) {
        match self.entries.iter_mut().find(|(k, _)| k.same(key)) {
            Some((_, count)) => *count += n,
            None => self.add_by_name(key, n),
        }
    }

    /// [`Counts::add`] for a key not found by [`Key::same`]: to the entry
    /// of its name, or a new entry at the end.
    #[cold]
    fn add_by_name(&mut self, key: K, n: u64) {
        let name = key.name();
        match self.entries.iter_mut().find(|(k, _)| k.name() == name) {
            Some((_, count)) => *count += n,
            None => self.entries.push((key, n)),
        }
    }

    /// Adds every count of `other`.
    pub fn add_all(&mut self, other: &Counts<K>) {
        for &(key, n) in &other.entries {
            self.add(key, n);
        }
    }

    /// The count of `name`, if it was counted.
    pub fn get(&self, name: &str) -> Option<&u64> {
        self.entries
            .iter()
            .find(|(k, _)| k.name() == name)
            .map(|(_, count)| count)
    }

    /// Every name counted and its count, in the order of the names.
    pub fn iter(&self) -> impl Iterator<Item = (Cow<'static, str>, u64)> {
        let mut named: Vec<_> = self.entries.iter().map(|&(k, n)| (k.name(), n)).collect();
        named.sort_unstable();
        named.into_iter()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// As the map from name to count that it is, in the order of the names.
impl<K: Key> fmt::Debug for Counts<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use uffd_vocab::Errno;

    use super::*;

    /// Two `&'static str`s of the same text at different addresses.
    fn two_copies() -> (&'static str, &'static str) {
        let a: &'static str = "fault: anon_vma reused from next";
        let b: &'static str = String::from(a).leak();
        assert_ne!(a.as_ptr(), b.as_ptr());
        (a, b)
    }

    #[test]
    fn one_count_per_name_whatever_its_key() {
        let (a, b) = two_copies();
        let mut c = Counts::default();
        c.add(a, 1);
        c.add(b, 2);
        c.add(a, 4);
        c.add(&a[..5], 8);
        assert_eq!(c.get(a), Some(&7));
        assert_eq!(c.get("fault"), Some(&8));
        assert_eq!(c.get("fault:"), None);
        let all: Vec<_> = c.iter().collect();
        assert_eq!(all, [("fault".into(), 8), (a.into(), 7)]);
        assert_eq!(format!("{c:?}"), format!("{{\"fault\": 8, \"{a}\": 7}}"));
    }

    /// The counts read as a `BTreeMap` of the names counted would: the
    /// same names in the same order, the same counts, the same `Debug`;
    /// `add_all` as adding each count.
    #[test]
    fn reads_as_a_map_of_the_names() {
        let results = [
            Ok(()),
            Err(Errno::EINVAL),
            Err(Errno::Other(42)),
            Err(Errno::ENOENT),
            Err(Errno::Other(22)),
            Err(Errno::EAGAIN),
        ];
        let mut counts = Counts::default();
        let mut map: BTreeMap<String, u64> = BTreeMap::new();
        let mut other = Counts::default();
        for step in 0..200u64 {
            let r = results[(step * step % 7 % 6) as usize];
            let into = if step % 3 == 0 {
                &mut other
            } else {
                &mut counts
            };
            into.add(r, step % 4);
            *map.entry(result_str(&r).into_owned()).or_default() += step % 4;
        }
        counts.add_all(&other);
        let read: Vec<(String, u64)> = counts.iter().map(|(k, n)| (k.into(), n)).collect();
        let want: Vec<(String, u64)> = map.clone().into_iter().collect();
        assert_eq!(read, want);
        assert_eq!(format!("{counts:?}"), format!("{map:?}"));
        for name in map.keys().map(String::as_str).chain(["EPERM", "errno7"]) {
            assert_eq!(counts.get(name), map.get(name));
        }
        assert!(!counts.is_empty() && Counts::<OpResult>::default().is_empty());
    }
}
