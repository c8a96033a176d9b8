-- Seed 000, case B: a department drafts for the district committee.  The
-- department leader reviews and returns it once, then forwards it to the
-- office chief for appraisal, who forwards it to the chairman; the chairman
-- approves and the committee's clerk issues.
SET ioffice.actor = 'regress_tuan';
SELECT ioffice.create_outgoing('KH', 'Kế hoạch tăng cường ứng dụng chữ ký số năm 2019',
       '{"urgency": "urgent", "signer": "loi"}') AS doc \gset
SELECT ioffice.attach(:doc, 'ke_hoach_v1.pdf', content) AS v1 FROM pdf \gset
SELECT ioffice.act(:doc, 'submit', 'hoa', 'Trình trưởng phòng', '{"request_signature": false}');

SET ioffice.actor = 'hoa';
SELECT ioffice.act(:doc, 'return', NULL, 'Bổ sung số liệu mục II');
SELECT document, state, holder FROM ioffice.outgoing_list('awaiting_specialist');
SELECT outgoing_awaiting_approval FROM ioffice.dashboard();

SET ioffice.actor = 'regress_tuan';
SELECT outgoing_awaiting_processing FROM ioffice.dashboard();
SELECT ioffice.replace_file(:v1, 'ke_hoach_v2.pdf', content) AS v2 FROM pdf \gset
SELECT name, superseded_at IS NOT NULL AS superseded, replaces_id = :v1 AS replaces_v1
FROM ioffice.file WHERE document_id = :doc ORDER BY id;
SELECT ioffice.act(:doc, 'submit', 'hoa', 'Đã bổ sung');

SET ioffice.actor = 'hoa';
SELECT ioffice.act(:doc, 'forward', 'dai', 'Chuyển lãnh đạo thẩm định');
SELECT document, state FROM ioffice.outgoing_list('awaiting_other_leader');

SET ioffice.actor = 'dai';
SELECT ioffice.act(:doc, 'forward', 'loi', 'Đã thẩm định, trình Chủ tịch ký');

SET ioffice.actor = 'loi';
SELECT document, urgency, abstract, priority, state FROM ioffice.outgoing_list('awaiting_approval');
SELECT ioffice.act(:doc, 'approve', 'regress_thuy', 'Đề nghị văn thư phát hành');

SET ioffice.actor = 'hoa';
-- once approved it is no longer "under another leader's review" for the leader who forwarded it
SELECT count(*) AS hoa_other_leader FROM ioffice.outgoing_list('awaiting_other_leader');

SET ioffice.actor = 'regress_thuy';
SELECT ioffice.act(:doc, 'issue');
SELECT number, symbol, agency_id = (SELECT id FROM ioffice.unit WHERE abbr = 'UBND' AND code = '000.00.32.H41') AS committee
FROM ioffice.document WHERE id = :doc;
SELECT step, sender, request, receiver, processing_note, status, attachments FROM ioffice.trail(:doc);

-- a named type numbers in the same agency register: the two công văn of case A took 01 and 02
SELECT symbol FROM ioffice.document WHERE state = 'issued' ORDER BY number;

-- confidential documents have their own series (Decree 30)
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('CV', 'Văn bản mật', '{"confidentiality": "secret"}') AS sec \gset
SELECT ioffice.attach(:sec, 'mat.pdf', content) FROM pdf;
SELECT ioffice.act(:sec, 'submit', 'dai');
SET ioffice.actor = 'dai';
SELECT ioffice.act(:sec, 'approve', 'regress_thuy');
SET ioffice.actor = 'regress_thuy';
SELECT ioffice.act(:sec, 'issue');
SELECT d.number, d.symbol, d.identifier, r.code AS register FROM ioffice.document d
JOIN ioffice.register r ON r.id = d.register_id WHERE d.id = :sec;

-- completing without issuing
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('TB', 'Thông báo nội bộ') AS tb \gset
SELECT ioffice.attach(:tb, 'tb.pdf', content) FROM pdf;
SELECT ioffice.act(:tb, 'submit', 'dai');
SET ioffice.actor = 'dai';
SELECT ioffice.act(:tb, 'complete', NULL, 'Lưu hành nội bộ, không phát hành');
SELECT state, number FROM ioffice.document WHERE id = :tb;
SELECT step, processing_note, status FROM ioffice.trail(:tb);
RESET ioffice.actor;
