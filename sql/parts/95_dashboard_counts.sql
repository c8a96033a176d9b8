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
-- the dump carries the counters (and the other rows triggers would add),
-- so the triggers that call this add nothing.  The audit triggers' own
-- test (extension/audit.c ioffice_restoring_dump), not a second one here.
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
