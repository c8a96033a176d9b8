-- Confidential registers (register.confidential, the "-M" series) and their
-- entries are seen by the agency's clerks and the admins only, by every path:
-- the register's row and counter, number_taken, the register views, the
-- documents numbered in them, the export, the audit chain of their numbers.
-- Each path is counted as a reader (ioffice_reader), another agency's clerk,
-- a specialist, the drafter, a DBA (ioffice_admin), an application acting for
-- a person, the agency's clerk and an admin, and compared with what is there.
\set VERBOSITY terse
\set SHOW_CONTEXT never
SELECT id AS ubnd FROM ioffice.unit WHERE code = '000.00.32.H41' \gset
SELECT id AS xa FROM ioffice.unit WHERE code = '001.32.32.H41' \gset
SELECT extract(year FROM now() AT TIME ZONE 'Asia/Ho_Chi_Minh')::int AS year \gset
SELECT id AS secret FROM ioffice.register
WHERE agency_id = :ubnd AND direction = 'outgoing' AND code = 'outgoing_secret' AND year = :year \gset
SELECT id AS reg FROM ioffice.register
WHERE agency_id = :ubnd AND direction = 'outgoing' AND code = 'outgoing' AND year = :year \gset

-- the clerk takes a decision's number in the confidential series for an
-- external system: the caller sees the number it took
SET ioffice.actor = 'regress_thuy';
SELECT symbol ~ '^[0-9]{2,}/QĐ-UBND-M$' AS taken_in_secret_series
FROM ioffice.take_number(:secret, 'QĐ');
RESET ioffice.actor;
-- the series also numbers the secret document of case B, drafted by regress_luan
-- (no document is made here: later tests' outputs hold document ids)
SELECT min(d.id) AS doc FROM ioffice.document d JOIN ioffice.person p ON p.id = d.drafter_id
WHERE d.register_id = :secret AND p.login = 'regress_luan' \gset
SELECT symbol ~ '-M$' AS doc_in_secret_series, confidentiality <> 'normal' AS doc_confidential
FROM ioffice.document WHERE id = :doc;

-- every row of the series, whatever its year
SELECT array_agg(id)::text AS secrets FROM ioffice.register
WHERE agency_id = :ubnd AND direction = 'outgoing' AND code = 'outgoing_secret' \gset

-- what the calling role sees of those registers, path by path (runs as the
-- caller: not SECURITY DEFINER)
CREATE FUNCTION secret_paths(regs bigint[]) RETURNS TABLE (path text, seen bigint)
LANGUAGE sql AS $$
    SELECT 'register rows', count(*) FROM ioffice.register WHERE id = ANY (regs)
    UNION ALL
    SELECT 'register counters', coalesce(sum(next_number - 1), 0)
      FROM ioffice.register WHERE id = ANY (regs)
    UNION ALL
    SELECT 'confidential registers of any agency', count(*) FROM ioffice.register
     WHERE confidential
    UNION ALL
    SELECT 'number_taken', count(*) FROM ioffice.number_taken WHERE register_id = ANY (regs)
    UNION ALL
    SELECT 'outgoing_register', count(*) FROM ioffice.outgoing_register WHERE register_id = ANY (regs)
    UNION ALL
    SELECT 'outgoing_register -M symbols', count(*) FROM ioffice.outgoing_register
     WHERE symbol LIKE '%-M'
    UNION ALL
    SELECT 'outgoing_register confidential', count(*) FROM ioffice.outgoing_register
     WHERE confidential
    UNION ALL
    SELECT 'documents numbered there', count(*) FROM ioffice.document WHERE register_id = ANY (regs)
    UNION ALL
    SELECT 'numbers audit chain', count(*) FROM ioffice.audit
     WHERE chain IN (SELECT 'numbers:' || r FROM unnest(regs) AS r)
$$;
-- what there is, counted as superuser (not subject to row-level security)
CREATE TABLE secret_truth AS SELECT * FROM secret_paths(:'secrets');
GRANT SELECT ON secret_truth TO PUBLIC;
SELECT bool_and(seen > 0) AS every_path_has_rows FROM secret_truth;
-- the same, in words: none, all, or some of what there is
CREATE FUNCTION secret_seen(regs bigint[]) RETURNS TABLE (path text, sees text)
LANGUAGE sql AS $$
    SELECT p.path, CASE WHEN p.seen = 0 THEN 'none' WHEN p.seen = t.seen THEN 'all' ELSE 'some' END
    FROM secret_paths(regs) p JOIN secret_truth t USING (path)
$$;
CREATE FUNCTION try_export(reg bigint) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ioffice.register_export(reg, extract(year FROM now() AT TIME ZONE 'Asia/Ho_Chi_Minh')::int, 'csv');
    RETURN '00000';
EXCEPTION WHEN others THEN
    RETURN SQLSTATE;
END
$$;

CREATE ROLE regress_dba_reg LOGIN IN ROLE ioffice_admin;

-- a reporting tool
SET SESSION AUTHORIZATION regress_report;
SELECT * FROM secret_seen(:'secrets');
SELECT try_export(:secret) AS reader_export;
-- the ordinary register stays the reader's
SELECT count(*) > 0 AS reader_sees_ordinary FROM ioffice.outgoing_register WHERE register_id = :reg;
RESET SESSION AUTHORIZATION;
-- the clerk of another agency
SET SESSION AUTHORIZATION regress_xa_vt;
SELECT * FROM secret_seen(:'secrets');
SELECT try_export(:secret) AS other_clerk_export;
RESET SESSION AUTHORIZATION;
-- a specialist who had nothing to do with it
SET SESSION AUTHORIZATION regress_tuan;
SELECT * FROM secret_seen(:'secrets');
SELECT try_export(:secret) AS specialist_export;
RESET SESSION AUTHORIZATION;
-- its drafter sees the documents he drafted (and their numbers): he holds
-- them; the register itself, its other entries and its counter he does not
SET SESSION AUTHORIZATION regress_luan;
SELECT * FROM secret_seen(:'secrets');
SELECT number IS NOT NULL AS drafter_sees_own_number FROM ioffice.document WHERE id = :doc;
RESET SESSION AUTHORIZATION;
-- a DBA (ioffice_admin) keeps the registers' rows, not their entries
SET SESSION AUTHORIZATION regress_dba_reg;
SELECT * FROM secret_seen(:'secrets');
BEGIN;
UPDATE ioffice.register SET name = name || ' (mật)' WHERE id = :secret RETURNING name LIKE '%(mật)' AS dba_renames;
ROLLBACK;
RESET SESSION AUTHORIZATION;
-- an application, acting for a specialist, then for the clerk
SET SESSION AUTHORIZATION regress_app;
SET ioffice.actor = 'regress_tuan';
SELECT * FROM secret_seen(:'secrets');
SET ioffice.actor = 'regress_thuy';
SELECT * FROM secret_seen(:'secrets');
RESET ioffice.actor;
RESET SESSION AUTHORIZATION;
-- the agency's clerk
SET SESSION AUTHORIZATION regress_thuy;
SELECT * FROM secret_seen(:'secrets');
SELECT try_export(:secret) AS clerk_export;
RESET SESSION AUTHORIZATION;
-- an admin
SET SESSION AUTHORIZATION regress_admin1;
SELECT * FROM secret_seen(:'secrets');
SELECT try_export(:secret) AS admin_export;
RESET SESSION AUTHORIZATION;

-- registers made confidential by a DBA after they numbered ordinary
-- documents (rolled back): their entries leave the reader's sight with them,
-- and the export of a register named by another year's row is refused to the
-- reader when the year's row is confidential
SELECT min(id) AS xa_old, max(id) AS xa_new FROM ioffice.register
WHERE agency_id = :xa AND direction = 'outgoing' AND code = 'outgoing' \gset
SELECT (SELECT year FROM ioffice.register WHERE id = :xa_old) < :year AS old_row_is_older;
CREATE FUNCTION reader_view(reg bigint, xa_new bigint, xa_old bigint,
                            OUT entries bigint, OUT documents bigint, OUT taken bigint,
                            OUT export_by_old_row text)
LANGUAGE sql AS $$
    SELECT (SELECT count(*) FROM ioffice.outgoing_register WHERE register_id IN (reg, xa_new)),
           (SELECT count(*) FROM ioffice.document WHERE register_id IN (reg, xa_new)),
           (SELECT count(*) FROM ioffice.number_taken WHERE register_id IN (reg, xa_new)),
           try_export(xa_old)
$$;
SET SESSION AUTHORIZATION regress_report;
SELECT entries > 0 AS saw_entries, documents > 0 AS saw_documents, taken > 0 AS saw_taken,
       export_by_old_row
FROM reader_view(:reg, :xa_new, :xa_old);
RESET SESSION AUTHORIZATION;
BEGIN;
UPDATE ioffice.register SET confidential = true WHERE id IN (:reg, :xa_new);
SET SESSION AUTHORIZATION regress_report;
SELECT * FROM reader_view(:reg, :xa_new, :xa_old);
RESET SESSION AUTHORIZATION;
-- their clerks still see and export them
SET SESSION AUTHORIZATION regress_xa_vt;
SELECT count(*) > 0 AS its_clerk_still_sees, try_export(:xa_old) AS its_clerk_exports
FROM ioffice.outgoing_register WHERE register_id = :xa_new;
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION regress_thuy;
SELECT count(*) > 0 AS its_clerk_still_sees FROM ioffice.document WHERE register_id = :reg;
RESET SESSION AUTHORIZATION;
-- and the register view marks their entries confidential
SELECT bool_and(confidential) AS all_marked_confidential
FROM ioffice.outgoing_register WHERE register_id IN (:reg, :xa_new);
ROLLBACK;

DROP FUNCTION reader_view(bigint, bigint, bigint);
DROP FUNCTION secret_seen(bigint[]);
DROP FUNCTION secret_paths(bigint[]);
DROP FUNCTION try_export(bigint);
DROP TABLE secret_truth;
DROP ROLE regress_dba_reg;
-- the last test that logs in as these (made by security.sql and registers.sql;
-- the persons stay, regress_admin1 and regress_outsider serve outbox.sql)
DROP ROLE regress_report, regress_app, regress_luan, regress_tuan, regress_thuy, regress_xa_vt;
