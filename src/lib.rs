//! # uffd-check
//!
//! A property-based model-checking harness for Linux VMA layouts under
//! userfaultfd register/unregister. Three backends run the same op sequence
//! and must agree after every step:
//!
//! - [`uffd_model::PageModel`]: the naive page-granular reference;
//! - [`uffd_impl::IntervalImpl`]: the interval implementation shaped like
//!   the kernel's `vma_merge`;
//! - [`uffd_kernel::KernelBackend`]: the live Linux kernel, in a worker
//!   process.
//!
//! All three speak the vocabulary of [`uffd_vocab`] and answer its
//! `Backend` trait one step at a time.
//!
//! The modules, each using only those before it in this list:
//!
//! - [`draw`] draws layouts the LKML way; [`trace`] reads and writes trace
//!   files; [`interrupt`] is Ctrl-C;
//! - [`check`] runs backends in lock step (its one stepping loop,
//!   [`check::step_checked`]) and checks the [`check::INVARIANTS`] after
//!   every step;
//! - [`explore`] checks every short sequence, breadth first, through
//!   `check`;
//! - [`shrink`] makes a failing sequence smaller, through `check` and
//!   `explore`;
//! - [`gen`] makes random sequences; [`runner`] runs them (`check`) and
//!   shrinks a failure (proptest, then `shrink`);
//! - [`backends`] makes backend sets from a list like `model,impl,kernel`;
//!   [`setup`] is what a command line run runs on; [`print`] is the text
//!   the command line prints, [`found`] writes and prints a failing case;
//! - [`cases`] replays `cases/`, [`repro`] turns a trace into a C program,
//!   [`bench`] times the model and the implementation.

pub mod backends;
pub mod bench;
pub mod bench_check;
pub mod cases;
pub mod check;
pub mod draw;
pub mod explore;
pub mod explore_jobs;
pub mod found;
pub mod gen;
pub mod interrupt;
pub mod jobs;
pub mod matrix;
pub mod print;
pub mod profile;
pub mod repro;
pub mod runner;
pub mod sequences;
pub mod setup;
pub mod shrink;
pub mod trace;
pub mod vm;

pub use uffd_kernel as kernel;
pub use uffd_model as model;
pub use uffd_vocab as vocab;
