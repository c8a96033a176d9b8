-- Remote signing services (issue 13, item 2): the tables, the admin
-- functions and who may read what.  No worker runs here: nothing is sent.
SET client_min_messages = warning;

CREATE FUNCTION pg_temp.outcome(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_state text;
    v_message text;
BEGIN
    EXECUTE stmt;
    RETURN 'accepted';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT;
    RETURN v_state || ': ' || v_message;
END
$$;

-- the objects
SELECT to_regclass('ioffice.signing_provider') IS NOT NULL AS provider_table,
       to_regclass('ioffice.signing_credential') IS NOT NULL AS credential_table,
       to_regclass('ioffice.signing_transaction') IS NOT NULL AS transaction_table;

-- who may call the admin functions
SELECT f, has_function_privilege('ioffice_admin', f, 'EXECUTE') AS admin,
       has_function_privilege('ioffice_app', f, 'EXECUTE') AS app,
       has_function_privilege('ioffice_reader', f, 'EXECUTE') AS reader
  FROM unnest(ARRAY['ioffice.register_signing_provider(text, text, text, text, boolean)',
                    'ioffice.register_signing_credential(text, text, text, text)',
                    'ioffice.remove_signing_credential(text)']) AS f
 ORDER BY f;

-- the client secret: no application role reads it, nor the DBAs; the rest they do
SELECT r, has_column_privilege(r, 'ioffice.signing_provider', 'client_secret', 'SELECT') AS secret,
       has_column_privilege(r, 'ioffice.signing_provider', 'base_url', 'SELECT') AS base_url,
       has_table_privilege(r, 'ioffice.signing_credential', 'SELECT') AS credentials,
       has_column_privilege(r, 'ioffice.signing_transaction', 'state', 'SELECT') AS transactions,
       has_column_privilege(r, 'ioffice.signing_transaction', 'prepared', 'SELECT') AS prepared,
       has_table_privilege(r, 'ioffice.signing_provider', 'INSERT') AS writes
  FROM unnest(ARRAY['ioffice_admin', 'ioffice_app', 'ioffice_reader']) AS r
 ORDER BY r;

-- registering a service
SELECT pg_temp.outcome($$SELECT ioffice.register_signing_provider('bad name', 'http://127.0.0.1:9/csc', 'c', 's')$$);
SELECT pg_temp.outcome($$SELECT ioffice.register_signing_provider('smartca', 'ftp://127.0.0.1/csc', 'c', 's')$$);
SELECT pg_temp.outcome($$SELECT ioffice.register_signing_provider('smartca', 'http://127.0.0.1:9/csc', '', 's')$$);
SELECT pg_temp.outcome($$SELECT ioffice.register_signing_provider('smartca', NULL, 'c', 's')$$);
SELECT ioffice.register_signing_provider('smartca', 'http://127.0.0.1:9/csc/', 'ioffice-client', 'regress-secret-1') > 0 AS registered;
-- the same name again changes it
SELECT ioffice.register_signing_provider('smartca', 'http://127.0.0.1:9/csc', 'ioffice-client', 'regress-secret-2')
       = (SELECT id FROM ioffice.signing_provider WHERE name = 'smartca') AS same_id;
SELECT name, base_url, client_id, client_secret = 'regress-secret-2' AS secret_changed, enabled
  FROM ioffice.signing_provider;
SELECT ioffice.register_signing_provider('mysign', 'https://mysign.example/csc/v2', 'ioffice', 'regress-secret-3', false) > 0 AS registered;

-- the secret is in no audit record
SELECT count(*) AS audit_records,
       count(*) FILTER (WHERE detail::text LIKE '%regress-secret%') AS with_secret
  FROM ioffice.audit WHERE entity = 'signing_provider';

-- a person's credential
SELECT pg_temp.outcome($$SELECT ioffice.register_signing_credential('regress_nobody', 'smartca', 'u', 'c')$$);
SELECT pg_temp.outcome($$SELECT ioffice.register_signing_credential('regress_tuan', 'nosuch', 'u', 'c')$$);
SELECT pg_temp.outcome($$SELECT ioffice.register_signing_credential('regress_tuan', 'smartca', '', 'c')$$);
SELECT pg_temp.outcome($$SELECT ioffice.register_signing_credential('regress_tuan', 'smartca', 'user-tuan', 'cred-tuan')$$);
-- a person cannot be given another person's credential
SELECT pg_temp.outcome($$SELECT ioffice.register_signing_credential('regress_luan', 'smartca', 'user-luan', 'cred-tuan')$$);
-- the same credential id at another service is another credential
SELECT pg_temp.outcome($$SELECT ioffice.register_signing_credential('regress_luan', 'mysign', 'user-luan', 'cred-tuan')$$);
-- again for the same person: replaced
SELECT pg_temp.outcome($$SELECT ioffice.register_signing_credential('regress_tuan', 'smartca', 'user-tuan', 'cred-tuan-2')$$);
SELECT p.login, s.name, c.user_id, c.credential_id
  FROM ioffice.signing_credential c JOIN ioffice.person p ON p.id = c.person_id
  JOIN ioffice.signing_provider s ON s.id = c.provider_id ORDER BY p.login;
SELECT ioffice.remove_signing_credential('regress_luan') AS removed,
       ioffice.remove_signing_credential('regress_luan') AS removed_again;
SELECT pg_temp.outcome($$SELECT ioffice.remove_signing_credential('regress_nobody')$$);
SELECT action, count(*) FROM ioffice.audit WHERE entity = 'signing_credential' GROUP BY action ORDER BY action;

-- a DBA reads the services but the secret; an application role reads none of it
CREATE ROLE regress_rs_dba IN ROLE ioffice_admin;
CREATE ROLE regress_rs_app IN ROLE ioffice_app;
SET ROLE regress_rs_dba;
SELECT name, client_id FROM ioffice.signing_provider ORDER BY name;
SELECT pg_temp.outcome($$SELECT client_secret FROM ioffice.signing_provider$$);
SELECT count(*) AS credentials FROM ioffice.signing_credential;
SELECT pg_temp.outcome($$SELECT prepared FROM ioffice.signing_transaction$$);
SELECT pg_temp.outcome($$UPDATE ioffice.signing_provider SET client_secret = 'x'$$);
RESET ROLE;
SET ROLE regress_rs_app;
SELECT pg_temp.outcome($$SELECT client_secret FROM ioffice.signing_provider$$);
SELECT pg_temp.outcome($$SELECT * FROM ioffice.signing_credential$$);
SELECT pg_temp.outcome($$SELECT ioffice.register_signing_credential('regress_luan', 'smartca', 'u', 'c')$$);
RESET ROLE;

-- a credential keeps its person and service
SELECT pg_temp.outcome($$DELETE FROM ioffice.signing_provider WHERE name = 'smartca'$$) LIKE '23503%' AS provider_in_use;

-- clean up
SELECT ioffice.remove_signing_credential('regress_tuan');
DELETE FROM ioffice.signing_provider;
DROP ROLE regress_rs_dba;
DROP ROLE regress_rs_app;
