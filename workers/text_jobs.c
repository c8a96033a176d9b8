/*-------------------------------------------------------------------------
 * text_jobs.c
 *	  The signer process's part in search(): the text of each current PDF
 *	  file, extracted by poppler's pdftotext, for search_text.
 *
 * A trigger on table file queues every PDF attached (search_extraction,
 * sql/parts/97_search.sql).  Here, one file per step, in a transaction of
 * its own: the job's row is locked, pdftotext runs outside the server with
 * the PDF helper's limits (address space, CPU, wall clock: pdf_helper.c;
 * a PDF parser fed with files from outside never runs in a postmaster
 * child), its text is cut at ioffice.search_text_max and stored by
 * ioffice._search_extracted(), which also records the job's outcome.  A PDF
 * larger than ioffice.search_file_max, one pdftotext cannot read, or that
 * makes it crash or hang fails its own job with the reason; the others go
 * on.  A database whose extension predates search (0.1) has nothing to do.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"

#include "ioffice.h"
#include "worker.h"

#define PDFTOTEXT_PATH "/usr/bin/pdftotext"

int			ioffice_search_text_max = 1024;	/* kB of text kept per file */
int			ioffice_search_file_max = 64;	/* MB of PDF extracted */

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
}

/*
 * The text as valid UTF-8 without NUL bytes (what a text value holds): an
 * invalid sequence becomes a space, and a text cut in the middle of a
 * character loses that character.
 */
static void
clean_text(StringInfo s)
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

/* pdftotext over the PDF: NULL and its text, or why it failed */
static char *
extract_pdf(const char *pdf, size_t len, StringInfo text)
{
	char	   *argv[] = {NULL, "-q", "-enc", "UTF-8", "-nopgbrk", "-", "-", NULL};
	bool		truncated = false;
	int			exit_code = -1;
	char	   *reason;

	if (len > (size_t) ioffice_search_file_max * 1024 * 1024)
		return psprintf("the file is larger than ioffice.search_file_max (%d MB)",
						ioffice_search_file_max);
	reason = ioffice_helper_run_program(PDFTOTEXT_PATH, "pdftotext", argv, pdf, len, text,
										(size_t) ioffice_search_text_max * 1024,
										&truncated, &exit_code);
	if (reason != NULL)
		return reason;
	if (exit_code != 0)
		return psprintf("pdftotext could not read the PDF (exit status %d)", exit_code);
	clean_text(text);
	return NULL;
}

/*
 * One job, if one waits: true when one was done (there may be more).
 */
bool
ioffice_worker_extract_step(void)
{
	Oid			argtypes[3] = {INT8OID, TEXTOID, TEXTOID};
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};
	bool		isnull;
	bool		done = false;

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
		if (SPI_execute("SELECT j.file_id, f.content FROM ioffice.search_extraction j "
						"JOIN ioffice.file f ON f.id = j.file_id "
						"WHERE j.done_at IS NULL ORDER BY j.file_id "
						"LIMIT 1 FOR UPDATE OF j SKIP LOCKED", false, 1) != SPI_OK_SELECT)
			elog(ERROR, "ioffice: could not read the text extraction queue");
		if (SPI_processed == 1)
		{
			int64		file = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
														   SPI_tuptable->tupdesc, 1, &isnull));
			bytea	   *pdf = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0],
															SPI_tuptable->tupdesc, 2, &isnull));
			StringInfoData text;
			char	   *reason;

			pgstat_report_activity(STATE_RUNNING, "ioffice worker: extracting a file's text for search");
			initStringInfo(&text);
			reason = extract_pdf(VARDATA_ANY(pdf), VARSIZE_ANY_EXHDR(pdf), &text);
			values[0] = Int64GetDatum(file);
			values[1] = reason ? (Datum) 0 : CStringGetTextDatum(text.data);
			nulls[1] = reason ? 'n' : ' ';
			values[2] = reason ? CStringGetTextDatum(reason) : (Datum) 0;
			nulls[2] = reason ? ' ' : 'n';
			if (SPI_execute_with_args("SELECT ioffice._search_extracted($1, $2, $3)", 3, argtypes,
									  values, nulls, false, 1) != SPI_OK_SELECT)
				elog(ERROR, "ioffice: could not record the text of file %lld", (long long) file);
			if (reason)
				elog(LOG, "ioffice: no text extracted from file %lld: %s", (long long) file, reason);
			done = true;
		}
	}

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	return done;
}
