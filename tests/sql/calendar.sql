-- The working-day calendar: Saturdays and Sundays off, the days of the
-- holiday table off (holidays, bridge days) or working (make-up days).
-- Dossier deadlines are counted on it, by dates in ioffice.timezone.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET datestyle = ISO, YMD;
SET TimeZone = 'Asia/Ho_Chi_Minh';

-- no rows ship with the extension: the calendar is announced each year
SELECT count(*) AS shipped_rows FROM ioffice.holiday;

-- the 2024 schedule as announced: Tết Giáp Thìn from Thursday 8/2 to
-- Wednesday 14/2 (mùng 1 and mùng 2 fell on the weekend, hence 13/2 and
-- 14/2); Monday 29/4 off in exchange for Saturday 4/5, worked
INSERT INTO ioffice.holiday (day, name, working) VALUES
    ('2024-01-01', 'Tết Dương lịch', false),
    ('2024-02-08', 'Tết Nguyên đán (28 tháng Chạp)', false),
    ('2024-02-09', 'Tết Nguyên đán (29 tháng Chạp)', false),
    ('2024-02-10', 'Tết Nguyên đán (mùng 1)', false),
    ('2024-02-11', 'Tết Nguyên đán (mùng 2)', false),
    ('2024-02-12', 'Tết Nguyên đán (mùng 3)', false),
    ('2024-02-13', 'Nghỉ bù Tết Nguyên đán', false),
    ('2024-02-14', 'Nghỉ bù Tết Nguyên đán', false),
    ('2024-04-18', 'Giỗ Tổ Hùng Vương (10/3 âm lịch)', false),
    ('2024-04-29', 'Nghỉ hoán đổi, làm bù thứ Bảy 4/5', false),
    ('2024-04-30', 'Ngày Chiến thắng', false),
    ('2024-05-01', 'Ngày Quốc tế Lao động', false),
    ('2024-05-04', 'Làm bù cho thứ Hai 29/4', true),
    ('2024-09-02', 'Quốc khánh', false),
    ('2024-09-03', 'Quốc khánh (ngày liền kề)', false);
-- loading them by hand is recorded, row by row, with the role that did it
SELECT count(*) AS recorded, bool_and(db_role = session_user) AS by_me,
       bool_and(chain = 'holiday:0' AND entity_id IS NULL) AS one_chain,
       min(detail->'new'->>'day') AS first_day, max(detail->'new'->>'day') AS last_day
FROM ioffice.audit WHERE entity = 'holiday' AND action = 'direct_insert';

-- which days are worked
SELECT d, to_char(d, 'Dy') AS dow, ioffice.is_working_day(d) AS working
FROM unnest('{2024-02-07,2024-02-08,2024-02-10,2024-02-14,2024-02-15,2024-04-18,
              2024-04-29,2024-05-04,2024-05-05,2024-05-06,2024-09-03,2024-09-04}'::date[]) AS d;

-- Deadlines.  From a working day: the same time of day, days working days
-- later.  From a day off: counted from 00:00 of the next working day, so the
-- deadline is 00:00 after the last of the days (the end of that day).
SELECT note, received, to_char(received, 'Dy') AS rdow, days,
       ioffice.add_working_days(received, days) AS deadline,
       to_char(ioffice.add_working_days(received, days), 'Dy') AS ddow
FROM (VALUES
    ('before Tết', '2024-02-07 10:00+07'::timestamptz, 1),
    ('before Tết', '2024-02-07 10:00+07', 2),
    ('before Tết', '2024-02-07 10:00+07', 3),
    ('before Tết', '2024-02-07 10:00+07', 5),
    ('before Tết', '2024-02-07 10:00+07', 10),
    ('ordinary weekend', '2024-02-02 15:54+07', 1),
    ('on Tết', '2024-02-09 10:00+07', 1),
    ('Saturday', '2024-02-03 09:00+07', 1),
    ('Sunday', '2024-02-04 09:00+07', 1),
    ('Sunday', '2024-02-04 09:00+07', 3),
    ('eve of Hùng Kings', '2024-04-17 09:00+07', 1),
    ('before 29/4-1/5', '2024-04-26 14:00+07', 1),
    ('before 29/4-1/5', '2024-04-26 14:00+07', 3),
    ('before 29/4-1/5', '2024-04-26 14:00+07', 4),
    ('Sunday before 29/4', '2024-04-28 09:00+07', 1),
    ('to make-up Saturday', '2024-05-02 16:00+07', 2),
    ('make-up Saturday', '2024-05-04 09:00+07', 1),
    ('before 2/9', '2024-08-30 08:00+07', 1),
    ('year end', '2023-12-29 10:00+07', 1),
    ('whole year', '2024-01-02 08:00+07', 250),
    ('zero days', '2024-02-07 10:00+07', 0),
    ('zero days, Tết', '2024-02-09 10:00+07', 0)
) AS t(note, received, days);

-- STRICT: NULL in, NULL out
SELECT ioffice.add_working_days(NULL, 1) IS NULL AS no_start,
       ioffice.add_working_days('2024-02-07 10:00+07', NULL) IS NULL AS no_days,
       ioffice.working_days_between(NULL, now()) IS NULL AS no_from,
       ioffice.working_days_between(now(), NULL) IS NULL AS no_to,
       ioffice.is_working_day(NULL) IS NULL AS no_day;

-- deadlines count forward only, and not for centuries
SELECT ioffice.add_working_days('2024-02-07 10:00+07', -1);
\echo :SQLSTATE
SELECT ioffice.add_working_days('2024-02-07 10:00+07', 36501);
\echo :SQLSTATE
SELECT ioffice.add_working_days('2024-02-07 10:00+07', 2147483647);
\echo :SQLSTATE
SELECT ioffice.add_working_days('2024-02-07 10:00+07', -2147483648);
\echo :SQLSTATE
-- the most allowed, after the last row: 7300 whole weeks of Monday to Friday
SELECT ioffice.add_working_days('2025-01-01 10:00+07', 36500)
     = '2025-01-01 10:00+07'::timestamptz + 51100 * interval '1 day' AS hundred_years;
-- past the end of what a timestamp holds: an error, not a wrong date
SELECT ioffice.add_working_days('294276-12-01 10:00+07', 100);
\echo :SQLSTATE
-- infinity stays infinity; it cannot be counted from
SELECT ioffice.add_working_days('infinity', 5) AS forever;
SELECT ioffice.working_days_between('-infinity', '2024-02-07 10:00+07');
\echo :SQLSTATE
SELECT ioffice.is_working_day('infinity');
\echo :SQLSTATE

-- Working days between two moments: the working dates d with
-- date(from) <= d < date(to), in ioffice.timezone; negative backwards
SELECT note, from_ts, to_ts, ioffice.working_days_between(from_ts, to_ts) AS working_days
FROM (VALUES
    ('over Tết', '2024-02-07 10:00+07'::timestamptz, '2024-02-15 10:00+07'::timestamptz),
    ('over Tết', '2024-02-07 10:00+07', '2024-02-28 10:00+07'),
    ('February', '2024-02-01 00:00+07', '2024-03-01 00:00+07'),
    ('over 29/4-1/5', '2024-04-26 14:00+07', '2024-05-06 14:00+07'),
    ('make-up Saturday', '2024-05-03 08:00+07', '2024-05-05 08:00+07'),
    ('paused on Tết', '2024-02-09 10:00+07', '2024-02-16 09:00+07'),
    ('same day', '2024-02-07 09:00+07', '2024-02-07 17:00+07'),
    ('backwards', '2024-02-15 10:00+07', '2024-02-07 10:00+07'),
    ('year 2024', '2024-01-01 00:00+07', '2025-01-01 00:00+07')
) AS t(note, from_ts, to_ts);
-- the two agree: a deadline moved by the working days of a pause
SELECT t, u, ioffice.add_working_days(t, ioffice.working_days_between(t, u)) AS moved
FROM (VALUES
    ('2024-02-07 10:00+07'::timestamptz, '2024-02-21 10:00+07'::timestamptz),
    ('2024-04-26 14:00+07', '2024-05-06 14:00+07'),
    ('2024-02-07 10:00+07', '2024-02-10 12:00+07'),
    ('2024-02-09 10:00+07', '2024-02-16 09:00+07')
) AS p(t, u);

-- Time zones.  20:00 UTC on Wednesday 7/2 is 03:00 on Thursday 8/2, Tết,
-- in Hà Nội: counting starts on 15/2 and the deadline is 16/2 00:00 there.
SELECT ioffice.add_working_days('2024-02-07 20:00+00', 1) AT TIME ZONE 'UTC' AS deadline_utc,
       ioffice.working_days_between('2024-02-07 20:00+00', '2024-02-16 12:00+00') AS between_days;
-- the session's TimeZone does not matter, ioffice.timezone does
SET TimeZone = 'America/New_York';
SELECT ioffice.add_working_days('2024-02-07 20:00+00', 1) AT TIME ZONE 'UTC' AS deadline_utc,
       ioffice.add_working_days('2024-02-07 10:00+07', 1) = '2024-02-15 10:00+07' AS same_deadline;
SET TimeZone = 'Asia/Ho_Chi_Minh';
-- in UTC the moment is still on Wednesday 7/2, a working day
SET ioffice.timezone = 'UTC';
SELECT ioffice.add_working_days('2024-02-07 20:00+00', 1) AT TIME ZONE 'UTC' AS deadline_utc,
       ioffice.working_days_between('2024-02-07 20:00+00', '2024-02-16 12:00+00') AS between_days;
-- a zone the server does not know is refused where it is set
SET ioffice.timezone = 'Mars/Olympus';
\echo :SQLSTATE
RESET ioffice.timezone;

-- Rows added in the same transaction count at once, and a long run of days
-- off is crossed (two whole years off: 2030 and 2031).
BEGIN;
INSERT INTO ioffice.holiday (day, name)
SELECT d, 'Nghỉ thử' FROM generate_series('2030-01-01'::date, '2031-12-31', '1 day') AS d;
SELECT ioffice.add_working_days('2029-12-31 09:00+07', 1) AS after_two_years,
       ioffice.add_working_days('2029-12-31 09:00+07', 3) AS three_days,
       ioffice.working_days_between('2029-12-31 09:00+07', '2032-01-06 09:00+07') AS between_days;
ROLLBACK;

-- Names: 1 to 200 characters
INSERT INTO ioffice.holiday (day, name) VALUES ('2024-12-30', '');
\echo :SQLSTATE
INSERT INTO ioffice.holiday (day, name) VALUES ('2024-12-30', repeat('x', 201));
\echo :SQLSTATE
INSERT INTO ioffice.holiday (day, name, working) VALUES ('2024-12-30', 'x', NULL);
\echo :SQLSTATE
INSERT INTO ioffice.holiday (day, name) VALUES ('2024-02-08', 'Hai lần');
\echo :SQLSTATE

-- Everyone reads the calendar and counts on it; only ioffice_admin edits it,
-- and what an admin does is recorded.
CREATE ROLE regress_cal_outsider LOGIN;
CREATE ROLE regress_cal_admin LOGIN IN ROLE ioffice_admin;
SET SESSION AUTHORIZATION regress_cal_outsider;
SELECT count(*) AS rows_seen FROM ioffice.holiday;
SELECT ioffice.add_working_days('2024-02-07 10:00+07', 1) AS deadline;
INSERT INTO ioffice.holiday (day, name) VALUES ('2024-12-31', 'Nghỉ tự đặt');
\echo :SQLSTATE
UPDATE ioffice.holiday SET working = true WHERE day = '2024-02-08';
\echo :SQLSTATE
DELETE FROM ioffice.holiday;
\echo :SQLSTATE
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION regress_cal_admin;
INSERT INTO ioffice.holiday (day, name) VALUES ('2025-01-01', 'Tết Dương lịch');
UPDATE ioffice.holiday SET name = 'Tết Dương lịch 2025' WHERE day = '2025-01-01';
SELECT ioffice.is_working_day('2025-01-01') AS new_year_2025_worked;
DELETE FROM ioffice.holiday WHERE day = '2025-01-01';
RESET SESSION AUTHORIZATION;
SELECT action, db_role, detail->'old'->>'name' AS old_name, detail->'new'->>'name' AS new_name
FROM ioffice.audit WHERE entity = 'holiday' AND db_role = 'regress_cal_admin' ORDER BY id;
DROP ROLE regress_cal_outsider;
DROP ROLE regress_cal_admin;
SELECT count(*) AS rows_kept FROM ioffice.holiday;
