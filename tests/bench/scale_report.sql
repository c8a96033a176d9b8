-- The figures of scale_time.sql (bench.timing): per query and kind of
-- actor, the median and 95th percentile under row-level security and
-- without (the floor, the superuser), their ratio, and the targets of issue
-- 18 (p95 <= 50 ms for the home page and the first pages, <= 2x the floor
-- for everything).  Then the plans of the three slowest (by p95), run once
-- more by their slowest actor with auto_explain (nested statements too:
-- the lists are functions), each plan printed by the server to this
-- client.  dashboard() and the lists run with their owner's rights, whom no
-- policy restricts: they are their own floor.
\set ON_ERROR_STOP on
\pset footer off
SET client_min_messages = warning;
CREATE TEMP TABLE fig AS
SELECT q.ord, q.name, q.kind, count(*) FILTER (WHERE NOT t.floor) AS calls,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY t.ms) FILTER (WHERE NOT t.floor) AS p50,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY t.ms) FILTER (WHERE NOT t.floor) AS p95,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY t.ms) FILTER (WHERE t.floor = q.floor) AS f50,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY t.ms) FILTER (WHERE t.floor = q.floor) AS f95,
       q.floor
  FROM bench.timing t JOIN bench.query q ON q.ord = t.query
 GROUP BY q.ord, q.name, q.kind, q.floor;
SELECT name AS query, kind AS actor, calls,
       round(p50::numeric, 2) AS "p50 ms", round(p95::numeric, 2) AS "p95 ms",
       CASE WHEN floor THEN round(f50::numeric, 2)::text ELSE 'itself' END AS "floor p50",
       CASE WHEN floor THEN round(f95::numeric, 2)::text ELSE 'itself' END AS "floor p95",
       round((p95 / nullif(f95, 0))::numeric, 2) AS "p95/floor",
       concat_ws(' ', CASE WHEN name ~ '^(dashboard|outgoing_list|incoming_list)' AND p95 > 50
                           THEN 'p95>50ms' END,
                 CASE WHEN p95 > 2 * f95 THEN '>2x floor' END) AS "target missed"
  FROM fig ORDER BY ord;

\echo
\echo 'the three slowest (p95), by their slowest actor, with auto_explain:'
LOAD 'auto_explain';
SET auto_explain.log_min_duration = '1ms';
SET auto_explain.log_analyze = on;
SET auto_explain.log_buffers = on;
SET auto_explain.log_timing = on;
SET auto_explain.log_nested_statements = on;
SELECT format('SELECT %L AS slowest', format('%s as %s (p95 %s ms), actor %s', f.name, f.kind,
                                                round(f.p95::numeric, 1), w.actor)),
       'BEGIN', format('SET LOCAL ioffice.actor = %L', coalesce(a.login, '')),
       format('SET LOCAL ROLE %I', CASE WHEN f.kind = 'reader' THEN 'bench_report' ELSE 'bench_app' END),
       'SET LOCAL client_min_messages = log',
       format('WITH q AS MATERIALIZED (%s) SELECT count(*) AS rows FROM q', bench.stmt(q, a)), 'COMMIT'
  FROM (SELECT * FROM fig ORDER BY p95 DESC LIMIT 3) f
  JOIN bench.query q ON q.ord = f.ord
  JOIN LATERAL (SELECT t.actor FROM bench.timing t WHERE t.query = f.ord AND NOT t.floor
                 ORDER BY t.ms DESC LIMIT 1) w ON true
  JOIN bench.actor a ON a.kind = f.kind AND coalesce(a.login, '') || '@' || a.agency = w.actor
 ORDER BY f.p95 DESC \gexec
