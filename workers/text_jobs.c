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
 * sql/parts/97_search.sql).  Here, one file per step: pdftotext runs
 * outside the server (and outside any transaction) with
 * the PDF helper's limits (address space, CPU, wall clock: pdf_helper.c;
 * a PDF parser fed with files from outside never runs in a postmaster
 * child), its text is cut at ioffice.search_text_max and stored by
 * ioffice._search_extracted(), which also records the job's outcome.  A PDF
 * larger than ioffice.search_file_max, one pdftotext cannot read, or that
 * makes it crash or hang fails its own job with the reason; the others go
 * on.  A PDF without a text layer (a scan: pdftotext finds almost nothing)
 * is read by OCR (workers/ioffice_text.py ocr, Tesseract in Vietnamese, at
 * most ioffice.search_ocr_pages pages), and its job marked ocr.
 * A database whose extension predates search (0.1) has nothing to do.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "convert.h"
#include "ioffice.h"
#include "worker.h"

#define PDFTOTEXT_PATH "/usr/bin/pdftotext"

int			ioffice_search_text_max = 1024;	/* kB of text kept per file */
int			ioffice_search_file_max = 64;	/* MB of PDF extracted */
int			ioffice_search_ocr_pages = 10;	/* pages of a scanned PDF read by OCR */

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
 * A scanned PDF's text by OCR (workers/ioffice_text.py ocr: pdftoppm's page
 * images read by Tesseract, Vietnamese), under the PDF helper's limits, in
 * fewer seconds than its wall clock allows; into text, which it replaces.
 * NULL, or why there is none (the text of the layer is then kept).
 */
static char *
ocr_text(const char *share, const char *data, size_t len, StringInfo text, size_t max_out)
{
	char		max_text[32];
	char		pages[16];
	char		seconds[16];
	char	   *argv[] = {NULL, "-I", NULL, "ocr", max_text, pages, seconds, NULL};
	StringInfoData out;
	bool		truncated = false;
	int			exit_code = -1;
	char	   *reason;

	snprintf(max_text, sizeof(max_text), "%zu", max_out);
	snprintf(pages, sizeof(pages), "%d", ioffice_search_ocr_pages);
	snprintf(seconds, sizeof(seconds), "%d", Max(ioffice_pdf_helper_timeout - 5,
												 ioffice_pdf_helper_timeout * 3 / 4));
	argv[2] = psprintf("%s/extension/ioffice_text.py", share);
	initStringInfo(&out);
	reason = ioffice_helper_run_program(ioffice_convert_python, "the OCR helper", argv, data, len,
										&out, max_out, &truncated, &exit_code);
	if (reason != NULL)
		return reason;
	if (exit_code == 3)
		return pstrdup("Tesseract or its Vietnamese language data (tesseract-ocr-vie) is not installed");
	if (exit_code != 0)
		return psprintf("the OCR helper could not read the scanned PDF (exit status %d)", exit_code);
	ioffice_text_clean(&out);
	resetStringInfo(text);
	appendBinaryStringInfo(text, out.data, out.len);
	return NULL;
}

/*
 * The file's text: NULL and its text, or why there is none.  A PDF's by
 * pdftotext, or by OCR when it has no text layer (*ocr set then); a docx's
 * or xlsx's by workers/ioffice_text.py (installed in the share directory),
 * with the converter's Python (ioffice.convert_python), under the same
 * limits.
 */
static char *
extract_text(const char *kind, const char *data, size_t len, StringInfo text, bool *ocr)
{
	char		share[MAXPGPATH];
	char		max_text[32];
	char	   *pdf_argv[] = {NULL, "-q", "-enc", "UTF-8", "-nopgbrk", "-", "-", NULL};
	char	   *zip_argv[] = {NULL, "-I", NULL, NULL, max_text, NULL};
	size_t		max_out = (size_t) ioffice_search_text_max * 1024;
	bool		is_pdf = strcmp(kind, "pdf") == 0;
	const char *name = is_pdf ? "pdftotext" : "the text helper";
	bool		truncated = false;
	int			exit_code = -1;
	char	   *reason;

	if (len > (size_t) ioffice_search_file_max * 1024 * 1024)
		return psprintf("the file is larger than ioffice.search_file_max (%d MB)",
						ioffice_search_file_max);
	get_share_path(my_exec_path, share);
	if (is_pdf)
		reason = ioffice_helper_run_program(PDFTOTEXT_PATH, name, pdf_argv, data, len, text,
											max_out, &truncated, &exit_code);
	else
	{
		zip_argv[2] = psprintf("%s/extension/ioffice_text.py", share);
		zip_argv[3] = unconstify(char *, kind);
		snprintf(max_text, sizeof(max_text), "%zu", max_out);
		reason = ioffice_helper_run_program(ioffice_convert_python, name, zip_argv, data, len,
											text, max_out, &truncated, &exit_code);
	}
	if (reason != NULL)
		return reason;
	if (exit_code != 0)
		return psprintf("%s could not read the %s file (exit status %d)", name, kind, exit_code);
	ioffice_text_clean(text);
	if (is_pdf && ioffice_search_ocr_pages > 0 && nearly_empty(text))
	{
		/* a scan: its OCR text, or the layer's few words and the reason logged */
		reason = ocr_text(share, data, len, text, max_out);
		if (reason != NULL)
			elog(LOG, "ioffice: no OCR of a scanned PDF: %s", reason);
		else
			*ocr = true;
	}
	return NULL;
}

/*
 * One job, if one waits: true when one was done (there may be more).
 *
 * Three steps, so that no lock and no snapshot is held while pdftotext runs
 * (up to ioffice.pdf_helper_timeout): the job and the file's bytes are read
 * in a transaction; the text is extracted outside any; its outcome is
 * recorded in another, by _search_extracted(), which first locks the job
 * and keeps nothing for a file that was replaced or removed meanwhile (the
 * trigger that removes it takes the same lock).
 */
bool
ioffice_worker_extract_step(void)
{
	static MemoryContext cxt = NULL;
	MemoryContext oldcxt;
	Oid			argtypes[3] = {INT8OID, TEXTOID, TEXTOID};
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};
	bool		isnull;
	int64		file = 0;
	char	   *pdf = NULL;
	size_t		pdf_len = 0;
	char		kind[16] = "";
	StringInfoData text;
	char	   *reason;
	bool		ocr = false;

	if (cxt == NULL)
		cxt = AllocSetContextCreate(TopMemoryContext, "ioffice text extraction",
									ALLOCSET_DEFAULT_SIZES);
	MemoryContextReset(cxt);

	/* the next job and its file's bytes */
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

			file = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
											   &isnull));
			content = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2,
													&isnull));
			pdf_len = VARSIZE_ANY_EXHDR(content);
			pdf = MemoryContextAlloc(cxt, pdf_len + 1);
			memcpy(pdf, VARDATA_ANY(content), pdf_len);
			strlcpy(kind, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3), sizeof(kind));
		}
	}
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	if (file == 0)
		return false;

	/* its text, outside the server */
	pgstat_report_activity(STATE_RUNNING, "ioffice worker: extracting a file's text for search");
	oldcxt = MemoryContextSwitchTo(cxt);
	initStringInfo(&text);
	reason = extract_text(kind, pdf, pdf_len, &text, &ocr);
	MemoryContextSwitchTo(oldcxt);

	/* what came of it */
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	values[0] = Int64GetDatum(file);
	values[1] = reason ? (Datum) 0 : CStringGetTextDatum(text.data);
	nulls[1] = reason ? 'n' : ' ';
	values[2] = reason ? CStringGetTextDatum(reason) : (Datum) 0;
	nulls[2] = reason ? ' ' : 'n';
	if (SPI_execute_with_args("SELECT ioffice._search_extracted($1, $2, $3)", 3, argtypes,
							  values, nulls, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "ioffice: could not record the text of file %lld", (long long) file);
	/* the text was read by OCR (sql/parts/99_search_ocr.sql) */
	if (ocr && SPI_execute_with_args("UPDATE ioffice.search_extraction SET ocr = true "
									 "WHERE file_id = $1 AND done_at IS NOT NULL AND error IS NULL",
									 1, argtypes, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "ioffice: could not mark the text of file %lld as OCR", (long long) file);
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	if (reason)
		elog(LOG, "ioffice: no text extracted from file %lld: %s", (long long) file, reason);
	MemoryContextReset(cxt);
	pgstat_report_activity(STATE_IDLE, NULL);
	return true;
}
