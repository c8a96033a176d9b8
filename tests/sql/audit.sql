-- The audit trail: every act recorded in hash chains, append-only for
-- everyone, changes made by hand recorded as such, and tampering of every
-- kind found by audit_verify().
\set VERBOSITY default
\set SHOW_CONTEXT never

-- everything the earlier tests did is chained and intact
SELECT count(*) > 100 AS many_records, count(*) FILTER (WHERE chain IS NULL) AS unchained
FROM ioffice.audit;
SELECT * FROM ioffice.audit_verify();

-- a document's chain: its own acts and those on its files, in order
SELECT seq, entity, action, prev_hash IS NULL AS first, length(hash) AS hash_bytes
FROM ioffice.audit WHERE chain = 'document:1' ORDER BY seq;
SELECT count(*) AS broken_links FROM ioffice.audit a
JOIN ioffice.audit b ON b.chain = a.chain AND b.seq = a.seq + 1
WHERE b.prev_hash IS DISTINCT FROM a.hash;

-- append-only, for the owner too
UPDATE ioffice.audit SET action = 'nothing' WHERE id = 1;
\echo :SQLSTATE
DELETE FROM ioffice.audit WHERE id = 1;
\echo :SQLSTATE
TRUNCATE ioffice.audit;
\echo :SQLSTATE

-- a change made by hand is recorded, with the database role that made it
SELECT id AS cv2 FROM ioffice.document WHERE abstract = 'V/v đôn đốc áp dụng chữ ký số' \gset
UPDATE ioffice.document SET state = 'completed' WHERE id = :cv2;
SELECT entity, action, state_before, state_after, db_role = session_user AS by_me,
       actor_id IS NULL AS no_person, detail->'new'->>'state' AS new_state,
       chain = 'document:' || :cv2 AS in_its_chain, seq > 1 AS appended
FROM ioffice.audit WHERE chain = 'document:' || :cv2 ORDER BY seq DESC LIMIT 1;
UPDATE ioffice.document SET state = 'issued' WHERE id = :cv2;
INSERT INTO ioffice.person_role (person_id, role, unit_id) VALUES (1, 'admin', 1);
DELETE FROM ioffice.person_role WHERE person_id = 1 AND role = 'admin';
SELECT entity, action, detail->'new'->>'role' AS new_role, detail->'old'->>'role' AS old_role
FROM ioffice.audit WHERE entity = 'person_role' ORDER BY id;
-- file contents are not copied into the trail, their hash is (a draft's
-- file: those of an issued document can no longer change)
SELECT f.id AS draft_file, f.name AS draft_file_name FROM ioffice.file f
JOIN ioffice.document d ON d.id = f.document_id WHERE d.state = 'draft' ORDER BY f.id LIMIT 1 \gset
UPDATE ioffice.file SET name = 'doi_ten.pdf' WHERE id = :draft_file;
SELECT detail->'new' ? 'content' AS has_content, detail->'new' ? 'sha256' AS has_sha256
FROM ioffice.audit WHERE entity = 'file' AND action = 'direct_update';
UPDATE ioffice.file SET name = :'draft_file_name' WHERE id = :draft_file;
SELECT * FROM ioffice.audit_verify();

-- sealing: a checkpoint of the heads that moved; nothing moved, same checkpoint
SELECT ioffice.audit_seal() AS cp1 \gset
SELECT ioffice.audit_seal() = :cp1 AS nothing_new;
SELECT chains > 10 AS many_chains, records = (SELECT count(*) FROM ioffice.audit) AS all_records,
       prev_hash IS NULL AS first, length(root) AS root_bytes
FROM ioffice.audit_checkpoint WHERE id = :cp1;
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('CV', 'Sau niêm phong') AS late \gset
RESET ioffice.actor;
SELECT ioffice.audit_seal() AS cp2 \gset
SELECT id = :cp2 AS second, chains, records, prev_hash = (SELECT hash FROM ioffice.audit_checkpoint WHERE id = :cp1) AS linked
FROM ioffice.audit_checkpoint WHERE id = :cp2;
SELECT * FROM ioffice.audit_verify();
UPDATE ioffice.audit_checkpoint SET root = hash;
\echo :SQLSTATE

-- Tampering by a superuser who switches triggers off.  Each kind is done on
-- a document of its own and must be found, naming the record.
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('CV', 'Sửa nội dung') AS t_edit \gset
SELECT ioffice.attach(:t_edit, 'a.pdf', content) FROM pdf;
SELECT ioffice.act(:t_edit, 'submit', 'dai', 'Trình');
SELECT ioffice.create_outgoing('CV', 'Xóa giữa') AS t_del \gset
SELECT ioffice.attach(:t_del, 'a.pdf', content) FROM pdf;
SELECT ioffice.act(:t_del, 'submit', 'dai');
SELECT ioffice.create_outgoing('CV', 'Chèn') AS t_ins \gset
SELECT ioffice.attach(:t_ins, 'a.pdf', content) FROM pdf;
SELECT ioffice.act(:t_ins, 'submit', 'dai');
SELECT ioffice.create_outgoing('CV', 'Đảo thứ tự') AS t_swap \gset
SELECT ioffice.attach(:t_swap, 'a.pdf', content) FROM pdf;
SELECT ioffice.act(:t_swap, 'submit', 'dai');
SELECT ioffice.create_outgoing('CV', 'Xóa đuôi') AS t_tail \gset
SELECT ioffice.attach(:t_tail, 'a.pdf', content) FROM pdf;
SELECT ioffice.act(:t_tail, 'submit', 'dai');
SELECT ioffice.create_outgoing('CV', 'Xóa cả chuỗi') AS t_all \gset
SELECT ioffice.attach(:t_all, 'a.pdf', content) FROM pdf;
RESET ioffice.actor;
SELECT ioffice.audit_seal() IS NOT NULL AS sealed;
SELECT count(*) AS problems_before FROM ioffice.audit_verify();

SET session_replication_role = replica;
-- 1. edit a record's content
UPDATE ioffice.audit SET detail = jsonb_set(detail, '{note}', '"Đã sửa"')
WHERE chain = 'document:' || :t_edit AND action = 'submit' RETURNING id AS edited \gset
-- 2. remove a record from the middle
DELETE FROM ioffice.audit WHERE chain = 'document:' || :t_del AND seq = 2;
-- 3. insert a forged record after the first one, moving the others down
UPDATE ioffice.audit SET seq = seq + 10 WHERE chain = 'document:' || :t_ins AND seq >= 2;
UPDATE ioffice.audit SET seq = seq - 9 WHERE chain = 'document:' || :t_ins AND seq >= 12;
INSERT INTO ioffice.audit (at, actor_id, db_role, entity, entity_id, action, detail, chain, seq, prev_hash, hash)
SELECT at, actor_id, db_role, entity, entity_id, 'approve', detail, chain, 2, hash, sha256(hash)
FROM ioffice.audit WHERE chain = 'document:' || :t_ins AND seq = 1 RETURNING id AS forged \gset
-- 4. reorder: records 2 and 3 change places
UPDATE ioffice.audit SET seq = 100 WHERE chain = 'document:' || :t_swap AND seq = 2;
UPDATE ioffice.audit SET seq = 2 WHERE chain = 'document:' || :t_swap AND seq = 3;
UPDATE ioffice.audit SET seq = 3 WHERE chain = 'document:' || :t_swap AND seq = 100;
-- 5. remove the sealed last record of a chain
DELETE FROM ioffice.audit WHERE chain = 'document:' || :t_tail
  AND seq = (SELECT max(seq) FROM ioffice.audit WHERE chain = 'document:' || :t_tail);
-- 6. remove a whole chain
DELETE FROM ioffice.audit WHERE chain = 'document:' || :t_all;
RESET session_replication_role;

SELECT audit_id = :edited AS is_edited_record, problem FROM ioffice.audit_verify('document', :t_edit);
SELECT problem FROM ioffice.audit_verify('document', :t_del);
SELECT audit_id = :forged AS is_forged_record, problem FROM ioffice.audit_verify('document', :t_ins);
SELECT a.seq, a.action FROM ioffice.audit a WHERE chain = 'document:' || :t_ins ORDER BY seq;
SELECT problem FROM ioffice.audit_verify('document', :t_swap);
SELECT problem FROM ioffice.audit_verify('document', :t_tail);
SELECT audit_id, problem FROM ioffice.audit_verify('document', :t_all);
-- the whole-trail run finds all of them and nothing else
SELECT count(*) AS problems FROM ioffice.audit_verify();
-- an intact document of the same trail is still clean
SELECT count(*) AS problems_of_doc_1 FROM ioffice.audit_verify('document', 1);

-- a tampered checkpoint is found too
SET session_replication_role = replica;
UPDATE ioffice.audit_checkpoint SET records = records + 1 WHERE id = :cp1;
RESET session_replication_role;
SELECT audit_id, problem FROM ioffice.audit_verify() WHERE problem LIKE 'checkpoint%';

-- records written with chaining off (for measuring its cost) are reported
BEGIN;
SET LOCAL ioffice.audit_chaining = off;
SET LOCAL ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('CV', 'Không chuỗi') AS unchained \gset
SELECT problem FROM ioffice.audit_verify('document', :unchained);
ROLLBACK;
SET ioffice.audit_chaining = off;
\echo :SQLSTATE
RESET ioffice.audit_chaining;

-- only ioffice_admin (and superusers) verify and seal
SET SESSION AUTHORIZATION regress_luan;
SELECT * FROM ioffice.audit_verify();
\echo :SQLSTATE
SELECT ioffice.audit_seal();
\echo :SQLSTATE
SET ioffice.audit_chaining = off;
\echo :SQLSTATE
RESET SESSION AUTHORIZATION;
SELECT count(*) AS problems_in_document_chains FROM ioffice.audit_verify('document', NULL);
SELECT ioffice.audit_verify(NULL, 1);
\echo :SQLSTATE

-- turning check_function_bodies off (what pg_restore does) silences the
-- audit triggers for a superuser's restore only: an admin who turns it off
-- is still recorded
GRANT ioffice_admin TO regress_admin1;
SET SESSION AUTHORIZATION regress_admin1;
SET check_function_bodies = off;
INSERT INTO ioffice.holiday (day, name) VALUES ('2031-01-01', 'Tết Dương lịch');
UPDATE ioffice.workflow_state SET label = 'Dự thảo (sửa)' WHERE workflow = 'outgoing' AND state = 'draft';
RESET check_function_bodies;
RESET SESSION AUTHORIZATION;
REVOKE ioffice_admin FROM regress_admin1;
SELECT entity, action, db_role FROM ioffice.audit
WHERE (entity = 'holiday' AND detail->'new'->>'day' = '2031-01-01')
   OR (chain = 'workflow:outgoing' AND detail::text LIKE '%Dự thảo (sửa)%')
ORDER BY id;
UPDATE ioffice.workflow_state SET label = 'Dự thảo' WHERE workflow = 'outgoing' AND state = 'draft';
DELETE FROM ioffice.holiday WHERE day = '2031-01-01';

-- every table whose changes by hand are audited row by row has its TRUNCATE
-- audited too (TRUNCATE fires no row trigger)
SELECT c.relname AS audited_without_truncate
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE c.relnamespace = 'ioffice'::regnamespace AND t.tgname = 'audit_direct'
  AND NOT EXISTS (SELECT 1 FROM pg_trigger u
                  WHERE u.tgrelid = t.tgrelid AND u.tgname = 'audit_direct_truncate')
ORDER BY 1;
-- and every table an admin may write is audited row by row
SELECT c.relname AS admin_writable_unaudited FROM pg_class c
WHERE c.relnamespace = 'ioffice'::regnamespace AND c.relkind = 'r'
  AND (has_table_privilege('ioffice_admin', c.oid, 'INSERT')
       OR has_table_privilege('ioffice_admin', c.oid, 'UPDATE')
       OR has_table_privilege('ioffice_admin', c.oid, 'DELETE'))
  AND NOT EXISTS (SELECT 1 FROM pg_trigger t
                  WHERE t.tgrelid = c.oid AND t.tgname IN ('audit_direct', 'audit'))
ORDER BY 1;
SELECT count(*) AS tables_audited FROM pg_trigger t
WHERE t.tgname = 'audit_direct_truncate'
  AND t.tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'ioffice'::regnamespace);
BEGIN;
TRUNCATE ioffice.delegation, ioffice.document_link;
SELECT entity, action, db_role = session_user AS by_session_user
FROM ioffice.audit WHERE action = 'direct_truncate' ORDER BY id;
ROLLBACK;
