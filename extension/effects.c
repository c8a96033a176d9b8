/*-------------------------------------------------------------------------
 * effects.c
 *	  Named effects a workflow transition may have.
 *
 * Effects run after the guards passed and the state and tasks moved, in
 * the order the rule lists them.  number_and_issue takes a register number,
 * which holds the register row's lock until commit, so rules list it last.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/jsonb.h"

#include "workflow.h"
#include "worker.h"

static IofficePlan mark_signature_requested = {
	NULL,
	"UPDATE ioffice.document SET signature_requested = true WHERE id = $1",
	1, {INT8OID}
};

static IofficePlan queue_signatures = {
	NULL,
	"INSERT INTO ioffice.signature (document_id, file_id, signer_id, kind, options) "
	"SELECT $1, f.id, $2, 'personal', $3 FROM ioffice.file f "
	" WHERE f.document_id = $1 AND f.superseded_at IS NULL AND f.removed_at IS NULL "
	"ON CONFLICT (file_id, signer_id, kind) WHERE status = 'pending' DO NOTHING",
	3, {INT8OID, INT8OID, JSONBOID}
};

/* request_signature: option request_signature = true asks the leader to sign */
static void
effect_request_signature(ActContext *ctx)
{
	JsonbValue *v = ioffice_jsonb_get(ctx->options, "request_signature");
	Datum		values[1];

	if (v == NULL || v->type != jbvBool || !v->val.boolean)
		return;
	values[0] = Int64GetDatum(ctx->doc);
	ioffice_exec(&mark_signature_requested, values, NULL, 0);
	ctx->signature_requested = true;
	ioffice_jsonb_add_text(ctx->detail, "signature_requested", "true");
}

static double
number_option(ActContext *ctx, const char *key, bool *present)
{
	JsonbValue *v = ioffice_jsonb_get(ctx->options, key);

	*present = (v != NULL && v->type == jbvNumeric);
	if (!*present)
		return 0;
	return DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(v->val.numeric)));
}

/*
 * queue_signatures: one pending personal signature per current file, for
 * the signing worker.  Option mode is the seed's "ký VGCA" (vgca), "ký tự
 * động" (auto) or "ký chọn vị trí" (position, with page, x and y).
 */
static void
effect_queue_signatures(ActContext *ctx)
{
	JsonbValue *mode = ioffice_jsonb_get(ctx->options, "mode");
	const char *mode_s = "auto";
	Datum		values[3];
	bool		has_page,
				has_x,
				has_y;
	double		page = number_option(ctx, "page", &has_page);
	double		x = number_option(ctx, "x", &has_x);
	double		y = number_option(ctx, "y", &has_y);

	if (mode != NULL && mode->type == jbvString)
		mode_s = pnstrdup(mode->val.string.val, mode->val.string.len);
	if (strcmp(mode_s, "vgca") != 0 && strcmp(mode_s, "auto") != 0 &&
		strcmp(mode_s, "position") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown signing mode \"%s\"", mode_s),
				 errhint("Modes are vgca, auto and position.")));
	if (strcmp(mode_s, "position") == 0)
	{
		if (!has_page || !has_x || !has_y)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("signing mode position needs page, x and y")));
		if (page < 1 || page > 100000 || page != (int) page || x < 0 || y < 0 ||
			x > 100000 || y > 100000)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("signature position out of range"),
					 errdetail("page is a page number from 1; x and y are points from 0 to 100000.")));
	}
	else if (has_page || has_x || has_y)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("page, x and y go with signing mode position only")));

	values[0] = Int64GetDatum(ctx->doc);
	values[1] = Int64GetDatum(ctx->actor);
	values[2] = JsonbPGetDatum(ctx->options);
	ioffice_exec(&queue_signatures, values, NULL, 0);
	ioffice_jsonb_add_int(ctx->detail, "signatures_queued", (int64) SPI_processed);
	ioffice_worker_wake_at_commit();
	ioffice_jsonb_add_text(ctx->detail, "mode", mode_s);
}

static IofficePlan queue_seal = {
	NULL,
	"INSERT INTO ioffice.signature (document_id, file_id, signer_id, kind) "
	"SELECT $1, f.id, $2, 'organisation' FROM ioffice.file f "
	" WHERE f.document_id = $1 AND f.superseded_at IS NULL AND f.removed_at IS NULL "
	"ON CONFLICT (file_id, signer_id, kind) WHERE status = 'pending' DO NOTHING",
	2, {INT8OID, INT8OID}
};

/*
 * queue_seal: the clerk issuing the document has the organisation's
 * signature put on every current file (signed by the worker with the
 * agency's seal certificate, without an image: Decree 30 appendix I).
 */
int64
ioffice_queue_seal(int64 doc, int64 actor)
{
	Datum		values[2];

	values[0] = Int64GetDatum(doc);
	values[1] = Int64GetDatum(actor);
	ioffice_exec(&queue_seal, values, NULL, 0);
	ioffice_worker_wake_at_commit();
	return (int64) SPI_processed;
}

static void
effect_queue_seal(ActContext *ctx)
{
	ioffice_jsonb_add_int(ctx->detail, "seals_queued", ioffice_queue_seal(ctx->doc, ctx->actor));
}

static IofficePlan cooperation_open = {
	NULL,
	"INSERT INTO ioffice.task (document_id, step, action, sender_id, sender_for, request, "
	"                          receiver_id, deadline, kind, file_ids) "
	"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'cooperate', "
	"        (SELECT coalesce(array_agg(f.id ORDER BY f.id), '{}') FROM ioffice.file f "
	"          WHERE f.document_id = $1 AND f.superseded_at IS NULL AND f.removed_at IS NULL))",
	8, {INT8OID, INT4OID, TEXTOID, INT8OID, INT8OID, TEXTOID, INT8OID, DATEOID}
};

static IofficePlan cooperation_close_own = {
	NULL,
	"UPDATE ioffice.task SET status = 'done', processed_at = now(), processing_note = $3, "
	"       processed_by = $2, closed_by_action = $4 "
	" WHERE document_id = $1 AND kind = 'cooperate' AND status = 'open' AND receiver_id = $2",
	4, {INT8OID, INT8OID, TEXTOID, TEXTOID}
};

static IofficePlan cooperation_close_all = {
	NULL,
	"UPDATE ioffice.task SET status = 'done', processed_at = now(), "
	"       processing_note = 'Kết thúc cùng văn bản', processed_by = $2, closed_by_action = $3 "
	" WHERE document_id = $1 AND kind = 'cooperate' AND status = 'open'",
	3, {INT8OID, INT8OID, TEXTOID}
};

static char *
jsonb_string(JsonbValue *v)
{
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/*
 * assign_cooperators: option cooperate lists the people asked to help the
 * lead handler (phối hợp), as logins or {"login": ..., "deadline": ...};
 * each gets a task of their own, with their deadline or the assignment's.
 */
static void
effect_assign_cooperators(ActContext *ctx)
{
	JsonbValue *list = ioffice_jsonb_get(ctx->options, "cooperate");
	JsonbValue *common_deadline = ioffice_jsonb_get(ctx->options, "deadline");
	JsonbIterator *it;
	JsonbValue	elem;
	JsonbIteratorToken tok;
	List	   *seen = NIL;
	int			count = 0;

	if (list == NULL || list->type != jbvBinary)
		return;
	it = JsonbIteratorInit(list->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &elem, true)) != WJB_DONE)
	{
		char	   *login = NULL;
		JsonbValue *deadline = common_deadline;
		Datum		values[8];
		char		nulls[8];
		int64		person = 0;
		ListCell   *lc;

		if (tok != WJB_ELEM)
			continue;
		if (elem.type == jbvString)
			login = jsonb_string(&elem);
		else if (elem.type == jbvBinary && JsonContainerIsObject(elem.val.binary.data))
		{
			JsonbValue *l = getKeyJsonValueFromContainer(elem.val.binary.data, "login", 5, NULL);
			JsonbValue *d = getKeyJsonValueFromContainer(elem.val.binary.data, "deadline", 8, NULL);

			if (l != NULL && l->type == jbvString)
				login = jsonb_string(l);
			if (d != NULL)
			{
				if (d->type != jbvString ||
					!ioffice_parse_iso_date(d->val.string.val, d->val.string.len, NULL))
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("a cooperator's deadline must be a date written YYYY-MM-DD")));
				deadline = d;
			}
		}
		if (login == NULL || strlen(login) == 0 || strlen(login) >= NAMEDATALEN)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("each cooperator is a login, or an object with a login and a deadline")));

		person = ioffice_person_id(login);
		/* a cooperator reads the document and its files: one of its agency's people */
		if (!ioffice_person_of_agency(person, ctx->agency))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("\"%s\" is not a person of the document's agency", login),
					 errdetail("Cooperators are people of the agency that holds the document.")));
		if (person == ctx->receiver)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("\"%s\" leads the handling and cannot also cooperate", login)));
		foreach(lc, seen)
			if (strcmp((char *) lfirst(lc), login) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("\"%s\" is asked to cooperate twice", login)));
		seen = lappend(seen, login);

		/* both deadlines were checked: the common one by act(), this one above */
		ctx->last_step++;
		ioffice_task_params(ctx, ctx->last_step, person, deadline, values, nulls);
		ioffice_exec(&cooperation_open, values, nulls, 0);
		count++;
	}
	ioffice_jsonb_add_int(ctx->detail, "cooperators", count);
}

/* close_own_cooperation: the cooperator's part is done */
static void
effect_close_own_cooperation(ActContext *ctx)
{
	Datum		values[4];

	values[0] = Int64GetDatum(ctx->doc);
	values[1] = Int64GetDatum(ctx->actor);
	values[2] = CStringGetTextDatum(ctx->note ? ctx->note : ctx->tr->label);
	values[3] = CStringGetTextDatum(ctx->tr->action);
	ioffice_exec(&cooperation_close_own, values, NULL, 0);
}

/* close_cooperation: the document is done, so is every part still open */
static void
effect_close_cooperation(ActContext *ctx)
{
	Datum		values[3];

	values[0] = Int64GetDatum(ctx->doc);
	values[1] = Int64GetDatum(ctx->actor);
	values[2] = CStringGetTextDatum(ctx->tr->action);
	ioffice_exec(&cooperation_close_all, values, NULL, 0);
	ioffice_jsonb_add_int(ctx->detail, "cooperations_closed", (int64) SPI_processed);
}

const WfNamedStep ioffice_effects[] = {
	{"request_signature", effect_request_signature,
	"option request_signature marks the document as needing the leader's signature", "document"},
	{"queue_signatures", effect_queue_signatures,
	"queues the actor's signature of every current file", "document"},
	{"number_and_issue", ioffice_number_and_issue,
	"takes the register number, builds symbol and identifier, marks the document issued", "document"},
	{"queue_seal", effect_queue_seal,
	"queues the organisation's signature of every current file", "document"},
	{"deliver_internal", ioffice_deliver_internal,
	"recipients that are agencies of this database receive the document as incoming", "document"},
	{"register_arrival", ioffice_register_arrival,
	"takes the arrival number of the agency's incoming register (số đến)", "document"},
	{"assign_cooperators", effect_assign_cooperators,
	"option cooperate: each cooperator gets a task with a deadline", "document"},
	{"close_own_cooperation", effect_close_own_cooperation,
	"closes the acting cooperator's task", "document"},
	{"close_cooperation", effect_close_cooperation,
	"closes every cooperation task still open", "document"},
	{"make_result", ioffice_effect_make_result,
	"dossier: the chosen file becomes the result document, the leader's signature is queued", "dossier"},
	{"issue_result", ioffice_effect_issue_result,
	"dossier: the clerk numbers the result, attaches the processing trail, queues the seal", "dossier"},
	{"drop_result", ioffice_effect_drop_result,
	"dossier: the result document that could not be issued is withdrawn, with its pending signatures", "dossier"},
	{"keep_abstract", ioffice_effect_keep_abstract,
	"dossier: option abstract is kept for the clerk who issues the result", "dossier"},
	{"pause_clock", ioffice_effect_pause_clock,
	"dossier: the clock stops while the applicant is asked for papers or fees", "dossier"},
	{"resume_clock", ioffice_effect_resume_clock,
	"dossier: the clock runs again; the deadline moves by the working days paused", "dossier"},
	{"start_clock", ioffice_effect_start_clock,
	"dossier: an online registration is accepted: the actor receives it, its clock starts now", "dossier"},
	{NULL, NULL, NULL, NULL}
};
