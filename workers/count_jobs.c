/*-------------------------------------------------------------------------
 * count_jobs.c
 *	  The signer process's part in dashboard()'s history counters: folding
 *	  their deltas into the counter rows about every second.
 *
 * The triggers of sql/parts/95_dashboard_counts.sql only insert deltas, so
 * that concurrent documents never wait for one another at a clerk's counter
 * row; a counter is its row plus its deltas.  Folding keeps the deltas a home
 * page sums few.  It is one short transaction of its own, which takes the
 * counter rows' locks only for as long as it runs.  A database whose
 * extension predates the deltas (0.1, not yet updated) has nothing to fold.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "pgstat.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "worker.h"

#define FOLD_INTERVAL_MS 1000

static TimestampTz last_fold = 0;

void
ioffice_worker_fold_counts(void)
{
	TimestampTz now = GetCurrentTimestamp();
	MemoryContext oldcxt;
	ResourceOwner oldowner;

	if (!TimestampDifferenceExceeds(last_fold, now, FOLD_INTERVAL_MS))
		return;
	last_fold = now;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	/* whatever the database's default: the fold is one statement's snapshot */
	XactIsoLevel = XACT_READ_COMMITTED;
	pgstat_report_activity(STATE_RUNNING, "ioffice worker: folding the home page's counters");

	/*
	 * A fold that fails (a person deleted under it, a lock timeout) is
	 * logged and tried again next time: it must not stop the signer's
	 * signing and sealing, as an error escaping the step would.
	 */
	oldcxt = CurrentMemoryContext;
	oldowner = CurrentResourceOwner;
	BeginInternalSubTransaction(NULL);
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "ioffice: SPI_connect failed");
		PushActiveSnapshot(GetTransactionSnapshot());
		if (SPI_execute("SELECT pg_catalog.to_regprocedure('ioffice.dashboard_counts_fold()') IS NOT NULL",
						true, 1) != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "ioffice: could not look for dashboard_counts_fold()");
		if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
									   &(bool){false})))
		{
			PopActiveSnapshot();
			PushActiveSnapshot(GetTransactionSnapshot());
			if (SPI_execute("SELECT ioffice.dashboard_counts_fold()", false, 1) != SPI_OK_SELECT)
				elog(ERROR, "ioffice: could not fold the home page's counters");
		}
		PopActiveSnapshot();
		SPI_finish();
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		ereport(LOG,
				(errmsg("ioffice: the home page's counters were not folded: %s", edata->message)));
		FreeErrorData(edata);
	}
	PG_END_TRY();

	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
}
