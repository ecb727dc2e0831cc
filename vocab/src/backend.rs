//! The one trait that the model, the implementation and the live kernel
//! answer: a backend answers one step at a time with an [`Outcome`] (the
//! op's result, the layout after it, the open uffd contexts, and whatever
//! else it has to report), so that the checker drives all three the same way
//! and a wrapper (timing, fault injection) wraps one method.

use std::any::Any;
use std::fmt;
use std::hash::Hash;

use crate::event::Event;
use crate::layout::Layout;
use crate::op::{Features, Op, Page, MAX_CTX};

/// An errno a backend returned. Errnos are *results*, not rejections: every
/// backend must return the same one for the same op in the same state.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum Errno {
    EPERM,
    ENOENT,
    EIO,
    EBADF,
    EAGAIN,
    ENOMEM,
    EACCES,
    EFAULT,
    EBUSY,
    EEXIST,
    EINVAL,
    /// Any other errno, by number.
    Other(i32),
}

/// The named errnos with their Linux x86-64 numbers: the one table that
/// [`Errno::from_raw`], [`Errno::raw`] and [`Errno::parse`] read.
const ERRNOS: [(Errno, i32, &str); 11] = [
    (Errno::EPERM, 1, "EPERM"),
    (Errno::ENOENT, 2, "ENOENT"),
    (Errno::EIO, 5, "EIO"),
    (Errno::EBADF, 9, "EBADF"),
    (Errno::EAGAIN, 11, "EAGAIN"),
    (Errno::ENOMEM, 12, "ENOMEM"),
    (Errno::EACCES, 13, "EACCES"),
    (Errno::EFAULT, 14, "EFAULT"),
    (Errno::EBUSY, 16, "EBUSY"),
    (Errno::EEXIST, 17, "EEXIST"),
    (Errno::EINVAL, 22, "EINVAL"),
];

impl Errno {
    /// The errno for a Linux x86-64 error number.
    pub fn from_raw(n: i32) -> Errno {
        ERRNOS
            .iter()
            .find(|(_, raw, _)| *raw == n)
            .map_or(Errno::Other(n), |(e, _, _)| *e)
    }
    /// The Linux x86-64 error number.
    pub fn raw(self) -> i32 {
        match self {
            Errno::Other(n) => n,
            e => ERRNOS
                .iter()
                .find(|(x, _, _)| *x == e)
                .map_or(-1, |(_, raw, _)| *raw),
        }
    }
    /// The name of a named errno (`EINVAL`); `None` for `Other`.
    pub fn name(self) -> Option<&'static str> {
        ERRNOS
            .iter()
            .find(|(x, _, _)| *x == self)
            .map(|(_, _, name)| *name)
    }
    /// Parses `EINVAL` or `errno42`.
    pub fn parse(s: &str) -> Option<Errno> {
        if let Some((e, _, _)) = ERRNOS.iter().find(|(_, _, name)| *name == s) {
            return Some(*e);
        }
        Some(Errno::from_raw(s.strip_prefix("errno")?.parse().ok()?))
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "errno{}", self.raw()),
        }
    }
}

/// What an op returned: `Ok(())` or the errno.
pub type OpResult = Result<(), Errno>;

/// `ok` or the errno's name: the one text form of a result (trace `expect`
/// lines, the worker's answers, `replay`, JSON).
pub fn result_name(r: &OpResult) -> String {
    result_str(r).into_owned()
}

/// [`result_name`], borrowed where the name is fixed (all but `errnoN`).
pub fn result_str(r: &OpResult) -> std::borrow::Cow<'static, str> {
    match r {
        Ok(()) => "ok".into(),
        Err(e) => match e.name() {
            Some(name) => name.into(),
            None => e.to_string().into(),
        },
    }
}

/// The inverse of [`result_name`]: `ok`, `EINVAL`, `errno42`.
pub fn parse_result(s: &str) -> Option<OpResult> {
    if s == "ok" {
        Some(Ok(()))
    } else {
        Errno::parse(s).map(Err)
    }
}

/// Which of the kernel's merge shapes a step took, by the legacy `vma_merge`
/// case number of the 2023 LKML thread: 0 is "no merge, split only", 1 to 8
/// are the merge cases (the table is `uffd_impl::MERGE_CASES`).
pub type MergeCase = u8;

/// The uffd contexts that are open, as a set of context numbers
/// (`0..MAX_CTX`), each with the features it was opened with. Part of the
/// state besides the layout: closing a context that is not open is EBADF.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Contexts {
    open: u8,
    features: [Features; MAX_CTX as usize],
}

impl Contexts {
    pub const fn contains(self, ctx: u8) -> bool {
        ctx < MAX_CTX && self.open & (1 << ctx) != 0
    }
    /// Opens `ctx` with no features if it is not open (a ctx used before
    /// any `open`); an open ctx keeps its features.
    pub fn insert(&mut self, ctx: u8) {
        if !self.contains(ctx) {
            self.insert_with(ctx, Features::NONE);
        }
    }
    pub fn insert_with(&mut self, ctx: u8, features: Features) {
        if ctx < MAX_CTX {
            self.open |= 1 << ctx;
            self.features[ctx as usize] = features;
        }
    }
    pub fn remove(&mut self, ctx: u8) {
        if ctx < MAX_CTX {
            self.open &= !(1 << ctx);
            self.features[ctx as usize] = Features::NONE;
        }
    }
    /// The features `ctx` was opened with, if it is open.
    pub fn features(self, ctx: u8) -> Option<Features> {
        self.contains(ctx).then(|| self.features[ctx as usize])
    }
    /// Is `ctx` open with every feature of `f`?
    pub fn has(self, ctx: u8, f: Features) -> bool {
        self.features(ctx).is_some_and(|x| x.contains(f))
    }
    /// The open contexts, in order.
    pub fn iter(self) -> impl Iterator<Item = u8> {
        (0..MAX_CTX).filter(move |&c| self.contains(c))
    }
}

impl fmt::Display for Contexts {
    /// `0,2(event-remap+event-unmap)`, or `none`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v: Vec<String> = self
            .iter()
            .map(|c| match self.features(c) {
                Some(x) if !x.is_empty() => format!("{c}({x})"),
                _ => c.to_string(),
            })
            .collect();
        if v.is_empty() {
            write!(f, "none")
        } else {
            write!(f, "{}", v.join(","))
        }
    }
}

impl std::str::FromStr for Contexts {
    type Err = String;
    /// The inverse of `Display`.
    fn from_str(s: &str) -> Result<Contexts, String> {
        let mut c = Contexts::default();
        if s == "none" {
            return Ok(c);
        }
        for item in s.split(',') {
            let (num, features) = match item.strip_suffix(')').and_then(|i| i.split_once('(')) {
                Some((n, f)) => (n, f.parse::<Features>()?),
                None => (item, Features::NONE),
            };
            match num.parse::<u8>() {
                Ok(n) if n < MAX_CTX => c.insert_with(n, features),
                _ => return Err(format!("bad context {item:?} in {s:?}")),
            }
        }
        Ok(c)
    }
}

impl fmt::Debug for Contexts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A 128-bit fingerprint of anything hashable: XXH3-128 of the bytes its
/// `Hash` writes, with no seed, so the same value has the same fingerprint
/// in every run. (Collected first and hashed in one go: `explore` takes
/// one a transition, and two SipHash runs over the many small writes were
/// a fifth of its time.)
pub fn fingerprint128(value: &impl std::hash::Hash) -> u128 {
    thread_local! {
        static BYTES: std::cell::RefCell<Bytes> = const { std::cell::RefCell::new(Bytes(Vec::new())) };
    }
    BYTES.with(|bytes| {
        let mut bytes = bytes.borrow_mut();
        bytes.0.clear();
        value.hash(&mut *bytes);
        xxhash_rust::xxh3::xxh3_128(&bytes.0)
    })
}

/// A `Hasher` that keeps the bytes written to it, for [`fingerprint128`].
struct Bytes(Vec<u8>);

impl std::hash::Hasher for Bytes {
    fn write(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }
    /// Not a hash: [`fingerprint128`] reads the bytes.
    fn finish(&self) -> u64 {
        self.0.len() as u64
    }
}

/// What a backend has to say about a step besides its result and layout.
#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub struct StepReport {
    /// The merge cases the step took, in order (the implementation
    /// reports them; the model and the kernel cannot see them).
    pub merges: Vec<MergeCase>,
    /// Coverage events: named situations the step went through (an
    /// anon_vma reused, a merge refused for a reason…), counted by `check`
    /// and required by the coverage tests (the implementation reports
    /// them). Not the uffd events of [`Outcome::events`].
    pub covered: Vec<&'static str>,
    /// The known deviation rules, by name (`uffd_model::Deviation::name`),
    /// that changed this step's outcome from the contract's (the model
    /// reports them, and so does any backend the checker gives a model's
    /// knowledge of deviations to).
    pub deviations: Vec<&'static str>,
    /// Where the layout keeps a VMA apart from an equal VMA before it
    /// because a known deviation rule says the kernel does: the start page
    /// of each such VMA. `minimal-fragmentation` does not judge these
    /// boundaries, whichever backend reports them.
    pub kept_apart: Vec<Page>,
    /// Violated preconditions (the kernel's VM_WARN_ON conditions) or a
    /// backend failure (a worker that died or hung, a layout it could not
    /// read), each as `(invariant name, text)`.
    pub violations: Vec<(&'static str, String)>,
}

impl StepReport {
    /// Empties every list, keeping its memory. Every field is named, so a
    /// new one cannot be forgotten here.
    pub fn clear(&mut self) {
        let StepReport {
            merges,
            covered,
            deviations,
            kept_apart,
            violations,
        } = self;
        merges.clear();
        covered.clear();
        deviations.clear();
        kept_apart.clear();
        violations.clear();
    }
}

/// One backend's answer to one step.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// The backend's name (`model`, `impl`, `kernel`).
    pub backend: &'static str,
    pub result: OpResult,
    /// The VMAs of the arena after the op, with what the backend does not
    /// observe marked as unknown ([`Layout::unobserved`]).
    pub layout: Layout,
    /// The uffd contexts open after the op.
    pub open: Contexts,
    /// The non-cooperative events the op raised, in the order sent.
    pub events: Vec<Event>,
    /// Everything the backend noticed during the step, reading the layout
    /// included.
    pub report: StepReport,
}

/// A backend's answer to an op it does not implement (yet): the checker
/// leaves that backend out for the rest of the sequence, and counts it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Unsupported;

/// A backend: answers one op at a time. Arena-relative pages throughout; ops
/// are already validated for the arena size the backend was made with.
///
/// A new op costs each backend one arm in its `step`; wrappers (timing,
/// fault injection) wrap `step` and so cannot forget an op.
pub trait Backend {
    /// `model`, `impl` or `kernel`.
    fn name(&self) -> &'static str;
    /// The arena size in pages.
    fn pages(&self) -> Page;

    /// Runs one op and answers with its result, the layout after it, the
    /// open contexts and the step's report; or [`Unsupported`].
    fn step(&mut self, op: &Op) -> Result<Outcome, Unsupported>;

    /// Back to an empty arena with no uffd open.
    fn reset(&mut self);

    /// A promise: these ops will be asked next, in this order; the caller
    /// may stop early, but then calls [`Backend::reset`] before anything
    /// else (the checker does both). A backend may run them ahead (the
    /// kernel backend sends them all to its worker at once, saving a round
    /// trip per step). The default ignores it.
    fn plan(&mut self, _ops: &[Op]) {}

    /// A copy of this backend in its present state (a snapshot, not
    /// fork(2)), when one is cheap to make (the model and the
    /// implementation; not the kernel). `explore` uses it to try every op
    /// from a state without replaying the path to it; without it, the path
    /// is replayed.
    fn snapshot(&self) -> Option<Box<dyn Backend>> {
        None
    }

    /// Makes this backend (a [`Backend::snapshot`]) what `base` (another
    /// one) is now, as a new snapshot of `base` would be, but in the
    /// memory this one already holds; false, and nothing changed, when it
    /// cannot (`base` is of another type, or the backend has no way: the
    /// default). `explore` restores one copy a transition, a billion
    /// times at 6 pages and depth 4.
    fn restore(&mut self, _base: &dyn Backend) -> bool {
        false
    }

    /// This backend as [`Any`], for a [`Backend::restore`] to know a base
    /// of its own type ([`downcast`]); `None` by default.
    fn as_any(&self) -> Option<&dyn Any> {
        None
    }

    /// Hands back an outcome this backend answered, once the caller is
    /// done with it (the checker: at the step after): the backend may take
    /// its vectors, to hold a later step's answer instead of new ones.
    /// None of it is state. The default takes nothing.
    fn recycle(&mut self, _outcome: &mut Outcome) {}

    /// A line about where the backend's own time went, for `check`'s
    /// throughput table (the kernel: syscalls versus reading smaps).
    fn costs(&self) -> Option<String> {
        None
    }

    /// A canonical fingerprint of the whole state: what the layout shows
    /// and what it does not but decides later results (pages written, the
    /// page cache). `explore` deduplicates states on the reference's; with
    /// `None` it uses the layout and the open contexts.
    fn fingerprint(&self) -> Option<u128> {
        None
    }

    /// [`Backend::fingerprint`], right after the step of `op` answered
    /// `outcome`: the same value, which a backend may take in part from
    /// the outcome instead of computing it again (the model's layout). The
    /// default ignores them.
    fn fingerprint_after(&self, _op: &Op, _outcome: &Outcome) -> Option<u128> {
        self.fingerprint()
    }
}

/// `b` as the backend type `T`, when it is one ([`Backend::as_any`]).
pub fn downcast<T: 'static>(b: &dyn Backend) -> Option<&T> {
    b.as_any()?.downcast_ref()
}

/// [`Backend::restore`] for a backend of type `T`: `restore_from` with
/// `base` when it is a `T` ([`downcast`]); whether it was.
pub fn restore_with<T: 'static>(base: &dyn Backend, restore_from: impl FnOnce(&T)) -> bool {
    downcast(base).map(restore_from).is_some()
}

impl<B: Backend + ?Sized> Backend for Box<B> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn pages(&self) -> Page {
        (**self).pages()
    }
    fn step(&mut self, op: &Op) -> Result<Outcome, Unsupported> {
        (**self).step(op)
    }
    fn reset(&mut self) {
        (**self).reset()
    }
    fn plan(&mut self, ops: &[Op]) {
        (**self).plan(ops)
    }
    fn snapshot(&self) -> Option<Box<dyn Backend>> {
        (**self).snapshot()
    }
    fn restore(&mut self, base: &dyn Backend) -> bool {
        (**self).restore(base)
    }
    fn recycle(&mut self, outcome: &mut Outcome) {
        (**self).recycle(outcome)
    }
    fn as_any(&self) -> Option<&dyn Any> {
        (**self).as_any()
    }
    fn costs(&self) -> Option<String> {
        (**self).costs()
    }
    fn fingerprint(&self) -> Option<u128> {
        (**self).fingerprint()
    }
    fn fingerprint_after(&self, op: &Op, outcome: &Outcome) -> Option<u128> {
        (**self).fingerprint_after(op, outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_names_and_numbers_round_trip() {
        for (e, raw, name) in ERRNOS {
            assert_eq!(Errno::from_raw(raw), e);
            assert_eq!(e.raw(), raw);
            assert_eq!(Errno::parse(name), Some(e));
            assert_eq!(e.to_string(), name);
            assert_eq!(result_str(&Err(e)), name);
        }
        assert_eq!(result_str(&Ok(())), "ok");
        assert_eq!(result_str(&Err(Errno::Other(42))), "errno42");
        assert_eq!(Errno::parse("errno42"), Some(Errno::Other(42)));
        assert_eq!(Errno::Other(42).to_string(), "errno42");
        assert_eq!(parse_result("ok"), Some(Ok(())));
        assert_eq!(parse_result("EBUSY"), Some(Err(Errno::EBUSY)));
        assert_eq!(parse_result("bogus"), None);
    }

    #[test]
    fn contexts_are_a_small_set() {
        let mut c = Contexts::default();
        assert_eq!(c.to_string(), "none");
        c.insert(2);
        c.insert(0);
        c.insert(200);
        assert_eq!(c.to_string(), "0,2");
        c.remove(0);
        assert!(c.contains(2) && !c.contains(0));
        c.insert_with(1, Features::REMAP.union(Features::UNMAP));
        assert_eq!(c.to_string(), "1(event-remap+event-unmap),2");
        assert_eq!(c.to_string().parse::<Contexts>(), Ok(c));
        let every = Features::ALL
            .iter()
            .fold(Features::NONE, |all, (f, _)| all.union(*f));
        assert_eq!(every, Features::EVERY);
    }
}
