/*-------------------------------------------------------------------------
 * registers.c
 *	  Numbering registers, Decree 30 symbols and document identifiers:
 *	  the issue effect and take_number().
 *
 * The register row of the year is the counter.  Taking a number is one
 * UPDATE of that row: its lock is held until the transaction ends, so
 * numbers are gapless (a rolled-back transaction gives its number back) and
 * unique.  Because the lock serialises every clerk of the register, all the
 * reading (which register, today's date, the abbreviations of the symbol)
 * is done before, and only writes that need the number come after.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/sha2.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"

#include "outbox.h"
#include "workflow.h"

/* What a symbol is made of, read before the register is locked. */
typedef struct SymbolParts
{
	char	   *type_abbr;		/* NULL for công văn */
	char	   *agency_abbr;
	char	   *unit_abbr;		/* NULL when the agency drafted it itself */
	char	   *suffix;			/* of the register's series, or NULL */
	int64		unit_agency;	/* the drafting unit's agency; 0: no such unit */
	char	   *type_name;		/* what the register entry keeps (doc_type_name) */
	char	   *unit_name;		/* the drafting unit's name, kept likewise */
} SymbolParts;

/* A register row of the current year, with what numbering needs. */
typedef struct RegisterYear
{
	int64		id;
	int64		agency;
	char	   *code;
	int32		year;
	bool		confidential;
	char	   *suffix;
} RegisterYear;

static IofficePlan symbol_parts = {
	NULL,
	"SELECT (SELECT abbr FROM ioffice.doc_type WHERE code = $1), "
	"       (SELECT abbr FROM ioffice.unit WHERE id = $2), "
	"       (SELECT abbr FROM ioffice.unit WHERE id = $3 AND id <> $2), "
	"       EXISTS (SELECT 1 FROM ioffice.doc_type WHERE code = $1), "
	"       (SELECT agency_id FROM ioffice.unit WHERE id = $3), "
	"       (SELECT name FROM ioffice.doc_type WHERE code = $1), "
	"       (SELECT name FROM ioffice.unit WHERE id = $3)",
	3, {TEXTOID, INT8OID, INT8OID}
};

static IofficePlan agency_code_of = {
	NULL, "SELECT code FROM ioffice.unit WHERE id = $1", 1, {INT8OID}
};

/* a register given by id, and its row of the year if there is one yet */
static IofficePlan register_given = {
	NULL,
	"SELECT r.agency_id, r.direction, r.code, r.confidential, "
	"       r.doc_types IS NULL OR $2 = ANY (r.doc_types), "
	"       y.id, y.confidential, y.symbol_suffix "
	"  FROM ioffice.register r "
	"  LEFT JOIN ioffice.register y ON y.agency_id = r.agency_id AND y.direction = r.direction "
	"        AND y.code = r.code AND y.year = $3 "
	" WHERE r.id = $1",
	3, {INT8OID, TEXTOID, INT4OID}
};

static IofficePlan register_of_year = {
	NULL,
	"SELECT id, confidential, symbol_suffix FROM ioffice.register "
	" WHERE agency_id = $1 AND direction = $2 AND code = $3 AND year = $4",
	4, {INT8OID, TEXTOID, TEXTOID, INT4OID}
};

static IofficePlan register_default = {
	NULL,
	"SELECT code FROM ioffice.register "
	" WHERE agency_id = $1 AND direction = $2 AND confidential = $3 "
	"   AND (doc_types IS NULL OR $4 = ANY (doc_types)) "
	" ORDER BY doc_types IS NULL, year DESC, id LIMIT 1",
	4, {INT8OID, TEXTOID, BOOLOID, TEXTOID}
};

/* the year's row is made from the latest year's on first use */
static IofficePlan register_open_year = {
	NULL,
	"INSERT INTO ioffice.register (agency_id, direction, code, name, doc_types, confidential, "
	"                              symbol_suffix, year) "
	"SELECT agency_id, direction, code, name, doc_types, confidential, symbol_suffix, $4 "
	"  FROM ioffice.register WHERE agency_id = $1 AND direction = $2 AND code = $3 "
	" ORDER BY year DESC LIMIT 1 "
	"ON CONFLICT (agency_id, direction, code, year) DO NOTHING",
	4, {INT8OID, TEXTOID, TEXTOID, INT4OID}
};

static IofficePlan take_next = {
	NULL,
	"UPDATE ioffice.register SET next_number = next_number + 1 WHERE id = $1 "
	"RETURNING next_number - 1",
	1, {INT8OID}
};

/*
 * An outgoing number with its date: numbers follow their dates, so the date
 * may not be before the last one the register gave.  The test is in the
 * UPDATE's own WHERE: when the row was locked by another clerk, PostgreSQL
 * evaluates it again on the row that clerk committed, so two sessions that
 * number at once cannot both pass it with dates out of order.  No row: the
 * date is too early (or the register is gone: see date_refused()).
 */
static IofficePlan take_next_dated = {
	NULL,
	"UPDATE ioffice.register SET next_number = next_number + 1, last_issued_on = $2 "
	" WHERE id = $1 AND (last_issued_on IS NULL OR last_issued_on <= $2) "
	"RETURNING next_number - 1",
	2, {INT8OID, DATEOID}
};

static IofficePlan last_date_of = {
	NULL,
	"SELECT to_char(last_issued_on, 'YYYY/MM/DD'), next_number - 1 FROM ioffice.register WHERE id = $1",
	1, {INT8OID}
};

/*
 * The register entry keeps the names it shows as they are now (type,
 * signer, drafting unit): the directory's later edits (an admin correcting
 * a person's full_name, a unit renamed) do not rewrite an issued entry.
 */
static IofficePlan mark_issued = {
	NULL,
	"UPDATE ioffice.document d SET register_id = $2, register_year = $3, number = $4, symbol = $5, "
	"       issued_on = $6, issued_at = now(), identifier = $7, agency_id = $8, "
	"       doc_type_name = $9, "
	"       signer_name = (SELECT p.full_name FROM ioffice.person p WHERE p.id = d.signer_id), "
	"       drafting_unit_name = (SELECT u.name FROM ioffice.unit u WHERE u.id = d.drafting_unit_id) "
	" WHERE d.id = $1",
	9, {INT8OID, INT8OID, INT4OID, INT4OID, TEXTOID, DATEOID, TEXTOID, INT8OID, TEXTOID}
};

/*
 * take_number's number, its register entry and its audit record in one
 * statement: from the UPDATE on, the register row is locked until commit,
 * and every statement run under that lock (executor start and end, trigger
 * queue, a chain-head lookup) delays every other clerk of the register.
 * The record is the next of the chain "numbers:<register>", whose end the
 * register row keeps: the UPDATE reads it from the row version it locked
 * (a separate query would need its own snapshot, taken after the lock) and
 * hashes the record there.  The detail {number, symbol, doc_type} comes
 * from one function, used for the hash and for the row alike; the symbol is
 * the number as format_number() writes it and the tail read before the lock.
 * Only this statement writes that chain, always under the row's lock.
 * $7 false (ioffice.audit_chaining off, to measure what chaining costs):
 * the record is written unchained and the row's chain end stays.
 */
static IofficePlan take_and_record = {
	NULL,
	"WITH n AS ("
	"  UPDATE ioffice.register r "
	"     SET next_number = r.next_number + 1, "
	"         numbers_seq = CASE WHEN $7 THEN r.numbers_seq + 1 ELSE r.numbers_seq END, "
	"         numbers_prev = CASE WHEN $7 THEN r.numbers_head ELSE r.numbers_prev END, "
	"         numbers_head = CASE WHEN $7 THEN ioffice._number_record_hash("
	"                            r.numbers_head, r.numbers_seq + 1, r.id, $5, "
	"                            ioffice._number_detail(r.next_number, $2, $3)) "
	"                        ELSE r.numbers_head END, "
	"         last_issued_on = $6 "
	"   WHERE r.id = $1 AND (r.last_issued_on IS NULL OR r.last_issued_on <= $6) "
	"  RETURNING r.next_number - 1 AS number, r.numbers_seq AS seq, r.numbers_prev AS prev, "
	"            r.numbers_head AS head), "
	"d AS (SELECT n.*, ioffice._number_detail(n.number, $2, $3) AS detail FROM n), "
	"e AS (INSERT INTO ioffice.number_taken (register_id, number, symbol, doc_type, "
	"                                        drafting_unit_id, taken_by, taken_on, doc_type_name, "
	"                                        drafting_unit_name) "
	"      SELECT $1, d.number, d.detail->>'symbol', $3, $4, $5, $6, $8, $9 FROM d) "
	"INSERT INTO ioffice.audit (at, actor_id, db_role, entity, entity_id, action, detail, "
	"                           chain, seq, prev_hash, hash) "
	"SELECT now(), $5, session_user, 'register', $1, 'take_number', d.detail, "
	"       CASE WHEN $7 THEN 'numbers:' || $1 END, CASE WHEN $7 THEN d.seq END, "
	"       CASE WHEN $7 THEN d.prev END, CASE WHEN $7 THEN d.head END FROM d "
	"RETURNING (detail->>'number')::int, detail->>'symbol'",
	9, {INT8OID, TEXTOID, TEXTOID, INT8OID, INT8OID, DATEOID, BOOLOID, TEXTOID, TEXTOID}
};

static IofficePlan mark_arrived = {
	NULL,
	"UPDATE ioffice.document SET register_id = $2, register_year = $3, number = $4, "
	"       received_at = coalesce(received_at, now()), drafter_id = coalesce(drafter_id, $5) "
	" WHERE id = $1",
	5, {INT8OID, INT8OID, INT4OID, INT4OID, INT8OID}
};

static IofficePlan doc_type_known = {
	NULL, "SELECT 1 FROM ioffice.doc_type WHERE code = $1", 1, {TEXTOID}
};

/* A document type of Decree 30's list (table doc_type), or 42704. */
void
ioffice_check_doc_type(const char *doc_type)
{
	Datum		values[1];

	values[0] = CStringGetTextDatum(doc_type);
	ioffice_exec(&doc_type_known, values, NULL, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("unknown document type \"%s\"", doc_type)));
}

/* "05", "15", "129": Decree 30 writes numbers below 10 with a leading zero. */
char *
ioffice_format_number_str(int32 number)
{
	return psprintf("%02d", number);
}

static void
read_symbol_parts(const char *doc_type, int64 agency, int64 drafting_unit, SymbolParts *parts)
{
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};
	bool		type_known = false;

	values[0] = CStringGetTextDatum(doc_type);
	values[1] = Int64GetDatum(agency);
	values[2] = Int64GetDatum(drafting_unit);
	nulls[2] = drafting_unit ? ' ' : 'n';
	ioffice_exec(&symbol_parts, values, nulls, 1);
	parts->type_abbr = ioffice_get_text(0, 1);
	parts->agency_abbr = ioffice_get_text(0, 2);
	parts->unit_abbr = ioffice_get_text(0, 3);
	parts->suffix = NULL;
	parts->unit_agency = 0;
	ioffice_get_int64(0, 5, &parts->unit_agency);
	parts->type_name = ioffice_get_text(0, 6);
	parts->unit_name = ioffice_get_text(0, 7);
	ioffice_get_bool(0, 4, &type_known);
	if (!type_known)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("unknown document type \"%s\"", doc_type)));
	if (parts->agency_abbr == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("unknown agency %lld", (long long) agency)));
}

/*
 * The number and symbol: <nn>/<type>-<agency> for named types (15/QĐ-UBND),
 * <nn>/<agency>-<drafting unit> for công văn (05/UBND-VP), <nn>/<agency>
 * when the agency drafted it itself; then the series' suffix, if any
 * (confidential series: 03/QĐ-UBND-M).
 */
static char *
symbol_tail(const SymbolParts *p)
{
	StringInfoData buf;

	initStringInfo(&buf);
	if (p->type_abbr != NULL)
		appendStringInfo(&buf, "%s-%s", p->type_abbr, p->agency_abbr);
	else if (p->unit_abbr != NULL)
		appendStringInfo(&buf, "%s-%s", p->agency_abbr, p->unit_abbr);
	else
		appendStringInfoString(&buf, p->agency_abbr);
	if (p->suffix != NULL)
		appendStringInfo(&buf, "-%s", p->suffix);
	return buf.data;
}

static char *
compose_symbol(int32 number, const SymbolParts *p)
{
	return psprintf("%02d/%s", number, symbol_tail(p));
}

/* take_number's audit detail: {number, symbol, doc_type} */
static Jsonb *
number_detail(int32 number, const char *tail, const char *doc_type)
{
	JsonbBuild *b = ioffice_jsonb_begin();

	ioffice_jsonb_add_int(b, "number", number);
	ioffice_jsonb_add_text(b, "symbol", psprintf("%s/%s", ioffice_format_number_str(number), tail));
	ioffice_jsonb_add_text(b, "doc_type", doc_type);
	return ioffice_jsonb_end(b);
}

/* The symbol of a number of the agency's ordinary series (SQL build_symbol). */
char *
ioffice_symbol_for(int32 number, const char *doc_type, int64 agency, int64 drafting_unit)
{
	SymbolParts parts;

	read_symbol_parts(doc_type, agency, drafting_unit, &parts);
	return compose_symbol(number, &parts);
}

/* A day as the register wants it: its year, "YYYY/MM/DD", and the date. */
static void
day_parts(DateADT day, int32 *year, char **date_text, Datum *date)
{
	int			y,
				m,
				d;

	j2date(day + POSTGRES_EPOCH_JDATE, &y, &m, &d);
	*year = y;
	*date_text = psprintf("%04d/%02d/%02d", y, m, d);
	*date = DateADTGetDatum(day);
}

/* The transaction's date in ioffice.timezone, as day_parts() gives it. */
static void
read_today(int32 *year, char **date_text, Datum *date)
{
	Datum		local = DirectFunctionCall2(timestamptz_zone,
											CStringGetTextDatum(ioffice_timezone_setting),
											TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()));

	day_parts(DatumGetDateADT(DirectFunctionCall1(timestamp_date, local)), year, date_text, date);
}

/*
 * The row for this year of the register that numbers a document of
 * doc_type: the one given (any year's row of it), checked to fit, or the
 * agency's default for the type and confidentiality.
 */
static void
find_register_year(int64 given, int64 agency, const char *direction, const char *doc_type,
				   bool confidential, bool check_confidential, int32 year, RegisterYear *out)
{
	Datum		values[4];
	char	   *code;
	int			attempt;

	if (given != 0)
	{
		int64		reg_agency = 0;
		bool		reg_confidential = false;
		bool		type_ok = false;
		char	   *reg_direction;

		values[0] = Int64GetDatum(given);
		values[1] = CStringGetTextDatum(doc_type);
		values[2] = Int32GetDatum(year);
		ioffice_exec(&register_given, values, NULL, 1);
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("unknown register %lld", (long long) given)));
		ioffice_get_int64(0, 1, &reg_agency);
		reg_direction = ioffice_get_text(0, 2);
		code = ioffice_get_text(0, 3);
		ioffice_get_bool(0, 4, &reg_confidential);
		ioffice_get_bool(0, 5, &type_ok);
		if ((agency != 0 && reg_agency != agency) || strcmp(reg_direction, direction) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("register %lld is not an %s register of the issuing agency",
							(long long) given, direction)));
		if (!type_ok)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("register %lld does not number documents of type %s",
							(long long) given, doc_type)));
		if (check_confidential && reg_confidential != confidential)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("register %lld is for %s documents, this document is %s",
							(long long) given, reg_confidential ? "confidential" : "ordinary",
							confidential ? "confidential" : "ordinary"),
					 errdetail("Decree 30 numbers confidential documents in their own series.")));
		agency = reg_agency;
		/* the year's row already open: no second lookup */
		if (ioffice_get_int64(0, 6, &out->id))
		{
			out->agency = agency;
			out->code = code;
			out->year = year;
			ioffice_get_bool(0, 7, &out->confidential);
			out->suffix = ioffice_get_text(0, 8);
			return;
		}
	}
	else
	{
		values[0] = Int64GetDatum(agency);
		values[1] = CStringGetTextDatum(direction);
		values[2] = BoolGetDatum(confidential);
		values[3] = CStringGetTextDatum(doc_type);
		ioffice_exec(&register_default, values, NULL, 1);
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the agency has no %s%s register for type %s",
							confidential ? "confidential " : "", direction, doc_type),
					 errhint("Add a row to table ioffice.register.")));
		code = ioffice_get_text(0, 1);
	}

	values[0] = Int64GetDatum(agency);
	values[1] = CStringGetTextDatum(direction);
	values[2] = CStringGetTextDatum(code);
	values[3] = Int32GetDatum(year);
	for (attempt = 0; attempt < 2; attempt++)
	{
		ioffice_exec(&register_of_year, values, NULL, 1);
		if (ioffice_get_int64(0, 1, &out->id))
		{
			out->agency = agency;
			out->code = code;
			out->year = year;
			ioffice_get_bool(0, 2, &out->confidential);
			out->suffix = ioffice_get_text(0, 3);
			return;
		}
		/* first number of the year: open the year's row */
		ioffice_exec(&register_open_year, values, NULL, 0);
	}
	elog(ERROR, "ioffice: could not open register %s for %d", code, year);
}

/* the lock on the register row is taken here and held to commit */
static int32
take_next_number(int64 register_id)
{
	Datum		values[1];
	int32		number = 0;

	values[0] = Int64GetDatum(register_id);
	ioffice_exec(&take_next, values, NULL, 1);
	ioffice_get_int32(0, 1, &number);
	return number;
}

/*
 * Why the numbering UPDATE of a dated number found no row: the register's
 * last date is after the date asked (a given date is a bad value, 22023;
 * today's date, a register dated in the future before this rule, 55000), or
 * the register row is gone.
 */
static void
date_refused(int64 register_id, const char *date_text, bool given)
{
	Datum		values[1];
	char	   *last;
	int32		last_number = 0;

	values[0] = Int64GetDatum(register_id);
	ioffice_exec(&last_date_of, values, NULL, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("register %lld was removed while its number was being taken",
						(long long) register_id)));
	last = ioffice_get_text(0, 1);
	ioffice_get_int32(0, 2, &last_number);
	ereport(ERROR,
			(errcode(given ? ERRCODE_INVALID_PARAMETER_VALUE : ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("date %s is before %s, the date of number %s of register %lld",
					date_text, last ? last : "?", ioffice_format_number_str(Max(last_number, 1)),
					(long long) register_id),
			 errdetail("Within a register, numbers follow their dates (no back-dating)."),
			 given ? 0 : errhint("The register holds a date later than today: check ioffice.timezone "
								 "and the register's last entries.")));
}

/*
 * The next outgoing number, dated: the row lock is taken here and held to
 * commit, and the date checked against the register's last one under it.
 */
static int32
take_next_dated_number(int64 register_id, Datum date, const char *date_text, bool given)
{
	Datum		values[2];
	int32		number = 0;

	values[0] = Int64GetDatum(register_id);
	values[1] = date;
	ioffice_exec(&take_next_dated, values, NULL, 1);
	if (SPI_processed == 0)
		date_refused(register_id, date_text, given);
	ioffice_get_int32(0, 1, &number);
	return number;
}

/* A given date of issue, of the register's year: never after today. */
static void
check_given_date(const char *given_text, DateADT given, Datum today, const char *today_text)
{
	if (given > DatumGetDateADT(today))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("issued_on %s is in the future (today is %s in %s)", given_text,
						today_text, ioffice_timezone_setting),
				 errdetail("A number is dated the day it is given, or a day before it (no future-dating).")));
}

/* option "register" of an action: a register id, or 0 */
int64
ioffice_register_option(Jsonb *options)
{
	JsonbValue *given = ioffice_jsonb_get(options, "register");

	if (given == NULL || given->type != jbvNumeric)
		return 0;
	{
		int64		id;

		if (!ioffice_numeric_to_int64(given->val.numeric, &id) || id <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("option \"register\" must be a register id")));
		return id;
	}
}

/*
 * Issue a document under the next number of a register of its agency
 * (req->agency): number, symbol, identifier, the register columns of
 * the document and the document.issued event.  Used by the issue effect of
 * act(), by the dossier's result and by import_issued().
 */
/*
 * What an issue writes once the number is known: the identifier, the
 * register columns of the document, the audit detail and the
 * document.issued event (a confidential document is never announced).
 */
static void
finish_issue(IssueRequest *req, int64 register_id, int32 register_year, int32 number,
			 char *symbol, Datum issued_on, const char *date_text, const char *agency_code,
			 bool confidential, const char *type_name)
{
	Datum		values[9];
	char		nulls[9] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	char	   *identifier = NULL;

	/*
	 * The identifier is the document's name on the national interconnection
	 * axis.  Confidential documents never travel there, so they get none.
	 */
	if (agency_code != NULL && !confidential)
		identifier = psprintf("%s,%s,%s", agency_code, date_text, symbol);

	values[0] = Int64GetDatum(req->doc);
	values[1] = Int64GetDatum(register_id);
	values[2] = Int32GetDatum(register_year);
	values[3] = Int32GetDatum(number);
	values[4] = CStringGetTextDatum(symbol);
	values[5] = issued_on;
	values[6] = identifier ? CStringGetTextDatum(identifier) : (Datum) 0;
	nulls[6] = identifier ? ' ' : 'n';
	values[7] = Int64GetDatum(req->agency);
	values[8] = type_name ? CStringGetTextDatum(type_name) : (Datum) 0;
	nulls[8] = type_name ? ' ' : 'n';
	ioffice_exec(&mark_issued, values, nulls, 0);

	if (req->detail)
	{
		ioffice_jsonb_add_int(req->detail, "register", register_id);
		ioffice_jsonb_add_int(req->detail, "number", number);
		ioffice_jsonb_add_text(req->detail, "symbol", symbol);
		ioffice_jsonb_add_text(req->detail, "identifier", identifier);
	}

	if (!confidential)
	{
		JsonbBuild *event = ioffice_jsonb_begin();

		ioffice_jsonb_add_int(event, "document", req->doc);
		ioffice_jsonb_add_text(event, "agency_code", agency_code);
		ioffice_jsonb_add_text(event, "doc_type", req->doc_type);
		ioffice_jsonb_add_int(event, "register", register_id);
		ioffice_jsonb_add_int(event, "number", number);
		ioffice_jsonb_add_text(event, "symbol", symbol);
		ioffice_jsonb_add_text(event, "identifier", identifier);
		ioffice_jsonb_add_text(event, "issued_on", date_text);
		ioffice_outbox_enqueue("document.issued", ioffice_jsonb_end(event));
	}
	req->number = number;
	req->symbol = symbol;
	req->identifier = identifier;
}

void
ioffice_issue_number(IssueRequest *req)
{
	Datum		values[1];
	int64		agency = req->agency;
	char	   *agency_code;
	int32		year = 0;
	char	   *date_text;
	Datum		issued_on;
	RegisterYear reg;
	SymbolParts parts;
	bool		confidential = strcmp(req->confidentiality, "normal") != 0;
	int32		number;
	char	   *symbol;

	values[0] = Int64GetDatum(agency);
	ioffice_exec(&agency_code_of, values, NULL, 1);
	agency_code = ioffice_get_text(0, 1);
	read_today(&year, &date_text, &issued_on);
	if (req->issued_on != NULL)
	{
		int32		given_year = 0;
		char	   *given_text;
		Datum		given_date;
		DateADT		given;

		/* the caller checked the form; numbers run per year, so the year must be this one */
		if (!ioffice_parse_iso_date(req->issued_on, strlen(req->issued_on), &given))
			elog(ERROR, "ioffice: issued_on \"%s\" is not a date", req->issued_on);
		day_parts(given, &given_year, &given_text, &given_date);
		check_given_date(req->issued_on, given, issued_on, date_text);
		if (given_year != year)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("issued_on %s is not in this year (%d) of the register", req->issued_on,
							year),
					 errdetail("Register numbers run from 1 January to 31 December.")));
		date_text = given_text;
		issued_on = given_date;
	}
	find_register_year(req->given_register, agency, "outgoing", req->doc_type,
					   confidential, true, year, &reg);
	read_symbol_parts(req->doc_type, agency, req->drafting_unit, &parts);
	parts.suffix = reg.suffix;

	number = take_next_dated_number(reg.id, issued_on, date_text, req->issued_on != NULL);
	symbol = compose_symbol(number, &parts);
	finish_issue(req, reg.id, reg.year, number, symbol, issued_on, date_text, agency_code,
				 confidential, parts.type_name);
}

/*
 * The number a clerk took with take_number(), now carried by the document
 * it served (import_issued with payload.number): the number's row is locked
 * (a second import of it, or a void_number, waits and then finds it
 * accounted for), checked to fit the document (same agency, type, date),
 * and the document issued under it, on the date it was taken: the
 * register's order of numbers and dates is the one the number already has.
 */
static IofficePlan taken_number_row = {
	NULL,
	"SELECT n.symbol, n.doc_type, to_char(n.taken_on, 'YYYY/MM/DD'), n.taken_on, "
	"       n.document_id IS NOT NULL OR n.void_reason IS NOT NULL, r.agency_id, r.confidential, "
	"       r.year, n.doc_type_name, to_char(n.taken_on, 'YYYY-MM-DD'), r.id "
	"  FROM ioffice.register g "
	"  JOIN ioffice.register r ON r.agency_id = g.agency_id AND r.direction = g.direction "
	"       AND r.code = g.code AND r.year IN (g.year, $3) "
	"  JOIN ioffice.number_taken n ON n.register_id = r.id AND n.number = $2 "
	" WHERE g.id = $1 "
	" ORDER BY r.year = g.year DESC LIMIT 1 FOR UPDATE OF n",
	3, {INT8OID, INT4OID, INT4OID}
};

static IofficePlan taken_number_used = {
	NULL,
	"UPDATE ioffice.number_taken SET document_id = $3, accounted_by = $4, accounted_at = now() "
	" WHERE register_id = $1 AND number = $2",
	4, {INT8OID, INT4OID, INT8OID, INT8OID}
};

void
ioffice_issue_taken_number(IssueRequest *req, int32 taken)
{
	Datum		values[4];
	char	   *agency_code;
	char	   *symbol;
	char	   *doc_type;
	char	   *date_text;
	Datum		taken_on;
	bool		isnull;
	bool		accounted = false;
	int64		reg_agency = 0;
	bool		reg_confidential = false;
	int32		reg_year = 0;
	char	   *type_name;
	JsonbBuild *detail;
	int64		register_id = 0;
	int32		year = 0;
	char	   *today_text;
	Datum		today;

	if (req->given_register == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("payload.number needs payload.register, the register the number was taken from")));
	read_today(&year, &today_text, &today);
	values[0] = Int64GetDatum(req->given_register);
	values[1] = Int32GetDatum(taken);
	values[2] = Int32GetDatum(year);
	ioffice_exec(&taken_number_row, values, NULL, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("number %d of register %lld was not taken with take_number",
						taken, (long long) req->given_register)));
	symbol = ioffice_get_text(0, 1);
	doc_type = ioffice_get_text(0, 2);
	date_text = ioffice_get_text(0, 3);
	taken_on = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull);
	ioffice_get_bool(0, 5, &accounted);
	ioffice_get_int64(0, 6, &reg_agency);
	ioffice_get_bool(0, 7, &reg_confidential);
	ioffice_get_int32(0, 8, &reg_year);
	type_name = ioffice_get_text(0, 9);
	ioffice_get_int64(0, 11, &register_id);
	if (accounted)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("number %s of register %lld is already accounted for (used or voided)",
						symbol, (long long) req->given_register)));
	if (reg_agency != req->agency)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("register %lld is not a register of the issuing agency",
						(long long) req->given_register)));
	if (reg_confidential || strcmp(req->confidentiality, "normal") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("number %s is of a confidential series: an imported result is an ordinary document",
						symbol)));
	if (strcmp(doc_type, req->doc_type) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("number %s was taken for type %s, not %s", symbol, doc_type, req->doc_type)));
	if (req->issued_on != NULL && strcmp(req->issued_on, ioffice_get_text(0, 10)) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("issued_on %s is not %s, the date number %s was taken on", req->issued_on,
						ioffice_get_text(0, 10), symbol),
				 errdetail("Within a register, numbers follow their dates: a taken number keeps its date.")));

	values[0] = Int64GetDatum(register_id);
	values[2] = Int64GetDatum(req->doc);
	values[3] = Int64GetDatum(req->actor);
	ioffice_exec(&taken_number_used, values, NULL, 0);

	detail = ioffice_jsonb_begin();
	ioffice_jsonb_add_int(detail, "number", taken);
	ioffice_jsonb_add_text(detail, "symbol", symbol);
	ioffice_jsonb_add_int(detail, "document", req->doc);
	ioffice_audit(req->actor, 0, "register", register_id, "number_used", NULL, NULL,
				  ioffice_jsonb_end(detail));

	values[0] = Int64GetDatum(req->agency);
	ioffice_exec(&agency_code_of, values, NULL, 1);
	agency_code = ioffice_get_text(0, 1);
	finish_issue(req, register_id, reg_year, taken, symbol, taken_on, date_text,
				 agency_code, false, type_name);
}

/* the document's signer, and who handed it to the holder (in whose name) */
static IofficePlan signer_and_approver = {
	NULL,
	"SELECT d.signer_id, (SELECT coalesce(t.sender_for, t.sender_id) FROM ioffice.task t "
	"                      WHERE t.id = $2 AND t.document_id = $1) "
	"  FROM ioffice.document d WHERE d.id = $1",
	2, {INT8OID, INT8OID}
};

/*
 * Effect number_and_issue: the document's agency, whose clerk holds the
 * task, issues it under the next number of its register.
 */
void
ioffice_number_and_issue(ActContext *ctx)
{
	IssueRequest req;
	Datum		values[2];
	int64		signer = 0;
	int64		approver = 0;

	/*
	 * What is registered as signed was approved by its signer: the leader
	 * who handed it to the issuing clerk (in whose name, under delegation),
	 * as the approval recorded it (act.c).  A DBA's rules that bring a
	 * document here another way do not make a signer of anybody.
	 */
	values[0] = Int64GetDatum(ctx->doc);
	values[1] = Int64GetDatum(ctx->task_id);
	ioffice_exec(&signer_and_approver, values, NULL, 1);
	if (!ioffice_get_int64(0, 1, &signer) ||
		(ioffice_get_int64(0, 2, &approver) && approver != signer))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s has no signer who approved it", ctx->name),
				 errdetail("The signer in the register (Người ký) is the leader whose approval handed it to the clerk."),
				 errhint("Return it (action \"return\") to be approved again.")));

	memset(&req, 0, sizeof(req));
	req.doc = ctx->doc;
	req.actor = ctx->actor;
	req.agency = ctx->agency;
	req.doc_type = ctx->doc_type;
	req.confidentiality = ctx->confidentiality;
	req.drafting_unit = ctx->drafting_unit;
	req.given_register = ioffice_register_option(ctx->options);
	req.detail = ctx->detail;
	ioffice_issue_number(&req);
}

/*
 * The arrival number (số đến) of an incoming document: the next number of
 * the agency's incoming register of the year, in order of receipt.  The
 * registering clerk becomes the document's keeper (its "drafter").
 */
int32
ioffice_take_arrival_number(int64 doc, const char *doc_type, int64 agency, int64 given,
							int64 clerk)
{
	int32		year;
	char	   *date_text;
	Datum		date;
	RegisterYear reg;
	int32		number;
	Datum		values[5];

	read_today(&year, &date_text, &date);
	find_register_year(given, agency, "incoming", doc_type, false, false, year, &reg);
	number = take_next_number(reg.id);
	values[0] = Int64GetDatum(doc);
	values[1] = Int64GetDatum(reg.id);
	values[2] = Int32GetDatum(reg.year);
	values[3] = Int32GetDatum(number);
	values[4] = Int64GetDatum(clerk);
	ioffice_exec(&mark_arrived, values, NULL, 0);
	return number;
}

/* Effect register_arrival: the clerk enters a received document in the register. */
void
ioffice_register_arrival(ActContext *ctx)
{
	int32		number = ioffice_take_arrival_number(ctx->doc, ctx->doc_type, ctx->agency,
													 ioffice_register_option(ctx->options), ctx->actor);

	ioffice_jsonb_add_int(ctx->detail, "arrival_number", number);
}

/* _take_arrival(doc, register): for register_incoming(); not granted to PUBLIC */
PG_FUNCTION_INFO_V1(ioffice_take_arrival_sql);
Datum
ioffice_take_arrival_sql(PG_FUNCTION_ARGS)
{
	int64		doc;
	int64		agency = 0;
	int64		clerk = 0;
	char	   *doc_type;
	int32		number;
	Datum		values[1];

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("_take_arrival needs a document")));
	doc = PG_GETARG_INT64(0);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	values[0] = Int64GetDatum(doc);
	if (SPI_execute_with_args("SELECT agency_id, doc_type, drafter_id FROM ioffice.document WHERE id = $1",
							  1, (Oid[]) {INT8OID}, values, NULL, false, 1) != SPI_OK_SELECT ||
		SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("unknown document %lld", (long long) doc)));
	ioffice_get_int64(0, 1, &agency);
	doc_type = ioffice_get_text(0, 2);
	ioffice_get_int64(0, 3, &clerk);
	number = ioffice_take_arrival_number(doc, doc_type, agency,
										 PG_ARGISNULL(1) ? 0 : PG_GETARG_INT64(1), clerk);
	SPI_finish();
	PG_RETURN_INT32(number);
}

/*
 * take_number(register, doc_type, drafting_unit) → (number, symbol): a
 * number for an external system (the TTHC system asks for one before it
 * issues).  The number belongs to the caller's transaction: a rollback gives
 * it back.  Taken by a clerk of the register's agency.
 */
PG_FUNCTION_INFO_V1(ioffice_take_number);
Datum
ioffice_take_number(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int64		given;
	char	   *doc_type;
	int64		drafting_unit = 0;
	int64		actor;
	int32		year;
	char	   *date_text;
	Datum		date;
	RegisterYear reg;
	SymbolParts parts;
	int32		number;
	char	   *symbol;
	Datum		values[9];
	char		nulls[9] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	Datum		out[2];
	bool		out_nulls[2] = {false, false};

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("take_number needs a register and a document type")));
	given = PG_GETARG_INT64(0);
	doc_type = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (!PG_ARGISNULL(2))
		drafting_unit = PG_GETARG_INT64(2);
	if (given <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("unknown register %lld", (long long) given)));

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	ioffice_engine_enter();
	actor = ioffice_resolve_actor(false);
	read_today(&year, &date_text, &date);
	find_register_year(given, 0, "outgoing", doc_type, false, false, year, &reg);
	if (!ioffice_person_is_clerk_of(actor, reg.agency))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only a clerk of the register's agency may take its numbers")));
	read_symbol_parts(doc_type, reg.agency, drafting_unit, &parts);
	parts.suffix = reg.suffix;
	if (drafting_unit != 0)
	{
		if (parts.unit_agency == 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("unknown unit %lld", (long long) drafting_unit)));
		/* the symbol names the drafting unit of the issuing agency */
		if (parts.unit_agency != reg.agency)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unit %lld does not belong to the agency of register %lld",
							(long long) drafting_unit, (long long) given)));
	}

	values[0] = Int64GetDatum(reg.id);
	values[1] = CStringGetTextDatum(symbol_tail(&parts));
	values[2] = CStringGetTextDatum(doc_type);
	values[3] = Int64GetDatum(drafting_unit);
	nulls[3] = drafting_unit ? ' ' : 'n';
	values[4] = Int64GetDatum(actor);
	values[5] = date;
	values[6] = BoolGetDatum(ioffice_audit_chaining);
	values[7] = parts.type_name ? CStringGetTextDatum(parts.type_name) : (Datum) 0;
	nulls[7] = parts.type_name ? ' ' : 'n';
	values[8] = parts.unit_name ? CStringGetTextDatum(parts.unit_name) : (Datum) 0;
	nulls[8] = parts.unit_name ? ' ' : 'n';
	ioffice_exec(&take_and_record, values, nulls, 0);
	/* no row: the register's last date is after today, or the row is gone */
	if (SPI_processed != 1)
		date_refused(reg.id, date_text, false);
	ioffice_get_int32(0, 1, &number);
	symbol = ioffice_get_text(0, 2);
	if (!reg.confidential)
	{
		JsonbBuild *event = ioffice_jsonb_begin();

		ioffice_jsonb_add_int(event, "register", reg.id);
		ioffice_jsonb_add_int(event, "number", number);
		ioffice_jsonb_add_text(event, "symbol", symbol);
		ioffice_jsonb_add_text(event, "doc_type", doc_type);
		ioffice_jsonb_add_text(event, "taken_on", date_text);
		ioffice_outbox_enqueue("number.taken", ioffice_jsonb_end(event));
	}
	ioffice_engine_leave();

	out[0] = Int32GetDatum(number);
	out[1] = CStringGetTextDatum(symbol);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, out, out_nulls);
	SPI_finish();
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(ioffice_format_number);
Datum
ioffice_format_number(PG_FUNCTION_ARGS)
{
	int32		number = PG_GETARG_INT32(0);

	if (number < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("register numbers start at 1, not %d", number)));
	PG_RETURN_TEXT_P(cstring_to_text(ioffice_format_number_str(number)));
}

PG_FUNCTION_INFO_V1(ioffice_build_symbol);
Datum
ioffice_build_symbol(PG_FUNCTION_ARGS)
{
	char	   *symbol;
	text	   *result;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a symbol needs a number, a document type and an agency")));
	if (PG_GETARG_INT32(0) < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("register numbers start at 1, not %d", PG_GETARG_INT32(0))));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	symbol = ioffice_symbol_for(PG_GETARG_INT32(0), text_to_cstring(PG_GETARG_TEXT_PP(1)),
								PG_GETARG_INT64(2), PG_ARGISNULL(3) ? 0 : PG_GETARG_INT64(3));
	result = ioffice_spi_text(symbol);
	SPI_finish();
	PG_RETURN_TEXT_P(result);
}

/*
 * _number_detail(number, symbol_tail, doc_type) → jsonb and
 * _number_record_hash(prev, seq, register, actor, detail) → bytea: the
 * detail and the hash of take_number's audit record, for its one statement
 * (take_and_record).  The hash is the one ioffice_audit_in_chain() gives the
 * same record, so audit_verify() checks it like any other.
 */
PG_FUNCTION_INFO_V1(ioffice_number_detail);
Datum
ioffice_number_detail(PG_FUNCTION_ARGS)
{
	int32		number = PG_GETARG_INT32(0);

	if (number < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a register number is 1 or more, not %d", number)));
	PG_RETURN_JSONB_P(number_detail(number, text_to_cstring(PG_GETARG_TEXT_PP(1)),
									text_to_cstring(PG_GETARG_TEXT_PP(2))));
}

PG_FUNCTION_INFO_V1(ioffice_number_record_hash);
Datum
ioffice_number_record_hash(PG_FUNCTION_ARGS)
{
	bytea	   *prev = PG_ARGISNULL(0) ? NULL : PG_GETARG_BYTEA_PP(0);
	int64		seq;
	int64		reg;
	int64		actor;
	Jsonb	   *detail;
	uint8		hash[PG_SHA256_DIGEST_LENGTH];

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3) || PG_ARGISNULL(4))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("_number_record_hash needs a position, a register, an actor and a detail")));
	seq = PG_GETARG_INT64(1);
	reg = PG_GETARG_INT64(2);
	actor = PG_GETARG_INT64(3);
	detail = PG_GETARG_JSONB_P(4);
	ioffice_audit_hash(psprintf("numbers:" INT64_FORMAT, reg), seq, prev,
					   GetCurrentTransactionStartTimestamp(), true, actor, false, 0,
					   GetUserNameFromId(GetSessionUserId(), false), "register", true, reg,
					   "take_number", NULL, NULL,
					   JsonbToCString(NULL, &detail->root, VARSIZE(detail)), hash);
	PG_RETURN_BYTEA_P(ioffice_bytea(hash, PG_SHA256_DIGEST_LENGTH));
}
