-- Every date the extension reads from text goes through extension/dates.c.
-- The details of create_outgoing(), register_incoming() and
-- receive_dossier() take what PostgreSQL's date and timestamptz input
-- accept, finite; anything else is refused with 22023 naming the detail.
\set VERBOSITY terse
SET client_min_messages = warning;
SELECT ioffice._date_detail('{"d": "2026-12-31"}', 'd') = date '2026-12-31' AS iso_date,
       ioffice._date_detail('{"d": "20261231"}', 'd') = date '2026-12-31' AS compact_date,
       ioffice._date_detail('{"d": "today"}', 'd') = current_date AS today,
       ioffice._time_detail('{"t": "2026-12-31 10:00+07"}', 't')
         = timestamptz '2026-12-31 03:00+00' AS zoned_time,
       ioffice._date_detail('{"d": null}', 'd') IS NULL AS json_null,
       ioffice._date_detail('{}', 'd') IS NULL AS absent,
       ioffice._date_detail('[1]', 'd') IS NULL AS not_an_object,
       ioffice._date_detail(NULL, 'd') IS NULL AS no_details;
-- refused, the text as ->> gives it
SELECT ioffice._date_detail('{"d": "2026-02-30"}', 'd');
SELECT ioffice._date_detail('{"d": 5}', 'd');
SELECT ioffice._time_detail('{"t": {"a": 1}}', 't');
SELECT ioffice._time_detail('{"t": "2026-01-01 10:00 Mars/Olympus"}', 't');
SELECT ioffice._date_detail('{"d": "infinity"}', 'd');
SELECT ioffice._time_detail('{"t": "-infinity"}', 't');
-- a refusal caught by the caller leaves its transaction usable (the parse
-- ran in a subtransaction of its own)
BEGIN;
DO $$
BEGIN
    PERFORM ioffice._date_detail('{"d": "soon"}', 'd');
EXCEPTION WHEN invalid_parameter_value THEN
    NULL;
END
$$;
SELECT ioffice._date_detail('{"d": "2026-12-31"}', 'd') IS NOT NULL AS still_usable;
COMMIT;
-- what a caller sent is echoed at most 60 characters long in a message
SET ioffice.actor = 'regress_luan';
SELECT regress_error(format($q$SELECT ioffice.create_outgoing('CV', 'x', '{"due_date": "%s"}')$q$, repeat('9', 100000)), 0);
SELECT regress_error(format($q$SELECT * FROM ioffice.outgoing_list(%L)$q$, repeat('x', 100000)), 0);
SELECT regress_error(format($q$SELECT * FROM ioffice.workflow_check(%L)$q$, repeat('x', 100000)), 0);
RESET ioffice.actor;
