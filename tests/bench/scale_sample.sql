-- A small province written through the API, for tests/bench/scale to
-- compare the generator's rows with (scale_shapes.sql): two agencies like
-- the generator's (two clerks, two leaders, departments with a head and
-- specialists), every path of scale_generate.sql taken at least once with
-- the same notes.  The background worker does not run here: the signatures
-- it would make are marked done by hand (status, time, CMS), as
-- scale_generate.sql writes them.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
CREATE EXTENSION ioffice;

SELECT ioffice.add_agency('Sở số 1', 'S1', '000.00.00.H41') AS a1 \gset
SELECT ioffice.add_agency('Sở số 2', 'S2', '000.00.01.H41') AS a2 \gset
SELECT ioffice.add_department(:a1, 'Phòng 1 Sở số 1', 'P1') AS d1 \gset
SELECT ioffice.add_department(:a2, 'Phòng 1 Sở số 2', 'P1') AS d2 \gset
SELECT ioffice.add_person('vt1', 'Văn thư 1', 'Văn thư', :a1, '{clerk}'),
       ioffice.add_person('vt2', 'Văn thư 2', 'Văn thư', :a1, '{clerk,one_stop}'),
       ioffice.add_person('ld1', 'Lãnh đạo 1', 'Giám đốc', :a1, '{leader}'),
       ioffice.add_person('ld2', 'Lãnh đạo 2', 'Giám đốc', :a1, '{leader}'),
       ioffice.add_person('tp1', 'Trưởng phòng 1', 'Trưởng phòng', :d1, '{leader}'),
       ioffice.add_person('cv1', 'Chuyên viên 1', 'Chuyên viên', :d1, '{specialist}'),
       ioffice.add_person('cv2', 'Chuyên viên 2', 'Chuyên viên', :d1, '{specialist}'),
       ioffice.add_person('cv3', 'Chuyên viên 3', 'Chuyên viên', :d1, '{specialist}'),
       ioffice.add_person('vt21', 'Văn thư 21', 'Văn thư', :a2, '{clerk}'),
       ioffice.add_person('ld21', 'Lãnh đạo 21', 'Giám đốc', :a2, '{leader}'),
       ioffice.add_person('tp21', 'Trưởng phòng 21', 'Trưởng phòng', :d2, '{leader}'),
       ioffice.add_person('cv21', 'Chuyên viên 21', 'Chuyên viên', :d2, '{specialist}'),
       ioffice.add_person('cv22', 'Chuyên viên 22', 'Chuyên viên', :d2, '{specialist}'),
       ioffice.add_person('cv23', 'Chuyên viên 23', 'Chuyên viên', :d2, '{specialist}'),
       ioffice.add_person('quantri', 'Quản trị', 'Quản trị hệ thống', :a1, '{admin}') \gset
-- what the worker does with a queued signature
CREATE FUNCTION pg_temp.worker_signs(doc bigint) RETURNS void LANGUAGE sql AS $$
    UPDATE ioffice.signature SET status = 'done', signed_at = now(), cms = '\x3082'
     WHERE document_id = doc AND status = 'pending'
$$;
-- an outgoing document with its file, submitted to a person
CREATE FUNCTION pg_temp.drafted(drafter text, doc_type text, to_login text, details jsonb DEFAULT '{}')
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_doc bigint;
BEGIN
    PERFORM set_config('ioffice.actor', drafter, true);
    v_doc := ioffice.create_outgoing(doc_type, 'V/v công việc mẫu', details);
    PERFORM ioffice.attach(v_doc, 'du_thao.pdf', convert_to('%PDF-1.4 văn bản mẫu ' || v_doc, 'UTF8'));
    IF to_login IS NOT NULL THEN
        PERFORM ioffice.act(v_doc, 'submit', to_login, 'Kính trình');
    END IF;
    RETURN v_doc;
END
$$;
CREATE FUNCTION pg_temp.act_as(actor text, doc bigint, action text, to_login text DEFAULT NULL,
                               note text DEFAULT NULL, options jsonb DEFAULT '{}')
RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('ioffice.actor', actor, true);
    RETURN ioffice.act(doc, action, to_login, note, options);
END
$$;
-- approve and issue: the leader's own signature first when asked, the
-- seal after the issue
CREATE FUNCTION pg_temp.approved_and_issued(leader text, doc bigint, signed boolean,
                                             on_behalf boolean DEFAULT false)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF signed THEN
        PERFORM pg_temp.act_as(leader, doc, 'sign');
        PERFORM pg_temp.worker_signs(doc);
    END IF;
    PERFORM pg_temp.act_as(CASE WHEN on_behalf THEN 'ld2' ELSE leader END, doc, 'approve', 'vt1');
    PERFORM pg_temp.act_as('vt1', doc, 'issue');
    PERFORM pg_temp.worker_signs(doc);
END
$$;

-- One outgoing document down one of the generator's paths: submitted to
-- the head (unless a draft), returned once and submitted again (ret),
-- forwarded to the agency's leader (fwd), approved to the clerk by the
-- holder or by the other leader in his name (deputy), the approver's own
-- signature first (signed), issued (delivered to agency 2, or in the
-- confidential series); or stopped in the state named.
CREATE FUNCTION pg_temp.outgoing_case(state text, ret boolean, fwd boolean, deputy boolean,
                                      signed boolean, delivers boolean, secret boolean)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_doc bigint;
    v_holder text := CASE WHEN fwd THEN 'ld1' ELSE 'tp1' END;
    v_details jsonb := '{}';
BEGIN
    IF delivers THEN
        v_details := '{"recipients": ["000.00.01.H41", "Lưu: VT"]}';
    ELSIF secret THEN
        v_details := '{"confidentiality": "confidential"}';
    END IF;
    v_doc := pg_temp.drafted('cv1', 'CV', CASE WHEN state = 'draft' THEN NULL ELSE 'tp1' END, v_details);
    IF state = 'draft' THEN
        RETURN v_doc;
    END IF;
    IF ret OR state = 'returned' THEN
        PERFORM pg_temp.act_as('tp1', v_doc, 'return', NULL, 'Đề nghị sửa lại');
        IF state = 'returned' THEN
            RETURN v_doc;
        END IF;
        PERFORM pg_temp.act_as('cv1', v_doc, 'submit', 'tp1', 'Kính trình');
    END IF;
    IF fwd THEN
        PERFORM pg_temp.act_as('tp1', v_doc, 'forward', 'ld1', 'Kính trình lãnh đạo');
    END IF;
    IF signed THEN
        PERFORM pg_temp.act_as(v_holder, v_doc, 'sign');
        IF state <> 'reviewing' THEN
            PERFORM pg_temp.worker_signs(v_doc);
        END IF;
    END IF;
    IF state = 'reviewing' THEN
        RETURN v_doc;
    ELSIF state = 'completed' THEN
        PERFORM pg_temp.act_as(v_holder, v_doc, 'complete');
        RETURN v_doc;
    END IF;
    PERFORM pg_temp.act_as(CASE WHEN deputy THEN 'ld2' ELSE v_holder END, v_doc, 'approve', 'vt1');
    IF state = 'issued' THEN
        PERFORM pg_temp.act_as('vt1', v_doc, 'issue');
        PERFORM pg_temp.worker_signs(v_doc);
    END IF;
    RETURN v_doc;
END
$$;

-- One incoming document in agency 2: delivered by an issued document of
-- agency 1, or registered from paper (due date or not); submitted to the
-- leader, assigned to a lead handler with 0, 1 or 2 cooperators (the first
-- one done or not), completed; or stopped in the state named.
CREATE FUNCTION pg_temp.incoming_case(delivered boolean, state text, coop int, coop_done boolean,
                                      due boolean)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_doc bigint;
    v_deadline date := (now() AT TIME ZONE ioffice.timezone())::date + 10;
    v_helpers jsonb := '[]';
BEGIN
    IF delivered THEN
        v_doc := pg_temp.outgoing_case('issued', false, false, false, false, true, false);
        SELECT d.id INTO v_doc FROM ioffice.document d WHERE d.source_document_id = v_doc;
        IF state = 'received' THEN
            RETURN v_doc;
        END IF;
        PERFORM pg_temp.act_as('vt21', v_doc, 'register');
    ELSE
        PERFORM set_config('ioffice.actor', 'vt21', true);
        v_doc := ioffice.register_incoming('CV', 'V/v văn bản đến mẫu', 'Bộ ngành số 1',
                     nextval('pg_temp.paper') || '/BN1-VP', current_date - 2,
                     CASE WHEN due THEN jsonb_build_object('due_date', current_date + 20) ELSE '{}' END);
    END IF;
    IF state = 'registered' THEN
        RETURN v_doc;
    END IF;
    PERFORM pg_temp.act_as('vt21', v_doc, 'submit', 'ld21', 'Kính trình');
    IF state = 'awaiting_assignment' THEN
        RETURN v_doc;
    END IF;
    IF coop > 0 THEN
        v_helpers := jsonb_build_array(jsonb_build_object('login', 'cv22', 'deadline', (v_deadline - 2)::text));
    END IF;
    IF coop > 1 THEN
        v_helpers := v_helpers || jsonb_build_array(jsonb_build_object('login', 'cv23', 'deadline', (v_deadline - 2)::text));
    END IF;
    PERFORM pg_temp.act_as('ld21', v_doc, 'assign', 'cv21', 'Chủ trì xử lý',
                           jsonb_build_object('deadline', v_deadline)
                           || CASE WHEN coop > 0 THEN jsonb_build_object('cooperate', v_helpers) ELSE '{}' END);
    IF coop > 0 AND (coop_done OR state = 'processed') THEN
        PERFORM pg_temp.act_as('cv22', v_doc, 'cooperated', NULL, 'Đã góp ý');
    END IF;
    IF state = 'processed' THEN
        IF coop > 1 THEN
            PERFORM pg_temp.act_as('cv23', v_doc, 'cooperated', NULL, 'Đã góp ý');
        END IF;
        PERFORM pg_temp.act_as('cv21', v_doc, 'complete', NULL, 'Đã xử lý xong');
    END IF;
    RETURN v_doc;
END
$$;
CREATE TEMP SEQUENCE paper;

BEGIN;
SET LOCAL ioffice.actor = 'ld1';
-- a delegation that ended (revoked), then the one in force (one at a
-- time, from now on: the generator's are dated as if made days ago)
SELECT ioffice.revoke_delegation(ioffice.delegate('ld2', now(), now() + interval '1 day')) IS NULL AS ended;
SELECT ioffice.delegate('ld2', now(), now() + interval '5 days') IS NOT NULL AS delegated;
-- every outgoing path the generator takes
SELECT count(pg_temp.outgoing_case(st, ret, fwd, dep, sig, dl, sec)) AS outgoing_cases
  FROM unnest(ARRAY['draft', 'reviewing', 'returned', 'awaiting_issue', 'issued', 'completed']) st,
       unnest(ARRAY[false, true]) ret, unnest(ARRAY[false, true]) fwd, unnest(ARRAY[false, true]) dep,
       unnest(ARRAY[false, true]) sig, unnest(ARRAY[false, true]) dl, unnest(ARRAY[false, true]) sec
 WHERE (NOT dep OR (fwd AND NOT sig AND st IN ('awaiting_issue', 'issued')))
   AND (NOT dl OR (st = 'issued' AND NOT sec))
   AND (NOT sec OR st = 'issued')
   AND (NOT sig OR st IN ('reviewing', 'issued'))
   AND (st <> 'draft' OR NOT (ret OR fwd))
   AND (st <> 'returned' OR NOT fwd);
-- a draft without a file yet
SET LOCAL ioffice.actor = 'cv3';
SELECT ioffice.create_outgoing('TB', 'V/v công việc mẫu') IS NOT NULL AS draft_without_file;
-- every incoming one
SELECT count(pg_temp.incoming_case(dl, st, coop, done, due)) AS incoming_cases
  FROM unnest(ARRAY[false, true]) dl,
       unnest(ARRAY['received', 'registered', 'awaiting_assignment', 'in_progress', 'processed']) st,
       unnest(ARRAY[0, 1, 2]) coop, unnest(ARRAY[false, true]) done, unnest(ARRAY[false, true]) due
 WHERE (st <> 'received' OR dl)
   AND (coop = 0 OR st IN ('in_progress', 'processed')) AND (NOT done OR (coop > 0 AND st = 'in_progress'))
   AND (NOT due OR NOT dl);
COMMIT;

-- every dossier path the generator takes: the second clerk is also the
-- one-stop officer; a dossier is refused at reception, or stays with the
-- officer, or goes to the department's head, or on to a specialist
BEGIN;
SET LOCAL ioffice.actor = 'vt2';
SELECT ioffice.dossier_act(ioffice.receive_dossier('1.000001.000.00.00.H41', 'Thủ tục mẫu',
                                                   '{"name": "Công dân"}', 5),
                           'reject', NULL, 'Hồ sơ không đủ thành phần') AS rejected;
SELECT ioffice.receive_dossier('1.000001.000.00.00.H41', 'Thủ tục mẫu', '{"name": "Công dân"}', 5)
       IS NOT NULL AS received;
SELECT ioffice.receive_dossier('1.000001.000.00.00.H41', 'Thủ tục mẫu', '{"name": "Công dân"}', 5)
       AS transferred \gset
SELECT ioffice.dossier_act(:'transferred', 'transfer', 'tp1', 'Chuyển phòng chuyên môn');
SELECT ioffice.receive_dossier('1.000001.000.00.00.H41', 'Thủ tục mẫu', '{"name": "Công dân"}', 5)
       AS assigned \gset
SELECT ioffice.dossier_act(:'assigned', 'transfer', 'tp1', 'Chuyển phòng chuyên môn');
SET LOCAL ioffice.actor = 'tp1';
SELECT ioffice.dossier_act(:'assigned', 'assign', 'cv1', 'Giao chuyên viên xử lý');
COMMIT;
