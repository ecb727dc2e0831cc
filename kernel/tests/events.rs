//! The kernel backend reports the uffd events a step raised, exactly and
//! in the kernel's order (docs/kernel-rules.md §20), as the live kernel
//! sends them: each case is a sequence of ops and the events of its last
//! op.

use std::path::Path;

use uffd_kernel::KernelBackend;
use uffd_vocab::{events_text, Backend, Op, Outcome};

/// A backend with a 64-page arena, or `None` (said on stderr) where
/// userfaultfd cannot be used.
fn backend() -> Option<KernelBackend> {
    if let Err(why) = uffd_kernel::available() {
        if std::env::var_os("UFFD_CHECK_REQUIRE_KERNEL").is_some() {
            panic!("UFFD_CHECK_REQUIRE_KERNEL is set but {why}");
        }
        eprintln!("SKIPPED: the live kernel's events: {why}");
        return None;
    }
    let exe = Path::new(env!("CARGO_BIN_EXE_uffd-kernel-worker"));
    Some(KernelBackend::spawn(64, exe).unwrap_or_else(|e| panic!("{e}")))
}

/// Steps through `trace` (one op a line) with the whole sequence planned
/// ahead, as the checker runs it; panics on any violation. Returns each
/// step's outcome.
fn run(b: &mut KernelBackend, trace: &str) -> Vec<Outcome> {
    let ops: Vec<Op> = trace
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| l.parse().unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    b.reset();
    b.plan(&ops);
    let outcomes: Vec<Outcome> = ops
        .iter()
        .map(|op| b.step(op).expect("supported"))
        .collect();
    for (op, o) in ops.iter().zip(&outcomes) {
        assert!(
            o.report.violations.is_empty(),
            "{op}: {:?}\nin the trace:\n{trace}",
            o.report
        );
    }
    outcomes
}

/// The result and events of the last op of `trace`, as text: `ok
/// 0:unmap[0,8)`.
fn last(b: &mut KernelBackend, trace: &str) -> String {
    let o = run(b, trace).pop().expect("an op");
    format!(
        "{} {}",
        uffd_vocab::result_name(&o.result),
        events_text(&o.events)
    )
}

#[test]
fn munmap_sends_one_unmap_per_ctx_with_the_whole_range() {
    let Some(mut b) = backend() else { return };
    let trace = "map 0 8 rw- anon
                 open 0 event-unmap
                 register 0 2 2 missing
                 register 0 5 2 wp
                 unmap 0 8";
    assert_eq!(last(&mut b, trace), "ok 0:unmap[0,8)");
    // Two ctxs, two events, in the order of their VMAs; a ctx without
    // event-unmap none.
    let trace = "map 0 8 rw- anon
                 open 1 event-unmap
                 open 0 event-unmap
                 open 2 none
                 register 1 1 1 missing
                 register 2 3 1 missing
                 register 0 5 1 missing
                 unmap 0 8";
    assert_eq!(last(&mut b, trace), "ok 1:unmap[0,8) 0:unmap[0,8)");
    // An mmap over registered pages unmaps them.
    let trace = "map 0 4 rw- anon
                 open 0 event-unmap
                 register 0 0 4 missing
                 map 2 4 rw- anon";
    assert_eq!(last(&mut b, trace), "ok 0:unmap[2,6)");
    // Without a registered VMA in the range: nothing.
    let trace = "map 0 8 rw- anon
                 open 0 event-unmap
                 register 0 0 2 missing
                 unmap 4 4";
    assert_eq!(last(&mut b, trace), "ok none");
}

#[test]
fn mremap_sends_remap_then_unmaps() {
    let Some(mut b) = backend() else { return };
    let events = |b: &mut KernelBackend, mremap: &str| {
        let trace = format!(
            "map 0 4 rw- anon
             open 0 event-remap+event-unmap
             register 0 0 4 missing
             {mremap}"
        );
        last(b, &trace)
    };
    assert_eq!(
        events(&mut b, "mremap 0 4 4 8"),
        "ok 0:remap[0,4)->8 0:unmap[0,4)"
    );
    assert_eq!(
        events(&mut b, "mremap 0 4 2 8"),
        "ok 0:remap[0,2)->8 0:unmap[2,4) 0:unmap[0,2)"
    );
    assert_eq!(
        events(&mut b, "mremap 0 4 4 8 dontunmap"),
        "ok 0:remap[0,4)->8"
    );
    // Growing in place sends nothing; shrinking in place unmaps the tail.
    assert_eq!(events(&mut b, "mremap 0 4 6"), "ok none");
    assert_eq!(events(&mut b, "mremap 0 4 1"), "ok 0:unmap[1,4)");
    // Without event-remap the source is still unmapped from its ctx.
    let trace = "map 0 4 rw- anon
                 open 0 event-unmap
                 register 0 0 4 missing
                 mremap 0 4 4 8";
    assert_eq!(last(&mut b, trace), "ok 0:unmap[0,4)");
    // Onto a registered destination: its UNMAP first.
    let trace = "map 0 2 rw- anon
                 map 8 4 rw- anon
                 open 0 event-remap+event-unmap
                 register 0 0 2 missing
                 register 0 8 4 missing
                 mremap 0 2 2 9";
    assert_eq!(
        last(&mut b, trace),
        "ok 0:unmap[9,11) 0:remap[0,2)->9 0:unmap[0,2)"
    );
}

#[test]
fn madvise_sends_one_remove_per_vma_clipped_even_on_enomem() {
    let Some(mut b) = backend() else { return };
    let trace = "map 0 4 rw- anon
                 map 6 4 rw- anon
                 open 0 event-remove
                 register 0 0 4 missing
                 register 0 6 4 wp
                 madvise 2 6 dontneed";
    assert_eq!(last(&mut b, trace), "ENOMEM 0:remove[2,4) 0:remove[6,8)");
    // An advice that drops no pages sends nothing.
    let trace = "map 0 4 rw- anon
                 open 0 event-remove
                 register 0 0 4 missing
                 madvise 0 4 dontfork";
    assert_eq!(last(&mut b, trace), "ok none");
}

#[test]
fn fork_sends_fork_and_the_child_keeps_its_registration() {
    let Some(mut b) = backend() else { return };
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIPPED: event-fork needs CAP_SYS_PTRACE: not root");
        return;
    }
    let trace = "open 0 event-fork
                 map 0 4 rw- anon
                 fault 0
                 register 0 0 4 wp
                 writeprotect 0 0 4 on
                 fork";
    let o = run(&mut b, trace).pop().expect("an op");
    assert_eq!(events_text(&o.events), "0:fork");
    assert_eq!(
        o.layout.lines(),
        ["[0,4) rw- anon@? account maywrite anon_vma=? uffd=wp ctx=0"]
    );
    // The child's page 0 keeps the uffd-wp bit (pagemap bit 57).
    assert_eq!(uffd_vocab::ptes_text(o.layout.ptes()), "0:a+wp");
}

#[test]
fn fork_events_come_in_the_order_of_each_ctxs_first_vma_and_name_the_owner() {
    let Some(mut b) = backend() else { return };
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIPPED: event-fork needs CAP_SYS_PTRACE: not root");
        return;
    }
    let fds = |b: &KernelBackend| {
        let pid = b.worker_pid().expect("a worker");
        std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
    };
    let setup = "map 0 8 rw- anon
                 open 0 event-fork
                 open 1 event-fork+event-unmap
                 open 2 none
                 register 1 0 2 missing
                 register 0 4 2 wp
                 register 2 6 2 missing";
    run(&mut b, setup);
    let before = fds(&b);
    let o = run(&mut b, &format!("{setup}\nfork")).pop().expect("an op");
    assert_eq!(events_text(&o.events), "1:fork 0:fork");
    // The child's VMAs of ctx 2 (no event-fork) lose their registration.
    assert_eq!(
        o.layout.lines(),
        [
            "[0,2) rw- anon@? account maywrite anon_vma=? uffd=missing ctx=1",
            "[2,4) rw- anon@? account maywrite anon_vma=?",
            "[4,6) rw- anon@? account maywrite anon_vma=? uffd=wp ctx=0",
            "[6,8) rw- anon@? account maywrite anon_vma=?",
        ]
    );
    // The fork fds are closed before the op answers.
    assert_eq!(fds(&b), before);
}

/// The result, events and page table entries of the last op of `trace`.
fn fault(b: &mut KernelBackend, trace: &str) -> (String, String, String) {
    let o = run(b, trace).pop().expect("an op");
    (
        uffd_vocab::result_name(&o.result),
        events_text(&o.events),
        uffd_vocab::ptes_text(o.layout.ptes()),
    )
}

fn strings(a: &str, b: &str, c: &str) -> (String, String, String) {
    (a.into(), b.into(), c.into())
}

#[test]
fn a_fault_goes_to_a_ctx_open_with_faults_and_is_resolved() {
    let Some(mut b) = backend() else { return };
    let missing = "map 0 4 rw- anon
                   open 0 faults
                   register 0 0 4 missing";
    // A write to a missing page: delivered (+write), resolved by a copy
    // (the page's tag, page + 1), then written.
    assert_eq!(
        fault(&mut b, &format!("{missing}\nfault 1")),
        strings("ok", "0:fault[1]+write", "1:a=2")
    );
    // A read: the copy too.
    assert_eq!(
        fault(&mut b, &format!("{missing}\nfault 2 read")),
        strings("ok", "0:fault[2]", "2:a=3")
    );
    // mlock's populate faults each page, writing (a writable private VMA).
    assert_eq!(
        fault(&mut b, &format!("{missing}\nmlock 0 2")),
        strings("ok", "0:fault[0]+write 0:fault[1]+write", "0:a=1 1:a=2")
    );
    // A write through a uffd-wp bit: delivered, the bit cleared.
    let wp = "map 0 4 rw- anon
              open 0 faults
              fault 0
              register 0 0 4 wp
              writeprotect 0 0 4 on
              fault 0";
    assert_eq!(
        fault(&mut b, wp),
        strings("ok", "0:fault[0]+wp+write", "0:a")
    );
    // A page the cache has, in a VMA registered MINOR: CONTINUE.
    let minor = "map 0 4 rw- shared-file=0@0
                 open 0 faults
                 fault 0
                 madvise 0 4 dontneed
                 register 0 0 4 minor
                 fault 0 read";
    assert_eq!(
        fault(&mut b, minor),
        strings("ok", "0:fault[0]+minor", "0:f")
    );
    // Without `faults` (UFFD_FEATURE_SIGBUS): EFAULT, nothing delivered.
    let sigbus = "map 0 4 rw- anon
                  open 0 event-unmap
                  register 0 0 4 missing
                  fault 1";
    assert_eq!(fault(&mut b, sigbus), strings("EFAULT", "none", "none"));
    let never = "map 0 4 rw- anon
                 register 0 0 4 missing
                 fault 1";
    assert_eq!(fault(&mut b, never), strings("EFAULT", "none", "none"));
}

#[test]
fn a_fault_goes_to_the_registering_ctx_only() {
    let Some(mut b) = backend() else { return };
    // ctx 1 has `faults` but registers nothing here; ctx 0 registers and
    // has not: EFAULT.
    let trace = "map 0 4 rw- anon
                 open 0 none
                 open 1 faults
                 register 0 0 2 missing
                 register 1 2 2 missing
                 fault 0";
    assert_eq!(fault(&mut b, trace), strings("EFAULT", "none", "none"));
    let trace = trace.replace("fault 0", "fault 3");
    assert_eq!(
        fault(&mut b, &trace),
        strings("ok", "1:fault[3]+write", "3:a=4")
    );
}

#[test]
fn a_fault_its_reader_cannot_resolve_closes_its_uffd() {
    let Some(mut b) = backend() else { return };
    // mremap populates the grown part of a locked VMA before it sends the
    // REMAP, and until then the ctx's mmap_changing makes every
    // resolution EAGAIN: the populate fault of page 5 could wait for ever.
    // The monitor closes that uffd (rule 42): the release wakes the
    // fault, which finds the VMA unregistered; the REMAP is lost.
    let trace = "map 0 1 rw- anon
                 open 0 event-remap+faults
                 register 0 0 1 missing
                 mlock 0 1
                 mremap 0 1 2 4";
    assert_eq!(
        fault(&mut b, trace),
        strings("ok", "0:fault[5]+write", "4:a=1 5:a")
    );
    let o = b
        .step(&"fault 4".parse().expect("an op"))
        .expect("supported");
    assert!(o.report.violations.is_empty(), "{:?}", o.report);
    assert!(!o.open.contains(0), "ctx 0 was closed: {}", o.open);
}

/// A small deterministic random source (xorshift), for the run below.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
    fn pick<'a>(&mut self, of: &[&'a str]) -> &'a str {
        of[self.below(of.len() as u64) as usize]
    }
}

/// A random op on 16 pages that may raise events, or set them up.
fn random_op(r: &mut Rng) -> String {
    let (s, l, d) = (r.below(16), 1 + r.below(6), r.below(16));
    // ctx 0 has every feature: most registrations are its.
    let c = r.below(5).saturating_sub(2);
    match r.below(15) {
        0 | 1 => format!("map {s} {l} rw- {}", r.pick(&["anon", "shmem"])),
        2 => format!("unmap {s} {l}"),
        3 | 13 => {
            let advice = r.pick(&["dontneed", "free", "remove", "dontfork", "mergeable"]);
            format!("madvise {s} {l} {advice}")
        }
        4 | 12 => format!(
            "mremap {s} {} {} {d}{}",
            1 + r.below(2),
            1 + r.below(3),
            r.pick(&["", " dontunmap"])
        ),
        5 => format!("mremap {s} {l} {}", 1 + r.below(6)),
        6 | 7 => format!(
            "register {c} {s} {l} {}",
            r.pick(&["missing", "wp", "missing+wp"])
        ),
        // No mlock: a locked VMA moved and grown by mremap under a ctx
        // with event-remap+faults deadlocks (the test below).
        14 => format!("fault {s} read"),
        8 => format!("unregister {c} {s} {l}"),
        9 => {
            let f = [
                "event-fork",
                "event-remap",
                "event-remove",
                "event-unmap",
                "faults",
            ];
            let set: Vec<&str> = f.iter().copied().filter(|_| r.below(2) == 0).collect();
            let set = if set.is_empty() {
                "none".to_string()
            } else {
                set.join("+")
            };
            format!("open {c} {set}")
        }
        10 => format!("fault {s}"),
        _ => "fork".into(),
    }
}

#[test]
fn random_ops_with_every_event_feature_never_hang_leak_or_map() {
    let Some(mut b) = backend() else { return };
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIPPED: event-fork needs CAP_SYS_PTRACE: not root");
        return;
    }
    let pid = b.worker_pid().expect("a worker");
    let fds = || std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    b.reset();
    let (outside, open_fds) = (b.outside_mappings(), fds());
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let mut events = std::collections::BTreeMap::new();
    for _ in 0..500 {
        // Each sequence maps the 16 pages and opens ctx 0 with every
        // feature, the others at random.
        let all = [
            "map 0 16 rw- anon",
            "open 0 event-fork+event-remap+event-remove+event-unmap+faults",
        ];
        let trace: Vec<String> = all
            .map(String::from)
            .into_iter()
            .chain((0..25).map(|_| random_op(&mut r)))
            .filter(|l| l.parse::<Op>().is_ok_and(|op| op.validate(64).is_ok()))
            .collect();
        let outcomes = run(&mut b, &trace.join("\n"));
        for o in &outcomes {
            for e in &o.events {
                let kind = format!("{:?}", e.what);
                let kind = kind.split([' ', '{']).next().unwrap_or("").to_string();
                *events.entry(kind).or_insert(0) += 1;
            }
        }
    }
    eprintln!("{events:?}");
    for kind in ["Fork", "Remap", "Remove", "Unmap", "Fault"] {
        assert!(events.get(kind).is_some_and(|n| *n >= 30), "{events:?}");
    }
    assert_eq!(b.worker_pid(), Some(pid), "the worker was replaced");
    b.reset();
    assert_eq!(fds(), open_fds, "a fork fd or a uffd was left open");
    assert_eq!(b.outside_mappings(), outside);
}

#[test]
fn more_events_than_the_monitor_keeps_is_a_refusal_not_a_loss() {
    if uffd_kernel::available().is_err() {
        return;
    }
    let exe = Path::new(env!("CARGO_BIN_EXE_uffd-kernel-worker"));
    let mut b = KernelBackend::spawn(600, exe).unwrap_or_else(|e| panic!("{e}"));
    // 300 registered one-page VMAs, each a REMOVE of its own.
    let mut ops = vec![
        "map 0 600 rw- anon".to_string(),
        "open 0 event-remove".into(),
    ];
    ops.extend((0..300).map(|k| format!("register 0 {} 1 missing", 2 * k)));
    ops.push("madvise 0 600 dontneed".into());
    let ops: Vec<Op> = ops.iter().map(|l| l.parse().expect("an op")).collect();
    b.plan(&ops);
    let outcomes: Vec<Outcome> = ops
        .iter()
        .map(|op| b.step(op).expect("supported"))
        .collect();
    let (last, setup) = outcomes.split_last().expect("ops");
    assert!(setup.iter().all(|o| o.report.violations.is_empty()));
    let why = format!("{:?}", last.report.violations);
    assert!(
        why.contains("raised 300 uffd events, more than the monitor keeps (256)"),
        "{why}"
    );
    // The worker goes on.
    let o = b
        .step(&"unmap 0 600".parse().expect("an op"))
        .expect("supported");
    assert!(o.report.violations.is_empty(), "{:?}", o.report);
    assert!(o.layout.lines().is_empty());
}
