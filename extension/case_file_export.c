/*-------------------------------------------------------------------------
 * case_file_export.c
 *	  archive_transfer_export(): the list of the case files of a transfer
 *	  to the agency's archive (mục lục hồ sơ nộp lưu) as a workbook to print
 *	  and sign, or a CSV (written by export.c, as the registers are).
 *
 * SECURITY DEFINER, its owner not subject to row-level security: it decides
 * itself who may export (a clerk of the transfer's agency or an admin, who
 * see every document of the agency, so the counts are the whole files').
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/builtins.h"

#include "export.h"
#include "ioffice.h"

static const ExportColumn transfer_columns[] = {
	{"STT", 6, EXPORT_INT, true},
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

static IofficePlan transfer_info = {
	NULL,
	"SELECT t.agency_id, u.name, p.full_name, "
	"       to_char(t.transferred_at AT TIME ZONE ioffice.timezone(), 'DD/MM/YYYY') "
	"  FROM ioffice.archive_transfer t JOIN ioffice.unit u ON u.id = t.agency_id "
	"  JOIN ioffice.person p ON p.id = t.transferred_by WHERE t.id = $1",
	1, {INT8OID}
};

static IofficePlan transfer_rows = {
	NULL,
	"SELECT row_number() OVER (ORDER BY c.year, c.code)::int, c.code, c.title, c.opened_on, "
	"       c.closed_on, c.retention, "
	"       (SELECT count(*) FROM ioffice.case_file_document l "
	"         WHERE l.case_file_id = c.id AND l.unfiled_at IS NULL)::int, "
	"       (SELECT coalesce(sum(d.page_count), 0) FROM ioffice.case_file_document l "
	"          JOIN ioffice.document d ON d.id = l.document_id "
	"         WHERE l.case_file_id = c.id AND l.unfiled_at IS NULL)::int, "
	"       p.full_name, c.description "
	"  FROM ioffice.case_file c JOIN ioffice.person p ON p.id = c.responsible_id "
	" WHERE c.transfer_id = $1 ORDER BY c.year, c.code",
	1, {INT8OID}
};

PG_FUNCTION_INFO_V1(ioffice_archive_transfer_export);
Datum
ioffice_archive_transfer_export(PG_FUNCTION_ARGS)
{
	int64		transfer;
	int64		agency = 0;
	int64		person;
	ExportFormat format;
	ExportTable *t;
	Datum		values[1];
	char	   *agency_name;
	char	   *by;
	char	   *on;
	bytea	   *result;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("transfer and format must not be NULL")));
	transfer = PG_GETARG_INT64(0);
	format = export_parse_format(text_to_cstring(PG_GETARG_TEXT_PP(1)));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	person = ioffice_resolve_actor(false);
	values[0] = Int64GetDatum(transfer);
	ioffice_exec(&transfer_info, values, NULL, 1);
	if (SPI_processed == 1)
		ioffice_get_int64(0, 1, &agency);
	/* a transfer of another agency is not named to this person */
	if (SPI_processed == 0 ||
		!(ioffice_person_is_clerk_of(person, agency) ||
		  ioffice_person_has_role(person, "admin") ||
		  ioffice_person_of_agency(person, agency)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("unknown archive transfer %lld", (long long) transfer)));
	if (!(ioffice_person_is_clerk_of(person, agency) || ioffice_person_has_role(person, "admin")))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("not allowed to export archive transfer %lld", (long long) transfer),
				 errdetail("A transfer list is exported by a clerk of its agency or an admin.")));
	/* read the transfer again: the role checks ran queries of their own */
	ioffice_exec(&transfer_info, values, NULL, 1);
	agency_name = export_spi_text(0, 2);
	by = export_spi_text(0, 3);
	on = export_spi_text(0, 4);

	t = palloc0(sizeof(ExportTable));
	t->name = "transfer";
	t->what = "the transfer list workbook";
	t->context = psprintf("building the list of archive transfer %lld", (long long) transfer);
	t->sheet = "Mục lục hồ sơ nộp lưu";
	t->doc_title = "Mục lục hồ sơ nộp lưu";
	t->doc_subject = psprintf("%s, %s", agency_name, on);
	t->footer = "&CTrang &P/&N";
	t->columns = transfer_columns;
	t->ncolumns = lengthof(transfer_columns);
	t->ntitles = 3;
	t->titles = palloc0(sizeof(ExportTitle) * t->ntitles);
	t->titles[0].text = "MỤC LỤC HỒ SƠ NỘP LƯU";
	t->titles[0].big = true;
	t->titles[0].height = 24;
	t->titles[1].text = psprintf("Cơ quan: %s", agency_name);
	t->titles[1].height = 16.0 * (1 + export_utf8_chars(t->titles[1].text) / 150);
	t->titles[2].text = psprintf("Ngày nộp lưu: %s; người giao nộp: %s", on, by);

	ioffice_exec(&transfer_rows, values, NULL, 0);
	export_add_spi_rows(t);
	result = export_table(t, format);
	SPI_finish();
	PG_RETURN_BYTEA_P(result);
}
