/*-------------------------------------------------------------------------
 * axis_transport.c
 *	  Two transports of edXML packages (axis_transport.h).
 *
 * "vxp": the shape of VNPT's VXP axis (EDXML.md, Transport): REST, every
 * request carrying the headers systemid, timestamp (milliseconds since
 * 1970) and signature: base64 of HMAC-SHA256 over "systemid:timestamp"
 * with the axis's secret.  POST {url}/sendEdoc (multipart: servicetype
 * eDoc, messagetype edoc or status, the package as part "file"), GET
 * {url}/getReceivedEdocList, GET {url}/getEdoc (header docid), POST
 * {url}/updateStatus (JSON {"docId", "status": "done"|"fail",
 * "description"}).
 *
 * "endpoint": the package POSTed to an endpoint row's URL, as the outbox
 * posts (X-Ioffice-Signature: sha256=<hex HMAC of the body>,
 * Idempotency-Key), for axes that take packages by a plain POST and for
 * tests; it does not pull.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/base64.h"
#include "common/hmac.h"
#include "common/sha2.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/timestamp.h"

#include "axis_transport.h"

static void
hmac(const char *secret, const char *data, size_t len, uint8 *mac)
{
	pg_hmac_ctx *ctx = pg_hmac_create(PG_SHA256);

	if (ctx == NULL ||
		pg_hmac_init(ctx, (const uint8 *) secret, strlen(secret)) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) data, len) < 0 ||
		pg_hmac_final(ctx, mac, PG_SHA256_DIGEST_LENGTH) < 0)
		elog(ERROR, "ioffice: could not compute an HMAC: %s", pg_hmac_error(ctx));
	pg_hmac_free(ctx);
}

static void
common(HttpCall *c, const AxisConfig *axis, const char *path)
{
	MemoryContext old = MemoryContextSwitchTo(c->cxt);
	char	   *url = psprintf("%s%s%s", axis->url,
							   axis->url[strlen(axis->url) - 1] == '/' ? "" : "/", path);

	curl_easy_setopt(c->easy, CURLOPT_URL, url);
	curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, (long) axis->timeout_ms);
	curl_easy_setopt(c->easy, CURLOPT_CONNECTTIMEOUT_MS, (long) Min(axis->timeout_ms, 10000));
	MemoryContextSwitchTo(old);
}

/* systemid, timestamp, signature */
static void
vxp_headers(HttpCall *c, const AxisConfig *axis)
{
	char	   *ts = psprintf(INT64_FORMAT,
							  (int64) (GetCurrentTimestamp() / 1000 +
									   (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * 86400 * 1000));
	char	   *signed_text = psprintf("%s:%s", axis->system_id, ts);
	uint8		mac[PG_SHA256_DIGEST_LENGTH];
	char		b64[64];
	int			n;

	hmac(axis->secret, signed_text, strlen(signed_text), mac);
	n = pg_b64_encode((const char *) mac, sizeof(mac), b64, sizeof(b64) - 1);
	if (n < 0)
		elog(ERROR, "ioffice: could not encode an HMAC");
	b64[n] = '\0';
	http_call_header(c, "systemid: %s", axis->system_id);
	http_call_header(c, "timestamp: %s", ts);
	http_call_header(c, "signature: %s", b64);
	pfree(ts);
	pfree(signed_text);
}

static void
vxp_send(HttpCall *c, const AxisConfig *axis, const char *message_type,
		 const char *idempotency_key, const char *package, size_t len)
{
	curl_mimepart *part;

	common(c, axis, "sendEdoc");
	vxp_headers(c, axis);
	http_call_header(c, "Idempotency-Key: %s", idempotency_key);
	c->mime = curl_mime_init(c->easy);
	part = curl_mime_addpart(c->mime);
	curl_mime_name(part, "servicetype");
	curl_mime_data(part, "eDoc", CURL_ZERO_TERMINATED);
	part = curl_mime_addpart(c->mime);
	curl_mime_name(part, "messagetype");
	curl_mime_data(part, message_type, CURL_ZERO_TERMINATED);
	part = curl_mime_addpart(c->mime);
	curl_mime_name(part, "file");
	curl_mime_filename(part, "edoc.edxml");
	curl_mime_type(part, "application/xml");
	/* libcurl copies the data */
	curl_mime_data(part, package, len);
	curl_easy_setopt(c->easy, CURLOPT_MIMEPOST, c->mime);
}

static void
vxp_list(HttpCall *c, const AxisConfig *axis)
{
	common(c, axis, "getReceivedEdocList");
	vxp_headers(c, axis);
	curl_easy_setopt(c->easy, CURLOPT_HTTPGET, 1L);
}

static void
vxp_fetch(HttpCall *c, const AxisConfig *axis, const char *doc_id)
{
	common(c, axis, "getEdoc");
	vxp_headers(c, axis);
	http_call_header(c, "docid: %s", doc_id);
	curl_easy_setopt(c->easy, CURLOPT_HTTPGET, 1L);
}

static void
vxp_acknowledge(HttpCall *c, const AxisConfig *axis, const char *doc_id, bool done,
				const char *reason)
{
	StringInfoData body;

	common(c, axis, "updateStatus");
	vxp_headers(c, axis);
	http_call_header(c, "Content-Type: application/json");
	initStringInfo(&body);
	appendStringInfoString(&body, "{\"docId\":");
	escape_json(&body, doc_id);
	appendStringInfo(&body, ",\"status\":\"%s\",\"description\":", done ? "done" : "fail");
	escape_json(&body, reason ? reason : "");
	appendStringInfoChar(&body, '}');
	curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE, (long) body.len);
	curl_easy_setopt(c->easy, CURLOPT_COPYPOSTFIELDS, body.data);
	pfree(body.data);
}

static void
endpoint_send(HttpCall *c, const AxisConfig *axis, const char *message_type,
			  const char *idempotency_key, const char *package, size_t len)
{
	uint8		mac[PG_SHA256_DIGEST_LENGTH];
	char		hex[PG_SHA256_DIGEST_LENGTH * 2 + 1];

	curl_easy_setopt(c->easy, CURLOPT_URL, axis->url);
	curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, (long) axis->timeout_ms);
	curl_easy_setopt(c->easy, CURLOPT_CONNECTTIMEOUT_MS, (long) Min(axis->timeout_ms, 10000));
	hmac(axis->secret, package, len, mac);
	hex_encode((const char *) mac, sizeof(mac), hex);
	hex[sizeof(hex) - 1] = '\0';
	http_call_header(c, "Content-Type: application/xml; charset=utf-8");
	http_call_header(c, "X-Ioffice-Signature: sha256=%s", hex);
	http_call_header(c, "Idempotency-Key: %s", idempotency_key);
	http_call_header(c, "X-Ioffice-Event: edxml.%s", message_type);
	curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) len);
	curl_easy_setopt(c->easy, CURLOPT_COPYPOSTFIELDS, package);
}

static const AxisTransport transports[] = {
	{"vxp", true, vxp_send, vxp_list, vxp_fetch, vxp_acknowledge},
	{"endpoint", false, endpoint_send, NULL, NULL, NULL},
};

const AxisTransport *
axis_transport(const char *name)
{
	for (int i = 0; i < lengthof(transports); i++)
		if (strcmp(transports[i].name, name) == 0)
			return &transports[i];
	return NULL;
}
