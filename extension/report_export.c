/*-------------------------------------------------------------------------
 * report_export.c
 *	  The reports of Decree 30 appendix VI part I as files a clerk prints
 *	  or keeps, an Excel workbook or a CSV (written by export.c, as the
 *	  registers are): the follow-up register of incoming documents (sổ theo
 *	  dõi giải quyết văn bản đến, appendix IV), the incoming and outgoing
 *	  processing reports (báo cáo tình hình giải quyết văn bản đến / đi),
 *	  the table of contents of a case file (mục lục văn bản trong hồ sơ) and
 *	  the list of an agency's case files (mục lục hồ sơ).
 *
 * SECURITY INVOKER, all of them: each reads its view
 * (sql/parts/99_followup.sql, sql/parts/98_case_files.sql) under the
 * caller's row-level security, so a file holds, and counts, only what its
 * reader may see, and says no more than the view does.  Each export by a
 * person is in the access log (_log_report_export: the report, what was
 * asked, the rows the file held; sql/parts/99_access_log.sql).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"

#include "export.h"
#include "ioffice.h"

static const ExportColumn followup_columns[] = {
	{"Số đến", 8, EXPORT_INT, true},
	{"Tên loại, số, ký hiệu, ngày, tháng và tên cơ quan, tổ chức ban hành văn bản", 46, EXPORT_TEXT, false},
	{"Đơn vị hoặc người nhận", 26, EXPORT_TEXT, false},
	{"Thời hạn giải quyết", 12, EXPORT_DATE, true},
	{"Tiến độ giải quyết", 24, EXPORT_TEXT, false},
	{"Số, ký hiệu văn bản trả lời", 18, EXPORT_TEXT, true},
	{"Ghi chú", 18, EXPORT_TEXT, false}
};

static const ExportColumn processing_columns[] = {
	{"Đơn vị", 30, EXPORT_TEXT, false},
	{"Cá nhân", 24, EXPORT_TEXT, false},
	{"Tổng số đã nhận", 11, EXPORT_INT, true},
	{"Đã giải quyết đúng hạn", 11, EXPORT_INT, true},
	{"Đã giải quyết quá hạn", 11, EXPORT_INT, true},
	{"Đang giải quyết trong hạn", 11, EXPORT_INT, true},
	{"Quá hạn chưa giải quyết", 11, EXPORT_INT, true}
};

static const ExportColumn contents_columns[] = {
	{"STT", 6, EXPORT_INT, true},
	{"Số, ký hiệu văn bản", 18, EXPORT_TEXT, true},
	{"Ngày tháng văn bản", 12, EXPORT_DATE, true},
	{"Tên loại và trích yếu nội dung văn bản", 44, EXPORT_TEXT, false},
	{"Tác giả văn bản", 26, EXPORT_TEXT, false},
	{"Số trang", 8, EXPORT_INT, true},
	{"Ghi chú", 16, EXPORT_TEXT, false}
};

static const ExportColumn list_columns[] = {
	{"STT", 6, EXPORT_INT, true},
	{"Đề mục", 20, EXPORT_TEXT, false},
	{"Mã hồ sơ", 30, EXPORT_TEXT, false},
	{"Tiêu đề hồ sơ", 42, EXPORT_TEXT, false},
	{"Thời gian bắt đầu", 12, EXPORT_DATE, true},
	{"Thời gian kết thúc", 12, EXPORT_DATE, true},
	{"Thời hạn bảo quản", 12, EXPORT_TEXT, true},
	{"Số lượng văn bản", 10, EXPORT_INT, true},
	{"Số lượng trang", 10, EXPORT_INT, true},
	{"Người lập hồ sơ", 20, EXPORT_TEXT, false},
	{"Ghi chú", 20, EXPORT_TEXT, false}
};

static IofficePlan agency_name = {
	NULL,
	"SELECT u.name FROM ioffice.unit u WHERE u.id = $1 AND u.kind = 'agency'",
	1, {INT8OID}
};

static IofficePlan followup_rows = {
	NULL,
	"SELECT f.number, f.document_description || coalesce(' — ' || f.abstract, ''), f.handlers, "
	"       f.deadline, f.progress, f.reply_symbols, f.note "
	"  FROM ioffice.incoming_followup f WHERE f.agency_id = $1 AND f.year = $2 "
	" ORDER BY f.register_code, f.number",
	2, {INT8OID, INT4OID}
};

static IofficePlan processing_rows = {
	NULL,
	"SELECT r.unit_name, coalesce(r.person_name, 'Cả đơn vị'), r.received, r.done_on_time, "
	"       r.done_late, r.pending_in_time, r.overdue "
	"  FROM ioffice.processing_report($1, $2, $3) r",
	3, {TEXTOID, DATEOID, DATEOID}
};

static IofficePlan case_file_info = {
	NULL,
	"SELECT c.code, c.title, a.name FROM ioffice.case_file_list c "
	"  JOIN ioffice.unit a ON a.id = c.agency_id WHERE c.case_file_id = $1",
	1, {INT8OID}
};

static IofficePlan contents_rows = {
	NULL,
	"SELECT v.ordinal, v.symbol, v.document_date, concat_ws(' ', v.type_name, v.subject), "
	"       v.organ_name, v.page_count, NULL::text "
	"  FROM ioffice.case_file_contents v WHERE v.case_file_id = $1 "
	" ORDER BY v.arose_on, v.number, v.ordinal",
	1, {INT8OID}
};

static IofficePlan list_rows = {
	NULL,
	"SELECT row_number() OVER (ORDER BY c.heading_position NULLS LAST, c.heading_code, c.code), "
	"       concat_ws(' ', c.heading_code, c.heading_title), c.code, c.title, c.opened_on, "
	"       c.closed_on, c.retention, c.doc_total, c.page_total, c.responsible, c.description "
	"  FROM ioffice.case_file_list c WHERE c.agency_id = $1 AND c.year = $2 "
	" ORDER BY c.heading_position NULLS LAST, c.heading_code, c.code",
	2, {INT8OID, INT4OID}
};

/* A new table: its names, columns, and title lines (the first one big). */
static ExportTable *
new_table(const char *name, const char *what, const char *sheet,
		  const ExportColumn *columns, int ncolumns, int ntitles)
{
	ExportTable *t = palloc0(sizeof(ExportTable));

	t->name = name;
	t->what = psprintf("the %s workbook", what);
	t->context = psprintf("building the %s workbook", what);
	t->sheet = sheet;
	t->doc_title = sheet;
	t->footer = "&CTrang &P/&N";
	t->columns = columns;
	t->ncolumns = ncolumns;
	t->ntitles = ntitles;
	t->titles = palloc0(sizeof(ExportTitle) * ntitles);
	t->titles[0].big = true;
	t->titles[0].height = 24;
	return t;
}

/* the agency's name, or 42704 */
static char *
require_agency(int64 agency)
{
	Datum		values[1] = {Int64GetDatum(agency)};

	ioffice_exec(&agency_name, values, NULL, 1);
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("unknown agency %lld", (long long) agency)));
	return export_spi_text(0, 1);
}

static void
require_args(FunctionCallInfo fcinfo, int n, const char *what)
{
	int			i;

	for (i = 0; i < n; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s must not be NULL", what)));
}

PG_FUNCTION_INFO_V1(ioffice_followup_export);
Datum
ioffice_followup_export(PG_FUNCTION_ARGS)
{
	int64		agency;
	int32		year;
	ExportFormat format;
	ExportTable *t;
	Datum		values[2];
	char	   *name;
	bytea	   *result;

	require_args(fcinfo, 3, "agency, year and format");
	agency = PG_GETARG_INT64(0);
	year = PG_GETARG_INT32(1);
	format = export_parse_format(text_to_cstring(PG_GETARG_TEXT_PP(2)));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	name = require_agency(agency);
	t = new_table("followup", "follow-up register", "Sổ theo dõi giải quyết",
				  followup_columns, lengthof(followup_columns), 2);
	t->doc_title = "Sổ theo dõi giải quyết văn bản đến";
	t->doc_subject = psprintf("%s, %d", name, year);
	t->titles[0].text = psprintf("SỔ THEO DÕI GIẢI QUYẾT VĂN BẢN ĐẾN NĂM %d", year);
	t->titles[1].text = name;
	values[0] = Int64GetDatum(agency);
	values[1] = Int32GetDatum(year);
	ioffice_exec(&followup_rows, values, NULL, 0);
	export_add_spi_rows(t);
	result = export_table(t, format);
	export_log_report("followup", format, t, "jsonb_build_object('agency', $1, 'year', $2)",
					  2, (Oid[]) {INT8OID, INT4OID}, values, NULL);
	SPI_finish();
	PG_RETURN_BYTEA_P(result);
}

/* a date argument as dd/mm/yyyy, or none's text when it is NULL */
static char *
date_or(FunctionCallInfo fcinfo, int arg, const char *none)
{
	DateADT		d;
	int			y,
				m,
				day;

	if (PG_ARGISNULL(arg))
		return pstrdup(none);
	d = PG_GETARG_DATEADT(arg);
	if (DATE_NOT_FINITE(d))
		return DatumGetCString(DirectFunctionCall1(date_out, DateADTGetDatum(d)));
	j2date(d + POSTGRES_EPOCH_JDATE, &y, &m, &day);
	return psprintf("%02d/%02d/%04d", day, m, y);
}

PG_FUNCTION_INFO_V1(ioffice_processing_report_export);
Datum
ioffice_processing_report_export(PG_FUNCTION_ARGS)
{
	char	   *direction;
	ExportFormat format;
	ExportTable *t;
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};
	bytea	   *result;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("direction and format must not be NULL")));
	direction = text_to_cstring(PG_GETARG_TEXT_PP(0));
	format = export_parse_format(text_to_cstring(PG_GETARG_TEXT_PP(3)));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	values[0] = CStringGetTextDatum(direction);
	values[1] = PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1);
	values[2] = PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2);
	nulls[1] = PG_ARGISNULL(1) ? 'n' : ' ';
	nulls[2] = PG_ARGISNULL(2) ? 'n' : ' ';
	/* processing_report() checks the direction before anything is built */
	ioffice_exec(&processing_rows, values, nulls, 0);

	t = new_table("processing", "processing report", "Báo cáo giải quyết",
				  processing_columns, lengthof(processing_columns), 2);
	t->titles[0].text = strcmp(direction, "incoming") == 0
		? "BÁO CÁO TÌNH HÌNH GIẢI QUYẾT VĂN BẢN ĐẾN"
		: "BÁO CÁO TÌNH HÌNH GIẢI QUYẾT VĂN BẢN ĐI";
	t->doc_title = strcmp(direction, "incoming") == 0
		? "Báo cáo tình hình giải quyết văn bản đến"
		: "Báo cáo tình hình giải quyết văn bản đi";
	t->titles[1].text = psprintf("Văn bản nhận xử lý từ ngày %s đến ngày %s",
								 date_or(fcinfo, 1, "…"), date_or(fcinfo, 2, "…"));
	t->doc_subject = t->titles[1].text;
	export_add_spi_rows(t);
	result = export_table(t, format);
	export_log_report("processing_report", format, t,
					  "jsonb_build_object('direction', $1, 'from', $2, 'to', $3)",
					  3, (Oid[]) {TEXTOID, DATEOID, DATEOID}, values, nulls);
	SPI_finish();
	PG_RETURN_BYTEA_P(result);
}

static IofficePlan log_case_file_export = {
	NULL, "SELECT ioffice._log_case_file_export($1, $2)", 2, {INT8OID, TEXTOID}
};

PG_FUNCTION_INFO_V1(ioffice_case_file_contents_export);
Datum
ioffice_case_file_contents_export(PG_FUNCTION_ARGS)
{
	int64		case_file;
	ExportFormat format;
	ExportTable *t;
	Datum		values[1];
	char	   *code;
	char	   *title;
	char	   *agency;
	bytea	   *result;

	require_args(fcinfo, 2, "case file and format");
	case_file = PG_GETARG_INT64(0);
	format = export_parse_format(text_to_cstring(PG_GETARG_TEXT_PP(1)));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	values[0] = Int64GetDatum(case_file);
	/* a case file the caller may not see is not named to them */
	ioffice_exec(&case_file_info, values, NULL, 1);
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("unknown case file %lld", (long long) case_file)));
	code = export_spi_text(0, 1);
	title = export_spi_text(0, 2);
	agency = export_spi_text(0, 3);

	t = new_table("contents", "case file contents", "Mục lục văn bản",
				  contents_columns, lengthof(contents_columns), 3);
	t->doc_title = "Mục lục văn bản trong hồ sơ";
	t->doc_subject = code;
	t->titles[0].text = "MỤC LỤC VĂN BẢN";
	t->titles[1].text = psprintf("Hồ sơ số: %s", code);
	t->titles[2].text = psprintf("%s — %s", title, agency);
	t->titles[2].height = 16.0 * (1 + export_utf8_chars(t->titles[2].text) / 150);
	ioffice_exec(&contents_rows, values, NULL, 0);
	export_add_spi_rows(t);
	result = export_table(t, format);
	/* an export of the case file, in the access log as its XML is (III.6l) */
	{
		Datum		logged[2];

		logged[0] = Int64GetDatum(case_file);
		logged[1] = CStringGetTextDatum(format == EXPORT_XLSX ? "xlsx" : "csv");
		ioffice_exec(&log_case_file_export, logged, NULL, 0);
	}
	SPI_finish();
	PG_RETURN_BYTEA_P(result);
}

PG_FUNCTION_INFO_V1(ioffice_case_file_list_export);
Datum
ioffice_case_file_list_export(PG_FUNCTION_ARGS)
{
	int64		agency;
	int32		year;
	ExportFormat format;
	ExportTable *t;
	Datum		values[2];
	char	   *name;
	bytea	   *result;

	require_args(fcinfo, 3, "agency, year and format");
	agency = PG_GETARG_INT64(0);
	year = PG_GETARG_INT32(1);
	format = export_parse_format(text_to_cstring(PG_GETARG_TEXT_PP(2)));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	name = require_agency(agency);
	t = new_table("case_files", "case file list", "Mục lục hồ sơ",
				  list_columns, lengthof(list_columns), 2);
	t->doc_subject = psprintf("%s, %d", name, year);
	t->titles[0].text = psprintf("MỤC LỤC HỒ SƠ NĂM %d", year);
	t->titles[1].text = name;
	values[0] = Int64GetDatum(agency);
	values[1] = Int32GetDatum(year);
	ioffice_exec(&list_rows, values, NULL, 0);
	export_add_spi_rows(t);
	result = export_table(t, format);
	export_log_report("case_file_list", format, t, "jsonb_build_object('agency', $1, 'year', $2)",
					  2, (Oid[]) {INT8OID, INT4OID}, values, NULL);
	SPI_finish();
	PG_RETURN_BYTEA_P(result);
}
