-- ---------------------------------------------------------------------------
-- Follow-up of incoming documents, reminders, and the reports of Decree 30
-- appendix VI part I (issue 19 items 5 and 6)
-- ---------------------------------------------------------------------------

-- The state of one piece of handling, from its deadline and the day it was
-- done (in ioffice.timezone): done_on_time, done_late, pending (not done,
-- its deadline not passed, or none) or overdue.  One definition for the
-- follow-up register and the processing reports, so they always agree.
CREATE FUNCTION _handling_status(deadline date, done_on date) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN CASE
    WHEN done_on IS NOT NULL THEN
        CASE WHEN deadline IS NULL OR done_on <= deadline THEN 'done_on_time' ELSE 'done_late' END
    WHEN deadline < (now() AT TIME ZONE ioffice.timezone())::date THEN 'overdue'
    ELSE 'pending' END;
COMMENT ON FUNCTION _handling_status(date, date) IS
  'done_on_time, done_late, pending or overdue: a deadline and the day the handling was done, against today in ioffice.timezone';

-- The follow-up register of incoming documents (sổ theo dõi giải quyết văn
-- bản đến, Decree 30 appendix IV part VIII): every registered incoming
-- document with its handlers, the deadline of its lead handler (else the
-- document's own), its progress and the number and symbol of the replies
-- (issued outgoing documents linked to it).  security_invoker: a reader
-- sees the rows, handlers and replies that row-level security lets them
-- see.  A reporting tool in ioffice_reader, who is no person of the
-- documents, sees the documents but not their tasks: it gets the handlers'
-- names through _followup_reader_handlers() instead, and the task rows
-- stay closed to it.
--
-- The handlers' names of a document, for a reporting tool (the role that
-- queried, outside this SECURITY DEFINER function, is a member of
-- ioffice_reader: _search_outer_is_reader(), as search() and
-- register_export() decide it) and only of a document the policy
-- visible_to_readers of table document lets it read (ordinary, in no
-- confidential register): the same names the register's clerk reads, and
-- nothing else of the tasks.  NULL for anyone else, who reads the tasks
-- their own row-level security lets them read.
CREATE FUNCTION _followup_reader_handlers(doc bigint) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT string_agg(p.full_name || CASE tk.kind WHEN 'main' THEN ' (chủ trì)' ELSE ' (phối hợp)' END,
                      '; ' ORDER BY tk.kind DESC, tk.step)
      FROM ioffice.task tk JOIN ioffice.person p ON p.id = tk.receiver_id
     WHERE tk.document_id = _followup_reader_handlers.doc AND tk.action = 'assign'
       AND ioffice._search_outer_is_reader()
       AND EXISTS (SELECT 1 FROM ioffice.document d
                    WHERE d.id = _followup_reader_handlers.doc AND d.confidentiality = 'normal'
                      AND (d.register_id IS NULL
                           OR d.register_id IN (SELECT r.id FROM ioffice.register r WHERE NOT r.confidential)))
$$;
COMMENT ON FUNCTION _followup_reader_handlers(bigint) IS
  'The handlers of a document as the follow-up register names them, for a role in ioffice_reader and a document it may read; NULL otherwise';
CREATE VIEW incoming_followup WITH (security_invoker = true) AS
SELECT d.agency_id, d.register_id, r.code AS register_code, d.register_year AS year,
       d.number,
       concat_ws(' ', coalesce(d.doc_type_name, t.name),
                 'số ' || coalesce(d.sender_symbol, src.symbol),
                 'ngày ' || to_char(coalesce(d.sender_date, src.issued_on), 'DD/MM/YYYY'),
                 'của ' || coalesce(sa.name, d.sender_name)) AS document_description,
       d.abstract,
       coalesce((SELECT string_agg(p.full_name || CASE tk.kind WHEN 'main' THEN ' (chủ trì)' ELSE ' (phối hợp)' END,
                                   '; ' ORDER BY tk.kind DESC, tk.step)
                   FROM ioffice.task tk JOIN ioffice.person p ON p.id = tk.receiver_id
                  WHERE tk.document_id = d.id AND tk.action = 'assign'),
                ioffice._followup_reader_handlers(d.id)) AS handlers,
       h.deadline,
       h.done_on,
       ioffice._handling_status(h.deadline, h.done_on) AS status,
       CASE WHEN h.done_on IS NOT NULL THEN
                'Đã giải quyết ngày ' || to_char(h.done_on, 'DD/MM/YYYY')
                || CASE WHEN h.done_on > h.deadline
                        THEN ' (chậm ' || (h.done_on - h.deadline) || ' ngày)' ELSE '' END
            WHEN h.assigned IS NULL THEN 'Chưa phân công giải quyết'
            WHEN h.deadline < h.today THEN 'Quá hạn ' || (h.today - h.deadline) || ' ngày'
            WHEN h.deadline IS NOT NULL THEN 'Đang giải quyết, còn ' || (h.deadline - h.today) || ' ngày'
            ELSE 'Đang giải quyết' END AS progress,
       (SELECT string_agg(o.symbol, '; ' ORDER BY o.issued_on, o.id)
          FROM ioffice.document_link l
          JOIN ioffice.document o
            ON o.id = CASE WHEN l.document_id = d.id THEN l.related_id ELSE l.document_id END
         WHERE (l.document_id = d.id OR l.related_id = d.id)
           AND o.direction = 'outgoing' AND o.number IS NOT NULL) AS reply_symbols,
       d.comment AS note,
       d.doc_type,
       r.confidential OR d.confidentiality <> 'normal' AS confidential,
       d.state,
       d.id AS document_id
FROM ioffice.document d
JOIN ioffice.register r ON r.id = d.register_id
JOIN ioffice.doc_type t ON t.code = d.doc_type
JOIN ioffice.workflow_state ws ON ws.workflow = d.workflow AND ws.state = d.state
LEFT JOIN ioffice.unit sa ON sa.id = d.sender_agency_id
LEFT JOIN ioffice.document src ON src.id = d.source_document_id
CROSS JOIN LATERAL (
    SELECT (now() AT TIME ZONE ioffice.timezone())::date AS today,
           m.received_at AS assigned,
           coalesce(m.deadline, d.due_date) AS deadline,
           CASE WHEN ws.final THEN
                (SELECT (coalesce(max(tk.processed_at), d.updated_at) AT TIME ZONE ioffice.timezone())::date
                   FROM ioffice.task tk WHERE tk.document_id = d.id AND tk.status = 'done') END AS done_on
      FROM (SELECT NULL) one
      LEFT JOIN LATERAL (
          SELECT tk.received_at, tk.deadline FROM ioffice.task tk
           WHERE tk.document_id = d.id AND tk.action = 'assign' AND tk.kind = 'main'
           ORDER BY tk.step DESC LIMIT 1) m ON true) h
WHERE d.direction = 'incoming' AND d.number IS NOT NULL;
COMMENT ON VIEW incoming_followup IS 'Sổ theo dõi giải quyết văn bản đến (Decree 30 appendix IV): deadline, progress and replies of the incoming documents the reader may see';
COMMENT ON COLUMN incoming_followup.number IS 'Số đến';
COMMENT ON COLUMN incoming_followup.document_description IS 'Tên loại, số, ký hiệu, ngày, tháng và tên cơ quan, tổ chức ban hành văn bản';
COMMENT ON COLUMN incoming_followup.abstract IS 'Trích yếu nội dung';
COMMENT ON COLUMN incoming_followup.handlers IS 'Đơn vị hoặc người nhận';
COMMENT ON COLUMN incoming_followup.deadline IS 'Thời hạn giải quyết';
COMMENT ON COLUMN incoming_followup.progress IS 'Tiến độ giải quyết';
COMMENT ON COLUMN incoming_followup.reply_symbols IS 'Số, ký hiệu văn bản trả lời';
COMMENT ON COLUMN incoming_followup.note IS 'Ghi chú';
COMMENT ON COLUMN incoming_followup.status IS 'done_on_time, done_late, pending or overdue';
COMMENT ON COLUMN incoming_followup.done_on IS 'The day the document was dealt with (its last task done), once it is in a final state';
GRANT SELECT ON incoming_followup TO PUBLIC;

-- Each piece of handling the processing reports count: a task of an
-- incoming document given by the leader's assignment (lead or
-- co-operating handler: the route to the leader is not handling), or any
-- task of an outgoing document; with its receiver's unit, its deadline
-- (the task's, else the document's) and its status.  security_invoker:
-- counts are of the tasks the reader may see.
CREATE VIEW processing_tasks WITH (security_invoker = true) AS
SELECT t.id AS task_id, t.document_id, d.direction, d.agency_id,
       p.unit_id, u.name AS unit_name, t.receiver_id AS person_id, p.full_name AS person_name,
       t.kind, t.action,
       (t.received_at AT TIME ZONE ioffice.timezone())::date AS received_on,
       x.deadline, x.done_on,
       ioffice._handling_status(x.deadline, x.done_on) AS status
FROM ioffice.task t
JOIN ioffice.document d ON d.id = t.document_id
JOIN ioffice.person p ON p.id = t.receiver_id
JOIN ioffice.unit u ON u.id = p.unit_id
CROSS JOIN LATERAL (
    SELECT coalesce(t.deadline, d.due_date) AS deadline,
           (t.processed_at AT TIME ZONE ioffice.timezone())::date AS done_on) x
WHERE d.direction = 'outgoing' OR t.action = 'assign';
COMMENT ON VIEW processing_tasks IS 'The handling the processing reports count (tasks of assigned incoming documents, tasks of outgoing ones), with deadline and status, as the reader may see them';
GRANT SELECT ON processing_tasks TO PUBLIC;

-- Báo cáo tình hình giải quyết văn bản đến / đi (appendix VI part I): per
-- unit (person_id NULL) and per person of each unit, the tasks received in
-- the period (by the day they were received; NULL bounds: no bound) and
-- how they stand today.  SECURITY INVOKER: what the caller may see.
CREATE FUNCTION processing_report(direction text, from_date date DEFAULT NULL, to_date date DEFAULT NULL)
RETURNS TABLE (agency_id bigint, unit_id bigint, unit_name text, person_id bigint, person_name text,
               received bigint, done_on_time bigint, done_late bigint, pending_in_time bigint,
               overdue bigint)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF processing_report.direction IS NULL OR processing_report.direction NOT IN ('incoming', 'outgoing') THEN
        RAISE EXCEPTION 'unknown direction "%"', pg_catalog.left(processing_report.direction, 60)
            USING ERRCODE = '22023', HINT = 'Allowed directions: incoming, outgoing.';
    END IF;
    RETURN QUERY
    SELECT t.agency_id, t.unit_id, t.unit_name, t.person_id, t.person_name,
           count(*), count(*) FILTER (WHERE t.status = 'done_on_time'),
           count(*) FILTER (WHERE t.status = 'done_late'),
           count(*) FILTER (WHERE t.status = 'pending'),
           count(*) FILTER (WHERE t.status = 'overdue')
      FROM ioffice.processing_tasks t
     WHERE t.direction = processing_report.direction
       AND (from_date IS NULL OR t.received_on >= from_date)
       AND (to_date IS NULL OR t.received_on <= to_date)
     GROUP BY GROUPING SETS ((t.agency_id, t.unit_id, t.unit_name),
                             (t.agency_id, t.unit_id, t.unit_name, t.person_id, t.person_name))
     ORDER BY t.agency_id, t.unit_name, t.unit_id, t.person_id NULLS FIRST;
END
$$;
COMMENT ON FUNCTION processing_report(text, date, date) IS
  'Báo cáo tình hình giải quyết văn bản đến / đi: per unit (person_id NULL) and per person, the tasks received in the period: done on time, done late, pending in time, overdue; what the caller may see';

CREATE VIEW incoming_processing_report WITH (security_invoker = true) AS
SELECT * FROM ioffice.processing_report('incoming');
COMMENT ON VIEW incoming_processing_report IS 'Báo cáo tình hình giải quyết văn bản đến, all periods: per unit (person_id NULL) and per person';
GRANT SELECT ON incoming_processing_report TO PUBLIC;
CREATE VIEW outgoing_processing_report WITH (security_invoker = true) AS
SELECT * FROM ioffice.processing_report('outgoing');
COMMENT ON VIEW outgoing_processing_report IS 'Báo cáo tình hình giải quyết văn bản đi, all periods: per unit (person_id NULL) and per person';
GRANT SELECT ON outgoing_processing_report TO PUBLIC;

-- The workbooks (extension/report_export.c, with the registers' writer).
-- SECURITY INVOKER: each reads the views above under the caller's
-- row-level security, so a file holds what its reader may see.
CREATE FUNCTION followup_export(agency bigint, year int, format text DEFAULT 'xlsx') RETURNS bytea
    AS 'MODULE_PATHNAME', 'ioffice_followup_export'
    LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION followup_export(bigint, int, text) IS
  'The follow-up register of incoming documents of an agency and year (sổ theo dõi giải quyết văn bản đến) as xlsx or csv; the rows the caller may see';
CREATE FUNCTION processing_report_export(direction text, from_date date DEFAULT NULL,
                                         to_date date DEFAULT NULL, format text DEFAULT 'xlsx') RETURNS bytea
    AS 'MODULE_PATHNAME', 'ioffice_processing_report_export'
    LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION processing_report_export(text, date, date, text) IS
  'processing_report() as xlsx or csv (báo cáo tình hình giải quyết văn bản đến / đi)';
CREATE FUNCTION case_file_contents_export(case_file bigint, format text DEFAULT 'xlsx') RETURNS bytea
    AS 'MODULE_PATHNAME', 'ioffice_case_file_contents_export'
    LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION case_file_contents_export(bigint, text) IS
  'The table of contents of a case file (mục lục văn bản trong hồ sơ) as xlsx or csv: its documents the caller may see, in the order they arose';
CREATE FUNCTION case_file_list_export(agency bigint, year int, format text DEFAULT 'xlsx') RETURNS bytea
    AS 'MODULE_PATHNAME', 'ioffice_case_file_list_export'
    LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION case_file_list_export(bigint, int, text) IS
  'The list of an agency''s case files of a year (mục lục hồ sơ) as xlsx or csv, with the documents and pages the caller may see';

-- ---------------------------------------------------------------------------
-- Reminders (Decree 30 art. 24; appendix VI III.1l-m)
-- ---------------------------------------------------------------------------

-- What was sent, so that each reminder goes once, whoever sends it and
-- however often, across restarts: a row per task and level, written in the
-- transaction that queues its event.
CREATE TABLE reminder_sent (
    task_id    bigint NOT NULL REFERENCES task,
    level      text NOT NULL CHECK (level IN ('due', 'overdue')),
    person_id  bigint NOT NULL REFERENCES person,
    deadline   date NOT NULL,
    channel    text CHECK (channel IN ('email', 'sms')),
    sent_at    timestamptz NOT NULL DEFAULT now(),
    -- the deadline is part of the key: a task whose deadline is moved is
    -- reminded again of the new one, once per level
    PRIMARY KEY (task_id, level, deadline)
);
COMMENT ON TABLE reminder_sent IS 'Reminders sent of tasks coming due (due) and overdue: one per task, level and deadline (a moved deadline is reminded again); channel NULL: the person has no address';

CREATE TABLE reminder_digest (
    leader_id  bigint NOT NULL REFERENCES person,
    day        date NOT NULL,
    due        int NOT NULL,
    overdue    int NOT NULL,
    channel    text CHECK (channel IN ('email', 'sms')),
    sent_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (leader_id, day)
);
COMMENT ON TABLE reminder_digest IS 'Daily digests sent to unit leaders: one per leader and day (in ioffice.timezone)';
COMMENT ON COLUMN reminder_digest.due IS 'Open tasks of the leader''s units coming due that day';
COMMENT ON COLUMN reminder_digest.overdue IS 'Open tasks of the leader''s units overdue that day';

SELECT pg_catalog.pg_extension_config_dump('reminder_sent', '');
SELECT pg_catalog.pg_extension_config_dump('reminder_digest', '');
REVOKE ALL ON reminder_sent, reminder_digest FROM PUBLIC;
GRANT SELECT ON reminder_sent, reminder_digest TO ioffice_admin;

-- The open tasks with a deadline that are due or overdue today: due from
-- the working day that leaves ioffice.reminder_lead_days working days
-- before the deadline's (0: the last working day up to the deadline),
-- overdue from the first working day after it (the calendar of
-- is_working_day(): a deadline on a Sunday is due on the Friday and
-- overdue on the Monday).
CREATE FUNCTION _tasks_to_remind()
RETURNS TABLE (task_id bigint, document_id bigint, person_id bigint, unit_id bigint,
               deadline date, level text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    WITH k AS (
        SELECT t.id, t.document_id, t.receiver_id, p.unit_id, coalesce(t.deadline, d.due_date) AS deadline,
               (now() AT TIME ZONE ioffice.timezone())::date AS today,
               current_setting('ioffice.reminder_lead_days')::int AS lead
          FROM ioffice.task t
          JOIN ioffice.document d ON d.id = t.document_id
          JOIN ioffice.person p ON p.id = t.receiver_id
         WHERE t.status = 'open' AND coalesce(t.deadline, d.due_date) IS NOT NULL)
    -- the calendar is asked only near the deadline: no run of days off is
    -- 20 days long, so a deadline further ahead than twice the lead and 20
    -- days is not due, and one passed more than 20 days ago is overdue
    SELECT k.id, k.document_id, k.receiver_id, k.unit_id, k.deadline,
           CASE WHEN k.today > k.deadline THEN 'overdue' ELSE 'due' END
      FROM k
     WHERE (k.today > k.deadline
            AND (k.today - k.deadline > 20
                 OR ioffice.working_days_between((k.deadline + 1)::timestamp AT TIME ZONE ioffice.timezone(),
                                                 (k.today + 1)::timestamp AT TIME ZONE ioffice.timezone()) >= 1))
        OR (k.today <= k.deadline AND k.deadline - k.today <= 2 * k.lead + 20
            AND ioffice.working_days_between(k.today::timestamp AT TIME ZONE ioffice.timezone(),
                                             (k.deadline + 1)::timestamp AT TIME ZONE ioffice.timezone())
                <= k.lead + 1)
$$;
REVOKE ALL ON FUNCTION _tasks_to_remind() FROM PUBLIC;

-- The address of a person's notification: e-mail, else SMS, else none.
CREATE FUNCTION _notify_person(person bigint, message text, about jsonb) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_p record;
    v_channel text;
BEGIN
    SELECT p.login, p.full_name, p.email, p.phone INTO v_p FROM ioffice.person p WHERE p.id = _notify_person.person;
    v_channel := CASE WHEN coalesce(v_p.email, '') <> '' THEN 'email'
                      WHEN coalesce(v_p.phone, '') <> '' THEN 'sms' END;
    IF v_channel IS NOT NULL THEN
        PERFORM ioffice._emit('notify.' || v_channel,
            jsonb_build_object('channel', v_channel, 'login', v_p.login, 'name', v_p.full_name,
                               'to', CASE v_channel WHEN 'email' THEN v_p.email ELSE v_p.phone END,
                               'message', message, 'about', about));
    END IF;
    RETURN v_channel;
END
$$;
REVOKE ALL ON FUNCTION _notify_person(bigint, text, jsonb) FROM PUBLIC;

-- The reminders due now, each once: to each person, a notify.* event when a
-- task of theirs comes due and when it is overdue (a task found overdue
-- first gets the overdue one only); on a working day, to each leader of a
-- unit (role leader; the unit and its departments) one digest of that
-- day's due and overdue tasks of their units, when there are any.  Called
-- by the signing worker on its loop (workers/reminder_jobs.c); a row
-- another call is writing is left to it.  Returns the events' count
-- (reminders and digests, whether or not the person has an address).
CREATE FUNCTION send_reminders() RETURNS int
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_today date := (now() AT TIME ZONE ioffice.timezone())::date;
    v_row record;
    v_n int := 0;
    v_channel text;
BEGIN
    FOR v_row IN
        SELECT r.task_id, r.document_id, r.person_id, r.deadline, r.level, d.abstract,
               coalesce(d.symbol, d.sender_symbol) AS symbol
          FROM ioffice._tasks_to_remind() r
          JOIN ioffice.document d ON d.id = r.document_id
         WHERE NOT EXISTS (SELECT 1 FROM ioffice.reminder_sent s
                            WHERE s.task_id = r.task_id AND s.level = r.level
                              AND s.deadline = r.deadline)
         ORDER BY r.task_id
    LOOP
        -- the row first: a concurrent call that wrote it wins, and this one
        -- sends nothing
        INSERT INTO ioffice.reminder_sent (task_id, level, person_id, deadline)
        VALUES (v_row.task_id, v_row.level, v_row.person_id, v_row.deadline)
        ON CONFLICT DO NOTHING;
        CONTINUE WHEN NOT FOUND;
        v_channel := ioffice._notify_person(v_row.person_id,
            format(CASE v_row.level WHEN 'due' THEN 'Văn bản %s "%s" đến hạn giải quyết ngày %s'
                                    ELSE 'Văn bản %s "%s" đã quá hạn giải quyết (hạn %s)' END,
                   coalesce(v_row.symbol, ''), pg_catalog.left(v_row.abstract, 200),
                   to_char(v_row.deadline, 'DD/MM/YYYY')),
            jsonb_build_object('kind', 'task_' || v_row.level, 'task', v_row.task_id,
                               'document', v_row.document_id, 'deadline', v_row.deadline));
        UPDATE ioffice.reminder_sent s SET channel = v_channel
         WHERE s.task_id = v_row.task_id AND s.level = v_row.level AND s.deadline = v_row.deadline;
        v_n := v_n + 1;
    END LOOP;

    IF NOT ioffice.is_working_day(v_today) THEN
        RETURN v_n;
    END IF;
    FOR v_row IN
        WITH RECURSIVE led (leader_id, unit_id) AS (
            SELECT r.person_id, r.unit_id FROM ioffice.person_role r
              JOIN ioffice.person p ON p.id = r.person_id
             WHERE r.role = 'leader' AND p.active
            UNION
            SELECT l.leader_id, u.id FROM led l JOIN ioffice.unit u ON u.parent_id = l.unit_id
        )
        -- (the first 50 tasks, the oldest deadlines first, in the event)
        SELECT l.leader_id, count(*) FILTER (WHERE x.level = 'due') AS due,
               count(*) FILTER (WHERE x.level = 'overdue') AS overdue,
               jsonb_path_query_array(
                   jsonb_agg(jsonb_build_object('task', x.task_id, 'document', x.document_id,
                                                'person', x.person_id, 'deadline', x.deadline,
                                                'level', x.level)
                             ORDER BY x.deadline, x.task_id), '$[0 to 49]') AS tasks
          FROM (SELECT DISTINCT leader_id, unit_id FROM led) l
          JOIN ioffice._tasks_to_remind() x ON x.unit_id = l.unit_id
         WHERE NOT EXISTS (SELECT 1 FROM ioffice.reminder_digest g
                            WHERE g.leader_id = l.leader_id AND g.day = v_today)
         GROUP BY l.leader_id
         ORDER BY l.leader_id
    LOOP
        INSERT INTO ioffice.reminder_digest (leader_id, day, due, overdue)
        VALUES (v_row.leader_id, v_today, v_row.due, v_row.overdue)
        ON CONFLICT DO NOTHING;
        CONTINUE WHEN NOT FOUND;
        v_channel := ioffice._notify_person(v_row.leader_id,
            format('Ngày %s: %s việc đến hạn, %s việc quá hạn giải quyết trong đơn vị',
                   to_char(v_today, 'DD/MM/YYYY'), v_row.due, v_row.overdue),
            jsonb_build_object('kind', 'digest', 'day', v_today, 'due', v_row.due,
                               'overdue', v_row.overdue, 'tasks', v_row.tasks));
        UPDATE ioffice.reminder_digest g SET channel = v_channel
         WHERE g.leader_id = v_row.leader_id AND g.day = v_today;
        v_n := v_n + 1;
    END LOOP;
    RETURN v_n;
END
$$;
COMMENT ON FUNCTION send_reminders() IS
  'Sends (notify.email, or notify.sms) the reminders due now, each once: a task coming due (ioffice.reminder_lead_days working days ahead) and overdue, to its person; on working days, one digest a day to each unit leader of their units'' due and overdue tasks; the worker calls it; returns the events'' count';
REVOKE ALL ON FUNCTION send_reminders() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION send_reminders() TO ioffice_admin;
