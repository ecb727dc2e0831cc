//! # uffd-model
//!
//! The naive, page-granular reference model ([`PageModel`]): the contract
//! the implementation and the live kernel are checked against.
//!
//! The model keeps one entry per page of the arena and does every operation
//! as a plain loop over pages, in the order the kernel checks things. Its
//! layout is *derived*: maximal runs of pages that may be one VMA
//! ([`uffd_vocab::Vma::mergeable_with`]). So "minimal fragmentation" holds for the model
//! by construction, and the model has no merge logic that could be wrong.

pub mod page_model;

pub use page_model::{Deviation, PageModel};
