-- Once a leader has approved, the document's files are what the clerk seals
-- and issues: no change in awaiting_issue (nor once issued), whether through
-- attach/replace_file/remove_file, the engine, or a role that writes table
-- file itself; and issue refuses a document whose requested signature is not
-- on every current file.  No signing worker runs here: its work is done by
-- hand, as in the dossier test.
SET client_min_messages = warning;

-- what a statement answers: ok, or its SQLSTATE, message and hint, with the
-- ids of documents and files and the codes of dossiers left out
CREATE FUNCTION pg_temp.refusal(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_state text;
    v_message text;
    v_hint text;
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT,
                            v_hint = PG_EXCEPTION_HINT;
    RETURN v_state || ': ' || regexp_replace(v_message, '(document|file|dossier) [0-9A-Z.-]+', '\1 N', 'g')
           || coalesce(' (' || nullif(v_hint, '') || ')', '');
END
$$;

-- ---------------------------------------------------------------------------
-- Reviewing: the holder may still change a signed file; the old signature no
-- longer counts
-- ---------------------------------------------------------------------------
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('QĐ', 'Quyết định thử khóa tệp sau khi duyệt') AS doc \gset
SELECT ioffice.attach(:doc, 'quyet_dinh.pdf', content) AS draft_file FROM pdf \gset
SELECT ioffice.act(:doc, 'submit', 'dai', 'Trình ký', '{"request_signature": true}');
SET ioffice.actor = 'dai';
SELECT ioffice.act(:doc, 'sign');
RESET ioffice.actor;
UPDATE ioffice.signature SET status = 'done', signed_at = now()
WHERE document_id = :doc AND status = 'pending';
SET ioffice.actor = 'dai';
SELECT ioffice.replace_file(:draft_file, 'quyet_dinh_sua.pdf', content) AS file FROM pdf \gset
SELECT pg_temp.refusal(format($$SELECT ioffice.act(%s, 'approve', 'regress_thuy')$$, :doc)) AS approve_unsigned;
SELECT ioffice.act(:doc, 'sign');
RESET ioffice.actor;
UPDATE ioffice.signature SET status = 'done', signed_at = now()
WHERE document_id = :doc AND status = 'pending';
SET ioffice.actor = 'dai';
SELECT ioffice.act(:doc, 'approve', 'regress_thuy', 'Đề nghị phát hành');

-- ---------------------------------------------------------------------------
-- Awaiting issue: the clerk holding it cannot swap, add or remove a file,
-- nor can anyone else
-- ---------------------------------------------------------------------------
SET ioffice.actor = 'regress_thuy';
SELECT pg_temp.refusal(format($$SELECT ioffice.replace_file(%s, 'quyet_dinh_khac.pdf',
                                  convert_to('%%PDF-1.4 nội dung khác', 'UTF8'))$$, :file)) AS clerk_replaces;
SELECT pg_temp.refusal(format($$SELECT ioffice.attach(%s, 'phu_luc.pdf', content) FROM pdf$$, :doc)) AS clerk_attaches;
SELECT pg_temp.refusal(format($$SELECT ioffice.remove_file(%s)$$, :file)) AS clerk_removes;
SET ioffice.actor = 'regress_luan';
SELECT pg_temp.refusal(format($$SELECT ioffice.attach(%s, 'phu_luc.pdf', content) FROM pdf$$, :doc)) AS drafter_attaches;
SET ioffice.actor = 'dai';
SELECT pg_temp.refusal(format($$SELECT ioffice.replace_file(%s, 'quyet_dinh_khac.pdf', content) FROM pdf$$, :file)) AS leader_replaces;

-- nor a role that may write table file directly (here the owner)
RESET ioffice.actor;
SELECT pg_temp.refusal(format($$INSERT INTO ioffice.file (document_id, name, kind, size, sha256, content, uploaded_by)
    SELECT %s, 'chen.pdf', 'pdf', length(content), sha256(content), content,
           (SELECT id FROM ioffice.person WHERE login = 'regress_thuy') FROM pdf$$, :doc)) AS direct_insert;
SELECT pg_temp.refusal(format($$UPDATE ioffice.file SET superseded_at = now() WHERE id = %s$$, :file)) AS direct_supersede;
SELECT pg_temp.refusal(format($$UPDATE ioffice.file SET name = 'doi_ten.pdf' WHERE id = %s$$, :file)) AS direct_rename;
SELECT pg_temp.refusal(format($$DELETE FROM ioffice.file WHERE id = %s$$, :file)) AS direct_delete;
SELECT pg_temp.refusal('TRUNCATE ioffice.file, ioffice.signature') AS direct_truncate;
SELECT count(*) AS current_files, bool_and(id = :file) AS the_approved_one
FROM ioffice.file WHERE document_id = :doc AND superseded_at IS NULL AND removed_at IS NULL;

-- the way out the hint gives: the clerk returns it; the drafter may change
-- the files again, and it goes back to the leader
SET ioffice.actor = 'regress_thuy';
SELECT ioffice.act(:doc, 'return', NULL, 'Cần sửa trước khi phát hành');
SET ioffice.actor = 'regress_luan';
SELECT ioffice.replace_file(:file, 'quyet_dinh_v3.pdf', content) AS file FROM pdf \gset
SELECT ioffice.act(:doc, 'submit', 'dai');
SET ioffice.actor = 'dai';
SELECT pg_temp.refusal(format($$SELECT ioffice.act(%s, 'approve', 'regress_thuy')$$, :doc)) AS approve_new_version_unsigned;
SELECT ioffice.act(:doc, 'sign');
RESET ioffice.actor;
UPDATE ioffice.signature SET status = 'done', signed_at = now()
WHERE document_id = :doc AND status = 'pending';
SET ioffice.actor = 'dai';
SELECT ioffice.act(:doc, 'approve', 'regress_thuy');

-- ---------------------------------------------------------------------------
-- Issue: the requested signature must be on every current file.  A file that
-- came in past every check (a superuser with the triggers off) is not sealed.
-- ---------------------------------------------------------------------------
RESET ioffice.actor;
SET session_replication_role = replica;
INSERT INTO ioffice.file (document_id, name, kind, size, sha256, content, uploaded_by)
SELECT :doc, 'chen.pdf', 'pdf', length(content), sha256(content), content,
       (SELECT id FROM ioffice.person WHERE login = 'regress_thuy') FROM pdf
RETURNING id AS slipped \gset
RESET session_replication_role;
SET ioffice.actor = 'regress_thuy';
SELECT pg_temp.refusal(format($$SELECT ioffice.act(%s, 'issue')$$, :doc)) AS issue_unsigned_file;
SELECT state, number IS NULL AS no_number,
       (SELECT count(*) FROM ioffice.signature s
         WHERE s.document_id = d.id AND s.kind = 'organisation') AS seals
FROM ioffice.document d WHERE id = :doc;
RESET ioffice.actor;
SET session_replication_role = replica;
UPDATE ioffice.file SET removed_at = now() WHERE id = :slipped;
RESET session_replication_role;
SET ioffice.actor = 'regress_thuy';
SELECT ioffice.act(:doc, 'issue');
-- the seal goes on the file the leader signed, and on nothing else
SELECT f.id = :file AS signed_file, string_agg(s.kind || ':' || s.status, ', ' ORDER BY s.id) AS signatures
FROM ioffice.file f JOIN ioffice.signature s ON s.file_id = f.id
WHERE f.document_id = :doc AND f.superseded_at IS NULL AND f.removed_at IS NULL
GROUP BY f.id ORDER BY f.id;
SELECT count(*) AS slipped_sealed FROM ioffice.signature WHERE file_id = :slipped;

-- issued: final, the files never change again
SELECT pg_temp.refusal(format($$SELECT ioffice.attach(%s, 'phu_luc.pdf', content) FROM pdf$$, :doc)) AS attach_issued;
RESET ioffice.actor;
SELECT pg_temp.refusal(format($$UPDATE ioffice.file SET removed_at = now() WHERE id = %s$$, :file)) AS direct_remove_issued;

-- ---------------------------------------------------------------------------
-- A file's bytes never change, whatever the state: a signature names the
-- file, so other bytes under its id would carry it
-- ---------------------------------------------------------------------------
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('CV', 'Công văn thử nội dung tệp') AS draft \gset
SELECT ioffice.attach(:draft, 'cong_van.pdf', content) AS draft_file FROM pdf \gset
RESET ioffice.actor;
SELECT pg_temp.refusal(format($$UPDATE ioffice.file SET content = convert_to('%%PDF-1.4 sửa lén', 'UTF8')
                                 WHERE id = %s$$, :draft_file)) AS new_bytes;
SELECT pg_temp.refusal(format($$UPDATE ioffice.file SET sha256 = sha256('x'), size = 1 WHERE id = %s$$,
                              :draft_file)) AS new_hash;
SELECT pg_temp.refusal(format($$UPDATE ioffice.file SET document_id = %s WHERE id = %s$$,
                              :doc, :draft_file)) AS other_document;
-- the same bytes written again, or another name, may
SELECT pg_temp.refusal(format($$UPDATE ioffice.file SET content = (SELECT content FROM pdf),
                                 name = 'cong_van_1.pdf' WHERE id = %s$$, :draft_file)) AS same_bytes;
SELECT name FROM ioffice.file WHERE id = :draft_file;

-- ---------------------------------------------------------------------------
-- A dossier's result: the leader's signature must be on every current file of
-- the result before the clerk seals and issues it
-- ---------------------------------------------------------------------------
SET ioffice.actor = 'tam';
SELECT ioffice.receive_dossier('1.000003.000.00.00.H41', 'Thủ tục thử khóa tệp', '{"name": "C"}', 5) AS code \gset
SELECT ioffice.dossier_act(:'code', 'transfer', 'minhtuan');
SET ioffice.actor = 'minhtuan';
SELECT ioffice.dossier_act(:'code', 'assign', 'chauanh');
SET ioffice.actor = 'chauanh';
SELECT ioffice.dossier_attach(:'code', 'ket_qua.pdf', content) AS opinion FROM pdf \gset
SELECT ioffice.dossier_act(:'code', 'propose', 'loi');
SET ioffice.actor = 'loi';
SELECT ioffice.dossier_act(:'code', 'sign', 'regress_thuy', NULL, format('{"result_file": %s}', :opinion)::jsonb);
SELECT result_document_id AS result FROM ioffice.dossier WHERE code = :'code' \gset
RESET ioffice.actor;
UPDATE ioffice.signature SET status = 'done', signed_at = now() WHERE document_id = :result;
-- a file the leader never signed, slipped in by hand
INSERT INTO ioffice.file (document_id, name, kind, size, sha256, content, uploaded_by)
SELECT :result, 'chen.pdf', 'pdf', length(content), sha256(content), content,
       (SELECT id FROM ioffice.person WHERE login = 'regress_thuy') FROM pdf
RETURNING id AS slipped \gset
SET ioffice.actor = 'regress_thuy';
SELECT pg_temp.refusal(format($$SELECT ioffice.dossier_act(%L, 'issue')$$, :'code')) AS issue_unsigned_result;
SELECT state, number IS NULL AS no_number FROM ioffice.document WHERE id = :result;
RESET ioffice.actor;
UPDATE ioffice.file SET removed_at = now() WHERE id = :slipped;
SET ioffice.actor = 'regress_thuy';
SELECT ioffice.dossier_act(:'code', 'issue');
SELECT f.name LIKE 'QTXL-%' AS trail, f.kind, string_agg(s.kind || ':' || s.status, ', ' ORDER BY s.id) AS signatures
FROM ioffice.file f JOIN ioffice.signature s ON s.file_id = f.id
WHERE f.document_id = :result AND f.removed_at IS NULL GROUP BY f.id ORDER BY f.id;
SELECT count(*) AS slipped_sealed FROM ioffice.signature WHERE file_id = :slipped;
-- issued, the result's files never change either
RESET ioffice.actor;
SELECT pg_temp.refusal(format($$INSERT INTO ioffice.file (document_id, name, kind, size, sha256, content, uploaded_by)
    SELECT %s, 'chen.pdf', 'pdf', length(content), sha256(content), content,
           (SELECT id FROM ioffice.person WHERE login = 'regress_thuy') FROM pdf$$, :result)) AS direct_insert_issued_result;
