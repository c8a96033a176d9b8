-- ---------------------------------------------------------------------------
-- Directory functions
-- ---------------------------------------------------------------------------

CREATE FUNCTION add_agency(name text, abbr text, code text DEFAULT NULL, parent bigint DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id bigint;
    v_year int := extract(year FROM now() AT TIME ZONE ioffice.timezone());
BEGIN
    PERFORM ioffice._engine_enter();
    IF name IS NULL OR abbr IS NULL THEN
        RAISE EXCEPTION 'agency name and abbreviation are required'
            USING ERRCODE = '22023';
    END IF;
    IF code IS NOT NULL AND code !~ '^[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}$' THEN
        RAISE EXCEPTION 'agency code "%" is not of the form DDD.DD.DD.LDD', code
            USING ERRCODE = '22023',
                  HINT = 'QCVN 102:2016 agency identifiers look like 000.00.32.H41.';
    END IF;
    IF abbr !~ '^[^\s/,]{1,20}$' THEN
        RAISE EXCEPTION 'abbreviation "%" must be 1 to 20 characters without spaces, "/" or ","', abbr
            USING ERRCODE = '22023';
    END IF;
    IF length(name) NOT BETWEEN 1 AND 500 THEN
        RAISE EXCEPTION 'agency name must be 1 to 500 characters' USING ERRCODE = '22023';
    END IF;
    IF parent IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ioffice.unit u WHERE u.id = parent) THEN
        RAISE EXCEPTION 'unknown parent unit %', parent USING ERRCODE = '42704';
    END IF;
    IF code IS NOT NULL AND EXISTS (SELECT 1 FROM ioffice.unit u WHERE u.code = add_agency.code) THEN
        RAISE EXCEPTION 'an agency with code % already exists', code USING ERRCODE = '23505';
    END IF;

    v_id := nextval('ioffice.unit_id_seq');
    INSERT INTO ioffice.unit (id, parent_id, kind, code, name, abbr, agency_id)
    VALUES (v_id, parent, 'agency', code, name, abbr, v_id);

    -- a new agency can issue at once
    INSERT INTO ioffice.register (agency_id, direction, code, name, doc_types, confidential,
                                  symbol_suffix, year)
    VALUES (v_id, 'outgoing', 'outgoing', 'Sổ văn bản đi', NULL, false, NULL, v_year),
           (v_id, 'outgoing', 'outgoing_secret', 'Sổ văn bản đi mật', NULL, true, 'M', v_year),
           (v_id, 'incoming', 'incoming', 'Sổ văn bản đến', NULL, false, NULL, v_year);

    PERFORM ioffice._audit('unit', v_id, 'add_agency', NULL, NULL,
                           jsonb_build_object('name', name, 'abbr', abbr, 'code', code, 'parent', parent));
    PERFORM ioffice._engine_leave();
    RETURN v_id;
END
$$;

CREATE FUNCTION add_department(agency bigint, name text, abbr text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id bigint;
    v_agency bigint;
BEGIN
    PERFORM ioffice._engine_enter();
    IF agency IS NULL OR name IS NULL OR abbr IS NULL THEN
        RAISE EXCEPTION 'agency, name and abbreviation are required' USING ERRCODE = '22023';
    END IF;
    SELECT u.agency_id INTO v_agency FROM ioffice.unit u WHERE u.id = agency;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown unit %', agency USING ERRCODE = '42704';
    END IF;
    IF abbr !~ '^[^\s/,]{1,20}$' THEN
        RAISE EXCEPTION 'abbreviation "%" must be 1 to 20 characters without spaces, "/" or ","', abbr
            USING ERRCODE = '22023';
    END IF;
    IF length(name) NOT BETWEEN 1 AND 500 THEN
        RAISE EXCEPTION 'department name must be 1 to 500 characters' USING ERRCODE = '22023';
    END IF;
    INSERT INTO ioffice.unit (parent_id, kind, name, abbr, agency_id)
    VALUES (agency, 'department', name, abbr, v_agency)
    RETURNING id INTO v_id;
    PERFORM ioffice._audit('unit', v_id, 'add_department', NULL, NULL,
                           jsonb_build_object('name', name, 'abbr', abbr, 'parent', agency));
    PERFORM ioffice._engine_leave();
    RETURN v_id;
END
$$;

CREATE FUNCTION add_person(login text, full_name text, "position" text, unit bigint, roles text[])
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id bigint;
    v_agency bigint;
    v_role text;
BEGIN
    PERFORM ioffice._engine_enter();
    IF login IS NULL OR full_name IS NULL OR unit IS NULL THEN
        RAISE EXCEPTION 'login, full name and unit are required' USING ERRCODE = '22023';
    END IF;
    IF login !~ '^[A-Za-z0-9_.@-]{1,63}$' THEN
        RAISE EXCEPTION 'login "%" must be 1 to 63 letters, digits or _ . @ -', login
            USING ERRCODE = '22023';
    END IF;
    IF length(full_name) NOT BETWEEN 1 AND 200 OR length(add_person."position") > 200 THEN
        RAISE EXCEPTION 'full name must be 1 to 200 characters, position at most 200'
            USING ERRCODE = '22023';
    END IF;
    SELECT u.agency_id INTO v_agency FROM ioffice.unit u WHERE u.id = unit;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown unit %', unit USING ERRCODE = '42704';
    END IF;
    IF EXISTS (SELECT 1 FROM ioffice.person p WHERE p.login = add_person.login) THEN
        RAISE EXCEPTION 'a person with login "%" already exists', login USING ERRCODE = '23505';
    END IF;
    FOREACH v_role IN ARRAY coalesce(roles, '{}') LOOP
        IF v_role IS NULL OR v_role !~ '^[a-z_]{1,32}$' THEN
            RAISE EXCEPTION 'role "%" is not a role name', v_role USING ERRCODE = '22023',
                  HINT = 'Roles are specialist, leader, clerk, one_stop, admin, or one a workflow names.';
        END IF;
    END LOOP;

    INSERT INTO ioffice.person (login, full_name, "position", unit_id)
    VALUES (login, full_name, add_person."position", unit)
    RETURNING id INTO v_id;
    -- a clerk or one-stop officer serves the whole agency; other roles the unit
    INSERT INTO ioffice.person_role (person_id, role, unit_id)
    SELECT DISTINCT v_id, r,
           CASE WHEN r IN ('clerk', 'one_stop', 'admin') THEN v_agency ELSE unit END
    FROM unnest(coalesce(roles, '{}')) AS r;
    PERFORM ioffice._audit('person', v_id, 'add_person', NULL, NULL,
                           jsonb_build_object('login', login, 'unit', unit, 'roles', roles));
    PERFORM ioffice._engine_leave();
    RETURN v_id;
END
$$;

REVOKE ALL ON FUNCTION add_agency(text, text, text, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION add_department(bigint, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION add_person(text, text, text, bigint, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION add_agency(text, text, text, bigint) TO ioffice_admin;
GRANT EXECUTE ON FUNCTION add_department(bigint, text, text) TO ioffice_admin;
GRANT EXECUTE ON FUNCTION add_person(text, text, text, bigint, text[]) TO ioffice_admin;

-- Does person lead unit: hold the role leader (or deputy) in it or in a unit
-- above it within its agency (the chairman leads the departments)?  Who may
-- approve a document of the unit, and so sign it in the register.
CREATE FUNCTION _leads(person bigint, unit bigint) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- (PL/pgSQL for its plan kept across calls, as can_see())
    RETURN EXISTS (
        WITH RECURSIVE up (id, parent_id, agency_id, depth) AS (
            SELECT u.id, u.parent_id, u.agency_id, 1 FROM ioffice.unit u WHERE u.id = _leads.unit
            UNION ALL
            SELECT p.id, p.parent_id, p.agency_id, up.depth + 1
              FROM ioffice.unit p JOIN up ON p.id = up.parent_id
             WHERE p.agency_id = up.agency_id AND up.depth < 100)
        SELECT 1 FROM ioffice.person_role r JOIN up ON up.id = r.unit_id
         WHERE r.person_id = _leads.person AND r.role IN ('leader', 'deputy'));
END
$$;
REVOKE ALL ON FUNCTION _leads(bigint, bigint) FROM PUBLIC;

-- Approval delegation (ủy quyền duyệt): from now or later (a start up to a
-- minute in the past, an application's clock, is taken as now: the record
-- never says it began before it was made), to a leader or deputy of the
-- delegator's own unit, one at a time (constraint delegation_one_at_a_time),
-- until revoke_delegation() ends it.  Nobody approves what they drafted,
-- delegate or not (extension/act.c).
CREATE FUNCTION delegate(to_login text, valid_from timestamptz, valid_until timestamptz)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_from bigint := ioffice.actor();
    v_to bigint;
    v_start timestamptz;
    v_other bigint;
    v_id bigint;
BEGIN
    PERFORM ioffice._engine_enter();
    IF to_login IS NULL OR valid_from IS NULL OR valid_until IS NULL THEN
        RAISE EXCEPTION 'delegate needs a person and a period' USING ERRCODE = '22023';
    END IF;
    IF isfinite(valid_from) IS NOT TRUE OR isfinite(valid_until) IS NOT TRUE THEN
        RAISE EXCEPTION 'a delegation is for a finite period' USING ERRCODE = '22023',
              HINT = 'Decree 30 authorisations are time-limited.';
    END IF;
    IF valid_from < now() - interval '1 minute' THEN
        RAISE EXCEPTION 'a delegation starts now or later, not in the past' USING ERRCODE = '22023',
              HINT = 'Acts already done cannot be delegated after the fact: give valid_from as now() or later.';
    END IF;
    v_start := greatest(valid_from, now());
    IF valid_until <= v_start THEN
        RAISE EXCEPTION 'the delegation must end after it starts' USING ERRCODE = '22023';
    END IF;
    SELECT p.id INTO v_to FROM ioffice.person p WHERE p.login = to_login AND p.active;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown person "%"', left(to_login, 60) USING ERRCODE = '42704';
    END IF;
    IF v_to = v_from THEN
        RAISE EXCEPTION 'a person cannot delegate to themselves' USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ioffice.person f JOIN ioffice.person_role r ON r.unit_id = f.unit_id
                   WHERE f.id = v_from AND r.person_id = v_to AND r.role IN ('leader', 'deputy')) THEN
        RAISE EXCEPTION '"%" is not a leader or deputy of the delegator''s unit', left(to_login, 60)
            USING ERRCODE = '22023',
                  DETAIL = 'Approval is delegated to a leader or deputy of the same unit only.';
    END IF;
    SELECT g.id INTO v_other FROM ioffice.delegation g
    WHERE g.from_person = v_from
      AND tstzrange(g.valid_from, g.valid_until) && tstzrange(v_start, delegate.valid_until)
    ORDER BY g.id LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'another delegation of the same person covers part of this period'
            USING ERRCODE = '55000', DETAIL = format('Delegation %s.', v_other),
                  HINT = 'One delegation at a time: revoke it with ioffice.revoke_delegation() first.';
    END IF;
    BEGIN
        INSERT INTO ioffice.delegation (from_person, to_person, valid_from, valid_until)
        VALUES (v_from, v_to, v_start, delegate.valid_until)
        RETURNING id INTO v_id;
    EXCEPTION WHEN exclusion_violation THEN
        -- a concurrent delegate() of the same person committed first
        RAISE EXCEPTION 'another delegation of the same person covers part of this period'
            USING ERRCODE = '55000',
                  HINT = 'One delegation at a time: revoke it with ioffice.revoke_delegation() first.';
    END;
    PERFORM ioffice._audit('delegation', v_id, 'delegate', NULL, NULL,
                           jsonb_build_object('to', to_login, 'valid_from', v_start,
                                              'valid_until', valid_until));
    PERFORM ioffice._engine_leave();
    RETURN v_id;
END
$$;

-- The delegator ends a delegation now (or cancels one not yet started).
CREATE FUNCTION revoke_delegation(id bigint) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor bigint := ioffice.actor();
    v_g ioffice.delegation;
BEGIN
    PERFORM ioffice._engine_enter();
    IF revoke_delegation.id IS NULL THEN
        RAISE EXCEPTION 'revoke_delegation needs a delegation' USING ERRCODE = '22023';
    END IF;
    SELECT g.* INTO v_g FROM ioffice.delegation g WHERE g.id = revoke_delegation.id FOR UPDATE;
    IF NOT FOUND OR (v_actor NOT IN (v_g.from_person, v_g.to_person) AND NOT ioffice.is_admin()) THEN
        RAISE EXCEPTION 'unknown delegation %', revoke_delegation.id USING ERRCODE = '42704';
    END IF;
    IF v_g.from_person <> v_actor THEN
        RAISE EXCEPTION 'only the person who delegated may revoke delegation %', revoke_delegation.id
            USING ERRCODE = '42501';
    END IF;
    IF v_g.revoked_at IS NOT NULL THEN
        RAISE EXCEPTION 'delegation % was already revoked', revoke_delegation.id USING ERRCODE = '55000';
    END IF;
    IF v_g.valid_until <= now() THEN
        RAISE EXCEPTION 'delegation % has already ended', revoke_delegation.id USING ERRCODE = '55000';
    END IF;
    UPDATE ioffice.delegation g
       SET revoked_at = now(), revoked_by = v_actor, valid_until = greatest(g.valid_from, now())
     WHERE g.id = revoke_delegation.id;
    PERFORM ioffice._audit('delegation', revoke_delegation.id, 'revoke', NULL, NULL,
                           jsonb_build_object('valid_from', v_g.valid_from,
                                              'valid_until_given', v_g.valid_until));
    PERFORM ioffice._engine_leave();
END
$$;
COMMENT ON FUNCTION revoke_delegation(bigint) IS
  'The delegator ends an approval delegation now (or cancels one not yet started); audited';

-- ---------------------------------------------------------------------------
-- Documents
-- ---------------------------------------------------------------------------

-- The details a function accepts: spec maps each key to its JSON type.
CREATE FUNCTION _check_details(details jsonb, spec jsonb) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_key text;
    v_type text;
BEGIN
    IF jsonb_typeof(details) <> 'object' THEN
        RAISE EXCEPTION 'details must be a JSON object' USING ERRCODE = '22023';
    END IF;
    FOR v_key, v_type IN SELECT k, jsonb_typeof(v) FROM jsonb_each(details) AS e(k, v) LOOP
        CONTINUE WHEN v_type = 'null';
        IF NOT spec ? v_key THEN
            RAISE EXCEPTION 'unknown detail "%"', v_key USING ERRCODE = '22023',
                  HINT = 'Details are ' || (SELECT string_agg(k, ', ' ORDER BY k)
                                            FROM jsonb_object_keys(spec) AS k) || '.';
        END IF;
        IF spec->>v_key <> v_type THEN
            RAISE EXCEPTION 'details.% must be a%', v_key,
                  CASE spec->>v_key WHEN 'array' THEN 'n array' ELSE ' ' || (spec->>v_key) END
                USING ERRCODE = '22023';
        END IF;
    END LOOP;
END
$$;

-- A whole number detail in [lo, hi], or NULL when absent.
CREATE FUNCTION _whole_detail(details jsonb, key text, lo numeric, hi numeric) RETURNS numeric
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v numeric;
BEGIN
    IF jsonb_typeof(details->key) IS DISTINCT FROM 'number' THEN
        RETURN NULL;
    END IF;
    v := (details->>key)::numeric;
    IF v NOT BETWEEN lo AND hi OR v <> trunc(v) THEN
        RAISE EXCEPTION 'details.% must be a whole number from % to %', key, lo, hi
            USING ERRCODE = '22023';
    END IF;
    RETURN v;
END
$$;
REVOKE ALL ON FUNCTION _check_details(jsonb, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION _whole_detail(jsonb, text, numeric, numeric) FROM PUBLIC;

-- A time or date detail (a finite one), or NULL when absent: read by the
-- parser of every date of the extension (extension/dates.c).
CREATE FUNCTION _time_detail(details jsonb, key text) RETURNS timestamptz
    AS 'MODULE_PATHNAME', 'ioffice_time_detail' LANGUAGE C STABLE STRICT;
CREATE FUNCTION _date_detail(details jsonb, key text) RETURNS date
    AS 'MODULE_PATHNAME', 'ioffice_date_detail' LANGUAGE C STABLE STRICT;
REVOKE ALL ON FUNCTION _time_detail(jsonb, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION _date_detail(jsonb, text) FROM PUBLIC;

CREATE FUNCTION create_outgoing(doc_type text, abstract text, details jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor bigint := ioffice.actor();
    v_unit bigint;
    v_agency bigint;
    v_state text;
    v_signer bigint;
    v_id bigint;
    v_related bigint[];
    v_item jsonb;
    v_recipients jsonb := '[]';
    v_details jsonb := coalesce(details, '{}');
    v_urgency text;
    v_conf text;
    v_flash_at timestamptz;
    v_due date;
    v_pages int;
    v_copies int;
BEGIN
    PERFORM ioffice._engine_enter();
    IF doc_type IS NULL OR abstract IS NULL THEN
        RAISE EXCEPTION 'a document needs a type and an abstract' USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ioffice.doc_type t WHERE t.code = create_outgoing.doc_type) THEN
        RAISE EXCEPTION 'unknown document type "%"', doc_type USING ERRCODE = '42704',
              HINT = 'Document types are the codes of table ioffice.doc_type (CV, QĐ, KH, BC, TB, TTr, GM, …).';
    END IF;
    IF length(btrim(abstract)) = 0 OR length(abstract) > 500 THEN
        RAISE EXCEPTION 'the abstract must be 1 to 500 characters (it has %)', length(abstract)
            USING ERRCODE = '22023';
    END IF;
    PERFORM ioffice._check_details(v_details,
        '{"urgency": "string", "flash_at": "string", "confidentiality": "string", "field": "string",
          "signer": "string", "comment": "string", "due_date": "string", "page_count": "number",
          "copies": "number", "recipients": "array", "related": "array"}');

    v_urgency := coalesce(v_details->>'urgency', 'normal');
    IF v_urgency NOT IN ('normal', 'urgent', 'very_urgent', 'flash', 'flash_timed') THEN
        RAISE EXCEPTION 'unknown urgency "%"', v_urgency USING ERRCODE = '22023',
              HINT = 'Urgency is normal, urgent, very_urgent, flash or flash_timed.';
    END IF;
    IF v_urgency = 'flash_timed' THEN
        IF v_details->>'flash_at' IS NULL THEN
            RAISE EXCEPTION 'urgency flash_timed needs details.flash_at' USING ERRCODE = '22023';
        END IF;
        v_flash_at := ioffice._time_detail(v_details, 'flash_at');
    ELSIF v_details->>'flash_at' IS NOT NULL THEN
        RAISE EXCEPTION 'details.flash_at only goes with urgency flash_timed' USING ERRCODE = '22023';
    END IF;
    v_conf := coalesce(v_details->>'confidentiality', 'normal');
    IF v_conf NOT IN ('normal', 'confidential', 'secret', 'top_secret') THEN
        RAISE EXCEPTION 'unknown confidentiality "%"', v_conf USING ERRCODE = '22023',
              HINT = 'Confidentiality is normal, confidential, secret or top_secret.';
    END IF;
    IF length(v_details->>'field') > 200 THEN
        RAISE EXCEPTION 'details.field must be at most 200 characters' USING ERRCODE = '22023';
    END IF;
    IF length(v_details->>'comment') > 2000 THEN
        RAISE EXCEPTION 'details.comment must be at most 2000 characters' USING ERRCODE = '22023';
    END IF;
    v_pages := ioffice._whole_detail(v_details, 'page_count', 1, 100000);
    v_copies := ioffice._whole_detail(v_details, 'copies', 1, 100000);
    v_due := ioffice._date_detail(v_details, 'due_date');
    SELECT p.unit_id, u.agency_id INTO v_unit, v_agency
    FROM ioffice.person p JOIN ioffice.unit u ON u.id = p.unit_id
    WHERE p.id = v_actor;
    -- the signer the drafter proposes: a leader of the drafting unit (or
    -- above) other than the drafter; the approval replaces it with the
    -- leader who approves (extension/act.c)
    IF v_details->>'signer' IS NOT NULL THEN
        SELECT p.id INTO v_signer FROM ioffice.person p
        WHERE p.login = v_details->>'signer' AND p.active;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'unknown signer "%"', left(v_details->>'signer', 60) USING ERRCODE = '42704';
        END IF;
        IF v_signer = v_actor OR NOT ioffice._leads(v_signer, v_unit) THEN
            RAISE EXCEPTION 'signer "%" is not a leader of the drafting unit other than the drafter',
                left(v_details->>'signer', 60)
                USING ERRCODE = '22023',
                      DETAIL = 'The signer (Người ký) is the leader who approves the document; nobody names himself.';
        END IF;
    END IF;
    IF jsonb_typeof(v_details->'recipients') = 'array' THEN
        FOR v_item IN SELECT jsonb_array_elements(v_details->'recipients') LOOP
            IF jsonb_typeof(v_item) <> 'string' OR length(v_item #>> '{}') NOT BETWEEN 1 AND 500 THEN
                RAISE EXCEPTION 'each recipient must be an agency code or a place of 1 to 500 characters'
                    USING ERRCODE = '22023';
            END IF;
            -- an agency of this database is kept with its id, a free-text place as text
            v_recipients := v_recipients || jsonb_build_array(
                coalesce((SELECT jsonb_build_object('agency', u.id, 'code', u.code, 'name', u.name)
                          FROM ioffice.unit u
                          WHERE u.code = v_item #>> '{}' AND u.kind = 'agency'),
                         jsonb_build_object('place', v_item #>> '{}')));
        END LOOP;
    END IF;
    IF jsonb_typeof(v_details->'related') = 'array' THEN
        FOR v_item IN SELECT jsonb_array_elements(v_details->'related') LOOP
            IF jsonb_typeof(v_item) <> 'number'
               OR (v_item #>> '{}')::numeric <> trunc((v_item #>> '{}')::numeric)
               OR (v_item #>> '{}')::numeric NOT BETWEEN 1 AND 9223372036854775807 THEN
                RAISE EXCEPTION 'each related document must be a document id' USING ERRCODE = '22023';
            END IF;
            IF NOT ioffice.can_see((v_item #>> '{}')::bigint) THEN
                RAISE EXCEPTION 'unknown related document %', v_item #>> '{}' USING ERRCODE = '42704';
            END IF;
            v_related := v_related || (v_item #>> '{}')::bigint;
        END LOOP;
    END IF;

    SELECT s.state INTO v_state FROM ioffice.workflow_state s
    WHERE s.workflow = 'outgoing' AND s.initial
    ORDER BY s.state LIMIT 1;

    INSERT INTO ioffice.document (workflow, doc_type, abstract, state, urgency, flash_at,
                                  confidentiality, field, agency_id, drafting_unit_id, drafter_id,
                                  signer_id, page_count, copies, recipients, due_date, comment)
    VALUES ('outgoing', create_outgoing.doc_type, create_outgoing.abstract, v_state, v_urgency,
            v_flash_at, v_conf, v_details->>'field', v_agency, v_unit, v_actor, v_signer,
            v_pages, v_copies, v_recipients, v_due, v_details->>'comment')
    RETURNING id INTO v_id;
    INSERT INTO ioffice.document_link (document_id, related_id)
    SELECT DISTINCT v_id, r FROM unnest(v_related) AS r;
    PERFORM ioffice._audit('document', v_id, 'create', NULL, v_state,
                           jsonb_build_object('doc_type', create_outgoing.doc_type,
                                              'abstract', create_outgoing.abstract,
                                              'details', v_details));
    PERFORM ioffice._engine_leave();
    RETURN v_id;
END
$$;

-- Whoever writes a document (the engine, or a role through a foreign key's
-- cascade): once approved (its state freezes the files or is final, or it
-- is a dossier's result, made signed), its signer, type and abstract are
-- what was approved and no longer change; and an outgoing document gets its
-- number only with a signer who leads a unit of its agency and did not draft
-- it.  SECURITY DEFINER: it reads the rules and roles past any privilege.
CREATE FUNCTION _document_approved() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF (NEW.signer_id IS DISTINCT FROM OLD.signer_id OR NEW.doc_type IS DISTINCT FROM OLD.doc_type
        OR NEW.abstract IS DISTINCT FROM OLD.abstract)
       AND (OLD.number IS NOT NULL OR OLD.workflow = 'dossier_result'
            OR EXISTS (SELECT 1 FROM ioffice.workflow_state s
                       WHERE s.workflow = OLD.workflow AND s.state = OLD.state
                         AND (s.files_frozen OR s.final))) THEN
        RAISE EXCEPTION 'document % is approved: its signer, type and abstract can no longer change', OLD.id
            USING ERRCODE = '55000',
                  HINT = 'What the leader approved and signed is what is issued; return it to be approved again before it is issued.';
    END IF;
    IF OLD.number IS NULL AND NEW.number IS NOT NULL
       AND (NEW.signer_id IS NULL OR NEW.signer_id = NEW.drafter_id
            OR NOT EXISTS (SELECT 1 FROM ioffice.person_role r JOIN ioffice.unit u ON u.id = r.unit_id
                           WHERE r.person_id = NEW.signer_id AND r.role IN ('leader', 'deputy')
                             AND u.agency_id = NEW.agency_id)) THEN
        RAISE EXCEPTION 'document % has no signer who may sign it', NEW.id
            USING ERRCODE = '55000',
                  DETAIL = 'The signer in the register (Người ký) is a leader of the agency who approved it, never its drafter.';
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION _document_approved() FROM PUBLIC;
CREATE TRIGGER approved_frozen BEFORE UPDATE ON document
    FOR EACH ROW WHEN (NEW.direction = 'outgoing'
                       AND (OLD.signer_id IS DISTINCT FROM NEW.signer_id
                            OR OLD.doc_type IS DISTINCT FROM NEW.doc_type
                            OR OLD.abstract IS DISTINCT FROM NEW.abstract
                            OR (OLD.number IS NULL AND NEW.number IS NOT NULL)))
    EXECUTE FUNCTION _document_approved();

CREATE FUNCTION link_documents(doc bigint, related bigint) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor bigint := ioffice.actor();
    v_state text;
BEGIN
    PERFORM ioffice._engine_enter();
    IF doc IS NULL OR related IS NULL THEN
        RAISE EXCEPTION 'link_documents needs two documents' USING ERRCODE = '22023';
    END IF;
    PERFORM ioffice._require_document(doc);
    PERFORM ioffice._require_document(related);
    IF doc = related THEN
        RAISE EXCEPTION 'a document cannot be related to itself' USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ioffice.document d WHERE d.id = doc AND d.drafter_id = v_actor)
       AND NOT EXISTS (SELECT 1 FROM ioffice.task t
                       WHERE t.document_id = doc AND t.status = 'open' AND t.receiver_id = v_actor) THEN
        RAISE EXCEPTION 'only the drafter or the current holder may link documents'
            USING ERRCODE = '42501';
    END IF;
    -- an issued (or otherwise final) document keeps the links it had: wait
    -- for an act under way on it, then judge the state it left (the trigger
    -- on document_link says the same to every other writer)
    PERFORM 1 FROM ioffice.document d WHERE d.id = doc FOR NO KEY UPDATE;
    SELECT d.state INTO v_state FROM ioffice.document d
      JOIN ioffice.workflow_state s ON s.workflow = d.workflow AND s.state = d.state
     WHERE d.id = doc AND s.final;
    IF FOUND THEN
        RAISE EXCEPTION 'document % is %: its related documents can no longer change', doc, v_state
            USING ERRCODE = '55000',
                  DETAIL = 'A document in a final state keeps the links it was issued or closed with.',
                  HINT = 'Link the related document from a new document instead.';
    END IF;
    INSERT INTO ioffice.document_link (document_id, related_id) VALUES (doc, related)
    ON CONFLICT DO NOTHING;
    PERFORM ioffice._audit('document', doc, 'link', NULL, NULL,
                           jsonb_build_object('related', related));
    PERFORM ioffice._engine_leave();
END
$$;

-- The clerk registers a document received on paper or by e-mail (vào sổ
-- văn bản đến): it gets the next arrival number of the agency's incoming
-- register.  Documents delivered by agencies of this database arrive by
-- themselves and are registered with act(doc, 'register').
CREATE FUNCTION register_incoming(doc_type text, abstract text, sender text, sender_symbol text,
                                  sender_date date, details jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor bigint := ioffice.actor();
    v_agency bigint;
    v_sender_agency bigint;
    v_sender_name text;
    v_details jsonb := coalesce(details, '{}');
    v_urgency text;
    v_conf text;
    v_due date;
    v_received timestamptz := now();
    v_arrival date;
    v_register bigint;
    v_pages int;
    v_existing bigint;
    v_id bigint;
    v_number int;
BEGIN
    PERFORM ioffice._engine_enter();
    IF doc_type IS NULL OR abstract IS NULL OR sender IS NULL OR sender_symbol IS NULL
       OR sender_date IS NULL THEN
        RAISE EXCEPTION 'an incoming document needs its type, abstract, sender, the sender''s number and symbol, and its date'
            USING ERRCODE = '22023';
    END IF;
    SELECT u.agency_id INTO v_agency FROM ioffice.person p JOIN ioffice.unit u ON u.id = p.unit_id
    WHERE p.id = v_actor;
    IF NOT EXISTS (SELECT 1 FROM ioffice.person_role r
                   WHERE r.person_id = v_actor AND r.role = 'clerk' AND r.unit_id = v_agency) THEN
        RAISE EXCEPTION 'only a clerk registers incoming documents' USING ERRCODE = '42501';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ioffice.doc_type t WHERE t.code = register_incoming.doc_type) THEN
        RAISE EXCEPTION 'unknown document type "%"', doc_type USING ERRCODE = '42704';
    END IF;
    IF length(btrim(abstract)) = 0 OR length(abstract) > 500 THEN
        RAISE EXCEPTION 'the abstract must be 1 to 500 characters (it has %)', length(abstract)
            USING ERRCODE = '22023';
    END IF;
    IF length(btrim(sender)) = 0 OR length(sender) > 500 THEN
        RAISE EXCEPTION 'the sender must be an agency code or a name of 1 to 500 characters'
            USING ERRCODE = '22023';
    END IF;
    IF length(btrim(sender_symbol)) = 0 OR length(sender_symbol) > 100 THEN
        RAISE EXCEPTION 'the sender''s number and symbol must be 1 to 100 characters'
            USING ERRCODE = '22023';
    END IF;
    IF sender_date > (now() AT TIME ZONE ioffice.timezone())::date OR sender_date < '1900-01-01' THEN
        RAISE EXCEPTION 'the document''s date % is not a date it can have been issued on', sender_date
            USING ERRCODE = '22023';
    END IF;
    PERFORM ioffice._check_details(v_details,
        '{"urgency": "string", "confidentiality": "string", "due_date": "string",
          "received_at": "string", "field": "string", "comment": "string",
          "page_count": "number", "register": "number"}');
    v_urgency := coalesce(v_details->>'urgency', 'normal');
    IF v_urgency NOT IN ('normal', 'urgent', 'very_urgent', 'flash') THEN
        RAISE EXCEPTION 'unknown urgency "%"', v_urgency USING ERRCODE = '22023';
    END IF;
    v_conf := coalesce(v_details->>'confidentiality', 'normal');
    IF v_conf NOT IN ('normal', 'confidential', 'secret', 'top_secret') THEN
        RAISE EXCEPTION 'unknown confidentiality "%"', v_conf USING ERRCODE = '22023';
    END IF;
    IF length(v_details->>'field') > 200 THEN
        RAISE EXCEPTION 'details.field must be at most 200 characters' USING ERRCODE = '22023';
    END IF;
    IF length(v_details->>'comment') > 2000 THEN
        RAISE EXCEPTION 'details.comment must be at most 2000 characters' USING ERRCODE = '22023';
    END IF;
    v_due := ioffice._date_detail(v_details, 'due_date');
    v_received := ioffice._time_detail(v_details, 'received_at');
    IF v_received IS NOT NULL THEN
        IF v_received > now() THEN
            RAISE EXCEPTION 'details.received_at is in the future' USING ERRCODE = '22023';
        END IF;
    END IF;
    -- the arrival date (Ngày đến, in ioffice.timezone) is a day of the year
    -- whose register numbers it (this year's: _take_arrival), and not before
    -- the document's own date
    v_arrival := (coalesce(v_received, now()) AT TIME ZONE ioffice.timezone())::date;
    IF v_arrival < sender_date THEN
        RAISE EXCEPTION 'details.received_at is before the document''s own date'
            USING ERRCODE = '22023',
                  DETAIL = format('It arrived on %s; it is dated %s.', v_arrival, sender_date);
    END IF;
    IF extract(year FROM v_arrival)
       <> extract(year FROM (now() AT TIME ZONE ioffice.timezone())::date) THEN
        RAISE EXCEPTION 'details.received_at is not in the year of the register that numbers it'
            USING ERRCODE = '22023',
                  DETAIL = format('It arrived on %s; arrival numbers run from 1 January to 31 December, in order of receipt.',
                                  v_arrival),
                  HINT = 'A document is registered on the day it arrives.';
    END IF;
    v_pages := ioffice._whole_detail(v_details, 'page_count', 1, 100000);
    v_register := ioffice._whole_detail(v_details, 'register', 1, 9223372036854775807);

    -- the sender: an agency of this database by its code, or a name
    SELECT u.id INTO v_sender_agency FROM ioffice.unit u
    WHERE u.code = register_incoming.sender AND u.kind = 'agency';
    IF v_sender_agency IS NULL THEN
        v_sender_name := sender;
    END IF;
    SELECT d.id, d.number INTO v_existing, v_number FROM ioffice.document d
    WHERE d.direction = 'incoming' AND d.agency_id = v_agency
      AND coalesce(d.sender_agency_id::text, d.sender_name) = coalesce(v_sender_agency::text, v_sender_name)
      AND d.sender_symbol = register_incoming.sender_symbol
      AND d.sender_year = extract(year FROM register_incoming.sender_date);
    IF FOUND THEN
        RAISE EXCEPTION 'document % of % was already registered (arrival number %)',
            sender_symbol, sender, v_number
            USING ERRCODE = '23505', DETAIL = format('Incoming document %s.', v_existing);
    END IF;

    INSERT INTO ioffice.document (workflow, direction, doc_type, abstract, state, urgency,
                                  confidentiality, field, agency_id, drafting_unit_id, drafter_id,
                                  page_count, due_date, comment, sender_agency_id, sender_name,
                                  sender_symbol, sender_date, received_at)
    VALUES ('incoming', 'incoming', register_incoming.doc_type, register_incoming.abstract,
            'registered', v_urgency, v_conf, v_details->>'field', v_agency, v_agency, v_actor,
            v_pages, v_due, v_details->>'comment', v_sender_agency, v_sender_name,
            register_incoming.sender_symbol, register_incoming.sender_date, v_received)
    RETURNING id INTO v_id;
    -- the arrival number last: the register row stays locked to commit
    v_number := ioffice._take_arrival(v_id, v_register);
    PERFORM ioffice._audit('document', v_id, 'register_incoming', NULL, 'registered',
                           jsonb_build_object('arrival_number', v_number, 'sender', sender,
                                              'sender_symbol', sender_symbol,
                                              'sender_date', sender_date, 'details', v_details));
    PERFORM ioffice._engine_leave();
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION register_incoming(text, text, text, text, date, jsonb) IS
  'The clerk registers a received document (vào sổ văn bản đến) and it gets its arrival number';

