//! The userfaultfd ioctls that fill or move pages (rules 33 and 34), and
//! the advices that drop them (rule 35): page by page, over the page
//! states of rule 1.

use uffd_vocab::{Advice, Backing, Errno, Fill, Mode, OpResult, Page, VmFlags};

use crate::page_model::{PageModel, PageState, Pte};

/// The result of a page-by-page ioctl that stopped at `done` pages with
/// `err`: the error if nothing was done, else EAGAIN (the ioctl reports
/// partial progress that way).
fn partial(done: Page, err: Errno) -> OpResult {
    Err(if done == 0 { err } else { Errno::EAGAIN })
}

impl PageModel {
    /// Rule 33: UFFDIO_COPY, ZEROPAGE, CONTINUE, POISON on ctx `ctx` over
    /// `[start, start+len)` (`wp`: MODE_WP).
    ///
    /// 1. The uffd is opened on first use; LEN 0 is EINVAL.
    /// 2. No VMA at START: ENOENT. A private VMA there gets its anon_vma
    ///    (rule 10), whatever follows.
    /// 3. The range not inside that one VMA, or the VMA not registered
    ///    (by any ctx): ENOENT. MODE_WP where the VMA is not registered WP,
    ///    or CONTINUE on anonymous memory: EINVAL.
    /// 4. Then page by page, stopping at the first that fails: a page
    ///    past its shmem object's end is EFAULT (CONTINUE: EINVAL); COPY,
    ///    CONTINUE and a shared ZEROPAGE need an entry without a page (a
    ///    marker may be there), a private ZEROPAGE and POISON an empty entry
    ///    (else EEXIST); in shared memory COPY and ZEROPAGE add the
    ///    page to the page cache (EEXIST if it is there), CONTINUE maps
    ///    the cached page (EFAULT if there is none).
    /// 5. What was filled: a private COPY an anonymous page with the tag
    ///    START+i+1; a private ZEROPAGE the zero page; a shared COPY or
    ///    ZEROPAGE a new cached page (the tag, or 0); CONTINUE the cached
    ///    page (read-only in private memory); POISON a poison marker. The
    ///    uffd-wp bit is MODE_WP's.
    /// 6. Stopped after some pages: EAGAIN.
    pub fn fill(&mut self, how: Fill, ctx: u8, start: Page, len: Page, wp: bool) -> OpResult {
        self.open.insert(ctx);
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        let first = start as usize;
        let Some(p) = self.pages[first] else {
            return Err(Errno::ENOENT);
        };
        let private = !p.flags.has(VmFlags::MAYSHARE);
        // (Rule 40: once the checks passed.)
        let late = private && self.fill_prepares_late();
        if private && !late {
            self.anon_vma_prepare(first);
        }
        let vma = self.vma_of(first);
        if (start + len) as usize > vma.end || p.ctx.is_none() {
            return Err(Errno::ENOENT);
        }
        if wp && !p.uffd.contains(Mode::WP) {
            return Err(Errno::EINVAL);
        }
        if how == Fill::Continue && p.backing == Backing::Anon {
            return Err(Errno::EINVAL);
        }
        if late {
            self.anon_vma_prepare(first);
        }
        for done in 0..len {
            let i = first + done as usize;
            let p = self.pages[i].expect("inside the VMA");
            if let Err(e) = self.fill_page(how, i, &p, private, wp) {
                return partial(done, e);
            }
        }
        Ok(())
    }

    /// Rule 33, step 4 and 5, for page `i` (state `p`).
    fn fill_page(
        &mut self,
        how: Fill,
        i: usize,
        p: &PageState,
        private: bool,
        wp: bool,
    ) -> OpResult {
        if self.beyond_eof(p) {
            // CONTINUE looks the page up in the cache first (shmem_get_folio
            // refuses an index past the end: EINVAL).
            return Err(if how == Fill::Continue {
                Errno::EINVAL
            } else {
                Errno::EFAULT
            });
        }
        // No page, perhaps a marker (uffd-wp or poison): `pte_none_mostly`.
        let marker_only = matches!(p.pte, Pte::None | Pte::Poison);
        let strictly_empty = p.pte == Pte::None && !p.wp;
        let key = (p.backing, p.pgoff);
        let cached = self.cache.contains(&key);
        let tag = i as Page + 1;
        let (pte, page_tag) = match how {
            Fill::Copy | Fill::ZeroPage if !private => {
                if cached {
                    return Err(Errno::EEXIST);
                }
                if !marker_only {
                    return Err(Errno::EEXIST);
                }
                self.cache.insert(key);
                if how == Fill::Copy {
                    self.cache_tags.insert(key, tag);
                }
                (Pte::Written, 0)
            }
            Fill::Copy => {
                if !marker_only {
                    return Err(Errno::EEXIST);
                }
                (Pte::Written, tag)
            }
            Fill::ZeroPage => {
                if !strictly_empty {
                    return Err(Errno::EEXIST);
                }
                let zero = if p.backing == Backing::Anon {
                    Pte::Read
                } else {
                    Pte::Zero
                };
                (zero, 0)
            }
            Fill::Continue => {
                if !cached {
                    return Err(Errno::EFAULT);
                }
                if !marker_only {
                    return Err(Errno::EEXIST);
                }
                (if private { Pte::Read } else { Pte::Written }, 0)
            }
            Fill::Poison => {
                if !strictly_empty {
                    return Err(Errno::EEXIST);
                }
                (Pte::Poison, 0)
            }
        };
        let q = self.pages[i].as_mut().expect("mapped");
        q.pte = pte;
        q.tag = page_tag;
        q.exclusive = true;
        q.wp = wp && how.takes_wp();
        Ok(())
    }

    /// Rule 34: UFFDIO_MOVE on ctx `ctx` of `[src, src+len)` to
    /// `[dst, dst+len)` (`holes`: ALLOW_SRC_HOLES).
    ///
    /// 1. The uffd is opened on first use; LEN 0 is EINVAL.
    /// 2. No VMA at DST, or at SRC: ENOENT (the DST VMA, private, gets its
    ///    anon_vma first).
    /// 3. EINVAL: either VMA shared, either range not inside its VMA, the
    ///    two with other protections or lock bits, not writable, DST not
    ///    registered with this ctx, either not anonymous.
    /// 4. Page by page, stopping at the first that fails: DST's entry not
    ///    empty (a marker too): EEXIST; nothing at SRC: ENOENT, or skipped
    ///    with `holes`; a marker at SRC: EFAULT; an anonymous page not
    ///    exclusive (shared by a fork, not written since): EBUSY. The page
    ///    (or the zero page) moves with its content and without its uffd-wp
    ///    bit; SRC's entry is then empty.
    /// 5. Stopped after some pages: EAGAIN.
    pub fn move_pages(
        &mut self,
        ctx: u8,
        src: Page,
        dst: Page,
        len: Page,
        holes: bool,
    ) -> OpResult {
        self.open.insert(ctx);
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        let (s0, d0) = (src as usize, dst as usize);
        let Some(d) = self.pages[d0] else {
            return Err(Errno::ENOENT);
        };
        if !d.flags.has(VmFlags::MAYSHARE) {
            self.anon_vma_prepare(d0);
        }
        let Some(s) = self.pages[s0] else {
            return Err(Errno::ENOENT);
        };
        let (dv, sv) = (self.vma_of(d0), self.vma_of(s0));
        let shared = |p: &PageState| p.flags.has(VmFlags::SHARED);
        let invalid = shared(&s)
            || (src + len) as usize > sv.end
            || shared(&d)
            || (dst + len) as usize > dv.end
            || s.prot != d.prot
            || s.flags.has(VmFlags::LOCKED) != d.flags.has(VmFlags::LOCKED)
            || !s.prot.write()
            || d.ctx != Some(ctx)
            || s.backing != Backing::Anon
            || d.backing != Backing::Anon;
        if invalid {
            return Err(Errno::EINVAL);
        }
        for done in 0..len as usize {
            let (si, di) = (s0 + done, d0 + done);
            let (s, d) = (
                self.pages[si].expect("inside"),
                self.pages[di].expect("inside"),
            );
            let err = if d.pte != Pte::None || d.wp {
                Some(Errno::EEXIST)
            } else {
                match s.pte {
                    Pte::None if s.wp => Some(Errno::EFAULT),
                    Pte::None if holes => continue,
                    Pte::None => Some(Errno::ENOENT),
                    Pte::Poison => Some(Errno::EFAULT),
                    Pte::Written if !s.exclusive => Some(Errno::EBUSY),
                    _ => None,
                }
            };
            if let Some(e) = err {
                return partial(done as Page, e);
            }
            let q = self.pages[di].as_mut().expect("inside");
            q.pte = s.pte;
            q.tag = s.tag;
            q.exclusive = true;
            q.wp = false;
            let q = self.pages[si].as_mut().expect("inside");
            q.pte = Pte::None;
            q.tag = 0;
            q.wp = false;
        }
        Ok(())
    }

    /// Rule 35: madvise DONTNEED, REMOVE, FREE over `[start, start+len)`,
    /// VMA by VMA in address order; a hole is ENOMEM at the end (the VMAs
    /// after it are still done); a locked VMA is EINVAL (stops there).
    ///
    /// - DONTNEED empties the entries: anonymous memory loses everything,
    ///   file and shmem memory keep a uffd-wp marker where the VMA is
    ///   registered WP and the entry had the bit.
    /// - REMOVE needs a shared writable file or shmem VMA (else EINVAL for
    ///   anonymous memory, EACCES for the others): the page cache loses
    ///   the range's pages, and every mapping of them its entries.
    /// - FREE needs private anonymous memory (else EINVAL): its pages stay
    ///   (nothing reclaims them here), a poison marker goes.
    ///
    /// Each VMA that passes its checks (FREE's memory check comes after)
    /// sends its REMOVE, clipped to it, first (rule 41).
    pub(crate) fn madvise_drop(&mut self, start: Page, len: Page, advice: Advice) -> OpResult {
        let mut hole = false;
        let mut i = start as usize;
        let end = (start + len) as usize;
        while i < end {
            let Some(p) = self.pages[i] else {
                hole = true;
                i += 1;
                continue;
            };
            let vma_end = self.vma_of(i).end.min(end);
            if p.flags.has(VmFlags::LOCKED) {
                return Err(Errno::EINVAL);
            }
            match advice {
                Advice::DontNeed => {
                    self.remove_event(i..vma_end);
                    for j in i..vma_end {
                        self.zap(j);
                    }
                }
                Advice::Remove => {
                    if p.backing == Backing::Anon {
                        return Err(Errno::EINVAL);
                    }
                    if !(p.flags.has(VmFlags::SHARED) && p.flags.has(VmFlags::MAYWRITE)) {
                        return Err(Errno::EACCES);
                    }
                    self.remove_event(i..vma_end);
                    for j in i..vma_end {
                        let q = self.pages[j].expect("mapped");
                        self.punch(q.backing, q.pgoff);
                    }
                }
                _ => {
                    // FREE says so before it looks at the memory.
                    self.remove_event(i..vma_end);
                    if p.backing != Backing::Anon {
                        return Err(Errno::EINVAL);
                    }
                    for q in self.pages[i..vma_end].iter_mut().flatten() {
                        if q.pte == Pte::Poison {
                            q.pte = Pte::None;
                        }
                    }
                }
            }
            i = vma_end;
        }
        if hole {
            Err(Errno::ENOMEM)
        } else {
            Ok(())
        }
    }

    /// Empties page `j`'s entry (zap_pte_range): anonymous memory loses
    /// everything; in file and shmem memory a uffd-wp marker stays, and a
    /// page with the bit leaves one where the VMA is registered WP.
    fn zap(&mut self, j: usize) {
        let q = self.pages[j].as_mut().expect("mapped");
        let marker = q.pte == Pte::None;
        let keep = q.backing != Backing::Anon && q.wp && (marker || q.uffd.contains(Mode::WP));
        q.pte = Pte::None;
        q.tag = 0;
        q.wp = keep;
    }

    /// Punches page `pgoff` out of `backing`'s page cache (shmem_fallocate)
    /// and empties every entry that maps it, and the zero page a private
    /// mapping has there (unmap_mapping_range without `even_cows`: only
    /// anonymous pages, the private copies, stay).
    fn punch(&mut self, backing: Backing, pgoff: Page) {
        self.cache.remove(&(backing, pgoff));
        self.cache_tags.remove(&(backing, pgoff));
        for j in 0..self.pages.len() {
            let Some(q) = self.pages[j] else { continue };
            // (A poison marker stays: the truncation keeps what is not a
            // page of the cache.)
            let maps_cache = match q.pte {
                Pte::None | Pte::Poison => false,
                // The zero page is no anonymous page (`should_zap_page`
                // zaps a pte without a page).
                Pte::Read | Pte::Zero => true,
                Pte::Written => q.flags.has(VmFlags::MAYSHARE),
            };
            if q.backing == backing && q.pgoff == pgoff && maps_cache {
                self.zap(j);
            }
        }
    }
}
