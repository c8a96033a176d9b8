-- The background worker is two processes per database, a signer and a
-- deliverer, so that signing never waits for the network; worker_status
-- shows both, a database the workers cannot connect to, and each database's
-- own queue depths.  The view is made again over the new _worker_slots().
DROP VIEW worker_status;
DROP FUNCTION _worker_slots();

-- one row per served database: its signer's and its deliverer's processes
-- (pid, state and started_at of the row are the signer's; state shows the
-- deliverer's when the signer is idle), and its connection failures
CREATE FUNCTION _worker_slots(OUT database text, OUT pid int, OUT state text, OUT started_at timestamptz,
                              OUT last_batch_at timestamptz, OUT batches bigint, OUT jobs_done bigint,
                              OUT jobs_failed bigint, OUT deliveries bigint, OUT deliveries_failed bigint,
                              OUT last_error text, OUT last_error_at timestamptz,
                              OUT signer_pid int, OUT signer_state text,
                              OUT delivery_pid int, OUT delivery_state text,
                              OUT delivery_started_at timestamptz,
                              OUT connect_failures int, OUT next_connect_at timestamptz)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'ioffice_worker_slots_sql' LANGUAGE C VOLATILE;
-- last_error may quote another system's answer or a signing failure: DBAs only
REVOKE ALL ON FUNCTION _worker_slots() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION _worker_slots() TO ioffice_admin;

-- worker_status, now with the outbox: its depth, what is due, dead letters
-- and the last of them.  The queues are read in the current database: the
-- other databases' rows show NULL there (query the view in each database).
CREATE VIEW worker_status AS
SELECT w.database, w.pid, w.state, w.started_at, w.last_batch_at, w.batches, w.jobs_done,
       w.jobs_failed, w.deliveries, w.deliveries_failed, w.last_error, w.last_error_at,
       CASE WHEN w.database = current_database() THEN
       (SELECT count(*) FROM ioffice.signature s WHERE s.status = 'pending') END AS signatures_pending,
       CASE WHEN w.database = current_database() THEN
       (SELECT count(*) FROM ioffice.signature s WHERE s.status = 'failed') END AS signatures_failed,
       CASE WHEN w.database = current_database() THEN
       (SELECT count(*) FROM ioffice.outbox o WHERE o.status = 'pending') END AS outbox_pending,
       CASE WHEN w.database = current_database() THEN
       (SELECT count(*) FROM ioffice.outbox o
         WHERE o.status = 'pending' AND o.next_attempt_at <= now()) END AS outbox_due,
       CASE WHEN w.database = current_database() THEN
       (SELECT count(*) FROM ioffice.outbox o WHERE o.status = 'dead') END AS outbox_dead,
       CASE WHEN w.database = current_database() THEN
       (SELECT format('event %s to %s: %s', o.id, e.name, o.last_error)
          FROM ioffice.outbox o JOIN ioffice.endpoint e ON e.id = o.endpoint_id
         WHERE o.status = 'dead' ORDER BY o.id DESC LIMIT 1) END AS outbox_last_dead,
       w.signer_pid, w.signer_state, w.delivery_pid, w.delivery_state, w.delivery_started_at,
       w.connect_failures, w.next_connect_at
FROM ioffice._worker_slots() AS w;
GRANT SELECT ON worker_status TO ioffice_admin;
COMMENT ON VIEW worker_status IS 'What the background workers (a signer and a deliverer per database) are doing, the current database''s queue depths (signatures, outbox), the last error and when';

-- each endpoint's queue, for the deliverer's turns between endpoints
CREATE INDEX outbox_endpoint_due_idx ON outbox (endpoint_id, next_attempt_at, id) WHERE status = 'pending';
