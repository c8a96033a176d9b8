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
#include "utils/jsonb.h"

#include "workflow.h"

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
	ioffice_jsonb_add_text(ctx->detail, "mode", mode_s);
}

const WfNamedStep ioffice_effects[] = {
	{"request_signature", effect_request_signature,
	"option request_signature marks the document as needing the leader's signature"},
	{"queue_signatures", effect_queue_signatures,
	"queues the actor's signature of every current file"},
	{"number_and_issue", ioffice_number_and_issue,
	"takes the register number, builds symbol and identifier, marks the document issued"},
	{NULL, NULL, NULL}
};
