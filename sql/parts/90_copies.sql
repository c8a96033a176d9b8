
-- ---------------------------------------------------------------------------
-- Electronic copies (Decree 30 art. 25-27; appendix I part II; appendix III)
-- ---------------------------------------------------------------------------

-- A copy is a document of its own (its number, its date, the organisation's
-- signature), and it says which document it copies and how: a column rather
-- than a document_link row, because a link is symmetric and untyped ("related
-- documents") and cannot tell the original from the copy nor the kind.
-- No foreign key to this table (see unit.parent_id: pg_dump warns that a
-- data-only dump may not restore): copy_document is the only writer, and
-- documents are never deleted.
ALTER TABLE document ADD COLUMN copy_of bigint;
ALTER TABLE document ADD COLUMN copy_kind text CHECK (copy_kind IN ('SY', 'SL', 'TrS'));
ALTER TABLE document ADD CONSTRAINT document_copy_check CHECK ((copy_of IS NULL) = (copy_kind IS NULL));
CREATE INDEX document_copy_of_idx ON document (copy_of) WHERE copy_of IS NOT NULL;
COMMENT ON COLUMN document.copy_of IS 'The document this one is a copy of (copy_document)';
COMMENT ON COLUMN document.copy_kind IS 'The kind of copy: SY sao y, SL sao lục, TrS trích sao';

-- A clerk of the agency copies an issued document of the agency, or an
-- incoming one it registered.  The copies of an agency are numbered in one
-- series per year for all kinds ("được đánh chung cho các loại bản sao",
-- appendix I part II.1c): the register 'BANSAO' of the year, made on first use;
-- the symbol is number/kind-agency (05/SY-VP).  Its doc_types is empty, so no
-- ordinary issue ever picks it.  The copy carries the original's current
-- files, and the organisation's signature of each is queued for the worker.
CREATE FUNCTION copy_document(doc bigint, kind text, options jsonb DEFAULT '{}') RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor bigint := ioffice.actor();
    v_today date := (now() AT TIME ZONE ioffice.timezone())::date;
    v_year int := extract(year FROM (now() AT TIME ZONE ioffice.timezone())::date);
    v_orig ioffice.document;
    v_agency ioffice.unit;
    v_register bigint;
    v_number int;
    v_symbol text;
    v_excerpt text;
    v_copy bigint;
    v_files int;
    v_seals int;
    v_label text;
    v_kind text := copy_document.kind;
BEGIN
    PERFORM ioffice._engine_enter();
    IF doc IS NULL THEN
        RAISE EXCEPTION 'copy_document needs a document' USING ERRCODE = '22023';
    END IF;
    v_label := CASE v_kind WHEN 'SY' THEN 'SAO Y' WHEN 'SL' THEN 'SAO LỤC' WHEN 'TrS' THEN 'TRÍCH SAO' END;
    IF v_label IS NULL THEN
        RAISE EXCEPTION 'unknown kind of copy "%"', pg_catalog.left(coalesce(v_kind, ''), 60)
            USING ERRCODE = '22023', HINT = 'Kinds are SY (sao y), SL (sao lục) and TrS (trích sao).';
    END IF;
    IF options IS NULL OR jsonb_typeof(options) <> 'object' THEN
        RAISE EXCEPTION 'options must be a JSON object' USING ERRCODE = '22023';
    END IF;
    -- a trích sao reproduces a part of the original (art. 25.3b): which part
    IF v_kind = 'TrS' THEN
        IF jsonb_typeof(options -> 'excerpt') IS DISTINCT FROM 'string'
           OR btrim(options ->> 'excerpt') = '' THEN
            RAISE EXCEPTION 'a trích sao needs options.excerpt, the part of the document it copies'
                USING ERRCODE = '22023';
        END IF;
        v_excerpt := options ->> 'excerpt';
        IF length(v_excerpt) > 500 THEN
            RAISE EXCEPTION 'the excerpt is longer than 500 characters' USING ERRCODE = '22023';
        END IF;
    ELSIF options ? 'excerpt' THEN
        RAISE EXCEPTION 'options.excerpt goes with a trích sao (TrS) only' USING ERRCODE = '22023';
    END IF;

    SELECT * INTO v_orig FROM ioffice.document d WHERE d.id = doc FOR SHARE;
    -- a document of another agency is not named to this one
    IF NOT FOUND OR NOT EXISTS (SELECT 1 FROM ioffice.person_role pr
                                WHERE pr.person_id = v_actor AND pr.unit_id = v_orig.agency_id) THEN
        RAISE EXCEPTION 'document % not found', doc USING ERRCODE = '42704';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ioffice.person_role pr
                   WHERE pr.person_id = v_actor AND pr.role = 'clerk'
                     AND pr.unit_id = v_orig.agency_id) THEN
        RAISE EXCEPTION 'only a clerk of the agency makes copies of its documents'
            USING ERRCODE = '42501';
    END IF;
    -- copies of state secrets follow the law on their protection (art. 27.2)
    IF v_orig.confidentiality <> 'normal' THEN
        RAISE EXCEPTION 'a confidential document is not copied here'
            USING ERRCODE = '42501', DETAIL = 'Decree 30 art. 27.2: the law on state secrets applies.';
    END IF;
    IF (v_orig.direction = 'outgoing' AND v_orig.issued_at IS NULL)
       OR (v_orig.direction = 'incoming' AND v_orig.number IS NULL) THEN
        RAISE EXCEPTION 'document % is not issued or registered yet', doc USING ERRCODE = '55000';
    END IF;
    -- a received document its sender recalls is not copied while the recall
    -- waits for its clerk's answer, nor once recalled (Decree 30 art. 18.4b:
    -- destroyed; a copy has the original's value, art. 26); nor a copy of it
    IF EXISTS (WITH RECURSIVE up(id, copy_of) AS (
                   SELECT v_orig.id, v_orig.copy_of
                   UNION
                   SELECT d.id, d.copy_of FROM ioffice.document d JOIN up ON d.id = up.copy_of)
               SELECT 1 FROM up JOIN ioffice.document d ON d.id = up.id
               WHERE d.recalled_at IS NOT NULL
                  OR EXISTS (SELECT 1 FROM ioffice.document_recall r
                             WHERE r.document_id = d.id AND r.direction = 'received'
                               AND r.answer IS NULL)) THEN
        RAISE EXCEPTION 'document % is recalled by its sender: it is not copied', doc
            USING ERRCODE = '55000',
                  DETAIL = 'Decree 30 art. 18.4: a recalled electronic document is destroyed once the recall is accepted, with the copies made of it; none is made while the recall waits for its answer.',
                  HINT = 'recall_status shows the recall; once it is refused, the document may be copied.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ioffice.file f WHERE f.document_id = doc
                   AND f.superseded_at IS NULL AND f.removed_at IS NULL) THEN
        RAISE EXCEPTION 'document % has no file to copy', doc USING ERRCODE = '55000';
    END IF;
    SELECT * INTO v_agency FROM ioffice.unit u WHERE u.id = v_orig.agency_id;

    -- the year's register of copies; its row lock keeps the numbers gapless
    INSERT INTO ioffice.register (agency_id, direction, code, name, doc_types, year)
    VALUES (v_agency.id, 'outgoing', 'BANSAO', 'Sổ đăng ký bản sao', '{}', v_year)
    ON CONFLICT (agency_id, direction, code, year) DO NOTHING;
    UPDATE ioffice.register r SET next_number = next_number + 1,
           last_issued_on = greatest(r.last_issued_on, v_today)
     WHERE r.agency_id = v_agency.id AND r.direction = 'outgoing' AND r.code = 'BANSAO'
       AND r.year = v_year
    RETURNING r.id, r.next_number - 1 INTO v_register, v_number;
    v_symbol := ioffice.format_number(v_number) || '/' || v_kind || '-' || v_agency.abbr;

    INSERT INTO ioffice.document (workflow, direction, doc_type, abstract, state, agency_id,
                                  drafting_unit_id, drafter_id, register_id, register_year,
                                  number, symbol, issued_on, issued_at, doc_type_name,
                                  drafting_unit_name, copy_of, copy_kind, comment)
    SELECT 'outgoing', 'outgoing', v_orig.doc_type,
           pg_catalog.left(v_label || ' ' || coalesce(v_orig.symbol, v_orig.sender_symbol, '')
                           || ': ' || v_orig.abstract, 500),
           'draft', v_agency.id, v_agency.id, v_actor, v_register, v_year, v_number, v_symbol,
           v_today, now(), t.name, v_agency.name, doc, v_kind, v_excerpt
      FROM ioffice.doc_type t WHERE t.code = v_orig.doc_type
    RETURNING id INTO v_copy;

    INSERT INTO ioffice.file (document_id, name, kind, size, sha256, content, uploaded_by)
    SELECT v_copy, f.name, f.kind, f.size, f.sha256, f.content, v_actor
      FROM ioffice.file f
     WHERE f.document_id = doc AND f.superseded_at IS NULL AND f.removed_at IS NULL
     ORDER BY f.id;
    GET DIAGNOSTICS v_files = ROW_COUNT;
    -- made as a draft to take its files (an issued document's files are
    -- final), then issued at once: nobody saw it in between
    UPDATE ioffice.document d SET state = 'issued' WHERE d.id = v_copy;

    -- the organisation's signature, without image, says the kind of copy,
    -- the copying agency and the time (appendix I part II.3): the worker
    -- writes options.copy.reason as the signature's /Reason, its time is /M
    INSERT INTO ioffice.signature (document_id, file_id, signer_id, kind, options)
    SELECT v_copy, f.id, v_actor, 'organisation',
           jsonb_build_object('copy', jsonb_build_object('kind', v_kind, 'label', v_label,
                                                         'agency', v_agency.name,
                                                         'symbol', v_symbol,
                                                         'reason', v_label || ' - ' || v_agency.name
                                                                   || ' - Số: ' || v_symbol))
      FROM ioffice.file f WHERE f.document_id = v_copy;
    GET DIAGNOSTICS v_seals = ROW_COUNT;

    PERFORM ioffice._audit('document', v_copy, 'copy', NULL, 'issued',
                           jsonb_build_object('copy_of', doc, 'kind', v_kind, 'number', v_number,
                                              'symbol', v_symbol, 'register', v_register,
                                              'files', v_files, 'seals_queued', v_seals)
                           || CASE WHEN v_excerpt IS NULL THEN '{}'::jsonb
                                   ELSE jsonb_build_object('excerpt', v_excerpt) END,
                           NULL, NULL);
    PERFORM ioffice._audit('document', doc, 'copied', v_orig.state, v_orig.state,
                           jsonb_build_object('copy', v_copy, 'kind', v_kind, 'symbol', v_symbol),
                           NULL, NULL);
    PERFORM ioffice._wake_worker();
    PERFORM ioffice._engine_leave();
    RETURN v_copy;
END
$$;
COMMENT ON FUNCTION copy_document(bigint, text, jsonb) IS
  'A clerk makes an electronic copy (SY sao y, SL sao lục, TrS trích sao) of an issued or registered document; returns the copy';
