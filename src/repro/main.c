static int same(const char *result, const struct lines *got, const char *want_result,
		const char *const *want_layout)
{
	int i;

	if (strcmp(result, want_result))
		return 0;
	for (i = 0; i < got->n; i++)
		if (!want_layout[i] || strcmp(got->v[i], want_layout[i]))
			return 0;
	return want_layout[got->n] == NULL;
}

int main(void)
{
	struct lines got = { 0 };
	char why[512], result[640];
	int i, j, probe, fails = 0, known = 0;

	printf("TAP version 13\n");
	probe = uffd_open(0, why, sizeof(why));
	if (probe < 0) {
		printf("1..0 # SKIP userfaultfd cannot be used: %s\n", why);
		return KSFT_SKIP;
	}
	close(probe);
	if (setup(why, sizeof(why))) {
		printf("Bail out! %s\n", why);
		return KSFT_FAIL;
	}
	printf("1..%d\n", NSTEPS);
	printf("# %s: an arena of %lu pages at %#lx\n", NAME, NPAGES, (unsigned long)base);
	for (i = 0; i < NSTEPS; i++) {
		const struct step *s = &steps[i];

		run_op(s, result, sizeof(result));
		read_layout(&got);
		if (same(result, &got, s->expect_result, s->expect_layout)) {
			printf("ok %d - %s\n", i + 1, s->line);
		} else {
			if (s->known_result && same(result, &got, s->known_result, s->known_layout)) {
				/* Not the contract, but what this kernel is known to do. */
				known++;
				printf("not ok %d - %s # TODO %s\n", i + 1, s->line, s->known_why);
			} else {
				fails++;
				printf("not ok %d - %s\n", i + 1, s->line);
			}
			printf("# expected: %s\n", s->expect_result);
			if (!s->expect_layout[0])
				printf("#   (no VMAs)\n");
			for (j = 0; s->expect_layout[j]; j++)
				printf("#   %s\n", s->expect_layout[j]);
			printf("# actual: %s\n", result);
			if (!got.n)
				printf("#   (no VMAs)\n");
			for (j = 0; j < got.n; j++)
				printf("#   %s\n", got.v[j]);
		}
		printf("# result %d: %s\n", i + 1, result);
		for (j = 0; j < got.n; j++)
			printf("# layout %d: %s\n", i + 1, got.v[j]);
		clear(&got);
	}
	free(got.v);
	printf("# Totals: pass:%d fail:%d xfail:%d xpass:0 skip:0 error:0\n", NSTEPS - fails - known, fails,
	       known);
	return fails ? KSFT_FAIL : KSFT_PASS;
}
