/*-------------------------------------------------------------------------
 * bytes.c
 *	  SHA-256 and bytea values: the small utilities every part of the
 *	  extension needs, written once.
 *
 * SHA-256 goes through PostgreSQL's cryptohash API (OpenSSL underneath,
 * released with the resource owner on error): the files' digests, the
 * audit records' hashes and the checkpoints' Merkle trees.  The worker
 * (workers/) keeps its own OpenSSL digests for signing.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/cryptohash.h"
#include "common/sha2.h"
#include "executor/spi.h"

#include "ioffice.h"

/* SHA-256 of len bytes at data, into out (PG_SHA256_DIGEST_LENGTH bytes) */
void
ioffice_sha256_bytes(const void *data, size_t len, uint8 *out)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);

	if (pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, (const uint8 *) data, len) < 0 ||
		pg_cryptohash_final(ctx, out, PG_SHA256_DIGEST_LENGTH) < 0)
		elog(ERROR, "ioffice: could not compute SHA-256: %s", pg_cryptohash_error(ctx));
	pg_cryptohash_free(ctx);
}

/* SHA-256 of a bytea's content, as a bytea */
bytea *
ioffice_sha256(bytea *content)
{
	uint8		digest[PG_SHA256_DIGEST_LENGTH];

	ioffice_sha256_bytes(VARDATA_ANY(content), VARSIZE_ANY_EXHDR(content), digest);
	return ioffice_bytea(digest, PG_SHA256_DIGEST_LENGTH);
}

/* len bytes at data into b, allocated VARHDRSZ + len bytes long */
static bytea *
fill_bytea(bytea *b, const void *data, size_t len)
{
	SET_VARSIZE(b, VARHDRSZ + len);
	memcpy(VARDATA(b), data, len);
	return b;
}

/* len bytes at data as a bytea, in the current memory context */
bytea *
ioffice_bytea(const void *data, size_t len)
{
	return fill_bytea(palloc(VARHDRSZ + len), data, len);
}

/*
 * The same in the memory of the function that connected to SPI: a result
 * that must outlive SPI_finish().
 */
bytea *
ioffice_spi_bytea(const void *data, size_t len)
{
	return fill_bytea(SPI_palloc(VARHDRSZ + len), data, len);
}

/* a C string as a text result that outlives SPI_finish() */
text *
ioffice_spi_text(const char *s)
{
	return (text *) ioffice_spi_bytea(s, strlen(s));
}
