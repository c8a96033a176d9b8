# SET LOCAL ioffice.actor behind a real pgbouncer in transaction pooling
# mode: two clients of the same role share ONE server connection
# (default_pool_size = 1) and must never act as each other.
use strict;
use warnings;

use IPC::Run;
use Time::HiRes qw(usleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $pgbouncer = '/usr/sbin/pgbouncer';
plan skip_all => "$pgbouncer is not installed" unless -x $pgbouncer;

# A psql session that can send without waiting, so a second client's
# statements can be queued in pgbouncer behind the first one's transaction.
package BouncerClient;

sub new
{
	my ($class, $connstr) = @_;
	my $self = bless { in => '', out => '', err => '', n => 0 }, $class;
	$self->{timer} = IPC::Run::timer($PostgreSQL::Test::Utils::timeout_default);
	$self->{run} = IPC::Run::start(
		[ 'psql', '-XAtq', '-v', 'VERBOSITY=verbose', '-d', $connstr, '-f', '-' ],
		'<', \$self->{in}, '>', \$self->{out}, '2>', \$self->{err},
		$self->{timer});
	return $self;
}

# Statements must end with ';': a bare ';' would itself be sent to the
# server and take a pooled connection.
sub send
{
	my ($self, $sql) = @_;
	my $n = ++$self->{n};
	$self->{in} .= "$sql\n\\echo 'END $n'\n\\warn 'END $n'\n";
	$self->{run}->pump_nb;
	return;
}

sub _finished
{
	my $self = shift;
	my $n = $self->{n};
	return $self->{out} =~ /^END $n\n/m && $self->{err} =~ /^END $n\n/m;
}

# True if the last send is still unanswered after $ms milliseconds.
sub still_waiting
{
	my ($self, $ms) = @_;
	for (1 .. $ms / 10)
	{
		$self->{run}->pump_nb;
		return 0 if $self->_finished;
		Time::HiRes::usleep(10_000);
	}
	return 1;
}

# Waits for the last send; returns (stdout, stderr) without the markers.
sub wait
{
	my $self = shift;
	$self->{timer}->start($PostgreSQL::Test::Utils::timeout_default);
	$self->{run}->pump until $self->_finished;
	my ($out, $err) = ($self->{out}, $self->{err});
	$out =~ s/^END \d+\n//mg;
	$err =~ s/^END \d+\n//mg;
	chomp $out;
	$self->{out} = $self->{err} = '';
	return ($out, $err);
}

sub query
{
	my ($self, $sql) = @_;
	$self->send($sql);
	return $self->wait;
}

sub quit
{
	my $self = shift;
	$self->{in} .= "\\q\n";
	$self->{run}->finish;
	return;
}

package main;

sub sqlstate
{
	my ($err) = @_;
	return $err =~ /ERROR:\s+([0-9A-Z]{5}):/ ? $1 : ($err eq '' ? 'none' : $err);
}

# is() on the SQLSTATE of psql's stderr, showing the whole message on failure
sub state_is
{
	my ($err, $want, $name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	is(sqlstate($err), $want, $name) or diag($err);
}

# Both check the actor: only the drafter may attach and submit a draft.
sub submit_sql
{
	my ($doc) = @_;
	return "SELECT ioffice.attach($doc, 'a.pdf', convert_to('%PDF-1.4 test', 'UTF8')); "
	  . "SELECT ioffice.act($doc, 'submit', 'carol');";
}

my $node = PostgreSQL::Test::Cluster->new('pgb');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'ioffice'");
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION ioffice;
CREATE ROLE regress_app LOGIN;
GRANT ioffice_app TO regress_app;
CREATE ROLE regress_mallory LOGIN;
});
my ($agency) = $node->safe_psql('postgres',
	q{SELECT ioffice.add_agency('UBND huyện Thử', 'UBND', '000.00.32.H99')});
my ($dept) = $node->safe_psql('postgres',
	"SELECT ioffice.add_department($agency, 'Văn phòng', 'VP')");
my %person;
for my $p ([ 'alice', 'specialist' ], [ 'bob', 'specialist' ], [ 'carol', 'leader' ])
{
	$person{ $p->[0] } = $node->safe_psql('postgres',
		"SELECT ioffice.add_person('$p->[0]', 'Người $p->[0]', NULL, $dept, '{$p->[1]}')");
}
isnt($person{alice}, $person{bob}, 'alice and bob are different persons');

# pgbouncer: its socket in a short folder (sun_path is ~100 bytes), its log
# with the test logs so that it is kept after a failure.
my $dir = PostgreSQL::Test::Utils::tempdir_short;
my $port = PostgreSQL::Test::Cluster::get_free_port();
my $log = "$PostgreSQL::Test::Utils::log_path/pgbouncer.log";
my ($host, $pgport) = ($node->host, $node->port);
open my $fh, '>', "$dir/userlist.txt" or die $!;
print $fh qq{"regress_app" ""\n"regress_mallory" ""\n};
close $fh;
open $fh, '>', "$dir/pgbouncer.ini" or die $!;
print $fh <<"EOF";
[databases]
postgres = host=$host port=$pgport dbname=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir = $dir
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
default_pool_size = 1
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 20
logfile = $log
pidfile = $dir/pgbouncer.pid
EOF
close $fh;

# pdeathsig: pgbouncer must not outlive a test that is killed (END blocks
# do not run then)
my @pdeath = -x '/usr/bin/setpriv' ? ('/usr/bin/setpriv', '--pdeathsig', 'KILL') : ();
my $bouncer = IPC::Run::start([ @pdeath, $pgbouncer, "$dir/pgbouncer.ini" ],
	'>', "$log.out", '2>&1');
$SIG{$_} = sub { die "killed by SIG$_[0]\n" } for qw(INT TERM HUP);

END
{
	# stop pgbouncer even when the test died half-way
	$bouncer->kill_kill(grace => 5) if $bouncer && $bouncer->pumpable;
}

my $via = "host=127.0.0.1 port=$port dbname=postgres";
my $up = 0;
for (1 .. 10 * $PostgreSQL::Test::Utils::timeout_default)
{
	my $rc = $node->psql('postgres', 'SELECT 1', connstr => "$via user=regress_app");
	if ($rc == 0) { $up = 1; last; }
	die "pgbouncer exited, see $log" unless $bouncer->pumpable;
	usleep(100_000);
}
ok($up, "pgbouncer accepts connections on 127.0.0.1:$port") or BAIL_OUT('no pgbouncer');

my %client = (
	alice => BouncerClient->new("$via user=regress_app application_name=A"),
	bob => BouncerClient->new("$via user=regress_app application_name=B"));

my ($out, $err) = $client{alice}->query('SELECT session_user;');
is($out, 'regress_app', 'client A is role regress_app through pgbouncer');
($out, $err) = $client{bob}->query('SELECT session_user;');
is($out, 'regress_app', 'client B is role regress_app through pgbouncer');

my $rounds = 12;
my $shared = 0;
my %expected;    # document id -> drafter login
my @rolled_back;
for my $i (1 .. $rounds)
{
	my ($x, $y) = $i % 2 ? ('alice', 'bob') : ('bob', 'alice');
	my ($cx, $cy) = ($client{$x}, $client{$y});
	my $fail = $i % 3 == 0;    # every third round, X's transaction aborts

	($out, $err) = $cx->query("BEGIN; SET LOCAL ioffice.actor = '$x';");
	state_is($err, 'none', "round $i: $x begins");
	($out, $err) = $cx->query('SELECT ioffice.actor(), pg_backend_pid();');
	my ($id_x, $pid_x) = split /\|/, $out;
	is($id_x, $person{$x}, "round $i: actor() is $x in $x\'s transaction");

	# Y's whole transaction waits in pgbouncer for the only server connection
	$cy->send("BEGIN; SET LOCAL ioffice.actor = '$y'; "
		  . "SELECT ioffice.actor(), pg_backend_pid(), "
		  . "ioffice.create_outgoing('CV', 'round $i by $y');");
	ok($cy->still_waiting(300), "round $i: $y waits while $x holds the connection");

	($out, $err) = $cx->query("SELECT ioffice.create_outgoing('CV', 'round $i by $x');");
	state_is($err, 'none', "round $i: $x creates a document");
	my $doc_x = $out;
	($out, $err) = $cx->query(submit_sql($doc_x));
	state_is($err, 'none', "round $i: $x attaches a file and submits it to carol");
	($out, $err) = $cx->query("SELECT ioffice.actor(), current_setting('ioffice.actor');");
	is($out, "$person{$x}|$x", "round $i: still $x after $y queued");
	if ($fail)
	{
		($out, $err) = $cx->query('SELECT 1/0;');
		state_is($err, '22012', "round $i: $x\'s transaction fails");
		$cx->query('ROLLBACK;');
		push @rolled_back, $doc_x;
	}
	else
	{
		($out, $err) = $cx->query('COMMIT;');
		state_is($err, 'none', "round $i: $x commits");
		$expected{$doc_x} = $x;
	}

	($out, $err) = $cy->wait;
	state_is($err, 'none', "round $i: $y\'s transaction runs after $x\'s ends");
	my ($id_y, $pid_y, $doc_y) = split /\|/, $out;
	is($id_y, $person{$y}, "round $i: actor() is $y, not $x, on the same pooled server");
	$shared++ if defined $pid_y && $pid_y eq $pid_x;

	# X's statement outside a transaction queues behind Y's open transaction
	# and runs right after it on the same server connection
	$cx->send('SELECT ioffice.actor();');
	ok($cx->still_waiting(300), "round $i: $x waits while $y holds the connection");
	($out, $err) = $cy->query(submit_sql($doc_y));
	state_is($err, 'none', "round $i: $y attaches a file and submits it to carol");
	($out, $err) = $cy->query('COMMIT;');
	state_is($err, 'none', "round $i: $y commits");
	$expected{$doc_y} = $y;

	($out, $err) = $cx->wait;
	state_is($err, '28000', "round $i: $x outside a transaction acts as nobody");
	unlike($out, qr/^\d+$/, "round $i: $x got no person id outside a transaction");
	($out, $err) = $cy->query('SELECT ioffice.actor();');
	state_is($err, '28000', "round $i: $y outside a transaction acts as nobody");
	($out, $err) = $cy->query("SELECT current_setting('ioffice.actor');");
	is($out, '', "round $i: ioffice.actor is empty after the transactions");
}
is($shared, $rounds, 'both clients ran on the same server backend in every round');

$_->quit for values %client;

# mallory is not in ioffice_app: the setting must not let her act for alice
my ($rc, $stdout, $stderr);
$rc = $node->psql(
	'postgres', q{\set VERBOSITY verbose
SELECT session_user;
BEGIN;
SET LOCAL ioffice.actor = 'alice';
SELECT ioffice.actor();
ROLLBACK;},
	connstr => "$via user=regress_mallory",
	stdout => \$stdout,
	stderr => \$stderr,
	on_error_stop => 0);
like($stdout, qr/^regress_mallory$/m, 'mallory connects through pgbouncer as herself');
state_is($stderr, '42501', 'mallory may not SET LOCAL ioffice.actor to alice');

$rc = $node->psql(
	'postgres', q{\set VERBOSITY verbose
BEGIN;
SET LOCAL ioffice.actor = 'alice';
SELECT ioffice.create_outgoing('CV', 'forged by mallory');
COMMIT;},
	connstr => "$via user=regress_mallory",
	stdout => \$stdout,
	stderr => \$stderr,
	on_error_stop => 0);
state_is($stderr, '42501', 'mallory cannot create a document as alice');

# What was recorded, read directly from the server as superuser
my $ids = join(',', sort { $a <=> $b } keys %expected);
my $got = $node->safe_psql('postgres', qq{
SELECT d.id || ':' || p.login
FROM ioffice.document d JOIN ioffice.person p ON p.id = d.drafter_id
ORDER BY d.id});
my $want = join("\n", map { "$_:$expected{$_}" } sort { $a <=> $b } keys %expected);
is($got, $want, 'every committed document has the right drafter and nothing else exists');

$got = $node->safe_psql('postgres', qq{
SELECT count(*) FROM ioffice.audit a JOIN ioffice.document d ON d.id = a.entity_id
WHERE a.entity = 'document' AND a.action IN ('create', 'submit')
  AND a.actor_id = d.drafter_id AND a.db_role = 'regress_app' AND d.id IN ($ids)});
is($got, 2 * keys %expected, 'create and submit are audited under the right actor');

$got = $node->safe_psql('postgres', qq{
SELECT count(*) FROM ioffice.file f JOIN ioffice.document d ON d.id = f.document_id
WHERE d.id IN ($ids) AND f.uploaded_by = d.drafter_id});
is($got, scalar keys %expected, 'every file was uploaded by its document\'s drafter');

$got = $node->safe_psql('postgres', qq{
SELECT count(*) FROM ioffice.task t
  JOIN ioffice.document d ON d.id = t.document_id
  JOIN ioffice.person p ON p.id = t.receiver_id
WHERE d.id IN ($ids) AND p.login = 'carol' AND t.sender_id = d.drafter_id});
is($got, scalar keys %expected, 'every document was sent to carol by its drafter');

$got = $node->safe_psql('postgres', 'SELECT count(*) FROM ioffice.document WHERE id IN ('
	  . join(',', @rolled_back) . ')');
is($got, '0', 'documents of rolled-back transactions do not exist');

is($node->safe_psql('postgres',
		q{SELECT count(*) FROM ioffice.audit WHERE entity = 'document' AND actor_id IS NULL}),
	'0', 'no document act was recorded without an actor');

is($node->safe_psql('postgres',
		q{SELECT count(*) FROM pg_stat_activity WHERE usename = 'regress_app'}),
	'1', 'pgbouncer used a single server connection for role regress_app');

$bouncer->kill_kill(grace => 5);
$node->safe_psql('postgres', 'DROP ROLE regress_app, regress_mallory');
$node->stop;
done_testing();
