\set SHOW_CONTEXT never
-- Row-level security: a person sees a document when they drafted it, hold or
-- held a task on it, are its agency's clerk, or are an admin; nobody else,
-- not even through the tables.  Writes go through the functions only.
SELECT ioffice.add_person('regress_admin1', 'Quản trị', 'Quản trị hệ thống',
       (SELECT id FROM ioffice.unit WHERE code = '000.00.32.H41'), '{admin}');
-- roles of some seed persons (a person acts as the session user whose name
-- is their login, so their logins are regress_ names too); the last test
-- that logs in as them (confidential_registers) drops them
CREATE ROLE regress_luan LOGIN;
CREATE ROLE regress_tuan LOGIN;
CREATE ROLE regress_thuy LOGIN;
CREATE ROLE regress_xa_vt LOGIN;
CREATE ROLE regress_admin1 LOGIN;
CREATE ROLE regress_outsider LOGIN;
CREATE ROLE regress_app LOGIN IN ROLE ioffice_app;

-- a document only regress_luan and dai have handled
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('CV', 'Văn bản riêng của Văn phòng') AS priv \gset
SELECT ioffice.attach(:priv, 'rieng.pdf', content) FROM pdf;
RESET ioffice.actor;

SET SESSION AUTHORIZATION regress_luan;
SELECT count(*) > 0 AS sees_own FROM ioffice.document WHERE id = :priv;
SELECT count(*) AS files_of_priv FROM ioffice.file WHERE document_id = :priv;
-- documents of the department's specialist are not regress_luan's
SELECT count(*) AS sees_tuans FROM ioffice.document d
WHERE d.drafter_id = (SELECT id FROM ioffice.person WHERE login = 'regress_tuan');
RESET SESSION AUTHORIZATION;

SET SESSION AUTHORIZATION regress_tuan;
SELECT count(*) AS tuan_sees_priv FROM ioffice.document WHERE id = :priv;
SELECT count(*) AS tuan_sees_its_files FROM ioffice.file WHERE document_id = :priv;
SELECT count(*) AS tuan_sees_its_tasks FROM ioffice.task WHERE document_id = :priv;
SELECT count(*) AS tuan_sees_its_audit FROM ioffice.audit WHERE entity_id = :priv AND entity = 'document';
SELECT ioffice.trail(:priv);
\echo :SQLSTATE
-- regress_tuan's own case B document is visible, with its whole trail
SELECT count(*) AS tuan_docs FROM ioffice.document;
-- no direct writes
UPDATE ioffice.document SET state = 'issued' WHERE id = :priv;
\echo :SQLSTATE
INSERT INTO ioffice.task (document_id, step, action, sender_id, receiver_id) VALUES (:priv, 9, 'x', 1, 1);
\echo :SQLSTATE
DELETE FROM ioffice.audit;
\echo :SQLSTATE
-- nor rule edits, nor directory changes
UPDATE ioffice.workflow_transition SET delegable = true;
\echo :SQLSTATE
SELECT ioffice.add_person('tuan2', 'X', NULL, 1, '{admin}');
\echo :SQLSTATE
-- and a person cannot name another person: only ioffice_app members can
SET ioffice.actor = 'dai';
SELECT ioffice.actor();
\echo :SQLSTATE
RESET ioffice.actor;
RESET SESSION AUTHORIZATION;

-- the agency's clerk sees every document of the agency; another agency's does not
SELECT count(*) AS agency_docs FROM ioffice.document
WHERE agency_id = (SELECT id FROM ioffice.unit WHERE code = '000.00.32.H41') \gset
SET SESSION AUTHORIZATION regress_thuy;
SELECT count(*) = :agency_docs AS thuy_sees_all_of_agency FROM ioffice.document;
RESET SESSION AUTHORIZATION;
SELECT count(*) AS all_docs FROM ioffice.document \gset
SET SESSION AUTHORIZATION regress_xa_vt;
-- the commune's clerk sees only what was delivered to the commune
SELECT count(*) AS other_clerk_sees,
       count(*) FILTER (WHERE direction = 'incoming' AND source_document_id IS NOT NULL) AS delivered
FROM ioffice.document;
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION regress_admin1;
SELECT count(*) = :all_docs AS admin_sees_all FROM ioffice.document;
RESET SESSION AUTHORIZATION;

-- a role that is no person sees nothing and cannot act
SET SESSION AUTHORIZATION regress_outsider;
SELECT count(*) AS outsider_docs FROM ioffice.document;
SELECT count(*) AS outsider_files FROM ioffice.file;
SELECT ioffice.actor();
\echo :SQLSTATE
SELECT ioffice.create_outgoing('CV', 'x');
\echo :SQLSTATE
-- the directory is readable, people's phones and e-mail addresses and the
-- keystore's file names are not
SELECT login, full_name FROM ioffice.person WHERE login = 'dai';
SELECT phone FROM ioffice.person;
\echo :SQLSTATE
SELECT email FROM ioffice.person;
\echo :SQLSTATE
SELECT count(subject) AS certificates FROM ioffice.certificate;
SELECT key_file FROM ioffice.certificate;
\echo :SQLSTATE
RESET SESSION AUTHORIZATION;

-- the trusted application acts for the person it names
SET SESSION AUTHORIZATION regress_app;
SELECT ioffice.actor() = (SELECT id FROM ioffice.person WHERE login = 'regress_luan') AS no_actor_yet;
\echo :SQLSTATE
BEGIN;
SET LOCAL ioffice.actor = 'regress_luan';
SELECT p.login FROM ioffice.person p WHERE p.id = ioffice.actor();
SELECT count(*) > 0 AS app_sees_as_luan FROM ioffice.document WHERE id = :priv;
COMMIT;
BEGIN;
SET LOCAL ioffice.actor = 'regress_tuan';
SELECT count(*) AS app_sees_as_tuan FROM ioffice.document WHERE id = :priv;
COMMIT;
SET ioffice.actor = 'nobody_at_all';
SELECT ioffice.actor();
\echo :SQLSTATE
RESET ioffice.actor;
RESET SESSION AUTHORIZATION;
