//! The one factory of backend sets: a list like `model,impl,kernel` becomes
//! boxed backends for an arena, the implementation with the chosen bugs put
//! back and the kernel in a fresh worker. `check`, `replay` and `explore`
//! (and the tests) make their backends here.

use std::fmt;
use std::str::FromStr;

use uffd_impl::{Bugs, IntervalImpl};
use uffd_kernel::KernelBackend;
use uffd_model::{Deviation, PageModel};
use uffd_vocab::{Backend, Page};

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
/// deviation rules turned off.
pub fn make(
    which: Which,
    pages: Page,
    bugs: Bugs,
    rules_off: &[Deviation],
) -> Result<Box<dyn Backend>, String> {
    Ok(match which {
        Which::Model => Box::new(PageModel::with_rules_off(pages, rules_off)),
        Which::Impl => Box::new(IntervalImpl::with_bugs(pages, bugs)),
        Which::Kernel => {
            uffd_kernel::available()?;
            Box::new(KernelBackend::spawn(pages, &worker_exe()?)?)
        }
    })
}

/// Every backend of `list`, in order.
pub fn make_all(
    list: &BackendList,
    pages: Page,
    bugs: Bugs,
    rules_off: &[Deviation],
) -> Result<Vec<Box<dyn Backend>>, String> {
    list.0
        .iter()
        .map(|w| make(*w, pages, bugs, rules_off))
        .collect()
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
