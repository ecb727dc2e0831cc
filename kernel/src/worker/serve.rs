//! The worker's main loop: [`worker_main`] sets the process up, starts the
//! [`Worker`], and answers requests one line at a time, in order (the
//! protocol is in the module docs of [`crate::worker`]).
//!
//! Invariant: every request gets exactly its answer, in the order sent (or,
//! for `__fault`, none), and every answer is flushed before the next
//! request is read; malloc never maps memory after the start, so the only
//! mappings that change are the arena's.

use std::io::{BufRead, Write};
use std::time::Instant;

use uffd_vocab::{Op, Page};

use super::arena::Worker;
use crate::Fault;

/// What the worker answers to an op or to `reset`.
pub(super) enum Answer {
    Ok,
    /// The syscall failed with this errno.
    Errno(i32),
    /// The worker would not or could not run the request as asked.
    Refused(String),
    /// The kernel will not let this process run the op as the model means
    /// it (a feature it may not have): not a failure, the op is left out.
    Unsupported(String),
}

/// The worker's entry point: `uffd-check __worker PAGES`. Never returns.
pub fn worker_main() -> ! {
    // Die with the parent, even when hung.
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    // Keep malloc on the brk heap: no new mappings after start. mallopt
    // is glibc's allocator tuning, not a syscall, so rustix has no
    // counterpart: it stays on libc.
    // SAFETY: a plain allocator setting, made before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        // One malloc arena for every thread (the uffd monitor's), so
        // that no thread maps an arena of its own.
        libc::mallopt(libc::M_ARENA_MAX, 1);
        // No transparent huge pages: the model's page tables are of 4 KiB
        // pages, and `madvise … hugepage` over an aligned 2 MiB of a large
        // arena would otherwise map a huge (zero) page, which pagemap shows
        // as 512 page-cache pages. The VMA flag (`hg`) still changes.
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut w = start(&mut out);
    let _ = writeln!(out, "ready {:#x} {}", w.base, w.pages);
    let _ = out.flush();
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut line = String::with_capacity(256);
    loop {
        line.clear();
        match input.read_line(&mut line) {
            Ok(0) | Err(_) => std::process::exit(0),
            Ok(_) => {}
        }
        let r = request(&mut w, line.trim(), &mut out);
        if r.and_then(|_| out.flush()).is_err() {
            std::process::exit(0);
        }
    }
}

/// The worker for the arena size given on the command line; on failure it
/// answers `fail TEXT` and exits.
fn start(out: &mut impl Write) -> Worker {
    let pages: Option<Page> = std::env::args().nth(2).and_then(|s| s.parse().ok());
    match pages.ok_or_else(|| "usage: uffd-check __worker PAGES".to_string()) {
        Ok(p) => match Worker::new(p) {
            Ok(w) => w,
            Err(e) => {
                let _ = writeln!(out, "fail {e}");
                let _ = out.flush();
                std::process::exit(1)
            }
        },
        Err(e) => {
            let _ = writeln!(out, "fail {e}");
            let _ = out.flush();
            std::process::exit(2)
        }
    }
}

/// Answers one request.
fn request(w: &mut Worker, req: &str, out: &mut impl Write) -> std::io::Result<()> {
    match req {
        "layout" => {
            if w.fault == Some((Fault::CrashReadingLayout, w.ops.wrapping_sub(1))) {
                std::process::abort();
            }
            w.layout(out)
        }
        "outside" => w.outside(out),
        "reset" => answer(out, w.reset()),
        _ if req.starts_with("__fault ") => {
            let mut words = req.split(' ').skip(1);
            let kind = words.next().and_then(Fault::from_word);
            let at = words.next().and_then(|n| n.parse().ok()).unwrap_or(w.ops);
            w.fault = kind.map(|k| (k, at));
            Ok(())
        }
        _ => match req.parse::<Op>() {
            Ok(op) => run_op(w, &op, out),
            Err(e) => answer(out, Answer::Refused(format!("bad request {req:?}: {e}"))),
        },
    }
}

/// Runs one op (or the fault armed for it) and answers with its result,
/// the time it took in here and the events it raised.
fn run_op(w: &mut Worker, op: &Op, out: &mut impl Write) -> std::io::Result<()> {
    let n = w.ops;
    w.ops += 1;
    match w.fault {
        Some((Fault::Crash, at)) if at == n => std::process::abort(),
        Some((Fault::Hang, at)) if at == n => loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        },
        _ => {}
    }
    let t = Instant::now();
    let a = w.op(op);
    let ns = t.elapsed().as_nanos();
    match a {
        // The result, then the time the op took in here, then the events.
        Answer::Ok => write!(out, "ok {ns}")?,
        Answer::Errno(e) => write!(out, "{} {ns}", uffd_vocab::Errno::from_raw(e))?,
        a => return answer(out, a),
    }
    for e in &w.events {
        write!(out, " {e}")?;
    }
    writeln!(out)
}

/// Writes an answer without a time: `ok`, the errno's name, or `refused TEXT`.
fn answer(out: &mut impl Write, a: Answer) -> std::io::Result<()> {
    match a {
        Answer::Ok => writeln!(out, "ok"),
        Answer::Errno(e) => writeln!(out, "{}", uffd_vocab::Errno::from_raw(e)),
        Answer::Refused(t) => writeln!(out, "refused {t}"),
        Answer::Unsupported(t) => writeln!(out, "unsupported {t}"),
    }
}
