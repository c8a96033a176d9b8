/*-------------------------------------------------------------------------
 * token_signing.c
 *	  Signing on the signer's own device: signing_request() and
 *	  submit_signature() (issue 13, item 1).
 *
 * A personal signature whose signer has a certificate that can sign now
 * and no such certificate with a key file in the keystore is not signed by
 * the worker (sign_jobs.c leaves it pending): the signer's own tool (a USB
 * token through the VGCA plug-in, or anything that signs a hash) signs it.
 *
 * signing_request() prepares what the tool signs, in the caller's
 * transaction: for a PDF, the PDF helper process appends the revision with
 * the signature field, its appearance and the reserved /Contents (exactly
 * as the worker's PAdES signer does, pdf_sign.c); the digest of its
 * /ByteRange; and the CMS signed attributes the system would sign
 * (content-type, message-digest, ESS signing-certificate-v2 of the signer's
 * registered certificate), whose SHA-256 is what a hash-signing tool signs.
 * It is prepared on request rather than by the worker ahead of time: the
 * signing time written into the revision (/M) is then the time the signer
 * asked, the expiry runs from there, and a request the signer never makes
 * costs nothing.  The prepared bytes are kept in token_request (one per
 * signature, replaced by a new request) until submission or expiry
 * (ioffice.signing_request_ttl).
 *
 * submit_signature() accepts three forms, and reduces each to one detached
 * CMS over the prepared bytes:
 *   - the signed PDF: byte for byte the prepared revision but for the hex
 *     inside the /Contents placeholder (compared with the kept bytes: no
 *     PDF is parsed), which holds the CMS;
 *   - a CMS SignedData (DER, detached) over the /ByteRange;
 *   - the bare signature value over the signed attributes' digest
 *     (PKCS#1 v1.5 for RSA, DER ECDSA-Sig-Value), which is put into the
 *     SignerInfo built again from the same attributes: OpenSSL documents
 *     CMS_SignerInfo_get0_signature() as returning the internal signature
 *     value "so it may be read or modified", which is how an externally
 *     made value enters a CMS built by CMS_add1_signer(..., CMS_PARTIAL).
 * Then the CMS is verified over the signed bytes, its signer must be a
 * certificate registered to the signer, not revoked, valid now, its chain
 * trusted (the registered anchors and revocation lists, as verify() checks
 * it), and the signature proceeds as one the worker made: the signed PDF
 * becomes the file's next version, the signature row is done, the audit
 * chain records it.
 *
 * The CMS is decoded in the backend with OpenSSL's DER decoder, as
 * verify() already decodes the CMS of every PDF it is given; a PDF is
 * never parsed here (the helper prepares it; the submitted PDF is only
 * compared with the kept bytes).
 *
 * Refusals raise an error (22023 bad bytes or signature, 42501 wrong
 * person or certificate, 55000 not pending, expired, stale), and the error
 * rolls back whatever the call wrote: an audit record of a refusal written
 * here would vanish with it.  So a refusal of a known signature is handed
 * to the database's signing worker through shared memory
 * (ioffice_worker_note_refusal()), which writes it into the document's
 * audit chain ("signing_refused", by the person refused) in a transaction
 * of its own a moment later; it is also in the server log (LOG), which is
 * all there is when no worker serves the database or its queue (64
 * refusals) is full.  The audit chain thus records each request, each
 * accepted submission and each refusal.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "catalog/pg_type.h"
#include "common/base64.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"

#include "convert.h"
#include "ioffice.h"
#include "worker.h"

PG_FUNCTION_INFO_V1(ioffice_signing_request);
PG_FUNCTION_INFO_V1(ioffice_submit_signature);

int			ioffice_signing_request_ttl = 300;	/* s */

void
ioffice_token_signing_init(void)
{
	DefineCustomIntVariable("ioffice.signing_request_ttl",
							"Seconds a signing request (signing_request()) may be answered.",
							"A later submit_signature() is refused; the signer asks again.",
							&ioffice_signing_request_ttl,
							300, 1, 3600,
							PGC_SUSET, GUC_UNIT_S,
							NULL, NULL, NULL);
}

#define SHA256_LEN 32

/*
 * The rule of the token path, also in sign_jobs.c's queue: the signer has a
 * personal certificate that can sign now without a key file, and none with
 * one (key files count only while ioffice.keystore_personal is on).  The
 * newest such certificate is the one the request names.
 */
static IofficePlan signature_plan = {
	NULL,
	"SELECT s.document_id, s.file_id, s.signer_id, s.kind, s.status, p.full_name, "
	"       CASE WHEN s.options ? 'copy' THEN NULL ELSE si.png END, "
	"       CASE WHEN s.options->>'mode' = 'position' THEN (s.options->>'page')::int END, "
	"       (s.options->>'x')::float8, (s.options->>'y')::float8, "
	"       s.options->'copy'->>'reason', "
	"       CASE WHEN s.options ? 'copy' THEN concat_ws(E'\\x1f', "
	"                 CASE s.options->'copy'->>'kind' WHEN 'SY' THEN 'Sao y' WHEN 'SL' THEN 'Sao lục' "
	"                      WHEN 'TrS' THEN 'Trích sao' END, s.options->'copy'->>'agency') END, "
	"       (SELECT c.id FROM ioffice.certificate c WHERE c.kind = 'personal' "
	"           AND c.person_id = s.signer_id AND (c.key_file IS NULL OR NOT $2) AND c.revoked_at IS NULL "
	"           AND now() BETWEEN c.not_before AND c.not_after "
	"         ORDER BY c.not_after DESC, c.id DESC LIMIT 1), "
	"       EXISTS (SELECT 1 FROM ioffice.certificate c WHERE c.kind = 'personal' "
	"           AND c.person_id = s.signer_id AND c.key_file IS NOT NULL AND $2 AND c.revoked_at IS NULL "
	"           AND now() BETWEEN c.not_before AND c.not_after), "
	"       f.kind IN " IOFFICE_CONVERTIBLE_KINDS_SQL ", f.kind = 'pdf' AND position('startxref'::bytea IN "
	"           substring(f.content FROM greatest(1, f.size - 1023))) > 0 "
	"  FROM ioffice.signature s JOIN ioffice.person p ON p.id = s.signer_id "
	"  JOIN ioffice.file f ON f.id = s.file_id "
	"  LEFT JOIN ioffice.signature_image si ON si.person_id = s.signer_id "
	" WHERE s.id = $1 FOR UPDATE OF s",
	2, {INT8OID, BOOLOID}
};

static IofficePlan certificate_plan = {
	NULL,
	"SELECT pem FROM ioffice.certificate WHERE id = $1",
	1, {INT8OID}
};

/* the file a detached signature signs: itself, still current */
static IofficePlan detached_target_plan = {
	NULL,
	"SELECT f.id, f.content, f.sha256 FROM ioffice.file f "
	" WHERE f.id = $1 AND f.superseded_at IS NULL AND f.removed_at IS NULL",
	1, {INT8OID}
};

static IofficePlan keep_request_plan = {
	NULL,
	"INSERT INTO ioffice.token_request AS t (signature_id, certificate_id, file_id, prepared, "
	"       byte_range, content_digest, attrs_digest, requested_at, expires_at) "
	"VALUES ($1, $2, $3, $4, $5, $6, $7, now(), now() + make_interval(secs => $8)) "
	"ON CONFLICT (signature_id) DO UPDATE SET certificate_id = EXCLUDED.certificate_id, "
	"       file_id = EXCLUDED.file_id, prepared = EXCLUDED.prepared, "
	"       byte_range = EXCLUDED.byte_range, content_digest = EXCLUDED.content_digest, "
	"       attrs_digest = EXCLUDED.attrs_digest, requested_at = EXCLUDED.requested_at, "
	"       expires_at = EXCLUDED.expires_at "
	"RETURNING to_json(t.expires_at)#>>'{}'",
	8, {INT8OID, INT8OID, INT8OID, BYTEAOID, INT8ARRAYOID, BYTEAOID, BYTEAOID, INT4OID}
};

/*
 * requests no longer of use: their signature is no longer pending (done,
 * failed, withdrawn), or they expired a day ago; a table of prepared PDFs
 * does not grow with signatures that were never answered
 */
static IofficePlan sweep_requests_plan = {
	NULL,
	"DELETE FROM ioffice.token_request t WHERE t.signature_id <> $1 "
	"   AND (t.expires_at < now() - interval '1 day' "
	"        OR NOT EXISTS (SELECT 1 FROM ioffice.signature s "
	"                        WHERE s.id = t.signature_id AND s.status = 'pending'))",
	1, {INT8OID}
};

static IofficePlan read_request_plan = {
	NULL,
	"SELECT t.certificate_id, t.file_id, t.prepared, t.byte_range[1], t.byte_range[2], "
	"       t.byte_range[3], t.byte_range[4], t.content_digest, t.attrs_digest, "
	"       t.expires_at < clock_timestamp(), "
	"       f.superseded_at IS NULL AND f.removed_at IS NULL, f.content, f.name "
	"  FROM ioffice.token_request t JOIN ioffice.file f ON f.id = t.file_id "
	" WHERE t.signature_id = $1",
	1, {INT8OID}
};

static IofficePlan signer_certificate_plan = {
	NULL,
	"SELECT c.id, c.revoked_at IS NULL, now() BETWEEN c.not_before AND c.not_after "
	"  FROM ioffice.certificate c "
	" WHERE c.fingerprint = $1 AND c.kind = 'personal' AND c.person_id = $2",
	2, {BYTEAOID, INT8OID}
};

static IofficePlan done_plan = {
	NULL,
	"UPDATE ioffice.signature SET status = 'done', cms = $2, certificate_id = $3, "
	"       signed_at = clock_timestamp(), reason = NULL, signed_file_id = $4 "
	" WHERE id = $1 AND status = 'pending'",
	4, {INT8OID, BYTEAOID, INT8OID, INT8OID}
};

static IofficePlan forget_request_plan = {
	NULL,
	"DELETE FROM ioffice.token_request WHERE signature_id = $1",
	1, {INT8OID}
};

/* One pending signature as the token path sees it (signature_plan). */
typedef struct TokenSignature
{
	int64		id;
	int64		actor;
	int64		document;
	int64		file;
	int64		signer;
	char	   *kind;
	char	   *status;
	char	   *signer_name;
	IofficePdfLook look;
	int64		certificate;	/* 0: none for the token path */
	bool		keyed;			/* a certificate with a key file: the worker's */
	bool		convertible;	/* a Word or Excel file: the worker converts it first */
	bool		pdf;
} TokenSignature;

static char *
hex_of(const uint8 *b, size_t n)
{
	static const char hexd[] = "0123456789abcdef";
	char	   *s = palloc(n * 2 + 1);

	for (size_t i = 0; i < n; i++)
	{
		s[2 * i] = hexd[b[i] >> 4];
		s[2 * i + 1] = hexd[b[i] & 15];
	}
	s[2 * n] = '\0';
	return s;
}

/* a refusal: logged (the error rolls back anything written), then raised */
static void
refuse(TokenSignature *s, const char *what, int sqlstate, const char *msg, const char *detail)
{
	bool		queued;

	queued = ioffice_worker_note_refusal(s->id, s->document, s->actor,
										 strcmp(what, "the submission") == 0 ? "submit_signature"
										 : "signing_request",
										 unpack_sql_state(sqlstate), msg);
	ereport(LOG,
			(errmsg("ioffice: %s of signature %lld by person %lld refused: %s%s%s",
					what, (long long) s->id, (long long) s->actor, msg,
					detail ? ": " : "", detail ? detail : ""),
			 queued ? 0 : errdetail("The refusal is not in the audit chain: no signing worker serves this database, or its queue is full.")));
	ereport(ERROR,
			(errcode(sqlstate),
			 errmsg("%s", msg),
			 detail ? errdetail("%s", detail) : 0));
}

/*
 * The signature, locked; the caller must be its signer and it must be a
 * pending personal signature of the token path.
 */
static void
read_signature(TokenSignature *s, int64 id, const char *what)
{
	Datum		arg[2];
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	Datum		d;

	memset(s, 0, sizeof(*s));
	s->id = id;
	s->actor = ioffice_resolve_actor(false);
	arg[0] = Int64GetDatum(id);
	/* personal key files count only while the worker signs with them */
	arg[1] = BoolGetDatum(ioffice_keystore_personal);
	if (ioffice_exec(&signature_plan, arg, NULL, 0) != SPI_OK_SELECT)
		elog(ERROR, "ioffice: could not read signature %lld", (long long) id);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("unknown signature %lld", (long long) id)));
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	s->document = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	s->file = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
	s->signer = DatumGetInt64(SPI_getbinval(tup, desc, 3, &isnull));
	s->kind = SPI_getvalue(tup, desc, 4);
	s->status = SPI_getvalue(tup, desc, 5);
	s->signer_name = SPI_getvalue(tup, desc, 6);
	d = SPI_getbinval(tup, desc, 7, &isnull);
	s->look.image = isnull ? NULL : DatumGetByteaPCopy(d);
	d = SPI_getbinval(tup, desc, 8, &isnull);
	s->look.page = isnull ? 0 : DatumGetInt32(d);
	d = SPI_getbinval(tup, desc, 9, &isnull);
	s->look.x = isnull ? 0 : DatumGetFloat8(d);
	d = SPI_getbinval(tup, desc, 10, &isnull);
	s->look.y = isnull ? 0 : DatumGetFloat8(d);
	s->look.reason = SPI_getvalue(tup, desc, 11);
	s->look.corner = SPI_getvalue(tup, desc, 12);
	d = SPI_getbinval(tup, desc, 13, &isnull);
	s->certificate = isnull ? 0 : DatumGetInt64(d);
	s->keyed = DatumGetBool(SPI_getbinval(tup, desc, 14, &isnull));
	s->convertible = DatumGetBool(SPI_getbinval(tup, desc, 15, &isnull));
	d = SPI_getbinval(tup, desc, 16, &isnull);
	s->pdf = !isnull && DatumGetBool(d);

	/*
	 * Someone who may not see the document does not learn that the
	 * signature exists (42704, as for an unknown document), and writes
	 * nothing into its audit chain: only refusals of people who see it
	 * are queued for the chain.
	 */
	if (s->signer != s->actor && !ioffice_document_visible(s->document))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("unknown signature %lld", (long long) id)));
	if (s->signer != s->actor)
		refuse(s, what, ERRCODE_INSUFFICIENT_PRIVILEGE,
			   "only the signer may sign this signature with their own tool",
			   "A delegate never signs for the person who delegated.");
	if (strcmp(s->status, "pending") != 0)
		refuse(s, what, ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
			   psprintf("signature %lld is not pending (it is %s)", (long long) id, s->status), NULL);
	if (strcmp(s->kind, "personal") != 0)
		refuse(s, what, ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
			   "the organisation's signature is made by the system, not with a personal tool", NULL);
	if (s->keyed)
		refuse(s, what, ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
			   "this signature is made by the signing worker",
			   "The signer has a certificate with a key file in the keystore.");
	if (s->certificate == 0)
		refuse(s, what, ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
			   "the signer has no personal certificate that can sign now",
			   "Register the token's certificate with register_certificate(kind, owner, pem).");
}

/* ------------------------------------------------------------------------
 * The CMS: its signed attributes, the external value put in, the checks
 * ------------------------------------------------------------------------
 */

/* the first certificate of a PEM text and the rest (its chain) */
static X509 *
read_pem(const char *pem, STACK_OF(X509) **chain)
{
	BIO		   *bio = BIO_new_mem_buf(pem, -1);
	X509	   *cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	X509	   *extra;

	*chain = sk_X509_new_null();
	while (cert && (extra = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
		sk_X509_push(*chain, extra);
	BIO_free(bio);
	ERR_clear_error();
	if (cert == NULL)
		elog(ERROR, "ioffice: a registered certificate cannot be read");
	return cert;
}

static char *
certificate_pem(int64 id)
{
	Datum		arg[1];

	arg[0] = Int64GetDatum(id);
	if (ioffice_exec(&certificate_plan, arg, NULL, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "ioffice: certificate %lld is gone", (long long) id);
	return ioffice_get_text(0, 1);
}

/*
 * The digest the signer's tool signs: of the signed attributes' DER as they
 * are signed (workers/signer.c builds it for both signers).
 */
static void
signed_attrs_digest(CMS_SignerInfo *si, uint8 *digest)
{
	StringInfoData set;

	initStringInfo(&set);
	if (!ioffice_signed_attrs_der(si, &set))
		elog(ERROR, "ioffice: a signed attribute cannot be encoded");
	ioffice_sha256_bytes(set.data, set.len, digest);
	pfree(set.data);
}

/*
 * A detached CMS with one SignerInfo for CERT (its chain carried along)
 * over content whose SHA-256 is CONTENT_DIGEST: the attributes
 * content-type, message-digest and ESS signing-certificate-v2, no signature
 * yet (CMS_PARTIAL).  The certificate's own public key stands in for the
 * private key, which the system never has: CMS_add1_signer() only checks
 * that the two match and takes the signature algorithm from it.  *si_out:
 * its SignerInfo; attrs_digest: SHA-256 of its signed attributes.
 */
static CMS_ContentInfo *
cms_skeleton(X509 *cert, STACK_OF(X509) *chain, const uint8 *content_digest,
			 CMS_SignerInfo **si_out, uint8 *attrs_digest)
{
	const unsigned int flags = CMS_DETACHED | CMS_BINARY | CMS_PARTIAL | CMS_NOSMIMECAP;
	CMS_ContentInfo *cms;
	CMS_SignerInfo *si = NULL;

	ERR_clear_error();
	cms = CMS_sign(NULL, NULL, chain, NULL, flags);
	if (cms == NULL ||
		(si = CMS_add1_signer(cms, cert, X509_get0_pubkey(cert), EVP_sha256(),
							  flags | CMS_CADES)) == NULL ||
		CMS_signed_add1_attr_by_NID(si, NID_pkcs9_messageDigest, V_ASN1_OCTET_STRING,
									content_digest, SHA256_LEN) != 1 ||
		CMS_signed_add1_attr_by_NID(si, NID_pkcs9_contentType, V_ASN1_OBJECT,
									OBJ_nid2obj(NID_pkcs7_data), -1) != 1)
	{
		unsigned long e = ERR_get_error();

		CMS_ContentInfo_free(cms);
		ERR_clear_error();
		elog(ERROR, "ioffice: the signed attributes cannot be made: %s",
			 e ? ERR_reason_error_string(e) : "unknown error");
	}
	*si_out = si;
	signed_attrs_digest(si, attrs_digest);
	return cms;
}

static bytea *
cms_to_bytea(CMS_ContentInfo *cms)
{
	unsigned char *der = NULL;
	int			len = i2d_CMS_ContentInfo(cms, &der);
	bytea	   *out;

	if (len <= 0)
		elog(ERROR, "ioffice: the CMS cannot be encoded");
	out = ioffice_bytea(der, len);
	OPENSSL_free(der);
	return out;
}

/* What a submission's CMS is judged by. */
typedef struct TokenCheck
{
	int			sqlstate;		/* 0: accepted */
	const char *message;
	const char *detail;
	int64		certificate;	/* the signer's registered certificate that signed */
} TokenCheck;

static void
check_fail(TokenCheck *c, int sqlstate, const char *message, const char *detail)
{
	c->sqlstate = sqlstate;
	c->message = message;
	c->detail = detail;
	ERR_clear_error();
}

/*
 * The signer's certificate in the CMS: registered to SIGNER, not revoked,
 * valid now, its chain (from the CMS) trusted by the registered anchors and
 * revocation lists, as verify() checks it.
 */
static void
check_signer(TokenCheck *c, CMS_ContentInfo *cms, X509 *signer_cert, int64 signer)
{
	uint8		md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	Datum		args[2];
	bool		revoked_ok = false;
	bool		dates_ok = false;
	X509_STORE *store;
	X509_STORE_CTX *ctx;
	STACK_OF(X509) *certs;
	bool		chain_ok;
	int			err = 0;

	if (X509_digest(signer_cert, EVP_sha256(), md, &mdlen) != 1)
	{
		check_fail(c, ERRCODE_INVALID_PARAMETER_VALUE, "the signer's certificate cannot be read", NULL);
		return;
	}
	args[0] = PointerGetDatum(ioffice_bytea(md, mdlen));
	args[1] = Int64GetDatum(signer);
	if (ioffice_exec(&signer_certificate_plan, args, NULL, 1) != SPI_OK_SELECT)
		elog(ERROR, "ioffice: could not read the certificates");
	if (SPI_processed != 1)
	{
		check_fail(c, ERRCODE_INSUFFICIENT_PRIVILEGE,
				   "the signature is not made with a certificate registered to the signer", NULL);
		return;
	}
	ioffice_get_int64(0, 1, &c->certificate);
	ioffice_get_bool(0, 2, &revoked_ok);
	ioffice_get_bool(0, 3, &dates_ok);
	if (!revoked_ok || !dates_ok)
	{
		check_fail(c, ERRCODE_INSUFFICIENT_PRIVILEGE,
				   !revoked_ok ? "the signer's certificate is revoked"
				   : "the signer's certificate is not valid now", NULL);
		return;
	}
	store = (X509_STORE *) ioffice_trust_store();
	ctx = X509_STORE_CTX_new();
	certs = CMS_get1_certs(cms);
	chain_ok = ctx != NULL && X509_STORE_CTX_init(ctx, store, signer_cert, certs) == 1 &&
		X509_verify_cert(ctx) == 1;
	if (!chain_ok && ctx != NULL)
		err = X509_STORE_CTX_get_error(ctx);
	X509_STORE_CTX_free(ctx);
	sk_X509_pop_free(certs, X509_free);
	X509_STORE_free(store);
	if (!chain_ok)
	{
		const char *why = ioffice_chain_reason(err);

		check_fail(c, ERRCODE_INSUFFICIENT_PRIVILEGE, "the signer's certificate is not trusted now",
				   why ? why : X509_verify_cert_error_string(err));
		return;
	}
}

/*
 * The CMS (DER) of a submission: one SignerInfo, detached, verifying over
 * CONTENT, made by the signer's registered certificate.
 */
static void
check_cms(TokenCheck *c, bytea *der, const char *content, size_t content_len, int64 signer)
{
	const unsigned char *p = (const unsigned char *) VARDATA_ANY(der);
	const unsigned char *end = p + VARSIZE_ANY_EXHDR(der);
	CMS_ContentInfo *cms;
	BIO		   *data = NULL;
	STACK_OF(X509) *signers = NULL;

	memset(c, 0, sizeof(*c));
	ERR_clear_error();
	cms = d2i_CMS_ContentInfo(NULL, &p, end - p);
	if (cms == NULL || p != end)
	{
		check_fail(c, ERRCODE_INVALID_PARAMETER_VALUE, "the submitted signature is not a CMS SignedData", NULL);
		goto done;
	}
	if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed || CMS_is_detached(cms) != 1 ||
		sk_CMS_SignerInfo_num(CMS_get0_SignerInfos(cms)) != 1)
	{
		check_fail(c, ERRCODE_INVALID_PARAMETER_VALUE,
				   "the submitted CMS must be a detached SignedData with one signer", NULL);
		goto done;
	}
	/*
	 * nothing unsigned: the signature timestamp is the one the system asks
	 * its TSA for and adds (timestamp.c, verify()); one brought along would
	 * be judged in its place, and is foreign data a reader would parse
	 */
	if (CMS_unsigned_get_attr_count(sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0)) > 0)
	{
		check_fail(c, ERRCODE_INVALID_PARAMETER_VALUE,
				   "the submitted CMS must carry no unsigned attributes",
				   "the system adds the signature timestamp itself");
		goto done;
	}
	{
		/* SHA-1 and MD5 are broken for signatures: SHA-2 only */
		X509_ALGOR *digalg = NULL;
		const ASN1_OBJECT *obj = NULL;
		int			nid;

		CMS_SignerInfo_get0_algs(sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0),
								 NULL, NULL, &digalg, NULL);
		if (digalg != NULL)
			X509_ALGOR_get0(&obj, NULL, NULL, digalg);
		nid = obj ? OBJ_obj2nid(obj) : NID_undef;
		if (nid != NID_sha256 && nid != NID_sha384 && nid != NID_sha512)
		{
			check_fail(c, ERRCODE_INVALID_PARAMETER_VALUE,
					   "the submitted CMS must use SHA-256, SHA-384 or SHA-512", NULL);
			goto done;
		}
	}
	data = BIO_new_mem_buf(content, (int) content_len);
	if (CMS_verify(cms, NULL, NULL, data, NULL,
				   CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY) != 1)
	{
		unsigned long e = ERR_peek_last_error();

		check_fail(c, ERRCODE_INVALID_PARAMETER_VALUE,
				   "the signature does not verify over the prepared bytes",
				   e ? ERR_reason_error_string(e) : NULL);
		goto done;
	}
	signers = CMS_get0_signers(cms);
	if (signers == NULL || sk_X509_num(signers) != 1)
	{
		check_fail(c, ERRCODE_INVALID_PARAMETER_VALUE, "the signature names no signer", NULL);
		goto done;
	}
	check_signer(c, cms, sk_X509_value(signers, 0), signer);

done:
	ERR_clear_error();
	sk_X509_free(signers);
	BIO_free(data);
	CMS_ContentInfo_free(cms);
}

/* ------------------------------------------------------------------------
 * signing_request(signature)
 * ------------------------------------------------------------------------
 */

/* the prepared PDF or the detached file, and the digests of the request */
typedef struct Prepared
{
	int64		file;			/* the version signed */
	const char *pdf;			/* the prepared update; NULL: detached */
	size_t		len;
	int64		br[4];
	uint8		content_digest[SHA256_LEN];
	uint8		attrs_digest[SHA256_LEN];
} Prepared;

static void
prepare_content(TokenSignature *s, Prepared *pr)
{
	Datum		arg[1];
	bool		isnull;

	memset(pr, 0, sizeof(*pr));
	if (s->convertible)
		refuse(s, "the signing request", ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
			   "the file waits for its conversion to PDF", NULL);
	if (s->pdf)
	{
		IofficePdfPrepared p = ioffice_pdf_prepare(s->file, s->signer_name, "personal",
												   &s->look, false);

		if (p.ok)
		{
			pr->file = p.target;
			pr->pdf = p.pdf;
			pr->len = p.len;
			memcpy(pr->br, p.br, sizeof(pr->br));
			memcpy(pr->content_digest, p.digest, SHA256_LEN);
			return;
		}
		if (!p.not_pdf)
			refuse(s, "the signing request", ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
				   "the PDF cannot be prepared for signing", p.reason);
		/* a "PDF" the library cannot read: signed detached, as the worker does */
	}
	arg[0] = Int64GetDatum(s->file);
	if (ioffice_exec(&detached_target_plan, arg, NULL, 1) != SPI_OK_SELECT || SPI_processed != 1)
		refuse(s, "the signing request", ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
			   "the file was replaced or removed", NULL);
	pr->file = s->file;
	{
		bytea	   *sha = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0],
														SPI_tuptable->tupdesc, 3, &isnull));

		if (isnull || VARSIZE_ANY_EXHDR(sha) != SHA256_LEN)
			elog(ERROR, "ioffice: file %lld has no SHA-256", (long long) s->file);
		memcpy(pr->content_digest, VARDATA_ANY(sha), SHA256_LEN);
	}
}

/* the request kept in token_request; returns its expiry (ISO 8601) */
static char *
keep_request(TokenSignature *s, Prepared *pr)
{
	Datum		v[8];
	char		n[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	Datum		br[4];

	v[0] = Int64GetDatum(s->id);
	v[1] = Int64GetDatum(s->certificate);
	v[2] = Int64GetDatum(pr->file);
	if (pr->pdf)
	{
		v[3] = PointerGetDatum(ioffice_bytea(pr->pdf, pr->len));
		for (int i = 0; i < 4; i++)
			br[i] = Int64GetDatum(pr->br[i]);
		v[4] = PointerGetDatum(construct_array(br, 4, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	}
	else
	{
		n[3] = 'n';
		n[4] = 'n';
	}
	v[5] = PointerGetDatum(ioffice_bytea(pr->content_digest, SHA256_LEN));
	v[6] = PointerGetDatum(ioffice_bytea(pr->attrs_digest, SHA256_LEN));
	v[7] = Int32GetDatum(ioffice_signing_request_ttl);
	ioffice_exec(&sweep_requests_plan, v, NULL, 0);
	if (ioffice_exec(&keep_request_plan, v, n, 0) != SPI_OK_INSERT_RETURNING || SPI_processed != 1)
		elog(ERROR, "ioffice: the signing request could not be kept");
	return ioffice_get_text(0, 1);
}

static char *
base64_of(const char *data, size_t len)
{
	int			enc_len = pg_b64_enc_len((int) len);
	char	   *out = palloc(enc_len + 1);
	int			n = pg_b64_encode(data, (int) len, out, enc_len);

	if (n < 0)
		elog(ERROR, "ioffice: base64 encoding failed");
	out[n] = '\0';
	return out;
}

/* the algorithm the tool signs the digest with, by the certificate's key */
static const char *
algorithm_of(X509 *cert)
{
	EVP_PKEY   *key = X509_get0_pubkey(cert);

	if (key != NULL && EVP_PKEY_is_a(key, "EC"))
		return "ecdsa-with-SHA256";
	return "sha256WithRSAEncryption";
}

/*
 * signing_request(signature) → jsonb: for the signer's own tool.
 *   digest            hex SHA-256 of the DER signed attributes: what a
 *                     hash-signing tool signs (as a SHA-256 hash)
 *   algorithm         sha256WithRSAEncryption (PKCS#1 v1.5) or
 *                     ecdsa-with-SHA256 (DER ECDSA-Sig-Value)
 *   content_digest    hex SHA-256 of the /ByteRange's bytes (or the file)
 *   expires_at        until when submit_signature() accepts an answer
 *   certificate       the registered certificate the attributes name
 *   pdf, byte_range   base64 of the prepared PDF, its /ByteRange (PDFs)
 */
Datum
ioffice_signing_request(PG_FUNCTION_ARGS)
{
	TokenSignature s;
	Prepared	pr;
	X509	   *cert;
	STACK_OF(X509) *chain;
	CMS_ContentInfo *cms;
	CMS_SignerInfo *si;
	char	   *expires;
	StringInfoData json;
	Jsonb	   *result;
	JsonbBuild *detail;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("signing_request needs a signature")));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	ioffice_engine_enter();
	read_signature(&s, PG_GETARG_INT64(0), "the signing request");
	prepare_content(&s, &pr);

	cert = read_pem(certificate_pem(s.certificate), &chain);
	cms = cms_skeleton(cert, chain, pr.content_digest, &si, pr.attrs_digest);
	CMS_ContentInfo_free(cms);

	expires = keep_request(&s, &pr);

	detail = ioffice_jsonb_begin();
	ioffice_jsonb_add_int(detail, "file", pr.file);
	ioffice_jsonb_add_int(detail, "certificate", s.certificate);
	ioffice_jsonb_add_text(detail, "digest", hex_of(pr.attrs_digest, SHA256_LEN));
	ioffice_jsonb_add_text(detail, "content_digest", hex_of(pr.content_digest, SHA256_LEN));
	ioffice_jsonb_add_text(detail, "expires_at", expires);
	ioffice_audit_in_chain(ioffice_document_chain(s.document), s.actor, 0, "signature", s.id,
						   "signing_requested", "pending", "pending", ioffice_jsonb_end(detail));

	initStringInfo(&json);
	appendStringInfo(&json, "{\"signature\": %lld, \"digest\": \"%s\", \"algorithm\": \"%s\", "
					 "\"hash\": \"sha256\", \"content_digest\": \"%s\", \"certificate\": %lld, "
					 "\"expires_at\": \"%s\"",
					 (long long) s.id, hex_of(pr.attrs_digest, SHA256_LEN), algorithm_of(cert),
					 hex_of(pr.content_digest, SHA256_LEN), (long long) s.certificate, expires);
	if (pr.pdf)
		appendStringInfo(&json, ", \"byte_range\": [%lld, %lld, %lld, %lld], \"pdf\": \"%s\"",
						 (long long) pr.br[0], (long long) pr.br[1], (long long) pr.br[2],
						 (long long) pr.br[3], base64_of(pr.pdf, pr.len));
	appendStringInfoChar(&json, '}');
	X509_free(cert);
	sk_X509_pop_free(chain, X509_free);

	result = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(json.data)));
	{
		Jsonb	   *copy = SPI_palloc(VARSIZE(result));

		memcpy(copy, result, VARSIZE(result));
		result = copy;
	}
	ioffice_engine_leave();
	SPI_finish();
	PG_RETURN_JSONB_P(result);
}

/* ------------------------------------------------------------------------
 * submit_signature(signature, signed)
 * ------------------------------------------------------------------------
 */

/* the kept request of a signature */
typedef struct KeptRequest
{
	int64		certificate;
	int64		file;
	bytea	   *prepared;		/* NULL: detached */
	int64		br[4];
	uint8		content_digest[SHA256_LEN];
	uint8		attrs_digest[SHA256_LEN];
	bool		expired;
	bool		current;
	bytea	   *file_content;
	char	   *file_name;
} KeptRequest;

static void
read_request(TokenSignature *s, KeptRequest *k)
{
	Datum		arg[1];
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	Datum		d;
	bytea	   *b;

	memset(k, 0, sizeof(*k));
	arg[0] = Int64GetDatum(s->id);
	if (ioffice_exec(&read_request_plan, arg, NULL, 1) != SPI_OK_SELECT)
		elog(ERROR, "ioffice: could not read the signing request");
	if (SPI_processed != 1)
		refuse(s, "the submission", ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
			   "the signature has no signing request",
			   "Call signing_request() first, and sign what it returns.");
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	k->certificate = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	k->file = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
	d = SPI_getbinval(tup, desc, 3, &isnull);
	k->prepared = isnull ? NULL : DatumGetByteaPCopy(d);
	for (int i = 0; i < 4; i++)
	{
		d = SPI_getbinval(tup, desc, 4 + i, &isnull);
		k->br[i] = isnull ? 0 : DatumGetInt64(d);
	}
	b = DatumGetByteaPP(SPI_getbinval(tup, desc, 8, &isnull));
	memcpy(k->content_digest, VARDATA_ANY(b), SHA256_LEN);
	b = DatumGetByteaPP(SPI_getbinval(tup, desc, 9, &isnull));
	memcpy(k->attrs_digest, VARDATA_ANY(b), SHA256_LEN);
	k->expired = DatumGetBool(SPI_getbinval(tup, desc, 10, &isnull));
	k->current = DatumGetBool(SPI_getbinval(tup, desc, 11, &isnull));
	k->file_content = DatumGetByteaPCopy(SPI_getbinval(tup, desc, 12, &isnull));
	k->file_name = SPI_getvalue(tup, desc, 13);

	if (k->expired)
		refuse(s, "the submission", ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
			   "the signing request has expired", "Call signing_request() again.");
	if (!k->current)
		refuse(s, "the submission", ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
			   "the file changed after the signing request", "Call signing_request() again.");
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * The CMS inside a submitted PDF: the PDF must be the prepared one byte for
 * byte outside the placeholder's hex; the hex is one DER object, then
 * zeros.
 */
static bytea *
cms_in_pdf(TokenSignature *s, KeptRequest *k, const char *sub, size_t len)
{
	const char *prep = VARDATA_ANY(k->prepared);
	size_t		prep_len = VARSIZE_ANY_EXHDR(k->prepared);
	size_t		from = k->br[1] + 1;	/* the first hex digit */
	size_t		to = k->br[2] - 1;	/* the closing '>' */
	size_t		n = (to - from) / 2;
	unsigned char *raw;
	const unsigned char *p;
	long		body;
	int			tag,
				xclass;
	size_t		der_len;

	if (len != prep_len)
		refuse(s, "the submission", ERRCODE_INVALID_PARAMETER_VALUE,
			   "the signed PDF is not the prepared revision",
			   "Its length differs: only the hex inside /Contents may be filled in.");
	if (memcmp(sub, prep, from) != 0 || memcmp(sub + to, prep + to, len - to) != 0)
		refuse(s, "the submission", ERRCODE_INVALID_PARAMETER_VALUE,
			   "the signed PDF is not the prepared revision",
			   "Bytes outside the /Contents placeholder were changed.");
	raw = palloc(n);
	for (size_t i = 0; i < n; i++)
	{
		int			hi = hex_value(sub[from + 2 * i]);
		int			lo = hex_value(sub[from + 2 * i + 1]);

		if (hi < 0 || lo < 0)
			refuse(s, "the submission", ERRCODE_INVALID_PARAMETER_VALUE,
				   "the signed PDF's /Contents is not hexadecimal", NULL);
		raw[i] = (unsigned char) (hi << 4 | lo);
	}
	p = raw;
	if (n == 0 || (ASN1_get_object(&p, &body, &tag, &xclass, (long) n) & 0x80) ||
		(size_t) (p - raw) + body > n)
	{
		ERR_clear_error();
		refuse(s, "the submission", ERRCODE_INVALID_PARAMETER_VALUE,
			   "the signed PDF's /Contents holds no signature", NULL);
	}
	der_len = (p - raw) + body;
	for (size_t i = der_len; i < n; i++)
		if (raw[i] != 0)
			refuse(s, "the submission", ERRCODE_INVALID_PARAMETER_VALUE,
				   "the signed PDF's /Contents holds more than one signature", NULL);
	return ioffice_bytea(raw, der_len);
}

/*
 * A bare signature value over the request's signed attributes, put into
 * the CMS built again from the same attributes (see cms_skeleton()).
 */
static bytea *
cms_from_value(int64 signature, int64 certificate, const uint8 *content_digest,
			   const uint8 *attrs_digest, const char *value, size_t len)
{
	X509	   *cert;
	STACK_OF(X509) *chain;
	CMS_ContentInfo *cms;
	CMS_SignerInfo *si;
	uint8		attrs[SHA256_LEN];
	bytea	   *der;

	cert = read_pem(certificate_pem(certificate), &chain);
	cms = cms_skeleton(cert, chain, content_digest, &si, attrs);
	/* (OpenSSL's objects are malloc'd: freed before any error is raised) */
	if (memcmp(attrs, attrs_digest, SHA256_LEN) != 0 ||
		ASN1_STRING_set(CMS_SignerInfo_get0_signature(si), value, (int) len) != 1)
	{
		bool		changed = memcmp(attrs, attrs_digest, SHA256_LEN) != 0;

		CMS_ContentInfo_free(cms);
		X509_free(cert);
		sk_X509_pop_free(chain, X509_free);
		if (changed)
			elog(ERROR, "ioffice: the signed attributes of signature %lld changed", (long long) signature);
		elog(ERROR, "ioffice: the signature value cannot be set");
	}
	der = cms_to_bytea(cms);
	CMS_ContentInfo_free(cms);
	X509_free(cert);
	sk_X509_pop_free(chain, X509_free);
	return der;
}

/* a DER CMS, by its outer structure alone (SEQUENCE, contentType signedData) */
static bool
looks_like_cms(const char *b, size_t len)
{
	static const unsigned char signed_data[] = {
	0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x02};

	return len > 32 && (unsigned char) b[0] == 0x30 &&
		memmem(b, Min(len, 16), signed_data, sizeof(signed_data)) != NULL;
}

Datum
ioffice_submit_signature(PG_FUNCTION_ARGS)
{
	TokenSignature s;
	KeptRequest k;
	bytea	   *sub;
	const char *b;
	size_t		len;
	bytea	   *der;
	const char *form;
	StringInfoData content;
	TokenCheck	c;
	int64		signed_file = 0;
	Datum		v[4];
	char		n[4] = {' ', ' ', ' ', ' '};
	JsonbBuild *detail;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("submit_signature needs a signature and the signed bytes")));
	sub = PG_GETARG_BYTEA_PP(1);
	b = VARDATA_ANY(sub);
	len = VARSIZE_ANY_EXHDR(sub);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	ioffice_engine_enter();
	read_signature(&s, PG_GETARG_INT64(0), "the submission");
	read_request(&s, &k);

	/* the bytes signed: the /ByteRange of the prepared PDF, or the file */
	initStringInfo(&content);
	if (k.prepared)
	{
		const char *prep = VARDATA_ANY(k.prepared);

		appendBinaryStringInfo(&content, prep, k.br[1]);
		appendBinaryStringInfo(&content, prep + k.br[2], k.br[3]);
	}
	else
		appendBinaryStringInfo(&content, VARDATA_ANY(k.file_content),
							   VARSIZE_ANY_EXHDR(k.file_content));

	/* the three forms, each made a CMS */
	if (len >= 5 && memcmp(b, "%PDF-", 5) == 0)
	{
		if (k.prepared == NULL)
			refuse(&s, "the submission", ERRCODE_INVALID_PARAMETER_VALUE,
				   "this signature is a detached one: submit the CMS or the signature value", NULL);
		form = "pdf";
		der = cms_in_pdf(&s, &k, b, len);
	}
	else if (looks_like_cms(b, len))
	{
		form = "cms";
		der = ioffice_bytea(b, len);
	}
	else
	{
		if (len == 0 || len > 1024)
			refuse(&s, "the submission", ERRCODE_INVALID_PARAMETER_VALUE,
				   "the submitted bytes are no signed PDF, CMS or signature value", NULL);
		form = "value";
		der = cms_from_value(s.id, k.certificate, k.content_digest, k.attrs_digest, b, len);
	}

	check_cms(&c, der, content.data, content.len, s.signer);
	if (c.sqlstate != 0)
		refuse(&s, "the submission", c.sqlstate, c.message, c.detail);

	/*
	 * PAdES B-T: the system adds the signature timestamp to the accepted
	 * CMS (workers/timestamp.c).  A TSA that cannot give one refuses the
	 * submission: the signature stays pending, the signer submits again.
	 */
	if (ioffice_timestamp_wanted())
	{
		char	   *why = NULL;
		bytea	   *stamped = ioffice_timestamp_cms(der, &why);

		if (stamped == NULL)
			refuse(&s, "the submission", ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
				   "the signature cannot be timestamped now", why);
		der = stamped;
	}

	/* as the worker records its signature */
	if (k.prepared)
	{
		char	   *signed_pdf = ioffice_pdf_embed(VARDATA_ANY(k.prepared),
												   VARSIZE_ANY_EXHDR(k.prepared), k.br, der);
		size_t		signed_len = VARSIZE_ANY_EXHDR(k.prepared);

		if (signed_pdf == NULL)
			refuse(&s, "the submission", ERRCODE_INVALID_PARAMETER_VALUE,
				   "the signature does not fit the room reserved in the PDF", NULL);
		/* PAdES B-LT: the chains and lists in the document security store */
		if (ioffice_timestamp_wanted())
		{
			char	   *why = NULL;

			signed_pdf = ioffice_pdf_add_dss(signed_pdf, signed_len, der, false, &signed_len, &why);
			if (signed_pdf == NULL)
				refuse(&s, "the submission", ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
					   "the document security store cannot be written now", why);
		}
		signed_file = ioffice_pdf_store_version(s.document, k.file_name, k.file, s.signer,
												signed_pdf, signed_len);
	}
	v[0] = Int64GetDatum(s.id);
	v[1] = PointerGetDatum(der);
	v[2] = Int64GetDatum(c.certificate);
	v[3] = Int64GetDatum(signed_file);
	n[3] = signed_file ? ' ' : 'n';
	if (ioffice_exec(&done_plan, v, n, 0) != SPI_OK_UPDATE || SPI_processed != 1)
		elog(ERROR, "ioffice: could not record signature %lld", (long long) s.id);
	ioffice_exec(&forget_request_plan, v, NULL, 0);

	detail = ioffice_jsonb_begin();
	ioffice_jsonb_add_int(detail, "file", k.file);
	ioffice_jsonb_add_text(detail, "kind", "personal");
	ioffice_jsonb_add_int(detail, "certificate", c.certificate);
	if (signed_file)
		ioffice_jsonb_add_int(detail, "signed_file", signed_file);
	ioffice_jsonb_add_text(detail, "via", "token");
	ioffice_jsonb_add_text(detail, "form", form);
	ioffice_audit_in_chain(ioffice_document_chain(s.document), s.actor, 0, "signature", s.id,
						   "signed", "pending", "done", ioffice_jsonb_end(detail));
	ioffice_engine_leave();
	SPI_finish();
	PG_RETURN_TEXT_P(cstring_to_text("done"));
}

/* ------------------------------------------------------------------------
 * For the remote path (workers/remote_signing.c): the same preparation of
 * the signed attributes, the same reduction of an answer to a CMS and the
 * same checks, without a caller to refuse.
 * ------------------------------------------------------------------------
 */

/*
 * The digest a service signs for CERTIFICATE over content whose SHA-256 is
 * CONTENT_DIGEST (the signed attributes' SHA-256, as signing_request()
 * hands it out); returns the signature algorithm's name.
 */
const char *
ioffice_token_attrs_digest(int64 certificate, const uint8 *content_digest, uint8 *attrs_digest)
{
	X509	   *cert;
	STACK_OF(X509) *chain;
	CMS_ContentInfo *cms;
	CMS_SignerInfo *si;
	const char *algorithm;

	cert = read_pem(certificate_pem(certificate), &chain);
	cms = cms_skeleton(cert, chain, content_digest, &si, attrs_digest);
	CMS_ContentInfo_free(cms);
	algorithm = algorithm_of(cert);
	X509_free(cert);
	sk_X509_pop_free(chain, X509_free);
	return algorithm;
}

/*
 * A service's answer made the detached CMS over CONTENT, and checked as
 * submit_signature() checks a submission: a CMS SignedData, or the bare
 * signature value over ATTRS_DIGEST put into the SignerInfo built again;
 * it must verify and be made with a certificate registered to SIGNER,
 * trusted, not revoked, valid now.  Returns NULL with *message (and
 * *detail, or NULL) when it is not acceptable; else the CMS, *signed_by
 * the certificate that made it and *form "cms" or "value".
 */
bytea *
ioffice_token_answer_cms(int64 signature, int64 certificate, const uint8 *content_digest,
						 const uint8 *attrs_digest, const char *answer, size_t len,
						 const char *content, size_t content_len, int64 signer,
						 int64 *signed_by, const char **form, const char **message,
						 const char **detail)
{
	bytea	   *der;
	TokenCheck	c;

	*message = NULL;
	*detail = NULL;
	if (looks_like_cms(answer, len))
	{
		*form = "cms";
		der = ioffice_bytea(answer, len);
	}
	else
	{
		if (len == 0 || len > 1024)
		{
			*message = "the answer is no CMS or signature value";
			return NULL;
		}
		*form = "value";
		der = cms_from_value(signature, certificate, content_digest, attrs_digest, answer, len);
	}
	check_cms(&c, der, content, content_len, signer);
	if (c.sqlstate != 0)
	{
		*message = c.message;
		*detail = c.detail;
		return NULL;
	}
	*signed_by = c.certificate;
	return der;
}
