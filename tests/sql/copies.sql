-- Electronic copies (issue 12 item 4; Decree 30 art. 25-27): a clerk of the
-- agency copies an issued or registered document; the copies of an agency
-- share one yearly series ("đánh chung cho các loại bản sao", appendix I
-- part II.1c), symbol number/kind-agency; the copy carries the original's
-- files and the organisation's signature is queued on each.
SET client_min_messages = warning;
\set VERBOSITY terse
SELECT ioffice.add_agency('UBND xã Thử Bản Sao', 'UBND', '000.00.46.H41') AS cp \gset
SELECT ioffice.add_department(:cp, 'Văn phòng Bản Sao', 'VP') AS cp_vp \gset
SELECT ioffice.add_agency('UBND xã Khác Bản Sao', 'UBNDK', '000.00.47.H41') AS cp2 \gset
SELECT ioffice.add_person('cp_spec', 'Chuyên viên Sao', 'Chuyên viên', :cp, '{specialist}') > 0
   AND ioffice.add_person('cp_lead', 'Chủ tịch Sao', 'Chủ tịch', :cp, '{leader}') > 0
   AND ioffice.add_person('cp_clerk', 'Văn thư Sao', 'Văn thư', :cp, '{clerk}') > 0
   AND ioffice.add_person('cp_other', 'Văn thư Khác', 'Văn thư', :cp2, '{clerk}') > 0 AS people_added;
CREATE FUNCTION public.regress_copy_state(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN others THEN
    RETURN SQLSTATE;
END
$$;

-- a decision issued, and a draft not issued yet
SET ioffice.actor = 'cp_spec';
SELECT ioffice.create_outgoing('QĐ', 'V/v quy chế bản sao') AS doc \gset
SELECT ioffice.attach(:doc, 'qd.pdf', content) IS NOT NULL AS attached FROM pdf;
SELECT ioffice.create_outgoing('CV', 'V/v dự thảo chưa ban hành') AS draft \gset
SELECT ioffice.attach(:draft, 'cv.pdf', content) IS NOT NULL AS attached FROM pdf;
SELECT ioffice.act(:doc, 'submit', 'cp_lead');
SET ioffice.actor = 'cp_lead';
SELECT ioffice.act(:doc, 'approve', 'cp_clerk');
SET ioffice.actor = 'cp_clerk';
SELECT ioffice.act(:doc, 'issue');

-- who may not: the specialist (42501), a clerk of another agency (42704);
-- what may not: a draft (55000), an unknown kind, a trích sao without its
-- excerpt, an excerpt on a sao y (22023)
SET ioffice.actor = 'cp_spec';
SELECT regress_copy_state(format('SELECT ioffice.copy_document(%s, %L)', :doc, 'SY')) AS specialist;
SET ioffice.actor = 'cp_other';
SELECT regress_copy_state(format('SELECT ioffice.copy_document(%s, %L)', :doc, 'SY')) AS other_agency;
SET ioffice.actor = 'cp_clerk';
SELECT regress_copy_state(format('SELECT ioffice.copy_document(%s, %L)', :draft, 'SY')) AS draft,
       regress_copy_state(format('SELECT ioffice.copy_document(%s, %L)', :doc, 'BS')) AS unknown_kind,
       regress_copy_state(format('SELECT ioffice.copy_document(%s, %L)', :doc, 'TrS')) AS no_excerpt,
       regress_copy_state(format('SELECT ioffice.copy_document(%s, %L, %L)', :doc, 'TrS', '{"excerpt": " "}')) AS blank_excerpt,
       regress_copy_state(format('SELECT ioffice.copy_document(%s, %L, %L)', :doc, 'SY', '{"excerpt": "Điều 1"}')) AS excerpt_on_sy,
       regress_copy_state('SELECT ioffice.copy_document(-1, ''SY'')') AS unknown_doc;
SELECT regress_error(format('SELECT ioffice.copy_document(%s, %L)', :doc, 'xx'), :doc);

-- the clerk copies: one series for the three kinds, from 01
SELECT ioffice.copy_document(:doc, 'SY') AS sy \gset
SELECT ioffice.copy_document(:doc, 'SL') AS sl \gset
SELECT ioffice.copy_document(:doc, 'TrS', '{"excerpt": "Điều 1 và Điều 2"}') AS trs \gset
-- an incoming document the agency registered is copied too
SELECT ioffice.register_incoming('CV', 'Văn bản đến để sao', 'Sở Nội vụ', '12/SNV-VP', '2020-01-02') AS inc \gset
SELECT ioffice.attach(:inc, 'den.pdf', content) IS NOT NULL AS attached FROM pdf;
SELECT ioffice.copy_document(:inc, 'SY') AS sy2 \gset
RESET ioffice.actor;

SELECT c.number, c.symbol, c.copy_kind, c.copy_of = o.id AS copies_original,
       c.direction, c.state, c.agency_id = :cp AS same_agency, c.doc_type,
       c.abstract, c.comment, r.code AS register, r.year = c.register_year AS year_series,
       c.issued_on IS NOT NULL AS dated
FROM ioffice.document c
JOIN ioffice.document o ON o.id = c.copy_of
JOIN ioffice.register r ON r.id = c.register_id
WHERE c.id IN (:sy, :sl, :trs, :sy2) ORDER BY c.number;

-- one register row of copies for the agency and year, its counter at 5
SELECT count(*) AS registers, min(next_number) AS next_number, bool_and(doc_types = '{}') AS no_types
FROM ioffice.register WHERE agency_id = :cp AND code = 'BANSAO';

-- the copy's files: the original's bytes; the organisation's signature queued
SELECT c.id = :sy AS sy, f.name, f.sha256 = o.sha256 AS same_bytes,
       s.kind, s.status, s.options -> 'copy' ->> 'label' AS label,
       s.options -> 'copy' ->> 'agency' AS agency
FROM ioffice.document c
JOIN ioffice.file f ON f.document_id = c.id
JOIN ioffice.file o ON o.document_id = c.copy_of AND o.superseded_at IS NULL AND o.removed_at IS NULL
JOIN ioffice.signature s ON s.file_id = f.id
WHERE c.id IN (:sy, :trs) ORDER BY c.id;

-- the copy is in the outgoing register, and the audit trail has both acts
SELECT symbol FROM ioffice.outgoing_register WHERE agency_id = :cp ORDER BY number, symbol;
SELECT entity_id = :sy AS on_copy, action, state_after, detail ->> 'kind' AS kind,
       (detail ->> 'copy_of')::bigint = :doc AS of_original
FROM ioffice.audit WHERE entity = 'document' AND entity_id IN (:sy, :doc) AND action IN ('copy', 'copied')
ORDER BY id;
SELECT count(*) AS problems FROM ioffice.audit_verify('document', :sy);

-- a copy of a copy (sao lục from the sao y) is numbered on
SET ioffice.actor = 'cp_clerk';
SELECT ioffice.copy_document(:sy, 'SL') AS sl2 \gset
RESET ioffice.actor;
SELECT symbol, copy_of = :sy AS of_the_copy FROM ioffice.document WHERE id = :sl2;

DROP FUNCTION public.regress_copy_state(text);
