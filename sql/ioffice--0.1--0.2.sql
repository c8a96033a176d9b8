/* ioffice--0.1--0.2.sql: brings an installed ioffice 0.1 to 0.2.  Every schema
 * change of 0.2 is here, one concern per section, in the same words as in
 * sql/parts/ (which build the fresh install script, ioffice--0.2.sql), so that
 * an upgraded database has exactly a fresh install's schema:
 * tests/t/010_upgrade.pl compares the two object by object. */

\echo Use "ALTER EXTENSION ioffice UPDATE TO '0.2'" to load this file. \quit

-- ===========================================================================
-- admin grants
-- ===========================================================================

-- A DBA (ioffice_admin) may add registers (their ids come from the sequence)
-- and keep people's names, positions, phones and e-mail addresses.
GRANT USAGE ON SEQUENCE register_id_seq TO ioffice_admin;
GRANT UPDATE (full_name, position, phone, email, active) ON person TO ioffice_admin;

-- ===========================================================================
-- files frozen
-- ===========================================================================
-- Files frozen once a leader approved; the seal only on what the leader
-- signed (extension/files.c, extension/guards.c).

-- workflow_state.files_frozen: no file changes in a state that has it (nor in
-- a final one).  Added empty, then filled: a column added with its default
-- would keep that default as a "missing value" in the catalog, which a fresh
-- install has not.
ALTER TABLE workflow_state ADD COLUMN files_frozen boolean;
ALTER TABLE workflow_state ALTER COLUMN files_frozen SET DEFAULT false;
-- approved by the leader, the files are what the clerk seals and issues.
-- The rules' graph check runs at the end of this UPDATE rather than at
-- commit: ALTER TABLE cannot run on a table with trigger events pending.
SET CONSTRAINTS check_graph IMMEDIATE;
UPDATE workflow_state
   SET files_frozen = (workflow = 'outgoing' AND state = 'awaiting_issue' AND builtin);
SET CONSTRAINTS check_graph DEFERRED;
ALTER TABLE workflow_state ALTER COLUMN files_frozen SET NOT NULL;
COMMENT ON COLUMN workflow_state.files_frozen IS
  'The files of a document in this state can no longer change (as in a final state): approved, they are what is issued';

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

-- issue checks that the approving leader's requested signature is on every current file
UPDATE workflow_transition SET guards = '{has_file,approver_signature}'
 WHERE workflow = 'outgoing' AND action = 'issue' AND from_state = 'awaiting_issue'
   AND builtin AND guards = '{has_file}';

-- A document, file or dossier the actor may not see is answered as one that
-- does not exist (extension/actor.c).

-- A document the actor may not see is unknown to them: 42704 'unknown
-- document N', as for one that does not exist (extension/actor.c).  For the
-- extension's SQL functions; the C ones call the same code.
CREATE FUNCTION _require_document(doc bigint) RETURNS void
    AS 'MODULE_PATHNAME', 'ioffice_require_document_sql'
    LANGUAGE C STABLE;
REVOKE ALL ON FUNCTION _require_document(bigint) FROM PUBLIC;

CREATE OR REPLACE FUNCTION trail(doc bigint)
RETURNS TABLE (step int, sender text, request text, receiver text,
               received_at timestamptz, processing_note text, deadline date,
               processed_at timestamptz, status text, attachments text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM ioffice.actor();
    IF doc IS NULL THEN
        RAISE EXCEPTION 'trail needs a document' USING ERRCODE = '22023';
    END IF;
    PERFORM ioffice._require_document(doc);
    RETURN QUERY
    SELECT t.step,
           s.full_name || coalesce(' (thay ' || sf.full_name || ')', ''),
           t.request,
           r.full_name,
           t.received_at,
           t.processing_note
             || CASE WHEN t.processed_by IS DISTINCT FROM t.receiver_id AND t.processed_by IS NOT NULL
                     THEN ' (' || pb.full_name || ' thay ' || r.full_name || ')' ELSE '' END,
           t.deadline,
           t.processed_at,
           CASE t.status WHEN 'done' THEN 'Đã xử lý' ELSE 'Đang xử lý' END,
           (SELECT string_agg(f.name, ', ' ORDER BY f.id)
            FROM ioffice.file f WHERE f.id = ANY (t.file_ids))
    FROM ioffice.task t
    JOIN ioffice.person s ON s.id = t.sender_id
    JOIN ioffice.person r ON r.id = t.receiver_id
    LEFT JOIN ioffice.person sf ON sf.id = t.sender_for
    LEFT JOIN ioffice.person pb ON pb.id = t.processed_by
    WHERE t.document_id = doc
    ORDER BY t.step;
END
$$;


-- A dossier the actor may not see is unknown to them, as a document is
-- (_require_document); returns its id.
CREATE FUNCTION _require_dossier(code text) RETURNS bigint
    AS 'MODULE_PATHNAME', 'ioffice_require_dossier_sql'
    LANGUAGE C STABLE;
REVOKE ALL ON FUNCTION _require_dossier(text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION dossier_trail(code text)
RETURNS TABLE (step int, sender text, request text, receiver text,
               received_at timestamptz, processing_note text, deadline date,
               processed_at timestamptz, status text, attachments text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id bigint;
BEGIN
    PERFORM ioffice.actor();
    IF code IS NULL THEN
        RAISE EXCEPTION 'dossier_trail needs a dossier code' USING ERRCODE = '22023';
    END IF;
    v_id := ioffice._require_dossier(code);
    RETURN QUERY
    SELECT t.step, s.full_name || coalesce(' (thay ' || sf.full_name || ')', ''),
           t.request, r.full_name, t.received_at, t.processing_note, t.deadline, t.processed_at,
           CASE t.status WHEN 'done' THEN 'Đã xử lý' ELSE 'Đang xử lý' END,
           (SELECT string_agg(f.name, ', ' ORDER BY f.id) FROM ioffice.dossier_file f
             WHERE f.id = ANY (t.file_ids))
      FROM ioffice.dossier_task t
      JOIN ioffice.person s ON s.id = t.sender_id
      LEFT JOIN ioffice.person sf ON sf.id = t.sender_for
      JOIN ioffice.person r ON r.id = t.receiver_id
     WHERE t.dossier_id = v_id
     ORDER BY t.step;
END
$$;

-- register_incoming: details.field and details.comment checked before the
-- insert (22023 naming the detail, not the table's CHECK with the whole row)


-- ===========================================================================
-- worker
-- ===========================================================================
-- The background worker is two processes per database, a signer and a
-- deliverer, so that signing never waits for the network; worker_status
-- shows both, a database the workers cannot connect to, and each database's
-- own queue depths.  The view is made again over the new _worker_slots().
DROP VIEW worker_status;
DROP FUNCTION _worker_slots();

-- one row per served database: its signer's and its deliverer's processes
-- (pid, state and started_at of the row are the signer's; state shows the
-- deliverer's when the signer is idle), and its connection failures
CREATE FUNCTION _worker_slots(OUT database text, OUT pid int, OUT state text, OUT started_at timestamptz,
                              OUT last_batch_at timestamptz, OUT batches bigint, OUT jobs_done bigint,
                              OUT jobs_failed bigint, OUT deliveries bigint, OUT deliveries_failed bigint,
                              OUT last_error text, OUT last_error_at timestamptz,
                              OUT signer_pid int, OUT signer_state text,
                              OUT delivery_pid int, OUT delivery_state text,
                              OUT delivery_started_at timestamptz,
                              OUT connect_failures int, OUT next_connect_at timestamptz)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'ioffice_worker_slots_sql' LANGUAGE C VOLATILE;
-- last_error may quote another system's answer or a signing failure: DBAs only
REVOKE ALL ON FUNCTION _worker_slots() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION _worker_slots() TO ioffice_admin;

-- worker_status, now with the outbox: its depth, what is due, dead letters
-- and the last of them.  The queues are read in the current database: the
-- other databases' rows show NULL there (query the view in each database).
CREATE VIEW worker_status AS
SELECT w.database, w.pid, w.state, w.started_at, w.last_batch_at, w.batches, w.jobs_done,
       w.jobs_failed, w.deliveries, w.deliveries_failed, w.last_error, w.last_error_at,
       CASE WHEN w.database = current_database() THEN
       (SELECT count(*) FROM ioffice.signature s WHERE s.status = 'pending') END AS signatures_pending,
       CASE WHEN w.database = current_database() THEN
       (SELECT count(*) FROM ioffice.signature s WHERE s.status = 'failed') END AS signatures_failed,
       CASE WHEN w.database = current_database() THEN
       (SELECT count(*) FROM ioffice.outbox o WHERE o.status = 'pending') END AS outbox_pending,
       CASE WHEN w.database = current_database() THEN
       (SELECT count(*) FROM ioffice.outbox o
         WHERE o.status = 'pending' AND o.next_attempt_at <= now()) END AS outbox_due,
       CASE WHEN w.database = current_database() THEN
       (SELECT count(*) FROM ioffice.outbox o WHERE o.status = 'dead') END AS outbox_dead,
       CASE WHEN w.database = current_database() THEN
       (SELECT format('event %s to %s: %s', o.id, e.name, o.last_error)
          FROM ioffice.outbox o JOIN ioffice.endpoint e ON e.id = o.endpoint_id
         WHERE o.status = 'dead' ORDER BY o.id DESC LIMIT 1) END AS outbox_last_dead,
       w.signer_pid, w.signer_state, w.delivery_pid, w.delivery_state, w.delivery_started_at,
       w.connect_failures, w.next_connect_at
FROM ioffice._worker_slots() AS w;
GRANT SELECT ON worker_status TO ioffice_admin;
COMMENT ON VIEW worker_status IS 'What the background workers (a signer and a deliverer per database) are doing, the current database''s queue depths (signatures, outbox), the last error and when';

-- each endpoint's queue, for the deliverer's turns between endpoints
CREATE INDEX outbox_endpoint_due_idx ON outbox (endpoint_id, next_attempt_at, id) WHERE status = 'pending';

-- ===========================================================================
-- secrecy restore
-- ===========================================================================
-- Secrecy of confidential registers, and rules that survive a restore.
--
-- A confidential register (register.confidential) and its entries are seen by
-- the agency's clerks and the admins only, by every path: the register's own
-- row (RLS on register; ioffice_admin keeps them all), the numbers other
-- systems took (number_taken), the documents numbered there (a reader's
-- policy leaves out the confidential registers), the register views (an
-- entry is confidential when its document or its register is).
CREATE FUNCTION keeps_registers(agency bigint) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM ioffice.person_role r
                   WHERE r.person_id = ioffice.current_person()
                     AND ((r.role = 'clerk' AND r.unit_id = agency) OR r.role = 'admin'))
$$;

ALTER TABLE register ENABLE ROW LEVEL SECURITY;
CREATE POLICY visible ON register FOR SELECT
    USING (NOT confidential OR ioffice.keeps_registers(agency_id));
CREATE POLICY dba ON register TO ioffice_admin USING (true) WITH CHECK (true);

ALTER POLICY visible ON document
    USING ((confidentiality = 'normal' AND pg_catalog.pg_has_role('ioffice_reader', 'USAGE')
            AND (register_id IS NULL
                 OR register_id IN (SELECT r.id FROM ioffice.register r WHERE NOT r.confidential)))
           OR ioffice.can_see(id));
ALTER POLICY visible ON number_taken
    USING (register_id IN (
        SELECT r.id FROM ioffice.register r
        WHERE (NOT r.confidential AND pg_catalog.pg_has_role('ioffice_reader', 'USAGE'))
           OR ioffice.keeps_registers(r.agency_id)));


CREATE OR REPLACE VIEW incoming_register WITH (security_invoker = true) AS
SELECT d.agency_id, d.register_id, r.code AS register_code, d.register_year AS year,
       (d.received_at AT TIME ZONE ioffice.timezone())::date AS received_on,
       d.number,
       coalesce(sa.name, d.sender_name) AS sender,
       coalesce(d.sender_symbol, src.symbol) AS sender_symbol,
       coalesce(d.sender_date, src.issued_on) AS sender_date,
       t.name || ' ' || d.abstract AS type_and_abstract,
       (SELECT string_agg(p.full_name || CASE tk.kind WHEN 'main' THEN ' (chủ trì)' ELSE ' (phối hợp)' END,
                          '; ' ORDER BY tk.kind DESC, tk.step)
          FROM ioffice.task tk JOIN ioffice.person p ON p.id = tk.receiver_id
         WHERE tk.document_id = d.id AND tk.action = 'assign') AS handlers,
       (SELECT (min(tk.received_at) AT TIME ZONE ioffice.timezone())::date
          FROM ioffice.task tk WHERE tk.document_id = d.id AND tk.action = 'assign') AS assigned_on,
       NULL::text AS receipt,
       d.comment AS note,
       d.doc_type,
       r.confidential OR d.confidentiality <> 'normal' AS confidential,
       d.state,
       d.id AS document_id,
       d.source_document_id
FROM ioffice.document d
JOIN ioffice.register r ON r.id = d.register_id
JOIN ioffice.doc_type t ON t.code = d.doc_type
LEFT JOIN ioffice.unit sa ON sa.id = d.sender_agency_id
LEFT JOIN ioffice.document src ON src.id = d.source_document_id
WHERE d.direction = 'incoming' AND d.number IS NOT NULL;

-- The commit-time check of the rules' shape is skipped while a dump is
-- loaded (triggers/rule_triggers.c); workflow_check() reports it afterwards,
-- and act() checks it when it loads the rules.
CREATE FUNCTION workflow_check(name text DEFAULT NULL)
    RETURNS TABLE (workflow text, problem text)
    AS 'MODULE_PATHNAME', 'ioffice_workflow_check' LANGUAGE C STABLE;
COMMENT ON FUNCTION workflow_check(text) IS
  'Every problem of the shape of the workflows (or of one): a state with no way out to a final state, a final state out of reach, a missing initial or final state, a transition joining an unknown state; no rows means sound';

-- ===========================================================================
-- refactor
-- ===========================================================================
-- One parser for every date and time the extension reads from text
-- (extension/dates.c): the details' dates and times, read in PL/pgSQL in
-- 0.1, are read by C, with the same messages.  CREATE OR REPLACE keeps the
-- functions' privileges (REVOKE ALL FROM PUBLIC).
CREATE OR REPLACE FUNCTION _time_detail(details jsonb, key text) RETURNS timestamptz
    AS 'MODULE_PATHNAME', 'ioffice_time_detail' LANGUAGE C STABLE STRICT;
CREATE OR REPLACE FUNCTION _date_detail(details jsonb, key text) RETURNS date
    AS 'MODULE_PATHNAME', 'ioffice_date_detail' LANGUAGE C STABLE STRICT;

-- ===========================================================================
-- visibility at scale
-- ===========================================================================
-- Row-level security the planner can use (issue 18).
--
-- The policies said "can_see(id)" for every row: a function call each
-- (about half a millisecond), and no index could serve a query, so a
-- leader's count(*) over 40,000 documents took 16 s.  They now say the same
-- with sets computed once per statement (InitPlans: the acting person, the
-- documents of their tasks, the agencies they keep as clerk, or every unit
-- for an admin) compared with indexed columns; readers have a policy of
-- their own.  Rows of a document (files, tasks, signatures, links, audit)
-- and of a dossier follow.  can_see() and can_see_dossier() stay for the
-- functions that check one id.

-- who processed a task in its receiver's name (delegation): what row-level
-- security looks up for that person (_task_documents())
CREATE INDEX task_processed_by_idx ON task (processed_by) WHERE processed_by <> receiver_id;
CREATE INDEX dossier_task_processed_by_idx ON dossier_task (processed_by)
    WHERE processed_by <> receiver_id;

-- The documents the current person holds or held a task on, as its
-- receiver, its sender or the one who processed it in the receiver's name,
-- and those whose open task is held by someone who delegates to them now:
-- read from the task indexes on those people.  SECURITY DEFINER, as
-- can_see(), so that the policies of document and task do not call each
-- other; plpgsql, so that its plans are made once per session, not on
-- every statement that reads a table under its policy.
CREATE FUNCTION _task_documents() RETURNS bigint[]
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me bigint := ioffice.current_person();
BEGIN
    RETURN (SELECT coalesce(array_agg(DISTINCT x.document_id), '{}') FROM (
        SELECT t.document_id FROM ioffice.task t WHERE t.receiver_id = v_me
        UNION ALL
        SELECT t.document_id FROM ioffice.task t WHERE t.sender_id = v_me
        UNION ALL
        SELECT t.document_id FROM ioffice.task t
         WHERE t.processed_by = v_me AND t.processed_by <> t.receiver_id
        UNION ALL
        SELECT t.document_id FROM ioffice.delegation g
          JOIN ioffice.task t ON t.receiver_id = g.from_person AND t.status = 'open'
         WHERE g.to_person = v_me AND now() >= g.valid_from AND now() < g.valid_until) x);
END
$$;

-- The agencies whose documents the current person sees as their clerk; for
-- an admin, who sees every document, every unit (a document's agency_id is
-- one): one indexed test for both.
CREATE FUNCTION _clerk_agencies() RETURNS bigint[]
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me bigint := ioffice.current_person();
BEGIN
    IF EXISTS (SELECT 1 FROM ioffice.person_role r WHERE r.person_id = v_me AND r.role = 'admin') THEN
        RETURN (SELECT coalesce(array_agg(u.id), '{}') FROM ioffice.unit u);
    END IF;
    RETURN (SELECT coalesce(array_agg(r.unit_id), '{}') FROM ioffice.person_role r
             WHERE r.person_id = v_me AND r.role = 'clerk');
END
$$;

-- The same as sets, for the policies (see _task_documents()): the people
-- whose dossiers the current person sees (themselves and the people of the
-- units they lead; every person for an admin, who sees every dossier), and
-- the dossiers with a task of one of them, by the dossier_task indexes.
CREATE FUNCTION _dossier_people() RETURNS bigint[]
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me bigint := ioffice.current_person();
BEGIN
    IF EXISTS (SELECT 1 FROM ioffice.person_role r WHERE r.person_id = v_me AND r.role = 'admin') THEN
        RETURN (SELECT coalesce(array_agg(p.id), '{}') FROM ioffice.person p);
    END IF;
    RETURN (SELECT coalesce(array_agg(DISTINCT x.id), '{}') FROM (
                SELECT v_me AS id WHERE v_me IS NOT NULL
                UNION ALL
                SELECT p.id FROM ioffice.person_role r
                  JOIN ioffice.person p ON p.unit_id = r.unit_id
                 WHERE r.person_id = v_me AND r.role = 'leader') x);
END
$$;
CREATE FUNCTION _task_dossiers() RETURNS bigint[]
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_people bigint[];
BEGIN
    IF ioffice.is_admin() THEN
        RETURN '{}';
    END IF;
    v_people := ioffice._dossier_people();
    RETURN (SELECT coalesce(array_agg(DISTINCT x.dossier_id), '{}') FROM (
                SELECT t.dossier_id FROM ioffice.dossier_task t WHERE t.receiver_id = ANY (v_people)
                UNION ALL
                SELECT t.dossier_id FROM ioffice.dossier_task t WHERE t.sender_id = ANY (v_people)
                UNION ALL
                SELECT t.dossier_id FROM ioffice.dossier_task t
                 WHERE t.processed_by = ANY (v_people) AND t.processed_by <> t.receiver_id) x);
END
$$;

-- A person sees the documents can_see() lets them see: three indexed tests,
-- each against a value or a set computed once per statement.
ALTER POLICY visible ON document
    USING (drafter_id = (SELECT ioffice.current_person())
           OR id = ANY ((SELECT ioffice._task_documents())::bigint[])
           OR agency_id = ANY ((SELECT ioffice._clerk_agencies())::bigint[]));
-- reporting tools (ioffice_reader) read the registers: every document that
-- is not confidential and not numbered in a confidential register (a DBA
-- may make a register confidential after it numbered ordinary documents).
-- A policy of its own, for the role: the other roles' policy keeps only
-- indexed tests, which the planner can combine.  The role is also checked
-- when the statement runs (a plan made before a REVOKE sees nothing more),
-- and the ordinary registers are read once per statement (hashed).  Its
-- test comes first for a reader, who sees nearly every row by it (the
-- policies are combined in reverse order of their names).
CREATE POLICY visible_to_readers ON document FOR SELECT TO ioffice_reader
    USING (confidentiality = 'normal' AND (SELECT pg_catalog.pg_has_role('ioffice_reader', 'USAGE'))
           AND (register_id IS NULL
                OR register_id IN (SELECT r.id FROM ioffice.register r WHERE NOT r.confidential)));
-- The rows of a document (files, tasks, signatures, links, audit records)
-- are seen by whoever can_see() the document (a reader who is no person of
-- it does not): an admin; a document of the person's tasks (a hashed set);
-- one they drafted or keep as its agency's clerk (its row, by the primary
-- key, or all of them hashed: the planner chooses by the rows to check).
ALTER POLICY visible ON file
    USING ((SELECT ioffice.is_admin())
           OR file.document_id IN (SELECT unnest(ioffice._task_documents()))
           OR EXISTS (SELECT 1 FROM ioffice.document d
                      WHERE d.id = file.document_id
                        AND (d.drafter_id = (SELECT ioffice.current_person())
                             OR d.agency_id = ANY ((SELECT ioffice._clerk_agencies())::bigint[]))));
ALTER POLICY visible ON task
    USING ((SELECT ioffice.is_admin())
           OR task.document_id IN (SELECT unnest(ioffice._task_documents()))
           OR EXISTS (SELECT 1 FROM ioffice.document d
                      WHERE d.id = task.document_id
                        AND (d.drafter_id = (SELECT ioffice.current_person())
                             OR d.agency_id = ANY ((SELECT ioffice._clerk_agencies())::bigint[]))));
ALTER POLICY visible ON signature
    USING ((SELECT ioffice.is_admin())
           OR signature.document_id IN (SELECT unnest(ioffice._task_documents()))
           OR EXISTS (SELECT 1 FROM ioffice.document d
                      WHERE d.id = signature.document_id
                        AND (d.drafter_id = (SELECT ioffice.current_person())
                             OR d.agency_id = ANY ((SELECT ioffice._clerk_agencies())::bigint[]))));
ALTER POLICY visible ON document_link
    USING ((SELECT ioffice.is_admin())
           OR document_link.document_id IN (SELECT unnest(ioffice._task_documents()))
           OR EXISTS (SELECT 1 FROM ioffice.document d
                      WHERE d.id = document_link.document_id
                        AND (d.drafter_id = (SELECT ioffice.current_person())
                             OR d.agency_id = ANY ((SELECT ioffice._clerk_agencies())::bigint[]))));
-- the audit of a document is seen by those who see the document, of a
-- dossier by those who see the dossier
ALTER POLICY visible ON audit
    USING ((SELECT ioffice.is_admin())
           OR (audit.entity = 'document'
               AND (audit.entity_id IN (SELECT unnest(ioffice._task_documents()))
                    OR EXISTS (SELECT 1 FROM ioffice.document d
                               WHERE d.id = audit.entity_id
                                 AND (d.drafter_id = (SELECT ioffice.current_person())
                                      OR d.agency_id = ANY ((SELECT ioffice._clerk_agencies())::bigint[])))))
           OR (audit.entity = 'dossier'
               AND EXISTS (SELECT 1 FROM ioffice.dossier s WHERE s.id = audit.entity_id)));

-- can_see_dossier() as two indexed tests (an admin's every person covers
-- every dossier); a dossier's tasks and files are seen with it: its row, by
-- the primary key, or all the visible ones hashed
ALTER POLICY visible ON dossier
    USING (received_by = ANY ((SELECT ioffice._dossier_people())::bigint[])
           OR id = ANY ((SELECT ioffice._task_dossiers())::bigint[]));
ALTER POLICY visible ON dossier_task
    USING (EXISTS (SELECT 1 FROM ioffice.dossier s WHERE s.id = dossier_task.dossier_id));
ALTER POLICY visible ON dossier_file
    USING (EXISTS (SELECT 1 FROM ioffice.dossier s WHERE s.id = dossier_file.dossier_id));

-- Lists and counters that do not read history (issue 18, item 2).
--
-- dashboard() counted the rows of every list it shows, and each list picked
-- its documents with one query for all tabs that read the documents at
-- large; a clerk's home page took 0.1 s at 10,000 documents and 1.7 s at
-- 100,000.  Each tab is now a query of its own (_outgoing_tab(),
-- _incoming_tab()) started from the rows that answer it through an index
-- shaped for it, the counters count those rows, and the lists take a page
-- (after, limit: newest first) read backwards from the indexes.
DROP INDEX document_drafter_idx;
DROP INDEX document_agency_state_idx;
DROP INDEX task_sender_idx;
DROP INDEX task_receiver_idx;
-- (with the id: a person's own documents newest first, a page of a list)
CREATE INDEX document_drafter_idx ON document (drafter_id, id);
-- an agency's documents in one state, newest first: the clerk's tabs
CREATE INDEX document_agency_state_idx ON document (agency_id, state, id);
-- a person's tasks, by document (newest first: a page of a list); and the
-- tasks each tab of the lists starts from, so that none reads a person's
-- whole history to find a few rows
CREATE INDEX task_sender_idx ON task (sender_id, document_id);
CREATE INDEX task_receiver_idx ON task (receiver_id, document_id);
CREATE INDEX task_sender_open_idx ON task (sender_id) WHERE status = 'open';
CREATE INDEX task_sender_for_idx ON task (sender_for) WHERE sender_for IS NOT NULL;
CREATE INDEX task_forwarded_idx ON task (receiver_id, document_id) WHERE closed_by_action = 'forward';
CREATE INDEX task_approved_idx ON task (receiver_id, document_id)
    WHERE closed_by_action IN ('approve', 'quick_approve');
CREATE INDEX task_assigned_idx ON task (processed_by, document_id) WHERE closed_by_action = 'assign';

-- The rows of a tab, for the lists and the home page's counters alike (so
-- that a counter never disagrees with its tab).  Each tab is a query of its
-- own, started from the rows that answer it (the person's open tasks, their
-- tasks of one kind, their own documents, their agencies' documents in one
-- state) through an index shaped for it, never from the documents at large.
-- With lim, the lim newest documents (highest ids) below after: every
-- source is read backwards from there and stops, so that a first page
-- costs the same whatever the history.  Not granted: me is whoever the
-- caller says.
CREATE FUNCTION _outgoing_tab(tab text, me bigint, after bigint DEFAULT NULL, lim int DEFAULT NULL)
RETURNS SETOF bigint
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_below bigint := coalesce(after, 9223372036854775807);
BEGIN
    IF tab = 'awaiting_approval' THEN
        -- the person's open tasks
        RETURN QUERY
        SELECT DISTINCT t.document_id FROM ioffice.task t JOIN ioffice.document d ON d.id = t.document_id
         WHERE t.receiver_id = me AND t.status = 'open' AND t.document_id < v_below
           AND d.direction = 'outgoing' AND d.state = 'reviewing'
         ORDER BY 1 DESC LIMIT lim;
    ELSIF tab = 'awaiting_specialist' THEN
        -- open tasks the person (or the one they act for) sent back
        RETURN QUERY
        SELECT DISTINCT t.document_id FROM ioffice.task t JOIN ioffice.document d ON d.id = t.document_id
         WHERE (t.sender_id = me OR t.sender_for = me) AND t.status = 'open' AND t.action = 'return'
           AND t.document_id < v_below AND d.direction = 'outgoing' AND d.state = 'returned'
         ORDER BY 1 DESC LIMIT lim;
    ELSIF tab = 'awaiting_other_leader' THEN
        -- what the person forwarded, still under review by someone else
        RETURN QUERY
        SELECT DISTINCT t.document_id FROM ioffice.task t JOIN ioffice.document d ON d.id = t.document_id
         WHERE t.receiver_id = me AND t.closed_by_action = 'forward' AND t.status = 'done'
           AND t.document_id < v_below AND d.direction = 'outgoing' AND d.state = 'reviewing'
           AND NOT EXISTS (SELECT 1 FROM ioffice.task o WHERE o.document_id = d.id
                             AND o.status = 'open' AND o.receiver_id = me)
         ORDER BY 1 DESC LIMIT lim;
    ELSIF tab = 'awaiting_issue' THEN
        -- held by the person as clerk, or approved by them (in their own
        -- name or another's), not issued yet
        RETURN QUERY
        SELECT x.id FROM (
            (SELECT t.document_id AS id FROM ioffice.task t
              WHERE t.receiver_id = me AND t.status = 'open' AND t.document_id < v_below)
            UNION
            (SELECT t.document_id FROM ioffice.task t
              WHERE t.receiver_id = me AND t.closed_by_action IN ('approve', 'quick_approve')
                AND t.status = 'done' AND t.document_id < v_below)
            UNION
            (SELECT t.document_id FROM ioffice.task t
              WHERE t.processed_by = me AND t.processed_by <> t.receiver_id
                AND t.closed_by_action IN ('approve', 'quick_approve') AND t.status = 'done'
                AND t.document_id < v_below)) x
          JOIN ioffice.document d ON d.id = x.id
         WHERE d.direction = 'outgoing' AND d.state = 'awaiting_issue'
         ORDER BY 1 DESC LIMIT lim;
    ELSIF tab = 'issued' THEN
        -- drafted by the person, handled by them (received or sent a task),
        -- or issued by an agency they keep as clerk
        RETURN QUERY
        SELECT x.id FROM (
            (SELECT d.id FROM ioffice.document d
              WHERE d.drafter_id = me AND d.id < v_below AND d.direction = 'outgoing' AND d.state = 'issued'
              ORDER BY d.id DESC LIMIT lim)
            UNION
            (SELECT DISTINCT t.document_id FROM ioffice.task t JOIN ioffice.document d ON d.id = t.document_id
              WHERE t.receiver_id = me AND t.document_id < v_below
                AND d.direction = 'outgoing' AND d.state = 'issued'
              ORDER BY 1 DESC LIMIT lim)
            UNION
            (SELECT DISTINCT t.document_id FROM ioffice.task t JOIN ioffice.document d ON d.id = t.document_id
              WHERE t.sender_id = me AND t.document_id < v_below
                AND d.direction = 'outgoing' AND d.state = 'issued'
              ORDER BY 1 DESC LIMIT lim)
            UNION
            (SELECT k.id FROM ioffice.person_role r
               CROSS JOIN LATERAL (SELECT d.id FROM ioffice.document d
                                    WHERE d.agency_id = r.unit_id AND d.state = 'issued'
                                      AND d.id < v_below AND d.direction = 'outgoing'
                                    ORDER BY d.id DESC LIMIT lim) k
              WHERE r.person_id = me AND r.role = 'clerk')) x
         ORDER BY 1 DESC LIMIT lim;
    ELSIF tab = 'delegated' THEN
        -- open tasks of the people who delegate to the person now, where
        -- the next step may be taken in their name
        RETURN QUERY
        SELECT DISTINCT d.id FROM ioffice.delegation g
          JOIN ioffice.task t ON t.receiver_id = g.from_person AND t.status = 'open'
          JOIN ioffice.document d ON d.id = t.document_id
          JOIN ioffice.workflow_transition w
            ON w.workflow = d.workflow AND w.from_state = d.state AND w.delegable
         WHERE g.to_person = me AND now() >= g.valid_from AND now() < g.valid_until
           AND d.direction = 'outgoing' AND d.id < v_below
         ORDER BY 1 DESC LIMIT lim;
    END IF;
END
$$;
REVOKE ALL ON FUNCTION _outgoing_tab(text, bigint, bigint, int) FROM PUBLIC;

-- The same for the incoming list: the documents with the deadline the tab
-- shows (a document may come twice, as the tab shows it: one row per open
-- task of the person)
CREATE FUNCTION _incoming_tab(tab text, me bigint, after bigint DEFAULT NULL, lim int DEFAULT NULL)
RETURNS TABLE (document bigint, deadline date)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_below bigint := coalesce(after, 9223372036854775807);
    v_today date := (now() AT TIME ZONE ioffice.timezone())::date;
    v_soon int := current_setting('ioffice.due_soon_days')::int;
BEGIN
    IF tab IN ('awaiting_approval', 'in_progress', 'due', 'overdue') THEN
        -- the person's open tasks on incoming documents, with their deadline
        RETURN QUERY
        WITH mine AS (
            SELECT t.document_id AS id, coalesce(t.deadline, d.due_date) AS deadline, d.state
              FROM ioffice.task t JOIN ioffice.document d ON d.id = t.document_id
             WHERE t.status = 'open' AND t.receiver_id = me AND d.direction = 'incoming'
               AND t.document_id < v_below)
        SELECT m.id, m.deadline FROM mine m
         WHERE tab = 'awaiting_approval' AND m.state = 'awaiting_assignment'
        UNION ALL
        SELECT DISTINCT m.id, m.deadline FROM mine m WHERE tab = 'in_progress' AND m.state = 'in_progress'
        UNION ALL
        SELECT DISTINCT m.id, m.deadline FROM mine m
         WHERE tab = 'due' AND m.deadline >= v_today AND m.deadline < v_today + v_soon
        UNION ALL
        SELECT DISTINCT m.id, m.deadline FROM mine m WHERE tab = 'overdue' AND m.deadline < v_today;
    ELSIF tab = 'unprocessed' THEN
        -- arrived at an agency the person keeps as clerk, or registered (or
        -- returned to them) by the person
        RETURN QUERY
        SELECT x.id, NULL::date FROM (
            (SELECT k.id FROM ioffice.person_role r
               CROSS JOIN LATERAL (SELECT d.id FROM ioffice.document d
                                    WHERE d.agency_id = r.unit_id AND d.state = 'received'
                                      AND d.id < v_below AND d.direction = 'incoming'
                                    ORDER BY d.id DESC LIMIT lim) k
              WHERE r.person_id = me AND r.role = 'clerk')
            UNION
            (SELECT d.id FROM ioffice.document d
              WHERE d.drafter_id = me AND d.state IN ('registered', 'returned')
                AND d.id < v_below AND d.direction = 'incoming'
              ORDER BY d.id DESC LIMIT lim)) x
         ORDER BY 1 DESC LIMIT lim;
    ELSIF tab = 'processed' THEN
        -- registered by the person, or handled by them
        RETURN QUERY
        SELECT x.id, NULL::date FROM (
            (SELECT d.id FROM ioffice.document d
              WHERE d.drafter_id = me AND d.id < v_below AND d.direction = 'incoming'
                AND d.state = 'processed'
              ORDER BY d.id DESC LIMIT lim)
            UNION
            (SELECT DISTINCT t.document_id FROM ioffice.task t JOIN ioffice.document d ON d.id = t.document_id
              WHERE t.receiver_id = me AND t.document_id < v_below
                AND d.direction = 'incoming' AND d.state = 'processed'
              ORDER BY 1 DESC LIMIT lim)
            UNION
            (SELECT DISTINCT t.document_id FROM ioffice.task t JOIN ioffice.document d ON d.id = t.document_id
              WHERE t.processed_by = me AND t.processed_by <> t.receiver_id AND t.document_id < v_below
                AND d.direction = 'incoming' AND d.state = 'processed'
              ORDER BY 1 DESC LIMIT lim)) x
         ORDER BY 1 DESC LIMIT lim;
    ELSIF tab = 'delegated' THEN
        RETURN QUERY
        SELECT d.id, t.deadline FROM ioffice.delegation g
          JOIN ioffice.task t ON t.receiver_id = g.from_person AND t.status = 'open' AND t.kind = 'main'
          JOIN ioffice.document d ON d.id = t.document_id
         WHERE g.to_person = me AND now() >= g.valid_from AND now() < g.valid_until
           AND d.direction = 'incoming' AND d.state = 'awaiting_assignment' AND d.id < v_below;
    ELSIF tab = 'transferred' THEN
        -- assigned by the person (in their own name or another's), in progress
        RETURN QUERY
        SELECT DISTINCT t.document_id, NULL::date FROM ioffice.task t JOIN ioffice.document d ON d.id = t.document_id
         WHERE t.processed_by = me AND t.closed_by_action = 'assign' AND t.document_id < v_below
           AND d.direction = 'incoming' AND d.state = 'in_progress'
         ORDER BY 1 DESC LIMIT lim;
    END IF;
END
$$;
REVOKE ALL ON FUNCTION _incoming_tab(text, bigint, bigint, int) FROM PUBLIC;

DROP FUNCTION outgoing_list(text);
CREATE FUNCTION outgoing_list(tab text, after bigint DEFAULT NULL, "limit" int DEFAULT NULL)
RETURNS TABLE (document bigint, urgency text, awaiting_signature boolean,
               number_symbol text, abstract text, issuing_agency text,
               received_at timestamptz, priority int, state text, holder text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me bigint := ioffice.actor();
    v_limit int := $3;
    v_paged boolean := $2 IS NOT NULL OR $3 IS NOT NULL;
BEGIN
    IF tab IS NULL OR tab NOT IN ('awaiting_approval', 'awaiting_specialist', 'awaiting_other_leader',
                                  'awaiting_issue', 'issued', 'delegated') THEN
        RAISE EXCEPTION 'unknown tab "%"', left(tab, 60) USING ERRCODE = '22023',
              HINT = 'Tabs are awaiting_approval, awaiting_specialist, awaiting_other_leader, awaiting_issue, issued, delegated.';
    END IF;
    IF v_limit < 1 THEN
        RAISE EXCEPTION 'limit must be at least 1' USING ERRCODE = '22023';
    END IF;
    RETURN QUERY
    SELECT d.id, d.urgency,
           EXISTS (SELECT 1 FROM ioffice.signature s
                   WHERE s.document_id = d.id AND s.status = 'pending'),
           d.symbol, d.abstract, a.name,
           coalesce((SELECT t.received_at FROM ioffice.task t
                     WHERE t.document_id = d.id AND t.status = 'open'),
                    (SELECT max(t.received_at) FROM ioffice.task t WHERE t.document_id = d.id),
                    d.created_at),
           ioffice.urgency_rank(d.urgency),
           d.state,
           (SELECT p.full_name FROM ioffice.task t JOIN ioffice.person p ON p.id = t.receiver_id
            WHERE t.document_id = d.id AND t.status = 'open')
    FROM ioffice._outgoing_tab(tab, v_me, $2, v_limit) AS picked(id)
    JOIN ioffice.document d ON d.id = picked.id
    JOIN ioffice.unit a ON a.id = d.agency_id
    -- a page: newest first; the whole list: most urgent, latest arrived first
    ORDER BY CASE WHEN v_paged THEN d.id END DESC, ioffice.urgency_rank(d.urgency) DESC, 7 DESC, d.id DESC;
END
$$;
COMMENT ON FUNCTION outgoing_list(text, bigint, int) IS 'The actor''s outgoing-document list for one of the six tabs; with after or limit, a page of it, newest first (after: the last document of the previous page)';

DROP FUNCTION incoming_list(text);
CREATE FUNCTION incoming_list(tab text, after bigint DEFAULT NULL, "limit" int DEFAULT NULL)
RETURNS TABLE (document bigint, arrival_number int, urgency text, sender text, sender_symbol text,
               sender_date date, abstract text, received_at timestamptz, deadline date,
               state text, holder text, priority int)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me bigint := ioffice.actor();
    v_limit int := $3;
    v_paged boolean := $2 IS NOT NULL OR $3 IS NOT NULL;
BEGIN
    IF tab IS NULL OR tab NOT IN ('unprocessed', 'awaiting_approval', 'in_progress', 'processed',
                                  'due', 'overdue', 'delegated', 'transferred') THEN
        RAISE EXCEPTION 'unknown tab "%"', left(tab, 60) USING ERRCODE = '22023',
              HINT = 'Tabs are unprocessed, awaiting_approval, in_progress, processed, due, overdue, delegated, transferred.';
    END IF;
    IF v_limit < 1 THEN
        RAISE EXCEPTION 'limit must be at least 1' USING ERRCODE = '22023';
    END IF;
    RETURN QUERY
    WITH picked AS (
        SELECT x.document AS id, x.deadline FROM ioffice._incoming_tab(tab, v_me, $2, v_limit) x
        WHERE NOT v_paged
        UNION ALL
        -- a page shows each document once, with its nearest deadline
        (SELECT x.document, min(x.deadline) FROM ioffice._incoming_tab(tab, v_me, $2, v_limit) x
          WHERE v_paged GROUP BY x.document ORDER BY x.document DESC LIMIT v_limit)
    )
    SELECT d.id, d.number, d.urgency,
           coalesce(sa.name, d.sender_name),
           coalesce(d.sender_symbol, src.symbol),
           coalesce(d.sender_date, src.issued_on),
           d.abstract, d.received_at, p.deadline, d.state,
           (SELECT string_agg(h.full_name, ', ' ORDER BY t.kind DESC, t.step)
              FROM ioffice.task t JOIN ioffice.person h ON h.id = t.receiver_id
             WHERE t.document_id = d.id AND t.status = 'open'),
           ioffice.urgency_rank(d.urgency)
    FROM picked p JOIN ioffice.document d ON d.id = p.id
    LEFT JOIN ioffice.unit sa ON sa.id = d.sender_agency_id
    LEFT JOIN ioffice.document src ON src.id = d.source_document_id
    -- a page: newest first; the whole list: most urgent, nearest deadline,
    -- latest arrived first
    ORDER BY CASE WHEN v_paged THEN d.id END DESC, ioffice.urgency_rank(d.urgency) DESC,
             p.deadline NULLS LAST, d.received_at DESC, d.id DESC;
END
$$;
COMMENT ON FUNCTION incoming_list(text, bigint, int) IS 'The actor''s incoming-document list for one of the dashboard''s tabs; with after or limit, a page of it, newest first (after: the last document of the previous page)';

COMMENT ON FUNCTION dashboard() IS 'The home page counters (Trang chủ) for the actor';

-- ==== incoming ====
-- Issue 17, findings 4, 6 and 8: an incoming document's received files never
-- change, its assignment stays inside the agency, its arrival date is a
-- day of the register's year not before its own date; an issued document's
-- links are frozen; a file change racing an act judges the state it left.

-- handed on by its clerk, a received document is what the leader and the
-- handlers read: its files are those it arrived with (extension/files.c;
-- they are never replaced or removed in any state).  The rules' graph check
-- runs at the end of this UPDATE rather than at commit (see "files frozen").
SET CONSTRAINTS check_graph IMMEDIATE;
UPDATE workflow_state SET files_frozen = true
 WHERE workflow = 'incoming' AND state IN ('awaiting_assignment', 'in_progress') AND builtin;
SET CONSTRAINTS check_graph DEFERRED;

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

-- link_documents: no link of a document in a final state; register_incoming:
-- the arrival date.  CREATE OR REPLACE keeps their comments and privileges.
CREATE OR REPLACE FUNCTION link_documents(doc bigint, related bigint) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor bigint := ioffice.actor();
    v_state text;
BEGIN
    PERFORM ioffice._engine_enter();
    IF doc IS NULL OR related IS NULL THEN
        RAISE EXCEPTION 'link_documents needs two documents' USING ERRCODE = '22023';
    END IF;
    PERFORM ioffice._require_document(doc);
    PERFORM ioffice._require_document(related);
    IF doc = related THEN
        RAISE EXCEPTION 'a document cannot be related to itself' USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ioffice.document d WHERE d.id = doc AND d.drafter_id = v_actor)
       AND NOT EXISTS (SELECT 1 FROM ioffice.task t
                       WHERE t.document_id = doc AND t.status = 'open' AND t.receiver_id = v_actor) THEN
        RAISE EXCEPTION 'only the drafter or the current holder may link documents'
            USING ERRCODE = '42501';
    END IF;
    -- an issued (or otherwise final) document keeps the links it had: wait
    -- for an act under way on it, then judge the state it left (the trigger
    -- on document_link says the same to every other writer)
    PERFORM 1 FROM ioffice.document d WHERE d.id = doc FOR NO KEY UPDATE;
    SELECT d.state INTO v_state FROM ioffice.document d
      JOIN ioffice.workflow_state s ON s.workflow = d.workflow AND s.state = d.state
     WHERE d.id = doc AND s.final;
    IF FOUND THEN
        RAISE EXCEPTION 'document % is %: its related documents can no longer change', doc, v_state
            USING ERRCODE = '55000',
                  DETAIL = 'A document in a final state keeps the links it was issued or closed with.',
                  HINT = 'Link the related document from a new document instead.';
    END IF;
    INSERT INTO ioffice.document_link (document_id, related_id) VALUES (doc, related)
    ON CONFLICT DO NOTHING;
    PERFORM ioffice._audit('document', doc, 'link', NULL, NULL,
                           jsonb_build_object('related', related));
    PERFORM ioffice._engine_leave();
END
$$;

CREATE OR REPLACE FUNCTION register_incoming(doc_type text, abstract text, sender text, sender_symbol text,
                                  sender_date date, details jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor bigint := ioffice.actor();
    v_agency bigint;
    v_sender_agency bigint;
    v_sender_name text;
    v_details jsonb := coalesce(details, '{}');
    v_urgency text;
    v_conf text;
    v_due date;
    v_received timestamptz := now();
    v_arrival date;
    v_register bigint;
    v_pages int;
    v_existing bigint;
    v_id bigint;
    v_number int;
BEGIN
    PERFORM ioffice._engine_enter();
    IF doc_type IS NULL OR abstract IS NULL OR sender IS NULL OR sender_symbol IS NULL
       OR sender_date IS NULL THEN
        RAISE EXCEPTION 'an incoming document needs its type, abstract, sender, the sender''s number and symbol, and its date'
            USING ERRCODE = '22023';
    END IF;
    SELECT u.agency_id INTO v_agency FROM ioffice.person p JOIN ioffice.unit u ON u.id = p.unit_id
    WHERE p.id = v_actor;
    IF NOT EXISTS (SELECT 1 FROM ioffice.person_role r
                   WHERE r.person_id = v_actor AND r.role = 'clerk' AND r.unit_id = v_agency) THEN
        RAISE EXCEPTION 'only a clerk registers incoming documents' USING ERRCODE = '42501';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ioffice.doc_type t WHERE t.code = register_incoming.doc_type) THEN
        RAISE EXCEPTION 'unknown document type "%"', doc_type USING ERRCODE = '42704';
    END IF;
    IF length(btrim(abstract)) = 0 OR length(abstract) > 500 THEN
        RAISE EXCEPTION 'the abstract must be 1 to 500 characters (it has %)', length(abstract)
            USING ERRCODE = '22023';
    END IF;
    IF length(btrim(sender)) = 0 OR length(sender) > 500 THEN
        RAISE EXCEPTION 'the sender must be an agency code or a name of 1 to 500 characters'
            USING ERRCODE = '22023';
    END IF;
    IF length(btrim(sender_symbol)) = 0 OR length(sender_symbol) > 100 THEN
        RAISE EXCEPTION 'the sender''s number and symbol must be 1 to 100 characters'
            USING ERRCODE = '22023';
    END IF;
    IF sender_date > (now() AT TIME ZONE ioffice.timezone())::date OR sender_date < '1900-01-01' THEN
        RAISE EXCEPTION 'the document''s date % is not a date it can have been issued on', sender_date
            USING ERRCODE = '22023';
    END IF;
    PERFORM ioffice._check_details(v_details,
        '{"urgency": "string", "confidentiality": "string", "due_date": "string",
          "received_at": "string", "field": "string", "comment": "string",
          "page_count": "number", "register": "number"}');
    v_urgency := coalesce(v_details->>'urgency', 'normal');
    IF v_urgency NOT IN ('normal', 'urgent', 'very_urgent', 'flash') THEN
        RAISE EXCEPTION 'unknown urgency "%"', v_urgency USING ERRCODE = '22023';
    END IF;
    v_conf := coalesce(v_details->>'confidentiality', 'normal');
    IF v_conf NOT IN ('normal', 'confidential', 'secret', 'top_secret') THEN
        RAISE EXCEPTION 'unknown confidentiality "%"', v_conf USING ERRCODE = '22023';
    END IF;
    IF length(v_details->>'field') > 200 THEN
        RAISE EXCEPTION 'details.field must be at most 200 characters' USING ERRCODE = '22023';
    END IF;
    IF length(v_details->>'comment') > 2000 THEN
        RAISE EXCEPTION 'details.comment must be at most 2000 characters' USING ERRCODE = '22023';
    END IF;
    v_due := ioffice._date_detail(v_details, 'due_date');
    v_received := ioffice._time_detail(v_details, 'received_at');
    IF v_received IS NOT NULL THEN
        IF v_received > now() THEN
            RAISE EXCEPTION 'details.received_at is in the future' USING ERRCODE = '22023';
        END IF;
    END IF;
    -- the arrival date (Ngày đến, in ioffice.timezone) is a day of the year
    -- whose register numbers it (this year's: _take_arrival), and not before
    -- the document's own date
    v_arrival := (coalesce(v_received, now()) AT TIME ZONE ioffice.timezone())::date;
    IF v_arrival < sender_date THEN
        RAISE EXCEPTION 'details.received_at is before the document''s own date'
            USING ERRCODE = '22023',
                  DETAIL = format('It arrived on %s; it is dated %s.', v_arrival, sender_date);
    END IF;
    IF extract(year FROM v_arrival)
       <> extract(year FROM (now() AT TIME ZONE ioffice.timezone())::date) THEN
        RAISE EXCEPTION 'details.received_at is not in the year of the register that numbers it'
            USING ERRCODE = '22023',
                  DETAIL = format('It arrived on %s; arrival numbers run from 1 January to 31 December, in order of receipt.',
                                  v_arrival),
                  HINT = 'A document is registered on the day it arrives.';
    END IF;
    v_pages := ioffice._whole_detail(v_details, 'page_count', 1, 100000);
    v_register := ioffice._whole_detail(v_details, 'register', 1, 9223372036854775807);

    -- the sender: an agency of this database by its code, or a name
    SELECT u.id INTO v_sender_agency FROM ioffice.unit u
    WHERE u.code = register_incoming.sender AND u.kind = 'agency';
    IF v_sender_agency IS NULL THEN
        v_sender_name := sender;
    END IF;
    SELECT d.id, d.number INTO v_existing, v_number FROM ioffice.document d
    WHERE d.direction = 'incoming' AND d.agency_id = v_agency
      AND coalesce(d.sender_agency_id::text, d.sender_name) = coalesce(v_sender_agency::text, v_sender_name)
      AND d.sender_symbol = register_incoming.sender_symbol
      AND d.sender_year = extract(year FROM register_incoming.sender_date);
    IF FOUND THEN
        RAISE EXCEPTION 'document % of % was already registered (arrival number %)',
            sender_symbol, sender, v_number
            USING ERRCODE = '23505', DETAIL = format('Incoming document %s.', v_existing);
    END IF;

    INSERT INTO ioffice.document (workflow, direction, doc_type, abstract, state, urgency,
                                  confidentiality, field, agency_id, drafting_unit_id, drafter_id,
                                  page_count, due_date, comment, sender_agency_id, sender_name,
                                  sender_symbol, sender_date, received_at)
    VALUES ('incoming', 'incoming', register_incoming.doc_type, register_incoming.abstract,
            'registered', v_urgency, v_conf, v_details->>'field', v_agency, v_agency, v_actor,
            v_pages, v_due, v_details->>'comment', v_sender_agency, v_sender_name,
            register_incoming.sender_symbol, register_incoming.sender_date, v_received)
    RETURNING id INTO v_id;
    -- the arrival number last: the register row stays locked to commit
    v_number := ioffice._take_arrival(v_id, v_register);
    PERFORM ioffice._audit('document', v_id, 'register_incoming', NULL, 'registered',
                           jsonb_build_object('arrival_number', v_number, 'sender', sender,
                                              'sender_symbol', sender_symbol,
                                              'sender_date', sender_date, 'details', v_details));
    PERFORM ioffice._engine_leave();
    RETURN v_id;
END
$$;


-- ==== signers ====
-- Issue 17, findings 1 to 3: the signer in the register is the leader who
-- approved (and signed); what was approved is frozen; delegation has limits
-- and can be revoked.

-- delegation: revocation, one at a time
ALTER TABLE delegation ADD COLUMN revoked_at timestamptz,
                       ADD COLUMN revoked_by bigint REFERENCES person;
ALTER TABLE delegation DROP CONSTRAINT delegation_check;
ALTER TABLE delegation ADD CONSTRAINT delegation_check
    CHECK (valid_until > valid_from OR (revoked_at IS NOT NULL AND valid_until >= valid_from));
-- Delegations of 0.1 may overlap: each one that overlaps an earlier one of
-- the same delegator ends before it began (an empty period, revoked by the
-- upgrade), so that one delegation at a time holds; the change is audited
-- as a direct one (trigger audit_direct) with the period it had.
DO $overlaps$
DECLARE
    v_g record;
BEGIN
    FOR v_g IN SELECT g.id, g.from_person FROM ioffice.delegation g ORDER BY g.id LOOP
        UPDATE ioffice.delegation g SET valid_until = g.valid_from, revoked_at = now()
         WHERE g.id = v_g.id
           AND EXISTS (SELECT 1 FROM ioffice.delegation e
                        WHERE e.from_person = g.from_person AND e.id < g.id
                          AND tstzrange(e.valid_from, e.valid_until)
                              && tstzrange(g.valid_from, g.valid_until));
    END LOOP;
END
$overlaps$;
ALTER TABLE delegation ADD CONSTRAINT delegation_one_at_a_time EXCLUDE USING gist
    (int8range(from_person, from_person, '[]') WITH &&, tstzrange(valid_from, valid_until) WITH &&);

-- Does person lead unit: hold the role leader (or deputy) in it or in a unit
-- above it within its agency (the chairman leads the departments)?  Who may
-- approve a document of the unit, and so sign it in the register.
CREATE FUNCTION _leads(person bigint, unit bigint) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- (PL/pgSQL for its plan kept across calls, as can_see())
    RETURN EXISTS (
        WITH RECURSIVE up (id, parent_id, agency_id, depth) AS (
            SELECT u.id, u.parent_id, u.agency_id, 1 FROM ioffice.unit u WHERE u.id = _leads.unit
            UNION ALL
            SELECT p.id, p.parent_id, p.agency_id, up.depth + 1
              FROM ioffice.unit p JOIN up ON p.id = up.parent_id
             WHERE p.agency_id = up.agency_id AND up.depth < 100)
        SELECT 1 FROM ioffice.person_role r JOIN up ON up.id = r.unit_id
         WHERE r.person_id = _leads.person AND r.role IN ('leader', 'deputy'));
END
$$;
REVOKE ALL ON FUNCTION _leads(bigint, bigint) FROM PUBLIC;

-- Approval delegation (ủy quyền duyệt): from now or later (a start up to a
-- minute in the past, an application's clock, is taken as now: the record
-- never says it began before it was made), to a leader or deputy of the
-- delegator's own unit, one at a time (constraint delegation_one_at_a_time),
-- until revoke_delegation() ends it.  Nobody approves what they drafted,
-- delegate or not (extension/act.c).
CREATE OR REPLACE FUNCTION delegate(to_login text, valid_from timestamptz, valid_until timestamptz)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_from bigint := ioffice.actor();
    v_to bigint;
    v_start timestamptz;
    v_other bigint;
    v_id bigint;
BEGIN
    PERFORM ioffice._engine_enter();
    IF to_login IS NULL OR valid_from IS NULL OR valid_until IS NULL THEN
        RAISE EXCEPTION 'delegate needs a person and a period' USING ERRCODE = '22023';
    END IF;
    IF isfinite(valid_from) IS NOT TRUE OR isfinite(valid_until) IS NOT TRUE THEN
        RAISE EXCEPTION 'a delegation is for a finite period' USING ERRCODE = '22023',
              HINT = 'Decree 30 authorisations are time-limited.';
    END IF;
    IF valid_from < now() - interval '1 minute' THEN
        RAISE EXCEPTION 'a delegation starts now or later, not in the past' USING ERRCODE = '22023',
              HINT = 'Acts already done cannot be delegated after the fact: give valid_from as now() or later.';
    END IF;
    v_start := greatest(valid_from, now());
    IF valid_until <= v_start THEN
        RAISE EXCEPTION 'the delegation must end after it starts' USING ERRCODE = '22023';
    END IF;
    SELECT p.id INTO v_to FROM ioffice.person p WHERE p.login = to_login AND p.active;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown person "%"', left(to_login, 60) USING ERRCODE = '42704';
    END IF;
    IF v_to = v_from THEN
        RAISE EXCEPTION 'a person cannot delegate to themselves' USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ioffice.person f JOIN ioffice.person_role r ON r.unit_id = f.unit_id
                   WHERE f.id = v_from AND r.person_id = v_to AND r.role IN ('leader', 'deputy')) THEN
        RAISE EXCEPTION '"%" is not a leader or deputy of the delegator''s unit', left(to_login, 60)
            USING ERRCODE = '22023',
                  DETAIL = 'Approval is delegated to a leader or deputy of the same unit only.';
    END IF;
    SELECT g.id INTO v_other FROM ioffice.delegation g
    WHERE g.from_person = v_from
      AND tstzrange(g.valid_from, g.valid_until) && tstzrange(v_start, delegate.valid_until)
    ORDER BY g.id LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'another delegation of the same person covers part of this period'
            USING ERRCODE = '55000', DETAIL = format('Delegation %s.', v_other),
                  HINT = 'One delegation at a time: revoke it with ioffice.revoke_delegation() first.';
    END IF;
    BEGIN
        INSERT INTO ioffice.delegation (from_person, to_person, valid_from, valid_until)
        VALUES (v_from, v_to, v_start, delegate.valid_until)
        RETURNING id INTO v_id;
    EXCEPTION WHEN exclusion_violation THEN
        -- a concurrent delegate() of the same person committed first
        RAISE EXCEPTION 'another delegation of the same person covers part of this period'
            USING ERRCODE = '55000',
                  HINT = 'One delegation at a time: revoke it with ioffice.revoke_delegation() first.';
    END;
    PERFORM ioffice._audit('delegation', v_id, 'delegate', NULL, NULL,
                           jsonb_build_object('to', to_login, 'valid_from', v_start,
                                              'valid_until', valid_until));
    PERFORM ioffice._engine_leave();
    RETURN v_id;
END
$$;

-- The delegator ends a delegation now (or cancels one not yet started).
CREATE FUNCTION revoke_delegation(id bigint) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor bigint := ioffice.actor();
    v_g ioffice.delegation;
BEGIN
    PERFORM ioffice._engine_enter();
    IF revoke_delegation.id IS NULL THEN
        RAISE EXCEPTION 'revoke_delegation needs a delegation' USING ERRCODE = '22023';
    END IF;
    SELECT g.* INTO v_g FROM ioffice.delegation g WHERE g.id = revoke_delegation.id FOR UPDATE;
    IF NOT FOUND OR (v_actor NOT IN (v_g.from_person, v_g.to_person) AND NOT ioffice.is_admin()) THEN
        RAISE EXCEPTION 'unknown delegation %', revoke_delegation.id USING ERRCODE = '42704';
    END IF;
    IF v_g.from_person <> v_actor THEN
        RAISE EXCEPTION 'only the person who delegated may revoke delegation %', revoke_delegation.id
            USING ERRCODE = '42501';
    END IF;
    IF v_g.revoked_at IS NOT NULL THEN
        RAISE EXCEPTION 'delegation % was already revoked', revoke_delegation.id USING ERRCODE = '55000';
    END IF;
    IF v_g.valid_until <= now() THEN
        RAISE EXCEPTION 'delegation % has already ended', revoke_delegation.id USING ERRCODE = '55000';
    END IF;
    UPDATE ioffice.delegation g
       SET revoked_at = now(), revoked_by = v_actor, valid_until = greatest(g.valid_from, now())
     WHERE g.id = revoke_delegation.id;
    PERFORM ioffice._audit('delegation', revoke_delegation.id, 'revoke', NULL, NULL,
                           jsonb_build_object('valid_from', v_g.valid_from,
                                              'valid_until_given', v_g.valid_until));
    PERFORM ioffice._engine_leave();
END
$$;
COMMENT ON FUNCTION revoke_delegation(bigint) IS
  'The delegator ends an approval delegation now (or cancels one not yet started); audited';

CREATE OR REPLACE FUNCTION create_outgoing(doc_type text, abstract text, details jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor bigint := ioffice.actor();
    v_unit bigint;
    v_agency bigint;
    v_state text;
    v_signer bigint;
    v_id bigint;
    v_related bigint[];
    v_item jsonb;
    v_recipients jsonb := '[]';
    v_details jsonb := coalesce(details, '{}');
    v_urgency text;
    v_conf text;
    v_flash_at timestamptz;
    v_due date;
    v_pages int;
    v_copies int;
BEGIN
    PERFORM ioffice._engine_enter();
    IF doc_type IS NULL OR abstract IS NULL THEN
        RAISE EXCEPTION 'a document needs a type and an abstract' USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ioffice.doc_type t WHERE t.code = create_outgoing.doc_type) THEN
        RAISE EXCEPTION 'unknown document type "%"', doc_type USING ERRCODE = '42704',
              HINT = 'Document types are the codes of table ioffice.doc_type (CV, QĐ, KH, BC, TB, TTr, GM, …).';
    END IF;
    IF length(btrim(abstract)) = 0 OR length(abstract) > 500 THEN
        RAISE EXCEPTION 'the abstract must be 1 to 500 characters (it has %)', length(abstract)
            USING ERRCODE = '22023';
    END IF;
    PERFORM ioffice._check_details(v_details,
        '{"urgency": "string", "flash_at": "string", "confidentiality": "string", "field": "string",
          "signer": "string", "comment": "string", "due_date": "string", "page_count": "number",
          "copies": "number", "recipients": "array", "related": "array"}');

    v_urgency := coalesce(v_details->>'urgency', 'normal');
    IF v_urgency NOT IN ('normal', 'urgent', 'very_urgent', 'flash', 'flash_timed') THEN
        RAISE EXCEPTION 'unknown urgency "%"', v_urgency USING ERRCODE = '22023',
              HINT = 'Urgency is normal, urgent, very_urgent, flash or flash_timed.';
    END IF;
    IF v_urgency = 'flash_timed' THEN
        IF v_details->>'flash_at' IS NULL THEN
            RAISE EXCEPTION 'urgency flash_timed needs details.flash_at' USING ERRCODE = '22023';
        END IF;
        v_flash_at := ioffice._time_detail(v_details, 'flash_at');
    ELSIF v_details->>'flash_at' IS NOT NULL THEN
        RAISE EXCEPTION 'details.flash_at only goes with urgency flash_timed' USING ERRCODE = '22023';
    END IF;
    v_conf := coalesce(v_details->>'confidentiality', 'normal');
    IF v_conf NOT IN ('normal', 'confidential', 'secret', 'top_secret') THEN
        RAISE EXCEPTION 'unknown confidentiality "%"', v_conf USING ERRCODE = '22023',
              HINT = 'Confidentiality is normal, confidential, secret or top_secret.';
    END IF;
    IF length(v_details->>'field') > 200 THEN
        RAISE EXCEPTION 'details.field must be at most 200 characters' USING ERRCODE = '22023';
    END IF;
    IF length(v_details->>'comment') > 2000 THEN
        RAISE EXCEPTION 'details.comment must be at most 2000 characters' USING ERRCODE = '22023';
    END IF;
    v_pages := ioffice._whole_detail(v_details, 'page_count', 1, 100000);
    v_copies := ioffice._whole_detail(v_details, 'copies', 1, 100000);
    v_due := ioffice._date_detail(v_details, 'due_date');
    SELECT p.unit_id, u.agency_id INTO v_unit, v_agency
    FROM ioffice.person p JOIN ioffice.unit u ON u.id = p.unit_id
    WHERE p.id = v_actor;
    -- the signer the drafter proposes: a leader of the drafting unit (or
    -- above) other than the drafter; the approval replaces it with the
    -- leader who approves (extension/act.c)
    IF v_details->>'signer' IS NOT NULL THEN
        SELECT p.id INTO v_signer FROM ioffice.person p
        WHERE p.login = v_details->>'signer' AND p.active;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'unknown signer "%"', left(v_details->>'signer', 60) USING ERRCODE = '42704';
        END IF;
        IF v_signer = v_actor OR NOT ioffice._leads(v_signer, v_unit) THEN
            RAISE EXCEPTION 'signer "%" is not a leader of the drafting unit other than the drafter',
                left(v_details->>'signer', 60)
                USING ERRCODE = '22023',
                      DETAIL = 'The signer (Người ký) is the leader who approves the document; nobody names himself.';
        END IF;
    END IF;
    IF jsonb_typeof(v_details->'recipients') = 'array' THEN
        FOR v_item IN SELECT jsonb_array_elements(v_details->'recipients') LOOP
            IF jsonb_typeof(v_item) <> 'string' OR length(v_item #>> '{}') NOT BETWEEN 1 AND 500 THEN
                RAISE EXCEPTION 'each recipient must be an agency code or a place of 1 to 500 characters'
                    USING ERRCODE = '22023';
            END IF;
            -- an agency of this database is kept with its id, a free-text place as text
            v_recipients := v_recipients || jsonb_build_array(
                coalesce((SELECT jsonb_build_object('agency', u.id, 'code', u.code, 'name', u.name)
                          FROM ioffice.unit u
                          WHERE u.code = v_item #>> '{}' AND u.kind = 'agency'),
                         jsonb_build_object('place', v_item #>> '{}')));
        END LOOP;
    END IF;
    IF jsonb_typeof(v_details->'related') = 'array' THEN
        FOR v_item IN SELECT jsonb_array_elements(v_details->'related') LOOP
            IF jsonb_typeof(v_item) <> 'number'
               OR (v_item #>> '{}')::numeric <> trunc((v_item #>> '{}')::numeric)
               OR (v_item #>> '{}')::numeric NOT BETWEEN 1 AND 9223372036854775807 THEN
                RAISE EXCEPTION 'each related document must be a document id' USING ERRCODE = '22023';
            END IF;
            IF NOT ioffice.can_see((v_item #>> '{}')::bigint) THEN
                RAISE EXCEPTION 'unknown related document %', v_item #>> '{}' USING ERRCODE = '42704';
            END IF;
            v_related := v_related || (v_item #>> '{}')::bigint;
        END LOOP;
    END IF;

    SELECT s.state INTO v_state FROM ioffice.workflow_state s
    WHERE s.workflow = 'outgoing' AND s.initial
    ORDER BY s.state LIMIT 1;

    INSERT INTO ioffice.document (workflow, doc_type, abstract, state, urgency, flash_at,
                                  confidentiality, field, agency_id, drafting_unit_id, drafter_id,
                                  signer_id, page_count, copies, recipients, due_date, comment)
    VALUES ('outgoing', create_outgoing.doc_type, create_outgoing.abstract, v_state, v_urgency,
            v_flash_at, v_conf, v_details->>'field', v_agency, v_unit, v_actor, v_signer,
            v_pages, v_copies, v_recipients, v_due, v_details->>'comment')
    RETURNING id INTO v_id;
    INSERT INTO ioffice.document_link (document_id, related_id)
    SELECT DISTINCT v_id, r FROM unnest(v_related) AS r;
    PERFORM ioffice._audit('document', v_id, 'create', NULL, v_state,
                           jsonb_build_object('doc_type', create_outgoing.doc_type,
                                              'abstract', create_outgoing.abstract,
                                              'details', v_details));
    PERFORM ioffice._engine_leave();
    RETURN v_id;
END
$$;

-- Whoever writes a document (the engine, or a role through a foreign key's
-- cascade): once approved (its state freezes the files or is final, or it
-- is a dossier's result, made signed), its signer, type and abstract are
-- what was approved and no longer change; and an outgoing document gets its
-- number only with a signer who leads a unit of its agency and did not draft
-- it.  SECURITY DEFINER: it reads the rules and roles past any privilege.
CREATE FUNCTION _document_approved() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF (NEW.signer_id IS DISTINCT FROM OLD.signer_id OR NEW.doc_type IS DISTINCT FROM OLD.doc_type
        OR NEW.abstract IS DISTINCT FROM OLD.abstract)
       AND (OLD.number IS NOT NULL OR OLD.workflow = 'dossier_result'
            OR EXISTS (SELECT 1 FROM ioffice.workflow_state s
                       WHERE s.workflow = OLD.workflow AND s.state = OLD.state
                         AND (s.files_frozen OR s.final))) THEN
        RAISE EXCEPTION 'document % is approved: its signer, type and abstract can no longer change', OLD.id
            USING ERRCODE = '55000',
                  HINT = 'What the leader approved and signed is what is issued; return it to be approved again before it is issued.';
    END IF;
    IF OLD.number IS NULL AND NEW.number IS NOT NULL
       AND (NEW.signer_id IS NULL OR NEW.signer_id = NEW.drafter_id
            OR NOT EXISTS (SELECT 1 FROM ioffice.person_role r JOIN ioffice.unit u ON u.id = r.unit_id
                           WHERE r.person_id = NEW.signer_id AND r.role IN ('leader', 'deputy')
                             AND u.agency_id = NEW.agency_id)) THEN
        RAISE EXCEPTION 'document % has no signer who may sign it', NEW.id
            USING ERRCODE = '55000',
                  DETAIL = 'The signer in the register (Người ký) is a leader of the agency who approved it, never its drafter.';
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION _document_approved() FROM PUBLIC;
CREATE TRIGGER approved_frozen BEFORE UPDATE ON document
    FOR EACH ROW WHEN (NEW.direction = 'outgoing'
                       AND (OLD.signer_id IS DISTINCT FROM NEW.signer_id
                            OR OLD.doc_type IS DISTINCT FROM NEW.doc_type
                            OR OLD.abstract IS DISTINCT FROM NEW.abstract
                            OR (OLD.number IS NULL AND NEW.number IS NOT NULL)))
    EXECUTE FUNCTION _document_approved();



-- ==== convert ====
-- Word and Excel files become PDFs before they are signed (issue 12, item
-- 1): the signing worker converts them with LibreOffice in a helper process
-- (workers/convert_jobs.c, workers/converter.c); the PDF replaces the file
-- it was made from and names it.
ALTER TABLE file ADD COLUMN converted_from bigint;
ALTER TABLE file ADD CONSTRAINT file_converted_from_check
    CHECK (converted_from IS NULL OR (converted_from = replaces_id AND kind = 'pdf'));
COMMENT ON COLUMN file.converted_from IS
  'The Word or Excel file this PDF was converted from (by the signing worker, before signing it); the PDF replaces it';

-- one row per served database: its signer's converter of Word and Excel
-- files to PDF (the helper's and its LibreOffice's pids, NULL when not
-- running), the files converted and the signatures failed in conversion
CREATE FUNCTION _converter_slots(OUT database text, OUT converter_pid int, OUT soffice_pid int,
                                 OUT conversions_done bigint, OUT conversions_failed bigint)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'ioffice_converter_slots_sql' LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION _converter_slots() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION _converter_slots() TO ioffice_admin;

CREATE OR REPLACE VIEW worker_status AS
SELECT w.database, w.pid, w.state, w.started_at, w.last_batch_at, w.batches, w.jobs_done,
       w.jobs_failed, w.deliveries, w.deliveries_failed, w.last_error, w.last_error_at,
       CASE WHEN w.database = current_database() THEN
       (SELECT count(*) FROM ioffice.signature s WHERE s.status = 'pending') END AS signatures_pending,
       CASE WHEN w.database = current_database() THEN
       (SELECT count(*) FROM ioffice.signature s WHERE s.status = 'failed') END AS signatures_failed,
       CASE WHEN w.database = current_database() THEN
       (SELECT count(*) FROM ioffice.outbox o WHERE o.status = 'pending') END AS outbox_pending,
       CASE WHEN w.database = current_database() THEN
       (SELECT count(*) FROM ioffice.outbox o
         WHERE o.status = 'pending' AND o.next_attempt_at <= now()) END AS outbox_due,
       CASE WHEN w.database = current_database() THEN
       (SELECT count(*) FROM ioffice.outbox o WHERE o.status = 'dead') END AS outbox_dead,
       CASE WHEN w.database = current_database() THEN
       (SELECT format('event %s to %s: %s', o.id, e.name, o.last_error)
          FROM ioffice.outbox o JOIN ioffice.endpoint e ON e.id = o.endpoint_id
         WHERE o.status = 'dead' ORDER BY o.id DESC LIMIT 1) END AS outbox_last_dead,
       w.signer_pid, w.signer_state, w.delivery_pid, w.delivery_state, w.delivery_started_at,
       w.connect_failures, w.next_connect_at,
       CASE WHEN w.database = current_database() THEN
       (SELECT count(*) FROM ioffice.signature s JOIN ioffice.file f ON f.id = s.file_id
         WHERE s.status = 'pending'
           AND f.kind IN ('doc', 'docx', 'xls', 'xlsx', 'odt', 'ods')) END AS conversions_pending,
       c.conversions_done, c.conversions_failed, c.converter_pid, c.soffice_pid
FROM ioffice._worker_slots() AS w
LEFT JOIN ioffice._converter_slots() AS c ON c.database = w.database;
COMMENT ON VIEW worker_status IS 'What the background workers (a signer and a deliverer per database) are doing, the current database''s queue depths (signatures, outbox, files waiting to become PDFs), the signer''s converter (LibreOffice), the last error and when';


-- ==== numbers ====
-- Issue 17 (findings 5 and 7, and the also-check): numbers follow their
-- dates, every taken number is accounted for, a registered entry is kept as
-- it was, dossier pauses and receptions bounded.  The new columns are
-- filled from what the registers already hold, inside the engine's scope so
-- that the backfill is not recorded as DBAs' hand edits, and before the
-- triggers that refuse hand edits of those columns exist.
SELECT _engine_enter();
ALTER TABLE register ADD COLUMN last_issued_on date;
ALTER TABLE document ADD COLUMN doc_type_name text;
ALTER TABLE number_taken ADD COLUMN doc_type_name text;
ALTER TABLE number_taken ADD COLUMN void_reason text CHECK (length(void_reason) BETWEEN 1 AND 500);
ALTER TABLE number_taken ADD COLUMN accounted_by bigint REFERENCES person;
ALTER TABLE number_taken ADD COLUMN accounted_at timestamptz;
ALTER TABLE number_taken ADD CONSTRAINT number_taken_used_or_void
    CHECK (document_id IS NULL OR void_reason IS NULL);
ALTER TABLE number_taken ADD CONSTRAINT number_taken_accounted
    CHECK ((accounted_at IS NULL) = (document_id IS NULL AND void_reason IS NULL));
COMMENT ON COLUMN number_taken.void_reason IS 'Why the number was not used (void_number); the number stays in the register';
-- the names the entries were registered with: today's (no earlier name is known)
UPDATE document d SET doc_type_name = t.name FROM doc_type t
 WHERE t.code = d.doc_type AND d.number IS NOT NULL AND d.direction = 'outgoing';
UPDATE number_taken n SET doc_type_name = t.name FROM doc_type t WHERE t.code = n.doc_type;
-- an outgoing register's last date: that of its last entry
UPDATE register r SET last_issued_on = x.last
  FROM (SELECT register_id, max(day) AS last FROM (
            SELECT d.register_id, d.issued_on AS day FROM document d
             WHERE d.direction = 'outgoing' AND d.number IS NOT NULL
            UNION ALL
            SELECT n.register_id, n.taken_on FROM number_taken n) e
         GROUP BY register_id) x
 WHERE x.register_id = r.id AND r.direction = 'outgoing';
SELECT _engine_leave();

CREATE OR REPLACE FUNCTION receive_dossier(procedure_code text, procedure_name text, applicant jsonb,
                                statutory_days int, details jsonb DEFAULT '{}')
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor bigint := ioffice.actor();
    v_details jsonb := coalesce(details, '{}');
    v_agency bigint;
    v_unit_code text;
    v_at timestamptz := now();
    v_day date;
    v_seq int;
    v_code text;
    v_state text;
    v_id bigint;
    v_key text;
    v_how text;
BEGIN
    PERFORM ioffice._engine_enter();
    IF procedure_code IS NULL OR procedure_name IS NULL OR applicant IS NULL
       OR statutory_days IS NULL THEN
        RAISE EXCEPTION 'receive_dossier needs a procedure code and name, an applicant and the statutory days'
            USING ERRCODE = '22023';
    END IF;
    IF procedure_code !~ '^[A-Za-z0-9._-]{1,60}$' THEN
        RAISE EXCEPTION 'procedure code "%" is not a procedure code', left(procedure_code, 60)
            USING ERRCODE = '22023', HINT = 'Procedure codes look like 2.002166.000.00.00.H41.';
    END IF;
    IF length(procedure_name) NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'the procedure name must be 1 to 1000 characters' USING ERRCODE = '22023';
    END IF;
    IF statutory_days NOT BETWEEN 0 AND 365 THEN
        RAISE EXCEPTION 'statutory_days must be from 0 to 365 working days, not %', statutory_days
            USING ERRCODE = '22023';
    END IF;

    -- the applicant: {name, phone, email, address}
    IF jsonb_typeof(applicant) <> 'object' THEN
        RAISE EXCEPTION 'applicant must be a JSON object' USING ERRCODE = '22023';
    END IF;
    FOR v_key IN SELECT jsonb_object_keys(applicant) LOOP
        IF v_key NOT IN ('name', 'phone', 'email', 'address') THEN
            RAISE EXCEPTION 'unknown applicant field "%"', v_key USING ERRCODE = '22023',
                  HINT = 'An applicant has name, phone, email and address.';
        END IF;
        IF jsonb_typeof(applicant->v_key) <> 'string' THEN
            RAISE EXCEPTION 'applicant.% must be a string', v_key USING ERRCODE = '22023';
        END IF;
    END LOOP;
    IF coalesce(length(btrim(applicant->>'name')), 0) NOT BETWEEN 1 AND 200 THEN
        RAISE EXCEPTION 'applicant.name is required (1 to 200 characters)' USING ERRCODE = '22023';
    END IF;
    IF applicant ? 'phone' AND (applicant->>'phone') !~ '^\+?[0-9][0-9 .]{5,19}$' THEN
        RAISE EXCEPTION 'applicant.phone "%" is not a phone number', left(applicant->>'phone', 40)
            USING ERRCODE = '22023';
    END IF;
    IF applicant ? 'email' AND (applicant->>'email') !~ '^[^@\s]{1,100}@[^@\s]{1,100}$' THEN
        RAISE EXCEPTION 'applicant.email "%" is not an e-mail address', left(applicant->>'email', 60)
            USING ERRCODE = '22023';
    END IF;
    IF length(applicant->>'address') > 500 THEN
        RAISE EXCEPTION 'applicant.address is longer than 500 characters' USING ERRCODE = '22023';
    END IF;

    PERFORM ioffice._check_details(v_details,
        '{"how_received": "string", "result_delivery": "string", "received_at": "string"}');
    v_how := coalesce(v_details->>'how_received', 'direct');
    IF v_how NOT IN ('direct', 'online', 'postal') THEN
        RAISE EXCEPTION 'details.how_received must be direct, online or postal' USING ERRCODE = '22023';
    END IF;
    IF length(v_details->>'result_delivery') NOT BETWEEN 1 AND 500 THEN
        RAISE EXCEPTION 'details.result_delivery must be 1 to 500 characters' USING ERRCODE = '22023';
    END IF;
    -- a dossier received earlier (paper, online out of hours) is entered with its time; never
    -- in the future, nor older than the DBA's ioffice.dossier_backdating_days (it starts the clock)
    IF v_details ? 'received_at' THEN
        v_at := coalesce(ioffice._time_detail(v_details, 'received_at'), now());
        IF v_at > now() OR v_at < greatest('2000-01-01', now() - make_interval(days => current_setting('ioffice.dossier_backdating_days')::int)) THEN
            RAISE EXCEPTION 'details.received_at must be a past time, at most % days ago (ioffice.dossier_backdating_days)', current_setting('ioffice.dossier_backdating_days') USING ERRCODE = '22023';
        END IF;
    END IF;

    -- the one-stop officer receives for their agency, whose code names the dossier
    SELECT u.agency_id, a.code INTO v_agency, v_unit_code
      FROM ioffice.person p JOIN ioffice.unit u ON u.id = p.unit_id
      JOIN ioffice.unit a ON a.id = u.agency_id WHERE p.id = v_actor;
    IF NOT EXISTS (SELECT 1 FROM ioffice.person_role r
                   WHERE r.person_id = v_actor AND r.role = 'one_stop' AND r.unit_id = v_agency) THEN
        RAISE EXCEPTION 'only a one-stop officer (bộ phận một cửa) may receive dossiers'
            USING ERRCODE = '42501';
    END IF;
    IF v_unit_code IS NULL THEN
        RAISE EXCEPTION 'the receiving agency has no agency code' USING ERRCODE = '55000',
              HINT = 'Dossier codes start with the agency code (DDD.DD.DD.LDD): set unit.code.';
    END IF;
    SELECT s.state INTO v_state FROM ioffice.workflow_state s
     WHERE s.workflow = 'dossier' AND s.initial ORDER BY s.state LIMIT 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'workflow dossier has no initial state' USING ERRCODE = '55000';
    END IF;

    -- the sequence of the unit's day: the counter row stays locked to commit
    v_day := (v_at AT TIME ZONE ioffice.timezone())::date;
    INSERT INTO ioffice.dossier_counter AS c (unit_code, day, last)
    VALUES (v_unit_code, v_day, 1)
    ON CONFLICT (unit_code, day) DO UPDATE SET last = c.last + 1
    WHERE c.last < 9999
    RETURNING c.last INTO v_seq;
    IF v_seq IS NULL THEN
        RAISE EXCEPTION 'unit % has received 9999 dossiers on %', v_unit_code, v_day
            USING ERRCODE = '54000', DETAIL = 'Dossier codes have four digits of sequence.';
    END IF;
    v_code := v_unit_code || '-' || to_char(v_day, 'YYMMDD') || '-' || lpad(v_seq::text, 4, '0');

    INSERT INTO ioffice.dossier (code, workflow, state, procedure_code, procedure_name, applicant,
                                 agency_id, unit_code, received_by, received_at, statutory_days,
                                 deadline, how_received, result_delivery)
    VALUES (v_code, 'dossier', v_state, procedure_code, procedure_name, applicant,
            v_agency, v_unit_code, v_actor, v_at, statutory_days,
            ioffice.add_working_days(v_at, statutory_days), v_how, v_details->>'result_delivery')
    RETURNING id INTO v_id;
    -- the receiving officer holds it first
    INSERT INTO ioffice.dossier_task (dossier_id, step, action, sender_id, request, receiver_id, received_at)
    VALUES (v_id, 1, 'receive', v_actor, 'Tiếp nhận hồ sơ', v_actor, v_at);

    PERFORM ioffice._audit('dossier', v_id, 'receive', NULL, v_state,
                           jsonb_build_object('code', v_code, 'procedure_code', procedure_code,
                                              'statutory_days', statutory_days,
                                              'how_received', v_how),
                           NULL, 'dossier:' || v_id);
    PERFORM ioffice._emit('dossier.status', ioffice._dossier_event(v_id));
    PERFORM ioffice._engine_leave();
    RETURN v_code;
END
$$;


-- ---------------------------------------------------------------------------
-- Every number accounted for; a register entry, once made, kept as it was
-- (issue 17)
-- ---------------------------------------------------------------------------

-- A number taken with take_number() and not used: its taker (a clerk of the
-- register's agency) voids it with a reason.  The number stays in the
-- register (gapless), its entry says it was voided and why; the act is in the
-- audit trail of the register.  A number used by the document it served is
-- accounted for by import_issued(payload.number).
CREATE FUNCTION void_number(register bigint, number int, reason text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor bigint := ioffice.actor();
    v_agency bigint;
    v_symbol text;
    v_done boolean;
    v_secret boolean;
    v_clerk boolean;
BEGIN
    PERFORM ioffice._engine_enter();
    IF register IS NULL OR number IS NULL THEN
        RAISE EXCEPTION 'void_number needs a register and a number' USING ERRCODE = '22023';
    END IF;
    IF reason IS NULL OR btrim(reason) = '' THEN
        RAISE EXCEPTION 'void_number needs the reason the number was not used' USING ERRCODE = '22023';
    END IF;
    IF length(reason) > 500 THEN
        RAISE EXCEPTION 'the reason is longer than 500 characters' USING ERRCODE = '22023';
    END IF;
    -- the number's row is locked: an import using it waits, then finds it voided
    SELECT r.agency_id, n.symbol, n.document_id IS NOT NULL OR n.void_reason IS NOT NULL, r.confidential
      INTO v_agency, v_symbol, v_done, v_secret
      FROM ioffice.number_taken n JOIN ioffice.register r ON r.id = n.register_id
     WHERE n.register_id = void_number.register AND n.number = void_number.number
       FOR UPDATE OF n;
    -- a register's numbers are its agency's clerks' (a confidential one's
    -- are not even named to others)
    v_clerk := EXISTS (SELECT 1 FROM ioffice.person_role pr
                       WHERE pr.person_id = v_actor AND pr.role = 'clerk' AND pr.unit_id = v_agency);
    IF v_agency IS NULL OR (v_secret AND NOT v_clerk) THEN
        RAISE EXCEPTION 'number % of register % was not taken with take_number', number, register
            USING ERRCODE = '42704';
    END IF;
    IF NOT v_clerk THEN
        RAISE EXCEPTION 'only a clerk of the register''s agency may void its numbers'
            USING ERRCODE = '42501';
    END IF;
    IF v_done THEN
        RAISE EXCEPTION 'number % is already accounted for (used or voided)', v_symbol
            USING ERRCODE = '55000';
    END IF;
    UPDATE ioffice.number_taken n
       SET void_reason = void_number.reason, accounted_by = v_actor, accounted_at = now()
     WHERE n.register_id = void_number.register AND n.number = void_number.number;
    PERFORM ioffice._audit('register', register, 'void_number', NULL, NULL,
                           jsonb_build_object('number', number, 'symbol', v_symbol,
                                              'reason', reason),
                           NULL, NULL);
    PERFORM ioffice._engine_leave();
END
$$;
COMMENT ON FUNCTION void_number(bigint, int, text) IS
  'A clerk voids a number taken with take_number and not used, with the reason; it stays in the register';

-- The numbers taken with take_number() that no document carries and nobody
-- voided: what the register's clerks must still account for.  security_invoker:
-- the row-level security of number_taken and register applies (a confidential
-- register's numbers are seen by its agency's clerks only).
CREATE VIEW numbers_unaccounted WITH (security_invoker = true) AS
SELECT r.agency_id, n.register_id, r.code AS register_code, r.year, n.number, n.symbol,
       n.doc_type, n.taken_on, n.taken_at, p.login AS taken_by, r.confidential
FROM ioffice.number_taken n
JOIN ioffice.register r ON r.id = n.register_id
JOIN ioffice.person p ON p.id = n.taken_by
WHERE n.document_id IS NULL AND n.void_reason IS NULL;
COMMENT ON VIEW numbers_unaccounted IS
  'Numbers taken with take_number that no document carries and nobody voided (void_number)';
GRANT SELECT ON numbers_unaccounted TO PUBLIC;

-- A document's register entry, once it has its number, stays what was
-- registered, whoever writes the row: the engine, a role with the privilege,
-- or a foreign key's cascade (a DBA renaming a document type's code).  For
-- an outgoing document, the columns of the outgoing register and of its
-- identifier; for an incoming one, its number and register.
CREATE FUNCTION _register_entry_frozen() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF (OLD.direction, OLD.doc_type, OLD.register_id, OLD.register_year, OLD.number)
           IS DISTINCT FROM (NEW.direction, NEW.doc_type, NEW.register_id, NEW.register_year, NEW.number)
       OR (OLD.direction = 'outgoing'
           AND (OLD.doc_type_name, OLD.abstract, OLD.signer_id, OLD.agency_id, OLD.drafting_unit_id,
                OLD.symbol, OLD.issued_on, OLD.issued_at, OLD.identifier,
                OLD.recipients, OLD.copies)
               IS DISTINCT FROM
               (NEW.doc_type_name, NEW.abstract, NEW.signer_id, NEW.agency_id, NEW.drafting_unit_id,
                NEW.symbol, NEW.issued_on, NEW.issued_at, NEW.identifier,
                NEW.recipients, NEW.copies)) THEN
        RAISE EXCEPTION 'document % is entered in its register as number %: its register entry cannot change',
              OLD.id, coalesce(OLD.symbol, OLD.number::text)
            USING ERRCODE = '55000',
                  DETAIL = 'Type, abstract, signer, number, symbol, date and recipients are what was registered.';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER register_entry_frozen BEFORE UPDATE ON document
    FOR EACH ROW WHEN (OLD.number IS NOT NULL) EXECUTE FUNCTION _register_entry_frozen();

-- What a DBA (ioffice_admin writes register, doc_type and workflow_state) may
-- no longer change once numbers were given.  SECURITY DEFINER: the checks
-- read the documents past row-level security.
--   register: the counter, its audit chain and last date are the engine's
--   alone (a counter set by hand skips or repeats numbers); the identity of
--   a register that gave numbers (agency, direction, code, year, series
--   suffix) is in its entries; and a confidential register that numbered
--   something stays confidential (its entries would be shown to readers).
--   A new register starts at 1 (a dump being restored, by a superuser with
--   check_function_bodies off, brings its counters).
CREATE FUNCTION _register_guard() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF (NEW.next_number, NEW.numbers_seq) <> (1, 0)
           OR (NEW.numbers_prev, NEW.numbers_head, NEW.last_issued_on) IS DISTINCT FROM (NULL, NULL, NULL)
        THEN
            IF current_setting('check_function_bodies') = 'off'
               AND (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = session_user) THEN
                RETURN NEW;
            END IF;
            RAISE EXCEPTION 'a new register starts at number 1' USING ERRCODE = '42501',
                  HINT = 'Numbers are taken by issue and take_number, never set by hand.';
        END IF;
        RETURN NEW;
    END IF;
    IF (OLD.next_number, OLD.numbers_seq, OLD.numbers_prev, OLD.numbers_head, OLD.last_issued_on)
           IS DISTINCT FROM
       (NEW.next_number, NEW.numbers_seq, NEW.numbers_prev, NEW.numbers_head, NEW.last_issued_on) THEN
        RAISE EXCEPTION 'the counter of register % is written by the engine only', OLD.id
            USING ERRCODE = '42501',
                  HINT = 'Numbers are taken by issue and take_number, never set by hand.';
    END IF;
    IF OLD.next_number > 1
       OR EXISTS (SELECT 1 FROM ioffice.document d WHERE d.register_id = OLD.id)
       OR EXISTS (SELECT 1 FROM ioffice.number_taken n WHERE n.register_id = OLD.id) THEN
        IF (OLD.agency_id, OLD.direction, OLD.code, OLD.year, OLD.symbol_suffix)
               IS DISTINCT FROM (NEW.agency_id, NEW.direction, NEW.code, NEW.year, NEW.symbol_suffix)
           OR (OLD.confidential AND NOT NEW.confidential) THEN
            RAISE EXCEPTION 'register % has given numbers: its agency, direction, code, year, series and secrecy are in its entries',
                  OLD.id
                USING ERRCODE = '55000',
                      HINT = 'Add a new register for the new series; its name and document types may change.';
        END IF;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER register_guard BEFORE INSERT OR UPDATE ON register
    FOR EACH ROW WHEN (_outside_engine()) EXECUTE FUNCTION _register_guard();

--   doc_type: the code of a type that registers hold (a document numbered
--   or a number taken under it) cannot change: its cascade would rewrite
--   them.  Its name may: entries keep the name they were registered with.
CREATE FUNCTION _doc_type_guard() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF OLD.code IS DISTINCT FROM NEW.code
       AND (EXISTS (SELECT 1 FROM ioffice.document d
                    WHERE d.doc_type = OLD.code AND d.number IS NOT NULL)
            OR EXISTS (SELECT 1 FROM ioffice.number_taken n WHERE n.doc_type = OLD.code)) THEN
        RAISE EXCEPTION 'document type % is in the registers: its code cannot change', OLD.code
            USING ERRCODE = '55000',
                  HINT = 'Add a type with the new code; rename this one''s name if needed.';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER doc_type_guard BEFORE UPDATE ON doc_type
    FOR EACH ROW EXECUTE FUNCTION _doc_type_guard();

--   workflow_state: a state holding numbered documents keeps its name (its
--   cascade would move them), and stays final, and keeps its files frozen
--   (made editable, an issued document's files could be replaced).
CREATE FUNCTION _workflow_state_guard() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF ((OLD.workflow, OLD.state) IS DISTINCT FROM (NEW.workflow, NEW.state)
        OR (OLD.final AND NOT NEW.final)
        OR (OLD.files_frozen AND NOT NEW.files_frozen))
       AND EXISTS (SELECT 1 FROM ioffice.document d
                   WHERE d.workflow = OLD.workflow AND d.state = OLD.state AND d.number IS NOT NULL) THEN
        RAISE EXCEPTION 'state % of workflow % holds documents entered in a register', OLD.state, OLD.workflow
            USING ERRCODE = '55000',
                  DETAIL = 'Its name, its being final and its frozen files are what those documents were registered under.',
                  HINT = 'Labels may change; add a new state for new documents.';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER workflow_state_guard BEFORE UPDATE ON workflow_state
    FOR EACH ROW EXECUTE FUNCTION _workflow_state_guard();


-- ==== pdf_sign ====
-- PDF signatures (PAdES) are embedded: the signed PDF is a new version of
-- the file, which the signature row names.
ALTER TABLE signature ADD COLUMN signed_file_id bigint REFERENCES file;
CREATE UNIQUE INDEX signature_signed_file_idx ON signature (signed_file_id);
-- verify() reports embedded signatures with their revision and what came after
DROP FUNCTION verify(bigint);
CREATE FUNCTION verify(file bigint)
    RETURNS TABLE (signer text, kind text, signed_at timestamptz, subject text, valid boolean, reason text,
                   revision int, after_signing text)
    AS 'MODULE_PATHNAME', 'ioffice_verify'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION verify(bigint) IS
  'Every signature on a file, detached or embedded in a PDF (revision, and what later revisions added: none, signatures, or content), checked against the registered trust anchors and revocation lists (Kiểm tra VB đã ký)';
-- the images drawn in PDF signatures (sql/parts/45_signature_images.sql)

-- Images of signatures (Decree 30, Appendix I, II.7d and 8): a person's
-- handwritten signature (blue, transparent PNG), centred in the signature
-- block of what they sign; an agency's seal (red, transparent PNG) at its
-- real diameter, covering the left third of the leader's signature image.
-- Drawn by the PDF helper into the signature's widget (its appearance).
CREATE TABLE signature_image (
    person_id   bigint PRIMARY KEY REFERENCES person,
    png         bytea NOT NULL,
    set_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE signature_image IS 'Handwritten signature images (transparent PNG, blue) drawn in a person''s PDF signatures';
CREATE TABLE seal_image (
    agency_id   bigint PRIMARY KEY REFERENCES unit,
    png         bytea NOT NULL,
    diameter_mm numeric NOT NULL CHECK (diameter_mm BETWEEN 10 AND 100),
    set_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE seal_image IS 'Seal images (transparent PNG, red) of agencies with their real diameter, drawn at real size in the organisation''s PDF signatures';
SELECT pg_catalog.pg_extension_config_dump('signature_image', '');
SELECT pg_catalog.pg_extension_config_dump('seal_image', '');

-- A PNG as the PDF helper will draw it: the signature, an IHDR chunk first
-- with a width and height from 1 to 4096 pixels, at most 1 MB; WHAT names
-- the image in the message.  (The image is decoded only by the PDF helper,
-- outside the server; this only refuses at once what it could not draw.)
CREATE FUNCTION _check_png(png bytea, what text) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_width bigint;
    v_height bigint;
BEGIN
    IF png IS NULL OR length(png) < 33 OR substring(png FROM 1 FOR 8) <> '\x89504e470d0a1a0a'::bytea
       OR substring(png FROM 13 FOR 4) <> '\x49484452'::bytea THEN
        RAISE EXCEPTION '% must be a PNG', what USING ERRCODE = '22023',
              DETAIL = 'A PNG starts with its signature and an IHDR chunk.';
    END IF;
    IF length(png) > 1048576 THEN
        RAISE EXCEPTION '% must be at most 1 MB', what USING ERRCODE = '22023';
    END IF;
    v_width := (get_byte(png, 16)::bigint << 24) | (get_byte(png, 17) << 16) | (get_byte(png, 18) << 8) | get_byte(png, 19);
    v_height := (get_byte(png, 20)::bigint << 24) | (get_byte(png, 21) << 16) | (get_byte(png, 22) << 8) | get_byte(png, 23);
    IF v_width NOT BETWEEN 1 AND 4096 OR v_height NOT BETWEEN 1 AND 4096 THEN
        RAISE EXCEPTION '% is % x % pixels', what, v_width, v_height USING ERRCODE = '22023',
              HINT = 'Scan it at 1 to 4096 pixels a side.';
    END IF;
END
$$;
REVOKE ALL ON FUNCTION _check_png(bytea, text) FROM PUBLIC;

CREATE FUNCTION set_signature_image(login text, png bytea) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_person bigint;
BEGIN
    PERFORM ioffice._engine_enter();
    PERFORM ioffice._check_png(png, 'a signature image');
    SELECT p.id INTO v_person FROM ioffice.person p WHERE p.login = set_signature_image.login;
    IF v_person IS NULL THEN
        RAISE EXCEPTION 'unknown person %', left(set_signature_image.login, 60) USING ERRCODE = '42704';
    END IF;
    INSERT INTO ioffice.signature_image (person_id, png) VALUES (v_person, png)
    ON CONFLICT (person_id) DO UPDATE SET png = EXCLUDED.png, set_at = now();
    PERFORM ioffice._audit('person', v_person, 'set_signature_image', NULL, NULL,
                           jsonb_build_object('sha256', encode(sha256(png), 'hex')));
    PERFORM ioffice._engine_leave();
END
$$;

CREATE FUNCTION set_seal_image(agency bigint, png bytea, diameter_mm numeric) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM ioffice._engine_enter();
    PERFORM ioffice._check_png(png, 'a seal image');
    IF diameter_mm IS NULL OR diameter_mm NOT BETWEEN 10 AND 100 THEN
        RAISE EXCEPTION 'a seal''s diameter is from 10 to 100 mm' USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ioffice.unit u WHERE u.id = set_seal_image.agency AND u.kind = 'agency') THEN
        RAISE EXCEPTION 'unknown agency %', set_seal_image.agency USING ERRCODE = '42704';
    END IF;
    INSERT INTO ioffice.seal_image (agency_id, png, diameter_mm)
    VALUES (set_seal_image.agency, png, set_seal_image.diameter_mm)
    ON CONFLICT (agency_id) DO UPDATE SET png = EXCLUDED.png, diameter_mm = EXCLUDED.diameter_mm,
                                          set_at = now();
    PERFORM ioffice._audit('unit', set_seal_image.agency, 'set_seal_image', NULL, NULL,
                           jsonb_build_object('sha256', encode(sha256(png), 'hex'),
                                              'diameter_mm', set_seal_image.diameter_mm));
    PERFORM ioffice._engine_leave();
END
$$;
REVOKE ALL ON FUNCTION set_signature_image(text, bytea) FROM PUBLIC;
REVOKE ALL ON FUNCTION set_seal_image(bigint, bytea, numeric) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION set_signature_image(text, bytea) TO ioffice_admin;
GRANT EXECUTE ON FUNCTION set_seal_image(bigint, bytea, numeric) TO ioffice_admin;

-- ==== reports ====
-- the open tasks of a document with their deadlines: what a report of the
-- overdue ones joins to (without it the planner AND-ed a whole partial
-- index of open tasks into every document's lookup)
CREATE INDEX task_open_deadline_idx ON task (document_id, deadline) WHERE status = 'open';
-- dossier_due: the unfinished ones near their deadline found by the index
-- of unfinished deadlines (a province's whole list of open dossiers was
-- tested one by one)
CREATE OR REPLACE VIEW dossier_due WITH (security_invoker = true) AS
SELECT d.code, d.procedure_code, d.procedure_name, d.applicant->>'name' AS applicant,
       d.state, s.code AS status, s.name AS status_name,
       d.received_at, d.deadline,
       CASE WHEN d.deadline < now() THEN 'overdue' ELSE 'due' END AS due_status,
       ioffice.working_days_between(now(), d.deadline) AS working_days_left,
       h.login AS holder
FROM ioffice.dossier d
JOIN ioffice.workflow_state ws ON ws.workflow = d.workflow AND ws.state = d.state
JOIN ioffice.dossier_state_status x ON x.workflow = d.workflow AND x.state = d.state
JOIN ioffice.dossier_status s ON s.code = x.status
LEFT JOIN ioffice.dossier_task t ON t.dossier_id = d.id AND t.status = 'open'
LEFT JOIN ioffice.person h ON h.id = t.receiver_id
WHERE NOT ws.final AND d.finished_at IS NULL AND d.paused_at IS NULL
  -- a bound the index of unfinished deadlines answers, computed once: what
  -- is due within N working days ends before N + 1 working days from now
  -- (regress dossier_due_bound proves it), so that the test below is made
  -- only on the dossiers near their deadline, not on every open one
  AND d.deadline < ioffice.add_working_days(now(), ioffice._due_soon_days() + 1)
  AND (d.deadline < now()
       OR ioffice.working_days_between(now(), d.deadline) <= ioffice._due_soon_days());
COMMENT ON VIEW dossier_due IS 'Unfinished dossiers due soon (ioffice.due_soon_days working days) or overdue';
-- the document policy tests a clerk's agencies before the documents of
-- the person's tasks (an OR is tested in order, an InitPlan computed when
-- first needed)
ALTER POLICY visible ON document
    USING (drafter_id = (SELECT ioffice.current_person())
           OR agency_id = ANY ((SELECT ioffice._clerk_agencies())::bigint[])
           OR id = ANY ((SELECT ioffice._task_documents())::bigint[]));

-- ==== leftovers ====
-- Issue 17 (what ioffice_admin's edits do to issued entries): the outgoing
-- register keeps the signer's and the drafting unit's names it was entered
-- with (an admin may correct people's full_name; a unit may be renamed).
-- The numbered entries get today's names (no earlier one is known), inside
-- the engine's scope (not recorded as a DBA's hand edits) and before the
-- trigger that freezes those columns compares them.
SELECT _engine_enter();
ALTER TABLE document ADD COLUMN signer_name text;
ALTER TABLE document ADD COLUMN drafting_unit_name text;
ALTER TABLE number_taken ADD COLUMN drafting_unit_name text;
UPDATE document d
   SET signer_name = (SELECT p.full_name FROM person p WHERE p.id = d.signer_id),
       drafting_unit_name = (SELECT u.name FROM unit u WHERE u.id = d.drafting_unit_id)
 WHERE d.number IS NOT NULL AND d.direction = 'outgoing';
UPDATE number_taken n SET drafting_unit_name = u.name FROM unit u WHERE u.id = n.drafting_unit_id;
SELECT _engine_leave();

CREATE OR REPLACE VIEW outgoing_register WITH (security_invoker = true) AS
SELECT d.agency_id, d.register_id, r.code AS register_code, d.register_year AS year,
       d.number, d.symbol, d.issued_on, d.doc_type,
       coalesce(d.doc_type_name, t.name) || ' ' || d.abstract AS type_and_abstract,
       coalesce(d.signer_name, s.full_name) AS signer,
       (SELECT string_agg(coalesce(e->>'name', e->>'place'), '; ')
          FROM jsonb_array_elements(d.recipients) AS e) AS recipients,
       coalesce(d.drafting_unit_name, du.name) AS archive_unit,
       d.copies,
       (d.issued_at AT TIME ZONE ioffice.timezone())::date AS sent_on,
       NULL::text AS receipt,
       d.comment AS note,
       r.confidential OR d.confidentiality <> 'normal' AS confidential,
       d.identifier,
       d.id AS document_id
FROM ioffice.document d
JOIN ioffice.register r ON r.id = d.register_id
JOIN ioffice.doc_type t ON t.code = d.doc_type
JOIN ioffice.unit du ON du.id = d.drafting_unit_id
LEFT JOIN ioffice.person s ON s.id = d.signer_id
WHERE d.direction = 'outgoing' AND d.number IS NOT NULL
UNION ALL
SELECT r.agency_id, n.register_id, r.code, r.year,
       n.number, n.symbol, n.taken_on, n.doc_type,
       coalesce(n.doc_type_name, t.name), NULL, NULL, coalesce(n.drafting_unit_name, du.name),
       NULL, NULL, NULL,
       CASE WHEN n.void_reason IS NULL THEN 'số lấy từ hệ thống khác'
            ELSE 'số không sử dụng, đã hủy: ' || n.void_reason END,
       r.confidential, NULL, NULL
FROM ioffice.number_taken n
JOIN ioffice.register r ON r.id = n.register_id
JOIN ioffice.doc_type t ON t.code = n.doc_type
LEFT JOIN ioffice.unit du ON du.id = n.drafting_unit_id
WHERE n.document_id IS NULL;

CREATE OR REPLACE FUNCTION _register_entry_frozen() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF (OLD.direction, OLD.doc_type, OLD.register_id, OLD.register_year, OLD.number)
           IS DISTINCT FROM (NEW.direction, NEW.doc_type, NEW.register_id, NEW.register_year, NEW.number)
       OR (OLD.direction = 'outgoing'
           AND (OLD.doc_type_name, OLD.abstract, OLD.signer_id, OLD.signer_name,
                OLD.agency_id, OLD.drafting_unit_id, OLD.drafting_unit_name,
                OLD.symbol, OLD.issued_on, OLD.issued_at, OLD.identifier,
                OLD.recipients, OLD.copies)
               IS DISTINCT FROM
               (NEW.doc_type_name, NEW.abstract, NEW.signer_id, NEW.signer_name,
                NEW.agency_id, NEW.drafting_unit_id, NEW.drafting_unit_name,
                NEW.symbol, NEW.issued_on, NEW.issued_at, NEW.identifier,
                NEW.recipients, NEW.copies)) THEN
        RAISE EXCEPTION 'document % is entered in its register as number %: its register entry cannot change',
              OLD.id, coalesce(OLD.symbol, OLD.number::text)
            USING ERRCODE = '55000',
                  DETAIL = 'Type, abstract, signer, number, symbol, date and recipients are what was registered.';
    END IF;
    RETURN NEW;
END
$$;

-- ==== copies ====

-- ---------------------------------------------------------------------------
-- Electronic copies (Decree 30 art. 25-27; appendix I part II; appendix III)
-- ---------------------------------------------------------------------------

-- A copy is a document of its own (its number, its date, the organisation's
-- signature), and it says which document it copies and how: a column rather
-- than a document_link row, because a link is symmetric and untyped ("related
-- documents") and cannot tell the original from the copy nor the kind.
-- No foreign key to this table (see unit.parent_id: pg_dump warns that a
-- data-only dump may not restore): copy_document is the only writer, and
-- documents are never deleted.
ALTER TABLE document ADD COLUMN copy_of bigint;
ALTER TABLE document ADD COLUMN copy_kind text CHECK (copy_kind IN ('SY', 'SL', 'TrS'));
ALTER TABLE document ADD CONSTRAINT document_copy_check CHECK ((copy_of IS NULL) = (copy_kind IS NULL));
CREATE INDEX document_copy_of_idx ON document (copy_of) WHERE copy_of IS NOT NULL;
COMMENT ON COLUMN document.copy_of IS 'The document this one is a copy of (copy_document)';
COMMENT ON COLUMN document.copy_kind IS 'The kind of copy: SY sao y, SL sao lục, TrS trích sao';

-- A clerk of the agency copies an issued document of the agency, or an
-- incoming one it registered.  The copies of an agency are numbered in one
-- series per year for all kinds ("được đánh chung cho các loại bản sao",
-- appendix I part II.1c): the register 'BANSAO' of the year, made on first use;
-- the symbol is number/kind-agency (05/SY-VP).  Its doc_types is empty, so no
-- ordinary issue ever picks it.  The copy carries the original's current
-- files, and the organisation's signature of each is queued for the worker.
CREATE FUNCTION copy_document(doc bigint, kind text, options jsonb DEFAULT '{}') RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor bigint := ioffice.actor();
    v_today date := (now() AT TIME ZONE ioffice.timezone())::date;
    v_year int := extract(year FROM (now() AT TIME ZONE ioffice.timezone())::date);
    v_orig ioffice.document;
    v_agency ioffice.unit;
    v_register bigint;
    v_number int;
    v_symbol text;
    v_excerpt text;
    v_copy bigint;
    v_files int;
    v_seals int;
    v_label text;
    v_kind text := copy_document.kind;
BEGIN
    PERFORM ioffice._engine_enter();
    IF doc IS NULL THEN
        RAISE EXCEPTION 'copy_document needs a document' USING ERRCODE = '22023';
    END IF;
    v_label := CASE v_kind WHEN 'SY' THEN 'SAO Y' WHEN 'SL' THEN 'SAO LỤC' WHEN 'TrS' THEN 'TRÍCH SAO' END;
    IF v_label IS NULL THEN
        RAISE EXCEPTION 'unknown kind of copy "%"', pg_catalog.left(coalesce(v_kind, ''), 60)
            USING ERRCODE = '22023', HINT = 'Kinds are SY (sao y), SL (sao lục) and TrS (trích sao).';
    END IF;
    IF options IS NULL OR jsonb_typeof(options) <> 'object' THEN
        RAISE EXCEPTION 'options must be a JSON object' USING ERRCODE = '22023';
    END IF;
    -- a trích sao reproduces a part of the original (art. 25.3b): which part
    IF v_kind = 'TrS' THEN
        IF jsonb_typeof(options -> 'excerpt') IS DISTINCT FROM 'string'
           OR btrim(options ->> 'excerpt') = '' THEN
            RAISE EXCEPTION 'a trích sao needs options.excerpt, the part of the document it copies'
                USING ERRCODE = '22023';
        END IF;
        v_excerpt := options ->> 'excerpt';
        IF length(v_excerpt) > 500 THEN
            RAISE EXCEPTION 'the excerpt is longer than 500 characters' USING ERRCODE = '22023';
        END IF;
    ELSIF options ? 'excerpt' THEN
        RAISE EXCEPTION 'options.excerpt goes with a trích sao (TrS) only' USING ERRCODE = '22023';
    END IF;

    SELECT * INTO v_orig FROM ioffice.document d WHERE d.id = doc FOR SHARE;
    -- a document of another agency is not named to this one
    IF NOT FOUND OR NOT EXISTS (SELECT 1 FROM ioffice.person_role pr
                                WHERE pr.person_id = v_actor AND pr.unit_id = v_orig.agency_id) THEN
        RAISE EXCEPTION 'document % not found', doc USING ERRCODE = '42704';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ioffice.person_role pr
                   WHERE pr.person_id = v_actor AND pr.role = 'clerk'
                     AND pr.unit_id = v_orig.agency_id) THEN
        RAISE EXCEPTION 'only a clerk of the agency makes copies of its documents'
            USING ERRCODE = '42501';
    END IF;
    -- copies of state secrets follow the law on their protection (art. 27.2)
    IF v_orig.confidentiality <> 'normal' THEN
        RAISE EXCEPTION 'a confidential document is not copied here'
            USING ERRCODE = '42501', DETAIL = 'Decree 30 art. 27.2: the law on state secrets applies.';
    END IF;
    IF (v_orig.direction = 'outgoing' AND v_orig.issued_at IS NULL)
       OR (v_orig.direction = 'incoming' AND v_orig.number IS NULL) THEN
        RAISE EXCEPTION 'document % is not issued or registered yet', doc USING ERRCODE = '55000';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ioffice.file f WHERE f.document_id = doc
                   AND f.superseded_at IS NULL AND f.removed_at IS NULL) THEN
        RAISE EXCEPTION 'document % has no file to copy', doc USING ERRCODE = '55000';
    END IF;
    SELECT * INTO v_agency FROM ioffice.unit u WHERE u.id = v_orig.agency_id;

    -- the year's register of copies; its row lock keeps the numbers gapless
    INSERT INTO ioffice.register (agency_id, direction, code, name, doc_types, year)
    VALUES (v_agency.id, 'outgoing', 'BANSAO', 'Sổ đăng ký bản sao', '{}', v_year)
    ON CONFLICT (agency_id, direction, code, year) DO NOTHING;
    UPDATE ioffice.register r SET next_number = next_number + 1,
           last_issued_on = greatest(r.last_issued_on, v_today)
     WHERE r.agency_id = v_agency.id AND r.direction = 'outgoing' AND r.code = 'BANSAO'
       AND r.year = v_year
    RETURNING r.id, r.next_number - 1 INTO v_register, v_number;
    v_symbol := ioffice.format_number(v_number) || '/' || v_kind || '-' || v_agency.abbr;

    INSERT INTO ioffice.document (workflow, direction, doc_type, abstract, state, agency_id,
                                  drafting_unit_id, drafter_id, register_id, register_year,
                                  number, symbol, issued_on, issued_at, doc_type_name,
                                  drafting_unit_name, copy_of, copy_kind, comment)
    SELECT 'outgoing', 'outgoing', v_orig.doc_type,
           pg_catalog.left(v_label || ' ' || coalesce(v_orig.symbol, v_orig.sender_symbol, '')
                           || ': ' || v_orig.abstract, 500),
           'draft', v_agency.id, v_agency.id, v_actor, v_register, v_year, v_number, v_symbol,
           v_today, now(), t.name, v_agency.name, doc, v_kind, v_excerpt
      FROM ioffice.doc_type t WHERE t.code = v_orig.doc_type
    RETURNING id INTO v_copy;

    INSERT INTO ioffice.file (document_id, name, kind, size, sha256, content, uploaded_by)
    SELECT v_copy, f.name, f.kind, f.size, f.sha256, f.content, v_actor
      FROM ioffice.file f
     WHERE f.document_id = doc AND f.superseded_at IS NULL AND f.removed_at IS NULL
     ORDER BY f.id;
    GET DIAGNOSTICS v_files = ROW_COUNT;
    -- made as a draft to take its files (an issued document's files are
    -- final), then issued at once: nobody saw it in between
    UPDATE ioffice.document d SET state = 'issued' WHERE d.id = v_copy;

    -- the organisation's signature, without image, says the kind of copy,
    -- the copying agency and the time (appendix I part II.3): the worker
    -- writes options.copy.reason as the signature's /Reason, its time is /M
    INSERT INTO ioffice.signature (document_id, file_id, signer_id, kind, options)
    SELECT v_copy, f.id, v_actor, 'organisation',
           jsonb_build_object('copy', jsonb_build_object('kind', v_kind, 'label', v_label,
                                                         'agency', v_agency.name,
                                                         'symbol', v_symbol,
                                                         'reason', v_label || ' - ' || v_agency.name
                                                                   || ' - Số: ' || v_symbol))
      FROM ioffice.file f WHERE f.document_id = v_copy;
    GET DIAGNOSTICS v_seals = ROW_COUNT;

    PERFORM ioffice._audit('document', v_copy, 'copy', NULL, 'issued',
                           jsonb_build_object('copy_of', doc, 'kind', v_kind, 'number', v_number,
                                              'symbol', v_symbol, 'register', v_register,
                                              'files', v_files, 'seals_queued', v_seals)
                           || CASE WHEN v_excerpt IS NULL THEN '{}'::jsonb
                                   ELSE jsonb_build_object('excerpt', v_excerpt) END,
                           NULL, NULL);
    PERFORM ioffice._audit('document', doc, 'copied', v_orig.state, v_orig.state,
                           jsonb_build_object('copy', v_copy, 'kind', v_kind, 'symbol', v_symbol),
                           NULL, NULL);
    PERFORM ioffice._wake_worker();
    PERFORM ioffice._engine_leave();
    RETURN v_copy;
END
$$;
COMMENT ON FUNCTION copy_document(bigint, text, jsonb) IS
  'A clerk makes an electronic copy (SY sao y, SL sao lục, TrS trích sao) of an issued or registered document; returns the copy';

-- ==== dashboard_counts ====
-- ---------------------------------------------------------------------------
-- The home page's two counters over history, kept in transactions.
--
-- Most of dashboard()'s counters count current work (open tasks, documents
-- waiting in a state), which stays small however many documents an agency
-- keeps.  Two count history: "issued" (outgoing documents a person drafted,
-- received or sent a task of, or that an agency they keep as clerk issued)
-- and "processed" (incoming documents a person registered, received or
-- processed a task of, once processed).  Counting those from the indexes
-- costs what the person's history costs: ten times the documents, ten times
-- the home page.  So they are kept here, per person, by triggers that see
-- every change of who belongs to a document's set and of whether the
-- document is in the state the tab counts; dashboard_counts_check() compares
-- them with the tabs themselves (the isolation test dashboard_counts runs it
-- after concurrent issues and role changes).
--
-- The triggers only insert: each change adds rows of +1 or -1 to
-- dashboard_count_delta, and a counter is its row in dashboard_count plus
-- its deltas.  An update of the counter row in the document's transaction
-- would make every clerk's row a point that all the agency's issues, and the
-- tasks of its issued documents, pass through one after another, each
-- holding it until it commits (measured: a third of the lifecycle's rate at
-- 8 clients).  The worker folds the deltas into the counter rows about every
-- second (dashboard_counts_fold(), one short transaction), so the deltas a
-- home page sums stay few.
-- ---------------------------------------------------------------------------

CREATE TABLE dashboard_count (
    person_id   bigint NOT NULL REFERENCES person,
    counter     text NOT NULL CHECK (counter IN ('outgoing_issued', 'incoming_processed')),
    n           bigint NOT NULL,
    PRIMARY KEY (person_id, counter)
);
COMMENT ON TABLE dashboard_count IS
  'dashboard() counters over history (issued, processed), kept by triggers; checked by dashboard_counts_check()';
SELECT pg_catalog.pg_extension_config_dump('dashboard_count', '');
REVOKE ALL ON dashboard_count FROM PUBLIC;

-- The people whose tab counts a document, as the tab functions read them
-- (_outgoing_tab('issued'), _incoming_tab('processed')), from the
-- document's own row values given and its tasks, leaving out one task (the
-- row a task trigger is looking at, whose old and new values the caller
-- adds).  NULL state or a state the tab does not count: nobody.
CREATE FUNCTION _count_members(counter text, doc bigint, direction text, state text,
                               drafter bigint, agency bigint, skip_task bigint)
RETURNS SETOF bigint
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- (PL/pgSQL for its plans kept across calls: a SQL function's are made
    -- again at every call, and every issue calls this four times)
    IF NOT coalesce((counter = 'outgoing_issued' AND direction = 'outgoing' AND state = 'issued')
                    OR (counter = 'incoming_processed' AND direction = 'incoming' AND state = 'processed'),
                    false) THEN
        RETURN;
    END IF;
    RETURN QUERY
    SELECT drafter WHERE drafter IS NOT NULL
    UNION
    SELECT m.p FROM ioffice.task t
      CROSS JOIN LATERAL (VALUES (t.receiver_id),
                                 (CASE WHEN counter = 'outgoing_issued' THEN t.sender_id
                                       WHEN t.processed_by <> t.receiver_id THEN t.processed_by END)) m(p)
     WHERE t.document_id = doc AND t.id IS DISTINCT FROM skip_task AND m.p IS NOT NULL
    UNION
    SELECT r.person_id FROM ioffice.person_role r
     WHERE counter = 'outgoing_issued' AND r.unit_id = agency AND r.role = 'clerk';
END
$$;
REVOKE ALL ON FUNCTION _count_members(text, bigint, text, text, bigint, bigint, bigint) FROM PUBLIC;

-- What changed in a counter, as one row per person still in the change:
-- the people in plus gain one, those in minus lose one.  Inserts only, so
-- concurrent documents never wait for each other here.
CREATE TABLE dashboard_count_delta (
    person_id   bigint NOT NULL,
    counter     text NOT NULL CHECK (counter IN ('outgoing_issued', 'incoming_processed')),
    d           integer NOT NULL
);
-- (no foreign key to person: its KEY SHARE lock on a clerk's row, taken by
-- every issue of the agency, is the kind of shared point the deltas avoid;
-- the fold leaves out a person who no longer exists)
CREATE INDEX dashboard_count_delta_person ON dashboard_count_delta (person_id, counter);
COMMENT ON TABLE dashboard_count_delta IS
  'Changes of dashboard()''s history counters not yet folded into dashboard_count (the worker folds them)';
SELECT pg_catalog.pg_extension_config_dump('dashboard_count_delta', '');
REVOKE ALL ON dashboard_count_delta FROM PUBLIC;

CREATE FUNCTION _count_apply(counter text, plus bigint[], minus bigint[]) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- (PL/pgSQL for its plan kept across calls, as _count_members())
    INSERT INTO ioffice.dashboard_count_delta (person_id, counter, d)
    SELECT x.p, _count_apply.counter, sum(x.d) FROM (
        SELECT p, 1 AS d FROM unnest(plus) p
        UNION ALL
        SELECT p, -1 FROM unnest(minus) p) x
    GROUP BY x.p HAVING sum(x.d) <> 0;
END
$$;
REVOKE ALL ON FUNCTION _count_apply(text, bigint[], bigint[]) FROM PUBLIC;

-- A person's counter as kept: the folded row and the deltas since.  A sum
-- below zero means drift (dashboard_counts_check() names it); the home page
-- shows zero rather than a negative number.
CREATE FUNCTION _count_kept(person bigint, counter text) RETURNS bigint
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN (SELECT coalesce(sum(k.n), 0)::bigint FROM (
        SELECT c.n FROM ioffice.dashboard_count c
         WHERE c.person_id = _count_kept.person AND c.counter = _count_kept.counter
        UNION ALL
        SELECT x.d FROM ioffice.dashboard_count_delta x
         WHERE x.person_id = _count_kept.person AND x.counter = _count_kept.counter) k);
END
$$;
REVOKE ALL ON FUNCTION _count_kept(bigint, text) FROM PUBLIC;

-- Folding, recounting a person and rebuilding each rewrite counter rows and
-- remove deltas; one at a time (a transaction-level advisory lock that the
-- triggers' inserts never take), so that two of them cannot lock the same
-- rows in opposite orders.
CREATE FUNCTION _count_lock_folding() RETURNS void
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$ SELECT pg_catalog.pg_advisory_xact_lock(1634, 2) $$;
REVOKE ALL ON FUNCTION _count_lock_folding() FROM PUBLIC;

-- The deltas committed so far, added to their counter rows and removed, in
-- one statement (one snapshot: what is removed is what is added).  Deltas of
-- transactions still running are not visible and stay for the next fold.
-- While a role change or a rebuild holds the folding lock (an open DBA
-- transaction), a fold does nothing rather than wait: the worker that calls
-- it has signing to do.
CREATE FUNCTION dashboard_counts_fold() RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rows bigint;
BEGIN
    IF NOT pg_catalog.pg_try_advisory_xact_lock(1634, 2) THEN
        RETURN 0;
    END IF;
    -- (deltas of a person not there are left alone: a restore loads this
    -- table before person, and a fold in between must not drop them)
    WITH moved AS (
        DELETE FROM ioffice.dashboard_count_delta x
         WHERE EXISTS (SELECT 1 FROM ioffice.person p WHERE p.id = x.person_id)
        RETURNING x.person_id, x.counter, x.d
    ), summed AS (
        SELECT m.person_id, m.counter, sum(m.d) AS n FROM moved m
         GROUP BY m.person_id, m.counter HAVING sum(m.d) <> 0
    ), written AS (
        INSERT INTO ioffice.dashboard_count AS c (person_id, counter, n)
        SELECT s.person_id, s.counter, s.n FROM summed s
        ORDER BY s.person_id, s.counter
        ON CONFLICT (person_id, counter) DO UPDATE SET n = c.n + excluded.n
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM moved) INTO v_rows;
    RETURN v_rows;
END
$$;
COMMENT ON FUNCTION dashboard_counts_fold() IS
  'Folds the committed changes of dashboard()''s history counters into their rows (the worker does it about every second); returns the changes folded';
REVOKE ALL ON FUNCTION dashboard_counts_fold() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dashboard_counts_fold() TO ioffice_admin;

-- A pg_dump or pg_restore session (check_function_bodies off, superuser):
-- the dump carries the counters, so the triggers add nothing.  The audit
-- triggers' own test (extension/audit.c ioffice_restoring_dump), not a
-- second one here.
CREATE FUNCTION _restoring_dump() RETURNS boolean
    AS 'MODULE_PATHNAME', 'ioffice_restoring_dump_sql' LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION _restoring_dump() FROM PUBLIC;

-- The agency's clerks are members of each issued document's set: an issue
-- (or a task of an issued document) and a change of who is the agency's
-- clerk must not each count without seeing the other.  The issue side takes
-- KEY SHARE on the agency's row (shared by concurrent issues; an ordinary
-- UPDATE of the agency does not conflict with it), the role side FOR UPDATE;
-- each then reads with a statement snapshot taken after the lock (READ
-- COMMITTED), so whichever comes second sees what the first committed.
CREATE FUNCTION _count_lock_agency(agency bigint, exclusive boolean DEFAULT false) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF exclusive THEN
        PERFORM 1 FROM ioffice.unit u WHERE u.id = agency FOR UPDATE;
    ELSE
        PERFORM 1 FROM ioffice.unit u WHERE u.id = agency FOR KEY SHARE;
    END IF;
END
$$;
REVOKE ALL ON FUNCTION _count_lock_agency(bigint, boolean) FROM PUBLIC;

-- document: a state, direction, drafter or agency that changes who counts it
CREATE FUNCTION _count_document() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c text;
    v_before bigint[];
    v_after bigint[];
BEGIN
    IF ioffice._restoring_dump() THEN
        RETURN NULL;
    END IF;
    IF 'outgoing' IN (NEW.direction, CASE WHEN TG_OP = 'UPDATE' THEN OLD.direction END) THEN
        PERFORM ioffice._count_lock_agency(NEW.agency_id);
        IF TG_OP = 'UPDATE' AND OLD.agency_id <> NEW.agency_id THEN
            PERFORM ioffice._count_lock_agency(OLD.agency_id);
        END IF;
    END IF;
    FOREACH c IN ARRAY ARRAY['outgoing_issued', 'incoming_processed'] LOOP
        v_before := CASE WHEN TG_OP = 'UPDATE' THEN ARRAY(
            SELECT ioffice._count_members(c, OLD.id, OLD.direction, OLD.state, OLD.drafter_id,
                                          OLD.agency_id, NULL)) ELSE '{}' END;
        v_after := ARRAY(SELECT ioffice._count_members(c, NEW.id, NEW.direction, NEW.state,
                                                       NEW.drafter_id, NEW.agency_id, NULL));
        IF v_before <> v_after THEN
            PERFORM ioffice._count_apply(c,
                ARRAY(SELECT unnest(v_after) EXCEPT SELECT unnest(v_before)),
                ARRAY(SELECT unnest(v_before) EXCEPT SELECT unnest(v_after)));
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION _count_document() FROM PUBLIC;
CREATE TRIGGER dashboard_count AFTER INSERT ON document
    FOR EACH ROW WHEN (NEW.state IN ('issued', 'processed'))
    EXECUTE FUNCTION _count_document();
CREATE TRIGGER dashboard_count_change AFTER UPDATE OF state, direction, drafter_id, agency_id ON document
    FOR EACH ROW WHEN ((OLD.state IN ('issued', 'processed') OR NEW.state IN ('issued', 'processed'))
                       AND (OLD.state, OLD.direction, OLD.drafter_id, OLD.agency_id)
                           IS DISTINCT FROM (NEW.state, NEW.direction, NEW.drafter_id, NEW.agency_id))
    EXECUTE FUNCTION _count_document();

-- The change of one task's people (old: its people before, new: after) on
-- one document: each person who joins or leaves the document's set
CREATE FUNCTION _count_task_change(doc bigint, task bigint, old_task ioffice.task, new_task ioffice.task)
RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d ioffice.document;
    c text;
    v_rest bigint[];
    v_before bigint[];
    v_after bigint[];
BEGIN
    SELECT * INTO d FROM ioffice.document WHERE id = doc;
    -- (the state first: most tasks belong to documents no tab counts)
    IF NOT FOUND OR d.state NOT IN ('issued', 'processed') OR ioffice._restoring_dump() THEN
        RETURN;
    END IF;
    c := CASE d.direction WHEN 'outgoing' THEN 'outgoing_issued' ELSE 'incoming_processed' END;
    IF c = 'outgoing_issued' THEN
        PERFORM ioffice._count_lock_agency(d.agency_id);
    END IF;
    -- everyone but this task's people, then with its old and its new ones
    v_rest := ARRAY(SELECT ioffice._count_members(c, d.id, d.direction, d.state, d.drafter_id,
                                                  d.agency_id, task));
    v_before := v_rest || CASE WHEN old_task.id IS NULL THEN '{}'::bigint[] ELSE ARRAY[old_task.receiver_id,
        CASE WHEN c = 'outgoing_issued' THEN old_task.sender_id
             WHEN old_task.processed_by <> old_task.receiver_id THEN old_task.processed_by END] END;
    v_after := v_rest || CASE WHEN new_task.id IS NULL THEN '{}'::bigint[] ELSE ARRAY[new_task.receiver_id,
        CASE WHEN c = 'outgoing_issued' THEN new_task.sender_id
             WHEN new_task.processed_by <> new_task.receiver_id THEN new_task.processed_by END] END;
    PERFORM ioffice._count_apply(c,
        ARRAY(SELECT p FROM unnest(v_after) p WHERE p IS NOT NULL EXCEPT SELECT unnest(v_before)),
        ARRAY(SELECT p FROM unnest(v_before) p WHERE p IS NOT NULL EXCEPT SELECT unnest(v_after)));
END
$$;
REVOKE ALL ON FUNCTION _count_task_change(bigint, bigint, ioffice.task, ioffice.task) FROM PUBLIC;

-- task: a task of a document the tabs count now (issued, processed) adds or
-- takes its people; one of a document in any other state changes nothing
CREATE FUNCTION _count_task() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM ioffice._count_task_change(NEW.document_id, NEW.id, NULL, NEW);
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM ioffice._count_task_change(OLD.document_id, OLD.id, OLD, NULL);
    ELSIF OLD.document_id = NEW.document_id THEN
        PERFORM ioffice._count_task_change(NEW.document_id, NEW.id, OLD, NEW);
    ELSE
        -- moved to another document (a DBA's edit): it leaves one, joins the other
        PERFORM ioffice._count_task_change(OLD.document_id, OLD.id, OLD, NULL);
        PERFORM ioffice._count_task_change(NEW.document_id, NEW.id, NULL, NEW);
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION _count_task() FROM PUBLIC;
CREATE TRIGGER dashboard_count AFTER INSERT OR DELETE ON task
    FOR EACH ROW EXECUTE FUNCTION _count_task();
CREATE TRIGGER dashboard_count_change AFTER UPDATE OF document_id, receiver_id, sender_id, processed_by ON task
    FOR EACH ROW WHEN ((OLD.document_id, OLD.receiver_id, OLD.sender_id, OLD.processed_by)
                       IS DISTINCT FROM (NEW.document_id, NEW.receiver_id, NEW.sender_id, NEW.processed_by))
    EXECUTE FUNCTION _count_task();

-- One person's counters counted again from the tabs, and their deltas
-- removed, in one statement: one snapshot, so a delta is either removed and
-- in the count, or (its transaction not yet committed) kept and not in it.
-- The role change that calls this holds the agency's row FOR UPDATE, so no
-- issue of the agency is in flight.
CREATE FUNCTION _count_person(person bigint) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM ioffice._count_lock_folding();
    WITH removed AS (
        DELETE FROM ioffice.dashboard_count_delta x WHERE x.person_id = person
        RETURNING 1
    )
    INSERT INTO ioffice.dashboard_count AS c (person_id, counter, n)
    VALUES (person, 'outgoing_issued', (SELECT count(*) FROM ioffice._outgoing_tab('issued', person))),
           (person, 'incoming_processed', (SELECT count(*) FROM ioffice._incoming_tab('processed', person)))
    ON CONFLICT (person_id, counter) DO UPDATE SET n = excluded.n;
END
$$;
REVOKE ALL ON FUNCTION _count_person(bigint) FROM PUBLIC;

-- person_role: becoming or ceasing to be an agency's clerk adds or takes
-- that agency's issued documents (counted again: a rare, administrative act)
CREATE FUNCTION _count_role() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF ioffice._restoring_dump() THEN
        RETURN NULL;
    END IF;
    IF 'clerk' IN (CASE WHEN TG_OP <> 'INSERT' THEN OLD.role END,
                   CASE WHEN TG_OP <> 'DELETE' THEN NEW.role END) THEN
        -- the folding lock before any agency's row: two role changes of
        -- different agencies then cannot each hold what the other waits for
        PERFORM ioffice._count_lock_folding();
    END IF;
    IF TG_OP <> 'INSERT' AND OLD.role = 'clerk' THEN
        PERFORM ioffice._count_lock_agency(OLD.unit_id, true);
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.role = 'clerk' THEN
        PERFORM ioffice._count_lock_agency(NEW.unit_id, true);
    END IF;
    IF TG_OP <> 'INSERT' AND OLD.role = 'clerk' THEN
        PERFORM ioffice._count_person(OLD.person_id);
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.role = 'clerk'
       AND (TG_OP = 'INSERT' OR NEW.person_id <> OLD.person_id OR OLD.role <> 'clerk') THEN
        PERFORM ioffice._count_person(NEW.person_id);
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION _count_role() FROM PUBLIC;
CREATE TRIGGER dashboard_count AFTER INSERT OR UPDATE OR DELETE ON person_role
    FOR EACH ROW EXECUTE FUNCTION _count_role();

-- Counted again from the tabs, for everyone (after a bulk load with
-- triggers off, or to repair what dashboard_counts_check() found)
CREATE FUNCTION dashboard_counts_rebuild() RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rows bigint;
BEGIN
    -- (new deltas wait until the counters are written; the deltas of
    -- transactions already running are waited for, then counted)
    PERFORM ioffice._count_lock_folding();
    LOCK TABLE ioffice.dashboard_count_delta, ioffice.dashboard_count IN EXCLUSIVE MODE;
    DELETE FROM ioffice.dashboard_count_delta;
    DELETE FROM ioffice.dashboard_count;
    INSERT INTO ioffice.dashboard_count (person_id, counter, n)
    SELECT m.p, 'outgoing_issued', count(DISTINCT m.doc) FROM (
        SELECT d.drafter_id AS p, d.id AS doc FROM ioffice.document d
         WHERE d.direction = 'outgoing' AND d.state = 'issued' AND d.drafter_id IS NOT NULL
        UNION ALL
        SELECT x.p, d.id FROM ioffice.document d JOIN ioffice.task t ON t.document_id = d.id
         CROSS JOIN LATERAL (VALUES (t.receiver_id), (t.sender_id)) x(p)
         WHERE d.direction = 'outgoing' AND d.state = 'issued'
        UNION ALL
        SELECT r.person_id, d.id FROM ioffice.document d
          JOIN ioffice.person_role r ON r.unit_id = d.agency_id AND r.role = 'clerk'
         WHERE d.direction = 'outgoing' AND d.state = 'issued') m
    GROUP BY m.p;
    INSERT INTO ioffice.dashboard_count (person_id, counter, n)
    SELECT m.p, 'incoming_processed', count(DISTINCT m.doc) FROM (
        SELECT d.drafter_id AS p, d.id AS doc FROM ioffice.document d
         WHERE d.direction = 'incoming' AND d.state = 'processed' AND d.drafter_id IS NOT NULL
        UNION ALL
        SELECT x.p, d.id FROM ioffice.document d JOIN ioffice.task t ON t.document_id = d.id
         CROSS JOIN LATERAL (VALUES (t.receiver_id),
                                    (CASE WHEN t.processed_by <> t.receiver_id THEN t.processed_by END)) x(p)
         WHERE d.direction = 'incoming' AND d.state = 'processed' AND x.p IS NOT NULL) m
    GROUP BY m.p;
    SELECT count(*) INTO v_rows FROM ioffice.dashboard_count;
    RETURN v_rows;
END
$$;
COMMENT ON FUNCTION dashboard_counts_rebuild() IS
  'Counts dashboard()''s history counters (issued, processed) again for everyone; returns the rows written';
REVOKE ALL ON FUNCTION dashboard_counts_rebuild() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dashboard_counts_rebuild() TO ioffice_admin;

-- Every person whose kept counter differs from what the tab counts now
CREATE FUNCTION dashboard_counts_check()
RETURNS TABLE (person_id bigint, login text, counter text, kept bigint, counted bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p.id, p.login, c.counter, ioffice._count_kept(p.id, c.counter), c.counted
    FROM ioffice.person p
    CROSS JOIN LATERAL (VALUES
        ('outgoing_issued', (SELECT count(*) FROM ioffice._outgoing_tab('issued', p.id))),
        ('incoming_processed', (SELECT count(*) FROM ioffice._incoming_tab('processed', p.id)))
    ) c(counter, counted)
    WHERE ioffice._count_kept(p.id, c.counter) <> c.counted
    ORDER BY p.id, c.counter
$$;
COMMENT ON FUNCTION dashboard_counts_check() IS
  'People whose kept dashboard() history counters differ from their tabs (none: no drift)';
REVOKE ALL ON FUNCTION dashboard_counts_check() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dashboard_counts_check() TO ioffice_admin;

CREATE OR REPLACE FUNCTION dashboard()
RETURNS TABLE (incoming_unprocessed bigint, incoming_in_progress bigint,
               incoming_processed bigint, incoming_due bigint, incoming_overdue bigint,
               incoming_awaiting_approval bigint, incoming_delegated bigint,
               incoming_transferred bigint, outgoing_awaiting_approval bigint,
               outgoing_awaiting_processing bigint, outgoing_delegated bigint,
               outgoing_issued bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me bigint := ioffice.actor();
BEGIN
    -- the tabs' own rows, counted (a counter never disagrees with its
    -- tab); the two that count history are kept by triggers
    -- (95_dashboard_counts.sql, checked by dashboard_counts_check())
    RETURN QUERY
    SELECT
        (SELECT count(*) FROM ioffice._incoming_tab('unprocessed', v_me)),
        (SELECT count(*) FROM ioffice._incoming_tab('in_progress', v_me)),
        greatest(ioffice._count_kept(v_me, 'incoming_processed'), 0),
        (SELECT count(*) FROM ioffice._incoming_tab('due', v_me)),
        (SELECT count(*) FROM ioffice._incoming_tab('overdue', v_me)),
        (SELECT count(*) FROM ioffice._incoming_tab('awaiting_approval', v_me)),
        (SELECT count(*) FROM ioffice._incoming_tab('delegated', v_me)),
        (SELECT count(*) FROM ioffice._incoming_tab('transferred', v_me)),
        (SELECT count(*) FROM ioffice._outgoing_tab('awaiting_approval', v_me)),
        (SELECT count(*) FROM ioffice.task t JOIN ioffice.document d ON d.id = t.document_id
         WHERE t.status = 'open' AND t.receiver_id = v_me AND d.direction = 'outgoing'
           AND d.state IN ('returned', 'awaiting_issue')),
        (SELECT count(*) FROM ioffice._outgoing_tab('delegated', v_me)),
        greatest(ioffice._count_kept(v_me, 'outgoing_issued'), 0);
END
$$;

-- the counters of the documents already there
SELECT ioffice.dashboard_counts_rebuild();
-- ==== audit_witness ====
-- Checkpoints sealed by the worker, signed with the organisation's key and
-- published to witnesses (extension/audit_sign.c, workers/audit_jobs.c).
CREATE INDEX audit_checkpoint_unsigned_idx ON audit_checkpoint (id) WHERE signature IS NULL;
DROP TRIGGER append_only ON audit_checkpoint;
-- a checkpoint gets its signature once, later (the worker has the key): an
-- UPDATE that only fills a missing signature is the one change allowed
CREATE TRIGGER append_only BEFORE DELETE ON audit_checkpoint
    FOR EACH ROW EXECUTE FUNCTION _audit_append_only();
CREATE TRIGGER append_only_but_signing BEFORE UPDATE ON audit_checkpoint
    FOR EACH ROW WHEN (OLD.signature IS NOT NULL OR NEW.signature IS NULL
                       OR (NEW.id, NEW.at, NEW.chains, NEW.records, NEW.root, NEW.prev_hash, NEW.hash)
                          IS DISTINCT FROM
                          (OLD.id, OLD.at, OLD.chains, OLD.records, OLD.root, OLD.prev_hash, OLD.hash))
    EXECUTE FUNCTION _audit_append_only();
COMMENT ON FUNCTION audit_seal() IS
  'Writes a checkpoint of the audit chain heads that moved since the last one (the worker signs and publishes it); returns its id';

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

-- a witness's answer to an audit.checkpoint event (workers/outbox_delivery.c)
ALTER TABLE outbox ADD COLUMN receipt text;
COMMENT ON COLUMN outbox.receipt IS 'The answer (2xx, up to 4 KiB of text) of the endpoint to an audit.checkpoint event: a witness''s receipt';

-- ==== plan_kept_checks ====
-- can_see() keeps its plan for the session (PL/pgSQL, not SQL)
CREATE OR REPLACE FUNCTION can_see(doc bigint) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me bigint := ioffice.current_person();
BEGIN
    IF v_me IS NULL THEN
        RETURN false;
    END IF;
    RETURN EXISTS (
        SELECT 1 FROM ioffice.document d
        WHERE d.id = can_see.doc
          AND (d.drafter_id = v_me
               OR EXISTS (SELECT 1 FROM ioffice.task t
                          WHERE t.document_id = d.id
                            AND (t.receiver_id = v_me OR t.sender_id = v_me
                                 OR t.processed_by = v_me))
               OR EXISTS (SELECT 1 FROM ioffice.task t
                          JOIN ioffice.delegation g ON g.from_person = t.receiver_id
                          WHERE t.document_id = d.id AND t.status = 'open'
                            AND g.to_person = v_me
                            AND now() >= g.valid_from AND now() < g.valid_until)
               OR EXISTS (SELECT 1 FROM ioffice.person_role r
                          WHERE r.person_id = v_me
                            AND ((r.role = 'clerk' AND r.unit_id = d.agency_id)
                                 OR r.role = 'admin'))));
END
$$;

-- ==== token_signing ====
-- Signing on the signer's own device (issue 13, item 1): a personal
-- certificate registered without a key file signs only through the
-- signer's tool (extension/token_signing.c).

-- The request a signer's tool answers: the prepared PDF revision (with the
-- reserved /Contents) and the digests it was asked to sign, one per pending
-- signature, replaced by a new request, gone once the signature is made.
-- Only the extension's functions read or write it.  No foreign keys to
-- signature and file: a request is read only joined with its live rows, and
-- the guards that refuse a TRUNCATE of those tables must still be the ones
-- that speak (not "referenced in a foreign key constraint").
CREATE TABLE token_request (
    signature_id   bigint PRIMARY KEY,
    certificate_id bigint NOT NULL,
    file_id        bigint NOT NULL,
    prepared       bytea,
    byte_range     bigint[] CHECK (byte_range IS NULL OR cardinality(byte_range) = 4),
    content_digest bytea NOT NULL,
    attrs_digest   bytea NOT NULL,
    requested_at   timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    CHECK ((prepared IS NULL) = (byte_range IS NULL))
);
COMMENT ON TABLE token_request IS 'Signing requests handed to signers'' own tools (signing_request): the prepared PDF revision, its /ByteRange, the digests to sign, the expiry';
REVOKE ALL ON token_request FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('token_request', '');

CREATE FUNCTION signing_request(signature bigint) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'ioffice_signing_request'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION signing_request(bigint) IS
  'For the signer''s own tool (token): the prepared PDF (base64) and its /ByteRange, the digest of the CMS signed attributes to sign, the algorithm, the expiry; only the signer, only a pending personal signature without a key file';

CREATE FUNCTION submit_signature(signature bigint, signed bytea) RETURNS text
    AS 'MODULE_PATHNAME', 'ioffice_submit_signature'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION submit_signature(bigint, bytea) IS
  'The answer of the signer''s tool to signing_request: the signed PDF, a detached CMS over the /ByteRange, or the bare signature value over the digest; checked, embedded, and the signature''s new status';

-- ==== audit_incremental ====
-- A seal reads only what is new since the last checkpoint
-- (extension/audit_verify.c): each checkpoint keeps where the next one reads
-- from.  The checkpoints of 0.1 have none: the first seal after the upgrade
-- reads the whole trail once.
ALTER TABLE audit_checkpoint ADD COLUMN horizon bigint,
    ADD COLUMN pending_id bigint, ADD COLUMN pending_xid xid8;
-- audit.id's default: nextval() once the transaction has its transaction id
-- (extension/audit.c), which the seal's horizon relies on
CREATE FUNCTION _audit_next_id() RETURNS bigint
    AS 'MODULE_PATHNAME', 'ioffice_audit_next_id' LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION _audit_next_id() FROM PUBLIC;
ALTER TABLE audit ALTER COLUMN id SET DEFAULT _audit_next_id();
-- the new columns are as append-only as the others
DROP TRIGGER append_only_but_signing ON audit_checkpoint;
CREATE TRIGGER append_only_but_signing BEFORE UPDATE ON audit_checkpoint
    FOR EACH ROW WHEN (OLD.signature IS NOT NULL OR NEW.signature IS NULL
                       OR (NEW.id, NEW.at, NEW.chains, NEW.records, NEW.root, NEW.prev_hash, NEW.hash,
                           NEW.horizon, NEW.pending_id, NEW.pending_xid)
                          IS DISTINCT FROM
                          (OLD.id, OLD.at, OLD.chains, OLD.records, OLD.root, OLD.prev_hash, OLD.hash,
                           OLD.horizon, OLD.pending_id, OLD.pending_xid))
    EXECUTE FUNCTION _audit_append_only();
ALTER TABLE audit_checkpoint_head DROP CONSTRAINT audit_checkpoint_head_checkpoint_id_fkey;
-- every chain head belongs to a checkpoint, checked once per statement
-- (triggers/audit_triggers.c): a foreign key checked it row by row, which
-- cost a seal of many chains more than the rest of the insert
CREATE FUNCTION _audit_heads_checkpointed() RETURNS trigger
    AS 'MODULE_PATHNAME', 'ioffice_audit_heads_checkpointed' LANGUAGE C;
CREATE TRIGGER heads_checkpointed AFTER INSERT ON audit_checkpoint_head
    REFERENCING NEW TABLE AS new_heads
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_heads_checkpointed();


-- ==== search ====
-- (the same statements as sql/parts/97_search.sql, then what the data of 0.1
-- needs)
-- ---------------------------------------------------------------------------
-- Search (Decree 30 Appendix VI III.6d): search(query, filters) over every
-- metadata field of a document and the text of its files
-- ---------------------------------------------------------------------------

-- Vietnamese without a stemmer: PostgreSQL's default parser cuts the words
-- and our own dictionary (extension/search.c) gives each word folded
-- ("Nghị định" -> nghi, dinh; "Đà Nẵng" -> da, nang) and, when it differs,
-- as written in lower case (nghị, định), two alternatives at one position.
-- search_vi stores and matches: an unaccented query finds every spelling;
-- search_vi_exact parses the query as written, which ranks the documents
-- spelling it so first (tones change the word: ma, má, mà).  No dependency
-- on contrib's unaccent (a STABLE function whose rules a DBA may edit under
-- stored vectors) or pg_trgm: the folding of the alphabet is fixed, so the
-- configurations are immutable and the vectors are stored and indexed.
CREATE FUNCTION _search_fold_init(internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'ioffice_search_fold_init' LANGUAGE C STRICT;
CREATE FUNCTION _search_fold_lexize(internal, internal, internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'ioffice_search_fold_lexize' LANGUAGE C STRICT;
CREATE TEXT SEARCH TEMPLATE search_fold (INIT = _search_fold_init, LEXIZE = _search_fold_lexize);
CREATE TEXT SEARCH DICTIONARY search_fold (TEMPLATE = search_fold);
COMMENT ON TEXT SEARCH DICTIONARY search_fold IS 'Vietnamese words folded (no tones, đ as d) and as written, in lower case';
CREATE TEXT SEARCH DICTIONARY search_exact (TEMPLATE = search_fold, exact = true);
COMMENT ON TEXT SEARCH DICTIONARY search_exact IS 'Vietnamese words as written, in lower case';
CREATE TEXT SEARCH CONFIGURATION search_vi (COPY = pg_catalog.simple);
ALTER TEXT SEARCH CONFIGURATION search_vi ALTER MAPPING REPLACE pg_catalog.simple WITH search_fold;
COMMENT ON TEXT SEARCH CONFIGURATION search_vi IS 'What search() stores and matches: Vietnamese, accent-insensitive';
CREATE TEXT SEARCH CONFIGURATION search_vi_exact (COPY = pg_catalog.simple);
ALTER TEXT SEARCH CONFIGURATION search_vi_exact ALTER MAPPING REPLACE pg_catalog.simple WITH search_exact;
COMMENT ON TEXT SEARCH CONFIGURATION search_vi_exact IS 'How search() ranks: the words of a query as written';

-- What search() reads: one row per document for its metadata (file_id
-- NULL), one per current file whose text the worker extracted.  Nobody
-- reads it but search(), which applies the documents' visibility itself.
CREATE TABLE search_text (
    document_id bigint NOT NULL REFERENCES document,
    -- no foreign key to file (see unit.parent_id): files are never deleted,
    -- and a TRUNCATE of file must meet its own trigger's refusal
    file_id     bigint,
    body        text NOT NULL,
    -- a slash separates words: the parser would read "15/QĐ-UBND" as a
    -- path ("15/q") and a query "QĐ-UBND" would not find it
    words       tsvector GENERATED ALWAYS AS
                (to_tsvector('ioffice.search_vi'::regconfig, translate(body, '/', ' '))) STORED
);
CREATE UNIQUE INDEX search_text_metadata_idx ON search_text (document_id) WHERE file_id IS NULL;
CREATE UNIQUE INDEX search_text_file_idx ON search_text (file_id) WHERE file_id IS NOT NULL;
CREATE INDEX search_text_words_idx ON search_text USING gin (words);
COMMENT ON TABLE search_text IS 'The text search() finds documents by: each document''s metadata, and its files'' text';
ALTER TABLE search_text ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON search_text FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('search_text', '');

-- The metadata a clerk searches by, as one text: the abstract first (the
-- snippet shows it), then type, number and symbol, the sender's, agency,
-- drafting unit, sender, signer, register, field, dates (dd/mm/yyyy) and
-- identifier.  The names kept on the document at issue come first.
CREATE FUNCTION _search_metadata(d ioffice.document) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- (PL/pgSQL for its plan kept across calls: as a SQL function, planned
    -- again at every call, it cost 2 ms of each document written)
    RETURN concat_ws(' · ', d.abstract,
        coalesce(d.doc_type_name, (SELECT t.name FROM ioffice.doc_type t WHERE t.code = d.doc_type)),
        CASE WHEN d.number IS NOT NULL THEN d.number || '/' || d.symbol ELSE d.symbol END,
        d.sender_symbol,
        (SELECT u.name FROM ioffice.unit u WHERE u.id = d.agency_id),
        coalesce(d.drafting_unit_name, (SELECT u.name FROM ioffice.unit u WHERE u.id = d.drafting_unit_id)),
        coalesce((SELECT u.name FROM ioffice.unit u WHERE u.id = d.sender_agency_id), d.sender_name),
        coalesce(d.signer_name, (SELECT p.full_name FROM ioffice.person p WHERE p.id = d.signer_id)),
        (SELECT r.name FROM ioffice.register r WHERE r.id = d.register_id),
        d.field,
        to_char(d.issued_on, 'DD/MM/YYYY'), to_char(d.sender_date, 'DD/MM/YYYY'),
        d.identifier);
END
$$;
REVOKE ALL ON FUNCTION _search_metadata(ioffice.document) FROM PUBLIC;

-- A document's metadata row follows the document (a restore brings the
-- rows with the dump).  Only on the columns that are in it: a change of
-- state writes nothing here.
CREATE FUNCTION _search_document() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF ioffice._restoring_dump() THEN
        RETURN NULL;
    END IF;
    INSERT INTO ioffice.search_text AS s (document_id, file_id, body)
    VALUES (NEW.id, NULL, ioffice._search_metadata(NEW))
    ON CONFLICT (document_id) WHERE file_id IS NULL
    DO UPDATE SET body = EXCLUDED.body WHERE s.body IS DISTINCT FROM EXCLUDED.body;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION _search_document() FROM PUBLIC;
CREATE TRIGGER search_text AFTER INSERT OR UPDATE OF abstract, doc_type, number, symbol, sender_symbol,
    agency_id, drafting_unit_id, sender_agency_id, sender_name, signer_id, register_id, field,
    issued_on, sender_date, identifier, doc_type_name, signer_name, drafting_unit_name
    ON document FOR EACH ROW EXECUTE FUNCTION _search_document();

-- The text of files: each PDF, docx or xlsx attached is queued here, and
-- the signing worker extracts its text (poppler's pdftotext; for docx and
-- xlsx workers/ioffice_text.py), outside the server and under the PDF
-- helper's limits (workers/text_jobs.c), into search_text.  done_at: when it was done (error: why there is no text).
CREATE TABLE search_extraction (
    file_id     bigint PRIMARY KEY,
    document_id bigint NOT NULL REFERENCES document,
    queued_at   timestamptz NOT NULL DEFAULT now(),
    done_at     timestamptz,
    error       text
);
CREATE INDEX search_extraction_queue_idx ON search_extraction (file_id) WHERE done_at IS NULL;
COMMENT ON TABLE search_extraction IS 'Files whose text the worker extracts for search(): queued, done, or failed with the reason';
REVOKE ALL ON search_extraction FROM PUBLIC;
GRANT SELECT ON search_extraction TO ioffice_admin;
SELECT pg_catalog.pg_extension_config_dump('search_extraction', '');

-- A file's text is searched while the file is current: a PDF, docx or
-- xlsx attached is queued; a file replaced or removed leaves search (and the queue).
CREATE FUNCTION _search_file() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF ioffice._restoring_dump() THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO ioffice.search_extraction (file_id, document_id)
        VALUES (NEW.id, NEW.document_id) ON CONFLICT DO NOTHING;
    ELSE
        -- the job first: this waits for the worker recording its text
        -- (_search_extracted), whose row the next statement then sees
        DELETE FROM ioffice.search_extraction WHERE file_id = NEW.id AND done_at IS NULL;
        DELETE FROM ioffice.search_text WHERE file_id = NEW.id;
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION _search_file() FROM PUBLIC;
CREATE TRIGGER search_extraction AFTER INSERT ON file
    FOR EACH ROW WHEN (NEW.kind IN ('pdf', 'docx', 'xlsx') AND NEW.superseded_at IS NULL AND NEW.removed_at IS NULL)
    EXECUTE FUNCTION _search_file();
CREATE TRIGGER search_text_current AFTER UPDATE OF superseded_at, removed_at ON file
    FOR EACH ROW WHEN (NEW.superseded_at IS NOT NULL OR NEW.removed_at IS NOT NULL)
    EXECUTE FUNCTION _search_file();

-- The worker's answer for one file: its text (kept if the file is still
-- current), or why there is none.  The job is locked first: a file
-- replaced or removed meanwhile has no job left (the trigger above), or
-- is seen as no longer current by the statements after the lock.  A text
-- too long for a text search vector fails its job, not the worker.
CREATE FUNCTION _search_extracted(file bigint, body text, error text) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_error text := error;
BEGIN
    PERFORM 1 FROM ioffice.search_extraction j
    WHERE j.file_id = _search_extracted.file AND j.done_at IS NULL FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF v_error IS NULL AND btrim(body, E' \t\n\r\f') = '' THEN
        v_error := 'the file has no text (a scan?)';
    END IF;
    IF v_error IS NULL THEN
        BEGIN
            INSERT INTO ioffice.search_text (document_id, file_id, body)
            SELECT f.document_id, f.id, _search_extracted.body FROM ioffice.file f
            WHERE f.id = _search_extracted.file AND f.superseded_at IS NULL AND f.removed_at IS NULL
            ON CONFLICT (file_id) WHERE file_id IS NOT NULL DO UPDATE SET body = EXCLUDED.body;
        EXCEPTION WHEN program_limit_exceeded THEN
            v_error := SQLERRM;
        END;
    END IF;
    UPDATE ioffice.search_extraction j SET done_at = now(), error = v_error
    WHERE j.file_id = _search_extracted.file;
END
$$;
REVOKE ALL ON FUNCTION _search_extracted(bigint, text, text) FROM PUBLIC;

-- Is the role that called search() a reader (the policy visible_to_readers
-- of document)?  search() is SECURITY DEFINER: current_user is its owner.
CREATE FUNCTION _search_outer_is_reader() RETURNS boolean
    AS 'MODULE_PATHNAME', 'ioffice_search_outer_is_reader' LANGUAGE C STABLE;
REVOKE ALL ON FUNCTION _search_outer_is_reader() FROM PUBLIC;

-- The filters of search(), checked: an unknown key, or a value of the wrong
-- type, is refused naming the key.
CREATE FUNCTION _search_filters(filters jsonb, OUT agency bigint, OUT doc_type text,
    OUT register bigint, OUT state text, OUT signer bigint, OUT direction text,
    OUT issued_from date, OUT issued_to date, OUT created_from date, OUT created_to date)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k text;
    v jsonb;
    s text;
BEGIN
    IF filters IS NULL THEN
        RETURN;
    END IF;
    IF jsonb_typeof(filters) <> 'object' THEN
        RAISE EXCEPTION 'search filters must be a JSON object' USING ERRCODE = '22023';
    END IF;
    FOR k, v IN SELECT e.key, e.value FROM jsonb_each(filters) e LOOP
        s := v #>> '{}';
        IF k IN ('agency', 'register') THEN
            IF jsonb_typeof(v) <> 'number' OR s !~ '^[0-9]{1,18}$' THEN
                RAISE EXCEPTION 'search filter "%" must be an id (a whole number)', k
                    USING ERRCODE = '22023';
            END IF;
            IF k = 'agency' THEN agency := s::bigint; ELSE register := s::bigint; END IF;
        ELSIF k IN ('doc_type', 'state') THEN
            IF jsonb_typeof(v) <> 'string' THEN
                RAISE EXCEPTION 'search filter "%" must be a string', k USING ERRCODE = '22023';
            END IF;
            IF k = 'doc_type' THEN doc_type := s; ELSE state := s; END IF;
        ELSIF k = 'direction' THEN
            IF jsonb_typeof(v) <> 'string' OR s NOT IN ('outgoing', 'incoming') THEN
                RAISE EXCEPTION 'search filter "direction" must be "outgoing" or "incoming"'
                    USING ERRCODE = '22023';
            END IF;
            direction := s;
        ELSIF k = 'signer' THEN
            -- a person's login, or id
            IF jsonb_typeof(v) = 'number' AND s ~ '^[0-9]{1,18}$' THEN
                signer := s::bigint;
            ELSIF jsonb_typeof(v) = 'string' THEN
                SELECT p.id INTO signer FROM ioffice.person p WHERE p.login = s;
                IF NOT FOUND THEN
                    RAISE EXCEPTION 'search filter "signer": unknown person "%"', pg_catalog.left(s, 60)
                        USING ERRCODE = '22023';
                END IF;
            ELSE
                RAISE EXCEPTION 'search filter "signer" must be a login or a person id'
                    USING ERRCODE = '22023';
            END IF;
        ELSIF k IN ('issued_from', 'issued_to', 'created_from', 'created_to') THEN
            IF jsonb_typeof(v) <> 'string' OR s !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' THEN
                RAISE EXCEPTION 'search filter "%" must be a date as YYYY-MM-DD', k
                    USING ERRCODE = '22023';
            END IF;
            BEGIN
                CASE k
                    WHEN 'issued_from' THEN issued_from := s::date;
                    WHEN 'issued_to' THEN issued_to := s::date;
                    WHEN 'created_from' THEN created_from := s::date;
                    ELSE created_to := s::date;
                END CASE;
            EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format THEN
                RAISE EXCEPTION 'search filter "%" is not a date: %', k, s USING ERRCODE = '22023';
            END;
        ELSE
            RAISE EXCEPTION 'unknown search filter "%"', pg_catalog.left(k, 60)
                USING ERRCODE = '22023',
                      HINT = 'The filters are agency, doc_type, register, state, signer, direction, '
                             'issued_from, issued_to, created_from and created_to.';
        END IF;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION _search_filters(jsonb) FROM PUBLIC;

-- search(): the documents whose metadata or file text has the words of the
-- query, best first, at most "limit" of them.  A document is found by every
-- spelling of its words ("nghi dinh" finds "Nghị định"); one spelled as the
-- query is (every word, tones and all) ranks above those that are not (rank
-- 1 plus the text rank; an unaccented query is spelled as all of them).
-- Only documents the caller may see, by the same tests as the policies of
-- document (visible, visible_to_readers), applied here because search() is
-- SECURITY DEFINER: it reads search_text, which nobody else does, and the
-- planner may then use the text index (under row-level security it could
-- not: the match operator is not leakproof).  Nothing of a document the
-- caller may not see is counted or shown.  An empty query lists the
-- documents the filters keep, newest first.
CREATE FUNCTION search(query text, filters jsonb DEFAULT '{}', "limit" int DEFAULT 100)
RETURNS TABLE(document bigint, rank real, snippet text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me bigint := ioffice.current_person();
    v_reader boolean := ioffice._search_outer_is_reader();
    v_agencies bigint[] := ioffice._clerk_agencies();
    v_tasks bigint[];
    v_any tsquery;
    v_exact tsquery;
    f record;
BEGIN
    f := ioffice._search_filters(filters);
    IF search."limit" IS NULL OR search."limit" < 1 OR search."limit" > 10000 THEN
        RAISE EXCEPTION 'search limit must be between 1 and 10000' USING ERRCODE = '22023';
    END IF;
    -- a query is a few words: websearch_to_tsquery() recurses over what it
    -- is given, and a page of text would end in "stack depth limit exceeded"
    IF length(query) > 2000 THEN
        RAISE EXCEPTION 'search query is too long'
            USING ERRCODE = '22023',
                  DETAIL = format('A query has at most 2000 characters; this one has %s.', length(query)),
                  HINT = 'Search for a few words of the text, and narrow with filters.';
    END IF;
    IF v_me IS NULL AND NOT v_reader THEN
        RETURN;
    END IF;
    v_tasks := CASE WHEN v_me IS NULL THEN '{}' ELSE ioffice._task_documents() END;
    v_any := websearch_to_tsquery('ioffice.search_vi'::regconfig, translate(coalesce(query, ''), '/', ' '));
    IF numnode(v_any) = 0 THEN
        IF filters IS NULL OR filters = '{}' THEN
            RAISE EXCEPTION 'search needs words to find, or a filter'
                USING ERRCODE = '22023';
        END IF;
        RETURN QUERY
        SELECT d.id, 0::real, d.abstract
        FROM ioffice.document d
        WHERE (d.drafter_id = v_me OR d.agency_id = ANY (v_agencies) OR d.id = ANY (v_tasks)
               OR (v_reader AND d.confidentiality = 'normal'
                   AND (d.register_id IS NULL
                        OR d.register_id IN (SELECT r.id FROM ioffice.register r WHERE NOT r.confidential))))
          AND (f.agency IS NULL OR d.agency_id = f.agency)
          AND (f.doc_type IS NULL OR d.doc_type = f.doc_type)
          AND (f.register IS NULL OR d.register_id = f.register)
          AND (f.state IS NULL OR d.state = f.state)
          AND (f.signer IS NULL OR d.signer_id = f.signer)
          AND (f.direction IS NULL OR d.direction = f.direction)
          AND (f.issued_from IS NULL OR coalesce(d.issued_on, d.sender_date) >= f.issued_from)
          AND (f.issued_to IS NULL OR coalesce(d.issued_on, d.sender_date) <= f.issued_to)
          AND (f.created_from IS NULL OR (d.created_at AT TIME ZONE ioffice.timezone())::date >= f.created_from)
          AND (f.created_to IS NULL OR (d.created_at AT TIME ZONE ioffice.timezone())::date <= f.created_to)
        ORDER BY d.id DESC
        LIMIT search."limit";
        RETURN;
    END IF;
    v_exact := websearch_to_tsquery('ioffice.search_vi_exact'::regconfig, translate(query, '/', ' '));
    RETURN QUERY
    WITH hit AS (
        SELECT s.document_id, s.file_id, s.body,
               (s.words @@ v_exact)::int + ts_rank(s.words, v_any, 32) AS r
        FROM ioffice.search_text s
        WHERE s.words @@ v_any
    ), best AS (
        SELECT DISTINCT ON (h.document_id) h.document_id, h.body, h.r
        FROM hit h
        ORDER BY h.document_id, h.r DESC, h.file_id NULLS FIRST
    ), found AS (
        SELECT b.document_id, b.body, b.r
        FROM best b JOIN ioffice.document d ON d.id = b.document_id
        WHERE (d.drafter_id = v_me OR d.agency_id = ANY (v_agencies) OR d.id = ANY (v_tasks)
               OR (v_reader AND d.confidentiality = 'normal'
                   AND (d.register_id IS NULL
                        OR d.register_id IN (SELECT r.id FROM ioffice.register r WHERE NOT r.confidential))))
          AND (f.agency IS NULL OR d.agency_id = f.agency)
          AND (f.doc_type IS NULL OR d.doc_type = f.doc_type)
          AND (f.register IS NULL OR d.register_id = f.register)
          AND (f.state IS NULL OR d.state = f.state)
          AND (f.signer IS NULL OR d.signer_id = f.signer)
          AND (f.direction IS NULL OR d.direction = f.direction)
          AND (f.issued_from IS NULL OR coalesce(d.issued_on, d.sender_date) >= f.issued_from)
          AND (f.issued_to IS NULL OR coalesce(d.issued_on, d.sender_date) <= f.issued_to)
          AND (f.created_from IS NULL OR (d.created_at AT TIME ZONE ioffice.timezone())::date >= f.created_from)
          AND (f.created_to IS NULL OR (d.created_at AT TIME ZONE ioffice.timezone())::date <= f.created_to)
        ORDER BY b.r DESC, b.document_id DESC
        LIMIT search."limit"
    )
    -- (the snippet from the first 64 kB of a file's text: ts_headline
    -- parses all it is given, and a page of results has up to "limit")
    SELECT x.document_id, x.r::real,
           ts_headline('ioffice.search_vi'::regconfig, left(x.body, 65536), v_any,
                       'StartSel=«, StopSel=», MaxWords=30, MinWords=12, ShortWord=0, '
                       'MaxFragments=2, FragmentDelimiter=" … "')
    FROM found x
    ORDER BY x.r DESC, x.document_id DESC;
END
$$;
COMMENT ON FUNCTION search(text, jsonb, int) IS
  'Documents the actor may see whose metadata or file text has the query''s words (accent-insensitive, exact spelling ranked first), with a snippet; filters: agency, doc_type, register, state, signer, direction, issued_from/to, created_from/to';

-- Saved searches (Decree 30 Appendix VI III.6e): a person's named queries
-- with their filters, seen and run by that person only.
CREATE TABLE saved_search (
    id          bigserial PRIMARY KEY,
    person_id   bigint NOT NULL REFERENCES person,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    query       text NOT NULL CHECK (length(query) <= 1000),
    filters     jsonb NOT NULL DEFAULT '{}',
    saved_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (person_id, name)
);
COMMENT ON TABLE saved_search IS 'A person''s saved searches (query and filters of search()), by name';
ALTER TABLE saved_search ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON saved_search FOR SELECT
    USING (person_id = (SELECT ioffice.current_person()));
GRANT SELECT ON saved_search TO PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('saved_search', '');
SELECT pg_catalog.pg_extension_config_dump('saved_search_id_seq', '');

-- save_search(): the acting person's search under a name (a new one, or
-- the one of that name changed); its filters are checked as search() would.
CREATE FUNCTION save_search(name text, query text, filters jsonb DEFAULT '{}') RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me bigint := ioffice.actor();
    v_id bigint;
BEGIN
    PERFORM ioffice._search_filters(coalesce(save_search.filters, '{}'));
    IF save_search.name IS NULL OR length(save_search.name) NOT BETWEEN 1 AND 200 THEN
        RAISE EXCEPTION 'a saved search needs a name of 1 to 200 characters' USING ERRCODE = '22023';
    END IF;
    IF length(save_search.query) > 1000 THEN
        RAISE EXCEPTION 'a saved search''s query has at most 1000 characters' USING ERRCODE = '22023';
    END IF;
    INSERT INTO ioffice.saved_search AS s (person_id, name, query, filters)
    VALUES (v_me, save_search.name, coalesce(save_search.query, ''), coalesce(save_search.filters, '{}'))
    ON CONFLICT ON CONSTRAINT saved_search_person_id_name_key
    DO UPDATE SET query = EXCLUDED.query, filters = EXCLUDED.filters, saved_at = now()
    RETURNING s.id INTO v_id;
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION save_search(text, text, jsonb) IS 'Saves the actor''s search (query and filters) under a name; returns its id';

-- A saved search of the acting person, by id: another's is unknown (42704).
CREATE FUNCTION _own_saved_search(saved bigint) RETURNS ioffice.saved_search
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r ioffice.saved_search;
BEGIN
    SELECT * INTO r FROM ioffice.saved_search s
    WHERE s.id = saved AND s.person_id = ioffice.actor();
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown saved search %', saved USING ERRCODE = '42704';
    END IF;
    RETURN r;
END
$$;
REVOKE ALL ON FUNCTION _own_saved_search(bigint) FROM PUBLIC;

CREATE FUNCTION search_saved(saved bigint, "limit" int DEFAULT 100)
RETURNS TABLE(document bigint, rank real, snippet text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r ioffice.saved_search := ioffice._own_saved_search(saved);
BEGIN
    RETURN QUERY SELECT * FROM ioffice.search(r.query, r.filters, search_saved."limit");
END
$$;
COMMENT ON FUNCTION search_saved(bigint, int) IS 'Runs one of the actor''s saved searches: search() with its query and filters';

CREATE FUNCTION drop_saved_search(saved bigint) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM ioffice._own_saved_search(saved);
    DELETE FROM ioffice.saved_search s WHERE s.id = saved;
END
$$;
COMMENT ON FUNCTION drop_saved_search(bigint) IS 'Deletes one of the actor''s saved searches';

-- the documents of 0.1, searchable at once
INSERT INTO search_text (document_id, file_id, body)
SELECT d.id, NULL, _search_metadata(d) FROM document d;
-- and the text of their current PDF, docx and xlsx files, which the worker
-- extracts
INSERT INTO search_extraction (file_id, document_id)
SELECT f.id, f.document_id FROM file f
WHERE f.kind IN ('pdf', 'docx', 'xlsx') AND f.superseded_at IS NULL AND f.removed_at IS NULL;

-- ==== plan_kept_dossiers ====
-- can_see_dossier() and _dossier_event() keep their plans for the session (PL/pgSQL, not SQL)
CREATE OR REPLACE FUNCTION can_see_dossier(dossier bigint) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me bigint := ioffice.current_person();
BEGIN
    -- (PL/pgSQL for its plan kept across calls, as can_see())
    IF v_me IS NULL THEN
        RETURN false;
    END IF;
    RETURN EXISTS (
        WITH held AS (
            SELECT d.received_by AS person FROM ioffice.dossier d WHERE d.id = can_see_dossier.dossier
            UNION SELECT t.receiver_id FROM ioffice.dossier_task t WHERE t.dossier_id = can_see_dossier.dossier
            UNION SELECT t.sender_id FROM ioffice.dossier_task t WHERE t.dossier_id = can_see_dossier.dossier
            UNION SELECT t.processed_by FROM ioffice.dossier_task t
                   WHERE t.dossier_id = can_see_dossier.dossier AND t.processed_by IS NOT NULL)
        SELECT 1 WHERE v_me IN (SELECT person FROM held)
                    OR EXISTS (SELECT 1 FROM held h
                               JOIN ioffice.person p ON p.id = h.person
                               JOIN ioffice.person_role r
                                 ON r.unit_id = p.unit_id AND r.role = 'leader'
                               WHERE r.person_id = v_me)
                    OR EXISTS (SELECT 1 FROM ioffice.person_role r
                               WHERE r.person_id = v_me AND r.role = 'admin'));
END
$$;

CREATE OR REPLACE FUNCTION _dossier_event(dossier bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- (PL/pgSQL for its plan kept across calls, as can_see())
    RETURN (SELECT jsonb_build_object(
             'code', d.code, 'status', s.code, 'status_name', s.name, 'state', d.state,
             'procedure_code', d.procedure_code,
             'received_at', to_char(d.received_at AT TIME ZONE ioffice.timezone(), 'YYYY-MM-DD"T"HH24:MI:SS'),
             'deadline', to_char(d.deadline AT TIME ZONE ioffice.timezone(), 'YYYY-MM-DD"T"HH24:MI:SS'),
             'paused', d.paused_at IS NOT NULL,
             'result_symbol', r.symbol)
      FROM ioffice.dossier d
      JOIN ioffice.dossier_state_status x ON x.workflow = d.workflow AND x.state = d.state
      JOIN ioffice.dossier_status s ON s.code = x.status
      LEFT JOIN ioffice.document r ON r.id = d.result_document_id
     WHERE d.id = _dossier_event.dossier);
END
$$;

-- ==== permission_changes ====
-- Changes of who may see or do what, flagged until confirmed (Decree 30,
-- Appendix VI, III.3c: "cảnh báo sự thay đổi về quyền truy cập đối với từng
-- hồ sơ, văn bản trong Hệ thống cho đến khi có xác nhận của người có thẩm
-- quyền").  Every change of a role, of a delegation, and every change of a
-- document's visibility made outside the workflow (a task inserted, moved or
-- removed by hand, a document's drafter or agency changed) writes a row
-- here, whoever makes it and by whatever path, the extension's functions or
-- a DBA's statement; it stays unconfirmed until a DBA of the directory
-- (ioffice_admin) confirms it.  The change itself is in the audit trail as
-- before (the functions' own records, or the direct-change triggers'); the
-- confirmation is audited too.
--
-- Not flagged: the tasks the workflow creates and closes (that is the
-- document's normal course, audited by its steps), and a restore loading a
-- dump (its rows were flagged, or confirmed, where they were made).

CREATE TABLE permission_change (
    id             bigserial PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT now(),
    kind           text NOT NULL CHECK (kind IN ('role', 'delegation', 'visibility')),
    operation      text NOT NULL CHECK (operation IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')),
    -- whose access changed: the role's holder, the delegate; NULL for a
    -- TRUNCATE, or a document whose visibility changed for several people
    person_id      bigint,
    -- the document whose visibility changed (kind visibility)
    document_id    bigint,
    before         jsonb,
    after          jsonb,
    -- who changed it: the person acting (ioffice.actor), when one was, and
    -- the database role (a DBA's direct statement has only that)
    changed_by     bigint,
    db_role        text NOT NULL DEFAULT session_user,
    confirmed_at   timestamptz,
    confirmed_role text,
    confirmed_by   bigint,
    confirm_note   text CHECK (length(confirm_note) <= 1000),
    CHECK ((confirmed_at IS NULL) = (confirmed_role IS NULL))
);
-- no foreign keys: the flag outlives a person or a document removed since
CREATE INDEX permission_change_unconfirmed_idx ON permission_change (id) WHERE confirmed_at IS NULL;
CREATE INDEX permission_change_document_idx ON permission_change (document_id) WHERE document_id IS NOT NULL;
COMMENT ON TABLE permission_change IS
  'Changes of roles, delegations and documents'' visibility, flagged until a DBA confirms them (Decree 30, Appendix VI, III.3c)';
REVOKE ALL ON permission_change FROM PUBLIC;
GRANT SELECT ON permission_change TO ioffice_admin;
SELECT pg_catalog.pg_extension_config_dump('permission_change', '');
SELECT pg_catalog.pg_extension_config_dump('permission_change_id_seq', '');

-- The trigger of the three tables: TG_ARGV[0] is the kind.  SECURITY
-- DEFINER: whoever may change a role may not write here.
CREATE FUNCTION _permission_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_old  jsonb;
    v_new  jsonb;
    v_row  jsonb;
    v_person bigint;
    v_doc  bigint;
BEGIN
    IF ioffice._restoring_dump() THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        v_old := to_jsonb(OLD);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        v_new := to_jsonb(NEW);
    END IF;
    IF TG_OP = 'UPDATE' AND v_old = v_new THEN
        RETURN NULL;
    END IF;
    v_row := coalesce(v_new, v_old);
    IF TG_TABLE_NAME = 'person_role' THEN
        v_person := (v_row->>'person_id')::bigint;
    ELSIF TG_TABLE_NAME = 'delegation' THEN
        v_person := (v_row->>'to_person')::bigint;
    ELSIF TG_TABLE_NAME = 'task' THEN
        v_doc := (v_row->>'document_id')::bigint;
        v_person := (v_row->>'receiver_id')::bigint;
    ELSIF TG_TABLE_NAME = 'document' THEN
        v_doc := (v_row->>'id')::bigint;
        -- what of a document decides who sees it; its other columns are the
        -- direct-change audit's business
        v_old := jsonb_build_object('drafter_id', v_old->'drafter_id', 'agency_id', v_old->'agency_id');
        v_new := jsonb_build_object('drafter_id', v_new->'drafter_id', 'agency_id', v_new->'agency_id');
    END IF;
    INSERT INTO ioffice.permission_change (kind, operation, person_id, document_id, before, after, changed_by)
    VALUES (TG_ARGV[0], TG_OP, v_person, v_doc, v_old, v_new, ioffice.current_person());
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION _permission_changed() FROM PUBLIC;

CREATE TRIGGER permission_change AFTER INSERT OR UPDATE OR DELETE ON person_role
    FOR EACH ROW EXECUTE FUNCTION _permission_changed('role');
CREATE TRIGGER permission_change_truncate AFTER TRUNCATE ON person_role
    FOR EACH STATEMENT EXECUTE FUNCTION _permission_changed('role');
CREATE TRIGGER permission_change AFTER INSERT OR UPDATE OR DELETE ON delegation
    FOR EACH ROW EXECUTE FUNCTION _permission_changed('delegation');
CREATE TRIGGER permission_change_truncate AFTER TRUNCATE ON delegation
    FOR EACH STATEMENT EXECUTE FUNCTION _permission_changed('delegation');
CREATE TRIGGER permission_change AFTER INSERT OR UPDATE OF document_id, receiver_id, sender_id, processed_by OR DELETE
    ON task FOR EACH ROW WHEN (_outside_engine()) EXECUTE FUNCTION _permission_changed('visibility');
CREATE TRIGGER permission_change_truncate AFTER TRUNCATE ON task
    FOR EACH STATEMENT EXECUTE FUNCTION _permission_changed('visibility');
CREATE TRIGGER permission_change AFTER UPDATE OF drafter_id, agency_id ON document
    FOR EACH ROW WHEN (OLD.drafter_id IS DISTINCT FROM NEW.drafter_id OR OLD.agency_id IS DISTINCT FROM NEW.agency_id)
    EXECUTE FUNCTION _permission_changed('visibility');

-- A flag is written once and confirmed once: nothing else of it changes,
-- and none is removed (a TRUNCATE or DELETE by the owner included; the
-- audit's guard, as for the trail itself).
CREATE FUNCTION _permission_change_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND OLD.confirmed_at IS NULL AND NEW.confirmed_at IS NOT NULL
       AND (to_jsonb(OLD) - '{confirmed_at,confirmed_role,confirmed_by,confirm_note}'::text[])
           = (to_jsonb(NEW) - '{confirmed_at,confirmed_role,confirmed_by,confirm_note}'::text[]) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'permission changes are kept as they were flagged'
        USING ERRCODE = '55000',
              DETAIL = CASE WHEN TG_OP = 'UPDATE' AND OLD.confirmed_at IS NOT NULL
                            THEN format('change %s was confirmed already', OLD.id)
                            WHEN TG_OP = 'UPDATE' THEN 'only the confirmation may be added to a flag'
                            ELSE format('%s is not allowed on permission_change', TG_OP) END,
              HINT = 'Confirm a change with ioffice.confirm_permission_change(id).';
END
$$;
CREATE TRIGGER guard BEFORE UPDATE OR DELETE ON permission_change
    FOR EACH ROW EXECUTE FUNCTION _permission_change_guard();
CREATE TRIGGER guard_truncate BEFORE TRUNCATE ON permission_change
    FOR EACH STATEMENT EXECUTE FUNCTION _permission_change_guard();

CREATE VIEW unconfirmed_permission_changes AS
SELECT c.id, c.at, c.kind, c.operation, c.person_id, p.login, c.document_id, c.before, c.after,
       c.changed_by, b.login AS changed_by_login, c.db_role
  FROM permission_change c
  LEFT JOIN person p ON p.id = c.person_id
  LEFT JOIN person b ON b.id = c.changed_by
 WHERE c.confirmed_at IS NULL;
COMMENT ON VIEW unconfirmed_permission_changes IS
  'Changes of access waiting for a DBA''s confirmation, oldest first by id';
REVOKE ALL ON unconfirmed_permission_changes FROM PUBLIC;
GRANT SELECT ON unconfirmed_permission_changes TO ioffice_admin;

-- Confirm a flagged change (a DBA of the directory): who and when, and the
-- note, in the flag and in the audit trail.  Returns false when it was
-- confirmed already (by someone else at the same time, say).
CREATE FUNCTION confirm_permission_change(change bigint, note text DEFAULT NULL) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_kind text;
BEGIN
    IF length(note) > 1000 THEN
        RAISE EXCEPTION 'a confirmation note is at most 1000 characters' USING ERRCODE = '22023';
    END IF;
    UPDATE ioffice.permission_change c
       SET confirmed_at = now(), confirmed_role = session_user,
           confirmed_by = ioffice.current_person(), confirm_note = note
     WHERE c.id = confirm_permission_change.change AND c.confirmed_at IS NULL
    RETURNING c.kind INTO v_kind;
    IF NOT FOUND THEN
        IF NOT EXISTS (SELECT 1 FROM ioffice.permission_change c
                        WHERE c.id = confirm_permission_change.change) THEN
            RAISE EXCEPTION 'unknown permission change %', change USING ERRCODE = '42704';
        END IF;
        RETURN false;
    END IF;
    PERFORM ioffice._audit('permission_change', change, 'confirm', 'unconfirmed', 'confirmed',
                           jsonb_build_object('kind', v_kind, 'note', note));
    RETURN true;
END
$$;
REVOKE ALL ON FUNCTION confirm_permission_change(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION confirm_permission_change(bigint, text) TO ioffice_admin;
COMMENT ON FUNCTION confirm_permission_change(bigint, text) IS
  'Confirms a flagged change of roles, delegation or visibility (Decree 30, Appendix VI, III.3c); false if it was confirmed already';

-- ==== dossier_apology ====
-- The apology slip with a new return date (phiếu xin lỗi và hẹn lại ngày trả
-- kết quả; Decree 61/2018 art. 19, form 04 of Circular 01/2018/TT-VPCP;
-- Decree 30, Appendix VI, issue 19 item 8): a dossier that will not be
-- finished by the date promised to the applicant gets, at the latest the
-- working day before that date (or once it is past), a slip that apologises,
-- gives the reason and a new date.  The slip goes to the applicant through
-- the outbox (event dossier.apology: the public service portal or the
-- one-stop desk's system prints or sends it).  The statutory deadline does
-- not move: the dossier still counts as late in every report; what moves is
-- the date promised, which the next slip must go beyond.

CREATE TABLE dossier_apology (
    id             bigserial PRIMARY KEY,
    dossier_id     bigint NOT NULL REFERENCES dossier,
    issued_at      timestamptz NOT NULL DEFAULT now(),
    issued_by      bigint NOT NULL REFERENCES person,
    reason         text NOT NULL CHECK (length(reason) BETWEEN 1 AND 1000),
    -- the date promised before this slip (the deadline, or the last slip's)
    -- and the new one
    promised_at    timestamptz NOT NULL,
    new_return_at  timestamptz NOT NULL,
    -- what the applicant received, as sent
    slip           jsonb NOT NULL,
    CHECK (new_return_at > promised_at)
);
CREATE INDEX dossier_apology_dossier_idx ON dossier_apology (dossier_id, id);
COMMENT ON TABLE dossier_apology IS
  'Apology slips with a new return date (phiếu xin lỗi và hẹn lại ngày trả kết quả) sent for late dossiers';
SELECT pg_catalog.pg_extension_config_dump('dossier_apology', '');
SELECT pg_catalog.pg_extension_config_dump('dossier_apology_id_seq', '');
-- who sees a dossier sees its slips
ALTER TABLE dossier_apology ENABLE ROW LEVEL SECURITY;
CREATE POLICY visible ON dossier_apology FOR SELECT USING (can_see_dossier(dossier_id));
REVOKE ALL ON dossier_apology FROM PUBLIC;
GRANT SELECT ON dossier_apology TO PUBLIC;
CREATE TRIGGER audit_direct AFTER INSERT OR UPDATE OR DELETE ON dossier_apology
    FOR EACH ROW WHEN (_outside_engine()) EXECUTE FUNCTION _audit_direct('dossier_id');
CREATE TRIGGER audit_direct_truncate AFTER TRUNCATE ON dossier_apology
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_direct();

-- The slip: by the dossier's holder or a one-stop officer of its agency;
-- returns it as sent.
CREATE FUNCTION dossier_apologize(code text, new_return_at timestamptz, reason text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor   bigint := ioffice.actor();
    v_id      bigint;
    d         record;
    v_promised timestamptz;
    v_slips   int;
    v_tz      text := ioffice.timezone();
    v_slip    jsonb;
BEGIN
    PERFORM ioffice._engine_enter();
    IF code IS NULL OR new_return_at IS NULL OR reason IS NULL THEN
        RAISE EXCEPTION 'dossier_apologize needs a dossier code, the new return date and the reason'
            USING ERRCODE = '22023';
    END IF;
    IF length(btrim(reason)) NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'the reason must be 1 to 1000 characters' USING ERRCODE = '22023';
    END IF;
    v_id := ioffice._require_dossier(code);
    -- one slip at a time per dossier, judged on the state the last one left
    SELECT x.*, ws.final, a.name AS agency_name, a.code AS agency_code
      INTO d
      FROM ioffice.dossier x
      JOIN ioffice.workflow_state ws ON ws.workflow = x.workflow AND ws.state = x.state
      JOIN ioffice.unit a ON a.id = x.agency_id
     WHERE x.id = v_id
       FOR UPDATE OF x;
    IF d.final OR d.finished_at IS NOT NULL THEN
        RAISE EXCEPTION 'dossier % is finished: no apology slip is due', code
            USING ERRCODE = '55000';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ioffice.dossier_task t
                    WHERE t.dossier_id = v_id AND t.status = 'open' AND t.receiver_id = v_actor)
       AND NOT EXISTS (SELECT 1 FROM ioffice.person_role r
                        WHERE r.person_id = v_actor AND r.role = 'one_stop' AND r.unit_id = d.agency_id) THEN
        RAISE EXCEPTION 'only the dossier''s holder or a one-stop officer of its agency may send an apology slip'
            USING ERRCODE = '42501';
    END IF;
    SELECT coalesce(max(p.new_return_at), d.deadline), count(*) INTO v_promised, v_slips
      FROM ioffice.dossier_apology p WHERE p.dossier_id = v_id;
    -- at the latest one working day before the promised date, or after it
    IF v_promised > now() AND ioffice.working_days_between(now(), v_promised) > 1 THEN
        RAISE EXCEPTION 'dossier % is not late: its return is promised for %', code,
              to_char(v_promised AT TIME ZONE v_tz, 'DD/MM/YYYY HH24:MI')
            USING ERRCODE = '55000',
                  HINT = 'A slip is sent from the working day before the promised date on.';
    END IF;
    IF new_return_at <= greatest(now(), v_promised) THEN
        RAISE EXCEPTION 'the new return date must be later than now and than the date promised (%)',
              to_char(v_promised AT TIME ZONE v_tz, 'DD/MM/YYYY HH24:MI')
            USING ERRCODE = '22023';
    END IF;

    v_slip := jsonb_build_object(
        'title', 'PHIẾU XIN LỖI VÀ HẸN LẠI NGÀY TRẢ KẾT QUẢ',
        'agency', d.agency_name, 'agency_code', d.agency_code,
        'applicant', d.applicant->>'name',
        'phone', d.applicant->>'phone', 'email', d.applicant->>'email',
        'dossier', d.code, 'procedure_code', d.procedure_code, 'procedure_name', d.procedure_name,
        'received_at', to_char(d.received_at AT TIME ZONE v_tz, 'YYYY-MM-DD"T"HH24:MI:SS'),
        'promised_at', to_char(v_promised AT TIME ZONE v_tz, 'YYYY-MM-DD"T"HH24:MI:SS'),
        'new_return_at', to_char(new_return_at AT TIME ZONE v_tz, 'YYYY-MM-DD"T"HH24:MI:SS'),
        'reason', btrim(reason),
        'number', v_slips + 1,
        'issued_by', (SELECT p.full_name FROM ioffice.person p WHERE p.id = v_actor),
        'text', format('%s xin lỗi Ông/Bà %s vì hồ sơ %s (%s), tiếp nhận ngày %s, hẹn trả kết quả ngày %s, '
                       'chưa được giải quyết đúng hạn. Lý do: %s. %s hẹn lại ngày trả kết quả là ngày %s. '
                       'Mong Ông/Bà thông cảm.',
                       d.agency_name, d.applicant->>'name', d.code, d.procedure_name,
                       to_char(d.received_at AT TIME ZONE v_tz, 'DD/MM/YYYY'),
                       to_char(v_promised AT TIME ZONE v_tz, 'DD/MM/YYYY'),
                       btrim(reason), d.agency_name,
                       to_char(new_return_at AT TIME ZONE v_tz, 'DD/MM/YYYY')));
    INSERT INTO ioffice.dossier_apology (dossier_id, issued_by, reason, promised_at, new_return_at, slip)
    VALUES (v_id, v_actor, btrim(reason), v_promised, new_return_at, v_slip);
    UPDATE ioffice.dossier x SET updated_at = now() WHERE x.id = v_id;
    PERFORM ioffice._audit('dossier', v_id, 'apologize', d.state, d.state,
                           jsonb_build_object('promised_at', v_promised, 'new_return_at', new_return_at,
                                              'reason', btrim(reason)),
                           NULL, 'dossier:' || v_id);
    PERFORM ioffice._emit('dossier.apology', v_slip);
    PERFORM ioffice._engine_leave();
    RETURN v_slip;
END
$$;
COMMENT ON FUNCTION dossier_apologize(text, timestamptz, text) IS
  'The apology slip with a new return date for a late dossier (phiếu xin lỗi và hẹn lại ngày trả kết quả), sent as event dossier.apology; by its holder or a one-stop officer';

-- ==== search_export ====
-- The results of search() as a file (Decree 30, Appendix VI, III.6h): the
-- same rows in the same order, with each document's register metadata.
-- SECURITY DEFINER to read that metadata; search() itself looks at the
-- caller (extension/search_export.c).
CREATE FUNCTION search_export(query text, filters jsonb DEFAULT '{}', format text DEFAULT 'xlsx',
                              "limit" int DEFAULT 1000) RETURNS bytea
    AS 'MODULE_PATHNAME', 'ioffice_search_export'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION search_export(text, jsonb, text, int) IS
  'The results of search() as a file: xlsx (Excel workbook) or csv (UTF-8 with BOM, CRLF), with number and symbol, date, type, abstract, issuer, direction, state and snippet; only what search() shows the caller';

-- ==== audit_proofs ====
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

-- ==== hsm_seal ====
-- The seal's key in a hardware security module: a certificate row may name
-- its key by a PKCS#11 URI (the worker loads it through OpenSSL's pkcs11
-- engine), and register_certificate() takes it as a trailing parameter.
ALTER TABLE certificate ADD COLUMN key_uri text CONSTRAINT certificate_key_uri_check
                 CHECK (key_uri ~ '^pkcs11:[!-~]+$' AND length(key_uri) <= 1000 AND key_uri !~* '[?;&]pin-(value|source)=');
ALTER TABLE certificate ADD CONSTRAINT certificate_one_key
    CHECK (key_uri IS NULL OR (key_file IS NULL AND kind = 'organisation'));
COMMENT ON COLUMN certificate.key_uri IS 'The seal''s private key in a hardware security module: a PKCS#11 URI (RFC 7512) the signing worker loads the key by, through ioffice.pkcs11_module; the PIN is in ioffice.pkcs11_pin_file, never here';
DROP FUNCTION register_certificate(text, text, text, text);
-- A person's certificate (kind personal, owner a login) or an agency's seal
-- (kind organisation, owner an agency code), with the name of its private
-- key's file in the keystore, or (a seal only) the PKCS#11 URI of its key in
-- a hardware security module.
CREATE FUNCTION register_certificate(kind text, owner text, pem text, key_file text DEFAULT NULL,
                                     key_uri text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_info record;
    v_person bigint;
    v_agency bigint;
    v_id bigint;
BEGIN
    PERFORM ioffice._engine_enter();
    IF kind IS NULL OR owner IS NULL OR pem IS NULL THEN
        RAISE EXCEPTION 'a certificate needs its kind, owner and PEM text' USING ERRCODE = '22023';
    END IF;
    IF kind NOT IN ('personal', 'organisation') THEN
        RAISE EXCEPTION 'unknown certificate kind "%"', kind USING ERRCODE = '22023',
              HINT = 'Kinds are personal (owner: a login) and organisation (owner: an agency code).';
    END IF;
    IF key_file IS NOT NULL AND (key_file !~ '^[A-Za-z0-9_.-]{1,200}$' OR key_file IN ('.', '..')) THEN
        RAISE EXCEPTION 'key file "%" must be a plain file name of the keystore', key_file
            USING ERRCODE = '22023';
    END IF;
    IF key_uri IS NOT NULL THEN
        IF key_file IS NOT NULL THEN
            RAISE EXCEPTION 'a certificate''s key is either a key file or a PKCS#11 URI, not both'
                USING ERRCODE = '22023';
        END IF;
        IF kind <> 'organisation' THEN
            RAISE EXCEPTION 'only an agency''s seal may have its key in the server''s HSM' USING ERRCODE = '22023',
                  HINT = 'A person''s key stays under their sole control: register the certificate without a key.';
        END IF;
        IF key_uri !~ '^pkcs11:[!-~]+$' OR length(key_uri) > 1000 THEN
            RAISE EXCEPTION 'key URI "%" is not a PKCS#11 URI', pg_catalog.left(key_uri, 60)
                USING ERRCODE = '22023', HINT = 'For example pkcs11:token=seal;object=seal-key;type=private (RFC 7512).';
        END IF;
        IF key_uri ~* '[?;&]pin-(value|source)=' THEN
            RAISE EXCEPTION 'a key URI must not carry the PIN' USING ERRCODE = '22023',
                  HINT = 'The worker reads the PIN from the file ioffice.pkcs11_pin_file names.';
        END IF;
    END IF;
    v_info := ioffice._x509_info(pem);
    IF v_info.not_before IS NULL OR v_info.not_after IS NULL THEN
        RAISE EXCEPTION 'the certificate''s validity dates cannot be read' USING ERRCODE = '22023';
    END IF;
    IF NOT v_info.signs THEN
        RAISE EXCEPTION 'the certificate''s key usage allows no signing' USING ERRCODE = '22023',
              HINT = 'Signing certificates carry keyUsage digitalSignature or nonRepudiation.';
    END IF;
    IF kind = 'personal' THEN
        SELECT p.id INTO v_person FROM ioffice.person p WHERE p.login = owner;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'unknown person "%"', owner USING ERRCODE = '42704';
        END IF;
    ELSE
        SELECT u.id INTO v_agency FROM ioffice.unit u WHERE u.code = owner AND u.kind = 'agency';
        IF NOT FOUND THEN
            RAISE EXCEPTION 'unknown agency "%"', owner USING ERRCODE = '42704';
        END IF;
    END IF;
    IF EXISTS (SELECT 1 FROM ioffice.certificate c WHERE c.fingerprint = v_info.fingerprint) THEN
        RAISE EXCEPTION 'this certificate is already registered' USING ERRCODE = '23505';
    END IF;
    INSERT INTO ioffice.certificate (kind, person_id, agency_id, pem, subject, issuer, serial,
                                     not_before, not_after, fingerprint, key_file, key_uri, revoked_at)
    VALUES (kind, v_person, v_agency, pem, v_info.subject, v_info.issuer, v_info.serial,
            v_info.not_before, v_info.not_after, v_info.fingerprint, key_file, key_uri,
            (SELECT min(c.this_update) FROM ioffice.crl c
              WHERE c.issuer = v_info.issuer AND v_info.serial = ANY (c.serials)))
    RETURNING id INTO v_id;
    PERFORM ioffice._audit('certificate', v_id, 'register', NULL, NULL,
                           jsonb_build_object('kind', kind, 'owner', owner, 'subject', v_info.subject,
                                              'serial', v_info.serial, 'not_after', v_info.not_after)
                           || CASE WHEN key_uri IS NULL THEN '{}'::jsonb
                                   ELSE jsonb_build_object('key_uri', key_uri) END);
    PERFORM ioffice._engine_leave();
    RETURN v_id;
END
$$;
REVOKE ALL ON FUNCTION register_certificate(text, text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION register_certificate(text, text, text, text, text) TO ioffice_admin;

-- ==== remote_signing ====
-- Remote signing services (issue 13, item 2): a personal signature whose
-- signer has a credential with a signing service (VNPT SmartCA, Viettel
-- MySign, ... shaped like the Cloud Signature Consortium API) is signed
-- through it: the signing worker prepares the revision as signing_request()
-- does, sends the digest, and polls until the person confirms on their
-- phone, refuses, or the request expires (workers/remote_signing.c).

-- The services.  The client secret authenticates this system to the
-- service: only the extension's owner (the worker, and the SECURITY DEFINER
-- function that sets it) reads it; DBAs and applications read the other
-- columns (column privileges below).
CREATE TABLE signing_provider (
    id            bigserial PRIMARY KEY,
    name          text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9_.-]{1,63}$'),
    -- the CSC API's base: {base_url}/signatures/signHash, {base_url}/signatures/status
    base_url      text NOT NULL CHECK (base_url ~ '^https?://[^\s]+$' AND length(base_url) <= 2000),
    client_id     text NOT NULL CHECK (length(client_id) BETWEEN 1 AND 500),
    client_secret text NOT NULL CHECK (length(client_secret) BETWEEN 1 AND 500),
    timeout_ms    int NOT NULL DEFAULT 10000 CHECK (timeout_ms BETWEEN 100 AND 600000),
    enabled       boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE signing_provider IS 'Remote signing services (CSC API): base URL, this system''s client id and secret (the secret readable by the owner only)';
COMMENT ON COLUMN signing_provider.client_secret IS 'This system''s secret with the service (HTTP Basic with client_id); readable by the owner only';

-- A person's credential with a service: the service's user id and the
-- credential (key and certificate) it signs with; one per person.  Its
-- presence sends the person's pending signatures to the service.
CREATE TABLE signing_credential (
    person_id     bigint PRIMARY KEY REFERENCES person,
    provider_id   bigint NOT NULL REFERENCES signing_provider,
    user_id       text NOT NULL CHECK (length(user_id) BETWEEN 1 AND 200),
    credential_id text NOT NULL CHECK (length(credential_id) BETWEEN 1 AND 200),
    registered_at timestamptz NOT NULL DEFAULT now(),
    -- a credential is one person's: never two persons signing with one key
    UNIQUE (provider_id, credential_id)
);
COMMENT ON TABLE signing_credential IS 'A person''s credential with a remote signing service (the service''s user id and credential id); the person''s pending signatures go through it';

-- One request to a service: what was prepared (as token_request), the
-- transaction id sent with every call, the service's response id, and the
-- state: pending until confirmed, refused, expired or failed.  The signing
-- worker writes it; the embedding and the transaction's end are one
-- transaction.  No foreign keys, as token_request.
CREATE TABLE signing_transaction (
    id             bigserial PRIMARY KEY,
    signature_id   bigint NOT NULL,
    provider_id    bigint NOT NULL,
    person_id      bigint NOT NULL,
    user_id        text NOT NULL,
    credential_id  text NOT NULL,
    transaction_id text NOT NULL UNIQUE,
    response_id    text,
    certificate_id bigint NOT NULL,
    file_id        bigint NOT NULL,
    prepared       bytea,
    byte_range     bigint[] CHECK (byte_range IS NULL OR cardinality(byte_range) = 4),
    content_digest bytea NOT NULL,
    -- what the service signs: the SHA-256 of the CMS signed attributes,
    -- with signAlgo (the OID of rsaEncryption or ecdsa-with-SHA256)
    attrs_digest   bytea NOT NULL,
    sign_algo      text NOT NULL,
    state          text NOT NULL DEFAULT 'pending'
                   CHECK (state IN ('pending', 'confirmed', 'refused', 'expired', 'failed')),
    requested_at   timestamptz NOT NULL DEFAULT now(),
    sent_at        timestamptz,
    polls          int NOT NULL DEFAULT 0,
    failures       int NOT NULL DEFAULT 0,
    next_poll_at   timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    finished_at    timestamptz,
    reason         text,
    CHECK ((state = 'pending') = (finished_at IS NULL)),
    CHECK ((prepared IS NULL) = (byte_range IS NULL))
);
CREATE UNIQUE INDEX signing_transaction_pending_idx ON signing_transaction (signature_id)
    WHERE state = 'pending';
CREATE INDEX signing_transaction_due_idx ON signing_transaction (next_poll_at)
    WHERE state = 'pending';
CREATE INDEX signing_transaction_signature_idx ON signing_transaction (signature_id);
COMMENT ON TABLE signing_transaction IS 'Requests to remote signing services: the prepared revision, the transaction and response ids, the state (pending, confirmed, refused, expired, failed), the next poll, the expiry';

SELECT pg_catalog.pg_extension_config_dump('signing_provider', '');
SELECT pg_catalog.pg_extension_config_dump('signing_provider_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('signing_credential', '');
SELECT pg_catalog.pg_extension_config_dump('signing_transaction', '');
SELECT pg_catalog.pg_extension_config_dump('signing_transaction_id_seq', '');

REVOKE ALL ON signing_provider, signing_credential, signing_transaction FROM PUBLIC;
GRANT SELECT (id, name, base_url, client_id, timeout_ms, enabled, created_at)
    ON signing_provider TO ioffice_admin, ioffice_app;
GRANT SELECT ON signing_credential TO ioffice_admin;
GRANT SELECT (id, signature_id, provider_id, person_id, user_id, credential_id, transaction_id,
              response_id, certificate_id, file_id, sign_algo, state, requested_at, sent_at, polls, failures,
              next_poll_at, expires_at, finished_at, reason)
    ON signing_transaction TO ioffice_admin;
CREATE TRIGGER audit_direct AFTER INSERT OR UPDATE OR DELETE ON signing_provider
    FOR EACH ROW WHEN (_outside_engine()) EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct_truncate AFTER TRUNCATE ON signing_provider
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct AFTER INSERT OR UPDATE OR DELETE ON signing_credential
    FOR EACH ROW WHEN (_outside_engine()) EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct_truncate AFTER TRUNCATE ON signing_credential
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_direct();

-- A service registered, or its URL, client id, secret or state changed
-- (the same name again).
CREATE FUNCTION register_signing_provider(name text, base_url text, client_id text,
                                          client_secret text, enabled boolean DEFAULT true)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id bigint;
    v_new boolean;
BEGIN
    PERFORM ioffice._engine_enter();
    IF name IS NULL OR base_url IS NULL OR client_id IS NULL OR client_secret IS NULL
       OR enabled IS NULL THEN
        RAISE EXCEPTION 'a signing service needs its name, base URL, client id and secret'
            USING ERRCODE = '22023';
    END IF;
    IF name !~ '^[A-Za-z0-9_.-]{1,63}$' THEN
        RAISE EXCEPTION 'signing service name "%" is not a plain name', left(name, 60)
            USING ERRCODE = '22023', HINT = 'Letters, digits, _ . - (at most 63).';
    END IF;
    IF base_url !~ '^https?://[^\s]+$' OR length(base_url) > 2000 THEN
        RAISE EXCEPTION 'the base URL "%" is not an http or https URL', left(base_url, 60)
            USING ERRCODE = '22023';
    END IF;
    IF length(client_id) NOT BETWEEN 1 AND 500 OR length(client_secret) NOT BETWEEN 1 AND 500 THEN
        RAISE EXCEPTION 'the client id and secret are 1 to 500 characters' USING ERRCODE = '22023';
    END IF;
    INSERT INTO ioffice.signing_provider AS p (name, base_url, client_id, client_secret, enabled)
    VALUES (name, rtrim(base_url, '/'), client_id, client_secret, enabled)
    ON CONFLICT ON CONSTRAINT signing_provider_name_key DO UPDATE
       SET base_url = EXCLUDED.base_url, client_id = EXCLUDED.client_id,
           client_secret = EXCLUDED.client_secret, enabled = EXCLUDED.enabled
    RETURNING p.id, (xmax = 0) INTO v_id, v_new;
    -- the secret stays out of the audit trail
    PERFORM ioffice._audit('signing_provider', v_id, CASE WHEN v_new THEN 'register' ELSE 'update' END,
                           NULL, NULL,
                           jsonb_build_object('name', name, 'base_url', rtrim(base_url, '/'),
                                              'client_id', client_id, 'enabled', enabled));
    PERFORM ioffice._engine_leave();
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION register_signing_provider(text, text, text, text, boolean) IS
  'Registers a remote signing service (CSC API) by name, or changes it: base URL, this system''s client id and secret, enabled';

-- A person's credential with a service (replacing the person's earlier one).
CREATE FUNCTION register_signing_credential(login text, provider text, user_id text,
                                            credential_id text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_person bigint;
    v_provider bigint;
BEGIN
    PERFORM ioffice._engine_enter();
    IF login IS NULL OR provider IS NULL OR user_id IS NULL OR credential_id IS NULL THEN
        RAISE EXCEPTION 'a signing credential needs the login, the service, the user id and the credential id'
            USING ERRCODE = '22023';
    END IF;
    IF length(user_id) NOT BETWEEN 1 AND 200 OR length(credential_id) NOT BETWEEN 1 AND 200 THEN
        RAISE EXCEPTION 'the user id and credential id are 1 to 200 characters' USING ERRCODE = '22023';
    END IF;
    SELECT p.id INTO v_person FROM ioffice.person p WHERE p.login = register_signing_credential.login;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown person "%"', left(login, 60) USING ERRCODE = '42704';
    END IF;
    SELECT s.id INTO v_provider FROM ioffice.signing_provider s WHERE s.name = provider;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown signing service "%"', left(provider, 60) USING ERRCODE = '42704';
    END IF;
    IF EXISTS (SELECT 1 FROM ioffice.signing_credential c
                WHERE c.provider_id = v_provider
                  AND c.credential_id = register_signing_credential.credential_id
                  AND c.person_id <> v_person) THEN
        RAISE EXCEPTION 'this credential is another person''s' USING ERRCODE = '23505',
              DETAIL = 'A credential signs for one person only.';
    END IF;
    INSERT INTO ioffice.signing_credential AS c (person_id, provider_id, user_id, credential_id)
    VALUES (v_person, v_provider, user_id, credential_id)
    ON CONFLICT (person_id) DO UPDATE
       SET provider_id = EXCLUDED.provider_id, user_id = EXCLUDED.user_id,
           credential_id = EXCLUDED.credential_id, registered_at = now();
    PERFORM ioffice._audit('signing_credential', v_person, 'register', NULL, NULL,
                           jsonb_build_object('login', login, 'provider', provider,
                                              'user_id', user_id, 'credential_id', credential_id));
    PERFORM ioffice._engine_leave();
END
$$;
COMMENT ON FUNCTION register_signing_credential(text, text, text, text) IS
  'Registers a person''s credential with a remote signing service (the service''s user id, the credential id): their pending signatures go to it';

-- The person signs through the service no more (their signature tool, or a
-- key file, instead).
CREATE FUNCTION remove_signing_credential(login text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_person bigint;
    v_found boolean;
BEGIN
    PERFORM ioffice._engine_enter();
    SELECT p.id INTO v_person FROM ioffice.person p WHERE p.login = remove_signing_credential.login;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown person "%"', left(login, 60) USING ERRCODE = '42704';
    END IF;
    DELETE FROM ioffice.signing_credential c WHERE c.person_id = v_person;
    v_found := FOUND;
    IF v_found THEN
        PERFORM ioffice._audit('signing_credential', v_person, 'remove', NULL, NULL,
                               jsonb_build_object('login', login));
    END IF;
    PERFORM ioffice._engine_leave();
    RETURN v_found;
END
$$;
COMMENT ON FUNCTION remove_signing_credential(text) IS
  'Removes a person''s credential with a remote signing service; true if there was one';

REVOKE ALL ON FUNCTION register_signing_provider(text, text, text, text, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION register_signing_credential(text, text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION remove_signing_credential(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION register_signing_provider(text, text, text, text, boolean) TO ioffice_admin;
GRANT EXECUTE ON FUNCTION register_signing_credential(text, text, text, text) TO ioffice_admin;
GRANT EXECUTE ON FUNCTION remove_signing_credential(text) TO ioffice_admin;

-- ==== edxml ====

-- ---------------------------------------------------------------------------
-- edXML (QCVN 102:2016): packages for agencies outside this database
-- ---------------------------------------------------------------------------

-- Packages received and filed: one row per sender's DocumentId and recipient
-- agency, so that a package that arrives twice is filed once (the row is
-- written before the document, under this unique key: a second caller waits
-- for the first and then finds its document).
CREATE TABLE edxml_received (
    id             bigserial PRIMARY KEY,
    agency_id      bigint NOT NULL REFERENCES unit,
    sender_organ_id text NOT NULL CHECK (length(sender_organ_id) BETWEEN 1 AND 13),
    edxml_document_id text NOT NULL CHECK (length(edxml_document_id) BETWEEN 1 AND 100),
    -- set in the same transaction as the row
    document_id    bigint REFERENCES document,
    package_sha256 bytea NOT NULL CHECK (length(package_sha256) = 32),
    signer_subject text,
    received_at    timestamptz NOT NULL DEFAULT now(),
    received_by    bigint NOT NULL REFERENCES person,
    UNIQUE (agency_id, sender_organ_id, edxml_document_id)
);
CREATE INDEX edxml_received_document_idx ON edxml_received (document_id);
COMMENT ON TABLE edxml_received IS
  'edXML packages received and filed (edxml_receive): a package with the same sender and DocumentId is filed once per agency';

-- The status packages of the exchange (EDXML.md: 01 arrived, 02 refused, 03
-- registered, 04 assigned, 05 in progress, 06 finished, 13 recall asked, 15
-- recall accepted, 16 recall refused): those this database sends back
-- ('sent': sent_at NULL while the transport has not sent it yet) and those
-- it receives ('received').
CREATE TABLE edxml_status (
    id             bigserial PRIMARY KEY,
    document_id    bigint NOT NULL REFERENCES document,
    party_organ_id text NOT NULL CHECK (length(party_organ_id) BETWEEN 1 AND 13),
    edxml_document_id text NOT NULL CHECK (length(edxml_document_id) BETWEEN 1 AND 100),
    direction      text NOT NULL CHECK (direction IN ('sent', 'received')),
    code           text NOT NULL CHECK (code ~ '^[0-9]{2}$'),
    description    text CHECK (length(description) <= 2000),
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    sent_at        timestamptz,
    CHECK (direction = 'sent' OR sent_at IS NULL)
);
CREATE INDEX edxml_status_document_idx ON edxml_status (document_id, id);
CREATE INDEX edxml_status_unsent_idx ON edxml_status (id) WHERE direction = 'sent' AND sent_at IS NULL;
COMMENT ON TABLE edxml_status IS
  'edXML status codes per document and external party: sent back (sent_at NULL until the transport sends them) and received';

SELECT pg_catalog.pg_extension_config_dump('edxml_received', '');
SELECT pg_catalog.pg_extension_config_dump('edxml_received_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('edxml_status', '');
SELECT pg_catalog.pg_extension_config_dump('edxml_status_id_seq', '');
REVOKE ALL ON edxml_received, edxml_status FROM PUBLIC;
GRANT SELECT ON edxml_received, edxml_status TO ioffice_admin;

-- What a clerk sees of the exchange: per document (that the caller may see)
-- and external party, the status codes sent and received, with their times.
CREATE VIEW exchange_status AS
SELECT s.document_id AS document, s.party_organ_id AS party, s.edxml_document_id,
       s.direction, s.code, s.description, s.recorded_at, s.sent_at
FROM ioffice.edxml_status s
WHERE ioffice.can_see(s.document_id);
COMMENT ON VIEW exchange_status IS
  'edXML status codes per document and external agency (01 arrived, 02 refused, 03 registered, 04 assigned, 05 in progress, 06 finished, 13/15/16 recall): sent back and received, with times; only documents the caller may see';
REVOKE ALL ON exchange_status FROM PUBLIC;
GRANT SELECT ON exchange_status TO ioffice_app, ioffice_admin, ioffice_reader;

-- The edXML helper's reading of a package (extension/edxml.c): its fields
-- as JSON, or {"error", "field"}.  Internal.
CREATE FUNCTION _edxml_read(package text, trust text) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'ioffice_edxml_read_sql'
    LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION _edxml_read(text, text) FROM PUBLIC;

-- yyyy/MM/dd, the standard's dates
CREATE FUNCTION _edxml_date(d date) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$ SELECT to_char(d, 'YYYY/MM/DD') $$;
REVOKE ALL ON FUNCTION _edxml_date(date) FROM PUBLIC;

-- A value that breaks one of the standard's limits: 22023 naming the field.
CREATE FUNCTION _edxml_limit(field text, value text, max int) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF value IS NULL OR length(value) = 0 THEN
        RAISE EXCEPTION 'edXML field % is empty', field
            USING ERRCODE = '22023';
    END IF;
    IF length(value) > max THEN
        RAISE EXCEPTION 'edXML field % would have % characters; QCVN 102:2016 allows %',
            field, length(value), max
            USING ERRCODE = '22023',
                  DETAIL = format('Its value: %s', left(value, 60));
    END IF;
    RETURN value;
END
$$;
REVOKE ALL ON FUNCTION _edxml_limit(text, text, int) FROM PUBLIC;

-- The edXML package of an issued outgoing document for one external
-- recipient (its 13-character agency code): MessageHeader, TraceHeaderList
-- with Bussiness (BussinessDocType 0, a new document), the manifest and the
-- current files base64.  Unsigned: the seal's key is the worker's, which signs
-- it on the way out (extension/edxml.c, ioffice_edxml_sign).  Built with
-- SQL/XML, i.e. libxml2's writer, from our own data.
CREATE FUNCTION edxml_build(doc bigint, recipient text) RETURNS xml
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me bigint := ioffice.actor();
    d record;
    v_agency record;
    v_parent text;
    v_to_name text;
    v_clerk record;
    v_number text;
    v_notation text;
    v_priority text;
    v_files xml;
    v_manifest xml;
    v_places xml;
    v_ns constant text := 'http://www.mic.gov.vn/TBT/QCVN_102_2016';
BEGIN
    PERFORM ioffice._require_document(doc);
    SELECT * INTO d FROM ioffice.document WHERE id = doc;
    IF NOT EXISTS (SELECT 1 FROM ioffice.person_role r
                   WHERE r.person_id = v_me AND r.role = 'clerk' AND r.unit_id = d.agency_id) THEN
        RAISE EXCEPTION 'only a clerk of the issuing agency builds its edXML packages'
            USING ERRCODE = '42501';
    END IF;
    IF recipient IS NULL OR recipient !~ '^[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}$' THEN
        RAISE EXCEPTION 'recipient "%" is not an agency code of the form DDD.DD.DD.LDD',
            pg_catalog.left(recipient, 60)
            USING ERRCODE = '22023',
                  HINT = 'QCVN 102:2016 agency identifiers (OrganId) look like 000.00.00.G22.';
    END IF;
    IF d.direction <> 'outgoing' OR d.issued_at IS NULL OR d.number IS NULL THEN
        RAISE EXCEPTION 'document % is not an issued outgoing document', doc
            USING ERRCODE = '55000';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM jsonb_array_elements(d.recipients) e
                   WHERE e->>'code' = recipient OR e->>'place' = recipient) THEN
        RAISE EXCEPTION 'agency % is not a recipient of document %', recipient, doc
            USING ERRCODE = '22023';
    END IF;
    SELECT u.code, u.name, u.parent_id INTO v_agency FROM ioffice.unit u WHERE u.id = d.agency_id;
    IF v_agency.code IS NULL THEN
        RAISE EXCEPTION 'edXML field From/OrganId: the issuing agency has no agency code'
            USING ERRCODE = '22023',
                  HINT = 'Give the agency its QCVN 102:2016 code (unit.code).';
    END IF;
    SELECT a.name INTO v_parent FROM ioffice.unit a
    WHERE a.id = (SELECT p.agency_id FROM ioffice.unit p WHERE p.id = v_agency.parent_id);
    SELECT u.name INTO v_to_name FROM ioffice.unit u WHERE u.code = recipient AND u.kind = 'agency';
    SELECT p.full_name, p.phone, p.email, un.name AS unit_name INTO v_clerk
    FROM ioffice.person p JOIN ioffice.unit un ON un.id = p.unit_id WHERE p.id = v_me;
    -- the identifier's "number/notation" (01/UBND-VP): the number as it
    -- writes it, and the notation after it
    v_number := split_part(split_part(d.identifier, ',', 3), '/', 1);
    v_notation := substr(split_part(d.identifier, ',', 3), length(v_number) + 2);
    v_priority := CASE d.urgency WHEN 'normal' THEN '0' WHEN 'urgent' THEN '1'
                                 WHEN 'very_urgent' THEN '2' WHEN 'flash' THEN '3'
                                 ELSE '4' END;

    PERFORM ioffice._edxml_limit('From/OrganId', v_agency.code, 13),
            ioffice._edxml_limit('To/OrganId', recipient, 13),
            ioffice._edxml_limit('Code/CodeNumber', v_number, 11),
            ioffice._edxml_limit('Code/CodeNotation', v_notation, 30),
            ioffice._edxml_limit('Subject', d.abstract, 500),
            ioffice._edxml_limit('DocumentId', d.identifier, 100);

    SELECT xmlagg(xmlelement(name "Reference",
                      xmlelement(name "ContentId", 'cid:' || f.n),
                      xmlelement(name "ContentType", f.content_type),
                      xmlelement(name "Description", f.name),
                      xmlelement(name "AttachmentName", f.name)) ORDER BY f.n),
           xmlagg(xmlelement(name "Attachment",
                      xmlelement(name "ContentId", 'cid:' || f.n),
                      xmlelement(name "AttachmentName", f.name),
                      xmlelement(name "Description", f.name),
                      xmlelement(name "ContentType", f.content_type),
                      xmlelement(name "ContentTransferEncoded", encode(f.content, 'base64')))
                  ORDER BY f.n)
      INTO v_manifest, v_files
    FROM (SELECT row_number() OVER (ORDER BY fl.id) AS n, fl.name, fl.content,
                 CASE fl.kind WHEN 'pdf' THEN 'application/pdf'
                      WHEN 'docx' THEN 'application/vnd.openxmlformats-officedocument.wordprocessingml.document'
                      WHEN 'xlsx' THEN 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet'
                      WHEN 'doc' THEN 'application/msword'
                      WHEN 'xls' THEN 'application/vnd.ms-excel'
                      WHEN 'zip' THEN 'application/zip'
                      ELSE 'application/octet-stream' END AS content_type
          FROM ioffice.file fl
          WHERE fl.document_id = doc AND fl.superseded_at IS NULL AND fl.removed_at IS NULL) f;

    SELECT xmlagg(xmlelement(name "Place", coalesce(e->>'name', e->>'place')) ORDER BY o)
      INTO v_places
    FROM jsonb_array_elements(d.recipients) WITH ORDINALITY AS r(e, o);

    RETURN xmlelement(name "edXML", xmlattributes(v_ns AS xmlns),
        xmlelement(name "edXMLEnvelope",
            xmlelement(name "edXMLHeader",
                xmlelement(name "MessageHeader",
                    xmlelement(name "From",
                        xmlelement(name "OrganId", v_agency.code),
                        xmlelement(name "OrganizationInCharge", coalesce(v_parent, v_agency.name)),
                        xmlelement(name "OrganName", v_agency.name)),
                    xmlelement(name "To",
                        xmlelement(name "OrganId", recipient),
                        xmlforest(v_to_name AS "OrganName")),
                    xmlelement(name "Code",
                        xmlelement(name "CodeNumber", v_number),
                        xmlelement(name "CodeNotation", v_notation)),
                    xmlelement(name "PromulgationInfo",
                        xmlelement(name "Place", v_agency.name),
                        xmlelement(name "PromulgationDate", ioffice._edxml_date(d.issued_on))),
                    xmlelement(name "DocumentType",
                        xmlelement(name "Type", '1'),
                        xmlelement(name "TypeName", coalesce(d.doc_type_name, d.doc_type))),
                    xmlelement(name "Subject", d.abstract),
                    xmlelement(name "Content", d.abstract),
                    xmlelement(name "SignerInfo",
                        xmlforest((SELECT p.position FROM ioffice.person p WHERE p.id = d.signer_id)
                                      AS "Position",
                                  d.signer_name AS "FullName")),
                    xmlforest(ioffice._edxml_date(d.due_date) AS "DueDate"),
                    xmlelement(name "ToPlaces", v_places),
                    xmlelement(name "OtherInfo",
                        xmlelement(name "Priority", v_priority),
                        xmlforest(d.copies AS "PromulgationAmount", d.page_count AS "PageAmount")),
                    xmlelement(name "SteeringType", '1'),
                    xmlelement(name "DocumentId", d.identifier)),
                xmlelement(name "TraceHeaderList",
                    xmlelement(name "TraceHeader",
                        xmlelement(name "OrganId", v_agency.code),
                        xmlelement(name "Timestamp",
                            to_char(now() AT TIME ZONE ioffice.timezone(), 'YYYY/MM/DD HH24:MI:SS'))),
                    xmlelement(name "Bussiness",
                        xmlelement(name "DocumentId", d.identifier),
                        xmlelement(name "BussinessDocType", '0'),
                        xmlelement(name "BussinessDocReason", 'Văn bản điện tử mới'),
                        xmlelement(name "Paper", '0'),
                        xmlelement(name "StaffInfo",
                            xmlforest(v_clerk.unit_name AS "Department", v_clerk.full_name AS "Staff",
                                      v_clerk.email AS "Email", v_clerk.phone AS "Mobile"))))),
            xmlelement(name "edXMLBody",
                xmlelement(name "edXMLManifest", xmlattributes('1.0' AS version), v_manifest))),
        xmlelement(name "AttachmentEncoded", v_files));
END
$$;
COMMENT ON FUNCTION edxml_build(bigint, text) IS
  'The edXML package (QCVN 102:2016, unsigned: the worker signs it with the seal) of an issued outgoing document for one external recipient agency, by its code; for the issuing agency''s clerks';
REVOKE ALL ON FUNCTION edxml_build(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION edxml_build(bigint, text) TO ioffice_app, ioffice_admin;

-- Files a received package into the incoming queue of the agency it is
-- addressed to (state received, for its clerk to register), with its files,
-- and records the status 01 (arrived) to send back.  The helper reads it and
-- checks its signature against the trust anchors; a package that is not
-- well-formed, breaks a limit, is addressed to no agency here, or whose
-- signature is missing or does not verify is refused and nothing is filed.
-- The same package (sender and DocumentId) twice gives the same document.
-- _edxml_receive takes the package's text: the worker's path (items from
-- the axis) never has the backend parse it; edxml_receive(xml), the public
-- name, passes its text on.
CREATE FUNCTION _edxml_receive(package text) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me bigint := ioffice.actor();
    v_text text := package;
    v_trust text;
    p jsonb;
    v_agency bigint;
    v_sender text;
    v_docid text;
    v_key bigint;
    v_id bigint;
    v_doc_type text;
    v_urgency text;
    v_pages int;
    v_files int;
BEGIN
    IF package IS NULL THEN
        RAISE EXCEPTION 'an edXML package is required' USING ERRCODE = '22023';
    END IF;
    SELECT string_agg(t.pem, E'\n' ORDER BY t.id) INTO v_trust FROM ioffice.trust_anchor t;
    p := ioffice._edxml_read(v_text, coalesce(v_trust, ''));
    IF p ? 'error' THEN
        RAISE EXCEPTION 'edXML package refused: %', p->>'error'
            USING ERRCODE = '22023', DETAIL = format('Field %s.', p->>'field');
    END IF;
    -- the first addressee that is an agency of this database
    SELECT u.id INTO v_agency
    FROM jsonb_array_elements(p->'to') WITH ORDINALITY AS t(e, o)
    JOIN ioffice.unit u ON u.code = t.e->>'organ_id' AND u.kind = 'agency'
    ORDER BY t.o LIMIT 1;
    IF v_agency IS NULL THEN
        RAISE EXCEPTION 'edXML package refused: it is addressed to no agency of this database'
            USING ERRCODE = '22023',
                  DETAIL = format('Field To/OrganId: %s.',
                                  pg_catalog.left((SELECT string_agg(t.e->>'organ_id', ', ')
                                                   FROM jsonb_array_elements(p->'to') t(e)), 60));
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ioffice.person_role r
                   WHERE r.person_id = v_me AND r.role = 'clerk' AND r.unit_id = v_agency) THEN
        RAISE EXCEPTION 'only a clerk of the agency it is addressed to receives an edXML package'
            USING ERRCODE = '42501';
    END IF;
    IF p->'signature'->>'status' <> 'valid' THEN
        RAISE EXCEPTION 'edXML package refused: its signature is %', p->'signature'->>'status'
            USING ERRCODE = '42501', DETAIL = p->'signature'->>'reason';
    END IF;
    IF coalesce(p->>'bussiness_doc_type', '0') <> '0' THEN
        RAISE EXCEPTION 'edXML package refused: BussinessDocType % (recall, update, replace) is not handled yet',
            p->>'bussiness_doc_type'
            USING ERRCODE = '22023', DETAIL = 'Field TraceHeaderList/Bussiness/BussinessDocType.';
    END IF;
    IF jsonb_array_length(p->'attachments') = 0 THEN
        RAISE EXCEPTION 'edXML package refused: it carries no attachment'
            USING ERRCODE = '22023', DETAIL = 'Field AttachmentEncoded.';
    END IF;
    v_sender := p->'from'->>'organ_id';
    v_docid := p->>'document_id';

    PERFORM ioffice._engine_enter();
    -- the key first: a concurrent caller with the same package waits here
    INSERT INTO ioffice.edxml_received (agency_id, sender_organ_id, edxml_document_id,
                                        package_sha256, signer_subject, received_by)
    VALUES (v_agency, v_sender, v_docid, sha256(convert_to(v_text, 'UTF8')),
            p->'signature'->>'subject', v_me)
    ON CONFLICT (agency_id, sender_organ_id, edxml_document_id) DO NOTHING
    RETURNING id INTO v_key;
    IF v_key IS NULL THEN
        SELECT r.document_id INTO v_id FROM ioffice.edxml_received r
        WHERE r.agency_id = v_agency AND r.sender_organ_id = v_sender
          AND r.edxml_document_id = v_docid;
        PERFORM ioffice._engine_leave();
        RETURN v_id;
    END IF;

    -- the same document (sender, number and symbol, year) under another
    -- DocumentId, or registered from paper already: Decree 30's duplicate
    SELECT d.id INTO v_id FROM ioffice.document d
    WHERE d.direction = 'incoming' AND d.agency_id = v_agency AND d.sender_agency_id IS NULL
      AND d.sender_name = pg_catalog.left(coalesce(p->'from'->>'organ_name', v_sender), 500)
      AND d.sender_symbol = pg_catalog.left((p->>'code_number') || '/' || (p->>'code_notation'), 100)
      AND d.sender_year = extract(year FROM to_date(p->>'promulgation_date', 'YYYY/MM/DD'));
    IF FOUND THEN
        RAISE EXCEPTION 'edXML package refused: document %/% of % was received already',
            p->>'code_number', p->>'code_notation', pg_catalog.left(v_sender, 60)
            USING ERRCODE = '23505',
                  DETAIL = format('Incoming document %s; this package''s DocumentId is %s.',
                                  v_id, pg_catalog.left(v_docid, 100));
    END IF;
    SELECT t.code INTO v_doc_type FROM ioffice.doc_type t WHERE t.name = p->>'type_name';
    v_urgency := CASE p->>'priority' WHEN '1' THEN 'urgent' WHEN '2' THEN 'very_urgent'
                                     WHEN '3' THEN 'flash' WHEN '4' THEN 'flash'
                                     ELSE 'normal' END;
    v_pages := CASE WHEN (p->>'page_amount')::bigint BETWEEN 1 AND 100000
                    THEN (p->>'page_amount')::int END;
    INSERT INTO ioffice.document (workflow, direction, doc_type, abstract, state, urgency,
                                  agency_id, drafting_unit_id, page_count, due_date,
                                  sender_name, sender_symbol, sender_date, received_at, signer_name)
    VALUES ('incoming', 'incoming', coalesce(v_doc_type, 'CV'), p->>'subject',
            (SELECT s.state FROM ioffice.workflow_state s
             WHERE s.workflow = 'incoming' AND s.initial ORDER BY s.state LIMIT 1),
            v_urgency, v_agency, v_agency, v_pages,
            to_date(p->>'due_date', 'YYYY/MM/DD'),
            pg_catalog.left(coalesce(p->'from'->>'organ_name', v_sender), 500),
            pg_catalog.left((p->>'code_number') || '/' || (p->>'code_notation'), 100),
            to_date(p->>'promulgation_date', 'YYYY/MM/DD'), now(),
            pg_catalog.left(p->>'signer_name', 200))
    RETURNING id INTO v_id;
    INSERT INTO ioffice.file (document_id, name, kind, size, sha256, content, uploaded_by)
    SELECT v_id,
           pg_catalog.left(coalesce(a->>'name', a->>'description', a->>'content_id'), 255),
           coalesce(ioffice.file_kind(c.content), 'other'), octet_length(c.content),
           sha256(c.content), c.content, v_me
    FROM jsonb_array_elements(p->'attachments') WITH ORDINALITY AS x(a, o),
         LATERAL (SELECT decode(a->>'data', 'base64') AS content) c
    ORDER BY x.o;
    GET DIAGNOSTICS v_files = ROW_COUNT;
    UPDATE ioffice.edxml_received SET document_id = v_id WHERE id = v_key;
    INSERT INTO ioffice.edxml_status (document_id, party_organ_id, edxml_document_id, direction,
                                      code, description)
    VALUES (v_id, v_sender, v_docid, 'sent', '01', 'Đã đến');
    PERFORM ioffice._audit('document', v_id, 'edxml_receive', NULL, 'received',
                           jsonb_build_object('sender', v_sender, 'document_id', v_docid,
                                              'files', v_files,
                                              'signer', p->'signature'->>'subject'));
    PERFORM ioffice._engine_leave();
    RETURN v_id;
END
$$;
REVOKE ALL ON FUNCTION _edxml_receive(text) FROM PUBLIC;

CREATE FUNCTION edxml_receive(package xml) RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ SELECT ioffice._edxml_receive(package::text) $$;
COMMENT ON FUNCTION edxml_receive(xml) IS
  'Files a received edXML package (signature verified against the trust anchors) into the addressed agency''s incoming queue and records the status 01 to send back; the same package twice gives the same document';
REVOKE ALL ON FUNCTION edxml_receive(xml) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION edxml_receive(xml) TO ioffice_app, ioffice_admin;

-- ==== case_files ====

-- ---------------------------------------------------------------------------
-- Case files (hồ sơ) and the yearly list of an agency (Danh mục hồ sơ);
-- archive transfer (Decree 30 art. 28-31; appendix VI part I III.4-5, part
-- II III)
-- ---------------------------------------------------------------------------

-- The headings (đề mục) of an agency's list of a year, in their order.
CREATE TABLE case_file_heading (
    id          bigserial PRIMARY KEY,
    agency_id   bigint NOT NULL REFERENCES unit,
    year        int NOT NULL CHECK (year BETWEEN 1900 AND 9999),
    code        text NOT NULL CHECK (code ~ '^[^\s]{1,20}$'),
    title       text NOT NULL CHECK (length(title) BETWEEN 1 AND 500),
    position    int NOT NULL,
    UNIQUE (agency_id, year, code)
);
COMMENT ON TABLE case_file_heading IS 'Headings (đề mục) of an agency''s yearly list of case files (Danh mục hồ sơ), in order of position';

-- A case file.  Its code (FileCode, appendix VI part II III.1) is the
-- agency's identifier (OrganId, 13 characters, as it was when the file was
-- made), the year (FileCatalog) and the file's notation (FileNotation, up to
-- 20 characters), joined by dots.  The running number of its documents is
-- this row's counter (next_ordinal): updating it takes the row lock that
-- gives two clerks filing at once distinct consecutive numbers.  The counter
-- is not granted to PUBLIC: it tells how many documents were filed, some of
-- which the reader may not see.
CREATE TABLE case_file (
    id              bigserial PRIMARY KEY,
    agency_id       bigint NOT NULL REFERENCES unit,
    year            int NOT NULL CHECK (year BETWEEN 1900 AND 9999),
    heading_id      bigint REFERENCES case_file_heading,
    organ_id        text NOT NULL CHECK (organ_id ~ '^[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}$'),
    notation        text NOT NULL CHECK (notation ~ '^[^\s]{1,20}$'),
    code            text GENERATED ALWAYS AS (organ_id || '.' || year::text || '.' || notation) STORED,
    title           text NOT NULL CHECK (length(title) BETWEEN 1 AND 500),
    -- Maintenance: a number of years, or permanent (vĩnh viễn)
    retention_years int CHECK (retention_years BETWEEN 1 AND 999),
    permanent       boolean NOT NULL DEFAULT false,
    retention       text GENERATED ALWAYS AS
                    (CASE WHEN permanent THEN 'Vĩnh viễn' ELSE retention_years::text || ' năm' END) STORED,
    -- Rights (chế độ sử dụng), Language, Description
    rights          text CHECK (length(rights) BETWEEN 1 AND 30),
    language        text NOT NULL DEFAULT 'Tiếng Việt' CHECK (length(language) BETWEEN 1 AND 50),
    description     text CHECK (length(description) <= 500),
    -- the person in charge of the file (người lập hồ sơ, Creator)
    responsible_id  bigint NOT NULL REFERENCES person,
    -- StartDate and EndDate
    opened_on       date NOT NULL,
    closed_on       date,
    state           text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'closed', 'transferred')),
    next_ordinal    int NOT NULL DEFAULT 1 CHECK (next_ordinal BETWEEN 1 AND 1000),
    created_by      bigint NOT NULL REFERENCES person,
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- the archive's 30-day warning, once (case_file_archive_warnings())
    warned_at       timestamptz,
    -- the transfer to the agency's archive that took it
    transfer_id     bigint,
    CHECK (permanent = (retention_years IS NULL)),
    CHECK ((state = 'open') = (closed_on IS NULL)),
    CHECK ((state = 'transferred') = (transfer_id IS NOT NULL)),
    CHECK (closed_on IS NULL OR closed_on >= opened_on),
    UNIQUE (agency_id, code)
);
CREATE INDEX case_file_agency_year_idx ON case_file (agency_id, year);
CREATE INDEX case_file_responsible_idx ON case_file (responsible_id);
CREATE INDEX case_file_closed_idx ON case_file (closed_on) WHERE state = 'closed';
COMMENT ON TABLE case_file IS 'Case files (hồ sơ) of an agency''s yearly list (Danh mục hồ sơ): code, title, retention, person in charge, dates';
COMMENT ON COLUMN case_file.code IS 'FileCode: the agency''s identifier (13), the year (4) and the file''s notation (up to 20), joined by dots';
COMMENT ON COLUMN case_file.retention IS 'Maintenance: the retention period, a number of years or Vĩnh viễn (permanent)';

-- The documents of a case file, without copies (III.4e), with their running
-- number in the file (III.4b: 1, 2, 3 … in the order they were filed).  A
-- document taken out of a file keeps its row (who, when): its number is
-- not given again, and filing it again gives it a new one.
CREATE TABLE case_file_document (
    case_file_id bigint NOT NULL REFERENCES case_file,
    ordinal      int NOT NULL CHECK (ordinal >= 1),
    document_id  bigint NOT NULL REFERENCES document,
    filed_by     bigint NOT NULL REFERENCES person,
    filed_at     timestamptz NOT NULL DEFAULT now(),
    unfiled_by   bigint REFERENCES person,
    unfiled_at   timestamptz,
    PRIMARY KEY (case_file_id, ordinal),
    CHECK ((unfiled_at IS NULL) = (unfiled_by IS NULL))
);
CREATE UNIQUE INDEX case_file_document_once_idx ON case_file_document (case_file_id, document_id)
    WHERE unfiled_at IS NULL;
CREATE INDEX case_file_document_document_idx ON case_file_document (document_id);
COMMENT ON TABLE case_file_document IS 'Documents filed into case files (no copies), with their running number in the file; taken out ones are kept, marked';

-- Transfers to the agency's archive (nộp lưu): who, when, which files.
CREATE TABLE archive_transfer (
    id              bigserial PRIMARY KEY,
    agency_id       bigint NOT NULL REFERENCES unit,
    transferred_by  bigint NOT NULL REFERENCES person,
    transferred_at  timestamptz NOT NULL DEFAULT now(),
    note            text CHECK (length(note) <= 500)
);
COMMENT ON TABLE archive_transfer IS 'Transfers of closed case files to the agency''s archive (nộp lưu): who and when';
ALTER TABLE case_file ADD FOREIGN KEY (transfer_id) REFERENCES archive_transfer;

SELECT pg_catalog.pg_extension_config_dump('case_file_heading', '');
SELECT pg_catalog.pg_extension_config_dump('case_file_heading_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('case_file', '');
SELECT pg_catalog.pg_extension_config_dump('case_file_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('case_file_document', '');
SELECT pg_catalog.pg_extension_config_dump('archive_transfer', '');
SELECT pg_catalog.pg_extension_config_dump('archive_transfer_id_seq', '');

-- A transferred file is the archive's: read-only, its documents too, for
-- everyone, the owner included (as the files of a final document are).  A
-- closed file takes no new documents.
CREATE FUNCTION _case_file_frozen() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_state text;
    v_id bigint;
BEGIN
    -- a restore loads the rows as they were (pg_dump's data of the tables)
    IF ioffice._restoring_dump() THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD WHEN TG_OP = 'TRUNCATE' THEN NULL ELSE NEW END;
    END IF;
    IF TG_OP = 'TRUNCATE' THEN
        IF EXISTS (SELECT 1 FROM ioffice.case_file c WHERE c.state = 'transferred') THEN
            RAISE EXCEPTION 'case files transferred to the archive are read-only'
                USING ERRCODE = '55000';
        END IF;
        RETURN NULL;
    END IF;
    IF TG_TABLE_NAME = 'case_file' THEN
        IF OLD.state = 'transferred' THEN
            RAISE EXCEPTION 'case file % is transferred to the archive: read-only', OLD.id
                USING ERRCODE = '55000';
        END IF;
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    v_id := CASE WHEN TG_OP = 'DELETE' THEN OLD.case_file_id ELSE NEW.case_file_id END;
    SELECT c.state INTO v_state FROM ioffice.case_file c WHERE c.id = v_id;
    IF v_state = 'transferred'
       OR (TG_OP = 'UPDATE' AND OLD.case_file_id <> NEW.case_file_id
           AND EXISTS (SELECT 1 FROM ioffice.case_file c
                        WHERE c.id = OLD.case_file_id AND c.state = 'transferred')) THEN
        RAISE EXCEPTION 'case file % is transferred to the archive: read-only', v_id
            USING ERRCODE = '55000';
    END IF;
    IF TG_OP = 'INSERT' AND v_state = 'closed' THEN
        RAISE EXCEPTION 'case file % is closed', v_id USING ERRCODE = '55000';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;
REVOKE ALL ON FUNCTION _case_file_frozen() FROM PUBLIC;
CREATE TRIGGER frozen BEFORE UPDATE OR DELETE ON case_file
    FOR EACH ROW EXECUTE FUNCTION _case_file_frozen();
CREATE TRIGGER frozen_truncate BEFORE TRUNCATE ON case_file
    FOR EACH STATEMENT EXECUTE FUNCTION _case_file_frozen();
CREATE TRIGGER frozen BEFORE INSERT OR UPDATE OR DELETE ON case_file_document
    FOR EACH ROW EXECUTE FUNCTION _case_file_frozen();
CREATE TRIGGER frozen_truncate BEFORE TRUNCATE ON case_file_document
    FOR EACH STATEMENT EXECUTE FUNCTION _case_file_frozen();

-- The agency of the current person's unit.
CREATE FUNCTION _person_agency() RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT u.agency_id FROM ioffice.person p JOIN ioffice.unit u ON u.id = p.unit_id
     WHERE p.id = ioffice.current_person()
$$;

-- Row-level security.  The list of case files (titles, codes) is the
-- agency's: its people, its clerks, the admins see it.  A filed document is
-- seen by whoever sees the document itself (the document's own policies,
-- applied by the sub-select): a person never learns of a document they may
-- not see by a file's contents, nor by its counts (the views count rows).
ALTER TABLE case_file_heading ENABLE ROW LEVEL SECURITY;
ALTER TABLE case_file ENABLE ROW LEVEL SECURITY;
ALTER TABLE case_file_document ENABLE ROW LEVEL SECURITY;
ALTER TABLE archive_transfer ENABLE ROW LEVEL SECURITY;
CREATE POLICY visible ON case_file_heading FOR SELECT
    USING (agency_id = (SELECT ioffice._person_agency())
           OR agency_id = ANY ((SELECT ioffice._clerk_agencies())::bigint[]));
CREATE POLICY visible ON case_file FOR SELECT
    USING (agency_id = (SELECT ioffice._person_agency())
           OR responsible_id = (SELECT ioffice.current_person())
           OR agency_id = ANY ((SELECT ioffice._clerk_agencies())::bigint[]));
CREATE POLICY visible ON archive_transfer FOR SELECT
    USING (agency_id = (SELECT ioffice._person_agency())
           OR agency_id = ANY ((SELECT ioffice._clerk_agencies())::bigint[]));
CREATE POLICY visible ON case_file_document FOR SELECT
    USING (EXISTS (SELECT 1 FROM ioffice.document d WHERE d.id = case_file_document.document_id)
           AND EXISTS (SELECT 1 FROM ioffice.case_file c WHERE c.id = case_file_document.case_file_id));
-- reporting tools read the lists (the documents' own policy for readers
-- decides which filed documents they see)
CREATE POLICY visible_to_readers ON case_file_heading FOR SELECT TO ioffice_reader
    USING ((SELECT pg_catalog.pg_has_role('ioffice_reader', 'USAGE')));
CREATE POLICY visible_to_readers ON case_file FOR SELECT TO ioffice_reader
    USING ((SELECT pg_catalog.pg_has_role('ioffice_reader', 'USAGE')));
CREATE POLICY visible_to_readers ON archive_transfer FOR SELECT TO ioffice_reader
    USING ((SELECT pg_catalog.pg_has_role('ioffice_reader', 'USAGE')));
GRANT SELECT ON case_file_heading, case_file_document, archive_transfer TO PUBLIC;
GRANT SELECT (id, agency_id, year, heading_id, organ_id, notation, code, title, retention_years,
              permanent, retention, rights, language, description, responsible_id, opened_on,
              closed_on, state, created_by, created_at, warned_at, transfer_id)
    ON case_file TO PUBLIC;

-- May the current person keep the case files of this agency (a clerk of it,
-- an admin)?  Or file into this one (also its person in charge)?
CREATE FUNCTION _require_case_file_keeper(agency bigint) RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor bigint := ioffice.actor();
BEGIN
    IF NOT ioffice.keeps_registers(agency) THEN
        RAISE EXCEPTION 'only a clerk of the agency or an admin keeps its list of case files'
            USING ERRCODE = '42501';
    END IF;
    RETURN v_actor;
END
$$;
REVOKE ALL ON FUNCTION _require_case_file_keeper(bigint) FROM PUBLIC;

CREATE FUNCTION add_case_file_heading(agency bigint, year int, code text, title text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor bigint;
    v_id bigint;
BEGIN
    PERFORM ioffice._engine_enter();
    IF agency IS NULL OR year IS NULL OR code IS NULL OR title IS NULL THEN
        RAISE EXCEPTION 'agency, year, code and title are required' USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ioffice.unit u WHERE u.id = agency AND u.kind = 'agency') THEN
        RAISE EXCEPTION 'unknown agency %', agency USING ERRCODE = '42704';
    END IF;
    v_actor := ioffice._require_case_file_keeper(agency);
    IF year NOT BETWEEN 1900 AND 9999 OR code !~ '^[^\s]{1,20}$' OR length(title) NOT BETWEEN 1 AND 500 THEN
        RAISE EXCEPTION 'a heading needs a year, a code of 1 to 20 characters without spaces and a title of 1 to 500'
            USING ERRCODE = '22023';
    END IF;
    IF EXISTS (SELECT 1 FROM ioffice.case_file_heading h
                WHERE h.agency_id = agency AND h.year = add_case_file_heading.year
                  AND h.code = add_case_file_heading.code) THEN
        RAISE EXCEPTION 'heading "%" of % already exists', pg_catalog.left(code, 60), year
            USING ERRCODE = '23505';
    END IF;
    INSERT INTO ioffice.case_file_heading (agency_id, year, code, title, position)
    SELECT agency, add_case_file_heading.year, add_case_file_heading.code, add_case_file_heading.title,
           coalesce(max(h.position), 0) + 1
      FROM ioffice.case_file_heading h
     WHERE h.agency_id = agency AND h.year = add_case_file_heading.year
    RETURNING id INTO v_id;
    PERFORM ioffice._audit('unit', agency, 'add_case_file_heading', NULL, NULL,
                           jsonb_build_object('heading', v_id, 'year', year, 'code', code, 'title', title));
    PERFORM ioffice._engine_leave();
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION add_case_file_heading(bigint, int, text, text) IS
  'A clerk adds a heading (đề mục) to the agency''s list of case files of a year; returns it';

-- A case file of the agency's list.  retention: a number of years ('10')
-- or 'permanent' (also 'vĩnh viễn'); responsible: the login of the person
-- in charge, one of the agency's people (default: the caller); options:
-- heading (its id), rights, language, description, opened_on (default
-- today).
CREATE FUNCTION add_case_file(agency bigint, year int, notation text, title text, retention text,
                              responsible text DEFAULT NULL, options jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor bigint;
    v_agency ioffice.unit;
    v_responsible bigint;
    v_years int;
    v_permanent boolean := false;
    v_heading bigint;
    v_opened date;
    v_id bigint;
BEGIN
    PERFORM ioffice._engine_enter();
    IF agency IS NULL OR year IS NULL OR notation IS NULL OR title IS NULL OR retention IS NULL THEN
        RAISE EXCEPTION 'agency, year, notation, title and retention are required' USING ERRCODE = '22023';
    END IF;
    SELECT * INTO v_agency FROM ioffice.unit u WHERE u.id = agency AND u.kind = 'agency';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown agency %', agency USING ERRCODE = '42704';
    END IF;
    v_actor := ioffice._require_case_file_keeper(agency);
    IF v_agency.code IS NULL THEN
        RAISE EXCEPTION 'agency % has no identifier (OrganId)', agency USING ERRCODE = '55000',
              HINT = 'A case file''s code starts with its agency''s 13-character identifier.';
    END IF;
    IF options IS NULL OR jsonb_typeof(options) <> 'object' THEN
        RAISE EXCEPTION 'options must be a JSON object' USING ERRCODE = '22023';
    END IF;
    IF EXISTS (SELECT 1 FROM jsonb_object_keys(options) k
                WHERE k NOT IN ('heading', 'rights', 'language', 'description', 'opened_on')) THEN
        RAISE EXCEPTION 'unknown option in %', pg_catalog.left(options::text, 60) USING ERRCODE = '22023',
              HINT = 'Options are heading, rights, language, description and opened_on.';
    END IF;
    IF year NOT BETWEEN 1900 AND 9999 THEN
        RAISE EXCEPTION 'year % is out of range', year USING ERRCODE = '22023';
    END IF;
    IF length(options ->> 'rights') NOT BETWEEN 1 AND 30
       OR length(options ->> 'language') NOT BETWEEN 1 AND 50
       OR length(options ->> 'description') > 500 THEN
        RAISE EXCEPTION 'options: rights 1 to 30 characters, language 1 to 50, description at most 500'
            USING ERRCODE = '22023';
    END IF;
    IF notation !~ '^[^\s]{1,20}$' THEN
        RAISE EXCEPTION 'notation "%" must be 1 to 20 characters without spaces', pg_catalog.left(notation, 60)
            USING ERRCODE = '22023';
    END IF;
    IF length(title) NOT BETWEEN 1 AND 500 THEN
        RAISE EXCEPTION 'a case file''s title must be 1 to 500 characters' USING ERRCODE = '22023';
    END IF;
    IF lower(retention) IN ('permanent', 'vĩnh viễn') THEN
        v_permanent := true;
    ELSIF retention ~ '^[0-9]{1,3}$' AND retention::int >= 1 THEN
        v_years := retention::int;
    ELSE
        RAISE EXCEPTION 'retention "%" is not a number of years nor permanent', pg_catalog.left(retention, 60)
            USING ERRCODE = '22023', HINT = 'Give ''10'' for ten years, or ''permanent''.';
    END IF;
    IF responsible IS NULL THEN
        v_responsible := v_actor;
    ELSE
        SELECT p.id INTO v_responsible FROM ioffice.person p WHERE p.login = responsible AND p.active;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'unknown person "%"', pg_catalog.left(responsible, 60) USING ERRCODE = '42704';
        END IF;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ioffice.person p JOIN ioffice.unit u ON u.id = p.unit_id
                    WHERE p.id = v_responsible AND u.agency_id = agency) THEN
        RAISE EXCEPTION 'the person in charge of a case file must be one of its agency''s people'
            USING ERRCODE = '22023';
    END IF;
    IF options ? 'heading' THEN
        IF jsonb_typeof(options -> 'heading') IS DISTINCT FROM 'number' THEN
            RAISE EXCEPTION 'options.heading must be a heading''s id' USING ERRCODE = '22023';
        END IF;
        v_heading := (options ->> 'heading')::bigint;
        IF NOT EXISTS (SELECT 1 FROM ioffice.case_file_heading h
                        WHERE h.id = v_heading AND h.agency_id = agency AND h.year = add_case_file.year) THEN
            RAISE EXCEPTION 'unknown heading % in the list of % of this agency', v_heading, year
                USING ERRCODE = '42704';
        END IF;
    END IF;
    BEGIN
        v_opened := coalesce((options ->> 'opened_on')::date,
                             (now() AT TIME ZONE ioffice.timezone())::date);
    EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow THEN
        RAISE EXCEPTION 'options.opened_on is not a date' USING ERRCODE = '22023';
    END;
    IF EXISTS (SELECT 1 FROM ioffice.case_file c
                WHERE c.agency_id = agency AND c.year = add_case_file.year
                  AND c.notation = add_case_file.notation) THEN
        RAISE EXCEPTION 'case file % already exists', v_agency.code || '.' || year || '.' || notation
            USING ERRCODE = '23505';
    END IF;
    INSERT INTO ioffice.case_file (agency_id, year, heading_id, organ_id, notation, title,
                                   retention_years, permanent, rights, language, description,
                                   responsible_id, opened_on, created_by)
    VALUES (agency, add_case_file.year, v_heading, v_agency.code, add_case_file.notation,
            add_case_file.title, v_years, v_permanent, options ->> 'rights',
            coalesce(options ->> 'language', 'Tiếng Việt'), options ->> 'description',
            v_responsible, v_opened, v_actor)
    RETURNING id INTO v_id;
    PERFORM ioffice._audit('case_file', v_id, 'add_case_file', NULL, 'open',
                           jsonb_build_object('agency', agency, 'year', year, 'notation', notation,
                                              'title', title, 'retention', retention,
                                              'responsible', v_responsible));
    PERFORM ioffice._engine_leave();
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION add_case_file(bigint, int, text, text, text, text, jsonb) IS
  'A clerk adds a case file to the agency''s list of a year: notation, title, retention (years or permanent), person in charge (login); options heading, rights, language, description, opened_on; returns it';

-- The case file, locked, for a change by the current person: its person in
-- charge, or a clerk of its agency or an admin.  Unknown, or not visible to
-- the person, is 42704.
CREATE FUNCTION _lock_case_file(cf bigint) RETURNS ioffice.case_file
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor bigint := ioffice.actor();
    v_cf ioffice.case_file;
BEGIN
    SELECT * INTO v_cf FROM ioffice.case_file c WHERE c.id = cf FOR UPDATE;
    IF NOT FOUND
       OR NOT (v_cf.responsible_id = v_actor OR ioffice.keeps_registers(v_cf.agency_id)
               OR EXISTS (SELECT 1 FROM ioffice.person p JOIN ioffice.unit u ON u.id = p.unit_id
                           WHERE p.id = v_actor AND u.agency_id = v_cf.agency_id)) THEN
        RAISE EXCEPTION 'unknown case file %', cf USING ERRCODE = '42704';
    END IF;
    IF NOT (v_cf.responsible_id = v_actor OR ioffice.keeps_registers(v_cf.agency_id)) THEN
        RAISE EXCEPTION 'only the person in charge of case file %, a clerk of its agency or an admin changes it', cf
            USING ERRCODE = '42501';
    END IF;
    RETURN v_cf;
END
$$;
REVOKE ALL ON FUNCTION _lock_case_file(bigint) FROM PUBLIC;

-- Files a document into a case file, by reference (III.4e), with the next
-- running number of the file (III.4b).  The document must be one the
-- person may see and of the file's agency (its outgoing document, or an
-- incoming one it registered; a dossier's result is such a document).  The
-- case file's row lock, taken first, orders concurrent filings.
CREATE FUNCTION file_into(case_file bigint, doc bigint) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor bigint := ioffice.actor();
    v_cf ioffice.case_file;
    v_doc ioffice.document;
    v_ordinal int;
BEGIN
    PERFORM ioffice._engine_enter();
    IF file_into.case_file IS NULL OR doc IS NULL THEN
        RAISE EXCEPTION 'file_into needs a case file and a document' USING ERRCODE = '22023';
    END IF;
    v_cf := ioffice._lock_case_file(file_into.case_file);
    IF NOT ioffice.can_see(doc) THEN
        RAISE EXCEPTION 'unknown document %', doc USING ERRCODE = '42704';
    END IF;
    SELECT * INTO v_doc FROM ioffice.document d WHERE d.id = doc;
    IF v_doc.agency_id <> v_cf.agency_id THEN
        RAISE EXCEPTION 'document % is not a document of the agency of case file %', doc, v_cf.id
            USING ERRCODE = '22023';
    END IF;
    IF v_cf.state <> 'open' THEN
        RAISE EXCEPTION 'case file % is %', v_cf.id, v_cf.state USING ERRCODE = '55000',
              DETAIL = 'Documents are filed into open case files only.';
    END IF;
    IF EXISTS (SELECT 1 FROM ioffice.case_file_document l
                WHERE l.case_file_id = v_cf.id AND l.document_id = doc AND l.unfiled_at IS NULL) THEN
        RAISE EXCEPTION 'document % is already in case file %', doc, v_cf.id USING ERRCODE = '23505';
    END IF;
    UPDATE ioffice.case_file c SET next_ordinal = c.next_ordinal + 1
     WHERE c.id = v_cf.id RETURNING c.next_ordinal - 1 INTO v_ordinal;
    INSERT INTO ioffice.case_file_document (case_file_id, ordinal, document_id, filed_by)
    VALUES (v_cf.id, v_ordinal, doc, v_actor);
    PERFORM ioffice._audit('document', doc, 'file_into', v_doc.state, v_doc.state,
                           jsonb_build_object('case_file', v_cf.id, 'code', v_cf.code,
                                              'ordinal', v_ordinal),
                           NULL, NULL);
    PERFORM ioffice._engine_leave();
END
$$;
COMMENT ON FUNCTION file_into(bigint, bigint) IS
  'Files a document into an open case file, without copying it, with the next running number of the file (by its person in charge, a clerk of its agency or an admin)';

-- Takes a document out of an open case file.  Its number is not given
-- again: the row stays, marked, and the file's numbers keep a gap.
CREATE FUNCTION unfile(case_file bigint, doc bigint) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor bigint := ioffice.actor();
    v_cf ioffice.case_file;
    v_ordinal int;
    v_state text;
BEGIN
    PERFORM ioffice._engine_enter();
    IF unfile.case_file IS NULL OR doc IS NULL THEN
        RAISE EXCEPTION 'unfile needs a case file and a document' USING ERRCODE = '22023';
    END IF;
    v_cf := ioffice._lock_case_file(unfile.case_file);
    IF NOT ioffice.can_see(doc) THEN
        RAISE EXCEPTION 'unknown document %', doc USING ERRCODE = '42704';
    END IF;
    IF v_cf.state <> 'open' THEN
        RAISE EXCEPTION 'case file % is %', v_cf.id, v_cf.state USING ERRCODE = '55000',
              DETAIL = 'Documents are taken out of open case files only.';
    END IF;
    UPDATE ioffice.case_file_document l SET unfiled_at = now(), unfiled_by = v_actor
     WHERE l.case_file_id = v_cf.id AND l.document_id = doc AND l.unfiled_at IS NULL
    RETURNING l.ordinal INTO v_ordinal;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'document % is not in case file %', doc, v_cf.id USING ERRCODE = '42704';
    END IF;
    SELECT d.state INTO v_state FROM ioffice.document d WHERE d.id = doc;
    PERFORM ioffice._audit('document', doc, 'unfile', v_state, v_state,
                           jsonb_build_object('case_file', v_cf.id, 'code', v_cf.code,
                                              'ordinal', v_ordinal),
                           NULL, NULL);
    PERFORM ioffice._engine_leave();
END
$$;
COMMENT ON FUNCTION unfile(bigint, bigint) IS
  'Takes a document out of an open case file; its running number is not given again';

-- Closes a case file (its EndDate: the day given, by default today).
CREATE FUNCTION close_case_file(case_file bigint, closed_on date DEFAULT NULL) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_cf ioffice.case_file;
    v_today date := (now() AT TIME ZONE ioffice.timezone())::date;
    v_closed date := coalesce(close_case_file.closed_on, v_today);
BEGIN
    PERFORM ioffice._engine_enter();
    IF close_case_file.case_file IS NULL THEN
        RAISE EXCEPTION 'close_case_file needs a case file' USING ERRCODE = '22023';
    END IF;
    v_cf := ioffice._lock_case_file(close_case_file.case_file);
    IF v_cf.state <> 'open' THEN
        RAISE EXCEPTION 'case file % is %', v_cf.id, v_cf.state USING ERRCODE = '55000';
    END IF;
    IF v_closed > v_today OR v_closed < v_cf.opened_on THEN
        RAISE EXCEPTION 'a case file closes between its opening and today' USING ERRCODE = '22023';
    END IF;
    UPDATE ioffice.case_file c SET state = 'closed', closed_on = v_closed WHERE c.id = v_cf.id;
    PERFORM ioffice._audit('case_file', v_cf.id, 'close', 'open', 'closed',
                           jsonb_build_object('closed_on', v_closed));
    PERFORM ioffice._engine_leave();
END
$$;
COMMENT ON FUNCTION close_case_file(bigint, date) IS
  'Closes an open case file (EndDate: the day given, by default today); it takes no more documents';

-- The yearly list (Danh mục hồ sơ) and the table of contents of the case
-- files (mục lục hồ sơ), for a reporting tool: the case files with their
-- headings, and the count of documents and pages the reader may see.
CREATE VIEW case_file_list WITH (security_invoker = true) AS
SELECT c.id AS case_file_id, c.agency_id, c.year, h.code AS heading_code, h.title AS heading_title,
       h.position AS heading_position, c.code, c.organ_id, c.notation, c.title, c.retention,
       c.retention_years, c.permanent, c.rights, c.language, c.description,
       c.responsible_id, p.full_name AS responsible, c.opened_on, c.closed_on, c.state,
       (SELECT count(*) FROM ioffice.case_file_document l JOIN ioffice.document d ON d.id = l.document_id
         WHERE l.case_file_id = c.id AND l.unfiled_at IS NULL) AS doc_total,
       (SELECT coalesce(sum(d.page_count), 0) FROM ioffice.case_file_document l
          JOIN ioffice.document d ON d.id = l.document_id
         WHERE l.case_file_id = c.id AND l.unfiled_at IS NULL) AS page_total
  FROM ioffice.case_file c
  LEFT JOIN ioffice.case_file_heading h ON h.id = c.heading_id
  JOIN ioffice.person p ON p.id = c.responsible_id;
COMMENT ON VIEW case_file_list IS 'Danh mục hồ sơ / mục lục hồ sơ: the case files with their headings; DocTotal and PageTotal of the documents the reader may see';
GRANT SELECT ON case_file_list TO PUBLIC;

-- The table of contents of a case file (mục lục văn bản trong hồ sơ), for
-- a reporting tool: its documents the reader may see, with the fields of
-- appendix VI part II III, in the order they arose (arose_on, then number).
CREATE VIEW case_file_contents WITH (security_invoker = true) AS
SELECT l.case_file_id, c.code AS case_file_code, l.ordinal, l.document_id, d.direction,
       coalesce(d.doc_type_name, t.name) AS type_name,
       CASE WHEN d.direction = 'outgoing' THEN d.symbol ELSE d.sender_symbol END AS symbol,
       CASE WHEN d.direction = 'outgoing' THEN d.issued_on ELSE d.sender_date END AS document_date,
       CASE WHEN d.direction = 'outgoing' THEN a.name ELSE coalesce(d.sender_name, s.name) END AS organ_name,
       d.abstract AS subject, d.page_count, d.signer_name,
       CASE WHEN d.direction = 'incoming' THEN d.number END AS arrival_number,
       CASE WHEN d.direction = 'incoming' THEN (d.received_at AT TIME ZONE ioffice.timezone())::date END
         AS arrival_date,
       coalesce(CASE WHEN d.direction = 'outgoing' THEN d.issued_on
                     ELSE (d.received_at AT TIME ZONE ioffice.timezone())::date END,
                (d.created_at AT TIME ZONE ioffice.timezone())::date) AS arose_on,
       d.number, d.urgency, d.confidentiality, d.due_date, l.filed_at, l.filed_by
  FROM ioffice.case_file_document l
  JOIN ioffice.case_file c ON c.id = l.case_file_id
  JOIN ioffice.document d ON d.id = l.document_id
  JOIN ioffice.doc_type t ON t.code = d.doc_type
  JOIN ioffice.unit a ON a.id = d.agency_id
  LEFT JOIN ioffice.unit s ON s.id = d.sender_agency_id
 WHERE l.unfiled_at IS NULL;
COMMENT ON VIEW case_file_contents IS 'Mục lục văn bản trong hồ sơ: the documents of each case file the reader may see, with their running number; order by arose_on, number';
GRANT SELECT ON case_file_contents TO PUBLIC;

-- A case file as XML (III.4g): its metadata (appendix VI part II III) and
-- every document's, in the order the documents arose.  Built with the
-- server's XML functions; SECURITY INVOKER, so the caller's row-level
-- security decides which documents are in it (a person exports what they
-- may see, and the totals count those).
CREATE FUNCTION case_file_xml(case_file bigint) RETURNS xml
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_xml xml;
BEGIN
    IF case_file_xml.case_file IS NULL THEN
        RAISE EXCEPTION 'case_file_xml needs a case file' USING ERRCODE = '22023';
    END IF;
    SELECT xmlelement(name "File",
             xmlattributes(c.case_file_id AS "id"),
             xmlelement(name "FileCode", c.code),
             xmlelement(name "OrganId", c.organ_id),
             xmlelement(name "FileCatalog", c.year),
             xmlelement(name "FileNotation", c.notation),
             xmlelement(name "Title", c.title),
             xmlelement(name "Maintenance", c.retention),
             xmlelement(name "Rights", c.rights),
             xmlelement(name "Creator", c.responsible),
             xmlelement(name "Language", c.language),
             xmlelement(name "StartDate", c.opened_on),
             xmlelement(name "EndDate", c.closed_on),
             xmlelement(name "DocTotal", c.doc_total),
             xmlelement(name "PageTotal", c.page_total),
             xmlelement(name "Description", c.description),
             xmlelement(name "Documents",
               (SELECT xmlagg(xmlelement(name "Document",
                          xmlelement(name "FileCode", v.case_file_code),
                          xmlelement(name "DocOrdinal", v.ordinal),
                          xmlelement(name "TypeName", v.type_name),
                          xmlelement(name "CodeNumber",
                                     CASE WHEN strpos(v.symbol, '/') > 0
                                          THEN split_part(v.symbol, '/', 1) END),
                          xmlelement(name "CodeNotation",
                                     CASE WHEN strpos(v.symbol, '/') > 0
                                          THEN substr(v.symbol, strpos(v.symbol, '/') + 1)
                                          ELSE v.symbol END),
                          xmlelement(name "IssuedDate", v.document_date),
                          xmlelement(name "OrganName", v.organ_name),
                          xmlelement(name "Subject", v.subject),
                          xmlelement(name "Language", c.language),
                          xmlelement(name "PageAmount", v.page_count),
                          xmlelement(name "ArrivalDate", v.arrival_date),
                          xmlelement(name "ArrivalNumber", v.arrival_number),
                          xmlelement(name "SignerInfo", xmlelement(name "FullName", v.signer_name)),
                          xmlelement(name "Priority", v.urgency),
                          xmlelement(name "DueDate", v.due_date))
                        ORDER BY v.arose_on, v.number, v.ordinal)
                  FROM ioffice.case_file_contents v WHERE v.case_file_id = c.case_file_id)))
      INTO v_xml
      FROM ioffice.case_file_list c
     WHERE c.case_file_id = case_file_xml.case_file;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown case file %', case_file_xml.case_file USING ERRCODE = '42704';
    END IF;
    RETURN v_xml;
END
$$;
COMMENT ON FUNCTION case_file_xml(bigint) IS
  'A case file as XML: its metadata and every document''s (those the caller may see), in the order the documents arose';

-- Archive transfer (III.5b-c).  A closed file kept 5 years or more, or
-- permanently, goes to the agency's archive within a year of its closing
-- (due_on); its person in charge is warned 30 days before (warn_on).
CREATE VIEW case_file_archive_due WITH (security_invoker = true) AS
SELECT c.id AS case_file_id, c.agency_id, c.code, c.title, c.retention, c.responsible_id,
       c.closed_on, (c.closed_on + interval '1 year')::date AS due_on,
       (c.closed_on + interval '1 year')::date - 30 AS warn_on, c.warned_at
  FROM ioffice.case_file c
 WHERE c.state = 'closed' AND (c.permanent OR c.retention_years >= 5);
COMMENT ON VIEW case_file_archive_due IS 'Closed case files due for the agency''s archive (kept 5 years or more): due within a year of closing, warned 30 days before';
GRANT SELECT ON case_file_archive_due TO PUBLIC;

-- The warnings that are due, each once: an event notify.email (or
-- notify.sms for a person without an e-mail address) to the person in
-- charge of each file whose warn_on has come, in ioffice.timezone.  Called
-- by the signing worker on its loop (workers/archive_jobs.c); rows locked
-- by a concurrent call are left to it.  Returns the files warned.
CREATE FUNCTION case_file_archive_warnings() RETURNS int
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_today date := (now() AT TIME ZONE ioffice.timezone())::date;
    v_row record;
    v_n int := 0;
    v_channel text;
    v_message text;
BEGIN
    PERFORM ioffice._engine_enter();
    FOR v_row IN
        SELECT c.id, c.code, c.title, c.closed_on, (c.closed_on + interval '1 year')::date AS due_on,
               p.id AS person, p.login, p.full_name, p.email, p.phone
          FROM ioffice.case_file c JOIN ioffice.person p ON p.id = c.responsible_id
         WHERE c.state = 'closed' AND (c.permanent OR c.retention_years >= 5)
           AND c.warned_at IS NULL
           AND (c.closed_on + interval '1 year')::date - 30 <= v_today
         ORDER BY c.id
           FOR UPDATE OF c SKIP LOCKED
    LOOP
        v_channel := CASE WHEN coalesce(v_row.email, '') <> '' THEN 'email'
                          WHEN coalesce(v_row.phone, '') <> '' THEN 'sms' END;
        v_message := format('Hồ sơ %s "%s" đến hạn nộp lưu vào Lưu trữ cơ quan ngày %s',
                            v_row.code, pg_catalog.left(v_row.title, 200),
                            to_char(v_row.due_on, 'DD/MM/YYYY'));
        IF v_channel IS NOT NULL THEN
            PERFORM ioffice._emit('notify.' || v_channel,
                jsonb_build_object('channel', v_channel, 'login', v_row.login, 'name', v_row.full_name,
                                   'to', CASE v_channel WHEN 'email' THEN v_row.email ELSE v_row.phone END,
                                   'message', v_message,
                                   'about', jsonb_build_object('case_file', v_row.id, 'code', v_row.code,
                                                               'due_on', v_row.due_on,
                                                               'kind', 'archive_due')));
        END IF;
        UPDATE ioffice.case_file c SET warned_at = now() WHERE c.id = v_row.id;
        PERFORM ioffice._audit('case_file', v_row.id, 'archive_warning', 'closed', 'closed',
                               jsonb_build_object('due_on', v_row.due_on, 'to', v_row.person,
                                                  'channel', v_channel));
        v_n := v_n + 1;
    END LOOP;
    PERFORM ioffice._engine_leave();
    RETURN v_n;
END
$$;
COMMENT ON FUNCTION case_file_archive_warnings() IS
  'Warns (notify.email, or notify.sms) the person in charge of each closed case file due for the archive within 30 days, once; the worker calls it; returns the files warned';
REVOKE ALL ON FUNCTION case_file_archive_warnings() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION case_file_archive_warnings() TO ioffice_admin;

-- Records the transfer of closed case files of one agency to its archive,
-- by a clerk of the agency or an admin; the files become read-only.
CREATE FUNCTION transfer_case_files(case_files bigint[], note text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor bigint := ioffice.actor();
    v_agency bigint;
    v_transfer bigint;
    v_cf ioffice.case_file;
    v_n int;
BEGIN
    PERFORM ioffice._engine_enter();
    IF case_files IS NULL OR cardinality(case_files) = 0 OR array_position(case_files, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'transfer_case_files needs a list of case files' USING ERRCODE = '22023';
    END IF;
    IF length(note) > 500 THEN
        RAISE EXCEPTION 'the note is longer than 500 characters' USING ERRCODE = '22023';
    END IF;
    FOR v_cf IN SELECT * FROM ioffice.case_file c WHERE c.id = ANY (case_files) ORDER BY c.id FOR UPDATE LOOP
        IF NOT ioffice.keeps_registers(v_cf.agency_id) THEN
            RAISE EXCEPTION 'only a clerk of the agency or an admin transfers its case files to the archive'
                USING ERRCODE = '42501';
        END IF;
        IF v_agency IS NULL THEN
            v_agency := v_cf.agency_id;
        ELSIF v_agency <> v_cf.agency_id THEN
            RAISE EXCEPTION 'a transfer takes the case files of one agency' USING ERRCODE = '22023';
        END IF;
        IF v_cf.state <> 'closed' THEN
            RAISE EXCEPTION 'case file % is %', v_cf.id, v_cf.state USING ERRCODE = '55000',
                  DETAIL = 'Closed case files are transferred to the archive.';
        END IF;
    END LOOP;
    SELECT count(DISTINCT x) INTO v_n FROM unnest(case_files) x;
    IF v_agency IS NULL OR v_n <> (SELECT count(*) FROM ioffice.case_file c WHERE c.id = ANY (case_files)) THEN
        RAISE EXCEPTION 'unknown case file in %', pg_catalog.left(case_files::text, 60) USING ERRCODE = '42704';
    END IF;
    INSERT INTO ioffice.archive_transfer (agency_id, transferred_by, note)
    VALUES (v_agency, v_actor, note) RETURNING id INTO v_transfer;
    UPDATE ioffice.case_file c SET state = 'transferred', transfer_id = v_transfer
     WHERE c.id = ANY (case_files);
    PERFORM ioffice._audit('case_file', x, 'transfer', 'closed', 'transferred',
                           jsonb_build_object('transfer', v_transfer))
       FROM unnest(case_files) x ORDER BY x;
    PERFORM ioffice._engine_leave();
    RETURN v_transfer;
END
$$;
COMMENT ON FUNCTION transfer_case_files(bigint[], text) IS
  'A clerk records the transfer of closed case files of the agency to its archive (who, when); they become read-only; returns the transfer';

-- The transfer list (mục lục hồ sơ nộp lưu) as a workbook or CSV
-- (extension/case_file_export.c, with the register exports' writer).
CREATE FUNCTION archive_transfer_export(transfer bigint, format text) RETURNS bytea
    AS 'MODULE_PATHNAME', 'ioffice_archive_transfer_export'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION archive_transfer_export(bigint, text) IS
  'The list of the case files of a transfer to the archive (mục lục hồ sơ nộp lưu) as xlsx or csv; for its agency''s clerks and admins';

-- ==== dossier_online ====
-- Online registrations (national status 1, Mới đăng ký): received by nobody
-- until a one-stop officer accepts one (taken_by one_stop, effect start_clock)
ALTER TABLE dossier ALTER COLUMN received_by DROP NOT NULL;
ALTER TABLE dossier ADD COLUMN registered_at timestamptz;
ALTER TABLE dossier ADD CONSTRAINT dossier_received_or_registered
    CHECK (received_by IS NOT NULL OR registered_at IS NOT NULL);
INSERT INTO workflow_state (workflow, state, label, initial, final, builtin) VALUES
    ('dossier', 'registered',      'Mới đăng ký, chờ tiếp nhận', false, false, true);
INSERT INTO dossier_state_status (workflow, state, status, builtin) VALUES
    ('dossier', 'registered', 1, true);
INSERT INTO workflow_transition
    (workflow, action, from_state, to_state, label, taken_by, receiver, receiver_role,
     guards, effects, options, delegable, builtin)
VALUES
    ('dossier', 'accept', 'registered', 'received', 'Tiếp nhận hồ sơ trực tuyến', 'one_stop', 'none', NULL,
     '{}', '{start_clock}', '{zalo}', false, true),
    ('dossier', 'reject', 'registered', 'rejected', 'Không tiếp nhận', 'one_stop', 'none', NULL,
     '{note_given}', '{}', '{zalo}', false, true),
    ('dossier', 'withdraw', 'registered', 'withdrawn', 'Công dân rút hồ sơ', 'one_stop', 'none', NULL,
     '{note_given}', '{}', '{zalo}', false, true);

-- A new dossier, received at the desk (receive_dossier) or registered
-- online (register_dossier).  Statutory days are bounded to 365 working
-- days: the procedures' catalogue gives days to weeks, more is a typing
-- mistake, not a procedure's time.
CREATE FUNCTION _new_dossier(procedure_code text, procedure_name text, applicant jsonb,
                             statutory_days int, details jsonb, online boolean)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor bigint := ioffice.actor();
    v_details jsonb := coalesce(details, '{}');
    v_agency bigint;
    v_unit_code text;
    v_at timestamptz := now();
    v_day date;
    v_seq int;
    v_code text;
    v_state text;
    v_id bigint;
    v_key text;
    v_how text;
BEGIN
    PERFORM ioffice._engine_enter();
    IF procedure_code IS NULL OR procedure_name IS NULL OR applicant IS NULL
       OR statutory_days IS NULL THEN
        RAISE EXCEPTION '% needs a procedure code and name, an applicant and the statutory days',
                        CASE WHEN online THEN 'register_dossier' ELSE 'receive_dossier' END
            USING ERRCODE = '22023';
    END IF;
    IF procedure_code !~ '^[A-Za-z0-9._-]{1,60}$' THEN
        RAISE EXCEPTION 'procedure code "%" is not a procedure code', left(procedure_code, 60)
            USING ERRCODE = '22023', HINT = 'Procedure codes look like 2.002166.000.00.00.H41.';
    END IF;
    IF length(procedure_name) NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'the procedure name must be 1 to 1000 characters' USING ERRCODE = '22023';
    END IF;
    IF statutory_days NOT BETWEEN 0 AND 365 THEN
        RAISE EXCEPTION 'statutory_days must be from 0 to 365 working days, not %', statutory_days
            USING ERRCODE = '22023';
    END IF;

    -- the applicant: {name, phone, email, address}
    IF jsonb_typeof(applicant) <> 'object' THEN
        RAISE EXCEPTION 'applicant must be a JSON object' USING ERRCODE = '22023';
    END IF;
    FOR v_key IN SELECT jsonb_object_keys(applicant) LOOP
        IF v_key NOT IN ('name', 'phone', 'email', 'address') THEN
            RAISE EXCEPTION 'unknown applicant field "%"', v_key USING ERRCODE = '22023',
                  HINT = 'An applicant has name, phone, email and address.';
        END IF;
        IF jsonb_typeof(applicant->v_key) <> 'string' THEN
            RAISE EXCEPTION 'applicant.% must be a string', v_key USING ERRCODE = '22023';
        END IF;
    END LOOP;
    IF coalesce(length(btrim(applicant->>'name')), 0) NOT BETWEEN 1 AND 200 THEN
        RAISE EXCEPTION 'applicant.name is required (1 to 200 characters)' USING ERRCODE = '22023';
    END IF;
    IF applicant ? 'phone' AND (applicant->>'phone') !~ '^\+?[0-9][0-9 .]{5,19}$' THEN
        RAISE EXCEPTION 'applicant.phone "%" is not a phone number', left(applicant->>'phone', 40)
            USING ERRCODE = '22023';
    END IF;
    IF applicant ? 'email' AND (applicant->>'email') !~ '^[^@\s]{1,100}@[^@\s]{1,100}$' THEN
        RAISE EXCEPTION 'applicant.email "%" is not an e-mail address', left(applicant->>'email', 60)
            USING ERRCODE = '22023';
    END IF;
    IF length(applicant->>'address') > 500 THEN
        RAISE EXCEPTION 'applicant.address is longer than 500 characters' USING ERRCODE = '22023';
    END IF;

    PERFORM ioffice._check_details(v_details,
        '{"how_received": "string", "result_delivery": "string", "received_at": "string"}');
    v_how := coalesce(v_details->>'how_received', CASE WHEN online THEN 'online' ELSE 'direct' END);
    IF v_how NOT IN ('direct', 'online', 'postal') THEN
        RAISE EXCEPTION 'details.how_received must be direct, online or postal' USING ERRCODE = '22023';
    END IF;
    IF online AND v_how <> 'online' THEN
        RAISE EXCEPTION 'a registration is online: details.how_received cannot be %', v_how
            USING ERRCODE = '22023', HINT = 'A dossier brought to the desk is received with receive_dossier().';
    END IF;
    IF length(v_details->>'result_delivery') NOT BETWEEN 1 AND 500 THEN
        RAISE EXCEPTION 'details.result_delivery must be 1 to 500 characters' USING ERRCODE = '22023';
    END IF;
    -- a dossier received (or registered) earlier (paper, online out of hours) is entered with
    -- its time; never in the future, nor older than the DBA's ioffice.dossier_backdating_days
    -- (it starts the clock, or dates the registration)
    IF v_details ? 'received_at' THEN
        v_at := coalesce(ioffice._time_detail(v_details, 'received_at'), now());
        IF v_at > now() OR v_at < greatest('2000-01-01', now() - make_interval(days => current_setting('ioffice.dossier_backdating_days')::int)) THEN
            RAISE EXCEPTION 'details.received_at must be a past time, at most % days ago (ioffice.dossier_backdating_days)', current_setting('ioffice.dossier_backdating_days') USING ERRCODE = '22023';
        END IF;
    END IF;

    -- the one-stop officer receives for their agency, whose code names the dossier
    SELECT u.agency_id, a.code INTO v_agency, v_unit_code
      FROM ioffice.person p JOIN ioffice.unit u ON u.id = p.unit_id
      JOIN ioffice.unit a ON a.id = u.agency_id WHERE p.id = v_actor;
    IF NOT EXISTS (SELECT 1 FROM ioffice.person_role r
                   WHERE r.person_id = v_actor AND r.role = 'one_stop' AND r.unit_id = v_agency) THEN
        RAISE EXCEPTION 'only a one-stop officer (bộ phận một cửa) may % dossiers',
                        CASE WHEN online THEN 'register' ELSE 'receive' END
            USING ERRCODE = '42501';
    END IF;
    IF v_unit_code IS NULL THEN
        RAISE EXCEPTION 'the receiving agency has no agency code' USING ERRCODE = '55000',
              HINT = 'Dossier codes start with the agency code (DDD.DD.DD.LDD): set unit.code.';
    END IF;
    IF online THEN
        -- the state that reports national status 1 (Mới đăng ký)
        SELECT s.state INTO v_state FROM ioffice.workflow_state s
          JOIN ioffice.dossier_state_status x ON x.workflow = s.workflow AND x.state = s.state
         WHERE s.workflow = 'dossier' AND x.status = 1 AND NOT s.final ORDER BY s.state LIMIT 1;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'workflow dossier has no state for online registrations' USING ERRCODE = '55000',
                  HINT = 'Give a state of workflow dossier national status 1 in dossier_state_status.';
        END IF;
    ELSE
        SELECT s.state INTO v_state FROM ioffice.workflow_state s
         WHERE s.workflow = 'dossier' AND s.initial ORDER BY s.state LIMIT 1;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'workflow dossier has no initial state' USING ERRCODE = '55000';
        END IF;
    END IF;

    -- the sequence of the unit's day: the counter row stays locked to commit
    v_day := (v_at AT TIME ZONE ioffice.timezone())::date;
    INSERT INTO ioffice.dossier_counter AS c (unit_code, day, last)
    VALUES (v_unit_code, v_day, 1)
    ON CONFLICT (unit_code, day) DO UPDATE SET last = c.last + 1
    WHERE c.last < 9999
    RETURNING c.last INTO v_seq;
    IF v_seq IS NULL THEN
        RAISE EXCEPTION 'unit % has received 9999 dossiers on %', v_unit_code, v_day
            USING ERRCODE = '54000', DETAIL = 'Dossier codes have four digits of sequence.';
    END IF;
    v_code := v_unit_code || '-' || to_char(v_day, 'YYMMDD') || '-' || lpad(v_seq::text, 4, '0');

    -- a registration is received by nobody yet and its clock stands still
    -- (paused since it was registered) until the desk accepts it: the
    -- deadline then counts from the acceptance (effect start_clock)
    INSERT INTO ioffice.dossier (code, workflow, state, procedure_code, procedure_name, applicant,
                                 agency_id, unit_code, received_by, received_at, statutory_days,
                                 deadline, how_received, result_delivery, paused_at, registered_at)
    VALUES (v_code, 'dossier', v_state, procedure_code, procedure_name, applicant,
            v_agency, v_unit_code, CASE WHEN NOT online THEN v_actor END, v_at, statutory_days,
            ioffice.add_working_days(v_at, statutory_days), v_how, v_details->>'result_delivery',
            CASE WHEN online THEN v_at END, CASE WHEN online THEN v_at END)
    RETURNING id INTO v_id;
    -- the receiving officer holds it first; a registration waits for the desk
    IF NOT online THEN
        INSERT INTO ioffice.dossier_task (dossier_id, step, action, sender_id, request, receiver_id, received_at)
        VALUES (v_id, 1, 'receive', v_actor, 'Tiếp nhận hồ sơ', v_actor, v_at);
    END IF;

    PERFORM ioffice._audit('dossier', v_id, CASE WHEN online THEN 'register' ELSE 'receive' END, NULL, v_state,
                           jsonb_build_object('code', v_code, 'procedure_code', procedure_code,
                                              'statutory_days', statutory_days,
                                              'how_received', v_how),
                           NULL, 'dossier:' || v_id);
    PERFORM ioffice._emit('dossier.status', ioffice._dossier_event(v_id));
    PERFORM ioffice._engine_leave();
    RETURN v_code;
END
$$;
REVOKE ALL ON FUNCTION _new_dossier(text, text, jsonb, int, jsonb, boolean) FROM PUBLIC;

CREATE OR REPLACE FUNCTION receive_dossier(procedure_code text, procedure_name text, applicant jsonb,
                                statutory_days int, details jsonb DEFAULT '{}')
RETURNS text
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ SELECT ioffice._new_dossier(procedure_code, procedure_name, applicant, statutory_days, details, false) $$;
COMMENT ON FUNCTION receive_dossier(text, text, jsonb, int, jsonb) IS
  'The one-stop officer receives a dossier; returns its code <agency code>-YYMMDD-NNNN';

-- An online registration (national status 1, Mới đăng ký), entered by the
-- one-stop desk's connection to the public service portal (an account with
-- the one_stop role): any officer of the desk may then accept it (its clock
-- starts), reject or withdraw it with dossier_act().
CREATE FUNCTION register_dossier(procedure_code text, procedure_name text, applicant jsonb,
                                 statutory_days int, details jsonb DEFAULT '{}')
RETURNS text
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ SELECT ioffice._new_dossier(procedure_code, procedure_name, applicant, statutory_days, details, true) $$;
COMMENT ON FUNCTION register_dossier(text, text, jsonb, int, jsonb) IS
  'An online registration (national status 1): waits for a one-stop officer to accept it (dossier_act accept: the clock starts then), reject or withdraw it; returns its code';

CREATE OR REPLACE FUNCTION can_see_dossier(dossier bigint) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me bigint := ioffice.current_person();
BEGIN
    -- (PL/pgSQL for its plan kept across calls, as can_see())
    IF v_me IS NULL THEN
        RETURN false;
    END IF;
    RETURN EXISTS (
        WITH held AS (
            SELECT d.received_by AS person FROM ioffice.dossier d WHERE d.id = can_see_dossier.dossier
            UNION SELECT t.receiver_id FROM ioffice.dossier_task t WHERE t.dossier_id = can_see_dossier.dossier
            UNION SELECT t.sender_id FROM ioffice.dossier_task t WHERE t.dossier_id = can_see_dossier.dossier
            UNION SELECT t.processed_by FROM ioffice.dossier_task t
                   WHERE t.dossier_id = can_see_dossier.dossier AND t.processed_by IS NOT NULL)
        SELECT 1 WHERE v_me IN (SELECT person FROM held)
                    OR EXISTS (SELECT 1 FROM held h
                               JOIN ioffice.person p ON p.id = h.person
                               JOIN ioffice.person_role r
                                 ON r.unit_id = p.unit_id AND r.role = 'leader'
                               WHERE r.person_id = v_me)
                    OR EXISTS (SELECT 1 FROM ioffice.person_role r
                               WHERE r.person_id = v_me AND r.role = 'admin')
                    OR EXISTS (SELECT 1 FROM ioffice.dossier d
                               JOIN ioffice.person_role r ON r.unit_id = d.agency_id AND r.role = 'one_stop'
                               WHERE d.id = can_see_dossier.dossier AND r.person_id = v_me));
END
$$;

-- The agencies whose one-stop desk the current person serves: the desk
-- sees every dossier of its agency (it registers, receives and accepts
-- them, answers the applicant, returns the results and apologises for a
-- late one), as a clerk sees the agency's documents.
CREATE FUNCTION _one_stop_agencies() RETURNS bigint[]
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me bigint := ioffice.current_person();
BEGIN
    RETURN (SELECT coalesce(array_agg(r.unit_id), '{}') FROM ioffice.person_role r
             WHERE r.person_id = v_me AND r.role = 'one_stop');
END
$$;

ALTER POLICY visible ON dossier
    USING (received_by = ANY ((SELECT ioffice._dossier_people())::bigint[])
           OR id = ANY ((SELECT ioffice._task_dossiers())::bigint[])
           OR agency_id = ANY ((SELECT ioffice._one_stop_agencies())::bigint[]));

-- ==== access_log ====
-- The access log, its counts and statistics, file_content() and file_copy()
-- (issue 19 item 4; sql/parts/99_access_log.sql).  trail() logs a view and
-- reads its rows from _trail(), which trail_export() reads too; case_file_xml()
-- logs its export (so both become VOLATILE).

-- ---------------------------------------------------------------------------
-- The access log (Decree 30, Appendix VI, III.5a "lịch sử truy cập và xem văn
-- bản", III.6l "lưu lịch sử truy cập và sử dụng văn bản, tài liệu") and the
-- statistics built on it (III.6a-b).
--
-- One row per call of a function that shows a document or hands out its
-- content: document_detail() and trail() (views), file_content() and
-- file_copy() (downloads; the copy carries the download mark, III.6k),
-- trail_export() and case_file_xml() (exports).  Lists (outgoing_list, the
-- registers, search) are not views of a document and write nothing: the
-- log costs a list nothing, and there is no trigger on SELECT.
--
-- Cheap by design: a plain append-only heap written by one INSERT (no
-- sequence, no primary key, no foreign key check, no audit chain lock: a
-- view must not wait for the document's chain, nor serialise the readers
-- of one document), a btree on the document for the per-document history
-- and counts, a BRIN on the time for the statistics of a period (rows come
-- in time order, so a BRIN of a few pages covers years).  Not UNLOGGED: the
-- law asks the history to be kept, a crash must not lose it.  The rows are
-- in the same transaction as the call: a view in a transaction that rolls
-- back left nothing behind but what the client already read, and a read-only
-- transaction (a standby) cannot view through these functions (25006).
--
-- Append-only as the audit trail (the same trigger), but not hash-chained:
-- III.5a asks the history to be kept with the document, not sealed; the
-- chain's per-document lock and hashing would cost each view more than the
-- view itself.  See the report of branch access_log for the trade-off.
-- ---------------------------------------------------------------------------

CREATE TABLE access_log (
    at           timestamptz NOT NULL DEFAULT now(),
    person_id    bigint NOT NULL,
    action       text NOT NULL CHECK (action IN ('view', 'trail', 'download', 'copy', 'export')),
    document_id  bigint,
    file_id      bigint,
    case_file_id bigint,
    -- the export's format, and such
    detail       text,
    CHECK (document_id IS NOT NULL OR case_file_id IS NOT NULL)
);
-- no foreign keys: a check per view for rows that are never deleted
CREATE INDEX access_log_document_idx ON access_log (document_id) WHERE document_id IS NOT NULL;
CREATE INDEX access_log_at_idx ON access_log USING brin (at);
COMMENT ON TABLE access_log IS
  'Who viewed, downloaded or exported which document or file, when (Decree 30, Appendix VI, III.5a, III.6l); append-only, one row per call';
COMMENT ON COLUMN access_log.action IS
  'view (document_detail), trail (trail), download (file_content), copy (file_copy: the marked copy), export (trail_export, case_file_xml)';
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON access_log
    FOR EACH ROW EXECUTE FUNCTION _audit_append_only();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON access_log
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_append_only();
REVOKE ALL ON access_log FROM PUBLIC;
GRANT SELECT ON access_log TO PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('access_log', '');

-- Who reads the log: a person their own rows, and the rows of the documents
-- they may see (the audit trail's rule: the history of access is part of the
-- document's history); an admin every row.  A case file's export row
-- (no document) is its taker's and the admins'.
ALTER TABLE access_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY visible ON access_log FOR SELECT
    USING (person_id = (SELECT ioffice.current_person())
           OR (SELECT ioffice.is_admin())
           OR access_log.document_id IN (SELECT unnest(ioffice._task_documents()))
           OR EXISTS (SELECT 1 FROM ioffice.document d
                      WHERE d.id = access_log.document_id
                        AND (d.drafter_id = (SELECT ioffice.current_person())
                             OR d.agency_id = ANY ((SELECT ioffice._clerk_agencies())::bigint[]))));

-- The one writer (extension/access_log.c): the acting person, now.  Not
-- granted: the functions that show a document call it once they have
-- shown it (SECURITY DEFINER, as the owner).
CREATE FUNCTION _log_access(action text, doc bigint, file bigint DEFAULT NULL,
                            case_file bigint DEFAULT NULL, detail text DEFAULT NULL)
    RETURNS void
    AS 'MODULE_PATHNAME', 'ioffice_log_access_sql'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION _log_access(text, bigint, bigint, bigint, text) FROM PUBLIC;

-- The export of a case file is a SECURITY INVOKER function (the caller's
-- row-level security decides its documents); it logs through this, which
-- writes only under the caller's own name.
CREATE FUNCTION _log_case_file_export(case_file bigint, detail text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM ioffice._log_access('export', NULL, NULL, case_file, detail);
END
$$;

-- The document as the app shows it on its page (the detail view): the row
-- of table document, if the actor may see it (42704 otherwise, as for one
-- that does not exist); logged as a view.
CREATE FUNCTION document_detail(doc bigint) RETURNS ioffice.document
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_doc ioffice.document;
BEGIN
    PERFORM ioffice.actor();
    IF doc IS NULL THEN
        RAISE EXCEPTION 'document_detail needs a document' USING ERRCODE = '22023';
    END IF;
    PERFORM ioffice._require_document(doc);
    SELECT * INTO v_doc FROM ioffice.document d WHERE d.id = doc;
    PERFORM ioffice._log_access('view', doc);
    RETURN v_doc;
END
$$;
COMMENT ON FUNCTION document_detail(bigint) IS
  'A document''s row as its page shows it, for whoever may see it; recorded in the access log as a view';

-- A file's bytes, for whoever may see its document (the stored original,
-- unchanged); recorded as a download.  file_copy() gives the marked copy.
CREATE FUNCTION file_content(file bigint) RETURNS bytea
    AS 'MODULE_PATHNAME', 'ioffice_file_content'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION file_content(bigint) IS
  'Download a file: its stored bytes, for whoever may see its document; recorded in the access log';

-- ---------------------------------------------------------------------------
-- Counts and statistics (III.6a-b).  security_invoker views: each reader
-- counts the rows the row-level security lets them read, so a count never
-- tells of a document (or of its readers) the reader may not see; an admin
-- counts everything.
-- ---------------------------------------------------------------------------

-- Accesses per document
CREATE VIEW document_access_count WITH (security_invoker = true) AS
SELECT a.document_id,
       count(*) FILTER (WHERE a.action IN ('view', 'trail')) AS views,
       count(*) FILTER (WHERE a.action IN ('download', 'copy')) AS downloads,
       count(*) FILTER (WHERE a.action = 'export') AS exports,
       count(*) AS accesses,
       count(DISTINCT a.person_id) AS people,
       max(a.at) AS last_at
FROM ioffice.access_log a
WHERE a.document_id IS NOT NULL
GROUP BY a.document_id;
COMMENT ON VIEW document_access_count IS
  'Số lượt truy cập từng văn bản (Decree 30, Appendix VI, III.6a): views, downloads, exports and people per document, of the rows the reader may read';
GRANT SELECT ON document_access_count TO PUBLIC;

-- Accesses per person
CREATE VIEW person_access_count WITH (security_invoker = true) AS
SELECT a.person_id,
       count(*) FILTER (WHERE a.action IN ('view', 'trail')) AS views,
       count(*) FILTER (WHERE a.action IN ('download', 'copy')) AS downloads,
       count(*) FILTER (WHERE a.action = 'export') AS exports,
       count(*) AS accesses,
       count(DISTINCT a.document_id) AS documents,
       max(a.at) AS last_at
FROM ioffice.access_log a
GROUP BY a.person_id;
COMMENT ON VIEW person_access_count IS
  'Accesses per person (views, downloads, exports, documents), of the rows the reader may read: an admin sees everyone''s, a person their own and those on documents they may see';
GRANT SELECT ON person_access_count TO PUBLIC;

-- Documents by month (of their creation, in ioffice.timezone), agency,
-- direction, type and state (III.6a: thống kê số lượng văn bản)
CREATE VIEW document_statistics WITH (security_invoker = true) AS
SELECT date_trunc('month', d.created_at AT TIME ZONE ioffice.timezone())::date AS month,
       d.agency_id, d.direction, d.doc_type, d.state,
       count(*) AS documents
FROM ioffice.document d
GROUP BY 1, 2, 3, 4, 5;
COMMENT ON VIEW document_statistics IS
  'Thống kê số lượng văn bản (Decree 30, Appendix VI, III.6a): documents by month, agency, direction, type and state, of those the reader may see';
GRANT SELECT ON document_statistics TO PUBLIC;

-- Accesses to the system by month and kind (III.6b: thống kê số lượt truy
-- cập vào Hệ thống theo yêu cầu của người quản lý, quản trị): for the admins
-- only, others read no row; the active people of a month are those who
-- viewed, downloaded or exported anything, or acted (the audit trail).
CREATE VIEW access_statistics WITH (security_invoker = true) AS
SELECT date_trunc('month', a.at AT TIME ZONE ioffice.timezone())::date AS month,
       a.action,
       count(*) AS accesses,
       count(DISTINCT a.person_id) AS people,
       count(DISTINCT a.document_id) AS documents
FROM ioffice.access_log a
WHERE (SELECT ioffice.is_admin())
GROUP BY 1, 2;
COMMENT ON VIEW access_statistics IS
  'Thống kê số lượt truy cập vào Hệ thống (Decree 30, Appendix VI, III.6b): accesses, people and documents by month and kind of access; admins only';
GRANT SELECT ON access_statistics TO PUBLIC;

CREATE VIEW active_people WITH (security_invoker = true) AS
SELECT x.month, count(DISTINCT x.person_id) AS people
FROM (SELECT date_trunc('month', a.at AT TIME ZONE ioffice.timezone())::date AS month, a.person_id
        FROM ioffice.access_log a
      UNION ALL
      SELECT date_trunc('month', u.at AT TIME ZONE ioffice.timezone())::date, u.actor_id
        FROM ioffice.audit u WHERE u.actor_id IS NOT NULL) x
WHERE (SELECT ioffice.is_admin())
GROUP BY x.month;
COMMENT ON VIEW active_people IS
  'People who used the system each month (viewed, downloaded, exported or acted); admins only';
GRANT SELECT ON active_people TO PUBLIC;

-- A PDF copy to download or print with the download mark (III.6k): who took
-- it and when, at the foot of every page, written by the PDF helper in an
-- incremental update of a copy (the stored file is unchanged, its
-- signatures verify as earlier revisions); recorded as a copy.  22023 for a
-- file that is not a PDF (file_content() gives it as stored).
CREATE FUNCTION file_copy(file bigint) RETURNS bytea
    AS 'MODULE_PATHNAME', 'ioffice_file_copy'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION file_copy(bigint) IS
  'Download or print a PDF file as a copy marked with who took it and when (Decree 30, Appendix VI, III.6k); the stored file is unchanged; recorded in the access log';

-- The rows of trail(), for trail() and trail_export(), each of which
-- writes its own row of the access log (a view, an export).  Not granted.
CREATE FUNCTION _trail(doc bigint)
RETURNS TABLE (step int, sender text, request text, receiver text,
               received_at timestamptz, processing_note text, deadline date,
               processed_at timestamptz, status text, attachments text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM ioffice.actor();
    IF doc IS NULL THEN
        RAISE EXCEPTION 'trail needs a document' USING ERRCODE = '22023';
    END IF;
    PERFORM ioffice._require_document(doc);
    RETURN QUERY
    SELECT t.step,
           s.full_name || coalesce(' (thay ' || sf.full_name || ')', ''),
           t.request,
           r.full_name,
           t.received_at,
           t.processing_note
             || CASE WHEN t.processed_by IS DISTINCT FROM t.receiver_id AND t.processed_by IS NOT NULL
                     THEN ' (' || pb.full_name || ' thay ' || r.full_name || ')' ELSE '' END,
           t.deadline,
           t.processed_at,
           CASE t.status WHEN 'done' THEN 'Đã xử lý' ELSE 'Đang xử lý' END,
           (SELECT string_agg(f.name, ', ' ORDER BY f.id)
            FROM ioffice.file f WHERE f.id = ANY (t.file_ids))
    FROM ioffice.task t
    JOIN ioffice.person s ON s.id = t.sender_id
    JOIN ioffice.person r ON r.id = t.receiver_id
    LEFT JOIN ioffice.person sf ON sf.id = t.sender_for
    LEFT JOIN ioffice.person pb ON pb.id = t.processed_by
    WHERE t.document_id = doc
    ORDER BY t.step;
END
$$;
REVOKE ALL ON FUNCTION _trail(bigint) FROM PUBLIC;

-- Showing the trail is a view of the document: recorded in the access log
-- (sql/parts/99_access_log.sql), once the rows are read.
CREATE OR REPLACE FUNCTION trail(doc bigint)
RETURNS TABLE (step int, sender text, request text, receiver text,
               received_at timestamptz, processing_note text, deadline date,
               processed_at timestamptz, status text, attachments text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY SELECT * FROM ioffice._trail(doc);
    PERFORM ioffice._log_access('trail', doc);
END
$$;
COMMENT ON FUNCTION trail(bigint) IS 'The processing trail (Quá trình xử lý) of a document; recorded in the access log';

CREATE OR REPLACE FUNCTION case_file_xml(case_file bigint) RETURNS xml
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_xml xml;
BEGIN
    IF case_file_xml.case_file IS NULL THEN
        RAISE EXCEPTION 'case_file_xml needs a case file' USING ERRCODE = '22023';
    END IF;
    SELECT xmlelement(name "File",
             xmlattributes(c.case_file_id AS "id"),
             xmlelement(name "FileCode", c.code),
             xmlelement(name "OrganId", c.organ_id),
             xmlelement(name "FileCatalog", c.year),
             xmlelement(name "FileNotation", c.notation),
             xmlelement(name "Title", c.title),
             xmlelement(name "Maintenance", c.retention),
             xmlelement(name "Rights", c.rights),
             xmlelement(name "Creator", c.responsible),
             xmlelement(name "Language", c.language),
             xmlelement(name "StartDate", c.opened_on),
             xmlelement(name "EndDate", c.closed_on),
             xmlelement(name "DocTotal", c.doc_total),
             xmlelement(name "PageTotal", c.page_total),
             xmlelement(name "Description", c.description),
             xmlelement(name "Documents",
               (SELECT xmlagg(xmlelement(name "Document",
                          xmlelement(name "FileCode", v.case_file_code),
                          xmlelement(name "DocOrdinal", v.ordinal),
                          xmlelement(name "TypeName", v.type_name),
                          xmlelement(name "CodeNumber",
                                     CASE WHEN strpos(v.symbol, '/') > 0
                                          THEN split_part(v.symbol, '/', 1) END),
                          xmlelement(name "CodeNotation",
                                     CASE WHEN strpos(v.symbol, '/') > 0
                                          THEN substr(v.symbol, strpos(v.symbol, '/') + 1)
                                          ELSE v.symbol END),
                          xmlelement(name "IssuedDate", v.document_date),
                          xmlelement(name "OrganName", v.organ_name),
                          xmlelement(name "Subject", v.subject),
                          xmlelement(name "Language", c.language),
                          xmlelement(name "PageAmount", v.page_count),
                          xmlelement(name "ArrivalDate", v.arrival_date),
                          xmlelement(name "ArrivalNumber", v.arrival_number),
                          xmlelement(name "SignerInfo", xmlelement(name "FullName", v.signer_name)),
                          xmlelement(name "Priority", v.urgency),
                          xmlelement(name "DueDate", v.due_date))
                        ORDER BY v.arose_on, v.number, v.ordinal)
                  FROM ioffice.case_file_contents v WHERE v.case_file_id = c.case_file_id)))
      INTO v_xml
      FROM ioffice.case_file_list c
     WHERE c.case_file_id = case_file_xml.case_file;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown case file %', case_file_xml.case_file USING ERRCODE = '42704';
    END IF;
    -- an export: recorded in the access log (sql/parts/99_access_log.sql)
    PERFORM ioffice._log_case_file_export(case_file_xml.case_file, 'xml');
    RETURN v_xml;
END
$$;
COMMENT ON FUNCTION case_file_xml(bigint) IS
  'A case file as XML: its metadata and every document''s (those the caller may see), in the order the documents arose';

-- ==== followup ====
-- ---------------------------------------------------------------------------
-- Follow-up of incoming documents, reminders, and the reports of Decree 30
-- appendix VI part I (issue 19 items 5 and 6)
-- ---------------------------------------------------------------------------

-- The state of one piece of handling, from its deadline and the day it was
-- done (in ioffice.timezone): done_on_time, done_late, pending (not done,
-- its deadline not passed, or none) or overdue.  One definition for the
-- follow-up register and the processing reports, so they always agree.
CREATE FUNCTION _handling_status(deadline date, done_on date) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN CASE
    WHEN done_on IS NOT NULL THEN
        CASE WHEN deadline IS NULL OR done_on <= deadline THEN 'done_on_time' ELSE 'done_late' END
    WHEN deadline < (now() AT TIME ZONE ioffice.timezone())::date THEN 'overdue'
    ELSE 'pending' END;
COMMENT ON FUNCTION _handling_status(date, date) IS
  'done_on_time, done_late, pending or overdue: a deadline and the day the handling was done, against today in ioffice.timezone';

-- The follow-up register of incoming documents (sổ theo dõi giải quyết văn
-- bản đến, Decree 30 appendix IV part VIII): every registered incoming
-- document with its handlers, the deadline of its lead handler (else the
-- document's own), its progress and the number and symbol of the replies
-- (issued outgoing documents linked to it).  security_invoker: a reader
-- sees the rows, handlers and replies that row-level security lets them
-- see (a reporting tool in ioffice_reader, who is no person of the
-- documents, sees the documents but not their tasks).
CREATE VIEW incoming_followup WITH (security_invoker = true) AS
SELECT d.agency_id, d.register_id, r.code AS register_code, d.register_year AS year,
       d.number,
       concat_ws(' ', coalesce(d.doc_type_name, t.name),
                 'số ' || coalesce(d.sender_symbol, src.symbol),
                 'ngày ' || to_char(coalesce(d.sender_date, src.issued_on), 'DD/MM/YYYY'),
                 'của ' || coalesce(sa.name, d.sender_name)) AS document_description,
       d.abstract,
       (SELECT string_agg(p.full_name || CASE tk.kind WHEN 'main' THEN ' (chủ trì)' ELSE ' (phối hợp)' END,
                          '; ' ORDER BY tk.kind DESC, tk.step)
          FROM ioffice.task tk JOIN ioffice.person p ON p.id = tk.receiver_id
         WHERE tk.document_id = d.id AND tk.action = 'assign') AS handlers,
       h.deadline,
       h.done_on,
       ioffice._handling_status(h.deadline, h.done_on) AS status,
       CASE WHEN h.done_on IS NOT NULL THEN
                'Đã giải quyết ngày ' || to_char(h.done_on, 'DD/MM/YYYY')
                || CASE WHEN h.done_on > h.deadline
                        THEN ' (chậm ' || (h.done_on - h.deadline) || ' ngày)' ELSE '' END
            WHEN h.assigned IS NULL THEN 'Chưa phân công giải quyết'
            WHEN h.deadline < h.today THEN 'Quá hạn ' || (h.today - h.deadline) || ' ngày'
            WHEN h.deadline IS NOT NULL THEN 'Đang giải quyết, còn ' || (h.deadline - h.today) || ' ngày'
            ELSE 'Đang giải quyết' END AS progress,
       (SELECT string_agg(o.symbol, '; ' ORDER BY o.issued_on, o.id)
          FROM ioffice.document_link l
          JOIN ioffice.document o
            ON o.id = CASE WHEN l.document_id = d.id THEN l.related_id ELSE l.document_id END
         WHERE (l.document_id = d.id OR l.related_id = d.id)
           AND o.direction = 'outgoing' AND o.number IS NOT NULL) AS reply_symbols,
       d.comment AS note,
       d.doc_type,
       r.confidential OR d.confidentiality <> 'normal' AS confidential,
       d.state,
       d.id AS document_id
FROM ioffice.document d
JOIN ioffice.register r ON r.id = d.register_id
JOIN ioffice.doc_type t ON t.code = d.doc_type
JOIN ioffice.workflow_state ws ON ws.workflow = d.workflow AND ws.state = d.state
LEFT JOIN ioffice.unit sa ON sa.id = d.sender_agency_id
LEFT JOIN ioffice.document src ON src.id = d.source_document_id
CROSS JOIN LATERAL (
    SELECT (now() AT TIME ZONE ioffice.timezone())::date AS today,
           m.received_at AS assigned,
           coalesce(m.deadline, d.due_date) AS deadline,
           CASE WHEN ws.final THEN
                (SELECT (coalesce(max(tk.processed_at), d.updated_at) AT TIME ZONE ioffice.timezone())::date
                   FROM ioffice.task tk WHERE tk.document_id = d.id AND tk.status = 'done') END AS done_on
      FROM (SELECT NULL) one
      LEFT JOIN LATERAL (
          SELECT tk.received_at, tk.deadline FROM ioffice.task tk
           WHERE tk.document_id = d.id AND tk.action = 'assign' AND tk.kind = 'main'
           ORDER BY tk.step DESC LIMIT 1) m ON true) h
WHERE d.direction = 'incoming' AND d.number IS NOT NULL;
COMMENT ON VIEW incoming_followup IS 'Sổ theo dõi giải quyết văn bản đến (Decree 30 appendix IV): deadline, progress and replies of the incoming documents the reader may see';
COMMENT ON COLUMN incoming_followup.number IS 'Số đến';
COMMENT ON COLUMN incoming_followup.document_description IS 'Tên loại, số, ký hiệu, ngày, tháng và tên cơ quan, tổ chức ban hành văn bản';
COMMENT ON COLUMN incoming_followup.abstract IS 'Trích yếu nội dung';
COMMENT ON COLUMN incoming_followup.handlers IS 'Đơn vị hoặc người nhận';
COMMENT ON COLUMN incoming_followup.deadline IS 'Thời hạn giải quyết';
COMMENT ON COLUMN incoming_followup.progress IS 'Tiến độ giải quyết';
COMMENT ON COLUMN incoming_followup.reply_symbols IS 'Số, ký hiệu văn bản trả lời';
COMMENT ON COLUMN incoming_followup.note IS 'Ghi chú';
COMMENT ON COLUMN incoming_followup.status IS 'done_on_time, done_late, pending or overdue';
COMMENT ON COLUMN incoming_followup.done_on IS 'The day the document was dealt with (its last task done), once it is in a final state';
GRANT SELECT ON incoming_followup TO PUBLIC;

-- Each piece of handling the processing reports count: a task of an
-- incoming document given by the leader's assignment (lead or
-- co-operating handler: the route to the leader is not handling), or any
-- task of an outgoing document; with its receiver's unit, its deadline
-- (the task's, else the document's) and its status.  security_invoker:
-- counts are of the tasks the reader may see.
CREATE VIEW processing_tasks WITH (security_invoker = true) AS
SELECT t.id AS task_id, t.document_id, d.direction, d.agency_id,
       p.unit_id, u.name AS unit_name, t.receiver_id AS person_id, p.full_name AS person_name,
       t.kind, t.action,
       (t.received_at AT TIME ZONE ioffice.timezone())::date AS received_on,
       x.deadline, x.done_on,
       ioffice._handling_status(x.deadline, x.done_on) AS status
FROM ioffice.task t
JOIN ioffice.document d ON d.id = t.document_id
JOIN ioffice.person p ON p.id = t.receiver_id
JOIN ioffice.unit u ON u.id = p.unit_id
CROSS JOIN LATERAL (
    SELECT coalesce(t.deadline, d.due_date) AS deadline,
           (t.processed_at AT TIME ZONE ioffice.timezone())::date AS done_on) x
WHERE d.direction = 'outgoing' OR t.action = 'assign';
COMMENT ON VIEW processing_tasks IS 'The handling the processing reports count (tasks of assigned incoming documents, tasks of outgoing ones), with deadline and status, as the reader may see them';
GRANT SELECT ON processing_tasks TO PUBLIC;

-- Báo cáo tình hình giải quyết văn bản đến / đi (appendix VI part I): per
-- unit (person_id NULL) and per person of each unit, the tasks received in
-- the period (by the day they were received; NULL bounds: no bound) and
-- how they stand today.  SECURITY INVOKER: what the caller may see.
CREATE FUNCTION processing_report(direction text, from_date date DEFAULT NULL, to_date date DEFAULT NULL)
RETURNS TABLE (agency_id bigint, unit_id bigint, unit_name text, person_id bigint, person_name text,
               received bigint, done_on_time bigint, done_late bigint, pending_in_time bigint,
               overdue bigint)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF processing_report.direction IS NULL OR processing_report.direction NOT IN ('incoming', 'outgoing') THEN
        RAISE EXCEPTION 'unknown direction "%"', pg_catalog.left(processing_report.direction, 60)
            USING ERRCODE = '22023', HINT = 'Allowed directions: incoming, outgoing.';
    END IF;
    RETURN QUERY
    SELECT t.agency_id, t.unit_id, t.unit_name, t.person_id, t.person_name,
           count(*), count(*) FILTER (WHERE t.status = 'done_on_time'),
           count(*) FILTER (WHERE t.status = 'done_late'),
           count(*) FILTER (WHERE t.status = 'pending'),
           count(*) FILTER (WHERE t.status = 'overdue')
      FROM ioffice.processing_tasks t
     WHERE t.direction = processing_report.direction
       AND (from_date IS NULL OR t.received_on >= from_date)
       AND (to_date IS NULL OR t.received_on <= to_date)
     GROUP BY GROUPING SETS ((t.agency_id, t.unit_id, t.unit_name),
                             (t.agency_id, t.unit_id, t.unit_name, t.person_id, t.person_name))
     ORDER BY t.agency_id, t.unit_name, t.unit_id, t.person_id NULLS FIRST;
END
$$;
COMMENT ON FUNCTION processing_report(text, date, date) IS
  'Báo cáo tình hình giải quyết văn bản đến / đi: per unit (person_id NULL) and per person, the tasks received in the period: done on time, done late, pending in time, overdue; what the caller may see';

CREATE VIEW incoming_processing_report WITH (security_invoker = true) AS
SELECT * FROM ioffice.processing_report('incoming');
COMMENT ON VIEW incoming_processing_report IS 'Báo cáo tình hình giải quyết văn bản đến, all periods: per unit (person_id NULL) and per person';
GRANT SELECT ON incoming_processing_report TO PUBLIC;
CREATE VIEW outgoing_processing_report WITH (security_invoker = true) AS
SELECT * FROM ioffice.processing_report('outgoing');
COMMENT ON VIEW outgoing_processing_report IS 'Báo cáo tình hình giải quyết văn bản đi, all periods: per unit (person_id NULL) and per person';
GRANT SELECT ON outgoing_processing_report TO PUBLIC;

-- The workbooks (extension/report_export.c, with the registers' writer).
-- SECURITY INVOKER: each reads the views above under the caller's
-- row-level security, so a file holds what its reader may see.
CREATE FUNCTION followup_export(agency bigint, year int, format text DEFAULT 'xlsx') RETURNS bytea
    AS 'MODULE_PATHNAME', 'ioffice_followup_export'
    LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION followup_export(bigint, int, text) IS
  'The follow-up register of incoming documents of an agency and year (sổ theo dõi giải quyết văn bản đến) as xlsx or csv; the rows the caller may see';
CREATE FUNCTION processing_report_export(direction text, from_date date DEFAULT NULL,
                                         to_date date DEFAULT NULL, format text DEFAULT 'xlsx') RETURNS bytea
    AS 'MODULE_PATHNAME', 'ioffice_processing_report_export'
    LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION processing_report_export(text, date, date, text) IS
  'processing_report() as xlsx or csv (báo cáo tình hình giải quyết văn bản đến / đi)';
CREATE FUNCTION case_file_contents_export(case_file bigint, format text DEFAULT 'xlsx') RETURNS bytea
    AS 'MODULE_PATHNAME', 'ioffice_case_file_contents_export'
    LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION case_file_contents_export(bigint, text) IS
  'The table of contents of a case file (mục lục văn bản trong hồ sơ) as xlsx or csv: its documents the caller may see, in the order they arose';
CREATE FUNCTION case_file_list_export(agency bigint, year int, format text DEFAULT 'xlsx') RETURNS bytea
    AS 'MODULE_PATHNAME', 'ioffice_case_file_list_export'
    LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION case_file_list_export(bigint, int, text) IS
  'The list of an agency''s case files of a year (mục lục hồ sơ) as xlsx or csv, with the documents and pages the caller may see';

-- ---------------------------------------------------------------------------
-- Reminders (Decree 30 art. 24; appendix VI III.1l-m)
-- ---------------------------------------------------------------------------

-- What was sent, so that each reminder goes once, whoever sends it and
-- however often, across restarts: a row per task and level, written in the
-- transaction that queues its event.
CREATE TABLE reminder_sent (
    task_id    bigint NOT NULL REFERENCES task,
    level      text NOT NULL CHECK (level IN ('due', 'overdue')),
    person_id  bigint NOT NULL REFERENCES person,
    deadline   date NOT NULL,
    channel    text CHECK (channel IN ('email', 'sms')),
    sent_at    timestamptz NOT NULL DEFAULT now(),
    -- the deadline is part of the key: a task whose deadline is moved is
    -- reminded again of the new one, once per level
    PRIMARY KEY (task_id, level, deadline)
);
COMMENT ON TABLE reminder_sent IS 'Reminders sent of tasks coming due (due) and overdue: one per task, level and deadline (a moved deadline is reminded again); channel NULL: the person has no address';

CREATE TABLE reminder_digest (
    leader_id  bigint NOT NULL REFERENCES person,
    day        date NOT NULL,
    due        int NOT NULL,
    overdue    int NOT NULL,
    channel    text CHECK (channel IN ('email', 'sms')),
    sent_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (leader_id, day)
);
COMMENT ON TABLE reminder_digest IS 'Daily digests sent to unit leaders: one per leader and day (in ioffice.timezone)';
COMMENT ON COLUMN reminder_digest.due IS 'Open tasks of the leader''s units coming due that day';
COMMENT ON COLUMN reminder_digest.overdue IS 'Open tasks of the leader''s units overdue that day';

SELECT pg_catalog.pg_extension_config_dump('reminder_sent', '');
SELECT pg_catalog.pg_extension_config_dump('reminder_digest', '');
REVOKE ALL ON reminder_sent, reminder_digest FROM PUBLIC;
GRANT SELECT ON reminder_sent, reminder_digest TO ioffice_admin;

-- The open tasks with a deadline that are due or overdue today: due from
-- the working day that leaves ioffice.reminder_lead_days working days
-- before the deadline's (0: the last working day up to the deadline),
-- overdue from the first working day after it (the calendar of
-- is_working_day(): a deadline on a Sunday is due on the Friday and
-- overdue on the Monday).
CREATE FUNCTION _tasks_to_remind()
RETURNS TABLE (task_id bigint, document_id bigint, person_id bigint, unit_id bigint,
               deadline date, level text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    WITH k AS (
        SELECT t.id, t.document_id, t.receiver_id, p.unit_id, coalesce(t.deadline, d.due_date) AS deadline,
               (now() AT TIME ZONE ioffice.timezone())::date AS today,
               current_setting('ioffice.reminder_lead_days')::int AS lead
          FROM ioffice.task t
          JOIN ioffice.document d ON d.id = t.document_id
          JOIN ioffice.person p ON p.id = t.receiver_id
         WHERE t.status = 'open' AND coalesce(t.deadline, d.due_date) IS NOT NULL)
    -- the calendar is asked only near the deadline: no run of days off is
    -- 20 days long, so a deadline further ahead than twice the lead and 20
    -- days is not due, and one passed more than 20 days ago is overdue
    SELECT k.id, k.document_id, k.receiver_id, k.unit_id, k.deadline,
           CASE WHEN k.today > k.deadline THEN 'overdue' ELSE 'due' END
      FROM k
     WHERE (k.today > k.deadline
            AND (k.today - k.deadline > 20
                 OR ioffice.working_days_between((k.deadline + 1)::timestamp AT TIME ZONE ioffice.timezone(),
                                                 (k.today + 1)::timestamp AT TIME ZONE ioffice.timezone()) >= 1))
        OR (k.today <= k.deadline AND k.deadline - k.today <= 2 * k.lead + 20
            AND ioffice.working_days_between(k.today::timestamp AT TIME ZONE ioffice.timezone(),
                                             (k.deadline + 1)::timestamp AT TIME ZONE ioffice.timezone())
                <= k.lead + 1)
$$;
REVOKE ALL ON FUNCTION _tasks_to_remind() FROM PUBLIC;

-- The address of a person's notification: e-mail, else SMS, else none.
CREATE FUNCTION _notify_person(person bigint, message text, about jsonb) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_p record;
    v_channel text;
BEGIN
    SELECT p.login, p.full_name, p.email, p.phone INTO v_p FROM ioffice.person p WHERE p.id = _notify_person.person;
    v_channel := CASE WHEN coalesce(v_p.email, '') <> '' THEN 'email'
                      WHEN coalesce(v_p.phone, '') <> '' THEN 'sms' END;
    IF v_channel IS NOT NULL THEN
        PERFORM ioffice._emit('notify.' || v_channel,
            jsonb_build_object('channel', v_channel, 'login', v_p.login, 'name', v_p.full_name,
                               'to', CASE v_channel WHEN 'email' THEN v_p.email ELSE v_p.phone END,
                               'message', message, 'about', about));
    END IF;
    RETURN v_channel;
END
$$;
REVOKE ALL ON FUNCTION _notify_person(bigint, text, jsonb) FROM PUBLIC;

-- The reminders due now, each once: to each person, a notify.* event when a
-- task of theirs comes due and when it is overdue (a task found overdue
-- first gets the overdue one only); on a working day, to each leader of a
-- unit (role leader; the unit and its departments) one digest of that
-- day's due and overdue tasks of their units, when there are any.  Called
-- by the signing worker on its loop (workers/reminder_jobs.c); a row
-- another call is writing is left to it.  Returns the events' count
-- (reminders and digests, whether or not the person has an address).
CREATE FUNCTION send_reminders() RETURNS int
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_today date := (now() AT TIME ZONE ioffice.timezone())::date;
    v_row record;
    v_n int := 0;
    v_channel text;
BEGIN
    FOR v_row IN
        SELECT r.task_id, r.document_id, r.person_id, r.deadline, r.level, d.abstract,
               coalesce(d.symbol, d.sender_symbol) AS symbol
          FROM ioffice._tasks_to_remind() r
          JOIN ioffice.document d ON d.id = r.document_id
         WHERE NOT EXISTS (SELECT 1 FROM ioffice.reminder_sent s
                            WHERE s.task_id = r.task_id AND s.level = r.level
                              AND s.deadline = r.deadline)
         ORDER BY r.task_id
    LOOP
        -- the row first: a concurrent call that wrote it wins, and this one
        -- sends nothing
        INSERT INTO ioffice.reminder_sent (task_id, level, person_id, deadline)
        VALUES (v_row.task_id, v_row.level, v_row.person_id, v_row.deadline)
        ON CONFLICT DO NOTHING;
        CONTINUE WHEN NOT FOUND;
        v_channel := ioffice._notify_person(v_row.person_id,
            format(CASE v_row.level WHEN 'due' THEN 'Văn bản %s "%s" đến hạn giải quyết ngày %s'
                                    ELSE 'Văn bản %s "%s" đã quá hạn giải quyết (hạn %s)' END,
                   coalesce(v_row.symbol, ''), pg_catalog.left(v_row.abstract, 200),
                   to_char(v_row.deadline, 'DD/MM/YYYY')),
            jsonb_build_object('kind', 'task_' || v_row.level, 'task', v_row.task_id,
                               'document', v_row.document_id, 'deadline', v_row.deadline));
        UPDATE ioffice.reminder_sent s SET channel = v_channel
         WHERE s.task_id = v_row.task_id AND s.level = v_row.level AND s.deadline = v_row.deadline;
        v_n := v_n + 1;
    END LOOP;

    IF NOT ioffice.is_working_day(v_today) THEN
        RETURN v_n;
    END IF;
    FOR v_row IN
        WITH RECURSIVE led (leader_id, unit_id) AS (
            SELECT r.person_id, r.unit_id FROM ioffice.person_role r
              JOIN ioffice.person p ON p.id = r.person_id
             WHERE r.role = 'leader' AND p.active
            UNION
            SELECT l.leader_id, u.id FROM led l JOIN ioffice.unit u ON u.parent_id = l.unit_id
        )
        -- (the first 50 tasks, the oldest deadlines first, in the event)
        SELECT l.leader_id, count(*) FILTER (WHERE x.level = 'due') AS due,
               count(*) FILTER (WHERE x.level = 'overdue') AS overdue,
               jsonb_path_query_array(
                   jsonb_agg(jsonb_build_object('task', x.task_id, 'document', x.document_id,
                                                'person', x.person_id, 'deadline', x.deadline,
                                                'level', x.level)
                             ORDER BY x.deadline, x.task_id), '$[0 to 49]') AS tasks
          FROM (SELECT DISTINCT leader_id, unit_id FROM led) l
          JOIN ioffice._tasks_to_remind() x ON x.unit_id = l.unit_id
         WHERE NOT EXISTS (SELECT 1 FROM ioffice.reminder_digest g
                            WHERE g.leader_id = l.leader_id AND g.day = v_today)
         GROUP BY l.leader_id
         ORDER BY l.leader_id
    LOOP
        INSERT INTO ioffice.reminder_digest (leader_id, day, due, overdue)
        VALUES (v_row.leader_id, v_today, v_row.due, v_row.overdue)
        ON CONFLICT DO NOTHING;
        CONTINUE WHEN NOT FOUND;
        v_channel := ioffice._notify_person(v_row.leader_id,
            format('Ngày %s: %s việc đến hạn, %s việc quá hạn giải quyết trong đơn vị',
                   to_char(v_today, 'DD/MM/YYYY'), v_row.due, v_row.overdue),
            jsonb_build_object('kind', 'digest', 'day', v_today, 'due', v_row.due,
                               'overdue', v_row.overdue, 'tasks', v_row.tasks));
        UPDATE ioffice.reminder_digest g SET channel = v_channel
         WHERE g.leader_id = v_row.leader_id AND g.day = v_today;
        v_n := v_n + 1;
    END LOOP;
    RETURN v_n;
END
$$;
COMMENT ON FUNCTION send_reminders() IS
  'Sends (notify.email, or notify.sms) the reminders due now, each once: a task coming due (ioffice.reminder_lead_days working days ahead) and overdue, to its person; on working days, one digest a day to each unit leader of their units'' due and overdue tasks; the worker calls it; returns the events'' count';
REVOKE ALL ON FUNCTION send_reminders() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION send_reminders() TO ioffice_admin;

-- ==== timestamps ====
-- PAdES B-T and B-LT (issue 13 item 4): verify() says the level reached and
-- the time a signature's timestamp proves
DROP FUNCTION verify(bigint);
CREATE FUNCTION verify(file bigint)
    RETURNS TABLE (signer text, kind text, signed_at timestamptz, subject text, valid boolean, reason text,
                   revision int, after_signing text, level text, timestamped_at timestamptz)
    AS 'MODULE_PATHNAME', 'ioffice_verify'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION verify(bigint) IS
  'Every signature on a file, detached or embedded in a PDF (revision, and what later revisions added: none, signatures, or content), checked against the registered trust anchors and revocation lists (Kiểm tra VB đã ký); level: the PAdES baseline level reached (B-B, B-T with a signature timestamp, B-LT with the chain and revocation lists in the document''s DSS), timestamped_at: the time the timestamp proves; a signature whose certificate expired after its timestamp is valid at signing time';

-- ==== edxml_axis ====

-- ---------------------------------------------------------------------------
-- edXML over the interconnection axis: sending, receiving, statuses back
-- (issue 14 items 2, 3, 4, 6; workers/edxml_exchange.c)
-- ---------------------------------------------------------------------------

-- The package of an issued document for one external recipient, for
-- edxml_build() (a clerk's call: StaffInfo is the clerk) and for the worker
-- (clerk NULL: the system sends it).  Unsigned.
CREATE FUNCTION _edxml_package(doc bigint, recipient text, clerk bigint) RETURNS xml
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me bigint := clerk;
    d record;
    v_agency record;
    v_parent text;
    v_to_name text;
    v_clerk record;
    v_number text;
    v_notation text;
    v_priority text;
    v_files xml;
    v_manifest xml;
    v_places xml;
    v_ns constant text := 'http://www.mic.gov.vn/TBT/QCVN_102_2016';
BEGIN
    SELECT * INTO d FROM ioffice.document WHERE id = doc;
    IF d.direction IS DISTINCT FROM 'outgoing' OR d.issued_at IS NULL OR d.number IS NULL THEN
        RAISE EXCEPTION 'document % is not an issued outgoing document', doc
            USING ERRCODE = '55000';
    END IF;
    SELECT u.code, u.name, u.parent_id INTO v_agency FROM ioffice.unit u WHERE u.id = d.agency_id;
    IF v_agency.code IS NULL THEN
        RAISE EXCEPTION 'edXML field From/OrganId: the issuing agency has no agency code'
            USING ERRCODE = '22023',
                  HINT = 'Give the agency its QCVN 102:2016 code (unit.code).';
    END IF;
    SELECT a.name INTO v_parent FROM ioffice.unit a
    WHERE a.id = (SELECT p.agency_id FROM ioffice.unit p WHERE p.id = v_agency.parent_id);
    SELECT u.name INTO v_to_name FROM ioffice.unit u WHERE u.code = recipient AND u.kind = 'agency';
    SELECT p.full_name, p.phone, p.email, un.name AS unit_name INTO v_clerk
    FROM ioffice.person p JOIN ioffice.unit un ON un.id = p.unit_id WHERE p.id = v_me;
    -- the identifier's "number/notation" (01/UBND-VP): the number as it
    -- writes it, and the notation after it
    v_number := split_part(split_part(d.identifier, ',', 3), '/', 1);
    v_notation := substr(split_part(d.identifier, ',', 3), length(v_number) + 2);
    v_priority := CASE d.urgency WHEN 'normal' THEN '0' WHEN 'urgent' THEN '1'
                                 WHEN 'very_urgent' THEN '2' WHEN 'flash' THEN '3'
                                 ELSE '4' END;

    PERFORM ioffice._edxml_limit('From/OrganId', v_agency.code, 13),
            ioffice._edxml_limit('To/OrganId', recipient, 13),
            ioffice._edxml_limit('Code/CodeNumber', v_number, 11),
            ioffice._edxml_limit('Code/CodeNotation', v_notation, 30),
            ioffice._edxml_limit('Subject', d.abstract, 500),
            ioffice._edxml_limit('DocumentId', d.identifier, 100);

    SELECT xmlagg(xmlelement(name "Reference",
                      xmlelement(name "ContentId", 'cid:' || f.n),
                      xmlelement(name "ContentType", f.content_type),
                      xmlelement(name "Description", f.name),
                      xmlelement(name "AttachmentName", f.name)) ORDER BY f.n),
           xmlagg(xmlelement(name "Attachment",
                      xmlelement(name "ContentId", 'cid:' || f.n),
                      xmlelement(name "AttachmentName", f.name),
                      xmlelement(name "Description", f.name),
                      xmlelement(name "ContentType", f.content_type),
                      xmlelement(name "ContentTransferEncoded", encode(f.content, 'base64')))
                  ORDER BY f.n)
      INTO v_manifest, v_files
    FROM (SELECT row_number() OVER (ORDER BY fl.id) AS n, fl.name, fl.content,
                 CASE fl.kind WHEN 'pdf' THEN 'application/pdf'
                      WHEN 'docx' THEN 'application/vnd.openxmlformats-officedocument.wordprocessingml.document'
                      WHEN 'xlsx' THEN 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet'
                      WHEN 'doc' THEN 'application/msword'
                      WHEN 'xls' THEN 'application/vnd.ms-excel'
                      WHEN 'zip' THEN 'application/zip'
                      ELSE 'application/octet-stream' END AS content_type
          FROM ioffice.file fl
          WHERE fl.document_id = doc AND fl.superseded_at IS NULL AND fl.removed_at IS NULL) f;

    SELECT xmlagg(xmlelement(name "Place", coalesce(e->>'name', e->>'place')) ORDER BY o)
      INTO v_places
    FROM jsonb_array_elements(d.recipients) WITH ORDINALITY AS r(e, o);

    RETURN xmlelement(name "edXML", xmlattributes(v_ns AS xmlns),
        xmlelement(name "edXMLEnvelope",
            xmlelement(name "edXMLHeader",
                xmlelement(name "MessageHeader",
                    xmlelement(name "From",
                        xmlelement(name "OrganId", v_agency.code),
                        xmlelement(name "OrganizationInCharge", coalesce(v_parent, v_agency.name)),
                        xmlelement(name "OrganName", v_agency.name)),
                    xmlelement(name "To",
                        xmlelement(name "OrganId", recipient),
                        xmlforest(v_to_name AS "OrganName")),
                    xmlelement(name "Code",
                        xmlelement(name "CodeNumber", v_number),
                        xmlelement(name "CodeNotation", v_notation)),
                    xmlelement(name "PromulgationInfo",
                        xmlelement(name "Place", v_agency.name),
                        xmlelement(name "PromulgationDate", ioffice._edxml_date(d.issued_on))),
                    xmlelement(name "DocumentType",
                        xmlelement(name "Type", '1'),
                        xmlelement(name "TypeName", coalesce(d.doc_type_name, d.doc_type))),
                    xmlelement(name "Subject", d.abstract),
                    xmlelement(name "Content", d.abstract),
                    xmlelement(name "SignerInfo",
                        xmlforest((SELECT p.position FROM ioffice.person p WHERE p.id = d.signer_id)
                                      AS "Position",
                                  d.signer_name AS "FullName")),
                    xmlforest(ioffice._edxml_date(d.due_date) AS "DueDate"),
                    xmlelement(name "ToPlaces", v_places),
                    xmlelement(name "OtherInfo",
                        xmlelement(name "Priority", v_priority),
                        xmlforest(d.copies AS "PromulgationAmount", d.page_count AS "PageAmount")),
                    xmlelement(name "SteeringType", '1'),
                    xmlelement(name "DocumentId", d.identifier)),
                xmlelement(name "TraceHeaderList",
                    xmlelement(name "TraceHeader",
                        xmlelement(name "OrganId", v_agency.code),
                        xmlelement(name "Timestamp",
                            to_char(now() AT TIME ZONE ioffice.timezone(), 'YYYY/MM/DD HH24:MI:SS'))),
                    xmlelement(name "Bussiness",
                        xmlelement(name "DocumentId", d.identifier),
                        xmlelement(name "BussinessDocType", '0'),
                        xmlelement(name "BussinessDocReason", 'Văn bản điện tử mới'),
                        xmlelement(name "Paper", '0'),
                        xmlelement(name "StaffInfo",
                            xmlforest(v_clerk.unit_name AS "Department", v_clerk.full_name AS "Staff",
                                      v_clerk.email AS "Email", v_clerk.phone AS "Mobile"))))),
            xmlelement(name "edXMLBody",
                xmlelement(name "edXMLManifest", xmlattributes('1.0' AS version), v_manifest))),
        xmlelement(name "AttachmentEncoded", v_files));
END
$$;
REVOKE ALL ON FUNCTION _edxml_package(bigint, text, bigint) FROM PUBLIC;

-- Filing a package the helper read (p), addressed to agency: for
-- _edxml_receive() (actor: the clerk) and the worker (actor NULL).
CREATE FUNCTION _edxml_file(p jsonb, package text, agency bigint, actor bigint) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me bigint := actor;
    v_text text := package;
    v_agency bigint := agency;
    v_sender text;
    v_docid text;
    v_key bigint;
    v_id bigint;
    v_doc_type text;
    v_urgency text;
    v_pages int;
    v_files int;
BEGIN
    IF p->'signature'->>'status' <> 'valid' THEN
        RAISE EXCEPTION 'edXML package refused: its signature is %', p->'signature'->>'status'
            USING ERRCODE = '42501', DETAIL = p->'signature'->>'reason';
    END IF;
    IF coalesce(p->>'bussiness_doc_type', '0') <> '0' THEN
        RAISE EXCEPTION 'edXML package refused: BussinessDocType % (recall, update, replace) is not handled yet',
            p->>'bussiness_doc_type'
            USING ERRCODE = '22023', DETAIL = 'Field TraceHeaderList/Bussiness/BussinessDocType.';
    END IF;
    IF jsonb_array_length(p->'attachments') = 0 THEN
        RAISE EXCEPTION 'edXML package refused: it carries no attachment'
            USING ERRCODE = '22023', DETAIL = 'Field AttachmentEncoded.';
    END IF;
    v_sender := p->'from'->>'organ_id';
    v_docid := p->>'document_id';

    PERFORM ioffice._engine_enter();
    -- the key first: a concurrent caller with the same package waits here
    INSERT INTO ioffice.edxml_received (agency_id, sender_organ_id, edxml_document_id,
                                        package_sha256, signer_subject, received_by)
    VALUES (v_agency, v_sender, v_docid, sha256(convert_to(v_text, 'UTF8')),
            p->'signature'->>'subject', v_me)
    ON CONFLICT (agency_id, sender_organ_id, edxml_document_id) DO NOTHING
    RETURNING id INTO v_key;
    IF v_key IS NULL THEN
        SELECT r.document_id INTO v_id FROM ioffice.edxml_received r
        WHERE r.agency_id = v_agency AND r.sender_organ_id = v_sender
          AND r.edxml_document_id = v_docid;
        PERFORM ioffice._engine_leave();
        RETURN v_id;
    END IF;

    -- the same document (sender, number and symbol, year) under another
    -- DocumentId, or registered from paper already: Decree 30's duplicate
    SELECT d.id INTO v_id FROM ioffice.document d
    WHERE d.direction = 'incoming' AND d.agency_id = v_agency AND d.sender_agency_id IS NULL
      AND d.sender_name = pg_catalog.left(coalesce(p->'from'->>'organ_name', v_sender), 500)
      AND d.sender_symbol = pg_catalog.left((p->>'code_number') || '/' || (p->>'code_notation'), 100)
      AND d.sender_year = extract(year FROM to_date(p->>'promulgation_date', 'YYYY/MM/DD'));
    IF FOUND THEN
        RAISE EXCEPTION 'edXML package refused: document %/% of % was received already',
            p->>'code_number', p->>'code_notation', pg_catalog.left(v_sender, 60)
            USING ERRCODE = '23505',
                  DETAIL = format('Incoming document %s; this package''s DocumentId is %s.',
                                  v_id, pg_catalog.left(v_docid, 100));
    END IF;
    SELECT t.code INTO v_doc_type FROM ioffice.doc_type t WHERE t.name = p->>'type_name';
    v_urgency := CASE p->>'priority' WHEN '1' THEN 'urgent' WHEN '2' THEN 'very_urgent'
                                     WHEN '3' THEN 'flash' WHEN '4' THEN 'flash'
                                     ELSE 'normal' END;
    v_pages := CASE WHEN (p->>'page_amount')::bigint BETWEEN 1 AND 100000
                    THEN (p->>'page_amount')::int END;
    INSERT INTO ioffice.document (workflow, direction, doc_type, abstract, state, urgency,
                                  agency_id, drafting_unit_id, page_count, due_date,
                                  sender_name, sender_symbol, sender_date, received_at, signer_name)
    VALUES ('incoming', 'incoming', coalesce(v_doc_type, 'CV'), p->>'subject',
            (SELECT s.state FROM ioffice.workflow_state s
             WHERE s.workflow = 'incoming' AND s.initial ORDER BY s.state LIMIT 1),
            v_urgency, v_agency, v_agency, v_pages,
            to_date(p->>'due_date', 'YYYY/MM/DD'),
            pg_catalog.left(coalesce(p->'from'->>'organ_name', v_sender), 500),
            pg_catalog.left((p->>'code_number') || '/' || (p->>'code_notation'), 100),
            to_date(p->>'promulgation_date', 'YYYY/MM/DD'), now(),
            pg_catalog.left(p->>'signer_name', 200))
    RETURNING id INTO v_id;
    INSERT INTO ioffice.file (document_id, name, kind, size, sha256, content, uploaded_by)
    SELECT v_id,
           pg_catalog.left(coalesce(a->>'name', a->>'description', a->>'content_id'), 255),
           coalesce(ioffice.file_kind(c.content), 'other'), octet_length(c.content),
           sha256(c.content), c.content, v_me
    FROM jsonb_array_elements(p->'attachments') WITH ORDINALITY AS x(a, o),
         LATERAL (SELECT decode(a->>'data', 'base64') AS content) c
    ORDER BY x.o;
    GET DIAGNOSTICS v_files = ROW_COUNT;
    UPDATE ioffice.edxml_received SET document_id = v_id WHERE id = v_key;
    INSERT INTO ioffice.edxml_status (document_id, party_organ_id, edxml_document_id, direction,
                                      code, description)
    VALUES (v_id, v_sender, v_docid, 'sent', '01', 'Đã đến');
    PERFORM ioffice._audit('document', v_id, 'edxml_receive', NULL, 'received',
                           jsonb_build_object('sender', v_sender, 'document_id', v_docid,
                                              'files', v_files,
                                              'signer', p->'signature'->>'subject'));
    PERFORM ioffice._engine_leave();
    RETURN v_id;
END
$$;
REVOKE ALL ON FUNCTION _edxml_file(jsonb, text, bigint, bigint) FROM PUBLIC;

-- The worker files packages from the axis as the system, with no person:
-- such a received package and its files have no person who received or
-- uploaded them.
ALTER TABLE edxml_received ALTER COLUMN received_by DROP NOT NULL;
COMMENT ON COLUMN edxml_received.received_by IS
  'The clerk who filed the package with edxml_receive(); NULL: the worker filed it from the axis';
ALTER TABLE file ALTER COLUMN uploaded_by DROP NOT NULL;
COMMENT ON COLUMN file.uploaded_by IS
  'Who uploaded the file; NULL: the worker filed it from a package of the interconnection axis';

-- Where an agency's packages go and come from: one axis per agency.
-- transport 'vxp': the VXP-shaped REST axis at url (sendEdoc,
-- getReceivedEdocList, getEdoc, updateStatus; requests signed with
-- HMAC-SHA256 of system_id and a timestamp under secret), sending and
-- pulling; 'endpoint': packages posted to an endpoint row (its URL and
-- HMAC secret), sending only.
CREATE TABLE exchange_axis (
    id           bigserial PRIMARY KEY,
    agency_id    bigint NOT NULL UNIQUE REFERENCES unit,
    transport    text NOT NULL CHECK (transport IN ('vxp', 'endpoint')),
    url          text CHECK (url ~ '^https?://[^\s]+$' AND length(url) <= 2000),
    system_id    text CHECK (length(system_id) BETWEEN 1 AND 100),
    secret       text CHECK (length(secret) BETWEEN 16 AND 500),
    endpoint_id  bigint REFERENCES endpoint,
    timeout_ms   int NOT NULL DEFAULT 10000 CHECK (timeout_ms BETWEEN 100 AND 600000),
    max_attempts int NOT NULL DEFAULT 12 CHECK (max_attempts BETWEEN 1 AND 1000),
    poll_seconds int NOT NULL DEFAULT 60 CHECK (poll_seconds BETWEEN 1 AND 86400),
    enabled      boolean NOT NULL DEFAULT true,
    CHECK (transport <> 'vxp' OR (url IS NOT NULL AND system_id IS NOT NULL AND secret IS NOT NULL)),
    CHECK (transport <> 'endpoint' OR endpoint_id IS NOT NULL)
);
COMMENT ON TABLE exchange_axis IS
  'The interconnection axis of each agency: VXP-shaped REST (url, system_id, HMAC secret; sends and pulls) or an endpoint row (sends only)';
SELECT pg_catalog.pg_extension_config_dump('exchange_axis', '');
SELECT pg_catalog.pg_extension_config_dump('exchange_axis_id_seq', '');
REVOKE ALL ON exchange_axis FROM PUBLIC;
GRANT SELECT (id, agency_id, transport, url, system_id, endpoint_id, timeout_ms, max_attempts,
              poll_seconds, enabled),
      INSERT, UPDATE, DELETE ON exchange_axis TO ioffice_admin;
GRANT USAGE ON SEQUENCE exchange_axis_id_seq TO ioffice_admin;
-- where packages go is a DBA's decision on the record, as endpoints are
CREATE TRIGGER audit_direct AFTER INSERT OR UPDATE OR DELETE ON exchange_axis
    FOR EACH ROW WHEN (_outside_engine()) EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct_truncate AFTER TRUNCATE ON exchange_axis
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_direct();

-- The packages to send, one row each, written in the transaction of the
-- change (the issue, the status recorded); the worker builds, signs (the
-- seal, through the edXML helper) and sends them, at least once, retried
-- with backoff until max_attempts; the receiver files a package (sender,
-- DocumentId) once, and idempotency_key goes with every attempt.
-- kind 'document': the package of an issued document for one external
-- recipient; 'status': a status package (code) answering recipient's
-- document edxml_document_id (status_id: its edxml_status row, NULL when
-- the package refused was never filed).
CREATE TABLE edxml_outgoing (
    id              bigserial PRIMARY KEY,
    agency_id       bigint NOT NULL REFERENCES unit,
    document_id     bigint REFERENCES document,
    recipient       text NOT NULL CHECK (length(recipient) BETWEEN 1 AND 13),
    kind            text NOT NULL CHECK (kind IN ('document', 'status')),
    status_id       bigint REFERENCES edxml_status,
    code            text CHECK (code ~ '^[0-9]{2}$'),
    description     text CHECK (length(description) <= 2000),
    edxml_document_id text CHECK (length(edxml_document_id) <= 100),
    idempotency_key uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
    state           text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'sent', 'dead')),
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    CHECK ((state = 'sent') = (sent_at IS NOT NULL)),
    CHECK ((kind = 'document') = (code IS NULL)),
    CHECK (kind = 'status' OR document_id IS NOT NULL)
);
CREATE UNIQUE INDEX edxml_outgoing_document_key ON edxml_outgoing (document_id, recipient)
    WHERE kind = 'document';
CREATE INDEX edxml_outgoing_due_idx ON edxml_outgoing (next_attempt_at, id) WHERE state = 'queued';
CREATE INDEX edxml_outgoing_status_idx ON edxml_outgoing (status_id);
COMMENT ON TABLE edxml_outgoing IS
  'edXML packages to send over the axis (documents for external recipients, status packages): queued, sent, or dead after the last attempt';
SELECT pg_catalog.pg_extension_config_dump('edxml_outgoing', '');
SELECT pg_catalog.pg_extension_config_dump('edxml_outgoing_id_seq', '');
REVOKE ALL ON edxml_outgoing FROM PUBLIC;
GRANT SELECT ON edxml_outgoing TO ioffice_admin;

-- Issued: one package per recipient that is an agency code (DDD.DD.DD.LDD)
-- and no agency of this database (those get theirs by deliver_internal).
CREATE FUNCTION _edxml_queue_issued() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n int;
BEGIN
    INSERT INTO ioffice.edxml_outgoing (agency_id, document_id, recipient, kind)
    SELECT DISTINCT NEW.agency_id, NEW.id, e->>'place', 'document'
    FROM jsonb_array_elements(coalesce(NEW.recipients, '[]')) e
    WHERE e->>'place' ~ '^[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}$'
      AND NOT EXISTS (SELECT 1 FROM ioffice.unit u WHERE u.code = e->>'place' AND u.kind = 'agency')
    ON CONFLICT (document_id, recipient) WHERE kind = 'document' DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        PERFORM ioffice._wake_worker();
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER edxml_queue_issued AFTER UPDATE OF state ON document
    FOR EACH ROW WHEN (NEW.direction = 'outgoing' AND NEW.state = 'issued'
                       AND OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION _edxml_queue_issued();

-- The incoming workflow's steps answer the sender of a package from the
-- axis: registered 03, assigned 04 (in progress), finished 06, returned 02.
CREATE FUNCTION _edxml_answer_step() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_code text;
    v_text text;
BEGIN
    SELECT c.code, c.t INTO v_code, v_text
    FROM (VALUES ('registered', '03', 'Đã tiếp nhận, vào sổ'),
                 ('in_progress', '04', 'Đã phân công xử lý'),
                 ('processed', '06', 'Đã hoàn thành xử lý'),
                 ('returned', '02', 'Trả lại')) AS c(state, code, t)
    WHERE c.state = NEW.state;
    IF v_code IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO ioffice.edxml_status (document_id, party_organ_id, edxml_document_id, direction,
                                      code, description)
    SELECT NEW.id, r.sender_organ_id, r.edxml_document_id, 'sent', v_code, v_text
    FROM ioffice.edxml_received r WHERE r.document_id = NEW.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER edxml_answer_step AFTER UPDATE OF state ON document
    FOR EACH ROW WHEN (NEW.direction = 'incoming' AND OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION _edxml_answer_step();

-- A status recorded to send back is queued as a status package.
CREATE FUNCTION _edxml_queue_status() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO ioffice.edxml_outgoing (agency_id, document_id, recipient, kind, status_id, code,
                                        description, edxml_document_id)
    SELECT d.agency_id, NEW.document_id, NEW.party_organ_id, 'status', NEW.id, NEW.code,
           NEW.description, NEW.edxml_document_id
    FROM ioffice.document d WHERE d.id = NEW.document_id;
    PERFORM ioffice._wake_worker();
    RETURN NULL;
END
$$;
CREATE TRIGGER edxml_queue_status AFTER INSERT ON edxml_status
    FOR EACH ROW WHEN (NEW.direction = 'sent') EXECUTE FUNCTION _edxml_queue_status();

-- The status package of a queued row (EDXML.md "Status packages"): From,
-- ResponseFor (the document answered), StaffInfo, StatusCode, Description,
-- Timestamp.  Unsigned: the worker signs it.
CREATE FUNCTION _edxml_status_package(outgoing bigint) RETURNS xml
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o record;
    v_agency record;
    d record;
    v_ns constant text := 'http://www.mic.gov.vn/TBT/QCVN_102_2016';
BEGIN
    SELECT * INTO o FROM ioffice.edxml_outgoing WHERE id = outgoing AND kind = 'status';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no status package %', outgoing USING ERRCODE = '42704';
    END IF;
    SELECT u.code, u.name INTO v_agency FROM ioffice.unit u WHERE u.id = o.agency_id;
    SELECT x.sender_symbol, x.sender_date INTO d FROM ioffice.document x WHERE x.id = o.document_id;
    RETURN xmlelement(name "edXML", xmlattributes(v_ns AS xmlns),
        xmlelement(name "edXMLEnvelope",
            xmlelement(name "edXMLHeader",
                xmlelement(name "MessageHeader",
                    xmlelement(name "From",
                        xmlelement(name "OrganId", ioffice._edxml_limit('From/OrganId', v_agency.code, 13)),
                        xmlelement(name "OrganName", v_agency.name)),
                    xmlelement(name "ResponseFor",
                        xmlelement(name "OrganId", o.recipient),
                        xmlforest(d.sender_symbol AS "Code",
                                  ioffice._edxml_date(d.sender_date) AS "PromulgationDate"),
                        xmlelement(name "DocumentId", coalesce(o.edxml_document_id, ''))),
                    xmlelement(name "StaffInfo",
                        xmlelement(name "Department", v_agency.name)),
                    xmlelement(name "StatusCode", o.code),
                    xmlforest(o.description AS "Description"),
                    xmlelement(name "Timestamp",
                        to_char(now() AT TIME ZONE ioffice.timezone(), 'YYYY/MM/DD HH24:MI:SS'))),
                xmlelement(name "TraceHeaderList",
                    xmlelement(name "TraceHeader",
                        xmlelement(name "OrganId", v_agency.code),
                        xmlelement(name "Timestamp",
                            to_char(now() AT TIME ZONE ioffice.timezone(), 'YYYY/MM/DD HH24:MI:SS'))))),
            xmlelement(name "edXMLBody")));
END
$$;
REVOKE ALL ON FUNCTION _edxml_status_package(bigint) FROM PUBLIC;

-- What the worker files from the axis, as the system (no person): a
-- document package into the addressed agency's incoming queue (01 queued
-- back in the same transaction; a repeat gives the same document), a
-- status package onto the outgoing document it answers (a repeat recorded
-- once).  A package the helper could read but that is refused (addressed
-- to nobody here, signature, limits, duplicate) queues 02 with the reason
-- to its sender.  Returns {"result": "filed"|"status"|"refused", ...}.
CREATE FUNCTION _edxml_axis_file(package text, axis bigint) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_trust text;
    p jsonb;
    v_axis_agency bigint;
    v_agency bigint;
    v_id bigint;
    v_reason text;
    v_detail text;
BEGIN
    SELECT a.agency_id INTO v_axis_agency FROM ioffice.exchange_axis a WHERE a.id = axis;
    IF package IS NULL OR v_axis_agency IS NULL THEN
        RAISE EXCEPTION 'an edXML package and an axis are required' USING ERRCODE = '22023';
    END IF;
    SELECT string_agg(t.pem, E'\n' ORDER BY t.id) INTO v_trust FROM ioffice.trust_anchor t;
    p := ioffice._edxml_read(package, coalesce(v_trust, ''));
    IF p ? 'error' THEN
        -- not read at all: no sender to answer; the axis is told (fail)
        RETURN jsonb_build_object('result', 'refused',
                                  'reason', format('%s (field %s)', p->>'error', p->>'field'));
    END IF;
    BEGIN
        IF p->>'kind' = 'status' THEN
            IF p->'signature'->>'status' <> 'valid' THEN
                RAISE EXCEPTION 'edXML status package refused: its signature is %',
                    p->'signature'->>'status' USING ERRCODE = '42501';
            END IF;
            SELECT d.id INTO v_id FROM ioffice.document d
            JOIN ioffice.unit u ON u.id = d.agency_id
            WHERE d.identifier = p->'response_for'->>'document_id'
              AND u.code = p->'response_for'->>'organ_id' AND d.direction = 'outgoing';
            IF v_id IS NULL THEN
                RAISE EXCEPTION 'edXML status package refused: it answers no document of this database'
                    USING ERRCODE = '22023',
                          DETAIL = format('Field ResponseFor/DocumentId: %s.',
                                          pg_catalog.left(p->'response_for'->>'document_id', 60));
            END IF;
            PERFORM ioffice._engine_enter();
            INSERT INTO ioffice.edxml_status (document_id, party_organ_id, edxml_document_id,
                                              direction, code, description)
            SELECT v_id, p->'from'->>'organ_id', p->'response_for'->>'document_id', 'received',
                   p->>'status_code', pg_catalog.left(p->>'description', 2000)
            WHERE NOT EXISTS (
                SELECT 1 FROM ioffice.edxml_status s
                WHERE s.document_id = v_id AND s.direction = 'received'
                  AND s.party_organ_id = p->'from'->>'organ_id' AND s.code = p->>'status_code'
                  AND s.description IS NOT DISTINCT FROM pg_catalog.left(p->>'description', 2000));
            PERFORM ioffice._engine_leave();
            RETURN jsonb_build_object('result', 'status', 'document', v_id, 'code', p->>'status_code');
        END IF;
        SELECT u.id INTO v_agency
        FROM jsonb_array_elements(p->'to') WITH ORDINALITY AS t(e, o)
        JOIN ioffice.unit u ON u.code = t.e->>'organ_id' AND u.kind = 'agency'
        ORDER BY (u.id = v_axis_agency) DESC, t.o LIMIT 1;
        IF v_agency IS NULL THEN
            RAISE EXCEPTION 'edXML package refused: it is addressed to no agency of this database'
                USING ERRCODE = '22023';
        END IF;
        v_id := ioffice._edxml_file(p, package, v_agency, NULL);
        RETURN jsonb_build_object('result', 'filed', 'document', v_id);
    EXCEPTION WHEN sqlstate '22023' OR sqlstate '42501' OR sqlstate '23505' THEN
        GET STACKED DIAGNOSTICS v_reason = MESSAGE_TEXT, v_detail = PG_EXCEPTION_DETAIL;
    END;
    v_reason := pg_catalog.left(v_reason || coalesce(' ' || nullif(v_detail, ''), ''), 2000);
    IF p->>'kind' = 'document' AND p->'from'->>'organ_id' IS NOT NULL THEN
        INSERT INTO ioffice.edxml_outgoing (agency_id, recipient, kind, code, description,
                                            edxml_document_id)
        VALUES (v_axis_agency, p->'from'->>'organ_id', 'status', '02', v_reason,
                p->>'document_id');
    END IF;
    RETURN jsonb_build_object('result', 'refused', 'reason', v_reason);
END
$$;
REVOKE ALL ON FUNCTION _edxml_axis_file(text, bigint) FROM PUBLIC;

-- exchange_status, now with the packages sent: per document and external
-- party, the document package (code NULL) and the status packages, with
-- their delivery (queued, sent, dead) and its last error; received
-- statuses have delivery NULL.
CREATE OR REPLACE VIEW exchange_status AS
SELECT s.document_id AS document, s.party_organ_id AS party, s.edxml_document_id,
       s.direction, s.code, s.description, s.recorded_at, s.sent_at,
       CASE WHEN s.direction = 'sent' THEN 'status' END AS package,
       o.state AS delivery, o.last_error
FROM ioffice.edxml_status s
LEFT JOIN ioffice.edxml_outgoing o ON o.status_id = s.id
WHERE ioffice.can_see(s.document_id)
UNION ALL
SELECT o.document_id, o.recipient, d.identifier, 'sent', NULL, 'Văn bản điện tử', o.created_at,
       o.sent_at, 'document', o.state, o.last_error
FROM ioffice.edxml_outgoing o JOIN ioffice.document d ON d.id = o.document_id
WHERE o.kind = 'document' AND ioffice.can_see(o.document_id);
COMMENT ON VIEW exchange_status IS
  'edXML exchange per document and external agency: the document packages sent (code NULL) and the status codes (01 arrived, 02 refused, 03 registered, 04 assigned, 05 in progress, 06 finished, 13/15/16 recall) sent back and received, with times and delivery (queued, sent, dead); only documents the caller may see';

-- edxml_build() and _edxml_receive() through _edxml_package() and _edxml_file()
CREATE OR REPLACE FUNCTION edxml_build(doc bigint, recipient text) RETURNS xml
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me bigint := ioffice.actor();
    d record;
BEGIN
    PERFORM ioffice._require_document(doc);
    SELECT * INTO d FROM ioffice.document WHERE id = doc;
    IF NOT EXISTS (SELECT 1 FROM ioffice.person_role r
                   WHERE r.person_id = v_me AND r.role = 'clerk' AND r.unit_id = d.agency_id) THEN
        RAISE EXCEPTION 'only a clerk of the issuing agency builds its edXML packages'
            USING ERRCODE = '42501';
    END IF;
    IF recipient IS NULL OR recipient !~ '^[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}$' THEN
        RAISE EXCEPTION 'recipient "%" is not an agency code of the form DDD.DD.DD.LDD',
            pg_catalog.left(recipient, 60)
            USING ERRCODE = '22023',
                  HINT = 'QCVN 102:2016 agency identifiers (OrganId) look like 000.00.00.G22.';
    END IF;
    IF d.direction <> 'outgoing' OR d.issued_at IS NULL OR d.number IS NULL THEN
        RAISE EXCEPTION 'document % is not an issued outgoing document', doc
            USING ERRCODE = '55000';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM jsonb_array_elements(d.recipients) e
                   WHERE e->>'code' = recipient OR e->>'place' = recipient) THEN
        RAISE EXCEPTION 'agency % is not a recipient of document %', recipient, doc
            USING ERRCODE = '22023';
    END IF;
    RETURN ioffice._edxml_package(doc, recipient, v_me);
END
$$;

CREATE OR REPLACE FUNCTION _edxml_receive(package text) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me bigint := ioffice.actor();
    v_text text := package;
    v_trust text;
    p jsonb;
    v_agency bigint;
BEGIN
    IF package IS NULL THEN
        RAISE EXCEPTION 'an edXML package is required' USING ERRCODE = '22023';
    END IF;
    SELECT string_agg(t.pem, E'\n' ORDER BY t.id) INTO v_trust FROM ioffice.trust_anchor t;
    p := ioffice._edxml_read(v_text, coalesce(v_trust, ''));
    IF p ? 'error' THEN
        RAISE EXCEPTION 'edXML package refused: %', p->>'error'
            USING ERRCODE = '22023', DETAIL = format('Field %s.', p->>'field');
    END IF;
    -- the first addressee that is an agency of this database
    SELECT u.id INTO v_agency
    FROM jsonb_array_elements(p->'to') WITH ORDINALITY AS t(e, o)
    JOIN ioffice.unit u ON u.code = t.e->>'organ_id' AND u.kind = 'agency'
    ORDER BY t.o LIMIT 1;
    IF v_agency IS NULL THEN
        RAISE EXCEPTION 'edXML package refused: it is addressed to no agency of this database'
            USING ERRCODE = '22023',
                  DETAIL = format('Field To/OrganId: %s.',
                                  pg_catalog.left((SELECT string_agg(t.e->>'organ_id', ', ')
                                                   FROM jsonb_array_elements(p->'to') t(e)), 60));
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ioffice.person_role r
                   WHERE r.person_id = v_me AND r.role = 'clerk' AND r.unit_id = v_agency) THEN
        RAISE EXCEPTION 'only a clerk of the agency it is addressed to receives an edXML package'
            USING ERRCODE = '42501';
    END IF;
    RETURN ioffice._edxml_file(p, v_text, v_agency, v_me);
END
$$;

-- ==== review fixes ====
-- The export of a case file is a SECURITY INVOKER function (the caller's
-- row-level security decides its documents); it logs through this, which
-- writes only under the caller's own name, only an export it knows (the
-- XML, the table of contents as xlsx or csv), and
-- only of a case file the caller sees (as the policy of case_file says):
-- anyone may call it, and what it writes is never removed.
CREATE OR REPLACE FUNCTION _log_case_file_export(case_file bigint, detail text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF detail IS NULL OR detail NOT IN ('xml', 'xlsx', 'csv') THEN
        RAISE EXCEPTION 'unknown export "%" of a case file', pg_catalog.left(detail, 60)
            USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ioffice.case_file c
                    WHERE c.id = _log_case_file_export.case_file
                      AND (c.agency_id = ioffice._person_agency()
                           OR c.responsible_id = ioffice.current_person()
                           OR c.agency_id = ANY (ioffice._clerk_agencies()))) THEN
        RAISE EXCEPTION 'unknown case file %', _log_case_file_export.case_file
            USING ERRCODE = '42704';
    END IF;
    PERFORM ioffice._log_access('export', NULL, NULL, case_file, detail);
END
$$;

-- ==== edxml_fixes ====
-- _edxml_axis_file: a status package only from the agency the document was
-- sent to; the package's own data at fault (classes 22, 23) is a refusal.
CREATE OR REPLACE FUNCTION _edxml_axis_file(package text, axis bigint) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_trust text;
    p jsonb;
    v_axis_agency bigint;
    v_agency bigint;
    v_id bigint;
    v_reason text;
    v_detail text;
BEGIN
    SELECT a.agency_id INTO v_axis_agency FROM ioffice.exchange_axis a WHERE a.id = axis;
    IF package IS NULL OR v_axis_agency IS NULL THEN
        RAISE EXCEPTION 'an edXML package and an axis are required' USING ERRCODE = '22023';
    END IF;
    SELECT string_agg(t.pem, E'\n' ORDER BY t.id) INTO v_trust FROM ioffice.trust_anchor t;
    p := ioffice._edxml_read(package, coalesce(v_trust, ''));
    IF p ? 'error' THEN
        -- not read at all: no sender to answer; the axis is told (fail)
        RETURN jsonb_build_object('result', 'refused',
                                  'reason', format('%s (field %s)', p->>'error', p->>'field'));
    END IF;
    BEGIN
        IF p->>'kind' = 'status' THEN
            IF p->'signature'->>'status' <> 'valid' THEN
                RAISE EXCEPTION 'edXML status package refused: its signature is %',
                    p->'signature'->>'status' USING ERRCODE = '42501';
            END IF;
            SELECT d.id INTO v_id FROM ioffice.document d
            JOIN ioffice.unit u ON u.id = d.agency_id
            WHERE d.identifier = p->'response_for'->>'document_id'
              AND u.code = p->'response_for'->>'organ_id' AND d.direction = 'outgoing';
            IF v_id IS NULL THEN
                RAISE EXCEPTION 'edXML status package refused: it answers no document of this database'
                    USING ERRCODE = '22023',
                          DETAIL = format('Field ResponseFor/DocumentId: %s.',
                                          pg_catalog.left(p->'response_for'->>'document_id', 60));
            END IF;
            -- only an agency the document was addressed to answers it; in
            -- any state of the send: the axis may have taken a package
            -- whose answer the sender missed (a timeout), and the 01 of
            -- a row still queued must not be refused and lost
            IF NOT EXISTS (SELECT 1 FROM ioffice.edxml_outgoing o
                           WHERE o.document_id = v_id AND o.kind = 'document'
                             AND o.recipient = p->'from'->>'organ_id') THEN
                RAISE EXCEPTION 'edXML status package refused: the document was not sent to its sender'
                    USING ERRCODE = '42501',
                          DETAIL = format('Field From/OrganId: %s.',
                                          pg_catalog.left(p->'from'->>'organ_id', 60));
            END IF;
            PERFORM ioffice._engine_enter();
            INSERT INTO ioffice.edxml_status (document_id, party_organ_id, edxml_document_id,
                                              direction, code, description)
            SELECT v_id, p->'from'->>'organ_id', p->'response_for'->>'document_id', 'received',
                   p->>'status_code', pg_catalog.left(p->>'description', 2000)
            WHERE NOT EXISTS (
                SELECT 1 FROM ioffice.edxml_status s
                WHERE s.document_id = v_id AND s.direction = 'received'
                  AND s.party_organ_id = p->'from'->>'organ_id' AND s.code = p->>'status_code'
                  AND s.description IS NOT DISTINCT FROM pg_catalog.left(p->>'description', 2000));
            PERFORM ioffice._engine_leave();
            RETURN jsonb_build_object('result', 'status', 'document', v_id, 'code', p->>'status_code');
        END IF;
        SELECT u.id INTO v_agency
        FROM jsonb_array_elements(p->'to') WITH ORDINALITY AS t(e, o)
        JOIN ioffice.unit u ON u.code = t.e->>'organ_id' AND u.kind = 'agency'
        ORDER BY (u.id = v_axis_agency) DESC, t.o LIMIT 1;
        IF v_agency IS NULL THEN
            RAISE EXCEPTION 'edXML package refused: it is addressed to no agency of this database'
                USING ERRCODE = '22023';
        END IF;
        v_id := ioffice._edxml_file(p, package, v_agency, NULL);
        RETURN jsonb_build_object('result', 'filed', 'document', v_id);
    -- the package's own data at fault (classes 22 and 23: a bad value or
    -- cast, a constraint) is a refusal, not an error retried at every poll
    EXCEPTION WHEN data_exception OR integrity_constraint_violation OR insufficient_privilege THEN
        GET STACKED DIAGNOSTICS v_reason = MESSAGE_TEXT, v_detail = PG_EXCEPTION_DETAIL;
    END;
    v_reason := pg_catalog.left(v_reason || coalesce(' ' || nullif(v_detail, ''), ''), 2000);
    -- answered when the 02 can be addressed (recipient, DocumentId that fit)
    IF p->>'kind' = 'document' AND length(p->'from'->>'organ_id') BETWEEN 1 AND 13
       AND coalesce(length(p->>'document_id'), 0) <= 100 THEN
        INSERT INTO ioffice.edxml_outgoing (agency_id, recipient, kind, code, description,
                                            edxml_document_id)
        VALUES (v_axis_agency, p->'from'->>'organ_id', 'status', '02', v_reason,
                p->>'document_id');
    END IF;
    RETURN jsonb_build_object('result', 'refused', 'reason', v_reason);
END
$$;

-- ==== bench_search ====
-- search() at a province's scale (tests/bench/search): a person's
-- documents' rows by an index, vectors kept in the row, the caller's
-- visibility applied before ranking, each statement planned for its values
CREATE INDEX search_text_document_idx ON search_text (document_id);
ALTER TABLE search_text ALTER COLUMN words SET STORAGE MAIN;
CREATE OR REPLACE FUNCTION search(query text, filters jsonb DEFAULT '{}', "limit" int DEFAULT 100)
RETURNS TABLE(document bigint, rank real, snippet text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
    v_me bigint := ioffice.current_person();
    v_reader boolean := ioffice._search_outer_is_reader();
    v_agencies bigint[] := ioffice._clerk_agencies();
    v_tasks bigint[];
    v_any tsquery;
    v_exact tsquery;
    f record;
BEGIN
    f := ioffice._search_filters(filters);
    IF search."limit" IS NULL OR search."limit" < 1 OR search."limit" > 10000 THEN
        RAISE EXCEPTION 'search limit must be between 1 and 10000' USING ERRCODE = '22023';
    END IF;
    -- a query is a few words: websearch_to_tsquery() recurses over what it
    -- is given, and a page of text would end in "stack depth limit exceeded"
    IF length(query) > 2000 THEN
        RAISE EXCEPTION 'search query is too long'
            USING ERRCODE = '22023',
                  DETAIL = format('A query has at most 2000 characters; this one has %s.', length(query)),
                  HINT = 'Search for a few words of the text, and narrow with filters.';
    END IF;
    IF v_me IS NULL AND NOT v_reader THEN
        RETURN;
    END IF;
    v_tasks := CASE WHEN v_me IS NULL THEN '{}' ELSE ioffice._task_documents() END;
    v_any := websearch_to_tsquery('ioffice.search_vi'::regconfig, translate(coalesce(query, ''), '/', ' '));
    IF numnode(v_any) = 0 THEN
        IF filters IS NULL OR filters = '{}' THEN
            RAISE EXCEPTION 'search needs words to find, or a filter'
                USING ERRCODE = '22023';
        END IF;
        RETURN QUERY
        SELECT d.id, 0::real, d.abstract
        FROM ioffice.document d
        WHERE (d.drafter_id = v_me OR d.agency_id = ANY (v_agencies) OR d.id = ANY (v_tasks)
               OR (v_reader AND d.confidentiality = 'normal'
                   AND (d.register_id IS NULL
                        OR d.register_id IN (SELECT r.id FROM ioffice.register r WHERE NOT r.confidential))))
          AND (f.agency IS NULL OR d.agency_id = f.agency)
          AND (f.doc_type IS NULL OR d.doc_type = f.doc_type)
          AND (f.register IS NULL OR d.register_id = f.register)
          AND (f.state IS NULL OR d.state = f.state)
          AND (f.signer IS NULL OR d.signer_id = f.signer)
          AND (f.direction IS NULL OR d.direction = f.direction)
          AND (f.issued_from IS NULL OR coalesce(d.issued_on, d.sender_date) >= f.issued_from)
          AND (f.issued_to IS NULL OR coalesce(d.issued_on, d.sender_date) <= f.issued_to)
          AND (f.created_from IS NULL OR (d.created_at AT TIME ZONE ioffice.timezone())::date >= f.created_from)
          AND (f.created_to IS NULL OR (d.created_at AT TIME ZONE ioffice.timezone())::date <= f.created_to)
        ORDER BY d.id DESC
        LIMIT search."limit";
        RETURN;
    END IF;
    v_exact := websearch_to_tsquery('ioffice.search_vi_exact'::regconfig, translate(query, '/', ' '));
    RETURN QUERY
    WITH hit AS (
        SELECT s.document_id, s.file_id, s.body,
               (s.words @@ v_exact)::int + ts_rank(s.words, v_any, 32) AS r
        FROM ioffice.search_text s JOIN ioffice.document d ON d.id = s.document_id
        WHERE s.words @@ v_any
          AND (d.drafter_id = v_me OR d.agency_id = ANY (v_agencies) OR d.id = ANY (v_tasks)
               OR (v_reader AND d.confidentiality = 'normal'
                   AND (d.register_id IS NULL
                        OR d.register_id IN (SELECT r.id FROM ioffice.register r WHERE NOT r.confidential))))
          AND (f.agency IS NULL OR d.agency_id = f.agency)
          AND (f.doc_type IS NULL OR d.doc_type = f.doc_type)
          AND (f.register IS NULL OR d.register_id = f.register)
          AND (f.state IS NULL OR d.state = f.state)
          AND (f.signer IS NULL OR d.signer_id = f.signer)
          AND (f.direction IS NULL OR d.direction = f.direction)
          AND (f.issued_from IS NULL OR coalesce(d.issued_on, d.sender_date) >= f.issued_from)
          AND (f.issued_to IS NULL OR coalesce(d.issued_on, d.sender_date) <= f.issued_to)
          AND (f.created_from IS NULL OR (d.created_at AT TIME ZONE ioffice.timezone())::date >= f.created_from)
          AND (f.created_to IS NULL OR (d.created_at AT TIME ZONE ioffice.timezone())::date <= f.created_to)
    ), best AS (
        SELECT DISTINCT ON (h.document_id) h.document_id, h.body, h.r
        FROM hit h
        ORDER BY h.document_id, h.r DESC, h.file_id NULLS FIRST
    ), found AS (
        SELECT b.document_id, b.body, b.r
        FROM best b
        ORDER BY b.r DESC, b.document_id DESC
        LIMIT search."limit"
    )
    -- (the snippet from the first 64 kB of a file's text: ts_headline
    -- parses all it is given, and a page of results has up to "limit")
    SELECT x.document_id, x.r::real,
           ts_headline('ioffice.search_vi'::regconfig, left(x.body, 65536), v_any,
                       'StartSel=«, StopSel=», MaxWords=30, MinWords=12, ShortWord=0, '
                       'MaxFragments=2, FragmentDelimiter=" … "')
    FROM found x
    ORDER BY x.r DESC, x.document_id DESC;
END
$$;

-- ==== recall ====

-- ---------------------------------------------------------------------------
-- Recalling an issued document (Decree 30 art. 18.4; Appendix VI, III.8;
-- issue 14 item 5) and the status 05 (in progress).
--
-- The sender: recall(doc, reason) freezes the outgoing document (III.8a:
-- its row no longer changes at all; its files were frozen at issue) and
-- tells every recipient: an agency of this database directly (its received
-- copy is asked, as a recall package would ask it), an external one by a
-- recall package (BussinessDocType 1, BussinessDocReason, the same
-- DocumentId) queued to the axis as the document package was.
--
-- The receiver: the received copy is marked as recall-requested (status 13
-- recorded for it); its clerk answers with answer_recall(): accepted, the
-- copy's files are destroyed (III.8b, art. 18.4b: "hủy bỏ văn bản điện tử
-- bị thu hồi") and it is marked recalled, 15 goes back; refused, with a
-- reason, 16 goes back.  A recall of a document never received here is
-- answered 16 at once, with that reason: 16 is the standard's answer to a
-- recall (the sender waits for 15 or 16 on its recall), and the document
-- it names is not refused (02 answers a package whose document we refuse
-- to file; this one was never filed, nor sent to us as far as we know).
--
-- How a received copy is destroyed, with files frozen by triggers: a file's
-- bytes never change (extension/files.c, _file_frozen), except in one
-- narrow path, is_recall_erasure(): an UPDATE that empties the content and
-- sets erased_at, of a file of an incoming document marked recalled whose
-- recall row (document_recall, written by the engine alone) says accepted.
-- Only _recall_destroy() takes it, from answer_recall().  The record stays
-- (III.8c): the document's row (number, sender, dates, abstract), each
-- file's name, hash and size, the recall (reason, who asked and answered,
-- when) and the audit trail of each step (recall sent, recall received,
-- accepted or refused, answers received back).
-- ---------------------------------------------------------------------------

ALTER TABLE document ADD COLUMN recalled_at timestamptz;
COMMENT ON COLUMN document.recalled_at IS
  'When the document was recalled: an outgoing one by recall() (it no longer changes), a received copy when its clerk accepted the sender''s recall (its files destroyed)';
ALTER TABLE file ADD COLUMN erased_at timestamptz;
COMMENT ON COLUMN file.erased_at IS
  'When the file''s bytes were destroyed because its received document was recalled (the recall accepted); name, hash and size stay as the record';

-- One row per recall: 'sent' for an outgoing document recalled here;
-- 'received' for a recall asked of a received copy (document_id NULL: a
-- recall of a document never received here), from an external sender
-- (party, edxml_document_id: a package received twice is handled once) or
-- from an agency of this database (source_recall_id, the sender's row).
CREATE TABLE document_recall (
    id               bigserial PRIMARY KEY,
    direction        text NOT NULL CHECK (direction IN ('sent', 'received')),
    document_id      bigint REFERENCES document,
    agency_id        bigint NOT NULL REFERENCES unit,
    party            text CHECK (length(party) BETWEEN 1 AND 13),
    edxml_document_id text CHECK (length(edxml_document_id) BETWEEN 1 AND 100),
    -- no foreign key to this table (see unit.parent_id: a data-only dump
    -- of a self-referencing table warns): only recall() writes it
    source_recall_id bigint,
    reason           text NOT NULL CHECK (length(reason) BETWEEN 1 AND 2000),
    requested_at     timestamptz NOT NULL DEFAULT now(),
    requested_by     bigint REFERENCES person,
    answer           text CHECK (answer IN ('accepted', 'refused')),
    answer_reason    text CHECK (length(answer_reason) <= 2000),
    answered_at      timestamptz,
    answered_by      bigint REFERENCES person,
    CHECK ((answer IS NULL) = (answered_at IS NULL)),
    CHECK (direction = 'received' OR (answer IS NULL AND document_id IS NOT NULL)),
    CHECK (answer IS DISTINCT FROM 'refused' OR answer_reason IS NOT NULL)
);
CREATE UNIQUE INDEX document_recall_sent_key ON document_recall (document_id)
    WHERE direction = 'sent';
CREATE UNIQUE INDEX document_recall_received_key ON document_recall (document_id)
    WHERE direction = 'received' AND document_id IS NOT NULL;
CREATE UNIQUE INDEX document_recall_package_key ON document_recall (agency_id, party, edxml_document_id)
    WHERE direction = 'received' AND party IS NOT NULL;
CREATE INDEX document_recall_source_idx ON document_recall (source_recall_id);
COMMENT ON TABLE document_recall IS
  'Recalls (Decree 30 art. 18.4): of outgoing documents issued here (sent), and asked of received copies (received) with their answer (accepted: files destroyed, 15; refused with a reason, 16)';
SELECT pg_catalog.pg_extension_config_dump('document_recall', '');
SELECT pg_catalog.pg_extension_config_dump('document_recall_id_seq', '');
REVOKE ALL ON document_recall FROM PUBLIC;
GRANT SELECT ON document_recall TO ioffice_admin;

-- recall packages go to the axis as document packages do
ALTER TABLE edxml_outgoing DROP CONSTRAINT edxml_outgoing_kind_check;
ALTER TABLE edxml_outgoing ADD CONSTRAINT edxml_outgoing_kind_check
    CHECK (kind IN ('document', 'status', 'recall'));
ALTER TABLE edxml_outgoing DROP CONSTRAINT edxml_outgoing_check1;
ALTER TABLE edxml_outgoing ADD CONSTRAINT edxml_outgoing_check1
    CHECK ((kind = 'status') = (code IS NOT NULL));
CREATE UNIQUE INDEX edxml_outgoing_recall_key ON edxml_outgoing (document_id, recipient)
    WHERE kind = 'recall';
COMMENT ON COLUMN edxml_outgoing.kind IS
  'document: the package of an issued document; recall: its recall package (BussinessDocType 1, the reason in description); status: a status package (code)';

-- A recalled document's row no longer changes, whoever writes it (III.8a:
-- the outgoing document and its metadata frozen; a received copy recalled
-- is a record of what was destroyed).
CREATE FUNCTION _document_recalled() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF ioffice._restoring_dump() THEN
        RETURN NEW;
    END IF;
    IF (to_jsonb(NEW) - 'updated_at') IS DISTINCT FROM (to_jsonb(OLD) - 'updated_at') THEN
        RAISE EXCEPTION 'document % was recalled: it can no longer change', OLD.id
            USING ERRCODE = '55000',
                  DETAIL = 'A recalled document and its metadata are frozen (Decree 30, Appendix VI, III.8).';
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION _document_recalled() FROM PUBLIC;
CREATE TRIGGER recalled_frozen BEFORE UPDATE ON document
    FOR EACH ROW WHEN (OLD.recalled_at IS NOT NULL) EXECUTE FUNCTION _document_recalled();

-- The edXML package of an issued document for one external recipient, of
-- business type business (0 new, 1 recall; EDXML.md): a recall carries the
-- document's header and DocumentId, its reason in BussinessDocReason, and
-- no attachment.
CREATE FUNCTION _edxml_package(doc bigint, recipient text, clerk bigint, business int,
                               reason text) RETURNS xml
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me bigint := clerk;
    d record;
    v_agency record;
    v_parent text;
    v_to_name text;
    v_clerk record;
    v_number text;
    v_notation text;
    v_priority text;
    v_files xml;
    v_manifest xml;
    v_places xml;
    v_ns constant text := 'http://www.mic.gov.vn/TBT/QCVN_102_2016';
BEGIN
    IF business IS NULL OR business NOT IN (0, 1) THEN
        RAISE EXCEPTION 'BussinessDocType % is not built here', business USING ERRCODE = '22023';
    END IF;
    SELECT * INTO d FROM ioffice.document WHERE id = doc;
    IF d.direction IS DISTINCT FROM 'outgoing' OR d.issued_at IS NULL OR d.number IS NULL THEN
        RAISE EXCEPTION 'document % is not an issued outgoing document', doc
            USING ERRCODE = '55000';
    END IF;
    SELECT u.code, u.name, u.parent_id INTO v_agency FROM ioffice.unit u WHERE u.id = d.agency_id;
    IF v_agency.code IS NULL THEN
        RAISE EXCEPTION 'edXML field From/OrganId: the issuing agency has no agency code'
            USING ERRCODE = '22023',
                  HINT = 'Give the agency its QCVN 102:2016 code (unit.code).';
    END IF;
    SELECT a.name INTO v_parent FROM ioffice.unit a
    WHERE a.id = (SELECT p.agency_id FROM ioffice.unit p WHERE p.id = v_agency.parent_id);
    SELECT u.name INTO v_to_name FROM ioffice.unit u WHERE u.code = recipient AND u.kind = 'agency';
    SELECT p.full_name, p.phone, p.email, un.name AS unit_name INTO v_clerk
    FROM ioffice.person p JOIN ioffice.unit un ON un.id = p.unit_id WHERE p.id = v_me;
    -- the identifier's "number/notation" (01/UBND-VP): the number as it
    -- writes it, and the notation after it
    v_number := split_part(split_part(d.identifier, ',', 3), '/', 1);
    v_notation := substr(split_part(d.identifier, ',', 3), length(v_number) + 2);
    v_priority := CASE d.urgency WHEN 'normal' THEN '0' WHEN 'urgent' THEN '1'
                                 WHEN 'very_urgent' THEN '2' WHEN 'flash' THEN '3'
                                 ELSE '4' END;

    PERFORM ioffice._edxml_limit('From/OrganId', v_agency.code, 13),
            ioffice._edxml_limit('To/OrganId', recipient, 13),
            ioffice._edxml_limit('Code/CodeNumber', v_number, 11),
            ioffice._edxml_limit('Code/CodeNotation', v_notation, 30),
            ioffice._edxml_limit('Subject', d.abstract, 500),
            ioffice._edxml_limit('DocumentId', d.identifier, 100);

    SELECT xmlagg(xmlelement(name "Reference",
                      xmlelement(name "ContentId", 'cid:' || f.n),
                      xmlelement(name "ContentType", f.content_type),
                      xmlelement(name "Description", f.name),
                      xmlelement(name "AttachmentName", f.name)) ORDER BY f.n),
           xmlagg(xmlelement(name "Attachment",
                      xmlelement(name "ContentId", 'cid:' || f.n),
                      xmlelement(name "AttachmentName", f.name),
                      xmlelement(name "Description", f.name),
                      xmlelement(name "ContentType", f.content_type),
                      xmlelement(name "ContentTransferEncoded", encode(f.content, 'base64')))
                  ORDER BY f.n)
      INTO v_manifest, v_files
    FROM (SELECT row_number() OVER (ORDER BY fl.id) AS n, fl.name, fl.content,
                 CASE fl.kind WHEN 'pdf' THEN 'application/pdf'
                      WHEN 'docx' THEN 'application/vnd.openxmlformats-officedocument.wordprocessingml.document'
                      WHEN 'xlsx' THEN 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet'
                      WHEN 'doc' THEN 'application/msword'
                      WHEN 'xls' THEN 'application/vnd.ms-excel'
                      WHEN 'zip' THEN 'application/zip'
                      ELSE 'application/octet-stream' END AS content_type
          FROM ioffice.file fl
          WHERE fl.document_id = doc AND fl.superseded_at IS NULL AND fl.removed_at IS NULL
            AND business = 0) f;

    SELECT xmlagg(xmlelement(name "Place", coalesce(e->>'name', e->>'place')) ORDER BY o)
      INTO v_places
    FROM jsonb_array_elements(d.recipients) WITH ORDINALITY AS r(e, o);

    RETURN xmlelement(name "edXML", xmlattributes(v_ns AS xmlns),
        xmlelement(name "edXMLEnvelope",
            xmlelement(name "edXMLHeader",
                xmlelement(name "MessageHeader",
                    xmlelement(name "From",
                        xmlelement(name "OrganId", v_agency.code),
                        xmlelement(name "OrganizationInCharge", coalesce(v_parent, v_agency.name)),
                        xmlelement(name "OrganName", v_agency.name)),
                    xmlelement(name "To",
                        xmlelement(name "OrganId", recipient),
                        xmlforest(v_to_name AS "OrganName")),
                    xmlelement(name "Code",
                        xmlelement(name "CodeNumber", v_number),
                        xmlelement(name "CodeNotation", v_notation)),
                    xmlelement(name "PromulgationInfo",
                        xmlelement(name "Place", v_agency.name),
                        xmlelement(name "PromulgationDate", ioffice._edxml_date(d.issued_on))),
                    xmlelement(name "DocumentType",
                        xmlelement(name "Type", '1'),
                        xmlelement(name "TypeName", coalesce(d.doc_type_name, d.doc_type))),
                    xmlelement(name "Subject", d.abstract),
                    xmlelement(name "Content", d.abstract),
                    xmlelement(name "SignerInfo",
                        xmlforest((SELECT p.position FROM ioffice.person p WHERE p.id = d.signer_id)
                                      AS "Position",
                                  d.signer_name AS "FullName")),
                    xmlforest(ioffice._edxml_date(d.due_date) AS "DueDate"),
                    xmlelement(name "ToPlaces", v_places),
                    xmlelement(name "OtherInfo",
                        xmlelement(name "Priority", v_priority),
                        xmlforest(d.copies AS "PromulgationAmount", d.page_count AS "PageAmount")),
                    xmlelement(name "SteeringType", '1'),
                    xmlelement(name "DocumentId", d.identifier)),
                xmlelement(name "TraceHeaderList",
                    xmlelement(name "TraceHeader",
                        xmlelement(name "OrganId", v_agency.code),
                        xmlelement(name "Timestamp",
                            to_char(now() AT TIME ZONE ioffice.timezone(), 'YYYY/MM/DD HH24:MI:SS'))),
                    xmlelement(name "Bussiness",
                        xmlelement(name "DocumentId", d.identifier),
                        xmlelement(name "BussinessDocType", business::text),
                        xmlelement(name "BussinessDocReason",
                                   CASE WHEN business = 0 THEN 'Văn bản điện tử mới'
                                        ELSE pg_catalog.left(reason, 2000) END),
                        xmlelement(name "Paper", '0'),
                        xmlelement(name "StaffInfo",
                            xmlforest(v_clerk.unit_name AS "Department", v_clerk.full_name AS "Staff",
                                      v_clerk.email AS "Email", v_clerk.phone AS "Mobile"))))),
            xmlelement(name "edXMLBody",
                xmlelement(name "edXMLManifest", xmlattributes('1.0' AS version), v_manifest))),
        xmlelement(name "AttachmentEncoded", v_files));
END
$$;
REVOKE ALL ON FUNCTION _edxml_package(bigint, text, bigint, int, text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION _edxml_package(doc bigint, recipient text, clerk bigint) RETURNS xml
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ SELECT ioffice._edxml_package(doc, recipient, clerk, 0, NULL) $$;

-- Recalls an issued outgoing document (Decree 30 art. 18.4): the issuing
-- agency's clerk, its signer, or a leader of the agency, with a reason.
-- The document is frozen (trigger recalled_frozen; its files are frozen
-- since it was issued, a final state); each received copy in this database
-- is asked as a recall package would ask it; each external recipient the
-- document package went to (or was queued for: one not sent yet is not
-- sent any more) gets a recall package.  The audit trail records it.
CREATE FUNCTION recall(doc bigint, reason text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me bigint := ioffice.actor();
    v_reason text := btrim(recall.reason);
    d record;
    v_recall bigint;
    v_copy record;
    v_external int;
    v_internal int := 0;
BEGIN
    PERFORM ioffice._require_document(doc);
    SELECT * INTO d FROM ioffice.document WHERE id = doc FOR UPDATE;
    IF NOT (d.signer_id IS NOT DISTINCT FROM v_me
            OR EXISTS (SELECT 1 FROM ioffice.person_role r
                       WHERE r.person_id = v_me AND r.unit_id = d.agency_id
                         AND r.role IN ('clerk', 'leader', 'deputy'))) THEN
        RAISE EXCEPTION 'only a clerk or a leader of the issuing agency, or the signer, recalls document %', doc
            USING ERRCODE = '42501';
    END IF;
    IF v_reason IS NULL OR v_reason = '' THEN
        RAISE EXCEPTION 'a recall needs its reason' USING ERRCODE = '22023';
    END IF;
    IF length(v_reason) > 2000 THEN
        RAISE EXCEPTION 'the reason of a recall has at most 2000 characters' USING ERRCODE = '22023';
    END IF;
    IF d.direction <> 'outgoing' OR d.issued_at IS NULL OR d.number IS NULL THEN
        RAISE EXCEPTION 'document % is not an issued outgoing document', doc
            USING ERRCODE = '55000';
    END IF;
    IF d.recalled_at IS NOT NULL THEN
        RAISE EXCEPTION 'document % was recalled already', doc USING ERRCODE = '55000';
    END IF;

    PERFORM ioffice._engine_enter();
    UPDATE ioffice.document SET recalled_at = now(), updated_at = now() WHERE id = doc;
    INSERT INTO ioffice.document_recall (direction, document_id, agency_id, reason, requested_by)
    VALUES ('sent', doc, d.agency_id, v_reason, v_me)
    RETURNING id INTO v_recall;
    -- recipients in this database: their copies asked directly
    FOR v_copy IN SELECT c.id, c.agency_id FROM ioffice.document c
                  WHERE c.source_document_id = doc AND c.direction = 'incoming' ORDER BY c.id LOOP
        INSERT INTO ioffice.document_recall (direction, document_id, agency_id, source_recall_id,
                                             reason)
        VALUES ('received', v_copy.id, v_copy.agency_id, v_recall, v_reason);
        PERFORM ioffice._audit('document', v_copy.id, 'recall_received', NULL, NULL,
                               jsonb_build_object('from_document', doc, 'reason', v_reason));
        v_internal := v_internal + 1;
    END LOOP;
    -- a document package not sent yet is sent no more; the recall goes to
    -- every external recipient all the same (one whose delivery failed may
    -- have had it: it answers 16 if it has nothing)
    UPDATE ioffice.edxml_outgoing SET state = 'dead', last_error = 'recalled before it was sent'
    WHERE document_id = doc AND kind = 'document' AND state = 'queued';
    INSERT INTO ioffice.edxml_outgoing (agency_id, document_id, recipient, kind, description,
                                        edxml_document_id)
    SELECT d.agency_id, doc, o.recipient, 'recall', v_reason, d.identifier
    FROM ioffice.edxml_outgoing o
    WHERE o.document_id = doc AND o.kind = 'document'
    ON CONFLICT (document_id, recipient) WHERE kind = 'recall' DO NOTHING;
    GET DIAGNOSTICS v_external = ROW_COUNT;
    PERFORM ioffice._audit('document', doc, 'recall', d.state, d.state,
                           jsonb_build_object('reason', v_reason, 'internal', v_internal,
                                              'external', v_external));
    PERFORM ioffice._engine_leave();
    IF v_external > 0 THEN
        PERFORM ioffice._wake_worker();
    END IF;
END
$$;
COMMENT ON FUNCTION recall(bigint, text) IS
  'Recalls an issued outgoing document (Decree 30 art. 18.4), with its reason: freezes it and tells its recipients (copies in this database directly, external agencies by a recall package); for its agency''s clerks and leaders and its signer';
REVOKE ALL ON FUNCTION recall(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION recall(bigint, text) TO ioffice_app, ioffice_admin;

-- A received copy's files destroyed, its row marked recalled, its open
-- tasks closed: answer_recall()'s acceptance, after the recall row says
-- accepted (the one path extension/files.c lets empty a file's bytes).
CREATE FUNCTION _recall_destroy(doc bigint, actor bigint) RETURNS int
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n int;
BEGIN
    UPDATE ioffice.document SET recalled_at = now(), updated_at = now()
    WHERE id = doc AND direction = 'incoming' AND recalled_at IS NULL;
    UPDATE ioffice.file SET content = '\x'::bytea, erased_at = now(),
           removed_at = coalesce(removed_at, now()), removed_by = coalesce(removed_by, actor)
    WHERE document_id = doc AND erased_at IS NULL;
    GET DIAGNOSTICS n = ROW_COUNT;
    DELETE FROM ioffice.search_text t USING ioffice.file f
    WHERE f.document_id = doc AND t.file_id = f.id;
    UPDATE ioffice.task SET status = 'done', processed_at = now(), processed_by = actor,
           closed_by_action = 'recalled'
    WHERE document_id = doc AND status = 'open';
    RETURN n;
END
$$;
REVOKE ALL ON FUNCTION _recall_destroy(bigint, bigint) FROM PUBLIC;

-- The receiving clerk's answer to the sender's recall of a received copy:
-- accept (the copy's files destroyed, the copy marked recalled; 15 back)
-- or refuse with a reason (16 back).  For a copy from the axis the status
-- package is queued; for a copy from an agency of this database the
-- sender's side reads the answer in recall_status.
CREATE FUNCTION answer_recall(doc bigint, accept boolean, reason text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me bigint := ioffice.actor();
    v_reason text := nullif(btrim(answer_recall.reason), '');
    d record;
    r record;
    v_files int := 0;
    v_source bigint;
BEGIN
    PERFORM ioffice._require_document(doc);
    SELECT * INTO d FROM ioffice.document WHERE id = doc FOR UPDATE;
    IF NOT EXISTS (SELECT 1 FROM ioffice.person_role p
                   WHERE p.person_id = v_me AND p.role = 'clerk' AND p.unit_id = d.agency_id) THEN
        RAISE EXCEPTION 'only a clerk of the receiving agency answers the recall of document %', doc
            USING ERRCODE = '42501';
    END IF;
    IF accept IS NULL THEN
        RAISE EXCEPTION 'accept or refuse: accept must be true or false' USING ERRCODE = '22023';
    END IF;
    IF NOT accept AND v_reason IS NULL THEN
        RAISE EXCEPTION 'a recall is refused with a reason' USING ERRCODE = '22023';
    END IF;
    IF length(v_reason) > 2000 THEN
        RAISE EXCEPTION 'the reason has at most 2000 characters' USING ERRCODE = '22023';
    END IF;
    SELECT * INTO r FROM ioffice.document_recall x
    WHERE x.document_id = doc AND x.direction = 'received' FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'document % has no recall to answer', doc USING ERRCODE = '55000';
    END IF;
    IF r.answer IS NOT NULL THEN
        RAISE EXCEPTION 'the recall of document % was answered already (%)', doc, r.answer
            USING ERRCODE = '55000';
    END IF;

    PERFORM ioffice._engine_enter();
    UPDATE ioffice.document_recall
    SET answer = CASE WHEN accept THEN 'accepted' ELSE 'refused' END, answer_reason = v_reason,
        answered_at = now(), answered_by = v_me
    WHERE id = r.id;
    IF accept THEN
        v_files := ioffice._recall_destroy(doc, v_me);
    END IF;
    -- the sender of a package from the axis is answered 15 or 16
    INSERT INTO ioffice.edxml_status (document_id, party_organ_id, edxml_document_id, direction,
                                      code, description)
    SELECT doc, r.party, r.edxml_document_id, 'sent', CASE WHEN accept THEN '15' ELSE '16' END,
           coalesce(v_reason, CASE WHEN accept THEN 'Đồng ý thu hồi, đã hủy văn bản'
                                   ELSE 'Từ chối thu hồi' END)
    WHERE r.party IS NOT NULL;
    PERFORM ioffice._audit('document', doc, CASE WHEN accept THEN 'recall_accept' ELSE 'recall_refuse' END,
                           d.state, d.state,
                           jsonb_build_object('reason', v_reason, 'files_destroyed', v_files,
                                              'recall_reason', r.reason));
    -- a sender in this database: its document's trail records the answer
    SELECT s.document_id INTO v_source FROM ioffice.document_recall s WHERE s.id = r.source_recall_id;
    IF v_source IS NOT NULL THEN
        PERFORM ioffice._audit('document', v_source,
                               CASE WHEN accept THEN 'recall_accepted' ELSE 'recall_refused' END,
                               NULL, NULL,
                               jsonb_build_object('recipient', d.agency_id, 'copy', doc,
                                                  'reason', v_reason));
    END IF;
    PERFORM ioffice._engine_leave();
END
$$;
COMMENT ON FUNCTION answer_recall(bigint, boolean, text) IS
  'The receiving clerk''s answer to the sender''s recall of a received document: accept (its files are destroyed, it is marked recalled; status 15 back) or refuse with a reason (status 16 back)';
REVOKE ALL ON FUNCTION answer_recall(bigint, boolean, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION answer_recall(bigint, boolean, text) TO ioffice_app, ioffice_admin;

-- A recall package (BussinessDocType 1) read and verified, for the agency
-- it is addressed to: the copy received from that sender under that
-- DocumentId is marked recall-requested, 13 recorded for it, for its clerk
-- to answer; none received: answered 16 at once.  Twice: handled once (the
-- row's key).  Returns the received copy, or NULL.
CREATE FUNCTION _edxml_file_recall(p jsonb, package text, agency bigint, actor bigint) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_sender text := p->'from'->>'organ_id';
    v_docid text := p->>'document_id';
    v_reason text := pg_catalog.left(coalesce(nullif(btrim(p->>'bussiness_doc_reason'), ''),
                                              'Thu hồi văn bản'), 2000);
    v_doc bigint;
    v_key bigint;
BEGIN
    SELECT r.document_id INTO v_doc FROM ioffice.edxml_received r
    WHERE r.agency_id = agency AND r.sender_organ_id = v_sender AND r.edxml_document_id = v_docid;
    PERFORM ioffice._engine_enter();
    INSERT INTO ioffice.document_recall (direction, document_id, agency_id, party,
                                         edxml_document_id, reason, answer, answer_reason,
                                         answered_at)
    VALUES ('received', v_doc, agency, v_sender, v_docid, v_reason,
            CASE WHEN v_doc IS NULL THEN 'refused' END,
            CASE WHEN v_doc IS NULL THEN 'Không nhận được văn bản này: không có gì để thu hồi' END,
            CASE WHEN v_doc IS NULL THEN now() END)
    ON CONFLICT DO NOTHING
    RETURNING id INTO v_key;
    IF v_key IS NULL THEN
        PERFORM ioffice._engine_leave();
        RETURN v_doc;
    END IF;
    IF v_doc IS NULL THEN
        INSERT INTO ioffice.edxml_outgoing (agency_id, recipient, kind, code, description,
                                            edxml_document_id)
        VALUES (agency, v_sender, 'status', '16',
                'Không nhận được văn bản này: không có gì để thu hồi', v_docid);
        PERFORM ioffice._wake_worker();
    ELSE
        INSERT INTO ioffice.edxml_status (document_id, party_organ_id, edxml_document_id,
                                          direction, code, description)
        VALUES (v_doc, v_sender, v_docid, 'received', '13', v_reason);
        PERFORM ioffice._audit('document', v_doc, 'recall_received', NULL, NULL,
                               jsonb_build_object('sender', v_sender, 'document_id', v_docid,
                                                  'reason', v_reason,
                                                  'signer', p->'signature'->>'subject'));
    END IF;
    PERFORM ioffice._engine_leave();
    RETURN v_doc;
END
$$;
REVOKE ALL ON FUNCTION _edxml_file_recall(jsonb, text, bigint, bigint) FROM PUBLIC;

-- _edxml_file, now with recall packages (BussinessDocType 1) handled;
-- update (2) and replace (3) are still refused.
CREATE OR REPLACE FUNCTION _edxml_file(p jsonb, package text, agency bigint, actor bigint) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me bigint := actor;
    v_text text := package;
    v_agency bigint := agency;
    v_sender text;
    v_docid text;
    v_key bigint;
    v_id bigint;
    v_doc_type text;
    v_urgency text;
    v_pages int;
    v_files int;
BEGIN
    IF p->'signature'->>'status' <> 'valid' THEN
        RAISE EXCEPTION 'edXML package refused: its signature is %', p->'signature'->>'status'
            USING ERRCODE = '42501', DETAIL = p->'signature'->>'reason';
    END IF;
    IF p->>'bussiness_doc_type' = '1' THEN
        RETURN ioffice._edxml_file_recall(p, v_text, v_agency, v_me);
    END IF;
    IF coalesce(p->>'bussiness_doc_type', '0') <> '0' THEN
        RAISE EXCEPTION 'edXML package refused: BussinessDocType % (update, replace) is not handled yet',
            p->>'bussiness_doc_type'
            USING ERRCODE = '22023', DETAIL = 'Field TraceHeaderList/Bussiness/BussinessDocType.';
    END IF;
    IF jsonb_array_length(p->'attachments') = 0 THEN
        RAISE EXCEPTION 'edXML package refused: it carries no attachment'
            USING ERRCODE = '22023', DETAIL = 'Field AttachmentEncoded.';
    END IF;
    v_sender := p->'from'->>'organ_id';
    v_docid := p->>'document_id';

    PERFORM ioffice._engine_enter();
    -- the key first: a concurrent caller with the same package waits here
    INSERT INTO ioffice.edxml_received (agency_id, sender_organ_id, edxml_document_id,
                                        package_sha256, signer_subject, received_by)
    VALUES (v_agency, v_sender, v_docid, sha256(convert_to(v_text, 'UTF8')),
            p->'signature'->>'subject', v_me)
    ON CONFLICT (agency_id, sender_organ_id, edxml_document_id) DO NOTHING
    RETURNING id INTO v_key;
    IF v_key IS NULL THEN
        SELECT r.document_id INTO v_id FROM ioffice.edxml_received r
        WHERE r.agency_id = v_agency AND r.sender_organ_id = v_sender
          AND r.edxml_document_id = v_docid;
        PERFORM ioffice._engine_leave();
        RETURN v_id;
    END IF;

    -- the same document (sender, number and symbol, year) under another
    -- DocumentId, or registered from paper already: Decree 30's duplicate
    SELECT d.id INTO v_id FROM ioffice.document d
    WHERE d.direction = 'incoming' AND d.agency_id = v_agency AND d.sender_agency_id IS NULL
      AND d.sender_name = pg_catalog.left(coalesce(p->'from'->>'organ_name', v_sender), 500)
      AND d.sender_symbol = pg_catalog.left((p->>'code_number') || '/' || (p->>'code_notation'), 100)
      AND d.sender_year = extract(year FROM to_date(p->>'promulgation_date', 'YYYY/MM/DD'));
    IF FOUND THEN
        RAISE EXCEPTION 'edXML package refused: document %/% of % was received already',
            p->>'code_number', p->>'code_notation', pg_catalog.left(v_sender, 60)
            USING ERRCODE = '23505',
                  DETAIL = format('Incoming document %s; this package''s DocumentId is %s.',
                                  v_id, pg_catalog.left(v_docid, 100));
    END IF;
    SELECT t.code INTO v_doc_type FROM ioffice.doc_type t WHERE t.name = p->>'type_name';
    v_urgency := CASE p->>'priority' WHEN '1' THEN 'urgent' WHEN '2' THEN 'very_urgent'
                                     WHEN '3' THEN 'flash' WHEN '4' THEN 'flash'
                                     ELSE 'normal' END;
    v_pages := CASE WHEN (p->>'page_amount')::bigint BETWEEN 1 AND 100000
                    THEN (p->>'page_amount')::int END;
    INSERT INTO ioffice.document (workflow, direction, doc_type, abstract, state, urgency,
                                  agency_id, drafting_unit_id, page_count, due_date,
                                  sender_name, sender_symbol, sender_date, received_at, signer_name)
    VALUES ('incoming', 'incoming', coalesce(v_doc_type, 'CV'), p->>'subject',
            (SELECT s.state FROM ioffice.workflow_state s
             WHERE s.workflow = 'incoming' AND s.initial ORDER BY s.state LIMIT 1),
            v_urgency, v_agency, v_agency, v_pages,
            to_date(p->>'due_date', 'YYYY/MM/DD'),
            pg_catalog.left(coalesce(p->'from'->>'organ_name', v_sender), 500),
            pg_catalog.left((p->>'code_number') || '/' || (p->>'code_notation'), 100),
            to_date(p->>'promulgation_date', 'YYYY/MM/DD'), now(),
            pg_catalog.left(p->>'signer_name', 200))
    RETURNING id INTO v_id;
    INSERT INTO ioffice.file (document_id, name, kind, size, sha256, content, uploaded_by)
    SELECT v_id,
           pg_catalog.left(coalesce(a->>'name', a->>'description', a->>'content_id'), 255),
           coalesce(ioffice.file_kind(c.content), 'other'), octet_length(c.content),
           sha256(c.content), c.content, v_me
    FROM jsonb_array_elements(p->'attachments') WITH ORDINALITY AS x(a, o),
         LATERAL (SELECT decode(a->>'data', 'base64') AS content) c
    ORDER BY x.o;
    GET DIAGNOSTICS v_files = ROW_COUNT;
    UPDATE ioffice.edxml_received SET document_id = v_id WHERE id = v_key;
    INSERT INTO ioffice.edxml_status (document_id, party_organ_id, edxml_document_id, direction,
                                      code, description)
    VALUES (v_id, v_sender, v_docid, 'sent', '01', 'Đã đến');
    PERFORM ioffice._audit('document', v_id, 'edxml_receive', NULL, 'received',
                           jsonb_build_object('sender', v_sender, 'document_id', v_docid,
                                              'files', v_files,
                                              'signer', p->'signature'->>'subject'));
    PERFORM ioffice._engine_leave();
    RETURN v_id;
END
$$;

-- A recall's answer received back from an external recipient (15, 16)
-- goes on the recalled document's audit trail.
CREATE FUNCTION _edxml_recall_answered() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM ioffice._audit('document', NEW.document_id,
                           CASE NEW.code WHEN '15' THEN 'recall_accepted' ELSE 'recall_refused' END,
                           NULL, NULL,
                           jsonb_build_object('recipient', NEW.party_organ_id,
                                              'reason', NEW.description));
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION _edxml_recall_answered() FROM PUBLIC;
CREATE TRIGGER edxml_recall_answered AFTER INSERT ON edxml_status
    FOR EACH ROW WHEN (NEW.direction = 'received' AND NEW.code IN ('15', '16'))
    EXECUTE FUNCTION _edxml_recall_answered();

-- Status 05 (in progress), once: at the first step taken on the document
-- once it is in progress.  The leader's assignment moves it to in_progress
-- and answers 04 (assigned); the first act of its handlers there (a
-- cooperating unit's "cooperated", the lead's "complete", or a DBA's rule
-- from in_progress) is the first evidence that it is being handled.  Named
-- to fire before edxml_answer_step: a "complete" answers 05, then 06.
CREATE FUNCTION _edxml_answer_progress() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO ioffice.edxml_status (document_id, party_organ_id, edxml_document_id, direction,
                                      code, description)
    SELECT NEW.id, r.sender_organ_id, r.edxml_document_id, 'sent', '05', 'Đang xử lý'
    FROM ioffice.edxml_received r
    WHERE r.document_id = NEW.id
      AND NOT EXISTS (SELECT 1 FROM ioffice.edxml_status s
                      WHERE s.document_id = NEW.id AND s.direction = 'sent' AND s.code = '05'
                        AND s.party_organ_id = r.sender_organ_id);
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION _edxml_answer_progress() FROM PUBLIC;
CREATE TRIGGER edxml_answer_progress AFTER UPDATE OF state ON document
    FOR EACH ROW WHEN (NEW.direction = 'incoming' AND OLD.state = 'in_progress')
    EXECUTE FUNCTION _edxml_answer_progress();

-- exchange_status, now with recall packages (code 13, the reason in
-- description, package 'recall').
CREATE OR REPLACE VIEW exchange_status AS
SELECT s.document_id AS document, s.party_organ_id AS party, s.edxml_document_id,
       s.direction, s.code, s.description, s.recorded_at, s.sent_at,
       CASE WHEN s.direction = 'sent' THEN 'status' END AS package,
       o.state AS delivery, o.last_error
FROM ioffice.edxml_status s
LEFT JOIN ioffice.edxml_outgoing o ON o.status_id = s.id
WHERE ioffice.can_see(s.document_id)
UNION ALL
SELECT o.document_id, o.recipient, d.identifier, 'sent',
       CASE o.kind WHEN 'recall' THEN '13' END,
       CASE o.kind WHEN 'recall' THEN o.description ELSE 'Văn bản điện tử' END, o.created_at,
       o.sent_at, o.kind, o.state, o.last_error
FROM ioffice.edxml_outgoing o JOIN ioffice.document d ON d.id = o.document_id
WHERE o.kind IN ('document', 'recall') AND ioffice.can_see(o.document_id);
COMMENT ON VIEW exchange_status IS
  'edXML exchange per document and external agency: the document packages sent (code NULL), recall packages (13, with the reason) and the status codes (01 arrived, 02 refused, 03 registered, 04 assigned, 05 in progress, 06 finished, 13 recall asked, 15 recall accepted, 16 refused) sent back and received, with times and delivery (queued, sent, dead); only documents the caller may see';

-- What the clerk sees of recalls, for the documents the caller may see:
-- an outgoing document recalled, one row per recipient (an agency of this
-- database by its copy's answer; an external one by the 15 or 16 it sent
-- back: answer NULL while none came); a received copy asked to be
-- recalled, one row with its answer (NULL: pending, for its clerk).
CREATE VIEW recall_status AS
SELECT s.document_id AS document, 'sent'::text AS direction, u.name AS recipient,
       NULL::text AS party, c.document_id AS copy, s.reason, s.requested_at,
       c.answer, c.answer_reason, c.answered_at
FROM ioffice.document_recall s
JOIN ioffice.document_recall c ON c.source_recall_id = s.id
JOIN ioffice.unit u ON u.id = c.agency_id
WHERE s.direction = 'sent' AND ioffice.can_see(s.document_id)
UNION ALL
SELECT s.document_id, 'sent', coalesce(u.name, o.recipient), o.recipient, NULL, s.reason,
       s.requested_at,
       CASE a.code WHEN '15' THEN 'accepted' WHEN '16' THEN 'refused' END,
       a.description, a.recorded_at
FROM ioffice.document_recall s
JOIN ioffice.edxml_outgoing o ON o.document_id = s.document_id AND o.kind = 'recall'
LEFT JOIN ioffice.unit u ON u.code = o.recipient AND u.kind = 'agency'
LEFT JOIN LATERAL (SELECT x.code, x.description, x.recorded_at FROM ioffice.edxml_status x
                   WHERE x.document_id = s.document_id AND x.direction = 'received'
                     AND x.party_organ_id = o.recipient AND x.code IN ('15', '16')
                     AND x.recorded_at >= s.requested_at
                   ORDER BY x.id DESC LIMIT 1) a ON true
WHERE s.direction = 'sent' AND ioffice.can_see(s.document_id)
UNION ALL
SELECT r.document_id, 'received', NULL, r.party, NULL, r.reason, r.requested_at,
       r.answer, r.answer_reason, r.answered_at
FROM ioffice.document_recall r
WHERE r.direction = 'received' AND r.document_id IS NOT NULL AND ioffice.can_see(r.document_id);
COMMENT ON VIEW recall_status IS
  'Recalls (Decree 30 art. 18.4) of the documents the caller may see: an outgoing document recalled, per recipient with its answer (accepted, refused with the reason; NULL while pending); a received document asked to be recalled, with its answer';
REVOKE ALL ON recall_status FROM PUBLIC;
GRANT SELECT ON recall_status TO ioffice_app, ioffice_admin, ioffice_reader;

COMMENT ON FUNCTION edxml_receive(xml) IS
  'Files a received edXML package (signature verified against the trust anchors) into the addressed agency''s incoming queue and records the status 01 to send back; the same package twice gives the same document. A recall package (BussinessDocType 1) marks the copy received under its DocumentId as recall-requested (13) for answer_recall() and gives its id (NULL, answered 16 at once: never received here)';

-- ==== casefile_exports ====
-- search: the text of doc and xls files too (LibreOffice in the worker's
-- text helper); those already attached are queued
DROP TRIGGER search_extraction ON file;
CREATE TRIGGER search_extraction AFTER INSERT ON file
    FOR EACH ROW WHEN (NEW.kind IN ('pdf', 'docx', 'xlsx', 'doc', 'xls') AND NEW.superseded_at IS NULL AND NEW.removed_at IS NULL)
    EXECUTE FUNCTION _search_file();
INSERT INTO search_extraction (file_id, document_id)
SELECT f.id, f.document_id FROM file f
 WHERE f.kind IN ('doc', 'xls') AND f.superseded_at IS NULL AND f.removed_at IS NULL
ON CONFLICT DO NOTHING;
-- search_export: docx and pdf, and the access log
COMMENT ON FUNCTION search_export(text, jsonb, text, int) IS
  'The results of search() as a file: xlsx (Excel workbook), csv (UTF-8 with BOM, CRLF), docx (Word) or pdf, with number and symbol, date, type, abstract, issuer, direction, state and snippet; only what search() shows the caller; each document in it recorded in the access log';
COMMENT ON COLUMN access_log.action IS
  'view (document_detail), trail (trail), download (file_content), copy (file_copy: the marked copy), export (trail_export, case_file_xml, case_file_pdf_result, search_export: detail search:<format>)';
-- ---------------------------------------------------------------------------
-- A case file as one PDF (Decree 30, Appendix VI, III.4g): a first part with
-- the file's heading and its table of contents (mục lục văn bản trong hồ
-- sơ: running number, number and symbol, date, author, subject, pages),
-- then every document's PDF in the order the documents arose.  Made by the
-- signing worker (workers/case_file_pdf_jobs.c) with the PDF helper, which
-- alone reads and writes PDFs (helpers/ioffice_pdf book): a backend never
-- parses nor merges one, and a large file does not hold a session.
--
-- Who: a person who sees the case file (its policy: their agency's, one they
-- are responsible for, or an agency whose clerk they are).  Which
-- documents: those the requester may see (can_see), as case_file_xml() and
-- the views case_file_contents and case_file_list give them; the others are
-- left out without a word or a count, since the row-level security of case
-- files is made so that nobody learns of a document they may not see by a
-- file's contents nor by its counts.  The list is taken at the request, as
-- the requester saw it; the worker only reads those files.
--
-- A document's PDF: its current PDF files (a Word or Excel file converted
-- for signing is replaced by its PDF, which is then current); one without
-- any is listed with "Không có bản PDF".  The book is a copy (bản sao): the
-- documents' signature values are not carried into it (the helper drops
-- them), and its first page says so.
-- ---------------------------------------------------------------------------
CREATE TABLE case_file_pdf_job (
    id            bigserial PRIMARY KEY,
    case_file_id  bigint NOT NULL REFERENCES case_file,
    requested_by  bigint NOT NULL REFERENCES person,
    requested_at  timestamptz NOT NULL DEFAULT now(),
    -- the heading lines and the rows of the table of contents, with the
    -- ids of each row's PDF files, as the requester saw them
    contents      jsonb NOT NULL,
    done_at       timestamptz,
    error         text,
    toc_pages     int,
    page_count    int,
    content       bytea,
    CHECK (done_at IS NOT NULL OR (error IS NULL AND content IS NULL)),
    CHECK (error IS NULL OR content IS NULL)
);
ALTER TABLE case_file_pdf_job ALTER COLUMN content SET STORAGE EXTERNAL;
CREATE INDEX case_file_pdf_job_queue_idx ON case_file_pdf_job (id) WHERE done_at IS NULL;
CREATE INDEX case_file_pdf_job_requester_idx ON case_file_pdf_job (requested_by);
COMMENT ON TABLE case_file_pdf_job IS
  'Case files exported as one PDF (table of contents, then the documents'' PDFs) by the worker: queued, done, or failed with the reason';
REVOKE ALL ON case_file_pdf_job FROM PUBLIC;
-- a person reads the state of their own requests; the PDF through case_file_pdf_result()
ALTER TABLE case_file_pdf_job ENABLE ROW LEVEL SECURITY;
CREATE POLICY visible ON case_file_pdf_job FOR SELECT
    USING (requested_by = (SELECT ioffice.current_person()) OR (SELECT ioffice.is_admin()));
GRANT SELECT (id, case_file_id, requested_by, requested_at, done_at, error, toc_pages, page_count)
    ON case_file_pdf_job TO PUBLIC;

-- text for one field of the helper's spec: no tab, no line break
CREATE FUNCTION _pdf_spec_text(t text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$ SELECT regexp_replace(coalesce(t, ''), '[\t\r\n]+', ' ', 'g') $$;
REVOKE ALL ON FUNCTION _pdf_spec_text(text) FROM PUBLIC;

CREATE FUNCTION case_file_pdf(case_file bigint) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor bigint := ioffice.actor();
    v_cf ioffice.case_file;
    v_heads jsonb;
    v_rows jsonb;
    v_id bigint;
BEGIN
    IF case_file_pdf.case_file IS NULL THEN
        RAISE EXCEPTION 'case_file_pdf needs a case file' USING ERRCODE = '22023';
    END IF;
    SELECT c.* INTO v_cf FROM ioffice.case_file c
     WHERE c.id = case_file_pdf.case_file
       AND (c.agency_id = ioffice._person_agency()
            OR c.responsible_id = v_actor
            OR c.agency_id = ANY (ioffice._clerk_agencies()));
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown case file %', case_file_pdf.case_file USING ERRCODE = '42704';
    END IF;
    SELECT jsonb_build_array(
             jsonb_build_array('title', 'MỤC LỤC VĂN BẢN TRONG HỒ SƠ'),
             jsonb_build_array('line', 'Hồ sơ số: ' || v_cf.code),
             jsonb_build_array('title', v_cf.title),
             jsonb_build_array('line', 'Thời hạn bảo quản: ' || v_cf.retention
                                       || ' — Người lập hồ sơ: ' || p.full_name),
             jsonb_build_array('line', 'Thời gian: từ ngày ' || to_char(v_cf.opened_on, 'DD/MM/YYYY')
                                       || coalesce(' đến ngày ' || to_char(v_cf.closed_on, 'DD/MM/YYYY'), '')),
             jsonb_build_array('line', 'BẢN SAO do ' || me.full_name || ' lập ngày '
                                       || to_char((now() AT TIME ZONE ioffice.timezone())::date, 'DD/MM/YYYY')
                                       || ', gồm các văn bản người lập được xem. Chữ ký số của văn bản '
                                       || 'không còn trong bản sao; bản gốc có chữ ký số lưu trong hệ thống.'))
      INTO v_heads
      FROM ioffice.person p, ioffice.person me
     WHERE p.id = v_cf.responsible_id AND me.id = v_actor;
    -- case_file_contents is read as this function's owner: can_see() is the
    -- requester's row-level security
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'ordinal', v.ordinal,
               'symbol', v.symbol,
               'date', to_char(v.document_date, 'DD/MM/YYYY'),
               'organ', v.organ_name,
               -- the type's name and the abstract (tên loại và trích yếu), the
               -- name once when the abstract begins with it
               'subject', CASE WHEN lower(v.subject) LIKE lower(v.type_name) || '%' THEN v.subject
                               ELSE concat_ws(' ', v.type_name, v.subject) END,
               'files', (SELECT coalesce(jsonb_agg(f.id ORDER BY f.id), '[]')
                           FROM ioffice.file f
                          WHERE f.document_id = v.document_id AND f.kind = 'pdf'
                            AND f.superseded_at IS NULL AND f.removed_at IS NULL))
             ORDER BY v.arose_on, v.number, v.ordinal), '[]')
      INTO v_rows
      FROM ioffice.case_file_contents v
     WHERE v.case_file_id = v_cf.id AND ioffice.can_see(v.document_id);
    INSERT INTO ioffice.case_file_pdf_job (case_file_id, requested_by, contents)
    VALUES (v_cf.id, v_actor, jsonb_build_object('heads', v_heads, 'rows', v_rows))
    RETURNING id INTO v_id;
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION case_file_pdf(bigint) IS
  'Asks the worker for a case file as one PDF (its table of contents, then its documents'' PDFs in the order they arose, those the caller may see); returns the job, whose PDF case_file_pdf_result() gives';

-- The worker's input for a job: the helper's spec (helpers/ioffice_pdf book)
-- and the files, in order.
CREATE FUNCTION _case_file_pdf_spec(job bigint) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT string_agg(line, E'\n' ORDER BY part, n) || E'\n'
      FROM (SELECT 1 AS part, h.n, ioffice._pdf_spec_text(h.v->>0) || E'\t' || ioffice._pdf_spec_text(h.v->>1) AS line
              FROM ioffice.case_file_pdf_job j,
                   jsonb_array_elements(j.contents->'heads') WITH ORDINALITY h(v, n)
             WHERE j.id = _case_file_pdf_spec.job
            UNION ALL
            SELECT 2, c.n, c.line
              FROM (VALUES (1, E'col\t5\t1\tSố TT'), (2, E'col\t14\t1\tSố, ký hiệu văn bản'),
                           (3, E'col\t11\t1\tNgày tháng văn bản'), (4, E'col\t17\t0\tTác giả văn bản'),
                           (5, E'col\t35\t0\tTên loại và trích yếu nội dung văn bản'),
                           (6, E'pages\t9\tTrang số'), (7, E'nopdf\tKhông có bản PDF'),
                           (8, E'unreadable\tBản PDF không đọc được')) c(n, line)
            UNION ALL
            SELECT 3, r.n, concat_ws(E'\t', 'doc', jsonb_array_length(r.v->'files'), r.v->>'ordinal',
                                     ioffice._pdf_spec_text(r.v->>'symbol'), ioffice._pdf_spec_text(r.v->>'date'),
                                     ioffice._pdf_spec_text(r.v->>'organ'),
                                     ioffice._pdf_spec_text(r.v->>'subject'))
              FROM ioffice.case_file_pdf_job j,
                   jsonb_array_elements(j.contents->'rows') WITH ORDINALITY r(v, n)
             WHERE j.id = _case_file_pdf_spec.job) s
$$;
REVOKE ALL ON FUNCTION _case_file_pdf_spec(bigint) FROM PUBLIC;

CREATE FUNCTION _case_file_pdf_files(job bigint) RETURNS TABLE (file bigint, content bytea)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT f.id, f.content
      FROM ioffice.case_file_pdf_job j,
           jsonb_array_elements(j.contents->'rows') WITH ORDINALITY r(v, n),
           jsonb_array_elements_text(r.v->'files') WITH ORDINALITY x(id, m)
      JOIN ioffice.file f ON f.id = x.id::bigint
     WHERE j.id = _case_file_pdf_files.job
     ORDER BY r.n, x.m
$$;
REVOKE ALL ON FUNCTION _case_file_pdf_files(bigint) FROM PUBLIC;

-- The worker's answer: the PDF and its pages, or why there is none.
CREATE FUNCTION _case_file_pdf_done(job bigint, pdf bytea, toc_pages int, page_count int, error text)
RETURNS void
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE ioffice.case_file_pdf_job j
       SET done_at = now(), content = _case_file_pdf_done.pdf, error = _case_file_pdf_done.error,
           toc_pages = _case_file_pdf_done.toc_pages, page_count = _case_file_pdf_done.page_count
     WHERE j.id = _case_file_pdf_done.job AND j.done_at IS NULL
$$;
REVOKE ALL ON FUNCTION _case_file_pdf_done(bigint, bytea, int, int, text) FROM PUBLIC;

-- The PDF of a request of the caller's, once the worker made it; recorded
-- in the access log as an export of the case file.
CREATE FUNCTION case_file_pdf_result(job bigint) RETURNS bytea
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor bigint := ioffice.actor();
    v_job ioffice.case_file_pdf_job;
BEGIN
    IF case_file_pdf_result.job IS NULL THEN
        RAISE EXCEPTION 'case_file_pdf_result needs a job' USING ERRCODE = '22023';
    END IF;
    SELECT * INTO v_job FROM ioffice.case_file_pdf_job j
     WHERE j.id = case_file_pdf_result.job AND j.requested_by = v_actor;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown case file PDF %', case_file_pdf_result.job USING ERRCODE = '42704';
    END IF;
    IF v_job.done_at IS NULL THEN
        RAISE EXCEPTION 'the PDF of case file % is not made yet', v_job.case_file_id
            USING ERRCODE = '55000', HINT = 'The worker makes it; try again later.';
    END IF;
    IF v_job.error IS NOT NULL THEN
        RAISE EXCEPTION 'the PDF of case file % could not be made', v_job.case_file_id
            USING ERRCODE = '55000', DETAIL = v_job.error;
    END IF;
    PERFORM ioffice._log_access('export', NULL, NULL, v_job.case_file_id, 'pdf');
    RETURN v_job.content;
END
$$;
COMMENT ON FUNCTION case_file_pdf_result(bigint) IS
  'The PDF of a case file asked for with case_file_pdf(), to the person who asked, once the worker made it (55000 before, or with the reason it failed); recorded in the access log';

-- ==== edxml_speed ====
-- _edxml_package gains inline_files (DEFAULT true): the worker builds a
-- package with its attachments empty and the edXML helper fills them.
DROP FUNCTION _edxml_package(bigint, text, bigint, int, text);
-- The package of an issued document for one external recipient, for
-- edxml_build() (a clerk's call: StaffInfo is the clerk) and for the worker
-- (clerk NULL: the system sends it).  Unsigned.  Of business type business
-- (0 new, 1 recall; EDXML.md): a recall carries the document's header and
-- DocumentId, its reason in BussinessDocReason, and no attachment.
-- inline_files false (the worker): each ContentTransferEncoded is left
-- empty, for the edXML helper to fill with the base64 of the file (SQL's
-- base64 and XML escaping of a large text cost more than the package).
CREATE FUNCTION _edxml_package(doc bigint, recipient text, clerk bigint, business int,
                               reason text, inline_files boolean DEFAULT true) RETURNS xml
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me bigint := clerk;
    d record;
    v_agency record;
    v_parent text;
    v_to_name text;
    v_clerk record;
    v_number text;
    v_notation text;
    v_priority text;
    v_files xml;
    v_manifest xml;
    v_places xml;
    v_ns constant text := 'http://www.mic.gov.vn/TBT/QCVN_102_2016';
BEGIN
    IF business IS NULL OR business NOT IN (0, 1) THEN
        RAISE EXCEPTION 'BussinessDocType % is not built here', business USING ERRCODE = '22023';
    END IF;
    SELECT * INTO d FROM ioffice.document WHERE id = doc;
    IF d.direction IS DISTINCT FROM 'outgoing' OR d.issued_at IS NULL OR d.number IS NULL THEN
        RAISE EXCEPTION 'document % is not an issued outgoing document', doc
            USING ERRCODE = '55000';
    END IF;
    SELECT u.code, u.name, u.parent_id INTO v_agency FROM ioffice.unit u WHERE u.id = d.agency_id;
    IF v_agency.code IS NULL THEN
        RAISE EXCEPTION 'edXML field From/OrganId: the issuing agency has no agency code'
            USING ERRCODE = '22023',
                  HINT = 'Give the agency its QCVN 102:2016 code (unit.code).';
    END IF;
    SELECT a.name INTO v_parent FROM ioffice.unit a
    WHERE a.id = (SELECT p.agency_id FROM ioffice.unit p WHERE p.id = v_agency.parent_id);
    SELECT u.name INTO v_to_name FROM ioffice.unit u WHERE u.code = recipient AND u.kind = 'agency';
    SELECT p.full_name, p.phone, p.email, un.name AS unit_name INTO v_clerk
    FROM ioffice.person p JOIN ioffice.unit un ON un.id = p.unit_id WHERE p.id = v_me;
    -- the identifier's "number/notation" (01/UBND-VP): the number as it
    -- writes it, and the notation after it
    v_number := split_part(split_part(d.identifier, ',', 3), '/', 1);
    v_notation := substr(split_part(d.identifier, ',', 3), length(v_number) + 2);
    v_priority := CASE d.urgency WHEN 'normal' THEN '0' WHEN 'urgent' THEN '1'
                                 WHEN 'very_urgent' THEN '2' WHEN 'flash' THEN '3'
                                 ELSE '4' END;

    PERFORM ioffice._edxml_limit('From/OrganId', v_agency.code, 13),
            ioffice._edxml_limit('To/OrganId', recipient, 13),
            ioffice._edxml_limit('Code/CodeNumber', v_number, 11),
            ioffice._edxml_limit('Code/CodeNotation', v_notation, 30),
            ioffice._edxml_limit('Subject', d.abstract, 500),
            ioffice._edxml_limit('DocumentId', d.identifier, 100);

    SELECT xmlagg(xmlelement(name "Reference",
                      xmlelement(name "ContentId", 'cid:' || f.n),
                      xmlelement(name "ContentType", f.content_type),
                      xmlelement(name "Description", f.name),
                      xmlelement(name "AttachmentName", f.name)) ORDER BY f.n),
           xmlagg(xmlelement(name "Attachment",
                      xmlelement(name "ContentId", 'cid:' || f.n),
                      xmlelement(name "AttachmentName", f.name),
                      xmlelement(name "Description", f.name),
                      xmlelement(name "ContentType", f.content_type),
                      xmlelement(name "ContentTransferEncoded",
                                 CASE WHEN inline_files THEN encode(f.content, 'base64') ELSE '' END))
                  ORDER BY f.n)
      INTO v_manifest, v_files
    FROM (SELECT row_number() OVER (ORDER BY fl.id) AS n, fl.name, fl.content,
                 CASE fl.kind WHEN 'pdf' THEN 'application/pdf'
                      WHEN 'docx' THEN 'application/vnd.openxmlformats-officedocument.wordprocessingml.document'
                      WHEN 'xlsx' THEN 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet'
                      WHEN 'doc' THEN 'application/msword'
                      WHEN 'xls' THEN 'application/vnd.ms-excel'
                      WHEN 'zip' THEN 'application/zip'
                      ELSE 'application/octet-stream' END AS content_type
          FROM ioffice.file fl
          WHERE fl.document_id = doc AND fl.superseded_at IS NULL AND fl.removed_at IS NULL
            AND business = 0) f;

    SELECT xmlagg(xmlelement(name "Place", coalesce(e->>'name', e->>'place')) ORDER BY o)
      INTO v_places
    FROM jsonb_array_elements(d.recipients) WITH ORDINALITY AS r(e, o);

    RETURN xmlelement(name "edXML", xmlattributes(v_ns AS xmlns),
        xmlelement(name "edXMLEnvelope",
            xmlelement(name "edXMLHeader",
                xmlelement(name "MessageHeader",
                    xmlelement(name "From",
                        xmlelement(name "OrganId", v_agency.code),
                        xmlelement(name "OrganizationInCharge", coalesce(v_parent, v_agency.name)),
                        xmlelement(name "OrganName", v_agency.name)),
                    xmlelement(name "To",
                        xmlelement(name "OrganId", recipient),
                        xmlforest(v_to_name AS "OrganName")),
                    xmlelement(name "Code",
                        xmlelement(name "CodeNumber", v_number),
                        xmlelement(name "CodeNotation", v_notation)),
                    xmlelement(name "PromulgationInfo",
                        xmlelement(name "Place", v_agency.name),
                        xmlelement(name "PromulgationDate", ioffice._edxml_date(d.issued_on))),
                    xmlelement(name "DocumentType",
                        xmlelement(name "Type", '1'),
                        xmlelement(name "TypeName", coalesce(d.doc_type_name, d.doc_type))),
                    xmlelement(name "Subject", d.abstract),
                    xmlelement(name "Content", d.abstract),
                    xmlelement(name "SignerInfo",
                        xmlforest((SELECT p.position FROM ioffice.person p WHERE p.id = d.signer_id)
                                      AS "Position",
                                  d.signer_name AS "FullName")),
                    xmlforest(ioffice._edxml_date(d.due_date) AS "DueDate"),
                    xmlelement(name "ToPlaces", v_places),
                    xmlelement(name "OtherInfo",
                        xmlelement(name "Priority", v_priority),
                        xmlforest(d.copies AS "PromulgationAmount", d.page_count AS "PageAmount")),
                    xmlelement(name "SteeringType", '1'),
                    xmlelement(name "DocumentId", d.identifier)),
                xmlelement(name "TraceHeaderList",
                    xmlelement(name "TraceHeader",
                        xmlelement(name "OrganId", v_agency.code),
                        xmlelement(name "Timestamp",
                            to_char(now() AT TIME ZONE ioffice.timezone(), 'YYYY/MM/DD HH24:MI:SS'))),
                    xmlelement(name "Bussiness",
                        xmlelement(name "DocumentId", d.identifier),
                        xmlelement(name "BussinessDocType", business::text),
                        xmlelement(name "BussinessDocReason",
                                   CASE WHEN business = 0 THEN 'Văn bản điện tử mới'
                                        ELSE pg_catalog.left(reason, 2000) END),
                        xmlelement(name "Paper", '0'),
                        xmlelement(name "StaffInfo",
                            xmlforest(v_clerk.unit_name AS "Department", v_clerk.full_name AS "Staff",
                                      v_clerk.email AS "Email", v_clerk.phone AS "Mobile"))))),
            xmlelement(name "edXMLBody",
                xmlelement(name "edXMLManifest", xmlattributes('1.0' AS version), v_manifest))),
        xmlelement(name "AttachmentEncoded", v_files));
END
$$;
REVOKE ALL ON FUNCTION _edxml_package(bigint, text, bigint, int, text, boolean) FROM PUBLIC;


-- ==== search_scale ====
-- search() at a million documents: who may find each row (search_text.keys,
-- kept by triggers) in the text index beside the words, small rows with the
-- texts out of line, and the ranking bounded to the newest candidates when
-- a query matches too many.  The rows are written again once (their keys),
-- which also moves their texts out of line.
-- Who may find a document, as the keys of its search rows: 'd:<document>'
-- (the people of its tasks, who search() knows by the documents' ids),
-- 'a:<agency>' (its agency's clerks, and the admins), 'p:<person>' (its
-- drafter), and 'r' when the reporting tools (ioffice_reader) may read it:
-- the tests of the policies visible and visible_to_readers of document.
-- search() asks the text index for the rows that have the words AND one of
-- the caller's keys, and checks the policies' tests again on the documents
-- it keeps.
CREATE FUNCTION _search_keys(doc bigint) RETURNS text[]
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT array_remove(ARRAY['d:' || d.id, 'a:' || d.agency_id, 'p:' || d.drafter_id,
                              CASE WHEN d.confidentiality = 'normal'
                                        AND (d.register_id IS NULL OR NOT r.confidential)
                                   THEN 'r' END], NULL)
      FROM ioffice.document d LEFT JOIN ioffice.register r ON r.id = d.register_id
     WHERE d.id = _search_keys.doc
$$;
REVOKE ALL ON FUNCTION _search_keys(bigint) FROM PUBLIC;

-- A row written to search_text gets its document's keys (a restore brings
-- them with the rows).
CREATE FUNCTION _search_text_keys() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT ioffice._restoring_dump() THEN
        NEW.keys := coalesce(ioffice._search_keys(NEW.document_id), '{}');
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION _search_text_keys() FROM PUBLIC;

DROP INDEX search_text_words_idx;
ALTER TABLE search_text ALTER COLUMN words SET STORAGE EXTENDED;
-- A file's text and its vector out of line (TOAST), the rest in rows of
-- some 150 bytes: search() finds its candidates through the text index and
-- these small rows, which stay in memory (a million documents' rows in some
-- 300 MB, not 8 GB), and reads the vectors of the few it ranks only.
ALTER TABLE search_text SET (toast_tuple_target = 128);
ALTER TABLE search_text ADD COLUMN keys text[];
UPDATE search_text s SET keys = coalesce(_search_keys(s.document_id), '{}');
ALTER TABLE search_text ALTER COLUMN keys SET NOT NULL;
CREATE INDEX search_text_words_idx ON search_text USING gin (words, keys);
CREATE TRIGGER search_text_keys BEFORE INSERT ON search_text
    FOR EACH ROW EXECUTE FUNCTION _search_text_keys();

-- A document whose agency, drafter, confidentiality or register changes,
-- and the documents of a register made confidential or ordinary, have
-- their rows' keys written again, in the same transaction (only the rows
-- whose keys differ: numbering a document in an ordinary register writes
-- nothing).
CREATE FUNCTION _search_document_keys() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_keys text[];
BEGIN
    IF ioffice._restoring_dump() THEN
        RETURN NULL;
    END IF;
    IF TG_TABLE_NAME = 'document' THEN
        v_keys := coalesce(ioffice._search_keys(NEW.id), '{}');
        UPDATE ioffice.search_text s SET keys = v_keys
         WHERE s.document_id = NEW.id AND s.keys IS DISTINCT FROM v_keys;
    ELSE
        UPDATE ioffice.search_text s SET keys = coalesce(ioffice._search_keys(s.document_id), '{}')
          FROM ioffice.document d
         WHERE d.register_id = NEW.id AND s.document_id = d.id
           AND s.keys IS DISTINCT FROM coalesce(ioffice._search_keys(s.document_id), '{}');
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION _search_document_keys() FROM PUBLIC;
CREATE TRIGGER search_text_keys AFTER UPDATE OF agency_id, drafter_id, confidentiality, register_id
    ON document FOR EACH ROW
    WHEN (OLD.agency_id IS DISTINCT FROM NEW.agency_id OR OLD.drafter_id IS DISTINCT FROM NEW.drafter_id
          OR OLD.confidentiality IS DISTINCT FROM NEW.confidentiality
          OR OLD.register_id IS DISTINCT FROM NEW.register_id)
    EXECUTE FUNCTION _search_document_keys();
CREATE TRIGGER search_text_keys AFTER UPDATE OF confidential ON register
    FOR EACH ROW WHEN (OLD.confidential IS DISTINCT FROM NEW.confidential)
    EXECUTE FUNCTION _search_document_keys();

-- search(): the documents whose metadata or file text has the words of the
-- query, best first, at most "limit" of them.  A document is found by every
-- spelling of its words ("nghi dinh" finds "Nghị định"); one spelled as the
-- query is (every word, tones and all) ranks above those that are not (rank
-- 1 plus the text rank; an unaccented query is spelled as all of them).
-- Only documents the caller may see, by the same tests as the policies of
-- document (visible, visible_to_readers), applied here because search() is
-- SECURITY DEFINER: it reads search_text, which nobody else does, and the
-- planner may then use the text index (under row-level security it could
-- not: the match operator is not leakproof).  Nothing of a document the
-- caller may not see is counted or shown.  An empty query lists the
-- documents the filters keep, newest first.
--
-- In two steps, so that a common word costs about what a rare one does:
-- 1. the candidates: the newest documents (by id) the caller may see that
--    have the words and pass the filters, at most greatest("limit", 200)
--    of them.  The text index finds the rows with the words and one of the
--    caller's keys in one scan (search_text.keys: a clerk's agency, their
--    own drafts; 'r' for a reporting tool); the documents of the caller's
--    tasks are found by their ids; an admin's by the words alone.  Each is
--    then checked against the policies' tests on its document (the keys are
--    derived data), and the filters.  For a word in most documents the
--    planner may instead read the rows newest first and stop at the window.
-- 2. the ranking, of the candidates only: the best row of each document.
-- When more documents than the window match, the best of the newest are
-- returned, not the best of all, and a NOTICE says so (as a web search
-- engine ranks the first thousand pages it finds): ranking reads each
-- row's word vector, and a common word is in hundreds of thousands.  The
-- planner chooses with the values of this call: each statement is planned
-- for its values (plan_cache_mode), a generic plan would not know how
-- common the words are nor whose documents these are; without sequential
-- scans (enable_seqscan): the planner does not count the reading of the
-- vectors out of line, and took a scan of every row for cheaper than the
-- index; without JIT, whose compiling cost more than the statements.
CREATE OR REPLACE FUNCTION search(query text, filters jsonb DEFAULT '{}', "limit" int DEFAULT 100)
RETURNS TABLE(document bigint, rank real, snippet text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    SET plan_cache_mode = force_custom_plan SET enable_seqscan = off SET jit = off
AS $$
DECLARE
    v_me bigint := ioffice.current_person();
    v_reader boolean := ioffice._search_outer_is_reader();
    v_agencies bigint[] := ioffice._clerk_agencies();
    v_all boolean;
    v_keys text[];
    v_tasks bigint[];
    v_window int;
    v_candidates bigint[];
    v_any tsquery;
    v_exact tsquery;
    f record;
BEGIN
    f := ioffice._search_filters(filters);
    IF search."limit" IS NULL OR search."limit" < 1 OR search."limit" > 10000 THEN
        RAISE EXCEPTION 'search limit must be between 1 and 10000' USING ERRCODE = '22023';
    END IF;
    -- a query is a few words: websearch_to_tsquery() recurses over what it
    -- is given, and a page of text would end in "stack depth limit exceeded"
    IF length(query) > 2000 THEN
        RAISE EXCEPTION 'search query is too long'
            USING ERRCODE = '22023',
                  DETAIL = format('A query has at most 2000 characters; this one has %s.', length(query)),
                  HINT = 'Search for a few words of the text, and narrow with filters.';
    END IF;
    IF v_me IS NULL AND NOT v_reader THEN
        RETURN;
    END IF;
    v_tasks := CASE WHEN v_me IS NULL THEN '{}' ELSE ioffice._task_documents() END;
    v_any := websearch_to_tsquery('ioffice.search_vi'::regconfig, translate(coalesce(query, ''), '/', ' '));
    IF numnode(v_any) = 0 THEN
        IF filters IS NULL OR filters = '{}' THEN
            RAISE EXCEPTION 'search needs words to find, or a filter'
                USING ERRCODE = '22023';
        END IF;
        RETURN QUERY
        SELECT d.id, 0::real, d.abstract
        FROM ioffice.document d
        WHERE (d.drafter_id = v_me OR d.agency_id = ANY (v_agencies) OR d.id = ANY (v_tasks)
               OR (v_reader AND d.confidentiality = 'normal'
                   AND (d.register_id IS NULL
                        OR d.register_id IN (SELECT r.id FROM ioffice.register r WHERE NOT r.confidential))))
          AND (f.agency IS NULL OR d.agency_id = f.agency)
          AND (f.doc_type IS NULL OR d.doc_type = f.doc_type)
          AND (f.register IS NULL OR d.register_id = f.register)
          AND (f.state IS NULL OR d.state = f.state)
          AND (f.signer IS NULL OR d.signer_id = f.signer)
          AND (f.direction IS NULL OR d.direction = f.direction)
          AND (f.issued_from IS NULL OR coalesce(d.issued_on, d.sender_date) >= f.issued_from)
          AND (f.issued_to IS NULL OR coalesce(d.issued_on, d.sender_date) <= f.issued_to)
          AND (f.created_from IS NULL OR (d.created_at AT TIME ZONE ioffice.timezone())::date >= f.created_from)
          AND (f.created_to IS NULL OR (d.created_at AT TIME ZONE ioffice.timezone())::date <= f.created_to)
        ORDER BY d.id DESC
        LIMIT search."limit";
        RETURN;
    END IF;
    v_exact := websearch_to_tsquery('ioffice.search_vi_exact'::regconfig, translate(query, '/', ' '));
    -- the caller's keys (_search_keys()): their tasks' documents, their
    -- agencies as a clerk, their drafts, the reporting tools' documents; an
    -- admin's agencies are every unit, and the words alone are asked for.
    -- A filter by agency is a key too.
    v_all := v_me IS NOT NULL
             AND EXISTS (SELECT 1 FROM ioffice.person_role r WHERE r.person_id = v_me AND r.role = 'admin');
    -- (the documents of the tasks that another key does not cover: a
    -- clerk's thousand tasks are their agency's documents, and each key
    -- is one more entry the index merges)
    v_keys := ARRAY(SELECT 'd:' || d.id FROM ioffice.document d
                     WHERE d.id = ANY (v_tasks)
                       AND d.drafter_id IS DISTINCT FROM v_me AND NOT d.agency_id = ANY (v_agencies))
              || ARRAY(SELECT 'a:' || a FROM unnest(v_agencies) a)
              || CASE WHEN v_me IS NOT NULL THEN ARRAY['p:' || v_me] ELSE '{}'::text[] END
              || CASE WHEN v_reader THEN ARRAY['r'] ELSE '{}'::text[] END;
    v_window := greatest(search."limit", 200);
    -- (each candidate's document by its key, LATERAL: the newest first,
    -- without hashing the table of documents)
    v_candidates := ARRAY(
        SELECT c.document_id
        FROM (SELECT DISTINCT s.document_id FROM ioffice.search_text s
               WHERE s.words @@ v_any AND (v_all OR s.keys && v_keys)
                 AND (f.agency IS NULL OR s.keys @> ARRAY['a:' || f.agency])) c
        CROSS JOIN LATERAL (
            SELECT 1 FROM ioffice.document d
            WHERE d.id = c.document_id
              AND (d.drafter_id = v_me OR d.agency_id = ANY (v_agencies) OR d.id = ANY (v_tasks)
                   OR (v_reader AND d.confidentiality = 'normal'
                       AND (d.register_id IS NULL
                            OR d.register_id IN (SELECT r.id FROM ioffice.register r WHERE NOT r.confidential))))
              AND (f.agency IS NULL OR d.agency_id = f.agency)
              AND (f.doc_type IS NULL OR d.doc_type = f.doc_type)
              AND (f.register IS NULL OR d.register_id = f.register)
              AND (f.state IS NULL OR d.state = f.state)
              AND (f.signer IS NULL OR d.signer_id = f.signer)
              AND (f.direction IS NULL OR d.direction = f.direction)
              AND (f.issued_from IS NULL OR coalesce(d.issued_on, d.sender_date) >= f.issued_from)
              AND (f.issued_to IS NULL OR coalesce(d.issued_on, d.sender_date) <= f.issued_to)
              AND (f.created_from IS NULL OR (d.created_at AT TIME ZONE ioffice.timezone())::date >= f.created_from)
              AND (f.created_to IS NULL OR (d.created_at AT TIME ZONE ioffice.timezone())::date <= f.created_to)
            LIMIT 1) v
        ORDER BY c.document_id DESC
        LIMIT v_window + 1);
    IF cardinality(v_candidates) > v_window THEN
        RAISE NOTICE 'search ranked the % newest of the documents that match, not all of them', v_window
            USING DETAIL = 'A query whose words are in many documents is ranked among the newest.',
                  HINT = 'Add words, or filters (agency, doc_type, issued_from, issued_to), to find older documents.';
        v_candidates := v_candidates[1:v_window];
    END IF;
    RETURN QUERY
    WITH hit AS (
        SELECT s.document_id, s.file_id, s.body,
               (s.words @@ v_exact)::int + ts_rank(s.words, v_any, 32) AS r
        FROM ioffice.search_text s
        WHERE s.document_id = ANY (v_candidates) AND s.words @@ v_any
    ), best AS (
        SELECT DISTINCT ON (h.document_id) h.document_id, h.body, h.r
        FROM hit h
        ORDER BY h.document_id, h.r DESC, h.file_id NULLS FIRST
    ), found AS (
        SELECT b.document_id, b.body, b.r
        FROM best b
        ORDER BY b.r DESC, b.document_id DESC
        LIMIT search."limit"
    )
    -- (the snippet from the first 64 kB of a file's text: ts_headline
    -- parses all it is given, and a page of results has up to "limit")
    SELECT x.document_id, x.r::real,
           ts_headline('ioffice.search_vi'::regconfig, left(x.body, 65536), v_any,
                       'StartSel=«, StopSel=», MaxWords=30, MinWords=12, ShortWord=0, '
                       'MaxFragments=2, FragmentDelimiter=" … "')
    FROM found x
    ORDER BY x.r DESC, x.document_id DESC;
END
$$;

-- ==== exchange_rest ====
-- A file destroyed by an accepted recall is refused by file_content() and
-- file_copy() (extension/access_log.c), and a case file PDF made before the
-- recall is not handed out again.
CREATE OR REPLACE FUNCTION case_file_pdf_result(job bigint) RETURNS bytea
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor bigint := ioffice.actor();
    v_job ioffice.case_file_pdf_job;
BEGIN
    IF case_file_pdf_result.job IS NULL THEN
        RAISE EXCEPTION 'case_file_pdf_result needs a job' USING ERRCODE = '22023';
    END IF;
    SELECT * INTO v_job FROM ioffice.case_file_pdf_job j
     WHERE j.id = case_file_pdf_result.job AND j.requested_by = v_actor;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown case file PDF %', case_file_pdf_result.job USING ERRCODE = '42704';
    END IF;
    IF v_job.done_at IS NULL THEN
        RAISE EXCEPTION 'the PDF of case file % is not made yet', v_job.case_file_id
            USING ERRCODE = '55000', HINT = 'The worker makes it; try again later.';
    END IF;
    IF v_job.error IS NOT NULL THEN
        RAISE EXCEPTION 'the PDF of case file % could not be made', v_job.case_file_id
            USING ERRCODE = '55000', DETAIL = v_job.error;
    END IF;
    -- a document in it destroyed by a recall since (Decree 30 art. 18.4b)
    -- is not handed out again inside the PDF
    IF EXISTS (SELECT 1 FROM jsonb_array_elements(v_job.contents->'rows') r(v),
                             jsonb_array_elements_text(r.v->'files') x(id)
                        JOIN ioffice.file f ON f.id = x.id::bigint
                WHERE f.erased_at IS NOT NULL) THEN
        RAISE EXCEPTION 'the PDF of case file % holds a document destroyed by a recall since it was made',
              v_job.case_file_id
            USING ERRCODE = '55000',
                  DETAIL = 'A received document whose recall its clerk accepted is destroyed (Decree 30 art. 18.4b), and with it every copy of its bytes.',
                  HINT = 'Ask for the case file''s PDF again (case_file_pdf): it leaves the destroyed document out.';
    END IF;
    PERFORM ioffice._log_access('export', NULL, NULL, v_job.case_file_id, 'pdf');
    RETURN v_job.content;
END
$$;

-- Certified copies (copy_of) of a received document whose recall is accepted
-- are destroyed with it; none is made while a recall waits; recall_status
-- gives a recipient of this database its code and the answer in full.
CREATE OR REPLACE FUNCTION copy_document(doc bigint, kind text, options jsonb DEFAULT '{}') RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor bigint := ioffice.actor();
    v_today date := (now() AT TIME ZONE ioffice.timezone())::date;
    v_year int := extract(year FROM (now() AT TIME ZONE ioffice.timezone())::date);
    v_orig ioffice.document;
    v_agency ioffice.unit;
    v_register bigint;
    v_number int;
    v_symbol text;
    v_excerpt text;
    v_copy bigint;
    v_files int;
    v_seals int;
    v_label text;
    v_kind text := copy_document.kind;
BEGIN
    PERFORM ioffice._engine_enter();
    IF doc IS NULL THEN
        RAISE EXCEPTION 'copy_document needs a document' USING ERRCODE = '22023';
    END IF;
    v_label := CASE v_kind WHEN 'SY' THEN 'SAO Y' WHEN 'SL' THEN 'SAO LỤC' WHEN 'TrS' THEN 'TRÍCH SAO' END;
    IF v_label IS NULL THEN
        RAISE EXCEPTION 'unknown kind of copy "%"', pg_catalog.left(coalesce(v_kind, ''), 60)
            USING ERRCODE = '22023', HINT = 'Kinds are SY (sao y), SL (sao lục) and TrS (trích sao).';
    END IF;
    IF options IS NULL OR jsonb_typeof(options) <> 'object' THEN
        RAISE EXCEPTION 'options must be a JSON object' USING ERRCODE = '22023';
    END IF;
    -- a trích sao reproduces a part of the original (art. 25.3b): which part
    IF v_kind = 'TrS' THEN
        IF jsonb_typeof(options -> 'excerpt') IS DISTINCT FROM 'string'
           OR btrim(options ->> 'excerpt') = '' THEN
            RAISE EXCEPTION 'a trích sao needs options.excerpt, the part of the document it copies'
                USING ERRCODE = '22023';
        END IF;
        v_excerpt := options ->> 'excerpt';
        IF length(v_excerpt) > 500 THEN
            RAISE EXCEPTION 'the excerpt is longer than 500 characters' USING ERRCODE = '22023';
        END IF;
    ELSIF options ? 'excerpt' THEN
        RAISE EXCEPTION 'options.excerpt goes with a trích sao (TrS) only' USING ERRCODE = '22023';
    END IF;

    SELECT * INTO v_orig FROM ioffice.document d WHERE d.id = doc FOR SHARE;
    -- a document of another agency is not named to this one
    IF NOT FOUND OR NOT EXISTS (SELECT 1 FROM ioffice.person_role pr
                                WHERE pr.person_id = v_actor AND pr.unit_id = v_orig.agency_id) THEN
        RAISE EXCEPTION 'document % not found', doc USING ERRCODE = '42704';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ioffice.person_role pr
                   WHERE pr.person_id = v_actor AND pr.role = 'clerk'
                     AND pr.unit_id = v_orig.agency_id) THEN
        RAISE EXCEPTION 'only a clerk of the agency makes copies of its documents'
            USING ERRCODE = '42501';
    END IF;
    -- copies of state secrets follow the law on their protection (art. 27.2)
    IF v_orig.confidentiality <> 'normal' THEN
        RAISE EXCEPTION 'a confidential document is not copied here'
            USING ERRCODE = '42501', DETAIL = 'Decree 30 art. 27.2: the law on state secrets applies.';
    END IF;
    IF (v_orig.direction = 'outgoing' AND v_orig.issued_at IS NULL)
       OR (v_orig.direction = 'incoming' AND v_orig.number IS NULL) THEN
        RAISE EXCEPTION 'document % is not issued or registered yet', doc USING ERRCODE = '55000';
    END IF;
    -- a received document its sender recalls is not copied while the recall
    -- waits for its clerk's answer, nor once recalled (Decree 30 art. 18.4b:
    -- destroyed; a copy has the original's value, art. 26); nor a copy of it
    IF EXISTS (WITH RECURSIVE up(id, copy_of) AS (
                   SELECT v_orig.id, v_orig.copy_of
                   UNION
                   SELECT d.id, d.copy_of FROM ioffice.document d JOIN up ON d.id = up.copy_of)
               SELECT 1 FROM up JOIN ioffice.document d ON d.id = up.id
               WHERE d.recalled_at IS NOT NULL
                  OR EXISTS (SELECT 1 FROM ioffice.document_recall r
                             WHERE r.document_id = d.id AND r.direction = 'received'
                               AND r.answer IS NULL)) THEN
        RAISE EXCEPTION 'document % is recalled by its sender: it is not copied', doc
            USING ERRCODE = '55000',
                  DETAIL = 'Decree 30 art. 18.4: a recalled electronic document is destroyed once the recall is accepted, with the copies made of it; none is made while the recall waits for its answer.',
                  HINT = 'recall_status shows the recall; once it is refused, the document may be copied.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ioffice.file f WHERE f.document_id = doc
                   AND f.superseded_at IS NULL AND f.removed_at IS NULL) THEN
        RAISE EXCEPTION 'document % has no file to copy', doc USING ERRCODE = '55000';
    END IF;
    SELECT * INTO v_agency FROM ioffice.unit u WHERE u.id = v_orig.agency_id;

    -- the year's register of copies; its row lock keeps the numbers gapless
    INSERT INTO ioffice.register (agency_id, direction, code, name, doc_types, year)
    VALUES (v_agency.id, 'outgoing', 'BANSAO', 'Sổ đăng ký bản sao', '{}', v_year)
    ON CONFLICT (agency_id, direction, code, year) DO NOTHING;
    UPDATE ioffice.register r SET next_number = next_number + 1,
           last_issued_on = greatest(r.last_issued_on, v_today)
     WHERE r.agency_id = v_agency.id AND r.direction = 'outgoing' AND r.code = 'BANSAO'
       AND r.year = v_year
    RETURNING r.id, r.next_number - 1 INTO v_register, v_number;
    v_symbol := ioffice.format_number(v_number) || '/' || v_kind || '-' || v_agency.abbr;

    INSERT INTO ioffice.document (workflow, direction, doc_type, abstract, state, agency_id,
                                  drafting_unit_id, drafter_id, register_id, register_year,
                                  number, symbol, issued_on, issued_at, doc_type_name,
                                  drafting_unit_name, copy_of, copy_kind, comment)
    SELECT 'outgoing', 'outgoing', v_orig.doc_type,
           pg_catalog.left(v_label || ' ' || coalesce(v_orig.symbol, v_orig.sender_symbol, '')
                           || ': ' || v_orig.abstract, 500),
           'draft', v_agency.id, v_agency.id, v_actor, v_register, v_year, v_number, v_symbol,
           v_today, now(), t.name, v_agency.name, doc, v_kind, v_excerpt
      FROM ioffice.doc_type t WHERE t.code = v_orig.doc_type
    RETURNING id INTO v_copy;

    INSERT INTO ioffice.file (document_id, name, kind, size, sha256, content, uploaded_by)
    SELECT v_copy, f.name, f.kind, f.size, f.sha256, f.content, v_actor
      FROM ioffice.file f
     WHERE f.document_id = doc AND f.superseded_at IS NULL AND f.removed_at IS NULL
     ORDER BY f.id;
    GET DIAGNOSTICS v_files = ROW_COUNT;
    -- made as a draft to take its files (an issued document's files are
    -- final), then issued at once: nobody saw it in between
    UPDATE ioffice.document d SET state = 'issued' WHERE d.id = v_copy;

    -- the organisation's signature, without image, says the kind of copy,
    -- the copying agency and the time (appendix I part II.3): the worker
    -- writes options.copy.reason as the signature's /Reason, its time is /M
    INSERT INTO ioffice.signature (document_id, file_id, signer_id, kind, options)
    SELECT v_copy, f.id, v_actor, 'organisation',
           jsonb_build_object('copy', jsonb_build_object('kind', v_kind, 'label', v_label,
                                                         'agency', v_agency.name,
                                                         'symbol', v_symbol,
                                                         'reason', v_label || ' - ' || v_agency.name
                                                                   || ' - Số: ' || v_symbol))
      FROM ioffice.file f WHERE f.document_id = v_copy;
    GET DIAGNOSTICS v_seals = ROW_COUNT;

    PERFORM ioffice._audit('document', v_copy, 'copy', NULL, 'issued',
                           jsonb_build_object('copy_of', doc, 'kind', v_kind, 'number', v_number,
                                              'symbol', v_symbol, 'register', v_register,
                                              'files', v_files, 'seals_queued', v_seals)
                           || CASE WHEN v_excerpt IS NULL THEN '{}'::jsonb
                                   ELSE jsonb_build_object('excerpt', v_excerpt) END,
                           NULL, NULL);
    PERFORM ioffice._audit('document', doc, 'copied', v_orig.state, v_orig.state,
                           jsonb_build_object('copy', v_copy, 'kind', v_kind, 'symbol', v_symbol),
                           NULL, NULL);
    PERFORM ioffice._wake_worker();
    PERFORM ioffice._engine_leave();
    RETURN v_copy;
END
$$;
CREATE OR REPLACE FUNCTION _recall_destroy(doc bigint, actor bigint) RETURNS int
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n int;
    c bigint;
    v_copies bigint[];
BEGIN
    UPDATE ioffice.document SET recalled_at = now(), updated_at = now()
    WHERE id = doc AND direction = 'incoming' AND recalled_at IS NULL;
    WITH RECURSIVE down(id) AS (
        SELECT d.id FROM ioffice.document d WHERE d.copy_of = doc
        UNION
        SELECT d.id FROM ioffice.document d JOIN down ON d.copy_of = down.id)
    SELECT coalesce(array_agg(id ORDER BY id), '{}') INTO v_copies FROM down;
    UPDATE ioffice.document SET recalled_at = now(), updated_at = now()
    WHERE id = ANY (v_copies) AND recalled_at IS NULL;
    UPDATE ioffice.signature SET status = 'failed', reason = 'the copied document was recalled'
    WHERE document_id = ANY (v_copies) AND status = 'pending';
    UPDATE ioffice.file SET content = '\x'::bytea, erased_at = now(),
           removed_at = coalesce(removed_at, now()), removed_by = coalesce(removed_by, actor)
    WHERE (document_id = doc OR document_id = ANY (v_copies)) AND erased_at IS NULL;
    GET DIAGNOSTICS n = ROW_COUNT;
    DELETE FROM ioffice.search_text t USING ioffice.file f
    WHERE (f.document_id = doc OR f.document_id = ANY (v_copies)) AND t.file_id = f.id;
    UPDATE ioffice.task SET status = 'done', processed_at = now(), processed_by = actor,
           closed_by_action = 'recalled'
    WHERE document_id = doc AND status = 'open';
    FOREACH c IN ARRAY v_copies LOOP
        PERFORM ioffice._audit('document', c, 'recall_destroy_copy', NULL, NULL,
                               jsonb_build_object('recalled_document', doc));
    END LOOP;
    RETURN n;
END
$$;
CREATE OR REPLACE VIEW recall_status AS
SELECT s.document_id AS document, 'sent'::text AS direction, u.name AS recipient,
       u.code AS party, c.document_id AS copy, s.reason, s.requested_at,
       c.answer,
       coalesce(c.answer_reason,
                CASE c.answer WHEN 'accepted' THEN 'Đồng ý thu hồi, đã hủy văn bản' END) AS answer_reason,
       c.answered_at
FROM ioffice.document_recall s
JOIN ioffice.document_recall c ON c.source_recall_id = s.id
JOIN ioffice.unit u ON u.id = c.agency_id
WHERE s.direction = 'sent' AND ioffice.can_see(s.document_id)
UNION ALL
SELECT s.document_id, 'sent', coalesce(u.name, o.recipient), o.recipient, NULL, s.reason,
       s.requested_at,
       CASE a.code WHEN '15' THEN 'accepted' WHEN '16' THEN 'refused' END,
       a.description, a.recorded_at
FROM ioffice.document_recall s
JOIN ioffice.edxml_outgoing o ON o.document_id = s.document_id AND o.kind = 'recall'
LEFT JOIN ioffice.unit u ON u.code = o.recipient AND u.kind = 'agency'
LEFT JOIN LATERAL (SELECT x.code, x.description, x.recorded_at FROM ioffice.edxml_status x
                   WHERE x.document_id = s.document_id AND x.direction = 'received'
                     AND x.party_organ_id = o.recipient AND x.code IN ('15', '16')
                     AND x.recorded_at >= s.requested_at
                   ORDER BY x.id DESC LIMIT 1) a ON true
WHERE s.direction = 'sent' AND ioffice.can_see(s.document_id)
UNION ALL
SELECT r.document_id, 'received', NULL, r.party, NULL, r.reason, r.requested_at,
       r.answer, r.answer_reason, r.answered_at
FROM ioffice.document_recall r
WHERE r.direction = 'received' AND r.document_id IS NOT NULL AND ioffice.can_see(r.document_id);

-- Packages from the axis refused are recorded (edxml_refused, view
-- exchange_refused); a status package refused is not answered with a 02.
-- No foreign key to exchange_axis: an axis removed keeps its refusals.
CREATE TABLE edxml_refused (
    id                bigserial PRIMARY KEY,
    axis_id           bigint NOT NULL,
    agency_id         bigint NOT NULL REFERENCES unit,
    refused_at        timestamptz NOT NULL DEFAULT now(),
    kind              text CHECK (kind IN ('document', 'status')),
    sender            text CHECK (length(sender) <= 60),
    edxml_document_id text CHECK (length(edxml_document_id) <= 100),
    status_code       text CHECK (length(status_code) <= 10),
    reason            text NOT NULL CHECK (length(reason) BETWEEN 1 AND 2000),
    answered          boolean NOT NULL,
    package_sha256    bytea NOT NULL
);
CREATE UNIQUE INDEX edxml_refused_package_key ON edxml_refused (axis_id, package_sha256);
CREATE INDEX edxml_refused_agency_idx ON edxml_refused (agency_id, refused_at);
COMMENT ON TABLE edxml_refused IS
  'Packages from the axis refused by _edxml_axis_file(), once each: kind (NULL: not read as edXML), sender, DocumentId, status code, reason, and whether a 02 answered it (a document package; a status package is never answered)';
SELECT pg_catalog.pg_extension_config_dump('edxml_refused', '');
SELECT pg_catalog.pg_extension_config_dump('edxml_refused_id_seq', '');
REVOKE ALL ON edxml_refused FROM PUBLIC;
GRANT SELECT ON edxml_refused TO ioffice_admin;

-- A refusal of _edxml_axis_file(), recorded (p: the reader's answer, NULL
-- when the package was not read); what the package said is clipped to the
-- columns' lengths, it is the other system's text.
CREATE FUNCTION _edxml_note_refused(axis bigint, agency bigint, p jsonb, package text,
                                    reason text, answered boolean) RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO ioffice.edxml_refused (axis_id, agency_id, kind, sender, edxml_document_id,
                                       status_code, reason, answered, package_sha256)
    VALUES (axis, agency,
            CASE WHEN p->>'kind' IN ('document', 'status') THEN p->>'kind' END,
            pg_catalog.left(p->'from'->>'organ_id', 60),
            pg_catalog.left(coalesce(p->'response_for'->>'document_id', p->>'document_id'), 100),
            pg_catalog.left(p->>'status_code', 10),
            pg_catalog.left(coalesce(nullif(reason, ''), 'refused'), 2000), answered,
            pg_catalog.sha256(pg_catalog.convert_to(package, 'UTF8')))
    ON CONFLICT (axis_id, package_sha256) DO NOTHING
$$;
REVOKE ALL ON FUNCTION _edxml_note_refused(bigint, bigint, jsonb, text, text, boolean) FROM PUBLIC;

CREATE VIEW exchange_refused AS
SELECT r.refused_at, u.code AS agency, r.kind, r.sender, r.edxml_document_id, r.status_code,
       r.reason, r.answered
FROM ioffice.edxml_refused r JOIN ioffice.unit u ON u.id = r.agency_id
WHERE ioffice.is_admin() OR r.agency_id = ANY ((SELECT ioffice._clerk_agencies())::bigint[]);
COMMENT ON VIEW exchange_refused IS
  'Packages from the axis that were refused, for the clerks of the axis''s agency and the DBA: when, kind (document, status, NULL: not edXML), sender, DocumentId named, status code, reason; answered: a 02 went back (document packages; a status package is never answered, so that two systems never answer each other''s refusals)';
REVOKE ALL ON exchange_refused FROM PUBLIC;
GRANT SELECT ON exchange_refused TO ioffice_app, ioffice_admin, ioffice_reader;
CREATE OR REPLACE FUNCTION _edxml_axis_file(package text, axis bigint) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_trust text;
    p jsonb;
    v_axis_agency bigint;
    v_agency bigint;
    v_id bigint;
    v_reason text;
    v_detail text;
    v_answered boolean := false;
BEGIN
    SELECT a.agency_id INTO v_axis_agency FROM ioffice.exchange_axis a WHERE a.id = axis;
    IF package IS NULL OR v_axis_agency IS NULL THEN
        RAISE EXCEPTION 'an edXML package and an axis are required' USING ERRCODE = '22023';
    END IF;
    SELECT string_agg(t.pem, E'\n' ORDER BY t.id) INTO v_trust FROM ioffice.trust_anchor t;
    p := ioffice._edxml_read(package, coalesce(v_trust, ''));
    IF p ? 'error' THEN
        -- not read at all: no sender to answer; the axis is told (fail)
        v_reason := format('%s (field %s)', p->>'error', p->>'field');
        PERFORM ioffice._edxml_note_refused(axis, v_axis_agency, NULL, package, v_reason, false);
        RETURN jsonb_build_object('result', 'refused', 'reason', v_reason);
    END IF;
    BEGIN
        IF p->>'kind' = 'status' THEN
            IF p->'signature'->>'status' <> 'valid' THEN
                RAISE EXCEPTION 'edXML status package refused: its signature is %',
                    p->'signature'->>'status' USING ERRCODE = '42501';
            END IF;
            SELECT d.id INTO v_id FROM ioffice.document d
            JOIN ioffice.unit u ON u.id = d.agency_id
            WHERE d.identifier = p->'response_for'->>'document_id'
              AND u.code = p->'response_for'->>'organ_id' AND d.direction = 'outgoing';
            IF v_id IS NULL THEN
                RAISE EXCEPTION 'edXML status package refused: it answers no document of this database'
                    USING ERRCODE = '22023',
                          DETAIL = format('Field ResponseFor/DocumentId: %s.',
                                          pg_catalog.left(p->'response_for'->>'document_id', 60));
            END IF;
            -- only an agency the document was addressed to answers it; in
            -- any state of the send: the axis may have taken a package
            -- whose answer the sender missed (a timeout), and the 01 of
            -- a row still queued must not be refused and lost
            IF NOT EXISTS (SELECT 1 FROM ioffice.edxml_outgoing o
                           WHERE o.document_id = v_id AND o.kind = 'document'
                             AND o.recipient = p->'from'->>'organ_id') THEN
                RAISE EXCEPTION 'edXML status package refused: the document was not sent to its sender'
                    USING ERRCODE = '42501',
                          DETAIL = format('Field From/OrganId: %s.',
                                          pg_catalog.left(p->'from'->>'organ_id', 60));
            END IF;
            PERFORM ioffice._engine_enter();
            INSERT INTO ioffice.edxml_status (document_id, party_organ_id, edxml_document_id,
                                              direction, code, description)
            SELECT v_id, p->'from'->>'organ_id', p->'response_for'->>'document_id', 'received',
                   p->>'status_code', pg_catalog.left(p->>'description', 2000)
            WHERE NOT EXISTS (
                SELECT 1 FROM ioffice.edxml_status s
                WHERE s.document_id = v_id AND s.direction = 'received'
                  AND s.party_organ_id = p->'from'->>'organ_id' AND s.code = p->>'status_code'
                  AND s.description IS NOT DISTINCT FROM pg_catalog.left(p->>'description', 2000));
            PERFORM ioffice._engine_leave();
            RETURN jsonb_build_object('result', 'status', 'document', v_id, 'code', p->>'status_code');
        END IF;
        SELECT u.id INTO v_agency
        FROM jsonb_array_elements(p->'to') WITH ORDINALITY AS t(e, o)
        JOIN ioffice.unit u ON u.code = t.e->>'organ_id' AND u.kind = 'agency'
        ORDER BY (u.id = v_axis_agency) DESC, t.o LIMIT 1;
        IF v_agency IS NULL THEN
            RAISE EXCEPTION 'edXML package refused: it is addressed to no agency of this database'
                USING ERRCODE = '22023';
        END IF;
        v_id := ioffice._edxml_file(p, package, v_agency, NULL);
        RETURN jsonb_build_object('result', 'filed', 'document', v_id);
    -- the package's own data at fault (classes 22 and 23: a bad value or
    -- cast, a constraint) is a refusal, not an error retried at every poll
    EXCEPTION WHEN data_exception OR integrity_constraint_violation OR insufficient_privilege THEN
        GET STACKED DIAGNOSTICS v_reason = MESSAGE_TEXT, v_detail = PG_EXCEPTION_DETAIL;
    END;
    v_reason := pg_catalog.left(v_reason || coalesce(' ' || nullif(v_detail, ''), ''), 2000);
    -- answered when the 02 can be addressed (recipient, DocumentId that fit)
    IF p->>'kind' = 'document' AND length(p->'from'->>'organ_id') BETWEEN 1 AND 13
       AND coalesce(length(p->>'document_id'), 0) <= 100 THEN
        INSERT INTO ioffice.edxml_outgoing (agency_id, recipient, kind, code, description,
                                            edxml_document_id)
        VALUES (v_axis_agency, p->'from'->>'organ_id', 'status', '02', v_reason,
                p->>'document_id');
        v_answered := true;
    END IF;
    PERFORM ioffice._edxml_note_refused(axis, v_axis_agency, p, package, v_reason, v_answered);
    RETURN jsonb_build_object('result', 'refused', 'reason', v_reason);
END
$$;

-- ==== appendix6_rest ====
-- case_file_pdf_job: cancel (case_file_pdf_cancel) and the retention of
-- finished requests (_export_cleanup, ioffice.export_retention)
ALTER TABLE case_file_pdf_job ADD COLUMN cancelled_at timestamptz,
    ADD COLUMN cancelled_by bigint REFERENCES person;
CREATE INDEX case_file_pdf_job_done_idx ON case_file_pdf_job (done_at) WHERE done_at IS NOT NULL;
GRANT SELECT (cancelled_at, cancelled_by) ON case_file_pdf_job TO PUBLIC;
CREATE OR REPLACE FUNCTION case_file_pdf_result(job bigint) RETURNS bytea
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor bigint := ioffice.actor();
    v_job ioffice.case_file_pdf_job;
BEGIN
    IF case_file_pdf_result.job IS NULL THEN
        RAISE EXCEPTION 'case_file_pdf_result needs a job' USING ERRCODE = '22023';
    END IF;
    SELECT * INTO v_job FROM ioffice.case_file_pdf_job j
     WHERE j.id = case_file_pdf_result.job AND j.requested_by = v_actor;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown case file PDF %', case_file_pdf_result.job USING ERRCODE = '42704';
    END IF;
    IF v_job.cancelled_at IS NOT NULL THEN
        RAISE EXCEPTION 'the PDF of case file % was cancelled', v_job.case_file_id
            USING ERRCODE = '55000';
    END IF;
    IF v_job.done_at IS NULL THEN
        RAISE EXCEPTION 'the PDF of case file % is not made yet', v_job.case_file_id
            USING ERRCODE = '55000', HINT = 'The worker makes it; try again later.';
    END IF;
    IF v_job.error IS NOT NULL THEN
        RAISE EXCEPTION 'the PDF of case file % could not be made', v_job.case_file_id
            USING ERRCODE = '55000', DETAIL = v_job.error;
    END IF;
    PERFORM ioffice._log_access('export', NULL, NULL, v_job.case_file_id, 'pdf');
    RETURN v_job.content;
END
$$;
-- ---------------------------------------------------------------------------
-- A case file's PDF (case_file_pdf_job) may be cancelled by the person who
-- asked for it or by the case file's responsible person: one still queued
-- is not made (the worker's answer for it is dropped, _case_file_pdf_done
-- takes only a job not done), one made loses its PDF.  A finished request
-- (made, failed or cancelled) is removed by the worker once it is older
-- than ioffice.export_retention (default 7 days; 0 keeps them), in batches
-- (_export_cleanup, workers/retention_jobs.c): a book of a case file can
-- weigh hundreds of MB, and a person who wants it again asks again.
-- ---------------------------------------------------------------------------

CREATE FUNCTION case_file_pdf_cancel(job bigint) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor bigint := ioffice.actor();
    v_job ioffice.case_file_pdf_job;
BEGIN
    IF case_file_pdf_cancel.job IS NULL THEN
        RAISE EXCEPTION 'case_file_pdf_cancel needs a job' USING ERRCODE = '22023';
    END IF;
    SELECT * INTO v_job FROM ioffice.case_file_pdf_job j
     WHERE j.id = case_file_pdf_cancel.job FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown case file PDF %', case_file_pdf_cancel.job USING ERRCODE = '42704';
    END IF;
    IF v_job.requested_by <> v_actor
       AND NOT EXISTS (SELECT 1 FROM ioffice.case_file c
                        WHERE c.id = v_job.case_file_id AND c.responsible_id = v_actor) THEN
        RAISE EXCEPTION 'only the person who asked for the PDF of case file %, or its responsible person, may cancel it',
            v_job.case_file_id USING ERRCODE = '42501';
    END IF;
    IF v_job.cancelled_at IS NOT NULL THEN
        RAISE EXCEPTION 'the PDF of case file % was cancelled already', v_job.case_file_id
            USING ERRCODE = '55000';
    END IF;
    UPDATE ioffice.case_file_pdf_job j
       SET cancelled_at = now(), cancelled_by = v_actor, done_at = coalesce(j.done_at, now()),
           content = NULL
     WHERE j.id = v_job.id;
END
$$;
COMMENT ON FUNCTION case_file_pdf_cancel(bigint) IS
  'Cancels a request of case_file_pdf(): by the person who asked or the case file''s responsible person; a queued PDF is not made, a made one is dropped (55000 when cancelled already)';

-- The worker's clean-up: at most batch finished requests older than
-- retention removed, the oldest first; returns how many (the worker calls
-- again at once when the batch was full).
CREATE FUNCTION _export_cleanup(retention interval, batch int DEFAULT 100) RETURNS int
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
    WITH gone AS (
        DELETE FROM ioffice.case_file_pdf_job j
         WHERE j.id IN (SELECT o.id FROM ioffice.case_file_pdf_job o
                         WHERE o.done_at IS NOT NULL
                           AND o.done_at < now() - _export_cleanup.retention
                         ORDER BY o.done_at LIMIT _export_cleanup.batch
                           FOR UPDATE SKIP LOCKED)
        RETURNING 1)
    SELECT count(*)::int FROM gone
$$;
REVOKE ALL ON FUNCTION _export_cleanup(interval, int) FROM PUBLIC;

-- access_log: the exports of registers and reports (_log_report_export), a
-- row with no document nor case file, what was asked in params
ALTER TABLE access_log DROP CONSTRAINT access_log_check;
ALTER TABLE access_log ADD COLUMN params jsonb;
ALTER TABLE access_log ADD CONSTRAINT access_log_check CHECK (document_id IS NOT NULL OR case_file_id IS NOT NULL
           OR (action = 'export' AND params IS NOT NULL));
COMMENT ON COLUMN access_log.action IS
  'view (document_detail), trail (trail), download (file_content), copy (file_copy: the marked copy), export (trail_export, case_file_xml, case_file_pdf_result, search_export: detail search:<format>; register_export, followup_export, processing_report_export, case_file_list_export: detail <report>:<format>, what was asked in params)';

-- The export of a register or a report (register_export, followup_export,
-- processing_report_export, case_file_list_export) by a person: one row, no
-- document (the file is a list, as a list's view is not logged per
-- document), detail '<report>:<format>' as the search exports' rows say
-- 'search:<format>', and in params what was asked (the register or agency,
-- the year or the dates) and how many rows the file held.  The report
-- functions but register_export are SECURITY INVOKER (their views' row-level
-- security is the caller's), so this is callable by anyone, as
-- _log_case_file_export is: it writes only under the caller's own name,
-- only a report it knows, in a format the exports write.
CREATE FUNCTION _log_report_export(report text, format text, params jsonb) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF report IS NULL OR report NOT IN ('register', 'followup', 'processing_report', 'case_file_list') THEN
        RAISE EXCEPTION 'unknown report "%"', pg_catalog.left(report, 60) USING ERRCODE = '22023';
    END IF;
    IF format IS NULL OR format NOT IN ('xlsx', 'csv') THEN
        RAISE EXCEPTION 'unknown format "%" of an export', pg_catalog.left(format, 60)
            USING ERRCODE = '22023';
    END IF;
    IF params IS NULL OR jsonb_typeof(params) <> 'object' THEN
        RAISE EXCEPTION 'the parameters of an export are a JSON object' USING ERRCODE = '22023';
    END IF;
    INSERT INTO ioffice.access_log (person_id, action, detail, params)
    VALUES (ioffice.actor(), 'export', report || ':' || format, params);
END
$$;

-- access_log: a retention (ioffice.access_log_retention, default for ever),
-- pruned by the worker through _access_log_prune(), whose deletes alone the
-- trigger lets through
-- Append-only, but for the rows older than ioffice.access_log_retention
-- (default 0: kept for ever), which the worker deletes in batches through
-- _access_log_prune(), granted to nobody (extension/access_log.c): the
-- trigger lets through the deletes of that function alone, never an UPDATE,
-- and a TRUNCATE never.
CREATE FUNCTION _access_log_append_only() RETURNS trigger
    AS 'MODULE_PATHNAME', 'ioffice_access_log_append_only' LANGUAGE C;
REVOKE ALL ON FUNCTION _access_log_append_only() FROM PUBLIC;
CREATE FUNCTION _access_log_prune(retention interval, batch int) RETURNS int
    AS 'MODULE_PATHNAME', 'ioffice_access_log_prune' LANGUAGE C VOLATILE STRICT
    SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION _access_log_prune(interval, int) FROM PUBLIC;
COMMENT ON FUNCTION _access_log_prune(interval, int) IS
  'The worker''s pruning of the access log: at most batch rows older than retention deleted; returns how many';
DROP TRIGGER append_only ON access_log;
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON access_log
    FOR EACH ROW EXECUTE FUNCTION _access_log_append_only();

-- incoming_followup: the handlers' names for a reporting tool
-- (_followup_reader_handlers), the task rows still closed to it
CREATE FUNCTION _followup_reader_handlers(doc bigint) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT string_agg(p.full_name || CASE tk.kind WHEN 'main' THEN ' (chủ trì)' ELSE ' (phối hợp)' END,
                      '; ' ORDER BY tk.kind DESC, tk.step)
      FROM ioffice.task tk JOIN ioffice.person p ON p.id = tk.receiver_id
     WHERE tk.document_id = _followup_reader_handlers.doc AND tk.action = 'assign'
       AND ioffice._search_outer_is_reader()
       AND EXISTS (SELECT 1 FROM ioffice.document d
                    WHERE d.id = _followup_reader_handlers.doc AND d.confidentiality = 'normal'
                      AND (d.register_id IS NULL
                           OR d.register_id IN (SELECT r.id FROM ioffice.register r WHERE NOT r.confidential)))
$$;
COMMENT ON FUNCTION _followup_reader_handlers(bigint) IS
  'The handlers of a document as the follow-up register names them, for a role in ioffice_reader and a document it may read; NULL otherwise';
CREATE OR REPLACE VIEW incoming_followup WITH (security_invoker = true) AS
SELECT d.agency_id, d.register_id, r.code AS register_code, d.register_year AS year,
       d.number,
       concat_ws(' ', coalesce(d.doc_type_name, t.name),
                 'số ' || coalesce(d.sender_symbol, src.symbol),
                 'ngày ' || to_char(coalesce(d.sender_date, src.issued_on), 'DD/MM/YYYY'),
                 'của ' || coalesce(sa.name, d.sender_name)) AS document_description,
       d.abstract,
       coalesce((SELECT string_agg(p.full_name || CASE tk.kind WHEN 'main' THEN ' (chủ trì)' ELSE ' (phối hợp)' END,
                                   '; ' ORDER BY tk.kind DESC, tk.step)
                   FROM ioffice.task tk JOIN ioffice.person p ON p.id = tk.receiver_id
                  WHERE tk.document_id = d.id AND tk.action = 'assign'),
                ioffice._followup_reader_handlers(d.id)) AS handlers,
       h.deadline,
       h.done_on,
       ioffice._handling_status(h.deadline, h.done_on) AS status,
       CASE WHEN h.done_on IS NOT NULL THEN
                'Đã giải quyết ngày ' || to_char(h.done_on, 'DD/MM/YYYY')
                || CASE WHEN h.done_on > h.deadline
                        THEN ' (chậm ' || (h.done_on - h.deadline) || ' ngày)' ELSE '' END
            WHEN h.assigned IS NULL THEN 'Chưa phân công giải quyết'
            WHEN h.deadline < h.today THEN 'Quá hạn ' || (h.today - h.deadline) || ' ngày'
            WHEN h.deadline IS NOT NULL THEN 'Đang giải quyết, còn ' || (h.deadline - h.today) || ' ngày'
            ELSE 'Đang giải quyết' END AS progress,
       (SELECT string_agg(o.symbol, '; ' ORDER BY o.issued_on, o.id)
          FROM ioffice.document_link l
          JOIN ioffice.document o
            ON o.id = CASE WHEN l.document_id = d.id THEN l.related_id ELSE l.document_id END
         WHERE (l.document_id = d.id OR l.related_id = d.id)
           AND o.direction = 'outgoing' AND o.number IS NOT NULL) AS reply_symbols,
       d.comment AS note,
       d.doc_type,
       r.confidential OR d.confidentiality <> 'normal' AS confidential,
       d.state,
       d.id AS document_id
FROM ioffice.document d
JOIN ioffice.register r ON r.id = d.register_id
JOIN ioffice.doc_type t ON t.code = d.doc_type
JOIN ioffice.workflow_state ws ON ws.workflow = d.workflow AND ws.state = d.state
LEFT JOIN ioffice.unit sa ON sa.id = d.sender_agency_id
LEFT JOIN ioffice.document src ON src.id = d.source_document_id
CROSS JOIN LATERAL (
    SELECT (now() AT TIME ZONE ioffice.timezone())::date AS today,
           m.received_at AS assigned,
           coalesce(m.deadline, d.due_date) AS deadline,
           CASE WHEN ws.final THEN
                (SELECT (coalesce(max(tk.processed_at), d.updated_at) AT TIME ZONE ioffice.timezone())::date
                   FROM ioffice.task tk WHERE tk.document_id = d.id AND tk.status = 'done') END AS done_on
      FROM (SELECT NULL) one
      LEFT JOIN LATERAL (
          SELECT tk.received_at, tk.deadline FROM ioffice.task tk
           WHERE tk.document_id = d.id AND tk.action = 'assign' AND tk.kind = 'main'
           ORDER BY tk.step DESC LIMIT 1) m ON true) h
WHERE d.direction = 'incoming' AND d.number IS NOT NULL;

-- ==== edxml_update ====
-- Replacing and updating an issued document (99_replace_update.sql; issue
-- 14 item 5): the package builder with business types 2 and 3, the filer
-- with update and replace packages, edxml_build() for the recipients of a
-- replaced document, the trail's label of an answer.

CREATE FUNCTION _edxml_package(doc bigint, recipient text, clerk bigint, business int,
                               reason text, update_id bigint) RETURNS xml
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me bigint := clerk;
    d record;
    v_agency record;
    v_parent text;
    v_to_name text;
    v_clerk record;
    v_number text;
    v_notation text;
    v_priority text;
    v_files xml;
    v_manifest xml;
    v_places xml;
    v_changes jsonb;
    v_due date;
    v_extra xml;
    v_ns constant text := 'http://www.mic.gov.vn/TBT/QCVN_102_2016';
BEGIN
    IF business IS NULL OR business NOT IN (0, 1, 2, 3) THEN
        RAISE EXCEPTION 'BussinessDocType % is not built here', business USING ERRCODE = '22023';
    END IF;
    SELECT * INTO d FROM ioffice.document WHERE id = doc;
    IF d.direction IS DISTINCT FROM 'outgoing' OR d.issued_at IS NULL OR d.number IS NULL THEN
        RAISE EXCEPTION 'document % is not an issued outgoing document', doc
            USING ERRCODE = '55000';
    END IF;
    SELECT u.code, u.name, u.parent_id INTO v_agency FROM ioffice.unit u WHERE u.id = d.agency_id;
    v_due := d.due_date;
    IF business = 2 THEN
        SELECT x.changes INTO v_changes FROM ioffice.document_update x
        WHERE x.id = update_id AND x.document_id = doc AND x.direction = 'sent';
        IF NOT FOUND THEN
            RAISE EXCEPTION 'document % has no update %', doc, update_id USING ERRCODE = '42704';
        END IF;
        IF v_changes ? 'due_date' THEN
            v_due := (v_changes->'due_date'->>'new')::date;
        END IF;
        v_extra := xmlelement(name "BussinessDocumentInfo",
            xmlelement(name "DocumentInfo", CASE WHEN v_changes ? 'due_date' THEN '1' ELSE '0' END),
            xmlelement(name "DocumentReceiver", CASE WHEN v_changes ? 'receivers' THEN '1' ELSE '0' END),
            xmlelement(name "ReceiverList",
                (SELECT xmlagg(xmlelement(name "Receiver",
                                   xmlelement(name "ReceiverType", e->>'type'),
                                   xmlelement(name "OrganId", e->>'organ_id')) ORDER BY o)
                 FROM jsonb_array_elements(v_changes->'receivers') WITH ORDINALITY AS r(e, o))));
    ELSIF business = 3 THEN
        SELECT xmlagg(xmlelement(name "ReplacementInfo",
                          xmlelement(name "DocumentId", od.identifier),
                          xmlelement(name "OrganIdList", xmlelement(name "OrganId", recipient)))
                      ORDER BY r.id)
          INTO v_extra
        FROM ioffice.document_replacement r JOIN ioffice.document od ON od.id = r.replaced_id
        WHERE r.document_id = doc AND r.direction = 'sent';
        IF v_extra IS NULL THEN
            RAISE EXCEPTION 'document % replaces no document', doc USING ERRCODE = '55000';
        END IF;
        v_extra := xmlelement(name "ReplacementInfoList", v_extra);
    END IF;
    IF v_agency.code IS NULL THEN
        RAISE EXCEPTION 'edXML field From/OrganId: the issuing agency has no agency code'
            USING ERRCODE = '22023',
                  HINT = 'Give the agency its QCVN 102:2016 code (unit.code).';
    END IF;
    SELECT a.name INTO v_parent FROM ioffice.unit a
    WHERE a.id = (SELECT p.agency_id FROM ioffice.unit p WHERE p.id = v_agency.parent_id);
    SELECT u.name INTO v_to_name FROM ioffice.unit u WHERE u.code = recipient AND u.kind = 'agency';
    SELECT p.full_name, p.phone, p.email, un.name AS unit_name INTO v_clerk
    FROM ioffice.person p JOIN ioffice.unit un ON un.id = p.unit_id WHERE p.id = v_me;
    -- the identifier's "number/notation" (01/UBND-VP): the number as it
    -- writes it, and the notation after it
    v_number := split_part(split_part(d.identifier, ',', 3), '/', 1);
    v_notation := substr(split_part(d.identifier, ',', 3), length(v_number) + 2);
    v_priority := CASE d.urgency WHEN 'normal' THEN '0' WHEN 'urgent' THEN '1'
                                 WHEN 'very_urgent' THEN '2' WHEN 'flash' THEN '3'
                                 ELSE '4' END;

    PERFORM ioffice._edxml_limit('From/OrganId', v_agency.code, 13),
            ioffice._edxml_limit('To/OrganId', recipient, 13),
            ioffice._edxml_limit('Code/CodeNumber', v_number, 11),
            ioffice._edxml_limit('Code/CodeNotation', v_notation, 30),
            ioffice._edxml_limit('Subject', d.abstract, 500),
            ioffice._edxml_limit('DocumentId', d.identifier, 100);

    SELECT xmlagg(xmlelement(name "Reference",
                      xmlelement(name "ContentId", 'cid:' || f.n),
                      xmlelement(name "ContentType", f.content_type),
                      xmlelement(name "Description", f.name),
                      xmlelement(name "AttachmentName", f.name)) ORDER BY f.n),
           xmlagg(xmlelement(name "Attachment",
                      xmlelement(name "ContentId", 'cid:' || f.n),
                      xmlelement(name "AttachmentName", f.name),
                      xmlelement(name "Description", f.name),
                      xmlelement(name "ContentType", f.content_type),
                      xmlelement(name "ContentTransferEncoded", encode(f.content, 'base64')))
                  ORDER BY f.n)
      INTO v_manifest, v_files
    FROM (SELECT row_number() OVER (ORDER BY fl.id) AS n, fl.name, fl.content,
                 CASE fl.kind WHEN 'pdf' THEN 'application/pdf'
                      WHEN 'docx' THEN 'application/vnd.openxmlformats-officedocument.wordprocessingml.document'
                      WHEN 'xlsx' THEN 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet'
                      WHEN 'doc' THEN 'application/msword'
                      WHEN 'xls' THEN 'application/vnd.ms-excel'
                      WHEN 'zip' THEN 'application/zip'
                      ELSE 'application/octet-stream' END AS content_type
          FROM ioffice.file fl
          WHERE fl.document_id = doc AND fl.superseded_at IS NULL AND fl.removed_at IS NULL
            AND business IN (0, 3)) f;

    SELECT xmlagg(xmlelement(name "Place", coalesce(e->>'name', e->>'place')) ORDER BY o)
      INTO v_places
    FROM jsonb_array_elements(d.recipients) WITH ORDINALITY AS r(e, o);

    RETURN xmlelement(name "edXML", xmlattributes(v_ns AS xmlns),
        xmlelement(name "edXMLEnvelope",
            xmlelement(name "edXMLHeader",
                xmlelement(name "MessageHeader",
                    xmlelement(name "From",
                        xmlelement(name "OrganId", v_agency.code),
                        xmlelement(name "OrganizationInCharge", coalesce(v_parent, v_agency.name)),
                        xmlelement(name "OrganName", v_agency.name)),
                    xmlelement(name "To",
                        xmlelement(name "OrganId", recipient),
                        xmlforest(v_to_name AS "OrganName")),
                    xmlelement(name "Code",
                        xmlelement(name "CodeNumber", v_number),
                        xmlelement(name "CodeNotation", v_notation)),
                    xmlelement(name "PromulgationInfo",
                        xmlelement(name "Place", v_agency.name),
                        xmlelement(name "PromulgationDate", ioffice._edxml_date(d.issued_on))),
                    xmlelement(name "DocumentType",
                        xmlelement(name "Type", '1'),
                        xmlelement(name "TypeName", coalesce(d.doc_type_name, d.doc_type))),
                    xmlelement(name "Subject", d.abstract),
                    xmlelement(name "Content", d.abstract),
                    xmlelement(name "SignerInfo",
                        xmlforest((SELECT p.position FROM ioffice.person p WHERE p.id = d.signer_id)
                                      AS "Position",
                                  d.signer_name AS "FullName")),
                    xmlforest(ioffice._edxml_date(v_due) AS "DueDate"),
                    xmlelement(name "ToPlaces", v_places),
                    xmlelement(name "OtherInfo",
                        xmlelement(name "Priority", v_priority),
                        xmlforest(d.copies AS "PromulgationAmount", d.page_count AS "PageAmount")),
                    xmlelement(name "SteeringType", '1'),
                    xmlelement(name "DocumentId", d.identifier)),
                xmlelement(name "TraceHeaderList",
                    xmlelement(name "TraceHeader",
                        xmlelement(name "OrganId", v_agency.code),
                        xmlelement(name "Timestamp",
                            to_char(now() AT TIME ZONE ioffice.timezone(), 'YYYY/MM/DD HH24:MI:SS'))),
                    xmlelement(name "Bussiness",
                        xmlelement(name "DocumentId", d.identifier),
                        xmlelement(name "BussinessDocType", business::text),
                        xmlelement(name "BussinessDocReason",
                                   CASE WHEN business = 0 THEN 'Văn bản điện tử mới'
                                        ELSE pg_catalog.left(reason, 2000) END),
                        CASE WHEN business = 2 THEN v_extra END,
                        xmlelement(name "Paper", '0'),
                        xmlelement(name "StaffInfo",
                            xmlforest(v_clerk.unit_name AS "Department", v_clerk.full_name AS "Staff",
                                      v_clerk.email AS "Email", v_clerk.phone AS "Mobile")),
                        CASE WHEN business = 3 THEN v_extra END))),
            xmlelement(name "edXMLBody",
                xmlelement(name "edXMLManifest", xmlattributes('1.0' AS version), v_manifest))),
        xmlelement(name "AttachmentEncoded", v_files));
END
$$;
REVOKE ALL ON FUNCTION _edxml_package(bigint, text, bigint, int, text, bigint) FROM PUBLIC;

CREATE OR REPLACE FUNCTION _edxml_package(doc bigint, recipient text, clerk bigint, business int,
                               reason text) RETURNS xml
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ SELECT ioffice._edxml_package(doc, recipient, clerk, business, reason, NULL) $$;

CREATE OR REPLACE FUNCTION _edxml_package(doc bigint, recipient text, clerk bigint) RETURNS xml
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_reason text;
BEGIN
    SELECT r.reason INTO v_reason
    FROM ioffice.document_replacement r
    JOIN ioffice.edxml_outgoing o ON o.document_id = r.replaced_id AND o.kind = 'document'
                                 AND o.recipient = _edxml_package.recipient
    WHERE r.document_id = doc AND r.direction = 'sent' AND r.applied_at IS NOT NULL
    LIMIT 1;
    RETURN ioffice._edxml_package(doc, recipient, clerk, CASE WHEN FOUND THEN 3 ELSE 0 END,
                                  v_reason, NULL);
END
$$;

CREATE OR REPLACE FUNCTION _edxml_file(p jsonb, package text, agency bigint, actor bigint) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me bigint := actor;
    v_text text := package;
    v_agency bigint := agency;
    v_sender text;
    v_docid text;
    v_key bigint;
    v_id bigint;
    v_doc_type text;
    v_urgency text;
    v_pages int;
    v_files int;
BEGIN
    IF p->'signature'->>'status' <> 'valid' THEN
        RAISE EXCEPTION 'edXML package refused: its signature is %', p->'signature'->>'status'
            USING ERRCODE = '42501', DETAIL = p->'signature'->>'reason';
    END IF;
    IF p->>'bussiness_doc_type' = '1' THEN
        RETURN ioffice._edxml_file_recall(p, v_text, v_agency, v_me);
    END IF;
    IF p->>'bussiness_doc_type' = '2' THEN
        RETURN ioffice._edxml_file_update(p, v_text, v_agency, v_me);
    END IF;
    IF coalesce(p->>'bussiness_doc_type', '0') NOT IN ('0', '3') THEN
        RAISE EXCEPTION 'edXML package refused: BussinessDocType % is not one of 0 to 3',
            pg_catalog.left(p->>'bussiness_doc_type', 60)
            USING ERRCODE = '22023', DETAIL = 'Field TraceHeaderList/Bussiness/BussinessDocType.';
    END IF;
    IF p->>'bussiness_doc_type' = '3' AND coalesce(jsonb_array_length(p->'replacements'), 0) = 0 THEN
        RAISE EXCEPTION 'edXML package refused: a replacement (BussinessDocType 3) names no document it replaces'
            USING ERRCODE = '22023',
                  DETAIL = 'Field TraceHeaderList/Bussiness/ReplacementInfoList.';
    END IF;
    IF jsonb_array_length(p->'attachments') = 0 THEN
        RAISE EXCEPTION 'edXML package refused: it carries no attachment'
            USING ERRCODE = '22023', DETAIL = 'Field AttachmentEncoded.';
    END IF;
    v_sender := p->'from'->>'organ_id';
    v_docid := p->>'document_id';

    PERFORM ioffice._engine_enter();
    -- the key first: a concurrent caller with the same package waits here
    INSERT INTO ioffice.edxml_received (agency_id, sender_organ_id, edxml_document_id,
                                        package_sha256, signer_subject, received_by)
    VALUES (v_agency, v_sender, v_docid, sha256(convert_to(v_text, 'UTF8')),
            p->'signature'->>'subject', v_me)
    ON CONFLICT (agency_id, sender_organ_id, edxml_document_id) DO NOTHING
    RETURNING id INTO v_key;
    IF v_key IS NULL THEN
        SELECT r.document_id INTO v_id FROM ioffice.edxml_received r
        WHERE r.agency_id = v_agency AND r.sender_organ_id = v_sender
          AND r.edxml_document_id = v_docid;
        PERFORM ioffice._engine_leave();
        RETURN v_id;
    END IF;

    -- the same document (sender, number and symbol, year) under another
    -- DocumentId, or registered from paper already: Decree 30's duplicate
    SELECT d.id INTO v_id FROM ioffice.document d
    WHERE d.direction = 'incoming' AND d.agency_id = v_agency AND d.sender_agency_id IS NULL
      AND d.sender_name = pg_catalog.left(coalesce(p->'from'->>'organ_name', v_sender), 500)
      AND d.sender_symbol = pg_catalog.left((p->>'code_number') || '/' || (p->>'code_notation'), 100)
      AND d.sender_year = extract(year FROM to_date(p->>'promulgation_date', 'YYYY/MM/DD'));
    IF FOUND THEN
        RAISE EXCEPTION 'edXML package refused: document %/% of % was received already',
            p->>'code_number', p->>'code_notation', pg_catalog.left(v_sender, 60)
            USING ERRCODE = '23505',
                  DETAIL = format('Incoming document %s; this package''s DocumentId is %s.',
                                  v_id, pg_catalog.left(v_docid, 100));
    END IF;
    SELECT t.code INTO v_doc_type FROM ioffice.doc_type t WHERE t.name = p->>'type_name';
    v_urgency := CASE p->>'priority' WHEN '1' THEN 'urgent' WHEN '2' THEN 'very_urgent'
                                     WHEN '3' THEN 'flash' WHEN '4' THEN 'flash'
                                     ELSE 'normal' END;
    v_pages := CASE WHEN (p->>'page_amount')::bigint BETWEEN 1 AND 100000
                    THEN (p->>'page_amount')::int END;
    INSERT INTO ioffice.document (workflow, direction, doc_type, abstract, state, urgency,
                                  agency_id, drafting_unit_id, page_count, due_date,
                                  sender_name, sender_symbol, sender_date, received_at, signer_name)
    VALUES ('incoming', 'incoming', coalesce(v_doc_type, 'CV'), p->>'subject',
            (SELECT s.state FROM ioffice.workflow_state s
             WHERE s.workflow = 'incoming' AND s.initial ORDER BY s.state LIMIT 1),
            v_urgency, v_agency, v_agency, v_pages,
            to_date(p->>'due_date', 'YYYY/MM/DD'),
            pg_catalog.left(coalesce(p->'from'->>'organ_name', v_sender), 500),
            pg_catalog.left((p->>'code_number') || '/' || (p->>'code_notation'), 100),
            to_date(p->>'promulgation_date', 'YYYY/MM/DD'), now(),
            pg_catalog.left(p->>'signer_name', 200))
    RETURNING id INTO v_id;
    INSERT INTO ioffice.file (document_id, name, kind, size, sha256, content, uploaded_by)
    SELECT v_id,
           pg_catalog.left(coalesce(a->>'name', a->>'description', a->>'content_id'), 255),
           coalesce(ioffice.file_kind(c.content), 'other'), octet_length(c.content),
           sha256(c.content), c.content, v_me
    FROM jsonb_array_elements(p->'attachments') WITH ORDINALITY AS x(a, o),
         LATERAL (SELECT decode(a->>'data', 'base64') AS content) c
    ORDER BY x.o;
    GET DIAGNOSTICS v_files = ROW_COUNT;
    UPDATE ioffice.edxml_received SET document_id = v_id WHERE id = v_key;
    INSERT INTO ioffice.edxml_status (document_id, party_organ_id, edxml_document_id, direction,
                                      code, description)
    VALUES (v_id, v_sender, v_docid, 'sent', '01', 'Đã đến');
    PERFORM ioffice._audit('document', v_id, 'edxml_receive', NULL, 'received',
                           jsonb_build_object('sender', v_sender, 'document_id', v_docid,
                                              'files', v_files,
                                              'signer', p->'signature'->>'subject'));
    IF p->>'bussiness_doc_type' = '3' THEN
        PERFORM ioffice._edxml_file_replace(p, v_id, v_agency);
    END IF;
    PERFORM ioffice._engine_leave();
    RETURN v_id;
END
$$;

CREATE OR REPLACE FUNCTION edxml_build(doc bigint, recipient text) RETURNS xml
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me bigint := ioffice.actor();
    d record;
BEGIN
    PERFORM ioffice._require_document(doc);
    SELECT * INTO d FROM ioffice.document WHERE id = doc;
    IF NOT EXISTS (SELECT 1 FROM ioffice.person_role r
                   WHERE r.person_id = v_me AND r.role = 'clerk' AND r.unit_id = d.agency_id) THEN
        RAISE EXCEPTION 'only a clerk of the issuing agency builds its edXML packages'
            USING ERRCODE = '42501';
    END IF;
    IF recipient IS NULL OR recipient !~ '^[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}$' THEN
        RAISE EXCEPTION 'recipient "%" is not an agency code of the form DDD.DD.DD.LDD',
            pg_catalog.left(recipient, 60)
            USING ERRCODE = '22023',
                  HINT = 'QCVN 102:2016 agency identifiers (OrganId) look like 000.00.00.G22.';
    END IF;
    IF d.direction <> 'outgoing' OR d.issued_at IS NULL OR d.number IS NULL THEN
        RAISE EXCEPTION 'document % is not an issued outgoing document', doc
            USING ERRCODE = '55000';
    END IF;
    -- (or an agency its package goes to: the recipients of the document
    -- it replaces, those an update added; 99_replace_update.sql)
    IF NOT EXISTS (SELECT 1 FROM jsonb_array_elements(d.recipients) e
                   WHERE e->>'code' = recipient OR e->>'place' = recipient)
       AND NOT EXISTS (SELECT 1 FROM ioffice.edxml_outgoing o
                       WHERE o.document_id = doc AND o.kind = 'document'
                         AND o.recipient = edxml_build.recipient) THEN
        RAISE EXCEPTION 'agency % is not a recipient of document %', recipient, doc
            USING ERRCODE = '22023';
    END IF;
    RETURN ioffice._edxml_package(doc, recipient, v_me);
END
$$;

CREATE OR REPLACE FUNCTION _edxml_recall_answered() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_what text := 'update';
BEGIN
    IF EXISTS (SELECT 1 FROM ioffice.document_recall r
               WHERE r.document_id = NEW.document_id AND r.direction = 'sent') THEN
        v_what := 'recall';
    ELSIF NOT EXISTS (SELECT 1 FROM ioffice.edxml_outgoing o
                      WHERE o.document_id = NEW.document_id AND o.kind = 'update'
                        AND o.recipient = NEW.party_organ_id)
          AND EXISTS (SELECT 1 FROM ioffice.document_replacement r
                      WHERE r.document_id = NEW.document_id AND r.direction = 'sent') THEN
        v_what := 'replace';
    END IF;
    PERFORM ioffice._audit('document', NEW.document_id,
                           v_what || CASE NEW.code WHEN '15' THEN '_accepted' ELSE '_refused' END,
                           NULL, NULL,
                           jsonb_build_object('recipient', NEW.party_organ_id,
                                              'reason', NEW.description));
    RETURN NULL;
END
$$;


-- ---------------------------------------------------------------------------
-- Replacing and updating an issued document (Decree 30 art. 18.3; issue 14
-- item 5; QCVN 102:2016 BussinessDocType 3 replace, 2 update).
--
-- Replace (art. 18.3: a document with an error of content is replaced by a
-- document of the same form): the replacement is a new outgoing document,
-- drafted, approved and signed as any other; replace_issued(old, new,
-- reason) links it, while it is not yet issued, to the issued document of
-- the same agency it replaces.  At its issue the old document is marked
-- replaced (frozen: its row no longer changes, except to be recalled), and
-- every external recipient the old document was sent to gets the new
-- document's package as a replacement (BussinessDocType 3,
-- ReplacementInfoList naming the old DocumentId), as well as the new
-- document's own recipients (a recipient of the old document only gets it
-- too); a copy of the old document in this database is superseded by the
-- new copy delivered to the same agency.
--
-- The receiver files a replacement as a new incoming document (01, as any
-- package), links it to the copy received under the replaced DocumentId,
-- marks that copy superseded (replaced_at: kept, read-only, its history
-- visible) and answers 15; a replacement of a document never received here
-- is filed all the same and answered 16 with the reason.
--
-- Update: update_issued(doc, changes, reason) corrects what the standard's
-- update carries without a new document: the due date (DocumentInfo) and
-- the receivers (DocumentReceiver, ReceiverList: ReceiverType 1 added, 0
-- removed).  Added agencies get the document's package (new to them); the
-- others it was sent to, the removed ones included, get an update package.
-- The outgoing register entry (recipients) stays what was registered: the
-- updates are the record of what changed, when, why and by whom.  The
-- receiver applies the due date to its copy, records the receivers, keeps
-- the previous values (document_update.changes: old and new) and answers
-- 15; an update of a document never received, or of a copy recalled or
-- superseded, is answered 16 with the reason.  Twice: handled once.
-- ---------------------------------------------------------------------------

ALTER TABLE document ADD COLUMN replaced_at timestamptz;
COMMENT ON COLUMN document.replaced_at IS
  'When the document was replaced: an outgoing one by the issue of its replacement (replace_issued), a received copy by a replacement received (superseded); it no longer changes';

-- One row per replacement: 'sent', the outgoing document (document_id)
-- replacing the issued one (replaced_id), set while drafting and applied at
-- its issue (applied_at); 'received', a received copy (document_id)
-- superseding an earlier copy (replaced_id; NULL: never received here),
-- from an external sender (party, replaced_edxml_document_id) or from an
-- agency of this database (party NULL).
CREATE TABLE document_replacement (
    id               bigserial PRIMARY KEY,
    direction        text NOT NULL CHECK (direction IN ('sent', 'received')),
    agency_id        bigint NOT NULL REFERENCES unit,
    document_id      bigint NOT NULL REFERENCES document,
    replaced_id      bigint REFERENCES document,
    party            text CHECK (length(party) BETWEEN 1 AND 13),
    replaced_edxml_document_id text CHECK (length(replaced_edxml_document_id) BETWEEN 1 AND 100),
    reason           text NOT NULL CHECK (length(reason) BETWEEN 1 AND 2000),
    requested_at     timestamptz NOT NULL DEFAULT now(),
    requested_by     bigint REFERENCES person,
    applied_at       timestamptz,
    answer_reason    text CHECK (length(answer_reason) <= 2000),
    CHECK (direction = 'received' OR (replaced_id IS NOT NULL AND party IS NULL)),
    CHECK (replaced_id IS DISTINCT FROM document_id)
);
CREATE UNIQUE INDEX document_replacement_sent_key ON document_replacement (document_id)
    WHERE direction = 'sent';
CREATE UNIQUE INDEX document_replacement_replaced_key ON document_replacement (replaced_id)
    WHERE direction = 'sent';
CREATE UNIQUE INDEX document_replacement_received_key
    ON document_replacement (document_id, coalesce(replaced_edxml_document_id, ''))
    WHERE direction = 'received';
CREATE INDEX document_replacement_replaced_idx ON document_replacement (replaced_id);
COMMENT ON TABLE document_replacement IS
  'Replacements (Decree 30 art. 18.3; edXML BussinessDocType 3): outgoing documents replacing issued ones (sent, applied at issue), received copies superseding earlier ones (received)';
SELECT pg_catalog.pg_extension_config_dump('document_replacement', '');
SELECT pg_catalog.pg_extension_config_dump('document_replacement_id_seq', '');
REVOKE ALL ON document_replacement FROM PUBLIC;
GRANT SELECT ON document_replacement TO ioffice_admin;

-- One row per update: 'sent', of an outgoing document issued here;
-- 'received', applied to a received copy (document_id NULL: never received
-- here) from an external sender (party, edxml_document_id; package_key:
-- the update's content, so that a package received twice is handled once)
-- or from an agency of this database (party NULL).  changes: what changed,
-- {"due_date": {"old", "new"}, "receivers": [{"type": "0"|"1",
-- "organ_id"}]}, the previous values kept.
CREATE TABLE document_update (
    id               bigserial PRIMARY KEY,
    direction        text NOT NULL CHECK (direction IN ('sent', 'received')),
    document_id      bigint REFERENCES document,
    agency_id        bigint NOT NULL REFERENCES unit,
    party            text CHECK (length(party) BETWEEN 1 AND 13),
    edxml_document_id text CHECK (length(edxml_document_id) BETWEEN 1 AND 100),
    package_key      bytea CHECK (length(package_key) = 32),
    reason           text NOT NULL CHECK (length(reason) BETWEEN 1 AND 2000),
    changes          jsonb NOT NULL DEFAULT '{}',
    requested_at     timestamptz NOT NULL DEFAULT now(),
    requested_by     bigint REFERENCES person,
    answer           text CHECK (answer IN ('accepted', 'refused')),
    answer_reason    text CHECK (length(answer_reason) <= 2000),
    CHECK (direction = 'received' OR (answer IS NULL AND document_id IS NOT NULL)),
    CHECK (direction = 'sent' OR answer IS NOT NULL),
    CHECK (answer IS DISTINCT FROM 'refused' OR answer_reason IS NOT NULL)
);
CREATE INDEX document_update_document_idx ON document_update (document_id, id);
CREATE UNIQUE INDEX document_update_package_key ON document_update (agency_id, party, edxml_document_id, package_key)
    WHERE direction = 'received' AND party IS NOT NULL;
COMMENT ON TABLE document_update IS
  'Updates of issued documents (edXML BussinessDocType 2: due date, receivers added or removed): sent, and received with what changed (old and new values) and the answer (15 accepted, 16 refused)';
SELECT pg_catalog.pg_extension_config_dump('document_update', '');
SELECT pg_catalog.pg_extension_config_dump('document_update_id_seq', '');
REVOKE ALL ON document_update FROM PUBLIC;
GRANT SELECT ON document_update TO ioffice_admin;

-- update packages go to the axis as recall packages do, one per update and
-- recipient
ALTER TABLE edxml_outgoing ADD COLUMN update_id bigint REFERENCES document_update;
COMMENT ON COLUMN edxml_outgoing.update_id IS
  'kind update: the update (document_update) the package carries';
ALTER TABLE edxml_outgoing DROP CONSTRAINT edxml_outgoing_kind_check;
ALTER TABLE edxml_outgoing ADD CONSTRAINT edxml_outgoing_kind_check
    CHECK (kind IN ('document', 'status', 'recall', 'update'));
ALTER TABLE edxml_outgoing ADD CONSTRAINT edxml_outgoing_update_check
    CHECK ((kind = 'update') = (update_id IS NOT NULL));
CREATE UNIQUE INDEX edxml_outgoing_update_key ON edxml_outgoing (update_id, recipient)
    WHERE kind = 'update';
COMMENT ON COLUMN edxml_outgoing.kind IS
  'document: the package of an issued document (a replacement, BussinessDocType 3, for a recipient of the document it replaces); recall: its recall package (BussinessDocType 1, the reason in description); update: an update package (BussinessDocType 2, update_id); status: a status package (code)';

-- A replaced document's row no longer changes, whoever writes it, except
-- to be recalled (a replaced document may still be recalled).
CREATE FUNCTION _document_replaced() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF ioffice._restoring_dump() THEN
        RETURN NEW;
    END IF;
    IF (to_jsonb(NEW) - 'updated_at' - 'recalled_at') IS DISTINCT FROM
       (to_jsonb(OLD) - 'updated_at' - 'recalled_at') THEN
        RAISE EXCEPTION 'document % was replaced: it can no longer change', OLD.id
            USING ERRCODE = '55000',
                  DETAIL = 'A replaced document is kept as it was (Decree 30 art. 18.3); its replacement is the document in force.';
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION _document_replaced() FROM PUBLIC;
CREATE TRIGGER replaced_frozen BEFORE UPDATE ON document
    FOR EACH ROW WHEN (OLD.replaced_at IS NOT NULL) EXECUTE FUNCTION _document_replaced();

-- Who may replace or update an issued document: as recall(), its agency's
-- clerks, leaders and deputies, and its signer.
CREATE FUNCTION _may_change_issued(doc bigint, what text) RETURNS document
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me bigint := ioffice.actor();
    d ioffice.document%ROWTYPE;
BEGIN
    PERFORM ioffice._require_document(doc);
    SELECT * INTO d FROM ioffice.document WHERE id = doc;
    IF NOT (d.signer_id IS NOT DISTINCT FROM v_me
            OR EXISTS (SELECT 1 FROM ioffice.person_role r
                       WHERE r.person_id = v_me AND r.unit_id = d.agency_id
                         AND r.role IN ('clerk', 'leader', 'deputy'))) THEN
        RAISE EXCEPTION 'only a clerk or a leader of the issuing agency, or the signer, % document %',
            what, doc
            USING ERRCODE = '42501';
    END IF;
    IF d.direction <> 'outgoing' OR d.issued_at IS NULL OR d.number IS NULL THEN
        RAISE EXCEPTION 'document % is not an issued outgoing document', doc
            USING ERRCODE = '55000';
    END IF;
    IF d.recalled_at IS NOT NULL THEN
        RAISE EXCEPTION 'document % was recalled', doc USING ERRCODE = '55000';
    END IF;
    IF d.replaced_at IS NOT NULL THEN
        RAISE EXCEPTION 'document % was replaced', doc USING ERRCODE = '55000',
            HINT = 'Its replacement is the document in force.';
    END IF;
    RETURN d;
END
$$;
REVOKE ALL ON FUNCTION _may_change_issued(bigint, text) FROM PUBLIC;

CREATE FUNCTION _change_reason(reason text, what text) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF btrim(reason) IS NULL OR btrim(reason) = '' THEN
        RAISE EXCEPTION '% needs its reason', what USING ERRCODE = '22023';
    END IF;
    IF length(btrim(reason)) > 2000 THEN
        RAISE EXCEPTION 'the reason of % has at most 2000 characters', what USING ERRCODE = '22023';
    END IF;
    RETURN btrim(reason);
END
$$;
REVOKE ALL ON FUNCTION _change_reason(text, text) FROM PUBLIC;

-- The replacement link, set while the new document is not yet issued:
-- new_doc, an outgoing document of the same agency, replaces old_doc, an
-- issued one that is neither recalled nor replaced, for reason.  Set again,
-- it changes the link.  Acted on at the new document's issue.
CREATE FUNCTION replace_issued(old_doc bigint, new_doc bigint, reason text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me bigint := ioffice.actor();
    v_reason text;
    o ioffice.document%ROWTYPE;
    n record;
    v_other bigint;
BEGIN
    o := ioffice._may_change_issued(old_doc, 'replaces');
    v_reason := ioffice._change_reason(reason, 'a replacement');
    PERFORM ioffice._require_document(new_doc);
    SELECT * INTO n FROM ioffice.document WHERE id = new_doc FOR UPDATE;
    IF n.id = o.id THEN
        RAISE EXCEPTION 'document % cannot replace itself', old_doc USING ERRCODE = '22023';
    END IF;
    IF n.direction <> 'outgoing' OR n.agency_id <> o.agency_id THEN
        RAISE EXCEPTION 'document % is not an outgoing document of the agency that issued document %',
            new_doc, old_doc
            USING ERRCODE = '22023',
                  DETAIL = 'A document is replaced by a document of the same agency and form (Decree 30 art. 18.3).';
    END IF;
    IF n.number IS NOT NULL OR n.issued_at IS NOT NULL THEN
        RAISE EXCEPTION 'document % is issued already: a replacement is named while it is drafted', new_doc
            USING ERRCODE = '55000',
                  HINT = 'Draft the replacement, name what it replaces, then issue it.';
    END IF;
    SELECT r.document_id INTO v_other FROM ioffice.document_replacement r
    WHERE r.replaced_id = old_doc AND r.direction = 'sent' AND r.document_id <> new_doc;
    IF FOUND THEN
        RAISE EXCEPTION 'document % is being replaced by document % already', old_doc, v_other
            USING ERRCODE = '55000';
    END IF;

    PERFORM ioffice._engine_enter();
    INSERT INTO ioffice.document_replacement (direction, agency_id, document_id, replaced_id,
                                              reason, requested_by)
    VALUES ('sent', n.agency_id, new_doc, old_doc, v_reason, v_me)
    ON CONFLICT (document_id) WHERE direction = 'sent'
    DO UPDATE SET replaced_id = EXCLUDED.replaced_id, reason = EXCLUDED.reason,
                  requested_at = now(), requested_by = EXCLUDED.requested_by;
    PERFORM ioffice._audit('document', new_doc, 'replaces', n.state, n.state,
                           jsonb_build_object('replaced', old_doc, 'reason', v_reason));
    PERFORM ioffice._engine_leave();
END
$$;
COMMENT ON FUNCTION replace_issued(bigint, bigint, text) IS
  'Names, while new_doc is drafted, the issued document old_doc of the same agency it replaces (Decree 30 art. 18.3), with the reason; at new_doc''s issue old_doc is marked replaced (frozen) and its external recipients get new_doc as a replacement (edXML BussinessDocType 3); for the agency''s clerks and leaders and old_doc''s signer';
REVOKE ALL ON FUNCTION replace_issued(bigint, bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION replace_issued(bigint, bigint, text) TO ioffice_app, ioffice_admin;

-- The replacement issued: the old document marked replaced, its packages
-- not sent yet sent no more, the new document queued for every external
-- recipient of the old one (built as a replacement, _edxml_package).  The
-- old document recalled or replaced meanwhile stops the issue.
CREATE FUNCTION _replacement_issued() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    o record;
    n int;
BEGIN
    SELECT * INTO r FROM ioffice.document_replacement x
    WHERE x.document_id = NEW.id AND x.direction = 'sent' FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    SELECT * INTO o FROM ioffice.document WHERE id = r.replaced_id FOR UPDATE;
    IF o.recalled_at IS NOT NULL OR o.replaced_at IS NOT NULL THEN
        RAISE EXCEPTION 'document % replaces document %, which was % meanwhile', NEW.id, o.id,
            CASE WHEN o.recalled_at IS NOT NULL THEN 'recalled' ELSE 'replaced' END
            USING ERRCODE = '55000',
                  HINT = 'Name another document it replaces (replace_issued), or none.';
    END IF;
    PERFORM ioffice._engine_enter();
    UPDATE ioffice.document SET replaced_at = now(), updated_at = now() WHERE id = o.id;
    UPDATE ioffice.document_replacement SET applied_at = now() WHERE id = r.id;
    UPDATE ioffice.edxml_outgoing SET state = 'dead', last_error = 'replaced before it was sent'
    WHERE document_id = o.id AND kind = 'document' AND state = 'queued';
    INSERT INTO ioffice.edxml_outgoing (agency_id, document_id, recipient, kind)
    SELECT NEW.agency_id, NEW.id, x.recipient, 'document'
    FROM ioffice.edxml_outgoing x WHERE x.document_id = o.id AND x.kind = 'document'
    ON CONFLICT (document_id, recipient) WHERE kind = 'document' DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    PERFORM ioffice._audit('document', o.id, 'replaced', o.state, o.state,
                           jsonb_build_object('by', NEW.id, 'reason', r.reason));
    PERFORM ioffice._engine_leave();
    IF n > 0 THEN
        PERFORM ioffice._wake_worker();
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION _replacement_issued() FROM PUBLIC;
CREATE TRIGGER document_replacement_issued AFTER UPDATE OF state ON document
    FOR EACH ROW WHEN (NEW.direction = 'outgoing' AND NEW.state = 'issued'
                       AND OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION _replacement_issued();

-- A copy received: supersedes what the replaced document was here (old_copy
-- of the same agency), kept read-only with its history; its open tasks are
-- closed.  Returns whether it was superseded now.
CREATE FUNCTION _supersede_copy(old_copy bigint, new_copy bigint, reason text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE ioffice.document SET replaced_at = now(), updated_at = now()
    WHERE id = old_copy AND replaced_at IS NULL AND recalled_at IS NULL;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    UPDATE ioffice.task SET status = 'done', processed_at = now(), closed_by_action = 'replaced'
    WHERE document_id = old_copy AND status = 'open';
    PERFORM ioffice._audit('document', old_copy, 'superseded', NULL, NULL,
                           jsonb_build_object('by', new_copy, 'reason', reason));
    PERFORM ioffice._audit('document', new_copy, 'supersedes', NULL, NULL,
                           jsonb_build_object('replaced', old_copy, 'reason', reason));
    RETURN true;
END
$$;
REVOKE ALL ON FUNCTION _supersede_copy(bigint, bigint, text) FROM PUBLIC;

-- The replacement delivered to an agency of this database: the copy of the
-- replaced document there is superseded.
CREATE FUNCTION _replacement_delivered() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    v_old bigint;
BEGIN
    SELECT * INTO r FROM ioffice.document_replacement x
    WHERE x.document_id = NEW.source_document_id AND x.direction = 'sent';
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    SELECT c.id INTO v_old FROM ioffice.document c
    WHERE c.source_document_id = r.replaced_id AND c.agency_id = NEW.agency_id
      AND c.direction = 'incoming';
    PERFORM ioffice._engine_enter();
    INSERT INTO ioffice.document_replacement (direction, agency_id, document_id, replaced_id, reason,
                                              applied_at, answer_reason)
    VALUES ('received', NEW.agency_id, NEW.id, v_old, r.reason, now(),
            CASE WHEN v_old IS NULL THEN 'Không nhận được văn bản bị thay thế' END)
    ON CONFLICT DO NOTHING;
    IF v_old IS NOT NULL THEN
        PERFORM ioffice._supersede_copy(v_old, NEW.id, r.reason);
    END IF;
    PERFORM ioffice._engine_leave();
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION _replacement_delivered() FROM PUBLIC;
CREATE TRIGGER document_replacement_delivered AFTER INSERT ON document
    FOR EACH ROW WHEN (NEW.source_document_id IS NOT NULL AND NEW.direction = 'incoming')
    EXECUTE FUNCTION _replacement_delivered();

-- A replacement package (BussinessDocType 3) filed as new_copy: for each
-- DocumentId in its ReplacementInfoList, the copy received from the same
-- sender under it is superseded and 15 goes back; none received (or one
-- recalled or superseded already): 16 with the reason.  Called once per
-- package (_edxml_file files a package once).
CREATE FUNCTION _edxml_file_replace(p jsonb, new_copy bigint, agency bigint) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_sender text := p->'from'->>'organ_id';
    v_docid text := p->>'document_id';
    v_reason text := pg_catalog.left(coalesce(nullif(btrim(p->>'bussiness_doc_reason'), ''),
                                              'Thay thế văn bản'), 2000);
    v_old_id text;
    v_old bigint;
    v_refusal text;
BEGIN
    FOR v_old_id IN SELECT DISTINCT e->>'document_id'
                    FROM jsonb_array_elements(p->'replacements') e ORDER BY 1 LOOP
        SELECT r.document_id INTO v_old FROM ioffice.edxml_received r
        WHERE r.agency_id = agency AND r.sender_organ_id = v_sender
          AND r.edxml_document_id = v_old_id;
        v_refusal := CASE
            WHEN v_old IS NULL THEN
                format('Không nhận được văn bản %s: không có văn bản nào bị thay thế', v_old_id)
            WHEN NOT ioffice._supersede_copy(v_old, new_copy, v_reason) THEN
                format('Văn bản %s đã bị thu hồi hoặc thay thế trước đó', v_old_id) END;
        INSERT INTO ioffice.document_replacement (direction, agency_id, document_id, replaced_id,
                                                  party, replaced_edxml_document_id, reason,
                                                  applied_at, answer_reason)
        VALUES ('received', agency, new_copy, v_old, v_sender, v_old_id, v_reason,
                CASE WHEN v_refusal IS NULL THEN now() END, v_refusal);
        INSERT INTO ioffice.edxml_status (document_id, party_organ_id, edxml_document_id,
                                          direction, code, description)
        VALUES (new_copy, v_sender, v_docid, 'sent',
                CASE WHEN v_refusal IS NULL THEN '15' ELSE '16' END,
                coalesce(v_refusal, format('Đã thay thế văn bản %s', v_old_id)));
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION _edxml_file_replace(jsonb, bigint, bigint) FROM PUBLIC;

-- An update applied to a received copy: the due date (when due_changed)
-- and the receivers recorded.  Returns the changes (old and new values),
-- or NULL when the copy can no longer change (recalled, superseded).
CREATE FUNCTION _update_copy(copy bigint, due_changed boolean, due date, receivers jsonb,
                             own_code text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d record;
    v_changes jsonb := '{}';
BEGIN
    SELECT * INTO d FROM ioffice.document WHERE id = copy FOR UPDATE;
    IF d.recalled_at IS NOT NULL OR d.replaced_at IS NOT NULL THEN
        RETURN NULL;
    END IF;
    IF due_changed AND d.due_date IS DISTINCT FROM due THEN
        v_changes := jsonb_build_object('due_date', jsonb_build_object('old', d.due_date, 'new', due));
        UPDATE ioffice.document SET due_date = due, updated_at = now() WHERE id = copy;
    END IF;
    IF jsonb_array_length(coalesce(receivers, '[]')) > 0 THEN
        v_changes := v_changes || jsonb_build_object('receivers', receivers);
        IF EXISTS (SELECT 1 FROM jsonb_array_elements(receivers) e
                   WHERE e->>'type' = '0' AND e->>'organ_id' = own_code) THEN
            v_changes := v_changes || '{"removed_here": true}';
        END IF;
    END IF;
    RETURN v_changes;
END
$$;
REVOKE ALL ON FUNCTION _update_copy(bigint, boolean, date, jsonb, text) FROM PUBLIC;

-- Updates an issued outgoing document (edXML BussinessDocType 2): changes
-- {"due_date": "yyyy-mm-dd" | null, "add_recipients": [agency codes],
-- "remove_recipients": [agency codes]}, with a reason.  Returns the update.
CREATE FUNCTION update_issued(doc bigint, changes jsonb, reason text) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me bigint := ioffice.actor();
    v_reason text;
    d ioffice.document%ROWTYPE;
    v_key text;
    v_code text;
    v_due date;
    v_due_changed boolean := false;
    v_receivers jsonb := '[]';
    v_changes jsonb := '{}';
    v_current text[];
    v_update bigint;
    v_copy record;
    v_copy_changes jsonb;
    v_external int;
BEGIN
    d := ioffice._may_change_issued(doc, 'updates');
    v_reason := ioffice._change_reason(reason, 'an update');
    IF changes IS NULL OR jsonb_typeof(changes) <> 'object' OR changes = '{}' THEN
        RAISE EXCEPTION 'an update needs its changes: due_date, add_recipients, remove_recipients'
            USING ERRCODE = '22023';
    END IF;
    FOR v_key IN SELECT jsonb_object_keys(changes) LOOP
        IF v_key NOT IN ('due_date', 'add_recipients', 'remove_recipients') THEN
            RAISE EXCEPTION 'an update does not change "%"', pg_catalog.left(v_key, 60)
                USING ERRCODE = '22023',
                      HINT = 'An update (QCVN 102:2016) changes the due date and the receivers; an error in the content is corrected by a replacement (replace_issued).';
        END IF;
    END LOOP;
    PERFORM 1 FROM ioffice.document WHERE id = doc FOR UPDATE;
    IF changes ? 'due_date' THEN
        BEGIN
            v_due := (changes->>'due_date')::date;
        EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format THEN
            RAISE EXCEPTION 'due_date "%" is not a date', pg_catalog.left(changes->>'due_date', 60)
                USING ERRCODE = '22023';
        END;
        IF v_due IS DISTINCT FROM d.due_date THEN
            v_due_changed := true;
            v_changes := jsonb_build_object('due_date',
                                            jsonb_build_object('old', d.due_date, 'new', v_due));
        END IF;
    END IF;
    -- the external recipients now: those sent the document, less those an
    -- update removed since
    SELECT coalesce(array_agg(o.recipient), '{}') INTO v_current
    FROM ioffice.edxml_outgoing o
    WHERE o.document_id = doc AND o.kind = 'document'
      AND coalesce((SELECT e->>'type' FROM ioffice.document_update u,
                           jsonb_array_elements(u.changes->'receivers') e
                    WHERE u.document_id = doc AND u.direction = 'sent'
                      AND e->>'organ_id' = o.recipient
                    ORDER BY u.id DESC LIMIT 1), '1') = '1';
    FOR v_code IN SELECT e FROM jsonb_array_elements_text(
                      CASE WHEN jsonb_typeof(changes->'add_recipients') = 'array'
                           THEN changes->'add_recipients' ELSE '[]' END) e LOOP
        IF v_code !~ '^[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}$'
           OR EXISTS (SELECT 1 FROM ioffice.unit u WHERE u.code = v_code AND u.kind = 'agency') THEN
            RAISE EXCEPTION 'add_recipients: "%" is not the code of an agency outside this database',
                pg_catalog.left(v_code, 60)
                USING ERRCODE = '22023',
                      HINT = 'An update adds external agencies (QCVN 102:2016 codes such as 000.00.00.G22).';
        END IF;
        IF v_code = ANY (v_current) THEN
            RAISE EXCEPTION 'add_recipients: agency % is a recipient already', v_code
                USING ERRCODE = '22023';
        END IF;
        v_receivers := v_receivers || jsonb_build_object('type', '1', 'organ_id', v_code);
    END LOOP;
    FOR v_code IN SELECT e FROM jsonb_array_elements_text(
                      CASE WHEN jsonb_typeof(changes->'remove_recipients') = 'array'
                           THEN changes->'remove_recipients' ELSE '[]' END) e LOOP
        IF NOT (v_code = ANY (v_current)) THEN
            RAISE EXCEPTION 'remove_recipients: "%" is not an external recipient of document %',
                pg_catalog.left(v_code, 60), doc
                USING ERRCODE = '22023';
        END IF;
        v_receivers := v_receivers || jsonb_build_object('type', '0', 'organ_id', v_code);
    END LOOP;
    IF (changes ? 'add_recipients' AND jsonb_typeof(changes->'add_recipients') <> 'array')
       OR (changes ? 'remove_recipients' AND jsonb_typeof(changes->'remove_recipients') <> 'array') THEN
        RAISE EXCEPTION 'add_recipients and remove_recipients are arrays of agency codes'
            USING ERRCODE = '22023';
    END IF;
    IF jsonb_array_length(v_receivers) > 0 THEN
        v_changes := v_changes || jsonb_build_object('receivers', v_receivers);
    END IF;
    IF v_changes = '{}' THEN
        RAISE EXCEPTION 'the update of document % changes nothing', doc USING ERRCODE = '22023';
    END IF;

    PERFORM ioffice._engine_enter();
    IF v_due_changed THEN
        UPDATE ioffice.document SET due_date = v_due, updated_at = now() WHERE id = doc;
    END IF;
    INSERT INTO ioffice.document_update (direction, document_id, agency_id, reason, changes,
                                         requested_by)
    VALUES ('sent', doc, d.agency_id, v_reason, v_changes, v_me)
    RETURNING id INTO v_update;
    -- removed: their document package not sent yet is sent no more
    UPDATE ioffice.edxml_outgoing o SET state = 'dead', last_error = 'removed from the recipients'
    WHERE o.document_id = doc AND o.kind = 'document' AND o.state = 'queued'
      AND o.recipient IN (SELECT e->>'organ_id' FROM jsonb_array_elements(v_receivers) e
                          WHERE e->>'type' = '0');
    -- the update to every recipient it was sent to (the removed ones told)
    INSERT INTO ioffice.edxml_outgoing (agency_id, document_id, recipient, kind, description,
                                        edxml_document_id, update_id)
    SELECT d.agency_id, doc, r, 'update', v_reason, d.identifier, v_update
    FROM unnest(v_current) r;
    GET DIAGNOSTICS v_external = ROW_COUNT;
    -- added: the document itself, new to them
    INSERT INTO ioffice.edxml_outgoing (agency_id, document_id, recipient, kind)
    SELECT d.agency_id, doc, e->>'organ_id', 'document'
    FROM jsonb_array_elements(v_receivers) e WHERE e->>'type' = '1'
    ON CONFLICT (document_id, recipient) WHERE kind = 'document'
    DO UPDATE SET state = 'queued', attempts = 0, next_attempt_at = now(), last_error = NULL,
                  sent_at = NULL;
    -- copies in this database: the due date applied directly
    FOR v_copy IN SELECT c.id, c.agency_id FROM ioffice.document c
                  WHERE c.source_document_id = doc AND c.direction = 'incoming' ORDER BY c.id LOOP
        v_copy_changes := ioffice._update_copy(v_copy.id, v_due_changed, v_due, NULL, NULL);
        INSERT INTO ioffice.document_update (direction, document_id, agency_id, reason, changes,
                                             answer, answer_reason)
        VALUES ('received', v_copy.id, v_copy.agency_id, v_reason, coalesce(v_copy_changes, '{}'),
                CASE WHEN v_copy_changes IS NULL THEN 'refused' ELSE 'accepted' END,
                CASE WHEN v_copy_changes IS NULL THEN 'Văn bản đã bị thu hồi hoặc thay thế' END);
        PERFORM ioffice._audit('document', v_copy.id, 'update_received', NULL, NULL,
                               jsonb_build_object('from_document', doc, 'reason', v_reason,
                                                  'changes', v_copy_changes));
    END LOOP;
    PERFORM ioffice._audit('document', doc, 'update', d.state, d.state,
                           jsonb_build_object('reason', v_reason, 'changes', v_changes,
                                              'external', v_external));
    PERFORM ioffice._engine_leave();
    PERFORM ioffice._wake_worker();
    RETURN v_update;
END
$$;
COMMENT ON FUNCTION update_issued(bigint, jsonb, text) IS
  'Updates an issued outgoing document (edXML BussinessDocType 2), with a reason: changes {"due_date", "add_recipients", "remove_recipients"}; added agencies get the document, the others it was sent to an update package; copies in this database get the due date; the history kept (document_update, update_status); for the agency''s clerks and leaders and the signer. Returns the update';
REVOKE ALL ON FUNCTION update_issued(bigint, jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION update_issued(bigint, jsonb, text) TO ioffice_app, ioffice_admin;

-- An update package (BussinessDocType 2) read and verified, for the agency
-- it is addressed to: applied to the copy received from that sender under
-- that DocumentId (DocumentInfo 1: its DueDate; DocumentReceiver 1: the
-- ReceiverList recorded), the previous values kept, 13 recorded and 15
-- answered; none received, or a copy recalled or superseded: 16 with the
-- reason.  Twice: handled once (the update's content is its key).  Returns
-- the received copy, or NULL.
CREATE FUNCTION _edxml_file_update(p jsonb, package text, agency bigint, actor bigint) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_sender text := p->'from'->>'organ_id';
    v_docid text := p->>'document_id';
    v_reason text := pg_catalog.left(coalesce(nullif(btrim(p->>'bussiness_doc_reason'), ''),
                                              'Cập nhật văn bản'), 2000);
    v_receivers jsonb := CASE WHEN p->>'document_receiver' = '1' THEN coalesce(p->'receivers', '[]')
                              ELSE '[]' END;
    v_doc bigint;
    v_key bigint;
    v_changes jsonb;
    v_refusal text;
BEGIN
    SELECT r.document_id INTO v_doc FROM ioffice.edxml_received r
    WHERE r.agency_id = agency AND r.sender_organ_id = v_sender AND r.edxml_document_id = v_docid;
    PERFORM ioffice._engine_enter();
    INSERT INTO ioffice.document_update (direction, document_id, agency_id, party,
                                         edxml_document_id, package_key, reason, requested_by,
                                         answer, answer_reason)
    VALUES ('received', v_doc, agency, v_sender, v_docid,
            sha256(convert_to(jsonb_build_object('reason', v_reason,
                                                 'document_info', p->>'document_info',
                                                 'due_date', p->>'due_date',
                                                 'receivers', v_receivers)::text, 'UTF8')),
            v_reason, actor, 'accepted', NULL)
    ON CONFLICT DO NOTHING
    RETURNING id INTO v_key;
    IF v_key IS NULL THEN
        PERFORM ioffice._engine_leave();
        RETURN v_doc;
    END IF;
    IF v_doc IS NULL THEN
        v_refusal := 'Không nhận được văn bản này: không có gì để cập nhật';
    ELSE
        v_changes := ioffice._update_copy(v_doc, p->>'document_info' = '1',
                                          to_date(p->>'due_date', 'YYYY/MM/DD'), v_receivers,
                                          (SELECT u.code FROM ioffice.unit u WHERE u.id = agency));
        IF v_changes IS NULL THEN
            v_refusal := 'Văn bản đã bị thu hồi hoặc thay thế: không cập nhật được';
        END IF;
    END IF;
    UPDATE ioffice.document_update
    SET changes = coalesce(v_changes, '{}'),
        answer = CASE WHEN v_refusal IS NULL THEN 'accepted' ELSE 'refused' END,
        answer_reason = v_refusal
    WHERE id = v_key;
    IF v_doc IS NULL THEN
        INSERT INTO ioffice.edxml_outgoing (agency_id, recipient, kind, code, description,
                                            edxml_document_id)
        VALUES (agency, v_sender, 'status', '16', v_refusal, v_docid);
        PERFORM ioffice._wake_worker();
    ELSE
        INSERT INTO ioffice.edxml_status (document_id, party_organ_id, edxml_document_id,
                                          direction, code, description)
        VALUES (v_doc, v_sender, v_docid, 'received', '13', v_reason),
               (v_doc, v_sender, v_docid, 'sent', CASE WHEN v_refusal IS NULL THEN '15' ELSE '16' END,
                coalesce(v_refusal, 'Đã cập nhật'));
        PERFORM ioffice._audit('document', v_doc, 'update_received', NULL, NULL,
                               jsonb_build_object('sender', v_sender, 'document_id', v_docid,
                                                  'reason', v_reason, 'changes', v_changes,
                                                  'refused', v_refusal,
                                                  'signer', p->'signature'->>'subject'));
    END IF;
    PERFORM ioffice._engine_leave();
    RETURN v_doc;
END
$$;
REVOKE ALL ON FUNCTION _edxml_file_update(jsonb, text, bigint, bigint) FROM PUBLIC;

-- exchange_status, now with update packages (code 13, the reason in
-- description, package 'update') and replacements (package 'replace': the
-- new document's package to a recipient of the document it replaces).
CREATE OR REPLACE VIEW exchange_status AS
SELECT s.document_id AS document, s.party_organ_id AS party, s.edxml_document_id,
       s.direction, s.code, s.description, s.recorded_at, s.sent_at,
       CASE WHEN s.direction = 'sent' THEN 'status' END AS package,
       o.state AS delivery, o.last_error
FROM ioffice.edxml_status s
LEFT JOIN ioffice.edxml_outgoing o ON o.status_id = s.id
WHERE ioffice.can_see(s.document_id)
UNION ALL
SELECT o.document_id, o.recipient, d.identifier, 'sent',
       CASE WHEN o.kind IN ('recall', 'update') THEN '13' END,
       CASE WHEN o.kind IN ('recall', 'update') THEN o.description
            WHEN rp.id IS NOT NULL THEN 'Văn bản thay thế văn bản ' || od.identifier
            ELSE 'Văn bản điện tử' END,
       o.created_at, o.sent_at,
       CASE WHEN rp.id IS NOT NULL THEN 'replace' ELSE o.kind END, o.state, o.last_error
FROM ioffice.edxml_outgoing o JOIN ioffice.document d ON d.id = o.document_id
LEFT JOIN ioffice.document_replacement rp
       ON o.kind = 'document' AND rp.document_id = o.document_id AND rp.direction = 'sent'
      AND rp.applied_at IS NOT NULL
      AND EXISTS (SELECT 1 FROM ioffice.edxml_outgoing x
                  WHERE x.document_id = rp.replaced_id AND x.kind = 'document'
                    AND x.recipient = o.recipient)
LEFT JOIN ioffice.document od ON od.id = rp.replaced_id
WHERE o.kind IN ('document', 'recall', 'update') AND ioffice.can_see(o.document_id);
COMMENT ON VIEW exchange_status IS
  'edXML exchange per document and external agency: the document packages sent (code NULL; package replace for a replacement), recall and update packages (13, with the reason) and the status codes (01 arrived, 02 refused, 03 registered, 04 assigned, 05 in progress, 06 finished, 13 recall or update asked, 15 accepted, 16 refused) sent back and received, with times and delivery (queued, sent, dead); only documents the caller may see';

-- Updates of the documents the caller may see: an outgoing document's
-- update per external recipient (its answer: 15 accepted, 16 refused with
-- the reason, received after it; NULL while none came; recipient NULL: no
-- external recipient); a received copy's update with what changed (old and
-- new values) and its answer.
CREATE VIEW update_status AS
SELECT u.document_id AS document, u.id AS update, 'sent'::text AS direction, o.recipient AS party,
       u.reason, u.changes, u.requested_at,
       CASE a.code WHEN '15' THEN 'accepted' WHEN '16' THEN 'refused' END AS answer,
       a.description AS answer_reason, a.recorded_at AS answered_at, o.state AS delivery
FROM ioffice.document_update u
LEFT JOIN ioffice.edxml_outgoing o ON o.update_id = u.id AND o.kind = 'update'
LEFT JOIN LATERAL (SELECT x.code, x.description, x.recorded_at FROM ioffice.edxml_status x
                   WHERE x.document_id = u.document_id AND x.direction = 'received'
                     AND x.party_organ_id = o.recipient AND x.code IN ('15', '16')
                     AND x.recorded_at >= u.requested_at
                   ORDER BY x.id LIMIT 1) a ON true
WHERE u.direction = 'sent' AND ioffice.can_see(u.document_id)
UNION ALL
SELECT u.document_id, u.id, 'received', u.party, u.reason, u.changes, u.requested_at,
       u.answer, u.answer_reason, u.requested_at, NULL
FROM ioffice.document_update u
WHERE u.direction = 'received' AND u.document_id IS NOT NULL AND ioffice.can_see(u.document_id);
COMMENT ON VIEW update_status IS
  'Updates (edXML BussinessDocType 2) of the documents the caller may see: sent, per external recipient with its answer (15 accepted, 16 refused; NULL while pending); received, with what changed (old and new values) and the answer';
REVOKE ALL ON update_status FROM PUBLIC;
GRANT SELECT ON update_status TO ioffice_app, ioffice_admin, ioffice_reader;

-- Replacements of the documents the caller may see: an outgoing document
-- replacing an issued one, per external recipient of the replaced one
-- (its answer: 15, 16 with the reason; NULL while none came); a received
-- copy superseding an earlier one (replaced NULL: never received here,
-- answered 16) — the superseded copies a clerk lists.
CREATE VIEW replacement_status AS
SELECT r.document_id AS document, r.replaced_id AS replaced, 'sent'::text AS direction,
       o.recipient AS party, od.identifier AS replaced_document_id, r.reason, r.requested_at,
       r.applied_at,
       CASE a.code WHEN '15' THEN 'accepted' WHEN '16' THEN 'refused' END AS answer,
       a.description AS answer_reason
FROM ioffice.document_replacement r
JOIN ioffice.document od ON od.id = r.replaced_id
LEFT JOIN ioffice.edxml_outgoing o ON o.document_id = r.replaced_id AND o.kind = 'document'
LEFT JOIN LATERAL (SELECT x.code, x.description FROM ioffice.edxml_status x
                   WHERE x.document_id = r.document_id AND x.direction = 'received'
                     AND x.party_organ_id = o.recipient AND x.code IN ('15', '16')
                   ORDER BY x.id DESC LIMIT 1) a ON true
WHERE r.direction = 'sent' AND ioffice.can_see(r.document_id)
UNION ALL
SELECT r.document_id, r.replaced_id, 'received', r.party,
       coalesce(r.replaced_edxml_document_id, od.identifier), r.reason, r.requested_at,
       r.applied_at, CASE WHEN r.applied_at IS NULL THEN 'refused' ELSE 'accepted' END,
       r.answer_reason
FROM ioffice.document_replacement r
LEFT JOIN ioffice.document od ON od.id = r.replaced_id
WHERE r.direction = 'received' AND ioffice.can_see(r.document_id);
COMMENT ON VIEW replacement_status IS
  'Replacements (Decree 30 art. 18.3; edXML BussinessDocType 3) of the documents the caller may see: sent, per external recipient of the replaced document with its answer (15, 16); received, the copy superseded (replaced; NULL: never received, answered 16)';
REVOKE ALL ON replacement_status FROM PUBLIC;
GRANT SELECT ON replacement_status TO ioffice_app, ioffice_admin, ioffice_reader;

COMMENT ON FUNCTION edxml_receive(xml) IS
  'Files a received edXML package (signature verified against the trust anchors) into the addressed agency''s incoming queue and records the status 01 to send back; the same package twice gives the same document. A recall package (BussinessDocType 1) marks the copy received under its DocumentId as recall-requested (13) for answer_recall() and gives its id (NULL, answered 16 at once: never received here); an update (2) is applied to that copy (15; 16 when none) and gives its id; a replacement (3) is filed as a new document that supersedes the copy it names (15; 16 when none)';

-- ==== lead merge (edxml_speed, edxml_update, exchange_rest, appendix6_rest) ====
-- _edxml_package: the update id (edxml_update) and inline_files (edxml_speed)
-- in one function; the 3-argument form takes inline_files too.
CREATE FUNCTION _edxml_package(doc bigint, recipient text, clerk bigint, business int,
                               reason text, update_id bigint,
                               inline_files boolean DEFAULT true) RETURNS xml
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me bigint := clerk;
    d record;
    v_agency record;
    v_parent text;
    v_to_name text;
    v_clerk record;
    v_number text;
    v_notation text;
    v_priority text;
    v_files xml;
    v_manifest xml;
    v_places xml;
    v_changes jsonb;
    v_due date;
    v_extra xml;
    v_ns constant text := 'http://www.mic.gov.vn/TBT/QCVN_102_2016';
BEGIN
    IF business IS NULL OR business NOT IN (0, 1, 2, 3) THEN
        RAISE EXCEPTION 'BussinessDocType % is not built here', business USING ERRCODE = '22023';
    END IF;
    SELECT * INTO d FROM ioffice.document WHERE id = doc;
    IF d.direction IS DISTINCT FROM 'outgoing' OR d.issued_at IS NULL OR d.number IS NULL THEN
        RAISE EXCEPTION 'document % is not an issued outgoing document', doc
            USING ERRCODE = '55000';
    END IF;
    SELECT u.code, u.name, u.parent_id INTO v_agency FROM ioffice.unit u WHERE u.id = d.agency_id;
    v_due := d.due_date;
    IF business = 2 THEN
        SELECT x.changes INTO v_changes FROM ioffice.document_update x
        WHERE x.id = update_id AND x.document_id = doc AND x.direction = 'sent';
        IF NOT FOUND THEN
            RAISE EXCEPTION 'document % has no update %', doc, update_id USING ERRCODE = '42704';
        END IF;
        IF v_changes ? 'due_date' THEN
            v_due := (v_changes->'due_date'->>'new')::date;
        END IF;
        v_extra := xmlelement(name "BussinessDocumentInfo",
            xmlelement(name "DocumentInfo", CASE WHEN v_changes ? 'due_date' THEN '1' ELSE '0' END),
            xmlelement(name "DocumentReceiver", CASE WHEN v_changes ? 'receivers' THEN '1' ELSE '0' END),
            xmlelement(name "ReceiverList",
                (SELECT xmlagg(xmlelement(name "Receiver",
                                   xmlelement(name "ReceiverType", e->>'type'),
                                   xmlelement(name "OrganId", e->>'organ_id')) ORDER BY o)
                 FROM jsonb_array_elements(v_changes->'receivers') WITH ORDINALITY AS r(e, o))));
    ELSIF business = 3 THEN
        SELECT xmlagg(xmlelement(name "ReplacementInfo",
                          xmlelement(name "DocumentId", od.identifier),
                          xmlelement(name "OrganIdList", xmlelement(name "OrganId", recipient)))
                      ORDER BY r.id)
          INTO v_extra
        FROM ioffice.document_replacement r JOIN ioffice.document od ON od.id = r.replaced_id
        WHERE r.document_id = doc AND r.direction = 'sent';
        IF v_extra IS NULL THEN
            RAISE EXCEPTION 'document % replaces no document', doc USING ERRCODE = '55000';
        END IF;
        v_extra := xmlelement(name "ReplacementInfoList", v_extra);
    END IF;
    IF v_agency.code IS NULL THEN
        RAISE EXCEPTION 'edXML field From/OrganId: the issuing agency has no agency code'
            USING ERRCODE = '22023',
                  HINT = 'Give the agency its QCVN 102:2016 code (unit.code).';
    END IF;
    SELECT a.name INTO v_parent FROM ioffice.unit a
    WHERE a.id = (SELECT p.agency_id FROM ioffice.unit p WHERE p.id = v_agency.parent_id);
    SELECT u.name INTO v_to_name FROM ioffice.unit u WHERE u.code = recipient AND u.kind = 'agency';
    SELECT p.full_name, p.phone, p.email, un.name AS unit_name INTO v_clerk
    FROM ioffice.person p JOIN ioffice.unit un ON un.id = p.unit_id WHERE p.id = v_me;
    -- the identifier's "number/notation" (01/UBND-VP): the number as it
    -- writes it, and the notation after it
    v_number := split_part(split_part(d.identifier, ',', 3), '/', 1);
    v_notation := substr(split_part(d.identifier, ',', 3), length(v_number) + 2);
    v_priority := CASE d.urgency WHEN 'normal' THEN '0' WHEN 'urgent' THEN '1'
                                 WHEN 'very_urgent' THEN '2' WHEN 'flash' THEN '3'
                                 ELSE '4' END;

    PERFORM ioffice._edxml_limit('From/OrganId', v_agency.code, 13),
            ioffice._edxml_limit('To/OrganId', recipient, 13),
            ioffice._edxml_limit('Code/CodeNumber', v_number, 11),
            ioffice._edxml_limit('Code/CodeNotation', v_notation, 30),
            ioffice._edxml_limit('Subject', d.abstract, 500),
            ioffice._edxml_limit('DocumentId', d.identifier, 100);

    SELECT xmlagg(xmlelement(name "Reference",
                      xmlelement(name "ContentId", 'cid:' || f.n),
                      xmlelement(name "ContentType", f.content_type),
                      xmlelement(name "Description", f.name),
                      xmlelement(name "AttachmentName", f.name)) ORDER BY f.n),
           xmlagg(xmlelement(name "Attachment",
                      xmlelement(name "ContentId", 'cid:' || f.n),
                      xmlelement(name "AttachmentName", f.name),
                      xmlelement(name "Description", f.name),
                      xmlelement(name "ContentType", f.content_type),
                      xmlelement(name "ContentTransferEncoded",
                                 CASE WHEN inline_files THEN encode(f.content, 'base64') ELSE '' END))
                  ORDER BY f.n)
      INTO v_manifest, v_files
    FROM (SELECT row_number() OVER (ORDER BY fl.id) AS n, fl.name, fl.content,
                 CASE fl.kind WHEN 'pdf' THEN 'application/pdf'
                      WHEN 'docx' THEN 'application/vnd.openxmlformats-officedocument.wordprocessingml.document'
                      WHEN 'xlsx' THEN 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet'
                      WHEN 'doc' THEN 'application/msword'
                      WHEN 'xls' THEN 'application/vnd.ms-excel'
                      WHEN 'zip' THEN 'application/zip'
                      ELSE 'application/octet-stream' END AS content_type
          FROM ioffice.file fl
          WHERE fl.document_id = doc AND fl.superseded_at IS NULL AND fl.removed_at IS NULL
            AND business IN (0, 3)) f;

    SELECT xmlagg(xmlelement(name "Place", coalesce(e->>'name', e->>'place')) ORDER BY o)
      INTO v_places
    FROM jsonb_array_elements(d.recipients) WITH ORDINALITY AS r(e, o);

    RETURN xmlelement(name "edXML", xmlattributes(v_ns AS xmlns),
        xmlelement(name "edXMLEnvelope",
            xmlelement(name "edXMLHeader",
                xmlelement(name "MessageHeader",
                    xmlelement(name "From",
                        xmlelement(name "OrganId", v_agency.code),
                        xmlelement(name "OrganizationInCharge", coalesce(v_parent, v_agency.name)),
                        xmlelement(name "OrganName", v_agency.name)),
                    xmlelement(name "To",
                        xmlelement(name "OrganId", recipient),
                        xmlforest(v_to_name AS "OrganName")),
                    xmlelement(name "Code",
                        xmlelement(name "CodeNumber", v_number),
                        xmlelement(name "CodeNotation", v_notation)),
                    xmlelement(name "PromulgationInfo",
                        xmlelement(name "Place", v_agency.name),
                        xmlelement(name "PromulgationDate", ioffice._edxml_date(d.issued_on))),
                    xmlelement(name "DocumentType",
                        xmlelement(name "Type", '1'),
                        xmlelement(name "TypeName", coalesce(d.doc_type_name, d.doc_type))),
                    xmlelement(name "Subject", d.abstract),
                    xmlelement(name "Content", d.abstract),
                    xmlelement(name "SignerInfo",
                        xmlforest((SELECT p.position FROM ioffice.person p WHERE p.id = d.signer_id)
                                      AS "Position",
                                  d.signer_name AS "FullName")),
                    xmlforest(ioffice._edxml_date(v_due) AS "DueDate"),
                    xmlelement(name "ToPlaces", v_places),
                    xmlelement(name "OtherInfo",
                        xmlelement(name "Priority", v_priority),
                        xmlforest(d.copies AS "PromulgationAmount", d.page_count AS "PageAmount")),
                    xmlelement(name "SteeringType", '1'),
                    xmlelement(name "DocumentId", d.identifier)),
                xmlelement(name "TraceHeaderList",
                    xmlelement(name "TraceHeader",
                        xmlelement(name "OrganId", v_agency.code),
                        xmlelement(name "Timestamp",
                            to_char(now() AT TIME ZONE ioffice.timezone(), 'YYYY/MM/DD HH24:MI:SS'))),
                    xmlelement(name "Bussiness",
                        xmlelement(name "DocumentId", d.identifier),
                        xmlelement(name "BussinessDocType", business::text),
                        xmlelement(name "BussinessDocReason",
                                   CASE WHEN business = 0 THEN 'Văn bản điện tử mới'
                                        ELSE pg_catalog.left(reason, 2000) END),
                        CASE WHEN business = 2 THEN v_extra END,
                        xmlelement(name "Paper", '0'),
                        xmlelement(name "StaffInfo",
                            xmlforest(v_clerk.unit_name AS "Department", v_clerk.full_name AS "Staff",
                                      v_clerk.email AS "Email", v_clerk.phone AS "Mobile")),
                        CASE WHEN business = 3 THEN v_extra END))),
            xmlelement(name "edXMLBody",
                xmlelement(name "edXMLManifest", xmlattributes('1.0' AS version), v_manifest))),
        xmlelement(name "AttachmentEncoded", v_files));
END
$$;
REVOKE ALL ON FUNCTION _edxml_package(bigint, text, bigint, int, text, bigint, boolean) FROM PUBLIC;
DROP FUNCTION _edxml_package(bigint, text, bigint);
CREATE FUNCTION _edxml_package(doc bigint, recipient text, clerk bigint,
                               inline_files boolean DEFAULT true) RETURNS xml
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_reason text;
BEGIN
    SELECT r.reason INTO v_reason
    FROM ioffice.document_replacement r
    JOIN ioffice.edxml_outgoing o ON o.document_id = r.replaced_id AND o.kind = 'document'
                                 AND o.recipient = _edxml_package.recipient
    WHERE r.document_id = doc AND r.direction = 'sent' AND r.applied_at IS NOT NULL
    LIMIT 1;
    RETURN ioffice._edxml_package(doc, recipient, clerk, CASE WHEN FOUND THEN 3 ELSE 0 END,
                                  v_reason, NULL, inline_files);
END
$$;
REVOKE ALL ON FUNCTION _edxml_package(bigint, text, bigint, boolean) FROM PUBLIC;
DROP FUNCTION _edxml_package(bigint, text, bigint, int, text, boolean);
DROP FUNCTION _edxml_package(bigint, text, bigint, int, text, bigint);
-- case_file_pdf_result: cancelled (appendix6_rest) and destroyed by a recall (exchange_rest)
CREATE OR REPLACE FUNCTION case_file_pdf_result(job bigint) RETURNS bytea
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor bigint := ioffice.actor();
    v_job ioffice.case_file_pdf_job;
BEGIN
    IF case_file_pdf_result.job IS NULL THEN
        RAISE EXCEPTION 'case_file_pdf_result needs a job' USING ERRCODE = '22023';
    END IF;
    SELECT * INTO v_job FROM ioffice.case_file_pdf_job j
     WHERE j.id = case_file_pdf_result.job AND j.requested_by = v_actor;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown case file PDF %', case_file_pdf_result.job USING ERRCODE = '42704';
    END IF;
    IF v_job.cancelled_at IS NOT NULL THEN
        RAISE EXCEPTION 'the PDF of case file % was cancelled', v_job.case_file_id
            USING ERRCODE = '55000';
    END IF;
    IF v_job.done_at IS NULL THEN
        RAISE EXCEPTION 'the PDF of case file % is not made yet', v_job.case_file_id
            USING ERRCODE = '55000', HINT = 'The worker makes it; try again later.';
    END IF;
    IF v_job.error IS NOT NULL THEN
        RAISE EXCEPTION 'the PDF of case file % could not be made', v_job.case_file_id
            USING ERRCODE = '55000', DETAIL = v_job.error;
    END IF;
    -- a document in it destroyed by a recall since (Decree 30 art. 18.4b)
    -- is not handed out again inside the PDF
    IF EXISTS (SELECT 1 FROM jsonb_array_elements(v_job.contents->'rows') r(v),
                             jsonb_array_elements_text(r.v->'files') x(id)
                        JOIN ioffice.file f ON f.id = x.id::bigint
                WHERE f.erased_at IS NOT NULL) THEN
        RAISE EXCEPTION 'the PDF of case file % holds a document destroyed by a recall since it was made',
              v_job.case_file_id
            USING ERRCODE = '55000',
                  DETAIL = 'A received document whose recall its clerk accepted is destroyed (Decree 30 art. 18.4b), and with it every copy of its bytes.',
                  HINT = 'Ask for the case file''s PDF again (case_file_pdf): it leaves the destroyed document out.';
    END IF;
    PERFORM ioffice._log_access('export', NULL, NULL, v_job.case_file_id, 'pdf');
    RETURN v_job.content;
END
$$;

-- edxml_trust: the signer of a received package bound to its From/OrganId
-- (exchange_seal, add_exchange_seal), its certificate checked against the
-- revocation lists (the helper, given _edxml_trust())
-- ---------------------------------------------------------------------------
-- edXML: who may sign for an agency, and revoked signers
-- ---------------------------------------------------------------------------

-- A package's signature proves which certificate signed it; the package
-- says which agency sent it (MessageHeader/From/OrganId).  Nothing in a
-- certificate names a QCVN 102:2016 agency code, so the binding is
-- registered: a package from agency X is accepted only when its signer's
-- certificate is a seal registered for X here — a row of exchange_seal
-- (the external agencies' seals, added by a DBA from the certificate the
-- agency gives), or the organisation certificate of this database's own
-- agency with that code.  Anything else (a valid certificate of agency Y
-- signing a package From X, any certificate of an agency not registered)
-- is refused: by the axis with 02 and the reason, by edxml_receive() with
-- the error.
CREATE TABLE exchange_seal (
    id           bigserial PRIMARY KEY,
    organ_id     text NOT NULL CHECK (organ_id ~ '^[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}$'),
    pem          text NOT NULL,
    subject      text NOT NULL,
    issuer       text NOT NULL,
    serial       text NOT NULL,
    not_after    timestamptz NOT NULL,
    -- SHA-256 of the certificate's DER, as certificate.fingerprint and the
    -- edXML helper's reading ("signature"->"fingerprint")
    fingerprint  bytea NOT NULL CHECK (length(fingerprint) = 32),
    added_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organ_id, fingerprint)
);
CREATE INDEX exchange_seal_fingerprint_idx ON exchange_seal (fingerprint);
COMMENT ON TABLE exchange_seal IS
  'The seal certificates other agencies sign their edXML packages with, per agency code (From/OrganId): a package is accepted only when signed by a seal registered for the agency it says it comes from';
SELECT pg_catalog.pg_extension_config_dump('exchange_seal', '');
SELECT pg_catalog.pg_extension_config_dump('exchange_seal_id_seq', '');
REVOKE ALL ON exchange_seal FROM PUBLIC;
GRANT SELECT ON exchange_seal TO PUBLIC;
GRANT DELETE ON exchange_seal TO ioffice_admin;
-- whom packages are believed from is a DBA's decision on the record
CREATE TRIGGER audit_direct AFTER INSERT OR UPDATE OR DELETE ON exchange_seal
    FOR EACH ROW WHEN (_outside_engine()) EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct_truncate AFTER TRUNCATE ON exchange_seal
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_direct();

CREATE FUNCTION add_exchange_seal(agency text, pem text) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_info record;
    v_id bigint;
BEGIN
    IF agency IS NULL OR agency !~ '^[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}$' THEN
        RAISE EXCEPTION 'agency "%" is not an agency code of the form DDD.DD.DD.LDD',
            pg_catalog.left(agency, 60)
            USING ERRCODE = '22023',
                  HINT = 'QCVN 102:2016 agency identifiers (OrganId) look like 000.00.00.G22.';
    END IF;
    IF pem IS NULL THEN
        RAISE EXCEPTION 'a seal needs its certificate''s PEM text' USING ERRCODE = '22023';
    END IF;
    v_info := ioffice._x509_info(pem);
    IF v_info.is_ca THEN
        RAISE EXCEPTION 'a CA certificate is not an agency''s seal'
            USING ERRCODE = '22023',
                  HINT = 'Give the certificate the agency signs its packages with; its CA goes to add_trust_anchor.';
    END IF;
    PERFORM ioffice._engine_enter();
    INSERT INTO ioffice.exchange_seal (organ_id, pem, subject, issuer, serial, not_after, fingerprint)
    VALUES (agency, pem, v_info.subject, v_info.issuer, v_info.serial, v_info.not_after,
            v_info.fingerprint)
    ON CONFLICT (organ_id, fingerprint) DO UPDATE SET pem = EXCLUDED.pem
    RETURNING id INTO v_id;
    PERFORM ioffice._audit('exchange_seal', v_id, 'add', NULL, NULL,
                           jsonb_build_object('agency', agency, 'subject', v_info.subject,
                                              'serial', v_info.serial,
                                              'not_after', v_info.not_after));
    PERFORM ioffice._engine_leave();
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION add_exchange_seal(text, text) IS
  'Registers the seal certificate another agency (by its code) signs its edXML packages with; packages from that agency signed by any other certificate are refused';
REVOKE ALL ON FUNCTION add_exchange_seal(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION add_exchange_seal(text, text) TO ioffice_admin;

-- What the edXML helper checks a package's signature against: the trust
-- anchors and the revocation lists, the ones verify() uses for PDFs.
CREATE FUNCTION _edxml_trust() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
SELECT coalesce(string_agg(x.pem, E'\n' ORDER BY x.o, x.id), '')
FROM (SELECT 1 AS o, t.id, t.pem FROM ioffice.trust_anchor t
      UNION ALL
      SELECT 2, c.id, c.pem FROM ioffice.crl c) x
$$;
REVOKE ALL ON FUNCTION _edxml_trust() FROM PUBLIC;

-- The helper's reading p, its signature judged valid by the helper (chain,
-- revocation), and now bound to the agency it says it comes from: still
-- valid only when the signer's certificate is a seal registered for
-- From/OrganId (exchange_seal, or this database's own agency's
-- organisation certificate); otherwise 'invalid' with the reason.
CREATE FUNCTION _edxml_signer_check(p jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_from text := p->'from'->>'organ_id';
    v_hex text := p->'signature'->>'fingerprint';
    v_fp bytea;
BEGIN
    IF p IS NULL OR p ? 'error' OR p->'signature'->>'status' IS DISTINCT FROM 'valid' THEN
        RETURN p;
    END IF;
    IF v_hex ~ '^[0-9a-f]{64}$' THEN
        v_fp := decode(v_hex, 'hex');
    END IF;
    IF v_fp IS NOT NULL AND v_from IS NOT NULL
       AND (EXISTS (SELECT 1 FROM ioffice.exchange_seal s
                    WHERE s.organ_id = v_from AND s.fingerprint = v_fp)
            OR EXISTS (SELECT 1 FROM ioffice.certificate c
                       JOIN ioffice.unit u ON u.id = c.agency_id AND u.kind = 'agency'
                       WHERE c.kind = 'organisation' AND u.code = v_from
                         AND c.fingerprint = v_fp)) THEN
        RETURN p;
    END IF;
    RETURN jsonb_set(jsonb_set(p, '{signature,status}', '"invalid"'), '{signature,reason}',
                     to_jsonb(format('the signer (%s) is not a seal registered for agency %s, which From/OrganId names',
                                     coalesce(pg_catalog.left(p->'signature'->>'subject', 200),
                                              'no certificate'),
                                     coalesce(pg_catalog.left(v_from, 60), '(none)'))));
END
$$;
REVOKE ALL ON FUNCTION _edxml_signer_check(jsonb) FROM PUBLIC;

CREATE OR REPLACE FUNCTION _edxml_receive(package text) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me bigint := ioffice.actor();
    v_text text := package;
    p jsonb;
    v_agency bigint;
BEGIN
    IF package IS NULL THEN
        RAISE EXCEPTION 'an edXML package is required' USING ERRCODE = '22023';
    END IF;
    -- the anchors and revocation lists; the signer bound to From/OrganId
    -- (99_edxml_trust.sql)
    p := ioffice._edxml_signer_check(ioffice._edxml_read(v_text, ioffice._edxml_trust()));
    IF p ? 'error' THEN
        RAISE EXCEPTION 'edXML package refused: %', p->>'error'
            USING ERRCODE = '22023', DETAIL = format('Field %s.', p->>'field');
    END IF;
    -- the first addressee that is an agency of this database
    SELECT u.id INTO v_agency
    FROM jsonb_array_elements(p->'to') WITH ORDINALITY AS t(e, o)
    JOIN ioffice.unit u ON u.code = t.e->>'organ_id' AND u.kind = 'agency'
    ORDER BY t.o LIMIT 1;
    IF v_agency IS NULL THEN
        RAISE EXCEPTION 'edXML package refused: it is addressed to no agency of this database'
            USING ERRCODE = '22023',
                  DETAIL = format('Field To/OrganId: %s.',
                                  pg_catalog.left((SELECT string_agg(t.e->>'organ_id', ', ')
                                                   FROM jsonb_array_elements(p->'to') t(e)), 60));
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ioffice.person_role r
                   WHERE r.person_id = v_me AND r.role = 'clerk' AND r.unit_id = v_agency) THEN
        RAISE EXCEPTION 'only a clerk of the agency it is addressed to receives an edXML package'
            USING ERRCODE = '42501';
    END IF;
    RETURN ioffice._edxml_file(p, v_text, v_agency, v_me);
END
$$;

CREATE OR REPLACE FUNCTION _edxml_axis_file(package text, axis bigint) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p jsonb;
    v_axis_agency bigint;
    v_agency bigint;
    v_id bigint;
    v_reason text;
    v_detail text;
    v_answered boolean := false;
BEGIN
    SELECT a.agency_id INTO v_axis_agency FROM ioffice.exchange_axis a WHERE a.id = axis;
    IF package IS NULL OR v_axis_agency IS NULL THEN
        RAISE EXCEPTION 'an edXML package and an axis are required' USING ERRCODE = '22023';
    END IF;
    -- the anchors and revocation lists; the signer bound to From/OrganId
    -- (99_edxml_trust.sql)
    p := ioffice._edxml_signer_check(ioffice._edxml_read(package, ioffice._edxml_trust()));
    IF p ? 'error' THEN
        -- not read at all: no sender to answer; the axis is told (fail)
        v_reason := format('%s (field %s)', p->>'error', p->>'field');
        PERFORM ioffice._edxml_note_refused(axis, v_axis_agency, NULL, package, v_reason, false);
        RETURN jsonb_build_object('result', 'refused', 'reason', v_reason);
    END IF;
    -- a signer whose revocation is unknown (no current list of its issuer
    -- registered here) is this side's missing list, not the package's
    -- fault: not refused (a 02 tells the sender the package was bad) but
    -- left on the axis unacknowledged, read again at each poll until a DBA
    -- registers a current list (add_crl), then filed or refused for good
    IF p->'signature'->>'status' IS DISTINCT FROM 'valid'
       AND p->'signature'->>'reason' LIKE 'revocation unknown%' THEN
        RAISE EXCEPTION 'edXML package left on the axis: the revocation of its signer is unknown'
            USING ERRCODE = '55000', DETAIL = p->'signature'->>'reason',
                  HINT = 'Register a current revocation list of the signer''s issuer with add_crl(); the package is read again at the next poll.';
    END IF;
    BEGIN
        IF p->>'kind' = 'status' THEN
            IF p->'signature'->>'status' <> 'valid' THEN
                RAISE EXCEPTION 'edXML status package refused: its signature is %',
                    p->'signature'->>'status'
                    USING ERRCODE = '42501', DETAIL = coalesce(p->'signature'->>'reason', '');
            END IF;
            SELECT d.id INTO v_id FROM ioffice.document d
            JOIN ioffice.unit u ON u.id = d.agency_id
            WHERE d.identifier = p->'response_for'->>'document_id'
              AND u.code = p->'response_for'->>'organ_id' AND d.direction = 'outgoing';
            IF v_id IS NULL THEN
                RAISE EXCEPTION 'edXML status package refused: it answers no document of this database'
                    USING ERRCODE = '22023',
                          DETAIL = format('Field ResponseFor/DocumentId: %s.',
                                          pg_catalog.left(p->'response_for'->>'document_id', 60));
            END IF;
            -- only an agency the document was addressed to answers it; in
            -- any state of the send: the axis may have taken a package
            -- whose answer the sender missed (a timeout), and the 01 of
            -- a row still queued must not be refused and lost
            IF NOT EXISTS (SELECT 1 FROM ioffice.edxml_outgoing o
                           WHERE o.document_id = v_id AND o.kind = 'document'
                             AND o.recipient = p->'from'->>'organ_id') THEN
                RAISE EXCEPTION 'edXML status package refused: the document was not sent to its sender'
                    USING ERRCODE = '42501',
                          DETAIL = format('Field From/OrganId: %s.',
                                          pg_catalog.left(p->'from'->>'organ_id', 60));
            END IF;
            PERFORM ioffice._engine_enter();
            INSERT INTO ioffice.edxml_status (document_id, party_organ_id, edxml_document_id,
                                              direction, code, description)
            SELECT v_id, p->'from'->>'organ_id', p->'response_for'->>'document_id', 'received',
                   p->>'status_code', pg_catalog.left(p->>'description', 2000)
            WHERE NOT EXISTS (
                SELECT 1 FROM ioffice.edxml_status s
                WHERE s.document_id = v_id AND s.direction = 'received'
                  AND s.party_organ_id = p->'from'->>'organ_id' AND s.code = p->>'status_code'
                  AND s.description IS NOT DISTINCT FROM pg_catalog.left(p->>'description', 2000));
            PERFORM ioffice._engine_leave();
            RETURN jsonb_build_object('result', 'status', 'document', v_id, 'code', p->>'status_code');
        END IF;
        SELECT u.id INTO v_agency
        FROM jsonb_array_elements(p->'to') WITH ORDINALITY AS t(e, o)
        JOIN ioffice.unit u ON u.code = t.e->>'organ_id' AND u.kind = 'agency'
        ORDER BY (u.id = v_axis_agency) DESC, t.o LIMIT 1;
        IF v_agency IS NULL THEN
            RAISE EXCEPTION 'edXML package refused: it is addressed to no agency of this database'
                USING ERRCODE = '22023';
        END IF;
        v_id := ioffice._edxml_file(p, package, v_agency, NULL);
        RETURN jsonb_build_object('result', 'filed', 'document', v_id);
    -- the package's own data at fault (classes 22 and 23: a bad value or
    -- cast, a constraint) is a refusal, not an error retried at every poll
    EXCEPTION WHEN data_exception OR integrity_constraint_violation OR insufficient_privilege THEN
        GET STACKED DIAGNOSTICS v_reason = MESSAGE_TEXT, v_detail = PG_EXCEPTION_DETAIL;
    END;
    v_reason := pg_catalog.left(v_reason || coalesce(' ' || nullif(v_detail, ''), ''), 2000);
    -- answered when the 02 can be addressed (recipient, DocumentId that fit)
    IF p->>'kind' = 'document' AND length(p->'from'->>'organ_id') BETWEEN 1 AND 13
       AND coalesce(length(p->>'document_id'), 0) <= 100 THEN
        INSERT INTO ioffice.edxml_outgoing (agency_id, recipient, kind, code, description,
                                            edxml_document_id)
        VALUES (v_axis_agency, p->'from'->>'organ_id', 'status', '02', v_reason,
                p->>'document_id');
        v_answered := true;
    END IF;
    PERFORM ioffice._edxml_note_refused(axis, v_axis_agency, p, package, v_reason, v_answered);
    RETURN jsonb_build_object('result', 'refused', 'reason', v_reason);
END
$$;

-- ==== appendix6_more: the access log's digest (tamper evidence), _log_report_export's bounded params ====

-- The export of a register or a report (register_export, followup_export,
-- processing_report_export, case_file_list_export) by a person: one row, no
-- document (the file is a list, as a list's view is not logged per
-- document), detail '<report>:<format>' as the search exports' rows say
-- 'search:<format>', and in params what was asked (the register or agency,
-- the year or the dates) and how many rows the file held.  The report
-- functions but register_export are SECURITY INVOKER (their views' row-level
-- security is the caller's), so this is callable by anyone, as
-- _log_case_file_export is: it writes only under the caller's own name,
-- only a report it knows, in a format the exports write.
CREATE OR REPLACE FUNCTION _log_report_export(report text, format text, params jsonb) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_allowed text[];
    v_unknown text;
BEGIN
    IF report IS NULL OR report NOT IN ('register', 'followup', 'processing_report', 'case_file_list') THEN
        RAISE EXCEPTION 'unknown report "%"', pg_catalog.left(report, 60) USING ERRCODE = '22023';
    END IF;
    IF format IS NULL OR format NOT IN ('xlsx', 'csv') THEN
        RAISE EXCEPTION 'unknown format "%" of an export', pg_catalog.left(format, 60)
            USING ERRCODE = '22023';
    END IF;
    IF params IS NULL OR jsonb_typeof(params) <> 'object' THEN
        RAISE EXCEPTION 'the parameters of an export are a JSON object' USING ERRCODE = '22023';
    END IF;
    -- bounded: what the export functions pass (extension/register_export.c,
    -- report_export.c), a few scalars, and no more; a row of the log is
    -- kept for ever and anyone may call this
    IF octet_length(params::text) > 1024 THEN
        RAISE EXCEPTION 'the parameters of an export are too long (% bytes)', octet_length(params::text)
            USING ERRCODE = '54000', DETAIL = 'At most 1024 bytes of JSON.';
    END IF;
    v_allowed := CASE report
                     WHEN 'register' THEN ARRAY['register', 'agency', 'direction', 'code', 'year', 'rows']
                     WHEN 'processing_report' THEN ARRAY['direction', 'from', 'to', 'rows']
                     ELSE ARRAY['agency', 'year', 'rows'] END;
    SELECT k INTO v_unknown FROM jsonb_object_keys(params) k WHERE k <> ALL (v_allowed) ORDER BY k LIMIT 1;
    IF v_unknown IS NOT NULL THEN
        RAISE EXCEPTION 'unknown parameter "%" of the export of a %', pg_catalog.left(v_unknown, 60), report
            USING ERRCODE = '22023', DETAIL = format('Known: %s.', array_to_string(v_allowed, ', '));
    END IF;
    IF EXISTS (SELECT 1 FROM jsonb_each(params) e
                WHERE jsonb_typeof(e.value) NOT IN ('number', 'string', 'null')
                   OR (jsonb_typeof(e.value) = 'string' AND char_length(e.value #>> '{}') > 100)) THEN
        RAISE EXCEPTION 'the parameters of an export are numbers, dates or short texts'
            USING ERRCODE = '22023', DETAIL = 'No object, array or boolean; texts of at most 100 characters.';
    END IF;
    INSERT INTO ioffice.access_log (person_id, action, detail, params)
    VALUES (ioffice.actor(), 'export', report || ':' || format, params);
END
$$;

-- ---------------------------------------------------------------------------
-- The access log made tamper-evident (issue 19), without a cost to the views
-- that write it: no hash per row, no chain lock at the INSERT (the log's row
-- stays one plain INSERT, sql/parts/99_access_log.sql).  The worker digests
-- the log afterwards, a range of time at a time: each checkpoint holds the
-- SHA-256 of every row whose time falls in [range_from, range_to), in a
-- fixed order, their count, and a hash chained to the previous checkpoint's;
-- its hash is also written into the audit trail (chain 'access_log'), which
-- is sealed, signed and witnessed: rewriting the log and its checkpoints
-- together breaks the audit's chain.  access_log_verify() recomputes the
-- ranges and names the first that differs.
--
-- A range is digested once no row can still arrive in it: a row's time is
-- its transaction's start (now()), so the range ends before the start of
-- every transaction still open in the database (pg_stat_activity, read
-- before the rows are: a transaction that ends in between is then seen
-- committed), a margin before the present, and not at all while a prepared
-- transaction (whose start is unknown) waits.
--
-- The retention's pruning (_access_log_prune) cuts at a checkpoint's end
-- only, and records the cut (access_log_pruned) before it deletes: the
-- ranges before the cut are no longer recomputed, their checkpoints' chain
-- still is.
-- ---------------------------------------------------------------------------

CREATE TABLE access_log_checkpoint (
    -- 1, 2, 3, ... without gaps
    id          bigint PRIMARY KEY CHECK (id >= 1),
    made_at     timestamptz NOT NULL DEFAULT now(),
    -- the first range starts at -infinity; each next one where the last ended
    range_from  timestamptz NOT NULL,
    range_to    timestamptz NOT NULL CHECK (range_to > range_from),
    rows        bigint NOT NULL CHECK (rows >= 0),
    -- SHA-256 of the range's rows (_access_log_range())
    digest      bytea NOT NULL,
    -- the previous checkpoint's hash; NULL for the first
    previous    bytea,
    -- _access_log_checkpoint_hash() of the fields above
    hash        bytea NOT NULL,
    UNIQUE (range_from)
);
COMMENT ON TABLE access_log_checkpoint IS
  'The access log''s digests (tamper evidence): each range of time''s rows hashed, counted and chained; written by the worker, checked by access_log_verify()';

-- the checkpoint cut by the retention's pruning: the rows of its range and
-- every earlier one may be gone
CREATE TABLE access_log_pruned (
    at            timestamptz NOT NULL DEFAULT now(),
    checkpoint_id bigint NOT NULL
);
COMMENT ON TABLE access_log_pruned IS
  'Where the retention''s pruning cut the access log: rows up to the end of that checkpoint''s range may be deleted';

CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON access_log_checkpoint
    FOR EACH ROW EXECUTE FUNCTION _audit_append_only();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON access_log_checkpoint
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_append_only();
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON access_log_pruned
    FOR EACH ROW EXECUTE FUNCTION _audit_append_only();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON access_log_pruned
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_append_only();
REVOKE ALL ON access_log_checkpoint FROM PUBLIC;
REVOKE ALL ON access_log_pruned FROM PUBLIC;
GRANT SELECT ON access_log_checkpoint TO ioffice_admin;
GRANT SELECT ON access_log_pruned TO ioffice_admin;
SELECT pg_catalog.pg_extension_config_dump('access_log_checkpoint', '');
SELECT pg_catalog.pg_extension_config_dump('access_log_pruned', '');

-- A time as the hashes write it: microseconds since 1970-01-01 UTC (the
-- same in every time zone), or -infinity.
CREATE FUNCTION _access_log_us(t timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE STRICT SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN isfinite(t) THEN ((extract(epoch FROM t) * 1000000)::bigint)::text
                ELSE t::text END
$$;
REVOKE ALL ON FUNCTION _access_log_us(timestamptz) FROM PUBLIC;

-- The rows of [range_from, range_to): how many, and the SHA-256 of
-- F(at) F(person_id) F(action) F(document_id) F(file_id) F(case_file_id)
-- F(detail) F(params) of each, F(x) = byte length ":" x ";", F(NULL) =
-- "-;", at as text in UTC and ISO style (2026-12-02 08:30:00.123456+00, the
-- fraction without its trailing zeros), params as jsonb's text; the rows in
-- the order of at, then of these bytes.  (The settings are the function's
-- own, so that the text of a time is the same in every session; the hashing
-- is by plain SQL expressions, some 100,000 rows a second.)
CREATE FUNCTION _access_log_range(range_from timestamptz, range_to timestamptz,
                                  OUT rows bigint, OUT digest bytea)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
AS $$
    SELECT count(*),
           sha256(convert_to(coalesce(string_agg(r.enc, '' ORDER BY r.at, r.enc COLLATE "C"), ''), 'UTF8'))
      FROM (SELECT a.at,
                   octet_length(a.at::text) || ':' || a.at::text || ';'
                   || octet_length(a.person_id::text) || ':' || a.person_id::text || ';'
                   || octet_length(a.action) || ':' || a.action || ';'
                   || coalesce(octet_length(a.document_id::text) || ':' || a.document_id::text || ';', '-;')
                   || coalesce(octet_length(a.file_id::text) || ':' || a.file_id::text || ';', '-;')
                   || coalesce(octet_length(a.case_file_id::text) || ':' || a.case_file_id::text || ';', '-;')
                   || coalesce(octet_length(a.detail) || ':' || a.detail || ';', '-;')
                   || coalesce(octet_length(a.params::text) || ':' || a.params::text || ';', '-;') AS enc
              FROM ioffice.access_log a
             WHERE a.at >= range_from AND a.at < range_to) r
$$;
REVOKE ALL ON FUNCTION _access_log_range(timestamptz, timestamptz) FROM PUBLIC;

-- A checkpoint's hash: SHA-256("ioffice-access-log-1;" id ";" from ";" to
-- ";" rows ";" | digest | previous), times as _access_log_us() writes them.
CREATE FUNCTION _access_log_checkpoint_hash(id bigint, range_from timestamptz,
                                            range_to timestamptz, rows bigint,
                                            digest bytea, previous bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT sha256(convert_to('ioffice-access-log-1;' || id || ';' || ioffice._access_log_us(range_from)
                             || ';' || ioffice._access_log_us(range_to) || ';' || rows || ';', 'UTF8')
                  || digest || coalesce(previous, '\x'::bytea))
$$;
REVOKE ALL ON FUNCTION _access_log_checkpoint_hash(bigint, timestamptz, timestamptz, bigint, bytea, bytea) FROM PUBLIC;

-- The worker's digest (workers/retention_jobs.c): the next checkpoint, of
-- at most max_rows rows (more only when more share one instant) and a day
-- from its first row, ending just after them or at the horizon (see above; margin before the present, 10 seconds for the
-- worker).  Returns the rows it digested: 0 when nothing was due, max_rows
-- or more when there may be more.  Granted to nobody.
CREATE FUNCTION _access_log_digest(max_rows int, margin interval DEFAULT interval '10 seconds')
    RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_horizon timestamptz;
    v_last ioffice.access_log_checkpoint;
    v_from timestamptz;
    v_to timestamptz;
    v_id bigint;
    v_rows bigint;
    v_digest bytea;
    v_hash bytea;
    v_first timestamptz;
BEGIN
    IF max_rows IS NULL OR max_rows <= 0 OR margin IS NULL OR margin < interval '0' THEN
        RAISE EXCEPTION '_access_log_digest needs a number of rows above 0 and a margin of 0 or more'
            USING ERRCODE = '22023';
    END IF;
    -- a prepared transaction may hold rows of any earlier time
    IF EXISTS (SELECT 1 FROM pg_prepared_xacts p WHERE p.database = current_database()) THEN
        RETURN 0;
    END IF;
    -- before the rows are read (a statement of its own, its own snapshot)
    SELECT least(clock_timestamp() - margin, min(s.xact_start)) INTO v_horizon
      FROM pg_stat_activity s
     WHERE s.datname = current_database() AND s.pid <> pg_backend_pid()
       AND s.xact_start IS NOT NULL
       -- (autovacuum never writes the log: it must not hold the digest back)
       AND s.backend_type <> 'autovacuum worker';
    -- one digest at a time (the worker runs one, a hand may run another)
    LOCK TABLE ioffice.access_log_checkpoint IN SHARE ROW EXCLUSIVE MODE;
    SELECT * INTO v_last FROM ioffice.access_log_checkpoint ORDER BY id DESC LIMIT 1;
    v_from := coalesce(v_last.range_to, '-infinity');
    IF v_horizon <= v_from THEN
        RETURN 0;
    END IF;
    SELECT min(a.at) INTO v_first FROM ioffice.access_log a WHERE a.at >= v_from AND a.at < v_horizon;
    IF v_first IS NULL THEN
        RETURN 0;
    END IF;
    -- at most max_rows rows (and those of the same instant as the last):
    -- the range ends just after the last of them when later rows are there
    -- already, so that it is no wider than its rows (the pruning cuts at a
    -- range's end)
    SELECT a.at INTO v_to FROM ioffice.access_log a
     WHERE a.at >= v_from AND a.at < v_horizon ORDER BY a.at OFFSET max_rows - 1 LIMIT 1;
    IF v_to IS NOT NULL AND EXISTS (SELECT 1 FROM ioffice.access_log a
                                     WHERE a.at > v_to AND a.at < v_horizon) THEN
        v_to := v_to + interval '1 microsecond';
    ELSE
        v_to := v_horizon;
    END IF;
    -- and no later than a day after its first row: the pruning cuts at a
    -- range's end, so a range spans a day at most (and the gap before it)
    v_to := least(v_to, v_first + interval '1 day');
    SELECT r.rows, r.digest INTO v_rows, v_digest FROM ioffice._access_log_range(v_from, v_to) r;
    v_id := coalesce(v_last.id, 0) + 1;
    v_hash := ioffice._access_log_checkpoint_hash(v_id, v_from, v_to, v_rows, v_digest, v_last.hash);
    INSERT INTO ioffice.access_log_checkpoint (id, range_from, range_to, rows, digest, previous, hash)
    VALUES (v_id, v_from, v_to, v_rows, v_digest, v_last.hash, v_hash);
    PERFORM ioffice._audit('access_log', v_id, 'checkpoint', NULL, NULL,
                           jsonb_build_object('range_from', v_from, 'range_to', v_to, 'rows', v_rows,
                                              'hash', encode(v_hash, 'hex')),
                           NULL, 'access_log');
    RETURN v_rows;
END
$$;
REVOKE ALL ON FUNCTION _access_log_digest(int, interval) FROM PUBLIC;
COMMENT ON FUNCTION _access_log_digest(int, interval) IS
  'The worker''s digest of the access log: the next checkpoint (at most max_rows rows, up to the horizon); returns the rows digested';

-- Every problem in the access log's checkpoints and the rows they cover, in
-- the order of the checkpoints (the first row is the first place the log
-- was altered); no rows: intact.  The rows after the last checkpoint are
-- not covered yet (the worker digests them within a minute or two).
CREATE FUNCTION access_log_verify()
    RETURNS TABLE (checkpoint_id bigint, range_from timestamptz, range_to timestamptz, problem text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c ioffice.access_log_checkpoint;
    v_prev ioffice.access_log_checkpoint;
    v_pruned bigint;
    v_rows bigint;
    v_digest bytea;
    v_audit text;
BEGIN
    SELECT max(p.checkpoint_id) INTO v_pruned FROM ioffice.access_log_pruned p;
    FOR c IN SELECT * FROM ioffice.access_log_checkpoint k ORDER BY k.id LOOP
        checkpoint_id := c.id;
        access_log_verify.range_from := c.range_from;
        access_log_verify.range_to := c.range_to;
        IF c.id <> coalesce(v_prev.id, 0) + 1 THEN
            problem := format('checkpoint %s follows checkpoint %s: a checkpoint is missing',
                              c.id, coalesce(v_prev.id, 0));
            RETURN NEXT;
        END IF;
        IF c.range_from IS DISTINCT FROM coalesce(v_prev.range_to, '-infinity') THEN
            problem := 'its range does not start where the previous checkpoint''s ended';
            RETURN NEXT;
        END IF;
        IF c.previous IS DISTINCT FROM v_prev.hash THEN
            problem := 'its link to the previous checkpoint is not that checkpoint''s hash';
            RETURN NEXT;
        END IF;
        IF c.hash IS DISTINCT FROM ioffice._access_log_checkpoint_hash(c.id, c.range_from, c.range_to,
                                                                       c.rows, c.digest, c.previous) THEN
            problem := 'its hash does not match its fields: the checkpoint was altered';
            RETURN NEXT;
        END IF;
        SELECT u.detail->>'hash' INTO v_audit FROM ioffice.audit u
         WHERE u.chain = 'access_log' AND u.entity = 'access_log' AND u.entity_id = c.id
               AND u.action = 'checkpoint';
        IF v_audit IS NULL THEN
            problem := 'the audit trail has no record of this checkpoint';
            RETURN NEXT;
        ELSIF v_audit <> encode(c.hash, 'hex') THEN
            problem := 'the audit trail recorded another hash for this checkpoint';
            RETURN NEXT;
        END IF;
        IF v_pruned IS NULL OR c.id > v_pruned THEN
            SELECT r.rows, r.digest INTO v_rows, v_digest
              FROM ioffice._access_log_range(c.range_from, c.range_to) r;
            IF v_rows <> c.rows THEN
                problem := format('the range held %s rows, it holds %s: rows were %s', c.rows, v_rows,
                                  CASE WHEN v_rows < c.rows THEN 'removed' ELSE 'added' END);
                RETURN NEXT;
            ELSIF v_digest <> c.digest THEN
                problem := format('the range''s rows were altered (%s rows, as recorded)', c.rows);
                RETURN NEXT;
            END IF;
        END IF;
        v_prev := c;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION access_log_verify() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION access_log_verify() TO ioffice_admin;
COMMENT ON FUNCTION access_log_verify() IS
  'Every problem found in the access log''s checkpoints and the rows of their ranges, the first alteration first; no rows means intact (the rows after the last checkpoint are not digested yet)';

-- ---------------------------------------------------------------------------
-- A scanned PDF (no text layer: pdftotext finds almost nothing) is read by
-- OCR for search() (Decree 30, Appendix VI, III.6d: the text of the files):
-- the worker's text helper renders its pages with pdftoppm and reads them
-- with Tesseract in Vietnamese (workers/ioffice_text.py, workers/text_jobs.c;
-- at most ioffice.search_ocr_pages pages, within ioffice.pdf_helper_timeout).
-- Its job says so: OCR text may misread a word, the text layer does not.
-- ---------------------------------------------------------------------------
ALTER TABLE search_extraction ADD COLUMN ocr boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN search_extraction.ocr IS
  'The file''s text was read by OCR (a scanned PDF without a text layer: Tesseract, Vietnamese), not taken from the file';

-- search_scale2: search() walks the newest documents for common words
-- (_search_newest, _search_word_share, _search_score, document_agency_idx)
-- an agency's documents newest first: search()'s walk for a clerk
-- (_search_newest), which stops after some hundreds
CREATE INDEX document_agency_idx ON document (agency_id, id);
-- and of one type (a search filtered by type): only those read
CREATE INDEX document_agency_type_idx ON document (agency_id, doc_type, id);

-- How search() scores a row: NULL when its vector lacks the query's words
-- in every spelling, else ts_rank(words, any, 32) plus 1 when it has them
-- spelled as the query is; the vector read once (extension/search.c).
CREATE FUNCTION _search_score(words tsvector, q_any tsquery, q_exact tsquery) RETURNS real
    AS 'MODULE_PATHNAME', 'ioffice_search_score' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
REVOKE ALL ON FUNCTION _search_score(tsvector, tsquery, tsquery) FROM PUBLIC;

-- How common the words of a query are: the share of search_text's rows
-- that have its rarest word, from the table's statistics (the most common
-- lexemes and their frequencies, as the planner reads them); 0 for a word
-- not among them, or without statistics.  A word of the query is given
-- folded and, when it has marks, as written, at one position: the folded
-- form, the commoner, counts.  An estimate: two common words are seldom
-- both in a row as often as the rarer alone (search() checks).
CREATE FUNCTION _search_word_share(query text) RETURNS float8
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_elems text[];
    v_freqs real[];
BEGIN
    SELECT s.most_common_elems::text::text[], s.most_common_elem_freqs INTO v_elems, v_freqs
      FROM pg_catalog.pg_stats s
     WHERE s.schemaname = 'ioffice' AND s.tablename = 'search_text' AND s.attname = 'words';
    IF v_elems IS NULL THEN
        RETURN 0;
    END IF;
    RETURN (SELECT coalesce(min(w.share), 0) FROM (
                SELECT max(coalesce(v_freqs[array_position(v_elems, u.lexeme)], 0)) AS share
                  FROM unnest(to_tsvector('ioffice.search_vi'::regconfig, translate(query, '/', ' '))) u,
                       unnest(u.positions) p(pos)
                 GROUP BY p.pos) w);
END
$$;
REVOKE ALL ON FUNCTION _search_word_share(text) FROM PUBLIC;

-- The documents a person (or a reporting tool, or an admin: every_one)
-- may see that pass search()'s filters, newest first, at most n of them:
-- the tests of the policies visible and visible_to_readers of document,
-- each from its own index in the order of ids (a clerk's agency's by
-- document_agency_idx, their drafts by document_drafter_idx, their tasks'
-- and a reader's by the primary key), each stopping at n, merged.  A
-- statement made for the filters given, so that each is planned with the
-- tests it has.
CREATE FUNCTION _search_newest(filters jsonb, me bigint, every_one boolean, reader boolean,
                               agencies bigint[], tasks bigint[], n int) RETURNS bigint[]
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f record := ioffice._search_filters(filters);
    v_filter text;
    v_sql text;
    v_docs bigint[];
BEGIN
    v_filter := concat(
        CASE WHEN f.agency IS NOT NULL THEN ' AND d.agency_id = $1' END,
        CASE WHEN f.doc_type IS NOT NULL THEN ' AND d.doc_type = $2' END,
        CASE WHEN f.register IS NOT NULL THEN ' AND d.register_id = $3' END,
        CASE WHEN f.state IS NOT NULL THEN ' AND d.state = $4' END,
        CASE WHEN f.signer IS NOT NULL THEN ' AND d.signer_id = $5' END,
        CASE WHEN f.direction IS NOT NULL THEN ' AND d.direction = $6' END,
        CASE WHEN f.issued_from IS NOT NULL THEN ' AND coalesce(d.issued_on, d.sender_date) >= $7' END,
        CASE WHEN f.issued_to IS NOT NULL THEN ' AND coalesce(d.issued_on, d.sender_date) <= $8' END,
        CASE WHEN f.created_from IS NOT NULL
             THEN ' AND (d.created_at AT TIME ZONE ioffice.timezone())::date >= $9' END,
        CASE WHEN f.created_to IS NOT NULL
             THEN ' AND (d.created_at AT TIME ZONE ioffice.timezone())::date <= $10' END);
    -- (an admin sees every document, a clerk every one of their agency:
    -- then the filter by agency alone, or all)
    IF every_one OR f.agency = ANY (agencies) THEN
        v_sql := 'SELECT d.id FROM ioffice.document d WHERE true' || v_filter || ' ORDER BY d.id DESC LIMIT $14';
    ELSE
        v_sql := array_to_string(ARRAY[
            CASE WHEN cardinality(agencies) > 0 THEN
                '(SELECT a.id FROM unnest($12) g(agency) CROSS JOIN LATERAL ('
                'SELECT d.id FROM ioffice.document d WHERE d.agency_id = g.agency' || v_filter ||
                ' ORDER BY d.id DESC LIMIT $14) a)' END,
            CASE WHEN me IS NOT NULL THEN
                '(SELECT d.id FROM ioffice.document d WHERE d.drafter_id = $11' || v_filter ||
                ' ORDER BY d.id DESC LIMIT $14)' END,
            -- (without filters, the ids themselves: no document is read)
            CASE WHEN cardinality(tasks) > 0 AND v_filter = '' THEN
                '(SELECT t.id FROM unnest($13) t(id) ORDER BY t.id DESC LIMIT $14)'
                 WHEN cardinality(tasks) > 0 THEN
                '(SELECT d.id FROM ioffice.document d WHERE d.id = ANY ($13)' || v_filter ||
                ' ORDER BY d.id DESC LIMIT $14)' END,
            CASE WHEN reader THEN
                '(SELECT d.id FROM ioffice.document d WHERE d.confidentiality = ''normal'''
                ' AND (d.register_id IS NULL OR d.register_id IN'
                ' (SELECT r.id FROM ioffice.register r WHERE NOT r.confidential))' || v_filter ||
                ' ORDER BY d.id DESC LIMIT $14)' END], ' UNION ');
        IF v_sql = '' THEN
            RETURN '{}';
        END IF;
        v_sql := 'SELECT x.id FROM (' || v_sql || ') x ORDER BY x.id DESC LIMIT $14';
    END IF;
    EXECUTE 'SELECT ARRAY(' || v_sql || ')' INTO v_docs
        USING f.agency, f.doc_type, f.register, f.state, f.signer, f.direction, f.issued_from, f.issued_to,
              f.created_from, f.created_to, me, agencies, tasks, n;
    RETURN v_docs;
END
$$;
REVOKE ALL ON FUNCTION _search_newest(jsonb, bigint, boolean, boolean, bigint[], bigint[], int) FROM PUBLIC;

-- search(): the documents whose metadata or file text has the words of the
-- query, best first, at most "limit" of them.  A document is found by every
-- spelling of its words ("nghi dinh" finds "Nghị định"); one spelled as the
-- query is (every word, tones and all) ranks above those that are not (rank
-- 1 plus the text rank; an unaccented query is spelled as all of them).
-- Only documents the caller may see, by the same tests as the policies of
-- document (visible, visible_to_readers), applied here because search() is
-- SECURITY DEFINER: it reads search_text, which nobody else does, and the
-- planner may then use the text index (under row-level security it could
-- not: the match operator is not leakproof).  Nothing of a document the
-- caller may not see is counted or shown.  An empty query lists the
-- documents the filters keep, newest first.
--
-- In two steps, so that a common word costs about what a rare one does:
-- 1. the candidates: the newest documents (by id) the caller may see that
--    have the words and pass the filters, at most greatest("limit", 200)
--    of them, found one of two ways.  For rare words, the text index: the
--    rows with the words and one of the caller's keys in one scan
--    (search_text.keys: a clerk's agency, their own drafts; 'r' for a
--    reporting tool); the documents of the caller's tasks are found by
--    their ids; an admin's by the words alone.  Each is then checked
--    against the policies' tests on its document (the keys are derived
--    data), and the filters.  For common words, or when the caller may see
--    few documents with these filters, the walk: the documents the caller
--    may see, newest first from the indexes of document (_search_newest:
--    the policies' tests themselves), each one's rows tested for the words,
--    until the window is full -- a common word's index entries are most of
--    the table, and an admin's or a reporting tool's are not narrowed by
--    keys.  Both give the same candidates.
-- 2. the ranking, of the candidates only: the best row of each document
--    (_search_score, which reads each vector once; the walk scores as it
--    tests).
-- When more documents than the window match, the best of the newest are
-- returned, not the best of all, and a NOTICE says so (as a web search
-- engine ranks the first thousand pages it finds): ranking reads each
-- row's word vector, and a common word is in hundreds of thousands.  The
-- planner chooses with the values of this call: each statement is planned
-- for its values (plan_cache_mode), a generic plan would not know how
-- common the words are nor whose documents these are; without sequential
-- scans (enable_seqscan): the planner does not count the reading of the
-- vectors out of line, and took a scan of every row for cheaper than the
-- index; without JIT, whose compiling cost more than the statements.
CREATE OR REPLACE FUNCTION search(query text, filters jsonb DEFAULT '{}', "limit" int DEFAULT 100)
RETURNS TABLE(document bigint, rank real, snippet text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    SET plan_cache_mode = force_custom_plan SET enable_seqscan = off SET jit = off
AS $$
DECLARE
    v_me bigint := ioffice.current_person();
    v_reader boolean := ioffice._search_outer_is_reader();
    v_agencies bigint[] := ioffice._clerk_agencies();
    v_all boolean;
    v_keys text[];
    v_tasks bigint[];
    v_window int;
    v_walk int;
    v_share float8;
    v_expect float8;
    v_n int;
    v_part int;
    v_round int;
    v_walked boolean := false;
    v_docs bigint[];
    v_found bigint[];
    v_files bigint[];
    v_scores real[];
    v_any tsquery;
    v_exact tsquery;
    f record;
BEGIN
    f := ioffice._search_filters(filters);
    IF search."limit" IS NULL OR search."limit" < 1 OR search."limit" > 10000 THEN
        RAISE EXCEPTION 'search limit must be between 1 and 10000' USING ERRCODE = '22023';
    END IF;
    -- a query is a few words: websearch_to_tsquery() recurses over what it
    -- is given, and a page of text would end in "stack depth limit exceeded"
    IF length(query) > 2000 THEN
        RAISE EXCEPTION 'search query is too long'
            USING ERRCODE = '22023',
                  DETAIL = format('A query has at most 2000 characters; this one has %s.', length(query)),
                  HINT = 'Search for a few words of the text, and narrow with filters.';
    END IF;
    IF v_me IS NULL AND NOT v_reader THEN
        RETURN;
    END IF;
    v_tasks := CASE WHEN v_me IS NULL THEN '{}' ELSE ioffice._task_documents() END;
    v_any := websearch_to_tsquery('ioffice.search_vi'::regconfig, translate(coalesce(query, ''), '/', ' '));
    IF numnode(v_any) = 0 THEN
        IF filters IS NULL OR filters = '{}' THEN
            RAISE EXCEPTION 'search needs words to find, or a filter'
                USING ERRCODE = '22023';
        END IF;
        RETURN QUERY
        SELECT d.id, 0::real, d.abstract
        FROM ioffice.document d
        WHERE (d.drafter_id = v_me OR d.agency_id = ANY (v_agencies) OR d.id = ANY (v_tasks)
               OR (v_reader AND d.confidentiality = 'normal'
                   AND (d.register_id IS NULL
                        OR d.register_id IN (SELECT r.id FROM ioffice.register r WHERE NOT r.confidential))))
          AND (f.agency IS NULL OR d.agency_id = f.agency)
          AND (f.doc_type IS NULL OR d.doc_type = f.doc_type)
          AND (f.register IS NULL OR d.register_id = f.register)
          AND (f.state IS NULL OR d.state = f.state)
          AND (f.signer IS NULL OR d.signer_id = f.signer)
          AND (f.direction IS NULL OR d.direction = f.direction)
          AND (f.issued_from IS NULL OR coalesce(d.issued_on, d.sender_date) >= f.issued_from)
          AND (f.issued_to IS NULL OR coalesce(d.issued_on, d.sender_date) <= f.issued_to)
          AND (f.created_from IS NULL OR (d.created_at AT TIME ZONE ioffice.timezone())::date >= f.created_from)
          AND (f.created_to IS NULL OR (d.created_at AT TIME ZONE ioffice.timezone())::date <= f.created_to)
        ORDER BY d.id DESC
        LIMIT search."limit";
        RETURN;
    END IF;
    v_exact := websearch_to_tsquery('ioffice.search_vi_exact'::regconfig, translate(query, '/', ' '));
    v_all := v_me IS NOT NULL
             AND EXISTS (SELECT 1 FROM ioffice.person_role r WHERE r.person_id = v_me AND r.role = 'admin');
    v_window := greatest(search."limit", 200);
    -- 1. the candidates, newest first.  The walk: the documents the caller
    -- may see that pass the filters, newest first, read from the indexes of
    -- document (_search_newest), each one's rows tested for the words, until
    -- the window is full.  Chosen when the words are common: the walk is
    -- expected to fill the window within ioffice.search_walk documents, by
    -- the share of the rows that have the query's rarest word (for an admin
    -- or a reporting tool, whose text index lists every row with the words,
    -- within a quarter of those rows); or when the documents the caller may
    -- see with these filters are few (a quarter of ioffice.search_walk).
    v_walk := current_setting('ioffice.search_walk')::int;
    IF v_walk > 0 THEN
        v_share := ioffice._search_word_share(query);
        v_expect := CASE WHEN v_share > 0 THEN ceil((v_window + 1) / v_share) END;
        IF v_all OR v_reader THEN
            v_walk := greatest(v_walk, least(1000000, floor(v_share / 4 *
                (SELECT c.reltuples FROM pg_catalog.pg_class c WHERE c.oid = 'ioffice.search_text'::regclass)))::int);
        END IF;
        IF v_expect <= v_walk OR filters IS DISTINCT FROM '{}' OR NOT (v_all OR v_reader) AND v_agencies = '{}' THEN
            -- (twice the documents expected: the walk is stopped there, and
            -- the text index asked, when the words are rarer than expected)
            v_n := CASE WHEN v_expect <= v_walk THEN least(v_walk, 2 * v_expect)::int
                        ELSE greatest(1, v_walk / 4) END;
            v_docs := ioffice._search_newest(filters, v_me, v_all, v_reader, v_agencies, v_tasks, v_n);
            IF cardinality(v_docs) < v_n OR v_expect <= v_walk THEN
                v_walked := true;
                -- in two parts: a quarter of the documents expected first;
                -- when far fewer of them have the words than the share said
                -- (a word common elsewhere, rare in the caller's documents),
                -- the text index instead of the rest
                v_part := least(cardinality(v_docs), greatest(50, ceil(coalesce(v_expect, 0) / 4)::int));
                v_found := '{}';
                v_files := '{}';
                v_scores := '{}';
                FOR v_round IN 1 .. 2 LOOP
                    SELECT v_found || coalesce(array_agg(w.id), '{}'), v_files || coalesce(array_agg(w.file_id), '{}'),
                           v_scores || coalesce(array_agg(w.r), '{}')
                      INTO v_found, v_files, v_scores
                      FROM (SELECT u.id, m.file_id, m.r
                              FROM unnest(CASE v_round WHEN 1 THEN v_docs[1:v_part]
                                                       ELSE v_docs[v_part + 1:] END) u(id)
                              CROSS JOIN LATERAL (
                                  SELECT s.file_id, ioffice._search_score(s.words, v_any, v_exact) AS r
                                    FROM ioffice.search_text s
                                   WHERE s.document_id = u.id
                                   ORDER BY 2 DESC NULLS LAST, s.file_id NULLS FIRST
                                   LIMIT 1) m
                             WHERE m.r IS NOT NULL
                             LIMIT v_window + 1 - cardinality(v_found)) w;
                    EXIT WHEN cardinality(v_found) > v_window OR cardinality(v_docs) <= v_part;
                    IF v_round = 1 AND cardinality(v_docs) >= v_n
                       AND cardinality(v_found) < v_part * v_share / 4 THEN
                        v_walked := false;
                        EXIT;
                    END IF;
                END LOOP;
                -- the words were rarer among these documents than in all: the
                -- walk ended before the window was full, the text index then
                IF cardinality(v_found) <= v_window AND cardinality(v_docs) >= v_n THEN
                    v_walked := false;
                END IF;
            END IF;
        END IF;
    END IF;
    -- The text index: the rows with the words and one of the caller's keys
    -- (each candidate's document by its key, LATERAL: the newest first,
    -- without hashing the table of documents)
    IF NOT v_walked THEN
        -- the caller's keys (_search_keys()): their tasks' documents, their
        -- agencies as a clerk, their drafts, the reporting tools' documents; an
        -- admin's agencies are every unit, and the words alone are asked for.
        -- A filter by agency is a key too.  (The documents of the tasks that
        -- another key does not cover, from the indexes alone: a clerk's
        -- thousand tasks are their agency's documents, and each key is one
        -- more entry the index merges.)
        v_keys := CASE WHEN v_all THEN '{}'::text[] ELSE
                  ARRAY(SELECT 'd:' || t FROM unnest(v_tasks) t
                         WHERE NOT EXISTS (SELECT 1 FROM ioffice.document d
                                            WHERE d.agency_id = ANY (v_agencies) AND d.id = t)
                           AND NOT EXISTS (SELECT 1 FROM ioffice.document d
                                            WHERE d.drafter_id = v_me AND d.id = t))
                  || ARRAY(SELECT 'a:' || a FROM unnest(v_agencies) a)
                  || CASE WHEN v_me IS NOT NULL THEN ARRAY['p:' || v_me] ELSE '{}'::text[] END
                  || CASE WHEN v_reader THEN ARRAY['r'] ELSE '{}'::text[] END END;
        v_docs := ARRAY(
            SELECT c.document_id
            FROM (SELECT DISTINCT s.document_id FROM ioffice.search_text s
                   WHERE s.words @@ v_any AND (v_all OR s.keys && v_keys)
                     AND (f.agency IS NULL OR s.keys @> ARRAY['a:' || f.agency])) c
            CROSS JOIN LATERAL (
                SELECT 1 FROM ioffice.document d
                WHERE d.id = c.document_id
                  AND (d.drafter_id = v_me OR d.agency_id = ANY (v_agencies) OR d.id = ANY (v_tasks)
                       OR (v_reader AND d.confidentiality = 'normal'
                           AND (d.register_id IS NULL
                                OR d.register_id IN (SELECT r.id FROM ioffice.register r WHERE NOT r.confidential))))
                  AND (f.agency IS NULL OR d.agency_id = f.agency)
                  AND (f.doc_type IS NULL OR d.doc_type = f.doc_type)
                  AND (f.register IS NULL OR d.register_id = f.register)
                  AND (f.state IS NULL OR d.state = f.state)
                  AND (f.signer IS NULL OR d.signer_id = f.signer)
                  AND (f.direction IS NULL OR d.direction = f.direction)
                  AND (f.issued_from IS NULL OR coalesce(d.issued_on, d.sender_date) >= f.issued_from)
                  AND (f.issued_to IS NULL OR coalesce(d.issued_on, d.sender_date) <= f.issued_to)
                  AND (f.created_from IS NULL OR (d.created_at AT TIME ZONE ioffice.timezone())::date >= f.created_from)
                  AND (f.created_to IS NULL OR (d.created_at AT TIME ZONE ioffice.timezone())::date <= f.created_to)
                LIMIT 1) v
            ORDER BY c.document_id DESC
            LIMIT v_window + 1);
        -- each candidate's best row, scored (a candidate has a row with the words)
        SELECT coalesce(array_agg(w.id), '{}'), coalesce(array_agg(w.file_id), '{}'),
               coalesce(array_agg(w.r), '{}')
          INTO v_found, v_files, v_scores
          FROM (SELECT u.id, m.file_id, m.r
                  FROM unnest(v_docs) u(id)
                  CROSS JOIN LATERAL (
                      SELECT s.file_id, ioffice._search_score(s.words, v_any, v_exact) AS r
                        FROM ioffice.search_text s
                       WHERE s.document_id = u.id
                       ORDER BY 2 DESC NULLS LAST, s.file_id NULLS FIRST
                       LIMIT 1) m
                 WHERE m.r IS NOT NULL) w;
    END IF;
    IF cardinality(v_found) > v_window THEN
        RAISE NOTICE 'search ranked the % newest of the documents that match, not all of them', v_window
            USING DETAIL = 'A query whose words are in many documents is ranked among the newest.',
                  HINT = 'Add words, or filters (agency, doc_type, issued_from, issued_to), to find older documents.';
        -- (both ways list the candidates newest first)
        v_found := v_found[1:v_window];
        v_files := v_files[1:v_window];
        v_scores := v_scores[1:v_window];
    END IF;
    -- 2. the best of them, with the snippet of each one's best row (from
    -- the first 64 kB of a file's text: ts_headline parses all it is
    -- given, and a page of results has up to "limit")
    RETURN QUERY
    SELECT c.id, c.r,
           ts_headline('ioffice.search_vi'::regconfig, left(b.body, 65536), v_any,
                       'StartSel=«, StopSel=», MaxWords=30, MinWords=12, ShortWord=0, '
                       'MaxFragments=2, FragmentDelimiter=" … "')
    FROM (SELECT x.id, x.file_id, x.r FROM unnest(v_found, v_files, v_scores) x(id, file_id, r)
          ORDER BY x.r DESC, x.id DESC
          LIMIT search."limit") c
    CROSS JOIN LATERAL (SELECT s.body FROM ioffice.search_text s
                         WHERE s.document_id = c.id AND s.file_id IS NOT DISTINCT FROM c.file_id) b
    ORDER BY c.r DESC, c.id DESC;
END
$$;

-- ---------------------------------------------------------------------
-- edXML receipt checks the PDF attachments' own signatures (Decree 30
-- art. 21.2)
-- ---------------------------------------------------------------------
-- verify()'s rows for bytes that are not a file yet: the PDF attachments of
-- an edXML package, checked before it is filed (99_edxml_axis.sql)
CREATE FUNCTION _pdf_signatures(content bytea)
    RETURNS TABLE (signer text, kind text, signed_at timestamptz, subject text, valid boolean, reason text,
                   revision int, after_signing text, level text, timestamped_at timestamptz)
    AS 'MODULE_PATHNAME', 'ioffice_pdf_signatures'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION _pdf_signatures(bytea) FROM PUBLIC;
COMMENT ON FUNCTION _pdf_signatures(bytea) IS
  'The signatures embedded in a PDF given as bytes (an edXML attachment before it is filed), checked as verify() checks a file; no signer or kind';

-- The PDFs of a received package, as verify() checks a file (Decree 30
-- art. 21.2, the document's authenticity and integrity): every signature
-- in every PDF attachment valid (intact bytes, a trusted chain, not
-- revoked), and at least one PDF carrying one, the issued document.  A
-- refusal raises 42501 (answered 02 through the axis, naming the file and
-- why); an unknown revocation raises 55000, as for the package's seal: the
-- list missing here is not the sender's fault (the package waits on the
-- axis).
CREATE FUNCTION _edxml_check_pdfs(p jsonb, contents bytea[]) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_name text;
    v_signed int := 0;
    r record;
BEGIN
    FOR i IN 1 .. coalesce(array_length(contents, 1), 0) LOOP
        CONTINUE WHEN ioffice.file_kind(contents[i]) IS DISTINCT FROM 'pdf';
        v_name := pg_catalog.left(coalesce(p->'attachments'->(i - 1)->>'name',
                                           p->'attachments'->(i - 1)->>'description',
                                           format('attachment %s', i)), 100);
        FOR r IN SELECT s.valid, s.reason, s.subject, s.revision
                 FROM ioffice._pdf_signatures(contents[i]) s LOOP
            IF r.valid THEN
                v_signed := v_signed + 1;
                CONTINUE;
            END IF;
            IF r.reason LIKE 'revocation unknown%' THEN
                RAISE EXCEPTION 'edXML package left unfiled: the revocation of a signer of % is unknown', v_name
                    USING ERRCODE = '55000',
                          DETAIL = format('%s: %s.', coalesce(pg_catalog.left(r.subject, 200), 'a signature'), r.reason),
                          HINT = 'Register a current revocation list of the signer''s issuer with add_crl(); a package from the axis is read again at the next poll.';
            END IF;
            RAISE EXCEPTION 'edXML package refused: a signature in % is not valid: %', v_name,
                coalesce(r.reason, 'unknown')
                USING ERRCODE = '42501',
                      DETAIL = format('Signer %s, revision %s.',
                                      coalesce(pg_catalog.left(r.subject, 200), 'unknown'),
                                      coalesce(r.revision::text, '?'));
        END LOOP;
    END LOOP;
    IF v_signed = 0 THEN
        RAISE EXCEPTION 'edXML package refused: no attachment is a PDF carrying a valid digital signature'
            USING ERRCODE = '42501',
                  DETAIL = 'Decree 30 art. 21.2: an electronic document is received only when its authenticity and integrity can be checked.';
    END IF;
END
$$;
REVOKE ALL ON FUNCTION _edxml_check_pdfs(jsonb, bytea[]) FROM PUBLIC;

CREATE OR REPLACE FUNCTION _edxml_file(p jsonb, package text, agency bigint, actor bigint) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me bigint := actor;
    v_text text := package;
    v_agency bigint := agency;
    v_sender text;
    v_docid text;
    v_key bigint;
    v_id bigint;
    v_doc_type text;
    v_urgency text;
    v_pages int;
    v_files int;
    v_contents bytea[];
BEGIN
    IF p->'signature'->>'status' <> 'valid' THEN
        RAISE EXCEPTION 'edXML package refused: its signature is %', p->'signature'->>'status'
            USING ERRCODE = '42501', DETAIL = p->'signature'->>'reason';
    END IF;
    IF p->>'bussiness_doc_type' = '1' THEN
        RETURN ioffice._edxml_file_recall(p, v_text, v_agency, v_me);
    END IF;
    IF p->>'bussiness_doc_type' = '2' THEN
        RETURN ioffice._edxml_file_update(p, v_text, v_agency, v_me);
    END IF;
    IF coalesce(p->>'bussiness_doc_type', '0') NOT IN ('0', '3') THEN
        RAISE EXCEPTION 'edXML package refused: BussinessDocType % is not one of 0 to 3',
            pg_catalog.left(p->>'bussiness_doc_type', 60)
            USING ERRCODE = '22023', DETAIL = 'Field TraceHeaderList/Bussiness/BussinessDocType.';
    END IF;
    IF p->>'bussiness_doc_type' = '3' AND coalesce(jsonb_array_length(p->'replacements'), 0) = 0 THEN
        RAISE EXCEPTION 'edXML package refused: a replacement (BussinessDocType 3) names no document it replaces'
            USING ERRCODE = '22023',
                  DETAIL = 'Field TraceHeaderList/Bussiness/ReplacementInfoList.';
    END IF;
    IF jsonb_array_length(p->'attachments') = 0 THEN
        RAISE EXCEPTION 'edXML package refused: it carries no attachment'
            USING ERRCODE = '22023', DETAIL = 'Field AttachmentEncoded.';
    END IF;
    v_sender := p->'from'->>'organ_id';
    v_docid := p->>'document_id';

    PERFORM ioffice._engine_enter();
    -- the key first: a concurrent caller with the same package waits here
    INSERT INTO ioffice.edxml_received (agency_id, sender_organ_id, edxml_document_id,
                                        package_sha256, signer_subject, received_by)
    VALUES (v_agency, v_sender, v_docid, sha256(convert_to(v_text, 'UTF8')),
            p->'signature'->>'subject', v_me)
    ON CONFLICT (agency_id, sender_organ_id, edxml_document_id) DO NOTHING
    RETURNING id INTO v_key;
    IF v_key IS NULL THEN
        SELECT r.document_id INTO v_id FROM ioffice.edxml_received r
        WHERE r.agency_id = v_agency AND r.sender_organ_id = v_sender
          AND r.edxml_document_id = v_docid;
        PERFORM ioffice._engine_leave();
        RETURN v_id;
    END IF;

    -- the document's own signatures (Decree 30 art. 21.2): the package's
    -- seal proves who sent the bytes, not that the PDFs in it are what
    -- their signers signed (_edxml_check_pdfs)
    v_contents := ARRAY(SELECT decode(a->>'data', 'base64')
                        FROM jsonb_array_elements(p->'attachments') WITH ORDINALITY AS x(a, o)
                        ORDER BY x.o);
    PERFORM ioffice._edxml_check_pdfs(p, v_contents);

    -- the same document (sender, number and symbol, year) under another
    -- DocumentId, or registered from paper already: Decree 30's duplicate
    SELECT d.id INTO v_id FROM ioffice.document d
    WHERE d.direction = 'incoming' AND d.agency_id = v_agency AND d.sender_agency_id IS NULL
      AND d.sender_name = pg_catalog.left(coalesce(p->'from'->>'organ_name', v_sender), 500)
      AND d.sender_symbol = pg_catalog.left((p->>'code_number') || '/' || (p->>'code_notation'), 100)
      AND d.sender_year = extract(year FROM to_date(p->>'promulgation_date', 'YYYY/MM/DD'));
    IF FOUND THEN
        RAISE EXCEPTION 'edXML package refused: document %/% of % was received already',
            p->>'code_number', p->>'code_notation', pg_catalog.left(v_sender, 60)
            USING ERRCODE = '23505',
                  DETAIL = format('Incoming document %s; this package''s DocumentId is %s.',
                                  v_id, pg_catalog.left(v_docid, 100));
    END IF;
    SELECT t.code INTO v_doc_type FROM ioffice.doc_type t WHERE t.name = p->>'type_name';
    v_urgency := CASE p->>'priority' WHEN '1' THEN 'urgent' WHEN '2' THEN 'very_urgent'
                                     WHEN '3' THEN 'flash' WHEN '4' THEN 'flash'
                                     ELSE 'normal' END;
    v_pages := CASE WHEN (p->>'page_amount')::bigint BETWEEN 1 AND 100000
                    THEN (p->>'page_amount')::int END;
    INSERT INTO ioffice.document (workflow, direction, doc_type, abstract, state, urgency,
                                  agency_id, drafting_unit_id, page_count, due_date,
                                  sender_name, sender_symbol, sender_date, received_at, signer_name)
    VALUES ('incoming', 'incoming', coalesce(v_doc_type, 'CV'), p->>'subject',
            (SELECT s.state FROM ioffice.workflow_state s
             WHERE s.workflow = 'incoming' AND s.initial ORDER BY s.state LIMIT 1),
            v_urgency, v_agency, v_agency, v_pages,
            to_date(p->>'due_date', 'YYYY/MM/DD'),
            pg_catalog.left(coalesce(p->'from'->>'organ_name', v_sender), 500),
            pg_catalog.left((p->>'code_number') || '/' || (p->>'code_notation'), 100),
            to_date(p->>'promulgation_date', 'YYYY/MM/DD'), now(),
            pg_catalog.left(p->>'signer_name', 200))
    RETURNING id INTO v_id;
    INSERT INTO ioffice.file (document_id, name, kind, size, sha256, content, uploaded_by)
    SELECT v_id,
           pg_catalog.left(coalesce(a->>'name', a->>'description', a->>'content_id'), 255),
           coalesce(ioffice.file_kind(v_contents[x.o]), 'other'), octet_length(v_contents[x.o]),
           sha256(v_contents[x.o]), v_contents[x.o], v_me
    FROM jsonb_array_elements(p->'attachments') WITH ORDINALITY AS x(a, o)
    ORDER BY x.o;
    GET DIAGNOSTICS v_files = ROW_COUNT;
    UPDATE ioffice.edxml_received SET document_id = v_id WHERE id = v_key;
    INSERT INTO ioffice.edxml_status (document_id, party_organ_id, edxml_document_id, direction,
                                      code, description)
    VALUES (v_id, v_sender, v_docid, 'sent', '01', 'Đã đến');
    PERFORM ioffice._audit('document', v_id, 'edxml_receive', NULL, 'received',
                           jsonb_build_object('sender', v_sender, 'document_id', v_docid,
                                              'files', v_files,
                                              'signer', p->'signature'->>'subject'));
    IF p->>'bussiness_doc_type' = '3' THEN
        PERFORM ioffice._edxml_file_replace(p, v_id, v_agency);
    END IF;
    PERFORM ioffice._engine_leave();
    RETURN v_id;
END
$$;

-- ---------------------------------------------------------------------
-- search(): snippets drawn from a window around the first match
-- ---------------------------------------------------------------------
-- The part of a long text that a result's snippet is drawn from: about 1.2 kB
-- around the first place the query's folded words stand one after the
-- other, else its first word; a short text, or one where neither is found,
-- whole (its first 64 kB).  ts_headline parses all it is given.
CREATE FUNCTION _search_window(body text, terms text[]) RETURNS text
    AS 'MODULE_PATHNAME', 'ioffice_search_window' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
REVOKE ALL ON FUNCTION _search_window(text, text[]) FROM PUBLIC;

CREATE OR REPLACE FUNCTION search(query text, filters jsonb DEFAULT '{}', "limit" int DEFAULT 100)
RETURNS TABLE(document bigint, rank real, snippet text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    SET plan_cache_mode = force_custom_plan SET enable_seqscan = off SET jit = off
AS $$
DECLARE
    v_me bigint := ioffice.current_person();
    v_reader boolean := ioffice._search_outer_is_reader();
    v_agencies bigint[] := ioffice._clerk_agencies();
    v_all boolean;
    v_keys text[];
    v_tasks bigint[];
    v_window int;
    v_walk int;
    v_share float8;
    v_expect float8;
    v_n int;
    v_part int;
    v_round int;
    v_walked boolean := false;
    v_docs bigint[];
    v_found bigint[];
    v_files bigint[];
    v_scores real[];
    v_any tsquery;
    v_exact tsquery;
    v_terms text[];
    f record;
BEGIN
    f := ioffice._search_filters(filters);
    IF search."limit" IS NULL OR search."limit" < 1 OR search."limit" > 10000 THEN
        RAISE EXCEPTION 'search limit must be between 1 and 10000' USING ERRCODE = '22023';
    END IF;
    -- a query is a few words: websearch_to_tsquery() recurses over what it
    -- is given, and a page of text would end in "stack depth limit exceeded"
    IF length(query) > 2000 THEN
        RAISE EXCEPTION 'search query is too long'
            USING ERRCODE = '22023',
                  DETAIL = format('A query has at most 2000 characters; this one has %s.', length(query)),
                  HINT = 'Search for a few words of the text, and narrow with filters.';
    END IF;
    IF v_me IS NULL AND NOT v_reader THEN
        RETURN;
    END IF;
    v_tasks := CASE WHEN v_me IS NULL THEN '{}' ELSE ioffice._task_documents() END;
    v_any := websearch_to_tsquery('ioffice.search_vi'::regconfig, translate(coalesce(query, ''), '/', ' '));
    IF numnode(v_any) = 0 THEN
        IF filters IS NULL OR filters = '{}' THEN
            RAISE EXCEPTION 'search needs words to find, or a filter'
                USING ERRCODE = '22023';
        END IF;
        RETURN QUERY
        SELECT d.id, 0::real, d.abstract
        FROM ioffice.document d
        WHERE (d.drafter_id = v_me OR d.agency_id = ANY (v_agencies) OR d.id = ANY (v_tasks)
               OR (v_reader AND d.confidentiality = 'normal'
                   AND (d.register_id IS NULL
                        OR d.register_id IN (SELECT r.id FROM ioffice.register r WHERE NOT r.confidential))))
          AND (f.agency IS NULL OR d.agency_id = f.agency)
          AND (f.doc_type IS NULL OR d.doc_type = f.doc_type)
          AND (f.register IS NULL OR d.register_id = f.register)
          AND (f.state IS NULL OR d.state = f.state)
          AND (f.signer IS NULL OR d.signer_id = f.signer)
          AND (f.direction IS NULL OR d.direction = f.direction)
          AND (f.issued_from IS NULL OR coalesce(d.issued_on, d.sender_date) >= f.issued_from)
          AND (f.issued_to IS NULL OR coalesce(d.issued_on, d.sender_date) <= f.issued_to)
          AND (f.created_from IS NULL OR (d.created_at AT TIME ZONE ioffice.timezone())::date >= f.created_from)
          AND (f.created_to IS NULL OR (d.created_at AT TIME ZONE ioffice.timezone())::date <= f.created_to)
        ORDER BY d.id DESC
        LIMIT search."limit";
        RETURN;
    END IF;
    v_exact := websearch_to_tsquery('ioffice.search_vi_exact'::regconfig, translate(query, '/', ' '));
    -- the query's folded words in order, for the snippets' windows
    v_terms := ARRAY(SELECT m[1] FROM regexp_matches(v_any::text, '''((?:[^'']|'''')*)''', 'g') m
                     WHERE m[1] ~ '^[a-z0-9]+$');
    v_all := v_me IS NOT NULL
             AND EXISTS (SELECT 1 FROM ioffice.person_role r WHERE r.person_id = v_me AND r.role = 'admin');
    v_window := greatest(search."limit", 200);
    -- 1. the candidates, newest first.  The walk: the documents the caller
    -- may see that pass the filters, newest first, read from the indexes of
    -- document (_search_newest), each one's rows tested for the words, until
    -- the window is full.  Chosen when the words are common: the walk is
    -- expected to fill the window within ioffice.search_walk documents, by
    -- the share of the rows that have the query's rarest word (for an admin
    -- or a reporting tool, whose text index lists every row with the words,
    -- within a quarter of those rows); or when the documents the caller may
    -- see with these filters are few (a quarter of ioffice.search_walk).
    v_walk := current_setting('ioffice.search_walk')::int;
    IF v_walk > 0 THEN
        v_share := ioffice._search_word_share(query);
        v_expect := CASE WHEN v_share > 0 THEN ceil((v_window + 1) / v_share) END;
        IF v_all OR v_reader THEN
            v_walk := greatest(v_walk, least(1000000, floor(v_share / 4 *
                (SELECT c.reltuples FROM pg_catalog.pg_class c WHERE c.oid = 'ioffice.search_text'::regclass)))::int);
        END IF;
        IF v_expect <= v_walk OR filters IS DISTINCT FROM '{}' OR NOT (v_all OR v_reader) AND v_agencies = '{}' THEN
            -- (twice the documents expected: the walk is stopped there, and
            -- the text index asked, when the words are rarer than expected)
            v_n := CASE WHEN v_expect <= v_walk THEN least(v_walk, 2 * v_expect)::int
                        ELSE greatest(1, v_walk / 4) END;
            v_docs := ioffice._search_newest(filters, v_me, v_all, v_reader, v_agencies, v_tasks, v_n);
            IF cardinality(v_docs) < v_n OR v_expect <= v_walk THEN
                v_walked := true;
                -- in two parts: a quarter of the documents expected first;
                -- when far fewer of them have the words than the share said
                -- (a word common elsewhere, rare in the caller's documents),
                -- the text index instead of the rest
                v_part := least(cardinality(v_docs), greatest(50, ceil(coalesce(v_expect, 0) / 4)::int));
                v_found := '{}';
                v_files := '{}';
                v_scores := '{}';
                FOR v_round IN 1 .. 2 LOOP
                    SELECT v_found || coalesce(array_agg(w.id), '{}'), v_files || coalesce(array_agg(w.file_id), '{}'),
                           v_scores || coalesce(array_agg(w.r), '{}')
                      INTO v_found, v_files, v_scores
                      FROM (SELECT u.id, m.file_id, m.r
                              FROM unnest(CASE v_round WHEN 1 THEN v_docs[1:v_part]
                                                       ELSE v_docs[v_part + 1:] END) u(id)
                              CROSS JOIN LATERAL (
                                  SELECT s.file_id, ioffice._search_score(s.words, v_any, v_exact) AS r
                                    FROM ioffice.search_text s
                                   WHERE s.document_id = u.id
                                   ORDER BY 2 DESC NULLS LAST, s.file_id NULLS FIRST
                                   LIMIT 1) m
                             WHERE m.r IS NOT NULL
                             LIMIT v_window + 1 - cardinality(v_found)) w;
                    EXIT WHEN cardinality(v_found) > v_window OR cardinality(v_docs) <= v_part;
                    IF v_round = 1 AND cardinality(v_docs) >= v_n
                       AND cardinality(v_found) < v_part * v_share / 4 THEN
                        v_walked := false;
                        EXIT;
                    END IF;
                END LOOP;
                -- the words were rarer among these documents than in all: the
                -- walk ended before the window was full, the text index then
                IF cardinality(v_found) <= v_window AND cardinality(v_docs) >= v_n THEN
                    v_walked := false;
                END IF;
            END IF;
        END IF;
    END IF;
    -- The text index: the rows with the words and one of the caller's keys
    -- (each candidate's document by its key, LATERAL: the newest first,
    -- without hashing the table of documents)
    IF NOT v_walked THEN
        -- the caller's keys (_search_keys()): their tasks' documents, their
        -- agencies as a clerk, their drafts, the reporting tools' documents; an
        -- admin's agencies are every unit, and the words alone are asked for.
        -- A filter by agency is a key too.  (The documents of the tasks that
        -- another key does not cover, from the indexes alone: a clerk's
        -- thousand tasks are their agency's documents, and each key is one
        -- more entry the index merges.)
        v_keys := CASE WHEN v_all THEN '{}'::text[] ELSE
                  ARRAY(SELECT 'd:' || t FROM unnest(v_tasks) t
                         WHERE NOT EXISTS (SELECT 1 FROM ioffice.document d
                                            WHERE d.agency_id = ANY (v_agencies) AND d.id = t)
                           AND NOT EXISTS (SELECT 1 FROM ioffice.document d
                                            WHERE d.drafter_id = v_me AND d.id = t))
                  || ARRAY(SELECT 'a:' || a FROM unnest(v_agencies) a)
                  || CASE WHEN v_me IS NOT NULL THEN ARRAY['p:' || v_me] ELSE '{}'::text[] END
                  || CASE WHEN v_reader THEN ARRAY['r'] ELSE '{}'::text[] END END;
        v_docs := ARRAY(
            SELECT c.document_id
            FROM (SELECT DISTINCT s.document_id FROM ioffice.search_text s
                   WHERE s.words @@ v_any AND (v_all OR s.keys && v_keys)
                     AND (f.agency IS NULL OR s.keys @> ARRAY['a:' || f.agency])) c
            CROSS JOIN LATERAL (
                SELECT 1 FROM ioffice.document d
                WHERE d.id = c.document_id
                  AND (d.drafter_id = v_me OR d.agency_id = ANY (v_agencies) OR d.id = ANY (v_tasks)
                       OR (v_reader AND d.confidentiality = 'normal'
                           AND (d.register_id IS NULL
                                OR d.register_id IN (SELECT r.id FROM ioffice.register r WHERE NOT r.confidential))))
                  AND (f.agency IS NULL OR d.agency_id = f.agency)
                  AND (f.doc_type IS NULL OR d.doc_type = f.doc_type)
                  AND (f.register IS NULL OR d.register_id = f.register)
                  AND (f.state IS NULL OR d.state = f.state)
                  AND (f.signer IS NULL OR d.signer_id = f.signer)
                  AND (f.direction IS NULL OR d.direction = f.direction)
                  AND (f.issued_from IS NULL OR coalesce(d.issued_on, d.sender_date) >= f.issued_from)
                  AND (f.issued_to IS NULL OR coalesce(d.issued_on, d.sender_date) <= f.issued_to)
                  AND (f.created_from IS NULL OR (d.created_at AT TIME ZONE ioffice.timezone())::date >= f.created_from)
                  AND (f.created_to IS NULL OR (d.created_at AT TIME ZONE ioffice.timezone())::date <= f.created_to)
                LIMIT 1) v
            ORDER BY c.document_id DESC
            LIMIT v_window + 1);
        -- each candidate's best row, scored (a candidate has a row with the words)
        SELECT coalesce(array_agg(w.id), '{}'), coalesce(array_agg(w.file_id), '{}'),
               coalesce(array_agg(w.r), '{}')
          INTO v_found, v_files, v_scores
          FROM (SELECT u.id, m.file_id, m.r
                  FROM unnest(v_docs) u(id)
                  CROSS JOIN LATERAL (
                      SELECT s.file_id, ioffice._search_score(s.words, v_any, v_exact) AS r
                        FROM ioffice.search_text s
                       WHERE s.document_id = u.id
                       ORDER BY 2 DESC NULLS LAST, s.file_id NULLS FIRST
                       LIMIT 1) m
                 WHERE m.r IS NOT NULL) w;
    END IF;
    IF cardinality(v_found) > v_window THEN
        RAISE NOTICE 'search ranked the % newest of the documents that match, not all of them', v_window
            USING DETAIL = 'A query whose words are in many documents is ranked among the newest.',
                  HINT = 'Add words, or filters (agency, doc_type, issued_from, issued_to), to find older documents.';
        -- (both ways list the candidates newest first)
        v_found := v_found[1:v_window];
        v_files := v_files[1:v_window];
        v_scores := v_scores[1:v_window];
    END IF;
    -- 2. the best of them, with the snippet of each one's best row (from
    -- some 1.2 kB around the words' first place in it, _search_window:
    -- ts_headline parses all it is given, and a page of results has up
    -- to "limit")
    RETURN QUERY
    SELECT c.id, c.r,
           ts_headline('ioffice.search_vi'::regconfig, ioffice._search_window(b.body, v_terms), v_any,
                       'StartSel=«, StopSel=», MaxWords=30, MinWords=12, ShortWord=0, '
                       'MaxFragments=2, FragmentDelimiter=" … "')
    FROM (SELECT x.id, x.file_id, x.r FROM unnest(v_found, v_files, v_scores) x(id, file_id, r)
          ORDER BY x.r DESC, x.id DESC
          LIMIT search."limit") c
    CROSS JOIN LATERAL (SELECT s.body FROM ioffice.search_text s
                         WHERE s.document_id = c.id AND s.file_id IS NOT DISTINCT FROM c.file_id) b
    ORDER BY c.r DESC, c.id DESC;
END
$$;
