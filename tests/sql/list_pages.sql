-- The lists and the home page's counters, each tab a query of its own
-- (issue 18): for every person, every tab shows exactly the rows, in the
-- order, that the lists of 0.1 showed (kept below as they were, as
-- pg_temp functions); dashboard() counts them; and a list read page by
-- page (limit, after) gives each of its documents once, newest first.
\set SHOW_CONTEXT never
SET client_min_messages = warning;

-- three of each that the other tests leave empty: returned by a leader,
-- forwarded to another, an incoming document awaiting assignment (also the
-- delegate's: loi delegates to kien), one assigned with a deadline soon to
-- its lead and a past one to a cooperator
DO $$
DECLARE
    v_doc bigint;
    v_today date := (now() AT TIME ZONE ioffice.timezone())::date;
BEGIN
    FOR i IN 1..3 LOOP
        PERFORM set_config('ioffice.actor', 'regress_luan', true);
        v_doc := ioffice.create_outgoing('CV', 'Văn bản trả lại ' || i);
        PERFORM ioffice.attach(v_doc, 'tra_lai.pdf', (SELECT content FROM pdf));
        PERFORM ioffice.act(v_doc, 'submit', 'dai', 'Kính trình');
        PERFORM set_config('ioffice.actor', 'dai', true);
        PERFORM ioffice.act(v_doc, 'return', NULL, 'Đề nghị sửa lại');
        PERFORM set_config('ioffice.actor', 'regress_luan', true);
        v_doc := ioffice.create_outgoing('CV', 'Văn bản chuyển tiếp ' || i);
        PERFORM ioffice.attach(v_doc, 'chuyen.pdf', (SELECT content FROM pdf));
        PERFORM ioffice.act(v_doc, 'submit', 'dai', 'Kính trình');
        PERFORM set_config('ioffice.actor', 'dai', true);
        PERFORM ioffice.act(v_doc, 'forward', 'loi', 'Kính trình Chủ tịch');
        PERFORM set_config('ioffice.actor', 'regress_thuy', true);
        v_doc := ioffice.register_incoming('CV', 'Văn bản đến chờ phân công ' || i, 'Sở Nội vụ tỉnh',
                                           i || '/SNV-TRANG', v_today - 1);
        PERFORM ioffice.act(v_doc, 'submit', 'loi', 'Kính trình');
        v_doc := ioffice.register_incoming('CV', 'Văn bản đến có hạn ' || i, 'Sở Nội vụ tỉnh',
                                           (10 + i) || '/SNV-TRANG', v_today - 1);
        PERFORM ioffice.act(v_doc, 'submit', 'loi', 'Kính trình');
        PERFORM set_config('ioffice.actor', 'loi', true);
        PERFORM ioffice.act(v_doc, 'assign', 'regress_tuan', 'Chủ trì',
            jsonb_build_object('deadline', to_char(v_today + 1, 'YYYY-MM-DD'),
                               'cooperate', jsonb_build_array(jsonb_build_object(
                                   'login', 'regress_luan', 'deadline', to_char(v_today - 1, 'YYYY-MM-DD')))));
    END LOOP;
    PERFORM set_config('ioffice.actor', '', true);
END
$$;

-- the lists and the home page as 0.1 had them
CREATE FUNCTION pg_temp.old_outgoing_list(tab text)
RETURNS TABLE (document bigint, urgency text, awaiting_signature boolean,
               number_symbol text, abstract text, issuing_agency text,
               received_at timestamptz, priority int, state text, holder text)
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_me bigint := ioffice.actor();
BEGIN
    IF tab IS NULL OR tab NOT IN ('awaiting_approval', 'awaiting_specialist', 'awaiting_other_leader',
                                  'awaiting_issue', 'issued', 'delegated') THEN
        RAISE EXCEPTION 'unknown tab "%"', tab USING ERRCODE = '22023',
              HINT = 'Tabs are awaiting_approval, awaiting_specialist, awaiting_other_leader, awaiting_issue, issued, delegated.';
    END IF;
    RETURN QUERY
    WITH picked AS (
        SELECT d.id
        FROM ioffice.document d
        WHERE d.direction = 'outgoing' AND CASE tab
            WHEN 'awaiting_approval' THEN d.state = 'reviewing' AND EXISTS (
                SELECT 1 FROM ioffice.task t WHERE t.document_id = d.id
                  AND t.status = 'open' AND t.receiver_id = v_me)
            WHEN 'awaiting_specialist' THEN d.state = 'returned' AND EXISTS (
                SELECT 1 FROM ioffice.task t WHERE t.document_id = d.id AND t.status = 'open'
                  AND t.action = 'return' AND (t.sender_id = v_me OR t.sender_for = v_me))
            WHEN 'awaiting_other_leader' THEN d.state = 'reviewing' AND EXISTS (
                SELECT 1 FROM ioffice.task t WHERE t.document_id = d.id AND t.status = 'done'
                  AND t.closed_by_action = 'forward' AND t.receiver_id = v_me)
              AND NOT EXISTS (
                SELECT 1 FROM ioffice.task t WHERE t.document_id = d.id
                  AND t.status = 'open' AND t.receiver_id = v_me)
            WHEN 'awaiting_issue' THEN d.state = 'awaiting_issue' AND EXISTS (
                SELECT 1 FROM ioffice.task t WHERE t.document_id = d.id
                  AND ((t.status = 'open' AND t.receiver_id = v_me)
                       OR (t.status = 'done' AND t.closed_by_action IN ('approve', 'quick_approve')
                           AND (t.receiver_id = v_me OR t.processed_by = v_me))))
            WHEN 'issued' THEN d.state = 'issued' AND (
                d.drafter_id = v_me
                OR EXISTS (SELECT 1 FROM ioffice.task t WHERE t.document_id = d.id
                           AND (t.receiver_id = v_me OR t.sender_id = v_me))
                OR EXISTS (SELECT 1 FROM ioffice.person_role r WHERE r.person_id = v_me
                           AND r.role = 'clerk' AND r.unit_id = d.agency_id))
            WHEN 'delegated' THEN EXISTS (
                SELECT 1 FROM ioffice.task t
                JOIN ioffice.delegation g ON g.from_person = t.receiver_id
                JOIN ioffice.workflow_transition w
                  ON w.workflow = d.workflow AND w.from_state = d.state AND w.delegable
                WHERE t.document_id = d.id AND t.status = 'open' AND g.to_person = v_me
                  AND now() >= g.valid_from AND now() < g.valid_until)
            END
    )
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
    FROM picked JOIN ioffice.document d ON d.id = picked.id
    JOIN ioffice.unit a ON a.id = d.agency_id
    ORDER BY ioffice.urgency_rank(d.urgency) DESC, 7 DESC, d.id DESC;
END
$$;

CREATE FUNCTION pg_temp.old_incoming_list(tab text)
RETURNS TABLE (document bigint, arrival_number int, urgency text, sender text, sender_symbol text,
               sender_date date, abstract text, received_at timestamptz, deadline date,
               state text, holder text, priority int)
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_me bigint := ioffice.actor();
    v_today date := (now() AT TIME ZONE ioffice.timezone())::date;
    v_soon int := current_setting('ioffice.due_soon_days')::int;
BEGIN
    IF tab IS NULL OR tab NOT IN ('unprocessed', 'awaiting_approval', 'in_progress', 'processed',
                                  'due', 'overdue', 'delegated', 'transferred') THEN
        RAISE EXCEPTION 'unknown tab "%"', tab USING ERRCODE = '22023',
              HINT = 'Tabs are unprocessed, awaiting_approval, in_progress, processed, due, overdue, delegated, transferred.';
    END IF;
    RETURN QUERY
    WITH mine AS (
        -- my open tasks on incoming documents, with their deadline
        SELECT t.document_id, coalesce(t.deadline, d.due_date) AS deadline
        FROM ioffice.task t JOIN ioffice.document d ON d.id = t.document_id
        WHERE t.status = 'open' AND t.receiver_id = v_me AND d.direction = 'incoming'
    ), picked AS (
        SELECT d.id, NULL::date AS deadline
        FROM ioffice.document d
        WHERE tab = 'unprocessed' AND d.direction = 'incoming' AND (
              (d.state = 'received' AND EXISTS (
                  SELECT 1 FROM ioffice.person_role r WHERE r.person_id = v_me
                     AND r.role = 'clerk' AND r.unit_id = d.agency_id))
           OR (d.state IN ('registered', 'returned') AND d.drafter_id = v_me))
        UNION ALL
        SELECT d.id, m.deadline FROM ioffice.document d JOIN mine m ON m.document_id = d.id
        WHERE tab = 'awaiting_approval' AND d.state = 'awaiting_assignment'
        UNION ALL
        SELECT DISTINCT d.id, m.deadline FROM ioffice.document d JOIN mine m ON m.document_id = d.id
        WHERE tab = 'in_progress' AND d.state = 'in_progress'
        UNION ALL
        SELECT d.id, NULL FROM ioffice.document d
        WHERE tab = 'processed' AND d.direction = 'incoming' AND d.state = 'processed'
          AND (d.drafter_id = v_me OR EXISTS (
              SELECT 1 FROM ioffice.task t WHERE t.document_id = d.id
                 AND (t.receiver_id = v_me OR t.processed_by = v_me)))
        UNION ALL
        SELECT DISTINCT d.id, m.deadline FROM ioffice.document d JOIN mine m ON m.document_id = d.id
        WHERE tab = 'due' AND m.deadline >= v_today AND m.deadline < v_today + v_soon
        UNION ALL
        SELECT DISTINCT d.id, m.deadline FROM ioffice.document d JOIN mine m ON m.document_id = d.id
        WHERE tab = 'overdue' AND m.deadline < v_today
        UNION ALL
        SELECT d.id, t.deadline FROM ioffice.document d
        JOIN ioffice.task t ON t.document_id = d.id AND t.status = 'open' AND t.kind = 'main'
        JOIN ioffice.delegation g ON g.from_person = t.receiver_id
        WHERE tab = 'delegated' AND d.direction = 'incoming' AND d.state = 'awaiting_assignment'
          AND g.to_person = v_me AND now() >= g.valid_from AND now() < g.valid_until
        UNION ALL
        SELECT d.id, NULL FROM ioffice.document d
        WHERE tab = 'transferred' AND d.direction = 'incoming' AND d.state = 'in_progress'
          AND EXISTS (SELECT 1 FROM ioffice.task t WHERE t.document_id = d.id
                         AND t.closed_by_action = 'assign' AND t.processed_by = v_me)
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
    ORDER BY ioffice.urgency_rank(d.urgency) DESC, p.deadline NULLS LAST, d.received_at DESC, d.id DESC;
END
$$;

CREATE FUNCTION pg_temp.old_dashboard()
RETURNS TABLE (incoming_unprocessed bigint, incoming_in_progress bigint,
               incoming_processed bigint, incoming_due bigint, incoming_overdue bigint,
               incoming_awaiting_approval bigint, incoming_delegated bigint,
               incoming_transferred bigint, outgoing_awaiting_approval bigint,
               outgoing_awaiting_processing bigint, outgoing_delegated bigint,
               outgoing_issued bigint)
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_me bigint := ioffice.actor();
BEGIN
    RETURN QUERY
    SELECT
        (SELECT count(*) FROM pg_temp.old_incoming_list('unprocessed')),
        (SELECT count(*) FROM pg_temp.old_incoming_list('in_progress')),
        (SELECT count(*) FROM pg_temp.old_incoming_list('processed')),
        (SELECT count(*) FROM pg_temp.old_incoming_list('due')),
        (SELECT count(*) FROM pg_temp.old_incoming_list('overdue')),
        (SELECT count(*) FROM pg_temp.old_incoming_list('awaiting_approval')),
        (SELECT count(*) FROM pg_temp.old_incoming_list('delegated')),
        (SELECT count(*) FROM pg_temp.old_incoming_list('transferred')),
        (SELECT count(*) FROM pg_temp.old_outgoing_list('awaiting_approval')),
        (SELECT count(*) FROM ioffice.task t JOIN ioffice.document d ON d.id = t.document_id
         WHERE t.status = 'open' AND t.receiver_id = v_me AND d.direction = 'outgoing'
           AND d.state IN ('returned', 'awaiting_issue')),
        -- the lists' own counts, so that a counter never disagrees with its tab
        (SELECT count(*) FROM pg_temp.old_outgoing_list('delegated')),
        (SELECT count(*) FROM pg_temp.old_outgoing_list('issued'));
END
$$;

-- every person: each tab, the home page
CREATE TEMP TABLE tabs (direction text, tab text);
INSERT INTO tabs VALUES
    ('outgoing', 'awaiting_approval'), ('outgoing', 'awaiting_specialist'),
    ('outgoing', 'awaiting_other_leader'), ('outgoing', 'awaiting_issue'), ('outgoing', 'issued'),
    ('outgoing', 'delegated'),
    ('incoming', 'unprocessed'), ('incoming', 'awaiting_approval'), ('incoming', 'in_progress'),
    ('incoming', 'processed'), ('incoming', 'due'), ('incoming', 'overdue'), ('incoming', 'delegated'),
    ('incoming', 'transferred');
CREATE TEMP TABLE cmp (login text, direction text, tab text, got text[], want text[]);
CREATE TEMP TABLE pages (login text, direction text, tab text, paged bigint[], whole bigint[],
                         deadlines_ok boolean);
CREATE TEMP TABLE home (login text, got text, want text);
DO $$
DECLARE
    v_login text;
    v_tab tabs;
    v_page bigint[];
    v_all bigint[];
    v_after bigint;
    v_ok boolean;
BEGIN
    FOR v_login IN SELECT login FROM ioffice.person WHERE active ORDER BY id LOOP
        PERFORM set_config('ioffice.actor', v_login, true);
        INSERT INTO home SELECT v_login, (SELECT d::text FROM ioffice.dashboard() d),
                                (SELECT d::text FROM pg_temp.old_dashboard() d);
        FOR v_tab IN SELECT * FROM tabs LOOP
            IF v_tab.direction = 'outgoing' THEN
                INSERT INTO cmp SELECT v_login, v_tab.direction, v_tab.tab,
                    ARRAY(SELECT l::text FROM ioffice.outgoing_list(v_tab.tab) l),
                    ARRAY(SELECT l::text FROM pg_temp.old_outgoing_list(v_tab.tab) l);
            ELSE
                INSERT INTO cmp SELECT v_login, v_tab.direction, v_tab.tab,
                    ARRAY(SELECT l::text FROM ioffice.incoming_list(v_tab.tab) l),
                    ARRAY(SELECT l::text FROM pg_temp.old_incoming_list(v_tab.tab) l);
            END IF;
            -- page by page, two at a time
            v_all := '{}';
            v_after := NULL;
            v_ok := true;
            LOOP
                IF v_tab.direction = 'outgoing' THEN
                    v_page := ARRAY(SELECT l.document FROM ioffice.outgoing_list(v_tab.tab, v_after, 2) l);
                ELSE
                    v_page := ARRAY(SELECT l.document FROM ioffice.incoming_list(v_tab.tab, v_after, 2) l);
                    -- each document once, with its nearest deadline
                    v_ok := v_ok AND NOT EXISTS (
                        SELECT 1 FROM ioffice.incoming_list(v_tab.tab, v_after, 2) p
                         WHERE p.deadline IS DISTINCT FROM (SELECT min(w.deadline) FROM ioffice.incoming_list(v_tab.tab) w
                                                             WHERE w.document = p.document));
                END IF;
                EXIT WHEN cardinality(v_page) = 0;
                v_all := v_all || v_page;
                v_after := v_page[cardinality(v_page)];
                EXIT WHEN cardinality(v_all) > 1000;
            END LOOP;
            INSERT INTO pages SELECT v_login, v_tab.direction, v_tab.tab, v_all,
                CASE WHEN v_tab.direction = 'outgoing'
                     THEN ARRAY(SELECT DISTINCT l.document FROM ioffice.outgoing_list(v_tab.tab) l ORDER BY 1 DESC)
                     ELSE ARRAY(SELECT DISTINCT l.document FROM ioffice.incoming_list(v_tab.tab) l ORDER BY 1 DESC) END,
                v_ok;
        END LOOP;
    END LOOP;
    PERFORM set_config('ioffice.actor', '', true);
END
$$;
-- the same rows in the same order as 0.1, for every person and tab; and
-- the comparison is not idle: every tab has rows for somebody
SELECT direction, tab, bool_and(got = want) AS same_rows_same_order,
       count(*) FILTER (WHERE got <> want) AS people_differing,
       bool_or(cardinality(want) > 0) AS somebody_has_rows
FROM cmp GROUP BY direction, tab ORDER BY direction DESC, tab;
-- the home page's counters, likewise
SELECT bool_and(got = want) AS same_counters, count(*) AS people,
       count(*) FILTER (WHERE got <> want) AS people_differing FROM home;
-- pages: every document of the tab once, newest first, each with its
-- nearest deadline
SELECT direction, tab, bool_and(paged = whole) AS pages_give_the_list,
       bool_and(deadlines_ok) AS nearest_deadlines,
       bool_or(cardinality(whole) > 2) AS somebody_has_several_pages
FROM pages GROUP BY direction, tab ORDER BY direction DESC, tab;

-- a page is asked for with at least one row
SET ioffice.actor = 'regress_thuy';
SELECT document FROM ioffice.outgoing_list('issued', NULL, 0);
\echo :SQLSTATE
SELECT document FROM ioffice.incoming_list('processed', NULL, -1);
\echo :SQLSTATE
-- and the tabs' queries are no one's to call for another person
CREATE ROLE regress_list_caller LOGIN;
SET SESSION AUTHORIZATION regress_list_caller;
SELECT count(*) FROM ioffice._outgoing_tab('issued', 1);
\echo :SQLSTATE
SELECT count(*) FROM ioffice._incoming_tab('processed', 1);
\echo :SQLSTATE
RESET SESSION AUTHORIZATION;
DROP ROLE regress_list_caller;
RESET ioffice.actor;
