-- Issue 19, Appendix VI, the rest: a case file's PDF cancelled, and the
-- finished ones removed after ioffice.export_retention; the register and
-- report exports in the access log; the access log's retention (only the
-- engine deletes); the follow-up register's handlers for a reporting tool.
SET client_min_messages = warning;
\set VERBOSITY terse
SELECT ioffice.add_agency('UBND xã Hủy Bỏ', 'UBND', '000.00.61.H41') AS a6 \gset
SELECT ioffice.add_department(:a6, 'Văn phòng Hủy Bỏ', 'VP') AS a6_vp \gset
SELECT ioffice.add_person('regress_a6_spec', 'Chuyên viên Hủy Bỏ', 'Chuyên viên', :a6_vp, '{specialist}') > 0
   AND ioffice.add_person('regress_a6_resp', 'Người lập hồ sơ Hủy Bỏ', 'Chuyên viên', :a6_vp, '{specialist}') > 0
   AND ioffice.add_person('regress_a6_other', 'Chuyên viên khác Hủy Bỏ', 'Chuyên viên', :a6_vp, '{specialist}') > 0
   AND ioffice.add_person('regress_a6_clerk', 'Văn thư Hủy Bỏ', 'Văn thư', :a6, '{clerk}') > 0 AS people_added;
CREATE FUNCTION public.regress_a6_state(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN others THEN
    RETURN SQLSTATE;
END
$$;
SELECT extract(year FROM now() AT TIME ZONE ioffice.timezone())::int AS y \gset
CREATE ROLE regress_a6_app IN ROLE ioffice_app;

-- ===========================================================================
-- 1. case_file_pdf_cancel: the asker or the case file's responsible person
-- ===========================================================================
SET ioffice.actor = 'regress_a6_clerk';
SELECT ioffice.add_case_file(:a6, :y, '01.HB', 'Hồ sơ hủy bỏ', '10', 'regress_a6_resp') AS cf \gset
SET ioffice.actor = 'regress_a6_spec';
SELECT ioffice.case_file_pdf(:cf) AS job1 \gset
SELECT ioffice.case_file_pdf(:cf) AS job2 \gset
SELECT ioffice.case_file_pdf(:cf) AS job3 \gset
SELECT ioffice.case_file_pdf(:cf) AS job4 \gset
-- the worker made job2 and job3
RESET ioffice.actor;
SELECT ioffice._case_file_pdf_done(:job2, '\x255044462d'::bytea, 1, 1, NULL);
SELECT ioffice._case_file_pdf_done(:job3, '\x255044462d'::bytea, 1, 1, NULL);

SET ROLE regress_a6_app;
-- the errors: no actor, no job, an unknown one, someone else's
SELECT regress_a6_state(format('SELECT ioffice.case_file_pdf_cancel(%s)', :job1)) AS no_actor;
SET ioffice.actor = 'regress_a6_other';
SELECT regress_a6_state('SELECT ioffice.case_file_pdf_cancel(NULL)') AS null_job,
       regress_a6_state('SELECT ioffice.case_file_pdf_cancel(-1)') AS unknown_job,
       regress_a6_state(format('SELECT ioffice.case_file_pdf_cancel(%s)', :job1)) AS not_theirs;
SET ioffice.actor = 'regress_a6_clerk';
SELECT regress_a6_state(format('SELECT ioffice.case_file_pdf_cancel(%s)', :job1)) AS clerk_not_responsible;
-- the responsible person cancels a queued request; again: 55000
SET ioffice.actor = 'regress_a6_resp';
SELECT ioffice.case_file_pdf_cancel(:job1);
SELECT regress_a6_state(format('SELECT ioffice.case_file_pdf_cancel(%s)', :job1)) AS cancelled_twice;
-- the asker cancels a made one: its PDF is dropped
SET ioffice.actor = 'regress_a6_spec';
SELECT ioffice.case_file_pdf_cancel(:job2);
SELECT regress_a6_state(format('SELECT ioffice.case_file_pdf_result(%s)', :job1)) AS result_of_cancelled_queued,
       regress_a6_state(format('SELECT ioffice.case_file_pdf_result(%s)', :job2)) AS result_of_cancelled_made,
       ioffice.case_file_pdf_result(:job3) = '\x255044462d'::bytea AS others_still_given;
SELECT id = :job1 AS job1, done_at IS NOT NULL AS done, cancelled_at IS NOT NULL AS cancelled,
       cancelled_by = (SELECT id FROM ioffice.person WHERE login = 'regress_a6_resp') AS by_responsible
FROM ioffice.case_file_pdf_job WHERE id IN (:job1, :job2, :job4) ORDER BY id;
-- the worker's answer for a cancelled request is dropped
RESET ROLE;
RESET ioffice.actor;
SELECT ioffice._case_file_pdf_done(:job1, '\x255044462d'::bytea, 1, 1, NULL);
SELECT id = :job1 AS job1, content IS NULL AS no_pdf, error IS NULL AS no_error
FROM ioffice.case_file_pdf_job WHERE id IN (:job1, :job2) ORDER BY id;

-- the clean-up the worker runs (ioffice.export_retention): finished requests
-- older than the retention, in batches; a queued one stays
SELECT current_setting('ioffice.export_retention') AS export_retention_default;
UPDATE ioffice.case_file_pdf_job SET requested_at = requested_at - interval '10 days',
       done_at = done_at - interval '8 days' WHERE id IN (:job1, :job2);
UPDATE ioffice.case_file_pdf_job SET requested_at = requested_at - interval '2 days',
       done_at = done_at - interval '2 days' WHERE id = :job3;
SELECT ioffice._export_cleanup(interval '7 days', 1) AS first_batch,
       ioffice._export_cleanup(interval '7 days', 100) AS second_batch,
       ioffice._export_cleanup(interval '7 days', 100) AS nothing_more;
SELECT id = :job3 AS job3, id = :job4 AS job4 FROM ioffice.case_file_pdf_job
WHERE case_file_id = :cf ORDER BY id;
SELECT ioffice._export_cleanup(interval '1 day') AS made_two_days_ago;
SELECT count(*) = 1 AND bool_and(id = :job4) AS queued_one_stays FROM ioffice.case_file_pdf_job
WHERE case_file_id = :cf;
SET ROLE regress_a6_app;
SELECT regress_a6_state($$SELECT ioffice._export_cleanup(interval '1 day')$$) AS cleanup_not_granted;
RESET ROLE;

-- ===========================================================================
-- 2. register and report exports in the access log: one row per export by
-- a person, detail <report>:<format>, what was asked and the rows in params
-- ===========================================================================
SET ioffice.actor = 'regress_a6_spec';
SELECT ioffice.create_outgoing('CV', 'Công văn vào sổ Hủy Bỏ') AS a6_doc \gset
SELECT id AS a6_reg FROM ioffice.register WHERE agency_id = :a6 AND direction = 'outgoing'
   AND NOT confidential ORDER BY id LIMIT 1 \gset
SET ROLE regress_a6_app;
SET ioffice.actor = 'regress_a6_clerk';
SELECT octet_length(ioffice.register_export(:a6_reg, :y, 'xlsx')) > 0 AS register_exported,
       octet_length(ioffice.followup_export(:a6, :y, 'csv')) > 0 AS followup_exported,
       octet_length(ioffice.processing_report_export('incoming', DATE '2025-01-01', NULL, 'xlsx')) > 0
         AS processing_exported,
       octet_length(ioffice.case_file_list_export(:a6, :y)) > 0 AS case_file_list_exported;
SELECT detail, document_id IS NULL AND case_file_id IS NULL AS no_document,
       person_id = (SELECT id FROM ioffice.person WHERE login = 'regress_a6_clerk') AS by_the_clerk,
       params->>'year' = :'y' AS year_given,
       params->>'agency' = :'a6' AS agency_given,
       params->>'register' = :'a6_reg' AS register_given,
       params - 'agency' - 'register' - 'year' - 'rows' AS other_params,
       (params->>'rows')::int >= 0 AS rows_counted
FROM ioffice.access_log
WHERE action = 'export' AND person_id = (SELECT id FROM ioffice.person WHERE login = 'regress_a6_clerk')
ORDER BY detail;
-- the case file list names the one case file left of section 1
SELECT params->>'rows' AS case_file_rows FROM ioffice.access_log
WHERE detail = 'case_file_list:xlsx' AND params->>'agency' = :'a6';
-- only the reports it knows, under the caller's own name
SELECT regress_a6_state($$SELECT ioffice._log_report_export('trail', 'xlsx', '{}')$$) AS unknown_report,
       regress_a6_state($$SELECT ioffice._log_report_export('register', 'pdf', '{}')$$) AS unknown_format,
       regress_a6_state($$SELECT ioffice._log_report_export('register', 'xlsx', '[1]')$$) AS params_not_object;
-- and only the parameters the export functions pass, bounded
SELECT regress_a6_state($$SELECT ioffice._log_report_export('register', 'xlsx',
                          jsonb_build_object('code', repeat('x', 99), 'direction', repeat('y', 99),
                                             'agency', repeat('1', 900)))$$) AS params_too_long,
       regress_a6_state($$SELECT ioffice._log_report_export('followup', 'xlsx', '{"agency": 1, "note": "x"}')$$)
         AS unknown_key,
       regress_a6_state($$SELECT ioffice._log_report_export('followup', 'csv', '{"agency": 1, "code": "x"}')$$)
         AS key_of_another_report,
       regress_a6_state($$SELECT ioffice._log_report_export('followup', 'xlsx', '{"agency": {"a": 1}}')$$)
         AS nested_value,
       regress_a6_state($$SELECT ioffice._log_report_export('case_file_list', 'xlsx', '{"year": [2025]}')$$)
         AS array_value,
       regress_a6_state($$SELECT ioffice._log_report_export('followup', 'xlsx',
                          jsonb_build_object('agency', repeat('x', 101)))$$) AS long_text;
SELECT count(*) AS bad_params_logged FROM ioffice.access_log
WHERE action = 'export' AND (params ? 'note' OR octet_length(params::text) > 1024
                             OR jsonb_typeof(params->'agency') = 'object');
RESET ioffice.actor;
SELECT regress_a6_state($$SELECT ioffice._log_report_export('register', 'xlsx', '{}')$$) AS no_person;
RESET ROLE;

-- ===========================================================================
-- 3. the access log's retention: kept for ever by default; the worker's
-- pruning (_access_log_prune) alone deletes, nobody updates
-- ===========================================================================
SELECT current_setting('ioffice.access_log_retention') AS access_log_retention_default;
-- rows of long ago (the superuser writes them here as the log would have)
INSERT INTO ioffice.access_log (at, person_id, action, document_id, detail)
SELECT now() - interval '11 years' - g * interval '1 day', p.id, 'view', :a6_doc, 'regress_a6_old'
FROM ioffice.person p, generate_series(1, 3) g WHERE p.login = 'regress_a6_spec';
INSERT INTO ioffice.access_log (at, person_id, action, document_id, detail)
SELECT now() - interval '9 years', p.id, 'view', :a6_doc, 'regress_a6_old'
FROM ioffice.person p WHERE p.login = 'regress_a6_spec';
-- neither the superuser nor the table's owner changes or deletes a row
SELECT regress_a6_state($$UPDATE ioffice.access_log SET detail = 'x' WHERE detail = 'regress_a6_old'$$) AS owner_update,
       regress_a6_state($$DELETE FROM ioffice.access_log WHERE detail = 'regress_a6_old'$$) AS owner_delete,
       regress_a6_state($$TRUNCATE ioffice.access_log$$) AS owner_truncate;
-- nor may anyone else, nor call the pruning
SET ROLE regress_a6_app;
SET ioffice.actor = 'regress_a6_spec';
SELECT regress_a6_state($$UPDATE ioffice.access_log SET detail = 'x' WHERE detail = 'regress_a6_old'$$) AS app_update,
       regress_a6_state($$DELETE FROM ioffice.access_log WHERE detail = 'regress_a6_old'$$) AS app_delete,
       regress_a6_state($$SELECT ioffice._access_log_prune(interval '10 years', 100)$$) AS app_prune;
RESET ioffice.actor;
RESET ROLE;
SELECT count(*) AS old_rows_kept FROM ioffice.access_log WHERE detail = 'regress_a6_old';
-- nothing is pruned before it was digested (the pruning cuts at the end
-- of a checkpoint's range)
SELECT ioffice._access_log_prune(interval '10 years', 100) AS pruned_undigested;

-- ===========================================================================
-- 3b. the access log's digest (sql/parts/99_access_log_digest.sql): the
-- worker's checkpoints, here one row each for the old rows, then the rest
-- ===========================================================================
SELECT ioffice._access_log_digest(1, interval '0') AS cp1, ioffice._access_log_digest(1, interval '0') AS cp2,
       ioffice._access_log_digest(1, interval '0') AS cp3, ioffice._access_log_digest(1, interval '0') AS cp4;
DO $$
BEGIN
    WHILE ioffice._access_log_digest(10000, interval '0') > 0 LOOP
    END LOOP;
END
$$;
SELECT count(*) > 4 AS checkpoints_made,
       bool_and(range_to > range_from) AS ranges_forward,
       min(range_from) = '-infinity' AS from_the_start,
       (SELECT count(*) FROM ioffice.access_log) =
         (SELECT sum(rows) FROM ioffice.access_log_checkpoint) AS every_row_covered
FROM ioffice.access_log_checkpoint;
SELECT count(*) = (SELECT count(*) FROM ioffice.access_log_checkpoint) AS in_the_audit
FROM ioffice.audit WHERE chain = 'access_log' AND action = 'checkpoint';
SELECT * FROM ioffice.access_log_verify();
SELECT regress_a6_state($$SELECT ioffice._access_log_digest(0)$$) AS bad_rows,
       regress_a6_state($$SELECT ioffice._access_log_digest(10, interval '-1 second')$$) AS bad_margin;
-- who may: admins verify, nobody else digests or verifies
SET ROLE regress_a6_app;
SELECT regress_a6_state($$SELECT ioffice._access_log_digest(10)$$) AS app_digest,
       regress_a6_state($$SELECT * FROM ioffice.access_log_verify()$$) AS app_verify,
       regress_a6_state($$SELECT * FROM ioffice.access_log_checkpoint$$) AS app_reads_checkpoints;
RESET ROLE;
-- the checkpoints are append-only
SELECT regress_a6_state($$UPDATE ioffice.access_log_checkpoint SET rows = rows + 1 WHERE id = 4$$) AS cp_update,
       regress_a6_state($$DELETE FROM ioffice.access_log_checkpoint WHERE id = 4$$) AS cp_delete;
-- tampering past the triggers (a superuser's replica role), each undone:
-- verify names the checkpoint of the altered range, the first first
BEGIN;
SET LOCAL session_replication_role = replica;
UPDATE ioffice.access_log SET detail = 'x' WHERE detail = 'regress_a6_old' AND at > now() - interval '10 years';
SELECT checkpoint_id, problem FROM ioffice.access_log_verify();
ROLLBACK;
BEGIN;
SET LOCAL session_replication_role = replica;
DELETE FROM ioffice.access_log WHERE detail = 'regress_a6_old' AND at < now() - interval '11 years 36 hours';
UPDATE ioffice.access_log SET person_id = person_id + 1 WHERE detail = 'regress_a6_old'
   AND at > now() - interval '10 years';
SELECT checkpoint_id, problem FROM ioffice.access_log_verify();
ROLLBACK;
BEGIN;
INSERT INTO ioffice.access_log (at, person_id, action, document_id, detail)
SELECT now() - interval '10 years 6 months', p.id, 'view', :a6_doc, 'regress_a6_late'
FROM ioffice.person p WHERE p.login = 'regress_a6_spec';
SELECT checkpoint_id, problem FROM ioffice.access_log_verify();
ROLLBACK;
BEGIN;
SET LOCAL session_replication_role = replica;
UPDATE ioffice.access_log_checkpoint SET rows = rows + 1 WHERE id = 2;
SELECT checkpoint_id, problem FROM ioffice.access_log_verify();
ROLLBACK;
BEGIN;
SET LOCAL session_replication_role = replica;
-- the log and its checkpoint rewritten together: the audit trail holds the old hash
DELETE FROM ioffice.access_log WHERE detail = 'regress_a6_old' AND at > now() - interval '10 years';
UPDATE ioffice.access_log_checkpoint c SET rows = 0, digest = sha256(''),
       hash = ioffice._access_log_checkpoint_hash(c.id, c.range_from, c.range_to, 0, sha256(''), c.previous)
 WHERE id = 4;
SELECT checkpoint_id, problem FROM ioffice.access_log_verify();
ROLLBACK;
SELECT count(*) AS intact_again FROM ioffice.access_log_verify();

-- the worker's pruning (ioffice.access_log_retention = 10 years): batches
-- of the rows older, until none, cut at a checkpoint; the younger row stays
SELECT ioffice._access_log_prune(interval '10 years', 2) AS first_batch,
       ioffice._access_log_prune(interval '10 years', 2) AS second_batch,
       ioffice._access_log_prune(interval '10 years', 2) AS nothing_more;
SELECT count(*) AS rows_left FROM ioffice.access_log WHERE detail = 'regress_a6_old';
SELECT regress_a6_state($$SELECT ioffice._access_log_prune(interval '10 years', 0)$$) AS bad_batch;
-- after the pruning, the trigger refuses a delete again
SELECT regress_a6_state($$DELETE FROM ioffice.access_log WHERE detail = 'regress_a6_old'$$) AS delete_after_prune;
SELECT ioffice._access_log_prune(interval '1 year', 100) AS younger_pruned;
-- the cut is recorded, and the pruned ranges are no longer recomputed: the
-- log still verifies; a checkpoint before the cut still may not change
SELECT count(*) AS cuts, max(checkpoint_id) AS cut_at FROM ioffice.access_log_pruned;
SELECT count(*) AS intact_after_prune FROM ioffice.access_log_verify();
BEGIN;
SET LOCAL session_replication_role = replica;
UPDATE ioffice.access_log_checkpoint SET digest = sha256('x') WHERE id = 1;
SELECT checkpoint_id, problem FROM ioffice.access_log_verify();
ROLLBACK;

-- ===========================================================================
-- 4. the follow-up register for a reporting tool (ioffice_reader): the
-- handlers' names, not the task rows
-- ===========================================================================
SELECT ioffice.add_person('regress_a6_lead', 'Chủ tịch Hủy Bỏ', 'Chủ tịch', :a6, '{leader}') > 0 AS lead_added;
SET ioffice.actor = 'regress_a6_clerk';
SELECT ioffice.register_incoming('CV', 'V/v theo dõi Hủy Bỏ', 'Sở Tài chính', '7/STC-VP', (now() AT TIME ZONE ioffice.timezone())::date) AS in1 \gset
SELECT ioffice.register_incoming('CV', 'V/v mật Hủy Bỏ', 'Sở Tài chính', '8/STC-VP', (now() AT TIME ZONE ioffice.timezone())::date) AS in2 \gset
SELECT ioffice.act(:in1, 'submit', 'regress_a6_lead') IS NOT NULL AS submitted1,
       ioffice.act(:in2, 'submit', 'regress_a6_lead') IS NOT NULL AS submitted2;
SET ioffice.actor = 'regress_a6_lead';
SELECT ioffice.act(:in1, 'assign', 'regress_a6_spec', 'Chủ trì',
       jsonb_build_object('cooperate', jsonb_build_array(jsonb_build_object('login', 'regress_a6_other'))))
       IS NOT NULL AS assigned1,
       ioffice.act(:in2, 'assign', 'regress_a6_spec', 'Xử lý') IS NOT NULL AS assigned2;
RESET ioffice.actor;
-- the second one made confidential (as a clerk would mark it)
UPDATE ioffice.document SET confidentiality = 'secret' WHERE id = :in2;
CREATE ROLE regress_a6_reader IN ROLE ioffice_reader;
SET ROLE regress_a6_reader;
SELECT number IS NOT NULL AS numbered, handlers
  FROM ioffice.incoming_followup WHERE agency_id = :a6 ORDER BY number;
-- the tasks themselves stay closed to it; the function names nobody of a
-- document it may not read
SELECT regress_a6_state('SELECT count(*) FROM ioffice.task') AS reader_reads_task,
       (SELECT count(*) FROM ioffice.task) AS reader_task_rows;
SELECT ioffice._followup_reader_handlers(:in2) IS NULL AS confidential_no_names,
       ioffice._followup_reader_handlers(:in1) IS NOT NULL AS ordinary_names;
RESET ROLE;
-- a person gets no names through it (their tasks' row-level security decides)
SET ROLE regress_a6_app;
SET ioffice.actor = 'regress_a6_clerk';
SELECT ioffice._followup_reader_handlers(:in1) IS NULL AS person_no_names_from_function,
       (SELECT handlers FROM ioffice.incoming_followup WHERE document_id = :in1) AS clerk_sees;
RESET ioffice.actor;
RESET ROLE;
DROP ROLE regress_a6_reader;
DROP ROLE regress_a6_app;
DROP FUNCTION regress_a6_state(text);
