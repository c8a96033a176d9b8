-- Changes of access flagged until a DBA confirms them (Decree 30, Appendix
-- VI, III.3c; sql/parts/99_permission_changes.sql): roles, delegations, and
-- a document's visibility changed outside the workflow, by any path.
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
    RETURN v_state || ': ' || regexp_replace(v_message, '[0-9]+', 'N', 'g');
END
$$;

-- the flags written from here on
SELECT coalesce(max(id), 0) AS since FROM ioffice.permission_change \gset
CREATE FUNCTION pg_temp.flags(since bigint) RETURNS TABLE (kind text, operation text, person text, doc boolean,
                                               by_person text, before boolean, after boolean)
LANGUAGE sql AS $$
    SELECT c.kind, c.operation, p.login, c.document_id IS NOT NULL, b.login,
           c.before IS NOT NULL, c.after IS NOT NULL
      FROM ioffice.permission_change c
      LEFT JOIN ioffice.person p ON p.id = c.person_id
      LEFT JOIN ioffice.person b ON b.id = c.changed_by
     WHERE c.id > since
     ORDER BY c.id
$$;

-- a DBA gives hoa the clerk's role of the district by hand, and takes it back
INSERT INTO ioffice.person_role (person_id, role, unit_id)
SELECT p.id, 'clerk', p2.unit_id FROM ioffice.person p, ioffice.person p2
 WHERE p.login = 'hoa' AND p2.login = 'regress_thuy';
-- an update that changes nothing is no change
UPDATE ioffice.person_role SET role = role WHERE role = 'clerk'
   AND person_id = (SELECT id FROM ioffice.person WHERE login = 'hoa');
DELETE FROM ioffice.person_role WHERE role = 'clerk'
   AND person_id = (SELECT id FROM ioffice.person WHERE login = 'hoa');
SELECT * FROM pg_temp.flags(:since);

-- a leader delegates through the function and revokes it: both flagged,
-- with the leader named as the one who changed it
SELECT max(id) AS since FROM ioffice.permission_change \gset
SET ioffice.actor = 'loi';
SELECT ioffice.delegate('kien', now() + interval '400 days', now() + interval '403 days') AS deleg \gset
SELECT ioffice.revoke_delegation(:deleg);
RESET ioffice.actor;
SELECT * FROM pg_temp.flags(:since);

-- the workflow's own tasks are not flagged; a task written by hand is, and
-- so is a document's drafter changed by hand (its state is not a question
-- of access)
SELECT max(id) AS since FROM ioffice.permission_change \gset
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('CV', 'Về việc kiểm tra quyền truy cập') AS doc \gset
SELECT ioffice.attach(:doc, 'du_thao.pdf', content) IS NOT NULL AS attached FROM pdf;
SELECT ioffice.act(:doc, 'submit', 'dai') IS NOT NULL AS submitted;
RESET ioffice.actor;
SELECT count(*) = 0 AS workflow_not_flagged FROM pg_temp.flags(:since);
INSERT INTO ioffice.task (document_id, step, action, sender_id, receiver_id, kind)
SELECT :doc, 99, 'cooperate', s.id, r.id, 'cooperate' FROM ioffice.person s, ioffice.person r
 WHERE s.login = 'dai' AND r.login = 'regress_tuan';
UPDATE ioffice.document SET drafter_id = (SELECT id FROM ioffice.person WHERE login = 'regress_tuan')
 WHERE id = :doc;
UPDATE ioffice.document SET abstract = abstract || ' (sửa)' WHERE id = :doc;
SELECT * FROM pg_temp.flags(:since);
SELECT count(*) = 2 AS flags_of_the_document FROM ioffice.permission_change
 WHERE document_id = :doc;

-- what a DBA sees, and confirms (the login role is recorded, as the audit
-- records it)
CREATE ROLE regress_pc_dba IN ROLE ioffice_admin;
CREATE ROLE regress_pc_user;
GRANT USAGE ON SCHEMA ioffice TO regress_pc_user;
SET ROLE regress_pc_dba;
SELECT kind, operation, login, document_id IS NOT NULL AS doc, changed_by_login
  FROM ioffice.unconfirmed_permission_changes WHERE id > :since ORDER BY id;
SELECT min(id) AS first FROM ioffice.unconfirmed_permission_changes WHERE id > :since \gset
SELECT ioffice.confirm_permission_change(:first, 'Đã kiểm tra: phân công xem xét') AS confirmed;
SELECT ioffice.confirm_permission_change(:first) AS confirmed_again;
SELECT pg_temp.outcome('SELECT ioffice.confirm_permission_change(-1)');
SELECT pg_temp.outcome($$SELECT ioffice.confirm_permission_change(1, repeat('x', 1001))$$);
SELECT count(*) = 0 AS gone_from_the_list FROM ioffice.unconfirmed_permission_changes WHERE id = :first;
SELECT confirmed_role = session_user AS confirmer_recorded, confirm_note
  FROM ioffice.permission_change WHERE id = :first;
RESET ROLE;
-- the confirmation is in the audit trail
SELECT action, state_before, state_after, detail->>'note' AS note
  FROM ioffice.audit WHERE entity = 'permission_change' AND entity_id = :first;

-- nobody else may read or confirm
SET ROLE regress_pc_user;
SELECT pg_temp.outcome('SELECT count(*) FROM ioffice.permission_change');
SELECT pg_temp.outcome('SELECT count(*) FROM ioffice.unconfirmed_permission_changes');
SELECT pg_temp.outcome('SELECT ioffice.confirm_permission_change(' || :first || ')');
RESET ROLE;

-- a flag is kept as it was written, even against its owner
SELECT pg_temp.outcome('UPDATE ioffice.permission_change SET kind = ''role'' WHERE id = ' || :first);
SELECT pg_temp.outcome('UPDATE ioffice.permission_change SET confirm_note = ''khác'' WHERE id = ' || :first);
SELECT pg_temp.outcome('DELETE FROM ioffice.permission_change WHERE id = ' || :first);
SELECT pg_temp.outcome('TRUNCATE ioffice.permission_change');

DROP ROLE regress_pc_dba;
REVOKE USAGE ON SCHEMA ioffice FROM regress_pc_user;
DROP ROLE regress_pc_user;
