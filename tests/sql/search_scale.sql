-- search() at scale: the text index is asked for the words AND who may
-- find them (search_text.keys), so that a person's search for a word that
-- thousands of other documents have reads none of those; the keys follow
-- the documents and registers in the same transaction; the documents found
-- are checked again against the policies' tests; a query matching more
-- than the window ranks the newest and says so.
SET client_min_messages = warning;

SELECT id AS ubnd FROM ioffice.unit WHERE code = '000.00.32.H41' \gset
SELECT id AS xa FROM ioffice.unit WHERE code = '001.32.32.H41' \gset
SELECT id AS xa_vt FROM ioffice.person WHERE login = 'regress_xa_vt' \gset
SELECT id AS luan, unit_id AS vp FROM ioffice.person WHERE login = 'regress_luan' \gset
-- a word in 2,000 documents of the commune and in 5 of the district
INSERT INTO ioffice.document (doc_type, abstract, state, agency_id, drafting_unit_id, drafter_id)
SELECT 'CV', 'Báo cáo sản lượng thanh long ruột đỏ đợt ' || g, 'draft', :xa, :xa, :xa_vt
FROM generate_series(1, 2000) g;
INSERT INTO ioffice.document (doc_type, abstract, state, agency_id, drafting_unit_id, drafter_id)
SELECT 'CV', 'Kế hoạch tiêu thụ thanh long ruột đỏ số ' || g, 'draft', :ubnd, :vp, :luan
FROM generate_series(1, 5) g;
VACUUM ANALYZE ioffice.search_text, ioffice.document;

-- every row has its document's keys
SELECT bool_and(keys = ioffice._search_keys(document_id)) AS keys_follow_documents,
       bool_and('r' = ANY (keys) = (d.confidentiality = 'normal')) AS reader_key
FROM ioffice.search_text s JOIN ioffice.document d ON d.id = s.document_id
WHERE d.register_id IS NULL;
-- the index holds the words and the keys
SELECT indexdef LIKE '%USING gin (words, keys)' AS words_and_keys
FROM pg_indexes WHERE schemaname = 'ioffice' AND indexname = 'search_text_words_idx';

-- The district's clerk searches the word, by the text index (search_walk
-- 0): the text index is scanned for the word and the clerk's keys
-- together, and returns the district's rows only (the index's own count of
-- rows returned in this transaction), not the commune's 2,000; no row of
-- search_text is read by a sequential scan.
CREATE ROLE regress_scale_app IN ROLE ioffice_app;
CREATE ROLE regress_scale_report IN ROLE ioffice_reader;
CREATE TEMP TABLE counters (k text, idx_scans bigint, idx_rows bigint, seq_scans bigint, fetched bigint);
CREATE TEMP TABLE got (n bigint);
GRANT INSERT ON got TO regress_scale_app, regress_scale_report;
BEGIN;
INSERT INTO counters SELECT 'before',
    pg_stat_get_xact_numscans('ioffice.search_text_words_idx'::regclass),
    pg_stat_get_xact_tuples_returned('ioffice.search_text_words_idx'::regclass),
    pg_stat_get_xact_numscans('ioffice.search_text'::regclass),
    pg_stat_get_xact_tuples_fetched('ioffice.search_text'::regclass);
SET LOCAL ROLE regress_scale_app;
SET LOCAL ioffice.actor = 'regress_thuy';
SET LOCAL ioffice.search_walk = 0;
INSERT INTO got SELECT count(*) FROM ioffice.search('thanh long ruot do');
RESET ROLE;
INSERT INTO counters SELECT 'after',
    pg_stat_get_xact_numscans('ioffice.search_text_words_idx'::regclass),
    pg_stat_get_xact_tuples_returned('ioffice.search_text_words_idx'::regclass),
    pg_stat_get_xact_numscans('ioffice.search_text'::regclass),
    pg_stat_get_xact_tuples_fetched('ioffice.search_text'::regclass);
COMMIT;
SELECT (SELECT n FROM got) AS found,
       a.idx_scans > b.idx_scans AS text_index_scanned,
       a.idx_rows - b.idx_rows BETWEEN 5 AND 20 AS index_returned_only_visible_rows,
       a.fetched - b.fetched <= 20 AS rows_read_only_visible,
       a.seq_scans = b.seq_scans AS no_sequential_scan
FROM counters a, counters b WHERE a.k = 'after' AND b.k = 'before';

-- The same search as it is made by default (search_walk 2000): the word is
-- in most rows (the table's statistics), so search() first reads the
-- documents the clerk may see, newest first, testing their words; here far
-- fewer of them have it, and after a quarter of the documents expected the
-- text index is asked instead.  Either way no row of the commune's is read:
-- at most the rows of the district's documents and of the clerk's own.
SELECT count(*) AS rows_thuy_may_see FROM ioffice.search_text s JOIN ioffice.document d ON d.id = s.document_id
WHERE d.agency_id = :ubnd OR d.drafter_id = (SELECT id FROM ioffice.person WHERE login = 'regress_thuy')
   OR d.id IN (SELECT t.document_id FROM ioffice.task t JOIN ioffice.person p ON p.id IN (t.receiver_id, t.sender_id)
               WHERE p.login = 'regress_thuy') \gset
-- (rows read: those fetched by a bitmap scan, counted on the table, and by
-- an index scan, counted on its index, in this transaction)
CREATE FUNCTION pg_temp.rows_read() RETURNS bigint LANGUAGE sql AS $$
    SELECT sum(pg_stat_get_xact_tuples_fetched(c.oid))::bigint FROM pg_class c
    WHERE c.oid = 'ioffice.search_text'::regclass
       OR c.oid IN (SELECT i.indexrelid FROM pg_index i WHERE i.indrelid = 'ioffice.search_text'::regclass)
$$;
CREATE FUNCTION pg_temp.counted(who text, q text, lim int) RETURNS TABLE (n_found bigint, text_index_scanned boolean,
                                                                          rows_read bigint, seq_scans bigint)
LANGUAGE plpgsql AS $$
DECLARE
    i0 bigint := pg_stat_get_xact_numscans('ioffice.search_text_words_idx'::regclass);
    f0 bigint := pg_temp.rows_read();
    s0 bigint := pg_stat_get_xact_numscans('ioffice.search_text'::regclass);
BEGIN
    PERFORM set_config('ioffice.actor', who, true);
    n_found := (SELECT count(*) FROM ioffice.search(q, '{}', lim));
    text_index_scanned := pg_stat_get_xact_numscans('ioffice.search_text_words_idx'::regclass) > i0;
    rows_read := pg_temp.rows_read() - f0;
    seq_scans := pg_stat_get_xact_numscans('ioffice.search_text'::regclass) - s0;
    RETURN NEXT;
END
$$;
GRANT EXECUTE ON FUNCTION pg_temp.counted(text, text, int), pg_temp.rows_read() TO regress_scale_app;
BEGIN;
SET LOCAL ROLE regress_scale_app;
SELECT n_found AS found, rows_read BETWEEN 5 AND :rows_thuy_may_see AS rows_read_only_visible, seq_scans = 0 AS no_sequential_scan
FROM pg_temp.counted('regress_thuy', 'thanh long ruot do', 100);
COMMIT;
-- The commune's clerk, whose 2,000 newest documents have the word: the
-- walk reads the newest until the window (200) is full, not the 2,000, and
-- not the text index
BEGIN;
SET LOCAL ROLE regress_scale_app;
SELECT n_found AS found, NOT text_index_scanned AS walked, rows_read BETWEEN 201 AND 500 AS read_the_newest_only,
       seq_scans = 0 AS no_sequential_scan
FROM pg_temp.counted('regress_xa_vt', 'thanh long ruot do', 20);
COMMIT;

-- Both ways find the same documents, ranked alike, for a clerk, the
-- commune's clerk (whose 2,000 are more than the window), an admin, a
-- reporting tool, with and without filters
SELECT ioffice.add_person('regress_scale_admin', 'Quản Trị', 'Quản trị hệ thống', :vp, '{specialist}') AS admin_id \gset
INSERT INTO ioffice.person_role (person_id, role, unit_id) VALUES (:admin_id, 'admin', :ubnd);
CREATE TEMP TABLE both_ways (who text, walk int, q text, f jsonb, doc bigint, rank real, snippet text);
GRANT INSERT ON both_ways TO regress_scale_app, regress_scale_report;
SET ROLE regress_scale_app;
DO $$
DECLARE w int; a text; q text; f jsonb;
BEGIN
    FOREACH w IN ARRAY ARRAY[0, 2000] LOOP
        PERFORM set_config('ioffice.search_walk', w::text, false);
        FOREACH a IN ARRAY ARRAY['regress_thuy', 'regress_xa_vt', 'regress_luan', 'regress_scale_admin'] LOOP
            PERFORM set_config('ioffice.actor', a, false);
            FOREACH q IN ARRAY ARRAY['thanh long ruột đỏ', 'thanh long', 'kế hoạch'] LOOP
                FOREACH f IN ARRAY ARRAY['{}'::jsonb, '{"doc_type": "CV"}', '{"state": "draft"}'] LOOP
                    INSERT INTO both_ways SELECT a, w, q, f, s.* FROM ioffice.search(q, f, 300) s;
                END LOOP;
            END LOOP;
        END LOOP;
    END LOOP;
END
$$;
RESET ROLE;
RESET ioffice.actor;
SET ROLE regress_scale_report;
DO $$
DECLARE w int; q text;
BEGIN
    FOREACH w IN ARRAY ARRAY[0, 2000] LOOP
        PERFORM set_config('ioffice.search_walk', w::text, false);
        FOREACH q IN ARRAY ARRAY['thanh long ruột đỏ', 'thanh long', 'kế hoạch'] LOOP
            INSERT INTO both_ways SELECT 'reader', w, q, '{}', s.* FROM ioffice.search(q, '{}', 300) s;
        END LOOP;
    END LOOP;
END
$$;
RESET ROLE;
RESET ioffice.search_walk;
SELECT who, count(*) FILTER (WHERE walk = 0) AS found_by_index,
       count(*) FILTER (WHERE walk = 2000) AS found_by_walk,
       NOT EXISTS (SELECT doc, rank, snippet, q, f FROM both_ways x WHERE x.who = b.who AND x.walk = 0
                   EXCEPT ALL SELECT doc, rank, snippet, q, f FROM both_ways x WHERE x.who = b.who AND x.walk = 2000)
       AND NOT EXISTS (SELECT doc, rank, snippet, q, f FROM both_ways x WHERE x.who = b.who AND x.walk = 2000
                   EXCEPT ALL SELECT doc, rank, snippet, q, f FROM both_ways x WHERE x.who = b.who AND x.walk = 0)
         AS the_same
FROM both_ways b GROUP BY who ORDER BY who;

-- The commune's clerk finds 2,000: more than the window (200, or the limit
-- when larger) -- the newest are ranked, a notice says so
SET ioffice.actor = 'regress_xa_vt';
SET client_min_messages = notice;
SELECT count(*) AS found,
       bool_and(s.document >= (SELECT min(x.id) FROM (SELECT d.id FROM ioffice.document d
                                                     WHERE d.agency_id = :xa ORDER BY d.id DESC LIMIT 200) x))
         AS among_the_newest_200
FROM ioffice.search('thanh long ruột đỏ', '{}', 20) s;
SET client_min_messages = warning;
-- a limit above the window: as many as asked for
SELECT count(*) AS found_5000 FROM ioffice.search('thanh long ruột đỏ', '{}', 5000);
-- under the window: no notice
SET ioffice.actor = 'regress_thuy';
SET client_min_messages = notice;
SELECT count(*) AS found_filtered FROM ioffice.search('thanh long', jsonb_build_object('agency', :ubnd));
SET client_min_messages = warning;

-- The keys are derived: a document found by wrong keys is still checked
-- against the policies' tests (here the commune's rows given the district's
-- key by hand)
UPDATE ioffice.search_text s SET keys = keys || ('a:' || :ubnd)
FROM ioffice.document d WHERE d.id = s.document_id AND d.agency_id = :xa;
SET ioffice.actor = 'regress_thuy';
SELECT count(*) AS thuy_still_finds_5 FROM ioffice.search('thanh long ruot do', '{}', 10000);
UPDATE ioffice.search_text s SET keys = ioffice._search_keys(s.document_id)
FROM ioffice.document d WHERE d.id = s.document_id AND d.agency_id = :xa;

-- The keys follow the document and its register, in the same transaction:
-- a document made confidential leaves the reporting tools' search at once;
-- a register made confidential takes its documents with it, and back
RESET ioffice.actor;
SELECT max(id) AS last_ubnd FROM ioffice.document WHERE agency_id = :ubnd AND abstract LIKE 'Kế hoạch tiêu thụ%' \gset
TRUNCATE got;
SET ROLE regress_scale_report;
INSERT INTO got SELECT count(*) FROM ioffice.search('thanh long ruot do', jsonb_build_object('agency', :ubnd));
RESET ROLE;
BEGIN;
UPDATE ioffice.document SET confidentiality = 'confidential' WHERE id = :last_ubnd;
SET LOCAL ROLE regress_scale_report;
INSERT INTO got SELECT count(*) FROM ioffice.search('thanh long ruot do', jsonb_build_object('agency', :ubnd));
RESET ROLE;
COMMIT;
SELECT array_agg(n ORDER BY ctid) AS reader_counts FROM got;
SELECT bool_and(NOT 'r' = ANY (keys)) AS confidential_rows_without_r
FROM ioffice.search_text WHERE document_id = :last_ubnd;
-- a register made confidential (a DBA may, before it gives numbers; here
-- in a transaction rolled back)
SELECT d.register_id AS reg FROM ioffice.document d
WHERE d.register_id IS NOT NULL AND d.confidentiality = 'normal' LIMIT 1 \gset
BEGIN;
UPDATE ioffice.register SET confidential = true WHERE id = :reg;
SELECT bool_and(NOT 'r' = ANY (s.keys)) AS register_confidential_no_r,
       bool_and(s.keys = ioffice._search_keys(s.document_id)) AS keys_follow
FROM ioffice.search_text s JOIN ioffice.document d ON d.id = s.document_id WHERE d.register_id = :reg;
ROLLBACK;
SELECT bool_and(s.keys = ioffice._search_keys(s.document_id)) AS keys_follow_at_the_end
FROM ioffice.search_text s;

DROP OWNED BY regress_scale_app, regress_scale_report;
DROP ROLE regress_scale_app, regress_scale_report;
