//! The harness's own timed mode (`uffd-check bench`): the model and the
//! implementation alone, side by side, in one process and one run, so the
//! figures are ratios measured together rather than absolute claims.
//!
//! Three tables: random sequences ([`random_sequences_table`]), the cost
//! of small ops as the VMA count grows ([`scaling_table`]), and ops over a
//! whole arena at two sizes ([`whole_arena_table`]), whose growth column
//! shows an op that became quadratic in the pages it touches.

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

/// VMA counts of the scaling table by default: a few seconds on 2 cores.
pub const VMAS: [u64; 2] = [1_000, 10_000];
/// With `--long`: up to 100,000 VMAs.
pub const LONG_VMAS: [u64; 3] = [1_000, 10_000, 100_000];
/// The two arena sizes of the whole-arena table by default, 8 times apart.
pub const ARENAS: [Page; 2] = [4_096, 32_768];
/// With `--long`: 8 times larger.
pub const LONG_ARENAS: [Page; 2] = [32_768, 262_144];

/// What `uffd-check bench` measures.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchConfig {
    /// VMA counts of the scaling table, each 2 to `MAX_PAGES`.
    pub vmas: Vec<u64>,
    /// Ops timed per row of the scaling table, 1 to 1,000,000.
    pub ops: u64,
    /// The two arena sizes of the whole-arena table.
    pub arenas: [Page; 2],
    /// `explore` of 6 pages to depth 4 too (with `--long`).
    pub explore_long: bool,
}

impl BenchConfig {
    /// The command line's choice, checked: `vmas` as given or the defaults
    /// ([`VMAS`], [`LONG_VMAS`] with `long`), the arenas by `long`.
    pub fn new(vmas: Option<Vec<u64>>, ops: u64, long: bool) -> Result<Self, String> {
        if !(1..=1_000_000).contains(&ops) {
            return Err(format!(
                "--ops {ops}: the scaling table times 1 to 1,000,000 ops per row"
            ));
        }
        let vmas = vmas.unwrap_or_else(|| {
            if long {
                LONG_VMAS.to_vec()
            } else {
                VMAS.to_vec()
            }
        });
        let max = uffd_vocab::MAX_PAGES;
        if let Some(n) = vmas.iter().find(|&&n| !(2..=max).contains(&n)) {
            return Err(format!("--vmas {n}: each VMA count must be 2 to {max}"));
        }
        let arenas = if long { LONG_ARENAS } else { ARENAS };
        Ok(BenchConfig {
            vmas,
            ops,
            arenas,
            explore_long: long,
        })
    }
}

/// Prints the three tables, each as soon as it is measured.
pub fn run(config: &BenchConfig) -> Result<(), String> {
    use crate::bench_check::{explore_long_table, explore_table, generation_table, jobs_table};
    println!("{}", generation_table()?);
    println!("{}", jobs_table()?);
    println!("{}", explore_table()?);
    if config.explore_long {
        println!("{}", explore_long_table()?);
    }
    println!("{}", random_sequences_table());
    println!("{}", scaling_table(&config.vmas, config.ops)?);
    println!("{}", whole_arena_table(config.arenas)?);
    Ok(())
}

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
        "random sequences on {} pages ({} sequences of up to {} ops,\n\
         default generator):",
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

/// `rw-` for an even page, `r--` for an odd one.
fn alternating_prot(page: Page) -> Prot {
    if page % 2 == 1 {
        Prot::from_bits(Prot::READ)
    } else {
        Prot::RW
    }
}

/// The ops that build a layout of `vmas` VMAs on `vmas` pages: a page of
/// anon memory at a time, rw- with every other page read-only, so no two
/// neighbours merge. (One map and an mprotect of every other page would
/// give the same layout, but each mprotect splits a VMA as long as the rest
/// of the arena, which the page model walks page by page.)
fn alternating(vmas: Page) -> impl Iterator<Item = Op> {
    (0..vmas).map(|p| Op::Map {
        start: p,
        len: 1,
        prot: alternating_prot(p),
        kind: Kind::Anon,
    })
}

/// Builds the layout of [`alternating`] on `b`, from nothing.
fn build(b: &mut dyn Timeable, vmas: Page) {
    b.reset();
    for op in alternating(vmas) {
        let _ = b.run_op(&op);
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
                out.push(Op::Protect {
                    start: p,
                    len: 1,
                    prot: alternating_prot(p),
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
        "scaling: register/unregister and mprotect round trips of 1-8 pages\n\
         on a layout of N VMAs ({ops} ops per row; a layout read in ms):"
    );
    let _ = writeln!(
        out,
        "  {:>8} {:>11} {:>7} {:>12} {:>7}  {:>11} {:>12}",
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
            "  {:>8} {:>11.0} {:>7.0} {:>12.0} {:>7.0}  {:>11.2} {:>12.2}",
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

/// An op over a whole arena of N pages, after a setup that is not timed.
struct WholeArenaOp {
    name: &'static str,
    setup: fn(Page) -> Vec<Op>,
    op: fn(Page) -> Op,
}

/// The whole-arena ops: an mlock that populates every page (a fault a
/// page), and an mprotect that merges N VMAs into one.
const WHOLE_ARENA_OPS: [WholeArenaOp; 2] = [
    WholeArenaOp {
        name: "mlock, populating",
        setup: |n| {
            vec![Op::Map {
                start: 0,
                len: n,
                prot: Prot::RW,
                kind: Kind::Anon,
            }]
        },
        op: |n| Op::Mlock {
            start: 0,
            len: n,
            onfault: false,
        },
    },
    WholeArenaOp {
        name: "mprotect of N VMAs",
        setup: |n| alternating(n).collect(),
        op: |n| Op::Protect {
            start: 0,
            len: n,
            prot: Prot::RW,
        },
    },
];

/// Each op is timed up to this many times at each size, the fastest kept…
const WHOLE_ARENA_REPS: usize = 3;
/// …but once only if it takes this long (a quadratic op on a large arena).
const WHOLE_ARENA_LONG: Duration = Duration::from_millis(100);

/// One row of the whole-arena table: an op on a backend at the two sizes.
#[derive(Clone, Debug)]
pub struct Growth {
    pub op: &'static str,
    pub backend: &'static str,
    /// Nanoseconds per page at each size.
    pub ns_per_page: [f64; 2],
}

impl Growth {
    /// The cost per page at the larger size over that at the smaller: about
    /// 1 for an op linear in the pages it touches, the ratio of the sizes
    /// for a quadratic one.
    pub fn growth(&self) -> f64 {
        self.ns_per_page[1] / self.ns_per_page[0].max(1e-9)
    }
}

/// The fastest of [`WHOLE_ARENA_REPS`] runs of `w` on `n` pages (of one,
/// if it takes [`WHOLE_ARENA_LONG`]); an error if the op fails or does not
/// leave one VMA.
fn time_whole_arena(b: &mut dyn Timeable, w: &WholeArenaOp, n: Page) -> Result<Duration, String> {
    let mut best = Duration::MAX;
    for _ in 0..WHOLE_ARENA_REPS {
        b.reset();
        for op in (w.setup)(n) {
            let _ = b.run_op(&op);
        }
        let op = (w.op)(n);
        let t = Instant::now();
        let r = b.run_op(&op);
        best = best.min(t.elapsed());
        let vmas = b.layout().len();
        if r.is_err() || vmas != 1 {
            return Err(format!(
                "{}: `{op}` answered {r:?} and left {vmas} VMAs, not ok and 1",
                b.name()
            ));
        }
        if best >= WHOLE_ARENA_LONG {
            break;
        }
    }
    Ok(best)
}

/// Each whole-arena op on each backend at the two sizes of `arenas`.
pub fn whole_arena(arenas: [Page; 2]) -> Result<Vec<Growth>, String> {
    let mut rows = Vec::new();
    for w in &WHOLE_ARENA_OPS {
        for backend in ["model", "impl"] {
            let mut ns_per_page = [0.0; 2];
            for (k, &n) in arenas.iter().enumerate() {
                let mut b: Box<dyn Timeable> = match backend {
                    "model" => Box::new(PageModel::new(n)),
                    _ => Box::new(IntervalImpl::new(n)),
                };
                let t = time_whole_arena(b.as_mut(), w, n)?;
                ns_per_page[k] = t.as_nanos() as f64 / n as f64;
            }
            rows.push(Growth {
                op: w.name,
                backend,
                ns_per_page,
            });
        }
    }
    Ok(rows)
}

/// [`whole_arena`] as a table; a growth of 3 or more is marked.
pub fn whole_arena_table(arenas: [Page; 2]) -> Result<String, String> {
    let [small, large] = arenas;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "whole arena: one op over every page, at {small} and {large} pages\n\
         (ns per page; growth: ns per page at {large} over at {small},\n\
         1x for an op linear in its pages, {}x for a quadratic one):",
        large / small.max(1)
    );
    let _ = writeln!(
        out,
        "  {:<20} {:<7} {:>12} {:>12} {:>8}",
        "op",
        "backend",
        format!("{small} p"),
        format!("{large} p"),
        "growth"
    );
    for row in whole_arena(arenas)? {
        let growth = row.growth();
        let _ = writeln!(
            out,
            "  {:<20} {:<7} {:>12.1} {:>12.1} {:>7.1}x{}",
            row.op,
            row.backend,
            row.ns_per_page[0],
            row.ns_per_page[1],
            growth,
            if growth >= 3.0 { "  not linear" } else { "" }
        );
    }
    Ok(out)
}
