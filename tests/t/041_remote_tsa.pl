# The remote signing path (issue 13 item 2) with a time-stamp authority
# configured (item 4): a signature the leader confirms on the stand-in
# service (csc_standin.py) gets its RFC 3161 signature timestamp from the
# stand-in TSA (tsa_standin.py) before it is embedded; openssl ts -verify
# accepts the token over the signature value, pdfsig the signature, and
# verify() says B-LT (a PDF: the DSS follows) or B-T (a detached
# signature).  A TSA failing while the confirmation arrives fails the
# signature with the reason (the transaction failed, nothing embedded, the
# failure in the audit chain; the service is not asked again), and the
# leader signs again once the TSA is back.
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
use Time::HiRes qw(usleep);

use IofficeTest;
use PdfSigning;

for my $tool (qw(pdfsig openssl python3))
{
	plan skip_all => "$tool is not installed" if system("command -v $tool >/dev/null 2>&1") != 0;
}
plan skip_all => 'python3 has no cryptography module'
  if system('python3 -c "import cryptography" 2>/dev/null') != 0;

my $pki = PostgreSQL::Test::Utils::tempdir;
my $dir = PostgreSQL::Test::Utils::tempdir;
my $keystore = PostgreSQL::Test::Utils::tempdir;
system_or_bail('bash', dirname(__FILE__) . '/../pki/make_pki', $pki);
# kha's key file, left from a development setup: with ioffice.keystore_personal
# off (the default, kept here) the worker does not use it
copy("$pki/person_ec.key", "$keystore/person_ec.key") or die "copy: $!";
chmod 0600, "$keystore/person_ec.key";

# wait for a file a child writes once it listens
sub wait_file
{
	my ($path, $what) = @_;
	for (1 .. 1200)
	{
		return slurp_file($path) if -s $path;
		usleep(50_000);
	}
	BAIL_OUT("$what did not start");
}

# --- the TSA stand-in ---------------------------------------------------------------
my $tsa_dir = PostgreSQL::Test::Utils::tempdir;
my $tsa_pid = fork // die "fork: $!";
if ($tsa_pid == 0)
{
	exec('python3', dirname(__FILE__) . '/tsa_standin.py', $tsa_dir) or die "exec: $!";
}
my $tsa_port = wait_file("$tsa_dir/port", 'the TSA stand-in');

sub tsa_mode
{
	my ($mode) = @_;
	write_bytes("$tsa_dir/mode", "$mode\n");
	return;
}

sub tsa_requests
{
	return 0 unless -e "$tsa_dir/requests";
	my @lines = split /\n/, slurp_file("$tsa_dir/requests");
	return scalar @lines;
}

# --- the remote signing stand-in ------------------------------------------------------
my $secret = 'standin-client-secret-0123456789';
my $config = write_bytes("$dir/standin.json", JSON::PP->new->encode({
	client_id => 'ioffice-test',
	client_secret => $secret,
	credentials => {
		'cred-dai' => { key => "$pki/person_rsa.key" },
		'cred-kha' => { key => "$pki/person_ec.key" },
	} }));
my $csc_pid = fork // die "fork: $!";
if ($csc_pid == 0)
{
	exec('python3', dirname(__FILE__) . '/csc_standin.py', $config, "$dir/standin.port") or die "exec: $!";
}
# the stand-ins end with the test, even when it dies half-way
END { kill 'TERM', grep { $_ } $tsa_pid, $csc_pid; }
my $port = wait_file("$dir/standin.port", 'the remote signing stand-in');
my $http = HTTP::Tiny->new(timeout => 10);

sub mode
{
	my ($user, $mode) = @_;
	my $r = $http->post("http://127.0.0.1:$port/control/mode",
		{ content => encode_json({ user => $user, mode => $mode }) });
	die "control: $r->{status}" unless $r->{success};
	return;
}

sub standin_stats
{
	my $r = $http->get("http://127.0.0.1:$port/control/stats");
	die "stats: $r->{status}" unless $r->{success};
	return decode_json($r->{content});
}

# --- the server: dai's certificate without a key file, his credential with the service --
my $node = PostgreSQL::Test::Cluster->new('remote_tsa');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'ioffice'
ioffice.worker_databases = 'postgres'
ioffice.worker_naptime = 1
ioffice.keystore = '$keystore'
ioffice.remote_signing_poll = '200ms'
ioffice.tsa_url = 'http://127.0.0.1:$tsa_port/tsa'
});
$node->start;
my $chain = slurp_file("$pki/intermediate.pem");
$node->safe_psql('postgres', qq{
CREATE EXTENSION ioffice;
SELECT ioffice.add_agency('UBND huyện Sốp Cộp', 'UBND', '000.00.32.H41');
SELECT ioffice.add_department(1, 'Văn phòng HĐND-UBND', 'VP');
SELECT ioffice.add_person('regress_luan', 'Tòng Văn Luân', 'Chuyên viên', 2, '{specialist}');
SELECT ioffice.add_person('dai', 'Trần Văn Đại', 'Chánh Văn phòng', 2, '{leader}');
SELECT ioffice.add_trust_anchor(@{[ sql_literal(slurp_file("$pki/root.pem")) ]});
SELECT ioffice.add_trust_anchor(@{[ sql_literal(slurp_file("$tsa_dir/tsa_root.pem")) ]});
SELECT ioffice.add_crl(@{[ sql_literal(slurp_file("$pki/intermediate.crl.pem")) ]});
SELECT ioffice.add_crl(@{[ sql_literal(slurp_file("$pki/root.crl.pem")) ]});
SELECT ioffice.register_certificate('personal', 'dai', @{[ sql_literal(slurp_file("$pki/person_rsa.pem") . $chain) ]});
SELECT ioffice.register_signing_provider('standin', 'http://127.0.0.1:$port', 'ioffice-test', '$secret');
SELECT ioffice.register_signing_credential('dai', 'standin', 'dai-user', 'cred-dai');
SELECT ioffice.add_person('regress_kha', 'Lò Văn Kha', 'Phó Chánh Văn phòng', 2, '{leader}');
SELECT ioffice.register_certificate('personal', 'regress_kha', @{[ sql_literal(slurp_file("$pki/person_ec.pem") . $chain) ]}, 'person_ec.key');
SELECT ioffice.register_signing_credential('regress_kha', 'standin', 'kha-user', 'cred-kha');
});
is($node->safe_psql('postgres', 'SHOW ioffice.keystore_personal'), 'off', 'ioffice.keystore_personal is off (the default)');
is($node->safe_psql('postgres', "SELECT current_setting('ioffice.tsa_url') <> ''"), 't', 'ioffice.tsa_url is set');

system_or_bail('perl', dirname(__FILE__) . '/../pdf/make_pdf.pl', 2, "$dir/draft.pdf", 'Cong van ky tu xa co dau thoi gian');
my $draft_hex = file_hex("$dir/draft.pdf");
my $dai = $node->safe_psql('postgres', "SELECT id FROM ioffice.person WHERE login = 'dai'");

# a draft with FILE (hex) submitted to LEADER (dai), who signs it: the document
sub pending_document
{
	my ($label, $name, $hex, $leader) = @_;
	$leader //= 'dai';
	my $doc = as_actor($node, 'postgres', 'regress_luan', "SELECT ioffice.create_outgoing('CV', 'Công văn $label')");
	as_actor($node, 'postgres', 'regress_luan', "SELECT ioffice.attach($doc, '$name', decode('$hex', 'hex'))");
	as_actor($node, 'postgres', 'regress_luan',
		"SELECT ioffice.act($doc, 'submit', '$leader', NULL, '{\"request_signature\": true}')");
	as_actor($node, 'postgres', $leader, "SELECT ioffice.act($doc, 'sign', NULL, NULL, '{\"mode\": \"auto\"}')");
	return $doc;
}

sub latest
{
	my ($doc) = @_;
	return $node->safe_psql('postgres',
		"SELECT status || ':' || coalesce(reason, '-') FROM ioffice.signature WHERE document_id = $doc ORDER BY id DESC LIMIT 1");
}

# the document's newest signature is no longer pending; on a timeout, what
# its transactions and the worker say, so that a hang is understood
sub wait_latest_not_pending
{
	my ($doc) = @_;
	return 1 if $node->poll_query_until('postgres',
		"SELECT status <> 'pending' FROM ioffice.signature WHERE document_id = $doc ORDER BY id DESC LIMIT 1");
	diag($node->safe_psql('postgres',
		"SELECT string_agg(concat_ws(' ', t.state, t.polls, t.failures, t.response_id IS NOT NULL, t.reason), E'\\n') "
		. "FROM ioffice.signing_transaction t JOIN ioffice.signature s ON s.id = t.signature_id WHERE s.document_id = $doc"));
	diag($node->safe_psql('postgres', 'SELECT * FROM ioffice.worker_status'));
	return 0;
}

sub audit_of
{
	my ($doc) = @_;
	return $node->safe_psql('postgres',
		"SELECT string_agg(action || ':' || coalesce(actor_id::text, '-'), ',' ORDER BY seq) FROM ioffice.audit "
		. "WHERE chain = 'document:$doc' AND entity = 'signature'");
}

sub transactions_of
{
	my ($doc) = @_;
	return $node->safe_psql('postgres',
		"SELECT string_agg(t.state, ',' ORDER BY t.id) FROM ioffice.signing_transaction t "
		. "JOIN ioffice.signature s ON s.id = t.signature_id WHERE s.document_id = $doc");
}

# the CMS of each signature of a PDF, as DER
sub cms_of
{
	my ($bytes) = @_;
	my @out;
	while ($bytes =~ /\/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]/g)
	{
		my ($b, $c) = ($2, $3);
		push @out, der_element(pack('H*', substr($bytes, $b + 1, $c - $b - 2)), 0);
	}
	return @out;
}

# (header length, content length) of the DER element at AT
sub der_len
{
	my ($der, $at) = @_;
	my $l = ord(substr($der, $at + 1, 1));
	return (2, $l) if $l < 0x80;
	my $n = $l & 0x7f;
	my $len = 0;
	$len = $len * 256 + ord(substr($der, $at + 2 + $_, 1)) for 0 .. $n - 1;
	return (2 + $n, $len);
}

sub der_element
{
	my ($der, $at) = @_;
	my ($h, $l) = der_len($der, $at);
	return substr($der, $at, $h + $l);
}

# the signature timestamp token of a CMS whose signer is RSA-2048, and the
# signature value it stamps (the unsigned attribute [1] follows the
# signature's OCTET STRING of 256 bytes), as 037 finds them
my $tst_oid = pack('H*', '060b2a864886f70d010910020e');
sub token_of
{
	my ($der) = @_;
	my $at = index($der, $tst_oid);
	return () if $at < 0;
	my $a1 = rindex($der, "\xa1", $at - 4);
	return () if substr($der, $a1 - 260, 4) ne "\x04\x82\x01\x00";
	my $sigval = substr($der, $a1 - 256, 256);
	my $set = $at + length $tst_oid;
	my ($sh) = der_len($der, $set);
	return (der_element($der, $set + $sh), $sigval);
}

# openssl ts -verify of the token of CMS (DER) over its signature value
sub ts_verify
{
	my ($cms, $label) = @_;
	my ($token, $sigval) = token_of($cms);
	ok(defined $token, "$label: the CMS carries a signature timestamp token") or return;
	write_bytes("$dir/$label.tst", $token);
	write_bytes("$dir/$label.sigval", $sigval);
	my ($out, $err) = run_command([ 'openssl', 'ts', '-verify', '-in', "$dir/$label.tst", '-token_in',
		'-data', "$dir/$label.sigval", '-CAfile', "$tsa_dir/tsa_root.pem" ]);
	like($out . $err, qr/Verification: OK/, "$label: openssl ts -verify accepts the token over the signature value")
	  or diag($out . $err);
	return;
}

# --- confirmed, the TSA answering: B-LT ----------------------------------------------------
tsa_mode('ok');
mode('dai-user', 'confirm:1');
my $before = tsa_requests();
my $doc = pending_document('xác nhận, dấu thời gian', 'cong_van.pdf', $draft_hex);
ok(wait_latest_not_pending($doc), 'confirmed: the signature ends');
is(latest($doc), 'done:-', 'confirmed: done');
is(transactions_of($doc), 'confirmed', 'confirmed: the transaction is confirmed');
is(tsa_requests() - $before, 1, 'confirmed: the TSA was asked once, for the confirmed signature');
is(audit_of($doc), "signing_requested:-,signed:$dai", 'confirmed: the request and the confirmation are in the chain');
my $file = current_file($node, $doc);
is($node->safe_psql('postgres', "SELECT signed_file_id = $file FROM ioffice.signature WHERE document_id = $doc"),
	't', 'confirmed: the signed PDF is the current version');
{
	my $path = bytea_to_file($node, 'postgres', 'dai', "(SELECT content FROM ioffice.file WHERE id = $file)", 'confirmed.pdf');
	my ($out, $err) = run_command([ 'pdfsig', $path ]);
	like($out, qr/Signature is Valid/, 'confirmed: pdfsig accepts the timestamped signature') or diag($out . $err);
	my @cms = cms_of(slurp_file($path));
	is(scalar @cms, 1, 'confirmed: one signature in the PDF');
	ts_verify($cms[0], 'pdf');
	my $stored = $node->safe_psql('postgres',
		"SELECT encode(cms, 'hex') FROM ioffice.signature WHERE document_id = $doc");
	is(unpack('H*', $cms[0]), $stored, 'confirmed: the embedded CMS is the one recorded');
}
is(as_actor($node, 'postgres', 'dai',
		"SELECT concat_ws(':', kind, valid, coalesce(reason, '-'), level, timestamped_at IS NOT NULL) FROM ioffice.verify($file)"),
	'personal:t:-:B-LT:t', 'confirmed: verify() says valid, B-LT, with the time the timestamp proves');
is(as_actor($node, 'postgres', 'dai',
		"SELECT bool_and(v.timestamped_at BETWEEN s.signed_at - interval '5 minutes' AND s.signed_at + interval '5 minutes') "
		. "FROM ioffice.verify($file) v JOIN ioffice.signature s ON s.document_id = $doc"),
	't', 'confirmed: the timestamp is the signing time');

# --- a certificate that names a key file, ioffice.keystore_personal off -----------------------
# the worker does not sign with the key file, so the leader's service does:
# the signature must not wait for ever, taken by neither
{
	mode('kha-user', 'confirm:0');
	my $d = pending_document('khóa trên máy chủ không dùng', 'cong_van.pdf', $draft_hex, 'regress_kha');
	ok(wait_latest_not_pending($d), 'key file not used: the signature ends');
	is(latest($d), 'done:-', 'key file not used: done through the remote service');
	is(transactions_of($d), 'confirmed', 'key file not used: its transaction is confirmed');
	my $f = current_file($node, $d);
	is(as_actor($node, 'postgres', 'regress_kha',
			"SELECT concat_ws(':', valid, level, timestamped_at IS NOT NULL) FROM ioffice.verify($f)"),
		't:B-LT:t', 'key file not used: the remote signature is timestamped, B-LT');
}

# --- a detached remote signature (a "PDF" with no body to sign inside): B-T ------------------
{
	my $hex = unpack('H*', "%PDF-1.4 Ghi chu kem theo, khong co than PDF\n");
	my $d = pending_document('tách rời', 'ghi_chu.pdf', $hex);
	ok(wait_latest_not_pending($d), 'detached: the signature ends');
	is(latest($d), 'done:-', 'detached: done');
	my $f = $node->safe_psql('postgres', "SELECT file_id FROM ioffice.signature WHERE document_id = $d");
	my $cms = $node->safe_psql('postgres', "SELECT encode(cms, 'hex') FROM ioffice.signature WHERE document_id = $d");
	ts_verify(pack('H*', $cms), 'detached');
	is(as_actor($node, 'postgres', 'dai',
			"SELECT concat_ws(':', valid, coalesce(reason, '-'), level, timestamped_at IS NOT NULL) FROM ioffice.verify($f)"),
		't:-:B-T:t', 'detached: verify() says valid, B-T');
}

# --- the TSA failing when the confirmation arrives: failed with the reason ---------------------
my %reasons = (
	error   => qr/the time-stamp authority answered HTTP 500$/,
	garbage => qr/the time-stamp authority's answer is not a timestamp response$/,
);
for my $m (sort keys %reasons)
{
	tsa_mode($m);
	my $signed_before = standin_stats()->{signed};
	my $d = pending_document("TSA $m", 'cong_van.pdf', $draft_hex);
	ok(wait_latest_not_pending($d), "TSA $m: the signature ends");
	my ($status, $reason) = split /:/, latest($d), 2;
	is($status, 'failed', "TSA $m: the confirmed signature failed");
	like($reason, qr/^the signature from the signing service "standin" cannot be timestamped: /,
		"TSA $m: the reason says the service's signature could not be timestamped");
	like($reason, $reasons{$m}, "TSA $m: and what the TSA did") or diag($reason);
	is(transactions_of($d), 'failed', "TSA $m: the transaction failed");
	is(standin_stats()->{signed} - $signed_before, 1, "TSA $m: the service signed once, and is not asked again");
	is($node->safe_psql('postgres', "SELECT count(*) || ':' || bool_and(cms IS NULL) FROM ioffice.signature WHERE document_id = $d"),
		'1:true', "TSA $m: no CMS is kept without its timestamp");
	is($node->safe_psql('postgres', "SELECT count(*) FROM ioffice.file WHERE document_id = $d"), '1',
		"TSA $m: nothing is embedded");
	is(audit_of($d), 'signing_requested:-,signing_failed:-', "TSA $m: the failure is in the chain");
	is($node->safe_psql('postgres',
			"SELECT count(*) FROM ioffice.audit WHERE chain = 'document:$d' AND action = 'signing_failed' "
			. "AND detail->>'reason' LIKE '%cannot be timestamped%'"),
		'1', "TSA $m: the audit record carries the reason");
	# the leader sees why, and signs again once the TSA is back
	if ($m eq 'error')
	{
		like(as_actor($node, 'postgres', 'dai', "SELECT reason FROM ioffice.signature WHERE document_id = $d"),
			qr/cannot be timestamped/, 'the leader sees the reason');
		tsa_mode('ok');
		as_actor($node, 'postgres', 'dai', "SELECT ioffice.act($d, 'sign', NULL, NULL, '{\"mode\": \"auto\"}')");
		ok(wait_latest_not_pending($d), 'TSA back, signed again: the new signature ends');
		is(latest($d), 'done:-', 'TSA back, signed again: done');
		is(transactions_of($d), 'failed,confirmed', 'TSA back, signed again: a second transaction, confirmed');
		my $f = current_file($node, $d);
		is(as_actor($node, 'postgres', 'dai',
				"SELECT concat_ws(':', valid, level) FROM ioffice.verify($f)"),
			't:B-LT', 'TSA back, signed again: B-LT');
	}
}

tsa_mode('ok');
is($node->safe_psql('postgres', "SELECT count(*) FROM ioffice.signing_transaction WHERE state = 'pending'"), '0',
	'no transaction is left pending');
is($node->safe_psql('postgres', 'SELECT count(*) FROM ioffice.audit_verify()'), '0', 'the audit trail verifies');

$node->stop;
kill 'TERM', $tsa_pid, $csc_pid;
waitpid($tsa_pid, 0);
waitpid($csc_pid, 0);
($tsa_pid, $csc_pid) = (0, 0);
done_testing();
