/*-------------------------------------------------------------------------
 * search_export.c
 *	  search_export(): the results of search() as a file a clerk keeps or
 *	  prints (Decree 30, Appendix VI, III.6h), an Excel workbook, a CSV, a
 *	  Word document or a PDF (written by export.c), the same columns in each.
 *
 * The rows are search()'s, in its order, so who finds what is decided in one
 * place: search() looks at the caller (ioffice.actor and the session's
 * role, not this function's owner), and a document it does not return is
 * not in the file, nor counted in it.  The metadata shown beside each hit is
 * read here, past row-level security, for those documents only.  Each
 * document in the file is recorded in the access log (III.6l) as an export
 * by the acting person ("search:<format>"); a reporting tool's role
 * without a person exports without a row (the log names people).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "export.h"
#include "ioffice.h"

static const ExportColumn search_columns[] = {
	{"STT", 6, EXPORT_INT, true},
	{"Số, ký hiệu", 18, EXPORT_TEXT, true},
	{"Ngày văn bản", 12, EXPORT_DATE, true},
	{"Loại văn bản", 16, EXPORT_TEXT, false},
	{"Trích yếu", 44, EXPORT_TEXT, false},
	{"Cơ quan ban hành", 26, EXPORT_TEXT, false},
	{"Văn bản", 9, EXPORT_TEXT, true},
	{"Trạng thái", 18, EXPORT_TEXT, false},
	{"Đoạn trích", 44, EXPORT_TEXT, false}
};

/*
 * search()'s hits in its order (rank first), with what a register shows of
 * each: an incoming document's own number, date and sender; an outgoing
 * one's number, date and agency.
 */
static IofficePlan search_rows = {
	NULL,
	"SELECT s.n, coalesce(d.symbol, d.sender_symbol), coalesce(d.issued_on, d.sender_date), "
	"       coalesce(d.doc_type_name, t.name), d.abstract, "
	"       CASE d.direction WHEN 'incoming' THEN coalesce(sa.name, d.sender_name) ELSE a.name END, "
	"       CASE d.direction WHEN 'incoming' THEN 'Đến' ELSE 'Đi' END, ws.label, s.snippet, "
	"       s.document "
	"  FROM ioffice.search($1, $2, $3) WITH ORDINALITY AS s(document, rank, snippet, n) "
	"  JOIN ioffice.document d ON d.id = s.document "
	"  JOIN ioffice.unit a ON a.id = d.agency_id "
	"  LEFT JOIN ioffice.unit sa ON sa.id = d.sender_agency_id "
	"  LEFT JOIN ioffice.doc_type t ON t.code = d.doc_type "
	"  LEFT JOIN ioffice.workflow_state ws ON ws.workflow = d.workflow AND ws.state = d.state "
	" ORDER BY s.n",
	3, {TEXTOID, JSONBOID, INT4OID}
};

static ExportTable *
load_results(const char *query, Datum filters, int32 limit, int64 **docs)
{
	ExportTable *t = palloc0(sizeof(ExportTable));
	Datum		values[3];

	t->name = "search";
	t->what = "the search results workbook";
	t->context = "building the search results workbook";
	t->sheet = "Kết quả tìm kiếm";
	t->doc_title = "Kết quả tìm kiếm văn bản";
	t->doc_subject = query;
	t->columns = search_columns;
	t->ncolumns = lengthof(search_columns);

	values[0] = CStringGetTextDatum(query);
	values[1] = filters;
	values[2] = Int32GetDatum(limit);
	ioffice_exec(&search_rows, values, NULL, 0);
	export_add_spi_rows(t);
	*docs = palloc(sizeof(int64) * (SPI_processed + 1));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		(*docs)[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
												 lengthof(search_columns) + 1, &isnull));
	}

	t->ntitles = 2;
	t->titles = palloc0(sizeof(ExportTitle) * t->ntitles);
	t->titles[0].text = "KẾT QUẢ TÌM KIẾM VĂN BẢN";
	t->titles[0].big = true;
	t->titles[0].height = 24;
	t->titles[1].text = psprintf("Từ khóa: %s — %d văn bản", query, t->nrows);
	return t;
}

PG_FUNCTION_INFO_V1(ioffice_search_export);
Datum
ioffice_search_export(PG_FUNCTION_ARGS)
{
	char	   *query;
	Datum		filters;
	ExportFormat format;
	int32		limit;
	bytea	   *result;
	ExportTable *table;
	int64	   *docs;
	char	   *detail;
	const char *format_name;

	if (PG_ARGISNULL(2) || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("format and limit must not be NULL")));
	query = PG_ARGISNULL(0) ? "" : text_to_cstring(PG_GETARG_TEXT_PP(0));
	filters = PG_ARGISNULL(1) ? DirectFunctionCall1(jsonb_in, CStringGetDatum("{}"))
		: PG_GETARG_DATUM(1);
	format = export_parse_document_format(text_to_cstring(PG_GETARG_TEXT_PP(2)));
	format_name = format == EXPORT_XLSX ? "xlsx" : format == EXPORT_CSV ? "csv" :
		format == EXPORT_DOCX ? "docx" : "pdf";
	limit = PG_GETARG_INT32(3);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	table = load_results(query, filters, limit, &docs);
	result = export_table(table, format);
	/* once the file is made: each document in it, an export */
	if (table->nrows > 0 && ioffice_resolve_actor(true) != 0)
	{
		detail = psprintf("search:%s", format_name);
		for (int i = 0; i < table->nrows; i++)
			ioffice_log_access("export", docs[i], 0, 0, detail);
	}
	SPI_finish();
	PG_RETURN_BYTEA_P(result);
}
