/*-------------------------------------------------------------------------
 * outbox_delivery.c
 *	  The deliverer: a process of its own per database that POSTs due
 *	  outbox events with libcurl's multi interface and records every
 *	  outcome.
 *
 * Requests are in flight on at most ioffice.outbox_max_connections
 * connections, which libcurl keeps open, so a queue of any length never
 * costs more file descriptors than that.  No transaction is open while
 * requests are in flight: the deliverer takes due events in a short
 * transaction (FOR UPDATE SKIP LOCKED, so rows a DBA holds are left alone)
 * and records outcomes in another, as they come, in one statement per
 * round; a free connection gets the next due event at once, so a slow
 * endpoint holds only the connections of its own requests, never a batch
 * of others.  A crash before an outcome is committed leaves its row pending,
 * so it is sent again: delivery is at least once, and the idempotency key
 * (the same in every attempt) lets the receiver drop a repeat.  A failed
 * attempt is tried again after an exponential backoff with jitter; after
 * the endpoint's last attempt the event is dead, with its last error, until
 * outbox_requeue().
 *
 * Free connections go first to the endpoints with the fewest requests in
 * flight.  When every connection is taken and an event of another endpoint
 * is due, a request unanswered for ioffice.outbox_batch_seconds gives its
 * connection up (a failed attempt, tried again later): an endpoint that
 * never answers holds a connection for at most that long while others
 * wait, whatever its timeout_ms.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "common/hmac.h"
#include "common/sha2.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/postmaster.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/pmsignal.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "ioffice.h"
#include "worker.h"

int			ioffice_outbox_batch = 500;
int			ioffice_outbox_max_connections = 16;
int			ioffice_outbox_retry_base = 2000;	/* ms */
int			ioffice_outbox_retry_max = 3600000; /* ms */
int			ioffice_outbox_batch_seconds = 20;

#define RESPONSE_KEEP 200		/* bytes of an error answer kept for last_error */
#define RECEIPT_KEEP 4096		/* bytes of a witness's answer kept as its receipt */
#define POLL_MS 100				/* while requests are in flight: latch looked at this often */
#define GIVE_UP_CHECK_MS 1000	/* how often to ask whether others wait for a connection */

typedef enum SlotState
{
	SLOT_FREE,
	SLOT_READY,					/* taken, started once the taking commits */
	SLOT_FLYING,
	SLOT_DONE					/* its outcome waits to be recorded */
} SlotState;

/* one connection slot and the request it carries */
typedef struct Delivery
{
	SlotState	state;
	CURL	   *easy;
	MemoryContext cxt;			/* the request's strings, reset at reuse */
	int64		id;
	int32		attempts;		/* as taken: an outcome is recorded only if unchanged */
	int64		endpoint_id;
	char	   *endpoint;
	char	   *url;
	char	   *body;
	size_t		body_len;
	long		timeout_ms;
	struct curl_slist *headers;
	TimestampTz started_at;
	/* outcome */
	bool		ok;
	long		http_status;	/* 0: no answer */
	char	   *error;
	char		answer[RECEIPT_KEEP + 1];
	size_t		answer_len;
	bool		keeps_receipt;	/* an audit.checkpoint event: its answer is kept */
	char	   *receipt;		/* the 2xx answer of one, NULL: none */
	char		curl_error[CURL_ERROR_SIZE];
} Delivery;

static CURLM *multi = NULL;
static Delivery *slots = NULL;
static int	nslots = 0;

/* when to look for due events: at once, or at next_look */
static bool look_now = true;
static TimestampTz next_look = 0;
static TimestampTz next_give_up_check = 0;
static bool extension_missing = false;
static const char *shown_state = NULL;

/*
 * Due events, up to $1 per enabled endpoint, not in flight ($2); the rows
 * are locked until the taking commits, and those another transaction holds
 * are skipped.  The bodies are read for the events chosen only.
 */
static IofficePlan due_plan = {
	NULL,
	"SELECT o.id, o.attempts, e.id, o.next_attempt_at "
	"  FROM ioffice.endpoint e "
	"  CROSS JOIN LATERAL ( "
	"       SELECT o.id, o.attempts, o.next_attempt_at FROM ioffice.outbox o "
	"        WHERE o.endpoint_id = e.id AND o.status = 'pending' AND o.next_attempt_at <= now() "
	"          AND o.id <> ALL ($2) "
	"        ORDER BY o.next_attempt_at, o.id LIMIT $1 FOR UPDATE OF o SKIP LOCKED) o "
	" WHERE e.enabled "
	" ORDER BY e.id, o.next_attempt_at, o.id",
	2, {INT4OID, INT8ARRAYOID}
};

static IofficePlan request_plan = {
	NULL,
	"SELECT o.id, e.name, e.url, e.secret, e.timeout_ms, o.idempotency_key::text, o.event, "
	"       o.body::text "
	"  FROM ioffice.outbox o JOIN ioffice.endpoint e ON e.id = o.endpoint_id "
	" WHERE o.id = ANY ($1)",
	1, {INT8ARRAYOID}
};

/*
 * Outcomes in one statement, for the rows still as they were taken (a DBA
 * may have changed one meanwhile; one a DBA holds locked is skipped and
 * stays pending, to be sent again).  A failure waits base * 2^attempts (at
 * most retry_max), times a jitter in [0.5, 1.5) so that events that failed
 * together do not come back together.
 */
static IofficePlan record_plan = {
	NULL,
	"WITH mine AS (SELECT o.id FROM ioffice.outbox o WHERE o.id = ANY ($1) "
	"               FOR UPDATE SKIP LOCKED) "
	"UPDATE ioffice.outbox o "
	"   SET attempts = o.attempts + 1, last_attempt_at = clock_timestamp(), "
	"       last_status = r.http_status, last_error = r.error, receipt = r.receipt, "
	"       status = CASE WHEN r.ok THEN 'delivered' "
	"                     WHEN o.attempts + 1 >= e.max_attempts THEN 'dead' ELSE 'pending' END, "
	"       delivered_at = CASE WHEN r.ok THEN clock_timestamp() END, "
	"       next_attempt_at = CASE WHEN r.ok THEN o.next_attempt_at "
	"           ELSE clock_timestamp() + make_interval(secs => "
	"                least($6::float8, $5::float8 * power(2::float8, least(o.attempts, 40))) "
	"                * (0.5 + random()) / 1000.0) END "
	"  FROM unnest($1::bigint[], $2::bool[], $3::int[], $4::text[], $7::int[], $8::text[]) "
	"       AS r(id, ok, http_status, error, attempts, receipt), "
	"       ioffice.endpoint e "
	" WHERE o.id = r.id AND e.id = o.endpoint_id AND o.id IN (SELECT id FROM mine) "
	"   AND o.status = 'pending' AND o.attempts = r.attempts",
	8, {INT8ARRAYOID, BOOLARRAYOID, INT4ARRAYOID, TEXTARRAYOID, INT4OID, INT4OID, INT4ARRAYOID,
	TEXTARRAYOID}
};

/* when the next pending event not in flight is due, in ms from now */
static IofficePlan next_due_plan = {
	NULL,
	"SELECT extract(epoch FROM min(o.next_attempt_at) - clock_timestamp()) * 1000 "
	"  FROM ioffice.outbox o JOIN ioffice.endpoint e ON e.id = o.endpoint_id "
	" WHERE o.status = 'pending' AND e.enabled AND o.id <> ALL ($1)",
	1, {INT8ARRAYOID}
};

/* the endpoints with an event due that is not in flight */
static IofficePlan waiting_plan = {
	NULL,
	"SELECT e.id FROM ioffice.endpoint e "
	" WHERE e.enabled AND EXISTS ( "
	"       SELECT 1 FROM ioffice.outbox o "
	"        WHERE o.endpoint_id = e.id AND o.status = 'pending' AND o.next_attempt_at <= now() "
	"          AND o.id <> ALL ($1))",
	1, {INT8ARRAYOID}
};

void
ioffice_outbox_delivery_init(void)
{
	DefineCustomIntVariable("ioffice.outbox_batch",
							"Outbox events of one endpoint the deliverer takes at a time.",
							"Never more than there are free connections.",
							&ioffice_outbox_batch,
							500, 1, 10000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("ioffice.outbox_max_connections",
							"HTTP requests the deliverer has in flight at once (and connections it keeps open).",
							NULL,
							&ioffice_outbox_max_connections,
							16, 1, 256,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("ioffice.outbox_batch_seconds",
							"Seconds after which an unanswered request gives its connection up when another endpoint's event waits for one.",
							"It counts as a failed attempt and is tried again later: an endpoint that does not answer cannot hold a connection longer than this while others wait, whatever its timeout_ms.",
							&ioffice_outbox_batch_seconds,
							20, 1, 3600,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("ioffice.outbox_retry_base",
							"Wait before the second attempt of a failed delivery; it doubles with each attempt.",
							NULL,
							&ioffice_outbox_retry_base,
							2000, 10, 3600000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("ioffice.outbox_retry_max",
							"Longest wait between two attempts of a delivery.",
							NULL,
							&ioffice_outbox_retry_max,
							3600000, 10, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
}

/* libcurl's write callback: keep the start of the answer, for last_error */
static size_t
keep_answer(char *data, size_t size, size_t nmemb, void *arg)
{
	Delivery   *d = (Delivery *) arg;
	size_t		len = size * nmemb;
	size_t		room = (d->keeps_receipt ? RECEIPT_KEEP : RESPONSE_KEEP) - d->answer_len;

	if (room > 0)
	{
		size_t		n = Min(room, len);

		memcpy(d->answer + d->answer_len, data, n);
		d->answer_len += n;
		d->answer[d->answer_len] = '\0';
	}
	return len;
}

/* "sha256=<hex>": HMAC-SHA256 of the body with the endpoint's secret */
static char *
body_signature(const char *secret, const char *body, size_t len)
{
	pg_hmac_ctx *ctx = pg_hmac_create(PG_SHA256);
	uint8		mac[PG_SHA256_DIGEST_LENGTH];
	char		hex[PG_SHA256_DIGEST_LENGTH * 2 + 1];

	if (ctx == NULL ||
		pg_hmac_init(ctx, (const uint8 *) secret, strlen(secret)) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) body, len) < 0 ||
		pg_hmac_final(ctx, mac, sizeof(mac)) < 0)
		elog(ERROR, "ioffice: could not compute an HMAC: %s", pg_hmac_error(ctx));
	pg_hmac_free(ctx);
	hex_encode((const char *) mac, sizeof(mac), hex);
	hex[sizeof(hex) - 1] = '\0';
	return psprintf("X-Ioffice-Signature: sha256=%s", hex);
}

static void
show_state(const char *state)
{
	if (shown_state != state)
	{
		ioffice_worker_set_state(state);
		shown_state = state;
	}
}

/*
 * The connection slots follow ioffice.outbox_max_connections; they are
 * made again only when none is busy.
 */
static void
ensure_slots(void)
{
	int			i;

	if (multi == NULL)
	{
		multi = curl_multi_init();
		if (multi == NULL)
			elog(ERROR, "ioffice: could not initialise libcurl");
	}
	if (nslots == ioffice_outbox_max_connections)
		return;
	for (i = 0; i < nslots; i++)
		if (slots[i].state != SLOT_FREE)
			return;
	for (i = 0; i < nslots; i++)
	{
		curl_easy_cleanup(slots[i].easy);
		MemoryContextDelete(slots[i].cxt);
	}
	if (slots != NULL)
		pfree(slots);
	nslots = 0;
	slots = MemoryContextAllocZero(TopMemoryContext,
								   sizeof(Delivery) * ioffice_outbox_max_connections);
	for (i = 0; i < ioffice_outbox_max_connections; i++)
	{
		slots[i].cxt = AllocSetContextCreate(TopMemoryContext, "ioffice delivery",
											 ALLOCSET_SMALL_SIZES);
		slots[i].easy = curl_easy_init();
		if (slots[i].easy == NULL)
			elog(ERROR, "ioffice: could not initialise libcurl");
		nslots = i + 1;
	}
	curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long) nslots);
	curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long) nslots);
	curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long) nslots);
}

static int
count_slots(SlotState state)
{
	int			n = 0;

	for (int i = 0; i < nslots; i++)
		if (slots[i].state == state)
			n++;
	return n;
}

/* the ids of the slots in a state (or two) */
static ArrayType *
slot_ids(SlotState state, SlotState or_state)
{
	Datum	   *ids = palloc(sizeof(Datum) * Max(nslots, 1));
	int			n = 0;

	for (int i = 0; i < nslots; i++)
		if (slots[i].state == state || slots[i].state == or_state)
			ids[n++] = Int64GetDatum(slots[i].id);
	return construct_array(ids, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
}

/* the requests in flight (or about to be), for the queries that must skip them */
static ArrayType *
flying_ids(void)
{
	return slot_ids(SLOT_FLYING, SLOT_READY);
}

static void
start(Delivery *d)
{
	CURL	   *easy = d->easy;

	curl_easy_reset(easy);
	curl_easy_setopt(easy, CURLOPT_URL, d->url);
	/* http and https only, never redirected elsewhere */
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(easy, CURLOPT_POST, 1L);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDS, d->body);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) d->body_len);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, d->headers);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, d->timeout_ms);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, Min(d->timeout_ms, 10000L));
	/* no signals: timeouts must not raise SIGALRM in a server process */
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, keep_answer);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, d);
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, d->curl_error);
	curl_easy_setopt(easy, CURLOPT_USERAGENT, "ioffice/0.2");
	curl_easy_setopt(easy, CURLOPT_PRIVATE, d);
	d->curl_error[0] = '\0';
	d->started_at = GetCurrentTimestamp();
	if (curl_multi_add_handle(multi, easy) != CURLM_OK)
		elog(ERROR, "ioffice: could not start an HTTP request");
	d->state = SLOT_FLYING;
}

/* the request is over: its handle back, its outcome waiting to be recorded */
static void
done(Delivery *d)
{
	curl_multi_remove_handle(multi, d->easy);
	curl_slist_free_all(d->headers);
	d->headers = NULL;
	d->state = SLOT_DONE;
}

static void
finish(Delivery *d, CURLcode result)
{
	MemoryContext old = MemoryContextSwitchTo(d->cxt);

	curl_easy_getinfo(d->easy, CURLINFO_RESPONSE_CODE, &d->http_status);
	d->ok = result == CURLE_OK && d->http_status >= 200 && d->http_status < 300;
	if (result != CURLE_OK)
		d->error = pstrdup(d->curl_error[0] ? d->curl_error : curl_easy_strerror(result));
	else if (!d->ok)
	{
		/* the answer is the other system's bytes: keep what is valid text */
		int			valid = pg_encoding_verifymbstr(GetDatabaseEncoding(), d->answer,
													d->answer_len);

		d->error = psprintf("HTTP %ld%s%.*s", d->http_status, valid ? ": " : "",
							pg_mbcliplen(d->answer, valid, RESPONSE_KEEP), d->answer);
	}
	else if (d->keeps_receipt && d->answer_len > 0)
	{
		/* a witness's receipt of a checkpoint: what it answered, if text */
		int			valid = pg_encoding_verifymbstr(GetDatabaseEncoding(), d->answer,
													d->answer_len);

		if (valid > 0)
			d->receipt = pnstrdup(d->answer, valid);
	}
	MemoryContextSwitchTo(old);
	done(d);
}

/* the requests libcurl has finished */
static void
collect(void)
{
	int			running;
	int			queued;
	CURLMsg    *msg;

	if (curl_multi_perform(multi, &running) != CURLM_OK)
		elog(ERROR, "ioffice: libcurl failed");
	while ((msg = curl_multi_info_read(multi, &queued)) != NULL)
	{
		Delivery   *d = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &d);
		if (d == NULL || d->easy != msg->easy_handle || d->state != SLOT_FLYING)
			elog(ERROR, "ioffice: libcurl finished a request it was not given");
		finish(d, msg->data.result);
	}
}

/* every request dropped, nothing recorded: their rows stay pending */
static void
drop_all(void)
{
	for (int i = 0; i < nslots; i++)
	{
		if (slots[i].state == SLOT_FLYING)
			curl_multi_remove_handle(multi, slots[i].easy);
		curl_slist_free_all(slots[i].headers);
		slots[i].headers = NULL;
		slots[i].state = SLOT_FREE;
	}
}

/*
 * Every connection is taken: when an event of another endpoint waits, the
 * oldest request unanswered for ioffice.outbox_batch_seconds gives its
 * connection up, as a failed attempt.  Returns that request's endpoint (0:
 * none gave up).
 */
static int64
give_up_one(TimestampTz now)
{
	int64	   *waiting;
	int			nwaiting;
	Datum		arg[1];
	Delivery   *oldest = NULL;

	arg[0] = PointerGetDatum(flying_ids());
	if (ioffice_exec(&waiting_plan, arg, NULL, 0) != SPI_OK_SELECT)
		elog(ERROR, "ioffice: could not read the outbox");
	nwaiting = (int) SPI_processed;
	waiting = palloc(sizeof(int64) * Max(nwaiting, 1));
	for (int i = 0; i < nwaiting; i++)
		ioffice_get_int64(i, 1, &waiting[i]);

	for (int i = 0; i < nslots; i++)
	{
		Delivery   *d = &slots[i];
		bool		others_wait = false;

		if (d->state != SLOT_FLYING ||
			TimestampDifferenceMilliseconds(d->started_at, now) < ioffice_outbox_batch_seconds * 1000L)
			continue;
		for (int w = 0; w < nwaiting; w++)
			others_wait = others_wait || waiting[w] != d->endpoint_id;
		if (others_wait && (oldest == NULL || d->started_at < oldest->started_at))
			oldest = d;
	}
	if (oldest == NULL)
		return 0;
	oldest->ok = false;
	oldest->http_status = 0;
	oldest->error = MemoryContextStrdup(oldest->cxt,
										psprintf("no answer within %d s (ioffice.outbox_batch_seconds) while events for other endpoints waited; the connection went to them",
												 ioffice_outbox_batch_seconds));
	done(oldest);
	return oldest->endpoint_id;
}

/*
 * Record the outcomes that wait (one statement), count them for
 * worker_status; the slots are free again.
 */
static void
record_outcomes(void)
{
	int			n = count_slots(SLOT_DONE);
	Datum	   *ids = palloc(sizeof(Datum) * n);
	Datum	   *oks = palloc(sizeof(Datum) * n);
	Datum	   *codes = palloc(sizeof(Datum) * n);
	Datum	   *errors = palloc(sizeof(Datum) * n);
	Datum	   *attempts = palloc(sizeof(Datum) * n);
	bool	   *error_nulls = palloc(sizeof(bool) * n);
	bool	   *code_nulls = palloc(sizeof(bool) * n);
	Datum	   *receipts = palloc(sizeof(Datum) * n);
	bool	   *receipt_nulls = palloc(sizeof(bool) * n);
	int			dims[1] = {n};
	int			lbs[1] = {1};
	Datum		arg[8];
	Delivery   *last_failed = NULL;
	int64		failed = 0;
	int			k = 0;

	for (int i = 0; i < nslots; i++)
	{
		Delivery   *d = &slots[i];

		if (d->state != SLOT_DONE)
			continue;
		ids[k] = Int64GetDatum(d->id);
		oks[k] = BoolGetDatum(d->ok);
		/* no answer (refused, timed out): no status */
		code_nulls[k] = d->http_status == 0;
		codes[k] = Int32GetDatum((int32) d->http_status);
		error_nulls[k] = d->error == NULL;
		errors[k] = d->error ? CStringGetTextDatum(d->error) : (Datum) 0;
		attempts[k] = Int32GetDatum(d->attempts);
		receipt_nulls[k] = d->receipt == NULL;
		receipts[k] = d->receipt ? CStringGetTextDatum(d->receipt) : (Datum) 0;
		if (!d->ok)
		{
			failed++;
			last_failed = d;
		}
		k++;
	}
	/* the slot keeps one message, the last: one lock, not one per failure */
	if (last_failed != NULL)
		ioffice_worker_note_error(psprintf("outbox event " INT64_FORMAT " to %s: %s",
										   last_failed->id, last_failed->endpoint,
										   last_failed->error));
	arg[0] = PointerGetDatum(construct_array(ids, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	arg[1] = PointerGetDatum(construct_array(oks, n, BOOLOID, 1, true, TYPALIGN_CHAR));
	arg[2] = PointerGetDatum(construct_md_array(codes, code_nulls, 1, dims, lbs,
												INT4OID, 4, true, TYPALIGN_INT));
	arg[3] = PointerGetDatum(construct_md_array(errors, error_nulls, 1, dims, lbs,
												TEXTOID, -1, false, TYPALIGN_INT));
	arg[4] = Int32GetDatum(ioffice_outbox_retry_base);
	arg[5] = Int32GetDatum(ioffice_outbox_retry_max);
	arg[6] = PointerGetDatum(construct_array(attempts, n, INT4OID, 4, true, TYPALIGN_INT));
	arg[7] = PointerGetDatum(construct_md_array(receipts, receipt_nulls, 1, dims, lbs,
												TEXTOID, -1, false, TYPALIGN_INT));
	if (ioffice_exec(&record_plan, arg, NULL, 0) != SPI_OK_UPDATE)
		elog(ERROR, "ioffice: could not record deliveries");
	ioffice_worker_count(n - failed, failed);
	for (int i = 0; i < nslots; i++)
		if (slots[i].state == SLOT_DONE)
			slots[i].state = SLOT_FREE;
}

/* a free slot gets the event of row `row` of due_plan's result */
static void
ready(Delivery *d, HeapTuple tup, TupleDesc desc)
{
	bool		isnull;

	MemoryContextReset(d->cxt);
	memset(&d->id, 0, sizeof(Delivery) - offsetof(Delivery, id));
	d->id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	d->attempts = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
	d->endpoint_id = DatumGetInt64(SPI_getbinval(tup, desc, 3, &isnull));
	d->state = SLOT_READY;
}

/* the requests of the READY slots: URL, body, headers */
static void
prepare_requests(void)
{
	Datum		arg[1];
	uint64		n;

	arg[0] = PointerGetDatum(slot_ids(SLOT_READY, SLOT_READY));
	if (ioffice_exec(&request_plan, arg, NULL, 0) != SPI_OK_SELECT)
		elog(ERROR, "ioffice: could not read the outbox");
	n = SPI_processed;
	for (uint64 r = 0; r < n; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		int64		id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));

		for (int i = 0; i < nslots; i++)
		{
			Delivery   *d = &slots[i];
			MemoryContext old;
			char	   *secret;
			char	   *key;
			char	   *event;

			if (d->state != SLOT_READY || d->id != id)
				continue;
			old = MemoryContextSwitchTo(d->cxt);
			d->endpoint = SPI_getvalue(tup, desc, 2);
			d->url = SPI_getvalue(tup, desc, 3);
			secret = SPI_getvalue(tup, desc, 4);
			d->timeout_ms = DatumGetInt32(SPI_getbinval(tup, desc, 5, &isnull));
			key = SPI_getvalue(tup, desc, 6);
			event = SPI_getvalue(tup, desc, 7);
			d->body = SPI_getvalue(tup, desc, 8);
			d->body_len = strlen(d->body);
			d->keeps_receipt = strcmp(event, "audit.checkpoint") == 0;
			/* libcurl copies the header strings */
			d->headers = curl_slist_append(NULL, "Content-Type: application/json");
			d->headers = curl_slist_append(d->headers, "Expect:");	/* no 100-continue round trip */
			d->headers = curl_slist_append(d->headers, psprintf("Idempotency-Key: %s", key));
			d->headers = curl_slist_append(d->headers, psprintf("X-Ioffice-Event: %s", event));
			d->headers = curl_slist_append(d->headers,
										   body_signature(secret, d->body, d->body_len));
			MemoryContextSwitchTo(old);
			if (d->headers == NULL)
				ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
		}
	}
	/* a row gone meanwhile (it was locked by us: it cannot be) frees its slot */
	for (int i = 0; i < nslots; i++)
		if (slots[i].state == SLOT_READY && slots[i].url == NULL)
			slots[i].state = SLOT_FREE;
}

/*
 * Take due events for the free slots: each free slot in turn goes to the
 * endpoint with the fewest requests in flight (the earliest due event first
 * among equals), the endpoint that just gave a connection up last.
 * Returns how many were taken; *more says whether more may be due (an
 * endpoint had as many as were asked for).
 */
static int
take(int nfree, int64 gave_up, bool *more)
{
	Datum		arg[2];
	int			n;
	int			ngroups = 0;
	int		   *first;
	int		   *count;
	int		   *next;
	int		   *in_flight;
	int64	   *endpoint;
	int			taken = 0;
	int			limit = Min(nfree, ioffice_outbox_batch);

	*more = false;
	arg[0] = Int32GetDatum(limit);
	arg[1] = PointerGetDatum(flying_ids());
	if (ioffice_exec(&due_plan, arg, NULL, 0) != SPI_OK_SELECT)
		elog(ERROR, "ioffice: could not read the outbox");
	n = (int) SPI_processed;
	if (n == 0)
		return 0;

	/* the rows come grouped by endpoint, each group in due order */
	first = palloc(sizeof(int) * n);
	count = palloc0(sizeof(int) * n);
	next = palloc0(sizeof(int) * n);
	in_flight = palloc0(sizeof(int) * n);
	endpoint = palloc(sizeof(int64) * n);
	for (int r = 0; r < n; r++)
	{
		int64		e = 0;

		ioffice_get_int64(r, 3, &e);
		if (ngroups == 0 || endpoint[ngroups - 1] != e)
		{
			endpoint[ngroups] = e;
			first[ngroups] = r;
			for (int i = 0; i < nslots; i++)
				if (slots[i].state == SLOT_FLYING && slots[i].endpoint_id == e)
					in_flight[ngroups]++;
			ngroups++;
		}
		if (++count[ngroups - 1] >= limit)
			*more = true;
	}

	for (int i = 0; i < nslots && taken < nfree; i++)
	{
		int			best = -1;
		TimestampTz best_due = 0;

		if (slots[i].state != SLOT_FREE)
			continue;
		for (int pass = 0; pass < 2 && best < 0; pass++)
			for (int g = 0; g < ngroups; g++)
			{
				bool		isnull;
				TimestampTz due;

				if (next[g] >= count[g] || (pass == 0 && endpoint[g] == gave_up))
					continue;
				due = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[first[g] + next[g]],
														SPI_tuptable->tupdesc, 4, &isnull));
				if (best < 0 || in_flight[g] < in_flight[best] ||
					(in_flight[g] == in_flight[best] && due < best_due))
				{
					best = g;
					best_due = due;
				}
			}
		if (best < 0)
			break;
		ready(&slots[i], SPI_tuptable->vals[first[best] + next[best]], SPI_tuptable->tupdesc);
		next[best]++;
		in_flight[best]++;
		taken++;
	}
	return taken;
}

/* when to look again, after a look that found fewer due events than free slots */
static void
plan_next_look(TimestampTz now)
{
	Datum		arg[1];
	Datum		v;
	bool		isnull;
	long		ms = ioffice_worker_naptime * 1000L;

	arg[0] = PointerGetDatum(flying_ids());
	if (ioffice_exec(&next_due_plan, arg, NULL, 1) != SPI_OK_SELECT)
		elog(ERROR, "ioffice: could not read the outbox");
	v = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
	{
		double		due = DatumGetFloat8(DirectFunctionCall1(numeric_float8, v));

		/*
		 * Due rows that another transaction holds (a DBA's UPDATE, say) were
		 * skipped: look again in a while, not in a busy loop.
		 */
		if (due <= 0)
			ms = 1000;
		else if (due + 1 < (double) ms)
			ms = (long) due + 1;
	}
	next_look = TimestampTzPlusMilliseconds(now, ms);
	look_now = false;
}

/*
 * One round: outcomes recorded, and due events taken for the free slots,
 * in one short transaction when there is something to do; the requests
 * taken start once it committed.
 */
static void
deliver_round(void)
{
	TimestampTz now = GetCurrentTimestamp();
	bool		look;
	bool		check_give_up = false;
	int64		gave_up = 0;
	int			nfree;

	ensure_slots();
	collect();
	nfree = count_slots(SLOT_FREE);
	look = nfree > 0 && (look_now || now >= next_look);
	if (nfree == 0 && now >= next_give_up_check && count_slots(SLOT_DONE) == 0)
	{
		for (int i = 0; i < nslots; i++)
			if (slots[i].state == SLOT_FLYING &&
				TimestampDifferenceMilliseconds(slots[i].started_at, now) >=
				ioffice_outbox_batch_seconds * 1000L)
				check_give_up = true;
	}
	if (count_slots(SLOT_DONE) == 0 && !look && !check_give_up)
		return;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	extension_missing = !OidIsValid(get_extension_oid("ioffice", true));
	if (extension_missing)
	{
		/* not created yet, or dropped: nothing to record into, nothing to send */
		CommitTransactionCommand();
		drop_all();
		next_look = TimestampTzPlusMilliseconds(now, ioffice_worker_naptime * 1000L);
		look_now = false;
		return;
	}
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "ioffice deliverer: recording and taking outbox events");

	if (check_give_up)
	{
		next_give_up_check = TimestampTzPlusMilliseconds(now, GIVE_UP_CHECK_MS);
		gave_up = give_up_one(now);
		look = look || gave_up != 0;
	}
	if (count_slots(SLOT_DONE) > 0)
		record_outcomes();
	nfree = count_slots(SLOT_FREE);
	if (look && nfree > 0)
	{
		bool		more;
		int			taken = take(nfree, gave_up, &more);

		if (taken > 0)
			prepare_requests();
		/* more may be due: look again at once, or when a slot is free */
		if (taken < nfree && !more)
			plan_next_look(now);
		else
			look_now = true;
	}

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);

	for (int i = 0; i < nslots; i++)
		if (slots[i].state == SLOT_READY)
			start(&slots[i]);
}

void
ioffice_deliverer_loop(void)
{
	for (;;)
	{
		int			flying;

		CHECK_FOR_INTERRUPTS();
		if (ioffice_worker_reload())
			look_now = true;

		if (RecoveryInProgress())
		{
			show_state("standby");
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 ioffice_worker_naptime * 1000L, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			continue;
		}

		/*
		 * An error escaping a round ends the process (its requests with it:
		 * their rows stay pending); the postmaster starts it again after
		 * bgw_restart_time.  Remember it for worker_status first.
		 */
		PG_TRY();
		{
			deliver_round();
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(TopMemoryContext);
			edata = CopyErrorData();
			ioffice_worker_note_error(edata->message);
			PG_RE_THROW();
		}
		PG_END_TRY();

		flying = count_slots(SLOT_FLYING);
		show_state(extension_missing ? "no extension" : flying > 0 ? "delivering" : "idle");

		if (flying > 0)
		{
			/* libcurl's sockets, and now and then the latch */
			if (!PostmasterIsAlive())
				proc_exit(1);
			if (curl_multi_poll(multi, NULL, 0, POLL_MS, NULL) != CURLM_OK)
				elog(ERROR, "ioffice: libcurl failed");
			if (MyLatch->is_set)
			{
				ResetLatch(MyLatch);
				look_now = true;
			}
		}
		else if (!look_now)
		{
			long		ms = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), next_look);
			int			rc;

			rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						   Max(ms, 1), PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			if (rc & WL_LATCH_SET)
				look_now = true;
		}
	}
}
