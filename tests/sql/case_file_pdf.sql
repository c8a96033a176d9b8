-- A case file as one PDF (issue 19 item 1, Decree 30 appendix VI III.4g):
-- who may ask (a person who sees the case file), which documents are in it
-- (those the asker may see, nothing said of the others), the job the worker
-- makes it in, and fetching it (only the asker; 55000 before it is made or
-- when it failed; an export in the access log).  The PDF itself is made by
-- the worker and checked in tests/t/043_case_file_pdf.pl.
SET client_min_messages = warning;
\set VERBOSITY terse
SELECT ioffice.add_agency('UBND xã Bản Sao', 'UBND', '000.00.51.H41') AS bs \gset
SELECT ioffice.add_department(:bs, 'Văn phòng Bản Sao', 'VP') AS bs_vp \gset
SELECT ioffice.add_department(:bs, 'Phòng Khác Bản Sao', 'PK') AS bs_pk \gset
SELECT ioffice.add_agency('UBND xã Ngoài Bản Sao', 'UBNDN', '000.00.52.H41') AS bs2 \gset
SELECT ioffice.add_person('regress_cfp_spec', 'Chuyên viên Bản Sao', 'Chuyên viên', :bs_vp, '{specialist}') > 0
   AND ioffice.add_person('regress_cfp_other', 'Chuyên viên Phòng Khác', 'Chuyên viên', :bs_pk, '{specialist}') > 0
   AND ioffice.add_person('regress_cfp_clerk', 'Văn thư Bản Sao', 'Văn thư', :bs, '{clerk}') > 0
   AND ioffice.add_person('regress_cfp_xa', 'Văn thư Ngoài', 'Văn thư', :bs2, '{clerk}') > 0 AS people_added;
CREATE FUNCTION public.regress_cfp_state(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN others THEN
    RETURN SQLSTATE;
END
$$;
CREATE FUNCTION public.regress_cfp_detail(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_detail text;
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN others THEN
    GET STACKED DIAGNOSTICS v_detail = PG_EXCEPTION_DETAIL;
    RETURN v_detail;
END
$$;
SELECT extract(year FROM now() AT TIME ZONE ioffice.timezone())::int AS y \gset

-- two documents of the specialist (one with a PDF, one without) and one of
-- another department the specialist may not see
SET ioffice.actor = 'regress_cfp_spec';
SELECT ioffice.create_outgoing('QĐ', 'Quyết định có bản PDF') AS d1 \gset
SELECT ioffice.attach(:d1, 'qd.pdf', content) IS NOT NULL AS attached FROM pdf;
SELECT ioffice.create_outgoing('TTr', 'Tờ trình không có bản PDF') AS d2 \gset
SET ioffice.actor = 'regress_cfp_other';
SELECT ioffice.create_outgoing('BC', 'Báo cáo riêng phòng khác') AS d3 \gset
SET ioffice.actor = 'regress_cfp_clerk';
SELECT ioffice.add_case_file(:bs, :y, '01.BS', 'Hồ sơ bản sao', '10', 'regress_cfp_spec') AS cf \gset
SELECT ioffice.file_into(:cf, :d1), ioffice.file_into(:cf, :d2), ioffice.file_into(:cf, :d3);
SET ioffice.actor = 'regress_cfp_xa';
SELECT ioffice.add_case_file(:bs2, :y, '01.NG', 'Hồ sơ xã ngoài', '10', 'regress_cfp_xa') AS cf_out \gset

CREATE ROLE regress_cfp_app IN ROLE ioffice_app;
SET ROLE regress_cfp_app;

-- the errors: no actor, no case file, one unknown or not visible
RESET ioffice.actor;
SELECT regress_cfp_state(format('SELECT ioffice.case_file_pdf(%s)', :cf)) AS no_actor;
SET ioffice.actor = 'regress_cfp_spec';
SELECT regress_cfp_state('SELECT ioffice.case_file_pdf(NULL)') AS null_case_file,
       regress_cfp_state('SELECT ioffice.case_file_pdf(-1)') AS unknown_case_file,
       regress_cfp_state(format('SELECT ioffice.case_file_pdf(%s)', :cf_out)) AS other_agency_case_file,
       regress_cfp_state('SELECT ioffice.case_file_pdf_result(NULL)') AS null_job,
       regress_cfp_state('SELECT ioffice.case_file_pdf_result(-1)') AS unknown_job;

-- the specialist asks: a job, theirs, queued
SELECT ioffice.case_file_pdf(:cf) AS job \gset
SELECT count(*) = 1 AS one_job_seen, bool_and(done_at IS NULL AND error IS NULL) AS queued,
       bool_and(case_file_id = :cf) AS of_the_case_file
FROM ioffice.case_file_pdf_job;
SELECT regress_cfp_state('SELECT contents FROM ioffice.case_file_pdf_job') AS contents_not_granted,
       regress_cfp_state('SELECT content FROM ioffice.case_file_pdf_job') AS content_not_granted;
-- not made yet
SELECT regress_cfp_state(format('SELECT ioffice.case_file_pdf_result(%s)', :job)) AS not_made_yet;
-- another person sees neither the job nor its PDF
SET ioffice.actor = 'regress_cfp_other';
SELECT count(*) = 0 AS others_see_no_job FROM ioffice.case_file_pdf_job;
SELECT regress_cfp_state(format('SELECT ioffice.case_file_pdf_result(%s)', :job)) AS others_fetch;
-- nor does a person of another agency ask for it
SET ioffice.actor = 'regress_cfp_xa';
SELECT regress_cfp_state(format('SELECT ioffice.case_file_pdf(%s)', :cf)) AS outsider_asks;
-- the clerk asks too: their own job
SET ioffice.actor = 'regress_cfp_clerk';
SELECT ioffice.case_file_pdf(:cf) AS job_clerk \gset
SELECT count(*) = 1 AS clerk_sees_own_job FROM ioffice.case_file_pdf_job;
RESET ROLE;

-- what each asked for, as each saw it: the specialist's rows leave the
-- other department's report out (no count of it either), the clerk's have
-- all three; in the order the documents arose; the one without a PDF has
-- no file
SELECT jsonb_array_length(contents->'rows') = 2 AS spec_two_rows,
       NOT (contents::text LIKE '%Báo cáo riêng%') AS hidden_left_out,
       (contents->'rows'->0->>'subject') LIKE '%Quyết định có bản PDF' AS first_subject,
       jsonb_array_length(contents->'rows'->0->'files') = 1 AS first_has_pdf,
       jsonb_array_length(contents->'rows'->1->'files') = 0 AS second_has_none,
       contents->'heads' @> '[["title", "Hồ sơ bản sao"]]' AS title_in_heads,
       contents::text LIKE '%BẢN SAO%' AS says_copy
FROM ioffice.case_file_pdf_job WHERE id = :job;
SELECT jsonb_array_length(contents->'rows') = 3 AS clerk_three_rows
FROM ioffice.case_file_pdf_job WHERE id = :job_clerk;
-- the helper's spec: the heading lines, the columns, a row per document
SELECT ioffice._case_file_pdf_spec(:job) LIKE E'title\tMỤC LỤC VĂN BẢN TRONG HỒ SƠ\n%' AS spec_starts,
       ioffice._case_file_pdf_spec(:job) LIKE E'%\npages\t9\tTrang số\n%' AS spec_pages_column,
       (SELECT count(*) FROM regexp_matches(ioffice._case_file_pdf_spec(:job), E'\ndoc\t', 'g')) = 2
         AS spec_two_docs,
       (SELECT count(*) = 1 FROM ioffice._case_file_pdf_files(:job)) AS one_file_sent;
-- every row has all its cells, a draft without number nor date too
SELECT bool_and(array_length(string_to_array(l, E'\t'), 1) = 7) AS spec_rows_whole
FROM regexp_split_to_table(ioffice._case_file_pdf_spec(:job), E'\n') l WHERE l LIKE E'doc\t%';

-- the worker's outcomes: a failure is told with its reason; a PDF is given
-- to its asker and logged as an export of the case file
SELECT ioffice._case_file_pdf_done(:job_clerk, NULL, NULL, NULL, 'the PDF helper was killed');
SELECT ioffice._case_file_pdf_done(:job, '\x255044462d'::bytea, 1, 2, NULL);
SET ROLE regress_cfp_app;
SET ioffice.actor = 'regress_cfp_clerk';
SELECT regress_cfp_state(format('SELECT ioffice.case_file_pdf_result(%s)', :job_clerk)) AS failed_job;
SELECT regress_error(format('SELECT ioffice.case_file_pdf_result(%s)', :job_clerk), :cf) AS failed_message,
       regress_cfp_detail(format('SELECT ioffice.case_file_pdf_result(%s)', :job_clerk)) AS failed_detail;
SET ioffice.actor = 'regress_cfp_spec';
SELECT ioffice.case_file_pdf_result(:job) = '\x255044462d'::bytea AS pdf_given;
SELECT count(*) = 1 AS export_logged FROM ioffice.access_log
WHERE action = 'export' AND case_file_id = :cf AND detail = 'pdf';

-- search results as docx and pdf (III.6h), each document in the file an
-- export in the access log; the PDF's content is checked in 043
SELECT substr(ioffice.search_export('Quyết định có bản PDF', '{}', 'pdf'), 1, 5) = '\x255044462d'::bytea
         AS search_pdf,
       substr(ioffice.search_export('Quyết định có bản PDF', '{}', 'docx'), 1, 2) = '\x504b'::bytea
         AS search_docx;
SELECT count(*) FILTER (WHERE detail = 'search:pdf') >= 1 AND count(*) FILTER (WHERE detail = 'search:docx') >= 1
         AS search_exports_logged,
       bool_and(document_id IS NOT NULL) AS logged_per_document
FROM ioffice.access_log WHERE action = 'export' AND detail LIKE 'search:%';
RESET ROLE;
RESET ioffice.actor;

DROP ROLE regress_cfp_app;
DROP FUNCTION regress_cfp_state(text);
DROP FUNCTION regress_cfp_detail(text);
