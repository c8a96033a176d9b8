-- What a DBA's writable tables (ioffice_admin: doc_type, register,
-- workflow_state) can do to what was already registered (issue 17,
-- also-check): renaming a type leaves the entries with the name they were
-- registered under; the edits that would rewrite an entry (a type's code in
-- use, a register's counter, identity or secrecy once it numbered, the name,
-- finality or frozen files of a state holding numbered documents) are
-- refused; and a numbered document's register columns stay, whoever writes.
SET client_min_messages = warning;
\set VERBOSITY terse
SELECT ioffice.add_agency('UBND xã Thử Quản Trị', 'UBND', '000.00.44.H41') AS at \gset
SELECT ioffice.add_person('at_spec', 'Chuyên viên QT', 'Chuyên viên', :at, '{specialist}') > 0
   AND ioffice.add_person('at_lead', 'Chủ tịch QT', 'Chủ tịch', :at, '{leader}') > 0
   AND ioffice.add_person('at_clerk', 'Văn thư QT', 'Văn thư', :at, '{clerk}') > 0 AS people_added;
SELECT extract(year FROM now() AT TIME ZONE ioffice.timezone())::int AS year \gset
SELECT id AS reg FROM ioffice.register
WHERE agency_id = :at AND direction = 'outgoing' AND code = 'outgoing' AND year = :year \gset
SELECT id AS secret FROM ioffice.register
WHERE agency_id = :at AND direction = 'outgoing' AND code = 'outgoing_secret' AND year = :year \gset
-- a statement's SQLSTATE, for any role (messages hold ids)
CREATE FUNCTION public.regress_sqlstate(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN others THEN
    RETURN SQLSTATE;
END
$$;

-- a decision issued, a notice's number taken, a number of the secret series
SET ioffice.actor = 'at_spec';
SELECT ioffice.create_outgoing('QĐ', 'V/v ban hành quy chế') AS doc \gset
SELECT ioffice.attach(:doc, 'qd.pdf', content) IS NOT NULL AS attached FROM pdf;
SELECT ioffice.act(:doc, 'submit', 'at_lead');
SET ioffice.actor = 'at_lead';
SELECT ioffice.act(:doc, 'approve', 'at_clerk');
SET ioffice.actor = 'at_clerk';
SELECT ioffice.act(:doc, 'issue');
SELECT symbol FROM ioffice.take_number(:reg, 'TB');
SELECT symbol FROM ioffice.take_number(:secret, 'QĐ');
SET ioffice.actor = 'at_spec';
SELECT ioffice.create_outgoing('QĐ', 'V/v dự thảo') AS draft \gset
RESET ioffice.actor;
SELECT doc_type_name FROM ioffice.document WHERE id = :doc;

CREATE ROLE regress_at_dba IN ROLE ioffice_admin;
SET SESSION AUTHORIZATION regress_at_dba;
-- renaming types: allowed, for the documents to come
UPDATE ioffice.doc_type SET name = 'Quyết định (mẫu mới)' WHERE code = 'QĐ';
UPDATE ioffice.doc_type SET name = 'Thông báo (mẫu mới)' WHERE code = 'TB';
-- a type's code in the registers, a register's counter, identity, series
-- and secrecy once it numbered, a state holding numbered documents: refused
SELECT regress_sqlstate($$UPDATE ioffice.doc_type SET code = 'QĐx' WHERE code = 'QĐ'$$) AS type_code,
       regress_sqlstate(format($$UPDATE ioffice.register SET next_number = next_number + 5 WHERE id = %s$$, :reg)) AS counter,
       regress_sqlstate(format($$UPDATE ioffice.register SET last_issued_on = NULL WHERE id = %s$$, :reg)) AS last_date,
       regress_sqlstate(format($$UPDATE ioffice.register SET code = 'outgoing_2' WHERE id = %s$$, :reg)) AS register_code,
       regress_sqlstate(format($$UPDATE ioffice.register SET year = year + 1 WHERE id = %s$$, :reg)) AS register_year,
       regress_sqlstate(format($$UPDATE ioffice.register SET symbol_suffix = 'X' WHERE id = %s$$, :reg)) AS series,
       regress_sqlstate(format($$UPDATE ioffice.register SET confidential = false WHERE id = %s$$, :secret)) AS secrecy;
SELECT regress_sqlstate(format($$INSERT INTO ioffice.register (agency_id, direction, code, name, year, next_number)
                                VALUES (%s, 'outgoing', 'extra', 'Sổ thêm', %s, 7)$$, :at, :year)) AS new_at_7,
       regress_sqlstate($$UPDATE ioffice.workflow_state SET final = false WHERE workflow = 'outgoing' AND state = 'issued'$$) AS not_final,
       regress_sqlstate($$UPDATE ioffice.workflow_state SET state = 'published' WHERE workflow = 'outgoing' AND state = 'issued'$$) AS state_renamed,
       regress_sqlstate($$UPDATE ioffice.workflow SET name = 'outgoing_new' WHERE name = 'outgoing'$$) AS workflow_renamed;
-- what stays a DBA's: a register's name and types, a new register from 1,
-- a state's label
SELECT regress_sqlstate(format($$UPDATE ioffice.register SET name = 'Sổ văn bản đi (2)', doc_types = NULL WHERE id = %s$$, :reg)) AS register_name,
       regress_sqlstate(format($$INSERT INTO ioffice.register (agency_id, direction, code, name, year)
                                VALUES (%s, 'outgoing', 'extra', 'Sổ thêm', %s)$$, :at, :year)) AS new_register,
       regress_sqlstate($$UPDATE ioffice.workflow_state SET label = 'Đã ban hành' WHERE workflow = 'outgoing' AND state = 'issued'$$) AS state_label;
RESET SESSION AUTHORIZATION;

-- the register still says what was registered
SELECT symbol, type_and_abstract, note FROM ioffice.outgoing_register
WHERE agency_id = :at AND NOT confidential ORDER BY number;
SELECT (SELECT count(*) FROM ioffice.document WHERE doc_type = 'QĐ' AND agency_id = :at) AS decisions,
       (SELECT next_number FROM ioffice.register WHERE id = :reg) AS next_number,
       (SELECT confidential FROM ioffice.register WHERE id = :secret) AS secret_still;

-- a numbered document's register columns, by hand: refused; a draft's: not
SELECT regress_sqlstate(format($$UPDATE ioffice.document SET abstract = 'V/v khác' WHERE id = %s$$, :doc)) AS abstract,
       regress_sqlstate(format($$UPDATE ioffice.document SET signer_id = (SELECT id FROM ioffice.person WHERE login = 'at_clerk') WHERE id = %s$$, :doc)) AS signer,
       regress_sqlstate(format($$UPDATE ioffice.document SET recipients = '["Nơi khác"]' WHERE id = %s$$, :doc)) AS recipients,
       regress_sqlstate(format($$UPDATE ioffice.document SET doc_type_name = 'Chỉ thị' WHERE id = %s$$, :doc)) AS type_name,
       regress_sqlstate(format($$UPDATE ioffice.document SET abstract = 'V/v dự thảo (2)' WHERE id = %s$$, :draft)) AS draft_abstract;

-- put back what this test changed
UPDATE ioffice.doc_type SET name = 'Quyết định' WHERE code = 'QĐ';
UPDATE ioffice.doc_type SET name = 'Thông báo' WHERE code = 'TB';
UPDATE ioffice.workflow_state SET label = 'Đã phát hành' WHERE workflow = 'outgoing' AND state = 'issued';
DELETE FROM ioffice.register WHERE agency_id = :at AND code = 'extra';
DROP ROLE regress_at_dba;
DROP FUNCTION public.regress_sqlstate(text);
