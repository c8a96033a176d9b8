/*-------------------------------------------------------------------------
 * act.c
 *	  act(): one workflow action on one document, in one transaction; the
 *	  engine is shared with dossier_act() (dossier.c) through a WfSubject.
 *
 * Order of work: lock the document; find the rule for (action, state); check
 * who acts (holder, drafter, or a delegate of the holder); check options and
 * the receiver; run the guards; move the state; close the holder's task and
 * open the receiver's; run the effects (numbering last, so the register row
 * is locked for the shortest time); write the audit record.  Any error
 * undoes all of it.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "mb/pg_wchar.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/jsonb.h"

#include "outbox.h"
#include "workflow.h"

static IofficePlan doc_lock = {
	NULL,
	"SELECT workflow, state, drafter_id, agency_id, drafting_unit_id, doc_type, "
	"       confidentiality, signature_requested, direction = 'outgoing' "
	"  FROM ioffice.document WHERE id = $1 FOR NO KEY UPDATE",
	1, {INT8OID}
};

static IofficePlan open_task = {
	NULL,
	"SELECT (SELECT coalesce(max(step), 0) FROM ioffice.task WHERE document_id = $1), "
	"       t.id, t.receiver_id, t.sender_id "
	"  FROM (SELECT 1) AS one "
	"  LEFT JOIN ioffice.task t ON t.document_id = $1 AND t.status = 'open' AND t.kind = 'main'",
	1, {INT8OID}
};

static IofficePlan person_with_role = {
	NULL,
	"SELECT p.id, EXISTS (SELECT 1 FROM ioffice.person_role r "
	"                       JOIN ioffice.unit u ON u.id = r.unit_id "
	"                      WHERE r.person_id = p.id AND r.role = $2 AND u.agency_id = $3) "
	"  FROM ioffice.person p WHERE p.login = $1 AND p.active",
	3, {TEXTOID, TEXTOID, INT8OID}
};

static IofficePlan open_cooperation_of = {
	NULL,
	"SELECT 1 FROM ioffice.task WHERE document_id = $1 AND kind = 'cooperate' "
	"   AND status = 'open' AND receiver_id = $2",
	2, {INT8OID, INT8OID}
};

static IofficePlan default_clerk = {
	NULL,
	"SELECT r.person_id FROM ioffice.person_role r JOIN ioffice.person p ON p.id = r.person_id "
	" WHERE r.role = 'clerk' AND r.unit_id = $1 AND p.active ORDER BY r.person_id LIMIT 1",
	1, {INT8OID}
};

static IofficePlan record_signer = {
	NULL,
	"UPDATE ioffice.document SET signer_id = $2, updated_at = now() WHERE id = $1",
	2, {INT8OID, INT8OID}
};

static IofficePlan doc_move = {
	NULL,
	"UPDATE ioffice.document SET state = $2, updated_at = now() WHERE id = $1",
	2, {INT8OID, TEXTOID}
};

static IofficePlan task_close = {
	NULL,
	"UPDATE ioffice.task SET status = 'done', processed_at = now(), processing_note = $2, "
	"       processed_by = $3, closed_by_action = $4 WHERE id = $1",
	4, {INT8OID, TEXTOID, INT8OID, TEXTOID}
};

static IofficePlan task_open = {
	NULL,
	"INSERT INTO ioffice.task (document_id, step, action, sender_id, sender_for, request, "
	"                          receiver_id, deadline, options, file_ids) "
	"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
	"        (SELECT coalesce(array_agg(f.id ORDER BY f.id), '{}') FROM ioffice.file f "
	"          WHERE f.document_id = $1 AND f.superseded_at IS NULL AND f.removed_at IS NULL))",
	9, {INT8OID, INT4OID, TEXTOID, INT8OID, INT8OID, TEXTOID, INT8OID, DATEOID, JSONBOID}
};

static void
raise_unknown_action(const Workflow *wf, const char *action)
{
	StringInfoData list;
	int			i;

	initStringInfo(&list);
	for (i = 0; i < wf->ntransitions; i++)
	{
		if (i > 0 && strcmp(wf->transitions[i].action, wf->transitions[i - 1].action) == 0)
			continue;
		appendStringInfo(&list, "%s%s", list.len ? ", " : "", wf->transitions[i].action);
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown action \"%s\"", action),
			 errhint("Actions of workflow %s: %s.", wf->name, list.data)));
}

static const WfTransition *
find_transition(const Workflow *wf, const char *action, const char *state, const char *name)
{
	bool		known = false;
	StringInfoData possible;
	int			i;

	for (i = 0; i < wf->ntransitions; i++)
	{
		const WfTransition *t = &wf->transitions[i];

		if (strcmp(t->action, action) != 0)
			continue;
		known = true;
		if (strcmp(t->from_state, state) == 0)
			return t;
	}
	if (!known)
		raise_unknown_action(wf, action);

	initStringInfo(&possible);
	for (i = 0; i < wf->ntransitions; i++)
		if (strcmp(wf->transitions[i].from_state, state) == 0)
			appendStringInfo(&possible, "%s%s", possible.len ? ", " : "",
							 wf->transitions[i].action);
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("action \"%s\" is not possible while %s is %s",
					action, name, state),
			 possible.len ? errhint("Possible now: %s.", possible.data)
			 : errhint("Nothing more can be done with it.")));
	return NULL;				/* keep compiler quiet */
}

static void
check_options(ActContext *ctx)
{
	List	   *keys = ioffice_jsonb_keys(ctx->options);
	ListCell   *lc;

	foreach(lc, keys)
	{
		const char *key = lfirst(lc);
		bool		allowed = false;
		ListCell   *ok;
		WfOptionType type;
		JsonbValue *v;
		const char *want = NULL;

		foreach(ok, ctx->tr->options)
			if (strcmp((char *) lfirst(ok), key) == 0)
				allowed = true;
		if (!allowed || !ioffice_option_type(key, &type))
		{
			StringInfoData list;

			initStringInfo(&list);
			foreach(ok, ctx->tr->options)
				appendStringInfo(&list, "%s%s", list.len ? ", " : "", (char *) lfirst(ok));
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("action \"%s\" takes no option \"%s\"", ctx->tr->action, key),
					 list.len ? errhint("Options of \"%s\": %s.", ctx->tr->action, list.data)
					 : errhint("\"%s\" takes no options.", ctx->tr->action)));
		}
		v = ioffice_jsonb_get(ctx->options, key);
		switch (type)
		{
			case WF_OPT_BOOL:
				if (v->type != jbvBool)
					want = "true or false";
				break;
			case WF_OPT_NUMBER:
				if (v->type != jbvNumeric)
					want = "a number";
				break;
			case WF_OPT_STRING:
				if (v->type != jbvString || v->val.string.len > 200)
					want = "a string";
				break;
			case WF_OPT_DATE:
				if (v->type != jbvString ||
					!ioffice_parse_iso_date(v->val.string.val, v->val.string.len, NULL))
					want = "a date written YYYY-MM-DD";
				break;
			case WF_OPT_TEXT:
				if (v->type != jbvString ||
					pg_mbstrlen_with_len(v->val.string.val, v->val.string.len) > 500)
					want = "a string of at most 500 characters";
				break;
			case WF_OPT_ARRAY:
				if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
					want = "an array";
				break;
		}
		if (want)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("option \"%s\" must be %s", key, want)));
	}
}

/* taken_by = drafter: the document's drafter, holding it if it came back as a task */
static void
check_drafter(ActContext *ctx)
{
	if (ctx->actor != ctx->drafter)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only the drafter of %s may \"%s\"",
						ctx->name, ctx->tr->label)));
	/* a returned document comes back to the drafter as a task */
	if (ctx->task_id != 0 && ctx->holder != ctx->actor)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("%s is held by somebody else", ctx->name)));
}

/* taken_by = cooperator: a person with an open cooperation task on the document */
static void
check_cooperator(ActContext *ctx)
{
	Datum		values[2];

	/* cooperation tasks are a document's (phối hợp on incoming documents) */
	if (ctx->subject != &ioffice_document_subject)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("taken_by cooperator applies to documents only, not to %s", ctx->name),
				 errhint("Change the rule of \"%s\" in workflow %s.", ctx->tr->action,
						 ctx->workflow->name)));

	values[0] = Int64GetDatum(ctx->doc);
	values[1] = Int64GetDatum(ctx->actor);
	ioffice_exec(&open_cooperation_of, values, NULL, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only a person asked to cooperate on %s may \"%s\"",
						ctx->name, ctx->tr->label)));
}

/*
 * Who acts: the holder, the drafter, a clerk, a cooperator, a one-stop
 * officer, or a delegate of the holder.
 */
static void
check_actor(ActContext *ctx)
{
	const WfTransition *tr = ctx->tr;

	switch (tr->taken_by)
	{
		case WF_TAKEN_BY_DRAFTER:
			check_drafter(ctx);
			return;
		case WF_TAKEN_BY_CLERK:
			if (!ioffice_person_is_clerk_of(ctx->actor, ctx->agency))
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("only a clerk of the %s's agency may \"%s\"",
								ctx->subject->entity, tr->label)));
			return;
		case WF_TAKEN_BY_COOPERATOR:
			check_cooperator(ctx);
			return;
		case WF_TAKEN_BY_ONE_STOP:
			/* any officer of the desk: what waits there is held by nobody yet */
			if (!ioffice_person_is_one_stop_of(ctx->actor, ctx->agency))
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("only a one-stop officer (bộ phận một cửa) of the %s's agency may \"%s\"",
								ctx->subject->entity, tr->label)));
			return;
		case WF_TAKEN_BY_HOLDER:
			break;
	}

	if (ctx->task_id == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s is held by nobody", ctx->name)));
	if (ctx->holder == ctx->actor)
		return;
	if (tr->delegable && ioffice_has_delegation(ctx->holder, ctx->actor))
	{
		ctx->on_behalf_of = ctx->holder;
		return;
	}
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("only the person holding %s may \"%s\"",
					ctx->name, tr->label),
			 tr->delegable ? errhint("A holder may delegate approval with ioffice.delegate().") : 0));
}

/* receiver = given: the person to_login names, holding the rule's role in the subject's agency */
static void
choose_given_receiver(ActContext *ctx, const char *to_login)
{
	const WfTransition *tr = ctx->tr;
	Datum		values[3];
	bool		has_role = false;

	if (to_login == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" needs the receiving %s (to_login)", tr->label,
						tr->receiver_role ? tr->receiver_role : "person")));
	values[0] = CStringGetTextDatum(to_login);
	values[1] = CStringGetTextDatum(tr->receiver_role ? tr->receiver_role : "");
	/* the role must be held in the subject's agency, not in another one */
	values[2] = Int64GetDatum(ctx->agency);
	ioffice_exec(&person_with_role, values, NULL, 1);
	if (!ioffice_get_int64(0, 1, &ctx->receiver))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("unknown person \"%s\"", to_login)));
	ioffice_get_bool(0, 2, &has_role);
	if (tr->receiver_role && !has_role)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" is not a %s of the %s's agency", to_login, tr->receiver_role,
						ctx->subject->entity),
				 errdetail("\"%s\" goes to a person with role %s.", tr->label,
						   tr->receiver_role)));
	/*
	 * With the rule's role, or without one (an incoming document's
	 * assignment): a hand-over stays inside the agency that holds the
	 * subject.  Its receiver reads it and its files, a confidential one
	 * included; a person of another agency receives a document only as the
	 * agency's own incoming copy (delivery).  (The rule's role, held, is
	 * held in that agency.)
	 */
	if (!has_role && !ioffice_person_of_agency(ctx->receiver, ctx->agency))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" is not a person of the %s's agency", to_login,
						ctx->subject->entity),
				 errdetail("\"%s\" goes to a person of the agency that holds the %s.", tr->label,
						   ctx->subject->entity)));
}

/* the rule decides the receiver; a different name given by the caller is a mistake */
static void
check_named_receiver(ActContext *ctx, const char *to_login)
{
	Datum		values[3];
	int64		named = 0;

	values[0] = CStringGetTextDatum(to_login);
	values[1] = CStringGetTextDatum("");
	values[2] = Int64GetDatum(ctx->agency);
	ioffice_exec(&person_with_role, values, NULL, 1);
	if (!ioffice_get_int64(0, 1, &named) || named != ctx->receiver)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" goes to the %s; to_login names somebody else",
						ctx->tr->label, ioffice_receiver_name(ctx->tr->receiver))));
}

/* Who gets the next task (ctx->receiver, 0 for nobody), as the rule's receiver says. */
static void
choose_receiver(ActContext *ctx, const char *to_login)
{
	const WfTransition *tr = ctx->tr;

	switch (tr->receiver)
	{
		case WF_RECEIVER_GIVEN:
			choose_given_receiver(ctx, to_login);
			return;
		case WF_RECEIVER_NONE:
			if (to_login != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("\"%s\" goes to nobody: leave to_login NULL", tr->label)));
			return;
		case WF_RECEIVER_DRAFTER:
			if (ctx->drafter == 0)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("%s has no drafter or registering clerk yet", ctx->name)));
			ctx->receiver = ctx->drafter;
			break;
		case WF_RECEIVER_DEFAULT_CLERK:
			{
				Datum		values[1];

				values[0] = Int64GetDatum(ctx->agency);
				ioffice_exec(&default_clerk, values, NULL, 1);
				if (!ioffice_get_int64(0, 1, &ctx->receiver))
					ereport(ERROR,
							(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
							 errmsg("the %s's agency has no clerk", ctx->subject->entity),
							 errhint("Use \"approve\" and name the clerk.")));
				break;
			}
		case WF_RECEIVER_UNKNOWN:
			return;
	}
	if (to_login != NULL)
		check_named_receiver(ctx, to_login);
}

/*
 * A step never goes to its own actor, nor back to the holder the actor acts
 * for: whatever the rule's receiver (a given login, the drafter, the default
 * clerk), handing a document to oneself is no hand-over, and submitting
 * one's own draft to oneself is how a leader would approve his own.
 */
static void
check_not_to_self(ActContext *ctx)
{
	if (ctx->receiver != 0 &&
		(ctx->receiver == ctx->actor || ctx->receiver == ctx->on_behalf_of))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" must go to another person", ctx->tr->label)));
}

/*
 * Is this act the approval of a document: does it take an outgoing
 * document from a state where its files may change into one where they are
 * frozen (reviewing to awaiting_issue: approve, quick_approve, or any step a
 * DBA's rules lead there)?  Read from the states, not from the action's
 * name, so that no edit of the rules makes an approval that escapes what
 * follows.  An incoming document's files freeze too when its clerk hands it
 * on (they are what arrived), but nobody here signs it: no approval.
 */
static bool
is_approval(ActContext *ctx, const WfState *to_state)
{
	const WfState *from_state;

	if (ctx->subject != &ioffice_document_subject || !ctx->outgoing ||
		!to_state->files_frozen || to_state->final)
		return false;
	from_state = ioffice_workflow_state(ctx->workflow, ctx->state_before);
	return from_state != NULL && !from_state->files_frozen && !from_state->final;
}

/*
 * The approval makes the signer (Người ký) of the register: the leader in
 * whose name it is approved (the holder; under delegation the holder the
 * delegate acts for, whose own signature guard own_signature requires when
 * one was requested).  Nobody approves a document they drafted, in their
 * own name or as a delegate; the approver leads the drafting unit or a unit
 * above it.  Whatever signer the drafter proposed is replaced.  Written
 * before the state moves: once approved, the signer is frozen (trigger
 * approved_frozen on document).
 */
static void
approve_as_signer(ActContext *ctx)
{
	int64		approver = ctx->on_behalf_of ? ctx->on_behalf_of : ctx->actor;
	Datum		values[2];

	if (ctx->actor == ctx->drafter || approver == ctx->drafter)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("nobody may \"%s\" a document they drafted", ctx->tr->label),
				 errdetail("%s was drafted by the person approving it%s.", ctx->name,
						   ctx->on_behalf_of ? " (or by the holder they act for)" : ""),
				 errhint("Hand it to another leader (\"forward\") to approve and sign it.")));
	if (!ioffice_person_leads(approver, ctx->drafting_unit))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only a leader of the drafting unit or of a unit above it may \"%s\" %s",
						ctx->tr->label, ctx->name),
				 errdetail("Who approves it signs it in the register (Người ký).")));
	values[0] = Int64GetDatum(ctx->doc);
	values[1] = Int64GetDatum(approver);
	ioffice_exec(&record_signer, values, NULL, 0);
	ioffice_jsonb_add_int(ctx->detail, "signer", approver);
}

static void
run_steps(ActContext *ctx, List *names, const WfNamedStep *registry, const char *what)
{
	ListCell   *lc;

	foreach(lc, names)
	{
		const WfNamedStep *step = ioffice_find_step(registry, lfirst(lc));

		/* rules are checked when written; this catches a stale cache only */
		if (step == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("unknown %s \"%s\" in workflow %s", what, (char *) lfirst(lc),
							ctx->workflow->name)));
		/* a document's step must not run on a dossier with the same id, nor the reverse */
		if (step->subject != NULL && strcmp(step->subject, ctx->subject->entity) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("%s \"%s\" applies to %ss only, not to %s", what, step->name,
							step->subject, ctx->name),
					 errhint("Remove it from the rules of workflow %s.", ctx->workflow->name)));
		step->fn(ctx);
	}
}

/* sms and email options: the receiver of the hand-over is told */
static void
notify_receiver(ActContext *ctx)
{
	static const char *const channels[] = {"sms", "email"};
	int			i;

	if (ctx->receiver == 0 || ctx->subject->notice == NULL)
		return;
	for (i = 0; i < lengthof(channels); i++)
	{
		JsonbValue *v = ioffice_jsonb_get(ctx->options, channels[i]);
		JsonbBuild *about;

		if (v == NULL || v->type != jbvBool || !v->val.boolean)
			continue;
		about = ioffice_jsonb_begin();
		ioffice_jsonb_add_text(about, "entity", ctx->subject->entity);
		ioffice_jsonb_add_int(about, "id", ctx->doc);
		ioffice_jsonb_add_text(about, "action", ctx->tr->action);
		/* a person without a phone or address cannot be told; the audit says who was */
		if (ioffice_outbox_notify(channels[i], ctx->receiver, NULL,
								  ctx->subject->notice(ctx, channels[i]),
								  ioffice_jsonb_end(about)))
			ioffice_jsonb_add_text(ctx->detail, psprintf("notified_%s", channels[i]), "true");
	}
}

/*
 * The action, the receiver's login, the note and the options of act() and
 * dossier_act() (arguments 1 to 4), checked before anything is read: an
 * absurdly long name is refused unread, as an unknown one.  The note and
 * the options go into ctx; the action and the login are returned.
 */
static char *
read_arguments(ActContext *ctx, FunctionCallInfo fcinfo, char **to_login)
{
	char	   *action;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s needs an action", ctx->subject->function)));
	action = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (strlen(action) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown action \"%.*s…\"", pg_mbcliplen(action, strlen(action), 40),
						action)));
	*to_login = NULL;
	if (!PG_ARGISNULL(2))
	{
		*to_login = text_to_cstring(PG_GETARG_TEXT_PP(2));
		if (strlen(*to_login) >= NAMEDATALEN)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("unknown person \"%.*s…\"",
							pg_mbcliplen(*to_login, strlen(*to_login), 40), *to_login)));
	}
	if (!PG_ARGISNULL(3))
	{
		ctx->note = text_to_cstring(PG_GETARG_TEXT_PP(3));
		if (pg_mbstrlen(ctx->note) > 2000)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the note is longer than 2000 characters")));
	}
	if (!PG_ARGISNULL(4))
	{
		ctx->options = PG_GETARG_JSONB_P(4);
		if (!JB_ROOT_IS_OBJECT(ctx->options))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("options must be a JSON object")));
	}
	return action;
}

/*
 * The rule the action follows from the subject's state: its workflow from
 * the cache (refused while the rules a restore loaded are unsound), the
 * transition into ctx->tr, and the state it leads to.
 */
static const WfState *
find_rule(ActContext *ctx, const char *workflow_name, const char *action)
{
	const WfState *to_state;

	ctx->workflow = ioffice_workflow_get(workflow_name);
	if (ctx->workflow == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("%s follows workflow \"%s\", which does not exist",
						ctx->name, workflow_name)));
	if (ctx->workflow->problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the rules of workflow \"%s\" are not sound: %s",
						ctx->workflow->name, ctx->workflow->problem),
				 errdetail("Rules loaded from a dump are checked when they are first used."),
				 errhint("SELECT * FROM ioffice.workflow_check() lists every problem; fix the rules with SQL.")));
	ctx->tr = find_transition(ctx->workflow, action, ctx->state_before, ctx->name);
	to_state = ioffice_workflow_state(ctx->workflow, ctx->tr->to_state);
	if (to_state == NULL)
		elog(ERROR, "ioffice: workflow %s has no state %s", ctx->workflow->name, ctx->tr->to_state);
	return to_state;
}

/* The subject's last step and open main task: who holds it, who sent it. */
static void
read_open_task(ActContext *ctx)
{
	Datum		values[1];

	values[0] = Int64GetDatum(ctx->doc);
	ioffice_exec(ctx->subject->open_task, values, NULL, 1);
	ioffice_get_int32(0, 1, &ctx->last_step);
	ioffice_get_int64(0, 2, &ctx->task_id);
	ioffice_get_int64(0, 3, &ctx->holder);
	ioffice_get_int64(0, 4, &ctx->sender);
}

/* The audit detail every act carries; guards and effects add to it. */
static void
begin_detail(ActContext *ctx)
{
	ctx->detail = ioffice_jsonb_begin();
	ioffice_jsonb_add_text(ctx->detail, "label", ctx->tr->label);
	if (ctx->receiver)
		ioffice_jsonb_add_int(ctx->detail, "to", ctx->receiver);
	if (ctx->note)
		ioffice_jsonb_add_text(ctx->detail, "note", ctx->note);
	ioffice_jsonb_add_jsonb(ctx->detail, "options", ctx->options);
}

/*
 * The first eight parameters of a new task of the subject, in the order
 * every task insert takes them (the subjects' task_open, the cooperators'
 * in effects.c): the subject, the step, the action, the sender and the
 * holder they stand in for, the note as request, the receiver, and the
 * deadline (a date option already checked, or NULL).
 */
void
ioffice_task_params(const ActContext *ctx, int32 step, int64 receiver, JsonbValue *deadline,
					Datum *values, char *nulls)
{
	DateADT		due;

	memset(nulls, ' ', 8);
	values[0] = Int64GetDatum(ctx->doc);
	values[1] = Int32GetDatum(step);
	values[2] = CStringGetTextDatum(ctx->tr->action);
	values[3] = Int64GetDatum(ctx->actor);
	values[4] = Int64GetDatum(ctx->on_behalf_of);
	nulls[4] = ctx->on_behalf_of ? ' ' : 'n';
	values[5] = ctx->note ? CStringGetTextDatum(ctx->note) : (Datum) 0;
	nulls[5] = ctx->note ? ' ' : 'n';
	values[6] = Int64GetDatum(receiver);
	if (deadline != NULL && deadline->type == jbvString &&
		ioffice_parse_iso_date(deadline->val.string.val, deadline->val.string.len, &due))
		values[7] = DateADTGetDatum(due);
	else
		nulls[7] = 'n';
}

/* The subject's new state. */
static void
move_subject(ActContext *ctx)
{
	Datum		values[2];

	values[0] = Int64GetDatum(ctx->doc);
	values[1] = CStringGetTextDatum(ctx->tr->to_state);
	ioffice_exec(ctx->subject->move, values, NULL, 0);
}

/*
 * The holder's task is done: closed with the note when the subject goes to
 * nobody (the note is then the last word on it), else with the label.
 */
static void
close_holder_task(ActContext *ctx)
{
	Datum		values[4];

	values[0] = Int64GetDatum(ctx->task_id);
	values[1] = CStringGetTextDatum(ctx->receiver == 0 && ctx->note ? ctx->note : ctx->tr->label);
	values[2] = Int64GetDatum(ctx->actor);
	values[3] = CStringGetTextDatum(ctx->tr->action);
	ioffice_exec(ctx->subject->task_close, values, NULL, 0);
}

/*
 * The receiver's task, the next step: from the actor (for the holder they
 * stand in for), with the note as request and the deadline option; then
 * the receiver is told if the options ask for it.
 */
static void
open_receiver_task(ActContext *ctx)
{
	Datum		values[9];
	char		nulls[9];

	/* check_options() refused a deadline that is not a date */
	ioffice_task_params(ctx, ctx->last_step + 1, ctx->receiver,
						ioffice_jsonb_get(ctx->options, "deadline"), values, nulls);
	values[8] = JsonbPGetDatum(ctx->options);
	nulls[8] = ' ';
	ioffice_exec(ctx->subject->task_open, values, nulls, 0);
	ctx->last_step++;
	notify_receiver(ctx);
}

/*
 * One action on one subject.  fcinfo carries (key, action, to_login, note,
 * options) as act() and dossier_act() take them; the caller checked the key.
 */
Datum
ioffice_act_run(const WfSubject *subject, Datum key, FunctionCallInfo fcinfo)
{
	ActContext	ctx;
	char	   *action;
	char	   *to_login;
	char	   *workflow_name;
	const WfState *to_state;
	text	   *result;

	memset(&ctx, 0, sizeof(ctx));
	ctx.subject = subject;
	action = read_arguments(&ctx, fcinfo, &to_login);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	ioffice_engine_enter();
	ctx.actor = ioffice_resolve_actor(false);

	/* lock the subject: concurrent acts on it queue here */
	workflow_name = subject->lock(&ctx, key);
	to_state = find_rule(&ctx, workflow_name, action);
	read_open_task(&ctx);

	check_actor(&ctx);
	if (ctx.options == NULL)
		ctx.options = ioffice_jsonb_end(ioffice_jsonb_begin());
	check_options(&ctx);
	choose_receiver(&ctx, to_login);
	check_not_to_self(&ctx);
	begin_detail(&ctx);

	run_steps(&ctx, ctx.tr->guards, ioffice_guards, "guard");
	if (is_approval(&ctx, to_state))
		approve_as_signer(&ctx);
	move_subject(&ctx);

	/*
	 * A hand-over (or the end of the flow) closes the holder's task; an act
	 * that keeps the subject with its holder (sign, a pause) leaves it open.
	 */
	if ((ctx.receiver != 0 || to_state->final) && ctx.task_id != 0)
		close_holder_task(&ctx);
	if (ctx.receiver != 0)
		open_receiver_task(&ctx);

	run_steps(&ctx, ctx.tr->effects, ioffice_effects, "effect");
	if (subject->after)
		subject->after(&ctx);

	ioffice_audit(ctx.actor, ctx.on_behalf_of, subject->entity, ctx.doc, ctx.tr->action,
				  ctx.state_before, ctx.tr->to_state, ioffice_jsonb_end(ctx.detail));

	/* in the caller's memory: SPI_finish frees ours */
	result = ioffice_spi_text(ctx.tr->to_state);
	ioffice_engine_leave();
	SPI_finish();
	PG_RETURN_TEXT_P(result);
}

/* The document subject: the row of ioffice.document, its tasks in ioffice.task. */
static char *
document_lock(ActContext *ctx, Datum key)
{
	Datum		values[1];

	ctx->doc = DatumGetInt64(key);
	ctx->name = psprintf("document %lld", (long long) ctx->doc);
	/*
	 * Whoever may act on a document sees it (its drafter, holder, a delegate
	 * of the holder, a cooperator, a clerk of its agency); to anyone else it
	 * is unknown, its state and actions included, and it is not locked.
	 */
	ioffice_require_document(ctx->doc);
	values[0] = key;
	ioffice_exec(&doc_lock, values, NULL, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("unknown document %lld", (long long) ctx->doc)));
	ctx->state_before = ioffice_get_text(0, 2);
	ioffice_get_int64(0, 3, &ctx->drafter);
	ioffice_get_int64(0, 4, &ctx->agency);
	ioffice_get_int64(0, 5, &ctx->drafting_unit);
	ctx->doc_type = ioffice_get_text(0, 6);
	ctx->confidentiality = ioffice_get_text(0, 7);
	ioffice_get_bool(0, 8, &ctx->signature_requested);
	ioffice_get_bool(0, 9, &ctx->outgoing);
	return ioffice_get_text(0, 1);
}

static char *
document_notice(ActContext *ctx, const char *channel)
{
	return psprintf("Văn bản %lld: %s", (long long) ctx->doc, ctx->tr->label);
}

const WfSubject ioffice_document_subject = {
	"document", "act()", document_lock, &open_task, &doc_move, &task_close, &task_open,
	document_notice, NULL
};

PG_FUNCTION_INFO_V1(ioffice_act);
Datum
ioffice_act(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("act() needs a document")));
	return ioffice_act_run(&ioffice_document_subject, PG_GETARG_DATUM(0), fcinfo);
}
