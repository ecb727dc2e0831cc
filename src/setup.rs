//! What a run runs on ([`Setup`]): the backends, the historic bugs put back
//! into the implementation and the model's deviation rules turned off, as
//! the command line's flags give them; and the flags and commands that
//! reproduce a run, printed in the one place that prints them.

use std::path::Path;

use uffd_model::Deviation;
use uffd_vocab::{Backend, Page};

use crate::backends::{make_all, BackendList, Which};

/// What a run ran on: the backends and the bugs put back. Prints the flags
/// that reproduce it, in the one place that does.
pub struct Setup {
    pub backends: BackendList,
    /// `--inject-bug` names, of [`uffd_impl::HISTORIC_BUGS`].
    pub bugs: Vec<String>,
    /// The model's deviation rules turned off.
    pub rules_off: Vec<Deviation>,
}

impl Setup {
    /// The flags as given: `--kernel`, the backend list (default
    /// `model,impl`, with `kernel` after them for `--kernel`), the bugs,
    /// `--strict` and the `--strict-rule` names.
    pub fn new(
        kernel: bool,
        backends: Option<BackendList>,
        bugs: Vec<String>,
        strict: bool,
        strict_rule: Vec<String>,
    ) -> Setup {
        let rules_off = Deviation::ALL
            .into_iter()
            .filter(|d| strict || strict_rule.iter().any(|n| n == d.name()))
            .collect();
        let backends = backends.unwrap_or_else(|| {
            let mut v = vec![Which::Model, Which::Impl];
            if kernel {
                v.push(Which::Kernel);
            }
            BackendList(v)
        });
        Setup {
            backends,
            bugs,
            rules_off,
        }
    }

    /// The bugs put back, as the implementation takes them.
    pub fn impl_bugs(&self) -> uffd_impl::Bugs {
        let names: Vec<&str> = self.bugs.iter().map(String::as_str).collect();
        uffd_impl::Bugs::named(&names).expect("the command line checked the names")
    }

    /// ` --backends … --inject-bug …`, as `flag` names the backend list.
    pub fn flags(&self, flag: &str) -> String {
        let mut s = format!(" {flag} {}", self.backends);
        for b in &self.bugs {
            s.push_str(&format!(" --inject-bug {b}"));
        }
        s + &self.strict_flags()
    }

    /// ` --strict`, or ` --strict-rule NAME` for each rule off, or nothing.
    pub fn strict_flags(&self) -> String {
        if self.rules_off.len() == Deviation::ALL.len() {
            " --strict".to_string()
        } else {
            self.rules_off
                .iter()
                .map(|d| format!(" --strict-rule {}", d.name()))
                .collect()
        }
    }

    /// The backends for an arena of `pages` pages.
    pub fn make(&self, pages: Page) -> Result<Vec<Box<dyn Backend>>, String> {
        make_all(&self.backends, pages, self.impl_bugs(), &self.rules_off)
    }

    /// `live kernel: Linux 6.18.44`, when the kernel is one of the backends.
    pub fn kernel_note(&self) -> Option<String> {
        self.backends
            .contains(Which::Kernel)
            .then(|| format!("live kernel: Linux {}", uffd_kernel::release()))
    }

    /// The command that turns a written trace into a C reproducer.
    pub fn repro_command(path: &Path) -> String {
        let c = path.with_extension("c");
        format!(
            "uffd-check repro {} -o {}   (then: cc -O2 -Wall -o repro {} && ./repro)",
            path.display(),
            c.display(),
            c.display()
        )
    }

    /// The command that replays a written trace.
    pub fn replay_command(&self, path: &Path) -> String {
        format!(
            "uffd-check replay {}{}",
            path.display(),
            self.flags("--backend")
        )
    }
}
