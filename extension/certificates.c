/*-------------------------------------------------------------------------
 * certificates.c
 *	  X.509 certificates, trust anchors and revocation lists registered in
 *	  SQL, and verify(): every signature of a file checked against them.
 *
 * Only public material is handled here; private keys stay in the
 * worker's keystore (workers/signer.c).  Verification is in two steps so
 * that the reason of a failure can be told apart: first the signature
 * against the file's bytes (content changed), then the signer's chain
 * against the registered anchors and CRLs at the present time (untrusted,
 * expired, not yet valid, revoked).  Certificates are accepted for any
 * purpose: the ones Vietnamese CAs issue carry keyUsage digitalSignature
 * and nonRepudiation without the S/MIME extended key usage that OpenSSL's
 * default CMS purpose would demand.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ts.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "catalog/pg_type.h"
#include "common/string.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "ioffice.h"

static char *
x509_name_text(const X509_NAME *name)
{
	BIO		   *bio = BIO_new(BIO_s_mem());
	BUF_MEM    *mem;
	char	   *s;

	if (bio == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	/*
	 * RFC 2253, every string converted to UTF-8 and left unescaped:
	 * Vietnamese names stay readable.  Then into the database's encoding.
	 */
	if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0)
	{
		BIO_free(bio);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a name in the certificate cannot be read")));
	}
	BIO_get_mem_ptr(bio, &mem);
	s = pnstrdup(mem->data, mem->length);
	BIO_free(bio);
	return pg_any_to_server(s, strlen(s), PG_UTF8);
}

static char *
time_text(const ASN1_TIME *t)
{
	struct tm	tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return NULL;
	return psprintf("%04d-%02d-%02d %02d:%02d:%02d+00", tm.tm_year + 1900, tm.tm_mon + 1,
					tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static X509 *
read_certificate(text *pem_t)
{
	char	   *pem = text_to_cstring(pem_t);
	BIO		   *bio = BIO_new_mem_buf(pem, -1);
	X509	   *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);

	BIO_free(bio);
	ERR_clear_error();
	if (x == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("not a PEM certificate"),
				 errhint("Give the certificate as \"-----BEGIN CERTIFICATE-----\" text.")));
	return x;
}

/* a certificate's subject as x509_name_text() gives it (for audit_sign.c) */
char *
ioffice_x509_subject_text(const void *cert)
{
	return x509_name_text(X509_get_subject_name((const X509 *) cert));
}

/*
 * _x509_info(pem) → (subject, issuer, serial, not_before, not_after,
 * fingerprint, is_ca, signs): what the registering SQL functions store.
 */
PG_FUNCTION_INFO_V1(ioffice_x509_info);
Datum
ioffice_x509_info(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	X509	   *x;
	Datum		v[8];
	bool		n[8] = {false, false, false, false, false, false, false, false};
	BIGNUM	   *bn;
	char	   *hex;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen;
	char	   *nb,
			   *na;
	uint32_t	ku;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "ioffice: _x509_info must return a record");
	desc = BlessTupleDesc(desc);
	x = read_certificate(PG_GETARG_TEXT_PP(0));

	v[0] = CStringGetTextDatum(x509_name_text(X509_get_subject_name(x)));
	v[1] = CStringGetTextDatum(x509_name_text(X509_get_issuer_name(x)));
	bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	hex = BN_bn2hex(bn);
	v[2] = CStringGetTextDatum(hex);
	OPENSSL_free(hex);
	BN_free(bn);
	nb = time_text(X509_get0_notBefore(x));
	na = time_text(X509_get0_notAfter(x));
	v[3] = nb ? ioffice_datetime_in(nb, TIMESTAMPTZOID) : (Datum) 0;
	n[3] = nb == NULL;
	v[4] = na ? ioffice_datetime_in(na, TIMESTAMPTZOID) : (Datum) 0;
	n[4] = na == NULL;
	X509_digest(x, EVP_sha256(), md, &mdlen);
	v[5] = PointerGetDatum(ioffice_bytea(md, mdlen));
	v[6] = BoolGetDatum(X509_check_ca(x) > 0);
	ku = X509_get_key_usage(x);
	v[7] = BoolGetDatum((ku & (KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION)) != 0);
	X509_free(x);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, v, n)));
}

/* _crl_serials(pem) → (issuer, this_update, next_update, serials text[]) */
PG_FUNCTION_INFO_V1(ioffice_crl_info);
Datum
ioffice_crl_info(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	char	   *pem = text_to_cstring(PG_GETARG_TEXT_PP(0));
	BIO		   *bio = BIO_new_mem_buf(pem, -1);
	X509_CRL   *crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
	STACK_OF(X509_REVOKED) *revoked;
	Datum		v[4];
	bool		n[4] = {false, false, false, false};
	Datum	   *serials;
	int			count;
	int			i;
	char	   *t;

	BIO_free(bio);
	ERR_clear_error();
	if (crl == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("not a PEM certificate revocation list"),
				 errhint("Give the CRL as \"-----BEGIN X509 CRL-----\" text.")));
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "ioffice: _crl_info must return a record");
	desc = BlessTupleDesc(desc);

	v[0] = CStringGetTextDatum(x509_name_text(X509_CRL_get_issuer(crl)));
	t = time_text(X509_CRL_get0_lastUpdate(crl));
	v[1] = t ? ioffice_datetime_in(t, TIMESTAMPTZOID) : (Datum) 0;
	n[1] = t == NULL;
	t = time_text(X509_CRL_get0_nextUpdate(crl));
	v[2] = t ? ioffice_datetime_in(t, TIMESTAMPTZOID) : (Datum) 0;
	n[2] = t == NULL;
	revoked = X509_CRL_get_REVOKED(crl);
	count = revoked ? sk_X509_REVOKED_num(revoked) : 0;
	serials = palloc(sizeof(Datum) * Max(count, 1));
	for (i = 0; i < count; i++)
	{
		X509_REVOKED *r = sk_X509_REVOKED_value(revoked, i);
		BIGNUM	   *bn = ASN1_INTEGER_to_BN(X509_REVOKED_get0_serialNumber(r), NULL);
		char	   *hex = BN_bn2hex(bn);

		serials[i] = CStringGetTextDatum(hex);
		OPENSSL_free(hex);
		BN_free(bn);
	}
	v[3] = PointerGetDatum(construct_array(serials, count, TEXTOID, -1, false, TYPALIGN_INT));
	X509_CRL_free(crl);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, v, n)));
}

/* ------------------------------------------------------------------------
 * verify(file)
 * ------------------------------------------------------------------------
 */
const char *
ioffice_chain_reason(int err)
{
	switch (err)
	{
		case X509_V_ERR_CERT_HAS_EXPIRED:
			return "expired";
		case X509_V_ERR_CERT_NOT_YET_VALID:
			return "not yet valid";
		case X509_V_ERR_CERT_REVOKED:
			return "revoked";
		case X509_V_ERR_UNABLE_TO_GET_CRL:
			return "revocation unknown: no revocation list registered for the issuer";
		case X509_V_ERR_CRL_HAS_EXPIRED:
			return "revocation unknown: the registered revocation list is out of date";
		default:
			return NULL;
	}
}

static X509_STORE *
build_store(void)
{
	X509_STORE *store = X509_STORE_new();
	uint64		i;
	bool		any_crl = false;

	if (SPI_execute("SELECT pem, 'anchor' FROM ioffice.trust_anchor "
					"UNION ALL SELECT pem, 'crl' FROM ioffice.crl", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "ioffice: could not read the trust anchors");
	for (i = 0; i < SPI_processed; i++)
	{
		char	   *pem = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		char	   *what = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
		BIO		   *bio = BIO_new_mem_buf(pem, -1);

		if (strcmp(what, "anchor") == 0)
		{
			X509	   *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);

			if (x)
			{
				X509_STORE_add_cert(store, x);
				X509_free(x);
			}
		}
		else
		{
			X509_CRL   *crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);

			if (crl)
			{
				X509_STORE_add_crl(store, crl);
				X509_CRL_free(crl);
				any_crl = true;
			}
		}
		BIO_free(bio);
	}
	ERR_clear_error();
	/* revocation is checked for the signer's certificate when lists exist */
	if (any_crl)
		X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
	X509_STORE_set_purpose(store, X509_PURPOSE_ANY);
	return store;
}

/* the registered anchors and revocation lists (for token_signing.c); X509_STORE_free it */
struct x509_store_st *
ioffice_trust_store(void)
{
	return build_store();
}

typedef struct Verdict
{
	bool		valid;
	const char *reason;
	char	   *subject;
	const char *level;			/* PAdES baseline level reached, when valid */
	bool		timestamped;	/* a signature timestamp that verifies */
	TimestampTz timestamp_at;	/* its genTime */
	bool		has_fingerprint;	/* the signer's certificate was read: */
	unsigned char fingerprint[32];	/* the SHA-256 of its DER */
} Verdict;

static int	hex_value(char c);

/* an ASN1_GENERALIZEDTIME as a timestamptz (its seconds) */
static bool
asn1_time_tz(const ASN1_TIME *t, TimestampTz *out, time_t *secs)
{
	struct tm	tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return false;
	*secs = timegm(&tm);
	*out = time_t_to_timestamptz(*secs);
	return true;
}

/*
 * The signature timestamp of SI (id-aa-signatureTimeStampToken, PAdES B-T),
 * when it has one that verifies: granted by a certificate with the
 * timeStamping purpose that chains to a registered anchor at the time it
 * states, over the SHA-256 of SI's signature value.  Sets the verdict's
 * timestamp, or says in *problem why the token present is not taken.
 * The TSA's chain is checked at its genTime, not now: the token is what
 * proves the signature existed then, and the TSA's certificate may expire
 * later as the signer's does (revocation of the TSA is not looked up: its
 * CA's list is not one the agency registers).
 */
static void
check_timestamp(Verdict *v, CMS_SignerInfo *si, const char **problem)
{
	int			idx = CMS_unsigned_get_attr_by_NID(si, NID_id_smime_aa_timeStampToken, -1);
	X509_ATTRIBUTE *attr;
	ASN1_TYPE  *type;
	const unsigned char *p;
	PKCS7	   *token = NULL;
	TS_TST_INFO *info = NULL;
	TS_VERIFY_CTX *ctx = NULL;
	X509_STORE *store = NULL;
	ASN1_OCTET_STRING *sigval = CMS_SignerInfo_get0_signature(si);
	unsigned char *imprint = NULL;
	TimestampTz at;
	time_t		secs;

	*problem = NULL;
	if (idx < 0)
		return;
	attr = CMS_unsigned_get_attr(si, idx);
	type = attr ? X509_ATTRIBUTE_get0_type(attr, 0) : NULL;
	if (type == NULL || type->type != V_ASN1_SEQUENCE)
	{
		*problem = "its timestamp cannot be read";
		return;
	}
	p = type->value.sequence->data;
	token = d2i_PKCS7(NULL, &p, type->value.sequence->length);
	info = token ? PKCS7_to_TS_TST_INFO(token) : NULL;
	if (info == NULL || !asn1_time_tz(TS_TST_INFO_get_time(info), &at, &secs))
	{
		*problem = "its timestamp cannot be read";
		goto done;
	}
	imprint = OPENSSL_malloc(SHA256_DIGEST_LENGTH);
	store = ioffice_trust_store();
	ctx = TS_VERIFY_CTX_new();
	if (imprint == NULL || store == NULL || ctx == NULL)
	{
		*problem = "its timestamp cannot be checked";
		goto done;
	}
	SHA256(ASN1_STRING_get0_data(sigval), ASN1_STRING_length(sigval), imprint);
	X509_VERIFY_PARAM_clear_flags(X509_STORE_get0_param(store), X509_V_FLAG_CRL_CHECK);
	X509_VERIFY_PARAM_set_time(X509_STORE_get0_param(store), secs);
	TS_VERIFY_CTX_set_flags(ctx, TS_VFY_VERSION | TS_VFY_SIGNATURE | TS_VFY_IMPRINT);
	TS_VERIFY_CTX_set_imprint(ctx, imprint, SHA256_DIGEST_LENGTH);
	imprint = NULL;				/* the context frees them */
	TS_VERIFY_CTX_set_store(ctx, store);
	store = NULL;
	if (TS_RESP_verify_token(ctx, token) != 1)
	{
		unsigned long err = ERR_peek_last_error();

		*problem = psprintf("its timestamp does not verify: %s",
							ERR_reason_error_string(err) ? ERR_reason_error_string(err) : "unknown error");
		goto done;
	}
	v->timestamped = true;
	v->timestamp_at = at;
done:
	ERR_clear_error();
	OPENSSL_free(imprint);
	X509_STORE_free(store);
	TS_VERIFY_CTX_free(ctx);
	TS_TST_INFO_free(info);
	PKCS7_free(token);
}

/*
 * NULL when the signer's chain verifies at AT (the signature's timestamp),
 * else NOW_REASON (why it fails now)
 */
static const char *
signed_in_time(X509_STORE *store, X509 *signer, STACK_OF(X509) *certs, TimestampTz at,
			   const char *now_reason, STACK_OF(X509) **chain)
{
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	bool		ok;

	ok = ctx != NULL && X509_STORE_CTX_init(ctx, store, signer, certs) == 1;
	if (ok)
	{
		X509_STORE_CTX_set_time(ctx, 0, timestamptz_to_time_t(at));
		ok = X509_verify_cert(ctx) == 1;
	}
	if (ok)
		*chain = X509_STORE_CTX_get1_chain(ctx);
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	return ok ? NULL : now_reason;
}

/* is DER's hex one of the comma-separated items of LIST? */
static bool
hex_listed(const char *list, const unsigned char *der, int len)
{
	static const char hexd[] = "0123456789abcdef";
	char	   *h = palloc(2 * len + 1);
	size_t		hl = 2 * len;

	for (int i = 0; i < len; i++)
	{
		h[2 * i] = hexd[der[i] >> 4];
		h[2 * i + 1] = hexd[der[i] & 15];
	}
	h[hl] = '\0';
	for (const char *p = list; p && *p; p = strchr(p, ','), p = p ? p + 1 : NULL)
		if (strncmp(p, h, hl) == 0 && (p[hl] == ',' || p[hl] == '\0'))
			return true;
	return false;
}

/* does one list of DSS_CRLS have ISSUER as its issuer? */
static bool
crl_listed(const char *list, const X509_NAME *issuer)
{
	for (const char *p = list; p && *p; p = strchr(p, ','), p = p ? p + 1 : NULL)
	{
		size_t		n = strcspn(p, ",");
		unsigned char *der = palloc(n / 2 + 1);
		const unsigned char *d = der;
		X509_CRL   *crl;
		bool		same;

		for (size_t i = 0; i + 1 < n; i += 2)
			der[i / 2] = (unsigned char) (hex_value(p[i]) << 4 | hex_value(p[i + 1]));
		crl = d2i_X509_CRL(NULL, &d, n / 2);
		same = crl != NULL && X509_NAME_cmp(X509_CRL_get_issuer(crl), issuer) == 0;
		X509_CRL_free(crl);
		pfree(der);
		if (same)
			return true;
	}
	ERR_clear_error();
	return false;
}

/*
 * B-LT: the document's DSS ("certs\tcrls", hex DER, comma separated) holds
 * every certificate of CHAIN and a revocation list of every issuer in it
 * (the anchor's own, self-issued, needs none)
 */
static bool
chain_in_dss(const char *dss, STACK_OF(X509) *chain)
{
	const char *tab;
	char	   *certs;

	if (dss == NULL || chain == NULL || (tab = strchr(dss, '\t')) == NULL)
		return false;
	certs = pnstrdup(dss, tab - dss);
	for (int i = 0; i < sk_X509_num(chain); i++)
	{
		X509	   *x = sk_X509_value(chain, i);
		unsigned char *der = NULL;
		int			len = i2d_X509(x, &der);
		bool		listed = len > 0 && hex_listed(certs, der, len);

		OPENSSL_free(der);
		if (!listed)
			return false;
		if (X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)) != 0 &&
			!crl_listed(tab + 1, X509_get_issuer_name(x)))
			return false;
	}
	return true;
}

static Verdict
verify_one(X509_STORE *store, bytea *cms_der, bytea *content, const char *dss)
{
	Verdict		v = {false, NULL, NULL, NULL, false, 0};
	const char *ts_problem = NULL;
	STACK_OF(X509) *chain = NULL;
	BIO		   *der = BIO_new_mem_buf(VARDATA_ANY(cms_der), VARSIZE_ANY_EXHDR(cms_der));
	BIO		   *data = BIO_new_mem_buf(VARDATA_ANY(content), VARSIZE_ANY_EXHDR(content));
	CMS_ContentInfo *cms = d2i_CMS_bio(der, NULL);
	STACK_OF(X509) *signers = NULL;
	STACK_OF(X509) *certs = NULL;
	X509_STORE_CTX *ctx = NULL;

	if (cms == NULL)
	{
		v.reason = "the stored signature cannot be read";
		goto done;
	}
	/* 1. the signature over these bytes */
	ERR_clear_error();
	if (CMS_verify(cms, NULL, store, data, NULL, CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY) != 1)
	{
		unsigned long err = ERR_peek_last_error();

		/*
		 * Only a digest or signature mismatch means the bytes changed; a
		 * signature that cannot be checked at all (no signer certificate in
		 * it, an unknown algorithm) is not a clerk's tampered file.
		 */
		if (ERR_GET_LIB(err) == ERR_LIB_CMS &&
			(ERR_GET_REASON(err) == CMS_R_VERIFICATION_FAILURE ||
			 ERR_GET_REASON(err) == CMS_R_CONTENT_VERIFY_ERROR))
			v.reason = "content changed";
		else
			v.reason = psprintf("the signature cannot be checked: %s",
								ERR_reason_error_string(err) ? ERR_reason_error_string(err)
								: "unknown error");
		ERR_clear_error();
		goto done;
	}
	signers = CMS_get0_signers(cms);
	if (signers == NULL || sk_X509_num(signers) < 1)
	{
		v.reason = "the signature names no signer";
		goto done;
	}
	v.subject = x509_name_text(X509_get_subject_name(sk_X509_value(signers, 0)));
	{
		unsigned int fp_len = 0;

		v.has_fingerprint = X509_digest(sk_X509_value(signers, 0), EVP_sha256(), v.fingerprint,
										&fp_len) == 1 && fp_len == sizeof(v.fingerprint);
	}
	if (sk_CMS_SignerInfo_num(CMS_get0_SignerInfos(cms)) > 0)
		check_timestamp(&v, sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0), &ts_problem);

	/* 2. the signer's chain, now, against the registered anchors and lists */
	certs = CMS_get1_certs(cms);
	ctx = X509_STORE_CTX_new();
	if (X509_STORE_CTX_init(ctx, store, sk_X509_value(signers, 0), certs) != 1)
	{
		v.reason = "the certificate chain cannot be checked";
		goto done;
	}
	if (X509_verify_cert(ctx) != 1)
	{
		int			err = X509_STORE_CTX_get_error(ctx);

		v.reason = ioffice_chain_reason(err);
		if (v.reason == NULL)
			v.reason = psprintf("untrusted chain: %s", X509_verify_cert_error_string(err));

		/*
		 * Long-term validity: a chain that fails now (expired, its lists
		 * out of date) but held at the time the signature's timestamp
		 * proves it existed was valid when it was made.  A revoked
		 * certificate stays refused: the lists do not say here whether
		 * the revocation came after the timestamp.
		 */
		if (v.timestamped && err != X509_V_ERR_CERT_REVOKED &&
			(v.reason = signed_in_time(store, sk_X509_value(signers, 0), certs, v.timestamp_at,
									   v.reason, &chain)) == NULL)
			v.reason = psprintf("valid at signing time (timestamp); now: %s",
								ioffice_chain_reason(err) ? ioffice_chain_reason(err)
								: X509_verify_cert_error_string(err));
		else
			goto done;
	}
	v.valid = true;
	if (chain == NULL)
		chain = X509_STORE_CTX_get1_chain(ctx);
	v.level = !v.timestamped ? "B-B" : chain_in_dss(dss, chain) ? "B-LT" : "B-T";
	if (ts_problem != NULL && v.reason == NULL)
		v.reason = ts_problem;

done:
	ERR_clear_error();
	sk_X509_pop_free(chain, X509_free);
	X509_STORE_CTX_free(ctx);
	sk_X509_pop_free(certs, X509_free);
	sk_X509_free(signers);
	CMS_ContentInfo_free(cms);
	BIO_free(data);
	BIO_free(der);
	return v;
}

/* ------------------------------------------------------------------------
 * Signatures embedded in a PDF (PAdES)
 *
 * The PDF is parsed by the helper process only (pdf_helper.c); it lists
 * each signature dictionary: its revision, /ByteRange, /SubFilter, /M,
 * /Name, the raw /Contents, and what later revisions changed.  Here, with
 * the file's bytes the backend already holds, the ByteRange is checked
 * (it spans the whole revision but the "<hex>" of /Contents, and that hex
 * is what the helper read) and the CMS verified over the ByteRange's bytes.
 * ------------------------------------------------------------------------
 */
#define VERIFY_COLUMNS 10

typedef struct VerifyRow
{
	char	   *signer;
	char	   *kind;
	bool		has_time;
	TimestampTz signed_at;
	Verdict		verdict;
	bool		embedded;
	int			revision;
	char	   *after;
} VerifyRow;

static void
put_row(ReturnSetInfo *rsinfo, VerifyRow *r)
{
	Datum		v[VERIFY_COLUMNS];
	bool		n[VERIFY_COLUMNS];

	memset(n, 0, sizeof(n));
	v[0] = r->signer ? CStringGetTextDatum(r->signer) : (Datum) 0;
	n[0] = r->signer == NULL;
	v[1] = r->kind ? CStringGetTextDatum(r->kind) : (Datum) 0;
	n[1] = r->kind == NULL;
	v[2] = TimestampTzGetDatum(r->signed_at);
	n[2] = !r->has_time;
	v[3] = r->verdict.subject ? CStringGetTextDatum(r->verdict.subject) : (Datum) 0;
	n[3] = r->verdict.subject == NULL;
	v[4] = BoolGetDatum(r->verdict.valid);
	v[5] = r->verdict.reason ? CStringGetTextDatum(r->verdict.reason) : (Datum) 0;
	n[5] = r->verdict.reason == NULL;
	v[6] = Int32GetDatum(r->revision);
	n[6] = !r->embedded || r->revision <= 0;
	v[7] = r->after ? CStringGetTextDatum(r->after) : (Datum) 0;
	n[7] = r->after == NULL;
	v[8] = r->verdict.level ? CStringGetTextDatum(r->verdict.level) : (Datum) 0;
	n[8] = r->verdict.level == NULL;
	v[9] = TimestampTzGetDatum(r->verdict.timestamp_at);
	n[9] = !r->verdict.timestamped;
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
}

/* text from the PDF: valid in the database's encoding, at most 60 characters */
static char *
pdf_text(const char *s)
{
	char	   *copy = pstrdup(s);

	if (!pg_verifymbstr(copy, strlen(copy), true))
	{
		/* not valid text: its ASCII, the rest as '?' */
		pg_clean_ascii(copy);
		return pnstrdup(copy, Min(strlen(copy), 60));
	}
	return pnstrdup(copy, pg_mbcliplen(copy, strlen(copy), 60));
}

/* /M as a timestamptz: D:YYYYMMDDHHmmSS then Z, or +HH'mm' / -HH'mm' */
static bool
pdf_date(const char *m, TimestampTz *out)
{
	char		buf[64];
	Datum		d;
	const char *tz;

	if (strncmp(m, "D:", 2) == 0)
		m += 2;
	if (strlen(m) < 14 || strspn(m, "0123456789") < 14)
		return false;
	tz = m + 14;
	if (*tz == '+' || *tz == '-')
	{
		if (strlen(tz) < 3 || !isdigit((unsigned char) tz[1]) || !isdigit((unsigned char) tz[2]))
			return false;
		snprintf(buf, sizeof(buf), "%.4s-%.2s-%.2s %.2s:%.2s:%.2s%c%.2s:%.2s", m, m + 4, m + 6,
				 m + 8, m + 10, m + 12, tz[0], tz + 1,
				 (strlen(tz) >= 6 && tz[3] == '\'' && isdigit((unsigned char) tz[4])) ? tz + 4 : "00");
	}
	else
		snprintf(buf, sizeof(buf), "%.4s-%.2s-%.2s %.2s:%.2s:%.2s+00", m, m + 4, m + 6,
				 m + 8, m + 10, m + 12);
	if (!ioffice_try_datetime_in(buf, TIMESTAMPTZOID, &d))
		return false;
	*out = DatumGetTimestampTz(d);
	return true;
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

/* the DER of the CMS in /Contents, without the placeholder's zero padding */
static bytea *
contents_der(const char *hex)
{
	size_t		len = strlen(hex) / 2;
	unsigned char *raw = palloc(len + 1);
	const unsigned char *p = raw;
	long		body;
	int			tag,
				xclass;

	for (size_t i = 0; i < len; i++)
	{
		int			hi = hex_value(hex[2 * i]);
		int			lo = hex_value(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return NULL;
		raw[i] = (unsigned char) (hi << 4 | lo);
	}
	if (ASN1_get_object(&p, &body, &tag, &xclass, (long) len) & 0x80)
	{
		ERR_clear_error();
		return NULL;
	}
	if ((size_t) (p - raw) + body > len)
		return NULL;
	return ioffice_bytea(raw, (p - raw) + body);
}

/* who made this CMS, when it is one the worker recorded for the file's document */
static void
recorded_signer(VerifyRow *row, bytea *der, int64 file)
{
	Datum		arg[2];
	Oid			type[2] = {BYTEAOID, INT8OID};
	bool		isnull;

	arg[0] = PointerGetDatum(der);
	arg[1] = Int64GetDatum(file);
	if (SPI_execute_with_args("SELECT p.full_name, s.kind, s.signed_at FROM ioffice.signature s "
							  "  JOIN ioffice.person p ON p.id = s.signer_id "
							  " WHERE s.document_id = (SELECT f.document_id FROM ioffice.file f WHERE f.id = $2) "
							  "   AND s.cms = $1 AND s.status = 'done' AND s.signed_file_id IS NOT NULL "
							  " ORDER BY s.id LIMIT 1",
							  2, type, arg, NULL, true, 1) != SPI_OK_SELECT || SPI_processed == 0)
		return;
	row->signer = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	row->kind = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	row->signed_at = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0],
													   SPI_tuptable->tupdesc, 3, &isnull));
	row->has_time = !isnull;
}

/*
 * The kind of a signature made elsewhere (a PDF received from another
 * agency) when its certificate is registered here: a certificate of this
 * database's (personal or organisation) or a seal of another agency
 * registered for edXML (add_exchange_seal: organisation).  Left NULL when
 * neither: this database cannot tell a leader's certificate from a seal.
 */
static void
registered_kind(VerifyRow *row)
{
	Datum		arg[1];
	Oid			type[1] = {BYTEAOID};
	bool		seals;

	/* (a database whose extension predates edXML seals (0.1) has none) */
	seals = SPI_execute("SELECT 1 WHERE pg_catalog.to_regclass('ioffice.exchange_seal') IS NOT NULL",
						true, 1) == SPI_OK_SELECT && SPI_processed == 1;
	arg[0] = PointerGetDatum(ioffice_bytea((const char *) row->verdict.fingerprint,
										   sizeof(row->verdict.fingerprint)));
	if (SPI_execute_with_args(seals
							  ? "SELECT kind FROM ioffice.certificate WHERE fingerprint = $1 "
							  "UNION ALL "
							  "SELECT 'organisation' FROM ioffice.exchange_seal WHERE fingerprint = $1 "
							  "LIMIT 1"
							  : "SELECT kind FROM ioffice.certificate WHERE fingerprint = $1",
							  1, type, arg, NULL, true, 1) == SPI_OK_SELECT && SPI_processed == 1)
		row->kind = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
}

/*
 * One "sig" line of the helper: revision, byte range, SubFilter, /M,
 * /Name, what came after, the /Contents hex.
 */
static void
embedded_row(ReturnSetInfo *rsinfo, X509_STORE *store, bytea *content, int64 file, char *line,
			 const char *dss)
{
	char	   *f[8];
	int			nf = 0;
	VerifyRow	row;
	long long	br[4];
	const char *pdf = VARDATA_ANY(content);
	long long	len = VARSIZE_ANY_EXHDR(content);
	bytea	   *der;
	StringInfoData signed_bytes;

	memset(&row, 0, sizeof(row));
	row.embedded = true;
	for (char *p = line; nf < 8; nf++)
	{
		f[nf] = p;
		p = strchr(p, '\t');
		if (p == NULL)
		{
			nf++;
			break;
		}
		*p++ = '\0';
	}
	if (nf < 8)
		return;
	row.revision = atoi(f[1]);
	row.after = pdf_text(f[6]);
	if (f[5][0] != '\0')
		row.signer = pdf_text(f[5]);
	row.has_time = pdf_date(f[4], &row.signed_at);

	if (sscanf(f[2], "%lld %lld %lld %lld", &br[0], &br[1], &br[2], &br[3]) != 4 ||
		br[0] != 0 || br[1] < 0 || br[2] < br[1] + 2 || br[3] < 0 || br[2] + br[3] > len ||
		pdf[br[1]] != '<' || pdf[br[2] - 1] != '>' ||
		br[2] - br[1] - 2 != (long long) strlen(f[7]) ||
		pg_strncasecmp(pdf + br[1] + 1, f[7], strlen(f[7])) != 0)
	{
		row.verdict.reason = "the byte range does not cover the whole revision but its /Contents";
		put_row(rsinfo, &row);
		return;
	}
	if (strcmp(f[3], "ETSI.CAdES.detached") != 0 && strcmp(f[3], "adbe.pkcs7.detached") != 0)
	{
		row.verdict.reason = psprintf("unsupported /SubFilter %s", pdf_text(f[3]));
		put_row(rsinfo, &row);
		return;
	}
	der = contents_der(f[7]);
	if (der == NULL)
	{
		row.verdict.reason = "the signature in /Contents cannot be read";
		put_row(rsinfo, &row);
		return;
	}
	if (file > 0)
		recorded_signer(&row, der, file);
	initStringInfo(&signed_bytes);
	appendBinaryStringInfo(&signed_bytes, pdf, br[1]);
	appendBinaryStringInfo(&signed_bytes, pdf + br[2], br[3]);
	row.verdict = verify_one(store, der, ioffice_bytea(signed_bytes.data, signed_bytes.len), dss);
	if (row.verdict.valid && strncmp(row.after, "content", 7) == 0)
	{
		row.verdict.valid = false;
		row.verdict.reason = "the document was changed after this signature";
		row.verdict.level = NULL;
	}
	/*
	 * a kind only for a valid signature: anyone can put a registered
	 * seal's certificate beside a signature it did not make
	 */
	if (file > 0 && row.kind == NULL && row.verdict.valid && row.verdict.has_fingerprint)
		registered_kind(&row);
	put_row(rsinfo, &row);
}

/*
 * The signatures the PDF carries, as rows; a helper that crashed, hung or
 * hit a limit gives one row that says so (the server is unharmed).  A file
 * the library cannot read at all gives no row unless it names a /ByteRange.
 */
static void
embedded_rows(ReturnSetInfo *rsinfo, X509_STORE *store, bytea *content, int64 file)
{
	char	   *argv[3] = {NULL, "signatures", NULL};
	StringInfoData out;
	int			exit_code;
	char	   *failure;
	VerifyRow	row;
	char	   *line;
	char	   *next;
	const char *dss = NULL;

	memset(&row, 0, sizeof(row));
	row.embedded = true;
	initStringInfo(&out);

	/*
	 * The worker keeps its served helper (it checks every PDF of the
	 * packages it files from the axis: a process started per attachment
	 * would cost more than the check); a backend starts one per call.
	 */
	if (IsBackgroundWorker)
		failure = ioffice_pdf_helper_serve(psprintf("signatures\t%zu\n", VARSIZE_ANY_EXHDR(content)),
										   VARDATA_ANY(content), VARSIZE_ANY_EXHDR(content),
										   &out, &exit_code);
	else
		failure = ioffice_pdf_helper_run(argv, VARDATA_ANY(content), VARSIZE_ANY_EXHDR(content),
										 &out, &exit_code);
	if (failure == NULL && exit_code != 0)
	{
		if (exit_code == 2 &&
			memmem(VARDATA_ANY(content), VARSIZE_ANY_EXHDR(content), "/ByteRange", 10) == NULL)
			return;
		failure = (strncmp(out.data, "error\t", 6) == 0)
			? pnstrdup(out.data + 6, strcspn(out.data + 6, "\n")) : "the helper failed";
	}
	if (failure != NULL)
	{
		row.verdict.reason = psprintf("the PDF's signatures cannot be checked: %s", failure);
		put_row(rsinfo, &row);
		return;
	}
	/* the DSS line ("dss\t<certs>\t<crls>") comes first, when there is one */
	for (line = out.data; line && *line; line = next)
	{
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (strncmp(line, "dss\t", 4) == 0)
			dss = line + 4;
		else if (strncmp(line, "sig\t", 4) == 0)
			embedded_row(rsinfo, store, content, file, line, dss);
	}
}

/*
 * verify(file) → (signer, kind, signed_at, subject, valid, reason,
 * revision, after_signing): every signature a PDF carries (revision and
 * what came after it set), then every detached signature made on the file
 * (the leader's, the organisation's).
 */
PG_FUNCTION_INFO_V1(ioffice_verify);
Datum
ioffice_verify(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int64		file;
	Datum		args[1];
	Oid			types[1] = {INT8OID};
	X509_STORE *store;
	SPITupleTable *sigs;
	uint64		nsigs;
	uint64		i;
	bytea	   *content;
	bool		isnull;
	bool		is_pdf;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("verify needs a file")));
	file = PG_GETARG_INT64(0);
	InitMaterializedSRF(fcinfo, 0);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	(void) ioffice_resolve_actor(false);
	(void) ioffice_require_file(file);
	args[0] = Int64GetDatum(file);
	if (SPI_execute_with_args("SELECT content, kind = 'pdf', erased_at IS NOT NULL "
							  "  FROM ioffice.file WHERE id = $1",
							  1, types, args, NULL, true, 1) != SPI_OK_SELECT || SPI_processed == 0)
		elog(ERROR, "ioffice: could not read file %lld", (long long) file);
	/* bytes destroyed by an accepted recall: nothing left to verify */
	if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull)))
		ioffice_refuse_erased(file);
	content = DatumGetByteaPCopy(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	is_pdf = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));

	store = build_store();
	if (SPI_execute_with_args("SELECT p.full_name, s.kind, s.signed_at, s.cms FROM ioffice.signature s "
							  "  JOIN ioffice.person p ON p.id = s.signer_id "
							  " WHERE s.file_id = $1 AND s.status = 'done' AND s.signed_file_id IS NULL "
							  " ORDER BY s.signed_at, s.id",
							  1, types, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "ioffice: could not read the signatures");
	sigs = SPI_tuptable;
	nsigs = SPI_processed;
	PG_TRY();
	{
		if (is_pdf)
			embedded_rows(rsinfo, store, content, file);
		for (i = 0; i < nsigs; i++)
		{
			HeapTuple	tup = sigs->vals[i];
			VerifyRow	row;
			Datum		der = SPI_getbinval(tup, sigs->tupdesc, 4, &isnull);

			memset(&row, 0, sizeof(row));
			if (isnull)
			{
				/* a "done" row without its CMS: only a hand edit makes one */
				row.verdict.valid = false;
				row.verdict.reason = "no signature data is recorded";
				row.verdict.subject = NULL;
			}
			else
				row.verdict = verify_one(store, DatumGetByteaPP(der), content, NULL);
			row.signer = SPI_getvalue(tup, sigs->tupdesc, 1);
			row.kind = SPI_getvalue(tup, sigs->tupdesc, 2);
			row.signed_at = DatumGetTimestampTz(SPI_getbinval(tup, sigs->tupdesc, 3, &isnull));
			row.has_time = !isnull;
			put_row(rsinfo, &row);
		}
	}
	PG_FINALLY();
	{
		X509_STORE_free(store);
	}
	PG_END_TRY();
	SPI_finish();
	return (Datum) 0;
}

/*
 * _pdf_signatures(content bytea) → the rows verify() gives for a PDF's
 * embedded signatures, for bytes that are not a file yet: the attachments
 * of an edXML package, checked before it is filed (Decree 30 art. 21.2:
 * the receiver checks the document's authenticity and integrity, not only
 * the package's).  No signer or kind (those come from this database's own
 * signature rows); bytes the PDF helper cannot read give no row unless
 * they name a /ByteRange.
 */
PG_FUNCTION_INFO_V1(ioffice_pdf_signatures);
Datum
ioffice_pdf_signatures(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	bytea	   *content;
	X509_STORE *store;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("_pdf_signatures needs the bytes of a PDF")));
	content = PG_GETARG_BYTEA_PP(0);
	InitMaterializedSRF(fcinfo, 0);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	store = build_store();
	PG_TRY();
	{
		embedded_rows(rsinfo, store, content, 0);
	}
	PG_FINALLY();
	{
		X509_STORE_free(store);
	}
	PG_END_TRY();
	SPI_finish();
	return (Datum) 0;
}

/* ------------------------------------------------------------------------
 * signature_p7s(file)
 * ------------------------------------------------------------------------
 */

/*
 * signature_p7s(file) → bytea: one detached CMS holding every signature made
 * on the file (the leader's, the organisation's), for `openssl cms -verify`
 * and other tools.  Each signature was made as a CMS of its own; their
 * SignerInfos (all SHA-256) are moved into the first one, with the
 * certificates they carry.  OpenSSL has no call to copy a SignerInfo, so
 * each is taken out of its own structure's stack, which then no longer
 * frees it.
 */
PG_FUNCTION_INFO_V1(ioffice_signature_p7s);
Datum
ioffice_signature_p7s(PG_FUNCTION_ARGS)
{
	int64		file;
	Datum		args[1];
	Oid			types[1] = {INT8OID};
	bool		isnull;
	uint64		n;
	uint64		i;
	CMS_ContentInfo *base = NULL;
	List	   *others = NIL;
	ListCell   *lc;
	BIO		   *out = NULL;
	BUF_MEM    *mem;
	bytea	   *result = NULL;
	bool		failed = false;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("signature_p7s needs a file")));
	file = PG_GETARG_INT64(0);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	(void) ioffice_resolve_actor(false);
	(void) ioffice_require_file(file);
	args[0] = Int64GetDatum(file);
	if (SPI_execute_with_args("SELECT cms FROM ioffice.signature "
							  " WHERE file_id = $1 AND status = 'done' AND cms IS NOT NULL "
							  "   AND signed_file_id IS NULL "
							  " ORDER BY signed_at, id",
							  1, types, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "ioffice: could not read the signatures");
	n = SPI_processed;
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("file %lld carries no signature", (long long) file)));

	for (i = 0; i < n && !failed; i++)
	{
		bytea	   *der = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		BIO		   *bio = BIO_new_mem_buf(VARDATA_ANY(der), VARSIZE_ANY_EXHDR(der));
		CMS_ContentInfo *cms = d2i_CMS_bio(bio, NULL);

		BIO_free(bio);
		if (cms == NULL)
			failed = true;
		else if (base == NULL)
			base = cms;
		else
			others = lappend(others, cms);
	}

	foreach(lc, others)
	{
		CMS_ContentInfo *cms = lfirst(lc);
		STACK_OF(CMS_SignerInfo) *from = CMS_get0_SignerInfos(cms);
		STACK_OF(CMS_SignerInfo) *to = CMS_get0_SignerInfos(base);
		STACK_OF(X509) *certs = CMS_get1_certs(cms);
		int			j;

		if (failed || from == NULL || to == NULL)
		{
			failed = true;
			sk_X509_pop_free(certs, X509_free);
			continue;
		}
		while (sk_CMS_SignerInfo_num(from) > 0)
			sk_CMS_SignerInfo_push(to, sk_CMS_SignerInfo_delete(from, 0));
		for (j = 0; certs && j < sk_X509_num(certs); j++)
		{
			/* a certificate both carry (the intermediate) is kept once */
			if (CMS_add1_cert(base, sk_X509_value(certs, j)) != 1)
				ERR_clear_error();
		}
		sk_X509_pop_free(certs, X509_free);
	}

	if (!failed)
	{
		out = BIO_new(BIO_s_mem());
		if (i2d_CMS_bio(out, base) == 1)
		{
			BIO_get_mem_ptr(out, &mem);
			result = ioffice_spi_bytea(mem->data, mem->length);
		}
		else
			failed = true;
	}
	ERR_clear_error();
	BIO_free(out);
	foreach(lc, others)
		CMS_ContentInfo_free(lfirst(lc));
	CMS_ContentInfo_free(base);
	SPI_finish();
	if (failed)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the signatures of file %lld cannot be combined", (long long) file),
				 errdetail("A stored signature is not a readable CMS.")));
	PG_RETURN_BYTEA_P(result);
}
