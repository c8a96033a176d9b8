-- Dates are recorded in ioffice.timezone (Hà Nội by default), which only a
-- DBA sets: the session's own TimeZone changes how times are shown, never the
-- register year, the issue date, the identifier or the dossier code.  It holds
-- at whatever instant the suite runs: scripts/test runs it under libfaketime
-- in the last seconds of a year, on a leap day and in a Tết week, with the
-- server's own TimeZone varied.
SET client_min_messages = warning;

-- A session may not choose the zone dates are recorded in: at 21:09 in Hà Nội
-- 'Etc/GMT-14' would issue tomorrow's date, 'Etc/GMT+12' number into last
-- year's register shortly after midnight on 1 January.
CREATE ROLE regress_dates_app LOGIN IN ROLE ioffice_app;
SET SESSION AUTHORIZATION regress_dates_app;
SET ioffice.timezone = 'Etc/GMT-14';
\echo :SQLSTATE
SELECT set_config('ioffice.timezone', 'Etc/GMT+12', true);
\echo :SQLSTATE
BEGIN;
SET LOCAL ioffice.timezone = 'Etc/GMT+12';
\echo :SQLSTATE
ROLLBACK;
SELECT ioffice.timezone();
RESET SESSION AUTHORIZATION;
-- a DBA's misspelt zone is refused where it is written, not at the next issue
SET ioffice.timezone = 'Asia/Ha_Noi';
\echo :SQLSTATE
SET ioffice.timezone = 'Asia/Ho_Chi_Minh';
RESET ioffice.timezone;
DROP ROLE regress_dates_app;

-- The Tết weeks of these years (days off as the test lays them down; what
-- matters is that a deadline counted through them skips them).
INSERT INTO ioffice.holiday (day, name)
SELECT d::date, 'Tết Nguyên đán (test)'
FROM (VALUES ('2026-02-14'::date, '2026-02-22'::date),
             ('2027-02-04', '2027-02-10'),
             ('2028-01-24', '2028-01-30')) AS t(first, last),
     generate_series(first, last, interval '1 day') AS d
ON CONFLICT (day) DO NOTHING;

-- working days counted in plain SQL from the holiday rows: a day is working
-- when its row says so, else from Monday to Friday
CREATE FUNCTION regress_working(d date) RETURNS boolean LANGUAGE sql AS $$
    SELECT coalesce((SELECT working FROM ioffice.holiday WHERE day = d), extract(isodow FROM d) < 6)
$$;
CREATE FUNCTION regress_nth_working_day(start date, n int) RETURNS date LANGUAGE sql AS $$
    SELECT d FROM (
        SELECT d::date AS d, row_number() OVER (ORDER BY d) AS k
        FROM generate_series(start + 1, start + 10 * n + 30, interval '1 day') AS d
        WHERE regress_working(d::date)) AS w
    WHERE k = n
$$;
-- a deadline n working days after a moment in Hà Nội: received on a working
-- day, the same wall-clock time on the n-th working day after it; received on
-- a day off, counted from 00:00 of the next working day (which is the first
-- after it), so 00:00 of the n-th working day after that one
CREATE FUNCTION regress_deadline(at timestamptz, n int) RETURNS timestamptz LANGUAGE sql AS $$
    SELECT CASE WHEN regress_working(day)
                THEN (regress_nth_working_day(day, n) + (at AT TIME ZONE 'Asia/Ho_Chi_Minh')::time)
                     AT TIME ZONE 'Asia/Ho_Chi_Minh'
                ELSE regress_nth_working_day(day, n + 1)::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh' END
    FROM (SELECT (at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date AS day) AS s
$$;

-- One document issued and one dossier received under each session zone, each
-- in one transaction (so now() is the moment of both).
CREATE TABLE regress_dates (zone text, doc bigint, dossier text, at timestamptz);
CREATE FUNCTION regress_issue_in(zone text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_doc bigint;
    v_code text;
BEGIN
    PERFORM set_config('TimeZone', zone, true);
    PERFORM set_config('ioffice.actor', 'regress_luan', true);
    v_doc := ioffice.create_outgoing('CV', 'V/v ngày ghi vào sổ (' || zone || ')');
    PERFORM ioffice.attach(v_doc, 'ngay.pdf', content) FROM pdf;
    PERFORM ioffice.act(v_doc, 'submit', 'dai');
    PERFORM set_config('ioffice.actor', 'dai', true);
    PERFORM ioffice.act(v_doc, 'quick_approve');
    PERFORM set_config('ioffice.actor', 'regress_thuy', true);
    PERFORM ioffice.act(v_doc, 'issue');
    PERFORM set_config('ioffice.actor', 'tam', true);
    v_code := ioffice.receive_dossier('1.000003.000.00.00.H41', 'Thủ tục ngày', '{"name": "C"}', 3);
    INSERT INTO regress_dates VALUES (zone, v_doc, v_code, now());
END
$$;
SELECT regress_issue_in('UTC');
SELECT regress_issue_in('America/Los_Angeles');
SELECT regress_issue_in('Asia/Ho_Chi_Minh');
SET TimeZone = 'UTC';
SELECT r.zone,
       d.issued_on = (r.at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date AS issued_on_hanoi_date,
       d.register_year = extract(year FROM r.at AT TIME ZONE 'Asia/Ho_Chi_Minh') AS register_year_hanoi,
       split_part(d.identifier, ',', 2) = to_char(r.at AT TIME ZONE 'Asia/Ho_Chi_Minh', 'YYYY/MM/DD')
           AS identifier_hanoi_date,
       split_part(r.dossier, '-', 2) = to_char(r.at AT TIME ZONE 'Asia/Ho_Chi_Minh', 'YYMMDD')
           AS dossier_code_hanoi_date,
       s.deadline = regress_deadline(r.at, 3) AS deadline_3_working_days
FROM regress_dates r
JOIN ioffice.document d ON d.id = r.doc
JOIN ioffice.dossier s ON s.code = r.dossier
ORDER BY r.zone;
-- the numbers follow one another in the year's register, whatever the zone
SELECT count(DISTINCT d.number) AS numbers, max(d.number) - min(d.number) AS spread
FROM regress_dates r JOIN ioffice.document d ON d.id = r.doc;
RESET TimeZone;
DROP FUNCTION regress_issue_in(text);
DROP FUNCTION regress_deadline(timestamptz, int);
DROP FUNCTION regress_nth_working_day(date, int);
DROP FUNCTION regress_working(date);
DROP TABLE regress_dates;
