
-- ---------------------------------------------------------------------------
-- edXML (QCVN 102:2016): packages for agencies outside this database
-- ---------------------------------------------------------------------------

-- Packages received and filed: one row per sender's DocumentId and recipient
-- agency, so that a package that arrives twice is filed once (the row is
-- written before the document, under this unique key: a second caller waits
-- for the first and then finds its document).
CREATE TABLE edxml_received (
    id             bigserial PRIMARY KEY,
    agency_id      bigint NOT NULL REFERENCES unit,
    sender_organ_id text NOT NULL CHECK (length(sender_organ_id) BETWEEN 1 AND 13),
    edxml_document_id text NOT NULL CHECK (length(edxml_document_id) BETWEEN 1 AND 100),
    -- set in the same transaction as the row
    document_id    bigint REFERENCES document,
    package_sha256 bytea NOT NULL CHECK (length(package_sha256) = 32),
    signer_subject text,
    received_at    timestamptz NOT NULL DEFAULT now(),
    received_by    bigint NOT NULL REFERENCES person,
    UNIQUE (agency_id, sender_organ_id, edxml_document_id)
);
CREATE INDEX edxml_received_document_idx ON edxml_received (document_id);
COMMENT ON TABLE edxml_received IS
  'edXML packages received and filed (edxml_receive): a package with the same sender and DocumentId is filed once per agency';

-- The status packages of the exchange (EDXML.md: 01 arrived, 02 refused, 03
-- registered, 04 assigned, 05 in progress, 06 finished, 13 recall asked, 15
-- recall accepted, 16 recall refused): those this database sends back
-- ('sent': sent_at NULL while the transport has not sent it yet) and those
-- it receives ('received').
CREATE TABLE edxml_status (
    id             bigserial PRIMARY KEY,
    document_id    bigint NOT NULL REFERENCES document,
    party_organ_id text NOT NULL CHECK (length(party_organ_id) BETWEEN 1 AND 13),
    edxml_document_id text NOT NULL CHECK (length(edxml_document_id) BETWEEN 1 AND 100),
    direction      text NOT NULL CHECK (direction IN ('sent', 'received')),
    code           text NOT NULL CHECK (code ~ '^[0-9]{2}$'),
    description    text CHECK (length(description) <= 2000),
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    sent_at        timestamptz,
    CHECK (direction = 'sent' OR sent_at IS NULL)
);
CREATE INDEX edxml_status_document_idx ON edxml_status (document_id, id);
CREATE INDEX edxml_status_unsent_idx ON edxml_status (id) WHERE direction = 'sent' AND sent_at IS NULL;
COMMENT ON TABLE edxml_status IS
  'edXML status codes per document and external party: sent back (sent_at NULL until the transport sends them) and received';

SELECT pg_catalog.pg_extension_config_dump('edxml_received', '');
SELECT pg_catalog.pg_extension_config_dump('edxml_received_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('edxml_status', '');
SELECT pg_catalog.pg_extension_config_dump('edxml_status_id_seq', '');
REVOKE ALL ON edxml_received, edxml_status FROM PUBLIC;
GRANT SELECT ON edxml_received, edxml_status TO ioffice_admin;

-- What a clerk sees of the exchange: per document (that the caller may see)
-- and external party, the status codes sent and received, with their times.
CREATE VIEW exchange_status AS
SELECT s.document_id AS document, s.party_organ_id AS party, s.edxml_document_id,
       s.direction, s.code, s.description, s.recorded_at, s.sent_at
FROM ioffice.edxml_status s
WHERE ioffice.can_see(s.document_id);
COMMENT ON VIEW exchange_status IS
  'edXML status codes per document and external agency (01 arrived, 02 refused, 03 registered, 04 assigned, 05 in progress, 06 finished, 13/15/16 recall): sent back and received, with times; only documents the caller may see';
REVOKE ALL ON exchange_status FROM PUBLIC;
GRANT SELECT ON exchange_status TO ioffice_app, ioffice_admin, ioffice_reader;

-- The edXML helper's reading of a package (extension/edxml.c): its fields
-- as JSON, or {"error", "field"}.  Internal.
CREATE FUNCTION _edxml_read(package text, trust text) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'ioffice_edxml_read_sql'
    LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION _edxml_read(text, text) FROM PUBLIC;

-- yyyy/MM/dd, the standard's dates
CREATE FUNCTION _edxml_date(d date) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$ SELECT to_char(d, 'YYYY/MM/DD') $$;
REVOKE ALL ON FUNCTION _edxml_date(date) FROM PUBLIC;

-- A value that breaks one of the standard's limits: 22023 naming the field.
CREATE FUNCTION _edxml_limit(field text, value text, max int) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF value IS NULL OR length(value) = 0 THEN
        RAISE EXCEPTION 'edXML field % is empty', field
            USING ERRCODE = '22023';
    END IF;
    IF length(value) > max THEN
        RAISE EXCEPTION 'edXML field % would have % characters; QCVN 102:2016 allows %',
            field, length(value), max
            USING ERRCODE = '22023',
                  DETAIL = format('Its value: %s', left(value, 60));
    END IF;
    RETURN value;
END
$$;
REVOKE ALL ON FUNCTION _edxml_limit(text, text, int) FROM PUBLIC;

-- The edXML package of an issued outgoing document for one external
-- recipient (its 13-character agency code): MessageHeader, TraceHeaderList
-- with Bussiness (BussinessDocType 0, a new document), the manifest and the
-- current files base64.  Unsigned: the seal's key is the worker's, which signs
-- it on the way out (extension/edxml.c, ioffice_edxml_sign).  Built with
-- SQL/XML, i.e. libxml2's writer, from our own data.
CREATE FUNCTION edxml_build(doc bigint, recipient text) RETURNS xml
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me bigint := ioffice.actor();
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
    v_ns constant text := 'http://www.mic.gov.vn/TBT/QCVN_102_2016';
BEGIN
    PERFORM ioffice._require_document(doc);
    SELECT * INTO d FROM ioffice.document WHERE id = doc;
    IF NOT EXISTS (SELECT 1 FROM ioffice.person_role r
                   WHERE r.person_id = v_me AND r.role = 'clerk' AND r.unit_id = d.agency_id) THEN
        RAISE EXCEPTION 'only a clerk of the issuing agency builds its edXML packages'
            USING ERRCODE = '42501';
    END IF;
    IF recipient IS NULL OR recipient !~ '^[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}$' THEN
        RAISE EXCEPTION 'recipient "%" is not an agency code of the form DDD.DD.DD.LDD',
            pg_catalog.left(recipient, 60)
            USING ERRCODE = '22023',
                  HINT = 'QCVN 102:2016 agency identifiers (OrganId) look like 000.00.00.G22.';
    END IF;
    IF d.direction <> 'outgoing' OR d.issued_at IS NULL OR d.number IS NULL THEN
        RAISE EXCEPTION 'document % is not an issued outgoing document', doc
            USING ERRCODE = '55000';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM jsonb_array_elements(d.recipients) e
                   WHERE e->>'code' = recipient OR e->>'place' = recipient) THEN
        RAISE EXCEPTION 'agency % is not a recipient of document %', recipient, doc
            USING ERRCODE = '22023';
    END IF;
    SELECT u.code, u.name, u.parent_id INTO v_agency FROM ioffice.unit u WHERE u.id = d.agency_id;
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
                      xmlelement(name "ContentTransferEncoded", encode(f.content, 'base64')))
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
          WHERE fl.document_id = doc AND fl.superseded_at IS NULL AND fl.removed_at IS NULL) f;

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
                    xmlforest(ioffice._edxml_date(d.due_date) AS "DueDate"),
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
                        xmlelement(name "BussinessDocType", '0'),
                        xmlelement(name "BussinessDocReason", 'Văn bản điện tử mới'),
                        xmlelement(name "Paper", '0'),
                        xmlelement(name "StaffInfo",
                            xmlforest(v_clerk.unit_name AS "Department", v_clerk.full_name AS "Staff",
                                      v_clerk.email AS "Email", v_clerk.phone AS "Mobile"))))),
            xmlelement(name "edXMLBody",
                xmlelement(name "edXMLManifest", xmlattributes('1.0' AS version), v_manifest))),
        xmlelement(name "AttachmentEncoded", v_files));
END
$$;
COMMENT ON FUNCTION edxml_build(bigint, text) IS
  'The edXML package (QCVN 102:2016, unsigned: the worker signs it with the seal) of an issued outgoing document for one external recipient agency, by its code; for the issuing agency''s clerks';
REVOKE ALL ON FUNCTION edxml_build(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION edxml_build(bigint, text) TO ioffice_app, ioffice_admin;

-- Files a received package into the incoming queue of the agency it is
-- addressed to (state received, for its clerk to register), with its files,
-- and records the status 01 (arrived) to send back.  The helper reads it and
-- checks its signature against the trust anchors; a package that is not
-- well-formed, breaks a limit, is addressed to no agency here, or whose
-- signature is missing or does not verify is refused and nothing is filed.
-- The same package (sender and DocumentId) twice gives the same document.
-- _edxml_receive takes the package's text: the worker's path (items from
-- the axis) never has the backend parse it; edxml_receive(xml), the public
-- name, passes its text on.
CREATE FUNCTION _edxml_receive(package text) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me bigint := ioffice.actor();
    v_text text := package;
    v_trust text;
    p jsonb;
    v_agency bigint;
    v_sender text;
    v_docid text;
    v_key bigint;
    v_id bigint;
    v_doc_type text;
    v_urgency text;
    v_pages int;
    v_files int;
BEGIN
    IF package IS NULL THEN
        RAISE EXCEPTION 'an edXML package is required' USING ERRCODE = '22023';
    END IF;
    SELECT string_agg(t.pem, E'\n' ORDER BY t.id) INTO v_trust FROM ioffice.trust_anchor t;
    p := ioffice._edxml_read(v_text, coalesce(v_trust, ''));
    IF p ? 'error' THEN
        RAISE EXCEPTION 'edXML package refused: %', p->>'error'
            USING ERRCODE = '22023', DETAIL = format('Field %s.', p->>'field');
    END IF;
    -- the first addressee that is an agency of this database
    SELECT u.id INTO v_agency
    FROM jsonb_array_elements(p->'to') WITH ORDINALITY AS t(e, o)
    JOIN ioffice.unit u ON u.code = t.e->>'organ_id' AND u.kind = 'agency'
    ORDER BY t.o LIMIT 1;
    IF v_agency IS NULL THEN
        RAISE EXCEPTION 'edXML package refused: it is addressed to no agency of this database'
            USING ERRCODE = '22023',
                  DETAIL = format('Field To/OrganId: %s.',
                                  pg_catalog.left((SELECT string_agg(t.e->>'organ_id', ', ')
                                                   FROM jsonb_array_elements(p->'to') t(e)), 60));
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ioffice.person_role r
                   WHERE r.person_id = v_me AND r.role = 'clerk' AND r.unit_id = v_agency) THEN
        RAISE EXCEPTION 'only a clerk of the agency it is addressed to receives an edXML package'
            USING ERRCODE = '42501';
    END IF;
    IF p->'signature'->>'status' <> 'valid' THEN
        RAISE EXCEPTION 'edXML package refused: its signature is %', p->'signature'->>'status'
            USING ERRCODE = '42501', DETAIL = p->'signature'->>'reason';
    END IF;
    IF coalesce(p->>'bussiness_doc_type', '0') <> '0' THEN
        RAISE EXCEPTION 'edXML package refused: BussinessDocType % (recall, update, replace) is not handled yet',
            p->>'bussiness_doc_type'
            USING ERRCODE = '22023', DETAIL = 'Field TraceHeaderList/Bussiness/BussinessDocType.';
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
           coalesce(ioffice.file_kind(c.content), 'other'), octet_length(c.content),
           sha256(c.content), c.content, v_me
    FROM jsonb_array_elements(p->'attachments') WITH ORDINALITY AS x(a, o),
         LATERAL (SELECT decode(a->>'data', 'base64') AS content) c
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
    PERFORM ioffice._engine_leave();
    RETURN v_id;
END
$$;
REVOKE ALL ON FUNCTION _edxml_receive(text) FROM PUBLIC;

CREATE FUNCTION edxml_receive(package xml) RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ SELECT ioffice._edxml_receive(package::text) $$;
COMMENT ON FUNCTION edxml_receive(xml) IS
  'Files a received edXML package (signature verified against the trust anchors) into the addressed agency''s incoming queue and records the status 01 to send back; the same package twice gives the same document';
REVOKE ALL ON FUNCTION edxml_receive(xml) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION edxml_receive(xml) TO ioffice_app, ioffice_admin;
