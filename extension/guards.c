/*-------------------------------------------------------------------------
 * guards.c
 *	  Named checks a workflow transition may require.
 *
 * A guard returns when the action may go ahead and raises an error that
 * says what is missing when it may not.  Rules name guards in
 * workflow_transition.guards; this table is the list of names they may use.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"

#include "workflow.h"

static IofficePlan current_files = {
	NULL,
	"SELECT count(*) FROM ioffice.file WHERE document_id = $1 "
	"AND superseded_at IS NULL AND removed_at IS NULL",
	1, {INT8OID}
};

static IofficePlan pending_signature = {
	NULL,
	"SELECT f.name FROM ioffice.signature s JOIN ioffice.file f ON f.id = s.file_id "
	" WHERE s.document_id = $1 AND s.signer_id = $2 AND s.status = 'pending' "
	"   AND f.superseded_at IS NULL AND f.removed_at IS NULL LIMIT 1",
	2, {INT8OID, INT8OID}
};

/*
 * A current file without the personal signature of $2: detached on it, or
 * embedded in it (PAdES).  A PDF carries the signatures of the versions
 * that later signatures appended to (carried_from: the file, then back
 * through replaces_id while each version was made by a signature).
 */
static IofficePlan unsigned_file = {
	NULL,
	"WITH RECURSIVE carried_from(start, id, replaces) AS ("
	"  SELECT f.id, f.id, f.replaces_id FROM ioffice.file f "
	"   WHERE f.document_id = $1 AND f.superseded_at IS NULL AND f.removed_at IS NULL "
	"  UNION ALL "
	"  SELECT c.start, f.id, f.replaces_id FROM carried_from c JOIN ioffice.file f ON f.id = c.replaces "
	"   WHERE EXISTS (SELECT 1 FROM ioffice.signature s WHERE s.signed_file_id = c.id)) "
	"SELECT f.name FROM ioffice.file f "
	" WHERE f.document_id = $1 AND f.superseded_at IS NULL AND f.removed_at IS NULL "
	"   AND NOT EXISTS (SELECT 1 FROM ioffice.signature s "
	"                    WHERE s.signer_id = $2 AND s.kind = 'personal' AND s.status = 'done' "
	"                      AND ((s.file_id = f.id AND s.signed_file_id IS NULL) "
	"                           OR s.signed_file_id IN (SELECT c.id FROM carried_from c WHERE c.start = f.id))) "
	" ORDER BY f.id LIMIT 1",
	2, {INT8OID, INT8OID}
};

/* has_file: the document has at least one current file */
static void
guard_has_file(ActContext *ctx)
{
	Datum		values[1];
	int64		n = 0;

	values[0] = Int64GetDatum(ctx->doc);
	ioffice_exec(&current_files, values, NULL, 1);
	ioffice_get_int64(0, 1, &n);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("document %lld has no file", (long long) ctx->doc),
				 errhint("Attach the document's file before \"%s\".", ctx->tr->label)));
}

/* receiver_not_actor: a hand-over goes to somebody else */
static void
guard_receiver_not_actor(ActContext *ctx)
{
	int64		self = ctx->on_behalf_of ? ctx->on_behalf_of : ctx->actor;

	if (ctx->receiver == self || ctx->receiver == ctx->actor)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" must go to another person", ctx->tr->label)));
}

/*
 * own_signature: the signature the actor queued is done, and when the
 * drafter asked for a digital signature, every current file carries the
 * approving leader's own.  Under delegation the holder's signature is the
 * one that counts: a signature is personal and is never delegated.
 */
static void
guard_own_signature(ActContext *ctx)
{
	Datum		values[2];
	int64		signer = ctx->on_behalf_of ? ctx->on_behalf_of : ctx->actor;

	values[0] = Int64GetDatum(ctx->doc);
	values[1] = Int64GetDatum(signer);
	ioffice_exec(&pending_signature, values, NULL, 1);
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the signature of file \"%s\" is still pending", ioffice_get_text(0, 1)),
				 errdetail("Document %lld cannot be approved until its signing is done.",
						   (long long) ctx->doc)));
	if (!ctx->signature_requested)
		return;
	ioffice_exec(&unsigned_file, values, NULL, 1);
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("file \"%s\" is not signed", ioffice_get_text(0, 1)),
				 errdetail("A digital signature was requested for document %lld.",
						   (long long) ctx->doc),
				 errhint("Sign the document (action \"sign\") before approving it.")));
}

static IofficePlan approver_of_holder = {
	NULL,
	"SELECT coalesce(sender_for, sender_id) FROM ioffice.task WHERE id = $1",
	1, {INT8OID}
};

/*
 * approver_signature: when a digital signature was requested, every current
 * file carries the done personal signature of the leader who handed the
 * document to its holder (the approval; under delegation the holder they
 * approved for, as own_signature counts it).  Checked again when issuing,
 * so that the seal never goes on a file the leader did not sign, whatever
 * way it came in after the approval.
 */
static void
guard_approver_signature(ActContext *ctx)
{
	Datum		values[2];
	int64		approver = 0;

	if (!ctx->signature_requested)
		return;
	values[0] = Int64GetDatum(ctx->task_id);
	ioffice_exec(&approver_of_holder, values, NULL, 1);
	if (!ioffice_get_int64(0, 1, &approver))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s was handed to nobody by an approving leader", ctx->name)));
	values[0] = Int64GetDatum(ctx->doc);
	values[1] = Int64GetDatum(approver);
	ioffice_exec(&unsigned_file, values, NULL, 1);
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("file \"%s\" is not signed by the leader who approved it",
						ioffice_get_text(0, 1)),
				 errdetail("A digital signature was requested for document %lld: what is issued must carry it.",
						   (long long) ctx->doc),
				 errhint("Return the document (action \"return\") to be signed and approved again.")));
}

/* note_given: the action says why (a refusal, a withdrawal, a request to the applicant) */
static void
guard_note_given(ActContext *ctx)
{
	if (ctx->note == NULL || strspn(ctx->note, " ") == strlen(ctx->note))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" needs a note saying why", ctx->tr->label)));
}

const WfNamedStep ioffice_guards[] = {
	{"has_file", guard_has_file, "the document has at least one current file", "document"},
	{"receiver_not_actor", guard_receiver_not_actor, "the receiver is not the actor"},
	{"own_signature", guard_own_signature,
	"no signature of the actor is pending, and a requested signature is done on every file", "document"},
	{"approver_signature", guard_approver_signature,
	"a requested signature is done on every current file by the leader who approved", "document"},
	{"note_given", guard_note_given, "the action carries a note"},
	{"has_opinion_file", ioffice_guard_has_opinion_file,
	"dossier: the actor attached a file (the draft result) to the opinion", "dossier"},
	{"result_signed", ioffice_guard_result_signed,
	"dossier: the leader's signature of the result document is done", "dossier"},
	{NULL, NULL, NULL, NULL}
};

const WfNamedStep *
ioffice_find_step(const WfNamedStep *registry, const char *name)
{
	const WfNamedStep *s;

	for (s = registry; s->name != NULL; s++)
		if (strcmp(s->name, name) == 0)
			return s;
	return NULL;
}
