-- Case files (issue 19 items 1 and 2; Decree 30 art. 28-31, appendix VI
-- III.4-5): an agency's yearly list of case files with their codes, the
-- documents filed into them without copies with their running numbers,
-- row-level security of the contents and counts, closing, the XML export in
-- the order the documents arose, the archive's 30-day warning (once), the
-- transfer and the read-only files it leaves.
SET client_min_messages = warning;
\set VERBOSITY terse
SELECT ioffice.add_agency('UBND xã Hồ Sơ', 'UBND', '000.00.48.H41') AS hs \gset
SELECT ioffice.add_department(:hs, 'Văn phòng Hồ Sơ', 'VP') AS hs_vp \gset
SELECT ioffice.add_department(:hs, 'Phòng Khác Hồ Sơ', 'PK') AS hs_pk \gset
SELECT ioffice.add_agency('UBND xã Ngoài Hồ Sơ', 'UBNDN', '000.00.49.H41') AS hs2 \gset
SELECT ioffice.add_person('cf_spec', 'Chuyên viên Hồ Sơ', 'Chuyên viên', :hs_vp, '{specialist}') > 0
   AND ioffice.add_person('cf_other', 'Chuyên viên Khác', 'Chuyên viên', :hs_pk, '{specialist}') > 0
   AND ioffice.add_person('cf_lead', 'Chủ tịch Hồ Sơ', 'Chủ tịch', :hs, '{leader}') > 0
   AND ioffice.add_person('cf_clerk', 'Văn thư Hồ Sơ', 'Văn thư', :hs, '{clerk}') > 0
   AND ioffice.add_person('cf_xa', 'Văn thư Ngoài', 'Văn thư', :hs2, '{clerk}') > 0 AS people_added;
UPDATE ioffice.person SET email = 'cf_spec@hoso.example.vn' WHERE login = 'cf_spec';
CREATE FUNCTION public.regress_cf_state(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN others THEN
    RETURN SQLSTATE;
END
$$;
SELECT extract(year FROM now() AT TIME ZONE ioffice.timezone())::int AS y,
       (now() AT TIME ZONE ioffice.timezone())::date AS today \gset

-- documents of the agency: an outgoing one issued, an incoming one
-- registered, a draft of the specialist, and a draft of another department
-- the specialist may not see
SET ioffice.actor = 'cf_spec';
SELECT ioffice.create_outgoing('QĐ', 'V/v quy chế lưu trữ hồ sơ', '{"page_count": 3}') AS d1 \gset
SELECT ioffice.attach(:d1, 'qd.pdf', content) IS NOT NULL AS attached FROM pdf;
SELECT ioffice.act(:d1, 'submit', 'cf_lead');
SET ioffice.actor = 'cf_lead';
SELECT ioffice.act(:d1, 'approve', 'cf_clerk');
SET ioffice.actor = 'cf_clerk';
SELECT ioffice.act(:d1, 'issue');
SELECT ioffice.register_incoming('CV', 'Hướng dẫn lập hồ sơ điện tử', 'Sở Nội vụ', '21/SNV-VTLT',
                                 (now() AT TIME ZONE ioffice.timezone())::date, '{"page_count": 2}') AS d2 \gset
SET ioffice.actor = 'cf_spec';
SELECT ioffice.create_outgoing('TTr', 'Dự thảo tờ trình danh mục hồ sơ') AS d3 \gset
SET ioffice.actor = 'cf_other';
SELECT ioffice.create_outgoing('BC', 'Báo cáo riêng của phòng khác') AS d_hidden \gset
RESET ioffice.actor;
-- the order in which they arose differs from the order they will be filed
-- in: the draft two years ago, the incoming one received last year
UPDATE ioffice.document SET created_at = now() - interval '800 days' WHERE id = :d3;
UPDATE ioffice.document SET received_at = now() - interval '400 days' WHERE id = :d2;

-- the yearly lists of two years: headings and case files, by the clerk
SET ioffice.actor = 'cf_clerk';
SELECT ioffice.add_case_file_heading(:hs, :y - 1, 'I', 'Tổng hợp') AS h_old \gset
SELECT ioffice.add_case_file_heading(:hs, :y, 'I', 'Tổng hợp') AS h1 \gset
SELECT ioffice.add_case_file_heading(:hs, :y, 'II', 'Văn thư lưu trữ') AS h2 \gset
SELECT ioffice.add_case_file(:hs, :y - 1, '01.VP', 'Hồ sơ quy chế năm trước', '10', 'cf_spec',
                             jsonb_build_object('heading', :h_old, 'opened_on', :'today'::date - 400)) AS cf_a \gset
SELECT ioffice.add_case_file(:hs, :y, '01.VP', 'Hồ sơ lưu trữ năm nay', 'permanent', 'cf_spec',
                             jsonb_build_object('heading', :h2, 'rights', 'Hạn chế',
                                                'description', 'Hồ sơ mẫu')) AS cf_b \gset
SELECT ioffice.add_case_file(:hs, :y, '02.VP', 'Hồ sơ công văn đi', '2', NULL,
                             jsonb_build_object('heading', :h1, 'opened_on', :'today'::date - 400)) AS cf_c \gset
SELECT count(*) = 3 AS three_files,
       bool_and(code = '000.00.48.H41.' || year || '.' || notation) AS codes_organ_year_notation,
       count(*) FILTER (WHERE year = :y - 1) = 1 AS one_last_year,
       bool_and(retention = CASE WHEN id = :cf_b THEN 'Vĩnh viễn' WHEN id = :cf_a THEN '10 năm' ELSE '2 năm' END)
         AS retentions,
       bool_and(state = 'open' AND closed_on IS NULL) AS all_open,
       bool_and(responsible_id = (SELECT id FROM ioffice.person WHERE login =
                                   CASE WHEN case_file.id = :cf_c THEN 'cf_clerk' ELSE 'cf_spec' END)) AS responsible
FROM ioffice.case_file WHERE agency_id = :hs;
SELECT array_agg(heading_code ORDER BY year, heading_position, code) = '{I,I,II}' AS headings_in_order
FROM ioffice.case_file_list WHERE agency_id = :hs;
-- a notation twice in a year is a duplicate; the same in another year is not
SELECT regress_cf_state(format('SELECT ioffice.add_case_file(%s, %s, %L, %L, %L)', :hs, :y, '01.VP', 'Lặp', '5')) AS duplicate,
       regress_cf_state(format('SELECT ioffice.add_case_file(%s, %s, %L, %L, %L)', :hs, :y, '01 VP', 'Khoảng trắng', '5')) AS bad_notation,
       regress_cf_state(format('SELECT ioffice.add_case_file(%s, %s, %L, %L, %L)', :hs, :y, 'ABCDEFGHIJKLMNOPQRSTU', 'Dài', '5')) AS notation_over_20,
       regress_cf_state(format('SELECT ioffice.add_case_file(%s, %s, %L, %L, %L)', :hs, :y, '03.VP', 'Hạn', 'mãi')) AS bad_retention,
       regress_cf_state(format('SELECT ioffice.add_case_file(%s, %s, %L, %L, %L, %L)', :hs, :y, '03.VP', 'Người ngoài', '5', 'cf_xa')) AS outsider_in_charge;
-- only a clerk of the agency (or an admin) keeps the list
SET ioffice.actor = 'cf_spec';
SELECT regress_cf_state(format('SELECT ioffice.add_case_file(%s, %s, %L, %L, %L)', :hs, :y, '09.VP', 'Chuyên viên lập', '5')) AS specialist_adds;
SET ioffice.actor = 'cf_xa';
SELECT regress_cf_state(format('SELECT ioffice.add_case_file(%s, %s, %L, %L, %L)', :hs, :y, '09.VP', 'Xã khác', '5')) AS other_agency_adds;

-- filing: the person in charge files what they see (the incoming document
-- is the clerk's); one document in three files takes a running number in
-- each; the clerk files into any file of the agency
SET ioffice.actor = 'cf_spec';
SELECT ioffice.file_into(:cf_b, :d1);
SET ioffice.actor = 'cf_clerk';
SELECT ioffice.file_into(:cf_b, :d2);
SET ioffice.actor = 'cf_spec';
SELECT ioffice.file_into(:cf_b, :d3);
SELECT ioffice.file_into(:cf_a, :d1);
SET ioffice.actor = 'cf_clerk';
SELECT ioffice.file_into(:cf_c, :d2);
SELECT ioffice.file_into(:cf_c, :d1);
SELECT array_agg(case_file_id = :cf_a ORDER BY case_file_id) = '{t,f,f}'
   AND array_agg(ordinal ORDER BY case_file_id) = '{1,1,2}' AS d1_in_three_files_numbered
FROM ioffice.case_file_document WHERE document_id = :d1;
SELECT array_agg(document_id ORDER BY ordinal) = ARRAY[:d1, :d2, :d3]::bigint[]
   AND array_agg(ordinal ORDER BY ordinal) = '{1,2,3}' AS numbered_in_filing_order
FROM ioffice.case_file_document WHERE case_file_id = :cf_b;
-- no copy: the file holds the document itself
SELECT (SELECT count(*) FROM ioffice.document WHERE abstract = 'V/v quy chế lưu trữ hồ sơ') = 1 AS not_copied;
-- filing goes into the document's audit chain, which stays intact
SELECT count(*) = 3 AS audited_in_document_chain,
       bool_and(chain = 'document:' || :d1) AS in_its_chain
FROM ioffice.audit WHERE entity = 'document' AND entity_id = :d1 AND action = 'file_into';
SELECT count(*) = 0 AS chain_intact FROM ioffice.audit_verify('document', :d1);

-- who may not: the specialist files a document they cannot see (unknown),
-- another specialist of the agency files into a file not theirs (42501),
-- another agency's clerk (unknown file), a document of another agency; twice
-- in one file is a duplicate
SET ioffice.actor = 'cf_spec';
SELECT regress_cf_state(format('SELECT ioffice.file_into(%s, %s)', :cf_b, :d_hidden)) AS unseen_document,
       regress_cf_state(format('SELECT ioffice.file_into(%s, %s)', :cf_b, :d1)) AS twice,
       regress_cf_state(format('SELECT ioffice.file_into(%s, %s)', :cf_b, -1)) AS unknown_document;
SELECT regress_error(format('SELECT ioffice.file_into(%s, %s)', :cf_b, :d_hidden), :d_hidden);
SET ioffice.actor = 'cf_other';
SELECT regress_cf_state(format('SELECT ioffice.file_into(%s, %s)', :cf_b, :d_hidden)) AS not_in_charge;
SET ioffice.actor = 'cf_xa';
SELECT regress_cf_state(format('SELECT ioffice.file_into(%s, %s)', :cf_b, :d1)) AS other_agency_clerk;
SELECT ioffice.register_incoming('CV', 'Văn bản của xã ngoài', 'Sở Tài chính', '7/STC-NS',
                                 (now() AT TIME ZONE ioffice.timezone())::date) AS d_xa \gset
SET ioffice.actor = 'cf_clerk';
SELECT regress_cf_state(format('SELECT ioffice.file_into(%s, %s)', :cf_b, :d_xa)) AS other_agency_document;
-- the clerk sees every document of the agency: files the other department's
SELECT ioffice.file_into(:cf_b, :d_hidden);
RESET ioffice.actor;

-- row-level security through an application's connection: the person in
-- charge sees two of the four documents of the file (not the incoming one
-- nor the other department's draft), and its counts say two; the filing
-- counter is not theirs to read
CREATE ROLE regress_cf_app IN ROLE ioffice_app;
SET ROLE regress_cf_app;
SET ioffice.actor = 'cf_spec';
SELECT array_agg(document_id ORDER BY ordinal) = ARRAY[:d1, :d3]::bigint[] AS spec_sees_two,
       bool_and(document_id <> :d_hidden) AS hidden_not_listed
FROM ioffice.case_file_contents WHERE case_file_id = :cf_b;
SELECT count(*) = 2 AS spec_links_two FROM ioffice.case_file_document WHERE case_file_id = :cf_b;
SELECT doc_total = 2 AS spec_doc_total, page_total = 3 AS spec_page_total
FROM ioffice.case_file_list WHERE case_file_id = :cf_b;
SELECT regress_cf_state(format('SELECT next_ordinal FROM ioffice.case_file WHERE id = %s', :cf_b)) AS counter_hidden;
SELECT xml_is_well_formed(ioffice.case_file_xml(:cf_b)::text) AS spec_xml_well_formed,
       (xpath('count(/File/Documents/Document)', ioffice.case_file_xml(:cf_b)))[1]::text = '2' AS spec_xml_two,
       (xpath('/File/DocTotal/text()', ioffice.case_file_xml(:cf_b)))[1]::text = '2' AS spec_xml_total,
       position('Báo cáo riêng' IN ioffice.case_file_xml(:cf_b)::text) = 0 AS spec_xml_hidden_absent;
-- another department's specialist sees the list, and only their own
-- document in it
SET ioffice.actor = 'cf_other';
SELECT count(*) = 3 AS other_sees_list FROM ioffice.case_file_list WHERE agency_id = :hs;
SELECT array_agg(document_id) = ARRAY[:d_hidden]::bigint[] AS other_sees_own_only,
       (SELECT doc_total FROM ioffice.case_file_list WHERE case_file_id = :cf_b) = 1 AS other_counts_one
FROM ioffice.case_file_contents WHERE case_file_id = :cf_b;
-- another agency's clerk sees neither the list nor the contents
SET ioffice.actor = 'cf_xa';
SELECT count(*) = 0 AS outsider_sees_no_file FROM ioffice.case_file_list WHERE agency_id = :hs;
SELECT count(*) = 0 AS outsider_sees_no_contents FROM ioffice.case_file_document WHERE case_file_id = :cf_b;
SELECT regress_cf_state(format('SELECT ioffice.case_file_xml(%s)', :cf_b)) AS outsider_xml;
-- the clerk sees all four, in the order they arose: the draft (two years
-- ago), the incoming one (last year), then the two of today by number
SET ioffice.actor = 'cf_clerk';
SELECT doc_total = 4 AS clerk_doc_total FROM ioffice.case_file_list WHERE case_file_id = :cf_b;
SELECT xml_is_well_formed(ioffice.case_file_xml(:cf_b)::text) AS xml_well_formed,
       (xpath('/File/FileCode/text()', ioffice.case_file_xml(:cf_b)))[1]::text = '000.00.48.H41.' || :y || '.01.VP' AS xml_file_code,
       (xpath('/File/Maintenance/text()', ioffice.case_file_xml(:cf_b)))[1]::text = 'Vĩnh viễn' AS xml_maintenance,
       (SELECT array_agg(x::text::int) FROM unnest(xpath('/File/Documents/Document/DocOrdinal/text()',
                                                          ioffice.case_file_xml(:cf_b))) x)
         = '{3,2,1,4}' AS xml_in_order_documents_arose,
       (xpath('/File/Documents/Document[3]/CodeNotation/text()', ioffice.case_file_xml(:cf_b)))[1]::text
         = (SELECT substr(symbol, strpos(symbol, '/') + 1) FROM ioffice.document WHERE id = :d1) AS xml_notation;
SELECT array_agg(ordinal ORDER BY arose_on, number, ordinal) = '{3,2,1,4}' AS contents_view_in_order
FROM ioffice.case_file_contents WHERE case_file_id = :cf_b;
RESET ioffice.actor;
RESET ROLE;

-- unfiling: the number is not given again; filing again takes a new one
SET ioffice.actor = 'cf_clerk';
SELECT ioffice.unfile(:cf_c, :d2);
SELECT ioffice.file_into(:cf_c, :d3);
SELECT ioffice.file_into(:cf_c, :d2);
SELECT array_agg(ordinal ORDER BY ordinal) FILTER (WHERE unfiled_at IS NULL) = '{2,3,4}'
   AND array_agg(ordinal ORDER BY ordinal) FILTER (WHERE unfiled_at IS NOT NULL) = '{1}' AS numbers_not_reused
FROM ioffice.case_file_document WHERE case_file_id = :cf_c;
SELECT regress_cf_state(format('SELECT ioffice.unfile(%s, %s)', :cf_a, :d2)) AS unfile_absent;

-- closing: a closed file takes no document, nor a second closing; a future
-- closing date is refused
SELECT regress_cf_state(format('SELECT ioffice.close_case_file(%s, %L)', :cf_a, :'today'::date + 1)) AS close_in_future;
SELECT ioffice.close_case_file(:cf_a, :'today'::date - 340);
SELECT ioffice.close_case_file(:cf_c, :'today'::date - 340);
SELECT regress_cf_state(format('SELECT ioffice.file_into(%s, %s)', :cf_a, :d2)) AS file_into_closed,
       regress_cf_state(format('SELECT ioffice.unfile(%s, %s)', :cf_a, :d1)) AS unfile_closed,
       regress_cf_state(format('SELECT ioffice.close_case_file(%s)', :cf_a)) AS close_twice;
SELECT state = 'closed' AND closed_on = :'today'::date - 340 AS closed FROM ioffice.case_file WHERE id = :cf_a;
RESET ioffice.actor;

-- the archive: a closed file kept 5 years or more is due a year after its
-- closing; closed 340 days ago, its 30-day warning is due now; a file kept
-- 2 years is not due; the warning goes out once
INSERT INTO ioffice.endpoint (name, url, secret, events)
VALUES ('regress_cf_gateway', 'http://127.0.0.1:9/notify', 'a-secret-of-the-gateway', '{notify.*}');
SELECT count(*) FILTER (WHERE case_file_id = :cf_a) = 1 AS ten_years_due,
       count(*) FILTER (WHERE case_file_id = :cf_c) = 0 AS two_years_not_due,
       bool_and(due_on = :'today'::date - 340 + interval '1 year'
                AND warn_on = due_on - 30) FILTER (WHERE case_file_id = :cf_a) AS due_a_year_after
FROM ioffice.case_file_archive_due WHERE agency_id = :hs;
SELECT ioffice.case_file_archive_warnings() >= 1 AS warned;
SELECT ioffice.case_file_archive_warnings() = 0 AS not_again;
SELECT count(*) = 1 AS one_event,
       bool_and(event = 'notify.email') AS by_email,
       bool_and(body::text LIKE '%cf_spec@hoso.example.vn%' AND body::text LIKE '%archive_due%') AS to_person_in_charge
FROM ioffice.outbox o JOIN ioffice.endpoint e ON e.id = o.endpoint_id
WHERE e.name = 'regress_cf_gateway';
SELECT warned_at IS NOT NULL AS marked_warned FROM ioffice.case_file WHERE id = :cf_a;
UPDATE ioffice.endpoint SET enabled = false WHERE name = 'regress_cf_gateway';

-- the transfer: by a clerk, of closed files only; the files become
-- read-only, for the table's owner too
SET ioffice.actor = 'cf_spec';
SELECT regress_cf_state(format('SELECT ioffice.transfer_case_files(ARRAY[%s]::bigint[])', :cf_a)) AS specialist_transfers;
SET ioffice.actor = 'cf_clerk';
SELECT regress_cf_state(format('SELECT ioffice.transfer_case_files(ARRAY[%s]::bigint[])', :cf_b)) AS transfer_open;
SELECT ioffice.transfer_case_files(ARRAY[:cf_a]::bigint[], 'Nộp lưu năm nay') AS tr \gset
SELECT state = 'transferred' AS transferred FROM ioffice.case_file WHERE id = :cf_a;
SELECT t.transferred_by = (SELECT id FROM ioffice.person WHERE login = 'cf_clerk') AND t.agency_id = :hs
       AS transfer_recorded
FROM ioffice.archive_transfer t WHERE t.id = :tr;
SELECT regress_cf_state(format('SELECT ioffice.file_into(%s, %s)', :cf_a, :d2)) AS file_into_transferred,
       regress_cf_state(format('SELECT ioffice.transfer_case_files(ARRAY[%s]::bigint[])', :cf_a)) AS transfer_twice;
-- the transfer list as a workbook and as CSV
SELECT substr(ioffice.archive_transfer_export(:tr, 'xlsx'), 1, 2) = '\x504b'::bytea AS transfer_xlsx,
       position(convert_to('000.00.48.H41.' || (:y - 1) || '.01.VP', 'UTF8')
                IN ioffice.archive_transfer_export(:tr, 'csv')) > 0 AS transfer_csv_lists_file;
SET ioffice.actor = 'cf_spec';
SELECT regress_cf_state(format('SELECT ioffice.archive_transfer_export(%s, %L)', :tr, 'xlsx')) AS specialist_exports;
RESET ioffice.actor;
SELECT regress_cf_state(format('UPDATE ioffice.case_file SET title = %L WHERE id = %s', 'Sửa', :cf_a)) AS owner_update,
       regress_cf_state(format('DELETE FROM ioffice.case_file_document WHERE case_file_id = %s', :cf_a)) AS owner_delete_link,
       regress_cf_state(format('INSERT INTO ioffice.case_file_document (case_file_id, ordinal, document_id, filed_by) SELECT %s, 9, %s, id FROM ioffice.person WHERE login = %L', :cf_a, :d2, 'cf_clerk')) AS owner_insert_link,
       regress_cf_state('TRUNCATE ioffice.case_file_document') AS owner_truncate;
SELECT regress_cf_state(format('INSERT INTO ioffice.case_file_document (case_file_id, ordinal, document_id, filed_by) SELECT %s, 9, %s, id FROM ioffice.person WHERE login = %L', :cf_c, :d3, 'cf_clerk')) AS owner_insert_closed;
SELECT title = 'Hồ sơ quy chế năm trước' AS title_kept FROM ioffice.case_file WHERE id = :cf_a;

DROP ROLE regress_cf_app;
DROP FUNCTION regress_cf_state(text);
