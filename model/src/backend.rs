//! The one trait that the model, the implementation and the live kernel
//! answer, so that the checker can drive all three the same way.

use std::fmt;

use crate::layout::Layout;
use crate::op::{Kind, Mode, Op, Page, Prot};

/// An errno a backend returned. Errnos are *results*, not rejections: every
/// backend must return the same one for the same op in the same state.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum Errno {
    EPERM,
    EBADF,
    ENOMEM,
    EACCES,
    EFAULT,
    EBUSY,
    EEXIST,
    EINVAL,
    /// Any other errno, by number.
    Other(i32),
}

impl Errno {
    /// The errno for a Linux x86-64 error number.
    pub fn from_raw(n: i32) -> Errno {
        match n {
            1 => Errno::EPERM,
            9 => Errno::EBADF,
            12 => Errno::ENOMEM,
            13 => Errno::EACCES,
            14 => Errno::EFAULT,
            16 => Errno::EBUSY,
            17 => Errno::EEXIST,
            22 => Errno::EINVAL,
            n => Errno::Other(n),
        }
    }
    /// The Linux x86-64 error number.
    pub fn raw(self) -> i32 {
        match self {
            Errno::EPERM => 1,
            Errno::EBADF => 9,
            Errno::ENOMEM => 12,
            Errno::EACCES => 13,
            Errno::EFAULT => 14,
            Errno::EBUSY => 16,
            Errno::EEXIST => 17,
            Errno::EINVAL => 22,
            Errno::Other(n) => n,
        }
    }
    /// Parses `EINVAL` or `errno42`.
    pub fn parse(s: &str) -> Option<Errno> {
        Some(match s {
            "EPERM" => Errno::EPERM,
            "EBADF" => Errno::EBADF,
            "ENOMEM" => Errno::ENOMEM,
            "EACCES" => Errno::EACCES,
            "EFAULT" => Errno::EFAULT,
            "EBUSY" => Errno::EBUSY,
            "EEXIST" => Errno::EEXIST,
            "EINVAL" => Errno::EINVAL,
            _ => Errno::from_raw(s.strip_prefix("errno")?.parse().ok()?),
        })
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Errno::Other(n) => write!(f, "errno{n}"),
            e => write!(f, "{e:?}"),
        }
    }
}

/// What an op returned: `Ok(())` or the errno.
pub type OpResult = Result<(), Errno>;

/// `ok` or the errno's name.
pub fn result_name(r: &OpResult) -> String {
    match r {
        Ok(()) => "ok".to_string(),
        Err(e) => e.to_string(),
    }
}

/// Which of the kernel's merge shapes a step took, by the legacy `vma_merge`
/// case number of the 2023 LKML thread (reference §5): 0 is "no merge, split
/// only", 1 to 8 are the merge cases.
pub type MergeCase = u8;

/// What a backend has to say about a step besides its result and layout.
#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub struct StepReport {
    /// The merge cases the step took, in order (implementation only).
    pub merges: Vec<MergeCase>,
    /// Violated preconditions (the kernel's VM_WARN_ON conditions) or a
    /// backend failure (a worker that died or hung), each as
    /// `(invariant name, text)`.
    pub violations: Vec<(&'static str, String)>,
}

/// A backend: one method per op, each returning the op's result, plus the
/// layout. Arena-relative pages throughout; ops are already validated for the
/// arena size the backend was made with.
pub trait Backend {
    /// `model`, `impl` or `kernel`.
    fn name(&self) -> &'static str;
    /// The arena size in pages.
    fn pages(&self) -> Page;

    fn map(&mut self, start: Page, len: Page, prot: Prot, kind: Kind) -> OpResult;
    fn unmap(&mut self, start: Page, len: Page) -> OpResult;
    fn protect(&mut self, start: Page, len: Page, prot: Prot) -> OpResult;
    fn register(&mut self, ctx: u8, start: Page, len: Page, mode: Mode) -> OpResult;
    fn unregister(&mut self, ctx: u8, start: Page, len: Page) -> OpResult;
    fn close(&mut self, ctx: u8) -> OpResult;

    /// The VMAs of the arena now.
    fn layout(&mut self) -> Layout;

    /// Back to an empty arena with no uffd open.
    fn reset(&mut self);

    /// A promise: these ops will be asked next, in this order, each followed
    /// by a [`Backend::layout`]; the caller may stop early, but then calls
    /// [`Backend::reset`] before anything else (the checker does both). A
    /// backend may run them ahead (the kernel backend sends them all to its
    /// worker at once, saving a round trip per step). The default ignores it.
    fn plan(&mut self, _ops: &[Op]) {}

    /// What the last op had to say besides its result (merge cases taken,
    /// violations); taking it clears it.
    fn take_report(&mut self) -> StepReport {
        StepReport::default()
    }

    /// Runs one op.
    fn apply(&mut self, op: &Op) -> OpResult {
        match *op {
            Op::Map {
                start,
                len,
                prot,
                kind,
            } => self.map(start, len, prot, kind),
            Op::Unmap { start, len } => self.unmap(start, len),
            Op::Protect { start, len, prot } => self.protect(start, len, prot),
            Op::Register {
                ctx,
                start,
                len,
                mode,
            } => self.register(ctx, start, len, mode),
            Op::Unregister { ctx, start, len } => self.unregister(ctx, start, len),
            Op::Close { ctx } => self.close(ctx),
        }
    }
}
