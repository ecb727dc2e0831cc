//! The backend's side of the worker process: [`WorkerProcess`] starts
//! `uffd-check __worker PAGES`, writes requests to its stdin and reads its
//! answers from its stdout, each within a deadline.
//!
//! Invariant: no read waits past its deadline (the pipe is polled), and a
//! worker that is killed is always reaped, so a hung or dead worker costs a
//! timeout and a [`Failure::Dead`], never a hang or a zombie.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use uffd_vocab::Page;

/// A running worker process, as the backend sees it: the child, its pipes,
/// and what was read from it but not yet consumed.
pub(crate) struct WorkerProcess {
    pub(crate) child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
    rbuf: Vec<u8>,
}

/// Why a request got no usable answer.
pub(crate) enum Failure {
    /// The worker is gone or unresponsive: kill and respawn.
    Dead(String),
    /// The worker answered, but refused (a bug on our side, or the environment).
    Refused(String),
}

impl WorkerProcess {
    /// Starts `exe __worker PAGES` and waits up to `timeout` for its `ready`
    /// line; a worker that does not start is killed and reaped.
    pub(crate) fn spawn(
        exe: &Path,
        pages: Page,
        timeout: Duration,
    ) -> Result<WorkerProcess, String> {
        let mut child = Command::new(exe)
            .arg("__worker")
            .arg(pages.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start the kernel worker {}: {e}", exe.display()))?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut w = WorkerProcess {
            child,
            stdin,
            stdout,
            rbuf: Vec::new(),
        };
        let deadline = Instant::now() + timeout;
        match w.read_line(deadline) {
            Ok(l) if l.starts_with("ready ") => Ok(w),
            Ok(l) => {
                w.kill();
                Err(format!(
                    "the kernel worker {} did not start: {}",
                    exe.display(),
                    l.strip_prefix("fail ").unwrap_or(&l)
                ))
            }
            Err(e) => {
                let status = w.kill();
                Err(format!(
                    "the kernel worker {} did not start: {e}{status} (is it the uffd-check binary, \
                     which runs the worker when called as `{} __worker PAGES`?)",
                    exe.display(),
                    exe.display()
                ))
            }
        }
    }

    /// Kills and reaps the worker; describes how it ended.
    pub(crate) fn kill(&mut self) -> String {
        let _ = self.child.kill();
        match self.child.wait() {
            Ok(s) => format!(" (worker {s})"),
            Err(_) => String::new(),
        }
    }

    pub(crate) fn send(&mut self, line: &str) -> Result<(), String> {
        let mut msg = Vec::with_capacity(line.len() + 1);
        msg.extend_from_slice(line.as_bytes());
        msg.push(b'\n');
        self.stdin
            .write_all(&msg)
            .and_then(|_| self.stdin.flush())
            .map_err(|e| format!("cannot write to the worker, it died ({e})"))
    }

    /// One answer line, waiting until `deadline`.
    pub(crate) fn read_line(&mut self, deadline: Instant) -> Result<String, String> {
        use rustix::event::{PollFd, PollFlags};
        use rustix::io::Errno;
        loop {
            if let Some(i) = self.rbuf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.rbuf.drain(..=i).collect();
                return Ok(String::from_utf8_lossy(&line[..i]).into_owned());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err("no answer within the timeout".into());
            }
            let wait = rustix::event::Timespec::try_from(deadline - now).unwrap_or(
                rustix::event::Timespec {
                    tv_sec: i64::MAX,
                    tv_nsec: 0,
                },
            );
            let mut pfd = [PollFd::new(&self.stdout, PollFlags::IN)];
            let n = match rustix::event::poll(&mut pfd, Some(&wait)) {
                Ok(n) => n,
                Err(Errno::INTR) => continue,
                Err(e) => {
                    return Err(format!(
                        "poll on the worker's pipe: {}",
                        std::io::Error::from(e)
                    ))
                }
            };
            if n == 0 {
                continue;
            }
            let mut chunk = [0u8; 8192];
            match self.stdout.read(&mut chunk) {
                Ok(0) => return Err("the worker closed its pipe (it died)".into()),
                Ok(k) => self.rbuf.extend_from_slice(&chunk[..k]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("reading the worker's pipe: {e}")),
            }
        }
    }
}

/// Reads one answer: a line, or lines up to and including `end ...`.
pub(crate) fn read_answer(
    w: &mut WorkerProcess,
    multi: bool,
    deadline: Instant,
) -> Result<Vec<String>, Failure> {
    let mut lines = Vec::new();
    loop {
        let line = w.read_line(deadline).map_err(Failure::Dead)?;
        if let Some(t) = line.strip_prefix("refused ") {
            return Err(Failure::Refused(t.to_string()));
        }
        let done = !multi || line == "end" || line.starts_with("end ");
        lines.push(line);
        if done {
            return Ok(lines);
        }
    }
}
