//! The events an op raised: [`Worker::watched`] runs a call while the
//! monitor reads the uffds opened with an `event-…` feature or `faults`
//! (and resolves the page faults delivered), and turns each message into
//! an [`Event`] in arena pages, kept in `Worker::events` for the op's
//! answer (`ok NS 0:unmap[4,8) 1:remove[2,3) 0:fault[2]+write`).
//!
//! Invariant: every message read is an event of the answer, in the order
//! read, or the op is refused (a message lost past the monitor's log, one
//! that is not an event, an address outside the arena or not on a page
//! boundary, a page fault whose resolution failed): never dropped
//! silently. The fd a FORK message
//! installed is handed to the caller as an `OwnedFd`, so it is closed
//! whatever happens.

use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};

use uffd_vocab::{Event, EventKind, Page, MAX_CTX};

use super::arena::{Worker, PAGE};
use super::monitor::Resolved;
use crate::sys::UffdMsg;

impl Worker {
    /// Runs `call` (a syscall that may raise events or fault) while the
    /// monitor reads the uffds that have a feature, and puts the events it
    /// read in `self.events`. Returns what `call` returned, and the fds the
    /// FORK events installed with their ctx (each a uffd on the fork
    /// child's mm, for the caller to close), or `Err` a message that could
    /// not be kept (see the module docs): a refusal of the op.
    pub(super) fn watched<T>(
        &mut self,
        call: impl FnOnce(&Self) -> T,
    ) -> (T, Result<Vec<(u8, OwnedFd)>, String>) {
        let mut fds: [Option<BorrowedFd<'_>>; MAX_CTX as usize] = [None; MAX_CTX as usize];
        for (slot, open) in fds.iter_mut().zip(&self.uffd) {
            *slot = open
                .as_ref()
                .filter(|(_, f)| !f.is_empty())
                .map(|(fd, _)| fd.as_fd());
        }
        if fds.iter().all(Option::is_none) {
            return (call(self), Ok(Vec::new()));
        }
        let (r, read) = self.monitor.watching(&fds, || call(self));
        for &(c, m, r) in &read.msgs {
            // A missing page resolved by a copy: its tag is to be read.
            if let (UffdMsg::Fault { flags, .. }, Resolved::Done) = (m, r) {
                self.copied |= flags & u64::from(EventKind::WP | EventKind::MINOR) == 0;
            }
            // The monitor closed the uffd it could not resolve a fault of
            // (rule 42): its fd is gone, the number must not be closed again.
            if r == Resolved::Closed {
                if let Some((fd, _)) = self.uffd[c as usize].take() {
                    let _ = std::os::fd::IntoRawFd::into_raw_fd(fd);
                }
            }
        }
        // Every FORK fd is owned first, so that an error closes them too.
        let mut forks = Vec::new();
        for &(c, m, _) in &read.msgs {
            if let UffdMsg::Fork { ufd } = m {
                // SAFETY: the kernel installed this fd in the worker for
                // this message, which only the monitor read.
                forks.push((c, unsafe { OwnedFd::from_raw_fd(ufd as i32) }));
            }
        }
        let events: Result<Vec<Event>, String> = read
            .msgs
            .iter()
            .map(|&(c, m, r)| self.event(c, m, r).map(|what| Event::new(c, what)))
            .collect();
        let kept = match (events, read.lost) {
            (Ok(events), 0) => {
                self.events = events;
                Ok(forks)
            }
            (Err(e), _) => Err(e),
            (Ok(events), lost) => Err(format!(
                "the op raised {} uffd events, more than the monitor keeps ({})",
                events.len() + lost,
                super::monitor::LOG_MSGS
            )),
        };
        (r, kept)
    }

    /// The message `m` of ctx `c`, resolved `r`, as an event in arena
    /// pages.
    fn event(&self, c: u8, m: UffdMsg, r: Resolved) -> Result<EventKind, String> {
        let page = |addr: u64| -> Result<Page, String> {
            match addr.checked_sub(self.base) {
                Some(off) if off % PAGE == 0 && addr <= self.end() => Ok(off / PAGE),
                _ => Err(format!(
                    "ctx {c}'s event {m:?} has an address outside the arena's pages"
                )),
            }
        };
        Ok(match m {
            UffdMsg::Fault { flags, address } => {
                let at = page(address)?;
                let flags = (flags & 7) as u8;
                let what = EventKind::Fault { page: at, flags };
                match r {
                    // (A ctx the monitor closed: see `watched`.)
                    Resolved::Done | Resolved::Closed => what,
                    Resolved::NoFault => {
                        return Err(format!(
                            "{} was left waiting by the monitor ({r:?})",
                            Event::new(c, what)
                        ))
                    }
                }
            }
            UffdMsg::Fork { .. } => EventKind::Fork,
            UffdMsg::Remap { from, to, len } if len % PAGE == 0 => EventKind::Remap {
                from: page(from)?,
                to: page(to)?,
                len: len / PAGE,
            },
            UffdMsg::Remove { start, end } => EventKind::Remove {
                start: page(start)?,
                end: page(end)?,
            },
            UffdMsg::Unmap { start, end } => EventKind::Unmap {
                start: page(start)?,
                end: page(end)?,
            },
            _ => return Err(format!("ctx {c}'s uffd sent an unexpected message {m:?}")),
        })
    }
}
