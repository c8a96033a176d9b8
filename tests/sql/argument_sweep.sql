-- Every function of the extension called with NULLs, with empty or zero
-- values and with extreme values (ids 1: the first rows of the earlier
-- tests), as nobody, as a clerk, as a leader and through the application's
-- role: each call answers or fails with an error of its own class.  An internal
-- error (class XX: elog, "cache lookup failed", a failed assertion), a
-- statement that does not end, or a crashed backend (psql loses the
-- connection and the output below differs) is a bug: arguments.sql lists
-- the expected refusals of the public functions one by one; this sweep
-- catches the function nobody listed.  Everything runs in one transaction
-- that is rolled back: the calls' effects never reach the later tests.
CREATE FUNCTION pg_temp.sweep_value(t regtype, pass int) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN pass = 0 THEN 'NULL::' || t::text
        WHEN t IN ('integer'::regtype, 'bigint', 'smallint', 'numeric')
            THEN CASE pass WHEN 1 THEN '0' ELSE '1' END || '::' || t::text
        WHEN t = 'text'::regtype
            THEN CASE pass WHEN 1 THEN $q$''$q$ ELSE $q$repeat('Đ', 100000)$q$ END
        WHEN t = 'jsonb'::regtype
            THEN CASE pass WHEN 1 THEN $q$'{}'::jsonb$q$
                 ELSE $q$(repeat('[', 500) || repeat(']', 500))::jsonb$q$ END
        WHEN t = 'bytea'::regtype
            THEN CASE pass WHEN 1 THEN $q$'\x'::bytea$q$
                 ELSE $q$('%PDF-1.7' || repeat(E'\n', 10))::bytea$q$ END
        WHEN t = 'boolean'::regtype THEN CASE pass WHEN 1 THEN 'false' ELSE 'true' END
        WHEN t IN ('date'::regtype, 'timestamp with time zone')
            THEN CASE pass WHEN 1 THEN $q$'-infinity'::$q$ ELSE $q$'infinity'::$q$ END || t::text
        WHEN t = 'interval'::regtype
            THEN CASE pass WHEN 1 THEN $q$'0'::interval$q$ ELSE $q$'-1 day'::interval$q$ END
        WHEN t IN ('text[]'::regtype, 'bigint[]')
            THEN CASE pass WHEN 1 THEN $q$'{}'::$q$ ELSE $q$'{NULL}'::$q$ END || t::text
        WHEN t = 'xml'::regtype
            THEN CASE pass WHEN 1 THEN $q$'<a/>'::xml$q$ ELSE $q$'<!DOCTYPE a [<!ENTITY e SYSTEM "file:///etc/passwd">]><a>&e;</a>'::xml$q$ END
        ELSE 'NULL::' || t::text
    END
$$;

-- sweep(actor): the calls that failed with an internal error (a statement
-- that does not end cancels the whole sweep: plpgsql does not catch 57014)
CREATE FUNCTION pg_temp.sweep(who text) RETURNS TABLE (call text, failure text)
LANGUAGE plpgsql AS $$
DECLARE
    f record;
    pass int;
    q text;
    state text;
    message text;
BEGIN
    PERFORM set_config('ioffice.actor', coalesce(who, ''), true);
    FOR f IN
        SELECT p.oid, p.proname, p.proargtypes::regtype[] AS args
          FROM pg_proc p
         WHERE p.pronamespace = 'ioffice'::regnamespace
           AND p.prorettype <> 'trigger'::regtype
           AND NOT 'internal'::regtype = ANY (p.proargtypes::regtype[])
           -- the engine's own guard: entering it from SQL is refused by
           -- design, and leaving it unbalanced would change later calls
           AND p.proname NOT IN ('_engine_enter', '_engine_leave')
         ORDER BY p.proname, p.oid
    LOOP
        FOR pass IN 0..2 LOOP
            q := format('SELECT count(*) FROM (SELECT ioffice.%I(%s)) s', f.proname,
                        coalesce((SELECT string_agg(pg_temp.sweep_value(a, pass), ', ' ORDER BY n)
                                    FROM unnest(f.args) WITH ORDINALITY AS u(a, n)), ''));
            BEGIN
                EXECUTE q;
            EXCEPTION WHEN others THEN
                GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT;
                IF state LIKE 'XX%' THEN
                    call := q;
                    failure := state || ': ' || message;
                    RETURN NEXT;
                END IF;
            END;
        END LOOP;
    END LOOP;
END
$$;

-- the sweep reaches the functions (guards against a filter that empties it)
SELECT count(*) > 150 AS functions_swept
  FROM pg_proc p
 WHERE p.pronamespace = 'ioffice'::regnamespace
   AND p.prorettype <> 'trigger'::regtype;

BEGIN;
SET LOCAL statement_timeout = '300s';
SET LOCAL client_min_messages = error;
SELECT * FROM pg_temp.sweep(NULL);
SELECT * FROM pg_temp.sweep('regress_thuy');
SELECT * FROM pg_temp.sweep('loi');
-- and as the application's role, the way a client reaches the functions
SET LOCAL ROLE ioffice_app;
SELECT * FROM pg_temp.sweep('regress_thuy');
ROLLBACK;

-- the backend is still here, and the transaction left nothing behind
SELECT current_setting('ioffice.actor', true) IS DISTINCT FROM 'loi' AS actor_not_kept;
