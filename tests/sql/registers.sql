-- Numbering registers: per agency, direction, year, optionally per type,
-- confidential series apart; take_number for external systems; duplicates
-- refused; the outgoing register view.
\set VERBOSITY default
\set SHOW_CONTEXT never
SELECT id AS ubnd FROM ioffice.unit WHERE code = '000.00.32.H41' \gset
SELECT id AS xa FROM ioffice.unit WHERE code = '001.32.32.H41' \gset
SELECT id AS reg FROM ioffice.register WHERE agency_id = :ubnd AND code = 'outgoing' \gset
SELECT next_number AS next FROM ioffice.register WHERE id = :reg \gset

-- take_number: the next number and its symbol, for the clerk's external system
SET ioffice.actor = 'regress_thuy';
SELECT number = :next AS is_next, symbol = ioffice.format_number(:next) || '/QĐ-UBND' AS symbol_ok
FROM ioffice.take_number(:reg, 'QĐ');
SELECT number = :next + 1 AS is_next, symbol = ioffice.format_number(:next + 1) || '/UBND-VP' AS symbol_ok
FROM ioffice.take_number(:reg, 'CV', (SELECT id FROM ioffice.unit WHERE abbr = 'VP'));
-- it belongs to the caller's transaction: a rollback gives it back
BEGIN;
SELECT number = :next + 2 AS is_next FROM ioffice.take_number(:reg, 'TB');
ROLLBACK;
SELECT number = :next + 2 AS given_back FROM ioffice.take_number(:reg, 'TB');
-- numbers taken and documents issued share one gapless series
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('TB', 'Thông báo sau số lấy ngoài') AS doc \gset
SELECT ioffice.attach(:doc, 'tb.pdf', content) FROM pdf;
SELECT ioffice.act(:doc, 'submit', 'dai');
SET ioffice.actor = 'dai';
SELECT ioffice.act(:doc, 'approve', 'regress_thuy');
SET ioffice.actor = 'regress_thuy';
SELECT ioffice.act(:doc, 'issue');
SELECT number = :next + 3 AS follows_taken FROM ioffice.document WHERE id = :doc;
SELECT number, symbol, doc_type, taken_by = (SELECT id FROM ioffice.person WHERE login = 'regress_thuy') AS by_thuy
FROM ioffice.number_taken ORDER BY number;
-- each number taken is the next record of the register's chain 'numbers:<id>',
-- whose end the register row keeps; audit_verify() checks them like any other
SELECT seq, action, detail->>'symbol' AS symbol, actor_id = (SELECT id FROM ioffice.person WHERE login = 'regress_thuy') AS by_thuy,
       prev_hash IS NOT DISTINCT FROM lag(hash) OVER (ORDER BY seq) AS linked
FROM ioffice.audit WHERE chain = 'numbers:' || :reg ORDER BY seq;
SELECT r.numbers_seq, r.numbers_head = a.hash AS head_is_last, r.numbers_prev = a.prev_hash AS prev_is_last
FROM ioffice.register r JOIN ioffice.audit a ON a.chain = 'numbers:' || r.id AND a.seq = r.numbers_seq
WHERE r.id = :reg;
SELECT * FROM ioffice.audit_verify('register', :reg);
-- a tampered record is found (in a rolled-back transaction, by the owner)
BEGIN;
SET LOCAL session_replication_role = replica;
UPDATE ioffice.audit SET detail = jsonb_set(detail, '{symbol}', '"99/QĐ-UBND"')
WHERE chain = 'numbers:' || :reg AND seq = 2;
SELECT problem FROM ioffice.audit_verify('register', :reg);
ROLLBACK;
-- the register row keeps the chain's end: its last record cut off is found
-- without any checkpoint
BEGIN;
SET LOCAL session_replication_role = replica;
DELETE FROM ioffice.audit WHERE chain = 'numbers:' || :reg AND seq = 3;
SELECT replace(problem, :reg::text, '<reg>') AS problem FROM ioffice.audit_verify('register', :reg);
ROLLBACK;
-- with ioffice.audit_chaining off (to measure what chaining costs) the
-- record is written unchained, the row's chain end stays, and audit_verify
-- says so
BEGIN;
SET LOCAL ioffice.audit_chaining = off;
SELECT numbers_seq AS seq_before FROM ioffice.register WHERE id = :reg \gset
SELECT number = :next + 4 AS next_number FROM ioffice.take_number(:reg, 'CV');
SELECT chain IS NULL AND seq IS NULL AND hash IS NULL AS unchained, detail->>'doc_type' AS doc_type
FROM ioffice.audit WHERE entity = 'register' AND entity_id = :reg ORDER BY id DESC LIMIT 1;
SELECT numbers_seq = :seq_before AS chain_end_kept FROM ioffice.register WHERE id = :reg;
SELECT problem FROM ioffice.audit_verify('register', :reg);
ROLLBACK;
-- and so is the loss of the whole chain, once sealed, whether the register
-- or every register is asked about
BEGIN;
SELECT ioffice.audit_seal() > 0 AS sealed;
SET LOCAL session_replication_role = replica;
DELETE FROM ioffice.audit WHERE chain = 'numbers:' || :reg;
SELECT regexp_replace(replace(problem, :reg::text, '<reg>'), 'checkpoint \d+', 'checkpoint <n>') AS problem FROM ioffice.audit_verify('register', :reg);
SELECT regexp_replace(replace(problem, :reg::text, '<reg>'), 'checkpoint \d+', 'checkpoint <n>') AS problem FROM ioffice.audit_verify('register')
WHERE problem LIKE 'chain numbers:%';
ROLLBACK;

-- refused
SELECT * FROM ioffice.take_number(NULL, 'CV');
\echo :SQLSTATE
SELECT * FROM ioffice.take_number(:reg, NULL);
\echo :SQLSTATE
-- a drafting unit of another agency has no place in this agency's symbols
SELECT * FROM ioffice.take_number(:reg, 'CV', (SELECT id FROM ioffice.unit WHERE code = '001.32.32.H41'));
\echo :SQLSTATE
SELECT * FROM ioffice.take_number(999999, 'CV');
\echo :SQLSTATE
SELECT * FROM ioffice.take_number(-1, 'CV');
\echo :SQLSTATE
SELECT * FROM ioffice.take_number(:reg, 'XX');
\echo :SQLSTATE
SELECT * FROM ioffice.take_number(:reg, 'CV', 999999);
\echo :SQLSTATE
SELECT * FROM ioffice.take_number((SELECT id FROM ioffice.register WHERE agency_id = :ubnd AND code = 'incoming'), 'CV');
\echo :SQLSTATE
SET ioffice.actor = 'regress_luan';
SELECT * FROM ioffice.take_number(:reg, 'CV');
\echo :SQLSTATE
SET ioffice.actor = 'regress_xa_vt';
SELECT * FROM ioffice.take_number(:reg, 'CV');
\echo :SQLSTATE
SELECT next_number = :next + 4 AS nothing_taken_by_refusals FROM ioffice.register WHERE id = :reg;

-- an agency may keep a register per type: decisions get their own series
INSERT INTO ioffice.register (agency_id, direction, code, name, doc_types, year)
SELECT :ubnd, 'outgoing', 'decisions', 'Sổ quyết định', '{QĐ}', year FROM ioffice.register WHERE id = :reg
RETURNING id AS decisions \gset
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('QĐ', 'Quyết định vào sổ riêng') AS qd \gset
SELECT ioffice.attach(:qd, 'qd.pdf', content) FROM pdf;
SELECT ioffice.act(:qd, 'submit', 'dai');
SET ioffice.actor = 'dai';
SELECT ioffice.act(:qd, 'approve', 'regress_thuy');
SET ioffice.actor = 'regress_thuy';
SELECT ioffice.act(:qd, 'issue');
SELECT d.number, d.symbol, r.code FROM ioffice.document d JOIN ioffice.register r ON r.id = d.register_id
WHERE d.id = :qd;
-- the clerk may choose the register; a type it does not number is refused
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('KH', 'Kế hoạch sai sổ') AS kh \gset
SELECT ioffice.attach(:kh, 'kh.pdf', content) FROM pdf;
SELECT ioffice.act(:kh, 'submit', 'dai');
SET ioffice.actor = 'dai';
SELECT ioffice.act(:kh, 'approve', 'regress_thuy');
SET ioffice.actor = 'regress_thuy';
SELECT ioffice.act(:kh, 'issue', NULL, NULL, jsonb_build_object('register', :decisions));
\echo :SQLSTATE
SELECT ioffice.act(:kh, 'issue', NULL, NULL, '{"register": 1.5}');
\echo :SQLSTATE
SELECT ioffice.act(:kh, 'issue', NULL, NULL, jsonb_build_object('register', :reg));
SELECT number = :next + 4 AS general_series FROM ioffice.document WHERE id = :kh;

-- a new year starts at 1: the year's row is made on first use
UPDATE ioffice.register SET year = year - 1 WHERE agency_id = :xa AND code = 'outgoing';
SET ioffice.actor = 'regress_xa_vt';
SELECT number, symbol FROM ioffice.take_number(
    (SELECT id FROM ioffice.register WHERE agency_id = :xa AND code = 'outgoing'), 'CV');
SELECT code, year = extract(year FROM now() AT TIME ZONE 'Asia/Ho_Chi_Minh') AS this_year, next_number
FROM ioffice.register WHERE agency_id = :xa AND direction = 'outgoing' ORDER BY code, year;
RESET ioffice.actor;

-- duplicates are refused, as Decree 30 asks
SELECT id AS cv2 FROM ioffice.document WHERE abstract = 'V/v đôn đốc áp dụng chữ ký số' \gset
-- (terse: the key's detail holds the year and the issue date)
\set VERBOSITY terse
-- (an issued document's register entry is frozen by a trigger, tested in
-- number_dates; set aside here, in a transaction, to reach the indexes)
BEGIN;
ALTER TABLE ioffice.document DISABLE TRIGGER register_entry_frozen;
SAVEPOINT duplicate;
UPDATE ioffice.document SET number = (SELECT number FROM ioffice.document WHERE id = 1),
       symbol = (SELECT symbol FROM ioffice.document WHERE id = 1)
WHERE id = :cv2;
\echo :SQLSTATE
ROLLBACK TO duplicate;
UPDATE ioffice.document SET identifier = (SELECT identifier FROM ioffice.document WHERE id = 1)
WHERE id = :cv2;
\echo :SQLSTATE
ROLLBACK;
\set VERBOSITY default

-- the outgoing register, as a reporting tool reads it
SELECT year = extract(year FROM now() AT TIME ZONE 'Asia/Ho_Chi_Minh') AS this_year, register_code,
       number, symbol, type_and_abstract, signer, recipients, archive_unit, copies, note, confidential
FROM ioffice.outgoing_register WHERE agency_id = :ubnd ORDER BY register_code, number;
SELECT a.attname AS column, col_description('ioffice.outgoing_register'::regclass, a.attnum) AS heading
FROM pg_attribute a WHERE a.attrelid = 'ioffice.outgoing_register'::regclass AND a.attnum > 0
  AND col_description('ioffice.outgoing_register'::regclass, a.attnum) IS NOT NULL
ORDER BY a.attnum;
-- a reporting role reads every ordinary document; a person only what they may see
CREATE ROLE regress_report LOGIN IN ROLE ioffice_reader;
SET SESSION AUTHORIZATION regress_report;
SELECT count(*) FILTER (WHERE confidential) AS confidential_rows, count(*) > 5 AS many
FROM ioffice.outgoing_register;
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION regress_tuan;
SELECT symbol FROM ioffice.outgoing_register ORDER BY symbol;
RESET SESSION AUTHORIZATION;
-- the register's own audit chain is whole
SELECT count(*) AS register_chain_problems FROM ioffice.audit_verify('register', :reg);
