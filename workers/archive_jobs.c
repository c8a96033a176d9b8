/*-------------------------------------------------------------------------
 * archive_jobs.c
 *	  The signer process's part in the archive transfer of case files: the
 *	  30-day warnings of closed case files due for the agency's archive
 *	  (Decree 30 appendix VI III.5b), about once a minute.
 *
 * The SQL function case_file_archive_warnings() (sql/parts/98_case_files.sql)
 * does the work: it marks each file it warns, in the transaction that queues
 * the notify.* event, so that a file is warned once, whoever calls it and
 * however often.  Here it is one short transaction of its own, at the
 * process's start and then every minute (a date is what it waits for).  A
 * database whose extension predates case files (0.1) has nothing to warn.
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

#define ARCHIVE_INTERVAL_MS 60000

static TimestampTz last_look = 0;

void
ioffice_worker_archive_warnings(void)
{
	TimestampTz now = GetCurrentTimestamp();
	MemoryContext oldcxt;
	ResourceOwner oldowner;

	if (last_look != 0 && !TimestampDifferenceExceeds(last_look, now, ARCHIVE_INTERVAL_MS))
		return;
	last_look = now;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	XactIsoLevel = XACT_READ_COMMITTED;
	pgstat_report_activity(STATE_RUNNING, "ioffice worker: warning of case files due for the archive");

	/*
	 * A failure is logged and tried again next time: it must not stop the
	 * signer's signing and sealing, as an error escaping the step would.
	 */
	oldcxt = CurrentMemoryContext;
	oldowner = CurrentResourceOwner;
	BeginInternalSubTransaction(NULL);
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "ioffice: SPI_connect failed");
		PushActiveSnapshot(GetTransactionSnapshot());
		if (SPI_execute("SELECT pg_catalog.to_regprocedure('ioffice.case_file_archive_warnings()') IS NOT NULL",
						true, 1) != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "ioffice: could not look for case_file_archive_warnings()");
		if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
									   &(bool){false})))
		{
			PopActiveSnapshot();
			PushActiveSnapshot(GetTransactionSnapshot());
			if (SPI_execute("SELECT ioffice.case_file_archive_warnings()", false, 1) != SPI_OK_SELECT)
				elog(ERROR, "ioffice: could not warn of the case files due for the archive");
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
				(errmsg("ioffice: the case files due for the archive were not warned of: %s",
						edata->message)));
		FreeErrorData(edata);
	}
	PG_END_TRY();

	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
}
