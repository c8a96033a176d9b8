/*-------------------------------------------------------------------------
 * sign_jobs.c
 *	  One batch of the worker: take pending signature jobs, sign, record.
 *
 * Personal jobs are signed with the signer's current certificate, the
 * organisation's with the seal certificate of the document's agency.  A job
 * that cannot be signed (no certificate, an expired one, a key file that is
 * missing or readable by others) is marked failed with the reason, visible
 * to the signer, and the batch goes on.
 *
 * The signer works from the SHA-256 the file row holds (computed by
 * attach()): the content is not read.  A batch is signed and recorded in
 * one subtransaction with one UPDATE for all its jobs and its audit records
 * written per document chain; only when that raises an error is the batch
 * done again job by job, each in a subtransaction of its own, so that one
 * bad job never blocks the others.  Everything is in the batch's
 * transaction: a crash loses nothing and signs nothing twice.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/array.h"
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
	bytea	   *sha256;			/* of the file's content; NULL: the file is gone */
	/* the outcome */
	bool		ok;
	char	   *reason;
	bytea	   *cms;
} SignJob;

/*
 * The batch: lock the next pending ids first (a partial index finds them),
 * then look up certificates for those jobs only.  A signer's certificate
 * that can sign now comes first, so that a renewal registered before its
 * validity starts, or one without a key file, does not shadow the current
 * one; when none can, the latest one says why.
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
	"            WHEN c.key_file IS NULL THEN 'certificate ' || c.id || ' has no key file registered' "
	"       END, f.sha256 "
	"  FROM next JOIN ioffice.signature s ON s.id = next.id "
	"  JOIN ioffice.document d ON d.id = s.document_id "
	"  LEFT JOIN ioffice.file f ON f.id = s.file_id "
	"  LEFT JOIN LATERAL ( "
	"       SELECT c.* FROM ioffice.certificate c "
	"        WHERE c.kind = s.kind "
	"          AND CASE s.kind WHEN 'personal' THEN c.person_id = s.signer_id "
	"                          ELSE c.agency_id = d.agency_id END "
	"        ORDER BY (c.revoked_at IS NULL AND c.key_file IS NOT NULL "
	"                  AND now() BETWEEN c.not_before AND c.not_after) DESC, "
	"                 c.revoked_at IS NULL DESC, c.not_after DESC, c.id DESC LIMIT 1) c ON true "
	" ORDER BY s.id",
	1, {INT4OID}
};

/* a batch's outcomes in one statement */
static IofficePlan batch_plan = {
	NULL,
	"UPDATE ioffice.signature s "
	"   SET status = CASE WHEN u.ok THEN 'done' ELSE 'failed' END, cms = u.cms, "
	"       certificate_id = u.cert, reason = u.reason, "
	"       signed_at = CASE WHEN u.ok THEN clock_timestamp() ELSE s.signed_at END "
	"  FROM unnest($1::bigint[], $2::bool[], $3::text[], $4::bytea[], $5::bigint[]) "
	"       AS u(id, ok, reason, cms, cert) "
	" WHERE s.id = u.id AND s.status = 'pending'",
	5, {INT8ARRAYOID, BOOLARRAYOID, TEXTARRAYOID, BYTEAARRAYOID, INT8ARRAYOID}
};

/* the head of a chain, as audit.c reads it */
static IofficePlan chain_head_plan = {
	NULL,
	"SELECT seq, hash FROM ioffice.audit WHERE chain = $1 ORDER BY seq DESC LIMIT 1",
	1, {TEXTOID}
};

/* the rest of a batch's audit records, chained by sign_jobs.c */
static IofficePlan audit_batch_plan = {
	NULL,
	"INSERT INTO ioffice.audit (at, actor_id, on_behalf_of, db_role, entity, entity_id, action, "
	"       state_before, state_after, detail, chain, seq, prev_hash, hash) "
	"SELECT $1, NULL, NULL, $2, 'signature', u.id, u.action, 'pending', u.after, u.detail, "
	"       u.chain, u.seq, u.prev, u.hash "
	"  FROM unnest($3::bigint[], $4::text[], $5::text[], $6::jsonb[], $7::text[], $8::bigint[], "
	"              $9::bytea[], $10::bytea[]) AS u(id, action, after, detail, chain, seq, prev, hash)",
	10, {TIMESTAMPTZOID, TEXTOID, INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, JSONBARRAYOID,
	TEXTARRAYOID, INT8ARRAYOID, BYTEAARRAYOID, BYTEAARRAYOID}
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

/* the audit record's detail of a job's outcome */
static Jsonb *
job_detail(SignJob *job)
{
	JsonbBuild *b = ioffice_jsonb_begin();

	ioffice_jsonb_add_int(b, "file", job->file);
	ioffice_jsonb_add_text(b, "kind", job->kind);
	if (job->cert)
		ioffice_jsonb_add_int(b, "certificate", job->cert);
	if (job->reason)
		ioffice_jsonb_add_text(b, "reason", job->reason);
	return ioffice_jsonb_end(b);
}

static void
audit_one(SignJob *job)
{
	ioffice_audit_in_chain(ioffice_document_chain(job->document), 0, 0, "signature", job->id,
						   job->ok ? "signed" : "signing_failed", "pending",
						   job->ok ? "done" : "failed", job_detail(job));
}

/* One job's outcome, recorded on its own (the job-by-job way). */
static void
record(SignJob *job)
{
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};

	values[0] = Int64GetDatum(job->id);
	values[1] = job->reason ? CStringGetTextDatum(job->reason) : (Datum) 0;
	nulls[1] = job->reason ? ' ' : 'n';
	values[2] = job->cms ? PointerGetDatum(job->cms) : (Datum) 0;
	nulls[2] = job->cms ? ' ' : 'n';
	values[3] = Int64GetDatum(job->cert);
	nulls[3] = job->cert ? ' ' : 'n';
	if (ioffice_exec(job->ok ? &done_plan : &failed_plan, values, nulls, 0) != SPI_OK_UPDATE ||
		SPI_processed != 1)
		elog(ERROR, "ioffice: could not record signature %lld", (long long) job->id);
	audit_one(job);
}

/* Sign one job: sets its outcome.  Touches no table. */
static void
sign_job(SignJob *job)
{
	IofficeSignResult r;

	job->ok = false;
	job->cms = NULL;
	job->reason = NULL;
	if (job->not_usable != NULL)
	{
		job->reason = job->not_usable;
		return;
	}
	if (job->sha256 == NULL)
	{
		job->reason = "the file is gone";
		return;
	}
	if (VARSIZE_ANY_EXHDR(job->sha256) != 32)
	{
		job->reason = "the file's SHA-256 is not 32 bytes";
		return;
	}
	r = ioffice_sign_detached_digest(job->pem, job->key_file,
									 (const unsigned char *) VARDATA_ANY(job->sha256));
	job->ok = r.ok;
	job->reason = r.reason;
	job->cms = r.cms;
}

static ArrayType *
int8_array(Datum *v, int n)
{
	return construct_array(v, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
}

static ArrayType *
varlena_array(Datum *v, bool *isnull, int n, Oid type)
{
	int			dims[1] = {n};
	int			lbs[1] = {1};

	return construct_md_array(v, isnull, 1, dims, lbs, type, -1, false, TYPALIGN_INT);
}

/*
 * Every outcome of the batch with one UPDATE; the audit records, one per
 * job in its document's chain, with one INSERT after the first record of
 * each chain (written by audit.c, which locks the chain and reads its
 * head): the batch holds the chain's lock from then on, so the records that
 * follow are chained here, from the head, in job order.
 */
static void
record_batch(SignJob *jobs, int n)
{
	Datum	   *ids = palloc(sizeof(Datum) * n);
	Datum	   *oks = palloc(sizeof(Datum) * n);
	Datum	   *reasons = palloc(sizeof(Datum) * n);
	bool	   *reason_nulls = palloc(sizeof(bool) * n);
	Datum	   *cmss = palloc(sizeof(Datum) * n);
	bool	   *cms_nulls = palloc(sizeof(bool) * n);
	Datum	   *certs = palloc(sizeof(Datum) * n);
	bool	   *cert_nulls = palloc(sizeof(bool) * n);
	Datum		values[10];
	bool	   *audited = palloc0(sizeof(bool) * n);
	int			rest = 0;
	/* the records chained here */
	Datum	   *a_id = palloc(sizeof(Datum) * n);
	Datum	   *a_action = palloc(sizeof(Datum) * n);
	Datum	   *a_after = palloc(sizeof(Datum) * n);
	Datum	   *a_detail = palloc(sizeof(Datum) * n);
	Datum	   *a_chain = palloc(sizeof(Datum) * n);
	Datum	   *a_seq = palloc(sizeof(Datum) * n);
	Datum	   *a_prev = palloc(sizeof(Datum) * n);
	bool	   *a_prev_null = palloc(sizeof(bool) * n);
	Datum	   *a_hash = palloc(sizeof(Datum) * n);
	TimestampTz at = GetCurrentTransactionStartTimestamp();
	char	   *db_role = GetUserNameFromId(GetSessionUserId(), false);

	for (int i = 0; i < n; i++)
	{
		SignJob    *job = &jobs[i];

		ids[i] = Int64GetDatum(job->id);
		oks[i] = BoolGetDatum(job->ok);
		reason_nulls[i] = job->reason == NULL;
		reasons[i] = job->reason ? CStringGetTextDatum(job->reason) : (Datum) 0;
		cms_nulls[i] = job->cms == NULL;
		cmss[i] = PointerGetDatum(job->cms);
		cert_nulls[i] = job->cert == 0;
		certs[i] = Int64GetDatum(job->cert);
		if (!job->ok)
			batch_failed++;
	}
	values[0] = PointerGetDatum(int8_array(ids, n));
	values[1] = PointerGetDatum(construct_array(oks, n, BOOLOID, 1, true, TYPALIGN_CHAR));
	values[2] = PointerGetDatum(varlena_array(reasons, reason_nulls, n, TEXTOID));
	values[3] = PointerGetDatum(varlena_array(cmss, cms_nulls, n, BYTEAOID));
	values[4] = PointerGetDatum(construct_md_array(certs, cert_nulls, 1, (int[]) {n}, (int[]) {1},
												   INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	if (ioffice_exec(&batch_plan, values, NULL, 0) != SPI_OK_UPDATE || SPI_processed != (uint64) n)
		elog(ERROR, "ioffice: could not record the signatures of a batch (%llu of %d)",
			 (unsigned long long) SPI_processed, n);

	if (!ioffice_audit_chaining)
	{
		/* unchained records: a measuring mode only, audit.c writes them one by one */
		for (int i = 0; i < n; i++)
			audit_one(&jobs[i]);
		return;
	}

	for (int i = 0; i < n; i++)
	{
		char	   *chain;
		int64		seq = 0;
		bytea	   *prev = NULL;
		Datum		head_arg[1];
		bool		isnull;

		if (audited[i])
			continue;
		/* the document's first record: audit.c locks the chain, reads its head */
		chain = ioffice_document_chain(jobs[i].document);
		audit_one(&jobs[i]);
		audited[i] = true;
		for (int j = i + 1; j < n; j++)
		{
			SignJob    *job = &jobs[j];
			Jsonb	   *detail;
			uint8		hash[32];
			bytea	   *h;

			if (audited[j] || job->document != jobs[i].document)
				continue;
			if (prev == NULL)
			{
				/* the head, as audit.c just wrote it */
				head_arg[0] = CStringGetTextDatum(chain);
				if (ioffice_exec(&chain_head_plan, head_arg, NULL, 1) != SPI_OK_SELECT ||
					SPI_processed != 1 ||
					!ioffice_get_int64(0, 1, &seq))
					elog(ERROR, "ioffice: the audit chain %s has no head", chain);
				prev = DatumGetByteaPCopy(SPI_getbinval(SPI_tuptable->vals[0],
														SPI_tuptable->tupdesc, 2, &isnull));
				if (isnull)
					elog(ERROR, "ioffice: the head of audit chain %s has no hash", chain);
			}
			seq++;
			detail = job_detail(job);
			ioffice_audit_hash(chain, seq, prev, at, false, 0, false, 0, db_role, "signature",
							   true, job->id, job->ok ? "signed" : "signing_failed", "pending",
							   job->ok ? "done" : "failed",
							   JsonbToCString(NULL, &detail->root, VARSIZE(detail)), hash);
			h = palloc(VARHDRSZ + sizeof(hash));
			SET_VARSIZE(h, VARHDRSZ + sizeof(hash));
			memcpy(VARDATA(h), hash, sizeof(hash));

			a_id[rest] = Int64GetDatum(job->id);
			a_action[rest] = CStringGetTextDatum(job->ok ? "signed" : "signing_failed");
			a_after[rest] = CStringGetTextDatum(job->ok ? "done" : "failed");
			a_detail[rest] = JsonbPGetDatum(detail);
			a_chain[rest] = CStringGetTextDatum(chain);
			a_seq[rest] = Int64GetDatum(seq);
			a_prev[rest] = PointerGetDatum(prev);
			a_prev_null[rest] = false;
			a_hash[rest] = PointerGetDatum(h);
			rest++;
			prev = h;
			audited[j] = true;
		}
	}
	if (rest == 0)
		return;
	values[0] = TimestampTzGetDatum(at);
	values[1] = CStringGetTextDatum(db_role);
	values[2] = PointerGetDatum(int8_array(a_id, rest));
	values[3] = PointerGetDatum(varlena_array(a_action, NULL, rest, TEXTOID));
	values[4] = PointerGetDatum(varlena_array(a_after, NULL, rest, TEXTOID));
	values[5] = PointerGetDatum(varlena_array(a_detail, NULL, rest, JSONBOID));
	values[6] = PointerGetDatum(varlena_array(a_chain, NULL, rest, TEXTOID));
	values[7] = PointerGetDatum(int8_array(a_seq, rest));
	values[8] = PointerGetDatum(varlena_array(a_prev, a_prev_null, rest, BYTEAOID));
	values[9] = PointerGetDatum(varlena_array(a_hash, NULL, rest, BYTEAOID));
	if (ioffice_exec(&audit_batch_plan, values, NULL, 0) != SPI_OK_INSERT ||
		SPI_processed != (uint64) rest)
		elog(ERROR, "ioffice: could not write the audit records of a batch");
}

/*
 * Run fn(arg) in a subtransaction of its own.  Returns NULL when it went
 * through, else its error (copied into the caller's memory context) after
 * rolling the subtransaction back: what it wrote is gone, the batch's
 * transaction and row locks stay.
 */
typedef void (*SubxactStep) (void *arg);

static ErrorData *
in_subtransaction(SubxactStep fn, void *arg)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;

	BeginInternalSubTransaction(NULL);
	PG_TRY();
	{
		fn(arg);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(oldcxt);
	CurrentResourceOwner = oldowner;
	return edata;
}

typedef struct Batch
{
	SignJob    *jobs;
	int			n;
} Batch;

static void
sign_and_record_batch(void *arg)
{
	Batch	   *b = (Batch *) arg;

	for (int i = 0; i < b->n; i++)
		sign_job(&b->jobs[i]);
	record_batch(b->jobs, b->n);
}

static void
sign_and_record_one(void *arg)
{
	sign_job((SignJob *) arg);
	record((SignJob *) arg);
}

static void
record_one(void *arg)
{
	record((SignJob *) arg);
}

/*
 * The job-by-job way: each job signed and recorded in a subtransaction.
 * Returns how many jobs stay pending because not even their failure could
 * be recorded.
 */
static int
sign_jobs_one_by_one(SignJob *jobs, int n, MemoryContext job_cxt)
{
	int			left = 0;

	for (int i = 0; i < n; i++)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(job_cxt);
		ErrorData  *edata = in_subtransaction(sign_and_record_one, &jobs[i]);

		if (edata == NULL)
		{
			if (!jobs[i].ok)
				batch_failed++;
		}
		else
		{
			ErrorData  *again;

			ioffice_worker_note_error(edata->message);
			/* the abort restored the engine depth of the subtransaction's start */
			jobs[i].ok = false;
			jobs[i].cms = NULL;
			jobs[i].reason = edata->message;

			/*
			 * Recording the failure can fail the same way (a lock timeout, a
			 * deadlock with a client replacing the file): then the job stays
			 * pending for the next batch instead of taking the whole batch,
			 * and the worker, down with it.
			 */
			again = in_subtransaction(record_one, &jobs[i]);
			if (again == NULL)
				batch_failed++;
			else
			{
				left++;
				elog(WARNING, "ioffice worker: signature %lld could not be recorded as failed (%s); it stays pending",
					 (long long) jobs[i].id, again->message);
			}
		}
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(job_cxt);
	}
	return left;
}

int
ioffice_worker_sign_batch(int limit, int64 *failed)
{
	SignJob    *jobs;
	uint64		n;
	uint64		i;
	Datum		arg[1];
	MemoryContext job_cxt;
	bool		batch_ok;
	int			left = 0;

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
		d = SPI_getbinval(tup, desc, 9, &isnull);
		jobs[i].sha256 = isnull ? NULL : DatumGetByteaPCopy(d);
		MemoryContextSwitchTo(old);
	}
	if (n == 0)
		goto finish;
	ioffice_worker_set_state("signing");
	pgstat_report_activity(STATE_RUNNING, "ioffice worker: signing");

	job_cxt = AllocSetContextCreate(TopTransactionContext, "ioffice signing job",
									ALLOCSET_DEFAULT_SIZES);
	ioffice_engine_enter();

	/* the whole batch at once */
	{
		Batch		batch = {jobs, (int) n};
		MemoryContext oldcxt = MemoryContextSwitchTo(job_cxt);
		ErrorData  *edata = in_subtransaction(sign_and_record_batch, &batch);

		MemoryContextSwitchTo(oldcxt);
		batch_ok = edata == NULL;
		if (!batch_ok)
			elog(LOG, "ioffice worker: a batch of %d signatures failed (%s); doing it job by job",
				 (int) n, edata->message);
		MemoryContextReset(job_cxt);
	}

	/* an error somewhere: again, job by job, so that it stays with its job */
	if (!batch_ok)
	{
		batch_failed = 0;
		left = sign_jobs_one_by_one(jobs, (int) n, job_cxt);
	}
	ioffice_engine_leave();

finish:
	*failed = batch_failed;
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	return (int) n - left;
}
