/*-------------------------------------------------------------------------
 * registers.c
 *	  Numbering registers, Decree 30 symbols and document identifiers.
 *
 * The register row is the counter.  Taking a number is one UPDATE of that
 * row: its lock is held until the transaction ends, so numbers are gapless
 * (a rolled-back transaction gives its number back) and unique.  Because the
 * lock serialises every clerk of the register, the number is taken as late
 * as possible in act(), after every check and every other write.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"

#include "workflow.h"

static IofficePlan unit_abbrs = {
	NULL,
	"SELECT (SELECT abbr FROM ioffice.doc_type WHERE code = $1), "
	"       (SELECT abbr FROM ioffice.unit WHERE id = $2), "
	"       (SELECT abbr FROM ioffice.unit WHERE id = $3), "
	"       EXISTS (SELECT 1 FROM ioffice.doc_type WHERE code = $1)",
	3, {TEXTOID, INT8OID, INT8OID}
};

static IofficePlan today = {
	NULL,
	"SELECT extract(year FROM now() AT TIME ZONE $1)::int, "
	"       to_char(now() AT TIME ZONE $1, 'YYYY/MM/DD'), "
	"       (now() AT TIME ZONE $1)::date",
	1, {TEXTOID}
};

static IofficePlan issuing_agency = {
	NULL,
	"SELECT u.agency_id, a.code FROM ioffice.person p "
	"  JOIN ioffice.unit u ON u.id = p.unit_id JOIN ioffice.unit a ON a.id = u.agency_id "
	" WHERE p.id = $1",
	1, {INT8OID}
};

static IofficePlan register_given = {
	NULL,
	"SELECT r.agency_id, r.direction, r.code, r.confidential, "
	"       r.doc_types IS NULL OR $2 = ANY (r.doc_types) "
	"  FROM ioffice.register r WHERE r.id = $1",
	2, {INT8OID, TEXTOID}
};

/* the register of this code for the year; created from the latest year */
static IofficePlan register_of_year = {
	NULL,
	"SELECT id FROM ioffice.register "
	" WHERE agency_id = $1 AND direction = $2 AND code = $3 AND year = $4",
	4, {INT8OID, TEXTOID, TEXTOID, INT4OID}
};

static IofficePlan register_default = {
	NULL,
	"SELECT code FROM ioffice.register "
	" WHERE agency_id = $1 AND direction = 'outgoing' AND confidential = $2 "
	"   AND (doc_types IS NULL OR $3 = ANY (doc_types)) "
	" ORDER BY doc_types IS NULL, year DESC, id LIMIT 1",
	3, {INT8OID, BOOLOID, TEXTOID}
};

static IofficePlan register_open_year = {
	NULL,
	"INSERT INTO ioffice.register (agency_id, direction, code, name, doc_types, confidential, year) "
	"SELECT agency_id, direction, code, name, doc_types, confidential, $4 "
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

static IofficePlan mark_issued = {
	NULL,
	"UPDATE ioffice.document SET register_id = $2, number = $3, symbol = $4, issued_on = $5, "
	"       issued_at = now(), identifier = $6, agency_id = $7 WHERE id = $1",
	7, {INT8OID, INT8OID, INT4OID, TEXTOID, DATEOID, TEXTOID, INT8OID}
};

/* "05", "15", "129": Decree 30 writes numbers below 10 with a leading zero. */
char *
ioffice_format_number_str(int32 number)
{
	return psprintf("%02d", number);
}

/*
 * The number and symbol: <nn>/<type>-<agency> for named types (15/QĐ-UBND),
 * <nn>/<agency>-<drafting unit> for công văn (05/UBND-VP), or <nn>/<agency>
 * when the agency drafted it itself.  The caller is connected to SPI.
 */
char *
ioffice_symbol_for(int32 number, const char *doc_type, int64 agency, int64 drafting_unit)
{
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};
	char	   *type_abbr;
	char	   *agency_abbr;
	char	   *unit_abbr;
	bool		type_known = false;
	StringInfoData buf;

	values[0] = CStringGetTextDatum(doc_type);
	values[1] = Int64GetDatum(agency);
	values[2] = Int64GetDatum(drafting_unit);
	nulls[2] = drafting_unit ? ' ' : 'n';
	ioffice_exec(&unit_abbrs, values, nulls, 1);
	type_abbr = ioffice_get_text(0, 1);
	agency_abbr = ioffice_get_text(0, 2);
	unit_abbr = ioffice_get_text(0, 3);
	ioffice_get_bool(0, 4, &type_known);
	if (!type_known)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("unknown document type \"%s\"", doc_type)));
	if (agency_abbr == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("unknown agency %lld", (long long) agency)));

	initStringInfo(&buf);
	appendStringInfo(&buf, "%02d/", number);
	if (type_abbr != NULL)
		appendStringInfo(&buf, "%s-%s", type_abbr, agency_abbr);
	else if (unit_abbr != NULL && drafting_unit != agency)
		appendStringInfo(&buf, "%s-%s", agency_abbr, unit_abbr);
	else
		appendStringInfoString(&buf, agency_abbr);
	return buf.data;
}

/*
 * Which register numbers this issue: the one the clerk chose
 * (options.register), else the agency's default for the type and
 * confidentiality.  Returns the row for the current year, made on first use.
 */
static int64
choose_register(ActContext *ctx, int64 agency, int32 year)
{
	JsonbValue *given = ioffice_jsonb_get(ctx->options, "register");
	bool		confidential = strcmp(ctx->confidentiality, "normal") != 0;
	char	   *code;
	Datum		values[4];
	int64		id;
	int			attempt;

	if (given != NULL && given->type == jbvNumeric)
	{
		int64		reg_id;
		int64		reg_agency = 0;
		bool		reg_confidential = false;
		bool		type_ok = false;
		char	   *direction;

		reg_id = DatumGetInt64(DirectFunctionCall1(numeric_int8,
												   NumericGetDatum(given->val.numeric)));
		values[0] = Int64GetDatum(reg_id);
		values[1] = CStringGetTextDatum(ctx->doc_type);
		ioffice_exec(&register_given, values, NULL, 1);
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("unknown register %lld", (long long) reg_id)));
		ioffice_get_int64(0, 1, &reg_agency);
		direction = ioffice_get_text(0, 2);
		code = ioffice_get_text(0, 3);
		ioffice_get_bool(0, 4, &reg_confidential);
		ioffice_get_bool(0, 5, &type_ok);
		if (reg_agency != agency || strcmp(direction, "outgoing") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("register %lld is not an outgoing register of the issuing agency",
							(long long) reg_id)));
		if (!type_ok)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("register %lld does not number documents of type %s",
							(long long) reg_id, ctx->doc_type)));
		if (reg_confidential != confidential)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("register %lld is for %s documents, document %lld is %s",
							(long long) reg_id, reg_confidential ? "confidential" : "ordinary",
							(long long) ctx->doc, ctx->confidentiality),
					 errdetail("Decree 30 numbers confidential documents in their own series.")));
	}
	else
	{
		values[0] = Int64GetDatum(agency);
		values[1] = BoolGetDatum(confidential);
		values[2] = CStringGetTextDatum(ctx->doc_type);
		ioffice_exec(&register_default, values, NULL, 1);
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the issuing agency has no %soutgoing register for type %s",
							confidential ? "confidential " : "", ctx->doc_type),
					 errhint("Add a row to table ioffice.register.")));
		code = ioffice_get_text(0, 1);
	}

	values[0] = Int64GetDatum(agency);
	values[1] = CStringGetTextDatum("outgoing");
	values[2] = CStringGetTextDatum(code);
	values[3] = Int32GetDatum(year);
	for (attempt = 0; attempt < 2; attempt++)
	{
		ioffice_exec(&register_of_year, values, NULL, 1);
		if (ioffice_get_int64(0, 1, &id))
			return id;
		/* first number of the year: open the year's row */
		ioffice_exec(&register_open_year, values, NULL, 0);
	}
	elog(ERROR, "ioffice: could not open register %s for %d", code, year);
	return 0;					/* keep compiler quiet */
}

/*
 * Effect number_and_issue: the clerk's agency (the clerk holds the task)
 * issues the document under the next number of its register.
 */
void
ioffice_number_and_issue(ActContext *ctx)
{
	Datum		values[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	int64		agency = 0;
	char	   *agency_code;
	int32		year = 0;
	char	   *date_text;
	Datum		issued_on;
	int64		reg;
	int32		number = 0;
	char	   *symbol;
	char	   *identifier = NULL;
	bool		isnull;

	values[0] = Int64GetDatum(ctx->actor);
	ioffice_exec(&issuing_agency, values, NULL, 1);
	ioffice_get_int64(0, 1, &agency);
	agency_code = ioffice_get_text(0, 2);

	values[0] = CStringGetTextDatum(ioffice_timezone_setting);
	ioffice_exec(&today, values, NULL, 1);
	ioffice_get_int32(0, 1, &year);
	date_text = ioffice_get_text(0, 2);
	issued_on = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull);

	reg = choose_register(ctx, agency, year);

	/* the lock on the register row is taken here and held to commit */
	values[0] = Int64GetDatum(reg);
	ioffice_exec(&take_next, values, NULL, 1);
	ioffice_get_int32(0, 1, &number);

	symbol = ioffice_symbol_for(number, ctx->doc_type, agency, ctx->drafting_unit);

	/*
	 * The identifier is the document's name on the national interconnection
	 * axis.  Confidential documents never travel there (they have their own
	 * series, whose numbers repeat the ordinary ones), so they get none.
	 */
	if (agency_code != NULL && strcmp(ctx->confidentiality, "normal") == 0)
		identifier = psprintf("%s,%s,%s", agency_code, date_text, symbol);

	values[0] = Int64GetDatum(ctx->doc);
	values[1] = Int64GetDatum(reg);
	values[2] = Int32GetDatum(number);
	values[3] = CStringGetTextDatum(symbol);
	values[4] = issued_on;
	values[5] = identifier ? CStringGetTextDatum(identifier) : (Datum) 0;
	nulls[5] = identifier ? ' ' : 'n';
	values[6] = Int64GetDatum(agency);
	ioffice_exec(&mark_issued, values, nulls, 0);

	ioffice_jsonb_add_int(ctx->detail, "register", reg);
	ioffice_jsonb_add_int(ctx->detail, "number", number);
	ioffice_jsonb_add_text(ctx->detail, "symbol", symbol);
	ioffice_jsonb_add_text(ctx->detail, "identifier", identifier);
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
	result = (text *) SPI_palloc(VARHDRSZ + strlen(symbol));
	SET_VARSIZE(result, VARHDRSZ + strlen(symbol));
	memcpy(VARDATA(result), symbol, strlen(symbol));
	SPI_finish();
	PG_RETURN_TEXT_P(result);
}
