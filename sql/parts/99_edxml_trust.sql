-- ---------------------------------------------------------------------------
-- edXML: who may sign for an agency, and revoked signers
-- ---------------------------------------------------------------------------

-- A package's signature proves which certificate signed it; the package
-- says which agency sent it (MessageHeader/From/OrganId).  Nothing in a
-- certificate names a QCVN 102:2016 agency code, so the binding is
-- registered: a package from agency X is accepted only when its signer's
-- certificate is a seal registered for X here — a row of exchange_seal
-- (the external agencies' seals, added by a DBA from the certificate the
-- agency gives), or the organisation certificate of this database's own
-- agency with that code.  Anything else (a valid certificate of agency Y
-- signing a package From X, any certificate of an agency not registered)
-- is refused: by the axis with 02 and the reason, by edxml_receive() with
-- the error.
CREATE TABLE exchange_seal (
    id           bigserial PRIMARY KEY,
    organ_id     text NOT NULL CHECK (organ_id ~ '^[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}$'),
    pem          text NOT NULL,
    subject      text NOT NULL,
    issuer       text NOT NULL,
    serial       text NOT NULL,
    not_after    timestamptz NOT NULL,
    -- SHA-256 of the certificate's DER, as certificate.fingerprint and the
    -- edXML helper's reading ("signature"->"fingerprint")
    fingerprint  bytea NOT NULL CHECK (length(fingerprint) = 32),
    added_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organ_id, fingerprint)
);
CREATE INDEX exchange_seal_fingerprint_idx ON exchange_seal (fingerprint);
COMMENT ON TABLE exchange_seal IS
  'The seal certificates other agencies sign their edXML packages with, per agency code (From/OrganId): a package is accepted only when signed by a seal registered for the agency it says it comes from';
SELECT pg_catalog.pg_extension_config_dump('exchange_seal', '');
SELECT pg_catalog.pg_extension_config_dump('exchange_seal_id_seq', '');
REVOKE ALL ON exchange_seal FROM PUBLIC;
GRANT SELECT ON exchange_seal TO PUBLIC;
GRANT DELETE ON exchange_seal TO ioffice_admin;
-- whom packages are believed from is a DBA's decision on the record
CREATE TRIGGER audit_direct AFTER INSERT OR UPDATE OR DELETE ON exchange_seal
    FOR EACH ROW WHEN (_outside_engine()) EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct_truncate AFTER TRUNCATE ON exchange_seal
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_direct();

CREATE FUNCTION add_exchange_seal(agency text, pem text) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_info record;
    v_id bigint;
BEGIN
    IF agency IS NULL OR agency !~ '^[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}$' THEN
        RAISE EXCEPTION 'agency "%" is not an agency code of the form DDD.DD.DD.LDD',
            pg_catalog.left(agency, 60)
            USING ERRCODE = '22023',
                  HINT = 'QCVN 102:2016 agency identifiers (OrganId) look like 000.00.00.G22.';
    END IF;
    IF pem IS NULL THEN
        RAISE EXCEPTION 'a seal needs its certificate''s PEM text' USING ERRCODE = '22023';
    END IF;
    v_info := ioffice._x509_info(pem);
    IF v_info.is_ca THEN
        RAISE EXCEPTION 'a CA certificate is not an agency''s seal'
            USING ERRCODE = '22023',
                  HINT = 'Give the certificate the agency signs its packages with; its CA goes to add_trust_anchor.';
    END IF;
    PERFORM ioffice._engine_enter();
    INSERT INTO ioffice.exchange_seal (organ_id, pem, subject, issuer, serial, not_after, fingerprint)
    VALUES (agency, pem, v_info.subject, v_info.issuer, v_info.serial, v_info.not_after,
            v_info.fingerprint)
    ON CONFLICT (organ_id, fingerprint) DO UPDATE SET pem = EXCLUDED.pem
    RETURNING id INTO v_id;
    PERFORM ioffice._audit('exchange_seal', v_id, 'add', NULL, NULL,
                           jsonb_build_object('agency', agency, 'subject', v_info.subject,
                                              'serial', v_info.serial,
                                              'not_after', v_info.not_after));
    PERFORM ioffice._engine_leave();
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION add_exchange_seal(text, text) IS
  'Registers the seal certificate another agency (by its code) signs its edXML packages with; packages from that agency signed by any other certificate are refused';
REVOKE ALL ON FUNCTION add_exchange_seal(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION add_exchange_seal(text, text) TO ioffice_admin;

-- What the edXML helper checks a package's signature against: the trust
-- anchors and the revocation lists, the ones verify() uses for PDFs.
CREATE FUNCTION _edxml_trust() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
SELECT coalesce(string_agg(x.pem, E'\n' ORDER BY x.o, x.id), '')
FROM (SELECT 1 AS o, t.id, t.pem FROM ioffice.trust_anchor t
      UNION ALL
      SELECT 2, c.id, c.pem FROM ioffice.crl c) x
$$;
REVOKE ALL ON FUNCTION _edxml_trust() FROM PUBLIC;

-- The helper's reading p, its signature judged valid by the helper (chain,
-- revocation), and now bound to the agency it says it comes from: still
-- valid only when the signer's certificate is a seal registered for
-- From/OrganId (exchange_seal, or this database's own agency's
-- organisation certificate); otherwise 'invalid' with the reason.
CREATE FUNCTION _edxml_signer_check(p jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_from text := p->'from'->>'organ_id';
    v_hex text := p->'signature'->>'fingerprint';
    v_fp bytea;
BEGIN
    IF p IS NULL OR p ? 'error' OR p->'signature'->>'status' IS DISTINCT FROM 'valid' THEN
        RETURN p;
    END IF;
    IF v_hex ~ '^[0-9a-f]{64}$' THEN
        v_fp := decode(v_hex, 'hex');
    END IF;
    IF v_fp IS NOT NULL AND v_from IS NOT NULL
       AND (EXISTS (SELECT 1 FROM ioffice.exchange_seal s
                    WHERE s.organ_id = v_from AND s.fingerprint = v_fp)
            OR EXISTS (SELECT 1 FROM ioffice.certificate c
                       JOIN ioffice.unit u ON u.id = c.agency_id AND u.kind = 'agency'
                       WHERE c.kind = 'organisation' AND u.code = v_from
                         AND c.fingerprint = v_fp)) THEN
        RETURN p;
    END IF;
    RETURN jsonb_set(jsonb_set(p, '{signature,status}', '"invalid"'), '{signature,reason}',
                     to_jsonb(format('the signer (%s) is not a seal registered for agency %s, which From/OrganId names',
                                     coalesce(pg_catalog.left(p->'signature'->>'subject', 200),
                                              'no certificate'),
                                     coalesce(pg_catalog.left(v_from, 60), '(none)'))));
END
$$;
REVOKE ALL ON FUNCTION _edxml_signer_check(jsonb) FROM PUBLIC;
