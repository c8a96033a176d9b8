
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
    -- (or an agency its package goes to: the recipients of the document
    -- it replaces, those an update added; 99_replace_update.sql)
    IF NOT EXISTS (SELECT 1 FROM jsonb_array_elements(d.recipients) e
                   WHERE e->>'code' = recipient OR e->>'place' = recipient)
       AND NOT EXISTS (SELECT 1 FROM ioffice.edxml_outgoing o
                       WHERE o.document_id = doc AND o.kind = 'document'
                         AND o.recipient = edxml_build.recipient) THEN
        RAISE EXCEPTION 'agency % is not a recipient of document %', recipient, doc
            USING ERRCODE = '22023';
    END IF;
    RETURN ioffice._edxml_package(doc, recipient, v_me);
END
$$;
COMMENT ON FUNCTION edxml_build(bigint, text) IS
  'The edXML package (QCVN 102:2016, unsigned: the worker signs it with the seal) of an issued outgoing document for one external recipient agency, by its code; for the issuing agency''s clerks';
REVOKE ALL ON FUNCTION edxml_build(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION edxml_build(bigint, text) TO ioffice_app, ioffice_admin;

-- Files a received package into the incoming queue of the agency it is
-- addressed to (state received, for its clerk to register), with its files,
-- and records the status 01 (arrived) to send back.  The helper reads it and
-- checks its signature against the trust anchors and revocation lists; a
-- package that is not well-formed, breaks a limit, is addressed to no agency
-- here, or whose signature is missing, does not verify, is by a revoked
-- certificate or by one that is not a seal registered for its From/OrganId
-- is refused and nothing is filed.
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
    p jsonb;
    v_agency bigint;
BEGIN
    IF package IS NULL THEN
        RAISE EXCEPTION 'an edXML package is required' USING ERRCODE = '22023';
    END IF;
    -- the anchors and revocation lists; the signer bound to From/OrganId
    -- (99_edxml_trust.sql)
    p := ioffice._edxml_signer_check(ioffice._edxml_read(v_text, ioffice._edxml_trust()));
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
    RETURN ioffice._edxml_file(p, v_text, v_agency, v_me);
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
