//! What a run counted: ops, results, merge cases, coverage events, known
//! deviations and backends left out, for `check`'s tables and the
//! coverage goals ([`super::goals`]).

use std::collections::BTreeMap;

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
    pub results: BTreeMap<String, u64>,
    /// Merge case 0-8 -> count, from the backends that report them.
    pub merges: [u64; 9],
    /// `backend: op` -> how many sequences that backend left at that op,
    /// answering [`uffd_vocab::Unsupported`].
    pub unsupported: BTreeMap<String, u64>,
    /// Coverage event -> count, from the backends that report them.
    pub events: BTreeMap<&'static str, u64>,
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
        let result = result_str(&outcomes[0].result);
        match self.results.get_mut(result.as_ref()) {
            Some(n) => *n += 1,
            None => {
                self.results.insert(result.into_owned(), 1);
            }
        }
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
                *self.events.entry(e).or_default() += 1;
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

    pub fn add(&mut self, other: &Stats) {
        self.sequences += other.sequences;
        self.steps += other.steps;
        for (a, b) in self.ops.iter_mut().zip(other.ops) {
            *a += b;
        }
        for (k, n) in &other.results {
            *self.results.entry(k.clone()).or_default() += n;
        }
        for (a, b) in self.merges.iter_mut().zip(other.merges) {
            *a += b;
        }
        for (k, n) in &other.unsupported {
            *self.unsupported.entry(k.clone()).or_default() += n;
        }
        for (k, n) in &other.events {
            *self.events.entry(k).or_default() += n;
        }
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
