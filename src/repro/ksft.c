/* One kselftest result; a known deviation (`todo`) is XFAIL. */
static void tap(int pass, const char *todo, const char *what)
{
	if (pass)
		ksft_test_result_pass("%s\n", what);
	else if (todo)
		ksft_test_result_xfail("%s: %s\n", what, todo);
	else
		ksft_test_result_fail("%s\n", what);
}
