/*-------------------------------------------------------------------------
 * outbox_delivery.c
 *	  One outbox batch of the worker: take due events, POST them all at
 *	  once with libcurl's multi interface, record every outcome.
 *
 * The batch's rows stay locked (FOR UPDATE SKIP LOCKED) in the worker's
 * transaction while their requests are in flight, and the outcomes are
 * written in one statement before the commit.  A crash before the commit
 * leaves the rows pending, so they are sent again: delivery is at least
 * once, and the idempotency key (the same in every attempt) lets the
 * receiver drop a repeat.  A failed attempt is tried again after an
 * exponential backoff with jitter; after the endpoint's last attempt the
 * event is dead, with its last error, until outbox_requeue().
 *
 * At most ioffice.outbox_max_connections requests are in flight, over
 * connections that libcurl keeps open between batches, so a queue of any
 * length never costs more file descriptors than that.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/hmac.h"
#include "common/sha2.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/postmaster.h"
#include "storage/ipc.h"
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
#define BATCH_BYTES (32 * 1024 * 1024)	/* request bodies held by one batch */

typedef struct Delivery
{
	int64		id;
	char	   *endpoint;
	char	   *url;
	char	   *body;
	size_t		body_len;
	long		timeout_ms;
	struct curl_slist *headers;
	/* outcome */
	bool		ok;
	long		http_status;	/* 0: no answer */
	char	   *error;
	char		answer[RESPONSE_KEEP + 1];
	size_t		answer_len;
	char		curl_error[CURL_ERROR_SIZE];
} Delivery;

static CURLM *multi = NULL;
static CURL **pool = NULL;		/* one easy handle per connection slot */
static int	pool_size = 0;

static IofficePlan due_plan = {
	NULL,
	"WITH next AS ("
	"  SELECT o.id FROM ioffice.outbox o JOIN ioffice.endpoint e ON e.id = o.endpoint_id "
	"   WHERE o.status = 'pending' AND o.next_attempt_at <= now() AND e.enabled "
	"   ORDER BY o.next_attempt_at, o.id LIMIT $1 FOR UPDATE OF o SKIP LOCKED) "
	"SELECT o.id, e.name, e.url, e.secret, e.timeout_ms, o.idempotency_key::text, o.event, "
	"       o.body::text "
	"  FROM next JOIN ioffice.outbox o ON o.id = next.id "
	"  JOIN ioffice.endpoint e ON e.id = o.endpoint_id ORDER BY o.id",
	1, {INT4OID}
};

/*
 * Every outcome in one statement.  A failure waits base * 2^attempts (at
 * most retry_max), times a jitter in [0.5, 1.5) so that events that failed
 * together do not come back together.
 */
static IofficePlan record_plan = {
	NULL,
	"UPDATE ioffice.outbox o "
	"   SET attempts = o.attempts + 1, last_attempt_at = clock_timestamp(), "
	"       last_status = r.http_status, last_error = r.error, "
	"       status = CASE WHEN r.ok THEN 'delivered' "
	"                     WHEN o.attempts + 1 >= e.max_attempts THEN 'dead' ELSE 'pending' END, "
	"       delivered_at = CASE WHEN r.ok THEN clock_timestamp() END, "
	"       next_attempt_at = CASE WHEN r.ok THEN o.next_attempt_at "
	"           ELSE clock_timestamp() + make_interval(secs => "
	"                least($6::float8, $5::float8 * power(2::float8, least(o.attempts, 40))) "
	"                * (0.5 + random()) / 1000.0) END "
	"  FROM unnest($1::bigint[], $2::bool[], $3::int[], $4::text[]) AS r(id, ok, http_status, error), "
	"       ioffice.endpoint e "
	" WHERE o.id = r.id AND e.id = o.endpoint_id "
	"RETURNING o.status = 'dead'",
	6, {INT8ARRAYOID, BOOLARRAYOID, INT4ARRAYOID, TEXTARRAYOID, INT4OID, INT4OID}
};

static IofficePlan next_due_plan = {
	NULL,
	"SELECT extract(epoch FROM min(o.next_attempt_at) - clock_timestamp()) * 1000 "
	"  FROM ioffice.outbox o JOIN ioffice.endpoint e ON e.id = o.endpoint_id "
	" WHERE o.status = 'pending' AND e.enabled",
	0, {}
};

void
ioffice_outbox_delivery_init(void)
{
	DefineCustomIntVariable("ioffice.outbox_batch",
							"Outbox events the worker sends in one transaction.",
							NULL,
							&ioffice_outbox_batch,
							500, 1, 10000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("ioffice.outbox_max_connections",
							"HTTP requests the worker has in flight at once (and connections it keeps open).",
							NULL,
							&ioffice_outbox_max_connections,
							16, 1, 256,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("ioffice.outbox_batch_seconds",
							"Seconds after which a batch starts no new request.",
							"What was not started stays pending, with no attempt counted: a slow endpoint cannot hold the worker for long.",
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
	size_t		room = RESPONSE_KEEP - d->answer_len;

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
ensure_curl(void)
{
	int			i;

	if (multi == NULL)
	{
		multi = curl_multi_init();
		if (multi == NULL)
			elog(ERROR, "ioffice: could not initialise libcurl");
	}
	/* the setting may change on reload: the pool follows it */
	if (pool_size != ioffice_outbox_max_connections)
	{
		for (i = 0; i < pool_size; i++)
			curl_easy_cleanup(pool[i]);
		free(pool);
		pool_size = 0;
		pool = calloc(ioffice_outbox_max_connections, sizeof(CURL *));
		if (pool == NULL)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
		for (i = 0; i < ioffice_outbox_max_connections; i++)
		{
			pool[i] = curl_easy_init();
			if (pool[i] == NULL)
				elog(ERROR, "ioffice: could not initialise libcurl");
			pool_size = i + 1;
		}
		curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long) pool_size);
		curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long) pool_size);
		curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long) pool_size);
	}
}

static void
start(CURL *easy, Delivery *d)
{
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
	curl_easy_setopt(easy, CURLOPT_USERAGENT, "ioffice/0.1");
	curl_easy_setopt(easy, CURLOPT_PRIVATE, d);
	d->curl_error[0] = '\0';
	if (curl_multi_add_handle(multi, easy) != CURLM_OK)
		elog(ERROR, "ioffice: could not start an HTTP request");
}

static void
finish(CURL *easy, Delivery *d, CURLcode result)
{
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &d->http_status);
	d->ok = result == CURLE_OK && d->http_status >= 200 && d->http_status < 300;
	if (result != CURLE_OK)
		d->error = pstrdup(d->curl_error[0] ? d->curl_error : curl_easy_strerror(result));
	else if (!d->ok)
	{
		/* the answer is the other system's bytes: keep what is valid text */
		int			valid = pg_encoding_verifymbstr(GetDatabaseEncoding(), d->answer,
													d->answer_len);

		d->error = psprintf("HTTP %ld%s%.*s", d->http_status, valid ? ": " : "",
							valid, d->answer);
	}
	curl_multi_remove_handle(multi, easy);
	curl_slist_free_all(d->headers);
	d->headers = NULL;
}

/* Take back the handles of requests still in flight (after an error). */
static void
abandon(int slots, CURL **in_flight)
{
	int			i;

	for (i = 0; i < slots; i++)
		if (in_flight[i] != NULL)
		{
			Delivery   *d = NULL;

			curl_easy_getinfo(in_flight[i], CURLINFO_PRIVATE, (char **) &d);
			curl_multi_remove_handle(multi, in_flight[i]);
			if (d != NULL)
			{
				curl_slist_free_all(d->headers);
				d->headers = NULL;
			}
			in_flight[i] = NULL;
		}
}

/*
 * Send the requests, at most pool_size at a time.  No request is started
 * after ioffice.outbox_batch_seconds: a slow endpoint must not hold the
 * batch's rows (and the worker's signing) for minutes; those not started
 * stay pending, no attempt counted.  Returns how many were sent
 * (d[0..sent-1]).
 */
static int
send_all(Delivery *d, int n)
{
	CURL	  **in_flight = palloc0(sizeof(CURL *) * pool_size);
	int			next = 0;
	int			done = 0;
	int			i;
	TimestampTz stop_starting = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														   ioffice_outbox_batch_seconds * 1000L);

	PG_TRY();
	{
		for (i = 0; i < pool_size && next < n; i++)
		{
			in_flight[i] = pool[i];
			start(pool[i], &d[next++]);
		}
		while (done < next)
		{
			int			running;
			int			queued;
			CURLMsg    *msg;

			CHECK_FOR_INTERRUPTS();
			if (!PostmasterIsAlive())
				proc_exit(1);
			if (curl_multi_perform(multi, &running) != CURLM_OK)
				elog(ERROR, "ioffice: libcurl failed");
			while ((msg = curl_multi_info_read(multi, &queued)) != NULL)
			{
				Delivery   *one = NULL;
				int			slot;

				if (msg->msg != CURLMSG_DONE)
					continue;
				curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &one);
				for (slot = 0; slot < pool_size; slot++)
					if (in_flight[slot] == msg->easy_handle)
						break;
				if (slot == pool_size || one == NULL)
					elog(ERROR, "ioffice: libcurl finished a request it was not given");
				finish(msg->easy_handle, one, msg->data.result);
				done++;
				in_flight[slot] = NULL;
				/* the handle (and its connection) goes on with the next event */
				if (next < n && GetCurrentTimestamp() < stop_starting)
				{
					in_flight[slot] = pool[slot];
					start(pool[slot], &d[next++]);
				}
			}
			if (done < next && curl_multi_poll(multi, NULL, 0, 100, NULL) != CURLM_OK)
				elog(ERROR, "ioffice: libcurl failed");
		}
	}
	PG_CATCH();
	{
		abandon(pool_size, in_flight);
		PG_RE_THROW();
	}
	PG_END_TRY();
	return next;
}

/*
 * One batch: returns the number of events attempted, with how many failed
 * and how many went dead; *wait_ms says when the next pending event is due
 * (-1: none).
 */
int
ioffice_worker_deliver_batch(int limit, int64 *failed, int64 *dead, long *wait_ms)
{
	Delivery   *d;
	int			n;
	int			i;
	Datum		arg[6];
	Datum	   *ids;
	Datum	   *oks;
	Datum	   *codes;
	Datum	   *errors;
	bool	   *error_nulls;
	bool	   *code_nulls;
	bool		isnull;
	Datum		v;
	int			dims[1];
	int			lbs[1] = {1};
	MemoryContext batch_cxt;
	MemoryContext old;
	int			sent;
	Size		batch_bytes = 0;

	*failed = 0;
	*dead = 0;
	*wait_ms = -1;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "ioffice worker: outbox");

	batch_cxt = AllocSetContextCreate(TopTransactionContext, "ioffice outbox batch",
									  ALLOCSET_DEFAULT_SIZES);
	arg[0] = Int32GetDatum(limit);
	if (ioffice_exec(&due_plan, arg, NULL, 0) != SPI_OK_SELECT)
		elog(ERROR, "ioffice: could not read the outbox");
	n = (int) SPI_processed;
	old = MemoryContextSwitchTo(batch_cxt);
	d = palloc0(sizeof(Delivery) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *secret = SPI_getvalue(tup, desc, 4);
		char	   *key = SPI_getvalue(tup, desc, 6);
		char	   *event = SPI_getvalue(tup, desc, 7);

		d[i].id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		d[i].endpoint = SPI_getvalue(tup, desc, 2);
		d[i].url = SPI_getvalue(tup, desc, 3);
		d[i].timeout_ms = DatumGetInt32(SPI_getbinval(tup, desc, 5, &isnull));
		d[i].body = SPI_getvalue(tup, desc, 8);
		d[i].body_len = strlen(d[i].body);
		/* a batch's bodies stay within BATCH_BYTES; the rest waits for the next */
		batch_bytes += d[i].body_len;
		if (i > 0 && batch_bytes > BATCH_BYTES)
		{
			n = i;
			break;
		}
		/* libcurl copies the header strings */
		d[i].headers = curl_slist_append(NULL, "Content-Type: application/json");
		d[i].headers = curl_slist_append(d[i].headers, "Expect:");	/* no 100-continue round trip */
		d[i].headers = curl_slist_append(d[i].headers, psprintf("Idempotency-Key: %s", key));
		d[i].headers = curl_slist_append(d[i].headers, psprintf("X-Ioffice-Event: %s", event));
		d[i].headers = curl_slist_append(d[i].headers,
										 body_signature(secret, d[i].body, d[i].body_len));
		if (d[i].headers == NULL)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	}

	if (n > 0)
	{
		int			last_failed = -1;

		ioffice_worker_set_state("delivering");
		pgstat_report_activity(STATE_RUNNING, "ioffice worker: delivering");
		ensure_curl();
		sent = send_all(d, n);
		/* what was not started stays pending as it was; its headers go */
		for (i = sent; i < n; i++)
			curl_slist_free_all(d[i].headers);
		n = sent;

		ids = palloc(sizeof(Datum) * n);
		oks = palloc(sizeof(Datum) * n);
		codes = palloc(sizeof(Datum) * n);
		errors = palloc(sizeof(Datum) * n);
		error_nulls = palloc(sizeof(bool) * n);
		code_nulls = palloc(sizeof(bool) * n);
		for (i = 0; i < n; i++)
		{
			ids[i] = Int64GetDatum(d[i].id);
			oks[i] = BoolGetDatum(d[i].ok);
			/* no answer (refused, timed out): no status */
			code_nulls[i] = d[i].http_status == 0;
			codes[i] = Int32GetDatum((int32) d[i].http_status);
			error_nulls[i] = d[i].error == NULL;
			errors[i] = d[i].error ? CStringGetTextDatum(d[i].error) : (Datum) 0;
			if (!d[i].ok)
			{
				(*failed)++;
				last_failed = i;
			}
		}
		/* the slot keeps one message, the last: one lock, not one per failure */
		if (last_failed >= 0)
			ioffice_worker_note_error(psprintf("outbox event " INT64_FORMAT " to %s: %s",
											   d[last_failed].id, d[last_failed].endpoint,
											   d[last_failed].error));
		dims[0] = n;
		arg[0] = PointerGetDatum(construct_array(ids, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		arg[1] = PointerGetDatum(construct_array(oks, n, BOOLOID, 1, true, TYPALIGN_CHAR));
		arg[2] = PointerGetDatum(construct_md_array(codes, code_nulls, 1, dims, lbs,
													INT4OID, 4, true, TYPALIGN_INT));
		arg[3] = PointerGetDatum(construct_md_array(errors, error_nulls, 1, dims, lbs,
													TEXTOID, -1, false, TYPALIGN_INT));
		arg[4] = Int32GetDatum(ioffice_outbox_retry_base);
		arg[5] = Int32GetDatum(ioffice_outbox_retry_max);
		MemoryContextSwitchTo(old);
		if (ioffice_exec(&record_plan, arg, NULL, 0) != SPI_OK_UPDATE_RETURNING)
			elog(ERROR, "ioffice: could not record deliveries");
		for (i = 0; i < (int) SPI_processed; i++)
		{
			bool		went_dead = false;

			ioffice_get_bool(i, 1, &went_dead);
			if (went_dead)
				(*dead)++;
		}
	}
	MemoryContextSwitchTo(old);

	if (ioffice_exec(&next_due_plan, NULL, NULL, 1) != SPI_OK_SELECT)
		elog(ERROR, "ioffice: could not read the outbox");
	v = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
	{
		double		ms = DatumGetFloat8(DirectFunctionCall1(numeric_float8, v));

		*wait_ms = ms <= 0 ? 0 : (ms > (double) LONG_MAX ? LONG_MAX : (long) ms + 1);
	}

	/*
	 * Due rows that another transaction holds (a DBA's UPDATE, say) were
	 * skipped: look again in a while, not in a busy loop.
	 */
	if (n == 0 && *wait_ms == 0)
		*wait_ms = 1000;

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	return n;
}
