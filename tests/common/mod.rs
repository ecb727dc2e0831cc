//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use proptest::test_runner::{Config, FileFailurePersistence};

/// How many random sequences a property runs: `UFFD_CHECK_CASES`, or `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("UFFD_CHECK_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// A proptest config that persists failing seeds under `proptest-regressions/NAME.txt`
/// (committed to git, replayed first on every run).
pub fn config(name: &'static str, default_cases: u32) -> Config {
    let path: &'static str = Box::leak(
        format!(
            "{}/proptest-regressions/{name}.txt",
            env!("CARGO_MANIFEST_DIR")
        )
        .into_boxed_str(),
    );
    Config {
        cases: cases(default_cases),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(path))),
        max_shrink_iters: 100_000,
        ..Config::default()
    }
}

/// Every `*.trace` under `cases/` and its topic folders, sorted by path.
pub fn case_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("cases");
    uffd_check::cases::case_files(&dir).unwrap_or_else(|e| panic!("{e}"))
}

/// A live-kernel backend with an arena of `pages` pages, from the binary
/// cargo built for the tests.
pub fn kernel_backend(pages: u64) -> uffd_check::kernel::KernelBackend {
    uffd_check::kernel::KernelBackend::spawn(pages, Path::new(env!("CARGO_BIN_EXE_uffd-check")))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The model and the implementation for an arena of `pages` pages.
pub fn model_and_impl(pages: u64) -> Vec<Box<dyn uffd_vocab::Backend>> {
    vec![
        Box::new(uffd_model::PageModel::new(pages)),
        Box::new(uffd_impl::IntervalImpl::new(pages)),
    ]
}

/// Can the live-kernel tests run here? Where userfaultfd cannot be used
/// (not Linux, not permitted), this says why on stderr and returns false, and
/// the test returns without running; with `UFFD_CHECK_REQUIRE_KERNEL` set (as
/// `.ci/run` sets it) that is a failure instead.
pub fn kernel_available() -> bool {
    match uffd_check::kernel::available() {
        Ok(()) => true,
        Err(why) => {
            if std::env::var_os("UFFD_CHECK_REQUIRE_KERNEL").is_some() {
                panic!("UFFD_CHECK_REQUIRE_KERNEL is set but {why}");
            }
            // Straight to stderr, past the test harness's capture, once per
            // test binary: a skip must be seen, not only in --nocapture runs.
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED: live-kernel tests: the live-kernel backend is not available here: {why}"
                );
            });
            false
        }
    }
}
