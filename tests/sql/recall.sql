-- Recalling an issued document (Decree 30 art. 18.4; Appendix VI, III.8):
-- recall() by whom and when (SQLSTATEs), the outgoing document frozen,
-- the recipient in this database asked directly, an external one by a
-- recall package; answer_recall(): refused with a reason, accepted (the
-- copy's bytes destroyed through the one narrow path, the record kept);
-- a recall package from the axis received twice handled once, one for a
-- document never received answered 16; status 05 sent once.
-- (Two clusters through the axis: TAP 040.)
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('CV', 'V/v thu hồi văn bản liên thông',
       '{"signer": "dai", "recipients": ["000.00.00.G22", "001.32.32.H41", "Lưu: VT"]}') AS rdoc \gset
SELECT ioffice.attach(:rdoc, 'thu_hoi.pdf', content) IS NOT NULL AS attached FROM pdf;
SELECT ioffice.act(:rdoc, 'submit', 'dai');
-- not issued: nothing to recall
SET ioffice.actor = 'regress_thuy';
SELECT regress_error(format('SELECT ioffice.recall(%s, %L)', :rdoc, 'Sai sót'), :rdoc);
SET ioffice.actor = 'dai';
SELECT ioffice.act(:rdoc, 'quick_approve');
SET ioffice.actor = 'regress_thuy';
SELECT ioffice.act(:rdoc, 'issue');
SELECT id AS xcopy FROM ioffice.document WHERE source_document_id = :rdoc \gset

-- who may recall: not its drafter, not another agency's clerk, nor a
-- leader of a department; a reason is required
SET ioffice.actor = 'regress_luan';
SELECT regress_error(format('SELECT ioffice.recall(%s, %L)', :rdoc, 'Sai sót'), :rdoc);
SET ioffice.actor = 'hoa';
SELECT regress_error(format('SELECT ioffice.recall(%s, %L)', :rdoc, 'Sai sót'), :rdoc);
SET ioffice.actor = 'regress_xa_vt';
SELECT regress_error(format('SELECT ioffice.recall(%s, %L)', :rdoc, 'Sai sót'), :rdoc);
SELECT regress_error(format('SELECT ioffice.recall(%s, %L)', :xcopy, 'Sai sót'), :xcopy);
SET ioffice.actor = 'regress_thuy';
SELECT regress_error(format('SELECT ioffice.recall(%s, %L)', :rdoc, '  '), :rdoc);
SELECT regress_error(format('SELECT ioffice.recall(%s, NULL)', :rdoc), :rdoc);
-- the clerk recalls it
SELECT ioffice.recall(:rdoc, 'Văn bản có sai sót về nội dung');
SELECT regress_error(format('SELECT ioffice.recall(%s, %L)', :rdoc, 'Lần nữa'), :rdoc);
-- frozen: metadata and files
RESET ioffice.actor;
SELECT regress_error(format('UPDATE ioffice.document SET due_date = DATE %L WHERE id = %s',
                            '2030-01-01', :rdoc), :rdoc);
SELECT regress_error(format('UPDATE ioffice.document SET comment = %L WHERE id = %s', 'x', :rdoc), :rdoc);
SET ioffice.actor = 'regress_thuy';
SELECT regress_error(format('SELECT ioffice.attach(%s, %L, %L::bytea)', :rdoc, 'b.pdf', '%PDF-1.4 b'), :rdoc);
-- the external recipient: its document package (not sent yet) is sent no
-- more, a recall package is queued; the clerk sees it
RESET ioffice.actor;
SELECT recipient, kind, state, code, last_error, description
FROM ioffice.edxml_outgoing WHERE document_id = :rdoc ORDER BY kind, recipient;
SET ioffice.actor = 'regress_thuy';
SELECT party, direction, code, description, package, delivery
FROM ioffice.exchange_status WHERE document = :rdoc ORDER BY package;
SELECT direction, recipient, party, copy = :xcopy AS the_copy, reason, answer
FROM ioffice.recall_status WHERE document = :rdoc ORDER BY party NULLS FIRST;
-- the recall package the worker builds: BussinessDocType 1, the reason,
-- the same DocumentId, no attachment
RESET ioffice.actor;
SELECT (xpath('//e:Bussiness/e:BussinessDocType/text()', x, ns))[1]::text AS business,
       (xpath('//e:Bussiness/e:BussinessDocReason/text()', x, ns))[1]::text AS reason,
       (xpath('//e:MessageHeader/e:DocumentId/text()', x, ns))[1]::text
           = (SELECT identifier FROM ioffice.document WHERE id = :rdoc) AS same_document_id,
       NOT xpath_exists('//e:AttachmentEncoded/e:Attachment', x, ns) AS no_attachment
FROM (SELECT ioffice._edxml_package(o.document_id, o.recipient, NULL, 1, o.description) AS x
        FROM ioffice.edxml_outgoing o WHERE o.document_id = :rdoc AND o.kind = 'recall') p,
     (SELECT ARRAY[ARRAY['e', 'http://www.mic.gov.vn/TBT/QCVN_102_2016']] AS ns) n;

-- the recipient in this database: its clerk sees the recall pending
SET ioffice.actor = 'regress_xa_vt';
SELECT direction, reason, answer FROM ioffice.recall_status WHERE document = :xcopy;
-- only its clerk answers; a refusal needs its reason
SET ioffice.actor = 'xa_ct';
SELECT regress_error(format('SELECT ioffice.answer_recall(%s, true)', :xcopy), :xcopy);
SET ioffice.actor = 'regress_thuy';
SELECT regress_error(format('SELECT ioffice.answer_recall(%s, true)', :xcopy), :xcopy);
SET ioffice.actor = 'regress_xa_vt';
SELECT regress_error(format('SELECT ioffice.answer_recall(%s, false)', :xcopy), :xcopy);
SELECT regress_error(format('SELECT ioffice.answer_recall(%s, false, %L)', :xcopy, ' '), :xcopy);
-- a document with no recall has nothing to answer
SET ioffice.actor = 'regress_thuy';
SELECT regress_error(format('SELECT ioffice.answer_recall(%s, true)', :rdoc), :rdoc);
-- the copy's bytes may not be emptied by hand before the recall is accepted
RESET ioffice.actor;
SELECT regress_error(format('UPDATE ioffice.file SET content = %L::bytea, erased_at = now() WHERE document_id = %s',
                            '', :xcopy), :xcopy);
SET ioffice.actor = 'regress_xa_vt';
SELECT ioffice.answer_recall(:xcopy, true);
SELECT regress_error(format('SELECT ioffice.answer_recall(%s, false, %L)', :xcopy, 'Đổi ý'), :xcopy);
-- the bytes are gone, the record kept: name, hash, size; the copy marked
-- recalled and frozen; file_content refuses it (exchange_rest.sql: why)
RESET ioffice.actor;
SELECT f.name, octet_length(f.content) AS bytes, f.size > 0 AS size_kept,
       f.sha256 = sha256((SELECT content FROM pdf)) AS hash_kept,
       f.erased_at IS NOT NULL AS erased, f.removed_at IS NOT NULL AS removed
FROM ioffice.file f WHERE f.document_id = :xcopy;
SELECT d.recalled_at IS NOT NULL AS recalled, d.source_document_id = :rdoc AS record_kept,
       NOT EXISTS (SELECT 1 FROM ioffice.task t WHERE t.document_id = d.id AND t.status = 'open') AS no_open_task,
       NOT EXISTS (SELECT 1 FROM ioffice.search_text s WHERE s.document_id = d.id AND s.file_id IS NOT NULL) AS no_file_text
FROM ioffice.document d WHERE d.id = :xcopy;
SET ioffice.actor = 'regress_xa_vt';
SELECT regress_error(format('SELECT ioffice.file_content(%s)', f.id), f.id) AS download
FROM ioffice.file f WHERE f.document_id = :xcopy;
SELECT regress_error(format('SELECT ioffice.act(%s, %L)', :xcopy, 'register'), :xcopy);
-- the narrow path is taken once: the erased file changes no more
RESET ioffice.actor;
SELECT regress_error(format('UPDATE ioffice.file SET name = %L WHERE document_id = %s', 'x.pdf', :xcopy), :xcopy);
-- the sender sees the answer; each step is on the trail
SET ioffice.actor = 'regress_thuy';
SELECT direction, recipient, party, answer FROM ioffice.recall_status WHERE document = :rdoc
ORDER BY party NULLS FIRST;
RESET ioffice.actor;
SELECT entity_id = :rdoc AS sender, action, detail->>'reason' AS reason
FROM ioffice.audit WHERE entity = 'document' AND entity_id IN (:rdoc, :xcopy)
  AND action LIKE 'recall%' ORDER BY id;

-- a recall package from the axis (the helper's reading, signature valid):
-- for a copy received from 000.00.00.G22 under its DocumentId
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('CV', 'V/v văn bản sẽ bị thu hồi qua trục',
       '{"signer": "dai", "recipients": ["001.32.32.H41"]}') AS sdoc \gset
SELECT ioffice.attach(:sdoc, 'truc2.pdf', content) IS NOT NULL AS attached FROM pdf;
SELECT ioffice.act(:sdoc, 'submit', 'dai');
SET ioffice.actor = 'dai';
SELECT ioffice.act(:sdoc, 'quick_approve');
SET ioffice.actor = 'regress_thuy';
SELECT ioffice.act(:sdoc, 'issue');
RESET ioffice.actor;
SELECT id AS ycopy, agency_id AS xa FROM ioffice.document WHERE source_document_id = :sdoc \gset
INSERT INTO ioffice.edxml_received (agency_id, sender_organ_id, edxml_document_id, document_id,
                                    package_sha256)
VALUES (:xa, '000.00.00.G22', 'regress-recall-1', :ycopy, sha256('y'));
CREATE TEMP TABLE recall_pkg AS
SELECT '{"kind": "document", "from": {"organ_id": "000.00.00.G22"}, "document_id": "regress-recall-1",
         "bussiness_doc_type": "1", "bussiness_doc_reason": "Sai thể thức", "attachments": [],
         "signature": {"status": "valid", "subject": "CN=regress"}}'::jsonb AS p;
-- twice: handled once, the same copy
SELECT ioffice._edxml_file(p, 'x', :xa, NULL) = :ycopy AS first FROM recall_pkg;
SELECT ioffice._edxml_file(p, 'x', :xa, NULL) = :ycopy AS again FROM recall_pkg;
SELECT count(*) AS recalls FROM ioffice.document_recall WHERE document_id = :ycopy;
SELECT direction, code, description FROM ioffice.edxml_status WHERE document_id = :ycopy ORDER BY id;
-- refused, with the reason: 16 queued to the sender
SET ioffice.actor = 'regress_xa_vt';
SELECT ioffice.answer_recall(:ycopy, false, 'Văn bản đã được thực hiện');
RESET ioffice.actor;
SELECT o.recipient, o.kind, o.code, o.description, o.edxml_document_id, o.state
FROM ioffice.edxml_outgoing o WHERE o.document_id = :ycopy ORDER BY o.id;
SELECT count(*) FILTER (WHERE octet_length(content) > 0) AS files_kept,
       bool_and(erased_at IS NULL) AS not_erased
FROM ioffice.file WHERE document_id = :ycopy;
-- a recall of a document never received: answered 16 at once, once
CREATE TEMP TABLE stray_pkg AS
SELECT jsonb_set(p, '{document_id}', '"regress-recall-none"') AS p FROM recall_pkg;
SELECT ioffice._edxml_file(p, 'x', :xa, NULL) IS NULL AS no_copy FROM stray_pkg;
SELECT ioffice._edxml_file(p, 'x', :xa, NULL) IS NULL AS no_copy_again FROM stray_pkg;
SELECT o.recipient, o.kind, o.code, o.description, o.document_id IS NULL AS no_document
FROM ioffice.edxml_outgoing o WHERE o.edxml_document_id = 'regress-recall-none';
SELECT answer, answer_reason IS NOT NULL AS with_reason
FROM ioffice.document_recall WHERE edxml_document_id = 'regress-recall-none';
-- a replacement that names nothing it replaces is refused, named
-- (update and replace: tests/sql/edxml_update.sql)
SELECT regress_error(format('SELECT ioffice._edxml_file(%L::jsonb, %L, %s, NULL)',
                            jsonb_set(p, '{bussiness_doc_type}', '"3"'), 'x', :xa), 0)
FROM recall_pkg;

-- a 15 or 16 received back goes on the recalled document's trail
INSERT INTO ioffice.edxml_status (document_id, party_organ_id, edxml_document_id, direction, code,
                                  description)
SELECT :rdoc, '000.00.00.G22', identifier, 'received', '16', 'Đã thực hiện' FROM ioffice.document WHERE id = :rdoc;
SET ioffice.actor = 'regress_thuy';
SELECT direction, recipient, party, answer, answer_reason FROM ioffice.recall_status
WHERE document = :rdoc ORDER BY party NULLS FIRST;
RESET ioffice.actor;
SELECT action, detail->>'recipient' AS recipient FROM ioffice.audit
WHERE entity = 'document' AND entity_id = :rdoc AND action = 'recall_refused';

-- status 05: once, at the first step taken while it is in progress
SELECT ioffice.add_person('rc_cv', 'Lò Văn Cán', 'Công chức', :xa, '{specialist}') IS NOT NULL AS added;
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('CV', 'V/v theo dõi trạng thái xử lý',
       '{"signer": "dai", "recipients": ["001.32.32.H41"]}') AS pdoc \gset
SELECT ioffice.attach(:pdoc, 'trang_thai.pdf', content) IS NOT NULL AS attached FROM pdf;
SELECT ioffice.act(:pdoc, 'submit', 'dai');
SET ioffice.actor = 'dai';
SELECT ioffice.act(:pdoc, 'quick_approve');
SET ioffice.actor = 'regress_thuy';
SELECT ioffice.act(:pdoc, 'issue');
RESET ioffice.actor;
SELECT id AS zcopy FROM ioffice.document WHERE source_document_id = :pdoc \gset
INSERT INTO ioffice.edxml_received (agency_id, sender_organ_id, edxml_document_id, document_id,
                                    package_sha256)
VALUES (:xa, '000.00.00.G22', 'regress-progress-1', :zcopy, sha256('z'));
SET ioffice.actor = 'regress_xa_vt';
SELECT ioffice.act(:zcopy, 'register');
SELECT ioffice.act(:zcopy, 'submit', 'xa_ct');
SET ioffice.actor = 'xa_ct';
SELECT ioffice.act(:zcopy, 'assign', 'rc_cv', 'Xử lý');
SELECT string_agg(code, ',' ORDER BY id) AS after_assign FROM ioffice.edxml_status
WHERE document_id = :zcopy AND direction = 'sent';
SET ioffice.actor = 'rc_cv';
SELECT ioffice.act(:zcopy, 'complete');
RESET ioffice.actor;
SELECT string_agg(code, ',' ORDER BY id) AS after_complete FROM ioffice.edxml_status
WHERE document_id = :zcopy AND direction = 'sent';
SELECT count(*) AS queued_05 FROM ioffice.edxml_outgoing WHERE document_id = :zcopy AND code = '05';

-- its signer recalls it after it was processed; accepted in a final state
SET ioffice.actor = 'dai';
SELECT ioffice.recall(:pdoc, 'Ký nhầm văn bản');
SET ioffice.actor = 'regress_xa_vt';
SELECT ioffice.answer_recall(:zcopy, true);
RESET ioffice.actor;
SELECT d.state, d.recalled_at IS NOT NULL AS recalled,
       (SELECT bool_and(octet_length(f.content) = 0 AND f.erased_at IS NOT NULL)
          FROM ioffice.file f WHERE f.document_id = d.id) AS bytes_gone
FROM ioffice.document d WHERE d.id = :zcopy;
SET ioffice.actor = 'regress_thuy';
SELECT recipient, answer FROM ioffice.recall_status WHERE document = :pdoc;
RESET ioffice.actor;
