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
//! [`check`] runs them in lock step and checks the [`check::INVARIANTS`]
//! after every step; [`gen`] makes random sequences; [`trace`] reads and
//! writes trace files; [`draw`] draws layouts the LKML way.

pub mod backends;
pub mod bench;
pub mod cases;
pub mod check;
pub mod draw;
pub mod explore;
pub mod gen;
pub mod repro;
pub mod runner;
pub mod trace;
pub mod vm;

pub use uffd_kernel as kernel;
pub use uffd_model as model;
pub use uffd_vocab as vocab;
