/*-------------------------------------------------------------------------
 * audit_triggers.c
 *	  Triggers that keep the audit trail whole.
 *
 *	  _audit_append_only  BEFORE UPDATE/DELETE (row) and TRUNCATE (statement)
 *	                      on the audit tables: refused for everyone, the
 *	                      owner included.  (A superuser can still bypass
 *	                      triggers; the hash chains are what catch that.)
 *	  _audit_heads_checkpointed
 *	                      AFTER INSERT (statement) on audit_checkpoint_head:
 *	                      every head belongs to a checkpoint.  A foreign key
 *	                      checked it row by row, which cost a seal of 10,000
 *	                      chains more than all the rest of the insert; here
 *	                      it is one query per statement.  Not in a restore
 *	                      (the dump's tables load in any order).
 *	  _audit_direct       AFTER INSERT/UPDATE/DELETE (row) and TRUNCATE
 *	                      (statement) on the core tables: a change that does
 *	                      not come from the extension's functions is recorded
 *	                      as such, with the database role that made it.
 *	                      Argument: the column naming the row's document
 *	                      ("id" on document, "document_id" on its children),
 *	                      so the record joins that document's chain; none for
 *	                      tables of their own.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/rel.h"

#include "ioffice.h"

PG_FUNCTION_INFO_V1(ioffice_audit_append_only);
Datum
ioffice_audit_append_only(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = ioffice_trigger_data(fcinfo, "_audit_append_only");

	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("table %s is append-only: its records cannot be %s",
					RelationGetRelationName(trigdata->tg_relation),
					TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ? "changed" : "removed"),
			 errdetail("The audit trail keeps every act of the system for inspection.")));
	return PointerGetDatum(NULL);
}

PG_FUNCTION_INFO_V1(ioffice_audit_heads_checkpointed);
Datum
ioffice_audit_heads_checkpointed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = ioffice_trigger_data(fcinfo, "_audit_heads_checkpointed");
	bool		isnull;

	if (trigdata->tg_newtable == NULL)
		elog(ERROR, "ioffice: _audit_heads_checkpointed needs the new rows as new_heads");
	if (ioffice_restoring_dump())
		return PointerGetDatum(NULL);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	if (SPI_register_trigger_data(trigdata) != SPI_OK_TD_REGISTER)
		elog(ERROR, "ioffice: could not read the new chain heads");
	if (SPI_execute("SELECT h.checkpoint_id FROM new_heads h "
					" WHERE NOT EXISTS (SELECT 1 FROM ioffice.audit_checkpoint c "
					"                    WHERE c.id = h.checkpoint_id) LIMIT 1",
					true, 1) != SPI_OK_SELECT)
		elog(ERROR, "ioffice: could not read the new chain heads");
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				 errmsg("chain heads of checkpoint " INT64_FORMAT ", which does not exist",
						DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
													1, &isnull))),
				 errdetail("Chain heads are written with their checkpoint, by audit_seal().")));
	SPI_finish();
	return PointerGetDatum(NULL);
}

static bool
column_int8(HeapTuple tup, TupleDesc desc, const char *column, int64 *out)
{
	int			col = SPI_fnumber(desc, column);
	bool		isnull;
	Datum		d;

	if (tup == NULL || col <= 0)
		return false;
	d = heap_getattr(tup, col, desc, &isnull);
	if (isnull)
		return false;
	*out = DatumGetInt64(d);
	return true;
}

static char *
column_text(HeapTuple tup, TupleDesc desc, const char *column)
{
	int			col = SPI_fnumber(desc, column);

	if (tup == NULL || col <= 0)
		return NULL;
	return SPI_getvalue(tup, desc, col);
}

PG_FUNCTION_INFO_V1(ioffice_audit_direct);
Datum
ioffice_audit_direct(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = ioffice_trigger_data(fcinfo, "_audit_direct");
	Relation	rel;
	TupleDesc	desc;
	const char *table;
	const char *doc_column;
	HeapTuple	old_tup;
	HeapTuple	new_tup;
	HeapTuple	any;
	const char *action;
	int64		id = 0;
	int64		doc = 0;
	char	   *chain;
	JsonbBuild *b;

	/*
	 * The engine audits its own changes, with their meaning.  A dump being
	 * loaded brings its audit records along.
	 */
	if (ioffice_in_engine() || ioffice_restoring_dump())
		return PointerGetDatum(NULL);

	rel = trigdata->tg_relation;
	desc = rel->rd_att;
	table = RelationGetRelationName(rel);
	doc_column = trigdata->tg_trigger->tgnargs > 0 ? trigdata->tg_trigger->tgargs[0] : NULL;

	action = psprintf("direct_%s", ioffice_trigger_rows(trigdata, &old_tup, &new_tup));
	any = new_tup ? new_tup : old_tup;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	column_int8(any, desc, "id", &id);
	if (doc_column && column_int8(any, desc, doc_column, &doc))
		chain = ioffice_document_chain(doc);
	else
		chain = psprintf("%s:" INT64_FORMAT, table, id);

	b = ioffice_jsonb_begin();
	ioffice_jsonb_add_jsonb(b, "old", ioffice_row_jsonb(old_tup, desc));
	ioffice_jsonb_add_jsonb(b, "new", ioffice_row_jsonb(new_tup, desc));
	ioffice_audit_in_chain(chain, ioffice_resolve_actor(true), 0, table, id, action,
						   column_text(old_tup, desc, "state"),
						   column_text(new_tup, desc, "state"),
						   ioffice_jsonb_end(b));
	SPI_finish();
	return PointerGetDatum(NULL);
}
