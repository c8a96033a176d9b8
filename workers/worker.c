/*-------------------------------------------------------------------------
 * worker.c
 *	  The ioffice background workers: two per served database, doing the
 *	  slow outside work so that act() stays fast: the signer signs queued
 *	  signature jobs, the deliverer delivers the HTTP outbox.
 *
 * Loaded through shared_preload_libraries, the library registers a signer
 * and a deliverer for each database of ioffice.worker_databases.  They are
 * separate processes so that signing never waits for the network: an
 * endpoint that takes minutes to answer (or never does) holds the
 * deliverer's connections only.  Each is started again on its own after an
 * error; a crash of either restarts the server's processes, as for any
 * process attached to shared memory.
 *
 * A process sleeps on its latch; a transaction that queues work sets the
 * latches of its database's processes when it commits (not before: they
 * would find nothing), and they also wake every ioffice.worker_naptime
 * seconds.  The signer takes jobs in batches with FOR UPDATE SKIP LOCKED
 * (sign_jobs.c); the batch commits at once, so a crash loses no job and
 * records no signature twice.  On a hot standby both wait; they start
 * working when the server is promoted.  The signer also seals the audit
 * trail every ioffice.audit_seal_interval seconds, and signs and publishes
 * its checkpoints (audit_jobs.c).
 *
 * A database the processes cannot connect to (it does not exist, or takes
 * no connections) is tried again after 5 s, then twice as long each time,
 * at most every 5 minutes; its failure is logged once, not at each attempt,
 * and worker_status shows it as unreachable with the error.
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

#include "convert.h"
#include "ioffice.h"
#include "worker.h"

PGDLLEXPORT void ioffice_worker_main(Datum arg);

char	   *ioffice_worker_databases = NULL;
char	   *ioffice_keystore = NULL;
bool		ioffice_keystore_personal = false;
int			ioffice_worker_naptime = 10;
int			ioffice_worker_batch = 100;

/* waits before trying an unreachable database again: 5 s doubling, at most 5 min */
#define CONNECT_RETRY_FIRST_MS 5000L
#define CONNECT_RETRY_MAX_MS 300000L

static const char *const role_names[IOFFICE_ROLES] = {"signer", "deliverer"};

/*
 * A refused signing_request() or submit_signature() (token_signing.c): the
 * refusing error rolls back anything its transaction wrote, so the backend
 * leaves the refusal here and the database's signer writes it into the
 * document's audit chain (record_refusals()).
 */
#define IOFFICE_REFUSALS 64

typedef struct IofficeRefusal
{
	uint64		seq;			/* 0: a free entry */
	Oid			dboid;
	int64		signature;
	int64		document;
	int64		actor;
	TimestampTz at;
	char		sqlstate[6];
	char		what[32];
	char		message[200];
} IofficeRefusal;

typedef struct IofficeWorkerShared
{
	LWLock	   *lock;
	int			nslots;
	IofficeWorkerSlot slots[IOFFICE_MAX_WORKERS];
	uint64		refusal_seq;	/* the last entry's */
	uint64		refusals_lost;	/* no free entry: in the server log only */
	IofficeRefusal refusals[IOFFICE_REFUSALS];
} IofficeWorkerShared;

static IofficeWorkerShared *shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static bool wake_registered = false;
static bool wake_pending = false;

/*
 * The databases to serve, from the setting: a List of C strings, each name
 * once (a database served twice would have two deliverers sending the same
 * events), at most IOFFICE_MAX_WORKERS of them.
 */
static List *
served_databases(bool warn)
{
	char	   *copy = pstrdup(ioffice_worker_databases ? ioffice_worker_databases : "");
	List	   *names = NIL;
	List	   *served = NIL;
	ListCell   *lc;

	if (!SplitIdentifierString(copy, ',', &names))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ioffice.worker_databases is not a comma-separated list of database names")));
	foreach(lc, names)
	{
		char	   *name = lfirst(lc);
		ListCell   *seen;
		bool		again = false;

		foreach(seen, served)
			again = again || strcmp(lfirst(seen), name) == 0;
		if (again)
		{
			if (warn)
				ereport(WARNING,
						(errmsg("ioffice.worker_databases names \"%s\" twice; it is served once", name)));
			continue;
		}
		if (list_length(served) >= IOFFICE_MAX_WORKERS)
		{
			if (warn)
				ereport(WARNING,
						(errmsg("ioffice serves at most %d databases; \"%s\" and those after it are ignored",
								IOFFICE_MAX_WORKERS, name)));
			break;
		}
		served = lappend(served, name);
	}
	return served;
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
		List	   *names = served_databases(false);
		ListCell   *lc;

		memset(shared, 0, sizeof(IofficeWorkerShared));
		shared->lock = &(GetNamedLWLockTranche("ioffice"))->lock;
		foreach(lc, names)
		{
			IofficeWorkerSlot *slot = &shared->slots[shared->nslots++];

			strlcpy(slot->dbname, lfirst(lc), NAMEDATALEN);
			for (int r = 0; r < IOFFICE_ROLES; r++)
				strlcpy(slot->procs[r].state, "starting", sizeof(slot->procs[r].state));
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
							   "Databases the ioffice background workers serve (comma-separated).",
							   "Two processes per database (a signer and a deliverer), at most 8 databases.  Empty: no worker.",
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
	DefineCustomBoolVariable("ioffice.keystore_personal",
							 "Whether the worker signs for people with key files of the keystore (development only).",
							 "Off: a personal certificate's key file is ignored, and the person signs with their "
							 "own tool (token path) or a remote service.  The organisation's seal is not concerned.",
							 &ioffice_keystore_personal,
							 false,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);
	ioffice_hsm_init();
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
	ioffice_remote_signing_init();
	ioffice_convert_init();
	ioffice_retention_init();
	ioffice_timestamp_init();

	if (!process_shared_preload_libraries_in_progress)
		return;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = worker_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = worker_shmem_startup;

	names = served_databases(true);
	if (list_length(names) * IOFFICE_ROLES > max_worker_processes)
		ereport(WARNING,
				(errmsg("ioffice needs %d background workers for %d databases, max_worker_processes is %d",
						list_length(names) * IOFFICE_ROLES, list_length(names), max_worker_processes),
				 errhint("Raise max_worker_processes, or serve fewer databases; the workers that do not fit are not started.")));
	foreach(lc, names)
	{
		for (int role = 0; role < IOFFICE_ROLES; role++)
		{
			BackgroundWorker worker;

			memset(&worker, 0, sizeof(worker));
			worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
			/* start on a standby too: it waits there until promotion */
			worker.bgw_start_time = BgWorkerStart_ConsistentState;
			worker.bgw_restart_time = 5;
			strlcpy(worker.bgw_library_name, "ioffice", BGW_MAXLEN);
			strlcpy(worker.bgw_function_name, "ioffice_worker_main", BGW_MAXLEN);
			snprintf(worker.bgw_name, BGW_MAXLEN, "ioffice %s for %s",
					 role_names[role], (char *) lfirst(lc));
			snprintf(worker.bgw_type, BGW_MAXLEN, "ioffice worker (%s)", role_names[role]);
			worker.bgw_main_arg = Int32GetDatum(i * IOFFICE_ROLES + role);
			RegisterBackgroundWorker(&worker);
		}
		i++;
	}
}

/* ------------------------------------------------------------------------
 * Waking the workers when a transaction that queued work commits
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
	/* both processes: one has work, the other looks and finds none */
	LWLockAcquire(shared->lock, LW_SHARED);
	for (i = 0; i < shared->nslots; i++)
		if (shared->slots[i].dboid == MyDatabaseId)
			for (int r = 0; r < IOFFICE_ROLES; r++)
				if (shared->slots[i].procs[r].latch != NULL)
					SetLatch(shared->slots[i].procs[r].latch);
	LWLockRelease(shared->lock);
}

/*
 * A refusal of the token path, for the audit chain of DOCUMENT: queued for
 * the signer of this database, which is woken now (the refusing
 * transaction never commits).  False when the queue is full or no signer
 * serves this database: the refusal is then in the server log only.
 */
bool
ioffice_worker_note_refusal(int64 signature, int64 document, int64 actor, const char *what,
							const char *sqlstate, const char *message)
{
	IofficeRefusal *free_entry = NULL;
	Latch	   *latch = NULL;

	if (shared == NULL)
		return false;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < shared->nslots; i++)
		if (shared->slots[i].dboid == MyDatabaseId)
			latch = shared->slots[i].procs[IOFFICE_SIGNER].latch;
	for (int i = 0; latch != NULL && i < IOFFICE_REFUSALS && free_entry == NULL; i++)
		if (shared->refusals[i].seq == 0)
			free_entry = &shared->refusals[i];
	if (free_entry != NULL)
	{
		free_entry->seq = ++shared->refusal_seq;
		free_entry->dboid = MyDatabaseId;
		free_entry->signature = signature;
		free_entry->document = document;
		free_entry->actor = actor;
		free_entry->at = GetCurrentTimestamp();
		strlcpy(free_entry->sqlstate, sqlstate, sizeof(free_entry->sqlstate));
		strlcpy(free_entry->what, what, sizeof(free_entry->what));
		strlcpy(free_entry->message, message, sizeof(free_entry->message));
	}
	else if (latch != NULL)
		shared->refusals_lost++;
	LWLockRelease(shared->lock);
	if (latch != NULL)
		SetLatch(latch);
	return free_entry != NULL;
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
 * A worker process
 * ------------------------------------------------------------------------
 */
static IofficeWorkerSlot *my_slot = NULL;
static IofficeWorkerProc *my_proc = NULL;
static IofficeRole my_role;
static bool connected = false;
static bool connecting = false;
static emit_log_hook_type prev_emit_log_hook = NULL;

static void
set_state(const char *state)
{
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	strlcpy(my_proc->state, state, sizeof(my_proc->state));
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
	if (shared == NULL || my_proc == NULL)
		return;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	my_proc->latch = NULL;
	my_proc->pid = 0;
	/* the signer's converter goes with it (converter.c) */
	if (my_role == IOFFICE_SIGNER)
		my_slot->converter_pid = my_slot->soffice_pid = 0;
	/* a process that could not connect leaves "unreachable" */
	if (connected)
		strlcpy(my_proc->state, "stopped", sizeof(my_proc->state));
	LWLockRelease(shared->lock);
}

/* how long to wait after the n-th failure in a row to connect */
static long
connect_retry_ms(int failures)
{
	long		ms = CONNECT_RETRY_FIRST_MS;

	for (int i = 1; i < failures && ms < CONNECT_RETRY_MAX_MS; i++)
		ms *= 2;
	return Min(ms, CONNECT_RETRY_MAX_MS);
}

/*
 * emit_log_hook while connecting: the error that ends the connection
 * attempt (a FATAL: the database does not exist, takes no connections...)
 * is recorded in the database's slot with the time of the next attempt.
 * It reaches the log once, with a hint; the same error again (at the next
 * attempts, or from the database's other process) stays out of the log.
 * The postmaster still logs each exit, without the database's name.
 */
static void
connect_failure_hook(ErrorData *edata)
{
	/* (a shutdown or pg_terminate_backend() meanwhile says nothing of the database) */
	if (connecting && edata->elevel >= ERROR && shared != NULL && my_slot != NULL &&
		edata->sqlerrcode != ERRCODE_ADMIN_SHUTDOWN)
	{
		const char *message = edata->message ? edata->message : "unknown error";
		TimestampTz now = GetCurrentTimestamp();
		bool		repeated;
		long		retry_ms;

		connecting = false;
		LWLockAcquire(shared->lock, LW_EXCLUSIVE);
		repeated = strncmp(my_slot->connect_error, message, IOFFICE_ERROR_LEN - 1) == 0;
		/* the other process's attempt at the same time is not another failure */
		if (now >= my_slot->connect_retry_at)
		{
			my_slot->connect_failures++;
			my_slot->connect_retry_at =
				TimestampTzPlusMilliseconds(now, connect_retry_ms(my_slot->connect_failures));
		}
		retry_ms = connect_retry_ms(my_slot->connect_failures);
		strlcpy(my_slot->connect_error, message, IOFFICE_ERROR_LEN);
		strlcpy(my_slot->last_error, message, IOFFICE_ERROR_LEN);
		my_slot->last_error_at = now;
		strlcpy(my_proc->state, "unreachable", sizeof(my_proc->state));
		LWLockRelease(shared->lock);

		if (repeated)
			edata->output_to_server = false;
		else if (edata->hint == NULL)
		{
			MemoryContext old = MemoryContextSwitchTo(ErrorContext);

			edata->hint = psprintf("ioffice.worker_databases names database \"%s\": its ioffice workers try again in %ld s, waiting twice as long after each failure (at most %ld s); this error is not logged again.",
								   my_slot->dbname, retry_ms / 1000, CONNECT_RETRY_MAX_MS / 1000);
			MemoryContextSwitchTo(old);
		}
	}
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

/*
 * Connect to the slot's database, once the wait that its earlier failures
 * earned is over, or at a reload of the configuration.  Meanwhile the
 * process shows as "unreachable".  A failure
 * ends the process (FATAL); the postmaster starts it again after
 * bgw_restart_time, and the new process waits the rest.
 */
static void
connect_database(void)
{
	int			failures;

	for (;;)
	{
		TimestampTz retry_at;
		long		ms;

		LWLockAcquire(shared->lock, LW_SHARED);
		retry_at = my_slot->connect_retry_at;
		LWLockRelease(shared->lock);
		ms = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), retry_at);
		if (ms <= 0)
			break;
		set_state("unreachable");
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		/* a reload (pg_reload_conf()) tries at once: the DBA may have fixed it */
		if (ioffice_worker_reload())
			break;
	}

	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = connect_failure_hook;
	connecting = true;
	BackgroundWorkerInitializeConnection(my_slot->dbname, NULL, 0);
	connecting = false;
	emit_log_hook = prev_emit_log_hook;
	connected = true;

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	failures = my_slot->connect_failures;
	my_slot->dboid = MyDatabaseId;
	my_slot->connect_failures = 0;
	my_slot->connect_retry_at = 0;
	my_slot->connect_error[0] = '\0';
	my_proc->latch = MyLatch;
	strlcpy(my_proc->state, RecoveryInProgress() ? "standby" : "idle", sizeof(my_proc->state));
	LWLockRelease(shared->lock);
	if (failures > 0)
		ereport(LOG,
				(errmsg("ioffice %s connected to database \"%s\" after %d failed attempts",
						role_names[my_role], my_slot->dbname, failures)));
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

/*
 * the signer's batch of jobs, then a step of a conversion: an error escaping
 * them ends the process; the postmaster starts it again after
 * bgw_restart_time.  Remember it for worker_status first.
 */
static pg_noinline int
sign_and_convert(int64 *failed, bool *converted)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	int			signed_jobs = 0;

	PG_TRY();
	{
		signed_jobs = ioffice_worker_sign_batch(ioffice_worker_batch, failed);
		*converted = ioffice_worker_convert_step();
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
	return signed_jobs;
}

/*
 * the signer's step of the audit trail (audit_jobs.c): a checkpoint when
 * one is due, the signatures of those waiting; then the home page's
 * counters folded (count_jobs.c); the archive's warnings of case files
 * (archive_jobs.c); the reminders of tasks due (reminder_jobs.c); then a
 * file's text extracted for search (text_jobs.c) and a case file made one
 * PDF (case_file_pdf_jobs.c); what is kept no longer removed
 * (retention_jobs.c).  An error escaping them
 * ends the process like a batch's, remembered for worker_status first
 */
static pg_noinline bool
audit_step(void)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	bool		more = false;

	PG_TRY();
	{
		more = ioffice_worker_audit_step();
		ioffice_worker_fold_counts();
		ioffice_worker_archive_warnings();
		ioffice_worker_reminders();
		more |= ioffice_worker_extract_step();
		more |= ioffice_worker_case_file_pdf_step();
		more |= ioffice_worker_retention_step();
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
	return more;
}

static void
forget_refusals(IofficeRefusal *mine, int n)
{
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < IOFFICE_REFUSALS; i++)
		for (int j = 0; j < n; j++)
			if (shared->refusals[i].seq == mine[j].seq)
				shared->refusals[i].seq = 0;
	LWLockRelease(shared->lock);
}

static void
record_refusals_in_audit(IofficeRefusal *mine, int n)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	ioffice_engine_enter();
	for (int i = 0; i < n; i++)
	{
		JsonbBuild *b = ioffice_jsonb_begin();

		ioffice_jsonb_add_text(b, "call", mine[i].what);
		ioffice_jsonb_add_text(b, "sqlstate", mine[i].sqlstate);
		ioffice_jsonb_add_text(b, "reason", mine[i].message);
		ioffice_jsonb_add_text(b, "refused_at", timestamptz_to_str(mine[i].at));
		ioffice_audit_in_chain(ioffice_document_chain(mine[i].document), mine[i].actor, 0,
							   "signature", mine[i].signature, "signing_refused", "pending",
							   "pending", ioffice_jsonb_end(b));
	}
	ioffice_engine_leave();
	SPI_finish();
	PopActiveSnapshot();
}

/*
 * The refusals queued for this database (ioffice_worker_note_refusal()),
 * each an audit record "signing_refused" in its document's chain, by the
 * person refused, in one transaction; the entries are freed only after it
 * committed (a crash before leaves them for the next look).
 */
static void
record_refusals(void)
{
	IofficeRefusal mine[IOFFICE_REFUSALS];
	int			n = 0;

	LWLockAcquire(shared->lock, LW_SHARED);
	for (int i = 0; i < IOFFICE_REFUSALS; i++)
		if (shared->refusals[i].seq != 0 && shared->refusals[i].dboid == MyDatabaseId)
			mine[n++] = shared->refusals[i];
	LWLockRelease(shared->lock);
	if (n == 0)
		return;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PG_TRY();
	{
		record_refusals_in_audit(mine, n);
	}
	PG_CATCH();
	{
		/* not again and again: they stay in the server log */
		forget_refusals(mine, n);
		PG_RE_THROW();
	}
	PG_END_TRY();
	CommitTransactionCommand();
	forget_refusals(mine, n);
}

/*
 * the signer: a batch of jobs whenever woken, and every naptime; between
 * batches, a step of the conversion of Word files to PDF, whose answer it
 * waits for on the converter's pipe as well as on its latch (convert_jobs.c)
 */
static void signer_loop(void) pg_attribute_noreturn();
static void signer_sleep(pgsocket converter, long timeout);

static void
signer_loop(void)
{
	for (;;)
	{
		int			signed_jobs = 0;
		bool		converted = false;
		bool		audit_more = false;
		bool		remote_more = false;
		bool		axis_more = false;
		bool		standby;
		int64		failed = 0;
		pgsocket	converter;
		long		timeout;
		long		polled;

		CHECK_FOR_INTERRUPTS();
		(void) ioffice_worker_reload();

		/*
		 * an HSM key must be loaded again (the module or PIN changed at the
		 * reload, or signing with it failed in the last batch), which takes
		 * a new process (hsm_key.c): end between batches, before signing
		 * anything more; the postmaster starts the signer again after
		 * bgw_restart_time
		 */
		if (ioffice_hsm_restart_wanted())
		{
			elog(LOG, "ioffice worker: the PKCS#11 module must be opened again: the signer restarts");
			proc_exit(1);
		}

		standby = RecoveryInProgress();
		if (standby || !extension_present())
		{
			/*
			 * nothing is served here yet: sleep the naptime.  The steps'
			 * waits below cannot be asked, since their steps have not run
			 * (the remote signing and axis steps say "at once" until their
			 * first look), and the signer spun on a core in every standby
			 * and every database without the extension.
			 */
			set_state(standby ? "standby" : "no extension");
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 ioffice_worker_naptime * 1000L, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			continue;
		}

		signed_jobs = sign_and_convert(&failed, &converted);
		if (signed_jobs > 0)
			ioffice_worker_count(signed_jobs - failed, failed);
		record_refusals();
		audit_more = audit_step();
		remote_more = ioffice_worker_remote_step(signed_jobs >= ioffice_worker_batch);
		axis_more = ioffice_worker_axis_step();
		set_state(ioffice_worker_convert_socket() != PGINVALID_SOCKET ? "converting" :
				  ioffice_worker_extract_state() ? ioffice_worker_extract_state() : "idle");

		/*
		 * a full batch: there may be more waiting, go on at once; likewise
		 * after a conversion (its PDF waits to be signed)
		 */
		if (signed_jobs >= ioffice_worker_batch || converted || audit_more || remote_more ||
			axis_more)
			continue;
		converter = ioffice_worker_convert_socket();
		timeout = ioffice_worker_convert_wait_ms(ioffice_worker_audit_wait_ms(ioffice_worker_naptime * 1000L));
		/*
		 * a file's text being extracted: its program's pipes are watched by
		 * signer_sleep(); the other sleeps look at them every 10 ms
		 */
		polled = ioffice_worker_extract_wait_ms(timeout);

		/*
		 * calls to remote signing services in flight: the signer sleeps on
		 * their sockets and its latch, and starts the next calls as they
		 * fall due (remote_signing.c); but for a conversion's pipe, which
		 * is then looked at every 50 ms
		 */
		if (ioffice_worker_remote_flying() && converter == PGINVALID_SOCKET)
		{
			/* the axis's calls (edxml_exchange.c) are collected every 50 ms */
			ioffice_worker_remote_wait(ioffice_worker_axis_flying() ? Min(polled, 50L) : polled);
			continue;
		}
		timeout = ioffice_worker_axis_wait_ms(timeout);
		if (ioffice_worker_axis_flying() && converter == PGINVALID_SOCKET)
		{
			/* the axis's sockets, up to 100 ms, then the latch and the steps */
			ioffice_worker_axis_wait(Max(Min(timeout, polled), 1L));
			continue;
		}
		timeout = ioffice_worker_remote_wait_ms(timeout);
		signer_sleep(converter, ioffice_worker_remote_flying() || ioffice_worker_axis_flying() ?
					 Min(timeout, 50L) : timeout);
	}
}

/*
 * The signer's sleep, at most timeout ms: on its latch, the converter's
 * socket and the pipes of a program reading a file's text beside the loop
 * (text_jobs.c), so that it turns when the program wants more of the file
 * or has text for it.  Polling them every 10 ms instead cost the signer a
 * tenth of a core all the while a scan was read by OCR.
 */
static void
signer_sleep(pgsocket converter, long timeout)
{
	WaitEventSet *set;
	WaitEvent	event;
	int			in_fd;
	int			out_fd;

	timeout = ioffice_worker_extract_watch(timeout, &in_fd, &out_fd);
	if (in_fd < 0 && out_fd < 0)
	{
		(void) WaitLatchOrSocket(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH |
								 (converter != PGINVALID_SOCKET ? WL_SOCKET_READABLE : 0),
								 converter, timeout, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		return;
	}
	set = CreateWaitEventSet(CurrentMemoryContext, 5);
	AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	if (converter != PGINVALID_SOCKET)
		AddWaitEventToSet(set, WL_SOCKET_READABLE, converter, NULL, NULL);
	if (in_fd >= 0)
		AddWaitEventToSet(set, WL_SOCKET_WRITEABLE, in_fd, NULL, NULL);
	if (out_fd >= 0)
		AddWaitEventToSet(set, WL_SOCKET_READABLE, out_fd, NULL, NULL);
	(void) WaitEventSetWait(set, timeout, &event, 1, PG_WAIT_EXTENSION);
	FreeWaitEventSet(set);
	ResetLatch(MyLatch);
}

void
ioffice_worker_main(Datum arg)
{
	int			index = DatumGetInt32(arg);

	pqsignal(SIGHUP, SignalHandlerForConfigReload);

	/*
	 * SIGTERM ends the process with a FATAL error (exit code 1), so that the
	 * postmaster starts it again: a worker stopped by pg_terminate_backend()
	 * must not stop working until the next server restart.  During a
	 * shutdown the postmaster restarts nothing.
	 */
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	my_role = (IofficeRole) (index % IOFFICE_ROLES);
	my_slot = &shared->slots[index / IOFFICE_ROLES];
	my_proc = &my_slot->procs[my_role];

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	my_proc->pid = MyProcPid;
	my_proc->started_at = GetCurrentTimestamp();
	if (my_slot->connect_failures == 0)
		strlcpy(my_proc->state, "starting", sizeof(my_proc->state));
	LWLockRelease(shared->lock);
	before_shmem_exit(worker_detach, (Datum) 0);

	connect_database();

	/*
	 * before anything could start a thread (libcurl's resolver): both
	 * processes speak HTTP, the signer to remote signing services
	 */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		elog(ERROR, "ioffice: could not initialise libcurl");
	if (my_role == IOFFICE_SIGNER)
		signer_loop();
	ioffice_deliverer_loop();
}

/* a reload of the configuration, when one was asked for: true if done */
bool
ioffice_worker_reload(void)
{
	if (!ConfigReloadPending)
		return false;
	ConfigReloadPending = false;
	ProcessConfigFile(PGC_SIGHUP);
	/* the HSM's module or PIN may have changed: its keys are loaded again */
	ioffice_signer_reloaded();
	return true;
}

/* note an error for worker_status (called by the batches) */
void
ioffice_worker_note_error(const char *message)
{
	if (my_slot != NULL)
		note_error(message);
}

void
ioffice_worker_set_state(const char *state)
{
	if (my_proc != NULL)
		set_state(state);
}

/* a batch's outcomes: jobs signed, or events delivered, and failures */
void
ioffice_worker_count(int64 done, int64 failed)
{
	if (my_slot == NULL)
		return;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	my_slot->batches++;
	if (my_role == IOFFICE_SIGNER)
	{
		my_slot->jobs_done += done;
		my_slot->jobs_failed += failed;
	}
	else
	{
		my_slot->deliveries += done;
		my_slot->deliveries_failed += failed;
	}
	my_slot->last_batch_at = GetCurrentTimestamp();
	LWLockRelease(shared->lock);
}

/* the converter's processes, for worker_status (0: not running) */
void
ioffice_worker_note_converter(pid_t helper, pid_t soffice)
{
	if (my_slot == NULL)
		return;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	my_slot->converter_pid = helper;
	my_slot->soffice_pid = soffice;
	LWLockRelease(shared->lock);
}

/* a conversion's outcome: a PDF made, or the signatures it failed */
void
ioffice_worker_note_conversion(bool ok, int jobs_failed)
{
	if (my_slot == NULL)
		return;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	if (ok)
		my_slot->conversions_done++;
	my_slot->conversions_failed += jobs_failed;
	my_slot->jobs_failed += jobs_failed;
	LWLockRelease(shared->lock);
}

/*
 * _converter_slots(): the converter of each database's signer, for the
 * worker_status view: the helper's and its LibreOffice's pids, the files
 * converted and the signatures that failed in conversion.
 */
PG_FUNCTION_INFO_V1(ioffice_converter_slots_sql);
Datum
ioffice_converter_slots_sql(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	if (shared == NULL)
		return (Datum) 0;
	LWLockAcquire(shared->lock, LW_SHARED);
	for (int i = 0; i < shared->nslots; i++)
	{
		IofficeWorkerSlot *s = &shared->slots[i];
		Datum		v[5];
		bool		n[5] = {false, false, false, false, false};

		v[0] = CStringGetTextDatum(s->dbname);
		v[1] = Int32GetDatum(s->converter_pid);
		n[1] = s->converter_pid == 0;
		v[2] = Int32GetDatum(s->soffice_pid);
		n[2] = s->soffice_pid == 0;
		v[3] = Int64GetDatum(s->conversions_done);
		v[4] = Int64GetDatum(s->conversions_failed);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
	}
	LWLockRelease(shared->lock);
	return (Datum) 0;
}

/*
 * _worker_slots(): the shared state, for the worker_status view, one row
 * per database.  pid and started_at are the signer's; state is the
 * signer's unless it is idle, then the deliverer's (so "delivering" shows);
 * each process's own are in the columns after.
 */
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
		IofficeWorkerProc *signer = &s->procs[IOFFICE_SIGNER];
		IofficeWorkerProc *deliverer = &s->procs[IOFFICE_DELIVERER];
		Datum		v[19];
		bool		n[19];

		memset(n, false, sizeof(n));
		v[0] = CStringGetTextDatum(s->dbname);
		v[1] = Int32GetDatum(signer->pid);
		n[1] = signer->pid == 0;
		v[2] = CStringGetTextDatum(strcmp(signer->state, "idle") == 0 ? deliverer->state : signer->state);
		v[3] = TimestampTzGetDatum(signer->started_at);
		n[3] = signer->started_at == 0;
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
		v[12] = Int32GetDatum(signer->pid);
		n[12] = signer->pid == 0;
		v[13] = CStringGetTextDatum(signer->state);
		v[14] = Int32GetDatum(deliverer->pid);
		n[14] = deliverer->pid == 0;
		v[15] = CStringGetTextDatum(deliverer->state);
		v[16] = TimestampTzGetDatum(deliverer->started_at);
		n[16] = deliverer->started_at == 0;
		v[17] = Int32GetDatum(s->connect_failures);
		v[18] = TimestampTzGetDatum(s->connect_retry_at);
		n[18] = s->connect_failures == 0;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
	}
	LWLockRelease(shared->lock);
	return (Datum) 0;
}
