/*-------------------------------------------------------------------------
 * reminder_jobs.c
 *	  The signer process's part in the follow-up of tasks (Decree 30 art.
 *	  24; appendix VI III.1l-m): reminders of tasks coming due and overdue,
 *	  and the unit leaders' daily digests, about once a minute.
 *
 * The SQL function send_reminders() (sql/parts/99_followup.sql) does the
 * work: it writes a row per reminder (task and level) and per digest
 * (leader and day) in the transaction that queues the notify.* event, with
 * a unique key, so that each goes once, whoever calls it, however often,
 * and across restarts of the worker.  Here it is one short transaction of
 * its own, at the process's start and then every minute (a date is what it
 * waits for).  A database whose extension predates it (0.1) has nothing to
 * send.
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

#define REMINDER_INTERVAL_MS 60000

static TimestampTz last_look = 0;

/* send_reminders(), when this database's extension has it */
static void
send_reminders(void)
{
	bool		isnull;

	if (SPI_execute("SELECT pg_catalog.to_regprocedure('ioffice.send_reminders()') IS NOT NULL",
					true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "ioffice: could not look for send_reminders()");
	if (!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
		return;
	PopActiveSnapshot();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (SPI_execute("SELECT ioffice.send_reminders()", false, 1) != SPI_OK_SELECT)
		elog(ERROR, "ioffice: could not send the reminders");
}

void
ioffice_worker_reminders(void)
{
	TimestampTz now = GetCurrentTimestamp();
	MemoryContext oldcxt;
	ResourceOwner oldowner;

	if (last_look != 0 && !TimestampDifferenceExceeds(last_look, now, REMINDER_INTERVAL_MS))
		return;
	last_look = now;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	XactIsoLevel = XACT_READ_COMMITTED;
	pgstat_report_activity(STATE_RUNNING, "ioffice worker: sending reminders of tasks due");

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
		send_reminders();
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
				(errmsg("ioffice: the reminders of tasks due were not sent: %s",
						edata->message)));
		FreeErrorData(edata);
	}
	PG_END_TRY();

	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
}
