
-- ---------------------------------------------------------------------------
-- Administrative-procedure dossiers (hồ sơ TTHC, seed 003)
-- ---------------------------------------------------------------------------

-- The national dossier statuses (1 Mới đăng ký ... 10 Đã trả kết quả) and
-- which one each state of a dossier workflow reports: the TTHC system is
-- told (event dossier.status) whenever a dossier's status changes.
CREATE TABLE dossier_status (
    code        int PRIMARY KEY CHECK (code BETWEEN 1 AND 99),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    builtin     boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE dossier_status IS 'National dossier statuses (trạng thái hồ sơ TTHC)';
INSERT INTO dossier_status (code, name, builtin) VALUES
    (1, 'Mới đăng ký', true),
    (2, 'Được tiếp nhận', true),
    (3, 'Không được tiếp nhận', true),
    (4, 'Đang xử lý', true),
    (5, 'Yêu cầu bổ sung giấy tờ', true),
    (6, 'Yêu cầu thực hiện nghĩa vụ tài chính', true),
    (7, 'Công dân yêu cầu rút hồ sơ', true),
    (8, 'Dừng xử lý', true),
    (9, 'Đã xử lý xong', true),
    (10, 'Đã trả kết quả', true);

CREATE TABLE dossier_state_status (
    workflow    text NOT NULL,
    state       text NOT NULL,
    status      int NOT NULL REFERENCES dossier_status,
    builtin     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (workflow, state),
    FOREIGN KEY (workflow, state) REFERENCES workflow_state ON UPDATE CASCADE ON DELETE CASCADE
);
COMMENT ON TABLE dossier_state_status IS 'The national status a state of a dossier workflow reports';

CREATE TABLE dossier (
    id              bigserial PRIMARY KEY,
    -- <receiving unit code>-YYMMDD-NNNN: the unit, the day received (in
    -- ioffice.timezone) and the unit's sequence of that day
    code            text NOT NULL UNIQUE
                    CHECK (code ~ '^[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}-[0-9]{6}-[0-9]{4}$'),
    workflow        text NOT NULL DEFAULT 'dossier',
    state           text NOT NULL,
    procedure_code  text NOT NULL CHECK (procedure_code ~ '^[A-Za-z0-9._-]{1,60}$'),
    procedure_name  text NOT NULL CHECK (length(procedure_name) BETWEEN 1 AND 1000),
    -- {name, phone, email, address}: name required, the others optional strings
    applicant       jsonb NOT NULL CHECK (jsonb_typeof(applicant) = 'object' AND applicant ? 'name'),
    agency_id       bigint NOT NULL REFERENCES unit,
    unit_code       text NOT NULL,
    -- the one-stop officer who received it; NULL while an online registration
    -- waits for the desk to accept it (register_dossier)
    received_by     bigint REFERENCES person,
    received_at     timestamptz NOT NULL,
    statutory_days  int NOT NULL CHECK (statutory_days BETWEEN 0 AND 3650),
    deadline        timestamptz NOT NULL,
    how_received    text NOT NULL DEFAULT 'direct' CHECK (how_received IN ('direct', 'online', 'postal')),
    result_delivery text CHECK (length(result_delivery) BETWEEN 1 AND 500),
    paused_at       timestamptz,
    paused_days     int NOT NULL DEFAULT 0 CHECK (paused_days >= 0),
    -- the specialist's proposed abstract, for the clerk to copy
    abstract        text CHECK (length(abstract) BETWEEN 1 AND 500),
    result_document_id bigint REFERENCES document,
    finished_at     timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    -- registered online (national status 1) at this time, then accepted
    registered_at   timestamptz,
    FOREIGN KEY (workflow, state) REFERENCES workflow_state ON UPDATE CASCADE,
    CONSTRAINT dossier_received_or_registered CHECK (received_by IS NOT NULL OR registered_at IS NOT NULL)
);
CREATE INDEX dossier_agency_state_idx ON dossier (agency_id, state);
CREATE INDEX dossier_open_deadline_idx ON dossier (deadline) WHERE finished_at IS NULL;
CREATE INDEX dossier_received_by_idx ON dossier (received_by);
COMMENT ON TABLE dossier IS 'Administrative-procedure dossiers (hồ sơ thủ tục hành chính)';
COMMENT ON COLUMN dossier.paused_days IS 'Working days the clock stood still (requests for papers or fees)';

-- the day's counter of a receiving unit: its row lock makes the sequence
-- gapless, like a register's (a rolled-back reception gives its number back)
CREATE TABLE dossier_counter (
    unit_code   text NOT NULL,
    day         date NOT NULL,
    last        int NOT NULL CHECK (last BETWEEN 1 AND 9999),
    PRIMARY KEY (unit_code, day)
);

CREATE TABLE dossier_task (
    id              bigserial PRIMARY KEY,
    dossier_id      bigint NOT NULL REFERENCES dossier,
    step            int NOT NULL,
    action          text NOT NULL,
    sender_id       bigint NOT NULL REFERENCES person,
    sender_for      bigint REFERENCES person,
    request         text,
    receiver_id     bigint NOT NULL REFERENCES person,
    received_at     timestamptz NOT NULL DEFAULT now(),
    deadline        date,
    options         jsonb NOT NULL DEFAULT '{}',
    file_ids        bigint[] NOT NULL DEFAULT '{}',
    status          text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'done')),
    processing_note text,
    processed_at    timestamptz,
    processed_by    bigint REFERENCES person,
    closed_by_action text,
    UNIQUE (dossier_id, step),
    CHECK ((status = 'done') = (processed_at IS NOT NULL))
);
CREATE UNIQUE INDEX dossier_task_one_open_idx ON dossier_task (dossier_id) WHERE status = 'open';
CREATE INDEX dossier_task_receiver_idx ON dossier_task (receiver_id);
CREATE INDEX dossier_task_sender_idx ON dossier_task (sender_id);
CREATE INDEX dossier_task_processed_by_idx ON dossier_task (processed_by)
    WHERE processed_by <> receiver_id;
COMMENT ON TABLE dossier_task IS 'Hand-overs of a dossier: its processing trail (quá trình xử lý hồ sơ)';

CREATE TABLE dossier_file (
    id          bigserial PRIMARY KEY,
    dossier_id  bigint NOT NULL REFERENCES dossier,
    -- component: a paper of the dossier (thành phần hồ sơ), opinion: a file of
    -- a processing opinion (the specialist's draft result), result: uploaded
    -- by the leader as the result
    purpose     text NOT NULL CHECK (purpose IN ('component', 'opinion', 'result')),
    name        text NOT NULL,
    kind        text NOT NULL,
    size        int NOT NULL,
    sha256      bytea NOT NULL CHECK (length(sha256) = 32),
    content     bytea NOT NULL,
    uploaded_by bigint NOT NULL REFERENCES person,
    uploaded_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE dossier_file ALTER COLUMN content SET STORAGE EXTERNAL;
CREATE INDEX dossier_file_dossier_idx ON dossier_file (dossier_id);
COMMENT ON TABLE dossier_file IS 'Files of dossiers: components, opinion files, results';

-- Results issued by an external TTHC system (import_issued): one row per
-- external id, so that a repeated call answers the same and creates nothing.
CREATE TABLE import_issued (
    external_id  text PRIMARY KEY CHECK (length(external_id) BETWEEN 1 AND 200),
    payload_sha256 bytea NOT NULL,
    document_id  bigint REFERENCES document,
    number       int,
    symbol       text,
    imported_by  bigint NOT NULL REFERENCES person,
    imported_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE import_issued IS 'Results issued by the TTHC system and registered here, by their external id';

SELECT pg_catalog.pg_extension_config_dump('dossier_status', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('dossier_state_status', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('dossier', '');
SELECT pg_catalog.pg_extension_config_dump('dossier_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('dossier_counter', '');
SELECT pg_catalog.pg_extension_config_dump('dossier_task', '');
SELECT pg_catalog.pg_extension_config_dump('dossier_task_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('dossier_file', '');
SELECT pg_catalog.pg_extension_config_dump('dossier_file_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('import_issued', '');

CREATE TRIGGER audit_direct AFTER INSERT OR UPDATE OR DELETE ON dossier
    FOR EACH ROW WHEN (_outside_engine()) EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct_truncate AFTER TRUNCATE ON dossier
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct AFTER INSERT OR UPDATE OR DELETE ON dossier_task
    FOR EACH ROW WHEN (_outside_engine()) EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct_truncate AFTER TRUNCATE ON dossier_task
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct AFTER INSERT OR UPDATE OR DELETE ON dossier_file
    FOR EACH ROW WHEN (_outside_engine()) EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct_truncate AFTER TRUNCATE ON dossier_file
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct AFTER INSERT OR UPDATE OR DELETE ON import_issued
    FOR EACH ROW WHEN (_outside_engine()) EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct_truncate AFTER TRUNCATE ON import_issued
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_direct();

-- ---------------------------------------------------------------------------
-- The dossier workflow (seed 003) and the result document's own
-- ---------------------------------------------------------------------------

INSERT INTO workflow (name, label, builtin) VALUES ('dossier', 'Hồ sơ thủ tục hành chính', true);
INSERT INTO workflow_state (workflow, state, label, initial, final, builtin) VALUES
    ('dossier', 'received',        'Vừa tiếp nhận',            true,  false, true),
    ('dossier', 'assigning',       'Chờ lãnh đạo phòng giao',  false, false, true),
    ('dossier', 'processing',      'Chuyên viên đang xử lý',   false, false, true),
    ('dossier', 'proposed',        'Chờ lãnh đạo ký duyệt',    false, false, true),
    ('dossier', 'awaiting_issue',  'Chờ văn thư phát hành',    false, false, true),
    ('dossier', 'awaiting_papers', 'Chờ bổ sung giấy tờ',      false, false, true),
    ('dossier', 'awaiting_fees',   'Chờ thực hiện nghĩa vụ tài chính', false, false, true),
    ('dossier', 'done',            'Đã có kết quả, chờ trả',   false, false, true),
    ('dossier', 'returned',        'Đã trả kết quả',           false, true,  true),
    ('dossier', 'rejected',        'Không được tiếp nhận',     false, true,  true),
    ('dossier', 'withdrawn',       'Công dân rút hồ sơ',       false, true,  true),
    ('dossier', 'stopped',         'Dừng xử lý',               false, true,  true),
    ('dossier', 'registered',      'Mới đăng ký, chờ tiếp nhận', false, false, true);

INSERT INTO dossier_state_status (workflow, state, status, builtin) VALUES
    ('dossier', 'registered', 1, true),
    ('dossier', 'received', 2, true),
    ('dossier', 'assigning', 4, true),
    ('dossier', 'processing', 4, true),
    ('dossier', 'proposed', 4, true),
    ('dossier', 'awaiting_issue', 4, true),
    ('dossier', 'awaiting_papers', 5, true),
    ('dossier', 'awaiting_fees', 6, true),
    ('dossier', 'done', 9, true),
    ('dossier', 'returned', 10, true),
    ('dossier', 'rejected', 3, true),
    ('dossier', 'withdrawn', 7, true),
    ('dossier', 'stopped', 8, true);

INSERT INTO workflow_transition
    (workflow, action, from_state, to_state, label, taken_by, receiver, receiver_role,
     guards, effects, options, delegable, builtin)
VALUES
    ('dossier', 'transfer', 'received', 'assigning', 'Chuyển phòng chuyên môn', 'holder', 'given', 'leader',
     '{receiver_not_actor}', '{}', '{zalo,sms,email,deadline}', false, true),
    ('dossier', 'reject', 'received', 'rejected', 'Không tiếp nhận', 'holder', 'none', NULL,
     '{note_given}', '{}', '{zalo}', false, true),
    ('dossier', 'assign', 'assigning', 'processing', 'Giao chuyên viên xử lý', 'holder', 'given', 'specialist',
     '{receiver_not_actor}', '{}', '{zalo,sms,email,deadline}', true, true),
    ('dossier', 'propose', 'processing', 'proposed', 'Trình dự thảo kết quả', 'holder', 'given', 'leader',
     '{receiver_not_actor,has_opinion_file}', '{keep_abstract}', '{abstract,zalo,sms,email,deadline}', false, true),
    ('dossier', 'forward', 'proposed', 'proposed', 'Trình lãnh đạo khác', 'holder', 'given', 'leader',
     '{receiver_not_actor}', '{}', '{zalo,sms,email,deadline}', true, true),
    ('dossier', 'send_back', 'proposed', 'processing', 'Trả lại chuyên viên', 'holder', 'given', 'specialist',
     '{receiver_not_actor}', '{}', '{zalo,sms,email,deadline}', true, true),
    ('dossier', 'sign', 'proposed', 'awaiting_issue', 'Lãnh đạo ký CA', 'holder', 'given', 'clerk',
     '{}', '{make_result}', '{result_file,doc_type,mode,zalo,sms,email,deadline}', false, true),
    ('dossier', 'return_to_leader', 'awaiting_issue', 'proposed', 'Trả lại lãnh đạo ký lại', 'holder', 'given', 'leader',
     '{note_given}', '{drop_result}', '{zalo,sms,email,deadline}', false, true),
    ('dossier', 'issue', 'awaiting_issue', 'done', 'Văn bản liên thông iOffice', 'holder', 'drafter', NULL,
     '{result_signed}', '{issue_result}', '{register,doc_type,signer,abstract,zalo,sms,email}', false, true),
    ('dossier', 'return_result', 'done', 'returned', 'Trả kết quả', 'holder', 'none', NULL,
     '{}', '{}', '{zalo}', false, true),
    ('dossier', 'request_papers', 'processing', 'awaiting_papers', 'Yêu cầu bổ sung giấy tờ', 'holder', 'none', NULL,
     '{note_given}', '{pause_clock}', '{zalo}', false, true),
    ('dossier', 'request_fees', 'processing', 'awaiting_fees', 'Yêu cầu thực hiện nghĩa vụ tài chính', 'holder', 'none', NULL,
     '{note_given}', '{pause_clock}', '{zalo}', false, true),
    ('dossier', 'resume', 'awaiting_papers', 'processing', 'Tiếp tục xử lý', 'holder', 'none', NULL,
     '{}', '{resume_clock}', '{zalo}', false, true),
    ('dossier', 'resume', 'awaiting_fees', 'processing', 'Tiếp tục xử lý', 'holder', 'none', NULL,
     '{}', '{resume_clock}', '{zalo}', false, true),
    ('dossier', 'withdraw', 'received', 'withdrawn', 'Công dân rút hồ sơ', 'holder', 'none', NULL,
     '{note_given}', '{}', '{zalo}', false, true),
    ('dossier', 'withdraw', 'assigning', 'withdrawn', 'Công dân rút hồ sơ', 'holder', 'none', NULL,
     '{note_given}', '{}', '{zalo}', false, true),
    ('dossier', 'withdraw', 'processing', 'withdrawn', 'Công dân rút hồ sơ', 'holder', 'none', NULL,
     '{note_given}', '{}', '{zalo}', false, true),
    ('dossier', 'withdraw', 'awaiting_papers', 'withdrawn', 'Công dân rút hồ sơ', 'holder', 'none', NULL,
     '{note_given}', '{resume_clock}', '{zalo}', false, true),
    ('dossier', 'withdraw', 'awaiting_fees', 'withdrawn', 'Công dân rút hồ sơ', 'holder', 'none', NULL,
     '{note_given}', '{resume_clock}', '{zalo}', false, true),
    ('dossier', 'stop', 'assigning', 'stopped', 'Dừng xử lý', 'holder', 'none', NULL,
     '{note_given}', '{}', '{zalo}', false, true),
    ('dossier', 'stop', 'processing', 'stopped', 'Dừng xử lý', 'holder', 'none', NULL,
     '{note_given}', '{}', '{zalo}', false, true),
    ('dossier', 'stop', 'proposed', 'stopped', 'Dừng xử lý', 'holder', 'none', NULL,
     '{note_given}', '{}', '{zalo}', false, true),
    ('dossier', 'stop', 'awaiting_papers', 'stopped', 'Dừng xử lý', 'holder', 'none', NULL,
     '{note_given}', '{resume_clock}', '{zalo}', false, true),
    ('dossier', 'stop', 'awaiting_fees', 'stopped', 'Dừng xử lý', 'holder', 'none', NULL,
     '{note_given}', '{resume_clock}', '{zalo}', false, true),
    -- an online registration waits for any officer of the desk: accepting it
    -- is the reception (its clock starts), or it is refused or withdrawn
    ('dossier', 'accept', 'registered', 'received', 'Tiếp nhận hồ sơ trực tuyến', 'one_stop', 'none', NULL,
     '{}', '{start_clock}', '{zalo}', false, true),
    ('dossier', 'reject', 'registered', 'rejected', 'Không tiếp nhận', 'one_stop', 'none', NULL,
     '{note_given}', '{}', '{zalo}', false, true),
    ('dossier', 'withdraw', 'registered', 'withdrawn', 'Công dân rút hồ sơ', 'one_stop', 'none', NULL,
     '{note_given}', '{}', '{zalo}', false, true);

-- The result of a dossier, and a result imported from the TTHC system, are
-- documents of their own workflow: made by the engine in awaiting_issue
-- (nobody holds them, so act() cannot move them) and issued by the dossier's
-- issue action or by import_issued().  A separate workflow keeps them out of
-- the outgoing lists' tabs of drafts and approvals while they stay in the
-- outgoing register once issued.
INSERT INTO workflow (name, label, builtin) VALUES ('dossier_result', 'Kết quả giải quyết TTHC', true);
INSERT INTO workflow_state (workflow, state, label, initial, final, builtin) VALUES
    ('dossier_result', 'awaiting_issue', 'Chờ văn thư phát hành', true,  false, true),
    ('dossier_result', 'issued',         'Đã phát hành',          false, true,  true),
    ('dossier_result', 'withdrawn',      'Đã hủy, trình ký lại',  false, true,  true);
INSERT INTO workflow_transition
    (workflow, action, from_state, to_state, label, taken_by, receiver, receiver_role,
     guards, effects, options, delegable, builtin)
VALUES
    ('dossier_result', 'issue', 'awaiting_issue', 'issued', 'Phát hành', 'holder', 'none', NULL,
     '{}', '{}', '{}', false, true),
    -- taken by the dossier's return_to_leader (effect drop_result), never by act()
    ('dossier_result', 'withdraw', 'awaiting_issue', 'withdrawn', 'Hủy kết quả', 'holder', 'none', NULL,
     '{}', '{}', '{}', false, true);

-- ---------------------------------------------------------------------------
-- Functions
-- ---------------------------------------------------------------------------

-- What the TTHC system is told when a dossier's status changes.
CREATE FUNCTION _dossier_event(dossier bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- (PL/pgSQL for its plan kept across calls, as can_see())
    RETURN (SELECT jsonb_build_object(
             'code', d.code, 'status', s.code, 'status_name', s.name, 'state', d.state,
             'procedure_code', d.procedure_code,
             'received_at', to_char(d.received_at AT TIME ZONE ioffice.timezone(), 'YYYY-MM-DD"T"HH24:MI:SS'),
             'deadline', to_char(d.deadline AT TIME ZONE ioffice.timezone(), 'YYYY-MM-DD"T"HH24:MI:SS'),
             'paused', d.paused_at IS NOT NULL,
             'result_symbol', r.symbol)
      FROM ioffice.dossier d
      JOIN ioffice.dossier_state_status x ON x.workflow = d.workflow AND x.state = d.state
      JOIN ioffice.dossier_status s ON s.code = x.status
      LEFT JOIN ioffice.document r ON r.id = d.result_document_id
     WHERE d.id = _dossier_event.dossier);
END
$$;
REVOKE ALL ON FUNCTION _dossier_event(bigint) FROM PUBLIC;

-- A new dossier, received at the desk (receive_dossier) or registered
-- online (register_dossier).  Statutory days are bounded to 365 working
-- days: the procedures' catalogue gives days to weeks, more is a typing
-- mistake, not a procedure's time.
CREATE FUNCTION _new_dossier(procedure_code text, procedure_name text, applicant jsonb,
                             statutory_days int, details jsonb, online boolean)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor bigint := ioffice.actor();
    v_details jsonb := coalesce(details, '{}');
    v_agency bigint;
    v_unit_code text;
    v_at timestamptz := now();
    v_day date;
    v_seq int;
    v_code text;
    v_state text;
    v_id bigint;
    v_key text;
    v_how text;
BEGIN
    PERFORM ioffice._engine_enter();
    IF procedure_code IS NULL OR procedure_name IS NULL OR applicant IS NULL
       OR statutory_days IS NULL THEN
        RAISE EXCEPTION '% needs a procedure code and name, an applicant and the statutory days',
                        CASE WHEN online THEN 'register_dossier' ELSE 'receive_dossier' END
            USING ERRCODE = '22023';
    END IF;
    IF procedure_code !~ '^[A-Za-z0-9._-]{1,60}$' THEN
        RAISE EXCEPTION 'procedure code "%" is not a procedure code', left(procedure_code, 60)
            USING ERRCODE = '22023', HINT = 'Procedure codes look like 2.002166.000.00.00.H41.';
    END IF;
    IF length(procedure_name) NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'the procedure name must be 1 to 1000 characters' USING ERRCODE = '22023';
    END IF;
    IF statutory_days NOT BETWEEN 0 AND 365 THEN
        RAISE EXCEPTION 'statutory_days must be from 0 to 365 working days, not %', statutory_days
            USING ERRCODE = '22023';
    END IF;

    -- the applicant: {name, phone, email, address}
    IF jsonb_typeof(applicant) <> 'object' THEN
        RAISE EXCEPTION 'applicant must be a JSON object' USING ERRCODE = '22023';
    END IF;
    FOR v_key IN SELECT jsonb_object_keys(applicant) LOOP
        IF v_key NOT IN ('name', 'phone', 'email', 'address') THEN
            RAISE EXCEPTION 'unknown applicant field "%"', v_key USING ERRCODE = '22023',
                  HINT = 'An applicant has name, phone, email and address.';
        END IF;
        IF jsonb_typeof(applicant->v_key) <> 'string' THEN
            RAISE EXCEPTION 'applicant.% must be a string', v_key USING ERRCODE = '22023';
        END IF;
    END LOOP;
    IF coalesce(length(btrim(applicant->>'name')), 0) NOT BETWEEN 1 AND 200 THEN
        RAISE EXCEPTION 'applicant.name is required (1 to 200 characters)' USING ERRCODE = '22023';
    END IF;
    IF applicant ? 'phone' AND (applicant->>'phone') !~ '^\+?[0-9][0-9 .]{5,19}$' THEN
        RAISE EXCEPTION 'applicant.phone "%" is not a phone number', left(applicant->>'phone', 40)
            USING ERRCODE = '22023';
    END IF;
    IF applicant ? 'email' AND (applicant->>'email') !~ '^[^@\s]{1,100}@[^@\s]{1,100}$' THEN
        RAISE EXCEPTION 'applicant.email "%" is not an e-mail address', left(applicant->>'email', 60)
            USING ERRCODE = '22023';
    END IF;
    IF length(applicant->>'address') > 500 THEN
        RAISE EXCEPTION 'applicant.address is longer than 500 characters' USING ERRCODE = '22023';
    END IF;

    PERFORM ioffice._check_details(v_details,
        '{"how_received": "string", "result_delivery": "string", "received_at": "string"}');
    v_how := coalesce(v_details->>'how_received', CASE WHEN online THEN 'online' ELSE 'direct' END);
    IF v_how NOT IN ('direct', 'online', 'postal') THEN
        RAISE EXCEPTION 'details.how_received must be direct, online or postal' USING ERRCODE = '22023';
    END IF;
    IF online AND v_how <> 'online' THEN
        RAISE EXCEPTION 'a registration is online: details.how_received cannot be %', v_how
            USING ERRCODE = '22023', HINT = 'A dossier brought to the desk is received with receive_dossier().';
    END IF;
    IF length(v_details->>'result_delivery') NOT BETWEEN 1 AND 500 THEN
        RAISE EXCEPTION 'details.result_delivery must be 1 to 500 characters' USING ERRCODE = '22023';
    END IF;
    -- a dossier received (or registered) earlier (paper, online out of hours) is entered with
    -- its time; never in the future, nor older than the DBA's ioffice.dossier_backdating_days
    -- (it starts the clock, or dates the registration)
    IF v_details ? 'received_at' THEN
        v_at := coalesce(ioffice._time_detail(v_details, 'received_at'), now());
        IF v_at > now() OR v_at < greatest('2000-01-01', now() - make_interval(days => current_setting('ioffice.dossier_backdating_days')::int)) THEN
            RAISE EXCEPTION 'details.received_at must be a past time, at most % days ago (ioffice.dossier_backdating_days)', current_setting('ioffice.dossier_backdating_days') USING ERRCODE = '22023';
        END IF;
    END IF;

    -- the one-stop officer receives for their agency, whose code names the dossier
    SELECT u.agency_id, a.code INTO v_agency, v_unit_code
      FROM ioffice.person p JOIN ioffice.unit u ON u.id = p.unit_id
      JOIN ioffice.unit a ON a.id = u.agency_id WHERE p.id = v_actor;
    IF NOT EXISTS (SELECT 1 FROM ioffice.person_role r
                   WHERE r.person_id = v_actor AND r.role = 'one_stop' AND r.unit_id = v_agency) THEN
        RAISE EXCEPTION 'only a one-stop officer (bộ phận một cửa) may % dossiers',
                        CASE WHEN online THEN 'register' ELSE 'receive' END
            USING ERRCODE = '42501';
    END IF;
    IF v_unit_code IS NULL THEN
        RAISE EXCEPTION 'the receiving agency has no agency code' USING ERRCODE = '55000',
              HINT = 'Dossier codes start with the agency code (DDD.DD.DD.LDD): set unit.code.';
    END IF;
    IF online THEN
        -- the state that reports national status 1 (Mới đăng ký)
        SELECT s.state INTO v_state FROM ioffice.workflow_state s
          JOIN ioffice.dossier_state_status x ON x.workflow = s.workflow AND x.state = s.state
         WHERE s.workflow = 'dossier' AND x.status = 1 AND NOT s.final ORDER BY s.state LIMIT 1;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'workflow dossier has no state for online registrations' USING ERRCODE = '55000',
                  HINT = 'Give a state of workflow dossier national status 1 in dossier_state_status.';
        END IF;
    ELSE
        SELECT s.state INTO v_state FROM ioffice.workflow_state s
         WHERE s.workflow = 'dossier' AND s.initial ORDER BY s.state LIMIT 1;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'workflow dossier has no initial state' USING ERRCODE = '55000';
        END IF;
    END IF;

    -- the sequence of the unit's day: the counter row stays locked to commit
    v_day := (v_at AT TIME ZONE ioffice.timezone())::date;
    INSERT INTO ioffice.dossier_counter AS c (unit_code, day, last)
    VALUES (v_unit_code, v_day, 1)
    ON CONFLICT (unit_code, day) DO UPDATE SET last = c.last + 1
    WHERE c.last < 9999
    RETURNING c.last INTO v_seq;
    IF v_seq IS NULL THEN
        RAISE EXCEPTION 'unit % has received 9999 dossiers on %', v_unit_code, v_day
            USING ERRCODE = '54000', DETAIL = 'Dossier codes have four digits of sequence.';
    END IF;
    v_code := v_unit_code || '-' || to_char(v_day, 'YYMMDD') || '-' || lpad(v_seq::text, 4, '0');

    -- a registration is received by nobody yet and its clock stands still
    -- (paused since it was registered) until the desk accepts it: the
    -- deadline then counts from the acceptance (effect start_clock)
    INSERT INTO ioffice.dossier (code, workflow, state, procedure_code, procedure_name, applicant,
                                 agency_id, unit_code, received_by, received_at, statutory_days,
                                 deadline, how_received, result_delivery, paused_at, registered_at)
    VALUES (v_code, 'dossier', v_state, procedure_code, procedure_name, applicant,
            v_agency, v_unit_code, CASE WHEN NOT online THEN v_actor END, v_at, statutory_days,
            ioffice.add_working_days(v_at, statutory_days), v_how, v_details->>'result_delivery',
            CASE WHEN online THEN v_at END, CASE WHEN online THEN v_at END)
    RETURNING id INTO v_id;
    -- the receiving officer holds it first; a registration waits for the desk
    IF NOT online THEN
        INSERT INTO ioffice.dossier_task (dossier_id, step, action, sender_id, request, receiver_id, received_at)
        VALUES (v_id, 1, 'receive', v_actor, 'Tiếp nhận hồ sơ', v_actor, v_at);
    END IF;

    PERFORM ioffice._audit('dossier', v_id, CASE WHEN online THEN 'register' ELSE 'receive' END, NULL, v_state,
                           jsonb_build_object('code', v_code, 'procedure_code', procedure_code,
                                              'statutory_days', statutory_days,
                                              'how_received', v_how),
                           NULL, 'dossier:' || v_id);
    PERFORM ioffice._emit('dossier.status', ioffice._dossier_event(v_id));
    PERFORM ioffice._engine_leave();
    RETURN v_code;
END
$$;
REVOKE ALL ON FUNCTION _new_dossier(text, text, jsonb, int, jsonb, boolean) FROM PUBLIC;

CREATE FUNCTION receive_dossier(procedure_code text, procedure_name text, applicant jsonb,
                                statutory_days int, details jsonb DEFAULT '{}')
RETURNS text
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ SELECT ioffice._new_dossier(procedure_code, procedure_name, applicant, statutory_days, details, false) $$;
COMMENT ON FUNCTION receive_dossier(text, text, jsonb, int, jsonb) IS
  'The one-stop officer receives a dossier; returns its code <agency code>-YYMMDD-NNNN';

-- An online registration (national status 1, Mới đăng ký), entered by the
-- one-stop desk's connection to the public service portal (an account with
-- the one_stop role): any officer of the desk may then accept it (its clock
-- starts), reject or withdraw it with dossier_act().
CREATE FUNCTION register_dossier(procedure_code text, procedure_name text, applicant jsonb,
                                 statutory_days int, details jsonb DEFAULT '{}')
RETURNS text
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ SELECT ioffice._new_dossier(procedure_code, procedure_name, applicant, statutory_days, details, true) $$;
COMMENT ON FUNCTION register_dossier(text, text, jsonb, int, jsonb) IS
  'An online registration (national status 1): waits for a one-stop officer to accept it (dossier_act accept: the clock starts then), reject or withdraw it; returns its code';

CREATE FUNCTION dossier_act(code text, action text, to_login text DEFAULT NULL,
                            note text DEFAULT NULL, options jsonb DEFAULT '{}')
    RETURNS text
    AS 'MODULE_PATHNAME', 'ioffice_dossier_act'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION dossier_act(text, text, text, text, jsonb) IS
  'Performs one action of the dossier workflow and returns the dossier''s new state';

CREATE FUNCTION dossier_attach(code text, file_name text, content bytea,
                               purpose text DEFAULT 'opinion')
    RETURNS bigint
    AS 'MODULE_PATHNAME', 'ioffice_dossier_attach'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION dossier_attach(text, text, bytea, text) IS
  'The holder of a dossier attaches a file: a component (at reception), an opinion file, or a result';

CREATE FUNCTION import_issued(payload jsonb)
    RETURNS TABLE (document bigint, number int, symbol text)
    AS 'MODULE_PATHNAME', 'ioffice_import_issued'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION import_issued(jsonb) IS
  'Registers a result issued by the TTHC system (numbered here, with its files and trail); idempotent on external_id';
REVOKE ALL ON FUNCTION import_issued(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION import_issued(jsonb) TO ioffice_app;

CREATE FUNCTION _due_soon_days() RETURNS int
    AS 'MODULE_PATHNAME', 'ioffice_due_soon_days_sql'
    LANGUAGE C STABLE;

-- ---------------------------------------------------------------------------
-- Visibility: the people who held a dossier, the leaders of their units,
-- admins.
-- ---------------------------------------------------------------------------
CREATE FUNCTION can_see_dossier(dossier bigint) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me bigint := ioffice.current_person();
BEGIN
    -- (PL/pgSQL for its plan kept across calls, as can_see())
    IF v_me IS NULL THEN
        RETURN false;
    END IF;
    RETURN EXISTS (
        WITH held AS (
            SELECT d.received_by AS person FROM ioffice.dossier d WHERE d.id = can_see_dossier.dossier
            UNION SELECT t.receiver_id FROM ioffice.dossier_task t WHERE t.dossier_id = can_see_dossier.dossier
            UNION SELECT t.sender_id FROM ioffice.dossier_task t WHERE t.dossier_id = can_see_dossier.dossier
            UNION SELECT t.processed_by FROM ioffice.dossier_task t
                   WHERE t.dossier_id = can_see_dossier.dossier AND t.processed_by IS NOT NULL)
        SELECT 1 WHERE v_me IN (SELECT person FROM held)
                    OR EXISTS (SELECT 1 FROM held h
                               JOIN ioffice.person p ON p.id = h.person
                               JOIN ioffice.person_role r
                                 ON r.unit_id = p.unit_id AND r.role = 'leader'
                               WHERE r.person_id = v_me)
                    OR EXISTS (SELECT 1 FROM ioffice.person_role r
                               WHERE r.person_id = v_me AND r.role = 'admin')
                    OR EXISTS (SELECT 1 FROM ioffice.dossier d
                               JOIN ioffice.person_role r ON r.unit_id = d.agency_id AND r.role = 'one_stop'
                               WHERE d.id = can_see_dossier.dossier AND r.person_id = v_me));
END
$$;

-- The agencies whose one-stop desk the current person serves: the desk
-- sees every dossier of its agency (it registers, receives and accepts
-- them, answers the applicant, returns the results and apologises for a
-- late one), as a clerk sees the agency's documents.
CREATE FUNCTION _one_stop_agencies() RETURNS bigint[]
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me bigint := ioffice.current_person();
BEGIN
    RETURN (SELECT coalesce(array_agg(r.unit_id), '{}') FROM ioffice.person_role r
             WHERE r.person_id = v_me AND r.role = 'one_stop');
END
$$;

-- The same as sets, for the policies (see _task_documents()): the people
-- whose dossiers the current person sees (themselves and the people of the
-- units they lead; every person for an admin, who sees every dossier), and
-- the dossiers with a task of one of them, by the dossier_task indexes.
CREATE FUNCTION _dossier_people() RETURNS bigint[]
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me bigint := ioffice.current_person();
BEGIN
    IF EXISTS (SELECT 1 FROM ioffice.person_role r WHERE r.person_id = v_me AND r.role = 'admin') THEN
        RETURN (SELECT coalesce(array_agg(p.id), '{}') FROM ioffice.person p);
    END IF;
    RETURN (SELECT coalesce(array_agg(DISTINCT x.id), '{}') FROM (
                SELECT v_me AS id WHERE v_me IS NOT NULL
                UNION ALL
                SELECT p.id FROM ioffice.person_role r
                  JOIN ioffice.person p ON p.unit_id = r.unit_id
                 WHERE r.person_id = v_me AND r.role = 'leader') x);
END
$$;
CREATE FUNCTION _task_dossiers() RETURNS bigint[]
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_people bigint[];
BEGIN
    IF ioffice.is_admin() THEN
        RETURN '{}';
    END IF;
    v_people := ioffice._dossier_people();
    RETURN (SELECT coalesce(array_agg(DISTINCT x.dossier_id), '{}') FROM (
                SELECT t.dossier_id FROM ioffice.dossier_task t WHERE t.receiver_id = ANY (v_people)
                UNION ALL
                SELECT t.dossier_id FROM ioffice.dossier_task t WHERE t.sender_id = ANY (v_people)
                UNION ALL
                SELECT t.dossier_id FROM ioffice.dossier_task t
                 WHERE t.processed_by = ANY (v_people) AND t.processed_by <> t.receiver_id) x);
END
$$;

ALTER TABLE dossier ENABLE ROW LEVEL SECURITY;
ALTER TABLE dossier_task ENABLE ROW LEVEL SECURITY;
ALTER TABLE dossier_file ENABLE ROW LEVEL SECURITY;
-- can_see_dossier() as three indexed tests (an admin's every person covers
-- every dossier); a dossier's tasks and files are seen with it: its row, by
-- the primary key, or all the visible ones hashed
CREATE POLICY visible ON dossier FOR SELECT
    USING (received_by = ANY ((SELECT ioffice._dossier_people())::bigint[])
           OR id = ANY ((SELECT ioffice._task_dossiers())::bigint[])
           OR agency_id = ANY ((SELECT ioffice._one_stop_agencies())::bigint[]));
CREATE POLICY visible ON dossier_task FOR SELECT
    USING (EXISTS (SELECT 1 FROM ioffice.dossier s WHERE s.id = dossier_task.dossier_id));
CREATE POLICY visible ON dossier_file FOR SELECT
    USING (EXISTS (SELECT 1 FROM ioffice.dossier s WHERE s.id = dossier_file.dossier_id));
GRANT SELECT ON dossier, dossier_task, dossier_file, dossier_status, dossier_state_status TO PUBLIC;
GRANT INSERT, UPDATE, DELETE ON dossier_status, dossier_state_status TO ioffice_admin;
-- which national status a state reports is an admin's decision on the record
CREATE TRIGGER audit_direct AFTER INSERT OR UPDATE OR DELETE ON dossier_status
    FOR EACH ROW WHEN (_outside_engine()) EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct_truncate AFTER TRUNCATE ON dossier_status
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct AFTER INSERT OR UPDATE OR DELETE ON dossier_state_status
    FOR EACH ROW WHEN (_outside_engine()) EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct_truncate AFTER TRUNCATE ON dossier_state_status
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_direct();
REVOKE ALL ON dossier_counter, import_issued FROM PUBLIC;
GRANT SELECT ON dossier_counter, import_issued TO ioffice_admin;

-- the audit of a dossier is seen by those who see the dossier
ALTER POLICY visible ON audit
    USING ((SELECT ioffice.is_admin())
           OR (audit.entity = 'document'
               AND (audit.entity_id IN (SELECT unnest(ioffice._task_documents()))
                    OR EXISTS (SELECT 1 FROM ioffice.document d
                               WHERE d.id = audit.entity_id
                                 AND (d.drafter_id = (SELECT ioffice.current_person())
                                      OR d.agency_id = ANY ((SELECT ioffice._clerk_agencies())::bigint[])))))
           OR (audit.entity = 'dossier'
               AND EXISTS (SELECT 1 FROM ioffice.dossier s WHERE s.id = audit.entity_id)));

-- Dossiers not finished whose deadline is near ("due": within
-- ioffice.due_soon_days working days) or past ("overdue").  A paused
-- dossier waits for the applicant: its clock stands still, so it is neither.
CREATE VIEW dossier_due WITH (security_invoker = true) AS
SELECT d.code, d.procedure_code, d.procedure_name, d.applicant->>'name' AS applicant,
       d.state, s.code AS status, s.name AS status_name,
       d.received_at, d.deadline,
       CASE WHEN d.deadline < now() THEN 'overdue' ELSE 'due' END AS due_status,
       ioffice.working_days_between(now(), d.deadline) AS working_days_left,
       h.login AS holder
FROM ioffice.dossier d
JOIN ioffice.workflow_state ws ON ws.workflow = d.workflow AND ws.state = d.state
JOIN ioffice.dossier_state_status x ON x.workflow = d.workflow AND x.state = d.state
JOIN ioffice.dossier_status s ON s.code = x.status
LEFT JOIN ioffice.dossier_task t ON t.dossier_id = d.id AND t.status = 'open'
LEFT JOIN ioffice.person h ON h.id = t.receiver_id
WHERE NOT ws.final AND d.finished_at IS NULL AND d.paused_at IS NULL
  -- a bound the index of unfinished deadlines answers, computed once: what
  -- is due within N working days ends before N + 1 working days from now
  -- (regress dossier_due_bound proves it), so that the test below is made
  -- only on the dossiers near their deadline, not on every open one
  AND d.deadline < ioffice.add_working_days(now(), ioffice._due_soon_days() + 1)
  AND (d.deadline < now()
       OR ioffice.working_days_between(now(), d.deadline) <= ioffice._due_soon_days());
COMMENT ON VIEW dossier_due IS 'Unfinished dossiers due soon (ioffice.due_soon_days working days) or overdue';
-- security_invoker: each reader sees the dossiers row-level security shows them
GRANT SELECT ON dossier_due TO PUBLIC;

-- A dossier the actor may not see is unknown to them, as a document is
-- (_require_document); returns its id.
CREATE FUNCTION _require_dossier(code text) RETURNS bigint
    AS 'MODULE_PATHNAME', 'ioffice_require_dossier_sql'
    LANGUAGE C STABLE;
REVOKE ALL ON FUNCTION _require_dossier(text) FROM PUBLIC;

-- The processing trail of a dossier, as trail() for documents.
CREATE FUNCTION dossier_trail(code text)
RETURNS TABLE (step int, sender text, request text, receiver text,
               received_at timestamptz, processing_note text, deadline date,
               processed_at timestamptz, status text, attachments text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id bigint;
BEGIN
    PERFORM ioffice.actor();
    IF code IS NULL THEN
        RAISE EXCEPTION 'dossier_trail needs a dossier code' USING ERRCODE = '22023';
    END IF;
    v_id := ioffice._require_dossier(code);
    RETURN QUERY
    SELECT t.step, s.full_name || coalesce(' (thay ' || sf.full_name || ')', ''),
           t.request, r.full_name, t.received_at, t.processing_note, t.deadline, t.processed_at,
           CASE t.status WHEN 'done' THEN 'Đã xử lý' ELSE 'Đang xử lý' END,
           (SELECT string_agg(f.name, ', ' ORDER BY f.id) FROM ioffice.dossier_file f
             WHERE f.id = ANY (t.file_ids))
      FROM ioffice.dossier_task t
      JOIN ioffice.person s ON s.id = t.sender_id
      LEFT JOIN ioffice.person sf ON sf.id = t.sender_for
      JOIN ioffice.person r ON r.id = t.receiver_id
     WHERE t.dossier_id = v_id
     ORDER BY t.step;
END
$$;
COMMENT ON FUNCTION dossier_trail(text) IS 'The processing trail of a dossier (quá trình xử lý hồ sơ)';

-- Document types and workflows are admins' decisions on the record too; the
-- triggers come last, after every row the install script itself writes.
CREATE TRIGGER audit_direct AFTER INSERT OR UPDATE OR DELETE ON doc_type
    FOR EACH ROW WHEN (_outside_engine()) EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct_truncate AFTER TRUNCATE ON doc_type
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct AFTER INSERT OR UPDATE OR DELETE ON workflow
    FOR EACH ROW WHEN (_outside_engine()) EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct_truncate AFTER TRUNCATE ON workflow
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_direct();
