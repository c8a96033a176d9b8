/*-------------------------------------------------------------------------
 * sign_jobs.c
 *	  One batch of the worker: take pending signature jobs, sign, record.
 *
 * Personal jobs are signed with the signer's current certificate, the
 * organisation's with the seal certificate of the document's agency.  Each
 * job runs in a subtransaction: whatever goes wrong with it (no
 * certificate, an expired one, a key file that is missing or readable by
 * others) marks that job failed with the reason, visible to the signer,
 * and the batch goes on.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "utils/memutils.h"
#include "executor/spi.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "ioffice.h"
#include "worker.h"


typedef struct SignJob
{
	int64		id;
	int64		document;
	int64		file;
	char	   *kind;
	int64		cert;			/* 0: none */
	char	   *pem;
	char	   *key_file;
	char	   *not_usable;		/* why the certificate cannot sign now, or NULL */
} SignJob;

/*
 * The batch: lock the next pending ids first (a partial index finds them),
 * then look up certificates for those jobs only.
 */
static IofficePlan jobs_plan = {
	NULL,
	"WITH next AS ("
	"  SELECT s.id FROM ioffice.signature s WHERE s.status = 'pending' "
	"   ORDER BY s.id LIMIT $1 FOR UPDATE SKIP LOCKED) "
	"SELECT s.id, s.document_id, s.file_id, s.kind, c.id, c.pem, c.key_file, "
	"       CASE WHEN c.id IS NULL THEN 'no ' || s.kind || ' certificate is registered for the signer' "
	"            WHEN c.not_after < now() THEN 'the certificate expired on ' || c.not_after "
	"            WHEN c.not_before > now() THEN 'the certificate is not valid before ' || c.not_before "
	"            WHEN c.revoked_at IS NOT NULL THEN 'the certificate was revoked on ' || c.revoked_at "
	"       END "
	"  FROM next JOIN ioffice.signature s ON s.id = next.id "
	"  JOIN ioffice.document d ON d.id = s.document_id "
	"  LEFT JOIN LATERAL ( "
	"       SELECT c.* FROM ioffice.certificate c "
	"        WHERE c.kind = s.kind "
	"          AND CASE s.kind WHEN 'personal' THEN c.person_id = s.signer_id "
	"                          ELSE c.agency_id = d.agency_id END "
	"        ORDER BY c.revoked_at IS NULL DESC, c.not_after DESC, c.id DESC LIMIT 1) c ON true "
	" ORDER BY s.id",
	1, {INT4OID}
};

static IofficePlan content_plan = {
	NULL, "SELECT content FROM ioffice.file WHERE id = $1", 1, {INT8OID}
};

static IofficePlan done_plan = {
	NULL,
	"UPDATE ioffice.signature SET status = 'done', cms = $3, certificate_id = $4, "
	"       signed_at = clock_timestamp(), reason = $2 WHERE id = $1",
	4, {INT8OID, TEXTOID, BYTEAOID, INT8OID}
};

static IofficePlan failed_plan = {
	NULL,
	"UPDATE ioffice.signature SET status = 'failed', reason = $2, certificate_id = $4 "
	" WHERE id = $1",
	4, {INT8OID, TEXTOID, BYTEAOID, INT8OID}
};

static int64 batch_failed = 0;

static void
record(SignJob *job, bool ok, const char *reason, bytea *cms)
{
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	JsonbBuild *b = ioffice_jsonb_begin();

	values[0] = Int64GetDatum(job->id);
	values[1] = reason ? CStringGetTextDatum(reason) : (Datum) 0;
	nulls[1] = reason ? ' ' : 'n';
	values[2] = cms ? PointerGetDatum(cms) : (Datum) 0;
	nulls[2] = cms ? ' ' : 'n';
	values[3] = Int64GetDatum(job->cert);
	nulls[3] = job->cert ? ' ' : 'n';
	if (ioffice_exec(ok ? &done_plan : &failed_plan, values, nulls, 0) != SPI_OK_UPDATE)
		elog(ERROR, "ioffice: could not record signature %lld", (long long) job->id);
	if (!ok)
		batch_failed++;

	ioffice_jsonb_add_int(b, "file", job->file);
	ioffice_jsonb_add_text(b, "kind", job->kind);
	if (job->cert)
		ioffice_jsonb_add_int(b, "certificate", job->cert);
	if (reason)
		ioffice_jsonb_add_text(b, "reason", reason);
	ioffice_audit_in_chain(ioffice_document_chain(job->document), 0, 0, "signature", job->id,
						   ok ? "signed" : "signing_failed", "pending", ok ? "done" : "failed",
						   ioffice_jsonb_end(b));
}

static void
sign_one(SignJob *job)
{
	Datum		values[1];
	bool		isnull;
	bytea	   *content;
	IofficeSignResult r;

	if (job->not_usable != NULL)
	{
		record(job, false, job->not_usable, NULL);
		return;
	}
	values[0] = Int64GetDatum(job->file);
	if (ioffice_exec(&content_plan, values, NULL, 1) != SPI_OK_SELECT || SPI_processed == 0)
	{
		record(job, false, "the file is gone", NULL);
		return;
	}
	content = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	r = ioffice_sign_detached(job->pem, job->key_file,
							  (const unsigned char *) VARDATA_ANY(content), VARSIZE_ANY_EXHDR(content));
	record(job, r.ok, r.reason, r.cms);
}

int
ioffice_worker_sign_batch(int limit, int64 *failed)
{
	SignJob    *jobs;
	uint64		n;
	uint64		i;
	Datum		arg[1];
	MemoryContext job_cxt;

	*failed = 0;
	batch_failed = 0;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "ioffice worker: looking for jobs");

	arg[0] = Int32GetDatum(limit);
	if (ioffice_exec(&jobs_plan, arg, NULL, 0) != SPI_OK_SELECT)
		elog(ERROR, "ioffice: could not read the signature queue");
	n = SPI_processed;
	jobs = MemoryContextAllocZero(TopTransactionContext, sizeof(SignJob) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
		bool		isnull;
		Datum		d;

		jobs[i].id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		jobs[i].document = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
		jobs[i].file = DatumGetInt64(SPI_getbinval(tup, desc, 3, &isnull));
		jobs[i].kind = SPI_getvalue(tup, desc, 4);
		d = SPI_getbinval(tup, desc, 5, &isnull);
		jobs[i].cert = isnull ? 0 : DatumGetInt64(d);
		jobs[i].pem = SPI_getvalue(tup, desc, 6);
		jobs[i].key_file = SPI_getvalue(tup, desc, 7);
		jobs[i].not_usable = SPI_getvalue(tup, desc, 8);
		MemoryContextSwitchTo(old);
	}
	if (n > 0)
	{
		ioffice_worker_set_state("signing");
		pgstat_report_activity(STATE_RUNNING, "ioffice worker: signing");
	}

	/* what one job allocates (its file's content, the CMS) goes with it */
	job_cxt = AllocSetContextCreate(TopTransactionContext, "ioffice signing job",
									ALLOCSET_DEFAULT_SIZES);
	ioffice_engine_enter();
	for (i = 0; i < n; i++)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(job_cxt);
		ResourceOwner oldowner = CurrentResourceOwner;

		BeginInternalSubTransaction(NULL);
		PG_TRY();
		{
			sign_one(&jobs[i]);
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
			ioffice_worker_note_error(edata->message);
			/* the abort restored the engine depth of the subtransaction's start */
			record(&jobs[i], false, edata->message, NULL);
			FreeErrorData(edata);
		}
		PG_END_TRY();
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(job_cxt);
	}
	*failed = batch_failed;
	ioffice_engine_leave();

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	return (int) n;
}
