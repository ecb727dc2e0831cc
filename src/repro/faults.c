/* A page fault read from uffd `c` (one opened without UFFD_FEATURE_SIGBUS) as the trace has it, then resolved for its one page as a postcopy monitor does: a write-protected page made writable, a cached page mapped (MINOR), else a copy of a page tagged page+1. A fault it cannot resolve (EAGAIN while a move the uffd registers is unfinished) closes the uffd: the access, retried, finds no registration. */
static void resolve(int c, const struct uffd_msg *m, int *fd)
{
	unsigned long long flags = m->arg.pagefault.flags, a = m->arg.pagefault.address & ~(PAGE - 1);
	unsigned long src;
	int err;

	EVENT("fault[%llu]%s%s%s", PG(a), flags & UFFD_PAGEFAULT_FLAG_WP ? "+wp" : "",
	      flags & UFFD_PAGEFAULT_FLAG_MINOR ? "+minor" : "", flags & UFFD_PAGEFAULT_FLAG_WRITE ? "+write" : "");
	if (flags & UFFD_PAGEFAULT_FLAG_WP) {
		err = ioctl(*fd, UFFDIO_WRITEPROTECT, &(struct uffdio_writeprotect){ .range = { a, PAGE } });
	} else if (flags & UFFD_PAGEFAULT_FLAG_MINOR) {
		err = ioctl(*fd, UFFDIO_CONTINUE, &(struct uffdio_continue){ .range = { a, PAGE } });
	} else {
		src = tagged(PG(a), 1);
		err = ioctl(*fd, UFFDIO_COPY, &(struct uffdio_copy){ .dst = a, .src = src, .len = PAGE });
		munmap((void *)src, PAGE);
	}
	if (err) {
		close(*fd);
		*fd = uffd[c] = -1;
	}
}
