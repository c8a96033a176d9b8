/*-------------------------------------------------------------------------
 * trigger_util.c
 *	  What every C trigger function of the extension checks and reads
 *	  first, written once: that it runs as a trigger, and which rows its
 *	  event concerns.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/trigger.h"
#include "fmgr.h"

#include "ioffice.h"

/*
 * The trigger data of a call, refused when the function is called other
 * than as a trigger (SELECT ioffice._audit_direct() by hand): name is the
 * SQL function's, for the message.
 */
TriggerData *
ioffice_trigger_data(FunctionCallInfo fcinfo, const char *name)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s must be called as a trigger", name)));
	return (TriggerData *) fcinfo->context;
}

/*
 * The row of a row trigger's event that goes ahead: the new version of an
 * UPDATE, else the row inserted or deleted (what a BEFORE trigger returns
 * to let the event happen).
 */
HeapTuple
ioffice_trigger_row(TriggerData *trigdata)
{
	return TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ? trigdata->tg_newtuple
		: trigdata->tg_trigtuple;
}

/*
 * The old and new rows of a trigger's event (NULL where the event has
 * none: both for a TRUNCATE), and the event's name: "insert", "update",
 * "delete" or "truncate", as the audit trail names actions.
 */
const char *
ioffice_trigger_rows(TriggerData *trigdata, HeapTuple *old_tup, HeapTuple *new_tup)
{
	*old_tup = NULL;
	*new_tup = NULL;
	if (TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
		return "truncate";
	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
	{
		*new_tup = trigdata->tg_trigtuple;
		return "insert";
	}
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		*old_tup = trigdata->tg_trigtuple;
		*new_tup = trigdata->tg_newtuple;
		return "update";
	}
	*old_tup = trigdata->tg_trigtuple;
	return "delete";
}
