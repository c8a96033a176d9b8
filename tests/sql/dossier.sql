-- Seed 003: a dossier of an administrative procedure received at the one-stop
-- desk, handled in a department, signed by the leader, issued by the clerk
-- into the document register with its processing trail, returned.
SET client_min_messages = warning;
-- the 2024 days off (the calendar test leaves them; this test does not rely on it)
INSERT INTO ioffice.holiday (day, name, working) VALUES
    ('2024-01-01', 'Tết Dương lịch', false),
    ('2024-02-08', 'Tết Nguyên đán (28 tháng Chạp)', false),
    ('2024-02-09', 'Tết Nguyên đán (29 tháng Chạp)', false),
    ('2024-02-10', 'Tết Nguyên đán (mùng 1)', false),
    ('2024-02-11', 'Tết Nguyên đán (mùng 2)', false),
    ('2024-02-12', 'Tết Nguyên đán (mùng 3)', false),
    ('2024-02-13', 'Nghỉ bù Tết Nguyên đán', false),
    ('2024-02-14', 'Nghỉ bù Tết Nguyên đán', false)
ON CONFLICT (day) DO NOTHING;

-- the people of the seed, in the agency coded 000.00.32.H41
SELECT id AS ubnd FROM ioffice.unit WHERE code = '000.00.32.H41' \gset
SELECT ioffice.add_department(:ubnd, 'Phòng Quản lý xuất nhập khẩu', 'QLXNK') AS xnk \gset
SELECT ioffice.add_person('tam', 'Nguyễn Đình Tâm', 'Trung tâm Phục vụ Hành chính công', :ubnd, '{one_stop}') IS NOT NULL AS tam;
SELECT ioffice.add_person('chauanh', 'Phạm Thị Châu Anh', 'Chuyên viên', :xnk, '{specialist}') IS NOT NULL AS chauanh;
SELECT ioffice.add_person('minhtuan', 'Hoàng Minh Tuấn', 'Lãnh đạo phòng', :xnk, '{leader}') IS NOT NULL AS minhtuan;
UPDATE ioffice.person SET phone = '0886329777', email = 'chauanh@example.vn' WHERE login = 'chauanh';
UPDATE ioffice.person SET phone = '0912000111' WHERE login = 'minhtuan';
-- an endpoint taking every event, so that the outbox rows appear
INSERT INTO ioffice.endpoint (name, url, secret, events)
VALUES ('tthc', 'http://127.0.0.1:9/hook', 'dossier-test-secret-0001', '{*}');

-- ---------------------------------------------------------------------------
-- Reception: the code is <agency code>-YYMMDD-NNNN, per unit and day
-- ---------------------------------------------------------------------------
-- (the seed's dossiers of 2023 and 2024: the DBA's bound on back-dated
-- receptions, tested in dossier_pause, is widened for them)
SET ioffice.dossier_backdating_days = 36500;
SET ioffice.actor = 'tam';
SELECT count(DISTINCT c) AS received, min(c), max(c)
FROM (SELECT ioffice.receive_dossier('1.000001.000.00.00.H41', 'Thủ tục thử ' || i,
                                     '{"name": "Người nộp"}', 10,
                                     '{"received_at": "2023-10-30 08:00:00+07"}') AS c
      FROM generate_series(1, 67) AS i) AS s;
SELECT ioffice.receive_dossier('2.002166.000.00.00.H41',
       'Điều chỉnh tăng diện tích cơ sở bán lẻ khác và trường hợp cơ sở ngoài cơ sở bán lẻ thứ nhất thay đổi loại hình thành cửa hàng tiện lợi, siêu thị mini',
       '{"name": "ĐẶNG NGỌC VIỆT", "phone": "0913383345", "address": "Nghệ An"}', 50,
       '{"received_at": "2023-10-30 15:54:40+07", "how_received": "direct",
         "result_delivery": "Đến Trung tâm PVHCC tỉnh Nghệ An nhận kết quả"}') AS code \gset
\echo :code
-- the next day starts again at 0001; late evening UTC is already the next day in Vietnam
SELECT ioffice.receive_dossier('1.000001.000.00.00.H41', 'Thủ tục thử', '{"name": "A"}', 1,
       '{"received_at": "2023-10-30 17:30:00+00"}') AS next_day;
SELECT code, state, procedure_code, applicant->>'name' AS applicant, statutory_days,
       to_char(received_at AT TIME ZONE 'Asia/Ho_Chi_Minh', 'DD/MM/YYYY HH24:MI:SS') AS received,
       to_char(deadline AT TIME ZONE 'Asia/Ho_Chi_Minh', 'DD/MM/YYYY HH24:MI:SS') AS deadline,
       how_received, result_delivery
FROM ioffice.dossier WHERE code = :'code';
SELECT unit_code, day, last FROM ioffice.dossier_counter ORDER BY day;

-- over Lunar New Year 2024 (8/2 to 14/2 off): 5 working days from Wednesday 7/2
SELECT ioffice.receive_dossier('1.000002.000.00.00.H41', 'Thủ tục Tết', '{"name": "B", "phone": "0913.383.345"}', 5,
       '{"received_at": "2024-02-07 10:00:00+07", "how_received": "online"}') AS tet \gset
SELECT to_char(deadline AT TIME ZONE 'Asia/Ho_Chi_Minh', 'Dy DD/MM/YYYY HH24:MI') AS tet_deadline
FROM ioffice.dossier WHERE code = :'tet';

-- ---------------------------------------------------------------------------
-- Refusals at reception
-- ---------------------------------------------------------------------------
SELECT ioffice.receive_dossier(NULL, 'x', '{"name": "A"}', 5);
\echo :SQLSTATE
SELECT ioffice.receive_dossier('1.0', NULL, '{"name": "A"}', 5);
\echo :SQLSTATE
SELECT ioffice.receive_dossier('1.0', 'x', NULL, 5);
\echo :SQLSTATE
SELECT ioffice.receive_dossier('1.0', 'x', '{"name": "A"}', NULL);
\echo :SQLSTATE
SELECT ioffice.receive_dossier('1.0', 'x', '["A"]', 5);
\echo :SQLSTATE
SELECT ioffice.receive_dossier('1.0', 'x', '{"phone": "0913383345"}', 5);
\echo :SQLSTATE
SELECT ioffice.receive_dossier('1.0', 'x', '{"name": "  "}', 5);
\echo :SQLSTATE
SELECT ioffice.receive_dossier('1.0', 'x', '{"name": 42}', 5);
\echo :SQLSTATE
SELECT ioffice.receive_dossier('1.0', 'x', '{"name": "A", "phone": 913383345}', 5);
\echo :SQLSTATE
SELECT ioffice.receive_dossier('1.0', 'x', '{"name": "A", "phone": "call me"}', 5);
\echo :SQLSTATE
SELECT ioffice.receive_dossier('1.0', 'x', '{"name": "A", "email": "nobody"}', 5);
\echo :SQLSTATE
SELECT ioffice.receive_dossier('1.0', 'x', '{"name": "A", "age": "40"}', 5);
\echo :SQLSTATE
SELECT ioffice.receive_dossier('1.0 x', 'x', '{"name": "A"}', 5);
\echo :SQLSTATE
SELECT ioffice.receive_dossier('1.0', 'x', '{"name": "A"}', -1);
\echo :SQLSTATE
SELECT ioffice.receive_dossier('1.0', 'x', '{"name": "A"}', 5, '{"how_received": "pigeon"}');
\echo :SQLSTATE
SELECT ioffice.receive_dossier('1.0', 'x', '{"name": "A"}', 5, '{"received_at": "2999-01-01"}');
\echo :SQLSTATE
SELECT ioffice.receive_dossier('1.0', 'x', '{"name": "A"}', 5, '{"colour": "red"}');
\echo :SQLSTATE
-- only a one-stop officer receives
SET ioffice.actor = 'chauanh';
SELECT ioffice.receive_dossier('1.0', 'x', '{"name": "A"}', 5);
\echo :SQLSTATE
SET ioffice.actor = 'tam';
SELECT count(*) AS dossiers FROM ioffice.dossier;

-- ---------------------------------------------------------------------------
-- Step 1: the one-stop officer attaches the components and transfers
-- ---------------------------------------------------------------------------
SELECT ioffice.dossier_attach(:'code', 'Phile_phi_1698656065.docx', test_zip('word/document.xml'), 'component') AS component \gset
SELECT ioffice.dossier_attach(:'code', 'Phiếu tiếp nhận.pdf', content, 'opinion') IS NOT NULL AS slip FROM pdf;
SELECT ioffice.dossier_attach(:'code', 'a_name_longer_than_thirty_chars.pdf', content) FROM pdf;
\echo :SQLSTATE
SELECT ioffice.dossier_attach(:'code', 'fake.pdf', test_zip('word/document.xml'));
\echo :SQLSTATE
SELECT ioffice.dossier_attach(:'code', 'x.pdf', content, 'gift') FROM pdf;
\echo :SQLSTATE
SELECT ioffice.dossier_attach(:'code', 'x.pdf', NULL);
\echo :SQLSTATE
SELECT ioffice.dossier_attach('000.00.32.H41-991231-0001', 'x.pdf', content) FROM pdf;
\echo :SQLSTATE
-- transfer: a leader is required, options checked
SELECT ioffice.dossier_act(:'code', 'transfer', 'chauanh', 'Chuyển phòng chuyên môn xử lý');
\echo :SQLSTATE
SELECT ioffice.dossier_act(:'code', 'transfer', 'minhtuan', NULL, '{"zalo": "yes"}');
\echo :SQLSTATE
SELECT ioffice.dossier_act(:'code', 'transfer', 'minhtuan', NULL, '{"register": 1}');
\echo :SQLSTATE
SELECT ioffice.dossier_act(:'code', 'fly', 'minhtuan');
\echo :SQLSTATE
SELECT ioffice.dossier_act(NULL, 'transfer', 'minhtuan');
\echo :SQLSTATE
SELECT ioffice.dossier_act(:'code', NULL, 'minhtuan');
\echo :SQLSTATE
SELECT ioffice.dossier_act('000.00.32.H41-991231-0001', 'transfer', 'minhtuan');
\echo :SQLSTATE
SELECT ioffice.dossier_act(:'code', 'issue');
\echo :SQLSTATE
SET ioffice.actor = 'minhtuan';
SELECT ioffice.dossier_act(:'code', 'transfer', 'minhtuan');
\echo :SQLSTATE
SET ioffice.actor = 'tam';
SELECT ioffice.dossier_act(:'code', 'transfer', 'minhtuan', 'Chuyển phòng chuyên môn xử lý',
                           '{"zalo": true, "sms": true, "email": true}');

-- ---------------------------------------------------------------------------
-- Step 2: the department leader assigns, the specialist proposes
-- ---------------------------------------------------------------------------
SET ioffice.actor = 'minhtuan';
SELECT ioffice.dossier_act(:'code', 'assign', 'loi', 'Giao xử lý');
\echo :SQLSTATE
SELECT ioffice.dossier_act(:'code', 'assign', 'chauanh', 'Đề nghị chuyên viên xử lý', '{"sms": true, "email": true}');
SET ioffice.actor = 'chauanh';
-- a proposal carries the draft result
SELECT ioffice.dossier_act(:'code', 'propose', 'minhtuan', 'Đủ điều kiện, trình ký');
\echo :SQLSTATE
SELECT ioffice.dossier_attach(:'code', 'VBTest_1698657023.docx', test_zip('word/document.xml')) AS draft \gset
SELECT ioffice.dossier_act(:'code', 'propose', 'minhtuan', 'Đủ điều kiện, trình ký',
                           format('{"abstract": "%s"}', repeat('x', 501))::jsonb);
\echo :SQLSTATE
SELECT ioffice.dossier_act(:'code', 'propose', 'minhtuan', 'Đủ điều kiện, trình ký',
                           '{"abstract": "V/v cử cán bộ tham gia", "sms": true}');
SELECT state, abstract FROM ioffice.dossier WHERE code = :'code';
-- the department leader checks the draft and forwards it to the agency's leader
SET ioffice.actor = 'minhtuan';
SELECT ioffice.dossier_act(:'code', 'forward', 'chauanh');
\echo :SQLSTATE
SELECT ioffice.dossier_act(:'code', 'forward', 'loi', 'Trình lãnh đạo ký duyệt');

-- ---------------------------------------------------------------------------
-- Step 3: the leader signs the file chosen from the proposal
-- ---------------------------------------------------------------------------
SET ioffice.actor = 'loi';
SELECT ioffice.dossier_act(:'code', 'sign', 'regress_thuy', 'Ký phê duyệt kết quả TTHC');
\echo :SQLSTATE
SELECT ioffice.dossier_act(:'code', 'sign', 'regress_thuy', NULL, format('{"result_file": %s}', 987654)::jsonb);
\echo :SQLSTATE
SELECT ioffice.dossier_act(:'code', 'sign', 'regress_thuy', NULL, format('{"result_file": %s, "mode": "stamp"}', :draft)::jsonb);
\echo :SQLSTATE
SELECT ioffice.dossier_act(:'code', 'sign', 'minhtuan', NULL, format('{"result_file": %s}', :draft)::jsonb);
\echo :SQLSTATE
SELECT ioffice.dossier_act(:'code', 'sign', 'regress_thuy', 'Ký phê duyệt kết quả TTHC',
                           format('{"result_file": %s, "mode": "vgca", "doc_type": "KH", "sms": true}', :draft)::jsonb);
SELECT d.state, r.workflow, r.state AS result_state, r.doc_type, r.abstract,
       dr.login AS drafter, sg.login AS signer, r.number
FROM ioffice.dossier d JOIN ioffice.document r ON r.id = d.result_document_id
JOIN ioffice.person dr ON dr.id = r.drafter_id JOIN ioffice.person sg ON sg.id = r.signer_id
WHERE d.code = :'code';
-- the worker could not sign (an expired certificate): the clerk cannot
-- issue, returns the dossier to the leader, whose next sign makes a new result
SELECT d.result_document_id AS first_result FROM ioffice.dossier d WHERE d.code = :'code' \gset
RESET ioffice.actor;
UPDATE ioffice.signature SET status = 'failed', reason = 'the certificate expired on 2026-01-01 00:00:00+07'
WHERE document_id = :first_result;
SET ioffice.actor = 'regress_thuy';
SELECT ioffice.dossier_act(:'code', 'issue');
\echo :SQLSTATE
SELECT ioffice.dossier_act(:'code', 'return_to_leader', 'loi');
\echo :SQLSTATE
SELECT ioffice.dossier_act(:'code', 'return_to_leader', 'loi', 'Chữ ký số không hợp lệ, đề nghị ký lại');
SELECT state, (SELECT count(*) FROM ioffice.signature s WHERE s.document_id = :first_result
                AND s.status = 'pending') AS pending_signatures
FROM ioffice.document WHERE id = :first_result;
SET ioffice.actor = 'loi';
SELECT ioffice.dossier_act(:'code', 'sign', 'regress_thuy', 'Ký lại kết quả',
                           format('{"result_file": %s, "mode": "vgca", "doc_type": "KH"}', :draft)::jsonb);
SELECT result_document_id <> :first_result AS a_new_result FROM ioffice.dossier WHERE code = :'code';
SELECT d.result_document_id AS result FROM ioffice.dossier d WHERE d.code = :'code' \gset
SELECT f.name, f.kind, s.kind AS signature, s.status, p.login, s.options
FROM ioffice.signature s JOIN ioffice.file f ON f.id = s.file_id JOIN ioffice.person p ON p.id = s.signer_id
WHERE s.document_id = :result ORDER BY s.id;
-- act() cannot move the result: nobody holds it as a document
SET ioffice.actor = 'regress_thuy';
\set VERBOSITY sqlstate
SELECT ioffice.act(:result, 'issue');
\set VERBOSITY default
-- nor change its files: not even the specialist who drafted it
SET ioffice.actor = 'chauanh';
SELECT regress_error(format('SELECT ioffice.attach(%s, %L, content) FROM pdf', :result, 'them.pdf'), :result);
SELECT regress_error(format('SELECT ioffice.remove_file((SELECT id FROM ioffice.file WHERE document_id = %s LIMIT 1))',
                            :result), :result);
SET ioffice.actor = 'loi';

-- ---------------------------------------------------------------------------
-- Step 4: the clerk issues ("Văn bản liên thông iOffice") once the leader's
-- signature is done
-- ---------------------------------------------------------------------------
SET ioffice.actor = 'regress_thuy';
\set VERBOSITY terse
SELECT ioffice.dossier_act(:'code', 'issue', NULL, 'Đã lấy số, đóng dấu');
\set VERBOSITY default
\echo :SQLSTATE
-- no signing worker in this test: the signature is completed by hand
RESET ioffice.actor;
UPDATE ioffice.signature SET status = 'done', signed_at = now()
WHERE document_id = :result AND kind = 'personal';
SET ioffice.actor = 'regress_thuy';
SELECT ioffice.dossier_act(:'code', 'issue', NULL, NULL, '{"doc_type": "XX"}');
\echo :SQLSTATE
SELECT ioffice.dossier_act(:'code', 'issue', NULL, NULL, '{"signer": "nobody"}');
\echo :SQLSTATE
SELECT ioffice.dossier_act(:'code', 'issue', 'minhtuan');
\echo :SQLSTATE
SELECT ioffice.dossier_act(:'code', 'issue', NULL, 'Đã lấy số, đóng dấu, chuyển một cửa',
                           '{"doc_type": "KH", "signer": "loi", "abstract": "V/v cử cán bộ tham gia", "zalo": true}');
SELECT r.state, r.doc_type, r.number, r.symbol, r.abstract, sg.login AS signer,
       r.issued_on = (now() AT TIME ZONE 'Asia/Ho_Chi_Minh')::date AS today,
       r.identifier = '000.00.32.H41,' || to_char(now() AT TIME ZONE 'Asia/Ho_Chi_Minh', 'YYYY/MM/DD')
                      || ',' || r.symbol AS identifier_ok
FROM ioffice.document r JOIN ioffice.person sg ON sg.id = r.signer_id WHERE r.id = :result;
-- the signed file and the trail workbook; the organisation's seal queued on both
SELECT f.name, f.kind, f.size > 1000 OR f.kind <> 'xlsx' AS real_workbook,
       string_agg(s.kind || ':' || s.status, ', ' ORDER BY s.id) AS signatures
FROM ioffice.file f LEFT JOIN ioffice.signature s ON s.file_id = f.id
WHERE f.document_id = :result GROUP BY f.id ORDER BY f.id;
SELECT number, symbol, type_and_abstract, signer FROM ioffice.outgoing_register WHERE document_id = :result;
SELECT d.state, s.name AS status_name FROM ioffice.dossier d
JOIN ioffice.dossier_state_status x ON x.workflow = d.workflow AND x.state = d.state
JOIN ioffice.dossier_status s ON s.code = x.status WHERE d.code = :'code';

-- ---------------------------------------------------------------------------
-- Back at the one-stop desk: the result is returned
-- ---------------------------------------------------------------------------
SET ioffice.actor = 'regress_thuy';
SELECT ioffice.dossier_act(:'code', 'return_result');
\echo :SQLSTATE
SET ioffice.actor = 'tam';
SELECT ioffice.dossier_act(:'code', 'return_result', NULL, 'Đã trả kết quả cho công dân', '{"zalo": true}');
SELECT ioffice.dossier_act(:'code', 'stop', NULL, 'x');
\echo :SQLSTATE
SELECT ioffice.dossier_attach(:'code', 'late.pdf', content) FROM pdf;
\echo :SQLSTATE
SELECT state, finished_at IS NOT NULL AS finished FROM ioffice.dossier WHERE code = :'code';

-- the processing trail
SELECT step, sender, request, receiver, processing_note, status, attachments
FROM ioffice.dossier_trail(:'code');
-- the audit: the dossier's chain and the result's, intact
SELECT a.entity, a.action, a.state_before, a.state_after, p.login AS actor,
       a.detail->>'status' AS status
FROM ioffice.audit a LEFT JOIN ioffice.person p ON p.id = a.actor_id
WHERE a.chain = 'dossier:' || (SELECT id FROM ioffice.dossier WHERE code = :'code')
ORDER BY a.id;
SELECT a.action, a.state_before, a.state_after, p.login AS actor
FROM ioffice.audit a LEFT JOIN ioffice.person p ON p.id = a.actor_id
WHERE a.chain = 'document:' || :result AND a.entity = 'document' ORDER BY a.id;
SELECT count(*) AS problems FROM ioffice.audit_verify('dossier', (SELECT id FROM ioffice.dossier WHERE code = :'code'));
SELECT count(*) AS problems FROM ioffice.audit_verify('document', :result);

-- what the TTHC system and the gateways were told, in order
SELECT o.event, o.body->'data'->>'status' AS status, o.body->'data'->>'status_name' AS status_name,
       o.body->'data'->>'procedure_code' AS procedure,
       o.body->'data'->>'deadline' AS deadline,
       o.body->'data'->>'to' AS "to", o.body->'data'->>'message' AS message
FROM ioffice.outbox o
WHERE o.body->'data'->>'code' = :'code' OR o.body->'data'->'about'->>'code' = :'code'
   OR (o.event LIKE 'notify.%' AND o.body->'data'->'about'->>'entity' = 'dossier'
       AND o.body->'data'->'about'->>'id' = (SELECT id::text FROM ioffice.dossier WHERE code = :'code'))
   OR (o.event = 'document.issued' AND (o.body->'data'->>'document')::bigint = :result)
ORDER BY o.id;

-- ---------------------------------------------------------------------------
-- Reject, pause and resume, withdraw, stop
-- ---------------------------------------------------------------------------
SELECT ioffice.receive_dossier('1.000003.000.00.00.H41', 'Thủ tục từ chối', '{"name": "C"}', 3) AS rej \gset
SELECT ioffice.dossier_act(:'rej', 'reject');
\echo :SQLSTATE
SELECT ioffice.dossier_act(:'rej', 'reject', NULL, '   ');
\echo :SQLSTATE
SELECT ioffice.dossier_act(:'rej', 'reject', NULL, 'Hồ sơ không đúng thẩm quyền');
\set VERBOSITY sqlstate
SELECT ioffice.dossier_act(:'rej', 'reject', NULL, 'Lần nữa');
\set VERBOSITY default
-- the applicant has no phone: Zalo cannot reach them
SELECT ioffice.receive_dossier('1.000003.000.00.00.H41', 'Thủ tục', '{"name": "D"}', 3) AS nophone \gset
\set VERBOSITY sqlstate
SELECT ioffice.dossier_act(:'nophone', 'withdraw', NULL, 'Công dân rút', '{"zalo": true}');
\set VERBOSITY default
SELECT ioffice.dossier_act(:'nophone', 'withdraw', NULL, 'Công dân rút');

-- pause: papers requested; the clock stands still.  (A dossier past its
-- deadline cannot be paused, dossier_pause: this one of 2024 is given the
-- time by hand.)
RESET ioffice.actor;
UPDATE ioffice.dossier SET statutory_days = 3000, deadline = ioffice.add_working_days(received_at, 3000)
WHERE code = :'tet';
SET ioffice.actor = 'tam';
SELECT ioffice.dossier_act(:'tet', 'transfer', 'minhtuan');
SET ioffice.actor = 'minhtuan';
SELECT ioffice.dossier_act(:'tet', 'assign', 'chauanh');
SET ioffice.actor = 'chauanh';
SELECT ioffice.dossier_act(:'tet', 'resume');
\echo :SQLSTATE
SELECT ioffice.dossier_act(:'tet', 'request_papers');
\echo :SQLSTATE
SELECT ioffice.dossier_act(:'tet', 'request_papers', NULL, 'Bổ sung bản sao giấy phép', '{"zalo": true}');
SELECT state, paused_at IS NOT NULL AS paused FROM ioffice.dossier WHERE code = :'tet';
SELECT count(*) AS paused_in_due_view FROM ioffice.dossier_due WHERE code = :'tet';
SELECT ioffice.dossier_act(:'tet', 'propose', 'minhtuan');
\echo :SQLSTATE
-- it waited three whole working days (set by hand: time does not pass in a test)
RESET ioffice.actor;
SELECT deadline AS old_deadline FROM ioffice.dossier WHERE code = :'tet' \gset
UPDATE ioffice.dossier SET paused_at = (
    SELECT max(d) FROM generate_series(now() - interval '20 days', now(), interval '1 hour') AS d
    WHERE ioffice.working_days_between(d, now()) = 3 AND ioffice.add_working_days(d, 3) <= now())
WHERE code = :'tet';
SET ioffice.actor = 'chauanh';
SELECT ioffice.dossier_act(:'tet', 'resume', NULL, 'Đã bổ sung');
SELECT state, paused_at IS NULL AS running, paused_days,
       ioffice.working_days_between(:'old_deadline', deadline) AS deadline_moved_by,
       deadline = ioffice.add_working_days(received_at, statutory_days + 3) AS deadline_ok
FROM ioffice.dossier WHERE code = :'tet';
-- fees: paused and resumed at once count nothing
BEGIN;
SELECT ioffice.dossier_act(:'tet', 'request_fees', NULL, 'Nộp lệ phí');
SELECT ioffice.dossier_act(:'tet', 'resume');
COMMIT;
SELECT paused_days FROM ioffice.dossier WHERE code = :'tet';
SELECT ioffice.dossier_act(:'tet', 'stop', NULL, 'Dừng xử lý theo đề nghị');
SELECT o.body->'data'->>'status' AS status, o.body->'data'->>'status_name' AS status_name,
       o.body->'data'->>'paused' AS paused
FROM ioffice.outbox o WHERE o.event = 'dossier.status' AND o.body->'data'->>'code' = :'tet'
ORDER BY o.id;
SELECT o.body->'data'->>'to' AS "to", o.body->'data'->>'message' AS message
FROM ioffice.outbox o WHERE o.event = 'notify.zalo' AND o.body->'data'->'about'->>'code' = :'tet';

-- ---------------------------------------------------------------------------
-- Due and overdue, and who sees dossiers
-- ---------------------------------------------------------------------------
SET ioffice.actor = 'tam';
SELECT ioffice.receive_dossier('1.000004.000.00.00.H41', 'Thủ tục gấp', '{"name": "E"}', 1) AS soon \gset
SELECT ioffice.receive_dossier('1.000004.000.00.00.H41', 'Thủ tục dài', '{"name": "F"}', 30) AS later \gset
SELECT code = :'soon' AS is_soon, due_status, status_name, holder
FROM ioffice.dossier_due WHERE code IN (:'soon', :'later');
SELECT due_status, count(*) FROM ioffice.dossier_due GROUP BY due_status ORDER BY due_status;
-- "due soon" means within ioffice.due_soon_days working days: with 60, the
-- 30-day dossier is due too
SET ioffice.due_soon_days = 60;
SELECT count(*) AS due_with_60 FROM ioffice.dossier_due WHERE code IN (:'soon', :'later');
RESET ioffice.due_soon_days;

CREATE ROLE regress_dossier_app NOLOGIN IN ROLE ioffice_app;
GRANT ioffice_app TO regress_dossier_app;
SET ROLE regress_dossier_app;
-- the due view is read by applications, under row-level security
SET ioffice.actor = 'tam';
SELECT count(*) AS due_seen_by_the_desk FROM ioffice.dossier_due WHERE code IN (:'soon', :'later');
SET ioffice.actor = 'regress_xa_vt';
SELECT count(*) AS due_seen_by_another_agency FROM ioffice.dossier_due;
SET ioffice.actor = 'chauanh';
SELECT code FROM ioffice.dossier WHERE code IN (:'code', :'tet', :'soon') ORDER BY code;
SET ioffice.actor = 'minhtuan';    -- leader of the specialist's department
SELECT code FROM ioffice.dossier WHERE code IN (:'code', :'tet', :'soon') ORDER BY code;
SET ioffice.actor = 'regress_xa_vt';       -- another agency's clerk
SELECT count(*) FROM ioffice.dossier;
SELECT count(*) FROM ioffice.dossier_task;
SELECT * FROM ioffice.dossier_trail(:'code');
\echo :SQLSTATE
RESET ROLE;

-- ---------------------------------------------------------------------------
-- import_issued: a result issued by the TTHC system enters the register
-- ---------------------------------------------------------------------------
SET ioffice.actor = 'regress_thuy';
CREATE TABLE import_payload AS
SELECT jsonb_build_object(
    'external_id', 'igate-2023-000068',
    'agency_code', '000.00.32.H41',
    'doc_type', 'KH',
    'abstract', 'V/v cử cán bộ tham gia',
    'signer', 'loi',
    'dossier_code', :'code',
    'files', jsonb_build_array(jsonb_build_object('name', 'VBTest_signed.pdf',
                                                  'content', encode(content, 'base64'))),
    'trail', jsonb_build_object('name', 'QTXL.docx',
                                'content', encode(test_zip('word/document.xml'), 'base64'))) AS p
FROM pdf;
SELECT document AS imported, number, symbol FROM ioffice.import_issued((SELECT p FROM import_payload)) \gset
SELECT :number - 1 = (SELECT number FROM ioffice.document WHERE id = :result) AS next_number,
       :'symbol' = format('%s/KH-UBND', ioffice.format_number(:number)) AS symbol_ok;
SELECT d.state, d.workflow, d.doc_type, d.abstract, p.login AS signer, d.comment,
       (SELECT string_agg(f.name || ':' || f.kind, ', ' ORDER BY f.id) FROM ioffice.file f
         WHERE f.document_id = d.id) AS files,
       (SELECT count(*) FROM ioffice.signature s WHERE s.document_id = d.id) AS signatures_queued
FROM ioffice.document d JOIN ioffice.person p ON p.id = d.signer_id WHERE d.id = :imported;
-- the same external id again: the same answer, nothing created
SELECT count(*) AS documents FROM ioffice.document \gset
SELECT document = :imported AS same_document, number = :number AS same_number, symbol = :'symbol' AS same_symbol
FROM ioffice.import_issued((SELECT p FROM import_payload));
SELECT count(*) = :documents AS nothing_created FROM ioffice.document;
-- the same id with another payload is a conflict
SELECT * FROM ioffice.import_issued((SELECT p || '{"abstract": "Khác"}' FROM import_payload));
\echo :SQLSTATE
-- with a date of issue (of this year, and not before the register's last:
-- today, as the numbers before it), and a register given
SELECT id AS reg FROM ioffice.register WHERE agency_id = :ubnd AND code = 'outgoing'
 AND year = extract(year FROM now() AT TIME ZONE 'Asia/Ho_Chi_Minh') \gset
SELECT document AS dated_doc, number = :number + 1 AS next, symbol LIKE '%/QĐ-UBND' AS symbol_ok
FROM ioffice.import_issued((SELECT p || jsonb_build_object(
    'external_id', 'igate-2', 'doc_type', 'QĐ', 'register', :reg,
    'issued_on', to_char(now() AT TIME ZONE 'Asia/Ho_Chi_Minh', 'YYYY-MM-DD'))
    FROM import_payload)) \gset
SELECT :'next' AS next, :'symbol_ok' AS symbol_ok,
       issued_on = (now() AT TIME ZONE 'Asia/Ho_Chi_Minh')::date AS dated,
       identifier LIKE '000.00.32.H41,' || to_char(now() AT TIME ZONE 'Asia/Ho_Chi_Minh', 'YYYY/MM/DD') || ',%' AS identifier_dated
FROM ioffice.document WHERE id = :dated_doc;
-- malformed payloads name the field
SELECT * FROM ioffice.import_issued(NULL);
\echo :SQLSTATE
SELECT * FROM ioffice.import_issued('[]');
\echo :SQLSTATE
SELECT * FROM ioffice.import_issued((SELECT p - 'external_id' FROM import_payload));
\echo :SQLSTATE
SELECT * FROM ioffice.import_issued((SELECT p || '{"external_id": 7}' FROM import_payload));
\echo :SQLSTATE
SELECT * FROM ioffice.import_issued((SELECT p - 'abstract' FROM import_payload));
\echo :SQLSTATE
SELECT * FROM ioffice.import_issued((SELECT p || jsonb_build_object('abstract', repeat('x', 501)) FROM import_payload));
\echo :SQLSTATE
SELECT * FROM ioffice.import_issued((SELECT p || '{"colour": "red"}' FROM import_payload));
\echo :SQLSTATE
SELECT * FROM ioffice.import_issued((SELECT p || '{"issued_on": "30/10/2023"}' FROM import_payload));
\echo :SQLSTATE
\set VERBOSITY sqlstate
SELECT * FROM ioffice.import_issued((SELECT p || '{"issued_on": "2001-01-01", "external_id": "x1"}' FROM import_payload));
\set VERBOSITY default
SELECT * FROM ioffice.import_issued((SELECT p || '{"register": "one"}' FROM import_payload));
\echo :SQLSTATE
SELECT * FROM ioffice.import_issued((SELECT p || '{"files": "VBTest.pdf"}' FROM import_payload));
\echo :SQLSTATE
SELECT * FROM ioffice.import_issued((SELECT p || '{"files": []}' FROM import_payload));
\echo :SQLSTATE
SELECT * FROM ioffice.import_issued((SELECT p || '{"files": [{"name": "a.pdf"}]}' FROM import_payload));
\echo :SQLSTATE
SELECT * FROM ioffice.import_issued((SELECT p || '{"files": [{"name": "a.pdf", "content": "!!not base64!!"}]}' FROM import_payload));
\echo :SQLSTATE
SELECT * FROM ioffice.import_issued((SELECT p || jsonb_build_object('files', jsonb_build_array(
    jsonb_build_object('name', 'a.docx', 'content', encode(content, 'base64')))) FROM import_payload, pdf));
\echo :SQLSTATE
SELECT * FROM ioffice.import_issued((SELECT p || jsonb_build_object('files', jsonb_build_array(
    jsonb_build_object('name', 'a_very_long_file_name_over_thirty.pdf', 'content', encode(content, 'base64')))) FROM import_payload, pdf));
\echo :SQLSTATE
SET ioffice.allowed_file_types = 'pdf,docx,xlsx,doc,xls,zip';
SELECT * FROM ioffice.import_issued((SELECT p || jsonb_build_object('files', jsonb_build_array(
    jsonb_build_object('name', 'a.zip', 'content', encode(test_zip('mimetype'), 'base64')))) FROM import_payload));
\echo :SQLSTATE
RESET ioffice.allowed_file_types;
SELECT * FROM ioffice.import_issued((SELECT p - 'trail' FROM import_payload));
\echo :SQLSTATE
SELECT * FROM ioffice.import_issued((SELECT p || '{"trail": {"name": "t.pdf", "content": ""}}' FROM import_payload));
\echo :SQLSTATE
SELECT * FROM ioffice.import_issued((SELECT p || '{"agency_code": "999.99.99.Z99", "external_id": "x2"}' FROM import_payload));
\echo :SQLSTATE
SELECT * FROM ioffice.import_issued((SELECT p || '{"doc_type": "XX", "external_id": "x3"}' FROM import_payload));
\echo :SQLSTATE
SELECT * FROM ioffice.import_issued((SELECT p || '{"signer": "nobody", "external_id": "x4"}' FROM import_payload));
\echo :SQLSTATE
-- a clerk of another agency may not; nor may a non-clerk
SET ioffice.actor = 'regress_xa_vt';
SELECT * FROM ioffice.import_issued((SELECT p || '{"external_id": "x5"}' FROM import_payload));
\echo :SQLSTATE
SET ioffice.actor = 'tam';
SELECT * FROM ioffice.import_issued((SELECT p || '{"external_id": "x6"}' FROM import_payload));
\echo :SQLSTATE
SELECT count(*) = :documents + 1 AS only_igate_2_created FROM ioffice.document;
SELECT external_id, number IS NOT NULL AS numbered FROM ioffice.import_issued ORDER BY external_id;

RESET ioffice.actor;
DROP TABLE import_payload;
DELETE FROM ioffice.outbox;
DELETE FROM ioffice.endpoint WHERE name = 'tthc';
DROP ROLE regress_dossier_app;
