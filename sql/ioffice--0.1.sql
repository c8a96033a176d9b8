/* ioffice--0.1.sql: objects of the ioffice extension, version 0.1 */

\echo Use "CREATE EXTENSION ioffice CASCADE" to load this file. \quit

/*
 * Roles.  They are cluster-wide, so they may already exist from another
 * database of the cluster; they outlive DROP EXTENSION on purpose.
 *   ioffice_app   : trusted applications that authenticate their own users
 *                   and name them with SET LOCAL ioffice.actor.
 *   ioffice_admin : DBAs who keep the directory and edit workflow rules.
 *   ioffice_reader: reporting tools that read the registers (every
 *                   document that is not confidential).
 */
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ioffice_app') THEN
        CREATE ROLE ioffice_app NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ioffice_admin') THEN
        CREATE ROLE ioffice_admin NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ioffice_reader') THEN
        CREATE ROLE ioffice_reader NOLOGIN;
    END IF;
END
$roles$;

-- ---------------------------------------------------------------------------
-- Directory
-- ---------------------------------------------------------------------------

CREATE TABLE unit (
    id          bigserial PRIMARY KEY,
    -- parent_id and agency_id point into this table without a foreign key:
    -- a self-reference makes pg_dump warn on every backup that the dump may
    -- not restore.  add_agency and add_department, the only writers, check
    -- the parent; units are never deleted.
    parent_id   bigint,
    kind        text NOT NULL CHECK (kind IN ('agency', 'department')),
    code        text UNIQUE
                CHECK (code ~ '^[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 500),
    abbr        text NOT NULL CHECK (abbr ~ '^[^\s/,]{1,20}$'),
    -- the agency a unit belongs to (itself for an agency): what numbering,
    -- clerks and symbols are scoped by
    agency_id   bigint NOT NULL,
    CHECK ((kind = 'agency') = (agency_id = id)),
    CHECK (kind = 'agency' OR parent_id IS NOT NULL)
);
CREATE INDEX unit_agency_idx ON unit (agency_id);
COMMENT ON TABLE unit IS 'Agencies (cơ quan) and their departments (phòng ban), as a tree';

CREATE TABLE person (
    id          bigserial PRIMARY KEY,
    login       text NOT NULL UNIQUE CHECK (login ~ '^[A-Za-z0-9_.@-]{1,63}$'),
    full_name   text NOT NULL CHECK (length(full_name) BETWEEN 1 AND 200),
    position    text CHECK (length(position) <= 200),
    unit_id     bigint NOT NULL REFERENCES unit,
    phone       text CHECK (length(phone) <= 30),
    email       text CHECK (length(email) <= 200),
    active      boolean NOT NULL DEFAULT true
);
CREATE INDEX person_unit_idx ON person (unit_id);
COMMENT ON TABLE person IS 'People (cán bộ); login names them in every call';

CREATE TABLE person_role (
    person_id   bigint NOT NULL REFERENCES person,
    role        text NOT NULL CHECK (role ~ '^[a-z_]{1,32}$'),
    unit_id     bigint NOT NULL REFERENCES unit,
    PRIMARY KEY (person_id, role, unit_id)
);
CREATE INDEX person_role_unit_idx ON person_role (unit_id, role);
COMMENT ON TABLE person_role IS 'Roles a person holds, scoped to a unit (a clerk of an agency, a leader of a department)';

CREATE TABLE delegation (
    id           bigserial PRIMARY KEY,
    from_person  bigint NOT NULL REFERENCES person,
    to_person    bigint NOT NULL REFERENCES person,
    valid_from   timestamptz NOT NULL,
    valid_until  timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (valid_until > valid_from),
    CHECK (from_person <> to_person)
);
CREATE INDEX delegation_to_idx ON delegation (to_person, from_person);
COMMENT ON TABLE delegation IS 'Approval delegations (ủy quyền duyệt): to_person may approve in from_person''s name';

CREATE TABLE doc_type (
    code        text PRIMARY KEY,
    name        text NOT NULL,
    -- abbreviation used in the symbol; NULL for công văn and thư công
    abbr        text,
    builtin     boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE doc_type IS 'Document types of Decree 30 (appendix III)';

INSERT INTO doc_type (code, name, abbr, builtin) VALUES
    ('CV',  'Công văn', NULL, true),
    ('TCg', 'Thư công', NULL, true),
    ('NQ',  'Nghị quyết', 'NQ', true),
    ('QĐ',  'Quyết định', 'QĐ', true),
    ('CT',  'Chỉ thị', 'CT', true),
    ('QC',  'Quy chế', 'QC', true),
    ('QyĐ', 'Quy định', 'QyĐ', true),
    ('TC',  'Thông cáo', 'TC', true),
    ('TB',  'Thông báo', 'TB', true),
    ('HD',  'Hướng dẫn', 'HD', true),
    ('CTr', 'Chương trình', 'CTr', true),
    ('KH',  'Kế hoạch', 'KH', true),
    ('PA',  'Phương án', 'PA', true),
    ('ĐA',  'Đề án', 'ĐA', true),
    ('DA',  'Dự án', 'DA', true),
    ('BC',  'Báo cáo', 'BC', true),
    ('BB',  'Biên bản', 'BB', true),
    ('TTr', 'Tờ trình', 'TTr', true),
    ('HĐ',  'Hợp đồng', 'HĐ', true),
    ('CĐ',  'Công điện', 'CĐ', true),
    ('BGN', 'Bản ghi nhớ', 'BGN', true),
    ('BTT', 'Bản thỏa thuận', 'BTT', true),
    ('GUQ', 'Giấy ủy quyền', 'GUQ', true),
    ('GM',  'Giấy mời', 'GM', true),
    ('GGT', 'Giấy giới thiệu', 'GGT', true),
    ('GNP', 'Giấy nghỉ phép', 'GNP', true),
    ('PG',  'Phiếu gửi', 'PG', true),
    ('PC',  'Phiếu chuyển', 'PC', true),
    ('PB',  'Phiếu báo', 'PB', true);

-- ---------------------------------------------------------------------------
-- Workflow rules (edited by DBAs with plain SQL)
-- ---------------------------------------------------------------------------

CREATE TABLE workflow (
    name        text PRIMARY KEY CHECK (name ~ '^[a-z_]{1,40}$'),
    label       text NOT NULL,
    builtin     boolean NOT NULL DEFAULT false
);

CREATE TABLE workflow_state (
    workflow    text NOT NULL REFERENCES workflow ON UPDATE CASCADE,
    state       text NOT NULL CHECK (state ~ '^[a-z_]{1,40}$'),
    label       text NOT NULL,
    initial     boolean NOT NULL DEFAULT false,
    final       boolean NOT NULL DEFAULT false,
    builtin     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (workflow, state),
    CHECK (NOT (initial AND final))
);

CREATE TABLE workflow_transition (
    workflow    text NOT NULL,
    action      text NOT NULL CHECK (action ~ '^[a-z_]{1,40}$'),
    from_state  text NOT NULL,
    to_state    text NOT NULL,
    label       text NOT NULL,
    -- who may take it: 'drafter' (of the document) or 'holder' (of its open task)
    taken_by    text NOT NULL,
    -- whom it goes to: 'none', 'given' (to_login, who must hold receiver_role),
    -- 'drafter', or 'default_clerk' (of the document's agency)
    receiver    text NOT NULL DEFAULT 'none',
    receiver_role text,
    guards      text[] NOT NULL DEFAULT '{}',
    effects     text[] NOT NULL DEFAULT '{}',
    -- the keys act(options) accepts for this action
    options     text[] NOT NULL DEFAULT '{}',
    -- may a person with a delegation from the holder take it in their name?
    delegable   boolean NOT NULL DEFAULT false,
    builtin     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (workflow, action, from_state),
    FOREIGN KEY (workflow, from_state) REFERENCES workflow_state ON UPDATE CASCADE,
    FOREIGN KEY (workflow, to_state) REFERENCES workflow_state ON UPDATE CASCADE
);

COMMENT ON TABLE workflow_transition IS
  'Which action leads from which state to which, who takes it, whom it goes to, its guards and effects (named, implemented in C)';

-- ---------------------------------------------------------------------------
-- Documents, files, tasks, signatures, registers
-- ---------------------------------------------------------------------------

CREATE TABLE register (
    id          bigserial PRIMARY KEY,
    agency_id   bigint NOT NULL REFERENCES unit,
    direction   text NOT NULL CHECK (direction IN ('outgoing', 'incoming')),
    code        text NOT NULL CHECK (code ~ '^[A-Za-z0-9_.-]{1,40}$'),
    name        text NOT NULL,
    -- NULL: every type; otherwise the types this register numbers
    doc_types   text[],
    confidential boolean NOT NULL DEFAULT false,
    -- appended to the symbols of this series (confidential series: "M"), so
    -- that (number, symbol) never repeats between the series of an agency
    symbol_suffix text CHECK (symbol_suffix ~ '^[^\s/,-]{1,10}$'),
    year        int NOT NULL CHECK (year BETWEEN 1900 AND 9999),
    -- the register row is the counter: updating it takes the row lock that
    -- makes numbering gapless (a rolled-back transaction gives it back)
    next_number int NOT NULL DEFAULT 1 CHECK (next_number >= 1),
    UNIQUE (agency_id, direction, code, year)
);
COMMENT ON TABLE register IS 'Numbering registers (sổ văn bản), one row per register and year';

CREATE TABLE document (
    id              bigserial PRIMARY KEY,
    workflow        text NOT NULL DEFAULT 'outgoing',
    direction       text NOT NULL DEFAULT 'outgoing' CHECK (direction IN ('outgoing', 'incoming')),
    doc_type        text NOT NULL REFERENCES doc_type ON UPDATE CASCADE,
    abstract        text NOT NULL CHECK (length(abstract) BETWEEN 1 AND 500),
    state           text NOT NULL,
    urgency         text NOT NULL DEFAULT 'normal'
                    CHECK (urgency IN ('normal', 'urgent', 'very_urgent', 'flash', 'flash_timed')),
    flash_at        timestamptz,
    confidentiality text NOT NULL DEFAULT 'normal'
                    CHECK (confidentiality IN ('normal', 'confidential', 'secret', 'top_secret')),
    field           text CHECK (length(field) <= 200),
    agency_id       bigint NOT NULL REFERENCES unit,
    drafting_unit_id bigint NOT NULL REFERENCES unit,
    -- who drafted it (outgoing), or the clerk who registered it (incoming;
    -- NULL while a document delivered from another agency awaits registration)
    drafter_id      bigint REFERENCES person,
    signer_id       bigint REFERENCES person,
    page_count      int CHECK (page_count BETWEEN 1 AND 100000),
    copies          int CHECK (copies BETWEEN 1 AND 100000),
    recipients      jsonb NOT NULL DEFAULT '[]',
    due_date        date,
    comment         text CHECK (length(comment) <= 2000),
    signature_requested boolean NOT NULL DEFAULT false,
    register_id     bigint REFERENCES register,
    register_year   int,
    number          int,
    symbol          text,
    issued_on       date,
    issued_at       timestamptz,
    identifier      text UNIQUE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (workflow, state) REFERENCES workflow_state ON UPDATE CASCADE,
    CHECK ((urgency = 'flash_timed') = (flash_at IS NOT NULL)),
    -- incoming: where it comes from; a document delivered inside this
    -- database keeps its source, whose number, symbol and date are its own
    sender_agency_id bigint REFERENCES unit,
    sender_name     text CHECK (length(sender_name) BETWEEN 1 AND 500),
    sender_symbol   text CHECK (length(sender_symbol) BETWEEN 1 AND 100),
    sender_date     date,
    sender_year     int GENERATED ALWAYS AS (extract(year FROM sender_date)::int) STORED,
    -- no foreign key to this table (see unit.parent_id): only the delivery
    -- effect writes it, and documents are never deleted
    source_document_id bigint,
    received_at     timestamptz,
    CHECK (direction = 'incoming' OR drafter_id IS NOT NULL),
    CHECK (direction = 'incoming' OR (number IS NULL) = (symbol IS NULL))
);
CREATE INDEX document_drafter_idx ON document (drafter_id);
-- the same document of a sender registered twice by one agency (Decree 30)
CREATE UNIQUE INDEX document_incoming_once_idx
    ON document (agency_id, coalesce(sender_agency_id::text, sender_name), sender_symbol, sender_year)
    WHERE direction = 'incoming' AND sender_symbol IS NOT NULL;
CREATE UNIQUE INDEX document_delivered_once_idx ON document (agency_id, source_document_id)
    WHERE source_document_id IS NOT NULL;
CREATE INDEX document_received_at_idx ON document (received_at) WHERE direction = 'incoming';
CREATE INDEX document_agency_state_idx ON document (agency_id, state);
-- Decree 30: a number and symbol are unique within the agency and year
CREATE UNIQUE INDEX document_number_symbol_idx ON document (agency_id, register_year, number, symbol)
    WHERE number IS NOT NULL AND direction = 'outgoing';
CREATE UNIQUE INDEX document_register_number_idx ON document (register_id, number)
    WHERE number IS NOT NULL;
-- the register's usual reporting queries: by date range, by type and date
CREATE INDEX document_issued_on_idx ON document (issued_on) WHERE number IS NOT NULL;
CREATE INDEX document_type_issued_on_idx ON document (doc_type, issued_on) WHERE number IS NOT NULL;
CREATE INDEX document_agency_issued_on_idx ON document (agency_id, issued_on) WHERE number IS NOT NULL;
CREATE INDEX document_agency_type_issued_on_idx ON document (agency_id, doc_type, issued_on)
    WHERE number IS NOT NULL;
COMMENT ON TABLE document IS 'Documents (văn bản) and their Decree 30 metadata';

-- Numbers taken by external systems with take_number(): they are in the
-- register like issued documents, so the register stays gapless.
CREATE TABLE number_taken (
    register_id      bigint NOT NULL REFERENCES register,
    number           int NOT NULL,
    symbol           text NOT NULL,
    doc_type         text NOT NULL REFERENCES doc_type ON UPDATE CASCADE,
    drafting_unit_id bigint REFERENCES unit,
    taken_by         bigint NOT NULL REFERENCES person,
    taken_at         timestamptz NOT NULL DEFAULT now(),
    taken_on         date NOT NULL,         -- in ioffice.timezone: the register's date
    document_id      bigint REFERENCES document,
    PRIMARY KEY (register_id, number)
);
CREATE INDEX number_taken_taken_on_idx ON number_taken (taken_on);
COMMENT ON TABLE number_taken IS 'Register numbers taken by external systems (take_number)';

CREATE TABLE document_link (
    document_id bigint NOT NULL REFERENCES document,
    related_id  bigint NOT NULL REFERENCES document,
    PRIMARY KEY (document_id, related_id),
    CHECK (document_id <> related_id)
);
COMMENT ON TABLE document_link IS 'Related documents (văn bản liên quan)';

CREATE TABLE file (
    id            bigserial PRIMARY KEY,
    document_id   bigint NOT NULL REFERENCES document,
    name          text NOT NULL,
    kind          text NOT NULL,
    size          int NOT NULL,
    sha256        bytea NOT NULL CHECK (length(sha256) = 32),
    content       bytea NOT NULL,
    -- the file this one replaced, if any; versions form a chain (no foreign
    -- key to this table, for the reason given at unit.parent_id: only
    -- replace_file writes it, and files are never deleted)
    replaces_id   bigint,
    uploaded_by   bigint NOT NULL REFERENCES person,
    uploaded_at   timestamptz NOT NULL DEFAULT now(),
    -- set when a newer version replaced it, or when it was removed; the row
    -- stays, so the history (and what was signed) is kept
    superseded_at timestamptz,
    removed_at    timestamptz,
    removed_by    bigint REFERENCES person
);
-- compressing PDFs and zips (DOCX/XLSX) wins nothing and costs time
ALTER TABLE file ALTER COLUMN content SET STORAGE EXTERNAL;
CREATE INDEX file_current_idx ON file (document_id)
    WHERE superseded_at IS NULL AND removed_at IS NULL;
CREATE UNIQUE INDEX file_replaced_once_idx ON file (replaces_id);
COMMENT ON TABLE file IS 'Files of documents with their SHA-256; replaced and removed versions are kept';

CREATE TABLE task (
    id              bigserial PRIMARY KEY,
    document_id     bigint NOT NULL REFERENCES document,
    step            int NOT NULL,
    action          text NOT NULL,          -- the action that handed it over
    sender_id       bigint NOT NULL REFERENCES person,
    sender_for      bigint REFERENCES person,  -- sent on behalf of this person
    request         text,                   -- nội dung yêu cầu
    receiver_id     bigint NOT NULL REFERENCES person,
    received_at     timestamptz NOT NULL DEFAULT now(),
    deadline        date,
    options         jsonb NOT NULL DEFAULT '{}',
    file_ids        bigint[] NOT NULL DEFAULT '{}',
    status          text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'done')),
    processing_note text,                   -- nội dung xử lý
    processed_at    timestamptz,
    processed_by    bigint REFERENCES person,   -- differs from receiver under delegation
    closed_by_action text,
    -- main: the document's holder (one at a time); cooperate: a unit or
    -- person asked to help the lead handler (phối hợp), several at once
    kind            text NOT NULL DEFAULT 'main' CHECK (kind IN ('main', 'cooperate')),
    UNIQUE (document_id, step),
    CHECK ((status = 'done') = (processed_at IS NOT NULL))
);
-- one holder at a time: the outgoing flow is sequential
CREATE UNIQUE INDEX task_one_open_idx ON task (document_id) WHERE status = 'open' AND kind = 'main';
CREATE INDEX task_receiver_open_idx ON task (receiver_id) WHERE status = 'open';
CREATE INDEX task_sender_idx ON task (sender_id);
CREATE INDEX task_receiver_idx ON task (receiver_id);
COMMENT ON TABLE task IS 'Hand-overs of a document between people: the processing trail (quá trình xử lý)';

-- Certificates (public only: private keys stay in the worker's keystore,
-- ioffice.keystore, named here by key_file), trust anchors and CRLs.
CREATE TABLE certificate (
    id           bigserial PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('personal', 'organisation')),
    person_id    bigint REFERENCES person,
    agency_id    bigint REFERENCES unit,
    pem          text NOT NULL,
    subject      text NOT NULL,
    issuer       text NOT NULL,
    serial       text NOT NULL,
    not_before   timestamptz NOT NULL,
    not_after    timestamptz NOT NULL,
    fingerprint  bytea NOT NULL UNIQUE,
    key_file     text CHECK (key_file ~ '^[A-Za-z0-9_.-]{1,200}$' AND key_file NOT IN ('.', '..')),
    revoked_at   timestamptz,
    registered_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'personal') = (person_id IS NOT NULL)),
    CHECK ((kind = 'organisation') = (agency_id IS NOT NULL))
);
CREATE INDEX certificate_person_idx ON certificate (person_id);
CREATE INDEX certificate_agency_idx ON certificate (agency_id);
COMMENT ON TABLE certificate IS 'X.509 certificates of people and of agencies'' seals; key_file names the private key in the keystore';

CREATE TABLE trust_anchor (
    id           bigserial PRIMARY KEY,
    pem          text NOT NULL,
    subject      text NOT NULL,
    fingerprint  bytea NOT NULL UNIQUE,
    added_at     timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE trust_anchor IS 'Certificates verify() trusts (root and intermediate CAs: VGCA, public CAs)';

CREATE TABLE crl (
    id           bigserial PRIMARY KEY,
    pem          text NOT NULL,
    issuer       text NOT NULL,
    this_update  timestamptz NOT NULL,
    next_update  timestamptz,
    serials      text[] NOT NULL,
    added_at     timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE crl IS 'Certificate revocation lists verify() checks against';

CREATE TABLE signature (
    id            bigserial PRIMARY KEY,
    document_id   bigint NOT NULL REFERENCES document,
    file_id       bigint NOT NULL REFERENCES file,
    signer_id     bigint NOT NULL REFERENCES person,
    kind          text NOT NULL CHECK (kind IN ('personal', 'organisation')),
    status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed')),
    options       jsonb NOT NULL DEFAULT '{}',
    requested_at  timestamptz NOT NULL DEFAULT now(),
    signed_at     timestamptz,
    reason        text,
    certificate_id bigint REFERENCES certificate,
    cms           bytea             -- detached CMS SignedData (CAdES-BES), DER
);
CREATE INDEX signature_file_idx ON signature (file_id);
CREATE INDEX signature_document_idx ON signature (document_id);
CREATE UNIQUE INDEX signature_one_pending_idx ON signature (file_id, signer_id, kind)
    WHERE status = 'pending';
-- the worker's queue, in order
CREATE INDEX signature_pending_idx ON signature (id) WHERE status = 'pending';
-- a CMS does not compress; do not try
ALTER TABLE signature ALTER COLUMN cms SET STORAGE EXTERNAL;
COMMENT ON TABLE signature IS 'Requested and produced signatures of files';

CREATE TABLE audit (
    id            bigserial PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT now(),
    actor_id      bigint,
    on_behalf_of  bigint,
    db_role       text NOT NULL DEFAULT session_user,
    entity        text NOT NULL,
    entity_id     bigint,
    action        text NOT NULL,
    state_before  text,
    state_after   text,
    detail        jsonb NOT NULL DEFAULT '{}',
    -- tamper evidence (extension/audit.c): the record's chain ("document:42"),
    -- its position there, the previous record's hash and its own
    chain         text,
    seq           bigint CHECK (seq >= 1),
    prev_hash     bytea,
    hash          bytea,
    UNIQUE (chain, seq)
);
CREATE INDEX audit_entity_idx ON audit (entity, entity_id);
COMMENT ON TABLE audit IS 'What happened, by whom, in the same transaction as the change; append-only, hash-chained';

-- Sealed checkpoints of the chain heads (audit_seal()): what a removed tail
-- or a removed chain is found against.  hash links each to the previous one
-- and is what gets signed and published.
CREATE TABLE audit_checkpoint (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL,
    chains      int NOT NULL,
    records     bigint NOT NULL,
    root        bytea NOT NULL,
    prev_hash   bytea,
    hash        bytea NOT NULL,
    signature   bytea
);
CREATE TABLE audit_checkpoint_head (
    checkpoint_id bigint NOT NULL REFERENCES audit_checkpoint,
    chain       text NOT NULL,
    seq         bigint NOT NULL,
    hash        bytea NOT NULL,
    PRIMARY KEY (checkpoint_id, chain)
);
CREATE INDEX audit_checkpoint_head_chain_idx ON audit_checkpoint_head (chain, checkpoint_id);

-- ---------------------------------------------------------------------------
-- pg_dump: user data is dumped with the data of the extension's tables.
-- Rows the install script creates (builtin) are made again by CREATE
-- EXTENSION on restore, so only the others are dumped.
-- ---------------------------------------------------------------------------
SELECT pg_catalog.pg_extension_config_dump('unit', '');
SELECT pg_catalog.pg_extension_config_dump('unit_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('person', '');
SELECT pg_catalog.pg_extension_config_dump('person_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('person_role', '');
SELECT pg_catalog.pg_extension_config_dump('delegation', '');
SELECT pg_catalog.pg_extension_config_dump('delegation_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('doc_type', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('workflow', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('workflow_state', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('workflow_transition', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('register', '');
SELECT pg_catalog.pg_extension_config_dump('register_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('document', '');
SELECT pg_catalog.pg_extension_config_dump('document_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('document_link', '');
SELECT pg_catalog.pg_extension_config_dump('number_taken', '');
SELECT pg_catalog.pg_extension_config_dump('file', '');
SELECT pg_catalog.pg_extension_config_dump('file_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('task', '');
SELECT pg_catalog.pg_extension_config_dump('task_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('signature', '');
SELECT pg_catalog.pg_extension_config_dump('certificate', '');
SELECT pg_catalog.pg_extension_config_dump('certificate_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('trust_anchor', '');
SELECT pg_catalog.pg_extension_config_dump('trust_anchor_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('crl', '');
SELECT pg_catalog.pg_extension_config_dump('crl_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('signature_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('audit', '');
SELECT pg_catalog.pg_extension_config_dump('audit_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('audit_checkpoint', '');
SELECT pg_catalog.pg_extension_config_dump('audit_checkpoint_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('audit_checkpoint_head', '');

-- ---------------------------------------------------------------------------
-- C functions: identity, audit, files, workflow
-- ---------------------------------------------------------------------------

CREATE FUNCTION actor() RETURNS bigint
    AS 'MODULE_PATHNAME', 'ioffice_actor'
    LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION actor() IS 'The person acting in this transaction (ioffice.actor for ioffice_app members, else session_user)';

-- Like actor(), but NULL instead of an error: for row-level security, where
-- "nobody" must simply see nothing.
CREATE FUNCTION current_person() RETURNS bigint
    AS 'MODULE_PATHNAME', 'ioffice_current_person'
    LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION _audit(entity text, entity_id bigint, action text,
                       state_before text, state_after text, detail jsonb,
                       on_behalf_of bigint DEFAULT NULL, chain text DEFAULT NULL)
    RETURNS void
    AS 'MODULE_PATHNAME', 'ioffice_audit_sql'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION _audit(text, bigint, text, text, text, jsonb, bigint, text) FROM PUBLIC;

-- the extension's own plpgsql functions mark the changes they make, so the
-- triggers that catch changes made by hand leave them alone
CREATE FUNCTION _engine_enter() RETURNS void
    AS 'MODULE_PATHNAME', 'ioffice_engine_enter_sql' LANGUAGE C VOLATILE;
CREATE FUNCTION _engine_leave() RETURNS void
    AS 'MODULE_PATHNAME', 'ioffice_engine_leave_sql' LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION _engine_enter() FROM PUBLIC;
REVOKE ALL ON FUNCTION _engine_leave() FROM PUBLIC;

CREATE FUNCTION audit_verify(entity text DEFAULT NULL, entity_id bigint DEFAULT NULL)
    RETURNS TABLE (audit_id bigint, problem text)
    AS 'MODULE_PATHNAME', 'ioffice_audit_verify'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION audit_verify(text, bigint) IS
  'Every problem found in the audit trail (all of it, or the chains of one entity); no rows means intact';
CREATE FUNCTION audit_seal() RETURNS bigint
    AS 'MODULE_PATHNAME', 'ioffice_audit_seal'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION audit_seal() IS
  'Writes a checkpoint of the audit chain heads that moved since the last one; returns its id';
REVOKE ALL ON FUNCTION audit_verify(text, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION audit_seal() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_verify(text, bigint) TO ioffice_admin;
GRANT EXECUTE ON FUNCTION audit_seal() TO ioffice_admin;

-- append-only, for everyone, the owner included
CREATE FUNCTION _audit_append_only() RETURNS trigger
    AS 'MODULE_PATHNAME', 'ioffice_audit_append_only' LANGUAGE C;
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION _audit_append_only();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_append_only();
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON audit_checkpoint
    FOR EACH ROW EXECUTE FUNCTION _audit_append_only();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON audit_checkpoint
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_append_only();
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON audit_checkpoint_head
    FOR EACH ROW EXECUTE FUNCTION _audit_append_only();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON audit_checkpoint_head
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_append_only();

-- changes made by hand to the core tables are audited as such
CREATE FUNCTION _audit_direct() RETURNS trigger
    AS 'MODULE_PATHNAME', 'ioffice_audit_direct' LANGUAGE C
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
CREATE TRIGGER audit_direct AFTER INSERT OR UPDATE OR DELETE ON document
    FOR EACH ROW EXECUTE FUNCTION _audit_direct('id');
CREATE TRIGGER audit_direct AFTER INSERT OR UPDATE OR DELETE ON file
    FOR EACH ROW EXECUTE FUNCTION _audit_direct('document_id');
CREATE TRIGGER audit_direct AFTER INSERT OR UPDATE OR DELETE ON task
    FOR EACH ROW EXECUTE FUNCTION _audit_direct('document_id');
CREATE TRIGGER audit_direct AFTER INSERT OR UPDATE OR DELETE ON signature
    FOR EACH ROW EXECUTE FUNCTION _audit_direct('document_id');
CREATE TRIGGER audit_direct AFTER INSERT OR UPDATE OR DELETE ON document_link
    FOR EACH ROW EXECUTE FUNCTION _audit_direct('document_id');
CREATE TRIGGER audit_direct AFTER INSERT OR UPDATE OR DELETE ON register
    FOR EACH ROW EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct AFTER INSERT OR UPDATE OR DELETE ON number_taken
    FOR EACH ROW EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct AFTER INSERT OR UPDATE OR DELETE ON unit
    FOR EACH ROW EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct AFTER INSERT OR UPDATE OR DELETE ON person
    FOR EACH ROW EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct AFTER INSERT OR UPDATE OR DELETE ON person_role
    FOR EACH ROW EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct AFTER INSERT OR UPDATE OR DELETE ON delegation
    FOR EACH ROW EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct_truncate AFTER TRUNCATE ON document
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct_truncate AFTER TRUNCATE ON file
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct_truncate AFTER TRUNCATE ON task
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct_truncate AFTER TRUNCATE ON register
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_direct();

CREATE FUNCTION timezone() RETURNS text
    AS 'MODULE_PATHNAME', 'ioffice_timezone'
    LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION timezone() IS 'The time zone of calendar dates and years (setting ioffice.timezone)';

CREATE FUNCTION file_kind(content bytea) RETURNS text
    AS 'MODULE_PATHNAME', 'ioffice_file_kind'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION file_kind(bytea) IS 'The type of a file recognised from its bytes: pdf, docx, xlsx, doc, xls, zip, ole2 or NULL';

CREATE FUNCTION attach(doc bigint, file_name text, content bytea) RETURNS bigint
    AS 'MODULE_PATHNAME', 'ioffice_attach'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION replace_file(file bigint, file_name text, content bytea) RETURNS bigint
    AS 'MODULE_PATHNAME', 'ioffice_replace_file'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION remove_file(file bigint) RETURNS void
    AS 'MODULE_PATHNAME', 'ioffice_remove_file'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION act(doc bigint, action text, to_login text DEFAULT NULL,
                    note text DEFAULT NULL, options jsonb DEFAULT '{}')
    RETURNS text
    AS 'MODULE_PATHNAME', 'ioffice_act'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION act(bigint, text, text, text, jsonb) IS 'Performs one workflow action on a document and returns its new state';

CREATE FUNCTION format_number(number int) RETURNS text
    AS 'MODULE_PATHNAME', 'ioffice_format_number'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION format_number(int) IS 'A register number as Decree 30 writes it: two digits at least (01…09, 10, 100)';

CREATE FUNCTION take_number(register bigint, doc_type text, drafting_unit bigint DEFAULT NULL)
    RETURNS TABLE (number int, symbol text)
    AS 'MODULE_PATHNAME', 'ioffice_take_number'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION take_number(bigint, text, bigint) IS
  'The next number of a register and its symbol, for an external system; the number belongs to the caller''s transaction';

CREATE FUNCTION _take_arrival(doc bigint, register bigint DEFAULT NULL) RETURNS int
    AS 'MODULE_PATHNAME', 'ioffice_take_arrival_sql'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION _take_arrival(bigint, bigint) FROM PUBLIC;

CREATE FUNCTION build_symbol(number int, doc_type text, agency bigint, drafting_unit bigint)
    RETURNS text
    AS 'MODULE_PATHNAME', 'ioffice_build_symbol'
    LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION build_symbol(int, text, bigint, bigint) IS 'The Decree 30 number and symbol: 15/QĐ-UBND, or 05/UBND-VP for công văn';

-- rule tables: names checked on write, graph checked at commit, caches dropped
CREATE FUNCTION _rule_check_names() RETURNS trigger
    AS 'MODULE_PATHNAME', 'ioffice_rule_check_names' LANGUAGE C;
CREATE FUNCTION _rule_check_graph() RETURNS trigger
    AS 'MODULE_PATHNAME', 'ioffice_rule_check_graph' LANGUAGE C;
CREATE FUNCTION _rule_invalidate() RETURNS trigger
    AS 'MODULE_PATHNAME', 'ioffice_rule_invalidate' LANGUAGE C;
CREATE FUNCTION _rule_audit() RETURNS trigger
    AS 'MODULE_PATHNAME', 'ioffice_rule_audit' LANGUAGE C SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION guards() RETURNS SETOF text
    AS 'MODULE_PATHNAME', 'ioffice_list_guards' LANGUAGE C IMMUTABLE;
COMMENT ON FUNCTION guards() IS 'Names of the guards a workflow_transition may list';
CREATE FUNCTION effects() RETURNS SETOF text
    AS 'MODULE_PATHNAME', 'ioffice_list_effects' LANGUAGE C IMMUTABLE;
COMMENT ON FUNCTION effects() IS 'Names of the effects a workflow_transition may list';

CREATE FUNCTION options(OUT name text, OUT type text) RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'ioffice_list_options' LANGUAGE C IMMUTABLE;
COMMENT ON FUNCTION options() IS 'Option keys a workflow_transition may accept, with their JSON types';

CREATE TRIGGER check_names BEFORE INSERT OR UPDATE ON workflow_transition
    FOR EACH ROW EXECUTE FUNCTION _rule_check_names();
CREATE CONSTRAINT TRIGGER check_graph AFTER INSERT OR UPDATE OR DELETE ON workflow_state
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION _rule_check_graph();
CREATE CONSTRAINT TRIGGER check_graph AFTER INSERT OR UPDATE OR DELETE ON workflow_transition
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION _rule_check_graph();
CREATE TRIGGER invalidate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON workflow
    FOR EACH STATEMENT EXECUTE FUNCTION _rule_invalidate();
CREATE TRIGGER invalidate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON workflow_state
    FOR EACH STATEMENT EXECUTE FUNCTION _rule_invalidate();
CREATE TRIGGER invalidate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON workflow_transition
    FOR EACH STATEMENT EXECUTE FUNCTION _rule_invalidate();

-- ---------------------------------------------------------------------------
-- The default outgoing workflow (API.md)
-- ---------------------------------------------------------------------------

INSERT INTO workflow (name, label, builtin) VALUES ('outgoing', 'Văn bản đi', true);
INSERT INTO workflow_state (workflow, state, label, initial, final, builtin) VALUES
    ('outgoing', 'draft',          'Dự thảo',            true,  false, true),
    ('outgoing', 'reviewing',      'Chờ duyệt',          false, false, true),
    ('outgoing', 'returned',       'Chờ chuyên viên xử lý', false, false, true),
    ('outgoing', 'awaiting_issue', 'Chờ văn thư phát hành', false, false, true),
    ('outgoing', 'issued',         'Đã phát hành',       false, true,  true),
    ('outgoing', 'completed',      'Hoàn tất',           false, true,  true);

INSERT INTO workflow_transition
    (workflow, action, from_state, to_state, label, taken_by, receiver, receiver_role,
     guards, effects, options, delegable, builtin)
VALUES
    ('outgoing', 'submit', 'draft', 'reviewing', 'Chuyển lãnh đạo', 'drafter', 'given', 'leader',
     '{has_file}', '{request_signature}',
     '{request_signature,sms,email,submission_slip,deadline}', false, true),
    ('outgoing', 'submit', 'returned', 'reviewing', 'Chuyển lãnh đạo', 'drafter', 'given', 'leader',
     '{has_file}', '{request_signature}',
     '{request_signature,sms,email,submission_slip,deadline}', false, true),
    ('outgoing', 'forward', 'reviewing', 'reviewing', 'Chuyển lãnh đạo khác', 'holder', 'given', 'leader',
     '{receiver_not_actor}', '{request_signature}',
     '{request_signature,sms,email,submission_slip,deadline}', true, true),
    ('outgoing', 'return', 'reviewing', 'returned', 'Chuyển chuyên viên', 'holder', 'drafter', NULL,
     '{}', '{}', '{sms,email,deadline}', true, true),
    ('outgoing', 'return', 'awaiting_issue', 'returned', 'Chuyển chuyên viên', 'holder', 'drafter', NULL,
     '{}', '{}', '{sms,email,deadline}', false, true),
    ('outgoing', 'sign', 'reviewing', 'reviewing', 'Ký số', 'holder', 'none', NULL,
     '{has_file}', '{queue_signatures}', '{mode,page,x,y}', false, true),
    ('outgoing', 'approve', 'reviewing', 'awaiting_issue', 'Duyệt', 'holder', 'given', 'clerk',
     '{own_signature}', '{}', '{sms,email,submission_slip,deadline}', true, true),
    ('outgoing', 'quick_approve', 'reviewing', 'awaiting_issue', 'Duyệt nhanh', 'holder', 'default_clerk', NULL,
     '{own_signature}', '{}', '{sms,email,deadline}', true, true),
    ('outgoing', 'complete', 'reviewing', 'completed', 'Hoàn tất', 'holder', 'none', NULL,
     '{}', '{}', '{}', true, true),
    ('outgoing', 'issue', 'awaiting_issue', 'issued', 'Phát hành', 'holder', 'none', NULL,
     '{has_file}', '{queue_seal,deliver_internal,number_and_issue}', '{register}', false, true);

-- The incoming workflow (văn bản đến): a document arrives (delivered by
-- another agency of this database) or is registered by the clerk with its
-- arrival number; a leader assigns a lead handler (chủ trì) and cooperating
-- ones (phối hợp), each with a deadline; the lead completes it.
INSERT INTO workflow (name, label, builtin) VALUES ('incoming', 'Văn bản đến', true);
INSERT INTO workflow_state (workflow, state, label, initial, final, builtin) VALUES
    ('incoming', 'received',            'Chờ vào sổ',        true,  false, true),
    ('incoming', 'registered',          'Đã vào sổ',         false, false, true),
    ('incoming', 'awaiting_assignment', 'Chờ lãnh đạo phân công', false, false, true),
    ('incoming', 'returned',            'Trả lại văn thư',   false, false, true),
    ('incoming', 'in_progress',         'Đang xử lý',        false, false, true),
    ('incoming', 'processed',           'Đã xử lý',          false, true,  true);

INSERT INTO workflow_transition
    (workflow, action, from_state, to_state, label, taken_by, receiver, receiver_role,
     guards, effects, options, delegable, builtin)
VALUES
    ('incoming', 'register', 'received', 'registered', 'Vào sổ văn bản đến', 'clerk', 'none', NULL,
     '{}', '{register_arrival}', '{register}', false, true),
    ('incoming', 'submit', 'registered', 'awaiting_assignment', 'Trình lãnh đạo', 'drafter', 'given', 'leader',
     '{}', '{}', '{sms,email,deadline}', false, true),
    ('incoming', 'submit', 'returned', 'awaiting_assignment', 'Trình lãnh đạo', 'drafter', 'given', 'leader',
     '{}', '{}', '{sms,email,deadline}', false, true),
    ('incoming', 'return', 'awaiting_assignment', 'returned', 'Trả lại văn thư', 'holder', 'drafter', NULL,
     '{}', '{}', '{sms,email}', true, true),
    ('incoming', 'assign', 'awaiting_assignment', 'in_progress', 'Phân công xử lý', 'holder', 'given', NULL,
     '{receiver_not_actor}', '{assign_cooperators}', '{deadline,cooperate,sms,email}', true, true),
    ('incoming', 'cooperated', 'in_progress', 'in_progress', 'Hoàn thành phối hợp', 'cooperator', 'none', NULL,
     '{}', '{close_own_cooperation}', '{}', false, true),
    ('incoming', 'complete', 'in_progress', 'processed', 'Hoàn thành xử lý', 'holder', 'none', NULL,
     '{}', '{close_cooperation}', '{}', false, true),
    ('incoming', 'file', 'returned', 'processed', 'Lưu, không xử lý', 'drafter', 'none', NULL,
     '{}', '{}', '{}', false, true);

-- from here on, rule edits are a DBA's and are audited (the install
-- script's own rows above are not)
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON workflow_state
    FOR EACH ROW EXECUTE FUNCTION _rule_audit();
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON workflow_transition
    FOR EACH ROW EXECUTE FUNCTION _rule_audit();

-- ---------------------------------------------------------------------------
-- Directory functions
-- ---------------------------------------------------------------------------

CREATE FUNCTION add_agency(name text, abbr text, code text DEFAULT NULL, parent bigint DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id bigint;
    v_year int := extract(year FROM now() AT TIME ZONE ioffice.timezone());
BEGIN
    PERFORM ioffice._engine_enter();
    IF name IS NULL OR abbr IS NULL THEN
        RAISE EXCEPTION 'agency name and abbreviation are required'
            USING ERRCODE = '22023';
    END IF;
    IF code IS NOT NULL AND code !~ '^[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}$' THEN
        RAISE EXCEPTION 'agency code "%" is not of the form DDD.DD.DD.LDD', code
            USING ERRCODE = '22023',
                  HINT = 'QCVN 102:2016 agency identifiers look like 000.00.32.H41.';
    END IF;
    IF abbr !~ '^[^\s/,]{1,20}$' THEN
        RAISE EXCEPTION 'abbreviation "%" must be 1 to 20 characters without spaces, "/" or ","', abbr
            USING ERRCODE = '22023';
    END IF;
    IF length(name) NOT BETWEEN 1 AND 500 THEN
        RAISE EXCEPTION 'agency name must be 1 to 500 characters' USING ERRCODE = '22023';
    END IF;
    IF parent IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ioffice.unit u WHERE u.id = parent) THEN
        RAISE EXCEPTION 'unknown parent unit %', parent USING ERRCODE = '42704';
    END IF;
    IF code IS NOT NULL AND EXISTS (SELECT 1 FROM ioffice.unit u WHERE u.code = add_agency.code) THEN
        RAISE EXCEPTION 'an agency with code % already exists', code USING ERRCODE = '23505';
    END IF;

    v_id := nextval('ioffice.unit_id_seq');
    INSERT INTO ioffice.unit (id, parent_id, kind, code, name, abbr, agency_id)
    VALUES (v_id, parent, 'agency', code, name, abbr, v_id);

    -- a new agency can issue at once
    INSERT INTO ioffice.register (agency_id, direction, code, name, doc_types, confidential,
                                  symbol_suffix, year)
    VALUES (v_id, 'outgoing', 'outgoing', 'Sổ văn bản đi', NULL, false, NULL, v_year),
           (v_id, 'outgoing', 'outgoing_secret', 'Sổ văn bản đi mật', NULL, true, 'M', v_year),
           (v_id, 'incoming', 'incoming', 'Sổ văn bản đến', NULL, false, NULL, v_year);

    PERFORM ioffice._audit('unit', v_id, 'add_agency', NULL, NULL,
                           jsonb_build_object('name', name, 'abbr', abbr, 'code', code, 'parent', parent));
    PERFORM ioffice._engine_leave();
    RETURN v_id;
END
$$;

CREATE FUNCTION add_department(agency bigint, name text, abbr text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id bigint;
    v_agency bigint;
BEGIN
    PERFORM ioffice._engine_enter();
    IF agency IS NULL OR name IS NULL OR abbr IS NULL THEN
        RAISE EXCEPTION 'agency, name and abbreviation are required' USING ERRCODE = '22023';
    END IF;
    SELECT u.agency_id INTO v_agency FROM ioffice.unit u WHERE u.id = agency;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown unit %', agency USING ERRCODE = '42704';
    END IF;
    IF abbr !~ '^[^\s/,]{1,20}$' THEN
        RAISE EXCEPTION 'abbreviation "%" must be 1 to 20 characters without spaces, "/" or ","', abbr
            USING ERRCODE = '22023';
    END IF;
    IF length(name) NOT BETWEEN 1 AND 500 THEN
        RAISE EXCEPTION 'department name must be 1 to 500 characters' USING ERRCODE = '22023';
    END IF;
    INSERT INTO ioffice.unit (parent_id, kind, name, abbr, agency_id)
    VALUES (agency, 'department', name, abbr, v_agency)
    RETURNING id INTO v_id;
    PERFORM ioffice._audit('unit', v_id, 'add_department', NULL, NULL,
                           jsonb_build_object('name', name, 'abbr', abbr, 'parent', agency));
    PERFORM ioffice._engine_leave();
    RETURN v_id;
END
$$;

CREATE FUNCTION add_person(login text, full_name text, "position" text, unit bigint, roles text[])
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id bigint;
    v_agency bigint;
    v_role text;
BEGIN
    PERFORM ioffice._engine_enter();
    IF login IS NULL OR full_name IS NULL OR unit IS NULL THEN
        RAISE EXCEPTION 'login, full name and unit are required' USING ERRCODE = '22023';
    END IF;
    IF login !~ '^[A-Za-z0-9_.@-]{1,63}$' THEN
        RAISE EXCEPTION 'login "%" must be 1 to 63 letters, digits or _ . @ -', login
            USING ERRCODE = '22023';
    END IF;
    IF length(full_name) NOT BETWEEN 1 AND 200 OR length(add_person."position") > 200 THEN
        RAISE EXCEPTION 'full name must be 1 to 200 characters, position at most 200'
            USING ERRCODE = '22023';
    END IF;
    SELECT u.agency_id INTO v_agency FROM ioffice.unit u WHERE u.id = unit;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown unit %', unit USING ERRCODE = '42704';
    END IF;
    IF EXISTS (SELECT 1 FROM ioffice.person p WHERE p.login = add_person.login) THEN
        RAISE EXCEPTION 'a person with login "%" already exists', login USING ERRCODE = '23505';
    END IF;
    FOREACH v_role IN ARRAY coalesce(roles, '{}') LOOP
        IF v_role IS NULL OR v_role !~ '^[a-z_]{1,32}$' THEN
            RAISE EXCEPTION 'role "%" is not a role name', v_role USING ERRCODE = '22023',
                  HINT = 'Roles are specialist, leader, clerk, one_stop, admin, or one a workflow names.';
        END IF;
    END LOOP;

    INSERT INTO ioffice.person (login, full_name, "position", unit_id)
    VALUES (login, full_name, add_person."position", unit)
    RETURNING id INTO v_id;
    -- a clerk or one-stop officer serves the whole agency; other roles the unit
    INSERT INTO ioffice.person_role (person_id, role, unit_id)
    SELECT DISTINCT v_id, r,
           CASE WHEN r IN ('clerk', 'one_stop', 'admin') THEN v_agency ELSE unit END
    FROM unnest(coalesce(roles, '{}')) AS r;
    PERFORM ioffice._audit('person', v_id, 'add_person', NULL, NULL,
                           jsonb_build_object('login', login, 'unit', unit, 'roles', roles));
    PERFORM ioffice._engine_leave();
    RETURN v_id;
END
$$;

REVOKE ALL ON FUNCTION add_agency(text, text, text, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION add_department(bigint, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION add_person(text, text, text, bigint, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION add_agency(text, text, text, bigint) TO ioffice_admin;
GRANT EXECUTE ON FUNCTION add_department(bigint, text, text) TO ioffice_admin;
GRANT EXECUTE ON FUNCTION add_person(text, text, text, bigint, text[]) TO ioffice_admin;

CREATE FUNCTION delegate(to_login text, valid_from timestamptz, valid_until timestamptz)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_from bigint := ioffice.actor();
    v_to bigint;
    v_id bigint;
BEGIN
    PERFORM ioffice._engine_enter();
    IF to_login IS NULL OR valid_from IS NULL OR valid_until IS NULL THEN
        RAISE EXCEPTION 'delegate needs a person and a period' USING ERRCODE = '22023';
    END IF;
    IF valid_until <= valid_from THEN
        RAISE EXCEPTION 'the delegation must end after it starts' USING ERRCODE = '22023';
    END IF;
    IF isfinite(valid_from) IS NOT TRUE OR isfinite(valid_until) IS NOT TRUE THEN
        RAISE EXCEPTION 'a delegation is for a finite period' USING ERRCODE = '22023',
              HINT = 'Decree 30 authorisations are time-limited.';
    END IF;
    SELECT p.id INTO v_to FROM ioffice.person p WHERE p.login = to_login AND p.active;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown person "%"', to_login USING ERRCODE = '42704';
    END IF;
    IF v_to = v_from THEN
        RAISE EXCEPTION 'a person cannot delegate to themselves' USING ERRCODE = '22023';
    END IF;
    INSERT INTO ioffice.delegation (from_person, to_person, valid_from, valid_until)
    VALUES (v_from, v_to, valid_from, valid_until)
    RETURNING id INTO v_id;
    PERFORM ioffice._audit('delegation', v_id, 'delegate', NULL, NULL,
                           jsonb_build_object('to', to_login, 'valid_from', valid_from,
                                              'valid_until', valid_until));
    PERFORM ioffice._engine_leave();
    RETURN v_id;
END
$$;

-- ---------------------------------------------------------------------------
-- Documents
-- ---------------------------------------------------------------------------

-- The details a function accepts: spec maps each key to its JSON type.
CREATE FUNCTION _check_details(details jsonb, spec jsonb) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_key text;
    v_type text;
BEGIN
    IF jsonb_typeof(details) <> 'object' THEN
        RAISE EXCEPTION 'details must be a JSON object' USING ERRCODE = '22023';
    END IF;
    FOR v_key, v_type IN SELECT k, jsonb_typeof(v) FROM jsonb_each(details) AS e(k, v) LOOP
        CONTINUE WHEN v_type = 'null';
        IF NOT spec ? v_key THEN
            RAISE EXCEPTION 'unknown detail "%"', v_key USING ERRCODE = '22023',
                  HINT = 'Details are ' || (SELECT string_agg(k, ', ' ORDER BY k)
                                            FROM jsonb_object_keys(spec) AS k) || '.';
        END IF;
        IF spec->>v_key <> v_type THEN
            RAISE EXCEPTION 'details.% must be a%', v_key,
                  CASE spec->>v_key WHEN 'array' THEN 'n array' ELSE ' ' || (spec->>v_key) END
                USING ERRCODE = '22023';
        END IF;
    END LOOP;
END
$$;

-- A whole number detail in [lo, hi], or NULL when absent.
CREATE FUNCTION _whole_detail(details jsonb, key text, lo numeric, hi numeric) RETURNS numeric
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v numeric;
BEGIN
    IF jsonb_typeof(details->key) IS DISTINCT FROM 'number' THEN
        RETURN NULL;
    END IF;
    v := (details->>key)::numeric;
    IF v NOT BETWEEN lo AND hi OR v <> trunc(v) THEN
        RAISE EXCEPTION 'details.% must be a whole number from % to %', key, lo, hi
            USING ERRCODE = '22023';
    END IF;
    RETURN v;
END
$$;
REVOKE ALL ON FUNCTION _check_details(jsonb, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION _whole_detail(jsonb, text, numeric, numeric) FROM PUBLIC;

CREATE FUNCTION create_outgoing(doc_type text, abstract text, details jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor bigint := ioffice.actor();
    v_unit bigint;
    v_agency bigint;
    v_state text;
    v_signer bigint;
    v_id bigint;
    v_related bigint[];
    v_item jsonb;
    v_recipients jsonb := '[]';
    v_details jsonb := coalesce(details, '{}');
    v_urgency text;
    v_conf text;
    v_flash_at timestamptz;
    v_due date;
    v_pages int;
    v_copies int;
BEGIN
    PERFORM ioffice._engine_enter();
    IF doc_type IS NULL OR abstract IS NULL THEN
        RAISE EXCEPTION 'a document needs a type and an abstract' USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ioffice.doc_type t WHERE t.code = create_outgoing.doc_type) THEN
        RAISE EXCEPTION 'unknown document type "%"', doc_type USING ERRCODE = '42704',
              HINT = 'Document types are the codes of table ioffice.doc_type (CV, QĐ, KH, BC, TB, TTr, GM, …).';
    END IF;
    IF length(btrim(abstract)) = 0 OR length(abstract) > 500 THEN
        RAISE EXCEPTION 'the abstract must be 1 to 500 characters (it has %)', length(abstract)
            USING ERRCODE = '22023';
    END IF;
    PERFORM ioffice._check_details(v_details,
        '{"urgency": "string", "flash_at": "string", "confidentiality": "string", "field": "string",
          "signer": "string", "comment": "string", "due_date": "string", "page_count": "number",
          "copies": "number", "recipients": "array", "related": "array"}');

    v_urgency := coalesce(v_details->>'urgency', 'normal');
    IF v_urgency NOT IN ('normal', 'urgent', 'very_urgent', 'flash', 'flash_timed') THEN
        RAISE EXCEPTION 'unknown urgency "%"', v_urgency USING ERRCODE = '22023',
              HINT = 'Urgency is normal, urgent, very_urgent, flash or flash_timed.';
    END IF;
    IF v_urgency = 'flash_timed' THEN
        IF v_details->>'flash_at' IS NULL THEN
            RAISE EXCEPTION 'urgency flash_timed needs details.flash_at' USING ERRCODE = '22023';
        END IF;
        BEGIN
            v_flash_at := (v_details->>'flash_at')::timestamptz;
        EXCEPTION WHEN others THEN
            RAISE EXCEPTION 'details.flash_at "%" is not a time', v_details->>'flash_at'
                USING ERRCODE = '22023';
        END;
    ELSIF v_details->>'flash_at' IS NOT NULL THEN
        RAISE EXCEPTION 'details.flash_at only goes with urgency flash_timed' USING ERRCODE = '22023';
    END IF;
    v_conf := coalesce(v_details->>'confidentiality', 'normal');
    IF v_conf NOT IN ('normal', 'confidential', 'secret', 'top_secret') THEN
        RAISE EXCEPTION 'unknown confidentiality "%"', v_conf USING ERRCODE = '22023',
              HINT = 'Confidentiality is normal, confidential, secret or top_secret.';
    END IF;
    IF length(v_details->>'field') > 200 THEN
        RAISE EXCEPTION 'details.field must be at most 200 characters' USING ERRCODE = '22023';
    END IF;
    IF length(v_details->>'comment') > 2000 THEN
        RAISE EXCEPTION 'details.comment must be at most 2000 characters' USING ERRCODE = '22023';
    END IF;
    v_pages := ioffice._whole_detail(v_details, 'page_count', 1, 100000);
    v_copies := ioffice._whole_detail(v_details, 'copies', 1, 100000);
    IF v_details->>'due_date' IS NOT NULL THEN
        BEGIN
            v_due := (v_details->>'due_date')::date;
        EXCEPTION WHEN others THEN
            RAISE EXCEPTION 'details.due_date "%" is not a date', v_details->>'due_date'
                USING ERRCODE = '22023';
        END;
    END IF;
    IF v_details->>'signer' IS NOT NULL THEN
        SELECT p.id INTO v_signer FROM ioffice.person p
        WHERE p.login = v_details->>'signer' AND p.active;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'unknown signer "%"', v_details->>'signer' USING ERRCODE = '42704';
        END IF;
    END IF;
    IF jsonb_typeof(v_details->'recipients') = 'array' THEN
        FOR v_item IN SELECT jsonb_array_elements(v_details->'recipients') LOOP
            IF jsonb_typeof(v_item) <> 'string' OR length(v_item #>> '{}') NOT BETWEEN 1 AND 500 THEN
                RAISE EXCEPTION 'each recipient must be an agency code or a place of 1 to 500 characters'
                    USING ERRCODE = '22023';
            END IF;
            -- an agency of this database is kept with its id, a free-text place as text
            v_recipients := v_recipients || jsonb_build_array(
                coalesce((SELECT jsonb_build_object('agency', u.id, 'code', u.code, 'name', u.name)
                          FROM ioffice.unit u
                          WHERE u.code = v_item #>> '{}' AND u.kind = 'agency'),
                         jsonb_build_object('place', v_item #>> '{}')));
        END LOOP;
    END IF;
    IF jsonb_typeof(v_details->'related') = 'array' THEN
        FOR v_item IN SELECT jsonb_array_elements(v_details->'related') LOOP
            IF jsonb_typeof(v_item) <> 'number'
               OR (v_item #>> '{}')::numeric <> trunc((v_item #>> '{}')::numeric)
               OR (v_item #>> '{}')::numeric NOT BETWEEN 1 AND 9223372036854775807 THEN
                RAISE EXCEPTION 'each related document must be a document id' USING ERRCODE = '22023';
            END IF;
            IF NOT ioffice.can_see((v_item #>> '{}')::bigint) THEN
                RAISE EXCEPTION 'unknown related document %', v_item #>> '{}' USING ERRCODE = '42704';
            END IF;
            v_related := v_related || (v_item #>> '{}')::bigint;
        END LOOP;
    END IF;

    SELECT p.unit_id, u.agency_id INTO v_unit, v_agency
    FROM ioffice.person p JOIN ioffice.unit u ON u.id = p.unit_id
    WHERE p.id = v_actor;
    SELECT s.state INTO v_state FROM ioffice.workflow_state s
    WHERE s.workflow = 'outgoing' AND s.initial
    ORDER BY s.state LIMIT 1;

    INSERT INTO ioffice.document (workflow, doc_type, abstract, state, urgency, flash_at,
                                  confidentiality, field, agency_id, drafting_unit_id, drafter_id,
                                  signer_id, page_count, copies, recipients, due_date, comment)
    VALUES ('outgoing', create_outgoing.doc_type, create_outgoing.abstract, v_state, v_urgency,
            v_flash_at, v_conf, v_details->>'field', v_agency, v_unit, v_actor, v_signer,
            v_pages, v_copies, v_recipients, v_due, v_details->>'comment')
    RETURNING id INTO v_id;
    INSERT INTO ioffice.document_link (document_id, related_id)
    SELECT DISTINCT v_id, r FROM unnest(v_related) AS r;
    PERFORM ioffice._audit('document', v_id, 'create', NULL, v_state,
                           jsonb_build_object('doc_type', create_outgoing.doc_type,
                                              'abstract', create_outgoing.abstract,
                                              'details', v_details));
    PERFORM ioffice._engine_leave();
    RETURN v_id;
END
$$;

CREATE FUNCTION link_documents(doc bigint, related bigint) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor bigint := ioffice.actor();
BEGIN
    PERFORM ioffice._engine_enter();
    IF doc IS NULL OR related IS NULL THEN
        RAISE EXCEPTION 'link_documents needs two documents' USING ERRCODE = '22023';
    END IF;
    IF NOT ioffice.can_see(doc) THEN
        RAISE EXCEPTION 'unknown document %', doc USING ERRCODE = '42704';
    END IF;
    IF NOT ioffice.can_see(related) THEN
        RAISE EXCEPTION 'unknown document %', related USING ERRCODE = '42704';
    END IF;
    IF doc = related THEN
        RAISE EXCEPTION 'a document cannot be related to itself' USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ioffice.document d WHERE d.id = doc AND d.drafter_id = v_actor)
       AND NOT EXISTS (SELECT 1 FROM ioffice.task t
                       WHERE t.document_id = doc AND t.status = 'open' AND t.receiver_id = v_actor) THEN
        RAISE EXCEPTION 'only the drafter or the current holder may link documents'
            USING ERRCODE = '42501';
    END IF;
    INSERT INTO ioffice.document_link (document_id, related_id) VALUES (doc, related)
    ON CONFLICT DO NOTHING;
    PERFORM ioffice._audit('document', doc, 'link', NULL, NULL,
                           jsonb_build_object('related', related));
    PERFORM ioffice._engine_leave();
END
$$;

-- The clerk registers a document received on paper or by e-mail (vào sổ
-- văn bản đến): it gets the next arrival number of the agency's incoming
-- register.  Documents delivered by agencies of this database arrive by
-- themselves and are registered with act(doc, 'register').
CREATE FUNCTION register_incoming(doc_type text, abstract text, sender text, sender_symbol text,
                                  sender_date date, details jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_actor bigint := ioffice.actor();
    v_agency bigint;
    v_sender_agency bigint;
    v_sender_name text;
    v_details jsonb := coalesce(details, '{}');
    v_urgency text;
    v_conf text;
    v_due date;
    v_received timestamptz := now();
    v_register bigint;
    v_pages int;
    v_existing bigint;
    v_id bigint;
    v_number int;
BEGIN
    PERFORM ioffice._engine_enter();
    IF doc_type IS NULL OR abstract IS NULL OR sender IS NULL OR sender_symbol IS NULL
       OR sender_date IS NULL THEN
        RAISE EXCEPTION 'an incoming document needs its type, abstract, sender, the sender''s number and symbol, and its date'
            USING ERRCODE = '22023';
    END IF;
    SELECT u.agency_id INTO v_agency FROM ioffice.person p JOIN ioffice.unit u ON u.id = p.unit_id
    WHERE p.id = v_actor;
    IF NOT EXISTS (SELECT 1 FROM ioffice.person_role r
                   WHERE r.person_id = v_actor AND r.role = 'clerk' AND r.unit_id = v_agency) THEN
        RAISE EXCEPTION 'only a clerk registers incoming documents' USING ERRCODE = '42501';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ioffice.doc_type t WHERE t.code = register_incoming.doc_type) THEN
        RAISE EXCEPTION 'unknown document type "%"', doc_type USING ERRCODE = '42704';
    END IF;
    IF length(btrim(abstract)) = 0 OR length(abstract) > 500 THEN
        RAISE EXCEPTION 'the abstract must be 1 to 500 characters (it has %)', length(abstract)
            USING ERRCODE = '22023';
    END IF;
    IF length(btrim(sender)) = 0 OR length(sender) > 500 THEN
        RAISE EXCEPTION 'the sender must be an agency code or a name of 1 to 500 characters'
            USING ERRCODE = '22023';
    END IF;
    IF length(btrim(sender_symbol)) = 0 OR length(sender_symbol) > 100 THEN
        RAISE EXCEPTION 'the sender''s number and symbol must be 1 to 100 characters'
            USING ERRCODE = '22023';
    END IF;
    IF sender_date > (now() AT TIME ZONE ioffice.timezone())::date OR sender_date < '1900-01-01' THEN
        RAISE EXCEPTION 'the document''s date % is not a date it can have been issued on', sender_date
            USING ERRCODE = '22023';
    END IF;
    PERFORM ioffice._check_details(v_details,
        '{"urgency": "string", "confidentiality": "string", "due_date": "string",
          "received_at": "string", "field": "string", "comment": "string",
          "page_count": "number", "register": "number"}');
    v_urgency := coalesce(v_details->>'urgency', 'normal');
    IF v_urgency NOT IN ('normal', 'urgent', 'very_urgent', 'flash') THEN
        RAISE EXCEPTION 'unknown urgency "%"', v_urgency USING ERRCODE = '22023';
    END IF;
    v_conf := coalesce(v_details->>'confidentiality', 'normal');
    IF v_conf NOT IN ('normal', 'confidential', 'secret', 'top_secret') THEN
        RAISE EXCEPTION 'unknown confidentiality "%"', v_conf USING ERRCODE = '22023';
    END IF;
    IF v_details->>'due_date' IS NOT NULL THEN
        BEGIN
            v_due := (v_details->>'due_date')::date;
        EXCEPTION WHEN others THEN
            RAISE EXCEPTION 'details.due_date "%" is not a date', v_details->>'due_date'
                USING ERRCODE = '22023';
        END;
    END IF;
    IF v_details->>'received_at' IS NOT NULL THEN
        BEGIN
            v_received := (v_details->>'received_at')::timestamptz;
        EXCEPTION WHEN others THEN
            RAISE EXCEPTION 'details.received_at "%" is not a time', v_details->>'received_at'
                USING ERRCODE = '22023';
        END;
        IF v_received > now() THEN
            RAISE EXCEPTION 'details.received_at is in the future' USING ERRCODE = '22023';
        END IF;
    END IF;
    v_pages := ioffice._whole_detail(v_details, 'page_count', 1, 100000);
    v_register := ioffice._whole_detail(v_details, 'register', 1, 9223372036854775807);

    -- the sender: an agency of this database by its code, or a name
    SELECT u.id INTO v_sender_agency FROM ioffice.unit u
    WHERE u.code = register_incoming.sender AND u.kind = 'agency';
    IF v_sender_agency IS NULL THEN
        v_sender_name := sender;
    END IF;
    SELECT d.id, d.number INTO v_existing, v_number FROM ioffice.document d
    WHERE d.direction = 'incoming' AND d.agency_id = v_agency
      AND coalesce(d.sender_agency_id::text, d.sender_name) = coalesce(v_sender_agency::text, v_sender_name)
      AND d.sender_symbol = register_incoming.sender_symbol
      AND d.sender_year = extract(year FROM register_incoming.sender_date);
    IF FOUND THEN
        RAISE EXCEPTION 'document % of % was already registered (arrival number %)',
            sender_symbol, sender, v_number
            USING ERRCODE = '23505', DETAIL = format('Incoming document %s.', v_existing);
    END IF;

    INSERT INTO ioffice.document (workflow, direction, doc_type, abstract, state, urgency,
                                  confidentiality, field, agency_id, drafting_unit_id, drafter_id,
                                  page_count, due_date, comment, sender_agency_id, sender_name,
                                  sender_symbol, sender_date, received_at)
    VALUES ('incoming', 'incoming', register_incoming.doc_type, register_incoming.abstract,
            'registered', v_urgency, v_conf, v_details->>'field', v_agency, v_agency, v_actor,
            v_pages, v_due, v_details->>'comment', v_sender_agency, v_sender_name,
            register_incoming.sender_symbol, register_incoming.sender_date, v_received)
    RETURNING id INTO v_id;
    -- the arrival number last: the register row stays locked to commit
    v_number := ioffice._take_arrival(v_id, v_register);
    PERFORM ioffice._audit('document', v_id, 'register_incoming', NULL, 'registered',
                           jsonb_build_object('arrival_number', v_number, 'sender', sender,
                                              'sender_symbol', sender_symbol,
                                              'sender_date', sender_date, 'details', v_details));
    PERFORM ioffice._engine_leave();
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION register_incoming(text, text, text, text, date, jsonb) IS
  'The clerk registers a received document (vào sổ văn bản đến) and it gets its arrival number';

-- ---------------------------------------------------------------------------
-- Visibility
-- ---------------------------------------------------------------------------

-- Who may see a document: its drafter, anyone who holds or held a task on it
-- (as sender or receiver), a person delegated by such a holder, a clerk of its
-- agency, an admin.  SECURITY DEFINER so that it reads the tables past their
-- own row-level security.
CREATE FUNCTION can_see(doc bigint) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    WITH me AS (SELECT ioffice.current_person() AS id)
    SELECT EXISTS (
        SELECT 1 FROM ioffice.document d, me
        WHERE d.id = doc AND me.id IS NOT NULL
          AND (d.drafter_id = me.id
               OR EXISTS (SELECT 1 FROM ioffice.task t
                          WHERE t.document_id = d.id
                            AND (t.receiver_id = me.id OR t.sender_id = me.id
                                 OR t.processed_by = me.id))
               OR EXISTS (SELECT 1 FROM ioffice.task t
                          JOIN ioffice.delegation g ON g.from_person = t.receiver_id
                          WHERE t.document_id = d.id AND t.status = 'open'
                            AND g.to_person = me.id
                            AND now() >= g.valid_from AND now() < g.valid_until)
               OR EXISTS (SELECT 1 FROM ioffice.person_role r
                          WHERE r.person_id = me.id
                            AND ((r.role = 'clerk' AND r.unit_id = d.agency_id)
                                 OR r.role = 'admin'))))
$$;

CREATE FUNCTION is_admin() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM ioffice.person_role r
                   WHERE r.person_id = ioffice.current_person() AND r.role = 'admin')
$$;

ALTER TABLE document ENABLE ROW LEVEL SECURITY;
ALTER TABLE file ENABLE ROW LEVEL SECURITY;
ALTER TABLE task ENABLE ROW LEVEL SECURITY;
ALTER TABLE signature ENABLE ROW LEVEL SECURITY;
ALTER TABLE document_link ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit ENABLE ROW LEVEL SECURITY;
ALTER TABLE delegation ENABLE ROW LEVEL SECURITY;

-- reporting tools (ioffice_reader) read the registers: every document that
-- is not confidential.  One policy, the cheap test first: a reader scanning
-- a register must not pay for can_see() on every row.
CREATE POLICY visible ON document FOR SELECT
    USING ((confidentiality = 'normal' AND pg_catalog.pg_has_role('ioffice_reader', 'USAGE'))
           OR ioffice.can_see(id));
ALTER TABLE number_taken ENABLE ROW LEVEL SECURITY;
CREATE POLICY visible ON number_taken FOR SELECT
    USING (pg_catalog.pg_has_role('ioffice_reader', 'USAGE') OR ioffice.is_admin() OR EXISTS (
        SELECT 1 FROM ioffice.register r JOIN ioffice.person_role pr
          ON pr.unit_id = r.agency_id AND pr.role = 'clerk'
        WHERE r.id = register_id AND pr.person_id = ioffice.current_person()));
CREATE POLICY visible ON file FOR SELECT USING (ioffice.can_see(document_id));
CREATE POLICY visible ON task FOR SELECT USING (ioffice.can_see(document_id));
CREATE POLICY visible ON signature FOR SELECT USING (ioffice.can_see(document_id));
CREATE POLICY visible ON document_link FOR SELECT USING (ioffice.can_see(document_id));
CREATE POLICY visible ON audit FOR SELECT
    USING (ioffice.is_admin() OR (entity = 'document' AND ioffice.can_see(entity_id)));
CREATE POLICY visible ON delegation FOR SELECT
    USING (from_person = ioffice.current_person() OR to_person = ioffice.current_person()
           OR ioffice.is_admin());

-- The outgoing register (sổ đăng ký văn bản đi, Decree 30 appendix IV):
-- issued documents and numbers taken by external systems.  security_invoker,
-- so a reader sees what the row-level security of the tables lets them see.
CREATE VIEW outgoing_register WITH (security_invoker = true) AS
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
       d.confidentiality <> 'normal' AS confidential,
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
COMMENT ON VIEW outgoing_register IS 'Sổ đăng ký văn bản đi (Decree 30): issued documents and numbers taken by other systems';
COMMENT ON COLUMN outgoing_register.number IS 'Số';
COMMENT ON COLUMN outgoing_register.symbol IS 'Số, ký hiệu văn bản';
COMMENT ON COLUMN outgoing_register.issued_on IS 'Ngày tháng văn bản';
COMMENT ON COLUMN outgoing_register.type_and_abstract IS 'Tên loại và trích yếu nội dung văn bản';
COMMENT ON COLUMN outgoing_register.signer IS 'Người ký';
COMMENT ON COLUMN outgoing_register.recipients IS 'Nơi nhận văn bản';
COMMENT ON COLUMN outgoing_register.archive_unit IS 'Đơn vị, người nhận bản lưu';
COMMENT ON COLUMN outgoing_register.copies IS 'Số lượng bản';
COMMENT ON COLUMN outgoing_register.sent_on IS 'Ngày chuyển';
COMMENT ON COLUMN outgoing_register.receipt IS 'Ký nhận (trên sổ in)';
COMMENT ON COLUMN outgoing_register.note IS 'Ghi chú';
COMMENT ON COLUMN outgoing_register.year IS 'Năm của sổ';
COMMENT ON COLUMN outgoing_register.register_code IS 'Sổ văn bản';

-- The incoming register (sổ đăng ký văn bản đến, Decree 30 appendix IV).
CREATE VIEW incoming_register WITH (security_invoker = true) AS
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
       d.confidentiality <> 'normal' AS confidential,
       d.state,
       d.id AS document_id,
       d.source_document_id
FROM ioffice.document d
JOIN ioffice.register r ON r.id = d.register_id
JOIN ioffice.doc_type t ON t.code = d.doc_type
LEFT JOIN ioffice.unit sa ON sa.id = d.sender_agency_id
LEFT JOIN ioffice.document src ON src.id = d.source_document_id
WHERE d.direction = 'incoming' AND d.number IS NOT NULL;
COMMENT ON VIEW incoming_register IS 'Sổ đăng ký văn bản đến (Decree 30)';
COMMENT ON COLUMN incoming_register.received_on IS 'Ngày đến';
COMMENT ON COLUMN incoming_register.number IS 'Số đến';
COMMENT ON COLUMN incoming_register.sender IS 'Tác giả';
COMMENT ON COLUMN incoming_register.sender_symbol IS 'Số, ký hiệu';
COMMENT ON COLUMN incoming_register.sender_date IS 'Ngày tháng';
COMMENT ON COLUMN incoming_register.type_and_abstract IS 'Tên loại và trích yếu nội dung';
COMMENT ON COLUMN incoming_register.handlers IS 'Đơn vị hoặc người nhận';
COMMENT ON COLUMN incoming_register.assigned_on IS 'Ngày chuyển';
COMMENT ON COLUMN incoming_register.receipt IS 'Ký nhận (trên sổ in)';
COMMENT ON COLUMN incoming_register.note IS 'Ghi chú';
COMMENT ON COLUMN incoming_register.year IS 'Năm của sổ';
COMMENT ON COLUMN incoming_register.register_code IS 'Sổ văn bản';

GRANT USAGE ON SCHEMA ioffice TO PUBLIC;
GRANT SELECT ON ALL TABLES IN SCHEMA ioffice TO PUBLIC;
GRANT INSERT, UPDATE, DELETE ON workflow, workflow_state, workflow_transition, doc_type,
    register TO ioffice_admin;

-- ---------------------------------------------------------------------------
-- What people see
-- ---------------------------------------------------------------------------

CREATE FUNCTION person_label(p bigint) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT full_name || coalesce(' - ' || "position", '') FROM ioffice.person WHERE id = p
$$;

CREATE FUNCTION trail(doc bigint)
RETURNS TABLE (step int, sender text, request text, receiver text,
               received_at timestamptz, processing_note text, deadline date,
               processed_at timestamptz, status text, attachments text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM ioffice.actor();
    IF doc IS NULL THEN
        RAISE EXCEPTION 'trail needs a document' USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ioffice.document d WHERE d.id = doc) THEN
        RAISE EXCEPTION 'unknown document %', doc USING ERRCODE = '42704';
    END IF;
    IF NOT ioffice.can_see(doc) THEN
        RAISE EXCEPTION 'you may not see document %', doc USING ERRCODE = '42501';
    END IF;
    RETURN QUERY
    SELECT t.step,
           s.full_name || coalesce(' (thay ' || sf.full_name || ')', ''),
           t.request,
           r.full_name,
           t.received_at,
           t.processing_note
             || CASE WHEN t.processed_by IS DISTINCT FROM t.receiver_id AND t.processed_by IS NOT NULL
                     THEN ' (' || pb.full_name || ' thay ' || r.full_name || ')' ELSE '' END,
           t.deadline,
           t.processed_at,
           CASE t.status WHEN 'done' THEN 'Đã xử lý' ELSE 'Đang xử lý' END,
           (SELECT string_agg(f.name, ', ' ORDER BY f.id)
            FROM ioffice.file f WHERE f.id = ANY (t.file_ids))
    FROM ioffice.task t
    JOIN ioffice.person s ON s.id = t.sender_id
    JOIN ioffice.person r ON r.id = t.receiver_id
    LEFT JOIN ioffice.person sf ON sf.id = t.sender_for
    LEFT JOIN ioffice.person pb ON pb.id = t.processed_by
    WHERE t.document_id = doc
    ORDER BY t.step;
END
$$;
COMMENT ON FUNCTION trail(bigint) IS 'The processing trail (Quá trình xử lý) of a document';

CREATE FUNCTION urgency_rank(urgency text) RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE urgency WHEN 'urgent' THEN 1 WHEN 'very_urgent' THEN 2
                        WHEN 'flash' THEN 3 WHEN 'flash_timed' THEN 4 ELSE 0 END
$$;

CREATE FUNCTION outgoing_list(tab text)
RETURNS TABLE (document bigint, urgency text, awaiting_signature boolean,
               number_symbol text, abstract text, issuing_agency text,
               received_at timestamptz, priority int, state text, holder text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me bigint := ioffice.actor();
BEGIN
    IF tab IS NULL OR tab NOT IN ('awaiting_approval', 'awaiting_specialist', 'awaiting_other_leader',
                                  'awaiting_issue', 'issued', 'delegated') THEN
        RAISE EXCEPTION 'unknown tab "%"', tab USING ERRCODE = '22023',
              HINT = 'Tabs are awaiting_approval, awaiting_specialist, awaiting_other_leader, awaiting_issue, issued, delegated.';
    END IF;
    RETURN QUERY
    WITH picked AS (
        SELECT d.id
        FROM ioffice.document d
        WHERE d.direction = 'outgoing' AND CASE tab
            WHEN 'awaiting_approval' THEN d.state = 'reviewing' AND EXISTS (
                SELECT 1 FROM ioffice.task t WHERE t.document_id = d.id
                  AND t.status = 'open' AND t.receiver_id = v_me)
            WHEN 'awaiting_specialist' THEN d.state = 'returned' AND EXISTS (
                SELECT 1 FROM ioffice.task t WHERE t.document_id = d.id AND t.status = 'open'
                  AND t.action = 'return' AND (t.sender_id = v_me OR t.sender_for = v_me))
            WHEN 'awaiting_other_leader' THEN d.state = 'reviewing' AND EXISTS (
                SELECT 1 FROM ioffice.task t WHERE t.document_id = d.id AND t.status = 'done'
                  AND t.closed_by_action = 'forward' AND t.receiver_id = v_me)
              AND NOT EXISTS (
                SELECT 1 FROM ioffice.task t WHERE t.document_id = d.id
                  AND t.status = 'open' AND t.receiver_id = v_me)
            WHEN 'awaiting_issue' THEN d.state = 'awaiting_issue' AND EXISTS (
                SELECT 1 FROM ioffice.task t WHERE t.document_id = d.id
                  AND ((t.status = 'open' AND t.receiver_id = v_me)
                       OR (t.status = 'done' AND t.closed_by_action IN ('approve', 'quick_approve')
                           AND (t.receiver_id = v_me OR t.processed_by = v_me))))
            WHEN 'issued' THEN d.state = 'issued' AND (
                d.drafter_id = v_me
                OR EXISTS (SELECT 1 FROM ioffice.task t WHERE t.document_id = d.id
                           AND (t.receiver_id = v_me OR t.sender_id = v_me))
                OR EXISTS (SELECT 1 FROM ioffice.person_role r WHERE r.person_id = v_me
                           AND r.role = 'clerk' AND r.unit_id = d.agency_id))
            WHEN 'delegated' THEN EXISTS (
                SELECT 1 FROM ioffice.task t
                JOIN ioffice.delegation g ON g.from_person = t.receiver_id
                JOIN ioffice.workflow_transition w
                  ON w.workflow = d.workflow AND w.from_state = d.state AND w.delegable
                WHERE t.document_id = d.id AND t.status = 'open' AND g.to_person = v_me
                  AND now() >= g.valid_from AND now() < g.valid_until)
            END
    )
    SELECT d.id, d.urgency,
           EXISTS (SELECT 1 FROM ioffice.signature s
                   WHERE s.document_id = d.id AND s.status = 'pending'),
           d.symbol, d.abstract, a.name,
           coalesce((SELECT t.received_at FROM ioffice.task t
                     WHERE t.document_id = d.id AND t.status = 'open'),
                    (SELECT max(t.received_at) FROM ioffice.task t WHERE t.document_id = d.id),
                    d.created_at),
           ioffice.urgency_rank(d.urgency),
           d.state,
           (SELECT p.full_name FROM ioffice.task t JOIN ioffice.person p ON p.id = t.receiver_id
            WHERE t.document_id = d.id AND t.status = 'open')
    FROM picked JOIN ioffice.document d ON d.id = picked.id
    JOIN ioffice.unit a ON a.id = d.agency_id
    ORDER BY ioffice.urgency_rank(d.urgency) DESC, 7 DESC, d.id DESC;
END
$$;
COMMENT ON FUNCTION outgoing_list(text) IS 'The actor''s outgoing-document list for one of the six tabs';

CREATE FUNCTION incoming_list(tab text)
RETURNS TABLE (document bigint, arrival_number int, urgency text, sender text, sender_symbol text,
               sender_date date, abstract text, received_at timestamptz, deadline date,
               state text, holder text, priority int)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me bigint := ioffice.actor();
    v_today date := (now() AT TIME ZONE ioffice.timezone())::date;
    v_soon int := current_setting('ioffice.due_soon_days')::int;
BEGIN
    IF tab IS NULL OR tab NOT IN ('unprocessed', 'awaiting_approval', 'in_progress', 'processed',
                                  'due', 'overdue', 'delegated', 'transferred') THEN
        RAISE EXCEPTION 'unknown tab "%"', tab USING ERRCODE = '22023',
              HINT = 'Tabs are unprocessed, awaiting_approval, in_progress, processed, due, overdue, delegated, transferred.';
    END IF;
    RETURN QUERY
    WITH mine AS (
        -- my open tasks on incoming documents, with their deadline
        SELECT t.document_id, coalesce(t.deadline, d.due_date) AS deadline
        FROM ioffice.task t JOIN ioffice.document d ON d.id = t.document_id
        WHERE t.status = 'open' AND t.receiver_id = v_me AND d.direction = 'incoming'
    ), picked AS (
        SELECT d.id, NULL::date AS deadline
        FROM ioffice.document d
        WHERE tab = 'unprocessed' AND d.direction = 'incoming' AND (
              (d.state = 'received' AND EXISTS (
                  SELECT 1 FROM ioffice.person_role r WHERE r.person_id = v_me
                     AND r.role = 'clerk' AND r.unit_id = d.agency_id))
           OR (d.state IN ('registered', 'returned') AND d.drafter_id = v_me))
        UNION ALL
        SELECT d.id, m.deadline FROM ioffice.document d JOIN mine m ON m.document_id = d.id
        WHERE tab = 'awaiting_approval' AND d.state = 'awaiting_assignment'
        UNION ALL
        SELECT DISTINCT d.id, m.deadline FROM ioffice.document d JOIN mine m ON m.document_id = d.id
        WHERE tab = 'in_progress' AND d.state = 'in_progress'
        UNION ALL
        SELECT d.id, NULL FROM ioffice.document d
        WHERE tab = 'processed' AND d.direction = 'incoming' AND d.state = 'processed'
          AND (d.drafter_id = v_me OR EXISTS (
              SELECT 1 FROM ioffice.task t WHERE t.document_id = d.id
                 AND (t.receiver_id = v_me OR t.processed_by = v_me)))
        UNION ALL
        SELECT DISTINCT d.id, m.deadline FROM ioffice.document d JOIN mine m ON m.document_id = d.id
        WHERE tab = 'due' AND m.deadline >= v_today AND m.deadline < v_today + v_soon
        UNION ALL
        SELECT DISTINCT d.id, m.deadline FROM ioffice.document d JOIN mine m ON m.document_id = d.id
        WHERE tab = 'overdue' AND m.deadline < v_today
        UNION ALL
        SELECT d.id, t.deadline FROM ioffice.document d
        JOIN ioffice.task t ON t.document_id = d.id AND t.status = 'open' AND t.kind = 'main'
        JOIN ioffice.delegation g ON g.from_person = t.receiver_id
        WHERE tab = 'delegated' AND d.direction = 'incoming' AND d.state = 'awaiting_assignment'
          AND g.to_person = v_me AND now() >= g.valid_from AND now() < g.valid_until
        UNION ALL
        SELECT d.id, NULL FROM ioffice.document d
        WHERE tab = 'transferred' AND d.direction = 'incoming' AND d.state = 'in_progress'
          AND EXISTS (SELECT 1 FROM ioffice.task t WHERE t.document_id = d.id
                         AND t.closed_by_action = 'assign' AND t.processed_by = v_me)
    )
    SELECT d.id, d.number, d.urgency,
           coalesce(sa.name, d.sender_name),
           coalesce(d.sender_symbol, src.symbol),
           coalesce(d.sender_date, src.issued_on),
           d.abstract, d.received_at, p.deadline, d.state,
           (SELECT string_agg(h.full_name, ', ' ORDER BY t.kind DESC, t.step)
              FROM ioffice.task t JOIN ioffice.person h ON h.id = t.receiver_id
             WHERE t.document_id = d.id AND t.status = 'open'),
           ioffice.urgency_rank(d.urgency)
    FROM picked p JOIN ioffice.document d ON d.id = p.id
    LEFT JOIN ioffice.unit sa ON sa.id = d.sender_agency_id
    LEFT JOIN ioffice.document src ON src.id = d.source_document_id
    ORDER BY ioffice.urgency_rank(d.urgency) DESC, p.deadline NULLS LAST, d.received_at DESC, d.id DESC;
END
$$;
COMMENT ON FUNCTION incoming_list(text) IS 'The actor''s incoming-document list for one of the dashboard''s tabs';

CREATE FUNCTION dashboard()
RETURNS TABLE (incoming_unprocessed bigint, incoming_in_progress bigint,
               incoming_processed bigint, incoming_due bigint, incoming_overdue bigint,
               incoming_awaiting_approval bigint, incoming_delegated bigint,
               incoming_transferred bigint, outgoing_awaiting_approval bigint,
               outgoing_awaiting_processing bigint, outgoing_delegated bigint,
               outgoing_issued bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_me bigint := ioffice.actor();
BEGIN
    RETURN QUERY
    SELECT
        (SELECT count(*) FROM ioffice.incoming_list('unprocessed')),
        (SELECT count(*) FROM ioffice.incoming_list('in_progress')),
        (SELECT count(*) FROM ioffice.incoming_list('processed')),
        (SELECT count(*) FROM ioffice.incoming_list('due')),
        (SELECT count(*) FROM ioffice.incoming_list('overdue')),
        (SELECT count(*) FROM ioffice.incoming_list('awaiting_approval')),
        (SELECT count(*) FROM ioffice.incoming_list('delegated')),
        (SELECT count(*) FROM ioffice.incoming_list('transferred')),
        (SELECT count(*) FROM ioffice.task t JOIN ioffice.document d ON d.id = t.document_id
         WHERE t.status = 'open' AND t.receiver_id = v_me AND d.direction = 'outgoing'
           AND d.state = 'reviewing'),
        (SELECT count(*) FROM ioffice.task t JOIN ioffice.document d ON d.id = t.document_id
         WHERE t.status = 'open' AND t.receiver_id = v_me AND d.direction = 'outgoing'
           AND d.state IN ('returned', 'awaiting_issue')),
        (SELECT count(*) FROM ioffice.task t
         JOIN ioffice.document d ON d.id = t.document_id
         JOIN ioffice.delegation g ON g.from_person = t.receiver_id
         WHERE t.status = 'open' AND g.to_person = v_me AND d.direction = 'outgoing'
           AND now() >= g.valid_from AND now() < g.valid_until
           AND EXISTS (SELECT 1 FROM ioffice.workflow_transition w
                       WHERE w.workflow = d.workflow AND w.from_state = d.state AND w.delegable)),
        (SELECT count(*) FROM ioffice.outgoing_list('issued'));
END
$$;
COMMENT ON FUNCTION dashboard() IS 'The home page counters (Trang chủ) for the actor';

-- ---------------------------------------------------------------------------
-- Trail export
-- ---------------------------------------------------------------------------

CREATE FUNCTION trail_export(doc bigint, format text) RETURNS bytea
    AS 'MODULE_PATHNAME', 'ioffice_trail_export'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION trail_export(bigint, text) IS 'The processing trail (Quá trình xử lý) of a document as a file: xlsx (Excel workbook) or csv (UTF-8 with BOM, CRLF); the rows of trail(), with its visibility rules';

-- ---------------------------------------------------------------------------
-- Register export
-- ---------------------------------------------------------------------------

-- SECURITY DEFINER: the owner reads past row-level security, so the C code
-- decides who may export (a clerk of the agency, an admin: every row; a
-- member of ioffice_reader: ordinary documents of an ordinary register).
CREATE FUNCTION register_export(register bigint, year int, format text) RETURNS bytea
    AS 'MODULE_PATHNAME', 'ioffice_register_export'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION register_export(bigint, int, text) IS 'The outgoing register of a year (Sổ đăng ký văn bản đi, Decree 30) as a file to print and bind: xlsx (A4 landscape, headings repeated on every page) or csv (UTF-8 with BOM, CRLF); register may be any year''s row of the register; for its agency''s clerks, admins and ioffice_reader';

-- ---------------------------------------------------------------------------
-- Certificates, verification, the worker
-- ---------------------------------------------------------------------------

CREATE FUNCTION _x509_info(pem text, OUT subject text, OUT issuer text, OUT serial text,
                           OUT not_before timestamptz, OUT not_after timestamptz,
                           OUT fingerprint bytea, OUT is_ca boolean, OUT signs boolean)
    AS 'MODULE_PATHNAME', 'ioffice_x509_info' LANGUAGE C IMMUTABLE STRICT;
CREATE FUNCTION _crl_info(pem text, OUT issuer text, OUT this_update timestamptz,
                          OUT next_update timestamptz, OUT serials text[])
    AS 'MODULE_PATHNAME', 'ioffice_crl_info' LANGUAGE C IMMUTABLE STRICT;

-- A person's certificate (kind personal, owner a login) or an agency's seal
-- (kind organisation, owner an agency code), with the name of its private
-- key's file in the keystore.
CREATE FUNCTION register_certificate(kind text, owner text, pem text, key_file text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_info record;
    v_person bigint;
    v_agency bigint;
    v_id bigint;
BEGIN
    PERFORM ioffice._engine_enter();
    IF kind IS NULL OR owner IS NULL OR pem IS NULL THEN
        RAISE EXCEPTION 'a certificate needs its kind, owner and PEM text' USING ERRCODE = '22023';
    END IF;
    IF kind NOT IN ('personal', 'organisation') THEN
        RAISE EXCEPTION 'unknown certificate kind "%"', kind USING ERRCODE = '22023',
              HINT = 'Kinds are personal (owner: a login) and organisation (owner: an agency code).';
    END IF;
    IF key_file IS NOT NULL AND (key_file !~ '^[A-Za-z0-9_.-]{1,200}$' OR key_file IN ('.', '..')) THEN
        RAISE EXCEPTION 'key file "%" must be a plain file name of the keystore', key_file
            USING ERRCODE = '22023';
    END IF;
    v_info := ioffice._x509_info(pem);
    IF NOT v_info.signs THEN
        RAISE EXCEPTION 'the certificate''s key usage allows no signing' USING ERRCODE = '22023',
              HINT = 'Signing certificates carry keyUsage digitalSignature or nonRepudiation.';
    END IF;
    IF kind = 'personal' THEN
        SELECT p.id INTO v_person FROM ioffice.person p WHERE p.login = owner;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'unknown person "%"', owner USING ERRCODE = '42704';
        END IF;
    ELSE
        SELECT u.id INTO v_agency FROM ioffice.unit u WHERE u.code = owner AND u.kind = 'agency';
        IF NOT FOUND THEN
            RAISE EXCEPTION 'unknown agency "%"', owner USING ERRCODE = '42704';
        END IF;
    END IF;
    IF EXISTS (SELECT 1 FROM ioffice.certificate c WHERE c.fingerprint = v_info.fingerprint) THEN
        RAISE EXCEPTION 'this certificate is already registered' USING ERRCODE = '23505';
    END IF;
    INSERT INTO ioffice.certificate (kind, person_id, agency_id, pem, subject, issuer, serial,
                                     not_before, not_after, fingerprint, key_file, revoked_at)
    VALUES (kind, v_person, v_agency, pem, v_info.subject, v_info.issuer, v_info.serial,
            v_info.not_before, v_info.not_after, v_info.fingerprint, key_file,
            (SELECT min(c.this_update) FROM ioffice.crl c
              WHERE c.issuer = v_info.issuer AND v_info.serial = ANY (c.serials)))
    RETURNING id INTO v_id;
    PERFORM ioffice._audit('certificate', v_id, 'register', NULL, NULL,
                           jsonb_build_object('kind', kind, 'owner', owner, 'subject', v_info.subject,
                                              'serial', v_info.serial, 'not_after', v_info.not_after));
    PERFORM ioffice._engine_leave();
    RETURN v_id;
END
$$;

CREATE FUNCTION add_trust_anchor(pem text) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_info record;
    v_id bigint;
BEGIN
    IF pem IS NULL THEN
        RAISE EXCEPTION 'a trust anchor needs its PEM text' USING ERRCODE = '22023';
    END IF;
    v_info := ioffice._x509_info(pem);
    IF NOT v_info.is_ca THEN
        RAISE EXCEPTION 'a trust anchor must be a CA certificate' USING ERRCODE = '22023';
    END IF;
    INSERT INTO ioffice.trust_anchor (pem, subject, fingerprint)
    VALUES (pem, v_info.subject, v_info.fingerprint)
    ON CONFLICT (fingerprint) DO UPDATE SET pem = EXCLUDED.pem
    RETURNING id INTO v_id;
    PERFORM ioffice._audit('trust_anchor', v_id, 'add', NULL, NULL,
                           jsonb_build_object('subject', v_info.subject));
    RETURN v_id;
END
$$;

CREATE FUNCTION add_crl(pem text) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_info record;
    v_id bigint;
BEGIN
    PERFORM ioffice._engine_enter();
    IF pem IS NULL THEN
        RAISE EXCEPTION 'a revocation list needs its PEM text' USING ERRCODE = '22023';
    END IF;
    v_info := ioffice._crl_info(pem);
    INSERT INTO ioffice.crl (pem, issuer, this_update, next_update, serials)
    VALUES (pem, v_info.issuer, v_info.this_update, v_info.next_update, v_info.serials)
    RETURNING id INTO v_id;
    UPDATE ioffice.certificate c SET revoked_at = v_info.this_update
    WHERE c.issuer = v_info.issuer AND c.serial = ANY (v_info.serials) AND c.revoked_at IS NULL;
    PERFORM ioffice._audit('crl', v_id, 'add', NULL, NULL,
                           jsonb_build_object('issuer', v_info.issuer, 'revoked', v_info.serials));
    PERFORM ioffice._engine_leave();
    RETURN v_id;
END
$$;
REVOKE ALL ON FUNCTION register_certificate(text, text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION add_trust_anchor(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION add_crl(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION register_certificate(text, text, text, text) TO ioffice_admin;
GRANT EXECUTE ON FUNCTION add_trust_anchor(text) TO ioffice_admin;
GRANT EXECUTE ON FUNCTION add_crl(text) TO ioffice_admin;
GRANT SELECT ON certificate, trust_anchor, crl TO PUBLIC;
CREATE TRIGGER audit_direct AFTER INSERT OR UPDATE OR DELETE ON certificate
    FOR EACH ROW EXECUTE FUNCTION _audit_direct();

CREATE FUNCTION verify(file bigint)
    RETURNS TABLE (signer text, kind text, signed_at timestamptz, subject text, valid boolean, reason text)
    AS 'MODULE_PATHNAME', 'ioffice_verify'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION verify(bigint) IS
  'Every signature on a file, checked against the registered trust anchors and revocation lists (Kiểm tra VB đã ký)';

CREATE FUNCTION _worker_slots(OUT database text, OUT pid int, OUT state text, OUT started_at timestamptz,
                              OUT last_batch_at timestamptz, OUT batches bigint, OUT jobs_done bigint,
                              OUT jobs_failed bigint, OUT last_error text, OUT last_error_at timestamptz)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'ioffice_worker_slots_sql' LANGUAGE C VOLATILE;

CREATE VIEW worker_status AS
SELECT w.*,
       (SELECT count(*) FROM ioffice.signature s WHERE s.status = 'pending') AS signatures_pending,
       (SELECT count(*) FROM ioffice.signature s WHERE s.status = 'failed') AS signatures_failed
FROM ioffice._worker_slots() AS w;
COMMENT ON VIEW worker_status IS 'What the background workers are doing, queue depths, the last error and when';

CREATE FUNCTION signature_p7s(file bigint) RETURNS bytea
    AS 'MODULE_PATHNAME', 'ioffice_signature_p7s'
    LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION signature_p7s(bigint) IS
  'Every signature of a file in one detached CMS (.p7s) that openssl cms -verify accepts';
