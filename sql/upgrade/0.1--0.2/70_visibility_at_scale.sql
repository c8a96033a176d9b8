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
        RAISE EXCEPTION 'unknown tab "%"', tab USING ERRCODE = '22023',
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
        RAISE EXCEPTION 'unknown tab "%"', tab USING ERRCODE = '22023',
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
    -- the tabs' own rows, counted (a counter never disagrees with its tab)
    RETURN QUERY
    SELECT
        (SELECT count(*) FROM ioffice._incoming_tab('unprocessed', v_me)),
        (SELECT count(*) FROM ioffice._incoming_tab('in_progress', v_me)),
        (SELECT count(*) FROM ioffice._incoming_tab('processed', v_me)),
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
        (SELECT count(*) FROM ioffice._outgoing_tab('issued', v_me));
END
$$;
COMMENT ON FUNCTION dashboard() IS 'The home page counters (Trang chủ) for the actor';
