static int child_wait[2];

/* fork(2); the child waits on a pipe, so that its smaps can be read, until end_child(). */
static pid_t fork_child(void)
{
	char byte;
	pid_t pid;

	if (pipe(child_wait))
		return -1;
	pid = fork();
	if (pid == 0) {
		close(child_wait[1]);
		_exit(read(child_wait[0], &byte, 1) < 0);
	}
	close(child_wait[0]);
	return pid;
}

static void end_child(pid_t pid)
{
	close(child_wait[1]);
	waitpid(pid, NULL, 0);
}
