/*-------------------------------------------------------------------------
 * import_issued.c
 *	  import_issued(payload): a result issued by the external TTHC system
 *	  (seed 003, step 4: "Gửi văn bản") enters the outgoing register.
 *
 * The TTHC system signed the result itself; here it gets its number from
 * the register (the same numbering as act()'s issue), its files and the
 * file of the dossier's processing trail, and is recorded as issued.
 *
 * The call is idempotent on the payload's external_id: a row of
 * import_issued keyed by it is inserted first, with ON CONFLICT DO NOTHING.
 * A concurrent call with the same id waits on the unique index until the
 * first commits, then finds the row and answers what the first created; if
 * the first rolls back, the second goes ahead.  So two calls never both
 * create a document.  The same id with another payload is refused (23505).
 *
 * The whole payload is checked before anything is written: a malformed one
 * is refused with 22023 naming the field.
 *
 * Its recipients (payload.recipients, as create_outgoing() takes them) are
 * served as an issue serves them: an agency of this database receives it
 * (deliver_internal), an external agency's code gets its edXML package
 * queued to the axis by the trigger on the issued state
 * (_edxml_queue_issued, sql/parts/99_edxml_axis.sql), once.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/base64.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"

#include "workflow.h"

typedef struct ImportFile
{
	text	   *name;
	bytea	   *content;
	const char *kind;
} ImportFile;

typedef struct ImportPayload
{
	char	   *external_id;
	char	   *agency_code;
	char	   *doc_type;
	char	   *abstract;
	char	   *signer;
	int64		register_id;
	int32		number;			/* a number taken with take_number(), or 0 */
	char	   *issued_on;
	char	   *dossier_code;
	List	   *files;			/* of ImportFile * */
	ImportFile *trail;
	Jsonb	   *recipients;		/* an array of strings, or NULL */
} ImportPayload;

static const char *const known_keys[] = {
	"external_id", "agency_code", "doc_type", "abstract", "signer", "register", "number",
	"issued_on", "dossier_code", "files", "trail", "recipients"
};

static void
bad(const char *field, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("payload.%s %s", field, what)));
}

static char *
get_string(Jsonb *payload, const char *key, bool required, int max_chars)
{
	JsonbValue *v = ioffice_jsonb_get(payload, key);
	char	   *s;

	if (v == NULL || v->type == jbvNull)
	{
		if (required)
			bad(key, "is missing");
		return NULL;
	}
	if (v->type != jbvString)
		bad(key, "must be a string");
	s = pnstrdup(v->val.string.val, v->val.string.len);
	if (strspn(s, " ") == strlen(s))
		bad(key, "is empty");
	if (pg_mbstrlen(s) > max_chars)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("payload.%s is longer than %d characters", key, max_chars)));
	return s;
}

static void
field_context(void *arg)
{
	errcontext("payload.%s", (const char *) arg);
}

/*
 * Base64 content, as encode() writes it or any client does: line breaks
 * (MIME style) and blanks are not part of the data.  Empty content is
 * refused: a file of nothing is a mistake of the sender.
 */
static bytea *
decode_content(JsonbValue *content, const char *field)
{
	char	   *clean = palloc(content->val.string.len + 1);
	int			len = 0;
	int			dlen;
	int			n;
	int			i;
	bytea	   *bytes;

	for (i = 0; i < content->val.string.len; i++)
	{
		char		c = content->val.string.val[i];

		if (c != '\n' && c != '\r' && c != ' ' && c != '\t')
			clean[len++] = c;
	}
	dlen = pg_b64_dec_len(len);
	bytes = palloc(VARHDRSZ + dlen + 1);
	n = pg_b64_decode(clean, len, VARDATA(bytes), dlen);
	if (n < 0)
		bad(psprintf("%s.content", field), "is not valid base64");
	if (n == 0)
		bad(psprintf("%s.content", field), "is empty");
	SET_VARSIZE(bytes, VARHDRSZ + n);
	return bytes;
}

/* the checks of attach(), with the field named in the error's context */
static void
check_as_attach(ImportFile *f, const char *field)
{
	ErrorContextCallback cb;

	cb.callback = field_context;
	cb.arg = (void *) field;
	cb.previous = error_context_stack;
	error_context_stack = &cb;
	ioffice_check_file_name(f->name);
	f->kind = ioffice_check_file_content(f->name, f->content);
	error_context_stack = cb.previous;
}

/* {name, content (base64)}: checked like attach() checks a file */
static ImportFile *
read_file(JsonbValue *v, const char *field, bool interconnection)
{
	ImportFile *f = palloc0(sizeof(ImportFile));
	JsonbValue *name;
	JsonbValue *content;

	if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
		bad(field, "must be an object {name, content}");
	name = getKeyJsonValueFromContainer(v->val.binary.data, "name", 4, NULL);
	content = getKeyJsonValueFromContainer(v->val.binary.data, "content", 7, NULL);
	if (name == NULL)
		bad(psprintf("%s.name", field), "is missing");
	if (name->type != jbvString)
		bad(psprintf("%s.name", field), "must be a string");
	if (content == NULL)
		bad(psprintf("%s.content", field), "is missing");
	if (content->type != jbvString)
		bad(psprintf("%s.content", field), "must be a base64 string");

	f->content = decode_content(content, field);
	f->name = cstring_to_text_with_len(name->val.string.val, name->val.string.len);
	check_as_attach(f, field);
	if (interconnection && !ioffice_kind_interconnectable(f->kind))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("payload.%s is %s: only doc, docx, xls, xlsx and pdf are accepted",
						field, f->kind)));
	return f;
}

/* A payload is an object of the known fields only: a misspelt one is refused, not ignored. */
static void
check_fields(Jsonb *payload)
{
	ListCell   *lc;

	if (!JB_ROOT_IS_OBJECT(payload))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("payload must be a JSON object")));
	foreach(lc, ioffice_jsonb_keys(payload))
	{
		int			i;
		bool		known = false;

		for (i = 0; i < lengthof(known_keys); i++)
			known |= strcmp(known_keys[i], lfirst(lc)) == 0;
		if (!known)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown field payload.%s", (char *) lfirst(lc)),
					 errhint("Fields: external_id, agency_code, doc_type, abstract, signer, register, number, issued_on, dossier_code, files, trail, recipients.")));
	}
}

/* payload.files: 1 to 50 files of the kinds interconnection accepts */
static List *
read_files(Jsonb *payload)
{
	JsonbValue *v = ioffice_jsonb_get(payload, "files");
	JsonbIterator *it;
	JsonbValue	elem;
	JsonbIteratorToken tok;
	List	   *files = NIL;
	int			i = 0;

	if (v == NULL || v->type == jbvNull)
		bad("files", "is missing");
	if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
		bad("files", "must be an array of {name, content}");
	/* counted before any content is decoded */
	if (JsonContainerSize(v->val.binary.data) > 50)
		bad("files", "has more than 50 files");
	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &elem, true)) != WJB_DONE)
	{
		if (tok != WJB_ELEM)
			continue;
		files = lappend(files, read_file(&elem, psprintf("files[%d]", i), true));
		i++;
	}
	if (i == 0)
		bad("files", "is empty: the result needs its signed file");
	return files;
}

/*
 * payload.recipients: where the result goes, as create_outgoing() takes
 * them (agency codes or places, 1 to 500 characters each); optional.
 */
static Jsonb *
read_recipients(Jsonb *payload)
{
	JsonbValue *v = ioffice_jsonb_get(payload, "recipients");
	JsonbIterator *it;
	JsonbValue	elem;
	JsonbIteratorToken tok;

	if (v == NULL || v->type == jbvNull)
		return NULL;
	if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
		bad("recipients", "must be an array of agency codes or places");
	if (JsonContainerSize(v->val.binary.data) > 200)
		bad("recipients", "has more than 200 recipients");
	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &elem, true)) != WJB_DONE)
	{
		int			n;

		if (tok != WJB_ELEM)
			continue;
		if (elem.type != jbvString)
			bad("recipients", "must be an array of agency codes or places");
		n = pg_mbstrlen_with_len(elem.val.string.val, elem.val.string.len);
		if (n < 1 || n > 500)
			bad("recipients", "holds a recipient that is not 1 to 500 characters");
	}
	return JsonbValueToJsonb(v);
}

static void
read_payload(Jsonb *payload, ImportPayload *p)
{
	JsonbValue *v;

	check_fields(payload);
	p->external_id = get_string(payload, "external_id", true, 200);
	p->agency_code = get_string(payload, "agency_code", true, 13);
	p->doc_type = get_string(payload, "doc_type", true, 20);
	p->abstract = get_string(payload, "abstract", true, 500);
	p->signer = get_string(payload, "signer", true, 63);
	p->issued_on = get_string(payload, "issued_on", false, 10);
	p->dossier_code = get_string(payload, "dossier_code", false, 40);
	if (p->issued_on && !ioffice_parse_iso_date(p->issued_on, strlen(p->issued_on), NULL))
		bad("issued_on", "must be a date written YYYY-MM-DD");

	v = ioffice_jsonb_get(payload, "register");
	if (v != NULL && v->type != jbvNull)
	{
		if (v->type != jbvNumeric || !ioffice_numeric_to_int64(v->val.numeric, &p->register_id) ||
			p->register_id <= 0)
			bad("register", "must be a register id");
	}
	/* the number the TTHC system took for this result with take_number() */
	v = ioffice_jsonb_get(payload, "number");
	if (v != NULL && v->type != jbvNull)
	{
		int64		n = 0;

		if (v->type != jbvNumeric || !ioffice_numeric_to_int64(v->val.numeric, &n) ||
			n < 1 || n > PG_INT32_MAX)
			bad("number", "must be a register number taken with take_number");
		if (p->register_id == 0)
			bad("register", "is missing: payload.number is a number of a register");
		p->number = (int32) n;
	}

	p->files = read_files(payload);
	v = ioffice_jsonb_get(payload, "trail");
	if (v == NULL || v->type == jbvNull)
		bad("trail", "is missing");
	p->trail = read_file(v, "trail", false);
	p->recipients = read_recipients(payload);
}

static IofficePlan agency_by_code = {
	NULL, "SELECT id FROM ioffice.unit WHERE code = $1 AND kind = 'agency'", 1, {TEXTOID}
};

static IofficePlan claim = {
	NULL,
	"INSERT INTO ioffice.import_issued (external_id, payload_sha256, imported_by) "
	"VALUES ($1, $2, $3) ON CONFLICT (external_id) DO NOTHING RETURNING 1",
	3, {TEXTOID, BYTEAOID, INT8OID}
};

static IofficePlan claimed = {
	NULL,
	"SELECT payload_sha256 = $2, document_id, number, symbol "
	"  FROM ioffice.import_issued WHERE external_id = $1",
	2, {TEXTOID, BYTEAOID}
};

static IofficePlan import_insert = {
	NULL,
	"INSERT INTO ioffice.document (workflow, direction, doc_type, abstract, state, agency_id, "
	"                              drafting_unit_id, drafter_id, signer_id, comment, recipients) "
	"VALUES ('dossier_result', 'outgoing', $1, $2, 'awaiting_issue', $3, $3, $4, $5, $6, "
	/* an agency of this database kept with its id, a place as text (create_outgoing) */
	"        (SELECT coalesce(jsonb_agg(coalesce( "
	"                    (SELECT jsonb_build_object('agency', u.id, 'code', u.code, 'name', u.name) "
	"                       FROM ioffice.unit u WHERE u.code = e.v AND u.kind = 'agency'), "
	"                    jsonb_build_object('place', e.v)) ORDER BY e.n), '[]') "
	"           FROM jsonb_array_elements_text(coalesce($7, '[]')) WITH ORDINALITY e(v, n))) "
	"RETURNING id",
	7, {TEXTOID, TEXTOID, INT8OID, INT8OID, INT8OID, TEXTOID, JSONBOID}
};

static IofficePlan import_issued_state = {
	NULL, "UPDATE ioffice.document SET state = 'issued', updated_at = now() WHERE id = $1",
	1, {INT8OID}
};

static IofficePlan claim_done = {
	NULL,
	"UPDATE ioffice.import_issued SET document_id = $2, number = $3, symbol = $4 "
	" WHERE external_id = $1",
	4, {TEXTOID, INT8OID, INT4OID, TEXTOID}
};

static int64
agency_of_code(const char *code)
{
	Datum		values[1];
	int64		id = 0;

	values[0] = CStringGetTextDatum(code);
	ioffice_exec(&agency_by_code, values, NULL, 1);
	if (!ioffice_get_int64(0, 1, &id))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("unknown agency \"%s\"", code)));
	return id;
}

/*
 * What one import_issued() call knows, passed to each of its steps: the
 * checked payload, the people and agency it names, and what it made.
 */
typedef struct ImportState
{
	ReturnSetInfo *rsinfo;
	Jsonb	   *payload;
	ImportPayload p;
	int64		actor;			/* the clerk the application acts for */
	int64		agency;
	int64		signer;
	int64		doc;
	IssueRequest req;			/* the number and symbol it was issued under */
} ImportState;

/* a trusted application hands results over, for a clerk it names */
static void
require_application(void)
{
	Oid			app_role = get_role_oid("ioffice_app", true);

	if (!OidIsValid(app_role) || !is_member_of_role(GetOuterUserId(), app_role))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only an application (member of ioffice_app) may import issued results")));
}

/* a leader (or deputy) of a unit of the agency */
static IofficePlan leader_of_agency = {
	NULL,
	"SELECT 1 FROM ioffice.person_role r JOIN ioffice.unit u ON u.id = r.unit_id "
	" WHERE r.person_id = $1 AND r.role IN ('leader', 'deputy') AND u.agency_id = $2 LIMIT 1",
	2, {INT8OID, INT8OID}
};

/*
 * The clerk acting, of the named agency; the signer, a leader of that agency
 * (not a name the payload makes up, nor the clerk); a known document type.
 */
static void
resolve_parties(ImportState *st)
{
	Datum		values[2];

	st->actor = ioffice_resolve_actor(false);
	st->agency = agency_of_code(st->p.agency_code);
	if (!ioffice_person_is_clerk_of(st->actor, st->agency))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only a clerk of agency %s may register its issued results",
						st->p.agency_code)));
	st->signer = ioffice_person_id(st->p.signer);
	values[0] = Int64GetDatum(st->signer);
	values[1] = Int64GetDatum(st->agency);
	ioffice_exec(&leader_of_agency, values, NULL, 1);
	if (SPI_processed == 0 || st->signer == st->actor)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("payload.signer \"%s\" is not a leader of agency %s",
						st->p.signer, st->p.agency_code),
				 errdetail("The signer in the register (Người ký) is the leader who signed the result, never the clerk who registers it.")));
	ioffice_check_doc_type(st->p.doc_type);
}

/* one row of the result: (document, number, symbol) */
static void
put_result(ImportState *st, int64 doc, int32 number, const char *symbol)
{
	Datum		out[3];
	bool		out_nulls[3] = {false, false, false};

	out[0] = Int64GetDatum(doc);
	out[1] = Int32GetDatum(number);
	out[2] = CStringGetTextDatum(symbol);
	tuplestore_putvalues(st->rsinfo->setResult, st->rsinfo->setDesc, out, out_nulls);
}

/*
 * Claim the external id for this payload (its SHA-256).  A concurrent claim
 * of the same id waits here until the first commits or rolls back.  Returns
 * false when the id was imported before: the same payload is answered with
 * what that import created, another payload is refused.
 */
static bool
claim_external_id(ImportState *st)
{
	Datum		values[3];
	bytea	   *hash;
	bool		same = false;
	int32		number = 0;

	hash = ioffice_sha256((bytea *) cstring_to_text(JsonbToCString(NULL, &st->payload->root,
																	VARSIZE(st->payload))));
	values[0] = CStringGetTextDatum(st->p.external_id);
	values[1] = PointerGetDatum(hash);
	values[2] = Int64GetDatum(st->actor);
	ioffice_exec(&claim, values, NULL, 1);
	if (SPI_processed > 0)
		return true;

	ioffice_exec(&claimed, values, NULL, 1);
	ioffice_get_bool(0, 1, &same);
	if (!same)
		ereport(ERROR,
				(errcode(ERRCODE_UNIQUE_VIOLATION),
				 errmsg("external id \"%s\" was already imported with another payload",
						st->p.external_id)));
	/* a row edited by hand may lack its document: say so, do not guess */
	if (!ioffice_get_int64(0, 2, &st->doc) || !ioffice_get_int32(0, 3, &number) ||
		ioffice_get_text(0, 4) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("import of external id \"%s\" is recorded without its document, number or symbol",
						st->p.external_id),
				 errhint("Check the row of ioffice.import_issued for this external id.")));
	put_result(st, st->doc, number, ioffice_get_text(0, 4));
	return false;
}

/* The document, awaiting issue, with its files and the dossier's trail. */
static void
create_document(ImportState *st)
{
	Datum		values[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	JsonbBuild *detail;
	ListCell   *lc;

	values[0] = CStringGetTextDatum(st->p.doc_type);
	values[1] = CStringGetTextDatum(st->p.abstract);
	values[2] = Int64GetDatum(st->agency);
	values[3] = Int64GetDatum(st->actor);
	values[4] = Int64GetDatum(st->signer);
	values[5] = st->p.dossier_code ? CStringGetTextDatum(psprintf("Hồ sơ %s", st->p.dossier_code))
		: (Datum) 0;
	nulls[5] = st->p.dossier_code ? ' ' : 'n';
	values[6] = st->p.recipients ? JsonbPGetDatum(st->p.recipients) : (Datum) 0;
	nulls[6] = st->p.recipients ? ' ' : 'n';
	ioffice_exec(&import_insert, values, nulls, 1);
	ioffice_get_int64(0, 1, &st->doc);

	detail = ioffice_jsonb_begin();
	ioffice_jsonb_add_text(detail, "external_id", st->p.external_id);
	if (st->p.dossier_code)
		ioffice_jsonb_add_text(detail, "dossier", st->p.dossier_code);
	ioffice_audit(st->actor, 0, "document", st->doc, "import", NULL, "awaiting_issue",
				  ioffice_jsonb_end(detail));
	foreach(lc, st->p.files)
	{
		ImportFile *f = lfirst(lc);

		ioffice_add_document_file(st->doc, f->name, f->content, f->kind, st->actor, "attach");
	}
	ioffice_add_document_file(st->doc, st->p.trail->name, st->p.trail->content,
							  st->p.trail->kind, st->actor, "attach_trail");
}

/*
 * The document's number from the register, as act()'s issue takes it; the
 * document issued (its external recipients' packages queued by the trigger
 * on the state, as for any issue) and delivered to the agencies of this
 * database among its recipients (the issue's effect deliver_internal); the
 * claim completed with what it got.
 */
static void
issue_document(ImportState *st)
{
	IssueRequest *req = &st->req;
	Datum		values[4];
	JsonbBuild *detail = ioffice_jsonb_begin();
	ActContext	ctx;

	ioffice_jsonb_add_text(detail, "external_id", st->p.external_id);
	req->doc = st->doc;
	req->actor = st->actor;
	req->agency = st->agency;
	req->doc_type = st->p.doc_type;
	req->confidentiality = "normal";
	req->drafting_unit = st->agency;
	req->given_register = st->p.register_id;
	req->issued_on = st->p.issued_on;
	req->detail = detail;
	/* a number the TTHC system took: the result accounts for it */
	if (st->p.number != 0)
		ioffice_issue_taken_number(req, st->p.number);
	else
		ioffice_issue_number(req);
	values[0] = Int64GetDatum(st->doc);
	ioffice_exec(&import_issued_state, values, NULL, 0);
	if (st->p.recipients != NULL)
	{
		memset(&ctx, 0, sizeof(ctx));
		ctx.doc = st->doc;
		ctx.actor = st->actor;
		ctx.detail = detail;
		ioffice_deliver_internal(&ctx);
	}
	ioffice_audit(st->actor, 0, "document", st->doc, "issue", "awaiting_issue", "issued",
				  ioffice_jsonb_end(detail));

	values[0] = CStringGetTextDatum(st->p.external_id);
	values[1] = Int64GetDatum(st->doc);
	values[2] = Int32GetDatum(req->number);
	values[3] = CStringGetTextDatum(req->symbol);
	ioffice_exec(&claim_done, values, NULL, 0);
}

PG_FUNCTION_INFO_V1(ioffice_import_issued);
Datum
ioffice_import_issued(PG_FUNCTION_ARGS)
{
	ImportState st;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("import_issued needs a payload")));
	memset(&st, 0, sizeof(st));
	st.rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	st.payload = PG_GETARG_JSONB_P(0);
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);

	require_application();
	read_payload(st.payload, &st.p);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	ioffice_engine_enter();
	resolve_parties(&st);
	if (claim_external_id(&st))
	{
		create_document(&st);
		issue_document(&st);
		put_result(&st, st.doc, st.req.number, st.req.symbol);
	}
	ioffice_engine_leave();
	SPI_finish();
	return (Datum) 0;
}
