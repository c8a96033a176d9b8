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
	char	   *issued_on;
	char	   *dossier_code;
	List	   *files;			/* of ImportFile * */
	ImportFile *trail;
} ImportPayload;

static const char *const known_keys[] = {
	"external_id", "agency_code", "doc_type", "abstract", "signer", "register", "issued_on",
	"dossier_code", "files", "trail"
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

/* {name, content (base64)}: checked like attach() checks a file */
static ImportFile *
read_file(JsonbValue *v, const char *field, bool interconnection)
{
	ImportFile *f = palloc0(sizeof(ImportFile));
	JsonbValue *name;
	JsonbValue *content;
	int			dlen;
	bytea	   *bytes;
	int			n;

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

	/* line breaks (MIME style, as encode() writes them) are not part of the data */
	{
		char	   *clean = palloc(content->val.string.len + 1);
		int			len = 0;
		int			i;

		for (i = 0; i < content->val.string.len; i++)
		{
			char		c = content->val.string.val[i];

			if (c != '\n' && c != '\r' && c != ' ' && c != '\t')
				clean[len++] = c;
		}
		dlen = pg_b64_dec_len(len);
		bytes = palloc(VARHDRSZ + dlen + 1);
		n = pg_b64_decode(clean, len, VARDATA(bytes), dlen);
	}
	if (n < 0)
		bad(psprintf("%s.content", field), "is not valid base64");
	if (n == 0)
		bad(psprintf("%s.content", field), "is empty");
	SET_VARSIZE(bytes, VARHDRSZ + n);
	f->name = cstring_to_text_with_len(name->val.string.val, name->val.string.len);
	f->content = bytes;

	/* the checks of attach(), with the field named in the error's context */
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
	if (interconnection && !ioffice_kind_interconnectable(f->kind))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("payload.%s is %s: only doc, docx, xls, xlsx and pdf are accepted",
						field, f->kind)));
	return f;
}

static void
read_payload(Jsonb *payload, ImportPayload *p)
{
	List	   *keys;
	ListCell   *lc;
	JsonbValue *v;

	if (!JB_ROOT_IS_OBJECT(payload))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("payload must be a JSON object")));
	keys = ioffice_jsonb_keys(payload);
	foreach(lc, keys)
	{
		int			i;
		bool		known = false;

		for (i = 0; i < lengthof(known_keys); i++)
			known |= strcmp(known_keys[i], lfirst(lc)) == 0;
		if (!known)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown field payload.%s", (char *) lfirst(lc)),
					 errhint("Fields: external_id, agency_code, doc_type, abstract, signer, register, issued_on, dossier_code, files, trail.")));
	}

	p->external_id = get_string(payload, "external_id", true, 200);
	p->agency_code = get_string(payload, "agency_code", true, 13);
	p->doc_type = get_string(payload, "doc_type", true, 20);
	p->abstract = get_string(payload, "abstract", true, 500);
	p->signer = get_string(payload, "signer", true, 63);
	p->issued_on = get_string(payload, "issued_on", false, 10);
	p->dossier_code = get_string(payload, "dossier_code", false, 40);
	if (p->issued_on && !ioffice_valid_iso_date(p->issued_on, strlen(p->issued_on)))
		bad("issued_on", "must be a date written YYYY-MM-DD");

	v = ioffice_jsonb_get(payload, "register");
	if (v != NULL && v->type != jbvNull)
	{
		if (v->type != jbvNumeric || !ioffice_numeric_to_int64(v->val.numeric, &p->register_id) ||
			p->register_id <= 0)
			bad("register", "must be a register id");
	}

	v = ioffice_jsonb_get(payload, "files");
	if (v == NULL || v->type == jbvNull)
		bad("files", "is missing");
	if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
		bad("files", "must be an array of {name, content}");
	{
		JsonbIterator *it = JsonbIteratorInit(v->val.binary.data);
		JsonbValue	elem;
		JsonbIteratorToken tok;
		int			i = 0;

		/* counted before any content is decoded */
		if (JsonContainerSize(v->val.binary.data) > 50)
			bad("files", "has more than 50 files");
		while ((tok = JsonbIteratorNext(&it, &elem, true)) != WJB_DONE)
		{
			if (tok != WJB_ELEM)
				continue;
			p->files = lappend(p->files, read_file(&elem, psprintf("files[%d]", i), true));
			i++;
		}
		if (i == 0)
			bad("files", "is empty: the result needs its signed file");
	}

	v = ioffice_jsonb_get(payload, "trail");
	if (v == NULL || v->type == jbvNull)
		bad("trail", "is missing");
	p->trail = read_file(v, "trail", false);
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
	"                              drafting_unit_id, drafter_id, signer_id, comment) "
	"VALUES ('dossier_result', 'outgoing', $1, $2, 'awaiting_issue', $3, $3, $4, $5, $6) "
	"RETURNING id",
	6, {TEXTOID, TEXTOID, INT8OID, INT8OID, INT8OID, TEXTOID}
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

PG_FUNCTION_INFO_V1(ioffice_import_issued);
Datum
ioffice_import_issued(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Jsonb	   *payload;
	ImportPayload p;
	int64		actor;
	int64		agency;
	int64		signer;
	bytea	   *hash;
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	Datum		out[3];
	bool		out_nulls[3] = {false, false, false};
	int64		doc = 0;
	Oid			app_role;
	ListCell   *lc;
	IssueRequest req;
	JsonbBuild *detail;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("import_issued needs a payload")));
	payload = PG_GETARG_JSONB_P(0);
	memset(&p, 0, sizeof(p));
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);

	/* a trusted application hands results over, for a clerk it names */
	app_role = get_role_oid("ioffice_app", true);
	if (!OidIsValid(app_role) || !is_member_of_role(GetOuterUserId(), app_role))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only an application (member of ioffice_app) may import issued results")));

	read_payload(payload, &p);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	ioffice_engine_enter();
	actor = ioffice_resolve_actor(false);
	agency = agency_of_code(p.agency_code);
	if (!ioffice_person_is_clerk_of(actor, agency))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only a clerk of agency %s may register its issued results", p.agency_code)));
	signer = ioffice_person_id(p.signer);
	ioffice_check_doc_type(p.doc_type);

	/* claim the external id; a concurrent claim of the same id waits here */
	hash = ioffice_sha256((bytea *) cstring_to_text(JsonbToCString(NULL, &payload->root,
																	VARSIZE(payload))));
	values[0] = CStringGetTextDatum(p.external_id);
	values[1] = PointerGetDatum(hash);
	values[2] = Int64GetDatum(actor);
	ioffice_exec(&claim, values, NULL, 1);
	if (SPI_processed == 0)
	{
		bool		same = false;
		int32		number = 0;

		ioffice_exec(&claimed, values, NULL, 1);
		ioffice_get_bool(0, 1, &same);
		if (!same)
			ereport(ERROR,
					(errcode(ERRCODE_UNIQUE_VIOLATION),
					 errmsg("external id \"%s\" was already imported with another payload",
							p.external_id)));
		/* a row edited by hand may lack its document: say so, do not guess */
		if (!ioffice_get_int64(0, 2, &doc) || !ioffice_get_int32(0, 3, &number) ||
			ioffice_get_text(0, 4) == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("import of external id \"%s\" is recorded without its document, number or symbol",
							p.external_id),
					 errhint("Check the row of ioffice.import_issued for this external id.")));
		out[0] = Int64GetDatum(doc);
		out[1] = Int32GetDatum(number);
		out[2] = CStringGetTextDatum(ioffice_get_text(0, 4));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, out, out_nulls);
		ioffice_engine_leave();
		SPI_finish();
		return (Datum) 0;
	}

	values[0] = CStringGetTextDatum(p.doc_type);
	values[1] = CStringGetTextDatum(p.abstract);
	values[2] = Int64GetDatum(agency);
	values[3] = Int64GetDatum(actor);
	values[4] = Int64GetDatum(signer);
	values[5] = p.dossier_code ? CStringGetTextDatum(psprintf("Hồ sơ %s", p.dossier_code)) : (Datum) 0;
	nulls[5] = p.dossier_code ? ' ' : 'n';
	ioffice_exec(&import_insert, values, nulls, 1);
	ioffice_get_int64(0, 1, &doc);

	detail = ioffice_jsonb_begin();
	ioffice_jsonb_add_text(detail, "external_id", p.external_id);
	if (p.dossier_code)
		ioffice_jsonb_add_text(detail, "dossier", p.dossier_code);
	ioffice_audit(actor, 0, "document", doc, "import", NULL, "awaiting_issue",
				  ioffice_jsonb_end(detail));
	foreach(lc, p.files)
	{
		ImportFile *f = lfirst(lc);

		ioffice_add_document_file(doc, f->name, f->content, f->kind, actor, "attach");
	}
	ioffice_add_document_file(doc, p.trail->name, p.trail->content, p.trail->kind, actor,
							  "attach_trail");

	detail = ioffice_jsonb_begin();
	ioffice_jsonb_add_text(detail, "external_id", p.external_id);
	memset(&req, 0, sizeof(req));
	req.doc = doc;
	req.actor = actor;
	req.agency = agency;
	req.doc_type = p.doc_type;
	req.confidentiality = "normal";
	req.drafting_unit = agency;
	req.given_register = p.register_id;
	req.issued_on = p.issued_on;
	req.detail = detail;
	ioffice_issue_number(&req);
	values[0] = Int64GetDatum(doc);
	ioffice_exec(&import_issued_state, values, NULL, 0);
	ioffice_audit(actor, 0, "document", doc, "issue", "awaiting_issue", "issued",
				  ioffice_jsonb_end(detail));

	values[0] = CStringGetTextDatum(p.external_id);
	values[1] = Int64GetDatum(doc);
	values[2] = Int32GetDatum(req.number);
	values[3] = CStringGetTextDatum(req.symbol);
	ioffice_exec(&claim_done, values, NULL, 0);

	out[0] = Int64GetDatum(doc);
	out[1] = Int32GetDatum(req.number);
	out[2] = CStringGetTextDatum(req.symbol);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, out, out_nulls);
	ioffice_engine_leave();
	SPI_finish();
	return (Datum) 0;
}
