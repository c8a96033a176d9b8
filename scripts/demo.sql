-- The seed's outgoing-document workflow (UBND huyện Sốp Cộp, guide to the
-- VNPT-iOffice Ver 4.0 software, July 2019), played through the ioffice API.
-- Run by scripts/demo, which passes two Word drafts as base64 in the psql
-- variables draft_v1 and draft_v2.  Every step is its own transaction in
-- which the application names the person acting (SET LOCAL ioffice.actor),
-- as a web application behind a connection pooler would.
\set ON_ERROR_STOP on
\pset footer off
\pset null ''
SET client_min_messages = warning;

CREATE DATABASE sopcop;
-- Nghệ An's database (seed 003, scripts/demo_dossier.sql) is created now,
-- empty: its worker (ioffice.worker_databases) finds it at once and waits
-- for the extension, instead of backing off, up to 5 minutes, from a
-- database that does not exist yet while the demo runs to seed 003
CREATE DATABASE nghean;
\c sopcop
SET client_min_messages = notice;
SET timezone = 'Asia/Ho_Chi_Minh';
CREATE EXTENSION ioffice CASCADE;

-- Display helpers for this session only (pg_temp): Vietnamese labels and the
-- seed's column headings.
CREATE FUNCTION pg_temp.urgency_vi(u text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE u WHEN 'normal' THEN 'Bình thường' WHEN 'urgent' THEN 'Khẩn'
                  WHEN 'very_urgent' THEN 'Thượng khẩn' WHEN 'flash' THEN 'Hỏa tốc'
                  WHEN 'flash_timed' THEN 'Hỏa tốc hẹn giờ' ELSE u END
$$;
CREATE FUNCTION pg_temp.short(t text, n int) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN length(t) > n THEN left(t, n - 1) || '…' ELSE t END
$$;
-- a workflow state with its Vietnamese label: "reviewing (Chờ duyệt)"
CREATE FUNCTION pg_temp.st(state text) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT state || coalesce(' (' || (SELECT s.label FROM ioffice.workflow_state s
                                     WHERE s.workflow = 'outgoing' AND s.state = st.state) || ')', '')
$$;
-- an act that must be refused as not possible yet (55000): shows the refusal;
-- the demo fails if the act goes through or fails for another reason
CREATE FUNCTION pg_temp.refused(doc bigint, action text, to_login text, note text)
RETURNS TABLE ("SQLSTATE" text, "Thông báo lỗi / error" text)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ioffice.act(doc, action, to_login, note);
    RAISE EXCEPTION 'action % on document % went through but should have been refused', action, doc;
EXCEPTION WHEN object_not_in_prerequisite_state THEN
    RETURN QUERY SELECT SQLSTATE, SQLERRM;
END
$$;
-- Văn bản đi → one tab of the actor's list
CREATE FUNCTION pg_temp.list(tab text)
RETURNS TABLE ("STT" bigint, "Độ khẩn" text, "Chờ ký số" text, "Số ký hiệu" text,
               "Trích yếu" text, "Cơ quan ban hành" text, "Ngày nhận" text, "Đang ở" text)
LANGUAGE sql AS $$
    SELECT row_number() OVER (), pg_temp.urgency_vi(l.urgency),
           CASE WHEN l.awaiting_signature THEN 'Có' ELSE '' END,
           l.number_symbol, pg_temp.short(l.abstract, 60), l.issuing_agency,
           to_char(l.received_at, 'DD/MM/YYYY HH24:MI:SS'), l.holder
    FROM ioffice.outgoing_list(tab) AS l
$$;
-- Quá trình xử lý văn bản đi
CREATE FUNCTION pg_temp.qtxl(doc bigint)
RETURNS TABLE ("STT" int, "Cán bộ gửi" text, "Nội dung yêu cầu" text, "Cán bộ nhận" text,
               "Ngày nhận" text, "Nội dung xử lý" text, "Ngày xử lý" text,
               "Trạng thái" text, "Tập tin đính kèm" text)
LANGUAGE sql AS $$
    SELECT t.step, t.sender, t.request, t.receiver,
           to_char(t.received_at, 'DD/MM HH24:MI:SS'), t.processing_note,
           to_char(t.processed_at, 'DD/MM HH24:MI:SS'), t.status, t.attachments
    FROM ioffice.trail(doc) AS t
$$;
-- Số, ký hiệu · ngày ban hành · mã định danh of one document
-- wait (at most 30 s) for the background worker to sign what was queued,
-- then show what "Kiểm tra VB đã ký" shows
CREATE FUNCTION pg_temp.signed(doc bigint)
RETURNS TABLE ("Tệp" text, "Người ký" text, "Loại" text, "Chứng thư" text, "Hợp lệ" text)
LANGUAGE plpgsql AS $$
BEGIN
    -- (a Word file is converted to PDF first: LibreOffice's first start takes seconds)
    FOR i IN 1..600 LOOP
        EXIT WHEN NOT EXISTS (SELECT 1 FROM ioffice.signature s
                              WHERE s.document_id = doc AND s.status = 'pending');
        PERFORM pg_sleep(0.2);
    END LOOP;
    -- the agency's clerk checks it (verify() is for people who may see the file)
    PERFORM set_config('ioffice.actor', 'thuy.tv', true);
    RETURN QUERY
    SELECT f.name, v.signer, CASE v.kind WHEN 'personal' THEN 'cá nhân' ELSE 'tổ chức' END,
           pg_temp.short(v.subject, 60), CASE WHEN v.valid THEN 'hợp lệ' ELSE 'KHÔNG: ' || v.reason END
    FROM ioffice.file f, ioffice.verify(f.id) AS v
    WHERE f.document_id = doc AND f.superseded_at IS NULL AND f.removed_at IS NULL;
END
$$;

\ir demo_token.sql

CREATE FUNCTION pg_temp.issued(doc bigint)
RETURNS TABLE ("Số" int, "Số ký hiệu" text, "Ngày ban hành" text, "Mã định danh văn bản" text,
               "Trạng thái" text)
LANGUAGE sql AS $$
    SELECT d.number, d.symbol, to_char(d.issued_on, 'DD/MM/YYYY'), d.identifier, s.label
    FROM ioffice.document d
    JOIN ioffice.workflow_state s ON s.workflow = d.workflow AND s.state = d.state
    WHERE d.id = doc
$$;

\echo
\echo 'ioffice — Quy trình văn bản đi trên VNPT-iOffice (Ver 4.0), UBND huyện Sốp Cộp, 7/2019'
\echo 'ioffice — the outgoing-document workflow of the Sốp Cộp district guide'
\echo
\echo '######################################################################'
\echo '# Danh bạ: UBND huyện Sốp Cộp / Directory: Sốp Cộp district committee'
\echo '######################################################################'
-- the agency code is invented (form DDD.DD.DD.LDD of QCVN 102:2016)
BEGIN;
SELECT ioffice.add_agency('UBND huyện Sốp Cộp', 'UBND', '000.00.15.H53') AS ubnd \gset
SELECT ioffice.add_department(:ubnd, 'Văn phòng HĐND-UBND', 'VP') AS vp \gset
SELECT ioffice.add_department(:ubnd, 'Phòng Văn hóa và Thông tin', 'VHTT') AS vhtt \gset
SELECT ioffice.add_person('luan.tv',  'Tòng Văn Luân',  'Chuyên viên',   :vp,   '{specialist}'),
       ioffice.add_person('dai.tv',   'Trần Văn Đại',   'Chánh Văn phòng', :vp, '{leader}'),
       ioffice.add_person('loi.lt',   'Lê Tiến Lợi',    'Chủ tịch',      :ubnd, '{leader}'),
       ioffice.add_person('thuy.tv',  'Tòng Văn Thủy',  'Văn thư',       :ubnd, '{clerk}'),
       ioffice.add_person('hung.lv',  'Lò Văn Hưng',    'Trưởng phòng',  :vhtt, '{leader}'),
       ioffice.add_person('tuan.dv',  'Dương Văn Tuấn', 'Chuyên viên',   :vhtt, '{specialist}')
\gset
COMMIT;

-- chữ ký số: the CA's root and revocation list are trusted; the chief's and
-- the chairman's certificates and the committee's seal are registered.  No
-- private key comes near the server: the chief signs with his USB token (the
-- VGCA plug-in on his computer), the chairman through his remote signing
-- service (confirmed on his phone), and the seal's key is used inside the
-- HSM by the signing worker, through PKCS#11, by its URI
SELECT ioffice.add_trust_anchor(:'root_pem') \g /dev/null
SELECT ioffice.add_crl(:'crl_pem') \g /dev/null
SELECT ioffice.register_certificate('personal', 'dai.tv', :'chief_pem') \g /dev/null
SELECT ioffice.register_certificate('personal', 'loi.lt', :'chairman_pem') \g /dev/null
SELECT ioffice.register_certificate('organisation', '000.00.15.H53', :'seal_pem', NULL, :'seal_uri') \g /dev/null
SELECT ioffice.register_signing_provider('smartca', :'csc_url', 'ubnd-sopcop', :'csc_secret') \g /dev/null
SELECT ioffice.register_signing_credential('loi.lt', 'smartca', 'loi-user', 'cred-loi') \g /dev/null
-- what the signatures look like on the page (Decree 30, Appendix I): each
-- leader's signature image, the committee's seal at its real size (35 mm)
SELECT ioffice.set_signature_image(login, decode(:'signature_png', 'base64'))
FROM unnest(ARRAY['dai.tv', 'loi.lt']) AS login \g /dev/null
SELECT ioffice.set_seal_image(:ubnd, decode(:'seal_png', 'base64'), 35) \g /dev/null
SELECT CASE kind WHEN 'personal' THEN 'cá nhân' ELSE 'con dấu tổ chức' END AS "Chứng thư số",
       pg_temp.short(subject, 70) AS "Chủ thể", to_char(not_after, 'DD/MM/YYYY') AS "Hết hạn",
       CASE WHEN key_uri IS NOT NULL THEN 'HSM (PKCS#11)'
            WHEN EXISTS (SELECT 1 FROM ioffice.signing_credential sc WHERE sc.person_id = c.person_id)
            THEN 'ký từ xa / remote service'
            ELSE 'USB token' END AS "Khóa bí mật / private key"
FROM ioffice.certificate c ORDER BY id;

SELECT p.login AS "Tên đăng nhập", p.full_name AS "Họ và tên", p.position AS "Chức vụ",
       u.name AS "Đơn vị", string_agg(r.role, ', ' ORDER BY r.role) AS "Vai trò"
FROM ioffice.person p
JOIN ioffice.unit u ON u.id = p.unit_id
JOIN ioffice.person_role r ON r.person_id = p.id
GROUP BY p.id, u.name ORDER BY p.id;

SELECT u.name AS "Cơ quan / đơn vị", u.abbr AS "Viết tắt", u.code AS "Mã định danh",
       CASE u.kind WHEN 'agency' THEN 'cơ quan' ELSE 'phòng ban' END AS "Loại"
FROM ioffice.unit u ORDER BY u.id;


\echo
\echo '######################################################################'
\echo '# Trường hợp A: văn bản do cơ quan, đơn vị ban hành'
\echo '# Case A: the unit issues it (công văn drafted by Văn phòng HĐND-UBND)'
\echo '######################################################################'

\echo
\echo '--- A1. Chuyên viên Tòng Văn Luân: Thêm VB đi, đính kèm tệp / the specialist drafts a công văn and attaches its file'
BEGIN;
SET LOCAL ioffice.actor = 'luan.tv';
SELECT ioffice.create_outgoing('CV',
    'V/v hướng dẫn ký số văn bản điện tử sử dụng chứng thư số tích hợp trên phần mềm Quản lý văn bản và điều hành VNPT-iOffice (Ver 4.0)',
    '{"field": "Chuyên môn", "signer": "dai.tv", "page_count": 2,
      "recipients": ["Các cơ quan chuyên môn thuộc UBND huyện",
                     "Các đơn vị sự nghiệp thuộc UBND huyện",
                     "Ủy ban nhân dân các xã"],
      "comment": "Thay thế Công văn số 1842/UBND-VP ngày 08/5/2019"}') AS doc_a \gset
-- the draft is a Word file (scripts/demo made it with LibreOffice): attach()
-- recognises the type from the bytes, not the name
SELECT ioffice.attach(:doc_a, 'huong_dan_ky_so.docx', decode(:'letter_docx', 'base64')) AS file_a \gset
SELECT d.id AS "Mã VB (id)", t.name AS "Loại văn bản", d.abstract AS "Trích yếu",
       ioffice.person_label(d.signer_id) AS "Người ký", u.name AS "Phòng ban soạn",
       s.label AS "Trạng thái"
FROM ioffice.document d
JOIN ioffice.doc_type t ON t.code = d.doc_type
JOIN ioffice.unit u ON u.id = d.drafting_unit_id
JOIN ioffice.workflow_state s ON s.workflow = d.workflow AND s.state = d.state
WHERE d.id = :doc_a \gx
SELECT f.name AS "Tên file", f.kind AS "Loại", f.size AS "Cỡ (byte)",
       left(encode(f.sha256, 'hex'), 16) || '…' AS "SHA-256"
FROM ioffice.file f WHERE f.document_id = :doc_a;
COMMIT;

\echo
\echo '--- A2. Chuyển lãnh đạo: gửi Chánh Văn phòng, có tin nhắn SMS / submit to the office chief, with the SMS flag'
BEGIN;
SET LOCAL ioffice.actor = 'luan.tv';
SELECT pg_temp.st(ioffice.act(:doc_a, 'submit', 'dai.tv',
                   'Gửi LĐ dự thảo công văn hướng dẫn ký số trên VNPT-iOffice (Ver 4.0)',
                   '{"sms": true}')) AS "Trạng thái mới / new state";
COMMIT;

\echo
\echo '--- A3. Trần Văn Đại: Văn bản đi → Chờ duyệt / the chief''s "awaiting approval" list'
BEGIN;
SET LOCAL ioffice.actor = 'dai.tv';
SELECT * FROM pg_temp.list('awaiting_approval');
COMMIT;

\echo
\echo '--- A4. Ký số (ký VGCA), rồi Duyệt → chuyển văn thư / the chief signs digitally, then approves to the clerk'
BEGIN;
SET LOCAL ioffice.actor = 'dai.tv';
SELECT pg_temp.st(ioffice.act(:doc_a, 'sign', NULL, NULL, '{"mode": "vgca"}')) AS "Trạng thái mới / new state";
COMMIT;
\echo '    (the background worker converts the Word file to PDF with LibreOffice; signing_request()'
\echo '     prepares the PDF revision with the signature field and hands out the digest; the chief''s'
\echo '     VGCA plug-in signs it with his USB token — here openssl with his key file; submit_signature()'
\echo '     checks it and embeds it in the PDF)'
BEGIN;
SET LOCAL ioffice.actor = 'dai.tv';
SELECT sig AS tok_sig, digest AS tok_digest FROM pg_temp.token_request(:doc_a) \gset
COMMIT;
\set tok_value `perl -e 'print pack("H*", $ARGV[0])' :'tok_digest' | openssl pkeyutl -sign -inkey :'chief_token_key' -pkeyopt digest:sha256 | base64 -w0`
BEGIN;
SET LOCAL ioffice.actor = 'dai.tv';
SELECT ioffice.submit_signature(:tok_sig, decode(:'tok_value', 'base64')) AS "submit_signature()";
COMMIT;
\echo '    Kiểm tra VB đã ký / verification:'
SELECT * FROM pg_temp.signed(:doc_a);
-- (the PDF the worker made from the Word file; the signed PDF is its next version)
SELECT f.name AS "Tệp PDF chuyển đổi / converted file", f.kind AS "Loại", w.name AS "Chuyển từ / converted from",
       f.size AS "Cỡ (byte)", left(encode(w.sha256, 'hex'), 16) || '…' AS "SHA-256 của tệp Word",
       (SELECT count(*) FROM ioffice.file n WHERE n.replaces_id = f.id) AS "Phiên bản đã ký / signed versions"
FROM ioffice.file f JOIN ioffice.file w ON w.id = f.converted_from
WHERE f.document_id = :doc_a;
BEGIN;
SET LOCAL ioffice.actor = 'dai.tv';
SELECT pg_temp.st(ioffice.act(:doc_a, 'approve', 'thuy.tv', 'Đề nghị văn thư phát hành',
                   '{"sms": true}')) AS "Trạng thái mới / new state";
COMMIT;

\echo
\echo '--- A5. Văn thư Tòng Văn Thủy: VB chờ phát hành, rồi Phát hành / the clerk''s list, then issue'
BEGIN;
SET LOCAL ioffice.actor = 'thuy.tv';
SELECT * FROM pg_temp.list('awaiting_issue');
SELECT pg_temp.st(ioffice.act(:doc_a, 'issue', NULL, 'Đã vào sổ và phát hành'))
       AS "Trạng thái mới / new state";
SELECT * FROM pg_temp.issued(:doc_a);
COMMIT;
\echo '    Văn thư ký số bằng con dấu của cơ quan / the organisation''s signature, then verification:'
SELECT * FROM pg_temp.signed(:doc_a);

\echo
\echo '--- A6. Quá trình xử lý văn bản đi / processing trail'
BEGIN;
SET LOCAL ioffice.actor = 'luan.tv';
SELECT * FROM pg_temp.qtxl(:doc_a);
COMMIT;


\echo
\echo '######################################################################'
\echo '# Trường hợp B: đơn vị tham mưu cho UBND huyện, Chủ tịch ký ban hành'
\echo '# Case B: a department drafts for the district committee; the chairman signs'
\echo '######################################################################'

\echo
\echo '--- B1. Chuyên viên Dương Văn Tuấn (Phòng VH&TT): dự thảo Kế hoạch (file Word), chuyển lãnh đạo phòng'
\echo '---     the department specialist drafts a plan (Word file) and submits it to the department head'
BEGIN;
SET LOCAL ioffice.actor = 'tuan.dv';
SELECT ioffice.create_outgoing('KH',
    'Kế hoạch ứng dụng chữ ký số trong trao đổi văn bản điện tử trên phần mềm VNPT-iOffice tại các cơ quan nhà nước huyện Sốp Cộp năm 2019',
    '{"field": "Lĩnh vực chung", "signer": "loi.lt", "urgency": "urgent",
      "recipients": ["Các cơ quan chuyên môn thuộc UBND huyện", "Ủy ban nhân dân các xã",
                     "000.00.00.G22"]}')
    AS doc_b \gset
-- 000.00.00.G22 is the code of Văn phòng Chính phủ, an agency of another
-- system: at issue the plan is queued for it as an edXML package, which
-- scripts/demo sends through the interconnection axis at its end
SELECT ioffice.attach(:doc_b, 'ke_hoach_chu_ky_so.docx', decode(:'draft_v1', 'base64')) AS file_b1 \gset
SELECT pg_temp.st(ioffice.act(:doc_b, 'submit', 'hung.lv', 'Gửi LĐ phòng dự thảo Kế hoạch ứng dụng chữ ký số',
                   '{"sms": true}')) AS "Trạng thái mới / new state";
COMMIT;

\echo
\echo '--- B2. Trưởng phòng Lò Văn Hưng: Chuyển chuyên viên (trả lại) / the department head returns it with a note'
BEGIN;
SET LOCAL ioffice.actor = 'hung.lv';
SELECT * FROM pg_temp.list('awaiting_approval');
SELECT pg_temp.st(ioffice.act(:doc_b, 'return', NULL,
                   'Đề nghị bổ sung lộ trình triển khai đến các xã và kinh phí thực hiện'))
       AS "Trạng thái mới / new state";
COMMIT;
\echo '    Tab "VB chờ chuyên viên xử lý" của lãnh đạo phòng / the head''s awaiting_specialist tab:'
BEGIN;
SET LOCAL ioffice.actor = 'hung.lv';
SELECT * FROM pg_temp.list('awaiting_specialist');
COMMIT;

\echo
\echo '--- B3. Chuyên viên thay tệp dự thảo và chuyển lại / the specialist replaces the file and submits again'
BEGIN;
SET LOCAL ioffice.actor = 'tuan.dv';
SELECT ioffice.replace_file(:file_b1, 'ke_hoach_chu_ky_so_v2.docx', decode(:'draft_v2', 'base64'))
    AS file_b2 \gset
SELECT f.id AS "File id", f.name AS "Tên file", f.kind AS "Loại", f.size AS "Cỡ (byte)",
       f.replaces_id AS "Thay cho", CASE WHEN f.superseded_at IS NULL THEN 'hiện hành / current'
                                         ELSE 'đã thay / superseded' END AS "Tình trạng"
FROM ioffice.file f WHERE f.document_id = :doc_b ORDER BY f.id;
SELECT pg_temp.st(ioffice.act(:doc_b, 'submit', 'hung.lv',
                   'Gửi LĐ phòng dự thảo đã bổ sung lộ trình và kinh phí', '{"sms": true}'))
       AS "Trạng thái mới / new state";
COMMIT;

\echo
\echo '--- B4. Trưởng phòng: Chuyển lãnh đạo khác → Chánh Văn phòng thẩm định / forward to the office chief for appraisal'
BEGIN;
SET LOCAL ioffice.actor = 'hung.lv';
SELECT pg_temp.st(ioffice.act(:doc_b, 'forward', 'dai.tv', 'Chuyển lãnh đạo thẩm định', '{"sms": true}'))
       AS "Trạng thái mới / new state";
\echo '    Tab "VB chờ lãnh đạo khác duyệt" của trưởng phòng / the head''s awaiting_other_leader tab:'
SELECT * FROM pg_temp.list('awaiting_other_leader');
COMMIT;

\echo
\echo '--- B5. Chánh Văn phòng Trần Văn Đại thẩm định, trình Chủ tịch / the chief forwards it to the chairman'
BEGIN;
SET LOCAL ioffice.actor = 'dai.tv';
SELECT pg_temp.st(ioffice.act(:doc_b, 'forward', 'loi.lt',
                   'Văn phòng đã thẩm định, trình Chủ tịch xem xét ký ban hành', '{"sms": true}'))
       AS "Trạng thái mới / new state";
COMMIT;

\echo
\echo '--- B6. Chủ tịch Lê Tiến Lợi: Chờ duyệt, ký số từ xa, rồi Duyệt → văn thư'
\echo '---     the chairman''s list; he signs through his remote signing service (the worker sends the'
\echo '---     hash, he confirms on his phone, the worker embeds the signature); then approves to the clerk'
BEGIN;
SET LOCAL ioffice.actor = 'loi.lt';
SELECT * FROM pg_temp.list('awaiting_approval');
SELECT pg_temp.st(ioffice.act(:doc_b, 'sign', NULL, NULL, '{"mode": "vgca"}')) AS "Ký số / sign";
COMMIT;
SELECT * FROM pg_temp.signed(:doc_b);
BEGIN;
SET LOCAL ioffice.actor = 'loi.lt';
SELECT pg_temp.st(ioffice.act(:doc_b, 'approve', 'thuy.tv', 'Đề nghị văn thư phát hành', '{"sms": true}'))
       AS "Trạng thái mới / new state";
COMMIT;

\echo
\echo '--- B7. Văn thư phát hành / the clerk issues it'
BEGIN;
SET LOCAL ioffice.actor = 'thuy.tv';
SELECT pg_temp.st(ioffice.act(:doc_b, 'issue', NULL, 'Đã vào sổ và phát hành'))
       AS "Trạng thái mới / new state";
SELECT * FROM pg_temp.issued(:doc_b);
COMMIT;
SELECT * FROM pg_temp.signed(:doc_b);

\echo
\echo '--- B8. Quá trình xử lý văn bản đi / processing trail'
BEGIN;
SET LOCAL ioffice.actor = 'tuan.dv';
SELECT * FROM pg_temp.qtxl(:doc_b);
COMMIT;

\echo
\echo '--- B9. Nhật ký (audit) của văn bản / the document''s audit records'
SELECT a.id AS "#", to_char(a.at, 'HH24:MI:SS') AS "Lúc", p.login AS "Người thực hiện",
       a.action AS "Hành động", coalesce(a.state_before || ' → ' || a.state_after, '') AS "Trạng thái",
       pg_temp.short(coalesce(a.detail->>'symbol', a.detail->>'note', a.detail->>'name',
                             a.detail->>'abstract', ''), 60) AS "Chi tiết"
FROM ioffice.audit a LEFT JOIN ioffice.person p ON p.id = a.actor_id
WHERE (a.entity = 'document' AND a.entity_id = :doc_b)
   OR (a.entity = 'file' AND (a.detail->>'document')::bigint = :doc_b)
ORDER BY a.id;


\echo
\echo '######################################################################'
\echo '# Ký số: văn bản chờ ký số không duyệt được'
\echo '# Signing: a document awaiting its signature cannot be approved yet'
\echo '######################################################################'
\echo '("sign" queues the signing of the current files; until the signature is done, "approve" waits)'

\echo
\echo '--- C1. Chuyên viên dự thảo Thông báo, chuyển Chánh Văn phòng / a third document reaches the chief'
BEGIN;
SET LOCAL ioffice.actor = 'luan.tv';
SELECT ioffice.create_outgoing('TB', 'Thông báo kết luận của Chủ tịch UBND huyện tại cuộc họp giao ban tháng 7/2019')
    AS doc_c \gset
SELECT ioffice.attach(:doc_c, 'tb_ket_luan_giao_ban.pdf',
                      convert_to(E'%PDF-1.4\n% Thong bao ket luan\n%%EOF\n', 'UTF8')) AS file_c \gset
SELECT pg_temp.st(ioffice.act(:doc_c, 'submit', 'dai.tv', 'Gửi LĐ dự thảo TBKL (đã tổng hợp của các đ/c CV)'))
       AS "Trạng thái mới / new state";
COMMIT;

\echo
\echo '--- C2. Trần Văn Đại: Ký số (ký VGCA); danh sách Chờ duyệt; thử Duyệt khi chữ ký còn chờ'
\echo '---     the chief signs; his list shows "Chờ ký số"; approving before the signature is done is refused'
BEGIN;
SET LOCAL ioffice.actor = 'dai.tv';
SELECT pg_temp.st(ioffice.act(:doc_c, 'sign', NULL, NULL, '{"mode": "vgca"}'))
       AS "Trạng thái mới / new state";
SELECT * FROM pg_temp.list('awaiting_approval');
SELECT l.document AS "Mã VB", l.awaiting_signature AS "awaiting_signature"
FROM ioffice.outgoing_list('awaiting_approval') AS l;
SELECT f.name AS "Tên file", ioffice.person_label(s.signer_id) AS "Người ký", s.kind AS "Loại chữ ký",
       s.status AS "Tình trạng", s.options->>'mode' AS "Cách ký"
FROM ioffice.signature s JOIN ioffice.file f ON f.id = s.file_id WHERE s.document_id = :doc_c;
\echo '    Duyệt → văn thư / approve to the clerk:'
SELECT * FROM pg_temp.refused(:doc_c, 'approve', 'thuy.tv', 'Đề nghị văn thư phát hành');
SELECT pg_temp.st(d.state) AS "Trạng thái văn bản (không đổi) / state (unchanged)"
FROM ioffice.document d WHERE d.id = :doc_c;
COMMIT;


\echo
\echo '######################################################################'
\echo '# Hồ sơ công việc và tra cứu / Case files and search (Decree 30 Appendix VI III.4, III.6)'
\echo '######################################################################'
\echo
\echo '--- Văn thư lập hồ sơ trong Danh mục hồ sơ năm nay, đưa các văn bản đã phát hành vào hồ sơ'
\echo '    / the clerk opens a case file of this year''s list and files the issued documents into it'
BEGIN;
SET LOCAL ioffice.actor = 'thuy.tv';
SELECT ioffice.add_case_file(:ubnd, extract(year FROM now())::int, '05.VP',
                             'Hồ sơ triển khai ứng dụng chữ ký số trên phần mềm VNPT-iOffice', '10',
                             'dai.tv') AS case_file \gset
SELECT ioffice.file_into(:case_file, d.id)
FROM ioffice.document d WHERE d.state = 'issued' ORDER BY d.number \g /dev/null
SELECT c.code AS "Mã hồ sơ", c.title AS "Tiêu đề hồ sơ", c.retention AS "Thời hạn bảo quản",
       p.full_name AS "Người lập hồ sơ",
       (SELECT count(*) FROM ioffice.case_file_document x
         WHERE x.case_file_id = c.id AND x.unfiled_at IS NULL) AS "Số văn bản / documents"
FROM ioffice.case_file c JOIN ioffice.person p ON p.id = c.responsible_id WHERE c.id = :case_file \gx
\echo '--- Mục lục văn bản trong hồ sơ, xuất XML (III.4g) / the case file''s contents, read back from its XML export'
SELECT x.ord AS "STT", x.num || '/' || x.notation AS "Số, ký hiệu", x.type AS "Loại",
       left(x.subject, 70) AS "Trích yếu"
FROM xmltable('//Document' PASSING ioffice.case_file_xml(:case_file)
              COLUMNS ord text PATH 'DocOrdinal', num text PATH 'CodeNumber',
                      notation text PATH 'CodeNotation', type text PATH 'TypeName',
                      subject text PATH 'Subject') x;
COMMIT;
\echo
\echo '--- Tra cứu không dấu: "chu ky so" tìm thấy "chữ ký số" (III.6d) / an unaccented query finds the accented text'
BEGIN;
SET LOCAL ioffice.actor = 'thuy.tv';
SELECT d.symbol AS "Số, ký hiệu", round(s.rank::numeric, 2) AS "Hạng", left(d.abstract, 70) AS "Trích yếu"
FROM ioffice.search('chu ky so') s JOIN ioffice.document d ON d.id = s.document
ORDER BY s.rank DESC, d.id;
\echo '    (the same query written with its tones ranks exact spellings first:)'
SELECT d.symbol AS "Số, ký hiệu", round(s.rank::numeric, 2) AS "Hạng"
FROM ioffice.search('chữ ký số') s JOIN ioffice.document d ON d.id = s.document
ORDER BY s.rank DESC, d.id;
COMMIT;

\echo
\echo '######################################################################'
\echo '# Tổng hợp / Summary'
\echo '######################################################################'
\echo
\echo '--- Văn bản đã phát hành / issued documents'
SELECT d.number AS "Số", d.symbol AS "Số ký hiệu", d.identifier AS "Mã định danh",
       t.name AS "Loại", d.abstract AS "Trích yếu"
FROM ioffice.document d JOIN ioffice.doc_type t ON t.code = d.doc_type
WHERE d.state = 'issued' ORDER BY d.number \gx

\echo '--- Trang chủ (dashboard): văn thư, Chủ tịch, Chánh Văn phòng / the clerk''s, chairman''s and chief''s counters'
BEGIN;
SET LOCAL ioffice.actor = 'thuy.tv';
CREATE TEMP TABLE counters ON COMMIT PRESERVE ROWS AS
    SELECT 'Tòng Văn Thủy (văn thư)'::text AS who, * FROM ioffice.dashboard();
COMMIT;
BEGIN;
SET LOCAL ioffice.actor = 'loi.lt';
INSERT INTO counters SELECT 'Lê Tiến Lợi (chủ tịch)', * FROM ioffice.dashboard();
COMMIT;
BEGIN;
SET LOCAL ioffice.actor = 'dai.tv';
INSERT INTO counters SELECT 'Trần Văn Đại (chánh VP)', * FROM ioffice.dashboard();
COMMIT;
SELECT who AS "Người dùng",
       outgoing_awaiting_approval AS "VB đi: Chờ duyệt",
       outgoing_awaiting_processing AS "Chờ xử lý",
       outgoing_delegated AS "Ủy quyền duyệt",
       outgoing_issued AS "Đã phát hành",
       incoming_unprocessed AS "VB đến: Chưa xử lý"
FROM counters;
