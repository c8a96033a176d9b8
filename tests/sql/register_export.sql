-- register_export(): the outgoing register of a year (sổ đăng ký văn bản đi)
-- as a file to print and bind.  The CSV is read back with COPY's own CSV
-- parser and compared with the view outgoing_register, row by row and in
-- order; the xlsx is checked for its container here (its cells are read back
-- by openpyxl in tests/t/006_register_export.pl).
\set VERBOSITY default
\set SHOW_CONTEXT never
SELECT id AS ubnd FROM ioffice.unit WHERE code = '000.00.32.H41' \gset
SELECT id AS xa FROM ioffice.unit WHERE code = '001.32.32.H41' \gset
SELECT extract(year FROM now() AT TIME ZONE 'Asia/Ho_Chi_Minh')::int AS year \gset
SELECT id AS reg FROM ioffice.register
WHERE agency_id = :ubnd AND direction = 'outgoing' AND code = 'outgoing' AND year = :year \gset
SELECT id AS secret FROM ioffice.register
WHERE agency_id = :ubnd AND direction = 'outgoing' AND code = 'outgoing_secret' AND year = :year \gset
SELECT id AS incoming FROM ioffice.register
WHERE agency_id = :ubnd AND direction = 'incoming' AND year = :year ORDER BY id LIMIT 1 \gset

-- one more document whose fields need CSV quoting
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('CV', E'V/v in sổ "đăng ký", đóng quyển\nvà lưu trữ',
       '{"signer": "dai", "copies": 3, "comment": "Gửi kèm \"phụ lục\"",
         "recipients": ["001.32.32.H41", "Sở Nội vụ tỉnh Sơn La, phòng Văn thư"]}') AS doc \gset
SELECT ioffice.attach(:doc, 'so_dang_ky.pdf', content) IS NOT NULL AS attached FROM pdf;
SELECT ioffice.act(:doc, 'submit', 'dai');
SET ioffice.actor = 'dai';
SELECT ioffice.act(:doc, 'approve', 'regress_thuy');
SET ioffice.actor = 'regress_thuy';
SELECT ioffice.act(:doc, 'issue');

-- the clerk exports the year's register
SELECT ioffice.register_export(:reg, :year, 'csv') AS csv \gset
SELECT substr(:'csv'::bytea, 1, 3) AS bom;
SELECT split_part(convert_from(substr(:'csv'::bytea, 4), 'UTF8'), E'\r\n', 1) AS headings;
-- one CRLF record for the headings and one per row of the view; the
-- abstract's own line break stays a bare LF inside quotes
SELECT (length(t) - length(replace(t, E'\r\n', ''))) / 2 AS crlf_records,
       (SELECT count(*) FROM ioffice.outgoing_register
        WHERE agency_id = :ubnd AND register_code = 'outgoing' AND year = :year) + 1 AS expected,
       right(t, 2) = E'\r\n' AS ends_with_crlf,
       (length(t) - length(replace(t, E'\n', ''))) - (length(t) - length(replace(t, E'\r\n', ''))) / 2
           AS bare_lf
FROM convert_from(substr(:'csv'::bytea, 4), 'UTF8') AS t;
-- RFC 4180: quoted when needed, quotes doubled; the number of copies, the
-- date sent, an empty Ký nhận, the note, the record's end
SELECT strpos(convert_from(:'csv'::bytea, 'UTF8'),
              E',"Công văn V/v in sổ ""đăng ký"", đóng quyển\nvà lưu trữ",') > 0 AS abstract_quoted,
       strpos(convert_from(:'csv'::bytea, 'UTF8'),
              ',"UBND xã Mường Lạn; Sở Nội vụ tỉnh Sơn La, phòng Văn thư",') > 0 AS recipients_quoted,
       strpos(convert_from(:'csv'::bytea, 'UTF8'),
              ',3,' || to_char(now() AT TIME ZONE 'Asia/Ho_Chi_Minh', 'DD/MM/YYYY')
              || E',,"Gửi kèm ""phụ lục"""\r\n') > 0 AS row_tail;

-- read it back with PostgreSQL's CSV parser; line numbers keep the file's order
CREATE TABLE reg_csv (line serial, symbol text, issued_on text, type_and_abstract text,
                      signer text, recipients text, archive_unit text, copies text,
                      sent_on text, receipt text, note text);
CREATE FUNCTION load_reg_csv(content bytea) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    lo oid := lo_from_bytea(0, content);
BEGIN
    TRUNCATE reg_csv RESTART IDENTITY;
    PERFORM lo_export(lo, 'register_export_regress.csv');   -- in the data directory
    PERFORM lo_unlink(lo);
    COPY reg_csv (symbol, issued_on, type_and_abstract, signer, recipients, archive_unit,
                  copies, sent_on, receipt, note)
        FROM 'register_export_regress.csv' WITH (FORMAT csv, HEADER true, ENCODING 'UTF8');
END
$$;
-- the view's rows of a register and year as the file writes them, numbered
-- in the order of the register's numbers
CREATE FUNCTION register_as_text(agency bigint, code text, yr int) RETURNS SETOF reg_csv
LANGUAGE sql AS $$
    SELECT (row_number() OVER (ORDER BY number, symbol))::int, symbol,
           to_char(issued_on, 'DD/MM/YYYY'), type_and_abstract, signer, recipients,
           archive_unit, copies::text, to_char(sent_on, 'DD/MM/YYYY'), receipt, note
    FROM ioffice.outgoing_register
    WHERE agency_id = agency AND register_code = code AND year = yr
$$;
SELECT load_reg_csv(:'csv');
SELECT line, symbol, type_and_abstract, signer, recipients, copies, note FROM reg_csv ORDER BY line;
-- nothing differs, in either direction, order included
(SELECT 'only in csv' AS side, * FROM reg_csv
 EXCEPT SELECT 'only in csv', * FROM register_as_text(:ubnd, 'outgoing', :year))
UNION ALL
(SELECT 'only in view', * FROM register_as_text(:ubnd, 'outgoing', :year)
 EXCEPT SELECT 'only in view', * FROM reg_csv);
-- dates as dd/MM/yyyy; Ký nhận is left for the pen
SELECT count(*) AS rows_read, count(*) FILTER (WHERE issued_on ~ '^\d\d/\d\d/\d{4}$') AS dated,
       count(receipt) AS receipts_filled
FROM reg_csv;

-- xlsx: a zip container that file_kind() recognises as a workbook, written
-- to a private directory and removed again
SELECT substr(x, 1, 2) = '\x504b'::bytea AS starts_pk, ioffice.file_kind(x) AS kind,
       octet_length(x) > 1000 AS not_empty
FROM ioffice.register_export(:reg, :year, 'xlsx') AS x;
SELECT ioffice.file_kind(ioffice.register_export(:reg, :year, 'XLSX')) AS upper_case_name;
SELECT count(*) AS left_in_pgsql_tmp FROM pg_ls_dir('base/pgsql_tmp', true, false);

-- the confidential series, exported by its clerk
SELECT load_reg_csv(ioffice.register_export(:secret, :year, 'csv'));
SELECT line, symbol, type_and_abstract FROM reg_csv ORDER BY line;
(SELECT * FROM reg_csv EXCEPT SELECT * FROM register_as_text(:ubnd, 'outgoing_secret', :year))
UNION ALL
(SELECT * FROM register_as_text(:ubnd, 'outgoing_secret', :year) EXCEPT SELECT * FROM reg_csv);
SELECT ioffice.file_kind(ioffice.register_export(:secret, :year, 'xlsx')) AS secret_kind;

-- the register is named by any year's row: the commune's register of last
-- year's row gives this year's book, and a year it was not used is empty
SET ioffice.actor = 'regress_xa_vt';
SELECT min(id) AS xa_old, max(id) AS xa_new FROM ioffice.register
WHERE agency_id = :xa AND direction = 'outgoing' AND code = 'outgoing' \gset
SELECT (SELECT year FROM ioffice.register WHERE id = :xa_old) < :year AS old_row_is_older;
SELECT ioffice.register_export(:xa_old, :year, 'csv') = ioffice.register_export(:xa_new, :year, 'csv')
       AS same_book,
       (SELECT count(*) FROM register_as_text(:xa, 'outgoing', :year)) AS rows_this_year;
SELECT load_reg_csv(ioffice.register_export(:xa_old, :year, 'csv'));
SELECT line, symbol, type_and_abstract, note FROM reg_csv ORDER BY line;
SELECT convert_from(ioffice.register_export(:xa_new, :year - 1, 'csv'), 'UTF8')
       = E'\uFEFF"Số, ký hiệu văn bản",Ngày tháng văn bản,Tên loại và trích yếu nội dung văn bản,Người ký,Nơi nhận văn bản,"Đơn vị, người nhận bản lưu",Số lượng bản,Ngày chuyển,Ký nhận,Ghi chú\r\n'
       AS last_year_headings_only;
SELECT ioffice.file_kind(ioffice.register_export(:xa_new, 1900, 'xlsx')) AS empty_kind;

-- a reporting role (ioffice_reader) gets the ordinary documents of an
-- ordinary register: what the view's policies show it
RESET ioffice.actor;
SET SESSION AUTHORIZATION regress_report;
SELECT ioffice.register_export(:reg, :year, 'csv') = :'csv'::bytea AS reader_same_book;
RESET SESSION AUTHORIZATION;
-- a document of the register made confidential by hand (then rolled back):
-- the reader's book leaves it out, as the view does for the reader; the
-- clerk's keeps it
BEGIN;
UPDATE ioffice.document SET confidentiality = 'confidential' WHERE id = :doc;
SET LOCAL ioffice.actor = 'regress_thuy';
SELECT load_reg_csv(ioffice.register_export(:reg, :year, 'csv'));
SELECT count(*) AS clerk_rows, bool_or(type_and_abstract LIKE '%đóng quyển%') AS clerk_has_it
FROM reg_csv;
RESET ioffice.actor;
SET SESSION AUTHORIZATION regress_report;
CREATE TEMP TABLE reader_sees AS
    SELECT * FROM register_as_text(:ubnd, 'outgoing', :year);
SELECT ioffice.register_export(:reg, :year, 'csv') AS reader_csv \gset
RESET SESSION AUTHORIZATION;
SELECT load_reg_csv(:'reader_csv');
SELECT count(*) AS reader_rows, bool_or(type_and_abstract LIKE '%đóng quyển%') AS reader_has_it
FROM reg_csv;
-- the rows the view shows the reader, numbered without the hidden one
SELECT count(*) AS view_shows_reader FROM reader_sees;
(SELECT * FROM reg_csv EXCEPT SELECT * FROM reader_sees)
UNION ALL
(SELECT * FROM reader_sees EXCEPT SELECT * FROM reg_csv);
ROLLBACK;

-- refused, with the register's id left out of the messages (ids depend on
-- the earlier tests)
CREATE FUNCTION try_export(reg bigint, yr int, fmt text,
                           OUT state text, OUT message text, OUT detail text)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ioffice.register_export(reg, yr, fmt);
    state := '00000';
EXCEPTION WHEN others THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
                            detail = PG_EXCEPTION_DETAIL;
    IF reg IS NOT NULL THEN
        message := regexp_replace(message, ' ' || reg || '( |$)', ' <register>\1');
    END IF;
END
$$;
-- the incoming register (sổ đăng ký văn bản đến) from its own view: Decree
-- 30's columns, one line per arrival number, in order
SET ioffice.actor = 'regress_thuy';
SELECT ioffice.register_export(:incoming, :year, 'csv') AS icsv \gset
SELECT split_part(convert_from(substr(:'icsv'::bytea, 4), 'UTF8'), E'\r\n', 1) AS incoming_headings;
SELECT count(*) - 1 AS entries,
       (SELECT count(*) FROM ioffice.incoming_register WHERE register_id = :incoming) AS in_view,
       array_agg(split_part(l, ',', 2) ORDER BY n) FILTER (WHERE n > 1)
         = (SELECT array_agg(number::text ORDER BY number) FROM ioffice.incoming_register
             WHERE register_id = :incoming) AS arrival_numbers_in_order
FROM regexp_split_to_table(convert_from(substr(:'icsv'::bytea, 4), 'UTF8'), E'\r\n')
     WITH ORDINALITY AS t(l, n)
WHERE l <> '';
SELECT length(ioffice.register_export(:incoming, :year, 'xlsx')) > 0 AS incoming_workbook;
SET ioffice.actor = 'regress_thuy';
SELECT t.* FROM (VALUES
    (NULL::bigint, :year, 'csv'), (:reg, NULL, 'csv'), (:reg, :year, NULL),
    (:reg, :year, 'pdf'), (:reg, :year, ' csv'), (:reg, 1899, 'csv'), (:reg, 10000, 'xlsx'),
    (999999, :year, 'csv'), (-1, :year, 'csv')
) AS a(r, y, f), try_export(a.r, a.y, a.f) AS t;
-- who may not: another agency's clerk (its own registers it may), a specialist, a
-- leader, the drafter
SET ioffice.actor = 'regress_xa_vt';
SELECT * FROM try_export(:reg, :year, 'csv');
SELECT state AS xa_clerk_own_secret FROM try_export(
    (SELECT id FROM ioffice.register WHERE agency_id = :xa AND code = 'outgoing_secret' LIMIT 1), :year, 'csv');
SET ioffice.actor = 'regress_tuan';
SELECT state AS specialist FROM try_export(:reg, :year, 'xlsx');
SET ioffice.actor = 'dai';
SELECT state AS leader FROM try_export(:secret, :year, 'csv');
RESET ioffice.actor;
SET SESSION AUTHORIZATION regress_luan;        -- the drafter of a row, by login
SELECT state AS drafter FROM try_export(:reg, :year, 'csv');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION regress_outsider;  -- a role that is no person
SELECT state AS outsider FROM try_export(:reg, :year, 'csv');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION regress_report;  -- a reader: not the confidential series
SELECT * FROM try_export(:secret, :year, 'csv');
SET ioffice.actor = 'regress_thuy';            -- nor by naming a clerk: regress_report is no application
SELECT state AS reader_naming_clerk FROM try_export(:secret, :year, 'csv');
RESET ioffice.actor;
RESET SESSION AUTHORIZATION;
-- a superuser session is no reader by itself, with or without a person named
SELECT state AS superuser_alone FROM try_export(:reg, :year, 'csv');
-- a person's login role granted ioffice_reader: ordinary register only
GRANT ioffice_reader TO regress_tuan;
SET SESSION AUTHORIZATION regress_tuan;
SELECT state AS granted_reader FROM try_export(:reg, :year, 'csv');
SELECT state AS granted_reader_secret FROM try_export(:secret, :year, 'csv');
RESET SESSION AUTHORIZATION;
REVOKE ioffice_reader FROM regress_tuan;
SET SESSION AUTHORIZATION regress_tuan;
SELECT state AS revoked FROM try_export(:reg, :year, 'csv');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION regress_app;  -- an application acting for the clerk may
SET ioffice.actor = 'regress_thuy';
SELECT state AS app_for_clerk FROM try_export(:secret, :year, 'xlsx');
SET ioffice.actor = 'regress_tuan';
SELECT state AS app_for_specialist FROM try_export(:reg, :year, 'csv');
RESET ioffice.actor;
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION regress_admin1;  -- an admin, any agency's register
SELECT ioffice.register_export(:xa_new, :year, 'csv') AS admin_csv \gset
RESET SESSION AUTHORIZATION;
SELECT load_reg_csv(:'admin_csv');
(SELECT * FROM reg_csv EXCEPT SELECT * FROM register_as_text(:xa, 'outgoing', :year))
UNION ALL
(SELECT * FROM register_as_text(:xa, 'outgoing', :year) EXCEPT SELECT * FROM reg_csv);
SELECT count(*) AS admin_rows FROM reg_csv;
SELECT count(*) AS left_in_pgsql_tmp FROM pg_ls_dir('base/pgsql_tmp', true, false);

DROP FUNCTION try_export(bigint, int, text);
DROP FUNCTION load_reg_csv(bytea);
DROP FUNCTION register_as_text(bigint, text, int);
DROP TABLE reg_csv;
