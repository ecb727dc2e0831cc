//! The kernel matrix (`uffd-check matrix`): every case of `cases/` and N
//! random sequences on each kernel of a list (Debian's images under qemu,
//! any image, or this machine's kernel), each judged by the model with the
//! kernel's profile ([`crate::profile`]): the deviation rules that kernel
//! has are on, the others off. A difference is then either explained by a
//! historic bug the profile says the kernel still has (the implementation
//! with that bug put back answers the failing step as the kernel did), or
//! a finding: shrunk (the first few), written as a trace that replays with
//! `--vm IMAGE`, and counted.
//!
//! The implementation is not among the backends: it follows one kernel's
//! code (6.18's), which the model with another kernel's profile does not.
//! The cases run without their `expect` lines, which state what 6.18 does:
//! the model with the profile is the expectation. A case's arena size is
//! its own, so each size boots its own guest (a guest's worker has one
//! arena).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use uffd_impl::Bugs;
use uffd_vocab::{Backend, Page};

use crate::backends::{as_refs, make_all_on, BackendList, KernelTarget, Which};
use crate::check::{run_trace, Failure, Stats};
use crate::profile::{explain, Profile};
use crate::runner::{sample, RunConfig};
use crate::shrink::minimize;
use crate::trace::Trace;

/// What a matrix runs.
#[derive(Clone, Debug)]
pub struct MatrixConfig {
    /// The kernels: a series (`6.1`, `7.x`: the newest cached image of it,
    /// fetched when there is none), an image's path, or `host`.
    pub kernels: Vec<String>,
    /// The case files to run.
    pub cases: Vec<PathBuf>,
    /// Random sequences a kernel.
    pub sequences: usize,
    pub ops: usize,
    pub pages: Page,
    pub seed: u64,
    /// Where findings are written.
    pub out: PathBuf,
    /// Guest memory (MB); `None`: the default.
    pub mem_mb: Option<u32>,
    /// How many findings of a kernel to shrink (each shrink replays
    /// candidates in the guest).
    pub shrink: usize,
}

impl MatrixConfig {
    /// An error for bounds a run should not take (as `check`'s).
    pub fn check_bounds(&self) -> Result<(), String> {
        RunConfig {
            seed: self.seed,
            // No random sequence, the cases alone, is fine.
            cases: 1,
            ops: self.ops,
            pages: self.pages,
        }
        .check_bounds()?;
        if self.kernels.is_empty() {
            return Err("--kernels: name at least one kernel".into());
        }
        Ok(())
    }
}

/// How a run on a kernel ended.
#[derive(Clone, Debug)]
pub enum Verdict {
    /// The kernel did what the model with its profile says.
    Agrees,
    /// A historic bug the kernel has explains the difference.
    Explained(&'static str),
    /// A difference nothing known explains: the invariant, the op of the
    /// failing step, and the file the (shrunk) trace was written to.
    Finding(&'static str, &'static str, PathBuf),
}

/// One kernel's row.
#[derive(Debug)]
pub struct Row {
    /// As given (`6.1`, a path, `host`).
    pub kernel: String,
    pub profile: Profile,
    /// The target's flags for a replay (` --vm IMAGE`).
    pub flags: String,
    /// From start to the first guest's `ready` (zero on the host).
    pub boot: Duration,
    /// Each case and its verdict.
    pub cases: Vec<(PathBuf, Verdict)>,
    /// Each random sequence's verdict.
    pub sequences: Vec<Verdict>,
    /// Steps run on the kernel, and the time they took (booting aside).
    pub steps: u64,
    pub busy: Duration,
    /// Deviation rule -> steps it changed (the model's report).
    pub rules_hit: BTreeMap<&'static str, u64>,
}

impl Row {
    pub fn cases_agreeing(&self) -> usize {
        self.cases
            .iter()
            .filter(|(_, v)| matches!(v, Verdict::Agrees))
            .count()
    }
    /// Every verdict of the row, cases and sequences.
    pub fn verdicts(&self) -> impl Iterator<Item = &Verdict> {
        self.cases.iter().map(|(_, v)| v).chain(&self.sequences)
    }
    pub fn findings(&self) -> usize {
        self.verdicts()
            .filter(|v| matches!(v, Verdict::Finding(..)))
            .count()
    }
    /// Historic bug -> how many runs it explained.
    pub fn explained(&self) -> BTreeMap<&'static str, usize> {
        let mut m = BTreeMap::new();
        for v in self.verdicts() {
            if let Verdict::Explained(b) = v {
                *m.entry(*b).or_default() += 1;
            }
        }
        m
    }
    pub fn ops_per_sec(&self) -> f64 {
        self.steps as f64 / self.busy.as_secs_f64().max(1e-9)
    }
}

/// The target of a kernel spec: `host`, an image's path, or a series
/// (the newest cached image of it, else Debian's newest, fetched).
pub fn target(spec: &str, mem_mb: Option<u32>) -> Result<KernelTarget, String> {
    if spec == "host" {
        return Ok(KernelTarget::Host);
    }
    let path = Path::new(spec);
    if path.exists() {
        return KernelTarget::vm(path, mem_mb);
    }
    let image = match crate::vm::kernels::find(spec)? {
        Some(k) => k.image,
        None => crate::vm::kernels::fetch(spec)?.image,
    };
    KernelTarget::vm(&image, mem_mb)
}

/// Runs the matrix, one kernel after another, calling `progress` with a
/// line now and then.
pub fn run(config: &MatrixConfig, progress: &mut dyn FnMut(&str)) -> Result<Vec<Row>, String> {
    std::fs::create_dir_all(&config.out)
        .map_err(|e| format!("cannot create {}: {e}", config.out.display()))?;
    let mut rows = Vec::new();
    for spec in &config.kernels {
        let target = target(spec, config.mem_mb)?;
        progress(&format!("{spec}: {}", target.note()));
        rows.push(run_kernel(spec, &target, config, progress)?);
    }
    Ok(rows)
}

/// The two backends of a kernel's runs, from the one factory of backend
/// sets: the model with the kernel's profile, and the kernel.
struct Pair(Vec<Box<dyn Backend>>);

impl Pair {
    fn new(target: &KernelTarget, profile: &Profile, pages: Page) -> Result<Pair, String> {
        let list = BackendList(vec![Which::Model, Which::Kernel]);
        make_all_on(&list, pages, Bugs::NONE, &profile.rules_off(), target).map(Pair)
    }
    fn run(&mut self, trace: &Trace) -> Result<Stats, Failure> {
        run_trace(&mut as_refs(&mut self.0), trace)
    }
}

fn run_kernel(
    spec: &str,
    target: &KernelTarget,
    config: &MatrixConfig,
    progress: &mut dyn FnMut(&str),
) -> Result<Row, String> {
    let profile = Profile::of_release(&target.release());
    progress(&profile.to_string());
    let mut row = Row {
        kernel: spec.to_string(),
        profile,
        flags: target.flags(),
        boot: Duration::ZERO,
        cases: Vec::new(),
        sequences: Vec::new(),
        steps: 0,
        busy: Duration::ZERO,
        rules_hit: BTreeMap::new(),
    };
    let mut findings = 0;
    for (pages, traces) in by_arena(&config.cases)? {
        let start = Instant::now();
        let mut pair = Pair::new(target, &row.profile, pages)?;
        if row.boot.is_zero() {
            row.boot = start.elapsed();
        }
        for (path, trace) in traces {
            let v = judge(
                &mut row,
                &mut pair,
                &trace,
                config,
                &mut findings,
                &name_of(&path),
            );
            row.cases.push((path, v));
        }
    }
    progress(&format!(
        "{spec}: {} of {} cases agree",
        row.cases_agreeing(),
        row.cases.len()
    ));
    let run = RunConfig {
        seed: config.seed,
        cases: config.sequences as u32,
        ops: config.ops,
        pages: config.pages,
    };
    let mut pair = Pair::new(target, &row.profile, config.pages)?;
    for (n, ops) in sample(&run, config.sequences).into_iter().enumerate() {
        let trace = Trace::from_ops(config.pages, &ops);
        let name = format!("seed-{}-{n}", config.seed);
        let v = judge(&mut row, &mut pair, &trace, config, &mut findings, &name);
        row.sequences.push(v);
    }
    Ok(row)
}

/// The case files, loaded and grouped by arena size.
fn by_arena(files: &[PathBuf]) -> Result<BTreeMap<Page, Vec<(PathBuf, Trace)>>, String> {
    let mut m: BTreeMap<Page, Vec<(PathBuf, Trace)>> = BTreeMap::new();
    for path in files {
        let t = Trace::load(path).map_err(|e| e.to_string())?;
        // The ops only: the expect lines state what 6.18 does.
        let ops = Trace::from_ops(t.pages, &t.ops());
        m.entry(t.pages).or_default().push((path.clone(), ops));
    }
    Ok(m)
}

fn name_of(path: &Path) -> String {
    path.file_stem()
        .map_or("case".into(), |s| s.to_string_lossy().into_owned())
}

/// Runs one trace on the pair and judges it: agrees, explained by a
/// historic bug of the profile, or a finding (shrunk while fewer than
/// `config.shrink` were, and written under `config.out`). A shrunk
/// difference is judged again: the implementation that explains it
/// follows 6.18's code, and a shorter trace may leave out a step where
/// this kernel did something else first (a rule of its own series).
fn judge(
    row: &mut Row,
    pair: &mut Pair,
    trace: &Trace,
    config: &MatrixConfig,
    findings: &mut usize,
    name: &str,
) -> Verdict {
    let start = Instant::now();
    let result = pair.run(trace);
    row.busy += start.elapsed();
    let failure = match result {
        Ok(stats) => {
            row.steps += stats.steps;
            for (rule, n) in stats.deviations {
                *row.rules_hit.entry(rule).or_default() += n;
            }
            return Verdict::Agrees;
        }
        Err(f) => f,
    };
    row.steps += failure.step as u64 + 1;
    if let Some(bug) = explain(&row.profile, &failure) {
        return Verdict::Explained(bug.name);
    }
    let failure = if *findings < config.shrink {
        let failure = shrunk(pair, trace.pages, failure);
        if let Some(bug) = explain(&row.profile, &failure) {
            return Verdict::Explained(bug.name);
        }
        failure
    } else {
        failure
    };
    *findings += 1;
    let path = config
        .out
        .join(format!("{}-{name}.trace", label(&row.profile.release)));
    let text = format!(
        "# a finding of `uffd-check matrix` on Linux {}: {} failed at step {}\n\
         # replay: uffd-check replay {} --backend model,kernel{}\n{}",
        row.profile.release,
        failure.invariant,
        failure.step + 1,
        path.display(),
        row.flags,
        failure.trace.to_text()
    );
    if let Err(e) = std::fs::write(&path, text) {
        eprintln!("cannot write {}: {e}", path.display());
    }
    let op = failure.trace.steps[failure.step].op.name();
    Verdict::Finding(failure.invariant, op, path)
}

/// The failure shrunk on the same pair, or as it was when shrinking does
/// not keep it.
fn shrunk(pair: &mut Pair, pages: Page, failure: Failure) -> Failure {
    let ops = failure.trace.ops();
    let (small, _) = minimize(&mut as_refs(&mut pair.0), pages, ops);
    match pair.run(&Trace::from_ops(pages, &small)) {
        Err(f) if f.invariant == failure.invariant => f,
        _ => failure,
    }
}

/// A release as a file-name part.
fn label(release: &str) -> String {
    release
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The matrix as a table (80 columns), then per kernel the rules it hit,
/// the bugs that explained differences and the findings.
pub fn table(rows: &[Row]) -> String {
    let mut out = format!(
        "{:<8} {:<22} {:>6} {:>7} {:>9} {:>7} {:>5} {:>4} {:>4}\n",
        "kernel", "release", "boot", "cases", "seqs", "ops/s", "rules", "bugs", "new"
    );
    for r in rows {
        let seqs_ok = r
            .sequences
            .iter()
            .filter(|v| !matches!(v, Verdict::Finding(..)))
            .count();
        out += &format!(
            "{:<8} {:<22} {:>5.1}s {:>7} {:>9} {:>7.0} {:>5} {:>4} {:>4}\n",
            truncate(&r.kernel, 8),
            truncate(&r.profile.release, 22),
            r.boot.as_secs_f64(),
            format!("{}/{}", r.cases_agreeing(), r.cases.len()),
            format!("{seqs_ok}/{}", r.sequences.len()),
            r.ops_per_sec(),
            r.rules_hit.values().sum::<u64>(),
            r.explained().values().sum::<usize>(),
            r.findings(),
        );
    }
    out += "(cases: agreeing with the model under the kernel's profile; seqs: \
            random\nsequences agreeing or explained; rules: steps a deviation \
            rule changed;\nbugs: differences a historic bug of the kernel \
            explains; new: findings)\n";
    for r in rows {
        out += &details(r);
    }
    out
}

fn details(r: &Row) -> String {
    let mut out = format!("\n{} ({}):\n", r.kernel, r.profile.release);
    for (rule, n) in &r.rules_hit {
        out += &format!("  rule {rule}: {n} steps\n");
    }
    for (bug, n) in r.explained() {
        out += &format!("  historic bug {bug}: explains {n}\n");
    }
    for (path, v) in &r.cases {
        if let Verdict::Finding(inv, op, _) = v {
            out += &format!("  case {}: {inv} at {op}\n", path.display());
        }
    }
    // The random findings grouped by what failed where, with the first of
    // each group (shrunk if it was among the first few).
    let mut groups: BTreeMap<(&str, &str), (usize, &Path)> = BTreeMap::new();
    for v in &r.sequences {
        if let Verdict::Finding(inv, op, path) = v {
            groups.entry((inv, op)).or_insert((0, path)).0 += 1;
        }
    }
    for ((inv, op), (n, first)) in groups {
        out += &format!(
            "  {n} sequence(s): {inv} at {op}, e.g. {}\n",
            first.display()
        );
    }
    out
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).chain(['…']).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_fits_80_columns_and_counts() {
        let row = Row {
            kernel: "6.1".into(),
            profile: Profile::of_release("6.1.0-57-amd64"),
            flags: " --vm /x".into(),
            boot: Duration::from_millis(5800),
            cases: vec![
                ("a.trace".into(), Verdict::Agrees),
                ("b.trace".into(), Verdict::Explained("unadjusted-pgoff")),
                (
                    "c.trace".into(),
                    Verdict::Finding("same-layout", "register", "f.trace".into()),
                ),
            ],
            sequences: vec![
                Verdict::Agrees,
                Verdict::Explained("unadjusted-pgoff"),
                Verdict::Finding("same-result", "mremap", "g.trace".into()),
                Verdict::Finding("same-result", "mremap", "h.trace".into()),
            ],
            steps: 3820,
            busy: Duration::from_secs(10),
            rules_hit: [("fork-keeps-parent-boundaries", 3)].into_iter().collect(),
        };
        assert_eq!(row.cases_agreeing(), 1);
        assert_eq!(row.findings(), 3);
        assert_eq!(row.explained()["unadjusted-pgoff"], 2);
        let t = table(&[row]);
        for line in t.lines() {
            assert!(line.chars().count() <= 80, "{line:?}");
        }
        assert!(t.contains("6.1      6.1.0-57-amd64"), "{t}");
        assert!(t.contains("1/3"), "{t}");
        assert!(t.contains("2/4"), "{t}");
        assert!(t.contains("case c.trace: same-layout at register"), "{t}");
        assert!(
            t.contains("2 sequence(s): same-result at mremap, e.g. g.trace"),
            "{t}"
        );
        assert_eq!(label("6.1.0-57+deb12/x"), "6.1.0-57-deb12-x");
    }
}
