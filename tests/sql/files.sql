-- Files: types from the content, names limited, history kept.
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('CV', 'Kiểm tra tệp đính kèm') AS doc \gset
SELECT ioffice.attach(:doc, 'du_thao.docx', test_zip('word/document.xml')) AS docx \gset
SELECT ioffice.attach(:doc, 'bang_so_lieu.xlsx', test_zip('xl/workbook.xml'));
SELECT ioffice.attach(:doc, 'cu.doc', test_ole2('WordDocument'));
SELECT ioffice.attach(:doc, 'cu.xls', test_ole2('Workbook'));
SELECT ioffice.attach(:doc, 'TO_TRINH.PDF', content) FROM pdf;
SELECT name, kind, size, sha256 = sha256(content) AS hash_ok FROM ioffice.file
WHERE document_id = :doc ORDER BY id;

-- refused: the seed's 30-character limit, with a message that says why
\set VERBOSITY default
\set SHOW_CONTEXT never
SELECT ioffice.attach(:doc, 'vv ap dung chu ky so chuyen dung.pdf', content) FROM pdf;
\echo :SQLSTATE
-- exactly 30 characters (Vietnamese letters count as one each) is fine, 31 is not
SELECT ioffice.attach(:doc, 'Văn bản hướng dẫn ký số 01.pdf', content) IS NOT NULL AS ok FROM pdf;
SELECT ioffice.attach(:doc, 'Văn bản hướng dẫn ký số đợt.pdf', content) FROM pdf;
\echo :SQLSTATE
-- the limit is a setting
SET ioffice.max_file_name_length = 40;
SELECT ioffice.attach(:doc, 'vv ap dung chu ky so chuyen dung.pdf', content) IS NOT NULL AS ok FROM pdf;
RESET ioffice.max_file_name_length;
-- types not allowed, recognised from the bytes and not the name
SELECT ioffice.attach(:doc, 'anh.pdf', '\x89504e470d0a1a0a0000000d49484452'::bytea);
\echo :SQLSTATE
SELECT ioffice.attach(:doc, 'goi.pdf', test_zip('mimetype'));
\echo :SQLSTATE
SELECT ioffice.attach(:doc, 'slide.pdf', test_ole2('PowerPoint Document'));
\echo :SQLSTATE
-- content and name disagree
SELECT ioffice.attach(:doc, 'du_thao.pdf', test_zip('word/document.xml'));
\echo :SQLSTATE
SELECT ioffice.attach(:doc, 'du_thao', content) FROM pdf;
\echo :SQLSTATE
SELECT ioffice.attach(:doc, 'rong.pdf', ''::bytea);
\echo :SQLSTATE
SELECT ioffice.attach(:doc, '', content) FROM pdf;
\echo :SQLSTATE
SELECT ioffice.attach(:doc, 'a/b.pdf', content) FROM pdf;
\echo :SQLSTATE
-- the allowed types are a setting: PDF only
SET ioffice.allowed_file_types = 'pdf';
SELECT ioffice.attach(:doc, 'du_thao2.docx', test_zip('word/document.xml'));
\echo :SQLSTATE
RESET ioffice.allowed_file_types;

-- replace keeps the old version; remove only marks it
SELECT ioffice.replace_file(:docx, 'du_thao_v2.docx', test_zip('word/document.xml')) AS docx2 \gset
SELECT ioffice.replace_file(:docx, 'du_thao_v3.docx', test_zip('word/document.xml'));
\echo :SQLSTATE
SELECT ioffice.remove_file(:docx2);
SELECT ioffice.remove_file(:docx2);
\echo :SQLSTATE
SELECT id = :docx AS first, name, superseded_at IS NOT NULL AS superseded,
       removed_at IS NOT NULL AS removed, replaces_id = :docx AS replaces_first
FROM ioffice.file WHERE id IN (:docx, :docx2) ORDER BY id;
SELECT count(*) AS current_files FROM ioffice.file
WHERE document_id = :doc AND superseded_at IS NULL AND removed_at IS NULL;
SELECT action, detail->>'name' AS name FROM ioffice.audit
WHERE entity = 'file' AND entity_id IN (:docx, :docx2) ORDER BY id;

-- someone who does not hold the document cannot touch its files
SET ioffice.actor = 'dai';
SELECT ioffice.attach(:doc, 'x.pdf', content) FROM pdf;
\echo :SQLSTATE
SELECT ioffice.remove_file(:docx2 - 1);
\echo :SQLSTATE

-- nor can anyone once it is issued
SET ioffice.actor = 'regress_thuy';
SELECT ioffice.attach(d.id, 'x.pdf', p.content) FROM ioffice.document d, pdf p
WHERE d.state = 'issued' ORDER BY d.id LIMIT 1;
\echo :SQLSTATE

-- a document can link related documents
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('CV', 'Văn bản liên quan', jsonb_build_object('related', jsonb_build_array(:doc))) AS rel \gset
SELECT related_id = :doc AS linked FROM ioffice.document_link WHERE document_id = :rel;
SELECT ioffice.link_documents(:rel, :rel);
\echo :SQLSTATE
SELECT ioffice.create_outgoing('CV', 'x', '{"related": [999999]}');
\echo :SQLSTATE
RESET ioffice.actor;
