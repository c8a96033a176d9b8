-- The access log (issue 19 item 4; Decree 30, Appendix VI, III.5a, III.6a-b,
-- III.6l; sql/parts/99_access_log.sql): one row for each view, download and
-- export of a document (document_detail, trail, file_content, file_copy,
-- trail_export, case_file_xml), none for lists; who may read it (row-level
-- security); the counts per document and person; the statistics, for admins.
SET client_min_messages = warning;
\set VERBOSITY terse
SELECT ioffice.add_agency('UBND xã Nhật Ký', 'UBND', '000.00.57.H41') AS al \gset
SELECT ioffice.add_department(:al, 'Văn phòng Nhật Ký', 'VP') AS al_vp \gset
SELECT ioffice.add_department(:al, 'Phòng Khác Nhật Ký', 'PK') AS al_pk \gset
SELECT ioffice.add_person('al_spec', 'Chuyên viên Nhật Ký', 'Chuyên viên', :al_vp, '{specialist}') > 0
   AND ioffice.add_person('al_lead', 'Chủ tịch Nhật Ký', 'Chủ tịch', :al, '{leader}') > 0
   AND ioffice.add_person('al_clerk', 'Văn thư Nhật Ký', 'Văn thư', :al, '{clerk}') > 0
   AND ioffice.add_person('al_other', 'Chuyên viên Phòng Khác', 'Chuyên viên', :al_pk, '{specialist}') > 0
   AND ioffice.add_person('al_admin', 'Quản trị Nhật Ký', 'Quản trị', :al_vp, '{admin}') > 0 AS people_added;
CREATE FUNCTION public.regress_al_state(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN others THEN
    RETURN SQLSTATE;
END
$$;
-- the log's rows of a document or a case file, by login and what they name
CREATE FUNCTION public.regress_al_rows(doc bigint, file bigint, cf bigint DEFAULT NULL)
RETURNS TABLE (who text, action text, document boolean, file boolean, case_file boolean, detail text)
LANGUAGE sql AS $$
    SELECT p.login, a.action, a.document_id IS NOT DISTINCT FROM doc,
           a.file_id IS NOT DISTINCT FROM file, a.case_file_id IS NOT DISTINCT FROM cf, a.detail
      FROM ioffice.access_log a JOIN ioffice.person p ON p.id = a.person_id
     WHERE a.document_id = doc OR a.case_file_id = cf
     ORDER BY a.ctid
$$;

-- a document with two files, submitted to the leader; the people act
-- through an application's connection, where row-level security holds
CREATE ROLE regress_al_app IN ROLE ioffice_app;
SET ioffice.actor = 'al_spec';
SELECT ioffice.create_outgoing('CV', 'V/v nhật ký truy cập văn bản') AS doc \gset
SELECT ioffice.attach(:doc, 'cv.pdf', content) AS f_pdf FROM pdf \gset
SELECT ioffice.attach(:doc, 'phu_luc.docx', test_zip('word/document.xml')) AS f_docx \gset
SELECT ioffice.act(:doc, 'submit', 'al_lead');
RESET ioffice.actor;
SELECT sha256(content) AS pdf_sha FROM pdf \gset
SELECT count(*) = 0 AS nothing_logged_by_acting FROM ioffice.access_log WHERE document_id = :doc;

-- lists, registers, searches and the tables read directly are no view of a
-- document: nothing is written
SET ROLE regress_al_app;
SET ioffice.actor = 'al_lead';
SELECT count(*) >= 1 AS lead_lists_it FROM ioffice.outgoing_list('awaiting_approval');
SELECT count(*) = 1 AS lead_reads_row FROM ioffice.document WHERE id = :doc;
SELECT count(*) = 2 AS lead_reads_files FROM ioffice.file WHERE document_id = :doc;
SELECT count(*) >= 0 AS lead_dashboard FROM ioffice.dashboard();
SELECT count(*) >= 0 AS lead_searches FROM ioffice.search('nhật ký');
RESET ROLE;
SELECT count(*) = 0 AS lists_log_nothing FROM ioffice.access_log WHERE document_id = :doc;

-- each path that shows the document writes one row, under the person's name
SET ROLE regress_al_app;
SET ioffice.actor = 'al_lead';
SELECT (ioffice.document_detail(:doc)).abstract AS detail_abstract;
SELECT count(*) = 1 AS trail_rows FROM ioffice.trail(:doc);
SELECT sha256(ioffice.file_content(:f_pdf)) = :'pdf_sha'::bytea AS download_is_stored_bytes;
SELECT length(ioffice.file_content(:f_docx)) > 0 AS docx_downloaded;
SELECT substr(ioffice.trail_export(:doc, 'xlsx'), 1, 2) = '\x504b'::bytea AS trail_xlsx;
SET ioffice.actor = 'al_spec';
SELECT position(convert_to('Chủ tịch Nhật Ký', 'UTF8') IN ioffice.trail_export(:doc, 'csv')) > 0 AS trail_csv;
-- a marked copy only of a PDF (22023 for another kind); the PDF helper's
-- refusal of this tiny non-PDF leaves no row either (TAP 038 marks real ones)
SELECT regress_al_state(format('SELECT ioffice.file_copy(%s)', :f_docx)) AS copy_of_docx;
SELECT regress_al_state(format('SELECT ioffice.file_copy(%s)', :f_pdf)) AS copy_of_broken_pdf;
RESET ROLE;
SELECT * FROM regress_al_rows(:doc, NULL) WHERE action IN ('view', 'trail');
SELECT who, action, file, detail FROM regress_al_rows(:doc, :f_pdf) WHERE action = 'download' AND file;
SELECT who, action, file, detail FROM regress_al_rows(:doc, :f_docx) WHERE action = 'download' AND file;
SELECT who, action, document, file, detail FROM regress_al_rows(:doc, NULL) WHERE action = 'export';
SELECT count(*) AS rows_written FROM ioffice.access_log WHERE document_id = :doc;

-- what the actor may not see is unknown to them and leaves no row
SET ROLE regress_al_app;
SET ioffice.actor = 'al_other';
SELECT regress_al_state(format('SELECT ioffice.document_detail(%s)', :doc)) AS other_detail,
       regress_al_state(format('SELECT * FROM ioffice.trail(%s)', :doc)) AS other_trail,
       regress_al_state(format('SELECT ioffice.file_content(%s)', :f_pdf)) AS other_download,
       regress_al_state(format('SELECT ioffice.file_copy(%s)', :f_pdf)) AS other_copy,
       regress_al_state(format('SELECT ioffice.trail_export(%s, %L)', :doc, 'csv')) AS other_export,
       regress_al_state('SELECT ioffice.file_content(NULL)') AS null_file,
       regress_al_state('SELECT ioffice.file_content(-1)') AS missing_file;
-- no one acting: 28000
RESET ioffice.actor;
SELECT regress_al_state(format('SELECT ioffice.file_content(%s)', :f_pdf)) AS no_actor;
-- the writer is not anyone's to call
SELECT regress_al_state(format('SELECT ioffice._log_access(%L, %s)', 'view', :doc)) AS writer_not_granted;
RESET ROLE;
SELECT count(*) AS rows_still FROM ioffice.access_log WHERE document_id = :doc;

-- a case file's XML export is logged too (one row, naming the case file)
SET ioffice.actor = 'al_clerk';
SELECT ioffice.add_case_file(:al, extract(year FROM now() AT TIME ZONE ioffice.timezone())::int,
                             '01.VP', 'Hồ sơ nhật ký', '10', 'al_spec') AS cf \gset
SELECT ioffice.file_into(:cf, :doc);
SET ROLE regress_al_app;
SELECT xml_is_well_formed(ioffice.case_file_xml(:cf)::text) AS case_file_exported;
RESET ROLE;
SELECT who, action, document, case_file, detail FROM regress_al_rows(NULL, NULL, :cf);
-- its writer, callable by anyone, writes only an export it knows of a case
-- file the caller sees (the log keeps for ever what it is given)
SET ROLE regress_al_app;
SELECT regress_al_state(format('SELECT ioffice._log_case_file_export(%s, %L)', :cf, repeat('x', 100000))) AS junk_detail,
       regress_al_state('SELECT ioffice._log_case_file_export(-1, ''xml'')') AS unknown_case_file;
-- its table of contents as a workbook is an export of it too
SELECT ioffice.file_kind(ioffice.case_file_contents_export(:cf, 'XLSX')) AS contents_exported;
RESET ROLE;
SELECT string_agg(detail, ',' ORDER BY at) AS case_file_exports FROM ioffice.access_log WHERE case_file_id = :cf;

-- the log is append-only, for its owner too
SELECT regress_al_state('UPDATE ioffice.access_log SET action = ''view''') AS owner_update,
       regress_al_state('DELETE FROM ioffice.access_log') AS owner_delete,
       regress_al_state('TRUNCATE ioffice.access_log') AS owner_truncate;
SET ROLE regress_al_app;
SELECT regress_al_state(format('INSERT INTO ioffice.access_log (person_id, action, document_id) VALUES (1, %L, %s)', 'view', :doc)) AS app_insert;
RESET ROLE;

-- who reads it: the people who may see the document read its history; the
-- other department's specialist reads only their own rows; the admin all
SET ROLE regress_al_app;
SET ioffice.actor = 'al_spec';
SELECT count(*) = 6 AS drafter_reads_history FROM ioffice.access_log WHERE document_id = :doc;
SET ioffice.actor = 'al_clerk';
SELECT count(*) = 6 AS clerk_reads_history FROM ioffice.access_log WHERE document_id = :doc;
SET ioffice.actor = 'al_other';
SELECT count(*) = 0 AS other_reads_nothing FROM ioffice.access_log WHERE document_id = :doc;
SELECT count(*) = 0 AS other_reads_no_case_file_row FROM ioffice.access_log WHERE case_file_id = :cf;
SET ioffice.actor = 'al_admin';
SELECT count(*) = 6 AS admin_reads_history FROM ioffice.access_log WHERE document_id = :doc;
SELECT count(*) = 2 AS admin_reads_case_file_row FROM ioffice.access_log WHERE case_file_id = :cf;
RESET ROLE;

-- counts per document and per person, of the rows the reader may read
SET ROLE regress_al_app;
SET ioffice.actor = 'al_spec';
SELECT views, downloads, exports, accesses, people FROM ioffice.document_access_count WHERE document_id = :doc;
SELECT p.login, c.views, c.downloads, c.exports, c.documents
FROM ioffice.person_access_count c JOIN ioffice.person p ON p.id = c.person_id
WHERE p.login LIKE 'al\_%' ORDER BY p.login;
SET ioffice.actor = 'al_other';
SELECT count(*) = 0 AS other_counts_nothing FROM ioffice.document_access_count WHERE document_id = :doc;
SELECT count(*) = 0 AS other_counts_no_one FROM ioffice.person_access_count;
RESET ROLE;

-- statistics: the documents by month, type and state count what the reader
-- may see; the accesses to the system and the active people, admins only
SET ROLE regress_al_app;
SET ioffice.actor = 'al_other';
SELECT coalesce(sum(documents), 0) = 0 AS other_counts_no_document
FROM ioffice.document_statistics WHERE agency_id = :al AND doc_type = 'CV';
SELECT count(*) = 0 AS other_no_access_statistics FROM ioffice.access_statistics;
SELECT count(*) = 0 AS other_no_active_people FROM ioffice.active_people;
SET ioffice.actor = 'al_spec';
SELECT state, documents FROM ioffice.document_statistics WHERE agency_id = :al ORDER BY state;
SELECT count(*) = 0 AS spec_no_access_statistics FROM ioffice.access_statistics;
SET ioffice.actor = 'al_admin';
SELECT sum(documents) >= 1 AS admin_counts_documents FROM ioffice.document_statistics WHERE agency_id = :al;
SELECT bool_and(accesses >= 1) AND count(DISTINCT action) >= 4 AS admin_access_statistics,
       sum(accesses) >= 10 AS admin_counts_accesses
FROM ioffice.access_statistics;
SELECT sum(people) >= 3 AS admin_active_people FROM ioffice.active_people;
RESET ROLE;

DROP ROLE regress_al_app;
DROP FUNCTION regress_al_state(text);
DROP FUNCTION regress_al_rows(bigint, bigint, bigint);
