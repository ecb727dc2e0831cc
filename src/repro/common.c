static uintptr_t base;			/* the arena's first page */
static ino_t guard_ino;
static int memfd_rw[NFILES], memfd_ro[NFILES];
static ino_t memfd_ino[NFILES];
static int uffd[NCTX] = { -1, -1, -1, -1 };
static int uffd_remap[NCTX];	/* opened with UFFD_FEATURE_EVENT_REMAP */
static char *child_smaps;	/* the last fork child's smaps, read once */

/* A growable list of lines. */
struct lines {
	char **v;
	int n, cap;
};

static void push(struct lines *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void push(struct lines *l, const char *fmt, ...)
{
	char buf[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 16;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		if (!l->v) {
			printf("Bail out! out of memory\n");
			exit(KSFT_FAIL);
		}
	}
	l->v[l->n] = strdup(buf);
	if (!l->v[l->n]) {
		printf("Bail out! out of memory\n");
		exit(KSFT_FAIL);
	}
	l->n++;
}

static void clear(struct lines *l)
{
	int i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	l->n = 0;
}

/* `ok`, or the errno's name as the vocabulary spells it. */
static void result_name(int err, char *buf, size_t n)
{
	const char *s = NULL;

	switch (err) {
	case 0: s = "ok"; break;
	case EPERM: s = "EPERM"; break;
	case EBADF: s = "EBADF"; break;
	case ENOMEM: s = "ENOMEM"; break;
	case EACCES: s = "EACCES"; break;
	case EFAULT: s = "EFAULT"; break;
	case EBUSY: s = "EBUSY"; break;
	case EEXIST: s = "EEXIST"; break;
	case EINVAL: s = "EINVAL"; break;
	}
	if (s)
		snprintf(buf, n, "%s", s);
	else
		snprintf(buf, n, "errno%d", err);
}
