-- Recall leftovers (issue 14): a file destroyed by an accepted recall is
-- refused (55000, whose recall and when in the detail) by every path that
-- hands out bytes: file_content, file_copy, a case file PDF made before.
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
-- its clerk files it into a case file whose PDF is made (the worker's
-- answer stood in for)
SELECT ioffice.add_case_file(:xa, :y, 'ER.01', 'Hồ sơ văn bản thu hồi', '10', 'regress_xa_vt') AS cf \gset
SELECT ioffice.file_into(:cf, :ecopy);
SELECT ioffice.case_file_pdf(:cf) AS job \gset
RESET ioffice.actor;
SELECT ioffice._case_file_pdf_done(:job, '\x255044462d'::bytea, 1, 2, NULL);

-- the sender recalls it
SET ioffice.actor = 'regress_thuy';
SELECT ioffice.recall(:edoc, 'Văn bản ban hành nhầm');
SET ioffice.actor = 'regress_xa_vt';
-- not yet accepted: the bytes are still given
SELECT octet_length(ioffice.file_content(:efile)) > 0 AS given_before;

-- accepted: the received copy is destroyed
SELECT ioffice.answer_recall(:ecopy, true);

-- every path that hands out bytes refuses them, saying why
SET ioffice.actor = 'regress_xa_vt';
SELECT regress_error(format('SELECT ioffice.file_content(%s)', :efile), :efile) AS file_content;
SELECT regress_error(format('SELECT ioffice.file_copy(%s)', :efile), :efile) AS file_copy;
SELECT d LIKE 'Its sender, UBND huyện Sốp Cộp, recalled it (reason: Văn bản ban hành nhầm); Lò Văn Xã accepted the recall, and the file''s bytes were destroyed at %' AS detail_says_whose_and_when
FROM regress_er_detail(format('SELECT ioffice.file_content(%s)', :efile)) d;
SELECT regress_error(format('SELECT ioffice.case_file_pdf_result(%s)', :job), :cf) AS case_file_pdf;
-- no download was logged for what was refused: only the one before
RESET ioffice.actor;
SELECT count(*) AS downloads_logged FROM ioffice.access_log
WHERE action IN ('download', 'copy')
  AND file_id IN (SELECT id FROM ioffice.file WHERE document_id IN (:ecopy));
DROP FUNCTION regress_er_detail(text);
