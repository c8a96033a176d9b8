
-- ---------------------------------------------------------------------------
-- Recalling an issued document (Decree 30 art. 18.4; Appendix VI, III.8;
-- issue 14 item 5) and the status 05 (in progress).
--
-- The sender: recall(doc, reason) freezes the outgoing document (III.8a:
-- its row no longer changes at all; its files were frozen at issue) and
-- tells every recipient: an agency of this database directly (its received
-- copy is asked, as a recall package would ask it), an external one by a
-- recall package (BussinessDocType 1, BussinessDocReason, the same
-- DocumentId) queued to the axis as the document package was.
--
-- The receiver: the received copy is marked as recall-requested (status 13
-- recorded for it); its clerk answers with answer_recall(): accepted, the
-- copy's files are destroyed (III.8b, art. 18.4b: "hủy bỏ văn bản điện tử
-- bị thu hồi") and it is marked recalled, 15 goes back; refused, with a
-- reason, 16 goes back.  A recall of a document never received here is
-- answered 16 at once, with that reason: 16 is the standard's answer to a
-- recall (the sender waits for 15 or 16 on its recall), and the document
-- it names is not refused (02 answers a package whose document we refuse
-- to file; this one was never filed, nor sent to us as far as we know).
--
-- How a received copy is destroyed, with files frozen by triggers: a file's
-- bytes never change (extension/files.c, _file_frozen), except in one
-- narrow path, is_recall_erasure(): an UPDATE that empties the content and
-- sets erased_at, of a file of an incoming document marked recalled whose
-- recall row (document_recall, written by the engine alone) says accepted.
-- Only _recall_destroy() takes it, from answer_recall().  The record stays
-- (III.8c): the document's row (number, sender, dates, abstract), each
-- file's name, hash and size, the recall (reason, who asked and answered,
-- when) and the audit trail of each step (recall sent, recall received,
-- accepted or refused, answers received back).
-- ---------------------------------------------------------------------------

ALTER TABLE document ADD COLUMN recalled_at timestamptz;
COMMENT ON COLUMN document.recalled_at IS
  'When the document was recalled: an outgoing one by recall() (it no longer changes), a received copy when its clerk accepted the sender''s recall (its files destroyed)';
ALTER TABLE file ADD COLUMN erased_at timestamptz;
COMMENT ON COLUMN file.erased_at IS
  'When the file''s bytes were destroyed because its received document was recalled (the recall accepted); name, hash and size stay as the record';

-- One row per recall: 'sent' for an outgoing document recalled here;
-- 'received' for a recall asked of a received copy (document_id NULL: a
-- recall of a document never received here), from an external sender
-- (party, edxml_document_id: a package received twice is handled once) or
-- from an agency of this database (source_recall_id, the sender's row).
CREATE TABLE document_recall (
    id               bigserial PRIMARY KEY,
    direction        text NOT NULL CHECK (direction IN ('sent', 'received')),
    document_id      bigint REFERENCES document,
    agency_id        bigint NOT NULL REFERENCES unit,
    party            text CHECK (length(party) BETWEEN 1 AND 13),
    edxml_document_id text CHECK (length(edxml_document_id) BETWEEN 1 AND 100),
    -- no foreign key to this table (see unit.parent_id: a data-only dump
    -- of a self-referencing table warns): only recall() writes it
    source_recall_id bigint,
    reason           text NOT NULL CHECK (length(reason) BETWEEN 1 AND 2000),
    requested_at     timestamptz NOT NULL DEFAULT now(),
    requested_by     bigint REFERENCES person,
    answer           text CHECK (answer IN ('accepted', 'refused')),
    answer_reason    text CHECK (length(answer_reason) <= 2000),
    answered_at      timestamptz,
    answered_by      bigint REFERENCES person,
    CHECK ((answer IS NULL) = (answered_at IS NULL)),
    CHECK (direction = 'received' OR (answer IS NULL AND document_id IS NOT NULL)),
    CHECK (answer IS DISTINCT FROM 'refused' OR answer_reason IS NOT NULL)
);
CREATE UNIQUE INDEX document_recall_sent_key ON document_recall (document_id)
    WHERE direction = 'sent';
CREATE UNIQUE INDEX document_recall_received_key ON document_recall (document_id)
    WHERE direction = 'received' AND document_id IS NOT NULL;
CREATE UNIQUE INDEX document_recall_package_key ON document_recall (agency_id, party, edxml_document_id)
    WHERE direction = 'received' AND party IS NOT NULL;
CREATE INDEX document_recall_source_idx ON document_recall (source_recall_id);
COMMENT ON TABLE document_recall IS
  'Recalls (Decree 30 art. 18.4): of outgoing documents issued here (sent), and asked of received copies (received) with their answer (accepted: files destroyed, 15; refused with a reason, 16)';
SELECT pg_catalog.pg_extension_config_dump('document_recall', '');
SELECT pg_catalog.pg_extension_config_dump('document_recall_id_seq', '');
REVOKE ALL ON document_recall FROM PUBLIC;
GRANT SELECT ON document_recall TO ioffice_admin;

-- recall packages go to the axis as document packages do
ALTER TABLE edxml_outgoing DROP CONSTRAINT edxml_outgoing_kind_check;
ALTER TABLE edxml_outgoing ADD CONSTRAINT edxml_outgoing_kind_check
    CHECK (kind IN ('document', 'status', 'recall'));
ALTER TABLE edxml_outgoing DROP CONSTRAINT edxml_outgoing_check1;
ALTER TABLE edxml_outgoing ADD CONSTRAINT edxml_outgoing_check1
    CHECK ((kind = 'status') = (code IS NOT NULL));
CREATE UNIQUE INDEX edxml_outgoing_recall_key ON edxml_outgoing (document_id, recipient)
    WHERE kind = 'recall';
COMMENT ON COLUMN edxml_outgoing.kind IS
  'document: the package of an issued document; recall: its recall package (BussinessDocType 1, the reason in description); status: a status package (code)';

-- A recalled document's row no longer changes, whoever writes it (III.8a:
-- the outgoing document and its metadata frozen; a received copy recalled
-- is a record of what was destroyed).
CREATE FUNCTION _document_recalled() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF ioffice._restoring_dump() THEN
        RETURN NEW;
    END IF;
    IF (to_jsonb(NEW) - 'updated_at') IS DISTINCT FROM (to_jsonb(OLD) - 'updated_at') THEN
        RAISE EXCEPTION 'document % was recalled: it can no longer change', OLD.id
            USING ERRCODE = '55000',
                  DETAIL = 'A recalled document and its metadata are frozen (Decree 30, Appendix VI, III.8).';
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION _document_recalled() FROM PUBLIC;
CREATE TRIGGER recalled_frozen BEFORE UPDATE ON document
    FOR EACH ROW WHEN (OLD.recalled_at IS NOT NULL) EXECUTE FUNCTION _document_recalled();

-- Recalls an issued outgoing document (Decree 30 art. 18.4): the issuing
-- agency's clerk, its signer, or a leader of the agency, with a reason.
-- The document is frozen (trigger recalled_frozen; its files are frozen
-- since it was issued, a final state); each received copy in this database
-- is asked as a recall package would ask it; each external recipient the
-- document package went to (or was queued for: one not sent yet is not
-- sent any more) gets a recall package.  The audit trail records it.
CREATE FUNCTION recall(doc bigint, reason text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me bigint := ioffice.actor();
    v_reason text := btrim(recall.reason);
    d record;
    v_recall bigint;
    v_copy record;
    v_external int;
    v_internal int := 0;
BEGIN
    PERFORM ioffice._require_document(doc);
    SELECT * INTO d FROM ioffice.document WHERE id = doc FOR UPDATE;
    IF NOT (d.signer_id IS NOT DISTINCT FROM v_me
            OR EXISTS (SELECT 1 FROM ioffice.person_role r
                       WHERE r.person_id = v_me AND r.unit_id = d.agency_id
                         AND r.role IN ('clerk', 'leader', 'deputy'))) THEN
        RAISE EXCEPTION 'only a clerk or a leader of the issuing agency, or the signer, recalls document %', doc
            USING ERRCODE = '42501';
    END IF;
    IF v_reason IS NULL OR v_reason = '' THEN
        RAISE EXCEPTION 'a recall needs its reason' USING ERRCODE = '22023';
    END IF;
    IF length(v_reason) > 2000 THEN
        RAISE EXCEPTION 'the reason of a recall has at most 2000 characters' USING ERRCODE = '22023';
    END IF;
    IF d.direction <> 'outgoing' OR d.issued_at IS NULL OR d.number IS NULL THEN
        RAISE EXCEPTION 'document % is not an issued outgoing document', doc
            USING ERRCODE = '55000';
    END IF;
    IF d.recalled_at IS NOT NULL THEN
        RAISE EXCEPTION 'document % was recalled already', doc USING ERRCODE = '55000';
    END IF;

    PERFORM ioffice._engine_enter();
    UPDATE ioffice.document SET recalled_at = now(), updated_at = now() WHERE id = doc;
    INSERT INTO ioffice.document_recall (direction, document_id, agency_id, reason, requested_by)
    VALUES ('sent', doc, d.agency_id, v_reason, v_me)
    RETURNING id INTO v_recall;
    -- recipients in this database: their copies asked directly
    FOR v_copy IN SELECT c.id, c.agency_id FROM ioffice.document c
                  WHERE c.source_document_id = doc AND c.direction = 'incoming' ORDER BY c.id LOOP
        INSERT INTO ioffice.document_recall (direction, document_id, agency_id, source_recall_id,
                                             reason)
        VALUES ('received', v_copy.id, v_copy.agency_id, v_recall, v_reason);
        PERFORM ioffice._audit('document', v_copy.id, 'recall_received', NULL, NULL,
                               jsonb_build_object('from_document', doc, 'reason', v_reason));
        v_internal := v_internal + 1;
    END LOOP;
    -- a document package not sent yet is sent no more; the recall goes to
    -- every external recipient all the same (one whose delivery failed may
    -- have had it: it answers 16 if it has nothing)
    UPDATE ioffice.edxml_outgoing SET state = 'dead', last_error = 'recalled before it was sent'
    WHERE document_id = doc AND kind = 'document' AND state = 'queued';
    INSERT INTO ioffice.edxml_outgoing (agency_id, document_id, recipient, kind, description,
                                        edxml_document_id)
    SELECT d.agency_id, doc, o.recipient, 'recall', v_reason, d.identifier
    FROM ioffice.edxml_outgoing o
    WHERE o.document_id = doc AND o.kind = 'document'
    ON CONFLICT (document_id, recipient) WHERE kind = 'recall' DO NOTHING;
    GET DIAGNOSTICS v_external = ROW_COUNT;
    PERFORM ioffice._audit('document', doc, 'recall', d.state, d.state,
                           jsonb_build_object('reason', v_reason, 'internal', v_internal,
                                              'external', v_external));
    PERFORM ioffice._engine_leave();
    IF v_external > 0 THEN
        PERFORM ioffice._wake_worker();
    END IF;
END
$$;
COMMENT ON FUNCTION recall(bigint, text) IS
  'Recalls an issued outgoing document (Decree 30 art. 18.4), with its reason: freezes it and tells its recipients (copies in this database directly, external agencies by a recall package); for its agency''s clerks and leaders and its signer';
REVOKE ALL ON FUNCTION recall(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION recall(bigint, text) TO ioffice_app, ioffice_admin;

-- A received copy's files destroyed, its row marked recalled, its open
-- tasks closed: answer_recall()'s acceptance, after the recall row says
-- accepted (the one path extension/files.c lets empty a file's bytes).
-- The certified copies made here of it (copy_of, and copies of those) go
-- the same way: a copy has the legal value of the original (Decree 30
-- art. 26), so a copy kept would keep the recalled document alive against
-- art. 18.4b; each keeps its row, number and files' hashes as the record,
-- its pending seals are dropped.
CREATE FUNCTION _recall_destroy(doc bigint, actor bigint) RETURNS int
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n int;
    c bigint;
    v_copies bigint[];
BEGIN
    UPDATE ioffice.document SET recalled_at = now(), updated_at = now()
    WHERE id = doc AND direction = 'incoming' AND recalled_at IS NULL;
    WITH RECURSIVE down(id) AS (
        SELECT d.id FROM ioffice.document d WHERE d.copy_of = doc
        UNION
        SELECT d.id FROM ioffice.document d JOIN down ON d.copy_of = down.id)
    SELECT coalesce(array_agg(id ORDER BY id), '{}') INTO v_copies FROM down;
    UPDATE ioffice.document SET recalled_at = now(), updated_at = now()
    WHERE id = ANY (v_copies) AND recalled_at IS NULL;
    UPDATE ioffice.signature SET status = 'failed', reason = 'the copied document was recalled'
    WHERE document_id = ANY (v_copies) AND status = 'pending';
    UPDATE ioffice.file SET content = '\x'::bytea, erased_at = now(),
           removed_at = coalesce(removed_at, now()), removed_by = coalesce(removed_by, actor)
    WHERE (document_id = doc OR document_id = ANY (v_copies)) AND erased_at IS NULL;
    GET DIAGNOSTICS n = ROW_COUNT;
    DELETE FROM ioffice.search_text t USING ioffice.file f
    WHERE (f.document_id = doc OR f.document_id = ANY (v_copies)) AND t.file_id = f.id;
    UPDATE ioffice.task SET status = 'done', processed_at = now(), processed_by = actor,
           closed_by_action = 'recalled'
    WHERE document_id = doc AND status = 'open';
    FOREACH c IN ARRAY v_copies LOOP
        PERFORM ioffice._audit('document', c, 'recall_destroy_copy', NULL, NULL,
                               jsonb_build_object('recalled_document', doc));
    END LOOP;
    RETURN n;
END
$$;
REVOKE ALL ON FUNCTION _recall_destroy(bigint, bigint) FROM PUBLIC;

-- The receiving clerk's answer to the sender's recall of a received copy:
-- accept (the copy's files destroyed, the copy marked recalled; 15 back)
-- or refuse with a reason (16 back).  For a copy from the axis the status
-- package is queued; for a copy from an agency of this database the
-- sender's side reads the answer in recall_status.
CREATE FUNCTION answer_recall(doc bigint, accept boolean, reason text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me bigint := ioffice.actor();
    v_reason text := nullif(btrim(answer_recall.reason), '');
    d record;
    r record;
    v_files int := 0;
    v_source bigint;
BEGIN
    PERFORM ioffice._require_document(doc);
    SELECT * INTO d FROM ioffice.document WHERE id = doc FOR UPDATE;
    IF NOT EXISTS (SELECT 1 FROM ioffice.person_role p
                   WHERE p.person_id = v_me AND p.role = 'clerk' AND p.unit_id = d.agency_id) THEN
        RAISE EXCEPTION 'only a clerk of the receiving agency answers the recall of document %', doc
            USING ERRCODE = '42501';
    END IF;
    IF accept IS NULL THEN
        RAISE EXCEPTION 'accept or refuse: accept must be true or false' USING ERRCODE = '22023';
    END IF;
    IF NOT accept AND v_reason IS NULL THEN
        RAISE EXCEPTION 'a recall is refused with a reason' USING ERRCODE = '22023';
    END IF;
    IF length(v_reason) > 2000 THEN
        RAISE EXCEPTION 'the reason has at most 2000 characters' USING ERRCODE = '22023';
    END IF;
    SELECT * INTO r FROM ioffice.document_recall x
    WHERE x.document_id = doc AND x.direction = 'received' FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'document % has no recall to answer', doc USING ERRCODE = '55000';
    END IF;
    IF r.answer IS NOT NULL THEN
        RAISE EXCEPTION 'the recall of document % was answered already (%)', doc, r.answer
            USING ERRCODE = '55000';
    END IF;

    PERFORM ioffice._engine_enter();
    UPDATE ioffice.document_recall
    SET answer = CASE WHEN accept THEN 'accepted' ELSE 'refused' END, answer_reason = v_reason,
        answered_at = now(), answered_by = v_me
    WHERE id = r.id;
    IF accept THEN
        v_files := ioffice._recall_destroy(doc, v_me);
    END IF;
    -- the sender of a package from the axis is answered 15 or 16
    INSERT INTO ioffice.edxml_status (document_id, party_organ_id, edxml_document_id, direction,
                                      code, description)
    SELECT doc, r.party, r.edxml_document_id, 'sent', CASE WHEN accept THEN '15' ELSE '16' END,
           coalesce(v_reason, CASE WHEN accept THEN 'Đồng ý thu hồi, đã hủy văn bản'
                                   ELSE 'Từ chối thu hồi' END)
    WHERE r.party IS NOT NULL;
    PERFORM ioffice._audit('document', doc, CASE WHEN accept THEN 'recall_accept' ELSE 'recall_refuse' END,
                           d.state, d.state,
                           jsonb_build_object('reason', v_reason, 'files_destroyed', v_files,
                                              'recall_reason', r.reason));
    -- a sender in this database: its document's trail records the answer
    SELECT s.document_id INTO v_source FROM ioffice.document_recall s WHERE s.id = r.source_recall_id;
    IF v_source IS NOT NULL THEN
        PERFORM ioffice._audit('document', v_source,
                               CASE WHEN accept THEN 'recall_accepted' ELSE 'recall_refused' END,
                               NULL, NULL,
                               jsonb_build_object('recipient', d.agency_id, 'copy', doc,
                                                  'reason', v_reason));
    END IF;
    PERFORM ioffice._engine_leave();
END
$$;
COMMENT ON FUNCTION answer_recall(bigint, boolean, text) IS
  'The receiving clerk''s answer to the sender''s recall of a received document: accept (its files are destroyed, it is marked recalled; status 15 back) or refuse with a reason (status 16 back)';
REVOKE ALL ON FUNCTION answer_recall(bigint, boolean, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION answer_recall(bigint, boolean, text) TO ioffice_app, ioffice_admin;

-- A recall package (BussinessDocType 1) read and verified, for the agency
-- it is addressed to: the copy received from that sender under that
-- DocumentId is marked recall-requested, 13 recorded for it, for its clerk
-- to answer; none received: answered 16 at once.  Twice: handled once (the
-- row's key).  Returns the received copy, or NULL.
CREATE FUNCTION _edxml_file_recall(p jsonb, package text, agency bigint, actor bigint) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_sender text := p->'from'->>'organ_id';
    v_docid text := p->>'document_id';
    v_reason text := pg_catalog.left(coalesce(nullif(btrim(p->>'bussiness_doc_reason'), ''),
                                              'Thu hồi văn bản'), 2000);
    v_doc bigint;
    v_key bigint;
BEGIN
    SELECT r.document_id INTO v_doc FROM ioffice.edxml_received r
    WHERE r.agency_id = agency AND r.sender_organ_id = v_sender AND r.edxml_document_id = v_docid;
    PERFORM ioffice._engine_enter();
    INSERT INTO ioffice.document_recall (direction, document_id, agency_id, party,
                                         edxml_document_id, reason, answer, answer_reason,
                                         answered_at)
    VALUES ('received', v_doc, agency, v_sender, v_docid, v_reason,
            CASE WHEN v_doc IS NULL THEN 'refused' END,
            CASE WHEN v_doc IS NULL THEN 'Không nhận được văn bản này: không có gì để thu hồi' END,
            CASE WHEN v_doc IS NULL THEN now() END)
    ON CONFLICT DO NOTHING
    RETURNING id INTO v_key;
    IF v_key IS NULL THEN
        PERFORM ioffice._engine_leave();
        RETURN v_doc;
    END IF;
    IF v_doc IS NULL THEN
        INSERT INTO ioffice.edxml_outgoing (agency_id, recipient, kind, code, description,
                                            edxml_document_id)
        VALUES (agency, v_sender, 'status', '16',
                'Không nhận được văn bản này: không có gì để thu hồi', v_docid);
        PERFORM ioffice._wake_worker();
    ELSE
        INSERT INTO ioffice.edxml_status (document_id, party_organ_id, edxml_document_id,
                                          direction, code, description)
        VALUES (v_doc, v_sender, v_docid, 'received', '13', v_reason);
        PERFORM ioffice._audit('document', v_doc, 'recall_received', NULL, NULL,
                               jsonb_build_object('sender', v_sender, 'document_id', v_docid,
                                                  'reason', v_reason,
                                                  'signer', p->'signature'->>'subject'));
    END IF;
    PERFORM ioffice._engine_leave();
    RETURN v_doc;
END
$$;
REVOKE ALL ON FUNCTION _edxml_file_recall(jsonb, text, bigint, bigint) FROM PUBLIC;

-- A recall's answer received back from an external recipient (15, 16)
-- goes on the recalled document's audit trail; so does the answer to an
-- update or a replacement (99_replace_update.sql).
CREATE FUNCTION _edxml_recall_answered() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_what text := 'update';
BEGIN
    IF EXISTS (SELECT 1 FROM ioffice.document_recall r
               WHERE r.document_id = NEW.document_id AND r.direction = 'sent') THEN
        v_what := 'recall';
    ELSIF NOT EXISTS (SELECT 1 FROM ioffice.edxml_outgoing o
                      WHERE o.document_id = NEW.document_id AND o.kind = 'update'
                        AND o.recipient = NEW.party_organ_id)
          AND EXISTS (SELECT 1 FROM ioffice.document_replacement r
                      WHERE r.document_id = NEW.document_id AND r.direction = 'sent') THEN
        v_what := 'replace';
    END IF;
    PERFORM ioffice._audit('document', NEW.document_id,
                           v_what || CASE NEW.code WHEN '15' THEN '_accepted' ELSE '_refused' END,
                           NULL, NULL,
                           jsonb_build_object('recipient', NEW.party_organ_id,
                                              'reason', NEW.description));
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION _edxml_recall_answered() FROM PUBLIC;
CREATE TRIGGER edxml_recall_answered AFTER INSERT ON edxml_status
    FOR EACH ROW WHEN (NEW.direction = 'received' AND NEW.code IN ('15', '16'))
    EXECUTE FUNCTION _edxml_recall_answered();

-- Status 05 (in progress), once: at the first step taken on the document
-- once it is in progress.  The leader's assignment moves it to in_progress
-- and answers 04 (assigned); the first act of its handlers there (a
-- cooperating unit's "cooperated", the lead's "complete", or a DBA's rule
-- from in_progress) is the first evidence that it is being handled.  Named
-- to fire before edxml_answer_step: a "complete" answers 05, then 06.
CREATE FUNCTION _edxml_answer_progress() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO ioffice.edxml_status (document_id, party_organ_id, edxml_document_id, direction,
                                      code, description)
    SELECT NEW.id, r.sender_organ_id, r.edxml_document_id, 'sent', '05', 'Đang xử lý'
    FROM ioffice.edxml_received r
    WHERE r.document_id = NEW.id
      AND NOT EXISTS (SELECT 1 FROM ioffice.edxml_status s
                      WHERE s.document_id = NEW.id AND s.direction = 'sent' AND s.code = '05'
                        AND s.party_organ_id = r.sender_organ_id);
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION _edxml_answer_progress() FROM PUBLIC;
CREATE TRIGGER edxml_answer_progress AFTER UPDATE OF state ON document
    FOR EACH ROW WHEN (NEW.direction = 'incoming' AND OLD.state = 'in_progress')
    EXECUTE FUNCTION _edxml_answer_progress();

-- exchange_status, now with recall packages (code 13, the reason in
-- description, package 'recall').
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
       CASE o.kind WHEN 'recall' THEN '13' END,
       CASE o.kind WHEN 'recall' THEN o.description ELSE 'Văn bản điện tử' END, o.created_at,
       o.sent_at, o.kind, o.state, o.last_error
FROM ioffice.edxml_outgoing o JOIN ioffice.document d ON d.id = o.document_id
WHERE o.kind IN ('document', 'recall') AND ioffice.can_see(o.document_id);
COMMENT ON VIEW exchange_status IS
  'edXML exchange per document and external agency: the document packages sent (code NULL), recall packages (13, with the reason) and the status codes (01 arrived, 02 refused, 03 registered, 04 assigned, 05 in progress, 06 finished, 13 recall asked, 15 recall accepted, 16 refused) sent back and received, with times and delivery (queued, sent, dead); only documents the caller may see';

-- What the clerk sees of recalls, for the documents the caller may see:
-- an outgoing document recalled, one row per recipient (an agency of this
-- database by its copy's answer; an external one by the 15 or 16 it sent
-- back: answer NULL while none came); a received copy asked to be
-- recalled, one row with its answer (NULL: pending, for its clerk).  An
-- agency of this database sends no status package: its row says what a
-- 15 or 16 would (its code as party, an acceptance in the 15's words).
CREATE VIEW recall_status AS
SELECT s.document_id AS document, 'sent'::text AS direction, u.name AS recipient,
       u.code AS party, c.document_id AS copy, s.reason, s.requested_at,
       c.answer,
       coalesce(c.answer_reason,
                CASE c.answer WHEN 'accepted' THEN 'Đồng ý thu hồi, đã hủy văn bản' END) AS answer_reason,
       c.answered_at
FROM ioffice.document_recall s
JOIN ioffice.document_recall c ON c.source_recall_id = s.id
JOIN ioffice.unit u ON u.id = c.agency_id
WHERE s.direction = 'sent' AND ioffice.can_see(s.document_id)
UNION ALL
SELECT s.document_id, 'sent', coalesce(u.name, o.recipient), o.recipient, NULL, s.reason,
       s.requested_at,
       CASE a.code WHEN '15' THEN 'accepted' WHEN '16' THEN 'refused' END,
       a.description, a.recorded_at
FROM ioffice.document_recall s
JOIN ioffice.edxml_outgoing o ON o.document_id = s.document_id AND o.kind = 'recall'
LEFT JOIN ioffice.unit u ON u.code = o.recipient AND u.kind = 'agency'
LEFT JOIN LATERAL (SELECT x.code, x.description, x.recorded_at FROM ioffice.edxml_status x
                   WHERE x.document_id = s.document_id AND x.direction = 'received'
                     AND x.party_organ_id = o.recipient AND x.code IN ('15', '16')
                     AND x.recorded_at >= s.requested_at
                   ORDER BY x.id DESC LIMIT 1) a ON true
WHERE s.direction = 'sent' AND ioffice.can_see(s.document_id)
UNION ALL
SELECT r.document_id, 'received', NULL, r.party, NULL, r.reason, r.requested_at,
       r.answer, r.answer_reason, r.answered_at
FROM ioffice.document_recall r
WHERE r.direction = 'received' AND r.document_id IS NOT NULL AND ioffice.can_see(r.document_id);
COMMENT ON VIEW recall_status IS
  'Recalls (Decree 30 art. 18.4) of the documents the caller may see: an outgoing document recalled, per recipient with its answer (accepted, refused with the reason; NULL while pending); a received document asked to be recalled, with its answer';
REVOKE ALL ON recall_status FROM PUBLIC;
GRANT SELECT ON recall_status TO ioffice_app, ioffice_admin, ioffice_reader;

COMMENT ON FUNCTION edxml_receive(xml) IS
  'Files a received edXML package (signature verified against the trust anchors) into the addressed agency''s incoming queue and records the status 01 to send back; the same package twice gives the same document. A recall package (BussinessDocType 1) marks the copy received under its DocumentId as recall-requested (13) for answer_recall() and gives its id (NULL, answered 16 at once: never received here)';
