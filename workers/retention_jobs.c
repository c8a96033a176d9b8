/*-------------------------------------------------------------------------
 * retention_jobs.c
 *	  The signer process's clean-up of what is kept for a time only: the
 *	  finished requests of case_file_pdf() (their PDFs) older than
 *	  ioffice.export_retention; the rows of the access log older than
 *	  ioffice.access_log_retention, when a DBA set one (by default the
 *	  history of access is kept for ever); and the access log's digest into
 *	  its checkpoints, which makes it tamper-evident (before the pruning,
 *	  which cuts at a checkpoint).
 *
 * Once a minute, one batch at a time, each in a transaction of its own
 * (ioffice._export_cleanup(), sql/parts/99_case_file_pdf.sql;
 * ioffice._access_log_prune(), extension/access_log.c, the one way rows
 * of the access log are ever deleted): a batch
 * that was full is followed by the next one at the signer's next turn, so
 * that a large backlog neither holds a long transaction nor keeps the
 * signer from its signatures.  A database whose extension predates these
 * functions (0.1) has nothing to clean.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "ioffice.h"
#include "worker.h"

/* minutes a finished case file PDF is kept; 0: for ever */
int			ioffice_export_retention = 7 * 24 * 60;

/* minutes a row of the access log is kept; 0: for ever */
int			ioffice_access_log_retention = 0;

#define RETENTION_BATCH 100
#define ACCESS_LOG_BATCH 10000
#define RETENTION_INTERVAL_MS (60 * 1000)
#define DIGEST_CHECKPOINTS 100

void
ioffice_retention_init(void)
{
	DefineCustomIntVariable("ioffice.export_retention",
							"How long a finished case file PDF (case_file_pdf()) is kept; 0 keeps them.",
							"The worker removes older requests, made, failed or cancelled, with their PDFs.",
							&ioffice_export_retention,
							7 * 24 * 60, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MIN,
							NULL, NULL, NULL);
	DefineCustomIntVariable("ioffice.access_log_retention",
							"How long a row of the access log is kept; 0 (the default) keeps them for ever.",
							"Decree 30 Appendix VI asks the history of access kept: set years, if at all (e.g. 3650d). The worker deletes older rows in batches.",
							&ioffice_access_log_retention,
							0, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MIN,
							NULL, NULL, NULL);
}

/*
 * One batch of the clean-up function fname (which takes an interval of
 * minutes and a batch size), if it exists: how many rows it removed.
 */
static int64
run_batch(const char *fname, int minutes, int batch)
{
	Oid			argtypes[2] = {INT4OID, INT4OID};
	Datum		values[2];
	bool		isnull;
	int64		removed = 0;
	bool		digest = strcmp(fname, "_access_log_digest") == 0;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, digest ? "ioffice worker: digesting the access log" :
						   "ioffice worker: removing what is kept no longer");
	values[0] = CStringGetTextDatum(psprintf(digest ? "ioffice.%s(integer,interval)" :
											 "ioffice.%s(interval,integer)", fname));
	if (SPI_execute_with_args("SELECT pg_catalog.to_regprocedure($1) IS NOT NULL", 1,
							  (Oid[]) {TEXTOID}, values, NULL, true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "ioffice: could not look for %s", fname);
	if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
	{
		values[0] = Int32GetDatum(minutes);
		values[1] = Int32GetDatum(batch);
		if (SPI_execute_with_args(psprintf(digest ? "SELECT ioffice.%s($2)::bigint" :
										   "SELECT ioffice.%s(make_interval(mins => $1), $2)::bigint",
										   fname),
								  2, argtypes, values, NULL, false, 1) != SPI_OK_SELECT ||
			SPI_processed != 1)
			elog(ERROR, "ioffice: %s failed", fname);
		removed = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
											  &isnull));
	}
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	return removed;
}

/*
 * The clean-up, when it is due (once a minute, or at once after a full
 * batch): true when a batch was full (there is more).
 */
bool
ioffice_worker_retention_step(void)
{
	static TimestampTz next = 0;
	bool		more = false;

	if (GetCurrentTimestamp() < next)
		return false;
	if (ioffice_export_retention > 0)
		more |= run_batch("_export_cleanup", ioffice_export_retention,
						  RETENTION_BATCH) >= RETENTION_BATCH;
	/*
	 * The access log's digest (sql/parts/99_access_log_digest.sql), before
	 * its pruning, which cuts only at a digested range's end: checkpoints of
	 * at most ACCESS_LOG_BATCH rows in all, DIGEST_CHECKPOINTS at most, a
	 * turn; more at the next turn when the last one found rows.
	 */
	{
		int64		digested = 0;
		int64		n = 0;

		/* a backlog (checkpoints of a day each, at most): a batch's worth a turn */
		for (int i = 0; i < DIGEST_CHECKPOINTS && digested < ACCESS_LOG_BATCH; i++)
		{
			n = run_batch("_access_log_digest", 0, ACCESS_LOG_BATCH);
			if (n == 0)
				break;
			digested += n;
		}
		more |= n > 0;
	}
	if (ioffice_access_log_retention > 0)
	{
		int64		n = run_batch("_access_log_prune", ioffice_access_log_retention,
								  ACCESS_LOG_BATCH);

		if (n > 0)
			elog(LOG, "ioffice worker: " INT64_FORMAT " rows of the access log older than ioffice.access_log_retention deleted", n);
		more |= n >= ACCESS_LOG_BATCH;
	}
	next = more ? 0 : TimestampTzPlusMilliseconds(GetCurrentTimestamp(), RETENTION_INTERVAL_MS);
	return more;
}
