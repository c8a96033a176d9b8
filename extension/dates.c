/*-------------------------------------------------------------------------
 * dates.c
 *	  Dates and times read from text: the one place the extension parses
 *	  them.
 *
 * Two forms are read, each for its own callers:
 *
 * - A calendar date written YYYY-MM-DD, from 1900 to 9999: act()'s date
 *   options (deadline), a cooperator's deadline, import_issued()'s
 *   issued_on.  ioffice_parse_iso_date() reads it without raising, so that
 *   each caller refuses a bad one with a message naming its own field.
 *
 * - Whatever PostgreSQL's own date and timestamptz input accept (DateStyle,
 *   'today', a time zone): the details of create_outgoing(),
 *   register_incoming() and receive_dossier(), read by _date_detail() and
 *   _time_detail(), and the validity times of certificates and CRLs.
 *   ioffice_datetime_in() raises as the input function does;
 *   ioffice_try_datetime_in() returns false instead, as PL/pgSQL's
 *   EXCEPTION WHEN others did when the details were read in SQL.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "ioffice.h"

/*
 * "2026-12-31": exactly ten characters, a real calendar day, the year from
 * 1900 to 9999.  The day goes to *out (when out is not NULL); false for
 * anything else, without raising.
 */
bool
ioffice_parse_iso_date(const char *s, int len, DateADT *out)
{
	int			y,
				m,
				d;
	char		tail;
	char		buf[16];

	if (len != 10)
		return false;
	memcpy(buf, s, 10);
	buf[10] = '\0';
	if (sscanf(buf, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3 || buf[4] != '-' || buf[7] != '-')
		return false;
	if (y < 1900 || y > 9999 || m < 1 || m > 12 || d < 1)
		return false;
	if (d > day_tab[isleap(y)][m - 1])
		return false;
	if (out != NULL)
		*out = date2j(y, m, d) - POSTGRES_EPOCH_JDATE;
	return true;
}

/*
 * Text read by the input function of type (DATEOID or TIMESTAMPTZOID), as
 * a cast from text reads it; raises what the input function raises.
 */
Datum
ioffice_datetime_in(const char *s, Oid type)
{
	switch (type)
	{
		case DATEOID:
			return DirectFunctionCall1(date_in, CStringGetDatum(s));
		case TIMESTAMPTZOID:
			return DirectFunctionCall3(timestamptz_in, CStringGetDatum(s),
									   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
		default:
			elog(ERROR, "ioffice: no date input for type %u", type);
	}
	return (Datum) 0;			/* keep the compiler quiet */
}

/*
 * As ioffice_datetime_in(), but text the input function refuses gives
 * false.  PostgreSQL 15's input functions cannot report an error softly,
 * so the call runs in a subtransaction, rolled back on error, as PL/pgSQL
 * runs a block with an EXCEPTION clause; as there, a cancel is not caught.
 */
bool
ioffice_try_datetime_in(const char *s, Oid type, Datum *out)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	bool		ok = true;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		*out = ioffice_datetime_in(s, type);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED ||
			edata->sqlerrcode == ERRCODE_ASSERT_FAILURE)
			ReThrowError(edata);
		FreeErrorData(edata);
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

/* details->>key, by the operator's own function: NULL when absent, JSON null or not an object */
static char *
detail_text(Datum details, Datum key)
{
	LOCAL_FCINFO(call, 2);
	Datum		result;

	InitFunctionCallInfoData(*call, NULL, 2, InvalidOid, NULL, NULL);
	call->args[0].value = details;
	call->args[0].isnull = false;
	call->args[1].value = key;
	call->args[1].isnull = false;
	result = jsonb_object_field_text(call);
	return call->isnull ? NULL : TextDatumGetCString(result);
}

/*
 * _date_detail(details, key) and _time_detail(details, key): a date or a
 * time of the details of create_outgoing() and the like, a finite one, or
 * NULL when absent.  what names the type in messages: "date", "time".
 */
static Datum
read_detail(FunctionCallInfo fcinfo, Oid type, const char *what)
{
	char	   *key = text_to_cstring(PG_GETARG_TEXT_PP(1));
	char	   *s = detail_text(PG_GETARG_DATUM(0), PG_GETARG_DATUM(1));
	Datum		v;
	bool		finite;

	if (s == NULL)
		PG_RETURN_NULL();
	if (!ioffice_try_datetime_in(s, type, &v))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("details.%s \"%.*s\" is not a %s", key,
						pg_mbcliplen(s, strlen(s), 60), s, what)));
	finite = type == DATEOID ? !DATE_NOT_FINITE(DatumGetDateADT(v))
		: !TIMESTAMP_NOT_FINITE(DatumGetTimestampTz(v));
	if (!finite)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("details.%s must be a real %s, not %s", key, what,
						DatumGetCString(type == DATEOID ? DirectFunctionCall1(date_out, v)
										: DirectFunctionCall1(timestamptz_out, v)))));
	return v;
}

PG_FUNCTION_INFO_V1(ioffice_date_detail);
Datum
ioffice_date_detail(PG_FUNCTION_ARGS)
{
	return read_detail(fcinfo, DATEOID, "date");
}

PG_FUNCTION_INFO_V1(ioffice_time_detail);
Datum
ioffice_time_detail(PG_FUNCTION_ARGS)
{
	return read_detail(fcinfo, TIMESTAMPTZOID, "time");
}
