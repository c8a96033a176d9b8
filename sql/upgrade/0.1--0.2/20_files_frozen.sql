-- Files frozen once a leader approved; the seal only on what the leader
-- signed (extension/files.c, extension/guards.c).

-- workflow_state.files_frozen: no file changes in a state that has it (nor in
-- a final one).  Added empty, then filled: a column added with its default
-- would keep that default as a "missing value" in the catalog, which a fresh
-- install has not.
ALTER TABLE workflow_state ADD COLUMN files_frozen boolean;
ALTER TABLE workflow_state ALTER COLUMN files_frozen SET DEFAULT false;
-- approved by the leader, the files are what the clerk seals and issues.
-- The rules' graph check runs at the end of this UPDATE rather than at
-- commit: ALTER TABLE cannot run on a table with trigger events pending.
SET CONSTRAINTS check_graph IMMEDIATE;
UPDATE workflow_state
   SET files_frozen = (workflow = 'outgoing' AND state = 'awaiting_issue' AND builtin);
SET CONSTRAINTS check_graph DEFERRED;
ALTER TABLE workflow_state ALTER COLUMN files_frozen SET NOT NULL;
COMMENT ON COLUMN workflow_state.files_frozen IS
  'The files of a document in this state can no longer change (as in a final state): approved, they are what is issued';

-- Whoever writes a file row, the engine or a role with the privilege: no
-- change in a final state or one that freezes the files (workflow_state.
-- files_frozen: approved, they are what gets sealed and issued), and a file's
-- bytes never change (extension/files.c).  SECURITY DEFINER: it reads the
-- document past row-level security.
CREATE FUNCTION _file_frozen() RETURNS trigger
    AS 'MODULE_PATHNAME', 'ioffice_file_frozen' LANGUAGE C
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
CREATE TRIGGER frozen BEFORE INSERT OR UPDATE OR DELETE ON file
    FOR EACH ROW EXECUTE FUNCTION _file_frozen();
CREATE TRIGGER frozen_truncate BEFORE TRUNCATE ON file
    FOR EACH STATEMENT EXECUTE FUNCTION _file_frozen();

-- issue checks that the approving leader's requested signature is on every current file
UPDATE workflow_transition SET guards = '{has_file,approver_signature}'
 WHERE workflow = 'outgoing' AND action = 'issue' AND from_state = 'awaiting_issue'
   AND builtin AND guards = '{has_file}';
