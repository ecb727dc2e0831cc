//! [`KernelBackend`]: the live kernel as a [`Backend`], through a worker
//! process. It sends each op (and a `layout` along with it, or a whole
//! planned sequence ahead), reads the answers back in order, times them, and
//! turns a worker that dies, hangs or refuses into a `kernel-worker`
//! violation and a fresh worker.
//!
//! Invariant: the answers the worker owes are tracked in order (`pending`),
//! so each answer read is the one to the request asked about; a request
//! nobody will ask about any more has its answer read and dropped first.

use std::collections::VecDeque;
use std::path::Path;
use std::time::{Duration, Instant};

use uffd_vocab::{
    parse_ptes, Backend, Contexts, Errno, Event, Layout, Op, OpResult, Outcome, Page, PteState,
    StepReport, Unsupported, Vma,
};

use crate::process::{read_answer, Failure, WorkerProcess};
use crate::{arena_fits, Fault, WorkerCommand, LAYOUT_VIOLATION, UNOBSERVED, WORKER_VIOLATION};

/// Cumulative costs of the kernel backend, as the parent sees them (round
/// trips) and as the worker measured the layout's parts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelTimings {
    /// Ops run.
    pub ops: u64,
    /// Round-trip time of all ops (the syscall plus two pipe hops).
    pub op_time: Duration,
    /// Of which: the syscalls themselves, as the worker timed them.
    pub syscalls: Duration,
    /// Layouts read.
    pub layouts: u64,
    /// Round-trip time of all layouts.
    pub layout_time: Duration,
    /// Of which: the worker reading /proc/self/smaps.
    pub smaps_read: Duration,
    /// Of which: parsing the arena's entries and asking for the ctx owners.
    pub smaps_parse: Duration,
    /// Workers started (1 plus respawns).
    pub spawns: u64,
}

/// One request to the worker.
enum Req<'a> {
    /// Send `req`; its answer is one line, or lines up to `end` when `multi`.
    Send { req: &'a str, multi: bool },
    /// Send an op and `layout` together; answer the op, leave the layout pending.
    OpThenLayout(&'a str),
    /// Read the answer to the op at the front of the pending queue.
    PlannedOp,
    /// Read the layout answer at the front of the pending queue.
    Pending,
}

/// An answer the worker owes: to an op (one line) or to `layout` (lines up
/// to `end`).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Pending {
    Op(String),
    Layout,
}

/// The most request bytes sent ahead at once: well under a pipe's 64 KiB, so
/// sending never waits for the worker.
const PLAN_BYTES: usize = 32 * 1024;

/// The live kernel, through a worker process confined to an arena: on
/// this machine ([`KernelBackend::spawn`]) or wherever a recipe runs it
/// ([`KernelBackend::start`]: a guest kernel under qemu).
pub struct KernelBackend {
    pages: Page,
    /// How to start a worker, the first and every fresh one.
    cmd: WorkerCommand,
    worker: Option<WorkerProcess>,
    timeout: Duration,
    /// Send `layout` along with every op (see [`KernelBackend::set_prefetch`]).
    prefetch: bool,
    /// Answers the worker owes us, in order: requests sent ahead (a layout
    /// sent along with an op, or a whole planned sequence).
    pending: VecDeque<Pending>,
    /// The uffd events the last op raised (`step` hands them on).
    events: Vec<Event>,
    /// Why the worker could not run the last op as the model means it
    /// (`unsupported TEXT`: a feature this process may not have), if so.
    unsupported: Option<String>,
    report: StepReport,
    timings: KernelTimings,
}

impl KernelBackend {
    /// Starts a worker on this machine with an arena of `pages` pages.
    /// `exe` is the uffd-check binary (it runs the worker when called as
    /// `exe __worker PAGES`).
    pub fn spawn(pages: Page, exe: &Path) -> Result<KernelBackend, String> {
        arena_fits(pages)?;
        KernelBackend::start(pages, WorkerCommand::local(exe, pages))
    }

    /// Starts the worker `cmd` describes, whose arena is `pages` pages (the
    /// recipe's arguments must say the same size), and waits for its
    /// `ready` line up to the recipe's start timeout. A worker that dies,
    /// hangs or exits later is replaced from the same recipe. Nothing is
    /// checked of this machine: the recipe's kernel is the one that counts.
    pub fn start(pages: Page, cmd: WorkerCommand) -> Result<KernelBackend, String> {
        let worker = WorkerProcess::spawn(&cmd)?;
        Ok(KernelBackend {
            pages,
            timeout: cmd.timeout,
            cmd,
            worker: Some(worker),
            prefetch: true,
            pending: VecDeque::new(),
            events: Vec::new(),
            unsupported: None,
            report: StepReport::default(),
            timings: KernelTimings {
                spawns: 1,
                ..Default::default()
            },
        })
    }

    /// How long the worker may take to answer one request (default: the
    /// recipe's, 5 s for a local worker).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Whether to send a `layout` request along with every op (default on):
    /// the worker reads the layout while the caller does other work, and the
    /// next [`KernelBackend::read_layout`] (every `step` makes one) costs no
    /// round trip. A caller that does not read the layout after every op may
    /// turn it off.
    pub fn set_prefetch(&mut self, on: bool) {
        self.prefetch = on;
    }

    /// The recipe the workers are started from.
    pub fn command(&self) -> &WorkerCommand {
        &self.cmd
    }

    /// The kernel the worker runs on, for a run's header: `Linux 6.18.44`,
    /// or `Linux 6.1.0-57-amd64 (in a VM: IMAGE)` (see
    /// [`WorkerCommand::kernel`]).
    pub fn kernel(&self) -> String {
        self.cmd.kernel()
    }

    /// The cumulative costs so far.
    pub fn timings(&self) -> KernelTimings {
        self.timings
    }

    /// Arms a fault in the worker: it strikes at op number `at` (0-based)
    /// since the worker's last reset, or at the next op with `None`. It is
    /// armed in the worker itself, so it strikes in a planned sequence too,
    /// exactly where a real failure would. A fresh worker has none.
    pub fn inject_fault(&mut self, fault: Fault, at: Option<u64>) {
        let cmd = match at {
            Some(n) => format!("__fault {} {n}", fault.word()),
            None => format!("__fault {}", fault.word()),
        };
        if let Some(w) = self.worker.as_mut() {
            let _ = w.send(&cmd);
        }
    }

    /// The worker's process id, while one runs (for tests that look at it
    /// from outside: its children, its limits).
    pub fn worker_pid(&self) -> Option<u32> {
        self.worker.as_ref().map(|w| w.child.id())
    }

    /// The worker's /proc/self/maps lines outside the arena (the guards
    /// included): the same before and after any op sequence.
    pub fn outside_mappings(&mut self) -> Vec<String> {
        match self.ask("outside", true) {
            Ok(mut lines) => {
                lines.pop();
                lines
            }
            Err(_) => Vec::new(),
        }
    }

    /// Sends one request; returns its answer lines (up to and including the
    /// `end` line when `multi`). Handles a dead, hung or refusing worker.
    fn ask(&mut self, req: &str, multi: bool) -> Result<Vec<String>, ()> {
        self.ask_req(Req::Send { req, multi }, req)
    }

    /// Makes request `r` (`req` names it in reports); a refusal is reported,
    /// a dead or hung worker is reported, killed and replaced.
    fn ask_req(&mut self, r: Req<'_>, req: &str) -> Result<Vec<String>, ()> {
        match self.try_ask(r) {
            Ok(lines) => Ok(lines),
            Err(Failure::Refused(text)) => {
                self.report.violations.push((
                    WORKER_VIOLATION,
                    format!("the kernel worker refused `{req}`: {text}"),
                ));
                Err(())
            }
            Err(Failure::Dead(text)) => {
                self.pending.clear();
                // The log's end before a fresh worker overwrites it.
                let (status, tail) = match self.worker.take() {
                    Some(mut w) => (w.kill(), w.log_tail()),
                    None => Default::default(),
                };
                let respawn = match WorkerProcess::spawn(&self.cmd) {
                    Ok(w) => {
                        self.worker = Some(w);
                        self.timings.spawns += 1;
                        "killed it and started a fresh worker (empty arena, no uffd open)"
                            .to_string()
                    }
                    Err(e) => format!("and could not start a fresh one: {e}"),
                };
                self.report.violations.push((
                    WORKER_VIOLATION,
                    format!("the kernel worker failed on `{req}`: {text}{status}; {respawn}{tail}"),
                ));
                Err(())
            }
        }
    }

    /// Makes request `r`, starting a worker if there is none; answers still
    /// owed for earlier requests are read and dropped first, unless `r`
    /// asks for the one at the front.
    fn try_ask(&mut self, r: Req<'_>) -> Result<Vec<String>, Failure> {
        if self.worker.is_none() {
            self.pending.clear();
            let w = WorkerProcess::spawn(&self.cmd).map_err(Failure::Dead)?;
            self.timings.spawns += 1;
            self.worker = Some(w);
        }
        let w = self.worker.as_mut().expect("a worker");
        let deadline = Instant::now() + self.timeout;
        match r {
            Req::PlannedOp => {
                self.pending.pop_front();
                return read_answer(w, false, deadline);
            }
            Req::Pending => {
                self.pending.pop_front();
                return read_answer(w, true, deadline);
            }
            _ => {}
        }
        // Answers owed for requests nobody will ask about any more: read and
        // drop them, so the next answer is this request's.
        while let Some(p) = self.pending.pop_front() {
            read_answer(w, p == Pending::Layout, Instant::now() + self.timeout)?;
        }
        let deadline = Instant::now() + self.timeout;
        match r {
            Req::Send { req, multi } => {
                w.send(req).map_err(Failure::Dead)?;
                read_answer(w, multi, deadline)
            }
            Req::OpThenLayout(req) => {
                w.send(&format!("{req}\nlayout")).map_err(Failure::Dead)?;
                self.pending.push_back(Pending::Layout);
                read_answer(w, false, deadline)
            }
            Req::PlannedOp | Req::Pending => unreachable!("handled above"),
        }
    }

    /// Runs one op; a worker failure is recorded in the report and gives
    /// `errno-1`. The events it raised are [`KernelBackend::events`] until
    /// the next op. An op the worker cannot run as meant (`unsupported`)
    /// gives `errno-1` too, and [`KernelBackend::unsupported`] says why.
    pub fn run_op(&mut self, op: &Op) -> OpResult {
        let t = Instant::now();
        self.events.clear();
        self.unsupported = None;
        let req = op.to_string();
        let planned =
            self.worker.is_some() && self.pending.front() == Some(&Pending::Op(req.clone()));
        let asked = if planned {
            self.ask_req(Req::PlannedOp, &req)
        } else if self.prefetch {
            self.ask_req(Req::OpThenLayout(&req), &req)
        } else {
            self.ask(&req, false)
        };
        let r = match asked {
            // `ok NS` or `EINVAL NS`: the result, how long the worker spent
            // in the op itself, then the events it raised, if any.
            Ok(lines) if lines[0].starts_with("unsupported ") => {
                self.unsupported = Some(lines[0]["unsupported ".len()..].to_string());
                Err(Errno::Other(-1))
            }
            Ok(lines) => {
                let mut words = lines[0].split(' ');
                let r = match words.next().unwrap_or("") {
                    "ok" => Some(Ok(())),
                    e => Errno::parse(e).map(Err),
                };
                let ns = words.next().map(str::parse::<u64>);
                let events: Result<Vec<Event>, _> = words.map(str::parse).collect();
                match (r, ns, events) {
                    (Some(r), Some(Ok(ns)), Ok(events)) => {
                        self.timings.syscalls += Duration::from_nanos(ns);
                        self.events = events;
                        r
                    }
                    _ => {
                        self.report.violations.push((
                            WORKER_VIOLATION,
                            format!("the kernel worker answered `{}` to `{op}`", lines[0]),
                        ));
                        Err(Errno::Other(-1))
                    }
                }
            }
            Err(()) => Err(Errno::Other(-1)),
        };
        self.timings.ops += 1;
        self.timings.op_time += t.elapsed();
        r
    }

    /// The uffd events the last op raised, in the kernel's order.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Why the last op could not be run as the model means it, where the
    /// worker said so: this process may not have a feature it asked for
    /// (`event-fork` without CAP_SYS_PTRACE, `faults` with uffds of
    /// user-mode faults only). [`Backend::step`] answers
    /// [`Unsupported`] then.
    pub fn unsupported(&self) -> Option<&str> {
        self.unsupported.as_deref()
    }

    /// Reads the arena's layout (and the open contexts) back from the
    /// worker; anything wrong on the way goes into the report.
    pub fn read_layout(&mut self) -> (Layout, Contexts) {
        let t = Instant::now();
        let mut vmas: Vec<Vma> = Vec::new();
        let mut open = Contexts::default();
        let mut ptes: Vec<(Page, PteState)> = Vec::new();
        let asked = if self.pending.front() == Some(&Pending::Layout) && self.worker.is_some() {
            self.ask_req(Req::Pending, "layout")
        } else {
            self.ask("layout", true)
        };
        if let Ok(lines) = asked {
            for line in &lines {
                if let Some(text) = line.strip_prefix("error ") {
                    self.report
                        .violations
                        .push((LAYOUT_VIOLATION, text.to_string()));
                } else if let Some(times) = line.strip_prefix("end ") {
                    let mut ns = times.split(' ').map(|n| n.parse::<u64>().unwrap_or(0));
                    self.timings.smaps_read += Duration::from_nanos(ns.next().unwrap_or(0));
                    self.timings.smaps_parse += Duration::from_nanos(ns.next().unwrap_or(0));
                } else if let Some(ctxs) = line.strip_prefix("open ") {
                    match ctxs.parse::<Contexts>() {
                        Ok(c) => open = c,
                        Err(e) => self.report.violations.push((
                            WORKER_VIOLATION,
                            format!("cannot parse the worker's open contexts: {e}"),
                        )),
                    }
                } else if let Some(text) = line.strip_prefix("ptes ") {
                    match parse_ptes(text) {
                        Ok(p) => ptes = p,
                        Err(e) => self.report.violations.push((
                            WORKER_VIOLATION,
                            format!("cannot parse the worker's page table entries: {e}"),
                        )),
                    }
                } else if let Some(Ok((v, _))) = line.strip_prefix("vma ").map(Vma::parse) {
                    vmas.push(v);
                } else {
                    self.report.violations.push((
                        WORKER_VIOLATION,
                        format!("cannot parse the worker's layout line {line:?}"),
                    ));
                }
            }
        }
        self.timings.layouts += 1;
        self.timings.layout_time += t.elapsed();
        (Layout::observed(vmas, UNOBSERVED).with_ptes(ptes), open)
    }

    /// The layout alone (see [`KernelBackend::read_layout`]).
    pub fn layout(&mut self) -> Layout {
        self.read_layout().0
    }

    /// What the steps since the last call had to report; taking it clears it.
    pub fn take_report(&mut self) -> StepReport {
        std::mem::take(&mut self.report)
    }
}

impl Drop for KernelBackend {
    fn drop(&mut self) {
        if let Some(mut w) = self.worker.take() {
            w.kill();
        }
        if let Some(log) = &self.cmd.log {
            let _ = std::fs::remove_file(log);
        }
    }
}

impl Backend for KernelBackend {
    fn name(&self) -> &'static str {
        "kernel"
    }
    fn pages(&self) -> Page {
        self.pages
    }

    fn costs(&self) -> Option<String> {
        let t = self.timings;
        Some(format!(
            "kernel split: ops {:.3} s waiting for {} answers (the syscalls themselves {:.3} s in \
             the worker), layouts {:.3} s waiting for {} (the worker reading smaps {:.3} s, \
             parsing {:.3} s), {} worker(s) started",
            t.op_time.as_secs_f64(),
            t.ops,
            t.syscalls.as_secs_f64(),
            t.layout_time.as_secs_f64(),
            t.layouts,
            t.smaps_read.as_secs_f64(),
            t.smaps_parse.as_secs_f64(),
            t.spawns
        ))
    }

    /// The op, then the layout; the report covers both, so a failure seen
    /// while reading the layout belongs to this step.
    fn step(&mut self, op: &Op) -> Result<Outcome, Unsupported> {
        let result = self.run_op(op);
        if self.unsupported.is_some() {
            // The checker leaves the kernel out for the rest of the
            // sequence and resets it; the layout planned after this op is
            // read and dropped then.
            self.report = StepReport::default();
            return Err(Unsupported);
        }
        let (layout, open) = self.read_layout();
        Ok(Outcome {
            backend: "kernel",
            result,
            layout,
            open,
            events: std::mem::take(&mut self.events),
            report: self.take_report(),
        })
    }

    fn reset(&mut self) {
        if let Ok(lines) = self.ask("reset", false) {
            if lines[0] != "ok" {
                self.report.violations.push((
                    WORKER_VIOLATION,
                    format!("the kernel worker answered `{}` to `reset`", lines[0]),
                ));
            }
        }
    }

    /// Sends the whole sequence (each op, then `layout`) to the worker at
    /// once, up to `PLAN_BYTES`, so that the worker runs ahead and each
    /// step costs no round trip; answers are then read in order as the ops
    /// and layouts are asked for. Anything else asked first drops them.
    fn plan(&mut self, ops: &[Op]) {
        if !self.prefetch || !self.pending.is_empty() {
            return;
        }
        let Some(w) = self.worker.as_mut() else {
            return;
        };
        let mut batch = String::new();
        let mut queued = Vec::new();
        for op in ops {
            let line = op.to_string();
            if batch.len() + line.len() + 8 > PLAN_BYTES {
                break;
            }
            batch.push_str(&line);
            batch.push_str("\nlayout\n");
            queued.push(Pending::Op(line));
            queued.push(Pending::Layout);
        }
        if batch.is_empty() {
            return;
        }
        // `send` adds the last newline.
        batch.pop();
        // If the worker is gone, the next request finds out and reports it.
        if w.send(&batch).is_ok() {
            self.pending.extend(queued);
        }
    }
}
