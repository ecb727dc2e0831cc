static char *slurp(const char *path);

/*
 * The monitor of an mremap: reads (and drops) the events of the uffds
 * opened with UFFD_FEATURE_EVENT_REMAP until `*arg`, a pipe, is readable.
 * The kernel does not return from mremap before the REMAP event of a
 * moved registered VMA has been read.
 */
static void *drain_events(void *arg)
{
	int stop = *(int *)arg;
	char msg[sizeof(struct uffd_msg)];

	for (;;) {
		struct pollfd p[NCTX + 1];
		int np = 0, c;

		for (c = 0; c < NCTX; c++)
			if (uffd[c] >= 0 && uffd_remap[c]) {
				p[np].fd = uffd[c];
				p[np].events = POLLIN;
				np++;
			}
		p[np].fd = stop;
		p[np].events = POLLIN;
		p[np].revents = 0;
		if (poll(p, np + 1, -1) < 0)
			continue;
		for (c = 0; c < np; c++)
			while (read(p[c].fd, msg, sizeof(msg)) > 0)
				;
		if (p[np].revents)
			return NULL;
	}
}

/* Runs one op; its result name goes to `res`. */
static void run_op(const struct step *s, char *res, size_t n)
{
	char why[512];
	int err = 0;

	switch (s->op) {
	case OP_MAP: {
		int flags = MAP_FIXED, fd = -1;
		off_t off = 0;
		void *p;

		switch (s->kind) {
		case K_ANON: flags |= MAP_PRIVATE | MAP_ANONYMOUS; break;
		case K_ANON_NORESERVE: flags |= MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE; break;
		case K_SHMEM: flags |= MAP_SHARED | MAP_ANONYMOUS; break;
		case K_FILE: flags |= MAP_PRIVATE; fd = memfd_rw[s->file]; break;
		case K_SHARED_FILE: flags |= MAP_SHARED; fd = memfd_rw[s->file]; break;
		case K_SHARED_RO_FILE: flags |= MAP_SHARED; fd = memfd_ro[s->file]; break;
		}
		if (fd >= 0)
			off = (off_t)(s->pgoff * PAGE);
		p = mmap(addr(s->start), s->len * PAGE, s->prot, flags, fd, off);
		if (p == MAP_FAILED) {
			err = errno;
		} else if (p != addr(s->start)) {
			snprintf(res, n, "refused (mmap(MAP_FIXED) returned %p, not %p)", p, addr(s->start));
			return;
		}
		break;
	}
	case OP_UNMAP:
		if (munmap(addr(s->start), s->len * PAGE))
			err = errno;
		break;
	case OP_PROTECT:
		if (mprotect(addr(s->start), s->len * PAGE, s->prot))
			err = errno;
		break;
	case OP_REGISTER:
	case OP_UNREGISTER:
		/* The ctx is opened on first use, even when the op then fails. */
		if (uffd[s->ctx] < 0) {
			uffd[s->ctx] = uffd_open(0, why, sizeof(why));
			uffd_remap[s->ctx] = 0;
			if (uffd[s->ctx] < 0) {
				snprintf(res, n, "refused (%s)", why);
				return;
			}
		}
		if (s->op == OP_REGISTER) {
			struct uffdio_register reg;

			memset(&reg, 0, sizeof(reg));
			reg.range.start = (uintptr_t)addr(s->start);
			reg.range.len = s->len * PAGE;
			reg.mode = s->mode;
			if (ioctl(uffd[s->ctx], UFFDIO_REGISTER, &reg))
				err = errno;
		} else {
			struct uffdio_range range;

			range.start = (uintptr_t)addr(s->start);
			range.len = s->len * PAGE;
			if (ioctl(uffd[s->ctx], UFFDIO_UNREGISTER, &range))
				err = errno;
		}
		break;
	case OP_CLOSE:
		if (uffd[s->ctx] < 0) {
			err = EBADF;
		} else {
			close(uffd[s->ctx]);
			uffd[s->ctx] = -1;
		}
		break;
	case OP_MADVISE:
		if (madvise(addr(s->start), s->len * PAGE, s->advice))
			err = errno;
		break;
	case OP_MLOCK:
		/* mlock2(2); MLOCK_ONFAULT is 1. */
		if (syscall(__NR_mlock2, addr(s->start), s->len * PAGE, s->onfault ? 1 : 0))
			err = errno;
		break;
	case OP_MUNLOCK:
		if (munlock(addr(s->start), s->len * PAGE))
			err = errno;
		break;
	case OP_MREMAP: {
		void *want = addr(s->to == REMAP_IN_PLACE ? s->start : s->dst), *p;
		int flags = 0, stop[2], c, monitored = 0;
		pthread_t monitor;

		if (s->to != REMAP_IN_PLACE)
			flags = MREMAP_MAYMOVE | MREMAP_FIXED;
		if (s->to == REMAP_DONTUNMAP)
			flags |= MREMAP_DONTUNMAP;
		for (c = 0; c < NCTX; c++)
			monitored |= uffd[c] >= 0 && uffd_remap[c];
		if (monitored) {
			if (pipe(stop)) {
				snprintf(res, n, "refused (pipe: %s)", strerror(errno));
				return;
			}
			if (pthread_create(&monitor, NULL, drain_events, &stop[0])) {
				snprintf(res, n, "refused (cannot start the event monitor)");
				return;
			}
		}
		p = (void *)syscall(__NR_mremap, addr(s->start), s->len * PAGE, s->newlen * PAGE, flags, want);
		if (p == MAP_FAILED)
			err = errno;
		if (monitored) {
			if (write(stop[1], "x", 1) != 1)
				printf("# cannot stop the event monitor\n");
			pthread_join(monitor, NULL);
			close(stop[0]);
			close(stop[1]);
		}
		if (p != MAP_FAILED && p != want) {
			snprintf(res, n, "refused (mremap returned %p, not %p)", p, want);
			return;
		}
		break;
	}
	case OP_OPEN:
		/* Closed first if open (its registrations are released), then
		 * opened anew with the features. */
		if (uffd[s->ctx] >= 0)
			close(uffd[s->ctx]);
		uffd[s->ctx] = uffd_open(s->event_remap ? UFFD_FEATURE_EVENT_REMAP : 0, why, sizeof(why));
		uffd_remap[s->ctx] = s->event_remap;
		if (uffd[s->ctx] < 0) {
			snprintf(res, n, "refused (%s)", why);
			return;
		}
		break;
	case OP_FORK: {
		/* The step's layout is the child's: it waits on a pipe while its
		 * smaps is read, then is killed and reaped. */
		char path[64], b;
		int wait_fd[2];
		pid_t pid;

		if (pipe(wait_fd)) {
			snprintf(res, n, "refused (pipe: %s)", strerror(errno));
			return;
		}
		pid = fork();
		if (pid < 0) {
			snprintf(res, n, "refused (fork: %s)", strerror(errno));
			return;
		}
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			close(wait_fd[1]);
			if (read(wait_fd[0], &b, 1) < 0)
				_exit(1);
			_exit(0);
		}
		close(wait_fd[0]);
		snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
		free(child_smaps);
		child_smaps = slurp(path);
		close(wait_fd[1]);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		if (!child_smaps) {
			snprintf(res, n, "refused (cannot read the child's smaps)");
			return;
		}
		break;
	}
	case OP_FAULT: {
		/* A one-byte user write, through the kernel: a fault that fails
		 * comes back as EFAULT instead of a signal. */
		char byte = 0x5a;
		struct iovec local = { .iov_base = &byte, .iov_len = 1 };
		struct iovec remote = { .iov_base = addr(s->start), .iov_len = 1 };
		ssize_t w = process_vm_writev(getpid(), &local, 1, &remote, 1, 0);

		if (w == 0)
			err = EFAULT;
		else if (w != 1)
			err = errno;
		break;
	}
	}
	result_name(err, res, n);
}
