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

    /// An error when bugs are put back but the implementation, where they
    /// go, is not among the backends (they would change nothing).
    pub fn check_bugs_run(&self) -> Result<(), String> {
        match self.bugs.first() {
            Some(bug) if !self.backends.contains(Which::Impl) => Err(format!(
                "--inject-bug {bug}: the bug goes into impl, which is not among \
                 the backends (--backends {}): it would change nothing",
                self.backends
            )),
            _ => Ok(()),
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

    /// The command that turns a written trace into a C reproducer, and on
    /// the next line, indented by `indent`, the command that builds and runs
    /// it: the program is built next to the trace ([`build_command`]).
    pub fn repro_command(path: &Path, indent: &str) -> String {
        let c = path.with_extension("c");
        format!(
            "uffd-check repro {} -o {}\n{indent}{}",
            path.display(),
            c.display(),
            build_command(&c)
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

/// `cc -O2 -Wall -o DIR/NAME DIR/NAME.c && DIR/NAME`: builds the C program
/// `c` next to it, never in the current directory (`./NAME` when `c` is
/// in the current directory, `NAME.bin` when `c` has no extension).
pub fn build_command(c: &Path) -> String {
    let mut program = c.with_extension("");
    if program == c {
        program = c.with_extension("bin");
    }
    let run = match program.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => program.display().to_string(),
        _ => format!("./{}", program.display()),
    };
    format!(
        "cc -O2 -Wall -o {} {} && {run}",
        program.display(),
        c.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_c_program_is_built_next_to_its_source() {
        for (c, want) in [
            (
                "failures/seed-3.c",
                "cc -O2 -Wall -o failures/seed-3 failures/seed-3.c && failures/seed-3",
            ),
            ("dev.c", "cc -O2 -Wall -o dev dev.c && ./dev"),
            (
                "/tmp/x/dev",
                "cc -O2 -Wall -o /tmp/x/dev.bin /tmp/x/dev && /tmp/x/dev.bin",
            ),
        ] {
            assert_eq!(build_command(Path::new(c)), want);
        }
    }
}
