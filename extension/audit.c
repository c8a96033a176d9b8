/*-------------------------------------------------------------------------
 * audit.c
 *	  Writing the audit trail, in the same transaction as the change.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "ioffice.h"

static IofficePlan audit_insert = {
	NULL,
	"INSERT INTO ioffice.audit (actor_id, on_behalf_of, entity, entity_id, action, "
	"state_before, state_after, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
	8, {INT8OID, INT8OID, TEXTOID, INT8OID, TEXTOID, TEXTOID, TEXTOID, JSONBOID}
};

/*
 * Record one act.  actor 0 means "no person" (a DBA's direct edit: the row
 * still carries the database role).  The caller must be connected to SPI.
 */
void
ioffice_audit(int64 actor, int64 on_behalf_of, const char *entity, int64 entity_id,
			  const char *action, const char *state_before, const char *state_after,
			  Jsonb *detail)
{
	Datum		values[8];
	char		nulls[8];

	memset(nulls, ' ', sizeof(nulls));
	values[0] = Int64GetDatum(actor);
	nulls[0] = actor ? ' ' : 'n';
	values[1] = Int64GetDatum(on_behalf_of);
	nulls[1] = on_behalf_of ? ' ' : 'n';
	values[2] = CStringGetTextDatum(entity);
	values[3] = Int64GetDatum(entity_id);
	nulls[3] = entity_id ? ' ' : 'n';
	values[4] = CStringGetTextDatum(action);
	values[5] = state_before ? CStringGetTextDatum(state_before) : (Datum) 0;
	nulls[5] = state_before ? ' ' : 'n';
	values[6] = state_after ? CStringGetTextDatum(state_after) : (Datum) 0;
	nulls[6] = state_after ? ' ' : 'n';
	if (detail == NULL)
		detail = ioffice_jsonb_end(ioffice_jsonb_begin());
	values[7] = JsonbPGetDatum(detail);
	ioffice_exec(&audit_insert, values, nulls, 0);
}

/*
 * _audit(entity, entity_id, action, state_before, state_after, detail,
 *        on_behalf_of): for the extension's SQL functions.  Not granted to
 * PUBLIC: only the extension's own SECURITY DEFINER code writes the trail.
 */
PG_FUNCTION_INFO_V1(ioffice_audit_sql);
Datum
ioffice_audit_sql(PG_FUNCTION_ARGS)
{
	int64		actor;
	char	   *entity;
	char	   *action;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("an audit record needs an entity and an action")));
	entity = text_to_cstring(PG_GETARG_TEXT_PP(0));
	action = text_to_cstring(PG_GETARG_TEXT_PP(2));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	actor = ioffice_resolve_actor(true);
	ioffice_audit(actor,
				  PG_ARGISNULL(6) ? 0 : PG_GETARG_INT64(6),
				  entity,
				  PG_ARGISNULL(1) ? 0 : PG_GETARG_INT64(1),
				  action,
				  PG_ARGISNULL(3) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(3)),
				  PG_ARGISNULL(4) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(4)),
				  PG_ARGISNULL(5) ? NULL : PG_GETARG_JSONB_P(5));
	SPI_finish();
	PG_RETURN_VOID();
}
