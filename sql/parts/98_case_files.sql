
-- ---------------------------------------------------------------------------
-- Case files (hồ sơ) and the yearly list of an agency (Danh mục hồ sơ);
-- archive transfer (Decree 30 art. 28-31; appendix VI part I III.4-5, part
-- II III)
-- ---------------------------------------------------------------------------

-- The headings (đề mục) of an agency's list of a year, in their order.
CREATE TABLE case_file_heading (
    id          bigserial PRIMARY KEY,
    agency_id   bigint NOT NULL REFERENCES unit,
    year        int NOT NULL CHECK (year BETWEEN 1900 AND 9999),
    code        text NOT NULL CHECK (code ~ '^[^\s]{1,20}$'),
    title       text NOT NULL CHECK (length(title) BETWEEN 1 AND 500),
    position    int NOT NULL,
    UNIQUE (agency_id, year, code)
);
COMMENT ON TABLE case_file_heading IS 'Headings (đề mục) of an agency''s yearly list of case files (Danh mục hồ sơ), in order of position';

-- A case file.  Its code (FileCode, appendix VI part II III.1) is the
-- agency's identifier (OrganId, 13 characters, as it was when the file was
-- made), the year (FileCatalog) and the file's notation (FileNotation, up to
-- 20 characters), joined by dots.  The running number of its documents is
-- this row's counter (next_ordinal): updating it takes the row lock that
-- gives two clerks filing at once distinct consecutive numbers.  The counter
-- is not granted to PUBLIC: it tells how many documents were filed, some of
-- which the reader may not see.
CREATE TABLE case_file (
    id              bigserial PRIMARY KEY,
    agency_id       bigint NOT NULL REFERENCES unit,
    year            int NOT NULL CHECK (year BETWEEN 1900 AND 9999),
    heading_id      bigint REFERENCES case_file_heading,
    organ_id        text NOT NULL CHECK (organ_id ~ '^[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}$'),
    notation        text NOT NULL CHECK (notation ~ '^[^\s]{1,20}$'),
    code            text GENERATED ALWAYS AS (organ_id || '.' || year::text || '.' || notation) STORED,
    title           text NOT NULL CHECK (length(title) BETWEEN 1 AND 500),
    -- Maintenance: a number of years, or permanent (vĩnh viễn)
    retention_years int CHECK (retention_years BETWEEN 1 AND 999),
    permanent       boolean NOT NULL DEFAULT false,
    retention       text GENERATED ALWAYS AS
                    (CASE WHEN permanent THEN 'Vĩnh viễn' ELSE retention_years::text || ' năm' END) STORED,
    -- Rights (chế độ sử dụng), Language, Description
    rights          text CHECK (length(rights) BETWEEN 1 AND 30),
    language        text NOT NULL DEFAULT 'Tiếng Việt' CHECK (length(language) BETWEEN 1 AND 50),
    description     text CHECK (length(description) <= 500),
    -- the person in charge of the file (người lập hồ sơ, Creator)
    responsible_id  bigint NOT NULL REFERENCES person,
    -- StartDate and EndDate
    opened_on       date NOT NULL,
    closed_on       date,
    state           text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'closed', 'transferred')),
    next_ordinal    int NOT NULL DEFAULT 1 CHECK (next_ordinal BETWEEN 1 AND 1000),
    created_by      bigint NOT NULL REFERENCES person,
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- the archive's 30-day warning, once (case_file_archive_warnings())
    warned_at       timestamptz,
    -- the transfer to the agency's archive that took it
    transfer_id     bigint,
    CHECK (permanent = (retention_years IS NULL)),
    CHECK ((state = 'open') = (closed_on IS NULL)),
    CHECK ((state = 'transferred') = (transfer_id IS NOT NULL)),
    CHECK (closed_on IS NULL OR closed_on >= opened_on),
    UNIQUE (agency_id, code)
);
CREATE INDEX case_file_agency_year_idx ON case_file (agency_id, year);
CREATE INDEX case_file_responsible_idx ON case_file (responsible_id);
CREATE INDEX case_file_closed_idx ON case_file (closed_on) WHERE state = 'closed';
COMMENT ON TABLE case_file IS 'Case files (hồ sơ) of an agency''s yearly list (Danh mục hồ sơ): code, title, retention, person in charge, dates';
COMMENT ON COLUMN case_file.code IS 'FileCode: the agency''s identifier (13), the year (4) and the file''s notation (up to 20), joined by dots';
COMMENT ON COLUMN case_file.retention IS 'Maintenance: the retention period, a number of years or Vĩnh viễn (permanent)';

-- The documents of a case file, without copies (III.4e), with their running
-- number in the file (III.4b: 1, 2, 3 … in the order they were filed).  A
-- document taken out of a file keeps its row (who, when): its number is
-- not given again, and filing it again gives it a new one.
CREATE TABLE case_file_document (
    case_file_id bigint NOT NULL REFERENCES case_file,
    ordinal      int NOT NULL CHECK (ordinal >= 1),
    document_id  bigint NOT NULL REFERENCES document,
    filed_by     bigint NOT NULL REFERENCES person,
    filed_at     timestamptz NOT NULL DEFAULT now(),
    unfiled_by   bigint REFERENCES person,
    unfiled_at   timestamptz,
    PRIMARY KEY (case_file_id, ordinal),
    CHECK ((unfiled_at IS NULL) = (unfiled_by IS NULL))
);
CREATE UNIQUE INDEX case_file_document_once_idx ON case_file_document (case_file_id, document_id)
    WHERE unfiled_at IS NULL;
CREATE INDEX case_file_document_document_idx ON case_file_document (document_id);
COMMENT ON TABLE case_file_document IS 'Documents filed into case files (no copies), with their running number in the file; taken out ones are kept, marked';

-- Transfers to the agency's archive (nộp lưu): who, when, which files.
CREATE TABLE archive_transfer (
    id              bigserial PRIMARY KEY,
    agency_id       bigint NOT NULL REFERENCES unit,
    transferred_by  bigint NOT NULL REFERENCES person,
    transferred_at  timestamptz NOT NULL DEFAULT now(),
    note            text CHECK (length(note) <= 500)
);
COMMENT ON TABLE archive_transfer IS 'Transfers of closed case files to the agency''s archive (nộp lưu): who and when';
ALTER TABLE case_file ADD FOREIGN KEY (transfer_id) REFERENCES archive_transfer;

SELECT pg_catalog.pg_extension_config_dump('case_file_heading', '');
SELECT pg_catalog.pg_extension_config_dump('case_file_heading_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('case_file', '');
SELECT pg_catalog.pg_extension_config_dump('case_file_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('case_file_document', '');
SELECT pg_catalog.pg_extension_config_dump('archive_transfer', '');
SELECT pg_catalog.pg_extension_config_dump('archive_transfer_id_seq', '');

-- A transferred file is the archive's: read-only, its documents too, for
-- everyone, the owner included (as the files of a final document are).  A
-- closed file takes no new documents.
CREATE FUNCTION _case_file_frozen() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_state text;
    v_id bigint;
BEGIN
    -- a restore loads the rows as they were (pg_dump's data of the tables)
    IF ioffice._restoring_dump() THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD WHEN TG_OP = 'TRUNCATE' THEN NULL ELSE NEW END;
    END IF;
    IF TG_OP = 'TRUNCATE' THEN
        IF EXISTS (SELECT 1 FROM ioffice.case_file c WHERE c.state = 'transferred') THEN
            RAISE EXCEPTION 'case files transferred to the archive are read-only'
                USING ERRCODE = '55000';
        END IF;
        RETURN NULL;
    END IF;
    IF TG_TABLE_NAME = 'case_file' THEN
        IF OLD.state = 'transferred' THEN
            RAISE EXCEPTION 'case file % is transferred to the archive: read-only', OLD.id
                USING ERRCODE = '55000';
        END IF;
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    v_id := CASE WHEN TG_OP = 'DELETE' THEN OLD.case_file_id ELSE NEW.case_file_id END;
    SELECT c.state INTO v_state FROM ioffice.case_file c WHERE c.id = v_id;
    IF v_state = 'transferred'
       OR (TG_OP = 'UPDATE' AND OLD.case_file_id <> NEW.case_file_id
           AND EXISTS (SELECT 1 FROM ioffice.case_file c
                        WHERE c.id = OLD.case_file_id AND c.state = 'transferred')) THEN
        RAISE EXCEPTION 'case file % is transferred to the archive: read-only', v_id
            USING ERRCODE = '55000';
    END IF;
    IF TG_OP = 'INSERT' AND v_state = 'closed' THEN
        RAISE EXCEPTION 'case file % is closed', v_id USING ERRCODE = '55000';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;
REVOKE ALL ON FUNCTION _case_file_frozen() FROM PUBLIC;
CREATE TRIGGER frozen BEFORE UPDATE OR DELETE ON case_file
    FOR EACH ROW EXECUTE FUNCTION _case_file_frozen();
CREATE TRIGGER frozen_truncate BEFORE TRUNCATE ON case_file
    FOR EACH STATEMENT EXECUTE FUNCTION _case_file_frozen();
CREATE TRIGGER frozen BEFORE INSERT OR UPDATE OR DELETE ON case_file_document
    FOR EACH ROW EXECUTE FUNCTION _case_file_frozen();
CREATE TRIGGER frozen_truncate BEFORE TRUNCATE ON case_file_document
    FOR EACH STATEMENT EXECUTE FUNCTION _case_file_frozen();

-- The agency of the current person's unit.
CREATE FUNCTION _person_agency() RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT u.agency_id FROM ioffice.person p JOIN ioffice.unit u ON u.id = p.unit_id
     WHERE p.id = ioffice.current_person()
$$;

-- Row-level security.  The list of case files (titles, codes) is the
-- agency's: its people, its clerks, the admins see it.  A filed document is
-- seen by whoever sees the document itself (the document's own policies,
-- applied by the sub-select): a person never learns of a document they may
-- not see by a file's contents, nor by its counts (the views count rows).
ALTER TABLE case_file_heading ENABLE ROW LEVEL SECURITY;
ALTER TABLE case_file ENABLE ROW LEVEL SECURITY;
ALTER TABLE case_file_document ENABLE ROW LEVEL SECURITY;
ALTER TABLE archive_transfer ENABLE ROW LEVEL SECURITY;
CREATE POLICY visible ON case_file_heading FOR SELECT
    USING (agency_id = (SELECT ioffice._person_agency())
           OR agency_id = ANY ((SELECT ioffice._clerk_agencies())::bigint[]));
CREATE POLICY visible ON case_file FOR SELECT
    USING (agency_id = (SELECT ioffice._person_agency())
           OR responsible_id = (SELECT ioffice.current_person())
           OR agency_id = ANY ((SELECT ioffice._clerk_agencies())::bigint[]));
CREATE POLICY visible ON archive_transfer FOR SELECT
    USING (agency_id = (SELECT ioffice._person_agency())
           OR agency_id = ANY ((SELECT ioffice._clerk_agencies())::bigint[]));
CREATE POLICY visible ON case_file_document FOR SELECT
    USING (EXISTS (SELECT 1 FROM ioffice.document d WHERE d.id = case_file_document.document_id)
           AND EXISTS (SELECT 1 FROM ioffice.case_file c WHERE c.id = case_file_document.case_file_id));
-- reporting tools read the lists (the documents' own policy for readers
-- decides which filed documents they see)
CREATE POLICY visible_to_readers ON case_file_heading FOR SELECT TO ioffice_reader
    USING ((SELECT pg_catalog.pg_has_role('ioffice_reader', 'USAGE')));
CREATE POLICY visible_to_readers ON case_file FOR SELECT TO ioffice_reader
    USING ((SELECT pg_catalog.pg_has_role('ioffice_reader', 'USAGE')));
CREATE POLICY visible_to_readers ON archive_transfer FOR SELECT TO ioffice_reader
    USING ((SELECT pg_catalog.pg_has_role('ioffice_reader', 'USAGE')));
GRANT SELECT ON case_file_heading, case_file_document, archive_transfer TO PUBLIC;
GRANT SELECT (id, agency_id, year, heading_id, organ_id, notation, code, title, retention_years,
              permanent, retention, rights, language, description, responsible_id, opened_on,
              closed_on, state, created_by, created_at, warned_at, transfer_id)
    ON case_file TO PUBLIC;

-- May the current person keep the case files of this agency (a clerk of it,
-- an admin)?  Or file into this one (also its person in charge)?
CREATE FUNCTION _require_case_file_keeper(agency bigint) RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor bigint := ioffice.actor();
BEGIN
    IF NOT ioffice.keeps_registers(agency) THEN
        RAISE EXCEPTION 'only a clerk of the agency or an admin keeps its list of case files'
            USING ERRCODE = '42501';
    END IF;
    RETURN v_actor;
END
$$;
REVOKE ALL ON FUNCTION _require_case_file_keeper(bigint) FROM PUBLIC;

CREATE FUNCTION add_case_file_heading(agency bigint, year int, code text, title text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor bigint;
    v_id bigint;
BEGIN
    PERFORM ioffice._engine_enter();
    IF agency IS NULL OR year IS NULL OR code IS NULL OR title IS NULL THEN
        RAISE EXCEPTION 'agency, year, code and title are required' USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ioffice.unit u WHERE u.id = agency AND u.kind = 'agency') THEN
        RAISE EXCEPTION 'unknown agency %', agency USING ERRCODE = '42704';
    END IF;
    v_actor := ioffice._require_case_file_keeper(agency);
    IF year NOT BETWEEN 1900 AND 9999 OR code !~ '^[^\s]{1,20}$' OR length(title) NOT BETWEEN 1 AND 500 THEN
        RAISE EXCEPTION 'a heading needs a year, a code of 1 to 20 characters without spaces and a title of 1 to 500'
            USING ERRCODE = '22023';
    END IF;
    IF EXISTS (SELECT 1 FROM ioffice.case_file_heading h
                WHERE h.agency_id = agency AND h.year = add_case_file_heading.year
                  AND h.code = add_case_file_heading.code) THEN
        RAISE EXCEPTION 'heading "%" of % already exists', pg_catalog.left(code, 60), year
            USING ERRCODE = '23505';
    END IF;
    INSERT INTO ioffice.case_file_heading (agency_id, year, code, title, position)
    SELECT agency, add_case_file_heading.year, add_case_file_heading.code, add_case_file_heading.title,
           coalesce(max(h.position), 0) + 1
      FROM ioffice.case_file_heading h
     WHERE h.agency_id = agency AND h.year = add_case_file_heading.year
    RETURNING id INTO v_id;
    PERFORM ioffice._audit('unit', agency, 'add_case_file_heading', NULL, NULL,
                           jsonb_build_object('heading', v_id, 'year', year, 'code', code, 'title', title));
    PERFORM ioffice._engine_leave();
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION add_case_file_heading(bigint, int, text, text) IS
  'A clerk adds a heading (đề mục) to the agency''s list of case files of a year; returns it';

-- A case file of the agency's list.  retention: a number of years ('10')
-- or 'permanent' (also 'vĩnh viễn'); responsible: the login of the person
-- in charge, one of the agency's people (default: the caller); options:
-- heading (its id), rights, language, description, opened_on (default
-- today).
CREATE FUNCTION add_case_file(agency bigint, year int, notation text, title text, retention text,
                              responsible text DEFAULT NULL, options jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor bigint;
    v_agency ioffice.unit;
    v_responsible bigint;
    v_years int;
    v_permanent boolean := false;
    v_heading bigint;
    v_opened date;
    v_id bigint;
BEGIN
    PERFORM ioffice._engine_enter();
    IF agency IS NULL OR year IS NULL OR notation IS NULL OR title IS NULL OR retention IS NULL THEN
        RAISE EXCEPTION 'agency, year, notation, title and retention are required' USING ERRCODE = '22023';
    END IF;
    SELECT * INTO v_agency FROM ioffice.unit u WHERE u.id = agency AND u.kind = 'agency';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown agency %', agency USING ERRCODE = '42704';
    END IF;
    v_actor := ioffice._require_case_file_keeper(agency);
    IF v_agency.code IS NULL THEN
        RAISE EXCEPTION 'agency % has no identifier (OrganId)', agency USING ERRCODE = '55000',
              HINT = 'A case file''s code starts with its agency''s 13-character identifier.';
    END IF;
    IF options IS NULL OR jsonb_typeof(options) <> 'object' THEN
        RAISE EXCEPTION 'options must be a JSON object' USING ERRCODE = '22023';
    END IF;
    IF EXISTS (SELECT 1 FROM jsonb_object_keys(options) k
                WHERE k NOT IN ('heading', 'rights', 'language', 'description', 'opened_on')) THEN
        RAISE EXCEPTION 'unknown option in %', pg_catalog.left(options::text, 60) USING ERRCODE = '22023',
              HINT = 'Options are heading, rights, language, description and opened_on.';
    END IF;
    IF year NOT BETWEEN 1900 AND 9999 THEN
        RAISE EXCEPTION 'year % is out of range', year USING ERRCODE = '22023';
    END IF;
    IF length(options ->> 'rights') NOT BETWEEN 1 AND 30
       OR length(options ->> 'language') NOT BETWEEN 1 AND 50
       OR length(options ->> 'description') > 500 THEN
        RAISE EXCEPTION 'options: rights 1 to 30 characters, language 1 to 50, description at most 500'
            USING ERRCODE = '22023';
    END IF;
    IF notation !~ '^[^\s]{1,20}$' THEN
        RAISE EXCEPTION 'notation "%" must be 1 to 20 characters without spaces', pg_catalog.left(notation, 60)
            USING ERRCODE = '22023';
    END IF;
    IF length(title) NOT BETWEEN 1 AND 500 THEN
        RAISE EXCEPTION 'a case file''s title must be 1 to 500 characters' USING ERRCODE = '22023';
    END IF;
    IF lower(retention) IN ('permanent', 'vĩnh viễn') THEN
        v_permanent := true;
    ELSIF retention ~ '^[0-9]{1,3}$' AND retention::int >= 1 THEN
        v_years := retention::int;
    ELSE
        RAISE EXCEPTION 'retention "%" is not a number of years nor permanent', pg_catalog.left(retention, 60)
            USING ERRCODE = '22023', HINT = 'Give ''10'' for ten years, or ''permanent''.';
    END IF;
    IF responsible IS NULL THEN
        v_responsible := v_actor;
    ELSE
        SELECT p.id INTO v_responsible FROM ioffice.person p WHERE p.login = responsible AND p.active;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'unknown person "%"', pg_catalog.left(responsible, 60) USING ERRCODE = '42704';
        END IF;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ioffice.person p JOIN ioffice.unit u ON u.id = p.unit_id
                    WHERE p.id = v_responsible AND u.agency_id = agency) THEN
        RAISE EXCEPTION 'the person in charge of a case file must be one of its agency''s people'
            USING ERRCODE = '22023';
    END IF;
    IF options ? 'heading' THEN
        IF jsonb_typeof(options -> 'heading') IS DISTINCT FROM 'number' THEN
            RAISE EXCEPTION 'options.heading must be a heading''s id' USING ERRCODE = '22023';
        END IF;
        v_heading := (options ->> 'heading')::bigint;
        IF NOT EXISTS (SELECT 1 FROM ioffice.case_file_heading h
                        WHERE h.id = v_heading AND h.agency_id = agency AND h.year = add_case_file.year) THEN
            RAISE EXCEPTION 'unknown heading % in the list of % of this agency', v_heading, year
                USING ERRCODE = '42704';
        END IF;
    END IF;
    BEGIN
        v_opened := coalesce((options ->> 'opened_on')::date,
                             (now() AT TIME ZONE ioffice.timezone())::date);
    EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow THEN
        RAISE EXCEPTION 'options.opened_on is not a date' USING ERRCODE = '22023';
    END;
    IF EXISTS (SELECT 1 FROM ioffice.case_file c
                WHERE c.agency_id = agency AND c.year = add_case_file.year
                  AND c.notation = add_case_file.notation) THEN
        RAISE EXCEPTION 'case file % already exists', v_agency.code || '.' || year || '.' || notation
            USING ERRCODE = '23505';
    END IF;
    INSERT INTO ioffice.case_file (agency_id, year, heading_id, organ_id, notation, title,
                                   retention_years, permanent, rights, language, description,
                                   responsible_id, opened_on, created_by)
    VALUES (agency, add_case_file.year, v_heading, v_agency.code, add_case_file.notation,
            add_case_file.title, v_years, v_permanent, options ->> 'rights',
            coalesce(options ->> 'language', 'Tiếng Việt'), options ->> 'description',
            v_responsible, v_opened, v_actor)
    RETURNING id INTO v_id;
    PERFORM ioffice._audit('case_file', v_id, 'add_case_file', NULL, 'open',
                           jsonb_build_object('agency', agency, 'year', year, 'notation', notation,
                                              'title', title, 'retention', retention,
                                              'responsible', v_responsible));
    PERFORM ioffice._engine_leave();
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION add_case_file(bigint, int, text, text, text, text, jsonb) IS
  'A clerk adds a case file to the agency''s list of a year: notation, title, retention (years or permanent), person in charge (login); options heading, rights, language, description, opened_on; returns it';

-- The case file, locked, for a change by the current person: its person in
-- charge, or a clerk of its agency or an admin.  Unknown, or not visible to
-- the person, is 42704.
CREATE FUNCTION _lock_case_file(cf bigint) RETURNS ioffice.case_file
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor bigint := ioffice.actor();
    v_cf ioffice.case_file;
BEGIN
    SELECT * INTO v_cf FROM ioffice.case_file c WHERE c.id = cf FOR UPDATE;
    IF NOT FOUND
       OR NOT (v_cf.responsible_id = v_actor OR ioffice.keeps_registers(v_cf.agency_id)
               OR EXISTS (SELECT 1 FROM ioffice.person p JOIN ioffice.unit u ON u.id = p.unit_id
                           WHERE p.id = v_actor AND u.agency_id = v_cf.agency_id)) THEN
        RAISE EXCEPTION 'unknown case file %', cf USING ERRCODE = '42704';
    END IF;
    IF NOT (v_cf.responsible_id = v_actor OR ioffice.keeps_registers(v_cf.agency_id)) THEN
        RAISE EXCEPTION 'only the person in charge of case file %, a clerk of its agency or an admin changes it', cf
            USING ERRCODE = '42501';
    END IF;
    RETURN v_cf;
END
$$;
REVOKE ALL ON FUNCTION _lock_case_file(bigint) FROM PUBLIC;

-- Files a document into a case file, by reference (III.4e), with the next
-- running number of the file (III.4b).  The document must be one the
-- person may see and of the file's agency (its outgoing document, or an
-- incoming one it registered; a dossier's result is such a document).  The
-- case file's row lock, taken first, orders concurrent filings.
CREATE FUNCTION file_into(case_file bigint, doc bigint) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor bigint := ioffice.actor();
    v_cf ioffice.case_file;
    v_doc ioffice.document;
    v_ordinal int;
BEGIN
    PERFORM ioffice._engine_enter();
    IF file_into.case_file IS NULL OR doc IS NULL THEN
        RAISE EXCEPTION 'file_into needs a case file and a document' USING ERRCODE = '22023';
    END IF;
    v_cf := ioffice._lock_case_file(file_into.case_file);
    IF NOT ioffice.can_see(doc) THEN
        RAISE EXCEPTION 'unknown document %', doc USING ERRCODE = '42704';
    END IF;
    SELECT * INTO v_doc FROM ioffice.document d WHERE d.id = doc;
    IF v_doc.agency_id <> v_cf.agency_id THEN
        RAISE EXCEPTION 'document % is not a document of the agency of case file %', doc, v_cf.id
            USING ERRCODE = '22023';
    END IF;
    IF v_cf.state <> 'open' THEN
        RAISE EXCEPTION 'case file % is %', v_cf.id, v_cf.state USING ERRCODE = '55000',
              DETAIL = 'Documents are filed into open case files only.';
    END IF;
    IF EXISTS (SELECT 1 FROM ioffice.case_file_document l
                WHERE l.case_file_id = v_cf.id AND l.document_id = doc AND l.unfiled_at IS NULL) THEN
        RAISE EXCEPTION 'document % is already in case file %', doc, v_cf.id USING ERRCODE = '23505';
    END IF;
    UPDATE ioffice.case_file c SET next_ordinal = c.next_ordinal + 1
     WHERE c.id = v_cf.id RETURNING c.next_ordinal - 1 INTO v_ordinal;
    INSERT INTO ioffice.case_file_document (case_file_id, ordinal, document_id, filed_by)
    VALUES (v_cf.id, v_ordinal, doc, v_actor);
    PERFORM ioffice._audit('document', doc, 'file_into', v_doc.state, v_doc.state,
                           jsonb_build_object('case_file', v_cf.id, 'code', v_cf.code,
                                              'ordinal', v_ordinal),
                           NULL, NULL);
    PERFORM ioffice._engine_leave();
END
$$;
COMMENT ON FUNCTION file_into(bigint, bigint) IS
  'Files a document into an open case file, without copying it, with the next running number of the file (by its person in charge, a clerk of its agency or an admin)';

-- Takes a document out of an open case file.  Its number is not given
-- again: the row stays, marked, and the file's numbers keep a gap.
CREATE FUNCTION unfile(case_file bigint, doc bigint) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor bigint := ioffice.actor();
    v_cf ioffice.case_file;
    v_ordinal int;
    v_state text;
BEGIN
    PERFORM ioffice._engine_enter();
    IF unfile.case_file IS NULL OR doc IS NULL THEN
        RAISE EXCEPTION 'unfile needs a case file and a document' USING ERRCODE = '22023';
    END IF;
    v_cf := ioffice._lock_case_file(unfile.case_file);
    IF NOT ioffice.can_see(doc) THEN
        RAISE EXCEPTION 'unknown document %', doc USING ERRCODE = '42704';
    END IF;
    IF v_cf.state <> 'open' THEN
        RAISE EXCEPTION 'case file % is %', v_cf.id, v_cf.state USING ERRCODE = '55000',
              DETAIL = 'Documents are taken out of open case files only.';
    END IF;
    UPDATE ioffice.case_file_document l SET unfiled_at = now(), unfiled_by = v_actor
     WHERE l.case_file_id = v_cf.id AND l.document_id = doc AND l.unfiled_at IS NULL
    RETURNING l.ordinal INTO v_ordinal;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'document % is not in case file %', doc, v_cf.id USING ERRCODE = '42704';
    END IF;
    SELECT d.state INTO v_state FROM ioffice.document d WHERE d.id = doc;
    PERFORM ioffice._audit('document', doc, 'unfile', v_state, v_state,
                           jsonb_build_object('case_file', v_cf.id, 'code', v_cf.code,
                                              'ordinal', v_ordinal),
                           NULL, NULL);
    PERFORM ioffice._engine_leave();
END
$$;
COMMENT ON FUNCTION unfile(bigint, bigint) IS
  'Takes a document out of an open case file; its running number is not given again';

-- Closes a case file (its EndDate: the day given, by default today).
CREATE FUNCTION close_case_file(case_file bigint, closed_on date DEFAULT NULL) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_cf ioffice.case_file;
    v_today date := (now() AT TIME ZONE ioffice.timezone())::date;
    v_closed date := coalesce(close_case_file.closed_on, v_today);
BEGIN
    PERFORM ioffice._engine_enter();
    IF close_case_file.case_file IS NULL THEN
        RAISE EXCEPTION 'close_case_file needs a case file' USING ERRCODE = '22023';
    END IF;
    v_cf := ioffice._lock_case_file(close_case_file.case_file);
    IF v_cf.state <> 'open' THEN
        RAISE EXCEPTION 'case file % is %', v_cf.id, v_cf.state USING ERRCODE = '55000';
    END IF;
    IF v_closed > v_today OR v_closed < v_cf.opened_on THEN
        RAISE EXCEPTION 'a case file closes between its opening and today' USING ERRCODE = '22023';
    END IF;
    UPDATE ioffice.case_file c SET state = 'closed', closed_on = v_closed WHERE c.id = v_cf.id;
    PERFORM ioffice._audit('case_file', v_cf.id, 'close', 'open', 'closed',
                           jsonb_build_object('closed_on', v_closed));
    PERFORM ioffice._engine_leave();
END
$$;
COMMENT ON FUNCTION close_case_file(bigint, date) IS
  'Closes an open case file (EndDate: the day given, by default today); it takes no more documents';

-- The yearly list (Danh mục hồ sơ) and the table of contents of the case
-- files (mục lục hồ sơ), for a reporting tool: the case files with their
-- headings, and the count of documents and pages the reader may see.
CREATE VIEW case_file_list WITH (security_invoker = true) AS
SELECT c.id AS case_file_id, c.agency_id, c.year, h.code AS heading_code, h.title AS heading_title,
       h.position AS heading_position, c.code, c.organ_id, c.notation, c.title, c.retention,
       c.retention_years, c.permanent, c.rights, c.language, c.description,
       c.responsible_id, p.full_name AS responsible, c.opened_on, c.closed_on, c.state,
       (SELECT count(*) FROM ioffice.case_file_document l JOIN ioffice.document d ON d.id = l.document_id
         WHERE l.case_file_id = c.id AND l.unfiled_at IS NULL) AS doc_total,
       (SELECT coalesce(sum(d.page_count), 0) FROM ioffice.case_file_document l
          JOIN ioffice.document d ON d.id = l.document_id
         WHERE l.case_file_id = c.id AND l.unfiled_at IS NULL) AS page_total
  FROM ioffice.case_file c
  LEFT JOIN ioffice.case_file_heading h ON h.id = c.heading_id
  JOIN ioffice.person p ON p.id = c.responsible_id;
COMMENT ON VIEW case_file_list IS 'Danh mục hồ sơ / mục lục hồ sơ: the case files with their headings; DocTotal and PageTotal of the documents the reader may see';
GRANT SELECT ON case_file_list TO PUBLIC;

-- The table of contents of a case file (mục lục văn bản trong hồ sơ), for
-- a reporting tool: its documents the reader may see, with the fields of
-- appendix VI part II III, in the order they arose (arose_on, then number).
CREATE VIEW case_file_contents WITH (security_invoker = true) AS
SELECT l.case_file_id, c.code AS case_file_code, l.ordinal, l.document_id, d.direction,
       coalesce(d.doc_type_name, t.name) AS type_name,
       CASE WHEN d.direction = 'outgoing' THEN d.symbol ELSE d.sender_symbol END AS symbol,
       CASE WHEN d.direction = 'outgoing' THEN d.issued_on ELSE d.sender_date END AS document_date,
       CASE WHEN d.direction = 'outgoing' THEN a.name ELSE coalesce(d.sender_name, s.name) END AS organ_name,
       d.abstract AS subject, d.page_count, d.signer_name,
       CASE WHEN d.direction = 'incoming' THEN d.number END AS arrival_number,
       CASE WHEN d.direction = 'incoming' THEN (d.received_at AT TIME ZONE ioffice.timezone())::date END
         AS arrival_date,
       coalesce(CASE WHEN d.direction = 'outgoing' THEN d.issued_on
                     ELSE (d.received_at AT TIME ZONE ioffice.timezone())::date END,
                (d.created_at AT TIME ZONE ioffice.timezone())::date) AS arose_on,
       d.number, d.urgency, d.confidentiality, d.due_date, l.filed_at, l.filed_by
  FROM ioffice.case_file_document l
  JOIN ioffice.case_file c ON c.id = l.case_file_id
  JOIN ioffice.document d ON d.id = l.document_id
  JOIN ioffice.doc_type t ON t.code = d.doc_type
  JOIN ioffice.unit a ON a.id = d.agency_id
  LEFT JOIN ioffice.unit s ON s.id = d.sender_agency_id
 WHERE l.unfiled_at IS NULL;
COMMENT ON VIEW case_file_contents IS 'Mục lục văn bản trong hồ sơ: the documents of each case file the reader may see, with their running number; order by arose_on, number';
GRANT SELECT ON case_file_contents TO PUBLIC;

-- A case file as XML (III.4g): its metadata (appendix VI part II III) and
-- every document's, in the order the documents arose.  Built with the
-- server's XML functions; SECURITY INVOKER, so the caller's row-level
-- security decides which documents are in it (a person exports what they
-- may see, and the totals count those).
CREATE FUNCTION case_file_xml(case_file bigint) RETURNS xml
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_xml xml;
BEGIN
    IF case_file_xml.case_file IS NULL THEN
        RAISE EXCEPTION 'case_file_xml needs a case file' USING ERRCODE = '22023';
    END IF;
    SELECT xmlelement(name "File",
             xmlattributes(c.case_file_id AS "id"),
             xmlelement(name "FileCode", c.code),
             xmlelement(name "OrganId", c.organ_id),
             xmlelement(name "FileCatalog", c.year),
             xmlelement(name "FileNotation", c.notation),
             xmlelement(name "Title", c.title),
             xmlelement(name "Maintenance", c.retention),
             xmlelement(name "Rights", c.rights),
             xmlelement(name "Creator", c.responsible),
             xmlelement(name "Language", c.language),
             xmlelement(name "StartDate", c.opened_on),
             xmlelement(name "EndDate", c.closed_on),
             xmlelement(name "DocTotal", c.doc_total),
             xmlelement(name "PageTotal", c.page_total),
             xmlelement(name "Description", c.description),
             xmlelement(name "Documents",
               (SELECT xmlagg(xmlelement(name "Document",
                          xmlelement(name "FileCode", v.case_file_code),
                          xmlelement(name "DocOrdinal", v.ordinal),
                          xmlelement(name "TypeName", v.type_name),
                          xmlelement(name "CodeNumber",
                                     CASE WHEN strpos(v.symbol, '/') > 0
                                          THEN split_part(v.symbol, '/', 1) END),
                          xmlelement(name "CodeNotation",
                                     CASE WHEN strpos(v.symbol, '/') > 0
                                          THEN substr(v.symbol, strpos(v.symbol, '/') + 1)
                                          ELSE v.symbol END),
                          xmlelement(name "IssuedDate", v.document_date),
                          xmlelement(name "OrganName", v.organ_name),
                          xmlelement(name "Subject", v.subject),
                          xmlelement(name "Language", c.language),
                          xmlelement(name "PageAmount", v.page_count),
                          xmlelement(name "ArrivalDate", v.arrival_date),
                          xmlelement(name "ArrivalNumber", v.arrival_number),
                          xmlelement(name "SignerInfo", xmlelement(name "FullName", v.signer_name)),
                          xmlelement(name "Priority", v.urgency),
                          xmlelement(name "DueDate", v.due_date))
                        ORDER BY v.arose_on, v.number, v.ordinal)
                  FROM ioffice.case_file_contents v WHERE v.case_file_id = c.case_file_id)))
      INTO v_xml
      FROM ioffice.case_file_list c
     WHERE c.case_file_id = case_file_xml.case_file;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown case file %', case_file_xml.case_file USING ERRCODE = '42704';
    END IF;
    -- an export: recorded in the access log (sql/parts/99_access_log.sql)
    PERFORM ioffice._log_case_file_export(case_file_xml.case_file, 'xml');
    RETURN v_xml;
END
$$;
COMMENT ON FUNCTION case_file_xml(bigint) IS
  'A case file as XML: its metadata and every document''s (those the caller may see), in the order the documents arose';

-- Archive transfer (III.5b-c).  A closed file kept 5 years or more, or
-- permanently, goes to the agency's archive within a year of its closing
-- (due_on); its person in charge is warned 30 days before (warn_on).
CREATE VIEW case_file_archive_due WITH (security_invoker = true) AS
SELECT c.id AS case_file_id, c.agency_id, c.code, c.title, c.retention, c.responsible_id,
       c.closed_on, (c.closed_on + interval '1 year')::date AS due_on,
       (c.closed_on + interval '1 year')::date - 30 AS warn_on, c.warned_at
  FROM ioffice.case_file c
 WHERE c.state = 'closed' AND (c.permanent OR c.retention_years >= 5);
COMMENT ON VIEW case_file_archive_due IS 'Closed case files due for the agency''s archive (kept 5 years or more): due within a year of closing, warned 30 days before';
GRANT SELECT ON case_file_archive_due TO PUBLIC;

-- The warnings that are due, each once: an event notify.email (or
-- notify.sms for a person without an e-mail address) to the person in
-- charge of each file whose warn_on has come, in ioffice.timezone.  Called
-- by the signing worker on its loop (workers/archive_jobs.c); rows locked
-- by a concurrent call are left to it.  Returns the files warned.
CREATE FUNCTION case_file_archive_warnings() RETURNS int
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_today date := (now() AT TIME ZONE ioffice.timezone())::date;
    v_row record;
    v_n int := 0;
    v_channel text;
    v_message text;
BEGIN
    PERFORM ioffice._engine_enter();
    FOR v_row IN
        SELECT c.id, c.code, c.title, c.closed_on, (c.closed_on + interval '1 year')::date AS due_on,
               p.id AS person, p.login, p.full_name, p.email, p.phone
          FROM ioffice.case_file c JOIN ioffice.person p ON p.id = c.responsible_id
         WHERE c.state = 'closed' AND (c.permanent OR c.retention_years >= 5)
           AND c.warned_at IS NULL
           AND (c.closed_on + interval '1 year')::date - 30 <= v_today
         ORDER BY c.id
           FOR UPDATE OF c SKIP LOCKED
    LOOP
        v_channel := CASE WHEN coalesce(v_row.email, '') <> '' THEN 'email'
                          WHEN coalesce(v_row.phone, '') <> '' THEN 'sms' END;
        v_message := format('Hồ sơ %s "%s" đến hạn nộp lưu vào Lưu trữ cơ quan ngày %s',
                            v_row.code, pg_catalog.left(v_row.title, 200),
                            to_char(v_row.due_on, 'DD/MM/YYYY'));
        IF v_channel IS NOT NULL THEN
            PERFORM ioffice._emit('notify.' || v_channel,
                jsonb_build_object('channel', v_channel, 'login', v_row.login, 'name', v_row.full_name,
                                   'to', CASE v_channel WHEN 'email' THEN v_row.email ELSE v_row.phone END,
                                   'message', v_message,
                                   'about', jsonb_build_object('case_file', v_row.id, 'code', v_row.code,
                                                               'due_on', v_row.due_on,
                                                               'kind', 'archive_due')));
        END IF;
        UPDATE ioffice.case_file c SET warned_at = now() WHERE c.id = v_row.id;
        PERFORM ioffice._audit('case_file', v_row.id, 'archive_warning', 'closed', 'closed',
                               jsonb_build_object('due_on', v_row.due_on, 'to', v_row.person,
                                                  'channel', v_channel));
        v_n := v_n + 1;
    END LOOP;
    PERFORM ioffice._engine_leave();
    RETURN v_n;
END
$$;
COMMENT ON FUNCTION case_file_archive_warnings() IS
  'Warns (notify.email, or notify.sms) the person in charge of each closed case file due for the archive within 30 days, once; the worker calls it; returns the files warned';
REVOKE ALL ON FUNCTION case_file_archive_warnings() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION case_file_archive_warnings() TO ioffice_admin;

-- Records the transfer of closed case files of one agency to its archive,
-- by a clerk of the agency or an admin; the files become read-only.
CREATE FUNCTION transfer_case_files(case_files bigint[], note text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor bigint := ioffice.actor();
    v_agency bigint;
    v_transfer bigint;
    v_cf ioffice.case_file;
    v_n int;
BEGIN
    PERFORM ioffice._engine_enter();
    IF case_files IS NULL OR cardinality(case_files) = 0 OR array_position(case_files, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'transfer_case_files needs a list of case files' USING ERRCODE = '22023';
    END IF;
    IF length(note) > 500 THEN
        RAISE EXCEPTION 'the note is longer than 500 characters' USING ERRCODE = '22023';
    END IF;
    FOR v_cf IN SELECT * FROM ioffice.case_file c WHERE c.id = ANY (case_files) ORDER BY c.id FOR UPDATE LOOP
        IF NOT ioffice.keeps_registers(v_cf.agency_id) THEN
            RAISE EXCEPTION 'only a clerk of the agency or an admin transfers its case files to the archive'
                USING ERRCODE = '42501';
        END IF;
        IF v_agency IS NULL THEN
            v_agency := v_cf.agency_id;
        ELSIF v_agency <> v_cf.agency_id THEN
            RAISE EXCEPTION 'a transfer takes the case files of one agency' USING ERRCODE = '22023';
        END IF;
        IF v_cf.state <> 'closed' THEN
            RAISE EXCEPTION 'case file % is %', v_cf.id, v_cf.state USING ERRCODE = '55000',
                  DETAIL = 'Closed case files are transferred to the archive.';
        END IF;
    END LOOP;
    SELECT count(DISTINCT x) INTO v_n FROM unnest(case_files) x;
    IF v_agency IS NULL OR v_n <> (SELECT count(*) FROM ioffice.case_file c WHERE c.id = ANY (case_files)) THEN
        RAISE EXCEPTION 'unknown case file in %', pg_catalog.left(case_files::text, 60) USING ERRCODE = '42704';
    END IF;
    INSERT INTO ioffice.archive_transfer (agency_id, transferred_by, note)
    VALUES (v_agency, v_actor, note) RETURNING id INTO v_transfer;
    UPDATE ioffice.case_file c SET state = 'transferred', transfer_id = v_transfer
     WHERE c.id = ANY (case_files);
    PERFORM ioffice._audit('case_file', x, 'transfer', 'closed', 'transferred',
                           jsonb_build_object('transfer', v_transfer))
       FROM unnest(case_files) x ORDER BY x;
    PERFORM ioffice._engine_leave();
    RETURN v_transfer;
END
$$;
COMMENT ON FUNCTION transfer_case_files(bigint[], text) IS
  'A clerk records the transfer of closed case files of the agency to its archive (who, when); they become read-only; returns the transfer';

-- The transfer list (mục lục hồ sơ nộp lưu) as a workbook or CSV
-- (extension/case_file_export.c, with the register exports' writer).
CREATE FUNCTION archive_transfer_export(transfer bigint, format text) RETURNS bytea
    AS 'MODULE_PATHNAME', 'ioffice_archive_transfer_export'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION archive_transfer_export(bigint, text) IS
  'The list of the case files of a transfer to the archive (mục lục hồ sơ nộp lưu) as xlsx or csv; for its agency''s clerks and admins';
