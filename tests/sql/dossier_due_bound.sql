-- dossier_due finds the dossiers near their deadline through the index of
-- unfinished deadlines, with the bound deadline < add_working_days(now(),
-- N + 1); that may only leave out what the view's own test would leave out:
-- whatever is due within N working days (working_days_between(t, x) <= N)
-- must end before add_working_days(t, N + 1).  Checked for every seven
-- hours over ten weeks around Tết (its days off and a make-up Saturday), N
-- of 0 to 12, deadlines every eleven hours of the following 35 days.
BEGIN;
SET LOCAL ioffice.timezone = 'Asia/Ho_Chi_Minh';
DELETE FROM ioffice.holiday WHERE day BETWEEN '2031-01-01' AND '2031-04-30';
INSERT INTO ioffice.holiday (day, name, working) VALUES
    ('2031-01-01', 'Tết Dương lịch', false),
    ('2031-01-21', 'Tết Nguyên đán', false), ('2031-01-22', 'Tết Nguyên đán', false),
    ('2031-01-23', 'Tết Nguyên đán', false), ('2031-01-24', 'Tết Nguyên đán', false),
    ('2031-01-27', 'Tết Nguyên đán', false), ('2031-01-28', 'Tết Nguyên đán', false),
    ('2031-01-29', 'Tết Nguyên đán', false),
    ('2031-02-08', 'Làm bù', true);
SELECT count(*) AS cases,
       count(*) FILTER (WHERE ioffice.working_days_between(t, x) <= n
                          AND NOT x < ioffice.add_working_days(t, n + 1)) AS left_out
  FROM generate_series(timestamptz '2030-12-25 00:00+07', '2031-03-05 00:00+07', interval '7 hours') t,
       unnest(ARRAY[0, 1, 2, 3, 5, 8, 12]) n,
       generate_series(0, 35 * 24, 11) h,
       LATERAL (SELECT t + h * interval '1 hour' AS x) d;
ROLLBACK;

-- and the view can read the index of unfinished deadlines, with the bound
-- as its condition (the planner takes a sequential scan of a table this
-- small, so it is asked not to)
BEGIN;
SET LOCAL enable_seqscan = off;
CREATE FUNCTION pg_temp.plan_of(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r text;
    plan text := '';
BEGIN
    FOR r IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
        plan := plan || r || E'\n';
    END LOOP;
    RETURN plan;
END
$$;
SELECT pg_temp.plan_of('SELECT * FROM ioffice.dossier_due')
       ~ '(Index (Only )?Scan using dossier_open_deadline_idx on dossier d|Bitmap Index Scan on dossier_open_deadline_idx)\s+Index Cond: \(deadline < ' AS bounded_index_scan;
ROLLBACK;
