/*-------------------------------------------------------------------------
 * converter.c
 *	  The converter helper process: Word and Excel files to PDF, outside
 *	  the server's processes.
 *
 * The signing worker starts workers/ioffice_convert.py (installed in the
 * extension's share directory) as a child of its own, in a process group of
 * its own, and talks to it over two pipes, one line per request and per
 * answer.  The helper keeps one LibreOffice running between files (starting
 * soffice costs seconds).  LibreOffice parses files that came from outside;
 * if it crashes, or a file makes it hang, that costs one job: the worker
 * kills the helper's whole process group (the helper and its soffice) and
 * starts it again for the next file.  The server's processes never load a
 * line of LibreOffice.
 *
 * Nothing here blocks: the worker sends a request, goes on signing, and
 * reads the answer when the pipe is readable (convert_jobs.c).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "miscadmin.h"
#include "storage/ipc.h"

#include "convert.h"

typedef struct ConverterProc
{
	pid_t		pid;			/* 0: not running */
	int			to_fd;			/* its stdin */
	int			from_fd;		/* its stdout, non-blocking */
	char		buf[1024];		/* an answer's line as it arrives */
	int			len;
} ConverterProc;

static ConverterProc helper = {0, -1, -1, {0}, 0};
static bool exit_hook_set = false;

static void
converter_exit_hook(int code, Datum arg)
{
	ioffice_converter_stop();
}

/* the helper script, in the share directory of the server that runs us */
static char *
helper_script(void)
{
	char		share[MAXPGPATH];

	get_share_path(my_exec_path, share);
	return psprintf("%s/extension/ioffice_convert.py", share);
}

/*
 * In the child, before exec: a process group of its own (so that a kill
 * takes soffice with it), the pipes as stdin and stdout, stderr to a log in
 * the work directory, the signals a backend blocks or ignores back to their
 * defaults, and the memory limit.
 */
static void
child_exec(const char *python, const char *script, const char *workdir, int in_fd, int out_fd,
		   int memory_mb)
{
	sigset_t	none;
	char	   *log = psprintf("%s/converter.log", workdir);
	int			log_fd;

	(void) setsid();
	if (dup2(in_fd, STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0)
		_exit(126);
	log_fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (log_fd >= 0)
		(void) dup2(log_fd, STDERR_FILENO);
	for (int s = 1; s < NSIG; s++)
		(void) signal(s, SIG_DFL);
	sigemptyset(&none);
	(void) sigprocmask(SIG_SETMASK, &none, NULL);
	if (memory_mb > 0)
	{
		struct rlimit rl;

		rl.rlim_cur = rl.rlim_max = (rlim_t) memory_mb * 1024 * 1024;
		(void) setrlimit(RLIMIT_AS, &rl);
	}
	execl(python, python, script, workdir, (char *) NULL);
	_exit(127);
}

/*
 * Start the helper; false with *reason when it cannot be.  The helper starts
 * soffice itself, at the first request.
 */
bool
ioffice_converter_start(const char *python, const char *workdir, int memory_mb, char **reason)
{
	int			to_child[2];
	int			from_child[2];
	char	   *script = helper_script();
	pid_t		pid;

	if (helper.pid != 0)
		return true;
	if (access(script, R_OK) != 0)
	{
		*reason = psprintf("the converter script %s is missing", script);
		return false;
	}
	if (access(python, X_OK) != 0)
	{
		*reason = psprintf("the converter's Python %s (setting ioffice.convert_python) cannot be run", python);
		return false;
	}
	if (pipe2(to_child, O_CLOEXEC) != 0)
	{
		*reason = psprintf("could not make a pipe: %m");
		return false;
	}
	if (pipe2(from_child, O_CLOEXEC) != 0)
	{
		*reason = psprintf("could not make a pipe: %m");
		close(to_child[0]);
		close(to_child[1]);
		return false;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0)
	{
		*reason = psprintf("could not start the converter: %m");
		close(to_child[0]);
		close(to_child[1]);
		close(from_child[0]);
		close(from_child[1]);
		return false;
	}
	if (pid == 0)
		child_exec(python, script, workdir, to_child[0], from_child[1], memory_mb);

	close(to_child[0]);
	close(from_child[1]);
	helper.pid = pid;
	helper.to_fd = to_child[1];
	helper.from_fd = from_child[0];
	helper.len = 0;
	(void) fcntl(helper.from_fd, F_SETFL, O_NONBLOCK);
	if (!exit_hook_set)
	{
		/* the helper and its soffice go when the worker goes */
		on_proc_exit(converter_exit_hook, (Datum) 0);
		exit_hook_set = true;
	}
	return true;
}

/* Send one request line; false when the helper is gone. */
bool
ioffice_converter_send(const char *line)
{
	size_t		len = strlen(line);
	size_t		done = 0;

	if (helper.pid == 0)
		return false;
	while (done < len)
	{
		ssize_t		n = write(helper.to_fd, line + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		done += n;
	}
	return true;
}

/*
 * The next answer line, if a whole one has arrived: 1 and *line (palloc'd,
 * without its newline); 0 when none yet; -1 when the helper closed its
 * output (it exited).
 */
int
ioffice_converter_read_line(char **line)
{
	for (;;)
	{
		char	   *nl = memchr(helper.buf, '\n', helper.len);
		ssize_t		n;

		if (nl != NULL)
		{
			int			used = nl - helper.buf + 1;

			*line = pnstrdup(helper.buf, used - 1);
			memmove(helper.buf, helper.buf + used, helper.len - used);
			helper.len -= used;
			return 1;
		}
		if (helper.pid == 0)
			return -1;
		if (helper.len == sizeof(helper.buf))
			helper.len = 0;		/* an absurd line: dropped */
		n = read(helper.from_fd, helper.buf + helper.len, sizeof(helper.buf) - helper.len);
		if (n > 0)
		{
			helper.len += n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		return -1;
	}
}

/* the descriptor to wait on for an answer, or PGINVALID_SOCKET */
pgsocket
ioffice_converter_socket(void)
{
	return helper.pid != 0 ? helper.from_fd : PGINVALID_SOCKET;
}

pid_t
ioffice_converter_pid(void)
{
	return helper.pid;
}

/*
 * Stop the helper and its soffice at once: SIGKILL to the process group
 * (a hung soffice answers nothing else), then reap the helper.
 */
void
ioffice_converter_stop(void)
{
	if (helper.pid == 0)
		return;
	(void) kill(-helper.pid, SIGKILL);
	(void) kill(helper.pid, SIGKILL);
	close(helper.to_fd);
	close(helper.from_fd);
	while (waitpid(helper.pid, NULL, 0) < 0 && errno == EINTR)
		;
	helper.pid = 0;
	helper.to_fd = helper.from_fd = -1;
	helper.len = 0;
}
