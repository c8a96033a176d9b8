-- Online registrations (national status 1, Mới đăng ký; register_dossier):
-- registered by the desk's connection to the public service portal, seen
-- by every officer of the desk and by nobody else, accepted by any of them
-- (the clock starts then, the acceptor holds it), rejected or withdrawn
-- with a reason.  The one-stop officer tam and the department's people
-- come from the dossier test.
SET client_min_messages = warning;

CREATE FUNCTION pg_temp.outcome(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_state text;
    v_message text;
BEGIN
    EXECUTE stmt;
    RETURN 'done';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT;
    RETURN v_state || ': ' || regexp_replace(v_message, '[0-9A-Z.]{13}-[0-9]{6}-[0-9]{4}', '<code>', 'g');
END
$$;

SELECT id AS ubnd FROM ioffice.unit WHERE code = '000.00.32.H41' \gset
-- the portal's connection, a second officer of the desk, and a desk of another agency
SELECT ioffice.add_person('dol_portal', 'Kết nối Cổng dịch vụ công', 'Tài khoản kết nối', :ubnd, '{one_stop}') > 0 AS portal;
SELECT ioffice.add_person('dol_hoa', 'Trần Thị Hoà', 'Công chức một cửa', :ubnd, '{one_stop}') > 0 AS hoa;
SELECT ioffice.add_agency('Sở Tư pháp tỉnh Nghệ An', 'STP', '000.00.33.H41') AS stp \gset
SELECT ioffice.add_person('dol_other', 'Một cửa Sở Tư pháp', 'Công chức một cửa', :stp, '{one_stop}') > 0 AS other;
INSERT INTO ioffice.endpoint (name, url, secret, events)
VALUES ('regress_dvc', 'http://127.0.0.1:9/dvc', 'regress-secret-online-0001', '{dossier.status}');

-- ---------------------------------------------------------------------------
-- Registration: status 1, received by nobody, the clock standing still
-- ---------------------------------------------------------------------------
SET ioffice.actor = 'dol_portal';
SELECT ioffice.register_dossier('1.000003.000.00.00.H41', 'Cấp giấy phép kinh doanh',
       '{"name": "Vi Văn Thắng", "phone": "0912 000 222"}', 5) AS reg \gset
SELECT ioffice.register_dossier('1.000003.000.00.00.H41', 'Cấp giấy phép kinh doanh',
       '{"name": "Lữ Thị Nga"}', 5) AS reg2 \gset
SELECT ioffice.register_dossier('1.000003.000.00.00.H41', 'Cấp giấy phép kinh doanh',
       '{"name": "Kha Văn Dũng"}', 5) AS reg3 \gset
SELECT d.state, d.how_received, d.received_by IS NULL AS received_by_nobody,
       d.registered_at IS NOT NULL AS registered, d.paused_at = d.registered_at AS clock_still,
       (SELECT count(*) FROM ioffice.dossier_task t WHERE t.dossier_id = d.id) AS tasks
FROM ioffice.dossier d WHERE d.code = :'reg';
SELECT o.body->'data'->>'status' AS status, o.body->'data'->>'status_name' AS status_name
FROM ioffice.outbox o JOIN ioffice.endpoint e ON e.id = o.endpoint_id
WHERE e.name = 'regress_dvc' AND o.body->'data'->>'code' = :'reg';
-- it waits at the desk: not late, not due
SELECT count(*) AS registered_due FROM ioffice.dossier_due WHERE code = :'reg';

-- only the desk registers, and a registration is online
SET ioffice.actor = 'chauanh';
SELECT pg_temp.outcome($$SELECT ioffice.register_dossier('1.000003.000.00.00.H41', 'Thủ tục', '{"name": "A"}', 5)$$);
SET ioffice.actor = 'dol_portal';
SELECT pg_temp.outcome($$SELECT ioffice.register_dossier('1.000003.000.00.00.H41', 'Thủ tục', '{"name": "A"}', 5,
                                                         '{"how_received": "direct"}')$$);
SELECT pg_temp.outcome($$SELECT ioffice.register_dossier(NULL, 'Thủ tục', '{"name": "A"}', 5)$$);

-- ---------------------------------------------------------------------------
-- Who sees it: every officer of the agency's desk; not the department, not
-- another agency's desk (to them it is unknown, as one that does not exist)
-- ---------------------------------------------------------------------------
-- (an application's role, under row-level security)
CREATE ROLE regress_online_app NOLOGIN IN ROLE ioffice_app;
SET ROLE regress_online_app;
SET ioffice.actor = 'dol_hoa';
SELECT count(*) AS hoa_sees FROM ioffice.dossier WHERE code IN (:'reg', :'reg2', :'reg3');
SELECT ioffice.can_see_dossier((SELECT id FROM ioffice.dossier WHERE code = :'reg')) AS hoa_can_see;
SET ioffice.actor = 'chauanh';
SELECT count(*) AS specialist_sees FROM ioffice.dossier WHERE code IN (:'reg', :'reg2', :'reg3');
SELECT pg_temp.outcome(format('SELECT ioffice.dossier_act(%L, ''accept'')', :'reg'));
SET ioffice.actor = 'dol_other';
SELECT count(*) AS other_desk_sees FROM ioffice.dossier WHERE code IN (:'reg', :'reg2', :'reg3');
SELECT pg_temp.outcome(format('SELECT ioffice.dossier_act(%L, ''accept'')', :'reg'));
SET ioffice.actor = 'minhtuan';
SELECT count(*) AS department_leader_sees FROM ioffice.dossier WHERE code IN (:'reg', :'reg2', :'reg3');
RESET ioffice.actor;
RESET ROLE;
DROP ROLE regress_online_app;

-- ---------------------------------------------------------------------------
-- Acceptance by another officer of the desk: the reception, the clock starts
-- ---------------------------------------------------------------------------
SET ioffice.actor = 'dol_hoa';
-- nothing else can be done with it before
SELECT pg_temp.outcome(format('SELECT ioffice.dossier_act(%L, ''transfer'', ''minhtuan'')', :'reg'));
SELECT ioffice.dossier_act(:'reg', 'accept') AS accepted;
SELECT d.state, p.login = 'dol_hoa' AS received_by_acceptor, d.paused_at IS NULL AS clock_runs,
       d.received_at >= d.registered_at AS received_after_registration,
       d.deadline = ioffice.add_working_days(d.received_at, d.statutory_days) AS deadline_from_acceptance,
       h.login = 'dol_hoa' AS acceptor_holds
FROM ioffice.dossier d
JOIN ioffice.person p ON p.id = d.received_by
JOIN ioffice.dossier_task t ON t.dossier_id = d.id AND t.status = 'open'
JOIN ioffice.person h ON h.id = t.receiver_id
WHERE d.code = :'reg';
SELECT string_agg(o.body->'data'->>'status', ',' ORDER BY o.id) AS statuses_told
FROM ioffice.outbox o JOIN ioffice.endpoint e ON e.id = o.endpoint_id
WHERE e.name = 'regress_dvc' AND o.body->'data'->>'code' = :'reg';
SELECT string_agg(a.action, ',' ORDER BY a.id) AS audited
FROM ioffice.audit a JOIN ioffice.dossier d ON a.entity = 'dossier' AND a.entity_id = d.id
WHERE d.code = :'reg';
-- accepted once: the state has no acceptance any more
SELECT pg_temp.outcome(format('SELECT ioffice.dossier_act(%L, ''accept'')', :'reg'));
-- and it goes on as a dossier received at the desk: its holder hands it on
SELECT ioffice.dossier_act(:'reg', 'transfer', 'minhtuan', 'Chuyển phòng chuyên môn') AS transferred;

-- the clock starts only once, whatever transition a DBA gives start_clock to
RESET ioffice.actor;
INSERT INTO ioffice.workflow_transition
    (workflow, action, from_state, to_state, label, taken_by, receiver, receiver_role,
     guards, effects, options, delegable, builtin)
VALUES ('dossier', 'restart_clock', 'assigning', 'assigning', 'Tính lại thời hạn', 'holder', 'none', NULL,
        '{}', '{start_clock}', '{}', false, false);
SET ioffice.actor = 'minhtuan';
SELECT pg_temp.outcome(format('SELECT ioffice.dossier_act(%L, ''restart_clock'')', :'reg'));
RESET ioffice.actor;
DELETE FROM ioffice.workflow_transition WHERE workflow = 'dossier' AND action = 'restart_clock';

-- ---------------------------------------------------------------------------
-- Rejected (status 3) or withdrawn (status 7), each with its reason
-- ---------------------------------------------------------------------------
SET ioffice.actor = 'tam';
SELECT pg_temp.outcome(format('SELECT ioffice.dossier_act(%L, ''reject'')', :'reg2'));
SELECT ioffice.dossier_act(:'reg2', 'reject', NULL, 'Hồ sơ không thuộc thẩm quyền giải quyết của Sở') AS rejected;
SELECT ioffice.dossier_act(:'reg3', 'withdraw', NULL, 'Công dân đề nghị rút hồ sơ qua Cổng dịch vụ công') AS withdrawn;
SELECT d.state, d.received_by IS NULL AS received_by_nobody, d.finished_at IS NOT NULL AS finished,
       (SELECT string_agg(o.body->'data'->>'status', ',' ORDER BY o.id)
          FROM ioffice.outbox o JOIN ioffice.endpoint e ON e.id = o.endpoint_id
         WHERE e.name = 'regress_dvc' AND o.body->'data'->>'code' = d.code) AS statuses_told
FROM ioffice.dossier d WHERE d.code IN (:'reg2', :'reg3') ORDER BY d.code;
RESET ioffice.actor;

-- the rule's taken_by is checked when a DBA writes it
SELECT pg_temp.outcome($$INSERT INTO ioffice.workflow_transition
    (workflow, action, from_state, to_state, label, taken_by, receiver, guards, effects, options, delegable)
    VALUES ('dossier', 'accept2', 'registered', 'received', 'x', 'one_stop_desk', 'none', '{}', '{}', '{}', false)$$);

DELETE FROM ioffice.outbox o USING ioffice.endpoint e WHERE e.id = o.endpoint_id AND e.name = 'regress_dvc';
DELETE FROM ioffice.endpoint WHERE name = 'regress_dvc';
