/* A userfaultfd with UFFD_FEATURE_SIGBUS: a fault it would report fails at once (EFAULT in a syscall). */
static int uffd_open(unsigned long long features)
{
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_SIGBUS | features };
	int fd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd >= 0 && ioctl(fd, UFFDIO_API, &api)) {
		close(fd);
		return -1;
	}
	return fd;
}
