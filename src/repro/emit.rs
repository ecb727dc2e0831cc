//! Each op of the trace as C: the syscall it makes, with literal pages of
//! the arena, and its check; and the words that describe it (in the
//! program's header and its TAP lines).

use std::fmt::Write as _;

use uffd_vocab::{Features, Fill, Kind, Mode, Op, Remap};

use super::plan::{c_prot, c_result, Step};

/// `[START,END)`.
fn range(start: u64, len: u64) -> String {
    format!("[{start},{})", start + len)
}

/// The uffd register mode as the kernel's constants name it.
fn c_mode(mode: Mode) -> String {
    let mut names: Vec<String> = Mode(mode.0 & Mode::KNOWN)
        .names()
        .iter()
        .map(|n| format!("UFFDIO_REGISTER_MODE_{}", n.to_ascii_uppercase()))
        .collect();
    if mode.0 & !Mode::KNOWN != 0 || mode.0 == 0 {
        names.push(format!("{:#x}", mode.0 & !Mode::KNOWN));
    }
    names.join(" | ")
}

/// The op in words: `mmap [0,4) rw- private anonymous`,
/// `UFFDIO_REGISTER [12,16) MISSING on uffd 0`, `mremap [0,4) to [8,12)`.
pub fn describe(op: &Op) -> String {
    match *op {
        Op::Map {
            start,
            len,
            prot,
            kind,
        } => {
            let what = match kind {
                Kind::Anon => "private anonymous".to_string(),
                Kind::AnonNoreserve => "private anonymous MAP_NORESERVE".to_string(),
                Kind::Shmem => "shared anonymous".to_string(),
                Kind::File { file, pgoff } => format!("private of memfd f{file} at page {pgoff}"),
                Kind::SharedFile { file, pgoff } => {
                    format!("shared of memfd f{file} at page {pgoff}")
                }
                Kind::SharedRoFile { file, pgoff } => {
                    format!("shared of memfd f{file} (a read-only fd) at page {pgoff}")
                }
            };
            format!("mmap {} {prot} {what}", range(start, len))
        }
        Op::Unmap { start, len } => format!("munmap {}", range(start, len)),
        Op::Protect { start, len, prot } => format!("mprotect {} {prot}", range(start, len)),
        Op::Register {
            ctx,
            start,
            len,
            mode,
        } => format!(
            "UFFDIO_REGISTER {} {} on uffd {ctx}",
            range(start, len),
            mode.to_string().replace('+', "|").to_ascii_uppercase()
        ),
        Op::Unregister { ctx, start, len } => {
            format!("UFFDIO_UNREGISTER {} on uffd {ctx}", range(start, len))
        }
        Op::Close { ctx } => format!("close uffd {ctx}"),
        Op::WriteProtect {
            ctx,
            start,
            len,
            on,
        } => format!(
            "UFFDIO_WRITEPROTECT {} {} on uffd {ctx}",
            range(start, len),
            if on { "MODE_WP" } else { "off" }
        ),
        Op::Fault { page, read: false } => format!("write a byte to page {page}"),
        Op::Fault { page, read: true } => format!("read a byte of page {page}"),
        Op::Fill {
            how,
            ctx,
            start,
            len,
            wp,
        } => format!(
            "UFFDIO_{} {}{} on uffd {ctx}",
            how.name().to_ascii_uppercase(),
            range(start, len),
            if wp { " MODE_WP" } else { "" }
        ),
        Op::Move {
            ctx,
            src,
            start,
            len,
            holes,
        } => format!(
            "UFFDIO_MOVE {} to {}{} on uffd {ctx}",
            range(src, len),
            range(start, len),
            if holes { " ALLOW_SRC_HOLES" } else { "" }
        ),
        Op::Madvise { start, len, advice } => format!(
            "madvise {} MADV_{}",
            range(start, len),
            advice.name().to_ascii_uppercase()
        ),
        Op::Mlock {
            start,
            len,
            onfault,
        } => format!(
            "mlock2 {}{}",
            range(start, len),
            if onfault { " MLOCK_ONFAULT" } else { "" }
        ),
        Op::Munlock { start, len } => format!("munlock {}", range(start, len)),
        Op::Mremap {
            start,
            len,
            newlen,
            to,
        } => match to {
            Remap::InPlace => format!("mremap {} to {newlen} pages in place", range(start, len)),
            Remap::Fixed(d) => format!("mremap {} to {}", range(start, len), range(d, newlen)),
            Remap::DontUnmap(d) => format!(
                "mremap {} to {} with MREMAP_DONTUNMAP",
                range(start, len),
                range(d, newlen)
            ),
        },
        Op::Open { ctx, features } if features.is_empty() => format!("open uffd {ctx}"),
        Op::Open { ctx, features } => {
            // The events by their C names; SIGBUS, the harness's default,
            // is not said, its absence is (faults go to the monitor).
            let events = c_features(features.union(Features::FAULTS));
            let faults = features
                .contains(Features::FAULTS)
                .then_some("page faults delivered");
            let with: Vec<&str> = (events != "0")
                .then_some(events.as_str())
                .into_iter()
                .chain(faults)
                .collect();
            format!("open uffd {ctx} with {}", with.join(", "))
        }
        Op::Fork => "fork".to_string(),
    }
}

/// What the program keeps track of while it is generated: which uffds are
/// open, and with which UFFD_FEATURE_EVENT_* features.
#[derive(Default)]
pub struct State {
    open: [bool; 4],
    features: [Features; 4],
}

impl State {
    /// Takes uffd `ctx` as opened (with no features) before the first step.
    pub fn opened(&mut self, ctx: u8) {
        self.open[ctx as usize] = true;
    }
}

/// `N * PAGE`.
fn bytes(pages: u64) -> String {
    format!("{pages} * PAGE")
}

/// The C of one step (its call and its check), indented by one tab; a
/// fork's child is read by the layout check that follows, so `end_child`
/// is the caller's.
pub fn step(out: &mut String, s: &Step, what: &str, st: &mut State) {
    let want = c_result(&s.want);
    let known = s.known.as_ref().map_or("-1".to_string(), c_result);
    let check = |out: &mut String, call: &str| {
        let _ = writeln!(out, "\tcheck(\"{what}\", {call}, {want}, {known});");
    };
    // A call that returns MAP_FAILED on failure, on a line of its own.
    let check_map = |out: &mut String, call: &str| {
        let _ = writeln!(
            out,
            "\tcheck(\"{what}\",\n\t      ERR({call} == MAP_FAILED), {want}, {known});"
        );
    };
    let mut first_use = |out: &mut String, ctx: u8| {
        if !st.open[ctx as usize] {
            let _ = writeln!(out, "\tuffd[{ctx}] = uffd_open(UFFD_FEATURE_SIGBUS);");
            st.open[ctx as usize] = true;
            st.features[ctx as usize] = Features::NONE;
        }
    };
    match s.op {
        Op::Map {
            start,
            len,
            prot,
            kind,
        } => {
            let (flags, fd, off) = match kind {
                Kind::Anon => ("MAP_PRIVATE | MAP_ANONYMOUS", "-1".into(), 0),
                Kind::AnonNoreserve => (
                    "MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE",
                    "-1".into(),
                    0,
                ),
                Kind::Shmem => ("MAP_SHARED | MAP_ANONYMOUS", "-1".into(), 0),
                Kind::File { file, pgoff } => ("MAP_PRIVATE", format!("f{file}"), pgoff),
                Kind::SharedFile { file, pgoff } => ("MAP_SHARED", format!("f{file}"), pgoff),
                Kind::SharedRoFile { file, pgoff } => ("MAP_SHARED", format!("f{file}_ro"), pgoff),
            };
            let off = if off == 0 { "0".into() } else { bytes(off) };
            let call = format!(
                "mmap(P({start}), {}, {}, {flags} | MAP_FIXED, {fd}, {off})",
                bytes(len),
                c_prot(prot)
            );
            check_map(out, &call);
        }
        Op::Unmap { start, len } => check(out, &format!("ERR(munmap(P({start}), {}))", bytes(len))),
        Op::Protect { start, len, prot } => check(
            out,
            &format!(
                "ERR(mprotect(P({start}), {}, {}))",
                bytes(len),
                c_prot(prot)
            ),
        ),
        Op::Register {
            ctx,
            start,
            len,
            mode,
        } => {
            first_use(out, ctx);
            let _ = writeln!(
                out,
                "\treg = (struct uffdio_register){{ .range = {{ ARENA + {start} * PAGE, {} }}, .mode = {} }};",
                bytes(len),
                c_mode(mode)
            );
            check(
                out,
                &format!("ERR(ioctl(uffd[{ctx}], UFFDIO_REGISTER, &reg))"),
            );
        }
        Op::WriteProtect {
            ctx,
            start,
            len,
            on,
        } => {
            first_use(out, ctx);
            let mode = if on {
                "UFFDIO_WRITEPROTECT_MODE_WP"
            } else {
                "0"
            };
            check(
                out,
                &format!(
                    "ERR(ioctl(uffd[{ctx}], UFFDIO_WRITEPROTECT, &(struct uffdio_writeprotect){{ \
                     .range = {{ ARENA + {start} * PAGE, {} }}, .mode = {mode} }}))",
                    bytes(len)
                ),
            );
        }
        Op::Unregister { ctx, start, len } => {
            first_use(out, ctx);
            let _ = writeln!(
                out,
                "\trange = (struct uffdio_range){{ ARENA + {start} * PAGE, {} }};",
                bytes(len)
            );
            check(
                out,
                &format!("ERR(ioctl(uffd[{ctx}], UFFDIO_UNREGISTER, &range))"),
            );
        }
        Op::Close { ctx } => {
            check(out, &format!("ERR(close(uffd[{ctx}]))"));
            if st.open[ctx as usize] {
                let _ = writeln!(out, "\tuffd[{ctx}] = -1;");
            }
            st.open[ctx as usize] = false;
        }
        Op::Fault { page, read: false } => check(out, &format!("TOUCH({page})")),
        Op::Fault { page, read: true } => check(out, &format!("PEEK({page})")),
        Op::Fill {
            how,
            ctx,
            start,
            len,
            wp,
        } => {
            first_use(out, ctx);
            let dst = format!("ARENA + {start} * PAGE");
            let call = match how {
                Fill::Copy => format!(
                    "UFFDIO_COPY, &(struct uffdio_copy){{ .dst = {dst}, .src = tagged({start}, {len}), \
                     .len = {}, .mode = {} }}",
                    bytes(len),
                    if wp { "UFFDIO_COPY_MODE_WP" } else { "0" }
                ),
                Fill::ZeroPage => format!(
                    "UFFDIO_ZEROPAGE, &(struct uffdio_zeropage){{ .range = {{ {dst}, {} }} }}",
                    bytes(len)
                ),
                Fill::Continue => format!(
                    "UFFDIO_CONTINUE, &(struct uffdio_continue){{ .range = {{ {dst}, {} }}, .mode = {} }}",
                    bytes(len),
                    if wp { "UFFDIO_CONTINUE_MODE_WP" } else { "0" }
                ),
                Fill::Poison => format!(
                    "UFFDIO_POISON, &(struct uffdio_poison){{ .range = {{ {dst}, {} }} }}",
                    bytes(len)
                ),
            };
            check(out, &format!("ERR(ioctl(uffd[{ctx}], {call}))"));
        }
        Op::Move {
            ctx,
            src,
            start,
            len,
            holes,
        } => {
            first_use(out, ctx);
            check(
                out,
                &format!(
                    "ERR(ioctl(uffd[{ctx}], UFFDIO_MOVE, &(struct uffdio_move){{ .dst = ARENA + {start} * PAGE, \
                     .src = ARENA + {src} * PAGE, .len = {}, .mode = {} }}))",
                    bytes(len),
                    if holes { "UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES" } else { "0" }
                ),
            );
        }
        Op::Madvise { start, len, advice } => check(
            out,
            &format!(
                "ERR(madvise(P({start}), {}, MADV_{}))",
                bytes(len),
                advice.name().to_ascii_uppercase()
            ),
        ),
        Op::Mlock {
            start,
            len,
            onfault,
        } => {
            let flags = if onfault { "MLOCK_ONFAULT" } else { "0" };
            check(
                out,
                &format!("ERR(mlock2(P({start}), {}, {flags}))", bytes(len)),
            );
        }
        Op::Munlock { start, len } => {
            check(out, &format!("ERR(munlock(P({start}), {}))", bytes(len)))
        }
        Op::Mremap {
            start,
            len,
            newlen,
            to,
        } => {
            let (flags, dst) = match to {
                Remap::InPlace => ("0", None),
                Remap::Fixed(d) => ("MREMAP_MAYMOVE | MREMAP_FIXED", Some(d)),
                Remap::DontUnmap(d) => {
                    ("MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP", Some(d))
                }
            };
            let args = format!(
                "P({start}), {}, {}, {flags}{}",
                bytes(len),
                bytes(newlen),
                dst.map_or(String::new(), |d| format!(", P({d})"))
            );
            check_map(out, &format!("mremap({args})"));
        }
        Op::Open { ctx, features } => {
            if st.open[ctx as usize] {
                let _ = writeln!(out, "\tclose(uffd[{ctx}]);");
            }
            let f = c_features(features);
            let _ = writeln!(out, "\tuffd[{ctx}] = uffd_open({f});");
            check(out, &format!("uffd[{ctx}] < 0 ? errno : 0"));
            st.open[ctx as usize] = true;
            st.features[ctx as usize] = features;
        }
        Op::Fork => {
            let _ = writeln!(out, "\tpid = fork_child();");
            check(out, "pid < 0 ? errno : 0");
            let _ = writeln!(
                out,
                "\tsnprintf(smaps, sizeof(smaps), \"/proc/%d/smaps\", (int)pid);"
            );
        }
    }
    // The monitor closed these (a fault it could not resolve): uffd[c] is
    // -1, and a later use opens it anew, as the model does.
    for c in 0..4 {
        if s.closes & 1 << c != 0 {
            st.open[c] = false;
            st.features[c] = Features::NONE;
        }
    }
}

/// The C expression of an `open`'s features (UFFDIO_API's): the
/// UFFD_FEATURE_EVENT_* names and, unless faults are delivered
/// (`faults`), UFFD_FEATURE_SIGBUS, joined by `|`; or `0`.
fn c_features(f: Features) -> String {
    const C: [(Features, &str); 4] = [
        (Features::FORK, "UFFD_FEATURE_EVENT_FORK"),
        (Features::REMAP, "UFFD_FEATURE_EVENT_REMAP"),
        (Features::REMOVE, "UFFD_FEATURE_EVENT_REMOVE"),
        (Features::UNMAP, "UFFD_FEATURE_EVENT_UNMAP"),
    ];
    let sigbus = (!f.contains(Features::FAULTS)).then_some("UFFD_FEATURE_SIGBUS");
    let names: Vec<&str> = sigbus
        .into_iter()
        .chain(C.iter().filter(|(x, _)| f.contains(*x)).map(|(_, n)| *n))
        .collect();
    if names.is_empty() {
        "0".into()
    } else {
        names.join("|")
    }
}

/// The uffds that `op`, at this point of the program, may raise an event
/// on (open with a feature whose event it can raise), as a bit mask: a
/// monitor must read them while it runs, or the call waits for ever.
pub fn watch_mask(op: &Op, st: &State) -> u32 {
    mask_of(raises(op), st)
}

/// The uffds open with a feature of `f`, as a bit mask.
fn mask_of(f: Features, st: &State) -> u32 {
    (0..4)
        .filter(|&c| st.open[c] && st.features[c].bits() & f.bits() != 0)
        .fold(0, |m, c| m | 1 << c)
}

/// The features whose events `op` can raise (`faults`: a page fault).
fn raises(op: &Op) -> Features {
    match *op {
        Op::Map { .. } | Op::Unmap { .. } => Features::UNMAP,
        Op::Madvise { advice, .. } if advice.drops_pages() => Features::REMOVE,
        Op::Fork => Features::FORK,
        // Rule 42: the accesses that wait for a reader (mprotect's
        // populate does not: it has no retry).
        Op::Fault { .. } | Op::Mlock { onfault: false, .. } => Features::FAULTS,
        Op::Mremap { .. } => Features::REMAP
            .union(Features::UNMAP)
            .union(Features::FAULTS),
        _ => Features::NONE,
    }
}

/// [`watch_mask`] of each step of the program: where it starts the monitor.
pub fn watch_masks(steps: &[Step]) -> Vec<u32> {
    let mut st = State::default();
    steps
        .iter()
        .map(|s| {
            let mask = watch_mask(&s.op, &st);
            track(s, &mut st);
            mask
        })
        .collect()
}

/// Whether some step of the program may deliver a page fault to the
/// monitor (a call that can fault while a uffd with `faults` is open):
/// then it resolves them (`faults.c`).
pub fn delivers_faults(steps: &[Step]) -> bool {
    let mut st = State::default();
    steps.iter().any(|s| {
        let f = raises(&s.op).contains(Features::FAULTS) && mask_of(Features::FAULTS, &st) != 0;
        track(s, &mut st);
        f
    })
}

/// Updates `st` for the step `s` without emitting anything (to find the
/// helpers a program needs before writing it).
pub fn track(s: &Step, st: &mut State) {
    let mut sink = String::new();
    step(&mut sink, s, "", st);
}
