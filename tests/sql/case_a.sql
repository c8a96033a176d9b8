-- Seed 000, case A: the unit issues it.  Specialist drafts, the office chief
-- approves, the clerk numbers and issues.
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('CV', 'V/v hướng dẫn ký số văn bản điện tử',
       '{"signer": "dai", "page_count": 2, "field": "Chuyên môn", "copies": 1,
         "recipients": ["001.32.32.H41", "Các cơ quan chuyên môn thuộc UBND huyện"]}') AS doc \gset
SELECT ioffice.attach(:doc, 'huong_dan_ky_so.pdf', content) AS file FROM pdf \gset
SELECT state, doc_type, drafter_id, signer_id, page_count, recipients FROM ioffice.document WHERE id = :doc;
SELECT ioffice.act(:doc, 'submit', 'dai', 'Gửi LĐ dự thảo (đã tổng hợp ý kiến)', '{"sms": true}');

SET ioffice.actor = 'dai';
SELECT document, urgency, awaiting_signature, number_symbol, abstract, issuing_agency, priority, state
FROM ioffice.outgoing_list('awaiting_approval');
SELECT outgoing_awaiting_approval, outgoing_awaiting_processing, outgoing_issued FROM ioffice.dashboard();
SELECT ioffice.act(:doc, 'approve', 'regress_thuy', 'Đề nghị văn thư phát hành', '{"sms": true}');
SELECT document, state, holder FROM ioffice.outgoing_list('awaiting_issue');
SELECT count(*) FROM ioffice.outgoing_list('awaiting_approval');

SET ioffice.actor = 'regress_thuy';
SELECT document, holder FROM ioffice.outgoing_list('awaiting_issue');
SELECT ioffice.act(:doc, 'issue');
SELECT state, number, symbol, issued_on = (now() AT TIME ZONE 'Asia/Ho_Chi_Minh')::date AS today,
       identifier = '000.00.32.H41,' || to_char(now() AT TIME ZONE 'Asia/Ho_Chi_Minh', 'YYYY/MM/DD')
                    || ',01/UBND-VP' AS identifier_ok
FROM ioffice.document WHERE id = :doc;
SELECT step, sender, request, receiver, processing_note, deadline, processed_at IS NOT NULL AS processed,
       status, attachments
FROM ioffice.trail(:doc);
SELECT document, number_symbol FROM ioffice.outgoing_list('issued');
SELECT outgoing_issued FROM ioffice.dashboard();

-- the audit trail has every step, in the same transactions
SELECT a.entity, a.action, a.state_before, a.state_after, p.login AS actor, a.detail->>'symbol' AS symbol
FROM ioffice.audit a LEFT JOIN ioffice.person p ON p.id = a.actor_id
WHERE (a.entity = 'document' AND a.entity_id = :doc) OR (a.entity = 'file' AND a.entity_id = :file)
ORDER BY a.id;

-- a second công văn the same year takes 02
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('CV', 'V/v đôn đốc áp dụng chữ ký số') AS doc2 \gset
SELECT ioffice.attach(:doc2, 'don_doc.pdf', content) FROM pdf;
SELECT ioffice.act(:doc2, 'submit', 'dai');
SET ioffice.actor = 'dai';
SELECT ioffice.act(:doc2, 'quick_approve');
SET ioffice.actor = 'regress_thuy';
SELECT ioffice.act(:doc2, 'issue');
SELECT number, symbol FROM ioffice.document WHERE id = :doc2;
RESET ioffice.actor;
