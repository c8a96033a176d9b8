-- PDF signatures: the images drawn in them (issue 12, item 3)

-- Images of signatures (Decree 30, Appendix I, II.7d and 8): a person's
-- handwritten signature (blue, transparent PNG), centred in the signature
-- block of what they sign; an agency's seal (red, transparent PNG) at its
-- real diameter, covering the left third of the leader's signature image.
-- Drawn by the PDF helper into the signature's widget (its appearance).
CREATE TABLE signature_image (
    person_id   bigint PRIMARY KEY REFERENCES person,
    png         bytea NOT NULL,
    set_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE signature_image IS 'Handwritten signature images (transparent PNG, blue) drawn in a person''s PDF signatures';
CREATE TABLE seal_image (
    agency_id   bigint PRIMARY KEY REFERENCES unit,
    png         bytea NOT NULL,
    diameter_mm numeric NOT NULL CHECK (diameter_mm BETWEEN 10 AND 100),
    set_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE seal_image IS 'Seal images (transparent PNG, red) of agencies with their real diameter, drawn at real size in the organisation''s PDF signatures';
SELECT pg_catalog.pg_extension_config_dump('signature_image', '');
SELECT pg_catalog.pg_extension_config_dump('seal_image', '');

CREATE FUNCTION set_signature_image(login text, png bytea) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_person bigint;
BEGIN
    PERFORM ioffice._engine_enter();
    IF png IS NULL OR substring(png FROM 1 FOR 8) <> '\x89504e470d0a1a0a'::bytea THEN
        RAISE EXCEPTION 'a signature image must be a PNG' USING ERRCODE = '22023';
    END IF;
    IF length(png) > 1048576 THEN
        RAISE EXCEPTION 'a signature image must be at most 1 MB' USING ERRCODE = '22023';
    END IF;
    SELECT p.id INTO v_person FROM ioffice.person p WHERE p.login = set_signature_image.login;
    IF v_person IS NULL THEN
        RAISE EXCEPTION 'unknown person %', left(set_signature_image.login, 60) USING ERRCODE = '42704';
    END IF;
    INSERT INTO ioffice.signature_image (person_id, png) VALUES (v_person, png)
    ON CONFLICT (person_id) DO UPDATE SET png = EXCLUDED.png, set_at = now();
    PERFORM ioffice._audit('person', v_person, 'set_signature_image', NULL, NULL,
                           jsonb_build_object('sha256', encode(sha256(png), 'hex')));
    PERFORM ioffice._engine_leave();
END
$$;

CREATE FUNCTION set_seal_image(agency bigint, png bytea, diameter_mm numeric) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM ioffice._engine_enter();
    IF png IS NULL OR substring(png FROM 1 FOR 8) <> '\x89504e470d0a1a0a'::bytea THEN
        RAISE EXCEPTION 'a seal image must be a PNG' USING ERRCODE = '22023';
    END IF;
    IF length(png) > 1048576 THEN
        RAISE EXCEPTION 'a seal image must be at most 1 MB' USING ERRCODE = '22023';
    END IF;
    IF diameter_mm IS NULL OR diameter_mm NOT BETWEEN 10 AND 100 THEN
        RAISE EXCEPTION 'a seal''s diameter is from 10 to 100 mm' USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ioffice.unit u WHERE u.id = set_seal_image.agency AND u.kind = 'agency') THEN
        RAISE EXCEPTION 'unknown agency %', set_seal_image.agency USING ERRCODE = '42704';
    END IF;
    INSERT INTO ioffice.seal_image (agency_id, png, diameter_mm)
    VALUES (set_seal_image.agency, png, set_seal_image.diameter_mm)
    ON CONFLICT (agency_id) DO UPDATE SET png = EXCLUDED.png, diameter_mm = EXCLUDED.diameter_mm,
                                          set_at = now();
    PERFORM ioffice._audit('unit', set_seal_image.agency, 'set_seal_image', NULL, NULL,
                           jsonb_build_object('sha256', encode(sha256(png), 'hex'),
                                              'diameter_mm', set_seal_image.diameter_mm));
    PERFORM ioffice._engine_leave();
END
$$;
REVOKE ALL ON FUNCTION set_signature_image(text, bytea) FROM PUBLIC;
REVOKE ALL ON FUNCTION set_seal_image(bigint, bytea, numeric) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION set_signature_image(text, bytea) TO ioffice_admin;
GRANT EXECUTE ON FUNCTION set_seal_image(bigint, bytea, numeric) TO ioffice_admin;
