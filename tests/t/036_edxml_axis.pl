# Two agencies on two clusters, each with its own worker, joined by a
# stand-in VXP axis on loopback (axis_standin.py): A issues a document to B
# (an agency code not in A's database); A's worker builds the package, seals
# it through the edXML helper and sends it; B's worker pulls it (list,
# fetch, acknowledge), files it once and answers 01, which A records; B
# registers (03), assigns (04) and completes (05 then 06), and A sees each status.
# The axis down (A retries, then sends), answering slowly, listing every
# package twice (B files it once) and serving a malformed package (refused
# on the axis with the reason, nothing filed).
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

# --- the stand-in axis --------------------------------------------------------------
my %secret = ('000.00.32.H41' => 'secret-of-sop-cop-0123456789', '000.00.00.G22' => 'secret-of-vpcp-0123456789');
{
	open my $fh, '>', "$dir/axis.json" or die;
	print $fh JSON::PP->new->encode({ systems => \%secret, endpoint_secret => 'endpoint-secret-0123456789' });
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

sub mode
{
	my ($m) = @_;
	my $r = $http->post("http://127.0.0.1:$port/control/mode",
		{ content => encode_json({ mode => $m }), headers => { 'Content-Type' => 'application/json' } });
	die "mode $m: $r->{status}" unless $r->{success};
	return;
}

sub stats
{
	my $r = $http->get("http://127.0.0.1:$port/control/stats");
	return decode_json($r->{content});
}

# --- the two agencies -----------------------------------------------------------------
sub agency_node
{
	my ($name, $sql) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'ioffice'
ioffice.worker_databases = 'postgres'
ioffice.keystore = '$keystore'
ioffice.worker_naptime = 1
});
	$node->start;
	$node->safe_psql('postgres', $sql);
	return $node;
}

my $seal = sql_literal(slurp_file("$pki/seal.pem") . $chain);
my $root = sql_literal(slurp_file("$pki/root.pem"));
my $a = agency_node('agency_a', qq{
CREATE EXTENSION ioffice;
SELECT ioffice.add_agency('UBND huyện Sốp Cộp', 'UBND', '000.00.32.H41');
SELECT ioffice.add_department(1, 'Văn phòng HĐND-UBND', 'VP');
SELECT ioffice.add_person('regress_luan', 'Tòng Văn Luân', 'Chuyên viên', 2, '{specialist}');
SELECT ioffice.add_person('dai', 'Trần Văn Đại', 'Chánh Văn phòng', 2, '{leader}');
SELECT ioffice.add_person('regress_thuy', 'Tòng Văn Thủy', 'Văn thư', 1, '{clerk}');
SELECT ioffice.add_trust_anchor($root);
SELECT ioffice.register_certificate('organisation', '000.00.32.H41', $seal, 'seal.key');
SELECT ioffice.add_exchange_seal('000.00.00.G22', $seal);
INSERT INTO ioffice.exchange_axis (agency_id, transport, url, system_id, secret, poll_seconds, timeout_ms)
VALUES (1, 'vxp', 'http://127.0.0.1:$port/', '000.00.32.H41', '$secret{'000.00.32.H41'}', 1, 2000);
});
my $b = agency_node('agency_b', qq{
CREATE EXTENSION ioffice;
SELECT ioffice.add_agency('Văn phòng Chính phủ', 'VPCP', '000.00.00.G22');
SELECT ioffice.add_department(1, 'Vụ Hành chính', 'HC');
SELECT ioffice.add_person('regress_vt', 'Nguyễn Thị Văn Thư', 'Văn thư', 1, '{clerk}');
SELECT ioffice.add_person('regress_ld', 'Lê Văn Lãnh', 'Vụ trưởng', 2, '{leader}');
SELECT ioffice.add_person('regress_cv', 'Phạm Văn Chuyên', 'Chuyên viên', 2, '{specialist}');
SELECT ioffice.add_trust_anchor($root);
SELECT ioffice.register_certificate('organisation', '000.00.00.G22', $seal, 'seal.key');
SELECT ioffice.add_exchange_seal('000.00.32.H41', $seal);
INSERT INTO ioffice.exchange_axis (agency_id, transport, url, system_id, secret, poll_seconds, timeout_ms)
VALUES (1, 'vxp', 'http://127.0.0.1:$port', '000.00.00.G22', '$secret{'000.00.00.G22'}', 1, 2000);
});

sub issue
{
	my ($subject) = @_;
	my $doc = as_actor($a, 'postgres', 'regress_luan',
		"SELECT ioffice.create_outgoing('CV', '$subject', "
		  . q{'{"signer": "dai", "urgency": "urgent", "recipients": ["000.00.00.G22", "Lưu: VT"]}')});
	as_actor($a, 'postgres', 'regress_luan',
		"SELECT ioffice.attach($doc, 'bao_cao.pdf', " . pdf_literal('Bao cao lien thong') . ")");
	as_actor($a, 'postgres', 'regress_luan', "SELECT ioffice.act($doc, 'submit', 'dai')");
	as_actor($a, 'postgres', 'dai', "SELECT ioffice.act($doc, 'quick_approve')");
	as_actor($a, 'postgres', 'regress_thuy', "SELECT ioffice.act($doc, 'issue')");
	return $doc;
}

sub a_statuses
{
	my ($doc) = @_;
	return as_actor($a, 'postgres', 'regress_thuy',
		"SELECT coalesce(string_agg(code, ',' ORDER BY code), '') FROM ioffice.exchange_status "
		  . "WHERE document = $doc AND direction = 'received' AND party = '000.00.00.G22'");
}

sub wait_for
{
	my ($node, $sql, $want, $seconds) = @_;
	my $got;
	my $until = time + ($seconds // 60);
	while (time < $until)
	{
		$got = $node->safe_psql('postgres', $sql);
		return $got if $got eq $want;
		usleep(100_000);
	}
	return $got;
}

# --- A issues to B ----------------------------------------------------------------------
my $subject = 'V/v liên thông văn bản qua trục (thử nghiệm)';
my $doc = issue($subject);
like(as_actor($a, 'postgres', 'regress_thuy',
		"SELECT string_agg(party || ' ' || package || ' ' || delivery, ',') FROM ioffice.exchange_status WHERE document = $doc AND code IS NULL"),
	qr/^000\.00\.00\.G22 document (queued|sent)$/, 'the clerk sees the package for the external recipient only');
is(wait_for($a, "SELECT state FROM ioffice.edxml_outgoing WHERE document_id = $doc AND kind = 'document'", 'sent'),
	'sent', 'A\'s worker sealed and sent it');
is(as_actor($a, 'postgres', 'regress_thuy',
		"SELECT delivery || ' ' || (sent_at IS NOT NULL) FROM ioffice.exchange_status WHERE document = $doc AND code IS NULL"),
	'sent true', 'the clerk sees it sent');
my $t0 = time;
is(wait_for($b, 'SELECT count(*) FROM ioffice.edxml_received', '1'), '1', 'B\'s worker pulled and filed it');
my $bdoc = $b->safe_psql('postgres', 'SELECT document_id FROM ioffice.edxml_received');
is($b->safe_psql('postgres', "SELECT state || ' ' || abstract || ' ' || urgency FROM ioffice.document WHERE id = $bdoc"),
	"received $subject urgent", 'in B\'s incoming queue, Vietnamese intact, with its urgency');
is($b->safe_psql('postgres', "SELECT count(*) FROM ioffice.file WHERE document_id = $bdoc AND uploaded_by IS NULL"),
	'1', 'with its file, filed by the system');
is(wait_for($a, "SELECT string_agg(code, ',') FROM ioffice.edxml_status WHERE document_id = $doc AND direction = 'received'", '01'),
	'01', 'A received the status 01 (arrived)');
cmp_ok(time - $t0, '<', 60, 'within the minute');
ok(scalar(grep { $_->{status} eq 'done' } @{ stats()->{acks} }) >= 1, 'B acknowledged the package on the axis');

# --- B's workflow answers -----------------------------------------------------------------
as_actor($b, 'postgres', 'regress_vt', "SELECT ioffice.act($bdoc, 'register')");
as_actor($b, 'postgres', 'regress_vt', "SELECT ioffice.act($bdoc, 'submit', 'regress_ld')");
as_actor($b, 'postgres', 'regress_ld', "SELECT ioffice.act($bdoc, 'assign', 'regress_cv')");
as_actor($b, 'postgres', 'regress_cv', "SELECT ioffice.act($bdoc, 'complete')");
is(wait_for($a, "SELECT string_agg(code, ',' ORDER BY code) FROM ioffice.edxml_status WHERE document_id = $doc AND direction = 'received'",
		'01,03,04,05,06'), '01,03,04,05,06', 'A sees 03 registered, 04 assigned, 05 in progress, 06 finished');
is(wait_for($b, "SELECT string_agg(code || ':' || state, ',' ORDER BY code) FROM ioffice.edxml_outgoing WHERE document_id = $bdoc",
		'01:sent,03:sent,04:sent,05:sent,06:sent'), '01:sent,03:sent,04:sent,05:sent,06:sent', 'B sent every status, each once');
is(as_actor($b, 'postgres', 'regress_vt',
		"SELECT string_agg(code || ':' || delivery || ':' || (sent_at IS NOT NULL), ',' ORDER BY code) FROM ioffice.exchange_status WHERE document = $bdoc"),
	'01:sent:true,03:sent:true,04:sent:true,05:sent:true,06:sent:true', 'B\'s clerk sees them sent');
is(a_statuses($doc), '01,03,04,05,06', 'A\'s clerk sees every status received from B');

# --- the axis down, then back ---------------------------------------------------------------
mode('down');
my $doc2 = issue('Văn bản khi trục ngừng');
is(wait_for($a, "SELECT attempts > 0 AND last_error LIKE 'HTTP 503%' AND state = 'queued' FROM ioffice.edxml_outgoing WHERE document_id = $doc2", 't'),
	't', 'the axis down: the package stays queued, with the error, and is retried');
# (while it is down: B's lists fail too, and its worker says so)
is(wait_for($b, "SELECT last_error IS NOT NULL FROM ioffice.worker_status", 't', 30), 't',
	'the worker noted the axis\'s errors');
mode('normal');
$a->safe_psql('postgres', "UPDATE ioffice.edxml_outgoing SET next_attempt_at = now() WHERE document_id = $doc2");
is(wait_for($b, 'SELECT count(*) FROM ioffice.edxml_received', '2'), '2', 'back up: sent and filed');

# --- duplicates, slowness, malformed packages -------------------------------------------------
mode('duplicate');
my $doc3 = issue('Văn bản nhận hai lần');
is(wait_for($a, "SELECT string_agg(code, ',') FROM ioffice.edxml_status WHERE document_id = $doc3 AND direction = 'received'", '01'),
	'01', 'listed twice: filed and answered');
sleep 2;
is($b->safe_psql('postgres', 'SELECT count(*) FROM ioffice.edxml_received'), '3', 'filed once');
is($b->safe_psql('postgres', "SELECT count(*) FROM ioffice.edxml_status WHERE code = '01'"), '3', 'and 01 once each');
mode('malformed');
my $before = scalar(grep { $_->{status} eq 'fail' } @{ stats()->{acks} });
my $refused = 0;
for (1 .. 100)
{
	$refused = scalar(grep { $_->{status} eq 'fail' && $_->{description} =~ /not well-formed/ } @{ stats()->{acks} });
	last if $refused > 0;
	usleep(100_000);
}
ok($refused > 0, 'a malformed package is refused on the axis, with the reason');
mode('normal');
is($b->safe_psql('postgres', 'SELECT count(*) FROM ioffice.document'), '3', 'and nothing filed from it');
mode('slow');
my $doc4 = issue('Văn bản khi trục chậm');
# the worker goes on signing while the axis is slow: the seal of doc4 is made
is(wait_for($a, "SELECT status FROM ioffice.signature WHERE document_id = $doc4 AND kind = 'organisation'", 'done', 30),
	'done', 'a slow axis does not hold up signing');
mode('normal');
is(wait_for($b, 'SELECT count(*) FROM ioffice.edxml_received', '4', 90), '4', 'the slow package arrives too');
# a package leaves only once the seal its issue asked for is in its PDF
# (sent sooner, it carried the PDF unsealed, and B refused it with 02)
is($a->safe_psql('postgres', q{
SELECT count(*) || ' ' || bool_and(o.sent_at >= s.signed_at)
FROM ioffice.edxml_outgoing o
JOIN ioffice.signature s ON s.document_id = o.document_id AND s.kind = 'organisation' AND s.status = 'done'
WHERE o.kind = 'document' AND o.state = 'sent'}), '4 true', 'each package left after its document was sealed');

# --- the other transport: packages posted to an endpoint row ------------------------------------
$a->safe_psql('postgres', qq{
INSERT INTO ioffice.endpoint (name, url, secret, events)
VALUES ('axis-post', 'http://127.0.0.1:$port/endpoint', 'endpoint-secret-0123456789', '{edxml.package}');
UPDATE ioffice.exchange_axis SET transport = 'endpoint', url = NULL, system_id = NULL, secret = NULL,
       endpoint_id = (SELECT id FROM ioffice.endpoint WHERE name = 'axis-post');
});
my $doc5 = issue('Văn bản gửi qua endpoint');
is(wait_for($a, "SELECT state FROM ioffice.edxml_outgoing WHERE document_id = $doc5", 'sent'), 'sent',
	'the endpoint transport posts the package');
my @posted = @{ stats()->{posted} };
is(scalar(@posted), 1, 'once');
is(join(' ', $posted[0]{to}[0], $posted[0]{kind}, $posted[0]{event}, $posted[0]{signed} ? 'sealed' : 'unsealed'),
	'000.00.00.G22 edoc edxml.edoc sealed', 'to B, sealed, its HMAC and idempotency key checked by the receiver');
is($posted[0]{key}, $a->safe_psql('postgres', "SELECT idempotency_key FROM ioffice.edxml_outgoing WHERE document_id = $doc5"),
	'with the row\'s idempotency key');
is($a->safe_psql('postgres', q{SELECT count(*) FROM ioffice.outbox}), '0', 'and no outbox event for the endpoint');

# --- a database whose ioffice has no axis (0.1 after the library's upgrade) ----------------------
# the table out of sight, as in 0.1: the axis step skips quietly, the
# signer does not restart and goes on sealing
my $logstart = -s $a->logfile;
$a->safe_psql('postgres', 'ALTER TABLE ioffice.exchange_axis RENAME TO exchange_axis_hidden');
my $doc6 = issue('Văn bản khi chưa có trục');
is(wait_for($a, "SELECT status FROM ioffice.signature WHERE document_id = $doc6 AND kind = 'organisation'", 'done', 30),
	'done', 'no exchange_axis: the signer still seals');
sleep 2;
unlike(slurp_file($a->logfile, $logstart), qr/exchange_axis" does not exist|background worker "ioffice[^"]*" \(PID \d+\) exited/,
	'and neither errs on the axis nor restarts');
$a->safe_psql('postgres', 'ALTER TABLE ioffice.exchange_axis_hidden RENAME TO exchange_axis');

kill 'TERM', $standin_pid;
waitpid($standin_pid, 0);
$a->stop;
$b->stop;
done_testing();
