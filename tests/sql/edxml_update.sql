-- Replacing and updating an issued document (Decree 30 art. 18.3; QCVN
-- 102:2016 BussinessDocType 3 replace, 2 update): replace_issued() named
-- while drafting and acted on at issue (the old document replaced and
-- frozen, the new one's package a replacement for the old one's external
-- recipients, a copy in this database superseded); update_issued() (due
-- date, receivers added and removed; refusals by SQLSTATE); receiving both
-- from the axis (the helper's reading): applied or filed once, the
-- previous values kept, 15 back; of a document never received, 16.
-- (Two clusters through the axis: TAP 046.)
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('CV', 'V/v kế hoạch có sai sót số liệu',
       '{"signer": "dai", "recipients": ["000.00.00.G22", "001.32.32.H41"]}') AS odoc \gset
SELECT ioffice.attach(:odoc, 'ke_hoach.pdf', content) IS NOT NULL AS attached FROM pdf;
SELECT ioffice.act(:odoc, 'submit', 'dai');
SET ioffice.actor = 'dai';
SELECT ioffice.act(:odoc, 'quick_approve');
SET ioffice.actor = 'regress_thuy';
SELECT ioffice.act(:odoc, 'issue');
SELECT id AS ocopy, agency_id AS xa FROM ioffice.document WHERE source_document_id = :odoc \gset

-- the replacement, drafted as any document
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('CV', 'V/v kế hoạch (thay thế)',
       '{"signer": "dai", "recipients": ["001.32.32.H41", "000.00.00.G09"]}') AS ndoc \gset
SELECT ioffice.attach(:ndoc, 'ke_hoach_moi.pdf', content) IS NOT NULL AS attached FROM pdf;
-- who may name what it replaces: not its drafter, nor another agency's clerk
SELECT regress_error(format('SELECT ioffice.replace_issued(%s, %s, %L)', :odoc, :ndoc, 'Sai số liệu'), :odoc);
SET ioffice.actor = 'regress_xa_vt';
SELECT regress_error(format('SELECT ioffice.replace_issued(%s, %s, %L)', :odoc, :ndoc, 'Sai số liệu'), :odoc);
-- a reason; not itself; the old one issued; the new one not issued
SET ioffice.actor = 'regress_thuy';
SELECT regress_error(format('SELECT ioffice.replace_issued(%s, %s, %L)', :odoc, :ndoc, ' '), :odoc);
SELECT regress_error(format('SELECT ioffice.replace_issued(%s, %s, %L)', :odoc, :odoc, 'x'), :odoc);
SELECT regress_error(format('SELECT ioffice.replace_issued(%s, %s, %L)', :ndoc, :odoc, 'x'), :ndoc);
SELECT regress_error(format('SELECT ioffice.replace_issued(%s, %s, %L)', :odoc, :ocopy, 'x'), :ocopy);
SELECT regress_error(format('SELECT ioffice.replace_issued(%s, %s, %L)', 0, :ndoc, 'x'), :ndoc);
-- the clerk names it; another draft cannot replace the same document
SELECT ioffice.replace_issued(:odoc, :ndoc, 'Sai số liệu tại mục II');
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('CV', 'V/v bản thay thế thứ hai',
       '{"signer": "dai", "recipients": ["000.00.00.G22"]}') AS n2doc \gset
SET ioffice.actor = 'regress_thuy';
SELECT regexp_replace(regress_error(format('SELECT ioffice.replace_issued(%s, %s, %L)', :odoc, :n2doc, 'x'), :odoc),
                      'document [0-9]+ already', 'document <other> already');
-- not yet issued: the old document is in force
SELECT replaced_at IS NULL AS in_force FROM ioffice.document WHERE id = :odoc;
SET ioffice.actor = 'regress_luan';
SELECT ioffice.act(:ndoc, 'submit', 'dai');
SET ioffice.actor = 'dai';
SELECT ioffice.act(:ndoc, 'quick_approve');
SET ioffice.actor = 'regress_thuy';
SELECT ioffice.act(:ndoc, 'issue');
SELECT id AS ncopy FROM ioffice.document WHERE source_document_id = :ndoc \gset

-- issued: the old document is replaced and frozen, kept
RESET ioffice.actor;
SELECT replaced_at IS NOT NULL AS replaced, state FROM ioffice.document WHERE id = :odoc;
SELECT regress_error(format('UPDATE ioffice.document SET due_date = DATE %L WHERE id = %s',
                            '2030-01-01', :odoc), :odoc);
SET ioffice.actor = 'regress_thuy';
SELECT regress_error(format('SELECT ioffice.update_issued(%s, %L, %L)', :odoc,
                            '{"due_date": "2030-01-01"}', 'x'), :odoc);
SELECT regress_error(format('SELECT ioffice.replace_issued(%s, %s, %L)', :odoc, :n2doc, 'x'), :odoc);
-- the old document's package not sent yet is sent no more; the new one
-- goes to the old one's external recipient as well as to its own
RESET ioffice.actor;
SELECT document_id = :ndoc AS new_doc, recipient, kind, state, last_error
FROM ioffice.edxml_outgoing WHERE document_id IN (:odoc, :ndoc) ORDER BY document_id, recipient;
-- the package for G22 is a replacement (3) naming the old DocumentId, its
-- files included; for G09, whom the old one never reached, a new one (0)
SELECT o.recipient,
       (xpath('//e:Bussiness/e:BussinessDocType/text()', x, ns))[1]::text AS business,
       (xpath('//e:Bussiness/e:BussinessDocReason/text()', x, ns))[1]::text AS reason,
       (xpath('//e:ReplacementInfoList/e:ReplacementInfo/e:DocumentId/text()', x, ns))[1]::text
           = (SELECT identifier FROM ioffice.document WHERE id = :odoc) AS names_old,
       (xpath('//e:MessageHeader/e:DocumentId/text()', x, ns))[1]::text
           = (SELECT identifier FROM ioffice.document WHERE id = :ndoc) AS own_document_id,
       xpath_exists('//e:AttachmentEncoded/e:Attachment', x, ns) AS with_files
FROM ioffice.edxml_outgoing o,
     LATERAL (SELECT ioffice._edxml_package(o.document_id, o.recipient, NULL) AS x) p,
     (SELECT ARRAY[ARRAY['e', 'http://www.mic.gov.vn/TBT/QCVN_102_2016']] AS ns) n
WHERE o.document_id = :ndoc ORDER BY o.recipient;
-- the clerk's edxml_build() gives the same
SET ioffice.actor = 'regress_thuy';
SELECT (xpath('//e:Bussiness/e:BussinessDocType/text()', ioffice.edxml_build(:ndoc, '000.00.00.G22'),
              ARRAY[ARRAY['e', 'http://www.mic.gov.vn/TBT/QCVN_102_2016']]))[1]::text AS built;
-- the sender sees the replacement per recipient, and the packages
SELECT direction, replaced = :odoc AS the_old, party, reason, applied_at IS NOT NULL AS applied, answer
FROM ioffice.replacement_status WHERE document = :ndoc ORDER BY party;
SELECT party, code, package, delivery, description LIKE 'Văn bản thay thế văn bản %' AS says_replace
FROM ioffice.exchange_status WHERE document = :ndoc ORDER BY party;
-- the copy in this database: superseded by the new copy, kept, read-only
SET ioffice.actor = 'regress_xa_vt';
SELECT direction, replaced = :ocopy AS the_old_copy, party, reason, answer
FROM ioffice.replacement_status WHERE document = :ncopy;
SELECT d.id = :ocopy AS old_copy, d.replaced_at IS NOT NULL AS superseded
FROM ioffice.document d WHERE d.id IN (:ocopy, :ncopy) ORDER BY d.id;
SELECT regress_error(format('SELECT ioffice.act(%s, %L)', :ocopy, 'register'), :ocopy);
RESET ioffice.actor;
SELECT entity_id = :odoc AS old, action, detail->>'reason' AS reason
FROM ioffice.audit WHERE entity = 'document' AND entity_id IN (:odoc, :ndoc, :ocopy, :ncopy)
  AND action IN ('replaces', 'replaced', 'superseded', 'supersedes') ORDER BY id;

-- updating an issued document: who, what, refusals
SET ioffice.actor = 'regress_luan';
SELECT regress_error(format('SELECT ioffice.update_issued(%s, %L, %L)', :ndoc,
                            '{"due_date": "2030-01-01"}', 'Gia hạn'), :ndoc);
SET ioffice.actor = 'regress_thuy';
SELECT regress_error(format('SELECT ioffice.update_issued(%s, %L, %L)', :ndoc,
                            '{"abstract": "Trích yếu khác"}', 'Sửa'), :ndoc);
SELECT regress_error(format('SELECT ioffice.update_issued(%s, %L, %L)', :ndoc, '{}', 'Sửa'), :ndoc);
SELECT regress_error(format('SELECT ioffice.update_issued(%s, %L, %L)', :ndoc,
                            '{"due_date": "ngày mai"}', 'Sửa'), :ndoc);
SELECT regress_error(format('SELECT ioffice.update_issued(%s, %L, %L)', :ndoc,
                            '{"due_date": "2030-01-01"}', ''), :ndoc);
SELECT regress_error(format('SELECT ioffice.update_issued(%s, %L, %L)', :ndoc,
                            '{"add_recipients": ["001.32.32.H41"]}', 'Sửa'), :ndoc);
SELECT regress_error(format('SELECT ioffice.update_issued(%s, %L, %L)', :ndoc,
                            '{"add_recipients": ["000.00.00.G22"]}', 'Sửa'), :ndoc);
SELECT regress_error(format('SELECT ioffice.update_issued(%s, %L, %L)', :ndoc,
                            '{"remove_recipients": ["000.00.00.G10"]}', 'Sửa'), :ndoc);
SELECT regress_error(format('SELECT ioffice.update_issued(%s, %L, %L)', :ndoc,
                            '{"add_recipients": "000.00.00.G10"}', 'Sửa'), :ndoc);
SELECT regress_error(format('SELECT ioffice.update_issued(%s, %L, %L)', :n2doc,
                            '{"due_date": "2030-01-01"}', 'Sửa'), :n2doc);
-- its signer updates it: a due date, G10 added, G09 removed
SET ioffice.actor = 'dai';
SELECT ioffice.update_issued(:ndoc, '{"due_date": "2030-06-30", "add_recipients": ["000.00.00.G10"],
                                      "remove_recipients": ["000.00.00.G09"]}',
                             'Bổ sung nơi nhận, gia hạn') AS upd \gset
SELECT due_date = DATE '2030-06-30' AS new_due FROM ioffice.document WHERE id = :ndoc;
-- G09 removed is removed: not again
SET ioffice.actor = 'regress_thuy';
SELECT regress_error(format('SELECT ioffice.update_issued(%s, %L, %L)', :ndoc,
                            '{"remove_recipients": ["000.00.00.G09"]}', 'Sửa'), :ndoc);
SELECT regress_error(format('SELECT ioffice.update_issued(%s, %L, %L)', :ndoc,
                            '{"due_date": "2030-06-30"}', 'Sửa'), :ndoc);
-- G10 gets the document, G22 and G09 an update; G09's document package
-- not sent yet is sent no more
RESET ioffice.actor;
SELECT recipient, kind, state, last_error, description, update_id = :upd AS this_update
FROM ioffice.edxml_outgoing WHERE document_id = :ndoc ORDER BY kind, recipient;
-- the update package: BussinessDocType 2, DocumentInfo and DocumentReceiver
-- 1, the receivers, the new due date, no attachment
SELECT (xpath('//e:Bussiness/e:BussinessDocType/text()', x, ns))[1]::text AS business,
       (xpath('//e:Bussiness/e:BussinessDocReason/text()', x, ns))[1]::text AS reason,
       (xpath('//e:BussinessDocumentInfo/e:DocumentInfo/text()', x, ns))[1]::text AS document_info,
       (xpath('//e:BussinessDocumentInfo/e:DocumentReceiver/text()', x, ns))[1]::text AS document_receiver,
       array_to_string(xpath('//e:ReceiverList/e:Receiver/e:ReceiverType/text()', x, ns)::text[], ',') AS types,
       array_to_string(xpath('//e:ReceiverList/e:Receiver/e:OrganId/text()', x, ns)::text[], ',') AS organs,
       (xpath('//e:MessageHeader/e:DueDate/text()', x, ns))[1]::text = '2030/06/30' AS new_due,
       NOT xpath_exists('//e:AttachmentEncoded/e:Attachment', x, ns) AS no_attachment
FROM (SELECT ioffice._edxml_package(o.document_id, o.recipient, NULL, 2, o.description, o.update_id) AS x
        FROM ioffice.edxml_outgoing o WHERE o.update_id = :upd AND o.recipient = '000.00.00.G22') p,
     (SELECT ARRAY[ARRAY['e', 'http://www.mic.gov.vn/TBT/QCVN_102_2016']] AS ns) n;
-- the copy in this database: the due date applied, the old value kept
SET ioffice.actor = 'regress_xa_vt';
SELECT direction, reason, changes->'due_date'->>'new' = '2030-06-30' AS new_kept,
       changes->'due_date' ? 'old' AS old_kept, answer
FROM ioffice.update_status WHERE document = :ncopy;
-- the sender sees it per recipient; a 15 back from G22 is its answer
SET ioffice.actor = 'regress_thuy';
SELECT party, reason, changes->'receivers' AS receivers, answer, delivery
FROM ioffice.update_status WHERE document = :ndoc ORDER BY party;
RESET ioffice.actor;
INSERT INTO ioffice.edxml_status (document_id, party_organ_id, edxml_document_id, direction, code,
                                  description)
SELECT :ndoc, '000.00.00.G22', identifier, 'received', '15', 'Đã cập nhật'
FROM ioffice.document WHERE id = :ndoc;
SET ioffice.actor = 'regress_thuy';
SELECT party, answer, answer_reason FROM ioffice.update_status WHERE document = :ndoc ORDER BY party;
SELECT party, code, package FROM ioffice.exchange_status
WHERE document = :ndoc AND package = 'update' ORDER BY party;
RESET ioffice.actor;
SELECT action, detail->>'recipient' AS recipient FROM ioffice.audit
WHERE entity = 'document' AND entity_id = :ndoc AND action LIKE 'update%' ORDER BY id;

-- receiving from the axis (the helper's reading, signature valid): a
-- document of 000.00.00.G22 filed, then its update, then its replacement
CREATE TEMP TABLE g22 AS
SELECT jsonb_build_object(
         'kind', 'document',
         'from', jsonb_build_object('organ_id', '000.00.00.G22', 'organ_name', 'Văn phòng Chính phủ'),
         'to', jsonb_build_array(jsonb_build_object('organ_id', '001.32.32.H41')),
         'document_id', '000.00.00.G22,2026/01/05,15/VPCP-TH', 'code_number', '15',
         'code_notation', 'VPCP-TH', 'promulgation_date', '2026/01/05',
         'subject', 'V/v báo cáo tình hình', 'due_date', '2026/02/01', 'bussiness_doc_type', '0',
         'receivers', '[]'::jsonb, 'replacements', '[]'::jsonb,
         'attachments', jsonb_build_array(jsonb_build_object('name', 'bao_cao.pdf',
                                                             'data', encode(content, 'base64'))),
         'signature', jsonb_build_object('status', 'valid', 'subject', 'CN=regress')) AS p
FROM pdf;
-- the PDF taken as validly signed (regress has no worker to sign it; the
-- check itself: edxml_axis, TAP 034), until the trails are checked
ALTER FUNCTION ioffice._pdf_signatures(bytea) RENAME TO _pdf_signatures_unstubbed;
CREATE FUNCTION ioffice._pdf_signatures(content bytea)
    RETURNS TABLE (signer text, kind text, signed_at timestamptz, subject text, valid boolean, reason text,
                   revision int, after_signing text, level text, timestamped_at timestamptz)
LANGUAGE sql AS $$
    SELECT NULL::text, NULL::text, NULL::timestamptz, 'CN=regress', true, NULL::text, 1, 'none',
           'B-B', NULL::timestamptz $$;
SELECT ioffice._edxml_file(p, 'x', :xa, NULL) AS g1 FROM g22 \gset
-- its update: a new due date, G10 added; twice: applied once
CREATE TEMP TABLE g22_update AS
SELECT p || '{"bussiness_doc_type": "2", "bussiness_doc_reason": "Gia hạn báo cáo",
              "document_info": "1", "due_date": "2026/03/01", "document_receiver": "1",
              "receivers": [{"type": "1", "organ_id": "000.00.00.G10"}], "attachments": []}' AS p
FROM g22;
SELECT ioffice._edxml_file(p, 'x', :xa, NULL) = :g1 AS first FROM g22_update;
SELECT ioffice._edxml_file(p, 'x', :xa, NULL) = :g1 AS again FROM g22_update;
SELECT due_date = DATE '2026-03-01' AS new_due FROM ioffice.document WHERE id = :g1;
SET ioffice.actor = 'regress_xa_vt';
SELECT direction, party, reason, changes->'due_date'->>'old' = '2026-02-01' AS old_kept,
       changes->'due_date'->>'new' = '2026-03-01' AS new_kept, changes->'receivers' AS receivers,
       answer
FROM ioffice.update_status WHERE document = :g1;
RESET ioffice.actor;
SELECT direction, code, description FROM ioffice.edxml_status WHERE document_id = :g1 ORDER BY id;
-- an update of a document never received: 16 at once, once
SELECT ioffice._edxml_file(jsonb_set(p, '{document_id}', '"000.00.00.G22,2026/01/06,16/VPCP-TH"'),
                           'x', :xa, NULL) IS NULL AS no_copy FROM g22_update;
SELECT ioffice._edxml_file(jsonb_set(p, '{document_id}', '"000.00.00.G22,2026/01/06,16/VPCP-TH"'),
                           'x', :xa, NULL) IS NULL AS no_copy_again FROM g22_update;
SELECT recipient, kind, code, description, document_id IS NULL AS no_document
FROM ioffice.edxml_outgoing WHERE edxml_document_id = '000.00.00.G22,2026/01/06,16/VPCP-TH';

-- its replacement: filed as a new document, the copy superseded, 15;
-- twice: filed once
CREATE TEMP TABLE g22_replace AS
SELECT p || '{"bussiness_doc_type": "3", "bussiness_doc_reason": "Thay thế do sai thể thức",
              "document_id": "000.00.00.G22,2026/01/10,20/VPCP-TH", "code_number": "20",
              "promulgation_date": "2026/01/10",
              "replacements": [{"document_id": "000.00.00.G22,2026/01/05,15/VPCP-TH"}]}' AS p
FROM g22;
SELECT ioffice._edxml_file(p, 'x', :xa, NULL) AS g2 FROM g22_replace \gset
SELECT ioffice._edxml_file(p, 'x', :xa, NULL) = :g2 AS again FROM g22_replace;
SELECT d.id = :g1 AS old_copy, d.state, d.replaced_at IS NOT NULL AS superseded,
       d.sender_symbol, (SELECT count(*) FROM ioffice.file f WHERE f.document_id = d.id
                         AND octet_length(f.content) > 0) AS files
FROM ioffice.document d WHERE d.id IN (:g1, :g2) ORDER BY d.id;
SELECT direction, code, description FROM ioffice.edxml_status WHERE document_id = :g2 ORDER BY id;
-- the clerk lists superseded copies; the old copy is read-only, its
-- history visible
SET ioffice.actor = 'regress_xa_vt';
SELECT direction, replaced = :g1 AS the_old_copy, party, replaced_document_id, reason, answer
FROM ioffice.replacement_status WHERE document = :g2;
SELECT regress_error(format('SELECT ioffice.act(%s, %L)', :g1, 'register'), :g1);
RESET ioffice.actor;
SELECT action FROM ioffice.audit WHERE entity = 'document' AND entity_id = :g1 ORDER BY id;
-- an update of the superseded copy: 16, the reason
SELECT ioffice._edxml_file(p || '{"bussiness_doc_reason": "Gia hạn lần hai", "due_date": "2026/04/01"}',
                           'x', :xa, NULL) = :g1 AS the_old_copy FROM g22_update;
SELECT code, description FROM ioffice.edxml_status
WHERE document_id = :g1 AND direction = 'sent' ORDER BY id DESC LIMIT 1;
SELECT due_date = DATE '2026-03-01' AS unchanged FROM ioffice.document WHERE id = :g1;
-- a replacement naming a document never received: filed, answered 16
SELECT ioffice._edxml_file(p || '{"document_id": "000.00.00.G22,2026/01/11,21/VPCP-TH",
                                  "code_number": "21",
                                  "replacements": [{"document_id": "000.00.00.G22,2025/12/01,99/VPCP-TH"}]}',
                           'x', :xa, NULL) AS g3 FROM g22_replace \gset
SELECT direction, code, description FROM ioffice.edxml_status WHERE document_id = :g3 ORDER BY id;
SET ioffice.actor = 'regress_xa_vt';
SELECT replaced IS NULL AS nothing_replaced, answer, answer_reason
FROM ioffice.replacement_status WHERE document = :g3;
RESET ioffice.actor;
-- a replacement that names nothing is refused, named
SELECT regress_error(format('SELECT ioffice._edxml_file(%L::jsonb, %L, %s, NULL)',
                            p || '{"document_id": "x", "replacements": []}', 'x', :xa), 0)
FROM g22_replace;
DROP FUNCTION ioffice._pdf_signatures(bytea);
ALTER FUNCTION ioffice._pdf_signatures_unstubbed(bytea) RENAME TO _pdf_signatures;
-- the trails are intact
SELECT count(*) AS audit_problems
FROM unnest(ARRAY[:odoc, :ndoc, :ocopy, :ncopy, :g1, :g2, :g3]) x,
     LATERAL ioffice.audit_verify('document', x) v;
