//! Kernel profiles: what a kernel of a given release is known to do, read
//! from the data of the two tables that carry kernel versions: the model's
//! known deviations ([`uffd_model::Deviation::history`]) and the
//! implementation's historic bugs ([`uffd_impl::HISTORIC_BUGS`]'s
//! `kernels`).
//!
//! A profile says which deviation rules the model turns on for that kernel
//! (a rule whose history does not include the series is off: that kernel
//! follows the contract there) and which historic bugs the kernel still has.
//! The model does not re-create historic bugs; a difference between the
//! model and such a kernel is explained, after shrinking, by replaying the
//! shrunk case on the implementation with that bug put back
//! ([`explain`]): the difference is the bug's if the implementation with
//! it answers the failing step as the kernel did.
//!
//! What is known is only what was measured (Debian's kernels under qemu,
//! 6.1 to 7.3) or read in the fixes: a release outside the series the data
//! names gets the profile of its series all the same, and its differences
//! are findings until the data says more.

use std::fmt;

use uffd_impl::{Bugs, HistoricBug, IntervalImpl, Switch, HISTORIC_BUGS};
use uffd_model::{Deviation, MODEL_SERIES};
use uffd_vocab::{Backend, Series};

use crate::check::Failure;

/// What a kernel of one release is known to do.
#[derive(Clone, Debug)]
pub struct Profile {
    /// The release as the kernel names itself (`uname -r`).
    pub release: String,
    /// Its series, when the release names one.
    pub series: Option<Series>,
    /// The deviation rules this kernel has.
    pub rules_on: Vec<Deviation>,
    /// The historic bugs this kernel still has.
    pub bugs: Vec<&'static HistoricBug>,
}

impl Profile {
    /// The profile of a release (`6.1.0-57-amd64`, `7.3.4+deb13-amd64`). A
    /// release that names no series gets the rules of [`MODEL_SERIES`] and
    /// no bug: the profile of the kernel the model was written against.
    pub fn of_release(release: &str) -> Profile {
        let series = Series::of_release(release);
        let rules_on = Deviation::ALL
            .into_iter()
            .filter(|d| d.history().has(series.unwrap_or(MODEL_SERIES)))
            .collect();
        let bugs = HISTORIC_BUGS
            .iter()
            .filter(|h| series.is_some_and(|s| h.in_series(s)))
            .collect();
        Profile {
            release: release.to_string(),
            series,
            rules_on,
            bugs,
        }
    }

    /// The deviation rules this kernel does not have: the ones to turn off
    /// in the model.
    pub fn rules_off(&self) -> Vec<Deviation> {
        Deviation::ALL
            .into_iter()
            .filter(|d| !self.rules_on.contains(d))
            .collect()
    }
}

impl fmt::Display for Profile {
    /// `profile of 6.1.0-57-amd64 (series 6.1): rules on: …; historic
    /// bugs: …`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |names: Vec<&str>| {
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        };
        let series = self
            .series
            .map_or("no series".to_string(), |s| format!("series {s}"));
        write!(
            f,
            "profile of {} ({series}): deviation rules on: {}; historic bugs it has: {}",
            self.release,
            list(self.rules_on.iter().map(|d| d.name()).collect()),
            list(self.bugs.iter().map(|h| h.name).collect()),
        )
    }
}

/// Which of the profile's historic bugs explains a failure: the bug with
/// the fewest switches with which the implementation, replaying the
/// failure's trace, answers the failing step as the kernel did (the same
/// result and the same layout), where the model did not, and where the
/// implementation without it does not (it follows 6.18's code, deviations
/// included: a difference 6.18 has too is not the bug's). `None`: a
/// finding.
pub fn explain(profile: &Profile, failure: &Failure) -> Option<&'static HistoricBug> {
    let kernel = failure.outcomes.iter().find(|o| o.backend == "kernel")?;
    let ops = failure.trace.ops();
    let answers_as_kernel = |bugs: Bugs| {
        let mut imp = IntervalImpl::with_bugs(failure.trace.pages, bugs);
        let mut last = None;
        for op in &ops {
            last = imp.step(op).ok();
        }
        last.is_some_and(|o| o.result == kernel.result && o.layout.agrees_with(&kernel.layout))
    };
    if answers_as_kernel(Bugs::NONE) {
        return None;
    }
    let switches = |h: &HistoricBug| Switch::ALL.iter().filter(|s| h.bugs.has(**s)).count();
    let mut candidates = profile.bugs.clone();
    candidates.sort_by_key(|h| switches(h));
    candidates.into_iter().find(|h| answers_as_kernel(h.bugs))
}

/// The bugs of a profile, together (to put them all back at once).
pub fn all_bugs(profile: &Profile) -> Bugs {
    profile.bugs.iter().fold(Bugs::NONE, |b, h| b.union(h.bugs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(p: &Profile) -> (Vec<&str>, Vec<&str>) {
        (
            p.rules_on.iter().map(|d| d.name()).collect(),
            p.bugs.iter().map(|h| h.name).collect(),
        )
    }

    #[test]
    fn each_series_gets_its_rules_and_bugs() {
        let p = Profile::of_release("6.1.0-57-amd64");
        assert_eq!(
            names(&p),
            (
                vec![
                    "mremap-merges-with-old-registration",
                    "fork-keeps-parent-boundaries",
                    "mremap-moves-within-one-vma",
                    "unregister-through-any-ctx",
                    "new-mapping-joins-next",
                    "dontunmap-copy-stays-apart-from-its-source",
                    "writeprotect-within-one-vma",
                    "dontunmap-copy-merges-with-nothing",
                    "no-uffdio-move",
                    "no-uffdio-poison",
                    "no-continue-wp",
                    "refused-fill-leaves-no-anon-vma",
                    "remap-event-has-the-old-length",
                    "dontunmap-source-stays-apart"
                ],
                vec![
                    "stale-prev",
                    "unadjusted-pgoff",
                    "disallowed-anon-merge",
                    "unaccounted-mprotect",
                    "mremap-expand-inside",
                    "mremap-keeps-uffd-wp",
                    // By series: 6.1.0 had it; the 6.1.y measured has the
                    // backported fix (cases/historic-bugs/).
                    "fork-copies-uffd-wp-markers"
                ]
            )
        );
        // The kernel the model was written against: the default rules, no
        // bug.
        let p = Profile::of_release("6.18.7");
        assert_eq!(p.rules_off(), Deviation::off_by_default());
        assert!(p.bugs.is_empty());
        let p = Profile::of_release("6.12.118+deb12-amd64");
        assert_eq!(
            names(&p).0,
            [
                "fork-keeps-parent-boundaries",
                "mremap-moves-within-one-vma",
                "unregister-through-any-ctx",
                "dontunmap-copy-stays-apart-from-its-source",
                "moved-copy-stays-apart",
                "remap-event-has-the-old-length",
                "dontunmap-source-stays-apart"
            ]
        );
        let p = Profile::of_release("7.3.4+deb13-amd64");
        assert_eq!(
            names(&p).0,
            [
                "fork-keeps-parent-boundaries",
                "dontunmap-copy-stays-apart-from-its-source",
                "moved-copy-stays-apart",
                "register-keeps-wp",
                "dontunmap-source-stays-apart"
            ],
            "7.2 dropped the DONTUNMAP rule 23 (rule 44 again in its place), 7.3 the mremap rule 21"
        );
        let p = Profile::of_release("linux");
        assert_eq!(p.rules_off(), Deviation::off_by_default());
        assert!(p.to_string().contains("no series"), "{p}");
    }

    /// A failure on a 6.1 kernel that the unadjusted page offset explains:
    /// the implementation with that bug answers the failing step as the
    /// kernel did.
    #[test]
    fn a_historic_bug_explains_a_failure_it_makes() {
        use crate::check::run_trace;
        use crate::trace::Trace;
        use uffd_model::PageModel;
        let trace = Trace::parse(
            "arena 16\nmap 0 3 --- anon\nregister 1 0 2 missing\nunregister 1 1 1\n",
            "t",
        )
        .unwrap();
        let mut model = PageModel::new(16);
        // Stands in for a 6.1 kernel: the implementation with the bug, under
        // the kernel's name.
        struct AsKernel(IntervalImpl);
        impl Backend for AsKernel {
            fn name(&self) -> &'static str {
                "kernel"
            }
            fn pages(&self) -> uffd_vocab::Page {
                self.0.pages()
            }
            fn step(
                &mut self,
                op: &uffd_vocab::Op,
            ) -> Result<uffd_vocab::Outcome, uffd_vocab::Unsupported> {
                let mut o = self.0.step(op)?;
                o.backend = "kernel";
                Ok(o)
            }
            fn reset(&mut self) {
                self.0.reset()
            }
        }
        let bug = HistoricBug::named("unadjusted-pgoff").unwrap();
        let mut kernel = AsKernel(IntervalImpl::with_bugs(16, bug.bugs));
        let f = run_trace(&mut [&mut model, &mut kernel], &trace).unwrap_err();
        let p = Profile::of_release("6.1.0-57-amd64");
        assert_eq!(explain(&p, &f).map(|h| h.name), Some("unadjusted-pgoff"));
        assert!(all_bugs(&p).has(uffd_impl::Switch::UnadjustedPgoff));
        // On a kernel without that bug, it is a finding.
        assert!(explain(&Profile::of_release("6.18.0"), &f).is_none());
    }
}
