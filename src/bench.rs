//! The harness's own timed mode (`uffd-check bench`): the model and the
//! implementation alone, side by side, in one process and one run, so the
//! figures are ratios measured together rather than absolute claims.

use std::fmt::Write;
use std::time::{Duration, Instant};

use rand::{RngExt, SeedableRng};
use uffd_impl::IntervalImpl;
use uffd_model::PageModel;
use uffd_vocab::{Backend, Kind, Layout, Mode, Op, OpResult, Page, Prot};

/// The model and the implementation, timed on their own: an op without
/// reading the layout back (which `Backend::step` always does, and which
/// costs O(VMAs)), and the layout alone.
trait Timeable {
    fn name(&self) -> &'static str;
    fn run_op(&mut self, op: &Op) -> OpResult;
    fn layout(&self) -> Layout;
    fn reset(&mut self);
}

impl Timeable for PageModel {
    fn name(&self) -> &'static str {
        "model"
    }
    fn run_op(&mut self, op: &Op) -> OpResult {
        PageModel::run_op(self, op)
    }
    fn layout(&self) -> Layout {
        PageModel::layout(self)
    }
    fn reset(&mut self) {
        Backend::reset(self)
    }
}

impl Timeable for IntervalImpl {
    fn name(&self) -> &'static str {
        "impl"
    }
    fn run_op(&mut self, op: &Op) -> OpResult {
        IntervalImpl::run_op(self, op)
    }
    fn layout(&self) -> Layout {
        IntervalImpl::layout(self)
    }
    fn reset(&mut self) {
        Backend::reset(self)
    }
}

use crate::runner::{sample, RunConfig};

fn per_sec(n: u64, t: Duration) -> f64 {
    n as f64 / t.as_secs_f64().max(1e-9)
}

/// Runs `seqs` on `b`; with `layouts`, reads the layout after every op as
/// the checker does. Returns (ops, time).
fn drive(b: &mut dyn Timeable, seqs: &[Vec<Op>], layouts: bool) -> (u64, Duration) {
    let t = Instant::now();
    let mut n = 0;
    for ops in seqs {
        b.reset();
        for op in ops {
            let _ = b.run_op(op);
            n += 1;
            if layouts {
                std::hint::black_box(b.layout());
            }
        }
    }
    (n, t.elapsed())
}

/// Default-generator sequences on an arena of 4,096 pages: ops/s of each
/// backend alone, with and without a layout read per op.
pub fn random_sequences_table() -> String {
    let config = RunConfig {
        seed: 1,
        cases: 1,
        ops: 40,
        pages: 4096,
    };
    let seqs = sample(&config, 2000);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "random sequences on {} pages ({} sequences of up to {} ops, default generator):",
        config.pages,
        seqs.len(),
        config.ops
    );
    let _ = writeln!(
        out,
        "  backend  ops/s (op only)  ops/s (op + layout read, as the checker runs)"
    );
    let mut rates = Vec::new();
    for mut b in [
        Box::new(PageModel::new(config.pages)) as Box<dyn Timeable>,
        Box::new(IntervalImpl::new(config.pages)),
    ] {
        let (n, t) = drive(b.as_mut(), &seqs, false);
        let (n2, t2) = drive(b.as_mut(), &seqs, true);
        rates.push((per_sec(n, t), per_sec(n2, t2)));
        let _ = writeln!(
            out,
            "  {:<7} {:>16.0} {:>16.0}",
            b.name(),
            per_sec(n, t),
            per_sec(n2, t2)
        );
    }
    let _ = writeln!(
        out,
        "  impl/model: {:.1}x (op only), {:.1}x (with layout)",
        rates[1].0 / rates[0].0,
        rates[1].1 / rates[0].1
    );
    out
}

/// Builds a layout of `vmas` VMAs on `vmas` pages: rw- anon with every other
/// page read-only, so no two neighbours merge.
fn build(b: &mut dyn Timeable, vmas: Page) {
    b.reset();
    let _ = b.run_op(&Op::Map {
        start: 0,
        len: vmas,
        prot: Prot::RW,
        kind: Kind::Anon,
    });
    for p in (1..vmas).step_by(2) {
        let _ = b.run_op(&Op::Protect {
            start: p,
            len: 1,
            prot: Prot::from_bits(Prot::READ),
        });
    }
}

/// The workload at a given layout size: register/unregister and mprotect
/// round trips of 1 to 8 pages at random places, so every op splits and
/// merges but the VMA count stays where it was built.
fn workload(vmas: Page, ops: u64, seed: u64) -> Vec<Op> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(ops as usize);
    while (out.len() as u64) < ops {
        let len = rng.random_range(1..=8.min(vmas));
        let start = rng.random_range(0..=vmas - len);
        if rng.random_bool(0.5) {
            out.push(Op::Register {
                ctx: 0,
                start,
                len,
                mode: Mode::MISSING,
            });
            out.push(Op::Unregister { ctx: 0, start, len });
        } else {
            // mprotect the range to rwx, then give each page its prot back.
            out.push(Op::Protect {
                start,
                len,
                prot: Prot::from_bits(7),
            });
            for p in start..start + len {
                let prot = if p % 2 == 1 {
                    Prot::from_bits(Prot::READ)
                } else {
                    Prot::RW
                };
                out.push(Op::Protect {
                    start: p,
                    len: 1,
                    prot,
                });
            }
        }
    }
    out
}

/// The cost per op of each backend as the number of VMAs grows.
pub fn scaling_table(sizes: &[u64], ops: u64) -> Result<String, String> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "scaling: register/unregister and mprotect round trips of 1-8 pages on a layout of N VMAs ({ops} ops per row)"
    );
    let _ = writeln!(
        out,
        "  {:>8}  {:>14} {:>10}  {:>14} {:>10}  {:>12} {:>12}",
        "VMAs", "impl ops/s", "ns/op", "model ops/s", "ns/op", "impl layout", "model layout"
    );
    for &n in sizes {
        if n < 2 {
            return Err(format!("--vmas {n}: need at least 2 VMAs"));
        }
        let work = workload(n, ops, n);
        let mut rows = Vec::new();
        for mut b in [
            Box::new(IntervalImpl::new(n)) as Box<dyn Timeable>,
            Box::new(PageModel::new(n)),
        ] {
            build(b.as_mut(), n);
            let before = b.layout().len() as u64;
            let t = Instant::now();
            for op in &work {
                let _ = b.run_op(op);
            }
            let el = t.elapsed();
            let t = Instant::now();
            let after = b.layout().len() as u64;
            let lt = t.elapsed();
            if before != n || after != n {
                return Err(format!(
                    "{}: the layout has {before} VMAs before and {after} after, not {n}",
                    b.name()
                ));
            }
            rows.push((per_sec(work.len() as u64, el), el, lt));
        }
        let ns = |t: Duration| t.as_nanos() as f64 / work.len() as f64;
        let _ = writeln!(
            out,
            "  {:>8}  {:>14.0} {:>10.0}  {:>14.0} {:>10.0}  {:>10.2}ms {:>10.2}ms",
            n,
            rows[0].0,
            ns(rows[0].1),
            rows[1].0,
            ns(rows[1].1),
            rows[0].2.as_secs_f64() * 1e3,
            rows[1].2.as_secs_f64() * 1e3,
        );
    }
    Ok(out)
}
