/* The arena's VMAs in `smaps` ("[start,end) perms", file@pgoff, VmFlags among `codes`) against `want`; all if not. */
static void check_layout(const char *what, const char *smaps, const char *codes, const char *want, const char *known)
{
	char line[1024], perms[8], file[256], *got, *all;
	unsigned long long s, e, off;
	size_t n1, n2;
	FILE *f = fopen(smaps, "r"), *g = open_memstream(&got, &n1), *a = open_memstream(&all, &n2);
	int n, in = 0;

	while (fgets(line, sizeof(line), f)) {
		n = sscanf(line, "%llx-%llx %7s %llx %*s %*s %255s", &s, &e, perms, &off, file);
		if (n >= 4 && (in = s >= ARENA && e <= ARENA + NPAGES * PAGE))
			fprintf(g, "%s[%llu,%llu) %s", ftell(g) ? " " : "", (s - ARENA) / PAGE, (e - ARENA) / PAGE, perms);
		if (n == 5 && in)
			fprintf(g, " %s@%llu", file, off / PAGE);
		if (in && (n >= 4 || !strncmp(line, "VmFlags:", 8)))
			fprintf(a, "#   %s", line);
		for (const char *c = codes; in && !strncmp(line, "VmFlags:", 8) && *c; c += 3)
			if (strstr(line + 8, (char[]){ c[0], c[1], 0 }))
				fprintf(g, " %.2s", c);
		ask_owner(g, line, in);
	}
	fclose(g);
	fclose(a);
	tap(!strcmp(got, want), known && !strcmp(got, known) ? KNOWN : NULL, what);
	printf("# arena: %s\n", got);
	if (strcmp(got, want))
		printf("# the contract: %s\n# %s:\n%s", want, smaps, all);
	fclose(f);
	free(got);
	free(all);
}
