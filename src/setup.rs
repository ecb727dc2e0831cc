//! What a run runs on ([`Setup`]): the backends, the historic bugs put back
//! into the implementation and the model's deviation rules turned off, as
//! the command line's flags give them; and the flags and commands that
//! reproduce a run, printed in the one place that prints them.

use std::path::Path;

use uffd_model::Deviation;
use uffd_vocab::{Backend, Page};

use crate::backends::{make_all_on, BackendList, KernelTarget, Which};
use crate::profile::Profile;

/// What a run ran on: the backends and the bugs put back. Prints the flags
/// that reproduce it, in the one place that does.
pub struct Setup {
    pub backends: BackendList,
    /// `--inject-bug` names, of [`uffd_impl::HISTORIC_BUGS`].
    pub bugs: Vec<String>,
    /// The model's deviation rules turned off: by default those the model's
    /// series does not have ([`Deviation::off_by_default`]).
    pub rules_off: Vec<Deviation>,
    /// Were rules named (`--strict`, `--strict-rule`)?
    pub rules_named: bool,
    /// Where the kernel backend runs: here, or in a guest (`--vm`).
    pub kernel: KernelTarget,
    /// The kernel's profile, when the kernel runs: the historic bugs it
    /// has explain failures, and, when no rule was named (no `--strict`, no
    /// `--strict-rule`), it set `rules_off` (`rules_from_profile`).
    pub profile: Option<Profile>,
    pub rules_from_profile: bool,
}

impl Setup {
    /// The flags as given: `--kernel`, the backend list (default
    /// `model,impl`, with `kernel` after them for `--kernel`), the bugs,
    /// `--strict` and the `--strict-rule` names; the kernel on this
    /// machine.
    pub fn new(
        kernel: bool,
        backends: Option<BackendList>,
        bugs: Vec<String>,
        strict: bool,
        strict_rule: Vec<String>,
    ) -> Setup {
        let default_off = Deviation::off_by_default();
        let rules_off = Deviation::ALL
            .into_iter()
            .filter(|d| {
                strict || default_off.contains(d) || strict_rule.iter().any(|n| n == d.name())
            })
            .collect();
        let rules_named = strict || !strict_rule.is_empty();
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
            rules_named,
            kernel: KernelTarget::Host,
            profile: None,
            rules_from_profile: false,
        }
    }

    /// The kernel in a guest of `target` (`--vm IMAGE`): the backends are
    /// `model,kernel` unless `listed` (the implementation follows 6.18's
    /// code, which another kernel need not).
    pub fn in_vm(mut self, target: KernelTarget, listed: bool) -> Setup {
        if !listed {
            self.backends = BackendList(vec![Which::Model, Which::Kernel]);
        }
        self.kernel = target;
        self
    }

    /// When the kernel runs, its profile ([`Profile`]): the historic bugs it
    /// has explain a failure; and when no rule was turned off by hand, the
    /// model takes the profile's rules: those that kernel has are on, the
    /// others off.
    pub fn with_profile(mut self) -> Setup {
        if self.backends.contains(Which::Kernel) {
            let profile = Profile::of_release(&self.kernel.release());
            if !self.rules_named {
                self.rules_off = profile.rules_off();
                self.rules_from_profile = true;
            }
            self.profile = Some(profile);
        }
        self
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

    /// ` --backends … --inject-bug … [--vm IMAGE]`, as `flag` names the
    /// backend list.
    pub fn flags(&self, flag: &str) -> String {
        let mut s = format!(" {flag} {}", self.backends);
        for b in &self.bugs {
            s.push_str(&format!(" --inject-bug {b}"));
        }
        s + &self.strict_flags() + &self.kernel.flags()
    }

    /// ` --strict`, or ` --strict-rule NAME` for each rule off, or nothing.
    pub fn strict_flags(&self) -> String {
        if self.rules_from_profile {
            // The profile turned them off: the same flags pick it again.
            String::new()
        } else if self.rules_off.len() == Deviation::ALL.len() {
            " --strict".to_string()
        } else {
            self.rules_turned_off()
                .iter()
                .map(|d| format!(" --strict-rule {}", d.name()))
                .collect()
        }
    }

    /// The rules off that are on by default: turned off by a flag or by
    /// the kernel's profile.
    pub fn rules_turned_off(&self) -> Vec<Deviation> {
        let default_off = Deviation::off_by_default();
        self.rules_off
            .iter()
            .copied()
            .filter(|d| !default_off.contains(d))
            .collect()
    }

    /// Why the rules of `rules_off` are off: the flags that turned them off
    /// (`--strict`, `--strict-rule NAME`…), or the kernel's profile.
    pub fn rules_off_by(&self) -> String {
        match &self.profile {
            Some(p) if self.rules_from_profile => format!("the profile of Linux {}", p.release),
            _ => self.strict_flags().trim().to_string(),
        }
    }

    /// The backends for an arena of `pages` pages.
    pub fn make(&self, pages: Page) -> Result<Vec<Box<dyn Backend>>, String> {
        make_all_on(
            &self.backends,
            pages,
            self.impl_bugs(),
            &self.rules_off,
            &self.kernel,
        )
    }

    /// `live kernel: Linux 6.18.44` (or `kernel: Linux 6.1.0-57-amd64 (in a
    /// VM: IMAGE)`), when the kernel is one of the backends, with the
    /// rules its profile turned on and off (against the model's default).
    pub fn kernel_note(&self) -> Option<String> {
        if !self.backends.contains(Which::Kernel) {
            return None;
        }
        let mut note = self.kernel.note();
        if let Some(p) = &self.profile {
            let default_off = Deviation::off_by_default();
            for (turns, on) in [("on", true), ("off", false)] {
                let names: Vec<&str> = Deviation::ALL
                    .iter()
                    .filter(|d| p.rules_on.contains(d) == on && default_off.contains(d) == on)
                    .map(|d| d.name())
                    .collect();
                if self.rules_from_profile && !names.is_empty() {
                    note += &format!("\nits profile turns {turns}: {}", names.join(", "));
                }
            }
            let bugs: Vec<&str> = p.bugs.iter().map(|h| h.name).collect();
            if !bugs.is_empty() {
                note += &format!("\nhistoric bugs it has: {}", bugs.join(", "));
            }
        }
        Some(note)
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

    /// The kernel's profile is kept under `--strict` (its historic bugs
    /// still explain failures) but sets the rules only when none was named.
    #[test]
    fn the_profile_sets_the_rules_only_when_none_is_named() {
        let list = || Some("model,kernel".parse().unwrap());
        let strict = Setup::new(false, list(), vec![], true, vec![]).with_profile();
        assert!(strict.profile.is_some() && !strict.rules_from_profile);
        assert_eq!(strict.rules_off.len(), Deviation::ALL.len());
        assert_eq!(strict.strict_flags(), " --strict");
        let by_profile = Setup::new(false, list(), vec![], false, vec![]).with_profile();
        assert!(by_profile.rules_from_profile);
        assert_eq!(by_profile.strict_flags(), "");
        let no_kernel = Setup::new(false, None, vec![], false, vec![]).with_profile();
        assert!(no_kernel.profile.is_none() && no_kernel.rules_turned_off().is_empty());
        assert_eq!(no_kernel.rules_off, Deviation::off_by_default());
    }

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
