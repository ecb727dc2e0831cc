//! The backend's side of the worker process: [`WorkerProcess`] starts a
//! worker from its recipe ([`WorkerCommand`]: `uffd-check __worker PAGES`
//! here, or a guest that runs it), writes requests to its stdin and reads
//! its answers from its stdout, each within a deadline. A worker that ends
//! says `__exit N` on a channel that stays open (a guest's serial port):
//! that is a dead worker too.
//!
//! Invariant: no read waits past its deadline (the pipe is polled), and a
//! worker that is killed is always reaped, so a hung or dead worker costs a
//! timeout and a [`Failure::Dead`], never a hang or a zombie.

use std::io::{Read, Write};
#[cfg(target_os = "linux")]
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::WorkerCommand;

/// A running worker process, as the backend sees it: the child, its pipes,
/// and what was read from it but not yet consumed.
pub(crate) struct WorkerProcess {
    pub(crate) child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
    rbuf: Vec<u8>,
    /// The log the worker's recipe names, if any.
    log: Option<PathBuf>,
    /// The end of the worker's stderr, when it is captured.
    stderr: Option<Arc<Mutex<Vec<u8>>>>,
}

/// How many lines of a worker's log an error message quotes.
const LOG_LINES: usize = 20;

/// How many bytes of a worker's stderr are kept.
const STDERR_BYTES: usize = 2048;

/// Drains `r` in a thread, keeping its last [`STDERR_BYTES`] bytes.
fn keep_tail(mut r: impl Read + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let kept = Arc::new(Mutex::new(Vec::new()));
    let k = Arc::clone(&kept);
    std::thread::spawn(move || {
        let mut chunk = [0u8; 1024];
        while let Ok(n @ 1..) = r.read(&mut chunk) {
            let Ok(mut b) = k.lock() else { return };
            b.extend_from_slice(&chunk[..n]);
            let over = b.len().saturating_sub(STDERR_BYTES);
            b.drain(..over);
        }
    });
    kept
}

/// Why a request got no usable answer.
pub(crate) enum Failure {
    /// The worker is gone or unresponsive: kill and respawn.
    Dead(String),
    /// The worker answered, but refused (a bug on our side, or the environment).
    Refused(String),
}

impl WorkerProcess {
    /// Starts the worker `cmd` describes and waits up to its start timeout
    /// for its `ready` line; a worker that does not start is killed and
    /// reaped, and the error quotes the end of its log.
    pub(crate) fn spawn(cmd: &WorkerCommand) -> Result<WorkerProcess, String> {
        let mut c = Command::new(&cmd.program);
        c.args(&cmd.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(if cmd.log.is_some() {
                Stdio::piped()
            } else {
                Stdio::inherit()
            });
        // SAFETY: prctl is async-signal-safe; nothing else runs between
        // fork and exec. The child dies with the thread that starts it, so
        // none (a qemu above all) is ever left behind.
        #[cfg(target_os = "linux")]
        unsafe {
            c.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = c
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", cmd.name()))?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().map(keep_tail);
        let mut w = WorkerProcess {
            child,
            stdin,
            stdout,
            rbuf: Vec::new(),
            log: cmd.log.clone(),
            stderr,
        };
        let deadline = Instant::now() + cmd.start_timeout;
        let why = match w.read_line(deadline) {
            Ok(l) if l.starts_with("ready ") => return Ok(w),
            Ok(l) => l.strip_prefix("fail ").unwrap_or(&l).to_string(),
            Err(e) if cmd.log.is_some() => format!("{e} ({}s)", cmd.start_timeout.as_secs()),
            Err(e) => {
                let status = w.kill();
                return Err(format!(
                    "{} did not start: {e}{status} (is it the uffd-check binary, \
                     which runs the worker when called as `{} __worker PAGES`?)",
                    cmd.name(),
                    cmd.program.display()
                ));
            }
        };
        let mut status = w.kill();
        if cmd.log.is_none() {
            // A local worker's refusal says it all.
            status.clear();
        }
        Err(format!(
            "{} did not start: {why}{status}{}",
            cmd.name(),
            w.log_tail()
        ))
    }

    /// The end of the worker's log and of its captured stderr, for an
    /// error message (`; console (PATH) ends:` and its last lines), or
    /// nothing for a worker without a log.
    pub(crate) fn log_tail(&self) -> String {
        let Some(log) = &self.log else {
            return String::new();
        };
        let mut s = String::new();
        if let Some(err) = &self.stderr {
            let err = err.lock().map(|b| b.clone()).unwrap_or_default();
            let err = String::from_utf8_lossy(&err);
            if !err.trim().is_empty() {
                s.push_str(&format!("; its stderr: {}", err.trim()));
            }
        }
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(LOG_LINES)..].join("\n");
        s + &format!("; console ({}) ends:\n{tail}", log.display())
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
        if let Some(n) = line.strip_prefix("__exit ") {
            return Err(Failure::Dead(format!("the worker exited with status {n}")));
        }
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
