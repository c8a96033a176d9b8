-- A document, file or dossier the actor may not see is answered exactly as
-- one that does not exist: the same SQLSTATE and the same message, so that
-- nobody can tell which ids hold other agencies' or confidential documents.
-- Then arguments refused before any work: details too long for their
-- column, an absurd entity for audit_verify().
SET client_min_messages = warning;

-- what a statement answers, as actor (when given): ok, or its SQLSTATE and
-- message, with the id asked about (when given) left out
CREATE FUNCTION pg_temp.refusal(stmt text, id text, actor text DEFAULT NULL)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_state text;
    v_message text;
BEGIN
    IF actor IS NOT NULL THEN
        PERFORM set_config('ioffice.actor', actor, false);
    END IF;
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT;
    RETURN v_state || ': ' || CASE WHEN id IS NULL THEN v_message
                                   ELSE replace(v_message, id, 'N') END;
END
$$;
-- the hint of a refusal
CREATE FUNCTION pg_temp.hint(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_hint text;
BEGIN
    EXECUTE stmt;
    RETURN NULL;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS v_hint = PG_EXCEPTION_HINT;
    RETURN v_hint;
END
$$;

-- a document of the district's office and its file; ids nobody has
SELECT d.id AS hidden_doc, f.id AS hidden_file
FROM ioffice.document d JOIN ioffice.file f ON f.document_id = d.id
WHERE d.abstract = 'V/v hướng dẫn ký số văn bản điện tử' ORDER BY f.id LIMIT 1 \gset
SELECT max(id) + 1000 AS missing_doc FROM ioffice.document \gset
SELECT max(id) + 1000 AS missing_file FROM ioffice.file \gset
-- each of the two who ask has a document of their own to link from
SET ioffice.actor = 'xa_ct';
SELECT ioffice.create_outgoing('CV', 'Công văn của xã') AS own_xa \gset
SET ioffice.actor = 'regress_tuan';
SELECT ioffice.create_outgoing('CV', 'Công văn của phòng Văn hóa') AS own_tuan \gset
RESET ioffice.actor;

CREATE TEMP TABLE probe (call text, template text, on_file boolean);
INSERT INTO probe VALUES
    ('trail', 'SELECT * FROM ioffice.trail(%s)', false),
    ('trail_export', $$SELECT ioffice.trail_export(%s, 'csv')$$, false),
    ('act issue', $$SELECT ioffice.act(%s, 'issue')$$, false),
    ('act return', $$SELECT ioffice.act(%s, 'return')$$, false),
    ('act unknown action', $$SELECT ioffice.act(%s, 'publish')$$, false),
    ('attach', $$SELECT ioffice.attach(%s, 'x.pdf', content) FROM pdf$$, false),
    ('link_documents', $$SELECT ioffice.link_documents(%s, %s)$$, false),
    ('create_outgoing related', $$SELECT ioffice.create_outgoing('CV', 'x', '{"related": [%s]}')$$, false),
    ('verify', 'SELECT * FROM ioffice.verify(%s)', true),
    ('signature_p7s', 'SELECT ioffice.signature_p7s(%s)', true),
    ('replace_file', $$SELECT ioffice.replace_file(%s, 'x.pdf', content) FROM pdf$$, true),
    ('remove_file', 'SELECT ioffice.remove_file(%s)', true);

-- another agency's leader, and a colleague of the same agency never involved
SELECT p.call, who.login,
       pg_temp.refusal(format(p.template, CASE WHEN p.call <> 'link_documents' THEN ids.hidden
                                               WHEN who.login = 'xa_ct' THEN :own_xa ELSE :own_tuan END, ids.hidden),
                       ids.hidden::text, who.login) AS hidden,
       pg_temp.refusal(format(p.template, CASE WHEN p.call <> 'link_documents' THEN ids.missing
                                               WHEN who.login = 'xa_ct' THEN :own_xa ELSE :own_tuan END, ids.missing),
                       ids.missing::text, who.login) AS missing
FROM probe p
CROSS JOIN (VALUES ('xa_ct'), ('regress_tuan')) AS who(login)
CROSS JOIN LATERAL (SELECT CASE WHEN p.on_file THEN :hidden_file ELSE :hidden_doc END AS hidden,
                           CASE WHEN p.on_file THEN :missing_file ELSE :missing_doc END AS missing) AS ids
ORDER BY p.call, who.login;
SET ioffice.actor = 'xa_ct';
SELECT ioffice.can_see(:hidden_doc) AS sees_hidden, ioffice.can_see(:missing_doc) AS sees_missing;

-- dossiers: their codes (agency, day, sequence) are even easier to guess
SELECT code AS hidden_dossier FROM ioffice.dossier WHERE procedure_code = '2.002166.000.00.00.H41' \gset
\set missing_dossier '000.00.32.H41-991231-0001'
SELECT p.call, who.login,
       pg_temp.refusal(format(p.template, :'hidden_dossier'), :'hidden_dossier', who.login) AS hidden,
       pg_temp.refusal(format(p.template, :'missing_dossier'), :'missing_dossier', who.login) AS missing
FROM (VALUES ('dossier_trail', 'SELECT * FROM ioffice.dossier_trail(%L)'),
             ('dossier_act', $$SELECT ioffice.dossier_act(%L, 'return_result')$$),
             ('dossier_attach', $$SELECT ioffice.dossier_attach(%L, 'x.pdf', content) FROM pdf$$)) AS p(call, template)
CROSS JOIN (VALUES ('xa_ct'), ('regress_tuan')) AS who(login)
ORDER BY p.call, who.login;
-- a delegate of a dossier's holder (a leader of the holder's unit, who sees
-- it) acts in the holder's name; the delegator then revokes the delegation
SET ioffice.actor = 'tam';
SELECT ioffice.receive_dossier('1.000004.000.00.00.H41', 'Thủ tục thử ủy quyền', '{"name": "D"}', 5) AS delegated_dossier \gset
SELECT ioffice.dossier_act(:'delegated_dossier', 'transfer', 'kien');
SET ioffice.actor = 'kien';
SELECT ioffice.delegate('loi', now(), now() + interval '12 hours') AS delegation \gset
SET ioffice.actor = 'loi';
SELECT pg_temp.refusal(format($$SELECT * FROM ioffice.dossier_trail(%L)$$, :'delegated_dossier'),
                       :'delegated_dossier') AS delegate_reads_trail;
SELECT ioffice.dossier_act(:'delegated_dossier', 'assign', 'chauanh', 'Giao thay lãnh đạo phòng');
SET ioffice.actor = 'kien';
SELECT sender, receiver FROM ioffice.dossier_trail(:'delegated_dossier') WHERE step = 3;
SELECT ioffice.revoke_delegation(:delegation);

-- those who may see it still do
SET ioffice.actor = 'regress_luan';
SELECT count(*) > 0 AS drafter_sees_trail FROM ioffice.trail(:hidden_doc);
SELECT count(*) AS signatures_done FROM ioffice.verify(:hidden_file);
SET ioffice.actor = 'regress_thuy';
SELECT pg_temp.refusal(format($$SELECT ioffice.act(%s, 'return')$$, :hidden_doc), :'hidden_doc') AS clerk_is_told_the_state;
RESET ioffice.actor;

-- ---------------------------------------------------------------------------
-- register_incoming: details that would not fit their column are refused as
-- bad values, naming the detail, before anything is written
-- ---------------------------------------------------------------------------
SET ioffice.actor = 'regress_thuy';
SELECT pg_temp.refusal(format($$SELECT ioffice.register_incoming('CV', 'Văn bản đến thử', 'Sở Nội vụ',
           '1/SNV-DÀI', current_date - 1, %L)$$, jsonb_build_object('field', repeat('x', 201))), NULL) AS long_field;
SELECT pg_temp.refusal(format($$SELECT ioffice.register_incoming('CV', 'Văn bản đến thử', 'Sở Nội vụ',
           '2/SNV-DÀI', current_date - 1, %L)$$, jsonb_build_object('comment', repeat('x', 2001))), NULL) AS long_comment;
SELECT pg_temp.refusal(format($$SELECT ioffice.register_incoming('CV', 'Văn bản đến thử', 'Sở Nội vụ',
           '3/SNV-DÀI', current_date - 1, %L)$$,
           jsonb_build_object('field', repeat('x', 200), 'comment', repeat('x', 2000))), NULL) AS at_the_limits;
RESET ioffice.actor;

-- ---------------------------------------------------------------------------
-- audit_verify: an entity no audit record can name is refused at once
-- ---------------------------------------------------------------------------
SET statement_timeout = '5s';
SELECT pg_temp.refusal($$SELECT * FROM ioffice.audit_verify(repeat('x', 10000000), 1)$$, NULL) AS ten_megabytes;
SELECT pg_temp.refusal($$SELECT * FROM ioffice.audit_verify(repeat('x', 64))$$, NULL) AS longer_than_a_name;
SELECT pg_temp.refusal($$SELECT * FROM ioffice.audit_verify('documents', 1)$$, NULL) AS unknown_entity;
-- the known ones are named in the hint: the audited tables
SELECT h ~ '\mdocument\M' AS names_document, h ~ '\mdossier\M' AS names_dossier,
       h ~ '\mworkflow_transition\M' AS names_rule_edits, h ~ '\maudit\M' AS names_audit
FROM pg_temp.hint($$SELECT * FROM ioffice.audit_verify('documents')$$) AS h;
SELECT pg_temp.refusal($$SELECT * FROM ioffice.audit_verify('document', 1)$$, NULL) AS known_entity;
SELECT pg_temp.refusal($$SELECT * FROM ioffice.audit_verify('workflow_transition')$$, NULL) AS rule_edits;
RESET statement_timeout;
