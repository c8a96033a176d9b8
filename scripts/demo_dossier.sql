-- Seed 003: the provincial administrative-procedure system (TTHC, "IGate")
-- linked with the document system.  A dossier received at the one-stop desk
-- is handled in a department, its result signed by the leader, issued by the
-- clerk into the outgoing register with its processing trail, and returned;
-- every status change travels to the TTHC system, and the citizen and the
-- officers get Zalo / SMS notifications, through the HTTP outbox (here a
-- local receiver that checks every signature stands in for both).
-- Run by scripts/demo after demo.sql.
\set ON_ERROR_STOP on
\pset footer off
\pset null ''
SET client_min_messages = warning;

-- (created empty at the start by scripts/demo.sql)
SELECT 'CREATE DATABASE nghean' WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'nghean') \gexec
\c nghean
SET timezone = 'Asia/Ho_Chi_Minh';
CREATE EXTENSION ioffice CASCADE;

\echo
\echo '######################################################################'
\echo '# Liên thông Hệ thống giải quyết TTHC tỉnh Nghệ An với VNPT-iOffice (11/2023)'
\echo '# Seed 003: dossiers of administrative procedures, interconnected'
\echo '######################################################################'
-- the seed's people; the department and the clerk are named after the seed's
-- screens, the director is invented
BEGIN;
SELECT ioffice.add_agency('Sở Công Thương tỉnh Nghệ An', 'SCT', '000.00.32.H41') AS sct \gset
SELECT ioffice.add_department(:sct, 'Trung tâm Phục vụ Hành chính công', 'PVHCC') AS pvhcc \gset
SELECT ioffice.add_department(:sct, 'Phòng Quản lý xuất nhập khẩu', 'QLXNK') AS xnk \gset
SELECT ioffice.add_person('tam.nd',     'Nguyễn Đình Tâm',     'Cán bộ một cửa',     :pvhcc, '{one_stop}'),
       ioffice.add_person('minhtuan.h', 'Hoàng Minh Tuấn',     'Lãnh đạo phòng',     :xnk,   '{leader}'),
       ioffice.add_person('chauanh.pt', 'Phạm Thị Châu Anh',   'Chuyên viên',        :xnk,   '{specialist}'),
       ioffice.add_person('giamdoc',    'Nguyễn Văn Giám',     'Giám đốc Sở',        :sct,   '{leader}'),
       ioffice.add_person('vanthu.sct', 'Trần Thị Văn',        'Văn thư',            :sct,   '{clerk}')
\gset
UPDATE ioffice.person SET phone = '0886329777', email = 'chauanh.pt@congthuong.nghean.gov.vn'
 WHERE login = 'chauanh.pt';
UPDATE ioffice.person SET phone = '0912345678' WHERE login = 'minhtuan.h';
COMMIT;
SELECT ioffice.add_trust_anchor(:'root_pem') \g /dev/null
SELECT ioffice.add_crl(:'crl_pem') \g /dev/null
-- the director signs with his USB token; the department's seal is in the HSM
SELECT ioffice.register_certificate('personal', 'giamdoc', :'director_pem') \g /dev/null
SELECT ioffice.register_certificate('organisation', '000.00.32.H41', :'seal2_pem', NULL, :'seal2_uri') \g /dev/null
-- the director's signature image and the department's seal (35 mm)
SELECT ioffice.set_signature_image('giamdoc', decode(:'signature_png', 'base64')) \g /dev/null
SELECT ioffice.set_seal_image(:sct, decode(:'seal_png', 'base64'), 35) \g /dev/null

-- the TTHC system and the SMS/Zalo gateway: two endpoints of the outbox
INSERT INTO ioffice.endpoint (name, url, secret, events, timeout_ms, max_attempts) VALUES
    ('igate', 'http://127.0.0.1:' || :'receiver_port' || '/igate', :'receiver_secret',
     '{dossier.*,document.issued,number.taken}', 5000, 8),
    ('zalo_sms', 'http://127.0.0.1:' || :'receiver_port' || '/gateway', :'receiver_secret',
     '{notify.*}', 5000, 8);
SELECT name AS "Hệ thống nhận / endpoint", url, events AS "Sự kiện" FROM ioffice.endpoint ORDER BY id;

-- the first day of 2027 is a public holiday: it does not count in deadlines
INSERT INTO ioffice.holiday (day, name) VALUES ('2027-01-01', 'Tết Dương lịch');

CREATE FUNCTION pg_temp.short_text(t text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN length(t) > 70 THEN left(t, 69) || '…' ELSE t END
$$;
CREATE FUNCTION pg_temp.st(state text) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT state || coalesce(' (' || (SELECT s.label FROM ioffice.workflow_state s
                                     WHERE s.workflow = 'dossier' AND s.state = st.state) || ')', '')
$$;
CREATE FUNCTION pg_temp.status(code text)
RETURNS TABLE ("Mã hồ sơ" text, "Trạng thái" text, "Trạng thái quốc gia" text,
               "Hạn xử lý" text, "Đang tạm dừng" text)
LANGUAGE sql AS $$
    SELECT d.code, s.label, ss.status || '. ' || ns.name,
           to_char(d.deadline, 'DD/MM/YYYY HH24:MI'), CASE WHEN d.paused_at IS NOT NULL THEN 'có' ELSE '' END
    FROM ioffice.dossier d
    JOIN ioffice.workflow_state s ON s.workflow = d.workflow AND s.state = d.state
    JOIN ioffice.dossier_state_status ss ON ss.workflow = d.workflow AND ss.state = d.state
    JOIN ioffice.dossier_status ns ON ns.code = ss.status
    WHERE d.code = status.code
$$;
-- wait (at most 2 minutes) for the worker's signatures on a document (a Word
-- result is converted to PDF first: LibreOffice's first start takes seconds)
\ir demo_token.sql

CREATE FUNCTION pg_temp.wait_signed(doc bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1..600 LOOP
        EXIT WHEN NOT EXISTS (SELECT 1 FROM ioffice.signature s
                              WHERE s.document_id = doc AND s.status = 'pending');
        PERFORM pg_sleep(0.2);
    END LOOP;
END
$$;

\echo
\echo '--- Bước 1. Cán bộ một cửa Nguyễn Đình Tâm tiếp nhận hồ sơ / the one-stop officer receives the dossier'
BEGIN;
SET LOCAL ioffice.actor = 'tam.nd';
SELECT ioffice.receive_dossier('2.002166.000.00.00.H41',
       'Điều chỉnh tăng diện tích cơ sở bán lẻ khác và trường hợp cơ sở ngoài cơ sở bán lẻ thứ nhất thay đổi loại hình thành cửa hàng tiện lợi, siêu thị mini',
       '{"name": "ĐẶNG NGỌC VIỆT", "phone": "0913383345", "address": "TP. Vinh, Nghệ An"}', 50,
       '{"how_received": "direct", "result_delivery": "Nhận kết quả tại Trung tâm PVHCC tỉnh Nghệ An"}')
       AS code \gset
SELECT ioffice.dossier_attach(:'code', 'Phieu_de_nghi.docx', decode(:'component_docx', 'base64'),
                              'component') \g /dev/null
SELECT d.code AS "Mã hồ sơ", d.procedure_code AS "Mã thủ tục",
       pg_temp.short_text(d.procedure_name) AS "Tên thủ tục",
       d.applicant->>'name' AS "Người nộp", d.applicant->>'phone' AS "Điện thoại",
       d.statutory_days || ' ngày làm việc' AS "Thời gian quy định",
       to_char(d.received_at, 'DD/MM/YYYY HH24:MI:SS') AS "Ngày tiếp nhận",
       to_char(d.deadline, 'DD/MM/YYYY HH24:MI') AS "Hạn xử lý (không tính T7, CN, ngày lễ)"
FROM ioffice.dossier d WHERE d.code = :'code' \gx
\echo '    Chuyển phòng chuyên môn, gửi Zalo cho người dân và SMS cho cán bộ / transfer, with Zalo to the citizen and SMS'
SELECT pg_temp.st(ioffice.dossier_act(:'code', 'transfer', 'minhtuan.h', 'Chuyển phòng chuyên môn xử lý',
                           '{"zalo": true, "sms": true}')) AS "Trạng thái mới";
COMMIT;

\echo
\echo '--- Bước 2. Lãnh đạo phòng giao chuyên viên; chuyên viên nhập ý kiến, trích yếu, dự thảo kết quả'
\echo '---         the department head assigns; the specialist proposes the draft result'
BEGIN;
SET LOCAL ioffice.actor = 'minhtuan.h';
SELECT pg_temp.st(ioffice.dossier_act(:'code', 'assign', 'chauanh.pt', 'Đề nghị chuyên viên xử lý',
                           '{"sms": true, "email": true}')) AS "Trạng thái mới";
COMMIT;
BEGIN;
SET LOCAL ioffice.actor = 'chauanh.pt';
SELECT ioffice.dossier_attach(:'code', 'VBTest_1698657023.docx', decode(:'draft_docx', 'base64'))
       AS draft \gset
SELECT pg_temp.st(ioffice.dossier_act(:'code', 'propose', 'minhtuan.h', 'Hồ sơ đủ điều kiện, trình ký',
       '{"abstract": "V/v điều chỉnh tăng diện tích cơ sở bán lẻ cho Hộ kinh doanh Đặng Ngọc Việt"}'))
       AS "Trạng thái mới";
COMMIT;
BEGIN;
SET LOCAL ioffice.actor = 'minhtuan.h';
SELECT pg_temp.st(ioffice.dossier_act(:'code', 'forward', 'giamdoc', 'Trình Giám đốc ký duyệt')) AS "Trạng thái mới";
COMMIT;

\echo
\echo '--- Bước 3. Lãnh đạo ký số: chọn tệp KQ từ ý kiến, "Lãnh đạo Ký CA Ban cơ yếu", chuyển văn thư'
\echo '---         the leader signs the result chosen from the specialist''s opinion (the worker signs)'
BEGIN;
SET LOCAL ioffice.actor = 'giamdoc';
SELECT pg_temp.st(ioffice.dossier_act(:'code', 'sign', 'vanthu.sct', 'Ký phê duyệt kết quả TTHC',
       format('{"result_file": %s, "doc_type": "QĐ"}', :draft)::jsonb)) AS "Trạng thái mới";
COMMIT;
SELECT result_document_id AS result FROM ioffice.dossier WHERE code = :'code' \gset
\echo '    (the worker converts the Word file to PDF; the director''s VGCA plug-in signs the digest'
\echo '     signing_request() hands out with his USB token — here openssl —, submit_signature() embeds it)'
BEGIN;
SET LOCAL ioffice.actor = 'giamdoc';
SELECT sig AS tok_sig, digest AS tok_digest FROM pg_temp.token_request(:result) \gset
COMMIT;
\set tok_value `perl -e 'print pack("H*", $ARGV[0])' :'tok_digest' | openssl pkeyutl -sign -inkey :'director_token_key' -pkeyopt digest:sha256 | base64 -w0`
BEGIN;
SET LOCAL ioffice.actor = 'giamdoc';
SELECT ioffice.submit_signature(:tok_sig, decode(:'tok_value', 'base64')) AS "submit_signature()";
COMMIT;
SELECT pg_temp.wait_signed(:result) \g /dev/null
BEGIN;
SET LOCAL ioffice.actor = 'vanthu.sct';
SELECT f.name AS "Tệp kết quả", v.signer AS "Người ký", v.kind AS "Loại",
       CASE WHEN v.valid THEN 'hợp lệ' ELSE 'KHÔNG: ' || v.reason END AS "Kiểm tra VB đã ký"
FROM ioffice.file f, ioffice.verify(f.id) v WHERE f.document_id = :result;
COMMIT;

\echo
\echo '--- Bước 4. Văn thư: "Văn bản liên thông iOffice" — lấy số, ký CA tổ chức, gửi văn bản'
\echo '---         the clerk issues the result: number from the register, organisation signature, trail file'
BEGIN;
SET LOCAL ioffice.actor = 'vanthu.sct';
SELECT pg_temp.st(ioffice.dossier_act(:'code', 'issue', NULL, 'Đã phát hành, chuyển trả một cửa',
                           '{"zalo": true}')) AS "Trạng thái mới";
COMMIT;
SELECT pg_temp.wait_signed(:result) \g /dev/null
SELECT r.register_code AS "Sổ văn bản", r.symbol AS "Số, ký hiệu văn bản",
       to_char(r.issued_on, 'DD/MM/YYYY') AS "Ngày tháng văn bản",
       r.type_and_abstract AS "Tên loại và trích yếu nội dung văn bản", r.signer AS "Người ký"
FROM ioffice.outgoing_register r
WHERE r.document_id = :result \gx
BEGIN;
SET LOCAL ioffice.actor = 'vanthu.sct';
SELECT f.name AS "Tệp trên văn bản đi", f.kind AS "Loại",
       string_agg(v.kind || ' ' || CASE WHEN v.valid THEN 'hợp lệ' ELSE 'KHÔNG' END, ', ') AS "Chữ ký"
FROM ioffice.file f LEFT JOIN LATERAL ioffice.verify(f.id) v ON true
WHERE f.document_id = :result GROUP BY f.id ORDER BY f.id;
COMMIT;

\echo
\echo '--- Bước 5. Bộ phận một cửa trả kết quả cho công dân / the one-stop desk returns the result'
BEGIN;
SET LOCAL ioffice.actor = 'tam.nd';
SELECT pg_temp.st(ioffice.dossier_act(:'code', 'return_result', NULL, 'Công dân đã nhận kết quả',
                           '{"zalo": true}')) AS "Trạng thái mới";
SELECT * FROM pg_temp.status(:'code');
\echo '    Quá trình xử lý hồ sơ / processing trail'
SELECT step AS "STT", sender AS "Cán bộ gửi", request AS "Nội dung yêu cầu", receiver AS "Cán bộ nhận",
       processing_note AS "Nội dung xử lý", status AS "Trạng thái", attachments AS "Tệp đính kèm"
FROM ioffice.dossier_trail(:'code');
COMMIT;

\echo
\echo '--- Tạm dừng: yêu cầu bổ sung giấy tờ, đồng hồ dừng lại / a second dossier waits for papers'
BEGIN;
SET LOCAL ioffice.actor = 'tam.nd';
SELECT ioffice.receive_dossier('2.000633.000.00.00.H41', 'Cấp Giấy phép bán lẻ rượu',
       '{"name": "NGUYỄN THỊ HOA", "phone": "0987654321"}', 10) AS code2 \gset
SELECT ioffice.dossier_act(:'code2', 'transfer', 'minhtuan.h') \g /dev/null
SET LOCAL ioffice.actor = 'minhtuan.h';
SELECT ioffice.dossier_act(:'code2', 'assign', 'chauanh.pt') \g /dev/null
SET LOCAL ioffice.actor = 'chauanh.pt';
SELECT ioffice.dossier_act(:'code2', 'request_papers', NULL, 'Thiếu bản sao giấy chứng nhận đăng ký hộ kinh doanh',
                           '{"zalo": true}') \g /dev/null
COMMIT;
SELECT * FROM pg_temp.status(:'code2');

\echo
\echo '--- Hệ thống TTHC bàn giao một kết quả đã ban hành bên đó (import_issued), hai lần / the TTHC system hands over a result, twice'
BEGIN;
SET LOCAL ioffice.actor = 'vanthu.sct';
SELECT jsonb_build_object(
    'external_id', 'igate-000.00.32.H41-231030-0070', 'agency_code', '000.00.32.H41',
    'doc_type', 'QĐ', 'abstract', 'V/v cấp Giấy chứng nhận đủ điều kiện kinh doanh',
    'signer', 'giamdoc',
    'files', jsonb_build_array(jsonb_build_object('name', 'KQ_0070.pdf', 'content', :'result_pdf')),
    'trail', jsonb_build_object('name', 'QTXL_0070.docx', 'content', :'draft_docx')) AS payload \gset
SELECT document AS "Văn bản", number AS "Số", symbol AS "Ký hiệu"
FROM ioffice.import_issued(:'payload');
SELECT document AS "Văn bản (lần 2: như cũ)", number AS "Số", symbol AS "Ký hiệu"
FROM ioffice.import_issued(:'payload');
COMMIT;

\echo
\echo '--- Hộp thư đi HTTP: mọi sự kiện đã gửi tới hệ thống TTHC và cổng Zalo/SMS / the outbox, delivered'
DO $$
BEGIN
    FOR i IN 1..150 LOOP
        EXIT WHEN NOT EXISTS (SELECT 1 FROM ioffice.outbox WHERE status = 'pending');
        PERFORM pg_sleep(0.2);
    END LOOP;
END
$$;
SELECT e.name AS "Đích", o.event AS "Sự kiện",
       coalesce(o.body->'data'->>'status_name', o.body->'data'->>'symbol',
                o.body->'data'->>'to' || ': ' || pg_temp.short_text(o.body->'data'->>'message')) AS "Nội dung",
       o.status AS "Trạng thái", o.attempts AS "Lần gửi", o.last_status AS "HTTP"
FROM ioffice.outbox o JOIN ioffice.endpoint e ON e.id = o.endpoint_id ORDER BY o.id;
SELECT database AS "CSDL", state AS "Worker", deliveries AS "Đã gửi", outbox_pending AS "Đang chờ",
       outbox_dead AS "Hỏng", jobs_done AS "Chữ ký đã ký"
FROM ioffice.worker_status WHERE database = current_database();
SELECT count(*) AS "Bản ghi nhật ký", count(*) FILTER (WHERE entity = 'dossier') AS "về hồ sơ",
       (SELECT count(*) FROM ioffice.audit_verify()) AS "Vấn đề (audit_verify)"
FROM ioffice.audit;
