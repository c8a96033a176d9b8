-- Long-term validity (issue 13 item 4): the settings of the time-stamp
-- authority and what verify() says about levels.  No worker runs here:
-- nothing is sent (TAP 037 asks a stand-in TSA).
SET client_min_messages = warning;

CREATE FUNCTION pg_temp.outcome(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_state text;
    v_message text;
BEGIN
    EXECUTE stmt;
    RETURN 'accepted';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT;
    RETURN v_state || ': ' || v_message;
END
$$;

-- the settings: no TSA unless configured (B-B), ten seconds to answer
SELECT current_setting('ioffice.tsa_url') = '' AS no_tsa_by_default,
       current_setting('ioffice.tsa_timeout') AS tsa_timeout;
SELECT name, context, unit, min_val, max_val
  FROM pg_settings WHERE name LIKE 'ioffice.tsa%' ORDER BY name;
-- reloadable, not per session: a session cannot sign without the timestamp
SELECT pg_temp.outcome($$SET ioffice.tsa_url = ''$$);
SELECT pg_temp.outcome($$SET ioffice.tsa_timeout = 50$$);
-- a timeout out of its range is refused where it can be set
\set VERBOSITY terse
ALTER SYSTEM SET ioffice.tsa_timeout = 50;
ALTER SYSTEM SET ioffice.tsa_timeout = '3min';
\set VERBOSITY default

-- verify() says the level reached and the time its timestamp proves
SELECT string_agg(a.name || ' ' || format_type(a.typ, NULL), ', ' ORDER BY a.ord) AS verify_columns
  FROM pg_proc p,
       unnest(p.proallargtypes, p.proargnames, p.proargmodes) WITH ORDINALITY AS a(typ, name, mode, ord)
 WHERE p.oid = 'ioffice.verify(bigint)'::regprocedure AND a.mode = 't';
