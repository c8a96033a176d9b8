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

-- A PNG as the PDF helper will draw it: the signature, an IHDR chunk first
-- with a width and height from 1 to 4096 pixels, at most 1 MB; WHAT names
-- the image in the message.  (The image is decoded only by the PDF helper,
-- outside the server; this only refuses at once what it could not draw.)
CREATE FUNCTION _check_png(png bytea, what text) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_width bigint;
    v_height bigint;
BEGIN
    IF png IS NULL OR length(png) < 33 OR substring(png FROM 1 FOR 8) <> '\x89504e470d0a1a0a'::bytea
       OR substring(png FROM 13 FOR 4) <> '\x49484452'::bytea THEN
        RAISE EXCEPTION '% must be a PNG', what USING ERRCODE = '22023',
              DETAIL = 'A PNG starts with its signature and an IHDR chunk.';
    END IF;
    IF length(png) > 1048576 THEN
        RAISE EXCEPTION '% must be at most 1 MB', what USING ERRCODE = '22023';
    END IF;
    v_width := (get_byte(png, 16)::bigint << 24) | (get_byte(png, 17) << 16) | (get_byte(png, 18) << 8) | get_byte(png, 19);
    v_height := (get_byte(png, 20)::bigint << 24) | (get_byte(png, 21) << 16) | (get_byte(png, 22) << 8) | get_byte(png, 23);
    IF v_width NOT BETWEEN 1 AND 4096 OR v_height NOT BETWEEN 1 AND 4096 THEN
        RAISE EXCEPTION '% is % x % pixels', what, v_width, v_height USING ERRCODE = '22023',
              HINT = 'Scan it at 1 to 4096 pixels a side.';
    END IF;
END
$$;
REVOKE ALL ON FUNCTION _check_png(bytea, text) FROM PUBLIC;

CREATE FUNCTION set_signature_image(login text, png bytea) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_person bigint;
BEGIN
    PERFORM ioffice._engine_enter();
    PERFORM ioffice._check_png(png, 'a signature image');
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
    PERFORM ioffice._check_png(png, 'a seal image');
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
