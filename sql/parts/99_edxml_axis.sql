
-- ---------------------------------------------------------------------------
-- edXML over the interconnection axis: sending, receiving, statuses back
-- (issue 14 items 2, 3, 4, 6; workers/edxml_exchange.c)
-- ---------------------------------------------------------------------------

-- The package of an issued document for one external recipient, for
-- edxml_build() (a clerk's call: StaffInfo is the clerk) and for the worker
-- (clerk NULL: the system sends it).  Unsigned.  Of business type business
-- (0 new, 1 recall, 2 update, 3 replace; EDXML.md): a recall carries the
-- document's header and DocumentId, its reason in BussinessDocReason, and no
-- attachment; an update (update_id: its document_update row, 99_replace_update.sql)
-- the same, with BussinessDocumentInfo (DocumentInfo 1 when the due date
-- changed, DocumentReceiver 1 and ReceiverList when receivers were added or
-- removed); a replacement is the new document's package, its files
-- included, with ReplacementInfoList naming the DocumentId it replaces.
-- inline_files false (the worker): each ContentTransferEncoded is left
-- empty, for the edXML helper to fill with the base64 of the file (SQL's
-- base64 and XML escaping of a large text cost more than the package).
CREATE FUNCTION _edxml_package(doc bigint, recipient text, clerk bigint, business int,
                               reason text, update_id bigint,
                               inline_files boolean DEFAULT true) RETURNS xml
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me bigint := clerk;
    d record;
    v_agency record;
    v_parent text;
    v_to_name text;
    v_clerk record;
    v_number text;
    v_notation text;
    v_priority text;
    v_files xml;
    v_manifest xml;
    v_places xml;
    v_changes jsonb;
    v_due date;
    v_extra xml;
    v_ns constant text := 'http://www.mic.gov.vn/TBT/QCVN_102_2016';
BEGIN
    IF business IS NULL OR business NOT IN (0, 1, 2, 3) THEN
        RAISE EXCEPTION 'BussinessDocType % is not built here', business USING ERRCODE = '22023';
    END IF;
    SELECT * INTO d FROM ioffice.document WHERE id = doc;
    IF d.direction IS DISTINCT FROM 'outgoing' OR d.issued_at IS NULL OR d.number IS NULL THEN
        RAISE EXCEPTION 'document % is not an issued outgoing document', doc
            USING ERRCODE = '55000';
    END IF;
    SELECT u.code, u.name, u.parent_id INTO v_agency FROM ioffice.unit u WHERE u.id = d.agency_id;
    v_due := d.due_date;
    IF business = 2 THEN
        SELECT x.changes INTO v_changes FROM ioffice.document_update x
        WHERE x.id = update_id AND x.document_id = doc AND x.direction = 'sent';
        IF NOT FOUND THEN
            RAISE EXCEPTION 'document % has no update %', doc, update_id USING ERRCODE = '42704';
        END IF;
        IF v_changes ? 'due_date' THEN
            v_due := (v_changes->'due_date'->>'new')::date;
        END IF;
        v_extra := xmlelement(name "BussinessDocumentInfo",
            xmlelement(name "DocumentInfo", CASE WHEN v_changes ? 'due_date' THEN '1' ELSE '0' END),
            xmlelement(name "DocumentReceiver", CASE WHEN v_changes ? 'receivers' THEN '1' ELSE '0' END),
            xmlelement(name "ReceiverList",
                (SELECT xmlagg(xmlelement(name "Receiver",
                                   xmlelement(name "ReceiverType", e->>'type'),
                                   xmlelement(name "OrganId", e->>'organ_id')) ORDER BY o)
                 FROM jsonb_array_elements(v_changes->'receivers') WITH ORDINALITY AS r(e, o))));
    ELSIF business = 3 THEN
        SELECT xmlagg(xmlelement(name "ReplacementInfo",
                          xmlelement(name "DocumentId", od.identifier),
                          xmlelement(name "OrganIdList", xmlelement(name "OrganId", recipient)))
                      ORDER BY r.id)
          INTO v_extra
        FROM ioffice.document_replacement r JOIN ioffice.document od ON od.id = r.replaced_id
        WHERE r.document_id = doc AND r.direction = 'sent';
        IF v_extra IS NULL THEN
            RAISE EXCEPTION 'document % replaces no document', doc USING ERRCODE = '55000';
        END IF;
        v_extra := xmlelement(name "ReplacementInfoList", v_extra);
    END IF;
    IF v_agency.code IS NULL THEN
        RAISE EXCEPTION 'edXML field From/OrganId: the issuing agency has no agency code'
            USING ERRCODE = '22023',
                  HINT = 'Give the agency its QCVN 102:2016 code (unit.code).';
    END IF;
    SELECT a.name INTO v_parent FROM ioffice.unit a
    WHERE a.id = (SELECT p.agency_id FROM ioffice.unit p WHERE p.id = v_agency.parent_id);
    SELECT u.name INTO v_to_name FROM ioffice.unit u WHERE u.code = recipient AND u.kind = 'agency';
    SELECT p.full_name, p.phone, p.email, un.name AS unit_name INTO v_clerk
    FROM ioffice.person p JOIN ioffice.unit un ON un.id = p.unit_id WHERE p.id = v_me;
    -- the identifier's "number/notation" (01/UBND-VP): the number as it
    -- writes it, and the notation after it
    v_number := split_part(split_part(d.identifier, ',', 3), '/', 1);
    v_notation := substr(split_part(d.identifier, ',', 3), length(v_number) + 2);
    v_priority := CASE d.urgency WHEN 'normal' THEN '0' WHEN 'urgent' THEN '1'
                                 WHEN 'very_urgent' THEN '2' WHEN 'flash' THEN '3'
                                 ELSE '4' END;

    PERFORM ioffice._edxml_limit('From/OrganId', v_agency.code, 13),
            ioffice._edxml_limit('To/OrganId', recipient, 13),
            ioffice._edxml_limit('Code/CodeNumber', v_number, 11),
            ioffice._edxml_limit('Code/CodeNotation', v_notation, 30),
            ioffice._edxml_limit('Subject', d.abstract, 500),
            ioffice._edxml_limit('DocumentId', d.identifier, 100);

    SELECT xmlagg(xmlelement(name "Reference",
                      xmlelement(name "ContentId", 'cid:' || f.n),
                      xmlelement(name "ContentType", f.content_type),
                      xmlelement(name "Description", f.name),
                      xmlelement(name "AttachmentName", f.name)) ORDER BY f.n),
           xmlagg(xmlelement(name "Attachment",
                      xmlelement(name "ContentId", 'cid:' || f.n),
                      xmlelement(name "AttachmentName", f.name),
                      xmlelement(name "Description", f.name),
                      xmlelement(name "ContentType", f.content_type),
                      xmlelement(name "ContentTransferEncoded",
                                 CASE WHEN inline_files THEN encode(f.content, 'base64') ELSE '' END))
                  ORDER BY f.n)
      INTO v_manifest, v_files
    FROM (SELECT row_number() OVER (ORDER BY fl.id) AS n, fl.name, fl.content,
                 CASE fl.kind WHEN 'pdf' THEN 'application/pdf'
                      WHEN 'docx' THEN 'application/vnd.openxmlformats-officedocument.wordprocessingml.document'
                      WHEN 'xlsx' THEN 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet'
                      WHEN 'doc' THEN 'application/msword'
                      WHEN 'xls' THEN 'application/vnd.ms-excel'
                      WHEN 'zip' THEN 'application/zip'
                      ELSE 'application/octet-stream' END AS content_type
          FROM ioffice.file fl
          WHERE fl.document_id = doc AND fl.superseded_at IS NULL AND fl.removed_at IS NULL
            AND business IN (0, 3)) f;

    SELECT xmlagg(xmlelement(name "Place", coalesce(e->>'name', e->>'place')) ORDER BY o)
      INTO v_places
    FROM jsonb_array_elements(d.recipients) WITH ORDINALITY AS r(e, o);

    RETURN xmlelement(name "edXML", xmlattributes(v_ns AS xmlns),
        xmlelement(name "edXMLEnvelope",
            xmlelement(name "edXMLHeader",
                xmlelement(name "MessageHeader",
                    xmlelement(name "From",
                        xmlelement(name "OrganId", v_agency.code),
                        xmlelement(name "OrganizationInCharge", coalesce(v_parent, v_agency.name)),
                        xmlelement(name "OrganName", v_agency.name)),
                    xmlelement(name "To",
                        xmlelement(name "OrganId", recipient),
                        xmlforest(v_to_name AS "OrganName")),
                    xmlelement(name "Code",
                        xmlelement(name "CodeNumber", v_number),
                        xmlelement(name "CodeNotation", v_notation)),
                    xmlelement(name "PromulgationInfo",
                        xmlelement(name "Place", v_agency.name),
                        xmlelement(name "PromulgationDate", ioffice._edxml_date(d.issued_on))),
                    xmlelement(name "DocumentType",
                        xmlelement(name "Type", '1'),
                        xmlelement(name "TypeName", coalesce(d.doc_type_name, d.doc_type))),
                    xmlelement(name "Subject", d.abstract),
                    xmlelement(name "Content", d.abstract),
                    xmlelement(name "SignerInfo",
                        xmlforest((SELECT p.position FROM ioffice.person p WHERE p.id = d.signer_id)
                                      AS "Position",
                                  d.signer_name AS "FullName")),
                    xmlforest(ioffice._edxml_date(v_due) AS "DueDate"),
                    xmlelement(name "ToPlaces", v_places),
                    xmlelement(name "OtherInfo",
                        xmlelement(name "Priority", v_priority),
                        xmlforest(d.copies AS "PromulgationAmount", d.page_count AS "PageAmount")),
                    xmlelement(name "SteeringType", '1'),
                    xmlelement(name "DocumentId", d.identifier)),
                xmlelement(name "TraceHeaderList",
                    xmlelement(name "TraceHeader",
                        xmlelement(name "OrganId", v_agency.code),
                        xmlelement(name "Timestamp",
                            to_char(now() AT TIME ZONE ioffice.timezone(), 'YYYY/MM/DD HH24:MI:SS'))),
                    xmlelement(name "Bussiness",
                        xmlelement(name "DocumentId", d.identifier),
                        xmlelement(name "BussinessDocType", business::text),
                        xmlelement(name "BussinessDocReason",
                                   CASE WHEN business = 0 THEN 'Văn bản điện tử mới'
                                        ELSE pg_catalog.left(reason, 2000) END),
                        CASE WHEN business = 2 THEN v_extra END,
                        xmlelement(name "Paper", '0'),
                        xmlelement(name "StaffInfo",
                            xmlforest(v_clerk.unit_name AS "Department", v_clerk.full_name AS "Staff",
                                      v_clerk.email AS "Email", v_clerk.phone AS "Mobile")),
                        CASE WHEN business = 3 THEN v_extra END))),
            xmlelement(name "edXMLBody",
                xmlelement(name "edXMLManifest", xmlattributes('1.0' AS version), v_manifest))),
        xmlelement(name "AttachmentEncoded", v_files));
END
$$;
REVOKE ALL ON FUNCTION _edxml_package(bigint, text, bigint, int, text, bigint, boolean) FROM PUBLIC;
CREATE FUNCTION _edxml_package(doc bigint, recipient text, clerk bigint, business int,
                               reason text) RETURNS xml
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ SELECT ioffice._edxml_package(doc, recipient, clerk, business, reason, NULL) $$;
REVOKE ALL ON FUNCTION _edxml_package(bigint, text, bigint, int, text) FROM PUBLIC;
-- The document's package for recipient: a replacement (3) when the document
-- replaces one that was sent to recipient (99_replace_update.sql), else new (0).
-- inline_files as above (the worker's call gives false).
CREATE FUNCTION _edxml_package(doc bigint, recipient text, clerk bigint,
                               inline_files boolean DEFAULT true) RETURNS xml
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_reason text;
BEGIN
    SELECT r.reason INTO v_reason
    FROM ioffice.document_replacement r
    JOIN ioffice.edxml_outgoing o ON o.document_id = r.replaced_id AND o.kind = 'document'
                                 AND o.recipient = _edxml_package.recipient
    WHERE r.document_id = doc AND r.direction = 'sent' AND r.applied_at IS NOT NULL
    LIMIT 1;
    RETURN ioffice._edxml_package(doc, recipient, clerk, CASE WHEN FOUND THEN 3 ELSE 0 END,
                                  v_reason, NULL, inline_files);
END
$$;
REVOKE ALL ON FUNCTION _edxml_package(bigint, text, bigint, boolean) FROM PUBLIC;

-- Filing a package the helper read (p), addressed to agency: for
-- _edxml_receive() (actor: the clerk) and the worker (actor NULL).  Recall
-- packages (BussinessDocType 1) go to _edxml_file_recall() (99_recall.sql),
-- update packages (2) to _edxml_file_update() (99_replace_update.sql); a
-- replacement (3) is filed as a new document, then _edxml_file_replace()
-- links it to the copy it supersedes.
-- The PDFs of a received package, as verify() checks a file (Decree 30
-- art. 21.2, the document's authenticity and integrity): every signature
-- in every PDF attachment valid (intact bytes, a trusted chain, not
-- revoked), and at least one PDF carrying one, the issued document.  A
-- refusal raises 42501 (answered 02 through the axis, naming the file and
-- why); an unknown revocation raises 55000, as for the package's seal: the
-- list missing here is not the sender's fault (the package waits on the
-- axis).
CREATE FUNCTION _edxml_check_pdfs(p jsonb, contents bytea[]) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_name text;
    v_signed int := 0;
    r record;
BEGIN
    FOR i IN 1 .. coalesce(array_length(contents, 1), 0) LOOP
        CONTINUE WHEN ioffice.file_kind(contents[i]) IS DISTINCT FROM 'pdf';
        v_name := pg_catalog.left(coalesce(p->'attachments'->(i - 1)->>'name',
                                           p->'attachments'->(i - 1)->>'description',
                                           format('attachment %s', i)), 100);
        FOR r IN SELECT s.valid, s.reason, s.subject, s.revision
                 FROM ioffice._pdf_signatures(contents[i]) s LOOP
            IF r.valid THEN
                v_signed := v_signed + 1;
                CONTINUE;
            END IF;
            IF r.reason LIKE 'revocation unknown%' THEN
                RAISE EXCEPTION 'edXML package left unfiled: the revocation of a signer of % is unknown', v_name
                    USING ERRCODE = '55000',
                          DETAIL = format('%s: %s.', coalesce(pg_catalog.left(r.subject, 200), 'a signature'), r.reason),
                          HINT = 'Register a current revocation list of the signer''s issuer with add_crl(); a package from the axis is read again at the next poll.';
            END IF;
            RAISE EXCEPTION 'edXML package refused: a signature in % is not valid: %', v_name,
                coalesce(r.reason, 'unknown')
                USING ERRCODE = '42501',
                      DETAIL = format('Signer %s, revision %s.',
                                      coalesce(pg_catalog.left(r.subject, 200), 'unknown'),
                                      coalesce(r.revision::text, '?'));
        END LOOP;
    END LOOP;
    IF v_signed = 0 THEN
        RAISE EXCEPTION 'edXML package refused: no attachment is a PDF carrying a valid digital signature'
            USING ERRCODE = '42501',
                  DETAIL = 'Decree 30 art. 21.2: an electronic document is received only when its authenticity and integrity can be checked.';
    END IF;
END
$$;
REVOKE ALL ON FUNCTION _edxml_check_pdfs(jsonb, bytea[]) FROM PUBLIC;

CREATE FUNCTION _edxml_file(p jsonb, package text, agency bigint, actor bigint) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me bigint := actor;
    v_text text := package;
    v_agency bigint := agency;
    v_sender text;
    v_docid text;
    v_key bigint;
    v_id bigint;
    v_doc_type text;
    v_urgency text;
    v_pages int;
    v_files int;
    v_contents bytea[];
BEGIN
    IF p->'signature'->>'status' <> 'valid' THEN
        RAISE EXCEPTION 'edXML package refused: its signature is %', p->'signature'->>'status'
            USING ERRCODE = '42501', DETAIL = p->'signature'->>'reason';
    END IF;
    IF p->>'bussiness_doc_type' = '1' THEN
        RETURN ioffice._edxml_file_recall(p, v_text, v_agency, v_me);
    END IF;
    IF p->>'bussiness_doc_type' = '2' THEN
        RETURN ioffice._edxml_file_update(p, v_text, v_agency, v_me);
    END IF;
    IF coalesce(p->>'bussiness_doc_type', '0') NOT IN ('0', '3') THEN
        RAISE EXCEPTION 'edXML package refused: BussinessDocType % is not one of 0 to 3',
            pg_catalog.left(p->>'bussiness_doc_type', 60)
            USING ERRCODE = '22023', DETAIL = 'Field TraceHeaderList/Bussiness/BussinessDocType.';
    END IF;
    IF p->>'bussiness_doc_type' = '3' AND coalesce(jsonb_array_length(p->'replacements'), 0) = 0 THEN
        RAISE EXCEPTION 'edXML package refused: a replacement (BussinessDocType 3) names no document it replaces'
            USING ERRCODE = '22023',
                  DETAIL = 'Field TraceHeaderList/Bussiness/ReplacementInfoList.';
    END IF;
    IF jsonb_array_length(p->'attachments') = 0 THEN
        RAISE EXCEPTION 'edXML package refused: it carries no attachment'
            USING ERRCODE = '22023', DETAIL = 'Field AttachmentEncoded.';
    END IF;
    v_sender := p->'from'->>'organ_id';
    v_docid := p->>'document_id';

    PERFORM ioffice._engine_enter();
    -- the key first: a concurrent caller with the same package waits here
    INSERT INTO ioffice.edxml_received (agency_id, sender_organ_id, edxml_document_id,
                                        package_sha256, signer_subject, received_by)
    VALUES (v_agency, v_sender, v_docid, sha256(convert_to(v_text, 'UTF8')),
            p->'signature'->>'subject', v_me)
    ON CONFLICT (agency_id, sender_organ_id, edxml_document_id) DO NOTHING
    RETURNING id INTO v_key;
    IF v_key IS NULL THEN
        SELECT r.document_id INTO v_id FROM ioffice.edxml_received r
        WHERE r.agency_id = v_agency AND r.sender_organ_id = v_sender
          AND r.edxml_document_id = v_docid;
        PERFORM ioffice._engine_leave();
        RETURN v_id;
    END IF;

    -- the document's own signatures (Decree 30 art. 21.2): the package's
    -- seal proves who sent the bytes, not that the PDFs in it are what
    -- their signers signed (_edxml_check_pdfs)
    v_contents := ARRAY(SELECT decode(a->>'data', 'base64')
                        FROM jsonb_array_elements(p->'attachments') WITH ORDINALITY AS x(a, o)
                        ORDER BY x.o);
    PERFORM ioffice._edxml_check_pdfs(p, v_contents);

    -- the same document (sender, number and symbol, year) under another
    -- DocumentId, or registered from paper already: Decree 30's duplicate
    SELECT d.id INTO v_id FROM ioffice.document d
    WHERE d.direction = 'incoming' AND d.agency_id = v_agency AND d.sender_agency_id IS NULL
      AND d.sender_name = pg_catalog.left(coalesce(p->'from'->>'organ_name', v_sender), 500)
      AND d.sender_symbol = pg_catalog.left((p->>'code_number') || '/' || (p->>'code_notation'), 100)
      AND d.sender_year = extract(year FROM to_date(p->>'promulgation_date', 'YYYY/MM/DD'));
    IF FOUND THEN
        RAISE EXCEPTION 'edXML package refused: document %/% of % was received already',
            p->>'code_number', p->>'code_notation', pg_catalog.left(v_sender, 60)
            USING ERRCODE = '23505',
                  DETAIL = format('Incoming document %s; this package''s DocumentId is %s.',
                                  v_id, pg_catalog.left(v_docid, 100));
    END IF;
    SELECT t.code INTO v_doc_type FROM ioffice.doc_type t WHERE t.name = p->>'type_name';
    v_urgency := CASE p->>'priority' WHEN '1' THEN 'urgent' WHEN '2' THEN 'very_urgent'
                                     WHEN '3' THEN 'flash' WHEN '4' THEN 'flash'
                                     ELSE 'normal' END;
    v_pages := CASE WHEN (p->>'page_amount')::bigint BETWEEN 1 AND 100000
                    THEN (p->>'page_amount')::int END;
    INSERT INTO ioffice.document (workflow, direction, doc_type, abstract, state, urgency,
                                  agency_id, drafting_unit_id, page_count, due_date,
                                  sender_name, sender_symbol, sender_date, received_at, signer_name)
    VALUES ('incoming', 'incoming', coalesce(v_doc_type, 'CV'), p->>'subject',
            (SELECT s.state FROM ioffice.workflow_state s
             WHERE s.workflow = 'incoming' AND s.initial ORDER BY s.state LIMIT 1),
            v_urgency, v_agency, v_agency, v_pages,
            to_date(p->>'due_date', 'YYYY/MM/DD'),
            pg_catalog.left(coalesce(p->'from'->>'organ_name', v_sender), 500),
            pg_catalog.left((p->>'code_number') || '/' || (p->>'code_notation'), 100),
            to_date(p->>'promulgation_date', 'YYYY/MM/DD'), now(),
            pg_catalog.left(p->>'signer_name', 200))
    RETURNING id INTO v_id;
    INSERT INTO ioffice.file (document_id, name, kind, size, sha256, content, uploaded_by)
    SELECT v_id,
           pg_catalog.left(coalesce(a->>'name', a->>'description', a->>'content_id'), 255),
           coalesce(ioffice.file_kind(v_contents[x.o]), 'other'), octet_length(v_contents[x.o]),
           sha256(v_contents[x.o]), v_contents[x.o], v_me
    FROM jsonb_array_elements(p->'attachments') WITH ORDINALITY AS x(a, o)
    ORDER BY x.o;
    GET DIAGNOSTICS v_files = ROW_COUNT;
    UPDATE ioffice.edxml_received SET document_id = v_id WHERE id = v_key;
    INSERT INTO ioffice.edxml_status (document_id, party_organ_id, edxml_document_id, direction,
                                      code, description)
    VALUES (v_id, v_sender, v_docid, 'sent', '01', 'Đã đến');
    PERFORM ioffice._audit('document', v_id, 'edxml_receive', NULL, 'received',
                           jsonb_build_object('sender', v_sender, 'document_id', v_docid,
                                              'files', v_files,
                                              'signer', p->'signature'->>'subject'));
    IF p->>'bussiness_doc_type' = '3' THEN
        PERFORM ioffice._edxml_file_replace(p, v_id, v_agency);
    END IF;
    PERFORM ioffice._engine_leave();
    RETURN v_id;
END
$$;
REVOKE ALL ON FUNCTION _edxml_file(jsonb, text, bigint, bigint) FROM PUBLIC;

-- The worker files packages from the axis as the system, with no person:
-- such a received package and its files have no person who received or
-- uploaded them.
ALTER TABLE edxml_received ALTER COLUMN received_by DROP NOT NULL;
COMMENT ON COLUMN edxml_received.received_by IS
  'The clerk who filed the package with edxml_receive(); NULL: the worker filed it from the axis';
ALTER TABLE file ALTER COLUMN uploaded_by DROP NOT NULL;
COMMENT ON COLUMN file.uploaded_by IS
  'Who uploaded the file; NULL: the worker filed it from a package of the interconnection axis';

-- Where an agency's packages go and come from: one axis per agency.
-- transport 'vxp': the VXP-shaped REST axis at url (sendEdoc,
-- getReceivedEdocList, getEdoc, updateStatus; requests signed with
-- HMAC-SHA256 of system_id and a timestamp under secret), sending and
-- pulling; 'endpoint': packages posted to an endpoint row (its URL and
-- HMAC secret), sending only.
CREATE TABLE exchange_axis (
    id           bigserial PRIMARY KEY,
    agency_id    bigint NOT NULL UNIQUE REFERENCES unit,
    transport    text NOT NULL CHECK (transport IN ('vxp', 'endpoint')),
    url          text CHECK (url ~ '^https?://[^\s]+$' AND length(url) <= 2000),
    system_id    text CHECK (length(system_id) BETWEEN 1 AND 100),
    secret       text CHECK (length(secret) BETWEEN 16 AND 500),
    endpoint_id  bigint REFERENCES endpoint,
    timeout_ms   int NOT NULL DEFAULT 10000 CHECK (timeout_ms BETWEEN 100 AND 600000),
    max_attempts int NOT NULL DEFAULT 12 CHECK (max_attempts BETWEEN 1 AND 1000),
    poll_seconds int NOT NULL DEFAULT 60 CHECK (poll_seconds BETWEEN 1 AND 86400),
    enabled      boolean NOT NULL DEFAULT true,
    CHECK (transport <> 'vxp' OR (url IS NOT NULL AND system_id IS NOT NULL AND secret IS NOT NULL)),
    CHECK (transport <> 'endpoint' OR endpoint_id IS NOT NULL)
);
COMMENT ON TABLE exchange_axis IS
  'The interconnection axis of each agency: VXP-shaped REST (url, system_id, HMAC secret; sends and pulls) or an endpoint row (sends only)';
SELECT pg_catalog.pg_extension_config_dump('exchange_axis', '');
SELECT pg_catalog.pg_extension_config_dump('exchange_axis_id_seq', '');
REVOKE ALL ON exchange_axis FROM PUBLIC;
GRANT SELECT (id, agency_id, transport, url, system_id, endpoint_id, timeout_ms, max_attempts,
              poll_seconds, enabled),
      INSERT, UPDATE, DELETE ON exchange_axis TO ioffice_admin;
GRANT USAGE ON SEQUENCE exchange_axis_id_seq TO ioffice_admin;
-- where packages go is a DBA's decision on the record, as endpoints are
CREATE TRIGGER audit_direct AFTER INSERT OR UPDATE OR DELETE ON exchange_axis
    FOR EACH ROW WHEN (_outside_engine()) EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct_truncate AFTER TRUNCATE ON exchange_axis
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_direct();

-- The packages to send, one row each, written in the transaction of the
-- change (the issue, the status recorded); the worker builds, signs (the
-- seal, through the edXML helper) and sends them, at least once, retried
-- with backoff until max_attempts; the receiver files a package (sender,
-- DocumentId) once, and idempotency_key goes with every attempt.
-- kind 'document': the package of an issued document for one external
-- recipient; 'status': a status package (code) answering recipient's
-- document edxml_document_id (status_id: its edxml_status row, NULL when
-- the package refused was never filed).
CREATE TABLE edxml_outgoing (
    id              bigserial PRIMARY KEY,
    agency_id       bigint NOT NULL REFERENCES unit,
    document_id     bigint REFERENCES document,
    recipient       text NOT NULL CHECK (length(recipient) BETWEEN 1 AND 13),
    kind            text NOT NULL CHECK (kind IN ('document', 'status')),
    status_id       bigint REFERENCES edxml_status,
    code            text CHECK (code ~ '^[0-9]{2}$'),
    description     text CHECK (length(description) <= 2000),
    edxml_document_id text CHECK (length(edxml_document_id) <= 100),
    idempotency_key uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
    state           text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'sent', 'dead')),
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    CHECK ((state = 'sent') = (sent_at IS NOT NULL)),
    CHECK ((kind = 'document') = (code IS NULL)),
    CHECK (kind = 'status' OR document_id IS NOT NULL)
);
CREATE UNIQUE INDEX edxml_outgoing_document_key ON edxml_outgoing (document_id, recipient)
    WHERE kind = 'document';
CREATE INDEX edxml_outgoing_due_idx ON edxml_outgoing (next_attempt_at, id) WHERE state = 'queued';
CREATE INDEX edxml_outgoing_status_idx ON edxml_outgoing (status_id);
COMMENT ON TABLE edxml_outgoing IS
  'edXML packages to send over the axis (documents for external recipients, status packages): queued, sent, or dead after the last attempt';
SELECT pg_catalog.pg_extension_config_dump('edxml_outgoing', '');
SELECT pg_catalog.pg_extension_config_dump('edxml_outgoing_id_seq', '');
REVOKE ALL ON edxml_outgoing FROM PUBLIC;
GRANT SELECT ON edxml_outgoing TO ioffice_admin;

-- Issued: one package per recipient that is an agency code (DDD.DD.DD.LDD)
-- and no agency of this database (those get theirs by deliver_internal).
CREATE FUNCTION _edxml_queue_issued() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n int;
BEGIN
    INSERT INTO ioffice.edxml_outgoing (agency_id, document_id, recipient, kind)
    SELECT DISTINCT NEW.agency_id, NEW.id, e->>'place', 'document'
    FROM jsonb_array_elements(coalesce(NEW.recipients, '[]')) e
    WHERE e->>'place' ~ '^[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}$'
      AND NOT EXISTS (SELECT 1 FROM ioffice.unit u WHERE u.code = e->>'place' AND u.kind = 'agency')
    ON CONFLICT (document_id, recipient) WHERE kind = 'document' DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        PERFORM ioffice._wake_worker();
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER edxml_queue_issued AFTER UPDATE OF state ON document
    FOR EACH ROW WHEN (NEW.direction = 'outgoing' AND NEW.state = 'issued'
                       AND OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION _edxml_queue_issued();

-- The incoming workflow's steps answer the sender of a package from the
-- axis: registered 03, assigned 04 (in progress), finished 06, returned 02.
CREATE FUNCTION _edxml_answer_step() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_code text;
    v_text text;
BEGIN
    SELECT c.code, c.t INTO v_code, v_text
    FROM (VALUES ('registered', '03', 'Đã tiếp nhận, vào sổ'),
                 ('in_progress', '04', 'Đã phân công xử lý'),
                 ('processed', '06', 'Đã hoàn thành xử lý'),
                 ('returned', '02', 'Trả lại')) AS c(state, code, t)
    WHERE c.state = NEW.state;
    IF v_code IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO ioffice.edxml_status (document_id, party_organ_id, edxml_document_id, direction,
                                      code, description)
    SELECT NEW.id, r.sender_organ_id, r.edxml_document_id, 'sent', v_code, v_text
    FROM ioffice.edxml_received r WHERE r.document_id = NEW.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER edxml_answer_step AFTER UPDATE OF state ON document
    FOR EACH ROW WHEN (NEW.direction = 'incoming' AND OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION _edxml_answer_step();

-- A status recorded to send back is queued as a status package.
CREATE FUNCTION _edxml_queue_status() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO ioffice.edxml_outgoing (agency_id, document_id, recipient, kind, status_id, code,
                                        description, edxml_document_id)
    SELECT d.agency_id, NEW.document_id, NEW.party_organ_id, 'status', NEW.id, NEW.code,
           NEW.description, NEW.edxml_document_id
    FROM ioffice.document d WHERE d.id = NEW.document_id;
    PERFORM ioffice._wake_worker();
    RETURN NULL;
END
$$;
CREATE TRIGGER edxml_queue_status AFTER INSERT ON edxml_status
    FOR EACH ROW WHEN (NEW.direction = 'sent') EXECUTE FUNCTION _edxml_queue_status();

-- The status package of a queued row (EDXML.md "Status packages"): From,
-- ResponseFor (the document answered), StaffInfo, StatusCode, Description,
-- Timestamp.  Unsigned: the worker signs it.
CREATE FUNCTION _edxml_status_package(outgoing bigint) RETURNS xml
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o record;
    v_agency record;
    d record;
    v_ns constant text := 'http://www.mic.gov.vn/TBT/QCVN_102_2016';
BEGIN
    SELECT * INTO o FROM ioffice.edxml_outgoing WHERE id = outgoing AND kind = 'status';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no status package %', outgoing USING ERRCODE = '42704';
    END IF;
    SELECT u.code, u.name INTO v_agency FROM ioffice.unit u WHERE u.id = o.agency_id;
    SELECT x.sender_symbol, x.sender_date INTO d FROM ioffice.document x WHERE x.id = o.document_id;
    RETURN xmlelement(name "edXML", xmlattributes(v_ns AS xmlns),
        xmlelement(name "edXMLEnvelope",
            xmlelement(name "edXMLHeader",
                xmlelement(name "MessageHeader",
                    xmlelement(name "From",
                        xmlelement(name "OrganId", ioffice._edxml_limit('From/OrganId', v_agency.code, 13)),
                        xmlelement(name "OrganName", v_agency.name)),
                    xmlelement(name "ResponseFor",
                        xmlelement(name "OrganId", o.recipient),
                        xmlforest(d.sender_symbol AS "Code",
                                  ioffice._edxml_date(d.sender_date) AS "PromulgationDate"),
                        xmlelement(name "DocumentId", coalesce(o.edxml_document_id, ''))),
                    xmlelement(name "StaffInfo",
                        xmlelement(name "Department", v_agency.name)),
                    xmlelement(name "StatusCode", o.code),
                    xmlforest(o.description AS "Description"),
                    xmlelement(name "Timestamp",
                        to_char(now() AT TIME ZONE ioffice.timezone(), 'YYYY/MM/DD HH24:MI:SS'))),
                xmlelement(name "TraceHeaderList",
                    xmlelement(name "TraceHeader",
                        xmlelement(name "OrganId", v_agency.code),
                        xmlelement(name "Timestamp",
                            to_char(now() AT TIME ZONE ioffice.timezone(), 'YYYY/MM/DD HH24:MI:SS'))))),
            xmlelement(name "edXMLBody")));
END
$$;
REVOKE ALL ON FUNCTION _edxml_status_package(bigint) FROM PUBLIC;

-- What the worker files from the axis, as the system (no person): a
-- document package into the addressed agency's incoming queue (01 queued
-- back in the same transaction; a repeat gives the same document), a
-- status package onto the outgoing document it answers (a repeat recorded
-- once).  A package the helper could read but that is refused (addressed
-- to nobody here, signature, limits, duplicate) queues 02 with the reason
-- to its sender; a status package refused is not answered (no status
-- answers a status: 99_exchange_refused.sql).  Every refusal is recorded
-- in edxml_refused.  Returns {"result": "filed"|"status"|"refused", ...}.
CREATE FUNCTION _edxml_axis_file(package text, axis bigint) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p jsonb;
    v_axis_agency bigint;
    v_agency bigint;
    v_id bigint;
    v_reason text;
    v_detail text;
    v_answered boolean := false;
BEGIN
    SELECT a.agency_id INTO v_axis_agency FROM ioffice.exchange_axis a WHERE a.id = axis;
    IF package IS NULL OR v_axis_agency IS NULL THEN
        RAISE EXCEPTION 'an edXML package and an axis are required' USING ERRCODE = '22023';
    END IF;
    -- the anchors and revocation lists; the signer bound to From/OrganId
    -- (99_edxml_trust.sql)
    p := ioffice._edxml_signer_check(ioffice._edxml_read(package, ioffice._edxml_trust()));
    IF p ? 'error' THEN
        -- not read at all: no sender to answer; the axis is told (fail)
        v_reason := format('%s (field %s)', p->>'error', p->>'field');
        PERFORM ioffice._edxml_note_refused(axis, v_axis_agency, NULL, package, v_reason, false);
        RETURN jsonb_build_object('result', 'refused', 'reason', v_reason);
    END IF;
    -- a signer whose revocation is unknown (no current list of its issuer
    -- registered here) is this side's missing list, not the package's
    -- fault: not refused (a 02 tells the sender the package was bad) but
    -- left on the axis unacknowledged, read again at each poll until a DBA
    -- registers a current list (add_crl), then filed or refused for good
    IF p->'signature'->>'status' IS DISTINCT FROM 'valid'
       AND p->'signature'->>'reason' LIKE 'revocation unknown%' THEN
        RAISE EXCEPTION 'edXML package left on the axis: the revocation of its signer is unknown'
            USING ERRCODE = '55000', DETAIL = p->'signature'->>'reason',
                  HINT = 'Register a current revocation list of the signer''s issuer with add_crl(); the package is read again at the next poll.';
    END IF;
    BEGIN
        IF p->>'kind' = 'status' THEN
            IF p->'signature'->>'status' <> 'valid' THEN
                RAISE EXCEPTION 'edXML status package refused: its signature is %',
                    p->'signature'->>'status'
                    USING ERRCODE = '42501', DETAIL = coalesce(p->'signature'->>'reason', '');
            END IF;
            SELECT d.id INTO v_id FROM ioffice.document d
            JOIN ioffice.unit u ON u.id = d.agency_id
            WHERE d.identifier = p->'response_for'->>'document_id'
              AND u.code = p->'response_for'->>'organ_id' AND d.direction = 'outgoing';
            IF v_id IS NULL THEN
                RAISE EXCEPTION 'edXML status package refused: it answers no document of this database'
                    USING ERRCODE = '22023',
                          DETAIL = format('Field ResponseFor/DocumentId: %s.',
                                          pg_catalog.left(p->'response_for'->>'document_id', 60));
            END IF;
            -- only an agency the document was addressed to answers it; in
            -- any state of the send: the axis may have taken a package
            -- whose answer the sender missed (a timeout), and the 01 of
            -- a row still queued must not be refused and lost
            IF NOT EXISTS (SELECT 1 FROM ioffice.edxml_outgoing o
                           WHERE o.document_id = v_id AND o.kind = 'document'
                             AND o.recipient = p->'from'->>'organ_id') THEN
                RAISE EXCEPTION 'edXML status package refused: the document was not sent to its sender'
                    USING ERRCODE = '42501',
                          DETAIL = format('Field From/OrganId: %s.',
                                          pg_catalog.left(p->'from'->>'organ_id', 60));
            END IF;
            PERFORM ioffice._engine_enter();
            INSERT INTO ioffice.edxml_status (document_id, party_organ_id, edxml_document_id,
                                              direction, code, description)
            SELECT v_id, p->'from'->>'organ_id', p->'response_for'->>'document_id', 'received',
                   p->>'status_code', pg_catalog.left(p->>'description', 2000)
            WHERE NOT EXISTS (
                SELECT 1 FROM ioffice.edxml_status s
                WHERE s.document_id = v_id AND s.direction = 'received'
                  AND s.party_organ_id = p->'from'->>'organ_id' AND s.code = p->>'status_code'
                  AND s.description IS NOT DISTINCT FROM pg_catalog.left(p->>'description', 2000));
            PERFORM ioffice._engine_leave();
            RETURN jsonb_build_object('result', 'status', 'document', v_id, 'code', p->>'status_code');
        END IF;
        SELECT u.id INTO v_agency
        FROM jsonb_array_elements(p->'to') WITH ORDINALITY AS t(e, o)
        JOIN ioffice.unit u ON u.code = t.e->>'organ_id' AND u.kind = 'agency'
        ORDER BY (u.id = v_axis_agency) DESC, t.o LIMIT 1;
        IF v_agency IS NULL THEN
            RAISE EXCEPTION 'edXML package refused: it is addressed to no agency of this database'
                USING ERRCODE = '22023';
        END IF;
        v_id := ioffice._edxml_file(p, package, v_agency, NULL);
        RETURN jsonb_build_object('result', 'filed', 'document', v_id);
    -- the package's own data at fault (classes 22 and 23: a bad value or
    -- cast, a constraint) is a refusal, not an error retried at every poll
    EXCEPTION WHEN data_exception OR integrity_constraint_violation OR insufficient_privilege THEN
        GET STACKED DIAGNOSTICS v_reason = MESSAGE_TEXT, v_detail = PG_EXCEPTION_DETAIL;
    END;
    v_reason := pg_catalog.left(v_reason || coalesce(' ' || nullif(v_detail, ''), ''), 2000);
    -- answered when the 02 can be addressed (recipient, DocumentId that fit)
    IF p->>'kind' = 'document' AND length(p->'from'->>'organ_id') BETWEEN 1 AND 13
       AND coalesce(length(p->>'document_id'), 0) <= 100 THEN
        INSERT INTO ioffice.edxml_outgoing (agency_id, recipient, kind, code, description,
                                            edxml_document_id)
        VALUES (v_axis_agency, p->'from'->>'organ_id', 'status', '02', v_reason,
                p->>'document_id');
        v_answered := true;
    END IF;
    PERFORM ioffice._edxml_note_refused(axis, v_axis_agency, p, package, v_reason, v_answered);
    RETURN jsonb_build_object('result', 'refused', 'reason', v_reason);
END
$$;
REVOKE ALL ON FUNCTION _edxml_axis_file(text, bigint) FROM PUBLIC;

-- exchange_status, now with the packages sent: per document and external
-- party, the document package (code NULL) and the status packages, with
-- their delivery (queued, sent, dead) and its last error; received
-- statuses have delivery NULL.
CREATE OR REPLACE VIEW exchange_status AS
SELECT s.document_id AS document, s.party_organ_id AS party, s.edxml_document_id,
       s.direction, s.code, s.description, s.recorded_at, s.sent_at,
       CASE WHEN s.direction = 'sent' THEN 'status' END AS package,
       o.state AS delivery, o.last_error
FROM ioffice.edxml_status s
LEFT JOIN ioffice.edxml_outgoing o ON o.status_id = s.id
WHERE ioffice.can_see(s.document_id)
UNION ALL
SELECT o.document_id, o.recipient, d.identifier, 'sent', NULL, 'Văn bản điện tử', o.created_at,
       o.sent_at, 'document', o.state, o.last_error
FROM ioffice.edxml_outgoing o JOIN ioffice.document d ON d.id = o.document_id
WHERE o.kind = 'document' AND ioffice.can_see(o.document_id);
COMMENT ON VIEW exchange_status IS
  'edXML exchange per document and external agency: the document packages sent (code NULL) and the status codes (01 arrived, 02 refused, 03 registered, 04 assigned, 05 in progress, 06 finished, 13/15/16 recall) sent back and received, with times and delivery (queued, sent, dead); only documents the caller may see';
