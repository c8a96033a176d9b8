/* ioffice--0.2.sql, built by make from the files of sql/parts/: objects of the ioffice extension, version 0.2 */

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
    -- revoke_delegation(): when and by whom; the delegation then ended at
    -- revoked_at (valid_until moves there, or to valid_from for one that had
    -- not started: an empty period), so that every test of "in force now"
    -- holds it ended; the audit record keeps the end it was given
    revoked_at   timestamptz,
    revoked_by   bigint REFERENCES person,
    CONSTRAINT delegation_check
        CHECK (valid_until > valid_from OR (revoked_at IS NOT NULL AND valid_until >= valid_from)),
    CHECK (from_person <> to_person),
    -- one delegation of a person at a time: periods of the same delegator
    -- never overlap (ranges, so that no extension is needed for the person)
    CONSTRAINT delegation_one_at_a_time EXCLUDE USING gist
        (int8range(from_person, from_person, '[]') WITH &&, tstzrange(valid_from, valid_until) WITH &&)
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
    -- a document's files can no longer change in this state (nor in a final
    -- one): outgoing awaiting_issue, where the clerk issues what the leader
    -- approved and signed; incoming awaiting_assignment and in_progress,
    -- where the leader and the handlers read what arrived (extension/files.c,
    -- trigger frozen on file)
    files_frozen boolean NOT NULL DEFAULT false,
    PRIMARY KEY (workflow, state),
    CHECK (NOT (initial AND final))
);
COMMENT ON COLUMN workflow_state.files_frozen IS
  'The files of a document in this state can no longer change (as in a final state): approved, they are what is issued';

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
    -- the end of the audit chain 'numbers:<id>' of this row's take_number
    -- records (seq, the previous record's hash, the last one's): kept here,
    -- so that a number, its entry and its audit record are written by one
    -- statement under the row's lock (extension/registers.c)
    numbers_seq  bigint NOT NULL DEFAULT 0 CHECK (numbers_seq >= 0),
    numbers_prev bytea,
    numbers_head bytea,
    UNIQUE (agency_id, direction, code, year),
    -- the date of the last number given (an outgoing register's numbers
    -- follow their dates): kept here, so that the numbering UPDATE checks a
    -- new date against it under the row's lock (extension/registers.c)
    last_issued_on date
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
    CHECK (direction = 'incoming' OR (number IS NULL) = (symbol IS NULL)),
    -- the name of the type as it was registered (the register entry keeps
    -- it when a DBA renames the type later); set at issue
    doc_type_name   text,
    -- the signer's and the drafting unit's names as they were registered
    -- (Người ký, đơn vị nhận bản lưu): an admin correcting a person's name or
    -- renaming a unit later does not rewrite the register; set at issue
    signer_name     text,
    drafting_unit_name text
);
-- (with the id: a person's own documents newest first, a page of a list)
CREATE INDEX document_drafter_idx ON document (drafter_id, id);
-- the same document of a sender registered twice by one agency (Decree 30)
CREATE UNIQUE INDEX document_incoming_once_idx
    ON document (agency_id, coalesce(sender_agency_id::text, sender_name), sender_symbol, sender_year)
    WHERE direction = 'incoming' AND sender_symbol IS NOT NULL;
CREATE UNIQUE INDEX document_delivered_once_idx ON document (agency_id, source_document_id)
    WHERE source_document_id IS NOT NULL;
CREATE INDEX document_received_at_idx ON document (received_at) WHERE direction = 'incoming';
-- an agency's documents in one state, newest first: the clerk's tabs
CREATE INDEX document_agency_state_idx ON document (agency_id, state, id);
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
    PRIMARY KEY (register_id, number),
    -- the type's name when the number was taken (see document.doc_type_name)
    doc_type_name    text,
    -- a number is accounted for when the document it served carries it
    -- (document_id: import_issued with payload.number) or when it is voided
    -- with a reason (void_number); who did either, and when
    void_reason      text CHECK (length(void_reason) BETWEEN 1 AND 500),
    accounted_by     bigint REFERENCES person,
    accounted_at     timestamptz,
    -- the drafting unit's name when the number was taken (see
    -- document.drafting_unit_name)
    drafting_unit_name text,
    CONSTRAINT number_taken_used_or_void CHECK (document_id IS NULL OR void_reason IS NULL),
    CONSTRAINT number_taken_accounted
        CHECK ((accounted_at IS NULL) = (document_id IS NULL AND void_reason IS NULL))
);
CREATE INDEX number_taken_taken_on_idx ON number_taken (taken_on);
COMMENT ON TABLE number_taken IS 'Register numbers taken by external systems (take_number)';
COMMENT ON COLUMN number_taken.void_reason IS 'Why the number was not used (void_number); the number stays in the register';

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
    removed_by    bigint REFERENCES person,
    -- the Word or Excel file this PDF was made from by the signing worker
    -- (workers/convert_jobs.c), from its exact bytes, when a signature of
    -- it was asked for; it is also the version this one replaces
    converted_from bigint,
    CONSTRAINT file_converted_from_check
        CHECK (converted_from IS NULL OR (converted_from = replaces_id AND kind = 'pdf'))
);
COMMENT ON COLUMN file.converted_from IS
  'The Word or Excel file this PDF was converted from (by the signing worker, before signing it); the PDF replaces it';
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
-- the open tasks of a document with their deadlines: what a report of the
-- overdue ones joins to (without it the planner AND-ed a whole partial
-- index of open tasks into every document's lookup)
CREATE INDEX task_open_deadline_idx ON task (document_id, deadline) WHERE status = 'open';
-- a person's tasks, by document (newest first: a page of a list); and the
-- tasks each tab of the lists starts from, so that none reads a person's
-- whole history to find a few rows
CREATE INDEX task_sender_idx ON task (sender_id, document_id);
CREATE INDEX task_receiver_idx ON task (receiver_id, document_id);
CREATE INDEX task_sender_open_idx ON task (sender_id) WHERE status = 'open';
CREATE INDEX task_sender_for_idx ON task (sender_for) WHERE sender_for IS NOT NULL;
CREATE INDEX task_forwarded_idx ON task (receiver_id, document_id) WHERE closed_by_action = 'forward';
CREATE INDEX task_approved_idx ON task (receiver_id, document_id)
    WHERE closed_by_action IN ('approve', 'quick_approve');
CREATE INDEX task_assigned_idx ON task (processed_by, document_id) WHERE closed_by_action = 'assign';
-- who processed a task in its receiver's name (delegation): what row-level
-- security looks up for that person (_task_documents())
CREATE INDEX task_processed_by_idx ON task (processed_by) WHERE processed_by <> receiver_id;
COMMENT ON TABLE task IS 'Hand-overs of a document between people: the processing trail (quá trình xử lý)';

-- Certificates (public only: private keys stay in the worker's keystore,
-- ioffice.keystore, named here by key_file, or for a seal in an HSM, named
-- by key_uri), trust anchors and CRLs.
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
    CHECK ((kind = 'organisation') = (agency_id IS NOT NULL)),
    -- the seal's key in an HSM (RFC 7512 URI, PKCS#11 through the worker):
    -- never a PIN in it (pin-value, pin-source), see ioffice.pkcs11_pin_file
    key_uri      text CONSTRAINT certificate_key_uri_check
                 CHECK (key_uri ~ '^pkcs11:[!-~]+$' AND length(key_uri) <= 1000 AND key_uri !~* '[?;&]pin-(value|source)='),
    CONSTRAINT certificate_one_key CHECK (key_uri IS NULL OR (key_file IS NULL AND kind = 'organisation'))
);
CREATE INDEX certificate_person_idx ON certificate (person_id);
CREATE INDEX certificate_agency_idx ON certificate (agency_id);
COMMENT ON TABLE certificate IS 'X.509 certificates of people and of agencies'' seals; key_file names the private key in the keystore';
COMMENT ON COLUMN certificate.key_uri IS 'The seal''s private key in a hardware security module: a PKCS#11 URI (RFC 7512) the signing worker loads the key by, through ioffice.pkcs11_module; the PIN is in ioffice.pkcs11_pin_file, never here';

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
    cms           bytea,            -- CMS SignedData, DER: detached (CAdES-BES), or the one
                                    -- embedded in signed_file's PDF (PAdES)
    -- a PDF signature: the version of the file it made (the PDF that carries
    -- it, replacing the version it signed); NULL for a detached signature
    signed_file_id bigint REFERENCES file
);
CREATE INDEX signature_file_idx ON signature (file_id);
CREATE INDEX signature_document_idx ON signature (document_id);
CREATE UNIQUE INDEX signature_signed_file_idx ON signature (signed_file_id);
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
-- and is what gets signed (signature: a detached CMS by the certificate
-- ioffice.audit_certificate names, added by the worker) and published.
-- id is the checkpoint's sequence number: 1, 2, 3, ... without gaps.
CREATE TABLE audit_checkpoint (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL,
    chains      int NOT NULL,
    records     bigint NOT NULL,
    root        bytea NOT NULL,
    prev_hash   bytea,
    hash        bytea NOT NULL,
    signature   bytea,
    -- where the next seal reads the trail from (extension/audit_verify.c;
    -- not hashed nor signed: it says where to read, not what was sealed):
    -- every audit record with a lower id that will ever commit was visible
    -- to this checkpoint's seal.  NULL (0.1, or written by hand): the next
    -- seal reads the whole trail.
    horizon     bigint,
    -- the audit ids handed out when it was sealed, and the next transaction
    -- id then: once no transaction older than pending_xid runs, every
    -- record up to pending_id has committed or never will
    pending_id  bigint,
    pending_xid xid8
);
CREATE TABLE audit_checkpoint_head (
    -- its checkpoint's id: trigger heads_checkpointed checks it once per
    -- statement (a foreign key checked it row by row)
    checkpoint_id bigint NOT NULL,
    chain       text NOT NULL,
    seq         bigint NOT NULL,
    hash        bytea NOT NULL,
    PRIMARY KEY (checkpoint_id, chain)
);
-- a chain's last sealed head: the end of its key (a backward scan), for the
-- seal and audit_verify() alike
CREATE INDEX audit_checkpoint_head_chain_idx ON audit_checkpoint_head (chain, checkpoint_id);
-- the worker's queue of checkpoints to sign (workers/audit_jobs.c)
CREATE INDEX audit_checkpoint_unsigned_idx ON audit_checkpoint (id) WHERE signature IS NULL;

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

