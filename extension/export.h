/*-------------------------------------------------------------------------
 * export.h
 *	  A small table (title lines, columns, rows) written as an Excel
 *	  workbook (libxlsxwriter) or a CSV file: what trail_export() and
 *	  register_export() share.
 *-------------------------------------------------------------------------
 */
#ifndef IOFFICE_EXPORT_H
#define IOFFICE_EXPORT_H

#include "postgres.h"

#include "utils/date.h"
#include "utils/timestamp.h"

typedef enum ExportKind
{
	EXPORT_TEXT,
	EXPORT_INT,
	EXPORT_DATE,				/* dd/mm/yyyy */
	EXPORT_TIMESTAMP			/* local time, without zone: dd/mm/yyyy hh:mm */
} ExportKind;

typedef struct ExportColumn
{
	const char *heading;
	double		width;			/* in characters, for the workbook */
	ExportKind	kind;
	bool		center;			/* text centred (numbers and dates always are) */
} ExportColumn;

typedef struct ExportValue
{
	bool		isnull;
	union
	{
		const char *text;		/* UTF-8 */
		int64		integer;
		DateADT		date;
		Timestamp	timestamp;
	}			v;
} ExportValue;

/* A line above the table in the workbook, merged across its columns. */
typedef struct ExportTitle
{
	const char *text;			/* UTF-8 */
	bool		big;			/* bold, larger, centred */
	double		height;			/* row height in points; 0: the default */
} ExportTitle;

typedef struct ExportTable
{
	const char *name;			/* names the scratch directory and file: "trail" */
	const char *what;			/* for messages: "the trail workbook" */
	const char *context;		/* error context while the workbook is built */
	const char *sheet;			/* worksheet name (31 characters at most) */
	const char *doc_title;		/* workbook properties */
	const char *doc_subject;
	const char *footer;			/* printed footer (&P page, &N pages), or NULL */
	const ExportColumn *columns;
	int			ncolumns;
	ExportTitle *titles;		/* workbook only; the CSV is headings and rows */
	int			ntitles;
	ExportValue *cells;			/* nrows * ncolumns, row by row */
	int			nrows;
} ExportTable;

typedef enum ExportFormat
{
	EXPORT_XLSX,
	EXPORT_CSV,
	EXPORT_DOCX,				/* a Word document (helpers/ioffice_docx.py) */
	EXPORT_PDF					/* a PDF (the PDF helper's "table") */
} ExportFormat;

/* the columns of a processing trail ("Quá trình xử lý"), trail_export.c */
extern const ExportColumn export_trail_columns[];
extern const int export_trail_ncolumns;

/* "xlsx" or "csv", in any case; anything else is 22023 */
extern ExportFormat export_parse_format(const char *name);

/* the same, or "docx" or "pdf" (a document to print: search_export) */
extern ExportFormat export_parse_document_format(const char *name);

/*
 * The export of a register or a report (report: its name for
 * _log_report_export), in the access log when a person made it: params_sql
 * is the SQL expression of its parameters as a jsonb object, over $1..$n
 * (values of argtypes); "rows" (the file's row count) is added to it.
 */
extern void export_log_report(const char *report, ExportFormat format, const ExportTable *t,
							  const char *params_sql, int nargs, Oid *argtypes, Datum *values,
							  const char *nulls);

/* Appends every row of SPI_tuptable: SPI column i + 1 fills column i. */
extern void export_add_spi_rows(ExportTable *t);

/* Text of an SPI column in UTF-8, whatever the database's encoding. */
extern char *export_spi_text(int row, int col);

extern int	export_utf8_chars(const char *s);

/*
 * The file, allocated in the upper executor context (SPI_palloc): the
 * caller is connected to SPI.  The workbook is written into a private
 * directory under the server's temporary directory, read back and removed,
 * on error too.
 */
extern bytea *export_table(const ExportTable *t, ExportFormat format);

#endif							/* IOFFICE_EXPORT_H */
