/*-------------------------------------------------------------------------
 * http_calls.h
 *	  A small set of HTTP calls in flight on one libcurl multi handle, for a
 *	  worker loop that must not block on them (http_calls.c).
 *-------------------------------------------------------------------------
 */
#ifndef IOFFICE_HTTP_CALLS_H
#define IOFFICE_HTTP_CALLS_H

#include <curl/curl.h>

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"

typedef enum HttpCallState
{
	HTTP_CALL_FREE,
	HTTP_CALL_READY,			/* set up, started by http_calls_start_ready() */
	HTTP_CALL_FLYING,
	HTTP_CALL_DONE				/* its outcome waits for its owner */
} HttpCallState;

typedef struct HttpCall
{
	HttpCallState state;
	CURL	   *easy;
	struct curl_slist *headers; /* freed when the call ends */
	curl_mime  *mime;			/* likewise */
	MemoryContext cxt;			/* the call's memory, reset when it is freed */
	StringInfoData answer;		/* up to answer_max bytes of the answer */
	size_t		answer_max;
	bool		truncated;
	long		http_status;	/* 0: no answer */
	bool		ok;				/* a 2xx answer */
	char	   *error;			/* when not ok: why, in the call's memory */
	char		curl_error[CURL_ERROR_SIZE];
	TimestampTz started_at;
	/* the owner's: what the call is for */
	int			kind;
	int64		id;
	int64		axis;
	char	   *key;
} HttpCall;

typedef struct HttpCalls
{
	CURLM	   *multi;
	HttpCall   *calls;
	int			ncalls;
} HttpCalls;

extern void http_calls_init(HttpCalls *hc, int ncalls);
extern int	http_calls_count(HttpCalls *hc, HttpCallState state);
extern HttpCall *http_call_take(HttpCalls *hc, size_t answer_max);
extern void http_call_header(HttpCall *c, const char *fmt,...) pg_attribute_printf(2, 3);
extern void http_calls_start_ready(HttpCalls *hc);
extern void http_calls_collect(HttpCalls *hc);
extern void http_call_free(HttpCall *c);
extern void http_calls_poll(HttpCalls *hc, long ms);

#endif
