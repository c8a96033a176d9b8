-- The shapes of the rows of a database, one line each, distinct and sorted:
-- what tests/bench/scale compares between the generated province and a
-- sample written through the API (scale_sample.sql).  A shape is what a row
-- looks like without its values: which columns are empty, how it stands to
-- the rows it points to (a task's sender is who processed the step before;
-- a symbol is the one build_symbol makes; an identifier is the agency's
-- code, the issue date and the symbol), its workflow state and action.
-- Every shape of the province must be one the API writes.
-- psql -v mod=M: only the documents whose id is a multiple of M, and their
-- tasks, files and signatures, and likewise the dossiers (a province has
-- too many to look at all).
\pset format unaligned
\pset tuples_only on
SET client_min_messages = warning;
-- the files of the documents looked at, read once (file has no index on
-- document_id for all versions: a lookup per row read the whole table)
WITH fs AS MATERIALIZED (
    SELECT f.document_id, array_agg(f.id) AS ids FROM ioffice.file f
     WHERE f.document_id % :mod = 0 GROUP BY f.document_id
), doc AS (
    SELECT d.*, r.agency_id AS r_agency, r.direction AS r_direction, r.year AS r_year,
           r.confidential AS r_confidential, u.code AS a_code,
           EXISTS (SELECT 1 FROM ioffice.person_role x WHERE x.person_id = d.drafter_id AND x.role = 'clerk'
                      AND x.unit_id = d.agency_id) AS by_clerk,
           EXISTS (SELECT 1 FROM ioffice.person p WHERE p.id = d.drafter_id AND p.unit_id = d.drafting_unit_id)
               AS drafter_in_unit
      FROM ioffice.document d JOIN ioffice.unit u ON u.id = d.agency_id
      LEFT JOIN ioffice.register r ON r.id = d.register_id
)
SELECT format('document %s/%s state=%s nulls=%s recipients=%s unit=%s drafter=%s register=%s number=%s symbol=%s identifier=%s source=%s files=%s tasks_from_1=%s',
              d.direction, d.workflow, d.state,
              concat_ws(',', CASE WHEN d.drafter_id IS NULL THEN 'drafter' END,
                        CASE WHEN d.register_id IS NULL THEN 'register' END,
                        CASE WHEN d.register_year IS NULL THEN 'register_year' END,
                        CASE WHEN d.number IS NULL THEN 'number' END,
                        CASE WHEN d.symbol IS NULL THEN 'symbol' END,
                        CASE WHEN d.issued_on IS NULL THEN 'issued_on' END,
                        CASE WHEN d.issued_at IS NULL THEN 'issued_at' END,
                        CASE WHEN d.identifier IS NULL THEN 'identifier' END,
                        CASE WHEN d.sender_agency_id IS NULL THEN 'sender_agency' END,
                        CASE WHEN d.sender_name IS NULL THEN 'sender_name' END,
                        CASE WHEN d.sender_symbol IS NULL THEN 'sender_symbol' END,
                        CASE WHEN d.sender_date IS NULL THEN 'sender_date' END,
                        CASE WHEN d.source_document_id IS NULL THEN 'source' END,
                        CASE WHEN d.received_at IS NULL THEN 'received_at' END,
                        CASE WHEN d.signer_id IS NULL THEN 'signer' END,
                        CASE WHEN d.flash_at IS NULL THEN 'flash_at' END,
                        CASE WHEN d.field IS NULL THEN 'field' END,
                        CASE WHEN d.page_count IS NULL THEN 'page_count' END,
                        CASE WHEN d.copies IS NULL THEN 'copies' END,
                        CASE WHEN d.comment IS NULL THEN 'comment' END),
              (SELECT string_agg(DISTINCT (SELECT string_agg(k, '+' ORDER BY k) FROM jsonb_object_keys(e) k), ' ')
                 FROM jsonb_array_elements(d.recipients) e),
              CASE WHEN d.drafting_unit_id = d.agency_id THEN 'agency' ELSE 'department' END,
              CASE WHEN d.drafter_id IS NULL THEN '-' WHEN d.by_clerk THEN 'clerk'
                   WHEN d.drafter_in_unit THEN 'of_unit' ELSE 'other' END,
              CASE WHEN d.register_id IS NULL THEN '-'
                   ELSE concat_ws(',', d.r_agency = d.agency_id, d.r_direction = d.direction,
                                  d.r_year = d.register_year, d.r_confidential) END,
              CASE WHEN d.number IS NULL THEN '-'
                   WHEN d.number <= (SELECT r.next_number - 1 FROM ioffice.register r WHERE r.id = d.register_id)
                   THEN 'below_next' ELSE 'past_next' END,
              CASE WHEN d.symbol IS NULL THEN '-'
                   WHEN d.symbol = ioffice.build_symbol(d.number, d.doc_type, d.agency_id, d.drafting_unit_id)
                   THEN 'built'
                   WHEN d.symbol = ioffice.build_symbol(d.number, d.doc_type, d.agency_id, d.drafting_unit_id)
                                   || '-' || (SELECT r.symbol_suffix FROM ioffice.register r WHERE r.id = d.register_id)
                   THEN 'built+suffix' ELSE 'other' END,
              CASE WHEN d.identifier IS NULL THEN '-'
                   WHEN d.identifier = d.a_code || ',' || to_char(d.issued_on, 'YYYY/MM/DD') || ',' || d.symbol
                        AND d.issued_on = (d.issued_at AT TIME ZONE ioffice.timezone())::date
                   THEN 'code,date,symbol' ELSE 'other' END,
              CASE WHEN d.source_document_id IS NULL THEN '-'
                   ELSE (SELECT concat_ws(',', s.state, s.agency_id = d.sender_agency_id,
                                          d.received_at = s.issued_at, s.doc_type = d.doc_type,
                                          s.recipients @> jsonb_build_array(jsonb_build_object('agency', d.agency_id)))
                           FROM ioffice.document s WHERE s.id = d.source_document_id) END,
              coalesce(cardinality(fs.ids), 0),
              (SELECT coalesce(min(t.step), 1) = 1 AND coalesce(max(t.step), 0) = count(*)
                 FROM ioffice.task t WHERE t.document_id = d.id))
  FROM doc d LEFT JOIN fs ON fs.document_id = d.id WHERE d.id % :mod = 0
UNION
SELECT format('task %s/%s %s kind=%s status=%s closed_by=%s nulls=%s processed_by=%s sender=%s options=%s files=%s times=%s',
              d.direction, d.state, t.action, t.kind, t.status, coalesce(t.closed_by_action, '-'),
              concat_ws(',', CASE WHEN t.sender_for IS NULL THEN 'sender_for' END,
                        CASE WHEN t.request IS NULL THEN 'request' END,
                        CASE WHEN t.deadline IS NULL THEN 'deadline' END,
                        CASE WHEN t.processing_note IS NULL THEN 'processing_note' END,
                        CASE WHEN t.processed_at IS NULL THEN 'processed_at' END,
                        CASE WHEN t.processed_by IS NULL THEN 'processed_by' END),
              CASE WHEN t.processed_by IS NULL THEN '-' WHEN t.processed_by = t.receiver_id THEN 'receiver'
                   ELSE 'delegate' END,
              CASE WHEN p.id IS NULL THEN 'first'
                   WHEN t.kind = 'cooperate'
                   THEN CASE WHEN p.action = 'assign' AND p.sender_id = t.sender_id THEN 'with_main_assign'
                             ELSE 'other' END
                   WHEN p.processed_by = t.sender_id AND p.processed_by = p.receiver_id
                        AND t.sender_for IS NULL THEN 'previous_holder'
                   WHEN p.processed_by = t.sender_id AND t.sender_for = p.receiver_id THEN 'delegate_for_holder'
                   ELSE 'other' END,
              (SELECT coalesce(string_agg(k, '+' ORDER BY k), '-') FROM jsonb_object_keys(t.options) k),
              CASE WHEN cardinality(t.file_ids) = 0 THEN 'none'
                   WHEN t.file_ids <@ fs.ids
                   THEN 'of_document' ELSE 'other' END,
              CASE WHEN t.processed_at IS NULL OR t.processed_at >= t.received_at THEN 'ordered' ELSE 'disordered' END)
  FROM ioffice.task t JOIN ioffice.document d ON d.id = t.document_id
  LEFT JOIN fs ON fs.document_id = t.document_id
  LEFT JOIN LATERAL (SELECT q.* FROM ioffice.task q
                      WHERE q.document_id = t.document_id AND q.kind = 'main' AND q.step < t.step
                      ORDER BY q.step DESC LIMIT 1) p ON true
 WHERE t.document_id % :mod = 0
UNION
SELECT format('file %s/%s kind=%s size=%s hash=%s uploaded_by=%s nulls=%s',
              d.direction, CASE WHEN d.source_document_id IS NULL THEN 'own' ELSE 'delivered' END, f.kind,
              f.size = length(f.content), f.sha256 = sha256(f.content),
              CASE WHEN f.uploaded_by = d.drafter_id THEN 'drafter'
                   WHEN d.source_document_id IS NOT NULL
                        AND f.uploaded_by = (SELECT t.receiver_id FROM ioffice.task t
                                              WHERE t.document_id = d.source_document_id
                                                AND t.closed_by_action = 'issue')
                   THEN 'issuing_clerk' ELSE 'other' END,
              concat_ws(',', CASE WHEN f.replaces_id IS NULL THEN 'replaces' END,
                        CASE WHEN f.superseded_at IS NULL THEN 'superseded_at' END,
                        CASE WHEN f.removed_at IS NULL THEN 'removed_at' END))
  FROM ioffice.file f JOIN ioffice.document d ON d.id = f.document_id
 WHERE f.document_id % :mod = 0
UNION
-- a signature the worker made has its time and CMS (and its certificate,
-- which neither the sample nor the generator has: no worker runs)
SELECT format('signature %s %s on=%s signer=%s file=%s nulls=%s',
              s.kind, s.status, d.state,
              CASE WHEN s.kind = 'organisation'
                        AND s.signer_id = (SELECT t.receiver_id FROM ioffice.task t
                                            WHERE t.document_id = d.id AND t.action = 'approve'
                                              AND t.status = CASE WHEN d.state = 'issued' THEN 'done' ELSE 'open' END)
                   THEN 'issuing_clerk'
                   WHEN s.kind = 'personal'
                        AND s.signer_id IN (SELECT t.receiver_id FROM ioffice.task t WHERE t.document_id = d.id)
                   THEN 'a_holder' ELSE 'other' END,
              coalesce(s.file_id = ANY (fs.ids), false),
              concat_ws(',', CASE WHEN s.signed_at IS NULL THEN 'signed_at' END,
                        CASE WHEN s.cms IS NULL THEN 'cms' END,
                        CASE WHEN s.certificate_id IS NULL THEN 'certificate' END,
                        CASE WHEN s.reason IS NULL THEN 'reason' END))
  FROM ioffice.signature s JOIN ioffice.document d ON d.id = s.document_id
  LEFT JOIN fs ON fs.document_id = s.document_id
 WHERE s.document_id % :mod = 0
UNION
-- a dossier: its state, which columns are empty, its code made of its
-- agency's code and the day of its reception, its deadline the statutory
-- working days after it, received by a one-stop officer of its agency
SELECT format('dossier %s nulls=%s code=%s deadline=%s officer=%s tasks_from_1=%s open_tasks=%s',
              x.state,
              concat_ws(',', CASE WHEN x.result_delivery IS NULL THEN 'result_delivery' END,
                        CASE WHEN x.paused_at IS NULL THEN 'paused_at' END,
                        CASE WHEN x.abstract IS NULL THEN 'abstract' END,
                        CASE WHEN x.result_document_id IS NULL THEN 'result_document' END,
                        CASE WHEN x.finished_at IS NULL THEN 'finished_at' END),
              x.code ~ ('^' || replace(u.code, '.', '\.') || '-'
                        || to_char(x.received_at AT TIME ZONE ioffice.timezone(), 'YYMMDD') || '-[0-9]{4}$')
                AND x.unit_code = u.code,
              x.deadline = ioffice.add_working_days(x.received_at, x.statutory_days + x.paused_days),
              EXISTS (SELECT 1 FROM ioffice.person_role r WHERE r.person_id = x.received_by
                         AND r.role = 'one_stop' AND r.unit_id = x.agency_id),
              (SELECT min(t.step) = 1 AND max(t.step) = count(*) FROM ioffice.dossier_task t
                WHERE t.dossier_id = x.id),
              (SELECT count(*) FROM ioffice.dossier_task t WHERE t.dossier_id = x.id AND t.status = 'open'))
  FROM ioffice.dossier x JOIN ioffice.unit u ON u.id = x.agency_id
 WHERE x.id % :mod = 0
UNION
SELECT format('dossier_task %s %s status=%s closed_by=%s nulls=%s processed_by=%s sender=%s options=%s files=%s times=%s',
              x.state, t.action, t.status, coalesce(t.closed_by_action, '-'),
              concat_ws(',', CASE WHEN t.sender_for IS NULL THEN 'sender_for' END,
                        CASE WHEN t.request IS NULL THEN 'request' END,
                        CASE WHEN t.deadline IS NULL THEN 'deadline' END,
                        CASE WHEN t.processing_note IS NULL THEN 'processing_note' END,
                        CASE WHEN t.processed_at IS NULL THEN 'processed_at' END,
                        CASE WHEN t.processed_by IS NULL THEN 'processed_by' END),
              CASE WHEN t.processed_by IS NULL THEN '-' WHEN t.processed_by = t.receiver_id THEN 'receiver'
                   ELSE 'delegate' END,
              CASE WHEN p.id IS NULL THEN CASE WHEN t.sender_id = t.receiver_id THEN 'first_self' ELSE 'first' END
                   WHEN p.processed_by = t.sender_id AND p.processed_by = p.receiver_id THEN 'previous_holder'
                   ELSE 'other' END,
              (SELECT coalesce(string_agg(k, '+' ORDER BY k), '-') FROM jsonb_object_keys(t.options) k),
              cardinality(t.file_ids),
              CASE WHEN (t.processed_at IS NULL OR t.processed_at >= t.received_at)
                        AND (p.id IS NULL OR t.received_at >= p.processed_at) THEN 'ordered' ELSE 'disordered' END)
  FROM ioffice.dossier_task t JOIN ioffice.dossier x ON x.id = t.dossier_id
  LEFT JOIN ioffice.dossier_task p ON p.dossier_id = t.dossier_id AND p.step = t.step - 1
 WHERE t.dossier_id % :mod = 0
UNION
SELECT format('register %s/%s confidential=%s suffix=%s', r.direction, r.code, r.confidential,
              coalesce(r.symbol_suffix, '-'))
  FROM ioffice.register r
UNION
SELECT format('person_role %s on=%s', x.role, u.kind)
  FROM ioffice.person_role x JOIN ioffice.unit u ON u.id = x.unit_id
UNION
SELECT format('unit %s code=%s agency=%s', u.kind, u.code IS NOT NULL,
              CASE WHEN u.agency_id = u.id THEN 'itself' WHEN u.agency_id = u.parent_id THEN 'parent' ELSE 'other' END)
  FROM ioffice.unit u
ORDER BY 1;
