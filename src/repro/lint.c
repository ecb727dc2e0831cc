/*
 * Not part of any emitted program: the fixed C of uffd-check's reproducer
 * as one translation unit a compiler, linter or language server can read,
 * with a stand-in for what src/repro.rs generates. A program holds only
 * the parts it needs, in this order. Checked by
 * `cargo test -p uffd-check --lib repro` as
 *
 *   cc -O2 -Wall -Wextra -Werror -c -o /dev/null src/repro/lint.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <poll.h>
#include <pthread.h>
#include <unistd.h>
#include <linux/userfaultfd.h>

#define NPAGES 16UL
#define PAGE 4096UL
#define ARENA 0x100000000000UL
#define P(n) ((void *)(ARENA + (n) * PAGE))
#define ERR(failed) ((failed) ? errno : 0)
#define KNOWN "known deviation: a stand-in"

static int uffd[4] = { -1, -1, -1, -1 };

#include "tap.c"
#include "result.c"
#include "uffd.c"
#include "touch.c"
#include "peek.c"
#include "fill.c"
#include "memfd.c"
#include "fork.c"
#include "monitor.c"
#include "faults.c"
#include "owner.c"
#include "layout.c"
#include "ptes.c"

int main(void)
{
	int ro, f = memfd("f0", 4, &ro);
	pid_t pid = fork_child();

	uffd[0] = uffd_open(UFFD_FEATURE_SIGBUS | UFFD_FEATURE_EVENT_REMAP);
	check("touch", TOUCH(0), EFAULT, -1);
	check("peek", PEEK(0), EFAULT, -1);
	check("copy", ERR(ioctl(uffd[0], UFFDIO_COPY, &(struct uffdio_copy){ .dst = ARENA, .src = tagged(0, 1), .len = PAGE })), ENOENT, -1);
	check("move", ERR(ioctl(uffd[0], UFFDIO_MOVE, &(struct uffdio_move){ .dst = ARENA, .src = ARENA + PAGE, .len = PAGE })), ENOENT, -1);
	check("poison", ERR(ioctl(uffd[0], UFFDIO_POISON, &(struct uffdio_poison){ .range = { ARENA, PAGE } })), ENOENT, -1);
	watch(1);
	check("mremap", ERR(mremap(P(0), PAGE, PAGE, 0) == MAP_FAILED), 0, -1);
	check_events("events", "none", NULL);
	check_layout("layout", "/proc/self/smaps", "um ", "", NULL);
	check_ptes("ptes", pid, "none", NULL);
	end_child(pid);
	close(f);
	return failures;
}
