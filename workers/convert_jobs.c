/*-------------------------------------------------------------------------
 * convert_jobs.c
 *	  The signer's conversions: a signature of a Word or Excel file signs
 *	  the PDF made from it.
 *
 * A leader signs what will be issued, and what is issued is a PDF.  So a
 * pending signature whose file is a doc, docx, xls, xlsx, odt or ods is not
 * signed as it is (sign_jobs.c leaves it alone): the signer process has the
 * converter helper (converter.c, LibreOffice outside the server) make a PDF
 * of it, then records, in one transaction:
 *   - the PDF as the document's current file, a new version that replaces
 *     the Word file (replaces_id) and names it as its source
 *     (converted_from); the Word file is kept, superseded;
 *   - the file's pending signatures moved to the PDF, which the next batch
 *     signs;
 *   - an audit record "convert" with both files' SHA-256.
 * The PDF is made from the exact bytes that were to be signed: their
 * SHA-256 is checked against the file row's before the conversion, and the
 * job must still be pending on that same, still current, file after it.
 * A document whose files are frozen (approved, or issued: the clerk's seal
 * on a Word file) accepts this one new version and no other: the trigger on
 * table file lets through only the statements made here while
 * ioffice_conversion_source names the file converted (files.c).
 *
 * One file at a time, and never waited for: the request goes to the helper
 * and the signer goes on signing other documents; its answer is read when
 * the pipe is readable.  A file that takes longer than
 * ioffice.convert_timeout seconds has the helper and its soffice killed
 * (restarted for the next file); a file LibreOffice cannot open, or that
 * crashes it, fails its jobs with the reason.  A crash of the worker
 * loses nothing: the jobs are still pending and are converted again.
 *
 * The same helper reads the text of legacy Word (doc) and Excel (xls)
 * files for search() when no signature waits for a conversion: a job of
 * search_extraction (sql/parts/97_search.sql) whose file is one of those
 * is handed over like a conversion (the request asks for text), under the
 * same time limit, and its answer recorded by _search_extracted().  The
 * signer's own text step (text_jobs.c) leaves these jobs alone: LibreOffice
 * takes seconds on a file (more to start), and while it read one there no
 * signature was made.  A signature's conversion may wait for the text of
 * one file (at most ioffice.convert_timeout).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "convert.h"
#include "ioffice.h"
#include "worker.h"

int			ioffice_convert_timeout = 60;
int			ioffice_convert_memory_limit = 2048;
char	   *ioffice_convert_python = NULL;

/* the file being converted, while this process records its PDF (files.c) */
int64		ioffice_conversion_source = 0;

/* how long soffice may take to start, on top of a file's time limit */
#define SOFFICE_START_ALLOWANCE_S 60

/* the largest PDF taken (a bytea holds at most 1 GB) */
#define MAX_PDF_BYTES (512 * 1024 * 1024)

/* the conversion under way, in this process's memory */
typedef struct Conversion
{
	bool		active;
	bool		text;			/* the file's text for search, not a PDF */
	int64		job;
	int64		doc;
	int64		file;
	int64		signer;
	char		name[1024];
	uint8		sha256[32];		/* of the bytes converted */
	char		in_path[MAXPGPATH];
	char		out_path[MAXPGPATH];
	TimestampTz started;
	TimestampTz deadline;
} Conversion;

static Conversion conv;
static bool soffice_up = false;

/*
 * What a step allocates outside its transactions (the helper's answers,
 * reasons kept past a commit), reset at each step
 */
static MemoryContext step_cxt = NULL;

/* a reason made inside a transaction, kept for after its commit */
static char *
keep(const char *s)
{
	return s ? MemoryContextStrdup(step_cxt, s) : NULL;
}

void
ioffice_convert_init(void)
{
	DefineCustomIntVariable("ioffice.convert_timeout",
							"Seconds a Word or Excel file may take to become a PDF.",
							"A conversion that takes longer is stopped (LibreOffice is started again) and its signature fails.",
							&ioffice_convert_timeout,
							60, 1, 3600,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomIntVariable("ioffice.convert_memory_limit",
							"Address space, in MB, of the converter process and its LibreOffice (0: no limit).",
							"Each of its processes (LibreOffice maps about 750 MB converting a letter); applies when the converter starts (at the first file, after a failure, or a restart of the worker).",
							&ioffice_convert_memory_limit,
							2048, 0, 1024 * 1024,
							PGC_SIGHUP,
							GUC_UNIT_MB,
							NULL, NULL, NULL);
	DefineCustomStringVariable("ioffice.convert_python",
							   "The Python the converter runs with: one with LibreOffice's UNO module (Debian python3-uno).",
							   NULL,
							   &ioffice_convert_python,
							   "/usr/bin/python3",
							   PGC_SIGHUP,
							   0,
							   NULL, NULL, NULL);
}

/*
 * The converter's directory: under the data directory, one per database
 * (each database's signer has its own), named pgsql_tmp… so that base
 * backups leave it out.  It holds LibreOffice's private profile, the files
 * in conversion and the helper's log.
 */
static char *
work_dir(void)
{
	static char dir[MAXPGPATH];

	if (dir[0] == '\0')
	{
		char		parent[MAXPGPATH];

		snprintf(parent, sizeof(parent), "%s/pgsql_tmp_ioffice_convert", DataDir);
		snprintf(dir, sizeof(dir), "%s/%u", parent, MyDatabaseId);
		if ((mkdir(parent, 0700) != 0 && errno != EEXIST) ||
			(mkdir(dir, 0700) != 0 && errno != EEXIST))
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not create the converter's directory \"%s\": %m", dir)));
	}
	return dir;
}

/* ------------------------------------------------------------------------
 * Statements
 * ------------------------------------------------------------------------
 */

/* the oldest pending signature of a file to convert, with the file */
static IofficePlan next_plan = {
	NULL,
	"SELECT s.id, s.document_id, s.file_id, s.signer_id, f.name, f.kind, f.sha256, f.content, "
	"       f.superseded_at IS NULL AND f.removed_at IS NULL "
	"  FROM ioffice.signature s JOIN ioffice.file f ON f.id = s.file_id "
	" WHERE s.status = 'pending' AND f.kind IN " IOFFICE_CONVERTIBLE_KINDS_SQL
	" ORDER BY s.id LIMIT 1",
	0, {InvalidOid}
};

/* the document's lock, as replace_file() takes it: no file change meanwhile */
static IofficePlan lock_doc_plan = {
	NULL,
	"SELECT 1 FROM ioffice.document WHERE id = $1 FOR NO KEY UPDATE",
	1, {INT8OID}
};

/* the job and its file, read again under the document's lock */
static IofficePlan recheck_plan = {
	NULL,
	"SELECT s.status = 'pending' AND s.file_id = $2, f.sha256, "
	"       f.superseded_at IS NULL AND f.removed_at IS NULL "
	"  FROM ioffice.signature s JOIN ioffice.file f ON f.id = $2 "
	" WHERE s.id = $1 FOR UPDATE OF s",
	2, {INT8OID, INT8OID}
};

static IofficePlan insert_pdf_plan = {
	NULL,
	"INSERT INTO ioffice.file (document_id, name, kind, size, sha256, content, replaces_id, "
	"       converted_from, uploaded_by) "
	"VALUES ($1, $2, 'pdf', $3, $4, $5, $6, $6, $7) RETURNING id",
	7, {INT8OID, TEXTOID, INT4OID, BYTEAOID, BYTEAOID, INT8OID, INT8OID}
};

static IofficePlan supersede_plan = {
	NULL,
	"UPDATE ioffice.file SET superseded_at = now() WHERE id = $1",
	1, {INT8OID}
};

static IofficePlan move_jobs_plan = {
	NULL,
	"UPDATE ioffice.signature SET file_id = $2 WHERE file_id = $1 AND status = 'pending'",
	2, {INT8OID, INT8OID}
};

/* the oldest doc or xls file whose text search() waits for */
static IofficePlan next_text_plan = {
	NULL,
	"SELECT j.file_id, j.document_id, f.name, f.kind, f.content "
	"  FROM ioffice.search_extraction j JOIN ioffice.file f ON f.id = j.file_id "
	" WHERE j.done_at IS NULL AND f.kind IN " IOFFICE_CONVERTER_TEXT_KINDS_SQL
	" ORDER BY j.file_id LIMIT 1",
	0, {InvalidOid}
};

static IofficePlan text_done_plan = {
	NULL,
	"SELECT ioffice._search_extracted($1, $2, $3)",
	3, {INT8OID, TEXTOID, TEXTOID}
};

static IofficePlan fail_jobs_plan = {
	NULL,
	"UPDATE ioffice.signature SET status = 'failed', reason = $2 "
	" WHERE file_id = $1 AND status = 'pending' RETURNING id, kind",
	2, {INT8OID, TEXTOID}
};

/* ------------------------------------------------------------------------
 * Recording an outcome
 * ------------------------------------------------------------------------
 */

static char *
hex(const uint8 *b, int n)
{
	char	   *s = palloc(2 * n + 1);

	for (int i = 0; i < n; i++)
		snprintf(s + 2 * i, 3, "%02x", b[i]);
	return s;
}

/* "du_thao.pdf" for "du_thao.docx" */
static char *
pdf_name(const char *name)
{
	const char *dot = strrchr(name, '.');
	int			stem = dot && dot != name ? dot - name : strlen(name);

	return psprintf("%.*s.pdf", stem, name);
}

/*
 * Every pending signature of the file fails with the reason (they would
 * all meet the same file), each with its audit record as sign_jobs.c
 * writes one.
 */
static int
fail_jobs(int64 doc, int64 file, const char *reason)
{
	Datum		values[2];
	uint64		n;
	int64	   *ids;
	char	  **kinds;

	values[0] = Int64GetDatum(file);
	values[1] = CStringGetTextDatum(reason);
	if (ioffice_exec(&fail_jobs_plan, values, NULL, 0) != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "ioffice: could not record a failed conversion");
	n = SPI_processed;
	ids = palloc(sizeof(int64) * Max(n, 1));
	kinds = palloc(sizeof(char *) * Max(n, 1));
	for (uint64 i = 0; i < n; i++)
	{
		ioffice_get_int64(i, 1, &ids[i]);
		kinds[i] = ioffice_get_text(i, 2);
	}
	for (uint64 i = 0; i < n; i++)
	{
		JsonbBuild *b = ioffice_jsonb_begin();

		ioffice_jsonb_add_int(b, "file", file);
		ioffice_jsonb_add_text(b, "kind", kinds[i]);
		ioffice_jsonb_add_text(b, "reason", reason);
		ioffice_audit_in_chain(ioffice_document_chain(doc), 0, 0, "signature", ids[i],
							   "signing_failed", "pending", "failed", ioffice_jsonb_end(b));
	}
	return (int) n;
}

/* the PDF the helper wrote, or NULL with *reason */
static bytea *
read_pdf(const char *path, char **reason)
{
	int			fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
	struct stat st;
	bytea	   *b;
	size_t		done = 0;
	const char *kind;

	if (fd < 0)
	{
		*reason = psprintf("the PDF could not be read: %m");
		return NULL;
	}
	if (fstat(fd, &st) != 0 || st.st_size == 0 || st.st_size > MAX_PDF_BYTES)
	{
		*reason = psprintf("the PDF is empty or larger than %d MB", MAX_PDF_BYTES / (1024 * 1024));
		CloseTransientFile(fd);
		return NULL;
	}
	b = palloc(VARHDRSZ + st.st_size);
	SET_VARSIZE(b, VARHDRSZ + st.st_size);
	while (done < (size_t) st.st_size)
	{
		ssize_t		n = read(fd, VARDATA(b) + done, st.st_size - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
		{
			*reason = psprintf("the PDF could not be read: %m");
			CloseTransientFile(fd);
			return NULL;
		}
		done += n;
	}
	CloseTransientFile(fd);
	kind = ioffice_detect_file_kind((const unsigned char *) VARDATA(b), st.st_size);
	if (kind == NULL || strcmp(kind, "pdf") != 0)
	{
		*reason = pstrdup("LibreOffice's output is not a PDF");
		return NULL;
	}
	return b;
}

/*
 * The PDF becomes the current file in the Word file's place, its pending
 * signatures move to it, and the change is audited.  The trigger on table
 * file lets these two statements through in a frozen document because
 * ioffice_conversion_source names the source meanwhile.
 */
static int64
record_pdf(bytea *pdf)
{
	Datum		values[7];
	bytea	   *digest = ioffice_sha256(pdf);
	char	   *name = pdf_name(conv.name);
	int64		id = 0;
	JsonbBuild *b;

	values[0] = Int64GetDatum(conv.doc);
	values[1] = CStringGetTextDatum(name);
	values[2] = Int32GetDatum((int32) VARSIZE(pdf) - VARHDRSZ);
	values[3] = PointerGetDatum(digest);
	values[4] = PointerGetDatum(pdf);
	values[5] = Int64GetDatum(conv.file);
	values[6] = Int64GetDatum(conv.signer);

	ioffice_conversion_source = conv.file;
	PG_TRY();
	{
		if (ioffice_exec(&insert_pdf_plan, values, NULL, 1) != SPI_OK_INSERT_RETURNING ||
			!ioffice_get_int64(0, 1, &id))
			elog(ERROR, "ioffice: could not store the PDF of file %lld", (long long) conv.file);
		if (ioffice_exec(&supersede_plan, values + 5, NULL, 0) != SPI_OK_UPDATE ||
			SPI_processed != 1)
			elog(ERROR, "ioffice: could not supersede file %lld", (long long) conv.file);
	}
	PG_FINALLY();
	{
		ioffice_conversion_source = 0;
	}
	PG_END_TRY();

	values[0] = Int64GetDatum(conv.file);
	values[1] = Int64GetDatum(id);
	ioffice_exec(&move_jobs_plan, values, NULL, 0);

	b = ioffice_jsonb_begin();
	ioffice_jsonb_add_int(b, "document", conv.doc);
	ioffice_jsonb_add_text(b, "name", name);
	ioffice_jsonb_add_text(b, "kind", "pdf");
	ioffice_jsonb_add_int(b, "size", VARSIZE(pdf) - VARHDRSZ);
	ioffice_jsonb_add_text(b, "sha256", hex((uint8 *) VARDATA(digest), 32));
	ioffice_jsonb_add_int(b, "replaces", conv.file);
	ioffice_jsonb_add_int(b, "converted_from", conv.file);
	ioffice_jsonb_add_text(b, "source_sha256", hex(conv.sha256, 32));
	ioffice_jsonb_add_int(b, "signatures_moved", (int64) SPI_processed);
	ioffice_audit_in_chain(ioffice_document_chain(conv.doc), 0, 0, "file", id, "convert",
						   NULL, NULL, ioffice_jsonb_end(b));
	return id;
}

typedef struct Outcome
{
	bool		ok;
	char	   *reason;
	int			failed;			/* jobs failed */
	bool		recorded;		/* false: the job was no longer waiting for it */
} Outcome;

/*
 * Record the outcome, under the document's lock: the PDF when the job is
 * still pending on the same file, still current, with the same SHA-256;
 * else nothing (the file was replaced or removed meanwhile, and
 * replace_file() already failed the job).
 */
static void
record_outcome(void *arg)
{
	Outcome    *o = (Outcome *) arg;
	Datum		values[2];
	bool		pending = false;
	bool		current = false;
	bool		isnull;
	bytea	   *sha;
	bytea	   *pdf = NULL;

	values[0] = Int64GetDatum(conv.doc);
	ioffice_exec(&lock_doc_plan, values, NULL, 0);
	values[0] = Int64GetDatum(conv.job);
	values[1] = Int64GetDatum(conv.file);
	ioffice_exec(&recheck_plan, values, NULL, 1);
	if (SPI_processed == 0)
		return;
	ioffice_get_bool(0, 1, &pending);
	ioffice_get_bool(0, 3, &current);
	sha = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	if (!pending)
		return;
	o->recorded = true;
	if (!current)
	{
		o->ok = false;
		o->reason = "the file was replaced or removed before it was converted";
	}
	else if (isnull || VARSIZE_ANY_EXHDR(sha) != 32 ||
			 memcmp(VARDATA_ANY(sha), conv.sha256, 32) != 0)
	{
		o->ok = false;
		o->reason = "the file's SHA-256 is not that of the bytes converted";
	}
	if (o->ok)
	{
		pdf = read_pdf(conv.out_path, &o->reason);
		o->ok = pdf != NULL;
	}
	if (o->ok)
		(void) record_pdf(pdf);
	else
		o->failed = fail_jobs(conv.doc, conv.file, psprintf("conversion to PDF failed: %s", o->reason));
}

/* record_outcome in a subtransaction: an error fails the jobs with it */
static void
record_in_subtransaction(Outcome *o)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;

	BeginInternalSubTransaction(NULL);
	PG_TRY();
	{
		record_outcome(o);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(oldcxt);
	CurrentResourceOwner = oldowner;
	if (edata != NULL)
	{
		ioffice_worker_note_error(edata->message);
		o->ok = false;
		o->reason = edata->message;
		o->recorded = true;
		o->failed = fail_jobs(conv.doc, conv.file,
							  psprintf("conversion to PDF failed: %s", edata->message));
	}
}

/*
 * The text the helper wrote, at most ioffice.search_text_max, as valid
 * UTF-8; NULL with *reason when it cannot be read.
 */
static char *
read_text(const char *path, char **reason)
{
	size_t		max = (size_t) ioffice_search_text_max * 1024;
	int			fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
	StringInfoData text;

	if (fd < 0)
	{
		*reason = psprintf("the text could not be read: %m");
		return NULL;
	}
	initStringInfo(&text);
	enlargeStringInfo(&text, Min(max, 1024 * 1024));
	while ((size_t) text.len < max)
	{
		ssize_t		n;

		enlargeStringInfo(&text, Min(max - text.len, 65536));
		n = read(fd, text.data + text.len, Min(max - text.len, 65536));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
		{
			*reason = psprintf("the text could not be read: %m");
			CloseTransientFile(fd);
			return NULL;
		}
		if (n == 0)
			break;
		text.len += n;
		text.data[text.len] = '\0';
	}
	CloseTransientFile(fd);
	ioffice_text_clean(&text);
	return text.data;
}

/*
 * The outcome of a file's text, recorded by _search_extracted() (which
 * keeps nothing for a file replaced or removed meanwhile), in one
 * transaction; the extraction under way ends.
 */
static void
finish_text(bool ok, const char *reason)
{
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};
	char	   *text = NULL;
	char	   *why = (char *) reason;

	if (ok)
		text = read_text(conv.out_path, &why);

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "ioffice worker: recording a file's text for search");
	values[0] = Int64GetDatum(conv.file);
	values[1] = text ? CStringGetTextDatum(text) : (Datum) 0;
	nulls[1] = text ? ' ' : 'n';
	values[2] = text ? (Datum) 0 : CStringGetTextDatum(why ? why : "LibreOffice read no text");
	nulls[2] = text ? 'n' : ' ';
	if (ioffice_exec(&text_done_plan, values, nulls, 1) != SPI_OK_SELECT)
		elog(ERROR, "ioffice: could not record the text of file %lld", (long long) conv.file);
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);

	if (text == NULL)
		elog(LOG, "ioffice: no text extracted from file %lld: %s", (long long) conv.file,
			 why ? why : "LibreOffice read no text");
	(void) unlink(conv.in_path);
	(void) unlink(conv.out_path);
	conv.active = false;
}

/* One transaction for the outcome of the conversion under way, which ends. */
static void
finish(bool ok, const char *reason)
{
	Outcome		o = {ok, (char *) reason, 0, false};

	if (conv.text)
	{
		finish_text(ok, reason);
		return;
	}

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "ioffice worker: recording a conversion");
	ioffice_engine_enter();
	record_in_subtransaction(&o);
	ioffice_engine_leave();
	o.reason = keep(o.reason);
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);

	if (!o.ok && o.recorded)
		elog(LOG, "ioffice worker: file %lld of document %lld could not be converted to PDF: %s",
			 (long long) conv.file, (long long) conv.doc, o.reason);
	if (o.recorded)
		ioffice_worker_note_conversion(o.ok, o.failed);
	(void) unlink(conv.in_path);
	(void) unlink(conv.out_path);
	conv.active = false;
}

/* ------------------------------------------------------------------------
 * Starting a conversion
 * ------------------------------------------------------------------------
 */

static bool
write_source(const char *path, bytea *content, char **reason)
{
	int			fd = OpenTransientFile(path, O_WRONLY | O_CREAT | O_TRUNC | PG_BINARY);
	size_t		len = VARSIZE_ANY_EXHDR(content);
	size_t		done = 0;

	if (fd < 0)
	{
		*reason = psprintf("could not write the file to convert: %m");
		return false;
	}
	while (done < len)
	{
		ssize_t		n = write(fd, VARDATA_ANY(content) + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
		{
			*reason = psprintf("could not write the file to convert: %m");
			CloseTransientFile(fd);
			return false;
		}
		done += n;
	}
	CloseTransientFile(fd);
	return true;
}

/* hand the request to the helper (started if need be); false with *reason */
static bool
hand_over(const char *request, char **reason)
{
	if (!ioffice_converter_start(ioffice_convert_python, work_dir(),
								 ioffice_convert_memory_limit, reason))
		return false;
	if (!ioffice_converter_send(request))
	{
		ioffice_converter_stop();
		soffice_up = false;
		*reason = "the converter could not be reached";
		return false;
	}
	return true;
}

/* the conversion or extraction handed over starts its clock */
static void
start_clock(void)
{
	conv.active = true;
	conv.started = GetCurrentTimestamp();
	conv.deadline = TimestampTzPlusMilliseconds(conv.started,
												1000L * (ioffice_convert_timeout +
														 (soffice_up ? 0 : SOFFICE_START_ALLOWANCE_S)));
}

/*
 * No signature waits for a conversion: the next doc or xls file whose text
 * search() waits for, handed to the helper, in the caller's transaction.
 * Returns true when there was one; a file that cannot be handed over has
 * its job recorded as failed at once, with *reason.  A database whose
 * extension predates search (0.1) has none.
 */
static bool
start_text(char **reason)
{
	bool		isnull;
	bytea	   *content;
	char	   *kind;
	Datum		values[3];
	char		nulls[3] = {' ', 'n', ' '};

	if (SPI_execute("SELECT pg_catalog.to_regclass('ioffice.search_extraction') IS NOT NULL",
					true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "ioffice: could not look for search_extraction");
	if (!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
		return false;
	if (ioffice_exec(&next_text_plan, NULL, NULL, 1) != SPI_OK_SELECT)
		elog(ERROR, "ioffice: could not read the text extraction queue");
	if (SPI_processed == 0)
		return false;

	memset(&conv, 0, sizeof(conv));
	conv.text = true;
	ioffice_get_int64(0, 1, &conv.file);
	ioffice_get_int64(0, 2, &conv.doc);
	conv.job = conv.file;
	strlcpy(conv.name, ioffice_get_text(0, 3), sizeof(conv.name));
	kind = ioffice_get_text(0, 4);
	content = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 5,
											&isnull));
	snprintf(conv.in_path, MAXPGPATH, "%s/text_%lld.%s", work_dir(), (long long) conv.file, kind);
	snprintf(conv.out_path, MAXPGPATH, "%s/text_%lld.txt", work_dir(), (long long) conv.file);
	if (VARSIZE_ANY_EXHDR(content) > (Size) ioffice_search_file_max * 1024 * 1024)
		*reason = psprintf("the file is larger than ioffice.search_file_max (%d MB)",
						   ioffice_search_file_max);
	else if (write_source(conv.in_path, content, reason))
	{
		(void) unlink(conv.out_path);
		if (hand_over(psprintf("%s\t%s\t%s\ttext\n", conv.in_path, conv.out_path, conv.name),
					  reason))
		{
			start_clock();
			return true;
		}
	}
	/* not handed over: the job fails now */
	values[0] = Int64GetDatum(conv.file);
	values[2] = CStringGetTextDatum(*reason);
	if (ioffice_exec(&text_done_plan, values, nulls, 1) != SPI_OK_SELECT)
		elog(ERROR, "ioffice: could not record the text of file %lld", (long long) conv.file);
	*reason = keep(*reason);
	(void) unlink(conv.in_path);
	return true;
}

/*
 * The next file to convert, handed to the helper; a file that cannot even
 * be handed over fails its jobs at once.  Returns true when it recorded
 * such a failure (the caller looks again at once), false otherwise.
 */
static bool
start_next(void)
{
	bool		isnull;
	bool		current = false;
	char	   *reason = NULL;
	char	   *kind;
	bytea	   *sha;
	bytea	   *content;
	uint8		digest[32];
	int			failed = 0;
	bool		found;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "ioffice worker: looking for files to convert");

	if (ioffice_exec(&next_plan, NULL, NULL, 1) != SPI_OK_SELECT)
		elog(ERROR, "ioffice: could not read the conversion queue");
	found = SPI_processed > 0;
	if (found)
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;

		memset(&conv, 0, sizeof(conv));
		ioffice_get_int64(0, 1, &conv.job);
		ioffice_get_int64(0, 2, &conv.doc);
		ioffice_get_int64(0, 3, &conv.file);
		ioffice_get_int64(0, 4, &conv.signer);
		strlcpy(conv.name, ioffice_get_text(0, 5), sizeof(conv.name));
		kind = ioffice_get_text(0, 6);
		sha = DatumGetByteaPP(SPI_getbinval(tup, desc, 7, &isnull));
		content = DatumGetByteaPP(SPI_getbinval(tup, desc, 8, &isnull));
		ioffice_get_bool(0, 9, &current);

		snprintf(conv.in_path, MAXPGPATH, "%s/%lld.%s", work_dir(), (long long) conv.job, kind);
		snprintf(conv.out_path, MAXPGPATH, "%s/%lld.pdf", work_dir(), (long long) conv.job);
		ioffice_sha256_bytes(VARDATA_ANY(content), VARSIZE_ANY_EXHDR(content), digest);
		memcpy(conv.sha256, digest, 32);
		if (!current)
			reason = "the file was replaced or removed before it was converted";
		else if (VARSIZE_ANY_EXHDR(sha) != 32 || memcmp(VARDATA_ANY(sha), digest, 32) != 0)
			reason = "the file's bytes do not match its SHA-256";
		else if (write_source(conv.in_path, content, &reason))
		{
			(void) unlink(conv.out_path);
			(void) hand_over(psprintf("%s\t%s\t%s\n", conv.in_path, conv.out_path, conv.name),
							 &reason);
		}
		if (reason != NULL)
		{
			ioffice_engine_enter();
			failed = fail_jobs(conv.doc, conv.file, psprintf("conversion to PDF failed: %s", reason));
			ioffice_engine_leave();
			(void) unlink(conv.in_path);
			reason = keep(reason);
		}
		else
			start_clock();
	}
	else
		found = start_text(&reason);
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	if (reason != NULL && conv.text)
	{
		/* recorded already, by start_text() */
		elog(LOG, "ioffice: no text extracted from file %lld: %s", (long long) conv.file, reason);
		return true;
	}
	if (reason != NULL)
	{
		elog(LOG, "ioffice worker: file %lld of document %lld could not be converted to PDF: %s",
			 (long long) conv.file, (long long) conv.doc, reason);
		ioffice_worker_note_conversion(false, failed);
		return true;
	}
	if (found)
		ioffice_worker_set_state("converting");
	return false;
}

/* ------------------------------------------------------------------------
 * The signer's loop calls these
 * ------------------------------------------------------------------------
 */

/*
 * The helper's answers so far.  Returns true when the conversion ended
 * (recorded), false while it goes on.
 */
static bool
poll_answer(void)
{
	char	   *line;
	int			r;

	while ((r = ioffice_converter_read_line(&line)) == 1)
	{
		if (strncmp(line, "soffice\t", 8) == 0)
		{
			/* soffice is up: the file's own time starts now */
			soffice_up = true;
			conv.deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														1000L * ioffice_convert_timeout);
			ioffice_worker_note_converter(ioffice_converter_pid(), atoi(line + 8));
			continue;
		}
		if (strncmp(line, "ok\t", 3) == 0)
		{
			finish(true, NULL);
			return true;
		}
		if (strncmp(line, "error\t", 6) == 0)
		{
			char	   *reason = line + 6;

			finish(false, pnstrdup(reason, pg_mbcliplen(reason, strlen(reason), 200)));
			return true;
		}
		elog(LOG, "ioffice worker: the converter said \"%s\"", line);
	}
	if (r < 0)
	{
		ioffice_converter_stop();
		soffice_up = false;
		ioffice_worker_note_converter(0, 0);
		finish(false, "the converter exited (LibreOffice crashed, or ran out of memory)");
		return true;
	}
	if (GetCurrentTimestamp() >= conv.deadline)
	{
		int			limit = ioffice_convert_timeout + (soffice_up ? 0 : SOFFICE_START_ALLOWANCE_S);

		ioffice_converter_stop();
		soffice_up = false;
		ioffice_worker_note_converter(0, 0);
		finish(false, psprintf("it took longer than %d s (ioffice.convert_timeout): LibreOffice was stopped",
							   limit));
		return true;
	}
	return false;
}

/*
 * One step of the conversions: the answer to the file under way, if it
 * came (or its time ran out), else the next file handed over.  Returns
 * true when an outcome was recorded: the caller looks again at once (the
 * PDF's signatures are waiting).
 */
bool
ioffice_worker_convert_step(void)
{
	MemoryContext old;
	bool		recorded;

	if (step_cxt == NULL)
		step_cxt = AllocSetContextCreate(TopMemoryContext, "ioffice conversion",
										 ALLOCSET_SMALL_SIZES);
	MemoryContextReset(step_cxt);
	old = MemoryContextSwitchTo(step_cxt);
	recorded = conv.active ? poll_answer() : start_next();
	MemoryContextSwitchTo(old);
	return recorded;
}

/* how long the signer may sleep: not past the conversion's deadline */
long
ioffice_worker_convert_wait_ms(long naptime_ms)
{
	long		ms;

	if (!conv.active)
		return naptime_ms;
	ms = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), conv.deadline) + 10;
	return Max(Min(ms, naptime_ms), 10);
}

pgsocket
ioffice_worker_convert_socket(void)
{
	return conv.active ? ioffice_converter_socket() : PGINVALID_SOCKET;
}
