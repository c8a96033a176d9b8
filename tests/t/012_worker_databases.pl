# The workers and the databases of ioffice.worker_databases: a database that
# does not exist is tried again with a growing wait (5 s, 10 s, 20 s... at
# most 5 minutes), its error logged once with a hint, and worker_status shows
# it unreachable with the error; the other databases are served meanwhile,
# each row of worker_status with its own database's queue depths (NULL for
# the databases the view cannot read from where it is queried).
use strict;
use warnings;
use File::Basename qw(dirname);
use lib dirname(__FILE__);
use IofficeTest;
use Time::HiRes qw(usleep time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my ($pki, $keystore) = make_keystore();
my $receiver = listener_start('ok');

my $node = PostgreSQL::Test::Cluster->new('worker_databases');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'ioffice'
ioffice.worker_databases = ''
ioffice.keystore = '$keystore'
ioffice.keystore_personal = on
ioffice.worker_naptime = 1
});
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE second');

# two databases with different queues (set up with no worker running):
# pending events of an endpoint disabled since (3 and 5), dead ones (1 and
# 2), and in "second" a signature that fails
my %queue = (postgres => [3, 1], second => [5, 2]);
for my $db (sort keys %queue)
{
	my ($pending, $dead) = @{ $queue{$db} };
	signing_setup($node, $db, $pki);
	$node->safe_psql($db, qq{
INSERT INTO ioffice.endpoint (name, url, secret, events)
VALUES ('receiver', 'http://127.0.0.1:$receiver->{port}/hook', 'receiver-secret-0123456789', '{app.*}');
INSERT INTO ioffice.endpoint (name, url, secret, events)
VALUES ('off', 'http://127.0.0.1:9/off', 'off-secret-0123456789', '{held.*}');
SELECT ioffice.emit('held.event', jsonb_build_object('n', i)) FROM generate_series(1, $pending + $dead) i;
UPDATE ioffice.outbox SET status = 'dead', attempts = 12, last_error = 'HTTP 503'
 WHERE id IN (SELECT id FROM ioffice.outbox ORDER BY id LIMIT $dead);
UPDATE ioffice.endpoint SET enabled = false WHERE name = 'off';
});
}
$node->safe_psql('second', "SELECT ioffice.add_person('hoa', 'Nguyễn Thị Hoa', 'Phó Chánh Văn phòng', 2, '{leader}')");

$node->append_conf('postgresql.conf', "ioffice.worker_databases = 'postgres, nosuchdb, second'");
my $logstart = -s $node->logfile;
$node->restart;
my $t0 = time;

# --- the databases that exist are served -------------------------------------
for my $db (qw(postgres second))
{
	my $doc = new_doc_to_sign($node, $db, "Ký ở $db");
	as_actor($node, $db, 'dai', "SELECT ioffice.act($doc, 'sign')");
	ok($node->poll_query_until($db,
			"SELECT status = 'done' FROM ioffice.signature WHERE document_id = $doc"),
		"$db: the signer signs");
	$node->safe_psql($db, "SELECT ioffice.emit('app.hello', '{}')");
	ok($node->poll_query_until($db,
			"SELECT status = 'delivered' FROM ioffice.outbox WHERE event = 'app.hello'"),
		"$db: the deliverer delivers");
}
my $hoa_doc = as_actor($node, 'second', 'regress_luan', "SELECT ioffice.create_outgoing('CV', 'Không có chứng thư')");
as_actor($node, 'second', 'regress_luan',
	"SELECT ioffice.attach($hoa_doc, 'du_thao.pdf', convert_to('%PDF-1.4 hoa', 'UTF8'))");
as_actor($node, 'second', 'regress_luan',
	"SELECT ioffice.act($hoa_doc, 'submit', 'hoa', NULL, '{\"request_signature\": true}')");
as_actor($node, 'second', 'hoa', "SELECT ioffice.act($hoa_doc, 'sign')");
ok($node->poll_query_until('second',
		"SELECT status = 'failed' FROM ioffice.signature WHERE document_id = $hoa_doc"),
	'second: a signature without a certificate fails');

# --- nosuchdb: unreachable, tried again with a growing wait --------------------
# (the columns that came with the two processes are read with psql, which
# does not die on an older build: so every check runs there and fails)
sub status_of
{
	my ($db, $columns) = @_;
	my ($ret, $out, $err) = $node->psql('postgres',
		"SELECT $columns FROM ioffice.worker_status WHERE database = '$db'");
	return $out;
}
my $wait = 12 - (time - $t0);
sleep $wait if $wait > 0;
my ($state, $error) = split /\|/, status_of('nosuchdb', 'state, last_error');
is($state, 'unreachable', 'worker_status: nosuchdb is unreachable');
like($error // '', qr/database "nosuchdb" does not exist/, 'with the error');
my ($sstate, $dstate, $failures, $later) = split /\|/,
  status_of('nosuchdb', 'signer_state, delivery_state, connect_failures, next_connect_at > now()');
is(($sstate // '') . '|' . ($dstate // ''), 'unreachable|unreachable', 'both of its processes');
ok(defined $later && $failures >= 1 && $failures <= 3 && $later eq 't',
	'a few attempts in 12 s (' . ($failures // '?') . '), the next one later');

$wait = 17 - (time - $t0);
sleep $wait if $wait > 0;
my $log = slurp_file($node->logfile, $logstart);
my $complaints = () = $log =~ /database "nosuchdb" does not exist/g;
ok($complaints >= 1 && $complaints <= 2,
	"after 17 s the log holds the complaint about nosuchdb $complaints time(s), not at every attempt");
ok($log =~ /HINT:  ioffice\.worker_databases names database "nosuchdb": its ioffice workers try again in 5 s/,
	'with a hint: the setting names it, and the wait');
# the first wait is 5 s; after the second failure 10 s, after the third 20 s
my $grows;
($failures, $grows) = split /\|/,
  status_of('nosuchdb', "connect_failures, next_connect_at - last_error_at > interval '9 s'");
ok(defined $grows && $failures >= 2 && $failures <= 3 && $grows eq 't',
	'the waits grow: ' . ($failures // '?') . ' failures in 17 s, the next attempt more than 9 s after the last');

# --- each row has its own database's queue depths ----------------------------
for my $db (qw(postgres second))
{
	my %expect = (
		postgres => { postgres => '0|0|3|1|event 1 to off: HTTP 503', second => '-|-|-|-|-', nosuchdb => '-|-|-|-|-' },
		second => { postgres => '-|-|-|-|-', second => '0|1|5|2|event 2 to off: HTTP 503', nosuchdb => '-|-|-|-|-' });
	my $got = $node->safe_psql($db, q{
SELECT database || '=' || concat_ws('|', coalesce(signatures_pending::text, '-'),
       coalesce(signatures_failed::text, '-'), coalesce(outbox_pending::text, '-'),
       coalesce(outbox_dead::text, '-'), coalesce(outbox_last_dead, '-'))
  FROM ioffice.worker_status ORDER BY database});
	is($got, join("\n", map { "$_=$expect{$db}{$_}" } sort keys %{ $expect{$db} }),
		"seen from $db: each row with its own database's queues, NULL where they cannot be read");
}

# --- once the database exists, the workers connect ----------------------------
$node->safe_psql('postgres', 'CREATE DATABASE nosuchdb');
ok($node->poll_query_until('postgres',
		"SELECT state = 'no extension' FROM ioffice.worker_status WHERE database = 'nosuchdb'"),
	'once created, the database is served at the next attempt (no extension there yet)');
is(status_of('nosuchdb',
		"signer_state, delivery_state, connect_failures, next_connect_at IS NULL, signer_pid IS NOT NULL"),
	'no extension|no extension|0|t|t', 'both processes connected, the failures forgotten');
ok($node->log_contains(qr/ioffice (signer|deliverer) connected to database "nosuchdb" after \d+ failed attempts/, $logstart),
	'the log says it connected after the failures');
ok(!$node->log_contains(qr/terminating any other active server processes/, $logstart),
	'no crash restart of the server');

listener_stop($receiver);
$node->stop;
done_testing();
