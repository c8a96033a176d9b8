-- Follow-up of incoming documents and reminders (issue 19 items 5 and 6;
-- Decree 30 art. 24, appendix IV part VIII, appendix VI III.1l-m and part
-- I): the follow-up register with deadlines, progress and replies, under
-- row-level security; the processing reports' counts; the workbooks; the
-- reminders of tasks due and overdue, each once, on the working-day
-- calendar, and one digest a day per unit leader.
SET client_min_messages = warning;
\set VERBOSITY terse
SELECT ioffice.add_agency('UBND xã Theo Dõi', 'UBND', '000.00.53.H41') AS fu \gset
SELECT ioffice.add_department(:fu, 'Văn phòng Theo Dõi', 'VP') AS fu_vp \gset
SELECT ioffice.add_department(:fu, 'Phòng Khác Theo Dõi', 'PK') AS fu_pk \gset
SELECT ioffice.add_agency('UBND xã Ngoài Theo Dõi', 'UBNDN', '000.00.54.H41') AS fu2 \gset
SELECT ioffice.add_person('fu_clerk', 'Văn thư Theo Dõi', 'Văn thư', :fu, '{clerk}') > 0
   AND ioffice.add_person('fu_lead', 'Chủ tịch Theo Dõi', 'Chủ tịch', :fu, '{leader}') > 0
   AND ioffice.add_person('fu_head', 'Chánh Văn phòng', 'Chánh Văn phòng', :fu_vp, '{leader}') > 0
   AND ioffice.add_person('fu_a', 'Chuyên viên A', 'Chuyên viên', :fu_vp, '{specialist}') > 0
   AND ioffice.add_person('fu_b', 'Chuyên viên B', 'Chuyên viên', :fu_vp, '{specialist}') > 0
   AND ioffice.add_person('fu_c', 'Chuyên viên C', 'Chuyên viên', :fu_pk, '{specialist}') > 0
   AND ioffice.add_person('fu_out', 'Văn thư Ngoài', 'Văn thư', :fu2, '{clerk}') > 0 AS people_added;
UPDATE ioffice.person SET email = login || '@theodoi.example.vn'
 WHERE login IN ('fu_a', 'fu_lead', 'fu_head');
UPDATE ioffice.person SET phone = '0912000111' WHERE login = 'fu_b';
-- every check below counts days from today: the faketime suite starts 30
-- seconds before a midnight, so a run that reaches here in the last minute
-- of a day waits for the next one
DO $$
DECLARE
    v_local timestamp := clock_timestamp() AT TIME ZONE ioffice.timezone();
BEGIN
    IF v_local::time >= time '23:59' THEN
        PERFORM pg_sleep(extract(epoch FROM date_trunc('day', v_local) + interval '1 day 1 second' - v_local));
    END IF;
END
$$;
SELECT (now() AT TIME ZONE ioffice.timezone())::date AS today,
       extract(year FROM now() AT TIME ZONE ioffice.timezone())::int AS y \gset
-- the calendar around today: every day a working day (the test must not
-- depend on the weekday it runs), but for one day off, tomorrow
-- (the rows other tests left in that span are put back at the end)
CREATE TEMP TABLE fu_holiday_kept AS
SELECT * FROM ioffice.holiday WHERE day BETWEEN :'today'::date - 40 AND :'today'::date + 40;
DELETE FROM ioffice.holiday WHERE day BETWEEN :'today'::date - 40 AND :'today'::date + 40;
INSERT INTO ioffice.holiday (day, name, working)
SELECT d::date, 'regress followup', d::date <> :'today'::date + 1
  FROM generate_series(:'today'::date - 40, :'today'::date + 40, interval '1 day') d;
CREATE FUNCTION public.regress_fu_state(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN others THEN
    RETURN SQLSTATE;
END
$$;
CREATE FUNCTION public.regress_fu_deadline(days int) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('deadline',
        to_char((now() AT TIME ZONE ioffice.timezone())::date + days, 'YYYY-MM-DD'))
$$;

-- six incoming documents, registered by the clerk and sent to the chairman
SET ioffice.actor = 'fu_clerk';
SELECT count(ioffice.register_incoming('CV', 'V/v văn bản ' || n, 'Sở Nội vụ', n || '/SNV-VP', :'today'::date))
    AS registered
  FROM generate_series(1, 6) n;
SELECT ioffice.act(d.id, 'submit', 'fu_lead') FROM ioffice.document d
 WHERE d.agency_id = :fu AND d.direction = 'incoming' ORDER BY d.id;
SELECT id AS d1 FROM ioffice.document WHERE agency_id = :fu AND sender_symbol = '1/SNV-VP' \gset
SELECT id AS d2 FROM ioffice.document WHERE agency_id = :fu AND sender_symbol = '2/SNV-VP' \gset
SELECT id AS d3 FROM ioffice.document WHERE agency_id = :fu AND sender_symbol = '3/SNV-VP' \gset
SELECT id AS d4 FROM ioffice.document WHERE agency_id = :fu AND sender_symbol = '4/SNV-VP' \gset
SELECT id AS d5 FROM ioffice.document WHERE agency_id = :fu AND sender_symbol = '5/SNV-VP' \gset
SELECT id AS d6 FROM ioffice.document WHERE agency_id = :fu AND sender_symbol = '6/SNV-VP' \gset
-- the chairman assigns: d1 to A in 5 days with B co-operating, overdue by a
-- day; d2 to A, two days ago; d3 to C, tomorrow; d4 not yet; d5 to C today;
-- d6 to B the day after tomorrow (tomorrow is a day off)
SET ioffice.actor = 'fu_lead';
SELECT ioffice.act(:d1, 'assign', 'fu_a', 'Chủ trì',
       regress_fu_deadline(5) || jsonb_build_object('cooperate', jsonb_build_array(
           jsonb_build_object('login', 'fu_b') || regress_fu_deadline(-1))));
SELECT ioffice.act(:d2, 'assign', 'fu_a', 'Trả lời', regress_fu_deadline(-2));
SELECT ioffice.act(:d3, 'assign', 'fu_c', 'Xử lý', regress_fu_deadline(1));
SELECT ioffice.act(:d5, 'assign', 'fu_c', 'Xử lý', regress_fu_deadline(0));
SELECT ioffice.act(:d6, 'assign', 'fu_b', 'Xử lý', regress_fu_deadline(2));
-- A answers d2 with an issued công văn, late; C deals with d3 in time
SET ioffice.actor = 'fu_a';
SELECT ioffice.create_outgoing('CV', 'V/v trả lời văn bản 2', jsonb_build_object('related', jsonb_build_array(:d2))) AS r2 \gset
SELECT ioffice.attach(:r2, 'tl.pdf', content) IS NOT NULL AS attached FROM pdf;
SELECT ioffice.act(:r2, 'submit', 'fu_lead');
SET ioffice.actor = 'fu_lead';
SELECT ioffice.act(:r2, 'approve', 'fu_clerk');
SET ioffice.actor = 'fu_clerk';
SELECT ioffice.act(:r2, 'issue');
SET ioffice.actor = 'fu_a';
SELECT ioffice.act(:d2, 'complete', NULL, 'Đã trả lời');
SET ioffice.actor = 'fu_c';
SELECT ioffice.act(:d3, 'complete', NULL, 'Đã xử lý');
RESET ioffice.actor;

-- the follow-up register, as the agency's clerk sees it (Appendix IV's
-- columns; dates masked)
CREATE ROLE regress_fu_app IN ROLE ioffice_app;
CREATE ROLE regress_fu_reader IN ROLE ioffice_reader;
SET ROLE regress_fu_app;
SET ioffice.actor = 'fu_clerk';
SELECT number, regexp_replace(document_description, '\d\d/\d\d/\d{4}', '<date>') AS description,
       handlers, deadline - :'today'::date AS deadline_in,
       regexp_replace(progress, '\d\d/\d\d/\d{4}', '<date>') AS progress, status,
       reply_symbols IS NOT NULL AS replied,
       reply_symbols = (SELECT symbol FROM ioffice.document WHERE id = :r2) AS reply_is_r2
  FROM ioffice.incoming_followup WHERE agency_id = :fu ORDER BY number;
-- row-level security: C sees the two documents of their tasks, with both
-- handlers of none else; the other agency's clerk sees nothing; A sees
-- their documents and the reply
SET ioffice.actor = 'fu_c';
SELECT array_agg(number ORDER BY number) AS c_sees FROM ioffice.incoming_followup WHERE agency_id = :fu;
SET ioffice.actor = 'fu_out';
SELECT count(*) AS outsider_sees FROM ioffice.incoming_followup WHERE agency_id = :fu;
SET ioffice.actor = 'fu_a';
SELECT array_agg(number ORDER BY number) AS a_sees, bool_or(reply_symbols IS NOT NULL) AS a_sees_reply
  FROM ioffice.incoming_followup WHERE agency_id = :fu;
-- nobody named: nothing
RESET ioffice.actor;
SELECT count(*) AS nobody_sees FROM ioffice.incoming_followup WHERE agency_id = :fu;
RESET ROLE;
-- a reporting tool reads the register's rows and who handles them (not the tasks)
SET ROLE regress_fu_reader;
SELECT count(*) AS reader_rows, count(handlers) AS reader_handlers
  FROM ioffice.incoming_followup WHERE agency_id = :fu;
RESET ROLE;

-- the incoming processing report: per unit, then per person
SET ROLE regress_fu_app;
SET ioffice.actor = 'fu_clerk';
SELECT unit_name, person_name, received, done_on_time, done_late, pending_in_time, overdue
  FROM ioffice.processing_report('incoming') WHERE agency_id = :fu;
SELECT count(*) = 0 AS none_before_today
  FROM ioffice.processing_report('incoming', NULL, :'today'::date - 1) WHERE agency_id = :fu;
SELECT (SELECT array_agg(received ORDER BY unit_name, person_id NULLS FIRST)
          FROM ioffice.incoming_processing_report WHERE agency_id = :fu)
     = (SELECT array_agg(received ORDER BY unit_name, person_id NULLS FIRST)
          FROM ioffice.processing_report('incoming', :'today'::date, :'today'::date)
         WHERE agency_id = :fu) AS view_is_function;
-- the outgoing report counts the reply's steps, each done
SELECT sum(received) = sum(done_on_time) + sum(done_late) AND sum(received) > 0 AS outgoing_done
  FROM ioffice.outgoing_processing_report WHERE agency_id = :fu AND person_id IS NOT NULL;
-- C sees their own tasks only
SET ioffice.actor = 'fu_c';
SELECT unit_name, person_name, received, done_on_time, pending_in_time
  FROM ioffice.processing_report('incoming') WHERE agency_id = :fu;
SELECT regress_fu_state($$SELECT * FROM ioffice.processing_report('sideways')$$) AS bad_direction;
RESET ioffice.actor;
RESET ROLE;

-- the workbooks: xlsx containers; the CSVs hold the rows of the views the
-- reader may see
SET ROLE regress_fu_app;
SET ioffice.actor = 'fu_clerk';
SELECT ioffice.file_kind(ioffice.followup_export(:fu, :y)) AS followup_kind,
       ioffice.file_kind(ioffice.processing_report_export('incoming')) AS incoming_report_kind,
       ioffice.file_kind(ioffice.processing_report_export('outgoing', :'today'::date, :'today'::date)) AS outgoing_report_kind,
       ioffice.file_kind(ioffice.case_file_list_export(:fu, :y)) AS case_file_list_kind;
SELECT regexp_replace(t, '\d\d/\d\d/\d{4}', '<date>') AS followup_csv_lines
  FROM regexp_split_to_table(convert_from(substr(ioffice.followup_export(:fu, :y, 'csv'), 4), 'UTF8'), E'\r\n') t
 WHERE t <> '' AND t NOT LIKE 'Số đến,%'
   AND t NOT LIKE '%Chuyên viên A (chủ trì)%' AND t NOT LIKE '%Chuyên viên C (chủ trì)%'
   AND t NOT LIKE '%Chuyên viên B (chủ trì)%';
SELECT count(*) FILTER (WHERE t <> '') - 1 AS followup_csv_rows,
       count(*) FILTER (WHERE t LIKE '%(chậm 2 ngày)%') AS late_row,
       count(*) FILTER (WHERE strpos(t, (SELECT symbol FROM ioffice.document WHERE id = :r2)) > 0) AS reply_row
  FROM regexp_split_to_table(convert_from(substr(ioffice.followup_export(:fu, :y, 'csv'), 4), 'UTF8'), E'\r\n') t;
SET ioffice.actor = 'fu_c';
SELECT count(*) FILTER (WHERE t <> '') - 1 AS c_csv_rows
  FROM regexp_split_to_table(convert_from(substr(ioffice.followup_export(:fu, :y, 'csv'), 4), 'UTF8'), E'\r\n') t;
SELECT t AS c_report_csv
  FROM regexp_split_to_table(convert_from(substr(ioffice.processing_report_export('incoming', NULL, NULL, 'csv'), 4), 'UTF8'), E'\r\n') t
 WHERE t LIKE '%Theo Dõi%';
SELECT regress_fu_state(format('SELECT ioffice.followup_export(%s, %s)', :fu2 + 1000000, :y)) AS unknown_agency,
       regress_fu_state(format('SELECT ioffice.followup_export(%s, %s, %L)', :fu, :y, 'pdf')) AS bad_format,
       regress_fu_state(format('SELECT ioffice.followup_export(NULL, %s)', :y)) AS null_agency;
RESET ioffice.actor;
RESET ROLE;
SELECT count(*) AS left_in_pgsql_tmp FROM pg_ls_dir('base/pgsql_tmp', true, false);

-- case files: the table of contents of one, and the list, as the clerk
-- and as C, who sees one of the two documents
SET ioffice.actor = 'fu_clerk';
SELECT ioffice.add_case_file(:fu, :y, '01.VP', 'Hồ sơ theo dõi', '10', 'fu_a') AS cf \gset
SELECT ioffice.file_into(:cf, :d3), ioffice.file_into(:cf, :d2);
SET ROLE regress_fu_app;
SELECT ioffice.file_kind(ioffice.case_file_contents_export(:cf)) AS contents_kind;
SELECT regexp_replace(t, '\d\d/\d\d/\d{4}', '<date>') AS contents_csv
  FROM regexp_split_to_table(convert_from(substr(ioffice.case_file_contents_export(:cf, 'csv'), 4), 'UTF8'), E'\r\n') t
 WHERE t <> '';
SELECT regexp_replace(regexp_replace(t, '\d\d/\d\d/\d{4}', '<date>', 'g'), '\.\d{4}\.', '.<year>.') AS list_csv
  FROM regexp_split_to_table(convert_from(substr(ioffice.case_file_list_export(:fu, :y, 'csv'), 4), 'UTF8'), E'\r\n') t
 WHERE t <> '';
SET ioffice.actor = 'fu_c';
SELECT count(*) FILTER (WHERE t <> '') - 1 AS c_contents_rows
  FROM regexp_split_to_table(convert_from(substr(ioffice.case_file_contents_export(:cf, 'csv'), 4), 'UTF8'), E'\r\n') t;
SET ioffice.actor = 'fu_out';
SELECT regress_fu_state(format('SELECT ioffice.case_file_contents_export(%s)', :cf)) AS outsider_contents;
RESET ioffice.actor;
RESET ROLE;

-- reminders.  With no lead: the task due today (d5, C) and the overdue
-- co-operation (d1, B) are reminded; d6, due the day after tomorrow, is
-- not; the done tasks are not.  C has no address: the reminder is recorded
-- without an event.
INSERT INTO ioffice.endpoint (name, url, secret, events)
VALUES ('regress_fu_gateway', 'http://127.0.0.1:9/notify', 'a-secret-of-the-fu-gateway', '{notify.*}')
RETURNING id AS gw \gset
SET ioffice.reminder_lead_days = 0;
SELECT ioffice.send_reminders() >= 4 AS sent;
CREATE VIEW pg_temp.fu_reminders AS
SELECT t.document_id, p.login, s.level, s.channel, s.deadline = coalesce(t.deadline, d.due_date) AS deadline_kept
  FROM ioffice.reminder_sent s JOIN ioffice.task t ON t.id = s.task_id
  JOIN ioffice.document d ON d.id = t.document_id JOIN ioffice.person p ON p.id = s.person_id
 WHERE d.agency_id = :fu;
SELECT CASE document_id WHEN :d1 THEN 'd1' WHEN :d5 THEN 'd5' WHEN :d6 THEN 'd6' ELSE 'd?' END AS doc,
       login, level, channel, deadline_kept
  FROM pg_temp.fu_reminders ORDER BY 1, 2, 3;
-- the digests: the chairman's covers the agency, the head's their office
SELECT p.login, g.due, g.overdue, g.channel, g.day = :'today'::date AS today
  FROM ioffice.reminder_digest g JOIN ioffice.person p ON p.id = g.leader_id
 WHERE p.unit_id IN (:fu, :fu_vp, :fu_pk) ORDER BY p.login;
SELECT o.event, o.body->'data'->>'login' AS login, o.body->'data'->'about'->>'kind' AS kind,
       jsonb_array_length(o.body->'data'->'about'->'tasks') AS digest_tasks
  FROM ioffice.outbox o
 WHERE o.endpoint_id = :gw AND o.body->'data'->>'login' LIKE 'fu\_%' ORDER BY 2, 3;
-- once: again, nothing more for the agency
SELECT ioffice.send_reminders() >= 0 AS called_again;
SELECT count(*) AS reminders_after_second_call FROM pg_temp.fu_reminders;
SELECT count(*) AS events_after_second_call FROM ioffice.outbox o
 WHERE o.endpoint_id = :gw AND o.body->'data'->>'login' LIKE 'fu\_%';
-- a lead of one working day: d6 (the day after tomorrow, tomorrow being a
-- day off) is due now; the leaders' digests of the day are sent already
SET ioffice.reminder_lead_days = 1;
SELECT ioffice.send_reminders() >= 1 AS sent_with_lead;
SELECT CASE document_id WHEN :d1 THEN 'd1' WHEN :d5 THEN 'd5' WHEN :d6 THEN 'd6' ELSE 'd?' END AS doc,
       login, level FROM pg_temp.fu_reminders ORDER BY 1, 2, 3;
SELECT count(*) AS digests_still FROM ioffice.reminder_digest g JOIN ioffice.person p ON p.id = g.leader_id
 WHERE p.unit_id IN (:fu, :fu_vp, :fu_pk);
-- a moved deadline is reminded again: d5's task (reminded due today) moved
-- to d6's deadline is due again under the lead of one, once
UPDATE ioffice.task SET deadline = (SELECT max(t6.deadline) FROM ioffice.task t6
                                     WHERE t6.document_id = :d6 AND t6.status = 'open')
 WHERE document_id = :d5 AND status = 'open';
SELECT ioffice.send_reminders() >= 1 AS sent_for_moved_deadline;
SELECT CASE document_id WHEN :d5 THEN 'd5' ELSE 'd?' END AS doc, login, level, deadline_kept
  FROM pg_temp.fu_reminders WHERE document_id = :d5 ORDER BY deadline_kept, 2, 3;
SELECT ioffice.send_reminders() >= 0 AS called_again;
SELECT count(*) AS d5_reminders FROM pg_temp.fu_reminders WHERE document_id = :d5;
-- with tomorrow a working day, d6 would not be due yet with a lead of one
UPDATE ioffice.holiday SET working = true WHERE day = :'today'::date + 1;
SELECT count(*) AS d6_due_without_day_off FROM ioffice._tasks_to_remind() WHERE document_id = :d6;
RESET ioffice.reminder_lead_days;
-- only the worker and DBAs send them; nobody else reads what was sent
SET ROLE regress_fu_app;
SELECT regress_fu_state('SELECT ioffice.send_reminders()') AS app_sends,
       regress_fu_state('SELECT * FROM ioffice.reminder_sent') AS app_reads;
RESET ROLE;

-- clean up what other tests would see
UPDATE ioffice.endpoint SET enabled = false WHERE name = 'regress_fu_gateway';
DELETE FROM ioffice.holiday WHERE name = 'regress followup';
INSERT INTO ioffice.holiday SELECT * FROM fu_holiday_kept;
DROP FUNCTION public.regress_fu_state(text);
DROP FUNCTION public.regress_fu_deadline(int);
DROP ROLE regress_fu_app;
DROP ROLE regress_fu_reader;
