/*-------------------------------------------------------------------------
 * calendar.c
 *	  Working days, for the deadlines of administrative procedures:
 *	  add_working_days(), working_days_between(), is_working_day().
 *
 * A day is a working day when the holiday table has a row for it with
 * working = true (a make-up day), or has no row for it and it is Monday to
 * Friday.  Days are local dates in ioffice.timezone: a moment belongs to the
 * day its wall clock shows there.
 *
 * The holiday rows are read a range at a time with a kept plan, never one
 * query per day: add_working_days() asks about the start's day, then reads a
 * window long enough for the days asked (another only when holidays use it
 * up); working_days_between() reads its range once.  Between two rows every
 * day is an ordinary one, so its Mondays to Fridays are counted by
 * arithmetic, whole weeks at a time.
 *
 * The functions are not SECURITY DEFINER: holiday is readable by everyone.
 * Their queries name the schema and the operators, so a caller's
 * search_path cannot change what they read.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "datatype/timestamp.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"

#include "ioffice.h"

/* a hundred years of working days: more is a mistake, not a deadline */
#define MAX_WORKING_DAYS 36500

static IofficePlan holiday_rows = {
	NULL,
	"SELECT day, working FROM ioffice.holiday "
	" WHERE day OPERATOR(pg_catalog.>=) $1 AND day OPERATOR(pg_catalog.<) $2 "
	" ORDER BY day",
	2, {DATEOID, DATEOID}
};

/* Julian day numbers are what j2day() and the arithmetic below work on. */
static inline Datum
julian_date_datum(int32 j)
{
	return DateADTGetDatum((DateADT) (j - POSTGRES_EPOCH_JDATE));
}

static inline bool
is_monday_to_friday(int32 j)
{
	int			dow = j2day(j);	/* 0 = Sunday ... 6 = Saturday */

	return dow != 0 && dow != 6;
}

/* Mondays to Fridays in [from, to). */
static int64
weekdays_in(int32 from, int32 to)
{
	int64		weeks;
	int64		n;
	int32		j;

	if (to <= from)
		return 0;
	weeks = ((int64) to - from) / 7;
	n = weeks * 5;
	for (j = from + (int32) (weeks * 7); j < to; j++)
		if (is_monday_to_friday(j))
			n++;
	return n;
}

/* The k-th (k >= 1) Monday to Friday on or after from. */
static int32
nth_weekday_from(int32 from, int64 k)
{
	int64		weeks = (k - 1) / 5;
	int32		j = from + (int32) (weeks * 7);

	k -= weeks * 5;
	for (;; j++)
		if (is_monday_to_friday(j) && --k == 0)
			return j;
}

/* Holiday rows with from <= day < to, in SPI_tuptable, in order of day. */
static void
read_rows(int32 from, int32 to)
{
	Datum		args[2];

	args[0] = julian_date_datum(from);
	args[1] = julian_date_datum(to);
	ioffice_exec_readonly(&holiday_rows, args, NULL, 0);
}

static int32
row_day(uint64 i, bool *working)
{
	bool		isnull;
	HeapTuple	tup = SPI_tuptable->vals[i];
	TupleDesc	desc = SPI_tuptable->tupdesc;
	DateADT		d = DatumGetDateADT(SPI_getbinval(tup, desc, 1, &isnull));

	*working = DatumGetBool(SPI_getbinval(tup, desc, 2, &isnull));
	return (int32) d + POSTGRES_EPOCH_JDATE;
}

static bool
working_day(int32 j)
{
	bool		working;

	read_rows(j, j + 1);
	if (SPI_processed == 0)
		return is_monday_to_friday(j);
	(void) row_day(0, &working);
	SPI_freetuptable(SPI_tuptable);
	return working;
}

/*
 * The k-th (k >= 1) working day after day j.  Rows are read a window at a
 * time; a window is long enough to hold k working days when few holidays
 * fall in it, so one query is usually enough.
 */
static int32
nth_working_day_after(int32 j, int64 k)
{
	int32		pos = j + 1;	/* first day not yet counted */

	for (;;)
	{
		int32		end = pos + (int32) (k * 7 / 5) + 14;	/* exclusive */
		uint64		i;
		int64		c;

		if (pos > TIMESTAMP_END_JULIAN)
			ereport(ERROR,
					(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
					 errmsg("the working day falls after the last date a timestamp can hold")));
		read_rows(pos, end);
		for (i = 0; i < SPI_processed; i++)
		{
			bool		working;
			int32		day = row_day(i, &working);

			c = weekdays_in(pos, day);
			if (c >= k)
				return nth_weekday_from(pos, k);
			k -= c;
			if (working && --k == 0)
				return day;
			pos = day + 1;
		}
		SPI_freetuptable(SPI_tuptable);
		c = weekdays_in(pos, end);
		if (c >= k)
			return nth_weekday_from(pos, k);
		k -= c;
		pos = end;
	}
}

/* The local day of t in zone tz (Julian), and its wall-clock time. */
static int32
local_day(TimestampTz t, text *tz, TimeADT *time_of_day)
{
	Datum		local = DirectFunctionCall2(timestamptz_zone, PointerGetDatum(tz),
											TimestampTzGetDatum(t));

	if (time_of_day)
		*time_of_day = DatumGetTimeADT(DirectFunctionCall1(timestamp_time, local));
	return (int32) DatumGetDateADT(DirectFunctionCall1(timestamp_date, local))
		+ POSTGRES_EPOCH_JDATE;
}

static text *
calendar_zone(void)
{
	return cstring_to_text(ioffice_timezone_setting ? ioffice_timezone_setting
						   : "Asia/Ho_Chi_Minh");
}

/*
 * add_working_days(start timestamptz, days int) -> timestamptz
 *
 * Start on a working day: the same wall-clock time on the days-th working
 * day after it (Friday 15:54 + 1 = Monday 15:54).  Start on a day off:
 * counted from 00:00 of the next working day, so the result is 00:00 of the
 * days-th working day after that one, i.e. the moment the days-th working day
 * counted from the start ends.  0 days: start itself.  Infinite starts stay.
 */
PG_FUNCTION_INFO_V1(ioffice_add_working_days);
Datum
ioffice_add_working_days(PG_FUNCTION_ARGS)
{
	TimestampTz start = PG_GETARG_TIMESTAMPTZ(0);
	int32		days = PG_GETARG_INT32(1);
	text	   *tz;
	TimeADT		time_of_day;
	int32		j;
	Datum		local;

	if (days < 0 || days > MAX_WORKING_DAYS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the number of working days must be between 0 and %d (it is %d)",
						MAX_WORKING_DAYS, days),
				 days < 0 ? errhint("Deadlines count forward; use working_days_between() "
									"to count the working days between two moments.") : 0));
	if (days == 0 || TIMESTAMP_NOT_FINITE(start))
		PG_RETURN_TIMESTAMPTZ(start);

	tz = calendar_zone();
	j = local_day(start, tz, &time_of_day);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	if (!working_day(j))
	{
		j = nth_working_day_after(j, 1);
		time_of_day = 0;
	}
	j = nth_working_day_after(j, days);
	SPI_finish();

	/* both raise 22008 when the day is past what a timestamp can hold */
	local = DirectFunctionCall2(datetime_timestamp, julian_date_datum(j),
								TimeADTGetDatum(time_of_day));
	return DirectFunctionCall2(timestamp_zone, PointerGetDatum(tz), local);
}

/*
 * working_days_between(from_ts timestamptz, to_ts timestamptz) -> int
 *
 * The working days among the local dates d with date(from) <= d < date(to);
 * the times of day do not matter.  Negative, the same count, when to_ts is
 * on an earlier date than from_ts.
 */
PG_FUNCTION_INFO_V1(ioffice_working_days_between);
Datum
ioffice_working_days_between(PG_FUNCTION_ARGS)
{
	TimestampTz from_ts = PG_GETARG_TIMESTAMPTZ(0);
	TimestampTz to_ts = PG_GETARG_TIMESTAMPTZ(1);
	text	   *tz;
	int32		from;
	int32		to;
	int64		n;
	int32		sign = 1;
	uint64		i;

	if (TIMESTAMP_NOT_FINITE(from_ts) || TIMESTAMP_NOT_FINITE(to_ts))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("working days cannot be counted to or from infinity")));
	tz = calendar_zone();
	from = local_day(from_ts, tz, NULL);
	to = local_day(to_ts, tz, NULL);
	if (from > to)
	{
		int32		earlier = to;

		to = from;
		from = earlier;
		sign = -1;
	}
	if (from == to)
		PG_RETURN_INT32(0);
	n = weekdays_in(from, to);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	read_rows(from, to);
	for (i = 0; i < SPI_processed; i++)
	{
		bool		working;
		bool		weekday = is_monday_to_friday(row_day(i, &working));

		if (weekday && !working)
			n--;
		else if (!weekday && working)
			n++;
	}
	SPI_finish();
	/* at most the days of the timestamp range: fits */
	PG_RETURN_INT32(sign * (int32) n);
}

/* is_working_day(day date) -> boolean */
PG_FUNCTION_INFO_V1(ioffice_is_working_day);
Datum
ioffice_is_working_day(PG_FUNCTION_ARGS)
{
	DateADT		day = PG_GETARG_DATEADT(0);
	bool		result;

	if (DATE_NOT_FINITE(day))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("infinity is not a day of the calendar")));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	result = working_day((int32) day + POSTGRES_EPOCH_JDATE);
	SPI_finish();
	PG_RETURN_BOOL(result);
}
