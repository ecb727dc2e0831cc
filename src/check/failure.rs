//! A violated invariant ([`Failure`]): its text (the trace ready to paste,
//! every backend's layout drawn, a diff) and its JSON, with the JSON of a
//! passing step for `replay --json`.

use std::fmt;

use uffd_vocab::{result_name, Outcome};

use super::diff::layout_diff;
use super::view::StepView;
use crate::draw::draw;
use crate::trace::Trace;

/// A violated invariant, with everything needed to understand and replay it.
#[derive(Clone, Debug)]
pub struct Failure {
    pub invariant: &'static str,
    pub message: String,
    /// 0-based index of the failing step.
    pub step: usize,
    /// The whole sequence up to and including the failing step.
    pub trace: Trace,
    pub outcomes: Vec<Outcome>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = self.trace.steps[self.step].op;
        writeln!(
            f,
            "invariant `{}` failed at step {} of {}: {op}",
            self.invariant,
            self.step + 1,
            self.trace.steps.len()
        )?;
        for l in self.message.lines() {
            writeln!(f, "  {l}")?;
        }
        writeln!(
            f,
            "\ntrace (save it under cases/ and it replays in `cargo test`):"
        )?;
        for l in self.trace.to_text().lines() {
            writeln!(f, "  {l}")?;
        }
        writeln!(f, "\nafter step {}:", self.step + 1)?;
        for o in &self.outcomes {
            writeln!(f, "  {} returned {}:", o.backend, result_name(&o.result))?;
            write!(f, "{}", draw(&o.layout, self.trace.pages, "    "))?;
            if !o.events.is_empty() {
                writeln!(f, "    events {}", uffd_vocab::events_text(&o.events))?;
            }
        }
        let first = &self.outcomes[0];
        for o in &self.outcomes[1..] {
            if !o.layout.agrees_with(&first.layout) {
                writeln!(
                    f,
                    "\nlayout diff (< {}, > {}):\n{}",
                    first.backend,
                    o.backend,
                    layout_diff(&first.layout, &o.layout).trim_end()
                )?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Failure {}

/// One step as a JSON object (`replay --json`): `{"step","op","result",
/// "layout","backends","merges"}`; the layout is the first backend's.
pub fn step_json(v: &StepView) -> serde_json::Value {
    let o = &v.outcomes[0];
    serde_json::json!({
        "step": v.index + 1,
        "op": v.op.to_string(),
        "result": result_name(&o.result),
        "layout": o.layout.to_json(),
        "ptes": uffd_vocab::ptes_text(o.layout.ptes()),
        "events": uffd_vocab::events_text(&o.events),
        "backends": v.outcomes.iter().map(|o| o.backend).collect::<Vec<_>>(),
        "merges": v.outcomes.iter().flat_map(|o| o.report.merges.iter().copied()).collect::<Vec<_>>(),
    })
}

/// A failure as a JSON object: the failing step with every backend's
/// result and layout, the invariant and its message, and the trace.
pub fn failure_json(f: &Failure) -> serde_json::Value {
    serde_json::json!({
        "step": f.step + 1,
        "op": f.trace.steps[f.step].op.to_string(),
        "failure": {"invariant": f.invariant, "message": f.message},
        "outcomes": f.outcomes.iter().map(|o| serde_json::json!({
            "backend": o.backend,
            "result": result_name(&o.result),
            "layout": o.layout.to_json(),
            "ptes": uffd_vocab::ptes_text(o.layout.ptes()),
            "events": uffd_vocab::events_text(&o.events),
            "merges": o.report.merges,
            "violations": o.report.violations.iter().map(|(n, t)| format!("{n}: {t}")).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "trace": f.trace.to_text(),
    })
}
