-- The apology slip with a new return date (phiếu xin lỗi và hẹn lại ngày trả
-- kết quả; Decree 61/2018 art. 19, form 04 of Circular 01/2018/TT-VPCP;
-- Decree 30, Appendix VI, issue 19 item 8): a dossier that will not be
-- finished by the date promised to the applicant gets, at the latest the
-- working day before that date (or once it is past), a slip that apologises,
-- gives the reason and a new date.  The slip goes to the applicant through
-- the outbox (event dossier.apology: the public service portal or the
-- one-stop desk's system prints or sends it).  The statutory deadline does
-- not move: the dossier still counts as late in every report; what moves is
-- the date promised, which the next slip must go beyond.

CREATE TABLE dossier_apology (
    id             bigserial PRIMARY KEY,
    dossier_id     bigint NOT NULL REFERENCES dossier,
    issued_at      timestamptz NOT NULL DEFAULT now(),
    issued_by      bigint NOT NULL REFERENCES person,
    reason         text NOT NULL CHECK (length(reason) BETWEEN 1 AND 1000),
    -- the date promised before this slip (the deadline, or the last slip's)
    -- and the new one
    promised_at    timestamptz NOT NULL,
    new_return_at  timestamptz NOT NULL,
    -- what the applicant received, as sent
    slip           jsonb NOT NULL,
    CHECK (new_return_at > promised_at)
);
CREATE INDEX dossier_apology_dossier_idx ON dossier_apology (dossier_id, id);
COMMENT ON TABLE dossier_apology IS
  'Apology slips with a new return date (phiếu xin lỗi và hẹn lại ngày trả kết quả) sent for late dossiers';
SELECT pg_catalog.pg_extension_config_dump('dossier_apology', '');
SELECT pg_catalog.pg_extension_config_dump('dossier_apology_id_seq', '');
-- who sees a dossier sees its slips
ALTER TABLE dossier_apology ENABLE ROW LEVEL SECURITY;
CREATE POLICY visible ON dossier_apology FOR SELECT USING (can_see_dossier(dossier_id));
REVOKE ALL ON dossier_apology FROM PUBLIC;
GRANT SELECT ON dossier_apology TO PUBLIC;
CREATE TRIGGER audit_direct AFTER INSERT OR UPDATE OR DELETE ON dossier_apology
    FOR EACH ROW WHEN (_outside_engine()) EXECUTE FUNCTION _audit_direct('dossier_id');
CREATE TRIGGER audit_direct_truncate AFTER TRUNCATE ON dossier_apology
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_direct();

-- The slip: by the dossier's holder or a one-stop officer of its agency;
-- returns it as sent.
CREATE FUNCTION dossier_apologize(code text, new_return_at timestamptz, reason text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor   bigint := ioffice.actor();
    v_id      bigint;
    d         record;
    v_promised timestamptz;
    v_slips   int;
    v_tz      text := ioffice.timezone();
    v_slip    jsonb;
BEGIN
    PERFORM ioffice._engine_enter();
    IF code IS NULL OR new_return_at IS NULL OR reason IS NULL THEN
        RAISE EXCEPTION 'dossier_apologize needs a dossier code, the new return date and the reason'
            USING ERRCODE = '22023';
    END IF;
    IF length(btrim(reason)) NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'the reason must be 1 to 1000 characters' USING ERRCODE = '22023';
    END IF;
    v_id := ioffice._require_dossier(code);
    -- one slip at a time per dossier, judged on the state the last one left
    SELECT x.*, ws.final, a.name AS agency_name, a.code AS agency_code
      INTO d
      FROM ioffice.dossier x
      JOIN ioffice.workflow_state ws ON ws.workflow = x.workflow AND ws.state = x.state
      JOIN ioffice.unit a ON a.id = x.agency_id
     WHERE x.id = v_id
       FOR UPDATE OF x;
    IF d.final OR d.finished_at IS NOT NULL THEN
        RAISE EXCEPTION 'dossier % is finished: no apology slip is due', code
            USING ERRCODE = '55000';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ioffice.dossier_task t
                    WHERE t.dossier_id = v_id AND t.status = 'open' AND t.receiver_id = v_actor)
       AND NOT EXISTS (SELECT 1 FROM ioffice.person_role r
                        WHERE r.person_id = v_actor AND r.role = 'one_stop' AND r.unit_id = d.agency_id) THEN
        RAISE EXCEPTION 'only the dossier''s holder or a one-stop officer of its agency may send an apology slip'
            USING ERRCODE = '42501';
    END IF;
    SELECT coalesce(max(p.new_return_at), d.deadline), count(*) INTO v_promised, v_slips
      FROM ioffice.dossier_apology p WHERE p.dossier_id = v_id;
    -- at the latest one working day before the promised date, or after it
    IF v_promised > now() AND ioffice.working_days_between(now(), v_promised) > 1 THEN
        RAISE EXCEPTION 'dossier % is not late: its return is promised for %', code,
              to_char(v_promised AT TIME ZONE v_tz, 'DD/MM/YYYY HH24:MI')
            USING ERRCODE = '55000',
                  HINT = 'A slip is sent from the working day before the promised date on.';
    END IF;
    IF new_return_at <= greatest(now(), v_promised) THEN
        RAISE EXCEPTION 'the new return date must be later than now and than the date promised (%)',
              to_char(v_promised AT TIME ZONE v_tz, 'DD/MM/YYYY HH24:MI')
            USING ERRCODE = '22023';
    END IF;

    v_slip := jsonb_build_object(
        'title', 'PHIẾU XIN LỖI VÀ HẸN LẠI NGÀY TRẢ KẾT QUẢ',
        'agency', d.agency_name, 'agency_code', d.agency_code,
        'applicant', d.applicant->>'name',
        'phone', d.applicant->>'phone', 'email', d.applicant->>'email',
        'dossier', d.code, 'procedure_code', d.procedure_code, 'procedure_name', d.procedure_name,
        'received_at', to_char(d.received_at AT TIME ZONE v_tz, 'YYYY-MM-DD"T"HH24:MI:SS'),
        'promised_at', to_char(v_promised AT TIME ZONE v_tz, 'YYYY-MM-DD"T"HH24:MI:SS'),
        'new_return_at', to_char(new_return_at AT TIME ZONE v_tz, 'YYYY-MM-DD"T"HH24:MI:SS'),
        'reason', btrim(reason),
        'number', v_slips + 1,
        'issued_by', (SELECT p.full_name FROM ioffice.person p WHERE p.id = v_actor),
        'text', format('%s xin lỗi Ông/Bà %s vì hồ sơ %s (%s), tiếp nhận ngày %s, hẹn trả kết quả ngày %s, '
                       'chưa được giải quyết đúng hạn. Lý do: %s. %s hẹn lại ngày trả kết quả là ngày %s. '
                       'Mong Ông/Bà thông cảm.',
                       d.agency_name, d.applicant->>'name', d.code, d.procedure_name,
                       to_char(d.received_at AT TIME ZONE v_tz, 'DD/MM/YYYY'),
                       to_char(v_promised AT TIME ZONE v_tz, 'DD/MM/YYYY'),
                       btrim(reason), d.agency_name,
                       to_char(new_return_at AT TIME ZONE v_tz, 'DD/MM/YYYY')));
    INSERT INTO ioffice.dossier_apology (dossier_id, issued_by, reason, promised_at, new_return_at, slip)
    VALUES (v_id, v_actor, btrim(reason), v_promised, new_return_at, v_slip);
    UPDATE ioffice.dossier x SET updated_at = now() WHERE x.id = v_id;
    PERFORM ioffice._audit('dossier', v_id, 'apologize', d.state, d.state,
                           jsonb_build_object('promised_at', v_promised, 'new_return_at', new_return_at,
                                              'reason', btrim(reason)),
                           NULL, 'dossier:' || v_id);
    PERFORM ioffice._emit('dossier.apology', v_slip);
    PERFORM ioffice._engine_leave();
    RETURN v_slip;
END
$$;
COMMENT ON FUNCTION dossier_apologize(text, timestamptz, text) IS
  'The apology slip with a new return date for a late dossier (phiếu xin lỗi và hẹn lại ngày trả kết quả), sent as event dossier.apology; by its holder or a one-stop officer';
