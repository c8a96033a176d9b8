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
-- other.
CREATE FUNCTION _task_documents() RETURNS bigint[]
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    WITH me AS MATERIALIZED (SELECT ioffice.current_person() AS id)
    SELECT coalesce(array_agg(DISTINCT x.document_id), '{}') FROM (
        SELECT t.document_id FROM ioffice.task t WHERE t.receiver_id = (SELECT id FROM me)
        UNION ALL
        SELECT t.document_id FROM ioffice.task t WHERE t.sender_id = (SELECT id FROM me)
        UNION ALL
        SELECT t.document_id FROM ioffice.task t
         WHERE t.processed_by = (SELECT id FROM me) AND t.processed_by <> t.receiver_id
        UNION ALL
        SELECT t.document_id FROM ioffice.delegation g
          JOIN ioffice.task t ON t.receiver_id = g.from_person AND t.status = 'open'
         WHERE g.to_person = (SELECT id FROM me)
           AND now() >= g.valid_from AND now() < g.valid_until) x
$$;

-- The agencies whose documents the current person sees as their clerk; for
-- an admin, who sees every document, every unit (a document's agency_id is
-- one): one indexed test for both.
CREATE FUNCTION _clerk_agencies() RETURNS bigint[]
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    WITH me AS MATERIALIZED (SELECT ioffice.current_person() AS id)
    SELECT CASE WHEN EXISTS (SELECT 1 FROM ioffice.person_role r
                             WHERE r.person_id = (SELECT id FROM me) AND r.role = 'admin')
                THEN (SELECT coalesce(array_agg(u.id), '{}') FROM ioffice.unit u)
                ELSE (SELECT coalesce(array_agg(r.unit_id), '{}') FROM ioffice.person_role r
                       WHERE r.person_id = (SELECT id FROM me) AND r.role = 'clerk') END
$$;

-- The same as sets, for the policies (see _task_documents()): the people
-- whose dossiers the current person sees (themselves and the people of the
-- units they lead; every person for an admin, who sees every dossier), and
-- the dossiers with a task of one of them, by the dossier_task indexes.
CREATE FUNCTION _dossier_people() RETURNS bigint[]
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    WITH me AS MATERIALIZED (SELECT ioffice.current_person() AS id)
    SELECT CASE WHEN EXISTS (SELECT 1 FROM ioffice.person_role r
                             WHERE r.person_id = (SELECT id FROM me) AND r.role = 'admin')
                THEN (SELECT coalesce(array_agg(p.id), '{}') FROM ioffice.person p)
                ELSE (SELECT coalesce(array_agg(DISTINCT x.id), '{}') FROM (
                          SELECT me.id FROM me WHERE me.id IS NOT NULL
                          UNION ALL
                          SELECT p.id FROM ioffice.person_role r
                            JOIN ioffice.person p ON p.unit_id = r.unit_id
                           WHERE r.person_id = (SELECT id FROM me) AND r.role = 'leader') x) END
$$;
CREATE FUNCTION _task_dossiers() RETURNS bigint[]
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    WITH people AS MATERIALIZED (SELECT ioffice._dossier_people() AS ids)
    SELECT CASE WHEN ioffice.is_admin() THEN '{}'
                ELSE (SELECT coalesce(array_agg(DISTINCT x.dossier_id), '{}') FROM (
                          SELECT t.dossier_id FROM ioffice.dossier_task t
                           WHERE t.receiver_id = ANY ((SELECT ids FROM people)::bigint[])
                          UNION ALL
                          SELECT t.dossier_id FROM ioffice.dossier_task t
                           WHERE t.sender_id = ANY ((SELECT ids FROM people)::bigint[])
                          UNION ALL
                          SELECT t.dossier_id FROM ioffice.dossier_task t
                           WHERE t.processed_by = ANY ((SELECT ids FROM people)::bigint[])
                             AND t.processed_by <> t.receiver_id) x) END
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
