-- search() at a province's scale (tests/bench/search): what keeps a search
-- for a common word from ranking every document that has it.
SET client_min_messages = warning;

-- a person's documents' rows are found by an index (search() applies the
-- visibility test before ranking, and the planner starts from the
-- person's documents when they are fewer than the word's)
SELECT indexdef LIKE '%(document_id)' AND indexdef NOT LIKE '%WHERE%' AS document_index
FROM pg_indexes WHERE schemaname = 'ioffice' AND indexname = 'search_text_document_idx';
-- the vectors search() ranks are kept in the row, not out of line
SELECT attstorage = 'm' AS words_in_row
FROM pg_attribute WHERE attrelid = 'ioffice.search_text'::regclass AND attname = 'words';
-- each statement of search() is planned for its values: how common the
-- words are and whose documents these are decide the plan
SELECT 'plan_cache_mode=force_custom_plan' = ANY (proconfig) AS custom_plans
FROM pg_proc WHERE oid = 'ioffice.search(text, jsonb, int)'::regprocedure;
-- the visibility test comes before the ranking: in search()'s statement
-- the document is joined in the rows that are ranked, not after the best
-- of each document is kept
SELECT prosrc ~ 'FROM ioffice\.search_text s JOIN ioffice\.document d ON d\.id = s\.document_id\s+WHERE s\.words @@ v_any\s+AND \(d\.drafter_id'
       AS visibility_before_rank
FROM pg_proc WHERE oid = 'ioffice.search(text, jsonb, int)'::regprocedure;
