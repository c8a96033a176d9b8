-- Row-level security as sets (issue 18) means what can_see() and
-- can_see_dossier() mean.  After every other test has written its
-- documents, files, tasks, delegations, dossiers and audit records, each
-- person in turn (and nobody) reads every table under the policies, as a
-- trusted application acting for them and as a reporting role (a member of
-- ioffice_reader) acting for them; what they get must be, row for row, what
-- the functions that check one id let them see.  Then the plans: the
-- policies are read once per statement and answered from indexes.
SET client_min_messages = warning;

-- a delegate who processed a task in the holder's name (processed_by is not
-- the receiver), and a delegation in force over an open task
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('CV', 'Văn bản cho phép thử tập hợp') AS doc \gset
SELECT ioffice.attach(:doc, 'tap_hop.pdf', content) IS NOT NULL AS attached FROM pdf;
SELECT ioffice.act(:doc, 'submit', 'loi', 'Trình Chủ tịch') IS NOT NULL AS submitted;
RESET ioffice.actor;
-- (the chairman's delegation to the vice-chairman, of the delegation test)
SELECT count(*) = 1 AS delegated FROM ioffice.delegation g
JOIN ioffice.person f ON f.id = g.from_person JOIN ioffice.person t ON t.id = g.to_person
WHERE f.login = 'loi' AND t.login = 'kien' AND now() >= g.valid_from AND now() < g.valid_until;

-- the rows each table shows, as text keys, sorted
CREATE FUNCTION public.vis_rows(OUT tbl text, OUT keys text[]) RETURNS SETOF record
LANGUAGE sql STABLE AS $$
    SELECT 'document', array_agg(id::text ORDER BY id) FROM ioffice.document
    UNION ALL SELECT 'file', array_agg(id::text ORDER BY id) FROM ioffice.file
    UNION ALL SELECT 'task', array_agg(id::text ORDER BY id) FROM ioffice.task
    UNION ALL SELECT 'signature', array_agg(id::text ORDER BY id) FROM ioffice.signature
    UNION ALL SELECT 'document_link', array_agg(document_id || '-' || related_id ORDER BY 1)
              FROM ioffice.document_link
    UNION ALL SELECT 'audit', array_agg(id::text ORDER BY id) FROM ioffice.audit
    UNION ALL SELECT 'dossier', array_agg(id::text ORDER BY id) FROM ioffice.dossier
    UNION ALL SELECT 'dossier_task', array_agg(id::text ORDER BY id) FROM ioffice.dossier_task
    UNION ALL SELECT 'dossier_file', array_agg(id::text ORDER BY id) FROM ioffice.dossier_file
$$;
-- the same through the functions that check one id, asked once per document
-- and dossier (run by the superuser, whom no policy restricts), with the
-- reporting tools' rule for documents
CREATE FUNCTION public.vis_expected(OUT tbl text, OUT keys text[]) RETURNS SETOF record
LANGUAGE sql STABLE AS $$
    WITH seen AS MATERIALIZED (SELECT id FROM ioffice.document WHERE ioffice.can_see(id)),
    seen_dossier AS MATERIALIZED (SELECT id FROM ioffice.dossier WHERE ioffice.can_see_dossier(id))
    SELECT 'document', array_agg(id::text ORDER BY id) FROM ioffice.document d
     WHERE id IN (SELECT id FROM seen)
    UNION ALL SELECT 'document as reader', array_agg(id::text ORDER BY id) FROM ioffice.document d
     WHERE id IN (SELECT id FROM seen)
        OR (confidentiality = 'normal'
            AND (register_id IS NULL
                 OR register_id IN (SELECT r.id FROM ioffice.register r WHERE NOT r.confidential)))
    UNION ALL SELECT 'file', array_agg(id::text ORDER BY id) FROM ioffice.file
     WHERE document_id IN (SELECT id FROM seen)
    UNION ALL SELECT 'task', array_agg(id::text ORDER BY id) FROM ioffice.task
     WHERE document_id IN (SELECT id FROM seen)
    UNION ALL SELECT 'signature', array_agg(id::text ORDER BY id) FROM ioffice.signature
     WHERE document_id IN (SELECT id FROM seen)
    UNION ALL SELECT 'document_link', array_agg(document_id || '-' || related_id ORDER BY 1)
              FROM ioffice.document_link WHERE document_id IN (SELECT id FROM seen)
    UNION ALL SELECT 'audit', array_agg(id::text ORDER BY id) FROM ioffice.audit
     WHERE (SELECT ioffice.is_admin()) OR (entity = 'document' AND entity_id IN (SELECT id FROM seen))
        OR (entity = 'dossier' AND entity_id IN (SELECT id FROM seen_dossier))
    UNION ALL SELECT 'dossier', array_agg(id::text ORDER BY id) FROM ioffice.dossier
     WHERE id IN (SELECT id FROM seen_dossier)
    UNION ALL SELECT 'dossier_task', array_agg(id::text ORDER BY id) FROM ioffice.dossier_task
     WHERE dossier_id IN (SELECT id FROM seen_dossier)
    UNION ALL SELECT 'dossier_file', array_agg(id::text ORDER BY id) FROM ioffice.dossier_file
     WHERE dossier_id IN (SELECT id FROM seen_dossier)
$$;
-- under the policies: as an application (and a reporting application)
-- acting for the person, a role the policies restrict
CREATE ROLE vis_app IN ROLE ioffice_app;
CREATE ROLE vis_report IN ROLE ioffice_app, ioffice_reader;
CREATE FUNCTION public.vis_as_app(OUT tbl text, OUT keys text[]) RETURNS SETOF record
LANGUAGE sql STABLE SECURITY DEFINER AS $$ SELECT * FROM public.vis_rows() $$;
CREATE FUNCTION public.vis_as_report(OUT tbl text, OUT keys text[]) RETURNS SETOF record
LANGUAGE sql STABLE SECURITY DEFINER AS $$ SELECT * FROM public.vis_rows() $$;
ALTER FUNCTION public.vis_as_app() OWNER TO vis_app;
ALTER FUNCTION public.vis_as_report() OWNER TO vis_report;

-- every person, and nobody (an unknown login): one row per person, kind of
-- role and table
CREATE TEMP TABLE vis_cmp (login text, reader boolean, tbl text, got text[], want text[]);
DO $$
DECLARE
    v_login text;
BEGIN
    FOR v_login IN SELECT login FROM ioffice.person UNION ALL SELECT 'nobody_at_all' LOOP
        PERFORM set_config('ioffice.actor', v_login, true);
        CREATE TEMP TABLE want ON COMMIT DROP AS SELECT * FROM public.vis_expected();
        INSERT INTO vis_cmp
        SELECT v_login, false, g.tbl, g.keys, w.keys FROM public.vis_as_app() g JOIN want w USING (tbl);
        INSERT INTO vis_cmp
        SELECT v_login, true, g.tbl, g.keys, w.keys
          FROM public.vis_as_report() g
          JOIN want w ON w.tbl = CASE g.tbl WHEN 'document' THEN 'document as reader' ELSE g.tbl END;
        DROP TABLE want;
    END LOOP;
    PERFORM set_config('ioffice.actor', '', true);
END
$$;
-- the policies show each person exactly what the functions do; and the
-- comparison is not idle: people see some rows of every table and not all
SELECT tbl, reader,
       bool_and(got IS NOT DISTINCT FROM want) AS same_rows,
       count(*) FILTER (WHERE got IS DISTINCT FROM want) AS people_differing,
       count(*) FILTER (WHERE cardinality(want) > 0) > 1 AS some_see_some,
       bool_or(coalesce(cardinality(want), 0) < (SELECT max(cardinality(x.want)) FROM vis_cmp x
                                                WHERE x.tbl = c.tbl AND x.reader = c.reader)) AS not_all_see_all
FROM vis_cmp c GROUP BY tbl, reader ORDER BY reader, tbl;
-- the ways to see a document, each taken by somebody here: the drafter, a
-- task's receiver and sender, a delegate who processed one, a delegation in
-- force, the clerk, an admin
SELECT count(*) > 0 AS delegate_processed FROM ioffice.task WHERE processed_by <> receiver_id;
SELECT count(*) > 0 AS delegation_in_force FROM ioffice.delegation g
  JOIN ioffice.task t ON t.receiver_id = g.from_person AND t.status = 'open'
 WHERE now() >= g.valid_from AND now() < g.valid_until;
SELECT (SELECT :doc::text = ANY (got) FROM vis_cmp WHERE login = 'kien' AND NOT reader AND tbl = 'document')
       AS delegate_sees_open_task;

-- The plans: the person's id, their tasks' documents and their agencies are
-- InitPlans (once per statement), no call per row; a person's documents are
-- found by the indexes (BitmapOr), not by reading the table.
CREATE FUNCTION public.vis_plan(stmt text) RETURNS SETOF text
LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    SET LOCAL enable_seqscan = off;
    RETURN QUERY EXECUTE 'EXPLAIN (COSTS OFF) ' || stmt;
END
$$;
ALTER FUNCTION public.vis_plan(text) OWNER TO vis_app;
BEGIN;
SET LOCAL ioffice.actor = 'dai';
CREATE TEMP TABLE plan_doc AS SELECT * FROM public.vis_plan('SELECT count(*) FROM ioffice.document');
CREATE TEMP TABLE plan_task AS SELECT * FROM public.vis_plan('SELECT * FROM ioffice.task WHERE document_id = 1');
CREATE TEMP TABLE plan_dossier AS SELECT * FROM public.vis_plan('SELECT count(*) FROM ioffice.dossier');
COMMIT;
SELECT bool_or(p ~ 'BitmapOr') AS doc_bitmap_or,
       bool_or(p ~ 'Index Scan on document_drafter_idx') AS by_drafter,
       bool_or(p ~ 'Index Scan on document_pkey') AS by_task_documents,
       bool_or(p ~ 'Index Scan on document_agency_(state_|type_)?idx') AS by_agency,
       count(*) FILTER (WHERE p ~ 'InitPlan') >= 3 AS once_per_statement,
       NOT bool_or(p ~ 'can_see|Seq Scan') AS no_call_per_row
FROM plan_doc AS x(p);
SELECT bool_or(p ~ 'Index Scan using task_document_id_step_key|Index Scan on task_document_id_step_key') AS task_by_document,
       NOT bool_or(p ~ 'can_see') AS no_can_see
FROM plan_task AS x(p);
SELECT bool_or(p ~ 'BitmapOr') AS dossier_bitmap_or, NOT bool_or(p ~ 'can_see_dossier') AS no_can_see_dossier
FROM plan_dossier AS x(p);

DROP FUNCTION public.vis_plan(text);
DROP FUNCTION public.vis_as_app();
DROP FUNCTION public.vis_as_report();
DROP FUNCTION public.vis_expected();
DROP FUNCTION public.vis_rows();
DROP ROLE vis_app;
DROP ROLE vis_report;
