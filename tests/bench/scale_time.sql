-- Times the home page, the first page of the lists, a register year and a
-- count of the documents, in the database scale_generate.sql filled, for
-- tests/bench/scale.  Each query is called :calls times with random actors
-- of a kind, as the role an application uses (bench_app, a member of
-- ioffice_app naming the person, under row-level security) or a reporting
-- tool (bench_report, a member of ioffice_reader who is no person); each
-- call is followed by the same call as the superuser naming the same
-- person, whom no policy restricts (the floor).  dashboard() and the lists
-- run with their owner's rights (SECURITY DEFINER): no policy applies to
-- them whoever calls, so their floor is themselves and is not timed again.
-- Timed in the server, from before the statement is planned to its last
-- row: no client round trip.  Leaves the figures in bench.timing.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
SELECT setseed(:seed) \gset
DROP SCHEMA IF EXISTS bench CASCADE;
CREATE SCHEMA bench;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bench_app') THEN
        CREATE ROLE bench_app IN ROLE ioffice_app;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bench_report') THEN
        CREATE ROLE bench_report IN ROLE ioffice_reader;
    END IF;
END
$$;

-- the actors of each kind, drawn once: clerks, the agencies' leaders,
-- departments' heads, specialists; a reporting tool names an agency only
CREATE TABLE bench.actor AS
SELECT kind, row_number() OVER (PARTITION BY kind ORDER BY random()) AS n, login, agency
  FROM (SELECT CASE WHEN r.role = 'clerk' THEN 'clerk'
                    WHEN r.role = 'leader' AND u.kind = 'agency' THEN 'leader'
                    WHEN r.role = 'leader' THEN 'head' ELSE 'specialist' END AS kind,
               p.login, u.agency_id AS agency
          FROM ioffice.person p JOIN ioffice.person_role r ON r.person_id = p.id
          JOIN ioffice.unit u ON u.id = p.unit_id
         WHERE r.role IN ('clerk', 'leader', 'specialist')) x;
INSERT INTO bench.actor SELECT 'reader', a, NULL, a FROM generate_series(1, (SELECT max(agency) FROM bench.actor)) a;
DELETE FROM bench.actor WHERE n > :calls;
CREATE INDEX ON bench.actor (kind, n);

-- a first page of a list: its 20 newest rows where the lists take a page
-- (after, limit), else the first 20 of the whole list
SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                          WHERE n.nspname = 'ioffice' AND p.proname = 'outgoing_list' AND p.pronargs = 3)
            THEN 'SELECT * FROM ioffice.%s_list(%L, NULL, 20)'
            ELSE 'SELECT * FROM ioffice.%s_list(%L) LIMIT 20' END AS page \gset

-- what is asked: %agency% is the actor's agency, %year% last year, %today%
-- the agency's today (a literal: a function call would mark a query as
-- needing no floor)
CREATE TABLE bench.query (name text, kind text, sql text, ord serial, floor boolean DEFAULT false);
INSERT INTO bench.query (name, kind, sql)
SELECT 'dashboard()', k, 'SELECT * FROM ioffice.dashboard()'
  FROM unnest(ARRAY['clerk', 'leader', 'head', 'specialist']) k
UNION ALL
SELECT format('outgoing_list(%s)', t), k, format(:'page', 'outgoing', t)
  FROM (VALUES ('awaiting_approval', 'leader'), ('awaiting_approval', 'head'),
               ('awaiting_specialist', 'specialist'), ('awaiting_other_leader', 'head'),
               ('awaiting_issue', 'clerk'), ('issued', 'clerk'), ('issued', 'specialist'),
               ('delegated', 'leader')) v(t, k)
UNION ALL
SELECT format('incoming_list(%s)', t), k, format(:'page', 'incoming', t)
  FROM (VALUES ('unprocessed', 'clerk'), ('awaiting_approval', 'leader'), ('in_progress', 'specialist'),
               ('processed', 'specialist'), ('due', 'specialist'), ('overdue', 'specialist'),
               ('delegated', 'leader'), ('transferred', 'leader')) v(t, k)
UNION ALL
SELECT 'outgoing_register agency-year', k,
       'SELECT * FROM ioffice.outgoing_register WHERE agency_id = %agency% AND year = %year% ORDER BY number'
  FROM unnest(ARRAY['clerk', 'reader']) k
UNION ALL
SELECT 'count(*) FROM document', k, 'SELECT count(*) FROM ioffice.document'
  FROM unnest(ARRAY['leader', 'reader']) k
UNION ALL
SELECT 'dossier_due first page', k, 'SELECT * FROM ioffice.dossier_due ORDER BY deadline LIMIT 20'
  FROM unnest(ARRAY['clerk', 'head', 'specialist']) k
UNION ALL
-- the reports a reporting tool runs on the tables and views, per agency:
-- issued documents by type and month of a year (Decree 30's yearly
-- statistics), incoming documents overdue by the handler's unit
SELECT 'report: outgoing by type and month', k,
       'SELECT doc_type, extract(month FROM issued_on) AS month, count(*) FROM ioffice.outgoing_register '
       'WHERE agency_id = %agency% AND year = %year% GROUP BY 1, 2'
  FROM unnest(ARRAY['clerk', 'reader']) k
UNION ALL
SELECT 'report: incoming overdue by unit', k,
       'SELECT u.name, count(*) FROM ioffice.document d '
       'JOIN ioffice.task t ON t.document_id = d.id AND t.status = ''open'' '
       'JOIN ioffice.person p ON p.id = t.receiver_id JOIN ioffice.unit u ON u.id = p.unit_id '
       'WHERE d.agency_id = %agency% AND d.direction = ''incoming'' '
       'AND t.deadline < %today% GROUP BY u.name'
  FROM unnest(ARRAY['clerk', 'reader']) k;
UPDATE bench.query SET floor = true WHERE sql !~ 'ioffice\.[a-z_]+\(';
DELETE FROM bench.query WHERE :'only' <> '' AND name !~ :'only';

CREATE TABLE bench.timing (query int, actor text, floor boolean, ms float8);

-- one call: as the application or reporting role (or, floor, as the
-- superuser), naming the actor; the milliseconds from before planning to
-- the last row
CREATE FUNCTION bench.call(stmt text, actor text, role text) RETURNS float8
LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz;
    t1 timestamptz;
BEGIN
    PERFORM set_config('ioffice.actor', coalesce(actor, ''), true);
    IF role IS NOT NULL THEN
        PERFORM set_config('role', role, true);
    END IF;
    t0 := clock_timestamp();
    EXECUTE stmt;
    t1 := clock_timestamp();
    PERFORM set_config('role', 'none', true);
    RETURN extract(epoch FROM t1 - t0) * 1000;
END
$$;

CREATE FUNCTION bench.stmt(q bench.query, a bench.actor) RETURNS text LANGUAGE sql AS $$
    SELECT replace(replace(replace(q.sql, '%agency%', a.agency::text),
                   '%year%', (extract(year FROM now() AT TIME ZONE ioffice.timezone())::int - 1)::text),
                   '%today%', quote_literal((now() AT TIME ZONE ioffice.timezone())::date) || '::date')
$$;

-- every query, each call followed by its floor; a transaction per query
-- and kind (the actor is named for the transaction, as SET LOCAL does)
CREATE PROCEDURE bench.run(calls int) LANGUAGE plpgsql AS $$
DECLARE
    q bench.query;
    a bench.actor;
    i int;
    v_role text;
BEGIN
    FOR q IN SELECT * FROM bench.query ORDER BY ord LOOP
        v_role := CASE WHEN q.kind = 'reader' THEN 'bench_report' ELSE 'bench_app' END;
        -- a warm-up call of each (plans, caches)
        SELECT * INTO a FROM bench.actor WHERE kind = q.kind AND n = 1;
        PERFORM bench.call(bench.stmt(q, a), a.login, v_role);
        FOR i IN 1..calls LOOP
            SELECT * INTO a FROM bench.actor
             WHERE kind = q.kind AND n = 1 + (i - 1) % (SELECT count(*) FROM bench.actor x WHERE x.kind = q.kind);
            INSERT INTO bench.timing VALUES (q.ord, coalesce(a.login, '') || '@' || a.agency, false,
                                             bench.call(bench.stmt(q, a), a.login, v_role));
            IF q.floor THEN
                INSERT INTO bench.timing VALUES (q.ord, coalesce(a.login, '') || '@' || a.agency, true,
                                                 bench.call(bench.stmt(q, a), a.login, NULL));
            END IF;
        END LOOP;
        COMMIT;
        RAISE LOG 'scale: % as % done', q.name, q.kind;
    END LOOP;
END
$$;
CALL bench.run(:calls);
