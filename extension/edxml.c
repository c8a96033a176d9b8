/*-------------------------------------------------------------------------
 * edxml.c
 *	  Running the edXML helper (helpers/ioffice_edxml): reading a received
 *	  package, and signing one with the seal's key.
 *
 * A package from another agency is outside input: it is parsed only by the
 * helper, in a process of its own, under the PDF helper's limits (address
 * space, CPU, wall clock: extension/pdf_helper.c runs both), and only after
 * its size is checked here against ioffice.edxml_max_size.  What the helper
 * answers is JSON: the fields (checked against the standard's limits), the
 * attachments and whether the signature verifies against the trust anchors
 * handed to it.  edxml_receive() (sql/parts/98_edxml.sql) files from that.
 *
 * Packages are built in the backend (edxml_build(), SQL/XML over our own
 * data: libxml2's writer) and left unsigned: the seal's private key is in
 * the worker's keystore only, so the worker signs them with
 * ioffice_edxml_sign(), which runs the helper's "sign" mode.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "ioffice.h"

int			ioffice_edxml_max_size = 64;	/* MB */

void
ioffice_edxml_init(void)
{
	DefineCustomIntVariable("ioffice.edxml_max_size",
							"The largest edXML package, in MB, that is read.",
							"A larger package is refused before it is parsed.",
							&ioffice_edxml_max_size,
							64, 1, 1024,
							PGC_SUSET, GUC_UNIT_MB,
							NULL, NULL, NULL);
}

static void
edxml_helper_path(char *path)
{
	snprintf(path, MAXPGPATH, "%s/ioffice_edxml", pkglib_path);
}

/* "N\n", the N bytes of pem, then the package: the helper's stdin */
static void
framed_input(StringInfo in, const char *pem, size_t pem_len, const char *pkg, size_t pkg_len)
{
	initStringInfo(in);
	appendStringInfo(in, "%zu\n", pem_len);
	appendBinaryStringInfo(in, pem, pem_len);
	if (pkg_len > (size_t) (MaxAllocSize - in->len - 1))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("the edXML package is too large")));
	appendBinaryStringInfo(in, pkg, pkg_len);
}

/*
 * Read a package: returns the helper's JSON answer (fields, or {"error",
 * "field"} when it refused the package).  Errors when the package is larger
 * than ioffice.edxml_max_size, or when the helper crashed, hung or failed.
 */
char *
ioffice_edxml_read(const char *pkg, size_t pkg_len, const char *trust_pem, size_t trust_len)
{
	char		path[MAXPGPATH];
	char		max[32];
	char	   *argv[4];
	StringInfoData in;
	StringInfoData out;
	bool		truncated = false;
	int			exit_code = -1;
	char	   *reason;
	size_t		limit = (size_t) ioffice_edxml_max_size * 1024 * 1024;

	if (pkg_len > limit)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the edXML package is larger than ioffice.edxml_max_size (%d MB)",
						ioffice_edxml_max_size),
				 errdetail("Field edXML: it has %zu bytes.", pkg_len)));
	edxml_helper_path(path);
	snprintf(max, sizeof(max), "%zu", limit);
	argv[1] = "read";
	argv[2] = max;
	argv[3] = NULL;
	framed_input(&in, trust_pem, trust_len, pkg, pkg_len);
	initStringInfo(&out);
	reason = ioffice_helper_run_program(path, "the edXML helper", argv, in.data, in.len, &out, 0,
										&truncated, &exit_code);
	pfree(in.data);
	if (reason == NULL && exit_code != 0 && exit_code != 2)
		reason = psprintf("the edXML helper failed (exit status %d)", exit_code);
	if (reason != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("the edXML package could not be read: %s", reason)));
	return out.data;
}

/*
 * Sign a package with the key in key_path (the worker's keystore) and the
 * seal's certificate (PEM): an enveloped XML-DSig signature, RSA-SHA256,
 * the certificate in KeyInfo/X509Data.  Returns NULL with the signed
 * package in out, or why it failed.  For the worker (the sending path).
 */
char *
ioffice_edxml_sign(const char *pkg, size_t pkg_len, const char *key_path, const char *cert_pem,
				   StringInfo out)
{
	char		path[MAXPGPATH];
	char	   *argv[4];
	StringInfoData in;
	bool		truncated = false;
	int			exit_code = -1;
	char	   *reason;

	edxml_helper_path(path);
	argv[1] = "sign";
	argv[2] = unconstify(char *, key_path);
	argv[3] = NULL;
	framed_input(&in, cert_pem, strlen(cert_pem), pkg, pkg_len);
	reason = ioffice_helper_run_program(path, "the edXML helper", argv, in.data, in.len, out, 0,
										&truncated, &exit_code);
	pfree(in.data);
	if (reason == NULL && exit_code != 0)
		reason = psprintf("the edXML helper could not sign the package (exit status %d)", exit_code);
	return reason;
}

/*
 * _edxml_read(package text, trust text) → jsonb: for edxml_receive(); not
 * granted to PUBLIC.
 */
PG_FUNCTION_INFO_V1(ioffice_edxml_read_sql);
Datum
ioffice_edxml_read_sql(PG_FUNCTION_ARGS)
{
	text	   *pkg;
	text	   *trust;
	char	   *answer;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("an edXML package is required")));
	pkg = PG_GETARG_TEXT_PP(0);
	trust = PG_ARGISNULL(1) ? cstring_to_text("") : PG_GETARG_TEXT_PP(1);
	answer = ioffice_edxml_read(VARDATA_ANY(pkg), VARSIZE_ANY_EXHDR(pkg),
								VARDATA_ANY(trust), VARSIZE_ANY_EXHDR(trust));
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(answer)));
}
