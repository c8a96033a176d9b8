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

void
ioffice_signer_reset(void)
{
	HASH_SEQ_STATUS hs;
	CachedKey  *k;

	if (key_cache == NULL)
		return;
	hash_seq_init(&hs, key_cache);
	while ((k = hash_seq_search(&hs)) != NULL)
		EVP_PKEY_free(k->key);
	hash_destroy(key_cache);
	key_cache = NULL;
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
	BIO		   *cert_bio = NULL;
	BIO		   *in = NULL;
	BIO		   *out = NULL;
	X509	   *cert = NULL;
	X509	   *extra;
	STACK_OF(X509) *chain = NULL;
	CMS_ContentInfo *cms = NULL;
	EVP_PKEY   *key;
	BUF_MEM    *mem;
	const unsigned int flags = CMS_DETACHED | CMS_BINARY | CMS_PARTIAL | CMS_NOSMIMECAP;

	ERR_clear_error();
	key = load_key(key_file, &result.reason);
	if (key == NULL)
		return result;

	cert_bio = BIO_new_mem_buf(cert_pem, -1);
	cert = cert_bio ? PEM_read_bio_X509(cert_bio, NULL, NULL, NULL) : NULL;
	if (cert == NULL)
	{
		result.reason = openssl_reason("the certificate cannot be read");
		goto done;
	}
	if (X509_check_private_key(cert, key) != 1)
	{
		result.reason = pstrdup("the key file does not hold the certificate's private key");
		goto done;
	}
	/* certificates after the first in the PEM are its chain: carried in the CMS */
	chain = sk_X509_new_null();
	while ((extra = PEM_read_bio_X509(cert_bio, NULL, NULL, NULL)) != NULL)
		sk_X509_push(chain, extra);
	ERR_clear_error();

	in = BIO_new_mem_buf(content, (int) len);
	cms = CMS_sign(NULL, NULL, chain, NULL, flags);
	if (cms == NULL ||
		CMS_add1_signer(cms, cert, key, EVP_sha256(), flags | CMS_CADES) == NULL ||
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
	sk_X509_pop_free(chain, X509_free);
	X509_free(cert);
	BIO_free(cert_bio);
	return result;
}
