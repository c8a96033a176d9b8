-- Proofs of the audit trail (issue 16): audit_proof_record(id), an inclusion
-- proof of one record in a checkpoint, and audit_proof(from, to), that one
-- checkpoint extends another.  Errors, who may have which proof, and the
-- proofs' shape; the hashes are recomputed by an independent verifier in TAP
-- test 029.  The tests before tampered with the trail; only this file's
-- documents and checkpoints are looked at.
SET client_min_messages = warning;
\set VERBOSITY terse
-- an error as its SQLSTATE and its message, numbers masked
CREATE FUNCTION public.regress_proofs_error(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN others THEN
    RETURN SQLSTATE || ': ' || regexp_replace(SQLERRM, '[0-9]+', 'N', 'g');
END
$$;
CREATE ROLE regress_proofs_app IN ROLE ioffice_app;
CREATE ROLE regress_proofs_dba IN ROLE ioffice_admin;
SELECT ioffice.add_person('regress_proofs_admin', 'Quản trị', NULL,
       (SELECT id FROM ioffice.unit WHERE code = '000.00.32.H41'), '{admin}') IS NOT NULL AS admin_added;
SELECT ioffice.audit_seal() IS NOT NULL AS sealed_before;

-- a document whose first record is sealed alone in its checkpoint's tree
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('CV', 'Bằng chứng kiểm toán') AS d1 \gset
RESET ioffice.actor;
SELECT id AS r1 FROM ioffice.audit WHERE chain = 'document:' || :d1 AND seq = 1 \gset
SELECT ioffice.audit_seal() AS cp1 \gset
SELECT chains = 1 AS only_that_chain FROM ioffice.audit_checkpoint WHERE id = :cp1;

-- its proof: the record, no steps, a tree of one leaf (the root is the leaf)
SELECT ioffice.audit_proof_record(:r1) AS p1 \gset
SELECT p ?& '{format,record,steps,head,tree_size,leaf_index,path,checkpoint}' AS has_every_part,
       (p->'record'->>'id')::bigint = :r1 AS its_record,
       p->'record'->>'chain' = 'document:' || :d1 AS its_chain,
       p->'record' ?& '{seq,previous,hash,at,actor_id,on_behalf_of,db_role,entity,entity_id,action,state_before,state_after,detail}' AS every_hashed_field,
       jsonb_array_length(p->'steps') = 0 AS no_steps,
       p->'head'->>'hash' = p->'record'->>'hash' AS head_is_the_record,
       (p->>'tree_size')::int = 1 AND (p->>'leaf_index')::int = 0 AND jsonb_array_length(p->'path') = 0 AS one_leaf,
       (p->'checkpoint'->>'sequence')::bigint = :cp1 AS first_checkpoint_covering_it,
       p->'checkpoint'->>'root' = encode(sha256('\x00'::bytea
           || convert_to(length('document:' || :d1) || ':document:' || :d1 || ';1;', 'UTF8')
           || decode(p->'record'->>'hash', 'hex')), 'hex') AS root_is_the_leaf,
       p->'checkpoint' ?& '{at,chains,records,root,previous,hash,signature}' AS checkpoint_as_published
  FROM (SELECT :'p1'::jsonb AS p) x;

-- more records, a few other chains, and a second checkpoint
SET ioffice.actor = 'regress_luan';
SELECT ioffice.attach(:d1, 'a.pdf', content) IS NOT NULL AS attached FROM pdf;
SELECT ioffice.create_outgoing('CV', 'Bằng chứng thứ hai') AS d2 \gset
SELECT ioffice.attach(:d2, 'b.pdf', content) IS NOT NULL AS attached FROM pdf;
SELECT ioffice.create_outgoing('CV', 'Bằng chứng thứ ba') AS d3 \gset
RESET ioffice.actor;
SELECT ioffice.audit_seal() AS cp2 \gset
SELECT id AS r2 FROM ioffice.audit WHERE chain = 'document:' || :d2 AND seq = 1 \gset

-- the first record of d1 is still proven by the first checkpoint
SELECT (ioffice.audit_proof_record(:r1)->'checkpoint'->>'sequence')::bigint = :cp1 AS still_first;
-- d2's first record: one step (the file attached), up to the head sealed
SELECT jsonb_array_length(p->'steps') = 1 AS one_step,
       p->'steps'->0->>'previous' = p->'record'->>'hash' AS step_links_to_record,
       p->'steps'->0->>'entity' = 'file' AS step_is_the_file,
       p->'head'->>'hash' = p->'steps'->0->>'hash' AS head_is_last_step,
       (p->'head'->>'seq')::int = 2 AS head_position,
       (p->>'tree_size')::int = (p->'checkpoint'->>'chains')::int AS tree_is_the_checkpoints,
       (p->>'leaf_index')::int < (p->>'tree_size')::int AS index_in_tree,
       jsonb_array_length(p->'path') BETWEEN floor(log(2, (p->>'tree_size')::numeric))
                                         AND ceil(log(2, (p->>'tree_size')::numeric)) AS path_length_log2,
       p->'checkpoint'->>'hash' = (SELECT encode(hash, 'hex') FROM ioffice.audit_checkpoint WHERE id = :cp2) AS checkpoint_hash,
       p->'checkpoint'->>'previous' = (SELECT encode(hash, 'hex') FROM ioffice.audit_checkpoint WHERE id = :cp1) AS links_to_previous
  FROM (SELECT ioffice.audit_proof_record(:r2) AS p) x;

-- errors
SELECT public.regress_proofs_error('SELECT ioffice.audit_proof_record(NULL)') AS null_id;
SELECT max(id) + 1000000 AS nope FROM ioffice.audit \gset
SELECT public.regress_proofs_error('SELECT ioffice.audit_proof_record(' || :nope || ')') AS unknown_id;
SET ioffice.actor = 'regress_luan';
SELECT ioffice.attach(:d3, 'c.pdf', content) IS NOT NULL AS attached FROM pdf;
RESET ioffice.actor;
SELECT max(id) AS r_new FROM ioffice.audit WHERE chain = 'document:' || :d3 \gset
SELECT public.regress_proofs_error('SELECT ioffice.audit_proof_record(' || :r_new || ')') AS not_sealed_yet;
SET ioffice.audit_chaining = off;
SELECT ioffice._audit('regress_proofs', 1, 'note', NULL, NULL, NULL);
RESET ioffice.audit_chaining;
SELECT public.regress_proofs_error('SELECT ioffice.audit_proof_record(' || max(id) || ')') AS unchained
  FROM ioffice.audit WHERE entity = 'regress_proofs';

-- who may have which proof: a person, the records the audit shows them
SELECT min(id) AS r_person FROM ioffice.audit
 WHERE chain = 'person:' || (SELECT id FROM ioffice.person WHERE login = 'regress_proofs_admin') \gset
SET ROLE regress_proofs_app;
SET ioffice.actor = 'regress_luan';
-- the drafter sees d1's first record, and its proof shows only that record
SELECT (ioffice.audit_proof_record(:r1)->'record'->>'id')::bigint = :r1 AS drafter_gets_own;
-- d2's proof would show its file's record, which the audit shows admins only
SELECT public.regress_proofs_error('SELECT ioffice.audit_proof_record(' || :r2 || ')') AS hidden_step;
-- someone who does not see the document: unknown, as an id that does not
-- exist -- whether the record is sealed or not
SET ioffice.actor = 'regress_tuan';
SELECT public.regress_proofs_error('SELECT ioffice.audit_proof_record(' || :r1 || ')') AS outsider;
SELECT public.regress_proofs_error('SELECT ioffice.audit_proof_record(' || :r1 || ')')
     = public.regress_proofs_error('SELECT ioffice.audit_proof_record(' || :nope || ')') AS sealed_hidden_as_unknown;
SELECT public.regress_proofs_error('SELECT ioffice.audit_proof_record(' || :r2 || ')')
     = public.regress_proofs_error('SELECT ioffice.audit_proof_record(' || :nope || ')') AS hidden_step_not_told;
SELECT public.regress_proofs_error('SELECT ioffice.audit_proof_record(' || :r_new || ')')
     = public.regress_proofs_error('SELECT ioffice.audit_proof_record(' || :nope || ')') AS unsealed_hidden_as_unknown;
-- a record of a person's chain: admins only
SELECT public.regress_proofs_error('SELECT ioffice.audit_proof_record(' || :r_person || ')')
     = public.regress_proofs_error('SELECT ioffice.audit_proof_record(' || :nope || ')') AS person_chain_hidden;
-- an admin gets any
SET ioffice.actor = 'regress_proofs_admin';
SELECT jsonb_array_length(ioffice.audit_proof_record(:r2)->'steps') = 1 AS admin_gets_all;
-- no person at all: nothing
RESET ioffice.actor;
SELECT public.regress_proofs_error('SELECT ioffice.audit_proof_record(' || :r1 || ')') AS nobody;
-- the consistency proofs are the DBAs', as audit_verify()
SELECT public.regress_proofs_error('SELECT ioffice.audit_proof(' || :cp1 || ', ' || :cp2 || ')') AS app_may_not;
RESET ROLE;
SET ROLE regress_proofs_dba;
SELECT (ioffice.audit_proof(:cp1, :cp2)->>'to')::bigint = :cp2 AS dba_may;
RESET ROLE;

-- audit_proof: shape and errors
SELECT ioffice.audit_seal() AS cp3 \gset
SELECT p->>'format' = 'ioffice-audit-consistency-1' AS format,
       jsonb_array_length(p->'checkpoints') = 3 AS three_checkpoints,
       (SELECT bool_and((c.e->>'previous') = (b.e->>'hash'))
          FROM jsonb_array_elements(p->'checkpoints') WITH ORDINALITY c(e, i)
          JOIN jsonb_array_elements(p->'checkpoints') WITH ORDINALITY b(e, i) ON b.i = c.i - 1) AS each_links_to_the_one_before,
       (p->'checkpoints'->0->>'sequence')::bigint = :cp1 AND (p->'checkpoints'->2->>'sequence')::bigint = :cp3 AS from_to,
       (p->'merkle'->>'size_to')::bigint - (p->'merkle'->>'size_from')::bigint = 2 AS sizes,
       (p->'merkle'->>'size_to')::bigint = (SELECT count(*) FROM ioffice.audit_checkpoint WHERE id <= :cp3) AS size_counts_checkpoints,
       jsonb_array_length(p->'merkle'->'consistency') > 0 AS has_consistency,
       jsonb_array_length(p->'merkle'->'inclusion_to') > 0 AS has_inclusion,
       NOT p->'checkpoints'->0 ? 'signature' AND p->'checkpoints'->2 ? 'signature' AS signature_of_to_only
  FROM (SELECT ioffice.audit_proof(:cp1, :cp3) AS p) x;
SELECT jsonb_array_length(p->'checkpoints') = 1 AS one,
       p->'merkle'->'consistency' = '[]' AS no_consistency_needed,
       p->'merkle'->>'root_from' = p->'merkle'->>'root_to' AS same_root
  FROM (SELECT ioffice.audit_proof(:cp2, :cp2) AS p) x;
SELECT public.regress_proofs_error('SELECT ioffice.audit_proof(NULL, 1)') AS null_from;
SELECT public.regress_proofs_error('SELECT ioffice.audit_proof(0, 1)') AS zero_from;
SELECT public.regress_proofs_error('SELECT ioffice.audit_proof(' || :cp2 || ', ' || :cp1 || ')') AS backwards;
SELECT public.regress_proofs_error('SELECT ioffice.audit_proof(' || :cp1 || ', ' || (:cp3 + 1000) || ')') AS unknown_to;
-- the record newly sealed is proven now
SELECT (ioffice.audit_proof_record(:r_new)->'checkpoint'->>'sequence')::bigint = :cp3 AS sealed_now;

SELECT p.proname, p.prosecdef, p.provolatile, has_function_privilege('ioffice_admin', p.oid, 'EXECUTE') AS admin,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public,
       obj_description(p.oid, 'pg_proc') IS NOT NULL AS commented
  FROM pg_proc p WHERE p.pronamespace = 'ioffice'::regnamespace
   AND p.proname IN ('audit_proof', 'audit_proof_record') ORDER BY 1;

DROP ROLE regress_proofs_app, regress_proofs_dba;
DROP FUNCTION public.regress_proofs_error(text);
