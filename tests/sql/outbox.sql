\set SHOW_CONTEXT never
-- The HTTP outbox, seen from SQL (no worker serves this database, so what
-- is queued stays pending): which endpoints an event goes to, the body every
-- attempt sends, events of the engine, refusals, and who may see secrets.

-- start from an empty outbox (the dossier test before this one queued
-- events of its own), numbered from 1
DELETE FROM ioffice.outbox;
DELETE FROM ioffice.endpoint;
ALTER SEQUENCE ioffice.outbox_id_seq RESTART;

-- no endpoint yet: nothing is queued
SELECT ioffice.emit('app.issued', '{"document": 1}') AS queued;

INSERT INTO ioffice.endpoint (name, url, secret, events) VALUES
    ('tthc', 'http://127.0.0.1:9/tthc', 'tthc-secret-0123456789', '{document.issued,number.taken,app.issued}'),
    ('dossiers', 'https://igate.example.vn/hook', 'igate-secret-0123456789', '{app.dossier.*}'),
    ('everything', 'http://127.0.0.1:9/all', 'all-secret-0123456789', '{*}');
INSERT INTO ioffice.endpoint (name, url, secret, events, enabled)
VALUES ('off', 'http://127.0.0.1:9/off', 'off-secret-0123456789', '{*}', false);

-- endpoints are DBAs' decisions on the record, their secrets left out
SELECT action, detail->'new'->>'url' AS url, detail->'new' ? 'secret' AS secret_recorded
FROM ioffice.audit WHERE entity = 'endpoint' AND action = 'direct_insert' ORDER BY id DESC LIMIT 2;

-- exact names, prefixes, '*'; a disabled endpoint gets nothing; the prefix
-- 'app.dossier.*' is a whole word
SELECT ioffice.emit('app.issued', '{"document": 1}') AS issued,
       ioffice.emit('app.dossier.status', '{"code": "x"}') AS dossier,
       ioffice.emit('app.dossierx.status') AS not_a_dossier_event,
       ioffice.emit('app.dossier') AS not_under_the_prefix;
SELECT o.event, e.name AS endpoint, o.status, o.attempts
FROM ioffice.outbox o JOIN ioffice.endpoint e ON e.id = o.endpoint_id
ORDER BY o.id;

-- the body: built once, the same bytes at every attempt, carrying the key
SELECT jsonb_object_keys(body) AS key FROM ioffice.outbox WHERE id = 1 ORDER BY 1;
SELECT body->>'id' = idempotency_key::text AS id_is_the_key,
       body->>'event' = event AS event_named,
       body->'data' AS data,
       body->>'at' ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$' AS at_written_in_utc,
       (body->>'at')::timestamptz BETWEEN created_at - interval '1 minute' AND now() AS at_is_now
FROM ioffice.outbox WHERE id = 1;

-- an event of a rolled-back transaction is gone with it
BEGIN;
SELECT ioffice.emit('test.rolled_back') AS queued;
ROLLBACK;
SELECT count(*) AS rolled_back_rows FROM ioffice.outbox WHERE event = 'test.rolled_back';

-- events of the engine: an issued document, a number taken
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('CV', 'V/v thông báo lịch tiếp dân') AS doc \gset
SELECT ioffice.attach(:doc, 'lich_tiep_dan.pdf', content) FROM pdf \g /dev/null
-- the SMS and e-mail ticks notify the receiver: dai has a phone, no e-mail
-- address, so only the SMS is queued
UPDATE ioffice.person SET phone = '0912000222', email = NULL WHERE login = 'dai';
SELECT ioffice.act(:doc, 'submit', 'dai', 'Kính trình', '{"sms": true, "email": true}');
SELECT o.event, e.name AS endpoint, o.body->'data'->>'to' AS "to", o.body->'data'->>'login' AS login,
       o.body->'data'->'about'->>'entity' AS entity, o.body->'data'->'about'->>'id' = :'doc' AS this_document,
       o.body->'data'->'about'->>'action' AS action,
       replace(o.body->'data'->>'message', :'doc', '<doc>') AS message
FROM ioffice.outbox o JOIN ioffice.endpoint e ON e.id = o.endpoint_id
WHERE o.event LIKE 'notify.%' ORDER BY o.id;
-- the audit records the notices that go out, and only those
SELECT detail ? 'notified_sms' AS sms_recorded, detail ? 'notified_email' AS email_recorded
FROM ioffice.audit WHERE entity = 'document' AND entity_id = :doc AND action = 'submit';
-- with no endpoint taking notify.*, nothing goes out and nothing is recorded as sent
BEGIN;
UPDATE ioffice.endpoint SET enabled = false;
SET LOCAL ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('CV', 'V/v không có cổng tin nhắn') AS quiet \gset
SELECT ioffice.attach(:quiet, 'a.pdf', content) FROM pdf \g /dev/null
SELECT ioffice.act(:quiet, 'submit', 'dai', NULL, '{"sms": true}');
SELECT detail ? 'notified_sms' AS sms_recorded
FROM ioffice.audit WHERE entity = 'document' AND entity_id = :quiet AND action = 'submit';
SELECT count(*) AS queued FROM ioffice.outbox WHERE body->'data'->'about'->>'id' = :'quiet';
ROLLBACK;
SET ioffice.actor = 'dai';
SELECT ioffice.act(:doc, 'quick_approve');
SET ioffice.actor = 'regress_thuy';
SELECT ioffice.act(:doc, 'issue');
SELECT e.name AS endpoint,
       o.body->'data'->>'document' = :'doc' AS this_document,
       (o.body->'data') - '{document,issued_on,identifier,register,number,symbol}'::text[] AS data,
       o.body->'data'->>'identifier' = d.identifier AS identifier_ok,
       (o.body->'data'->>'number')::int = d.number AND o.body->'data'->>'symbol' = d.symbol AS number_ok
FROM ioffice.outbox o JOIN ioffice.endpoint e ON e.id = o.endpoint_id
JOIN ioffice.document d ON d.id = :doc
WHERE o.event = 'document.issued' AND o.body->'data'->>'document' = :'doc' ORDER BY e.name;
SELECT number, symbol FROM ioffice.take_number(
    (SELECT id FROM ioffice.register WHERE agency_id = (SELECT id FROM ioffice.unit WHERE code = '000.00.32.H41')
        AND direction = 'outgoing' AND NOT confidential ORDER BY id LIMIT 1), 'QĐ') \gset
SELECT e.name AS endpoint, (o.body->'data'->>'number')::int = :number AS number_ok,
       o.body->'data'->>'symbol' = :'symbol' AS symbol_ok
FROM ioffice.outbox o JOIN ioffice.endpoint e ON e.id = o.endpoint_id
WHERE o.event = 'number.taken' ORDER BY e.name;
-- never a word of confidential ones: a secret document issued, a number
-- taken from the confidential series
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('CV', 'V/v bảo vệ bí mật', '{"confidentiality": "secret"}') AS sdoc \gset
SELECT ioffice.attach(:sdoc, 'mat.pdf', content) FROM pdf \g /dev/null
SELECT ioffice.act(:sdoc, 'submit', 'dai') \g /dev/null
SET ioffice.actor = 'dai';
SELECT ioffice.act(:sdoc, 'quick_approve') \g /dev/null
SET ioffice.actor = 'regress_thuy';
SELECT ioffice.act(:sdoc, 'issue');
SELECT symbol AS secret_symbol FROM ioffice.document WHERE id = :sdoc \gset
SELECT symbol AS secret_taken FROM ioffice.take_number(
    (SELECT id FROM ioffice.register WHERE agency_id = (SELECT id FROM ioffice.unit WHERE code = '000.00.32.H41')
        AND direction = 'outgoing' AND confidential ORDER BY id LIMIT 1), 'QĐ') \gset
SELECT :'secret_symbol' LIKE '%-M' AND :'secret_taken' LIKE '%-M' AS both_of_the_secret_series,
       count(*) AS announced
FROM ioffice.outbox
WHERE strpos(body::text, :'secret_symbol') > 0 OR strpos(body::text, :'secret_taken') > 0
   OR (event = 'document.issued' AND body->'data'->>'document' = :'sdoc');
RESET ioffice.actor;

-- refusals: the system's own events cannot be faked
SELECT ioffice.emit('document.issued', '{"document": 1}');
\echo :SQLSTATE
SELECT ioffice.emit('dossier.status');
\echo :SQLSTATE
SELECT ioffice.emit('notify.sms', '{"to": "0913383345"}');
\echo :SQLSTATE
SELECT ioffice.emit(NULL);
\echo :SQLSTATE
SELECT ioffice.emit('Document.Issued');
\echo :SQLSTATE
SELECT ioffice.emit('document..issued');
\echo :SQLSTATE
SELECT ioffice.emit('document.');
\echo :SQLSTATE
SELECT ioffice.emit('');
\echo :SQLSTATE
SELECT ioffice.emit(repeat('a', 101));
\echo :SQLSTATE
SELECT ioffice.emit('1document');
\echo :SQLSTATE
SELECT ioffice.emit('app.big', jsonb_build_object('file', repeat('x', 300000)));
\echo :SQLSTATE
SELECT ioffice.emit('test.null_data', NULL) AS queued_with_empty_data;
SELECT body->'data' AS data FROM ioffice.outbox WHERE event = 'test.null_data' LIMIT 1;
-- (terse: the failing row's DETAIL carries its creation time)
\set VERBOSITY terse
INSERT INTO ioffice.endpoint (name, url, secret) VALUES ('ftp', 'ftp://example.vn/x', 'ftp-secret-0123456789');
\echo :SQLSTATE
INSERT INTO ioffice.endpoint (name, url, secret) VALUES ('short', 'http://example.vn/x', 'short');
\echo :SQLSTATE
INSERT INTO ioffice.endpoint (name, url, secret, events) VALUES ('none', 'http://example.vn/x', 'none-secret-0123456789', '{}');
\echo :SQLSTATE
INSERT INTO ioffice.endpoint (name, url, secret, events) VALUES ('nulls', 'http://example.vn/x', 'nulls-secret-0123456789', '{NULL}');
\echo :SQLSTATE
INSERT INTO ioffice.endpoint (name, url, secret, timeout_ms) VALUES ('slow', 'http://example.vn/x', 'slow-secret-0123456789', 0);
\echo :SQLSTATE
\set VERBOSITY default
SELECT ioffice.outbox_requeue();
\echo :SQLSTATE
SELECT ioffice.outbox_requeue(1, 'tthc');
\echo :SQLSTATE
SELECT ioffice.outbox_requeue(1);
\echo :SQLSTATE
SELECT ioffice.outbox_requeue(-5);
\echo :SQLSTATE
SELECT ioffice.outbox_requeue(endpoint => 'nowhere');
\echo :SQLSTATE
SELECT ioffice.outbox_requeue(endpoint => 'tthc') AS nothing_dead;

-- a dead letter goes back into the queue with its attempts reset
UPDATE ioffice.outbox SET status = 'dead', attempts = 12, last_error = 'HTTP 503' WHERE id = 1;
-- the worker serves database postgres: its row has that database's queues,
-- which this one cannot read (NULL), not this database's
SELECT database, outbox_pending > 0 AS has_pending, outbox_dead, outbox_last_dead FROM ioffice.worker_status;
SELECT ioffice.outbox_requeue(1) AS requeued;
SELECT status, attempts, next_attempt_at <= now() AS due FROM ioffice.outbox WHERE id = 1;

-- delivered events are purged on request; pending and dead ones never
UPDATE ioffice.outbox SET status = 'delivered', delivered_at = now() - interval '2 days', attempts = 1
 WHERE id IN (2, 3);
UPDATE ioffice.outbox SET status = 'dead' WHERE id = 4;
SELECT ioffice.outbox_purge(now() - interval '1 day') AS purged;
SELECT id, status FROM ioffice.outbox WHERE id <= 5 ORDER BY id;

-- who may see what: secrets stay with the owner; DBAs configure endpoints
-- and read the outbox; others see neither
SET SESSION AUTHORIZATION regress_outsider;
SELECT count(*) FROM ioffice.outbox;
\echo :SQLSTATE
SELECT name FROM ioffice.endpoint;
\echo :SQLSTATE
SELECT ioffice.emit('test.outsider');
\echo :SQLSTATE
SELECT ioffice.outbox_requeue(1);
\echo :SQLSTATE
SELECT ioffice.outbox_purge(now());
\echo :SQLSTATE
SELECT count(*) FROM ioffice.worker_status;
\echo :SQLSTATE
RESET SESSION AUTHORIZATION;
GRANT ioffice_admin TO regress_admin1;
SET SESSION AUTHORIZATION regress_admin1;
SELECT name, url, events, enabled FROM ioffice.endpoint ORDER BY id;
SELECT secret FROM ioffice.endpoint;
\echo :SQLSTATE
SELECT count(*) > 0 AS reads_outbox FROM ioffice.outbox;
SELECT count(*) AS workers_seen FROM ioffice.worker_status;
UPDATE ioffice.endpoint SET enabled = true WHERE name = 'off';
RESET SESSION AUTHORIZATION;
REVOKE ioffice_admin FROM regress_admin1;
-- the last test that logs in as these (made by security.sql)
DROP ROLE regress_admin1, regress_outsider;
