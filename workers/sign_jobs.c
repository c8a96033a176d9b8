/*-------------------------------------------------------------------------
 * sign_jobs.c
 *	  One batch of the worker: take pending signature jobs, sign, record.
 *
 * Personal jobs are signed with the signer's current certificate, the
 * organisation's with the seal certificate of the document's agency.  A job
 * that cannot be signed (no certificate, an expired one, a key file that is
 * missing or readable by others) is marked failed with the reason, visible
 * to the signer, and the batch goes on.
 *
 * The signer works from the SHA-256 the file row holds (computed by
 * attach()): the content is not read.  A batch is signed and recorded in
 * one subtransaction with one UPDATE for all its jobs and its audit records
 * written per document chain; only when that raises an error is the batch
 * done again job by job, each in a subtransaction of its own, so that one
 * bad job never blocks the others.  Everything is in the batch's
 * transaction: a crash loses nothing and signs nothing twice.  A job whose
 * file is a Word or Excel file is left to the conversion (convert_jobs.c),
 * which moves it to the PDF it makes: the next batch signs that.  A
 * personal job whose signer's usable certificates have no key file is left
 * to the signer's own tool (token_signing.c), or to their remote signing
 * service when they have a credential with one (remote_signing.c).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "convert.h"
#include "ioffice.h"
#include "worker.h"


typedef struct SignJob
{
	int64		id;
	int64		document;
	int64		file;
	char	   *kind;
	int64		cert;			/* 0: none */
	char	   *pem;
	char	   *key_file;
	char	   *not_usable;		/* why the certificate cannot sign now, or NULL */
	bytea	   *sha256;			/* of the file's content; NULL: the file is gone */
	bool		pdf;			/* a PDF: signed inside it (pdf_sign.c) */
	int64		signer;
	char	   *signer_name;	/* the PDF signature's /Name */
	IofficePdfLook look;		/* its image and where it goes */
	/* the outcome */
	bool		ok;
	char	   *reason;
	bytea	   *cms;
	int64		signed_file;	/* the signed PDF, a new version; 0: none */
	char	   *stamp;			/* what the issue stamp wrote, or NULL */
} SignJob;

/*
 * The batch: lock the next pending ids first (a partial index finds them),
 * then look up certificates for those jobs only.  A signer's certificate
 * that can sign now comes first, so that a renewal registered before its
 * validity starts, or one without a key file, does not shadow the current
 * one; when none can, the latest one says why.
 */
static IofficePlan jobs_plan = {
	NULL,
	"WITH next AS ("
	"  SELECT s.id FROM ioffice.signature s WHERE s.status = 'pending' "
	"     AND NOT EXISTS (SELECT 1 FROM ioffice.file f WHERE f.id = s.file_id "
	"                     AND f.kind IN " IOFFICE_CONVERTIBLE_KINDS_SQL ") "
	/*
	 * the token path (token_signing.c): a signer whose certificates that
	 * can sign now all lack a key file signs with their own tool; so do
	 * all when ioffice.keystore_personal ($2) is off (personal key files
	 * are for development only)
	 */
	"     AND NOT (s.kind = 'personal' "
	"              AND EXISTS (SELECT 1 FROM ioffice.certificate c WHERE c.kind = 'personal' "
	"                     AND c.person_id = s.signer_id AND (c.key_file IS NULL OR NOT $2) AND c.revoked_at IS NULL "
	"                     AND now() BETWEEN c.not_before AND c.not_after) "
	"              AND NOT EXISTS (SELECT 1 FROM ioffice.certificate c WHERE c.kind = 'personal' "
	"                     AND c.person_id = s.signer_id AND c.key_file IS NOT NULL AND $2 AND c.revoked_at IS NULL "
	"                     AND now() BETWEEN c.not_before AND c.not_after)) "
	"   ORDER BY s.id LIMIT $1 FOR UPDATE SKIP LOCKED) "
	/* the key: a PKCS#11 URI (the seal in an HSM) or a key file */
	"SELECT s.id, s.document_id, s.file_id, s.kind, c.id, c.pem, coalesce(c.key_uri, c.key_file), "
	"       CASE WHEN c.id IS NULL THEN 'no ' || s.kind || ' certificate is registered for the signer' "
	"            WHEN c.not_after < now() THEN 'the certificate expired on ' || c.not_after "
	"            WHEN c.not_before > now() THEN 'the certificate is not valid before ' || c.not_before "
	"            WHEN c.revoked_at IS NOT NULL THEN 'the certificate was revoked on ' || c.revoked_at "
	"            WHEN c.key_file IS NULL AND c.key_uri IS NULL THEN 'certificate ' || c.id || ' has no key file registered' "
	"            WHEN c.kind = 'personal' AND NOT $2 THEN 'certificate ' || c.id || '''s key file is not used: "
	"ioffice.keystore_personal is off' "
	"       END, f.sha256, "
	/*
	 * a PDF that ends as PDFs end (startxref in its last KiB, read as a
	 * slice of the uncompressed TOAST value) is signed inside, by the
	 * helper; other "PDFs" (a header and no body) are not worth a process
	 */
	"       f.kind = 'pdf' AND position('startxref'::bytea IN "
	"           substring(f.content FROM greatest(1, f.size - 1023))) > 0, s.signer_id, "
	"       CASE s.kind WHEN 'personal' THEN p.full_name ELSE u.name END, "
	/* a copy's organisation signature shows no image (Decree 30 appendix I part II.3) */
	"       CASE WHEN s.options ? 'copy' OR st.attachment THEN NULL "
	"            WHEN s.kind = 'personal' THEN si.png ELSE se.png END, "
	"       CASE WHEN NOT s.options ? 'copy' AND st.attachment IS NOT TRUE THEN se.diameter_mm::float8 END, "
	"       CASE WHEN s.options->>'mode' = 'position' THEN (s.options->>'page')::int END, "
	"       (s.options->>'x')::float8, (s.options->>'y')::float8, "
	"       s.options->'copy'->>'reason', "
	/*
	 * the issue stamp: the organisation's signature of an issued document
	 * (not a copy's) writes its number and issue date (a date in
	 * ioffice.timezone) into the blanks; Decree 30: a leading zero for
	 * numbers and days under 10 and for months 1 and 2 only
	 */
	"       CASE WHEN NOT st.attachment THEN ioffice.format_number(st.number) END, "
	"       to_char(st.issued_on, 'DD'), "
	"       to_char(st.issued_on, CASE WHEN extract(month FROM st.issued_on) < 3 THEN 'MM' ELSE 'FMMM' END), "
	"       to_char(st.issued_on, 'YYYY'), "
	/*
	 * the text at the top right of page 1 of a signature without image
	 * (Appendix I, II.8b and Part II.3): an attachment in a file of its own
	 * shows the document's number and symbol, a copy the kind of copy and
	 * the copying agency; the worker adds the signing time
	 */
	"       CASE WHEN s.options ? 'copy' THEN concat_ws(E'\\x1f', "
	"                 CASE s.options->'copy'->>'kind' WHEN 'SY' THEN 'Sao y' WHEN 'SL' THEN 'Sao lục' "
	"                      WHEN 'TrS' THEN 'Trích sao' END, s.options->'copy'->>'agency') "
	"            WHEN st.attachment THEN st.symbol END "
	"  FROM next JOIN ioffice.signature s ON s.id = next.id "
	"  JOIN ioffice.document d ON d.id = s.document_id "
	"  LEFT JOIN ioffice.file f ON f.id = s.file_id "
	"  JOIN ioffice.person p ON p.id = s.signer_id "
	"  JOIN ioffice.unit u ON u.id = d.agency_id "
	"  LEFT JOIN ioffice.signature_image si ON si.person_id = s.signer_id AND s.kind = 'personal' "
	"  LEFT JOIN ioffice.seal_image se ON se.agency_id = d.agency_id AND s.kind = 'organisation' "
	/*
	 * an issued document's organisation signature; an attachment in a file
	 * of its own is a file outside the chain of versions of the document's
	 * first file (versions have higher ids than what they replace)
	 */
	"  LEFT JOIN LATERAL ( "
	"       WITH RECURSIVE v(id) AS ( "
	"            SELECT min(x.id) FROM ioffice.file x WHERE x.document_id = d.id "
	"            UNION ALL SELECT x.id FROM v JOIN ioffice.file x ON x.replaces_id = v.id) "
	"       SELECT d.number, d.issued_on, d.symbol, s.file_id NOT IN (SELECT id FROM v) AS attachment "
	"        WHERE s.kind = 'organisation' AND NOT s.options ? 'copy' "
	"          AND d.number IS NOT NULL AND d.issued_on IS NOT NULL) st ON true "
	"  LEFT JOIN LATERAL ( "
	"       SELECT c.* FROM ioffice.certificate c "
	"        WHERE c.kind = s.kind "
	"          AND CASE s.kind WHEN 'personal' THEN c.person_id = s.signer_id "
	"                          ELSE c.agency_id = d.agency_id END "
	"        ORDER BY (c.revoked_at IS NULL "
	"                  AND (c.key_uri IS NOT NULL OR (c.key_file IS NOT NULL AND (c.kind = 'organisation' OR $2))) "
	"                  AND now() BETWEEN c.not_before AND c.not_after) DESC, "
	"                 c.revoked_at IS NULL DESC, c.not_after DESC, c.id DESC LIMIT 1) c ON true "
	" ORDER BY s.id",
	2, {INT4OID, BOOLOID}
};

/* a batch's outcomes in one statement */
static IofficePlan batch_plan = {
	NULL,
	"UPDATE ioffice.signature s "
	"   SET status = CASE WHEN u.ok THEN 'done' ELSE 'failed' END, cms = u.cms, "
	"       certificate_id = u.cert, reason = u.reason, "
	"       signed_at = CASE WHEN u.ok THEN clock_timestamp() ELSE s.signed_at END "
	"  FROM unnest($1::bigint[], $2::bool[], $3::text[], $4::bytea[], $5::bigint[]) "
	"       AS u(id, ok, reason, cms, cert) "
	" WHERE s.id = u.id AND s.status = 'pending'",
	5, {INT8ARRAYOID, BOOLARRAYOID, TEXTARRAYOID, BYTEAARRAYOID, INT8ARRAYOID}
};

/* the head of a chain, as audit.c reads it */
static IofficePlan chain_head_plan = {
	NULL,
	"SELECT seq, hash FROM ioffice.audit WHERE chain = $1 ORDER BY seq DESC LIMIT 1",
	1, {TEXTOID}
};

/* the rest of a batch's audit records, chained by sign_jobs.c */
static IofficePlan audit_batch_plan = {
	NULL,
	"INSERT INTO ioffice.audit (at, actor_id, on_behalf_of, db_role, entity, entity_id, action, "
	"       state_before, state_after, detail, chain, seq, prev_hash, hash) "
	"SELECT $1, NULL, NULL, $2, 'signature', u.id, u.action, 'pending', u.after, u.detail, "
	"       u.chain, u.seq, u.prev, u.hash "
	"  FROM unnest($3::bigint[], $4::text[], $5::text[], $6::jsonb[], $7::text[], $8::bigint[], "
	"              $9::bytea[], $10::bytea[]) AS u(id, action, after, detail, chain, seq, prev, hash)",
	10, {TIMESTAMPTZOID, TEXTOID, INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, JSONBARRAYOID,
	TEXTARRAYOID, INT8ARRAYOID, BYTEAARRAYOID, BYTEAARRAYOID}
};

static IofficePlan done_plan = {
	NULL,
	"UPDATE ioffice.signature SET status = 'done', cms = $3, certificate_id = $4, "
	"       signed_at = clock_timestamp(), reason = $2, signed_file_id = $5 WHERE id = $1",
	5, {INT8OID, TEXTOID, BYTEAOID, INT8OID, INT8OID}
};

static IofficePlan failed_plan = {
	NULL,
	"UPDATE ioffice.signature SET status = 'failed', reason = $2, certificate_id = $4 "
	" WHERE id = $1",
	4, {INT8OID, TEXTOID, BYTEAOID, INT8OID}
};

static int64 batch_failed = 0;

/* the audit record's detail of a job's outcome */
static Jsonb *
job_detail(SignJob *job)
{
	JsonbBuild *b = ioffice_jsonb_begin();

	ioffice_jsonb_add_int(b, "file", job->file);
	ioffice_jsonb_add_text(b, "kind", job->kind);
	if (job->cert)
		ioffice_jsonb_add_int(b, "certificate", job->cert);
	if (job->reason)
		ioffice_jsonb_add_text(b, "reason", job->reason);
	if (job->signed_file)
		ioffice_jsonb_add_int(b, "signed_file", job->signed_file);
	if (job->stamp)
		ioffice_jsonb_add_text(b, "stamp", job->stamp);
	return ioffice_jsonb_end(b);
}

static void
audit_one(SignJob *job)
{
	ioffice_audit_in_chain(ioffice_document_chain(job->document), 0, 0, "signature", job->id,
						   job->ok ? "signed" : "signing_failed", "pending",
						   job->ok ? "done" : "failed", job_detail(job));
}

/* One job's outcome, recorded on its own (the job-by-job way). */
static void
record(SignJob *job)
{
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};

	values[0] = Int64GetDatum(job->id);
	values[1] = job->reason ? CStringGetTextDatum(job->reason) : (Datum) 0;
	nulls[1] = job->reason ? ' ' : 'n';
	values[2] = job->cms ? PointerGetDatum(job->cms) : (Datum) 0;
	nulls[2] = job->cms ? ' ' : 'n';
	values[3] = Int64GetDatum(job->cert);
	nulls[3] = job->cert ? ' ' : 'n';
	values[4] = Int64GetDatum(job->signed_file);
	nulls[4] = job->signed_file ? ' ' : 'n';
	if (ioffice_exec(job->ok ? &done_plan : &failed_plan, values, nulls, 0) != SPI_OK_UPDATE ||
		SPI_processed != 1)
		elog(ERROR, "ioffice: could not record signature %lld", (long long) job->id);
	audit_one(job);
}

/* Sign one job: sets its outcome.  Touches no table. */
static void
sign_job(SignJob *job)
{
	IofficeSignResult r;

	job->ok = false;
	job->cms = NULL;
	job->reason = NULL;
	job->signed_file = 0;
	job->stamp = NULL;
	if (job->not_usable != NULL)
	{
		job->reason = job->not_usable;
		return;
	}
	if (job->sha256 == NULL)
	{
		job->reason = "the file is gone";
		return;
	}
	if (VARSIZE_ANY_EXHDR(job->sha256) != 32)
	{
		job->reason = "the file's SHA-256 is not 32 bytes";
		return;
	}
	if (job->pdf)
	{
		IofficePdfSigned p = ioffice_pdf_sign(job->file, job->signer, job->pem, job->key_file,
											  job->signer_name, job->kind, &job->look);

		if (!p.not_pdf)
		{
			job->ok = p.ok;
			job->reason = p.ok ? NULL : p.reason;
			job->cms = p.cms;
			job->signed_file = p.signed_file;
			job->stamp = p.ok ? p.note : NULL;
			return;
		}

		/*
		 * Not a PDF the library can read (a crash, a hang or a limit is a
		 * failure instead, above): it is signed as any other file, with a
		 * detached CMS, as before PAdES.
		 */
		elog(LOG, "ioffice worker: file %lld is signed detached: %s",
			 (long long) job->file, p.reason);
	}
	r = ioffice_sign_detached_digest(job->pem, job->key_file,
									 (const unsigned char *) VARDATA_ANY(job->sha256));
	job->ok = r.ok;
	job->reason = r.reason;
	job->cms = r.cms;
	/* CAdES-T: the detached signature's timestamp too (timestamp.c) */
	if (job->ok && ioffice_timestamp_wanted() &&
		(job->cms = ioffice_timestamp_cms(r.cms, &job->reason)) == NULL)
		job->ok = false;
}

static ArrayType *
int8_array(Datum *v, int n)
{
	return construct_array(v, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
}

static ArrayType *
varlena_array(Datum *v, bool *isnull, int n, Oid type)
{
	int			dims[1] = {n};
	int			lbs[1] = {1};

	return construct_md_array(v, isnull, 1, dims, lbs, type, -1, false, TYPALIGN_INT);
}

/*
 * The arguments of the batch's one UPDATE, one array per unnest() column,
 * in job order.  Gathered in one place so that the statement's five
 * parameters are built from one fill and cannot drift apart.
 */
typedef struct BatchColumns
{
	int			n;
	Datum	   *ids;
	Datum	   *oks;
	Datum	   *reasons;
	bool	   *reason_nulls;
	Datum	   *cmss;
	bool	   *cms_nulls;
	Datum	   *certs;
	bool	   *cert_nulls;
} BatchColumns;

/*
 * The audit records chained here (every record of a document after its
 * first), one array per unnest() column of audit_batch_plan, so that they
 * are written with one INSERT; at and db_role are the same for all of
 * them, as audit.c would have written them in this transaction.
 */
typedef struct AuditColumns
{
	int			n;				/* records gathered so far */
	Datum	   *id;
	Datum	   *action;
	Datum	   *after;
	Datum	   *detail;
	Datum	   *chain;
	Datum	   *seq;
	Datum	   *prev;
	bool	   *prev_null;
	Datum	   *hash;
	TimestampTz at;
	char	   *db_role;
} AuditColumns;

/*
 * A document's chain as this batch continues it: its name, and the seq and
 * hash of its last record, read from the table only once a second record
 * of the same document needs them (prev == NULL until then).
 */
typedef struct ChainHead
{
	char	   *chain;
	int64		seq;
	bytea	   *prev;
} ChainHead;

/* The UPDATE's columns from the jobs' outcomes; counts the failures. */
static void
batch_columns_fill(BatchColumns *c, SignJob *jobs, int n)
{
	c->n = n;
	c->ids = palloc(sizeof(Datum) * n);
	c->oks = palloc(sizeof(Datum) * n);
	c->reasons = palloc(sizeof(Datum) * n);
	c->reason_nulls = palloc(sizeof(bool) * n);
	c->cmss = palloc(sizeof(Datum) * n);
	c->cms_nulls = palloc(sizeof(bool) * n);
	c->certs = palloc(sizeof(Datum) * n);
	c->cert_nulls = palloc(sizeof(bool) * n);
	for (int i = 0; i < n; i++)
	{
		SignJob    *job = &jobs[i];

		c->ids[i] = Int64GetDatum(job->id);
		c->oks[i] = BoolGetDatum(job->ok);
		c->reason_nulls[i] = job->reason == NULL;
		c->reasons[i] = job->reason ? CStringGetTextDatum(job->reason) : (Datum) 0;
		c->cms_nulls[i] = job->cms == NULL;
		c->cmss[i] = PointerGetDatum(job->cms);
		c->cert_nulls[i] = job->cert == 0;
		c->certs[i] = Int64GetDatum(job->cert);
		if (!job->ok)
			batch_failed++;
	}
}

/*
 * Every outcome of the batch with one UPDATE from unnest(): one statement
 * instead of one per job is what makes the worker fast.  Each job is still
 * pending (its row is locked by the batch), so anything but n rows updated
 * is an error that sends the batch job by job.
 */
static void
update_outcomes(BatchColumns *c)
{
	Datum		values[5];
	int			n = c->n;

	values[0] = PointerGetDatum(int8_array(c->ids, n));
	values[1] = PointerGetDatum(construct_array(c->oks, n, BOOLOID, 1, true, TYPALIGN_CHAR));
	values[2] = PointerGetDatum(varlena_array(c->reasons, c->reason_nulls, n, TEXTOID));
	values[3] = PointerGetDatum(varlena_array(c->cmss, c->cms_nulls, n, BYTEAOID));
	/* certificate ids can be NULL (no certificate): construct_array has no nulls */
	values[4] = PointerGetDatum(construct_md_array(c->certs, c->cert_nulls, 1, (int[]) {n}, (int[]) {1},
												   INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	if (ioffice_exec(&batch_plan, values, NULL, 0) != SPI_OK_UPDATE || SPI_processed != (uint64) n)
		elog(ERROR, "ioffice: could not record the signatures of a batch (%llu of %d)",
			 (unsigned long long) SPI_processed, n);
}

/* Room for up to n chained records, stamped as audit.c stamps its own. */
static void
audit_columns_init(AuditColumns *a, int n)
{
	a->n = 0;
	a->id = palloc(sizeof(Datum) * n);
	a->action = palloc(sizeof(Datum) * n);
	a->after = palloc(sizeof(Datum) * n);
	a->detail = palloc(sizeof(Datum) * n);
	a->chain = palloc(sizeof(Datum) * n);
	a->seq = palloc(sizeof(Datum) * n);
	a->prev = palloc(sizeof(Datum) * n);
	a->prev_null = palloc(sizeof(bool) * n);
	a->hash = palloc(sizeof(Datum) * n);
	a->at = GetCurrentTransactionStartTimestamp();
	a->db_role = GetUserNameFromId(GetSessionUserId(), false);
}

/*
 * The chain's head as audit.c just wrote it: read once per document, and
 * only when a second record follows, so that a batch of one job per
 * document costs no extra statement.  The chain is locked by then.
 */
static void
chain_head_read(ChainHead *h)
{
	Datum		arg[1];
	bool		isnull;

	arg[0] = CStringGetTextDatum(h->chain);
	if (ioffice_exec(&chain_head_plan, arg, NULL, 1) != SPI_OK_SELECT ||
		SPI_processed != 1 ||
		!ioffice_get_int64(0, 1, &h->seq))
		elog(ERROR, "ioffice: the audit chain %s has no head", h->chain);
	h->prev = DatumGetByteaPCopy(SPI_getbinval(SPI_tuptable->vals[0],
											   SPI_tuptable->tupdesc, 2, &isnull));
	if (isnull)
		elog(ERROR, "ioffice: the head of audit chain %s has no hash", h->chain);
}

/*
 * A job's record as the next link of the chain: hashed here exactly as
 * audit.c would hash it (same fields, same order), so that the chain
 * verifies as if audit.c had written every record; the head moves on.
 */
static void
chain_append(AuditColumns *a, ChainHead *h, SignJob *job)
{
	Jsonb	   *detail;
	uint8		hash[32];
	bytea	   *b;
	int			k = a->n;

	if (h->prev == NULL)
		chain_head_read(h);
	h->seq++;
	detail = job_detail(job);
	ioffice_audit_hash(h->chain, h->seq, h->prev, a->at, false, 0, false, 0, a->db_role, "signature",
					   true, job->id, job->ok ? "signed" : "signing_failed", "pending",
					   job->ok ? "done" : "failed",
					   JsonbToCString(NULL, &detail->root, VARSIZE(detail)), hash);
	b = palloc(VARHDRSZ + sizeof(hash));
	SET_VARSIZE(b, VARHDRSZ + sizeof(hash));
	memcpy(VARDATA(b), hash, sizeof(hash));

	a->id[k] = Int64GetDatum(job->id);
	a->action[k] = CStringGetTextDatum(job->ok ? "signed" : "signing_failed");
	a->after[k] = CStringGetTextDatum(job->ok ? "done" : "failed");
	a->detail[k] = JsonbPGetDatum(detail);
	a->chain[k] = CStringGetTextDatum(h->chain);
	a->seq[k] = Int64GetDatum(h->seq);
	a->prev[k] = PointerGetDatum(h->prev);
	a->prev_null[k] = false;
	a->hash[k] = PointerGetDatum(b);
	a->n++;
	h->prev = b;
}

/*
 * The records of jobs[first]'s document: the first through audit.c, which
 * locks the chain and reads its head; the batch holds that lock from then
 * on, so the document's later jobs are chained here, in job order.
 */
static void
audit_document(SignJob *jobs, int n, int first, bool *audited, AuditColumns *a)
{
	ChainHead	head = {NULL, 0, NULL};

	head.chain = ioffice_document_chain(jobs[first].document);
	audit_one(&jobs[first]);
	audited[first] = true;
	for (int j = first + 1; j < n; j++)
	{
		if (audited[j] || jobs[j].document != jobs[first].document)
			continue;
		chain_append(a, &head, &jobs[j]);
		audited[j] = true;
	}
}

/* The records chained here, all with one INSERT from unnest(). */
static void
insert_audit_columns(AuditColumns *a)
{
	Datum		values[10];
	int			n = a->n;

	values[0] = TimestampTzGetDatum(a->at);
	values[1] = CStringGetTextDatum(a->db_role);
	values[2] = PointerGetDatum(int8_array(a->id, n));
	values[3] = PointerGetDatum(varlena_array(a->action, NULL, n, TEXTOID));
	values[4] = PointerGetDatum(varlena_array(a->after, NULL, n, TEXTOID));
	values[5] = PointerGetDatum(varlena_array(a->detail, NULL, n, JSONBOID));
	values[6] = PointerGetDatum(varlena_array(a->chain, NULL, n, TEXTOID));
	values[7] = PointerGetDatum(int8_array(a->seq, n));
	values[8] = PointerGetDatum(varlena_array(a->prev, a->prev_null, n, BYTEAOID));
	values[9] = PointerGetDatum(varlena_array(a->hash, NULL, n, BYTEAOID));
	if (ioffice_exec(&audit_batch_plan, values, NULL, 0) != SPI_OK_INSERT ||
		SPI_processed != (uint64) n)
		elog(ERROR, "ioffice: could not write the audit records of a batch");
}

/*
 * The batch's audit records, one per job in its document's chain: each
 * document's first through audit.c, the rest chained here and written
 * with one INSERT.
 */
static void
audit_batch(SignJob *jobs, int n)
{
	AuditColumns a;
	bool	   *audited = palloc0(sizeof(bool) * n);

	audit_columns_init(&a, n);
	for (int i = 0; i < n; i++)
	{
		if (!audited[i])
			audit_document(jobs, n, i, audited, &a);
	}
	if (a.n > 0)
		insert_audit_columns(&a);
}

/*
 * Every outcome of the batch with one UPDATE, then its audit records
 * (audit_batch).
 */
static void
record_batch(SignJob *jobs, int n)
{
	BatchColumns c;

	batch_columns_fill(&c, jobs, n);
	update_outcomes(&c);

	if (!ioffice_audit_chaining)
	{
		/* unchained records: a measuring mode only, audit.c writes them one by one */
		for (int i = 0; i < n; i++)
			audit_one(&jobs[i]);
		return;
	}
	audit_batch(jobs, n);
}

/*
 * Run fn(arg) in a subtransaction of its own.  Returns NULL when it went
 * through, else its error (copied into the caller's memory context) after
 * rolling the subtransaction back: what it wrote is gone, the batch's
 * transaction and row locks stay.
 */
typedef void (*SubxactStep) (void *arg);

static ErrorData *
in_subtransaction(SubxactStep fn, void *arg)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;

	BeginInternalSubTransaction(NULL);
	PG_TRY();
	{
		fn(arg);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(oldcxt);
	CurrentResourceOwner = oldowner;
	return edata;
}

/*
 * One batch: its jobs, read from the queue into the transaction's memory,
 * and the context each signing attempt allocates in and is reset after.
 */
typedef struct Batch
{
	SignJob    *jobs;
	int			n;
	MemoryContext job_cxt;
} Batch;

static void
sign_and_record_batch(void *arg)
{
	Batch	   *b = (Batch *) arg;

	for (int i = 0; i < b->n; i++)
		sign_job(&b->jobs[i]);
	record_batch(b->jobs, b->n);
}

static void
sign_and_record_one(void *arg)
{
	sign_job((SignJob *) arg);
	record((SignJob *) arg);
}

static void
record_one(void *arg)
{
	record((SignJob *) arg);
}

/*
 * The job-by-job way: each job signed and recorded in a subtransaction.
 * Returns how many jobs stay pending because not even their failure could
 * be recorded.
 */
static int
sign_jobs_one_by_one(SignJob *jobs, int n, MemoryContext job_cxt)
{
	int			left = 0;

	for (int i = 0; i < n; i++)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(job_cxt);
		ErrorData  *edata = in_subtransaction(sign_and_record_one, &jobs[i]);

		if (edata == NULL)
		{
			if (!jobs[i].ok)
				batch_failed++;
		}
		else
		{
			ErrorData  *again;

			ioffice_worker_note_error(edata->message);
			/* the abort restored the engine depth of the subtransaction's start */
			jobs[i].ok = false;
			jobs[i].cms = NULL;
			jobs[i].reason = edata->message;

			/*
			 * Recording the failure can fail the same way (a lock timeout, a
			 * deadlock with a client replacing the file): then the job stays
			 * pending for the next batch instead of taking the whole batch,
			 * and the worker, down with it.
			 */
			again = in_subtransaction(record_one, &jobs[i]);
			if (again == NULL)
				batch_failed++;
			else
			{
				left++;
				elog(WARNING, "ioffice worker: signature %lld could not be recorded as failed (%s); it stays pending",
					 (long long) jobs[i].id, again->message);
			}
		}
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(job_cxt);
	}
	return left;
}

/*
 * One job from a row of jobs_plan, copied into the transaction's memory:
 * the jobs outlive SPI's tuple table (the signing and recording run
 * statements of their own) and every subtransaction attempt.
 */
static void
job_from_tuple(SignJob *job, HeapTuple tup, TupleDesc desc)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	bool		isnull;
	Datum		d;

	job->id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	job->document = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
	job->file = DatumGetInt64(SPI_getbinval(tup, desc, 3, &isnull));
	job->kind = SPI_getvalue(tup, desc, 4);
	d = SPI_getbinval(tup, desc, 5, &isnull);
	job->cert = isnull ? 0 : DatumGetInt64(d);
	job->pem = SPI_getvalue(tup, desc, 6);
	job->key_file = SPI_getvalue(tup, desc, 7);
	job->not_usable = SPI_getvalue(tup, desc, 8);
	d = SPI_getbinval(tup, desc, 9, &isnull);
	job->sha256 = isnull ? NULL : DatumGetByteaPCopy(d);
	d = SPI_getbinval(tup, desc, 10, &isnull);
	job->pdf = !isnull && DatumGetBool(d);
	job->signer = DatumGetInt64(SPI_getbinval(tup, desc, 11, &isnull));
	job->signer_name = SPI_getvalue(tup, desc, 12);
	d = SPI_getbinval(tup, desc, 13, &isnull);
	job->look.image = isnull ? NULL : DatumGetByteaPCopy(d);
	d = SPI_getbinval(tup, desc, 14, &isnull);
	job->look.seal_mm = isnull ? 0 : DatumGetFloat8(d);
	d = SPI_getbinval(tup, desc, 15, &isnull);
	job->look.page = isnull ? 0 : DatumGetInt32(d);
	d = SPI_getbinval(tup, desc, 16, &isnull);
	job->look.x = isnull ? 0 : DatumGetFloat8(d);
	d = SPI_getbinval(tup, desc, 17, &isnull);
	job->look.y = isnull ? 0 : DatumGetFloat8(d);
	job->look.reason = SPI_getvalue(tup, desc, 18);
	job->look.number = SPI_getvalue(tup, desc, 19);
	job->look.day = SPI_getvalue(tup, desc, 20);
	job->look.month = SPI_getvalue(tup, desc, 21);
	job->look.year = SPI_getvalue(tup, desc, 22);
	job->look.corner = SPI_getvalue(tup, desc, 23);
	MemoryContextSwitchTo(old);
}

/*
 * The next pending jobs, locked for this transaction (SKIP LOCKED: another
 * worker's batch is left alone), with their certificates.
 */
static void
read_jobs(Batch *b, int limit)
{
	Datum		arg[2];
	uint64		n;

	arg[0] = Int32GetDatum(limit);
	arg[1] = BoolGetDatum(ioffice_keystore_personal);
	if (ioffice_exec(&jobs_plan, arg, NULL, 0) != SPI_OK_SELECT)
		elog(ERROR, "ioffice: could not read the signature queue");
	n = SPI_processed;
	b->jobs = MemoryContextAllocZero(TopTransactionContext, sizeof(SignJob) * Max(n, 1));
	for (uint64 i = 0; i < n; i++)
		job_from_tuple(&b->jobs[i], SPI_tuptable->vals[i], SPI_tuptable->tupdesc);
	b->n = (int) n;
}

/*
 * The whole batch at once, in one subtransaction: the fast way.  Returns
 * false (its writes rolled back, the row locks kept) when anything in it
 * raised an error.
 */
static bool
sign_batch_at_once(Batch *b)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(b->job_cxt);
	ErrorData  *edata = in_subtransaction(sign_and_record_batch, b);

	MemoryContextSwitchTo(oldcxt);
	if (edata != NULL)
		elog(LOG, "ioffice worker: a batch of %d signatures failed (%s); doing it job by job",
			 b->n, edata->message);
	MemoryContextReset(b->job_cxt);
	return edata == NULL;
}

/*
 * Sign and record the batch's jobs: at once, and on an error again job by
 * job so that the error stays with its job.  Returns how many jobs stay
 * pending.
 */
static int
sign_jobs(Batch *b)
{
	int			left = 0;

	ioffice_worker_set_state("signing");
	pgstat_report_activity(STATE_RUNNING, "ioffice worker: signing");
	b->job_cxt = AllocSetContextCreate(TopTransactionContext, "ioffice signing job",
									   ALLOCSET_DEFAULT_SIZES);
	ioffice_engine_enter();

	/*
	 * PDFs are signed one by one, each in its subtransaction, after the
	 * others: each makes a new version of its file, which a later job on
	 * the same file (the seal after the leader's signature) must see.
	 */
	{
		Batch		detached = {palloc(sizeof(SignJob) * b->n), 0, b->job_cxt};
		SignJob    *pdfs = palloc(sizeof(SignJob) * b->n);
		int			npdf = 0;

		for (int i = 0; i < b->n; i++)
		{
			if (b->jobs[i].pdf)
				pdfs[npdf++] = b->jobs[i];
			else
				detached.jobs[detached.n++] = b->jobs[i];
		}
		if (detached.n > 0 && !sign_batch_at_once(&detached))
		{
			/* the failures counted by the rolled-back attempt are not recorded */
			batch_failed = 0;
			left = sign_jobs_one_by_one(detached.jobs, detached.n, b->job_cxt);
		}
		if (npdf > 0)
			left += sign_jobs_one_by_one(pdfs, npdf, b->job_cxt);
	}
	ioffice_engine_leave();
	return left;
}

/*
 * One batch in one transaction of its own: a crash loses nothing and signs
 * nothing twice.  Returns how many jobs were recorded (done or failed);
 * *failed says how many of them failed.
 */
int
ioffice_worker_sign_batch(int limit, int64 *failed)
{
	Batch		b = {NULL, 0, NULL};
	int			left = 0;

	*failed = 0;
	batch_failed = 0;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "ioffice worker: looking for jobs");

	read_jobs(&b, limit);
	if (b.n > 0)
		left = sign_jobs(&b);

	*failed = batch_failed;
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	return b.n - left;
}
