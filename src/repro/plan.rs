//! What a reproducer checks, decided from the page model: every op's
//! result (the contract's, and what the kernel is known to give instead),
//! the layout where the finding shows (only the VmFlags codes that tell the
//! VMAs apart), and the user-visible consequence of a lost or kept
//! registration (a write the contract and the known kernel answer
//! differently).

use std::collections::BTreeSet;

use uffd_model::{Deviation, PageModel};
use uffd_vocab::{
    events_text, ptes_text, Backend, Backing, Errno, Layout, Mode, Op, OpResult, Page, Prot,
    VmFlags, Vma,
};

use crate::trace::Trace;

/// One op of the program and what it must give.
pub struct Step {
    pub op: Op,
    /// The contract's result.
    pub want: OpResult,
    /// What the kernel is known to give instead, where that differs.
    pub known: Option<OpResult>,
    /// The layout check after the op, if any.
    pub layout: Option<LayoutCheck>,
    /// Appended to the trace: the consequence of the finding.
    pub consequence: bool,
    /// The uffd events the op raises ([`uffd_vocab::events_text`]), per
    /// the contract and, where different, per the kernel as it is known to
    /// behave: checked where the program watches the op.
    pub events: (String, Option<String>),
    /// The uffds (a bit per ctx) that the reader of a fault closed during
    /// the op, by the contract: it could not resolve the fault (rule 42).
    pub closes: u32,
}

/// One layout check: the arena as the program prints it (see
/// [`layout_text`]), per the contract and, where different, per the kernel
/// as it is known to behave.
pub struct LayoutCheck {
    pub want: String,
    pub known: Option<String>,
    /// The page table entries too, in `expect ptes`'s form (contract, and
    /// known where it differs): where they differ, or the trace states
    /// them (`expect ptes`, `expect uffd-wp`).
    pub ptes: Option<(String, Option<String>)>,
}

/// The whole program's plan.
pub struct Plan {
    pub pages: Page,
    pub steps: Vec<Step>,
    /// The VmFlags codes the layout checks compare (the rest is printed
    /// only when a check fails).
    pub codes: Vec<&'static str>,
    /// Whether the layout checks name the uffd that owns each registered
    /// VMA (asked of the kernel): only where more than one uffd registers.
    pub ask_owner: bool,
    /// The known deviations that change a step, in [`Deviation::ALL`]'s order.
    pub deviations: Vec<Deviation>,
}

/// One run of the page model over the ops: results, layouts as the kernel
/// can observe them, the deviation rules that changed each step, and the
/// events it raised (as text), and the ctxs open after it (a bit each).
type Run = Vec<(OpResult, Layout, Vec<&'static str>, String, u32)>;

fn run(pages: Page, ops: &[Op], strict: bool) -> Run {
    let mut model = PageModel::with_strict(pages, strict);
    ops.iter()
        .map(|op| {
            let o = model
                .step(op)
                .expect("the page model answers every op of the language");
            let layout = o.layout.project(uffd_kernel::UNOBSERVED);
            (
                o.result,
                layout,
                o.report.deviations,
                events_text(&o.events),
                model.open_contexts().iter().fold(0, |m, c| m | 1 << c),
            )
        })
        .collect()
}

/// The plan for `trace`.
pub fn plan(trace: &Trace) -> Plan {
    let mut ops = trace.ops();
    let contract = run(trace.pages, &ops, true);
    let known = run(trace.pages, &ops, false);
    let consequences = consequences(trace.pages, &ops, &contract, &known);
    let n = ops.len();
    ops.extend(consequences);
    let (contract, known) = if ops.len() > n {
        (run(trace.pages, &ops, true), run(trace.pages, &ops, false))
    } else {
        (contract, known)
    };
    let checked = checked_steps(trace, &contract, &known, n);
    let layouts: Vec<&Layout> = checked
        .iter()
        .flat_map(|&i| [&contract[i].1, &known[i].1])
        .collect();
    let codes = varying_codes(&layouts);
    let ctxs: BTreeSet<u8> = ops
        .iter()
        .filter_map(|op| match op {
            Op::Register { ctx, .. } => Some(*ctx),
            _ => None,
        })
        .collect();
    let registered = layouts
        .iter()
        .any(|l| l.vmas().iter().any(|v| !v.uffd.is_empty()));
    let ask_owner = ctxs.len() > 1 && registered;
    let names: BTreeSet<&str> = known.iter().flat_map(|(_, _, d, _, _)| d.clone()).collect();
    let deviations = Deviation::ALL
        .into_iter()
        .filter(|d| names.contains(d.name()))
        .collect();
    let text = |l: &Layout| layout_text(l, &codes, ask_owner);
    let steps = ops
        .into_iter()
        .enumerate()
        .map(|(i, op)| {
            let (want, want_layout, _, want_events, open) = &contract[i];
            let (got, got_layout, _, got_events, _) = &known[i];
            let before = i.checked_sub(1).map_or(0, |j| contract[j].4);
            Step {
                op,
                want: *want,
                known: (got != want).then_some(*got),
                layout: checked.contains(&i).then(|| {
                    let (want_ptes, got_ptes) =
                        (ptes_text(want_layout.ptes()), ptes_text(got_layout.ptes()));
                    let stated = trace
                        .steps
                        .get(i)
                        .is_some_and(|s| s.expect_ptes.is_some() || s.expect_wp.is_some());
                    LayoutCheck {
                        want: text(want_layout),
                        known: (text(got_layout) != text(want_layout)).then(|| text(got_layout)),
                        ptes: (stated || want_ptes != got_ptes).then(|| {
                            let known = (got_ptes != want_ptes).then_some(got_ptes);
                            (want_ptes, known)
                        }),
                    }
                }),
                consequence: i >= n,
                events: (
                    want_events.clone(),
                    (got_events != want_events).then(|| got_events.clone()),
                ),
                closes: match op {
                    Op::Close { .. } | Op::Open { .. } => 0,
                    _ => before & !open,
                },
            }
        })
        .collect();
    Plan {
        pages: trace.pages,
        steps,
        codes,
        ask_owner,
        deviations,
    }
}

/// The steps (of the first `n`, the trace's own) after which the layout is
/// checked: those with `expect` lines in the trace, the first where the
/// contract and the known kernel part, and the last if that makes none.
fn checked_steps(trace: &Trace, contract: &Run, known: &Run, n: usize) -> BTreeSet<usize> {
    let mut out: BTreeSet<usize> = trace
        .steps
        .iter()
        .enumerate()
        .filter(|(_, s)| s.expect_layout.is_some())
        .map(|(i, _)| i)
        .collect();
    if let Some(i) = (0..n).find(|&i| contract[i].1 != known[i].1) {
        out.insert(i);
    }
    if out.is_empty() && n > 0 {
        out.insert(n - 1);
    }
    out
}

/// Writes that show what a user loses: after the last step, for each VMA
/// whose registration the contract and the known kernel disagree on, a
/// one-byte write to its first page, kept where the two answer it
/// differently (a MISSING registration refuses the write: EFAULT, where
/// the uffd has UFFD_FEATURE_SIGBUS; with `faults` the monitor takes it).
fn consequences(pages: Page, ops: &[Op], contract: &Run, known: &Run) -> Vec<Op> {
    let (Some(c), Some(k)) = (contract.last(), known.last()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for v in c.1.vmas().iter().chain(k.1.vmas()) {
        let page = v.start;
        let other = |l: &Layout| l.find(page).map_or(Mode::NONE, |w| w.uffd);
        if other(&c.1) == other(&k.1) || out.contains(&Op::Fault { page, read: false }) {
            continue;
        }
        let mut with = ops.to_vec();
        with.push(Op::Fault { page, read: false });
        let a = run(pages, &with, true);
        let b = run(pages, &with, false);
        if a.last().map(|s| s.0) != b.last().map(|s| s.0) {
            out.push(Op::Fault { page, read: false });
        }
    }
    out
}

/// The smaps code of each flag of a VMA that a layout check may compare:
/// the VmFlags of the vocabulary, then the uffd modes.
fn codes_of(v: &Vma) -> Vec<&'static str> {
    let flags = VmFlags::NAMES
        .iter()
        .filter(|(bit, _, _)| v.flags.has(*bit))
        .map(|(_, _, code)| *code);
    let uffd = Mode::SMAPS_CODES
        .iter()
        .filter(|(m, _)| v.uffd.union(*m) == v.uffd)
        .map(|(_, code)| *code);
    flags.chain(uffd).collect()
}

/// The codes that some VMA of `layouts` has and some other has not: what
/// tells the VMAs of the case apart. In the vocabulary's order.
fn varying_codes(layouts: &[&Layout]) -> Vec<&'static str> {
    let vmas: Vec<Vec<&str>> = layouts
        .iter()
        .flat_map(|l| l.vmas().iter().map(codes_of))
        .collect();
    let all = VmFlags::NAMES
        .iter()
        .map(|(_, _, c)| *c)
        .chain(Mode::SMAPS_CODES.iter().map(|(_, c)| *c));
    all.filter(|c| {
        let on = vmas.iter().filter(|v| v.contains(c)).count();
        on > 0 && on < vmas.len()
    })
    .collect()
}

/// A layout as the program prints it: per VMA `[START,END) PERMS`, the
/// file and page offset of a file mapping (`/memfd:fN@OFF`,
/// `/dev/zero@OFF`), the VMA's codes among `codes`, and its owner
/// (`ctx=N`) if `owner`; VMAs apart by one space.
pub fn layout_text(l: &Layout, codes: &[&str], owner: bool) -> String {
    let vmas: Vec<String> = l
        .vmas()
        .iter()
        .map(|v| {
            let share = if v.flags.has(VmFlags::MAYSHARE) {
                's'
            } else {
                'p'
            };
            let mut s = format!("[{},{}) {}{share}", v.start, v.end, v.prot);
            match v.backing {
                Backing::Anon => {}
                Backing::Shmem(_) => s += &format!(" /dev/zero@{}", v.pgoff),
                Backing::File(f) => s += &format!(" /memfd:f{f}@{}", v.pgoff),
            }
            for c in codes_of(v).into_iter().filter(|c| codes.contains(c)) {
                s += &format!(" {c}");
            }
            if let (true, Some(ctx)) = (owner && !v.uffd.is_empty(), v.ctx) {
                s += &format!(" ctx={ctx}");
            }
            s
        })
        .collect();
    vmas.join(" ")
}

/// The C for a result: `0`, an errno's name, or its number.
pub fn c_result(r: &OpResult) -> String {
    match r {
        Ok(()) => "0".into(),
        Err(Errno::Other(n)) => n.to_string(),
        Err(e) => e.to_string(),
    }
}

/// `PROT_READ | PROT_WRITE`, or `PROT_NONE`.
pub fn c_prot(p: Prot) -> String {
    let names: Vec<&str> = [
        (p.read(), "PROT_READ"),
        (p.write(), "PROT_WRITE"),
        (p.exec(), "PROT_EXEC"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, n)| *n)
    .collect();
    if names.is_empty() {
        "PROT_NONE".into()
    } else {
        names.join(" | ")
    }
}
