-- Every action's refusal paths: wrong state (55000), wrong actor (42501),
-- unknown things (42704), bad values (22023).  After each refused call the
-- SQLSTATE is echoed, and nothing of the call is left behind.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('CV', 'Văn bản để thử từ chối') AS doc \gset
SELECT count(*) AS audit_before FROM ioffice.audit \gset

-- submit: needs a file, a leader as receiver, taken by the drafter only
SELECT ioffice.act(:doc, 'submit', 'dai');
\echo :SQLSTATE
SELECT ioffice.attach(:doc, 'du_thao.pdf', content) FROM pdf;
SELECT ioffice.act(:doc, 'submit');
\echo :SQLSTATE
SELECT ioffice.act(:doc, 'submit', 'nobody');
\echo :SQLSTATE
SELECT ioffice.act(:doc, 'submit', 'regress_thuy');
\echo :SQLSTATE
SELECT ioffice.act(:doc, 'submit', 'dai', NULL, '{"colour": "red"}');
\echo :SQLSTATE
SELECT ioffice.act(:doc, 'submit', 'dai', NULL, '{"sms": "yes"}');
\echo :SQLSTATE
SELECT ioffice.act(:doc, 'submit', 'dai', NULL, '{"deadline": "2026-02-30"}');
\echo :SQLSTATE
SELECT ioffice.act(:doc, 'submit', 'dai', NULL, '[1, 2]');
\echo :SQLSTATE
SELECT ioffice.act(:doc, 'approve', 'regress_thuy');
\echo :SQLSTATE
-- a clerk, but of another agency: not the document's to receive
SELECT ioffice.act(:doc, 'submit', 'xa_ct');
\echo :SQLSTATE
SELECT ioffice.act(:doc, 'publish');
\echo :SQLSTATE
SET ioffice.actor = 'regress_tuan';
SELECT ioffice.act(:doc, 'submit', 'dai');
\echo :SQLSTATE
SET ioffice.actor = 'regress_luan';
SELECT ioffice.act(:doc, 'submit', 'dai', 'Trình duyệt', '{"request_signature": true, "deadline": "2026-12-31"}');
SELECT step, request, deadline FROM ioffice.trail(:doc);

-- while reviewing: only the holder acts; the drafter cannot submit twice
SELECT ioffice.act(:doc, 'submit', 'dai');
\echo :SQLSTATE
SELECT ioffice.act(:doc, 'approve', 'regress_thuy');
\echo :SQLSTATE
SET ioffice.actor = 'loi';
SELECT ioffice.act(:doc, 'approve', 'regress_thuy');
\echo :SQLSTATE
SELECT ioffice.act(:doc, 'sign');
\echo :SQLSTATE
SET ioffice.actor = 'dai';
-- forward: to another leader, not to oneself, not to a clerk
SELECT ioffice.act(:doc, 'forward', 'dai');
\echo :SQLSTATE
SELECT ioffice.act(:doc, 'forward', 'regress_thuy');
\echo :SQLSTATE
-- complete and sign take nobody
SELECT ioffice.act(:doc, 'complete', 'regress_thuy');
\echo :SQLSTATE
-- return goes to the drafter, no one else
SELECT ioffice.act(:doc, 'return', 'loi');
\echo :SQLSTATE
-- the drafter asked for a signature: approving without one is refused
SELECT ioffice.act(:doc, 'approve', 'regress_thuy');
\echo :SQLSTATE
SELECT ioffice.act(:doc, 'quick_approve');
\echo :SQLSTATE
-- sign queues the signature (the signing worker does it); until it is done
-- approve stays refused
SELECT ioffice.act(:doc, 'sign', NULL, NULL, '{"mode": "position", "page": 1}');
\echo :SQLSTATE
SELECT ioffice.act(:doc, 'sign', NULL, NULL, '{"mode": "stamp"}');
\echo :SQLSTATE
SELECT ioffice.act(:doc, 'sign', NULL, NULL, '{"mode": "position", "page": 1, "x": 400, "y": 120}');
SELECT ioffice.act(:doc, 'sign');
SELECT f.name, s.status, s.kind, p.login FROM ioffice.signature s
JOIN ioffice.file f ON f.id = s.file_id JOIN ioffice.person p ON p.id = s.signer_id
WHERE s.document_id = :doc;
SELECT document, awaiting_signature FROM ioffice.outgoing_list('awaiting_approval') WHERE document = :doc;
SELECT ioffice.act(:doc, 'approve', 'regress_thuy');
\echo :SQLSTATE
-- replacing the file drops the pending signature: it would sign content that is gone
SELECT id AS f1 FROM ioffice.file WHERE document_id = :doc \gset
SELECT ioffice.replace_file(:f1, 'du_thao_2.pdf', content) FROM pdf;
SELECT status, reason FROM ioffice.signature WHERE document_id = :doc;
SELECT ioffice.act(:doc, 'approve', 'regress_thuy');
\echo :SQLSTATE
SELECT ioffice.act(:doc, 'return', NULL, 'Chưa ký được, chuyển lại');
SELECT state FROM ioffice.document WHERE id = :doc;

-- returned: the drafter may submit again; leaders may not act
SELECT ioffice.act(:doc, 'approve', 'regress_thuy');
\echo :SQLSTATE
SET ioffice.actor = 'regress_luan';
SELECT ioffice.act(:doc, 'complete');
\echo :SQLSTATE

-- unknown documents and people
SELECT ioffice.act(987654321, 'submit', 'dai');
\echo :SQLSTATE
SET ioffice.actor = 'ghost';
SELECT ioffice.act(:doc, 'submit', 'dai');
\echo :SQLSTATE
RESET ioffice.actor;
-- (the error raised again with the session user, who runs the tests, named
-- <superuser>: expected outputs hold no OS user name)
CREATE FUNCTION pg_temp.without_user_name(sql text) RETURNS void LANGUAGE plpgsql AS $f$
DECLARE
    e_state text; e_message text; e_detail text; e_hint text;
BEGIN
    EXECUTE sql;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_message = MESSAGE_TEXT,
                            e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
    RAISE EXCEPTION USING ERRCODE = e_state, MESSAGE = e_message, HINT = e_hint,
          DETAIL = replace(e_detail, format('"%s"', session_user), '"<superuser>"');
END
$f$;
SELECT pg_temp.without_user_name(format($$SELECT ioffice.act(%s, 'submit', 'dai')$$, :doc));
\echo :SQLSTATE

-- issue: by the clerk holding it, in awaiting_issue only
SET ioffice.actor = 'regress_thuy';
SELECT ioffice.act(:doc, 'issue');
\echo :SQLSTATE
-- issued and completed documents are final
SELECT id AS issued_doc FROM ioffice.document WHERE state = 'issued' ORDER BY id LIMIT 1 \gset
SELECT ioffice.act(:issued_doc, 'issue');
\echo :SQLSTATE
SELECT ioffice.act(:issued_doc, 'return');
\echo :SQLSTATE

-- a signature once requested stays requested: the document cannot be
-- approved until the signing worker has signed it
SET ioffice.actor = 'regress_luan';
SELECT ioffice.act(:doc, 'submit', 'dai');
SET ioffice.actor = 'dai';
SELECT ioffice.act(:doc, 'approve', 'regress_thuy');
\echo :SQLSTATE

-- issuing with a chosen register
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('QĐ', 'Quyết định thử sổ') AS doc3 \gset
SELECT ioffice.attach(:doc3, 'qd.pdf', content) FROM pdf;
SELECT ioffice.act(:doc3, 'submit', 'dai');
SET ioffice.actor = 'dai';
SELECT ioffice.act(:doc3, 'approve', 'regress_thuy');
SET ioffice.actor = 'regress_xa_vt';
SELECT ioffice.act(:doc3, 'issue');
\echo :SQLSTATE
SET ioffice.actor = 'regress_thuy';
SELECT id AS xa_register FROM ioffice.register r
WHERE agency_id = (SELECT id FROM ioffice.unit WHERE code = '001.32.32.H41') AND code = 'outgoing' \gset
SELECT id AS secret_register FROM ioffice.register r
WHERE agency_id = (SELECT id FROM ioffice.unit WHERE code = '000.00.32.H41') AND code = 'outgoing_secret' \gset
SELECT ioffice.act(:doc3, 'issue', NULL, NULL, jsonb_build_object('register', :xa_register));
\echo :SQLSTATE
SELECT ioffice.act(:doc3, 'issue', NULL, NULL, jsonb_build_object('register', :secret_register));
\echo :SQLSTATE
SELECT ioffice.act(:doc3, 'issue', NULL, NULL, '{"register": 999999}');
\echo :SQLSTATE
SELECT ioffice.act(:doc3, 'issue', NULL, NULL, '{"register": "sổ 1"}');
\echo :SQLSTATE
SELECT ioffice.act(:doc3, 'issue', NULL, NULL, '{"sms": true}');
\echo :SQLSTATE
SELECT ioffice.act(:doc3, 'issue', 'dai');
\echo :SQLSTATE
-- none of the refused issues used a number: the next is still the next
SELECT next_number AS next_before FROM ioffice.register r
WHERE agency_id = (SELECT id FROM ioffice.unit WHERE code = '000.00.32.H41') AND code = 'outgoing' \gset
SELECT ioffice.act(:doc3, 'issue');
SELECT number = :next_before AS gapless, symbol LIKE '%/QĐ-UBND' AS symbol_ok FROM ioffice.document WHERE id = :doc3;

-- a rolled-back issue gives its number back
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('QĐ', 'Quyết định bị hủy phát hành') AS doc4 \gset
SELECT ioffice.attach(:doc4, 'qd4.pdf', content) FROM pdf;
SELECT ioffice.act(:doc4, 'submit', 'dai');
SET ioffice.actor = 'dai';
SELECT ioffice.act(:doc4, 'approve', 'regress_thuy');
SET ioffice.actor = 'regress_thuy';
BEGIN;
SELECT ioffice.act(:doc4, 'issue');
SELECT number - :next_before AS after_doc3 FROM ioffice.document WHERE id = :doc4;
ROLLBACK;
SELECT state, number FROM ioffice.document WHERE id = :doc4;
SELECT ioffice.act(:doc4, 'issue');
SELECT number - :next_before AS after_doc3 FROM ioffice.document WHERE id = :doc4;
RESET ioffice.actor;

-- refused calls left nothing behind: the audit has the successful acts only
SELECT action, state_before, state_after FROM ioffice.audit
WHERE entity = 'document' AND entity_id = :doc ORDER BY id;
SELECT count(*) AS tasks_of_doc FROM ioffice.task WHERE document_id = :doc;
