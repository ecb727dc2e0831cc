//! The non-cooperative events (rule 41, docs/kernel-rules.md §20): what
//! the readers of the uffds opened with `event-…` features get during a
//! step, in the order the kernel sends them.

use std::ops::Range;

use uffd_vocab::{Event, EventKind, Features, Fill, Page};

use crate::page_model::PageModel;

/// The events of the current step, in the order sent: the faults
/// delivered during the call (each waits there for its reader: mremap's
/// populate comes before the call completes), then the three groups
/// mremap sends in turn as it completes: the UNMAPs of a destination, the
/// REMAP, then every other UNMAP (and the REMOVEs and FORKs of the ops
/// that have no other).
#[derive(Clone, Default, Debug, PartialEq, Eq, Hash)]
pub(crate) struct StepEvents {
    faults: Vec<Event>,
    early: Vec<Event>,
    remap: Vec<Event>,
    late: Vec<Event>,
    /// The faults of this step cannot be delivered: mprotect populates
    /// without the retry that waiting for a reader needs (SIGBUS).
    pub(crate) no_retry: bool,
    /// The ctx whose ioctls are EAGAIN for now (`mmap_changing`): the one
    /// an mremap keeps a registration for, until its events are read.
    pub(crate) changing: Option<u8>,
}

/// Which of mremap's unmappings an unmapping is: its destination's (sent
/// before the REMAP) or any other (after).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unmapping {
    Destination,
    Other,
}

impl PageModel {
    /// Unmaps `range` (makes its pages holes), first noting the UNMAP
    /// events: one for each ctx with `event-unmap` that registers a page of
    /// the range, in the order of its first page, each with the whole
    /// range; an equal event already noted this step is not noted again.
    pub(crate) fn unmap_pages(&mut self, range: Range<usize>, which: Unmapping) {
        let what = EventKind::Unmap {
            start: range.start as Page,
            end: range.end as Page,
        };
        let mut ctxs: Vec<u8> = Vec::new();
        for p in self.pages[range.clone()].iter().flatten() {
            if let Some(c) = p.ctx {
                if self.open.has(c, Features::UNMAP) && !ctxs.contains(&c) {
                    ctxs.push(c);
                }
            }
        }
        let list = match which {
            Unmapping::Destination => &mut self.events.early,
            Unmapping::Other => &mut self.events.late,
        };
        for c in ctxs {
            let e = Event::new(c, what);
            if !list.contains(&e) {
                list.push(e);
            }
        }
        self.clear(range);
    }

    /// Notes the REMAP of a move of `len` pages from `from` to `to`
    /// whose pages are registered by `ctx`, if it has `event-remap`.
    pub(crate) fn remap_event(&mut self, ctx: Option<u8>, from: usize, to: usize, len: usize) {
        if let Some(c) = ctx.filter(|&c| self.open.has(c, Features::REMAP)) {
            let what = EventKind::Remap {
                from: from as Page,
                to: to as Page,
                len: len as Page,
            };
            self.events.remap.push(Event::new(c, what));
        }
    }

    /// Notes the REMOVE of the pages `range` of one VMA (madvise dropping
    /// them), if its ctx has `event-remove`.
    pub(crate) fn remove_event(&mut self, range: Range<usize>) {
        let ctx = self.pages[range.start].and_then(|p| p.ctx);
        if let Some(c) = ctx.filter(|&c| self.open.has(c, Features::REMOVE)) {
            let what = EventKind::Remove {
                start: range.start as Page,
                end: range.end as Page,
            };
            self.events.late.push(Event::new(c, what));
        }
    }

    /// Notes a FORK for `ctx` (the child got a uffd of its own for it),
    /// once a step.
    pub(crate) fn fork_event(&mut self, ctx: u8) {
        let e = Event::new(ctx, EventKind::Fork);
        if !self.events.late.contains(&e) {
            self.events.late.push(e);
        }
    }

    /// Rule 42: a fault at page `i` that userfaultfd takes (`flags`: the
    /// PAGEFAULT flags) goes, where the ctx registering the page is open
    /// with `faults`, to its reader: a FAULT event, then the reader
    /// resolves it as the kernel backend's monitor does (UFFDIO_COPY of a
    /// missing page, UFFDIO_CONTINUE of a minor one, UFFDIO_WRITEPROTECT
    /// off of a write-protected one), and the caller tries the access
    /// again. A reader that cannot resolve it (the ctx's ioctls are
    /// EAGAIN until the call's own events are read, which come after)
    /// closes the uffd: its registrations go (their VMAs merge as a
    /// close's), and so do the events the call would still send it; the
    /// access is tried again. `false`: not
    /// delivered (SIGBUS: the access is EFAULT), also where the same fault
    /// was delivered before in this step.
    pub(crate) fn deliver_fault(&mut self, i: usize, flags: u8) -> bool {
        let ctx = self.pages[i].and_then(|p| p.ctx);
        let Some(c) = ctx.filter(|&c| self.open.has(c, Features::FAULTS)) else {
            return false;
        };
        let page = i as Page;
        let e = Event::new(c, EventKind::Fault { page, flags });
        if self.events.no_retry || self.events.faults.contains(&e) {
            return false;
        }
        self.events.faults.push(e);
        let resolved = if self.events.changing == Some(c) {
            Err(uffd_vocab::Errno::EAGAIN)
        } else if flags & EventKind::WP != 0 {
            self.writeprotect(c, page, 1, false)
        } else if flags & EventKind::MINOR != 0 {
            self.fill(Fill::Continue, c, page, 1, false)
        } else {
            self.fill(Fill::Copy, c, page, 1, false)
        };
        if resolved.is_err() {
            // (The faults it read stay: they were sent.)
            let queued = [
                &mut self.events.early,
                &mut self.events.remap,
                &mut self.events.late,
            ];
            for list in queued {
                list.retain(|x| x.ctx != c);
            }
            // The pages it releases merge with their neighbours there and
            // then, as a close's do (rules 7 and 5), whatever the op
            // merges itself.
            let released: Vec<usize> = (0..self.pages.len())
                .filter(|&i| self.pages[i].is_some_and(|p| p.ctx == Some(c)))
                .collect();
            let _ = self.close(c);
            self.merge_around(&released);
        }
        true
    }

    /// Makes the step's REMAP say `len` pages (rule 43); whether it has
    /// one.
    pub(crate) fn set_remap_len(&mut self, new: Page) -> bool {
        for e in &mut self.events.remap {
            if let EventKind::Remap { len, .. } = &mut e.what {
                *len = new;
            }
        }
        !self.events.remap.is_empty()
    }

    /// The step's events so far, in the order they will be sent.
    pub(crate) fn events_so_far(&self) -> Vec<Event> {
        let e = &self.events;
        e.faults
            .iter()
            .chain(&e.early)
            .chain(&e.remap)
            .chain(&e.late)
            .copied()
            .collect()
    }

    /// The step's events, in the order sent; the list starts anew.
    pub(crate) fn take_events(&mut self) -> Vec<Event> {
        let StepEvents {
            mut faults,
            early,
            remap,
            late,
            ..
        } = std::mem::take(&mut self.events);
        // (Most steps have none, or only faults or only `late` ones: that
        // list is all.)
        if early.is_empty() && remap.is_empty() {
            if faults.is_empty() {
                return late;
            }
            if late.is_empty() {
                return faults;
            }
        }
        faults.extend(early);
        faults.extend(remap);
        faults.extend(late);
        faults
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::last_outcome;
    use uffd_vocab::events_text;

    /// The events of the last op of `ops` (one op a line).
    fn events(pages: u64, ops: &str) -> String {
        events_text(&last_outcome(pages, ops).events)
    }

    #[test]
    fn an_unmap_is_one_event_per_ctx_with_the_whole_range() {
        let setup = "map 0 8 rw- anon\nopen 0 event-unmap\nopen 1 event-unmap\n\
                     register 0 2 2 missing\nregister 0 5 1 wp\nregister 1 6 1 missing\n";
        assert_eq!(
            events(16, &format!("{setup}unmap 0 8")),
            "0:unmap[0,8) 1:unmap[0,8)"
        );
        assert_eq!(
            events(16, &format!("{setup}map 1 2 rw- anon")),
            "0:unmap[1,3)"
        );
        assert_eq!(events(16, &format!("{setup}unmap 0 2")), "none");
    }

    #[test]
    fn mremap_sends_the_destination_then_the_remap_then_the_rest() {
        let setup = "map 0 4 rw- anon\nopen 0 event-remap+event-unmap\nregister 0 0 4 missing\n";
        assert_eq!(
            events(16, &format!("{setup}mremap 0 4 4 8")),
            "0:remap[0,4)->8 0:unmap[0,4)"
        );
        assert_eq!(
            events(16, &format!("{setup}mremap 0 4 2 8")),
            "0:remap[0,2)->8 0:unmap[2,4) 0:unmap[0,2)"
        );
        assert_eq!(
            events(16, &format!("{setup}mremap 0 4 4 8 dontunmap")),
            "0:remap[0,4)->8"
        );
        assert_eq!(events(16, &format!("{setup}mremap 0 4 2")), "0:unmap[2,4)");
        let onto = "map 0 2 rw- anon\nmap 8 4 rw- anon\nopen 0 event-remap+event-unmap\n\
                    register 0 8 4 missing\nregister 0 0 2 missing\nmremap 0 2 2 9";
        assert_eq!(
            events(16, onto),
            "0:unmap[9,11) 0:remap[0,2)->9 0:unmap[0,2)"
        );
        // Without event-remap the copy is not registered, but the source
        // still is when it is unmapped.
        let plain = "map 0 4 rw- anon\nopen 0 event-unmap\nregister 0 0 4 missing\nmremap 0 4 4 8";
        assert_eq!(events(16, plain), "0:unmap[0,4)");
    }

    #[test]
    fn dropping_pages_sends_a_remove_per_registered_vma() {
        let setup = "map 0 3 rw- anon\nmap 4 3 rw- anon\nopen 0 event-remove\n\
                     register 0 0 3 missing\nregister 0 4 3 wp\n";
        assert_eq!(
            events(16, &format!("{setup}madvise 1 5 dontneed")),
            "0:remove[1,3) 0:remove[4,6)"
        );
        assert_eq!(
            events(16, &format!("{setup}mlock 0 3\nmadvise 0 3 dontneed")),
            "none"
        );
    }

    #[test]
    fn fork_sends_one_event_per_ctx_and_the_child_stays_registered() {
        let ops = "map 0 4 rw- anon\nmap 6 2 rw- anon\nopen 0 event-fork\nfault 0\n\
                   register 0 0 4 wp\nregister 0 6 2 missing\nwriteprotect 0 0 4 on\nfork";
        assert_eq!(events(16, ops), "0:fork");
        let child = last_outcome(16, ops).layout;
        assert!(
            child.lines()[0].ends_with("uffd=wp ctx=0"),
            "{:?}",
            child.lines()
        );
        assert_eq!(uffd_vocab::ptes_text(child.ptes()), "0:a+wp");
    }

    /// The last op's result, events and page table entries.
    fn fault(ops: &str) -> (String, String, String) {
        let o = last_outcome(16, ops);
        (
            uffd_vocab::result_name(&o.result),
            events_text(&o.events),
            uffd_vocab::ptes_text(o.layout.ptes()),
        )
    }

    #[test]
    fn a_fault_goes_to_a_ctx_open_with_faults_and_is_resolved() {
        let missing = "map 0 4 rw- anon\nopen 0 faults\nregister 0 0 4 missing\n";
        let got = fault(&format!("{missing}fault 1"));
        assert_eq!(
            got,
            ("ok".into(), "0:fault[1]+write".into(), "1:a=2".into())
        );
        let got = fault(&format!("{missing}fault 2 read"));
        assert_eq!(got, ("ok".into(), "0:fault[2]".into(), "2:a=3".into()));
        let got = fault(&format!("{missing}mlock 0 2"));
        assert_eq!(got.1, "0:fault[0]+write 0:fault[1]+write");
        let wp = "map 0 4 rw- anon\nopen 0 faults\nfault 0\nregister 0 0 4 wp\n\
                  writeprotect 0 0 4 on\nfault 0";
        assert_eq!(
            fault(wp),
            ("ok".into(), "0:fault[0]+wp+write".into(), "0:a".into())
        );
        // A write to a marker is the write's own (missing) fault; the
        // copy replaces the marker.
        let marker = "map 0 1 rw- shmem\nopen 0 faults\nregister 0 0 1 missing+wp\n\
                      writeprotect 0 0 1 on\nfault 0";
        assert_eq!(
            fault(marker),
            ("ok".into(), "0:fault[0]+write".into(), "0:f=1".into())
        );
        // mprotect populates without a retry: nothing is delivered.
        let mprotect = "map 0 1 r-- anon\nmlock 0 2\nopen 0 faults\nregister 0 0 1 missing\n\
                        protect 0 1 rw-";
        assert_eq!(fault(mprotect), ("ok".into(), "none".into(), "none".into()));
        // The populate of a grown move: the ctx that keeps the VMA cannot
        // resolve, so its reader closes it.
        let grown = "open 0 event-remap+event-unmap+faults\nmap 0 1 rw- anon\nmlock 0 1\n\
                     register 0 0 1 missing\nmremap 0 1 2 1";
        assert_eq!(fault(grown).1, "0:fault[2]+write");
        // Without `faults`, SIGBUS: EFAULT, nothing delivered.
        let sigbus = "map 0 4 rw- anon\nregister 0 0 4 missing\nfault 1";
        assert_eq!(
            fault(sigbus),
            ("EFAULT".into(), "none".into(), "none".into())
        );
    }
}
