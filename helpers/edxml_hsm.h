/*
 * edxml_hsm.h
 *	  The seal's key in an HSM, for the edXML helper (edxml_hsm.c).
 */
#ifndef EDXML_HSM_H
#define EDXML_HSM_H

#include <stddef.h>
#include <openssl/evp.h>

/*
 * The private key a PKCS#11 URI names, through the module, logged in with
 * the PIN ("" for none): kept by the helper (do not free it; take a
 * reference to keep it), or NULL with why set.
 */
extern EVP_PKEY *edxml_hsm_key(const char *uri, const char *module, const char *pin,
							   char *why, size_t whylen);

/* a signature with the key failed: the engine is opened afresh next time */
extern void edxml_hsm_failed(void);

#endif
