/*
 * The uffd that owns a registered VMA of the arena, asked of the kernel
 * because the check needs it (more than one uffd registers): UFFDIO_REGISTER
 * of exactly the VMA with exactly its modes is a no-op on its owner, EBUSY
 * on any other. Called on each smaps line.
 */
static void ask_owner(FILE *g, const char *line, int in)
{
	static struct uffdio_register r;
	unsigned long long s, e;
	int c;

	if (sscanf(line, "%llx-%llx ", &s, &e) == 2)
		r.range = (struct uffdio_range){ s, e - s };
	if (!in || strncmp(line, "VmFlags:", 8))
		return;
	r.mode = (strstr(line, " um") ? UFFDIO_REGISTER_MODE_MISSING : 0) |
		 (strstr(line, " uw") ? UFFDIO_REGISTER_MODE_WP : 0) |
		 (strstr(line, " ui") ? UFFDIO_REGISTER_MODE_MINOR : 0);
	for (c = 0; r.mode && c < 4; c++)
		if (uffd[c] >= 0 && !ioctl(uffd[c], UFFDIO_REGISTER, &r))
			fprintf(g, " ctx=%d", c);
}
