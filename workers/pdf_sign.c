/*-------------------------------------------------------------------------
 * pdf_sign.c
 *	  A PAdES signature inside a PDF, as an incremental update.
 *
 * The worker holds the key and never parses the PDF: the helper process
 * (pdf_helper.c) appends the update (a signature field, its dictionary with
 * /ByteRange and a /Contents placeholder) and says where the ByteRange is;
 * here the prepared bytes are checked (they begin with the exact bytes of
 * the file that was signed before, the placeholder is where the ByteRange
 * says), the CMS is made over the ByteRange's bytes and its hex written
 * into the placeholder.  The signed PDF becomes the next version of the
 * file (replaces_id, uploaded by the signer); the signature row names the
 * file it was asked for (file_id) and the version it made (signed_file_id).
 *
 * A signature asked for a version that an earlier signature already
 * replaced signs the newest version of that chain: the organisation's
 * seal goes on the PDF that carries the leader's signature, after it.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/cryptohash.h"
#include "executor/spi.h"
#include "pgtime.h"
#include "utils/builtins.h"

#include "ioffice.h"
#include "worker.h"

/*
 * the room for the CMS in the placeholder, bytes (hex takes twice that):
 * a signature with its chain; with a signature timestamp (ioffice.tsa_url)
 * the TSA's token and its certificates come on top, as much again or more
 * with a real CA's chains, so three times the room
 */
#define PADES_ROOM 8192
#define PADES_ROOM_TIMESTAMPED (3 * PADES_ROOM)

static int
pades_room(void)
{
	return ioffice_timestamp_wanted() ? PADES_ROOM_TIMESTAMPED : PADES_ROOM;
}

/*
 * The version to sign: FILE, or the newest version made from it by
 * signatures (each step a signed_file_id), and whether it is current.
 */
static IofficePlan target_plan = {
	NULL,
	"WITH RECURSIVE v(id, depth) AS ("
	"  SELECT $1::bigint, 0 "
	"  UNION ALL "
	"  SELECT f.id, v.depth + 1 FROM v JOIN ioffice.file f ON f.replaces_id = v.id "
	"   WHERE EXISTS (SELECT 1 FROM ioffice.signature s WHERE s.signed_file_id = f.id)) "
	"SELECT f.id, f.document_id, f.name, f.content, "
	"       f.superseded_at IS NULL AND f.removed_at IS NULL "
	"  FROM ioffice.file f WHERE f.id = (SELECT id FROM v ORDER BY depth DESC LIMIT 1)",
	1, {INT8OID}
};

static IofficePlan insert_version = {
	NULL,
	"INSERT INTO ioffice.file (document_id, name, kind, size, sha256, content, replaces_id, "
	"uploaded_by) VALUES ($1, $2, 'pdf', $3, $4, $5, $6, $7) RETURNING id",
	7, {INT8OID, TEXTOID, INT4OID, BYTEAOID, BYTEAOID, INT8OID, INT8OID}
};

static IofficePlan supersede = {
	NULL,
	"UPDATE ioffice.file SET superseded_at = now() WHERE id = $1 AND superseded_at IS NULL",
	1, {INT8OID}
};

/*
 * "ok b0 b1 b2 b3 len[ note]\n" then len bytes: the prepared PDF; the note
 * says what the issue stamp wrote
 */
static bool
parse_prepared(StringInfo out, int64 br[4], const char **pdf, size_t *len, char **note)
{
	char	   *nl = memchr(out->data, '\n', Min(out->len, 1000));
	long long	v[5];
	int			end = 0;

	if (nl == NULL || strncmp(out->data, "ok ", 3) != 0)
		return false;
	*nl = '\0';
	if (sscanf(out->data + 3, "%lld %lld %lld %lld %lld%n", &v[0], &v[1], &v[2], &v[3], &v[4],
			   &end) != 5)
		return false;
	*note = out->data[3 + end] == ' ' ? pstrdup(out->data + 3 + end + 1) : NULL;
	*pdf = nl + 1;
	*len = out->len - (nl + 1 - out->data);
	if (v[4] < 0 || (size_t) v[4] != *len)
		return false;
	for (int i = 0; i < 4; i++)
		br[i] = v[i];
	return true;
}

/* the helper's "error\t..." line, or a default */
static char *
helper_error(StringInfo out, const char *otherwise)
{
	if (out->len > 6 && strncmp(out->data, "error\t", 6) == 0)
	{
		char	   *nl = strchr(out->data, '\n');

		return pnstrdup(out->data + 6, nl ? nl - out->data - 6 : out->len - 6);
	}
	return pstrdup(otherwise);
}

/*
 * The prepared update is the signed file plus appended bytes, and the
 * placeholder lies in the appended part exactly where the ByteRange says:
 * [0, b1) and [b2, b2 + b3) cover the whole file but "<...>".
 */
static const char *
check_prepared(const char *pdf, size_t len, const char *orig, size_t orig_len, const int64 br[4])
{
	if (len <= orig_len || memcmp(pdf, orig, orig_len) != 0)
		return "the prepared update does not begin with the file that was signed";
	if (br[0] != 0 || br[1] <= (int64) orig_len || br[2] <= br[1] + 2 ||
		br[2] + br[3] != (int64) len || pdf[br[1]] != '<' || pdf[br[2] - 1] != '>' ||
		br[2] - br[1] - 2 < 2 * pades_room())
		return "the prepared update's byte range is not where its placeholder is";
	return NULL;
}

/* a field of the issue stamp in the helper's request: digits only, or empty */
static const char *
stamp_field(const char *v)
{
	if (v == NULL || strspn(v, "0123456789") != strlen(v) || strlen(v) > 10)
		return "";
	return v;
}

/*
 * The text at the top right of page 1 (the lines of look->corner, then the
 * signing time WHEN in ISO 8601 with the offset of ioffice.timezone,
 * "2026-02-05T09:30:00+07:00"), a field of the helper's request; "" when
 * none.
 */
static char *
corner_field(const char *corner, time_t when)
{
	const char *zone = ioffice_timezone_setting ? ioffice_timezone_setting : "Asia/Ho_Chi_Minh";
	pg_tz	   *tz;
	pg_time_t	t = (pg_time_t) when;
	struct pg_tm *tm;
	char		iso[64];
	long		off;
	char	   *out;

	if (corner == NULL)
		return "";
	tz = pg_tzset(zone);
	tm = tz ? pg_localtime(&t, tz) : NULL;
	if (tm == NULL)
		return "";
	pg_strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%S", tm);
	off = tm->tm_gmtoff;
	out = psprintf("%s\x1f%s%c%02ld:%02ld", corner, iso, off < 0 ? '-' : '+',
				   labs(off) / 3600, labs(off) % 3600 / 60);
	for (char *c = out; *c; c++)
		if (*c == '\t' || *c == '\n' || *c == '\r')
			*c = ' ';
	return out;
}

/*
 * The update of FILE's newest version (see target_plan) prepared by the
 * helper and checked: the exact bytes with the reserved /Contents, where
 * the ByteRange is, and the SHA-256 of its bytes.  SERVED: through the
 * worker's long-lived helper; else a helper process for this call only
 * (a backend's signing_request()).  Touches no table.
 */
IofficePdfPrepared
ioffice_pdf_prepare(int64 file, const char *signer_name, const char *kind,
					const IofficePdfLook *look, bool served)
{
	IofficePdfPrepared r;
	Datum		values[1];
	bool		isnull;
	bool		current = false;
	StringInfoData out;
	char	   *header;
	char		when[32];
	char		room[32];
	int			exit_code;
	const char *problem;
	time_t		now;

	memset(&r, 0, sizeof(r));
	values[0] = Int64GetDatum(file);
	if (ioffice_exec(&target_plan, values, NULL, 1) != SPI_OK_SELECT || SPI_processed != 1)
	{
		r.reason = "the file is gone";
		return r;
	}
	ioffice_get_int64(0, 1, &r.target);
	ioffice_get_int64(0, 2, &r.doc);
	r.name = ioffice_get_text(0, 3);
	r.content = DatumGetByteaPCopy(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull));
	ioffice_get_bool(0, 5, &current);
	if (!current)
	{
		r.reason = "the file was replaced or removed before it was signed";
		return r;
	}

	/* the helper appends the update */
	now = time(NULL);
	snprintf(when, sizeof(when), "%lld", (long long) now);
	snprintf(room, sizeof(room), "%d", pades_room());
	{
		/* the served helper's request: fields without tabs or newlines */
		char	   *clean = pstrdup(signer_name ? signer_name : "");
		char	   *reason = pstrdup(look->reason ? look->reason :
									 strcmp(kind, "organisation") == 0 ? "Ký số văn thư" : "");

		for (char *c = clean; *c; c++)
			if (*c == '\t' || *c == '\n' || *c == '\r')
				*c = ' ';
		for (char *c = reason; *c; c++)
			if (*c == '\t' || *c == '\n' || *c == '\r')
				*c = ' ';
		header = psprintf("prepare\t%zu\t%s\t%s\t%s\t%s\t%zu\t%g\t%d\t%g\t%g\t%s\t%s\t%s\t%s\t%s\n",
						  VARSIZE_ANY_EXHDR(r.content), when, room, clean, reason,
						  look->image ? VARSIZE_ANY_EXHDR(look->image) : 0,
						  look->seal_mm, look->page, look->x, look->y,
						  stamp_field(look->number), stamp_field(look->day),
						  stamp_field(look->month), stamp_field(look->year),
						  corner_field(look->corner, now));
	}
	initStringInfo(&out);
	{
		/* the request's body: the PDF, then the image */
		StringInfoData body;
		const char *in = VARDATA_ANY(r.content);
		size_t		in_len = VARSIZE_ANY_EXHDR(r.content);

		if (look->image != NULL)
		{
			initStringInfo(&body);
			appendBinaryStringInfo(&body, in, in_len);
			appendBinaryStringInfo(&body, VARDATA_ANY(look->image), VARSIZE_ANY_EXHDR(look->image));
			in = body.data;
			in_len = body.len;
		}
		r.reason = served ? ioffice_pdf_helper_serve(header, in, in_len, &out, &exit_code)
			: ioffice_pdf_helper_once(header, in, in_len, &out, &exit_code);
	}
	if (r.reason != NULL)
		return r;
	if (exit_code == 2)
	{
		r.not_pdf = true;
		r.reason = helper_error(&out, "the PDF cannot be read");
		return r;
	}
	if (exit_code != 0 || !parse_prepared(&out, r.br, &r.pdf, &r.len, &r.note))
	{
		r.reason = helper_error(&out, "the PDF helper gave no prepared update");
		return r;
	}
	problem = check_prepared(r.pdf, r.len, VARDATA_ANY(r.content), VARSIZE_ANY_EXHDR(r.content), r.br);
	if (problem != NULL)
	{
		r.reason = (char *) problem;
		return r;
	}

	/* the digest of the ByteRange's bytes: what the CMS signs */
	{
		pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);

		if (ctx == NULL || pg_cryptohash_init(ctx) < 0 ||
			pg_cryptohash_update(ctx, (const uint8 *) r.pdf, r.br[1]) < 0 ||
			pg_cryptohash_update(ctx, (const uint8 *) r.pdf + r.br[2], r.br[3]) < 0 ||
			pg_cryptohash_final(ctx, r.digest, sizeof(r.digest)) < 0)
			elog(ERROR, "ioffice: SHA-256 failed");
		pg_cryptohash_free(ctx);
	}
	r.ok = true;
	return r;
}

/*
 * The prepared update with the CMS's hex in its placeholder (the rest of
 * the placeholder stays zeros): a copy, or NULL when the CMS does not fit.
 */
char *
ioffice_pdf_embed(const char *pdf, size_t len, const int64 br[4], bytea *cms)
{
	static const char hexd[] = "0123456789abcdef";
	const unsigned char *c = (const unsigned char *) VARDATA_ANY(cms);
	char	   *signed_pdf;
	char	   *p;

	if (VARSIZE_ANY_EXHDR(cms) * 2 > (size_t) (br[2] - br[1] - 2))
		return NULL;
	signed_pdf = palloc(len);
	memcpy(signed_pdf, pdf, len);
	p = signed_pdf + br[1] + 1;
	memset(p, '0', br[2] - br[1] - 2);
	for (size_t i = 0; i < VARSIZE_ANY_EXHDR(cms); i++)
	{
		*p++ = hexd[c[i] >> 4];
		*p++ = hexd[c[i] & 15];
	}
	return signed_pdf;
}

/*
 * The signed PDF as the next version of TARGET (which it replaces),
 * uploaded by SIGNER: its file id.
 */
int64
ioffice_pdf_store_version(int64 doc, const char *name, int64 target, int64 signer,
						  const char *signed_pdf, size_t len)
{
	Datum		values[7];
	bytea	   *bytes = ioffice_bytea(signed_pdf, len);
	int64		id = 0;

	values[0] = Int64GetDatum(doc);
	values[1] = CStringGetTextDatum(name);
	values[2] = Int32GetDatum((int32) len);
	values[3] = PointerGetDatum(ioffice_sha256(bytes));
	values[4] = PointerGetDatum(bytes);
	values[5] = Int64GetDatum(target);
	values[6] = Int64GetDatum(signer);
	ioffice_signed_version_allowed = true;
	PG_TRY();
	{
		if (ioffice_exec(&supersede, &values[5], NULL, 0) != SPI_OK_UPDATE || SPI_processed != 1)
			elog(ERROR, "ioffice: file %lld could not be marked replaced", (long long) target);
		if (ioffice_exec(&insert_version, values, NULL, 0) != SPI_OK_INSERT_RETURNING ||
			!ioffice_get_int64(0, 1, &id))
			elog(ERROR, "ioffice: the signed PDF could not be stored");
	}
	PG_FINALLY();
	{
		ioffice_signed_version_allowed = false;
	}
	PG_END_TRY();
	return id;
}

IofficePdfSigned
ioffice_pdf_sign(int64 file, int64 signer, const char *cert_pem, const char *key_file,
				 const char *signer_name, const char *kind, const IofficePdfLook *look)
{
	IofficePdfSigned r = {false, false, NULL, NULL, 0, NULL};
	IofficePdfPrepared p = ioffice_pdf_prepare(file, signer_name, kind, look, true);
	char	   *signed_pdf;

	if (!p.ok)
	{
		r.not_pdf = p.not_pdf;
		r.reason = p.reason;
		return r;
	}
	r.note = p.note;

	/* the CMS over the ByteRange's bytes */
	r.cms = ioffice_sign_pades_digest(cert_pem, key_file, p.digest, &r.reason);
	if (r.cms == NULL)
		return r;
	/* PAdES B-T: its timestamp, when a TSA is configured (timestamp.c) */
	if (ioffice_timestamp_wanted() && (r.cms = ioffice_timestamp_cms(r.cms, &r.reason)) == NULL)
		return r;
	signed_pdf = ioffice_pdf_embed(p.pdf, p.len, p.br, r.cms);
	if (signed_pdf == NULL)
	{
		r.reason = psprintf("the signature (%zu bytes) does not fit the room of the PDF (%d bytes)",
							VARSIZE_ANY_EXHDR(r.cms), pades_room());
		r.cms = NULL;
		return r;
	}

	/* PAdES B-LT: with the timestamp, the chains and lists in the DSS */
	if (ioffice_timestamp_wanted())
	{
		size_t		len;

		signed_pdf = ioffice_pdf_add_dss(signed_pdf, p.len, r.cms, true, &len, &r.reason);
		if (signed_pdf == NULL)
		{
			r.cms = NULL;
			return r;
		}
		p.len = len;
	}

	/* the signed PDF: the next version of the file */
	r.signed_file = ioffice_pdf_store_version(p.doc, p.name, p.target, signer, signed_pdf, p.len);
	r.ok = true;
	return r;
}
