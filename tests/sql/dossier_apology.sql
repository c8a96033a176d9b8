-- The apology slip with a new return date for a late dossier (phiếu xin lỗi
-- và hẹn lại ngày trả kết quả; sql/parts/99_dossier_apology.sql): when it is
-- due, who may send it, what the applicant receives, and what it leaves.
-- The one-stop officer tam comes from the dossier test.  Dates are relative
-- to now: a dossier received 20 days ago with 2 working days is late on any
-- day; one received now with 10 working days is not.
SET client_min_messages = warning;

CREATE FUNCTION pg_temp.outcome(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_state text;
    v_message text;
BEGIN
    EXECUTE stmt;
    RETURN 'done';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT;
    RETURN v_state || ': ' || regexp_replace(regexp_replace(v_message, '[0-9]{2}/[0-9]{2}/[0-9]{4} [0-9:]{5}', '<date>', 'g'),
                                             '[0-9A-Z.]{13}-[0-9]{6}-[0-9]{4}', '<code>', 'g');
END
$$;

-- an endpoint that takes the slips, to see what is queued
INSERT INTO ioffice.endpoint (name, url, secret, events)
VALUES ('regress_portal', 'http://127.0.0.1:9/portal', 'regress-secret-0123456789', '{dossier.apology}');

SET ioffice.actor = 'tam';
SELECT ioffice.receive_dossier('1.000003.000.00.00.H41', 'Cấp giấy phép xây dựng',
       '{"name": "Lò Văn Pấng", "phone": "0912 345 678"}', 2,
       jsonb_build_object('received_at', now() - interval '20 days')) AS late \gset
SELECT ioffice.receive_dossier('1.000003.000.00.00.H41', 'Cấp giấy phép xây dựng',
       '{"name": "Cà Thị Ón"}', 10) AS on_time \gset

-- not late yet: refused; nor with a date in the past, nor without a reason
SELECT pg_temp.outcome(format('SELECT ioffice.dossier_apologize(%L, now() + interval ''30 days'', ''Chờ ý kiến liên ngành'')', :'on_time'));
SELECT pg_temp.outcome(format('SELECT ioffice.dossier_apologize(%L, now() - interval ''1 day'', ''Chờ ý kiến liên ngành'')', :'late'));
SELECT pg_temp.outcome(format('SELECT ioffice.dossier_apologize(%L, now() + interval ''10 days'', ''  '')', :'late'));
SELECT pg_temp.outcome(format('SELECT ioffice.dossier_apologize(%L, now() + interval ''10 days'', NULL)', :'late'));

-- someone who sees it (the leader of the desk's agency) but is neither its
-- holder nor a one-stop officer may not; someone who cannot see it does not
-- learn it exists
SET ioffice.actor = 'loi';
SELECT pg_temp.outcome(format('SELECT ioffice.dossier_apologize(%L, now() + interval ''10 days'', ''Chờ ý kiến'')', :'late'));
SET ioffice.actor = 'regress_luan';
SELECT pg_temp.outcome(format('SELECT ioffice.dossier_apologize(%L, now() + interval ''10 days'', ''Chờ ý kiến'')', :'late'));
SET ioffice.actor = 'regress_xa_vt';
SELECT pg_temp.outcome(format('SELECT ioffice.dossier_apologize(%L, now() + interval ''10 days'', ''Chờ ý kiến'')', :'late'));
SELECT pg_temp.outcome($$SELECT ioffice.dossier_apologize('000.00.32.H41-000101-9999', now() + interval '10 days', 'Chờ ý kiến')$$);

-- the one-stop officer sends it: the slip as the applicant gets it
SET ioffice.actor = 'tam';
SELECT s->>'title' AS title, s->>'applicant' AS applicant, s->>'procedure_name' AS procedure,
       s->>'reason' AS reason, s->>'number' AS number,
       s->>'dossier' = :'late' AS names_the_dossier,
       (s->>'new_return_at')::timestamp > (s->>'promised_at')::timestamp AS later_date,
       s->>'text' LIKE 'UBND huyện Sốp Cộp xin lỗi Ông/Bà Lò Văn Pấng vì hồ sơ %Lý do: Chờ ý kiến thẩm định của Sở Xây dựng.%hẹn lại ngày trả kết quả là ngày __/__/____. Mong Ông/Bà thông cảm.' AS text_reads
  FROM ioffice.dossier_apologize(:'late', now() + interval '10 days',
                                 ' Chờ ý kiến thẩm định của Sở Xây dựng ') AS s;
-- queued for the portal, in the trail, the statutory deadline unchanged
SELECT count(*) = 1 AS queued, min(o.body->'data'->>'phone') AS phone
  FROM ioffice.outbox o JOIN ioffice.endpoint e ON e.id = o.endpoint_id
 WHERE o.event = 'dossier.apology' AND e.name = 'regress_portal';
SELECT action, state_before = state_after AS same_state, detail->>'reason' AS reason
  FROM ioffice.audit WHERE entity = 'dossier' AND action = 'apologize';
SELECT d.deadline < now() AS still_late, p.promised_at = d.deadline AS promised_was_the_deadline
  FROM ioffice.dossier d JOIN ioffice.dossier_apology p ON p.dossier_id = d.id WHERE d.code = :'late';

-- the new date is the promise now: a second slip waits until it is near
SELECT pg_temp.outcome(format('SELECT ioffice.dossier_apologize(%L, now() + interval ''20 days'', ''Lại chậm'')', :'late'));

-- who sees the dossier sees its slips; others see none (an application's
-- role, under row-level security)
CREATE ROLE regress_apology_app NOLOGIN IN ROLE ioffice_app;
SET ROLE regress_apology_app;
SELECT count(*) AS slips_seen_by_tam FROM ioffice.dossier_apology;
SET ioffice.actor = 'regress_xa_vt';
SELECT count(*) AS slips_seen_by_another_agency FROM ioffice.dossier_apology;
RESET ioffice.actor;
RESET ROLE;
DROP ROLE regress_apology_app;

-- a finished dossier needs none
SET ioffice.actor = 'tam';
SELECT ioffice.receive_dossier('1.000003.000.00.00.H41', 'Cấp giấy phép xây dựng',
       '{"name": "Lường Văn Ún"}', 0) AS gone \gset
SELECT ioffice.dossier_act(:'gone', 'withdraw', NULL, 'Công dân xin rút') AS state;
SELECT pg_temp.outcome(format('SELECT ioffice.dossier_apologize(%L, now() + interval ''10 days'', ''Chờ'')', :'gone'));
RESET ioffice.actor;
DELETE FROM ioffice.outbox WHERE event = 'dossier.apology';
DELETE FROM ioffice.endpoint WHERE name = 'regress_portal';
