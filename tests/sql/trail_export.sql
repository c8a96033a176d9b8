-- trail_export(): the processing trail as a file a clerk opens.  The CSV is
-- read back with COPY's own CSV parser and compared with trail(); the xlsx
-- is checked for its container here (its cells are read back by openpyxl in
-- tests/t/003_trail_export.pl).
\set VERBOSITY default
\set SHOW_CONTEXT never

-- a document whose request and processing notes need CSV quoting
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('CV', 'V/v xuất quá trình xử lý văn bản') AS doc \gset
SELECT ioffice.attach(:doc, 'xuat_qua_trinh.pdf', content) IS NOT NULL AS attached FROM pdf;
SELECT ioffice.act(:doc, 'submit', 'dai', E'Kính gửi anh Đại, xem "dự thảo"\nrồi cho ý kiến',
                   '{"deadline": "2030-12-31"}');
SET ioffice.actor = 'dai';
SELECT ioffice.act(:doc, 'approve', 'regress_thuy', 'Đồng ý; đề nghị phát hành');
SET ioffice.actor = 'regress_thuy';
SELECT ioffice.act(:doc, 'issue', NULL, 'Đã phát hành, số "vào sổ" ngay');

SELECT ioffice.trail_export(:doc, 'csv') AS csv \gset
-- UTF-8 byte order mark, then the headings line
SELECT substr(:'csv'::bytea, 1, 3) AS bom;
SELECT split_part(convert_from(substr(:'csv'::bytea, 4), 'UTF8'), E'\r\n', 1) AS headings;
-- every record ends with CRLF (the note's own line break stays a bare LF
-- inside quotes): one record for the headings and one per step of trail()
SELECT (length(t) - length(replace(t, E'\r\n', ''))) / 2 AS crlf_records,
       (SELECT count(*) FROM ioffice.trail(:doc)) + 1 AS expected,
       right(t, 2) = E'\r\n' AS ends_with_crlf,
       (length(t) - length(replace(t, E'\n', ''))) - (length(t) - length(replace(t, E'\r\n', ''))) / 2
           AS bare_lf
FROM convert_from(substr(:'csv'::bytea, 4), 'UTF8') AS t;
-- RFC 4180: the field is quoted, its quotes doubled, its line break kept
SELECT strpos(convert_from(:'csv'::bytea, 'UTF8'),
              E',"Kính gửi anh Đại, xem ""dự thảo""\nrồi cho ý kiến",') > 0 AS request_quoted,
       strpos(convert_from(:'csv'::bytea, 'UTF8'),
              E',"Đã phát hành, số ""vào sổ"" ngay",') > 0 AS note_quoted,
       strpos(convert_from(:'csv'::bytea, 'UTF8'), ',Đồng ý; đề nghị phát hành,') > 0 AS plain_unquoted;

-- read it back with PostgreSQL's CSV parser and compare field by field
CREATE TABLE csv_row (stt int, sender text, request text, receiver text, received text,
                      note text, deadline text, processed text, status text, attachments text);
CREATE FUNCTION load_csv(content bytea) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    lo oid := lo_from_bytea(0, content);
BEGIN
    TRUNCATE csv_row;
    PERFORM lo_export(lo, 'trail_export_regress.csv');   -- in the data directory
    PERFORM lo_unlink(lo);
    COPY csv_row FROM 'trail_export_regress.csv' WITH (FORMAT csv, HEADER true, ENCODING 'UTF8');
END
$$;
CREATE FUNCTION trail_as_text(doc bigint) RETURNS SETOF csv_row LANGUAGE sql AS $$
    SELECT step, sender, request, receiver,
           to_char(received_at AT TIME ZONE ioffice.timezone(), 'DD/MM/YYYY HH24:MI'),
           processing_note, to_char(deadline, 'DD/MM/YYYY'),
           to_char(processed_at AT TIME ZONE ioffice.timezone(), 'DD/MM/YYYY HH24:MI'),
           status, attachments
    FROM ioffice.trail(doc)
$$;
SELECT load_csv(:'csv');
SELECT stt, sender, request, receiver, note, deadline, status, attachments FROM csv_row ORDER BY stt;
SELECT count(*) AS rows_read, count(*) = (SELECT count(*) FROM trail_as_text(:doc)) AS same_count
FROM csv_row;
-- nothing differs, in either direction (dates as dd/MM/yyyy HH:mm in ioffice.timezone)
(SELECT 'only in csv' AS side, * FROM csv_row EXCEPT SELECT 'only in csv', * FROM trail_as_text(:doc))
UNION ALL
(SELECT 'only in trail', * FROM trail_as_text(:doc) EXCEPT SELECT 'only in trail', * FROM csv_row);
SELECT received ~ '^\d\d/\d\d/\d{4} \d\d:\d\d$' AS date_shape, count(*) FROM csv_row GROUP BY 1;

-- another time zone moves the times the file shows
SET ioffice.timezone = 'UTC';
SELECT load_csv(ioffice.trail_export(:doc, 'csv'));
SELECT count(*) AS rows_in_utc,
       bool_and(c.received = to_char(t.received_at AT TIME ZONE 'UTC', 'DD/MM/YYYY HH24:MI')) AS utc_times
FROM csv_row c JOIN ioffice.trail(:doc) t ON t.step = c.stt;
RESET ioffice.timezone;

-- xlsx: a zip container that file_kind() recognises as a workbook; the format
-- name is not case-sensitive
SELECT substr(x, 1, 2) = '\x504b'::bytea AS starts_pk, ioffice.file_kind(x) AS kind,
       octet_length(x) > 1000 AS not_empty
FROM ioffice.trail_export(:doc, 'xlsx') AS x;
SELECT ioffice.file_kind(ioffice.trail_export(:doc, 'XLSX')) AS upper_case_name;
-- the workbook was written to a private directory under base/pgsql_tmp and
-- removed again
SELECT count(*) AS left_in_pgsql_tmp FROM pg_ls_dir('base/pgsql_tmp', true, false);

-- a document not yet issued and a trail of one open step
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('CV', 'Dự thảo chưa trình') AS draft \gset
SELECT ioffice.attach(:draft, 'chua_trinh.pdf', content) IS NOT NULL AS attached FROM pdf;
SELECT ioffice.act(:draft, 'submit', 'dai');
SELECT load_csv(ioffice.trail_export(:draft, 'csv'));
SELECT stt, sender, receiver, processed IS NULL AS not_processed, status FROM csv_row;
SELECT ioffice.file_kind(ioffice.trail_export(:draft, 'xlsx')) AS draft_kind;
-- with no step at all: the headings alone
SELECT ioffice.create_outgoing('CV', 'Chưa có bước nào') AS empty \gset
SELECT convert_from(ioffice.trail_export(:empty, 'csv'), 'UTF8')
       = E'\uFEFFSTT,Cán bộ gửi,Nội dung yêu cầu,Cán bộ nhận,Ngày nhận,Nội dung xử lý,Hạn xử lý,Ngày xử lý,Trạng thái hoàn thành,Tập tin đính kèm\r\n'
       AS headings_only;
SELECT ioffice.file_kind(ioffice.trail_export(:empty, 'xlsx')) AS empty_kind;

-- refused: the same rules as trail(), and bad arguments
SELECT ioffice.trail_export(NULL, 'csv');
\echo :SQLSTATE
SELECT ioffice.trail_export(:doc, NULL);
\echo :SQLSTATE
SELECT ioffice.trail_export(:doc, 'pdf');
\echo :SQLSTATE
SELECT ioffice.trail_export(:doc, ' csv');
\echo :SQLSTATE
SELECT ioffice.trail_export(-1, 'xlsx');
\echo :SQLSTATE
-- (the messages name the document's id, which depends on the earlier tests)
\set VERBOSITY sqlstate
SET ioffice.actor = 'regress_tuan';     -- another department's specialist, never involved
SELECT ioffice.trail_export(:doc, 'csv');
\echo :SQLSTATE
SELECT ioffice.trail_export(:doc, 'xlsx');
\echo :SQLSTATE
SET ioffice.actor = 'xa_ct';    -- another agency's chairman
SELECT ioffice.trail_export(:doc, 'xlsx');
\echo :SQLSTATE
RESET ioffice.actor;
SET SESSION AUTHORIZATION regress_luan;       -- a login role of a person: the drafter may
SELECT ioffice.file_kind(ioffice.trail_export(:doc, 'xlsx')) AS as_login_luan;
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION regress_tuan;
SELECT ioffice.trail_export(:doc, 'csv');
\echo :SQLSTATE
RESET SESSION AUTHORIZATION;
\set VERBOSITY default
SET SESSION AUTHORIZATION regress_outsider;  -- a role that is no person
SELECT ioffice.trail_export(:doc, 'csv');
\echo :SQLSTATE
RESET SESSION AUTHORIZATION;
SELECT count(*) AS left_in_pgsql_tmp FROM pg_ls_dir('base/pgsql_tmp', true, false);

DROP FUNCTION load_csv(bytea);
DROP FUNCTION trail_as_text(bigint);
DROP TABLE csv_row;
