/*-------------------------------------------------------------------------
 * audit_jobs.c
 *	  The signer process's part in the audit trail: sealing it every
 *	  ioffice.audit_seal_interval seconds, signing the checkpoints, and
 *	  publishing them to the witnesses.
 *
 * Sealing (audit_verify.c) writes a checkpoint of the chain heads that moved,
 * and nothing when none did (an idle interval does not even look: see
 * trail_may_have_moved()); its advisory lock and gapless numbering make a
 * concurrent audit_seal() in a backend harmless (the second finds nothing
 * moved, or fails on the number the first took).  On a hot standby nothing
 * runs (signer_loop() waits); once promoted, the process continues from the
 * last replicated checkpoint.
 *
 * A checkpoint is then signed with the first certificate that
 * ioffice.audit_certificate names and the database has (its key_file in the
 * keystore, or its key_uri in an HSM, hsm_key.c; the key never enters the
 * database), in order, in the same transaction as the
 * seal.  One written by audit_seal() in a backend, which has no key, waits
 * unsigned (signature IS NULL: the queue) until the worker's next look; the
 * backend wakes it when it commits.  Before signing, the worker checks that
 * the checkpoint still matches its hash and follows the previous one: it
 * never signs a checkpoint it cannot vouch for, and stops at the first.
 * Each signed checkpoint becomes an audit.checkpoint event for the
 * endpoints that take it (the witnesses), in the same transaction.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/sha2.h"
#include "executor/spi.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "ioffice.h"
#include "outbox.h"
#include "worker.h"

#define HASH_LEN PG_SHA256_DIGEST_LENGTH
#define SIGN_BATCH 100

static TimestampTz last_seal = 0;

/*
 * An idle interval costs no scan of the trail: the audit ids handed out
 * (the sequence's last value) and whether any transaction was in flight,
 * read just before the last seal.  When none was, every record with an id
 * up to that value had committed or rolled back, and the seal saw them; if
 * no id was handed out since, no record can have been written.
 */
static int64 quiet_last_id = -1;
static bool quiet_in_flight = true;
static char last_problem[IOFFICE_ERROR_LEN];

/* the oldest unsigned checkpoints, each with the hash of the one before */
static IofficePlan unsigned_plan = {
	NULL,
	"SELECT c.id, c.at, c.chains, c.records, c.root, c.prev_hash, c.hash, p.hash "
	"  FROM ioffice.audit_checkpoint c "
	"  LEFT JOIN ioffice.audit_checkpoint p ON p.id = c.id - 1 "
	" WHERE c.signature IS NULL "
	" ORDER BY c.id LIMIT $1 FOR UPDATE OF c SKIP LOCKED",
	1, {INT4OID}
};

/* the signing certificate, or why it cannot sign now */
static IofficePlan certificate_plan = {
	NULL,
	/* the key: a PKCS#11 URI (the seal in an HSM) or a key file */
	"SELECT c.pem, coalesce(c.key_uri, c.key_file), "
	"       CASE WHEN c.revoked_at IS NOT NULL THEN 'certificate ' || c.id || ' was revoked' "
	"            WHEN c.not_after < now() THEN 'certificate ' || c.id || ' expired on ' || c.not_after "
	"            WHEN c.not_before > now() THEN 'certificate ' || c.id || ' is not valid before ' || c.not_before "
	"            WHEN c.key_file IS NULL AND c.key_uri IS NULL THEN 'certificate ' || c.id || ' has no key file registered' END "
	"  FROM ioffice.certificate c WHERE c.fingerprint = $1",
	1, {BYTEAOID}
};

/*
 * The signature, and the event the witnesses receive: the checkpoint's
 * columns, hashes in hex, the signature in base64 (one line), and the
 * signing certificate's fingerprint.
 */
static IofficePlan signed_plan = {
	NULL,
	"UPDATE ioffice.audit_checkpoint SET signature = $2 WHERE id = $1 AND signature IS NULL "
	"RETURNING jsonb_build_object('sequence', id, "
	"   'at', to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
	"   'chains', chains, 'records', records, 'root', encode(root, 'hex'), "
	"   'previous', encode(prev_hash, 'hex'), 'hash', encode(hash, 'hex'), "
	"   'signature', translate(encode(signature, 'base64'), E'\\n', ''), "
	"   'certificate', encode($3, 'hex'))",
	3, {INT8OID, BYTEAOID, BYTEAOID}
};

/*
 * Could the trail have moved since the last seal?  Reads the sequence and
 * the snapshot (a few buffers), and remembers them for the next call.
 */
static bool
trail_may_have_moved(void)
{
	bool		isnull;
	int64		last_id;
	bool		in_flight;
	bool		moved;

	if (SPI_execute("SELECT s.last_value, pg_catalog.pg_snapshot_xmin(c) <> pg_catalog.pg_snapshot_xmax(c) "
					"  FROM ioffice.audit_id_seq s, pg_catalog.pg_current_snapshot() c",
					true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "ioffice: could not read the audit sequence");
	last_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	in_flight = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	moved = quiet_in_flight || last_id != quiet_last_id;
	quiet_last_id = last_id;
	quiet_in_flight = in_flight;
	return moved;
}

/* a problem that stops signing: for worker_status, and logged once */
static void
problem(const char *fmt,...) pg_attribute_printf(1, 2);

static void
problem(const char *fmt,...)
{
	va_list		args;
	char		buf[IOFFICE_ERROR_LEN];

	va_start(args, fmt);
	vsnprintf(buf, sizeof(buf), fmt, args);
	va_end(args);
	ioffice_worker_note_error(buf);
	if (strcmp(buf, last_problem) != 0)
		ereport(WARNING, (errmsg("ioffice: audit checkpoints are not signed: %s", buf)));
	strlcpy(last_problem, buf, sizeof(last_problem));
}

static bool
column_hash(HeapTuple tup, TupleDesc desc, int col, uint8 *out)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);
	bytea	   *b;

	if (isnull)
		return false;
	b = DatumGetByteaPP(d);
	if (VARSIZE_ANY_EXHDR(b) != HASH_LEN)
		return false;
	memcpy(out, VARDATA_ANY(b), HASH_LEN);
	return true;
}

/*
 * Is the checkpoint (a row of unsigned_plan) one to sign: its hash over its
 * columns as stored, its link to the previous one as that one's hash?
 */
static bool
checkpoint_sound(HeapTuple tup, TupleDesc desc, int64 id)
{
	bool		isnull;
	TimestampTz at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 2, &isnull));
	int32		chains = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
	int64		records = DatumGetInt64(SPI_getbinval(tup, desc, 4, &isnull));
	uint8		root[HASH_LEN],
				prev[HASH_LEN],
				stored[HASH_LEN],
				before[HASH_LEN],
				want[HASH_LEN];
	bool		has_prev = column_hash(tup, desc, 6, prev);
	bool		has_before = column_hash(tup, desc, 8, before);
	StringInfoData content;

	if (!column_hash(tup, desc, 5, root) || !column_hash(tup, desc, 7, stored))
	{
		problem("checkpoint " INT64_FORMAT " has no valid root or hash", id);
		return false;
	}
	if (has_prev != has_before || (has_prev && memcmp(prev, before, HASH_LEN) != 0))
	{
		problem("checkpoint " INT64_FORMAT " does not follow checkpoint " INT64_FORMAT, id, id - 1);
		return false;
	}
	initStringInfo(&content);
	ioffice_checkpoint_content(&content, id, at, chains, records, root, has_prev ? prev : NULL);
	ioffice_sha256_bytes(content.data, content.len, want);
	pfree(content.data);
	if (memcmp(want, stored, HASH_LEN) != 0)
	{
		problem("checkpoint " INT64_FORMAT " does not match its hash", id);
		return false;
	}
	return true;
}

/*
 * Sign the unsigned checkpoints, oldest first, and publish each; stop at the
 * first that cannot be.  Returns how many were signed.  SPI is connected.
 */
static int
sign_checkpoints(void)
{
	uint8		fingerprint[HASH_LEN];
	Datum		args[3];
	char	   *pem;
	char	   *key_file;
	char	   *not_usable;
	SPITupleTable *todo;
	uint64		n;
	int			done = 0;

	if (!ioffice_audit_certificate_fingerprint(0, fingerprint))
		return 0;				/* no signing certificate set: not signed */

	args[0] = Int32GetDatum(SIGN_BATCH);
	ioffice_exec(&unsigned_plan, args, NULL, 0);
	todo = SPI_tuptable;
	n = SPI_processed;
	if (n == 0)
		return 0;

	/*
	 * The first certificate of the setting that this database has: the
	 * setting is the server's, and each served database signs with its own
	 * organisation's.
	 */
	for (int f = 0;; f++)
	{
		if (!ioffice_audit_certificate_fingerprint(f, fingerprint))
		{
			problem("no certificate that ioffice.audit_certificate names is registered in this database");
			return 0;
		}
		args[0] = PointerGetDatum(ioffice_bytea(fingerprint, HASH_LEN));
		ioffice_exec(&certificate_plan, args, NULL, 1);
		if (SPI_processed > 0)
			break;
	}
	pem = ioffice_get_text(0, 1);
	key_file = ioffice_get_text(0, 2);
	not_usable = ioffice_get_text(0, 3);
	if (not_usable != NULL)
	{
		problem("%s", not_usable);
		return 0;
	}

	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple	tup = todo->vals[i];
		bool		isnull;
		int64		id = DatumGetInt64(SPI_getbinval(tup, todo->tupdesc, 1, &isnull));
		uint8		hash[HASH_LEN];
		IofficeSignResult sig;
		Datum		d;

		if (!checkpoint_sound(tup, todo->tupdesc, id))
			break;
		column_hash(tup, todo->tupdesc, 7, hash);
		/* the content's digest is the checkpoint's hash (audit_sign.c) */
		sig = ioffice_sign_detached_digest(pem, key_file, hash);
		if (!sig.ok)
		{
			problem("checkpoint " INT64_FORMAT ": %s", id, sig.reason);
			break;
		}
		args[0] = Int64GetDatum(id);
		args[1] = PointerGetDatum(sig.cms);
		args[2] = PointerGetDatum(ioffice_bytea(fingerprint, HASH_LEN));
		ioffice_exec(&signed_plan, args, NULL, 1);
		if (SPI_processed != 1)
			break;
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		ioffice_outbox_enqueue("audit.checkpoint", DatumGetJsonbPCopy(d));
		done++;
	}
	if (done == (int) n)
		last_problem[0] = '\0';
	return done;
}

/*
 * One step, in a transaction of its own: a checkpoint if the interval has
 * passed, then the signatures.  Returns true when a full batch was signed
 * (more may wait).
 */
bool
ioffice_worker_audit_step(void)
{
	TimestampTz now = GetCurrentTimestamp();
	bool		seal = ioffice_audit_seal_interval > 0 &&
		now >= TimestampTzPlusMilliseconds(last_seal, ioffice_audit_seal_interval * 1000L);
	uint8		fingerprint[HASH_LEN];
	int			signed_now = 0;

	if (!seal && !ioffice_audit_certificate_fingerprint(0, fingerprint))
		return false;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "ioffice worker: sealing the audit trail");

	if (seal)
	{
		bool		sealed;

		if (trail_may_have_moved())
			(void) ioffice_audit_seal_internal(&sealed);
		last_seal = now;
	}
	signed_now = sign_checkpoints();

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	return signed_now >= SIGN_BATCH;
}

/* how long the signer may sleep before the next seal is due, at most max_ms */
long
ioffice_worker_audit_wait_ms(long max_ms)
{
	long		ms;

	/* (not before the first step: the extension may not be there yet) */
	if (ioffice_audit_seal_interval <= 0 || last_seal == 0)
		return max_ms;
	ms = TimestampDifferenceMilliseconds(GetCurrentTimestamp(),
										 TimestampTzPlusMilliseconds(last_seal,
																	 ioffice_audit_seal_interval * 1000L));
	return Max(Min(ms, max_ms), 10);
}
