/*-------------------------------------------------------------------------
 * trail_export.c
 *	  trail_export(): the processing trail of a document as a file a clerk
 *	  opens, an Excel workbook (libxlsxwriter) or a CSV.
 *
 * The rows come from the SQL function trail(), so who may see a trail is
 * decided in one place.  libxlsxwriter 1.1.4 only writes to a named file:
 * the workbook is written into a private directory under the server's
 * temporary directory, read back and removed, on error too.
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
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "ioffice.h"

#define NCOLS 10
#define XLSX_MAX_CHARS 32767	/* Excel's limit for the text of one cell */

static const char *const headings[NCOLS] = {
	"STT", "Cán bộ gửi", "Nội dung yêu cầu", "Cán bộ nhận", "Ngày nhận",
	"Nội dung xử lý", "Hạn xử lý", "Ngày xử lý", "Trạng thái hoàn thành",
	"Tập tin đính kèm"
};
static const double widths[NCOLS] = {6, 24, 36, 24, 17, 36, 12, 17, 14, 26};

/* trail() enforces visibility; times are turned to ioffice.timezone here */
static IofficePlan trail_rows = {
	NULL,
	"SELECT step, sender, request, receiver, received_at AT TIME ZONE ioffice.timezone(), "
	"       processing_note, deadline, processed_at AT TIME ZONE ioffice.timezone(), "
	"       status, attachments "
	"  FROM ioffice.trail($1) ORDER BY step",
	1, {INT8OID}
};

static IofficePlan trail_document = {
	NULL,
	"SELECT symbol, abstract FROM ioffice.document WHERE id = $1",
	1, {INT8OID}
};

typedef struct TrailRow
{
	int32		step;
	char	   *sender;
	char	   *request;
	char	   *receiver;
	bool		has_received;
	Timestamp	received;		/* local time, without zone */
	char	   *note;
	bool		has_deadline;
	DateADT		deadline;
	bool		has_processed;
	Timestamp	processed;
	char	   *status;
	char	   *attachments;
} TrailRow;

typedef struct Trail
{
	int64		doc;
	char	   *symbol;			/* NULL until issued */
	char	   *abstract;
	int			nrows;
	TrailRow   *rows;
} Trail;

/* What the error path must undo; lives in palloc'd memory, not registers. */
typedef struct ExportState
{
	lxw_workbook *workbook;		/* not yet closed */
	int			reserved_fds;
	int			fd;
	char		dir[MAXPGPATH];
	char		file[MAXPGPATH];
} ExportState;

/* Text of the current SPI row in UTF-8 (the files are UTF-8 whatever the database's encoding). */
static char *
utf8_text(int row, int col)
{
	char	   *s = ioffice_get_text(row, col);

	return s ? pg_server_to_any(s, strlen(s), PG_UTF8) : NULL;
}

static bool
get_timestamp(int row, int col, Timestamp *out)
{
	bool		isnull;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, &isnull);

	if (!isnull)
		*out = DatumGetTimestamp(d);
	return !isnull;
}

static Trail *
load_trail(int64 doc)
{
	Trail	   *t = palloc0(sizeof(Trail));
	Datum		values[1];
	int			i;

	t->doc = doc;
	values[0] = Int64GetDatum(doc);
	ioffice_exec(&trail_rows, values, NULL, 0);
	t->nrows = (int) SPI_processed;
	t->rows = palloc0(sizeof(TrailRow) * Max(t->nrows, 1));
	for (i = 0; i < t->nrows; i++)
	{
		TrailRow   *r = &t->rows[i];
		bool		isnull;
		Datum		d;

		ioffice_get_int32(i, 1, &r->step);
		r->sender = utf8_text(i, 2);
		r->request = utf8_text(i, 3);
		r->receiver = utf8_text(i, 4);
		r->has_received = get_timestamp(i, 5, &r->received);
		r->note = utf8_text(i, 6);
		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 7, &isnull);
		r->has_deadline = !isnull;
		if (!isnull)
			r->deadline = DatumGetDateADT(d);
		r->has_processed = get_timestamp(i, 8, &r->processed);
		r->status = utf8_text(i, 9);
		r->attachments = utf8_text(i, 10);
	}

	/* read after trail(): it has already refused what the actor may not see */
	ioffice_exec(&trail_document, values, NULL, 1);
	t->symbol = utf8_text(0, 1);
	t->abstract = utf8_text(0, 2);
	if (t->abstract == NULL)
		t->abstract = "";
	return t;
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

static StringInfo
build_csv(Trail *t)
{
	StringInfo	buf = makeStringInfo();
	int			i;

	/* the BOM makes Excel read UTF-8 rather than the Windows code page */
	appendBinaryStringInfo(buf, "\xEF\xBB\xBF", 3);
	for (i = 0; i < NCOLS; i++)
		csv_field(buf, headings[i], i == NCOLS - 1);
	for (i = 0; i < t->nrows; i++)
	{
		TrailRow   *r = &t->rows[i];

		csv_field(buf, psprintf("%d", r->step), false);
		csv_field(buf, r->sender, false);
		csv_field(buf, r->request, false);
		csv_field(buf, r->receiver, false);
		csv_field(buf, r->has_received ? timestamp_text(r->received) : NULL, false);
		csv_field(buf, r->note, false);
		csv_field(buf, r->has_deadline ? date_text(r->deadline) : NULL, false);
		csv_field(buf, r->has_processed ? timestamp_text(r->processed) : NULL, false);
		csv_field(buf, r->status, false);
		csv_field(buf, r->attachments, true);
		CHECK_FOR_INTERRUPTS();
	}
	return buf;
}

/* --------------------------------------------------------------- XLSX */

static void
xlsx_check(lxw_error err, const char *what)
{
	if (err != LXW_NO_ERROR)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not build the trail workbook: %s: %s", what, lxw_strerror(err))));
}

static int
utf8_chars(const char *s)
{
	int			n = 0;

	for (; *s; s++)
		if (((unsigned char) *s & 0xC0) != 0x80)
			n++;
	return n;
}

/* Excel refuses longer cell text: say that it was cut rather than fail */
static const char *
xlsx_text(const char *s)
{
	const char *p = s;
	int			n = 0;

	if (utf8_chars(s) <= XLSX_MAX_CHARS)
		return s;
	/* stop at the start of character number XLSX_MAX_CHARS, leaving room for the ellipsis */
	for (; *p; p++)
		if (((unsigned char) *p & 0xC0) != 0x80 && ++n == XLSX_MAX_CHARS)
			break;
	return psprintf("%.*s…", (int) (p - s), s);
}

static void
xlsx_string(lxw_worksheet *ws, int row, int col, const char *s, lxw_format *fmt)
{
	if (s == NULL || s[0] == '\0')
		xlsx_check(worksheet_write_blank(ws, row, col, fmt), "blank cell");
	else
		xlsx_check(worksheet_write_string(ws, row, col, xlsx_text(s), fmt), "text cell");
}

/* A real date cell when Excel can hold the value (years 1900 to 9999), text otherwise. */
static void
xlsx_timestamp(lxw_worksheet *ws, int row, int col, bool has, Timestamp ts,
			   lxw_format *fmt)
{
	struct pg_tm tm;
	fsec_t		fsec;
	lxw_datetime dt;

	if (!has)
	{
		xlsx_check(worksheet_write_blank(ws, row, col, fmt), "blank cell");
		return;
	}
	if (TIMESTAMP_NOT_FINITE(ts) || timestamp2tm(ts, NULL, &tm, &fsec, NULL, NULL) != 0 ||
		tm.tm_year < 1900 || tm.tm_year > 9999)
	{
		xlsx_string(ws, row, col, timestamp_text(ts), fmt);
		return;
	}
	dt.year = tm.tm_year;
	dt.month = tm.tm_mon;
	dt.day = tm.tm_mday;
	dt.hour = tm.tm_hour;
	dt.min = tm.tm_min;
	dt.sec = tm.tm_sec;			/* whole seconds: the clerk sees minutes */
	xlsx_check(worksheet_write_datetime(ws, row, col, &dt, fmt), "date cell");
}

static void
xlsx_date(lxw_worksheet *ws, int row, int col, bool has, DateADT d, lxw_format *fmt)
{
	int			y,
				m,
				day;
	lxw_datetime dt;

	if (!has)
	{
		xlsx_check(worksheet_write_blank(ws, row, col, fmt), "blank cell");
		return;
	}
	if (!DATE_NOT_FINITE(d))
		j2date(d + POSTGRES_EPOCH_JDATE, &y, &m, &day);
	if (DATE_NOT_FINITE(d) || y < 1900 || y > 9999)
	{
		xlsx_string(ws, row, col, date_text(d), fmt);
		return;
	}
	memset(&dt, 0, sizeof(dt));
	dt.year = y;
	dt.month = m;
	dt.day = day;
	xlsx_check(worksheet_write_datetime(ws, row, col, &dt, fmt), "date cell");
}

static lxw_format *
new_format(lxw_workbook *wb, bool bordered)
{
	lxw_format *f = workbook_add_format(wb);

	if (f == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory building the trail workbook")));
	format_set_font_name(f, "Times New Roman");
	format_set_font_size(f, 12);
	format_set_text_wrap(f);
	format_set_align(f, LXW_ALIGN_VERTICAL_TOP);
	if (bordered)
		format_set_border(f, LXW_BORDER_THIN);
	return f;
}

#define TITLE_ROW 0
#define SYMBOL_ROW 1
#define ABSTRACT_ROW 2
#define HEADING_ROW 4

/* Build the workbook in st->workbook and write it to st->file. */
static void
build_xlsx(Trail *t, ExportState *st)
{
	lxw_workbook_options options = {0};
	lxw_doc_properties props = {0};
	lxw_workbook *wb;
	lxw_worksheet *ws;
	lxw_format *title,
			   *info,
			   *head,
			   *cell,
			   *center,
			   *when,
			   *day;
	lxw_error	err;
	int			i;

	options.tmpdir = st->dir;	/* its own scratch files go to our private directory */
	st->workbook = wb = workbook_new_opt(st->file, &options);
	if (wb == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory building the trail workbook")));
	ws = workbook_add_worksheet(wb, "Quá trình xử lý");
	if (ws == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory building the trail workbook")));

	title = new_format(wb, false);
	format_set_bold(title);
	format_set_font_size(title, 14);
	format_set_align(title, LXW_ALIGN_CENTER);
	info = new_format(wb, false);
	head = new_format(wb, true);
	format_set_bold(head);
	format_set_align(head, LXW_ALIGN_CENTER);
	format_set_align(head, LXW_ALIGN_VERTICAL_CENTER);
	format_set_bg_color(head, 0xD9D9D9);
	cell = new_format(wb, true);
	center = new_format(wb, true);
	format_set_align(center, LXW_ALIGN_CENTER);
	when = new_format(wb, true);
	format_set_align(when, LXW_ALIGN_CENTER);
	format_set_num_format(when, "dd/mm/yyyy hh:mm");
	day = new_format(wb, true);
	format_set_align(day, LXW_ALIGN_CENTER);
	format_set_num_format(day, "dd/mm/yyyy");

	props.title = "Quá trình xử lý văn bản";
	props.subject = t->abstract;
	xlsx_check(workbook_set_properties(wb, &props), "properties");

	for (i = 0; i < NCOLS; i++)
		xlsx_check(worksheet_set_column(ws, i, i, widths[i], NULL), "column");

	xlsx_check(worksheet_merge_range(ws, TITLE_ROW, 0, TITLE_ROW, NCOLS - 1,
									 "QUÁ TRÌNH XỬ LÝ VĂN BẢN", title), "title");
	xlsx_check(worksheet_set_row(ws, TITLE_ROW, 24, NULL), "title row");
	xlsx_check(worksheet_merge_range(ws, SYMBOL_ROW, 0, SYMBOL_ROW, NCOLS - 1,
									 t->symbol ? psprintf("Số, ký hiệu: %s", t->symbol)
									 : "Số, ký hiệu: (chưa phát hành)", info), "symbol");
	xlsx_check(worksheet_merge_range(ws, ABSTRACT_ROW, 0, ABSTRACT_ROW, NCOLS - 1,
									 xlsx_text(psprintf("Trích yếu: %s", t->abstract)), info),
			   "abstract");
	/* Excel does not fit the height of merged cells: about 150 characters a line */
	xlsx_check(worksheet_set_row(ws, ABSTRACT_ROW,
								 16.0 * (1 + utf8_chars(t->abstract) / 150), NULL),
			   "abstract row");

	for (i = 0; i < NCOLS; i++)
		xlsx_check(worksheet_write_string(ws, HEADING_ROW, i, headings[i], head), "heading");

	for (i = 0; i < t->nrows; i++)
	{
		TrailRow   *r = &t->rows[i];
		int			row = HEADING_ROW + 1 + i;

		xlsx_check(worksheet_write_number(ws, row, 0, r->step, center), "number cell");
		xlsx_string(ws, row, 1, r->sender, cell);
		xlsx_string(ws, row, 2, r->request, cell);
		xlsx_string(ws, row, 3, r->receiver, cell);
		xlsx_timestamp(ws, row, 4, r->has_received, r->received, when);
		xlsx_string(ws, row, 5, r->note, cell);
		xlsx_date(ws, row, 6, r->has_deadline, r->deadline, day);
		xlsx_timestamp(ws, row, 7, r->has_processed, r->processed, when);
		xlsx_string(ws, row, 8, r->status, center);
		xlsx_string(ws, row, 9, r->attachments, cell);
		CHECK_FOR_INTERRUPTS();
	}

	worksheet_freeze_panes(ws, HEADING_ROW + 1, 0);
	xlsx_check(worksheet_repeat_rows(ws, HEADING_ROW, HEADING_ROW), "print titles");
	worksheet_set_landscape(ws);
	worksheet_set_paper(ws, 9);	/* A4 */
	worksheet_fit_to_pages(ws, 1, 0);

	/* the packager holds the output file and one scratch file at a time */
	ReserveExternalFD();
	st->reserved_fds++;
	ReserveExternalFD();
	st->reserved_fds++;

	/* frees the workbook whatever happens */
	st->workbook = NULL;
	err = workbook_close(wb);
	xlsx_check(err, "writing the file");
}

/* A directory only this server can read, under its temporary directory. */
static void
make_private_dir(ExportState *st)
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
	snprintf(st->dir, sizeof(st->dir), "%s/%sioffice_trail_%d_XXXXXX", base,
			 PG_TEMP_FILE_PREFIX, MyProcPid);
	if (mkdtemp(st->dir) == NULL)
	{
		char	   *failed = pstrdup(st->dir);

		st->dir[0] = '\0';
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"%s\": %m", failed)));
	}
	snprintf(st->file, sizeof(st->file), "%s/trail.xlsx", st->dir);
}

/* The file as a bytea allocated in the caller's (upper executor) context. */
static bytea *
read_back(ExportState *st)
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
				 errmsg("the trail workbook is too large: %lld bytes", (long long) sb.st_size)));

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
	errcontext("building the trail workbook of document %lld", (long long) ((Trail *) arg)->doc);
}

static bytea *
export_xlsx(Trail *t)
{
	ExportState *st = palloc0(sizeof(ExportState));
	bytea	   *result = NULL;
	ErrorContextCallback context;

	context.callback = xlsx_error_context;
	context.arg = t;
	context.previous = error_context_stack;
	error_context_stack = &context;
	st->fd = -1;
	PG_TRY();
	{
		make_private_dir(st);
		build_xlsx(t, st);
		result = read_back(st);
	}
	PG_FINALLY();
	{
		cleanup(st);
	}
	PG_END_TRY();
	error_context_stack = context.previous;
	return result;
}

PG_FUNCTION_INFO_V1(ioffice_trail_export);
Datum
ioffice_trail_export(PG_FUNCTION_ARGS)
{
	int64		doc;
	char	   *format;
	bool		xlsx;
	Trail	   *t;
	bytea	   *result;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("document and format must not be NULL")));
	doc = PG_GETARG_INT64(0);
	format = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (pg_strcasecmp(format, "xlsx") == 0)
		xlsx = true;
	else if (pg_strcasecmp(format, "csv") == 0)
		xlsx = false;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown export format \"%s\"", format),
				 errhint("Allowed formats: xlsx, csv.")));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	t = load_trail(doc);
	if (xlsx)
		result = export_xlsx(t);
	else
	{
		StringInfo	csv = build_csv(t);

		result = SPI_palloc(VARHDRSZ + csv->len);
		memcpy(VARDATA(result), csv->data, csv->len);
		SET_VARSIZE(result, VARHDRSZ + csv->len);
	}
	SPI_finish();
	PG_RETURN_BYTEA_P(result);
}
