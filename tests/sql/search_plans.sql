-- search() at a province's scale (tests/bench/search): what keeps a search
-- for a common word from ranking every document that has it.
SET client_min_messages = warning;

-- a person's documents' rows are found by an index (search() applies the
-- visibility test before ranking, and the planner starts from the
-- person's documents when they are fewer than the word's)
SELECT indexdef LIKE '%(document_id)' AND indexdef NOT LIKE '%WHERE%' AS document_index
FROM pg_indexes WHERE schemaname = 'ioffice' AND indexname = 'search_text_document_idx';
-- the texts and vectors out of line, the rows small (search_scale)
SELECT attstorage = 'x' AND 'toast_tuple_target=128' = ANY (c.reloptions) AS small_rows
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
WHERE attrelid = 'ioffice.search_text'::regclass AND attname = 'words';
-- each statement of search() is planned for its values: how common the
-- words are and whose documents these are decide the plan
SELECT 'plan_cache_mode=force_custom_plan' = ANY (proconfig) AS custom_plans
FROM pg_proc WHERE oid = 'ioffice.search(text, jsonb, int)'::regprocedure;
-- the visibility test comes before the ranking: the text index is asked
-- for the words and the caller's keys together (search_scale)
SELECT prosrc ~ 'FROM ioffice\.search_text s\s+WHERE s\.words @@ v_any AND \(v_all OR s\.keys && v_keys\)'
       AS visibility_before_rank
FROM pg_proc WHERE oid = 'ioffice.search(text, jsonb, int)'::regprocedure;
