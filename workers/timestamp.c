/*-------------------------------------------------------------------------
 * timestamp.c
 *	  PAdES B-T: an RFC 3161 signature timestamp on each signature the
 *	  worker makes.
 *
 * With ioffice.tsa_url set, the CMS a signer made is sent to the time-stamp
 * authority: a TimeStampReq (SHA-256 of the SignerInfo's signature value, a
 * fresh nonce, the TSA's certificate asked for), posted as
 * application/timestamp-query.  The answer is accepted only when it is
 * granted, for that imprint and nonce, signed by a certificate whose
 * extendedKeyUsage is timeStamping only (critical) and that chains to a
 * registered trust anchor; its token then becomes the SignerInfo's unsigned
 * attribute id-aa-signatureTimeStampToken (RFC 3161 appendix A, ETSI EN
 * 319 122-1 5.3).
 *
 * A TSA that is down, slow or answers anything else fails the signature
 * with the reason: with a TSA configured no signature is left without its
 * timestamp.  There is no retry here: a failed signature is visible to its
 * signer, who signs again (act 'sign' or the clerk's issue), and a worker
 * that retried silently would hide an outage of the TSA from the people
 * waiting on the document.
 *
 * The call is a blocking libcurl call bounded by ioffice.tsa_timeout: the
 * signer waits for it as it waits for the PDF helper.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ts.h>
#include <openssl/x509.h>

#include "mb/pg_wchar.h"
#include "utils/guc.h"

#include "ioffice.h"
#include "worker.h"

char	   *ioffice_tsa_url = NULL;
int			ioffice_tsa_timeout = 10000;

/* the largest answer read: a token with the TSA's chain is a few kB */
#define TSA_MAX_ANSWER (256 * 1024)

void
ioffice_timestamp_init(void)
{
	DefineCustomStringVariable("ioffice.tsa_url",
							   "URL of the RFC 3161 time-stamp authority the worker timestamps each signature with (PAdES B-T).",
							   "Empty: no timestamp (PAdES B-B).  Set: a signature whose timestamp cannot be had fails with the reason.",
							   &ioffice_tsa_url,
							   "",
							   PGC_SIGHUP,
							   /* a TSA's URL may carry its account (user:password@) */
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
	DefineCustomIntVariable("ioffice.tsa_timeout",
							"Milliseconds the worker waits for the time-stamp authority's answer.",
							NULL,
							&ioffice_tsa_timeout,
							10000, 100, 120000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);
}

bool
ioffice_timestamp_wanted(void)
{
	return ioffice_tsa_url != NULL && ioffice_tsa_url[0] != '\0';
}

static size_t
keep_answer(char *data, size_t size, size_t nmemb, void *arg)
{
	StringInfo	answer = (StringInfo) arg;
	size_t		n = size * nmemb;

	if (answer->len + n > TSA_MAX_ANSWER)
		return 0;				/* curl stops: the answer is too long */
	appendBinaryStringInfo(answer, data, n);
	return n;
}

/* POST the request; the answer's bytes into ANSWER, or a reason */
static char *
post_query(const unsigned char *query, int query_len, StringInfo answer)
{
	CURL	   *easy = curl_easy_init();
	struct curl_slist *headers = NULL;
	char		curl_error[CURL_ERROR_SIZE] = "";
	CURLcode	rc;
	long		status = 0;
	char	   *content_type = NULL;
	char	   *reason = NULL;

	if (easy == NULL)
		return "the time-stamp authority cannot be called (curl)";
	headers = curl_slist_append(headers, "Content-Type: application/timestamp-query");
	curl_easy_setopt(easy, CURLOPT_URL, ioffice_tsa_url);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(easy, CURLOPT_POST, 1L);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDS, query);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) query_len);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long) ioffice_tsa_timeout);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long) ioffice_tsa_timeout);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, keep_answer);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, answer);
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, curl_error);
	curl_easy_setopt(easy, CURLOPT_USERAGENT, "ioffice/0.2");
	rc = curl_easy_perform(easy);
	if (rc != CURLE_OK)
		reason = psprintf("the time-stamp authority cannot be reached: %s",
						  curl_error[0] ? curl_error : curl_easy_strerror(rc));
	else
	{
		curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
		curl_easy_getinfo(easy, CURLINFO_CONTENT_TYPE, &content_type);
		if (status != 200)
			reason = psprintf("the time-stamp authority answered HTTP %ld", status);
		else if (content_type == NULL ||
				 pg_strncasecmp(content_type, "application/timestamp-reply", 27) != 0)
			reason = psprintf("the time-stamp authority answered %s, not application/timestamp-reply",
							  content_type ? pnstrdup(content_type, pg_mbcliplen(content_type, strlen(content_type), 60))
							  : "no content type");
	}
	curl_slist_free_all(headers);
	curl_easy_cleanup(easy);
	return reason;
}

/* OpenSSL's last error as a reason, after WHAT */
static char *
ts_reason(const char *what)
{
	unsigned long err = ERR_peek_last_error();
	const char *s = err ? ERR_reason_error_string(err) : NULL;

	ERR_clear_error();
	return s ? psprintf("%s: %s", what, s) : pstrdup(what);
}

/*
 * The store the TSA's certificate is checked against: the registered
 * anchors.  A TSA's revocation is not looked up here (its CA's list is not
 * something the agency registers for signers); its certificate's chain,
 * validity and timeStamping purpose are.
 */
static X509_STORE *
tsa_store(void)
{
	X509_STORE *store = ioffice_trust_store();

	X509_VERIFY_PARAM_clear_flags(X509_STORE_get0_param(store), X509_V_FLAG_CRL_CHECK);
	return store;
}

/*
 * CMS (DER) with a signature timestamp token on its (first) SignerInfo, or
 * NULL and *reason.  Asks the TSA of ioffice.tsa_url; reads the trust
 * anchors (SPI must be connected).
 */
bytea *
ioffice_timestamp_cms(bytea *cms_der, char **reason)
{
	const unsigned char *p = (const unsigned char *) VARDATA_ANY(cms_der);
	CMS_ContentInfo *cms = NULL;
	CMS_SignerInfo *si;
	ASN1_OCTET_STRING *sigval;
	unsigned char imprint[SHA256_DIGEST_LENGTH];
	TS_REQ	   *req = NULL;
	TS_MSG_IMPRINT *mi = NULL;
	X509_ALGOR *alg = NULL;
	ASN1_INTEGER *nonce = NULL;
	unsigned char nonce_bytes[8];
	BIGNUM	   *bn = NULL;
	unsigned char *query = NULL;
	int			query_len;
	StringInfoData answer;
	TS_RESP    *resp = NULL;
	TS_VERIFY_CTX *vctx = NULL;
	X509_STORE *store = NULL;
	unsigned char *token = NULL;
	int			token_len;
	unsigned char *out_der = NULL;
	int			out_len;
	bytea	   *out = NULL;

	*reason = NULL;
	ERR_clear_error();
	cms = d2i_CMS_ContentInfo(NULL, &p, VARSIZE_ANY_EXHDR(cms_der));
	if (cms == NULL || sk_CMS_SignerInfo_num(CMS_get0_SignerInfos(cms)) < 1)
	{
		*reason = "the signature to timestamp cannot be read";
		goto done;
	}
	si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0);
	sigval = CMS_SignerInfo_get0_signature(si);
	SHA256(ASN1_STRING_get0_data(sigval), ASN1_STRING_length(sigval), imprint);

	/* the request: version 1, the imprint, a nonce, the TSA's certificate */
	if (RAND_bytes(nonce_bytes, sizeof(nonce_bytes)) != 1)
	{
		*reason = "no random nonce for the timestamp request";
		goto done;
	}
	nonce_bytes[0] &= 0x7f;		/* a positive INTEGER */
	req = TS_REQ_new();
	mi = TS_MSG_IMPRINT_new();
	alg = X509_ALGOR_new();
	bn = BN_bin2bn(nonce_bytes, sizeof(nonce_bytes), NULL);
	nonce = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
	if (req == NULL || mi == NULL || alg == NULL || nonce == NULL ||
		X509_ALGOR_set0(alg, OBJ_nid2obj(NID_sha256), V_ASN1_NULL, NULL) != 1 ||
		TS_MSG_IMPRINT_set_algo(mi, alg) != 1 ||
		TS_MSG_IMPRINT_set_msg(mi, imprint, sizeof(imprint)) != 1 ||
		TS_REQ_set_version(req, 1) != 1 ||
		TS_REQ_set_msg_imprint(req, mi) != 1 ||
		TS_REQ_set_nonce(req, nonce) != 1 ||
		TS_REQ_set_cert_req(req, 1) != 1 ||
		(query_len = i2d_TS_REQ(req, &query)) <= 0)
	{
		*reason = ts_reason("the timestamp request cannot be made");
		goto done;
	}

	initStringInfo(&answer);
	*reason = post_query(query, query_len, &answer);
	if (*reason != NULL)
		goto done;
	p = (const unsigned char *) answer.data;
	resp = d2i_TS_RESP(NULL, &p, answer.len);
	if (resp == NULL)
	{
		*reason = "the time-stamp authority's answer is not a timestamp response";
		goto done;
	}

	/* not granted: the TSA's own status and text say why */
	{
		TS_STATUS_INFO *status_info = TS_RESP_get_status_info(resp);
		long		status = ASN1_INTEGER_get(TS_STATUS_INFO_get0_status(status_info));

		if (status != TS_STATUS_GRANTED && status != TS_STATUS_GRANTED_WITH_MODS)
		{
			static const char *const names[] = {"granted", "grantedWithMods", "rejection",
			"waiting", "revocationWarning", "revocationNotification"};
			const STACK_OF(ASN1_UTF8STRING) *text = TS_STATUS_INFO_get0_text(status_info);
			const char *said = "";

			if (text != NULL && sk_ASN1_UTF8STRING_num(text) > 0)
			{
				ASN1_UTF8STRING *t = sk_ASN1_UTF8STRING_value(text, 0);
				char	   *c = pnstrdup((const char *) ASN1_STRING_get0_data(t), ASN1_STRING_length(t));

				if (pg_verifymbstr(c, strlen(c), true))
					said = psprintf(": %s", pnstrdup(c, pg_mbcliplen(c, strlen(c), 60)));
			}
			*reason = psprintf("the time-stamp authority did not grant the timestamp (status %s)%s",
							   status >= 0 && status <= 5 ? names[status] : "unknown", said);
			goto done;
		}
	}

	/*
	 * Status granted, version 1, our imprint and nonce, the token's
	 * signature by its certificate (ESS signing-certificate), which chains
	 * to a registered anchor with the timeStamping purpose.
	 */
	store = tsa_store();
	vctx = TS_REQ_to_TS_VERIFY_CTX(req, NULL);
	if (vctx == NULL)
	{
		*reason = ts_reason("the timestamp cannot be checked");
		goto done;
	}
	TS_VERIFY_CTX_add_flags(vctx, TS_VFY_SIGNATURE);
	TS_VERIFY_CTX_set_store(vctx, store);
	store = NULL;				/* the context frees it */
	if (TS_RESP_verify_response(vctx, resp) != 1)
	{
		*reason = ts_reason("the time-stamp authority's answer is refused");
		goto done;
	}
	token_len = i2d_PKCS7(TS_RESP_get_token(resp), &token);
	if (token_len <= 0 ||
		CMS_unsigned_add1_attr_by_NID(si, NID_id_smime_aa_timeStampToken, V_ASN1_SEQUENCE,
									  token, token_len) != 1 ||
		(out_len = i2d_CMS_ContentInfo(cms, &out_der)) <= 0)
	{
		*reason = ts_reason("the timestamp cannot be added to the signature");
		goto done;
	}
	out = palloc(VARHDRSZ + out_len);
	SET_VARSIZE(out, VARHDRSZ + out_len);
	memcpy(VARDATA(out), out_der, out_len);

done:
	ERR_clear_error();
	OPENSSL_free(out_der);
	OPENSSL_free(token);
	OPENSSL_free(query);
	TS_VERIFY_CTX_free(vctx);
	X509_STORE_free(store);
	TS_RESP_free(resp);
	ASN1_INTEGER_free(nonce);
	BN_free(bn);
	TS_MSG_IMPRINT_free(mi);
	X509_ALGOR_free(alg);
	TS_REQ_free(req);
	CMS_ContentInfo_free(cms);
	return out;
}

/* ------------------------------------------------------------------------
 * PAdES B-LT: the Document Security Store
 *
 * After a timestamped signature the signed PDF gets one more incremental
 * update, written by the PDF helper (the worker never writes PDF syntax):
 * the catalog's /DSS with the certificates of the signer's and the TSA's
 * chains up to the registered anchor, and the registered revocation lists
 * of their issuers, so that the signature can be validated after the
 * certificates expire from the document alone.  The helper keeps what an
 * earlier /DSS held (the leader's chain when the seal is added).
 * ------------------------------------------------------------------------
 */

/* DER of X into OUT unless SEEN already holds it */
static void
add_der_once(List **seen, StringInfo out, const unsigned char *der, int len)
{
	ListCell   *lc;
	bytea	   *b;

	foreach(lc, *seen)
	{
		bytea	   *s = (bytea *) lfirst(lc);

		if (VARSIZE_ANY_EXHDR(s) == (Size) len && memcmp(VARDATA_ANY(s), der, len) == 0)
			return;
	}
	b = ioffice_bytea((const char *) der, len);
	*seen = lappend(*seen, b);
	appendBinaryStringInfo(out, (const char *) der, len);
}

/*
 * X's chain (X, its issuers up to an anchor) into CERTS, and the lists of
 * STORE that each of its issuers published into CRLS.  UNTRUSTED: the
 * certificates that came with it.
 */
static void
add_chain(X509_STORE *store, X509 *x, STACK_OF(X509) *untrusted, List **seen_certs,
		  StringInfo certs, List **seen_crls, StringInfo crls)
{
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	STACK_OF(X509) *chain = NULL;
	STACK_OF(X509_OBJECT) *objs;

	if (ctx == NULL || X509_STORE_CTX_init(ctx, store, x, untrusted) != 1)
		goto done;
	(void) X509_verify_cert(ctx);	/* the chain as far as it goes */
	chain = X509_STORE_CTX_get1_chain(ctx);
	if (chain == NULL)
		goto done;
	objs = X509_STORE_get0_objects(store);
	for (int i = 0; i < sk_X509_num(chain); i++)
	{
		X509	   *c = sk_X509_value(chain, i);
		unsigned char *der = NULL;
		int			len = i2d_X509(c, &der);

		if (len > 0)
			add_der_once(seen_certs, certs, der, len);
		OPENSSL_free(der);
		for (int j = 0; j < sk_X509_OBJECT_num(objs); j++)
		{
			X509_CRL   *crl = X509_OBJECT_get0_X509_CRL(sk_X509_OBJECT_value(objs, j));

			if (crl == NULL || X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_issuer_name(c)) != 0)
				continue;
			der = NULL;
			len = i2d_X509_CRL(crl, &der);
			if (len > 0)
				add_der_once(seen_crls, crls, der, len);
			OPENSSL_free(der);
		}
	}
done:
	ERR_clear_error();
	sk_X509_pop_free(chain, X509_free);
	X509_STORE_CTX_free(ctx);
}

/*
 * The certificates and lists of CMS's chains: its own certificates and
 * those of its signature timestamp, completed by the registered anchors.
 */
static bool
dss_material(bytea *cms_der, StringInfo certs, StringInfo crls)
{
	const unsigned char *p = (const unsigned char *) VARDATA_ANY(cms_der);
	CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, VARSIZE_ANY_EXHDR(cms_der));
	STACK_OF(X509) *all = NULL;
	PKCS7	   *token = NULL;
	X509_STORE *store;
	List	   *seen_certs = NIL;
	List	   *seen_crls = NIL;

	if (cms == NULL)
		return false;
	all = CMS_get1_certs(cms);
	if (all == NULL)
		all = sk_X509_new_null();
	if (sk_CMS_SignerInfo_num(CMS_get0_SignerInfos(cms)) > 0)
	{
		CMS_SignerInfo *si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0);
		int			idx = CMS_unsigned_get_attr_by_NID(si, NID_id_smime_aa_timeStampToken, -1);
		ASN1_TYPE  *type = idx >= 0 ? X509_ATTRIBUTE_get0_type(CMS_unsigned_get_attr(si, idx), 0) : NULL;

		if (type != NULL && type->type == V_ASN1_SEQUENCE)
		{
			const unsigned char *t = type->value.sequence->data;

			token = d2i_PKCS7(NULL, &t, type->value.sequence->length);
		}
		if (token != NULL && PKCS7_type_is_signed(token) && token->d.sign != NULL &&
			token->d.sign->cert != NULL)
			for (int i = 0; i < sk_X509_num(token->d.sign->cert); i++)
			{
				X509	   *x = sk_X509_value(token->d.sign->cert, i);

				X509_up_ref(x);
				sk_X509_push(all, x);
			}
	}
	store = ioffice_trust_store();
	X509_VERIFY_PARAM_clear_flags(X509_STORE_get0_param(store), X509_V_FLAG_CRL_CHECK);
	for (int i = 0; i < sk_X509_num(all); i++)
		add_chain(store, sk_X509_value(all, i), all, &seen_certs, certs, &seen_crls, crls);
	X509_STORE_free(store);
	PKCS7_free(token);
	sk_X509_pop_free(all, X509_free);
	CMS_ContentInfo_free(cms);
	ERR_clear_error();
	return certs->len > 0;
}

/*
 * SIGNED_PDF (LEN bytes) with a DSS update for the chains of CMS: a copy
 * and *out_len, or NULL and *reason.  SERVED: through the worker's
 * long-lived helper; else a helper process for this call only (a
 * backend's submit_signature()).
 */
char *
ioffice_pdf_add_dss(const char *signed_pdf, size_t len, bytea *cms, bool served, size_t *out_len,
					char **reason)
{
	StringInfoData certs;
	StringInfoData crls;
	StringInfoData body;
	StringInfoData out;
	char	   *header;
	int			exit_code;
	char	   *nl;
	long long	v[5];

	initStringInfo(&certs);
	initStringInfo(&crls);
	if (!dss_material(cms, &certs, &crls))
	{
		*reason = "the signature's certificates cannot be read for the document security store";
		return NULL;
	}
	header = psprintf("dss\t%zu\t0\t%d\t\t\t%d\t0\t0\t0\t0\t\t\t\t\t\n",
					  len, certs.len, certs.len + crls.len);
	initStringInfo(&body);
	appendBinaryStringInfo(&body, signed_pdf, len);
	appendBinaryStringInfo(&body, certs.data, certs.len);
	appendBinaryStringInfo(&body, crls.data, crls.len);
	initStringInfo(&out);
	*reason = served ? ioffice_pdf_helper_serve(header, body.data, body.len, &out, &exit_code)
		: ioffice_pdf_helper_once(header, body.data, body.len, &out, &exit_code);
	if (*reason != NULL)
		return NULL;
	nl = memchr(out.data, '\n', Min(out.len, 200));
	if (exit_code != 0 || nl == NULL || strncmp(out.data, "ok ", 3) != 0 ||
		sscanf(out.data + 3, "%lld %lld %lld %lld %lld", &v[0], &v[1], &v[2], &v[3], &v[4]) != 5 ||
		v[4] != out.len - (nl + 1 - out.data))
	{
		*reason = out.len > 6 && strncmp(out.data, "error\t", 6) == 0
			? psprintf("the document security store cannot be written: %s",
					   pnstrdup(out.data + 6, strcspn(out.data + 6, "\n")))
			: "the PDF helper gave no document security store";
		return NULL;
	}
	/* an incremental update: the signed file is its prefix, byte for byte */
	if ((size_t) v[4] <= len || memcmp(nl + 1, signed_pdf, len) != 0)
	{
		*reason = "the document security store update does not begin with the signed file";
		return NULL;
	}
	*out_len = (size_t) v[4];
	return nl + 1;
}
