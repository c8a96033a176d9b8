/*-------------------------------------------------------------------------
 * case_file_pdf_jobs.c
 *	  The signer process's part in case_file_pdf(): a case file as one PDF
 *	  (its table of contents, then its documents' PDFs), made by the PDF
 *	  helper ("ioffice_pdf book", helpers/ioffice_pdf.cpp) outside the
 *	  server's processes, under the helper's limits (pdf_helper.c).
 *
 * One job per step, in three transactions as the text extraction's
 * (text_jobs.c), so that no snapshot nor lock is held while the helper
 * runs: the job's spec and files are read; the helper makes the book; the
 * outcome is stored by ioffice._case_file_pdf_done().  A file the helper
 * cannot read is named so in the table of contents; a crash, a hang, or
 * more input than the helper's address space allows fails that job only,
 * with the reason.  A database whose extension predates these jobs has
 * nothing to do.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "ioffice.h"
#include "worker.h"

/*
 * The helper's input: the spec's length and the spec, then each file's
 * length and bytes (the SPI result's rows, in order); NULL or why not.
 */
static char *
book_input(const char *spec, StringInfo in)
{
	size_t		limit = (size_t) ioffice_pdf_helper_memory * 1024 * 1024 / 2;

	appendStringInfo(in, "%zu\n%s", strlen(spec), spec);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		bytea	   *content = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[i],
															SPI_tuptable->tupdesc, 2, &isnull));
		size_t		len = VARSIZE_ANY_EXHDR(content);

		if ((size_t) in->len + len + 32 > Min(limit, MaxAllocSize - 1))
			return psprintf("the documents' PDFs are larger than the PDF helper may read (half of ioffice.pdf_helper_memory, %d MB)",
							ioffice_pdf_helper_memory);
		appendStringInfo(in, "%zu\n", len);
		appendBinaryStringInfo(in, VARDATA_ANY(content), len);
	}
	return NULL;
}

/* what the helper answered: "ok <length> <toc pages> <pages>\n" and the PDF */
static char *
book_output(StringInfo out, int exit_code, bytea **pdf, int *toc_pages, int *pages)
{
	char	   *nl = memchr(out->data, '\n', out->len);
	size_t		len;

	if (nl == NULL)
		return psprintf("the PDF helper gave no answer (exit status %d)", exit_code);
	*nl = '\0';
	if (exit_code != 0 || sscanf(out->data, "ok %zu %d %d", &len, toc_pages, pages) != 3 ||
		len != (size_t) (out->data + out->len - (nl + 1)))
	{
		char	   *msg = strncmp(out->data, "error\t", 6) == 0 ? out->data + 6 : out->data;

		return psprintf("the PDF helper could not make the PDF: %s", pnstrdup(msg, 200));
	}
	*pdf = palloc(VARHDRSZ + len);
	SET_VARSIZE(*pdf, VARHDRSZ + len);
	memcpy(VARDATA(*pdf), nl + 1, len);
	return NULL;
}

/* one job, if one waits: true when one was done (there may be more) */
bool
ioffice_worker_case_file_pdf_step(void)
{
	static MemoryContext cxt = NULL;
	MemoryContext oldcxt;
	Oid			argtypes[5] = {INT8OID, BYTEAOID, INT4OID, INT4OID, TEXTOID};
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	bool		isnull;
	int64		job = 0;
	int			pages = 0;
	char	   *reason = NULL;
	StringInfoData in;
	StringInfoData out;
	bytea	   *pdf = NULL;
	int			toc_pages = 0;
	int			exit_code = -1;
	char	   *argv[] = {NULL, "book", NULL};

	if (cxt == NULL)
		cxt = AllocSetContextCreate(TopMemoryContext, "ioffice case file PDF",
									ALLOCSET_DEFAULT_SIZES);
	MemoryContextReset(cxt);
	oldcxt = MemoryContextSwitchTo(cxt);
	initStringInfo(&in);
	initStringInfo(&out);
	MemoryContextSwitchTo(oldcxt);

	/* the next job, its spec and its files */
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	if (SPI_execute("SELECT pg_catalog.to_regclass('ioffice.case_file_pdf_job') IS NOT NULL",
					true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "ioffice: could not look for case_file_pdf_job");
	if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
	{
		if (SPI_execute("SELECT j.id, ioffice._case_file_pdf_spec(j.id) "
						"FROM ioffice.case_file_pdf_job j "
						"WHERE j.done_at IS NULL ORDER BY j.id LIMIT 1", true, 1) != SPI_OK_SELECT)
			elog(ERROR, "ioffice: could not read the case file PDF queue");
		if (SPI_processed == 1)
		{
			char	   *spec;

			job = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
											  &isnull));
			oldcxt = MemoryContextSwitchTo(cxt);
			spec = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
			MemoryContextSwitchTo(oldcxt);
			values[0] = Int64GetDatum(job);
			if (SPI_execute_with_args("SELECT file, content FROM ioffice._case_file_pdf_files($1)",
									  1, argtypes, values, NULL, true, 0) != SPI_OK_SELECT)
				elog(ERROR, "ioffice: could not read the files of case file PDF %lld",
					 (long long) job);
			oldcxt = MemoryContextSwitchTo(cxt);
			reason = book_input(spec ? spec : "", &in);
			MemoryContextSwitchTo(oldcxt);
		}
	}
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	if (job == 0)
		return false;

	/* the book, outside the server */
	if (reason == NULL)
	{
		pgstat_report_activity(STATE_RUNNING, "ioffice worker: making a case file's PDF");
		oldcxt = MemoryContextSwitchTo(cxt);
		reason = ioffice_pdf_helper_run(argv, in.data, in.len, &out, &exit_code);
		if (reason == NULL)
			reason = book_output(&out, exit_code, &pdf, &toc_pages, &pages);
		MemoryContextSwitchTo(oldcxt);
	}

	/* what came of it */
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	values[0] = Int64GetDatum(job);
	values[1] = pdf ? PointerGetDatum(pdf) : (Datum) 0;
	nulls[1] = pdf ? ' ' : 'n';
	values[2] = Int32GetDatum(toc_pages);
	nulls[2] = pdf ? ' ' : 'n';
	values[3] = Int32GetDatum(pages);
	nulls[3] = pdf ? ' ' : 'n';
	values[4] = reason ? CStringGetTextDatum(reason) : (Datum) 0;
	nulls[4] = reason ? ' ' : 'n';
	if (SPI_execute_with_args("SELECT ioffice._case_file_pdf_done($1, $2, $3, $4, $5)", 5,
							  argtypes, values, nulls, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "ioffice: could not record case file PDF %lld", (long long) job);
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	if (reason)
		elog(LOG, "ioffice: case file PDF %lld not made: %s", (long long) job, reason);
	MemoryContextReset(cxt);
	pgstat_report_activity(STATE_IDLE, NULL);
	return true;
}
