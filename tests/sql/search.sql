-- search(): Vietnamese accent-insensitive search over the documents'
-- metadata, ranked by exact spelling, with filters, and only over what the
-- caller may see.
SET client_min_messages = warning;

-- the folding: tones and marks off, đ as d, lower case in any locale, also
-- for decomposed input (a base letter and combining marks)
SELECT ts_lexize('ioffice.search_fold', 'ĐÀ') AS da,
       ts_lexize('ioffice.search_fold', 'Nghị') AS nghi,
       ts_lexize('ioffice.search_fold', 'ubnd') AS plain,
       ts_lexize('ioffice.search_exact', 'MẠ') AS exact,
       to_tsvector('ioffice.search_vi', E'Nghi\u0323 đi\u0323nh')
         = to_tsvector('ioffice.search_vi', 'Nghị định') AS decomposed_same;

-- A small corpus of the district (drafted by regress_luan of VP unless
-- said): words that differ by their tones only
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('BC', 'Báo cáo công tác phòng chống ma túy năm nay') AS d_ma \gset
SELECT ioffice.create_outgoing('TB', 'Thông báo thăm hỏi các bà má Việt Nam anh hùng') AS d_ma1 \gset
SELECT ioffice.create_outgoing('CV', 'Công văn trả lời những việc mà xã đề nghị') AS d_ma2 \gset
SELECT ioffice.create_outgoing('KH', 'Kế hoạch di dời mồ mả khu nghĩa trang cũ') AS d_ma3 \gset
SELECT ioffice.create_outgoing('TB', 'Thông báo cấp mã số hồ sơ điện tử') AS d_ma4 \gset
SELECT ioffice.create_outgoing('KH', 'Kế hoạch gieo mạ vụ xuân', '{"signer": "loi"}') AS d_ma5 \gset
SELECT ioffice.create_outgoing('TTr', 'Tờ trình dự thảo Nghị định về văn thư lưu trữ', '{"signer": "kien"}') AS d_nd \gset
SELECT ioffice.create_outgoing('TTr', 'To trinh du thao nghi dinh go khong dau') AS d_nd0 \gset
SELECT ioffice.create_outgoing('BC', 'Báo cáo mật về đường dây ma túy', '{"confidentiality": "confidential"}') AS d_secret \gset
-- another department's specialist: regress_luan does not see it
SET ioffice.actor = 'regress_tuan';
SELECT ioffice.create_outgoing('KH', 'Kế hoạch tuyên truyền phòng chống ma túy học đường') AS d_tuan \gset
-- incoming, registered by the district's clerk and the commune's
SET ioffice.actor = 'regress_thuy';
SELECT ioffice.register_incoming('CV', 'Mời dự hội nghị xúc tiến du lịch', 'Sở Du lịch thành phố Đà Nẵng',
                                 '15/SDL-VP', '2020-03-12') AS d_in \gset
SET ioffice.actor = 'regress_xa_vt';
SELECT ioffice.register_incoming('CV', 'Giấy mời họp về phòng chống ma túy', 'Công an huyện Sốp Cộp',
                                 '201/CAH-TH', '2021-06-01') AS d_xa \gset
RESET ioffice.actor;

-- every document has its metadata row, made by the trigger
SELECT count(*) = (SELECT count(*) FROM ioffice.document) AS every_document_indexed
FROM ioffice.search_text WHERE file_id IS NULL;

-- what a search found, by the documents' names (as the clerk of the
-- district sees everything of it)
CREATE TEMP TABLE names (id bigint, name text);
INSERT INTO names VALUES (:d_ma, 'ma'), (:d_ma1, 'má'), (:d_ma2, 'mà'), (:d_ma3, 'mả'), (:d_ma4, 'mã'),
    (:d_ma5, 'mạ'), (:d_nd, 'Nghị định'), (:d_nd0, 'nghi dinh'), (:d_secret, 'secret'),
    (:d_tuan, 'tuan'), (:d_in, 'Đà Nẵng'), (:d_xa, 'xa');
CREATE FUNCTION public.regress_found(q text, filters jsonb DEFAULT '{}')
RETURNS TABLE (name text, rank_tier int) LANGUAGE sql AS $$
    SELECT coalesce(n.name, 'other'), floor(s.rank)::int
    FROM ioffice.search(q, filters) WITH ORDINALITY AS s(document, rank, snippet, o)
    LEFT JOIN names n ON n.id = s.document ORDER BY s.o
$$;
SET ioffice.actor = 'regress_thuy';
-- exact spelling first: má above every other spelling, and the same with
-- an accented query of each tone
SELECT string_agg(name || ':' || rank_tier, ' ') FROM public.regress_found('má');
SELECT string_agg(name || ':' || rank_tier, ' ') FROM public.regress_found('mạ');
SELECT (SELECT name FROM public.regress_found('mà') LIMIT 1) AS first_for_ma2,
       (SELECT name FROM public.regress_found('mả') LIMIT 1) AS first_for_ma3,
       (SELECT name FROM public.regress_found('mã') LIMIT 1) AS first_for_ma4;
-- an unaccented query: every spelling, all in the same tier
SELECT count(*) AS found, count(DISTINCT rank_tier) AS tiers,
       array_agg(name ORDER BY name) AS names
FROM public.regress_found('ma');
-- both ways: unaccented finds accented and accented finds unaccented (the
-- exact one first); đ is d
SELECT string_agg(name || ':' || rank_tier, ' ') FROM public.regress_found('nghi dinh');
SELECT string_agg(name || ':' || rank_tier, ' ') FROM public.regress_found('Nghị định');
SELECT string_agg(name, ' ') FROM public.regress_found('da nang');
SELECT string_agg(name, ' ') FROM public.regress_found('ĐÀ NẴNG');
SELECT string_agg(name, ' ') FROM public.regress_found('ma tuy');
-- every word must be there; a phrase is a phrase; "-" leaves out
SELECT string_agg(name, ' ') FROM public.regress_found('ma tuy hoc duong');
SELECT string_agg(name, ' ') FROM public.regress_found('"phong chong ma tuy"');
SELECT string_agg(name, ' ') FROM public.regress_found('ma tuy -mat');
-- the other metadata: sender, sender's symbol (whole or in part), signer,
-- type name, agency, date
SELECT string_agg(name, ' ') FROM public.regress_found('so du lich');
SELECT string_agg(name, ' ') FROM public.regress_found('15/SDL-VP');
SELECT string_agg(name, ' ') FROM public.regress_found('SDL-VP');
SELECT string_agg(name, ' ') FROM public.regress_found('le tien loi');
SELECT string_agg(name, ' ' ORDER BY name) FROM public.regress_found('to trinh');
SELECT string_agg(name, ' ') FROM public.regress_found('12/03/2020');
SELECT count(*) = (SELECT count(*) FROM ioffice.document WHERE agency_id = (SELECT id FROM ioffice.unit WHERE code = '000.00.32.H41'))
       AS agency_name_finds_all
FROM ioffice.search('Sốp Cộp', '{}', 10000);
-- the snippet marks the words found, in their own spelling
SELECT snippet FROM ioffice.search('nghi dinh') s JOIN names n ON n.id = s.document AND n.name = 'Nghị định';
SELECT snippet FROM ioffice.search('da nang') s JOIN names n ON n.id = s.document;
-- the limit
SELECT count(*) AS limited FROM ioffice.search('ma', '{}', 2);

-- Filters
SELECT string_agg(name, ' ' ORDER BY name) FROM public.regress_found('ma', '{"doc_type": "KH"}');
SELECT string_agg(name, ' ' ORDER BY name) FROM public.regress_found('ma', '{"signer": "loi"}');
SELECT string_agg(name, ' ' ORDER BY name) FROM public.regress_found('', '{"signer": "kien"}');
SELECT string_agg(name, ' ' ORDER BY name) FROM public.regress_found('ma', '{"direction": "incoming"}');
SELECT string_agg(name, ' ' ORDER BY name) FROM public.regress_found('', '{"state": "registered"}');
SELECT string_agg(name, ' ' ORDER BY name) FROM public.regress_found('', '{"issued_from": "2020-01-01", "issued_to": "2020-12-31"}');
SELECT count(*) AS created_long_ago FROM ioffice.search('ma', '{"created_to": "2000-01-01"}');
SELECT count(*) > 0 AS created_since FROM ioffice.search('ma', '{"created_from": "2000-01-01"}');
SELECT count(*) AS other_agency FROM ioffice.search('ma', jsonb_build_object('agency', (SELECT id FROM ioffice.unit WHERE code = '001.32.32.H41')));
SELECT count(*) AS other_register FROM ioffice.search('', jsonb_build_object('register', (SELECT max(id) + 1 FROM ioffice.register)));
-- unknown keys and bad values: 22023 naming the key
SELECT regress_error($$SELECT * FROM ioffice.search('ma', '{"agencyy": 1}')$$, 0);
SELECT regress_error($$SELECT * FROM ioffice.search('ma', '{"agency": "UBND"}')$$, 0);
SELECT regress_error($$SELECT * FROM ioffice.search('ma', '{"agency": 1.5}')$$, 0);
SELECT regress_error($$SELECT * FROM ioffice.search('ma', '{"doc_type": 3}')$$, 0);
SELECT regress_error($$SELECT * FROM ioffice.search('ma', '{"direction": "sideways"}')$$, 0);
SELECT regress_error($$SELECT * FROM ioffice.search('ma', '{"signer": "nobody_at_all"}')$$, 0);
SELECT regress_error($$SELECT * FROM ioffice.search('ma', '{"issued_from": "12/03/2020"}')$$, 0);
SELECT regress_error($$SELECT * FROM ioffice.search('ma', '{"issued_to": "2021-02-30"}')$$, 0);
-- a query is a few words: a page of text is refused as too long (it once
-- ended in "stack depth limit exceeded"), the longest allowed still runs
SELECT regress_error($$SELECT * FROM ioffice.search(repeat('nghị định ', 20000))$$, 0);
SELECT regress_error($$SELECT * FROM ioffice.search_export(repeat('(a ', 100000), '{}', 'csv')$$, 0);
SELECT count(*) >= 0 AS longest_query_runs FROM ioffice.search(repeat('(ma ', 500));
SELECT regress_error($$SELECT * FROM ioffice.search('ma', '[]')$$, 0);
SELECT regress_error($$SELECT * FROM ioffice.search('ma', '{}', 0)$$, 0);
SELECT regress_error($$SELECT * FROM ioffice.search(' - ')$$, 0);

-- Visibility: each person finds exactly the documents they may see among
-- those that match, no more (nothing hidden counts either)
RESET ioffice.actor;
CREATE ROLE regress_search_app IN ROLE ioffice_app;
CREATE ROLE regress_search_report IN ROLE ioffice_reader;
GRANT SELECT ON names TO regress_search_app, regress_search_report;
CREATE TEMP TABLE seen (login text, names text);
GRANT INSERT ON seen TO regress_search_app;
SET ROLE regress_search_app;
DO $$
DECLARE
    v_login text;
BEGIN
    FOR v_login IN SELECT login FROM ioffice.person ORDER BY id LOOP
        PERFORM set_config('ioffice.actor', v_login, true);
        INSERT INTO seen
        SELECT v_login, coalesce(string_agg(coalesce(n.name, 'other'), ' ' ORDER BY n.name), '')
        FROM ioffice.search('ma tuy') s LEFT JOIN names n ON n.id = s.document;
        -- the same set as the row-level security of document gives
        IF EXISTS (SELECT s.document FROM ioffice.search('ma tuy', '{}', 10000) s
                   EXCEPT SELECT d.id FROM ioffice.document d)
           OR (SELECT count(*) FROM ioffice.search('ma tuy', '{}', 10000))
              <> (SELECT count(*) FROM ioffice.document d
                  WHERE d.id IN (SELECT id FROM names WHERE name IN ('ma', 'secret', 'tuan', 'xa'))) THEN
            RAISE EXCEPTION 'search and row-level security differ for %', v_login;
        END IF;
    END LOOP;
    PERFORM set_config('ioffice.actor', '', true);
END
$$;
RESET ROLE;
SELECT login, names FROM seen ORDER BY login;
-- nobody (no person named) finds nothing; a reader finds the ordinary
-- documents, not the confidential one
SET ROLE regress_search_app;
SELECT count(*) AS nobody FROM ioffice.search('ma tuy');
SET ROLE regress_search_report;
SELECT string_agg(coalesce(n.name, 'other'), ' ' ORDER BY n.name) AS reader
FROM ioffice.search('ma tuy') s LEFT JOIN names n ON n.id = s.document;
-- nobody else reads the table search() reads
SELECT regress_error('SELECT count(*) FROM ioffice.search_text', 0);
SET ROLE regress_search_app;
SELECT regress_error('SELECT count(*) FROM ioffice.search_text', 0);
RESET ROLE;

-- Saved searches: a person's own, run with search()'s rights
SET ioffice.actor = 'regress_luan';
SELECT ioffice.save_search('Ma túy, báo cáo', 'ma tuy', '{"doc_type": "BC"}') AS saved \gset
SELECT ioffice.save_search('Ma túy, báo cáo', 'ma túy', '{"doc_type": "BC"}') = :saved AS same_name_same_row;
SELECT string_agg(coalesce(n.name, 'other'), ' ' ORDER BY n.name) AS luan_saved
FROM ioffice.search_saved(:saved) s LEFT JOIN names n ON n.id = s.document;
SELECT regress_error($$SELECT ioffice.save_search('x', 'ma', '{"type": "BC"}')$$, 0);
SELECT regress_error($$SELECT ioffice.save_search('', 'ma')$$, 0);
SET ioffice.actor = 'regress_tuan';
SELECT ioffice.save_search('Ma túy, báo cáo', 'ma tuy') <> :saved AS own_name_space;
SELECT regress_error('SELECT * FROM ioffice.search_saved(' || :saved || ')', :saved);
SELECT regress_error('SELECT ioffice.drop_saved_search(' || :saved || ')', :saved);
SET ROLE regress_search_app;
SELECT count(*) AS tuan_sees_saved, bool_and(query = 'ma tuy') AS only_his FROM ioffice.saved_search;
RESET ROLE;
SET ioffice.actor = 'regress_luan';
SELECT ioffice.drop_saved_search(:saved);
SELECT count(*) AS luan_saved_left FROM ioffice.saved_search WHERE person_id = ioffice.actor();
RESET ioffice.actor;

-- The text index is used: a few thousand documents, and a word in a few
SELECT id AS luan, unit_id AS vp FROM ioffice.person WHERE login = 'regress_luan' \gset
INSERT INTO ioffice.document (doc_type, abstract, state, agency_id, drafting_unit_id, drafter_id)
SELECT 'CV', 'Công văn thường lệ số ' || g || CASE WHEN g % 1000 = 0 THEN ' về khoáng sản' ELSE '' END,
       'draft', (SELECT agency_id FROM ioffice.unit WHERE id = :vp), :vp, :luan
FROM generate_series(1, 3000) g;
-- (a vacuum empties the index's pending list, which the planner counts)
VACUUM ANALYZE ioffice.search_text;
CREATE FUNCTION public.regress_search_plan(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE 'EXPLAIN (COSTS OFF) SELECT s.document_id FROM ioffice.search_text s '
        || 'WHERE s.words @@ websearch_to_tsquery(''ioffice.search_vi'', ' || quote_literal(q) || ')';
END
$$;
SELECT bool_or(p ~ 'Bitmap Index Scan on search_text_words_idx') AS gin_used,
       bool_or(p ~ 'Seq Scan') AS seq_scan
FROM public.regress_search_plan('khoang san') p;
SET ioffice.actor = 'regress_luan';
SELECT count(*) AS khoang_san FROM ioffice.search('khoáng sản');
RESET ioffice.actor;

-- a long text's snippet is drawn from about 1.2 kB around the first place
-- the query's folded words stand together (ts_headline parses all it is
-- given), else around the first word; a short text whole
CREATE TEMP TABLE long_text AS
SELECT repeat('Báo cáo tổng hợp số liệu của các đơn vị trực thuộc. ', 100)
       || 'Kế hoạch PHÒNG CHÁY, chữa cháy năm nay. '
       || repeat('Các nội dung khác của văn bản. ', 100) || 'Chữa cháy rừng.' AS body;
SELECT octet_length(body) > 8000 AS long,
       octet_length(w) BETWEEN 1000 AND 1200 AS window_of_1kb,
       w LIKE '%Kế hoạch PHÒNG CHÁY, chữa cháy năm nay%' AS holds_the_words,
       w NOT LIKE '%Chữa cháy rừng%' AS not_the_end,
       left(w, 1) NOT IN (' ', '.') OR w LIKE ' %' AS starts_at_a_word
FROM long_text, ioffice._search_window(body, '{phong,chay,chua,chay}') w;
-- one word only, deep in the text
SELECT w LIKE '%Chữa cháy rừng.' AS ends_with_the_last_word
FROM long_text, ioffice._search_window(body, '{rung}') w;
-- not found, or short: from the start
SELECT w = left(body, octet_length(w)) AND octet_length(w) = octet_length(body) AS whole_when_not_found
FROM long_text, ioffice._search_window(body, '{tau,vu,tru}') w;
SELECT ioffice._search_window('Nghị định 30', '{nghi,dinh}') AS short_whole;
-- a text without spaces: the window starts at the match
SELECT left(ioffice._search_window(repeat('x', 3000) || 'Nghịđịnh' || repeat('y', 3000), '{nghidinh}'), 8)
       AS from_the_match;
-- through search(): the snippet marks the phrase found deep in the text
INSERT INTO ioffice.search_text (document_id, file_id, body, keys)
SELECT s.document_id, -1, l.body, s.keys
FROM ioffice.search_text s, long_text l
WHERE s.file_id IS NULL ORDER BY s.document_id LIMIT 1;
SET ioffice.actor = 'regress_luan';
SELECT snippet LIKE '%«PHÒNG» «CHÁY», «chữa» «cháy»%' AS marked
FROM ioffice.search('"phòng cháy chữa cháy"') WHERE snippet LIKE '%Kế hoạch%';
RESET ioffice.actor;
DELETE FROM ioffice.search_text WHERE file_id = -1;

DROP FUNCTION public.regress_found(text, jsonb);
DROP FUNCTION public.regress_search_plan(text);
DROP OWNED BY regress_search_app, regress_search_report;
DROP ROLE regress_search_app, regress_search_report;
