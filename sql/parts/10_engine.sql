-- ---------------------------------------------------------------------------
-- C functions: identity, audit, files, workflow
-- ---------------------------------------------------------------------------

CREATE FUNCTION actor() RETURNS bigint
    AS 'MODULE_PATHNAME', 'ioffice_actor'
    LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION actor() IS 'The person acting in this transaction (ioffice.actor for ioffice_app members, else session_user)';

-- Like actor(), but NULL instead of an error: for row-level security, where
-- "nobody" must simply see nothing.
CREATE FUNCTION current_person() RETURNS bigint
    AS 'MODULE_PATHNAME', 'ioffice_current_person'
    LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION _audit(entity text, entity_id bigint, action text,
                       state_before text, state_after text, detail jsonb,
                       on_behalf_of bigint DEFAULT NULL, chain text DEFAULT NULL)
    RETURNS void
    AS 'MODULE_PATHNAME', 'ioffice_audit_sql'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION _audit(text, bigint, text, text, text, jsonb, bigint, text) FROM PUBLIC;

-- audit.id's default: nextval() once the transaction has its transaction id
-- (extension/audit.c), which the seal's horizon relies on
CREATE FUNCTION _audit_next_id() RETURNS bigint
    AS 'MODULE_PATHNAME', 'ioffice_audit_next_id' LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION _audit_next_id() FROM PUBLIC;
ALTER TABLE audit ALTER COLUMN id SET DEFAULT _audit_next_id();

-- the extension's own plpgsql functions mark the changes they make, so the
-- triggers that catch changes made by hand leave them alone
CREATE FUNCTION _engine_enter() RETURNS void
    AS 'MODULE_PATHNAME', 'ioffice_engine_enter_sql' LANGUAGE C VOLATILE;
CREATE FUNCTION _engine_leave() RETURNS void
    AS 'MODULE_PATHNAME', 'ioffice_engine_leave_sql' LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION _engine_enter() FROM PUBLIC;
REVOKE ALL ON FUNCTION _engine_leave() FROM PUBLIC;
-- the WHEN clause of the triggers below (extension/engine_scope.c); it only
-- says whether an engine function is writing, and every role that may change
-- an audited table must be able to call it
CREATE FUNCTION _outside_engine() RETURNS boolean
    AS 'MODULE_PATHNAME', 'ioffice_outside_engine_sql' LANGUAGE C VOLATILE PARALLEL RESTRICTED;
GRANT EXECUTE ON FUNCTION _outside_engine() TO PUBLIC;

CREATE FUNCTION audit_verify(entity text DEFAULT NULL, entity_id bigint DEFAULT NULL)
    RETURNS TABLE (audit_id bigint, problem text)
    AS 'MODULE_PATHNAME', 'ioffice_audit_verify'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION audit_verify(text, bigint) IS
  'Every problem found in the audit trail (all of it, or the chains of one entity); no rows means intact';
CREATE FUNCTION audit_seal() RETURNS bigint
    AS 'MODULE_PATHNAME', 'ioffice_audit_seal'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION audit_seal() IS
  'Writes a checkpoint of the audit chain heads that moved since the last one (the worker signs and publishes it); returns its id';
REVOKE ALL ON FUNCTION audit_verify(text, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION audit_seal() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_verify(text, bigint) TO ioffice_admin;
GRANT EXECUTE ON FUNCTION audit_seal() TO ioffice_admin;

-- The witnesses' copies of the checkpoints (audit.checkpoint events, as
-- received: the whole request body, or its data) against the checkpoints
-- here: one row per copy that disagrees, the lowest sequence marked as the
-- first divergence.  A checkpoint the witness lacks is no disagreement (it
-- may not have been delivered yet).
CREATE FUNCTION audit_verify_witness(receipts jsonb)
    RETURNS TABLE (sequence bigint, problem text, first_divergence boolean)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF receipts IS NULL OR jsonb_typeof(receipts) <> 'array' THEN
        RAISE EXCEPTION 'audit_verify_witness needs a JSON array of audit.checkpoint events'
            USING ERRCODE = '22023';
    END IF;
    IF EXISTS (SELECT 1 FROM jsonb_array_elements(receipts) e
                WHERE jsonb_typeof(e) <> 'object'
                   OR jsonb_typeof(CASE WHEN e ? 'data' THEN e->'data' ELSE e END->'sequence')
                      IS DISTINCT FROM 'number') THEN
        RAISE EXCEPTION 'every element of the receipts must be an audit.checkpoint event with a sequence'
            USING ERRCODE = '22023',
                  HINT = 'Give the events as the witness received them, or their "data" objects.';
    END IF;
    RETURN QUERY
    WITH w AS (
        SELECT (d->>'sequence')::numeric AS seq, d
          FROM jsonb_array_elements(receipts) e,
               LATERAL (SELECT CASE WHEN e ? 'data' THEN e->'data' ELSE e END AS d) x),
    diff AS (
        SELECT w.seq,
               CASE WHEN c.id IS NULL THEN
                        format('checkpoint %s, which the witness holds, is missing here', w.seq)
                    ELSE format('checkpoint %s differs from the witness''s copy: %s', w.seq,
                                concat_ws(', ',
                                    CASE WHEN encode(c.root, 'hex') IS DISTINCT FROM w.d->>'root' THEN 'root' END,
                                    CASE WHEN encode(c.prev_hash, 'hex') IS DISTINCT FROM w.d->>'previous' THEN 'previous' END,
                                    CASE WHEN encode(c.hash, 'hex') IS DISTINCT FROM w.d->>'hash' THEN 'hash' END,
                                    CASE WHEN to_char(c.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
                                              IS DISTINCT FROM w.d->>'at' THEN 'time' END,
                                    CASE WHEN c.chains::text IS DISTINCT FROM w.d->>'chains'
                                           OR c.records::text IS DISTINCT FROM w.d->>'records' THEN 'counts' END,
                                    CASE WHEN translate(encode(c.signature, 'base64'), E'\n', '')
                                              IS DISTINCT FROM w.d->>'signature' THEN 'signature' END))
               END AS problem
          FROM w LEFT JOIN ioffice.audit_checkpoint c ON c.id = w.seq
         WHERE c.id IS NULL
            OR encode(c.root, 'hex') IS DISTINCT FROM w.d->>'root'
            OR encode(c.prev_hash, 'hex') IS DISTINCT FROM w.d->>'previous'
            OR encode(c.hash, 'hex') IS DISTINCT FROM w.d->>'hash'
            OR to_char(c.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') IS DISTINCT FROM w.d->>'at'
            OR c.chains::text IS DISTINCT FROM w.d->>'chains'
            OR c.records::text IS DISTINCT FROM w.d->>'records'
            OR translate(encode(c.signature, 'base64'), E'\n', '') IS DISTINCT FROM w.d->>'signature')
    SELECT DISTINCT diff.seq::bigint, diff.problem, diff.seq = min(diff.seq) OVER ()
      FROM diff
     ORDER BY 1, 2;
END
$$;
COMMENT ON FUNCTION audit_verify_witness(jsonb) IS
  'The checkpoints that disagree with a witness''s copies (audit.checkpoint events it received): missing here, or a different root, link, hash, time, counts or signature; the first divergence marked';
REVOKE ALL ON FUNCTION audit_verify_witness(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_verify_witness(jsonb) TO ioffice_admin;

-- Proofs for witnesses, citizens and courts (extension/audit_proof.c).  What
-- a checkpoint commits to: the heads (chain, seq, hash) of the chains that
-- moved since the previous checkpoint, through the root of a Merkle tree
-- over them, and the previous checkpoint's hash.  audit_proof() gives the
-- checkpoints from..to with every field their hashes cover (a verifier
-- holding checkpoint from recomputes each link up to checkpoint to), and an
-- RFC 6962 consistency proof in the tree whose leaves are the checkpoint
-- hashes; audit_proof_record() the record, the later records of its chain up
-- to the head the first checkpoint covering it sealed, that head's audit
-- path to the checkpoint's root, and the checkpoint.  Neither changes
-- anything.  A proof is checked outside the database: the byte encodings are
-- in the comments below.
CREATE FUNCTION audit_proof(from_seq bigint, to_seq bigint) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'ioffice_audit_proof'
    LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION audit_proof(bigint, bigint) IS
  'That checkpoint to_seq extends checkpoint from_seq: "checkpoints", from..to as the witnesses receive them (sequence, at, chains, records, root, previous, hash; the signature on to_seq only), each hash = SHA-256("ioffice-checkpoint-1;" sequence ";" at ";" chains ";" records ";" | root | previous), at in microseconds since 2000-01-01 UTC, root and previous as 32 raw bytes (previous absent for the first); and "merkle", an RFC 6962 2.1.2 consistency proof between the trees of sizes size_from and size_to whose leaves are SHA-256(0x00 | checkpoint hash) in order, nodes SHA-256(0x01 | left | right), with inclusion_to, the audit path of checkpoint to_seq''s leaf (the last)';
CREATE FUNCTION audit_proof_record(id bigint) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'ioffice_audit_proof_record'
    LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION audit_proof_record(bigint) IS
  'That an audit record is sealed by a checkpoint: "record" and "steps" (the later records of its chain up to "head"), each hash = SHA-256("ioffice-audit-1;" F(chain) F(seq) F(previous) F(at) F(actor_id) F(on_behalf_of) F(db_role) F(entity) F(entity_id) F(action) F(state_before) F(state_after) F(detail)), F(x) = byte length ":" x ";", F(NULL) = "-;", previous as 32 raw bytes, at in microseconds since 2000-01-01 UTC; the head''s leaf SHA-256(0x00 | byte length of chain ":" chain ";" seq ";" | hash); "path", its RFC 6962 2.1.1 audit path (leaf_index, tree_size) to the root of "checkpoint", nodes SHA-256(0x01 | left | right).  Only records the caller may see; 55000 when no checkpoint seals it yet';
REVOKE ALL ON FUNCTION audit_proof(bigint, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_proof(bigint, bigint) TO ioffice_admin;
-- a person gets the proofs of the records the audit's row-level security
-- shows them (the function asks as them)
GRANT EXECUTE ON FUNCTION audit_proof_record(bigint) TO PUBLIC;

-- append-only, for everyone, the owner included
CREATE FUNCTION _audit_append_only() RETURNS trigger
    AS 'MODULE_PATHNAME', 'ioffice_audit_append_only' LANGUAGE C;
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION _audit_append_only();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_append_only();
-- a checkpoint gets its signature once, later (the worker has the key): an
-- UPDATE that only fills a missing signature is the one change allowed
CREATE TRIGGER append_only BEFORE DELETE ON audit_checkpoint
    FOR EACH ROW EXECUTE FUNCTION _audit_append_only();
CREATE TRIGGER append_only_but_signing BEFORE UPDATE ON audit_checkpoint
    FOR EACH ROW WHEN (OLD.signature IS NOT NULL OR NEW.signature IS NULL
                       OR (NEW.id, NEW.at, NEW.chains, NEW.records, NEW.root, NEW.prev_hash, NEW.hash,
                           NEW.horizon, NEW.pending_id, NEW.pending_xid)
                          IS DISTINCT FROM
                          (OLD.id, OLD.at, OLD.chains, OLD.records, OLD.root, OLD.prev_hash, OLD.hash,
                           OLD.horizon, OLD.pending_id, OLD.pending_xid))
    EXECUTE FUNCTION _audit_append_only();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON audit_checkpoint
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_append_only();
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON audit_checkpoint_head
    FOR EACH ROW EXECUTE FUNCTION _audit_append_only();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON audit_checkpoint_head
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_append_only();
-- every chain head belongs to a checkpoint, checked once per statement
-- (triggers/audit_triggers.c): a foreign key checked it row by row, which
-- cost a seal of many chains more than the rest of the insert
CREATE FUNCTION _audit_heads_checkpointed() RETURNS trigger
    AS 'MODULE_PATHNAME', 'ioffice_audit_heads_checkpointed' LANGUAGE C;
CREATE TRIGGER heads_checkpointed AFTER INSERT ON audit_checkpoint_head
    REFERENCING NEW TABLE AS new_heads
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_heads_checkpointed();

-- changes made by hand to the core tables are audited as such
CREATE FUNCTION _audit_direct() RETURNS trigger
    AS 'MODULE_PATHNAME', 'ioffice_audit_direct' LANGUAGE C
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
CREATE TRIGGER audit_direct AFTER INSERT OR UPDATE OR DELETE ON document
    FOR EACH ROW WHEN (_outside_engine()) EXECUTE FUNCTION _audit_direct('id');
CREATE TRIGGER audit_direct AFTER INSERT OR UPDATE OR DELETE ON file
    FOR EACH ROW WHEN (_outside_engine()) EXECUTE FUNCTION _audit_direct('document_id');
CREATE TRIGGER audit_direct AFTER INSERT OR UPDATE OR DELETE ON task
    FOR EACH ROW WHEN (_outside_engine()) EXECUTE FUNCTION _audit_direct('document_id');
CREATE TRIGGER audit_direct AFTER INSERT OR UPDATE OR DELETE ON signature
    FOR EACH ROW WHEN (_outside_engine()) EXECUTE FUNCTION _audit_direct('document_id');
CREATE TRIGGER audit_direct_truncate AFTER TRUNCATE ON signature
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct AFTER INSERT OR UPDATE OR DELETE ON document_link
    FOR EACH ROW WHEN (_outside_engine()) EXECUTE FUNCTION _audit_direct('document_id');
CREATE TRIGGER audit_direct_truncate AFTER TRUNCATE ON document_link
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct AFTER INSERT OR UPDATE OR DELETE ON register
    FOR EACH ROW WHEN (_outside_engine()) EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct AFTER INSERT OR UPDATE OR DELETE ON number_taken
    FOR EACH ROW WHEN (_outside_engine()) EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct_truncate AFTER TRUNCATE ON number_taken
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct AFTER INSERT OR UPDATE OR DELETE ON unit
    FOR EACH ROW WHEN (_outside_engine()) EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct_truncate AFTER TRUNCATE ON unit
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct AFTER INSERT OR UPDATE OR DELETE ON person
    FOR EACH ROW WHEN (_outside_engine()) EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct_truncate AFTER TRUNCATE ON person
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct AFTER INSERT OR UPDATE OR DELETE ON person_role
    FOR EACH ROW WHEN (_outside_engine()) EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct_truncate AFTER TRUNCATE ON person_role
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct AFTER INSERT OR UPDATE OR DELETE ON delegation
    FOR EACH ROW WHEN (_outside_engine()) EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct_truncate AFTER TRUNCATE ON delegation
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct_truncate AFTER TRUNCATE ON document
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct_truncate AFTER TRUNCATE ON file
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct_truncate AFTER TRUNCATE ON task
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct_truncate AFTER TRUNCATE ON register
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_direct();

CREATE FUNCTION timezone() RETURNS text
    AS 'MODULE_PATHNAME', 'ioffice_timezone'
    LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION timezone() IS 'The time zone of calendar dates and years (setting ioffice.timezone)';

CREATE FUNCTION file_kind(content bytea) RETURNS text
    AS 'MODULE_PATHNAME', 'ioffice_file_kind'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION file_kind(bytea) IS 'The type of a file recognised from its bytes: pdf, docx, xlsx, doc, xls, zip, ole2 or NULL';

CREATE FUNCTION attach(doc bigint, file_name text, content bytea) RETURNS bigint
    AS 'MODULE_PATHNAME', 'ioffice_attach'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION replace_file(file bigint, file_name text, content bytea) RETURNS bigint
    AS 'MODULE_PATHNAME', 'ioffice_replace_file'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION remove_file(file bigint) RETURNS void
    AS 'MODULE_PATHNAME', 'ioffice_remove_file'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- Whoever writes a file row, the engine or a role with the privilege: no
-- change in a final state or one that freezes the files (workflow_state.
-- files_frozen: approved, they are what gets sealed and issued), and a file's
-- bytes never change (extension/files.c).  SECURITY DEFINER: it reads the
-- document past row-level security.
CREATE FUNCTION _file_frozen() RETURNS trigger
    AS 'MODULE_PATHNAME', 'ioffice_file_frozen' LANGUAGE C
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
CREATE TRIGGER frozen BEFORE INSERT OR UPDATE OR DELETE ON file
    FOR EACH ROW EXECUTE FUNCTION _file_frozen();
CREATE TRIGGER frozen_truncate BEFORE TRUNCATE ON file
    FOR EACH STATEMENT EXECUTE FUNCTION _file_frozen();

-- Whoever writes a link (văn bản liên quan), link_documents() or a role with
-- the privilege: no link of a document in a final state is added or removed,
-- an issued document keeps the links it was issued with (extension/files.c).
-- SECURITY DEFINER: it reads the document past row-level security.
CREATE FUNCTION _link_frozen() RETURNS trigger
    AS 'MODULE_PATHNAME', 'ioffice_link_frozen' LANGUAGE C
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
CREATE TRIGGER frozen BEFORE INSERT OR UPDATE OR DELETE ON document_link
    FOR EACH ROW EXECUTE FUNCTION _link_frozen();
CREATE TRIGGER frozen_truncate BEFORE TRUNCATE ON document_link
    FOR EACH STATEMENT EXECUTE FUNCTION _link_frozen();

CREATE FUNCTION act(doc bigint, action text, to_login text DEFAULT NULL,
                    note text DEFAULT NULL, options jsonb DEFAULT '{}')
    RETURNS text
    AS 'MODULE_PATHNAME', 'ioffice_act'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION act(bigint, text, text, text, jsonb) IS 'Performs one workflow action on a document and returns its new state';

CREATE FUNCTION format_number(number int) RETURNS text
    AS 'MODULE_PATHNAME', 'ioffice_format_number'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION format_number(int) IS 'A register number as Decree 30 writes it: two digits at least (01…09, 10, 100)';

CREATE FUNCTION take_number(register bigint, doc_type text, drafting_unit bigint DEFAULT NULL)
    RETURNS TABLE (number int, symbol text)
    AS 'MODULE_PATHNAME', 'ioffice_take_number'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION take_number(bigint, text, bigint) IS
  'The next number of a register and its symbol, for an external system; the number belongs to the caller''s transaction';

CREATE FUNCTION _take_arrival(doc bigint, register bigint DEFAULT NULL) RETURNS int
    AS 'MODULE_PATHNAME', 'ioffice_take_arrival_sql'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION _take_arrival(bigint, bigint) FROM PUBLIC;

-- take_number's audit record, computed inside its one statement
-- (extension/registers.c); not granted to PUBLIC
CREATE FUNCTION _number_detail(number int, symbol_tail text, doc_type text) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'ioffice_number_detail' LANGUAGE C IMMUTABLE STRICT;
CREATE FUNCTION _number_record_hash(prev bytea, seq bigint, register bigint, actor bigint,
                                    detail jsonb) RETURNS bytea
    AS 'MODULE_PATHNAME', 'ioffice_number_record_hash' LANGUAGE C STABLE;
REVOKE ALL ON FUNCTION _number_detail(int, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION _number_record_hash(bytea, bigint, bigint, bigint, jsonb) FROM PUBLIC;

CREATE FUNCTION build_symbol(number int, doc_type text, agency bigint, drafting_unit bigint)
    RETURNS text
    AS 'MODULE_PATHNAME', 'ioffice_build_symbol'
    LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION build_symbol(int, text, bigint, bigint) IS 'The Decree 30 number and symbol: 15/QĐ-UBND, or 05/UBND-VP for công văn';

-- rule tables: names checked on write, graph checked at commit, caches dropped
CREATE FUNCTION _rule_check_names() RETURNS trigger
    AS 'MODULE_PATHNAME', 'ioffice_rule_check_names' LANGUAGE C;
CREATE FUNCTION _rule_check_graph() RETURNS trigger
    AS 'MODULE_PATHNAME', 'ioffice_rule_check_graph' LANGUAGE C;
CREATE FUNCTION _rule_invalidate() RETURNS trigger
    AS 'MODULE_PATHNAME', 'ioffice_rule_invalidate' LANGUAGE C;
CREATE FUNCTION _rule_audit() RETURNS trigger
    AS 'MODULE_PATHNAME', 'ioffice_rule_audit' LANGUAGE C SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION guards() RETURNS SETOF text
    AS 'MODULE_PATHNAME', 'ioffice_list_guards' LANGUAGE C IMMUTABLE;
COMMENT ON FUNCTION guards() IS 'Names of the guards a workflow_transition may list';
CREATE FUNCTION effects() RETURNS SETOF text
    AS 'MODULE_PATHNAME', 'ioffice_list_effects' LANGUAGE C IMMUTABLE;
COMMENT ON FUNCTION effects() IS 'Names of the effects a workflow_transition may list';

CREATE FUNCTION options(OUT name text, OUT type text) RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'ioffice_list_options' LANGUAGE C IMMUTABLE;
COMMENT ON FUNCTION options() IS 'Option keys a workflow_transition may accept, with their JSON types';

-- the shape of the rules, checked again after a restore loaded them (the
-- commit-time check skips a dump being loaded: see triggers/rule_triggers.c)
CREATE FUNCTION workflow_check(name text DEFAULT NULL)
    RETURNS TABLE (workflow text, problem text)
    AS 'MODULE_PATHNAME', 'ioffice_workflow_check' LANGUAGE C STABLE;
COMMENT ON FUNCTION workflow_check(text) IS
  'Every problem of the shape of the workflows (or of one): a state with no way out to a final state, a final state out of reach, a missing initial or final state, a transition joining an unknown state; no rows means sound';

CREATE TRIGGER check_names BEFORE INSERT OR UPDATE ON workflow_transition
    FOR EACH ROW EXECUTE FUNCTION _rule_check_names();
CREATE CONSTRAINT TRIGGER check_graph AFTER INSERT OR UPDATE OR DELETE ON workflow_state
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION _rule_check_graph();
CREATE CONSTRAINT TRIGGER check_graph AFTER INSERT OR UPDATE OR DELETE ON workflow_transition
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION _rule_check_graph();
CREATE TRIGGER invalidate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON workflow
    FOR EACH STATEMENT EXECUTE FUNCTION _rule_invalidate();
CREATE TRIGGER invalidate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON workflow_state
    FOR EACH STATEMENT EXECUTE FUNCTION _rule_invalidate();
CREATE TRIGGER invalidate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON workflow_transition
    FOR EACH STATEMENT EXECUTE FUNCTION _rule_invalidate();
-- a cache must hear of every change, also one written with
-- session_replication_role = replica (a DBA's bulk load, logical replication)
ALTER TABLE workflow ENABLE ALWAYS TRIGGER invalidate;
ALTER TABLE workflow_state ENABLE ALWAYS TRIGGER invalidate;
ALTER TABLE workflow_transition ENABLE ALWAYS TRIGGER invalidate;

-- ---------------------------------------------------------------------------
-- The default outgoing workflow (API.md)
-- ---------------------------------------------------------------------------

INSERT INTO workflow (name, label, builtin) VALUES ('outgoing', 'Văn bản đi', true);
INSERT INTO workflow_state (workflow, state, label, initial, final, builtin) VALUES
    ('outgoing', 'draft',          'Dự thảo',            true,  false, true),
    ('outgoing', 'reviewing',      'Chờ duyệt',          false, false, true),
    ('outgoing', 'returned',       'Chờ chuyên viên xử lý', false, false, true),
    ('outgoing', 'awaiting_issue', 'Chờ văn thư phát hành', false, false, true),
    ('outgoing', 'issued',         'Đã phát hành',       false, true,  true),
    ('outgoing', 'completed',      'Hoàn tất',           false, true,  true);
-- approved by the leader, the files are what the clerk seals and issues
UPDATE workflow_state SET files_frozen = true WHERE workflow = 'outgoing' AND state = 'awaiting_issue';

INSERT INTO workflow_transition
    (workflow, action, from_state, to_state, label, taken_by, receiver, receiver_role,
     guards, effects, options, delegable, builtin)
VALUES
    ('outgoing', 'submit', 'draft', 'reviewing', 'Chuyển lãnh đạo', 'drafter', 'given', 'leader',
     '{has_file}', '{request_signature}',
     '{request_signature,sms,email,submission_slip,deadline}', false, true),
    ('outgoing', 'submit', 'returned', 'reviewing', 'Chuyển lãnh đạo', 'drafter', 'given', 'leader',
     '{has_file}', '{request_signature}',
     '{request_signature,sms,email,submission_slip,deadline}', false, true),
    ('outgoing', 'forward', 'reviewing', 'reviewing', 'Chuyển lãnh đạo khác', 'holder', 'given', 'leader',
     '{receiver_not_actor}', '{request_signature}',
     '{request_signature,sms,email,submission_slip,deadline}', true, true),
    ('outgoing', 'return', 'reviewing', 'returned', 'Chuyển chuyên viên', 'holder', 'drafter', NULL,
     '{}', '{}', '{sms,email,deadline}', true, true),
    ('outgoing', 'return', 'awaiting_issue', 'returned', 'Chuyển chuyên viên', 'holder', 'drafter', NULL,
     '{}', '{}', '{sms,email,deadline}', false, true),
    ('outgoing', 'sign', 'reviewing', 'reviewing', 'Ký số', 'holder', 'none', NULL,
     '{has_file}', '{queue_signatures}', '{mode,page,x,y}', false, true),
    ('outgoing', 'approve', 'reviewing', 'awaiting_issue', 'Duyệt', 'holder', 'given', 'clerk',
     '{own_signature}', '{}', '{sms,email,submission_slip,deadline}', true, true),
    ('outgoing', 'quick_approve', 'reviewing', 'awaiting_issue', 'Duyệt nhanh', 'holder', 'default_clerk', NULL,
     '{own_signature}', '{}', '{sms,email,deadline}', true, true),
    ('outgoing', 'complete', 'reviewing', 'completed', 'Hoàn tất', 'holder', 'none', NULL,
     '{}', '{}', '{}', true, true),
    ('outgoing', 'issue', 'awaiting_issue', 'issued', 'Phát hành', 'holder', 'none', NULL,
     '{has_file,approver_signature}', '{queue_seal,deliver_internal,number_and_issue}', '{register}', false, true);

-- The incoming workflow (văn bản đến): a document arrives (delivered by
-- another agency of this database) or is registered by the clerk with its
-- arrival number; a leader assigns a lead handler (chủ trì) and cooperating
-- ones (phối hợp), each with a deadline; the lead completes it.
INSERT INTO workflow (name, label, builtin) VALUES ('incoming', 'Văn bản đến', true);
INSERT INTO workflow_state (workflow, state, label, initial, final, builtin) VALUES
    ('incoming', 'received',            'Chờ vào sổ',        true,  false, true),
    ('incoming', 'registered',          'Đã vào sổ',         false, false, true),
    ('incoming', 'awaiting_assignment', 'Chờ lãnh đạo phân công', false, false, true),
    ('incoming', 'returned',            'Trả lại văn thư',   false, false, true),
    ('incoming', 'in_progress',         'Đang xử lý',        false, false, true),
    ('incoming', 'processed',           'Đã xử lý',          false, true,  true);
-- handed on by its clerk, a received document is what the leader and the
-- handlers read: its files are those it arrived with (extension/files.c;
-- they are never replaced or removed in any state)
UPDATE workflow_state SET files_frozen = true
 WHERE workflow = 'incoming' AND state IN ('awaiting_assignment', 'in_progress');

INSERT INTO workflow_transition
    (workflow, action, from_state, to_state, label, taken_by, receiver, receiver_role,
     guards, effects, options, delegable, builtin)
VALUES
    ('incoming', 'register', 'received', 'registered', 'Vào sổ văn bản đến', 'clerk', 'none', NULL,
     '{}', '{register_arrival}', '{register}', false, true),
    ('incoming', 'submit', 'registered', 'awaiting_assignment', 'Trình lãnh đạo', 'drafter', 'given', 'leader',
     '{}', '{}', '{sms,email,deadline}', false, true),
    ('incoming', 'submit', 'returned', 'awaiting_assignment', 'Trình lãnh đạo', 'drafter', 'given', 'leader',
     '{}', '{}', '{sms,email,deadline}', false, true),
    ('incoming', 'return', 'awaiting_assignment', 'returned', 'Trả lại văn thư', 'holder', 'drafter', NULL,
     '{}', '{}', '{sms,email}', true, true),
    ('incoming', 'assign', 'awaiting_assignment', 'in_progress', 'Phân công xử lý', 'holder', 'given', NULL,
     '{receiver_not_actor}', '{assign_cooperators}', '{deadline,cooperate,sms,email}', true, true),
    ('incoming', 'cooperated', 'in_progress', 'in_progress', 'Hoàn thành phối hợp', 'cooperator', 'none', NULL,
     '{}', '{close_own_cooperation}', '{}', false, true),
    ('incoming', 'complete', 'in_progress', 'processed', 'Hoàn thành xử lý', 'holder', 'none', NULL,
     '{}', '{close_cooperation}', '{}', false, true),
    ('incoming', 'file', 'returned', 'processed', 'Lưu, không xử lý', 'drafter', 'none', NULL,
     '{}', '{}', '{}', false, true);

-- from here on, rule edits are a DBA's and are audited (the install
-- script's own rows above are not)
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON workflow_state
    FOR EACH ROW EXECUTE FUNCTION _rule_audit();
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON workflow_transition
    FOR EACH ROW EXECUTE FUNCTION _rule_audit();

