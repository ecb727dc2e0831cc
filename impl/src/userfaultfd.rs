//! The userfaultfd ioctls that fill or move pages, shaped like Linux's
//! mm/userfaultfd.c (with fs/userfaultfd.c's checks before it):
//! `mfill_atomic` for UFFDIO_COPY, ZEROPAGE, CONTINUE and POISON (page by
//! page, `mfill_atomic_pte`), and `move_pages` for UFFDIO_MOVE (page by
//! page, `move_pages_pte`). Both report partial progress the way the
//! ioctls do: every page done is OK; some done and then an error is
//! EAGAIN (the ioctl's "short" count); none done is the error.

use uffd_vocab::{Errno, Fill, Mode, OpResult, Page, PteKind, VmFlags};

use crate::bugs::Switch;
use crate::pgtable::{is_cow_mapping, vma_is_anonymous, Pte};
use crate::{IntervalImpl, VmaState};

/// The ioctl's answer from the pages done and the error that stopped it:
/// `copied ? copied : err`, then `range.len == len ? 0 : -EAGAIN`.
fn partial(done: Page, err: Option<Errno>) -> OpResult {
    match err {
        None => Ok(()),
        Some(_) if done > 0 => Err(Errno::EAGAIN),
        Some(e) => Err(e),
    }
}

impl IntervalImpl {
    /// `find_vma_and_prepare_anon(mm, addr)` (`uffd_lock_vma`): the VMA at
    /// `addr` (none: ENOENT), with an anon_vma prepared for a COW mapping
    /// whatever the ioctl then decides.
    fn find_vma_and_prepare_anon(&mut self, addr: Page) -> Result<VmaState, Errno> {
        let Some(vma) = self.vma_lookup(addr) else {
            return Err(Errno::ENOENT);
        };
        if is_cow_mapping(&vma) {
            self.anon_vma_prepare(vma);
        }
        Ok(self.vmas.get(&vma.start).copied().unwrap_or(vma))
    }

    /// UFFDIO_COPY, ZEROPAGE, CONTINUE, POISON: EAGAIN while the ctx's
    /// `mmap_changing` is up, `validate_range` (len 0 is EINVAL), then `mfill_atomic`: `uffd_mfill_lock` (the VMA at
    /// `start`, its anon_vma prepared; `validate_dst_vma`: the range
    /// inside it and the VMA registered, with any ctx, else ENOENT),
    /// MODE_WP only on a VMA registered WP and CONTINUE only on shmem
    /// (else EINVAL), then page by page.
    pub(crate) fn mfill_atomic(
        &mut self,
        how: Fill,
        ctx: u8,
        start: Page,
        len: Page,
        wp: bool,
    ) -> OpResult {
        self.open.insert(ctx);
        if self.mmap_changing == Some(ctx) {
            self.event("mfill: EAGAIN, mmap_changing (an mremap's REMAP unread)");
            return Err(Errno::EAGAIN);
        }
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        let end = start.saturating_add(len);
        let vma = self.find_vma_and_prepare_anon(start)?;
        // validate_dst_vma()
        if end > vma.end || vma.attrs.ctx.is_none() {
            return Err(Errno::ENOENT);
        }
        if wp && !vma.attrs.uffd.contains(Mode::WP) {
            return Err(Errno::EINVAL);
        }
        if how == Fill::Continue && vma_is_anonymous(&vma) {
            return Err(Errno::EINVAL);
        }
        let mut done = 0;
        let mut err = None;
        for page in start..end {
            // The source page of a copy holds the tag `page + 1`.
            if let Err(e) = self.mfill_atomic_pte(vma, page, how, wp, page + 1) {
                err = Some(e);
                break;
            }
            done += 1;
        }
        if err.is_some() && done > 0 {
            self.event("mfill_atomic: partial, EAGAIN");
        }
        partial(done, err)
    }

    /// `mfill_atomic_pte`: one page.
    fn mfill_atomic_pte(
        &mut self,
        vma: VmaState,
        page: Page,
        how: Fill,
        wp: bool,
        src_tag: u64,
    ) -> OpResult {
        let key = (vma.attrs.object, vma.pgoff.wrapping_add(page - vma.start));
        let over_size = !vma_is_anonymous(&vma) && self.past_i_size(key);
        let pte = self.ptes.get(&page).copied();
        // pte_none_mostly(): no entry, or a marker of either kind.
        let none_mostly = pte.is_none_or(|e| e.is_marker());
        match how {
            // mfill_atomic_pte_continue(): shmem_get_folio(SGP_NOALLOC),
            // past i_size EINVAL (`sgp <= SGP_CACHE`), none in the cache
            // EFAULT; then the cache page is mapped, writable only in a
            // shared VMA.
            Fill::Continue => {
                if over_size {
                    self.event("mfill: continue past i_size is EINVAL");
                    return Err(Errno::EINVAL);
                }
                let Some(tag) = self.cached(key) else {
                    return Err(Errno::EFAULT);
                };
                self.mfill_atomic_install_pte(page, over_size, none_mostly)?;
                self.ptes.insert(page, Pte::file(tag).with_wp(wp));
                self.event("mfill: continue maps the page cache page");
            }
            // mfill_atomic_pte_poison(): refuses any entry, even a marker.
            Fill::Poison => {
                if over_size {
                    return Err(Errno::EFAULT);
                }
                if pte.is_some() {
                    return Err(Errno::EEXIST);
                }
                self.ptes.insert(page, Pte::POISON);
                self.event("mfill: poison puts a marker");
            }
            // shmem_mfill_atomic_pte(): a new page of the page cache
            // (past i_size EFAULT; one there already EEXIST), mapped.
            _ if vma.attrs.flags.has(VmFlags::SHARED) => {
                if over_size {
                    return Err(Errno::EFAULT);
                }
                if self.cached(key).is_some() {
                    return Err(Errno::EEXIST);
                }
                // A failed install takes the page out of the cache again.
                self.mfill_atomic_install_pte(page, over_size, none_mostly)?;
                let (tag, wp) = match how {
                    Fill::Copy => (src_tag, wp),
                    _ => (0, false),
                };
                self.page_cache.insert(key, tag);
                self.ptes.insert(page, Pte::file(tag).with_wp(wp));
                self.event("mfill: a shmem fill adds a page to the page cache");
                if pte.is_some() {
                    self.event("mfill: shmem fill replaces a marker");
                }
            }
            // mfill_atomic_pte_copy(): a new anonymous page, exclusive.
            Fill::Copy => {
                self.mfill_atomic_install_pte(page, over_size, none_mostly)?;
                self.ptes.insert(page, Pte::anon(src_tag).with_wp(wp));
                self.event(if wp {
                    "mfill: copy fills a page, write-protected"
                } else {
                    "mfill: copy fills a page"
                });
                if pte.is_some() {
                    self.event("mfill: copy replaces a marker");
                }
            }
            // mfill_atomic_pte_zeropage(): the zero page, only on pte_none.
            Fill::ZeroPage => {
                if over_size {
                    return Err(Errno::EFAULT);
                }
                if pte.is_some() {
                    return Err(Errno::EEXIST);
                }
                self.ptes.insert(page, Pte::ZERO);
                self.event("mfill: zeropage maps the zero page");
            }
        }
        Ok(())
    }

    /// `mfill_atomic_install_pte`'s checks under the pte lock: past
    /// i_size EFAULT (`mfill_file_over_size`), an entry that is not
    /// `pte_none_mostly` EEXIST.
    fn mfill_atomic_install_pte(
        &mut self,
        _page: Page,
        over_size: bool,
        none_mostly: bool,
    ) -> OpResult {
        if over_size {
            return Err(Errno::EFAULT);
        }
        if !none_mostly {
            return Err(Errno::EEXIST);
        }
        Ok(())
    }

    /// UFFDIO_MOVE: `validate_range` of both ranges (len 0 EINVAL), then
    /// `move_pages`: `uffd_move_lock` (the VMA at `dst`, its anon_vma
    /// prepared, none ENOENT; then the VMA at `src`, none ENOENT, no
    /// anon_vma prepared), each range inside its one VMA, neither VMA
    /// shared, `validate_move_areas` (all EINVAL); then page by page,
    /// `move_pages_pte`.
    pub(crate) fn move_pages(
        &mut self,
        ctx: u8,
        dst: Page,
        src: Page,
        len: Page,
        holes: bool,
    ) -> OpResult {
        self.open.insert(ctx);
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        let dst_vma = self.find_vma_and_prepare_anon(dst)?;
        let src_vma = if dst_vma.start <= src && src < dst_vma.end {
            dst_vma
        } else {
            self.vma_lookup(src).ok_or(Errno::ENOENT)?
        };
        if src_vma.attrs.flags.has(VmFlags::SHARED)
            || src + len > src_vma.end
            || dst_vma.attrs.flags.has(VmFlags::SHARED)
            || dst + len > dst_vma.end
        {
            return Err(Errno::EINVAL);
        }
        validate_move_areas(ctx, &src_vma, &dst_vma)?;
        let mut done = 0;
        let mut err = None;
        for i in 0..len {
            if let Err(e) = self.move_pages_pte(dst + i, src + i, holes) {
                err = Some(e);
                break;
            }
            done += 1;
        }
        if err.is_some() && done > 0 {
            self.event("move_pages: partial, EAGAIN");
        }
        partial(done, err)
    }

    /// `move_pages_pte`: one page. The destination must be pte_none
    /// (EEXIST); a hole at the source is ENOENT unless holes are allowed;
    /// the zero page moves as the zero page; an anonymous page moves only
    /// when PageAnonExclusive (EBUSY), to a fresh writable pte without the
    /// uffd-wp bit (`move_present_pte`); a marker is EFAULT.
    fn move_pages_pte(&mut self, dst: Page, src: Page, holes: bool) -> OpResult {
        if self.ptes.contains_key(&dst) {
            return Err(Errno::EEXIST);
        }
        let Some(e) = self.ptes.get(&src).copied() else {
            return if holes { Ok(()) } else { Err(Errno::ENOENT) };
        };
        let moved = match e.kind {
            PteKind::Zero if self.bugs.has(Switch::MoveRefusesZeroPage) => {
                return Err(Errno::EBUSY)
            }
            PteKind::Zero => {
                self.event("move_pages: the zero page moves");
                Pte::ZERO
            }
            PteKind::Anon if !e.exclusive => {
                self.event("move_pages: a page fork shared is EBUSY");
                return Err(Errno::EBUSY);
            }
            PteKind::Anon => {
                self.event("move_pages: an anonymous page moves");
                Pte::anon(e.tag)
            }
            // Not in an anonymous VMA; kept for completeness.
            PteKind::File => return Err(Errno::EBUSY),
            PteKind::Marker | PteKind::Poison => return Err(Errno::EFAULT),
        };
        self.ptes.remove(&src);
        self.ptes.insert(dst, moved);
        Ok(())
    }
}

/// `validate_move_areas`: the same access flags (and so page prot), both
/// mlocked or neither, writable, `dst_vma` registered with this ctx, both
/// anonymous; each refusal EINVAL.
fn validate_move_areas(ctx: u8, src_vma: &VmaState, dst_vma: &VmaState) -> OpResult {
    let same_access = src_vma.attrs.prot == dst_vma.attrs.prot;
    let locked = |v: &VmaState| v.attrs.flags.has(VmFlags::LOCKED);
    if !same_access
        || locked(src_vma) != locked(dst_vma)
        || !src_vma.attrs.prot.write()
        || dst_vma.attrs.ctx != Some(ctx)
        || !vma_is_anonymous(src_vma)
        || !vma_is_anonymous(dst_vma)
    {
        return Err(Errno::EINVAL);
    }
    Ok(())
}
