/*-------------------------------------------------------------------------
 * workflow_rules.c
 *	  Loading, caching and checking the workflow rule tables.
 *
 * act() must not read workflow, workflow_state and workflow_transition on
 * every call, so each backend keeps them in a hash table (one entry per
 * workflow) in its own memory context.  A statement trigger on the rule
 * tables sends a relcache invalidation for the table at commit; every
 * backend's callback then marks the cache stale and the next act() reloads
 * it.  The callback only sets a flag: it may run in the middle of a load
 * (on a lock acquisition), where freeing memory would pull the rug.  It
 * heeds the rule tables only (their OIDs, looked up at each load) and a
 * reset of all caches: any other table's invalidation (a temporary table
 * created, an index built, ANALYZE) leaves the rules cached.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "fmgr.h"
#include "funcapi.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "workflow.h"

static HTAB *workflow_cache = NULL;
static MemoryContext workflow_cache_cxt = NULL;
static bool workflow_cache_valid = false;
static bool callback_registered = false;

/* the tables the cache is read from, whose invalidation empties it */
static const char *const rule_table_names[] = {"workflow", "workflow_state", "workflow_transition"};
static Oid	rule_table_oids[lengthof(rule_table_names)];

/* option keys act() knows, with the JSON type each must have */
static const struct
{
	const char *key;
	WfOptionType type;
}			known_options[] =
{
	{"request_signature", WF_OPT_BOOL},
	{"sms", WF_OPT_BOOL},
	{"email", WF_OPT_BOOL},
	{"submission_slip", WF_OPT_BOOL},
	{"deadline", WF_OPT_DATE},
	{"mode", WF_OPT_STRING},
	{"page", WF_OPT_NUMBER},
	{"x", WF_OPT_NUMBER},
	{"y", WF_OPT_NUMBER},
	{"register", WF_OPT_NUMBER},
	{"cooperate", WF_OPT_ARRAY},
	{"zalo", WF_OPT_BOOL},
	{"abstract", WF_OPT_TEXT},
	{"result_file", WF_OPT_NUMBER},
	{"doc_type", WF_OPT_STRING},
	{"signer", WF_OPT_STRING},
};

static const char *const option_type_names[] = {"boolean", "string", "number", "date", "array", "text"};

/* options(): the option keys a rule may list, with the JSON type act() wants */
PG_FUNCTION_INFO_V1(ioffice_list_options);
Datum
ioffice_list_options(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	for (i = 0; i < lengthof(known_options); i++)
	{
		Datum		v[2];
		bool		n[2] = {false, false};

		v[0] = CStringGetTextDatum(known_options[i].key);
		v[1] = CStringGetTextDatum(option_type_names[known_options[i].type]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
	}
	return (Datum) 0;
}

bool
ioffice_option_type(const char *key, WfOptionType *type)
{
	int			i;

	for (i = 0; i < lengthof(known_options); i++)
		if (strcmp(known_options[i].key, key) == 0)
		{
			*type = known_options[i].type;
			return true;
		}
	return false;
}

/* the names of taken_by and receiver, in the order of their enums */
static const char *const taken_by_names[] = {"holder", "drafter", "clerk", "cooperator", "one_stop"};
static const char *const receiver_names[] = {"none", "given", "drafter", "default_clerk"};

StaticAssertDecl(lengthof(taken_by_names) == WF_TAKEN_BY_ONE_STOP + 1,
				 "taken_by_names does not match WfTakenBy");
StaticAssertDecl(lengthof(receiver_names) == WF_RECEIVER_UNKNOWN,
				 "receiver_names does not match WfReceiver");

/* the position of name in names[n], or -1 (NULL or unknown) */
static int
name_index(const char *const *names, int n, const char *name)
{
	int			i;

	for (i = 0; name != NULL && i < n; i++)
		if (strcmp(names[i], name) == 0)
			return i;
	return -1;
}

/* workflow_transition.taken_by as its enum; false for NULL or an unknown name */
bool
ioffice_parse_taken_by(const char *name, WfTakenBy *out)
{
	int			i = name_index(taken_by_names, lengthof(taken_by_names), name);

	if (i >= 0)
		*out = (WfTakenBy) i;
	return i >= 0;
}

/* workflow_transition.receiver as its enum; false for NULL or an unknown name */
bool
ioffice_parse_receiver(const char *name, WfReceiver *out)
{
	int			i = name_index(receiver_names, lengthof(receiver_names), name);

	if (i >= 0)
		*out = (WfReceiver) i;
	return i >= 0;
}

/* the name of a receiver in the rules, for messages */
const char *
ioffice_receiver_name(WfReceiver receiver)
{
	return receiver < lengthof(receiver_names) ? receiver_names[receiver] : "?";
}

static List *
text_array_to_list(Datum d)
{
	ArrayType  *arr = DatumGetArrayTypeP(d);
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;
	List	   *result = NIL;

	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (i = 0; i < n; i++)
		if (!nulls[i])
			result = lappend(result, TextDatumGetCString(elems[i]));
	return result;
}

static char *
col_text(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

static bool
col_bool(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return !isnull && DatumGetBool(d);
}

/* The rows of rule table table for wf ($1 of sql is its name), in SPI_tuptable. */
static void
read_rule_rows(const Workflow *wf, const char *sql, const char *table)
{
	Datum		arg[1];
	Oid			argtype[1] = {TEXTOID};

	arg[0] = CStringGetTextDatum(wf->name);
	if (SPI_execute_with_args(sql, 1, argtype, arg, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "ioffice: could not read table %s", table);
}

/* The states of wf from workflow_state, in target (the cache's context, or the caller's). */
static void
load_states(Workflow *wf, MemoryContext target)
{
	MemoryContext old;
	uint64		i;

	read_rule_rows(wf, "SELECT state, initial, final, files_frozen FROM ioffice.workflow_state "
				   "WHERE workflow = $1 ORDER BY state", "workflow_state");
	old = MemoryContextSwitchTo(target);
	wf->nstates = (int) SPI_processed;
	wf->states = palloc0(sizeof(WfState) * Max(wf->nstates, 1));
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;

		wf->states[i].name = col_text(tup, desc, 1);
		wf->states[i].initial = col_bool(tup, desc, 2);
		wf->states[i].final = col_bool(tup, desc, 3);
		wf->states[i].files_frozen = col_bool(tup, desc, 4);
	}
	MemoryContextSwitchTo(old);
}

/* One row of workflow_transition (the query of load_transitions) into t. */
static void
read_transition(HeapTuple tup, TupleDesc desc, WfTransition *t)
{
	bool		isnull;

	t->action = col_text(tup, desc, 1);
	t->from_state = col_text(tup, desc, 2);
	t->to_state = col_text(tup, desc, 3);
	t->label = col_text(tup, desc, 4);

	/*
	 * The trigger _rule_check_names refuses other names; a row written past
	 * it is read as act() always read it: taken by the holder, going to
	 * nobody.
	 */
	if (!ioffice_parse_taken_by(col_text(tup, desc, 5), &t->taken_by))
		t->taken_by = WF_TAKEN_BY_HOLDER;
	if (!ioffice_parse_receiver(col_text(tup, desc, 6), &t->receiver))
		t->receiver = WF_RECEIVER_UNKNOWN;
	t->receiver_role = col_text(tup, desc, 7);
	t->guards = text_array_to_list(SPI_getbinval(tup, desc, 8, &isnull));
	t->effects = text_array_to_list(SPI_getbinval(tup, desc, 9, &isnull));
	t->options = text_array_to_list(SPI_getbinval(tup, desc, 10, &isnull));
	t->delegable = col_bool(tup, desc, 11);
}

/* The transitions of wf from workflow_transition, in target. */
static void
load_transitions(Workflow *wf, MemoryContext target)
{
	MemoryContext old;
	uint64		i;

	read_rule_rows(wf, "SELECT action, from_state, to_state, label, taken_by, receiver, "
				   "receiver_role, guards, effects, options, delegable "
				   "FROM ioffice.workflow_transition WHERE workflow = $1 "
				   "ORDER BY action, from_state", "workflow_transition");
	old = MemoryContextSwitchTo(target);
	wf->ntransitions = (int) SPI_processed;
	wf->transitions = palloc0(sizeof(WfTransition) * Max(wf->ntransitions, 1));
	for (i = 0; i < SPI_processed; i++)
		read_transition(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, &wf->transitions[i]);
	MemoryContextSwitchTo(old);
}

/*
 * Read the rules of one workflow (name) or of all (NULL) into the current
 * memory context.  Returns a List of Workflow *.  The caller is connected to
 * SPI; these queries run only when the cache is rebuilt or a rule edit is
 * checked, so they are not kept as prepared plans.
 */
static List *
load_workflows(const char *only)
{
	MemoryContext target = CurrentMemoryContext;
	List	   *result = NIL;
	Datum		arg[1];
	Oid			argtype[1] = {TEXTOID};
	char		nulls[1] = {only ? ' ' : 'n'};
	uint64		i;
	ListCell   *lc;

	arg[0] = only ? CStringGetTextDatum(only) : (Datum) 0;

	if (SPI_execute_with_args("SELECT name FROM ioffice.workflow "
							  "WHERE $1 IS NULL OR name = $1 ORDER BY name",
							  1, argtype, arg, nulls, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "ioffice: could not read table workflow");
	for (i = 0; i < SPI_processed; i++)
	{
		MemoryContext old = MemoryContextSwitchTo(target);
		Workflow   *wf = palloc0(sizeof(Workflow));

		strlcpy(wf->name, col_text(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1), NAMEDATALEN);
		result = lappend(result, wf);
		MemoryContextSwitchTo(old);
	}

	foreach(lc, result)
	{
		load_states(lfirst(lc), target);
		load_transitions(lfirst(lc), target);
	}
	return result;
}

static void
invalidate_callback(Datum arg, Oid relid)
{
	int			i;

	/* InvalidOid means "everything" (for instance after a cache reset) */
	if (!OidIsValid(relid))
	{
		workflow_cache_valid = false;
		return;
	}
	for (i = 0; i < lengthof(rule_table_oids); i++)
		if (relid == rule_table_oids[i])
			workflow_cache_valid = false;
}

/*
 * The OIDs of the rule tables, for the callback.  Looked up at each load,
 * not once per backend: the extension may have been dropped and created
 * again since (the drop's invalidations name the old OIDs, and empty the
 * cache).  A missing table gets InvalidOid; the load then fails anyway.
 */
static void
find_rule_tables(void)
{
	Oid			nsp = get_namespace_oid("ioffice", true);
	int			i;

	for (i = 0; i < lengthof(rule_table_names); i++)
		rule_table_oids[i] = OidIsValid(nsp) ? get_relname_relid(rule_table_names[i], nsp)
			: InvalidOid;
}

void
ioffice_workflow_invalidate(void)
{
	workflow_cache_valid = false;
}

static void
rebuild_cache(void)
{
	HASHCTL		ctl;
	List	   *all;
	ListCell   *lc;
	MemoryContext old;

	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(invalidate_callback, (Datum) 0);
		callback_registered = true;
	}
	if (workflow_cache_cxt == NULL)
		workflow_cache_cxt = AllocSetContextCreate(CacheMemoryContext,
												   "ioffice workflow rules",
												   ALLOCSET_SMALL_SIZES);
	MemoryContextReset(workflow_cache_cxt);
	workflow_cache = NULL;
	find_rule_tables();

	/* set before reading: an invalidation arriving meanwhile clears it again */
	workflow_cache_valid = true;
	elog(DEBUG1, "ioffice: loading the workflow rules");
	PG_TRY();
	{
		old = MemoryContextSwitchTo(workflow_cache_cxt);
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = NAMEDATALEN;
		ctl.entrysize = sizeof(Workflow);
		ctl.hcxt = workflow_cache_cxt;
		workflow_cache = hash_create("ioffice workflows", 16, &ctl,
									 HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
		all = load_workflows(NULL);
		foreach(lc, all)
		{
			Workflow   *wf = lfirst(lc);
			Workflow   *entry = hash_search(workflow_cache, wf->name, HASH_ENTER, NULL);
			List	   *problems;

			/*
			 * The commit-time check of rule edits does not run while a dump
			 * is loaded (its tables arrive in separate transactions), so the
			 * shape is checked here too, before act() follows the rules.
			 */
			problems = ioffice_workflow_problems(wf);
			wf->problem = problems == NIL ? NULL
				: ((WfProblem *) linitial(problems))->message;
			memcpy(entry, wf, sizeof(Workflow));
		}
		MemoryContextSwitchTo(old);
	}
	PG_CATCH();
	{
		workflow_cache_valid = false;
		workflow_cache = NULL;
		PG_RE_THROW();
	}
	PG_END_TRY();
}

/* The cached rules of a workflow, or NULL.  The caller is connected to SPI. */
const Workflow *
ioffice_workflow_get(const char *name)
{
	char		key[NAMEDATALEN];

	if (!workflow_cache_valid || workflow_cache == NULL)
		rebuild_cache();
	strlcpy(key, name, NAMEDATALEN);
	return hash_search(workflow_cache, key, HASH_FIND, NULL);
}

/* The rules of one workflow read from the tables now, bypassing the cache. */
Workflow *
ioffice_workflow_load(const char *name)
{
	List	   *l = load_workflows(name);

	return l == NIL ? NULL : linitial(l);
}

const WfState *
ioffice_workflow_state(const Workflow *wf, const char *state)
{
	int			i;

	for (i = 0; i < wf->nstates; i++)
		if (strcmp(wf->states[i].name, state) == 0)
			return &wf->states[i];
	return NULL;
}

static int
state_index(const Workflow *wf, const char *state)
{
	int			i;

	for (i = 0; i < wf->nstates; i++)
		if (strcmp(wf->states[i].name, state) == 0)
			return i;
	return -1;
}

static void
add_problem(List **problems, int sqlerrcode, char *message, char *detail, char *hint)
{
	WfProblem  *p = palloc(sizeof(WfProblem));

	p->sqlerrcode = sqlerrcode;
	p->message = message;
	p->detail = detail;
	p->hint = hint;
	*problems = lappend(*problems, p);
}

/* every transition joins two states of the workflow */
static void
check_transition_states(const Workflow *wf, List **problems)
{
	int			i;

	for (i = 0; i < wf->ntransitions; i++)
	{
		const WfTransition *t = &wf->transitions[i];

		if (state_index(wf, t->from_state) < 0 || state_index(wf, t->to_state) < 0)
			add_problem(problems, ERRCODE_FOREIGN_KEY_VIOLATION,
						psprintf("transition \"%s\" from \"%s\" of workflow \"%s\" joins a state it does not have",
								 t->action, t->from_state, wf->name),
						psprintf("It leads from \"%s\" to \"%s\".", t->from_state, t->to_state),
						pstrdup("Add the missing state to workflow_state, or remove the transition."));
	}
}

/* an initial and a final state; false when either is missing (the graph check is then moot) */
static bool
check_ends(const Workflow *wf, List **problems)
{
	bool		any_initial = false;
	bool		any_final = false;
	int			i;

	for (i = 0; i < wf->nstates; i++)
	{
		any_initial |= wf->states[i].initial;
		any_final |= wf->states[i].final;
	}
	if (!any_initial)
		add_problem(problems, ERRCODE_CHECK_VIOLATION,
					psprintf("workflow \"%s\" has no initial state", wf->name), NULL,
					pstrdup("Mark one state of workflow_state as initial."));
	if (!any_final)
		add_problem(problems, ERRCODE_CHECK_VIOLATION,
					psprintf("workflow \"%s\" has no final state", wf->name), NULL,
					pstrdup("Mark at least one state of workflow_state as final."));
	return any_initial && any_final;
}

/*
 * Which states reach a final state, and which an initial state reaches:
 * fixed points over the transitions (few states, so plain iteration).
 */
static void
reachability(const Workflow *wf, bool *reaches_final, bool *reachable)
{
	bool		changed;
	int			i;

	for (i = 0; i < wf->nstates; i++)
	{
		reaches_final[i] = wf->states[i].final;
		reachable[i] = wf->states[i].initial;
	}
	do
	{
		changed = false;
		for (i = 0; i < wf->ntransitions; i++)
		{
			int			from = state_index(wf, wf->transitions[i].from_state);
			int			to = state_index(wf, wf->transitions[i].to_state);

			if (from < 0 || to < 0)
				continue;		/* reported by check_transition_states */
			if (reaches_final[to] && !reaches_final[from])
				reaches_final[from] = changed = true;
			if (reachable[from] && !reachable[to])
				reachable[to] = changed = true;
		}
	} while (changed);
}

/*
 * The problems of a workflow's shape, in the order they are reported (a List
 * of WfProblem *, NIL when sound): every transition joins two states of the
 * workflow (the foreign keys make sure of it, unless they were bypassed), it
 * has an initial and a final state, every state that is not final has a way
 * out to some final state, and every final state can be reached from an
 * initial one.  The messages name the state at fault.
 */
List *
ioffice_workflow_problems(const Workflow *wf)
{
	List	   *problems = NIL;
	bool	   *reaches_final;
	bool	   *reachable;
	int			i;

	if (wf->nstates == 0)
		return NIL;				/* a workflow being built or dropped */

	check_transition_states(wf, &problems);
	if (!check_ends(wf, &problems))
		return problems;

	reaches_final = palloc0(sizeof(bool) * wf->nstates);
	reachable = palloc0(sizeof(bool) * wf->nstates);
	reachability(wf, reaches_final, reachable);
	for (i = 0; i < wf->nstates; i++)
	{
		if (!reaches_final[i])
			add_problem(&problems, ERRCODE_CHECK_VIOLATION,
						psprintf("state \"%s\" of workflow \"%s\" has no way out to a final state",
								 wf->states[i].name, wf->name),
						pstrdup("A document in this state could never be finished."),
						psprintf("Add a transition from \"%s\", or remove the state.",
								 wf->states[i].name));
		if (wf->states[i].final && !reachable[i])
			add_problem(&problems, ERRCODE_CHECK_VIOLATION,
						psprintf("final state \"%s\" of workflow \"%s\" cannot be reached from its initial state",
								 wf->states[i].name, wf->name),
						NULL,
						psprintf("Add a transition leading to \"%s\", or remove the state.",
								 wf->states[i].name));
	}
	pfree(reaches_final);
	pfree(reachable);
	return problems;
}

/* The shape of a workflow is sound, or an error names its first problem. */
void
ioffice_workflow_check_graph(const Workflow *wf)
{
	List	   *problems = ioffice_workflow_problems(wf);
	WfProblem  *p;

	if (problems == NIL)
		return;
	p = linitial(problems);
	ereport(ERROR,
			(errcode(p->sqlerrcode),
			 errmsg_internal("%s", p->message),
			 p->detail ? errdetail_internal("%s", p->detail) : 0,
			 errhint("%s", p->hint)));
}

/*
 * workflow_check(name DEFAULT NULL) → (workflow, problem): every problem of
 * the shape of the workflows (or of one), for a DBA after loading rules the
 * commit-time check did not see (a restore); no rows means sound.
 */
PG_FUNCTION_INFO_V1(ioffice_workflow_check);
Datum
ioffice_workflow_check(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *only = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	List	   *workflows;
	ListCell   *lc;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	workflows = load_workflows(only);
	if (only != NULL && workflows == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("unknown workflow \"%.*s\"", pg_mbcliplen(only, strlen(only), 60), only)));
	foreach(lc, workflows)
	{
		Workflow   *wf = lfirst(lc);
		ListCell   *pc;

		foreach(pc, ioffice_workflow_problems(wf))
		{
			WfProblem  *p = lfirst(pc);
			Datum		v[2];
			bool		n[2] = {false, false};

			v[0] = CStringGetTextDatum(wf->name);
			v[1] = CStringGetTextDatum(p->message);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
		}
	}
	SPI_finish();
	return (Datum) 0;
}
