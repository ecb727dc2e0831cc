/*
 * Not part of the emitted program: the fixed C of uffd-check's reproducer
 * as one translation unit a compiler, linter or language server can read,
 * with a stand-in for the part src/repro.rs generates for each trace. The
 * emitted program is the same sequence: the header comment, prelude.h, the
 * generated part, then common.c, arena.c, ops.c, layout.c and main.c (and
 * no #include of any of them). Checked by `cargo test -p uffd-check --lib repro` as
 *
 *   cc -O2 -Wall -Wextra -Werror -c -o /dev/null src/repro/check.c
 */
#include "prelude.h"

/*
 * The generated part, for one trace of one step: the smaps VmFlags codes
 * (from the vocabulary's tables; a few of them here), then the trace's
 * constants, expectations and step table.
 */
static const char *const vmflag_codes[][2] = {
	{ "ac", "account" },
	{ "ms", "mayshare" },
};
#define F_MAYSHARE (1UL << 1)
static const struct code uffd_codes[] = {
	{ "um", 1, "missing" },
};
static const struct code prot_codes[] = {
	{ "rd", 1, NULL },
};
static const char *const ignored_codes[] = {
	"mr",
};

#define NPAGES 4UL
#define NSTEPS 1
static const char NAME[] = "check";

static const char *const expect_1[] = {
	NULL,
};

static const struct step steps[NSTEPS + 1] = {
	{ .line = "fork", .op = OP_FORK, .expect_result = "ok", .expect_layout = expect_1 },
	{ .line = NULL },
};

#include "common.c"
#include "arena.c"
#include "ops.c"
#include "layout.c"
#include "main.c"
