//! The one factory of backend sets: a list like `model,impl,kernel` becomes
//! boxed backends for an arena, the implementation with the chosen bugs put
//! back and the kernel in a fresh worker, on this machine or in a guest
//! ([`KernelTarget`]). `check`, `replay` and `explore` (and the tests) make
//! their backends here.

use std::fmt;
use std::str::FromStr;

use uffd_impl::{Bugs, IntervalImpl};
use uffd_model::{Deviation, PageModel};
use uffd_vocab::{Backend, Page};

pub use crate::vm::backend::KernelTarget;

/// One of the three backends.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Which {
    Model,
    Impl,
    Kernel,
}

impl Which {
    pub fn name(self) -> &'static str {
        match self {
            Which::Model => "model",
            Which::Impl => "impl",
            Which::Kernel => "kernel",
        }
    }
}

impl fmt::Display for Which {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A list of distinct backends, the first the reference: `model,impl`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct BackendList(pub Vec<Which>);

impl BackendList {
    pub fn contains(&self, w: Which) -> bool {
        self.0.contains(&w)
    }
}

impl FromStr for BackendList {
    type Err = String;
    fn from_str(s: &str) -> Result<BackendList, String> {
        let mut out = Vec::new();
        for name in s.split(',') {
            let w = match name.trim() {
                "model" => Which::Model,
                "impl" => Which::Impl,
                "kernel" => Which::Kernel,
                other => {
                    return Err(format!(
                        "unknown backend {other:?}: expected model, impl or kernel"
                    ))
                }
            };
            if out.contains(&w) {
                return Err(format!("backend {w} is listed twice in {s:?}"));
            }
            out.push(w);
        }
        Ok(BackendList(out))
    }
}

impl fmt::Display for BackendList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.0.iter().map(|w| w.name()).collect();
        f.write_str(&names.join(","))
    }
}

/// The uffd-check binary, which runs the kernel worker when called as
/// `uffd-check __worker PAGES`: this executable when it is uffd-check,
/// otherwise `UFFD_CHECK_BIN` (tests point it at their built binary).
pub fn worker_exe() -> Result<std::path::PathBuf, String> {
    if let Some(p) = std::env::var_os("UFFD_CHECK_BIN") {
        return Ok(p.into());
    }
    std::env::current_exe().map_err(|e| format!("cannot find the uffd-check binary: {e}"))
}

/// One backend for an arena of `pages` pages; `rules_off` are the model's
/// deviation rules turned off. The kernel is this machine's.
pub fn make(
    which: Which,
    pages: Page,
    bugs: Bugs,
    rules_off: &[Deviation],
) -> Result<Box<dyn Backend>, String> {
    make_on(which, pages, bugs, rules_off, &KernelTarget::Host)
}

/// [`make`], the kernel backend on `target` (this machine, or a guest).
pub fn make_on(
    which: Which,
    pages: Page,
    bugs: Bugs,
    rules_off: &[Deviation],
    target: &KernelTarget,
) -> Result<Box<dyn Backend>, String> {
    Ok(match which {
        Which::Model => Box::new(PageModel::with_rules_off(pages, rules_off)),
        Which::Impl => Box::new(IntervalImpl::with_bugs(pages, bugs)),
        Which::Kernel => Box::new(target.backend(pages)?),
    })
}

/// Every backend of `list`, in order. Without the model among them, each
/// is given the model's knowledge of the known deviations
/// ([`KnownDeviations`]) while any deviation rule is on, so a deviation is
/// judged the same way whichever backends run. The kernel is this
/// machine's.
pub fn make_all(
    list: &BackendList,
    pages: Page,
    bugs: Bugs,
    rules_off: &[Deviation],
) -> Result<Vec<Box<dyn Backend>>, String> {
    make_all_on(list, pages, bugs, rules_off, &KernelTarget::Host)
}

/// [`make_all`], the kernel backend on `target` (this machine, or a guest
/// booted from a kernel image: [`KernelTarget::vm`]).
pub fn make_all_on(
    list: &BackendList,
    pages: Page,
    bugs: Bugs,
    rules_off: &[Deviation],
    target: &KernelTarget,
) -> Result<Vec<Box<dyn Backend>>, String> {
    let lend = !list.contains(Which::Model) && rules_off.len() < Deviation::ALL.len();
    list.0
        .iter()
        .map(|w| {
            let b = make_on(*w, pages, bugs, rules_off, target)?;
            Ok(if lend {
                Box::new(KnownDeviations::new(b, rules_off)) as Box<dyn Backend>
            } else {
                b
            })
        })
        .collect()
}

/// A backend that reports, besides its own answer, what the page model
/// knows of the known deviations at each step: the rules that changed the
/// step ([`uffd_vocab::StepReport::deviations`]) and the boundaries they
/// keep ([`uffd_vocab::StepReport::kept_apart`]). The model runs alongside,
/// its result and layout unused: it only lends its knowledge.
pub struct KnownDeviations<B> {
    inner: B,
    model: PageModel,
}

impl<B: Backend> KnownDeviations<B> {
    pub fn new(inner: B, rules_off: &[Deviation]) -> KnownDeviations<B> {
        let model = PageModel::with_rules_off(inner.pages(), rules_off);
        KnownDeviations { inner, model }
    }
}

impl<B: Backend> Backend for KnownDeviations<B> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn pages(&self) -> Page {
        self.inner.pages()
    }
    fn step(
        &mut self,
        op: &uffd_vocab::Op,
    ) -> Result<uffd_vocab::Outcome, uffd_vocab::Unsupported> {
        let mut o = self.inner.step(op)?;
        let known = self.model.step(op)?.report;
        o.report.deviations.extend(known.deviations);
        o.report.kept_apart.extend(known.kept_apart);
        Ok(o)
    }
    fn reset(&mut self) {
        self.inner.reset();
        self.model.reset();
    }
    fn plan(&mut self, ops: &[uffd_vocab::Op]) {
        self.inner.plan(ops)
    }
    fn snapshot(&self) -> Option<Box<dyn Backend>> {
        let inner = self.inner.snapshot()?;
        Some(Box::new(KnownDeviations {
            inner,
            model: self.model.clone(),
        }))
    }
    fn recycle(&mut self, outcome: &mut uffd_vocab::Outcome) {
        self.inner.recycle(outcome)
    }
    fn costs(&self) -> Option<String> {
        self.inner.costs()
    }
    /// The inner backend's state and the boundaries the model keeps.
    fn fingerprint(&self) -> Option<u128> {
        Some(uffd_vocab::fingerprint128(&(
            self.inner.fingerprint()?,
            self.model.fingerprint(),
        )))
    }
}

/// Borrows boxed backends the way the checker takes them.
pub fn as_refs(backends: &mut [Box<dyn Backend>]) -> Vec<&mut dyn Backend> {
    backends
        .iter_mut()
        .map(|b| &mut **b as &mut dyn Backend)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_and_reject_duplicates() {
        let l: BackendList = "model,impl,kernel".parse().unwrap();
        assert_eq!(l.to_string(), "model,impl,kernel");
        assert!("model,model"
            .parse::<BackendList>()
            .unwrap_err()
            .contains("twice"));
        assert_eq!("kernel".parse::<BackendList>().unwrap().0, [Which::Kernel]);
        assert!("model,frob"
            .parse::<BackendList>()
            .unwrap_err()
            .contains("frob"));
    }
}
