/* The PFN of the zero page (a read page of our own, its pagemap entry), or ~0 where pagemap hides PFNs (not root). */
static unsigned long long zero_pfn(void)
{
	static unsigned long long pfn;
	unsigned long long e = 0;
	volatile char *z;
	int self;

	if (pfn)
		return pfn;
	z = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	self = open("/proc/self/pagemap", O_RDONLY);
	if (z != MAP_FAILED && self >= 0 && (z[0], pread(self, &e, 8, (unsigned long)z / PAGE * 8) == 8))
		pfn = e & ((1ULL << 55) - 1);
	pfn = pfn ? pfn : ~0ULL;
	if (z != MAP_FAILED)
		munmap((void *)z, PAGE);
	close(self);
	return pfn;
}

/* The arena's page table entries in `expect ptes`'s form ("0-3:a 5:f+wp 7:a=8"), from pagemap's present (63), marker (62), file (61) and uffd-wp (57) bits, the zero page by its PFN (not root: mapped by nobody alone, bit 56), the content tag (the u64 at byte 8) from mem; against `want`. */
static void check_ptes(const char *what, pid_t pid, const char *want, const char *known)
{
	char path[64], *got, state[48], last[48] = "", k;
	unsigned long long e, tag, run = 0, p, pfn = zero_pfn();
	size_t n;
	FILE *g = open_memstream(&got, &n);
	int map, mem;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid ? (int)pid : (int)getpid());
	map = open(path, O_RDONLY);
	snprintf(path, sizeof(path), "/proc/%d/mem", pid ? (int)pid : (int)getpid());
	mem = open(path, O_RDONLY);
	for (p = 0; p <= NPAGES; p++) {
		state[0] = 0;
		if (p < NPAGES && pread(map, &e, 8, (ARENA / PAGE + p) * 8) == 8 && (e >> 62 || (e >> 57 & 1))) {
			if (!(e >> 63))
				k = e >> 57 & 1 ? 'w' : 'p';
			else if (e >> 61 & 1)
				k = 'f';
			else
				k = (pfn == ~0ULL ? !(e >> 56 & 1) : (e & ((1ULL << 55) - 1)) == pfn) ? 'z' : 'a';
			tag = 0;
			if ((k == 'a' || k == 'f') && pread(mem, &tag, 8, ARENA + p * PAGE + 8) != 8)
				tag = 0;
			snprintf(state, sizeof(state), "%c%s", k, k != 'w' && (e >> 57 & 1) ? "+wp" : "");
			if (tag)
				snprintf(state + strlen(state), sizeof(state) - strlen(state), "=%llu", tag);
		}
		if (run && strcmp(state, last)) {
			fprintf(g, "%s%llu", ftell(g) ? " " : "", p - run);
			if (run > 1)
				fprintf(g, "-%llu", p - 1);
			fprintf(g, ":%s", last);
			run = 0;
		}
		if (state[0])
			run++, strcpy(last, state);
	}
	if (!ftell(g))
		fprintf(g, "none");
	fclose(g);
	close(map);
	close(mem);
	tap(!strcmp(got, want), known && !strcmp(got, known) ? KNOWN : NULL, what);
	printf("# ptes: %s\n", got);
	if (strcmp(got, want))
		printf("# the contract: %s\n", want);
	free(got);
}
