/*-------------------------------------------------------------------------
 * http_calls.c
 *	  HTTP calls in flight on one libcurl multi handle, without blocking the
 *	  loop that owns them: a call is taken (a free slot, its easy handle
 *	  reset with the options every call of ours has: http and https only,
 *	  no redirects, no signals, the answer kept up to a limit), set up by
 *	  its owner (URL, method, body, headers), started once the owner's
 *	  transaction committed, collected when libcurl finished it, and freed
 *	  once its outcome is recorded.
 *
 * The exchange over the interconnection axis (edxml_exchange.c) uses it;
 * the outbox's deliverer and remote signing keep their own plumbing of
 * the same shape (they predate this file).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "http_calls.h"

void
http_calls_init(HttpCalls *hc, int ncalls)
{
	HttpCall   *calls;
	CURLM	   *multi;

	/* hc->multi set last: a failure half-way leaves hc as it was, tried again */
	if (hc->multi != NULL)
		return;
	calls = MemoryContextAllocZero(TopMemoryContext, sizeof(HttpCall) * ncalls);
	for (int i = 0; i < ncalls; i++)
	{
		calls[i].easy = curl_easy_init();
		if (calls[i].easy == NULL)
		{
			for (int j = 0; j < i; j++)
				curl_easy_cleanup(calls[j].easy);
			pfree(calls);
			elog(ERROR, "ioffice: could not initialise libcurl");
		}
	}
	multi = curl_multi_init();
	if (multi == NULL)
	{
		for (int i = 0; i < ncalls; i++)
			curl_easy_cleanup(calls[i].easy);
		pfree(calls);
		elog(ERROR, "ioffice: could not initialise libcurl");
	}
	for (int i = 0; i < ncalls; i++)
	{
		calls[i].cxt = AllocSetContextCreate(TopMemoryContext, "ioffice HTTP call",
											 ALLOCSET_DEFAULT_SIZES);
		calls[i].state = HTTP_CALL_FREE;
	}
	hc->calls = calls;
	hc->ncalls = ncalls;
	hc->multi = multi;
}

int
http_calls_count(HttpCalls *hc, HttpCallState state)
{
	int			n = 0;

	for (int i = 0; i < hc->ncalls; i++)
		if (hc->calls[i].state == state)
			n++;
	return n;
}

static size_t
keep_answer(char *data, size_t size, size_t nmemb, void *arg)
{
	HttpCall   *c = (HttpCall *) arg;
	size_t		len = size * nmemb;
	size_t		room = c->answer_max - c->answer.len;
	MemoryContext old;

	if (len > room)
	{
		/* a larger answer than asked for is cut short and said to be */
		c->truncated = true;
		return 0;
	}
	old = MemoryContextSwitchTo(c->cxt);
	appendBinaryStringInfo(&c->answer, data, len);
	MemoryContextSwitchTo(old);
	return len;
}

/* a free call, set up with our defaults; NULL when all are taken */
HttpCall *
http_call_take(HttpCalls *hc, size_t answer_max)
{
	for (int i = 0; i < hc->ncalls; i++)
	{
		HttpCall   *c = &hc->calls[i];
		MemoryContext old;

		if (c->state != HTTP_CALL_FREE)
			continue;
		MemoryContextReset(c->cxt);
		old = MemoryContextSwitchTo(c->cxt);
		initStringInfo(&c->answer);
		MemoryContextSwitchTo(old);
		c->answer_max = answer_max;
		c->truncated = false;
		c->http_status = 0;
		c->ok = false;
		c->error = NULL;
		c->headers = NULL;
		c->mime = NULL;
		c->kind = 0;
		c->id = 0;
		c->axis = 0;
		c->key = NULL;
		c->curl_error[0] = '\0';
		curl_easy_reset(c->easy);
		curl_easy_setopt(c->easy, CURLOPT_PROTOCOLS_STR, "http,https");
		curl_easy_setopt(c->easy, CURLOPT_FOLLOWLOCATION, 0L);
		/* no signals: timeouts must not raise SIGALRM in a server process */
		curl_easy_setopt(c->easy, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, keep_answer);
		curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, c);
		curl_easy_setopt(c->easy, CURLOPT_ERRORBUFFER, c->curl_error);
		curl_easy_setopt(c->easy, CURLOPT_USERAGENT, "ioffice/0.2");
		curl_easy_setopt(c->easy, CURLOPT_PRIVATE, c);
		c->state = HTTP_CALL_READY;
		return c;
	}
	return NULL;
}

void
http_call_header(HttpCall *c, const char *fmt,...)
{
	char		line[1024];
	va_list		ap;
	struct curl_slist *l;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	l = curl_slist_append(c->headers, line);
	if (l == NULL)
		elog(ERROR, "ioffice: out of memory for an HTTP header");
	c->headers = l;
}

/* the calls set up: started (after the owner's transaction committed) */
void
http_calls_start_ready(HttpCalls *hc)
{
	for (int i = 0; i < hc->ncalls; i++)
	{
		HttpCall   *c = &hc->calls[i];

		if (c->state != HTTP_CALL_READY)
			continue;
		if (c->headers)
			curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, c->headers);
		c->started_at = GetCurrentTimestamp();
		if (curl_multi_add_handle(hc->multi, c->easy) != CURLM_OK)
			elog(ERROR, "ioffice: could not start an HTTP request");
		c->state = HTTP_CALL_FLYING;
	}
}

static void
finish(HttpCalls *hc, HttpCall *c, CURLcode result)
{
	MemoryContext old = MemoryContextSwitchTo(c->cxt);

	curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &c->http_status);
	c->ok = result == CURLE_OK && c->http_status >= 200 && c->http_status < 300;
	if (c->truncated)
	{
		c->ok = false;
		c->error = psprintf("the answer is larger than %zu bytes", c->answer_max);
	}
	else if (result != CURLE_OK)
		c->error = pstrdup(c->curl_error[0] ? c->curl_error : curl_easy_strerror(result));
	else if (!c->ok)
	{
		/* the other system's bytes: keep what is valid text, clipped */
		int			valid = pg_encoding_verifymbstr(GetDatabaseEncoding(), c->answer.data,
													c->answer.len);

		c->error = psprintf("HTTP %ld%s%.*s", c->http_status, valid ? ": " : "",
							pg_mbcliplen(c->answer.data, valid, 200), c->answer.data);
	}
	MemoryContextSwitchTo(old);
	curl_multi_remove_handle(hc->multi, c->easy);
	curl_slist_free_all(c->headers);
	c->headers = NULL;
	if (c->mime)
		curl_mime_free(c->mime);
	c->mime = NULL;
	c->state = HTTP_CALL_DONE;
}

/* the calls libcurl has finished become HTTP_CALL_DONE */
void
http_calls_collect(HttpCalls *hc)
{
	int			running;
	int			queued;
	CURLMsg    *msg;

	if (hc->multi == NULL)
		return;
	if (curl_multi_perform(hc->multi, &running) != CURLM_OK)
		elog(ERROR, "ioffice: libcurl failed");
	while ((msg = curl_multi_info_read(hc->multi, &queued)) != NULL)
	{
		HttpCall   *c = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &c);
		if (c == NULL || c->easy != msg->easy_handle || c->state != HTTP_CALL_FLYING)
			elog(ERROR, "ioffice: libcurl finished a request it was not given");
		finish(hc, c, msg->data.result);
	}
}

void
http_call_free(HttpCall *c)
{
	if (c->state == HTTP_CALL_READY)
	{
		curl_slist_free_all(c->headers);
		c->headers = NULL;
		if (c->mime)
			curl_mime_free(c->mime);
		c->mime = NULL;
	}
	c->state = HTTP_CALL_FREE;
}

/* wait up to ms for the calls' sockets */
void
http_calls_poll(HttpCalls *hc, long ms)
{
	if (hc->multi == NULL)
		return;
	if (curl_multi_poll(hc->multi, NULL, 0, (int) Max(ms, 0), NULL) != CURLM_OK)
		elog(ERROR, "ioffice: libcurl failed");
}
