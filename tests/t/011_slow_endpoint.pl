# An endpoint that accepts the connection and never answers (timeout_ms =
# 120000) must not hold up signing: signing and delivery are separate
# processes, and a leader's signature is done within 2 s of the request while
# the request to that endpoint hangs.  Nor may it hold the only connection
# for long while another endpoint's event waits: after
# ioffice.outbox_batch_seconds it gives the connection up (a failed attempt).
# Each process is started again on its own.
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
my $hang = listener_start('hang');
my $fast = listener_start('ok');

my $node = PostgreSQL::Test::Cluster->new('slow_endpoint');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'ioffice'
ioffice.worker_databases = 'postgres'
ioffice.keystore = '$keystore'
ioffice.keystore_personal = on
ioffice.worker_naptime = 1
ioffice.outbox_max_connections = 1
ioffice.outbox_batch_seconds = 3
ioffice.outbox_retry_base = '1h'
restart_after_crash = on
});
$node->start;
signing_setup($node, 'postgres', $pki);
$node->safe_psql('postgres', qq{
INSERT INTO ioffice.endpoint (name, url, secret, events, timeout_ms)
VALUES ('stuck', 'http://127.0.0.1:$hang->{port}/hook', 'stuck-secret-0123456789', '{test.*}', 120000),
       ('fast', 'http://127.0.0.1:$fast->{port}/hook', 'fast-secret-0123456789', '{fast.*}', 10000);
SELECT ioffice.emit('test.stuck', '{}');
});

# polls $sql until it returns 't', for at most $seconds; returns the seconds
# it took, or undef
sub within
{
	my ($seconds, $sql) = @_;
	my $t0 = time;
	while (time - $t0 < $seconds)
	{
		return time - $t0 if $node->safe_psql('postgres', $sql) eq 't';
		usleep(50_000);
	}
	return undef;
}

# --- the request to the stuck endpoint is in flight ---------------------------
for (1 .. 200)
{
	last if listener_accepted($hang) >= 1;
	usleep(50_000);
}
is(listener_accepted($hang), 1, 'the stuck endpoint accepted the request (and will never answer)');

# --- a leader signs meanwhile: done within 2 s --------------------------------
my $doc = new_doc_to_sign($node, 'postgres', 'Ký khi điểm nhận treo');
as_actor($node, 'postgres', 'dai', "SELECT ioffice.act($doc, 'sign')");
my $took = within(10, "SELECT count(*) = 1 FROM ioffice.signature WHERE document_id = $doc AND status = 'done'");
ok(defined $took && $took < 2,
	sprintf('the signature is done within 2 s of its request while a delivery hangs (%s)',
		defined $took ? sprintf('%.2f s', $took) : 'not within 10 s'));
is($node->safe_psql('postgres', "SELECT status, attempts FROM ioffice.outbox WHERE event = 'test.stuck'"),
	'pending|0', 'the stuck event is still in flight, no attempt recorded yet');

# --- worker_status shows both: signing done, delivery in flight ----------------
# (the signer is idle once the signed file's text is extracted for search:
# its state says "extracting text" meanwhile)
my $status_sql =
  "SELECT signer_state, delivery_state, signer_pid <> delivery_pid, jobs_done >= 1, state FROM ioffice.worker_status";
$node->poll_query_until('postgres', "SELECT signer_state = 'idle' FROM ioffice.worker_status");
my ($ret, $out, $err) = $node->psql('postgres', $status_sql);
is($out, 'idle|delivering|t|t|delivering',
	'worker_status: the signer idle (its job counted), the deliverer delivering, two processes; state says delivering');

# --- another endpoint's event takes the connection after outbox_batch_seconds --
my $t0 = time;
$node->safe_psql('postgres', "SELECT ioffice.emit('fast.one', '{}')");
$took = within(30, "SELECT status = 'delivered' FROM ioffice.outbox WHERE event = 'fast.one'");
ok(defined $took && $took < 3 + 3,
	sprintf('an event for another endpoint is delivered once the stuck request has had its 3 s (%s)',
		defined $took ? sprintf('%.2f s', $took) : 'not within 30 s'));
like($node->safe_psql('postgres',
		"SELECT status || ' ' || attempts || ' ' || coalesce(last_status::text, '-') || ' ' || last_error FROM ioffice.outbox WHERE event = 'test.stuck'"),
	qr/^pending 1 - .*no answer/, 'the stuck request gave up its connection: a failed attempt, to be tried again');

# --- each process is started again on its own -----------------------------------
my ($spid, $dpid) = split /\|/, $node->safe_psql('postgres', 'SELECT signer_pid, delivery_pid FROM ioffice.worker_status');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($dpid)");
ok(defined within(30, "SELECT coalesce(delivery_pid <> $dpid, false) FROM ioffice.worker_status"),
	'the deliverer is started again after pg_terminate_backend()');
is($node->safe_psql('postgres', 'SELECT signer_pid FROM ioffice.worker_status'), $spid,
	'the signer went on meanwhile, the same process');
$dpid = $node->safe_psql('postgres', 'SELECT delivery_pid FROM ioffice.worker_status');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($spid)");
ok(defined within(30, "SELECT coalesce(signer_pid <> $spid, false) FROM ioffice.worker_status"),
	'the signer is started again after pg_terminate_backend()');
is($node->safe_psql('postgres', 'SELECT delivery_pid FROM ioffice.worker_status'), $dpid,
	'the deliverer went on meanwhile, the same process');
$doc = new_doc_to_sign($node, 'postgres', 'Ký sau khi khởi động lại');
as_actor($node, 'postgres', 'dai', "SELECT ioffice.act($doc, 'sign')");
ok(defined within(30, "SELECT count(*) = 1 FROM ioffice.signature WHERE document_id = $doc AND status = 'done'"),
	'the new signer signs');
ok(!$node->log_contains(qr/terminating any other active server processes/),
	'no crash restart of the server');

listener_stop($hang);
listener_stop($fast);
$node->stop;
done_testing();
