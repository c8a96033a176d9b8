-- A province for tests/bench/scale, written directly in the tables in the
-- shapes the API writes (checked against an API-made sample by
-- scale_shapes.sql): agencies with their departments, clerks, leaders and
-- specialists; three years of outgoing documents (drafted, submitted,
-- returned and submitted again, forwarded to the agency's leader,
-- sometimes approved by a deputy in the leader's name, approved, issued and
-- numbered in the year's register) and incoming ones (delivered by an
-- agency of the province when it issued, or registered from paper; numbered
-- in the incoming register, submitted, assigned with a deadline to a lead
-- handler and cooperators, completed); their files, their tasks, their
-- signatures; delegations in force.  Documents of the last 30 days are
-- still on their way, older ones are finished.  Dossiers of administrative
-- procedures, one for every five documents (see below).  No audit records
-- (the benchmark reads none).
--
-- psql -v docs=N -v agencies=A -v depts=D -v specialists=S -v seed=X
--   N documents (60% outgoing, 40% incoming); A agencies of D departments,
--   each with a head and S specialists; every agency has 2 clerks and 2
--   leaders: A * (4 + D * (1 + S)) people.
-- Person ids are computed, not looked up: agency a's block of P people
-- starts at (a - 1) * P; in it 1-2 clerks, 3-4 leaders, then per department
-- its head and its specialists.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
SELECT setseed(:seed) \gset
SET session_replication_role = replica;   -- no triggers, no foreign-key checks: bulk load
SET scale.gen_agencies = :agencies;
SET scale.gen_depts = :depts;
SET scale.gen_specialists = :specialists;

CREATE TEMP TABLE gen AS
SELECT :agencies::int AS a_n, :depts::int AS d_n, :specialists::int AS s_n,
       4 + :depts::int * (1 + :specialists::int) AS p_n,
       :docs::bigint AS docs,
       (make_date(extract(year FROM now() AT TIME ZONE ioffice.timezone())::int - 2, 1, 1)
          AT TIME ZONE ioffice.timezone()) AS t0,
       now() - interval '1 hour' AS t1;

-- ---------------------------------------------------------------------------
-- Directory
-- ---------------------------------------------------------------------------
INSERT INTO ioffice.unit (id, parent_id, kind, code, name, abbr, agency_id)
SELECT a, NULL, 'agency',
       format('000.%s.%s.H41', lpad(((a - 1) / 100)::text, 2, '0'), lpad(((a - 1) % 100)::text, 2, '0')),
       'Sở số ' || a, 'S' || a, a
  FROM gen, generate_series(1, a_n) a;
INSERT INTO ioffice.unit (id, parent_id, kind, code, name, abbr, agency_id)
SELECT a_n + (a - 1) * d_n + k, a, 'department', NULL, 'Phòng ' || k || ' Sở số ' || a, 'P' || k, a
  FROM gen, generate_series(1, a_n) a, generate_series(1, d_n) k;

CREATE TEMP TABLE gen_person AS
SELECT (a - 1) * p_n + i AS id, a,
       CASE WHEN i <= 2 THEN 'clerk' WHEN i <= 4 THEN 'leader'
            WHEN (i - 5) % (1 + s_n) = 0 THEN 'head' ELSE 'specialist' END AS kind,
       CASE WHEN i <= 4 THEN a ELSE a_n + (a - 1) * d_n + 1 + (i - 5) / (1 + s_n) END AS unit
  FROM gen, generate_series(1, a_n) a, generate_series(1, (SELECT p_n FROM gen)) i;
INSERT INTO ioffice.person (id, login, full_name, "position", unit_id)
SELECT id, CASE kind WHEN 'clerk' THEN 'vt' WHEN 'leader' THEN 'ld' WHEN 'head' THEN 'tp' ELSE 'cv' END
           || id,
       CASE kind WHEN 'clerk' THEN 'Văn thư ' WHEN 'leader' THEN 'Lãnh đạo ' WHEN 'head' THEN 'Trưởng phòng '
                 ELSE 'Chuyên viên ' END || id,
       CASE kind WHEN 'clerk' THEN 'Văn thư' WHEN 'leader' THEN 'Giám đốc' WHEN 'head' THEN 'Trưởng phòng'
                 ELSE 'Chuyên viên' END,
       unit
  FROM gen_person;
INSERT INTO ioffice.person_role (person_id, role, unit_id)
SELECT id, CASE kind WHEN 'head' THEN 'leader' ELSE kind END, unit FROM gen_person;
-- one admin, in the first agency
INSERT INTO ioffice.person (id, login, full_name, "position", unit_id)
SELECT a_n * p_n + 1, 'quantri', 'Quản trị', 'Quản trị hệ thống', 1 FROM gen;
INSERT INTO ioffice.person_role (person_id, role, unit_id) SELECT a_n * p_n + 1, 'admin', 1 FROM gen;

-- each agency's registers, as add_agency makes them, for each of the years
INSERT INTO ioffice.register (agency_id, direction, code, name, doc_types, confidential,
                              symbol_suffix, year)
SELECT a, r.direction, r.code, r.name, NULL, r.confidential, r.suffix, y
  FROM gen, generate_series(1, a_n) a,
       generate_series(extract(year FROM t0 AT TIME ZONE ioffice.timezone())::int,
                       extract(year FROM t1 AT TIME ZONE ioffice.timezone())::int) y,
       (VALUES (1, 'outgoing', 'outgoing', 'Sổ văn bản đi', false, NULL),
               (2, 'outgoing', 'outgoing_secret', 'Sổ văn bản đi mật', true, 'M'),
               (3, 'incoming', 'incoming', 'Sổ văn bản đến', false, NULL))
         AS r(o, direction, code, name, confidential, suffix)
 ORDER BY a, y, r.o;

-- delegations: in 5% of the agencies the first leader is away and lets the
-- second approve in their name now; in 5% an expired one
INSERT INTO ioffice.delegation (from_person, to_person, valid_from, valid_until, created_at)
SELECT (a - 1) * p_n + 3, (a - 1) * p_n + 4, now() - interval '2 days', now() + interval '5 days',
       now() - interval '2 days'
  FROM gen, generate_series(1, a_n) a WHERE a % 20 = 1;
INSERT INTO ioffice.delegation (from_person, to_person, valid_from, valid_until, created_at)
SELECT (a - 1) * p_n + 3, (a - 1) * p_n + 4, now() - interval '200 days', now() - interval '190 days',
       now() - interval '200 days'
  FROM gen, generate_series(1, a_n) a WHERE a % 20 = 2;

-- ---------------------------------------------------------------------------
-- Outgoing documents: who, when, how far
-- ---------------------------------------------------------------------------
CREATE TEMP TABLE og AS
SELECT g, a, k, j, c,
       CASE WHEN c < t1 - interval '30 days'
            THEN CASE WHEN r < 0.97 THEN 'issued' ELSE 'completed' END
            ELSE CASE WHEN r < 0.15 THEN 'draft' WHEN r < 0.50 THEN 'reviewing'
                      WHEN r < 0.60 THEN 'returned' WHEN r < 0.70 THEN 'awaiting_issue'
                      ELSE 'issued' END END AS state,
       random() < 0.15 AS ret, random() < 0.40 AS fwd, random() < 0.01 AS by_deputy,
       random() < 0.02 AS secret, random() < 0.5 AS leader_signed, random() < 0.5 AS delivers,
       (ARRAY['CV', 'CV', 'CV', 'CV', 'QĐ', 'QĐ', 'KH', 'TB', 'BC', 'TTr', 'GM'])[1 + floor(random() * 11)::int]
         AS doc_type,
       (ARRAY['normal', 'normal', 'normal', 'normal', 'normal', 'normal', 'urgent', 'urgent', 'very_urgent',
              'flash'])[1 + floor(random() * 10)::int] AS urgency,
       least(interval '1 day', (t1 - c) / 8) AS gap
  FROM (SELECT g, 1 + floor(random() * a_n)::int AS a, floor(random() * d_n)::int AS k,
               floor(random() * s_n)::int AS j,
               t0 + (t1 - t0) * ((g - random()) / ceil(docs * 0.6)) AS c, random() AS r, t1
          FROM gen, generate_series(1, ceil(docs * 0.6)::bigint) g) x;
ALTER TABLE og ADD drafter bigint, ADD head bigint, ADD leader bigint, ADD deputy bigint,
               ADD clerk bigint, ADD unit bigint, ADD id bigint;
UPDATE og SET unit = gen.a_n + (a - 1) * gen.d_n + 1 + k,
              drafter = (a - 1) * p_n + 5 + k * (1 + s_n) + 1 + j,
              head = (a - 1) * p_n + 5 + k * (1 + s_n),
              leader = (a - 1) * p_n + 3, deputy = (a - 1) * p_n + 4,
              clerk = (a - 1) * p_n + 1 + (g % 2)
  FROM gen;

-- the path of each document: actions, senders, receivers of its tasks in
-- order (submit; return and submit again; forward to the agency's leader;
-- approve to the clerk), and how many of them it has taken
ALTER TABLE og ADD actions text[], ADD senders bigint[], ADD receivers bigint[], ADD n int,
               ADD holder bigint;
UPDATE og SET holder = CASE WHEN fwd THEN leader ELSE head END,
              ret = ret OR state = 'returned';
UPDATE og SET
    actions = ARRAY['submit'] || CASE WHEN ret THEN ARRAY['return', 'submit'] ELSE '{}' END
              || CASE WHEN fwd THEN ARRAY['forward'] ELSE '{}' END || ARRAY['approve'],
    senders = ARRAY[drafter] || CASE WHEN ret THEN ARRAY[head, drafter] ELSE '{}' END
              || CASE WHEN fwd THEN ARRAY[head] ELSE '{}' END
              || CASE WHEN by_deputy AND fwd THEN deputy ELSE holder END,
    receivers = ARRAY[head] || CASE WHEN ret THEN ARRAY[drafter, head] ELSE '{}' END
              || CASE WHEN fwd THEN ARRAY[leader] ELSE '{}' END || ARRAY[clerk];
UPDATE og SET n = CASE state WHEN 'draft' THEN 0 WHEN 'returned' THEN 2
                             WHEN 'reviewing' THEN cardinality(actions) - 1
                             WHEN 'completed' THEN cardinality(actions) - 1
                             ELSE cardinality(actions) END;

-- ---------------------------------------------------------------------------
-- Incoming documents: delivered by the province's agencies when they issued
-- (up to half of them), the others registered from paper
-- ---------------------------------------------------------------------------
CREATE TEMP TABLE ig AS
SELECT row_number() OVER (ORDER BY src) AS g, *
  FROM (SELECT o.g AS src, 1 + (o.a + floor(random() * (a_n - 1))::int) % a_n AS a,
               o.c + o.gap * (o.n + 1) AS c, true AS delivered
          FROM og o, gen
         WHERE o.state = 'issued' AND o.delivers AND NOT o.secret AND a_n > 1
         ORDER BY random() LIMIT (SELECT ceil(docs * 0.2) FROM gen)) x;
INSERT INTO ig (g, src, a, c, delivered)
SELECT (SELECT count(*) FROM ig) + g, NULL, 1 + floor(random() * a_n)::int,
       t0 + (t1 - t0) * ((g - random()) / nb), false
  FROM gen, (SELECT ceil(docs * 0.4) - (SELECT count(*) FROM ig) AS nb FROM gen) b,
       generate_series(1, b.nb::bigint) g;
DELETE FROM ig WHERE c > (SELECT t1 FROM gen);
ALTER TABLE ig ADD r float8 DEFAULT random(), ADD r2 float8 DEFAULT random(),
               ADD k int DEFAULT floor(random() * current_setting('scale.gen_depts')::int),
               ADD j int DEFAULT floor(random() * current_setting('scale.gen_specialists')::int),
               ADD j2 int DEFAULT floor(random() * current_setting('scale.gen_specialists')::int),
               ADD coop int DEFAULT floor(random() * 3),
               ADD doc_type text DEFAULT (ARRAY['CV', 'CV', 'CV', 'QĐ', 'KH', 'TB', 'BC', 'GM'])[1 + floor(random() * 8)::int],
               ADD urgency text DEFAULT (ARRAY['normal', 'normal', 'normal', 'normal', 'urgent', 'very_urgent'])[1 + floor(random() * 6)::int],
               ADD lead_i int DEFAULT floor(random() * 2), ADD clerk_i int DEFAULT floor(random() * 2),
               ADD state text, ADD leader bigint, ADD clerk bigint, ADD handler bigint,
               ADD helper1 bigint, ADD helper2 bigint, ADD gap interval, ADD id bigint, ADD due date;
UPDATE ig SET
    state = CASE WHEN c < t1 - interval '30 days'
                 THEN CASE WHEN r < 0.95 THEN 'processed' ELSE 'in_progress' END
                 ELSE CASE WHEN r < 0.10 THEN CASE WHEN delivered THEN 'received' ELSE 'registered' END
                           WHEN r < 0.20 THEN 'registered' WHEN r < 0.40 THEN 'awaiting_assignment'
                           WHEN r < 0.80 THEN 'in_progress' ELSE 'processed' END END,
    leader = (a - 1) * p_n + 3 + lead_i,
    clerk = (a - 1) * p_n + 1 + clerk_i,
    handler = (a - 1) * p_n + 5 + k * (1 + s_n) + 1 + j,
    helper1 = (a - 1) * p_n + 5 + k * (1 + s_n) + 1 + (j + 1) % s_n,
    helper2 = (a - 1) * p_n + 5 + ((k + 1) % d_n) * (1 + s_n) + 1 + j2,
    gap = least(interval '1 day', (t1 - c) / 6),
    due = CASE WHEN r2 < 0.2 AND NOT delivered THEN (c AT TIME ZONE ioffice.timezone())::date + 20 END
  FROM gen;

-- ids in the order the documents were created, outgoing and incoming mixed
-- (as the sequence gives them); a file has its document's id
CREATE TEMP TABLE ids AS
SELECT row_number() OVER (ORDER BY c) AS id, kind, g
  FROM (SELECT c, 'o' AS kind, g FROM og UNION ALL SELECT c, 'i', g FROM ig) x;
UPDATE og SET id = ids.id FROM ids WHERE ids.kind = 'o' AND ids.g = og.g;
UPDATE ig SET id = ids.id FROM ids WHERE ids.kind = 'i' AND ids.g = ig.g;
CREATE INDEX ON og (g);
CREATE INDEX ON ig (src);
ANALYZE og, ig;

-- ---------------------------------------------------------------------------
-- Numbers: issued outgoing documents in the year's register (confidential
-- ones in the confidential series), incoming ones from registration on in
-- the incoming register, 1..N in order within each register and year
-- ---------------------------------------------------------------------------
ALTER TABLE og ADD issued_at timestamptz, ADD reg bigint, ADD yr int, ADD number int, ADD symbol text;
UPDATE og SET issued_at = c + gap * (n + 1) WHERE state = 'issued';
UPDATE og SET yr = extract(year FROM issued_at AT TIME ZONE ioffice.timezone())::int WHERE state = 'issued';
UPDATE og SET reg = r.id FROM ioffice.register r
 WHERE og.state = 'issued' AND r.agency_id = og.a AND r.year = og.yr AND r.direction = 'outgoing'
   AND r.confidential = og.secret;
UPDATE og SET number = x.nr
  FROM (SELECT g AS gg, row_number() OVER (PARTITION BY reg ORDER BY issued_at) AS nr
          FROM og WHERE reg IS NOT NULL) x
 WHERE x.gg = og.g;
UPDATE og SET symbol = ioffice.build_symbol(number, doc_type, a, unit)
                       || CASE WHEN secret THEN '-M' ELSE '' END
 WHERE number IS NOT NULL;

ALTER TABLE ig ADD reg bigint, ADD yr int, ADD number int;
UPDATE ig SET yr = extract(year FROM c AT TIME ZONE ioffice.timezone())::int WHERE state <> 'received';
UPDATE ig SET reg = r.id FROM ioffice.register r
 WHERE ig.yr IS NOT NULL AND r.agency_id = ig.a AND r.year = ig.yr AND r.direction = 'incoming';
UPDATE ig SET number = x.nr
  FROM (SELECT g AS gg, row_number() OVER (PARTITION BY reg ORDER BY c, g) AS nr
          FROM ig WHERE reg IS NOT NULL) x
 WHERE x.gg = ig.g;
UPDATE ioffice.register r SET next_number = 1 + x.m
  FROM (SELECT reg, max(number) AS m FROM og WHERE reg IS NOT NULL GROUP BY reg
        UNION ALL SELECT reg, max(number) FROM ig WHERE reg IS NOT NULL GROUP BY reg) x
 WHERE x.reg = r.id;

-- ---------------------------------------------------------------------------
-- The rows
-- ---------------------------------------------------------------------------
INSERT INTO ioffice.document (id, workflow, direction, doc_type, abstract, state, urgency,
       confidentiality, agency_id, drafting_unit_id, drafter_id, recipients, register_id,
       register_year, number, symbol, issued_on, issued_at, identifier, created_at, updated_at,
       signer_id, doc_type_name)
SELECT o.id, 'outgoing', 'outgoing', o.doc_type, 'V/v công việc số ' || o.g || ' của ' || u.abbr, o.state,
       o.urgency, CASE WHEN o.secret THEN 'confidential' ELSE 'normal' END, o.a, o.unit, o.drafter,
       CASE WHEN d.id IS NOT NULL
            THEN jsonb_build_array(jsonb_build_object('code', d.code, 'name', d.name, 'agency', d.id),
                                   jsonb_build_object('place', 'Lưu: VT'))
            ELSE '[]' END,
       o.reg, o.yr, o.number, o.symbol,
       (o.issued_at AT TIME ZONE ioffice.timezone())::date, o.issued_at,
       CASE WHEN o.number IS NOT NULL AND NOT o.secret
            THEN u.code || ',' || to_char(o.issued_at AT TIME ZONE ioffice.timezone(), 'YYYY/MM/DD')
                 || ',' || o.symbol END,
       o.c, coalesce(o.issued_at, o.c + o.gap * o.n),
       -- the approval makes the holder (the leader a deputy approved for) the
       -- signer; the number keeps the type's name
       CASE WHEN o.state IN ('awaiting_issue', 'issued') THEN o.holder END,
       CASE WHEN o.number IS NOT NULL THEN (SELECT t.name FROM ioffice.doc_type t WHERE t.code = o.doc_type) END
  FROM og o JOIN ioffice.unit u ON u.id = o.a
  LEFT JOIN LATERAL (SELECT i.a FROM ig i WHERE i.src = o.g LIMIT 1) dl ON true
  LEFT JOIN ioffice.unit d ON d.id = dl.a;

INSERT INTO ioffice.document (id, workflow, direction, doc_type, abstract, state, urgency,
       agency_id, drafting_unit_id, drafter_id, due_date, register_id, register_year, number,
       sender_agency_id, sender_name, sender_symbol, sender_date, source_document_id, received_at,
       created_at, updated_at, signer_id)
SELECT i.id, 'incoming', 'incoming', coalesce(o.doc_type, i.doc_type),
       CASE WHEN i.delivered THEN 'V/v công việc số ' || o.g || ' của ' || su.abbr
            ELSE 'V/v văn bản đến số ' || i.g END,
       i.state, coalesce(o.urgency, i.urgency), i.a, i.a,
       CASE WHEN i.state <> 'received' THEN i.clerk END, i.due, i.reg, i.yr, i.number,
       o.a, CASE WHEN NOT i.delivered THEN 'Bộ ngành số ' || (i.g % 40) END,
       CASE WHEN NOT i.delivered THEN i.g || '/BN' || (i.g % 40) || '-VP' END,
       CASE WHEN NOT i.delivered THEN (i.c AT TIME ZONE ioffice.timezone())::date - 2 END,
       o.id, i.c, i.c, i.c + i.gap * 3,
       -- a delivered document carries its source's signer
       CASE WHEN i.delivered THEN o.holder END
  FROM ig i LEFT JOIN og o ON o.g = i.src LEFT JOIN ioffice.unit su ON su.id = o.a;

-- files: one per outgoing document (half the drafts have none yet); a
-- delivered document gets its source's file
INSERT INTO ioffice.file (id, document_id, name, kind, size, sha256, content, uploaded_by, uploaded_at)
SELECT o.id, o.id, 'du_thao_' || o.g || '.pdf', 'pdf', length(x.content), sha256(x.content), x.content,
       o.drafter, o.c + interval '5 minutes'
  FROM og o, LATERAL (SELECT convert_to('%PDF-1.4 văn bản ' || o.g, 'UTF8') AS content) x
 WHERE o.state <> 'draft' OR o.g % 2 = 0;
INSERT INTO ioffice.file (id, document_id, name, kind, size, sha256, content, uploaded_by, uploaded_at)
SELECT i.id, i.id, f.name, f.kind, f.size, f.sha256, f.content, o.clerk, i.c
  FROM ig i JOIN og o ON o.g = i.src JOIN ioffice.file f ON f.id = o.id;

-- outgoing tasks: one per step taken; each closed by the next step's
-- action, the last by issue or complete, or open; a deputy who approved in
-- the leader's name processed the leader's task and sends the next one for
-- the leader
INSERT INTO ioffice.task (document_id, step, action, sender_id, sender_for, request, receiver_id,
       received_at, file_ids, status, processing_note, processed_at, processed_by, closed_by_action)
SELECT o.id, s.step, s.action, s.sender,
       CASE WHEN s.action = 'approve' AND o.by_deputy AND o.fwd THEN o.holder END,
       CASE s.action WHEN 'submit' THEN 'Kính trình' WHEN 'return' THEN 'Đề nghị sửa lại'
                     WHEN 'forward' THEN 'Kính trình lãnh đạo' END,
       s.receiver, o.c + o.gap * s.step, ARRAY[o.id],
       CASE WHEN x.closed IS NULL THEN 'open' ELSE 'done' END,
       CASE x.closed WHEN 'submit' THEN 'Chuyển lãnh đạo' WHEN 'return' THEN 'Chuyển chuyên viên'
                     WHEN 'forward' THEN 'Chuyển lãnh đạo khác' WHEN 'approve' THEN 'Duyệt'
                     WHEN 'issue' THEN 'Phát hành' WHEN 'complete' THEN 'Hoàn tất' END,
       CASE WHEN x.closed IS NOT NULL THEN o.c + o.gap * (s.step + 1) END,
       CASE WHEN x.closed = 'approve' AND o.by_deputy AND o.fwd THEN o.deputy
            WHEN x.closed IS NOT NULL THEN s.receiver END,
       x.closed
  FROM og o,
       LATERAL unnest(o.actions, o.senders, o.receivers) WITH ORDINALITY AS s(action, sender, receiver, step),
       LATERAL (SELECT CASE WHEN s.step < o.n THEN o.actions[s.step + 1]
                            WHEN o.state = 'issued' THEN 'issue'
                            WHEN o.state = 'completed' THEN 'complete' END AS closed) x
 WHERE s.step <= o.n;

-- incoming tasks: submitted by the clerk to a leader, assigned to a lead
-- handler with a deadline and to cooperators (kind cooperate), completed
INSERT INTO ioffice.task (document_id, step, action, sender_id, request, receiver_id, received_at,
       deadline, options, file_ids, status, processing_note, processed_at, processed_by,
       closed_by_action, kind)
SELECT i.id, s.step, s.action, s.sender, s.request, s.receiver, i.c + i.gap * s.at, s.deadline,
       s.options, CASE WHEN i.delivered THEN ARRAY[i.id] ELSE '{}' END,
       CASE WHEN s.closed IS NULL THEN 'open' ELSE 'done' END,
       CASE s.closed WHEN 'assign' THEN 'Phân công xử lý' WHEN 'complete' THEN 'Đã xử lý xong'
                     WHEN 'cooperated' THEN 'Đã góp ý' END,
       CASE WHEN s.closed IS NOT NULL THEN i.c + i.gap * (s.at + 1) END,
       CASE WHEN s.closed IS NOT NULL THEN s.receiver END, s.closed, s.kind
  FROM ig i,
       LATERAL (SELECT ((i.c + i.gap * 2) AT TIME ZONE ioffice.timezone())::date + 10 AS deadline) dd,
       LATERAL (VALUES
           (1, 'submit', i.clerk, 'Kính trình', i.leader, 1, NULL::date, '{}'::jsonb, 'main',
            CASE WHEN i.state IN ('in_progress', 'processed') THEN 'assign' END, true),
           (2, 'assign', i.leader, 'Chủ trì xử lý', i.handler, 2, dd.deadline,
            jsonb_build_object('deadline', dd.deadline) || CASE WHEN i.coop > 0 THEN
                jsonb_build_object('cooperate', (SELECT jsonb_agg(jsonb_build_object('login', p.login,
                    'deadline', dd.deadline - 2)) FROM ioffice.person p
                    WHERE p.id IN (i.helper1, CASE WHEN i.coop > 1 THEN i.helper2 END)))
                ELSE '{}' END,
            'main', CASE WHEN i.state = 'processed' THEN 'complete' END,
            i.state IN ('in_progress', 'processed')),
           (3, 'assign', i.leader, 'Chủ trì xử lý', i.helper1, 2, dd.deadline - 2, '{}'::jsonb, 'cooperate',
            CASE WHEN i.state = 'processed' OR (i.g % 2 = 0) THEN 'cooperated' END,
            i.state IN ('in_progress', 'processed') AND i.coop > 0),
           (4, 'assign', i.leader, 'Chủ trì xử lý', i.helper2, 2, dd.deadline - 2, '{}'::jsonb, 'cooperate',
            CASE WHEN i.state = 'processed' THEN 'cooperated' END,
            i.state IN ('in_progress', 'processed') AND i.coop > 1))
         AS s(step, action, sender, request, receiver, at, deadline, options, kind, closed, taken)
 WHERE s.taken AND i.state NOT IN ('received', 'registered');

-- signatures: an issued document carries the agency's seal (the clerk's
-- organisation signature) and, for half of them, the approver's own; a
-- document in review that its holder signed waits for the worker
INSERT INTO ioffice.signature (document_id, file_id, signer_id, kind, status, requested_at, signed_at, cms)
SELECT o.id, o.id, t.processed_by, 'personal', 'done', t.processed_at - interval '10 minutes',
       t.processed_at - interval '9 minutes', '\x3082'::bytea
  FROM og o JOIN ioffice.task t ON t.document_id = o.id AND t.closed_by_action = 'approve'
 WHERE o.state = 'issued' AND o.leader_signed AND NOT (o.by_deputy AND o.fwd);
INSERT INTO ioffice.signature (document_id, file_id, signer_id, kind, status, requested_at, signed_at, cms)
SELECT o.id, o.id, o.clerk, 'organisation', 'done', o.issued_at, o.issued_at + interval '1 minute',
       '\x3082'::bytea
  FROM og o WHERE o.state = 'issued';
INSERT INTO ioffice.signature (document_id, file_id, signer_id, kind, status, requested_at)
SELECT o.id, o.id, o.receivers[o.n], 'personal', 'pending', o.c + o.gap * o.n
  FROM og o WHERE o.state = 'reviewing' AND o.leader_signed;

-- ---------------------------------------------------------------------------
-- Dossiers (one for every five documents): received at the one-stop desk
-- (each agency's second clerk is its one-stop officer) over the three
-- years, with the statutory days of common procedures.  Those of the last
-- 60 days are under way (still with the officer, with a department's head,
-- or with a specialist); older ones are finished, generated as refused at
-- reception (the shortest path the API writes: their results and trails
-- are not what the benchmark reads, dossier_due reads unfinished ones only).
-- Codes are <agency code>-YYMMDD-NNNN of the day in ioffice.timezone.
-- ---------------------------------------------------------------------------
CREATE TEMP TABLE dg AS
SELECT g, a, k, j, c, days, r,
       CASE WHEN c < t1 - interval '60 days' THEN 'rejected'
            WHEN r < 0.05 THEN 'rejected' WHEN r < 0.25 THEN 'received'
            WHEN r < 0.45 THEN 'assigning' ELSE 'processing' END AS state,
       least(interval '1 day', (t1 - c) / 4) AS gap
  FROM (SELECT g, 1 + floor(random() * a_n)::int AS a, floor(random() * d_n)::int AS k,
               floor(random() * s_n)::int AS j,
               -- (t0 is a timestamp without zone: the column's, as the
               -- session's zone reads it)
               (t0 + (t1 - t0) * ((g - random()) / ceil(docs * 0.2)))::timestamptz AS c,
               (ARRAY[1, 3, 5, 5, 7, 10, 15, 20])[1 + floor(random() * 8)::int] AS days,
               random() AS r, t1
          FROM gen, generate_series(1, ceil(docs * 0.2)::bigint) g) x;
ALTER TABLE dg ADD officer bigint, ADD head bigint, ADD specialist bigint, ADD unit_code text,
               ADD day date, ADD seq int;
UPDATE dg SET officer = (a - 1) * p_n + 2,
              head = (a - 1) * p_n + 5 + k * (1 + s_n),
              specialist = (a - 1) * p_n + 5 + k * (1 + s_n) + 1 + j,
              unit_code = u.code, day = (c AT TIME ZONE ioffice.timezone())::date
  FROM gen, ioffice.unit u WHERE u.id = dg.a;
UPDATE dg SET seq = x.seq
  FROM (SELECT g, row_number() OVER (PARTITION BY unit_code, day ORDER BY c) AS seq FROM dg) x
 WHERE x.g = dg.g;
INSERT INTO ioffice.person_role (person_id, role, unit_id)
SELECT (a - 1) * p_n + 2, 'one_stop', a FROM gen, generate_series(1, a_n) a;
INSERT INTO ioffice.dossier_counter (unit_code, day, last)
SELECT unit_code, day, max(seq) FROM dg GROUP BY unit_code, day;
INSERT INTO ioffice.dossier (id, code, workflow, state, procedure_code, procedure_name, applicant,
                             agency_id, unit_code, received_by, received_at, statutory_days, deadline,
                             how_received, finished_at, updated_at)
SELECT g, unit_code || '-' || to_char(day, 'YYMMDD') || '-' || lpad(seq::text, 4, '0'),
       'dossier', state, '1.000001.000.00.00.H41', 'Thủ tục mẫu', '{"name": "Công dân"}',
       a, unit_code, officer, c, days, ioffice.add_working_days(c, days), 'direct',
       CASE WHEN state = 'rejected' THEN c + gap END,
       c + gap * CASE state WHEN 'received' THEN 0 WHEN 'assigning' THEN 1 WHEN 'processing' THEN 2 ELSE 1 END
  FROM dg;
-- the trail: received by the officer, refused or transferred to the head,
-- assigned to a specialist; each step closed by the next one's action
INSERT INTO ioffice.dossier_task (dossier_id, step, action, sender_id, request, receiver_id, received_at,
                                  status, processing_note, processed_at, processed_by, closed_by_action)
SELECT g, 1, 'receive', officer, 'Tiếp nhận hồ sơ', officer, c,
       CASE WHEN state = 'received' THEN 'open' ELSE 'done' END,
       CASE state WHEN 'received' THEN NULL WHEN 'rejected' THEN 'Hồ sơ không đủ thành phần'
                  ELSE 'Chuyển phòng chuyên môn' END,
       CASE WHEN state <> 'received' THEN c + gap END,
       CASE WHEN state <> 'received' THEN officer END,
       CASE state WHEN 'received' THEN NULL WHEN 'rejected' THEN 'reject' ELSE 'transfer' END
  FROM dg;
INSERT INTO ioffice.dossier_task (dossier_id, step, action, sender_id, request, receiver_id, received_at,
                                  status, processing_note, processed_at, processed_by, closed_by_action)
SELECT g, 2, 'transfer', officer, 'Chuyển phòng chuyên môn', head, c + gap,
       CASE WHEN state = 'assigning' THEN 'open' ELSE 'done' END,
       CASE WHEN state = 'processing' THEN 'Giao chuyên viên xử lý' END,
       CASE WHEN state = 'processing' THEN c + gap * 2 END,
       CASE WHEN state = 'processing' THEN head END,
       CASE WHEN state = 'processing' THEN 'assign' END
  FROM dg WHERE state IN ('assigning', 'processing');
INSERT INTO ioffice.dossier_task (dossier_id, step, action, sender_id, request, receiver_id, received_at)
SELECT g, 3, 'assign', head, 'Giao chuyên viên xử lý', specialist, c + gap * 2
  FROM dg WHERE state = 'processing';

-- each outgoing register's last issue date (numbers follow their dates)
UPDATE ioffice.register r SET last_issued_on = x.last
  FROM (SELECT register_id, max(issued_on) AS last FROM ioffice.document
         WHERE direction = 'outgoing' AND number IS NOT NULL GROUP BY register_id) x
 WHERE x.register_id = r.id;

RESET session_replication_role;
SELECT setval('ioffice.dossier_id_seq', (SELECT max(id) FROM ioffice.dossier));
SELECT setval('ioffice.dossier_task_id_seq', (SELECT max(id) FROM ioffice.dossier_task));
SELECT setval('ioffice.unit_id_seq', (SELECT max(id) FROM ioffice.unit));
SELECT setval('ioffice.person_id_seq', (SELECT max(id) FROM ioffice.person));
SELECT setval('ioffice.document_id_seq', (SELECT max(id) FROM ioffice.document));
SELECT setval('ioffice.file_id_seq', (SELECT max(id) FROM ioffice.file));
-- the home page's kept counters (the triggers were off for the bulk load)
SELECT ioffice.dashboard_counts_rebuild();
VACUUM ANALYZE;
