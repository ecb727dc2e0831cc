//! Booting other kernels under qemu (`uffd_check::vm`): a task runs in the
//! guest and reports the guest's release, the kernel worker speaks its
//! protocol over ttyS1, and a guest that does not answer is killed; the
//! kernel backend with its worker in a guest replays cases and a random
//! run on `model,impl,kernel`, and a guest whose worker crashes or hangs
//! fails that step (`backend-healthy`) and is replaced by a fresh one.
//!
//! Skips (printing `SKIPPED: reason`) without qemu, busybox-static or a
//! kernel image, unless `UFFD_CHECK_REQUIRE_VM=1`. The image is
//! `UFFD_CHECK_VM_IMAGE`, else the newest 6.1 in the cache, else Debian's
//! newest 6.1, fetched into the cache; the backend tests take a newer one
//! (see [`newer_target`]).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use uffd_check::backends::{as_refs, make_all_on, BackendList, KernelTarget};
use uffd_check::check;
use uffd_check::kernel::{Fault, KernelBackend};
use uffd_check::runner::{self, RunConfig};
use uffd_check::trace::Trace;
use uffd_check::vm::{self, kernels, qemu};
use uffd_vocab::{Backend, Op};

/// The configuration to boot, or why there is none.
fn setup() -> Option<qemu::VmConfig> {
    static SETUP: OnceLock<Result<qemu::VmConfig, String>> = OnceLock::new();
    let r = SETUP.get_or_init(|| {
        vm::check_dependencies()?;
        let image = match std::env::var_os("UFFD_CHECK_VM_IMAGE") {
            Some(p) => PathBuf::from(p),
            None => match kernels::find("6.1")? {
                Some(k) => k.image,
                None => kernels::fetch("6.1")?.image,
            },
        };
        let t = Instant::now();
        let initramfs = vm::initramfs::build(env!("CARGO_BIN_EXE_uffd-check").as_ref())?;
        let size = std::fs::metadata(&initramfs).map(|m| m.len()).unwrap_or(0);
        println!(
            "initramfs {} ({size} bytes, {:?})",
            initramfs.display(),
            t.elapsed()
        );
        Ok(qemu::VmConfig {
            image,
            initramfs,
            mem_mb: 256,
        })
    });
    match r {
        Ok(c) => Some(c.clone()),
        Err(e) if std::env::var_os("UFFD_CHECK_REQUIRE_VM").is_some_and(|v| v == "1") => {
            panic!("the VM is required (UFFD_CHECK_REQUIRE_VM=1): {e}")
        }
        Err(e) => {
            println!("SKIPPED: {e}");
            None
        }
    }
}

#[test]
fn guest_runs_a_task_and_reports_its_release() {
    let Some(cfg) = setup() else { return };
    let release = qemu::image_release(&cfg.image).unwrap();
    let t = Instant::now();
    let out = qemu::run_task(&cfg, &["uname", "-r"], qemu::boot_timeout()).unwrap();
    println!("{release}: uname -r after {:?}", t.elapsed());
    assert_eq!(out.trim(), release);
}

#[test]
fn the_worker_speaks_its_protocol_over_ttys1() {
    let Some(cfg) = setup() else { return };
    let t = Instant::now();
    let mut guest = qemu::Vm::boot(&cfg, &["uffd-check", "__worker", "16"]).unwrap();
    let (mut stdin, mut lines) = guest.take_channel().unwrap();
    let mut read = |timeout: Duration| match lines.read_line(Instant::now() + timeout) {
        Ok(Some(l)) => l,
        other => panic!("{other:?}; console:\n{}", guest.console_tail(20)),
    };
    let ready = read(qemu::boot_timeout());
    println!("{ready} after {:?}", t.elapsed());
    assert!(ready.starts_with("ready 0x"), "{ready}");
    assert!(ready.ends_with(" 16"), "{ready}");
    stdin.write_all(b"map 0 4 rw- anon\nlayout\n").unwrap();
    let op = read(Duration::from_secs(30));
    assert!(op.starts_with("ok "), "{op}");
    let mut layout = Vec::new();
    loop {
        let l = read(Duration::from_secs(30));
        let end = l.starts_with("end ");
        layout.push(l);
        if end {
            break;
        }
    }
    println!("{}", layout.join("\n"));
    // The arena's one VMA; until the vocabulary knows the soft-dirty flag
    // (`sd`, which Debian's kernels set and the running one may not), the
    // worker reports it as an error line instead.
    assert!(
        layout.iter().any(|l| l.starts_with("vma [0,4) rw- anon")
            || (l.starts_with("error ") && l.contains("`sd`"))),
        "{layout:?}"
    );
    assert!(layout.iter().any(|l| l == "open none"), "{layout:?}");
}

#[test]
fn a_guest_that_does_not_answer_is_killed_and_reported() {
    let Some(cfg) = setup() else { return };
    let t = Instant::now();
    let e = qemu::run_task(&cfg, &["sleep", "100000"], Duration::from_secs(3)).unwrap_err();
    assert!(e.contains("no answer within the timeout"), "{e}");
    assert!(e.contains("qemu signal: 9"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
}

/// By hand (it downloads a kernel image, tens of MB): fetches Debian's
/// newest kernel of `UFFD_CHECK_VM_SERIES` (default 6.12) into the cache,
/// boots it and times the worker's first answer:
/// `UFFD_CHECK_VM_SERIES=7.x cargo test --test vm -- --ignored --nocapture`.
#[test]
#[ignore]
fn fetch_a_series_and_time_the_worker() {
    let series = std::env::var("UFFD_CHECK_VM_SERIES").unwrap_or_else(|_| "6.12".into());
    let Some(mut cfg) = setup() else { return };
    let t = Instant::now();
    let k = kernels::fetch(&series).unwrap();
    println!(
        "fetched {} ({}) in {:?}",
        k.release,
        k.image.display(),
        t.elapsed()
    );
    cfg.image = k.image;
    let t = Instant::now();
    let mut guest = qemu::Vm::boot(&cfg, &["uffd-check", "__worker", "16"]).unwrap();
    let (_stdin, mut lines) = guest.take_channel().unwrap();
    let ready = lines.read_line(Instant::now() + qemu::boot_timeout());
    println!("{}: {ready:?} after {:?}", k.release, t.elapsed());
    assert!(matches!(ready, Ok(Some(l)) if l.starts_with("ready ")));
}

/// The kernel target for the backend tests: a guest of a kernel that
/// agrees with the contract on most cases (`UFFD_CHECK_VM_IMAGE_NEW`, else
/// the newest cached 7.3, else 6.12, else Debian's newest 6.12, fetched),
/// with the tests' initramfs.
fn newer_target() -> Option<KernelTarget> {
    let cfg = setup()?;
    static IMAGE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let image = IMAGE.get_or_init(|| {
        if let Some(p) = std::env::var_os("UFFD_CHECK_VM_IMAGE_NEW") {
            return Ok(PathBuf::from(p));
        }
        for series in ["7.3", "6.12"] {
            if let Some(k) = kernels::find(series)? {
                return Ok(k.image);
            }
        }
        Ok(kernels::fetch("6.12")?.image)
    });
    match image {
        Ok(image) => Some(KernelTarget::Vm(qemu::VmConfig {
            image: image.clone(),
            ..cfg
        })),
        Err(e) => {
            assert!(
                !required(),
                "the VM is required (UFFD_CHECK_REQUIRE_VM=1): {e}"
            );
            println!("SKIPPED: {e}");
            None
        }
    }
}

fn required() -> bool {
    std::env::var_os("UFFD_CHECK_REQUIRE_VM").is_some_and(|v| v == "1")
}

#[test]
fn cases_replay_on_model_impl_and_a_guest_kernel() {
    let Some(target) = newer_target() else { return };
    println!("{}", target.note());
    assert!(
        target.note().starts_with("kernel: Linux "),
        "{}",
        target.note()
    );
    assert!(target.note().contains("(in a VM: "), "{}", target.note());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("cases/merge");
    let list: BackendList = "model,impl,kernel".parse().unwrap();
    let mut made: Option<(u64, Vec<Box<dyn Backend>>)> = None;
    for name in [
        "merge-case-1-new-range-merges-both",
        "merge-case-4-tail-of-prev-merges-right",
        "merge-case-6-exactly-curr-merges-both",
    ] {
        let trace = Trace::load(&dir.join(format!("{name}.trace"))).unwrap();
        if made.as_ref().map(|m| m.0) != Some(trace.pages) {
            let t = Instant::now();
            let b = backends_in(&list, trace.pages, &target);
            println!("{} pages: guest ready after {:?}", trace.pages, t.elapsed());
            made = Some((trace.pages, b));
        }
        let backends = &mut made.as_mut().unwrap().1;
        if let Err(f) = check::run_trace(&mut as_refs(backends), &trace) {
            panic!("{name} on {}:\n{f}", target.note());
        }
    }
}

/// A few hundred random ops in a guest (the sequences `check --seed 7`
/// makes, not shrunk: shrinking in a guest takes minutes). Every step is
/// checked; what the guest's kernel does differently from the contract
/// (which kernel profiles are to name) is printed, and the worker must
/// stay healthy throughout.
#[test]
fn a_random_run_in_a_guest_keeps_the_worker_healthy() {
    let Some(target) = newer_target() else { return };
    let config = RunConfig {
        seed: 7,
        cases: 1,
        ops: 30,
        pages: 16,
    };
    let list: BackendList = "model,impl,kernel".parse().unwrap();
    let mut backends = backends_in(&list, config.pages, &target);
    let t = Instant::now();
    let (mut steps, mut agreed, mut differ) = (0, 0, Vec::new());
    for ops in runner::sample(&config, 12) {
        match check::run_ops(&mut as_refs(&mut backends), config.pages, &ops) {
            Ok(s) => {
                steps += s.steps;
                agreed += 1;
            }
            Err(f) => {
                assert_ne!(f.invariant, "backend-healthy", "{f}");
                steps += f.step as u64 + 1;
                differ.push(format!("{} at step {}", f.invariant, f.step));
            }
        }
    }
    println!(
        "{agreed} of 12 sequences agree, {steps} steps on {} in {:?}; differences: {differ:?}",
        target.note(),
        t.elapsed()
    );
    assert!(steps >= 150, "{steps}");
}

#[test]
fn a_guest_whose_worker_dies_or_hangs_fails_the_step_and_a_fresh_guest_boots() {
    let Some(target) = newer_target() else { return };
    let mut kernel = target.backend(8).unwrap();
    assert!(
        kernel.kernel().contains("(in a VM: "),
        "{}",
        kernel.kernel()
    );
    let ops: Vec<Op> = ["map 0 4 rw- anon", "protect 1 1 r--", "unmap 0 2"]
        .iter()
        .map(|l| l.parse().unwrap())
        .collect();
    let mut model = uffd_model::PageModel::new(8);
    let mut run = |kernel: &mut KernelBackend| {
        let t = Instant::now();
        let r = check::run_ops(&mut [&mut model, kernel], 8, &ops);
        (r, t.elapsed())
    };
    // A crash: the guest's worker aborts, `__exit 134` on the channel.
    kernel.inject_fault(Fault::Crash, Some(1));
    let (r, took) = run(&mut kernel);
    let f = r.unwrap_err();
    println!("crash reported after {took:?}: {}", f.message);
    assert_eq!(f.invariant, "backend-healthy", "{f}");
    assert_eq!(f.step, 1, "{f}");
    assert!(
        f.message.contains("exited with status 134"),
        "{}",
        f.message
    );
    assert!(f.message.contains("console ("), "{}", f.message);
    assert!(
        f.message.contains("started a fresh worker"),
        "{}",
        f.message
    );
    // A hang: killed after the request timeout.
    kernel.set_timeout(Duration::from_secs(3));
    kernel.inject_fault(Fault::Hang, Some(2));
    let (r, took) = run(&mut kernel);
    let f = r.unwrap_err();
    println!("hang reported after {took:?}");
    assert_eq!((f.invariant, f.step), ("backend-healthy", 2), "{f}");
    assert!(
        f.message.contains("no answer within the timeout"),
        "{}",
        f.message
    );
    assert!(
        took < qemu::boot_timeout() + Duration::from_secs(10),
        "{took:?}"
    );
    // The next sequence runs on the fresh guest.
    kernel.set_timeout(Duration::from_secs(30));
    let (r, _) = run(&mut kernel);
    r.unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(kernel.timings().spawns, 3);
}

/// By hand (minutes): for every cached kernel image, the boot-to-ready
/// time, every case of `cases/` on `model,impl,kernel` in the guest (how
/// many agree, and the invariant each other one fails), and the kernel
/// backend's ops/s on the same random sequences in the guest and here:
/// `cargo test --test vm measure -- --ignored --nocapture`.
#[test]
#[ignore]
fn measure_cases_and_speed_on_every_cached_kernel() {
    let Some(cfg) = setup() else { return };
    let files = uffd_check::cases::case_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("cases"))
        .unwrap();
    let config = RunConfig {
        seed: 1,
        cases: 1,
        ops: 20,
        pages: 16,
    };
    let sample = runner::sample(&config, 200);
    let speed = |kernel: &mut KernelBackend| {
        let t = Instant::now();
        let mut steps = 0;
        for ops in &sample {
            let r = check::run_ops(&mut [kernel as &mut dyn Backend], config.pages, ops);
            steps += r.map(|s| s.steps).unwrap_or(0);
        }
        steps as f64 / t.elapsed().as_secs_f64()
    };
    if uffd_check::kernel::available().is_ok() {
        let exe = Path::new(env!("CARGO_BIN_EXE_uffd-check"));
        let mut here = KernelBackend::spawn(config.pages, exe).unwrap();
        println!("host {}: {:.0} ops/s", here.kernel(), speed(&mut here));
    }
    let list: BackendList = "model,impl,kernel".parse().unwrap();
    for k in kernels::list().unwrap() {
        let target = KernelTarget::Vm(qemu::VmConfig {
            image: k.image.clone(),
            ..cfg.clone()
        });
        let t = Instant::now();
        let mut kernel = target.backend(config.pages).unwrap();
        let boot = t.elapsed();
        println!(
            "{}: ready after {boot:?}, {:.0} ops/s",
            k.release,
            speed(&mut kernel)
        );
        drop(kernel);
        let mut made: Option<(u64, Vec<Box<dyn Backend>>)> = None;
        let mut failed = Vec::new();
        // By arena size, so each size boots one guest.
        let mut traces: Vec<_> = files.iter().map(|p| (Trace::load(p).unwrap(), p)).collect();
        traces.sort_by_key(|(t, p)| (t.pages, p.to_path_buf()));
        for (trace, path) in &traces {
            if made.as_ref().map(|m| m.0) != Some(trace.pages) {
                // The guest of the last size goes before the next boots.
                drop(made.take());
                let b = backends_in(&list, trace.pages, &target);
                made = Some((trace.pages, b));
            }
            let backends = &mut made.as_mut().unwrap().1;
            if let Err(f) = check::run_trace(&mut as_refs(backends), trace) {
                let name = path
                    .strip_prefix(env!("CARGO_MANIFEST_DIR"))
                    .unwrap_or(path);
                // A worker or layout trouble says what it was.
                let why = match f.invariant {
                    "backend-healthy" => f.message.lines().next().unwrap_or(""),
                    _ => "",
                };
                failed.push(format!(
                    "  {} (step {}): {} {why}",
                    name.display(),
                    f.step,
                    f.invariant
                ));
            }
        }
        println!(
            "{}: {}/{} cases agree; failing:\n{}",
            k.release,
            files.len() - failed.len(),
            files.len(),
            failed.join("\n")
        );
    }
}

/// `uffd-check matrix` on the 6.1 guest, merge cases only: the model takes
/// 6.1's profile, and every case where 6.1 differs from the contract is
/// explained by a historic bug 6.1 still has (the implementation with the
/// bug put back answers as the kernel did), none is a finding.
#[test]
fn the_matrix_explains_6_1_by_its_historic_bugs() {
    let Some(cfg) = setup() else { return };
    let release = qemu::image_release(&cfg.image).unwrap();
    if !release.starts_with("6.1.") {
        println!("SKIPPED: the image is {release}, not 6.1");
        return;
    }
    let out = std::env::temp_dir().join(format!("uffd-check-vm-matrix-{}", std::process::id()));
    let cases = concat!(env!("CARGO_MANIFEST_DIR"), "/cases/merge");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_uffd-check"))
        .args(["matrix", "--kernels"])
        .arg(&cfg.image)
        .args(["--cases", cases, "--sequences", "0", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{table}\n{err}");
    assert!(err.contains("historic bugs it has: stale-prev"), "{err}");
    assert!(table.contains("6/9"), "{table}");
    assert!(
        table.contains("historic bug unadjusted-pgoff: explains 1"),
        "{table}"
    );
    let _ = std::fs::remove_dir_all(&out);
}

/// The backends of `list` for an arena of `pages` pages, the kernel in the
/// guest `target`, the model with its default rules.
fn backends_in(list: &BackendList, pages: u64, target: &KernelTarget) -> Vec<Box<dyn Backend>> {
    let default = uffd_model::Deviation::off_by_default();
    make_all_on(list, pages, Default::default(), &default, target).unwrap()
}
