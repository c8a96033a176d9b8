/*-------------------------------------------------------------------------
 * text_jobs.c
 *	  The signer process's part in search(): the text of each current PDF,
 *	  docx and xlsx file, for search_text: a PDF's by poppler's pdftotext,
 *	  a docx's or xlsx's by workers/ioffice_text.py (the zip's XML parts,
 *	  read by pattern, bounded).  A doc's or xls's (binary Word and Excel)
 *	  is not read here but by the converter's LibreOffice, which the signer
 *	  never waits for (convert_jobs.c): starting LibreOffice for one file
 *	  held the signer, and every signature queued behind it, for seconds.
 *
 * A trigger on table file queues every such file attached (search_extraction,
 * sql/parts/97_search.sql).  Here, one file at a time: pdftotext runs
 * outside the server (and outside any transaction), beside the signer's
 * loop rather than in it, with
 * the PDF helper's limits (address space, CPU, wall clock: pdf_helper.c;
 * a PDF parser fed with files from outside never runs in a postmaster
 * child), its text is cut at ioffice.search_text_max and stored by
 * ioffice._search_extracted(), which also records the job's outcome.  A PDF
 * larger than ioffice.search_file_max, one pdftotext cannot read, or that
 * makes it crash or hang fails its own job with the reason; the others go
 * on.  A PDF without a text layer (a scan: pdftotext finds almost nothing)
 * is read by OCR (workers/ioffice_text.py ocr, Tesseract in Vietnamese, at
 * most ioffice.search_ocr_pages pages), and its job marked ocr; OCR runs
 * beside the signer's loop too: a scan read for a minute held every
 * signature queued behind it for that minute.
 * A database whose extension predates search (0.1) has nothing to do.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "convert.h"
#include "ioffice.h"
#include "worker.h"

#define PDFTOTEXT_PATH "/usr/bin/pdftotext"

int			ioffice_search_text_max = 1024;	/* kB of text kept per file */
int			ioffice_search_file_max = 64;	/* MB of PDF extracted */
int			ioffice_search_ocr_pages = 10;	/* pages of a scanned PDF read by OCR */

/* the nice value of the text extraction programs (setpriority) */
#define EXTRACT_NICE 10

/* fewer letters than this in a PDF's text layer: a scan, read by OCR */
#define OCR_BELOW_CHARS 16

void
ioffice_text_jobs_init(void)
{
	DefineCustomIntVariable("ioffice.search_text_max",
							"Text kept from one file for search, in kB; the rest is not searched.",
							NULL,
							&ioffice_search_text_max,
							1024, 16, 1024 * 1024,
							PGC_SIGHUP, GUC_UNIT_KB,
							NULL, NULL, NULL);
	DefineCustomIntVariable("ioffice.search_file_max",
							"Largest PDF whose text is extracted for search, in MB.",
							"A larger file fails its extraction job and is found by its document's metadata only.",
							&ioffice_search_file_max,
							64, 1, 1024,
							PGC_SIGHUP, GUC_UNIT_MB,
							NULL, NULL, NULL);
	DefineCustomIntVariable("ioffice.search_ocr_pages",
							"Pages of a scanned PDF (one without a text layer) read by OCR for search; 0: none.",
							"Tesseract with the Vietnamese language data reads them, within ioffice.pdf_helper_timeout.",
							&ioffice_search_ocr_pages,
							10, 0, 1000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);
}

/*
 * The text as valid UTF-8 without NUL bytes (what a text value holds): an
 * invalid sequence becomes a space, and a text cut in the middle of a
 * character loses that character.
 */
void
ioffice_text_clean(StringInfo s)
{
	int			i = 0,
				o = 0;

	while (i < s->len)
	{
		unsigned char c = (unsigned char) s->data[i];
		int			l = pg_utf_mblen(&c);

		if (c == '\0')
		{
			s->data[o++] = ' ';
			i++;
		}
		else if (i + l <= s->len && pg_utf8_islegal((unsigned char *) s->data + i, l))
		{
			memmove(s->data + o, s->data + i, l);
			o += l;
			i += l;
		}
		else if (i + l > s->len)
			break;
		else
		{
			s->data[o++] = ' ';
			i++;
		}
	}
	s->len = o;
	s->data[o] = '\0';
}

/* fewer than OCR_BELOW_CHARS letters or digits: no text layer, a scan */
static bool
nearly_empty(StringInfo text)
{
	int			n = 0;

	for (int i = 0; i < text->len && n < OCR_BELOW_CHARS; i++)
	{
		unsigned char c = (unsigned char) text->data[i];

		/* an ASCII letter or digit, or the first byte of a non-ASCII character */
		if ((c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || c >= 0xC0)
			n++;
	}
	return n < OCR_BELOW_CHARS;
}

/*
 * One extraction at a time runs beside the signer's loop, never in it: the
 * signer starts pdftotext (or the text helper) on a job and goes on with
 * its other steps (signing, the axis's packages); each turn of its loop
 * feeds the program the file and reads its text without waiting
 * (extract_pump), and when it has ended records the outcome.  pdftotext on
 * a 200 KB PDF takes about a tenth of a second of CPU: run in the loop, it
 * set the pace at which the signer filed received edXML packages and sent
 * queued ones (docs/benchmarks.md, edXML).
 */
typedef struct ExtractJob
{
	pid_t		pid;			/* 0: none running */
	int			in_fd;			/* we write the file, -1 when all written */
	int			out_fd;			/* we read the text, -1 at its end */
	int64		file;
	char		kind[16];
	const char *name;			/* in messages */
	char	   *data;			/* the file's bytes, in cxt */
	size_t		len;
	size_t		written;
	StringInfoData text;		/* in cxt */
	bool		truncated;		/* the text reached ioffice.search_text_max */
	bool		ocr;			/* the program running is the OCR helper */
	StringInfoData layer;		/* while it runs, pdftotext's few words */
	TimestampTz deadline;		/* ioffice.pdf_helper_timeout */
} ExtractJob;

static ExtractJob job = {0, -1, -1};
static MemoryContext job_cxt = NULL;

/* the running program ended (or must end now): pipes closed, killed, reaped */
static void
extract_kill(void)
{
	if (job.in_fd >= 0)
		close(job.in_fd);
	if (job.out_fd >= 0)
		close(job.out_fd);
	job.in_fd = job.out_fd = -1;
	if (job.pid > 0)
	{
		kill(job.pid, SIGKILL);
		while (waitpid(job.pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	job.pid = 0;
}

static void
extract_exit_hook(int code, Datum arg)
{
	extract_kill();
}

/*
 * A program just started on the job's bytes (pdftotext, the text helper or
 * the OCR helper): its priority, its wall clock, nothing of the file yet
 * written (nothing to write: its input closed).
 */
static void
extract_started(void)
{
	/*
	 * Search can wait; a signature, a package filed from the axis and its
	 * answer should not: on a machine with few cores the text is read at
	 * a lower priority than the server's own work (a failure only leaves
	 * it at the same priority).
	 */
	(void) setpriority(PRIO_PROCESS, job.pid, EXTRACT_NICE);
	job.written = 0;
	job.truncated = false;
	job.deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
											   ioffice_pdf_helper_timeout * 1000);
	if (job.len == 0)
	{
		close(job.in_fd);
		job.in_fd = -1;
	}
}

/*
 * Start the program on the job's bytes (in job_cxt): NULL, or why it could
 * not start.  The same limits as a program run by ioffice_helper_run_program
 * (address space, CPU, no core file, ends with the signer); the wall clock is
 * watched by extract_pump.
 */
static char *
extract_start(void)
{
	static bool hook_set = false;
	char		share[MAXPGPATH];
	char		max_text[32];
	char	   *pdf_argv[] = {PDFTOTEXT_PATH, "-q", "-enc", "UTF-8", "-nopgbrk", "-", "-", NULL};
	char	   *zip_argv[] = {NULL, "-I", NULL, NULL, max_text, NULL};
	bool		is_pdf = strcmp(job.kind, "pdf") == 0;
	char	   *reason;

	job.name = is_pdf ? "pdftotext" : "the text helper";
	if (job.len > (size_t) ioffice_search_file_max * 1024 * 1024)
		return psprintf("the file is larger than ioffice.search_file_max (%d MB)",
						ioffice_search_file_max);
	if (!hook_set)
	{
		on_proc_exit(extract_exit_hook, (Datum) 0);
		hook_set = true;
	}
	if (is_pdf)
		reason = ioffice_helper_spawn(PDFTOTEXT_PATH, pdf_argv, ioffice_pdf_helper_cpu + 1,
									  &job.pid, &job.in_fd, &job.out_fd);
	else
	{
		get_share_path(my_exec_path, share);
		zip_argv[0] = ioffice_convert_python;
		zip_argv[2] = psprintf("%s/extension/ioffice_text.py", share);
		zip_argv[3] = job.kind;
		snprintf(max_text, sizeof(max_text), "%zu", (size_t) ioffice_search_text_max * 1024);
		reason = ioffice_helper_spawn(ioffice_convert_python, zip_argv, ioffice_pdf_helper_cpu + 1,
									  &job.pid, &job.in_fd, &job.out_fd);
	}
	if (reason != NULL)
	{
		job.pid = 0;
		return psprintf("%s: %s", job.name, reason);
	}

	extract_started();
	return NULL;
}

/*
 * Feed the program and read its text, without waiting: false while it
 * runs; true when its outcome is known, *reason NULL (job.text holds the
 * text) or why there is none.
 */
static bool
extract_pump(char **reason)
{
	size_t		max_out = (size_t) ioffice_search_text_max * 1024;
	int			status;
	pid_t		r;

	*reason = NULL;
	while (job.in_fd >= 0)
	{
		ssize_t		w = write(job.in_fd, job.data + job.written,
							  Min(job.len - job.written, 65536));

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			break;
		if (w < 0 || (job.written += w) == job.len)
		{
			/* all written, or it stopped reading (EPIPE): its exit says why */
			close(job.in_fd);
			job.in_fd = -1;
		}
	}
	while (job.out_fd >= 0)
	{
		ssize_t		n;

		if ((size_t) job.text.len >= max_out)
		{
			/* what search keeps is there: the rest is not read */
			job.truncated = true;
			extract_kill();
			return true;
		}
		enlargeStringInfo(&job.text, Min(65536, max_out - job.text.len));
		n = read(job.out_fd, job.text.data + job.text.len,
				 Min(65536, max_out - job.text.len));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0)
		{
			*reason = psprintf("reading %s's answer: %m", job.name);
			extract_kill();
			return true;
		}
		if (n == 0)
		{
			close(job.out_fd);
			job.out_fd = -1;
			break;
		}
		job.text.len += n;
		job.text.data[job.text.len] = '\0';
	}
	if (job.out_fd < 0)
	{
		/* its text has ended: it is exiting */
		r = waitpid(job.pid, &status, WNOHANG);
		if (r == job.pid)
		{
			job.pid = 0;
			extract_kill();		/* the pipe left */
			if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
				return true;
			if (job.ocr && WIFEXITED(status) && WEXITSTATUS(status) == 3)
				*reason = pstrdup("Tesseract or its Vietnamese language data (tesseract-ocr-vie) is not installed");
			else if (WIFEXITED(status) && WEXITSTATUS(status) <= 2)
				*reason = psprintf("%s could not read the %s file (exit status %d)",
								   job.name, job.kind, WEXITSTATUS(status));
			else
				*reason = ioffice_helper_status_reason(job.name, status);
			return true;
		}
		if (r < 0 && errno != EINTR)
		{
			*reason = psprintf("waitpid: %m");
			job.pid = 0;
			extract_kill();
			return true;
		}
	}
	if (GetCurrentTimestamp() >= job.deadline)
	{
		*reason = psprintf("%s did not finish within %d s", job.name, ioffice_pdf_helper_timeout);
		extract_kill();
		return true;
	}
	return false;
}

/*
 * A scan (pdftotext found almost nothing): the OCR helper started on the
 * same bytes (workers/ioffice_text.py ocr: pdftoppm's page images read by
 * Tesseract in Vietnamese), under the same limits and priority, told to end
 * in fewer seconds than the wall clock allows; pdftotext's few words are
 * kept in job.layer in case it fails.  In job_cxt.  NULL, or why it could
 * not start.
 */
static char *
ocr_start(void)
{
	char		share[MAXPGPATH];
	char		max_text[32];
	char		pages[16];
	char		seconds[16];
	char	   *argv[] = {NULL, "-I", NULL, "ocr", max_text, pages, seconds, NULL};
	char	   *reason;

	get_share_path(my_exec_path, share);
	argv[0] = ioffice_convert_python;
	argv[2] = psprintf("%s/extension/ioffice_text.py", share);
	snprintf(max_text, sizeof(max_text), "%zu", (size_t) ioffice_search_text_max * 1024);
	snprintf(pages, sizeof(pages), "%d", ioffice_search_ocr_pages);
	snprintf(seconds, sizeof(seconds), "%d", Max(ioffice_pdf_helper_timeout - 5,
												 ioffice_pdf_helper_timeout * 3 / 4));
	reason = ioffice_helper_spawn(ioffice_convert_python, argv, ioffice_pdf_helper_cpu + 1,
								  &job.pid, &job.in_fd, &job.out_fd);
	if (reason != NULL)
	{
		job.pid = 0;
		return reason;
	}
	job.ocr = true;
	job.name = "the OCR helper";
	initStringInfo(&job.layer);
	appendBinaryStringInfo(&job.layer, job.text.data, job.text.len);
	resetStringInfo(&job.text);
	extract_started();
	return NULL;
}

/* the next job and its file's bytes (into job_cxt): false when none waits */
static bool
extract_next(void)
{
	bool		isnull;
	bool		found = false;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	if (SPI_execute("SELECT pg_catalog.to_regclass('ioffice.search_extraction') IS NOT NULL",
					true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "ioffice: could not look for search_extraction");
	if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
	{
		if (SPI_execute("SELECT j.file_id, f.content, f.kind FROM ioffice.search_extraction j "
						"JOIN ioffice.file f ON f.id = j.file_id "
						"WHERE j.done_at IS NULL AND f.kind NOT IN " IOFFICE_CONVERTER_TEXT_KINDS_SQL
						" ORDER BY j.file_id LIMIT 1", true, 1) != SPI_OK_SELECT)
			elog(ERROR, "ioffice: could not read the text extraction queue");
		if (SPI_processed == 1)
		{
			bytea	   *content;

			job.file = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
												   &isnull));
			content = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2,
													&isnull));
			job.len = VARSIZE_ANY_EXHDR(content);
			job.data = MemoryContextAlloc(job_cxt, job.len + 1);
			memcpy(job.data, VARDATA_ANY(content), job.len);
			strlcpy(job.kind, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3),
					sizeof(job.kind));
			found = true;
		}
	}
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	return found;
}

/*
 * What came of the job, recorded by _search_extracted(), which first locks
 * the job and keeps nothing for a file that was replaced or removed
 * meanwhile (the trigger that removes it takes the same lock).
 */
static void
extract_record(char *reason, bool ocr)
{
	Oid			argtypes[3] = {INT8OID, TEXTOID, TEXTOID};
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};

	if (reason == NULL)
		ioffice_text_clean(&job.text);
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	values[0] = Int64GetDatum(job.file);
	values[1] = reason ? (Datum) 0 : CStringGetTextDatum(job.text.data);
	nulls[1] = reason ? 'n' : ' ';
	values[2] = reason ? CStringGetTextDatum(reason) : (Datum) 0;
	nulls[2] = reason ? ' ' : 'n';
	if (SPI_execute_with_args("SELECT ioffice._search_extracted($1, $2, $3)", 3, argtypes,
							  values, nulls, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "ioffice: could not record the text of file %lld", (long long) job.file);
	/* the text was read by OCR (sql/parts/99_search_ocr.sql) */
	if (ocr && SPI_execute_with_args("UPDATE ioffice.search_extraction SET ocr = true "
									 "WHERE file_id = $1 AND done_at IS NOT NULL AND error IS NULL",
									 1, argtypes, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "ioffice: could not mark the text of file %lld as OCR", (long long) job.file);
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	if (reason)
		elog(LOG, "ioffice: no text extracted from file %lld: %s", (long long) job.file, reason);
}

/*
 * A turn of the extraction: the running job fed and read; when it has
 * ended, its outcome recorded; when none runs, the next one started.  True
 * when a job's outcome was recorded (there may be more).  No lock and no
 * snapshot is held while the program runs.
 */
bool
ioffice_worker_extract_step(void)
{
	MemoryContext oldcxt;
	char	   *reason;
	bool		ended;
	bool		ocr;

	if (job_cxt == NULL)
		job_cxt = AllocSetContextCreate(TopMemoryContext, "ioffice text extraction",
										ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(job_cxt);
	if (job.pid == 0)
	{
		MemoryContextReset(job_cxt);
		job.file = 0;
		job.ocr = false;
		MemoryContextSwitchTo(oldcxt);
		if (!extract_next())
			return false;
		MemoryContextSwitchTo(job_cxt);
		initStringInfo(&job.text);
		reason = extract_start();
		ended = reason != NULL;
		if (!ended)
			ended = extract_pump(&reason);
	}
	else
		ended = extract_pump(&reason);
	if (ended && !job.ocr && reason == NULL && strcmp(job.kind, "pdf") == 0 &&
		ioffice_search_ocr_pages > 0 && nearly_empty(&job.text))
	{
		/* a scan: read again, by OCR, on the next turns */
		char	   *why = ocr_start();

		if (why == NULL)
			ended = false;
		else
			elog(LOG, "ioffice: no OCR of a scanned PDF (file %lld): the OCR helper: %s",
				 (long long) job.file, why);
	}
	MemoryContextSwitchTo(oldcxt);
	if (!ended)
	{
		pgstat_report_activity(STATE_RUNNING,
							   job.ocr ? "ioffice worker: reading a scanned PDF by OCR for search"
							   : "ioffice worker: extracting a file's text for search");
		return false;
	}
	ocr = false;
	if (job.ocr)
	{
		/* the OCR text; or, with the reason logged, the layer's few words */
		if (reason == NULL)
			ocr = true;
		else
		{
			elog(LOG, "ioffice: no OCR of a scanned PDF (file %lld): %s",
				 (long long) job.file, reason);
			reason = NULL;
			resetStringInfo(&job.text);
			appendBinaryStringInfo(&job.text, job.layer.data, job.layer.len);
		}
	}
	extract_record(reason, ocr);
	MemoryContextReset(job_cxt);
	job.file = 0;
	job.ocr = false;
	pgstat_report_activity(STATE_IDLE, NULL);
	return true;
}

/*
 * The signer's state in worker_status while a program runs beside its loop
 * (the loop's other steps are done by then): NULL when none runs
 */
const char *
ioffice_worker_extract_state(void)
{
	if (job.pid == 0)
		return NULL;
	return job.ocr ? "reading a scan (OCR)" : "extracting text";
}

/*
 * The pipes of the program running beside the loop, for the signer's sleep
 * (worker.c): *in_fd the one it reads the file from (-1 once all written),
 * *out_fd the one its text comes on (-1 at its end).  Returns how long the
 * signer may sleep watching them: until the program's wall clock runs out,
 * or a little while when neither is open (it is exiting, to be reaped).
 */
long
ioffice_worker_extract_watch(long max_ms, int *in_fd, int *out_fd)
{
	*in_fd = *out_fd = -1;
	if (job.pid == 0)
		return max_ms;
	*in_fd = job.in_fd;
	*out_fd = job.out_fd;
	if (job.in_fd < 0 && job.out_fd < 0)
		return Min(max_ms, 10L);
	return Min(max_ms, TimestampDifferenceMilliseconds(GetCurrentTimestamp(), job.deadline) + 1);
}

/*
 * how long the signer may sleep where it does not watch the pipes (on
 * remote signing calls, the axis's sockets): a little while a program runs
 */
long
ioffice_worker_extract_wait_ms(long max_ms)
{
	return job.pid != 0 ? Min(max_ms, 10L) : max_ms;
}
