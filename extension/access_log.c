/*-------------------------------------------------------------------------
 * access_log.c
 *	  The access log (Decree 30, Appendix VI, III.5a, III.6l): one row per
 *	  view, download or export of a document, written by the function that
 *	  showed it; and the downloads themselves, file_content() (the stored
 *	  bytes) and file_copy() (a PDF copy with the download mark, III.6k).
 *
 * The row is one INSERT through a plan kept for the session: no sequence,
 * no foreign key, no audit chain (sql/parts/99_access_log.sql says why),
 * so that a download costs what reading the file costs and a few
 * microseconds more.
 *
 * What that INSERT would cost most is the commit: it makes a read-only
 * transaction a writing one, whose commit waits for its WAL to reach the
 * disk (an fsync: milliseconds, many times the read).  A transaction that
 * wrote nothing but rows of the access log therefore commits without
 * waiting (synchronous_commit = off for that commit only, set just before
 * it): its rows are as safe as any once the WAL writer has flushed them
 * (within 3 x wal_writer_delay); a crash of the server before that can
 * lose the last fraction of a second of views, never a document's change.
 * A transaction that wrote anything else, before or after the log row,
 * commits as the server's settings say.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "ioffice.h"

static IofficePlan log_insert = {
	NULL,
	"INSERT INTO ioffice.access_log (person_id, action, document_id, file_id, case_file_id, detail) "
	"VALUES ($1, $2, $3, $4, $5, $6)",
	6, {INT8OID, TEXTOID, INT8OID, INT8OID, INT8OID, TEXTOID}
};

static IofficePlan file_bytes = {
	NULL, "SELECT content, kind, name, erased_at IS NOT NULL FROM ioffice.file WHERE id = $1",
	1, {INT8OID}
};

/*
 * Whose recall destroyed a file, and when (sql/parts/99_recall.sql): the
 * accepted recall of its received document, or of the received document
 * it is a certified copy of (copy_of, followed up the copies of copies).
 * The sender is the external agency's code, or the agency of this
 * database whose recall asked it.
 */
static IofficePlan erasure_detail = {
	NULL,
	"WITH RECURSIVE up(id, copy_of) AS ( "
	"    SELECT d.id, d.copy_of FROM ioffice.document d "
	"     WHERE d.id = (SELECT f.document_id FROM ioffice.file f WHERE f.id = $1) "
	"    UNION ALL "
	"    SELECT d.id, d.copy_of FROM ioffice.document d JOIN up ON d.id = up.copy_of) "
	"SELECT to_char(f.erased_at AT TIME ZONE ioffice.timezone(), 'HH24:MI \"ngày\" DD/MM/YYYY'), "
	"       coalesce(r.party, su.name, 'unknown'), r.reason, coalesce(p.full_name, 'unknown'), "
	"       up.id <> f.document_id "
	"  FROM ioffice.file f, up "
	"  JOIN ioffice.document_recall r ON r.document_id = up.id AND r.direction = 'received' "
	"       AND r.answer = 'accepted' "
	"  LEFT JOIN ioffice.document_recall s ON s.id = r.source_recall_id "
	"  LEFT JOIN ioffice.unit su ON su.id = s.agency_id "
	"  LEFT JOIN ioffice.person p ON p.id = r.answered_by "
	" WHERE f.id = $1 LIMIT 1",
	1, {INT8OID}
};

/*
 * Did the transaction write nothing but access log rows?  log_only_end is
 * the end of the WAL it had written just after its last log row, while
 * nothing else was written; invalid once anything else was.
 */
static bool callback_registered = false;
static bool log_rows_only = false;
static XLogRecPtr log_only_end = InvalidXLogRecPtr;

static void
access_log_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			/* nothing written since the last log row, nothing before the first */
			if (log_rows_only && XactLastRecEnd == log_only_end)
				(void) set_config_option("synchronous_commit", "off", PGC_USERSET, PGC_S_SESSION,
										 GUC_ACTION_LOCAL, true, 0, false);
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			log_rows_only = false;
			log_only_end = InvalidXLogRecPtr;
			break;
		default:
			break;
	}
}

/* before a log row: has the transaction written anything else so far? */
static void
note_writes_before(void)
{
	if (!callback_registered)
	{
		RegisterXactCallback(access_log_xact_callback, NULL);
		callback_registered = true;
	}
	if (!TransactionIdIsValid(GetTopTransactionIdIfAny()))
		log_rows_only = true;	/* the first write of the transaction */
	else if (!log_rows_only || XactLastRecEnd != log_only_end)
		log_rows_only = false;	/* it wrote something else, or before us */
}

/*
 * Record that the acting person did ACTION on a document (doc), one of its
 * files (file) or a case file (case_file); 0 for none.  The caller is
 * connected to SPI and has decided the actor may.
 */
void
ioffice_log_access(const char *action, int64 doc, int64 file, int64 case_file,
				   const char *detail)
{
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};

	values[0] = Int64GetDatum(ioffice_resolve_actor(false));
	values[1] = CStringGetTextDatum(action);
	values[2] = Int64GetDatum(doc);
	values[3] = Int64GetDatum(file);
	values[4] = Int64GetDatum(case_file);
	values[5] = detail != NULL ? CStringGetTextDatum(detail) : (Datum) 0;
	if (doc == 0)
		nulls[2] = 'n';
	if (file == 0)
		nulls[3] = 'n';
	if (case_file == 0)
		nulls[4] = 'n';
	if (detail == NULL)
		nulls[5] = 'n';
	note_writes_before();
	ioffice_exec(&log_insert, values, nulls, 0);
	log_only_end = XactLastRecEnd;
}

/* _log_access(action, doc, file, case_file, detail), for the SQL functions */
PG_FUNCTION_INFO_V1(ioffice_log_access_sql);
Datum
ioffice_log_access_sql(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("_log_access needs an action")));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	ioffice_log_access(text_to_cstring(PG_GETARG_TEXT_PP(0)),
					   PG_ARGISNULL(1) ? 0 : PG_GETARG_INT64(1),
					   PG_ARGISNULL(2) ? 0 : PG_GETARG_INT64(2),
					   PG_ARGISNULL(3) ? 0 : PG_GETARG_INT64(3),
					   PG_ARGISNULL(4) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(4)));
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * A file whose bytes a recall destroyed (Decree 30 art. 18.4b) is refused,
 * never handed out empty: a download of 0 bytes would look like a broken
 * file, not like a document its sender withdrew.  Also for verify() and
 * the other readers of a file's bytes (an empty file "verifies" nothing).
 * Called inside SPI.
 */
void
ioffice_refuse_erased(int64 file)
{
	Datum		values[1];

	values[0] = Int64GetDatum(file);
	ioffice_exec(&erasure_detail, values, NULL, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("file %lld was destroyed by the recall of its document", (long long) file),
				 errdetail("Its name, size and SHA-256 are kept as the record.")));
	{
		bool		of_copy = false;

		ioffice_get_bool(0, 5, &of_copy);
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("file %lld was destroyed by the recall of its document", (long long) file),
				 errdetail("%s, %s, recalled it (reason: %s); %s accepted the recall, and the file's bytes were destroyed at %s. Its name, size and SHA-256 are kept as the record.",
						   of_copy ? "This is a copy of a received document: its sender" :
						   "Its sender",
						   ioffice_get_text(0, 2), ioffice_get_text(0, 3),
						   ioffice_get_text(0, 4), ioffice_get_text(0, 1)),
				 errhint("recall_status shows the recall and its answer.")));
	}
}

/*
 * A file the actor may see (42704 for any other, as for one that does not
 * exist): its document, its bytes copied out of SPI's memory, its kind.
 * One destroyed by a recall is refused (55000).
 */
static bytea *
read_file(int64 file, int64 *doc, char **kind)
{
	Datum		values[1];
	Datum		d;
	bool		isnull;
	bytea	   *stored;
	bytea	   *content;

	*doc = ioffice_require_file(file);
	values[0] = Int64GetDatum(file);
	ioffice_exec(&file_bytes, values, NULL, 1);
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("unknown file %lld", (long long) file)));
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("unknown file %lld", (long long) file)));
	{
		bool		erased = false;

		ioffice_get_bool(0, 4, &erased);
		if (erased)
			ioffice_refuse_erased(file);
	}
	/* the bytes outlive SPI_finish(): copied into the caller's context */
	stored = DatumGetByteaPP(d);
	content = SPI_palloc(VARSIZE_ANY(stored));
	memcpy(content, stored, VARSIZE_ANY(stored));
	*kind = ioffice_get_text(0, 2);
	return content;
}

PG_FUNCTION_INFO_V1(ioffice_file_content);
Datum
ioffice_file_content(PG_FUNCTION_ARGS)
{
	int64		file;
	int64		doc;
	char	   *kind;
	bytea	   *content;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("file_content needs a file")));
	file = PG_GETARG_INT64(0);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	(void) ioffice_resolve_actor(false);
	content = read_file(file, &doc, &kind);
	ioffice_log_access("download", doc, file, 0, NULL);
	SPI_finish();
	PG_RETURN_BYTEA_P(content);
}

/* the mark's words: who took the copy and when, in ioffice.timezone */
static IofficePlan mark_words = {
	NULL,
	"SELECT 'Bản tải về từ hệ thống bởi ' || p.full_name || ' (' || p.login || ') lúc ' "
	"       || to_char(now() AT TIME ZONE ioffice.timezone(), 'HH24:MI \"ngày\" DD/MM/YYYY') "
	"  FROM ioffice.person p WHERE p.id = $1",
	1, {INT8OID}
};

/*
 * The PDF helper writes the mark into a copy (helpers/ioffice_pdf.cpp,
 * mark()): the stored file is parsed there, never in a backend.  Returns
 * the copy, in the caller's memory context.
 */
static bytea *
marked_copy(int64 file, bytea *content, const char *words)
{
	char	   *argv[5] = {NULL, "mark", "--mark", (char *) words, NULL};
	StringInfoData out;
	int			exit_code = 0;
	char	   *failure;
	char	   *nl;
	long		len;
	bytea	   *copy;

	initStringInfo(&out);
	failure = ioffice_pdf_helper_run(argv, VARDATA_ANY(content), VARSIZE_ANY_EXHDR(content),
									 &out, &exit_code);
	if (failure != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the marked copy of file %lld could not be made", (long long) file),
				 errdetail("%s", failure)));
	nl = memchr(out.data, '\n', out.len);
	if (exit_code != 0 || nl == NULL || strncmp(out.data, "ok ", 3) != 0)
	{
		char	   *why = out.data;

		if (nl != NULL)
			*nl = '\0';
		if (strncmp(why, "error\t", 6) == 0)
			why += 6;
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the marked copy of file %lld could not be made", (long long) file),
				 errdetail("The PDF helper says: %s", why)));
	}
	len = atol(out.data + 3);
	if (len <= 0 || len != out.len - (nl + 1 - out.data))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("the PDF helper answered a copy of the wrong length")));
	copy = SPI_palloc(VARHDRSZ + len);
	SET_VARSIZE(copy, VARHDRSZ + len);
	memcpy(VARDATA(copy), nl + 1, len);
	return copy;
}

/*
 * file_copy(file): a PDF copy to download or print, with the mark naming
 * who took it and when at the foot of every page (III.6k); the stored file
 * is unchanged.  Recorded in the access log as a copy.
 */
PG_FUNCTION_INFO_V1(ioffice_file_copy);
Datum
ioffice_file_copy(PG_FUNCTION_ARGS)
{
	int64		file;
	int64		doc;
	int64		me;
	char	   *kind;
	bytea	   *content;
	bytea	   *copy;
	char	   *words;
	Datum		values[1];

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("file_copy needs a file")));
	file = PG_GETARG_INT64(0);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	me = ioffice_resolve_actor(false);
	content = read_file(file, &doc, &kind);
	if (kind == NULL || strcmp(kind, "pdf") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("file %lld is not a PDF: only a PDF copy carries the download mark",
						(long long) file),
				 errhint("file_content() gives the file as it is stored.")));
	values[0] = Int64GetDatum(me);
	ioffice_exec(&mark_words, values, NULL, 1);
	words = ioffice_get_text(0, 1);
	copy = marked_copy(file, content, words);
	ioffice_log_access("copy", doc, file, 0, NULL);
	SPI_finish();
	PG_RETURN_BYTEA_P(copy);
}

/*
 * The access log's retention (ioffice.access_log_retention, default: kept
 * for ever, as Appendix VI III.5a asks the history of access kept): the
 * rows older than the retention are deleted by the worker, a batch at a
 * time, through _access_log_prune() and nothing else.  The trigger on the
 * table refuses every UPDATE, and every DELETE but those this function
 * makes while it runs: not the table's owner, not a superuser's statement.
 * _access_log_prune() is granted to nobody; the worker calls it as the
 * superuser it runs as.
 */
static bool pruning = false;

/*
 * The cut: the end of the last checkpoint's range older than the retention
 * (sql/parts/99_access_log_digest.sql), so that a range is kept whole or
 * pruned whole, and access_log_verify() knows which ranges it can no longer
 * recompute; recorded once, before the first row of it is deleted.  No
 * checkpoint old enough: nothing is deleted (a row is never pruned before it
 * was digested).
 */
static IofficePlan prune_plan = {
	NULL,
	"WITH cut AS ("
	"  SELECT id, range_to FROM ioffice.access_log_checkpoint"
	"   WHERE range_to <= now() - $1 ORDER BY id DESC LIMIT 1), "
	"mark AS ("
	"  INSERT INTO ioffice.access_log_pruned (checkpoint_id)"
	"  SELECT id FROM cut WHERE NOT EXISTS ("
	"    SELECT 1 FROM ioffice.access_log_pruned p WHERE p.checkpoint_id >= cut.id)) "
	"DELETE FROM ioffice.access_log WHERE ctid = ANY (ARRAY("
	"  SELECT ctid FROM ioffice.access_log WHERE at < (SELECT range_to FROM cut) LIMIT $2))",
	2, {INTERVALOID, INT4OID}
};

/*
 * _access_log_prune(retention interval, batch int): how many rows were
 * deleted.  Any batch rows older than the retention (in no order: all of
 * them go; the BRIN on the time finds them without a sort).
 */
PG_FUNCTION_INFO_V1(ioffice_access_log_prune);
Datum
ioffice_access_log_prune(PG_FUNCTION_ARGS)
{
	Datum		values[2];
	uint64		deleted = 0;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_GETARG_INT32(1) <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("_access_log_prune needs a retention and a batch size above 0")));
	values[0] = PG_GETARG_DATUM(0);
	values[1] = PG_GETARG_DATUM(1);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	pruning = true;
	PG_TRY();
	{
		if (ioffice_exec(&prune_plan, values, NULL, 0) != SPI_OK_DELETE)
			elog(ERROR, "ioffice: could not prune the access log");
		deleted = SPI_processed;
	}
	PG_FINALLY();
	{
		pruning = false;
	}
	PG_END_TRY();
	SPI_finish();
	PG_RETURN_INT32((int32) deleted);
}

/*
 * The trigger of table access_log: append-only as the audit trail, but for
 * the deletes of _access_log_prune().
 */
PG_FUNCTION_INFO_V1(ioffice_access_log_append_only);
Datum
ioffice_access_log_append_only(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = ioffice_trigger_data(fcinfo, "_access_log_append_only");

	if (pruning && TRIGGER_FIRED_BY_DELETE(trigdata->tg_event) &&
		TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		return PointerGetDatum(trigdata->tg_trigtuple);
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("table access_log is append-only: its records cannot be %s",
					TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ? "changed" : "removed"),
			 errdetail("The history of access is kept; the worker alone removes the rows older than ioffice.access_log_retention.")));
	return PointerGetDatum(NULL);
}
