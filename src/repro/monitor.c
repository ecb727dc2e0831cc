static int watched, stop[2];

/* Reads the events of the uffds in `watched` until `stop`: the kernel does not return from mremap before they are read. */
static void *monitor(void *unused)
{
	struct pollfd p[4 + 1];
	struct uffd_msg msg;
	int c, n = 0;

	for (c = 0; c < 4; c++)
		if (watched & 1 << c)
			p[n++] = (struct pollfd){ .fd = uffd[c], .events = POLLIN };
	p[n] = (struct pollfd){ .fd = stop[0], .events = POLLIN };
	while (poll(p, n + 1, -1) >= 0 && !p[n].revents)
		for (c = 0; c < n; c++)
			while (read(p[c].fd, &msg, sizeof(msg)) > 0)
				;
	return unused;
}

/* mremap(2) while monitor() reads the events of the uffds in `mask`. */
static int mremap_watched(int mask, void *old, size_t len, size_t newlen, int flags, void *to)
{
	pthread_t thread;
	int err;

	watched = mask;
	if (pipe(stop) || pthread_create(&thread, NULL, monitor, NULL))
		return EAGAIN;
	err = ERR(mremap(old, len, newlen, flags, to) == MAP_FAILED);
	if (write(stop[1], "", 1) != 1 || pthread_join(thread, NULL))
		printf("# cannot stop the event monitor\n");
	close(stop[0]);
	close(stop[1]);
	return err;
}
