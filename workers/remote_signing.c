/*-------------------------------------------------------------------------
 * remote_signing.c
 *	  The signer's remote signing: a personal signature whose signer has a
 *	  credential with a remote signing service (signing_credential) is
 *	  signed through it (issue 13, item 2).
 *
 * The services are shaped like the Cloud Signature Consortium API (v2):
 *   POST {base_url}/signatures/signHash
 *        {"credentialID", "userID", "hashes": [base64], "hashAlgorithmOID",
 *         "signAlgo", "operationMode": "A", "validity_period",
 *         "transactionID", "clientData", "description"}
 *     -> {"responseID": "..."} (asynchronous: the person is asked on
 *        their phone), or {"signatures": [base64]} at once;
 *   POST {base_url}/signatures/status {"transactionID", "responseID"}
 *     -> {"status": "pending" | "signed" | "refused" | "expired",
 *         "signatures": [base64] when signed};
 * each call authenticated with HTTP Basic (the service's client id and
 * secret, signing_provider).  A signature returned is the bare value over
 * the hash (PKCS#1 v1.5 for RSA, DER ECDSA) or a CMS SignedData.
 *
 * For each such pending signature the signer prepares, in one transaction,
 * exactly what signing_request() prepares for the signer's own tool: the
 * PDF revision with the signature field and the reserved /Contents (or the
 * file itself, signed detached), and the SHA-256 of the CMS signed
 * attributes, which is the hash the service signs
 * (ioffice_token_attrs_digest()); it keeps them in a signing_transaction
 * row (state pending, a transaction id of its own, an expiry of
 * ioffice.remote_signing_expiry seconds) and writes "signing_requested"
 * into the document's audit chain.  Then it sends the hash and polls the
 * status every ioffice.remote_signing_poll milliseconds.  The calls are
 * libcurl "easy" handles driven by one multi handle, at most
 * ioffice.remote_signing_connections at a time, never waited for: the
 * signer looks at them between its other steps (signing batches, the
 * conversion, the audit trail), and while it would otherwise sleep it
 * waits on their sockets and its latch together
 * (ioffice_worker_remote_wait()), so that a thousand pending confirmations
 * cost a few requests a second and hold nothing.  No transaction is open
 * while calls are in flight.
 *
 * An answer is recorded in a transaction of its own, in a subtransaction
 * per transaction row.  Confirmed: the answer becomes a CMS and is checked
 * as submit_signature() checks a submission (ioffice_token_answer_cms():
 * verifies over the prepared bytes, made with a certificate registered to
 * the signer, trusted, not revoked, valid now), embedded in the prepared
 * revision, stored as the file's next version, the signature done, the
 * transaction confirmed and "signed" in the audit chain, by the signer, all
 * in that one transaction.  Refused, expired (by the service, or by us:
 * no confirmation before expires_at), an answer that is not what the API
 * says, an HTTP error, a service that does not answer (the hash cannot be
 * sent; or three polls in a row) or a signature that fails the checks: the
 * transaction ends with that state and reason, the signature becomes
 * failed with the reason (visible to the signer, who signs again with
 * act(doc, 'sign'): a new signature, a new transaction), and the audit
 * chain has "signing_declined" (by the signer), "signing_expired" or
 * "signing_failed".
 *
 * A crash (kill -9) loses nothing and embeds nothing twice: the embedding
 * and the transaction's end commit together, and a pending row is taken
 * again by the restarted signer, sent again with the same transaction id
 * if its hash was not yet accepted (the service answers a repeated
 * transaction id with the same response), polled again otherwise.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "common/base64.h"
#include "common/jsonapi.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/pmsignal.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "convert.h"
#include "ioffice.h"
#include "worker.h"

int			ioffice_remote_signing_expiry = 300;	/* s */
int			ioffice_remote_signing_poll = 2000; /* ms */
int			ioffice_remote_signing_connections = 16;

#define SHA256_LEN 32
#define ANSWER_MAX (256 * 1024)	/* bytes of an answer read; more is garbage */
#define REASON_KEEP 120			/* bytes of an answer quoted in a reason */
#define PREPARE_PER_ROUND 8		/* signatures prepared between other work */
#define POLL_MS 50				/* while calls are in flight: latch looked at this often */
#define GATHER_MS 20			/* answers gathered this long into one transaction */
#define POLL_FAILURES_MAX 3		/* polls without an answer in a row: failed */
#define PREPARE_BUSY_MS 500		/* a busy signer looks for new signatures this often */

#define OID_SHA256 "2.16.840.1.101.3.4.2.1"
#define OID_RSA "1.2.840.113549.1.1.1"
#define OID_ECDSA_SHA256 "1.2.840.10045.4.3.2"

typedef enum CallState
{
	CALL_FREE,
	CALL_READY,					/* taken, started once the taking commits */
	CALL_FLYING,
	CALL_DONE					/* its answer waits to be recorded */
} CallState;

/* one call to a service: its handle and its answer */
typedef struct RemoteCall
{
	CallState	state;
	CURL	   *easy;
	MemoryContext cxt;			/* the call's strings, reset at reuse */
	int64		txn;			/* signing_transaction.id */
	bool		sign;			/* signatures/signHash; else signatures/status */
	char	   *provider;
	char	   *url;
	char	   *body;
	char	   *client_id;
	char	   *client_secret;
	long		timeout_ms;
	struct curl_slist *headers;
	StringInfoData answer;
	bool		too_long;
	long		http_status;
	CURLcode	result;
	char		curl_error[CURL_ERROR_SIZE];
} RemoteCall;

static CURLM *multi = NULL;
static RemoteCall *calls = NULL;
static int	ncalls = 0;
static bool look_now = true;
static TimestampTz next_look = 0;
static TimestampTz first_done_at = 0;	/* the oldest answer waiting to be recorded */
static TimestampTz last_prepare = 0;	/* the last look for new signatures */
static bool prepare_more = false;	/* it found a full round: more may wait */

/*
 * Pending signatures of the remote path, not yet sent: the signer has a
 * credential with an enabled service, a personal certificate without a key
 * file that can sign now (the newest: the one the hash names) and none
 * with one (sign_jobs.c's rule for the token path), the file is no Word
 * or Excel file waiting for its conversion, and no transaction is pending.
 * As in that rule, key files count only while ioffice.keystore_personal
 * ($2) is on: while it is off (the default) the worker never signs with a
 * personal key file, so a certificate that names one is the person's like
 * any other, and their service signs with it; were it skipped here, the
 * signature of a person whose certificate names a key file would wait
 * for ever, taken neither by the worker nor by their service.
 */
static IofficePlan new_plan = {
	NULL,
	"SELECT s.id, s.document_id, s.file_id, s.signer_id, p.full_name, "
	"       CASE WHEN s.options ? 'copy' THEN NULL ELSE si.png END, "
	"       CASE WHEN s.options->>'mode' = 'position' THEN (s.options->>'page')::int END, "
	"       (s.options->>'x')::float8, (s.options->>'y')::float8, "
	"       s.options->'copy'->>'reason', "
	"       CASE WHEN s.options ? 'copy' THEN concat_ws(E'\\x1f', "
	"                 CASE s.options->'copy'->>'kind' WHEN 'SY' THEN 'Sao y' WHEN 'SL' THEN 'Sao lục' "
	"                      WHEN 'TrS' THEN 'Trích sao' END, s.options->'copy'->>'agency') END, "
	"       k.id, f.kind = 'pdf' AND position('startxref'::bytea IN "
	"           substring(f.content FROM greatest(1, f.size - 1023))) > 0, "
	"       pr.id, pr.name, c.user_id, c.credential_id "
	"  FROM ioffice.signature s "
	"  JOIN ioffice.signing_credential c ON c.person_id = s.signer_id "
	"  JOIN ioffice.signing_provider pr ON pr.id = c.provider_id AND pr.enabled "
	"  JOIN ioffice.person p ON p.id = s.signer_id "
	"  JOIN ioffice.file f ON f.id = s.file_id "
	"  LEFT JOIN ioffice.signature_image si ON si.person_id = s.signer_id "
	"  CROSS JOIN LATERAL (SELECT k.id FROM ioffice.certificate k WHERE k.kind = 'personal' "
	"           AND k.person_id = s.signer_id AND (k.key_file IS NULL OR NOT $2) AND k.revoked_at IS NULL "
	"           AND now() BETWEEN k.not_before AND k.not_after "
	"         ORDER BY k.not_after DESC, k.id DESC LIMIT 1) k "
	" WHERE s.status = 'pending' AND s.kind = 'personal' "
	"   AND f.kind NOT IN " IOFFICE_CONVERTIBLE_KINDS_SQL
	"   AND NOT EXISTS (SELECT 1 FROM ioffice.certificate x WHERE x.kind = 'personal' "
	"           AND x.person_id = s.signer_id AND x.key_file IS NOT NULL AND $2 AND x.revoked_at IS NULL "
	"           AND now() BETWEEN x.not_before AND x.not_after) "
	"   AND NOT EXISTS (SELECT 1 FROM ioffice.signing_transaction t "
	"                    WHERE t.signature_id = s.id AND t.state = 'pending') "
	" ORDER BY s.id LIMIT $1 FOR UPDATE OF s SKIP LOCKED",
	2, {INT4OID, BOOLOID}
};

/* the file a detached signature signs: itself, still current */
static IofficePlan detached_target_plan = {
	NULL,
	"SELECT f.sha256 FROM ioffice.file f "
	" WHERE f.id = $1 AND f.superseded_at IS NULL AND f.removed_at IS NULL",
	1, {INT8OID}
};

static IofficePlan insert_plan = {
	NULL,
	"INSERT INTO ioffice.signing_transaction (signature_id, provider_id, person_id, user_id, "
	"       credential_id, transaction_id, certificate_id, file_id, prepared, byte_range, "
	"       content_digest, attrs_digest, sign_algo, next_poll_at, expires_at) "
	"VALUES ($1, $2, $3, $4, $5, gen_random_uuid()::text, $6, $7, $8, $9, $10, $11, $12, "
	"        now(), now() + make_interval(secs => $13)) "
	"RETURNING id, transaction_id, to_json(expires_at)#>>'{}'",
	13, {INT8OID, INT8OID, INT8OID, TEXTOID, TEXTOID, INT8OID, INT8OID, BYTEAOID, INT8ARRAYOID,
	BYTEAOID, BYTEAOID, TEXTOID, INT4OID}
};

/* pending transactions past their expiry and not in flight ($1) */
static IofficePlan overdue_plan = {
	NULL,
	"SELECT t.id FROM ioffice.signing_transaction t "
	" WHERE t.state = 'pending' AND t.expires_at <= now() AND t.id <> ALL ($1) "
	" ORDER BY t.id LIMIT 1000 FOR UPDATE SKIP LOCKED",
	1, {INT8ARRAYOID}
};

/* pending transactions whose signature is no longer pending (signed by the token path, withdrawn) */
static IofficePlan orphans_plan = {
	NULL,
	"UPDATE ioffice.signing_transaction t SET state = 'failed', finished_at = clock_timestamp(), "
	"       reason = 'the signature is no longer pending', prepared = NULL, byte_range = NULL "
	" WHERE t.state = 'pending' AND t.id <> ALL ($1) "
	"   AND NOT EXISTS (SELECT 1 FROM ioffice.signature s WHERE s.id = t.signature_id "
	"                    AND s.status = 'pending')",
	1, {INT8ARRAYOID}
};

/* calls due: hashes not yet accepted, polls due; not in flight ($2) */
static IofficePlan due_plan = {
	NULL,
	"SELECT t.id, t.response_id IS NULL, pr.name, pr.base_url, pr.client_id, pr.client_secret, "
	"       pr.timeout_ms, t.transaction_id, t.response_id, t.user_id, t.credential_id, "
	"       encode(t.attrs_digest, 'base64'), t.sign_algo, "
	"       greatest(1, ceil(extract(epoch FROM t.expires_at - now())))::int, t.signature_id "
	"  FROM ioffice.signing_transaction t JOIN ioffice.signing_provider pr ON pr.id = t.provider_id "
	" WHERE t.state = 'pending' AND t.next_poll_at <= now() AND t.expires_at > now() "
	"   AND t.id <> ALL ($2) "
	" ORDER BY t.next_poll_at, t.id LIMIT $1 FOR UPDATE OF t SKIP LOCKED",
	2, {INT4OID, INT8ARRAYOID}
};

/* when the next pending transaction not in flight needs a look, in ms from now */
static IofficePlan next_look_plan = {
	NULL,
	"SELECT extract(epoch FROM min(least(t.next_poll_at, t.expires_at)) - clock_timestamp()) * 1000 "
	"  FROM ioffice.signing_transaction t WHERE t.state = 'pending' AND t.id <> ALL ($1)",
	1, {INT8ARRAYOID}
};

/* a transaction and its signature, locked */
static IofficePlan txn_plan = {
	NULL,
	"SELECT t.state, s.status, s.id, s.document_id, t.person_id, pr.name, t.transaction_id, "
	"       t.certificate_id, t.file_id, t.failures "
	"  FROM ioffice.signing_transaction t "
	"  JOIN ioffice.signature s ON s.id = t.signature_id "
	"  JOIN ioffice.signing_provider pr ON pr.id = t.provider_id "
	" WHERE t.id = $1 FOR UPDATE OF t, s",
	1, {INT8OID}
};

/* what a confirmed transaction embeds: read only then (polls need none of it) */
static IofficePlan bytes_plan = {
	NULL,
	"SELECT t.prepared, t.byte_range[1], t.byte_range[2], t.byte_range[3], t.byte_range[4], "
	"       t.content_digest, t.attrs_digest, "
	"       f.superseded_at IS NULL AND f.removed_at IS NULL, f.content, f.name "
	"  FROM ioffice.signing_transaction t JOIN ioffice.file f ON f.id = t.file_id "
	" WHERE t.id = $1",
	1, {INT8OID}
};

static IofficePlan accepted_plan = {
	NULL,
	"UPDATE ioffice.signing_transaction SET response_id = $2, sent_at = clock_timestamp(), "
	"       failures = 0, next_poll_at = clock_timestamp() + make_interval(secs => $3 / 1000.0) "
	" WHERE id = $1 AND state = 'pending'",
	3, {INT8OID, TEXTOID, INT4OID}
};

static IofficePlan polled_plan = {
	NULL,
	"UPDATE ioffice.signing_transaction SET polls = polls + 1, failures = $2, "
	"       next_poll_at = clock_timestamp() + make_interval(secs => $3 / 1000.0) "
	" WHERE id = $1 AND state = 'pending'",
	3, {INT8OID, INT4OID, INT4OID}
};

static IofficePlan end_plan = {
	NULL,
	"UPDATE ioffice.signing_transaction SET state = $2, reason = $3, "
	"       finished_at = clock_timestamp(), prepared = NULL, byte_range = NULL "
	" WHERE id = $1 AND state = 'pending'",
	3, {INT8OID, TEXTOID, TEXTOID}
};

static IofficePlan failed_plan = {
	NULL,
	"UPDATE ioffice.signature SET status = 'failed', reason = $2 "
	" WHERE id = $1 AND status = 'pending'",
	2, {INT8OID, TEXTOID}
};

static IofficePlan done_plan = {
	NULL,
	"UPDATE ioffice.signature SET status = 'done', cms = $2, certificate_id = $3, "
	"       signed_at = clock_timestamp(), reason = NULL, signed_file_id = $4 "
	" WHERE id = $1 AND status = 'pending'",
	4, {INT8OID, BYTEAOID, INT8OID, INT8OID}
};

void
ioffice_remote_signing_init(void)
{
	DefineCustomIntVariable("ioffice.remote_signing_expiry",
							"Seconds a person has to confirm a signature on a remote signing service.",
							"Unconfirmed after this long, the signature fails as expired; the person signs again.",
							&ioffice_remote_signing_expiry,
							300, 1, 3600,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("ioffice.remote_signing_poll",
							"Milliseconds between two looks at a pending remote signature's status.",
							NULL,
							&ioffice_remote_signing_poll,
							2000, 100, 600000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("ioffice.remote_signing_connections",
							"Calls to remote signing services the signer has in flight at once.",
							NULL,
							&ioffice_remote_signing_connections,
							16, 1, 256,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
}

/* ------------------------------------------------------------------------
 * The calls
 * ------------------------------------------------------------------------
 */

static size_t
keep_answer(char *data, size_t size, size_t nmemb, void *arg)
{
	RemoteCall *c = (RemoteCall *) arg;
	size_t		len = size * nmemb;

	if (c->answer.len + len > ANSWER_MAX)
	{
		c->too_long = true;
		return len;
	}
	appendBinaryStringInfo(&c->answer, data, (int) len);
	return len;
}

static int
count_calls(CallState state)
{
	int			n = 0;

	for (int i = 0; i < ncalls; i++)
		if (calls[i].state == state)
			n++;
	return n;
}

/* the calls follow ioffice.remote_signing_connections; made again only when none is busy */
static void
ensure_calls(void)
{
	if (multi == NULL)
	{
		multi = curl_multi_init();
		if (multi == NULL)
			elog(ERROR, "ioffice: could not initialise libcurl");
	}
	if (ncalls == ioffice_remote_signing_connections)
		return;
	for (int i = 0; i < ncalls; i++)
		if (calls[i].state != CALL_FREE)
			return;
	for (int i = 0; i < ncalls; i++)
	{
		curl_easy_cleanup(calls[i].easy);
		MemoryContextDelete(calls[i].cxt);
	}
	if (calls != NULL)
		pfree(calls);
	ncalls = 0;
	calls = MemoryContextAllocZero(TopMemoryContext,
								   sizeof(RemoteCall) * ioffice_remote_signing_connections);
	for (int i = 0; i < ioffice_remote_signing_connections; i++)
	{
		calls[i].cxt = AllocSetContextCreate(TopMemoryContext, "ioffice remote signing call",
											 ALLOCSET_SMALL_SIZES);
		calls[i].easy = curl_easy_init();
		if (calls[i].easy == NULL)
			elog(ERROR, "ioffice: could not initialise libcurl");
		ncalls = i + 1;
	}
	curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long) ncalls);
	curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long) ncalls);
}

/* the transactions in flight (or about to be), which the queries skip */
static ArrayType *
busy_ids(void)
{
	Datum	   *ids = palloc(sizeof(Datum) * Max(ncalls, 1));
	int			n = 0;

	for (int i = 0; i < ncalls; i++)
		if (calls[i].state != CALL_FREE)
			ids[n++] = Int64GetDatum(calls[i].txn);
	return construct_array(ids, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
}

static void
start(RemoteCall *c)
{
	CURL	   *easy = c->easy;

	curl_easy_reset(easy);
	curl_easy_setopt(easy, CURLOPT_URL, c->url);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(easy, CURLOPT_POST, 1L);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDS, c->body);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) strlen(c->body));
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, c->headers);
	curl_easy_setopt(easy, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
	curl_easy_setopt(easy, CURLOPT_USERNAME, c->client_id);
	curl_easy_setopt(easy, CURLOPT_PASSWORD, c->client_secret);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, c->timeout_ms);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, Min(c->timeout_ms, 10000L));
	/* no signals: timeouts must not raise SIGALRM in a server process */
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, keep_answer);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, c->curl_error);
	curl_easy_setopt(easy, CURLOPT_USERAGENT, "ioffice/0.2");
	curl_easy_setopt(easy, CURLOPT_PRIVATE, c);
	c->curl_error[0] = '\0';
	if (curl_multi_add_handle(multi, easy) != CURLM_OK)
		elog(ERROR, "ioffice: could not start an HTTP request");
	c->state = CALL_FLYING;
}

/* the calls libcurl has finished: their answers wait to be recorded */
static void
collect(void)
{
	int			running;
	int			queued;
	CURLMsg    *msg;

	if (multi == NULL)
		return;
	if (curl_multi_perform(multi, &running) != CURLM_OK)
		elog(ERROR, "ioffice: libcurl failed");
	while ((msg = curl_multi_info_read(multi, &queued)) != NULL)
	{
		RemoteCall *c = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &c);
		if (c == NULL || c->easy != msg->easy_handle || c->state != CALL_FLYING)
			elog(ERROR, "ioffice: libcurl finished a request it was not given");
		c->result = msg->data.result;
		c->http_status = 0;
		curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &c->http_status);
		curl_multi_remove_handle(multi, c->easy);
		curl_slist_free_all(c->headers);
		c->headers = NULL;
		c->state = CALL_DONE;
		if (first_done_at == 0)
			first_done_at = GetCurrentTimestamp();
	}
}

/* ------------------------------------------------------------------------
 * Subtransactions: one per transaction row, so that one bad row never
 * holds the others
 * ------------------------------------------------------------------------
 */
typedef void (*RemoteStep) (void *arg);

static ErrorData *
in_subtransaction(RemoteStep fn, void *arg)
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

/* ------------------------------------------------------------------------
 * Preparing: the revision and the hash, as signing_request() does
 * ------------------------------------------------------------------------
 */
typedef struct NewSignature
{
	int64		id;
	int64		document;
	int64		file;
	int64		signer;
	char	   *signer_name;
	IofficePdfLook look;
	int64		certificate;
	bool		pdf;
	int64		provider;
	char	   *provider_name;
	char	   *user_id;
	char	   *credential_id;
	char	   *reason;			/* why it could not be prepared */
} NewSignature;

static void
new_from_tuple(NewSignature *n, HeapTuple tup, TupleDesc desc)
{
	bool		isnull;
	Datum		d;

	memset(n, 0, sizeof(*n));
	n->id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	n->document = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
	n->file = DatumGetInt64(SPI_getbinval(tup, desc, 3, &isnull));
	n->signer = DatumGetInt64(SPI_getbinval(tup, desc, 4, &isnull));
	n->signer_name = SPI_getvalue(tup, desc, 5);
	d = SPI_getbinval(tup, desc, 6, &isnull);
	n->look.image = isnull ? NULL : DatumGetByteaPCopy(d);
	d = SPI_getbinval(tup, desc, 7, &isnull);
	n->look.page = isnull ? 0 : DatumGetInt32(d);
	d = SPI_getbinval(tup, desc, 8, &isnull);
	n->look.x = isnull ? 0 : DatumGetFloat8(d);
	d = SPI_getbinval(tup, desc, 9, &isnull);
	n->look.y = isnull ? 0 : DatumGetFloat8(d);
	n->look.reason = SPI_getvalue(tup, desc, 10);
	n->look.corner = SPI_getvalue(tup, desc, 11);
	n->certificate = DatumGetInt64(SPI_getbinval(tup, desc, 12, &isnull));
	d = SPI_getbinval(tup, desc, 13, &isnull);
	n->pdf = !isnull && DatumGetBool(d);
	n->provider = DatumGetInt64(SPI_getbinval(tup, desc, 14, &isnull));
	n->provider_name = SPI_getvalue(tup, desc, 15);
	n->user_id = SPI_getvalue(tup, desc, 16);
	n->credential_id = SPI_getvalue(tup, desc, 17);
}

static char *
hex_of(const uint8 *b, size_t n)
{
	char	   *s = palloc(n * 2 + 1);

	hex_encode((const char *) b, n, s);
	s[n * 2] = '\0';
	return s;
}

/* the audit record of a transaction's step, in its document's chain */
static void
audit_step(int64 document, int64 actor, int64 signature, const char *action,
		   const char *after, JsonbBuild *detail)
{
	ioffice_audit_in_chain(ioffice_document_chain(document), actor, 0, "signature", signature,
						   action, "pending", after, ioffice_jsonb_end(detail));
}

/* a signature that cannot go to its service: failed with the reason */
static void
fail_signature(int64 signature, int64 document, const char *provider, const char *reason)
{
	Datum		v[2];
	JsonbBuild *b;

	v[0] = Int64GetDatum(signature);
	v[1] = CStringGetTextDatum(reason);
	if (ioffice_exec(&failed_plan, v, NULL, 0) != SPI_OK_UPDATE)
		elog(ERROR, "ioffice: could not record signature %lld", (long long) signature);
	if (SPI_processed != 1)
		return;
	b = ioffice_jsonb_begin();
	ioffice_jsonb_add_text(b, "via", "remote");
	if (provider)
		ioffice_jsonb_add_text(b, "provider", provider);
	ioffice_jsonb_add_text(b, "outcome", "failed");
	ioffice_jsonb_add_text(b, "reason", reason);
	audit_step(document, 0, signature, "signing_failed", "failed", b);
}

static void
prepare_one(void *arg)
{
	NewSignature *n = (NewSignature *) arg;
	int64		file = n->file;
	const char *pdf = NULL;
	size_t		len = 0;
	int64		br[4] = {0, 0, 0, 0};
	uint8		content_digest[SHA256_LEN];
	uint8		attrs_digest[SHA256_LEN];
	const char *algorithm;
	Datum		v[13];
	char		nulls[13];
	Datum		brd[4];
	int64		txn = 0;
	char	   *transaction_id;
	char	   *expires;
	JsonbBuild *b;

	if (n->pdf)
	{
		IofficePdfPrepared p = ioffice_pdf_prepare(n->file, n->signer_name, "personal",
												   &n->look, true);

		if (p.ok)
		{
			file = p.target;
			pdf = p.pdf;
			len = p.len;
			memcpy(br, p.br, sizeof(br));
			memcpy(content_digest, p.digest, SHA256_LEN);
		}
		else if (!p.not_pdf)
		{
			fail_signature(n->id, n->document, n->provider_name,
						   psprintf("the PDF cannot be prepared for signing: %s",
									p.reason ? p.reason : "unknown error"));
			return;
		}
		/* a "PDF" the library cannot read: signed detached, as the worker does */
	}
	if (pdf == NULL)
	{
		bytea	   *sha;
		bool		isnull;

		v[0] = Int64GetDatum(n->file);
		if (ioffice_exec(&detached_target_plan, v, NULL, 1) != SPI_OK_SELECT || SPI_processed != 1)
		{
			fail_signature(n->id, n->document, n->provider_name,
						   "the file was replaced or removed before it was signed");
			return;
		}
		sha = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		if (isnull || VARSIZE_ANY_EXHDR(sha) != SHA256_LEN)
			elog(ERROR, "ioffice: file %lld has no SHA-256", (long long) n->file);
		memcpy(content_digest, VARDATA_ANY(sha), SHA256_LEN);
	}
	algorithm = ioffice_token_attrs_digest(n->certificate, content_digest, attrs_digest);

	memset(nulls, ' ', sizeof(nulls));
	v[0] = Int64GetDatum(n->id);
	v[1] = Int64GetDatum(n->provider);
	v[2] = Int64GetDatum(n->signer);
	v[3] = CStringGetTextDatum(n->user_id);
	v[4] = CStringGetTextDatum(n->credential_id);
	v[5] = Int64GetDatum(n->certificate);
	v[6] = Int64GetDatum(file);
	if (pdf)
	{
		v[7] = PointerGetDatum(ioffice_bytea(pdf, len));
		for (int i = 0; i < 4; i++)
			brd[i] = Int64GetDatum(br[i]);
		v[8] = PointerGetDatum(construct_array(brd, 4, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	}
	else
	{
		nulls[7] = 'n';
		nulls[8] = 'n';
	}
	v[9] = PointerGetDatum(ioffice_bytea(content_digest, SHA256_LEN));
	v[10] = PointerGetDatum(ioffice_bytea(attrs_digest, SHA256_LEN));
	v[11] = CStringGetTextDatum(strcmp(algorithm, "ecdsa-with-SHA256") == 0 ? OID_ECDSA_SHA256 : OID_RSA);
	v[12] = Int32GetDatum(ioffice_remote_signing_expiry);
	if (ioffice_exec(&insert_plan, v, nulls, 0) != SPI_OK_INSERT_RETURNING || SPI_processed != 1)
		elog(ERROR, "ioffice: the remote signing transaction could not be kept");
	ioffice_get_int64(0, 1, &txn);
	transaction_id = ioffice_get_text(0, 2);
	expires = ioffice_get_text(0, 3);

	b = ioffice_jsonb_begin();
	ioffice_jsonb_add_text(b, "via", "remote");
	ioffice_jsonb_add_text(b, "provider", n->provider_name);
	ioffice_jsonb_add_text(b, "transaction", transaction_id);
	ioffice_jsonb_add_int(b, "file", file);
	ioffice_jsonb_add_int(b, "certificate", n->certificate);
	ioffice_jsonb_add_text(b, "digest", hex_of(attrs_digest, SHA256_LEN));
	ioffice_jsonb_add_text(b, "content_digest", hex_of(content_digest, SHA256_LEN));
	ioffice_jsonb_add_text(b, "expires_at", expires);
	audit_step(n->document, 0, n->id, "signing_requested", "pending", b);
}

static void
fail_one(void *arg)
{
	NewSignature *n = (NewSignature *) arg;

	fail_signature(n->id, n->document, n->provider_name, n->reason);
}

/*
 * Up to LIMIT new signatures of the remote path prepared, each in a
 * subtransaction; one that cannot be prepared fails with the reason.
 * Returns how many were found.
 */
static int
prepare_new(int limit)
{
	Datum		arg[2];
	int			n;
	NewSignature *sigs;

	arg[0] = Int32GetDatum(limit);
	arg[1] = BoolGetDatum(ioffice_keystore_personal);
	if (ioffice_exec(&new_plan, arg, NULL, 0) != SPI_OK_SELECT)
		elog(ERROR, "ioffice: could not read the remote signing queue");
	n = (int) SPI_processed;
	if (n == 0)
		return 0;
	sigs = palloc(sizeof(NewSignature) * n);
	for (int i = 0; i < n; i++)
		new_from_tuple(&sigs[i], SPI_tuptable->vals[i], SPI_tuptable->tupdesc);
	for (int i = 0; i < n; i++)
	{
		ErrorData  *edata = in_subtransaction(prepare_one, &sigs[i]);

		if (edata != NULL)
		{
			ioffice_worker_note_error(edata->message);
			sigs[i].reason = psprintf("the signature cannot be prepared: %s", edata->message);
			edata = in_subtransaction(fail_one, &sigs[i]);
			if (edata != NULL)
				elog(WARNING, "ioffice worker: signature %lld could not be recorded as failed (%s)",
					 (long long) sigs[i].id, edata->message);
		}
	}
	look_now = true;
	return n;
}

/* ------------------------------------------------------------------------
 * Recording answers
 * ------------------------------------------------------------------------
 */

/* a transaction and its signature as txn_plan reads them */
typedef struct Txn
{
	int64		id;
	char	   *state;
	char	   *signature_status;
	int64		signature;
	int64		document;
	int64		person;
	char	   *provider;
	char	   *transaction_id;
	int64		certificate;
	int64		file;
	bytea	   *prepared;
	int64		br[4];
	bytea	   *content_digest;
	bytea	   *attrs_digest;
	bool		current;
	bytea	   *file_content;
	char	   *file_name;
	int32		failures;
} Txn;

static bool
read_txn(Txn *t, int64 id)
{
	Datum		arg[1];
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;

	memset(t, 0, sizeof(*t));
	t->id = id;
	arg[0] = Int64GetDatum(id);
	if (ioffice_exec(&txn_plan, arg, NULL, 1) != SPI_OK_SELECT)
		elog(ERROR, "ioffice: could not read remote signing transaction %lld", (long long) id);
	if (SPI_processed != 1)
		return false;
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	t->state = SPI_getvalue(tup, desc, 1);
	t->signature_status = SPI_getvalue(tup, desc, 2);
	t->signature = DatumGetInt64(SPI_getbinval(tup, desc, 3, &isnull));
	t->document = DatumGetInt64(SPI_getbinval(tup, desc, 4, &isnull));
	t->person = DatumGetInt64(SPI_getbinval(tup, desc, 5, &isnull));
	t->provider = SPI_getvalue(tup, desc, 6);
	t->transaction_id = SPI_getvalue(tup, desc, 7);
	t->certificate = DatumGetInt64(SPI_getbinval(tup, desc, 8, &isnull));
	t->file = DatumGetInt64(SPI_getbinval(tup, desc, 9, &isnull));
	t->failures = DatumGetInt32(SPI_getbinval(tup, desc, 10, &isnull));
	return true;
}

/* the prepared bytes and the file, for the embedding */
static void
read_txn_bytes(Txn *t)
{
	Datum		arg[1];
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	Datum		d;

	arg[0] = Int64GetDatum(t->id);
	if (ioffice_exec(&bytes_plan, arg, NULL, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "ioffice: could not read remote signing transaction %lld", (long long) t->id);
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	d = SPI_getbinval(tup, desc, 1, &isnull);
	t->prepared = isnull ? NULL : DatumGetByteaPCopy(d);
	for (int i = 0; i < 4; i++)
	{
		d = SPI_getbinval(tup, desc, 2 + i, &isnull);
		t->br[i] = isnull ? 0 : DatumGetInt64(d);
	}
	t->content_digest = DatumGetByteaPCopy(SPI_getbinval(tup, desc, 6, &isnull));
	t->attrs_digest = DatumGetByteaPCopy(SPI_getbinval(tup, desc, 7, &isnull));
	t->current = DatumGetBool(SPI_getbinval(tup, desc, 8, &isnull));
	t->file_content = DatumGetByteaPCopy(SPI_getbinval(tup, desc, 9, &isnull));
	t->file_name = SPI_getvalue(tup, desc, 10);
}

/*
 * The transaction ends without a signature (refused, expired, failed): the
 * signature fails with the reason, the audit chain says why.
 */
static void
end_without(Txn *t, const char *state, const char *reason)
{
	Datum		v[3];
	JsonbBuild *b;
	const char *action;
	int64		actor = 0;

	v[0] = Int64GetDatum(t->id);
	v[1] = CStringGetTextDatum(state);
	v[2] = CStringGetTextDatum(reason);
	if (ioffice_exec(&end_plan, v, NULL, 0) != SPI_OK_UPDATE)
		elog(ERROR, "ioffice: could not end remote signing transaction %lld", (long long) t->id);
	v[0] = Int64GetDatum(t->signature);
	v[1] = v[2];
	if (ioffice_exec(&failed_plan, v, NULL, 0) != SPI_OK_UPDATE)
		elog(ERROR, "ioffice: could not record signature %lld", (long long) t->signature);
	if (SPI_processed != 1)
		return;
	if (strcmp(state, "refused") == 0)
	{
		/* the person refused, on their phone */
		action = "signing_declined";
		actor = t->person;
	}
	else if (strcmp(state, "expired") == 0)
		action = "signing_expired";
	else
		action = "signing_failed";
	b = ioffice_jsonb_begin();
	ioffice_jsonb_add_text(b, "via", "remote");
	ioffice_jsonb_add_text(b, "provider", t->provider);
	ioffice_jsonb_add_text(b, "transaction", t->transaction_id);
	ioffice_jsonb_add_int(b, "file", t->file);
	ioffice_jsonb_add_text(b, "outcome", state);
	ioffice_jsonb_add_text(b, "reason", reason);
	audit_step(t->document, actor, t->signature, action, "failed", b);
}

/* the service's signature (base64) embedded, as submit_signature() embeds */
static void
confirmed(Txn *t, const char *b64, int b64_len)
{
	int			max = pg_b64_dec_len(b64_len);
	char	   *raw = palloc(max + 1);
	int			len = pg_b64_decode(b64, b64_len, raw, max);
	StringInfoData content;
	bytea	   *der;
	int64		signed_by = 0;
	int64		signed_file = 0;
	const char *form = NULL;
	const char *message;
	const char *detail;
	Datum		v[4];
	char		n[4] = {' ', ' ', ' ', ' '};
	JsonbBuild *b;

	if (len <= 0)
	{
		end_without(t, "failed", psprintf("the signing service \"%s\" answered garbage: its signature is not base64",
										  t->provider));
		return;
	}
	read_txn_bytes(t);
	if (!t->current)
	{
		end_without(t, "failed", "the file was replaced or removed while the signer was asked");
		return;
	}
	initStringInfo(&content);
	if (t->prepared)
	{
		const char *prep = VARDATA_ANY(t->prepared);

		appendBinaryStringInfo(&content, prep, t->br[1]);
		appendBinaryStringInfo(&content, prep + t->br[2], t->br[3]);
	}
	else
		appendBinaryStringInfo(&content, VARDATA_ANY(t->file_content),
							   VARSIZE_ANY_EXHDR(t->file_content));
	der = ioffice_token_answer_cms(t->signature, t->certificate,
								   (const uint8 *) VARDATA_ANY(t->content_digest),
								   (const uint8 *) VARDATA_ANY(t->attrs_digest),
								   raw, len, content.data, content.len, t->person,
								   &signed_by, &form, &message, &detail);
	if (der == NULL)
	{
		end_without(t, "failed", psprintf("the signature from the signing service \"%s\" is not accepted: %s%s%s",
										  t->provider, message, detail ? ": " : "",
										  detail ? detail : ""));
		return;
	}
	/*
	 * PAdES B-T: the system adds the signature timestamp to the accepted
	 * CMS (timestamp.c); without one the signature fails, never made
	 * without its timestamp.
	 */
	if (ioffice_timestamp_wanted())
	{
		char	   *why = NULL;
		bytea	   *stamped = ioffice_timestamp_cms(der, &why);

		if (stamped == NULL)
		{
			end_without(t, "failed", psprintf("the signature from the signing service \"%s\" cannot be timestamped: %s",
											  t->provider, why));
			return;
		}
		der = stamped;
	}
	if (t->prepared)
	{
		char	   *signed_pdf = ioffice_pdf_embed(VARDATA_ANY(t->prepared),
												   VARSIZE_ANY_EXHDR(t->prepared), t->br, der);
		size_t		signed_len = VARSIZE_ANY_EXHDR(t->prepared);

		if (signed_pdf == NULL)
		{
			end_without(t, "failed", psprintf("the signature from the signing service \"%s\" does not fit the room reserved in the PDF",
											  t->provider));
			return;
		}
		/* PAdES B-LT: the chains and lists in the document security store */
		if (ioffice_timestamp_wanted())
		{
			char	   *why = NULL;

			signed_pdf = ioffice_pdf_add_dss(signed_pdf, signed_len, der, true, &signed_len, &why);
			if (signed_pdf == NULL)
			{
				end_without(t, "failed", why);
				return;
			}
		}
		signed_file = ioffice_pdf_store_version(t->document, t->file_name, t->file, t->person,
												signed_pdf, signed_len);
	}
	v[0] = Int64GetDatum(t->signature);
	v[1] = PointerGetDatum(der);
	v[2] = Int64GetDatum(signed_by);
	v[3] = Int64GetDatum(signed_file);
	n[3] = signed_file ? ' ' : 'n';
	if (ioffice_exec(&done_plan, v, n, 0) != SPI_OK_UPDATE || SPI_processed != 1)
		elog(ERROR, "ioffice: could not record signature %lld", (long long) t->signature);
	v[0] = Int64GetDatum(t->id);
	v[1] = CStringGetTextDatum("confirmed");
	n[2] = 'n';
	if (ioffice_exec(&end_plan, v, n, 0) != SPI_OK_UPDATE || SPI_processed != 1)
		elog(ERROR, "ioffice: could not end remote signing transaction %lld", (long long) t->id);

	b = ioffice_jsonb_begin();
	ioffice_jsonb_add_int(b, "file", t->file);
	ioffice_jsonb_add_text(b, "kind", "personal");
	ioffice_jsonb_add_int(b, "certificate", signed_by);
	if (signed_file)
		ioffice_jsonb_add_int(b, "signed_file", signed_file);
	ioffice_jsonb_add_text(b, "via", "remote");
	ioffice_jsonb_add_text(b, "provider", t->provider);
	ioffice_jsonb_add_text(b, "transaction", t->transaction_id);
	ioffice_jsonb_add_text(b, "form", form);
	/* the person confirmed it, on their phone */
	ioffice_audit_in_chain(ioffice_document_chain(t->document), t->person, 0, "signature",
						   t->signature, "signed", "pending", "done", ioffice_jsonb_end(b));
}

/* an answer's text for a reason: valid text, clipped */
static char *
quoted(RemoteCall *c)
{
	int			valid = pg_encoding_verifymbstr(GetDatabaseEncoding(), c->answer.data, c->answer.len);

	if (valid <= 0)
		return "";
	return psprintf(": %.*s", pg_mbcliplen(c->answer.data, valid, REASON_KEEP), c->answer.data);
}

/* the answer's JSON object, or NULL when it is not one */
static Jsonb *
answer_json(RemoteCall *c)
{
	JsonLexContext *lex;
	Jsonb	   *j;

	if (c->too_long || c->answer.len == 0 ||
		!pg_verifymbstr(c->answer.data, c->answer.len, true))
		return NULL;
	lex = makeJsonLexContextCstringLen(c->answer.data, c->answer.len, GetDatabaseEncoding(), true);
	if (pg_parse_json(lex, &nullSemAction) != JSON_SUCCESS)
		return NULL;
	j = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(c->answer.data)));
	if (!JB_ROOT_IS_OBJECT(j))
		return NULL;
	return j;
}

/* a string member, or NULL */
static JsonbValue *
string_member(Jsonb *j, const char *key)
{
	JsonbValue *v = ioffice_jsonb_get(j, key);

	return v != NULL && v->type == jbvString ? v : NULL;
}

/* the first of "signatures", a string, or NULL */
static JsonbValue *
first_signature(Jsonb *j, bool *present)
{
	JsonbValue *v = ioffice_jsonb_get(j, "signatures");
	JsonbValue *first;

	*present = v != NULL;
	if (v == NULL || v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
		return NULL;
	first = getIthJsonbValueFromContainer(v->val.binary.data, 0);
	return first != NULL && first->type == jbvString ? first : NULL;
}

static void
record_answer(void *arg)
{
	RemoteCall *c = (RemoteCall *) arg;
	Txn			t;
	Jsonb	   *j;
	Datum		v[3];

	if (!read_txn(&t, c->txn) || strcmp(t.state, "pending") != 0)
		return;
	if (strcmp(t.signature_status, "pending") != 0)
	{
		v[0] = Int64GetDatum(t.id);
		v[1] = CStringGetTextDatum("failed");
		v[2] = CStringGetTextDatum("the signature is no longer pending");
		ioffice_exec(&end_plan, v, NULL, 0);
		return;
	}

	/* no answer, or a server error: the service is down */
	if (c->result != CURLE_OK || c->http_status >= 500)
	{
		char	   *why = c->result != CURLE_OK
			? psprintf("the signing service \"%s\" did not answer: %s", t.provider,
					   c->curl_error[0] ? c->curl_error : curl_easy_strerror(c->result))
			: psprintf("the signing service \"%s\" answered HTTP %ld%s", t.provider,
					   c->http_status, quoted(c));

		ioffice_worker_note_error(why);
		if (c->sign || t.failures + 1 >= POLL_FAILURES_MAX)
		{
			end_without(&t, "failed", why);
			return;
		}
		v[0] = Int64GetDatum(t.id);
		v[1] = Int32GetDatum(t.failures + 1);
		v[2] = Int32GetDatum(ioffice_remote_signing_poll);
		ioffice_exec(&polled_plan, v, NULL, 0);
		return;
	}
	if (c->http_status < 200 || c->http_status >= 300)
	{
		end_without(&t, "failed", psprintf("the signing service \"%s\" refused the request: HTTP %ld%s",
										   t.provider, c->http_status, quoted(c)));
		return;
	}
	j = answer_json(c);
	if (j == NULL)
	{
		end_without(&t, "failed", psprintf("the signing service \"%s\" answered garbage%s",
										   t.provider, quoted(c)));
		return;
	}

	if (c->sign)
	{
		bool		present;
		JsonbValue *sig = first_signature(j, &present);
		JsonbValue *response = string_member(j, "responseID");

		if (sig != NULL)
			confirmed(&t, sig->val.string.val, sig->val.string.len);
		else if (!present && response != NULL && response->val.string.len > 0 &&
				 response->val.string.len <= 500)
		{
			v[0] = Int64GetDatum(t.id);
			v[1] = PointerGetDatum(cstring_to_text_with_len(response->val.string.val,
															response->val.string.len));
			v[2] = Int32GetDatum(ioffice_remote_signing_poll);
			if (ioffice_exec(&accepted_plan, v, NULL, 0) != SPI_OK_UPDATE)
				elog(ERROR, "ioffice: could not record remote signing transaction %lld", (long long) t.id);
		}
		else
			end_without(&t, "failed", psprintf("the signing service \"%s\" answered garbage%s",
											   t.provider, quoted(c)));
		return;
	}
	else
	{
		JsonbValue *status = string_member(j, "status");
		char	   *s = status ? pnstrdup(status->val.string.val, status->val.string.len) : "";

		if (strcmp(s, "pending") == 0)
		{
			v[0] = Int64GetDatum(t.id);
			v[1] = Int32GetDatum(0);
			v[2] = Int32GetDatum(ioffice_remote_signing_poll);
			ioffice_exec(&polled_plan, v, NULL, 0);
		}
		else if (strcmp(s, "signed") == 0)
		{
			bool		present;
			JsonbValue *sig = first_signature(j, &present);

			if (sig != NULL)
				confirmed(&t, sig->val.string.val, sig->val.string.len);
			else
				end_without(&t, "failed", psprintf("the signing service \"%s\" answered garbage: signed, without a signature",
												   t.provider));
		}
		else if (strcmp(s, "refused") == 0)
			end_without(&t, "refused", psprintf("the signer refused on the signing service \"%s\"", t.provider));
		else if (strcmp(s, "expired") == 0)
			end_without(&t, "expired", psprintf("the signer did not confirm in time on the signing service \"%s\"",
												t.provider));
		else
			end_without(&t, "failed", psprintf("the signing service \"%s\" answered garbage%s",
											   t.provider, quoted(c)));
	}
}

/* a transaction whose answer could not be recorded: failed with the error */
typedef struct FailArg
{
	int64		txn;
	const char *reason;
} FailArg;

static void
fail_txn(void *arg)
{
	FailArg    *f = (FailArg *) arg;
	Txn			t;

	if (!read_txn(&t, f->txn) || strcmp(t.state, "pending") != 0)
		return;
	end_without(&t, "failed", f->reason);
}

static void
expire_txn(void *arg)
{
	Txn			t;

	if (!read_txn(&t, *(int64 *) arg) || strcmp(t.state, "pending") != 0)
		return;
	end_without(&t, "expired",
				psprintf("the signer did not confirm within %d s on the signing service \"%s\"",
						 ioffice_remote_signing_expiry, t.provider));
}

/* one transaction's step, its failure recorded on its own when it fails */
static void
guarded(RemoteStep fn, void *arg, int64 txn)
{
	ErrorData  *edata = in_subtransaction(fn, arg);

	if (edata != NULL)
	{
		FailArg		f = {txn, edata->message};

		ioffice_worker_note_error(edata->message);
		edata = in_subtransaction(fail_txn, &f);
		if (edata != NULL)
			elog(WARNING, "ioffice worker: remote signing transaction %lld could not be recorded as failed (%s); it stays pending",
				 (long long) txn, edata->message);
	}
}

static void
record_answers(void)
{
	for (int i = 0; i < ncalls; i++)
	{
		RemoteCall *c = &calls[i];

		if (c->state != CALL_DONE)
			continue;
		guarded(record_answer, c, c->txn);
		c->state = CALL_FREE;
	}
	first_done_at = 0;
}

/* pending transactions past their expiry: expired */
static void
expire_overdue(void)
{
	Datum		arg[1];
	int			n;
	int64	   *ids;

	arg[0] = PointerGetDatum(busy_ids());
	if (ioffice_exec(&overdue_plan, arg, NULL, 0) != SPI_OK_SELECT)
		elog(ERROR, "ioffice: could not read the remote signing transactions");
	n = (int) SPI_processed;
	ids = palloc(sizeof(int64) * Max(n, 1));
	for (int i = 0; i < n; i++)
		ioffice_get_int64(i, 1, &ids[i]);
	for (int i = 0; i < n; i++)
		guarded(expire_txn, &ids[i], ids[i]);
	arg[0] = PointerGetDatum(busy_ids());
	if (ioffice_exec(&orphans_plan, arg, NULL, 0) != SPI_OK_UPDATE)
		elog(ERROR, "ioffice: could not update the remote signing transactions");
}

/* ------------------------------------------------------------------------
 * Taking due calls
 * ------------------------------------------------------------------------
 */

static void
append_json_field(StringInfo buf, const char *key, const char *value, bool first)
{
	if (!first)
		appendStringInfoString(buf, ", ");
	escape_json(buf, key);
	appendStringInfoString(buf, ": ");
	escape_json(buf, value);
}

static void
ready(RemoteCall *c, HeapTuple tup, TupleDesc desc)
{
	MemoryContext old;
	bool		isnull;
	StringInfoData body;
	char	   *base;
	char	   *transaction_id;
	char	   *hash;

	MemoryContextReset(c->cxt);
	old = MemoryContextSwitchTo(c->cxt);
	c->txn = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	c->sign = DatumGetBool(SPI_getbinval(tup, desc, 2, &isnull));
	c->provider = SPI_getvalue(tup, desc, 3);
	base = SPI_getvalue(tup, desc, 4);
	c->client_id = SPI_getvalue(tup, desc, 5);
	c->client_secret = SPI_getvalue(tup, desc, 6);
	c->timeout_ms = DatumGetInt32(SPI_getbinval(tup, desc, 7, &isnull));
	transaction_id = SPI_getvalue(tup, desc, 8);
	initStringInfo(&body);
	appendStringInfoChar(&body, '{');
	if (c->sign)
	{
		int			left = DatumGetInt32(SPI_getbinval(tup, desc, 14, &isnull));
		int64		signature = DatumGetInt64(SPI_getbinval(tup, desc, 15, &isnull));

		c->url = psprintf("%s/signatures/signHash", base);
		hash = SPI_getvalue(tup, desc, 12);
		/* (PostgreSQL's base64 breaks lines every 76 characters) */
		{
			char	   *w = hash;

			for (char *r = hash; *r; r++)
				if (*r != '\n')
					*w++ = *r;
			*w = '\0';
		}
		append_json_field(&body, "credentialID", SPI_getvalue(tup, desc, 11), true);
		append_json_field(&body, "userID", SPI_getvalue(tup, desc, 10), false);
		appendStringInfoString(&body, ", \"hashes\": [");
		escape_json(&body, hash);
		appendStringInfoChar(&body, ']');
		append_json_field(&body, "hashAlgorithmOID", OID_SHA256, false);
		append_json_field(&body, "signAlgo", SPI_getvalue(tup, desc, 13), false);
		append_json_field(&body, "operationMode", "A", false);
		appendStringInfo(&body, ", \"validity_period\": %d", left);
		append_json_field(&body, "transactionID", transaction_id, false);
		append_json_field(&body, "clientData", transaction_id, false);
		append_json_field(&body, "description",
						  psprintf("ioffice signature %lld", (long long) signature), false);
	}
	else
	{
		c->url = psprintf("%s/signatures/status", base);
		append_json_field(&body, "transactionID", transaction_id, true);
		append_json_field(&body, "responseID", SPI_getvalue(tup, desc, 9), false);
	}
	appendStringInfoChar(&body, '}');
	c->body = body.data;
	initStringInfo(&c->answer);
	c->too_long = false;
	c->headers = curl_slist_append(NULL, "Content-Type: application/json");
	c->headers = curl_slist_append(c->headers, "Expect:");
	MemoryContextSwitchTo(old);
	if (c->headers == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	c->state = CALL_READY;
}

/* due calls for the free slots; returns how many were taken */
static int
take(int nfree)
{
	Datum		arg[2];
	int			n;
	int			k = 0;

	arg[0] = Int32GetDatum(nfree);
	arg[1] = PointerGetDatum(busy_ids());
	if (ioffice_exec(&due_plan, arg, NULL, 0) != SPI_OK_SELECT)
		elog(ERROR, "ioffice: could not read the remote signing transactions");
	n = (int) SPI_processed;
	for (int i = 0; i < ncalls && k < n; i++)
		if (calls[i].state == CALL_FREE)
			ready(&calls[i], SPI_tuptable->vals[k++], SPI_tuptable->tupdesc);
	return n;
}

static void
plan_next_look(TimestampTz now)
{
	Datum		arg[1];
	Datum		v;
	bool		isnull;
	long		ms = ioffice_worker_naptime * 1000L;

	arg[0] = PointerGetDatum(busy_ids());
	if (ioffice_exec(&next_look_plan, arg, NULL, 1) != SPI_OK_SELECT)
		elog(ERROR, "ioffice: could not read the remote signing transactions");
	v = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
	{
		double		due = DatumGetFloat8(DirectFunctionCall1(numeric_float8, v));

		/* due rows skipped (locked, or no free slot): again in a while, not in a busy loop */
		if (due <= 0)
			ms = 200;
		else if (due + 1 < (double) ms)
			ms = (long) due + 1;
	}
	next_look = TimestampTzPlusMilliseconds(now, ms);
	look_now = false;
}

/*
 * One round: answers recorded, new signatures prepared (when PREPARE),
 * overdue transactions expired and due calls taken, in one transaction when
 * there is something to do; the calls taken start once it committed.
 * Returns true when more signatures may wait to be prepared.
 */
static bool
remote_round(bool prepare)
{
	TimestampTz now = GetCurrentTimestamp();
	int			nfree;
	bool		look;
	bool		more = false;

	ensure_calls();
	collect();
	nfree = count_calls(CALL_FREE) + count_calls(CALL_DONE);
	look = nfree > 0 && (look_now || now >= next_look);
	if (!prepare && count_calls(CALL_DONE) == 0 && !look)
		return false;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (!OidIsValid(get_extension_oid("ioffice", true)))
	{
		CommitTransactionCommand();
		return false;
	}

	/*
	 * Not waiting for the WAL flush at commit: a round lost with a crash
	 * (at most wal_writer_delay of them) is done again from the rows as
	 * they were: a poll recorded is polled again, a hash accepted is sent
	 * again with the same transaction id, a confirmation is fetched again
	 * and embedded then, once; nothing outside learns of a round but the
	 * service, whose answers repeat.  With a thousand pending transactions
	 * a flush per round would be the limit of the polling.
	 */
	(void) set_config_option("synchronous_commit", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, 0, false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "ioffice worker: remote signing");
	ioffice_engine_enter();

	record_answers();
	if (prepare)
	{
		more = prepare_new(PREPARE_PER_ROUND) >= PREPARE_PER_ROUND;
		last_prepare = now;
		prepare_more = more;
	}
	nfree = count_calls(CALL_FREE);
	if (nfree > 0 && (look_now || now >= next_look))
	{
		int			taken;

		expire_overdue();
		taken = take(nfree);
		if (taken >= nfree)
			look_now = true;
		else
			plan_next_look(now);
	}

	ioffice_engine_leave();
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);

	for (int i = 0; i < ncalls; i++)
		if (calls[i].state == CALL_READY)
			start(&calls[i]);
	return more;
}

/* an error escaping a round ends the process: remembered for worker_status first */
static bool
guarded_round(bool prepare)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	bool		more = false;

	PG_TRY();
	{
		more = remote_round(prepare);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		ioffice_worker_note_error(edata->message);
		PG_RE_THROW();
	}
	PG_END_TRY();
	return more;
}

/*
 * The signer's step (worker.c): answers recorded, new signatures prepared,
 * due calls started.  True when more signatures wait to be prepared.
 *
 * BUSY: the signer's last batch was full, more jobs wait.  Looking for new
 * signatures (new_plan) reads every pending signature, and those with a
 * transaction at a service stay pending for minutes: with a thousand of
 * them and thousands of other jobs queued, one look took tens of
 * milliseconds (tests/bench/remote_pending), as long as the batch of a
 * hundred signatures it followed, and it followed every batch.  So while
 * the signer is busy it looks at most every PREPARE_BUSY_MS, or again at
 * once when its last look found a full round; when it is not (a batch that
 * was not full: it was woken, or woke, with the queue drained) it looks
 * every time, so a new remote signature is sent without delay.  Answers
 * and due polls are not held back: they need no look at the queue.
 */
bool
ioffice_worker_remote_step(bool busy)
{
	bool		prepare = !busy || prepare_more ||
		TimestampDifferenceExceeds(last_prepare, GetCurrentTimestamp(), PREPARE_BUSY_MS);

	return guarded_round(prepare);
}

bool
ioffice_worker_remote_flying(void)
{
	return count_calls(CALL_FLYING) > 0;
}

/* how long the signer may sleep before a remote call is due (at most max_ms) */
long
ioffice_worker_remote_wait_ms(long max_ms)
{
	long		ms;

	if (look_now)
		return 0;
	if (next_look == 0)
		return max_ms;
	ms = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), next_look);
	return Max(Min(ms, max_ms), 0);
}

/*
 * The signer's sleep while calls are in flight: their sockets and, every
 * POLL_MS, the latch; answers recorded and due calls started as they come.
 * Returns when the latch is set (work for the signer's other steps), a
 * reload is asked for, or MAX_MS passed.
 */
void
ioffice_worker_remote_wait(long max_ms)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), max_ms);

	for (;;)
	{
		long		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);

		CHECK_FOR_INTERRUPTS();
		if (left <= 0 || ConfigReloadPending)
			return;
		if (!PostmasterIsAlive())
			proc_exit(1);
		if (count_calls(CALL_FLYING) == 0)
		{
			int			rc;

			/* none in flight: until the next call is due */
			rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						   Min(left, ioffice_worker_remote_wait_ms(left) + 1), PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			if (rc & WL_LATCH_SET)
				return;
			(void) guarded_round(false);
			continue;
		}
		if (curl_multi_poll(multi, NULL, 0, Min(left, first_done_at ? GATHER_MS : POLL_MS),
							NULL) != CURLM_OK)
			elog(ERROR, "ioffice: libcurl failed");
		if (MyLatch->is_set)
		{
			ResetLatch(MyLatch);
			return;
		}
		collect();

		/*
		 * answers are recorded together: those that came within GATHER_MS
		 * of the first, or all once none is in flight; a transaction per
		 * answer would make the database the limit of a thousand polls
		 */
		if ((first_done_at != 0 &&
			 (count_calls(CALL_FLYING) == 0 ||
			  TimestampDifferenceExceeds(first_done_at, GetCurrentTimestamp(), GATHER_MS))) ||
			(count_calls(CALL_FREE) > 0 && (look_now || GetCurrentTimestamp() >= next_look)))
			(void) guarded_round(false);
	}
}
