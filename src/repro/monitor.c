static int watched, stop[2], forked[4], nforked;
static char events[1024];
static pthread_t watcher;
static void resolve(int c, const struct uffd_msg *m, int *fd); /* faults.c */
#define EVENT(...) snprintf(events + strlen(events), sizeof(events) - strlen(events), __VA_ARGS__)
#define PG(a) (((a) - ARENA) / PAGE)

/* Reads the events of the uffds in `watched` into `events` as the trace has them, until `stop`: a call that raises one waits until it is read (a page fault until resolve() resolved it). */
static void *monitor(void *unused)
{
	struct pollfd p[4 + 1];
	struct uffd_msg m;
	int c;

	for (c = 0; c < 4; c++)
		p[c] = (struct pollfd){ .fd = watched & 1 << c ? uffd[c] : -1, .events = POLLIN };
	p[4] = (struct pollfd){ .fd = stop[0], .events = POLLIN };
	while ((poll(p, 4 + 1, -1) >= 0 || errno == EINTR) && !p[4].revents)
		for (c = 0; c < 4; c++)
			while (p[c].revents && read(p[c].fd, &m, sizeof(m)) == sizeof(m)) {
				EVENT("%s%d:", *events ? " " : "", c);
				if (m.event == UFFD_EVENT_PAGEFAULT)
					resolve(c, &m, &p[c].fd);
				else if (m.event == UFFD_EVENT_FORK) /* a uffd of the child's */
					EVENT("fork"), forked[nforked++] = m.arg.fork.ufd;
				else if (m.event == UFFD_EVENT_REMAP)
					EVENT("remap[%llu,%llu)->%llu", PG(m.arg.remap.from),
					      PG(m.arg.remap.from + m.arg.remap.len), PG(m.arg.remap.to));
				else
					EVENT("%s[%llu,%llu)", m.event == UFFD_EVENT_UNMAP ? "unmap" : "remove",
					      PG(m.arg.remove.start), PG(m.arg.remove.end));
			}
	return unused;
}

/* Starts monitor() on the uffds in `mask`, before a call that may raise events; check_events() stops it. */
static void watch(int mask)
{
	watched = mask;
	events[0] = 0;
	if (pipe(stop) || pthread_create(&watcher, NULL, monitor, NULL))
		perror("the event monitor"), exit(2);
}

/* Stops monitor(), closes the children's uffds (releasing their registrations), checks the events against `want`. */
static void check_events(const char *what, const char *want, const char *known)
{
	if (write(stop[1], "", 1) != 1 || pthread_join(watcher, NULL))
		perror("the event monitor"), exit(2);
	close(stop[0]);
	close(stop[1]);
	while (nforked)
		close(forked[--nforked]);
	if (!*events)
		strcpy(events, "none");
	tap(!strcmp(events, want), known && !strcmp(events, known) ? KNOWN : NULL, what);
	if (strcmp(events, want))
		printf("# events: %s, the contract says %s\n", events, want);
}
