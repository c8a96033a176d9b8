/*-------------------------------------------------------------------------
 * rule_triggers.c
 *	  Triggers on the workflow rule tables.
 *
 *	  _rule_check_names  BEFORE ROW on workflow_transition: every name a rule
 *	                     uses (taken_by, receiver, guards, effects, options)
 *	                     is one the engine knows.
 *	  _rule_check_graph  deferred constraint trigger: at commit, the edited
 *	                     workflow still has a way out of every state and can
 *	                     reach its final states.  Deferred, so that a DBA can
 *	                     add a state and then its transitions in one
 *	                     transaction.  Not while a dump is loaded: see there.
 *	  _rule_invalidate   AFTER STATEMENT: tell every backend's rule cache.
 *	  _rule_audit        AFTER ROW: rule edits are part of the audit trail.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/rel.h"

#include "workflow.h"

static char *
tuple_text(HeapTuple tup, TupleDesc desc, const char *column)
{
	int			col = SPI_fnumber(desc, column);
	bool		isnull;
	Datum		d;

	if (col <= 0)
		elog(ERROR, "ioffice: rule table has no column %s", column);
	d = heap_getattr(tup, col, desc, &isnull);
	return isnull ? NULL : TextDatumGetCString(d);
}

static void
check_list(HeapTuple tup, TupleDesc desc, const char *column, const WfNamedStep *registry,
		   const char *what, const char *listfn)
{
	int			col = SPI_fnumber(desc, column);
	bool		isnull;
	Datum		d = heap_getattr(tup, col, desc, &isnull);
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;

	if (isnull)
		return;
	deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &n);
	for (i = 0; i < n; i++)
	{
		char	   *name;
		WfOptionType type;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s of a workflow transition may not contain NULL", column)));
		name = TextDatumGetCString(elems[i]);
		if (registry ? ioffice_find_step(registry, name) == NULL
			: !ioffice_option_type(name, &type))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("unknown %s \"%s\"", what, name),
					 errhint("SELECT * FROM ioffice.%s() lists them.", listfn)));
	}
}

/* a named message for an unknown state (the foreign key stays as the backstop) */
static void
check_state(HeapTuple tup, TupleDesc desc, const char *column)
{
	char	   *workflow = tuple_text(tup, desc, "workflow");
	char	   *state = tuple_text(tup, desc, column);
	Datum		args[2];
	Oid			types[2] = {TEXTOID, TEXTOID};
	bool		found;

	if (workflow == NULL || state == NULL)
		return;					/* NOT NULL reports it */
	args[0] = CStringGetTextDatum(workflow);
	args[1] = CStringGetTextDatum(state);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	if (SPI_execute_with_args("SELECT 1 FROM ioffice.workflow_state WHERE workflow = $1 AND state = $2",
							  2, types, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "ioffice: could not read table workflow_state");
	found = SPI_processed > 0;
	SPI_finish();
	if (!found)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("unknown state \"%s\" in %s of workflow \"%s\"", state, column, workflow),
				 errhint("Add the state to workflow_state first.")));
}

PG_FUNCTION_INFO_V1(ioffice_rule_check_names);
Datum
ioffice_rule_check_names(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = ioffice_trigger_data(fcinfo, "_rule_check_names");
	HeapTuple	tup;
	TupleDesc	desc;
	char	   *taken_by;
	char	   *receiver;
	WfTakenBy	taken_by_value;
	WfReceiver	receiver_value;

	tup = ioffice_trigger_row(trigdata);
	desc = trigdata->tg_relation->rd_att;

	taken_by = tuple_text(tup, desc, "taken_by");
	if (!ioffice_parse_taken_by(taken_by, &taken_by_value))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown taken_by \"%s\"", taken_by ? taken_by : "NULL"),
				 errhint("A transition is taken by the drafter, the holder, a clerk of the "
						 "document's agency, or a cooperator.")));
	receiver = tuple_text(tup, desc, "receiver");
	if (!ioffice_parse_receiver(receiver, &receiver_value))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown receiver \"%s\"", receiver ? receiver : "NULL"),
				 errhint("A transition goes to none, given (to_login), drafter or default_clerk.")));
	check_state(tup, desc, "from_state");
	check_state(tup, desc, "to_state");
	check_list(tup, desc, "guards", ioffice_guards, "guard", "guards");
	check_list(tup, desc, "effects", ioffice_effects, "effect", "effects");
	check_list(tup, desc, "options", NULL, "option", "options");
	return PointerGetDatum(tup);
}

PG_FUNCTION_INFO_V1(ioffice_rule_check_graph);
Datum
ioffice_rule_check_graph(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = ioffice_trigger_data(fcinfo, "_rule_check_graph");
	HeapTuple	tup;
	char	   *name;
	Workflow   *wf;


	/*
	 * A dump being loaded (a superuser session with check_function_bodies
	 * off: pg_restore, or pg_dump's script in psql) brings a workflow's
	 * states and its transitions in separate transactions: pg_restore
	 * commits each table's data apart unless run with --single-transaction,
	 * psql each COPY.  The states arrive first (the foreign keys order
	 * them), without their ways out, so the whole graph cannot hold at each
	 * commit.  Rows are still checked one by one (names, states of a
	 * transition, foreign keys); the shape is checked when act() first loads
	 * the workflow, and workflow_check() reports it.  Only a superuser's
	 * session counts as a restore: no other role skips this check.
	 */
	if (ioffice_restoring_dump())
		return PointerGetDatum(NULL);

	tup = ioffice_trigger_row(trigdata);
	name = tuple_text(tup, trigdata->tg_relation->rd_att, "workflow");

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	wf = ioffice_workflow_load(name);
	if (wf != NULL)
		ioffice_workflow_check_graph(wf);
	SPI_finish();
	return PointerGetDatum(NULL);
}

PG_FUNCTION_INFO_V1(ioffice_rule_invalidate);
Datum
ioffice_rule_invalidate(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = ioffice_trigger_data(fcinfo, "_rule_invalidate");

	/* delivered to every backend at commit, and to this one at once */
	CacheInvalidateRelcacheByRelid(RelationGetRelid(trigdata->tg_relation));
	ioffice_workflow_invalidate();
	return PointerGetDatum(NULL);
}

PG_FUNCTION_INFO_V1(ioffice_rule_audit);
Datum
ioffice_rule_audit(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = ioffice_trigger_data(fcinfo, "_rule_audit");
	TupleDesc	desc;
	HeapTuple	old_tup;
	HeapTuple	new_tup;
	const char *action;
	JsonbBuild *b;

	/* a dump being loaded brings its own audit records */
	if (ioffice_restoring_dump())
		return PointerGetDatum(NULL);
	desc = trigdata->tg_relation->rd_att;
	action = ioffice_trigger_rows(trigdata, &old_tup, &new_tup);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	b = ioffice_jsonb_begin();
	ioffice_jsonb_add_jsonb(b, "old", ioffice_row_jsonb(old_tup, desc));
	ioffice_jsonb_add_jsonb(b, "new", ioffice_row_jsonb(new_tup, desc));
	/* one chain per workflow: its rules' history */
	ioffice_audit_in_chain(psprintf("workflow:%s", tuple_text(new_tup ? new_tup : old_tup, desc,
															  "workflow")),
						   ioffice_resolve_actor(true), 0,
						   RelationGetRelationName(trigdata->tg_relation),
						   0, action, NULL, NULL, ioffice_jsonb_end(b));
	SPI_finish();
	return PointerGetDatum(NULL);
}

/* SETOF text of a registry, for DBAs writing rules */
static Datum
list_names(FunctionCallInfo fcinfo, const WfNamedStep *registry)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const WfNamedStep *s;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	for (s = registry; s->name != NULL; s++)
	{
		Datum		v[1];
		bool		n[1] = {false};

		v[0] = CStringGetTextDatum(s->name);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
	}
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(ioffice_list_guards);
Datum
ioffice_list_guards(PG_FUNCTION_ARGS)
{
	return list_names(fcinfo, ioffice_guards);
}

PG_FUNCTION_INFO_V1(ioffice_list_effects);
Datum
ioffice_list_effects(PG_FUNCTION_ARGS)
{
	return list_names(fcinfo, ioffice_effects);
}
