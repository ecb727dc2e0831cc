//! The kernel backend stays in its arena, survives a crashing or hanging
//! worker, and reads back the live kernel's layout faithfully.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use uffd_check::kernel::{Fault, KernelBackend, WORKER_VIOLATION};
use uffd_vocab::{Advice, Backend, Errno, Features, Kind, Layout, Mode, Op, Page, Prot, Remap};

const PAGES: Page = 32;

fn backend(pages: Page) -> KernelBackend {
    KernelBackend::spawn(pages, Path::new(env!("CARGO_BIN_EXE_uffd-check")))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Runs a trace (one op per line); panics on a worker failure.
fn run(b: &mut KernelBackend, trace: &str) -> Vec<String> {
    let mut results = Vec::new();
    for line in trace.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let op: Op = line.parse().unwrap();
        let r = b.run_op(&op);
        let report = b.take_report();
        assert!(report.violations.is_empty(), "{line}: {report:?}");
        results.push(uffd_vocab::result_name(&r));
    }
    results
}

fn lines(l: &Layout) -> Vec<String> {
    l.lines()
}

fn random_op(rng: &mut StdRng) -> Op {
    let start = rng.random_range(0..=PAGES);
    let len = if rng.random_bool(0.1) {
        0
    } else {
        rng.random_range(1..=12)
    };
    let prot = Prot::from_bits(rng.random_range(0..8));
    let ctx = rng.random_range(0..4);
    let file = rng.random_range(0..2);
    let pgoff = if rng.random_bool(0.05) {
        uffd_vocab::MAX_PGOFF - rng.random_range(0..4)
    } else {
        rng.random_range(0..40)
    };
    let dst = rng.random_range(0..PAGES);
    let newlen = rng.random_range(0..=12);
    let op = match rng.random_range(0..30) {
        0..=5 => Op::Map {
            start,
            len,
            prot,
            kind: match rng.random_range(0..6) {
                0 => Kind::Anon,
                1 => Kind::AnonNoreserve,
                2 => Kind::Shmem,
                3 => Kind::File { file, pgoff },
                4 => Kind::SharedFile { file, pgoff },
                _ => Kind::SharedRoFile { file, pgoff },
            },
        },
        6 | 7 => Op::Unmap { start, len },
        8..=10 => Op::Protect { start, len, prot },
        11..=15 => Op::Register {
            ctx,
            start,
            len,
            mode: Mode(if rng.random_bool(0.1) {
                rng.random_range(0..16)
            } else {
                rng.random_range(1..8)
            }),
        },
        16..=18 => Op::Unregister { ctx, start, len },
        19 => Op::Close { ctx },
        // mremap in every form, its lengths and destination folded into
        // the arena by `fit`: nothing may move out of it or into it.
        20..=23 => Op::Mremap {
            start,
            len,
            newlen,
            to: match rng.random_range(0..3) {
                0 => Remap::InPlace,
                1 => Remap::Fixed(dst),
                _ => Remap::DontUnmap(dst),
            },
        },
        24 => Op::Open {
            ctx,
            features: if rng.random_bool(0.5) {
                Features::REMAP
            } else {
                Features::NONE
            },
        },
        25 => Op::Fork,
        26 => Op::Fault {
            read: false,
            page: start,
        },
        27 => Op::Mlock {
            start,
            len,
            onfault: rng.random_bool(0.5),
        },
        28 => Op::Munlock { start, len },
        _ => Op::Madvise {
            start,
            len,
            advice: Advice::ALL[rng.random_range(0..Advice::ALL.len())].0,
        },
    };
    op.fit(PAGES)
}

/// The children of every thread of process `pid` (`/proc/PID/task/*/children`).
fn children(pid: u32) -> String {
    let mut out = String::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        out += &std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
    }
    out.trim().to_string()
}

fn well_formed(l: &Layout, pages: Page) -> Result<(), String> {
    let mut prev_end = 0;
    for v in l.vmas() {
        if v.start < prev_end || v.start >= v.end || v.end > pages {
            return Err(format!("bad bounds: {v}"));
        }
        if v.uffd.is_empty() != v.ctx.is_none() {
            return Err(format!("uffd bits without ctx or ctx without bits: {v}"));
        }
        prev_end = v.end;
    }
    Ok(())
}

/// (a) Hundreds of random sequences of every op (mremap in every form,
/// fork, faults…) never change anything outside the arena, every layout
/// read back is well formed with no worker complaint, and no fork child
/// outlives its step.
#[test]
fn random_sequences_stay_inside_the_arena() {
    if !common::kernel_available() {
        return;
    }
    let mut b = backend(PAGES);
    // Warm up (the worker's heap and stack reach their working size).
    run(&mut b, "map 0 32 rw- anon\nregister 0 0 32 missing");
    b.layout();
    b.outside_mappings();
    b.reset();
    let before = b.outside_mappings();
    assert!(before.len() > 5, "{before:?}");

    let seed: u64 = std::env::var("UFFD_CHECK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed);
    let mut rng = StdRng::seed_from_u64(seed);
    let (sequences, ops_per) = (400, 30);
    let mut non_minimal = 0;
    let mut errnos = std::collections::BTreeMap::new();
    let t = Instant::now();
    for s in 0..sequences {
        let mut trace = Vec::new();
        for _ in 0..ops_per {
            let op = random_op(&mut rng);
            trace.push(op.to_string());
            let r = b.run_op(&op);
            *errnos.entry(uffd_vocab::result_name(&r)).or_insert(0u32) += 1;
            let layout = b.layout();
            let report = b.take_report();
            assert!(
                report.violations.is_empty() && r != Err(Errno::Other(-1)),
                "sequence {s} (seed {seed}):\n{}\n{report:?}",
                trace.join("\n")
            );
            if let Err(e) = well_formed(&layout, PAGES) {
                panic!("sequence {s} (seed {seed}):\n{}\n{e}", trace.join("\n"));
            }
            if op == Op::Fork {
                // The fork child never outlives its step.
                let pid = b.worker_pid().expect("a worker");
                assert_eq!(
                    children(pid),
                    "",
                    "sequence {s} (seed {seed}): the fork child is still there"
                );
            }
            non_minimal += layout
                .vmas()
                .windows(2)
                .filter(|w| w[0].mergeable_with(&w[1]))
                .count();
        }
        b.reset();
        assert!(b.layout().is_empty(), "reset left VMAs");
        assert!(b.take_report().violations.is_empty());
    }
    let elapsed = t.elapsed();
    let after = b.outside_mappings();
    assert_eq!(before, after, "the mappings outside the arena changed");
    let tm = b.timings();
    eprintln!(
        "{} ops + {} layouts in {elapsed:?}: {:.0} steps/s; op round trip {:?}/op, \
         layout round trip {:?}/layout (smaps read {:?}, parse+ctx probe {:?}); \
         results {errnos:?}; adjacent mergeable pairs seen: {non_minimal}",
        tm.ops,
        tm.layouts,
        tm.ops as f64 / elapsed.as_secs_f64(),
        tm.op_time / tm.ops as u32,
        tm.layout_time / tm.layouts as u32,
        tm.smaps_read / tm.layouts as u32,
        tm.smaps_parse / tm.layouts as u32,
    );
    assert_eq!(tm.spawns, 1);
}

/// (b) A worker that dies is reported, and the next op runs on a fresh one.
#[test]
fn a_crashing_worker_is_reported_and_replaced() {
    if !common::kernel_available() {
        return;
    }
    let mut b = backend(PAGES);
    run(&mut b, "map 0 8 rw- anon");
    b.inject_fault(Fault::Crash, None);
    assert_eq!(
        b.run_op(&Op::Map {
            start: 8,
            len: 1,
            prot: Prot::RW,
            kind: Kind::Anon
        }),
        Err(Errno::Other(-1))
    );
    let report = b.take_report();
    assert_eq!(report.violations.len(), 1, "{report:?}");
    assert_eq!(report.violations[0].0, WORKER_VIOLATION);
    assert!(
        report.violations[0].1.contains("died"),
        "{:?}",
        report.violations[0]
    );
    // The fresh worker starts with an empty arena and keeps working.
    assert!(b.layout().is_empty());
    assert_eq!(run(&mut b, "map 0 4 rw- anon"), ["ok"]);
    assert_eq!(
        lines(&b.layout()),
        ["[0,4) rw- anon@? account maywrite anon_vma=?"]
    );
    assert_eq!(b.timings().spawns, 2);
}

/// (c) A worker that hangs is killed after the timeout, reported, replaced.
#[test]
fn a_hanging_worker_is_reported_and_replaced() {
    if !common::kernel_available() {
        return;
    }
    let mut b = backend(PAGES);
    b.set_timeout(Duration::from_millis(300));
    run(&mut b, "map 0 8 rw- anon");
    b.inject_fault(Fault::Hang, None);
    let t = Instant::now();
    assert_eq!(
        b.run_op(&Op::Unmap { start: 0, len: 1 }),
        Err(Errno::Other(-1))
    );
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    let report = b.take_report();
    assert_eq!(report.violations.len(), 1, "{report:?}");
    assert_eq!(report.violations[0].0, WORKER_VIOLATION);
    assert!(
        report.violations[0].1.contains("timeout"),
        "{:?}",
        report.violations[0]
    );
    assert_eq!(run(&mut b, "map 2 2 r-- anon"), ["ok"]);
    assert_eq!(lines(&b.layout()), ["[2,4) r-- anon@? maywrite anon_vma=?"]);
}

/// A worker that dies while reading a layout is reported, and the layout
/// is empty (the step's outcome carries both; see kernel_differential).
#[test]
fn a_crash_during_layout_is_reported() {
    if !common::kernel_available() {
        return;
    }
    let mut b = backend(PAGES);
    b.set_prefetch(false);
    run(&mut b, "map 0 8 rw- anon");
    b.inject_fault(Fault::CrashReadingLayout, Some(0));
    assert!(b.layout().is_empty());
    let report = b.take_report();
    assert_eq!(report.violations[0].0, WORKER_VIOLATION);
    assert_eq!(run(&mut b, "map 0 1 rw- anon"), ["ok"]);
}

/// The guard mappings never merge with an arena VMA that looks like them.
#[test]
fn guards_do_not_merge_with_the_arena_edges() {
    if !common::kernel_available() {
        return;
    }
    let mut b = backend(PAGES);
    let outside = b.outside_mappings();
    run(
        &mut b,
        "map 0 1 --- anon-noreserve\nmap 31 1 --- anon-noreserve",
    );
    assert_eq!(
        lines(&b.layout()),
        [
            "[0,1) --- anon@? noreserve maywrite anon_vma=?",
            "[31,32) --- anon@? noreserve maywrite anon_vma=?"
        ]
    );
    assert!(b.take_report().violations.is_empty());
    assert_eq!(b.outside_mappings(), outside);
}

/// (d) The LKML minimal case: unregister the tail of a registered range next
/// to a plain VMA gives two VMAs, not three.
#[test]
fn lkml_unregister_tail_gives_two_vmas() {
    if !common::kernel_available() {
        return;
    }
    let mut b = backend(PAGES);
    run(
        &mut b,
        "map 0 20 rw- anon\nregister 0 0 10 missing\nunregister 0 5 5",
    );
    assert_eq!(
        lines(&b.layout()),
        [
            "[0,5) rw- anon@? account maywrite anon_vma=? uffd=missing ctx=0",
            "[5,20) rw- anon@? account maywrite anon_vma=?"
        ]
    );
}

/// (d) The mirror: register the head of a plain VMA next to a registered one.
#[test]
fn lkml_mirror_register_merges_into_the_registered_neighbour() {
    if !common::kernel_available() {
        return;
    }
    let mut b = backend(PAGES);
    run(
        &mut b,
        "map 0 20 rw- anon\nregister 0 10 10 missing\nregister 0 5 5 missing",
    );
    assert_eq!(
        lines(&b.layout()),
        [
            "[0,5) rw- anon@? account maywrite anon_vma=?",
            "[5,20) rw- anon@? account maywrite anon_vma=? uffd=missing ctx=0"
        ]
    );
}

/// (d) The syzkaller case (16 MiB anon, register MISSING at +64 KiB, 8 KiB):
/// three VMAs, the rest of the mapping intact.
#[test]
fn syzkaller_register_inside_a_large_vma_gives_three_vmas() {
    if !common::kernel_available() {
        return;
    }
    let mut b = backend(4096);
    run(&mut b, "map 0 4096 rw- anon\nregister 0 16 2 missing");
    assert_eq!(
        lines(&b.layout()),
        [
            "[0,16) rw- anon@? account maywrite anon_vma=?",
            "[16,18) rw- anon@? account maywrite anon_vma=? uffd=missing ctx=0",
            "[18,4096) rw- anon@? account maywrite anon_vma=?"
        ]
    );
}

/// The owner of each registration is read back (asked of the kernel).
#[test]
fn the_owning_ctx_is_read_back() {
    if !common::kernel_available() {
        return;
    }
    let mut b = backend(PAGES);
    run(
        &mut b,
        "map 0 12 rw- anon\nregister 2 0 4 missing\nregister 0 4 4 wp\nregister 3 8 4 missing+wp",
    );
    assert_eq!(
        lines(&b.layout()),
        [
            "[0,4) rw- anon@? account maywrite anon_vma=? uffd=missing ctx=2",
            "[4,8) rw- anon@? account maywrite anon_vma=? uffd=wp ctx=0",
            "[8,12) rw- anon@? account maywrite anon_vma=? uffd=missing+wp ctx=3"
        ]
    );
    // Reading the layout (and its ownership probes) changes nothing.
    let again = b.layout();
    assert_eq!(lines(&again).len(), 3);
    assert_eq!(run(&mut b, "register 1 0 4 missing"), ["EBUSY"]);
}

/// With the layout prefetched, a caller that skips layouts still gets each
/// op's own answer, and the layout it reads is the current one.
#[test]
fn prefetched_layouts_that_are_not_read_are_dropped() {
    if !common::kernel_available() {
        return;
    }
    let mut b = backend(PAGES);
    assert_eq!(
        run(
            &mut b,
            "map 0 8 rw- anon\nregister 0 0 4 missing\nunmap 6 2\nclose 0"
        ),
        ["ok", "ok", "ok", "ok"]
    );
    // A request in between (not a layout) gets its own answer, not one of
    // the prefetched layouts it had to skip: /proc/self/maps lines, both
    // guards among them, and nothing of the arena's protocol.
    let outside = b.outside_mappings();
    assert_eq!(
        outside
            .iter()
            .filter(|l| l.contains("/memfd:uffd-check-guard"))
            .count(),
        2,
        "{outside:#?}"
    );
    assert!(
        outside
            .iter()
            .all(|l| !l.starts_with("vma ") && !l.starts_with("ok") && !l.starts_with("open ")),
        "{outside:#?}"
    );
    assert_eq!(
        lines(&b.layout()),
        ["[0,6) rw- anon@? account maywrite anon_vma=?"]
    );
    assert_eq!(
        lines(&b.layout()),
        ["[0,6) rw- anon@? account maywrite anon_vma=?"]
    );
    b.set_prefetch(false);
    assert_eq!(run(&mut b, "unmap 0 1"), ["ok"]);
    assert_eq!(
        lines(&b.layout()),
        ["[1,6) rw- anon@? account maywrite anon_vma=?"]
    );
}

/// reset empties the arena and closes every uffd, in the same worker.
#[test]
fn reset_empties_the_arena_and_closes_every_uffd() {
    if !common::kernel_available() {
        return;
    }
    let mut b = backend(PAGES);
    run(&mut b, "map 0 12 rw- anon\nregister 1 0 4 missing");
    b.reset();
    assert!(b.layout().is_empty());
    assert_eq!(run(&mut b, "close 1"), ["EBADF"]);
    assert_eq!(b.timings().spawns, 1);
}

/// A planned sequence (sent to the worker ahead) that the caller leaves
/// early is harmless: the answers owed are dropped at the next request and
/// every later answer is the right one. A caller that departs from the plan
/// (which `Backend::plan` forbids) sees the planned ops already run.
#[test]
fn a_planned_sequence_left_early_or_departed_from_stays_correct() {
    if !common::kernel_available() {
        return;
    }
    let mut b = backend(PAGES);
    let ops: Vec<Op> = [
        "map 0 20 rw- anon",
        "register 0 0 10 missing",
        "unregister 0 5 5",
        "map 0 0 rw- anon",
    ]
    .iter()
    .map(|l| l.parse().unwrap())
    .collect();
    // Left early: two of four steps, then reset.
    b.reset();
    b.plan(&ops);
    assert_eq!(b.run_op(&ops[0]), Ok(()));
    assert_eq!(
        lines(&b.layout()),
        ["[0,20) rw- anon@? account maywrite anon_vma=?"]
    );
    assert_eq!(b.run_op(&ops[1]), Ok(()));
    b.reset();
    assert!(b.layout().is_empty(), "reset ran before the owed answers");
    // Departed from, against the contract: plan all four, ask something else.
    b.plan(&ops);
    assert_eq!(b.run_op(&"map 0 4 r-- anon".parse().unwrap()), Ok(()));
    // The planned ops ran in the worker before it (they were sent first),
    // so the layout is theirs followed by this map.
    assert_eq!(
        lines(&b.layout()),
        [
            "[0,4) r-- anon@? maywrite anon_vma=?",
            "[4,5) rw- anon@? account maywrite anon_vma=? uffd=missing ctx=0",
            "[5,20) rw- anon@? account maywrite anon_vma=?",
        ]
    );
    // And the whole plan, followed to the end.
    b.reset();
    b.plan(&ops);
    let results: Vec<String> = ops
        .iter()
        .map(|op| {
            let r = uffd_vocab::result_name(&b.run_op(op));
            b.layout();
            r
        })
        .collect();
    assert_eq!(results, ["ok", "ok", "ok", "EINVAL"]);
    assert!(b.take_report().violations.is_empty());
}

/// The kernel backend works for an unprivileged user: with
/// `vm.unprivileged_userfaultfd=0` the worker falls back to
/// UFFD_USER_MODE_ONLY. Run as uid/gid 65534 through `setpriv` where this
/// test runs as root; skipped, saying why, elsewhere.
#[test]
fn the_kernel_backend_works_for_an_unprivileged_user() {
    if !common::kernel_available() {
        return;
    }
    let skip = |why: &str| eprintln!("SKIPPED: unprivileged kernel backend: {why}");
    // SAFETY: geteuid cannot fail and touches no memory.
    if unsafe { libc::geteuid() } != 0 {
        // Already unprivileged: every other kernel test is this test.
        return skip("not root, so the other kernel tests already run unprivileged");
    }
    let setpriv = ["/usr/bin/setpriv", "/bin/setpriv"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(setpriv) = setpriv else {
        return skip("setpriv is not installed");
    };
    let dir = std::env::temp_dir().join(format!("uffd-check-nobody-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(setpriv)
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_uffd-check"))
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (code, out) = run(&["check", "--kernel", "--cases", "200", "--seed", "1"]);
    if code == 2
        && out.contains("Permission denied")
        && out.contains("cannot start the kernel worker")
    {
        return skip(&format!("uid 65534 cannot run the test binary here: {out}"));
    }
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("no failures") && out.contains("kernel"),
        "{out}"
    );
    let case = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/cases/historic-bugs/lkml-unregister-tail-merges-right.trace"
    );
    let (code, out) = run(&["replay", case, "--backend", "model,impl,kernel"]);
    assert_eq!(code, 0, "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}
