//! The known deviations (rules 21 to 23): where the live kernel departs
//! from the contract the rest of the model states. Everything the model
//! knows of them is here, and only here is it asked whether a rule
//! applies: the table [`KNOWN`] (name, rule, texts, the kernels that have
//! it), the kernel's behaviour that each rule puts in the place of the
//! contract's (one hook each, called where the contract does that step),
//! and the report of the rules that changed a step.

use std::ops::Range;

use uffd_vocab::{History, Layout, Mode, Op, OpResult, Page, Series};

use crate::page_model::{PageModel, PageState};

/// A place where the live kernel departs from the contract the model
/// states. Each is a small rule of the model, on by default (the model then
/// says what the kernel does), off with `strict` (the model says what the
/// contract promises, and checking against the kernel finds the
/// difference). A step where a rule changed the model's outcome reports the
/// rule's [`Deviation::name`] ([`uffd_vocab::StepReport::deviations`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Deviation {
    /// Rule 21.
    MremapOldRegistration,
    /// Rule 22.
    ForkKeepsBoundaries,
    /// Rule 23.
    DontUnmapUnlocksVma,
}

/// What the model knows of one deviation.
struct Known {
    deviation: Deviation,
    /// Its number in the model's rules (the crate docs, and
    /// docs/kernel-rules.md).
    rule: u8,
    name: &'static str,
    contract: &'static str,
    kernel: &'static str,
    /// The kernels that have it, as measured (qemu, Debian kernels 6.1 to
    /// 7.3; commits not known).
    history: History,
}

/// Every known deviation, one entry each.
const KNOWN: [Known; 3] = [
    Known {
        deviation: Deviation::MremapOldRegistration,
        rule: 21,
        name: "mremap-merges-with-old-registration",
        contract: "a move by a ctx without UFFD_FEATURE_EVENT_REMAP unregisters exactly the moved \
                   pages, which then merge with equal neighbours",
        kernel: "copy_vma merges the moved VMA at its destination with its OLD registration, \
                 then the registration of the merged VMA is cleared: a neighbour registered \
                 with the same ctx and mode silently loses its registration, and an equal \
                 unregistered neighbour stays apart",
        // 6.12 behaves as the contract, 6.16 to 7.2 have it, 7.3 behaves as
        // the contract again. 6.13 to 6.15 were not available to measure:
        // 6.16 is the first series seen with it, not necessarily the first
        // that has it.
        history: History {
            since: Some(Series::new(6, 16)),
            fixed: Some(Series::new(7, 3)),
            introduced_by: None,
            fixed_by: None,
        },
    },
    Known {
        deviation: Deviation::ForkKeepsBoundaries,
        rule: 22,
        name: "fork-keeps-parent-boundaries",
        contract: "the child has the parent's memory without DONTFORK ranges, uffd bits and \
                   locks, maximally merged",
        kernel: "dup_mmap copies VMA by VMA and clears the uffd and lock bits without \
                 merging: VMAs that only those bits kept apart stay apart in the child",
        // Every kernel measured, 6.1 to 7.3.
        history: History {
            since: None,
            fixed: None,
            introduced_by: None,
            fixed_by: None,
        },
    },
    Known {
        deviation: Deviation::DontUnmapUnlocksVma,
        rule: 23,
        name: "dontunmap-unlocks-the-whole-vma",
        contract: "mremap with MREMAP_DONTUNMAP leaves the source range mapped, empty and \
                   unlocked, and changes nothing outside it",
        kernel: "dontunmap_complete clears VM_LOCKED and VM_LOCKONFAULT on the whole source \
                 VMA, also outside the moved range, without splitting or merging it",
        // Every kernel measured up to 7.1; gone from 7.2.
        history: History {
            since: None,
            fixed: Some(Series::new(7, 2)),
            introduced_by: None,
            fixed_by: None,
        },
    },
];

impl Deviation {
    pub const ALL: [Deviation; 3] = [
        Deviation::MremapOldRegistration,
        Deviation::ForkKeepsBoundaries,
        Deviation::DontUnmapUnlocksVma,
    ];

    fn known(self) -> &'static Known {
        KNOWN
            .iter()
            .find(|k| k.deviation == self)
            .expect("every deviation is in the table")
    }

    pub fn name(self) -> &'static str {
        self.known().name
    }

    /// Its number in the model's rules.
    pub fn rule(self) -> u8 {
        self.known().rule
    }

    /// Its bit in a set of rules.
    pub fn bit(self) -> u8 {
        1 << (self as u8)
    }

    /// The rule of this name.
    pub fn from_name(name: &str) -> Option<Deviation> {
        Deviation::ALL.into_iter().find(|d| d.name() == name)
    }

    /// What the contract says.
    pub fn contract(self) -> &'static str {
        self.known().contract
    }

    /// What the kernel does instead.
    pub fn kernel(self) -> &'static str {
        self.known().kernel
    }

    /// The kernels that have it.
    pub fn history(self) -> History {
        self.known().history
    }
}

impl PageModel {
    /// Is the deviation rule `d` on?
    fn applies(&self, d: Deviation) -> bool {
        self.rules_off & d.bit() == 0
    }

    /// Reports that the rule `d` took part in this step.
    fn took_part(&mut self, d: Deviation) {
        self.deviations.push(d.name());
    }

    /// One step (see [`PageModel::step_rules`]). A rule that took part
    /// stays in the step's report only when the step, run as the contract
    /// says (every rule off) on a copy of the model from before it, gives
    /// another result or layout: a rule that changed nothing reports
    /// nothing.
    pub(crate) fn step_reporting_deviations(&mut self, op: &Op) -> (OpResult, Layout) {
        self.deviations.clear();
        let may_deviate = matches!(op, Op::Mremap { .. } | Op::Fork)
            && Deviation::ALL.iter().any(|d| self.applies(*d));
        let before = may_deviate.then(|| self.clone());
        let got = self.step_rules(op);
        if let Some(mut contract) = before.filter(|_| !self.deviations.is_empty()) {
            contract.rules_off = u8::MAX;
            if contract.step_rules(op) == got {
                self.deviations.clear();
            }
        }
        got
    }

    /// Marks `range` as a VMA of its own: boundaries at both of its ends
    /// (rule 20).
    fn keep_apart(&mut self, range: Range<usize>) {
        for i in [range.start, range.end] {
            if let Some(Some(p)) = self.pages.get_mut(i) {
                p.apart = true;
            }
        }
    }

    /// Merges around the `copy` of a move (rule 18), which has lost the
    /// registration of the pages it copies (`old`'s) when `lost`. The
    /// contract: rule 5. Rule 21: the copy merges with its old
    /// registration, then the VMA it is in loses its registration, whole
    /// (with whatever it merged with), and stays apart from its neighbours.
    pub(crate) fn merge_copy(
        &mut self,
        copy: Range<usize>,
        changed: &[usize],
        old: PageState,
        lost: bool,
    ) {
        let rule = Deviation::MremapOldRegistration;
        if !lost || old.uffd.is_empty() || !self.applies(rule) {
            self.merge_around(changed);
            return;
        }
        for p in self.pages[copy.clone()].iter_mut().flatten() {
            p.uffd = old.uffd;
            p.ctx = old.ctx;
        }
        self.merge_around(changed);
        let merged = self.vma_of(copy.start);
        for p in self.pages[merged.clone()].iter_mut().flatten() {
            p.uffd = Mode::NONE;
            p.ctx = None;
        }
        self.keep_apart(merged);
        self.took_part(rule);
    }

    /// Rule 23, where DONTUNMAP leaves the source of a move in `vma`
    /// (rule 18): the whole VMA is unlocked, without split or merge; it
    /// loses its anon_vma when `whole` (all of it moved). Returns whether
    /// the rule is on: if not, the contract leaves the source itself.
    pub(crate) fn dontunmap_unlocks_whole_vma(&mut self, vma: Range<usize>, whole: bool) -> bool {
        let rule = Deviation::DontUnmapUnlocksVma;
        if !self.applies(rule) {
            return false;
        }
        let before = self.pages[vma.clone()].to_vec();
        self.unlock_source(vma.clone(), vma.clone(), whole);
        if self.pages[vma.clone()] != before[..] {
            self.keep_apart(vma);
            self.took_part(rule);
        }
        true
    }

    /// Rule 22, on the fork `child` whose pages are copies of the VMAs of
    /// `parent` (rule 19): the child keeps every boundary of the parent.
    /// Returns whether the rule is on: if not, the contract merges the
    /// child.
    pub(crate) fn fork_keeps_boundaries(&mut self, child: &mut PageModel, parent: &Layout) -> bool {
        let rule = Deviation::ForkKeepsBoundaries;
        if !self.applies(rule) {
            return false;
        }
        for vma in parent.vmas() {
            for i in vma.start as usize..vma.end as usize {
                if let Some(p) = child.pages[i].as_mut() {
                    p.apart = i as Page == vma.start;
                }
            }
        }
        self.took_part(rule);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{last_step, run};
    use uffd_vocab::Backend;

    /// With the DONTUNMAP rule off, the unlocked source merges by rule 5
    /// around the pages it changed, and only those: a boundary another rule
    /// keeps elsewhere stays.
    #[test]
    fn the_contract_of_dontunmap_merges_only_around_what_it_changed() {
        let trace = "map 0 4 rw- anon\nmap 12 4 rw- anon\nregister 0 0 4 missing\n\
                     mremap 0 4 4 8\nmap 17 2 rw- anon\nmlock 17 1\nmremap 17 1 1 0 dontunmap";
        let mut m = PageModel::with_rules_off(20, &[Deviation::DontUnmapUnlocksVma]);
        let mut layout = Layout::default();
        for l in trace.lines() {
            layout = m.step(&l.trim().parse::<Op>().unwrap()).unwrap().layout;
        }
        let bounds: Vec<(Page, Page)> = layout.vmas().iter().map(|v| (v.start, v.end)).collect();
        assert_eq!(bounds, [(0, 1), (8, 12), (12, 16), (17, 19)]);
    }

    /// Each deviation rule is turned off on its own: with the fork rule off
    /// the mremap rule still says what the kernel does, and the other way.
    #[test]
    fn deviation_rules_are_independent() {
        let mremap = "map 0 4 rw- anon\nmap 12 4 rw- anon\nregister 0 0 4 missing\n\
                      register 0 12 4 missing\nmremap 0 4 4 8";
        let fork = "map 8 8 rw- anon\nregister 0 12 4 wp\nfork";
        let last = |off: &[Deviation], trace: &str| {
            let (layout, events) = last_step(off, trace);
            (layout.len(), events)
        };
        let kernel = Deviation::MremapOldRegistration.name();
        assert_eq!(last(&[], mremap), (1, vec![kernel]));
        assert_eq!(
            last(&[Deviation::ForkKeepsBoundaries], mremap),
            (1, vec![kernel])
        );
        assert_eq!(
            last(&[Deviation::MremapOldRegistration], mremap),
            (2, vec![])
        );
        let kernel = Deviation::ForkKeepsBoundaries.name();
        assert_eq!(
            last(&[Deviation::MremapOldRegistration], fork),
            (2, vec![kernel])
        );
        assert_eq!(last(&[Deviation::ForkKeepsBoundaries], fork), (1, vec![]));
        // A rule named twice (`--strict-rule R --strict-rule R`) is off.
        let twice = [Deviation::ForkKeepsBoundaries; 2];
        assert_eq!(last(&twice, fork), (1, vec![]));
    }

    /// A rule that applied but changed nothing (a registered VMA moved with
    /// no neighbour to merge with) reports no deviation.
    #[test]
    fn a_rule_that_changes_nothing_reports_nothing() {
        let (m, r) = run(16, "map 0 4 rw- anon\nregister 0 0 4 missing");
        assert!(r.iter().all(|r| r.is_ok()));
        let mut m = m;
        let o = m.step(&"mremap 0 4 4 8".parse::<Op>().unwrap()).unwrap();
        assert_eq!(o.result, Ok(()));
        assert_eq!(o.layout.lines(), ["[8,12) rw- anon@8 account maywrite"]);
        assert!(o.report.deviations.is_empty(), "{:?}", o.report.deviations);
    }

    #[test]
    fn deviation_names_and_texts() {
        let mut names = std::collections::BTreeSet::new();
        for d in Deviation::ALL {
            assert!(names.insert(d.name()), "{} twice", d.name());
            assert_eq!(Deviation::from_name(d.name()), Some(d));
            assert_ne!(d.contract(), d.kernel());
            assert!(d.contract().len() > 40 && d.kernel().len() > 40);
            assert_eq!(d.bit().count_ones(), 1);
        }
        let bits = Deviation::ALL.iter().fold(0, |b, d| b | d.bit());
        assert_eq!(bits.count_ones() as usize, Deviation::ALL.len());
        // The table has each deviation once, and the rules 21 to 23.
        assert_eq!(KNOWN.len(), Deviation::ALL.len());
        let rules: Vec<u8> = Deviation::ALL.iter().map(|d| d.rule()).collect();
        assert_eq!(rules, [21, 22, 23]);
    }

    /// The kernels measured: 6.1 to 7.3.
    #[test]
    fn the_kernels_that_have_each_deviation() {
        let has = |d: Deviation, minor: u16| d.history().has(Series::new(minor / 100, minor % 100));
        for v in [601, 612, 616, 618, 700, 701, 702, 703] {
            assert!(has(Deviation::ForkKeepsBoundaries, v), "{v}");
            assert_eq!(has(Deviation::DontUnmapUnlocksVma, v), v <= 701, "{v}");
            let mremap = (616..=702).contains(&v);
            assert_eq!(has(Deviation::MremapOldRegistration, v), mremap, "{v}");
        }
    }

    /// With its deviation rules off the model states the contract; each
    /// known deviation's minimal case, as the contract answers it.
    #[test]
    fn the_contract_of_each_deviation() {
        let strict = |trace: &str| last_step(&Deviation::ALL, trace).0.lines();
        // Only the moved pages lose their registration, and the neighbour
        // of the same ctx keeps its own.
        assert_eq!(
            strict(
                "map 0 4 rw- anon\nmap 12 4 rw- anon\nregister 0 0 4 missing\n\
                 register 0 12 4 missing\nmremap 0 4 4 8"
            ),
            [
                "[8,12) rw- anon@8 account maywrite",
                "[12,16) rw- anon@12 account maywrite uffd=missing ctx=0"
            ]
        );
        // The moved, unregistered VMA merges with its equal neighbour.
        assert_eq!(
            strict("map 0 4 rw- anon\nmap 12 4 rw- anon\nregister 0 0 4 missing\nmremap 0 4 4 8"),
            ["[8,16) rw- anon@8 account maywrite"]
        );
        // With event-remap the registration goes along.
        assert_eq!(
            strict("open 0 event-remap\nmap 0 4 rw- anon\nregister 0 0 4 missing\nmremap 0 4 4 8"),
            ["[8,12) rw- anon@8 account maywrite uffd=missing ctx=0"]
        );
        // The fork child is maximally merged.
        assert_eq!(
            strict("map 8 8 rw- anon\nregister 0 12 4 wp\nfork"),
            ["[8,16) rw- anon@8 account maywrite"]
        );
        // DONTUNMAP unlocks the source range only.
        assert_eq!(
            strict("map 0 8 rw- anon\nmlock 0 8 onfault\nmremap 2 2 2 12 dontunmap"),
            [
                "[0,2) rw- anon@0 account maywrite locked lockonfault",
                "[2,4) rw- anon@2 account maywrite",
                "[4,8) rw- anon@4 account maywrite locked lockonfault",
                "[12,14) rw- anon@12 account maywrite locked lockonfault"
            ]
        );
    }
}
