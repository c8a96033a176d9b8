/*-------------------------------------------------------------------------
 * audit_sign.c
 *	  Which certificate signs the audit trail's checkpoints, and checking a
 *	  checkpoint's signature.
 *
 * The certificate is named by a setting, ioffice.audit_certificate: the
 * SHA-256 fingerprints (hex, as certificate.fingerprint) of the certificates
 * whose signatures audit_verify() accepts, comma-separated; the first one
 * that the database has signs (the worker finds its row, and the row's
 * key_file in the keystore or its key_uri in an HSM; a server serving several agencies' databases
 * lists each one's).
 * A setting rather than a table: the point of signing is to catch a
 * superuser who rewrites the audit tables, and a table naming the
 * certificate would be rewritten with them (a forger would register his own
 * certificate and name it).  The setting lives in the server's
 * configuration, outside the data, and names the certificate by its
 * fingerprint, so that editing the certificate row does not move it either.
 * Several fingerprints let a key be replaced: the old one keeps verifying
 * the checkpoints it signed.
 *
 * A signature is a detached CMS SignedData (CAdES-BES, made by
 * workers/signer.c) whose content is the checkpoint's canonical form
 * (ioffice_checkpoint_content(), audit_verify.c): its messageDigest is the
 * checkpoint's hash.  It carries the signer's certificate.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/varlena.h"

#include "ioffice.h"

char	   *ioffice_audit_certificate = NULL;
int			ioffice_audit_seal_interval = 5;

/* "ab12...,cd34...": a list of 64-hex-digit fingerprints, or empty */
static bool
check_audit_certificate(char **newval, void **extra, GucSource source)
{
	const char *c = *newval;
	int			digits = 0;

	for (; c && *c; c++)
	{
		if (*c == ',' || *c == ' ')
		{
			if (digits != 0 && digits != 64)
				break;
			digits = 0;
		}
		else if (isxdigit((unsigned char) *c))
			digits++;
		else
			break;
	}
	if ((c && *c) || (digits != 0 && digits != 64))
	{
		GUC_check_errdetail("ioffice.audit_certificate is a comma-separated list of SHA-256 "
							"certificate fingerprints, 64 hexadecimal digits each "
							"(encode(fingerprint, 'hex') of ioffice.certificate).");
		return false;
	}
	return true;
}

void
ioffice_audit_sign_init(void)
{
	DefineCustomStringVariable("ioffice.audit_certificate",
							   "Certificates that sign the audit trail's checkpoints (SHA-256 fingerprints, hex).",
							   "Comma-separated; the first one registered in the database signs, all are accepted by audit_verify().  "
							   "Empty: checkpoints are not signed nor published.",
							   &ioffice_audit_certificate,
							   "",
							   PGC_SIGHUP,
							   0,
							   check_audit_certificate, NULL, NULL);
	DefineCustomIntVariable("ioffice.audit_seal_interval",
							"Seconds between the worker's checkpoints of the audit trail (0: none).",
							"A checkpoint is written only when chains moved.",
							&ioffice_audit_seal_interval,
							5, 0, 86400,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);
}

static int
hexdigit_value(char c)
{
	return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

/*
 * The n-th fingerprint of the setting (0: the signing one) into out, or
 * false when there are not that many.
 */
bool
ioffice_audit_certificate_fingerprint(int n, uint8 *out)
{
	const char *c = ioffice_audit_certificate ? ioffice_audit_certificate : "";

	for (;;)
	{
		while (*c == ',' || *c == ' ')
			c++;
		if (*c == '\0')
			return false;
		if (n-- == 0)
		{
			for (int i = 0; i < 32; i++)
				out[i] = (uint8) ((hexdigit_value(c[2 * i]) << 4) | hexdigit_value(c[2 * i + 1]));
			return true;
		}
		c += 64;
	}
}

/* is this certificate's fingerprint one the setting names? */
static bool
certificate_named(X509 *cert)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen;
	uint8		fp[32];

	if (X509_digest(cert, EVP_sha256(), md, &mdlen) != 1 || mdlen != 32)
		return false;
	for (int n = 0; ioffice_audit_certificate_fingerprint(n, fp); n++)
		if (memcmp(fp, md, 32) == 0)
			return true;
	return false;
}

/*
 * A checkpoint's signature against its canonical form: OK, MISMATCH (not a
 * signature over these bytes), OTHER_KEY (a valid signature by a
 * certificate the setting does not name; *signer is its subject) or
 * UNREADABLE.  Without a setting, any valid signature is OK.
 */
IofficeCheckpointSig
ioffice_checkpoint_signature_check(bytea *cms_der, const char *content, int len, char **signer)
{
	BIO		   *der = BIO_new_mem_buf(VARDATA_ANY(cms_der), VARSIZE_ANY_EXHDR(cms_der));
	BIO		   *data = BIO_new_mem_buf(content, len);
	CMS_ContentInfo *cms = der ? d2i_CMS_bio(der, NULL) : NULL;
	STACK_OF(X509) *signers;
	IofficeCheckpointSig result;
	uint8		any[32];

	ERR_clear_error();
	if (cms == NULL || data == NULL)
		result = IOFFICE_CP_SIG_UNREADABLE;
	else if (CMS_verify(cms, NULL, NULL, data, NULL,
						CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY) != 1)
	{
		unsigned long err = ERR_peek_last_error();

		result = (ERR_GET_LIB(err) == ERR_LIB_CMS &&
				  (ERR_GET_REASON(err) == CMS_R_VERIFICATION_FAILURE ||
				   ERR_GET_REASON(err) == CMS_R_CONTENT_VERIFY_ERROR))
			? IOFFICE_CP_SIG_MISMATCH : IOFFICE_CP_SIG_UNREADABLE;
	}
	else if ((signers = CMS_get0_signers(cms)) == NULL || sk_X509_num(signers) < 1)
		result = IOFFICE_CP_SIG_UNREADABLE;
	else if (!ioffice_audit_certificate_fingerprint(0, any) ||
			 certificate_named(sk_X509_value(signers, 0)))
	{
		result = IOFFICE_CP_SIG_OK;
		sk_X509_free(signers);
	}
	else
	{
		*signer = ioffice_x509_subject_text(sk_X509_value(signers, 0));
		result = IOFFICE_CP_SIG_OTHER_KEY;
		sk_X509_free(signers);
	}
	ERR_clear_error();
	CMS_ContentInfo_free(cms);
	BIO_free(der);
	BIO_free(data);
	return result;
}
