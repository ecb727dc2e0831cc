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
