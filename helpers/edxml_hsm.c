/*-------------------------------------------------------------------------
 *
 * edxml_hsm.c
 *	  The organisation's seal key in an HSM, for the edXML helper: the
 *	  package's XML-DSig signature is made by xmlsec in the helper process,
 *	  and when the seal's key lives in a hardware security module the
 *	  helper reaches it as the signing worker does (workers/hsm_key.c):
 *	  OpenSSL's pkcs11 engine (libp11) opens the module, logs in with the
 *	  PIN, and hands back an EVP_PKEY whose private operations run inside
 *	  the token.  The key's bytes never leave the HSM; the helper only asks
 *	  the token to sign the package's SignedInfo digest.
 *
 *	  The worker gives the key URI, the module and the PIN (it read and
 *	  checked the PIN file, ioffice.pkcs11_pin_file) through the helper's
 *	  pipe, never on a command line or in the environment.  The served
 *	  helper keeps the engine and the key between packages: opening the
 *	  module and logging in cost more than a signature.  A different module
 *	  or PIN (a reload) closes them first.
 *
 *	  The ENGINE API is deprecated in OpenSSL 3 but still supported, and
 *	  Debian 12 ships the libp11 engine, not a pkcs11 provider; the
 *	  deprecation warnings are silenced in this one file, as in hsm_key.c.
 *
 *-------------------------------------------------------------------------
 */
#define OPENSSL_SUPPRESS_DEPRECATED

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "edxml_hsm.h"

static ENGINE *engine = NULL;
static char *engine_module = NULL;
static char *engine_pin = NULL;
static EVP_PKEY *key = NULL;
static char *key_uri = NULL;

static void
set_reason(char *why, size_t whylen, const char *what)
{
	unsigned long e = ERR_get_error();
	char		buf[256];

	if (e == 0)
		snprintf(why, whylen, "%s", what);
	else
	{
		ERR_error_string_n(e, buf, sizeof(buf));
		snprintf(why, whylen, "%s: %s", what, buf);
	}
	ERR_clear_error();
}

static void
forget(char **s)
{
	if (*s)
	{
		memset(*s, 0, strlen(*s));
		free(*s);
		*s = NULL;
	}
}

static void
close_engine(void)
{
	EVP_PKEY_free(key);
	key = NULL;
	forget(&key_uri);
	if (engine)
	{
		ENGINE_finish(engine);
		engine = NULL;
	}
	forget(&engine_module);
	forget(&engine_pin);
}

EVP_PKEY *
edxml_hsm_key(const char *uri, const char *module, const char *pin, char *why, size_t whylen)
{
	ENGINE	   *e;

	if (engine && (strcmp(engine_module, module) != 0 || strcmp(engine_pin, pin) != 0))
		close_engine();
	if (key && strcmp(key_uri, uri) == 0)
		return key;
	if (engine == NULL)
	{
		ERR_clear_error();
		e = ENGINE_by_id("pkcs11");
		if (e == NULL)
		{
			set_reason(why, whylen, "OpenSSL's pkcs11 engine cannot be loaded (package libengine-pkcs11-openssl)");
			return NULL;
		}
		if (ENGINE_ctrl_cmd_string(e, "MODULE_PATH", module, 0) != 1 ||
			(pin[0] != '\0' && ENGINE_ctrl_cmd_string(e, "PIN", pin, 0) != 1) ||
			ENGINE_init(e) != 1)
		{
			set_reason(why, whylen, "the PKCS#11 module cannot be initialised");
			ENGINE_free(e);
			return NULL;
		}
		/* keep the functional reference ENGINE_init() took */
		ENGINE_free(e);
		engine = e;
		engine_module = strdup(module);
		engine_pin = strdup(pin);
		if (engine_module == NULL || engine_pin == NULL)
		{
			close_engine();
			snprintf(why, whylen, "out of memory");
			return NULL;
		}
	}
	EVP_PKEY_free(key);
	forget(&key_uri);
	ERR_clear_error();
	key = ENGINE_load_private_key(engine, uri, NULL, NULL);
	if (key == NULL)
	{
		char		what[1200];

		snprintf(what, sizeof(what), "PKCS#11 key \"%s\" cannot be loaded", uri);
		set_reason(why, whylen, what);
		return NULL;
	}
	key_uri = strdup(uri);
	if (key_uri == NULL)
	{
		EVP_PKEY_free(key);
		key = NULL;
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	return key;
}

void
edxml_hsm_failed(void)
{
	/* the token went away or closed its session: open it afresh next time */
	close_engine();
}
