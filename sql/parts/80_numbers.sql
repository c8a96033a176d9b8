
-- ---------------------------------------------------------------------------
-- Every number accounted for; a register entry, once made, kept as it was
-- (issue 17)
-- ---------------------------------------------------------------------------

-- A number taken with take_number() and not used: its taker (a clerk of the
-- register's agency) voids it with a reason.  The number stays in the
-- register (gapless), its entry says it was voided and why; the act is in the
-- audit trail of the register.  A number used by the document it served is
-- accounted for by import_issued(payload.number).
CREATE FUNCTION void_number(register bigint, number int, reason text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor bigint := ioffice.actor();
    v_agency bigint;
    v_symbol text;
    v_done boolean;
    v_secret boolean;
    v_clerk boolean;
BEGIN
    PERFORM ioffice._engine_enter();
    IF register IS NULL OR number IS NULL THEN
        RAISE EXCEPTION 'void_number needs a register and a number' USING ERRCODE = '22023';
    END IF;
    IF reason IS NULL OR btrim(reason) = '' THEN
        RAISE EXCEPTION 'void_number needs the reason the number was not used' USING ERRCODE = '22023';
    END IF;
    IF length(reason) > 500 THEN
        RAISE EXCEPTION 'the reason is longer than 500 characters' USING ERRCODE = '22023';
    END IF;
    -- the number's row is locked: an import using it waits, then finds it voided
    SELECT r.agency_id, n.symbol, n.document_id IS NOT NULL OR n.void_reason IS NOT NULL, r.confidential
      INTO v_agency, v_symbol, v_done, v_secret
      FROM ioffice.number_taken n JOIN ioffice.register r ON r.id = n.register_id
     WHERE n.register_id = void_number.register AND n.number = void_number.number
       FOR UPDATE OF n;
    -- a register's numbers are its agency's clerks' (a confidential one's
    -- are not even named to others)
    v_clerk := EXISTS (SELECT 1 FROM ioffice.person_role pr
                       WHERE pr.person_id = v_actor AND pr.role = 'clerk' AND pr.unit_id = v_agency);
    IF v_agency IS NULL OR (v_secret AND NOT v_clerk) THEN
        RAISE EXCEPTION 'number % of register % was not taken with take_number', number, register
            USING ERRCODE = '42704';
    END IF;
    IF NOT v_clerk THEN
        RAISE EXCEPTION 'only a clerk of the register''s agency may void its numbers'
            USING ERRCODE = '42501';
    END IF;
    IF v_done THEN
        RAISE EXCEPTION 'number % is already accounted for (used or voided)', v_symbol
            USING ERRCODE = '55000';
    END IF;
    UPDATE ioffice.number_taken n
       SET void_reason = void_number.reason, accounted_by = v_actor, accounted_at = now()
     WHERE n.register_id = void_number.register AND n.number = void_number.number;
    PERFORM ioffice._audit('register', register, 'void_number', NULL, NULL,
                           jsonb_build_object('number', number, 'symbol', v_symbol,
                                              'reason', reason),
                           NULL, NULL);
    PERFORM ioffice._engine_leave();
END
$$;
COMMENT ON FUNCTION void_number(bigint, int, text) IS
  'A clerk voids a number taken with take_number and not used, with the reason; it stays in the register';

-- The numbers taken with take_number() that no document carries and nobody
-- voided: what the register's clerks must still account for.  security_invoker:
-- the row-level security of number_taken and register applies (a confidential
-- register's numbers are seen by its agency's clerks only).
CREATE VIEW numbers_unaccounted WITH (security_invoker = true) AS
SELECT r.agency_id, n.register_id, r.code AS register_code, r.year, n.number, n.symbol,
       n.doc_type, n.taken_on, n.taken_at, p.login AS taken_by, r.confidential
FROM ioffice.number_taken n
JOIN ioffice.register r ON r.id = n.register_id
JOIN ioffice.person p ON p.id = n.taken_by
WHERE n.document_id IS NULL AND n.void_reason IS NULL;
COMMENT ON VIEW numbers_unaccounted IS
  'Numbers taken with take_number that no document carries and nobody voided (void_number)';
GRANT SELECT ON numbers_unaccounted TO PUBLIC;

-- A document's register entry, once it has its number, stays what was
-- registered, whoever writes the row: the engine, a role with the privilege,
-- or a foreign key's cascade (a DBA renaming a document type's code).  For
-- an outgoing document, the columns of the outgoing register and of its
-- identifier; for an incoming one, its number and register.
CREATE FUNCTION _register_entry_frozen() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF (OLD.direction, OLD.doc_type, OLD.register_id, OLD.register_year, OLD.number)
           IS DISTINCT FROM (NEW.direction, NEW.doc_type, NEW.register_id, NEW.register_year, NEW.number)
       OR (OLD.direction = 'outgoing'
           AND (OLD.doc_type_name, OLD.abstract, OLD.signer_id, OLD.signer_name,
                OLD.agency_id, OLD.drafting_unit_id, OLD.drafting_unit_name,
                OLD.symbol, OLD.issued_on, OLD.issued_at, OLD.identifier,
                OLD.recipients, OLD.copies)
               IS DISTINCT FROM
               (NEW.doc_type_name, NEW.abstract, NEW.signer_id, NEW.signer_name,
                NEW.agency_id, NEW.drafting_unit_id, NEW.drafting_unit_name,
                NEW.symbol, NEW.issued_on, NEW.issued_at, NEW.identifier,
                NEW.recipients, NEW.copies)) THEN
        RAISE EXCEPTION 'document % is entered in its register as number %: its register entry cannot change',
              OLD.id, coalesce(OLD.symbol, OLD.number::text)
            USING ERRCODE = '55000',
                  DETAIL = 'Type, abstract, signer, number, symbol, date and recipients are what was registered.';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER register_entry_frozen BEFORE UPDATE ON document
    FOR EACH ROW WHEN (OLD.number IS NOT NULL) EXECUTE FUNCTION _register_entry_frozen();

-- What a DBA (ioffice_admin writes register, doc_type and workflow_state) may
-- no longer change once numbers were given.  SECURITY DEFINER: the checks
-- read the documents past row-level security.
--   register: the counter, its audit chain and last date are the engine's
--   alone (a counter set by hand skips or repeats numbers); the identity of
--   a register that gave numbers (agency, direction, code, year, series
--   suffix) is in its entries; and a confidential register that numbered
--   something stays confidential (its entries would be shown to readers).
--   A new register starts at 1 (a dump being restored, by a superuser with
--   check_function_bodies off, brings its counters).
CREATE FUNCTION _register_guard() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF (NEW.next_number, NEW.numbers_seq) <> (1, 0)
           OR (NEW.numbers_prev, NEW.numbers_head, NEW.last_issued_on) IS DISTINCT FROM (NULL, NULL, NULL)
        THEN
            IF current_setting('check_function_bodies') = 'off'
               AND (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = session_user) THEN
                RETURN NEW;
            END IF;
            RAISE EXCEPTION 'a new register starts at number 1' USING ERRCODE = '42501',
                  HINT = 'Numbers are taken by issue and take_number, never set by hand.';
        END IF;
        RETURN NEW;
    END IF;
    IF (OLD.next_number, OLD.numbers_seq, OLD.numbers_prev, OLD.numbers_head, OLD.last_issued_on)
           IS DISTINCT FROM
       (NEW.next_number, NEW.numbers_seq, NEW.numbers_prev, NEW.numbers_head, NEW.last_issued_on) THEN
        RAISE EXCEPTION 'the counter of register % is written by the engine only', OLD.id
            USING ERRCODE = '42501',
                  HINT = 'Numbers are taken by issue and take_number, never set by hand.';
    END IF;
    IF OLD.next_number > 1
       OR EXISTS (SELECT 1 FROM ioffice.document d WHERE d.register_id = OLD.id)
       OR EXISTS (SELECT 1 FROM ioffice.number_taken n WHERE n.register_id = OLD.id) THEN
        IF (OLD.agency_id, OLD.direction, OLD.code, OLD.year, OLD.symbol_suffix)
               IS DISTINCT FROM (NEW.agency_id, NEW.direction, NEW.code, NEW.year, NEW.symbol_suffix)
           OR (OLD.confidential AND NOT NEW.confidential) THEN
            RAISE EXCEPTION 'register % has given numbers: its agency, direction, code, year, series and secrecy are in its entries',
                  OLD.id
                USING ERRCODE = '55000',
                      HINT = 'Add a new register for the new series; its name and document types may change.';
        END IF;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER register_guard BEFORE INSERT OR UPDATE ON register
    FOR EACH ROW WHEN (_outside_engine()) EXECUTE FUNCTION _register_guard();

--   doc_type: the code of a type that registers hold (a document numbered
--   or a number taken under it) cannot change: its cascade would rewrite
--   them.  Its name may: entries keep the name they were registered with.
CREATE FUNCTION _doc_type_guard() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF OLD.code IS DISTINCT FROM NEW.code
       AND (EXISTS (SELECT 1 FROM ioffice.document d
                    WHERE d.doc_type = OLD.code AND d.number IS NOT NULL)
            OR EXISTS (SELECT 1 FROM ioffice.number_taken n WHERE n.doc_type = OLD.code)) THEN
        RAISE EXCEPTION 'document type % is in the registers: its code cannot change', OLD.code
            USING ERRCODE = '55000',
                  HINT = 'Add a type with the new code; rename this one''s name if needed.';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER doc_type_guard BEFORE UPDATE ON doc_type
    FOR EACH ROW EXECUTE FUNCTION _doc_type_guard();

--   workflow_state: a state holding numbered documents keeps its name (its
--   cascade would move them), and stays final, and keeps its files frozen
--   (made editable, an issued document's files could be replaced).
CREATE FUNCTION _workflow_state_guard() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF ((OLD.workflow, OLD.state) IS DISTINCT FROM (NEW.workflow, NEW.state)
        OR (OLD.final AND NOT NEW.final)
        OR (OLD.files_frozen AND NOT NEW.files_frozen))
       AND EXISTS (SELECT 1 FROM ioffice.document d
                   WHERE d.workflow = OLD.workflow AND d.state = OLD.state AND d.number IS NOT NULL) THEN
        RAISE EXCEPTION 'state % of workflow % holds documents entered in a register', OLD.state, OLD.workflow
            USING ERRCODE = '55000',
                  DETAIL = 'Its name, its being final and its frozen files are what those documents were registered under.',
                  HINT = 'Labels may change; add a new state for new documents.';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER workflow_state_guard BEFORE UPDATE ON workflow_state
    FOR EACH ROW EXECUTE FUNCTION _workflow_state_guard();
