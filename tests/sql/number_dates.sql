-- Within a register, numbers follow their dates (issue 17, finding 5): a
-- number is dated neither after today (in ioffice.timezone) nor before the
-- last date its register already gave, by every path that dates a number
-- (act's issue, import_issued, take_number, a dossier's result).  Dates are
-- computed from the agency's today, so the test holds on any day: on 1
-- January "yesterday" is last year's, refused as well.
SET client_min_messages = warning;
\set VERBOSITY terse
SELECT ioffice.add_agency('UBND xã Thử Ngày', 'UBND', '000.00.41.H41') AS nd \gset
SELECT ioffice.add_person('nd_spec', 'Chuyên viên Ngày', 'Chuyên viên', :nd, '{specialist}') > 0
   AND ioffice.add_person('nd_lead', 'Chủ tịch Ngày', 'Chủ tịch', :nd, '{leader}') > 0
   AND ioffice.add_person('nd_clerk', 'Văn thư Ngày', 'Văn thư', :nd, '{clerk}') > 0 AS people_added;
SELECT (now() AT TIME ZONE ioffice.timezone())::date AS today \gset
SELECT id AS reg FROM ioffice.register
WHERE agency_id = :nd AND direction = 'outgoing' AND code = 'outgoing'
  AND year = extract(year FROM :'today'::date) \gset

-- a statement's SQLSTATE (messages hold dates)
CREATE FUNCTION pg_temp.sqlstate_of(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN others THEN
    RETURN SQLSTATE;
END
$$;
-- a result handed over by the TTHC system, dated `days` from today
CREATE FUNCTION pg_temp.nd_payload(ext text, days int) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object(
        'external_id', ext, 'agency_code', '000.00.41.H41', 'doc_type', 'QĐ',
        'abstract', 'V/v thu hồi giấy phép', 'signer', 'nd_lead',
        'issued_on', to_char((now() AT TIME ZONE ioffice.timezone())::date + days, 'YYYY-MM-DD'),
        'files', jsonb_build_array(jsonb_build_object('name', 'kq.pdf', 'content', encode(content, 'base64'))),
        'trail', jsonb_build_object('name', 'qtxl.pdf', 'content', encode(content, 'base64')))
    FROM pdf
$$;
-- a document through the outgoing flow to the clerk, awaiting issue
CREATE FUNCTION pg_temp.nd_draft(abstract text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_doc bigint;
BEGIN
    PERFORM set_config('ioffice.actor', 'nd_spec', true);
    v_doc := ioffice.create_outgoing('QĐ', abstract);
    PERFORM ioffice.attach(v_doc, 'qd.pdf', (SELECT content FROM pdf));
    PERFORM ioffice.act(v_doc, 'submit', 'nd_lead');
    PERFORM set_config('ioffice.actor', 'nd_lead', true);
    PERFORM ioffice.act(v_doc, 'approve', 'nd_clerk');
    PERFORM set_config('ioffice.actor', 'nd_clerk', true);
    RETURN v_doc;
END
$$;

-- the clerk issues 01 today
BEGIN;
SELECT pg_temp.nd_draft('V/v kế hoạch tháng') AS first \gset
SELECT ioffice.act(:first, 'issue');
COMMIT;
SET ioffice.actor = 'nd_clerk';
-- import_issued: yesterday (back-dated after today's 01) and tomorrow
-- (future-dated) are refused; today is numbered 02
SELECT pg_temp.sqlstate_of($$SELECT ioffice.import_issued(pg_temp.nd_payload('nd-back', -1))$$) AS back_dated,
       pg_temp.sqlstate_of($$SELECT ioffice.import_issued(pg_temp.nd_payload('nd-future', 1))$$) AS future_dated;
SELECT document AS imported FROM ioffice.import_issued(pg_temp.nd_payload('nd-today', 0)) \gset
SELECT number, issued_on = :'today' AS today FROM ioffice.document WHERE id = :imported;
-- nothing of the refused ones was kept: the register holds 01 and 02, in order
SELECT number, issued_on = :'today' AS today, symbol
FROM ioffice.outgoing_register WHERE register_id = :reg ORDER BY number;
SELECT last_issued_on = :'today' AS register_last_date, next_number FROM ioffice.register WHERE id = :reg;
-- take_number dates its number today, after them
SELECT number, symbol FROM ioffice.take_number(:reg, 'QĐ');

-- A register whose last date is after today (an entry dated ahead before
-- this rule, or ioffice.timezone moved west): no path numbers under it,
-- neither act's issue nor take_number nor import_issued.  (The counter and
-- its date are the engine's: set here by hand, in a transaction undone.)
SELECT pg_temp.nd_draft('V/v lịch công tác') AS second \gset
RESET ioffice.actor;
BEGIN;
ALTER TABLE ioffice.register DISABLE TRIGGER register_guard;
UPDATE ioffice.register SET last_issued_on = :'today'::date + 1 WHERE id = :reg;
SET LOCAL ioffice.actor = 'nd_clerk';
SELECT pg_temp.sqlstate_of(format($$SELECT ioffice.act(%s, 'issue')$$, :second)) AS act_issue,
       pg_temp.sqlstate_of(format($$SELECT ioffice.take_number(%s, 'QĐ')$$, :reg)) AS take_number,
       pg_temp.sqlstate_of($$SELECT ioffice.import_issued(pg_temp.nd_payload('nd-after', 0))$$) AS import_today;
ROLLBACK;
-- the date of an issued document stays as registered, whoever writes the row
SELECT pg_temp.sqlstate_of(format($$UPDATE ioffice.document SET issued_on = issued_on - 1 WHERE id = %s$$, :first))
       AS redated_by_hand;
SET ioffice.actor = 'nd_clerk';
SELECT ioffice.act(:second, 'issue');
SELECT number, issued_on = :'today' AS today FROM ioffice.document WHERE id = :second;
RESET ioffice.actor;
