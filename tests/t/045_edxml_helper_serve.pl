# The edXML helper served: the signer keeps one helper process ("ioffice_edxml
# serve") between packages, for sealing the packages it sends and reading
# those it pulls, instead of one process per package.  One cluster, two
# databases (agency A sends, agency B receives, each with its signer),
# joined by the stand-in VXP axis (axis_standin.py):
#   - one helper pid seals several packages on A and reads several on B;
#   - the package's attachment, left empty by the SQL build, is filled by
#     the helper: B files the very bytes A attached;
#   - a helper killed (SIGKILL) in the middle of a package costs that
#     package one attempt: it is retried, by a new helper, and sent;
#   - a hung helper (SIGSTOP) is killed at ioffice.pdf_helper_timeout, its
#     package retried and sent;
#   - a malformed package from the axis is refused alone (02 on the axis)
#     without ending the helper, and the packages after it are filed.
use strict;
use warnings;
use File::Basename qw(dirname);
use File::Copy qw(copy);
use lib dirname(__FILE__);
use HTTP::Tiny;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

use IofficeTest;

plan skip_all => 'python3 is not installed' if system('command -v python3 >/dev/null 2>&1') != 0;

my $pki = PostgreSQL::Test::Utils::tempdir;
my $keystore = PostgreSQL::Test::Utils::tempdir;
my $dir = PostgreSQL::Test::Utils::tempdir;
system_or_bail('bash', dirname(__FILE__) . '/../pki/make_pki', $pki);
copy("$pki/seal.key", "$keystore/seal.key") or die "copy: $!";
chmod 0600, "$keystore/seal.key";
my $chain = slurp_file("$pki/intermediate.pem");

my $A = '000.00.32.H41';
my $B = '000.00.00.G22';
my %secret = ($A => 'secret-of-sop-cop-0123456789', $B => 'secret-of-vpcp-0123456789');
{
	open my $fh, '>', "$dir/axis.json" or die;
	print $fh JSON::PP->new->encode({ systems => \%secret });
	close $fh;
}
my $standin_pid = fork // die "fork: $!";
if ($standin_pid == 0)
{
	exec('python3', dirname(__FILE__) . '/axis_standin.py', "$dir/axis.json", "$dir/axis.port") or die "exec: $!";
}
# the stand-in goes with the test, even one that dies half-way
END { kill 'TERM', $standin_pid if $standin_pid; }
for (1 .. 1200)
{
	last if -s "$dir/axis.port";
	usleep(50_000);
}
die 'the stand-in axis did not start' unless -s "$dir/axis.port";
my $port = slurp_file("$dir/axis.port");
my $http = HTTP::Tiny->new(timeout => 10);

sub control
{
	my ($what, $body) = @_;
	my $r = $http->post("http://127.0.0.1:$port/control/$what",
		{ content => encode_json($body), headers => { 'Content-Type' => 'application/json' } });
	die "control $what: $r->{status}" unless $r->{success};
	return decode_json($r->{content});
}

sub stats
{
	return decode_json($http->get("http://127.0.0.1:$port/control/stats")->{content});
}

my $node = PostgreSQL::Test::Cluster->new('serve');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'ioffice'
ioffice.worker_databases = 'agency_a,agency_b'
ioffice.keystore = '$keystore'
ioffice.worker_naptime = 1
ioffice.pdf_helper_timeout = 60
});
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE agency_a');
$node->safe_psql('postgres', 'CREATE DATABASE agency_b');

my $seal = sql_literal(slurp_file("$pki/seal.pem") . $chain);
my $root = sql_literal(slurp_file("$pki/root.pem"));
$node->safe_psql('agency_a', qq{
CREATE EXTENSION ioffice;
SELECT ioffice.add_agency('UBND huyện Sốp Cộp', 'UBND', '$A');
SELECT ioffice.add_department(1, 'Văn phòng HĐND-UBND', 'VP');
SELECT ioffice.add_person('regress_luan', 'Tòng Văn Luân', 'Chuyên viên', 2, '{specialist}');
SELECT ioffice.add_person('dai', 'Trần Văn Đại', 'Chánh Văn phòng', 2, '{leader}');
SELECT ioffice.add_person('regress_thuy', 'Tòng Văn Thủy', 'Văn thư', 1, '{clerk}');
SELECT ioffice.add_trust_anchor($root);
SELECT ioffice.register_certificate('organisation', '$A', $seal, 'seal.key');
SELECT ioffice.add_exchange_seal('$B', $seal);
INSERT INTO ioffice.exchange_axis (agency_id, transport, url, system_id, secret, poll_seconds, timeout_ms)
VALUES (1, 'vxp', 'http://127.0.0.1:$port/', '$A', '$secret{$A}', 1, 5000);
});
$node->safe_psql('agency_b', qq{
CREATE EXTENSION ioffice;
SELECT ioffice.add_agency('Văn phòng Chính phủ', 'VPCP', '$B');
SELECT ioffice.add_department(1, 'Vụ Hành chính', 'HC');
SELECT ioffice.add_person('regress_vt', 'Nguyễn Thị Văn Thư', 'Văn thư', 1, '{clerk}');
SELECT ioffice.add_trust_anchor($root);
SELECT ioffice.register_certificate('organisation', '$B', $seal, 'seal.key');
SELECT ioffice.add_exchange_seal('$A', $seal);
INSERT INTO ioffice.exchange_axis (agency_id, transport, url, system_id, secret, poll_seconds, timeout_ms)
VALUES (1, 'vxp', 'http://127.0.0.1:$port', '$B', '$secret{$B}', 1, 5000);
});

my $n_issued = 0;

# a document to B, with a PDF of some 100 KB (each its own bytes), issued
sub issue
{
	my $i = ++$n_issued;
	my $doc = as_actor($node, 'agency_a', 'regress_luan',
		"SELECT ioffice.create_outgoing('CV', 'V/v liên thông văn bản số $i', "
		  . qq{'{"signer": "dai", "recipients": ["$B", "Lưu: VT"]}')});
	as_actor($node, 'agency_a', 'regress_luan',
		"SELECT ioffice.attach($doc, 'tai_lieu_$i.pdf', " . pdf_literal("Tai lieu so $i", 40) . ")");
	as_actor($node, 'agency_a', 'regress_luan', "SELECT ioffice.act($doc, 'submit', 'dai')");
	as_actor($node, 'agency_a', 'dai', "SELECT ioffice.act($doc, 'quick_approve')");
	as_actor($node, 'agency_a', 'regress_thuy', "SELECT ioffice.act($doc, 'issue')");
	return $doc;
}

sub wait_for
{
	my ($db, $sql, $want, $seconds) = @_;
	my $got;
	my $until = time + ($seconds // 90);
	while (time < $until)
	{
		$got = $node->safe_psql($db, $sql);
		return $got if $got eq $want;
		usleep(100_000);
	}
	return $got;
}

# the served edXML helper of a database's signer: its pid, '' when none
sub helper_of
{
	my ($db) = @_;
	my $signer = $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'ioffice worker (signer)' AND datname = '$db'");
	return '' if $signer eq '';
	my @pids;
	for my $p (glob '/proc/[0-9]*')
	{
		my $pid = (split m{/}, $p)[-1];
		open my $st, '<', "$p/stat" or next;
		my $stat = <$st>;
		close $st;
		next unless defined $stat && $stat =~ /\)\s+\S+\s+(\d+)/ && $1 == $signer;
		open my $cl, '<', "$p/cmdline" or next;
		my $cmd = <$cl> // '';
		close $cl;
		push @pids, $pid if $cmd =~ /ioffice_edxml\0serve\0/;
	}
	return join(',', sort @pids);
}

sub sent_of
{
	my ($doc) = @_;
	return "SELECT state || ' ' || attempts FROM ioffice.edxml_outgoing WHERE document_id = $doc AND kind = 'document'";
}

# --- one helper for many packages ------------------------------------------------------------
my @docs = map { issue() } 1 .. 4;
for my $d (@docs)
{
	is(wait_for('agency_a', sent_of($d), 'sent 1'), 'sent 1', "A's package of document $d sent at the first attempt");
}
my $helper_a = helper_of('agency_a');
like($helper_a, qr/^\d+$/, "A's signer keeps one served edXML helper");
is(wait_for('agency_b', "SELECT count(*) FROM ioffice.edxml_received WHERE document_id IS NOT NULL", '4'), '4',
	'B filed the four packages');
my $helper_b = helper_of('agency_b');
like($helper_b, qr/^\d+$/, "B's signer keeps one served edXML helper");
# B's 01s were sealed by B's helper, A read them with A's
is(wait_for('agency_a', "SELECT count(*) FROM ioffice.edxml_status WHERE direction = 'received' AND code = '01'", '4'),
	'4', "the four 01s came back to A");
my @more = map { issue() } 1 .. 3;
for my $d (@more)
{
	is(wait_for('agency_a', sent_of($d), 'sent 1'), 'sent 1', "A's package of document $d sent");
}
is(wait_for('agency_b', "SELECT count(*) FROM ioffice.edxml_received WHERE document_id IS NOT NULL", '7'), '7',
	'B filed three more');
is(helper_of('agency_a'), $helper_a, "the same helper process sealed A's later packages (and read the 01s)");
is(helper_of('agency_b'), $helper_b, "the same helper process read B's later packages (and sealed its 01s)");

# the attachments the helper filled are the bytes A attached
my $digest_a = $node->safe_psql('agency_a',
	"SELECT string_agg(encode(sha256(f.content), 'hex'), ',' ORDER BY encode(sha256(f.content), 'hex')) FROM ioffice.file f "
	  . "WHERE f.superseded_at IS NULL AND f.removed_at IS NULL");
my $digest_b = $node->safe_psql('agency_b',
	"SELECT string_agg(encode(sha256(f.content), 'hex'), ',' ORDER BY encode(sha256(f.content), 'hex')) FROM ioffice.file f "
	  . "JOIN ioffice.edxml_received r ON r.document_id = f.document_id");
is($digest_b, $digest_a, 'B filed the very bytes of each file A attached');
# and edxml_build (a clerk's call) still inlines the files itself
like(as_actor($node, 'agency_a', 'regress_thuy', "SELECT ioffice.edxml_build($docs[0], '$B')::text"),
	qr{<ContentTransferEncoded>[A-Za-z0-9+/=\s]{1000,}</ContentTransferEncoded>},
	'edxml_build() still gives the attachment inline');

# --- a helper killed in the middle of a package ----------------------------------------------
# first every 01 read: A's helper has nothing else to do when it is stopped
is(wait_for('agency_a', "SELECT count(*) FROM ioffice.edxml_status WHERE direction = 'received' AND code = '01'", '7'),
	'7', 'the seven 01s came back to A');
kill 'STOP', $helper_a;
my $killed = issue();
# the signer takes the row (it holds its lock while the package is sealed)
# and waits on the stopped helper; that it is busy with something else is
# not enough
is(wait_for('agency_a',
		"SELECT (SELECT count(*) FROM ioffice.edxml_outgoing WHERE document_id = $killed "
		  . "AND kind = 'document' AND state = 'queued' AND attempts = 0) = 1 "
		  . "AND (SELECT count(*) FROM (SELECT 1 FROM ioffice.edxml_outgoing WHERE document_id = $killed "
		  . "AND kind = 'document' FOR UPDATE SKIP LOCKED) s) = 0", 't'),
	't', "A's signer is in the middle of that package");
usleep(500_000);
kill 'KILL', $helper_a;
kill 'CONT', $helper_a;
is(wait_for('agency_a',
		"SELECT attempts = 1 AND state = 'queued' AND last_error LIKE '%edXML helper was killed by signal 9%' "
		  . "FROM ioffice.edxml_outgoing WHERE document_id = $killed AND kind = 'document'", 't', 30),
	't', 'the package the helper died on failed once, with the reason');
is(wait_for('agency_a', sent_of($killed), 'sent 2'), 'sent 2', 'and was sent at its second attempt');
my $helper_a2 = helper_of('agency_a');
ok($helper_a2 =~ /^\d+$/ && $helper_a2 ne $helper_a, 'by a new helper');
ok(!kill(0, $helper_a), 'the killed helper is gone (reaped)');

# --- a hung helper ----------------------------------------------------------------------------
# first every 01 read, the last package's too: the helper, once stopped,
# must be hung on the next package rather than on reading a 01 (the package
# waits for its seal, and the 01 came back meanwhile in one run of CI)
is(wait_for('agency_a', "SELECT count(*) FROM ioffice.edxml_status WHERE direction = 'received' AND code = '01'", $n_issued),
	$n_issued, 'every 01 came back to A, the last package\'s too');
$node->append_conf('postgresql.conf', "ioffice.pdf_helper_timeout = 3\n");
$node->reload;
usleep(1_500_000);
kill 'STOP', $helper_a2;
my $hung = issue();
is(wait_for('agency_a',
		"SELECT attempts = 1 AND state = 'queued' AND last_error LIKE '%edXML helper did not finish within 3 s%' "
		  . "FROM ioffice.edxml_outgoing WHERE document_id = $hung AND kind = 'document'", 't', 30),
	't', 'the package of a hung helper failed at the timeout, with the reason');
is(wait_for('agency_a', sent_of($hung), 'sent 2'), 'sent 2', 'and was sent at its second attempt');
ok(!kill(0, $helper_a2), 'the hung helper was killed');
like(helper_of('agency_a'), qr/^\d+$/, 'a new helper serves A');

# --- a hostile package refused alone ----------------------------------------------------------
my $filed = wait_for('agency_b', "SELECT count(*) FROM ioffice.edxml_received", $n_issued);
is($filed, $n_issued, 'B filed every package sent so far');
control('mode', { mode => 'malformed', paths => ['/getReceivedEdocList'] });
my $until = time + 60;
my $s;
while (time < $until)
{
	$s = stats();
	last if grep { $_->{by} eq $B && $_->{status} eq 'fail' } @{ $s->{acks} };
	usleep(200_000);
}
control('mode', { mode => 'normal' });
my @fails = grep { $_->{by} eq $B && $_->{status} eq 'fail' } @{ $s->{acks} };
ok(@fails >= 1, 'B refused the malformed package on the axis');
like($fails[0]{description} // '', qr/not well-formed/, 'with the reason');
is(helper_of('agency_b'), $helper_b, 'the refusal did not end B\'s helper');
my $after = issue();
is(wait_for('agency_a', sent_of($after), 'sent 1'), 'sent 1', 'A sends the next package');
is(wait_for('agency_b', "SELECT count(*) FROM ioffice.edxml_received", $filed + 1), $filed + 1,
	'B files it, with the same helper');
is(helper_of('agency_b'), $helper_b, 'still one helper on B');
is($node->safe_psql('agency_b',
		"SELECT count(*) FROM ioffice.edxml_received r JOIN ioffice.edxml_status s ON s.document_id = r.document_id "
		  . "AND s.code = '01'"), $filed + 1, 'each package filed once, with its 01');
like(slurp_file($node->logfile), qr/^(?!.*server process .* was terminated)/s, 'no server process was ended');

kill 'TERM', $standin_pid;
waitpid($standin_pid, 0);
$node->stop;
done_testing();
