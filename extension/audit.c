/*-------------------------------------------------------------------------
 * audit.c
 *	  Writing the audit trail, in the same transaction as the change, as
 *	  hash chains.
 *
 * Each record belongs to a chain and carries its position (seq), the hash of
 * the chain's previous record and its own hash over its canonical content
 * and that previous hash.  Removing, inserting, reordering or editing a
 * record breaks its chain, whoever does it (audit_verify.c finds it).
 *
 * One global chain would serialise every writer of the system.  Instead a
 * chain is per document ("document:42": the document, its files, tasks and
 * signatures), or per other entity ("unit:3", "workflow:outgoing").  Writers
 * of one chain are serialised by a transaction-level advisory lock on the
 * chain; act() already holds the document's row lock, so for documents the
 * advisory lock is never contended.  Writers of different chains never wait
 * for each other.  Whole chains removed, or their last records, are caught
 * against the sealed checkpoints of chain heads (audit_seal()).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "common/hashfn.h"
#include "common/sha2.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "ioffice.h"

static IofficePlan chain_head = {
	NULL,
	"SELECT seq, hash FROM ioffice.audit WHERE chain = $1 ORDER BY seq DESC LIMIT 1",
	1, {TEXTOID}
};

static IofficePlan audit_insert = {
	NULL,
	"INSERT INTO ioffice.audit (at, actor_id, on_behalf_of, db_role, entity, entity_id, action, "
	"state_before, state_after, detail, chain, seq, prev_hash, hash) "
	"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
	14, {TIMESTAMPTZOID, INT8OID, INT8OID, TEXTOID, TEXTOID, INT8OID, TEXTOID, TEXTOID,
	TEXTOID, JSONBOID, TEXTOID, INT8OID, BYTEAOID, BYTEAOID}
};

/* one field of the canonical form: "<length>:<bytes>;", or "-;" for NULL */
static void
put_field(StringInfo buf, const char *s, int len)
{
	if (s == NULL)
	{
		appendStringInfoString(buf, "-;");
		return;
	}
	appendStringInfo(buf, "%d:", len);
	appendBinaryStringInfo(buf, s, len);
	appendStringInfoChar(buf, ';');
}

static void
put_text(StringInfo buf, const char *s)
{
	put_field(buf, s, s ? (int) strlen(s) : 0);
}

static void
put_int(StringInfo buf, bool present, int64 v)
{
	char		tmp[32];

	if (!present)
	{
		put_field(buf, NULL, 0);
		return;
	}
	snprintf(tmp, sizeof(tmp), INT64_FORMAT, v);
	put_text(buf, tmp);
}

/*
 * The record's hash: SHA-256 over a length-prefixed serialisation of every
 * column that says what happened (so no two different records serialise
 * alike), the chain and position, and the previous record's hash.  The time
 * is hashed as PostgreSQL's internal microseconds and the detail as jsonb's
 * canonical text, both of which survive pg_dump and restore unchanged.
 */
void
ioffice_audit_hash(const char *chain, int64 seq, bytea *prev_hash, TimestampTz at,
				   bool has_actor, int64 actor, bool has_behalf, int64 on_behalf_of,
				   const char *db_role, const char *entity, bool has_entity_id,
				   int64 entity_id, const char *action, const char *state_before,
				   const char *state_after, const char *detail_text, uint8 *out)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "ioffice-audit-1;");
	put_text(&buf, chain);
	put_int(&buf, true, seq);
	if (prev_hash)
		put_field(&buf, VARDATA_ANY(prev_hash), VARSIZE_ANY_EXHDR(prev_hash));
	else
		put_field(&buf, NULL, 0);
	put_int(&buf, true, (int64) at);
	put_int(&buf, has_actor, actor);
	put_int(&buf, has_behalf, on_behalf_of);
	put_text(&buf, db_role);
	put_text(&buf, entity);
	put_int(&buf, has_entity_id, entity_id);
	put_text(&buf, action);
	put_text(&buf, state_before);
	put_text(&buf, state_after);
	put_text(&buf, detail_text);

	ioffice_sha256_bytes(buf.data, buf.len, out);
	pfree(buf.data);
}

/*
 * A row as jsonb for an audit record's detail, without file contents (their
 * SHA-256 stays) nor an endpoint's secret (the audit is readable by more
 * people than the secret): the direct-edit and rule-edit triggers describe
 * rows so.
 * NULL for no row.  The caller is connected to SPI.
 */
Jsonb *
ioffice_row_jsonb(HeapTuple tup, TupleDesc desc)
{
	Datum		arg[1];
	Oid			argtype[1];
	bool		isnull;
	Datum		d;

	if (tup == NULL)
		return NULL;
	arg[0] = heap_copy_tuple_as_datum(tup, desc);
	argtype[0] = desc->tdtypeid;
	if (SPI_execute_with_args("SELECT pg_catalog.to_jsonb($1) - '{content,secret}'::text[]", 1, argtype, arg,
							  NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "ioffice: could not describe a row");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? NULL : DatumGetJsonbPCopy(d);
}

/*
 * Is a dump being loaded?  pg_dump and pg_restore turn check_function_bodies
 * off, as PostgreSQL's own validators know; the dump brings its own audit
 * records, so the triggers add none.  Anyone may turn the setting off,
 * though: only a superuser session counts as a restore, or any role could
 * edit the audited tables unrecorded.
 */
bool
ioffice_restoring_dump(void)
{
	return !check_function_bodies && superuser_arg(GetSessionUserId());
}

/* the same, for the SQL triggers that stand aside in a restore too */
PG_FUNCTION_INFO_V1(ioffice_restoring_dump_sql);
Datum
ioffice_restoring_dump_sql(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(ioffice_restoring_dump());
}

/*
 * _audit_next_id(): the default of audit.id, for every writer of the trail
 * (this file, registers.c, the worker, a superuser's INSERT).  The
 * transaction gets its transaction id before the audit id, not after as a
 * plain nextval() in an INSERT would have it: the seal (audit_verify.c
 * settle_horizon) knows that every id handed out before it read the
 * sequence is held by a transaction older than the next transaction id it
 * read then, and reads the trail from there once those have all ended.
 */
PG_FUNCTION_INFO_V1(ioffice_audit_next_id);
Datum
ioffice_audit_next_id(PG_FUNCTION_ARGS)
{
	Oid			seq = get_relname_relid("audit_id_seq", get_namespace_oid("ioffice", false));

	if (!OidIsValid(seq))
		elog(ERROR, "ioffice: sequence ioffice.audit_id_seq is missing");
	(void) GetTopTransactionId();
	PG_RETURN_INT64(nextval_internal(seq, true));
}

/* "document:42": the chain of a document, its files, tasks and signatures */
char *
ioffice_document_chain(int64 doc)
{
	return psprintf("document:" INT64_FORMAT, doc);
}

/*
 * Record one act in the given chain.  actor 0 means "no person" (a DBA's
 * direct edit: the record still carries the database role).  The caller is
 * connected to SPI.
 */
void
ioffice_audit_in_chain(const char *chain, int64 actor, int64 on_behalf_of,
					   const char *entity, int64 entity_id, const char *action,
					   const char *state_before, const char *state_after, Jsonb *detail)
{
	Datum		values[14];
	char		nulls[14];
	TimestampTz at = GetCurrentTransactionStartTimestamp();
	char	   *db_role = GetUserNameFromId(GetSessionUserId(), false);

	if (detail == NULL)
		detail = ioffice_jsonb_end(ioffice_jsonb_begin());

	memset(nulls, ' ', sizeof(nulls));
	values[0] = TimestampTzGetDatum(at);
	values[1] = Int64GetDatum(actor);
	nulls[1] = actor ? ' ' : 'n';
	values[2] = Int64GetDatum(on_behalf_of);
	nulls[2] = on_behalf_of ? ' ' : 'n';
	values[3] = CStringGetTextDatum(db_role);
	values[4] = CStringGetTextDatum(entity);
	values[5] = Int64GetDatum(entity_id);
	nulls[5] = entity_id ? ' ' : 'n';
	values[6] = CStringGetTextDatum(action);
	values[7] = state_before ? CStringGetTextDatum(state_before) : (Datum) 0;
	nulls[7] = state_before ? ' ' : 'n';
	values[8] = state_after ? CStringGetTextDatum(state_after) : (Datum) 0;
	nulls[8] = state_after ? ' ' : 'n';
	values[9] = JsonbPGetDatum(detail);

	if (ioffice_audit_chaining)
	{
		int64		seq = 0;
		bytea	   *prev = NULL;
		uint8		hash[PG_SHA256_DIGEST_LENGTH];
		uint64		key = hash_bytes_extended((const unsigned char *) chain,
											  strlen(chain), 0x10ff1ce);
		bool		isnull;

		Datum		head_args[1];

		/* one writer per chain at a time, until commit */
		DirectFunctionCall1(pg_advisory_xact_lock_int8, Int64GetDatum((int64) key));
		head_args[0] = CStringGetTextDatum(chain);
		ioffice_exec(&chain_head, head_args, NULL, 1);
		if (SPI_processed > 0)
		{
			Datum		d;

			ioffice_get_int64(0, 1, &seq);
			d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
			if (!isnull)
				prev = DatumGetByteaPCopy(d);
		}
		seq++;
		ioffice_audit_hash(chain, seq, prev, at,
						   actor != 0, actor, on_behalf_of != 0, on_behalf_of,
						   db_role, entity, entity_id != 0, entity_id, action,
						   state_before, state_after,
						   JsonbToCString(NULL, &detail->root, VARSIZE(detail)),
						   hash);
		values[10] = CStringGetTextDatum(chain);
		values[11] = Int64GetDatum(seq);
		values[12] = prev ? PointerGetDatum(prev) : (Datum) 0;
		nulls[12] = prev ? ' ' : 'n';
		values[13] = PointerGetDatum(ioffice_bytea(hash, PG_SHA256_DIGEST_LENGTH));
	}
	else
	{
		/* unchained: for measuring the chaining's cost only */
		nulls[10] = nulls[11] = nulls[12] = nulls[13] = 'n';
	}
	ioffice_exec(&audit_insert, values, nulls, 0);
}

/* Record one act in the entity's own chain ("unit:3"), or its document's. */
void
ioffice_audit(int64 actor, int64 on_behalf_of, const char *entity, int64 entity_id,
			  const char *action, const char *state_before, const char *state_after,
			  Jsonb *detail)
{
	char	   *chain = psprintf("%s:" INT64_FORMAT, entity, entity_id);

	ioffice_audit_in_chain(chain, actor, on_behalf_of, entity, entity_id, action,
						   state_before, state_after, detail);
}

/*
 * _audit(entity, entity_id, action, state_before, state_after, detail,
 *        on_behalf_of, chain): for the extension's SQL functions.  Not granted
 * to PUBLIC: only the extension's own SECURITY DEFINER code writes the trail.
 */
PG_FUNCTION_INFO_V1(ioffice_audit_sql);
Datum
ioffice_audit_sql(PG_FUNCTION_ARGS)
{
	int64		actor;
	char	   *entity;
	char	   *action;
	int64		entity_id;
	char	   *chain;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("an audit record needs an entity and an action")));
	entity = text_to_cstring(PG_GETARG_TEXT_PP(0));
	action = text_to_cstring(PG_GETARG_TEXT_PP(2));
	entity_id = PG_ARGISNULL(1) ? 0 : PG_GETARG_INT64(1);
	chain = PG_ARGISNULL(7) ? psprintf("%s:" INT64_FORMAT, entity, entity_id)
		: text_to_cstring(PG_GETARG_TEXT_PP(7));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	actor = ioffice_resolve_actor(true);
	ioffice_audit_in_chain(chain, actor,
						   PG_ARGISNULL(6) ? 0 : PG_GETARG_INT64(6),
						   entity, entity_id, action,
						   PG_ARGISNULL(3) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(3)),
						   PG_ARGISNULL(4) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(4)),
						   PG_ARGISNULL(5) ? NULL : PG_GETARG_JSONB_P(5));
	SPI_finish();
	PG_RETURN_VOID();
}
