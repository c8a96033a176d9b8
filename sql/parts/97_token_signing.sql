-- Signing on the signer's own device (issue 13, item 1): a personal
-- certificate registered without a key file signs only through the
-- signer's tool (extension/token_signing.c).

-- The request a signer's tool answers: the prepared PDF revision (with the
-- reserved /Contents) and the digests it was asked to sign, one per pending
-- signature, replaced by a new request, gone once the signature is made.
-- Only the extension's functions read or write it.  No foreign keys to
-- signature and file: a request is read only joined with its live rows, and
-- the guards that refuse a TRUNCATE of those tables must still be the ones
-- that speak (not "referenced in a foreign key constraint").
CREATE TABLE token_request (
    signature_id   bigint PRIMARY KEY,
    certificate_id bigint NOT NULL,
    file_id        bigint NOT NULL,
    prepared       bytea,
    byte_range     bigint[] CHECK (byte_range IS NULL OR cardinality(byte_range) = 4),
    content_digest bytea NOT NULL,
    attrs_digest   bytea NOT NULL,
    requested_at   timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    CHECK ((prepared IS NULL) = (byte_range IS NULL))
);
COMMENT ON TABLE token_request IS 'Signing requests handed to signers'' own tools (signing_request): the prepared PDF revision, its /ByteRange, the digests to sign, the expiry';
REVOKE ALL ON token_request FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('token_request', '');

CREATE FUNCTION signing_request(signature bigint) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'ioffice_signing_request'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION signing_request(bigint) IS
  'For the signer''s own tool (token): the prepared PDF (base64) and its /ByteRange, the digest of the CMS signed attributes to sign, the algorithm, the expiry; only the signer, only a pending personal signature without a key file';

CREATE FUNCTION submit_signature(signature bigint, signed bytea) RETURNS text
    AS 'MODULE_PATHNAME', 'ioffice_submit_signature'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION submit_signature(bigint, bytea) IS
  'The answer of the signer''s tool to signing_request: the signed PDF, a detached CMS over the /ByteRange, or the bare signature value over the digest; checked, embedded, and the signature''s new status';
