//! The command line as a user meets it: `check`, `replay`, `--json`, and
//! the errors for bad input.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

mod findings;
mod input;
mod output;

/// A fresh empty directory of its own under the system's temp dir, for one
/// command or one test: nothing a test runs writes into the checkout.
fn fresh_dir(what: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "uffd-check-cli-{}-{what}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What a command left in `dir`, its working directory, which it must
/// leave empty: a test says where it writes (`--out`), and writes only to a
/// temp dir.
fn assert_left_empty(dir: &Path, args: &[&str]) {
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        left.is_empty(),
        "{args:?} wrote {left:?} into its working directory"
    );
    let _ = std::fs::remove_dir(dir);
}

/// Runs the binary in an empty working directory of its own, which it must
/// leave empty; answers the exit code, standard output and standard error.
fn uffd_check(args: &[&str]) -> (i32, String, String) {
    let cwd = fresh_dir("cwd");
    let out = Command::new(env!("CARGO_BIN_EXE_uffd-check"))
        .args(args)
        .current_dir(&cwd)
        .output()
        .expect("the binary runs");
    assert_left_empty(&cwd, args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A file `name` holding `text`, in a temp dir.
fn temp(name: &str, text: &str) -> PathBuf {
    let p = fresh_dir("trace").join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// `--out DIR` for a fresh temp dir, which the caller keeps alive.
fn out_dir(what: &str) -> String {
    fresh_dir(what).to_str().unwrap().to_owned()
}

/// `check --seed SEED --cases 300 EXTRA…`.
fn check_300(seed: &str, extra: &[&str]) -> (i32, String, String) {
    uffd_check(&[&["check", "--seed", seed, "--cases", "300"][..], extra].concat())
}

/// `check --seed SEED --inject-bug BUG --out OUT`.
fn check_with_bug(seed: &str, bug: &str, out: &str) -> (i32, String, String) {
    uffd_check(&["check", "--seed", seed, "--inject-bug", bug, "--out", out])
}

/// Runs the binary with `stdin` as standard input, as [`uffd_check`] does.
fn uffd_check_stdin(args: &[&str], stdin: &str) -> (i32, String, String) {
    use std::io::Write;
    let cwd = fresh_dir("cwd");
    let mut child = Command::new(env!("CARGO_BIN_EXE_uffd-check"))
        .args(args)
        .current_dir(&cwd)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_left_empty(&cwd, args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
