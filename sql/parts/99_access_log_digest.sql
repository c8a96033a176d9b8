-- ---------------------------------------------------------------------------
-- The access log made tamper-evident (issue 19), without a cost to the views
-- that write it: no hash per row, no chain lock at the INSERT (the log's row
-- stays one plain INSERT, sql/parts/99_access_log.sql).  The worker digests
-- the log afterwards, a range of time at a time: each checkpoint holds the
-- SHA-256 of every row whose time falls in [range_from, range_to), in a
-- fixed order, their count, and a hash chained to the previous checkpoint's;
-- its hash is also written into the audit trail (chain 'access_log'), which
-- is sealed, signed and witnessed: rewriting the log and its checkpoints
-- together breaks the audit's chain.  access_log_verify() recomputes the
-- ranges and names the first that differs.
--
-- A range is digested once no row can still arrive in it: a row's time is
-- its transaction's start (now()), so the range ends before the start of
-- every transaction still open in the database (pg_stat_activity, read
-- before the rows are: a transaction that ends in between is then seen
-- committed), a margin before the present, and not at all while a prepared
-- transaction (whose start is unknown) waits.
--
-- The retention's pruning (_access_log_prune) cuts at a checkpoint's end
-- only, and records the cut (access_log_pruned) before it deletes: the
-- ranges before the cut are no longer recomputed, their checkpoints' chain
-- still is.
-- ---------------------------------------------------------------------------

CREATE TABLE access_log_checkpoint (
    -- 1, 2, 3, ... without gaps
    id          bigint PRIMARY KEY CHECK (id >= 1),
    made_at     timestamptz NOT NULL DEFAULT now(),
    -- the first range starts at -infinity; each next one where the last ended
    range_from  timestamptz NOT NULL,
    range_to    timestamptz NOT NULL CHECK (range_to > range_from),
    rows        bigint NOT NULL CHECK (rows >= 0),
    -- SHA-256 of the range's rows (_access_log_range())
    digest      bytea NOT NULL,
    -- the previous checkpoint's hash; NULL for the first
    previous    bytea,
    -- _access_log_checkpoint_hash() of the fields above
    hash        bytea NOT NULL,
    UNIQUE (range_from)
);
COMMENT ON TABLE access_log_checkpoint IS
  'The access log''s digests (tamper evidence): each range of time''s rows hashed, counted and chained; written by the worker, checked by access_log_verify()';

-- the checkpoint cut by the retention's pruning: the rows of its range and
-- every earlier one may be gone
CREATE TABLE access_log_pruned (
    at            timestamptz NOT NULL DEFAULT now(),
    checkpoint_id bigint NOT NULL
);
COMMENT ON TABLE access_log_pruned IS
  'Where the retention''s pruning cut the access log: rows up to the end of that checkpoint''s range may be deleted';

CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON access_log_checkpoint
    FOR EACH ROW EXECUTE FUNCTION _audit_append_only();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON access_log_checkpoint
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_append_only();
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON access_log_pruned
    FOR EACH ROW EXECUTE FUNCTION _audit_append_only();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON access_log_pruned
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_append_only();
REVOKE ALL ON access_log_checkpoint FROM PUBLIC;
REVOKE ALL ON access_log_pruned FROM PUBLIC;
GRANT SELECT ON access_log_checkpoint TO ioffice_admin;
GRANT SELECT ON access_log_pruned TO ioffice_admin;
SELECT pg_catalog.pg_extension_config_dump('access_log_checkpoint', '');
SELECT pg_catalog.pg_extension_config_dump('access_log_pruned', '');

-- A time as the hashes write it: microseconds since 1970-01-01 UTC (the
-- same in every time zone), or -infinity.
CREATE FUNCTION _access_log_us(t timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE STRICT SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN isfinite(t) THEN ((extract(epoch FROM t) * 1000000)::bigint)::text
                ELSE t::text END
$$;
REVOKE ALL ON FUNCTION _access_log_us(timestamptz) FROM PUBLIC;

-- The rows of [range_from, range_to): how many, and the SHA-256 of
-- F(at) F(person_id) F(action) F(document_id) F(file_id) F(case_file_id)
-- F(detail) F(params) of each, F(x) = byte length ":" x ";", F(NULL) =
-- "-;", at as text in UTC and ISO style (2026-12-02 08:30:00.123456+00, the
-- fraction without its trailing zeros), params as jsonb's text; the rows in
-- the order of at, then of these bytes.  (The settings are the function's
-- own, so that the text of a time is the same in every session; the hashing
-- is by plain SQL expressions, some 100,000 rows a second.)
CREATE FUNCTION _access_log_range(range_from timestamptz, range_to timestamptz,
                                  OUT rows bigint, OUT digest bytea)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
AS $$
    SELECT count(*),
           sha256(convert_to(coalesce(string_agg(r.enc, '' ORDER BY r.at, r.enc COLLATE "C"), ''), 'UTF8'))
      FROM (SELECT a.at,
                   octet_length(a.at::text) || ':' || a.at::text || ';'
                   || octet_length(a.person_id::text) || ':' || a.person_id::text || ';'
                   || octet_length(a.action) || ':' || a.action || ';'
                   || coalesce(octet_length(a.document_id::text) || ':' || a.document_id::text || ';', '-;')
                   || coalesce(octet_length(a.file_id::text) || ':' || a.file_id::text || ';', '-;')
                   || coalesce(octet_length(a.case_file_id::text) || ':' || a.case_file_id::text || ';', '-;')
                   || coalesce(octet_length(a.detail) || ':' || a.detail || ';', '-;')
                   || coalesce(octet_length(a.params::text) || ':' || a.params::text || ';', '-;') AS enc
              FROM ioffice.access_log a
             WHERE a.at >= range_from AND a.at < range_to) r
$$;
REVOKE ALL ON FUNCTION _access_log_range(timestamptz, timestamptz) FROM PUBLIC;

-- A checkpoint's hash: SHA-256("ioffice-access-log-1;" id ";" from ";" to
-- ";" rows ";" | digest | previous), times as _access_log_us() writes them.
CREATE FUNCTION _access_log_checkpoint_hash(id bigint, range_from timestamptz,
                                            range_to timestamptz, rows bigint,
                                            digest bytea, previous bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT sha256(convert_to('ioffice-access-log-1;' || id || ';' || ioffice._access_log_us(range_from)
                             || ';' || ioffice._access_log_us(range_to) || ';' || rows || ';', 'UTF8')
                  || digest || coalesce(previous, '\x'::bytea))
$$;
REVOKE ALL ON FUNCTION _access_log_checkpoint_hash(bigint, timestamptz, timestamptz, bigint, bytea, bytea) FROM PUBLIC;

-- The worker's digest (workers/retention_jobs.c): the next checkpoint, of
-- at most max_rows rows (more only when more share one instant) and a day
-- from its first row, ending just after them or at the horizon (see above; margin before the present, 10 seconds for the
-- worker).  Returns the rows it digested: 0 when nothing was due, max_rows
-- or more when there may be more.  Granted to nobody.
CREATE FUNCTION _access_log_digest(max_rows int, margin interval DEFAULT interval '10 seconds')
    RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_horizon timestamptz;
    v_last ioffice.access_log_checkpoint;
    v_from timestamptz;
    v_to timestamptz;
    v_id bigint;
    v_rows bigint;
    v_digest bytea;
    v_hash bytea;
    v_first timestamptz;
BEGIN
    IF max_rows IS NULL OR max_rows <= 0 OR margin IS NULL OR margin < interval '0' THEN
        RAISE EXCEPTION '_access_log_digest needs a number of rows above 0 and a margin of 0 or more'
            USING ERRCODE = '22023';
    END IF;
    -- a prepared transaction may hold rows of any earlier time
    IF EXISTS (SELECT 1 FROM pg_prepared_xacts p WHERE p.database = current_database()) THEN
        RETURN 0;
    END IF;
    -- before the rows are read (a statement of its own, its own snapshot)
    SELECT least(clock_timestamp() - margin, min(s.xact_start)) INTO v_horizon
      FROM pg_stat_activity s
     WHERE s.datname = current_database() AND s.pid <> pg_backend_pid()
       AND s.xact_start IS NOT NULL
       -- (autovacuum never writes the log: it must not hold the digest back)
       AND s.backend_type <> 'autovacuum worker';
    -- one digest at a time (the worker runs one, a hand may run another)
    LOCK TABLE ioffice.access_log_checkpoint IN SHARE ROW EXCLUSIVE MODE;
    SELECT * INTO v_last FROM ioffice.access_log_checkpoint ORDER BY id DESC LIMIT 1;
    v_from := coalesce(v_last.range_to, '-infinity');
    IF v_horizon <= v_from THEN
        RETURN 0;
    END IF;
    SELECT min(a.at) INTO v_first FROM ioffice.access_log a WHERE a.at >= v_from AND a.at < v_horizon;
    IF v_first IS NULL THEN
        RETURN 0;
    END IF;
    -- at most max_rows rows (and those of the same instant as the last):
    -- the range ends just after the last of them when later rows are there
    -- already, so that it is no wider than its rows (the pruning cuts at a
    -- range's end)
    SELECT a.at INTO v_to FROM ioffice.access_log a
     WHERE a.at >= v_from AND a.at < v_horizon ORDER BY a.at OFFSET max_rows - 1 LIMIT 1;
    IF v_to IS NOT NULL AND EXISTS (SELECT 1 FROM ioffice.access_log a
                                     WHERE a.at > v_to AND a.at < v_horizon) THEN
        v_to := v_to + interval '1 microsecond';
    ELSE
        v_to := v_horizon;
    END IF;
    -- and no later than a day after its first row: the pruning cuts at a
    -- range's end, so a range spans a day at most (and the gap before it)
    v_to := least(v_to, v_first + interval '1 day');
    SELECT r.rows, r.digest INTO v_rows, v_digest FROM ioffice._access_log_range(v_from, v_to) r;
    v_id := coalesce(v_last.id, 0) + 1;
    v_hash := ioffice._access_log_checkpoint_hash(v_id, v_from, v_to, v_rows, v_digest, v_last.hash);
    INSERT INTO ioffice.access_log_checkpoint (id, range_from, range_to, rows, digest, previous, hash)
    VALUES (v_id, v_from, v_to, v_rows, v_digest, v_last.hash, v_hash);
    PERFORM ioffice._audit('access_log', v_id, 'checkpoint', NULL, NULL,
                           jsonb_build_object('range_from', v_from, 'range_to', v_to, 'rows', v_rows,
                                              'hash', encode(v_hash, 'hex')),
                           NULL, 'access_log');
    RETURN v_rows;
END
$$;
REVOKE ALL ON FUNCTION _access_log_digest(int, interval) FROM PUBLIC;
COMMENT ON FUNCTION _access_log_digest(int, interval) IS
  'The worker''s digest of the access log: the next checkpoint (at most max_rows rows, up to the horizon); returns the rows digested';

-- Every problem in the access log's checkpoints and the rows they cover, in
-- the order of the checkpoints (the first row is the first place the log
-- was altered); no rows: intact.  The rows after the last checkpoint are
-- not covered yet (the worker digests them within a minute or two).
CREATE FUNCTION access_log_verify()
    RETURNS TABLE (checkpoint_id bigint, range_from timestamptz, range_to timestamptz, problem text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c ioffice.access_log_checkpoint;
    v_prev ioffice.access_log_checkpoint;
    v_pruned bigint;
    v_rows bigint;
    v_digest bytea;
    v_audit text;
BEGIN
    SELECT max(p.checkpoint_id) INTO v_pruned FROM ioffice.access_log_pruned p;
    FOR c IN SELECT * FROM ioffice.access_log_checkpoint k ORDER BY k.id LOOP
        checkpoint_id := c.id;
        access_log_verify.range_from := c.range_from;
        access_log_verify.range_to := c.range_to;
        IF c.id <> coalesce(v_prev.id, 0) + 1 THEN
            problem := format('checkpoint %s follows checkpoint %s: a checkpoint is missing',
                              c.id, coalesce(v_prev.id, 0));
            RETURN NEXT;
        END IF;
        IF c.range_from IS DISTINCT FROM coalesce(v_prev.range_to, '-infinity') THEN
            problem := 'its range does not start where the previous checkpoint''s ended';
            RETURN NEXT;
        END IF;
        IF c.previous IS DISTINCT FROM v_prev.hash THEN
            problem := 'its link to the previous checkpoint is not that checkpoint''s hash';
            RETURN NEXT;
        END IF;
        IF c.hash IS DISTINCT FROM ioffice._access_log_checkpoint_hash(c.id, c.range_from, c.range_to,
                                                                       c.rows, c.digest, c.previous) THEN
            problem := 'its hash does not match its fields: the checkpoint was altered';
            RETURN NEXT;
        END IF;
        SELECT u.detail->>'hash' INTO v_audit FROM ioffice.audit u
         WHERE u.chain = 'access_log' AND u.entity = 'access_log' AND u.entity_id = c.id
               AND u.action = 'checkpoint';
        IF v_audit IS NULL THEN
            problem := 'the audit trail has no record of this checkpoint';
            RETURN NEXT;
        ELSIF v_audit <> encode(c.hash, 'hex') THEN
            problem := 'the audit trail recorded another hash for this checkpoint';
            RETURN NEXT;
        END IF;
        IF v_pruned IS NULL OR c.id > v_pruned THEN
            SELECT r.rows, r.digest INTO v_rows, v_digest
              FROM ioffice._access_log_range(c.range_from, c.range_to) r;
            IF v_rows <> c.rows THEN
                problem := format('the range held %s rows, it holds %s: rows were %s', c.rows, v_rows,
                                  CASE WHEN v_rows < c.rows THEN 'removed' ELSE 'added' END);
                RETURN NEXT;
            ELSIF v_digest <> c.digest THEN
                problem := format('the range''s rows were altered (%s rows, as recorded)', c.rows);
                RETURN NEXT;
            END IF;
        END IF;
        v_prev := c;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION access_log_verify() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION access_log_verify() TO ioffice_admin;
COMMENT ON FUNCTION access_log_verify() IS
  'Every problem found in the access log''s checkpoints and the rows of their ranges, the first alteration first; no rows means intact (the rows after the last checkpoint are not digested yet)';
