/*-------------------------------------------------------------------------
 * edxml.c
 *	  Running the edXML helper (helpers/ioffice_edxml): reading a received
 *	  package, and signing one with the seal's key.
 *
 * A package from another agency is outside input: it is parsed only by the
 * helper, in a process of its own, under the PDF helper's limits (address
 * space, CPU, wall clock: extension/pdf_helper.c runs both), and only after
 * its size is checked here against ioffice.edxml_max_size.  What the helper
 * answers is JSON: the fields (checked against the standard's limits), the
 * attachments and whether the signature verifies against the trust anchors
 * handed to it.  edxml_receive() (sql/parts/98_edxml.sql) files from that.
 *
 * Packages are built in the backend (edxml_build(), SQL/XML over our own
 * data: libxml2's writer) and left unsigned: the seal's private key is in
 * the worker's keystore only, so the worker signs them with
 * ioffice_edxml_sign(), which runs the helper's "sign" mode.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "storage/pmsignal.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "ioffice.h"

int			ioffice_edxml_max_size = 64;	/* MB */

void
ioffice_edxml_init(void)
{
	DefineCustomIntVariable("ioffice.edxml_max_size",
							"The largest edXML package, in MB, that is read.",
							"A larger package is refused before it is parsed.",
							&ioffice_edxml_max_size,
							64, 1, 1024,
							PGC_SUSET, GUC_UNIT_MB,
							NULL, NULL, NULL);
}

static void
edxml_helper_path(char *path)
{
	snprintf(path, MAXPGPATH, "%s/ioffice_edxml", pkglib_path);
}

/* ------------------------------------------------------------------------
 * The served helper (the worker's)
 * ------------------------------------------------------------------------
 */
#define EDXML_SERVED_REQUESTS 200
#define EDXML_HELPER_NAME "the edXML helper"

static pid_t served_pid = 0;
static int	served_in = -1;			/* we write requests */
static int	served_out = -1;		/* we read answers */
static int	served_requests = 0;

static void
served_kill(void)
{
	if (served_in >= 0)
		close(served_in);
	if (served_out >= 0)
		close(served_out);
	served_in = served_out = -1;
	if (served_pid > 0)
	{
		kill(served_pid, SIGKILL);
		while (waitpid(served_pid, NULL, 0) < 0 && errno == EINTR)
			;
		served_pid = 0;
	}
}

static char *
served_start(void)
{
	char		path[MAXPGPATH];
	char		cpu[16];
	char	   *argv[4];

	edxml_helper_path(path);
	snprintf(cpu, sizeof(cpu), "%d", ioffice_pdf_helper_cpu);
	argv[0] = path;
	argv[1] = "serve";
	argv[2] = cpu;
	argv[3] = NULL;
	served_requests = 0;
	return ioffice_helper_spawn(path, argv, (long) ioffice_pdf_helper_cpu * EDXML_SERVED_REQUESTS + 1,
								&served_pid, &served_in, &served_out);
}

/*
 * Is the answer whole?  "<code> <length>\n" then length bytes: the body is
 * then moved to the start of out, and *code set.
 */
static bool
served_answer_done(StringInfo out, int *code, char **reason)
{
	char	   *nl = memchr(out->data, '\n', Min(out->len, 64));
	int			c;
	long long	len;
	size_t		head;

	if (nl == NULL)
	{
		if (out->len >= 64)
			*reason = pstrdup("the edXML helper's answer is not one");
		return false;
	}
	if (sscanf(out->data, "%d %lld", &c, &len) != 2 || c < 0 || c > 2 || len < 0 ||
		len >= (long long) MaxAllocSize - 64)
	{
		*reason = pstrdup("the edXML helper's answer is not one");
		return false;
	}
	head = nl + 1 - out->data;
	if ((size_t) out->len < head + (size_t) len)
	{
		enlargeStringInfo(out, head + len - out->len);
		return false;
	}
	if ((size_t) out->len > head + (size_t) len)
	{
		*reason = pstrdup("the edXML helper answered more than it said");
		return false;
	}
	memmove(out->data, out->data + head, len);
	out->len = len;
	out->data[len] = '\0';
	*code = c;
	return true;
}

/*
 * One request (its header line, then nparts byte strings) and its answer;
 * NULL, or why it failed (the helper is then to be killed).
 */
static char *
served_talk(const char *header, int nparts, const char *const *parts, const size_t *lens,
			StringInfo out, int *code)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   ioffice_pdf_helper_timeout * 1000);
	int			part = -1;		/* -1: the header */
	size_t		written = 0;
	char	   *reason = NULL;

	for (;;)
	{
		struct pollfd fds[2];
		int			n = 0;
		long		ms = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
		const char *from;
		size_t		left;

		/* the next bytes to write: skip empty parts */
		while (part < nparts &&
			   written == (part < 0 ? strlen(header) : lens[part]))
		{
			part++;
			written = 0;
		}
		CHECK_FOR_INTERRUPTS();
		if (IsUnderPostmaster && !PostmasterIsAlive())
			ereport(FATAL,
					(errcode(ERRCODE_ADMIN_SHUTDOWN),
					 errmsg("terminating: the postmaster died while the edXML helper ran")));
		if (ms <= 0)
			return psprintf("the edXML helper did not finish within %d s", ioffice_pdf_helper_timeout);
		fds[n].fd = served_out;
		fds[n++].events = POLLIN;
		if (part < nparts)
		{
			fds[n].fd = served_in;
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
			ssize_t		w;

			from = part < 0 ? header + written : parts[part] + written;
			left = (part < 0 ? strlen(header) : lens[part]) - written;
			w = write(served_in, from, Min(left, 65536));
			if (w < 0 && errno != EAGAIN && errno != EINTR)
				part = nparts;	/* it is dying: its end says why, below */
			else if (w > 0)
				written += w;
		}
		if (fds[0].revents & (POLLIN | POLLERR | POLLHUP))
		{
			ssize_t		r;

			enlargeStringInfo(out, 65536);
			r = read(served_out, out->data + out->len, 65536);
			if (r < 0 && errno != EAGAIN && errno != EINTR)
				return psprintf("reading the edXML helper's answer: %m");
			if (r == 0)
			{
				int			st;

				/* it ended without a whole answer: why */
				close(served_out);
				served_out = -1;
				while (waitpid(served_pid, &st, 0) < 0 && errno == EINTR)
					;
				served_pid = 0;
				return ioffice_helper_status_reason(EDXML_HELPER_NAME, st);
			}
			if (r > 0)
			{
				out->len += r;
				out->data[out->len] = '\0';
				if (served_answer_done(out, code, &reason))
					return NULL;
				if (reason)
					return reason;
			}
		}
	}
}

/* a request to the served helper; NULL with its answer and code, or why it failed */
static char *
served_request(const char *header, int nparts, const char *const *parts, const size_t *lens,
			   StringInfo out, int *code)
{
	char	   *volatile reason = NULL;

	*code = -1;
	if (served_pid > 0 && served_requests >= EDXML_SERVED_REQUESTS)
		served_kill();
	if (served_pid == 0 && (reason = served_start()) != NULL)
		return reason;
	served_requests++;
	PG_TRY();
	{
		reason = served_talk(header, nparts, parts, lens, out, code);
	}
	PG_CATCH();
	{
		served_kill();
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (reason != NULL)
		served_kill();
	return reason;
}

/*
 * The worker keeps a served helper; a backend runs one per call (it should
 * not keep a process between a session's calls).
 */
static bool
use_served(void)
{
	return IsBackgroundWorker;
}

/* "N\n", the N bytes of pem, then the package: the helper's stdin */
static void
framed_input(StringInfo in, const char *pem, size_t pem_len, const char *pkg, size_t pkg_len)
{
	initStringInfo(in);
	appendStringInfo(in, "%zu\n", pem_len);
	appendBinaryStringInfo(in, pem, pem_len);
	if (pkg_len > (size_t) (MaxAllocSize - in->len - 1))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("the edXML package is too large")));
	appendBinaryStringInfo(in, pkg, pkg_len);
}

/*
 * Read a package: returns the helper's JSON answer (fields, or {"error",
 * "field"} when it refused the package).  Errors when the package is larger
 * than ioffice.edxml_max_size, or when the helper crashed, hung or failed.
 */
char *
ioffice_edxml_read(const char *pkg, size_t pkg_len, const char *trust_pem, size_t trust_len)
{
	char		path[MAXPGPATH];
	char		max[32];
	char	   *argv[4];
	StringInfoData in;
	StringInfoData out;
	bool		truncated = false;
	int			exit_code = -1;
	char	   *reason;
	size_t		limit = (size_t) ioffice_edxml_max_size * 1024 * 1024;

	if (pkg_len > limit)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the edXML package is larger than ioffice.edxml_max_size (%d MB)",
						ioffice_edxml_max_size),
				 errdetail("Field edXML: it has %zu bytes.", pkg_len)));
	if (use_served())
	{
		char		header[128];
		const char *parts[2] = {trust_pem, pkg};
		size_t		lens[2] = {trust_len, pkg_len};
		int			code;

		snprintf(header, sizeof(header), "read %zu %zu %zu\n", limit, trust_len, pkg_len);
		initStringInfo(&out);
		reason = served_request(header, 2, parts, lens, &out, &code);
		if (reason == NULL && code == 1)
			reason = psprintf("the edXML helper failed: %s", out.data);
		if (reason != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
					 errmsg("the edXML package could not be read: %s", reason)));
		return out.data;
	}
	edxml_helper_path(path);
	snprintf(max, sizeof(max), "%zu", limit);
	argv[1] = "read";
	argv[2] = max;
	argv[3] = NULL;
	framed_input(&in, trust_pem, trust_len, pkg, pkg_len);
	initStringInfo(&out);
	reason = ioffice_helper_run_program(path, "the edXML helper", argv, in.data, in.len, &out, 0,
										&truncated, &exit_code);
	pfree(in.data);
	if (reason == NULL && exit_code != 0 && exit_code != 2)
		reason = psprintf("the edXML helper failed (exit status %d)", exit_code);
	if (reason != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("the edXML package could not be read: %s", reason)));
	return out.data;
}

/*
 * Sign a package with the key in key_path (the worker's keystore) and the
 * seal's certificate (PEM): an enveloped XML-DSig signature, RSA-SHA256,
 * the certificate in KeyInfo/X509Data.  The package's nfiles attachments
 * may be left empty: the helper fills their ContentTransferEncoded with
 * the base64 of files (file_lens bytes each), in order.  Returns NULL with
 * the signed package in out, or why it failed.  For the worker (the
 * sending path): its served helper.
 */
char *
ioffice_edxml_sign(const char *pkg, size_t pkg_len, const char *key_path, const char *cert_pem,
				   int nfiles, const char *const *files, const size_t *file_lens, StringInfo out)
{
	StringInfoData header;
	const char **parts = palloc(sizeof(char *) * (nfiles + 3));
	size_t	   *lens = palloc(sizeof(size_t) * (nfiles + 3));
	char	   *reason;
	int			code;

	initStringInfo(&header);
	appendStringInfo(&header, "sign %zu %zu %zu %d", strlen(key_path), strlen(cert_pem), pkg_len,
					 nfiles);
	parts[0] = key_path;
	lens[0] = strlen(key_path);
	parts[1] = cert_pem;
	lens[1] = strlen(cert_pem);
	parts[2] = pkg;
	lens[2] = pkg_len;
	for (int i = 0; i < nfiles; i++)
	{
		appendStringInfo(&header, " %zu", file_lens[i]);
		parts[3 + i] = files[i];
		lens[3 + i] = file_lens[i];
	}
	appendStringInfoChar(&header, '\n');
	if (header.len > 8000)
		return pstrdup("the package has too many attachments for the edXML helper");
	reason = served_request(header.data, nfiles + 3, parts, lens, out, &code);
	pfree(header.data);
	pfree(parts);
	pfree(lens);
	if (reason == NULL && code != 0)
		reason = psprintf("the edXML helper could not sign the package: %s", out->data);
	return reason;
}

/*
 * _edxml_read(package text, trust text) → jsonb: for edxml_receive(); not
 * granted to PUBLIC.
 */
PG_FUNCTION_INFO_V1(ioffice_edxml_read_sql);
Datum
ioffice_edxml_read_sql(PG_FUNCTION_ARGS)
{
	text	   *pkg;
	text	   *trust;
	char	   *answer;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("an edXML package is required")));
	pkg = PG_GETARG_TEXT_PP(0);
	trust = PG_ARGISNULL(1) ? cstring_to_text("") : PG_GETARG_TEXT_PP(1);
	answer = ioffice_edxml_read(VARDATA_ANY(pkg), VARSIZE_ANY_EXHDR(pkg),
								VARDATA_ANY(trust), VARSIZE_ANY_EXHDR(trust));
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(answer)));
}
