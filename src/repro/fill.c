/* UFFDIO_CONTINUE_MODE_WP (6.4), UFFDIO_POISON (6.6) and UFFDIO_MOVE (6.8), for headers older than them. */
#ifndef UFFDIO_CONTINUE_MODE_WP
#define UFFDIO_CONTINUE_MODE_WP ((__u64)1 << 1)
#endif
#ifndef UFFDIO_POISON
struct uffdio_poison {
	struct uffdio_range range;
	__u64 mode;
	__s64 updated;
};
#define UFFDIO_POISON _IOWR(UFFDIO, 0x08, struct uffdio_poison)
#endif
#ifndef UFFDIO_MOVE
struct uffdio_move {
	__u64 dst, src, len, mode;
	__s64 move;
};
#define UFFDIO_MOVE _IOWR(UFFDIO, 0x05, struct uffdio_move)
#define UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES ((__u64)1 << 1)
#endif

/* The source of UFFDIO_COPY to page `dst`: `n` pages, page i holding the tag dst+i+1 at byte 8. */
static inline unsigned long tagged(unsigned long dst, unsigned long n)
{
	unsigned long i, tag;
	char *buf = mmap(NULL, n * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (buf == MAP_FAILED) {
		perror("mmap of the copy's source");
		exit(2);
	}
	for (i = 0; i < n; i++) {
		tag = dst + i + 1;
		memcpy(buf + i * PAGE + 8, &tag, sizeof(tag));
	}
	return (unsigned long)buf;
}
