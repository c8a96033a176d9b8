# The HTTP outbox: events are delivered by the worker to a local receiver
# (tests/receiver/http_receiver.py, loopback only) that checks the HMAC
# signature and counts repeats by idempotency key.  Delivery, an event whose
# transaction rolled back, retries with backoff, dead letters and requeueing,
# a receiver that is down for a while, a wrong secret, kill -9 of the worker
# and of the whole server in the middle of a batch, and a queue of thousands
# with bounded file descriptors.
use strict;
use warnings;
use File::Basename qw(dirname);
use HTTP::Tiny;
use lib dirname(__FILE__);
use ServerProcesses;
use JSON::PP;
use Time::HiRes qw(usleep time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $secret = 'outbox-test-secret-0123456789';
my $receiver_py = dirname(__FILE__) . '/../receiver/http_receiver.py';
my $dir = PostgreSQL::Test::Utils::tempdir;
my $http = HTTP::Tiny->new(timeout => 10);
my $json = JSON::PP->new->utf8;
my $port = 0;

# start the receiver (on $port once it has one, so that a restart is found
# at the same address)
sub receiver_start
{
	unlink "$dir/port";
	system_or_bail("python3 $receiver_py --port $port --port-file $dir/port "
		  . "--pid-file $dir/pid --secret $secret --log $dir/requests.jsonl "
		  . ">>$dir/receiver.out 2>&1 &");
	for (1 .. 100)
	{
		last if -s "$dir/port";
		usleep(100_000);
	}
	die "the receiver did not start" unless -s "$dir/port";
	$port = slurp_file("$dir/port");
	chomp $port;
	return;
}

sub receiver_stop
{
	my $pid = slurp_file("$dir/pid");
	chomp $pid;
	kill 'TERM', $pid;
	for (1 .. 100)
	{
		last unless kill 0, $pid;
		usleep(50_000);
	}
	return;
}

sub control
{
	my ($c) = @_;
	my $r = $http->post("http://127.0.0.1:$port/_control",
		{ content => $json->encode($c), headers => { 'Content-Type' => 'application/json' } });
	die "control: $r->{status} $r->{content}" unless $r->{success};
	return $json->decode($r->{content});
}

sub stats
{
	my $r = $http->get("http://127.0.0.1:$port/_stats");
	die "stats: $r->{status}" unless $r->{success};
	return $json->decode($r->{content});
}

# the requests the receiver logged for one idempotency key
sub requests_for
{
	my ($key) = @_;
	my @r;
	open my $fh, '<', "$dir/requests.jsonl" or return ();
	while (my $line = <$fh>)
	{
		my $rec = $json->decode($line);
		push @r, $rec if defined $rec->{key} && $rec->{key} eq $key;
	}
	close $fh;
	return @r;
}

receiver_start();

my $node = PostgreSQL::Test::Cluster->new('outbox');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'ioffice'
ioffice.worker_databases = 'postgres'
ioffice.worker_naptime = 1
ioffice.outbox_retry_base = '200ms'
ioffice.outbox_retry_max = '2s'
ioffice.outbox_max_connections = 8
restart_after_crash = on
});
$node->start;
$node->safe_psql('postgres', qq{
CREATE EXTENSION ioffice;
INSERT INTO ioffice.endpoint (name, url, secret, events)
VALUES ('tthc', 'http://127.0.0.1:$port/hook', '$secret', '{test.*,document.issued}');
});

sub pending
{
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM ioffice.outbox WHERE status <> 'delivered'");
}

sub wait_delivered
{
	my ($what) = @_;
	ok($node->poll_query_until('postgres',
			"SELECT count(*) = 0 FROM ioffice.outbox WHERE status = 'pending'"),
		"$what: the queue drains");
	return;
}

# --- delivery --------------------------------------------------------------
$node->safe_psql('postgres',
	"SELECT ioffice.emit('test.hello', jsonb_build_object('n', i)) FROM generate_series(1, 20) i");
is($node->safe_psql('postgres', "SELECT ioffice.emit('other.thing', '{}')"), '0',
	'an event no endpoint takes is not queued');
wait_delivered('20 events');
my $s = stats();
is($s->{distinct_keys}, 20, 'the receiver got 20 distinct idempotency keys');
is($s->{bad_signature}, 0, 'every signature checked out');
is($s->{duplicates}, 0, 'nothing was sent twice');
my ($key, $body) = split /\|/, $node->safe_psql('postgres',
	"SELECT idempotency_key, body->'data'->>'n' FROM ioffice.outbox ORDER BY id LIMIT 1");
my @r = requests_for($key);
is(scalar @r, 1, 'the first event was sent once');
is($r[0]{event}, 'test.hello', 'with its event name in X-Ioffice-Event');
is($r[0]{body}{data}{n}, 1, 'and its data in the body');
is($r[0]{body}{id}, $key, 'the body carries the idempotency key too');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM ioffice.outbox WHERE status = 'delivered' AND attempts = 1 AND last_status = 200"),
	'20', 'each marked delivered after one attempt, with the answer\'s status');

# --- an event whose transaction rolled back is never sent ------------------
my $before = stats()->{total};
$node->safe_psql('postgres', q{
BEGIN;
SELECT ioffice.emit('test.rolled_back', '{}');
SELECT pg_sleep(1.5);
ROLLBACK;
});
sleep 2;
is(stats()->{total}, $before, 'an event of a rolled-back transaction is never sent');

# --- the enqueue path never waits for the network --------------------------
control({ mode => 'stall', stall_seconds => 4, count => 1 });
is($node->safe_psql('postgres',
		"SET statement_timeout = '1s'; SELECT ioffice.emit('test.while_stalled', '{}')"),
	'1', 'emit() returns at once while the receiver stalls');
wait_delivered('after a stall');
control({ mode => 'ok' });

# --- retries with exponential backoff --------------------------------------
control({ mode => 'fail', status => 503, count => 3 });
$node->safe_psql('postgres', "SELECT ioffice.emit('test.retry', '{}')");
$key = $node->safe_psql('postgres',
	"SELECT idempotency_key FROM ioffice.outbox WHERE event = 'test.retry'");
wait_delivered('three failures');
@r = requests_for($key);
is(scalar @r, 4, 'three 503 answers, then delivered on the fourth attempt');
is(join(',', map { $_->{status} } @r), '503,503,503,200', 'the answers in order');
# base 200 ms doubling, jitter in [0.5, 1.5): waits of at least 0.1, 0.2, 0.4 s
my @gap = map { $r[$_]{arrived} - $r[ $_ - 1 ]{arrived} } 1 .. 3;
# (upper bounds are the rows' own business: next_attempt_at, checked below
# for ioffice.outbox_retry_max, without the machine's scheduling in it)
ok($gap[0] >= 0.09 && $gap[1] >= 0.19 && $gap[2] >= 0.39,
	sprintf('the waits grow: %.2f, %.2f, %.2f s', @gap));
is($node->safe_psql('postgres',
		"SELECT attempts, last_status, last_error IS NULL FROM ioffice.outbox WHERE event = 'test.retry'"),
	'4|200|t', 'the row counts four attempts');

# the doubling stops at ioffice.outbox_retry_max (2 s here): six failures in
# a row never wait longer than 2 s × 1.5
control({ mode => 'fail', status => 503, count => 6 });
$node->safe_psql('postgres', "SELECT ioffice.emit('test.capped', '{}')");
$key = $node->safe_psql('postgres',
	"SELECT idempotency_key FROM ioffice.outbox WHERE event = 'test.capped'");
wait_delivered('six failures');
@r = requests_for($key);
is(scalar @r, 7, 'six 503 answers, then delivered');
@gap = map { $r[$_]{arrived} - $r[ $_ - 1 ]{arrived} } 1 .. 6;
cmp_ok((sort { $b <=> $a } @gap)[0], '<', 3.0 + 0.5,
	sprintf('no wait beyond the cap: %s s', join(', ', map { sprintf('%.2f', $_) } @gap)));
cmp_ok($gap[5], '>=', 0.99, 'and the last waits at least half the cap');

# --- dead letters and requeueing -------------------------------------------
$node->safe_psql('postgres', q{
INSERT INTO ioffice.endpoint (name, url, secret, events, max_attempts)
VALUES ('gateway', 'http://127.0.0.1:9/nothing-listens', 'gateway-secret-0123456789', '{gateway.*}', 3);
SELECT ioffice.emit('gateway.sms', '{"to": "0913383345"}');
});
ok($node->poll_query_until('postgres',
		"SELECT status = 'dead' FROM ioffice.outbox WHERE event = 'gateway.sms'"),
	'after its last attempt the event is dead');
like($node->safe_psql('postgres',
		"SELECT attempts || ' ' || last_error FROM ioffice.outbox WHERE event = 'gateway.sms'"),
	qr/^3 .*(connect|Connection refused)/i, 'with three attempts and the last error');
like($node->safe_psql('postgres', q{SELECT outbox_dead || ' ' || outbox_last_dead FROM ioffice.worker_status}),
	qr/^1 event \d+ to gateway: /, 'worker_status shows the dead letter');
my ($ret, $out, $err) = $node->psql('postgres', 'SELECT ioffice.outbox_requeue(1)');
like($err, qr/is not dead/, 'a delivered event cannot be requeued');
($ret, $out, $err) = $node->psql('postgres', 'SELECT ioffice.outbox_requeue(999999)');
like($err, qr/unknown outbox event/, 'nor an unknown one');
($ret, $out, $err) = $node->psql('postgres', "SELECT ioffice.outbox_requeue(1, 'gateway')");
like($err, qr/not both/, 'an id or an endpoint, not both');
$node->safe_psql('postgres',
	"UPDATE ioffice.endpoint SET url = 'http://127.0.0.1:$port/gateway', secret = '$secret' WHERE name = 'gateway'");
is($node->safe_psql('postgres', "SELECT ioffice.outbox_requeue(endpoint => 'gateway')"), '1',
	'requeued by endpoint');
wait_delivered('the requeued dead letter');
is($node->safe_psql('postgres',
		"SELECT status || ' ' || attempts FROM ioffice.outbox WHERE event = 'gateway.sms'"),
	'delivered 1', 'delivered once the gateway is back, attempts counted afresh');

# --- the receiver is down for a while --------------------------------------
receiver_stop();
$node->safe_psql('postgres',
	"SELECT ioffice.emit('test.while_down', jsonb_build_object('n', i)) FROM generate_series(1, 10) i");
ok($node->poll_query_until('postgres',
		"SELECT bool_and(attempts >= 2) FROM ioffice.outbox WHERE event = 'test.while_down'"),
	'while the receiver is down the events are tried again and again');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM ioffice.outbox WHERE event = 'test.while_down' AND status = 'pending'"),
	'10', 'and stay pending');
receiver_start();
wait_delivered('after the receiver came back');
my $keys = $node->safe_psql('postgres',
	"SELECT string_agg(idempotency_key::text, ',') FROM ioffice.outbox WHERE event = 'test.while_down'");
is(scalar(grep { my @x = grep { $_->{status} == 200 } requests_for($_); @x == 1 } split /,/, $keys),
	10, 'all ten delivered, each exactly once');

# --- a wrong secret: refused by the receiver, retried until it is fixed ----
$node->safe_psql('postgres', q{
UPDATE ioffice.endpoint SET secret = 'not-the-right-secret-000' WHERE name = 'tthc';
SELECT ioffice.emit('test.signed', '{}');
});
ok($node->poll_query_until('postgres',
		"SELECT attempts >= 1 AND last_status = 401 FROM ioffice.outbox WHERE event = 'test.signed'"),
	'a wrong HMAC is refused (401) and the event stays pending');
ok(stats()->{bad_signature} >= 1, 'the receiver saw the bad signature');
$node->safe_psql('postgres', "UPDATE ioffice.endpoint SET secret = '$secret' WHERE name = 'tthc'");
wait_delivered('with the right secret');
# (retries with the wrong secret may have been in flight while it was fixed;
# once delivered, none can come any more)
my $bad_after_fix = stats()->{bad_signature};

# --- a slow endpoint holds a batch for a bounded time ----------------------
# Two connections, every answer 2 s late, batches cut after 1 s: a batch
# sends two requests and starts no more; the others wait for the next batch,
# with no attempt counted.
$node->safe_psql('postgres', q{
ALTER SYSTEM SET ioffice.outbox_batch_seconds = 1;
ALTER SYSTEM SET ioffice.outbox_max_connections = 2;
SELECT pg_reload_conf();
});
control({ mode => 'stall', stall_seconds => 2 });
$node->safe_psql('postgres',
	"SELECT ioffice.emit('test.slow', jsonb_build_object('n', i)) FROM generate_series(1, 8) i");
ok($node->poll_query_until('postgres',
		"SELECT count(*) >= 2 FROM ioffice.outbox WHERE event = 'test.slow' AND status = 'delivered'"),
	'a slow batch delivers what it started');
cmp_ok($node->safe_psql('postgres',
		"SELECT count(*) FROM ioffice.outbox WHERE event = 'test.slow' AND attempts = 0"),
	'>=', 2, 'and leaves the rest for later batches, not attempted');
wait_delivered('the slow endpoint');
is($node->safe_psql('postgres',
		"SELECT count(*), max(attempts) FROM ioffice.outbox WHERE event = 'test.slow' AND status = 'delivered'"),
	'8|1', 'all eight delivered, each with one attempt: a request not started counts none');
control({ mode => 'ok' });
$node->safe_psql('postgres', q{
ALTER SYSTEM RESET ioffice.outbox_batch_seconds;
ALTER SYSTEM RESET ioffice.outbox_max_connections;
SELECT pg_reload_conf();
});

# --- kill -9 in the middle of a batch --------------------------------------
# The receiver stalls, so a batch is in flight when the process dies; after
# the restart everything is delivered; a repeat can only carry the same key.
sub crash_mid_batch
{
	my ($what, $kill) = @_;
	control({ mode => 'stall', stall_seconds => 3 });
	$node->safe_psql('postgres',
		"SELECT ioffice.emit('test.$what', jsonb_build_object('n', i)) FROM generate_series(1, 50) i");
	my $t0 = stats()->{total};
	for (1 .. 100)
	{
		last if stats()->{total} > $t0;
		usleep(100_000);
	}
	ok(stats()->{total} > $t0, "$what: requests are in flight");
	$kill->();
	control({ mode => 'ok' });
	wait_delivered("$what, after the restart");
	my $rows = $node->safe_psql('postgres',
		"SELECT string_agg(idempotency_key::text, ',') FROM ioffice.outbox WHERE event = 'test.$what'");
	my @k = split /,/, $rows;
	is(scalar @k, 50, "$what: all 50 events are still there");
	is(scalar(grep { scalar(grep { $_->{status} == 200 } requests_for($_)) >= 1 } @k), 50,
		"$what: every one of them reached the receiver");
	return;
}

crash_mid_batch('worker_killed', sub {
	my $pid = $node->safe_psql('postgres', 'SELECT delivery_pid FROM ioffice.worker_status');
	kill 'KILL', $pid;
	# the postmaster restarts after a crash of a process attached to shared memory
	$node->poll_query_until('postgres',
		"SELECT delivery_pid IS NOT NULL AND delivery_pid <> $pid FROM ioffice.worker_status")
	  or die "no worker after the kill";
});
crash_mid_batch('server_killed', sub {
	# power cut: every server process dies at once (the postmaster frozen
	# first, so that it starts no new one meanwhile)
	my $pm = postmaster_pid($node);
	kill 'STOP', $pm;
	my @server = ($pm, children_of($pm));
	kill 'KILL', @server;
	$node->kill9;
	wait_gone(@server);
	$node->start;
});
is(stats()->{bad_signature}, $bad_after_fix, 'no bad signature after the secret was fixed');

# --- thousands queued: connections stay bounded ----------------------------
control({ mode => 'stall', stall_seconds => 0.01 });
$node->safe_psql('postgres',
	"SELECT ioffice.emit('test.many', jsonb_build_object('n', i)) FROM generate_series(1, 3000) i");
my $wpid = $node->safe_psql('postgres', 'SELECT delivery_pid FROM ioffice.worker_status');
# sockets the worker holds: its HTTP connections, plus a few of the server's own
sub sockets_of
{
	my ($pid) = @_;
	opendir(my $dh, "/proc/$pid/fd") or return -1;
	my $n = grep { (readlink("/proc/$pid/fd/$_") // '') =~ /^socket:/ } readdir $dh;
	closedir $dh;
	return $n;
}
my $max_fds = 0;
for (1 .. 600)
{
	my $n = sockets_of($wpid);
	$max_fds = $n if $n > $max_fds;
	last if $node->safe_psql('postgres',
		"SELECT count(*) = 0 FROM ioffice.outbox WHERE event = 'test.many' AND status = 'pending'") eq 't';
	usleep(100_000);
}
control({ mode => 'ok' });
wait_delivered('3000 events');
ok($max_fds > 0 && $max_fds <= 8 + 6,
	"the worker's sockets stayed bounded by outbox_max_connections (8) while 3000 were sent (at most $max_fds)");
is($node->safe_psql('postgres',
		"SELECT count(*) FROM ioffice.outbox WHERE event = 'test.many' AND status = 'delivered'"),
	'3000', 'all 3000 delivered');
# --- worker_status ----------------------------------------------------------
my $count = $node->safe_psql('postgres',
	"SELECT count(*) FROM ioffice.worker_status WHERE deliveries >= 1");
is($count, '1', 'worker_status counts deliveries');

receiver_stop();
$node->stop;
done_testing();
