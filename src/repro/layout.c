/* The whole of a /proc file, NUL-terminated, or NULL. */
static char *slurp(const char *path)
{
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap), *grown;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t r;

	if (!buf || fd < 0) {
		free(buf);
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	for (;;) {
		if (cap - len < 4096 + 1) {
			cap *= 2;
			grown = realloc(buf, cap);
			if (!grown) {
				free(buf);
				close(fd);
				return NULL;
			}
			buf = grown;
		}
		r = read(fd, buf + len, cap - len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			free(buf);
			close(fd);
			return NULL;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	buf[len] = 0;
	close(fd);
	return buf;
}

/*
 * Which open uffd owns the registered VMA [a, a+len) with uffd bits `mode`:
 * UFFDIO_REGISTER of exactly that VMA with exactly its bits is a no-op from
 * the owner and EBUSY from any other ctx, so the kernel names the owner.
 */
static int owner(uintptr_t a, unsigned long len, unsigned long long mode, char *why, size_t n)
{
	char seen[256] = "";
	size_t used = 0;
	int c;

	for (c = 0; c < NCTX; c++) {
		struct uffdio_register reg;

		if (uffd[c] < 0)
			continue;
		memset(&reg, 0, sizeof(reg));
		reg.range.start = a;
		reg.range.len = len;
		reg.mode = mode;
		if (ioctl(uffd[c], UFFDIO_REGISTER, &reg) == 0)
			return c;
		if (errno != EBUSY && used < sizeof(seen))
			used += snprintf(seen + used, sizeof(seen) - used, "%sctx %d: errno %d",
					 used ? ", " : "; ", c, errno);
	}
	snprintf(why, n, "no open uffd owns this registered VMA (probe: EBUSY from every ctx%s)", seen);
	return -1;
}

/* One smaps entry of the arena or its guards. */
struct entry {
	const char *line;	/* the header line */
	unsigned long long start, end, offset, inode;
	char perms[8];
	const char *path;
	const char *vmflags;
};

/* One arena VMA in the text form, as the kernel backend prints it. */
static void describe(const struct entry *e, int of_child, unsigned long long *shmem, int *nshmem,
		     struct lines *out)
{
	char codes[512], text[1024], why[512], *tok, *save = NULL;
	int prot = 0, uffd_bits = 0, i, f;
	unsigned long flags = 0;
	char perms[4];
	const char *sep;
	size_t t = 0;

	snprintf(codes, sizeof(codes), "%s", e->vmflags);
	for (tok = strtok_r(codes, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		int known = 0;

		for (i = 0; i < COUNT(vmflag_codes); i++)
			if (!strcmp(tok, vmflag_codes[i][0])) {
				flags |= 1UL << i;
				known = 1;
			}
		for (i = 0; i < COUNT(uffd_codes); i++)
			if (!strcmp(tok, uffd_codes[i].code)) {
				uffd_bits |= uffd_codes[i].bit;
				known = 1;
			}
		for (i = 0; i < COUNT(prot_codes); i++)
			if (!strcmp(tok, prot_codes[i].code)) {
				prot |= prot_codes[i].bit;
				known = 1;
			}
		for (i = 0; i < COUNT(ignored_codes); i++)
			if (!strcmp(tok, ignored_codes[i]))
				known = 1;
		if (!known) {
			push(out, "error unexpected VmFlags code `%s` in an arena VMA: %s (VmFlags: %s)",
			     tok, e->line, e->vmflags);
			return;
		}
	}
	perms[0] = prot & 1 ? 'r' : '-';
	perms[1] = prot & 2 ? 'w' : '-';
	perms[2] = prot & 4 ? 'x' : '-';
	perms[3] = 0;
	if (strncmp(perms, e->perms, 3) || ((e->perms[3] == 's') != !!(flags & F_MAYSHARE))) {
		push(out, "error perms and VmFlags disagree: %s (VmFlags: %s)", e->line, e->vmflags);
		return;
	}
	t += snprintf(text + t, sizeof(text) - t, "[%llu,%llu) %s ",
		      (e->start - base) / PAGE, (e->end - base) / PAGE, perms);
	if (e->inode == 0 && !e->path[0]) {
		t += snprintf(text + t, sizeof(text) - t, "anon@?");
	} else {
		for (f = 0; f < NFILES; f++)
			if (e->inode == memfd_ino[f] && !strncmp(e->path, "/memfd:uffd-check-", 18))
				break;
		if (f < NFILES) {
			t += snprintf(text + t, sizeof(text) - t, "file=%d@%llu", f, e->offset / PAGE);
		} else if (e->inode && !strncmp(e->path, "/dev/zero", 9)) {
			/* shmem objects numbered by first appearance */
			for (i = 0; i < *nshmem && shmem[i] != e->inode; i++)
				;
			if (i == *nshmem)
				shmem[(*nshmem)++] = e->inode;
			t += snprintf(text + t, sizeof(text) - t, "shmem#%d@%llu", i, e->offset / PAGE);
		} else {
			push(out, "error cannot classify the arena VMA %s", e->line);
			return;
		}
	}
	for (i = 0; i < COUNT(vmflag_codes); i++)
		if (flags & (1UL << i))
			t += snprintf(text + t, sizeof(text) - t, " %s", vmflag_codes[i][1]);
	if (!(flags & F_MAYSHARE))
		t += snprintf(text + t, sizeof(text) - t, " anon_vma=?");
	if (uffd_bits && of_child) {
		push(out, "error a fork child's VMA kept uffd bits (no ctx has EVENT_FORK): %s", e->line);
		return;
	}
	if (uffd_bits) {
		int c = owner((uintptr_t)e->start, e->end - e->start, uffd_bits, why, sizeof(why));

		if (c < 0) {
			push(out, "error %s: %s", why, e->line);
			return;
		}
		sep = " uffd=";
		for (i = 0; i < COUNT(uffd_codes); i++)
			if (uffd_bits & uffd_codes[i].bit) {
				t += snprintf(text + t, sizeof(text) - t, "%s%s", sep, uffd_codes[i].name);
				sep = "+";
			}
		t += snprintf(text + t, sizeof(text) - t, " ctx=%d", c);
	}
	push(out, "%s", text);
}

/*
 * The arena's VMAs from /proc/self/smaps, one line each in the text form,
 * then an `error …` line for anything that cannot be read faithfully (a VMA
 * crossing the arena's edge, a missing guard, an unknown flag).
 */
static void read_layout(struct lines *out)
{
	uintptr_t lo = base, hi = base + NPAGES * PAGE;
	uintptr_t guard_lo = lo - PAGE, guard_hi = hi + PAGE;
	struct entry *v = NULL, cur;
	int nv = 0, have = 0, guards = 0, i, nshmem = 0;
	unsigned long long *shmem;
	struct lines errors = { 0 };
	int of_child = child_smaps != NULL;
	char *text = of_child ? child_smaps : slurp("/proc/self/smaps"), *line, *next;

	child_smaps = NULL;
	if (!text) {
		push(out, "error reading /proc/self/smaps: %s", strerror(errno));
		return;
	}
	v = calloc(NPAGES + 1, sizeof(*v));
	shmem = calloc(NPAGES + 1, sizeof(*shmem));
	if (!v || !shmem) {
		printf("Bail out! out of memory\n");
		exit(KSFT_FAIL);
	}
	for (line = text; *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		else
			next = line + strlen(line);
		if ((*line >= '0' && *line <= '9') || (*line >= 'a' && *line <= 'f')) {
			int pos = 0;
			char dev[32];

			memset(&cur, 0, sizeof(cur));
			cur.line = line;
			have = 0;
			if (sscanf(line, "%llx-%llx %7s %llx %31s %llu%n", &cur.start, &cur.end, cur.perms,
				   &cur.offset, dev, &cur.inode, &pos) < 6 || strlen(cur.perms) != 4) {
				push(&errors, "error cannot parse smaps header \"%s\"", line);
				continue;
			}
			cur.path = line + pos;
			while (*cur.path == ' ')
				cur.path++;
			have = cur.end > guard_lo && cur.start < guard_hi;
		} else if (!strncmp(line, "VmFlags:", 8) && have) {
			int guard;

			have = 0;
			cur.vmflags = line + 8;
			while (*cur.vmflags == ' ')
				cur.vmflags++;
			guard = (cur.start == guard_lo && cur.end == lo) || (cur.start == hi && cur.end == guard_hi);
			if (guard && !strncmp(cur.perms, "---p", 4) && cur.inode == (unsigned long long)guard_ino)
				guards++;
			else if (cur.start < lo || cur.end > hi)
				push(&errors, "error a VMA crosses the arena edge or replaced a guard: %s", cur.line);
			else if (nv <= (int)NPAGES)
				v[nv++] = cur;
		}
	}
	if (guards != 2)
		push(&errors, "error expected the two guard VMAs [%#lx,%#lx) and [%#lx,%#lx), found %d",
		     (unsigned long)guard_lo, (unsigned long)lo, (unsigned long)hi, (unsigned long)guard_hi, guards);
	for (i = 0; i < nv; i++)
		describe(&v[i], of_child, shmem, &nshmem, out);
	for (i = 0; i < errors.n; i++)
		push(out, "%s", errors.v[i]);
	clear(&errors);
	free(errors.v);
	free(shmem);
	free(v);
	free(text);
}
