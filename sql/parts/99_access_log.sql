-- ---------------------------------------------------------------------------
-- The access log (Decree 30, Appendix VI, III.5a "lịch sử truy cập và xem văn
-- bản", III.6l "lưu lịch sử truy cập và sử dụng văn bản, tài liệu") and the
-- statistics built on it (III.6a-b).
--
-- One row per call of a function that shows a document or hands out its
-- content: document_detail() and trail() (views), file_content() and
-- file_copy() (downloads; the copy carries the download mark, III.6k),
-- trail_export() and case_file_xml() (exports).  Lists (outgoing_list, the
-- registers, search) are not views of a document and write nothing: the
-- log costs a list nothing, and there is no trigger on SELECT.
--
-- Cheap by design: a plain append-only heap written by one INSERT (no
-- sequence, no primary key, no foreign key check, no audit chain lock: a
-- view must not wait for the document's chain, nor serialise the readers
-- of one document), a btree on the document for the per-document history
-- and counts, a BRIN on the time for the statistics of a period (rows come
-- in time order, so a BRIN of a few pages covers years).  Not UNLOGGED: the
-- law asks the history to be kept, a crash must not lose it.  The rows are
-- in the same transaction as the call: a view in a transaction that rolls
-- back left nothing behind but what the client already read, and a read-only
-- transaction (a standby) cannot view through these functions (25006).
--
-- Append-only as the audit trail (the same trigger), but not hash-chained:
-- III.5a asks the history to be kept with the document, not sealed; the
-- chain's per-document lock and hashing would cost each view more than the
-- view itself.  See the report of branch access_log for the trade-off.
-- ---------------------------------------------------------------------------

CREATE TABLE access_log (
    at           timestamptz NOT NULL DEFAULT now(),
    person_id    bigint NOT NULL,
    action       text NOT NULL CHECK (action IN ('view', 'trail', 'download', 'copy', 'export')),
    document_id  bigint,
    file_id      bigint,
    case_file_id bigint,
    -- the export's format, and such
    detail       text,
    CHECK (document_id IS NOT NULL OR case_file_id IS NOT NULL
           OR (action = 'export' AND params IS NOT NULL)),
    -- an export of a register or a report (no document, no case file):
    -- which one, its parameters, and the rows the file held
    params       jsonb
);
-- no foreign keys: a check per view for rows that are never deleted
CREATE INDEX access_log_document_idx ON access_log (document_id) WHERE document_id IS NOT NULL;
CREATE INDEX access_log_at_idx ON access_log USING brin (at);
COMMENT ON TABLE access_log IS
  'Who viewed, downloaded or exported which document or file, when (Decree 30, Appendix VI, III.5a, III.6l); append-only, one row per call';
COMMENT ON COLUMN access_log.action IS
  'view (document_detail), trail (trail), download (file_content), copy (file_copy: the marked copy), export (trail_export, case_file_xml, case_file_pdf_result, search_export: detail search:<format>; register_export, followup_export, processing_report_export, case_file_list_export: detail <report>:<format>, what was asked in params)';
-- Append-only, but for the rows older than ioffice.access_log_retention
-- (default 0: kept for ever), which the worker deletes in batches through
-- _access_log_prune(), granted to nobody (extension/access_log.c): the
-- trigger lets through the deletes of that function alone, never an UPDATE,
-- and a TRUNCATE never.
CREATE FUNCTION _access_log_append_only() RETURNS trigger
    AS 'MODULE_PATHNAME', 'ioffice_access_log_append_only' LANGUAGE C;
REVOKE ALL ON FUNCTION _access_log_append_only() FROM PUBLIC;
CREATE FUNCTION _access_log_prune(retention interval, batch int) RETURNS int
    AS 'MODULE_PATHNAME', 'ioffice_access_log_prune' LANGUAGE C VOLATILE STRICT
    SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION _access_log_prune(interval, int) FROM PUBLIC;
COMMENT ON FUNCTION _access_log_prune(interval, int) IS
  'The worker''s pruning of the access log: at most batch rows older than retention deleted; returns how many';
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON access_log
    FOR EACH ROW EXECUTE FUNCTION _access_log_append_only();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON access_log
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_append_only();
REVOKE ALL ON access_log FROM PUBLIC;
GRANT SELECT ON access_log TO PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('access_log', '');

-- Who reads the log: a person their own rows, and the rows of the documents
-- they may see (the audit trail's rule: the history of access is part of the
-- document's history); an admin every row.  A case file's export row
-- (no document) is its taker's and the admins'.
ALTER TABLE access_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY visible ON access_log FOR SELECT
    USING (person_id = (SELECT ioffice.current_person())
           OR (SELECT ioffice.is_admin())
           OR access_log.document_id IN (SELECT unnest(ioffice._task_documents()))
           OR EXISTS (SELECT 1 FROM ioffice.document d
                      WHERE d.id = access_log.document_id
                        AND (d.drafter_id = (SELECT ioffice.current_person())
                             OR d.agency_id = ANY ((SELECT ioffice._clerk_agencies())::bigint[]))));

-- The one writer (extension/access_log.c): the acting person, now.  Not
-- granted: the functions that show a document call it once they have
-- shown it (SECURITY DEFINER, as the owner).
CREATE FUNCTION _log_access(action text, doc bigint, file bigint DEFAULT NULL,
                            case_file bigint DEFAULT NULL, detail text DEFAULT NULL)
    RETURNS void
    AS 'MODULE_PATHNAME', 'ioffice_log_access_sql'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION _log_access(text, bigint, bigint, bigint, text) FROM PUBLIC;

-- The export of a case file is a SECURITY INVOKER function (the caller's
-- row-level security decides its documents); it logs through this, which
-- writes only under the caller's own name, only an export it knows (the
-- XML, the table of contents as xlsx or csv), and
-- only of a case file the caller sees (as the policy of case_file says):
-- anyone may call it, and what it writes is never removed.
CREATE FUNCTION _log_case_file_export(case_file bigint, detail text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF detail IS NULL OR detail NOT IN ('xml', 'xlsx', 'csv') THEN
        RAISE EXCEPTION 'unknown export "%" of a case file', pg_catalog.left(detail, 60)
            USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ioffice.case_file c
                    WHERE c.id = _log_case_file_export.case_file
                      AND (c.agency_id = ioffice._person_agency()
                           OR c.responsible_id = ioffice.current_person()
                           OR c.agency_id = ANY (ioffice._clerk_agencies()))) THEN
        RAISE EXCEPTION 'unknown case file %', _log_case_file_export.case_file
            USING ERRCODE = '42704';
    END IF;
    PERFORM ioffice._log_access('export', NULL, NULL, case_file, detail);
END
$$;

-- The export of a register or a report (register_export, followup_export,
-- processing_report_export, case_file_list_export) by a person: one row, no
-- document (the file is a list, as a list's view is not logged per
-- document), detail '<report>:<format>' as the search exports' rows say
-- 'search:<format>', and in params what was asked (the register or agency,
-- the year or the dates) and how many rows the file held.  The report
-- functions but register_export are SECURITY INVOKER (their views' row-level
-- security is the caller's), so this is callable by anyone, as
-- _log_case_file_export is: it writes only under the caller's own name,
-- only a report it knows, in a format the exports write.
CREATE FUNCTION _log_report_export(report text, format text, params jsonb) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_allowed text[];
    v_unknown text;
BEGIN
    IF report IS NULL OR report NOT IN ('register', 'followup', 'processing_report', 'case_file_list') THEN
        RAISE EXCEPTION 'unknown report "%"', pg_catalog.left(report, 60) USING ERRCODE = '22023';
    END IF;
    IF format IS NULL OR format NOT IN ('xlsx', 'csv') THEN
        RAISE EXCEPTION 'unknown format "%" of an export', pg_catalog.left(format, 60)
            USING ERRCODE = '22023';
    END IF;
    IF params IS NULL OR jsonb_typeof(params) <> 'object' THEN
        RAISE EXCEPTION 'the parameters of an export are a JSON object' USING ERRCODE = '22023';
    END IF;
    -- bounded: what the export functions pass (extension/register_export.c,
    -- report_export.c), a few scalars, and no more; a row of the log is
    -- kept for ever and anyone may call this
    IF octet_length(params::text) > 1024 THEN
        RAISE EXCEPTION 'the parameters of an export are too long (% bytes)', octet_length(params::text)
            USING ERRCODE = '54000', DETAIL = 'At most 1024 bytes of JSON.';
    END IF;
    v_allowed := CASE report
                     WHEN 'register' THEN ARRAY['register', 'agency', 'direction', 'code', 'year', 'rows']
                     WHEN 'processing_report' THEN ARRAY['direction', 'from', 'to', 'rows']
                     ELSE ARRAY['agency', 'year', 'rows'] END;
    SELECT k INTO v_unknown FROM jsonb_object_keys(params) k WHERE k <> ALL (v_allowed) ORDER BY k LIMIT 1;
    IF v_unknown IS NOT NULL THEN
        RAISE EXCEPTION 'unknown parameter "%" of the export of a %', pg_catalog.left(v_unknown, 60), report
            USING ERRCODE = '22023', DETAIL = format('Known: %s.', array_to_string(v_allowed, ', '));
    END IF;
    IF EXISTS (SELECT 1 FROM jsonb_each(params) e
                WHERE jsonb_typeof(e.value) NOT IN ('number', 'string', 'null')
                   OR (jsonb_typeof(e.value) = 'string' AND char_length(e.value #>> '{}') > 100)) THEN
        RAISE EXCEPTION 'the parameters of an export are numbers, dates or short texts'
            USING ERRCODE = '22023', DETAIL = 'No object, array or boolean; texts of at most 100 characters.';
    END IF;
    INSERT INTO ioffice.access_log (person_id, action, detail, params)
    VALUES (ioffice.actor(), 'export', report || ':' || format, params);
END
$$;

-- The document as the app shows it on its page (the detail view): the row
-- of table document, if the actor may see it (42704 otherwise, as for one
-- that does not exist); logged as a view.
CREATE FUNCTION document_detail(doc bigint) RETURNS ioffice.document
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_doc ioffice.document;
BEGIN
    PERFORM ioffice.actor();
    IF doc IS NULL THEN
        RAISE EXCEPTION 'document_detail needs a document' USING ERRCODE = '22023';
    END IF;
    PERFORM ioffice._require_document(doc);
    SELECT * INTO v_doc FROM ioffice.document d WHERE d.id = doc;
    PERFORM ioffice._log_access('view', doc);
    RETURN v_doc;
END
$$;
COMMENT ON FUNCTION document_detail(bigint) IS
  'A document''s row as its page shows it, for whoever may see it; recorded in the access log as a view';

-- A file's bytes, for whoever may see its document (the stored original,
-- unchanged); recorded as a download.  file_copy() gives the marked copy.
CREATE FUNCTION file_content(file bigint) RETURNS bytea
    AS 'MODULE_PATHNAME', 'ioffice_file_content'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION file_content(bigint) IS
  'Download a file: its stored bytes, for whoever may see its document; recorded in the access log';

-- ---------------------------------------------------------------------------
-- Counts and statistics (III.6a-b).  security_invoker views: each reader
-- counts the rows the row-level security lets them read, so a count never
-- tells of a document (or of its readers) the reader may not see; an admin
-- counts everything.
-- ---------------------------------------------------------------------------

-- Accesses per document
CREATE VIEW document_access_count WITH (security_invoker = true) AS
SELECT a.document_id,
       count(*) FILTER (WHERE a.action IN ('view', 'trail')) AS views,
       count(*) FILTER (WHERE a.action IN ('download', 'copy')) AS downloads,
       count(*) FILTER (WHERE a.action = 'export') AS exports,
       count(*) AS accesses,
       count(DISTINCT a.person_id) AS people,
       max(a.at) AS last_at
FROM ioffice.access_log a
WHERE a.document_id IS NOT NULL
GROUP BY a.document_id;
COMMENT ON VIEW document_access_count IS
  'Số lượt truy cập từng văn bản (Decree 30, Appendix VI, III.6a): views, downloads, exports and people per document, of the rows the reader may read';
GRANT SELECT ON document_access_count TO PUBLIC;

-- Accesses per person
CREATE VIEW person_access_count WITH (security_invoker = true) AS
SELECT a.person_id,
       count(*) FILTER (WHERE a.action IN ('view', 'trail')) AS views,
       count(*) FILTER (WHERE a.action IN ('download', 'copy')) AS downloads,
       count(*) FILTER (WHERE a.action = 'export') AS exports,
       count(*) AS accesses,
       count(DISTINCT a.document_id) AS documents,
       max(a.at) AS last_at
FROM ioffice.access_log a
GROUP BY a.person_id;
COMMENT ON VIEW person_access_count IS
  'Accesses per person (views, downloads, exports, documents), of the rows the reader may read: an admin sees everyone''s, a person their own and those on documents they may see';
GRANT SELECT ON person_access_count TO PUBLIC;

-- Documents by month (of their creation, in ioffice.timezone), agency,
-- direction, type and state (III.6a: thống kê số lượng văn bản)
CREATE VIEW document_statistics WITH (security_invoker = true) AS
SELECT date_trunc('month', d.created_at AT TIME ZONE ioffice.timezone())::date AS month,
       d.agency_id, d.direction, d.doc_type, d.state,
       count(*) AS documents
FROM ioffice.document d
GROUP BY 1, 2, 3, 4, 5;
COMMENT ON VIEW document_statistics IS
  'Thống kê số lượng văn bản (Decree 30, Appendix VI, III.6a): documents by month, agency, direction, type and state, of those the reader may see';
GRANT SELECT ON document_statistics TO PUBLIC;

-- Accesses to the system by month and kind (III.6b: thống kê số lượt truy
-- cập vào Hệ thống theo yêu cầu của người quản lý, quản trị): for the admins
-- only, others read no row; the active people of a month are those who
-- viewed, downloaded or exported anything, or acted (the audit trail).
CREATE VIEW access_statistics WITH (security_invoker = true) AS
SELECT date_trunc('month', a.at AT TIME ZONE ioffice.timezone())::date AS month,
       a.action,
       count(*) AS accesses,
       count(DISTINCT a.person_id) AS people,
       count(DISTINCT a.document_id) AS documents
FROM ioffice.access_log a
WHERE (SELECT ioffice.is_admin())
GROUP BY 1, 2;
COMMENT ON VIEW access_statistics IS
  'Thống kê số lượt truy cập vào Hệ thống (Decree 30, Appendix VI, III.6b): accesses, people and documents by month and kind of access; admins only';
GRANT SELECT ON access_statistics TO PUBLIC;

CREATE VIEW active_people WITH (security_invoker = true) AS
SELECT x.month, count(DISTINCT x.person_id) AS people
FROM (SELECT date_trunc('month', a.at AT TIME ZONE ioffice.timezone())::date AS month, a.person_id
        FROM ioffice.access_log a
      UNION ALL
      SELECT date_trunc('month', u.at AT TIME ZONE ioffice.timezone())::date, u.actor_id
        FROM ioffice.audit u WHERE u.actor_id IS NOT NULL) x
WHERE (SELECT ioffice.is_admin())
GROUP BY x.month;
COMMENT ON VIEW active_people IS
  'People who used the system each month (viewed, downloaded, exported or acted); admins only';
GRANT SELECT ON active_people TO PUBLIC;

-- A PDF copy to download or print with the download mark (III.6k): who took
-- it and when, at the foot of every page, written by the PDF helper in an
-- incremental update of a copy (the stored file is unchanged, its
-- signatures verify as earlier revisions); recorded as a copy.  22023 for a
-- file that is not a PDF (file_content() gives it as stored).
CREATE FUNCTION file_copy(file bigint) RETURNS bytea
    AS 'MODULE_PATHNAME', 'ioffice_file_copy'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION file_copy(bigint) IS
  'Download or print a PDF file as a copy marked with who took it and when (Decree 30, Appendix VI, III.6k); the stored file is unchanged; recorded in the access log';
