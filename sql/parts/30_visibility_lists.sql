-- ---------------------------------------------------------------------------
-- Visibility
-- ---------------------------------------------------------------------------

-- Who may see a document: its drafter, anyone who holds or held a task on it
-- (as sender or receiver), a person delegated by such a holder, a clerk of its
-- agency, an admin.  SECURITY DEFINER so that it reads the tables past their
-- own row-level security.  PL/pgSQL, not SQL: a SQL function's query is
-- planned again at every call (the planner also calls current_person()
-- while estimating), which cost 2 ms of every act() that checks it; this
-- one keeps its plan for the session.
CREATE FUNCTION can_see(doc bigint) RETURNS boolean
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

-- A document the actor may not see is unknown to them: 42704 'unknown
-- document N', as for one that does not exist (extension/actor.c).  For the
-- extension's SQL functions; the C ones call the same code.
CREATE FUNCTION _require_document(doc bigint) RETURNS void
    AS 'MODULE_PATHNAME', 'ioffice_require_document_sql'
    LANGUAGE C STABLE;
REVOKE ALL ON FUNCTION _require_document(bigint) FROM PUBLIC;

CREATE FUNCTION is_admin() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM ioffice.person_role r
                   WHERE r.person_id = ioffice.current_person() AND r.role = 'admin')
$$;

-- Does the current person keep the registers of an agency: is it one of its
-- clerks, or an admin?  A confidential register and its entries are theirs
-- alone.
CREATE FUNCTION keeps_registers(agency bigint) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM ioffice.person_role r
                   WHERE r.person_id = ioffice.current_person()
                     AND ((r.role = 'clerk' AND r.unit_id = agency) OR r.role = 'admin'))
$$;

-- Row-level security the planner can use.  A policy that calls can_see(id)
-- on every row rules out every index and costs a function call per row (a
-- leader's count(*) over 40,000 documents took 16 s).  The policies below
-- say the same as can_see() with sets: the acting person's id, the
-- documents they hold or held a task on, the agencies whose clerk they are,
-- each computed once per statement (an uncorrelated sub-select, an
-- InitPlan) and compared with indexed columns (drafter_id, id, agency_id),
-- so that the planner can combine the indexes (BitmapOr) or hash the set.
-- can_see() stays for the functions that check one id.

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

ALTER TABLE document ENABLE ROW LEVEL SECURITY;
ALTER TABLE file ENABLE ROW LEVEL SECURITY;
ALTER TABLE task ENABLE ROW LEVEL SECURITY;
ALTER TABLE signature ENABLE ROW LEVEL SECURITY;
ALTER TABLE document_link ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit ENABLE ROW LEVEL SECURITY;
ALTER TABLE delegation ENABLE ROW LEVEL SECURITY;

-- A confidential register (its name, and its counter, which tells how many
-- numbers it gave) is seen by its agency's clerks and the admins only; the
-- DBAs who keep the registers (ioffice_admin) read and write them all.
ALTER TABLE register ENABLE ROW LEVEL SECURITY;
CREATE POLICY visible ON register FOR SELECT
    USING (NOT confidential OR ioffice.keeps_registers(agency_id));
CREATE POLICY dba ON register TO ioffice_admin USING (true) WITH CHECK (true);

-- A person sees the documents can_see() lets them see: three indexed tests,
-- each against a value or a set computed once per statement.  The agency
-- test comes before the tasks': an OR is tested in its order, and an
-- InitPlan is computed only when first needed, so a clerk reading their
-- agency's documents never collects (nor searches, row by row) the
-- thousands of documents their tasks touched.
CREATE POLICY visible ON document FOR SELECT
    USING (drafter_id = (SELECT ioffice.current_person())
           OR agency_id = ANY ((SELECT ioffice._clerk_agencies())::bigint[])
           OR id = ANY ((SELECT ioffice._task_documents())::bigint[]));
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
-- numbers taken by other systems: the reporting tools read those of the
-- ordinary registers; a register's keepers read all of its own
ALTER TABLE number_taken ENABLE ROW LEVEL SECURITY;
CREATE POLICY visible ON number_taken FOR SELECT
    USING (register_id IN (
        SELECT r.id FROM ioffice.register r
        WHERE (NOT r.confidential AND pg_catalog.pg_has_role('ioffice_reader', 'USAGE'))
           OR ioffice.keeps_registers(r.agency_id)));
-- The rows of a document (files, tasks, signatures, links, audit records)
-- are seen by whoever can_see() the document (a reader who is no person of
-- it does not): an admin; a document of the person's tasks (a hashed set);
-- one they drafted or keep as its agency's clerk (its row, by the primary
-- key, or all of them hashed: the planner chooses by the rows to check).
CREATE POLICY visible ON file FOR SELECT
    USING ((SELECT ioffice.is_admin())
           OR file.document_id IN (SELECT unnest(ioffice._task_documents()))
           OR EXISTS (SELECT 1 FROM ioffice.document d
                      WHERE d.id = file.document_id
                        AND (d.drafter_id = (SELECT ioffice.current_person())
                             OR d.agency_id = ANY ((SELECT ioffice._clerk_agencies())::bigint[]))));
CREATE POLICY visible ON task FOR SELECT
    USING ((SELECT ioffice.is_admin())
           OR task.document_id IN (SELECT unnest(ioffice._task_documents()))
           OR EXISTS (SELECT 1 FROM ioffice.document d
                      WHERE d.id = task.document_id
                        AND (d.drafter_id = (SELECT ioffice.current_person())
                             OR d.agency_id = ANY ((SELECT ioffice._clerk_agencies())::bigint[]))));
CREATE POLICY visible ON signature FOR SELECT
    USING ((SELECT ioffice.is_admin())
           OR signature.document_id IN (SELECT unnest(ioffice._task_documents()))
           OR EXISTS (SELECT 1 FROM ioffice.document d
                      WHERE d.id = signature.document_id
                        AND (d.drafter_id = (SELECT ioffice.current_person())
                             OR d.agency_id = ANY ((SELECT ioffice._clerk_agencies())::bigint[]))));
CREATE POLICY visible ON document_link FOR SELECT
    USING ((SELECT ioffice.is_admin())
           OR document_link.document_id IN (SELECT unnest(ioffice._task_documents()))
           OR EXISTS (SELECT 1 FROM ioffice.document d
                      WHERE d.id = document_link.document_id
                        AND (d.drafter_id = (SELECT ioffice.current_person())
                             OR d.agency_id = ANY ((SELECT ioffice._clerk_agencies())::bigint[]))));
CREATE POLICY visible ON audit FOR SELECT
    USING ((SELECT ioffice.is_admin())
           OR (audit.entity = 'document'
               AND (audit.entity_id IN (SELECT unnest(ioffice._task_documents()))
                    OR EXISTS (SELECT 1 FROM ioffice.document d
                               WHERE d.id = audit.entity_id
                                 AND (d.drafter_id = (SELECT ioffice.current_person())
                                      OR d.agency_id = ANY ((SELECT ioffice._clerk_agencies())::bigint[]))))));
CREATE POLICY visible ON delegation FOR SELECT
    USING (from_person = ioffice.current_person() OR to_person = ioffice.current_person()
           OR ioffice.is_admin());

-- The outgoing register (sổ đăng ký văn bản đi, Decree 30 appendix IV):
-- issued documents and numbers taken by external systems.  security_invoker,
-- so a reader sees what the row-level security of the tables lets them see:
-- the rows of a confidential register go with the register's own row.  An
-- entry is confidential when its document or its register is.  The type's
-- name is the one the entry was registered with (doc_type_name, kept at
-- issue: a DBA's later renaming of the type does not rewrite the register),
-- and so are the signer's and the drafting unit's (signer_name,
-- drafting_unit_name: an admin correcting a person's name later does not
-- change who signed); a number voided by its taker stays, with the reason,
-- in the note.
CREATE VIEW outgoing_register WITH (security_invoker = true) AS
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
COMMENT ON VIEW outgoing_register IS 'Sổ đăng ký văn bản đi (Decree 30): issued documents and numbers taken by other systems';
COMMENT ON COLUMN outgoing_register.number IS 'Số';
COMMENT ON COLUMN outgoing_register.symbol IS 'Số, ký hiệu văn bản';
COMMENT ON COLUMN outgoing_register.issued_on IS 'Ngày tháng văn bản';
COMMENT ON COLUMN outgoing_register.type_and_abstract IS 'Tên loại và trích yếu nội dung văn bản';
COMMENT ON COLUMN outgoing_register.signer IS 'Người ký';
COMMENT ON COLUMN outgoing_register.recipients IS 'Nơi nhận văn bản';
COMMENT ON COLUMN outgoing_register.archive_unit IS 'Đơn vị, người nhận bản lưu';
COMMENT ON COLUMN outgoing_register.copies IS 'Số lượng bản';
COMMENT ON COLUMN outgoing_register.sent_on IS 'Ngày chuyển';
COMMENT ON COLUMN outgoing_register.receipt IS 'Ký nhận (trên sổ in)';
COMMENT ON COLUMN outgoing_register.note IS 'Ghi chú';
COMMENT ON COLUMN outgoing_register.year IS 'Năm của sổ';
COMMENT ON COLUMN outgoing_register.register_code IS 'Sổ văn bản';

-- The incoming register (sổ đăng ký văn bản đến, Decree 30 appendix IV).
CREATE VIEW incoming_register WITH (security_invoker = true) AS
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
COMMENT ON VIEW incoming_register IS 'Sổ đăng ký văn bản đến (Decree 30)';
COMMENT ON COLUMN incoming_register.received_on IS 'Ngày đến';
COMMENT ON COLUMN incoming_register.number IS 'Số đến';
COMMENT ON COLUMN incoming_register.sender IS 'Tác giả';
COMMENT ON COLUMN incoming_register.sender_symbol IS 'Số, ký hiệu';
COMMENT ON COLUMN incoming_register.sender_date IS 'Ngày tháng';
COMMENT ON COLUMN incoming_register.type_and_abstract IS 'Tên loại và trích yếu nội dung';
COMMENT ON COLUMN incoming_register.handlers IS 'Đơn vị hoặc người nhận';
COMMENT ON COLUMN incoming_register.assigned_on IS 'Ngày chuyển';
COMMENT ON COLUMN incoming_register.receipt IS 'Ký nhận (trên sổ in)';
COMMENT ON COLUMN incoming_register.note IS 'Ghi chú';
COMMENT ON COLUMN incoming_register.year IS 'Năm của sổ';
COMMENT ON COLUMN incoming_register.register_code IS 'Sổ văn bản';

GRANT USAGE ON SCHEMA ioffice TO PUBLIC;
GRANT SELECT ON ALL TABLES IN SCHEMA ioffice TO PUBLIC;
-- the directory is everyone's, people's phone numbers and addresses are not
-- (the notifications read them as the owner)
REVOKE SELECT ON person FROM PUBLIC;
GRANT SELECT (id, login, full_name, position, unit_id, active) ON person TO PUBLIC;
GRANT SELECT ON person TO ioffice_admin;
GRANT INSERT, UPDATE, DELETE ON workflow, workflow_state, workflow_transition, doc_type,
    register TO ioffice_admin;
-- a DBA's new register takes its id from the sequence; a DBA keeps people's
-- names, positions and the phones and addresses the notifications use (every
-- such edit is audited by the person table's trigger)
GRANT USAGE ON SEQUENCE register_id_seq TO ioffice_admin;
GRANT UPDATE (full_name, position, phone, email, active) ON person TO ioffice_admin;

-- ---------------------------------------------------------------------------
-- What people see
-- ---------------------------------------------------------------------------

CREATE FUNCTION person_label(p bigint) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT full_name || coalesce(' - ' || "position", '') FROM ioffice.person WHERE id = p
$$;

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
CREATE FUNCTION trail(doc bigint)
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

CREATE FUNCTION urgency_rank(urgency text) RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE urgency WHEN 'urgent' THEN 1 WHEN 'very_urgent' THEN 2
                        WHEN 'flash' THEN 3 WHEN 'flash_timed' THEN 4 ELSE 0 END
$$;

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

CREATE FUNCTION dashboard()
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
COMMENT ON FUNCTION dashboard() IS 'The home page counters (Trang chủ) for the actor';

