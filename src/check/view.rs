//! What an invariant sees of one step ([`StepView`]), and where a step is
//! ([`StepAt`]): the leaf of the checker's modules, which the invariants,
//! the failure text and the stepping loop all read.

use uffd_vocab::{Layout, Op, Outcome, Page};

use crate::trace::Step;

/// What an invariant sees: one step on every backend.
pub struct StepView<'a> {
    /// 0-based index of the step.
    pub index: usize,
    pub op: &'a Op,
    pub pages: Page,
    /// In backend order; the first is the reference the others are compared to.
    pub outcomes: &'a [Outcome],
    /// What the trace says this step must give, if it says.
    pub expect: Option<&'a Step>,
    /// Each backend's layout before the step (the parent's before a fork's
    /// child); `None` where the stepping does not keep them (explore, which
    /// steps from snapshots).
    pub before: Option<Before<'a>>,
}

/// The layouts before a step: every backend's, and which of them the step
/// ran on (those have the outcomes).
#[derive(Clone, Copy)]
pub struct Before<'a> {
    pub layouts: &'a [Layout],
    pub active: &'a [bool],
}

impl<'a> Before<'a> {
    /// The layouts of the backends the step ran on, aligned with the
    /// step's outcomes.
    pub fn of_active(self) -> impl Iterator<Item = &'a Layout> {
        self.layouts
            .iter()
            .zip(self.active)
            .filter(|(_, on)| **on)
            .map(|(l, _)| l)
    }
}

/// Where a step is: what a [`StepView`] holds besides the outcomes.
#[derive(Clone, Copy)]
pub struct StepAt<'a> {
    /// 0-based index of the step.
    pub index: usize,
    pub op: &'a Op,
    pub pages: Page,
    /// What the trace says this step must give, if it says.
    pub expect: Option<&'a Step>,
    /// Every backend's layout before the step, by backend (see
    /// [`StepView::before`]).
    pub before: Option<&'a [Layout]>,
}

impl StepView<'_> {
    /// The known deviations that changed this step ([`known_deviations`]).
    pub fn known_deviations(&self) -> &[&'static str] {
        known_deviations(self.outcomes)
    }
}

/// The known deviations that changed a step: the first backend's that
/// reports any (one step, one count, however many backends know the rule).
pub fn known_deviations(outcomes: &[Outcome]) -> &[&'static str] {
    outcomes
        .iter()
        .find(|o| !o.report.deviations.is_empty())
        .map_or(&[], |o| &o.report.deviations)
}
