/*-------------------------------------------------------------------------
 * register_export.c
 *	  register_export(): the outgoing or incoming register of a year (sổ
 *	  đăng ký văn bản đi / đến, Decree 30 appendix IV) as a workbook to
 *	  print and bind, or a CSV (written by export.c).
 *
 * The rows come from the views outgoing_register and incoming_register.
 * This function is
 * SECURITY DEFINER and its owner, a superuser, is not subject to row-level
 * security, so it decides itself who may export a register and which of
 * its rows they get: a clerk of the register's agency and an admin get
 * every row; a role granted ioffice_reader gets the ordinary entries of an
 * ordinary register (neither the row given nor the year's row confidential),
 * as the view's policies give them.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"

#include "export.h"
#include "ioffice.h"

/* The columns of Decree 30's registers, in their order; the views' comments. */
static const ExportColumn outgoing_columns[] = {
	{"Số, ký hiệu văn bản", 16, EXPORT_TEXT, true},
	{"Ngày tháng văn bản", 12, EXPORT_DATE, true},
	{"Tên loại và trích yếu nội dung văn bản", 42, EXPORT_TEXT, false},
	{"Người ký", 18, EXPORT_TEXT, false},
	{"Nơi nhận văn bản", 28, EXPORT_TEXT, false},
	{"Đơn vị, người nhận bản lưu", 20, EXPORT_TEXT, false},
	{"Số lượng bản", 8, EXPORT_INT, true},
	{"Ngày chuyển", 12, EXPORT_DATE, true},
	{"Ký nhận", 12, EXPORT_TEXT, false},	/* signed by hand in the printed book */
	{"Ghi chú", 16, EXPORT_TEXT, false}
};

static const ExportColumn incoming_columns[] = {
	{"Ngày đến", 12, EXPORT_DATE, true},
	{"Số đến", 8, EXPORT_INT, true},
	{"Tác giả", 24, EXPORT_TEXT, false},
	{"Số, ký hiệu", 16, EXPORT_TEXT, true},
	{"Ngày tháng", 12, EXPORT_DATE, true},
	{"Tên loại và trích yếu nội dung", 42, EXPORT_TEXT, false},
	{"Đơn vị hoặc người nhận", 24, EXPORT_TEXT, false},
	{"Ngày chuyển", 12, EXPORT_DATE, true},
	{"Ký nhận", 12, EXPORT_TEXT, false},
	{"Ghi chú", 16, EXPORT_TEXT, false}
};

static IofficePlan outgoing_rows = {
	NULL,
	"SELECT symbol, issued_on, type_and_abstract, signer, recipients, archive_unit, "
	"       copies, sent_on, receipt, note "
	"  FROM ioffice.outgoing_register "
	" WHERE agency_id = $1 AND register_code = $2 AND year = $3 AND ($4 OR NOT confidential) "
	" ORDER BY number, symbol",
	4, {INT8OID, TEXTOID, INT4OID, BOOLOID}
};

static IofficePlan incoming_rows = {
	NULL,
	"SELECT received_on, number, sender, sender_symbol, sender_date, type_and_abstract, "
	"       handlers, assigned_on, receipt, note "
	"  FROM ioffice.incoming_register "
	" WHERE agency_id = $1 AND register_code = $2 AND year = $3 AND ($4 OR NOT confidential) "
	" ORDER BY number",
	4, {INT8OID, TEXTOID, INT4OID, BOOLOID}
};

/* What differs between the two books */
typedef struct RegisterBook
{
	const char *direction;
	const char *title;			/* the book's heading */
	const char *sheet;
	const ExportColumn *columns;
	int			ncolumns;
	IofficePlan *rows;			/* $1 agency, $2 code, $3 year, $4 every row */
} RegisterBook;

static const RegisterBook books[] = {
	{"outgoing", "SỔ ĐĂNG KÝ VĂN BẢN ĐI", "Sổ đăng ký văn bản đi",
	outgoing_columns, lengthof(outgoing_columns), &outgoing_rows},
	{"incoming", "SỔ ĐĂNG KÝ VĂN BẢN ĐẾN", "Sổ đăng ký văn bản đến",
	incoming_columns, lengthof(incoming_columns), &incoming_rows}
};

static IofficePlan register_info = {
	NULL,
	"SELECT r.agency_id, r.direction, r.code, r.name, r.confidential, u.name "
	"  FROM ioffice.register r JOIN ioffice.unit u ON u.id = r.agency_id WHERE r.id = $1",
	1, {INT8OID}
};

/*
 * Any year's row names the register (agency and code); the rows are those
 * the view puts in the year asked for, and the name that year's row's.
 */
static IofficePlan register_of_year = {
	NULL,
	"SELECT name, confidential FROM ioffice.register "
	" WHERE agency_id = $1 AND direction = $4 AND code = $2 AND year = $3",
	4, {INT8OID, TEXTOID, INT4OID, TEXTOID}
};

/*
 * What one register_export() call knows, passed to each of its steps: the
 * register and year asked for, what its rows say, and what the caller may
 * see of it.
 */
typedef struct RegisterExport
{
	int64		reg;
	int32		year;
	int64		agency;
	char	   *agency_name;	/* UTF-8, for the workbook */
	char	   *code;
	char	   *name;			/* the year's row's, UTF-8 */
	bool		confidential;	/* the row given, or the year's row */
	bool		every_row;		/* a clerk of its agency or an admin */
	const RegisterBook *book;
} RegisterExport;

/* The register given: its agency, code, name and book; unknown is 42704. */
static void
read_register(RegisterExport *rx)
{
	Datum		values[1];

	values[0] = Int64GetDatum(rx->reg);
	ioffice_exec(&register_info, values, NULL, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("unknown register %lld", (long long) rx->reg)));
	ioffice_get_int64(0, 1, &rx->agency);
	rx->book = strcmp(ioffice_get_text(0, 2), "incoming") == 0 ? &books[1] : &books[0];
	rx->code = ioffice_get_text(0, 3);
	rx->name = export_spi_text(0, 4);
	ioffice_get_bool(0, 5, &rx->confidential);
	rx->agency_name = export_spi_text(0, 6);
}

/* The row of the year asked for, when there is one: its name, and its secrecy too. */
static void
read_year_row(RegisterExport *rx)
{
	Datum		values[4];

	values[0] = Int64GetDatum(rx->agency);
	values[1] = CStringGetTextDatum(rx->code);
	values[2] = Int32GetDatum(rx->year);
	values[3] = CStringGetTextDatum(rx->book->direction);
	ioffice_exec(&register_of_year, values, NULL, 1);
	if (SPI_processed > 0)
	{
		bool		year_confidential = false;

		rx->name = export_spi_text(0, 1);
		/* the year's row decides: a DBA may have made it confidential alone */
		ioffice_get_bool(0, 2, &year_confidential);
		rx->confidential |= year_confidential;
	}
}

/* Is the outer role (not the owner of this SECURITY DEFINER function) a reader? */
static bool
outer_role_is_reader(void)
{
	Oid			outer = GetOuterUserId();
	Oid			reader = get_role_oid("ioffice_reader", true);

	/*
	 * A superuser holds every role's privileges; only a real grant makes it
	 * a reader, or any superuser connection naming any person in
	 * ioffice.actor would get the book.
	 */
	if (!OidIsValid(reader))
		return false;
	if (superuser_arg(outer))
		return is_member_of_role_nosuper(outer, reader);
	return has_privs_of_role(outer, reader);
}

/*
 * Who may export the book: a clerk of its agency or an admin (every row),
 * or a reader (an ordinary register's ordinary rows).
 */
static void
check_exporter(RegisterExport *rx)
{
	int64		person = ioffice_resolve_actor(true);

	rx->every_row = person != 0 &&
		(ioffice_person_is_clerk_of(person, rx->agency) || ioffice_person_has_role(person, "admin"));
	if (rx->every_row)
		return;
	if (!outer_role_is_reader())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("not allowed to export register %lld", (long long) rx->reg),
				 errdetail("A register is exported by a clerk of its agency, an admin "
						   "or a member of ioffice_reader.")));
	if (rx->confidential)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("not allowed to export confidential register %lld", (long long) rx->reg),
				 errdetail("A confidential register is exported by a clerk of its agency "
						   "or an admin.")));
}

/* The book's table: Decree 30's columns, and its title lines (agency, register, year). */
static ExportTable *
book_table(const RegisterExport *rx)
{
	ExportTable *t = palloc0(sizeof(ExportTable));

	t->name = "register";
	t->what = "the register workbook";
	t->context = psprintf("building the register workbook of register %lld, year %d",
						  (long long) rx->reg, rx->year);
	t->sheet = rx->book->sheet;
	t->doc_title = rx->book->sheet;
	t->doc_subject = psprintf("%s, %s, năm %d", rx->name, rx->agency_name, rx->year);
	t->footer = "&CTrang &P/&N";
	t->columns = rx->book->columns;
	t->ncolumns = rx->book->ncolumns;
	t->ntitles = 4;
	t->titles = palloc0(sizeof(ExportTitle) * t->ntitles);
	t->titles[0].text = rx->book->title;
	t->titles[0].big = true;
	t->titles[0].height = 24;
	t->titles[1].text = psprintf("Cơ quan: %s", rx->agency_name);
	/* merged cells are not fitted: about 150 characters a line across the table */
	t->titles[1].height = 16.0 * (1 + export_utf8_chars(t->titles[1].text) / 150);
	t->titles[2].text = psprintf("Sổ văn bản: %s", rx->name);
	t->titles[2].height = 16.0 * (1 + export_utf8_chars(t->titles[2].text) / 150);
	t->titles[3].text = psprintf("Năm: %d", rx->year);
	return t;
}

/* The view's rows of the register's year, those the caller may see. */
static void
add_book_rows(const RegisterExport *rx, ExportTable *t)
{
	Datum		args[4];

	args[0] = Int64GetDatum(rx->agency);
	args[1] = CStringGetTextDatum(rx->code);
	args[2] = Int32GetDatum(rx->year);
	args[3] = BoolGetDatum(rx->every_row);
	ioffice_exec(rx->book->rows, args, NULL, 0);
	export_add_spi_rows(t);
}

PG_FUNCTION_INFO_V1(ioffice_register_export);
Datum
ioffice_register_export(PG_FUNCTION_ARGS)
{
	RegisterExport rx;
	ExportFormat format;
	ExportTable *t;
	bytea	   *result;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("register, year and format must not be NULL")));
	memset(&rx, 0, sizeof(rx));
	rx.reg = PG_GETARG_INT64(0);
	rx.year = PG_GETARG_INT32(1);
	format = export_parse_format(text_to_cstring(PG_GETARG_TEXT_PP(2)));
	if (rx.year < 1900 || rx.year > 9999)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("year %d is out of range", rx.year),
				 errhint("Registers are kept for the years 1900 to 9999.")));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	read_register(&rx);
	read_year_row(&rx);
	check_exporter(&rx);

	t = book_table(&rx);
	add_book_rows(&rx, t);
	result = export_table(t, format);
	/* once the file is made: the export, in the access log (III.6l) */
	{
		Oid			types[5] = {INT8OID, INT8OID, TEXTOID, TEXTOID, INT4OID};
		Datum		values[5];

		values[0] = Int64GetDatum(rx.reg);
		values[1] = Int64GetDatum(rx.agency);
		values[2] = CStringGetTextDatum(rx.book->direction);
		values[3] = CStringGetTextDatum(rx.code);
		values[4] = Int32GetDatum(rx.year);
		export_log_report("register", format, t,
						  "jsonb_build_object('register', $1, 'agency', $2, 'direction', $3, "
						  "'code', $4, 'year', $5)", 5, types, values, NULL);
	}
	SPI_finish();
	PG_RETURN_BYTEA_P(result);
}
