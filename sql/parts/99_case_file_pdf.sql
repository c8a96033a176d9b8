-- ---------------------------------------------------------------------------
-- A case file as one PDF (Decree 30, Appendix VI, III.4g): a first part with
-- the file's heading and its table of contents (mục lục văn bản trong hồ
-- sơ: running number, number and symbol, date, author, subject, pages),
-- then every document's PDF in the order the documents arose.  Made by the
-- signing worker (workers/case_file_pdf_jobs.c) with the PDF helper, which
-- alone reads and writes PDFs (helpers/ioffice_pdf book): a backend never
-- parses nor merges one, and a large file does not hold a session.
--
-- Who: a person who sees the case file (its policy: their agency's, one they
-- are responsible for, or an agency whose clerk they are).  Which
-- documents: those the requester may see (can_see), as case_file_xml() and
-- the views case_file_contents and case_file_list give them; the others are
-- left out without a word or a count, since the row-level security of case
-- files is made so that nobody learns of a document they may not see by a
-- file's contents nor by its counts.  The list is taken at the request, as
-- the requester saw it; the worker only reads those files.
--
-- A document's PDF: its current PDF files (a Word or Excel file converted
-- for signing is replaced by its PDF, which is then current); one without
-- any is listed with "Không có bản PDF".  The book is a copy (bản sao): the
-- documents' signature values are not carried into it (the helper drops
-- them), and its first page says so.
-- ---------------------------------------------------------------------------
CREATE TABLE case_file_pdf_job (
    id            bigserial PRIMARY KEY,
    case_file_id  bigint NOT NULL REFERENCES case_file,
    requested_by  bigint NOT NULL REFERENCES person,
    requested_at  timestamptz NOT NULL DEFAULT now(),
    -- the heading lines and the rows of the table of contents, with the
    -- ids of each row's PDF files, as the requester saw them
    contents      jsonb NOT NULL,
    done_at       timestamptz,
    error         text,
    toc_pages     int,
    page_count    int,
    content       bytea,
    CHECK (done_at IS NOT NULL OR (error IS NULL AND content IS NULL)),
    CHECK (error IS NULL OR content IS NULL),
    -- cancelled (case_file_pdf_cancel), when and by whom: its PDF dropped
    cancelled_at  timestamptz,
    cancelled_by  bigint REFERENCES person
);
ALTER TABLE case_file_pdf_job ALTER COLUMN content SET STORAGE EXTERNAL;
CREATE INDEX case_file_pdf_job_queue_idx ON case_file_pdf_job (id) WHERE done_at IS NULL;
CREATE INDEX case_file_pdf_job_requester_idx ON case_file_pdf_job (requested_by);
CREATE INDEX case_file_pdf_job_done_idx ON case_file_pdf_job (done_at) WHERE done_at IS NOT NULL;
COMMENT ON TABLE case_file_pdf_job IS
  'Case files exported as one PDF (table of contents, then the documents'' PDFs) by the worker: queued, done, or failed with the reason';
REVOKE ALL ON case_file_pdf_job FROM PUBLIC;
-- a person reads the state of their own requests; the PDF through case_file_pdf_result()
ALTER TABLE case_file_pdf_job ENABLE ROW LEVEL SECURITY;
CREATE POLICY visible ON case_file_pdf_job FOR SELECT
    USING (requested_by = (SELECT ioffice.current_person()) OR (SELECT ioffice.is_admin()));
GRANT SELECT (id, case_file_id, requested_by, requested_at, done_at, error, toc_pages, page_count)
    ON case_file_pdf_job TO PUBLIC;
GRANT SELECT (cancelled_at, cancelled_by) ON case_file_pdf_job TO PUBLIC;

-- text for one field of the helper's spec: no tab, no line break
CREATE FUNCTION _pdf_spec_text(t text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$ SELECT regexp_replace(coalesce(t, ''), '[\t\r\n]+', ' ', 'g') $$;
REVOKE ALL ON FUNCTION _pdf_spec_text(text) FROM PUBLIC;

CREATE FUNCTION case_file_pdf(case_file bigint) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor bigint := ioffice.actor();
    v_cf ioffice.case_file;
    v_heads jsonb;
    v_rows jsonb;
    v_id bigint;
BEGIN
    IF case_file_pdf.case_file IS NULL THEN
        RAISE EXCEPTION 'case_file_pdf needs a case file' USING ERRCODE = '22023';
    END IF;
    SELECT c.* INTO v_cf FROM ioffice.case_file c
     WHERE c.id = case_file_pdf.case_file
       AND (c.agency_id = ioffice._person_agency()
            OR c.responsible_id = v_actor
            OR c.agency_id = ANY (ioffice._clerk_agencies()));
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown case file %', case_file_pdf.case_file USING ERRCODE = '42704';
    END IF;
    SELECT jsonb_build_array(
             jsonb_build_array('title', 'MỤC LỤC VĂN BẢN TRONG HỒ SƠ'),
             jsonb_build_array('line', 'Hồ sơ số: ' || v_cf.code),
             jsonb_build_array('title', v_cf.title),
             jsonb_build_array('line', 'Thời hạn bảo quản: ' || v_cf.retention
                                       || ' — Người lập hồ sơ: ' || p.full_name),
             jsonb_build_array('line', 'Thời gian: từ ngày ' || to_char(v_cf.opened_on, 'DD/MM/YYYY')
                                       || coalesce(' đến ngày ' || to_char(v_cf.closed_on, 'DD/MM/YYYY'), '')),
             jsonb_build_array('line', 'BẢN SAO do ' || me.full_name || ' lập ngày '
                                       || to_char((now() AT TIME ZONE ioffice.timezone())::date, 'DD/MM/YYYY')
                                       || ', gồm các văn bản người lập được xem. Chữ ký số của văn bản '
                                       || 'không còn trong bản sao; bản gốc có chữ ký số lưu trong hệ thống.'))
      INTO v_heads
      FROM ioffice.person p, ioffice.person me
     WHERE p.id = v_cf.responsible_id AND me.id = v_actor;
    -- case_file_contents is read as this function's owner: can_see() is the
    -- requester's row-level security
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'ordinal', v.ordinal,
               'symbol', v.symbol,
               'date', to_char(v.document_date, 'DD/MM/YYYY'),
               'organ', v.organ_name,
               -- the type's name and the abstract (tên loại và trích yếu), the
               -- name once when the abstract begins with it
               'subject', CASE WHEN lower(v.subject) LIKE lower(v.type_name) || '%' THEN v.subject
                               ELSE concat_ws(' ', v.type_name, v.subject) END,
               'files', (SELECT coalesce(jsonb_agg(f.id ORDER BY f.id), '[]')
                           FROM ioffice.file f
                          WHERE f.document_id = v.document_id AND f.kind = 'pdf'
                            AND f.superseded_at IS NULL AND f.removed_at IS NULL))
             ORDER BY v.arose_on, v.number, v.ordinal), '[]')
      INTO v_rows
      FROM ioffice.case_file_contents v
     WHERE v.case_file_id = v_cf.id AND ioffice.can_see(v.document_id);
    INSERT INTO ioffice.case_file_pdf_job (case_file_id, requested_by, contents)
    VALUES (v_cf.id, v_actor, jsonb_build_object('heads', v_heads, 'rows', v_rows))
    RETURNING id INTO v_id;
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION case_file_pdf(bigint) IS
  'Asks the worker for a case file as one PDF (its table of contents, then its documents'' PDFs in the order they arose, those the caller may see); returns the job, whose PDF case_file_pdf_result() gives';

-- The worker's input for a job: the helper's spec (helpers/ioffice_pdf book)
-- and the files, in order.
CREATE FUNCTION _case_file_pdf_spec(job bigint) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT string_agg(line, E'\n' ORDER BY part, n) || E'\n'
      FROM (SELECT 1 AS part, h.n, ioffice._pdf_spec_text(h.v->>0) || E'\t' || ioffice._pdf_spec_text(h.v->>1) AS line
              FROM ioffice.case_file_pdf_job j,
                   jsonb_array_elements(j.contents->'heads') WITH ORDINALITY h(v, n)
             WHERE j.id = _case_file_pdf_spec.job
            UNION ALL
            SELECT 2, c.n, c.line
              FROM (VALUES (1, E'col\t5\t1\tSố TT'), (2, E'col\t14\t1\tSố, ký hiệu văn bản'),
                           (3, E'col\t11\t1\tNgày tháng văn bản'), (4, E'col\t17\t0\tTác giả văn bản'),
                           (5, E'col\t35\t0\tTên loại và trích yếu nội dung văn bản'),
                           (6, E'pages\t9\tTrang số'), (7, E'nopdf\tKhông có bản PDF'),
                           (8, E'unreadable\tBản PDF không đọc được')) c(n, line)
            UNION ALL
            SELECT 3, r.n, concat_ws(E'\t', 'doc', jsonb_array_length(r.v->'files'), r.v->>'ordinal',
                                     ioffice._pdf_spec_text(r.v->>'symbol'), ioffice._pdf_spec_text(r.v->>'date'),
                                     ioffice._pdf_spec_text(r.v->>'organ'),
                                     ioffice._pdf_spec_text(r.v->>'subject'))
              FROM ioffice.case_file_pdf_job j,
                   jsonb_array_elements(j.contents->'rows') WITH ORDINALITY r(v, n)
             WHERE j.id = _case_file_pdf_spec.job) s
$$;
REVOKE ALL ON FUNCTION _case_file_pdf_spec(bigint) FROM PUBLIC;

CREATE FUNCTION _case_file_pdf_files(job bigint) RETURNS TABLE (file bigint, content bytea)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT f.id, f.content
      FROM ioffice.case_file_pdf_job j,
           jsonb_array_elements(j.contents->'rows') WITH ORDINALITY r(v, n),
           jsonb_array_elements_text(r.v->'files') WITH ORDINALITY x(id, m)
      JOIN ioffice.file f ON f.id = x.id::bigint
     WHERE j.id = _case_file_pdf_files.job
     ORDER BY r.n, x.m
$$;
REVOKE ALL ON FUNCTION _case_file_pdf_files(bigint) FROM PUBLIC;

-- The worker's answer: the PDF and its pages, or why there is none.
CREATE FUNCTION _case_file_pdf_done(job bigint, pdf bytea, toc_pages int, page_count int, error text)
RETURNS void
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE ioffice.case_file_pdf_job j
       SET done_at = now(), content = _case_file_pdf_done.pdf, error = _case_file_pdf_done.error,
           toc_pages = _case_file_pdf_done.toc_pages, page_count = _case_file_pdf_done.page_count
     WHERE j.id = _case_file_pdf_done.job AND j.done_at IS NULL
$$;
REVOKE ALL ON FUNCTION _case_file_pdf_done(bigint, bytea, int, int, text) FROM PUBLIC;

-- The PDF of a request of the caller's, once the worker made it; recorded
-- in the access log as an export of the case file.
CREATE FUNCTION case_file_pdf_result(job bigint) RETURNS bytea
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor bigint := ioffice.actor();
    v_job ioffice.case_file_pdf_job;
BEGIN
    IF case_file_pdf_result.job IS NULL THEN
        RAISE EXCEPTION 'case_file_pdf_result needs a job' USING ERRCODE = '22023';
    END IF;
    SELECT * INTO v_job FROM ioffice.case_file_pdf_job j
     WHERE j.id = case_file_pdf_result.job AND j.requested_by = v_actor;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown case file PDF %', case_file_pdf_result.job USING ERRCODE = '42704';
    END IF;
    IF v_job.cancelled_at IS NOT NULL THEN
        RAISE EXCEPTION 'the PDF of case file % was cancelled', v_job.case_file_id
            USING ERRCODE = '55000';
    END IF;
    IF v_job.done_at IS NULL THEN
        RAISE EXCEPTION 'the PDF of case file % is not made yet', v_job.case_file_id
            USING ERRCODE = '55000', HINT = 'The worker makes it; try again later.';
    END IF;
    IF v_job.error IS NOT NULL THEN
        RAISE EXCEPTION 'the PDF of case file % could not be made', v_job.case_file_id
            USING ERRCODE = '55000', DETAIL = v_job.error;
    END IF;
    -- a document in it destroyed by a recall since (Decree 30 art. 18.4b)
    -- is not handed out again inside the PDF
    IF EXISTS (SELECT 1 FROM jsonb_array_elements(v_job.contents->'rows') r(v),
                             jsonb_array_elements_text(r.v->'files') x(id)
                        JOIN ioffice.file f ON f.id = x.id::bigint
                WHERE f.erased_at IS NOT NULL) THEN
        RAISE EXCEPTION 'the PDF of case file % holds a document destroyed by a recall since it was made',
              v_job.case_file_id
            USING ERRCODE = '55000',
                  DETAIL = 'A received document whose recall its clerk accepted is destroyed (Decree 30 art. 18.4b), and with it every copy of its bytes.',
                  HINT = 'Ask for the case file''s PDF again (case_file_pdf): it leaves the destroyed document out.';
    END IF;
    PERFORM ioffice._log_access('export', NULL, NULL, v_job.case_file_id, 'pdf');
    RETURN v_job.content;
END
$$;
COMMENT ON FUNCTION case_file_pdf_result(bigint) IS
  'The PDF of a case file asked for with case_file_pdf(), to the person who asked, once the worker made it (55000 before, or with the reason it failed); recorded in the access log';

-- ---------------------------------------------------------------------------
-- A case file's PDF (case_file_pdf_job) may be cancelled by the person who
-- asked for it or by the case file's responsible person: one still queued
-- is not made (the worker's answer for it is dropped, _case_file_pdf_done
-- takes only a job not done), one made loses its PDF.  A finished request
-- (made, failed or cancelled) is removed by the worker once it is older
-- than ioffice.export_retention (default 7 days; 0 keeps them), in batches
-- (_export_cleanup, workers/retention_jobs.c): a book of a case file can
-- weigh hundreds of MB, and a person who wants it again asks again.
-- ---------------------------------------------------------------------------

CREATE FUNCTION case_file_pdf_cancel(job bigint) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor bigint := ioffice.actor();
    v_job ioffice.case_file_pdf_job;
BEGIN
    IF case_file_pdf_cancel.job IS NULL THEN
        RAISE EXCEPTION 'case_file_pdf_cancel needs a job' USING ERRCODE = '22023';
    END IF;
    SELECT * INTO v_job FROM ioffice.case_file_pdf_job j
     WHERE j.id = case_file_pdf_cancel.job FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown case file PDF %', case_file_pdf_cancel.job USING ERRCODE = '42704';
    END IF;
    IF v_job.requested_by <> v_actor
       AND NOT EXISTS (SELECT 1 FROM ioffice.case_file c
                        WHERE c.id = v_job.case_file_id AND c.responsible_id = v_actor) THEN
        RAISE EXCEPTION 'only the person who asked for the PDF of case file %, or its responsible person, may cancel it',
            v_job.case_file_id USING ERRCODE = '42501';
    END IF;
    IF v_job.cancelled_at IS NOT NULL THEN
        RAISE EXCEPTION 'the PDF of case file % was cancelled already', v_job.case_file_id
            USING ERRCODE = '55000';
    END IF;
    UPDATE ioffice.case_file_pdf_job j
       SET cancelled_at = now(), cancelled_by = v_actor, done_at = coalesce(j.done_at, now()),
           content = NULL
     WHERE j.id = v_job.id;
END
$$;
COMMENT ON FUNCTION case_file_pdf_cancel(bigint) IS
  'Cancels a request of case_file_pdf(): by the person who asked or the case file''s responsible person; a queued PDF is not made, a made one is dropped (55000 when cancelled already)';

-- The worker's clean-up: at most batch finished requests older than
-- retention removed, the oldest first; returns how many (the worker calls
-- again at once when the batch was full).
CREATE FUNCTION _export_cleanup(retention interval, batch int DEFAULT 100) RETURNS int
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
    WITH gone AS (
        DELETE FROM ioffice.case_file_pdf_job j
         WHERE j.id IN (SELECT o.id FROM ioffice.case_file_pdf_job o
                         WHERE o.done_at IS NOT NULL
                           AND o.done_at < now() - _export_cleanup.retention
                         ORDER BY o.done_at LIMIT _export_cleanup.batch
                           FOR UPDATE SKIP LOCKED)
        RETURNING 1)
    SELECT count(*)::int FROM gone
$$;
REVOKE ALL ON FUNCTION _export_cleanup(interval, int) FROM PUBLIC;
