/*-------------------------------------------------------------------------
 * signer.c
 *	  The in-process OpenSSL signer: detached CMS SignedData, CAdES-BES
 *	  (SHA-256, signing time, ESS signingCertificateV2), DER-encoded.
 *
 * Private keys never enter the database: a certificate row names a key
 * file in the directory ioffice.keystore, or (the seal) a PKCS#11 URI of a
 * key in a hardware security module, loaded by hsm_key.c.  A key file must be a regular
 * file owned by the server's OS user and readable by nobody else; anything
 * else is refused.  Keys are loaded once per worker and kept (keyed by file
 * name, reloaded when the file changes; the file is checked again at most
 * once a second).  This is one implementation of
 * "sign these bytes with this certificate"; a PAdES signer or a remote
 * signing service would be another behind the same
 * ioffice_sign_detached_digest().
 * Nothing here raises a PostgreSQL error for a signing failure: the caller
 * records the reason on the job.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "utils/hsearch.h"
#include "utils/timestamp.h"
#include "utils/memutils.h"

#include "worker.h"

typedef struct CachedKey
{
	char		file[MAXPGPATH];	/* key: name within the keystore */
	/* the file as it was when loaded: any change reloads it */
	struct timespec mtime;
	struct timespec ctime;
	off_t		size;
	ino_t		inode;
	dev_t		device;
	EVP_PKEY   *key;
	uint64		generation;		/* which load of a key this is */
} CachedKey;

static bool
same_file(const CachedKey *entry, const struct stat *st)
{
	return entry->mtime.tv_sec == st->st_mtim.tv_sec &&
		entry->mtime.tv_nsec == st->st_mtim.tv_nsec &&
		entry->ctime.tv_sec == st->st_ctim.tv_sec &&
		entry->ctime.tv_nsec == st->st_ctim.tv_nsec &&
		entry->size == st->st_size && entry->inode == st->st_ino &&
		entry->device == st->st_dev;
}

static uint64 key_loads = 0;

static HTAB *key_cache = NULL;

static char *openssl_reason(const char *what);

typedef struct SignTemplate
{
	uint64		cert_parse;		/* the certificate and key it was made for */
	uint64		key_generation;
	bool		usable;			/* false: use cms_from_digest() */
	unsigned char *der;			/* in TopMemoryContext */
	int			len;
	int			attrs_off;		/* the signed attributes, [0] IMPLICIT SET OF */
	int			attrs_len;
	int			digest_off;
	int			time_off;
	int			sig_off;
	int			sig_len;
	EVP_PKEY_CTX *ctx;			/* RSA PKCS#1 v1.5, SHA-256 */
} SignTemplate;

/*
 * The certificates (and chains) parsed lately, each with its template: the
 * jobs of a batch are signed with a few certificates, and parsing PEM costs
 * as much as the RSA, making a template several times more.
 */
#define SIGNER_CACHE 16

typedef struct SignerEntry
{
	char	   *pem;			/* NULL: a free slot */
	X509	   *cert;
	STACK_OF(X509) *chain;
	uint64		parse_id;		/* unique per parse */
	uint64		checked_key;	/* key generation checked to match, 0: none */
	uint64		used;
	SignTemplate tpl;
} SignerEntry;

static SignerEntry entries[SIGNER_CACHE];
static SignerEntry *cur = NULL;	/* the one in use */
static X509 *cached_cert = NULL;	/* cur's */
static STACK_OF(X509) *cached_chain = NULL;
static uint64 cert_parses = 0;
static uint64 cache_clock = 0;

static void
entry_free(SignerEntry *e)
{
	X509_free(e->cert);
	sk_X509_pop_free(e->chain, X509_free);
	if (e->pem)
		pfree(e->pem);
	if (e->tpl.der)
		pfree(e->tpl.der);
	EVP_PKEY_CTX_free(e->tpl.ctx);
	memset(e, 0, sizeof(*e));
}

static bool
parse_certificate(const char *pem, char **reason)
{
	BIO		   *bio;
	X509	   *cert;
	X509	   *extra;
	STACK_OF(X509) *chain;
	SignerEntry *victim = &entries[0];

	for (int i = 0; i < SIGNER_CACHE; i++)
	{
		if (entries[i].pem != NULL && strcmp(entries[i].pem, pem) == 0)
		{
			cur = &entries[i];
			cur->used = ++cache_clock;
			cached_cert = cur->cert;
			cached_chain = cur->chain;
			return true;
		}
		if (entries[i].used < victim->used)
			victim = &entries[i];
	}
	bio = BIO_new_mem_buf(pem, -1);
	cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	if (cert == NULL)
	{
		BIO_free(bio);
		*reason = openssl_reason("the certificate cannot be read");
		return false;
	}
	/* certificates after the first in the PEM are its chain: carried in the CMS */
	chain = sk_X509_new_null();
	while ((extra = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
		sk_X509_push(chain, extra);
	BIO_free(bio);
	ERR_clear_error();

	entry_free(victim);
	cur = victim;
	cur->cert = cert;
	cur->chain = chain;
	cur->pem = MemoryContextStrdup(TopMemoryContext, pem);
	cur->parse_id = ++cert_parses;
	cur->used = ++cache_clock;
	cached_cert = cert;
	cached_chain = chain;
	return true;
}

static char *
openssl_reason(const char *what)
{
	unsigned long e = ERR_get_error();
	char		buf[256];

	if (e == 0)
		return pstrdup(what);
	ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return psprintf("%s: %s", what, buf);
}

/* the key file checked last, and when */
static CachedKey *last_entry = NULL;
static char last_path[MAXPGPATH];
static TimestampTz last_checked = 0;

static void
remember_checked(CachedKey *entry, const char *path, TimestampTz now)
{
	last_entry = entry;
	strlcpy(last_path, path, sizeof(last_path));
	last_checked = now;
}

/*
 * The key file's path in the keystore into path (MAXPGPATH), or false with
 * *reason set: only a plain name of a file in the keystore is accepted, so
 * that a certificate row cannot make the worker read anything else.
 */
static bool
key_file_path(const char *key_file, char *path, char **reason)
{
	if (ioffice_keystore == NULL || ioffice_keystore[0] == '\0')
	{
		*reason = pstrdup("no keystore: ioffice.keystore is not set");
		return false;
	}
	if (key_file == NULL || key_file[0] == '\0' || strchr(key_file, '/') != NULL ||
		strcmp(key_file, "..") == 0 || strcmp(key_file, ".") == 0 || strlen(key_file) >= MAXPGPATH)
	{
		*reason = psprintf("key file name \"%s\" is not a plain file name of the keystore",
						   key_file ? key_file : "");
		return false;
	}
	snprintf(path, MAXPGPATH, "%s/%s", ioffice_keystore, key_file);
	return true;
}

/*
 * The key of path when the file was checked (owner, mode, unchanged) less
 * than a second ago, else NULL: a batch signs with the same key again and
 * again, and open() and fstat() for each job cost more than the rest of
 * the bookkeeping.
 */
static EVP_PKEY *
recently_checked_key(const char *path, TimestampTz now, uint64 *generation)
{
	if (last_entry != NULL && last_entry->key != NULL && strcmp(last_path, path) == 0 &&
		now >= last_checked && now - last_checked < USECS_PER_SEC)
	{
		*generation = last_entry->generation;
		return last_entry->key;
	}
	last_entry = NULL;
	return NULL;
}

/*
 * The key file opened, or -1 with *reason set: it must be a regular file
 * (O_NOFOLLOW: a link could point anywhere on the server) owned by the
 * server's user and readable by nobody else.  *st is what fstat() said.
 */
static int
open_key_file(const char *key_file, const char *path, struct stat *st, char **reason)
{
	int			fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
	{
		*reason = psprintf("key file \"%s\" cannot be opened: %m", key_file);
		return -1;
	}
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode))
	{
		close(fd);
		*reason = psprintf("key file \"%s\" is not a regular file", key_file);
		return -1;
	}
	if (st->st_uid != geteuid() || (st->st_mode & (S_IRWXG | S_IRWXO)) != 0)
	{
		close(fd);
		*reason = psprintf("key file \"%s\" may be read by others than the server's user (mode %04o); "
						   "it is not used", key_file, (unsigned) (st->st_mode & 07777));
		return -1;
	}
	return fd;
}

/* The cache entry of a key file, made on first use; *found says if it was there. */
static CachedKey *
key_cache_entry(const char *key_file, bool *found)
{
	char		name[MAXPGPATH];

	if (key_cache == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = MAXPGPATH;
		ctl.entrysize = sizeof(CachedKey);
		ctl.hcxt = TopMemoryContext;
		key_cache = hash_create("ioffice signing keys", 16, &ctl,
								HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	/* zero-filled: the whole key is compared */
	memset(name, 0, sizeof(name));
	strlcpy(name, key_file, sizeof(name));
	return hash_search(key_cache, name, HASH_ENTER, found);
}

/*
 * Read the private key from fd (closed here) into entry, with the file's
 * identity as fstat() saw it, so that any later change reloads it; a new
 * generation, so that the certificate check and the template are redone.
 */
static EVP_PKEY *
read_key(CachedKey *entry, int fd, const struct stat *st, const char *key_file, char **reason)
{
	BIO		   *bio = BIO_new_fd(fd, BIO_CLOSE);
	EVP_PKEY   *key;

	if (bio == NULL)
	{
		close(fd);
		*reason = openssl_reason("cannot read the key file");
		return NULL;
	}
	key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (key == NULL)
	{
		*reason = openssl_reason(psprintf("key file \"%s\" holds no readable private key", key_file));
		return NULL;
	}
	entry->key = key;
	entry->mtime = st->st_mtim;
	entry->ctime = st->st_ctim;
	entry->size = st->st_size;
	entry->inode = st->st_ino;
	entry->device = st->st_dev;
	entry->generation = ++key_loads;
	return key;
}

/*
 * The private key a certificate row names, or NULL with *reason set: a
 * PKCS#11 URI (key_uri: the seal in an HSM, hsm_key.c) or a key file of the
 * keystore.  Every signing path (PAdES, detached, audit checkpoints) comes
 * here.  A key file name cannot start with "pkcs11:" (certificate.key_file
 * allows no colon).
 */
static EVP_PKEY *
load_key(const char *key_file, uint64 *generation, char **reason)
{
	char		path[MAXPGPATH];
	struct stat st;
	int			fd;
	CachedKey  *entry;
	bool		found;
	EVP_PKEY   *key;
	TimestampTz now;

	if (ioffice_is_pkcs11_uri(key_file))
		return ioffice_hsm_load_key(key_file, generation, reason);
	if (!key_file_path(key_file, path, reason))
		return NULL;
	now = GetCurrentTimestamp();
	if ((key = recently_checked_key(path, now, generation)) != NULL)
		return key;
	if ((fd = open_key_file(key_file, path, &st, reason)) < 0)
		return NULL;

	entry = key_cache_entry(key_file, &found);
	if (found && entry->key != NULL && same_file(entry, &st))
	{
		/* unchanged since it was loaded */
		close(fd);
		*generation = entry->generation;
		remember_checked(entry, path, now);
		return entry->key;
	}
	if (found && entry->key != NULL)
		EVP_PKEY_free(entry->key);
	entry->key = NULL;

	if ((key = read_key(entry, fd, &st, key_file, reason)) == NULL)
		return NULL;
	*generation = entry->generation;
	remember_checked(entry, path, now);
	return key;
}


/* ------------------------------------------------------------------------
 * Making the CMS.
 *
 * A CMS with signed attributes signs them, not the content: the content
 * enters only through the messageDigest attribute.  So the worker signs
 * from the SHA-256 the file row holds (computed by attach()), without
 * reading the content, and the result is the same DER that CMS_final()
 * makes from the content.
 * ------------------------------------------------------------------------
 */

#define SHA256_LEN 32
#define UTCTIME_LEN 13			/* YYMMDDHHMMSSZ */

/*
 * OpenSSL's way, for any key: the signer info with CAdES-BES attributes
 * (ESS signingCertificateV2 from CMS_CADES), our messageDigest, contentType
 * and signingTime (now when utctime is NULL), then the signature over them.
 */
static CMS_ContentInfo *
cms_from_digest(EVP_PKEY *key, const unsigned char *digest, const char *utctime,
				char **reason)
{
	const unsigned int flags = CMS_DETACHED | CMS_BINARY | CMS_PARTIAL | CMS_NOSMIMECAP;
	CMS_ContentInfo *cms;
	CMS_SignerInfo *si;

	cms = CMS_sign(NULL, NULL, cached_chain, NULL, flags);
	if (cms == NULL ||
		(si = CMS_add1_signer(cms, cached_cert, key, EVP_sha256(), flags | CMS_CADES)) == NULL ||
		(utctime != NULL &&
		 CMS_signed_add1_attr_by_NID(si, NID_pkcs9_signingTime, V_ASN1_UTCTIME,
									 utctime, UTCTIME_LEN) != 1) ||
		CMS_signed_add1_attr_by_NID(si, NID_pkcs9_messageDigest, V_ASN1_OCTET_STRING,
									digest, SHA256_LEN) != 1 ||
		CMS_signed_add1_attr_by_NID(si, NID_pkcs9_contentType, V_ASN1_OBJECT,
									OBJ_nid2obj(NID_pkcs7_data), -1) != 1 ||
		CMS_SignerInfo_sign(si) != 1)
	{
		*reason = openssl_reason("signing failed");
		CMS_ContentInfo_free(cms);
		return NULL;
	}
	return cms;
}

/* DER of a CMS, in memory from malloc (OPENSSL_free it), or NULL */
static unsigned char *
cms_der(CMS_ContentInfo *cms, int *len)
{
	unsigned char *der = NULL;

	*len = i2d_CMS_ContentInfo(cms, &der);
	if (*len <= 0)
		return NULL;
	return der;
}

/*
 * The fast way, for RSA keys: PKCS#1 v1.5 signatures are deterministic and
 * every field of the DER has a fixed length (digest, UTCTime, a 2048-bit
 * signature), so the DER made by OpenSSL once is a template in which only
 * the messageDigest, the signingTime and the signature change.  Per job:
 * patch two fields, SHA-256 over the signed attributes (re-tagged as the
 * SET OF they are signed as), one private-key operation.  The template is
 * trusted only after it reproduced, byte for byte, what OpenSSL's
 * CMS_final() makes from real content at a given time.
 */

static EVP_MD *sha256_md = NULL;

static const unsigned char *
find_bytes(const unsigned char *hay, int hay_len, const unsigned char *needle, int len)
{
	for (int i = 0; i + len <= hay_len; i++)
		if (hay[i] == needle[0] && memcmp(hay + i, needle, len) == 0)
			return hay + i;
	return NULL;
}

/* the UTCTime of now, or false when UTCTime cannot say it (from 2050) */
static bool
utctime_now(char *out)
{
	time_t		now = time(NULL);
	struct tm	tm;

	if (gmtime_r(&now, &tm) == NULL || tm.tm_year < 50 || tm.tm_year >= 150)
		return false;
	snprintf(out, UTCTIME_LEN + 1, "%02d%02d%02d%02d%02d%02dZ", tm.tm_year % 100,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	return true;
}

/* the template's DER with this digest and time, signed; NULL if that fails */
static bytea *
template_fill(const unsigned char *digest, const char *utctime)
{
	bytea	   *out = palloc(VARHDRSZ + cur->tpl.len);
	unsigned char *der = (unsigned char *) VARDATA(out);
	unsigned char *attrs;
	unsigned char md[SHA256_LEN];
	size_t		siglen = cur->tpl.sig_len;

	SET_VARSIZE(out, VARHDRSZ + cur->tpl.len);
	memcpy(der, cur->tpl.der, cur->tpl.len);
	memcpy(der + cur->tpl.digest_off, digest, SHA256_LEN);
	memcpy(der + cur->tpl.time_off, utctime, UTCTIME_LEN);

	/* signed as a SET OF (tag 0x31), stored as [0] IMPLICIT (0xA0) */
	attrs = palloc(cur->tpl.attrs_len);
	memcpy(attrs, der + cur->tpl.attrs_off, cur->tpl.attrs_len);
	attrs[0] = 0x31;
	if (sha256_md == NULL)
		sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);	/* once, not per job */
	if (sha256_md == NULL ||
		EVP_Digest(attrs, cur->tpl.attrs_len, md, NULL, sha256_md, NULL) != 1 ||
		EVP_PKEY_sign(cur->tpl.ctx, der + cur->tpl.sig_off, &siglen, md, SHA256_LEN) != 1 ||
		siglen != (size_t) cur->tpl.sig_len)
	{
		ERR_clear_error();
		pfree(attrs);
		pfree(out);
		return NULL;
	}
	pfree(attrs);
	return out;
}

/*
 * What OpenSSL makes from CONTENT at UTCTIME with the regular streaming
 * API: the reference the template must reproduce.
 */
static unsigned char *
reference_der(EVP_PKEY *key, const char *content, const char *utctime, int *len,
			  CMS_ContentInfo **cms_out)
{
	const unsigned int flags = CMS_DETACHED | CMS_BINARY | CMS_PARTIAL | CMS_NOSMIMECAP;
	CMS_ContentInfo *cms;
	CMS_SignerInfo *si;
	BIO		   *in = BIO_new_mem_buf(content, -1);
	unsigned char *der = NULL;

	cms = CMS_sign(NULL, NULL, cached_chain, NULL, flags);
	if (in != NULL && cms != NULL &&
		(si = CMS_add1_signer(cms, cached_cert, key, EVP_sha256(), flags | CMS_CADES)) != NULL &&
		CMS_signed_add1_attr_by_NID(si, NID_pkcs9_signingTime, V_ASN1_UTCTIME,
									utctime, UTCTIME_LEN) == 1 &&
		CMS_final(cms, in, NULL, flags) == 1)
		der = cms_der(cms, len);
	BIO_free(in);
	if (der != NULL && cms_out != NULL)
		*cms_out = cms;
	else
		CMS_ContentInfo_free(cms);
	return der;
}

/* the two contents and times the template is made from and proven on */
static const char *const tpl_content[2] = {"ioffice template 1", "ioffice template, 2nd"};
static const char *const tpl_times[2] = {"250102030405Z", "310607080910Z"};

/*
 * Where the messageDigest, the signingTime and the signature are in der
 * (made from tpl_content[0] at tpl_times[0]), each found by its value; false
 * when one is missing.
 */
static bool
template_locate_fields(SignTemplate *t, const unsigned char *der, int len, CMS_ContentInfo *cms)
{
	unsigned char digest[SHA256_LEN];
	unsigned char time_tlv[2 + UTCTIME_LEN];
	const unsigned char *p;
	ASN1_OCTET_STRING *sig;

	if (EVP_Digest(tpl_content[0], strlen(tpl_content[0]), digest, NULL, EVP_sha256(), NULL) != 1)
		return false;
	time_tlv[0] = 0x17;			/* UTCTime */
	time_tlv[1] = UTCTIME_LEN;
	memcpy(time_tlv + 2, tpl_times[0], UTCTIME_LEN);
	sig = CMS_SignerInfo_get0_signature(sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0));

	if ((p = find_bytes(der, len, digest, SHA256_LEN)) == NULL)
		return false;
	t->digest_off = p - der;
	if ((p = find_bytes(der, len, time_tlv, sizeof(time_tlv))) == NULL)
		return false;
	t->time_off = p - der + 2;
	if (sig == NULL || (p = find_bytes(der, len, ASN1_STRING_get0_data(sig),
									   ASN1_STRING_length(sig))) == NULL)
		return false;
	t->sig_off = p - der;
	t->sig_len = ASN1_STRING_length(sig);
	return true;
}

/*
 * Where the signed attributes are: the [0] IMPLICIT header just before the
 * contentType attribute (the first of them in DER order), whatever the
 * length's form; then the digest and the time must lie inside them and
 * the signature after them, or the template would patch the wrong bytes.
 */
static bool
template_locate_attrs(SignTemplate *t, const unsigned char *der, int len)
{
	/* the contentType attribute (id-data) */
	static const unsigned char content_type[] = {
		0x30, 0x18, 0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x03,
		0x31, 0x0B, 0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x01};
	const unsigned char *ct;

	if ((ct = find_bytes(der, len, content_type, sizeof(content_type))) == NULL)
		return false;
	/* A0 len, A0 81 len or A0 82 len len */
	if (ct - der >= 2 && ct[-2] == 0xA0 && ct[-1] < 0x80)
	{
		t->attrs_off = ct - der - 2;
		t->attrs_len = 2 + ct[-1];
	}
	else if (ct - der >= 3 && ct[-3] == 0xA0 && ct[-2] == 0x81)
	{
		t->attrs_off = ct - der - 3;
		t->attrs_len = 3 + ct[-1];
	}
	else if (ct - der >= 4 && ct[-4] == 0xA0 && ct[-3] == 0x82)
	{
		t->attrs_off = ct - der - 4;
		t->attrs_len = 4 + (ct[-2] << 8) + ct[-1];
	}
	else
		return false;
	return !(t->digest_off < t->attrs_off || t->time_off < t->attrs_off ||
			 t->digest_off + SHA256_LEN > t->attrs_off + t->attrs_len ||
			 t->time_off + UTCTIME_LEN > t->attrs_off + t->attrs_len ||
			 t->attrs_off + t->attrs_len > t->sig_off ||
			 t->sig_off + t->sig_len > len);
}

/*
 * Keep der as the template (in TopMemoryContext: it serves every later
 * batch) and prepare the key's signing context once, for RSA PKCS#1 v1.5
 * over SHA-256, as CMS signs.
 */
static bool
template_keep(SignTemplate *t, EVP_PKEY *key, const unsigned char *der, int len)
{
	t->der = MemoryContextAlloc(TopMemoryContext, len);
	memcpy(t->der, der, len);
	t->len = len;
	t->ctx = EVP_PKEY_CTX_new(key, NULL);
	return !(t->ctx == NULL || EVP_PKEY_sign_init(t->ctx) != 1 ||
			 EVP_PKEY_CTX_set_rsa_padding(t->ctx, RSA_PKCS1_PADDING) != 1 ||
			 EVP_PKEY_CTX_set_signature_md(t->ctx, EVP_sha256()) != 1);
}

/*
 * The proof that the template may be trusted: both contents at both times
 * (other than the one it was made at), byte for byte as OpenSSL makes them.
 */
static bool
template_prove(EVP_PKEY *key)
{
	bool		ok = true;

	for (int i = 0; i < 2 && ok; i++)
	{
		unsigned char digest[SHA256_LEN];
		unsigned char *ref;
		int			ref_len;
		bytea	   *mine;

		if (EVP_Digest(tpl_content[i], strlen(tpl_content[i]), digest, NULL, EVP_sha256(), NULL) != 1)
		{
			ok = false;
			break;
		}
		ref = reference_der(key, tpl_content[i], tpl_times[1 - i], &ref_len, NULL);
		mine = ref ? template_fill(digest, tpl_times[1 - i]) : NULL;
		ok = mine != NULL && ref_len == cur->tpl.len && VARSIZE(mine) - VARHDRSZ == cur->tpl.len &&
			memcmp(VARDATA(mine), ref, ref_len) == 0;
		OPENSSL_free(ref);
		if (mine)
			pfree(mine);
	}
	return ok;
}

/*
 * The current certificate's template for this key: made from what OpenSSL
 * makes, then proven; when any step fails, it is not usable and the jobs
 * are signed with OpenSSL's CMS functions (the same DER, slower).
 */
static void
template_build(EVP_PKEY *key, uint64 key_generation)
{
	SignTemplate *t = &cur->tpl;
	CMS_ContentInfo *cms = NULL;
	unsigned char *der = NULL;
	int			len = 0;
	bool		ok;

	if (t->der)
		pfree(t->der);
	EVP_PKEY_CTX_free(t->ctx);
	memset(t, 0, sizeof(*t));
	t->cert_parse = cur->parse_id;
	t->key_generation = key_generation;
	t->usable = false;
	if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA)
		return;					/* ECDSA and others: randomised signatures */

	der = reference_der(key, tpl_content[0], tpl_times[0], &len, &cms);
	ok = der != NULL &&
		template_locate_fields(t, der, len, cms) &&
		template_locate_attrs(t, der, len) &&
		template_keep(t, key, der, len) &&
		template_prove(key);

	ERR_clear_error();
	OPENSSL_free(der);
	CMS_ContentInfo_free(cms);
	t->usable = ok;
	if (!ok)
		elog(LOG, "ioffice worker: no fast signing template for this certificate; "
			 "signing with OpenSSL's CMS functions");
}

static char *
key_mismatch(const char *key_file)
{
	if (ioffice_is_pkcs11_uri(key_file))
		return psprintf("the PKCS#11 key \"%s\" is not the certificate's private key", key_file);
	return pstrdup("the key file does not hold the certificate's private key");
}

/* A signing error: a key in an HSM is loaded again next time (hsm_key.c). */
static void
key_failed(const char *key_file, char **reason)
{
	if (!ioffice_is_pkcs11_uri(key_file))
		return;
	ioffice_hsm_key_failed(key_file);
	if (*reason != NULL)
		*reason = psprintf("PKCS#11 key \"%s\": %s", key_file, *reason);
}

/*
 * The configuration was reloaded: the HSM's module or PIN may have changed
 * (hsm_key.c decides whether its keys must be loaded again).
 */
void
ioffice_signer_reloaded(void)
{
	ioffice_hsm_reloaded();
}

/*
 * A detached CMS over content whose SHA-256 is DIGEST, signed with the
 * certificate (its chain carried along) and the key in the keystore or HSM.
 */
IofficeSignResult
ioffice_sign_detached_digest(const char *cert_pem, const char *key_file,
							 const unsigned char *digest)
{
	IofficeSignResult result = {false, NULL, NULL};
	CMS_ContentInfo *cms;
	EVP_PKEY   *key;
	uint64		generation = 0;
	char		now[UTCTIME_LEN + 1];
	unsigned char *der;
	int			len;

	ERR_clear_error();
	key = load_key(key_file, &generation, &result.reason);
	if (key == NULL)
		return result;
	if (!parse_certificate(cert_pem, &result.reason))
		return result;
	if (cur->checked_key != generation)
	{
		if (X509_check_private_key(cached_cert, key) != 1)
		{
			ERR_clear_error();
			result.reason = key_mismatch(key_file);
			return result;
		}
		cur->checked_key = generation;
	}

	if (cur->tpl.cert_parse != cur->parse_id || cur->tpl.key_generation != generation)
		template_build(key, generation);
	if (cur->tpl.usable && utctime_now(now))
	{
		result.cms = template_fill(digest, now);
		if (result.cms != NULL)
		{
			result.ok = true;
			return result;
		}
	}

	cms = cms_from_digest(key, digest, NULL, &result.reason);
	if (cms == NULL)
	{
		key_failed(key_file, &result.reason);
		return result;
	}
	der = cms_der(cms, &len);
	CMS_ContentInfo_free(cms);
	if (der == NULL)
	{
		result.reason = openssl_reason("the signature cannot be encoded");
		return result;
	}
	result.cms = palloc(VARHDRSZ + len);
	SET_VARSIZE(result.cms, VARHDRSZ + len);
	memcpy(VARDATA(result.cms), der, len);
	OPENSSL_free(der);
	result.ok = true;
	return result;
}

/*
 * PAdES (ETSI EN 319 142-1, baseline B-B): the CMS of a PDF signature
 * carries contentType, messageDigest and ESS signingCertificateV2, and no
 * signing-time attribute (the claimed time is the signature dictionary's
 * /M).  OpenSSL's CMS_SignerInfo_sign() always adds a signing time, so the
 * attribute is taken out afterwards and the signed attributes are signed
 * again here: their DER as the SET OF they are signed as (DER orders a SET
 * OF by the encodings of its members), digested and signed with the key.
 */
static int
der_compare(const void *a, const void *b)
{
	const ASN1_STRING *x = *(const ASN1_STRING *const *) a;
	const ASN1_STRING *y = *(const ASN1_STRING *const *) b;
	int			n = Min(x->length, y->length);
	int			c = memcmp(x->data, y->data, n);

	return c != 0 ? c : x->length - y->length;
}

/*
 * The signed attributes' DER as they are signed, into OUT: a SET OF (tag
 * 0x31, the length in DER's shortest form), its members in the order of
 * their encodings.  Also what the token path hands out to be signed
 * (extension/token_signing.c).  False when an attribute cannot be encoded.
 */
bool
ioffice_signed_attrs_der(CMS_SignerInfo *si, StringInfo out)
{
	int			n = CMS_signed_get_attr_count(si);
	ASN1_STRING **enc = palloc0(sizeof(ASN1_STRING *) * Max(n, 1));
	int			total = 0;
	bool		ok = true;

	for (int i = 0; i < n && ok; i++)
	{
		unsigned char *der = NULL;
		int			len = i2d_X509_ATTRIBUTE(CMS_signed_get_attr(si, i), &der);

		if (len <= 0 || (enc[i] = ASN1_STRING_new()) == NULL ||
			ASN1_STRING_set(enc[i], der, len) != 1)
			ok = false;
		OPENSSL_free(der);
		total += Max(len, 0);
	}
	if (ok && total >= 0x10000)
		ok = false;
	if (ok)
	{
		qsort(enc, n, sizeof(ASN1_STRING *), der_compare);
		appendStringInfoChar(out, 0x31);
		if (total >= 0x100)
		{
			appendStringInfoChar(out, (char) 0x82);
			appendStringInfoChar(out, (char) (total >> 8));
		}
		else if (total >= 0x80)
			appendStringInfoChar(out, (char) 0x81);
		appendStringInfoChar(out, (char) total);
		for (int i = 0; i < n; i++)
			appendBinaryStringInfo(out, (const char *) enc[i]->data, enc[i]->length);
	}
	for (int i = 0; i < n; i++)
		ASN1_STRING_free(enc[i]);
	pfree(enc);
	return ok;
}

static bool
resign_without_time(CMS_SignerInfo *si, EVP_PKEY *key, char **reason)
{
	int			idx = CMS_signed_get_attr_by_NID(si, NID_pkcs9_signingTime, -1);
	StringInfoData set;
	unsigned char *sig = NULL;
	size_t		siglen = 0;
	EVP_MD_CTX *md = NULL;
	bool		ok = false;

	if (idx >= 0)
		X509_ATTRIBUTE_free(CMS_signed_delete_attr(si, idx));
	initStringInfo(&set);
	if (!ioffice_signed_attrs_der(si, &set))
		goto done;
	md = EVP_MD_CTX_new();
	if (md == NULL || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
		EVP_DigestSign(md, NULL, &siglen, (unsigned char *) set.data, set.len) != 1)
		goto done;
	sig = OPENSSL_malloc(siglen);
	if (sig == NULL || EVP_DigestSign(md, sig, &siglen, (unsigned char *) set.data, set.len) != 1)
		goto done;
	if (ASN1_STRING_set(CMS_SignerInfo_get0_signature(si), sig, (int) siglen) != 1)
		goto done;
	ok = true;
done:
	if (!ok)
		*reason = openssl_reason("the PAdES signature could not be made");
	OPENSSL_free(sig);
	EVP_MD_CTX_free(md);
	pfree(set.data);
	return ok;
}

/*
 * The CMS of a PAdES signature over bytes whose SHA-256 is DIGEST (the
 * /ByteRange of a prepared PDF), signed with the certificate (its chain
 * carried along) and the key in the keystore: DER, or NULL and *reason.
 */
bytea *
ioffice_sign_pades_digest(const char *cert_pem, const char *key_file,
						  const unsigned char *digest, char **reason)
{
	const unsigned int flags = CMS_DETACHED | CMS_BINARY | CMS_PARTIAL | CMS_NOSMIMECAP;
	CMS_ContentInfo *cms = NULL;
	CMS_SignerInfo *si;
	EVP_PKEY   *key;
	uint64		generation = 0;
	unsigned char *der;
	int			len;
	bytea	   *out = NULL;

	ERR_clear_error();
	key = load_key(key_file, &generation, reason);
	if (key == NULL)
		return NULL;
	if (!parse_certificate(cert_pem, reason))
		return NULL;
	if (cur->checked_key != generation)
	{
		if (X509_check_private_key(cached_cert, key) != 1)
		{
			ERR_clear_error();
			*reason = key_mismatch(key_file);
			return NULL;
		}
		cur->checked_key = generation;
	}
	cms = CMS_sign(NULL, NULL, cached_chain, NULL, flags);
	if (cms == NULL ||
		(si = CMS_add1_signer(cms, cached_cert, key, EVP_sha256(), flags | CMS_CADES)) == NULL ||
		CMS_signed_add1_attr_by_NID(si, NID_pkcs9_messageDigest, V_ASN1_OCTET_STRING,
									digest, SHA256_LEN) != 1 ||
		CMS_signed_add1_attr_by_NID(si, NID_pkcs9_contentType, V_ASN1_OBJECT,
									OBJ_nid2obj(NID_pkcs7_data), -1) != 1 ||
		CMS_SignerInfo_sign(si) != 1)
	{
		*reason = openssl_reason("signing failed");
		key_failed(key_file, reason);
		CMS_ContentInfo_free(cms);
		return NULL;
	}
	if (resign_without_time(si, key, reason) && (der = cms_der(cms, &len)) != NULL)
	{
		out = palloc(VARHDRSZ + len);
		SET_VARSIZE(out, VARHDRSZ + len);
		memcpy(VARDATA(out), der, len);
		OPENSSL_free(der);
	}
	else
	{
		if (*reason == NULL)
			*reason = openssl_reason("the signature cannot be encoded");
		key_failed(key_file, reason);
	}
	CMS_ContentInfo_free(cms);
	ERR_clear_error();
	return out;
}
