-- The typical queries of tests/bench/search, the ILIKE scan they are
-- measured against, and the timing loop, in the database scale_generate.sql
-- and search_generate.sql filled.
--
-- psql -v calls=N -v scan_runs=M -v scan_warmup=W -v check_clerks=C -v page=P -v seed=X -f search_queries.sql
--
-- Each query is called :calls times (after one untimed call: warm cache) as
-- the role an application uses (bench_app, a member of ioffice_app, no
-- superuser: row-level security holds) naming a clerk of an agency drawn at
-- random (the person who searches most, and the widest view an ordinary
-- person has: their agency's documents and their own), asking for the
-- first :page results; the common word also as the admin (who sees every
-- document) and as a reporting tool (bench_reader, a member of
-- ioffice_reader naming nobody: every ordinary document); timed in the server from before the call is planned
-- to its last row.  The ILIKE scan is the same question asked without the
-- text index: every row of search_text (metadata and file text) folded by
-- contrib's unaccent and matched with ILIKE '%words%', its documents read
-- through row-level security as the same clerk, with the same filters, the
-- newest :page of them; run :scan_runs times (it is slow).
-- Leaves the figures in bench.timing and the soundness checks in bench.check.
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
END
$$;
GRANT USAGE ON SCHEMA bench TO bench_app;

-- the queries: what a clerk types, the filters (agency 0: the clerk's own),
-- the ILIKE pattern of the same words, and whether the two must find the
-- same documents (the words are next to each other wherever they occur in
-- the generated text, and are no part of other words)
CREATE TABLE bench.query (name text PRIMARY KEY, ord int, query text, filters jsonb, pattern text,
                          same_set boolean, who text DEFAULT 'clerk');
INSERT INTO bench.query VALUES
    ('common word',  1, 'triển khai',             '{}', '%trien khai%', false),
    ('rare word',    2, '"ươm tơ"',               '{}', '%uom to%', true),
    ('phrase',       3, '"phòng cháy chữa cháy"', '{}', '%phong chay chua chay%', true),
    ('unaccented',   4, 'nghi dinh',              '{}', '%nghi dinh%', false),
    ('filtered',     5, 'kế hoạch',
     jsonb_build_object('agency', 0, 'doc_type', 'KH',
                        'issued_from', make_date(extract(year FROM now())::int - 1, 1, 1),
                        'issued_to', make_date(extract(year FROM now())::int - 1, 12, 31)),
     '%ke hoach%', true),
    ('nothing',      6, 'tàu vũ trụ',             '{}', '%tau vu tru%', true);
INSERT INTO bench.query VALUES
    ('common word, admin',  7, 'triển khai', '{}', '%trien khai%', false, 'admin'),
    ('common word, report', 8, 'triển khai', '{}', '%trien khai%', false, 'reader');
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bench_reader') THEN
        CREATE ROLE bench_reader IN ROLE ioffice_reader;
    END IF;
END
$$;
GRANT SELECT ON bench.query TO bench_app;

-- the clerks, with their agency
CREATE TABLE bench.actor AS
SELECT row_number() OVER (ORDER BY random()) AS n, p.login, r.unit_id AS agency
  FROM ioffice.person p JOIN ioffice.person_role r ON r.person_id = p.id AND r.role = 'clerk';
GRANT SELECT ON bench.actor TO bench_app;

CREATE TABLE bench.timing (name text, kind text, ms float8, found int);
CREATE TABLE bench.check (name text, login text, search_n int, scan_n int, same boolean);
GRANT INSERT ON bench.timing, bench.check TO bench_app;

-- the filters of a query for a clerk: agency 0 is theirs
CREATE FUNCTION bench.filters(q bench.query, a bench.actor) RETURNS jsonb LANGUAGE sql STABLE
AS $$ SELECT CASE WHEN q.filters ? 'agency' THEN q.filters || jsonb_build_object('agency', a.agency)
                  ELSE q.filters END $$;

-- the scan: the documents whose metadata or file text has the words, by
-- ILIKE over the unaccented text.  Its owner's rights read search_text
-- (nobody else may); the caller then reads the documents under row-level
-- security, as search() applies the same policies.
CREATE FUNCTION bench.scan_rows(pattern text) RETURNS SETOF bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
AS $$ SELECT DISTINCT s.document_id FROM ioffice.search_text s WHERE unaccent(s.body) ILIKE pattern $$;
GRANT EXECUTE ON FUNCTION bench.scan_rows(text) TO bench_app;
CREATE FUNCTION bench.scan(pattern text, f jsonb, lim int) RETURNS SETOF bigint
LANGUAGE sql STABLE
AS $$
    SELECT d.id FROM ioffice.document d
     WHERE d.id IN (SELECT bench.scan_rows(pattern))
       AND (NOT f ? 'agency' OR d.agency_id = (f ->> 'agency')::bigint)
       AND (NOT f ? 'doc_type' OR d.doc_type = f ->> 'doc_type')
       AND (NOT f ? 'issued_from' OR coalesce(d.issued_on, d.sender_date) >= (f ->> 'issued_from')::date)
       AND (NOT f ? 'issued_to' OR coalesce(d.issued_on, d.sender_date) <= (f ->> 'issued_to')::date)
     ORDER BY d.id DESC LIMIT lim
$$;

-- who calls: a clerk drawn at random, the admin, or a reporting tool
CREATE FUNCTION bench.act_as(who text, n_actors int) RETURNS void LANGUAGE plpgsql
AS $$
DECLARE
    k int := 1 + floor(random() * n_actors)::int;
BEGIN
    PERFORM set_config('role', CASE who WHEN 'reader' THEN 'bench_reader' ELSE 'bench_app' END, false);
    PERFORM set_config('ioffice.actor',
        CASE who WHEN 'clerk' THEN (SELECT a.login FROM bench.actor a WHERE a.n = k)
                 WHEN 'admin' THEN 'quantri' ELSE '' END, false);
END
$$;
GRANT EXECUTE ON FUNCTION bench.act_as(text, int) TO bench_app;
GRANT USAGE ON SCHEMA bench TO bench_reader;
GRANT SELECT ON bench.query, bench.actor TO bench_reader;
GRANT INSERT ON bench.timing TO bench_reader;

SET bench.check_clerks = :'check_clerks';
SET ROLE bench_app;

-- soundness: for :check_clerks clerks (3), the documents search() finds (up to 10,000)
-- against the scan's, for the queries where both mean the same
DO $$
DECLARE
    q bench.query;
    a bench.actor;
    s bigint[];
    c bigint[];
BEGIN
    FOR q IN SELECT * FROM bench.query WHERE same_set AND who = 'clerk' ORDER BY ord LOOP
        FOR a IN SELECT * FROM bench.actor WHERE n <= current_setting('bench.check_clerks')::int LOOP
            PERFORM set_config('ioffice.actor', a.login, false);
            SELECT coalesce(array_agg(x.document ORDER BY x.document), '{}') INTO s
              FROM ioffice.search(q.query, bench.filters(q, a), 10000) x;
            SELECT coalesce(array_agg(x ORDER BY x), '{}') INTO c
              FROM bench.scan(q.pattern, bench.filters(q, a), 10001) x;
            INSERT INTO bench.check VALUES (q.name, a.login, cardinality(s), cardinality(c),
                                            CASE WHEN cardinality(c) > 10000 THEN NULL ELSE s = c END);
        END LOOP;
    END LOOP;
END
$$;

-- the timed calls: search() :calls times per query, then (once every
-- query's searches are timed) the scan :scan_runs times per query, each
-- with a clerk drawn at random, after an untimed call.  The scans come
-- last: at a million documents each reads gigabytes for minutes, and
-- searches timed between them measured what the scans left in the cache,
-- not what a clerk's search costs
SET bench.calls = :'calls';
SET bench.scan_runs = :'scan_runs';
SET bench.scan_warmup = :'scan_warmup';
SET bench.page = :'page';
DO $$
DECLARE
    q bench.query;
    a bench.actor;
    n_actors int := (SELECT count(*) FROM bench.actor);
    calls int := current_setting('bench.calls')::int;
    scans int := current_setting('bench.scan_runs')::int;
    page int := current_setting('bench.page')::int;
    t timestamptz;
    found int;
    k int;
BEGIN
    FOR q IN SELECT * FROM bench.query ORDER BY ord LOOP
        FOR i IN 0 .. calls LOOP
            PERFORM bench.act_as(q.who, n_actors);
            SELECT * INTO a FROM bench.actor WHERE login = current_setting('ioffice.actor');
            t := clock_timestamp();
            SELECT count(*) INTO found FROM ioffice.search(q.query, bench.filters(q, a), page);
            IF i > 0 THEN
                INSERT INTO bench.timing VALUES
                    (q.name, 'search', 1000 * extract(epoch FROM clock_timestamp() - t), found);
            END IF;
        END LOOP;
        PERFORM set_config('role', 'bench_app', false);
    END LOOP;
END
$$;
DO $$
DECLARE
    q bench.query;
    a bench.actor;
    n_actors int := (SELECT count(*) FROM bench.actor);
    scans int := current_setting('bench.scan_runs')::int;
    page int := current_setting('bench.page')::int;
    t timestamptz;
    found int;
BEGIN
    FOR q IN SELECT * FROM bench.query ORDER BY ord LOOP
        FOR i IN 1 - current_setting('bench.scan_warmup')::int .. scans LOOP
            PERFORM bench.act_as(q.who, n_actors);
            SELECT * INTO a FROM bench.actor WHERE login = current_setting('ioffice.actor');
            t := clock_timestamp();
            SELECT count(*) INTO found FROM bench.scan(q.pattern, bench.filters(q, a), page);
            IF i > 0 THEN
                INSERT INTO bench.timing VALUES
                    (q.name, 'scan', 1000 * extract(epoch FROM clock_timestamp() - t), found);
            END IF;
        END LOOP;
        PERFORM set_config('role', 'bench_app', false);
    END LOOP;
END
$$;
RESET ROLE;
