#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/userfaultfd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 0x0001U
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif
#ifndef UFFD_FEATURE_SIGBUS
#define UFFD_FEATURE_SIGBUS (1 << 7)
#endif
#ifndef UFFD_FEATURE_EVENT_REMAP
#define UFFD_FEATURE_EVENT_REMAP (1 << 2)
#endif
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif
/* The madvise advices of the trace language, for older headers. */
#ifndef MADV_DONTFORK
#define MADV_DONTFORK 10
#endif
#ifndef MADV_DOFORK
#define MADV_DOFORK 11
#endif
#ifndef MADV_MERGEABLE
#define MADV_MERGEABLE 12
#endif
#ifndef MADV_UNMERGEABLE
#define MADV_UNMERGEABLE 13
#endif
#ifndef MADV_HUGEPAGE
#define MADV_HUGEPAGE 14
#endif
#ifndef MADV_NOHUGEPAGE
#define MADV_NOHUGEPAGE 15
#endif
#ifndef MADV_DONTDUMP
#define MADV_DONTDUMP 16
#endif
#ifndef MADV_DODUMP
#define MADV_DODUMP 17
#endif
#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#endif
#ifndef MADV_KEEPONFORK
#define MADV_KEEPONFORK 19
#endif

#define KSFT_PASS 0
#define KSFT_FAIL 1
#define KSFT_SKIP 4

#define PAGE 4096UL
/* Where the arena is tried, as uffd-check's kernel worker tries it. */
#define ARENA_HINT 0x100000000000UL
#define ARENA_STEP 0x10000000000UL
/* The largest file page offset an op may name (MAX_PGOFF). */
#define MAX_PGOFF 1048576UL
#define NFILES 4
#define NCTX 4

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

enum { OP_MAP, OP_UNMAP, OP_PROTECT, OP_REGISTER, OP_UNREGISTER, OP_CLOSE, OP_FAULT, OP_MADVISE,
       OP_MLOCK, OP_MUNLOCK, OP_MREMAP, OP_OPEN, OP_FORK };
enum { REMAP_IN_PLACE, REMAP_FIXED, REMAP_DONTUNMAP };
enum { K_ANON, K_ANON_NORESERVE, K_SHMEM, K_FILE, K_SHARED_FILE, K_SHARED_RO_FILE };

/* One op of the trace (pages relative to the arena) and what it must give. */
struct step {
	const char *line;
	int op;
	unsigned long start, len;
	int prot;
	int kind;
	int file;
	unsigned long pgoff;
	int ctx;
	unsigned long long mode;
	int advice;
	int onfault;
	unsigned long newlen, dst;
	int to;
	int event_remap;
	const char *expect_result;
	const char *const *expect_layout; /* NULL-terminated */
	/* Where the kernel is known to depart from the contract: what it does
	 * instead, and which deviation that is (NULL elsewhere). */
	const char *known_result;
	const char *const *known_layout;
	const char *known_why;
};

/* An smaps VmFlags code: its bit, and its name in the text form. */
struct code {
	const char *code;
	int bit;
	const char *name;
};
