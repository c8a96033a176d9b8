# A backup restores however the DBA runs it: rules a DBA added with plain SQL
# (a state and its transitions in the outgoing workflow, as the README shows,
# and a whole new workflow), a document type, a register and holidays come
# back with pg_restore run the default way (each table's data committed
# apart) and with pg_dump's script piped into psql (each COPY committed
# apart), where the commit-time check of the rules' shape cannot hold table
# by table.  Afterwards the rows are all there, act() follows the added
# state, workflow_check() and audit_verify() find nothing.  The check is
# skipped for a restore only: an ordinary role turning check_function_bodies
# off is still refused, and rules a restore left incomplete are reported by
# workflow_check() and stop act() until they are fixed.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use IofficeTest;

my $node = PostgreSQL::Test::Cluster->new('restore_rules');
$node->init(extra => [ '--encoding=UTF8', '--no-locale' ]);
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'ioffice'\n");
$node->start;

my @conn = ('-h', $node->host, '-p', $node->port);

my $pdf_sql = q{convert_to(E'%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n', 'UTF8')};

$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql('src', 'CREATE EXTENSION ioffice');
my $agency = $node->safe_psql('src',
	q{SELECT ioffice.add_agency('Sở Nội vụ tỉnh Thử', 'SNV', '000.00.32.H41')});
my $dept = $node->safe_psql('src',
	qq{SELECT ioffice.add_department($agency, 'Văn phòng', 'VP')});
$node->safe_psql(
	'src', qq{
	SELECT ioffice.add_person('chuyenvien', 'Nguyễn Văn Chuyên', 'Chuyên viên', $dept, '{specialist}');
	SELECT ioffice.add_person('lanhdao', 'Trần Thị Lãnh', 'Giám đốc', $agency, '{leader}');
	SELECT ioffice.add_person('thamdinh', 'Phạm Văn Định', 'Chánh Văn phòng', $dept, '{leader}');
	SELECT ioffice.add_person('vanthu', 'Lê Văn Thư', 'Văn thư', $dept, '{clerk}');
});

# --- what a DBA adds with plain SQL ----------------------------------------

# the README's appraisal state, in one transaction (the shape is checked at
# commit), and a small workflow of its own
$node->safe_psql(
	'src', q{
BEGIN;
INSERT INTO ioffice.workflow_state (workflow, state, label) VALUES ('outgoing', 'appraisal', 'Thẩm định');
INSERT INTO ioffice.workflow_transition (workflow, action, from_state, to_state, label, taken_by, receiver, receiver_role)
VALUES ('outgoing', 'send_appraisal', 'reviewing', 'appraisal', 'Chuyển thẩm định', 'holder', 'given', 'leader'),
       ('outgoing', 'appraised', 'appraisal', 'reviewing', 'Đã thẩm định', 'holder', 'given', 'leader');
COMMIT;
BEGIN;
INSERT INTO ioffice.workflow (name, label) VALUES ('internal_note', 'Ghi chú nội bộ');
INSERT INTO ioffice.workflow_state (workflow, state, label, initial, final)
VALUES ('internal_note', 'open', 'Mở', true, false), ('internal_note', 'closed', 'Đóng', false, true);
INSERT INTO ioffice.workflow_transition (workflow, action, from_state, to_state, label, taken_by)
VALUES ('internal_note', 'close', 'open', 'closed', 'Đóng', 'drafter');
COMMIT;
});
$node->safe_psql('src',
	q{INSERT INTO ioffice.doc_type (code, name, abbr) VALUES ('TTrx', 'Tờ trình thẩm định', 'TTrTĐ')});
my $decisions = $node->safe_psql('src', qq{
INSERT INTO ioffice.register (agency_id, direction, code, name, doc_types, year)
SELECT agency_id, 'outgoing', 'decisions', 'Sổ quyết định', '{QĐ}', year FROM ioffice.register
 WHERE agency_id = $agency AND code = 'outgoing' RETURNING id});
$node->safe_psql('src',
	q{INSERT INTO ioffice.holiday (day, name, working) VALUES
	  ('2024-04-29', 'Nghỉ hoán đổi', false), ('2024-05-04', 'Làm bù cho 29/4', true)});
is($node->safe_psql('src', 'SELECT count(*) FROM ioffice.workflow_check()'),
	'0', 'the source rules are sound');

# --- documents that use them -----------------------------------------------

# a decision that went through appraisal, numbered in the DBA's register
my $qd = as_actor($node, 'src', 'chuyenvien',
	q{SELECT ioffice.create_outgoing('QĐ', 'Quyết định sau thẩm định', '{"signer": "lanhdao"}')});
as_actor($node, 'src', 'chuyenvien', qq{SELECT ioffice.attach($qd, 'qd.pdf', $pdf_sql)});
as_actor($node, 'src', 'chuyenvien', qq{SELECT ioffice.act($qd, 'submit', 'lanhdao')});
is(as_actor($node, 'src', 'lanhdao', qq{SELECT ioffice.act($qd, 'send_appraisal', 'thamdinh')}),
	'appraisal', 'the decision goes to appraisal');
is(as_actor($node, 'src', 'thamdinh', qq{SELECT ioffice.act($qd, 'appraised', 'lanhdao')}),
	'reviewing', 'and comes back appraised');
as_actor($node, 'src', 'lanhdao', qq{SELECT ioffice.act($qd, 'approve', 'vanthu')});
is(as_actor($node, 'src', 'vanthu',
		qq{SELECT ioffice.act($qd, 'issue', NULL, NULL, '{"register": $decisions}')}),
	'issued', 'the decision is issued in the DBA\'s register');

# a document of the DBA's type left in the DBA's state: its row needs the
# state restored before it
my $held = as_actor($node, 'src', 'chuyenvien',
	q{SELECT ioffice.create_outgoing('TTrx', 'Tờ trình đang thẩm định')});
as_actor($node, 'src', 'chuyenvien', qq{SELECT ioffice.attach($held, 'tt.pdf', $pdf_sql)});
as_actor($node, 'src', 'chuyenvien', qq{SELECT ioffice.act($held, 'submit', 'lanhdao')});
is(as_actor($node, 'src', 'lanhdao', qq{SELECT ioffice.act($held, 'send_appraisal', 'thamdinh')}),
	'appraisal', 'a document waits in appraisal');

# a number of the confidential series, taken by another system
my $secret = $node->safe_psql('src',
	"SELECT id FROM ioffice.register WHERE agency_id = $agency AND confidential");
like(as_actor($node, 'src', 'vanthu', qq{SELECT symbol FROM ioffice.take_number($secret, 'QĐ')}),
	qr{^01/QĐ-SNV-M$}, 'a number taken in the confidential series');

# --- the two ways of restoring ----------------------------------------------

my ($out, $err, $ok);
my $dump = "$PostgreSQL::Test::Utils::tmp_check/rules.dump";
$ok = IPC::Run::run([ 'pg_dump', @conn, '-Fc', '-f', $dump, 'src' ], '>', \$out, '2>', \$err);
ok($ok, 'pg_dump -Fc exits with 0');
is($err, '', 'pg_dump writes nothing on stderr');

# pg_restore, the default way: not --single-transaction
$node->safe_psql('postgres', 'CREATE DATABASE by_pg_restore');
$ok = IPC::Run::run([ 'pg_restore', @conn, '-d', 'by_pg_restore', $dump ],
	'>', \$out, '2>', \$err);
ok($ok, 'pg_restore exits with 0');
is($err, '', 'pg_restore writes nothing on stderr');

# pg_dump's script into psql, as a DBA types it (no ON_ERROR_STOP: an error
# would only show on stderr)
$node->safe_psql('postgres', 'CREATE DATABASE by_psql');
$ok = IPC::Run::run([ 'pg_dump', @conn, 'src' ], '|',
	[ 'psql', '-X', '-q', @conn, '-d', 'by_psql' ], '>', \$out, '2>', \$err);
ok($ok, 'pg_dump | psql exits with 0');
is($err, '', 'pg_dump | psql writes nothing on stderr');

for my $db (qw(by_pg_restore by_psql))
{
	for my $table (
		qw(workflow workflow_state workflow_transition doc_type register holiday
		document task number_taken audit))
	{
		my $src = table_digest($node, 'src', $table);
		is(table_digest($node, $db, $table), $src, "$db: table $table restored ($src)");
	}
	is($node->safe_psql($db, q{
SELECT (SELECT count(*) FROM ioffice.workflow_state WHERE state = 'appraisal' AND NOT builtin)
    || ' ' || (SELECT count(*) FROM ioffice.workflow_transition
               WHERE action IN ('send_appraisal', 'appraised') AND NOT builtin)
    || ' ' || (SELECT count(*) FROM ioffice.workflow_state WHERE workflow = 'internal_note')
    || ' ' || (SELECT count(*) FROM ioffice.doc_type WHERE code = 'TTrx')
    || ' ' || (SELECT count(*) FROM ioffice.register WHERE code = 'decisions')
    || ' ' || (SELECT count(*) FROM ioffice.holiday)}),
		'1 2 2 1 1 2', "$db: the DBA's state, transitions, workflow, type, register and holidays");
	is($node->safe_psql($db, "SELECT state FROM ioffice.document WHERE id = $held"),
		'appraisal', "$db: the document waiting in appraisal is there");
	is($node->safe_psql($db, 'SELECT count(*) FROM ioffice.workflow_check()'),
		'0', "$db: workflow_check() finds nothing");
	is($node->safe_psql($db, 'SELECT count(*) FROM ioffice.audit_verify()'),
		'0', "$db: the restored audit trail is intact");

	# the added state works: out of it, and into it again
	is(as_actor($node, $db, 'thamdinh', qq{SELECT ioffice.act($held, 'appraised', 'lanhdao')}),
		'reviewing', "$db: act() takes the document out of appraisal");
	is(as_actor($node, $db, 'lanhdao', qq{SELECT ioffice.act($held, 'send_appraisal', 'thamdinh')}),
		'appraisal', "$db: and sends it to appraisal again");
	my $next = as_actor($node, $db, 'chuyenvien',
		q{SELECT ioffice.create_outgoing('QĐ', 'Quyết định sau phục hồi')});
	as_actor($node, $db, 'chuyenvien', qq{SELECT ioffice.attach($next, 'qd2.pdf', $pdf_sql)});
	as_actor($node, $db, 'chuyenvien', qq{SELECT ioffice.act($next, 'submit', 'lanhdao')});
	as_actor($node, $db, 'lanhdao', qq{SELECT ioffice.act($next, 'send_appraisal', 'thamdinh')});
	as_actor($node, $db, 'thamdinh', qq{SELECT ioffice.act($next, 'appraised', 'lanhdao')});
	as_actor($node, $db, 'lanhdao', qq{SELECT ioffice.act($next, 'approve', 'vanthu')});
	as_actor($node, $db, 'vanthu',
		qq{SELECT ioffice.act($next, 'issue', NULL, NULL, '{"register": $decisions}')});
	is($node->safe_psql($db, "SELECT symbol FROM ioffice.document WHERE id = $next"),
		'02/QĐ-SNV', "$db: a new decision goes through appraisal and takes 02 in the DBA's register");
	is($node->safe_psql($db, 'SELECT count(*) FROM ioffice.audit_verify()'),
		'0', "$db: the audit trail is intact after the new acts");
}

# --- the checks are not bypassed --------------------------------------------

# a DBA that is no superuser: turning check_function_bodies off makes no
# restore of its session, a state without a way out is refused at commit
my $db = 'by_psql';
$node->safe_psql($db, 'CREATE ROLE regress_dba LOGIN IN ROLE ioffice_admin');
my ($ret, $stdout, $stderr) = $node->psql(
	$db, q{
SET check_function_bodies = off;
BEGIN;
INSERT INTO ioffice.workflow_state (workflow, state, label) VALUES ('outgoing', 'limbo', 'Treo');
COMMIT;
}, extra_params => [ '-U', 'regress_dba' ]);
like($stderr, qr/state "limbo" of workflow "outgoing" has no way out to a final state/,
	'an ioffice_admin role is refused a state without a way out, check_function_bodies off or not');
is($node->safe_psql($db, q{SELECT count(*) FROM ioffice.workflow_state WHERE state = 'limbo'}),
	'0', 'and the state is not there');

# the same rows loaded the way a restore loads them (a superuser session with
# check_function_bodies off, as a partial pg_restore would): kept, reported
# by workflow_check(), and act() refuses to follow the incomplete rules
$node->safe_psql($db, q{
SET check_function_bodies = off;
INSERT INTO ioffice.workflow_state (workflow, state, label) VALUES ('outgoing', 'limbo', 'Treo');
});
is($node->safe_psql($db, q{SELECT workflow || ': ' || problem FROM ioffice.workflow_check()}),
	'outgoing: state "limbo" of workflow "outgoing" has no way out to a final state',
	'workflow_check() names the state a restore left without a way out');
is($node->safe_psql($db, q{SELECT count(*) FROM ioffice.workflow_check('internal_note')}),
	'0', 'workflow_check() of another workflow finds nothing');
($ret, $stdout, $stderr) = try_as_actor($node, $db, 'thamdinh',
	"SELECT ioffice.act($held, 'appraised', 'lanhdao')",
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($stderr, qr/55000: the rules of workflow "outgoing" are not sound: state "limbo"/,
	'act() refuses to follow the rules until they are fixed (55000)');
$node->safe_psql($db, q{DELETE FROM ioffice.workflow_state WHERE state = 'limbo'});
is(as_actor($node, $db, 'thamdinh', qq{SELECT ioffice.act($held, 'appraised', 'lanhdao')}),
	'reviewing', 'once fixed, act() goes on');

$node->safe_psql($db, 'DROP ROLE regress_dba');
$node->stop;
done_testing();
