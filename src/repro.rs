//! `repro`: a trace turned into one standalone C program, shaped like a
//! kselftest, that replays the trace on the live kernel with raw syscalls and
//! checks every step against what the page model (the contract) expects.
//!
//! The program does exactly what the kernel worker (`uffd_kernel::worker`)
//! does: it reserves the arena at the same fixed addresses between the same
//! two guard pages (a private PROT_NONE mapping of a memfd of its own), maps
//! the same four memfds (and a read-only fd of each), opens a userfaultfd per
//! context on first use the same three ways with `UFFD_FEATURE_SIGBUS`, and
//! reads the arena back from `/proc/self/smaps` into the vocabulary's one
//! VMA text form, exactly as `uffd-check replay --backend kernel` prints a
//! kernel layout (`anon@?`, `anon_vma=?`, the owning ctx asked of the kernel
//! by re-registering each registered VMA on every open uffd).
//!
//! The expectation is computed here, in Rust, by running the trace through
//! [`uffd_model::PageModel`] with its deviation rules off (the contract) and
//! projecting each layout onto what the kernel can observe
//! ([`uffd_kernel::UNOBSERVED`]); it is embedded in the program as C string
//! data, one result name and one list of VMA lines per step. Where the
//! model with its deviation rules on (what the kernel is known to do)
//! expects something else, that is embedded too, with the deviation's name:
//! a step that matches it is `not ok N - OP # TODO known deviation: NAME`,
//! which TAP does not count as a failure. `mremap` of a uffd opened with
//! `event-remap` runs with a monitor thread reading the uffd's events (the
//! kernel waits for them); `fork`'s layout is the child's, read from
//! `/proc/CHILD/smaps` while the child waits on a pipe.
//!
//! The program prints TAP 13: `ok N - OP` or `not ok N - OP` per step, with
//! `# expected:` / `# actual:` diagnostics for a step that is not ok, and for
//! every step the machine-readable `# result N: NAME` and one
//! `# layout N: VMA` line per actual VMA. It exits 0 when every step is as
//! expected, 1 when one is not (or the setup fails: `Bail out!`), and 4
//! (KSFT_SKIP, with `1..0 # SKIP reason`) when no userfaultfd can be opened.

use std::fmt::Write as _;

use uffd_vocab::layout::SMAPS_IGNORED;
use uffd_vocab::{result_name, Backend, Features, Kind, Mode, Op, Prot, Remap, VmFlags};

use crate::trace::Trace;

/// One step's expectation: the result name (`ok`, `EINVAL`, `errno42`) and
/// the layout after it, one VMA a line in the text form.
pub type Expectation = (String, Vec<String>);

/// What the contract (the page model with its deviation rules off,
/// `--strict`) expects of each step of `trace`, as the kernel can see it:
/// the result name and the layout projected onto
/// [`uffd_kernel::UNOBSERVED`] (so `anon@?` and `anon_vma=?`), one entry a
/// step.
pub fn model_expectation(trace: &Trace) -> Vec<Expectation> {
    expectations(trace, true)
        .into_iter()
        .map(|(e, _)| e)
        .collect()
}

/// What the page model expects with its deviation rules on (what the
/// kernel is known to do), each step with the deviation rules that changed it.
pub fn kernel_expectation(trace: &Trace) -> Vec<(Expectation, Vec<&'static str>)> {
    expectations(trace, false)
}

fn expectations(trace: &Trace, strict: bool) -> Vec<(Expectation, Vec<&'static str>)> {
    let mut model = uffd_model::PageModel::with_strict(trace.pages, strict);
    trace
        .steps
        .iter()
        .map(|s| {
            let o = model
                .step(&s.op)
                .expect("the page model answers every op of the language");
            (
                (
                    result_name(&o.result),
                    o.layout.project(uffd_kernel::UNOBSERVED).lines(),
                ),
                o.report.deviations,
            )
        })
        .collect()
}

/// For each step where what the kernel is known to do differs from the
/// contract: that expectation, and why (the deviation, or the step whose
/// deviation it follows from).
fn known_deviations(trace: &Trace) -> Vec<Option<(Expectation, String)>> {
    let mut first: Option<usize> = None;
    let contract = model_expectation(trace);
    kernel_expectation(trace)
        .into_iter()
        .zip(&contract)
        .enumerate()
        .map(|(i, ((known, names), want))| {
            if known == *want {
                return None;
            }
            let why = if !names.is_empty() {
                first.get_or_insert(i);
                format!("known deviation: {}", names.join(", "))
            } else if let Some(k) = first {
                format!("follows from the known deviation at step {}", k + 1)
            } else {
                "the kernel's known behaviour".to_string()
            };
            Some((known, why))
        })
        .collect()
}

/// The C program for `trace`, named `name` (its file is `NAME.c`), checking
/// every step against the page model's expectation
/// ([`model_expectation`]).
pub fn repro_c(trace: &Trace, name: &str) -> String {
    repro_c_with(trace, name, model_expectation(trace))
}

/// The C program for `trace` with an explicit expectation, one entry a step
/// (the result name and the expected VMA lines, in the text form the
/// program prints). Panics if `expected` does not have one entry a step.
pub fn repro_c_with(trace: &Trace, name: &str, expected: Vec<Expectation>) -> String {
    assert_eq!(
        expected.len(),
        trace.steps.len(),
        "repro_c_with: one expectation a step"
    );
    let mut out = String::new();
    header(&mut out, trace, name);
    out.push_str(PRELUDE);
    smaps_tables(&mut out);
    let _ = writeln!(out, "#define NPAGES {}UL", trace.pages);
    let _ = writeln!(out, "#define NSTEPS {}", trace.steps.len());
    let _ = writeln!(out, "static const char NAME[] = {};", c_string(name));
    out.push('\n');
    for (i, (_, lines)) in expected.iter().enumerate() {
        let _ = writeln!(out, "static const char *const expect_{}[] = {{", i + 1);
        for l in lines {
            let _ = writeln!(out, "\t{},", c_string(l));
        }
        out.push_str("\tNULL,\n};\n");
    }
    let known = known_deviations(trace);
    for (i, k) in known.iter().enumerate() {
        if let Some(((_, lines), _)) = k {
            let _ = writeln!(out, "static const char *const known_{}[] = {{", i + 1);
            for l in lines {
                let _ = writeln!(out, "\t{},", c_string(l));
            }
            out.push_str("\tNULL,\n};\n");
        }
    }
    out.push_str("\nstatic const struct step steps[NSTEPS + 1] = {\n");
    for (i, (step, (result, _))) in trace.steps.iter().zip(&expected).enumerate() {
        let known = match &known[i] {
            Some(((r, _), why)) => format!(
                ", .known_result = {}, .known_layout = known_{}, .known_why = {}",
                c_string(r),
                i + 1,
                c_string(why)
            ),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "\t{{ .line = {}, {}, .expect_result = {}, .expect_layout = expect_{}{known} }},",
            c_string(&step.op.to_string()),
            op_fields(&step.op),
            c_string(result),
            i + 1
        );
    }
    out.push_str("\t{ .line = NULL },\n};\n");
    out.push_str(BODY);
    out
}

/// The op's fields of `struct step`, as designated initializers.
fn op_fields(op: &Op) -> String {
    match *op {
        Op::Map {
            start,
            len,
            prot,
            kind,
        } => {
            let (k, file, pgoff) = match kind {
                Kind::Anon => ("K_ANON", 0, 0),
                Kind::AnonNoreserve => ("K_ANON_NORESERVE", 0, 0),
                Kind::Shmem => ("K_SHMEM", 0, 0),
                Kind::File { file, pgoff } => ("K_FILE", file, pgoff),
                Kind::SharedFile { file, pgoff } => ("K_SHARED_FILE", file, pgoff),
                Kind::SharedRoFile { file, pgoff } => ("K_SHARED_RO_FILE", file, pgoff),
            };
            format!(
                ".op = OP_MAP, .start = {start}, .len = {len}, .prot = {}, .kind = {k}, \
                 .file = {file}, .pgoff = {pgoff}",
                prot.bits()
            )
        }
        Op::Unmap { start, len } => format!(".op = OP_UNMAP, .start = {start}, .len = {len}"),
        Op::Protect { start, len, prot } => format!(
            ".op = OP_PROTECT, .start = {start}, .len = {len}, .prot = {}",
            prot.bits()
        ),
        Op::Register {
            ctx,
            start,
            len,
            mode,
        } => format!(
            ".op = OP_REGISTER, .ctx = {ctx}, .start = {start}, .len = {len}, .mode = {}ULL",
            mode.0
        ),
        Op::Unregister { ctx, start, len } => {
            format!(".op = OP_UNREGISTER, .ctx = {ctx}, .start = {start}, .len = {len}")
        }
        Op::Close { ctx } => format!(".op = OP_CLOSE, .ctx = {ctx}"),
        Op::Fault { page } => format!(".op = OP_FAULT, .start = {page}, .len = 1"),
        Op::Madvise { start, len, advice } => format!(
            ".op = OP_MADVISE, .start = {start}, .len = {len}, .advice = MADV_{}",
            advice.name().to_ascii_uppercase()
        ),
        Op::Mlock {
            start,
            len,
            onfault,
        } => format!(
            ".op = OP_MLOCK, .start = {start}, .len = {len}, .onfault = {}",
            u8::from(onfault)
        ),
        Op::Munlock { start, len } => {
            format!(".op = OP_MUNLOCK, .start = {start}, .len = {len}")
        }
        Op::Mremap {
            start,
            len,
            newlen,
            to,
        } => {
            let (how, dst) = match to {
                Remap::InPlace => ("REMAP_IN_PLACE", 0),
                Remap::Fixed(d) => ("REMAP_FIXED", d),
                Remap::DontUnmap(d) => ("REMAP_DONTUNMAP", d),
            };
            format!(
                ".op = OP_MREMAP, .start = {start}, .len = {len}, .newlen = {newlen}, \
                 .to = {how}, .dst = {dst}"
            )
        }
        Op::Open { ctx, features } => format!(
            ".op = OP_OPEN, .ctx = {ctx}, .event_remap = {}",
            u8::from(features == Features::EventRemap)
        ),
        Op::Fork => ".op = OP_FORK".to_string(),
    }
}

/// The smaps `VmFlags` codes, from the vocabulary's own tables (the ones the
/// kernel worker decodes through): the VMA flags in display order with
/// their names, the uffd bits with theirs, the prot bits, and the codes
/// that say nothing here. Any other code in an arena VMA is an error, as it
/// is for the worker.
fn smaps_tables(out: &mut String) {
    out.push_str("/* The smaps VmFlags codes, from uffd-check's vocabulary. */\n");
    out.push_str("static const char *const vmflag_codes[][2] = {\n");
    for (_, name, code) in VmFlags::NAMES.iter() {
        let _ = writeln!(out, "\t{{ {}, {} }},", c_string(code), c_string(name));
    }
    out.push_str("};\n");
    let mayshare = VmFlags::NAMES
        .iter()
        .position(|(bit, _, _)| *bit == VmFlags::MAYSHARE)
        .expect("VM_MAYSHARE is in VmFlags::NAMES");
    let _ = writeln!(
        out,
        "/* VM_MAYSHARE's place in vmflag_codes: no `ms` means private. */\n\
         #define F_MAYSHARE (1UL << {mayshare})"
    );
    out.push_str("static const struct code uffd_codes[] = {\n");
    for (mode, code) in Mode::SMAPS_CODES.iter() {
        let _ = writeln!(
            out,
            "\t{{ {}, {}, {} }},",
            c_string(code),
            mode.0,
            c_string(&mode.names().join("+"))
        );
    }
    out.push_str("};\nstatic const struct code prot_codes[] = {\n");
    for (bit, code) in Prot::SMAPS_CODES.iter() {
        let _ = writeln!(out, "\t{{ {}, {bit}, NULL }},", c_string(code));
    }
    out.push_str("};\nstatic const char *const ignored_codes[] = {\n");
    for code in SMAPS_IGNORED.iter() {
        let _ = writeln!(out, "\t{},", c_string(code));
    }
    out.push_str("};\n\n");
}

/// `s` as a C string literal: quotes, backslashes and anything not
/// printable ASCII escaped (in octal, which never runs on into the next
/// character), and a `?` after a `?` escaped so that no trigraph forms.
fn c_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut prev = 0u8;
    for &b in s.as_bytes() {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'?' if prev == b'?' => out.push_str("\\?"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\{b:03o}");
            }
        }
        prev = b;
    }
    out.push('"');
    out
}

/// Text safe inside a C block comment: no `*/`, no `/*`, printable ASCII.
fn comment_safe(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    s.replace("*/", "* /").replace("/*", "/ *")
}

/// The comment header: what the program is, the trace, how to build and run it.
fn header(out: &mut String, trace: &Trace, name: &str) {
    let name = comment_safe(name);
    let _ = writeln!(out, "/*");
    let _ = writeln!(
        out,
        " * {name}: a uffd-check trace as a standalone kselftest-style program."
    );
    out.push_str(
        " *\n\
         \x20* Generated by uffd-check (src/repro.rs). It replays the trace below on\n\
         \x20* the live kernel with raw syscalls (mmap, munmap, mprotect, madvise,\n\
         \x20* mlock2, mremap, fork, userfaultfd with UFFD_FEATURE_SIGBUS (and\n\
         \x20* EVENT_REMAP) and UFFDIO_REGISTER/UNREGISTER,\n\
         \x20* close, and a one-byte process_vm_writev to itself for `fault`), in\n\
         \x20* an arena at a fixed address between two guard pages, exactly as\n\
         \x20* uffd-check's kernel worker does. After every step it reads the\n\
         \x20* arena's VMAs back from /proc/self/smaps and checks the step's result\n\
         \x20* and layout against what uffd-check's page model (the contract)\n\
         \x20* expects; a step where this kernel is known to depart from the\n\
         \x20* contract (a named deviation) is `not ok N - OP # TODO ...`. smaps\n\
         \x20* shows neither the page offset of private anonymous memory nor\n\
         \x20* anon_vmas: both sides print them as `anon@?` and `anon_vma=?`.\n\
         \x20*\n\
         \x20* The trace (all numbers are pages, relative to the arena):\n\
         \x20*\n",
    );
    for line in trace.to_text().lines() {
        let _ = writeln!(out, " *   {}", comment_safe(line));
    }
    let _ = writeln!(out, " *\n * Build and run:\n *");
    let _ = writeln!(out, " *   cc -O2 -Wall -Werror -o {name} {name}.c");
    let _ = writeln!(out, " *   ./{name}");
    out.push_str(
        " *\n\
         \x20* It prints TAP 13: `ok N - OP` or `not ok N - OP` a step (a step that is\n\
         \x20* not ok is followed by its `# expected:` and `# actual:` result and\n\
         \x20* VMAs), and for every step `# result N: NAME` and one `# layout N: VMA`\n\
         \x20* line per VMA it found. Exit status: 0 when every step is as expected,\n\
         \x20* 1 when one is not (or the setup fails), 4 (KSFT_SKIP) when no\n\
         \x20* userfaultfd can be opened (it needs root, or Linux 5.11+ for\n\
         \x20* UFFD_USER_MODE_ONLY, or read-write access to /dev/userfaultfd).\n\
         \x20*/\n",
    );
}

/// Headers, constants and the step table's type.
const PRELUDE: &str = r##"
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/userfaultfd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 0x0001U
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif
#ifndef UFFD_FEATURE_SIGBUS
#define UFFD_FEATURE_SIGBUS (1 << 7)
#endif
#ifndef UFFD_FEATURE_EVENT_REMAP
#define UFFD_FEATURE_EVENT_REMAP (1 << 2)
#endif
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif
/* The madvise advices of the trace language, for older headers. */
#ifndef MADV_DONTFORK
#define MADV_DONTFORK 10
#endif
#ifndef MADV_DOFORK
#define MADV_DOFORK 11
#endif
#ifndef MADV_MERGEABLE
#define MADV_MERGEABLE 12
#endif
#ifndef MADV_UNMERGEABLE
#define MADV_UNMERGEABLE 13
#endif
#ifndef MADV_HUGEPAGE
#define MADV_HUGEPAGE 14
#endif
#ifndef MADV_NOHUGEPAGE
#define MADV_NOHUGEPAGE 15
#endif
#ifndef MADV_DONTDUMP
#define MADV_DONTDUMP 16
#endif
#ifndef MADV_DODUMP
#define MADV_DODUMP 17
#endif
#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#endif
#ifndef MADV_KEEPONFORK
#define MADV_KEEPONFORK 19
#endif

#define KSFT_PASS 0
#define KSFT_FAIL 1
#define KSFT_SKIP 4

#define PAGE 4096UL
/* Where the arena is tried, as uffd-check's kernel worker tries it. */
#define ARENA_HINT 0x100000000000UL
#define ARENA_STEP 0x10000000000UL
/* The largest file page offset an op may name (MAX_PGOFF). */
#define MAX_PGOFF 1048576UL
#define NFILES 4
#define NCTX 4

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

enum { OP_MAP, OP_UNMAP, OP_PROTECT, OP_REGISTER, OP_UNREGISTER, OP_CLOSE, OP_FAULT, OP_MADVISE,
       OP_MLOCK, OP_MUNLOCK, OP_MREMAP, OP_OPEN, OP_FORK };
enum { REMAP_IN_PLACE, REMAP_FIXED, REMAP_DONTUNMAP };
enum { K_ANON, K_ANON_NORESERVE, K_SHMEM, K_FILE, K_SHARED_FILE, K_SHARED_RO_FILE };

/* One op of the trace (pages relative to the arena) and what it must give. */
struct step {
	const char *line;
	int op;
	unsigned long start, len;
	int prot;
	int kind;
	int file;
	unsigned long pgoff;
	int ctx;
	unsigned long long mode;
	int advice;
	int onfault;
	unsigned long newlen, dst;
	int to;
	int event_remap;
	const char *expect_result;
	const char *const *expect_layout; /* NULL-terminated */
	/* Where the kernel is known to depart from the contract: what it does
	 * instead, and which deviation that is (NULL elsewhere). */
	const char *known_result;
	const char *const *known_layout;
	const char *known_why;
};

/* An smaps VmFlags code: its bit, and its name in the text form. */
struct code {
	const char *code;
	int bit;
	const char *name;
};

"##;

/// The program proper: setup, the ops, reading smaps, the TAP report.
const BODY: &str = r##"
static uintptr_t base;			/* the arena's first page */
static ino_t guard_ino;
static int memfd_rw[NFILES], memfd_ro[NFILES];
static ino_t memfd_ino[NFILES];
static int uffd[NCTX] = { -1, -1, -1, -1 };
static int uffd_remap[NCTX];	/* opened with UFFD_FEATURE_EVENT_REMAP */
static char *child_smaps;	/* the last fork child's smaps, read once */

/* A growable list of lines. */
struct lines {
	char **v;
	int n, cap;
};

static void push(struct lines *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void push(struct lines *l, const char *fmt, ...)
{
	char buf[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 16;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		if (!l->v) {
			printf("Bail out! out of memory\n");
			exit(KSFT_FAIL);
		}
	}
	l->v[l->n] = strdup(buf);
	if (!l->v[l->n]) {
		printf("Bail out! out of memory\n");
		exit(KSFT_FAIL);
	}
	l->n++;
}

static void clear(struct lines *l)
{
	int i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	l->n = 0;
}

/* `ok`, or the errno's name as the vocabulary spells it. */
static void result_name(int err, char *buf, size_t n)
{
	const char *s = NULL;

	switch (err) {
	case 0: s = "ok"; break;
	case EPERM: s = "EPERM"; break;
	case EBADF: s = "EBADF"; break;
	case ENOMEM: s = "ENOMEM"; break;
	case EACCES: s = "EACCES"; break;
	case EFAULT: s = "EFAULT"; break;
	case EBUSY: s = "EBUSY"; break;
	case EEXIST: s = "EEXIST"; break;
	case EINVAL: s = "EINVAL"; break;
	}
	if (s)
		snprintf(buf, n, "%s", s);
	else
		snprintf(buf, n, "errno%d", err);
}

/*
 * A new userfaultfd (O_CLOEXEC|O_NONBLOCK): through the syscall, then the
 * syscall with UFFD_USER_MODE_ONLY (allowed to any user on Linux 5.11+),
 * then /dev/userfaultfd's USERFAULTFD_IOC_NEW; then UFFDIO_API with
 * UFFD_FEATURE_SIGBUS, so a fault userfaultfd would report is refused
 * (EFAULT for process_vm_writev) instead of waiting for a monitor.
 */
static int uffd_open(unsigned long long features, char *why, size_t n)
{
	int flags = O_CLOEXEC | O_NONBLOCK;
	int sys_err, dev, e;
	long fd;
	struct uffdio_api api;

#ifdef __NR_userfaultfd
	fd = syscall(__NR_userfaultfd, flags);
	sys_err = errno;
	if (fd < 0)
		fd = syscall(__NR_userfaultfd, flags | UFFD_USER_MODE_ONLY);
#else
	fd = -1;
	sys_err = ENOSYS;
#endif
	if (fd < 0) {
		dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
		if (dev < 0) {
			snprintf(why, n, "userfaultfd(2) failed (%s) and /dev/userfaultfd cannot be opened (%s)",
				 strerror(sys_err), strerror(errno));
			return -1;
		}
		fd = ioctl(dev, USERFAULTFD_IOC_NEW, (unsigned long)flags);
		e = errno;
		close(dev);
		if (fd < 0) {
			snprintf(why, n, "userfaultfd(2) failed (%s) and USERFAULTFD_IOC_NEW on /dev/userfaultfd failed (%s)",
				 strerror(sys_err), strerror(e));
			return -1;
		}
	}
	memset(&api, 0, sizeof(api));
	api.api = UFFD_API;
	api.features = UFFD_FEATURE_SIGBUS | features;
	if (ioctl((int)fd, UFFDIO_API, &api)) {
		snprintf(why, n, "UFFDIO_API failed: %s", strerror(errno));
		close((int)fd);
		return -1;
	}
	return (int)fd;
}

static void *addr(unsigned long page)
{
	return (void *)(base + page * PAGE);
}

/*
 * The arena: (NPAGES + 2) pages reserved at the first free fixed address
 * tried, its first and last page made guards (a private PROT_NONE mapping
 * of a memfd of their own, which no op maps, so nothing in the arena can
 * merge with them), the pages between unmapped; then the four memfds and a
 * read-only fd of each.
 */
static int setup(char *why, size_t n)
{
	size_t bytes = (NPAGES + 2) * PAGE;
	uintptr_t at = 0;
	struct stat st;
	char path[64];
	int k, f, guard;

	for (k = 0; k < 64; k++) {
		uintptr_t want = ARENA_HINT + (uintptr_t)k * ARENA_STEP;
		void *p = mmap((void *)want, bytes, PROT_NONE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);

		if (p == MAP_FAILED)
			continue;
		if ((uintptr_t)p != want) {
			/* An old kernel that took the address as a hint only. */
			munmap(p, bytes);
			continue;
		}
		at = want;
		break;
	}
	if (!at) {
		snprintf(why, n, "cannot reserve the arena: no free address range found");
		return -1;
	}
	guard = memfd_create("uffd-check-guard", MFD_CLOEXEC);
	if (guard < 0 || ftruncate(guard, PAGE) || fstat(guard, &st)) {
		snprintf(why, n, "the guard memfd: %s", strerror(errno));
		return -1;
	}
	guard_ino = st.st_ino;
	if (mmap((void *)at, PAGE, PROT_NONE, MAP_PRIVATE | MAP_FIXED, guard, 0) == MAP_FAILED ||
	    mmap((void *)(at + (NPAGES + 1) * PAGE), PAGE, PROT_NONE, MAP_PRIVATE | MAP_FIXED, guard, 0) == MAP_FAILED) {
		snprintf(why, n, "mmap of a guard: %s", strerror(errno));
		return -1;
	}
	close(guard);
	base = at + PAGE;
	if (munmap((void *)base, NPAGES * PAGE)) {
		snprintf(why, n, "munmap of the arena: %s", strerror(errno));
		return -1;
	}
	for (f = 0; f < NFILES; f++) {
		char name[32];

		snprintf(name, sizeof(name), "uffd-check-%d", f);
		memfd_rw[f] = memfd_create(name, MFD_CLOEXEC);
		if (memfd_rw[f] < 0 || ftruncate(memfd_rw[f], (off_t)((MAX_PGOFF + NPAGES + 1) * PAGE))) {
			snprintf(why, n, "memfd %d: %s", f, strerror(errno));
			return -1;
		}
		snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd_rw[f]);
		memfd_ro[f] = open(path, O_RDONLY | O_CLOEXEC);
		if (memfd_ro[f] < 0 || fstat(memfd_rw[f], &st)) {
			snprintf(why, n, "read-only open of memfd %d: %s", f, strerror(errno));
			return -1;
		}
		memfd_ino[f] = st.st_ino;
	}
	return 0;
}

static char *slurp(const char *path);

/*
 * The monitor of an mremap: reads (and drops) the events of the uffds
 * opened with UFFD_FEATURE_EVENT_REMAP until `*arg`, a pipe, is readable.
 * The kernel does not return from mremap before the REMAP event of a
 * moved registered VMA has been read.
 */
static void *drain_events(void *arg)
{
	int stop = *(int *)arg;
	char msg[sizeof(struct uffd_msg)];

	for (;;) {
		struct pollfd p[NCTX + 1];
		int np = 0, c;

		for (c = 0; c < NCTX; c++)
			if (uffd[c] >= 0 && uffd_remap[c]) {
				p[np].fd = uffd[c];
				p[np].events = POLLIN;
				np++;
			}
		p[np].fd = stop;
		p[np].events = POLLIN;
		p[np].revents = 0;
		if (poll(p, np + 1, -1) < 0)
			continue;
		for (c = 0; c < np; c++)
			while (read(p[c].fd, msg, sizeof(msg)) > 0)
				;
		if (p[np].revents)
			return NULL;
	}
}

/* Runs one op; its result name goes to `res`. */
static void run_op(const struct step *s, char *res, size_t n)
{
	char why[512];
	int err = 0;

	switch (s->op) {
	case OP_MAP: {
		int flags = MAP_FIXED, fd = -1;
		off_t off = 0;
		void *p;

		switch (s->kind) {
		case K_ANON: flags |= MAP_PRIVATE | MAP_ANONYMOUS; break;
		case K_ANON_NORESERVE: flags |= MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE; break;
		case K_SHMEM: flags |= MAP_SHARED | MAP_ANONYMOUS; break;
		case K_FILE: flags |= MAP_PRIVATE; fd = memfd_rw[s->file]; break;
		case K_SHARED_FILE: flags |= MAP_SHARED; fd = memfd_rw[s->file]; break;
		case K_SHARED_RO_FILE: flags |= MAP_SHARED; fd = memfd_ro[s->file]; break;
		}
		if (fd >= 0)
			off = (off_t)(s->pgoff * PAGE);
		p = mmap(addr(s->start), s->len * PAGE, s->prot, flags, fd, off);
		if (p == MAP_FAILED) {
			err = errno;
		} else if (p != addr(s->start)) {
			snprintf(res, n, "refused (mmap(MAP_FIXED) returned %p, not %p)", p, addr(s->start));
			return;
		}
		break;
	}
	case OP_UNMAP:
		if (munmap(addr(s->start), s->len * PAGE))
			err = errno;
		break;
	case OP_PROTECT:
		if (mprotect(addr(s->start), s->len * PAGE, s->prot))
			err = errno;
		break;
	case OP_REGISTER:
	case OP_UNREGISTER:
		/* The ctx is opened on first use, even when the op then fails. */
		if (uffd[s->ctx] < 0) {
			uffd[s->ctx] = uffd_open(0, why, sizeof(why));
			uffd_remap[s->ctx] = 0;
			if (uffd[s->ctx] < 0) {
				snprintf(res, n, "refused (%s)", why);
				return;
			}
		}
		if (s->op == OP_REGISTER) {
			struct uffdio_register reg;

			memset(&reg, 0, sizeof(reg));
			reg.range.start = (uintptr_t)addr(s->start);
			reg.range.len = s->len * PAGE;
			reg.mode = s->mode;
			if (ioctl(uffd[s->ctx], UFFDIO_REGISTER, &reg))
				err = errno;
		} else {
			struct uffdio_range range;

			range.start = (uintptr_t)addr(s->start);
			range.len = s->len * PAGE;
			if (ioctl(uffd[s->ctx], UFFDIO_UNREGISTER, &range))
				err = errno;
		}
		break;
	case OP_CLOSE:
		if (uffd[s->ctx] < 0) {
			err = EBADF;
		} else {
			close(uffd[s->ctx]);
			uffd[s->ctx] = -1;
		}
		break;
	case OP_MADVISE:
		if (madvise(addr(s->start), s->len * PAGE, s->advice))
			err = errno;
		break;
	case OP_MLOCK:
		/* mlock2(2); MLOCK_ONFAULT is 1. */
		if (syscall(__NR_mlock2, addr(s->start), s->len * PAGE, s->onfault ? 1 : 0))
			err = errno;
		break;
	case OP_MUNLOCK:
		if (munlock(addr(s->start), s->len * PAGE))
			err = errno;
		break;
	case OP_MREMAP: {
		void *want = addr(s->to == REMAP_IN_PLACE ? s->start : s->dst), *p;
		int flags = 0, stop[2], c, monitored = 0;
		pthread_t monitor;

		if (s->to != REMAP_IN_PLACE)
			flags = MREMAP_MAYMOVE | MREMAP_FIXED;
		if (s->to == REMAP_DONTUNMAP)
			flags |= MREMAP_DONTUNMAP;
		for (c = 0; c < NCTX; c++)
			monitored |= uffd[c] >= 0 && uffd_remap[c];
		if (monitored) {
			if (pipe(stop)) {
				snprintf(res, n, "refused (pipe: %s)", strerror(errno));
				return;
			}
			if (pthread_create(&monitor, NULL, drain_events, &stop[0])) {
				snprintf(res, n, "refused (cannot start the event monitor)");
				return;
			}
		}
		p = (void *)syscall(__NR_mremap, addr(s->start), s->len * PAGE, s->newlen * PAGE, flags, want);
		if (p == MAP_FAILED)
			err = errno;
		if (monitored) {
			if (write(stop[1], "x", 1) != 1)
				printf("# cannot stop the event monitor\n");
			pthread_join(monitor, NULL);
			close(stop[0]);
			close(stop[1]);
		}
		if (p != MAP_FAILED && p != want) {
			snprintf(res, n, "refused (mremap returned %p, not %p)", p, want);
			return;
		}
		break;
	}
	case OP_OPEN:
		/* Closed first if open (its registrations are released), then
		 * opened anew with the features. */
		if (uffd[s->ctx] >= 0)
			close(uffd[s->ctx]);
		uffd[s->ctx] = uffd_open(s->event_remap ? UFFD_FEATURE_EVENT_REMAP : 0, why, sizeof(why));
		uffd_remap[s->ctx] = s->event_remap;
		if (uffd[s->ctx] < 0) {
			snprintf(res, n, "refused (%s)", why);
			return;
		}
		break;
	case OP_FORK: {
		/* The step's layout is the child's: it waits on a pipe while its
		 * smaps is read, then is killed and reaped. */
		char path[64], b;
		int wait_fd[2];
		pid_t pid;

		if (pipe(wait_fd)) {
			snprintf(res, n, "refused (pipe: %s)", strerror(errno));
			return;
		}
		pid = fork();
		if (pid < 0) {
			snprintf(res, n, "refused (fork: %s)", strerror(errno));
			return;
		}
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			close(wait_fd[1]);
			if (read(wait_fd[0], &b, 1) < 0)
				_exit(1);
			_exit(0);
		}
		close(wait_fd[0]);
		snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
		free(child_smaps);
		child_smaps = slurp(path);
		close(wait_fd[1]);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		if (!child_smaps) {
			snprintf(res, n, "refused (cannot read the child's smaps)");
			return;
		}
		break;
	}
	case OP_FAULT: {
		/* A one-byte user write, through the kernel: a fault that fails
		 * comes back as EFAULT instead of a signal. */
		char byte = 0x5a;
		struct iovec local = { .iov_base = &byte, .iov_len = 1 };
		struct iovec remote = { .iov_base = addr(s->start), .iov_len = 1 };
		ssize_t w = process_vm_writev(getpid(), &local, 1, &remote, 1, 0);

		if (w == 0)
			err = EFAULT;
		else if (w != 1)
			err = errno;
		break;
	}
	}
	result_name(err, res, n);
}

/* The whole of a /proc file, NUL-terminated, or NULL. */
static char *slurp(const char *path)
{
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap), *grown;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t r;

	if (!buf || fd < 0) {
		free(buf);
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	for (;;) {
		if (cap - len < 4096 + 1) {
			cap *= 2;
			grown = realloc(buf, cap);
			if (!grown) {
				free(buf);
				close(fd);
				return NULL;
			}
			buf = grown;
		}
		r = read(fd, buf + len, cap - len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			free(buf);
			close(fd);
			return NULL;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	buf[len] = 0;
	close(fd);
	return buf;
}

/*
 * Which open uffd owns the registered VMA [a, a+len) with uffd bits `mode`:
 * UFFDIO_REGISTER of exactly that VMA with exactly its bits is a no-op from
 * the owner and EBUSY from any other ctx, so the kernel names the owner.
 */
static int owner(uintptr_t a, unsigned long len, unsigned long long mode, char *why, size_t n)
{
	char seen[256] = "";
	size_t used = 0;
	int c;

	for (c = 0; c < NCTX; c++) {
		struct uffdio_register reg;

		if (uffd[c] < 0)
			continue;
		memset(&reg, 0, sizeof(reg));
		reg.range.start = a;
		reg.range.len = len;
		reg.mode = mode;
		if (ioctl(uffd[c], UFFDIO_REGISTER, &reg) == 0)
			return c;
		if (errno != EBUSY && used < sizeof(seen))
			used += snprintf(seen + used, sizeof(seen) - used, "%sctx %d: errno %d",
					 used ? ", " : "; ", c, errno);
	}
	snprintf(why, n, "no open uffd owns this registered VMA (probe: EBUSY from every ctx%s)", seen);
	return -1;
}

/* One smaps entry of the arena or its guards. */
struct entry {
	const char *line;	/* the header line */
	unsigned long long start, end, offset, inode;
	char perms[8];
	const char *path;
	const char *vmflags;
};

/* One arena VMA in the text form, as the kernel backend prints it. */
static void describe(const struct entry *e, int of_child, unsigned long long *shmem, int *nshmem,
		     struct lines *out)
{
	char codes[512], text[1024], why[512], *tok, *save = NULL;
	int prot = 0, uffd_bits = 0, i, f;
	unsigned long flags = 0;
	char perms[4];
	const char *sep;
	size_t t = 0;

	snprintf(codes, sizeof(codes), "%s", e->vmflags);
	for (tok = strtok_r(codes, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		int known = 0;

		for (i = 0; i < COUNT(vmflag_codes); i++)
			if (!strcmp(tok, vmflag_codes[i][0])) {
				flags |= 1UL << i;
				known = 1;
			}
		for (i = 0; i < COUNT(uffd_codes); i++)
			if (!strcmp(tok, uffd_codes[i].code)) {
				uffd_bits |= uffd_codes[i].bit;
				known = 1;
			}
		for (i = 0; i < COUNT(prot_codes); i++)
			if (!strcmp(tok, prot_codes[i].code)) {
				prot |= prot_codes[i].bit;
				known = 1;
			}
		for (i = 0; i < COUNT(ignored_codes); i++)
			if (!strcmp(tok, ignored_codes[i]))
				known = 1;
		if (!known) {
			push(out, "error unexpected VmFlags code `%s` in an arena VMA: %s (VmFlags: %s)",
			     tok, e->line, e->vmflags);
			return;
		}
	}
	perms[0] = prot & 1 ? 'r' : '-';
	perms[1] = prot & 2 ? 'w' : '-';
	perms[2] = prot & 4 ? 'x' : '-';
	perms[3] = 0;
	if (strncmp(perms, e->perms, 3) || ((e->perms[3] == 's') != !!(flags & F_MAYSHARE))) {
		push(out, "error perms and VmFlags disagree: %s (VmFlags: %s)", e->line, e->vmflags);
		return;
	}
	t += snprintf(text + t, sizeof(text) - t, "[%llu,%llu) %s ",
		      (e->start - base) / PAGE, (e->end - base) / PAGE, perms);
	if (e->inode == 0 && !e->path[0]) {
		t += snprintf(text + t, sizeof(text) - t, "anon@?");
	} else {
		for (f = 0; f < NFILES; f++)
			if (e->inode == memfd_ino[f] && !strncmp(e->path, "/memfd:uffd-check-", 18))
				break;
		if (f < NFILES) {
			t += snprintf(text + t, sizeof(text) - t, "file=%d@%llu", f, e->offset / PAGE);
		} else if (e->inode && !strncmp(e->path, "/dev/zero", 9)) {
			/* shmem objects numbered by first appearance */
			for (i = 0; i < *nshmem && shmem[i] != e->inode; i++)
				;
			if (i == *nshmem)
				shmem[(*nshmem)++] = e->inode;
			t += snprintf(text + t, sizeof(text) - t, "shmem#%d@%llu", i, e->offset / PAGE);
		} else {
			push(out, "error cannot classify the arena VMA %s", e->line);
			return;
		}
	}
	for (i = 0; i < COUNT(vmflag_codes); i++)
		if (flags & (1UL << i))
			t += snprintf(text + t, sizeof(text) - t, " %s", vmflag_codes[i][1]);
	if (!(flags & F_MAYSHARE))
		t += snprintf(text + t, sizeof(text) - t, " anon_vma=?");
	if (uffd_bits && of_child) {
		push(out, "error a fork child's VMA kept uffd bits (no ctx has EVENT_FORK): %s", e->line);
		return;
	}
	if (uffd_bits) {
		int c = owner((uintptr_t)e->start, e->end - e->start, uffd_bits, why, sizeof(why));

		if (c < 0) {
			push(out, "error %s: %s", why, e->line);
			return;
		}
		sep = " uffd=";
		for (i = 0; i < COUNT(uffd_codes); i++)
			if (uffd_bits & uffd_codes[i].bit) {
				t += snprintf(text + t, sizeof(text) - t, "%s%s", sep, uffd_codes[i].name);
				sep = "+";
			}
		t += snprintf(text + t, sizeof(text) - t, " ctx=%d", c);
	}
	push(out, "%s", text);
}

/*
 * The arena's VMAs from /proc/self/smaps, one line each in the text form,
 * then an `error …` line for anything that cannot be read faithfully (a VMA
 * crossing the arena's edge, a missing guard, an unknown flag).
 */
static void read_layout(struct lines *out)
{
	uintptr_t lo = base, hi = base + NPAGES * PAGE;
	uintptr_t guard_lo = lo - PAGE, guard_hi = hi + PAGE;
	struct entry *v = NULL, cur;
	int nv = 0, have = 0, guards = 0, i, nshmem = 0;
	unsigned long long *shmem;
	struct lines errors = { 0 };
	int of_child = child_smaps != NULL;
	char *text = of_child ? child_smaps : slurp("/proc/self/smaps"), *line, *next;

	child_smaps = NULL;
	if (!text) {
		push(out, "error reading /proc/self/smaps: %s", strerror(errno));
		return;
	}
	v = calloc(NPAGES + 1, sizeof(*v));
	shmem = calloc(NPAGES + 1, sizeof(*shmem));
	if (!v || !shmem) {
		printf("Bail out! out of memory\n");
		exit(KSFT_FAIL);
	}
	for (line = text; *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		else
			next = line + strlen(line);
		if ((*line >= '0' && *line <= '9') || (*line >= 'a' && *line <= 'f')) {
			int pos = 0;
			char dev[32];

			memset(&cur, 0, sizeof(cur));
			cur.line = line;
			have = 0;
			if (sscanf(line, "%llx-%llx %7s %llx %31s %llu%n", &cur.start, &cur.end, cur.perms,
				   &cur.offset, dev, &cur.inode, &pos) < 6 || strlen(cur.perms) != 4) {
				push(&errors, "error cannot parse smaps header \"%s\"", line);
				continue;
			}
			cur.path = line + pos;
			while (*cur.path == ' ')
				cur.path++;
			have = cur.end > guard_lo && cur.start < guard_hi;
		} else if (!strncmp(line, "VmFlags:", 8) && have) {
			int guard;

			have = 0;
			cur.vmflags = line + 8;
			while (*cur.vmflags == ' ')
				cur.vmflags++;
			guard = (cur.start == guard_lo && cur.end == lo) || (cur.start == hi && cur.end == guard_hi);
			if (guard && !strncmp(cur.perms, "---p", 4) && cur.inode == (unsigned long long)guard_ino)
				guards++;
			else if (cur.start < lo || cur.end > hi)
				push(&errors, "error a VMA crosses the arena edge or replaced a guard: %s", cur.line);
			else if (nv <= (int)NPAGES)
				v[nv++] = cur;
		}
	}
	if (guards != 2)
		push(&errors, "error expected the two guard VMAs [%#lx,%#lx) and [%#lx,%#lx), found %d",
		     (unsigned long)guard_lo, (unsigned long)lo, (unsigned long)hi, (unsigned long)guard_hi, guards);
	for (i = 0; i < nv; i++)
		describe(&v[i], of_child, shmem, &nshmem, out);
	for (i = 0; i < errors.n; i++)
		push(out, "%s", errors.v[i]);
	clear(&errors);
	free(errors.v);
	free(shmem);
	free(v);
	free(text);
}

static int same(const char *result, const struct lines *got, const char *want_result,
		const char *const *want_layout)
{
	int i;

	if (strcmp(result, want_result))
		return 0;
	for (i = 0; i < got->n; i++)
		if (!want_layout[i] || strcmp(got->v[i], want_layout[i]))
			return 0;
	return want_layout[got->n] == NULL;
}

int main(void)
{
	struct lines got = { 0 };
	char why[512], result[640];
	int i, j, probe, fails = 0, known = 0;

	printf("TAP version 13\n");
	probe = uffd_open(0, why, sizeof(why));
	if (probe < 0) {
		printf("1..0 # SKIP userfaultfd cannot be used: %s\n", why);
		return KSFT_SKIP;
	}
	close(probe);
	if (setup(why, sizeof(why))) {
		printf("Bail out! %s\n", why);
		return KSFT_FAIL;
	}
	printf("1..%d\n", NSTEPS);
	printf("# %s: an arena of %lu pages at %#lx\n", NAME, NPAGES, (unsigned long)base);
	for (i = 0; i < NSTEPS; i++) {
		const struct step *s = &steps[i];

		run_op(s, result, sizeof(result));
		read_layout(&got);
		if (same(result, &got, s->expect_result, s->expect_layout)) {
			printf("ok %d - %s\n", i + 1, s->line);
		} else {
			if (s->known_result && same(result, &got, s->known_result, s->known_layout)) {
				/* Not the contract, but what this kernel is known to do. */
				known++;
				printf("not ok %d - %s # TODO %s\n", i + 1, s->line, s->known_why);
			} else {
				fails++;
				printf("not ok %d - %s\n", i + 1, s->line);
			}
			printf("# expected: %s\n", s->expect_result);
			if (!s->expect_layout[0])
				printf("#   (no VMAs)\n");
			for (j = 0; s->expect_layout[j]; j++)
				printf("#   %s\n", s->expect_layout[j]);
			printf("# actual: %s\n", result);
			if (!got.n)
				printf("#   (no VMAs)\n");
			for (j = 0; j < got.n; j++)
				printf("#   %s\n", got.v[j]);
		}
		printf("# result %d: %s\n", i + 1, result);
		for (j = 0; j < got.n; j++)
			printf("# layout %d: %s\n", i + 1, got.v[j]);
		clear(&got);
	}
	free(got.v);
	printf("# Totals: pass:%d fail:%d xfail:%d xpass:0 skip:0 error:0\n", NSTEPS - fails - known, fails,
	       known);
	return fails ? KSFT_FAIL : KSFT_PASS;
}
"##;
