-- Pausing a dossier cannot hide its lateness (issue 17, also-check): a
-- pause says what the applicant is asked for, counts only whole working
-- days, and a dossier past its deadline is not paused; a reception is not
-- back-dated beyond ioffice.dossier_backdating_days, nor given absurd
-- statutory days.  Moments are computed from now, in ioffice.timezone.
SET client_min_messages = warning;
\set VERBOSITY terse
SELECT ioffice.add_agency('UBND xã Thử Hồ Sơ', 'UBND', '000.00.43.H41') AS dp \gset
SELECT ioffice.add_person('dp_mc', 'Một cửa Hồ Sơ', 'Công chức một cửa', :dp, '{one_stop}') > 0
   AND ioffice.add_person('dp_lead', 'Chủ tịch Hồ Sơ', 'Chủ tịch', :dp, '{leader}') > 0
   AND ioffice.add_person('dp_cv', 'Chuyên viên Hồ Sơ', 'Chuyên viên', :dp, '{specialist}') > 0 AS people_added;
CREATE FUNCTION pg_temp.sqlstate_of(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN others THEN
    RETURN SQLSTATE;
END
$$;
-- a dossier received now, with the specialist (processing)
CREATE FUNCTION pg_temp.dp_processing(days int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_code text;
BEGIN
    PERFORM set_config('ioffice.actor', 'dp_mc', true);
    v_code := ioffice.receive_dossier('1.000009.000.00.00.H41', 'Thủ tục thử tạm dừng', '{"name": "E"}', days);
    PERFORM ioffice.dossier_act(v_code, 'transfer', 'dp_lead');
    PERFORM set_config('ioffice.actor', 'dp_lead', true);
    PERFORM ioffice.dossier_act(v_code, 'assign', 'dp_cv');
    PERFORM set_config('ioffice.actor', 'dp_cv', true);
    RETURN v_code;
END
$$;

-- Reception: statutory days and back-dating are bounded (22023)
SET ioffice.actor = 'dp_mc';
SELECT pg_temp.sqlstate_of($$SELECT ioffice.receive_dossier('1.0', 'x', '{"name": "A"}', 366)$$) AS days_366,
       pg_temp.sqlstate_of($$SELECT ioffice.receive_dossier('1.0', 'x', '{"name": "A"}', 3650)$$) AS days_3650,
       pg_temp.sqlstate_of(format($$SELECT ioffice.receive_dossier('1.0', 'x', '{"name": "A"}', 5, %L)$$,
                                  jsonb_build_object('received_at', now() - interval '31 days'))) AS received_31_days_ago,
       pg_temp.sqlstate_of($$SELECT ioffice.receive_dossier('1.0', 'x', '{"name": "A"}', 5, '{"received_at": "2001-01-01"}')$$) AS received_2001,
       pg_temp.sqlstate_of(format($$SELECT ioffice.receive_dossier('1.0', 'x', '{"name": "A"}', 365, %L)$$,
                                  jsonb_build_object('received_at', now() - interval '2 days'))) AS received_2_days_ago;
-- only a superuser widens the bound
CREATE ROLE regress_dp_app IN ROLE ioffice_app;
SET SESSION AUTHORIZATION regress_dp_app;
SET ioffice.dossier_backdating_days = 36500;
\echo :SQLSTATE
RESET SESSION AUTHORIZATION;
DROP ROLE regress_dp_app;

-- A pause from one evening to the next morning is no working day: paused at
-- the end of the last working day before today, resumed now
SELECT pg_temp.dp_processing(10) AS night \gset
SET ioffice.actor = 'dp_cv';
SELECT ioffice.dossier_act(:'night', 'request_papers', NULL, 'Bổ sung bản sao giấy khai sinh');
RESET ioffice.actor;
SELECT deadline AS old_deadline FROM ioffice.dossier WHERE code = :'night' \gset
UPDATE ioffice.dossier SET paused_at = (
    SELECT (max(d)::date + time '23:59:59') AT TIME ZONE ioffice.timezone()
      FROM generate_series((now() AT TIME ZONE ioffice.timezone())::date - 20,
                           (now() AT TIME ZONE ioffice.timezone())::date - 1, interval '1 day') AS d
     WHERE ioffice.is_working_day(d::date))
WHERE code = :'night';
SET ioffice.actor = 'dp_cv';
SELECT ioffice.dossier_act(:'night', 'resume', NULL, 'Đã bổ sung');
SELECT paused_days, deadline = :'old_deadline' AS deadline_kept
FROM ioffice.dossier WHERE code = :'night';

-- A dossier past its deadline is not paused: its lateness stays
SELECT pg_temp.dp_processing(1) AS late \gset
RESET ioffice.actor;
UPDATE ioffice.dossier SET deadline = now() - interval '1 hour' WHERE code = :'late';
SET ioffice.actor = 'dp_cv';
SELECT pg_temp.sqlstate_of(format($$SELECT ioffice.dossier_act(%L, 'request_papers', NULL, 'Bổ sung')$$, :'late')) AS papers,
       pg_temp.sqlstate_of(format($$SELECT ioffice.dossier_act(%L, 'request_fees', NULL, 'Nộp phí')$$, :'late')) AS fees;
SELECT state, paused_at IS NULL AS running, deadline < now() AS still_late
FROM ioffice.dossier WHERE code = :'late';

-- A pause says what is asked, whatever guards a DBA leaves on the rule
SELECT pg_temp.dp_processing(10) AS silent \gset
RESET ioffice.actor;
BEGIN;
UPDATE ioffice.workflow_transition SET guards = '{}'
WHERE workflow = 'dossier' AND action = 'request_papers';
SET LOCAL ioffice.actor = 'dp_cv';
SELECT pg_temp.sqlstate_of(format($$SELECT ioffice.dossier_act(%L, 'request_papers')$$, :'silent')) AS no_note;
ROLLBACK;
SELECT state, paused_at IS NULL AS running FROM ioffice.dossier WHERE code = :'silent';
RESET ioffice.actor;
