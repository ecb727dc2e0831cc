//! The known deviations (rules 21 to 30, 32 and 36 to 40): where a live kernel departs
//! from the contract the rest of the model states. Everything the model
//! knows of them is here, and only here is it asked whether a rule
//! applies: the table [`KNOWN`] (name, rule, texts, the kernels that have
//! it), the kernel's behaviour that each rule puts in the place of the
//! contract's (one hook each, called where the contract does that step),
//! and the report of the rules that changed a step.

use std::ops::Range;

use uffd_vocab::{History, Layout, Mode, Op, OpResult, Page, Series};

use crate::page_model::{PageModel, PageState};

/// A place where a kernel departs from the contract the model states. Each
/// is a small rule of the model, with the kernels that have it
/// ([`Deviation::history`]). By default a rule is on when
/// [`MODEL_SERIES`] has it (the model then says what that kernel does);
/// a kernel's profile turns on exactly the rules of its own series; with
/// `strict` every rule is off (the model says what the contract promises,
/// and checking against the kernel finds the difference). A step where a
/// rule changed the model's outcome reports the rule's [`Deviation::name`]
/// ([`uffd_vocab::StepReport::deviations`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Deviation {
    /// Rule 21.
    MremapOldRegistration,
    /// Rule 22.
    ForkKeepsBoundaries,
    /// Rule 23.
    DontUnmapUnlocksVma,
    /// Rule 24.
    MremapWithinOneVma,
    /// Rule 25.
    UnregisterAnyCtx,
    /// Rule 26.
    NewMappingJoinsNext,
    /// Rule 27.
    DontUnmapCopyApart,
    /// Rule 28.
    MovedCopyStaysApart,
    /// Rule 29.
    RegisterKeepsWp,
    /// Rule 30.
    DontUnmapSourceLosesAccount,
    /// Rule 32.
    WriteprotectWithinOneVma,
    /// Rule 36.
    DontUnmapCopyMergesWithNothing,
    /// Rule 37.
    NoUffdioMove,
    /// Rule 38.
    NoUffdioPoison,
    /// Rule 39.
    NoContinueWp,
    /// Rule 40.
    RefusedFillLeavesNoAnonVma,
    /// Rule 43.
    RemapEventOldLength,
    /// Rule 44.
    DontUnmapSourceStaysApart,
}

/// The series whose kernels the model's default rules describe: the rules
/// this series has are on by default ([`Deviation::off_by_default`]).
pub const MODEL_SERIES: Series = Series::new(6, 18);

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
const KNOWN: [Known; 18] = [
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
        // Measured: 6.1 has it; 6.12 does not (it keeps the copy apart,
        // rule 28); 6.16 to 7.2 have it; 7.3 keeps the copy apart again.
        // 6.13 to 6.15 were not available to measure: 6.16 is the first
        // series seen with it again, not necessarily the first that has it.
        history: History {
            again: Some((Series::new(6, 16), Some(Series::new(7, 3)))),
            ..History::until(Series::new(6, 12))
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
            again: None,
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
        // 6.1 and 6.12 unlock the source range only, as the contract says;
        // 6.16 to 7.1 have it, 7.2 not. 6.13 to 6.15 were not available
        // to measure: 6.16 is the first series seen with it.
        history: History {
            since: Some(Series::new(6, 16)),
            fixed: Some(Series::new(7, 2)),
            introduced_by: None,
            fixed_by: None,
            again: None,
        },
    },
    Known {
        deviation: Deviation::DontUnmapSourceStaysApart,
        rule: 44,
        name: "dontunmap-source-stays-apart",
        contract: "the source range of a DONTUNMAP move, unlocked, merges with its equal \
                   neighbours (rule 5)",
        kernel: "the source's VM_LOCKED and VM_LOCKONFAULT are cleared in place, with no \
                 merge: it stays a VMA of its own",
        // Measured: 6.1, 6.12 and 7.3 (`map 0 2 rw- anon; mlock 1 1;
        // mremap 1 1 1 2 dontunmap` leaves [0,1) and [1,2) apart). 6.16
        // to 7.1 unlock the whole VMA, also without a merge: rule 23,
        // which takes this rule's place there. Found by `uffd-check
        // matrix --pages 64 --ops 100` on 6.1 and 6.12.
        history: History {
            since: None,
            fixed: Some(Series::new(6, 16)),
            introduced_by: None,
            fixed_by: None,
            again: Some((Series::new(7, 2), None)),
        },
    },
    Known {
        deviation: Deviation::MremapWithinOneVma,
        rule: 24,
        name: "mremap-moves-within-one-vma",
        contract: "a move (MREMAP_FIXED or DONTUNMAP) checks its arguments first (overlapping \
                   source and destination: EINVAL), then moves every VMA of the source range \
                   to the same distance, holes kept",
        kernel: "mremap_to looks the source VMA up first (none: EFAULT), then checks the \
                 overlap, unmaps the destination and the shrunk tail, and only then refuses \
                 a range that is not inside that one VMA (EFAULT) or a private length 0 \
                 (EINVAL): the destination is unmapped all the same",
        // Measured on 6.1 and 6.12; from 6.17 mremap moves several VMAs
        // (the mremap rework of that release) and checks its arguments
        // first.
        history: History::until(Series::new(6, 17)),
    },
    Known {
        deviation: Deviation::UnregisterAnyCtx,
        rule: 25,
        name: "unregister-through-any-ctx",
        contract: "UFFDIO_UNREGISTER through a ctx of a range that another ctx registered is \
                   EINVAL and changes nothing",
        kernel: "userfaultfd_unregister does not compare the VMA's ctx with its own: any \
                 uffd of the mm unregisters any registration in the range",
        // Measured on 6.1 and 6.12 (and 6.16); 6.17 refuses it.
        history: History::until(Series::new(6, 17)),
    },
    Known {
        deviation: Deviation::NewMappingJoinsNext,
        rule: 26,
        name: "new-mapping-joins-next",
        contract: "a new mapping between two VMAs it could merge with, which cannot be one \
                   VMA with each other (their anon_vmas differ), merges with the one before it",
        kernel: "mmap_region tries the next VMA first and the previous one only with the \
                 next one's anon_vma: the new mapping joins the VMA after it",
        // Measured on 6.1; 6.12 merges left (vma_merge_new_range).
        history: History::until(Series::new(6, 12)),
    },
    Known {
        deviation: Deviation::DontUnmapCopyApart,
        rule: 27,
        name: "dontunmap-copy-stays-apart-from-its-source",
        contract: "a DONTUNMAP move whose copy lands next to the VMA it came from merges \
                   the two where they are equal",
        kernel: "the copy stays a VMA of its own next to its source's VMA, equal as they \
                 are",
        // Measured: 6.1, 6.12 and 7.3 have it, 6.18 not; the issue's
        // measurements put 7.2 with 7.3, and 6.16 with 6.18.
        history: History {
            again: Some((Series::new(7, 2), None)),
            ..History::until(Series::new(6, 16))
        },
    },
    Known {
        deviation: Deviation::MovedCopyStaysApart,
        rule: 28,
        name: "moved-copy-stays-apart",
        contract: "a move by a ctx without UFFD_FEATURE_EVENT_REMAP unregisters exactly the \
                   moved pages, which then merge with equal neighbours",
        kernel: "the moved copy loses its registration but stays a VMA of its own: an equal \
                 unregistered neighbour stays apart (the half of rule 21 that 6.12 and 7.3 \
                 have)",
        // Measured on 6.12 and 7.3; 6.1 and 6.16 to 7.2 do it as part of
        // rule 21.
        history: History {
            since: Some(Series::new(6, 12)),
            fixed: Some(Series::new(6, 16)),
            introduced_by: None,
            fixed_by: None,
            again: Some((Series::new(7, 3), None)),
        },
    },
    Known {
        deviation: Deviation::RegisterKeepsWp,
        rule: 29,
        name: "register-keeps-wp",
        contract: "UFFDIO_REGISTER by the ctx that registered a range already sets the mode \
                   asked for (a mode it already has stays)",
        kernel: "UFFDIO_REGISTER of a range where a VMA is registered with WP, by the same \
                 ctx, with a mode without WP is EBUSY, and nothing changes",
        // Measured on 7.3; 6.18 and older set the new mode.
        history: History::since(Series::new(7, 3)),
    },
    Known {
        deviation: Deviation::DontUnmapSourceLosesAccount,
        rule: 30,
        name: "dontunmap-source-loses-account",
        contract: "the source VMA of a DONTUNMAP move keeps its VM_ACCOUNT (it is still mapped \
                   and still charged)",
        kernel: "the VMA the source range is in after the move loses VM_ACCOUNT, whole (with a \
                 copy merged into it), without split or merge",
        // Measured on 6.16 only: 6.12 and 6.18 keep it.
        history: History {
            since: Some(Series::new(6, 16)),
            fixed: Some(Series::new(6, 17)),
            introduced_by: None,
            fixed_by: Some("0e59f47c15ce"),
            again: None,
        },
    },
    Known {
        deviation: Deviation::WriteprotectWithinOneVma,
        rule: 32,
        name: "writeprotect-within-one-vma",
        contract: "UFFDIO_WRITEPROTECT goes VMA by VMA over its range, skipping holes, until \
                   a VMA not registered with WP (ENOENT, the VMAs before it done)",
        kernel: "mwriteprotect_range takes one VMA: a range that is not inside one VMA \
                 registered with WP is ENOENT, and nothing changes",
        // Measured on 6.1; 6.12 and 6.18 walk the VMAs (the walk came
        // with "Support WP on multiple VMAs", 6.4 as read, not measured).
        history: History::until(Series::new(6, 12)),
    },
    Known {
        deviation: Deviation::DontUnmapCopyMergesWithNothing,
        rule: 36,
        name: "dontunmap-copy-merges-with-nothing",
        contract: "a DONTUNMAP move whose copy lands next to the VMA it came from merges the \
                   copy with an equal VMA on its other side",
        kernel: "the copy next to its source's VMA stays a VMA of its own on both sides",
        // Measured on 6.1 (the copy before or after its source, the other
        // neighbour unrelated or a remnant of the source's VMA, faulted or
        // not); 6.12 merges it with the other side (rule 27 alone).
        history: History::until(Series::new(6, 12)),
    },
    Known {
        deviation: Deviation::NoUffdioMove,
        rule: 37,
        name: "no-uffdio-move",
        contract: "UFFDIO_MOVE moves anonymous pages into a VMA the ctx registered (rule 34)",
        kernel: "there is no UFFDIO_MOVE: the ioctl is EINVAL and nothing changes",
        // UFFDIO_MOVE came in 6.8; measured: 6.1 refuses it, 6.12 has it.
        history: History::until(Series::new(6, 8)),
    },
    Known {
        deviation: Deviation::NoUffdioPoison,
        rule: 38,
        name: "no-uffdio-poison",
        contract: "UFFDIO_POISON puts a poison marker in each empty entry of the range (rule 33)",
        kernel: "there is no UFFDIO_POISON: the ioctl is EINVAL and nothing changes",
        // UFFDIO_POISON came in 6.6; measured: 6.1 refuses it, 6.12 has it.
        history: History::until(Series::new(6, 6)),
    },
    Known {
        deviation: Deviation::NoContinueWp,
        rule: 39,
        name: "no-continue-wp",
        contract:
            "UFFDIO_CONTINUE with MODE_WP maps the cached page with the uffd-wp bit (rule 33)",
        kernel: "UFFDIO_CONTINUE with MODE_WP is EINVAL (an unknown mode), before anything \
                 is looked at",
        // UFFDIO_CONTINUE_MODE_WP came in 6.4; measured: 6.1 refuses it.
        history: History::until(Series::new(6, 4)),
    },
    Known {
        deviation: Deviation::RefusedFillLeavesNoAnonVma,
        rule: 40,
        name: "refused-fill-leaves-no-anon-vma",
        contract: "a fill ioctl looks its VMA up and gives a private one an anon_vma before \
                   it checks the range (rule 33), as a fault does",
        kernel: "mfill_atomic prepares the anon_vma only once the range passed its checks: a \
                 fill refused with ENOENT or EINVAL leaves the VMA without one",
        // Measured on 6.1 (a fork child then gets no page tables there);
        // 6.12 prepares it first (the per-VMA lock lookup, uffd_mfill_lock).
        history: History::until(Series::new(6, 12)),
    },
    Known {
        deviation: Deviation::RemapEventOldLength,
        rule: 43,
        name: "remap-event-has-the-old-length",
        contract: "the REMAP event of a move says the length moved: a move that shrinks sends \
                   the new length (rule 41)",
        kernel: "the REMAP event of a move that shrinks says the length before the shrink \
                 (mremap_userfaultfd_complete is passed the old_len the call was given)",
        // Measured: 6.1 and 6.12 send the old length; 6.16 (the mremap
        // rework's vma_remap_struct, whose old_len the shrink updates) and
        // later the new one.
        history: History::until(Series::new(6, 16)),
    },
];

impl Deviation {
    pub const ALL: [Deviation; 18] = [
        Deviation::MremapOldRegistration,
        Deviation::ForkKeepsBoundaries,
        Deviation::DontUnmapUnlocksVma,
        Deviation::MremapWithinOneVma,
        Deviation::UnregisterAnyCtx,
        Deviation::NewMappingJoinsNext,
        Deviation::DontUnmapCopyApart,
        Deviation::MovedCopyStaysApart,
        Deviation::RegisterKeepsWp,
        Deviation::DontUnmapSourceLosesAccount,
        Deviation::WriteprotectWithinOneVma,
        Deviation::DontUnmapCopyMergesWithNothing,
        Deviation::NoUffdioMove,
        Deviation::NoUffdioPoison,
        Deviation::NoContinueWp,
        Deviation::RefusedFillLeavesNoAnonVma,
        Deviation::RemapEventOldLength,
        Deviation::DontUnmapSourceStaysApart,
    ];

    /// The rules off by default: those [`MODEL_SERIES`] does not have.
    pub fn off_by_default() -> Vec<Deviation> {
        Deviation::ALL
            .into_iter()
            .filter(|d| !d.history().has(MODEL_SERIES))
            .collect()
    }

    /// Can the rule change a step of `op`? (The others are not compared
    /// with the contract.)
    fn touches(self, op: &Op) -> bool {
        match self {
            Deviation::MremapOldRegistration
            | Deviation::DontUnmapUnlocksVma
            | Deviation::DontUnmapSourceStaysApart
            | Deviation::MremapWithinOneVma
            | Deviation::DontUnmapCopyApart
            | Deviation::MovedCopyStaysApart
            | Deviation::DontUnmapSourceLosesAccount
            | Deviation::DontUnmapCopyMergesWithNothing => matches!(op, Op::Mremap { .. }),
            Deviation::NoUffdioMove => matches!(op, Op::Move { .. }),
            Deviation::NoUffdioPoison => matches!(
                op,
                Op::Fill {
                    how: uffd_vocab::Fill::Poison,
                    ..
                }
            ),
            Deviation::NoContinueWp => matches!(
                op,
                Op::Fill {
                    how: uffd_vocab::Fill::Continue,
                    wp: true,
                    ..
                }
            ),
            // Also the fills a reader makes to resolve a fault the op
            // delivers (rule 42); mprotect's populate delivers none.
            Deviation::RefusedFillLeavesNoAnonVma => matches!(
                op,
                Op::Fill { .. } | Op::Fault { .. } | Op::Mlock { .. } | Op::Mremap { .. }
            ),
            Deviation::RemapEventOldLength => matches!(op, Op::Mremap { .. }),
            Deviation::RegisterKeepsWp => matches!(op, Op::Register { .. }),
            Deviation::WriteprotectWithinOneVma => matches!(op, Op::WriteProtect { .. }),
            Deviation::ForkKeepsBoundaries => matches!(op, Op::Fork),
            Deviation::UnregisterAnyCtx => matches!(op, Op::Unregister { .. }),
            Deviation::NewMappingJoinsNext => matches!(op, Op::Map { .. }),
        }
    }

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
    pub fn bit(self) -> u32 {
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

    /// One step (see [`PageModel::step_rules`]). The rules that took part
    /// stay in the step's report only when the step, run as the contract
    /// says (every rule off) on a copy of the model from before it, gives
    /// another result or layout: rules that changed nothing report
    /// nothing. Of several, those stay without which (that rule alone
    /// off) the step gives another outcome; all of them when none alone
    /// makes the difference.
    pub(crate) fn step_reporting_deviations(&mut self, op: &Op) -> (OpResult, Layout) {
        self.deviations.clear();
        let may_deviate = Deviation::ALL
            .iter()
            .any(|d| self.applies(*d) && d.touches(op));
        let before = may_deviate.then(|| self.clone());
        let got = self.step_rules(op);
        let Some(before) = before.filter(|_| !self.deviations.is_empty()) else {
            return got;
        };
        let events = self.events_so_far();
        let differs_without = |off: u32| {
            let mut other = before.clone();
            other.rules_off |= off;
            other.step_rules(op) != got || other.events_so_far() != events
        };
        if !differs_without(u32::MAX) {
            self.deviations.clear();
            return got;
        }
        self.deviations.dedup();
        if self.deviations.len() > 1 {
            let each: Vec<&'static str> = self
                .deviations
                .iter()
                .copied()
                .filter(|n| Deviation::from_name(n).is_some_and(|d| differs_without(d.bit())))
                .collect();
            if !each.is_empty() {
                self.deviations = each;
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
        dontunmap_source: Option<Range<usize>>,
    ) {
        let rule = Deviation::MremapOldRegistration;
        if lost && !old.uffd.is_empty() && self.moved_copy_stays_apart(copy.clone()) {
            return;
        }
        if !lost || old.uffd.is_empty() || !self.applies(rule) {
            self.merge_around(changed);
            return;
        }
        // A DONTUNMAP copy next to its source merges with nothing where
        // rules 27 and 36 are on (6.1 has both, with this rule): it loses
        // its registration alone, and the source keeps its own.
        if let Some(source) = dontunmap_source {
            if self.dontunmap_copy_stays_alone(source, copy.clone()) {
                return;
            }
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

    /// Rule 44, where DONTUNMAP unlocked the `source` of a move (rule 23
    /// off), changing its pages from `before` (those of `vma`, the VMA it
    /// is in): the source stays a VMA of its own, unmerged. Returns
    /// whether the rule is on: if not, the contract merges it (rule 5).
    pub(crate) fn dontunmap_source_stays_apart(
        &mut self,
        source: Range<usize>,
        vma: Range<usize>,
        before: &[Option<PageState>],
    ) -> bool {
        let rule = Deviation::DontUnmapSourceStaysApart;
        if !self.applies(rule) {
            return false;
        }
        if self.pages[vma] != *before {
            self.keep_apart(source);
            self.took_part(rule);
        }
        true
    }

    /// Rule 22, on the fork `child` whose pages are copies of the VMAs of
    /// `parent` (rule 19): the child keeps every boundary of the parent.
    /// Returns whether the rule is on: if not, the contract merges the
    /// child. The rule takes part only where it keeps apart two child
    /// pages equal but for their anon_vmas: the contract merges no others
    /// (rule 5), so any other boundary is there without the rule too (and
    /// the step need not be run again without it to find that out).
    pub(crate) fn fork_keeps_boundaries(&mut self, child: &mut PageModel, parent: &Layout) -> bool {
        let rule = Deviation::ForkKeepsBoundaries;
        if !self.applies(rule) {
            return false;
        }
        let mut kept = false;
        for vma in parent.vmas() {
            let start = vma.start as usize;
            if let (Some(Some(prev)), Some(first)) = (
                start.checked_sub(1).map(|i| child.pages[i]),
                child.pages[start],
            ) {
                let first = PageState {
                    apart: false,
                    ..first
                };
                kept |= prev.same_but_anon_vma(&first);
            }
            for i in start..vma.end as usize {
                if let Some(p) = child.pages[i].as_mut() {
                    p.apart = i as Page == vma.start;
                }
            }
        }
        if kept {
            self.took_part(rule);
        }
        true
    }
}

mod by_version;
#[cfg(test)]
mod tests;
