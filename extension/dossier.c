/*-------------------------------------------------------------------------
 * dossier.c
 *	  dossier_act(), dossier_attach(): administrative-procedure dossiers
 *	  (hồ sơ TTHC, seed 003) on the workflow engine of act.c.
 *
 * A dossier is a subject of the engine like a document: the rules are rows
 * of workflow 'dossier', its hand-overs are rows of dossier_task, its audit
 * chain is "dossier:<id>".  What is the dossier's own: after every act the
 * national status of the new state is compared with the old one and the
 * TTHC system is told (event dossier.status); the applicant may be told by
 * Zalo; the clock pauses while the applicant is asked for papers or fees;
 * the leader's signature turns the chosen file into a result document that
 * the clerk numbers in the register, with the dossier's trail attached.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"

#include "export.h"
#include "outbox.h"
#include "workflow.h"
#include "worker.h"

static IofficePlan dossier_lock = {
	NULL,
	"SELECT id, workflow, state, received_by, agency_id "
	"  FROM ioffice.dossier WHERE code = $1 FOR NO KEY UPDATE",
	1, {TEXTOID}
};

static IofficePlan dossier_open_task = {
	NULL,
	"SELECT (SELECT coalesce(max(step), 0) FROM ioffice.dossier_task WHERE dossier_id = $1), "
	"       t.id, t.receiver_id, t.sender_id "
	"  FROM (SELECT 1) AS one "
	"  LEFT JOIN ioffice.dossier_task t ON t.dossier_id = $1 AND t.status = 'open'",
	1, {INT8OID}
};

static IofficePlan dossier_move = {
	NULL,
	"UPDATE ioffice.dossier d SET state = $2, updated_at = now(), "
	"       finished_at = CASE WHEN s.final THEN now() END "
	"  FROM ioffice.workflow_state s "
	" WHERE d.id = $1 AND s.workflow = d.workflow AND s.state = $2",
	2, {INT8OID, TEXTOID}
};

static IofficePlan dossier_task_close = {
	NULL,
	"UPDATE ioffice.dossier_task SET status = 'done', processed_at = now(), processing_note = $2, "
	"       processed_by = $3, closed_by_action = $4 WHERE id = $1",
	4, {INT8OID, TEXTOID, INT8OID, TEXTOID}
};

/* the files of the hand-over: those the sender attached since they got it */
static IofficePlan dossier_task_open = {
	NULL,
	"INSERT INTO ioffice.dossier_task (dossier_id, step, action, sender_id, sender_for, request, "
	"                                  receiver_id, deadline, options, file_ids) "
	"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
	"        (SELECT coalesce(array_agg(f.id ORDER BY f.id), '{}') FROM ioffice.dossier_file f "
	"          WHERE f.dossier_id = $1 AND f.uploaded_by = $4 "
	"            AND NOT EXISTS (SELECT 1 FROM ioffice.dossier_task t "
	"                             WHERE t.dossier_id = $1 AND f.id = ANY (t.file_ids))))",
	9, {INT8OID, INT4OID, TEXTOID, INT8OID, INT8OID, TEXTOID, INT8OID, DATEOID, JSONBOID}
};

static IofficePlan state_status = {
	NULL,
	"SELECT s.code, s.name FROM ioffice.dossier_state_status x "
	"  JOIN ioffice.dossier_status s ON s.code = x.status "
	" WHERE x.workflow = $1 AND x.state = $2",
	2, {TEXTOID, TEXTOID}
};

static IofficePlan dossier_event = {
	NULL, "SELECT ioffice._dossier_event($1)", 1, {INT8OID}
};

static IofficePlan applicant_phone = {
	NULL, "SELECT applicant->>'phone' FROM ioffice.dossier WHERE id = $1", 1, {INT8OID}
};

static char *dossier_lock_fn(ActContext *ctx, Datum key);
static char *dossier_notice(ActContext *ctx, const char *channel);
static void dossier_after(ActContext *ctx);

static const WfSubject dossier_subject = {
	"dossier", "dossier_act()", dossier_lock_fn, &dossier_open_task, &dossier_move,
	&dossier_task_close, &dossier_task_open, dossier_notice, dossier_after
};

static char *
dossier_lock_fn(ActContext *ctx, Datum key)
{
	Datum		values[1];
	char	   *code = TextDatumGetCString(key);

	/*
	 * Whoever may act on a dossier sees it, or holds a delegation from its
	 * holder; to anyone else it is unknown, its state included, and it is
	 * not locked.
	 */
	(void) ioffice_require_dossier(code, true);
	values[0] = key;
	ioffice_exec(&dossier_lock, values, NULL, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("unknown dossier \"%.*s\"", pg_mbcliplen(code, strlen(code), 60), code)));
	ioffice_get_int64(0, 1, &ctx->doc);
	ctx->name = psprintf("dossier %s", code);
	ctx->state_before = ioffice_get_text(0, 3);
	/* the receiving one-stop officer is the dossier's "drafter": results go back to them */
	ioffice_get_int64(0, 4, &ctx->drafter);
	ioffice_get_int64(0, 5, &ctx->agency);
	ctx->confidentiality = "normal";
	return ioffice_get_text(0, 2);
}

/* the seed's texts: "Hồ sơ 000.00.32.H41-231030-0068: Có HS cần giải quyết" */
static char *
dossier_notice(ActContext *ctx, const char *channel)
{
	const char *code = ctx->name + strlen("dossier ");

	if (strcmp(channel, "email") == 0)
		return psprintf("Hồ sơ %s có Hồ sơ cần giải quyết", code);
	return psprintf("Hồ sơ %s: Có HS cần giải quyết", code);
}

static bool
state_national_status(const char *workflow, const char *state, int32 *code, char **name)
{
	Datum		values[2];

	values[0] = CStringGetTextDatum(workflow);
	values[1] = CStringGetTextDatum(state);
	ioffice_exec(&state_status, values, NULL, 1);
	if (SPI_processed == 0)
		return false;
	ioffice_get_int32(0, 1, code);
	*name = ioffice_get_text(0, 2);
	return true;
}

/*
 * After an act on a dossier: a change of national status is announced to
 * the TTHC system; option zalo tells the applicant the status on their phone.
 */
static void
dossier_after(ActContext *ctx)
{
	int32		before = 0,
				after = 0;
	char	   *before_name = NULL;
	char	   *after_name = NULL;
	bool		has_before = state_national_status(ctx->workflow->name, ctx->state_before,
												   &before, &before_name);
	bool		has_after = state_national_status(ctx->workflow->name, ctx->tr->to_state,
												  &after, &after_name);
	JsonbValue *zalo = ioffice_jsonb_get(ctx->options, "zalo");
	Datum		values[1];

	values[0] = Int64GetDatum(ctx->doc);
	if (has_after && (!has_before || before != after))
	{
		bool		isnull;
		Datum		event;

		ioffice_exec(&dossier_event, values, NULL, 1);
		event = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (!isnull)
			ioffice_outbox_enqueue("dossier.status", DatumGetJsonbP(event));
		ioffice_jsonb_add_int(ctx->detail, "status", after);
	}
	if (zalo != NULL && zalo->type == jbvBool && zalo->val.boolean)
	{
		char	   *phone;
		const char *code = ctx->name + strlen("dossier ");
		JsonbBuild *about = ioffice_jsonb_begin();

		ioffice_exec(&applicant_phone, values, NULL, 1);
		phone = ioffice_get_text(0, 1);
		if (phone == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the applicant of %s has no phone number for Zalo", ctx->name)));
		ioffice_jsonb_add_text(about, "entity", "dossier");
		ioffice_jsonb_add_text(about, "code", code);
		ioffice_jsonb_add_text(about, "action", ctx->tr->action);
		if (ioffice_outbox_notify("zalo", 0, phone,
								  psprintf("Hồ sơ %s: %s", code,
										   has_after ? after_name : ctx->tr->label),
								  ioffice_jsonb_end(about)))
			ioffice_jsonb_add_text(ctx->detail, "notified_zalo", "true");
	}
}

static const char *
dossier_code(ActContext *ctx)
{
	return ctx->name + strlen("dossier ");
}

/* ---------------------------------------------------------------------
 * Guards
 * ---------------------------------------------------------------------
 */
static IofficePlan new_opinion_files = {
	NULL,
	"SELECT count(*) FROM ioffice.dossier_file f "
	" WHERE f.dossier_id = $1 AND f.uploaded_by = $2 AND f.purpose = 'opinion' "
	"   AND NOT EXISTS (SELECT 1 FROM ioffice.dossier_task t "
	"                    WHERE t.dossier_id = $1 AND f.id = ANY (t.file_ids))",
	2, {INT8OID, INT8OID}
};

/* has_opinion_file: the specialist's proposal carries the draft result */
void
ioffice_guard_has_opinion_file(ActContext *ctx)
{
	Datum		values[2];
	int64		n = 0;

	values[0] = Int64GetDatum(ctx->doc);
	values[1] = Int64GetDatum(ctx->actor);
	ioffice_exec(&new_opinion_files, values, NULL, 1);
	ioffice_get_int64(0, 1, &n);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s has no draft result attached to this opinion", ctx->name),
				 errhint("Attach the draft with dossier_attach(code, name, content, 'opinion') before \"%s\".",
						 ctx->tr->label)));
}

/*
 * Per current file of the result: is the leader's signature pending, is it
 * missing (not done: neither detached on it nor embedded in it, a PDF
 * whose signature made this version); the reason of a failed one; how many
 * files.
 */
static IofficePlan result_signatures = {
	NULL,
	"SELECT d.result_document_id, "
	"       count(f.id) FILTER (WHERE EXISTS (SELECT 1 FROM ioffice.signature s "
	"                   WHERE s.file_id = f.id AND s.kind = 'personal' "
	"                     AND s.signer_id = r.signer_id AND s.status = 'pending')), "
	"       count(f.id) FILTER (WHERE NOT EXISTS (SELECT 1 FROM ioffice.signature s "
	"                   WHERE ((s.file_id = f.id AND s.signed_file_id IS NULL) "
	"                          OR s.signed_file_id = f.id) AND s.kind = 'personal' "
	"                     AND s.signer_id = r.signer_id AND s.status = 'done')), "
	"       max(fs.reason), count(f.id) "
	"  FROM ioffice.dossier d "
	"  LEFT JOIN ioffice.document r ON r.id = d.result_document_id "
	"  LEFT JOIN ioffice.file f "
	"         ON f.document_id = r.id AND f.superseded_at IS NULL AND f.removed_at IS NULL "
	"  LEFT JOIN LATERAL (SELECT max(s.reason) AS reason FROM ioffice.signature s "
	"                      WHERE s.file_id = f.id AND s.kind = 'personal' "
	"                        AND s.signer_id = r.signer_id AND s.status = 'failed') fs ON true "
	" WHERE d.id = $1 GROUP BY d.result_document_id",
	1, {INT8OID}
};

/*
 * result_signed: the leader's signature is done (by the worker) on every
 * current file of the result, so that the seal issue_result queues goes on
 * nothing the leader did not sign (the trail it attaches comes after).
 */
void
ioffice_guard_result_signed(ActContext *ctx)
{
	Datum		values[1];
	int64		result = 0,
				pending = 0,
				unsigned_files = 0,
				files = 0;

	values[0] = Int64GetDatum(ctx->doc);
	ioffice_exec(&result_signatures, values, NULL, 1);
	if (!ioffice_get_int64(0, 1, &result))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s has no result document yet", ctx->name)));
	ioffice_get_int64(0, 2, &pending);
	ioffice_get_int64(0, 3, &unsigned_files);
	ioffice_get_int64(0, 5, &files);
	if (pending > 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the leader's signature of the result of %s is still pending", ctx->name),
				 errdetail("The signing worker has not signed document %lld yet.",
						   (long long) result)));
	if (unsigned_files > 0 || files == 0)
	{
		char	   *failed = ioffice_get_text(0, 4);

		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the result of %s is not signed by the leader", ctx->name),
				 failed ? errdetail("The signature failed: %s.", failed) : 0,
				 errhint("Return the dossier to the leader (\"return_to_leader\") to sign it again.")));
	}
}

/* ---------------------------------------------------------------------
 * Effects
 * ---------------------------------------------------------------------
 */
static IofficePlan chosen_file = {
	NULL,
	"SELECT name, content, kind FROM ioffice.dossier_file WHERE id = $1 AND dossier_id = $2",
	2, {INT8OID, INT8OID}
};

/* the proposer (the specialist who drafted the result) becomes its drafter */
static IofficePlan dossier_for_result = {
	NULL,
	"SELECT coalesce(abstract, left(procedure_name, 500)), result_document_id, "
	"       (SELECT t.sender_id FROM ioffice.dossier_task t WHERE t.dossier_id = $1 "
	"           AND t.action = 'propose' ORDER BY t.step DESC LIMIT 1) "
	"  FROM ioffice.dossier WHERE id = $1",
	1, {INT8OID}
};

static IofficePlan result_insert = {
	NULL,
	"INSERT INTO ioffice.document (workflow, direction, doc_type, abstract, state, agency_id, "
	"                              drafting_unit_id, drafter_id, signer_id) "
	"SELECT 'dossier_result', 'outgoing', $1, $2, 'awaiting_issue', $3, p.unit_id, p.id, $5 "
	"  FROM ioffice.person p WHERE p.id = $4 RETURNING id",
	5, {TEXTOID, TEXTOID, INT8OID, INT8OID, INT8OID}
};

static IofficePlan proposer_unit = {
	NULL, "SELECT unit_id FROM ioffice.person WHERE id = $1", 1, {INT8OID}
};

static IofficePlan result_link = {
	NULL, "UPDATE ioffice.dossier SET result_document_id = $2 WHERE id = $1", 2, {INT8OID, INT8OID}
};

static IofficePlan queue_personal = {
	NULL,
	"INSERT INTO ioffice.signature (document_id, file_id, signer_id, kind, options) "
	"VALUES ($1, $2, $3, 'personal', $4)",
	4, {INT8OID, INT8OID, INT8OID, JSONBOID}
};

static char *
string_option(ActContext *ctx, const char *key)
{
	JsonbValue *v = ioffice_jsonb_get(ctx->options, key);

	if (v == NULL || v->type != jbvString)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/*
 * make_result (the leader's "Lãnh đạo ký CA"): the file chosen among the
 * proposal's files, the dossier's components or the leader's upload
 * (option result_file) becomes the file of a new outgoing document, the
 * dossier's result, and the leader's personal signature of it is queued for
 * the signing worker.  The proposer is its drafter, the leader its signer.
 */
void
ioffice_effect_make_result(ActContext *ctx)
{
	JsonbValue *v = ioffice_jsonb_get(ctx->options, "result_file");
	char	   *mode = string_option(ctx, "mode");
	char	   *doc_type = string_option(ctx, "doc_type");
	int64		file_id;
	Datum		values[5];
	bool		isnull;
	text	   *name;
	bytea	   *content;
	char	   *kind;
	char	   *abstract;
	int64		existing = 0;
	int64		proposer = 0;
	int64		proposer_unit_id = 0;
	int64		doc = 0;
	int64		file;
	JsonbBuild *sig_options;
	JsonbBuild *created;

	if (v == NULL || v->type != jbvNumeric)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" needs option result_file: the file to sign", ctx->tr->label),
				 errhint("A file of the proposal, a component of the dossier, or one uploaded with dossier_attach(..., 'result').")));
	if (!ioffice_numeric_to_int64(v->val.numeric, &file_id) || file_id <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"result_file\" must be a file id")));
	if (mode == NULL)
		mode = "auto";
	if (strcmp(mode, "vgca") != 0 && strcmp(mode, "auto") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown signing mode \"%s\"", mode),
				 errhint("Modes of a result are vgca and auto.")));
	if (doc_type == NULL)
		doc_type = "CV";
	ioffice_check_doc_type(doc_type);

	values[0] = Int64GetDatum(file_id);
	values[1] = Int64GetDatum(ctx->doc);
	ioffice_exec(&chosen_file, values, NULL, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("file %lld is not a file of %s", (long long) file_id, ctx->name)));
	name = cstring_to_text(ioffice_get_text(0, 1));
	content = DatumGetByteaPCopy(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2,
											   &isnull));
	kind = ioffice_get_text(0, 3);
	if (!ioffice_kind_interconnectable(kind))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("file \"%s\" is %s: a result goes to the document system as doc, docx, xls, xlsx or pdf",
						text_to_cstring(name), kind)));

	values[0] = Int64GetDatum(ctx->doc);
	ioffice_exec(&dossier_for_result, values, NULL, 1);
	abstract = ioffice_get_text(0, 1);
	if (ioffice_get_int64(0, 2, &existing))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s already has its result, document %lld", ctx->name,
						(long long) existing)));
	if (!ioffice_get_int64(0, 3, &proposer))
		proposer = ctx->sender ? ctx->sender : ctx->actor;
	/* the leader signs what another drafted, for the unit they lead */
	if (proposer == ctx->actor)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("nobody may \"%s\" a result they proposed", ctx->tr->label),
				 errhint("Hand it to another leader (\"forward\") to sign it.")));
	values[0] = Int64GetDatum(proposer);
	ioffice_exec(&proposer_unit, values, NULL, 1);
	ioffice_get_int64(0, 1, &proposer_unit_id);
	if (!ioffice_person_leads(ctx->actor, proposer_unit_id))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only a leader of the proposer's unit or of a unit above it may \"%s\" the result of %s",
						ctx->tr->label, ctx->name),
				 errdetail("Who signs the result is its signer in the register (Người ký).")));

	values[0] = CStringGetTextDatum(doc_type);
	values[1] = CStringGetTextDatum(abstract);
	values[2] = Int64GetDatum(ctx->agency);
	values[3] = Int64GetDatum(proposer);
	values[4] = Int64GetDatum(ctx->actor);
	ioffice_exec(&result_insert, values, NULL, 1);
	ioffice_get_int64(0, 1, &doc);

	created = ioffice_jsonb_begin();
	ioffice_jsonb_add_text(created, "dossier", dossier_code(ctx));
	ioffice_jsonb_add_text(created, "doc_type", doc_type);
	ioffice_audit(ctx->actor, 0, "document", doc, "create_result", NULL, "awaiting_issue",
				  ioffice_jsonb_end(created));
	file = ioffice_add_document_file(doc, name, content, kind, ctx->actor, "attach");

	sig_options = ioffice_jsonb_begin();
	ioffice_jsonb_add_text(sig_options, "mode", mode);
	values[0] = Int64GetDatum(doc);
	values[1] = Int64GetDatum(file);
	values[2] = Int64GetDatum(ctx->actor);
	values[3] = JsonbPGetDatum(ioffice_jsonb_end(sig_options));
	ioffice_exec(&queue_personal, values, NULL, 0);
	ioffice_worker_wake_at_commit();

	values[0] = Int64GetDatum(ctx->doc);
	values[1] = Int64GetDatum(doc);
	ioffice_exec(&result_link, values, NULL, 0);

	ioffice_jsonb_add_int(ctx->detail, "result_document", doc);
	ioffice_jsonb_add_int(ctx->detail, "result_file", file_id);
}

static IofficePlan result_of = {
	NULL,
	"SELECT d.result_document_id, r.doc_type, r.drafting_unit_id, r.signer_id, r.abstract, "
	"       (SELECT p.login FROM ioffice.person p WHERE p.id = r.signer_id) "
	"  FROM ioffice.dossier d JOIN ioffice.document r ON r.id = d.result_document_id "
	" WHERE d.id = $1 FOR UPDATE OF r",
	1, {INT8OID}
};

static IofficePlan result_issued = {
	NULL,
	"UPDATE ioffice.document SET state = 'issued', updated_at = now() WHERE id = $1",
	1, {INT8OID}
};

static IofficePlan dossier_trail_rows = {
	NULL,
	"SELECT step, sender, request, receiver, received_at AT TIME ZONE ioffice.timezone(), "
	"       processing_note, deadline, processed_at AT TIME ZONE ioffice.timezone(), "
	"       status, attachments "
	"  FROM ioffice.dossier_trail($1) ORDER BY step",
	1, {TEXTOID}
};

static IofficePlan dossier_heading = {
	NULL,
	"SELECT procedure_code || ' - ' || procedure_name, applicant->>'name' FROM ioffice.dossier WHERE code = $1",
	1, {TEXTOID}
};

/* The dossier's processing trail as a workbook, the file the seed attaches to the result. */
static bytea *
dossier_trail_xlsx(const char *code)
{
	ExportTable *t = palloc0(sizeof(ExportTable));
	Datum		values[1];
	char	   *procedure;
	char	   *applicant;

	t->name = "dossier_trail";
	t->what = "the dossier trail workbook";
	t->context = psprintf("building the trail workbook of dossier %s", code);
	t->sheet = "Quá trình xử lý";
	t->doc_title = "Quá trình xử lý hồ sơ";
	t->columns = export_trail_columns;
	t->ncolumns = export_trail_ncolumns;
	values[0] = CStringGetTextDatum(code);
	ioffice_exec(&dossier_trail_rows, values, NULL, 0);
	export_add_spi_rows(t);
	ioffice_exec(&dossier_heading, values, NULL, 1);
	procedure = export_spi_text(0, 1);
	applicant = export_spi_text(0, 2);
	t->doc_subject = procedure;
	t->ntitles = 3;
	t->titles = palloc0(sizeof(ExportTitle) * t->ntitles);
	t->titles[0].text = psprintf("QUÁ TRÌNH XỬ LÝ HỒ SƠ %s", code);
	t->titles[0].big = true;
	t->titles[0].height = 24;
	t->titles[1].text = psprintf("Thủ tục: %s", procedure);
	t->titles[1].height = 16.0 * (1 + export_utf8_chars(procedure) / 150);
	t->titles[2].text = psprintf("Người nộp: %s", applicant ? applicant : "");
	return export_table(t, EXPORT_XLSX);
}

/*
 * An option of the clerk's issue that names what the leader signed: the
 * same value is accepted (the clerk's form repeats it), another is refused.
 * The value is well-formed (it was checked above); it is the signed result
 * that cannot take it: 55000, not possible in the current state.
 */
static void
refuse_change(ActContext *ctx, const char *option, const char *given, const char *signed_value)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("the result of %s is signed: option \"%s\" cannot change its %s",
					ctx->name, option, strcmp(option, "doc_type") == 0 ? "type" : option),
			 errdetail("Signed: \"%.*s\"; given: \"%.*s\".",
					   pg_mbcliplen(signed_value, strlen(signed_value), 60), signed_value,
					   pg_mbcliplen(given, strlen(given), 60), given),
			 errhint("The clerk numbers and issues what the leader signed; to change it, return the dossier to the leader (\"return_to_leader\").")));
}

/*
 * issue_result (the clerk's "Văn bản liên thông iOffice"): the result is
 * issued as the leader signed it.  Options doc_type, signer and abstract
 * may repeat its type, signer and abstract, never change them (finding 1 of
 * issue 17: the clerk registered a type, an abstract and a signer nobody
 * signed).  Its files (doc, docx, xls, xlsx or pdf) were checked when it
 * was made and cannot change since; the dossier's trail is attached as a
 * workbook; the organisation's seal of every file is queued; the register
 * number is taken last (its lock is held to commit).
 */
void
ioffice_effect_issue_result(ActContext *ctx)
{
	Datum		values[1];
	int64		doc = 0;
	int64		drafting_unit = 0;
	int64		signed_by = 0;
	char	   *signed_abstract;
	char	   *signed_login;
	char	   *doc_type;
	const char *code = dossier_code(ctx);
	const char *day_and_seq = code + strlen(code);
	int			dashes = 0;
	char	   *opt_type = string_option(ctx, "doc_type");
	char	   *opt_signer = string_option(ctx, "signer");
	char	   *opt_abstract = string_option(ctx, "abstract");
	int64		signer = 0;
	bytea	   *trail;
	char	   *trail_name;
	int64		seals;
	IssueRequest req;
	JsonbBuild *doc_detail;

	values[0] = Int64GetDatum(ctx->doc);
	ioffice_exec(&result_of, values, NULL, 1);
	if (!ioffice_get_int64(0, 1, &doc))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s has no result document yet", ctx->name)));
	doc_type = ioffice_get_text(0, 2);
	ioffice_get_int64(0, 3, &drafting_unit);
	ioffice_get_int64(0, 4, &signed_by);
	signed_abstract = ioffice_get_text(0, 5);
	signed_login = ioffice_get_text(0, 6);

	if (opt_type)
	{
		ioffice_check_doc_type(opt_type);
		if (strcmp(opt_type, doc_type) != 0)
			refuse_change(ctx, "doc_type", opt_type, doc_type);
	}
	if (opt_signer)
	{
		signer = ioffice_person_id(opt_signer);
		if (signer != signed_by)
			refuse_change(ctx, "signer", opt_signer, signed_login ? signed_login : "");
	}
	if (opt_abstract && strspn(opt_abstract, " ") == strlen(opt_abstract))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"abstract\" is empty")));
	if (opt_abstract && strcmp(opt_abstract, signed_abstract) != 0)
		refuse_change(ctx, "abstract", opt_abstract, signed_abstract);

	/*
	 * The trail, up to this hand-over, named within the file-name limit by
	 * the code's day and sequence (<agency>-231030-0068: QTXL-231030-0068.xlsx),
	 * the day the code was given, whatever ioffice.timezone says now.
	 */
	while (day_and_seq > code && dashes < 2)
		if (*--day_and_seq == '-')
			dashes++;
	trail = dossier_trail_xlsx(code);
	trail_name = psprintf("QTXL%s.xlsx", day_and_seq);
	ioffice_add_document_file(doc, cstring_to_text(trail_name), trail, "xlsx", ctx->actor,
							  "attach_trail");
	seals = ioffice_queue_seal(doc, ctx->actor);

	doc_detail = ioffice_jsonb_begin();
	ioffice_jsonb_add_text(doc_detail, "dossier", dossier_code(ctx));
	ioffice_jsonb_add_int(doc_detail, "seals_queued", seals);
	memset(&req, 0, sizeof(req));
	req.doc = doc;
	req.actor = ctx->actor;
	req.agency = ctx->agency;
	req.doc_type = doc_type;
	req.confidentiality = "normal";
	req.drafting_unit = drafting_unit;
	req.given_register = ioffice_register_option(ctx->options);
	req.detail = doc_detail;
	ioffice_issue_number(&req);

	values[0] = Int64GetDatum(doc);
	ioffice_exec(&result_issued, values, NULL, 0);
	ioffice_audit(ctx->actor, 0, "document", doc, "issue", "awaiting_issue", "issued",
				  ioffice_jsonb_end(doc_detail));

	ioffice_jsonb_add_int(ctx->detail, "result_document", doc);
	ioffice_jsonb_add_int(ctx->detail, "number", req.number);
	ioffice_jsonb_add_text(ctx->detail, "symbol", req.symbol);
}

static IofficePlan abstract_keep = {
	NULL, "UPDATE ioffice.dossier SET abstract = $2 WHERE id = $1", 2, {INT8OID, TEXTOID}
};

/* keep_abstract: the specialist's abstract (option abstract), for the clerk to copy */
static IofficePlan result_withdraw = {
	NULL,
	"WITH r AS (SELECT result_document_id AS id FROM ioffice.dossier WHERE id = $1), "
	"     d AS (UPDATE ioffice.dossier SET result_document_id = NULL WHERE id = $1), "
	"     s AS (UPDATE ioffice.signature SET status = 'failed', reason = 'the result was withdrawn' "
	"            WHERE document_id = (SELECT id FROM r) AND status = 'pending') "
	"UPDATE ioffice.document doc SET state = 'withdrawn', updated_at = now() "
	"  FROM r WHERE doc.id = r.id RETURNING doc.id",
	1, {INT8OID}
};

/*
 * drop_result (the clerk returns the dossier to the leader): the result
 * document that could not be issued (its signature failed, or the wrong
 * file was chosen) is withdrawn with its pending signatures, so that the
 * leader's next "sign" makes a new one.  It stays, withdrawn, for the trail.
 */
void
ioffice_effect_drop_result(ActContext *ctx)
{
	Datum		values[1];
	int64		result = 0;

	values[0] = Int64GetDatum(ctx->doc);
	ioffice_exec(&result_withdraw, values, NULL, 1);
	if (ioffice_get_int64(0, 1, &result))
	{
		ioffice_jsonb_add_int(ctx->detail, "withdrawn_result", result);
		ioffice_audit(ctx->actor, 0, "document", result, "withdraw_result", "awaiting_issue",
					  "withdrawn", NULL);
	}
}

void
ioffice_effect_keep_abstract(ActContext *ctx)
{
	char	   *abstract = string_option(ctx, "abstract");
	Datum		values[2];

	if (abstract == NULL)
		return;
	if (strspn(abstract, " ") == strlen(abstract))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"abstract\" is empty")));
	values[0] = Int64GetDatum(ctx->doc);
	values[1] = CStringGetTextDatum(abstract);
	ioffice_exec(&abstract_keep, values, NULL, 0);
}

/*
 * A dossier already paused keeps the moment it was first paused; one past
 * its deadline is not paused at all (no row: see pause_clock).
 */
static IofficePlan clock_pause = {
	NULL,
	"UPDATE ioffice.dossier SET paused_at = coalesce(paused_at, now()) "
	" WHERE id = $1 AND deadline >= now() RETURNING 1",
	1, {INT8OID}
};

/*
 * pause_clock: waiting for the applicant (status 5, 6) does not count.
 * The one-stop rules (Decree 61/2018) stop the clock only for a request
 * the applicant must answer: it says what is asked (the note), and it is
 * made within the time allowed.  A dossier already late cannot
 * be paused: its lateness is the agency's, and a pause would erase it when
 * the deadline is computed again at resume.  Enforced here, in the effect,
 * whatever guards a DBA gives the transition.
 */
void
ioffice_effect_pause_clock(ActContext *ctx)
{
	Datum		values[1];

	if (ctx->note == NULL || strspn(ctx->note, " \t\r\n") == strlen(ctx->note))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s: a pause needs a note saying what the applicant is asked for", ctx->name)));
	values[0] = Int64GetDatum(ctx->doc);
	ioffice_exec(&clock_pause, values, NULL, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s is past its deadline: its clock cannot be paused", ctx->name),
				 errdetail("Only a request made within the time allowed stops the clock; "
						   "a late dossier stays late.")));
}

/*
 * The working days a pause lasted are the whole ones: n such that n working
 * days after the pause (add_working_days, as deadlines count) is not after
 * now.  A pause from one evening to the next morning is none, though it
 * spans a date: counting dates would give a day to every overnight pause.
 */
static IofficePlan clock_resume = {
	NULL,
	"WITH w AS (SELECT paused_at, "
	"                  coalesce(greatest(ioffice.working_days_between(paused_at, now()), 0), 0) AS n "
	"             FROM ioffice.dossier WHERE id = $1), "
	"     p AS (SELECT CASE WHEN n > 0 AND ioffice.add_working_days(paused_at, n) > now() "
	"                       THEN n - 1 ELSE n END AS n FROM w) "
	"UPDATE ioffice.dossier d SET paused_days = d.paused_days + p.n, paused_at = NULL, "
	"       deadline = ioffice.add_working_days(d.received_at, d.statutory_days + d.paused_days + p.n) "
	"  FROM p WHERE d.id = $1 "
	"RETURNING p.n, to_char(d.deadline AT TIME ZONE ioffice.timezone(), 'YYYY-MM-DD\"T\"HH24:MI:SS')",
	1, {INT8OID}
};

/*
 * resume_clock: the working days the dossier waited are added to its
 * statutory time; the deadline is computed again from the reception.
 */
void
ioffice_effect_resume_clock(ActContext *ctx)
{
	Datum		values[1];
	int32		n = 0;

	values[0] = Int64GetDatum(ctx->doc);
	ioffice_exec(&clock_resume, values, NULL, 1);
	ioffice_get_int32(0, 1, &n);
	ioffice_jsonb_add_int(ctx->detail, "paused_working_days", n);
	ioffice_jsonb_add_text(ctx->detail, "deadline", ioffice_get_text(0, 2));
}

/* ---------------------------------------------------------------------
 * SQL functions
 * ---------------------------------------------------------------------
 */
PG_FUNCTION_INFO_V1(ioffice_dossier_act);
Datum
ioffice_dossier_act(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("dossier_act() needs a dossier code")));
	return ioffice_act_run(&dossier_subject, PG_GETARG_DATUM(0), fcinfo);
}

/*
 * The dossier's row lock, alone (as doc_lock_for_files in files.c): a lock
 * taken by a statement that joins the dossier to its state row would, after
 * waiting for a dossier_act that moved the dossier, recheck the join against
 * the old state row, find nothing and call the dossier unknown; and its
 * subquery would name the holder from before the wait.  The state and the
 * holder are read after the lock, by the next statement, which sees what
 * that act left.
 */
static IofficePlan attach_lock = {
	NULL,
	"SELECT id FROM ioffice.dossier WHERE code = $1 FOR NO KEY UPDATE",
	1, {TEXTOID}
};

static IofficePlan attach_state = {
	NULL,
	"SELECT d.state, s.final, "
	"       (SELECT t.receiver_id FROM ioffice.dossier_task t "
	"         WHERE t.dossier_id = d.id AND t.status = 'open') "
	"  FROM ioffice.dossier d "
	"  JOIN ioffice.workflow_state s ON s.workflow = d.workflow AND s.state = d.state "
	" WHERE d.id = $1",
	1, {INT8OID}
};

static IofficePlan dossier_file_insert = {
	NULL,
	"INSERT INTO ioffice.dossier_file (dossier_id, purpose, name, kind, size, sha256, content, "
	"                                  uploaded_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
	8, {INT8OID, TEXTOID, TEXTOID, TEXTOID, INT4OID, BYTEAOID, BYTEAOID, INT8OID}
};

/*
 * dossier_attach(code, file_name, content, purpose) → file id.  The holder
 * attaches: components while the dossier is at reception, the leader's own
 * result while it awaits signature, opinion files at any step.  Files go
 * through the checks of attach() (name length, type from the content,
 * allowed types).
 */
PG_FUNCTION_INFO_V1(ioffice_dossier_attach);
Datum
ioffice_dossier_attach(PG_FUNCTION_ARGS)
{
	char	   *code;
	text	   *name;
	bytea	   *content;
	char	   *purpose;
	int64		actor;
	int64		dossier = 0;
	int64		holder = 0;
	bool		final = false;
	char	   *state;
	const char *kind;
	bytea	   *digest;
	int64		id = 0;
	Datum		values[8];
	JsonbBuild *detail;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("dossier code, file name, content and purpose must not be NULL")));
	code = text_to_cstring(PG_GETARG_TEXT_PP(0));
	name = PG_GETARG_TEXT_PP(1);
	content = PG_GETARG_BYTEA_PP(2);
	purpose = text_to_cstring(PG_GETARG_TEXT_PP(3));
	if (strcmp(purpose, "component") != 0 && strcmp(purpose, "opinion") != 0 &&
		strcmp(purpose, "result") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown file purpose \"%.*s\"", pg_mbcliplen(purpose, strlen(purpose), 40),
						purpose),
				 errhint("A dossier file is a component, an opinion file or a result.")));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	ioffice_engine_enter();
	actor = ioffice_resolve_actor(false);
	/* only its holder attaches, who sees it: to anyone else it is unknown */
	(void) ioffice_require_dossier(code, false);
	values[0] = CStringGetTextDatum(code);
	ioffice_exec(&attach_lock, values, NULL, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("unknown dossier \"%.*s\"", pg_mbcliplen(code, strlen(code), 60), code)));
	ioffice_get_int64(0, 1, &dossier);
	values[0] = Int64GetDatum(dossier);
	ioffice_exec(&attach_state, values, NULL, 1);
	if (SPI_processed == 0)
		elog(ERROR, "ioffice: dossier %s has no state row", code);
	state = ioffice_get_text(0, 1);
	ioffice_get_bool(0, 2, &final);
	ioffice_get_int64(0, 3, &holder);
	if (final)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("dossier %s is %s: its files can no longer change", code, state)));
	if (holder != actor)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only the person holding dossier %s may attach files to it", code)));
	if (strcmp(purpose, "component") == 0 && strcmp(state, "received") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("components of dossier %s are attached at reception", code)));
	if (strcmp(purpose, "result") == 0 && strcmp(state, "proposed") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("a result file of dossier %s is uploaded by the leader who signs it", code)));

	ioffice_check_file_name(name);
	kind = ioffice_check_file_content(name, content);
	digest = ioffice_sha256(content);

	values[0] = Int64GetDatum(dossier);
	values[1] = CStringGetTextDatum(purpose);
	values[2] = PointerGetDatum(name);
	values[3] = CStringGetTextDatum(kind);
	values[4] = Int32GetDatum((int32) VARSIZE_ANY_EXHDR(content));
	values[5] = PointerGetDatum(digest);
	values[6] = PointerGetDatum(content);
	values[7] = Int64GetDatum(actor);
	ioffice_exec(&dossier_file_insert, values, NULL, 1);
	ioffice_get_int64(0, 1, &id);

	detail = ioffice_jsonb_begin();
	ioffice_jsonb_add_text(detail, "dossier", code);
	ioffice_jsonb_add_text(detail, "purpose", purpose);
	ioffice_jsonb_add_text(detail, "name", text_to_cstring(name));
	ioffice_jsonb_add_text(detail, "kind", kind);
	ioffice_jsonb_add_int(detail, "size", VARSIZE_ANY_EXHDR(content));
	ioffice_audit_in_chain(psprintf("dossier:" INT64_FORMAT, dossier), actor, 0, "dossier_file",
						   id, "attach", NULL, NULL, ioffice_jsonb_end(detail));
	ioffice_engine_leave();
	SPI_finish();
	PG_RETURN_INT64(id);
}

/* _due_soon_days(): the setting ioffice.due_soon_days, for the dossier_due view */
PG_FUNCTION_INFO_V1(ioffice_due_soon_days_sql);
Datum
ioffice_due_soon_days_sql(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(ioffice_due_soon_days);
}

/*
 * An online registration (national status 1) has nobody who received it
 * and a clock that stands still (register_dossier()); accepting it is the
 * reception: the accepting officer receives it now, the deadline counts
 * from now, and it is theirs to hand on, as a dossier received at the desk
 * is its receiver's.
 */
static IofficePlan clock_start = {
	NULL,
	"UPDATE ioffice.dossier SET received_by = $2, received_at = now(), paused_at = NULL, "
	"       deadline = ioffice.add_working_days(now(), statutory_days) "
	" WHERE id = $1 AND received_by IS NULL "
	"RETURNING to_char(deadline AT TIME ZONE ioffice.timezone(), 'YYYY-MM-DD\"T\"HH24:MI:SS')",
	2, {INT8OID, INT8OID}
};

static IofficePlan acceptor_task = {
	NULL,
	"INSERT INTO ioffice.dossier_task (dossier_id, step, action, sender_id, request, receiver_id, received_at) "
	"VALUES ($1, $2, $3, $4, 'Tiếp nhận hồ sơ', $4, now())",
	4, {INT8OID, INT4OID, TEXTOID, INT8OID}
};

/*
 * start_clock: a dossier already received (at the desk, or accepted once)
 * keeps its clock: enforced here, whatever transition a DBA gives it to.
 */
void
ioffice_effect_start_clock(ActContext *ctx)
{
	Datum		values[4];

	values[0] = Int64GetDatum(ctx->doc);
	values[1] = Int64GetDatum(ctx->actor);
	ioffice_exec(&clock_start, values, NULL, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s has been received already: its clock is running", ctx->name),
				 errhint("start_clock belongs to the acceptance of an online registration.")));
	ioffice_jsonb_add_text(ctx->detail, "deadline", ioffice_get_text(0, 1));
	ctx->drafter = ctx->actor;

	values[1] = Int32GetDatum(ctx->last_step + 1);
	values[2] = CStringGetTextDatum(ctx->tr->action);
	values[3] = Int64GetDatum(ctx->actor);
	ioffice_exec(&acceptor_task, values, NULL, 0);
	ctx->last_step++;
}
