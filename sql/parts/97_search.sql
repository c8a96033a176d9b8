-- ---------------------------------------------------------------------------
-- Search (Decree 30 Appendix VI III.6d): search(query, filters) over every
-- metadata field of a document and the text of its files
-- ---------------------------------------------------------------------------

-- Vietnamese without a stemmer: PostgreSQL's default parser cuts the words
-- and our own dictionary (extension/search.c) gives each word folded
-- ("Nghị định" -> nghi, dinh; "Đà Nẵng" -> da, nang) and, when it differs,
-- as written in lower case (nghị, định), two alternatives at one position.
-- search_vi stores and matches: an unaccented query finds every spelling;
-- search_vi_exact parses the query as written, which ranks the documents
-- spelling it so first (tones change the word: ma, má, mà).  No dependency
-- on contrib's unaccent (a STABLE function whose rules a DBA may edit under
-- stored vectors) or pg_trgm: the folding of the alphabet is fixed, so the
-- configurations are immutable and the vectors are stored and indexed.
CREATE FUNCTION _search_fold_init(internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'ioffice_search_fold_init' LANGUAGE C STRICT;
CREATE FUNCTION _search_fold_lexize(internal, internal, internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'ioffice_search_fold_lexize' LANGUAGE C STRICT;
CREATE TEXT SEARCH TEMPLATE search_fold (INIT = _search_fold_init, LEXIZE = _search_fold_lexize);
CREATE TEXT SEARCH DICTIONARY search_fold (TEMPLATE = search_fold);
COMMENT ON TEXT SEARCH DICTIONARY search_fold IS 'Vietnamese words folded (no tones, đ as d) and as written, in lower case';
CREATE TEXT SEARCH DICTIONARY search_exact (TEMPLATE = search_fold, exact = true);
COMMENT ON TEXT SEARCH DICTIONARY search_exact IS 'Vietnamese words as written, in lower case';
CREATE TEXT SEARCH CONFIGURATION search_vi (COPY = pg_catalog.simple);
ALTER TEXT SEARCH CONFIGURATION search_vi ALTER MAPPING REPLACE pg_catalog.simple WITH search_fold;
COMMENT ON TEXT SEARCH CONFIGURATION search_vi IS 'What search() stores and matches: Vietnamese, accent-insensitive';
CREATE TEXT SEARCH CONFIGURATION search_vi_exact (COPY = pg_catalog.simple);
ALTER TEXT SEARCH CONFIGURATION search_vi_exact ALTER MAPPING REPLACE pg_catalog.simple WITH search_exact;
COMMENT ON TEXT SEARCH CONFIGURATION search_vi_exact IS 'How search() ranks: the words of a query as written';

-- What search() reads: one row per document for its metadata (file_id
-- NULL), one per current file whose text the worker extracted.  Nobody
-- reads it but search(), which applies the documents' visibility itself.
CREATE TABLE search_text (
    document_id bigint NOT NULL REFERENCES document,
    -- no foreign key to file (see unit.parent_id): files are never deleted,
    -- and a TRUNCATE of file must meet its own trigger's refusal
    file_id     bigint,
    body        text NOT NULL,
    -- a slash separates words: the parser would read "15/QĐ-UBND" as a
    -- path ("15/q") and a query "QĐ-UBND" would not find it
    words       tsvector GENERATED ALWAYS AS
                (to_tsvector('ioffice.search_vi'::regconfig, translate(body, '/', ' '))) STORED,
    -- who may find the row, from its document (_search_keys()): kept by
    -- the triggers below in the transaction that changes the document
    keys        text[] NOT NULL
);
CREATE UNIQUE INDEX search_text_metadata_idx ON search_text (document_id) WHERE file_id IS NULL;
CREATE UNIQUE INDEX search_text_file_idx ON search_text (file_id) WHERE file_id IS NOT NULL;
-- the words and who may find them, in one index: a person's search for a
-- common word reads, in the index, the entries of the word and of the
-- person's keys together and finds the rows with both, without visiting
-- the thousands of rows of other agencies that have the word
CREATE INDEX search_text_words_idx ON search_text USING gin (words, keys);
-- a person's documents' rows, for search() when the documents the person
-- may see are fewer than those a common word is in
CREATE INDEX search_text_document_idx ON search_text (document_id);
-- an agency's documents newest first: search()'s walk for a clerk
-- (_search_newest), which stops after some hundreds
CREATE INDEX document_agency_idx ON document (agency_id, id);
-- and of one type (a search filtered by type): only those read
CREATE INDEX document_agency_type_idx ON document (agency_id, doc_type, id);
-- A file's text and its vector out of line (TOAST), the rest in rows of
-- some 150 bytes: search() finds its candidates through the text index and
-- these small rows, which stay in memory (a million documents' rows in some
-- 300 MB, not 8 GB), and reads the vectors of the few it ranks only.
ALTER TABLE search_text SET (toast_tuple_target = 128);
COMMENT ON TABLE search_text IS 'The text search() finds documents by: each document''s metadata, and its files'' text';
ALTER TABLE search_text ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON search_text FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('search_text', '');

-- The metadata a clerk searches by, as one text: the abstract first (the
-- snippet shows it), then type, number and symbol, the sender's, agency,
-- drafting unit, sender, signer, register, field, dates (dd/mm/yyyy) and
-- identifier.  The names kept on the document at issue come first.
CREATE FUNCTION _search_metadata(d ioffice.document) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- (PL/pgSQL for its plan kept across calls: as a SQL function, planned
    -- again at every call, it cost 2 ms of each document written)
    RETURN concat_ws(' · ', d.abstract,
        coalesce(d.doc_type_name, (SELECT t.name FROM ioffice.doc_type t WHERE t.code = d.doc_type)),
        CASE WHEN d.number IS NOT NULL THEN d.number || '/' || d.symbol ELSE d.symbol END,
        d.sender_symbol,
        (SELECT u.name FROM ioffice.unit u WHERE u.id = d.agency_id),
        coalesce(d.drafting_unit_name, (SELECT u.name FROM ioffice.unit u WHERE u.id = d.drafting_unit_id)),
        coalesce((SELECT u.name FROM ioffice.unit u WHERE u.id = d.sender_agency_id), d.sender_name),
        coalesce(d.signer_name, (SELECT p.full_name FROM ioffice.person p WHERE p.id = d.signer_id)),
        (SELECT r.name FROM ioffice.register r WHERE r.id = d.register_id),
        d.field,
        to_char(d.issued_on, 'DD/MM/YYYY'), to_char(d.sender_date, 'DD/MM/YYYY'),
        d.identifier);
END
$$;
REVOKE ALL ON FUNCTION _search_metadata(ioffice.document) FROM PUBLIC;

-- A document's metadata row follows the document (a restore brings the
-- rows with the dump).  Only on the columns that are in it: a change of
-- state writes nothing here.
CREATE FUNCTION _search_document() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF ioffice._restoring_dump() THEN
        RETURN NULL;
    END IF;
    INSERT INTO ioffice.search_text AS s (document_id, file_id, body)
    VALUES (NEW.id, NULL, ioffice._search_metadata(NEW))
    ON CONFLICT (document_id) WHERE file_id IS NULL
    DO UPDATE SET body = EXCLUDED.body WHERE s.body IS DISTINCT FROM EXCLUDED.body;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION _search_document() FROM PUBLIC;
CREATE TRIGGER search_text AFTER INSERT OR UPDATE OF abstract, doc_type, number, symbol, sender_symbol,
    agency_id, drafting_unit_id, sender_agency_id, sender_name, signer_id, register_id, field,
    issued_on, sender_date, identifier, doc_type_name, signer_name, drafting_unit_name
    ON document FOR EACH ROW EXECUTE FUNCTION _search_document();

-- Who may find a document, as the keys of its search rows: 'd:<document>'
-- (the people of its tasks, who search() knows by the documents' ids),
-- 'a:<agency>' (its agency's clerks, and the admins), 'p:<person>' (its
-- drafter), and 'r' when the reporting tools (ioffice_reader) may read it:
-- the tests of the policies visible and visible_to_readers of document.
-- search() asks the text index for the rows that have the words AND one of
-- the caller's keys, and checks the policies' tests again on the documents
-- it keeps.
CREATE FUNCTION _search_keys(doc bigint) RETURNS text[]
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT array_remove(ARRAY['d:' || d.id, 'a:' || d.agency_id, 'p:' || d.drafter_id,
                              CASE WHEN d.confidentiality = 'normal'
                                        AND (d.register_id IS NULL OR NOT r.confidential)
                                   THEN 'r' END], NULL)
      FROM ioffice.document d LEFT JOIN ioffice.register r ON r.id = d.register_id
     WHERE d.id = _search_keys.doc
$$;
REVOKE ALL ON FUNCTION _search_keys(bigint) FROM PUBLIC;

-- A row written to search_text gets its document's keys (a restore brings
-- them with the rows).
CREATE FUNCTION _search_text_keys() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT ioffice._restoring_dump() THEN
        NEW.keys := coalesce(ioffice._search_keys(NEW.document_id), '{}');
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION _search_text_keys() FROM PUBLIC;
CREATE TRIGGER search_text_keys BEFORE INSERT ON search_text
    FOR EACH ROW EXECUTE FUNCTION _search_text_keys();

-- A document whose agency, drafter, confidentiality or register changes,
-- and the documents of a register made confidential or ordinary, have
-- their rows' keys written again, in the same transaction (only the rows
-- whose keys differ: numbering a document in an ordinary register writes
-- nothing).
CREATE FUNCTION _search_document_keys() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_keys text[];
BEGIN
    IF ioffice._restoring_dump() THEN
        RETURN NULL;
    END IF;
    IF TG_TABLE_NAME = 'document' THEN
        v_keys := coalesce(ioffice._search_keys(NEW.id), '{}');
        UPDATE ioffice.search_text s SET keys = v_keys
         WHERE s.document_id = NEW.id AND s.keys IS DISTINCT FROM v_keys;
    ELSE
        UPDATE ioffice.search_text s SET keys = coalesce(ioffice._search_keys(s.document_id), '{}')
          FROM ioffice.document d
         WHERE d.register_id = NEW.id AND s.document_id = d.id
           AND s.keys IS DISTINCT FROM coalesce(ioffice._search_keys(s.document_id), '{}');
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION _search_document_keys() FROM PUBLIC;
CREATE TRIGGER search_text_keys AFTER UPDATE OF agency_id, drafter_id, confidentiality, register_id
    ON document FOR EACH ROW
    WHEN (OLD.agency_id IS DISTINCT FROM NEW.agency_id OR OLD.drafter_id IS DISTINCT FROM NEW.drafter_id
          OR OLD.confidentiality IS DISTINCT FROM NEW.confidentiality
          OR OLD.register_id IS DISTINCT FROM NEW.register_id)
    EXECUTE FUNCTION _search_document_keys();
CREATE TRIGGER search_text_keys AFTER UPDATE OF confidential ON register
    FOR EACH ROW WHEN (OLD.confidential IS DISTINCT FROM NEW.confidential)
    EXECUTE FUNCTION _search_document_keys();

-- The text of files: each PDF, docx, xlsx, doc or xls attached is queued
-- here, and the signing worker extracts its text (poppler's pdftotext; for
-- the others workers/ioffice_text.py, LibreOffice for doc and xls), outside the server and under the PDF
-- helper's limits (workers/text_jobs.c), into search_text.  done_at: when it was done (error: why there is no text).
CREATE TABLE search_extraction (
    file_id     bigint PRIMARY KEY,
    document_id bigint NOT NULL REFERENCES document,
    queued_at   timestamptz NOT NULL DEFAULT now(),
    done_at     timestamptz,
    error       text
);
CREATE INDEX search_extraction_queue_idx ON search_extraction (file_id) WHERE done_at IS NULL;
COMMENT ON TABLE search_extraction IS 'Files whose text the worker extracts for search(): queued, done, or failed with the reason';
REVOKE ALL ON search_extraction FROM PUBLIC;
GRANT SELECT ON search_extraction TO ioffice_admin;
SELECT pg_catalog.pg_extension_config_dump('search_extraction', '');

-- A file's text is searched while the file is current: a PDF, docx or
-- xlsx attached is queued; a file replaced or removed leaves search (and the queue).
CREATE FUNCTION _search_file() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF ioffice._restoring_dump() THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO ioffice.search_extraction (file_id, document_id)
        VALUES (NEW.id, NEW.document_id) ON CONFLICT DO NOTHING;
    ELSE
        -- the job first: this waits for the worker recording its text
        -- (_search_extracted), whose row the next statement then sees
        DELETE FROM ioffice.search_extraction WHERE file_id = NEW.id AND done_at IS NULL;
        DELETE FROM ioffice.search_text WHERE file_id = NEW.id;
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION _search_file() FROM PUBLIC;
CREATE TRIGGER search_extraction AFTER INSERT ON file
    FOR EACH ROW WHEN (NEW.kind IN ('pdf', 'docx', 'xlsx', 'doc', 'xls') AND NEW.superseded_at IS NULL AND NEW.removed_at IS NULL)
    EXECUTE FUNCTION _search_file();
CREATE TRIGGER search_text_current AFTER UPDATE OF superseded_at, removed_at ON file
    FOR EACH ROW WHEN (NEW.superseded_at IS NOT NULL OR NEW.removed_at IS NOT NULL)
    EXECUTE FUNCTION _search_file();

-- The worker's answer for one file: its text (kept if the file is still
-- current), or why there is none.  The job is locked first: a file
-- replaced or removed meanwhile has no job left (the trigger above), or
-- is seen as no longer current by the statements after the lock.  A text
-- too long for a text search vector fails its job, not the worker.
CREATE FUNCTION _search_extracted(file bigint, body text, error text) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_error text := error;
BEGIN
    PERFORM 1 FROM ioffice.search_extraction j
    WHERE j.file_id = _search_extracted.file AND j.done_at IS NULL FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF v_error IS NULL AND btrim(body, E' \t\n\r\f') = '' THEN
        v_error := 'the file has no text (a scan?)';
    END IF;
    IF v_error IS NULL THEN
        BEGIN
            INSERT INTO ioffice.search_text (document_id, file_id, body)
            SELECT f.document_id, f.id, _search_extracted.body FROM ioffice.file f
            WHERE f.id = _search_extracted.file AND f.superseded_at IS NULL AND f.removed_at IS NULL
            ON CONFLICT (file_id) WHERE file_id IS NOT NULL DO UPDATE SET body = EXCLUDED.body;
        EXCEPTION WHEN program_limit_exceeded THEN
            v_error := SQLERRM;
        END;
    END IF;
    UPDATE ioffice.search_extraction j SET done_at = now(), error = v_error
    WHERE j.file_id = _search_extracted.file;
END
$$;
REVOKE ALL ON FUNCTION _search_extracted(bigint, text, text) FROM PUBLIC;

-- Is the role that called search() a reader (the policy visible_to_readers
-- of document)?  search() is SECURITY DEFINER: current_user is its owner.
CREATE FUNCTION _search_outer_is_reader() RETURNS boolean
    AS 'MODULE_PATHNAME', 'ioffice_search_outer_is_reader' LANGUAGE C STABLE;
REVOKE ALL ON FUNCTION _search_outer_is_reader() FROM PUBLIC;

-- The filters of search(), checked: an unknown key, or a value of the wrong
-- type, is refused naming the key.
CREATE FUNCTION _search_filters(filters jsonb, OUT agency bigint, OUT doc_type text,
    OUT register bigint, OUT state text, OUT signer bigint, OUT direction text,
    OUT issued_from date, OUT issued_to date, OUT created_from date, OUT created_to date)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k text;
    v jsonb;
    s text;
BEGIN
    IF filters IS NULL THEN
        RETURN;
    END IF;
    IF jsonb_typeof(filters) <> 'object' THEN
        RAISE EXCEPTION 'search filters must be a JSON object' USING ERRCODE = '22023';
    END IF;
    FOR k, v IN SELECT e.key, e.value FROM jsonb_each(filters) e LOOP
        s := v #>> '{}';
        IF k IN ('agency', 'register') THEN
            IF jsonb_typeof(v) <> 'number' OR s !~ '^[0-9]{1,18}$' THEN
                RAISE EXCEPTION 'search filter "%" must be an id (a whole number)', k
                    USING ERRCODE = '22023';
            END IF;
            IF k = 'agency' THEN agency := s::bigint; ELSE register := s::bigint; END IF;
        ELSIF k IN ('doc_type', 'state') THEN
            IF jsonb_typeof(v) <> 'string' THEN
                RAISE EXCEPTION 'search filter "%" must be a string', k USING ERRCODE = '22023';
            END IF;
            IF k = 'doc_type' THEN doc_type := s; ELSE state := s; END IF;
        ELSIF k = 'direction' THEN
            IF jsonb_typeof(v) <> 'string' OR s NOT IN ('outgoing', 'incoming') THEN
                RAISE EXCEPTION 'search filter "direction" must be "outgoing" or "incoming"'
                    USING ERRCODE = '22023';
            END IF;
            direction := s;
        ELSIF k = 'signer' THEN
            -- a person's login, or id
            IF jsonb_typeof(v) = 'number' AND s ~ '^[0-9]{1,18}$' THEN
                signer := s::bigint;
            ELSIF jsonb_typeof(v) = 'string' THEN
                SELECT p.id INTO signer FROM ioffice.person p WHERE p.login = s;
                IF NOT FOUND THEN
                    RAISE EXCEPTION 'search filter "signer": unknown person "%"', pg_catalog.left(s, 60)
                        USING ERRCODE = '22023';
                END IF;
            ELSE
                RAISE EXCEPTION 'search filter "signer" must be a login or a person id'
                    USING ERRCODE = '22023';
            END IF;
        ELSIF k IN ('issued_from', 'issued_to', 'created_from', 'created_to') THEN
            IF jsonb_typeof(v) <> 'string' OR s !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' THEN
                RAISE EXCEPTION 'search filter "%" must be a date as YYYY-MM-DD', k
                    USING ERRCODE = '22023';
            END IF;
            BEGIN
                CASE k
                    WHEN 'issued_from' THEN issued_from := s::date;
                    WHEN 'issued_to' THEN issued_to := s::date;
                    WHEN 'created_from' THEN created_from := s::date;
                    ELSE created_to := s::date;
                END CASE;
            EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format THEN
                RAISE EXCEPTION 'search filter "%" is not a date: %', k, s USING ERRCODE = '22023';
            END;
        ELSE
            RAISE EXCEPTION 'unknown search filter "%"', pg_catalog.left(k, 60)
                USING ERRCODE = '22023',
                      HINT = 'The filters are agency, doc_type, register, state, signer, direction, '
                             'issued_from, issued_to, created_from and created_to.';
        END IF;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION _search_filters(jsonb) FROM PUBLIC;

-- How search() scores a row: NULL when its vector lacks the query's words
-- in every spelling, else ts_rank(words, any, 32) plus 1 when it has them
-- spelled as the query is; the vector read once (extension/search.c).
CREATE FUNCTION _search_score(words tsvector, q_any tsquery, q_exact tsquery) RETURNS real
    AS 'MODULE_PATHNAME', 'ioffice_search_score' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
REVOKE ALL ON FUNCTION _search_score(tsvector, tsquery, tsquery) FROM PUBLIC;

-- The part of a long text that a result's snippet is drawn from: about 1.2 kB
-- around the first place the query's folded words stand one after the
-- other, else its first word; a short text, or one where neither is found,
-- whole (its first 64 kB).  ts_headline parses all it is given.
CREATE FUNCTION _search_window(body text, terms text[]) RETURNS text
    AS 'MODULE_PATHNAME', 'ioffice_search_window' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
REVOKE ALL ON FUNCTION _search_window(text, text[]) FROM PUBLIC;

-- How common the words of a query are: the share of search_text's rows
-- that have its rarest word, from the table's statistics (the most common
-- lexemes and their frequencies, as the planner reads them); 0 for a word
-- not among them, or without statistics.  A word of the query is given
-- folded and, when it has marks, as written, at one position: the folded
-- form, the commoner, counts.  An estimate: two common words are seldom
-- both in a row as often as the rarer alone (search() checks).
CREATE FUNCTION _search_word_share(query text) RETURNS float8
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_elems text[];
    v_freqs real[];
BEGIN
    SELECT s.most_common_elems::text::text[], s.most_common_elem_freqs INTO v_elems, v_freqs
      FROM pg_catalog.pg_stats s
     WHERE s.schemaname = 'ioffice' AND s.tablename = 'search_text' AND s.attname = 'words';
    IF v_elems IS NULL THEN
        RETURN 0;
    END IF;
    RETURN (SELECT coalesce(min(w.share), 0) FROM (
                SELECT max(coalesce(v_freqs[array_position(v_elems, u.lexeme)], 0)) AS share
                  FROM unnest(to_tsvector('ioffice.search_vi'::regconfig, translate(query, '/', ' '))) u,
                       unnest(u.positions) p(pos)
                 GROUP BY p.pos) w);
END
$$;
REVOKE ALL ON FUNCTION _search_word_share(text) FROM PUBLIC;

-- The documents a person (or a reporting tool, or an admin: every_one)
-- may see that pass search()'s filters, newest first, at most n of them:
-- the tests of the policies visible and visible_to_readers of document,
-- each from its own index in the order of ids (a clerk's agency's by
-- document_agency_idx, their drafts by document_drafter_idx, their tasks'
-- and a reader's by the primary key), each stopping at n, merged.  A
-- statement made for the filters given, so that each is planned with the
-- tests it has.
CREATE FUNCTION _search_newest(filters jsonb, me bigint, every_one boolean, reader boolean,
                               agencies bigint[], tasks bigint[], n int) RETURNS bigint[]
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f record := ioffice._search_filters(filters);
    v_filter text;
    v_sql text;
    v_docs bigint[];
BEGIN
    v_filter := concat(
        CASE WHEN f.agency IS NOT NULL THEN ' AND d.agency_id = $1' END,
        CASE WHEN f.doc_type IS NOT NULL THEN ' AND d.doc_type = $2' END,
        CASE WHEN f.register IS NOT NULL THEN ' AND d.register_id = $3' END,
        CASE WHEN f.state IS NOT NULL THEN ' AND d.state = $4' END,
        CASE WHEN f.signer IS NOT NULL THEN ' AND d.signer_id = $5' END,
        CASE WHEN f.direction IS NOT NULL THEN ' AND d.direction = $6' END,
        CASE WHEN f.issued_from IS NOT NULL THEN ' AND coalesce(d.issued_on, d.sender_date) >= $7' END,
        CASE WHEN f.issued_to IS NOT NULL THEN ' AND coalesce(d.issued_on, d.sender_date) <= $8' END,
        CASE WHEN f.created_from IS NOT NULL
             THEN ' AND (d.created_at AT TIME ZONE ioffice.timezone())::date >= $9' END,
        CASE WHEN f.created_to IS NOT NULL
             THEN ' AND (d.created_at AT TIME ZONE ioffice.timezone())::date <= $10' END);
    -- (an admin sees every document, a clerk every one of their agency:
    -- then the filter by agency alone, or all)
    IF every_one OR f.agency = ANY (agencies) THEN
        v_sql := 'SELECT d.id FROM ioffice.document d WHERE true' || v_filter || ' ORDER BY d.id DESC LIMIT $14';
    ELSE
        v_sql := array_to_string(ARRAY[
            CASE WHEN cardinality(agencies) > 0 THEN
                '(SELECT a.id FROM unnest($12) g(agency) CROSS JOIN LATERAL ('
                'SELECT d.id FROM ioffice.document d WHERE d.agency_id = g.agency' || v_filter ||
                ' ORDER BY d.id DESC LIMIT $14) a)' END,
            CASE WHEN me IS NOT NULL THEN
                '(SELECT d.id FROM ioffice.document d WHERE d.drafter_id = $11' || v_filter ||
                ' ORDER BY d.id DESC LIMIT $14)' END,
            -- (without filters, the ids themselves: no document is read)
            CASE WHEN cardinality(tasks) > 0 AND v_filter = '' THEN
                '(SELECT t.id FROM unnest($13) t(id) ORDER BY t.id DESC LIMIT $14)'
                 WHEN cardinality(tasks) > 0 THEN
                '(SELECT d.id FROM ioffice.document d WHERE d.id = ANY ($13)' || v_filter ||
                ' ORDER BY d.id DESC LIMIT $14)' END,
            CASE WHEN reader THEN
                '(SELECT d.id FROM ioffice.document d WHERE d.confidentiality = ''normal'''
                ' AND (d.register_id IS NULL OR d.register_id IN'
                ' (SELECT r.id FROM ioffice.register r WHERE NOT r.confidential))' || v_filter ||
                ' ORDER BY d.id DESC LIMIT $14)' END], ' UNION ');
        IF v_sql = '' THEN
            RETURN '{}';
        END IF;
        v_sql := 'SELECT x.id FROM (' || v_sql || ') x ORDER BY x.id DESC LIMIT $14';
    END IF;
    EXECUTE 'SELECT ARRAY(' || v_sql || ')' INTO v_docs
        USING f.agency, f.doc_type, f.register, f.state, f.signer, f.direction, f.issued_from, f.issued_to,
              f.created_from, f.created_to, me, agencies, tasks, n;
    RETURN v_docs;
END
$$;
REVOKE ALL ON FUNCTION _search_newest(jsonb, bigint, boolean, boolean, bigint[], bigint[], int) FROM PUBLIC;

-- search(): the documents whose metadata or file text has the words of the
-- query, best first, at most "limit" of them.  A document is found by every
-- spelling of its words ("nghi dinh" finds "Nghị định"); one spelled as the
-- query is (every word, tones and all) ranks above those that are not (rank
-- 1 plus the text rank; an unaccented query is spelled as all of them).
-- Only documents the caller may see, by the same tests as the policies of
-- document (visible, visible_to_readers), applied here because search() is
-- SECURITY DEFINER: it reads search_text, which nobody else does, and the
-- planner may then use the text index (under row-level security it could
-- not: the match operator is not leakproof).  Nothing of a document the
-- caller may not see is counted or shown.  An empty query lists the
-- documents the filters keep, newest first.
--
-- In two steps, so that a common word costs about what a rare one does:
-- 1. the candidates: the newest documents (by id) the caller may see that
--    have the words and pass the filters, at most greatest("limit", 200)
--    of them, found one of two ways.  For rare words, the text index: the
--    rows with the words and one of the caller's keys in one scan
--    (search_text.keys: a clerk's agency, their own drafts; 'r' for a
--    reporting tool); the documents of the caller's tasks are found by
--    their ids; an admin's by the words alone.  Each is then checked
--    against the policies' tests on its document (the keys are derived
--    data), and the filters.  For common words, or when the caller may see
--    few documents with these filters, the walk: the documents the caller
--    may see, newest first from the indexes of document (_search_newest:
--    the policies' tests themselves), each one's rows tested for the words,
--    until the window is full -- a common word's index entries are most of
--    the table, and an admin's or a reporting tool's are not narrowed by
--    keys.  Both give the same candidates.
-- 2. the ranking, of the candidates only: the best row of each document
--    (_search_score, which reads each vector once; the walk scores as it
--    tests).
-- When more documents than the window match, the best of the newest are
-- returned, not the best of all, and a NOTICE says so (as a web search
-- engine ranks the first thousand pages it finds): ranking reads each
-- row's word vector, and a common word is in hundreds of thousands.  The
-- planner chooses with the values of this call: each statement is planned
-- for its values (plan_cache_mode), a generic plan would not know how
-- common the words are nor whose documents these are; without sequential
-- scans (enable_seqscan): the planner does not count the reading of the
-- vectors out of line, and took a scan of every row for cheaper than the
-- index; without JIT, whose compiling cost more than the statements.
CREATE FUNCTION search(query text, filters jsonb DEFAULT '{}', "limit" int DEFAULT 100)
RETURNS TABLE(document bigint, rank real, snippet text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    SET plan_cache_mode = force_custom_plan SET enable_seqscan = off SET jit = off
AS $$
DECLARE
    v_me bigint := ioffice.current_person();
    v_reader boolean := ioffice._search_outer_is_reader();
    v_agencies bigint[] := ioffice._clerk_agencies();
    v_all boolean;
    v_keys text[];
    v_tasks bigint[];
    v_window int;
    v_walk int;
    v_share float8;
    v_expect float8;
    v_n int;
    v_part int;
    v_round int;
    v_walked boolean := false;
    v_docs bigint[];
    v_found bigint[];
    v_files bigint[];
    v_scores real[];
    v_any tsquery;
    v_exact tsquery;
    v_terms text[];
    f record;
BEGIN
    f := ioffice._search_filters(filters);
    IF search."limit" IS NULL OR search."limit" < 1 OR search."limit" > 10000 THEN
        RAISE EXCEPTION 'search limit must be between 1 and 10000' USING ERRCODE = '22023';
    END IF;
    -- a query is a few words: websearch_to_tsquery() recurses over what it
    -- is given, and a page of text would end in "stack depth limit exceeded"
    IF length(query) > 2000 THEN
        RAISE EXCEPTION 'search query is too long'
            USING ERRCODE = '22023',
                  DETAIL = format('A query has at most 2000 characters; this one has %s.', length(query)),
                  HINT = 'Search for a few words of the text, and narrow with filters.';
    END IF;
    IF v_me IS NULL AND NOT v_reader THEN
        RETURN;
    END IF;
    v_tasks := CASE WHEN v_me IS NULL THEN '{}' ELSE ioffice._task_documents() END;
    v_any := websearch_to_tsquery('ioffice.search_vi'::regconfig, translate(coalesce(query, ''), '/', ' '));
    IF numnode(v_any) = 0 THEN
        IF filters IS NULL OR filters = '{}' THEN
            RAISE EXCEPTION 'search needs words to find, or a filter'
                USING ERRCODE = '22023';
        END IF;
        RETURN QUERY
        SELECT d.id, 0::real, d.abstract
        FROM ioffice.document d
        WHERE (d.drafter_id = v_me OR d.agency_id = ANY (v_agencies) OR d.id = ANY (v_tasks)
               OR (v_reader AND d.confidentiality = 'normal'
                   AND (d.register_id IS NULL
                        OR d.register_id IN (SELECT r.id FROM ioffice.register r WHERE NOT r.confidential))))
          AND (f.agency IS NULL OR d.agency_id = f.agency)
          AND (f.doc_type IS NULL OR d.doc_type = f.doc_type)
          AND (f.register IS NULL OR d.register_id = f.register)
          AND (f.state IS NULL OR d.state = f.state)
          AND (f.signer IS NULL OR d.signer_id = f.signer)
          AND (f.direction IS NULL OR d.direction = f.direction)
          AND (f.issued_from IS NULL OR coalesce(d.issued_on, d.sender_date) >= f.issued_from)
          AND (f.issued_to IS NULL OR coalesce(d.issued_on, d.sender_date) <= f.issued_to)
          AND (f.created_from IS NULL OR (d.created_at AT TIME ZONE ioffice.timezone())::date >= f.created_from)
          AND (f.created_to IS NULL OR (d.created_at AT TIME ZONE ioffice.timezone())::date <= f.created_to)
        ORDER BY d.id DESC
        LIMIT search."limit";
        RETURN;
    END IF;
    v_exact := websearch_to_tsquery('ioffice.search_vi_exact'::regconfig, translate(query, '/', ' '));
    -- the query's folded words in order, for the snippets' windows
    v_terms := ARRAY(SELECT m[1] FROM regexp_matches(v_any::text, '''((?:[^'']|'''')*)''', 'g') m
                     WHERE m[1] ~ '^[a-z0-9]+$');
    v_all := v_me IS NOT NULL
             AND EXISTS (SELECT 1 FROM ioffice.person_role r WHERE r.person_id = v_me AND r.role = 'admin');
    v_window := greatest(search."limit", 200);
    -- 1. the candidates, newest first.  The walk: the documents the caller
    -- may see that pass the filters, newest first, read from the indexes of
    -- document (_search_newest), each one's rows tested for the words, until
    -- the window is full.  Chosen when the words are common: the walk is
    -- expected to fill the window within ioffice.search_walk documents, by
    -- the share of the rows that have the query's rarest word (for an admin
    -- or a reporting tool, whose text index lists every row with the words,
    -- within a quarter of those rows); or when the documents the caller may
    -- see with these filters are few (a quarter of ioffice.search_walk).
    v_walk := current_setting('ioffice.search_walk')::int;
    IF v_walk > 0 THEN
        v_share := ioffice._search_word_share(query);
        v_expect := CASE WHEN v_share > 0 THEN ceil((v_window + 1) / v_share) END;
        IF v_all OR v_reader THEN
            v_walk := greatest(v_walk, least(1000000, floor(v_share / 4 *
                (SELECT c.reltuples FROM pg_catalog.pg_class c WHERE c.oid = 'ioffice.search_text'::regclass)))::int);
        END IF;
        IF v_expect <= v_walk OR filters IS DISTINCT FROM '{}' OR NOT (v_all OR v_reader) AND v_agencies = '{}' THEN
            -- (twice the documents expected: the walk is stopped there, and
            -- the text index asked, when the words are rarer than expected)
            v_n := CASE WHEN v_expect <= v_walk THEN least(v_walk, 2 * v_expect)::int
                        ELSE greatest(1, v_walk / 4) END;
            v_docs := ioffice._search_newest(filters, v_me, v_all, v_reader, v_agencies, v_tasks, v_n);
            IF cardinality(v_docs) < v_n OR v_expect <= v_walk THEN
                v_walked := true;
                -- in two parts: a quarter of the documents expected first;
                -- when far fewer of them have the words than the share said
                -- (a word common elsewhere, rare in the caller's documents),
                -- the text index instead of the rest
                v_part := least(cardinality(v_docs), greatest(50, ceil(coalesce(v_expect, 0) / 4)::int));
                v_found := '{}';
                v_files := '{}';
                v_scores := '{}';
                FOR v_round IN 1 .. 2 LOOP
                    SELECT v_found || coalesce(array_agg(w.id), '{}'), v_files || coalesce(array_agg(w.file_id), '{}'),
                           v_scores || coalesce(array_agg(w.r), '{}')
                      INTO v_found, v_files, v_scores
                      FROM (SELECT u.id, m.file_id, m.r
                              FROM unnest(CASE v_round WHEN 1 THEN v_docs[1:v_part]
                                                       ELSE v_docs[v_part + 1:] END) u(id)
                              CROSS JOIN LATERAL (
                                  SELECT s.file_id, ioffice._search_score(s.words, v_any, v_exact) AS r
                                    FROM ioffice.search_text s
                                   WHERE s.document_id = u.id
                                   ORDER BY 2 DESC NULLS LAST, s.file_id NULLS FIRST
                                   LIMIT 1) m
                             WHERE m.r IS NOT NULL
                             LIMIT v_window + 1 - cardinality(v_found)) w;
                    EXIT WHEN cardinality(v_found) > v_window OR cardinality(v_docs) <= v_part;
                    IF v_round = 1 AND cardinality(v_docs) >= v_n
                       AND cardinality(v_found) < v_part * v_share / 4 THEN
                        v_walked := false;
                        EXIT;
                    END IF;
                END LOOP;
                -- the words were rarer among these documents than in all: the
                -- walk ended before the window was full, the text index then
                IF cardinality(v_found) <= v_window AND cardinality(v_docs) >= v_n THEN
                    v_walked := false;
                END IF;
            END IF;
        END IF;
    END IF;
    -- The text index: the rows with the words and one of the caller's keys
    -- (each candidate's document by its key, LATERAL: the newest first,
    -- without hashing the table of documents)
    IF NOT v_walked THEN
        -- the caller's keys (_search_keys()): their tasks' documents, their
        -- agencies as a clerk, their drafts, the reporting tools' documents; an
        -- admin's agencies are every unit, and the words alone are asked for.
        -- A filter by agency is a key too.  (The documents of the tasks that
        -- another key does not cover, from the indexes alone: a clerk's
        -- thousand tasks are their agency's documents, and each key is one
        -- more entry the index merges.)
        v_keys := CASE WHEN v_all THEN '{}'::text[] ELSE
                  ARRAY(SELECT 'd:' || t FROM unnest(v_tasks) t
                         WHERE NOT EXISTS (SELECT 1 FROM ioffice.document d
                                            WHERE d.agency_id = ANY (v_agencies) AND d.id = t)
                           AND NOT EXISTS (SELECT 1 FROM ioffice.document d
                                            WHERE d.drafter_id = v_me AND d.id = t))
                  || ARRAY(SELECT 'a:' || a FROM unnest(v_agencies) a)
                  || CASE WHEN v_me IS NOT NULL THEN ARRAY['p:' || v_me] ELSE '{}'::text[] END
                  || CASE WHEN v_reader THEN ARRAY['r'] ELSE '{}'::text[] END END;
        v_docs := ARRAY(
            SELECT c.document_id
            FROM (SELECT DISTINCT s.document_id FROM ioffice.search_text s
                   WHERE s.words @@ v_any AND (v_all OR s.keys && v_keys)
                     AND (f.agency IS NULL OR s.keys @> ARRAY['a:' || f.agency])) c
            CROSS JOIN LATERAL (
                SELECT 1 FROM ioffice.document d
                WHERE d.id = c.document_id
                  AND (d.drafter_id = v_me OR d.agency_id = ANY (v_agencies) OR d.id = ANY (v_tasks)
                       OR (v_reader AND d.confidentiality = 'normal'
                           AND (d.register_id IS NULL
                                OR d.register_id IN (SELECT r.id FROM ioffice.register r WHERE NOT r.confidential))))
                  AND (f.agency IS NULL OR d.agency_id = f.agency)
                  AND (f.doc_type IS NULL OR d.doc_type = f.doc_type)
                  AND (f.register IS NULL OR d.register_id = f.register)
                  AND (f.state IS NULL OR d.state = f.state)
                  AND (f.signer IS NULL OR d.signer_id = f.signer)
                  AND (f.direction IS NULL OR d.direction = f.direction)
                  AND (f.issued_from IS NULL OR coalesce(d.issued_on, d.sender_date) >= f.issued_from)
                  AND (f.issued_to IS NULL OR coalesce(d.issued_on, d.sender_date) <= f.issued_to)
                  AND (f.created_from IS NULL OR (d.created_at AT TIME ZONE ioffice.timezone())::date >= f.created_from)
                  AND (f.created_to IS NULL OR (d.created_at AT TIME ZONE ioffice.timezone())::date <= f.created_to)
                LIMIT 1) v
            ORDER BY c.document_id DESC
            LIMIT v_window + 1);
        -- each candidate's best row, scored (a candidate has a row with the words)
        SELECT coalesce(array_agg(w.id), '{}'), coalesce(array_agg(w.file_id), '{}'),
               coalesce(array_agg(w.r), '{}')
          INTO v_found, v_files, v_scores
          FROM (SELECT u.id, m.file_id, m.r
                  FROM unnest(v_docs) u(id)
                  CROSS JOIN LATERAL (
                      SELECT s.file_id, ioffice._search_score(s.words, v_any, v_exact) AS r
                        FROM ioffice.search_text s
                       WHERE s.document_id = u.id
                       ORDER BY 2 DESC NULLS LAST, s.file_id NULLS FIRST
                       LIMIT 1) m
                 WHERE m.r IS NOT NULL) w;
    END IF;
    IF cardinality(v_found) > v_window THEN
        RAISE NOTICE 'search ranked the % newest of the documents that match, not all of them', v_window
            USING DETAIL = 'A query whose words are in many documents is ranked among the newest.',
                  HINT = 'Add words, or filters (agency, doc_type, issued_from, issued_to), to find older documents.';
        -- (both ways list the candidates newest first)
        v_found := v_found[1:v_window];
        v_files := v_files[1:v_window];
        v_scores := v_scores[1:v_window];
    END IF;
    -- 2. the best of them, with the snippet of each one's best row (from
    -- some 1.2 kB around the words' first place in it, _search_window:
    -- ts_headline parses all it is given, and a page of results has up
    -- to "limit")
    RETURN QUERY
    SELECT c.id, c.r,
           ts_headline('ioffice.search_vi'::regconfig, ioffice._search_window(b.body, v_terms), v_any,
                       'StartSel=«, StopSel=», MaxWords=30, MinWords=12, ShortWord=0, '
                       'MaxFragments=2, FragmentDelimiter=" … "')
    FROM (SELECT x.id, x.file_id, x.r FROM unnest(v_found, v_files, v_scores) x(id, file_id, r)
          ORDER BY x.r DESC, x.id DESC
          LIMIT search."limit") c
    CROSS JOIN LATERAL (SELECT s.body FROM ioffice.search_text s
                         WHERE s.document_id = c.id AND s.file_id IS NOT DISTINCT FROM c.file_id) b
    ORDER BY c.r DESC, c.id DESC;
END
$$;
COMMENT ON FUNCTION search(text, jsonb, int) IS
  'Documents the actor may see whose metadata or file text has the query''s words (accent-insensitive, exact spelling ranked first), with a snippet; filters: agency, doc_type, register, state, signer, direction, issued_from/to, created_from/to';

-- Saved searches (Decree 30 Appendix VI III.6e): a person's named queries
-- with their filters, seen and run by that person only.
CREATE TABLE saved_search (
    id          bigserial PRIMARY KEY,
    person_id   bigint NOT NULL REFERENCES person,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    query       text NOT NULL CHECK (length(query) <= 1000),
    filters     jsonb NOT NULL DEFAULT '{}',
    saved_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (person_id, name)
);
COMMENT ON TABLE saved_search IS 'A person''s saved searches (query and filters of search()), by name';
ALTER TABLE saved_search ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON saved_search FOR SELECT
    USING (person_id = (SELECT ioffice.current_person()));
GRANT SELECT ON saved_search TO PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('saved_search', '');
SELECT pg_catalog.pg_extension_config_dump('saved_search_id_seq', '');

-- save_search(): the acting person's search under a name (a new one, or
-- the one of that name changed); its filters are checked as search() would.
CREATE FUNCTION save_search(name text, query text, filters jsonb DEFAULT '{}') RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me bigint := ioffice.actor();
    v_id bigint;
BEGIN
    PERFORM ioffice._search_filters(coalesce(save_search.filters, '{}'));
    IF save_search.name IS NULL OR length(save_search.name) NOT BETWEEN 1 AND 200 THEN
        RAISE EXCEPTION 'a saved search needs a name of 1 to 200 characters' USING ERRCODE = '22023';
    END IF;
    IF length(save_search.query) > 1000 THEN
        RAISE EXCEPTION 'a saved search''s query has at most 1000 characters' USING ERRCODE = '22023';
    END IF;
    INSERT INTO ioffice.saved_search AS s (person_id, name, query, filters)
    VALUES (v_me, save_search.name, coalesce(save_search.query, ''), coalesce(save_search.filters, '{}'))
    ON CONFLICT ON CONSTRAINT saved_search_person_id_name_key
    DO UPDATE SET query = EXCLUDED.query, filters = EXCLUDED.filters, saved_at = now()
    RETURNING s.id INTO v_id;
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION save_search(text, text, jsonb) IS 'Saves the actor''s search (query and filters) under a name; returns its id';

-- A saved search of the acting person, by id: another's is unknown (42704).
CREATE FUNCTION _own_saved_search(saved bigint) RETURNS ioffice.saved_search
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r ioffice.saved_search;
BEGIN
    SELECT * INTO r FROM ioffice.saved_search s
    WHERE s.id = saved AND s.person_id = ioffice.actor();
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown saved search %', saved USING ERRCODE = '42704';
    END IF;
    RETURN r;
END
$$;
REVOKE ALL ON FUNCTION _own_saved_search(bigint) FROM PUBLIC;

CREATE FUNCTION search_saved(saved bigint, "limit" int DEFAULT 100)
RETURNS TABLE(document bigint, rank real, snippet text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r ioffice.saved_search := ioffice._own_saved_search(saved);
BEGIN
    RETURN QUERY SELECT * FROM ioffice.search(r.query, r.filters, search_saved."limit");
END
$$;
COMMENT ON FUNCTION search_saved(bigint, int) IS 'Runs one of the actor''s saved searches: search() with its query and filters';

CREATE FUNCTION drop_saved_search(saved bigint) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM ioffice._own_saved_search(saved);
    DELETE FROM ioffice.saved_search s WHERE s.id = saved;
END
$$;
COMMENT ON FUNCTION drop_saved_search(bigint) IS 'Deletes one of the actor''s saved searches';

-- The results of search() as a file (Decree 30, Appendix VI, III.6h): the
-- same rows in the same order, with each document's register metadata.
-- SECURITY DEFINER to read that metadata; search() itself looks at the
-- caller (extension/search_export.c).
CREATE FUNCTION search_export(query text, filters jsonb DEFAULT '{}', format text DEFAULT 'xlsx',
                              "limit" int DEFAULT 1000) RETURNS bytea
    AS 'MODULE_PATHNAME', 'ioffice_search_export'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION search_export(text, jsonb, text, int) IS
  'The results of search() as a file: xlsx (Excel workbook), csv (UTF-8 with BOM, CRLF), docx (Word) or pdf, with number and symbol, date, type, abstract, issuer, direction, state and snippet; only what search() shows the caller; each document in it recorded in the access log';
