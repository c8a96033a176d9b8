-- The outgoing register keeps the names an entry was registered with (issue
-- 17, what ioffice_admin's edits do to issued entries): the signer (Người
-- ký) and the drafting unit (đơn vị nhận bản lưu) are those of the day of
-- issue; an admin correcting a person's full_name, or a DBA renaming a
-- unit, later, does not rewrite an issued entry nor a taken number's.
SET client_min_messages = warning;
\set VERBOSITY terse
SELECT ioffice.add_agency('UBND xã Thử Tên Sổ', 'UBND', '000.00.45.H41') AS rn \gset
SELECT ioffice.add_department(:rn, 'Văn phòng Thử Tên', 'VP') AS rn_vp \gset
SELECT ioffice.add_person('rn_spec', 'Chuyên viên Tên Cũ', 'Chuyên viên', :rn, '{specialist}') > 0
   AND ioffice.add_person('rn_lead', 'Chủ tịch Tên Cũ', 'Chủ tịch', :rn, '{leader}') > 0
   AND ioffice.add_person('rn_clerk', 'Văn thư Tên Cũ', 'Văn thư', :rn, '{clerk}') > 0 AS people_added;
SELECT extract(year FROM now() AT TIME ZONE ioffice.timezone())::int AS year \gset
SELECT id AS reg FROM ioffice.register
WHERE agency_id = :rn AND direction = 'outgoing' AND code = 'outgoing' AND year = :year \gset
CREATE FUNCTION public.regress_sqlstate(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN others THEN
    RETURN SQLSTATE;
END
$$;

-- a decision issued (its signer: the approving leader) and a number taken
-- for the office
SET ioffice.actor = 'rn_spec';
SELECT ioffice.create_outgoing('QĐ', 'V/v quy chế tên sổ') AS doc \gset
SELECT ioffice.attach(:doc, 'qd.pdf', content) IS NOT NULL AS attached FROM pdf;
SELECT ioffice.act(:doc, 'submit', 'rn_lead');
SET ioffice.actor = 'rn_lead';
SELECT ioffice.act(:doc, 'approve', 'rn_clerk');
SET ioffice.actor = 'rn_clerk';
SELECT ioffice.act(:doc, 'issue');
SELECT symbol FROM ioffice.take_number(:reg, 'CV', :rn_vp);
RESET ioffice.actor;
SELECT symbol, signer, archive_unit FROM ioffice.outgoing_register
WHERE agency_id = :rn ORDER BY number;

-- an admin corrects the leader's name, as ioffice_admin may; a DBA renames
-- the agency and its office
CREATE ROLE regress_rn_dba IN ROLE ioffice_admin;
SET SESSION AUTHORIZATION regress_rn_dba;
UPDATE ioffice.person SET full_name = 'Chủ tịch Tên Mới' WHERE login = 'rn_lead';
RESET SESSION AUTHORIZATION;
UPDATE ioffice.unit SET name = 'UBND xã Tên Mới' WHERE id = :rn;
UPDATE ioffice.unit SET name = 'Văn phòng Tên Mới' WHERE id = :rn_vp;

-- the register still shows who signed and which unit drafted, as entered
SELECT symbol, signer, archive_unit FROM ioffice.outgoing_register
WHERE agency_id = :rn ORDER BY number;

-- the kept names are part of the register entry: nobody rewrites them
SELECT regress_sqlstate(format($$UPDATE ioffice.document SET signer_name = 'Chủ tịch Tên Mới' WHERE id = %s$$, :doc)) AS signer_name,
       regress_sqlstate(format($$UPDATE ioffice.document SET drafting_unit_name = NULL WHERE id = %s$$, :doc)) AS unit_name;

-- a document issued after the edits is entered with the new names
SET ioffice.actor = 'rn_spec';
SELECT ioffice.create_outgoing('QĐ', 'V/v quy chế tên mới') AS doc2 \gset
SELECT ioffice.attach(:doc2, 'qd.pdf', content) IS NOT NULL AS attached FROM pdf;
SELECT ioffice.act(:doc2, 'submit', 'rn_lead');
SET ioffice.actor = 'rn_lead';
SELECT ioffice.act(:doc2, 'approve', 'rn_clerk');
SET ioffice.actor = 'rn_clerk';
SELECT ioffice.act(:doc2, 'issue');
RESET ioffice.actor;
SELECT symbol, signer, archive_unit FROM ioffice.outgoing_register
WHERE agency_id = :rn ORDER BY number;

DROP ROLE regress_rn_dba;
DROP FUNCTION public.regress_sqlstate(text);
