//! `check`'s sequences, generated fast: the very sequences proptest's
//! runner makes from [`crate::gen::ops`] for a seed, in the same order,
//! drawn straight from the same ChaCha stream without building proptest's
//! value trees (which were two thirds of a `check` run).
//!
//! Proptest's runner gives case `i` its own RNG, seeded with 32 bytes drawn
//! from the RNG of case `i - 1` after that case was generated (the first
//! from the runner's own RNG). A strategy draws its values from the case's
//! RNG in a fixed order: a union draws its pick, then 32 bytes for each
//! alternative before the pick (the seed of the lazy value tree it keeps
//! for shrinking), then the picked alternative's values; a range draws one
//! uniform sample; a weighted bool one Bernoulli sample; a vec its length,
//! then its elements. [`ops`] makes the same draws in the same order, so it
//! returns what `gen::ops(..).new_tree(..).current()` returns for that RNG
//! (`tests` below compare the two on thousands of sequences). A failing
//! sequence is shrunk by proptest itself: [`Generated::tree`] builds its
//! value tree again from the case's seed.
//!
//! A change to a strategy of `gen` must be made here too; the tests fail
//! until it is.

use chacha20::ChaCha20Rng;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use rand::distr::{Distribution, Uniform};
use rand::{Rng, RngExt, SeedableRng};
use uffd_vocab::{Advice, Features, Fill, Mode, Op, Page, Prot, MAX_CTX, MAX_FILES};

use crate::gen::{self, KindPick};

/// One sequence of a run: its index, the seed of its RNG and its ops.
#[derive(Clone, Debug)]
pub struct Generated {
    pub index: u64,
    pub seed: [u8; 32],
    pub ops: Vec<Op>,
}

impl Generated {
    /// Proptest's value tree of this sequence (`current()` is `ops`), to
    /// shrink it with proptest's own moves.
    pub fn tree(&self, pages: Page, max_len: usize) -> impl ValueTree<Value = Vec<Op>> {
        let config = Config {
            failure_persistence: None,
            ..Config::default()
        };
        let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &self.seed);
        let mut runner = TestRunner::new_with_rng(config, rng);
        gen::ops(pages, max_len)
            .new_tree(&mut runner)
            .expect("gen::ops rejects only empty sequences, and retries")
    }
}

/// The sequences of a run for a seed, in proptest's order.
pub struct Sequences {
    rng: ChaCha20Rng,
    next: u64,
    pages: Page,
    max_len: usize,
}

impl Sequences {
    /// The sequences proptest's runner makes for `runner_seed` (the 32
    /// bytes of `runner::seeded_runner`) on an arena of `pages` pages (≥ 1),
    /// each of up to `max_len` ops.
    pub fn new(runner_seed: [u8; 32], pages: Page, max_len: usize) -> Sequences {
        Sequences {
            rng: ChaCha20Rng::from_seed(runner_seed),
            next: 0,
            pages,
            max_len,
        }
    }
}

impl Iterator for Sequences {
    type Item = Generated;
    fn next(&mut self) -> Option<Generated> {
        let seed: [u8; 32] = self.rng.random();
        self.rng = ChaCha20Rng::from_seed(seed);
        let ops = ops(&mut self.rng, self.pages, self.max_len);
        let index = self.next;
        self.next += 1;
        Some(Generated { index, seed, ops })
    }
}

/// Skips the draws of the lazy value trees a union keeps for its `n`
/// alternatives before the pick: 32 bytes each, as `[u8; 32]` is drawn
/// (one 32-bit word a byte).
fn skip_lazy(rng: &mut ChaCha20Rng, n: usize) {
    let words = 32 * n as u128;
    if words >= 64 {
        rng.set_word_pos(rng.get_word_pos() + words);
    } else if words > 0 {
        // (Whole words: the same as 32 `next_u32`s, copied out in one go.)
        rng.fill_bytes(&mut [0u8; 128]);
    }
}

/// A weighted pick among alternatives, as proptest's unions make it.
/// (Inlined: each call's weights are constants, so their sum and the
/// search fold away; 3.5% of a `check` run's instructions.)
#[inline(always)]
fn pick(rng: &mut ChaCha20Rng, weights: &[u32]) -> usize {
    let sum: u64 = weights.iter().map(|&w| u64::from(w)).sum();
    let x = uniform(rng, 0, sum);
    let mut acc = 0u64;
    let chosen = weights
        .iter()
        .take_while(|&&w| {
            acc += u64::from(w);
            acc <= x
        })
        .count();
    skip_lazy(rng, chosen);
    chosen
}

/// `lo..hi`, as a proptest range of u64 (or of usize, which samples u64).
fn uniform(rng: &mut ChaCha20Rng, lo: u64, hi: u64) -> u64 {
    Uniform::new(lo, hi).expect("a non-empty range").sample(rng)
}

/// `lo..=hi`, as a proptest range of u64.
fn uniform_incl(rng: &mut ChaCha20Rng, lo: u64, hi: u64) -> u64 {
    Uniform::new_inclusive(lo, hi)
        .expect("a non-empty range")
        .sample(rng)
}

/// `lo..hi`, as a proptest range of u8.
fn uniform_u8(rng: &mut ChaCha20Rng, lo: u8, hi: u8) -> u8 {
    Uniform::new(lo, hi).expect("a non-empty range").sample(rng)
}

/// [`gen::range`].
fn range(rng: &mut ChaCha20Rng, pages: Page) -> (Page, Page) {
    let grid = (pages / 4).max(1);
    let edge = |rng: &mut ChaCha20Rng| {
        let x = match pick(rng, &[3, 2]) {
            0 => uniform_incl(rng, 0, pages / grid) * grid,
            _ => uniform_incl(rng, 0, pages),
        };
        x.min(pages)
    };
    match pick(rng, &[20, 6, 2, 1]) {
        0 => {
            let (a, b) = (edge(rng), edge(rng));
            (a.min(b), a.max(b) - a.min(b))
        }
        1 => {
            let s = uniform(rng, 0, pages);
            let l = uniform_incl(rng, 1, 3);
            (s, l.min(pages - s))
        }
        2 => (0, pages),
        _ => (uniform_incl(rng, 0, pages), 0),
    }
}

/// [`gen::page`].
fn page(rng: &mut ChaCha20Rng, pages: Page) -> Page {
    let grid = (pages / 4).max(1);
    match pick(rng, &[3, 2]) {
        0 => (uniform(rng, 0, pages.div_ceil(grid)) * grid).min(pages - 1),
        _ => uniform(rng, 0, pages),
    }
}

/// [`gen::prot`].
fn prot(rng: &mut ChaCha20Rng) -> Prot {
    match pick(rng, &[6, 3, 1, 1]) {
        0 => Prot::RW,
        1 => Prot::from_bits(Prot::READ),
        2 => Prot::NONE,
        _ => Prot::from_bits(uniform_u8(rng, 0, 8)),
    }
}

/// [`gen::kind`].
fn kind(rng: &mut ChaCha20Rng, pages: Page) -> KindPick {
    let tag = pick(rng, &[8, 2, 3, 3, 2, 1]) as u8;
    let file = match pick(rng, &[4, 2, 1]) {
        0 => 0,
        1 => 1,
        _ => uniform_u8(rng, 0, MAX_FILES),
    };
    let pgoff = match pick(rng, &[6, 1, 2]) {
        0 => None,
        1 => Some(uniform(rng, 0, pages + 8)),
        _ => Some(uniform(rng, 0, 4)),
    };
    KindPick::new(tag, file, pgoff)
}

/// [`gen::ctx`].
fn ctx(rng: &mut ChaCha20Rng) -> u8 {
    match pick(rng, &[6, 3, 1]) {
        0 => 0,
        1 => 1,
        _ => uniform_u8(rng, 0, MAX_CTX),
    }
}

/// [`gen::mode`].
fn mode(rng: &mut ChaCha20Rng) -> Mode {
    match pick(rng, &[5, 3, 2, 2, 1, 1]) {
        0 => Mode::MISSING,
        1 => Mode::WP,
        2 => Mode(3),
        3 => Mode::MINOR,
        4 => Mode(uniform(rng, 1, 8)),
        _ => [Mode(0), Mode(8), Mode(9)][pick(rng, &[1, 1, 1])],
    }
}

/// [`gen::mremap`].
fn mremap(rng: &mut ChaCha20Rng, pages: Page) -> Op {
    let (start, len) = range(rng, pages);
    let how = uniform_u8(rng, 0, 8);
    let (dst, other) = range(rng, pages);
    let form = uniform_u8(rng, 0, 10);
    gen::mremap_of(pages, (start, len), how, (dst, other), form)
}

/// [`gen::op`].
fn op(rng: &mut ChaCha20Rng, pages: Page) -> Op {
    match pick(rng, &[6, 2, 4, 7, 5, 2, 6, 4, 2, 1, 8, 2, 2, 8, 8, 3, 4]) {
        0 => {
            let (start, len) = range(rng, pages);
            let prot = prot(rng);
            let kind = kind(rng, pages).at(start);
            Op::Map {
                start,
                len,
                prot,
                kind,
            }
        }
        1 => {
            let (start, len) = range(rng, pages);
            Op::Unmap { start, len }
        }
        2 => {
            let (start, len) = range(rng, pages);
            Op::Protect {
                start,
                len,
                prot: prot(rng),
            }
        }
        3 => {
            let ctx = ctx(rng);
            let (start, len) = range(rng, pages);
            let mode = mode(rng);
            Op::Register {
                ctx,
                start,
                len,
                mode,
            }
        }
        4 => {
            let ctx = ctx(rng);
            let (start, len) = range(rng, pages);
            Op::Unregister { ctx, start, len }
        }
        5 => Op::Close { ctx: ctx(rng) },
        6 => {
            let page = page(rng, pages);
            let read = rng.random_bool(0.25);
            Op::Fault { page, read }
        }
        7 => {
            let (start, len) = range(rng, pages);
            let advice = Advice::ALL[uniform(rng, 0, Advice::ALL.len() as u64) as usize].0;
            Op::Madvise { start, len, advice }
        }
        8 => {
            let (start, len) = range(rng, pages);
            let onfault = rng.random_bool(0.3);
            Op::Mlock {
                start,
                len,
                onfault,
            }
        }
        9 => {
            let (start, len) = range(rng, pages);
            Op::Munlock { start, len }
        }
        10 => mremap(rng, pages),
        11 => {
            let ctx = ctx(rng);
            let features = Features::from_bits(rng.random_range(0..32));
            Op::Open { ctx, features }
        }
        12 => Op::Fork,
        14 => {
            let how = [Fill::Copy, Fill::ZeroPage, Fill::Continue, Fill::Poison]
                [pick(rng, &[3, 1, 2, 1])];
            let ctx = ctx(rng);
            let range = range(rng, pages);
            let page = page(rng, pages);
            let n = uniform_incl(rng, 1, 2);
            let small = rng.random_bool(0.5);
            let wp = rng.random_bool(0.3);
            gen::fill_op(pages, how, ctx, range, (page, n, small), wp)
        }
        15 => {
            let (start, len) = range(rng, pages);
            let advice = [Advice::DontNeed, Advice::Remove, Advice::Free][pick(rng, &[3, 1, 1])];
            Op::Madvise { start, len, advice }
        }
        16 => {
            let ctx = ctx(rng);
            let start = page(rng, pages);
            let len = uniform_incl(rng, 1, 2).min(pages - start);
            let far = page(rng, pages);
            let off = uniform_incl(rng, 0, 2 * gen::MOVE_NEAR);
            let near = rng.random_bool(0.7);
            let holes = rng.random_bool(0.3);
            Op::Move {
                ctx,
                src: gen::move_src(pages, start, len, far, off, near),
                start,
                len,
                holes,
            }
        }
        _ => {
            let ctx = ctx(rng);
            let (start, len) = range(rng, pages);
            let on = rng.random_bool(0.8);
            Op::WriteProtect {
                ctx,
                start,
                len,
                on,
            }
        }
    }
}

/// [`gen::ops`]: the sequence `gen::ops(pages, max_len)` makes from `rng`.
pub fn ops(rng: &mut ChaCha20Rng, pages: Page, max_len: usize) -> Vec<Op> {
    let max_len = max_len.max(1);
    // proptest::option::weighted(0.9, _): a union of None and Some, with
    // weights of 2^31 in all.
    let some = (0.9 * f64::from(1u32 << 31)).round() as u32;
    loop {
        // At most one map and `max_len - 1` ops: one allocation.
        let mut all = Vec::with_capacity(max_len);
        if pick(rng, &[(1u32 << 31) - some, some]) == 1 {
            let len = uniform_incl(rng, 1, pages);
            let prot = prot(rng);
            let kind = kind(rng, pages).at(0);
            all.push(Op::Map {
                start: 0,
                len,
                prot,
                kind,
            });
        }
        let n = Uniform::new_inclusive(0usize, max_len - 1)
            .expect("a non-empty range")
            .sample(rng);
        all.extend((0..n).map(|_| op(rng, pages)));
        let memfd = rng.random_bool(0.2);
        let moving = rng.random_bool(0.15);
        if memfd {
            all = all.into_iter().map(gen::memfd_flavour).collect();
        } else if moving {
            all = all.into_iter().map(gen::move_flavour).collect();
        }
        // prop_filter: an empty sequence is drawn again.
        if !all.is_empty() {
            return all;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// The same sequences as proptest's runner makes with `gen::ops`,
    /// sequence by sequence, for several seeds and arenas; and each one's
    /// value tree starts from it.
    #[test]
    fn the_same_sequences_as_proptest() {
        for (seed, pages, max_len) in [(1, 16, 40), (35, 16, 40), (7, 1, 5), (3, 64, 80), (9, 3, 1)]
        {
            let cases = 2_000;
            let seen = RefCell::new(Vec::new());
            crate::runner::seeded_runner(seed, cases)
                .run(&gen::ops(pages, max_len), |ops| {
                    seen.borrow_mut().push(ops);
                    Ok(())
                })
                .unwrap();
            let seen = seen.into_inner();
            let ours = Sequences::new(crate::runner::runner_seed(seed), pages, max_len);
            for (g, expected) in ours.zip(&seen) {
                assert_eq!(expected, &g.ops, "seed {seed}, sequence {}", g.index);
            }
            let some = Sequences::new(crate::runner::runner_seed(seed), pages, max_len);
            for g in some.step_by(97).take(20) {
                assert_eq!(g.tree(pages, max_len).current(), g.ops);
            }
        }
    }
}
