-- Secrecy of confidential registers, and rules that survive a restore.
--
-- A confidential register (register.confidential) and its entries are seen by
-- the agency's clerks and the admins only, by every path: the register's own
-- row (RLS on register; ioffice_admin keeps them all), the numbers other
-- systems took (number_taken), the documents numbered there (a reader's
-- policy leaves out the confidential registers), the register views (an
-- entry is confidential when its document or its register is).
CREATE FUNCTION keeps_registers(agency bigint) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM ioffice.person_role r
                   WHERE r.person_id = ioffice.current_person()
                     AND ((r.role = 'clerk' AND r.unit_id = agency) OR r.role = 'admin'))
$$;

ALTER TABLE register ENABLE ROW LEVEL SECURITY;
CREATE POLICY visible ON register FOR SELECT
    USING (NOT confidential OR ioffice.keeps_registers(agency_id));
CREATE POLICY dba ON register TO ioffice_admin USING (true) WITH CHECK (true);

ALTER POLICY visible ON document
    USING ((confidentiality = 'normal' AND pg_catalog.pg_has_role('ioffice_reader', 'USAGE')
            AND (register_id IS NULL
                 OR register_id IN (SELECT r.id FROM ioffice.register r WHERE NOT r.confidential)))
           OR ioffice.can_see(id));
ALTER POLICY visible ON number_taken
    USING (register_id IN (
        SELECT r.id FROM ioffice.register r
        WHERE (NOT r.confidential AND pg_catalog.pg_has_role('ioffice_reader', 'USAGE'))
           OR ioffice.keeps_registers(r.agency_id)));

CREATE OR REPLACE VIEW outgoing_register WITH (security_invoker = true) AS
SELECT d.agency_id, d.register_id, r.code AS register_code, d.register_year AS year,
       d.number, d.symbol, d.issued_on, d.doc_type,
       t.name || ' ' || d.abstract AS type_and_abstract,
       s.full_name AS signer,
       (SELECT string_agg(coalesce(e->>'name', e->>'place'), '; ')
          FROM jsonb_array_elements(d.recipients) AS e) AS recipients,
       du.name AS archive_unit,
       d.copies,
       (d.issued_at AT TIME ZONE ioffice.timezone())::date AS sent_on,
       NULL::text AS receipt,
       d.comment AS note,
       r.confidential OR d.confidentiality <> 'normal' AS confidential,
       d.identifier,
       d.id AS document_id
FROM ioffice.document d
JOIN ioffice.register r ON r.id = d.register_id
JOIN ioffice.doc_type t ON t.code = d.doc_type
JOIN ioffice.unit du ON du.id = d.drafting_unit_id
LEFT JOIN ioffice.person s ON s.id = d.signer_id
WHERE d.direction = 'outgoing' AND d.number IS NOT NULL
UNION ALL
SELECT r.agency_id, n.register_id, r.code, r.year,
       n.number, n.symbol, n.taken_on, n.doc_type,
       t.name, NULL, NULL, du.name, NULL, NULL, NULL,
       'số lấy từ hệ thống khác' , r.confidential, NULL, NULL
FROM ioffice.number_taken n
JOIN ioffice.register r ON r.id = n.register_id
JOIN ioffice.doc_type t ON t.code = n.doc_type
LEFT JOIN ioffice.unit du ON du.id = n.drafting_unit_id
WHERE n.document_id IS NULL;

CREATE OR REPLACE VIEW incoming_register WITH (security_invoker = true) AS
SELECT d.agency_id, d.register_id, r.code AS register_code, d.register_year AS year,
       (d.received_at AT TIME ZONE ioffice.timezone())::date AS received_on,
       d.number,
       coalesce(sa.name, d.sender_name) AS sender,
       coalesce(d.sender_symbol, src.symbol) AS sender_symbol,
       coalesce(d.sender_date, src.issued_on) AS sender_date,
       t.name || ' ' || d.abstract AS type_and_abstract,
       (SELECT string_agg(p.full_name || CASE tk.kind WHEN 'main' THEN ' (chủ trì)' ELSE ' (phối hợp)' END,
                          '; ' ORDER BY tk.kind DESC, tk.step)
          FROM ioffice.task tk JOIN ioffice.person p ON p.id = tk.receiver_id
         WHERE tk.document_id = d.id AND tk.action = 'assign') AS handlers,
       (SELECT (min(tk.received_at) AT TIME ZONE ioffice.timezone())::date
          FROM ioffice.task tk WHERE tk.document_id = d.id AND tk.action = 'assign') AS assigned_on,
       NULL::text AS receipt,
       d.comment AS note,
       d.doc_type,
       r.confidential OR d.confidentiality <> 'normal' AS confidential,
       d.state,
       d.id AS document_id,
       d.source_document_id
FROM ioffice.document d
JOIN ioffice.register r ON r.id = d.register_id
JOIN ioffice.doc_type t ON t.code = d.doc_type
LEFT JOIN ioffice.unit sa ON sa.id = d.sender_agency_id
LEFT JOIN ioffice.document src ON src.id = d.source_document_id
WHERE d.direction = 'incoming' AND d.number IS NOT NULL;

-- The commit-time check of the rules' shape is skipped while a dump is
-- loaded (triggers/rule_triggers.c); workflow_check() reports it afterwards,
-- and act() checks it when it loads the rules.
CREATE FUNCTION workflow_check(name text DEFAULT NULL)
    RETURNS TABLE (workflow text, problem text)
    AS 'MODULE_PATHNAME', 'ioffice_workflow_check' LANGUAGE C STABLE;
COMMENT ON FUNCTION workflow_check(text) IS
  'Every problem of the shape of the workflows (or of one): a state with no way out to a final state, a final state out of reach, a missing initial or final state, a transition joining an unknown state; no rows means sound';
