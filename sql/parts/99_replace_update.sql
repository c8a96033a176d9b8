
-- ---------------------------------------------------------------------------
-- Replacing and updating an issued document (Decree 30 art. 18.3; issue 14
-- item 5; QCVN 102:2016 BussinessDocType 3 replace, 2 update).
--
-- Replace (art. 18.3: a document with an error of content is replaced by a
-- document of the same form): the replacement is a new outgoing document,
-- drafted, approved and signed as any other; replace_issued(old, new,
-- reason) links it, while it is not yet issued, to the issued document of
-- the same agency it replaces.  At its issue the old document is marked
-- replaced (frozen: its row no longer changes, except to be recalled), and
-- every external recipient the old document was sent to gets the new
-- document's package as a replacement (BussinessDocType 3,
-- ReplacementInfoList naming the old DocumentId), as well as the new
-- document's own recipients (a recipient of the old document only gets it
-- too); a copy of the old document in this database is superseded by the
-- new copy delivered to the same agency.
--
-- The receiver files a replacement as a new incoming document (01, as any
-- package), links it to the copy received under the replaced DocumentId,
-- marks that copy superseded (replaced_at: kept, read-only, its history
-- visible) and answers 15; a replacement of a document never received here
-- is filed all the same and answered 16 with the reason.
--
-- Update: update_issued(doc, changes, reason) corrects what the standard's
-- update carries without a new document: the due date (DocumentInfo) and
-- the receivers (DocumentReceiver, ReceiverList: ReceiverType 1 added, 0
-- removed).  Added agencies get the document's package (new to them); the
-- others it was sent to, the removed ones included, get an update package.
-- The outgoing register entry (recipients) stays what was registered: the
-- updates are the record of what changed, when, why and by whom.  The
-- receiver applies the due date to its copy, records the receivers, keeps
-- the previous values (document_update.changes: old and new) and answers
-- 15; an update of a document never received, or of a copy recalled or
-- superseded, is answered 16 with the reason.  Twice: handled once.
-- ---------------------------------------------------------------------------

ALTER TABLE document ADD COLUMN replaced_at timestamptz;
COMMENT ON COLUMN document.replaced_at IS
  'When the document was replaced: an outgoing one by the issue of its replacement (replace_issued), a received copy by a replacement received (superseded); it no longer changes';

-- One row per replacement: 'sent', the outgoing document (document_id)
-- replacing the issued one (replaced_id), set while drafting and applied at
-- its issue (applied_at); 'received', a received copy (document_id)
-- superseding an earlier copy (replaced_id; NULL: never received here),
-- from an external sender (party, replaced_edxml_document_id) or from an
-- agency of this database (party NULL).
CREATE TABLE document_replacement (
    id               bigserial PRIMARY KEY,
    direction        text NOT NULL CHECK (direction IN ('sent', 'received')),
    agency_id        bigint NOT NULL REFERENCES unit,
    document_id      bigint NOT NULL REFERENCES document,
    replaced_id      bigint REFERENCES document,
    party            text CHECK (length(party) BETWEEN 1 AND 13),
    replaced_edxml_document_id text CHECK (length(replaced_edxml_document_id) BETWEEN 1 AND 100),
    reason           text NOT NULL CHECK (length(reason) BETWEEN 1 AND 2000),
    requested_at     timestamptz NOT NULL DEFAULT now(),
    requested_by     bigint REFERENCES person,
    applied_at       timestamptz,
    answer_reason    text CHECK (length(answer_reason) <= 2000),
    CHECK (direction = 'received' OR (replaced_id IS NOT NULL AND party IS NULL)),
    CHECK (replaced_id IS DISTINCT FROM document_id)
);
CREATE UNIQUE INDEX document_replacement_sent_key ON document_replacement (document_id)
    WHERE direction = 'sent';
CREATE UNIQUE INDEX document_replacement_replaced_key ON document_replacement (replaced_id)
    WHERE direction = 'sent';
CREATE UNIQUE INDEX document_replacement_received_key
    ON document_replacement (document_id, coalesce(replaced_edxml_document_id, ''))
    WHERE direction = 'received';
CREATE INDEX document_replacement_replaced_idx ON document_replacement (replaced_id);
COMMENT ON TABLE document_replacement IS
  'Replacements (Decree 30 art. 18.3; edXML BussinessDocType 3): outgoing documents replacing issued ones (sent, applied at issue), received copies superseding earlier ones (received)';
SELECT pg_catalog.pg_extension_config_dump('document_replacement', '');
SELECT pg_catalog.pg_extension_config_dump('document_replacement_id_seq', '');
REVOKE ALL ON document_replacement FROM PUBLIC;
GRANT SELECT ON document_replacement TO ioffice_admin;

-- One row per update: 'sent', of an outgoing document issued here;
-- 'received', applied to a received copy (document_id NULL: never received
-- here) from an external sender (party, edxml_document_id; package_key:
-- the update's content, so that a package received twice is handled once)
-- or from an agency of this database (party NULL).  changes: what changed,
-- {"due_date": {"old", "new"}, "receivers": [{"type": "0"|"1",
-- "organ_id"}]}, the previous values kept.
CREATE TABLE document_update (
    id               bigserial PRIMARY KEY,
    direction        text NOT NULL CHECK (direction IN ('sent', 'received')),
    document_id      bigint REFERENCES document,
    agency_id        bigint NOT NULL REFERENCES unit,
    party            text CHECK (length(party) BETWEEN 1 AND 13),
    edxml_document_id text CHECK (length(edxml_document_id) BETWEEN 1 AND 100),
    package_key      bytea CHECK (length(package_key) = 32),
    reason           text NOT NULL CHECK (length(reason) BETWEEN 1 AND 2000),
    changes          jsonb NOT NULL DEFAULT '{}',
    requested_at     timestamptz NOT NULL DEFAULT now(),
    requested_by     bigint REFERENCES person,
    answer           text CHECK (answer IN ('accepted', 'refused')),
    answer_reason    text CHECK (length(answer_reason) <= 2000),
    CHECK (direction = 'received' OR (answer IS NULL AND document_id IS NOT NULL)),
    CHECK (direction = 'sent' OR answer IS NOT NULL),
    CHECK (answer IS DISTINCT FROM 'refused' OR answer_reason IS NOT NULL)
);
CREATE INDEX document_update_document_idx ON document_update (document_id, id);
CREATE UNIQUE INDEX document_update_package_key ON document_update (agency_id, party, edxml_document_id, package_key)
    WHERE direction = 'received' AND party IS NOT NULL;
COMMENT ON TABLE document_update IS
  'Updates of issued documents (edXML BussinessDocType 2: due date, receivers added or removed): sent, and received with what changed (old and new values) and the answer (15 accepted, 16 refused)';
SELECT pg_catalog.pg_extension_config_dump('document_update', '');
SELECT pg_catalog.pg_extension_config_dump('document_update_id_seq', '');
REVOKE ALL ON document_update FROM PUBLIC;
GRANT SELECT ON document_update TO ioffice_admin;

-- update packages go to the axis as recall packages do, one per update and
-- recipient
ALTER TABLE edxml_outgoing ADD COLUMN update_id bigint REFERENCES document_update;
COMMENT ON COLUMN edxml_outgoing.update_id IS
  'kind update: the update (document_update) the package carries';
ALTER TABLE edxml_outgoing DROP CONSTRAINT edxml_outgoing_kind_check;
ALTER TABLE edxml_outgoing ADD CONSTRAINT edxml_outgoing_kind_check
    CHECK (kind IN ('document', 'status', 'recall', 'update'));
ALTER TABLE edxml_outgoing ADD CONSTRAINT edxml_outgoing_update_check
    CHECK ((kind = 'update') = (update_id IS NOT NULL));
CREATE UNIQUE INDEX edxml_outgoing_update_key ON edxml_outgoing (update_id, recipient)
    WHERE kind = 'update';
COMMENT ON COLUMN edxml_outgoing.kind IS
  'document: the package of an issued document (a replacement, BussinessDocType 3, for a recipient of the document it replaces); recall: its recall package (BussinessDocType 1, the reason in description); update: an update package (BussinessDocType 2, update_id); status: a status package (code)';

-- A replaced document's row no longer changes, whoever writes it, except
-- to be recalled (a replaced document may still be recalled).
CREATE FUNCTION _document_replaced() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF ioffice._restoring_dump() THEN
        RETURN NEW;
    END IF;
    IF (to_jsonb(NEW) - 'updated_at' - 'recalled_at') IS DISTINCT FROM
       (to_jsonb(OLD) - 'updated_at' - 'recalled_at') THEN
        RAISE EXCEPTION 'document % was replaced: it can no longer change', OLD.id
            USING ERRCODE = '55000',
                  DETAIL = 'A replaced document is kept as it was (Decree 30 art. 18.3); its replacement is the document in force.';
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION _document_replaced() FROM PUBLIC;
CREATE TRIGGER replaced_frozen BEFORE UPDATE ON document
    FOR EACH ROW WHEN (OLD.replaced_at IS NOT NULL) EXECUTE FUNCTION _document_replaced();

-- Who may replace or update an issued document: as recall(), its agency's
-- clerks, leaders and deputies, and its signer.
CREATE FUNCTION _may_change_issued(doc bigint, what text) RETURNS document
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me bigint := ioffice.actor();
    d ioffice.document%ROWTYPE;
BEGIN
    PERFORM ioffice._require_document(doc);
    SELECT * INTO d FROM ioffice.document WHERE id = doc;
    IF NOT (d.signer_id IS NOT DISTINCT FROM v_me
            OR EXISTS (SELECT 1 FROM ioffice.person_role r
                       WHERE r.person_id = v_me AND r.unit_id = d.agency_id
                         AND r.role IN ('clerk', 'leader', 'deputy'))) THEN
        RAISE EXCEPTION 'only a clerk or a leader of the issuing agency, or the signer, % document %',
            what, doc
            USING ERRCODE = '42501';
    END IF;
    IF d.direction <> 'outgoing' OR d.issued_at IS NULL OR d.number IS NULL THEN
        RAISE EXCEPTION 'document % is not an issued outgoing document', doc
            USING ERRCODE = '55000';
    END IF;
    IF d.recalled_at IS NOT NULL THEN
        RAISE EXCEPTION 'document % was recalled', doc USING ERRCODE = '55000';
    END IF;
    IF d.replaced_at IS NOT NULL THEN
        RAISE EXCEPTION 'document % was replaced', doc USING ERRCODE = '55000',
            HINT = 'Its replacement is the document in force.';
    END IF;
    RETURN d;
END
$$;
REVOKE ALL ON FUNCTION _may_change_issued(bigint, text) FROM PUBLIC;

CREATE FUNCTION _change_reason(reason text, what text) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF btrim(reason) IS NULL OR btrim(reason) = '' THEN
        RAISE EXCEPTION '% needs its reason', what USING ERRCODE = '22023';
    END IF;
    IF length(btrim(reason)) > 2000 THEN
        RAISE EXCEPTION 'the reason of % has at most 2000 characters', what USING ERRCODE = '22023';
    END IF;
    RETURN btrim(reason);
END
$$;
REVOKE ALL ON FUNCTION _change_reason(text, text) FROM PUBLIC;

-- The replacement link, set while the new document is not yet issued:
-- new_doc, an outgoing document of the same agency, replaces old_doc, an
-- issued one that is neither recalled nor replaced, for reason.  Set again,
-- it changes the link.  Acted on at the new document's issue.
CREATE FUNCTION replace_issued(old_doc bigint, new_doc bigint, reason text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me bigint := ioffice.actor();
    v_reason text;
    o ioffice.document%ROWTYPE;
    n record;
    v_other bigint;
BEGIN
    o := ioffice._may_change_issued(old_doc, 'replaces');
    v_reason := ioffice._change_reason(reason, 'a replacement');
    PERFORM ioffice._require_document(new_doc);
    SELECT * INTO n FROM ioffice.document WHERE id = new_doc FOR UPDATE;
    IF n.id = o.id THEN
        RAISE EXCEPTION 'document % cannot replace itself', old_doc USING ERRCODE = '22023';
    END IF;
    IF n.direction <> 'outgoing' OR n.agency_id <> o.agency_id THEN
        RAISE EXCEPTION 'document % is not an outgoing document of the agency that issued document %',
            new_doc, old_doc
            USING ERRCODE = '22023',
                  DETAIL = 'A document is replaced by a document of the same agency and form (Decree 30 art. 18.3).';
    END IF;
    IF n.number IS NOT NULL OR n.issued_at IS NOT NULL THEN
        RAISE EXCEPTION 'document % is issued already: a replacement is named while it is drafted', new_doc
            USING ERRCODE = '55000',
                  HINT = 'Draft the replacement, name what it replaces, then issue it.';
    END IF;
    SELECT r.document_id INTO v_other FROM ioffice.document_replacement r
    WHERE r.replaced_id = old_doc AND r.direction = 'sent' AND r.document_id <> new_doc;
    IF FOUND THEN
        RAISE EXCEPTION 'document % is being replaced by document % already', old_doc, v_other
            USING ERRCODE = '55000';
    END IF;

    PERFORM ioffice._engine_enter();
    INSERT INTO ioffice.document_replacement (direction, agency_id, document_id, replaced_id,
                                              reason, requested_by)
    VALUES ('sent', n.agency_id, new_doc, old_doc, v_reason, v_me)
    ON CONFLICT (document_id) WHERE direction = 'sent'
    DO UPDATE SET replaced_id = EXCLUDED.replaced_id, reason = EXCLUDED.reason,
                  requested_at = now(), requested_by = EXCLUDED.requested_by;
    PERFORM ioffice._audit('document', new_doc, 'replaces', n.state, n.state,
                           jsonb_build_object('replaced', old_doc, 'reason', v_reason));
    PERFORM ioffice._engine_leave();
END
$$;
COMMENT ON FUNCTION replace_issued(bigint, bigint, text) IS
  'Names, while new_doc is drafted, the issued document old_doc of the same agency it replaces (Decree 30 art. 18.3), with the reason; at new_doc''s issue old_doc is marked replaced (frozen) and its external recipients get new_doc as a replacement (edXML BussinessDocType 3); for the agency''s clerks and leaders and old_doc''s signer';
REVOKE ALL ON FUNCTION replace_issued(bigint, bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION replace_issued(bigint, bigint, text) TO ioffice_app, ioffice_admin;

-- The replacement issued: the old document marked replaced, its packages
-- not sent yet sent no more, the new document queued for every external
-- recipient of the old one (built as a replacement, _edxml_package).  The
-- old document recalled or replaced meanwhile stops the issue.
CREATE FUNCTION _replacement_issued() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    o record;
    n int;
BEGIN
    SELECT * INTO r FROM ioffice.document_replacement x
    WHERE x.document_id = NEW.id AND x.direction = 'sent' FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    SELECT * INTO o FROM ioffice.document WHERE id = r.replaced_id FOR UPDATE;
    IF o.recalled_at IS NOT NULL OR o.replaced_at IS NOT NULL THEN
        RAISE EXCEPTION 'document % replaces document %, which was % meanwhile', NEW.id, o.id,
            CASE WHEN o.recalled_at IS NOT NULL THEN 'recalled' ELSE 'replaced' END
            USING ERRCODE = '55000',
                  HINT = 'Name another document it replaces (replace_issued), or none.';
    END IF;
    PERFORM ioffice._engine_enter();
    UPDATE ioffice.document SET replaced_at = now(), updated_at = now() WHERE id = o.id;
    UPDATE ioffice.document_replacement SET applied_at = now() WHERE id = r.id;
    UPDATE ioffice.edxml_outgoing SET state = 'dead', last_error = 'replaced before it was sent'
    WHERE document_id = o.id AND kind = 'document' AND state = 'queued';
    INSERT INTO ioffice.edxml_outgoing (agency_id, document_id, recipient, kind)
    SELECT NEW.agency_id, NEW.id, x.recipient, 'document'
    FROM ioffice.edxml_outgoing x WHERE x.document_id = o.id AND x.kind = 'document'
    ON CONFLICT (document_id, recipient) WHERE kind = 'document' DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    PERFORM ioffice._audit('document', o.id, 'replaced', o.state, o.state,
                           jsonb_build_object('by', NEW.id, 'reason', r.reason));
    PERFORM ioffice._engine_leave();
    IF n > 0 THEN
        PERFORM ioffice._wake_worker();
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION _replacement_issued() FROM PUBLIC;
CREATE TRIGGER document_replacement_issued AFTER UPDATE OF state ON document
    FOR EACH ROW WHEN (NEW.direction = 'outgoing' AND NEW.state = 'issued'
                       AND OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION _replacement_issued();

-- A copy received: supersedes what the replaced document was here (old_copy
-- of the same agency), kept read-only with its history; its open tasks are
-- closed.  Returns whether it was superseded now.
CREATE FUNCTION _supersede_copy(old_copy bigint, new_copy bigint, reason text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE ioffice.document SET replaced_at = now(), updated_at = now()
    WHERE id = old_copy AND replaced_at IS NULL AND recalled_at IS NULL;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    UPDATE ioffice.task SET status = 'done', processed_at = now(), closed_by_action = 'replaced'
    WHERE document_id = old_copy AND status = 'open';
    PERFORM ioffice._audit('document', old_copy, 'superseded', NULL, NULL,
                           jsonb_build_object('by', new_copy, 'reason', reason));
    PERFORM ioffice._audit('document', new_copy, 'supersedes', NULL, NULL,
                           jsonb_build_object('replaced', old_copy, 'reason', reason));
    RETURN true;
END
$$;
REVOKE ALL ON FUNCTION _supersede_copy(bigint, bigint, text) FROM PUBLIC;

-- The replacement delivered to an agency of this database: the copy of the
-- replaced document there is superseded.
CREATE FUNCTION _replacement_delivered() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    v_old bigint;
BEGIN
    SELECT * INTO r FROM ioffice.document_replacement x
    WHERE x.document_id = NEW.source_document_id AND x.direction = 'sent';
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    SELECT c.id INTO v_old FROM ioffice.document c
    WHERE c.source_document_id = r.replaced_id AND c.agency_id = NEW.agency_id
      AND c.direction = 'incoming';
    PERFORM ioffice._engine_enter();
    INSERT INTO ioffice.document_replacement (direction, agency_id, document_id, replaced_id, reason,
                                              applied_at, answer_reason)
    VALUES ('received', NEW.agency_id, NEW.id, v_old, r.reason, now(),
            CASE WHEN v_old IS NULL THEN 'Không nhận được văn bản bị thay thế' END)
    ON CONFLICT DO NOTHING;
    IF v_old IS NOT NULL THEN
        PERFORM ioffice._supersede_copy(v_old, NEW.id, r.reason);
    END IF;
    PERFORM ioffice._engine_leave();
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION _replacement_delivered() FROM PUBLIC;
CREATE TRIGGER document_replacement_delivered AFTER INSERT ON document
    FOR EACH ROW WHEN (NEW.source_document_id IS NOT NULL AND NEW.direction = 'incoming')
    EXECUTE FUNCTION _replacement_delivered();

-- A replacement package (BussinessDocType 3) filed as new_copy: for each
-- DocumentId in its ReplacementInfoList, the copy received from the same
-- sender under it is superseded and 15 goes back; none received (or one
-- recalled or superseded already): 16 with the reason.  Called once per
-- package (_edxml_file files a package once).
CREATE FUNCTION _edxml_file_replace(p jsonb, new_copy bigint, agency bigint) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_sender text := p->'from'->>'organ_id';
    v_docid text := p->>'document_id';
    v_reason text := pg_catalog.left(coalesce(nullif(btrim(p->>'bussiness_doc_reason'), ''),
                                              'Thay thế văn bản'), 2000);
    v_old_id text;
    v_old bigint;
    v_refusal text;
BEGIN
    FOR v_old_id IN SELECT DISTINCT e->>'document_id'
                    FROM jsonb_array_elements(p->'replacements') e ORDER BY 1 LOOP
        SELECT r.document_id INTO v_old FROM ioffice.edxml_received r
        WHERE r.agency_id = agency AND r.sender_organ_id = v_sender
          AND r.edxml_document_id = v_old_id;
        v_refusal := CASE
            WHEN v_old IS NULL THEN
                format('Không nhận được văn bản %s: không có văn bản nào bị thay thế', v_old_id)
            WHEN NOT ioffice._supersede_copy(v_old, new_copy, v_reason) THEN
                format('Văn bản %s đã bị thu hồi hoặc thay thế trước đó', v_old_id) END;
        INSERT INTO ioffice.document_replacement (direction, agency_id, document_id, replaced_id,
                                                  party, replaced_edxml_document_id, reason,
                                                  applied_at, answer_reason)
        VALUES ('received', agency, new_copy, v_old, v_sender, v_old_id, v_reason,
                CASE WHEN v_refusal IS NULL THEN now() END, v_refusal);
        INSERT INTO ioffice.edxml_status (document_id, party_organ_id, edxml_document_id,
                                          direction, code, description)
        VALUES (new_copy, v_sender, v_docid, 'sent',
                CASE WHEN v_refusal IS NULL THEN '15' ELSE '16' END,
                coalesce(v_refusal, format('Đã thay thế văn bản %s', v_old_id)));
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION _edxml_file_replace(jsonb, bigint, bigint) FROM PUBLIC;

-- An update applied to a received copy: the due date (when due_changed)
-- and the receivers recorded.  Returns the changes (old and new values),
-- or NULL when the copy can no longer change (recalled, superseded).
CREATE FUNCTION _update_copy(copy bigint, due_changed boolean, due date, receivers jsonb,
                             own_code text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d record;
    v_changes jsonb := '{}';
BEGIN
    SELECT * INTO d FROM ioffice.document WHERE id = copy FOR UPDATE;
    IF d.recalled_at IS NOT NULL OR d.replaced_at IS NOT NULL THEN
        RETURN NULL;
    END IF;
    IF due_changed AND d.due_date IS DISTINCT FROM due THEN
        v_changes := jsonb_build_object('due_date', jsonb_build_object('old', d.due_date, 'new', due));
        UPDATE ioffice.document SET due_date = due, updated_at = now() WHERE id = copy;
    END IF;
    IF jsonb_array_length(coalesce(receivers, '[]')) > 0 THEN
        v_changes := v_changes || jsonb_build_object('receivers', receivers);
        IF EXISTS (SELECT 1 FROM jsonb_array_elements(receivers) e
                   WHERE e->>'type' = '0' AND e->>'organ_id' = own_code) THEN
            v_changes := v_changes || '{"removed_here": true}';
        END IF;
    END IF;
    RETURN v_changes;
END
$$;
REVOKE ALL ON FUNCTION _update_copy(bigint, boolean, date, jsonb, text) FROM PUBLIC;

-- Updates an issued outgoing document (edXML BussinessDocType 2): changes
-- {"due_date": "yyyy-mm-dd" | null, "add_recipients": [agency codes],
-- "remove_recipients": [agency codes]}, with a reason.  Returns the update.
CREATE FUNCTION update_issued(doc bigint, changes jsonb, reason text) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me bigint := ioffice.actor();
    v_reason text;
    d ioffice.document%ROWTYPE;
    v_key text;
    v_code text;
    v_due date;
    v_due_changed boolean := false;
    v_receivers jsonb := '[]';
    v_changes jsonb := '{}';
    v_current text[];
    v_update bigint;
    v_copy record;
    v_copy_changes jsonb;
    v_external int;
BEGIN
    d := ioffice._may_change_issued(doc, 'updates');
    v_reason := ioffice._change_reason(reason, 'an update');
    IF changes IS NULL OR jsonb_typeof(changes) <> 'object' OR changes = '{}' THEN
        RAISE EXCEPTION 'an update needs its changes: due_date, add_recipients, remove_recipients'
            USING ERRCODE = '22023';
    END IF;
    FOR v_key IN SELECT jsonb_object_keys(changes) LOOP
        IF v_key NOT IN ('due_date', 'add_recipients', 'remove_recipients') THEN
            RAISE EXCEPTION 'an update does not change "%"', pg_catalog.left(v_key, 60)
                USING ERRCODE = '22023',
                      HINT = 'An update (QCVN 102:2016) changes the due date and the receivers; an error in the content is corrected by a replacement (replace_issued).';
        END IF;
    END LOOP;
    PERFORM 1 FROM ioffice.document WHERE id = doc FOR UPDATE;
    IF changes ? 'due_date' THEN
        BEGIN
            v_due := (changes->>'due_date')::date;
        EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format THEN
            RAISE EXCEPTION 'due_date "%" is not a date', pg_catalog.left(changes->>'due_date', 60)
                USING ERRCODE = '22023';
        END;
        IF v_due IS DISTINCT FROM d.due_date THEN
            v_due_changed := true;
            v_changes := jsonb_build_object('due_date',
                                            jsonb_build_object('old', d.due_date, 'new', v_due));
        END IF;
    END IF;
    -- the external recipients now: those sent the document, less those an
    -- update removed since
    SELECT coalesce(array_agg(o.recipient), '{}') INTO v_current
    FROM ioffice.edxml_outgoing o
    WHERE o.document_id = doc AND o.kind = 'document'
      AND coalesce((SELECT e->>'type' FROM ioffice.document_update u,
                           jsonb_array_elements(u.changes->'receivers') e
                    WHERE u.document_id = doc AND u.direction = 'sent'
                      AND e->>'organ_id' = o.recipient
                    ORDER BY u.id DESC LIMIT 1), '1') = '1';
    FOR v_code IN SELECT e FROM jsonb_array_elements_text(
                      CASE WHEN jsonb_typeof(changes->'add_recipients') = 'array'
                           THEN changes->'add_recipients' ELSE '[]' END) e LOOP
        IF v_code !~ '^[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}$'
           OR EXISTS (SELECT 1 FROM ioffice.unit u WHERE u.code = v_code AND u.kind = 'agency') THEN
            RAISE EXCEPTION 'add_recipients: "%" is not the code of an agency outside this database',
                pg_catalog.left(v_code, 60)
                USING ERRCODE = '22023',
                      HINT = 'An update adds external agencies (QCVN 102:2016 codes such as 000.00.00.G22).';
        END IF;
        IF v_code = ANY (v_current) THEN
            RAISE EXCEPTION 'add_recipients: agency % is a recipient already', v_code
                USING ERRCODE = '22023';
        END IF;
        v_receivers := v_receivers || jsonb_build_object('type', '1', 'organ_id', v_code);
    END LOOP;
    FOR v_code IN SELECT e FROM jsonb_array_elements_text(
                      CASE WHEN jsonb_typeof(changes->'remove_recipients') = 'array'
                           THEN changes->'remove_recipients' ELSE '[]' END) e LOOP
        IF NOT (v_code = ANY (v_current)) THEN
            RAISE EXCEPTION 'remove_recipients: "%" is not an external recipient of document %',
                pg_catalog.left(v_code, 60), doc
                USING ERRCODE = '22023';
        END IF;
        v_receivers := v_receivers || jsonb_build_object('type', '0', 'organ_id', v_code);
    END LOOP;
    IF (changes ? 'add_recipients' AND jsonb_typeof(changes->'add_recipients') <> 'array')
       OR (changes ? 'remove_recipients' AND jsonb_typeof(changes->'remove_recipients') <> 'array') THEN
        RAISE EXCEPTION 'add_recipients and remove_recipients are arrays of agency codes'
            USING ERRCODE = '22023';
    END IF;
    IF jsonb_array_length(v_receivers) > 0 THEN
        v_changes := v_changes || jsonb_build_object('receivers', v_receivers);
    END IF;
    IF v_changes = '{}' THEN
        RAISE EXCEPTION 'the update of document % changes nothing', doc USING ERRCODE = '22023';
    END IF;

    PERFORM ioffice._engine_enter();
    IF v_due_changed THEN
        UPDATE ioffice.document SET due_date = v_due, updated_at = now() WHERE id = doc;
    END IF;
    INSERT INTO ioffice.document_update (direction, document_id, agency_id, reason, changes,
                                         requested_by)
    VALUES ('sent', doc, d.agency_id, v_reason, v_changes, v_me)
    RETURNING id INTO v_update;
    -- removed: their document package not sent yet is sent no more
    UPDATE ioffice.edxml_outgoing o SET state = 'dead', last_error = 'removed from the recipients'
    WHERE o.document_id = doc AND o.kind = 'document' AND o.state = 'queued'
      AND o.recipient IN (SELECT e->>'organ_id' FROM jsonb_array_elements(v_receivers) e
                          WHERE e->>'type' = '0');
    -- the update to every recipient it was sent to (the removed ones told)
    INSERT INTO ioffice.edxml_outgoing (agency_id, document_id, recipient, kind, description,
                                        edxml_document_id, update_id)
    SELECT d.agency_id, doc, r, 'update', v_reason, d.identifier, v_update
    FROM unnest(v_current) r;
    GET DIAGNOSTICS v_external = ROW_COUNT;
    -- added: the document itself, new to them
    INSERT INTO ioffice.edxml_outgoing (agency_id, document_id, recipient, kind)
    SELECT d.agency_id, doc, e->>'organ_id', 'document'
    FROM jsonb_array_elements(v_receivers) e WHERE e->>'type' = '1'
    ON CONFLICT (document_id, recipient) WHERE kind = 'document'
    DO UPDATE SET state = 'queued', attempts = 0, next_attempt_at = now(), last_error = NULL,
                  sent_at = NULL;
    -- copies in this database: the due date applied directly
    FOR v_copy IN SELECT c.id, c.agency_id FROM ioffice.document c
                  WHERE c.source_document_id = doc AND c.direction = 'incoming' ORDER BY c.id LOOP
        v_copy_changes := ioffice._update_copy(v_copy.id, v_due_changed, v_due, NULL, NULL);
        INSERT INTO ioffice.document_update (direction, document_id, agency_id, reason, changes,
                                             answer, answer_reason)
        VALUES ('received', v_copy.id, v_copy.agency_id, v_reason, coalesce(v_copy_changes, '{}'),
                CASE WHEN v_copy_changes IS NULL THEN 'refused' ELSE 'accepted' END,
                CASE WHEN v_copy_changes IS NULL THEN 'Văn bản đã bị thu hồi hoặc thay thế' END);
        PERFORM ioffice._audit('document', v_copy.id, 'update_received', NULL, NULL,
                               jsonb_build_object('from_document', doc, 'reason', v_reason,
                                                  'changes', v_copy_changes));
    END LOOP;
    PERFORM ioffice._audit('document', doc, 'update', d.state, d.state,
                           jsonb_build_object('reason', v_reason, 'changes', v_changes,
                                              'external', v_external));
    PERFORM ioffice._engine_leave();
    PERFORM ioffice._wake_worker();
    RETURN v_update;
END
$$;
COMMENT ON FUNCTION update_issued(bigint, jsonb, text) IS
  'Updates an issued outgoing document (edXML BussinessDocType 2), with a reason: changes {"due_date", "add_recipients", "remove_recipients"}; added agencies get the document, the others it was sent to an update package; copies in this database get the due date; the history kept (document_update, update_status); for the agency''s clerks and leaders and the signer. Returns the update';
REVOKE ALL ON FUNCTION update_issued(bigint, jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION update_issued(bigint, jsonb, text) TO ioffice_app, ioffice_admin;

-- An update package (BussinessDocType 2) read and verified, for the agency
-- it is addressed to: applied to the copy received from that sender under
-- that DocumentId (DocumentInfo 1: its DueDate; DocumentReceiver 1: the
-- ReceiverList recorded), the previous values kept, 13 recorded and 15
-- answered; none received, or a copy recalled or superseded: 16 with the
-- reason.  Twice: handled once (the update's content is its key).  Returns
-- the received copy, or NULL.
CREATE FUNCTION _edxml_file_update(p jsonb, package text, agency bigint, actor bigint) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_sender text := p->'from'->>'organ_id';
    v_docid text := p->>'document_id';
    v_reason text := pg_catalog.left(coalesce(nullif(btrim(p->>'bussiness_doc_reason'), ''),
                                              'Cập nhật văn bản'), 2000);
    v_receivers jsonb := CASE WHEN p->>'document_receiver' = '1' THEN coalesce(p->'receivers', '[]')
                              ELSE '[]' END;
    v_doc bigint;
    v_key bigint;
    v_changes jsonb;
    v_refusal text;
BEGIN
    SELECT r.document_id INTO v_doc FROM ioffice.edxml_received r
    WHERE r.agency_id = agency AND r.sender_organ_id = v_sender AND r.edxml_document_id = v_docid;
    PERFORM ioffice._engine_enter();
    INSERT INTO ioffice.document_update (direction, document_id, agency_id, party,
                                         edxml_document_id, package_key, reason, requested_by,
                                         answer, answer_reason)
    VALUES ('received', v_doc, agency, v_sender, v_docid,
            sha256(convert_to(jsonb_build_object('reason', v_reason,
                                                 'document_info', p->>'document_info',
                                                 'due_date', p->>'due_date',
                                                 'receivers', v_receivers)::text, 'UTF8')),
            v_reason, actor, 'accepted', NULL)
    ON CONFLICT DO NOTHING
    RETURNING id INTO v_key;
    IF v_key IS NULL THEN
        PERFORM ioffice._engine_leave();
        RETURN v_doc;
    END IF;
    IF v_doc IS NULL THEN
        v_refusal := 'Không nhận được văn bản này: không có gì để cập nhật';
    ELSE
        v_changes := ioffice._update_copy(v_doc, p->>'document_info' = '1',
                                          to_date(p->>'due_date', 'YYYY/MM/DD'), v_receivers,
                                          (SELECT u.code FROM ioffice.unit u WHERE u.id = agency));
        IF v_changes IS NULL THEN
            v_refusal := 'Văn bản đã bị thu hồi hoặc thay thế: không cập nhật được';
        END IF;
    END IF;
    UPDATE ioffice.document_update
    SET changes = coalesce(v_changes, '{}'),
        answer = CASE WHEN v_refusal IS NULL THEN 'accepted' ELSE 'refused' END,
        answer_reason = v_refusal
    WHERE id = v_key;
    IF v_doc IS NULL THEN
        INSERT INTO ioffice.edxml_outgoing (agency_id, recipient, kind, code, description,
                                            edxml_document_id)
        VALUES (agency, v_sender, 'status', '16', v_refusal, v_docid);
        PERFORM ioffice._wake_worker();
    ELSE
        INSERT INTO ioffice.edxml_status (document_id, party_organ_id, edxml_document_id,
                                          direction, code, description)
        VALUES (v_doc, v_sender, v_docid, 'received', '13', v_reason),
               (v_doc, v_sender, v_docid, 'sent', CASE WHEN v_refusal IS NULL THEN '15' ELSE '16' END,
                coalesce(v_refusal, 'Đã cập nhật'));
        PERFORM ioffice._audit('document', v_doc, 'update_received', NULL, NULL,
                               jsonb_build_object('sender', v_sender, 'document_id', v_docid,
                                                  'reason', v_reason, 'changes', v_changes,
                                                  'refused', v_refusal,
                                                  'signer', p->'signature'->>'subject'));
    END IF;
    PERFORM ioffice._engine_leave();
    RETURN v_doc;
END
$$;
REVOKE ALL ON FUNCTION _edxml_file_update(jsonb, text, bigint, bigint) FROM PUBLIC;

-- exchange_status, now with update packages (code 13, the reason in
-- description, package 'update') and replacements (package 'replace': the
-- new document's package to a recipient of the document it replaces).
CREATE OR REPLACE VIEW exchange_status AS
SELECT s.document_id AS document, s.party_organ_id AS party, s.edxml_document_id,
       s.direction, s.code, s.description, s.recorded_at, s.sent_at,
       CASE WHEN s.direction = 'sent' THEN 'status' END AS package,
       o.state AS delivery, o.last_error
FROM ioffice.edxml_status s
LEFT JOIN ioffice.edxml_outgoing o ON o.status_id = s.id
WHERE ioffice.can_see(s.document_id)
UNION ALL
SELECT o.document_id, o.recipient, d.identifier, 'sent',
       CASE WHEN o.kind IN ('recall', 'update') THEN '13' END,
       CASE WHEN o.kind IN ('recall', 'update') THEN o.description
            WHEN rp.id IS NOT NULL THEN 'Văn bản thay thế văn bản ' || od.identifier
            ELSE 'Văn bản điện tử' END,
       o.created_at, o.sent_at,
       CASE WHEN rp.id IS NOT NULL THEN 'replace' ELSE o.kind END, o.state, o.last_error
FROM ioffice.edxml_outgoing o JOIN ioffice.document d ON d.id = o.document_id
LEFT JOIN ioffice.document_replacement rp
       ON o.kind = 'document' AND rp.document_id = o.document_id AND rp.direction = 'sent'
      AND rp.applied_at IS NOT NULL
      AND EXISTS (SELECT 1 FROM ioffice.edxml_outgoing x
                  WHERE x.document_id = rp.replaced_id AND x.kind = 'document'
                    AND x.recipient = o.recipient)
LEFT JOIN ioffice.document od ON od.id = rp.replaced_id
WHERE o.kind IN ('document', 'recall', 'update') AND ioffice.can_see(o.document_id);
COMMENT ON VIEW exchange_status IS
  'edXML exchange per document and external agency: the document packages sent (code NULL; package replace for a replacement), recall and update packages (13, with the reason) and the status codes (01 arrived, 02 refused, 03 registered, 04 assigned, 05 in progress, 06 finished, 13 recall or update asked, 15 accepted, 16 refused) sent back and received, with times and delivery (queued, sent, dead); only documents the caller may see';

-- Updates of the documents the caller may see: an outgoing document's
-- update per external recipient (its answer: 15 accepted, 16 refused with
-- the reason, received after it; NULL while none came; recipient NULL: no
-- external recipient); a received copy's update with what changed (old and
-- new values) and its answer.
CREATE VIEW update_status AS
SELECT u.document_id AS document, u.id AS update, 'sent'::text AS direction, o.recipient AS party,
       u.reason, u.changes, u.requested_at,
       CASE a.code WHEN '15' THEN 'accepted' WHEN '16' THEN 'refused' END AS answer,
       a.description AS answer_reason, a.recorded_at AS answered_at, o.state AS delivery
FROM ioffice.document_update u
LEFT JOIN ioffice.edxml_outgoing o ON o.update_id = u.id AND o.kind = 'update'
LEFT JOIN LATERAL (SELECT x.code, x.description, x.recorded_at FROM ioffice.edxml_status x
                   WHERE x.document_id = u.document_id AND x.direction = 'received'
                     AND x.party_organ_id = o.recipient AND x.code IN ('15', '16')
                     AND x.recorded_at >= u.requested_at
                   ORDER BY x.id LIMIT 1) a ON true
WHERE u.direction = 'sent' AND ioffice.can_see(u.document_id)
UNION ALL
SELECT u.document_id, u.id, 'received', u.party, u.reason, u.changes, u.requested_at,
       u.answer, u.answer_reason, u.requested_at, NULL
FROM ioffice.document_update u
WHERE u.direction = 'received' AND u.document_id IS NOT NULL AND ioffice.can_see(u.document_id);
COMMENT ON VIEW update_status IS
  'Updates (edXML BussinessDocType 2) of the documents the caller may see: sent, per external recipient with its answer (15 accepted, 16 refused; NULL while pending); received, with what changed (old and new values) and the answer';
REVOKE ALL ON update_status FROM PUBLIC;
GRANT SELECT ON update_status TO ioffice_app, ioffice_admin, ioffice_reader;

-- Replacements of the documents the caller may see: an outgoing document
-- replacing an issued one, per external recipient of the replaced one
-- (its answer: 15, 16 with the reason; NULL while none came); a received
-- copy superseding an earlier one (replaced NULL: never received here,
-- answered 16) — the superseded copies a clerk lists.
CREATE VIEW replacement_status AS
SELECT r.document_id AS document, r.replaced_id AS replaced, 'sent'::text AS direction,
       o.recipient AS party, od.identifier AS replaced_document_id, r.reason, r.requested_at,
       r.applied_at,
       CASE a.code WHEN '15' THEN 'accepted' WHEN '16' THEN 'refused' END AS answer,
       a.description AS answer_reason
FROM ioffice.document_replacement r
JOIN ioffice.document od ON od.id = r.replaced_id
LEFT JOIN ioffice.edxml_outgoing o ON o.document_id = r.replaced_id AND o.kind = 'document'
LEFT JOIN LATERAL (SELECT x.code, x.description FROM ioffice.edxml_status x
                   WHERE x.document_id = r.document_id AND x.direction = 'received'
                     AND x.party_organ_id = o.recipient AND x.code IN ('15', '16')
                   ORDER BY x.id DESC LIMIT 1) a ON true
WHERE r.direction = 'sent' AND ioffice.can_see(r.document_id)
UNION ALL
SELECT r.document_id, r.replaced_id, 'received', r.party,
       coalesce(r.replaced_edxml_document_id, od.identifier), r.reason, r.requested_at,
       r.applied_at, CASE WHEN r.applied_at IS NULL THEN 'refused' ELSE 'accepted' END,
       r.answer_reason
FROM ioffice.document_replacement r
LEFT JOIN ioffice.document od ON od.id = r.replaced_id
WHERE r.direction = 'received' AND ioffice.can_see(r.document_id);
COMMENT ON VIEW replacement_status IS
  'Replacements (Decree 30 art. 18.3; edXML BussinessDocType 3) of the documents the caller may see: sent, per external recipient of the replaced document with its answer (15, 16); received, the copy superseded (replaced; NULL: never received, answered 16)';
REVOKE ALL ON replacement_status FROM PUBLIC;
GRANT SELECT ON replacement_status TO ioffice_app, ioffice_admin, ioffice_reader;

COMMENT ON FUNCTION edxml_receive(xml) IS
  'Files a received edXML package (signature verified against the trust anchors) into the addressed agency''s incoming queue and records the status 01 to send back; the same package twice gives the same document. A recall package (BussinessDocType 1) marks the copy received under its DocumentId as recall-requested (13) for answer_recall() and gives its id (NULL, answered 16 at once: never received here); an update (2) is applied to that copy (15; 16 when none) and gives its id; a replacement (3) is filed as a new document that supersedes the copy it names (15; 16 when none)';
