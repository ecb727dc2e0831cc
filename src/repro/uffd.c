/* A userfaultfd with the UFFDIO_API `features`: with UFFD_FEATURE_SIGBUS, a fault it would report fails at once (EFAULT in a syscall); without, the fault waits for the monitor. */
static int uffd_open(unsigned long long features)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };
	int fd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd >= 0 && ioctl(fd, UFFDIO_API, &api)) {
		close(fd);
		return -1;
	}
	return fd;
}
