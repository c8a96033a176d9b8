/*-------------------------------------------------------------------------
 * audit_verify.c
 *	  audit_verify(): finding tampering in the audit trail, and
 *	  audit_seal(): sealed checkpoints of the chain heads.
 *
 * Chains (audit.c) catch any change inside a chain: a record edited, removed
 * from the middle, inserted or moved.  What a chain alone cannot show is the
 * loss of its last records, or of a whole chain.  audit_seal() therefore
 * writes checkpoints, as certificate-transparency logs do: the heads (chain,
 * seq, hash) of the chains that moved since the previous checkpoint, a
 * Merkle root over them, and a hash linking each checkpoint to the one
 * before.  A checkpoint's hash is what gets signed and published; the
 * verification checks the checkpoints themselves and every chain against
 * its last sealed head.
 *
 * Verification streams the records in (chain, seq) order through a cursor,
 * so it runs in constant memory but for the sealed heads of the chains it
 * looks at.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "catalog/pg_type.h"
#include "common/sha2.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

#include "ioffice.h"
#include "worker.h"

#define HASH_LEN PG_SHA256_DIGEST_LENGTH
#define FETCH_BATCH 10000

#define CHAIN_KEY_LEN 128

typedef struct SealedHead
{
	char		chain[CHAIN_KEY_LEN];	/* key: "document:42", "workflow:outgoing" */
	int64		seq;
	uint8		hash[HASH_LEN];
	int64		checkpoint;
	bool		seen;
} SealedHead;

/*
 * What one audit_verify() call knows, passed to each of its steps: where the
 * problems go, what it was asked to verify, the sealed heads, and where the
 * walk through the records stands.  One struct rather than a dozen
 * arguments, so that a step can be added without rethreading them all.
 */
typedef struct VerifyState
{
	Tuplestorestate *out;
	TupleDesc	desc;
	int64		problems;

	/* the scope: the whole trail, or one entity's (kind, or kind and id) */
	bool		whole;
	char	   *entity;			/* NULL for the whole trail */
	bool		has_entity_id;
	int64		entity_id;

	HTAB	   *heads;			/* last sealed head of every chain */
	MemoryContext row_cxt;		/* reset after each record */

	/* the walk: the chain being read and its last record so far */
	char		chain[CHAIN_KEY_LEN];	/* "" before the first record */
	int64		last_seq;
	int64		last_id;
	uint8		last_hash[HASH_LEN];
	bool		last_hash_ok;
} VerifyState;

/* One record as the walk reads it: what is stored, and the hash it should have. */
typedef struct VerifyRecord
{
	int64		id;
	char	   *chain;
	int64		seq;
	bool		has_prev;
	uint8		prev[HASH_LEN];
	bool		has_hash;
	uint8		hash[HASH_LEN];
} VerifyRecord;

static void
report(VerifyState *vs, bool has_id, int64 id, const char *fmt,...) pg_attribute_printf(4, 5);
static void check_chain_end(VerifyState *vs);
static void check_numbers_chains(VerifyState *vs, int64 reg);

static void
report(VerifyState *vs, bool has_id, int64 id, const char *fmt,...)
{
	Datum		v[2];
	bool		n[2] = {!has_id, false};
	StringInfoData buf;
	va_list		args;

	initStringInfo(&buf);
	for (;;)
	{
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&buf, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&buf, needed);
	}
	v[0] = Int64GetDatum(id);
	v[1] = CStringGetTextDatum(buf.data);
	tuplestore_putvalues(vs->out, vs->desc, v, n);
	vs->problems++;
}

/* The chain just walked has ended: it must reach the position its sealed head was at. */
static void
check_chain_end(VerifyState *vs)
{
	SealedHead *e;

	if (vs->chain[0] == '\0')
		return;					/* no chain walked yet */
	e = hash_search(vs->heads, vs->chain, HASH_FIND, NULL);
	if (e && vs->last_seq < e->seq)
		report(vs, true, vs->last_id,
			   "chain %s ends at position " INT64_FORMAT " but position " INT64_FORMAT
			   " was sealed in checkpoint " INT64_FORMAT ": its last records were removed",
			   vs->chain, vs->last_seq, e->seq, e->checkpoint);
}

/*
 * leaf of the Merkle tree: 0x00, then the head, length-prefixed (also the
 * leaf of audit_proof_record()'s audit path, audit_proof.c)
 */
void
ioffice_merkle_leaf(const char *chain, int64 seq, const uint8 *hash, uint8 *out)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '\0');
	appendStringInfo(&buf, "%zu:%s;" INT64_FORMAT ";", strlen(chain), chain, seq);
	appendBinaryStringInfo(&buf, (const char *) hash, HASH_LEN);
	ioffice_sha256_bytes(buf.data, buf.len, out);
	pfree(buf.data);
}

/*
 * Root of the tree over n leaves (RFC 6962 shape: interior node = 0x01 || l
 * || r; pairing neighbours bottom-up and carrying an odd last node up gives
 * RFC 6962's left-balanced tree).  Overwrites the leaves.
 */
void
ioffice_merkle_root(uint8 (*level)[HASH_LEN], int n, uint8 *out)
{
	if (n == 0)
	{
		ioffice_sha256_bytes("", 0, out);
		return;
	}
	while (n > 1)
	{
		int			i,
					m = 0;

		for (i = 0; i + 1 < n; i += 2)
		{
			uint8		node[1 + 2 * HASH_LEN];

			node[0] = 1;
			memcpy(node + 1, level[i], HASH_LEN);
			memcpy(node + 1 + HASH_LEN, level[i + 1], HASH_LEN);
			ioffice_sha256_bytes(node, sizeof(node), level[m++]);
		}
		if (i < n)
			memmove(level[m++], level[i], HASH_LEN);
		n = m;
	}
	memcpy(out, level[0], HASH_LEN);
}

/*
 * What a checkpoint's hash is taken over, and what its signature signs (the
 * CMS is detached: its messageDigest is this hash):
 *
 *   "ioffice-checkpoint-1;" id ";" at ";" chains ";" records ";" root prev
 *
 * id is the checkpoint's sequence number (1, 2, 3, ... without gaps), at its
 * time as PostgreSQL's microseconds since 2000-01-01 UTC, chains and records
 * the number of chain heads it lists and of records they add, all in
 * decimal; root is the 32 bytes of the Merkle root over the heads, prev the
 * 32 bytes of the previous checkpoint's hash (absent for the first).  Every
 * part has a fixed length or ends with ';', so no two checkpoints read alike.
 */
void
ioffice_checkpoint_content(StringInfo buf, int64 id, TimestampTz at, int32 chains,
						   int64 records, const uint8 *root, const uint8 *prev)
{
	appendStringInfo(buf, "ioffice-checkpoint-1;" INT64_FORMAT ";" INT64_FORMAT ";%d;" INT64_FORMAT ";",
					 id, (int64) at, chains, records);
	appendBinaryStringInfo(buf, (const char *) root, HASH_LEN);
	if (prev)
		appendBinaryStringInfo(buf, (const char *) prev, HASH_LEN);
}

/* the hash that links a checkpoint to the previous one, and that is signed */
static void
checkpoint_hash(int64 id, TimestampTz at, int32 chains, int64 records, const uint8 *root,
				const uint8 *prev, uint8 *out)
{
	StringInfoData buf;

	initStringInfo(&buf);
	ioffice_checkpoint_content(&buf, id, at, chains, records, root, prev);
	ioffice_sha256_bytes(buf.data, buf.len, out);
	pfree(buf.data);
}

static bool
get_hash(HeapTuple tup, TupleDesc desc, int col, uint8 *out)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);
	bytea	   *b;

	if (isnull)
		return false;
	b = DatumGetByteaPP(d);
	if (VARSIZE_ANY_EXHDR(b) != HASH_LEN)
		return false;
	memcpy(out, VARDATA_ANY(b), HASH_LEN);
	return true;
}

/* a hash as a bytea */
static bytea *
to_bytea(const uint8 *h)
{
	return ioffice_bytea(h, HASH_LEN);
}

/*
 * Load the heads a checkpoint sealed into the hash table (each replaces the
 * head an earlier checkpoint sealed for its chain) and compute the root of
 * the Merkle tree over them, into root.  Returns how many heads it lists.
 */
static uint64
load_checkpoint_heads(HTAB *heads, int64 id, uint8 *root)
{
	Datum		arg[1];
	Oid			argtype[1] = {INT8OID};
	SPITupleTable *hs;
	uint64		nheads;
	uint64		j;
	uint8		(*leaves)[HASH_LEN];

	arg[0] = Int64GetDatum(id);
	if (SPI_execute_with_args("SELECT chain, seq, hash FROM ioffice.audit_checkpoint_head "
							  "WHERE checkpoint_id = $1 ORDER BY chain COLLATE \"C\"",
							  1, argtype, arg, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "ioffice: could not read audit_checkpoint_head");
	hs = SPI_tuptable;
	nheads = SPI_processed;
	leaves = palloc(sizeof(*leaves) * Max(nheads, 1));
	for (j = 0; j < nheads; j++)
	{
		char	   *chain = SPI_getvalue(hs->vals[j], hs->tupdesc, 1);
		bool		isnull;
		int64		seq = DatumGetInt64(SPI_getbinval(hs->vals[j], hs->tupdesc, 2, &isnull));
		uint8		h[HASH_LEN];
		SealedHead *e;
		char		key[CHAIN_KEY_LEN];

		memset(h, 0, HASH_LEN);
		get_hash(hs->vals[j], hs->tupdesc, 3, h);
		ioffice_merkle_leaf(chain, seq, h, leaves[j]);

		strlcpy(key, chain, CHAIN_KEY_LEN);
		e = hash_search(heads, key, HASH_ENTER, NULL);
		e->seq = seq;
		memcpy(e->hash, h, HASH_LEN);
		e->checkpoint = id;
		e->seen = false;
	}
	ioffice_merkle_root(leaves, (int) nheads, root);
	pfree(leaves);
	SPI_freetuptable(hs);
	return nheads;
}

/*
 * A checkpoint's signature (column 8), when it has one: made over what its
 * columns say now (a checkpoint changed after it was signed no longer
 * matches), with the key of a certificate ioffice.audit_certificate names
 * (one re-signed with another key is named so).  Whether a checkpoint
 * without one should have one is decided by the caller.
 */
static void
check_checkpoint_signature(VerifyState *vs, HeapTuple tup, TupleDesc desc, int64 id,
						   TimestampTz at, int32 chains, int64 records, const uint8 *root,
						   const uint8 *prev)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, 8, &isnull);
	StringInfoData content;
	char	   *signer = NULL;

	if (isnull)
		return;
	initStringInfo(&content);
	ioffice_checkpoint_content(&content, id, at, chains, records, root, prev);
	switch (ioffice_checkpoint_signature_check(DatumGetByteaPP(d), content.data, content.len,
											   &signer))
	{
		case IOFFICE_CP_SIG_OK:
			break;
		case IOFFICE_CP_SIG_MISMATCH:
			report(vs, false, 0, "checkpoint " INT64_FORMAT " does not match its signature: "
				   "it was changed after it was signed", id);
			break;
		case IOFFICE_CP_SIG_OTHER_KEY:
			report(vs, false, 0, "checkpoint " INT64_FORMAT " was signed with another key "
				   "(certificate \"%s\", which ioffice.audit_certificate does not name)", id,
				   signer ? signer : "?");
			break;
		case IOFFICE_CP_SIG_UNREADABLE:
			report(vs, false, 0, "checkpoint " INT64_FORMAT " has a signature that cannot be read", id);
			break;
	}
	pfree(content.data);
}

/*
 * One checkpoint (a row of audit_checkpoint): its link to the previous
 * checkpoint (prev, NULL before the first), its hash over its own columns,
 * the number of heads it lists and their Merkle root.  Its heads go into
 * the hash table either way; problems are reported only when report is
 * set.  Its stored hash, the next one's link, goes to stored_hash.
 */
static void
verify_checkpoint(VerifyState *vs, HeapTuple tup, TupleDesc desc, HTAB *heads,
				  const uint8 *prev, bool report_problems, uint8 *stored_hash)
{
	bool		isnull;
	int64		id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	TimestampTz at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 2, &isnull));
	int32		chains = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
	int64		records = DatumGetInt64(SPI_getbinval(tup, desc, 4, &isnull));
	uint8		root[HASH_LEN],
				stored_prev[HASH_LEN],
				want[HASH_LEN];
	bool		has_prev = get_hash(tup, desc, 6, stored_prev);
	uint64		nheads;

	get_hash(tup, desc, 5, root);
	get_hash(tup, desc, 7, stored_hash);
	if (report_problems)
		check_checkpoint_signature(vs, tup, desc, id, at, chains, records, root,
								   has_prev ? stored_prev : NULL);

	if (report_problems &&
		((prev != NULL) != has_prev || (has_prev && memcmp(prev, stored_prev, HASH_LEN) != 0)))
		report(vs, false, 0, "checkpoint " INT64_FORMAT " does not follow the previous checkpoint", id);
	checkpoint_hash(id, at, chains, records, root, has_prev ? stored_prev : NULL, want);
	if (report_problems && memcmp(want, stored_hash, HASH_LEN) != 0)
		report(vs, false, 0, "checkpoint " INT64_FORMAT " was altered", id);

	nheads = load_checkpoint_heads(heads, id, want);
	if (report_problems && nheads != (uint64) chains)
		report(vs, false, 0, "checkpoint " INT64_FORMAT " lists " UINT64_FORMAT " chain heads, not %d",
			   id, nheads, chains);
	if (report_problems && memcmp(want, root, HASH_LEN) != 0)
		report(vs, false, 0, "the chain heads of checkpoint " INT64_FORMAT " do not match its root", id);
}

/*
 * Check the checkpoints themselves, in order (each against the one before),
 * and load the last sealed head of every chain into a hash table.
 */
static HTAB *
verify_checkpoints(VerifyState *vs, MemoryContext cxt, bool report_checkpoints)
{
	HASHCTL		ctl;
	HTAB	   *heads;
	uint64		i;
	uint8		prev[HASH_LEN];
	SPITupleTable *cps;
	uint64		ncps;
	int64		prev_id = 0;
	Portal		cursor;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = CHAIN_KEY_LEN;
	ctl.entrysize = sizeof(SealedHead);
	ctl.hcxt = cxt;
	heads = hash_create("ioffice sealed heads", 1024, &ctl,
						HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);

	/* through a cursor, a batch at a time: there is one every few seconds */
	cursor = SPI_cursor_open_with_args(NULL,
									   "SELECT id, at, chains, records, root, prev_hash, hash, signature, "
									   "       max(id) FILTER (WHERE signature IS NOT NULL) OVER () "
									   "FROM ioffice.audit_checkpoint ORDER BY id",
									   0, NULL, NULL, NULL, true, CURSOR_OPT_NO_SCROLL);
	for (;;)
	{
		SPI_cursor_fetch(cursor, true, FETCH_BATCH);
		cps = SPI_tuptable;
		ncps = SPI_processed;
		if (ncps == 0)
			break;
		for (i = 0; i < ncps; i++)
		{
			uint8		stored_hash[HASH_LEN];
			bool		isnull;
			bool		none_signed;
			int64		id = DatumGetInt64(SPI_getbinval(cps->vals[i], cps->tupdesc, 1, &isnull));
			Datum		last_signed = SPI_getbinval(cps->vals[i], cps->tupdesc, 9, &none_signed);
			MemoryContext old;

			/*
			 * Checkpoints are numbered 1, 2, 3... without gaps (audit_seal),
			 * so a gap, or a first one that is not 1, is a checkpoint
			 * removed -- unless this one links straight to the one before
			 * the gap: 0.1 numbered them from a sequence, and a rolled-back
			 * audit_seal() left a number unused, never a checkpoint.  (A
			 * checkpoint removed from the middle and its successor re-linked
			 * changes the successor's hash: its signature and the witnesses
			 * say so.)
			 */
			if (report_checkpoints && id != prev_id + 1)
			{
				uint8		linked_to[HASH_LEN];
				bool		linked = get_hash(cps->vals[i], cps->tupdesc, 6, linked_to);

				/* (the first checkpoint links to nothing) */
				if (prev_id == 0 ? linked : (!linked || memcmp(linked_to, prev, HASH_LEN) != 0))
					report(vs, false, 0, INT64_FORMAT " checkpoint(s) missing before checkpoint " INT64_FORMAT
						   " (after checkpoint " INT64_FORMAT "): removed", id - prev_id - 1, id, prev_id);
			}

			/*
			 * The worker signs them in order: an unsigned checkpoint before a
			 * signed one lost its signature (set to NULL to hide a change).
			 */
			SPI_getbinval(cps->vals[i], cps->tupdesc, 8, &isnull);
			if (report_checkpoints && isnull && !none_signed && DatumGetInt64(last_signed) > id)
				report(vs, false, 0, "checkpoint " INT64_FORMAT " is not signed, but checkpoint "
					   INT64_FORMAT " after it is: its signature was removed", id,
					   DatumGetInt64(last_signed));

			old = MemoryContextSwitchTo(vs->row_cxt);
			verify_checkpoint(vs, cps->vals[i], cps->tupdesc, heads, prev_id > 0 ? prev : NULL,
							  report_checkpoints, stored_hash);
			MemoryContextSwitchTo(old);
			MemoryContextReset(vs->row_cxt);
			memcpy(prev, stored_hash, HASH_LEN);
			prev_id = id;
		}
		SPI_freetuptable(cps);
	}
	SPI_cursor_close(cursor);
	return heads;
}

/*
 * The entity named to audit_verify() must be one the trail can hold: a table
 * of the extension whose changes are audited (every entity the engine names
 * is one), or any entity that has records.  Refused before any work: the
 * verification walks every sealed head with the name, and an absurd one
 * (megabytes long) would cost as much per head.  No table name is longer
 * than NAMEDATALEN - 1 bytes, so a longer one is refused unread.
 */
static void
check_entity(text *entity)
{
	int			len = VARSIZE_ANY_EXHDR(entity);
	char	   *name;
	Datum		args[1];
	Oid			argtypes[1] = {TEXTOID};
	bool		known = false;
	bool		isnull;

	if (len < NAMEDATALEN)
	{
		args[0] = PointerGetDatum(entity);
		if (SPI_execute_with_args("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t "
								  "   JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid "
								  "   JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid "
								  "  WHERE c.relname = $1 "
								  "    AND c.relnamespace = 'ioffice'::regnamespace "
								  "    AND p.pronamespace = 'ioffice'::regnamespace "
								  "    AND p.proname IN ('_audit_direct', '_rule_audit')) "
								  "    OR EXISTS (SELECT 1 FROM ioffice.audit WHERE entity = $1)",
								  1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "ioffice: could not read the audited tables");
		known = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
										   &isnull));
	}
	if (known)
		return;

	if (SPI_execute("SELECT string_agg(DISTINCT c.relname::text, ', ' ORDER BY c.relname::text) "
					"  FROM pg_catalog.pg_trigger t "
					"  JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid "
					"  JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid "
					" WHERE c.relnamespace = 'ioffice'::regnamespace "
					"   AND p.pronamespace = 'ioffice'::regnamespace "
					"   AND p.proname IN ('_audit_direct', '_rule_audit')",
					true, 1) != SPI_OK_SELECT)
		elog(ERROR, "ioffice: could not read the audited tables");
	name = text_to_cstring((text *) pg_detoast_datum_slice((struct varlena *) entity, 0, 240));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown entity \"%.*s%s\"", pg_mbcliplen(name, strlen(name), 60), name,
					len > 60 ? "…" : ""),
			 errhint("Entities are the audited tables: %s.",
					 SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1))));
}

/*
 * The records to walk, in (chain, seq) order through a cursor, so that the
 * walk runs in constant memory: every chain, or those holding a record of
 * the entity, plus the entity's own chain (which may have lost every
 * record) and, for a register, its numbers' chain.  Unchained records of
 * the scope come first.
 */
static Portal
open_records(FunctionCallInfo fcinfo)
{
	Datum		args[2];
	char		nulls[2];
	Oid			argtypes[2] = {TEXTOID, INT8OID};

	args[0] = PG_ARGISNULL(0) ? (Datum) 0 : PG_GETARG_DATUM(0);
	args[1] = PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1);
	nulls[0] = PG_ARGISNULL(0) ? 'n' : ' ';
	nulls[1] = PG_ARGISNULL(1) ? 'n' : ' ';
	return SPI_cursor_open_with_args(NULL,
									 "WITH scope AS ("
									 "  SELECT DISTINCT chain FROM ioffice.audit "
									 "   WHERE ($1 IS NULL OR entity = $1) "
									 "     AND ($2 IS NULL OR entity_id = $2) "
									 "  UNION SELECT $1 || ':' || $2 WHERE $2 IS NOT NULL "
									 "  UNION SELECT 'numbers:' || $2 WHERE $1 = 'register' AND $2 IS NOT NULL) "
									 "SELECT a.id, a.chain, a.seq, a.prev_hash, a.hash, a.at, "
									 "       a.actor_id, a.on_behalf_of, a.db_role, a.entity, "
									 "       a.entity_id, a.action, a.state_before, a.state_after, "
									 "       a.detail::text "
									 "  FROM ioffice.audit a "
									 " WHERE ($1 IS NULL AND $2 IS NULL) OR a.chain IN (SELECT chain FROM scope) "
									 "    OR (a.chain IS NULL AND ($1 IS NULL OR a.entity = $1) "
									 "        AND ($2 IS NULL OR a.entity_id = $2)) "
									 " ORDER BY a.chain COLLATE \"C\" NULLS FIRST, a.seq, a.id",
									 2, argtypes, args, nulls, true, CURSOR_OPT_NO_SCROLL);
}

/* an int8 column that may be NULL: its value, or 0 */
static int64
get_int8(HeapTuple tup, TupleDesc desc, int col, bool *present)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	*present = !isnull;
	return isnull ? 0 : DatumGetInt64(d);
}

/*
 * The hash a record should have, recomputed from its columns as audit.c
 * computed it when writing (the cursor's columns 6 to 15).
 */
static void
expected_hash(HeapTuple tup, TupleDesc desc, const VerifyRecord *r, uint8 *out)
{
	bool		isnull;
	bool		has_actor,
				has_behalf,
				has_entity_id;
	int64		actor = get_int8(tup, desc, 7, &has_actor);
	int64		behalf = get_int8(tup, desc, 8, &has_behalf);
	int64		entity_id = get_int8(tup, desc, 11, &has_entity_id);

	ioffice_audit_hash(r->chain, r->seq, r->has_prev ? to_bytea(r->prev) : NULL,
					   DatumGetTimestampTz(SPI_getbinval(tup, desc, 6, &isnull)),
					   has_actor, actor, has_behalf, behalf,
					   SPI_getvalue(tup, desc, 9), SPI_getvalue(tup, desc, 10),
					   has_entity_id, entity_id, SPI_getvalue(tup, desc, 12),
					   SPI_getvalue(tup, desc, 13), SPI_getvalue(tup, desc, 14),
					   SPI_getvalue(tup, desc, 15), out);
}

/*
 * A record of a chain other than the one walked so far: close that one
 * against its sealed head, and start walking this one.  The sealed head of
 * a chain that has records is marked seen, so that only the chains gone
 * altogether are reported at the end.
 */
static void
enter_chain(VerifyState *vs, const char *chain)
{
	SealedHead *e;

	if (vs->chain[0] != '\0' && strncmp(vs->chain, chain, CHAIN_KEY_LEN - 1) == 0)
		return;
	check_chain_end(vs);
	strlcpy(vs->chain, chain, CHAIN_KEY_LEN);
	e = hash_search(vs->heads, vs->chain, HASH_FIND, NULL);
	if (e)
		e->seen = true;
	vs->last_seq = 0;
	vs->last_hash_ok = false;
}

/*
 * A record's place in its chain: the position after the last one, and the
 * previous record's hash stored in it.  The first record of a chain has no
 * previous hash.
 */
static void
check_link(VerifyState *vs, const VerifyRecord *r)
{
	if (r->seq == vs->last_seq)
		report(vs, true, r->id, "record repeats position " INT64_FORMAT " of chain %s",
			   r->seq, r->chain);
	else if (r->seq > vs->last_seq + 1)
		report(vs, true, r->id, INT64_FORMAT " record(s) missing before this one in chain %s"
			   " (position " INT64_FORMAT " follows " INT64_FORMAT ")",
			   r->seq - vs->last_seq - 1, r->chain, r->seq, vs->last_seq);
	if (vs->last_seq == 0 ? r->has_prev && r->seq == 1
		: (!r->has_prev || !vs->last_hash_ok ||
		   memcmp(r->prev, vs->last_hash, HASH_LEN) != 0))
		report(vs, true, r->id, "record does not follow the previous record of chain %s"
			   " (inserted, reordered, or the previous record was changed)", r->chain);
}

/*
 * One record of the walk (the cursor's row): its link to the previous
 * record, its own hash against its content, and against the sealed head
 * when it is at the sealed position.  Allocates in the caller's per-record
 * context.
 */
static void
verify_record(VerifyState *vs, HeapTuple tup, TupleDesc desc)
{
	VerifyRecord r;
	uint8		want[HASH_LEN];
	bool		isnull;
	SealedHead *e;

	r.id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	r.chain = SPI_getvalue(tup, desc, 2);
	r.seq = get_int8(tup, desc, 3, &isnull);
	r.has_prev = get_hash(tup, desc, 4, r.prev);
	r.has_hash = get_hash(tup, desc, 5, r.hash);

	if (r.chain == NULL)
	{
		report(vs, true, r.id, "record is not chained (written with ioffice.audit_chaining off)");
		return;
	}
	enter_chain(vs, r.chain);
	check_link(vs, &r);

	expected_hash(tup, desc, &r, want);
	if (!r.has_hash || memcmp(want, r.hash, HASH_LEN) != 0)
		report(vs, true, r.id, "record was changed (its hash does not match its content)");

	e = hash_search(vs->heads, vs->chain, HASH_FIND, NULL);
	if (e && e->seq == r.seq && (!r.has_hash || memcmp(e->hash, r.hash, HASH_LEN) != 0))
		report(vs, true, r.id, "record differs from the head of chain %s sealed in checkpoint " INT64_FORMAT,
			   r.chain, e->checkpoint);

	vs->last_seq = r.seq;
	vs->last_id = r.id;
	vs->last_hash_ok = r.has_hash;
	if (r.has_hash)
		memcpy(vs->last_hash, r.hash, HASH_LEN);
}

/* Every record of the cursor, FETCH_BATCH at a time, each in a short-lived context. */
static void
walk_records(VerifyState *vs, Portal cursor)
{
	for (;;)
	{
		uint64		i;

		SPI_cursor_fetch(cursor, true, FETCH_BATCH);
		if (SPI_processed == 0)
			break;
		for (i = 0; i < SPI_processed; i++)
		{
			MemoryContext old = MemoryContextSwitchTo(vs->row_cxt);

			verify_record(vs, SPI_tuptable->vals[i], SPI_tuptable->tupdesc);
			MemoryContextSwitchTo(old);
			MemoryContextReset(vs->row_cxt);
		}
		SPI_freetuptable(SPI_tuptable);
	}
	check_chain_end(vs);
}

/*
 * Is a sealed chain one the caller asked about?  Every chain for the whole
 * trail; the entity's own chain (and a register's numbers' chain) for an
 * entity and id; every chain of the entity's kind ("document:", and for
 * registers "numbers:") for an entity alone.
 */
static bool
chain_in_scope(const VerifyState *vs, const char *chain)
{
	bool		is_register;

	if (vs->whole)
		return true;
	is_register = strcmp(vs->entity, "register") == 0;
	if (vs->has_entity_id)
	{
		char	   *own = psprintf("%s:" INT64_FORMAT, vs->entity, vs->entity_id);

		return strcmp(own, chain) == 0 ||
			(is_register && strcmp(psprintf("numbers:" INT64_FORMAT, vs->entity_id), chain) == 0);
	}
	else
	{
		char	   *prefix = psprintf("%s:", vs->entity);

		return strncmp(prefix, chain, strlen(prefix)) == 0 ||
			(is_register && strncmp("numbers:", chain, 8) == 0);
	}
}

/* Sealed chains of the scope that are gone altogether: the walk never saw them. */
static void
report_lost_chains(VerifyState *vs)
{
	HASH_SEQ_STATUS hs;
	SealedHead *e;

	hash_seq_init(&hs, vs->heads);
	while ((e = hash_seq_search(&hs)) != NULL)
	{
		if (chain_in_scope(vs, e->chain) && !e->seen)
			report(vs, false, 0, "chain %s, sealed at position " INT64_FORMAT " in checkpoint " INT64_FORMAT
				   ", has no records left", e->chain, e->seq, e->checkpoint);
	}
}

PG_FUNCTION_INFO_V1(ioffice_audit_verify);
Datum
ioffice_audit_verify(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	VerifyState vs;
	MemoryContext work;
	Portal		cursor;

	if (PG_ARGISNULL(0) && !PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("audit_verify needs the entity with its id")));

	InitMaterializedSRF(fcinfo, 0);
	memset(&vs, 0, sizeof(vs));
	vs.out = rsinfo->setResult;
	vs.desc = rsinfo->setDesc;
	vs.whole = PG_ARGISNULL(0) && PG_ARGISNULL(1);
	vs.has_entity_id = !PG_ARGISNULL(1);
	vs.entity_id = vs.has_entity_id ? PG_GETARG_INT64(1) : 0;

	work = AllocSetContextCreate(CurrentMemoryContext, "ioffice audit_verify",
								 ALLOCSET_DEFAULT_SIZES);
	vs.row_cxt = AllocSetContextCreate(work, "ioffice audit_verify row", ALLOCSET_DEFAULT_SIZES);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	if (!PG_ARGISNULL(0))
	{
		/* refused before it is read whole: it may be absurdly long */
		check_entity(PG_GETARG_TEXT_PP(0));
		vs.entity = text_to_cstring(PG_GETARG_TEXT_PP(0));
	}
	/* the checkpoints themselves concern the whole trail, not one entity */
	vs.heads = verify_checkpoints(&vs, work, vs.whole);

	cursor = open_records(fcinfo);
	walk_records(&vs, cursor);
	SPI_cursor_close(cursor);

	report_lost_chains(&vs);
	if (vs.whole || strcmp(vs.entity, "register") == 0)
		check_numbers_chains(&vs, vs.entity_id);

	SPI_finish();
	MemoryContextDelete(work);
	return (Datum) 0;
}

/*
 * A register row keeps the end of its numbers' chain (extension/registers.c),
 * written by the same statement as each record: the chain's last record
 * must be the one the row names.  This finds records cut from the end of
 * that chain even when no checkpoint sealed them.  reg 0: every register.
 */
static void
check_numbers_chains(VerifyState *vs, int64 reg)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1];
	char		nulls[1];
	uint64		i;

	args[0] = Int64GetDatum(reg);
	nulls[0] = reg != 0 ? ' ' : 'n';
	if (SPI_execute_with_args(
							  "SELECT r.id, r.numbers_seq, a.id, a.seq "
							  "  FROM ioffice.register r "
							  "  LEFT JOIN LATERAL (SELECT id, seq, hash FROM ioffice.audit "
							  "                      WHERE chain = 'numbers:' || r.id "
							  "                      ORDER BY seq DESC LIMIT 1) a ON true "
							  " WHERE r.numbers_seq > 0 AND ($1::bigint IS NULL OR r.id = $1) "
							  "   AND (a.seq IS DISTINCT FROM r.numbers_seq "
							  "        OR a.hash IS DISTINCT FROM r.numbers_head) "
							  " ORDER BY r.id",
							  1, argtypes, args, nulls, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "ioffice: could not read the registers' numbers chains");
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		int64		id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		int64		counted = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
		Datum		last_id = SPI_getbinval(tup, desc, 3, &isnull);
		int64		last_seq;

		if (isnull)
		{
			report(vs, false, 0, "chain numbers:" INT64_FORMAT " has no records, but register "
				   INT64_FORMAT " ends it at position " INT64_FORMAT, id, id, counted);
			continue;
		}
		last_seq = DatumGetInt64(SPI_getbinval(tup, desc, 4, &isnull));
		if (last_seq < counted)
			report(vs, true, DatumGetInt64(last_id),
				   "chain numbers:" INT64_FORMAT " ends at position " INT64_FORMAT
				   ", but register " INT64_FORMAT " ends it at position " INT64_FORMAT
				   " (records removed from its end)", id, last_seq, id, counted);
		else
			report(vs, true, DatumGetInt64(last_id),
				   "record is not the end of chain numbers:" INT64_FORMAT
				   " that register " INT64_FORMAT " keeps", id, id);
	}
	SPI_freetuptable(SPI_tuptable);
}

/*
 * What one audit_seal() call builds, passed to each of its steps: where it
 * reads the trail from, the chain heads that moved, and the checkpoint made
 * of them.
 *
 * A seal reads only the records that are new since the last checkpoint, by
 * id (the primary key).  Ids come from a sequence but commit out of order:
 * a record with a lower id can become visible after a checkpoint that saw
 * higher ones.  So each checkpoint keeps a horizon, the id below which every
 * record that will ever commit was visible to its seal, and the next seal
 * reads from there.  The horizon moves with a pair kept from an earlier
 * seal: the audit ids handed out then (pending_id) and the next transaction
 * id then (pending_xid).  Every transaction holding an audit id had its
 * transaction id first (_audit_next_id(), the column's default), so the
 * holders of the ids up to pending_id all have transaction ids below
 * pending_xid; once a snapshot's xmin has passed pending_xid they have all
 * committed (and the snapshot sees their records) or rolled back.  Ids,
 * unlike transaction ids, survive a dump and a restore.
 */
typedef struct SealState
{
	SPITupleTable *moved;		/* chain, seq, hash, records since the last seal */
	uint64		n;
	int64		id;				/* the last checkpoint's, then the new one's; 0: none */
	TimestampTz at;
	int64		records;
	bool		has_prev;
	uint8		prev[HASH_LEN]; /* the last checkpoint's hash */
	uint8		root[HASH_LEN];
	uint8		hash[HASH_LEN];

	/* the last checkpoint's horizon and pair (absent: read the whole trail) */
	bool		has_from;
	int64		from_id;
	bool		has_last_pair;
	int64		last_pending_id;
	FullTransactionId last_pending_xid;

	/* this seal's pair, and the new checkpoint's horizon */
	bool		has_pair;
	int64		pending_id;
	FullTransactionId pending_xid;
	int64		horizon;
} SealState;

/* The last checkpoint: its id and hash, which the new one links to, and its horizon. */
static void
read_last_checkpoint(SealState *ss)
{
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	bool		id_null,
				xid_null;
	Datum		d;

	if (SPI_execute("SELECT id, hash, horizon, pending_id, pending_xid "
					"  FROM ioffice.audit_checkpoint ORDER BY id DESC LIMIT 1",
					false, 1) != SPI_OK_SELECT)
		elog(ERROR, "ioffice: could not read audit_checkpoint");
	if (SPI_processed == 0)
	{
		ss->id = 0;
		return;
	}
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	ss->has_prev = get_hash(tup, desc, 2, ss->prev);
	ss->id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	d = SPI_getbinval(tup, desc, 3, &isnull);
	ss->has_from = !isnull;
	ss->from_id = isnull ? 0 : DatumGetInt64(d);
	d = SPI_getbinval(tup, desc, 4, &id_null);
	ss->last_pending_id = id_null ? 0 : DatumGetInt64(d);
	d = SPI_getbinval(tup, desc, 5, &xid_null);
	ss->last_pending_xid = xid_null ? InvalidFullTransactionId : DatumGetFullTransactionId(d);
	ss->has_last_pair = ss->has_from && !id_null && !xid_null;
}

/*
 * This seal's pair: the audit ids handed out so far, then the next
 * transaction id (in that order: a transaction that took one of those ids
 * had its transaction id before, so below this one).  None when the
 * sequence caches values: a backend may then hand out an id lower than the
 * last value at any later time, and the horizon stays where it is.
 */
static void
read_pending_pair(SealState *ss)
{
	bool		isnull;
	int32		cache;

	if (SPI_execute("SELECT CASE WHEN s.is_called THEN s.last_value ELSE s.last_value - 1 END, "
					"       q.seqcache::int4 "
					"  FROM ioffice.audit_id_seq s, pg_catalog.pg_sequence q "
					" WHERE q.seqrelid = 'ioffice.audit_id_seq'::pg_catalog.regclass",
					false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "ioffice: could not read the audit sequence");
	ss->pending_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
												 &isnull));
	cache = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	ss->pending_xid = ReadNextFullTransactionId();
	ss->has_pair = cache == 1;
	SPI_freetuptable(SPI_tuptable);
}

/*
 * Are all the holders of the ids up to a pair's pending_id done, for a
 * snapshot whose xmin is given?  A pair whose transaction id is past the
 * next one to be assigned comes from another cluster: a dump restored here
 * holds only committed records, and a promoted standby's old primary runs
 * no transaction any more.
 */
static bool
pair_settled(FullTransactionId pending_xid, FullTransactionId xmin, FullTransactionId next)
{
	return FullTransactionIdPrecedes(next, pending_xid) ||
		FullTransactionIdFollowsOrEquals(xmin, pending_xid);
}

/*
 * The new checkpoint's horizon: the last one's, moved up to a pair whose
 * holders are all done for a snapshot taken now -- taken before the one
 * read_moved_heads() reads the trail with (READ COMMITTED), or the same
 * (REPEATABLE READ), so that what this one sees committed, that one sees.
 * The sealer's own transaction is not in its snapshot's xmin.
 */
static void
settle_horizon(SealState *ss)
{
	bool		isnull;
	FullTransactionId xmin;

	ss->horizon = ss->has_from ? ss->from_id : 0;
	if (SPI_execute("SELECT pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())",
					false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "ioffice: could not read the snapshot");
	xmin = DatumGetFullTransactionId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
												   &isnull));
	SPI_freetuptable(SPI_tuptable);
	if (ss->has_last_pair &&
		pair_settled(ss->last_pending_xid, xmin, ss->pending_xid))
		ss->horizon = Max(ss->horizon, ss->last_pending_id + 1);
	if (ss->has_pair && pair_settled(ss->pending_xid, xmin, ss->pending_xid))
		ss->horizon = Max(ss->horizon, ss->pending_id + 1);
}

/*
 * The heads now, of the chains whose head moved on since it was last sealed.
 * A chain that is shorter than sealed, or whose record at the sealed
 * position is no longer the one sealed, is left as it is: sealing it again
 * would cover the removal or the rewrite that audit_verify() reports
 * against its last sealed head.
 *
 * The chains that may have moved are those with a record from the last
 * checkpoint's horizon on (the primary key's range), and each one's head is
 * the last of those: a chain's writer holds the chain's lock from reading
 * its head until it commits, and takes its ids meanwhile, so a later
 * position always has a later id.  (Records inserted by hand with ids of
 * one's choosing may break that order: the seal then seals a record before
 * the head, which audit_verify() checks like any sealed head.)  A chain's
 * last sealed head is the end of its (chain, checkpoint_id) key.  (One sort,
 * in the Merkle tree's order.)  Without a horizon (none sealed yet, or the
 * last checkpoint was written by 0.1), the whole trail once.
 */
static void
read_moved_heads(SealState *ss)
{
	int			rc;

	if (!ss->has_from)
		rc = SPI_execute("SELECT h.chain, h.seq, h.hash, h.seq - coalesce(s.seq, 0) "
						 "  FROM (SELECT DISTINCT ON (chain) chain, seq, hash FROM ioffice.audit "
						 "         WHERE chain IS NOT NULL ORDER BY chain, seq DESC) h "
						 "  LEFT JOIN (SELECT DISTINCT ON (chain) chain, seq, hash FROM ioffice.audit_checkpoint_head "
						 "              ORDER BY chain, checkpoint_id DESC) s ON s.chain = h.chain "
						 " WHERE h.seq > coalesce(s.seq, 0) "
						 "   AND (s.chain IS NULL OR EXISTS (SELECT 1 FROM ioffice.audit a "
						 "         WHERE a.chain = s.chain AND a.seq = s.seq AND a.hash = s.hash)) "
						 " ORDER BY h.chain COLLATE \"C\"", false, 0);
	else
	{
		Datum		args[1];
		Oid			types[1] = {INT8OID};

		args[0] = Int64GetDatum(ss->from_id);
		rc = SPI_execute_with_args("SELECT h.chain, h.seq, h.hash, h.seq - coalesce(s.seq, 0) "
								   "  FROM (SELECT DISTINCT ON (chain COLLATE \"C\") chain, seq, hash "
								   "          FROM ioffice.audit WHERE id >= $1 AND chain IS NOT NULL "
								   "         ORDER BY chain COLLATE \"C\", seq DESC) h "
								   "  LEFT JOIN LATERAL (SELECT c.seq, c.hash FROM ioffice.audit_checkpoint_head c "
								   "         WHERE c.chain = h.chain ORDER BY c.checkpoint_id DESC LIMIT 1) s ON true "
								   " WHERE h.seq > coalesce(s.seq, 0) "
								   "   AND (s.seq IS NULL OR EXISTS (SELECT 1 FROM ioffice.audit a "
								   "         WHERE a.chain = h.chain AND a.seq = s.seq AND a.hash = s.hash)) "
								   " ORDER BY h.chain COLLATE \"C\"",
								   1, types, args, NULL, false, 0);
	}
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "ioffice: could not read the chain heads");
	ss->moved = SPI_tuptable;
	ss->n = SPI_processed;
	if (ss->n > PG_INT32_MAX)
		elog(ERROR, "ioffice: too many chains to seal at once");
}

/* The Merkle root over the moved heads, and how many records they add. */
static void
seal_root(SealState *ss)
{
	SPITupleTable *moved = ss->moved;
	uint8		(*leaves)[HASH_LEN] = palloc(sizeof(*leaves) * ss->n);
	uint64		i;
	bool		isnull;

	for (i = 0; i < ss->n; i++)
	{
		uint8		h[HASH_LEN];

		memset(h, 0, HASH_LEN);
		get_hash(moved->vals[i], moved->tupdesc, 3, h);
		ioffice_merkle_leaf(SPI_getvalue(moved->vals[i], moved->tupdesc, 1),
					DatumGetInt64(SPI_getbinval(moved->vals[i], moved->tupdesc, 2, &isnull)),
					h, leaves[i]);
		ss->records += DatumGetInt64(SPI_getbinval(moved->vals[i], moved->tupdesc, 4, &isnull));
	}
	ioffice_merkle_root(leaves, (int) ss->n, ss->root);
}

/*
 * Number the new checkpoint, hash it (linked to the last one) and write its
 * row, with the horizon and the pair the next seal reads from (not part of
 * what is hashed and signed: they say where to read, not what was sealed).
 */
static void
write_checkpoint(SealState *ss)
{
	Datum		args[10];
	char		nulls[10] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	Oid			types[10] = {INT8OID, TIMESTAMPTZOID, INT4OID, INT8OID, BYTEAOID, BYTEAOID, BYTEAOID,
	INT8OID, INT8OID, XID8OID};

	/*
	 * The next number after the last checkpoint's, not the sequence's: a
	 * rolled-back seal must leave no gap, so that a gap means a checkpoint
	 * removed.  The sealer's lock makes it one at a time; a sealer reading
	 * from an older snapshot (REPEATABLE READ) would take a number already
	 * used, and fail on the primary key rather than seal the same heads
	 * twice.
	 */
	ss->id = ss->id + 1;
	checkpoint_hash(ss->id, ss->at, (int32) ss->n, ss->records, ss->root,
					ss->has_prev ? ss->prev : NULL, ss->hash);

	args[0] = Int64GetDatum(ss->id);
	args[1] = TimestampTzGetDatum(ss->at);
	args[2] = Int32GetDatum((int32) ss->n);
	args[3] = Int64GetDatum(ss->records);
	args[4] = PointerGetDatum(to_bytea(ss->root));
	args[5] = ss->has_prev ? PointerGetDatum(to_bytea(ss->prev)) : (Datum) 0;
	nulls[5] = ss->has_prev ? ' ' : 'n';
	args[6] = PointerGetDatum(to_bytea(ss->hash));
	args[7] = Int64GetDatum(ss->horizon);
	args[8] = Int64GetDatum(ss->pending_id);
	args[9] = FullTransactionIdGetDatum(ss->pending_xid);
	nulls[8] = nulls[9] = ss->has_pair ? ' ' : 'n';
	if (SPI_execute_with_args("INSERT INTO ioffice.audit_checkpoint "
							  "(id, at, chains, records, root, prev_hash, hash, horizon, pending_id, pending_xid) "
							  "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
							  10, types, args, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "ioffice: could not write the checkpoint");
}

/* The checkpoint's heads, one row each, in one statement: what the next verification loads. */
static void
write_checkpoint_heads(SealState *ss)
{
	Datum	   *chains = palloc(sizeof(Datum) * ss->n);
	Datum	   *seqs = palloc(sizeof(Datum) * ss->n);
	Datum	   *hashes = palloc(sizeof(Datum) * ss->n);
	Datum		args[4];
	Oid			types[4] = {INT8OID, TEXTARRAYOID, INT8ARRAYOID, BYTEAARRAYOID};
	uint64		i;
	bool		isnull;

	for (i = 0; i < ss->n; i++)
	{
		chains[i] = SPI_getbinval(ss->moved->vals[i], ss->moved->tupdesc, 1, &isnull);
		seqs[i] = SPI_getbinval(ss->moved->vals[i], ss->moved->tupdesc, 2, &isnull);
		hashes[i] = SPI_getbinval(ss->moved->vals[i], ss->moved->tupdesc, 3, &isnull);
	}
	args[0] = Int64GetDatum(ss->id);
	args[1] = PointerGetDatum(construct_array(chains, (int) ss->n, TEXTOID, -1, false, TYPALIGN_INT));
	args[2] = PointerGetDatum(construct_array(seqs, (int) ss->n, INT8OID, sizeof(int64),
											  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	args[3] = PointerGetDatum(construct_array(hashes, (int) ss->n, BYTEAOID, -1, false, TYPALIGN_INT));
	if (SPI_execute_with_args("INSERT INTO ioffice.audit_checkpoint_head (checkpoint_id, chain, seq, hash) "
							  "SELECT $1, u.chain, u.seq, u.hash "
							  "  FROM unnest($2::text[], $3::int8[], $4::bytea[]) AS u(chain, seq, hash)",
							  4, types, args, NULL, false, 0) != SPI_OK_INSERT ||
		SPI_processed != ss->n)
		elog(ERROR, "ioffice: could not write the chain heads");
}

/*
 * A checkpoint of the heads of the chains that moved since the last one, by
 * audit_seal() and by the worker (workers/audit_jobs.c); the caller is
 * connected to SPI.  Returns its id, or the last checkpoint's when nothing
 * moved (0: none yet); *sealed says whether one was written.
 *
 * One sealer at a time (a transaction-level advisory lock that writers of
 * the trail never take); writers are not blocked: sealing reads the audit
 * table and inserts into the checkpoint tables only, and what writers
 * commit later goes into the next checkpoint.
 */
int64
ioffice_audit_seal_internal(bool *sealed)
{
	SealState	ss;
	int			guc_level;

	memset(&ss, 0, sizeof(ss));
	*sealed = false;
	ss.at = GetCurrentTransactionStartTimestamp();
	if (SPI_execute("SELECT pg_catalog.pg_advisory_xact_lock(1634, 1)", false, 0) != SPI_OK_SELECT)
		elog(ERROR, "ioffice: could not take the sealer's lock");

	/*
	 * The moved heads are an index probe or two per chain, which the planner
	 * prices high enough for JIT compilation: that took as long as the query
	 * itself (about 100 ms for 10,000 chains), to save nothing.
	 */
	guc_level = NewGUCNestLevel();
	(void) set_config_option("jit", "off", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);

	read_last_checkpoint(&ss);
	read_pending_pair(&ss);
	settle_horizon(&ss);
	read_moved_heads(&ss);
	if (ss.n > 0)
	{
		seal_root(&ss);
		write_checkpoint(&ss);
		write_checkpoint_heads(&ss);
		*sealed = true;
	}
	AtEOXact_GUC(true, guc_level);
	return ss.id;
}

/*
 * audit_seal(): a checkpoint now.  Returns its id, or the last checkpoint's
 * when nothing moved.  The worker signs and publishes it after this
 * transaction commits (it has the key; a backend has none).
 */
PG_FUNCTION_INFO_V1(ioffice_audit_seal);
Datum
ioffice_audit_seal(PG_FUNCTION_ARGS)
{
	int64		id;
	bool		sealed;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	id = ioffice_audit_seal_internal(&sealed);
	SPI_finish();
	if (sealed)
		ioffice_worker_wake_at_commit();
	if (id == 0)
		PG_RETURN_NULL();
	PG_RETURN_INT64(id);
}
