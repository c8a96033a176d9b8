-- Changes of who may see or do what, flagged until confirmed (Decree 30,
-- Appendix VI, III.3c: "cảnh báo sự thay đổi về quyền truy cập đối với từng
-- hồ sơ, văn bản trong Hệ thống cho đến khi có xác nhận của người có thẩm
-- quyền").  Every change of a role, of a delegation, and every change of a
-- document's visibility made outside the workflow (a task inserted, moved or
-- removed by hand, a document's drafter or agency changed) writes a row
-- here, whoever makes it and by whatever path, the extension's functions or
-- a DBA's statement; it stays unconfirmed until a DBA of the directory
-- (ioffice_admin) confirms it.  The change itself is in the audit trail as
-- before (the functions' own records, or the direct-change triggers'); the
-- confirmation is audited too.
--
-- Not flagged: the tasks the workflow creates and closes (that is the
-- document's normal course, audited by its steps), and a restore loading a
-- dump (its rows were flagged, or confirmed, where they were made).

CREATE TABLE permission_change (
    id             bigserial PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT now(),
    kind           text NOT NULL CHECK (kind IN ('role', 'delegation', 'visibility')),
    operation      text NOT NULL CHECK (operation IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')),
    -- whose access changed: the role's holder, the delegate; NULL for a
    -- TRUNCATE, or a document whose visibility changed for several people
    person_id      bigint,
    -- the document whose visibility changed (kind visibility)
    document_id    bigint,
    before         jsonb,
    after          jsonb,
    -- who changed it: the person acting (ioffice.actor), when one was, and
    -- the database role (a DBA's direct statement has only that)
    changed_by     bigint,
    db_role        text NOT NULL DEFAULT session_user,
    confirmed_at   timestamptz,
    confirmed_role text,
    confirmed_by   bigint,
    confirm_note   text CHECK (length(confirm_note) <= 1000),
    CHECK ((confirmed_at IS NULL) = (confirmed_role IS NULL))
);
-- no foreign keys: the flag outlives a person or a document removed since
CREATE INDEX permission_change_unconfirmed_idx ON permission_change (id) WHERE confirmed_at IS NULL;
CREATE INDEX permission_change_document_idx ON permission_change (document_id) WHERE document_id IS NOT NULL;
COMMENT ON TABLE permission_change IS
  'Changes of roles, delegations and documents'' visibility, flagged until a DBA confirms them (Decree 30, Appendix VI, III.3c)';
REVOKE ALL ON permission_change FROM PUBLIC;
GRANT SELECT ON permission_change TO ioffice_admin;
SELECT pg_catalog.pg_extension_config_dump('permission_change', '');
SELECT pg_catalog.pg_extension_config_dump('permission_change_id_seq', '');

-- The trigger of the three tables: TG_ARGV[0] is the kind.  SECURITY
-- DEFINER: whoever may change a role may not write here.
CREATE FUNCTION _permission_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_old  jsonb;
    v_new  jsonb;
    v_row  jsonb;
    v_person bigint;
    v_doc  bigint;
BEGIN
    IF ioffice._restoring_dump() THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        v_old := to_jsonb(OLD);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        v_new := to_jsonb(NEW);
    END IF;
    IF TG_OP = 'UPDATE' AND v_old = v_new THEN
        RETURN NULL;
    END IF;
    v_row := coalesce(v_new, v_old);
    IF TG_TABLE_NAME = 'person_role' THEN
        v_person := (v_row->>'person_id')::bigint;
    ELSIF TG_TABLE_NAME = 'delegation' THEN
        v_person := (v_row->>'to_person')::bigint;
    ELSIF TG_TABLE_NAME = 'task' THEN
        v_doc := (v_row->>'document_id')::bigint;
        v_person := (v_row->>'receiver_id')::bigint;
    ELSIF TG_TABLE_NAME = 'document' THEN
        v_doc := (v_row->>'id')::bigint;
        -- what of a document decides who sees it; its other columns are the
        -- direct-change audit's business
        v_old := jsonb_build_object('drafter_id', v_old->'drafter_id', 'agency_id', v_old->'agency_id');
        v_new := jsonb_build_object('drafter_id', v_new->'drafter_id', 'agency_id', v_new->'agency_id');
    END IF;
    INSERT INTO ioffice.permission_change (kind, operation, person_id, document_id, before, after, changed_by)
    VALUES (TG_ARGV[0], TG_OP, v_person, v_doc, v_old, v_new, ioffice.current_person());
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION _permission_changed() FROM PUBLIC;

CREATE TRIGGER permission_change AFTER INSERT OR UPDATE OR DELETE ON person_role
    FOR EACH ROW EXECUTE FUNCTION _permission_changed('role');
CREATE TRIGGER permission_change_truncate AFTER TRUNCATE ON person_role
    FOR EACH STATEMENT EXECUTE FUNCTION _permission_changed('role');
CREATE TRIGGER permission_change AFTER INSERT OR UPDATE OR DELETE ON delegation
    FOR EACH ROW EXECUTE FUNCTION _permission_changed('delegation');
CREATE TRIGGER permission_change_truncate AFTER TRUNCATE ON delegation
    FOR EACH STATEMENT EXECUTE FUNCTION _permission_changed('delegation');
CREATE TRIGGER permission_change AFTER INSERT OR UPDATE OF document_id, receiver_id, sender_id, processed_by OR DELETE
    ON task FOR EACH ROW WHEN (_outside_engine()) EXECUTE FUNCTION _permission_changed('visibility');
CREATE TRIGGER permission_change_truncate AFTER TRUNCATE ON task
    FOR EACH STATEMENT EXECUTE FUNCTION _permission_changed('visibility');
CREATE TRIGGER permission_change AFTER UPDATE OF drafter_id, agency_id ON document
    FOR EACH ROW WHEN (OLD.drafter_id IS DISTINCT FROM NEW.drafter_id OR OLD.agency_id IS DISTINCT FROM NEW.agency_id)
    EXECUTE FUNCTION _permission_changed('visibility');

-- A flag is written once and confirmed once: nothing else of it changes,
-- and none is removed (a TRUNCATE or DELETE by the owner included; the
-- audit's guard, as for the trail itself).
CREATE FUNCTION _permission_change_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND OLD.confirmed_at IS NULL AND NEW.confirmed_at IS NOT NULL
       AND (to_jsonb(OLD) - '{confirmed_at,confirmed_role,confirmed_by,confirm_note}'::text[])
           = (to_jsonb(NEW) - '{confirmed_at,confirmed_role,confirmed_by,confirm_note}'::text[]) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'permission changes are kept as they were flagged'
        USING ERRCODE = '55000',
              DETAIL = CASE WHEN TG_OP = 'UPDATE' AND OLD.confirmed_at IS NOT NULL
                            THEN format('change %s was confirmed already', OLD.id)
                            WHEN TG_OP = 'UPDATE' THEN 'only the confirmation may be added to a flag'
                            ELSE format('%s is not allowed on permission_change', TG_OP) END,
              HINT = 'Confirm a change with ioffice.confirm_permission_change(id).';
END
$$;
CREATE TRIGGER guard BEFORE UPDATE OR DELETE ON permission_change
    FOR EACH ROW EXECUTE FUNCTION _permission_change_guard();
CREATE TRIGGER guard_truncate BEFORE TRUNCATE ON permission_change
    FOR EACH STATEMENT EXECUTE FUNCTION _permission_change_guard();

CREATE VIEW unconfirmed_permission_changes AS
SELECT c.id, c.at, c.kind, c.operation, c.person_id, p.login, c.document_id, c.before, c.after,
       c.changed_by, b.login AS changed_by_login, c.db_role
  FROM permission_change c
  LEFT JOIN person p ON p.id = c.person_id
  LEFT JOIN person b ON b.id = c.changed_by
 WHERE c.confirmed_at IS NULL;
COMMENT ON VIEW unconfirmed_permission_changes IS
  'Changes of access waiting for a DBA''s confirmation, oldest first by id';
REVOKE ALL ON unconfirmed_permission_changes FROM PUBLIC;
GRANT SELECT ON unconfirmed_permission_changes TO ioffice_admin;

-- Confirm a flagged change (a DBA of the directory): who and when, and the
-- note, in the flag and in the audit trail.  Returns false when it was
-- confirmed already (by someone else at the same time, say).
CREATE FUNCTION confirm_permission_change(change bigint, note text DEFAULT NULL) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_kind text;
BEGIN
    IF length(note) > 1000 THEN
        RAISE EXCEPTION 'a confirmation note is at most 1000 characters' USING ERRCODE = '22023';
    END IF;
    UPDATE ioffice.permission_change c
       SET confirmed_at = now(), confirmed_role = session_user,
           confirmed_by = ioffice.current_person(), confirm_note = note
     WHERE c.id = confirm_permission_change.change AND c.confirmed_at IS NULL
    RETURNING c.kind INTO v_kind;
    IF NOT FOUND THEN
        IF NOT EXISTS (SELECT 1 FROM ioffice.permission_change c
                        WHERE c.id = confirm_permission_change.change) THEN
            RAISE EXCEPTION 'unknown permission change %', change USING ERRCODE = '42704';
        END IF;
        RETURN false;
    END IF;
    PERFORM ioffice._audit('permission_change', change, 'confirm', 'unconfirmed', 'confirmed',
                           jsonb_build_object('kind', v_kind, 'note', note));
    RETURN true;
END
$$;
REVOKE ALL ON FUNCTION confirm_permission_change(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION confirm_permission_change(bigint, text) TO ioffice_admin;
COMMENT ON FUNCTION confirm_permission_change(bigint, text) IS
  'Confirms a flagged change of roles, delegation or visibility (Decree 30, Appendix VI, III.3c); false if it was confirmed already';
