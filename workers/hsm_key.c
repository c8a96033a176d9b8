/*-------------------------------------------------------------------------
 * hsm_key.c
 *	  The seal's private key in a hardware security module, through PKCS#11.
 *
 * A certificate row may name its key by a PKCS#11 URI (RFC 7512,
 * certificate.key_uri) instead of a key file of the keystore.  The signing
 * worker, and only it, loads such a key through OpenSSL's pkcs11 engine
 * (libp11, Debian's libengine-pkcs11-openssl): the engine opens the module
 * ioffice.pkcs11_module, logs in with the PIN read from the file
 * ioffice.pkcs11_pin_file, and hands back an EVP_PKEY whose private
 * operations run inside the token.  The key's bytes never leave the HSM; the
 * PIN is never in a table, and the PIN file must lie outside the data
 * directory (a base backup would carry it along).
 *
 * Keys are kept per worker, keyed by URI.  A failure (wrong PIN, no such
 * token or object, no module) is kept too, and returned to every job until
 * the configuration is reloaded (SIGHUP): an HSM locks its token after a
 * few wrong PINs, and retrying the login at every batch would lock it.
 *
 * Loading again cannot be done within the process once a key was loaded:
 * libp11 caches the key it hands out, that key holds a functional reference
 * to the engine (EVP_PKEY_set1_engine), and the cache is only emptied when
 * the engine's last functional reference goes; so ENGINE_finish() never
 * closes the module, the token stays logged in, and a new engine in the
 * same process shares the module's state (a changed PIN would not even be
 * tried).  So when a key was loaded and the module, the PIN file or the
 * PIN changed at a reload, or signing with a loaded key failed (the token
 * went away, its session was closed), the signing worker ends and the
 * postmaster starts it again (bgw_restart_time): the new process opens the
 * module afresh.  Without a loaded key (only failures so far), a reload
 * closes the engine and the next job tries again in the same process.
 *
 * Nothing here raises a PostgreSQL error: the caller records the reason on
 * the job.  Reasons name the URI, never the PIN.
 *-------------------------------------------------------------------------
 */

/*
 * The ENGINE API is deprecated in OpenSSL 3 (providers replace it) but still
 * supported, and the maintained PKCS#11 module for OpenSSL that Debian 12
 * ships is the libp11 engine; pkcs11-provider is not packaged there.  The
 * deprecation warnings are silenced here, in this one file, so that -Werror
 * keeps catching deprecated calls everywhere else.
 */
#define OPENSSL_SUPPRESS_DEPRECATED

#include "postgres.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "worker.h"

/* settings */
static char *pkcs11_module = NULL;
static char *pkcs11_pin_file = NULL;

/* the most a PIN file holds: PINs are short */
#define PIN_MAX 256

typedef struct HsmKey
{
	char	   *uri;			/* in TopMemoryContext */
	EVP_PKEY   *key;			/* NULL: failed, see reason */
	char	   *reason;			/* why it could not be loaded */
	uint64		generation;
} HsmKey;

static List *hsm_keys = NIL;	/* of HsmKey *, in TopMemoryContext */
static ENGINE *engine = NULL;	/* a functional reference, once initialised */
static bool key_loaded = false; /* the module stays open: see the header */
static bool restart_wanted = false;

/* what the engine was opened with, to see a reload change it */
typedef struct HsmConfig
{
	char		module[MAXPGPATH];
	char		pin_file[MAXPGPATH];
	bool		pin_exists;
	struct timespec mtime;
	struct timespec ctime;
	off_t		size;
	ino_t		inode;
	dev_t		device;
} HsmConfig;

static HsmConfig opened_with;

/*
 * Generations of HSM keys never equal those of key files (signer.c counts
 * from 1): the certificate check and the signing template are redone for a
 * reloaded key.
 */
static uint64 hsm_loads = UINT64CONST(1) << 62;

void
ioffice_hsm_init(void)
{
	DefineCustomStringVariable("ioffice.pkcs11_module",
							   "PKCS#11 module of the HSM holding the seal's key (a shared library).",
							   "Used by the signing worker for certificates registered with a key_uri; "
							   "e.g. /usr/lib/softhsm/libsofthsm2.so.",
							   &pkcs11_module,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("ioffice.pkcs11_pin_file",
							   "File holding the PIN of the HSM's token (its first line).",
							   "Outside the data directory, readable by the server's OS user and by no "
							   "other user.  Reload the configuration after changing it.",
							   &pkcs11_pin_file,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
}

bool
ioffice_is_pkcs11_uri(const char *ref)
{
	return ref != NULL && strncmp(ref, "pkcs11:", 7) == 0;
}

static char *
engine_reason(const char *what)
{
	unsigned long e = ERR_get_error();
	char		buf[256];

	if (e == 0)
		return pstrdup(what);
	ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return psprintf("%s: %s", what, buf);
}

/*
 * The PIN from the PIN file into pin (PIN_MAX + 1 bytes), or false with
 * *reason set.  The file must be a regular file that no other OS user may
 * read, outside the data directory.
 */
static bool
read_pin(char *pin, char **reason)
{
	char		real[PATH_MAX];
	char		data_real[PATH_MAX];
	struct stat st;
	int			fd;
	ssize_t		n;
	size_t		len;

	if (pkcs11_pin_file == NULL || pkcs11_pin_file[0] == '\0')
	{
		pin[0] = '\0';
		return true;			/* no login: only public objects are found */
	}
	if (realpath(pkcs11_pin_file, real) == NULL)
	{
		*reason = psprintf("the PIN file (ioffice.pkcs11_pin_file) cannot be found: %m");
		return false;
	}
	if (DataDir != NULL && realpath(DataDir, data_real) != NULL &&
		strncmp(real, data_real, strlen(data_real)) == 0 &&
		(real[strlen(data_real)] == '/' || real[strlen(data_real)] == '\0'))
	{
		*reason = pstrdup("the PIN file (ioffice.pkcs11_pin_file) is inside the data directory; it is not used");
		return false;
	}
	fd = open(real, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
	{
		*reason = psprintf("the PIN file (ioffice.pkcs11_pin_file) cannot be opened: %m");
		return false;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & S_IRWXO) != 0)
	{
		close(fd);
		*reason = psprintf("the PIN file (ioffice.pkcs11_pin_file) is not a regular file that only its owner "
						   "and group may read (mode %04o); it is not used", (unsigned) (st.st_mode & 07777));
		return false;
	}
	n = read(fd, pin, PIN_MAX + 1);
	close(fd);
	if (n < 0 || n > PIN_MAX)
	{
		explicit_bzero(pin, PIN_MAX + 1);
		*reason = pstrdup("the PIN file (ioffice.pkcs11_pin_file) cannot be read, or is too long");
		return false;
	}
	pin[n] = '\0';
	len = strcspn(pin, "\r\n");
	pin[len] = '\0';
	if (len == 0)
	{
		*reason = pstrdup("the PIN file (ioffice.pkcs11_pin_file) is empty");
		return false;
	}
	return true;
}

/* the current configuration, as it is compared at a reload */
static void
current_config(HsmConfig *c)
{
	struct stat st;

	memset(c, 0, sizeof(*c));
	strlcpy(c->module, pkcs11_module ? pkcs11_module : "", sizeof(c->module));
	strlcpy(c->pin_file, pkcs11_pin_file ? pkcs11_pin_file : "", sizeof(c->pin_file));
	if (c->pin_file[0] != '\0' && stat(c->pin_file, &st) == 0)
	{
		c->pin_exists = true;
		c->mtime = st.st_mtim;
		c->ctime = st.st_ctim;
		c->size = st.st_size;
		c->inode = st.st_ino;
		c->device = st.st_dev;
	}
}

static bool
same_config(const HsmConfig *a, const HsmConfig *b)
{
	return strcmp(a->module, b->module) == 0 && strcmp(a->pin_file, b->pin_file) == 0 &&
		a->pin_exists == b->pin_exists &&
		a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
		a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec &&
		a->size == b->size && a->inode == b->inode && a->device == b->device;
}

/*
 * The pkcs11 engine, initialised with the module and the PIN of the current
 * configuration, or NULL with *reason set.
 */
static ENGINE *
open_engine(char **reason)
{
	ENGINE	   *e;
	char		pin[PIN_MAX + 1];
	bool		ok;

	if (engine != NULL)
		return engine;
	if (pkcs11_module == NULL || pkcs11_module[0] == '\0')
	{
		*reason = pstrdup("no PKCS#11 module: ioffice.pkcs11_module is not set");
		return NULL;
	}
	if (access(pkcs11_module, R_OK) != 0)
	{
		*reason = psprintf("the PKCS#11 module \"%s\" cannot be read: %m", pkcs11_module);
		return NULL;
	}
	current_config(&opened_with);
	if (!read_pin(pin, reason))
		return NULL;

	ERR_clear_error();
	/* "pkcs11" is found in OpenSSL's engines directory (dynamic loading) */
	e = ENGINE_by_id("pkcs11");
	if (e == NULL)
	{
		explicit_bzero(pin, sizeof(pin));
		*reason = engine_reason("OpenSSL's pkcs11 engine cannot be loaded (package libengine-pkcs11-openssl)");
		return NULL;
	}
	ok = ENGINE_ctrl_cmd_string(e, "MODULE_PATH", pkcs11_module, 0) == 1 &&
		(pin[0] == '\0' || ENGINE_ctrl_cmd_string(e, "PIN", pin, 0) == 1);
	/* libp11 keeps its own copy, for logging in again */
	explicit_bzero(pin, sizeof(pin));
	if (!ok || ENGINE_init(e) != 1)
	{
		*reason = engine_reason(psprintf("the PKCS#11 module \"%s\" cannot be initialised", pkcs11_module));
		ENGINE_free(e);
		return NULL;
	}
	/* keep the functional reference that ENGINE_init() took */
	ENGINE_free(e);
	engine = e;
	return engine;
}

static HsmKey *
find_key(const char *uri)
{
	ListCell   *lc;
	HsmKey	   *k;
	MemoryContext old;

	foreach(lc, hsm_keys)
	{
		k = lfirst(lc);
		if (strcmp(k->uri, uri) == 0)
			return k;
	}
	old = MemoryContextSwitchTo(TopMemoryContext);
	k = palloc0(sizeof(HsmKey));
	k->uri = pstrdup(uri);
	hsm_keys = lappend(hsm_keys, k);
	MemoryContextSwitchTo(old);
	return k;
}

/*
 * The private key a PKCS#11 URI names, or NULL with *reason set (naming the
 * URI).  Only the signing worker loads it: a backend never does.
 */
EVP_PKEY *
ioffice_hsm_load_key(const char *uri, uint64 *generation, char **reason)
{
	HsmKey	   *k;
	ENGINE	   *e;
	char	   *why = NULL;

	if (!IsBackgroundWorker)
	{
		*reason = psprintf("the key \"%s\" is used by the signing worker only", uri);
		return NULL;
	}
	k = find_key(uri);
	if (k->key != NULL)
	{
		*generation = k->generation;
		return k->key;
	}
	if (k->reason != NULL)
	{
		/* until the configuration is reloaded: see the header */
		*reason = pstrdup(k->reason);
		return NULL;
	}

	e = open_engine(&why);
	if (e != NULL)
	{
		ERR_clear_error();
		k->key = ENGINE_load_private_key(e, uri, NULL, NULL);
		if (k->key == NULL)
			why = engine_reason("the key cannot be loaded");
	}
	if (k->key == NULL)
	{
		k->reason = MemoryContextStrdup(TopMemoryContext,
										psprintf("PKCS#11 key \"%s\": %s", uri, why));
		elog(LOG, "ioffice worker: %s (kept until the configuration is reloaded)", k->reason);
		*reason = pstrdup(k->reason);
		return NULL;
	}
	key_loaded = true;
	k->generation = ++hsm_loads;
	*generation = k->generation;
	elog(LOG, "ioffice worker: PKCS#11 key \"%s\" loaded", uri);
	return k->key;
}

/*
 * What the edXML helper signs a package with when the seal's key is in the
 * HSM (helpers/edxml_hsm.c): "URI\nmodule\nPIN", in place of a key file's
 * path, or NULL with *reason set.  The helper is the signing worker's own
 * child and the PIN goes to it through its pipe, read from the PIN file
 * with the same checks as here; the caller wipes the answer after use.
 * The helper opens the module itself: an engine's key cannot cross a
 * process boundary, and xmlsec, which builds the package's signature,
 * runs only in the helper.
 */
char *
ioffice_hsm_helper_spec(const char *uri, char **reason)
{
	char		pin[PIN_MAX + 1];
	char	   *spec;

	if (!IsBackgroundWorker)
	{
		*reason = psprintf("the key \"%s\" is used by the signing worker only", uri);
		return NULL;
	}
	if (pkcs11_module == NULL || pkcs11_module[0] == '\0')
	{
		*reason = pstrdup("no PKCS#11 module: ioffice.pkcs11_module is not set");
		return NULL;
	}
	if (!read_pin(pin, reason))
		return NULL;
	spec = psprintf("%s\n%s\n%s", uri, pkcs11_module, pin);
	explicit_bzero(pin, sizeof(pin));
	return spec;
}

/*
 * A signing error with this key: the process ends after its batch, and the
 * new one loads the key again (see the header).  Until then the key is not
 * used.
 */
void
ioffice_hsm_key_failed(const char *uri)
{
	ListCell   *lc;

	foreach(lc, hsm_keys)
	{
		HsmKey	   *k = lfirst(lc);

		if (strcmp(k->uri, uri) == 0 && k->key != NULL)
		{
			EVP_PKEY_free(k->key);
			k->key = NULL;
			k->reason = MemoryContextStrdup(TopMemoryContext,
											psprintf("PKCS#11 key \"%s\" failed in this process; "
													 "the signing worker starts again to load it", uri));
		}
	}
	restart_wanted = true;
}

/* True when the signing worker must end to load HSM keys again. */
bool
ioffice_hsm_restart_wanted(void)
{
	return restart_wanted;
}

/*
 * The configuration was reloaded.  With a key loaded: nothing changed for
 * the HSM, the keys stay and the failures are forgotten; the module, the
 * PIN file or the PIN changed, the process must end (see the header).
 * Without one: forget every failure and close the engine, so that the next
 * job opens the module with the new configuration.
 */
void
ioffice_hsm_reloaded(void)
{
	ListCell   *lc;
	HsmConfig	now;

	if (key_loaded)
	{
		current_config(&now);
		if (!same_config(&now, &opened_with))
		{
			restart_wanted = true;
			return;
		}
		foreach(lc, hsm_keys)
		{
			HsmKey	   *k = lfirst(lc);

			if (k->key == NULL && k->reason != NULL)
			{
				pfree(k->reason);
				k->reason = NULL;
			}
		}
		return;
	}
	foreach(lc, hsm_keys)
	{
		HsmKey	   *k = lfirst(lc);

		EVP_PKEY_free(k->key);
		pfree(k->uri);
		if (k->reason)
			pfree(k->reason);
		pfree(k);
	}
	list_free(hsm_keys);
	hsm_keys = NIL;
	if (engine != NULL)
	{
		ENGINE_finish(engine);
		engine = NULL;
	}
	ERR_clear_error();
}
