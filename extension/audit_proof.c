/*-------------------------------------------------------------------------
 * audit_proof.c
 *	  audit_proof(): what a witness needs to check that a later checkpoint
 *	  extends one it holds, and audit_proof_record(): an inclusion proof of
 *	  one audit record against a checkpoint.
 *
 * What a checkpoint commits to (audit_verify.c): the heads (chain, seq,
 * hash) of the chains that moved since the previous checkpoint, through the
 * root of a Merkle tree over them, and the previous checkpoint's hash.  It
 * is not one growing RFC 6962 tree but a hash-linked sequence of small
 * trees, so the proofs follow that structure:
 *
 * - audit_proof(from, to) lists the checkpoints from..to with every field
 *   their hashes cover: from the hash held for checkpoint from, a verifier
 *   recomputes each following checkpoint's hash, each one's link naming the
 *   one before, up to checkpoint to (size: to - from + 1 checkpoints).  As a
 *   second, logarithmic proof for witnesses that keep every checkpoint, it
 *   gives an RFC 6962 section 2.1.2 consistency proof in the Merkle tree
 *   whose leaves are the checkpoint hashes in order (computed here, not
 *   stored nor signed: such a witness computes the older root itself), and
 *   the audit path of checkpoint to's hash, the last leaf of the newer tree.
 *
 * - audit_proof_record(id) gives the record's fields, the later records of
 *   its chain up to the head that the first checkpoint covering it sealed
 *   (each one's hash covers the one before: the verifier recomputes them
 *   all), the RFC 6962 section 2.1.1 audit path from that head's leaf to the
 *   checkpoint's root, and the checkpoint.
 *
 * Encodings (SHA-256 throughout; "|" is concatenation; numbers in decimal
 * ASCII; hashes in a proof are hex, the signature base64):
 *   record hash   SHA-256("ioffice-audit-1;" F(chain) F(seq) F(previous)
 *                 F(at) F(actor_id) F(on_behalf_of) F(db_role) F(entity)
 *                 F(entity_id) F(action) F(state_before) F(state_after)
 *                 F(detail)), where F(x) = <byte length of x> ":" x ";" and
 *                 F(NULL) = "-;"; previous is the 32 raw bytes; at is
 *                 microseconds since 2000-01-01 00:00:00 UTC; detail the
 *                 jsonb's text as given (audit.c)
 *   head leaf     SHA-256(0x00 | <byte length of chain> ":" chain ";" seq
 *                 ";" | head hash)
 *   node          SHA-256(0x01 | left | right), RFC 6962's tree shape
 *   checkpoint    SHA-256("ioffice-checkpoint-1;" sequence ";" at ";"
 *                 chains ";" records ";" | root | previous), previous absent
 *                 for the first; at as above (audit_verify.c)
 *   checkpoint-tree leaf  SHA-256(0x00 | checkpoint hash)
 *
 * Both read in order through cursors, a batch at a time: memory holds one
 * checkpoint's leaves (its chain heads) or O(log n) subtree hashes, besides
 * the answer itself.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/sha2.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"

#include "ioffice.h"

#define HASH_LEN PG_SHA256_DIGEST_LENGTH
#define FETCH_BATCH 1000
#define MAX_DEPTH 64

/* The columns of an audit record as a proof gives them (JSON text). */
#define RECORD_JSON \
	"jsonb_build_object('id', a.id, 'chain', a.chain, 'seq', a.seq, " \
	"   'previous', encode(a.prev_hash, 'hex'), 'hash', encode(a.hash, 'hex'), " \
	"   'at', to_char(a.at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), " \
	"   'actor_id', a.actor_id, 'on_behalf_of', a.on_behalf_of, 'db_role', a.db_role, " \
	"   'entity', a.entity, 'entity_id', a.entity_id, 'action', a.action, " \
	"   'state_before', a.state_before, 'state_after', a.state_after, " \
	"   'detail', a.detail::text)::text"

/* A checkpoint as the witnesses receive it (workers/audit_jobs.c), as JSON text. */
#define CHECKPOINT_JSON \
	"jsonb_build_object('sequence', c.id, " \
	"   'at', to_char(c.at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), " \
	"   'chains', c.chains, 'records', c.records, 'root', encode(c.root, 'hex'), " \
	"   'previous', encode(c.prev_hash, 'hex'), 'hash', encode(c.hash, 'hex'), " \
	"   'signature', translate(encode(c.signature, 'base64'), E'\\n', ''))::text"

/*
 * The Merkle tree hash of the leaves [start, end) of a sequence read in
 * order: the perfect subtrees completed so far, as a stack (their sizes are
 * decreasing powers of two), folded from the right at the end -- RFC 6962's
 * MTH without holding the leaves.
 */
typedef struct MthRange
{
	int64		start;
	int64		end;
	int			depth;
	int64		size[MAX_DEPTH];
	uint8		stack[MAX_DEPTH][HASH_LEN];
	uint8		result[HASH_LEN];
} MthRange;

static void
node_hash(const uint8 *left, const uint8 *right, uint8 *out)
{
	uint8		node[1 + 2 * HASH_LEN];

	node[0] = 1;
	memcpy(node + 1, left, HASH_LEN);
	memcpy(node + 1 + HASH_LEN, right, HASH_LEN);
	ioffice_sha256_bytes(node, sizeof(node), out);
}

static void
mth_push(MthRange *r, const uint8 *leaf)
{
	memcpy(r->stack[r->depth], leaf, HASH_LEN);
	r->size[r->depth++] = 1;
	while (r->depth >= 2 && r->size[r->depth - 1] == r->size[r->depth - 2])
	{
		node_hash(r->stack[r->depth - 2], r->stack[r->depth - 1], r->stack[r->depth - 2]);
		r->size[r->depth - 2] *= 2;
		r->depth--;
	}
}

static void
mth_finish(MthRange *r)
{
	int			i;

	if (r->depth == 0)
	{
		ioffice_sha256_bytes("", 0, r->result);
		return;
	}
	memcpy(r->result, r->stack[r->depth - 1], HASH_LEN);
	for (i = r->depth - 2; i >= 0; i--)
		node_hash(r->stack[i], r->result, r->result);
}

static MthRange *
new_range(List **ranges, int64 start, int64 end)
{
	MthRange   *r = palloc0(sizeof(MthRange));

	r->start = start;
	r->end = end;
	*ranges = lappend(*ranges, r);
	return r;
}

/* the largest power of two less than n (n >= 2) */
static int64
split_point(int64 n)
{
	int64		k = 1;

	while (k * 2 < n)
		k *= 2;
	return k;
}

/*
 * RFC 6962 2.1.1 PATH(m, D[start:end]): the subtrees whose hashes make leaf
 * m's audit path, from the leaf up.
 */
static void
path_ranges(List **out, int64 m, int64 start, int64 end)
{
	int64		k;

	if (end - start <= 1)
		return;
	k = split_point(end - start);
	if (m < start + k)
	{
		path_ranges(out, m, start, start + k);
		new_range(out, start + k, end);
	}
	else
	{
		path_ranges(out, m, start + k, end);
		new_range(out, start, start + k);
	}
}

/*
 * RFC 6962 2.1.2 SUBPROOF(m, D[start:end], whole): m is the size of the older
 * tree's part within [start, end).
 */
static void
subproof_ranges(List **out, int64 m, int64 start, int64 end, bool whole)
{
	int64		k;

	if (m == end - start)
	{
		if (!whole)
			new_range(out, start, end);
		return;
	}
	k = split_point(end - start);
	if (m <= k)
	{
		subproof_ranges(out, m, start, start + k, whole);
		new_range(out, start + k, end);
	}
	else
	{
		subproof_ranges(out, m - k, start + k, end, false);
		new_range(out, start, start + k);
	}
}

/* hex of a hash, quoted, into a JSON text */
static void
json_hash(StringInfo buf, const uint8 *h)
{
	static const char digits[] = "0123456789abcdef";
	int			i;

	appendStringInfoChar(buf, '"');
	for (i = 0; i < HASH_LEN; i++)
	{
		appendStringInfoChar(buf, digits[h[i] >> 4]);
		appendStringInfoChar(buf, digits[h[i] & 15]);
	}
	appendStringInfoChar(buf, '"');
}

/* a JSON array of the ranges' hashes */
static void
json_ranges(StringInfo buf, List *ranges)
{
	ListCell   *lc;

	appendStringInfoChar(buf, '[');
	foreach(lc, ranges)
	{
		if (lc != list_head(ranges))
			appendStringInfoString(buf, ", ");
		json_hash(buf, ((MthRange *) lfirst(lc))->result);
	}
	appendStringInfoChar(buf, ']');
}

/*
 * Every row of a query's single text column, in order through a cursor, as
 * the elements of a JSON array.
 */
static void
json_rows(StringInfo buf, const char *query, int nargs, Oid *types, Datum *args)
{
	Portal		cursor = SPI_cursor_open_with_args(NULL, query, nargs, types, args, NULL, true,
												   CURSOR_OPT_NO_SCROLL);
	bool		first = true;

	appendStringInfoChar(buf, '[');
	for (;;)
	{
		uint64		i;

		SPI_cursor_fetch(cursor, true, FETCH_BATCH);
		if (SPI_processed == 0)
			break;
		for (i = 0; i < SPI_processed; i++)
		{
			char	   *row = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);

			if (!first)
				appendStringInfoString(buf, ", ");
			appendStringInfoString(buf, row);
			pfree(row);
			first = false;
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(cursor);
	appendStringInfoChar(buf, ']');
}

/* one row of a query's single text column (it must return one) */
static void
json_row(StringInfo buf, const char *query, int nargs, Oid *types, Datum *args)
{
	if (SPI_execute_with_args(query, nargs, types, args, NULL, true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "ioffice: could not read the proof's rows");
	appendStringInfoString(buf, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	SPI_freetuptable(SPI_tuptable);
}

static int64
count_query(const char *query, int nargs, Oid *types, Datum *args)
{
	bool		isnull;
	int64		n;

	if (SPI_execute_with_args(query, nargs, types, args, NULL, true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "ioffice: could not count the proof's rows");
	n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_freetuptable(SPI_tuptable);
	return n;
}

/*
 * The same count as the role that called this SECURITY DEFINER function, so
 * that the row-level security of the audit table decides, exactly as for
 * that role's own SELECT, which records it may see (row_security on: off
 * would make the query fail rather than filter).  A superuser sees all.
 */
static int64
count_as_caller(const char *query, int nargs, Oid *types, Datum *args)
{
	Oid			save_userid;
	int			save_sec_context;
	int			guc_level;
	int64		n;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	guc_level = NewGUCNestLevel();
	(void) set_config_option("row_security", "on", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	SetUserIdAndSecContext(GetOuterUserId(), save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	n = count_query(query, nargs, types, args);
	SetUserIdAndSecContext(save_userid, save_sec_context);
	AtEOXact_GUC(true, guc_level);
	return n;
}

static Datum
json_result(StringInfo buf)
{
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(buf->data));
}

/* ------------------------------------------------------------------------
 * audit_proof(from_seq, to_seq)
 * ------------------------------------------------------------------------
 */

/*
 * The Merkle tree over the checkpoint hashes, leaves SHA-256(0x00 | hash) in
 * the checkpoints' order: the roots of the trees of sizes m and n, the
 * consistency proof between them, and the audit path of leaf n - 1.  One
 * pass over the checkpoints 1..to, each leaf fed to the ranges holding it.
 */
static void
checkpoint_tree(StringInfo buf, int64 to_seq, int64 m, int64 n)
{
	List	   *consistency = NIL;
	List	   *inclusion = NIL;
	List	   *all;
	MthRange   *root_m;
	MthRange   *root_n;
	Datum		args[1];
	Oid			types[1] = {INT8OID};
	Portal		cursor;
	int64		leaf = 0;
	ListCell   *lc;

	if (m < n)
		subproof_ranges(&consistency, m, 0, n, true);
	path_ranges(&inclusion, n - 1, 0, n);
	all = list_concat_copy(consistency, inclusion);
	root_m = new_range(&all, 0, m);
	root_n = new_range(&all, 0, n);

	args[0] = Int64GetDatum(to_seq);
	cursor = SPI_cursor_open_with_args(NULL,
									   "SELECT hash FROM ioffice.audit_checkpoint WHERE id <= $1 ORDER BY id",
									   1, types, args, NULL, true, CURSOR_OPT_NO_SCROLL);
	for (;;)
	{
		uint64		i;

		CHECK_FOR_INTERRUPTS();
		SPI_cursor_fetch(cursor, true, FETCH_BATCH * 10);
		if (SPI_processed == 0)
			break;
		for (i = 0; i < SPI_processed; i++, leaf++)
		{
			bool		isnull;
			bytea	   *h = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[i],
														  SPI_tuptable->tupdesc, 1, &isnull));
			uint8		data[1 + HASH_LEN];
			uint8		leaf_hash[HASH_LEN];

			/* (a hash of another length is hashed as stored: the proof then fails) */
			memset(data, 0, sizeof(data));
			memcpy(data + 1, VARDATA_ANY(h), Min(VARSIZE_ANY_EXHDR(h), HASH_LEN));
			ioffice_sha256_bytes(data, sizeof(data), leaf_hash);
			foreach(lc, all)
			{
				MthRange   *r = lfirst(lc);

				if (leaf >= r->start && leaf < r->end)
					mth_push(r, leaf_hash);
			}
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(cursor);
	foreach(lc, all)
		mth_finish(lfirst(lc));

	appendStringInfo(buf, "{\"leaf\": \"SHA-256(0x00 | checkpoint hash)\", "
					 "\"size_from\": " INT64_FORMAT ", \"size_to\": " INT64_FORMAT ", \"root_from\": ",
					 m, n);
	json_hash(buf, root_m->result);
	appendStringInfoString(buf, ", \"root_to\": ");
	json_hash(buf, root_n->result);
	appendStringInfoString(buf, ", \"consistency\": ");
	json_ranges(buf, consistency);
	appendStringInfoString(buf, ", \"inclusion_to\": ");
	json_ranges(buf, inclusion);
	appendStringInfoChar(buf, '}');
}

PG_FUNCTION_INFO_V1(ioffice_audit_proof);
Datum
ioffice_audit_proof(PG_FUNCTION_ARGS)
{
	int64		from_seq,
				to_seq,
				m,
				n;
	Datum		args[2];
	Oid			types[2] = {INT8OID, INT8OID};
	StringInfoData buf;
	Datum		result;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("audit_proof needs two checkpoint sequence numbers")));
	from_seq = PG_GETARG_INT64(0);
	to_seq = PG_GETARG_INT64(1);
	if (from_seq < 1 || to_seq < from_seq)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("audit_proof needs 1 <= from_seq <= to_seq, not " INT64_FORMAT " and " INT64_FORMAT,
						from_seq, to_seq)));

	/* (in the caller's memory: it outlives SPI_finish) */
	initStringInfo(&buf);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	args[0] = Int64GetDatum(from_seq);
	args[1] = Int64GetDatum(to_seq);
	if (count_query("SELECT count(*) FROM ioffice.audit_checkpoint WHERE id = $1", 1, types, args) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("unknown checkpoint " INT64_FORMAT, from_seq)));
	if (count_query("SELECT count(*) FROM ioffice.audit_checkpoint WHERE id = $1", 1, types, args + 1) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("unknown checkpoint " INT64_FORMAT, to_seq)));
	/* the trees' sizes: checkpoints up to each (its sequence, but for 0.1's gaps) */
	m = count_query("SELECT count(*) FROM ioffice.audit_checkpoint WHERE id <= $1", 1, types, args);
	n = count_query("SELECT count(*) FROM ioffice.audit_checkpoint WHERE id <= $1", 1, types, args + 1);

	appendStringInfo(&buf, "{\"format\": \"ioffice-audit-consistency-1\", \"from\": " INT64_FORMAT
					 ", \"to\": " INT64_FORMAT ", \"checkpoints\": ", from_seq, to_seq);
	/*
	 * The signature of checkpoint to only: the links do not need the others'
	 * (the witness has them), and they are most of a checkpoint's size.
	 */
	json_rows(&buf, "SELECT (" CHECKPOINT_JSON ")::jsonb "
			  "       - CASE WHEN c.id = $2 THEN '' ELSE 'signature' END "
			  "  FROM ioffice.audit_checkpoint c "
			  " WHERE c.id BETWEEN $1 AND $2 ORDER BY c.id", 2, types, args);
	appendStringInfoString(&buf, ", \"merkle\": ");
	checkpoint_tree(&buf, to_seq, m, n);
	appendStringInfoChar(&buf, '}');

	SPI_finish();
	result = json_result(&buf);
	pfree(buf.data);
	PG_RETURN_DATUM(result);
}

/* ------------------------------------------------------------------------
 * audit_proof_record(id)
 * ------------------------------------------------------------------------
 */

/*
 * What one audit_proof_record() call knows: the record's place, and the
 * chain head that seals it, in which checkpoint.
 */
typedef struct RecordProof
{
	int64		id;
	char	   *chain;
	int64		seq;
	int64		checkpoint;
	int64		head_seq;
	uint8		head_hash[HASH_LEN];
} RecordProof;

/*
 * The record's chain and position, for the caller only if the audit's
 * row-level security lets them see it: for anyone else, a record they may
 * not see is unknown, with the same words as one that does not exist.
 */
static void
find_record(RecordProof *rp)
{
	Datum		args[1];
	Oid			types[1] = {INT8OID};
	bool		found,
				chained = false;

	args[0] = Int64GetDatum(rp->id);
	if (SPI_execute_with_args("SELECT chain, seq FROM ioffice.audit WHERE id = $1",
							  1, types, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "ioffice: could not read the audit record");
	found = SPI_processed == 1;
	if (found)
	{
		bool		isnull;

		rp->chain = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		rp->seq = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2,
											  &isnull));
		chained = rp->chain != NULL && !isnull;
		SPI_freetuptable(SPI_tuptable);
	}
	if (!found ||
		count_as_caller("SELECT count(*) FROM ioffice.audit WHERE id = $1", 1, types, args) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("unknown audit record " INT64_FORMAT, rp->id)));
	if (!chained)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("audit record " INT64_FORMAT " is not chained", rp->id),
				 errdetail("It was written with ioffice.audit_chaining off: no checkpoint can seal it.")));
}

/*
 * The first checkpoint that sealed the record's chain at its position or
 * later (a chain's sealed heads only move on, checkpoint after checkpoint).
 */
static void
find_sealing_head(RecordProof *rp)
{
	Datum		args[2];
	Oid			types[2] = {TEXTOID, INT8OID};
	bool		isnull;
	bytea	   *h;

	args[0] = CStringGetTextDatum(rp->chain);
	args[1] = Int64GetDatum(rp->seq);
	if (SPI_execute_with_args("SELECT checkpoint_id, seq, hash FROM ioffice.audit_checkpoint_head "
							  " WHERE chain = $1 AND seq >= $2 ORDER BY checkpoint_id LIMIT 1",
							  2, types, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "ioffice: could not read the sealed heads");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("audit record " INT64_FORMAT " is newer than the last checkpoint", rp->id),
				 errdetail("No checkpoint has sealed chain %s up to position " INT64_FORMAT " yet.",
						   rp->chain, rp->seq),
				 errhint("The worker seals every ioffice.audit_seal_interval seconds; audit_seal() seals now.")));
	rp->checkpoint = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	rp->head_seq = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	h = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	memset(rp->head_hash, 0, HASH_LEN);
	memcpy(rp->head_hash, VARDATA_ANY(h), Min(VARSIZE_ANY_EXHDR(h), HASH_LEN));
	SPI_freetuptable(SPI_tuptable);
}

/*
 * The steps disclose the chain's later records: the caller must be allowed
 * to see each of them (a document's chain also holds the records of its
 * files and signatures, which the audit's row-level security shows to
 * admins only).
 */
static void
check_steps_visible(RecordProof *rp)
{
	Datum		args[3];
	Oid			types[3] = {TEXTOID, INT8OID, INT8OID};
	const char *q = "SELECT count(*) FROM ioffice.audit WHERE chain = $1 AND seq > $2 AND seq <= $3";
	int64		hidden;

	args[0] = CStringGetTextDatum(rp->chain);
	args[1] = Int64GetDatum(rp->seq);
	args[2] = Int64GetDatum(rp->head_seq);
	hidden = count_query(q, 3, types, args) - count_as_caller(q, 3, types, args);
	if (hidden > 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("the proof of audit record " INT64_FORMAT " would show " INT64_FORMAT
						" later record(s) of chain %s that you may not see", rp->id, hidden, rp->chain),
				 errdetail("Each step of the chain up to the head checkpoint " INT64_FORMAT
						   " sealed is given whole, so that its hash can be recomputed.", rp->checkpoint),
				 errhint("An admin may get this proof.")));
}

/*
 * The leaves of the checkpoint's tree (its heads in the order of their
 * chains' bytes, as the seal built it) and the audit path of the record's
 * head from its leaf to the root.
 */
static void
head_audit_path(StringInfo buf, RecordProof *rp)
{
	Datum		args[1];
	Oid			types[1] = {INT8OID};
	Portal		cursor;
	uint8		(*leaves)[HASH_LEN];
	int64		n = 0,
				allocated = 1024,
				index = -1;
	List	   *ranges = NIL;
	ListCell   *lc;

	leaves = palloc(sizeof(*leaves) * allocated);
	args[0] = Int64GetDatum(rp->checkpoint);
	cursor = SPI_cursor_open_with_args(NULL,
									   "SELECT chain, seq, hash FROM ioffice.audit_checkpoint_head "
									   " WHERE checkpoint_id = $1 ORDER BY chain COLLATE \"C\"",
									   1, types, args, NULL, true, CURSOR_OPT_NO_SCROLL);
	for (;;)
	{
		uint64		i;

		SPI_cursor_fetch(cursor, true, FETCH_BATCH * 10);
		if (SPI_processed == 0)
			break;
		for (i = 0; i < SPI_processed; i++, n++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			char	   *chain = SPI_getvalue(tup, desc, 1);
			bool		isnull;
			int64		seq = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
			bytea	   *h = DatumGetByteaPP(SPI_getbinval(tup, desc, 3, &isnull));
			uint8		hash[HASH_LEN];

			if (n == allocated)
			{
				allocated *= 2;
				leaves = repalloc_huge(leaves, sizeof(*leaves) * allocated);
			}
			memset(hash, 0, HASH_LEN);
			memcpy(hash, VARDATA_ANY(h), Min(VARSIZE_ANY_EXHDR(h), HASH_LEN));
			ioffice_merkle_leaf(chain, seq, hash, leaves[n]);
			if (strcmp(chain, rp->chain) == 0)
				index = n;
			pfree(chain);
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(cursor);
	if (index < 0)
		elog(ERROR, "ioffice: checkpoint " INT64_FORMAT " lost the head of chain %s",
			 rp->checkpoint, rp->chain);

	path_ranges(&ranges, index, 0, n);
	foreach(lc, ranges)
	{
		MthRange   *r = lfirst(lc);
		int64		j;

		for (j = r->start; j < r->end; j++)
			mth_push(r, leaves[j]);
		mth_finish(r);
	}
	appendStringInfo(buf, "\"tree_size\": " INT64_FORMAT ", \"leaf_index\": " INT64_FORMAT ", \"path\": ",
					 n, index);
	json_ranges(buf, ranges);
	pfree(leaves);
}

PG_FUNCTION_INFO_V1(ioffice_audit_proof_record);
Datum
ioffice_audit_proof_record(PG_FUNCTION_ARGS)
{
	RecordProof rp;
	StringInfoData buf;
	Datum		args[3];
	Oid			types[3] = {INT8OID, TEXTOID, INT8OID};
	Datum		result;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("audit_proof_record needs an audit record's id")));
	memset(&rp, 0, sizeof(rp));
	rp.id = PG_GETARG_INT64(0);

	/* (in the caller's memory: it outlives SPI_finish) */
	initStringInfo(&buf);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	find_record(&rp);
	find_sealing_head(&rp);
	check_steps_visible(&rp);

	appendStringInfoString(&buf, "{\"format\": \"ioffice-audit-inclusion-1\", \"record\": ");
	args[0] = Int64GetDatum(rp.id);
	json_row(&buf, "SELECT " RECORD_JSON " FROM ioffice.audit a WHERE a.id = $1", 1, types, args);

	/* the chain's later records, up to the sealed head, in order */
	appendStringInfoString(&buf, ", \"steps\": ");
	args[0] = Int64GetDatum(rp.seq);
	args[1] = CStringGetTextDatum(rp.chain);
	args[2] = Int64GetDatum(rp.head_seq);
	json_rows(&buf, "SELECT " RECORD_JSON " FROM ioffice.audit a "
			  " WHERE a.chain = $2 AND a.seq > $1 AND a.seq <= $3 ORDER BY a.seq",
			  3, types, args);

	appendStringInfoString(&buf, ", \"head\": {\"chain\": ");
	escape_json(&buf, rp.chain);
	appendStringInfo(&buf, ", \"seq\": " INT64_FORMAT ", \"hash\": ", rp.head_seq);
	json_hash(&buf, rp.head_hash);
	appendStringInfoString(&buf, "}, ");
	head_audit_path(&buf, &rp);

	appendStringInfoString(&buf, ", \"checkpoint\": ");
	args[0] = Int64GetDatum(rp.checkpoint);
	json_row(&buf, "SELECT " CHECKPOINT_JSON " FROM ioffice.audit_checkpoint c WHERE c.id = $1",
			 1, types, args);
	appendStringInfoChar(&buf, '}');

	SPI_finish();
	result = json_result(&buf);
	pfree(buf.data);
	PG_RETURN_DATUM(result);
}
