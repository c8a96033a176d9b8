\set SHOW_CONTEXT never
-- Issue 17, findings 1 and 2: the signer in the register (Người ký) is the
-- leader who approved and, where asked, signed: never a name the drafter
-- typed, never the drafter; what the leader signed is issued as signed.
SET client_min_messages = warning;

-- ---------------------------------------------------------------------------
-- The signer a drafter proposes is a leader of the drafting unit (or above)
-- other than the drafter
-- ---------------------------------------------------------------------------
SET ioffice.actor = 'regress_luan';
SELECT regress_error($$SELECT ioffice.create_outgoing('CV', 'Tự ký', '{"signer": "regress_luan"}')$$, 0)
       AS specialist_names_himself;
SELECT regress_error($$SELECT ioffice.create_outgoing('CV', 'Người ký phòng khác', '{"signer": "hoa"}')$$, 0)
       AS leader_of_another_unit;
SET ioffice.actor = 'dai';
SELECT regress_error($$SELECT ioffice.create_outgoing('QĐ', 'Tự ký', '{"signer": "dai"}')$$, 0)
       AS leader_names_himself;

-- ---------------------------------------------------------------------------
-- A leader's own draft: not to himself, not approved by himself
-- ---------------------------------------------------------------------------
SELECT ioffice.create_outgoing('QĐ', 'Quyết định lãnh đạo tự soạn', '{"signer": "loi"}') AS own \gset
SELECT ioffice.attach(:own, 'tu_soan.pdf', content) IS NOT NULL AS attached FROM pdf;
SELECT regress_error(format('SELECT ioffice.act(%s, %L, %L)', :own, 'submit', 'dai'), :own) AS submit_to_himself;
SELECT ioffice.act(:own, 'submit', 'kien', 'Trình Phó Chủ tịch');
SET ioffice.actor = 'kien';
-- the vice-chairman hands it back to the chief of office, its drafter
SELECT ioffice.act(:own, 'forward', 'dai', 'Chuyển lại anh Đại');
SET ioffice.actor = 'dai';
SELECT regress_error(format('SELECT ioffice.act(%s, %L, %L)', :own, 'approve', 'regress_thuy'), :own)
       AS approves_his_own;
SELECT regress_error(format('SELECT ioffice.act(%s, %L)', :own, 'quick_approve'), :own)
       AS quick_approves_his_own;
SELECT regress_error(format('SELECT ioffice.act(%s, %L)', :own, 'return'), :own) AS returns_to_himself;
SELECT ioffice.act(:own, 'forward', 'loi', 'Kính trình Chủ tịch');
SET ioffice.actor = 'loi';
SELECT ioffice.act(:own, 'approve', 'regress_thuy');
SET ioffice.actor = 'regress_thuy';
SELECT ioffice.act(:own, 'issue');
SELECT signer, type_and_abstract FROM ioffice.outgoing_register WHERE document_id = :own;

-- ---------------------------------------------------------------------------
-- The approval makes the signer, whatever the drafter proposed
-- ---------------------------------------------------------------------------
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('CV', 'V/v người ký là người duyệt', '{"signer": "loi"}') AS named \gset
SELECT ioffice.attach(:named, 'nguoi_duyet.pdf', content) IS NOT NULL AS attached FROM pdf;
SELECT ioffice.act(:named, 'submit', 'dai');
SET ioffice.actor = 'dai';
SELECT ioffice.act(:named, 'approve', 'regress_thuy');
SELECT p.login AS signer_once_approved FROM ioffice.document d JOIN ioffice.person p ON p.id = d.signer_id
WHERE d.id = :named;
SET ioffice.actor = 'regress_thuy';
SELECT ioffice.act(:named, 'issue');
SELECT signer FROM ioffice.outgoing_register WHERE document_id = :named;
-- and under delegation it is the holder the delegate approves for (the
-- chairman's delegation to the vice-chairman, of the delegation test)
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('TB', 'Thông báo duyệt thay') AS by_delegate \gset
SELECT ioffice.attach(:by_delegate, 'duyet_thay.pdf', content) IS NOT NULL AS attached FROM pdf;
SELECT ioffice.act(:by_delegate, 'submit', 'loi');
SET ioffice.actor = 'kien';
SELECT ioffice.act(:by_delegate, 'approve', 'regress_thuy', 'Thay Chủ tịch duyệt');
SET ioffice.actor = 'regress_thuy';
SELECT ioffice.act(:by_delegate, 'issue');
SELECT signer FROM ioffice.outgoing_register WHERE document_id = :by_delegate;

-- ---------------------------------------------------------------------------
-- Approved, the signer, type and abstract are frozen, whoever writes
-- ---------------------------------------------------------------------------
RESET ioffice.actor;
SELECT regress_error(format($$UPDATE ioffice.document SET signer_id = (SELECT id FROM ioffice.person
                              WHERE login = 'regress_luan') WHERE id = %s$$, :named), :named) AS signer_rewritten;
SELECT regress_error(format($$UPDATE ioffice.document SET abstract = 'Khác' WHERE id = %s$$, :named), :named)
       AS abstract_rewritten;
SELECT regress_error(format($$UPDATE ioffice.document SET doc_type = 'QĐ' WHERE id = %s$$, :named), :named)
       AS type_rewritten;

-- ---------------------------------------------------------------------------
-- import_issued: the signer is a leader of the agency, not any login
-- ---------------------------------------------------------------------------
SET ioffice.actor = 'regress_thuy';
CREATE TEMP TABLE signer_payload AS
SELECT jsonb_build_object(
    'external_id', 'signer-rules-1',
    'agency_code', '000.00.32.H41',
    'doc_type', 'GGT',
    'abstract', 'Giới thiệu cán bộ',
    'signer', 'regress_luan',
    'files', jsonb_build_array(jsonb_build_object('name', 'ggt_signed.pdf',
                                                  'content', encode(content, 'base64'))),
    'trail', jsonb_build_object('name', 'QTXL.docx',
                                'content', encode(test_zip('word/document.xml'), 'base64'))) AS p
FROM pdf;
SELECT regress_error($$SELECT * FROM ioffice.import_issued((SELECT p FROM signer_payload))$$, 0)
       AS specialist_as_signer;
SELECT regress_error($$SELECT * FROM ioffice.import_issued((SELECT p || '{"signer": "regress_thuy"}' FROM signer_payload))$$, 0)
       AS clerk_as_signer;
SELECT regress_error($$SELECT * FROM ioffice.import_issued((SELECT p || '{"signer": "xa_ct"}' FROM signer_payload))$$, 0)
       AS leader_of_another_agency;
SELECT document AS imported FROM ioffice.import_issued((SELECT p || '{"signer": "kien"}' FROM signer_payload)) \gset
SELECT signer, type_and_abstract FROM ioffice.outgoing_register WHERE document_id = :imported;

-- ---------------------------------------------------------------------------
-- Finding 1: the clerk issues a dossier's result as the leader signed it
-- ---------------------------------------------------------------------------
SET ioffice.actor = 'tam';
SELECT ioffice.receive_dossier('1.000009.000.00.00.H41', 'Cấp giấy giới thiệu', '{"name": "Người nộp"}', 5)
       AS code \gset
SELECT ioffice.dossier_act(:'code', 'transfer', 'minhtuan');
SET ioffice.actor = 'minhtuan';
SELECT ioffice.dossier_act(:'code', 'assign', 'chauanh');
SET ioffice.actor = 'chauanh';
SELECT ioffice.dossier_attach(:'code', 'GGT_du_thao.docx', test_zip('word/document.xml')) AS draft \gset
SELECT ioffice.dossier_act(:'code', 'propose', 'minhtuan', 'Trình ký',
                           '{"abstract": "Giới thiệu ông Nguyễn Văn A đến liên hệ công tác"}');
SET ioffice.actor = 'minhtuan';
SELECT ioffice.dossier_act(:'code', 'sign', 'regress_thuy', 'Ký giấy giới thiệu',
                           format('{"result_file": %s, "doc_type": "GGT"}', :draft)::jsonb);
SELECT d.result_document_id AS result FROM ioffice.dossier d WHERE d.code = :'code' \gset
RESET ioffice.actor;
-- no signing worker here: the leader's signature is completed by hand
UPDATE ioffice.signature SET status = 'done', signed_at = now() WHERE document_id = :result AND kind = 'personal';
SET ioffice.actor = 'regress_thuy';
SELECT regress_error(format($$SELECT ioffice.dossier_act(%L, 'issue', NULL, NULL, '{"signer": "loi"}')$$, :'code'), 0)
       AS other_signer \gset
SELECT replace(:'other_signer', :'code', '<code>') AS other_signer;
SELECT regress_error(format($$SELECT ioffice.dossier_act(%L, 'issue', NULL, NULL, '{"doc_type": "QĐ"}')$$, :'code'), 0)
       AS other_type \gset
SELECT replace(:'other_type', :'code', '<code>') AS other_type;
SELECT regress_error(format($$SELECT ioffice.dossier_act(%L, 'issue', NULL, NULL, '{"abstract": "Thu hồi giấy phép kinh doanh"}')$$,
                            :'code'), 0) AS other_abstract \gset
SELECT replace(:'other_abstract', :'code', '<code>') AS other_abstract;
SELECT regress_error(format($$SELECT ioffice.dossier_act(%L, 'issue', NULL, NULL,
                              '{"signer": "loi", "doc_type": "QĐ", "abstract": "Thu hồi giấy phép kinh doanh"}')$$,
                            :'code'), 0) AS all_three \gset
SELECT replace(:'all_three', :'code', '<code>') AS all_three;
-- repeating what was signed is no change
SELECT ioffice.dossier_act(:'code', 'issue', NULL, 'Đã lấy số',
                           '{"signer": "minhtuan", "doc_type": "GGT", "abstract": "Giới thiệu ông Nguyễn Văn A đến liên hệ công tác"}');
SELECT symbol LIKE '%/GGT-UBND' AS ggt_symbol, signer, type_and_abstract
FROM ioffice.outgoing_register WHERE document_id = :result;
RESET ioffice.actor;
