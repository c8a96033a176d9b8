# The archive's 30-day warning of closed case files (Decree 30 appendix VI
# III.5b), sent by the worker on its own loop, with the server's clock moved
# by libfaketime.  Three case files are closed today: kept 10 years, kept
# permanently, kept 2 years.  The first two are due for the agency's archive
# a year after closing and are warned 30 days before: two days before that
# the worker sends nothing; the day after, one notify.email event per file
# goes to its person in charge, none for the file kept 2 years; the worker's
# next looks (a restart, and a direct call) send nothing more.
use strict;
use warnings;
use File::Basename qw(dirname);
use lib dirname(__FILE__);
use IofficeTest;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $libfaketime = (grep { -f } map { "/usr/lib/$_/faketime/libfaketime.so.1" }
	  ('x86_64-linux-gnu', 'aarch64-linux-gnu', ''))[0];
BAIL_OUT('libfaketime is missing (Debian package faketime)') unless $libfaketime;

my $node = PostgreSQL::Test::Cluster->new('case_file_archive');
$node->init(extra => [ '--encoding=UTF8', '--no-locale' ]);
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'ioffice'
ioffice.worker_databases = 'postgres'
ioffice.worker_naptime = 1
ioffice.timezone = 'Asia/Ho_Chi_Minh'
timezone = 'America/Los_Angeles'
});
$node->start;

$node->safe_psql('postgres', 'CREATE EXTENSION ioffice');
$node->safe_psql(
	'postgres', q{
	SELECT ioffice.add_agency('UBND xã Lưu Trữ', 'UBND', '000.00.51.H41') AS a \gset
	SELECT ioffice.add_person('vt', 'Văn Thư', 'Văn thư', :a, '{clerk}');
	SELECT ioffice.add_person('cv', 'Chuyên Viên', 'Chuyên viên', :a, '{specialist}');
	UPDATE ioffice.person SET email = 'cv@luutru.example.vn' WHERE login = 'cv';
	INSERT INTO ioffice.endpoint (name, url, secret, events)
	VALUES ('gateway', 'http://127.0.0.1:9/notify', 'a-secret-of-the-gateway', '{notify.*}');
});
as_actor(
	$node, 'postgres', 'vt', q{
	SELECT ioffice.add_case_file(u.id, extract(year FROM now() AT TIME ZONE ioffice.timezone())::int,
	                             n, 'Hồ sơ ' || n, r, 'cv')
	  FROM ioffice.unit u, (VALUES ('01.VT', '10'), ('02.VT', 'permanent'), ('03.VT', '2')) v(n, r)
	 WHERE u.code = '000.00.51.H41';
	SELECT ioffice.close_case_file(c.id) FROM ioffice.case_file c});

# the day the warnings are due (30 days before the due date, a year after
# closing), in Hà Nội
my $warn_on = $node->safe_psql('postgres',
	q{SELECT DISTINCT warn_on FROM ioffice.case_file_archive_due});
like($warn_on, qr/^\d{4}-\d{2}-\d{2}$/, 'two files kept 5 years or more are due on one day');
is($node->safe_psql('postgres', q{SELECT string_agg(notation, ',' ORDER BY notation)
	FROM ioffice.case_file c JOIN ioffice.case_file_archive_due d ON d.case_file_id = c.id}),
	'01.VT,02.VT', 'the file kept 2 years is not due');

sub notices
{
	return $node->safe_psql('postgres',
		q{SELECT count(*) FROM ioffice.outbox WHERE event LIKE 'notify.%'});
}

# the server (and its clients) restarted at noon in Hà Nội on a given day,
# waiting for the worker's first pass, which looks at the warnings
sub restart_at
{
	my ($day) = @_;
	my $target = $node->safe_psql('postgres',
		qq{SELECT extract(epoch FROM (date '$day' + time '12:00') AT TIME ZONE 'Asia/Ho_Chi_Minh')::bigint});
	$node->stop;
	my $offset = $target - time();
	$ENV{LD_PRELOAD} = $libfaketime;
	$ENV{FAKETIME} = ($offset >= 0 ? '+' : '') . $offset;
	$ENV{FAKETIME_DONT_FAKE_MONOTONIC} = 1;
	$node->start;
	is($node->safe_psql('postgres',
			q{SELECT (now() AT TIME ZONE 'Asia/Ho_Chi_Minh')::date}),
		$day, "the server believes it is $day in Hà Nội");
	# libfaketime does not reach the processes the postmaster starts at
	# start-up (from its signal handlers: the workers, the autovacuum
	# launcher); a worker it starts again later, from its loop, gets the
	# clock of the backends: stop the signer once, and wait for the new one
	# to make its first pass
	my $pid = $node->safe_psql('postgres', 'SELECT signer_pid FROM ioffice.worker_status');
	$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
	ok($node->poll_query_until('postgres',
			qq{SELECT signer_pid <> $pid AND signer_state = 'idle'
			     AND (started_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date = '$day'
			   FROM ioffice.worker_status}),
		'a new signer on the server\'s clock made its first pass');
	return;
}

# two days before: nothing
my $before = $node->safe_psql('postgres', qq{SELECT date '$warn_on' - 2});
restart_at($before);
is(notices(), '0', 'two days before the warning is due, nothing is sent');
is($node->safe_psql('postgres', q{SELECT count(*) FROM ioffice.case_file WHERE warned_at IS NOT NULL}),
	'0', 'no file is marked warned');

# the day after: one event per file kept 5 years or more
my $after = $node->safe_psql('postgres', qq{SELECT date '$warn_on' + 1});
restart_at($after);
ok($node->poll_query_until('postgres',
		q{SELECT count(*) = 2 FROM ioffice.outbox WHERE event LIKE 'notify.%'}),
	'the worker sent the warnings');
is($node->safe_psql('postgres', q{
	SELECT string_agg(DISTINCT o.event, ',') || ' ' || count(DISTINCT c.id) || ' '
	       || bool_and(o.body::text LIKE '%cv@luutru.example.vn%')
	  FROM ioffice.outbox o
	  JOIN ioffice.case_file c ON o.body::text LIKE '%"' || c.code || '"%'
	 WHERE o.event LIKE 'notify.%'}),
	'notify.email 2 true', 'one notify.email per file kept 5 years or more, to its person in charge');
is($node->safe_psql('postgres', q{
	SELECT string_agg(notation, ',' ORDER BY notation) FROM ioffice.case_file WHERE warned_at IS NOT NULL}),
	'01.VT,02.VT', 'both files are marked warned, not the one kept 2 years');

# once: a direct call, and the worker's pass after a restart, send nothing more
is($node->safe_psql('postgres', 'SELECT ioffice.case_file_archive_warnings()'), '0',
	'a second look warns of nothing');
my $later = $node->safe_psql('postgres', qq{SELECT date '$warn_on' + 20});
restart_at($later);
is(notices(), '2', 'the worker does not warn again');
is($node->safe_psql('postgres',
		q{SELECT count(*) FROM ioffice.audit WHERE entity = 'case_file' AND action = 'archive_warning'}),
	'2', "each warning is in its case file's audit chain, once");
is($node->safe_psql('postgres', q{SELECT count(*) FROM ioffice.audit_verify()}), '0',
	'the audit trail is intact');

# a transferred file, read-only, comes back whole from pg_dump and
# pg_restore (its trigger lets a restore load its rows)
as_actor($node, 'postgres', 'vt', q{
	SELECT ioffice.register_incoming('CV', 'Văn bản lưu', 'Sở Nội vụ', '3/SNV-VP',
	                                 (now() AT TIME ZONE ioffice.timezone())::date);
	SELECT ioffice.add_case_file(u.id, extract(year FROM now() AT TIME ZONE ioffice.timezone())::int,
	                             '04.VT', 'Hồ sơ nộp lưu', '20', 'cv')
	  FROM ioffice.unit u WHERE u.code = '000.00.51.H41';
	SELECT ioffice.file_into(c.id, d.id) FROM ioffice.case_file c, ioffice.document d
	 WHERE c.notation = '04.VT' AND d.abstract = 'Văn bản lưu';
	SELECT ioffice.close_case_file(c.id) FROM ioffice.case_file c WHERE c.notation = '04.VT';
	SELECT ioffice.transfer_case_files(array_agg(c.id)) FROM ioffice.case_file c WHERE c.state = 'closed'});
my @conn = ('-h', $node->host, '-p', $node->port);
my $dump = PostgreSQL::Test::Utils::tempdir . '/cases.dump';
my ($out, $err) = ('', '');
ok(IPC::Run::run([ 'pg_dump', @conn, '-Fc', '-f', $dump, 'postgres' ], '>', \$out, '2>', \$err),
	'pg_dump of the case files');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
ok(IPC::Run::run([ 'pg_restore', @conn, '-d', 'restored', $dump ], '>', \$out, '2>', \$err),
	'pg_restore of the transferred case files') or diag($err);
for my $table (qw(case_file case_file_document archive_transfer))
{
	is(table_digest($node, 'restored', $table), table_digest($node, 'postgres', $table),
		"$table restored as it was");
}

$node->stop;
delete $ENV{LD_PRELOAD};
delete $ENV{FAKETIME};
done_testing();
