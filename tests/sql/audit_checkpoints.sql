-- The audit trail's checkpoints as a chain of their own (issue 16): numbered
-- 1, 2, 3... without gaps, each linked to the one before, signed once (the
-- worker's signature; here the column is filled by hand, as no key is at
-- hand), and compared against a witness's copies.  Checkpoint numbers are
-- masked as N in the problems shown.
SET client_min_messages = warning;
\set VERBOSITY terse
CREATE FUNCTION public.regress_cp_state(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN others THEN
    RETURN SQLSTATE;
END
$$;
CREATE FUNCTION public.regress_cp_problems() RETURNS TABLE (problem text) LANGUAGE sql AS $$
    SELECT regexp_replace(problem, '[0-9]+', 'N', 'g') FROM ioffice.audit_verify()
     WHERE problem ~ '^(checkpoint|[0-9]+ checkpoint)' ORDER BY 1
$$;
-- what the worker publishes for a checkpoint (workers/audit_jobs.c)
CREATE FUNCTION public.regress_cp_event(c ioffice.audit_checkpoint) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('id', gen_random_uuid(), 'event', 'audit.checkpoint',
        'data', jsonb_build_object('sequence', c.id,
            'at', to_char(c.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
            'chains', c.chains, 'records', c.records, 'root', encode(c.root, 'hex'),
            'previous', encode(c.prev_hash, 'hex'), 'hash', encode(c.hash, 'hex'),
            'signature', translate(encode(c.signature, 'base64'), E'\n', '')))
$$;

-- the problems of the earlier tests' tampering, to set apart from ours
CREATE TEMP TABLE regress_cp_before AS SELECT * FROM public.regress_cp_problems();

-- checkpoints follow each other without gaps, a rolled-back seal included
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('CV', 'Niêm phong một') IS NOT NULL AS created;
RESET ioffice.actor;
SELECT ioffice.audit_seal() AS cp_a \gset
BEGIN;
SET LOCAL ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('CV', 'Niêm phong bỏ') IS NOT NULL AS created;
SELECT ioffice.audit_seal() = :cp_a + 1 AS next_number;
ROLLBACK;
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('CV', 'Niêm phong hai') IS NOT NULL AS created;
RESET ioffice.actor;
SELECT ioffice.audit_seal() AS cp_b \gset
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('CV', 'Niêm phong ba') IS NOT NULL AS created;
RESET ioffice.actor;
SELECT ioffice.audit_seal() AS cp_c \gset
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('CV', 'Niêm phong bốn') IS NOT NULL AS created;
RESET ioffice.actor;
SELECT ioffice.audit_seal() AS cp_d \gset
SELECT :cp_b = :cp_a + 1 AS no_gap_after_rollback, :cp_c = :cp_b + 1 AND :cp_d = :cp_c + 1 AS consecutive;
SELECT count(*) AS gaps FROM (SELECT id, lag(id) OVER (ORDER BY id) AS before
                                FROM ioffice.audit_checkpoint) x
 WHERE id <> coalesce(before, 0) + 1;
-- new checkpoints wait unsigned for the worker; nothing new is reported
SELECT count(*) FILTER (WHERE signature IS NULL) = count(*) AS all_unsigned
  FROM ioffice.audit_checkpoint WHERE id >= :cp_a;
SELECT * FROM public.regress_cp_problems() EXCEPT ALL SELECT * FROM regress_cp_before;

-- a chain cut short is not sealed again (that would cover the removal)
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('CV', 'Niêm phong rồi cắt') AS cut \gset
RESET ioffice.actor;
UPDATE ioffice.document SET comment = 'Sẽ bị cắt' WHERE id = :cut;
SELECT ioffice.audit_seal() = :cp_d + 1 AS sealed;
SET session_replication_role = replica;
DELETE FROM ioffice.audit WHERE chain = 'document:' || :cut
   AND seq = (SELECT max(seq) FROM ioffice.audit WHERE chain = 'document:' || :cut);
RESET session_replication_role;
SELECT ioffice.audit_seal() = :cp_d + 1 AS nothing_sealed;
SELECT count(*) AS cut_chain_found FROM ioffice.audit_verify('document', :cut);
SELECT :cp_d + 1 AS cp_e \gset

-- the witness's copies, as received
SELECT jsonb_agg(public.regress_cp_event(c) ORDER BY c.id) AS copies
  FROM ioffice.audit_checkpoint c \gset
SELECT * FROM ioffice.audit_verify_witness(:'copies');
-- their data objects alone do as well
SELECT count(*) AS disagreements
  FROM ioffice.audit_verify_witness((SELECT jsonb_agg(e->'data') FROM jsonb_array_elements(:'copies') e));

-- a signature is added once, and nothing else changes
SELECT public.regress_cp_state(format('UPDATE ioffice.audit_checkpoint SET root = hash WHERE id = %s', :cp_b)) AS change_root;
SELECT public.regress_cp_state(format('UPDATE ioffice.audit_checkpoint SET signature = ''\x3000'', records = records + 1 WHERE id = %s', :cp_b)) AS sign_and_change;
SELECT public.regress_cp_state(format('DELETE FROM ioffice.audit_checkpoint WHERE id = %s', :cp_b)) AS remove;
SELECT public.regress_cp_state(format('UPDATE ioffice.audit_checkpoint SET signature = ''\x3000'' WHERE id = %s', :cp_d)) AS sign;
SELECT public.regress_cp_state(format('UPDATE ioffice.audit_checkpoint SET signature = ''\x3001'' WHERE id = %s', :cp_d)) AS sign_again;
SELECT public.regress_cp_state(format('UPDATE ioffice.audit_checkpoint SET signature = NULL WHERE id = %s', :cp_d)) AS unsign;
-- that signature is not one (and the checkpoints before it lost theirs)
SELECT * FROM public.regress_cp_problems() EXCEPT SELECT * FROM regress_cp_before ORDER BY 1;
SELECT count(*) FILTER (WHERE problem = format('checkpoint %s is not signed, but checkpoint %s after it is: its signature was removed', :cp_c, :cp_d)) AS c_unsigned_before_d,
       count(*) FILTER (WHERE problem = format('checkpoint %s has a signature that cannot be read', :cp_d)) AS d_unreadable
  FROM ioffice.audit_verify();
-- it differs from the witness's copy
SELECT sequence = :cp_d AS is_d, regexp_replace(problem, '[0-9]+', 'N', 'g') AS problem, first_divergence
  FROM ioffice.audit_verify_witness(:'copies');

-- a superuser with the triggers off: an altered checkpoint, a removed one
SET session_replication_role = replica;
UPDATE ioffice.audit_checkpoint SET signature = NULL WHERE id = :cp_d;
UPDATE ioffice.audit_checkpoint SET chains = chains + 1 WHERE id = :cp_b;
DELETE FROM ioffice.audit_checkpoint_head WHERE checkpoint_id = :cp_c;
DELETE FROM ioffice.audit_checkpoint WHERE id = :cp_c;
RESET session_replication_role;
SELECT count(*) FILTER (WHERE problem = format('checkpoint %s was altered', :cp_b)) AS b_altered,
       count(*) FILTER (WHERE problem = format('1 checkpoint(s) missing before checkpoint %s (after checkpoint %s): removed', :cp_d, :cp_b)) AS c_removed,
       count(*) FILTER (WHERE problem = format('checkpoint %s does not follow the previous checkpoint', :cp_d)) AS d_unlinked
  FROM ioffice.audit_verify();
-- the witness names the same ones, the altered one first
SELECT sequence = :cp_b AS is_b, sequence = :cp_c AS is_c,
       regexp_replace(problem, '[0-9]+', 'N', 'g') AS problem, first_divergence
  FROM ioffice.audit_verify_witness(:'copies');
-- the removed checkpoint comes back as it was, the altered one too
SET session_replication_role = replica;
UPDATE ioffice.audit_checkpoint SET chains = chains - 1 WHERE id = :cp_b;
INSERT INTO ioffice.audit_checkpoint (id, at, chains, records, root, prev_hash, hash)
SELECT (d->>'sequence')::bigint, (d->>'at')::timestamptz, (d->>'chains')::int, (d->>'records')::bigint,
       decode(d->>'root', 'hex'), decode(d->>'previous', 'hex'), decode(d->>'hash', 'hex')
  FROM jsonb_array_elements(:'copies') e, LATERAL (SELECT e->'data' AS d) x
 WHERE (d->>'sequence')::bigint = :cp_c;
RESET session_replication_role;
SELECT count(*) AS disagreements FROM ioffice.audit_verify_witness(:'copies');
-- (its heads were removed with it, and it lists none now)
SELECT * FROM public.regress_cp_problems() EXCEPT SELECT * FROM regress_cp_before ORDER BY 1;

-- what the witness gives must be an array of events with a sequence
SELECT public.regress_cp_state($$SELECT * FROM ioffice.audit_verify_witness('{}')$$) AS not_array;
SELECT public.regress_cp_state($$SELECT * FROM ioffice.audit_verify_witness('[{"data": {}}]')$$) AS no_sequence;
SELECT public.regress_cp_state($$SELECT * FROM ioffice.audit_verify_witness(NULL)$$) AS null_receipts;
-- a copy of a checkpoint this database never had
SELECT regexp_replace(problem, '[0-9]+', 'N', 'g') AS problem, first_divergence
  FROM ioffice.audit_verify_witness('[{"sequence": 999999}]');

-- only ioffice_admin (and superusers) compare with a witness
CREATE ROLE regress_cp_user;
SET SESSION AUTHORIZATION regress_cp_user;
SELECT public.regress_cp_state($$SELECT * FROM ioffice.audit_verify_witness('[]')$$) AS as_anyone;
RESET SESSION AUTHORIZATION;
DROP ROLE regress_cp_user;
SELECT p.proname, p.prosecdef, has_function_privilege('ioffice_admin', p.oid, 'EXECUTE') AS admin,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public,
       obj_description(p.oid, 'pg_proc') IS NOT NULL AS commented
  FROM pg_proc p WHERE p.pronamespace = 'ioffice'::regnamespace
   AND p.proname IN ('audit_seal', 'audit_verify', 'audit_verify_witness') ORDER BY 1;
-- the settings
SELECT current_setting('ioffice.audit_seal_interval') AS interval, current_setting('ioffice.audit_certificate') = '' AS no_certificate;
SELECT public.regress_cp_state($$SET ioffice.audit_certificate = 'abc'$$) AS set_in_session;

DROP FUNCTION public.regress_cp_state(text);
DROP FUNCTION public.regress_cp_problems();
DROP FUNCTION public.regress_cp_event(ioffice.audit_checkpoint);
