# The background worker on a hot standby: it sees the replicated queue and
# leaves it alone (worker_status 'standby'); once the standby is promoted it
# signs what is pending.  After an error that escapes a batch the postmaster
# starts it again, and it goes on working.
use strict;
use warnings;
use File::Basename qw(dirname);
use File::Copy qw(copy);
use Time::HiRes qw(usleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use IofficeTest;

my $pki = PostgreSQL::Test::Utils::tempdir;
my $keystore = PostgreSQL::Test::Utils::tempdir;
my $make_pki = dirname(__FILE__) . '/../pki/make_pki';
system_or_bail('bash', $make_pki, $pki);
copy("$pki/person_rsa.key", "$keystore/person_rsa.key") or die "copy person_rsa.key: $!";
chmod 0600, "$keystore/person_rsa.key";

my $worker_conf = qq{
shared_preload_libraries = 'ioffice'
ioffice.worker_databases = 'postgres'
ioffice.keystore = '$keystore'
ioffice.keystore_personal = on
ioffice.worker_naptime = 1
restart_after_crash = on
};

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', $worker_conf);
$primary->start;

my $chain = slurp_file("$pki/intermediate.pem");
$primary->safe_psql('postgres', qq{
CREATE EXTENSION ioffice;
SELECT ioffice.add_agency('UBND huyện Sốp Cộp', 'UBND', '000.00.32.H41');
SELECT ioffice.add_department(1, 'Văn phòng HĐND-UBND', 'VP');
SELECT ioffice.add_person('regress_luan', 'Tòng Văn Luân', 'Chuyên viên', 2, '{specialist}');
SELECT ioffice.add_person('dai', 'Trần Văn Đại', 'Chánh Văn phòng', 2, '{leader}');
SELECT ioffice.add_person('regress_thuy', 'Tòng Văn Thủy', 'Văn thư', 1, '{clerk}');
SELECT ioffice.add_trust_anchor(@{[ sql_literal(slurp_file("$pki/root.pem")) ]});
SELECT ioffice.add_crl(@{[ sql_literal(slurp_file("$pki/intermediate.crl.pem")) ]});
SELECT ioffice.register_certificate('personal', 'dai', @{[ sql_literal(slurp_file("$pki/person_rsa.pem") . $chain) ]}, 'person_rsa.key');
});

# the standby: from a backup, streaming, with the same settings (its
# postgresql.conf is the primary's, copied by the backup)
$primary->backup('backup');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'backup', has_streaming => 1);
$standby->append_conf('postgresql.conf', $worker_conf);
$standby->start;

# no worker on the primary from now on, so that a queued job stays pending
$primary->append_conf('postgresql.conf', "ioffice.worker_databases = ''");
$primary->restart;
is($primary->safe_psql('postgres', "SELECT count(*) FROM ioffice.worker_status"), '0',
	'the primary serves no database: no worker');

# a document dai signs: its job is queued
sub new_doc
{
	my ($node, $abstract) = @_;
	my $doc = new_doc_to_sign($node, 'postgres', $abstract);
	as_actor($node, 'postgres', 'dai', "SELECT ioffice.act($doc, 'sign', NULL, NULL, '{\"mode\": \"vgca\"}')");
	return $doc;
}

sub job_status
{
	my ($node, $doc) = @_;
	return $node->safe_psql('postgres', "SELECT string_agg(status, ',' ORDER BY id) FROM ioffice.signature WHERE document_id = $doc");
}

# polls $sql until it returns 't', for at most $seconds; no failure of its own
sub within
{
	my ($node, $seconds, $sql) = @_;
	for (1 .. $seconds * 10)
	{
		return 1 if $node->safe_psql('postgres', $sql) eq 't';
		usleep(100_000);
	}
	return 0;
}

# --- the standby: the job is replicated, the worker leaves it alone ---------------
my $doc = new_doc($primary, 'Công văn ký sau khi chuyển đổi');
is(job_status($primary, $doc), 'pending', 'the sign request is queued on the primary');
$primary->wait_for_catchup($standby);
is(job_status($standby, $doc), 'pending', 'the job reached the standby');

ok($standby->poll_query_until('postgres', "SELECT state = 'standby' FROM ioffice.worker_status"),
	'worker_status on the standby says standby');
sleep 3;
is(job_status($standby, $doc), 'pending', 'the job stays pending on the standby');
is(job_status($primary, $doc), 'pending', 'and on the primary');
my ($state, $pid, $batches, $done, $error) = split /\|/, $standby->safe_psql('postgres',
	"SELECT state, coalesce(pid, 0), batches, jobs_done, coalesce(last_error, '-') FROM ioffice.worker_status");
is("$state|$batches|$done|$error", 'standby|0|0|-', 'the standby worker took no batch and met no error');
ok($pid > 0, "the standby worker runs (pid $pid)");
ok(!$standby->log_contains(qr/\[$pid\] .*(?:ERROR|FATAL)|background worker "ioffice worker[^"]*" \(PID \d+\) exited/),
	'no error from the worker in the standby\'s log, and it never exited');

# --- promotion: the same worker process signs the pending job ---------------------
$primary->stop;
$standby->promote;
is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 'f', 'the standby is promoted');
ok($standby->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM ioffice.signature WHERE document_id = $doc AND status = 'pending'"),
	'the pending job is taken after promotion');
is($standby->safe_psql('postgres', "SELECT status, coalesce(reason, '-'), length(cms) > 500 FROM ioffice.signature WHERE document_id = $doc"),
	'done|-|t', 'the signature is done, with a CMS');
ok($standby->poll_query_until('postgres', "SELECT state = 'idle' AND jobs_done >= 1 FROM ioffice.worker_status"),
	'worker_status: idle, the job counted');
is($standby->safe_psql('postgres', "SELECT pid FROM ioffice.worker_status"), $pid,
	'it was the worker that waited on the standby, not a new one');
my $file = $standby->safe_psql('postgres', "SELECT id FROM ioffice.file WHERE document_id = $doc");
is(as_actor($standby, 'postgres', 'dai', "SELECT string_agg(kind || ':' || valid || ':' || coalesce(reason, '-'), ',') FROM ioffice.verify($file)"),
	'personal:true:-', 'verify(): the signature made on the promoted node is valid');
is(as_actor($standby, 'postgres', 'dai', "SELECT ioffice.act($doc, 'approve', 'regress_thuy')"), 'awaiting_issue',
	'approve goes through on the promoted node');
is($standby->safe_psql('postgres', "SELECT count(*) FROM ioffice.audit_verify()"), '0',
	'the audit trail is intact after promotion');

# --- a job whose outcome cannot be recorded stays pending; the worker lives on ----
# A trigger refuses every update of a job's outcome: signing it fails, and
# recording the failure fails too.  The job stays pending (a warning says so)
# and the worker goes on; once the cause is gone it signs the job.
my $node = $standby;
$node->safe_psql('postgres', q{
CREATE FUNCTION public.refuse_outcome() RETURNS trigger LANGUAGE plpgsql AS
$$BEGIN RAISE EXCEPTION 'test: outcomes cannot be recorded'; END$$;
CREATE TRIGGER refuse_outcome BEFORE UPDATE ON ioffice.signature
    FOR EACH ROW WHEN (NEW.status <> 'pending') EXECUTE FUNCTION public.refuse_outcome();
});
my $logstart = -s $node->logfile;
my $broken = new_doc($node, 'Lỗi ngoài giao dịch con');
$node->wait_for_log(qr/signature \d+ could not be recorded as failed \(test: outcomes cannot be recorded\); it stays pending/,
	$logstart);
pass('a job whose outcome cannot be recorded is left pending, with a warning');
is(job_status($node, $broken), 'pending', 'the job is still pending');
is($node->safe_psql('postgres', "SELECT pid FROM ioffice.worker_status"), $pid,
	'the worker did not exit for it');
$node->safe_psql('postgres', 'DROP TRIGGER refuse_outcome ON ioffice.signature; DROP FUNCTION public.refuse_outcome()');
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM ioffice.signature WHERE document_id = $broken AND status = 'pending'"),
	'once the cause is gone, the worker signs the job');
is(job_status($node, $broken), 'done', 'the job is done');

# --- an error escaping a batch: the worker exits, is started again ----------------
# The outbox's queue cannot be read (a column renamed under it): the error
# leaves the deliverer's round, the deliverer (a process of its own) exits
# with code 1 and the postmaster starts it again, every bgw_restart_time,
# until the cause is gone.
$logstart = -s $node->logfile;
my ($started, $dpid) = split /\|/, $node->safe_psql('postgres', "SELECT delivery_started_at, delivery_pid FROM ioffice.worker_status");
$node->safe_psql('postgres', 'ALTER TABLE ioffice.outbox RENAME COLUMN next_attempt_at TO next_attempt_renamed');
# the postmaster names a background worker by its bgw_type ("ioffice worker")
$node->wait_for_log(qr/background worker "ioffice worker[^"]*" \(PID $dpid\) exited with exit code 1/, $logstart);
pass('the worker ended with an error exit (exit code 1, not a crash)');
ok($node->poll_query_until('postgres',
	"SELECT last_error LIKE '%next_attempt_at%' AND delivery_started_at > '$started' FROM ioffice.worker_status"),
	'worker_status shows the error, and a worker started again since');
$node->wait_for_log(qr/background worker "ioffice worker[^"]*" \(PID (?!$dpid\))\d+\) exited with exit code 1/, $logstart);
pass('the new worker process met the same error: it is started again after each one');
ok(!$node->log_contains(qr/terminating any other active server processes/, $logstart),
	'no crash restart of the server');
my $during = new_doc($node, 'Trong lúc lỗi');
$node->safe_psql('postgres', 'ALTER TABLE ioffice.outbox RENAME COLUMN next_attempt_renamed TO next_attempt_at');
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM ioffice.signature WHERE document_id = $during AND status = 'pending'"),
	'once the cause is gone, the restarted worker signs what was queued meanwhile');
my $again = new_doc($node, 'Sau khi khởi động lại');
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM ioffice.signature WHERE document_id = $again AND status = 'pending'"),
	'a new job is signed too');
is(job_status($node, $again), 'done', 'signed');
# (the signer did not wait for the deliverer: that one may not be back yet)
ok($node->poll_query_until('postgres',
	"SELECT state IN ('idle', 'signing', 'delivering') AND jobs_done >= 3 AND delivery_pid <> $dpid FROM ioffice.worker_status"),
	'worker_status: a new process, the jobs counted across restarts');
is($node->safe_psql('postgres', "SELECT count(*) FROM ioffice.audit_verify()"), '0',
	'the audit trail is intact');

# --- pg_terminate_backend() ------------------------------------------------------
# SIGTERM ends the worker with a FATAL error (exit code 1), so the postmaster
# starts it again (an exit with code 0 would unregister it for good).
$pid = $node->safe_psql('postgres', "SELECT pid FROM ioffice.worker_status");
is($node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)"), 't', 'pg_terminate_backend() on the worker');
ok(within($node, 15, "SELECT coalesce(pid <> $pid, false) FROM ioffice.worker_status"),
	'the worker is started again after pg_terminate_backend()');
note('worker after pg_terminate_backend(): '
	  . $node->safe_psql('postgres', "SELECT coalesce(pid::text, '-') || ' ' || state FROM ioffice.worker_status"));

$node->stop;
done_testing();
