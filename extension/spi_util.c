/*-------------------------------------------------------------------------
 * spi_util.c
 *	  Prepared SPI plans kept for the life of the backend, and readers of
 *	  the current SPI result.
 *
 * Every query of the hot paths (act, attach) goes through a plan prepared
 * once per backend: parsing and planning per call would cost more than the
 * work itself.  The queries name their tables with the schema, so a plan is
 * never bound to a caller's search_path.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/builtins.h"

#include "ioffice.h"

static void
prepare_kept(IofficePlan *p)
{
	SPIPlanPtr	plan;

	if (p->plan != NULL)
		return;
	plan = SPI_prepare(p->sql, p->nargs, p->argtypes);
	if (plan == NULL)
		elog(ERROR, "ioffice: could not prepare \"%s\": %s",
			 p->sql, SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "ioffice: could not keep plan");
	p->plan = plan;
}

/*
 * Run a kept plan.  Never read-only: a read-only SPI query reuses the
 * snapshot of the statement that called us, taken before act() waited for a
 * document's row lock, and would not see what the transaction holding that
 * lock committed (a task already closed, a signature just queued).  Each
 * query here takes a fresh snapshot instead.
 */
int
ioffice_exec(IofficePlan *p, Datum *values, const char *nulls, long count)
{
	int			rc;

	prepare_kept(p);
	rc = SPI_execute_plan(p->plan, values, nulls, false, count);
	if (rc < 0)
		elog(ERROR, "ioffice: query failed (%s): %s", SPI_result_code_string(rc), p->sql);
	return rc;
}

/*
 * Run a kept plan read-only, for STABLE functions that only read (the
 * calendar): the query sees the snapshot of the statement that called the
 * function, so every row of that statement gets the same answer.
 */
int
ioffice_exec_readonly(IofficePlan *p, Datum *values, const char *nulls, long count)
{
	int			rc;

	prepare_kept(p);
	rc = SPI_execute_plan(p->plan, values, nulls, true, count);
	if (rc < 0)
		elog(ERROR, "ioffice: query failed (%s): %s", SPI_result_code_string(rc), p->sql);
	return rc;
}

static Datum
get_datum(int row, int col, bool *isnull)
{
	if (SPI_tuptable == NULL || row >= (int) SPI_processed)
	{
		*isnull = true;
		return (Datum) 0;
	}
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, isnull);
}

bool
ioffice_get_int64(int row, int col, int64 *out)
{
	bool		isnull;
	Datum		d = get_datum(row, col, &isnull);

	if (!isnull)
		*out = DatumGetInt64(d);
	return !isnull;
}

bool
ioffice_get_int32(int row, int col, int32 *out)
{
	bool		isnull;
	Datum		d = get_datum(row, col, &isnull);

	if (!isnull)
		*out = DatumGetInt32(d);
	return !isnull;
}

bool
ioffice_get_bool(int row, int col, bool *out)
{
	bool		isnull;
	Datum		d = get_datum(row, col, &isnull);

	if (!isnull)
		*out = DatumGetBool(d);
	return !isnull;
}

/* Text value, palloc'd in the current (SPI procedure) memory context. */
char *
ioffice_get_text(int row, int col)
{
	bool		isnull;

	(void) get_datum(row, col, &isnull);
	if (isnull)
		return NULL;
	return SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);
}
