-- ---------------------------------------------------------------------------
-- Trail export
-- ---------------------------------------------------------------------------

CREATE FUNCTION trail_export(doc bigint, format text) RETURNS bytea
    AS 'MODULE_PATHNAME', 'ioffice_trail_export'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION trail_export(bigint, text) IS 'The processing trail (Quá trình xử lý) of a document as a file: xlsx (Excel workbook) or csv (UTF-8 with BOM, CRLF); the rows of trail(), with its visibility rules';

-- ---------------------------------------------------------------------------
-- Register export
-- ---------------------------------------------------------------------------

-- SECURITY DEFINER: the owner reads past row-level security, so the C code
-- decides who may export (a clerk of the agency, an admin: every row; a
-- member of ioffice_reader: ordinary documents of an ordinary register).
CREATE FUNCTION register_export(register bigint, year int, format text) RETURNS bytea
    AS 'MODULE_PATHNAME', 'ioffice_register_export'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION register_export(bigint, int, text) IS 'The outgoing or incoming register of a year (Sổ đăng ký văn bản đi / đến, Decree 30) as a file to print and bind: xlsx (A4 landscape, headings repeated on every page) or csv (UTF-8 with BOM, CRLF); register may be any year''s row of the register; for its agency''s clerks, admins and ioffice_reader';

-- ---------------------------------------------------------------------------
-- Certificates, verification, the worker
-- ---------------------------------------------------------------------------

CREATE FUNCTION _x509_info(pem text, OUT subject text, OUT issuer text, OUT serial text,
                           OUT not_before timestamptz, OUT not_after timestamptz,
                           OUT fingerprint bytea, OUT is_ca boolean, OUT signs boolean)
    AS 'MODULE_PATHNAME', 'ioffice_x509_info' LANGUAGE C IMMUTABLE STRICT;
CREATE FUNCTION _crl_info(pem text, OUT issuer text, OUT this_update timestamptz,
                          OUT next_update timestamptz, OUT serials text[])
    AS 'MODULE_PATHNAME', 'ioffice_crl_info' LANGUAGE C IMMUTABLE STRICT;
REVOKE ALL ON FUNCTION _x509_info(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION _crl_info(text) FROM PUBLIC;

-- A person's certificate (kind personal, owner a login) or an agency's seal
-- (kind organisation, owner an agency code), with the name of its private
-- key's file in the keystore, or (a seal only) the PKCS#11 URI of its key in
-- a hardware security module.
CREATE FUNCTION register_certificate(kind text, owner text, pem text, key_file text DEFAULT NULL,
                                     key_uri text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_info record;
    v_person bigint;
    v_agency bigint;
    v_id bigint;
BEGIN
    PERFORM ioffice._engine_enter();
    IF kind IS NULL OR owner IS NULL OR pem IS NULL THEN
        RAISE EXCEPTION 'a certificate needs its kind, owner and PEM text' USING ERRCODE = '22023';
    END IF;
    IF kind NOT IN ('personal', 'organisation') THEN
        RAISE EXCEPTION 'unknown certificate kind "%"', kind USING ERRCODE = '22023',
              HINT = 'Kinds are personal (owner: a login) and organisation (owner: an agency code).';
    END IF;
    IF key_file IS NOT NULL AND (key_file !~ '^[A-Za-z0-9_.-]{1,200}$' OR key_file IN ('.', '..')) THEN
        RAISE EXCEPTION 'key file "%" must be a plain file name of the keystore', key_file
            USING ERRCODE = '22023';
    END IF;
    IF key_uri IS NOT NULL THEN
        IF key_file IS NOT NULL THEN
            RAISE EXCEPTION 'a certificate''s key is either a key file or a PKCS#11 URI, not both'
                USING ERRCODE = '22023';
        END IF;
        IF kind <> 'organisation' THEN
            RAISE EXCEPTION 'only an agency''s seal may have its key in the server''s HSM' USING ERRCODE = '22023',
                  HINT = 'A person''s key stays under their sole control: register the certificate without a key.';
        END IF;
        IF key_uri !~ '^pkcs11:[!-~]+$' OR length(key_uri) > 1000 THEN
            RAISE EXCEPTION 'key URI "%" is not a PKCS#11 URI', pg_catalog.left(key_uri, 60)
                USING ERRCODE = '22023', HINT = 'For example pkcs11:token=seal;object=seal-key;type=private (RFC 7512).';
        END IF;
        IF key_uri ~* '[?;&]pin-(value|source)=' THEN
            RAISE EXCEPTION 'a key URI must not carry the PIN' USING ERRCODE = '22023',
                  HINT = 'The worker reads the PIN from the file ioffice.pkcs11_pin_file names.';
        END IF;
    END IF;
    v_info := ioffice._x509_info(pem);
    IF v_info.not_before IS NULL OR v_info.not_after IS NULL THEN
        RAISE EXCEPTION 'the certificate''s validity dates cannot be read' USING ERRCODE = '22023';
    END IF;
    IF NOT v_info.signs THEN
        RAISE EXCEPTION 'the certificate''s key usage allows no signing' USING ERRCODE = '22023',
              HINT = 'Signing certificates carry keyUsage digitalSignature or nonRepudiation.';
    END IF;
    IF kind = 'personal' THEN
        SELECT p.id INTO v_person FROM ioffice.person p WHERE p.login = owner;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'unknown person "%"', owner USING ERRCODE = '42704';
        END IF;
    ELSE
        SELECT u.id INTO v_agency FROM ioffice.unit u WHERE u.code = owner AND u.kind = 'agency';
        IF NOT FOUND THEN
            RAISE EXCEPTION 'unknown agency "%"', owner USING ERRCODE = '42704';
        END IF;
    END IF;
    IF EXISTS (SELECT 1 FROM ioffice.certificate c WHERE c.fingerprint = v_info.fingerprint) THEN
        RAISE EXCEPTION 'this certificate is already registered' USING ERRCODE = '23505';
    END IF;
    INSERT INTO ioffice.certificate (kind, person_id, agency_id, pem, subject, issuer, serial,
                                     not_before, not_after, fingerprint, key_file, key_uri, revoked_at)
    VALUES (kind, v_person, v_agency, pem, v_info.subject, v_info.issuer, v_info.serial,
            v_info.not_before, v_info.not_after, v_info.fingerprint, key_file, key_uri,
            (SELECT min(c.this_update) FROM ioffice.crl c
              WHERE c.issuer = v_info.issuer AND v_info.serial = ANY (c.serials)))
    RETURNING id INTO v_id;
    PERFORM ioffice._audit('certificate', v_id, 'register', NULL, NULL,
                           jsonb_build_object('kind', kind, 'owner', owner, 'subject', v_info.subject,
                                              'serial', v_info.serial, 'not_after', v_info.not_after)
                           || CASE WHEN key_uri IS NULL THEN '{}'::jsonb
                                   ELSE jsonb_build_object('key_uri', key_uri) END);
    PERFORM ioffice._engine_leave();
    RETURN v_id;
END
$$;

CREATE FUNCTION add_trust_anchor(pem text) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_info record;
    v_id bigint;
BEGIN
    PERFORM ioffice._engine_enter();
    IF pem IS NULL THEN
        RAISE EXCEPTION 'a trust anchor needs its PEM text' USING ERRCODE = '22023';
    END IF;
    v_info := ioffice._x509_info(pem);
    IF NOT v_info.is_ca THEN
        RAISE EXCEPTION 'a trust anchor must be a CA certificate' USING ERRCODE = '22023';
    END IF;
    INSERT INTO ioffice.trust_anchor (pem, subject, fingerprint)
    VALUES (pem, v_info.subject, v_info.fingerprint)
    ON CONFLICT (fingerprint) DO UPDATE SET pem = EXCLUDED.pem
    RETURNING id INTO v_id;
    PERFORM ioffice._audit('trust_anchor', v_id, 'add', NULL, NULL,
                           jsonb_build_object('subject', v_info.subject));
    PERFORM ioffice._engine_leave();
    RETURN v_id;
END
$$;

CREATE FUNCTION add_crl(pem text) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_info record;
    v_id bigint;
BEGIN
    PERFORM ioffice._engine_enter();
    IF pem IS NULL THEN
        RAISE EXCEPTION 'a revocation list needs its PEM text' USING ERRCODE = '22023';
    END IF;
    v_info := ioffice._crl_info(pem);
    IF v_info.this_update IS NULL THEN
        RAISE EXCEPTION 'the revocation list''s date cannot be read' USING ERRCODE = '22023';
    END IF;
    INSERT INTO ioffice.crl (pem, issuer, this_update, next_update, serials)
    VALUES (pem, v_info.issuer, v_info.this_update, v_info.next_update, v_info.serials)
    RETURNING id INTO v_id;
    UPDATE ioffice.certificate c SET revoked_at = v_info.this_update
    WHERE c.issuer = v_info.issuer AND c.serial = ANY (v_info.serials) AND c.revoked_at IS NULL;
    PERFORM ioffice._audit('crl', v_id, 'add', NULL, NULL,
                           jsonb_build_object('issuer', v_info.issuer, 'revoked', v_info.serials));
    PERFORM ioffice._engine_leave();
    RETURN v_id;
END
$$;
REVOKE ALL ON FUNCTION register_certificate(text, text, text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION add_trust_anchor(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION add_crl(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION register_certificate(text, text, text, text, text) TO ioffice_admin;
GRANT EXECUTE ON FUNCTION add_trust_anchor(text) TO ioffice_admin;
GRANT EXECUTE ON FUNCTION add_crl(text) TO ioffice_admin;
GRANT SELECT ON trust_anchor, crl TO PUBLIC;
-- where a key lies in the keystore is the DBAs' business
REVOKE SELECT ON certificate FROM PUBLIC;
GRANT SELECT (id, kind, person_id, agency_id, pem, subject, issuer, serial, not_before, not_after,
              fingerprint, revoked_at, registered_at) ON certificate TO PUBLIC;
GRANT SELECT ON certificate TO ioffice_admin;
CREATE TRIGGER audit_direct AFTER INSERT OR UPDATE OR DELETE ON certificate
    FOR EACH ROW WHEN (_outside_engine()) EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct_truncate AFTER TRUNCATE ON certificate
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct AFTER INSERT OR UPDATE OR DELETE ON trust_anchor
    FOR EACH ROW WHEN (_outside_engine()) EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct_truncate AFTER TRUNCATE ON trust_anchor
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_direct();
-- verify() trusts the revocation lists as it trusts the anchors
CREATE TRIGGER audit_direct AFTER INSERT OR UPDATE OR DELETE ON crl
    FOR EACH ROW WHEN (_outside_engine()) EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct_truncate AFTER TRUNCATE ON crl
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_direct();

CREATE FUNCTION verify(file bigint)
    RETURNS TABLE (signer text, kind text, signed_at timestamptz, subject text, valid boolean, reason text,
                   revision int, after_signing text, level text, timestamped_at timestamptz)
    AS 'MODULE_PATHNAME', 'ioffice_verify'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION verify(bigint) IS
  'Every signature on a file, detached or embedded in a PDF (revision, and what later revisions added: none, signatures, or content), checked against the registered trust anchors and revocation lists (Kiểm tra VB đã ký); level: the PAdES baseline level reached (B-B, B-T with a signature timestamp, B-LT with the chain and revocation lists in the document''s DSS), timestamped_at: the time the timestamp proves; a signature whose certificate expired after its timestamp is valid at signing time';

-- verify()'s rows for bytes that are not a file yet: the PDF attachments of
-- an edXML package, checked before it is filed (99_edxml_axis.sql)
CREATE FUNCTION _pdf_signatures(content bytea)
    RETURNS TABLE (signer text, kind text, signed_at timestamptz, subject text, valid boolean, reason text,
                   revision int, after_signing text, level text, timestamped_at timestamptz)
    AS 'MODULE_PATHNAME', 'ioffice_pdf_signatures'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION _pdf_signatures(bytea) FROM PUBLIC;
COMMENT ON FUNCTION _pdf_signatures(bytea) IS
  'The signatures embedded in a PDF given as bytes (an edXML attachment before it is filed), checked as verify() checks a file; no signer or kind';

-- one row per served database: its signer's and its deliverer's processes
-- (pid, state and started_at of the row are the signer's; state shows the
-- deliverer's when the signer is idle), and its connection failures
CREATE FUNCTION _worker_slots(OUT database text, OUT pid int, OUT state text, OUT started_at timestamptz,
                              OUT last_batch_at timestamptz, OUT batches bigint, OUT jobs_done bigint,
                              OUT jobs_failed bigint, OUT deliveries bigint, OUT deliveries_failed bigint,
                              OUT last_error text, OUT last_error_at timestamptz,
                              OUT signer_pid int, OUT signer_state text,
                              OUT delivery_pid int, OUT delivery_state text,
                              OUT delivery_started_at timestamptz,
                              OUT connect_failures int, OUT next_connect_at timestamptz)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'ioffice_worker_slots_sql' LANGUAGE C VOLATILE;
-- last_error may quote another system's answer or a signing failure: DBAs only
REVOKE ALL ON FUNCTION _worker_slots() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION _worker_slots() TO ioffice_admin;

-- one row per served database: its signer's converter of Word and Excel
-- files to PDF (the helper's and its LibreOffice's pids, NULL when not
-- running), the files converted and the signatures failed in conversion
CREATE FUNCTION _converter_slots(OUT database text, OUT converter_pid int, OUT soffice_pid int,
                                 OUT conversions_done bigint, OUT conversions_failed bigint)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'ioffice_converter_slots_sql' LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION _converter_slots() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION _converter_slots() TO ioffice_admin;

CREATE FUNCTION signature_p7s(file bigint) RETURNS bytea
    AS 'MODULE_PATHNAME', 'ioffice_signature_p7s'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION signature_p7s(bigint) IS
  'Every signature of a file in one detached CMS (.p7s) that openssl cms -verify accepts';
