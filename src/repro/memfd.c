/* A memfd of `pages` pages, and a read-only fd of it in `*ro`. */
static int memfd(const char *name, unsigned long pages, int *ro)
{
	char path[64];
	int fd = memfd_create(name, MFD_CLOEXEC);

	if (fd < 0 || ftruncate(fd, pages * PAGE))
		return -1;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	*ro = open(path, O_RDONLY | O_CLOEXEC);
	return *ro < 0 ? -1 : fd;
}
