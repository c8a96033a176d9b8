-- Recall leftovers (issue 14): a file destroyed by an accepted recall is
-- refused (55000, whose recall and when in the detail) by every path that
-- hands out bytes: file_content, file_copy, a case file PDF made before;
-- certified copies of a recalled received document are refused while the
-- recall waits and destroyed with it once accepted (Decree 30 art. 18.4b,
-- 26); the sender's recall_status for a recipient in this database.
SET client_min_messages = warning;
CREATE FUNCTION public.regress_er_detail(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_detail text;
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN others THEN
    GET STACKED DIAGNOSTICS v_detail = PG_EXCEPTION_DETAIL;
    RETURN v_detail;
END
$$;
SELECT extract(year FROM now() AT TIME ZONE ioffice.timezone())::int AS y \gset
SELECT id AS xa FROM ioffice.unit WHERE code = '001.32.32.H41' \gset

-- a document issued to the commune in this database, registered there
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('CV', 'V/v bản sao của văn bản bị thu hồi',
       '{"signer": "dai", "recipients": ["001.32.32.H41"]}') AS edoc \gset
SELECT ioffice.attach(:edoc, 'ban_sao.pdf', content) IS NOT NULL AS attached FROM pdf;
SELECT ioffice.act(:edoc, 'submit', 'dai');
SET ioffice.actor = 'dai';
SELECT ioffice.act(:edoc, 'quick_approve');
SET ioffice.actor = 'regress_thuy';
SELECT ioffice.act(:edoc, 'issue');
RESET ioffice.actor;
SELECT id AS ecopy FROM ioffice.document WHERE source_document_id = :edoc \gset
SELECT id AS efile FROM ioffice.file WHERE document_id = :ecopy \gset
SET ioffice.actor = 'regress_xa_vt';
SELECT ioffice.act(:ecopy, 'register');
-- its clerk makes a certified copy (sao y), and a copy of that (sao lục),
-- and files it into a case file whose PDF is made (the worker's answer
-- stood in for)
SELECT ioffice.copy_document(:ecopy, 'SY') AS sy \gset
SELECT ioffice.copy_document(:sy, 'SL') AS sl \gset
SELECT ioffice.add_case_file(:xa, :y, 'ER.01', 'Hồ sơ văn bản thu hồi', '10', 'regress_xa_vt') AS cf \gset
SELECT ioffice.file_into(:cf, :ecopy);
SELECT ioffice.case_file_pdf(:cf) AS job \gset
RESET ioffice.actor;
SELECT ioffice._case_file_pdf_done(:job, '\x255044462d'::bytea, 1, 2, NULL);
SELECT count(*) AS copy_files, bool_and(octet_length(content) > 0) AS copy_bytes
FROM ioffice.file WHERE document_id IN (:sy, :sl);

-- the sender recalls it: while the recall waits, no copy is made of the
-- received document nor of its copies
SET ioffice.actor = 'regress_thuy';
SELECT ioffice.recall(:edoc, 'Văn bản ban hành nhầm');
SET ioffice.actor = 'regress_xa_vt';
SELECT regress_error(format('SELECT ioffice.copy_document(%s, %L)', :ecopy, 'SY'), :ecopy) AS copy_pending;
SELECT regress_error(format('SELECT ioffice.copy_document(%s, %L)', :sy, 'SL'), :sy) AS copy_of_copy_pending;
-- not yet accepted: the bytes are still given
SELECT octet_length(ioffice.file_content(:efile)) > 0 AS given_before;
SELECT count(*) AS verified_before FROM ioffice.verify(:efile);

-- accepted: the received copy and both certified copies are destroyed,
-- their records kept
SELECT ioffice.answer_recall(:ecopy, true);
RESET ioffice.actor;
SELECT d.id = :ecopy AS received, d.recalled_at IS NOT NULL AS recalled,
       bool_and(octet_length(f.content) = 0 AND f.erased_at IS NOT NULL AND f.size > 0) AS bytes_gone_record_kept
FROM ioffice.document d JOIN ioffice.file f ON f.document_id = d.id
WHERE d.id IN (:ecopy, :sy, :sl) GROUP BY d.id ORDER BY d.id;
SELECT bool_and(d.number IS NOT NULL AND d.copy_kind IS NOT NULL) AS copies_numbered_kept
FROM ioffice.document d WHERE d.id IN (:sy, :sl);
SELECT count(*) FILTER (WHERE status = 'pending') AS seals_pending,
       count(*) FILTER (WHERE status = 'failed' AND reason = 'the copied document was recalled') AS seals_dropped
FROM ioffice.signature WHERE document_id IN (:sy, :sl);
SELECT count(*) AS copies_destroyed_on_trail FROM ioffice.audit
WHERE entity = 'document' AND entity_id IN (:sy, :sl) AND action = 'recall_destroy_copy';

-- every path that hands out bytes refuses them, saying why
SET ioffice.actor = 'regress_xa_vt';
SELECT regress_error(format('SELECT ioffice.file_content(%s)', :efile), :efile) AS file_content;
SELECT regress_error(format('SELECT ioffice.file_copy(%s)', :efile), :efile) AS file_copy;
-- verify() too: an empty file has no signatures to tell of (not "none")
SELECT regress_error(format('SELECT * FROM ioffice.verify(%s)', :efile), :efile) AS verify;
SELECT d LIKE 'Its sender, UBND huyện Sốp Cộp, recalled it (reason: Văn bản ban hành nhầm); % accepted the recall, and the file''s bytes were destroyed at %' AS verify_detail_says_recall
FROM regress_er_detail(format('SELECT * FROM ioffice.verify(%s)', :efile)) d;
SELECT d LIKE 'Its sender, UBND huyện Sốp Cộp, recalled it (reason: Văn bản ban hành nhầm); Lò Văn Xã accepted the recall, and the file''s bytes were destroyed at %' AS detail_says_whose_and_when
FROM regress_er_detail(format('SELECT ioffice.file_content(%s)', :efile)) d;
SELECT regress_error(format('SELECT ioffice.file_content(%s)', f.id), f.id) AS copy_content,
       regress_er_detail(format('SELECT ioffice.file_content(%s)', f.id))
         LIKE 'This is a copy of a received document: its sender, UBND huyện Sốp Cộp, recalled it%' AS detail_says_copy
FROM ioffice.file f WHERE f.document_id IN (:sy, :sl) ORDER BY f.id;
SELECT regress_error(format('SELECT ioffice.case_file_pdf_result(%s)', :job), :cf) AS case_file_pdf;
SELECT regress_error(format('SELECT ioffice.copy_document(%s, %L)', :ecopy, 'SY'), :ecopy) AS copy_recalled;
-- no download was logged for what was refused: only the one before
RESET ioffice.actor;
SELECT count(*) AS downloads_logged FROM ioffice.access_log
WHERE action IN ('download', 'copy')
  AND file_id IN (SELECT id FROM ioffice.file WHERE document_id IN (:ecopy, :sy, :sl));

-- the sender's view of a recipient in this database: its agency, code,
-- the answer, who answered and when, as an external one's 15 shows
SET ioffice.actor = 'regress_thuy';
SELECT direction, recipient, party, copy = :ecopy AS its_copy, reason, answer,
       answer_reason, answered_at IS NOT NULL AS answered_when
FROM ioffice.recall_status WHERE document = :edoc;
-- (no package went through the axis: exchange_status has nothing for it)
SELECT count(*) AS axis_rows FROM ioffice.exchange_status WHERE document = :edoc;
RESET ioffice.actor;

-- import_issued with recipients: the external agency's package queued to
-- the axis as an issue queues it (once, also when imported again), the
-- agency of this database served by delivery, the clerk sees the send
SET ioffice.actor = 'regress_thuy';
CREATE TEMP TABLE er_import AS
SELECT jsonb_build_object(
    'external_id', 'igate-exchange-rest-1',
    'agency_code', '000.00.32.H41',
    'doc_type', 'KH',
    'abstract', 'V/v kết quả gửi qua trục liên thông',
    'signer', 'loi',
    'recipients', jsonb_build_array('000.00.00.G22', '001.32.32.H41', 'Lưu: VT'),
    'files', jsonb_build_array(jsonb_build_object('name', 'KQ_signed.pdf',
                                                  'content', encode(content, 'base64'))),
    'trail', jsonb_build_object('name', 'QTXL.docx',
                                'content', encode(test_zip('word/document.xml'), 'base64'))) AS p
FROM pdf;
SELECT document AS idoc FROM ioffice.import_issued((SELECT p FROM er_import)) \gset
SELECT document = :idoc AS same_document FROM ioffice.import_issued((SELECT p FROM er_import));
RESET ioffice.actor;
SELECT d.state, jsonb_array_length(d.recipients) AS recipients,
       (SELECT count(*) FROM ioffice.document c WHERE c.source_document_id = d.id) AS delivered_here
FROM ioffice.document d WHERE d.id = :idoc;
SELECT recipient, kind, state FROM ioffice.edxml_outgoing WHERE document_id = :idoc;
SET ioffice.actor = 'regress_thuy';
SELECT party, direction, code, package, delivery FROM ioffice.exchange_status WHERE document = :idoc;
-- recipients malformed: refused, named
SELECT regress_error(format('SELECT * FROM ioffice.import_issued(%L::jsonb)',
                            p || '{"external_id": "igate-exchange-rest-2", "recipients": "000.00.00.G22"}'), 0)
         AS not_an_array,
       regress_error(format('SELECT * FROM ioffice.import_issued(%L::jsonb)',
                            p || '{"external_id": "igate-exchange-rest-3", "recipients": [""]}'), 0)
         AS empty_recipient
FROM er_import;
RESET ioffice.actor;

-- packages from the axis refused: a status package is never answered
-- (no 02 for a status: two systems would answer each other's refusals);
-- each refusal is recorded once and shown to the axis agency's clerks
-- (edxml_axis.sql's refusals were recorded; set aside for what follows)
SELECT count(*) FILTER (WHERE kind = 'status' AND NOT answered) > 0
         AND count(*) FILTER (WHERE kind = 'document' AND answered) > 0 AS earlier_refusals_recorded
FROM ioffice.edxml_refused;
DELETE FROM ioffice.edxml_refused;
INSERT INTO ioffice.exchange_axis (agency_id, transport, url, system_id, secret)
SELECT u.id, 'vxp', 'http://127.0.0.1:9/', '000.00.32.H41', 'regress-secret-0123456789'
FROM ioffice.unit u WHERE u.code = '000.00.32.H41';
SELECT id AS axis FROM ioffice.exchange_axis \gset
-- an unsigned status package (03) from the commune for the imported document
INSERT INTO ioffice.edxml_outgoing (agency_id, recipient, kind, code, description, edxml_document_id)
SELECT :xa, '000.00.32.H41', 'status', '03', 'regress unsigned', d.identifier
FROM ioffice.document d WHERE d.id = :idoc RETURNING id AS unsigned \gset
SELECT count(*) AS answers_before FROM ioffice.edxml_outgoing WHERE code = '02' \gset
-- built once: the package carries a timestamp, and the axis lists the same bytes again
SELECT ioffice._edxml_status_package(:unsigned)::text AS spkg \gset
SELECT r->>'result' AS result, r->>'reason' AS reason
FROM (SELECT ioffice._edxml_axis_file(:'spkg', :axis) AS r) x;
-- listed again by the axis: refused again, recorded once
SELECT ioffice._edxml_axis_file(:'spkg', :axis)->>'result' AS again;
-- not edXML, and an unsigned document package addressed to nobody here
SELECT ioffice._edxml_axis_file('<edXML><oops>', :axis)->>'result' AS malformed;
SELECT ioffice._edxml_axis_file(ioffice._edxml_package(:idoc, '000.00.00.G22', NULL)::text, :axis)->>'result'
         AS document_refused;
SELECT count(*) - :answers_before AS answers_02_queued FROM ioffice.edxml_outgoing WHERE code = '02';
SET ioffice.actor = 'regress_thuy';
SELECT agency, kind, sender, edxml_document_id = (SELECT identifier FROM ioffice.document WHERE id = :idoc)
         AS names_the_document,
       status_code, CASE WHEN kind IS NULL THEN split_part(reason, ':', 1) ELSE reason END AS reason,
       answered
FROM ioffice.exchange_refused ORDER BY kind NULLS FIRST;
-- another agency's clerk sees none of them
SET ioffice.actor = 'regress_xa_vt';
SELECT count(*) AS seen_by_another_agency FROM ioffice.exchange_refused;
RESET ioffice.actor;
DELETE FROM ioffice.edxml_outgoing WHERE id = :unsigned OR (code = '02' AND document_id IS NULL
    AND edxml_document_id = (SELECT identifier FROM ioffice.document WHERE id = :idoc));
DELETE FROM ioffice.exchange_axis WHERE id = :axis;
DROP FUNCTION regress_er_detail(text);
