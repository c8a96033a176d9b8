-- Incoming documents (văn bản đến): delivery between agencies of this
-- database, registration with an arrival number, assignment of a lead
-- handler and cooperators with deadlines, the dashboard's incoming counters,
-- the incoming register.
\set VERBOSITY default
\set SHOW_CONTEXT never
SELECT id AS ubnd FROM ioffice.unit WHERE code = '000.00.32.H41' \gset
SELECT id AS xa FROM ioffice.unit WHERE code = '001.32.32.H41' \gset
SELECT ioffice.add_person('xa_cv1', 'Lò Văn Một', 'Công chức văn hóa', :xa, '{specialist}');
SELECT ioffice.add_person('xa_cv2', 'Lò Thị Hai', 'Công chức tư pháp', :xa, '{specialist}');
SELECT (now() AT TIME ZONE 'Asia/Ho_Chi_Minh')::date AS today \gset

-- Case A's công văn named the commune among its recipients: it arrived there
-- by itself when it was issued, linked to its source, with its file
SELECT d.state, d.agency_id = :xa AS at_commune, d.source_document_id, d.number IS NULL AS not_registered,
       (SELECT count(*) FROM ioffice.file f WHERE f.document_id = d.id) AS files
FROM ioffice.document d WHERE d.direction = 'incoming' AND d.source_document_id = 1;
SELECT id AS arrived FROM ioffice.document WHERE direction = 'incoming' AND source_document_id = 1 \gset
SELECT f.sha256 = s.sha256 AS same_content FROM ioffice.file f
JOIN ioffice.file s ON s.document_id = 1 AND s.superseded_at IS NULL AND s.removed_at IS NULL
WHERE f.document_id = :arrived;

-- the commune's clerk sees it waiting to be registered, and registers it
SET ioffice.actor = 'regress_xa_vt';
SELECT document, sender, sender_symbol, abstract, state FROM ioffice.incoming_list('unprocessed');
SELECT incoming_unprocessed FROM ioffice.dashboard();
SELECT ioffice.act(:arrived, 'register');
SELECT number, drafter_id = (SELECT id FROM ioffice.person WHERE login = 'regress_xa_vt') AS kept_by_clerk
FROM ioffice.document WHERE id = :arrived;
SELECT ioffice.act(:arrived, 'submit', 'xa_ct', 'Kính trình Chủ tịch');

-- the chairman assigns a lead handler and a cooperator, each with a deadline
SET ioffice.actor = 'xa_ct';
SELECT document, state FROM ioffice.incoming_list('awaiting_approval');
SELECT incoming_awaiting_approval FROM ioffice.dashboard();
SELECT ioffice.act(:arrived, 'assign', 'xa_cv1', 'Chủ trì triển khai',
       jsonb_build_object('deadline', to_char(:'today'::date + 1, 'YYYY-MM-DD'),
                          'cooperate', jsonb_build_array(
                              jsonb_build_object('login', 'xa_cv2',
                                                 'deadline', to_char(:'today'::date - 1, 'YYYY-MM-DD')))));
SELECT document, state, holder FROM ioffice.incoming_list('transferred');
SELECT incoming_transferred, incoming_awaiting_approval FROM ioffice.dashboard();

SET ioffice.actor = 'xa_cv1';
SELECT document, deadline - :'today'::date AS days_left FROM ioffice.incoming_list('in_progress');
SELECT document FROM ioffice.incoming_list('due');
SELECT incoming_in_progress, incoming_due, incoming_overdue FROM ioffice.dashboard();
SET ioffice.actor = 'xa_cv2';
SELECT document, deadline - :'today'::date AS days_left FROM ioffice.incoming_list('overdue');
SELECT incoming_in_progress, incoming_due, incoming_overdue FROM ioffice.dashboard();
-- the cooperator finishes their part; only they may
SET ioffice.actor = 'xa_cv1';
SELECT ioffice.act(:arrived, 'cooperated');
\echo :SQLSTATE
SET ioffice.actor = 'xa_cv2';
SELECT ioffice.act(:arrived, 'complete');
\echo :SQLSTATE
SELECT ioffice.act(:arrived, 'cooperated', NULL, 'Đã góp ý');
SELECT incoming_in_progress, incoming_overdue, incoming_processed FROM ioffice.dashboard();
-- the lead completes it
SET ioffice.actor = 'xa_cv1';
SELECT ioffice.act(:arrived, 'complete', NULL, 'Đã triển khai');
SELECT incoming_in_progress, incoming_processed FROM ioffice.dashboard();
SELECT step, sender, request, receiver, processing_note, status FROM ioffice.trail(:arrived);

-- registering by hand what came on paper: the next arrival number
SET ioffice.actor = 'regress_thuy';
SELECT ioffice.register_incoming('CV', 'V/v đẩy mạnh sử dụng chữ ký số',
       'Sở Thông tin và Truyền thông tỉnh Sơn La', '272/STTTT-CNTT', '2018-03-19',
       '{"urgency": "urgent"}') AS paper \gset
SELECT number, sender_name, sender_symbol, state FROM ioffice.document WHERE id = :paper;
-- the same document twice is refused
SELECT ioffice.register_incoming('CV', 'Lần nữa', 'Sở Thông tin và Truyền thông tỉnh Sơn La',
       '272/STTTT-CNTT', '2018-03-19');
\echo :SQLSTATE
-- a document of another agency of this database, registered by hand, names it by code
SELECT ioffice.register_incoming('BC', 'Báo cáo của xã', '001.32.32.H41', '05/BC-UBND', :'today')
    AS from_xa \gset
SELECT s.name AS sender_agency FROM ioffice.document d JOIN ioffice.unit s ON s.id = d.sender_agency_id
WHERE d.id = :from_xa;
-- refused registrations
SELECT ioffice.register_incoming(NULL, 'x', 'y', 'z', :'today');
\echo :SQLSTATE
SELECT ioffice.register_incoming('XX', 'x', 'y', 'z', :'today');
\echo :SQLSTATE
-- (the message names the date, which is the day the test runs)
\set VERBOSITY sqlstate
SELECT ioffice.register_incoming('CV', 'x', 'y', 'z', :'today'::date + 10);
\set VERBOSITY default
SELECT ioffice.register_incoming('CV', 'x', 'y', 'z', :'today', '{"colour": "red"}');
\echo :SQLSTATE
SELECT ioffice.register_incoming('CV', 'x', 'y', 'z', :'today', '{"received_at": "-infinity"}');
\echo :SQLSTATE
SELECT ioffice.register_incoming('CV', 'x', 'y', 'z', :'today', '{"urgency": "flash_timed"}');
\echo :SQLSTATE
SET ioffice.actor = 'regress_luan';
SELECT ioffice.register_incoming('CV', 'x', 'y', 'z', :'today');
\echo :SQLSTATE

-- the clerk submits, the chairman returns it, the clerk submits again
SET ioffice.actor = 'regress_thuy';
SELECT ioffice.act(:paper, 'submit', 'loi');
SET ioffice.actor = 'loi';
SELECT ioffice.act(:paper, 'return', NULL, 'Chuyển nhầm');
SET ioffice.actor = 'regress_thuy';
SELECT document, state FROM ioffice.incoming_list('unprocessed') WHERE document = :paper;
SELECT ioffice.act(:paper, 'submit', 'loi', 'Trình lại');
-- the chairman delegated approval to the vice-chairman (delegation test): she
-- sees it, and may assign it in his name
SET ioffice.actor = 'kien';
SELECT document FROM ioffice.incoming_list('delegated');
SELECT incoming_delegated FROM ioffice.dashboard();
-- assignments that are refused
SELECT ioffice.act(:paper, 'assign', 'kien');
\echo :SQLSTATE
SELECT ioffice.act(:paper, 'assign', 'dai', NULL, '{"cooperate": ["ghost"]}');
\echo :SQLSTATE
SELECT ioffice.act(:paper, 'assign', 'dai', NULL, '{"cooperate": ["hoa", "hoa"]}');
\echo :SQLSTATE
SELECT ioffice.act(:paper, 'assign', 'dai', NULL, '{"cooperate": ["dai"]}');
\echo :SQLSTATE
SELECT ioffice.act(:paper, 'assign', 'dai', NULL, '{"cooperate": "hoa"}');
\echo :SQLSTATE
SELECT ioffice.act(:paper, 'assign', 'dai', NULL, '{"cooperate": [{"login": "hoa", "deadline": "soon"}]}');
\echo :SQLSTATE
SELECT ioffice.act(:paper, 'assign', 'dai', NULL, '{"cooperate": [42]}');
\echo :SQLSTATE
SELECT ioffice.act(:paper, 'assign', 'dai', 'Đ/c Đại chủ trì, Phòng VH phối hợp', '{"cooperate": ["hoa"]}');
SELECT step, sender, receiver, status FROM ioffice.trail(:paper);

-- the incoming register, as the reporting tool reads it
SELECT agency_id = :ubnd AS ubnd, register_code, number, sender, sender_symbol, CASE WHEN sender_date = :'today' THEN 'today' ELSE sender_date::text END AS sender_date,
       type_and_abstract, handlers, assigned_on = :'today' AS assigned_today
FROM ioffice.incoming_register ORDER BY agency_id, number;
SELECT count(*) AS problems FROM ioffice.audit_verify('document', :arrived);
SELECT count(*) AS problems FROM ioffice.audit_verify('document', :paper);
RESET ioffice.actor;
