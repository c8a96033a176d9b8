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
-- A counter row is updated in the transaction that changed the set, so a
-- clerk's row is a point every issue of the agency passes through: issues
-- of one agency commit one after another at that row (they already do at the
-- register's row, which numbers them).
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
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT drafter WHERE drafter IS NOT NULL
       AND ((counter = 'outgoing_issued' AND direction = 'outgoing' AND state = 'issued')
         OR (counter = 'incoming_processed' AND direction = 'incoming' AND state = 'processed'))
    UNION
    SELECT m.p FROM ioffice.task t
      CROSS JOIN LATERAL (VALUES (t.receiver_id),
                                 (CASE WHEN counter = 'outgoing_issued' THEN t.sender_id
                                       WHEN t.processed_by <> t.receiver_id THEN t.processed_by END)) m(p)
     WHERE t.document_id = doc AND t.id IS DISTINCT FROM skip_task AND m.p IS NOT NULL
       AND ((counter = 'outgoing_issued' AND direction = 'outgoing' AND state = 'issued')
         OR (counter = 'incoming_processed' AND direction = 'incoming' AND state = 'processed'))
    UNION
    SELECT r.person_id FROM ioffice.person_role r
     WHERE counter = 'outgoing_issued' AND direction = 'outgoing' AND state = 'issued'
       AND r.unit_id = agency AND r.role = 'clerk'
$$;
REVOKE ALL ON FUNCTION _count_members(text, bigint, text, text, bigint, bigint, bigint) FROM PUBLIC;

-- Add one to the counter of each person in plus, take one from each in
-- minus: one statement, in the order of the people's ids, so that two
-- transactions changing the same people's counters lock them in the same
-- order (no deadlock).  A counter that would go below zero was wrong before
-- (drift: dashboard_counts_check() names it); it is written as it comes
-- rather than failing the document's step.
CREATE FUNCTION _count_apply(counter text, plus bigint[], minus bigint[]) RETURNS void
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO ioffice.dashboard_count AS c (person_id, counter, n)
    SELECT x.p, counter, sum(x.d) FROM (
        SELECT p, 1 AS d FROM unnest(plus) p
        UNION ALL
        SELECT p, -1 FROM unnest(minus) p) x
    GROUP BY x.p HAVING sum(x.d) <> 0
    ORDER BY x.p
    ON CONFLICT (person_id, counter) DO UPDATE SET n = c.n + excluded.n;
$$;
REVOKE ALL ON FUNCTION _count_apply(text, bigint[], bigint[]) FROM PUBLIC;

-- A pg_dump or pg_restore session (check_function_bodies off, superuser):
-- the dump carries the counters, so the triggers add nothing.  The audit
-- triggers' own test (extension/audit.c ioffice_restoring_dump), not a
-- second one here.
CREATE FUNCTION _count_restoring() RETURNS boolean
    AS 'MODULE_PATHNAME', 'ioffice_restoring_dump_sql' LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION _count_restoring() FROM PUBLIC;

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
    IF ioffice._count_restoring() THEN
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
    IF NOT FOUND OR d.state NOT IN ('issued', 'processed') OR ioffice._count_restoring() THEN
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

-- One person's counters counted again from the tabs.  The person's rows are
-- locked first, and counted by a later statement (a snapshot of its own
-- under READ COMMITTED): an issue that changed the counter before the lock
-- has committed by then and is in the count; one after the lock waits for
-- this transaction and adds its one to the count made here.
CREATE FUNCTION _count_person(person bigint) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO ioffice.dashboard_count AS c (person_id, counter, n)
    VALUES (person, 'outgoing_issued', 0), (person, 'incoming_processed', 0)
    ON CONFLICT (person_id, counter) DO UPDATE SET n = c.n;
    UPDATE ioffice.dashboard_count c
       SET n = CASE c.counter
                 WHEN 'outgoing_issued' THEN (SELECT count(*) FROM ioffice._outgoing_tab('issued', person))
                 ELSE (SELECT count(*) FROM ioffice._incoming_tab('processed', person)) END
     WHERE c.person_id = person;
END
$$;
REVOKE ALL ON FUNCTION _count_person(bigint) FROM PUBLIC;

-- person_role: becoming or ceasing to be an agency's clerk adds or takes
-- that agency's issued documents (counted again: a rare, administrative act)
CREATE FUNCTION _count_role() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF ioffice._count_restoring() THEN
        RETURN NULL;
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
    LOCK TABLE ioffice.dashboard_count IN EXCLUSIVE MODE;
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
    SELECT p.id, p.login, c.counter, coalesce(k.n, 0), c.counted
    FROM ioffice.person p
    CROSS JOIN LATERAL (VALUES
        ('outgoing_issued', (SELECT count(*) FROM ioffice._outgoing_tab('issued', p.id))),
        ('incoming_processed', (SELECT count(*) FROM ioffice._incoming_tab('processed', p.id)))
    ) c(counter, counted)
    LEFT JOIN ioffice.dashboard_count k ON k.person_id = p.id AND k.counter = c.counter
    WHERE coalesce(k.n, 0) <> c.counted
    ORDER BY p.id, c.counter
$$;
COMMENT ON FUNCTION dashboard_counts_check() IS
  'People whose kept dashboard() history counters differ from their tabs (none: no drift)';
REVOKE ALL ON FUNCTION dashboard_counts_check() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dashboard_counts_check() TO ioffice_admin;
