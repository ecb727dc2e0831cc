//! # uffd-vocab
//!
//! The vocabulary every part of uffd-check speaks, and nothing else: the
//! operation language ([`Op`], one trace line each), what a backend reports
//! after a step ([`Layout`] of [`Vma`]s, with ONE text form used by trace
//! `expect` lines, the kernel worker's wire format and `replay`), errnos and
//! their names, and the [`Backend`] trait with its step [`Outcome`].
//!
//! The three backends are sibling crates that depend on this one and on
//! nothing of each other: `uffd-model` (the naive page model, the contract),
//! `uffd-impl` (the interval implementation shaped like the kernel's code)
//! and `uffd-kernel` (the live kernel in a worker process).

pub mod backend;
pub mod event;
pub mod history;
pub mod layout;
pub mod op;

pub use backend::{
    downcast, fingerprint128, parse_result, restore_with, result_name, result_str, Backend,
    Contexts, Errno, MergeCase, OpResult, Outcome, StepReport, Unsupported,
};
pub use event::{events_text, parse_events, Event, EventKind};
pub use history::{History, Series};
pub use layout::{
    parse_ptes, parse_wp, ptes_text, wp_text, Backing, Layout, PteKind, PteState, SmapsFlags,
    Unobserved, VmFlags, Vma,
};
pub use op::{
    words, Advice, Features, Fill, Kind, Mode, Op, Page, ParseError, Prot, Remap, MAX_CTX,
    MAX_FILES, MAX_PAGES, MAX_PGOFF,
};
