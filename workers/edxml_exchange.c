/*-------------------------------------------------------------------------
 * edxml_exchange.c
 *	  The signer's exchange of edXML packages with the interconnection axis
 *	  (issue 14): sending what edxml_outgoing queues, pulling what the axis
 *	  holds for us, filing it, and answering.
 *
 * A step of the signer's loop (worker.c), between its others, that never
 * waits on the network: HTTP calls fly on a libcurl multi handle
 * (http_calls.c) while the signer signs; their outcomes are recorded at
 * the next step.  No transaction is open while calls are in flight.
 *
 * Sending: due queued rows (FOR UPDATE SKIP LOCKED, of agencies with an
 * enabled axis) are built in SQL (_edxml_package for a document, its
 * attachments left empty and filled with their base64 by the helper;
 * _edxml_status_package for a status), signed with the agency's seal by
 * the edXML helper, a process of its own that the signer keeps between
 * packages (ioffice_edxml_sign; the key never enters a backend), each in a subtransaction of its own so that one
 * that fails is retried later with its reason, and sent through the axis's
 * transport (axis_transport.c) with the row's idempotency key.  A 2xx
 * answer marks the row sent (and its edxml_status row); anything else is
 * retried after an exponential backoff until the axis's max_attempts, then
 * the row is dead.  A crash between sending and recording sends again: at
 * least once; the receiver files a package (sender, DocumentId) once.
 *
 * Receiving: every poll_seconds, an axis that pulls is asked for its list;
 * each package listed is fetched, and filed by _edxml_axis_file() in a
 * transaction of its own (the helper reads it: the worker never parses
 * foreign XML), with its 01 or 02 queued in that same transaction; then it
 * is acknowledged (done, or fail with the reason).  A package whose filing
 * failed for another reason (the database, the helper) is not acknowledged:
 * it is listed and tried again at the next poll.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "storage/pmsignal.h"
#include "storage/ipc.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "ioffice.h"
#include "worker.h"
#include "axis_transport.h"

#define AXIS_CALLS 8
#define LOOK_MS 200				/* queued rows looked for at most this often */
#define LIST_MAX (1024 * 1024)
#define ACK_MAX 4096
#define MAX_FETCHES 256			/* packages listed and not yet fetched */

enum
{
	CALL_SEND = 1,
	CALL_LIST,
	CALL_FETCH,
	CALL_ACK
};

static HttpCalls calls;
static TimestampTz next_look = 0;
static bool have_axes = false;	/* at the last look */
/* the last look took as many due rows as there were free calls: more may wait */
static bool sends_full = false;

/* when each axis is polled next (by id; a few axes per database) */
typedef struct AxisPoll
{
	int64		axis;
	TimestampTz next_poll;
} AxisPoll;
static AxisPoll polls[64];
static int	npolls = 0;

/* packages listed and waiting to be fetched, and acknowledgements */
typedef struct Pending
{
	int64		axis;
	char	   *doc_id;			/* TopMemoryContext */
	bool		ack;			/* an acknowledgement, not a fetch */
	bool		done;
	char	   *reason;
} Pending;
static Pending pending[MAX_FETCHES];
static int	npending = 0;

/*
 * Packages acknowledged lately.  A list asked before an acknowledgement
 * landed still names the package; fetching it again would only read and
 * check it a second time (it is filed once anyway), which halved the rate
 * packages were filed at under load.  Kept a minute: a package whose
 * acknowledgement the axis lost is listed, and fetched, again after that.
 */
#define RECENT_ACKS 256
#define RECENT_ACK_MS 60000
typedef struct RecentAck
{
	int64		axis;
	char	   *doc_id;			/* TopMemoryContext */
	TimestampTz at;
} RecentAck;
static RecentAck recent_acks[RECENT_ACKS];
static int	recent_next = 0;

static IofficePlan axes_plan = {
	NULL,
	"SELECT a.id, a.agency_id, a.transport, coalesce(e.url, a.url), a.system_id, "
	"       coalesce(e.secret, a.secret), a.timeout_ms, a.max_attempts, a.poll_seconds "
	"  FROM ioffice.exchange_axis a LEFT JOIN ioffice.endpoint e ON e.id = a.endpoint_id "
	" WHERE a.enabled AND (a.transport <> 'endpoint' OR e.enabled) ORDER BY a.id",
	0, {}
};

static IofficePlan due_plan = {
	NULL,
	"SELECT o.id, o.kind, o.idempotency_key::text, a.id, o.attempts "
	"  FROM ioffice.edxml_outgoing o "
	"  JOIN ioffice.exchange_axis a ON a.agency_id = o.agency_id AND a.enabled "
	"  LEFT JOIN ioffice.endpoint e ON e.id = a.endpoint_id "
	" WHERE o.state = 'queued' AND o.next_attempt_at <= now() AND o.id <> ALL ($2) "
	/* only the axes read_axes keeps: others' rows would take the slots */
	"   AND (a.transport <> 'endpoint' OR e.enabled) AND coalesce(e.url, a.url) IS NOT NULL "
	/*
	 * a document goes with its signatures inside: not while the seal the
	 * issue asked for is still being made (the package would carry the
	 * PDF as it was before, which the receiver refuses); a failed seal is
	 * the clerk's to see, and does not hold the package forever
	 */
	"   AND (o.kind <> 'document' OR NOT EXISTS (SELECT 1 FROM ioffice.signature s "
	"        WHERE s.document_id = o.document_id AND s.status = 'pending')) "
	" ORDER BY o.next_attempt_at, o.id LIMIT $1 FOR UPDATE OF o SKIP LOCKED",
	2, {INT4OID, INT8ARRAYOID}
};

/*
 * the package, unsigned, and the agency's seal: certificate and key file.
 * A document's attachments are left empty (inline_files false): the
 * helper fills them with the base64 of files_plan's bytes, which costs
 * less there than SQL's base64 and XML escaping of a large text.
 */
static IofficePlan build_plan = {
	NULL,
	"SELECT CASE o.kind WHEN 'document' THEN ioffice._edxml_package(o.document_id, o.recipient, NULL, false)::text "
	"                   WHEN 'recall' THEN ioffice._edxml_package(o.document_id, o.recipient, NULL, 1, o.description, NULL, false)::text "
	"                   WHEN 'update' THEN ioffice._edxml_package(o.document_id, o.recipient, NULL, 2, o.description, o.update_id, false)::text "
	"                   ELSE ioffice._edxml_status_package(o.id)::text END, "
	"       c.pem, c.key_file, c.key_uri, o.kind = 'document', o.document_id "
	"  FROM ioffice.edxml_outgoing o "
	"  LEFT JOIN LATERAL (SELECT c.pem, c.key_file, c.key_uri FROM ioffice.certificate c "
	"        WHERE c.kind = 'organisation' AND c.agency_id = o.agency_id AND c.revoked_at IS NULL "
	"          AND now() BETWEEN c.not_before AND c.not_after "
	"        ORDER BY (c.key_file IS NOT NULL) DESC, c.not_after DESC LIMIT 1) c ON true "
	" WHERE o.id = $1",
	1, {INT8OID}
};

/* a document package's attachments: the files _edxml_package lists, in its order */
static IofficePlan files_plan = {
	NULL,
	"SELECT fl.content FROM ioffice.file fl "
	" WHERE fl.document_id = $1 AND fl.superseded_at IS NULL AND fl.removed_at IS NULL "
	" ORDER BY fl.id",
	1, {INT8OID}
};

static IofficePlan sent_plan = {
	NULL,
	"WITH o AS (UPDATE ioffice.edxml_outgoing SET state = 'sent', sent_at = clock_timestamp(), "
	"                  attempts = attempts + 1, last_error = NULL "
	"            WHERE id = $1 AND state = 'queued' RETURNING status_id) "
	"UPDATE ioffice.edxml_status s SET sent_at = clock_timestamp() FROM o WHERE s.id = o.status_id",
	1, {INT8OID}
};

static IofficePlan failed_plan = {
	NULL,
	"UPDATE ioffice.edxml_outgoing o SET attempts = o.attempts + 1, last_error = left($2, 2000), "
	"       state = CASE WHEN o.attempts + 1 >= $3 THEN 'dead' ELSE 'queued' END, "
	"       next_attempt_at = clock_timestamp() + make_interval(secs => "
	"           least(3600, power(2, least(o.attempts, 20))) * (0.5 + random())) "
	" WHERE o.id = $1 AND o.state = 'queued'",
	3, {INT8OID, TEXTOID, INT4OID}
};

static IofficePlan list_plan = {
	NULL,
	"SELECT x->>'docId' FROM jsonb_array_elements(($1::jsonb)->'data') x "
	" WHERE x->>'docId' IS NOT NULL",
	1, {TEXTOID}
};

static IofficePlan file_plan = {
	NULL,
	"SELECT r->>'result', r->>'reason' FROM ioffice._edxml_axis_file($1, $2) r",
	2, {TEXTOID, INT8OID}
};

/*
 * A package id from the axis's list goes into a request header (docid) and
 * an acknowledgement: only ^[A-Za-z0-9._:-]{1,200}$, no CR, LF or other
 * byte that could end the header or add another.
 */
static bool
doc_id_ok(const char *id)
{
	size_t		len = strlen(id);

	if (len < 1 || len > 200)
		return false;
	for (const char *p = id; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
			  (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == ':' || *p == '-'))
			return false;
	return true;
}

/* a fetched package's bytes, at most: what the edXML reader takes */
static size_t
package_max(void)
{
	return (size_t) ioffice_edxml_max_size * 1024 * 1024;
}

static AxisConfig *
find_axis(List *axes, int64 id)
{
	ListCell   *lc;

	foreach(lc, axes)
	{
		AxisConfig *a = lfirst(lc);

		if (a->id == id)
			return a;
	}
	return NULL;
}

/*
 * Whether this database's ioffice has the axis (0.2): a database still at
 * 0.1 after the library was upgraded, or without ioffice, has no
 * exchange_axis, and its plans would fail at every step, restarting the
 * signer before it signs anything.
 */
static bool
axis_installed(void)
{
	bool		isnull;

	if (SPI_execute("SELECT pg_catalog.to_regclass('ioffice.exchange_axis') IS NOT NULL",
					true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "ioffice: could not look for exchange_axis");
	return DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/* what was listed is forgotten: listed again later */
static void
forget_pending(void)
{
	for (int i = 0; i < npending; i++)
	{
		pfree(pending[i].doc_id);
		if (pending[i].reason)
			pfree(pending[i].reason);
	}
	npending = 0;
}

/* the enabled axes, in TopTransactionContext's child: the caller's memory */
static List *
read_axes(void)
{
	List	   *axes = NIL;

	ioffice_exec_readonly(&axes_plan, NULL, NULL, 0);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		AxisConfig *a = palloc0(sizeof(AxisConfig));
		int32		v;

		ioffice_get_int64(i, 1, &a->id);
		ioffice_get_int64(i, 2, &a->agency);
		a->transport = ioffice_get_text(i, 3);
		a->url = ioffice_get_text(i, 4);
		a->system_id = ioffice_get_text(i, 5);
		a->secret = ioffice_get_text(i, 6);
		ioffice_get_int32(i, 7, &v);
		a->timeout_ms = v;
		ioffice_get_int32(i, 8, &v);
		a->max_attempts = v;
		ioffice_get_int32(i, 9, &v);
		a->poll_seconds = v;
		if (a->url == NULL)
			continue;
		axes = lappend(axes, a);
	}
	return axes;
}

/* run f(arg) in a subtransaction; NULL, or the error's message (palloc'd) */
static char *
in_subtransaction(void (*f) (void *), void *arg)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	char	   *volatile error = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		f(arg);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		error = pstrdup(edata->message);
		FreeErrorData(edata);
	}
	PG_END_TRY();
	return error;
}

/* ------------------------------------------------------------------------
 * Outcomes of calls
 * ------------------------------------------------------------------------
 */
typedef struct FileArg
{
	HttpCall   *c;
	char	   *result;
	char	   *reason;
} FileArg;

static void
file_one(void *arg)
{
	FileArg    *fa = arg;
	Datum		values[2];

	values[0] = PointerGetDatum(cstring_to_text_with_len(fa->c->answer.data, fa->c->answer.len));
	values[1] = Int64GetDatum(fa->c->axis);
	ioffice_exec(&file_plan, values, NULL, 0);
	fa->result = ioffice_get_text(0, 1);
	fa->reason = ioffice_get_text(0, 2);
}

static void
remember_ack(int64 axis, const char *doc_id)
{
	RecentAck  *r = &recent_acks[recent_next];

	recent_next = (recent_next + 1) % RECENT_ACKS;
	if (r->doc_id)
		pfree(r->doc_id);
	r->axis = axis;
	r->doc_id = MemoryContextStrdup(TopMemoryContext, doc_id);
	r->at = GetCurrentTimestamp();
}

static bool
acked_lately(int64 axis, const char *doc_id)
{
	TimestampTz since = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), -RECENT_ACK_MS);

	for (int i = 0; i < RECENT_ACKS; i++)
		if (recent_acks[i].doc_id && recent_acks[i].axis == axis &&
			recent_acks[i].at >= since && strcmp(recent_acks[i].doc_id, doc_id) == 0)
			return true;
	return false;
}

static void
add_pending(int64 axis, const char *doc_id, bool ack, bool done, const char *reason)
{
	Pending    *p;

	/*
	 * a fetch is not wanted while the package is fetched or acknowledged
	 * (waiting or in flight), nor just after it was acknowledged
	 */
	for (int i = 0; i < npending; i++)
		if (pending[i].axis == axis && (pending[i].ack == ack || !ack) &&
			strcmp(pending[i].doc_id, doc_id) == 0)
			return;
	for (int i = 0; i < calls.ncalls; i++)
	{
		HttpCall   *c = &calls.calls[i];

		if (c->state != HTTP_CALL_FREE && c->axis == axis && c->key && !ack &&
			(c->kind == CALL_FETCH || c->kind == CALL_ACK) && strcmp(c->key, doc_id) == 0)
			return;
	}
	if (!ack && acked_lately(axis, doc_id))
		return;
	if (npending >= MAX_FETCHES)
		return;
	p = &pending[npending++];
	p->axis = axis;
	p->doc_id = MemoryContextStrdup(TopMemoryContext, doc_id);
	p->ack = ack;
	p->done = done;
	p->reason = NULL;
	if (reason)
	{
		int			len = pg_mbcliplen(reason, strlen(reason), 500);
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		p->reason = pnstrdup(reason, len);
		MemoryContextSwitchTo(old);
	}
}

static void
record(HttpCall *c, List *axes)
{
	AxisConfig *axis = find_axis(axes, c->axis);

	switch (c->kind)
	{
		case CALL_SEND:
			{
				Datum		values[3];

				values[0] = Int64GetDatum(c->id);
				if (c->ok)
					ioffice_exec(&sent_plan, values, NULL, 0);
				else
				{
					values[1] = PointerGetDatum(cstring_to_text(c->error ? c->error : "failed"));
					values[2] = Int32GetDatum(axis ? axis->max_attempts : 12);
					ioffice_exec(&failed_plan, values, NULL, 0);
				}
				ioffice_worker_count(c->ok ? 1 : 0, c->ok ? 0 : 1);
				break;
			}
		case CALL_LIST:
			/* in a subtransaction of the caller's: an answer not JSON errs */
			if (!c->ok)
				ioffice_worker_note_error(psprintf("the axis's list: %s", c->error));
			else
			{
				Datum		values[1];

				values[0] = PointerGetDatum(cstring_to_text_with_len(c->answer.data, c->answer.len));
				ioffice_exec_readonly(&list_plan, values, NULL, 0);
				for (uint64 i = 0; i < SPI_processed; i++)
				{
					char	   *id = ioffice_get_text(i, 1);

					if (id == NULL)
						continue;
					if (!doc_id_ok(id))
					{
						/* not echoed: its bytes are the other system's */
						char	   *msg = psprintf("the axis listed a package id of %zu bytes that is not 1 to 200 of A-Z a-z 0-9 . _ : -: skipped",
												   strlen(id));

						elog(LOG, "ioffice: %s", msg);
						ioffice_worker_note_error(msg);
						continue;
					}
					add_pending(c->axis, id, false, false, NULL);
				}
			}
			break;
		case CALL_FETCH:
			if (!c->ok && c->truncated)
			{
				/* fetched again it would be as large: refused on the axis */
				add_pending(c->axis, c->key, true, false,
							psprintf("the edXML package is larger than ioffice.edxml_max_size (%d MB)",
									 ioffice_edxml_max_size));
			}
			else if (!c->ok)
				ioffice_worker_note_error(psprintf("the axis's package %s: %s", c->key, c->error));
			else if (memchr(c->answer.data, '\0', c->answer.len) != NULL ||
					 !pg_verifymbstr(c->answer.data, c->answer.len, true))
			{
				/* not text: it cannot become a text datum; refused on the axis */
				add_pending(c->axis, c->key, true, false,
							"the edXML package is not valid text: an invalid byte sequence or a NUL byte");
			}
			else
			{
				FileArg		fa = {c, NULL, NULL};
				char	   *error = in_subtransaction(file_one, &fa);

				if (error != NULL)
					ioffice_worker_note_error(psprintf("package %s from the axis: %s", c->key, error));
				else
					add_pending(c->axis, c->key, true, strcmp(fa.result, "refused") != 0, fa.reason);
			}
			break;
		case CALL_ACK:
			if (!c->ok)
				ioffice_worker_note_error(psprintf("acknowledging package %s: %s", c->key, c->error));
			else
				remember_ack(c->axis, c->key);
			break;
	}
}

/* the list answer parsed in a subtransaction: an answer that is not JSON is an error noted */
static void
record_list_safely(void *arg)
{
	void	  **a = arg;

	record((HttpCall *) a[0], (List *) a[1]);
}

/* ------------------------------------------------------------------------
 * New calls
 * ------------------------------------------------------------------------
 */
typedef struct SignArg
{
	int64		id;
	const AxisConfig *axis;
	const char *kind;
	const char *key;
	HttpCall   *c;
} SignArg;

static void
build_and_sign(void *arg)
{
	SignArg    *sa = arg;
	Datum		values[1];
	char	   *pkg;
	char	   *pem;
	char	   *key_file;
	char	   *key_uri;
	char	   *key_path;
	char	   *reason;
	bool		with_files;
	int64		document = 0;
	int			nfiles = 0;
	const char **files = NULL;
	size_t	   *file_lens = NULL;
	StringInfoData out;
	const AxisTransport *t = axis_transport(sa->axis->transport);

	values[0] = Int64GetDatum(sa->id);
	ioffice_exec_readonly(&build_plan, values, NULL, 0);
	if (SPI_processed != 1)
		elog(ERROR, "queued package %lld is gone", (long long) sa->id);
	pkg = ioffice_get_text(0, 1);
	pem = ioffice_get_text(0, 2);
	key_file = ioffice_get_text(0, 3);
	key_uri = ioffice_get_text(0, 4);
	ioffice_get_bool(0, 5, &with_files);
	ioffice_get_int64(0, 6, &document);
	if (pem == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the sending agency has no valid seal certificate to sign edXML packages with")));
	if (key_file != NULL)
		key_path = psprintf("%s/%s", ioffice_keystore, key_file);
	else if (key_uri != NULL)
	{
		/* the seal in an HSM: the helper opens the module (hsm_key.c) */
		char	   *why = NULL;

		key_path = ioffice_hsm_helper_spec(key_uri, &why);
		if (key_path == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the seal's key \"%s\" cannot sign edXML packages: %s", key_uri, why)));
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the seal's key is not registered: no key file and no PKCS#11 URI")));
	if (with_files)
	{
		values[0] = Int64GetDatum(document);
		ioffice_exec_readonly(&files_plan, values, NULL, 0);
		nfiles = (int) SPI_processed;
		files = palloc(sizeof(char *) * (nfiles + 1));
		file_lens = palloc(sizeof(size_t) * (nfiles + 1));
		for (int i = 0; i < nfiles; i++)
		{
			bool		isnull;
			bytea	   *b = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[i],
														  SPI_tuptable->tupdesc, 1, &isnull));

			files[i] = VARDATA_ANY(b);
			file_lens[i] = VARSIZE_ANY_EXHDR(b);
		}
	}
	initStringInfo(&out);
	reason = ioffice_edxml_sign(pkg, strlen(pkg), key_path, pem, nfiles, files, file_lens, &out);
	/* an HSM's spec holds the PIN */
	explicit_bzero(key_path, strlen(key_path));
	if (reason != NULL)
		ereport(ERROR, (errmsg("%s", reason)));
	if (t == NULL)
		elog(ERROR, "unknown transport %s", sa->axis->transport);
	sa->c->kind = CALL_SEND;
	sa->c->id = sa->id;
	sa->c->axis = sa->axis->id;
	t->send(sa->c, sa->axis, strcmp(sa->kind, "status") == 0 ? "status" : "edoc",
			sa->key, out.data, out.len);
	pfree(out.data);
}

static ArrayType *
busy_ids(void)
{
	Datum	   *d = palloc(sizeof(Datum) * (calls.ncalls + 1));
	int			n = 0;

	for (int i = 0; i < calls.ncalls; i++)
		if (calls.calls[i].state != HTTP_CALL_FREE && calls.calls[i].kind == CALL_SEND)
			d[n++] = Int64GetDatum(calls.calls[i].id);
	return construct_array(d, n, INT8OID, 8, true, TYPALIGN_DOUBLE);
}

static void
take_sends(List *axes)
{
	Datum		values[2];
	int			nfree = http_calls_count(&calls, HTTP_CALL_FREE);
	SPITupleTable *tt;
	uint64		n;

	if (nfree == 0)
		return;
	values[0] = Int32GetDatum(nfree);
	values[1] = PointerGetDatum(busy_ids());
	ioffice_exec(&due_plan, values, NULL, 0);
	tt = SPI_tuptable;
	n = SPI_processed;
	sends_full = n >= (uint64) nfree;
	for (uint64 i = 0; i < n; i++)
	{
		SignArg		sa;
		char	   *error;
		int64		axis_id;
		HttpCall   *c;
		bool		isnull;

		SPI_tuptable = tt;
		sa.id = DatumGetInt64(SPI_getbinval(tt->vals[i], tt->tupdesc, 1, &isnull));
		sa.kind = SPI_getvalue(tt->vals[i], tt->tupdesc, 2);
		sa.key = SPI_getvalue(tt->vals[i], tt->tupdesc, 3);
		axis_id = DatumGetInt64(SPI_getbinval(tt->vals[i], tt->tupdesc, 4, &isnull));
		sa.axis = find_axis(axes, axis_id);
		if (sa.axis == NULL)
			continue;
		c = http_call_take(&calls, ACK_MAX);
		if (c == NULL)
			break;
		sa.c = c;
		error = in_subtransaction(build_and_sign, &sa);
		if (error != NULL)
		{
			Datum		v[3];

			http_call_free(c);
			v[0] = Int64GetDatum(sa.id);
			v[1] = PointerGetDatum(cstring_to_text(error));
			v[2] = Int32GetDatum(sa.axis->max_attempts);
			ioffice_exec(&failed_plan, v, NULL, 0);
			ioffice_worker_note_error(psprintf("edXML package %lld: %s", (long long) sa.id, error));
		}
	}
}

static AxisPoll *
poll_of(int64 axis)
{
	for (int i = 0; i < npolls; i++)
		if (polls[i].axis == axis)
			return &polls[i];
	if (npolls >= lengthof(polls))
		return NULL;
	polls[npolls].axis = axis;
	polls[npolls].next_poll = 0;
	return &polls[npolls++];
}

static void
take_pulls(List *axes, TimestampTz now)
{
	ListCell   *lc;

	foreach(lc, axes)
	{
		AxisConfig *a = lfirst(lc);
		const AxisTransport *t = axis_transport(a->transport);
		AxisPoll   *p = poll_of(a->id);
		bool		listing = false;
		HttpCall   *c;

		if (t == NULL || !t->pulls || p == NULL || now < p->next_poll)
			continue;
		for (int i = 0; i < calls.ncalls; i++)
			if (calls.calls[i].state != HTTP_CALL_FREE && calls.calls[i].kind == CALL_LIST &&
				calls.calls[i].axis == a->id)
				listing = true;
		if (listing || (c = http_call_take(&calls, LIST_MAX)) == NULL)
			continue;
		c->kind = CALL_LIST;
		c->axis = a->id;
		t->list(c, a);
		p->next_poll = TimestampTzPlusMilliseconds(now, a->poll_seconds * 1000L);
	}
	/* acknowledgements first, then fetches, while calls are free */
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < npending;)
		{
			Pending    *pe = &pending[i];
			AxisConfig *a = find_axis(axes, pe->axis);
			const AxisTransport *t = a ? axis_transport(a->transport) : NULL;
			HttpCall   *c;

			if (pe->ack != (pass == 0))
			{
				i++;
				continue;
			}
			if (t != NULL && t->pulls)
			{
				c = http_call_take(&calls, pe->ack ? ACK_MAX : package_max());
				if (c == NULL)
					return;
				c->kind = pe->ack ? CALL_ACK : CALL_FETCH;
				c->axis = a->id;
				c->key = MemoryContextStrdup(c->cxt, pe->doc_id);
				if (pe->ack)
					t->acknowledge(c, a, pe->doc_id, pe->done, pe->reason);
				else
					t->fetch(c, a, pe->doc_id);
			}
			pfree(pe->doc_id);
			if (pe->reason)
				pfree(pe->reason);
			pending[i] = pending[--npending];
		}
}

/* ------------------------------------------------------------------------
 * The step
 * ------------------------------------------------------------------------
 */
bool
ioffice_worker_axis_step(void)
{
	TimestampTz now = GetCurrentTimestamp();
	bool		look = now >= next_look;
	List	   *volatile axes;

	http_calls_init(&calls, AXIS_CALLS);
	http_calls_collect(&calls);

	/*
	 * the last look filled every free call: as soon as a send is done,
	 * look again rather than at the next LOOK_MS (a queue of packages went
	 * out at most AXIS_CALLS per LOOK_MS)
	 */
	if (!look && sends_full)
		for (int i = 0; i < calls.ncalls; i++)
			if (calls.calls[i].state == HTTP_CALL_DONE && calls.calls[i].kind == CALL_SEND)
				look = true;
	if (!look && http_calls_count(&calls, HTTP_CALL_DONE) == 0 && npending == 0)
		return false;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "ioffice worker: edXML exchange with the axis");
	if (!axis_installed())
	{
		/* nothing to record into: what came back is dropped, looked at later */
		for (int i = 0; i < calls.ncalls; i++)
			if (calls.calls[i].state == HTTP_CALL_READY || calls.calls[i].state == HTTP_CALL_DONE)
				http_call_free(&calls.calls[i]);
		forget_pending();
		next_look = TimestampTzPlusMilliseconds(now, 5000);
		have_axes = false;
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
		pgstat_report_activity(STATE_IDLE, NULL);
		return false;
	}
	axes = read_axes();

	PG_TRY();
	{
		for (int i = 0; i < calls.ncalls; i++)
		{
			HttpCall   *c = &calls.calls[i];

			if (c->state != HTTP_CALL_DONE)
				continue;
			if (c->kind == CALL_LIST)
			{
				void	   *a[2] = {c, axes};
				char	   *error = in_subtransaction(record_list_safely, a);

				if (error)
					ioffice_worker_note_error(psprintf("the axis's list is not what VXP answers: %s", error));
			}
			else
				record(c, axes);
			http_call_free(c);
		}
		if (axes != NIL)
		{
			if (look)
				take_sends(axes);
			take_pulls(axes, now);
		}
		else
		{
			/* no axis any more: what was listed is listed again later */
			forget_pending();
		}
	}
	PG_CATCH();
	{
		/* nothing taken is started: the rows stay queued */
		for (int i = 0; i < calls.ncalls; i++)
			if (calls.calls[i].state == HTTP_CALL_READY || calls.calls[i].state == HTTP_CALL_DONE)
				http_call_free(&calls.calls[i]);
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (look)
		next_look = TimestampTzPlusMilliseconds(now, axes != NIL ? LOOK_MS : 5000);
	if (axes == NIL)
		sends_full = false;
	have_axes = axes != NIL;

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	http_calls_start_ready(&calls);
	return false;
}

bool
ioffice_worker_axis_flying(void)
{
	return calls.multi != NULL && http_calls_count(&calls, HTTP_CALL_FLYING) > 0;
}

/* how long the signer may sleep: until the next look or poll, at most max_ms */
long
ioffice_worker_axis_wait_ms(long max_ms)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz next = next_look;
	long		ms;

	for (int i = 0; i < npolls; i++)
		if (polls[i].next_poll < next || next == 0)
			next = polls[i].next_poll;
	/* packages listed and waiting for a free call: at once */
	if (npending > 0 && http_calls_count(&calls, HTTP_CALL_FREE) > 0)
		return 0;
	ms = TimestampDifferenceMilliseconds(now, next);
	/* with an axis, rows retried later: looked for about every second */
	if (have_axes)
		ms = Min(ms, 1000L);
	return Max(Min(ms, max_ms), 0);
}

/* the signer's sleep while calls are in flight: their sockets, and the latch */
void
ioffice_worker_axis_wait(long max_ms)
{
	long		ms = Min(Max(max_ms, 1), 100L);

	if (!PostmasterIsAlive())
		proc_exit(1);
	http_calls_poll(&calls, ms);
}
