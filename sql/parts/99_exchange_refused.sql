
-- ---------------------------------------------------------------------------
-- Packages from the axis that were refused, kept where people see them.
--
-- A document package refused is answered 02 (từ chối tiếp nhận) to its
-- sender (_edxml_axis_file).  A status package (01-06, 13, 15, 16) is not
-- answered: in QCVN 102:2016 a status answers a document (ResponseFor), and
-- nothing in the standard answers a status; a 02 sent for a status could
-- itself be refused by the other system and answered again, a loop between
-- two systems.  The axis is told (the worker acknowledges the package as
-- failed, with the reason), but no person here was: each refusal of
-- _edxml_axis_file() is recorded once per package (an axis listing it
-- again adds nothing) and shown to the clerks of the axis's agency and to
-- the DBA in the view exchange_refused: when, what kind, who sent it, the
-- document it names, the status code, the reason, whether a 02 went back.
-- ---------------------------------------------------------------------------

-- No foreign key to exchange_axis: an axis removed keeps its refusals.
CREATE TABLE edxml_refused (
    id                bigserial PRIMARY KEY,
    axis_id           bigint NOT NULL,
    agency_id         bigint NOT NULL REFERENCES unit,
    refused_at        timestamptz NOT NULL DEFAULT now(),
    kind              text CHECK (kind IN ('document', 'status')),
    sender            text CHECK (length(sender) <= 60),
    edxml_document_id text CHECK (length(edxml_document_id) <= 100),
    status_code       text CHECK (length(status_code) <= 10),
    reason            text NOT NULL CHECK (length(reason) BETWEEN 1 AND 2000),
    answered          boolean NOT NULL,
    package_sha256    bytea NOT NULL
);
CREATE UNIQUE INDEX edxml_refused_package_key ON edxml_refused (axis_id, package_sha256);
CREATE INDEX edxml_refused_agency_idx ON edxml_refused (agency_id, refused_at);
COMMENT ON TABLE edxml_refused IS
  'Packages from the axis refused by _edxml_axis_file(), once each: kind (NULL: not read as edXML), sender, DocumentId, status code, reason, and whether a 02 answered it (a document package; a status package is never answered)';
SELECT pg_catalog.pg_extension_config_dump('edxml_refused', '');
SELECT pg_catalog.pg_extension_config_dump('edxml_refused_id_seq', '');
REVOKE ALL ON edxml_refused FROM PUBLIC;
GRANT SELECT ON edxml_refused TO ioffice_admin;

-- A refusal of _edxml_axis_file(), recorded (p: the reader's answer, NULL
-- when the package was not read); what the package said is clipped to the
-- columns' lengths, it is the other system's text.
CREATE FUNCTION _edxml_note_refused(axis bigint, agency bigint, p jsonb, package text,
                                    reason text, answered boolean) RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO ioffice.edxml_refused (axis_id, agency_id, kind, sender, edxml_document_id,
                                       status_code, reason, answered, package_sha256)
    VALUES (axis, agency,
            CASE WHEN p->>'kind' IN ('document', 'status') THEN p->>'kind' END,
            pg_catalog.left(p->'from'->>'organ_id', 60),
            pg_catalog.left(coalesce(p->'response_for'->>'document_id', p->>'document_id'), 100),
            pg_catalog.left(p->>'status_code', 10),
            pg_catalog.left(coalesce(nullif(reason, ''), 'refused'), 2000), answered,
            pg_catalog.sha256(pg_catalog.convert_to(package, 'UTF8')))
    ON CONFLICT (axis_id, package_sha256) DO NOTHING
$$;
REVOKE ALL ON FUNCTION _edxml_note_refused(bigint, bigint, jsonb, text, text, boolean) FROM PUBLIC;

CREATE VIEW exchange_refused AS
SELECT r.refused_at, u.code AS agency, r.kind, r.sender, r.edxml_document_id, r.status_code,
       r.reason, r.answered
FROM ioffice.edxml_refused r JOIN ioffice.unit u ON u.id = r.agency_id
WHERE ioffice.is_admin() OR r.agency_id = ANY ((SELECT ioffice._clerk_agencies())::bigint[]);
COMMENT ON VIEW exchange_refused IS
  'Packages from the axis that were refused, for the clerks of the axis''s agency and the DBA: when, kind (document, status, NULL: not edXML), sender, DocumentId named, status code, reason; answered: a 02 went back (document packages; a status package is never answered, so that two systems never answer each other''s refusals)';
REVOKE ALL ON exchange_refused FROM PUBLIC;
GRANT SELECT ON exchange_refused TO ioffice_app, ioffice_admin, ioffice_reader;
