-- Issue 17, findings 4 and 6: what the incoming workflow keeps and freezes.
-- (a) A received document, confidential ones included, is handed only to
--     people of the agency that holds it: assignment, cooperators, any
--     hand-over step a DBA adds.
-- (b) Its files are what arrived: never replaced or removed (by anyone, in
--     any state, by the functions or by a direct write); once its clerk
--     hands it on, nothing is added either.  The clerk may add a missing
--     part while registering it or after it came back.
-- (c) Its arrival date is not before its own date, not in the future, and
--     in the year of the register that numbers it.
-- (6) An issued document's related documents (links) no longer change.
SET client_min_messages = warning;

-- what a statement answers: ok, or its SQLSTATE and message, with the ids
-- of documents and files left out
CREATE FUNCTION pg_temp.refusal(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || regexp_replace(SQLERRM, '(document|file) [0-9]+', '\1 N', 'g');
END
$$;
SELECT (now() AT TIME ZONE 'Asia/Ho_Chi_Minh')::date AS today \gset

-- ---------------------------------------------------------------------------
-- (b) registered: the clerk adds the scan and a missing part, replaces nothing
-- ---------------------------------------------------------------------------
SET ioffice.actor = 'regress_thuy';
SELECT ioffice.register_incoming('CV', 'Về công tác bảo vệ bí mật nhà nước', 'Công an tỉnh Sơn La',
       '15/CAT-PA03', :'today', '{"confidentiality": "secret"}') AS secret \gset
SELECT ioffice.attach(:secret, 'ban_quet.pdf', content) AS scan FROM pdf \gset
SELECT pg_temp.refusal(format($$SELECT ioffice.replace_file(%s, 'ban_quet_2.pdf', content) FROM pdf$$, :scan))
    AS clerk_replaces_scan;
SELECT pg_temp.refusal(format($$SELECT ioffice.remove_file(%s)$$, :scan)) AS clerk_removes_scan;
SELECT pg_temp.refusal(format($$SELECT ioffice.attach(%s, 'phu_luc.pdf', content) FROM pdf$$, :secret))
    AS clerk_adds_part;
SELECT ioffice.act(:secret, 'submit', 'loi', 'Kính trình Chủ tịch');

-- ---------------------------------------------------------------------------
-- (b) with the leader: the scan he holds is not his to swap, nor to add to
-- ---------------------------------------------------------------------------
SET ioffice.actor = 'loi';
SELECT pg_temp.refusal(format($$SELECT ioffice.replace_file(%s, 'ban_khac.pdf',
                                  convert_to('%%PDF-1.4 nội dung khác', 'UTF8'))$$, :scan)) AS leader_replaces_scan;
SELECT pg_temp.refusal(format($$SELECT ioffice.remove_file(%s)$$, :scan)) AS leader_removes_scan;
SELECT pg_temp.refusal(format($$SELECT ioffice.attach(%s, 'y_kien.pdf', content) FROM pdf$$, :secret))
    AS leader_adds_file;
-- nor by writing the table (the owner's role here; no other role may)
RESET ioffice.actor;
SELECT pg_temp.refusal(format($$UPDATE ioffice.file SET removed_at = now() WHERE id = %s$$, :scan))
    AS direct_remove;
SELECT pg_temp.refusal(format($$UPDATE ioffice.file SET name = 'doi_ten.pdf' WHERE id = %s$$, :scan))
    AS direct_rename;
SELECT pg_temp.refusal(format($$DELETE FROM ioffice.file WHERE id = %s$$, :scan)) AS direct_delete;
SELECT pg_temp.refusal(format($$INSERT INTO ioffice.file (document_id, name, kind, size, sha256, content,
                                                          uploaded_by)
                                SELECT %s, 'chen.pdf', 'pdf', length(content), sha256(content), content, 1
                                  FROM pdf$$, :secret)) AS direct_insert;

-- ---------------------------------------------------------------------------
-- (a) the assignment stays inside the agency, confidential or not
-- ---------------------------------------------------------------------------
SET ioffice.actor = 'loi';
-- a commune's officer (another agency of this database) leads it, or cooperates
SELECT pg_temp.refusal(format($$SELECT ioffice.act(%s, 'assign', 'xa_cv1', 'Chủ trì')$$, :secret))
    AS lead_of_other_agency;
SELECT pg_temp.refusal(format($$SELECT ioffice.act(%s, 'assign', 'dai', 'Chủ trì',
                                  '{"cooperate": ["hoa", "xa_cv2"]}')$$, :secret)) AS cooperator_of_other_agency;
SELECT pg_temp.refusal(format($$SELECT ioffice.act(%s, 'assign', 'dai', 'Chủ trì', %L)$$, :secret,
                              jsonb_build_object('cooperate', jsonb_build_array(
                                  jsonb_build_object('login', 'xa_ct', 'deadline', to_char(:'today'::date, 'YYYY-MM-DD'))))))
    AS cooperator_object_of_other_agency;
-- nothing of it happened: still with the leader, nobody else got a task
SELECT d.state, (SELECT count(*) FROM ioffice.task t WHERE t.document_id = d.id) AS tasks
FROM ioffice.document d WHERE d.id = :secret;
-- the people of the agency: the office's chief leads, the culture office helps
SELECT ioffice.act(:secret, 'assign', 'dai', 'Đ/c Đại chủ trì', '{"cooperate": ["hoa"]}');
SELECT p.login, t.kind, t.status FROM ioffice.task t JOIN ioffice.person p ON p.id = t.receiver_id
WHERE t.document_id = :secret ORDER BY t.step;
-- the commune's officers do not see it
SET ioffice.actor = 'xa_cv1';
SELECT ioffice.can_see(:secret) AS commune_sees;

-- a hand-over step a DBA adds to the incoming workflow (a transfer of the
-- lead) goes to the agency's people only, as every given receiver
RESET ioffice.actor;
INSERT INTO ioffice.workflow_transition (workflow, action, from_state, to_state, label, taken_by, receiver,
                                         guards)
VALUES ('incoming', 'transfer', 'in_progress', 'in_progress', 'Chuyển người chủ trì', 'holder', 'given',
        '{receiver_not_actor}');
SET ioffice.actor = 'dai';
SELECT pg_temp.refusal(format($$SELECT ioffice.act(%s, 'transfer', 'xa_ct')$$, :secret)) AS transfer_out;
SELECT pg_temp.refusal(format($$SELECT ioffice.act(%s, 'transfer', 'regress_tuan')$$, :secret)) AS transfer_in;
RESET ioffice.actor;
DELETE FROM ioffice.workflow_transition WHERE workflow = 'incoming' AND action = 'transfer';

-- ---------------------------------------------------------------------------
-- (b) in progress: the handler adds nothing to what arrived
-- ---------------------------------------------------------------------------
SET ioffice.actor = 'regress_tuan';
SELECT pg_temp.refusal(format($$SELECT ioffice.attach(%s, 'bao_cao.pdf', content) FROM pdf$$, :secret))
    AS handler_adds_file;
SELECT pg_temp.refusal(format($$SELECT ioffice.replace_file(%s, 'ban_khac.pdf', content) FROM pdf$$, :scan))
    AS handler_replaces_scan;
-- the files are those the clerk registered, unchanged
SELECT string_agg(f.name || CASE WHEN f.superseded_at IS NULL AND f.removed_at IS NULL THEN '' ELSE ' (old)' END,
                  ', ' ORDER BY f.id) AS files
FROM ioffice.file f WHERE f.document_id = :secret;

-- ---------------------------------------------------------------------------
-- (b) returned to the clerk: a missing page is added, the scan stays
-- ---------------------------------------------------------------------------
SET ioffice.actor = 'regress_thuy';
SELECT ioffice.register_incoming('TB', 'Thông báo lịch tiếp công dân', 'Sở Tư pháp tỉnh Sơn La',
       '07/TB-STP', :'today') AS paper \gset
SELECT ioffice.attach(:paper, 'thong_bao.pdf', content) AS paper_scan FROM pdf \gset
SELECT ioffice.act(:paper, 'submit', 'loi');
SET ioffice.actor = 'loi';
SELECT ioffice.act(:paper, 'return', NULL, 'Thiếu trang 2');
SET ioffice.actor = 'regress_thuy';
SELECT pg_temp.refusal(format($$SELECT ioffice.attach(%s, 'trang_2.pdf', content) FROM pdf$$, :paper))
    AS clerk_adds_page;
SELECT pg_temp.refusal(format($$SELECT ioffice.replace_file(%s, 'thong_bao_2.pdf', content) FROM pdf$$,
                              :paper_scan)) AS clerk_replaces_scan;

-- ---------------------------------------------------------------------------
-- (c) the arrival date
-- ---------------------------------------------------------------------------
-- dated today, said to have arrived in 1990
SELECT pg_temp.refusal(format($$SELECT ioffice.register_incoming('CV', 'Đến trước ngày ký', 'Sở Nội vụ',
                                  '01/SNV-TCBC', %L, '{"received_at": "1990-01-01 08:00:00+07"}')$$, :'today'))
    AS arrived_before_own_date;
-- arrived the day before it was dated
SELECT pg_temp.refusal(format($$SELECT ioffice.register_incoming('CV', 'Đến trước ngày ký', 'Sở Nội vụ',
                                  '02/SNV-TCBC', %L, jsonb_build_object('received_at', %L))$$,
                              :'today', (:'today'::date - 1)::text || ' 09:00:00+07'))
    AS arrived_the_day_before;
-- dated and arrived in an earlier year, numbered in this year's register
SELECT pg_temp.refusal(format($$SELECT ioffice.register_incoming('CV', 'Đến năm trước', 'Sở Nội vụ',
                                  '03/SNV-TCBC', %L, jsonb_build_object('received_at', %L))$$,
                              :'today'::date - 400, (:'today'::date - 400)::text || ' 09:00:00+07'))
    AS arrived_in_another_year;
-- in the future
SELECT pg_temp.refusal(format($$SELECT ioffice.register_incoming('CV', 'Đến ngày mai', 'Sở Nội vụ',
                                  '04/SNV-TCBC', %L, jsonb_build_object('received_at', %L))$$,
                              :'today', (:'today'::date + 1)::text || ' 09:00:00+07'))
    AS arrives_tomorrow;
-- dated on 1 January, arrived at the start of that day or now: both of this year
SELECT pg_temp.refusal(format($$SELECT ioffice.register_incoming('CV', 'Đến đầu năm', 'Sở Nội vụ',
                                  '05/SNV-TCBC', %L, jsonb_build_object('received_at', %L))$$,
                              date_trunc('year', :'today'::date)::date,
                              date_trunc('year', :'today'::date)::date::text || ' 00:00:00+07'))
    AS arrived_new_year;
SELECT pg_temp.refusal(format($$SELECT ioffice.register_incoming('CV', 'Đến hôm nay', 'Sở Nội vụ',
                                  '06/SNV-TCBC', %L)$$, date_trunc('year', :'today'::date)::date))
    AS arrived_now;
-- what the register shows: every arrival of this year's register in it, none
-- before its document's date
RESET ioffice.actor;
SELECT bool_and(extract(year FROM received_on) = year) AS arrivals_in_register_year,
       bool_and(received_on >= sender_date) AS none_before_own_date
FROM ioffice.incoming_register WHERE sender LIKE 'Sở Nội vụ%';

-- ---------------------------------------------------------------------------
-- (6) an issued document's related documents no longer change
-- ---------------------------------------------------------------------------
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('CV', 'Văn bản được dẫn chiếu') AS cited \gset
SELECT ioffice.create_outgoing('CV', 'Công văn có văn bản liên quan',
                               jsonb_build_object('related', jsonb_build_array(:cited))) AS linked \gset
SELECT ioffice.attach(:linked, 'cong_van.pdf', content) IS NOT NULL AS attached FROM pdf;
SELECT ioffice.act(:linked, 'submit', 'dai');
SET ioffice.actor = 'dai';
SELECT ioffice.act(:linked, 'approve', 'regress_thuy');
SET ioffice.actor = 'regress_thuy';
SELECT ioffice.act(:linked, 'issue');
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('CV', 'Dự thảo mới') AS later \gset
-- the drafter links another document to the issued one: refused
SELECT pg_temp.refusal(format('SELECT ioffice.link_documents(%s, %s)', :linked, :later)) AS link_after_issue;
-- a new draft may cite the issued document
SELECT pg_temp.refusal(format('SELECT ioffice.link_documents(%s, %s)', :later, :linked)) AS draft_cites_issued;
-- nor by writing the table
RESET ioffice.actor;
SELECT pg_temp.refusal(format('INSERT INTO ioffice.document_link VALUES (%s, %s)', :linked, :later))
    AS direct_link;
SELECT pg_temp.refusal(format('DELETE FROM ioffice.document_link WHERE document_id = %s', :linked))
    AS direct_unlink;
SELECT pg_temp.refusal(format('UPDATE ioffice.document_link SET document_id = %s WHERE document_id = %s',
                              :later, :linked)) AS direct_move;
SELECT pg_temp.refusal(format('UPDATE ioffice.document_link SET document_id = %s WHERE document_id = %s',
                              :linked, :later)) AS direct_move_in;
BEGIN;
SELECT pg_temp.refusal('TRUNCATE ioffice.document_link') AS direct_truncate;
ROLLBACK;
SELECT (SELECT array_agg(l.related_id = :cited) FROM ioffice.document_link l WHERE l.document_id = :linked)
           AS issued_links,
       (SELECT array_agg(l.related_id = :linked) FROM ioffice.document_link l WHERE l.document_id = :later)
           AS draft_links;
SELECT count(*) AS problems FROM ioffice.audit_verify('document', :secret);
