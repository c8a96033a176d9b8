-- A seal reads only the records new since the last checkpoint (issue 16):
-- each checkpoint keeps its horizon (every record with a lower id that will
-- ever commit was visible to it) and the pair the next seal settles it with.
-- The concurrent cases are in the isolation spec audit_seal_late_commit;
-- here, one session: rolled-back records, records written by hand with the
-- triggers off, a chain whose sealed head was cut, a cached sequence, and
-- the columns' protection.  Only this file's chains (regress_inc:...) are
-- looked at: the tests before it tampered with others.
SET client_min_messages = warning;
\set VERBOSITY terse
CREATE FUNCTION public.regress_inc_state(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN others THEN
    RETURN SQLSTATE;
END
$$;
-- is the chain's newest record its last sealed head?
CREATE FUNCTION public.regress_inc_sealed(c text) RETURNS boolean LANGUAGE sql AS $$
    SELECT (SELECT hash FROM ioffice.audit WHERE chain = c ORDER BY seq DESC LIMIT 1)
           IS NOT DISTINCT FROM
           (SELECT hash FROM ioffice.audit_checkpoint_head WHERE chain = c
             ORDER BY checkpoint_id DESC LIMIT 1)
$$;
CREATE FUNCTION public.regress_inc_note(k int, c text) RETURNS void LANGUAGE sql AS $$
    SELECT ioffice._audit('regress_inc', k, 'note', NULL, NULL, NULL, NULL, c)
$$;
CREATE VIEW public.regress_inc_last AS
    SELECT * FROM ioffice.audit_checkpoint ORDER BY id DESC LIMIT 1;

SELECT public.regress_inc_note(1, 'regress_inc:a');
SELECT ioffice.audit_seal() IS NOT NULL AS sealed;
-- nothing else runs: the horizon is past every id handed out, and the pair
-- is the sequence's last value and a transaction id
SELECT horizon > (SELECT max(id) FROM ioffice.audit) AS horizon_past_all,
       pending_id = horizon - 1 AS pair_is_the_horizon, pending_xid IS NOT NULL AS has_xid,
       public.regress_inc_sealed('regress_inc:a') AS a_sealed
  FROM public.regress_inc_last;

-- a rolled-back record leaves an id unused; the horizon does not wait for it
BEGIN;
SELECT public.regress_inc_note(2, 'regress_inc:rolled_back');
SELECT max(id) AS rolled_back_id FROM ioffice.audit \gset
ROLLBACK;
SELECT public.regress_inc_note(1, 'regress_inc:a');
SELECT ioffice.audit_seal() IS NOT NULL AS sealed;
SELECT horizon > :rolled_back_id AS past_rolled_back, chains = 1 AS one_chain, records = 1 AS one_record,
       public.regress_inc_sealed('regress_inc:a') AS a_sealed
  FROM public.regress_inc_last;
SELECT count(*) AS rolled_back_chain_sealed FROM ioffice.audit_checkpoint_head
 WHERE chain = 'regress_inc:rolled_back';

-- nothing moved: no checkpoint, and a record of the sealer's own transaction
-- (in a REPEATABLE READ one) is sealed with the rest
SELECT id AS cp_before FROM public.regress_inc_last \gset
SELECT ioffice.audit_seal() = :cp_before AS nothing_moved;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT public.regress_inc_note(3, 'regress_inc:own');
SELECT ioffice.audit_seal() = :cp_before + 1 AS sealed_next;
COMMIT;
-- (its snapshot is older than its own transaction id: the horizon waits)
SELECT public.regress_inc_sealed('regress_inc:own') AS own_sealed,
       horizon > :rolled_back_id AS horizon_kept
  FROM public.regress_inc_last;

-- records a superuser inserts by hand with the triggers off take their ids
-- from the column's default, and the next seal reads them
SET session_replication_role = replica;
INSERT INTO ioffice.audit (entity, entity_id, action, chain, seq, hash)
VALUES ('regress_inc', 4, 'by_hand', 'regress_inc:by_hand', 1, sha256('x'));
RESET session_replication_role;
SELECT ioffice.audit_seal() IS NOT NULL AS sealed;
SELECT public.regress_inc_sealed('regress_inc:by_hand') AS by_hand_sealed;

-- a chain whose sealed head was cut is not sealed over when it moves on:
-- the next records of chain b come after the cut, and the seal keeps its
-- old head, which audit_verify() reports
SELECT public.regress_inc_note(5, 'regress_inc:b');
SELECT public.regress_inc_note(5, 'regress_inc:b');
SELECT ioffice.audit_seal() IS NOT NULL AS sealed;
SET session_replication_role = replica;
DELETE FROM ioffice.audit WHERE chain = 'regress_inc:b' AND seq = 2;
RESET session_replication_role;
SELECT public.regress_inc_note(5, 'regress_inc:b');
SELECT public.regress_inc_note(5, 'regress_inc:b');
SELECT public.regress_inc_note(1, 'regress_inc:a');
SELECT ioffice.audit_seal() IS NOT NULL AS sealed;
SELECT public.regress_inc_sealed('regress_inc:a') AS a_sealed,
       public.regress_inc_sealed('regress_inc:b') AS b_sealed_over,
       (SELECT max(seq) FROM ioffice.audit_checkpoint_head WHERE chain = 'regress_inc:b') AS b_sealed_at;
SELECT regexp_replace(problem, 'checkpoint [0-9]+', 'checkpoint N') AS problem
  FROM ioffice.audit_verify('regress_inc', 5);

-- a sequence that caches values may hand out a lower id at any time: the
-- horizon stays where it was, and nothing is missed
SELECT horizon AS horizon_before FROM public.regress_inc_last \gset
ALTER SEQUENCE ioffice.audit_id_seq CACHE 10;
SELECT public.regress_inc_note(1, 'regress_inc:a');
SELECT ioffice.audit_seal() IS NOT NULL AS sealed;
SELECT horizon = :horizon_before AS horizon_kept, pending_id IS NULL AS no_pair,
       public.regress_inc_sealed('regress_inc:a') AS a_sealed
  FROM public.regress_inc_last;
ALTER SEQUENCE ioffice.audit_id_seq CACHE 1;
SELECT public.regress_inc_note(1, 'regress_inc:a');
SELECT ioffice.audit_seal() IS NOT NULL AS sealed;
SELECT horizon > (SELECT max(id) FROM ioffice.audit) AS horizon_past_all, pending_id IS NOT NULL AS has_pair
  FROM public.regress_inc_last;

-- the new columns are as append-only as the others
SELECT id AS cp_last FROM public.regress_inc_last \gset
SELECT public.regress_inc_state(format('UPDATE ioffice.audit_checkpoint SET horizon = horizon + 1 WHERE id = %s', :cp_last)) AS move_horizon;
SELECT public.regress_inc_state(format('UPDATE ioffice.audit_checkpoint SET signature = ''\x3000'', pending_id = 0 WHERE id = %s', :cp_last)) AS sign_and_change;
-- a chain head belongs to a checkpoint (checked once per statement)
SELECT public.regress_inc_state(format($q$INSERT INTO ioffice.audit_checkpoint_head (checkpoint_id, chain, seq, hash)
    VALUES (%s, 'regress_inc:a', 1, '\x00')$q$, :cp_last + 1)) AS head_of_no_checkpoint;
SELECT public.regress_inc_state(format($q$INSERT INTO ioffice.audit_checkpoint_head (checkpoint_id, chain, seq, hash)
    SELECT %s, 'regress_inc:x' || k, 1, '\x00'::bytea FROM generate_series(1, 3) k
    UNION ALL SELECT %s, 'regress_inc:y', 1, '\x00'$q$, :cp_last, :cp_last + 1)) AS one_of_many;
SELECT count(*) AS heads_written FROM ioffice.audit_checkpoint_head WHERE chain ~ '^regress_inc:[xy]';
-- the ids' default: nobody but the owner calls it
SELECT has_function_privilege('public', 'ioffice._audit_next_id()', 'EXECUTE') AS public_may_call,
       pg_get_expr(d.adbin, d.adrelid) AS id_default
  FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
 WHERE d.adrelid = 'ioffice.audit'::regclass AND a.attname = 'id';

DROP VIEW public.regress_inc_last;
DROP FUNCTION public.regress_inc_state(text);
DROP FUNCTION public.regress_inc_sealed(text);
DROP FUNCTION public.regress_inc_note(int, text);
