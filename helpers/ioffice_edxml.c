/*-------------------------------------------------------------------------
 * ioffice_edxml.c
 *	  The edXML helper: every edXML package (QCVN 102:2016) that comes from
 *	  outside is read by this program, in a process of its own with limits
 *	  (extension/edxml.c runs it as extension/pdf_helper.c runs the PDF
 *	  helper), never inside a backend or the worker; and packages are
 *	  signed here, with the key file the worker names.
 *
 *   ioffice_edxml read MAX_BYTES
 *	  stdin: a line with the length N of a PEM bundle, the N bytes of the
 *	  bundle (the certificates the database trusts and its revocation
 *	  lists), then the package.
 *	  stdout: one JSON object: the fields of the MessageHeader, the
 *	  TraceHeaderList's Bussiness, the attachments (base64 again, with their
 *	  size and SHA-256), and "signature": {"status": "valid" | "invalid" |
 *	  "missing", "reason", "subject", "fingerprint" (SHA-256 of the
 *	  signer's certificate, hex)}, and "kind": "document".  Valid: the
 *	  signature matches, its certificate chains to an anchor and is not
 *	  revoked by the lists (when any is given, as verify() checks PDF
 *	  signatures); whether it is the seal of the agency in From/OrganId is
 *	  the database's to decide (_edxml_signer_check).  A status
 *	  package (a MessageHeader with StatusCode) answers "kind": "status"
 *	  with From, status_code, description, timestamp, response_for
 *	  (organ_id, document_id, code), staff, department and the signature.
 *	  Exit 0.
 *	  A package that is not one, or whose field breaks a limit of the
 *	  standard or is missing: {"error": "...", "field": "..."}, exit 2.
 *
 *   ioffice_edxml sign KEY_FILE
 *	  stdin: a line with the length N of the seal's certificate (PEM, with
 *	  its chain if wanted), the N bytes, then a package without a
 *	  signature (the worker holds the key: its keystore file; the
 *	  certificate is the database's).  stdout: the package with an
 *	  enveloped XML-DSig signature (RSA-SHA256, exclusive C14N, the
 *	  certificate in KeyInfo/X509Data) as the last child of edXMLHeader.
 *	  Exit 0; 1 on failure (the reason on stderr).
 *
 *   ioffice_edxml serve CPU_SECONDS
 *	  Many requests in one process, for the worker, which keeps it between
 *	  packages (starting a process and xmlsec costs more than sealing a
 *	  package).  A request is one header line and the bytes it counts:
 *	    "read <max> <pem length> <package length>\n" PEM, package;
 *	    "sign <key path length> <cert length> <package length> <n>
 *	     <file 1 length> ... <file n length>\n" key path, certificate,
 *	     package, then n files: the raw bytes of the package's n
 *	     attachments, whose ContentTransferEncoded elements, empty in the
 *	     package, are filled here with their base64 (the worker builds the
 *	     package in SQL without them: base64 and XML escaping of a large
 *	     text there cost more than the rest of the package).
 *	  The answer: "<code> <length>\n" and that many bytes: code 0 and the
 *	  JSON or the signed package, 2 and the refusal's JSON, 1 and why it
 *	  failed.  The CPU limit is renewed per request (what it used so far
 *	  plus the budget) below the hard limit its parent set; the wall clock
 *	  is the parent's.  Anything unexpected on stdin ends it.
 *
 * The parser never touches the network (XML_PARSE_NONET), never loads a DTD
 * or substitutes entities (neither XML_PARSE_DTDLOAD nor XML_PARSE_NOENT),
 * keeps libxml2's limits on depth and text size (no XML_PARSE_HUGE), and a
 * package with a document type declaration at all is refused before it is
 * parsed: an edXML package has none, and that is where entity expansion
 * (billion laughs) and external entities live.
 *-------------------------------------------------------------------------
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <xmlsec/xmlsec.h>
#include <xmlsec/errors.h>
#include <xmlsec/xmldsig.h>
#include <xmlsec/xmltree.h>
#include <xmlsec/templates.h>
#include <xmlsec/crypto.h>
#include <xmlsec/openssl/evp.h>
#include <xmlsec/openssl/x509.h>

#include "edxml_hsm.h"

#define EDXML_NS "http://www.mic.gov.vn/TBT/QCVN_102_2016"
#define PARSE_OPTIONS (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)

/* ------------------------------------------------------------------------
 * Output: a growing buffer and JSON strings
 * ------------------------------------------------------------------------
 */
typedef struct Buf
{
	char	   *data;
	size_t		len;
	size_t		cap;
} Buf;

static void
buf_add(Buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap)
	{
		size_t		cap = b->cap ? b->cap : 4096;

		while (b->len + n + 1 > cap)
			cap *= 2;
		b->data = realloc(b->data, cap);
		if (b->data == NULL)
		{
			fprintf(stderr, "out of memory\n");
			exit(1);
		}
		b->cap = cap;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

static void
buf_str(Buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

/* s as a JSON string (s is UTF-8: libxml2 gives nothing else) */
static void
buf_json(Buf *b, const char *s)
{
	buf_add(b, "\"", 1);
	for (; *s; s++)
	{
		unsigned char c = (unsigned char) *s;
		char		esc[8];

		if (c == '"' || c == '\\')
		{
			esc[0] = '\\';
			esc[1] = (char) c;
			buf_add(b, esc, 2);
		}
		else if (c < 0x20)
		{
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			buf_add(b, esc, 6);
		}
		else
			buf_add(b, s, 1);
	}
	buf_add(b, "\"", 1);
}

static void
buf_key(Buf *b, const char *key, const char *value)
{
	if (b->data[b->len - 1] != '{')
		buf_add(b, ",", 1);
	buf_json(b, key);
	buf_add(b, ":", 1);
	if (value)
		buf_json(b, value);
	else
		buf_str(b, "null");
}

/*
 * Serving (serve mode): a refusal ends the request, not the process; what
 * the request parsed is freed there.
 */
static int	serving = 0;
static jmp_buf refused_jmp;
static Buf	refusal;
static xmlDocPtr request_doc = NULL;

/* the package is refused: why, and the field named; exit 2 (or the request ends) */
static void
refuse(const char *field, const char *fmt,...)
{
	char		msg[1024];
	va_list		ap;
	Buf			b = {0};

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	buf_str(&b, "{");
	buf_key(&b, "error", msg);
	buf_key(&b, "field", field);
	buf_str(&b, "}\n");
	if (serving)
	{
		free(refusal.data);
		refusal = b;
		longjmp(refused_jmp, 1);
	}
	fwrite(b.data, 1, b.len, stdout);
	exit(2);
}

/* ------------------------------------------------------------------------
 * Reading the tree
 * ------------------------------------------------------------------------
 */
static int
is_edxml(xmlNodePtr n, const char *name)
{
	return n && n->type == XML_ELEMENT_NODE && n->ns && n->ns->href &&
		strcmp((const char *) n->ns->href, EDXML_NS) == 0 &&
		strcmp((const char *) n->name, name) == 0;
}

static xmlNodePtr
child(xmlNodePtr parent, const char *name)
{
	if (parent == NULL)
		return NULL;
	for (xmlNodePtr c = parent->children; c; c = c->next)
		if (is_edxml(c, name))
			return c;
	return NULL;
}

/* characters, not bytes: the standard counts characters */
static size_t
utf8_chars(const char *s)
{
	size_t		n = 0;

	for (; *s; s++)
		if (((unsigned char) *s & 0xC0) != 0x80)
			n++;
	return n;
}

/* the trimmed text of an element, or NULL when it is absent or empty */
static char *
text_of(xmlNodePtr n)
{
	xmlChar    *t;
	char	   *s,
			   *e;

	if (n == NULL)
		return NULL;
	t = xmlNodeGetContent(n);
	if (t == NULL)
		return NULL;
	s = (char *) t;
	while (*s && isspace((unsigned char) *s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char) e[-1]))
		*--e = '\0';
	if (*s == '\0')
		return NULL;
	return strdup(s);
}

/*
 * The text of path (element names below parent, '/'-separated), checked:
 * required, at most max characters (0: no limit), and matching pattern
 * kind: 'd' a date yyyy/MM/dd, '0'..'9' one digit up to that, 'n' digits.
 */
static char *
field(xmlNodePtr parent, const char *path, int required, size_t max, char kind)
{
	char		part[64];
	const char *p = path;
	xmlNodePtr	n = parent;
	char	   *v;

	while (n && *p)
	{
		const char *slash = strchr(p, '/');
		size_t		len = slash ? (size_t) (slash - p) : strlen(p);

		snprintf(part, sizeof(part), "%.*s", (int) len, p);
		n = child(n, part);
		p += len + (slash ? 1 : 0);
	}
	v = text_of(n);
	if (v == NULL)
	{
		if (required)
			refuse(path, "%s is missing", path);
		return NULL;
	}
	if (max > 0 && utf8_chars(v) > max)
		refuse(path, "%s has %zu characters; the standard allows %zu", path, utf8_chars(v), max);
	if (kind == 'd')
	{
		int			y,
					m,
					d;
		char		rest;

		if (strlen(v) != 10 || sscanf(v, "%4d/%2d/%2d%c", &y, &m, &d, &rest) != 3 ||
			v[4] != '/' || v[7] != '/' || m < 1 || m > 12 || d < 1 || d > 31 || y < 1900)
			refuse(path, "%s is not a date yyyy/MM/dd", path);
	}
	else if (kind >= '0' && kind <= '9')
	{
		if (strlen(v) != 1 || v[0] < '0' || v[0] > kind)
			refuse(path, "%s must be one digit from 0 to %c", path, kind);
	}
	else if (kind == 'n')
	{
		if (strlen(v) > 9 || strspn(v, "0123456789") != strlen(v))
			refuse(path, "%s must be a whole number", path);
	}
	return v;
}

static void
add_field(Buf *b, const char *key, xmlNodePtr parent, const char *path, int required,
		  size_t max, char kind)
{
	buf_key(b, key, field(parent, path, required, max, kind));
}

/* an agency: From or To (what) */
static void
add_organ(Buf *b, xmlNodePtr organ, const char *what)
{
	char		path[64];
	char	   *id = text_of(child(organ, "OrganId"));

	snprintf(path, sizeof(path), "%s/OrganId", what);
	if (id == NULL)
		refuse(path, "%s is missing", path);
	if (utf8_chars(id) > 13)
		refuse(path, "%s has %zu characters; the standard allows 13", path, utf8_chars(id));
	buf_str(b, "{");
	buf_key(b, "organ_id", id);
	buf_key(b, "organ_name", field(organ, "OrganName", 0, 0, 0));
	buf_key(b, "organization_in_charge", field(organ, "OrganizationInCharge", 0, 0, 0));
	buf_str(b, "}");
}

/* ------------------------------------------------------------------------
 * Attachments: base64, decoded and checked against the manifest
 * ------------------------------------------------------------------------
 */
static unsigned char *
base64_decode(const char *in, size_t *out_len)
{
	size_t		len = strlen(in);
	unsigned char *out = malloc(len / 4 * 3 + 4);
	EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
	int			n1 = 0,
				n2 = 0;

	if (out == NULL || ctx == NULL)
	{
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
	EVP_DecodeInit(ctx);
	if (EVP_DecodeUpdate(ctx, out, &n1, (const unsigned char *) in, (int) len) < 0 ||
		EVP_DecodeFinal(ctx, out + n1, &n2) < 0)
	{
		EVP_ENCODE_CTX_free(ctx);
		free(out);
		return NULL;
	}
	EVP_ENCODE_CTX_free(ctx);
	*out_len = (size_t) n1 + n2;
	return out;
}

static void
add_attachments(Buf *b, xmlNodePtr root, xmlNodePtr manifest)
{
	xmlNodePtr	enc = child(root, "AttachmentEncoded");
	int			n = 0,
				refs = 0;

	buf_str(b, ",\"attachments\":[");
	for (xmlNodePtr a = enc ? enc->children : NULL; a; a = a->next)
	{
		char	   *cid,
				   *data;
		unsigned char *raw;
		size_t		raw_len = 0;
		int			found = 0;
		unsigned char md[32];
		char		hex[65];
		char		size[32];
		char	   *b64;

		if (!is_edxml(a, "Attachment"))
			continue;
		cid = field(a, "ContentId", 1, 0, 0);
		for (xmlNodePtr r = manifest ? manifest->children : NULL; r; r = r->next)
		{
			char	   *rc;

			if (!is_edxml(r, "Reference"))
				continue;
			rc = field(r, "ContentId", 1, 0, 0);
			if (strcmp(rc, cid) == 0)
				found = 1;
			free(rc);
		}
		if (!found)
			refuse("Attachment/ContentId", "attachment %.60s is not in the manifest", cid);
		data = field(a, "ContentTransferEncoded", 1, 0, 0);
		raw = base64_decode(data, &raw_len);
		if (raw == NULL || raw_len == 0)
			refuse("Attachment/ContentTransferEncoded",
				   "attachment %.60s is not base64 (or is empty)", cid);
		free(data);
		EVP_Digest(raw, raw_len, md, NULL, EVP_sha256(), NULL);
		for (int i = 0; i < 32; i++)
			snprintf(hex + 2 * i, 3, "%02x", md[i]);
		snprintf(size, sizeof(size), "%zu", raw_len);
		b64 = malloc(4 * ((raw_len + 2) / 3) + 1);
		if (b64 == NULL)
		{
			fprintf(stderr, "out of memory\n");
			exit(1);
		}
		EVP_EncodeBlock((unsigned char *) b64, raw, (int) raw_len);
		free(raw);
		buf_str(b, n++ ? ",{" : "{");
		buf_key(b, "content_id", cid);
		buf_key(b, "name", field(a, "AttachmentName", 0, 0, 0));
		buf_key(b, "description", field(a, "Description", 0, 0, 0));
		buf_key(b, "content_type", field(a, "ContentType", 0, 0, 0));
		buf_str(b, ",\"size\":");
		buf_str(b, size);
		buf_key(b, "sha256", hex);
		buf_key(b, "data", b64);
		buf_str(b, "}");
		free(b64);
		free(cid);
	}
	buf_str(b, "]");
	/* and every reference of the manifest has its attachment */
	for (xmlNodePtr r = manifest ? manifest->children : NULL; r; r = r->next)
		if (is_edxml(r, "Reference"))
			refs++;
	if (refs != n)
		refuse("edXMLManifest/Reference",
			   "the manifest lists %d attachments; the package carries %d", refs, n);
}

/* ------------------------------------------------------------------------
 * The signature
 * ------------------------------------------------------------------------
 */
/* the first error xmlsec reports while checking: the cause, for the reason */
static char first_error[256];

static void
note_error(const char *file, int line, const char *func, const char *object,
		   const char *subject, int reason, const char *msg)
{
	(void) file;
	(void) line;
	(void) func;
	(void) object;
	(void) subject;
	(void) reason;
	if (first_error[0] == '\0' && msg)
	{
		/* OpenSSL's own words, when there are some, are the cause */
		const char *m = strstr(msg, "msg=");

		snprintf(first_error, sizeof(first_error), "%s", m ? m + 4 : msg);
	}
}

/*
 * Only the trust anchors the database names may make a signature valid.
 * xmlsec's OpenSSL certificate store also loads OpenSSL's default locations
 * (X509_STORE_set_default_paths: the system's public CAs in /etc/ssl/certs,
 * or whatever SSL_CERT_FILE and SSL_CERT_DIR name in the server's
 * environment), so a package sealed under any public CA verified.  Both are
 * pointed at nothing before the store exists; OpenSSL skips a location it
 * cannot read.
 */
#define NO_DEFAULT_TRUST "/nonexistent/ioffice-trusts-only-its-anchors"

static int
crypto_init(void)
{
	if (setenv("SSL_CERT_FILE", NO_DEFAULT_TRUST, 1) != 0 ||
		setenv("SSL_CERT_DIR", NO_DEFAULT_TRUST, 1) != 0)
	{
		fprintf(stderr, "could not keep OpenSSL's default trust out\n");
		return -1;
	}
	if (xmlSecInit() < 0 || xmlSecCryptoAppInit(NULL) < 0 || xmlSecCryptoInit() < 0)
	{
		fprintf(stderr, "xmlsec could not start\n");
		return -1;
	}
	xmlSecErrorsSetCallback(note_error);
	return 0;
}

/* the trust anchors: each certificate of the PEM bundle */
static xmlSecKeysMngrPtr
trust_manager(const char *pem, size_t len)
{
	xmlSecKeysMngrPtr mngr = xmlSecKeysMngrCreate();
	const char *end_marker = "-----END CERTIFICATE-----";
	const char *p = pem;
	const char *end = pem + len;

	if (mngr == NULL || xmlSecCryptoAppDefaultKeysMngrInit(mngr) < 0)
		return NULL;
	while (p < end)
	{
		const char *b = strstr(p, "-----BEGIN CERTIFICATE-----");
		const char *e;

		if (b == NULL || b >= end)
			break;
		e = strstr(b, end_marker);
		if (e == NULL || e >= end)
			break;
		e += strlen(end_marker);
		/* a certificate it cannot load is not trusted: nothing else */
		xmlSecCryptoAppKeysMngrCertLoadMemory(mngr, (const xmlSecByte *) b, (xmlSecSize) (e - b),
											  xmlSecKeyDataFormatPem, xmlSecKeyDataTypeTrusted);
		p = e;
	}
	return mngr;
}

/*
 * The trust manager of the last request, kept while the trust anchors are
 * the same bytes (serve mode): making one loads OpenSSL's default
 * certificate store as well, which cost more than checking a signature.
 */
static xmlSecKeysMngrPtr kept_mngr = NULL;
static char *kept_pem = NULL;
static size_t kept_pem_len = 0;

/*
 * Revocation: the bundle also carries the database's revocation lists (the
 * crl table, the ones verify() checks PDF signatures against).  xmlsec
 * checks the chain; the signer's certificate is then looked up in these
 * lists with OpenSSL as verify() does (extension/certificates.c,
 * build_store): when any list is registered, the signer's issuer must have
 * one, current, that does not list it.  Kept with the trust manager.
 */
static X509_STORE *kept_store = NULL;
static int	kept_any_crl = 0;

static X509_STORE *
revocation_store(const char *pem, size_t len, int *any_crl)
{
	X509_STORE *store = X509_STORE_new();
	BIO		   *bio = BIO_new_mem_buf(pem, (int) len);
	STACK_OF(X509_INFO) *infos = bio ? PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL) : NULL;
	int			i;

	*any_crl = 0;
	if (store == NULL)
		return NULL;
	for (i = 0; infos && i < sk_X509_INFO_num(infos); i++)
	{
		X509_INFO  *info = sk_X509_INFO_value(infos, i);

		if (info->x509)
			X509_STORE_add_cert(store, info->x509);
		if (info->crl)
		{
			X509_STORE_add_crl(store, info->crl);
			*any_crl = 1;
		}
	}
	sk_X509_INFO_pop_free(infos, X509_INFO_free);
	BIO_free(bio);
	ERR_clear_error();
	X509_STORE_set_purpose(store, X509_PURPOSE_ANY);
	return store;
}

/* why the signer's certificate is not good by the revocation lists, or NULL */
static const char *
revocation_problem(X509 *cert, xmlSecKeyDataPtr x509)
{
	static char why[512];
	STACK_OF(X509) *chain;
	X509_STORE_CTX *ctx;
	xmlSecSize	i,
				n;
	int			err;

	if (!kept_any_crl)
		return NULL;
	if (kept_store == NULL || (chain = sk_X509_new_null()) == NULL ||
		(ctx = X509_STORE_CTX_new()) == NULL)
	{
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
	/* the certificates of KeyInfo/X509Data: the chain the sender sent */
	n = xmlSecOpenSSLKeyDataX509GetCertsSize(x509);
	for (i = 0; i < n; i++)
	{
		X509	   *c = xmlSecOpenSSLKeyDataX509GetCert(x509, i);

		if (c)
			sk_X509_push(chain, c);
	}
	err = X509_V_OK;
	if (X509_STORE_CTX_init(ctx, kept_store, cert, chain) != 1)
		err = X509_V_ERR_UNSPECIFIED;
	else
	{
		X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_CRL_CHECK);
		if (X509_verify_cert(ctx) != 1)
			err = X509_STORE_CTX_get_error(ctx);
	}
	X509_STORE_CTX_free(ctx);
	sk_X509_free(chain);		/* the certificates are xmlsec's */
	ERR_clear_error();
	switch (err)
	{
		case X509_V_OK:
			return NULL;
		case X509_V_ERR_CERT_REVOKED:
			return "revoked: the signer's certificate is on its issuer's revocation list";
		case X509_V_ERR_UNABLE_TO_GET_CRL:
			return "revocation unknown: no revocation list registered for the issuer of the signer's certificate";
		case X509_V_ERR_CRL_HAS_EXPIRED:
			return "revocation unknown: the registered revocation list of the signer's issuer is out of date";
		default:
			snprintf(why, sizeof(why), "the signer's certificate does not verify against the revocation lists: %s",
					 X509_verify_cert_error_string(err));
			return why;
	}
}

static xmlSecKeysMngrPtr
trust_manager_for(const char *pem, size_t len)
{
	if (kept_mngr && kept_pem_len == len && memcmp(kept_pem, pem, len) == 0)
		return kept_mngr;
	if (kept_mngr)
		xmlSecKeysMngrDestroy(kept_mngr);
	X509_STORE_free(kept_store);
	free(kept_pem);
	kept_mngr = NULL;
	kept_store = NULL;
	kept_pem = NULL;
	kept_pem_len = 0;
	kept_mngr = trust_manager(pem, len);
	if (kept_mngr == NULL)
		return NULL;
	kept_store = revocation_store(pem, len, &kept_any_crl);
	if (kept_store == NULL)
	{
		xmlSecKeysMngrDestroy(kept_mngr);
		kept_mngr = NULL;
		return NULL;
	}
	kept_pem = malloc(len + 1);
	if (kept_pem == NULL)
	{
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
	memcpy(kept_pem, pem, len);
	kept_pem_len = len;
	return kept_mngr;
}

static void
add_signature(Buf *b, xmlDocPtr doc, const char *pem, size_t pem_len)
{
	xmlNodePtr	sig = xmlSecFindNode(xmlDocGetRootElement(doc), xmlSecNodeSignature, xmlSecDSigNs);
	xmlSecKeysMngrPtr mngr;
	xmlSecDSigCtxPtr ctx;
	const char *status = "invalid";
	const char *reason = NULL;
	char		subject[512] = "";
	char		fingerprint[2 * EVP_MAX_MD_SIZE + 1] = "";
	X509	   *cert = NULL;

	buf_str(b, ",\"signature\":{");
	if (sig == NULL)
	{
		buf_key(b, "status", "missing");
		buf_key(b, "reason", "the package carries no XML-DSig signature");
		buf_str(b, "}");
		return;
	}
	mngr = trust_manager_for(pem, pem_len);
	ctx = mngr ? xmlSecDSigCtxCreate(mngr) : NULL;
	if (ctx == NULL)
	{
		fprintf(stderr, "xmlsec: no context\n");
		exit(1);
	}
	/* only what an edXML signature is: no retrieving of anything */
	ctx->enabledReferenceUris = xmlSecTransformUriTypeEmpty;
	first_error[0] = '\0';
	if (xmlSecDSigCtxVerify(ctx, sig) < 0)
	{
		static char why[512];

		snprintf(why, sizeof(why),
				 "the signature could not be checked (malformed, or its certificate is not trusted)%s%s",
				 first_error[0] ? ": " : "", first_error);
		reason = why;
	}
	else if (ctx->status != xmlSecDSigStatusSucceeded)
		reason = "the signature does not match the package (altered after signing)";
	else if (xmlSecPtrListGetSize(&ctx->signedInfoReferences) != 1)
		reason = "the signature must have exactly one reference, to the whole package";
	else
	{
		xmlSecDSigReferenceCtxPtr ref = xmlSecPtrListGetItem(&ctx->signedInfoReferences, 0);

		if (ref == NULL || ref->uri == NULL || ref->uri[0] != '\0')
			reason = "the signature does not cover the whole package (its reference is not URI=\"\")";
		else
			status = "valid";
	}
	if (ctx->signKey)
	{
		xmlSecKeyDataPtr x = xmlSecKeyGetData(ctx->signKey, xmlSecOpenSSLKeyDataX509Id);

		cert = x ? xmlSecOpenSSLKeyDataX509GetKeyCert(x) : NULL;
		if (cert)
		{
			BIO		   *mem = BIO_new(BIO_s_mem());
			unsigned char md[EVP_MAX_MD_SIZE];
			unsigned int mdlen = 0;
			unsigned int i;
			int			n;

			X509_NAME_print_ex(mem, X509_get_subject_name(cert), 0,
							   XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
			n = BIO_read(mem, subject, sizeof(subject) - 1);
			subject[n > 0 ? n : 0] = '\0';
			BIO_free(mem);
			/* what certificate.fingerprint and exchange_seal hold: SHA-256 of the DER */
			if (X509_digest(cert, EVP_sha256(), md, &mdlen) == 1)
				for (i = 0; i < mdlen; i++)
					sprintf(fingerprint + 2 * i, "%02x", md[i]);
			if (strcmp(status, "valid") == 0 && (reason = revocation_problem(cert, x)) != NULL)
				status = "invalid";
		}
	}
	/* a key given as a bare KeyValue proves nothing about who signed */
	if (strcmp(status, "valid") == 0 && cert == NULL)
	{
		status = "invalid";
		reason = "the signature carries no certificate (KeyInfo/X509Data)";
	}
	buf_key(b, "status", status);
	buf_key(b, "reason", reason);
	buf_key(b, "subject", subject[0] ? subject : NULL);
	buf_key(b, "fingerprint", fingerprint[0] ? fingerprint : NULL);
	buf_str(b, "}");
	xmlSecDSigCtxDestroy(ctx);
}

/* ------------------------------------------------------------------------
 * Modes
 * ------------------------------------------------------------------------
 */
static char *
read_stdin(size_t max, size_t *len)
{
	size_t		cap = 65536,
				n = 0;
	char	   *data = malloc(cap + 1);

	for (;;)
	{
		size_t		r;

		if (n == cap)
		{
			if (cap >= max + 1)
				break;
			cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			data = realloc(data, cap + 1);
		}
		if (data == NULL)
		{
			fprintf(stderr, "out of memory\n");
			exit(1);
		}
		r = fread(data + n, 1, cap - n, stdin);
		if (r == 0)
			break;
		n += r;
		if (n > max)
			break;
	}
	data[n] = '\0';
	*len = n;
	return data;
}

/* the length line and the PEM that follows it on stdin */
static char *
read_pem(size_t *pem_len)
{
	char		line[32];
	char	   *pem;

	if (fgets(line, sizeof(line), stdin) == NULL || sscanf(line, "%zu", pem_len) != 1 ||
		*pem_len > 16 * 1024 * 1024)
	{
		fprintf(stderr, "usage: the length of the PEM on the first line\n");
		exit(1);
	}
	pem = malloc(*pem_len + 1);
	if (pem == NULL || fread(pem, 1, *pem_len, stdin) != *pem_len)
	{
		fprintf(stderr, "the PEM is short\n");
		exit(1);
	}
	pem[*pem_len] = '\0';
	return pem;
}

static xmlDocPtr
parse(const char *data, size_t len)
{
	xmlDocPtr	doc;

	if (memmem(data, len, "<!DOCTYPE", 9) != NULL || memmem(data, len, "<!ENTITY", 8) != NULL)
		refuse("edXML", "the package has a document type declaration (DTD, entities): an edXML package has none");
	doc = xmlReadMemory(data, (int) len, NULL, NULL, PARSE_OPTIONS);
	if (doc == NULL)
	{
		const xmlError *e = xmlGetLastError();

		refuse("edXML", "the package is not well-formed XML%s%s",
			   e && e->message ? ": " : "", e && e->message ? e->message : "");
	}
	return doc;
}

/*
 * A status package (EDXML.md): From, ResponseFor (the document answered:
 * OrganId, DocumentId), StatusCode (two digits), Description, Timestamp,
 * StaffInfo.  "kind": "status".
 */
static void
add_status(Buf *b, xmlNodePtr mh)
{
	char	   *code = field(mh, "StatusCode", 1, 2, 0);

	if (strlen(code) != 2 || !isdigit((unsigned char) code[0]) || !isdigit((unsigned char) code[1]))
		refuse("StatusCode", "StatusCode must be two digits");
	if (child(mh, "ResponseFor") == NULL)
		refuse("ResponseFor", "ResponseFor is missing");
	buf_str(b, ",\"kind\":\"status\"");
	buf_key(b, "status_code", code);
	buf_key(b, "description", field(mh, "Description", 0, 2000, 0));
	buf_key(b, "timestamp", field(mh, "Timestamp", 0, 19, 0));
	buf_str(b, ",\"response_for\":{");
	buf_key(b, "organ_id", field(mh, "ResponseFor/OrganId", 1, 13, 0));
	buf_key(b, "document_id", field(mh, "ResponseFor/DocumentId", 1, 100, 0));
	buf_key(b, "code", field(mh, "ResponseFor/Code", 0, 42, 0));
	buf_str(b, "}");
	buf_key(b, "staff", field(mh, "StaffInfo/Staff", 0, 200, 0));
	buf_key(b, "department", field(mh, "StaffInfo/Department", 0, 200, 0));
}

/*
 * What an update or a replacement adds to Bussiness (QCVN 102:2016):
 * BussinessDocumentInfo (DocumentInfo 1: the document's metadata changed;
 * DocumentReceiver 1: its receivers changed; ReceiverList/Receiver with
 * ReceiverType 0 removed, 1 added, and OrganId) and ReplacementInfoList
 * (ReplacementInfo: the DocumentId replaced and the OrganIdList it was
 * sent to).  "document_info", "document_receiver", "receivers" [{type,
 * organ_id}], "replacements" [{document_id}].
 */
static void
add_business_lists(Buf *b, xmlNodePtr bus)
{
	xmlNodePtr	info = child(bus, "BussinessDocumentInfo");
	xmlNodePtr	list = child(info, "ReceiverList");
	xmlNodePtr	n;
	int			count = 0;

	add_field(b, "document_info", info, "DocumentInfo", 0, 1, '1');
	add_field(b, "document_receiver", info, "DocumentReceiver", 0, 1, '1');
	buf_str(b, ",\"receivers\":[");
	for (n = list ? list->children : NULL; n; n = n->next)
		if (is_edxml(n, "Receiver"))
		{
			if (count++)
				buf_str(b, ",");
			buf_str(b, "{");
			buf_key(b, "type", field(n, "ReceiverType", 1, 1, '1'));
			buf_key(b, "organ_id", field(n, "OrganId", 1, 13, 0));
			buf_str(b, "}");
		}
	buf_str(b, "]");
	list = child(bus, "ReplacementInfoList");
	count = 0;
	buf_str(b, ",\"replacements\":[");
	for (n = list ? list->children : NULL; n; n = n->next)
		if (is_edxml(n, "ReplacementInfo"))
		{
			if (count++)
				buf_str(b, ",");
			buf_str(b, "{");
			buf_key(b, "document_id", field(n, "DocumentId", 1, 100, 0));
			buf_str(b, "}");
		}
	buf_str(b, "]");
}

/*
 * Read one package (len bytes, data NUL-terminated) against the trust
 * anchors pem: the JSON answer into b.  A refusal does not return (refuse()).
 */
static void
read_package(const char *pem, size_t pem_len, const char *data, size_t len, size_t max, Buf *b0)
{
	xmlDocPtr	doc;
	xmlNodePtr	root,
				env,
				header,
				mh,
				trace,
				bus,
				body,
				manifest,
				n;
	Buf			b = {0};
	int			count;

	if (len > max)
		refuse("edXML", "the package is larger than %zu bytes", max);
	if (len == 0)
		refuse("edXML", "the package is empty");
	doc = request_doc = parse(data, len);

	root = xmlDocGetRootElement(doc);
	if (!is_edxml(root, "edXML"))
		refuse("edXML", "the root element is not edXML in namespace %s", EDXML_NS);
	env = child(root, "edXMLEnvelope");
	header = child(env, "edXMLHeader");
	mh = child(header, "MessageHeader");
	if (mh == NULL)
		refuse("MessageHeader", "edXML/edXMLEnvelope/edXMLHeader/MessageHeader is missing");
	trace = child(header, "TraceHeaderList");
	bus = child(trace, "Bussiness");
	body = child(env, "edXMLBody");
	manifest = child(body, "edXMLManifest");

	buf_str(&b, "{");
	buf_str(&b, "\"from\":");
	if (child(mh, "From") == NULL)
		refuse("From", "From is missing");
	add_organ(&b, child(mh, "From"), "From");
	if (child(mh, "StatusCode") != NULL)
	{
		add_status(&b, mh);
		add_signature(&b, doc, pem, pem_len);
		buf_str(&b, "}\n");
		request_doc = NULL;
		xmlFreeDoc(doc);
		*b0 = b;
		return;
	}
	buf_str(&b, ",\"kind\":\"document\"");
	buf_str(&b, ",\"to\":[");
	count = 0;
	for (n = mh->children; n; n = n->next)
		if (is_edxml(n, "To"))
		{
			if (count++)
				buf_str(&b, ",");
			add_organ(&b, n, "To");
		}
	buf_str(&b, "]");
	if (count == 0)
		refuse("To", "To is missing");
	add_field(&b, "document_id", mh, "DocumentId", 1, 100, 0);
	add_field(&b, "code_number", mh, "Code/CodeNumber", 1, 11, 0);
	add_field(&b, "code_notation", mh, "Code/CodeNotation", 1, 30, 0);
	add_field(&b, "place", mh, "PromulgationInfo/Place", 0, 0, 0);
	add_field(&b, "promulgation_date", mh, "PromulgationInfo/PromulgationDate", 1, 10, 'd');
	add_field(&b, "type", mh, "DocumentType/Type", 0, 0, 0);
	add_field(&b, "type_name", mh, "DocumentType/TypeName", 0, 0, 0);
	add_field(&b, "subject", mh, "Subject", 1, 500, 0);
	add_field(&b, "content", mh, "Content", 0, 0, 0);
	add_field(&b, "signer_competence", mh, "SignerInfo/Competence", 0, 0, 0);
	add_field(&b, "signer_position", mh, "SignerInfo/Position", 0, 0, 0);
	add_field(&b, "signer_name", mh, "SignerInfo/FullName", 0, 0, 0);
	add_field(&b, "due_date", mh, "DueDate", 0, 10, 'd');
	add_field(&b, "priority", mh, "OtherInfo/Priority", 0, 1, '4');
	add_field(&b, "page_amount", mh, "OtherInfo/PageAmount", 0, 0, 'n');
	add_field(&b, "promulgation_amount", mh, "OtherInfo/PromulgationAmount", 0, 0, 'n');
	add_field(&b, "steering_type", mh, "SteeringType", 0, 1, '3');
	buf_str(&b, ",\"to_places\":[");
	count = 0;
	for (n = child(mh, "ToPlaces") ? child(mh, "ToPlaces")->children : NULL; n; n = n->next)
	{
		char	   *v = is_edxml(n, "Place") ? text_of(n) : NULL;

		if (v)
		{
			if (count++)
				buf_str(&b, ",");
			buf_json(&b, v);
			free(v);
		}
	}
	buf_str(&b, "]");
	add_field(&b, "bussiness_doc_type", bus, "BussinessDocType", 0, 1, '3');
	add_field(&b, "bussiness_doc_reason", bus, "BussinessDocReason", 0, 0, 0);
	add_business_lists(&b, bus);
	add_attachments(&b, root, manifest);
	add_signature(&b, doc, pem, pem_len);
	buf_str(&b, "}\n");
	request_doc = NULL;
	xmlFreeDoc(doc);
	*b0 = b;
}

static int
mode_read(size_t max)
{
	size_t		pem_len,
				len;
	char	   *pem = read_pem(&pem_len),
			   *data;
	Buf			b = {0};

	data = read_stdin(max, &len);
	read_package(pem, pem_len, data, len, max, &b);
	free(data);
	fwrite(b.data, 1, b.len, stdout);
	return fflush(stdout) == 0 ? 0 : 1;
}

/* why signing failed: for stderr, or the served answer */
static char sign_error[512];

static int
sign_failed(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(sign_error, sizeof(sign_error), fmt, ap);
	va_end(ap);
	return 1;
}

/*
 * The base64 of files[i] (lens[i] bytes) as the text of the i-th
 * Attachment's ContentTransferEncoded, which must be empty: the worker
 * builds the package without them.
 */
static int
fill_attachments(xmlNodePtr root, int nfiles, char **files, size_t *lens)
{
	xmlNodePtr	enc = child(root, "AttachmentEncoded");
	int			i = 0;

	for (xmlNodePtr a = enc ? enc->children : NULL; a; a = a->next)
	{
		xmlNodePtr	cte;
		char	   *b64;

		if (!is_edxml(a, "Attachment"))
			continue;
		if (i >= nfiles)
			return sign_failed("the package has more attachments than the %d files given", nfiles);
		cte = child(a, "ContentTransferEncoded");
		if (cte == NULL)
			return sign_failed("attachment %d has no ContentTransferEncoded", i + 1);
		for (xmlNodePtr t = cte->children; t; t = t->next)
			if (t->type != XML_TEXT_NODE || (t->content && t->content[0] != '\0'))
				return sign_failed("attachment %d is not empty in the package", i + 1);
		if (lens[i] > (size_t) 768 * 1024 * 1024)
			return sign_failed("attachment %d is too large", i + 1);
		b64 = malloc(4 * ((lens[i] + 2) / 3) + 1);
		if (b64 == NULL)
			return sign_failed("out of memory");
		EVP_EncodeBlock((unsigned char *) b64, (const unsigned char *) files[i], (int) lens[i]);
		xmlNodeSetContent(cte, NULL);
		/* base64 has nothing to escape: the text as it is */
		if (xmlAddChild(cte, xmlNewTextLen(BAD_CAST b64, (int) (4 * ((lens[i] + 2) / 3)))) == NULL)
		{
			free(b64);
			return sign_failed("out of memory");
		}
		free(b64);
		i++;
	}
	if (i != nfiles)
		return sign_failed("%d files given for the package's %d attachments", nfiles, i);
	return 0;
}

/*
 * The seal's key in an HSM.  xmlsec (1.2.37 on OpenSSL 3) takes a key for
 * private only when it can read the private exponent, which a token never
 * gives, so it refuses to sign with an engine's key.  So xmlsec builds the
 * whole signature (references, digests, SignedInfo, KeyInfo) with a
 * throwaway software key of this process, keeping the canonical SignedInfo
 * it signed (XMLSEC_DSIG_FLAGS_STORE_SIGNATURE), and the token signs those
 * same bytes (RSA-SHA256, as the template's SignatureMethod says): its
 * value replaces the throwaway one.  The SignatureValue is outside what
 * the references cover (the enveloped transform takes the Signature out),
 * so nothing else changes.  The new value is checked against the seal
 * certificate's public key before the package leaves: a token holding
 * another key fails here, not at the receiver.
 *
 * spec is what the worker sends in place of a key file:
 * "pkcs11:<URI>\n<module>\n<PIN>" (the PIN read from
 * ioffice.pkcs11_pin_file by the worker, empty for none).  Reasons name
 * the URI, never the PIN.
 */
static EVP_PKEY *throwaway = NULL;

static int
hsm_stand_in_key(xmlSecDSigCtxPtr ctx)
{
	xmlSecKeyDataPtr data;

	if (throwaway == NULL && (throwaway = EVP_RSA_gen(2048)) == NULL)
		return sign_failed("cannot make the stand-in key for the HSM's signature");
	if (EVP_PKEY_up_ref(throwaway) != 1 || (data = xmlSecOpenSSLEvpKeyAdopt(throwaway)) == NULL)
		return sign_failed("cannot use the stand-in key for the HSM's signature");
	if ((ctx->signKey = xmlSecKeyCreate()) == NULL || xmlSecKeySetValue(ctx->signKey, data) < 0)
	{
		xmlSecKeyDataDestroy(data);
		return sign_failed("out of memory");
	}
	ctx->flags |= XMLSEC_DSIG_FLAGS_STORE_SIGNATURE;
	return 0;
}

static int
hsm_sign_value(const char *spec, xmlSecDSigCtxPtr ctx, xmlNodePtr sig, const char *cert, size_t cert_len)
{
	char	   *copy = strdup(spec);
	char	   *module,
			   *pin;
	char		why[400];
	EVP_PKEY   *pkey;
	xmlSecBufferPtr signed_info = xmlSecDSigCtxGetPreSignBuffer(ctx);
	xmlNodePtr	value = xmlSecFindChild(sig, xmlSecNodeSignatureValue, xmlSecDSigNs);
	EVP_MD_CTX *md = NULL;
	unsigned char *raw = NULL;
	char	   *b64 = NULL;
	size_t		raw_len = 0;
	BIO		   *bio = NULL;
	X509	   *seal = NULL;
	int			rc = 1;

	if (copy == NULL)
		return sign_failed("out of memory");
	module = strchr(copy, '\n');
	pin = module ? strchr(module + 1, '\n') : NULL;
	if (pin == NULL)
	{
		free(copy);
		return sign_failed("the HSM key is not given as URI, module and PIN");
	}
	*module++ = '\0';
	*pin++ = '\0';
	if (signed_info == NULL || value == NULL)
	{
		sign_failed("xmlsec kept no SignedInfo to sign");
		goto done;
	}
	if ((pkey = edxml_hsm_key(copy, module, pin, why, sizeof(why))) == NULL)
	{
		sign_failed("%s", why);
		goto done;
	}
	ERR_clear_error();
	if ((md = EVP_MD_CTX_new()) == NULL ||
		EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, pkey) != 1 ||
		EVP_DigestSign(md, NULL, &raw_len, xmlSecBufferGetData(signed_info),
					   xmlSecBufferGetSize(signed_info)) != 1 ||
		(raw = malloc(raw_len)) == NULL ||
		EVP_DigestSign(md, raw, &raw_len, xmlSecBufferGetData(signed_info),
					   xmlSecBufferGetSize(signed_info)) != 1)
	{
		unsigned long e = ERR_get_error();
		const char *why_not = e ? ERR_reason_error_string(e) : NULL;

		sign_failed("PKCS#11 key \"%s\": signing failed%s%s", copy, why_not ? ": " : "",
					why_not ? why_not : "");
		edxml_hsm_failed();
		goto done;
	}
	EVP_MD_CTX_free(md);
	md = NULL;
	/* the value holds under the seal certificate (the first of cert) */
	bio = BIO_new_mem_buf(cert, (int) cert_len);
	seal = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	if (seal == NULL || (md = EVP_MD_CTX_new()) == NULL ||
		EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, X509_get0_pubkey(seal)) != 1 ||
		EVP_DigestVerify(md, raw, raw_len, xmlSecBufferGetData(signed_info),
						 xmlSecBufferGetSize(signed_info)) != 1)
	{
		sign_failed("PKCS#11 key \"%s\" is not the key of the seal certificate: its signature does not hold under it",
					copy);
		goto done;
	}
	b64 = malloc(4 * ((raw_len + 2) / 3) + 1);
	if (b64 == NULL)
	{
		sign_failed("out of memory");
		goto done;
	}
	EVP_EncodeBlock((unsigned char *) b64, raw, (int) raw_len);
	xmlNodeSetContent(value, BAD_CAST b64);
	rc = 0;
done:
	ERR_clear_error();
	EVP_MD_CTX_free(md);
	X509_free(seal);
	BIO_free(bio);
	free(raw);
	free(b64);
	memset(copy, 0, strlen(spec));
	free(copy);
	return rc;
}

/*
 * Sign one package (data, len bytes) with the key in key_file and the
 * certificate (PEM, with its chain), its empty attachments filled first
 * with files: the signed package into *out (xmlFree), or 1 and sign_error.
 */
static int
sign_package(const char *key_file, const char *cert, size_t cert_len, const char *data, size_t len,
			 int nfiles, char **files, size_t *lens, xmlChar **out, int *out_len)
{
	xmlDocPtr	doc;
	xmlNodePtr	header,
				sig,
				ref,
				key_info,
				x509;
	xmlSecDSigCtxPtr ctx;
	int			rc = 1;
	int			hsm = 0;

	sign_error[0] = '\0';
	*out = NULL;
	doc = xmlReadMemory(data, (int) len, NULL, NULL, PARSE_OPTIONS);
	if (doc == NULL)
		return sign_failed("the package is not well-formed XML");
	ctx = xmlSecDSigCtxCreate(NULL);
	if (ctx == NULL)
	{
		xmlFreeDoc(doc);
		return sign_failed("xmlsec: no signature context");
	}
	header = child(child(xmlDocGetRootElement(doc), "edXMLEnvelope"), "edXMLHeader");
	if (header == NULL)
	{
		sign_failed("the package has no edXMLHeader");
		goto done;
	}
	if (xmlSecFindNode(xmlDocGetRootElement(doc), xmlSecNodeSignature, xmlSecDSigNs))
	{
		sign_failed("the package is signed already");
		goto done;
	}
	if (nfiles > 0 && fill_attachments(xmlDocGetRootElement(doc), nfiles, files, lens) != 0)
		goto done;
	sig = xmlSecTmplSignatureCreate(doc, xmlSecTransformExclC14NId, xmlSecTransformRsaSha256Id, NULL);
	if (sig == NULL || xmlAddChild(header, sig) == NULL)
	{
		sign_failed("cannot add the signature template");
		goto done;
	}
	ref = xmlSecTmplSignatureAddReference(sig, xmlSecTransformSha256Id, NULL, BAD_CAST "", NULL);
	if (ref == NULL ||
		xmlSecTmplReferenceAddTransform(ref, xmlSecTransformEnvelopedId) == NULL ||
		xmlSecTmplReferenceAddTransform(ref, xmlSecTransformExclC14NId) == NULL)
	{
		sign_failed("cannot add the signature's reference");
		goto done;
	}
	key_info = xmlSecTmplSignatureEnsureKeyInfo(sig, NULL);
	x509 = key_info ? xmlSecTmplKeyInfoAddX509Data(key_info) : NULL;
	if (x509 == NULL || xmlSecTmplX509DataAddCertificate(x509) == NULL)
	{
		sign_failed("cannot add the signature's KeyInfo");
		goto done;
	}
	if (strncmp(key_file, "pkcs11:", 7) == 0)
	{
		if (hsm_stand_in_key(ctx) != 0)
			goto done;
		hsm = 1;
	}
	else
	{
		ctx->signKey = xmlSecCryptoAppKeyLoad(key_file, xmlSecKeyDataFormatPem, NULL, NULL, NULL);
		if (ctx->signKey == NULL)
		{
			sign_failed("cannot load the key %s", key_file);
			goto done;
		}
	}
	if (xmlSecCryptoAppKeyCertLoadMemory(ctx->signKey, (const xmlSecByte *) cert,
										 (xmlSecSize) cert_len, xmlSecKeyDataFormatPem) < 0)
	{
		sign_failed("cannot load the certificate");
		goto done;
	}
	/* the certificates after the seal's (its chain) go into X509Data too */
	{
		BIO		   *bio = BIO_new_mem_buf(cert, (int) cert_len);
		xmlSecKeyDataPtr x509data = xmlSecKeyGetData(ctx->signKey, xmlSecOpenSSLKeyDataX509Id);
		X509	   *c = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;	/* the seal's */

		X509_free(c);
		while (bio && x509data && (c = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
			if (xmlSecOpenSSLKeyDataX509AdoptCert(x509data, c) < 0)
			{
				X509_free(c);
				BIO_free(bio);
				sign_failed("cannot add a certificate of the chain");
				goto done;
			}
		BIO_free(bio);
		/* the end of the PEM is not an error to report later */
		ERR_clear_error();
	}
	first_error[0] = '\0';
	if (xmlSecDSigCtxSign(ctx, sig) < 0)
	{
		sign_failed("signing failed: %s", first_error[0] ? first_error : "no reason given");
		goto done;
	}
	if (hsm && hsm_sign_value(key_file, ctx, sig, cert, cert_len) != 0)
		goto done;
	xmlDocDumpMemoryEnc(doc, out, out_len, "UTF-8");
	if (*out == NULL)
		sign_failed("cannot write the signed package");
	else
		rc = 0;
done:
	xmlSecDSigCtxDestroy(ctx);
	xmlFreeDoc(doc);
	return rc;
}

static int
mode_sign(const char *key_file)
{
	size_t		cert_len;
	char	   *cert = read_pem(&cert_len);
	size_t		len;
	char	   *data = read_stdin((size_t) 1 << 30, &len);
	xmlChar    *out;
	int			out_len;

	if (sign_package(key_file, cert, cert_len, data, len, 0, NULL, NULL, &out, &out_len) != 0)
	{
		fprintf(stderr, "%s\n", sign_error);
		return 1;
	}
	if (fwrite(out, 1, out_len, stdout) != (size_t) out_len)
		return 1;
	xmlFree(out);
	return fflush(stdout) == 0 ? 0 : 1;
}

/* ------------------------------------------------------------------------
 * Serving
 * ------------------------------------------------------------------------
 */
#define SERVE_MAX_FILES 256

/* exactly n bytes of stdin, NUL-terminated; NULL when short (the end) */
static char *
read_exact(size_t n)
{
	char	   *p = malloc(n + 1);

	if (p == NULL)
	{
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
	if (n > 0 && fread(p, 1, n, stdin) != n)
	{
		free(p);
		return NULL;
	}
	p[n] = '\0';
	return p;
}

static int
answer(int code, const char *data, size_t len)
{
	printf("%d %zu\n", code, len);
	if (len > 0 && fwrite(data, 1, len, stdout) != len)
		return -1;
	return fflush(stdout) == 0 ? 0 : -1;
}

/* the numbers of a request's header after its word; how many, at most max */
static int
header_numbers(const char *p, size_t *v, int max)
{
	int			n = 0;

	while (*p == ' ')
		p++;
	while (*p && *p != '\n')
	{
		char	   *end;

		if (n == max || !isdigit((unsigned char) *p))
			return -1;
		v[n++] = (size_t) strtoull(p, &end, 10);
		p = end;
		while (*p == ' ')
			p++;
	}
	return n;
}

static void
renew_cpu(rlim_t budget)
{
	struct rusage ru;
	struct rlimit rl;

	if (getrusage(RUSAGE_SELF, &ru) == 0 && getrlimit(RLIMIT_CPU, &rl) == 0)
	{
		rlim_t		used = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + 1;
		rlim_t		want = used + budget;

		rl.rlim_cur = (rl.rlim_max == RLIM_INFINITY || want < rl.rlim_max) ? want : rl.rlim_max;
		setrlimit(RLIMIT_CPU, &rl);
	}
}

static int
serve_read(const size_t *v, int n)
{
	char	   *volatile pem = NULL;
	char	   *volatile data = NULL;
	Buf			b = {0};

	if (n != 3 || v[1] > 16 * 1024 * 1024 || v[2] > ((size_t) 1 << 31) - 2)
		return -1;
	if ((pem = read_exact(v[1])) == NULL)
		return -1;
	if (v[2] > v[0])
	{
		/* not kept: read past it, refused */
		char		sink[65536];
		size_t		left = v[2];

		while (left > 0)
		{
			size_t		r = fread(sink, 1, left < sizeof(sink) ? left : sizeof(sink), stdin);

			if (r == 0)
				return -1;
			left -= r;
		}
		data = read_exact(0);
	}
	else if ((data = read_exact(v[2])) == NULL)
		return -1;
	if (setjmp(refused_jmp) != 0)
	{
		if (request_doc)
			xmlFreeDoc(request_doc);
		request_doc = NULL;
		free(pem);
		free(data);
		return answer(2, refusal.data, refusal.len);
	}
	read_package(pem, v[1], data, v[2], v[0], &b);
	free(pem);
	free(data);
	n = answer(0, b.data, b.len);
	free(b.data);
	return n;
}

static int
serve_sign(const size_t *v, int n)
{
	char	   *key = NULL,
			   *cert = NULL,
			   *data = NULL;
	char	   *files[SERVE_MAX_FILES];
	size_t		lens[SERVE_MAX_FILES];
	int			nfiles,
				rc;
	xmlChar    *out;
	int			out_len;

	if (n < 4 || v[0] > 4096 || v[1] > 16 * 1024 * 1024 || v[2] > ((size_t) 1 << 30) ||
		v[3] > SERVE_MAX_FILES || (size_t) n != 4 + v[3])
		return -1;
	nfiles = (int) v[3];
	if ((key = read_exact(v[0])) == NULL || (cert = read_exact(v[1])) == NULL ||
		(data = read_exact(v[2])) == NULL)
		return -1;
	for (int i = 0; i < nfiles; i++)
	{
		lens[i] = v[4 + i];
		if (lens[i] > ((size_t) 1 << 30) || (files[i] = read_exact(lens[i])) == NULL)
			return -1;
	}
	if (sign_package(key, cert, v[1], data, v[2], nfiles, files, lens, &out, &out_len) != 0)
		rc = answer(1, sign_error, strlen(sign_error));
	else
	{
		rc = answer(0, (const char *) out, (size_t) out_len);
		xmlFree(out);
	}
	for (int i = 0; i < nfiles; i++)
		free(files[i]);
	free(key);
	free(cert);
	free(data);
	return rc;
}

static int
serve(rlim_t budget)
{
	char		line[8192];

	serving = 1;
	while (fgets(line, sizeof(line), stdin) != NULL)
	{
		size_t		v[4 + SERVE_MAX_FILES];
		int			n;
		int			rc;

		if (strchr(line, '\n') == NULL)
			return 1;
		renew_cpu(budget);
		if (strncmp(line, "read ", 5) == 0 && (n = header_numbers(line + 5, v, 3)) >= 0)
			rc = serve_read(v, n);
		else if (strncmp(line, "sign ", 5) == 0 &&
				 (n = header_numbers(line + 5, v, 4 + SERVE_MAX_FILES)) >= 0)
			rc = serve_sign(v, n);
		else
			return 1;
		if (rc != 0)
			return 1;
	}
	return 0;
}

static xmlParserInputPtr
no_entity_loader(const char *url, const char *id, xmlParserCtxtPtr ctxt)
{
	(void) url;
	(void) id;
	(void) ctxt;
	return NULL;
}

int
main(int argc, char **argv)
{
	int			rc;

	xmlInitParser();
	/* nothing outside the package is ever read */
	xmlSetExternalEntityLoader(no_entity_loader);
	if (crypto_init() < 0)
		return 1;
	if (argc == 3 && strcmp(argv[1], "serve") == 0)
		rc = serve(atoll(argv[2]) > 0 ? (rlim_t) atoll(argv[2]) : 30);
	else if (argc == 3 && strcmp(argv[1], "read") == 0)
		rc = mode_read((size_t) strtoull(argv[2], NULL, 10));
	else if (argc == 3 && strcmp(argv[1], "sign") == 0)
		rc = mode_sign(argv[2]);
	else
	{
		fprintf(stderr, "usage: %s read MAX_BYTES | sign KEY_FILE | serve CPU_SECONDS\n", argv[0]);
		rc = 1;
	}
	if (kept_mngr)
		xmlSecKeysMngrDestroy(kept_mngr);
	xmlSecCryptoShutdown();
	xmlSecCryptoAppShutdown();
	xmlSecShutdown();
	return rc;
}
