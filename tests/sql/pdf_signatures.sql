-- PDF signatures (PAdES) as the file model carries them, with no worker
-- running (its work is done by hand, as in frozen_files): a signature made
-- inside a PDF produces the file's next version (signature.signed_file_id),
-- and the guards count it on that version and on the versions later
-- signatures append to; nobody but the signer adds a version once the
-- files are frozen.  And the images' functions refuse what they must.
SET client_min_messages = warning;

CREATE FUNCTION pg_temp.refusal(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_state text;
    v_message text;
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT;
    RETURN v_state || ': ' || regexp_replace(v_message, '(document|file|agency) [0-9]+', '\1 N', 'g');
END
$$;

-- a version made by a signature, as the worker makes it: the signed bytes
-- plus an appended update, replacing the version signed, uploaded by the signer
CREATE FUNCTION pg_temp.signed_version(p_sig bigint) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_file ioffice.file;
    v_sig ioffice.signature;
    v_new bigint;
BEGIN
    SELECT * INTO v_sig FROM ioffice.signature WHERE id = p_sig;
    SELECT * INTO v_file FROM ioffice.file WHERE document_id = v_sig.document_id
       AND superseded_at IS NULL AND removed_at IS NULL;
    UPDATE ioffice.file SET superseded_at = now() WHERE id = v_file.id;
    INSERT INTO ioffice.file (document_id, name, kind, size, sha256, content, replaces_id, uploaded_by)
    VALUES (v_file.document_id, v_file.name, 'pdf', v_file.size + 7,
            sha256(v_file.content || convert_to(E'\n%%EOF\n', 'UTF8')),
            v_file.content || convert_to(E'\n%%EOF\n', 'UTF8'),
            v_file.id, v_sig.signer_id)
    RETURNING id INTO v_new;
    UPDATE ioffice.signature SET status = 'done', signed_at = now(), signed_file_id = v_new
    WHERE id = p_sig;
    RETURN v_new;
END
$$;

SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('TB', 'Thông báo ký trong tệp PDF') AS doc \gset
SELECT ioffice.attach(:doc, 'quyet_dinh.pdf', content) AS draft FROM pdf \gset
SELECT ioffice.act(:doc, 'submit', 'dai', 'Trình ký', '{"request_signature": true}');
SET ioffice.actor = 'dai';
SELECT ioffice.act(:doc, 'sign');
RESET ioffice.actor;
SELECT pg_temp.signed_version(id) AS leader_version FROM ioffice.signature
WHERE document_id = :doc AND status = 'pending' \gset
-- the leader's signature is on the draft's next version: approve sees it
SET ioffice.actor = 'dai';
SELECT ioffice.act(:doc, 'approve', 'regress_thuy', 'Đề nghị phát hành') AS approved;
-- frozen: no version by hand, even one that begins with the approved bytes
RESET ioffice.actor;
SELECT pg_temp.refusal(format($$INSERT INTO ioffice.file (document_id, name, kind, size, sha256, content,
    replaces_id, uploaded_by) SELECT document_id, name, kind, size + 1, sha256(content || 'x'::bytea),
    content || 'x'::bytea, id, uploaded_by FROM ioffice.file WHERE id = %s$$, :leader_version)) AS appended_by_hand;
-- the clerk issues: approver_signature counts the signature the version carries
SET ioffice.actor = 'regress_thuy';
SELECT ioffice.act(:doc, 'issue') AS issued;
RESET ioffice.actor;
SELECT kind, status, signed_file_id IS NULL AS detached
FROM ioffice.signature WHERE document_id = :doc ORDER BY id;
SELECT count(*) AS versions, count(*) FILTER (WHERE superseded_at IS NULL) AS current,
       bool_and(replaces_id IS NULL OR replaces_id < id) AS chained
FROM ioffice.file WHERE document_id = :doc;
-- the detached export leaves out what is inside a PDF
SET ioffice.actor = 'dai';
SELECT pg_temp.refusal(format('SELECT ioffice.signature_p7s(%s)', :draft)) AS p7s_of_draft;

RESET ioffice.actor;

-- a second leader's signature appended after the first still carries the
-- first: the guard walks back through versions made by signatures
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('CV', 'Hai lãnh đạo ký trong tệp') AS doc2 \gset
SELECT ioffice.attach(:doc2, 'cong_van.pdf', content) FROM pdf \gset
SELECT ioffice.act(:doc2, 'submit', 'dai', 'Trình ký', '{"request_signature": true}');
SET ioffice.actor = 'dai';
SELECT ioffice.act(:doc2, 'sign');
RESET ioffice.actor;
SELECT pg_temp.signed_version(id) IS NOT NULL AS first_signed FROM ioffice.signature
WHERE document_id = :doc2 AND status = 'pending';
INSERT INTO ioffice.signature (document_id, file_id, signer_id, kind)
SELECT :doc2, f.id, p.id, 'personal' FROM ioffice.file f, ioffice.person p
WHERE f.document_id = :doc2 AND f.superseded_at IS NULL AND p.login = 'regress_tuan'
RETURNING id AS second \gset
SELECT pg_temp.signed_version(:second) IS NOT NULL AS second_signed;
SET ioffice.actor = 'dai';
SELECT ioffice.act(:doc2, 'approve', 'regress_thuy') AS approved_with_first_signature_carried;
RESET ioffice.actor;

-- images of signatures: only PNGs, known people and agencies, real diameters
SELECT pg_temp.refusal($$SELECT ioffice.set_signature_image('dai', convert_to('GIF89a', 'UTF8'))$$) AS not_png;
SELECT pg_temp.refusal($$SELECT ioffice.set_signature_image('dai', '\x89504e470d0a1a0a'::bytea)$$) AS signature_without_header;
SELECT pg_temp.refusal($$SELECT ioffice.set_signature_image('dai',
                         '\x89504e470d0a1a0a0000000d4948445200002000000000200806000000a1b2c3d4'::bytea)$$) AS too_wide;
SELECT pg_temp.refusal($$SELECT ioffice.set_signature_image('regress_nobody', '\x89504e470d0a1a0a0000000d4948445200000040000000200806000000a1b2c3d4'::bytea)$$) AS unknown_person;
SELECT pg_temp.refusal($$SELECT ioffice.set_seal_image((SELECT id FROM ioffice.unit WHERE code = '000.00.32.H41'),
                         '\x89504e470d0a1a0a0000000d4948445200000040000000200806000000a1b2c3d4'::bytea, 5)$$) AS tiny_seal;
SELECT pg_temp.refusal($$SELECT ioffice.set_seal_image((SELECT id FROM ioffice.unit WHERE kind = 'department' LIMIT 1),
                         '\x89504e470d0a1a0a0000000d4948445200000040000000200806000000a1b2c3d4'::bytea, 40)$$) AS department_seal;
SELECT count(*) AS seal_set FROM (SELECT ioffice.set_seal_image(
    (SELECT id FROM ioffice.unit WHERE code = '000.00.32.H41'), '\x89504e470d0a1a0a0000000d4948445200000040000000200806000000a1b2c3d4'::bytea, 40)) AS s;
SELECT diameter_mm FROM ioffice.seal_image;
CREATE ROLE regress_pdf_outsider LOGIN;
GRANT USAGE ON SCHEMA ioffice TO regress_pdf_outsider;
SET ROLE regress_pdf_outsider;
SELECT pg_temp.refusal($$SELECT ioffice.set_signature_image('dai', '\x89504e470d0a1a0a0000000d4948445200000040000000200806000000a1b2c3d4'::bytea)$$) AS not_admin;
RESET ROLE;
REVOKE USAGE ON SCHEMA ioffice FROM regress_pdf_outsider;
DROP ROLE regress_pdf_outsider;
