/* A call's error (0: none) against the contract's `want`; `known` (-1: none) is what this kernel is known to give. */
static void check(const char *what, int err, int want, int known)
{
	tap(err == want, err == known ? KNOWN : NULL, what);
	if (err != want)
		printf("# %s, the contract says %s\n", err ? strerror(err) : "success", want ? strerror(want) : "success");
}
