-- edXML over the interconnection axis, the SQL side: an issued document
-- queues one package per external recipient (not the agencies of this
-- database, not free-text places); the clerk sees it in exchange_status;
-- the incoming workflow's steps queue statuses back for a package from the
-- axis; status packages; the worker's filing function refuses what it
-- must, naming why; permissions and the axis table's rules.
-- (The worker, the transport and two agencies: TAP 036.)
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('CV', 'V/v gửi văn bản qua trục liên thông',
       '{"signer": "dai", "recipients": ["000.00.00.G22", "000.00.00.G09", "001.32.32.H41", "Lưu: VT", "000.00.00.G22"]}') AS adoc \gset
SELECT ioffice.attach(:adoc, 'truc.pdf', content) IS NOT NULL AS attached FROM pdf;
SELECT ioffice.act(:adoc, 'submit', 'dai');
-- not issued: nothing queued
SELECT count(*) AS queued_before_issue FROM ioffice.edxml_outgoing WHERE document_id = :adoc;
SET ioffice.actor = 'dai';
SELECT ioffice.act(:adoc, 'quick_approve');
SET ioffice.actor = 'regress_thuy';
SELECT ioffice.act(:adoc, 'issue');
-- one package per external agency code, once; the local agency got its
-- copy by deliver_internal, the free-text place nothing
SELECT recipient, kind, state, attempts, code IS NULL AS no_code
FROM ioffice.edxml_outgoing WHERE document_id = :adoc ORDER BY recipient;
-- what the clerk sees
SELECT party, direction, code, package, delivery, sent_at IS NULL AS not_sent,
       edxml_document_id = (SELECT identifier FROM ioffice.document WHERE id = :adoc) AS our_identifier
FROM ioffice.exchange_status WHERE document = :adoc ORDER BY party;
-- someone who may not see the document sees none of it
SET ioffice.actor = 'regress_xa_vt';
SELECT count(*) AS seen_by_another_agency FROM ioffice.exchange_status WHERE document = :adoc;
-- the package the worker builds for it (no clerk: the system's) is the
-- one edxml_build gives, less the clerk's StaffInfo
RESET ioffice.actor;
SELECT xpath_exists('//e:MessageHeader/e:To/e:OrganId[text()="000.00.00.G09"]', x, ns) AS addressed,
       (xpath('//e:MessageHeader/e:DocumentId/text()', x, ns))[1]::text
           = (SELECT identifier FROM ioffice.document WHERE id = :adoc) AS document_id,
       NOT xpath_exists('//e:Bussiness/e:StaffInfo/e:Staff', x, ns) AS no_staff
FROM (SELECT ioffice._edxml_package(:adoc, '000.00.00.G09', NULL) AS x) p,
     (SELECT ARRAY[ARRAY['e', 'http://www.mic.gov.vn/TBT/QCVN_102_2016']] AS ns) n;

-- the incoming side: the local copy at the xã, as if it had come from the
-- axis (its edxml_received row), answers each step
SELECT id AS xdoc FROM ioffice.document WHERE source_document_id = :adoc \gset
INSERT INTO ioffice.edxml_received (agency_id, sender_organ_id, edxml_document_id, document_id,
                                    package_sha256)
SELECT d.agency_id, '000.00.32.H41', 'regress-axis-1', d.id, sha256('x') FROM ioffice.document d
WHERE d.id = :xdoc;
SET ioffice.actor = 'regress_xa_vt';
SELECT ioffice.act(:xdoc, 'register');
SELECT ioffice.act(:xdoc, 'submit', 'xa_ct');
SET ioffice.actor = 'xa_ct';
SELECT ioffice.act(:xdoc, 'return');
SET ioffice.actor = 'regress_xa_vt';
SELECT party, direction, code, description, package, delivery, edxml_document_id
FROM ioffice.exchange_status WHERE document = :xdoc ORDER BY code;
RESET ioffice.actor;
-- each queued as a status package to the sender, answering its DocumentId
SELECT o.recipient, o.kind, o.code, o.edxml_document_id, o.state
FROM ioffice.edxml_outgoing o WHERE o.document_id = :xdoc ORDER BY o.code;
SELECT (xpath('//e:MessageHeader/e:StatusCode/text()', x, ns))[1]::text AS status_code,
       (xpath('//e:ResponseFor/e:OrganId/text()', x, ns))[1]::text AS response_for,
       (xpath('//e:ResponseFor/e:DocumentId/text()', x, ns))[1]::text AS response_for_document,
       (xpath('//e:MessageHeader/e:From/e:OrganId/text()', x, ns))[1]::text AS from_organ,
       (xpath('//e:MessageHeader/e:Description/text()', x, ns))[1]::text AS description,
       xml_is_well_formed_document(x::text) AS well_formed
FROM (SELECT ioffice._edxml_status_package(o.id) AS x FROM ioffice.edxml_outgoing o
      WHERE o.document_id = :xdoc AND o.code = '03') p,
     (SELECT ARRAY[ARRAY['e', 'http://www.mic.gov.vn/TBT/QCVN_102_2016']] AS ns) n;
-- a document package is not a status package (the id masked as <doc>)
SELECT min(id) AS dpkg FROM ioffice.edxml_outgoing WHERE document_id = :adoc \gset
SELECT regress_error(format('SELECT ioffice._edxml_status_package(%s)', :dpkg), :dpkg);

-- the worker's filing: needs an axis
INSERT INTO ioffice.exchange_axis (agency_id, transport, url, system_id, secret)
SELECT u.id, 'vxp', 'http://127.0.0.1:9/', '000.00.32.H41', 'regress-secret-0123456789'
FROM ioffice.unit u WHERE u.code = '000.00.32.H41' RETURNING transport, enabled, poll_seconds;
SELECT id AS axis FROM ioffice.exchange_axis \gset
-- not XML: refused (the axis is told why), nothing queued, nothing filed
SELECT ioffice._edxml_axis_file('<edXML><oops>', :axis) ->> 'result' AS malformed;
SELECT ioffice._edxml_axis_file('<!DOCTYPE x [<!ENTITY a "a">]><edXML/>', :axis) ->> 'reason' AS with_dtd;
-- unsigned, and addressed to no agency here: refused, 02 queued to its sender
SELECT r->>'result' AS result, r->>'reason' AS reason
FROM (SELECT ioffice._edxml_axis_file(ioffice._edxml_package(:adoc, '000.00.00.G22', NULL)::text, :axis) AS r) x;
SELECT recipient, kind, code, description, document_id IS NULL AS no_document,
       edxml_document_id = (SELECT identifier FROM ioffice.document WHERE id = :adoc) AS answers_it
FROM ioffice.edxml_outgoing WHERE code = '02' AND document_id IS NULL;
-- an unsigned status package: refused, nothing recorded, nothing answered
SELECT r->>'result' AS result, r->>'reason' AS reason
FROM (SELECT ioffice._edxml_axis_file(ioffice._edxml_status_package(o.id)::text, :axis) AS r
      FROM ioffice.edxml_outgoing o WHERE o.document_id = :xdoc AND o.code = '03') x;
SELECT count(*) AS statuses_received FROM ioffice.edxml_status WHERE direction = 'received';
SELECT regress_error('SELECT ioffice._edxml_axis_file(NULL, 1)', 0);
-- signatures taken as valid (the verifier stubbed, rolled back): what
-- comes after the signature check
BEGIN;
ALTER FUNCTION ioffice._edxml_read(text, text) RENAME TO _edxml_read_unstubbed;
-- the signer the stub reports: dai's certificate, registered as the seal
-- of the xã (001.32.32.H41) only
CREATE TEMP TABLE regress_signer AS
SELECT c.fingerprint, c.pem FROM ioffice.certificate c JOIN ioffice.person p ON p.id = c.person_id
WHERE p.login = 'dai' ORDER BY c.id LIMIT 1;
SELECT ioffice.add_exchange_seal('001.32.32.H41', pem) IS NOT NULL AS seal_of_the_xa FROM regress_signer;
CREATE FUNCTION ioffice._edxml_read(package text, trust text) RETURNS jsonb LANGUAGE sql
AS $$ SELECT jsonb_set(jsonb_set(ioffice._edxml_read_unstubbed(package, trust), '{signature,status}', '"valid"'),
                       '{signature,fingerprint}', (SELECT to_jsonb(encode(fingerprint, 'hex')) FROM regress_signer)) $$;
-- a status from an agency the document was not sent to: refused
INSERT INTO ioffice.edxml_outgoing (agency_id, recipient, kind, code, description, edxml_document_id)
SELECT x.agency_id, a.code, 'status', '03', 'regress forged', d.identifier
FROM ioffice.document x, ioffice.document d JOIN ioffice.unit a ON a.id = d.agency_id
WHERE x.id = :xdoc AND d.id = :adoc RETURNING id AS forged \gset
SELECT r->>'result' AS result, r->>'reason' AS reason
FROM (SELECT ioffice._edxml_axis_file(ioffice._edxml_status_package(:forged)::text, :axis) AS r) x;
SELECT count(*) AS forged_recorded FROM ioffice.edxml_status WHERE document_id = :adoc AND direction = 'received';
-- sent to it: recorded
INSERT INTO ioffice.edxml_outgoing (agency_id, document_id, recipient, kind, state, sent_at)
SELECT d.agency_id, d.id, u.code, 'document', 'sent', now()
FROM ioffice.document d, ioffice.document x JOIN ioffice.unit u ON u.id = x.agency_id
WHERE d.id = :adoc AND x.id = :xdoc;
SELECT r->>'result' AS result, r->>'code' AS code
FROM (SELECT ioffice._edxml_axis_file(ioffice._edxml_status_package(:forged)::text, :axis) AS r) x;
-- a package From 000.00.32.H41 signed (validly) by the xã's seal: the
-- signer is not that agency's; refused with 02 naming why, nothing filed
SELECT r->>'result' AS result, r->>'reason' AS reason
FROM (SELECT ioffice._edxml_axis_file(ioffice._edxml_package(:adoc, u.code, NULL)::text, :axis) AS r
      FROM ioffice.document x JOIN ioffice.unit u ON u.id = x.agency_id WHERE x.id = :xdoc) x;
SELECT o.code, o.description LIKE '%is not a seal registered for agency 000.00.32.H41%' AS says_whose,
       o.recipient = u.code AS to_its_sender
FROM ioffice.edxml_outgoing o, ioffice.document d JOIN ioffice.unit u ON u.id = d.agency_id
WHERE d.id = :adoc AND o.code = '02' AND o.description LIKE '%seal registered%';
SELECT count(*) AS filed_from_forger FROM ioffice.edxml_received
WHERE edxml_document_id = (SELECT identifier FROM ioffice.document WHERE id = :adoc);
-- the same certificate registered for 000.00.32.H41 as well: bound
SELECT ioffice.add_exchange_seal('000.00.32.H41', pem) IS NOT NULL AS seal_of_sopcop FROM regress_signer;
-- its seal now valid and bound, but the PDF it carries is signed by no
-- one (regress has no worker to sign it): refused with 02 (Decree 30 art.
-- 21.2, the document's own authenticity), nothing filed
SELECT r->>'result' AS result, r->>'reason' AS reason
FROM (SELECT ioffice._edxml_axis_file(ioffice._edxml_package(:adoc, u.code, NULL)::text, :axis) AS r
      FROM ioffice.document x JOIN ioffice.unit u ON u.id = x.agency_id WHERE x.id = :xdoc) x;
SELECT count(*) AS unsigned_filed FROM ioffice.edxml_received
WHERE edxml_document_id = (SELECT identifier FROM ioffice.document WHERE id = :adoc);
-- the PDF's signature checker stubbed (rolled back) as verify() would
-- answer for a PDF changed after signing, then for a signer whose
-- revocation is unknown here
ALTER FUNCTION ioffice._pdf_signatures(bytea) RENAME TO _pdf_signatures_unstubbed;
CREATE TEMP TABLE regress_pdf_verdict (valid boolean, reason text);
INSERT INTO regress_pdf_verdict VALUES (true, NULL), (false, 'the document was changed after this signature');
CREATE FUNCTION ioffice._pdf_signatures(content bytea)
    RETURNS TABLE (signer text, kind text, signed_at timestamptz, subject text, valid boolean, reason text,
                   revision int, after_signing text, level text, timestamped_at timestamptz)
LANGUAGE sql AS $$
    SELECT NULL::text, NULL::text, NULL::timestamptz, 'CN=Regress Signer', v.valid, v.reason,
           row_number() OVER ()::int, 'signatures', NULL::text, NULL::timestamptz
    FROM regress_pdf_verdict v $$;
SELECT r->>'result' AS result, r->>'reason' AS reason
FROM (SELECT ioffice._edxml_axis_file(ioffice._edxml_package(:adoc, u.code, NULL)::text, :axis) AS r
      FROM ioffice.document x JOIN ioffice.unit u ON u.id = x.agency_id WHERE x.id = :xdoc) x;
SELECT count(*) AS tampered_filed FROM ioffice.edxml_received
WHERE edxml_document_id = (SELECT identifier FROM ioffice.document WHERE id = :adoc);
UPDATE regress_pdf_verdict SET reason = 'revocation unknown: no revocation list registered for the issuer'
WHERE NOT valid;
SELECT regress_error($$SELECT ioffice._edxml_axis_file(ioffice._edxml_package(d.id, u.code, NULL)::text, a.id)
                       FROM ioffice.document d, ioffice.document x JOIN ioffice.unit u ON u.id = x.agency_id,
                            ioffice.exchange_axis a
                       WHERE d.id = $$ || :adoc || $$ AND x.id = $$ || :xdoc || $$ AND a.id = $$ || :axis, 0);
SELECT count(*) AS unknown_answered FROM ioffice.edxml_outgoing
WHERE code = '02' AND description LIKE '%revocation unknown%';
DELETE FROM regress_pdf_verdict WHERE NOT valid;
-- a package whose own data breaks a rule (PageAmount not a number, as the
-- reader passes it): refused with 02, not an error retried at every poll
CREATE OR REPLACE FUNCTION ioffice._edxml_read(package text, trust text) RETURNS jsonb LANGUAGE sql
AS $$ SELECT jsonb_set(jsonb_set(jsonb_set(ioffice._edxml_read_unstubbed(package, trust), '{signature,status}', '"valid"'),
                       '{signature,fingerprint}', (SELECT to_jsonb(encode(fingerprint, 'hex')) FROM regress_signer)),
                       '{page_amount}', '"many"') $$;
SELECT r->>'result' AS result, r->>'reason' AS reason
FROM (SELECT ioffice._edxml_axis_file(ioffice._edxml_package(:adoc, u.code, NULL)::text, :axis) AS r
      FROM ioffice.document x JOIN ioffice.unit u ON u.id = x.agency_id WHERE x.id = :xdoc) x;
SELECT o.code, o.description, o.recipient = u.code AS to_its_sender
FROM ioffice.edxml_outgoing o, ioffice.document d JOIN ioffice.unit u ON u.id = d.agency_id
WHERE d.id = :adoc AND o.code = '02' AND o.description LIKE '%bigint%';
ROLLBACK;

-- the axis table's rules
SELECT regress_error($$INSERT INTO ioffice.exchange_axis (agency_id, transport, url)
                      SELECT id, 'vxp', 'http://127.0.0.1:9/' FROM ioffice.unit WHERE code = '001.32.32.H41'$$, 0);
SELECT regress_error($$INSERT INTO ioffice.exchange_axis (agency_id, transport)
                      SELECT id, 'endpoint' FROM ioffice.unit WHERE code = '001.32.32.H41'$$, 0);
SELECT regress_error($$INSERT INTO ioffice.exchange_axis (agency_id, transport, url, system_id, secret)
                      SELECT id, 'smtp', 'http://127.0.0.1:9/', 'x', 'regress-secret-0123456789'
                      FROM ioffice.unit WHERE code = '001.32.32.H41'$$, 0);

-- permissions: the queue and the axis are the DBA's to read (the secret
-- left out), the filing function the worker's
CREATE ROLE regress_ax_dba IN ROLE ioffice_admin;
CREATE ROLE regress_ax_app IN ROLE ioffice_app;
SET ROLE regress_ax_dba;
SELECT count(*) > 0 AS dba_reads_queue FROM ioffice.edxml_outgoing;
SELECT transport, url FROM ioffice.exchange_axis;
SELECT regress_error('SELECT secret FROM ioffice.exchange_axis', 0);
SELECT regress_error($$SELECT ioffice._edxml_axis_file('<x/>', 1)$$, 0);
RESET ROLE;
SET ROLE regress_ax_app;
SELECT regress_error('SELECT count(*) FROM ioffice.edxml_outgoing', 0);
SELECT regress_error('SELECT count(*) FROM ioffice.exchange_axis', 0);
SELECT regress_error(format('SELECT ioffice._edxml_package(%s, %L, NULL)', :adoc, '000.00.00.G22'), :adoc);
SELECT regress_error(format('SELECT ioffice._edxml_status_package(%s)', 1), 0);
RESET ROLE;
DROP ROLE regress_ax_dba;
DROP ROLE regress_ax_app;
-- the axis changes are on the record
SELECT action, entity FROM ioffice.audit WHERE entity = 'exchange_axis' ORDER BY id;
DELETE FROM ioffice.exchange_axis;
