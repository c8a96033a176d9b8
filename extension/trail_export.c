/*-------------------------------------------------------------------------
 * trail_export.c
 *	  trail_export(): the processing trail of a document as a file a clerk
 *	  opens, an Excel workbook or a CSV (written by export.c).
 *
 * The rows come from the SQL function trail(), so who may see a trail is
 * decided in one place.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/builtins.h"

#include "export.h"
#include "ioffice.h"

/* the columns of a processing trail (documents and dossiers alike), seed 000 */
const ExportColumn export_trail_columns[] = {
	{"STT", 6, EXPORT_INT, true},
	{"Cán bộ gửi", 24, EXPORT_TEXT, false},
	{"Nội dung yêu cầu", 36, EXPORT_TEXT, false},
	{"Cán bộ nhận", 24, EXPORT_TEXT, false},
	{"Ngày nhận", 17, EXPORT_TIMESTAMP, true},
	{"Nội dung xử lý", 36, EXPORT_TEXT, false},
	{"Hạn xử lý", 12, EXPORT_DATE, true},
	{"Ngày xử lý", 17, EXPORT_TIMESTAMP, true},
	{"Trạng thái hoàn thành", 14, EXPORT_TEXT, true},
	{"Tập tin đính kèm", 26, EXPORT_TEXT, false}
};
const int	export_trail_ncolumns = lengthof(export_trail_columns);

/*
 * _trail() (trail()'s rows: trail() itself would log a view) enforces
 * visibility; times are turned to ioffice.timezone here
 */
static IofficePlan trail_rows = {
	NULL,
	"SELECT step, sender, request, receiver, received_at AT TIME ZONE ioffice.timezone(), "
	"       processing_note, deadline, processed_at AT TIME ZONE ioffice.timezone(), "
	"       status, attachments "
	"  FROM ioffice._trail($1) ORDER BY step",
	1, {INT8OID}
};

static IofficePlan trail_document = {
	NULL,
	"SELECT symbol, abstract FROM ioffice.document WHERE id = $1",
	1, {INT8OID}
};

static ExportTable *
load_trail(int64 doc)
{
	ExportTable *t = palloc0(sizeof(ExportTable));
	Datum		values[1];
	char	   *symbol;
	char	   *abstract;

	t->name = "trail";
	t->what = "the trail workbook";
	t->context = psprintf("building the trail workbook of document %lld", (long long) doc);
	t->sheet = "Quá trình xử lý";
	t->doc_title = "Quá trình xử lý văn bản";
	t->columns = export_trail_columns;
	t->ncolumns = export_trail_ncolumns;

	values[0] = Int64GetDatum(doc);
	ioffice_exec(&trail_rows, values, NULL, 0);
	export_add_spi_rows(t);

	/* read after trail(): it has already refused what the actor may not see */
	ioffice_exec(&trail_document, values, NULL, 1);
	symbol = export_spi_text(0, 1);
	abstract = export_spi_text(0, 2);
	if (abstract == NULL)
		abstract = "";
	t->doc_subject = abstract;

	t->ntitles = 3;
	t->titles = palloc0(sizeof(ExportTitle) * t->ntitles);
	t->titles[0].text = "QUÁ TRÌNH XỬ LÝ VĂN BẢN";
	t->titles[0].big = true;
	t->titles[0].height = 24;
	t->titles[1].text = symbol ? psprintf("Số, ký hiệu: %s", symbol)
		: "Số, ký hiệu: (chưa phát hành)";
	t->titles[2].text = psprintf("Trích yếu: %s", abstract);
	/* about 150 characters a line across the table */
	t->titles[2].height = 16.0 * (1 + export_utf8_chars(abstract) / 150);
	return t;
}

PG_FUNCTION_INFO_V1(ioffice_trail_export);
Datum
ioffice_trail_export(PG_FUNCTION_ARGS)
{
	int64		doc;
	ExportFormat format;
	char	   *format_name;
	bytea	   *result;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("document and format must not be NULL")));
	doc = PG_GETARG_INT64(0);
	format_name = text_to_cstring(PG_GETARG_TEXT_PP(1));
	format = export_parse_format(format_name);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	/* trail() decides again; refused here, the error is the caller's own, not trail()'s */
	(void) ioffice_resolve_actor(false);
	ioffice_require_document(doc);
	result = export_table(load_trail(doc), format);
	/* an export of the document: in the access log */
	ioffice_log_access("export", doc, 0, 0, format == EXPORT_XLSX ? "trail xlsx" : "trail csv");
	SPI_finish();
	PG_RETURN_BYTEA_P(result);
}
