
-- ---------------------------------------------------------------------------
-- HTTP outbox: events for other systems, delivered by the worker
-- ---------------------------------------------------------------------------

-- Where events go.  A DBA adds a row per target system (the TTHC system, an
-- SMS/e-mail/Zalo gateway); events names the events it takes: exact names
-- ('document.issued'), prefixes ('dossier.*') or '*'.
CREATE TABLE endpoint (
    id           bigserial PRIMARY KEY,
    name         text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9_.-]{1,63}$'),
    url          text NOT NULL CHECK (url ~ '^https?://[^\s]+$' AND length(url) <= 2000),
    -- the key of the HMAC-SHA256 signature of every request body
    secret       text NOT NULL CHECK (length(secret) BETWEEN 16 AND 500),
    events       text[] NOT NULL DEFAULT '{*}'
                 CHECK (cardinality(events) BETWEEN 1 AND 100
                        AND array_position(events, NULL) IS NULL),
    timeout_ms   int NOT NULL DEFAULT 10000 CHECK (timeout_ms BETWEEN 100 AND 600000),
    max_attempts int NOT NULL DEFAULT 12 CHECK (max_attempts BETWEEN 1 AND 1000),
    enabled      boolean NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE endpoint IS 'Targets of the HTTP outbox: URL, HMAC secret, timeout, attempts, the events each one takes';
COMMENT ON COLUMN endpoint.events IS 'Event names this endpoint takes: ''document.issued'', a prefix ''dossier.*'', or ''*''';
COMMENT ON COLUMN endpoint.secret IS 'Key of the X-Ioffice-Signature header (HMAC-SHA256 of the body); readable by the owner only';

-- One row per event and endpoint, written in the transaction of the change
-- (so an event exists exactly when the change committed).  The worker
-- delivers pending rows, at least once: the idempotency key, sent with every
-- attempt, lets the receiver drop repeats.
CREATE TABLE outbox (
    id              bigserial PRIMARY KEY,
    endpoint_id     bigint NOT NULL REFERENCES endpoint,
    event           text NOT NULL,
    idempotency_key uuid NOT NULL UNIQUE,
    -- the request body, built once, so every attempt sends the same bytes
    body            jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_attempt_at timestamptz,
    last_status     int,                -- HTTP status of the last answer, NULL if none came
    last_error      text,
    delivered_at    timestamptz,
    CHECK ((status = 'delivered') = (delivered_at IS NOT NULL)),
    -- what a witness answered (2xx) to an audit.checkpoint event, up to
    -- 4 KiB of text: its receipt, signed if the witness signs them
    receipt         text
);
-- the worker's queue, in order of due time
CREATE INDEX outbox_due_idx ON outbox (next_attempt_at, id) WHERE status = 'pending';
-- each endpoint's queue, for the deliverer's turns between endpoints
CREATE INDEX outbox_endpoint_due_idx ON outbox (endpoint_id, next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX outbox_dead_idx ON outbox (endpoint_id, id) WHERE status = 'dead';
CREATE INDEX outbox_created_at_idx ON outbox (created_at);
COMMENT ON TABLE outbox IS 'Events to deliver over HTTP (one row per endpoint); pending, delivered, or dead after the last attempt';
COMMENT ON COLUMN outbox.receipt IS 'The answer (2xx, up to 4 KiB of text) of the endpoint to an audit.checkpoint event: a witness''s receipt';

SELECT pg_catalog.pg_extension_config_dump('endpoint', '');
SELECT pg_catalog.pg_extension_config_dump('endpoint_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('outbox', '');
SELECT pg_catalog.pg_extension_config_dump('outbox_id_seq', '');

-- Secrets stay with the owner (the worker and SECURITY DEFINER functions);
-- DBAs configure endpoints and read the outbox.
REVOKE ALL ON endpoint, outbox FROM PUBLIC;
GRANT SELECT (id, name, url, events, timeout_ms, max_attempts, enabled, created_at),
      INSERT, UPDATE, DELETE ON endpoint TO ioffice_admin;
GRANT USAGE ON SEQUENCE endpoint_id_seq TO ioffice_admin;
GRANT SELECT ON outbox TO ioffice_admin;

CREATE FUNCTION emit(event text, data jsonb DEFAULT '{}') RETURNS int
    AS 'MODULE_PATHNAME', 'ioffice_emit'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION emit(text, jsonb) IS
  'Queues an event for every enabled endpoint that takes it, in this transaction; returns how many rows were queued';
REVOKE ALL ON FUNCTION emit(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION emit(text, jsonb) TO ioffice_app, ioffice_admin;

-- The same for the system's own events written from SQL (dossiers); not granted.
CREATE FUNCTION _emit(event text, data jsonb DEFAULT '{}') RETURNS int
    AS 'MODULE_PATHNAME', 'ioffice_emit_system'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION _emit(text, jsonb) FROM PUBLIC;

-- Dead letters back into the queue: one event, or all of an endpoint's.
CREATE FUNCTION outbox_requeue(event_id bigint DEFAULT NULL, endpoint text DEFAULT NULL)
    RETURNS int
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n int;
BEGIN
    IF (event_id IS NULL) = (endpoint IS NULL) THEN
        RAISE EXCEPTION 'outbox_requeue needs an event id or an endpoint name, not both'
            USING ERRCODE = '22023';
    END IF;
    IF endpoint IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM ioffice.endpoint e WHERE e.name = outbox_requeue.endpoint) THEN
        RAISE EXCEPTION 'unknown endpoint "%"', endpoint USING ERRCODE = '42704';
    END IF;
    UPDATE ioffice.outbox o
       SET status = 'pending', attempts = 0, next_attempt_at = now()
     WHERE o.status = 'dead'
       AND (o.id = event_id
            OR o.endpoint_id = (SELECT e.id FROM ioffice.endpoint e WHERE e.name = outbox_requeue.endpoint));
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 AND event_id IS NOT NULL THEN
        IF NOT EXISTS (SELECT 1 FROM ioffice.outbox o WHERE o.id = event_id) THEN
            RAISE EXCEPTION 'unknown outbox event %', event_id USING ERRCODE = '42704';
        END IF;
        RAISE EXCEPTION 'outbox event % is not dead', event_id USING ERRCODE = '55000';
    END IF;
    IF n > 0 THEN
        PERFORM ioffice._wake_worker();
    END IF;
    RETURN n;
END
$$;
COMMENT ON FUNCTION outbox_requeue(bigint, text) IS
  'Puts dead events (one, or all of an endpoint''s) back in the queue with their attempts reset';
REVOKE ALL ON FUNCTION outbox_requeue(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION outbox_requeue(bigint, text) TO ioffice_admin;

CREATE FUNCTION _wake_worker() RETURNS void
    AS 'MODULE_PATHNAME', 'ioffice_wake_worker_sql' LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION _wake_worker() FROM PUBLIC;

-- worker_status, now with the outbox: its depth, what is due, dead letters
-- and the last of them; and the conversions of Word files to PDF before
-- signing: signatures waiting for one, files converted, signatures failed
-- in conversion, the converter's and its LibreOffice's pids.  The queues
-- are read in the current database: the other databases' rows show NULL
-- there (query the view in each database).
CREATE OR REPLACE VIEW worker_status AS
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
       w.connect_failures, w.next_connect_at,
       CASE WHEN w.database = current_database() THEN
       (SELECT count(*) FROM ioffice.signature s JOIN ioffice.file f ON f.id = s.file_id
         WHERE s.status = 'pending'
           AND f.kind IN ('doc', 'docx', 'xls', 'xlsx', 'odt', 'ods')) END AS conversions_pending,
       c.conversions_done, c.conversions_failed, c.converter_pid, c.soffice_pid
FROM ioffice._worker_slots() AS w
LEFT JOIN ioffice._converter_slots() AS c ON c.database = w.database;
GRANT SELECT ON worker_status TO ioffice_admin;
COMMENT ON VIEW worker_status IS 'What the background workers (a signer and a deliverer per database) are doing, the current database''s queue depths (signatures, outbox, files waiting to become PDFs), the signer''s converter (LibreOffice), the last error and when';

-- An endpoint enabled or repaired (URL, secret) is tried at once, not at
-- the worker's next nap.
CREATE FUNCTION _endpoint_changed() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM ioffice._wake_worker();
    RETURN NULL;
END
$$;
CREATE TRIGGER wake_worker AFTER INSERT OR UPDATE ON endpoint
    FOR EACH STATEMENT EXECUTE FUNCTION _endpoint_changed();
-- backends keep the enabled endpoints' event patterns (extension/outbox.c)
CREATE FUNCTION _endpoints_changed() RETURNS trigger
    AS 'MODULE_PATHNAME', 'ioffice_endpoints_changed' LANGUAGE C;
CREATE TRIGGER invalidate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON endpoint
    FOR EACH STATEMENT EXECUTE FUNCTION _endpoints_changed();
-- also when a DBA or replication writes with session_replication_role = replica
ALTER TABLE endpoint ENABLE ALWAYS TRIGGER invalidate;
-- where events go is a DBA's decision on the record (the secret left out)
CREATE TRIGGER audit_direct AFTER INSERT OR UPDATE OR DELETE ON endpoint
    FOR EACH ROW WHEN (_outside_engine()) EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct_truncate AFTER TRUNCATE ON endpoint
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_direct();

-- Delivered events are kept (what was sent, when, after how many attempts)
-- until a DBA purges them; dead and pending ones are never purged.
CREATE FUNCTION outbox_purge(delivered_before timestamptz) RETURNS bigint
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    WITH gone AS (
        DELETE FROM ioffice.outbox
         WHERE status = 'delivered' AND delivered_at < delivered_before
        RETURNING 1)
    SELECT count(*) FROM gone
$$;
COMMENT ON FUNCTION outbox_purge(timestamptz) IS
  'Deletes events delivered before the given time; returns how many';
REVOKE ALL ON FUNCTION outbox_purge(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION outbox_purge(timestamptz) TO ioffice_admin;
