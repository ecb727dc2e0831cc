//! # uffd-model
//!
//! The naive, page-granular reference model ([`PageModel`]): the contract
//! the implementation and the live kernel are checked against.
//!
//! The model keeps one entry per page of the arena and does every operation
//! as a plain loop over pages, in address order, which is the kernel's VMA
//! order: a VMA's pages all share its attributes, so "the first VMA that
//! fails a check" is "the first page that fails it". Its layout is
//! *derived*: maximal runs of pages that may be one VMA
//! ([`uffd_vocab::Vma::mergeable_with`]). So "minimal fragmentation" holds
//! for the model by construction, and the model has no merge logic that
//! could be wrong but rule 5.
//!
//! Nothing here is clever on purpose. If a rule needs cleverness to be
//! written here, the rule is wrong or the model is the wrong place for it.
//!
//! ## The rules
//!
//! One numbering for the whole project: "rule N" in a comment, here or
//! anywhere, is rule N of this list, and docs/kernel-rules.md ("The
//! model's rules") points each to the section that says why (§N there is a
//! section, not a rule). Each module does the rules of one syscall family:
//! `page_model` 1, 5 and 20; `mm` 2 to 4; `uffd` 6 and 7; `madvise` 8 and
//! 9; `fault` 10 to 15; `mremap` 16 to 18; `fork` 19; `events` 41 and 42; `deviations` 21 to
//! 30, 32, 36 to 40 and 43 (31, the uffd-wp bit, is `uffd`'s); `ioctls` 33
//! to 35.
//!
//! 1. Pages and layout. Each page carries every attribute of its VMA
//!    (prot, object, flags, uffd mode and ctx, the identity of its
//!    anon_vma or none), its own page offset, and what its page table has
//!    (nothing, a page read-only, a page written). The layout is the
//!    maximal runs of pages with equal attributes, linear page offsets and
//!    equal anon_vmas (none being a value of its own), cut where a
//!    boundary is kept (rule 20).
//! 2. mmap (MAP_FIXED): a length of 0 is EINVAL, PROT_WRITE on a shared
//!    mapping of a read-only fd EACCES; else every page of the range is
//!    replaced by a new, empty, unregistered one. Private anonymous memory
//!    takes its address as page offset, shmem a new object per call from
//!    offset 0, a memfd the offset passed; VM_ACCOUNT goes to private
//!    writable memory without MAP_NORESERVE. The new pages merge (rule 5)
//!    even where they equal what they replaced.
//! 3. munmap: a length of 0 is EINVAL; holes are fine; nothing merges.
//! 4. mprotect goes VMA by VMA from the start: a hole stops it with
//!    ENOMEM, PROT_WRITE without VM_MAYWRITE with EACCES, what changed
//!    staying changed. Each VMA is changed, then the changed pages merge
//!    (rule 5): before a VMA that must be populated is (rule 14), and at
//!    the end (the kernel merges after each VMA; merging later gives the
//!    same VMAs, because a VMA that can merge with one changed before it
//!    already has the new protection and stays as it is). Going writable adds VM_ACCOUNT to private
//!    memory that has none of VM_ACCOUNT, write, VM_SHARED, VM_NORESERVE;
//!    going to a protection without write gives VM_ACCOUNT back only on
//!    private anonymous memory without an anon_vma, and only where the
//!    protection changes (a VMA left `r--` with VM_ACCOUNT and no
//!    anon_vma, which MREMAP_DONTUNMAP can leave, keeps it under
//!    `protect … r--`).
//! 5. Merging: after an op changes pages, two neighbouring VMAs at least
//!    one of which holds a changed page are one VMA when they are equal but
//!    for the anon_vma and one of them has none: the one without takes the
//!    other's. Neighbours with two different anon_vmas stay apart. Looked
//!    at left to right, so a range that could join two neighbours with
//!    different anon_vmas joins the left one.
//! 6. UFFDIO_REGISTER: an empty or unknown mode, a length of 0, or no page
//!    mapped in the range is EINVAL; then page by page, the first that
//!    fails wins: MINOR on private anonymous memory EINVAL, no VM_MAYWRITE
//!    EPERM, registered by another ctx EBUSY. Then every page takes the
//!    mode and the ctx, except a page this ctx has registered with a mode
//!    that includes it. Registering through a ctx opens it.
//! 7. UFFDIO_UNREGISTER: a length of 0, no page mapped, or a page
//!    registered by another ctx is EINVAL; else every page of the range
//!    loses its registration. close of a ctx that is not open is EBADF;
//!    else every page it registered loses its registration. Opening a ctx
//!    that is open closes it first.
//! 8. madvise sets or clears its flag page by page: a hole makes the
//!    result ENOMEM, the pages after it changed all the same; WIPEONFORK
//!    on anything but private anonymous memory is EINVAL, the pages before
//!    changed, those after not; MERGEABLE leaves shared memory as it is.
//! 9. mlock, mlock2(MLOCK_ONFAULT) and munlock: a range starting in a hole
//!    is ENOMEM; else the flags change page by page up to the first hole
//!    (ENOMEM), the changed pages merge (rule 5), then mlock without
//!    onfault populates the range (rule 14): the first fault that fails
//!    makes it ENOMEM, the flags staying set.
//! 10. anon_vma: a write fault on private memory (anonymous or a private
//!     memfd) first gives the page's VMA an anon_vma if it has none, even
//!     when the write then fails: the next VMA's, if that one is adjacent,
//!     has one, the same object, a linear page offset and flags that
//!     differ only in prot (uffd bits count, the ctx does not); else the
//!     previous VMA's under the same test; else a new one. The whole VMA
//!     gets it.
//! 11. A write (the `fault` op): to a hole or a page without write
//!     permission, EFAULT, nothing changes; to a page written, ok, nothing
//!     changes. Otherwise a page past its shmem object's end is EFAULT
//!     (rule 15); then rule 10; then, where the page is not there,
//!     userfaultfd may refuse it (rule 12, EFAULT). Otherwise the page is
//!     written, and a memfd or shmem page enters the page cache. A write to
//!     a page there read-only (rule 13) is a write-protect fault:
//!     userfaultfd does not see it.
//! 12. userfaultfd on a fault at a page not there: MISSING refuses it for
//!     anonymous memory always, for a memfd or shmem page when it is not in
//!     the page cache; MINOR refuses it when the page IS in the page cache;
//!     WP refuses nothing.
//! 13. A read fault maps the zero page or the file page read-only: no
//!     anon_vma; a page past its shmem object's end (rule 15), MISSING and
//!     MINOR (rule 12) refuse it as they refuse a write; a memfd or shmem
//!     page enters the page cache.
//! 14. Populating: page by page, PROT_NONE fails (EFAULT), a writable
//!     private page takes a write fault (rule 11), any other a read fault
//!     (rule 13). mlock populates its range (rule 9); mprotect, when it
//!     made a locked (not lock-on-fault) private VMA writable, that VMA
//!     with write faults, stopping at the first refused page and ignoring
//!     the error; mremap the new pages of a locked VMA it grew, stopping at
//!     the first failure and ignoring it.
//! 15. A shmem page past the end of its object (a mapping mremap grew)
//!     cannot be faulted in: EFAULT, before userfaultfd is asked.
//! 16. mremap: a new length of 0 is EINVAL; with a destination, DONTUNMAP
//!     with a new length is EINVAL, and so is a destination overlapping the
//!     source. The same length with a destination is rule 17. Otherwise the
//!     first page must be mapped (EFAULT); in place, a shrink unmaps the
//!     tail and the same length does nothing; growing needs a length
//!     (EINVAL for 0 on private memory), a range inside one VMA (EFAULT)
//!     that ends it, and free pages after it (ENOMEM); the new pages copy
//!     the VMA's attributes, empty, merge, and are populated if it is
//!     locked (rule 14). Moved with a new length: `[START,
//!     START+min(LEN, NEWLEN))` inside one VMA (EFAULT), the source's tail
//!     cut, then rule 18; LEN 0 of shared memory maps its pages a second
//!     time.
//! 17. The same length with a destination goes VMA by VMA from the first
//!     page (which must be mapped: EFAULT), each piece moved by rule 18 to
//!     the same distance from DST (holes stay holes, their destinations
//!     untouched). A registered VMA stops it with EFAULT, the pieces
//!     before moved; unless the range lies in it alone.
//! 18. A move: the destination is unmapped; the copy is placed, the source
//!     still there; each page takes its attributes along, pages past the
//!     old length are new and empty, private anonymous memory without an
//!     anon_vma takes the new address as page offset; a registration whose
//!     ctx has no UFFD_FEATURE_EVENT_REMAP does not go along (rule 21);
//!     the copy merges (rule 5). Then the source is unmapped, or, with
//!     DONTUNMAP, stays mapped, empty, still registered and unlocked (rule
//!     23), its VMA without its anon_vma when all of it moved, and merges
//!     (rule 5). New pages of a locked VMA are populated (rule 14).
//! 19. fork: the step's layout is the child's. The child has every page
//!     without DONTCOPY, without uffd bits and locks; a WIPEONFORK page is
//!     there, empty, without anon_vma; each VMA copied with an anon_vma
//!     gets one of its own. Then equal neighbours are one VMA (rule 5;
//!     rule 22). The parent does not change.
//! 20. A boundary between equal pages that a deviation rule keeps (a
//!     page's `apart`) lasts until an op changes the flags of a page on
//!     either side of it (a fault, which changes only the anon_vma, does
//!     not); a map, munmap or mremap next to it ends it too.
//! 21. (Deviation `mremap-merges-with-old-registration`.) In a move (rule
//!     18) the copy merges with its old registration; then the VMA it is in
//!     loses its registration, whole (with whatever it merged with), and
//!     stays apart from its neighbours (rule 20).
//! 22. (Deviation `fork-keeps-parent-boundaries`.) The fork child (rule
//!     19) keeps every boundary of the parent.
//! 23. (Deviation `dontunmap-unlocks-the-whole-vma`.) DONTUNMAP (rule 18)
//!     unlocks the whole VMA the source is in, without split or merge,
//!     apart from its neighbours (rule 20); by the contract only the
//!     source range, merged.
//! 24. (Deviation `mremap-moves-within-one-vma`, before 6.17.) A move
//!     (rule 16 with a destination): no page at the start is EFAULT, then
//!     overlap EINVAL; the destination is unmapped, and a shrink's tail;
//!     then no page at the start (the destination was it) is EFAULT, a
//!     private length 0 EINVAL and a range that leaves the VMA of its first
//!     page EFAULT; else the move of rule 18.
//! 25. (Deviation `unregister-through-any-ctx`, before 6.17.) Unregister
//!     (rule 6) clears every registration in the range, whatever its ctx.
//! 26. (Deviation `new-mapping-joins-next`, before 6.12.) A new mapping
//!     (rule 2) that could merge with the VMAs on both sides, whose
//!     anon_vmas differ, takes the anon_vma of the one after it; where the
//!     one before has none, it keeps none and stays apart (rule 20; those
//!     kernels have the historic bug disallowed-anon-merge).
//! 27. (Deviation `dontunmap-copy-stays-apart-from-its-source`, before
//!     6.16 and from 7.2.) The copy of a DONTUNMAP move (rule 18) stays
//!     apart from the VMA its pages came from (rule 20).
//! 28. (Deviation `moved-copy-stays-apart`, 6.12 and from 7.3.) A copy that lost
//!     its registration in a move (rule 18) does not merge: it stays apart
//!     from its neighbours (rule 20). Rule 21, when on, says more.
//! 29. (Deviation `register-keeps-wp`, from 7.3.) Registering (rule 6) a
//!     range where the same ctx registered a page with WP, with a mode
//!     without WP, is EBUSY.
//! 30. (Deviation `dontunmap-source-loses-account`, 6.16.) After a
//!     DONTUNMAP move (rule 18) the VMA the source is in loses VM_ACCOUNT,
//!     whole, and stays apart (rule 20).
//! 31. The uffd-wp bit, per page (measured on 6.18): UFFDIO_WRITEPROTECT
//!     (len 0: EINVAL; a mapped page of a VMA not registered WP, or no page
//!     mapped: ENOENT, the pages before it changed; any ctx may do it) sets
//!     it on every page that is there, and on every page of a non-anonymous
//!     VMA (a pte marker), or clears it. A write to a page with the bit in a
//!     VMA registered WP is refused (EFAULT), a page not there (a marker)
//!     read in first (rule 13), after the anon_vma of a private mapping; in a VMA that is not, it is
//!     done and the bit stays, unless the write copies the page (a page
//!     read into a private mapping). Unregister and close clear the bits of the
//!     pages they release from a WP registration; a fork child, a move that loses its registration (in
//!     any mode: 0cef0bb836e3) and unmapping leave none; a move that keeps it takes
//!     them along; rule 21 leaves them on the neighbour it unregisters, and
//!     registering another mode keeps them. A fault on a page that is not
//!     there (a marker) in a VMA not registered WP drops its bit.
//! 32. (Deviation `writeprotect-within-one-vma`, before 6.12.)
//!     UFFDIO_WRITEPROTECT (rule 31) of a range that is not inside one VMA
//!     registered with WP is ENOENT, and nothing changes.
//! 33. UFFDIO_COPY, ZEROPAGE, CONTINUE, POISON (`ioctls`, `fill`): the
//!     range inside the one VMA registered (by any ctx) at START, else
//!     ENOENT (a private VMA there gets its anon_vma first); MODE_WP needs
//!     WP, CONTINUE shmem or a memfd (EINVAL); then page by page, the
//!     first failure stopping it (EEXIST where the entry is taken, EFAULT
//!     past a shmem object's end or for CONTINUE of a page not cached),
//!     EAGAIN if pages were done before it. A page's content tag is what
//!     its COPY put there; a copy on write takes the page cache's.
//! 34. UFFDIO_MOVE (`move_pages`): private anonymous VMAs alike in
//!     protection and lock, writable, DST registered by this ctx, each
//!     range inside its VMA, else EINVAL (no VMA: ENOENT); page by page:
//!     EEXIST where DST's entry is taken, ENOENT at a SRC hole (skipped
//!     with `holes`), EFAULT at a marker, EBUSY at a page a fork shared
//!     and no write took back; a page moves with its content and without
//!     its uffd-wp bit.
//! 35. madvise DONTNEED (empties the entries; a file VMA registered WP
//!     keeps a bit as a marker), REMOVE (shared writable file memory:
//!     punches the page cache, and every entry mapping it), FREE (private
//!     anonymous memory: a poison marker goes); a locked VMA: EINVAL.
//!     Read faults in file memory map the cached pages around them (the
//!     kernel's fault-around, 16 pages, not where registered WP or MINOR).
//! 36. (Deviation `dontunmap-copy-merges-with-nothing`, before 6.12.) A
//!     DONTUNMAP copy next to its source stays apart on its other side too.
//! 37. (Deviation `no-uffdio-move`, before 6.8.) UFFDIO_MOVE is EINVAL.
//! 38. (Deviation `no-uffdio-poison`, before 6.6.) UFFDIO_POISON is EINVAL.
//! 39. (Deviation `no-continue-wp`, before 6.4.) CONTINUE with MODE_WP is
//!     EINVAL.
//! 40. (Deviation `refused-fill-leaves-no-anon-vma`, before 6.12.) A fill
//!     gives the anon_vma only once its checks passed.
//! 41. The events (`events`), for the ctxs open with their feature, in the
//!     order sent: an unmapping of a range (munmap, mmap over, mremap's)
//!     sends UNMAP with the whole range once per ctx registering a page of
//!     it; mremap sends its destination's UNMAPs, then REMAP (from, to, the
//!     length moved), then its tail's and its source's UNMAPs (the source
//!     still registered); DONTNEED, FREE, REMOVE send REMOVE per VMA,
//!     clipped, once the VMA passed its checks (FREE's memory check
//!     after); fork sends FORK once per ctx registering a copied VMA, and
//!     the child's VMAs stay registered (page tables, uffd-wp bits and
//!     markers copied where registered WP); without the feature, rule 19.
//! 42. A fault userfaultfd takes (rules 12 and 31: a missing page, a page
//!     the cache has under MINOR, a write through a uffd-wp bit) at a page
//!     registered by a ctx open with `faults` is delivered to it (a FAULT
//!     event with the PAGEFAULT flags) and resolved as the kernel
//!     backend's monitor resolves it: UFFDIO_COPY of a missing page (the
//!     page's tag), UFFDIO_CONTINUE of a minor one, UFFDIO_WRITEPROTECT
//!     off of a write-protected one; then the access is tried again. A
//!     write to a marker is taken as the write's own fault. Without
//!     `faults` (UFFD_FEATURE_SIGBUS) it fails: EFAULT; so does a fault of
//!     mprotect's populate (no retry). A fault of the populate of a moved,
//!     grown, locked VMA whose ctx keeps it (event-remap) cannot be
//!     resolved (EAGAIN until the REMAP is read, after): the reader closes
//!     that uffd, dropping the call's other events to it, and the access
//!     is tried again.
//! 43. (Deviation `remap-event-has-the-old-length`, before 6.16.) The
//!     REMAP of a move that shrinks says the length before the shrink.
//!
//! ## Deviations
//!
//! Where the live kernel departs from the contract, the difference is a
//! [`Deviation`]: a rule (21 to 30, 32, 36 to 40, 43). Each carries the kernels that have it
//! ([`Deviation::history`]). By default the rules of [`MODEL_SERIES`]
//! (6.18) are on, so the model says what that kernel does; a kernel's
//! profile turns on the rules of its own series; `--strict` turns every
//! rule off, so the model says what the contract promises and a run
//! against the kernel (or the implementation, which follows 6.18's code)
//! finds the deviation. A rule
//! is reported in a step ([`uffd_vocab::StepReport::deviations`]) when it
//! changed the step's result or layout.

mod deviations;
mod events;
mod fault;
mod fork;
/// Rules 33 to 35.
mod ioctls;
mod madvise;
mod mm;
mod mremap;
pub mod page_model;
#[cfg(test)]
mod testing;
mod uffd;

pub use deviations::{Deviation, MODEL_SERIES};
pub use page_model::PageModel;
