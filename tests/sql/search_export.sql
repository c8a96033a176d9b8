-- search_export(): search()'s results as a file (Decree 30, Appendix VI,
-- III.6h), built on the documents of the search test: the same rows in the
-- same order, and nothing a caller may not find, not even as a count.
SET client_min_messages = warning;

-- the CSV's lines after the headings (UTF-8 with BOM, CRLF)
CREATE FUNCTION public.regress_export_rows(csv bytea) RETURNS SETOF text LANGUAGE sql AS $$
    SELECT l FROM unnest(string_to_array(convert_from(substr(csv, 4), 'UTF8'), E'\r\n'))
                  WITH ORDINALITY AS x(l, n)
     WHERE n > 1 AND l <> ''
$$;

SET ioffice.actor = 'regress_luan';
SELECT substr(ioffice.search_export('khoáng sản', '{}', 'csv'), 1, 3) = '\xefbbbf'::bytea AS bom,
       split_part(convert_from(substr(ioffice.search_export('khoáng sản', '{}', 'csv'), 4), 'UTF8'), E'\r\n', 1)
         AS headings;
SELECT count(*) AS rows, bool_and(r LIKE '%Công văn thường lệ số %000 về khoáng sản%') AS all_match,
       bool_and(r LIKE '%,Công văn,%,Đi,%') AS type_and_direction
  FROM public.regress_export_rows(ioffice.search_export('khoáng sản', '{}', 'csv')) r;
-- in search()'s order: the first column counts 1, 2, 3
SELECT string_agg(split_part(r, ',', 1), ' ') AS numbered
  FROM public.regress_export_rows(ioffice.search_export('khoáng sản', '{}', 'csv')) r;
-- the limit is search()'s
SELECT count(*) AS limited
  FROM public.regress_export_rows(ioffice.search_export('khoáng sản', '{}', 'csv', 2));
-- a workbook (a zip)
SELECT substr(ioffice.search_export('khoáng sản'), 1, 4) = '\x504b0304'::bytea AS xlsx;
SELECT regress_error($$SELECT ioffice.search_export('khoáng sản', '{}', 'odt')$$, 0);
SELECT regress_error($$SELECT ioffice.search_export('khoáng sản', '{}', 'csv', 0)$$, 0);
SELECT regress_error($$SELECT ioffice.search_export('khoáng sản', '{"agencyy": 1}', 'csv')$$, 0);
SELECT regress_error($$SELECT ioffice.search_export('khoáng sản', '{}', NULL)$$, 0);
RESET ioffice.actor;

-- every person's file has exactly search()'s rows for them, under an
-- application's role (row-level security on)
CREATE ROLE regress_export_app IN ROLE ioffice_app;
CREATE TEMP TABLE export_seen (login text, in_file bigint, found bigint);
GRANT INSERT ON export_seen TO regress_export_app;
SET ROLE regress_export_app;
DO $$
DECLARE
    v_login text;
BEGIN
    FOR v_login IN SELECT login FROM ioffice.person ORDER BY id LOOP
        PERFORM set_config('ioffice.actor', v_login, true);
        INSERT INTO export_seen
        SELECT v_login,
               (SELECT count(*) FROM public.regress_export_rows(ioffice.search_export('ma tuy', '{}', 'csv'))),
               (SELECT count(*) FROM ioffice.search('ma tuy', '{}', 1000));
    END LOOP;
    PERFORM set_config('ioffice.actor', '', true);
END
$$;
RESET ROLE;
SELECT count(*) > 10 AS people, bool_and(in_file = found) AS same_as_search,
       count(*) FILTER (WHERE found = 0) > 0 AS some_find_nothing,
       count(DISTINCT found) > 1 AS not_all_alike
  FROM export_seen;
-- no person named: an empty file
SET ROLE regress_export_app;
SELECT count(*) AS nobody FROM public.regress_export_rows(ioffice.search_export('ma tuy', '{}', 'csv'));
RESET ROLE;

DROP FUNCTION public.regress_export_rows(bytea);
DROP OWNED BY regress_export_app;
DROP ROLE regress_export_app;
