//! The non-cooperative events a step raised: the `uffd_msg`s other than
//! page faults that the readers of the uffds opened with `event-…`
//! features ([`crate::Features`]) got while the op ran, in the order the
//! kernel sent them (each call waits until its event has been read, so
//! there is one order). Part of a step's [`crate::Outcome`], compared like
//! its result.
//!
//! The text form of one event is `CTX:WHAT`, addresses in arena pages:
//! `0:fork`, `1:remap[2,4)->9` (from, len, to), `0:remove[2,3)`,
//! `0:unmap[4,8)`; a page fault delivered to a uffd opened with `faults`
//! is `0:fault[3]` with its flags: `0:fault[3]+write`,
//! `0:fault[3]+wp+write`, `0:fault[3]+minor`. A step's events are these joined by spaces, or `none`
//! (trace `expect events …` lines, the kernel worker's answers, `replay`).

use std::fmt;
use std::str::FromStr;

use crate::op::{Page, MAX_CTX, MAX_PAGES};

/// One event, delivered to the reader of uffd `ctx`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Event {
    pub ctx: u8,
    pub what: EventKind,
}

/// What an event says (`uffd_msg.event` and its `arg`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum EventKind {
    /// UFFD_EVENT_FORK: fork(2) gave the child a uffd of its own for this
    /// ctx (the message carries its fd, which the reader closes).
    Fork,
    /// UFFD_EVENT_REMAP: mremap moved `[from, from+len)` to `to`.
    Remap { from: Page, to: Page, len: Page },
    /// UFFD_EVENT_REMOVE: madvise is about to drop the pages of
    /// `[start, end)`.
    Remove { start: Page, end: Page },
    /// UFFD_EVENT_UNMAP: `[start, end)` was unmapped.
    Unmap { start: Page, end: Page },
    /// UFFD_EVENT_PAGEFAULT at `page`, with the kernel's
    /// `UFFD_PAGEFAULT_FLAG_*` bits: [`EventKind::WRITE`],
    /// [`EventKind::WP`], [`EventKind::MINOR`] (neither of the last two: a
    /// missing page).
    Fault { page: Page, flags: u8 },
}

impl Event {
    pub const fn new(ctx: u8, what: EventKind) -> Event {
        Event { ctx, what }
    }
}

impl EventKind {
    /// UFFD_PAGEFAULT_FLAG_WRITE.
    pub const WRITE: u8 = 1;
    /// UFFD_PAGEFAULT_FLAG_WP.
    pub const WP: u8 = 2;
    /// UFFD_PAGEFAULT_FLAG_MINOR.
    pub const MINOR: u8 = 4;
    /// The fault flags' names, in text order.
    const FLAG_NAMES: [(u8, &'static str); 3] = [
        (Self::WP, "wp"),
        (Self::MINOR, "minor"),
        (Self::WRITE, "write"),
    ];

    /// `fork`, `remap`, `remove`, `unmap` or `fault`: its name in the text
    /// form.
    pub const fn name(self) -> &'static str {
        match self {
            EventKind::Fault { .. } => "fault",
            EventKind::Fork => "fork",
            EventKind::Remap { .. } => "remap",
            EventKind::Remove { .. } => "remove",
            EventKind::Unmap { .. } => "unmap",
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.ctx;
        match self.what {
            EventKind::Fork => write!(f, "{c}:fork"),
            EventKind::Remap { from, to, len } => {
                write!(f, "{c}:remap[{from},{})->{to}", from + len)
            }
            EventKind::Remove { start, end } => write!(f, "{c}:remove[{start},{end})"),
            EventKind::Unmap { start, end } => write!(f, "{c}:unmap[{start},{end})"),
            EventKind::Fault { page, flags } => {
                write!(f, "{c}:fault[{page}]")?;
                for (bit, name) in EventKind::FLAG_NAMES {
                    if flags & bit != 0 {
                        write!(f, "+{name}")?;
                    }
                }
                Ok(())
            }
        }
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Event {
    type Err = String;
    /// The inverse of `Display`.
    fn from_str(s: &str) -> Result<Event, String> {
        let bad = |what: &str| {
            format!(
                "bad event {s:?}: {what} (expected like `0:fork`, `0:remap[2,4)->9`, \
                 `0:remove[2,3)` or `0:unmap[4,8)`)"
            )
        };
        let (ctx, rest) = s.split_once(':').ok_or_else(|| bad("no `CTX:`"))?;
        let ctx: u8 = match ctx.parse() {
            Ok(c) if c < MAX_CTX => c,
            _ => return Err(bad("bad ctx")),
        };
        if rest == "fork" {
            return Ok(Event::new(ctx, EventKind::Fork));
        }
        if let Some(fault) = rest.strip_prefix("fault[") {
            let (page, names) = fault.split_once(']').ok_or_else(|| bad("no `]`"))?;
            let page = match page.parse::<Page>() {
                Ok(p) if p < MAX_PAGES => p,
                _ => return Err(bad("bad page number")),
            };
            let mut flags = 0;
            for name in names.split('+').skip(1) {
                let (bit, _) = EventKind::FLAG_NAMES
                    .iter()
                    .find(|(_, n)| *n == name)
                    .ok_or_else(|| bad("unknown fault flag (wp, minor, write)"))?;
                flags |= bit;
            }
            if !names.is_empty() && !names.starts_with('+') {
                return Err(bad("fault flags are joined by `+`"));
            }
            return Ok(Event::new(ctx, EventKind::Fault { page, flags }));
        }
        let (name, range) = rest.split_once('[').ok_or_else(|| bad("no range"))?;
        let (range, to) = match range.split_once(")->") {
            Some((r, to)) => (r, Some(to)),
            None => (range.strip_suffix(')').ok_or_else(|| bad("no `)`"))?, None),
        };
        let (a, b) = range
            .split_once(',')
            .ok_or_else(|| bad("no `,` in the range"))?;
        let page = |t: &str| match t.parse::<Page>() {
            Ok(p) if p <= MAX_PAGES => Ok(p),
            _ => Err(bad("bad page number")),
        };
        let (start, end) = (page(a)?, page(b)?);
        if end < start {
            return Err(bad("the range ends before it starts"));
        }
        let what = match (name, to) {
            ("remap", Some(to)) => EventKind::Remap {
                from: start,
                to: page(to)?,
                len: end - start,
            },
            ("remove", None) => EventKind::Remove { start, end },
            ("unmap", None) => EventKind::Unmap { start, end },
            _ => return Err(bad("unknown event")),
        };
        Ok(Event::new(ctx, what))
    }
}

/// A step's events as text: joined by spaces, or `none`.
pub fn events_text(events: &[Event]) -> String {
    if events.is_empty() {
        return "none".into();
    }
    let v: Vec<String> = events.iter().map(|e| e.to_string()).collect();
    v.join(" ")
}

/// The inverse of [`events_text`].
pub fn parse_events(s: &str) -> Result<Vec<Event>, String> {
    if s.trim() == "none" {
        return Ok(Vec::new());
    }
    s.split_ascii_whitespace().map(str::parse).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_as_text() {
        let text = "0:fork 1:remap[2,4)->9 0:remove[2,3) 3:unmap[4,8) 0:fault[3]+wp+write";
        let events = parse_events(text).unwrap();
        assert_eq!(events.len(), 5);
        assert_eq!(
            events[1].what,
            EventKind::Remap {
                from: 2,
                to: 9,
                len: 2
            }
        );
        assert_eq!(events_text(&events), text);
        assert_eq!(parse_events("none").unwrap(), vec![]);
        assert_eq!(events_text(&[]), "none");
        for bad in [
            "4:fork",
            "0:unmap[4,2)",
            "0:zap[1,2)",
            "0:fault[3]+zz",
            "0:fault[3]write",
            "0:remap[1,2)",
            "fork",
        ] {
            assert!(parse_events(bad).is_err(), "{bad}");
        }
    }
}
