/*-------------------------------------------------------------------------
 * files.c
 *	  attach(), replace_file(), remove_file(): files of documents.
 *
 * Content lives in the database with its SHA-256.  Nothing is overwritten:
 * a replacement is a new row pointing at the one it replaces, a removal
 * only marks the row, so what was signed and when stays provable.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/rel.h"
#include "utils/varlena.h"

#include "ioffice.h"

/*
 * The document's row lock, alone: a lock taken by a statement that joins
 * the document to its state row would, after waiting for an act that moved
 * the document, recheck the join against the old state row, find nothing
 * and call the document unknown.  Its state is read after the lock, by the
 * statement below, which sees what that act left.
 */
static IofficePlan doc_lock_for_files = {
	NULL,
	"SELECT 1 FROM ioffice.document WHERE id = $1 FOR NO KEY UPDATE",
	1, {INT8OID}
};

/* after the lock (the functions), or unlocked (the trigger on table file) */
static IofficePlan doc_files_state = {
	NULL,
	"SELECT d.state, d.drafter_id, s.final, d.workflow = 'dossier_result', s.files_frozen, "
	"       d.direction = 'incoming' "
	"  FROM ioffice.document d "
	"  JOIN ioffice.workflow_state s ON s.workflow = d.workflow AND s.state = d.state "
	" WHERE d.id = $1",
	1, {INT8OID}
};

static IofficePlan any_file_frozen = {
	NULL,
	"SELECT d.id, d.state, s.final, s.files_frozen, d.direction = 'incoming' "
	"  FROM ioffice.document d "
	"  JOIN ioffice.workflow_state s ON s.workflow = d.workflow AND s.state = d.state "
	" WHERE (s.final OR s.files_frozen OR d.direction = 'incoming') "
	"   AND EXISTS (SELECT 1 FROM ioffice.file f WHERE f.document_id = d.id) "
	" ORDER BY d.id LIMIT 1",
	0, {InvalidOid}
};

/*
 * Read after the lock, in its own statement: a subquery of the locking
 * statement would see the tasks as they were before we waited.
 */
bool		ioffice_signed_version_allowed = false;

/* the version a signed PDF replaces, for the trigger's check */
static IofficePlan replaced_version = {
	NULL,
	"SELECT document_id, content FROM ioffice.file WHERE id = $1",
	1, {INT8OID}
};

static IofficePlan doc_holder = {
	NULL,
	"SELECT receiver_id FROM ioffice.task WHERE document_id = $1 AND status = 'open'",
	1, {INT8OID}
};

static IofficePlan file_insert = {
	NULL,
	"INSERT INTO ioffice.file (document_id, name, kind, size, sha256, content, replaces_id, "
	"uploaded_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
	8, {INT8OID, TEXTOID, TEXTOID, INT4OID, BYTEAOID, BYTEAOID, INT8OID, INT8OID}
};

static IofficePlan file_lookup = {
	NULL,
	"SELECT document_id, superseded_at IS NULL AND removed_at IS NULL, name "
	"  FROM ioffice.file WHERE id = $1",
	1, {INT8OID}
};

static IofficePlan file_supersede = {
	NULL,
	"UPDATE ioffice.file SET superseded_at = now() WHERE id = $1",
	1, {INT8OID}
};

static IofficePlan file_remove = {
	NULL,
	"UPDATE ioffice.file SET removed_at = now(), removed_by = $2 WHERE id = $1",
	2, {INT8OID, INT8OID}
};

/* a signature still waiting for a file that is no longer current never comes */
static IofficePlan signatures_drop = {
	NULL,
	"UPDATE ioffice.signature SET status = 'failed', reason = $2 "
	" WHERE file_id = $1 AND status = 'pending'",
	2, {INT8OID, TEXTOID}
};

void
ioffice_check_file_name(text *name_t)
{
	char	   *name = text_to_cstring(name_t);
	int			nchars = pg_mbstrlen(name);
	const char *p;

	if (nchars == 0 || strspn(name, " ") == strlen(name))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the file name is empty")));
	if (nchars > ioffice_max_file_name_length)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("file name \"%.*s%s\" is too long: %d characters, at most %d allowed",
						pg_mbcliplen(name, strlen(name), 60), name,
						strlen(name) > 60 ? "…" : "", nchars,
						ioffice_max_file_name_length),
				 errhint("Shorten the file name (setting ioffice.max_file_name_length).")));
	for (p = name; *p; p++)
		if ((unsigned char) *p < 0x20 || *p == '/' || *p == '\\')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("file name \"%s\" contains a control character, \"/\" or \"\\\"", name)));
}

/* "pdf" for "Tờ trình.PDF"; NULL without an extension. */
static char *
name_extension(text *name_t)
{
	char	   *name = text_to_cstring(name_t);
	char	   *dot = strrchr(name, '.');
	char	   *p;

	if (dot == NULL || dot[1] == '\0')
		return NULL;
	for (p = dot + 1; *p; p++)
		*p = pg_ascii_tolower((unsigned char) *p);
	return dot + 1;
}

static bool
kind_allowed(const char *kind)
{
	char	   *list = pstrdup(ioffice_allowed_file_types ? ioffice_allowed_file_types : "");
	List	   *items;
	ListCell   *lc;

	if (!SplitIdentifierString(list, ',', &items))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("setting ioffice.allowed_file_types is not a comma-separated list")));
	foreach(lc, items)
		if (pg_strcasecmp((char *) lfirst(lc), kind) == 0)
			return true;
	return false;
}

/* The kind of an acceptable file, or an error saying why it is refused. */
const char *
ioffice_check_file_content(text *name_t, bytea *content)
{
	const char *kind;
	const char *ext;

	if (VARSIZE_ANY_EXHDR(content) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the file is empty")));
	kind = ioffice_detect_file_kind((const unsigned char *) VARDATA_ANY(content),
									VARSIZE_ANY_EXHDR(content));
	if (kind == NULL || !kind_allowed(kind))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("file type %s is not allowed", kind ? kind : "(unrecognised)"),
				 errdetail("The content was examined, not the name."),
				 errhint("Allowed types: %s.", ioffice_allowed_file_types)));
	ext = name_extension(name_t);
	if (ext == NULL || strcmp(ext, kind) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the file's content is %s but its name says %s", kind,
						ext ? ext : "nothing"),
				 errhint("Name the file with the extension .%s.", kind)));
	return kind;
}

/*
 * The one rule on when a document's files may change, for the file
 * functions below and for the trigger on table file, which every other path
 * goes through (the engine's effects, a role that writes the table itself):
 * never in a final state, and never in a state that freezes them.  A leader's
 * approval freezes them (awaiting_issue): the clerk seals and issues what the
 * leader approved and signed, so a file changed after it would be issued
 * under a seal the leader never saw, with the leader's signature left on the
 * superseded version.  An incoming document's files freeze once its clerk
 * hands it on (awaiting_assignment, in_progress): what the leader and the
 * handlers read is what arrived.
 */
static void
check_files_open(int64 doc, const char *state, bool final, bool frozen, bool incoming)
{
	if (final)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("document %lld is %s: its files can no longer change",
						(long long) doc, state)));
	if (frozen && incoming)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("document %lld is %s: the files it was received with can no longer change",
						(long long) doc, state),
				 errdetail("A received document is kept as it arrived: it is the evidence of what the sender sent."),
				 errhint("Its clerk adds a missing part while registering it, or after it is returned (action \"return\").")));
	if (frozen)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("document %lld is %s: its files were approved and can no longer change",
						(long long) doc, state),
				 errdetail("What is issued and sealed must be what the leader approved and signed."),
				 errhint("Return the document (action \"return\"): once its files change it must be approved, and signed, again.")));
}

/*
 * A file of an incoming document is never replaced, removed or altered, in
 * any state and by anyone, its registering clerk included: it is what the
 * sender sent (for a document delivered here, the sender's signed file), or
 * the clerk's scan of the paper original.  A part that is missing is added
 * beside it (attach) while the clerk holds the document.
 */
static void
refuse_incoming_change(int64 doc)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("document %lld is an incoming document: its files are never replaced or removed",
					(long long) doc),
			 errdetail("A received document is kept as it arrived: it is the evidence of what the sender sent."),
			 errhint("Attach what is missing beside it while the clerk holds the document.")));
}

/*
 * Lock the document and check that the actor may change its files: the
 * drafter while it is with them (draft, returned), or the current holder
 * (a leader swaps the file under review, seed 000 part V).  A document the
 * actor may not see is unknown to them.  replacing: the change supersedes
 * or removes a file (replace_file, remove_file), not only adds one.
 */
static void
check_may_change_files(int64 doc, int64 actor, bool replacing)
{
	Datum		values[1];
	int64		drafter = 0;
	int64		holder = 0;
	bool		final = false;
	bool		dossier_result = false;
	bool		frozen = false;
	bool		incoming = false;
	bool		has_holder;
	char	   *state;

	ioffice_require_document(doc);
	values[0] = Int64GetDatum(doc);
	ioffice_exec(&doc_lock_for_files, values, NULL, 1);
	/* documents are never deleted: seen a moment ago, it is there */
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("unknown document %lld", (long long) doc)));
	/* read under the lock, in its own statement: the state a concurrent act left */
	ioffice_exec(&doc_files_state, values, NULL, 1);
	if (SPI_processed == 0)
		elog(ERROR, "ioffice: document %lld has no state of its workflow", (long long) doc);
	state = ioffice_get_text(0, 1);
	ioffice_get_int64(0, 2, &drafter);
	ioffice_get_bool(0, 3, &final);
	ioffice_get_bool(0, 4, &dossier_result);
	ioffice_get_bool(0, 5, &frozen);
	ioffice_get_bool(0, 6, &incoming);
	/* the signed result travels with its dossier: no file changes under it */
	if (dossier_result)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("document %lld is the result of a dossier: its files change only through dossier_act()",
						(long long) doc),
				 errhint("To sign another file, the clerk returns the dossier to the leader (\"return_to_leader\").")));
	ioffice_exec(&doc_holder, values, NULL, 1);
	has_holder = ioffice_get_int64(0, 1, &holder);

	check_files_open(doc, state, final, frozen, incoming);
	if (replacing && incoming)
		refuse_incoming_change(doc);
	if (has_holder ? holder != actor : drafter != actor)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only the person holding document %lld may change its files",
						(long long) doc)));
}

static int64
insert_file(int64 doc, text *name, bytea *content, bytea *digest, const char *kind,
			int64 replaces, int64 actor)
{
	Datum		values[8];
	char		nulls[8];
	int64		id;

	memset(nulls, ' ', sizeof(nulls));
	values[0] = Int64GetDatum(doc);
	values[1] = PointerGetDatum(name);
	values[2] = CStringGetTextDatum(kind);
	values[3] = Int32GetDatum((int32) VARSIZE_ANY_EXHDR(content));
	values[4] = PointerGetDatum(digest);
	values[5] = PointerGetDatum(content);
	values[6] = Int64GetDatum(replaces);
	nulls[6] = replaces ? ' ' : 'n';
	values[7] = Int64GetDatum(actor);
	ioffice_exec(&file_insert, values, nulls, 1);
	ioffice_get_int64(0, 1, &id);
	return id;
}

static Jsonb *
file_detail(int64 doc, text *name, const char *kind, bytea *content, bytea *digest,
			int64 other)
{
	JsonbBuild *b = ioffice_jsonb_begin();

	ioffice_jsonb_add_int(b, "document", doc);
	if (name)
		ioffice_jsonb_add_text(b, "name", text_to_cstring(name));
	if (kind)
		ioffice_jsonb_add_text(b, "kind", kind);
	if (content)
	{
		ioffice_jsonb_add_int(b, "size", VARSIZE_ANY_EXHDR(content));
		ioffice_jsonb_add_text(b, "sha256",
							   text_to_cstring(DatumGetTextPP(DirectFunctionCall2(binary_encode,
																				  PointerGetDatum(digest),
																				  CStringGetTextDatum("hex")))));
	}
	if (other)
		ioffice_jsonb_add_int(b, "replaces", other);
	return ioffice_jsonb_end(b);
}

/*
 * A file the engine itself adds to a document (a dossier's result, its
 * trail, an imported file): the caller checked it; stored and audited like
 * attach().
 */
int64
ioffice_add_document_file(int64 doc, text *name, bytea *content, const char *kind, int64 actor,
						  const char *action)
{
	bytea	   *digest = ioffice_sha256(content);
	int64		id = insert_file(doc, name, content, digest, kind, 0, actor);

	ioffice_audit_in_chain(ioffice_document_chain(doc), actor, 0, "file", id, action, NULL, NULL,
						   file_detail(doc, name, kind, content, digest, 0));
	return id;
}

static void
require_args(FunctionCallInfo fcinfo, int n, const char *what)
{
	int			i;

	for (i = 0; i < n; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s must not be NULL", what)));
}

PG_FUNCTION_INFO_V1(ioffice_attach);
Datum
ioffice_attach(PG_FUNCTION_ARGS)
{
	int64		doc;
	text	   *name;
	bytea	   *content;
	const char *kind;
	bytea	   *digest;
	int64		actor;
	int64		id;

	require_args(fcinfo, 3, "document, file name and content");
	doc = PG_GETARG_INT64(0);
	name = PG_GETARG_TEXT_PP(1);
	content = PG_GETARG_BYTEA_PP(2);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	ioffice_engine_enter();
	actor = ioffice_resolve_actor(false);
	check_may_change_files(doc, actor, false);
	ioffice_check_file_name(name);
	kind = ioffice_check_file_content(name, content);
	digest = ioffice_sha256(content);
	id = insert_file(doc, name, content, digest, kind, 0, actor);
	ioffice_audit_in_chain(ioffice_document_chain(doc), actor, 0, "file", id, "attach", NULL, NULL,
				  file_detail(doc, name, kind, content, digest, 0));
	ioffice_engine_leave();
	SPI_finish();
	PG_RETURN_INT64(id);
}

/*
 * Lock the file's document and return it; the file must still be current.
 * A file of a document the actor may not see is unknown to them.
 */
static int64
current_file_document(int64 file, int64 actor)
{
	Datum		values[1];
	int64		doc;
	bool		current = false;

	doc = ioffice_require_file(file);
	check_may_change_files(doc, actor, true);

	/* read under the document's lock (fresh snapshot): a concurrent change may have won */
	values[0] = Int64GetDatum(file);
	ioffice_exec(&file_lookup, values, NULL, 1);
	ioffice_get_bool(0, 2, &current);
	if (!current)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("file %lld was already replaced or removed", (long long) file),
				 errhint("Act on the document's current files.")));
	return doc;
}

PG_FUNCTION_INFO_V1(ioffice_replace_file);
Datum
ioffice_replace_file(PG_FUNCTION_ARGS)
{
	int64		file;
	text	   *name;
	bytea	   *content;
	const char *kind;
	bytea	   *digest;
	int64		actor;
	int64		doc;
	int64		id;
	Datum		values[2];

	require_args(fcinfo, 3, "file, file name and content");
	file = PG_GETARG_INT64(0);
	name = PG_GETARG_TEXT_PP(1);
	content = PG_GETARG_BYTEA_PP(2);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	ioffice_engine_enter();
	actor = ioffice_resolve_actor(false);
	doc = current_file_document(file, actor);
	ioffice_check_file_name(name);
	kind = ioffice_check_file_content(name, content);

	values[0] = Int64GetDatum(file);
	ioffice_exec(&file_supersede, values, NULL, 0);
	values[1] = CStringGetTextDatum("file replaced before it was signed");
	ioffice_exec(&signatures_drop, values, NULL, 0);
	digest = ioffice_sha256(content);
	id = insert_file(doc, name, content, digest, kind, file, actor);
	ioffice_audit_in_chain(ioffice_document_chain(doc), actor, 0, "file", id, "replace", NULL, NULL,
				  file_detail(doc, name, kind, content, digest, file));
	ioffice_engine_leave();
	SPI_finish();
	PG_RETURN_INT64(id);
}

PG_FUNCTION_INFO_V1(ioffice_remove_file);
Datum
ioffice_remove_file(PG_FUNCTION_ARGS)
{
	int64		file;
	int64		actor;
	int64		doc;
	Datum		values[2];

	require_args(fcinfo, 1, "file");
	file = PG_GETARG_INT64(0);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	ioffice_engine_enter();
	actor = ioffice_resolve_actor(false);
	doc = current_file_document(file, actor);

	values[0] = Int64GetDatum(file);
	values[1] = Int64GetDatum(actor);
	ioffice_exec(&file_remove, values, NULL, 0);
	values[1] = CStringGetTextDatum("file removed before it was signed");
	ioffice_exec(&signatures_drop, values, NULL, 0);
	ioffice_audit_in_chain(ioffice_document_chain(doc), actor, 0, "file", file, "remove", NULL, NULL,
				  file_detail(doc, NULL, NULL, NULL, NULL, 0));
	ioffice_engine_leave();
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * The kinds the document system takes from the administrative-procedure
 * system (seed 003): doc, docx, xls, xlsx and pdf.
 */
bool
ioffice_kind_interconnectable(const char *kind)
{
	static const char *const kinds[] = {"doc", "docx", "xls", "xlsx", "pdf"};

	for (int i = 0; i < lengthof(kinds); i++)
		if (strcmp(kind, kinds[i]) == 0)
			return true;
	return false;
}

/* Does the column hold the same value in both rows?  Bytes compared, not pointers. */
static bool
column_unchanged(HeapTuple a, HeapTuple b, TupleDesc desc, const char *column)
{
	int			attnum = SPI_fnumber(desc, column);
	Form_pg_attribute att;
	bool		a_null,
				b_null;
	Datum		da,
				db;
	struct varlena *va,
			   *vb;

	if (attnum <= 0)
		elog(ERROR, "ioffice: table file has no column %s", column);
	att = TupleDescAttr(desc, attnum - 1);
	da = heap_getattr(a, attnum, desc, &a_null);
	db = heap_getattr(b, attnum, desc, &b_null);
	if (a_null || b_null)
		return a_null == b_null;
	/* an UPDATE that leaves the content alone keeps its TOAST pointer: no detoasting */
	if (datumIsEqual(da, db, att->attbyval, att->attlen))
		return true;
	if (att->attlen != -1)
		return false;
	va = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(da));
	vb = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(db));
	return VARSIZE_ANY_EXHDR(va) == VARSIZE_ANY_EXHDR(vb) &&
		memcmp(VARDATA_ANY(va), VARDATA_ANY(vb), VARSIZE_ANY_EXHDR(va)) == 0;
}

/* an int8 column of a row, 0 when NULL */
static int64
row_int8(HeapTuple row, TupleDesc desc, const char *column)
{
	bool		isnull;
	Datum		d = heap_getattr(row, SPI_fnumber(desc, column), desc, &isnull);

	return isnull ? 0 : DatumGetInt64(d);
}

/*
 * The signing worker's conversion of a Word or Excel file to PDF
 * (workers/convert_jobs.c) is the one change a frozen or final document's
 * files may still have: the PDF made from the exact bytes that were to be
 * signed becomes the version that is signed and issued.  Only that C code
 * sets ioffice_conversion_source (the file converted), and only around its
 * two statements: the INSERT of the PDF that names the file in
 * converted_from, and the UPDATE that marks the file superseded.  No SQL
 * can set it.
 */
static bool
is_conversion(TriggerData *trigdata, TupleDesc desc)
{
	char	   *kind;

	if (ioffice_conversion_source == 0)
		return false;
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		return row_int8(trigdata->tg_trigtuple, desc, "id") == ioffice_conversion_source;
	if (!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		return false;
	kind = SPI_getvalue(trigdata->tg_trigtuple, desc, SPI_fnumber(desc, "kind"));
	return row_int8(trigdata->tg_trigtuple, desc, "converted_from") == ioffice_conversion_source &&
		kind != NULL && strcmp(kind, "pdf") == 0;
}

/*
 * A recall accepted (sql/parts/99_recall.sql, answer_recall): the one change
 * a received document's files may have after it arrived, its bytes
 * destroyed (Decree 30 art. 18.4b; Appendix VI, III.8b).  Only this shape:
 * an UPDATE that empties the content and sets erased_at (once; the name,
 * hash, size and kind stay as the record of what was destroyed, and the
 * row may be marked removed), of a file of an incoming document already
 * marked recalled whose sender's recall was accepted in a row that only
 * the engine writes; or of a certified copy made here of such a document
 * (copy_of, a copy of a copy too), each link marked recalled: a copy has
 * the original's legal value (art. 26) and goes with it.  Nothing else
 * passes here: not another column, not a file of any other outgoing
 * document, not a document whose recall was refused or not answered.  A
 * schema still at 0.1 (no erased_at) has no such path.
 */
static IofficePlan recall_accepted = {
	NULL,
	"WITH RECURSIVE up(id, copy_of) AS ( "
	"    SELECT d.id, d.copy_of FROM ioffice.document d "
	"     WHERE d.id = $1 AND d.recalled_at IS NOT NULL "
	"    UNION "
	"    SELECT d.id, d.copy_of FROM ioffice.document d JOIN up ON d.id = up.copy_of "
	"     WHERE d.recalled_at IS NOT NULL) "
	"SELECT 1 FROM up "
	"  JOIN ioffice.document o ON o.id = up.id AND o.direction = 'incoming' "
	"  JOIN ioffice.document_recall r ON r.document_id = o.id "
	" WHERE r.direction = 'received' AND r.answer = 'accepted'",
	1, {INT8OID}
};

static bool
is_recall_erasure(TriggerData *trigdata, TupleDesc desc, int64 doc)
{
	int			erased = SPI_fnumber(desc, "erased_at");
	bool		old_null,
				new_null;
	bytea	   *content;
	Datum		values[1];
	static const char *const kept[] = {"document_id", "sha256", "size", "kind", "name",
	"replaces_id", "uploaded_by", "uploaded_at", "superseded_at", "converted_from"};

	if (!TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) || erased <= 0)
		return false;
	(void) heap_getattr(trigdata->tg_trigtuple, erased, desc, &old_null);
	(void) heap_getattr(trigdata->tg_newtuple, erased, desc, &new_null);
	if (!old_null || new_null)
		return false;
	content = DatumGetByteaPP(heap_getattr(trigdata->tg_newtuple, SPI_fnumber(desc, "content"),
										   desc, &new_null));
	if (new_null || VARSIZE_ANY_EXHDR(content) != 0)
		return false;
	for (int i = 0; i < lengthof(kept); i++)
		if (!column_unchanged(trigdata->tg_trigtuple, trigdata->tg_newtuple, desc, kept[i]))
			return false;
	values[0] = Int64GetDatum(doc);
	ioffice_exec(&recall_accepted, values, NULL, 1);
	return SPI_processed > 0;
}

/*
 * The signer's one exception to frozen files (workers/pdf_sign.c): a PDF
 * signature makes new bytes, which become the next version of the file it
 * signed, even after approval or issue.  Only when the signer's flag is set
 * (no SQL can set it), and only a version that provably is the signed file
 * plus an appended update: same document, a PDF, replacing the version
 * whose bytes it begins with.  Marking the signed version replaced is the
 * other write it makes (the fixed columns stay checked below).
 */
static void
check_signed_version(TriggerData *trigdata, TupleDesc desc, int64 doc)
{
	HeapTuple	row = trigdata->tg_trigtuple;
	bool		isnull;
	Datum		replaces;
	Datum		values[1];
	bytea	   *old;
	bytea	   *new;
	int64		old_doc = 0;

	if (!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		return;
	replaces = heap_getattr(row, SPI_fnumber(desc, "replaces_id"), desc, &isnull);
	if (isnull)
		elog(ERROR, "ioffice: a signed PDF must replace the version it signed");
	values[0] = replaces;
	ioffice_exec(&replaced_version, values, NULL, 1);
	if (SPI_processed != 1 || !ioffice_get_int64(0, 1, &old_doc) || old_doc != doc)
		elog(ERROR, "ioffice: a signed PDF must replace a version of the same document");
	old = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	new = DatumGetByteaPP(heap_getattr(row, SPI_fnumber(desc, "content"), desc, &isnull));
	if (VARSIZE_ANY_EXHDR(new) <= VARSIZE_ANY_EXHDR(old) ||
		memcmp(VARDATA_ANY(new), VARDATA_ANY(old), VARSIZE_ANY_EXHDR(old)) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("a signed PDF must begin with the bytes of the version it signed")));
}

/*
 * _file_frozen(): BEFORE INSERT, UPDATE or DELETE (row) and TRUNCATE
 * (statement) on table file.  Every change of a file row meets
 * check_files_open(), whoever makes it: the engine's effects and a role that
 * writes the table itself as much as attach(), replace_file() and
 * remove_file().  And in no state do a file's bytes change, nor the document
 * they belong to: a signature names the file row, so other bytes under the
 * same id would inherit signatures made on these (replace_file() makes a new
 * version instead; only the marks of a replacement or removal, and the
 * name, may change).  The file of an incoming document changes in no way
 * at all (refuse_incoming_change): only new files join it, until a recall
 * of it is accepted (is_recall_erasure).  A superuser
 * loading a dump brings the rows as they were.  The worker's PDF of a Word
 * file is let through (is_conversion).
 */
PG_FUNCTION_INFO_V1(ioffice_file_frozen);
Datum
ioffice_file_frozen(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = ioffice_trigger_data(fcinfo, "_file_frozen");
	TupleDesc	desc;
	HeapTuple	row;
	Datum		values[1];
	int64		doc = 0;
	bool		final = false;
	bool		frozen = false;
	bool		incoming = false;
	static const char *const fixed[] = {"document_id", "content", "sha256", "size", "kind"};

	if (TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
	{
		if (ioffice_restoring_dump())
			return PointerGetDatum(NULL);
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "ioffice: SPI_connect failed");
		ioffice_exec(&any_file_frozen, NULL, NULL, 1);
		if (SPI_processed > 0)
		{
			ioffice_get_int64(0, 1, &doc);
			ioffice_get_bool(0, 3, &final);
			ioffice_get_bool(0, 4, &frozen);
			ioffice_get_bool(0, 5, &incoming);
			check_files_open(doc, ioffice_get_text(0, 2), final, frozen, incoming);
			refuse_incoming_change(doc);
		}
		SPI_finish();
		return PointerGetDatum(NULL);
	}

	/* the row that goes ahead: the new one, or the one deleted */
	row = ioffice_trigger_row(trigdata);
	if (ioffice_restoring_dump())
		return PointerGetDatum(row);
	desc = trigdata->tg_relation->rd_att;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	/* the document it belongs to, or belonged to before an UPDATE */
	{
		bool		isnull;
		Datum		d = heap_getattr(trigdata->tg_trigtuple, SPI_fnumber(desc, "document_id"),
									 desc, &isnull);

		if (!isnull)
			doc = DatumGetInt64(d);
	}
	/* a recall accepted destroys the received bytes, and nothing else */
	if (is_recall_erasure(trigdata, desc, doc))
	{
		SPI_finish();
		return PointerGetDatum(row);
	}
	values[0] = Int64GetDatum(doc);
	ioffice_exec(&doc_files_state, values, NULL, 1);
	/* no such document: the foreign key says so */
	if (ioffice_signed_version_allowed)
		check_signed_version(trigdata, desc, doc);
	else if (SPI_processed > 0 && !is_conversion(trigdata, desc))
	{
		ioffice_get_bool(0, 3, &final);
		ioffice_get_bool(0, 5, &frozen);
		ioffice_get_bool(0, 6, &incoming);
		check_files_open(doc, ioffice_get_text(0, 1), final, frozen, incoming);
		if (incoming && !TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
			refuse_incoming_change(doc);
	}
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		for (int i = 0; i < lengthof(fixed); i++)
			if (!column_unchanged(trigdata->tg_trigtuple, trigdata->tg_newtuple, desc, fixed[i]))
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("the %s of file %s cannot change", fixed[i],
								SPI_getvalue(trigdata->tg_trigtuple, desc,
											 SPI_fnumber(desc, "id"))),
						 errdetail("Signatures name the file: other bytes under the same file would carry them."),
						 errhint("Use replace_file(), which keeps this version and adds a new one.")));
	}
	SPI_finish();
	return PointerGetDatum(row);
}

/*
 * The links of a document (văn bản liên quan) are part of what it says once
 * it is done: an issued document, or any in a final state, keeps the links
 * it had.  For link_documents() and for the trigger on table document_link.
 */
static IofficePlan doc_final_state = {
	NULL,
	"SELECT d.state, s.final "
	"  FROM ioffice.document d "
	"  JOIN ioffice.workflow_state s ON s.workflow = d.workflow AND s.state = d.state "
	" WHERE d.id = $1",
	1, {INT8OID}
};

static IofficePlan any_link_final = {
	NULL,
	"SELECT d.id, d.state "
	"  FROM ioffice.document d "
	"  JOIN ioffice.workflow_state s ON s.workflow = d.workflow AND s.state = d.state "
	" WHERE s.final AND EXISTS (SELECT 1 FROM ioffice.document_link l WHERE l.document_id = d.id) "
	" ORDER BY d.id LIMIT 1",
	0, {InvalidOid}
};

static void
refuse_final_links(int64 doc, const char *state)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("document %lld is %s: its related documents can no longer change",
					(long long) doc, state),
			 errdetail("A document in a final state keeps the links it was issued or closed with."),
			 errhint("Link the related document from a new document instead.")));
}

/* the document of a link row (old or new), refused when it is in a final state */
static void
check_links_open(HeapTuple tuple, TupleDesc desc)
{
	bool		isnull;
	Datum		d = heap_getattr(tuple, SPI_fnumber(desc, "document_id"), desc, &isnull);
	Datum		values[1];
	bool		final = false;

	if (isnull)
		return;
	values[0] = d;
	ioffice_exec(&doc_final_state, values, NULL, 1);
	/* no such document: the foreign key says so */
	if (SPI_processed > 0 && ioffice_get_bool(0, 2, &final) && final)
		refuse_final_links(DatumGetInt64(d), ioffice_get_text(0, 1));
}

/*
 * _link_frozen(): BEFORE INSERT, UPDATE or DELETE (row) and TRUNCATE
 * (statement) on table document_link: whoever writes it, link_documents(),
 * the engine or a role with the privilege, adds or removes no link of a
 * document in a final state.  A superuser loading a dump brings the rows
 * as they were.
 */
PG_FUNCTION_INFO_V1(ioffice_link_frozen);
Datum
ioffice_link_frozen(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = ioffice_trigger_data(fcinfo, "_link_frozen");
	HeapTuple	row = NULL;

	if (!TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
		row = ioffice_trigger_row(trigdata);
	if (ioffice_restoring_dump())
		return PointerGetDatum(row);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	if (TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
	{
		ioffice_exec(&any_link_final, NULL, NULL, 1);
		if (SPI_processed > 0)
		{
			int64		doc = 0;

			ioffice_get_int64(0, 1, &doc);
			refuse_final_links(doc, ioffice_get_text(0, 2));
		}
	}
	else
	{
		TupleDesc	desc = trigdata->tg_relation->rd_att;

		/* the row as it was (UPDATE, DELETE), and as it will be (INSERT, UPDATE) */
		if (!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
			check_links_open(trigdata->tg_trigtuple, desc);
		if (!TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
			check_links_open(row, desc);
	}
	SPI_finish();
	return PointerGetDatum(row);
}
