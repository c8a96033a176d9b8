-- Remote signing services (issue 13, item 2): a personal signature whose
-- signer has a credential with a signing service (VNPT SmartCA, Viettel
-- MySign, ... shaped like the Cloud Signature Consortium API) is signed
-- through it: the signing worker prepares the revision as signing_request()
-- does, sends the digest, and polls until the person confirms on their
-- phone, refuses, or the request expires (workers/remote_signing.c).

-- The services.  The client secret authenticates this system to the
-- service: only the extension's owner (the worker, and the SECURITY DEFINER
-- function that sets it) reads it; DBAs and applications read the other
-- columns (column privileges below).
CREATE TABLE signing_provider (
    id            bigserial PRIMARY KEY,
    name          text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9_.-]{1,63}$'),
    -- the CSC API's base: {base_url}/signatures/signHash, {base_url}/signatures/status
    base_url      text NOT NULL CHECK (base_url ~ '^https?://[^\s]+$' AND length(base_url) <= 2000),
    client_id     text NOT NULL CHECK (length(client_id) BETWEEN 1 AND 500),
    client_secret text NOT NULL CHECK (length(client_secret) BETWEEN 1 AND 500),
    timeout_ms    int NOT NULL DEFAULT 10000 CHECK (timeout_ms BETWEEN 100 AND 600000),
    enabled       boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE signing_provider IS 'Remote signing services (CSC API): base URL, this system''s client id and secret (the secret readable by the owner only)';
COMMENT ON COLUMN signing_provider.client_secret IS 'This system''s secret with the service (HTTP Basic with client_id); readable by the owner only';

-- A person's credential with a service: the service's user id and the
-- credential (key and certificate) it signs with; one per person.  Its
-- presence sends the person's pending signatures to the service.
CREATE TABLE signing_credential (
    person_id     bigint PRIMARY KEY REFERENCES person,
    provider_id   bigint NOT NULL REFERENCES signing_provider,
    user_id       text NOT NULL CHECK (length(user_id) BETWEEN 1 AND 200),
    credential_id text NOT NULL CHECK (length(credential_id) BETWEEN 1 AND 200),
    registered_at timestamptz NOT NULL DEFAULT now(),
    -- a credential is one person's: never two persons signing with one key
    UNIQUE (provider_id, credential_id)
);
COMMENT ON TABLE signing_credential IS 'A person''s credential with a remote signing service (the service''s user id and credential id); the person''s pending signatures go through it';

-- One request to a service: what was prepared (as token_request), the
-- transaction id sent with every call, the service's response id, and the
-- state: pending until confirmed, refused, expired or failed.  The signing
-- worker writes it; the embedding and the transaction's end are one
-- transaction.  No foreign keys, as token_request.
CREATE TABLE signing_transaction (
    id             bigserial PRIMARY KEY,
    signature_id   bigint NOT NULL,
    provider_id    bigint NOT NULL,
    person_id      bigint NOT NULL,
    user_id        text NOT NULL,
    credential_id  text NOT NULL,
    transaction_id text NOT NULL UNIQUE,
    response_id    text,
    certificate_id bigint NOT NULL,
    file_id        bigint NOT NULL,
    prepared       bytea,
    byte_range     bigint[] CHECK (byte_range IS NULL OR cardinality(byte_range) = 4),
    content_digest bytea NOT NULL,
    -- what the service signs: the SHA-256 of the CMS signed attributes,
    -- with signAlgo (the OID of rsaEncryption or ecdsa-with-SHA256)
    attrs_digest   bytea NOT NULL,
    sign_algo      text NOT NULL,
    state          text NOT NULL DEFAULT 'pending'
                   CHECK (state IN ('pending', 'confirmed', 'refused', 'expired', 'failed')),
    requested_at   timestamptz NOT NULL DEFAULT now(),
    sent_at        timestamptz,
    polls          int NOT NULL DEFAULT 0,
    failures       int NOT NULL DEFAULT 0,
    next_poll_at   timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    finished_at    timestamptz,
    reason         text,
    CHECK ((state = 'pending') = (finished_at IS NULL)),
    CHECK ((prepared IS NULL) = (byte_range IS NULL))
);
CREATE UNIQUE INDEX signing_transaction_pending_idx ON signing_transaction (signature_id)
    WHERE state = 'pending';
CREATE INDEX signing_transaction_due_idx ON signing_transaction (next_poll_at)
    WHERE state = 'pending';
CREATE INDEX signing_transaction_signature_idx ON signing_transaction (signature_id);
COMMENT ON TABLE signing_transaction IS 'Requests to remote signing services: the prepared revision, the transaction and response ids, the state (pending, confirmed, refused, expired, failed), the next poll, the expiry';

SELECT pg_catalog.pg_extension_config_dump('signing_provider', '');
SELECT pg_catalog.pg_extension_config_dump('signing_provider_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('signing_credential', '');
SELECT pg_catalog.pg_extension_config_dump('signing_transaction', '');
SELECT pg_catalog.pg_extension_config_dump('signing_transaction_id_seq', '');

REVOKE ALL ON signing_provider, signing_credential, signing_transaction FROM PUBLIC;
GRANT SELECT (id, name, base_url, client_id, timeout_ms, enabled, created_at)
    ON signing_provider TO ioffice_admin, ioffice_app;
GRANT SELECT ON signing_credential TO ioffice_admin;
GRANT SELECT (id, signature_id, provider_id, person_id, user_id, credential_id, transaction_id,
              response_id, certificate_id, file_id, sign_algo, state, requested_at, sent_at, polls, failures,
              next_poll_at, expires_at, finished_at, reason)
    ON signing_transaction TO ioffice_admin;
CREATE TRIGGER audit_direct AFTER INSERT OR UPDATE OR DELETE ON signing_provider
    FOR EACH ROW WHEN (_outside_engine()) EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct_truncate AFTER TRUNCATE ON signing_provider
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct AFTER INSERT OR UPDATE OR DELETE ON signing_credential
    FOR EACH ROW WHEN (_outside_engine()) EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct_truncate AFTER TRUNCATE ON signing_credential
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_direct();

-- A service registered, or its URL, client id, secret or state changed
-- (the same name again).
CREATE FUNCTION register_signing_provider(name text, base_url text, client_id text,
                                          client_secret text, enabled boolean DEFAULT true)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id bigint;
    v_new boolean;
BEGIN
    PERFORM ioffice._engine_enter();
    IF name IS NULL OR base_url IS NULL OR client_id IS NULL OR client_secret IS NULL
       OR enabled IS NULL THEN
        RAISE EXCEPTION 'a signing service needs its name, base URL, client id and secret'
            USING ERRCODE = '22023';
    END IF;
    IF name !~ '^[A-Za-z0-9_.-]{1,63}$' THEN
        RAISE EXCEPTION 'signing service name "%" is not a plain name', left(name, 60)
            USING ERRCODE = '22023', HINT = 'Letters, digits, _ . - (at most 63).';
    END IF;
    IF base_url !~ '^https?://[^\s]+$' OR length(base_url) > 2000 THEN
        RAISE EXCEPTION 'the base URL "%" is not an http or https URL', left(base_url, 60)
            USING ERRCODE = '22023';
    END IF;
    IF length(client_id) NOT BETWEEN 1 AND 500 OR length(client_secret) NOT BETWEEN 1 AND 500 THEN
        RAISE EXCEPTION 'the client id and secret are 1 to 500 characters' USING ERRCODE = '22023';
    END IF;
    INSERT INTO ioffice.signing_provider AS p (name, base_url, client_id, client_secret, enabled)
    VALUES (name, rtrim(base_url, '/'), client_id, client_secret, enabled)
    ON CONFLICT ON CONSTRAINT signing_provider_name_key DO UPDATE
       SET base_url = EXCLUDED.base_url, client_id = EXCLUDED.client_id,
           client_secret = EXCLUDED.client_secret, enabled = EXCLUDED.enabled
    RETURNING p.id, (xmax = 0) INTO v_id, v_new;
    -- the secret stays out of the audit trail
    PERFORM ioffice._audit('signing_provider', v_id, CASE WHEN v_new THEN 'register' ELSE 'update' END,
                           NULL, NULL,
                           jsonb_build_object('name', name, 'base_url', rtrim(base_url, '/'),
                                              'client_id', client_id, 'enabled', enabled));
    PERFORM ioffice._engine_leave();
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION register_signing_provider(text, text, text, text, boolean) IS
  'Registers a remote signing service (CSC API) by name, or changes it: base URL, this system''s client id and secret, enabled';

-- A person's credential with a service (replacing the person's earlier one).
CREATE FUNCTION register_signing_credential(login text, provider text, user_id text,
                                            credential_id text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_person bigint;
    v_provider bigint;
BEGIN
    PERFORM ioffice._engine_enter();
    IF login IS NULL OR provider IS NULL OR user_id IS NULL OR credential_id IS NULL THEN
        RAISE EXCEPTION 'a signing credential needs the login, the service, the user id and the credential id'
            USING ERRCODE = '22023';
    END IF;
    IF length(user_id) NOT BETWEEN 1 AND 200 OR length(credential_id) NOT BETWEEN 1 AND 200 THEN
        RAISE EXCEPTION 'the user id and credential id are 1 to 200 characters' USING ERRCODE = '22023';
    END IF;
    SELECT p.id INTO v_person FROM ioffice.person p WHERE p.login = register_signing_credential.login;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown person "%"', left(login, 60) USING ERRCODE = '42704';
    END IF;
    SELECT s.id INTO v_provider FROM ioffice.signing_provider s WHERE s.name = provider;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown signing service "%"', left(provider, 60) USING ERRCODE = '42704';
    END IF;
    IF EXISTS (SELECT 1 FROM ioffice.signing_credential c
                WHERE c.provider_id = v_provider
                  AND c.credential_id = register_signing_credential.credential_id
                  AND c.person_id <> v_person) THEN
        RAISE EXCEPTION 'this credential is another person''s' USING ERRCODE = '23505',
              DETAIL = 'A credential signs for one person only.';
    END IF;
    INSERT INTO ioffice.signing_credential AS c (person_id, provider_id, user_id, credential_id)
    VALUES (v_person, v_provider, user_id, credential_id)
    ON CONFLICT (person_id) DO UPDATE
       SET provider_id = EXCLUDED.provider_id, user_id = EXCLUDED.user_id,
           credential_id = EXCLUDED.credential_id, registered_at = now();
    PERFORM ioffice._audit('signing_credential', v_person, 'register', NULL, NULL,
                           jsonb_build_object('login', login, 'provider', provider,
                                              'user_id', user_id, 'credential_id', credential_id));
    PERFORM ioffice._engine_leave();
END
$$;
COMMENT ON FUNCTION register_signing_credential(text, text, text, text) IS
  'Registers a person''s credential with a remote signing service (the service''s user id, the credential id): their pending signatures go to it';

-- The person signs through the service no more (their signature tool, or a
-- key file, instead).
CREATE FUNCTION remove_signing_credential(login text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_person bigint;
    v_found boolean;
BEGIN
    PERFORM ioffice._engine_enter();
    SELECT p.id INTO v_person FROM ioffice.person p WHERE p.login = remove_signing_credential.login;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown person "%"', left(login, 60) USING ERRCODE = '42704';
    END IF;
    DELETE FROM ioffice.signing_credential c WHERE c.person_id = v_person;
    v_found := FOUND;
    IF v_found THEN
        PERFORM ioffice._audit('signing_credential', v_person, 'remove', NULL, NULL,
                               jsonb_build_object('login', login));
    END IF;
    PERFORM ioffice._engine_leave();
    RETURN v_found;
END
$$;
COMMENT ON FUNCTION remove_signing_credential(text) IS
  'Removes a person''s credential with a remote signing service; true if there was one';

REVOKE ALL ON FUNCTION register_signing_provider(text, text, text, text, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION register_signing_credential(text, text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION remove_signing_credential(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION register_signing_provider(text, text, text, text, boolean) TO ioffice_admin;
GRANT EXECUTE ON FUNCTION register_signing_credential(text, text, text, text) TO ioffice_admin;
GRANT EXECUTE ON FUNCTION remove_signing_credential(text) TO ioffice_admin;
