//! # uffd-model
//!
//! The vocabulary every part of uffd-check speaks ([`Op`], [`Layout`],
//! [`Backend`]) and the naive, page-granular reference model
//! ([`PageModel`]).
//!
//! The model keeps one entry per page of the arena and does every operation
//! as a plain loop over pages, in the order the kernel checks things. Its
//! layout is *derived*: maximal runs of pages that may be one VMA
//! ([`Vma::mergeable_with`]). So "minimal fragmentation" holds for the model
//! by construction, and the model has no merge logic that could be wrong.

pub mod backend;
pub mod layout;
pub mod op;
pub mod page_model;

pub use backend::{result_name, Backend, Errno, MergeCase, OpResult, StepReport};
pub use layout::{Backing, Layout, VmFlags, Vma};
pub use op::{Kind, Mode, Op, Page, ParseError, Prot, MAX_CTX, MAX_FILES, MAX_PGOFF};
pub use page_model::PageModel;
