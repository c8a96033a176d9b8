/*-------------------------------------------------------------------------
 * signer.c
 *	  The in-process OpenSSL signer: detached CMS SignedData, CAdES-BES
 *	  (SHA-256, signing time, ESS signingCertificateV2), DER-encoded.
 *
 * Private keys never enter the database: a certificate row names a key
 * file in the directory ioffice.keystore.  A key file must be a regular
 * file owned by the server's OS user and readable by nobody else; anything
 * else is refused.  Keys are loaded once per worker and kept (keyed by file
 * name, reloaded when the file changes).  This is one implementation of
 * "sign these bytes with this certificate"; a PAdES signer or a remote
 * signing service would be another behind the same ioffice_sign_detached().
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
#include "utils/memutils.h"

#include "worker.h"

typedef struct CachedKey
{
	char		file[MAXPGPATH];	/* key: name within the keystore */
	time_t		mtime;
	ino_t		inode;
	EVP_PKEY   *key;
} CachedKey;

static HTAB *key_cache = NULL;

static char *openssl_reason(const char *what);

/*
 * The last certificate (and chain) parsed: the jobs of a batch are mostly
 * signed with the same one, and parsing PEM costs as much as the RSA.
 */
static char *cached_pem = NULL;
static X509 *cached_cert = NULL;
static STACK_OF(X509) *cached_chain = NULL;

static bool
parse_certificate(const char *pem, char **reason)
{
	BIO		   *bio;
	X509	   *cert;
	X509	   *extra;
	STACK_OF(X509) *chain;

	if (cached_pem != NULL && strcmp(cached_pem, pem) == 0)
		return true;
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

	X509_free(cached_cert);
	sk_X509_pop_free(cached_chain, X509_free);
	if (cached_pem)
		pfree(cached_pem);
	cached_cert = cert;
	cached_chain = chain;
	cached_pem = MemoryContextStrdup(TopMemoryContext, pem);
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

/* The private key of a key file of the keystore, or NULL with *reason set. */
static EVP_PKEY *
load_key(const char *key_file, char **reason)
{
	char		path[MAXPGPATH];
	struct stat st;
	int			fd;
	CachedKey  *entry;
	bool		found;
	BIO		   *bio;
	EVP_PKEY   *key;
	char		name[MAXPGPATH];

	if (ioffice_keystore == NULL || ioffice_keystore[0] == '\0')
	{
		*reason = pstrdup("no keystore: ioffice.keystore is not set");
		return NULL;
	}
	if (key_file == NULL || key_file[0] == '\0' || strchr(key_file, '/') != NULL ||
		strcmp(key_file, "..") == 0 || strcmp(key_file, ".") == 0 || strlen(key_file) >= MAXPGPATH)
	{
		*reason = psprintf("key file name \"%s\" is not a plain file name of the keystore",
						   key_file ? key_file : "");
		return NULL;
	}
	snprintf(path, sizeof(path), "%s/%s", ioffice_keystore, key_file);

	/* O_NOFOLLOW: a link could point anywhere on the server */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
	{
		*reason = psprintf("key file \"%s\" cannot be opened: %m", key_file);
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
	{
		close(fd);
		*reason = psprintf("key file \"%s\" is not a regular file", key_file);
		return NULL;
	}
	if (st.st_uid != geteuid() || (st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
	{
		close(fd);
		*reason = psprintf("key file \"%s\" may be read by others than the server's user (mode %04o); "
						   "it is not used", key_file, (unsigned) (st.st_mode & 07777));
		return NULL;
	}

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
	memset(name, 0, sizeof(name));
	strlcpy(name, key_file, sizeof(name));
	entry = hash_search(key_cache, name, HASH_ENTER, &found);
	if (found && entry->key != NULL && entry->mtime == st.st_mtime && entry->inode == st.st_ino)
	{
		close(fd);
		return entry->key;
	}
	if (found && entry->key != NULL)
		EVP_PKEY_free(entry->key);
	entry->key = NULL;

	bio = BIO_new_fd(fd, BIO_CLOSE);
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
	entry->mtime = st.st_mtime;
	entry->inode = st.st_ino;
	return key;
}

IofficeSignResult
ioffice_sign_detached(const char *cert_pem, const char *key_file,
					  const unsigned char *content, size_t len)
{
	IofficeSignResult result = {false, NULL, NULL};
	BIO		   *in = NULL;
	BIO		   *out = NULL;
	CMS_ContentInfo *cms = NULL;
	EVP_PKEY   *key;
	BUF_MEM    *mem;
	const unsigned int flags = CMS_DETACHED | CMS_BINARY | CMS_PARTIAL | CMS_NOSMIMECAP;

	ERR_clear_error();
	key = load_key(key_file, &result.reason);
	if (key == NULL)
		return result;
	if (!parse_certificate(cert_pem, &result.reason))
		return result;
	if (X509_check_private_key(cached_cert, key) != 1)
	{
		ERR_clear_error();
		result.reason = pstrdup("the key file does not hold the certificate's private key");
		return result;
	}

	in = BIO_new_mem_buf(content, (int) len);
	cms = CMS_sign(NULL, NULL, cached_chain, NULL, flags);
	if (cms == NULL ||
		CMS_add1_signer(cms, cached_cert, key, EVP_sha256(), flags | CMS_CADES) == NULL ||
		CMS_final(cms, in, NULL, flags) != 1)
	{
		result.reason = openssl_reason("signing failed");
		goto done;
	}
	out = BIO_new(BIO_s_mem());
	if (i2d_CMS_bio(out, cms) != 1)
	{
		result.reason = openssl_reason("the signature cannot be encoded");
		goto done;
	}
	BIO_get_mem_ptr(out, &mem);
	result.cms = palloc(VARHDRSZ + mem->length);
	SET_VARSIZE(result.cms, VARHDRSZ + mem->length);
	memcpy(VARDATA(result.cms), mem->data, mem->length);
	result.ok = true;

done:
	BIO_free(out);
	BIO_free(in);
	CMS_ContentInfo_free(cms);
	return result;
}
