static int tests, failures;

/* One TAP line; a known deviation (`todo`) is `not ok ... # TODO`, not a failure. */
static void tap(int pass, const char *todo, const char *what)
{
	printf("%sok %d - %s%s%s\n", pass ? "" : "not ", ++tests, what, pass || !todo ? "" : " # TODO ", pass || !todo ? "" : todo);
	failures += !pass && !todo;
}
