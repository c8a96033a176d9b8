/*-------------------------------------------------------------------------
 * outbox.c
 *	  Queueing events for other systems: the enqueue side of the HTTP outbox.
 *
 * An event becomes one outbox row per enabled endpoint that takes it,
 * inserted in the caller's transaction: the event exists if and only if the
 * change it reports committed, and nothing here waits on the network.  The
 * body is built once, here, so every delivery attempt sends the same bytes
 * under the same idempotency key.  The worker is woken when the transaction
 * commits (workers/outbox_delivery.c delivers).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "ioffice.h"
#include "outbox.h"
#include "worker.h"

/*
 * Events announce changes; they do not carry files.  The bound keeps every
 * request body (and a batch of them in the worker's memory) small.
 */
#define IOFFICE_EVENT_MAX_BYTES (256 * 1024)

/*
 * The endpoints taking an event: an exact name, a prefix written
 * 'dossier.*', or '*'.  One uuid per row: each endpoint's copy is its own
 * delivery, with its own attempts.
 */
static IofficePlan enqueue_plan = {
	NULL,
	"INSERT INTO ioffice.outbox (endpoint_id, event, idempotency_key, body) "
	"SELECT e.id, $1, k.key, "
	"       jsonb_build_object('id', k.key, 'event', $1, "
	"                          'at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
	"                          'data', $2) "
	"  FROM ioffice.endpoint e CROSS JOIN LATERAL (SELECT gen_random_uuid() AS key, e.id AS eid) k "
	" WHERE e.enabled "
	"   AND EXISTS (SELECT 1 FROM unnest(e.events) p "
	"                WHERE p = '*' OR p = $1 "
	"                   OR (p LIKE '%.*' AND starts_with($1, left(p, -1))))",
	2, {TEXTOID, JSONBOID}
};

/*
 * The event patterns of the enabled endpoints, kept per backend so that an
 * event no endpoint takes (every event, while no endpoint is configured)
 * costs no query: events are queued from inside locked sections, a number's
 * under its register's row lock.  The statement trigger on endpoint sends a
 * relcache invalidation of the table, which reaches every backend when the
 * change commits and this one at its next command (the cache is emptied
 * by that table's invalidation, or by a cache reset, which arrives as
 * InvalidOid).  Pending invalidations are taken before each use: a long
 * transaction may already hold every lock it needs, and a lock that is
 * already held takes none.  A transaction reading from one snapshot
 * (REPEATABLE READ, SERIALIZABLE) asks the table each time: a cache loaded
 * from its old snapshot would outlive the invalidation it consumed.
 */
static List *endpoint_patterns = NIL;
static bool endpoint_patterns_valid = false;
static MemoryContext endpoint_patterns_cxt = NULL;
static Oid	endpoint_relid = InvalidOid;

static IofficePlan endpoint_patterns_plan = {
	NULL,
	"SELECT DISTINCT p FROM ioffice.endpoint e, unnest(e.events) p WHERE e.enabled",
	0, {InvalidOid}
};

static void
endpoint_patterns_invalidate(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == endpoint_relid)
		endpoint_patterns_valid = false;
}

static void
load_endpoint_patterns(void)
{
	MemoryContext old;
	uint64		i;

	if (endpoint_patterns_cxt == NULL)
	{
		endpoint_patterns_cxt = AllocSetContextCreate(CacheMemoryContext,
													  "ioffice endpoint patterns",
													  ALLOCSET_SMALL_SIZES);
		CacheRegisterRelcacheCallback(endpoint_patterns_invalidate, (Datum) 0);
	}
	MemoryContextReset(endpoint_patterns_cxt);
	endpoint_patterns = NIL;
	endpoint_relid = get_relname_relid("endpoint", get_namespace_oid("ioffice", false));
	/* set before reading: an invalidation arriving meanwhile clears it again */
	endpoint_patterns_valid = true;
	PG_TRY();
	{
		ioffice_exec(&endpoint_patterns_plan, NULL, NULL, 0);
		old = MemoryContextSwitchTo(endpoint_patterns_cxt);
		for (i = 0; i < SPI_processed; i++)
			endpoint_patterns = lappend(endpoint_patterns, ioffice_get_text(i, 1));
		MemoryContextSwitchTo(old);
	}
	PG_CATCH();
	{
		endpoint_patterns_valid = false;
		PG_RE_THROW();
	}
	PG_END_TRY();
}

/* false when no enabled endpoint takes the event (the test of enqueue_plan), else true */
static bool
some_endpoint_takes(const char *event)
{
	ListCell   *lc;

	if (IsolationUsesXactSnapshot())
		return true;			/* enqueue_plan decides, from the snapshot */
	AcceptInvalidationMessages();
	if (!endpoint_patterns_valid)
		load_endpoint_patterns();
	foreach(lc, endpoint_patterns)
	{
		const char *p = lfirst(lc);
		size_t		len = strlen(p);

		if (strcmp(p, "*") == 0 || strcmp(p, event) == 0)
			return true;
		if (len >= 2 && p[len - 2] == '.' && p[len - 1] == '*' &&
			strncmp(event, p, len - 1) == 0)
			return true;
	}
	return false;
}

/* event names: lower-case words joined by dots, "dossier.status" */
static void
check_event_name(const char *event)
{
	const char *c;
	bool		word_start = true;

	if (strlen(event) < 1 || strlen(event) > 100)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("an event name has 1 to 100 characters")));
	for (c = event; *c; c++)
	{
		if (*c == '.' && !word_start)
			word_start = true;
		else if ((*c >= 'a' && *c <= 'z') || *c == '_' || (*c >= '0' && *c <= '9' && !word_start))
			word_start = false;
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid event name \"%s\"", event),
					 errhint("Event names are lower-case words joined by dots, like \"document.issued\".")));
	}
	if (word_start)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid event name \"%s\"", event),
				 errhint("Event names are lower-case words joined by dots, like \"document.issued\".")));
}

/*
 * Queue an event in the current transaction; SPI must be connected.
 * Returns the number of rows queued (0 when no endpoint takes it).
 */
int
ioffice_outbox_enqueue(const char *event, Jsonb *data)
{
	Datum		values[2];
	int			queued;

	check_event_name(event);
	if (VARSIZE(data) > IOFFICE_EVENT_MAX_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("the data of event \"%s\" is too large (%zu bytes)", event,
						(size_t) VARSIZE(data)),
				 errdetail("An event carries at most %d bytes; send a reference to large content instead.",
						   IOFFICE_EVENT_MAX_BYTES)));
	if (!some_endpoint_takes(event))
		return 0;
	values[0] = CStringGetTextDatum(event);
	values[1] = JsonbPGetDatum(data);
	ioffice_exec(&enqueue_plan, values, NULL, 0);
	queued = (int) SPI_processed;
	if (queued > 0)
		ioffice_worker_wake_at_commit();
	return queued;
}

static IofficePlan person_contact = {
	NULL,
	"SELECT login, full_name, phone, email FROM ioffice.person WHERE id = $1",
	1, {INT8OID}
};

/*
 * A notification (the "Gửi tin nhắn", "Gửi Email", "Gửi Zalo" ticks of an
 * action) becomes the event notify.<channel> for the gateway endpoint.  It
 * goes to a person of the directory (person <> 0) or to an address given
 * directly (a citizen's phone for Zalo).  Returns whether it was queued:
 * not when no enabled endpoint takes notify.<channel>, nor when a person
 * has no phone number or e-mail address, so that the caller records only
 * the notices that will go out.
 */
bool
ioffice_outbox_notify(const char *channel, int64 person, const char *address,
					  const char *message, Jsonb *about)
{
	JsonbBuild *b = ioffice_jsonb_begin();
	char	   *to = address ? pstrdup(address) : NULL;
	char	   *event;

	if (strcmp(channel, "sms") != 0 && strcmp(channel, "email") != 0 &&
		strcmp(channel, "zalo") != 0)
		elog(ERROR, "ioffice: unknown notification channel \"%s\"", channel);
	event = psprintf("notify.%s", channel);
	if (!some_endpoint_takes(event))
		return false;

	ioffice_jsonb_add_text(b, "channel", channel);
	if (person != 0)
	{
		Datum		values[1];

		values[0] = Int64GetDatum(person);
		ioffice_exec(&person_contact, values, NULL, 1);
		if (SPI_processed == 0)
			return false;
		ioffice_jsonb_add_text(b, "login", ioffice_get_text(0, 1));
		ioffice_jsonb_add_text(b, "name", ioffice_get_text(0, 2));
		if (to == NULL)
			to = ioffice_get_text(0, strcmp(channel, "email") == 0 ? 4 : 3);
	}
	if (to == NULL || to[0] == '\0')
		return false;
	ioffice_jsonb_add_text(b, "to", to);
	ioffice_jsonb_add_text(b, "message", message);
	if (about)
		ioffice_jsonb_add_jsonb(b, "about", about);

	return ioffice_outbox_enqueue(event, ioffice_jsonb_end(b)) > 0;
}

/*
 * Events the system itself writes.  Receivers trust what arrives signed with
 * the endpoint's secret, so an application must not be able to announce an
 * issued document or a dossier's new status that never happened.
 */
static const char *const reserved_prefixes[] = {"document.", "dossier.", "number.", "notify."};

static Datum
emit_common(FunctionCallInfo fcinfo, bool application)
{
	char	   *event;
	Jsonb	   *data;
	int			queued;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("emit() needs an event name")));
	event = text_to_cstring(PG_GETARG_TEXT_PP(0));
	check_event_name(event);
	for (int i = 0; application && i < lengthof(reserved_prefixes); i++)
		if (strncmp(event, reserved_prefixes[i], strlen(reserved_prefixes[i])) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("event \"%s\" is the system's own", event),
					 errdetail("Events under document., dossier., number. and notify. are written by ioffice when the change happens."),
					 errhint("Name an application's events otherwise, like \"app.%s\".", event)));
	if (PG_ARGISNULL(1))
		data = ioffice_jsonb_end(ioffice_jsonb_begin());
	else
		data = PG_GETARG_JSONB_P(1);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	queued = ioffice_outbox_enqueue(event, data);
	SPI_finish();
	PG_RETURN_INT32(queued);
}

/* emit(event, data) → int: an application's own event */
PG_FUNCTION_INFO_V1(ioffice_emit);
Datum
ioffice_emit(PG_FUNCTION_ARGS)
{
	return emit_common(fcinfo, true);
}

/* _emit(event, data) → int: the system's events written from SQL; not granted */
PG_FUNCTION_INFO_V1(ioffice_emit_system);
Datum
ioffice_emit_system(PG_FUNCTION_ARGS)
{
	return emit_common(fcinfo, false);
}

/* _wake_worker(): wake the worker when this transaction commits */
PG_FUNCTION_INFO_V1(ioffice_wake_worker_sql);
Datum
ioffice_wake_worker_sql(PG_FUNCTION_ARGS)
{
	ioffice_worker_wake_at_commit();
	PG_RETURN_VOID();
}

/*
 * _endpoints_changed(): statement trigger on endpoint.  Every backend's
 * cache of the endpoints' event patterns is emptied when the change commits
 * (this backend's at its next command).
 */
PG_FUNCTION_INFO_V1(ioffice_endpoints_changed);
Datum
ioffice_endpoints_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("_endpoints_changed must be called as a trigger")));
	CacheInvalidateRelcacheByRelid(RelationGetRelid(trigdata->tg_relation));
	endpoint_patterns_valid = false;
	return PointerGetDatum(NULL);
}
