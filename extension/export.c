/*-------------------------------------------------------------------------
 * export.c
 *	  A table (title lines, columns, rows) as an Excel workbook
 *	  (libxlsxwriter) or a CSV file (UTF-8 with BOM, RFC 4180, CRLF); or,
 *	  for a table to print, a Word document (python-docx, in a program of
 *	  its own) or a PDF (the PDF helper), see export_document().
 *
 * libxlsxwriter 1.1.4 only writes to a named file: the workbook is written
 * into a private directory under the server's temporary directory, read
 * back and removed, on error too.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xlsxwriter.h>

#include "catalog/pg_tablespace_d.h"
#include "catalog/pg_type.h"
#include "commands/tablespace.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/memutils.h"

#include "convert.h"
#include "export.h"
#include "ioffice.h"

#define XLSX_MAX_CHARS 32767	/* Excel's limit for the text of one cell */

/* What the error path must undo; lives in palloc'd memory, not registers. */
typedef struct ExportState
{
	lxw_workbook *workbook;		/* not yet closed */
	int			reserved_fds;
	int			fd;
	char		dir[MAXPGPATH];
	char		file[MAXPGPATH];
} ExportState;

ExportFormat
export_parse_format(const char *name)
{
	if (pg_strcasecmp(name, "xlsx") == 0)
		return EXPORT_XLSX;
	if (pg_strcasecmp(name, "csv") == 0)
		return EXPORT_CSV;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown export format \"%s\"", name),
			 errhint("Allowed formats: xlsx, csv.")));
	return EXPORT_CSV;			/* keep the compiler quiet */
}

void
export_log_report(const char *report, ExportFormat format, const ExportTable *t,
				  const char *params_sql, int nargs, Oid *argtypes, Datum *values,
				  const char *nulls)
{
	char	   *sql;

	/* a reporting tool's role without a person: nobody to name */
	if (ioffice_resolve_actor(true) == 0)
		return;
	sql = psprintf("SELECT ioffice._log_report_export('%s', '%s', (%s) || jsonb_build_object('rows', %d))",
				   report, format == EXPORT_XLSX ? "xlsx" : "csv", params_sql, t->nrows);
	if (SPI_execute_with_args(sql, nargs, argtypes, values, nulls, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "ioffice: could not log the export of the %s", report);
}

ExportFormat
export_parse_document_format(const char *name)
{
	if (pg_strcasecmp(name, "docx") == 0)
		return EXPORT_DOCX;
	if (pg_strcasecmp(name, "pdf") == 0)
		return EXPORT_PDF;
	if (pg_strcasecmp(name, "xlsx") != 0 && pg_strcasecmp(name, "csv") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown export format \"%s\"", name),
				 errhint("Allowed formats: xlsx, csv, docx, pdf.")));
	return export_parse_format(name);
}

char *
export_spi_text(int row, int col)
{
	char	   *s = ioffice_get_text(row, col);

	return s ? pg_server_to_any(s, strlen(s), PG_UTF8) : NULL;
}

int
export_utf8_chars(const char *s)
{
	int			n = 0;

	for (; *s; s++)
		if (((unsigned char) *s & 0xC0) != 0x80)
			n++;
	return n;
}

/*
 * The query's columns must have the types the table's columns read: a
 * mismatch is a mistake in our own query, caught before any row is read.
 */
static void
check_spi_columns(const ExportTable *t, TupleDesc desc)
{
	int			c;

	if (desc->natts < t->ncolumns)
		elog(ERROR, "ioffice: export query has %d columns, the table %d", desc->natts,
			 t->ncolumns);
	for (c = 0; c < t->ncolumns; c++)
	{
		Oid			type = SPI_gettypeid(desc, c + 1);
		bool		ok;

		switch (t->columns[c].kind)
		{
			case EXPORT_INT:
				ok = type == INT2OID || type == INT4OID || type == INT8OID;
				break;
			case EXPORT_DATE:
				ok = type == DATEOID;
				break;
			case EXPORT_TIMESTAMP:
				ok = type == TIMESTAMPOID;
				break;
			default:
				ok = true;
		}
		if (!ok)
			elog(ERROR, "ioffice: export column %d has type %u", c + 1, type);
	}
}

/* One value of SPI_tuptable, as its column's kind keeps it. */
static void
read_spi_value(const ExportColumn *col, TupleDesc desc, int row, int c, ExportValue *v)
{
	Datum		d = SPI_getbinval(SPI_tuptable->vals[row], desc, c + 1, &v->isnull);

	if (v->isnull)
		return;
	switch (col->kind)
	{
		case EXPORT_TEXT:
			v->v.text = export_spi_text(row, c + 1);
			break;
		case EXPORT_INT:
			switch (SPI_gettypeid(desc, c + 1))
			{
				case INT2OID:
					v->v.integer = DatumGetInt16(d);
					break;
				case INT4OID:
					v->v.integer = DatumGetInt32(d);
					break;
				default:
					v->v.integer = DatumGetInt64(d);
			}
			break;
		case EXPORT_DATE:
			v->v.date = DatumGetDateADT(d);
			break;
		case EXPORT_TIMESTAMP:
			v->v.timestamp = DatumGetTimestamp(d);
			break;
	}
}

void
export_add_spi_rows(ExportTable *t)
{
	TupleDesc	desc = SPI_tuptable->tupdesc;
	int			n = (int) SPI_processed;
	int			i,
				c;

	check_spi_columns(t, desc);
	if (t->cells == NULL)
		t->cells = palloc0(sizeof(ExportValue) * t->ncolumns * Max(n, 1));
	else
		t->cells = repalloc(t->cells, sizeof(ExportValue) * t->ncolumns * (t->nrows + n));
	for (i = 0; i < n; i++)
	{
		ExportValue *row = &t->cells[(t->nrows + i) * t->ncolumns];

		for (c = 0; c < t->ncolumns; c++)
			read_spi_value(&t->columns[c], desc, i, c, &row[c]);
	}
	t->nrows += n;
}

/* dd/MM/yyyy HH:mm, the way the seed's screens show times */
static char *
timestamp_text(Timestamp ts)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (TIMESTAMP_NOT_FINITE(ts) || timestamp2tm(ts, NULL, &tm, &fsec, NULL, NULL) != 0)
		return DatumGetCString(DirectFunctionCall1(timestamp_out, TimestampGetDatum(ts)));
	return psprintf("%02d/%02d/%04d %02d:%02d", tm.tm_mday, tm.tm_mon, tm.tm_year,
					tm.tm_hour, tm.tm_min);
}

static char *
date_text(DateADT d)
{
	int			y,
				m,
				day;

	if (DATE_NOT_FINITE(d))
		return DatumGetCString(DirectFunctionCall1(date_out, DateADTGetDatum(d)));
	j2date(d + POSTGRES_EPOCH_JDATE, &y, &m, &day);
	return psprintf("%02d/%02d/%04d", day, m, y);
}

static const char *
value_text(const ExportColumn *col, const ExportValue *v)
{
	if (v->isnull)
		return NULL;
	switch (col->kind)
	{
		case EXPORT_INT:
			return psprintf(INT64_FORMAT, v->v.integer);
		case EXPORT_DATE:
			return date_text(v->v.date);
		case EXPORT_TIMESTAMP:
			return timestamp_text(v->v.timestamp);
		default:
			return v->v.text;
	}
}

/* ---------------------------------------------------------------- CSV */

/* RFC 4180: quoted when it holds a separator, a quote or a line break */
static void
csv_field(StringInfo buf, const char *s, bool last)
{
	if (s != NULL)
	{
		if (strpbrk(s, ",\"\r\n") == NULL)
			appendStringInfoString(buf, s);
		else
		{
			const char *p;

			appendStringInfoChar(buf, '"');
			for (p = s; *p; p++)
			{
				if (*p == '"')
					appendStringInfoChar(buf, '"');
				appendStringInfoChar(buf, *p);
			}
			appendStringInfoChar(buf, '"');
		}
	}
	appendStringInfoString(buf, last ? "\r\n" : ",");
}

static bytea *
export_csv(const ExportTable *t)
{
	StringInfo	buf = makeStringInfo();
	int			i,
				c;

	/* the BOM makes Excel read UTF-8 rather than the Windows code page */
	appendBinaryStringInfo(buf, "\xEF\xBB\xBF", 3);
	for (c = 0; c < t->ncolumns; c++)
		csv_field(buf, t->columns[c].heading, c == t->ncolumns - 1);
	for (i = 0; i < t->nrows; i++)
	{
		const ExportValue *row = &t->cells[i * t->ncolumns];

		for (c = 0; c < t->ncolumns; c++)
			csv_field(buf, value_text(&t->columns[c], &row[c]), c == t->ncolumns - 1);
		CHECK_FOR_INTERRUPTS();
	}

	return ioffice_spi_bytea(buf->data, buf->len);
}

/* --------------------------------------------------------------- XLSX */

static void
xlsx_check(const ExportTable *t, lxw_error err, const char *what)
{
	if (err == LXW_ERROR_WORKSHEET_INDEX_OUT_OF_RANGE)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s would have more rows than a worksheet holds (1,048,576)", t->what),
				 errhint("Export it as csv.")));
	if (err != LXW_NO_ERROR)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not build %s: %s: %s", t->what, what, lxw_strerror(err))));
}

static void
xlsx_out_of_memory(const ExportTable *t)
{
	ereport(ERROR,
			(errcode(ERRCODE_OUT_OF_MEMORY),
			 errmsg("out of memory building %s", t->what)));
}

/* Excel refuses longer cell text: say that it was cut rather than fail */
static const char *
xlsx_text(const char *s)
{
	const char *p = s;
	int			n = 0;

	if (export_utf8_chars(s) <= XLSX_MAX_CHARS)
		return s;
	/* stop at the start of character number XLSX_MAX_CHARS, leaving room for the ellipsis */
	for (; *p; p++)
		if (((unsigned char) *p & 0xC0) != 0x80 && ++n == XLSX_MAX_CHARS)
			break;
	return psprintf("%.*s…", (int) (p - s), s);
}

static void
xlsx_string(const ExportTable *t, lxw_worksheet *ws, int row, int col, const char *s,
			lxw_format *fmt)
{
	if (s == NULL || s[0] == '\0')
		xlsx_check(t, worksheet_write_blank(ws, row, col, fmt), "blank cell");
	else
		xlsx_check(t, worksheet_write_string(ws, row, col, xlsx_text(s), fmt), "text cell");
}

/* A real date cell when Excel can hold the value (years 1900 to 9999), text otherwise. */
static void
xlsx_timestamp(const ExportTable *t, lxw_worksheet *ws, int row, int col, Timestamp ts,
			   lxw_format *fmt)
{
	struct pg_tm tm;
	fsec_t		fsec;
	lxw_datetime dt;

	if (TIMESTAMP_NOT_FINITE(ts) || timestamp2tm(ts, NULL, &tm, &fsec, NULL, NULL) != 0 ||
		tm.tm_year < 1900 || tm.tm_year > 9999)
	{
		xlsx_string(t, ws, row, col, timestamp_text(ts), fmt);
		return;
	}
	dt.year = tm.tm_year;
	dt.month = tm.tm_mon;
	dt.day = tm.tm_mday;
	dt.hour = tm.tm_hour;
	dt.min = tm.tm_min;
	dt.sec = tm.tm_sec;			/* whole seconds: the clerk sees minutes */
	xlsx_check(t, worksheet_write_datetime(ws, row, col, &dt, fmt), "date cell");
}

static void
xlsx_date(const ExportTable *t, lxw_worksheet *ws, int row, int col, DateADT d,
		  lxw_format *fmt)
{
	int			y,
				m,
				day;
	lxw_datetime dt;

	if (!DATE_NOT_FINITE(d))
		j2date(d + POSTGRES_EPOCH_JDATE, &y, &m, &day);
	if (DATE_NOT_FINITE(d) || y < 1900 || y > 9999)
	{
		xlsx_string(t, ws, row, col, date_text(d), fmt);
		return;
	}
	memset(&dt, 0, sizeof(dt));
	dt.year = y;
	dt.month = m;
	dt.day = day;
	xlsx_check(t, worksheet_write_datetime(ws, row, col, &dt, fmt), "date cell");
}

static lxw_format *
new_format(const ExportTable *t, lxw_workbook *wb, bool bordered)
{
	lxw_format *f = workbook_add_format(wb);

	if (f == NULL)
		xlsx_out_of_memory(t);
	format_set_font_name(f, "Times New Roman");
	format_set_font_size(f, 12);
	format_set_text_wrap(f);
	format_set_align(f, LXW_ALIGN_VERTICAL_TOP);
	if (bordered)
		format_set_border(f, LXW_BORDER_THIN);
	return f;
}

/*
 * The workbook being built, passed to each step of build_xlsx(): the table,
 * the sheet, and the cell formats, made once per workbook (libxlsxwriter
 * keeps every format until the workbook is closed).
 */
typedef struct XlsxSheet
{
	const ExportTable *t;
	lxw_workbook *wb;
	lxw_worksheet *ws;
	int			heading_row;	/* below the titles and an empty row */
	lxw_format *title;			/* a big title line */
	lxw_format *info;			/* another title line */
	lxw_format *head;			/* column headings */
	lxw_format *cell;			/* text */
	lxw_format *center;			/* centred text, numbers */
	lxw_format *when;			/* timestamps */
	lxw_format *day;			/* dates */
} XlsxSheet;

/* the formats of the sheet: Times New Roman 12, as the seed's printouts */
static void
add_formats(XlsxSheet *x)
{
	x->title = new_format(x->t, x->wb, false);
	format_set_bold(x->title);
	format_set_font_size(x->title, 14);
	format_set_align(x->title, LXW_ALIGN_CENTER);
	x->info = new_format(x->t, x->wb, false);
	x->head = new_format(x->t, x->wb, true);
	format_set_bold(x->head);
	format_set_align(x->head, LXW_ALIGN_CENTER);
	format_set_align(x->head, LXW_ALIGN_VERTICAL_CENTER);
	format_set_bg_color(x->head, 0xD9D9D9);
	x->cell = new_format(x->t, x->wb, true);
	x->center = new_format(x->t, x->wb, true);
	format_set_align(x->center, LXW_ALIGN_CENTER);
	x->when = new_format(x->t, x->wb, true);
	format_set_align(x->when, LXW_ALIGN_CENTER);
	format_set_num_format(x->when, "dd/mm/yyyy hh:mm");
	x->day = new_format(x->t, x->wb, true);
	format_set_align(x->day, LXW_ALIGN_CENTER);
	format_set_num_format(x->day, "dd/mm/yyyy");
}

/* The title lines above the table, merged across its columns; then the column headings. */
static void
write_titles(XlsxSheet *x)
{
	const ExportTable *t = x->t;
	int			i,
				c;

	for (c = 0; c < t->ncolumns; c++)
		xlsx_check(t, worksheet_set_column(x->ws, c, c, t->columns[c].width, NULL), "column");
	for (i = 0; i < t->ntitles; i++)
	{
		const ExportTitle *line = &t->titles[i];

		xlsx_check(t, worksheet_merge_range(x->ws, i, 0, i, t->ncolumns - 1,
											xlsx_text(line->text),
											line->big ? x->title : x->info), "title");
		/* Excel does not fit the height of merged cells: the caller says it */
		if (line->height > 0)
			xlsx_check(t, worksheet_set_row(x->ws, i, line->height, NULL), "title row");
	}
	for (c = 0; c < t->ncolumns; c++)
		xlsx_check(t, worksheet_write_string(x->ws, x->heading_row, c, t->columns[c].heading,
											 x->head), "heading");
}

/* the format of a column's cells: dates and numbers centred, text as the column says */
static lxw_format *
column_format(const XlsxSheet *x, const ExportColumn *col)
{
	switch (col->kind)
	{
		case EXPORT_DATE:
			return x->day;
		case EXPORT_TIMESTAMP:
			return x->when;
		case EXPORT_INT:
			return x->center;
		default:
			return col->center ? x->center : x->cell;
	}
}

/* One cell, as the kind of its column: a number, a real date, or text. */
static void
write_cell(XlsxSheet *x, int row, int c, const ExportValue *v)
{
	const ExportTable *t = x->t;
	const ExportColumn *col = &t->columns[c];
	lxw_format *fmt = column_format(x, col);

	if (v->isnull)
	{
		xlsx_check(t, worksheet_write_blank(x->ws, row, c, fmt), "blank cell");
		return;
	}
	switch (col->kind)
	{
		case EXPORT_INT:
			xlsx_check(t, worksheet_write_number(x->ws, row, c, (double) v->v.integer, fmt),
					   "number cell");
			break;
		case EXPORT_DATE:
			xlsx_date(t, x->ws, row, c, v->v.date, fmt);
			break;
		case EXPORT_TIMESTAMP:
			xlsx_timestamp(t, x->ws, row, c, v->v.timestamp, fmt);
			break;
		default:
			xlsx_string(t, x->ws, row, c, v->v.text, fmt);
	}
}

static void
write_rows(XlsxSheet *x)
{
	const ExportTable *t = x->t;
	int			i,
				c;

	for (i = 0; i < t->nrows; i++)
	{
		const ExportValue *values = &t->cells[i * t->ncolumns];

		for (c = 0; c < t->ncolumns; c++)
			write_cell(x, x->heading_row + 1 + i, c, &values[c]);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * Printing: the headings stay on screen and repeat on every page, A4
 * landscape, as wide as one page.
 */
static void
set_page(XlsxSheet *x)
{
	worksheet_freeze_panes(x->ws, x->heading_row + 1, 0);
	xlsx_check(x->t, worksheet_repeat_rows(x->ws, x->heading_row, x->heading_row),
			   "print titles");
	worksheet_set_landscape(x->ws);
	worksheet_set_paper(x->ws, 9);	/* A4 */
	worksheet_fit_to_pages(x->ws, 1, 0);
	if (x->t->footer != NULL)
		xlsx_check(x->t, worksheet_set_footer(x->ws, x->t->footer), "footer");
}

/* Write the file: the only step that opens files, and it frees the workbook. */
static void
close_workbook(const ExportTable *t, ExportState *st)
{
	lxw_workbook *wb = st->workbook;

	/* the packager holds the output file and one scratch file at a time */
	ReserveExternalFD();
	st->reserved_fds++;
	ReserveExternalFD();
	st->reserved_fds++;

	/* frees the workbook whatever happens */
	st->workbook = NULL;
	xlsx_check(t, workbook_close(wb), "writing the file");
}

/* Build the workbook in st->workbook and write it to st->file. */
static void
build_xlsx(const ExportTable *t, ExportState *st)
{
	lxw_workbook_options options = {0};
	lxw_doc_properties props = {0};
	XlsxSheet	x;

	memset(&x, 0, sizeof(x));
	x.t = t;
	x.heading_row = t->ntitles + 1;	/* an empty row between */
	options.tmpdir = st->dir;	/* its own scratch files go to our private directory */
	st->workbook = x.wb = workbook_new_opt(st->file, &options);
	if (x.wb == NULL)
		xlsx_out_of_memory(t);
	x.ws = workbook_add_worksheet(x.wb, t->sheet);
	if (x.ws == NULL)
		xlsx_out_of_memory(t);
	add_formats(&x);

	props.title = unconstify(char *, t->doc_title);
	props.subject = unconstify(char *, t->doc_subject);
	xlsx_check(t, workbook_set_properties(x.wb, &props), "properties");

	write_titles(&x);
	write_rows(&x);
	set_page(&x);
	close_workbook(t, st);
}

/* A directory only this server can read, under its temporary directory. */
static void
make_private_dir(const ExportTable *t, ExportState *st)
{
	char		base[MAXPGPATH];
	Oid			ts;

	PrepareTempTablespaces();
	ts = GetNextTempTableSpace();
	if (!OidIsValid(ts))
		ts = OidIsValid(MyDatabaseTableSpace) ? MyDatabaseTableSpace : DEFAULTTABLESPACE_OID;
	TempTablespacePath(base, ts);
	if (MakePGDirectory(base) < 0 && errno != EEXIST)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"%s\": %m", base)));

	/* the prefix lets a restart after a crash remove what we left */
	snprintf(st->dir, sizeof(st->dir), "%s/%sioffice_%s_%d_XXXXXX", base,
			 PG_TEMP_FILE_PREFIX, t->name, MyProcPid);
	if (mkdtemp(st->dir) == NULL)
	{
		char	   *failed = pstrdup(st->dir);

		st->dir[0] = '\0';
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"%s\": %m", failed)));
	}
	snprintf(st->file, sizeof(st->file), "%s/%s.xlsx", st->dir, t->name);
}

/* The file as a bytea allocated in the caller's (upper executor) context. */
static bytea *
read_back(const ExportTable *t, ExportState *st)
{
	struct stat sb;
	bytea	   *result;
	size_t		done = 0;

	st->fd = OpenTransientFile(st->file, O_RDONLY | PG_BINARY);
	if (st->fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\": %m", st->file)));
	if (fstat(st->fd, &sb) < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat file \"%s\": %m", st->file)));
	if (sb.st_size > (off_t) (MaxAllocSize - VARHDRSZ))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s is too large: %lld bytes", t->what, (long long) sb.st_size)));

	result = SPI_palloc(VARHDRSZ + sb.st_size);
	while (done < (size_t) sb.st_size)
	{
		ssize_t		n = read(st->fd, VARDATA(result) + done, sb.st_size - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not read file \"%s\": %m", st->file)));
		if (n == 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("file \"%s\" is shorter than it was", st->file)));
		done += n;
	}
	SET_VARSIZE(result, VARHDRSZ + sb.st_size);

	CloseTransientFile(st->fd);
	st->fd = -1;
	return result;
}

/* Runs on success and on error: nothing of the export may stay behind. */
static void
cleanup(ExportState *st)
{
	if (st->workbook != NULL)
	{
		lxw_workbook_free(st->workbook);
		st->workbook = NULL;
	}
	for (; st->reserved_fds > 0; st->reserved_fds--)
		ReleaseExternalFD();
	if (st->fd >= 0)
	{
		CloseTransientFile(st->fd);
		st->fd = -1;
	}
	if (st->file[0] != '\0' && unlink(st->file) < 0 && errno != ENOENT)
		ereport(LOG,
				(errcode_for_file_access(),
				 errmsg("could not remove file \"%s\": %m", st->file)));
	st->file[0] = '\0';
	if (st->dir[0] != '\0' && rmdir(st->dir) < 0 && errno != ENOENT)
		ereport(LOG,
				(errcode_for_file_access(),
				 errmsg("could not remove directory \"%s\": %m", st->dir)));
	st->dir[0] = '\0';
}

static void
xlsx_error_context(void *arg)
{
	errcontext("%s", ((const ExportTable *) arg)->context);
}

static bytea *
export_xlsx(const ExportTable *t)
{
	ExportState *st = palloc0(sizeof(ExportState));
	bytea	   *result = NULL;
	ErrorContextCallback context;

	context.callback = xlsx_error_context;
	context.arg = (void *) t;
	context.previous = error_context_stack;
	error_context_stack = &context;
	st->fd = -1;
	PG_TRY();
	{
		make_private_dir(t, st);
		build_xlsx(t, st);
		result = read_back(t, st);
	}
	PG_FINALLY();
	{
		cleanup(st);
	}
	PG_END_TRY();
	error_context_stack = context.previous;
	return result;
}

/* ----------------------------------------------------------- DOCX, PDF */

/* a field of the spec: no tab, no line break */
static void
spec_field(StringInfo buf, const char *s)
{
	appendStringInfoChar(buf, '\t');
	for (; s != NULL && *s; s++)
		appendStringInfoChar(buf, (*s == '\t' || *s == '\n' || *s == '\r') ? ' ' : *s);
}

/*
 * The table as a document to print.  A Word document or a PDF is not
 * written here: the table goes, as a small text spec (title lines,
 * columns, rows), to a program of its own under the PDF helper's limits
 * (pdf_helper.c): the PDF helper ("ioffice_pdf table": PoDoFo, Liberation
 * Serif embedded, Vietnamese drawn as in the issue stamp) or
 * helpers/ioffice_docx.py (python-docx).  A library does the zip and the
 * WordprocessingML; a backend prints neither, and what could go wrong in
 * them costs this call an error, not the server a restart.
 */
static bytea *
export_document(const ExportTable *t, ExportFormat format)
{
	StringInfoData spec;
	StringInfoData out;
	char		share[MAXPGPATH];
	char	   *pdf_argv[] = {NULL, "table", NULL};
	char	   *docx_argv[] = {NULL, "-I", NULL, NULL};
	char	   *reason;
	int			exit_code;
	bool		truncated;

	initStringInfo(&spec);
	for (int i = 0; i < t->ntitles; i++)
	{
		appendStringInfoString(&spec, t->titles[i].big ? "title" : "line");
		spec_field(&spec, t->titles[i].text);
		appendStringInfoChar(&spec, '\n');
	}
	for (int c = 0; c < t->ncolumns; c++)
	{
		const ExportColumn *col = &t->columns[c];

		appendStringInfo(&spec, "col\t%g\t%d", col->width,
						 col->center || col->kind != EXPORT_TEXT ? 1 : 0);
		spec_field(&spec, col->heading);
		appendStringInfoChar(&spec, '\n');
	}
	for (int i = 0; i < t->nrows; i++)
	{
		const ExportValue *row = &t->cells[i * t->ncolumns];

		appendStringInfoString(&spec, "row");
		for (int c = 0; c < t->ncolumns; c++)
			spec_field(&spec, value_text(&t->columns[c], &row[c]));
		appendStringInfoChar(&spec, '\n');
		CHECK_FOR_INTERRUPTS();
	}

	initStringInfo(&out);
	if (format == EXPORT_PDF)
	{
		reason = ioffice_pdf_helper_run(pdf_argv, spec.data, spec.len, &out, &exit_code);
		if (reason == NULL && exit_code == 0)
		{
			char	   *nl = memchr(out.data, '\n', out.len);
			size_t		len;

			if (nl != NULL && sscanf(out.data, "ok %zu", &len) == 1 &&
				len == (size_t) (out.data + out.len - (nl + 1)))
				return ioffice_spi_bytea(nl + 1, len);
		}
	}
	else
	{
		get_share_path(my_exec_path, share);
		docx_argv[2] = psprintf("%s/extension/ioffice_docx.py", share);
		reason = ioffice_helper_run_program(ioffice_convert_python, "the Word writer", docx_argv,
											spec.data, spec.len, &out, 0, &truncated, &exit_code);
		if (reason == NULL && exit_code == 0 && out.len > 0)
			return ioffice_spi_bytea(out.data, out.len);
	}
	ereport(ERROR,
			(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
			 errmsg("could not write %s as %s", t->what, format == EXPORT_PDF ? "PDF" : "docx"),
			 errdetail("%s", reason ? reason :
					   psprintf("%s ended with status %d: %s",
								format == EXPORT_PDF ? "the PDF helper" : "the Word writer",
								exit_code, pnstrdup(out.data, Min(out.len, 200))))));
	return NULL;				/* keep the compiler quiet */
}

bytea *
export_table(const ExportTable *t, ExportFormat format)
{
	switch (format)
	{
		case EXPORT_XLSX:
			return export_xlsx(t);
		case EXPORT_DOCX:
		case EXPORT_PDF:
			return export_document(t, format);
		default:
			return export_csv(t);
	}
}
