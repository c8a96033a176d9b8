/*-------------------------------------------------------------------------
 * worker.c
 *	  The ioffice background worker: one per served database, doing the
 *	  slow outside work (signing) so that act() stays fast.
 *
 * Loaded through shared_preload_libraries, the library registers one
 * worker per database of ioffice.worker_databases.  A worker sleeps on its
 * latch; a transaction that queues work sets that latch when it commits
 * (not before: the worker would find nothing), and the worker also wakes
 * every ioffice.worker_naptime seconds.  Jobs are taken in batches with
 * FOR UPDATE SKIP LOCKED, each in a subtransaction of its own, so a failing
 * job is marked failed with its reason and never blocks the others; the
 * batch commits at once, so a crash loses no job and records no signature
 * twice: what was not committed is simply done again.  On a hot standby the
 * worker waits; it starts working when the server is promoted.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "ioffice.h"
#include "worker.h"

PGDLLEXPORT void ioffice_worker_main(Datum arg);

char	   *ioffice_worker_databases = NULL;
char	   *ioffice_keystore = NULL;
int			ioffice_worker_naptime = 10;
int			ioffice_worker_batch = 100;

typedef struct IofficeWorkerShared
{
	LWLock	   *lock;
	int			nslots;
	IofficeWorkerSlot slots[IOFFICE_MAX_WORKERS];
} IofficeWorkerShared;

static IofficeWorkerShared *shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static bool wake_registered = false;
static bool wake_pending = false;

/* The databases to serve, from the setting: a List of C strings. */
static List *
served_databases(void)
{
	char	   *copy = pstrdup(ioffice_worker_databases ? ioffice_worker_databases : "");
	List	   *names = NIL;

	if (!SplitIdentifierString(copy, ',', &names))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ioffice.worker_databases is not a comma-separated list of database names")));
	return names;
}

static void
worker_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(IofficeWorkerShared)));
	RequestNamedLWLockTranche("ioffice", 1);
}

static void
worker_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("ioffice worker", sizeof(IofficeWorkerShared), &found);
	if (!found)
	{
		List	   *names = served_databases();
		ListCell   *lc;

		memset(shared, 0, sizeof(IofficeWorkerShared));
		shared->lock = &(GetNamedLWLockTranche("ioffice"))->lock;
		foreach(lc, names)
		{
			if (shared->nslots >= IOFFICE_MAX_WORKERS)
				break;
			strlcpy(shared->slots[shared->nslots].dbname, lfirst(lc), NAMEDATALEN);
			strlcpy(shared->slots[shared->nslots].state, "starting", 32);
			shared->nslots++;
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

void
ioffice_worker_init(void)
{
	List	   *names;
	ListCell   *lc;
	int			i = 0;

	DefineCustomStringVariable("ioffice.worker_databases",
							   "Databases the ioffice background worker serves (comma-separated).",
							   "One worker per database, at most 8.  Empty: no worker.",
							   &ioffice_worker_databases,
							   "postgres",
							   PGC_POSTMASTER,
							   0,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("ioffice.keystore",
							   "Directory of the private keys the worker signs with.",
							   "Key files must be readable by the server's OS user only.",
							   &ioffice_keystore,
							   "",
							   PGC_SIGHUP,
							   0,
							   NULL, NULL, NULL);
	DefineCustomIntVariable("ioffice.worker_naptime",
							"Seconds the worker sleeps when nobody wakes it.",
							NULL,
							&ioffice_worker_naptime,
							10, 1, 3600,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomIntVariable("ioffice.worker_batch",
							"Jobs the worker takes in one transaction.",
							NULL,
							&ioffice_worker_batch,
							100, 1, 1000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	ioffice_outbox_delivery_init();

	if (!process_shared_preload_libraries_in_progress)
		return;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = worker_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = worker_shmem_startup;

	names = served_databases();
	foreach(lc, names)
	{
		BackgroundWorker worker;

		if (i >= IOFFICE_MAX_WORKERS)
		{
			ereport(WARNING,
					(errmsg("ioffice serves at most %d databases; \"%s\" and those after it are ignored",
							IOFFICE_MAX_WORKERS, (char *) lfirst(lc))));
			break;
		}
		memset(&worker, 0, sizeof(worker));
		worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
		/* start on a standby too: it waits there until promotion */
		worker.bgw_start_time = BgWorkerStart_ConsistentState;
		worker.bgw_restart_time = 5;
		strlcpy(worker.bgw_library_name, "ioffice", BGW_MAXLEN);
		strlcpy(worker.bgw_function_name, "ioffice_worker_main", BGW_MAXLEN);
		snprintf(worker.bgw_name, BGW_MAXLEN, "ioffice worker for %s", (char *) lfirst(lc));
		strlcpy(worker.bgw_type, "ioffice worker", BGW_MAXLEN);
		worker.bgw_main_arg = Int32GetDatum(i);
		RegisterBackgroundWorker(&worker);
		i++;
	}
}

/* ------------------------------------------------------------------------
 * Waking the worker when a transaction that queued work commits
 * ------------------------------------------------------------------------
 */
static void
wake_xact_callback(XactEvent event, void *arg)
{
	int			i;

	/*
	 * A prepared transaction commits later, in another session: the worker
	 * finds its work at its next look (ioffice.worker_naptime).
	 */
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
		wake_pending = false;
	if ((event != XACT_EVENT_COMMIT && event != XACT_EVENT_PARALLEL_COMMIT) || !wake_pending)
		return;
	wake_pending = false;
	if (shared == NULL)
		return;
	LWLockAcquire(shared->lock, LW_SHARED);
	for (i = 0; i < shared->nslots; i++)
		if (shared->slots[i].dboid == MyDatabaseId && shared->slots[i].latch != NULL)
			SetLatch(shared->slots[i].latch);
	LWLockRelease(shared->lock);
}

void
ioffice_worker_wake_at_commit(void)
{
	if (!wake_registered)
	{
		RegisterXactCallback(wake_xact_callback, NULL);
		wake_registered = true;
	}
	wake_pending = true;
}

/* ------------------------------------------------------------------------
 * The worker
 * ------------------------------------------------------------------------
 */
static IofficeWorkerSlot *my_slot = NULL;

static void
set_state(const char *state)
{
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	strlcpy(my_slot->state, state, sizeof(my_slot->state));
	LWLockRelease(shared->lock);
}

static void
note_error(const char *message)
{
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	strlcpy(my_slot->last_error, message, IOFFICE_ERROR_LEN);
	my_slot->last_error_at = GetCurrentTimestamp();
	LWLockRelease(shared->lock);
}

static void
worker_detach(int code, Datum arg)
{
	if (shared == NULL || my_slot == NULL)
		return;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	my_slot->latch = NULL;
	my_slot->pid = 0;
	strlcpy(my_slot->state, "stopped", sizeof(my_slot->state));
	LWLockRelease(shared->lock);
}

/*
 * Is the extension installed in this database?  The worker starts with the
 * server, possibly before CREATE EXTENSION, and must not touch tables that
 * are not there yet.
 */
static bool
extension_present(void)
{
	bool		present;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	present = OidIsValid(get_extension_oid("ioffice", true));
	CommitTransactionCommand();
	return present;
}


void
ioffice_worker_main(Datum arg)
{
	int			index = DatumGetInt32(arg);

	pqsignal(SIGHUP, SignalHandlerForConfigReload);

	/*
	 * SIGTERM ends the process with a FATAL error (exit code 1), so that the
	 * postmaster starts it again: a worker stopped by pg_terminate_backend()
	 * must not stop signing until the next server restart.  During a
	 * shutdown the postmaster restarts nothing.
	 */
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	my_slot = &shared->slots[index];
	BackgroundWorkerInitializeConnection(my_slot->dbname, NULL, 0);

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	my_slot->dboid = MyDatabaseId;
	my_slot->pid = MyProcPid;
	my_slot->latch = MyLatch;
	my_slot->started_at = GetCurrentTimestamp();
	strlcpy(my_slot->state, RecoveryInProgress() ? "standby" : "idle", sizeof(my_slot->state));
	LWLockRelease(shared->lock);
	before_shmem_exit(worker_detach, (Datum) 0);

	/* before anything could start a thread (libcurl's resolver) */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		elog(ERROR, "ioffice: could not initialise libcurl");

	/*
	 * An error escaping a batch ends the process; the postmaster starts it
	 * again after bgw_restart_time.  Remember it for worker_status first.
	 */
	for (;;)
	{
		int			signed_jobs = 0;
		int			sent = 0;
		long		wait_ms = ioffice_worker_naptime * 1000L;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		if (RecoveryInProgress())
			set_state("standby");
		else if (!extension_present())
			set_state("no extension");
		else
		{
			int64		failed = 0;
			int64		send_failed = 0;
			int64		dead = 0;
			long		due_ms = -1;
			MemoryContext oldcxt = CurrentMemoryContext;

			PG_TRY();
			{
				signed_jobs = ioffice_worker_sign_batch(ioffice_worker_batch, &failed);
				sent = ioffice_worker_deliver_batch(ioffice_outbox_batch, &send_failed, &dead,
													&due_ms);
			}
			PG_CATCH();
			{
				ErrorData  *edata;

				MemoryContextSwitchTo(oldcxt);
				edata = CopyErrorData();
				note_error(edata->message);
				PG_RE_THROW();
			}
			PG_END_TRY();

			LWLockAcquire(shared->lock, LW_EXCLUSIVE);
			if (signed_jobs > 0 || sent > 0)
			{
				my_slot->batches++;
				my_slot->jobs_done += signed_jobs - failed;
				my_slot->jobs_failed += failed;
				my_slot->deliveries += sent - send_failed;
				my_slot->deliveries_failed += send_failed;
				my_slot->last_batch_at = GetCurrentTimestamp();
			}
			strlcpy(my_slot->state, "idle", sizeof(my_slot->state));
			LWLockRelease(shared->lock);

			/* sleep no longer than until the next retry is due */
			if (due_ms >= 0 && due_ms < wait_ms)
				wait_ms = due_ms;
		}

		/* a full batch: there may be more waiting, go on at once */
		if (signed_jobs >= ioffice_worker_batch || sent >= ioffice_outbox_batch || wait_ms == 0)
			continue;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 wait_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/* note a job's failure for worker_status (called by the batches) */
void
ioffice_worker_note_error(const char *message)
{
	if (my_slot != NULL)
		note_error(message);
}

void
ioffice_worker_set_state(const char *state)
{
	if (my_slot != NULL)
		set_state(state);
}

/* _worker_slots(): the shared state, for the worker_status view */
PG_FUNCTION_INFO_V1(ioffice_worker_slots_sql);
Datum
ioffice_worker_slots_sql(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	if (shared == NULL)
		return (Datum) 0;
	LWLockAcquire(shared->lock, LW_SHARED);
	for (i = 0; i < shared->nslots; i++)
	{
		IofficeWorkerSlot *s = &shared->slots[i];
		Datum		v[12];
		bool		n[12];

		memset(n, false, sizeof(n));
		v[0] = CStringGetTextDatum(s->dbname);
		v[1] = Int32GetDatum(s->pid);
		n[1] = s->pid == 0;
		v[2] = CStringGetTextDatum(s->state);
		v[3] = TimestampTzGetDatum(s->started_at);
		n[3] = s->started_at == 0;
		v[4] = TimestampTzGetDatum(s->last_batch_at);
		n[4] = s->last_batch_at == 0;
		v[5] = Int64GetDatum(s->batches);
		v[6] = Int64GetDatum(s->jobs_done);
		v[7] = Int64GetDatum(s->jobs_failed);
		v[8] = Int64GetDatum(s->deliveries);
		v[9] = Int64GetDatum(s->deliveries_failed);
		v[10] = CStringGetTextDatum(s->last_error);
		n[10] = s->last_error[0] == '\0';
		v[11] = TimestampTzGetDatum(s->last_error_at);
		n[11] = s->last_error_at == 0;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
	}
	LWLockRelease(shared->lock);
	return (Datum) 0;
}
