//! uffd-check: the harness.
pub use uffd_model as model;
