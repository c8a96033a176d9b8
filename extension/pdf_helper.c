/*-------------------------------------------------------------------------
 * pdf_helper.c
 *	  Running the PDF helper (helpers/ioffice_pdf) in a process of its own.
 *
 * Backends and the background workers are postmaster children: if one of
 * them dies of a signal, the postmaster ends every backend and restarts.  A
 * PDF parser fed with files from outside must therefore not run in them.
 * The signer (a PAdES signature) and verify() (the signatures a PDF
 * carries) exec the helper, as COPY ... PROGRAM does, with
 *   - RLIMIT_AS: ioffice.pdf_helper_memory (MB) of address space,
 *   - RLIMIT_CPU: ioffice.pdf_helper_cpu seconds of CPU,
 *   - a wall-clock limit, ioffice.pdf_helper_timeout seconds, after which
 *     it is killed (SIGKILL),
 *   - no core file, its own stdin/stdout pipes, stderr to /dev/null.
 * The helper is not a postmaster child: its crash or hang costs the one job
 * or verify() call that ran it, which gets the reason.  While waiting the
 * caller stays cancellable; a cancel or any error kills the helper first.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "miscadmin.h"
#include "storage/pmsignal.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "ioffice.h"

int			ioffice_pdf_helper_memory = 1024;	/* MB */
int			ioffice_pdf_helper_cpu = 30;	/* s */
int			ioffice_pdf_helper_timeout = 60;	/* s */

/* the most the helper may answer: a prepared PDF is the input and a bit */
#define HELPER_MAX_OUTPUT ((size_t) MaxAllocSize - 1)

void
ioffice_pdf_helper_init(void)
{
	DefineCustomIntVariable("ioffice.pdf_helper_memory",
							"Address space, in MB, of the process that reads and writes PDFs.",
							"A PDF that needs more fails its job (or its verify() row).",
							&ioffice_pdf_helper_memory,
							1024, 64, 65536,
							PGC_SIGHUP, GUC_UNIT_MB,
							NULL, NULL, NULL);
	DefineCustomIntVariable("ioffice.pdf_helper_cpu",
							"CPU seconds the process that reads and writes PDFs may use.",
							NULL,
							&ioffice_pdf_helper_cpu,
							30, 1, 3600,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomIntVariable("ioffice.pdf_helper_timeout",
							"Seconds after which the process that reads and writes PDFs is killed.",
							NULL,
							&ioffice_pdf_helper_timeout,
							60, 1, 3600,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);
}

/* the helper's path: beside the extension's library */
static void
helper_path(char *path)
{
	snprintf(path, MAXPGPATH, "%s/ioffice_pdf", pkglib_path);
}

/*
 * In the child, between fork() and exec(): only async-signal-safe calls.
 */
static void
child_exec(const char *path, char *const argv[], int in_fd, int out_fd, rlim_t cpu_hard)
{
	struct rlimit rl;
	sigset_t	none;
	int			devnull = open("/dev/null", O_WRONLY);

	if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || devnull < 0 || dup2(devnull, 2) < 0)
		_exit(126);
	rl.rlim_cur = rl.rlim_max = (rlim_t) ioffice_pdf_helper_memory * 1024 * 1024;
	setrlimit(RLIMIT_AS, &rl);
	rl.rlim_cur = (rlim_t) ioffice_pdf_helper_cpu;
	rl.rlim_max = cpu_hard;
	setrlimit(RLIMIT_CPU, &rl);
	/* it ends with its parent (a served helper would otherwise linger) */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	rl.rlim_cur = rl.rlim_max = 0;
	setrlimit(RLIMIT_CORE, &rl);
	/* a backend blocks signals at times; the helper must feel SIGXCPU */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGXCPU, SIG_DFL);
	execv(path, argv);
	_exit(127);
}

typedef struct HelperProc
{
	pid_t		pid;
	int			in_fd;			/* we write the PDF */
	int			out_fd;			/* we read the answer */
	const char *name;			/* in messages: "the PDF helper", "pdftotext" */
} HelperProc;

static void
helper_kill(HelperProc *h)
{
	if (h->in_fd >= 0)
		close(h->in_fd);
	if (h->out_fd >= 0)
		close(h->out_fd);
	h->in_fd = h->out_fd = -1;
	if (h->pid > 0)
	{
		kill(h->pid, SIGKILL);
		while (waitpid(h->pid, NULL, 0) < 0 && errno == EINTR)
			;
		h->pid = 0;
	}
}

static char *
status_reason(const char *name, int status)
{
	if (WIFSIGNALED(status))
	{
		int			sig = WTERMSIG(status);

		if (sig == SIGXCPU)
			return psprintf("%s used more than %d s of CPU", name, ioffice_pdf_helper_cpu);
		return psprintf("%s was killed by signal %d (%s)", name, sig, strsignal(sig));
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		return psprintf("%s could not be started", name);
	return psprintf("%s failed (exit status %d)", name,
					WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/*
 * A postmaster child whose postmaster died must go (the next postmaster
 * cannot start while it holds the shared memory), not wait out the helper's
 * deadline: its helper dies with it (PR_SET_PDEATHSIG).
 */
static void
check_postmaster(const HelperProc *h)
{
	if (IsUnderPostmaster && !PostmasterIsAlive())
		ereport(FATAL,
				(errcode(ERRCODE_ADMIN_SHUTDOWN),
				 errmsg("terminating: the postmaster died while %s ran", h->name)));
}

/*
 * Pump the input in and the answer out until the helper closes its stdout,
 * then reap it; all within the deadline.  Returns NULL or why it failed.
 * With max_out, an answer that reaches max_out bytes is cut there and the
 * helper is not waited for (*truncated; the caller kills it).
 */
static char *
helper_talk(HelperProc *h, const char *in, size_t in_len, StringInfo out, size_t max_out,
			bool *truncated, int *exit_code)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   ioffice_pdf_helper_timeout * 1000);
	size_t		written = 0;
	int			status;

	if (in_len == 0)
	{
		close(h->in_fd);
		h->in_fd = -1;
	}
	while (h->out_fd >= 0)
	{
		struct pollfd fds[2];
		int			n = 0;
		long		ms = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);

		CHECK_FOR_INTERRUPTS();
		check_postmaster(h);
		if (ms <= 0)
			return psprintf("%s did not finish within %d s", h->name, ioffice_pdf_helper_timeout);
		fds[n].fd = h->out_fd;
		fds[n++].events = POLLIN;
		if (h->in_fd >= 0)
		{
			fds[n].fd = h->in_fd;
			fds[n++].events = POLLOUT;
		}
		if (poll(fds, n, Min(ms, 100)) < 0)
		{
			if (errno == EINTR)
				continue;
			return psprintf("poll: %m");
		}
		if (n == 2 && (fds[1].revents & (POLLOUT | POLLERR | POLLHUP)))
		{
			ssize_t		w = write(h->in_fd, in + written, Min(in_len - written, 65536));

			if (w < 0 && errno != EAGAIN && errno != EINTR)
			{
				/* it stopped reading (EPIPE): its exit status says why */
				close(h->in_fd);
				h->in_fd = -1;
			}
			else if (w > 0 && (written += w) == in_len)
			{
				close(h->in_fd);
				h->in_fd = -1;
			}
		}
		if (fds[0].revents & (POLLIN | POLLERR | POLLHUP))
		{
			ssize_t		r;
			size_t		room = 65536;

			if (max_out > 0)
			{
				if ((size_t) out->len >= max_out)
				{
					*truncated = true;
					*exit_code = 0;
					return NULL;
				}
				room = Min(room, max_out - out->len);
			}
			else if (out->len + 65536 >= HELPER_MAX_OUTPUT)
				return psprintf("%s answered too much", h->name);
			enlargeStringInfo(out, room);
			r = read(h->out_fd, out->data + out->len, room);
			if (r < 0 && errno != EAGAIN && errno != EINTR)
				return psprintf("reading the PDF helper's answer: %m");
			if (r == 0)
			{
				close(h->out_fd);
				h->out_fd = -1;
			}
			else if (r > 0)
			{
				out->len += r;
				out->data[out->len] = '\0';
			}
		}
	}
	/* it closed its output: it is exiting, or it lingers (killed at the deadline) */
	for (;;)
	{
		pid_t		r = waitpid(h->pid, &status, WNOHANG);

		if (r == h->pid)
			break;
		if (r < 0 && errno != EINTR)
		{
			h->pid = 0;
			return psprintf("waitpid: %m");
		}
		CHECK_FOR_INTERRUPTS();
		check_postmaster(h);
		if (TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline) <= 0)
			return psprintf("%s did not finish within %d s", h->name, ioffice_pdf_helper_timeout);
		pg_usleep(2000);
	}
	h->pid = 0;
	if (WIFEXITED(status) && (WEXITSTATUS(status) == 0 || WEXITSTATUS(status) <= 2))
	{
		*exit_code = WEXITSTATUS(status);
		return NULL;
	}
	return status_reason(h->name, status);
}

/*
 * Run the helper with argv (argv[0] is set here), in on its stdin.  On a
 * normal exit returns NULL with its answer in out and its exit status (0
 * answered, 1 failed, 2 not a PDF it can read) in *exit_code; else the
 * reason it crashed, hung, or could not run.  Never raises an error for
 * what the helper did; cancels and errors of the caller kill it.
 */
char *
ioffice_pdf_helper_run(char **argv, const char *in, size_t in_len, StringInfo out,
					   int *exit_code)
{
	char		path[MAXPGPATH];
	bool		truncated = false;

	helper_path(path);
	return ioffice_helper_run_program(path, "the PDF helper", argv, in, in_len, out, 0,
									  &truncated, exit_code);
}

/*
 * The same for another program (path: its absolute path; name: what the
 * messages call it), under the same limits: pdftotext for search
 * (workers/text_jobs.c).  With max_out, its answer is cut at max_out bytes
 * (*truncated) rather than refused.
 */
char *
ioffice_helper_run_program(const char *path, const char *name, char **argv,
						   const char *in, size_t in_len, StringInfo out, size_t max_out,
						   bool *truncated, int *exit_code)
{
	int			in_pipe[2] = {-1, -1};
	int			out_pipe[2] = {-1, -1};
	HelperProc	h = {0, -1, -1, name};
	char	   *volatile reason = NULL;

	*exit_code = -1;
	*truncated = false;
	argv[0] = unconstify(char *, path);
	if (access(path, X_OK) != 0)
		return psprintf("%s (%s) cannot be run: %m", name, path);
	if (pipe(in_pipe) != 0 || pipe(out_pipe) != 0)
	{
		reason = psprintf("pipe: %m");
		goto fail;
	}
	fflush(NULL);
	h.pid = fork();
	if (h.pid == 0)
	{
		close(in_pipe[1]);
		close(out_pipe[0]);
		child_exec(path, argv, in_pipe[0], out_pipe[1], (rlim_t) ioffice_pdf_helper_cpu + 1);
	}
	if (h.pid < 0)
	{
		h.pid = 0;
		reason = psprintf("fork: %m");
		goto fail;
	}
	close(in_pipe[0]);
	close(out_pipe[1]);
	h.in_fd = in_pipe[1];
	h.out_fd = out_pipe[0];
	fcntl(h.in_fd, F_SETFL, O_NONBLOCK);
	fcntl(h.out_fd, F_SETFL, O_NONBLOCK);

	PG_TRY();
	{
		reason = helper_talk(&h, in, in_len, out, max_out, truncated, exit_code);
	}
	PG_CATCH();
	{
		helper_kill(&h);
		PG_RE_THROW();
	}
	PG_END_TRY();
	helper_kill(&h);
	return reason;

fail:
	for (int i = 0; i < 2; i++)
	{
		if (in_pipe[i] >= 0)
			close(in_pipe[i]);
		if (out_pipe[i] >= 0)
			close(out_pipe[i]);
	}
	return reason;
}

/*
 * Start another served helper (path, argv with argv[0] set) under the same
 * limits, its CPU hard limit cpu_hard seconds: the edXML helper's serve
 * mode (extension/edxml.c), which talks its own protocol.  Returns NULL
 * with its pid and non-blocking pipe ends, or why it could not start.
 */
char *
ioffice_helper_spawn(const char *path, char **argv, long cpu_hard, pid_t *pid, int *in_fd,
					 int *out_fd)
{
	int			in_pipe[2] = {-1, -1};
	int			out_pipe[2] = {-1, -1};

	*pid = 0;
	*in_fd = *out_fd = -1;
	if (access(path, X_OK) != 0)
		return psprintf("%s cannot be run: %m", path);
	if (pipe(in_pipe) != 0 || pipe(out_pipe) != 0)
	{
		for (int i = 0; i < 2; i++)
		{
			if (in_pipe[i] >= 0)
				close(in_pipe[i]);
			if (out_pipe[i] >= 0)
				close(out_pipe[i]);
		}
		return psprintf("pipe: %m");
	}
	fflush(NULL);
	*pid = fork();
	if (*pid == 0)
	{
		close(in_pipe[1]);
		close(out_pipe[0]);
		child_exec(path, argv, in_pipe[0], out_pipe[1], (rlim_t) cpu_hard);
	}
	close(in_pipe[0]);
	close(out_pipe[1]);
	if (*pid < 0)
	{
		*pid = 0;
		close(in_pipe[1]);
		close(out_pipe[0]);
		return psprintf("fork: %m");
	}
	*in_fd = in_pipe[1];
	*out_fd = out_pipe[0];
	fcntl(*in_fd, F_SETFL, O_NONBLOCK);
	fcntl(*out_fd, F_SETFL, O_NONBLOCK);
	return NULL;
}

/* why a helper (name) ended with status (waitpid's) */
char *
ioffice_helper_status_reason(const char *name, int status)
{
	return status_reason(name, status);
}

/* ------------------------------------------------------------------------
 * The served helper: one process for many requests of the worker
 *
 * Starting a process costs more than preparing a small PDF (tens of
 * milliseconds here: fork, exec, two dozen shared libraries), so the worker
 * keeps one helper ("ioffice_pdf serve") between jobs.  The limits stay:
 * the same address space; the CPU budget renewed by the helper for each
 * request, under a hard limit of SERVED_REQUESTS budgets; the wall clock per
 * request, here.  Any failure (a crash, a hang, an answer that is not one)
 * kills it; the next request starts a new one, and so does every
 * SERVED_REQUESTS-th request.
 * ------------------------------------------------------------------------
 */
#define SERVED_REQUESTS 200

static HelperProc served = {0, -1, -1, "the PDF helper"};
static int	served_requests = 0;

static char *
served_start(void)
{
	char		path[MAXPGPATH];
	char		cpu[16];
	char	   *argv[4];
	int			in_pipe[2] = {-1, -1};
	int			out_pipe[2] = {-1, -1};

	helper_path(path);
	if (access(path, X_OK) != 0)
		return psprintf("the PDF helper %s cannot be run: %m", path);
	snprintf(cpu, sizeof(cpu), "%d", ioffice_pdf_helper_cpu);
	argv[0] = path;
	argv[1] = "serve";
	argv[2] = cpu;
	argv[3] = NULL;
	if (pipe(in_pipe) != 0 || pipe(out_pipe) != 0)
	{
		for (int i = 0; i < 2; i++)
		{
			if (in_pipe[i] >= 0)
				close(in_pipe[i]);
			if (out_pipe[i] >= 0)
				close(out_pipe[i]);
		}
		return psprintf("pipe: %m");
	}
	fflush(NULL);
	served.pid = fork();
	if (served.pid == 0)
	{
		close(in_pipe[1]);
		close(out_pipe[0]);
		child_exec(path, argv, in_pipe[0], out_pipe[1],
				   (rlim_t) ioffice_pdf_helper_cpu * SERVED_REQUESTS + 1);
	}
	close(in_pipe[0]);
	close(out_pipe[1]);
	if (served.pid < 0)
	{
		served.pid = 0;
		close(in_pipe[1]);
		close(out_pipe[0]);
		return psprintf("fork: %m");
	}
	served.in_fd = in_pipe[1];
	served.out_fd = out_pipe[0];
	fcntl(served.in_fd, F_SETFL, O_NONBLOCK);
	fcntl(served.out_fd, F_SETFL, O_NONBLOCK);
	served_requests = 0;
	return NULL;
}

/*
 * Is the answer complete?  "ok b0 b1 b2 b3 <len>[ note]\n", len bytes,
 * "status 0\n"; or
 * lines ending with "status <n>\n".  Sets *status and cuts the status line.
 */
static bool
served_answer_done(StringInfo out, int *status)
{
	char	   *last;
	long long	len = -1;
	size_t		body_end = 0;

	if (out->len == 0 || out->data[out->len - 1] != '\n')
		return false;
	if (strncmp(out->data, "ok ", 3) == 0)
	{
		char	   *nl = memchr(out->data, '\n', out->len);

		if (nl == NULL)
			return false;
		/* the fifth number (a note may follow it: the issue stamp's) */
		*nl = '\0';
		{
			long long	b[4];

			if (sscanf(out->data + 3, "%lld %lld %lld %lld %lld", &b[0], &b[1], &b[2], &b[3], &len) != 5)
				len = -1;
		}
		*nl = '\n';
		if (len < 0)
			return false;
		body_end = (nl + 1 - out->data) + len;
		if ((size_t) out->len < body_end + 9)	/* "status 0\n" */
			return false;
		last = out->data + body_end;
	}
	else
	{
		/* the last line */
		last = out->data + out->len - 1;
		while (last > out->data && last[-1] != '\n')
			last--;
	}
	if (strncmp(last, "status ", 7) != 0 || out->data + out->len - last > 16)
		return false;
	*status = atoi(last + 7);
	out->len = last - out->data;
	out->data[out->len] = '\0';
	return true;
}

static void
served_kill(void)
{
	helper_kill(&served);
}

/* the exchange of one request; NULL or why it failed (the helper is then gone) */
static char *
served_talk(const char *header, const char *in, size_t in_len, StringInfo out, int *status)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   ioffice_pdf_helper_timeout * 1000);
	size_t		hlen = strlen(header);
	size_t		written = 0;

	for (;;)
	{
		struct pollfd fds[2];
		int			n = 0;
		long		ms = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
		bool		writing = written < hlen + in_len;

		CHECK_FOR_INTERRUPTS();
		if (ms <= 0)
			return psprintf("the PDF helper did not finish within %d s", ioffice_pdf_helper_timeout);
		fds[n].fd = served.out_fd;
		fds[n++].events = POLLIN;
		if (writing)
		{
			fds[n].fd = served.in_fd;
			fds[n++].events = POLLOUT;
		}
		if (poll(fds, n, Min(ms, 100)) < 0)
		{
			if (errno == EINTR)
				continue;
			return psprintf("poll: %m");
		}
		if (n == 2 && (fds[1].revents & (POLLOUT | POLLERR | POLLHUP)))
		{
			const char *from = written < hlen ? header + written : in + (written - hlen);
			size_t		left = written < hlen ? hlen - written : hlen + in_len - written;
			ssize_t		w = write(served.in_fd, from, Min(left, 65536));

			if (w < 0 && errno != EAGAIN && errno != EINTR)
				writing = false;	/* it is dying: its end says why, below */
			else if (w > 0)
				written += w;
		}
		if (fds[0].revents & (POLLIN | POLLERR | POLLHUP))
		{
			ssize_t		r;

			if (out->len + 65536 >= HELPER_MAX_OUTPUT)
				return pstrdup("the PDF helper answered too much");
			enlargeStringInfo(out, 65536);
			r = read(served.out_fd, out->data + out->len, 65536);
			if (r < 0 && errno != EAGAIN && errno != EINTR)
				return psprintf("reading the PDF helper's answer: %m");
			if (r == 0)
			{
				int			st;

				/* it ended without a whole answer: why */
				close(served.out_fd);
				served.out_fd = -1;
				while (waitpid(served.pid, &st, 0) < 0 && errno == EINTR)
					;
				served.pid = 0;
				return status_reason(served.name, st);
			}
			if (r > 0)
			{
				out->len += r;
				out->data[out->len] = '\0';
				if (served_answer_done(out, status))
					return NULL;
			}
		}
	}
}

/*
 * One "prepare" (or "signatures") request to the served helper: header is
 * "prepare\t<len>\t<time>\t<room>\t<name>\t<reason>\n".  Returns NULL with
 * the answer in out and its status (0, 1, 2 as ioffice_pdf_helper_run), or
 * why the helper failed (it is then killed, and started anew next time).
 */
char *
ioffice_pdf_helper_serve(const char *header, const char *in, size_t in_len, StringInfo out,
						 int *status)
{
	char	   *volatile reason = NULL;

	*status = -1;
	if (served.pid > 0 && served_requests >= SERVED_REQUESTS)
		served_kill();
	if (served.pid == 0 && (reason = served_start()) != NULL)
		return reason;
	served_requests++;
	PG_TRY();
	{
		reason = served_talk(header, in, in_len, out, status);
	}
	PG_CATCH();
	{
		served_kill();
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (reason != NULL)
		served_kill();
	else if (*status == 1 && strstr(out->data, "out of memory") != NULL)
		served_kill();			/* it ends itself; reap it now */
	return reason;
}

/*
 * The same request to a helper started for it alone ("serve" reading one
 * request, then the end of its input): for a backend, which should not keep
 * a helper between its calls (signing_request()).
 */
char *
ioffice_pdf_helper_once(const char *header, const char *in, size_t in_len, StringInfo out,
						int *status)
{
	char		cpu[16];
	char	   *argv[4] = {NULL, "serve", cpu, NULL};
	StringInfoData request;
	char	   *reason;
	int			exit_code;

	*status = -1;
	snprintf(cpu, sizeof(cpu), "%d", ioffice_pdf_helper_cpu);
	initStringInfo(&request);
	appendStringInfoString(&request, header);
	appendBinaryStringInfo(&request, in, in_len);
	reason = ioffice_pdf_helper_run(argv, request.data, request.len, out, &exit_code);
	pfree(request.data);
	if (reason != NULL)
		return reason;
	if (exit_code != 0 || !served_answer_done(out, status))
		return pstrdup("the PDF helper gave no answer");
	return NULL;
}
