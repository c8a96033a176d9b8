/*-------------------------------------------------------------------------
 * engine_scope.c
 *	  Knowing whether a row change comes from the extension's own functions.
 *
 * Every change the engine makes is audited by the code that makes it, with
 * its meaning (submit, attach, issue...).  Changes made to the core tables
 * by hand (a DBA's UPDATE of document.state) must be audited too, as such.
 * The triggers that catch those ask ioffice_in_engine(): the engine's
 * functions enter a scope while they write.  An error may leave a function
 * without leaving its scope, so the depth is also restored when a
 * subtransaction aborts (to what it was when the subtransaction began: a
 * plpgsql EXCEPTION block inside an engine function stays in the engine)
 * and reset when the transaction ends.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "fmgr.h"
#include "nodes/pg_list.h"
#include "utils/memutils.h"

#include "ioffice.h"

static int	engine_depth = 0;

/* depth at the start of each open subtransaction, innermost last */
typedef struct SubDepth
{
	SubTransactionId subid;
	int			depth;
} SubDepth;

static List *sub_depths = NIL;

static void
engine_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			engine_depth = 0;
			sub_depths = NIL;	/* its memory went with TopTransactionContext */
			break;
		default:
			break;
	}
}

static void
engine_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_START_SUB)
	{
		MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
		SubDepth   *sd = palloc(sizeof(SubDepth));

		sd->subid = mySubid;
		sd->depth = engine_depth;
		sub_depths = lappend(sub_depths, sd);
		MemoryContextSwitchTo(old);
	}
	else if ((event == SUBXACT_EVENT_ABORT_SUB || event == SUBXACT_EVENT_COMMIT_SUB) &&
			 sub_depths != NIL)
	{
		/* subtransactions nest strictly: the one ending is the innermost */
		SubDepth   *sd = llast(sub_depths);

		if (sd->subid == mySubid)
		{
			if (event == SUBXACT_EVENT_ABORT_SUB)
				engine_depth = sd->depth;
			sub_depths = list_delete_last(sub_depths);
			pfree(sd);
		}
	}
}

/* from _PG_init, so that every subtransaction is seen from the start */
void
ioffice_engine_scope_init(void)
{
	RegisterXactCallback(engine_xact_callback, NULL);
	RegisterSubXactCallback(engine_subxact_callback, NULL);
}

void
ioffice_engine_enter(void)
{
	engine_depth++;
}

void
ioffice_engine_leave(void)
{
	if (engine_depth > 0)
		engine_depth--;
}

bool
ioffice_in_engine(void)
{
	return engine_depth > 0;
}

/* for the extension's plpgsql functions; not granted to PUBLIC */
PG_FUNCTION_INFO_V1(ioffice_engine_enter_sql);
Datum
ioffice_engine_enter_sql(PG_FUNCTION_ARGS)
{
	ioffice_engine_enter();
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(ioffice_engine_leave_sql);
Datum
ioffice_engine_leave_sql(PG_FUNCTION_ARGS)
{
	ioffice_engine_leave();
	PG_RETURN_VOID();
}

/*
 * _outside_engine(): the WHEN clause of the triggers that audit changes made
 * by hand.  Deciding there, when the row changes, rather than in the
 * trigger function keeps the engine's own writes from queueing an AFTER
 * trigger event at all (each costs a stored tuple and a function call at
 * the end of the statement, under whatever lock the statement holds: the
 * register row's, for a number).  The answer is the same at both moments,
 * since an AFTER ROW trigger fires at the end of the statement that queued
 * it, inside the same scope.
 */
PG_FUNCTION_INFO_V1(ioffice_outside_engine_sql);
Datum
ioffice_outside_engine_sql(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(!ioffice_in_engine());
}
