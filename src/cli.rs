//! The command line's arguments, as clap declares them (a module of the
//! `uffd-check` binary, not of the library): the subcommands, and the flags
//! they share, declared once (`BackendFlags`, `RuleFlags`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use uffd_check::backends::{BackendList, KernelTarget};
use uffd_check::setup::Setup;
use uffd_vocab::Page;

/// `explore` stopped at `--max-states` without a failure: the last depth is
/// incomplete.
pub const EXIT_TRUNCATED: u8 = 3;
/// Stopped by Ctrl-C without a failure.
pub const EXIT_INTERRUPTED: u8 = 130;

#[derive(Parser)]
#[command(
    name = "uffd-check",
    version,
    about = "Model-check Linux VMA layouts under userfaultfd register/unregister",
    after_help = EXIT_CODES,
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// `--kernel` and `--backends` (or `--backend`, as `replay` calls it), of
/// `check` and `explore`: alternatives, refused together.
#[derive(Args)]
pub struct BackendFlags {
    /// Run the live kernel as the third backend (= --backends model,impl,kernel).
    #[arg(long, conflicts_with = "backends")]
    pub kernel: bool,
    /// The backends, the first the reference (default model,impl).
    #[arg(long, alias = "backend")]
    pub backends: Option<BackendList>,
}

/// `--vm IMAGE` and `--vm-mem MB`, of `check`, `replay` and `explore`: the
/// kernel backend in a guest of that kernel image under qemu.
#[derive(Args)]
pub struct VmFlags {
    /// Run the kernel backend in a guest of this kernel image (a bzImage:
    /// your own build, or one of `uffd-check kernels fetch`) under qemu;
    /// the backends are then model,kernel unless given, and the model takes
    /// the guest kernel's profile.
    #[arg(long, value_name = "IMAGE")]
    pub vm: Option<PathBuf>,
    /// The guest's memory, in MB (default 512).
    #[arg(long, value_name = "MB", requires = "vm")]
    pub vm_mem: Option<u32>,
}

/// `--strict`, `--strict-rule` and `--inject-bug`, of `check`, `replay` and
/// `explore`. `--strict` and `--strict-rule` are alternatives, refused
/// together.
#[derive(Args)]
pub struct RuleFlags {
    /// Turn the model's deviation rules off: the model states the
    /// contract alone, and the kernel's known deviations from it are
    /// findings.
    #[arg(long, conflicts_with = "strict_rule")]
    strict: bool,
    /// Turn off only this deviation rule (may be given more than once).
    #[arg(long, value_parser = deviation_names())]
    strict_rule: Vec<String>,
    /// Put a historic kernel bug back into the implementation.
    #[arg(long, value_parser = bug_names())]
    inject_bug: Vec<String>,
}

impl RuleFlags {
    /// The run's setup, on these backends (and in a guest with `--vm`),
    /// with the kernel's profile when the kernel runs and no rule was
    /// named; an error for a bug put back into an implementation that does
    /// not run, or a guest that cannot be made.
    pub fn setup(
        self,
        kernel: bool,
        backends: Option<BackendList>,
        vm: VmFlags,
    ) -> Result<Setup, String> {
        if kernel && vm.vm.is_some() {
            return Err("--kernel and --vm: the kernel runs here or in a guest, not both".into());
        }
        let listed = backends.is_some();
        let mut setup = Setup::new(
            kernel,
            backends,
            self.inject_bug,
            self.strict,
            self.strict_rule,
        );
        if let Some(image) = &vm.vm {
            setup = setup.in_vm(KernelTarget::vm(image, vm.vm_mem)?, listed);
        }
        let setup = setup.with_profile();
        setup.check_bugs_run()?;
        Ok(setup)
    }
}

/// The exit codes, as `--help` prints them.
const EXIT_CODES: &str = "Exit codes:
  0    no failure
  1    a failure (check and explore write it to --out)
  2    bad input or flags, before any work
  3    explore stopped at --max-states: no failure, but the search is incomplete
  130  stopped by Ctrl-C without a failure";

#[derive(Subcommand)]
pub enum Command {
    /// Run random op sequences on the model and the implementation (and the
    /// live kernel with --kernel), checking every invariant after every step.
    #[command(mut_arg("inject_bug", |a| a.help(
        "Put a historic kernel bug back into the implementation, to see the \
         harness catch it (may be given more than once)"
    )))]
    #[command(after_help = EXIT_CODES)]
    Check {
        /// Seed of the sequences (default: from the clock; printed).
        #[arg(long)]
        seed: Option<u64>,
        /// How many sequences to run.
        #[arg(long, default_value_t = 10_000)]
        cases: u32,
        /// The longest sequence, in ops (1 to 10,000).
        #[arg(long, default_value_t = 40)]
        ops: usize,
        /// The arena size, in pages (1 to 1,048,576).
        #[arg(long, default_value_t = 16)]
        pages: Page,
        /// Threads running the sequences, each on its own backends (1 to
        /// 256; default: the cores, 1 with --vm); the same seed gives the
        /// same results whatever the jobs.
        #[arg(long)]
        jobs: Option<usize>,
        #[command(flatten)]
        on: BackendFlags,
        #[command(flatten)]
        vm: VmFlags,
        /// Where a shrunk failing case is written.
        #[arg(long, default_value = "failures")]
        out: PathBuf,
        #[command(flatten)]
        rules: RuleFlags,
    },
    /// Run a trace file, print each step's result and layout, and check
    /// every invariant and `expect` line.
    #[command(after_help = EXIT_CODES)]
    Replay {
        file: PathBuf,
        /// The backends to run, the first one printed (default model,impl;
        /// also --backends, as check and explore call it).
        #[arg(long, alias = "backends")]
        backend: Option<BackendList>,
        /// One JSON object per step instead of drawings.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        vm: VmFlags,
        #[command(flatten)]
        rules: RuleFlags,
    },
    /// Check every sequence of up to --depth ops of a small alphabet on a
    /// tiny arena, breadth first.
    #[command(mut_arg("kernel", |a| a.help(
        "Also replay every transition on the live kernel (= --backends \
         model,impl,kernel; slow: depth 2 takes seconds, depth 3 minutes)"
    )))]
    #[command(after_help = EXIT_CODES)]
    Explore {
        /// The arena size, in pages (1 to 8).
        #[arg(long, default_value_t = 4)]
        pages: Page,
        /// The longest sequence, in ops (up to 8).
        #[arg(long, default_value_t = 3)]
        depth: usize,
        /// Threads expanding each depth's states, each on its own backends
        /// (1 to 256; default: the cores, 1 with --vm); the same result
        /// whatever the jobs.
        #[arg(long)]
        jobs: Option<usize>,
        #[command(flatten)]
        on: BackendFlags,
        /// Stop after this many unique states (1 to 200,000,000; 10 to 50
        /// bytes each, the last depth's the fewest).
        #[arg(long, default_value_t = 2_000_000)]
        max_states: u64,
        #[command(flatten)]
        vm: VmFlags,
        /// Where a failing case is written.
        #[arg(long, default_value = "failures")]
        out: PathBuf,
        #[command(flatten)]
        rules: RuleFlags,
    },
    /// Turn a trace into one standalone C program (kselftest-shaped, TAP
    /// output) that replays it on the live kernel and checks each step
    /// against what the model expects.
    Repro {
        /// The trace (`-` reads standard input).
        #[arg(required_unless_present = "fetch_kselftest_headers")]
        file: Option<PathBuf>,
        /// Where to write the program (default: standard output).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// A known deviation fails the program (exit 1, `not ok`) instead of
        /// being a TODO (the default for a trace found under --strict).
        #[arg(long)]
        strict: bool,
        /// The kselftest form: built with a kernel tree's kselftest.h
        /// (`cc -I TREE/tools/testing/selftests/mm`), beside merge.c.
        #[arg(long)]
        kselftest: bool,
        /// Fetch the kselftest headers (Debian's linux-source-6.12) into the
        /// cache and print the directory to build in, then exit.
        #[arg(long, conflicts_with_all = ["file", "output", "strict", "kselftest"])]
        fetch_kselftest_headers: bool,
    },
    /// Measure the harness side by side in one run: generating sequences,
    /// check on one job and on the cores (model and impl, and the kernel),
    /// explore, and the model and the implementation alone at growing VMA
    /// counts and on whole arenas of two sizes (seconds; --long: tens of
    /// minutes).
    Bench {
        /// VMA counts of the scaling table (2 to 1,048,576 each; default
        /// 1000,10000, with --long 1000,10000,100000).
        #[arg(long, value_delimiter = ',')]
        vmas: Option<Vec<u64>>,
        /// Ops timed per row (1 to 1,000,000).
        #[arg(long, default_value_t = 200_000)]
        ops: u64,
        /// The long rows too: 100,000 VMAs, whole arenas of 32,768 and
        /// 262,144 pages instead of 4,096 and 32,768, and explore of 6 pages
        /// to depth 4 on the cores.
        #[arg(long)]
        long: bool,
    },
    /// Kernel images to test against: Debian's newest of a series,
    /// downloaded into a cache (never installed), and the cached ones.
    Kernels {
        #[command(subcommand)]
        what: KernelsCommand,
    },
    /// Every case and N random sequences on each kernel of a list, each
    /// judged by the model with that kernel's profile: a table of what
    /// agrees, what a known historic bug explains, and what is new.
    #[command(after_help = EXIT_CODES)]
    Matrix {
        /// The kernels: series (6.1, 6.12, 7.x: the newest cached image of
        /// it, fetched when none), images' paths, or host (this machine's).
        #[arg(long, value_delimiter = ',', default_value = "6.1,6.12,host")]
        kernels: Vec<String>,
        /// Random sequences a kernel.
        #[arg(long, default_value_t = 200)]
        sequences: usize,
        /// The longest sequence, in ops (1 to 10,000).
        #[arg(long, default_value_t = 20)]
        ops: usize,
        /// The arena size of the random sequences, in pages.
        #[arg(long, default_value_t = 16)]
        pages: Page,
        /// Seed of the sequences.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The cases to run (every trace under it).
        #[arg(long, default_value = "cases")]
        cases: PathBuf,
        /// Shrink this many findings a kernel (each shrink replays in the
        /// guest).
        #[arg(long, default_value_t = 3)]
        shrink: usize,
        /// Where findings are written.
        #[arg(long, default_value = "failures/matrix")]
        out: PathBuf,
        /// The guests' memory, in MB (default 512).
        #[arg(long, value_name = "MB")]
        vm_mem: Option<u32>,
    },
    #[command(name = "__worker", hide = true)]
    Worker,
}

/// `uffd-check kernels …`.
#[derive(Subcommand)]
pub enum KernelsCommand {
    /// The cached kernel images, with their releases and paths.
    List,
    /// Download Debian's newest kernel image of each series (6.1, 6.12,
    /// 7.x, …) into the cache, and print its path.
    Fetch {
        #[arg(required = true)]
        series: Vec<String>,
    },
}

/// `--inject-bug NAME`: the names of [`uffd_impl::HISTORIC_BUGS`], each
/// with its history as help.
fn bug_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(
        uffd_impl::HISTORIC_BUGS
            .iter()
            .map(|h| clap::builder::PossibleValue::new(h.name).help(h.history)),
    )
}

/// `--strict-rule NAME`: the names of [`uffd_model::Deviation`], each with
/// what the kernel does instead of the contract as help.
fn deviation_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(
        uffd_model::Deviation::ALL
            .iter()
            .map(|d| clap::builder::PossibleValue::new(d.name()).help(d.kernel())),
    )
}
