-- Every number of a register accounted for (issue 17, finding 7): a number
-- taken with take_number() is carried by the document it served
-- (import_issued with payload.number) or voided by a clerk with a reason
-- (void_number); the clerks see the ones still unexplained
-- (numbers_unaccounted), a confidential register's only its own clerks.
SET client_min_messages = warning;
\set VERBOSITY terse
SELECT ioffice.add_agency('UBND xã Thử Số', 'UBND', '000.00.42.H41') AS na \gset
SELECT ioffice.add_person('na_lead', 'Chủ tịch Số', 'Chủ tịch', :na, '{leader}') > 0
   AND ioffice.add_person('na_clerk', 'Văn thư Số', 'Văn thư', :na, '{clerk}') > 0
   AND ioffice.add_person('na_spec', 'Chuyên viên Số', 'Chuyên viên', :na, '{specialist}') > 0 AS people_added;
SELECT extract(year FROM now() AT TIME ZONE ioffice.timezone())::int AS year \gset
SELECT id AS reg FROM ioffice.register
WHERE agency_id = :na AND direction = 'outgoing' AND code = 'outgoing' AND year = :year \gset
SELECT id AS secret FROM ioffice.register
WHERE agency_id = :na AND direction = 'outgoing' AND code = 'outgoing_secret' AND year = :year \gset
CREATE FUNCTION pg_temp.sqlstate_of(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN others THEN
    RETURN SQLSTATE;
END
$$;
CREATE FUNCTION pg_temp.na_payload(ext text, doc_type text, extra jsonb) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object(
        'external_id', ext, 'agency_code', '000.00.42.H41', 'doc_type', doc_type,
        'abstract', 'V/v cấp giấy phép', 'signer', 'na_lead',
        'files', jsonb_build_array(jsonb_build_object('name', 'kq.pdf', 'content', encode(content, 'base64'))),
        'trail', jsonb_build_object('name', 'qtxl.pdf', 'content', encode(content, 'base64'))) || extra
    FROM pdf
$$;

-- the TTHC system takes three numbers and one of the confidential series
SET ioffice.actor = 'na_clerk';
SELECT number, symbol FROM ioffice.take_number(:reg, 'QĐ')
UNION ALL SELECT number, symbol FROM ioffice.take_number(:reg, 'QĐ')
UNION ALL SELECT number, symbol FROM ioffice.take_number(:reg, 'TB');
SELECT number, symbol FROM ioffice.take_number(:secret, 'QĐ');
-- the clerk sees the four as unaccounted for
SELECT register_code, number, symbol, doc_type, taken_by, confidential
FROM ioffice.numbers_unaccounted WHERE agency_id = :na ORDER BY register_code, number;

-- 01 served a result: handed over with it, the document carries the
-- number, its symbol and the date it was taken
SELECT document AS imported, number, symbol
FROM ioffice.import_issued(pg_temp.na_payload('na-1', 'QĐ', jsonb_build_object('register', :reg, 'number', 1))) \gset
SELECT :number AS number, :'symbol' AS symbol;
SELECT d.number, d.symbol, d.register_id = :reg AS same_register, d.state,
       d.issued_on = n.taken_on AS dated_when_taken, n.document_id = d.id AS accounted
FROM ioffice.document d JOIN ioffice.number_taken n ON n.register_id = d.register_id AND n.number = d.number
WHERE d.id = :imported;
-- the register shows it once, as the document
SELECT number, symbol, document_id = :imported AS is_the_document, note
FROM ioffice.outgoing_register WHERE register_id = :reg ORDER BY number;
-- a number is used once; a number is of its type, date and register
SELECT pg_temp.sqlstate_of(format($$SELECT ioffice.import_issued(pg_temp.na_payload('na-2', 'QĐ', '{"register": %s, "number": 1}'))$$, :reg)) AS used_twice,
       pg_temp.sqlstate_of(format($$SELECT ioffice.import_issued(pg_temp.na_payload('na-3', 'QĐ', '{"register": %s, "number": 3}'))$$, :reg)) AS other_type,
       pg_temp.sqlstate_of(format($$SELECT ioffice.import_issued(pg_temp.na_payload('na-4', 'QĐ', '{"register": %s, "number": 2, "issued_on": "%s"}'))$$,
                                  :reg, to_char((now() AT TIME ZONE ioffice.timezone())::date - 1, 'YYYY-MM-DD'))) AS other_date,
       pg_temp.sqlstate_of(format($$SELECT ioffice.import_issued(pg_temp.na_payload('na-5', 'QĐ', '{"register": %s, "number": 99}'))$$, :reg)) AS never_taken,
       pg_temp.sqlstate_of(format($$SELECT ioffice.import_issued(pg_temp.na_payload('na-6', 'QĐ', '{"register": %s, "number": 1}'))$$, :secret)) AS secret_series,
       pg_temp.sqlstate_of($$SELECT ioffice.import_issued(pg_temp.na_payload('na-7', 'QĐ', '{"number": 2}'))$$) AS no_register;

-- 03 was not used: voided with the reason; it stays in the register
SELECT pg_temp.sqlstate_of(format($$SELECT ioffice.void_number(%s, 3, '  ')$$, :reg)) AS no_reason,
       pg_temp.sqlstate_of(format($$SELECT ioffice.void_number(%s, 3, %L)$$, :reg, repeat('x', 501))) AS long_reason,
       pg_temp.sqlstate_of(format($$SELECT ioffice.void_number(%s, 1, 'x')$$, :reg)) AS used_number,
       pg_temp.sqlstate_of(format($$SELECT ioffice.void_number(%s, 99, 'x')$$, :reg)) AS unknown_number;
SET ioffice.actor = 'na_spec';
SELECT pg_temp.sqlstate_of(format($$SELECT ioffice.void_number(%s, 3, 'x')$$, :reg)) AS by_a_specialist;
SET ioffice.actor = 'regress_xa_vt';
SELECT pg_temp.sqlstate_of(format($$SELECT ioffice.void_number(%s, 3, 'x')$$, :reg)) AS by_another_agency,
       pg_temp.sqlstate_of(format($$SELECT ioffice.void_number(%s, 1, 'x')$$, :secret)) AS secret_by_another_agency;
SET ioffice.actor = 'na_clerk';
SELECT ioffice.void_number(:reg, 3, 'Hồ sơ bị rút trước khi ký');
SELECT pg_temp.sqlstate_of(format($$SELECT ioffice.void_number(%s, 3, 'again')$$, :reg)) AS voided_twice;
SELECT number, symbol, note FROM ioffice.outgoing_register WHERE register_id = :reg ORDER BY number;
-- each accounting is in the register's audit trail
SELECT action, detail->>'symbol' AS symbol, detail->>'reason' AS reason,
       (detail->>'document')::bigint = :imported AS document
FROM ioffice.audit WHERE entity = 'register' AND entity_id = :reg
  AND action IN ('number_used', 'void_number') ORDER BY id;
SELECT count(*) AS audit_problems FROM ioffice.audit_verify('register', :reg);

-- what is left to explain: 02, and the confidential series' 01
SELECT register_code, number, symbol FROM ioffice.numbers_unaccounted
WHERE agency_id = :na ORDER BY register_code, number;
-- through an application (row-level security applies): the agency's clerk
-- sees both, another agency's clerk and a reporting tool not the
-- confidential one
CREATE ROLE regress_na_app IN ROLE ioffice_app;
SET SESSION AUTHORIZATION regress_na_app;
SET ioffice.actor = 'na_clerk';
SELECT count(*) FILTER (WHERE confidential) AS clerk_sees_secret, count(*) AS clerk_sees
FROM ioffice.numbers_unaccounted WHERE agency_id = :na;
SET ioffice.actor = 'regress_xa_vt';
SELECT count(*) FILTER (WHERE confidential) AS other_clerk_sees_secret
FROM ioffice.numbers_unaccounted WHERE agency_id = :na;
RESET ioffice.actor;
RESET SESSION AUTHORIZATION;
DROP ROLE regress_na_app;
CREATE ROLE regress_na_report IN ROLE ioffice_reader;
SET SESSION AUTHORIZATION regress_na_report;
SELECT count(*) FILTER (WHERE confidential) AS reader_sees_secret, count(*) AS reader_sees
FROM ioffice.numbers_unaccounted WHERE agency_id = :na;
RESET SESSION AUTHORIZATION;
DROP ROLE regress_na_report;
