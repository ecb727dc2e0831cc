//! What the unit tests of every module share.

use uffd_vocab::{Backend, Layout, Op, OpResult, Outcome, Page};

use crate::{Deviation, PageModel};

/// The model after `trace` (one op a line), and each op's result.
pub(crate) fn run(pages: Page, trace: &str) -> (PageModel, Vec<OpResult>) {
    let mut m = PageModel::new(pages);
    let results = trace
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| m.step(&l.parse::<Op>().unwrap()).unwrap().result)
        .collect();
    (m, results)
}

/// The outcome of the last op of `trace` (one op a line) on the default
/// model of `pages` pages.
pub(crate) fn last_outcome(pages: Page, trace: &str) -> Outcome {
    let mut m = PageModel::new(pages);
    let mut last = None;
    for l in trace.lines().map(str::trim).filter(|l| !l.is_empty()) {
        last = Some(m.step(&l.parse::<Op>().unwrap()).unwrap());
    }
    last.expect("a trace of at least one op")
}

/// The layout, a VMA a line.
pub(crate) fn lines(m: &PageModel) -> Vec<String> {
    m.layout().vmas().iter().map(|v| v.to_string()).collect()
}

/// The layout of the last step of `trace` on a model of 16 pages with
/// the deviation rules `off` turned off, and the rules it reports.
pub(crate) fn last_step(off: &[Deviation], trace: &str) -> (Layout, Vec<&'static str>) {
    let mut m = PageModel::with_rules_off(16, off);
    let mut last = (Layout::default(), Vec::new());
    for l in trace.lines() {
        let o = m.step(&l.trim().parse::<Op>().unwrap()).unwrap();
        last = (o.layout, o.report.deviations);
    }
    last
}

/// A backend that is not a model, for what takes only a model.
pub(crate) struct NotAModel;

impl Backend for NotAModel {
    fn name(&self) -> &'static str {
        "other"
    }
    fn pages(&self) -> Page {
        0
    }
    fn step(&mut self, _op: &Op) -> Result<Outcome, uffd_vocab::Unsupported> {
        Err(uffd_vocab::Unsupported)
    }
    fn reset(&mut self) {}
}
