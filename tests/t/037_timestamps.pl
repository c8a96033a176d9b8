# Long-term validity (PAdES B-T and B-LT, issue 13 item 4): with
# ioffice.tsa_url set, each signature the worker makes (the leader's and the
# seal) carries an RFC 3161 signature timestamp from the TSA (a loopback
# stand-in answering with `openssl ts -reply`, tsa_standin.py); pdfsig still
# accepts both signatures, qpdf --check the file, openssl ts -verify each
# token over its signature value.  After each timestamped signature the
# PDF helper appends the Document Security Store (PAdES B-LT): the issued
# PDF's /DSS holds each certificate of the leader's, the seal's and the
# TSA's chains once and the registered lists of their issuers, and verify()
# says B-LT (a detached signature: B-T).  On the token path the system
# timestamps the CMS it accepts (a TSA failing refuses the submission with
# 55000, the signature stays pending; once back, the same CMS is accepted
# and reaches B-LT).  A TSA that is down,
# answers HTTP 500, garbage, a rejection or a token for another request
# fails the signature with the reason, and nothing is signed without its
# timestamp.  Without a TSA the level is B-B.  With the server's clock after
# the certificates' expiry (libfaketime), the timestamped signature is still
# valid at signing time; the one without a timestamp is expired.
use strict;
use warnings;
use File::Basename qw(dirname);
use lib dirname(__FILE__);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use JSON::PP;
use MIME::Base64 qw(decode_base64);

use IofficeTest;
use PdfSigning;

for my $tool (qw(pdfsig qpdf openssl python3))
{
	plan skip_all => "$tool is not installed" if system("command -v $tool >/dev/null 2>&1") != 0;
}
my $libfaketime = (grep { -f } map { "/usr/lib/$_/faketime/libfaketime.so.1" }
	  qw(x86_64-linux-gnu aarch64-linux-gnu))[0];
plan skip_all => 'libfaketime is missing (Debian package faketime)' unless $libfaketime;

my $dir = PostgreSQL::Test::Utils::tempdir;
my $make_pdf = dirname(__FILE__) . '/../pdf/make_pdf.pl';

# --- the TSA stand-in -----------------------------------------------------------
my $tsa_dir = PostgreSQL::Test::Utils::tempdir;
my $tsa_pid = fork // die "fork: $!";
if ($tsa_pid == 0)
{
	exec('python3', dirname(__FILE__) . '/tsa_standin.py', $tsa_dir) or die "exec: $!";
}
for (1 .. 600)
{
	last if -s "$tsa_dir/port";
	usleep(100_000);
}
BAIL_OUT('the TSA stand-in did not start') unless -s "$tsa_dir/port";
my $tsa_port = slurp_file("$tsa_dir/port");
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

my ($node, $pki) = pdf_signing_node('timestamps');
$node->safe_psql('postgres', qq{
SELECT ioffice.add_trust_anchor(@{[ sql_literal(slurp_file("$tsa_dir/tsa_root.pem")) ]});
SELECT ioffice.add_crl(@{[ sql_literal(slurp_file("$pki/intermediate.crl.pem")) ]});
SELECT ioffice.add_crl(@{[ sql_literal(slurp_file("$pki/root.crl.pem")) ]});
ALTER SYSTEM SET ioffice.tsa_url = 'http://127.0.0.1:$tsa_port/tsa';
SELECT pg_reload_conf();
});
ok($node->poll_query_until('postgres', "SELECT current_setting('ioffice.tsa_url') <> ''"),
	'ioffice.tsa_url is set');

# the CMS of each signature of a PDF, as DER
sub cms_of
{
	my ($bytes) = @_;
	my @out;
	while ($bytes =~ /\/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]/g)
	{
		my ($a, $b, $c, $d) = ($1, $2, $3, $4);
		my $der = pack('H*', substr($bytes, $b + 1, $c - $b - 2));
		my $l = ord(substr($der, 1, 1));
		my ($head, $len) = (2, $l);
		if ($l >= 0x80)
		{
			$head = 2 + ($l & 0x7f);
			$len = 0;
			$len = $len * 256 + ord(substr($der, 2 + $_, 1)) for 0 .. ($l & 0x7f) - 1;
		}
		push @out, substr($der, 0, $head + $len);
	}
	return @out;
}

# a DER element at OFFSET: (header length, content length)
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

# the signature timestamp token of a CMS (RSA-2048 signers) and the
# signature value it stamps: the unsigned attribute [1] follows the
# signature's OCTET STRING of 256 bytes
my $tst_oid = pack('H*', '060b2a864886f70d010910020e');
sub token_of
{
	my ($der) = @_;
	my $at = index($der, $tst_oid);
	return () if $at < 0;
	# [1] { SEQUENCE { OID, SET { token } } }: back over the SEQUENCE's and [1]'s headers
	my $a1 = rindex($der, "\xa1", $at - 4);
	return () if substr($der, $a1 - 260, 4) ne "\x04\x82\x01\x00";
	my $sigval = substr($der, $a1 - 256, 256);
	my $set = $at + length $tst_oid;
	my ($sh) = der_len($der, $set);
	my ($th, $tl) = der_len($der, $set + $sh);
	return (substr($der, $set + $sh, $th + $tl), $sigval);
}

# --- B-T: the leader's signature and the seal, timestamped ------------------------
system_or_bail('perl', $make_pdf, 2, "$dir/two.pdf", 'Cong van co dau thoi gian');
my $before = tsa_requests();
my ($doc, $file, $issued) = issue_pdf($node, 'bt', "$dir/two.pdf");
is(tsa_requests() - $before, 2, 'the TSA was asked twice: the leader\'s signature and the seal');
like(slurp_file("$tsa_dir/requests"), qr/application\/timestamp-query/,
	'the requests are application/timestamp-query');
{
	my ($out, $err) = run_command([ 'pdfsig', $issued ]);
	my @valid = $out =~ /Signature Validation: Signature is Valid/g;
	is(scalar @valid, 2, 'pdfsig: both timestamped signatures are valid') or diag($out . $err);
	($out, $err) = run_command([ 'qpdf', '--check', $issued ]);
	like($out, qr/No syntax or stream encoding errors found/, 'qpdf --check finds the PDF sound') or diag($out . $err);

	my $i = 0;
	for my $cms (cms_of(slurp_file($issued)))
	{
		$i++;
		write_bytes("$dir/sig$i.der", $cms);
		($out, $err) = run_command([ 'openssl', 'cms', '-cmsout', '-print', '-inform', 'DER', '-in', "$dir/sig$i.der" ]);
		like($out, qr/unsignedAttrs:.*id-smime-aa-timeStampToken/s,
			"signature $i carries an id-aa-signatureTimeStampToken unsigned attribute");
		my ($token, $sigval) = token_of($cms);
		ok(defined $token, "signature $i: its token is found") or next;
		write_bytes("$dir/tst$i.der", $token);
		write_bytes("$dir/sigval$i.bin", $sigval);
		($out, $err) = run_command([ 'openssl', 'ts', '-verify', '-in', "$dir/tst$i.der", '-token_in',
			'-data', "$dir/sigval$i.bin", '-CAfile', "$tsa_dir/tsa_root.pem" ]);
		like($out . $err, qr/Verification: OK/,
			"openssl ts -verify: signature $i's token is the TSA's, over its signature value") or diag($out . $err);
	}
	is($i, 2, 'two signatures in the issued PDF');
}
is(as_actor($node, 'postgres', 'dai',
		"SELECT string_agg(concat_ws(':', kind, valid, coalesce(reason, '-'), level, timestamped_at IS NOT NULL), ',' ORDER BY revision) FROM ioffice.verify($file)"),
	'personal:t:-:B-LT:t,organisation:t:-:B-LT:t',
	'verify(): both signatures valid, level B-LT (timestamped, their chains and lists in the DSS), with the time their timestamp proves');
is(as_actor($node, 'postgres', 'dai',
		"SELECT bool_and(v.timestamped_at BETWEEN s.signed_at - interval '5 minutes' AND s.signed_at + interval '5 minutes') FROM ioffice.verify($file) v JOIN ioffice.signature s ON s.document_id = $doc AND s.kind = v.kind"),
	't', 'the timestamps are the signing times');

# --- B-LT: the Document Security Store of the issued PDF -----------------------------
{
	my ($json) = run_command([ 'qpdf', '--json', '--json-key=qpdf', $issued ]);
	my $q = JSON::PP->new->decode($json)->{qpdf}[1];
	my $root = $q->{ 'obj:' . $q->{trailer}{value}{'/Root'} }{value};
	ok(defined $root->{'/DSS'}, "the issued PDF's catalog has a /DSS");
	my $dss = $q->{ 'obj:' . ($root->{'/DSS'} // '') }{value} // {};
	my %got;
	for my $key ('/Certs', '/CRLs')
	{
		for my $ref (@{ $dss->{$key} // [] })
		{
			my ($n) = $ref =~ /^(\d+) /;
			system("qpdf --show-object=$n --filtered-stream-data '$issued' > '$dir/dss$n.der'") == 0
			  or die "qpdf --show-object=$n";
			push @{ $got{$key} }, unpack('H*', slurp_file("$dir/dss$n.der"));
		}
	}
	my %want;
	for my $pem ("$pki/person_rsa.pem", "$pki/seal.pem", "$pki/intermediate.pem", "$pki/root.pem",
		"$tsa_dir/tsa.pem", "$tsa_dir/tsa_root.pem")
	{
		system_or_bail('openssl', 'x509', '-in', $pem, '-outform', 'DER', '-out', "$dir/want.der");
		push @{ $want{'/Certs'} }, unpack('H*', slurp_file("$dir/want.der"));
	}
	for my $pem ("$pki/intermediate.crl.pem", "$pki/root.crl.pem")
	{
		system_or_bail('openssl', 'crl', '-in', $pem, '-outform', 'DER', '-out', "$dir/want.der");
		push @{ $want{'/CRLs'} }, unpack('H*', slurp_file("$dir/want.der"));
	}
	is_deeply([ sort @{ $got{'/Certs'} // [] } ], [ sort @{ $want{'/Certs'} } ],
		'the DSS holds each certificate of both chains and of the TSA\'s, once (the leader\'s, the seal, the CAs, the TSA and its root)');
	is_deeply([ sort @{ $got{'/CRLs'} // [] } ], [ sort @{ $want{'/CRLs'} } ],
		'the DSS holds the registered revocation lists of the issuers');
	is(as_actor($node, 'postgres', 'dai', "SELECT string_agg(after_signing, ',' ORDER BY revision) FROM ioffice.verify($file)"),
		'signatures,signatures', 'the DSS updates count as signatures after each signature, not content');
	my ($out) = run_command([ 'pdfsig', $issued ]);
	like($out, qr/Signature #2:.*?\n\s*- Not total document signed/s,
		'pdfsig: the seal is followed by the DSS update');
}

# a detached signature (a file that is no PDF) is timestamped too: B-T
{
	my $d = new_doc_to_sign($node, 'postgres', 'Tách rời có dấu thời gian');
	as_actor($node, 'postgres', 'dai', "SELECT ioffice.act($d, 'sign', NULL, NULL, '{\"mode\": \"auto\"}')");
	ok(wait_signatures($node, $d), 'a detached signature with a TSA: made');
	my $f = $node->safe_psql('postgres', "SELECT file_id FROM ioffice.signature WHERE document_id = $d");
	is(as_actor($node, 'postgres', 'dai',
			"SELECT concat_ws(':', valid, coalesce(reason, '-'), level, timestamped_at IS NOT NULL) FROM ioffice.verify($f)"),
		't:-:B-T:t', 'a detached signature: verify() says B-T (no DSS outside a PDF)');
}

# --- the token path: the system timestamps the CMS it accepts -------------------------
{
	$node->safe_psql('postgres', qq{
SELECT ioffice.add_person('regress_kha', 'Lò Văn Kha', 'Phó Chánh Văn phòng', 2, '{leader}');
SELECT ioffice.register_certificate('personal', 'regress_kha', @{[ sql_literal(slurp_file("$pki/person_ec.pem") . slurp_file("$pki/intermediate.pem")) ]});
});
	my $d = as_actor($node, 'postgres', 'regress_luan', "SELECT ioffice.create_outgoing('CV', 'Ký bằng token')");
	as_actor($node, 'postgres', 'regress_luan',
		"SELECT ioffice.attach($d, 'cong_van.pdf', decode('" . file_hex("$dir/two.pdf") . "', 'hex'))");
	as_actor($node, 'postgres', 'regress_luan', "SELECT ioffice.act($d, 'submit', 'regress_kha', NULL, '{\"request_signature\": true}')");
	as_actor($node, 'postgres', 'regress_kha', "SELECT ioffice.act($d, 'sign', NULL, NULL, '{\"mode\": \"auto\"}')");
	my $sig = $node->safe_psql('postgres', "SELECT id FROM ioffice.signature WHERE document_id = $d");
	my $r = JSON::PP->new->decode(as_actor($node, 'postgres', 'regress_kha', "SELECT ioffice.signing_request($sig)"));
	my $pdf = decode_base64($r->{pdf});
	my ($a, $b, $c, $e) = @{ $r->{byte_range} };
	write_bytes("$dir/token-range.bin", substr($pdf, $a, $b) . substr($pdf, $c, $e));
	system_or_bail('openssl', 'cms', '-sign', '-binary', '-outform', 'DER', '-in', "$dir/token-range.bin",
		'-signer', "$pki/person_ec.pem", '-inkey', "$pki/person_ec.key", '-certfile', "$pki/intermediate.pem",
		'-md', 'sha256', '-out', "$dir/token.der");
	my $submit = "SELECT ioffice.submit_signature($sig, decode('" . unpack('H*', slurp_file("$dir/token.der")) . "', 'hex'))";

	# a CMS that brings unsigned attributes of its own (here one of the
	# issued document's, with its timestamp token) is refused before
	# anything of it is judged: the system adds the timestamp itself
	my ($rc, $out, $err) = $node->psql('postgres',
		"\\set VERBOSITY verbose\nBEGIN;\nSET LOCAL ioffice.actor = 'regress_kha';\n"
		  . "SELECT ioffice.submit_signature($sig, decode('" . unpack('H*', slurp_file("$dir/sig1.der")) . "', 'hex'));\nCOMMIT;");
	like($err, qr/ERROR:\s+22023: .*must carry no unsigned attributes/s,
		'token path: a CMS with unsigned attributes of its own is refused with 22023') or diag($err);

	tsa_mode('error');
	($rc, $out, $err) = $node->psql('postgres',
		"\\set VERBOSITY verbose\nBEGIN;\nSET LOCAL ioffice.actor = 'regress_kha';\n$submit;\nCOMMIT;");
	like($err, qr/ERROR:\s+55000: the signature cannot be timestamped now.*DETAIL:\s+the time-stamp authority answered HTTP 500/s,
		'token path, TSA failing: the submission is refused with 55000 and the reason') or diag($err);
	is($node->safe_psql('postgres', "SELECT status FROM ioffice.signature WHERE id = $sig"), 'pending',
		'token path, TSA failing: the signature stays pending');

	tsa_mode('ok');
	is(as_actor($node, 'postgres', 'regress_kha', $submit), 'done', 'token path, TSA back: the same CMS is accepted');
	my $f = $node->safe_psql('postgres', "SELECT signed_file_id FROM ioffice.signature WHERE id = $sig");
	is(as_actor($node, 'postgres', 'regress_kha',
			"SELECT concat_ws(':', valid, coalesce(reason, '-'), level, timestamped_at IS NOT NULL) FROM ioffice.verify($f)"),
		't:-:B-LT:t', 'token path: the embedded signature carries the system\'s timestamp and the DSS (B-LT)');
	my $signed = bytea_to_file($node, 'postgres', 'regress_kha', "(SELECT content FROM ioffice.file WHERE id = $f)", 'token-signed.pdf');
	($out) = run_command([ 'pdfsig', $signed ]);
	like($out, qr/Signature is Valid/, 'token path: pdfsig accepts the timestamped signature');
	($out) = run_command([ 'qpdf', '--check', $signed ]);
	like($out, qr/No syntax or stream encoding errors found/, 'token path: qpdf --check finds the PDF sound');
}

# --- a TSA that fails: the signature fails with the reason --------------------------
my %reasons = (
	error   => qr/^the time-stamp authority answered HTTP 500$/,
	garbage => qr/^the time-stamp authority's answer is not a timestamp response$/,
	reject  => qr/^the time-stamp authority did not grant the timestamp \(status rejection\)$/,
	other   => qr/^the time-stamp authority's answer is refused: .*(nonce|imprint)/,
);
for my $mode (sort keys %reasons)
{
	tsa_mode($mode);
	my $d = new_doc_to_sign($node, 'postgres', "TSA $mode");
	as_actor($node, 'postgres', 'dai', "SELECT ioffice.act($d, 'sign', NULL, NULL, '{\"mode\": \"auto\"}')");
	ok(wait_signatures($node, $d), "TSA $mode: the signature job ends");
	my $row = $node->safe_psql('postgres',
		"SELECT status || '|' || coalesce(reason, '-') || '|' || (cms IS NULL) FROM ioffice.signature WHERE document_id = $d");
	my ($status, $reason, $no_cms) = split /\|/, $row;
	is($status, 'failed', "TSA $mode: the signature failed");
	like($reason, $reasons{$mode}, "TSA $mode: the reason says why") or diag($reason);
	is($no_cms, 'true', "TSA $mode: no signature is kept without its timestamp");
}

# a PDF with the TSA down: no signed version is stored
tsa_mode('ok');
{
	my $d = as_actor($node, 'postgres', 'regress_luan', "SELECT ioffice.create_outgoing('CV', 'TSA down')");
	as_actor($node, 'postgres', 'regress_luan',
		"SELECT ioffice.attach($d, 'cong_van.pdf', decode('" . file_hex("$dir/two.pdf") . "', 'hex'))");
	as_actor($node, 'postgres', 'regress_luan', "SELECT ioffice.act($d, 'submit', 'dai', NULL, '{\"request_signature\": true}')");
	$node->safe_psql('postgres', "ALTER SYSTEM SET ioffice.tsa_url = 'http://127.0.0.1:1/tsa'; SELECT pg_reload_conf()");
	as_actor($node, 'postgres', 'dai', "SELECT ioffice.act($d, 'sign', NULL, NULL, '{\"mode\": \"auto\"}')");
	ok(wait_signatures($node, $d), 'TSA down: the signature job ends');
	like($node->safe_psql('postgres', "SELECT status || ': ' || reason FROM ioffice.signature WHERE document_id = $d"),
		qr/^failed: the time-stamp authority cannot be reached: /, 'TSA down: the PDF signature failed, saying the TSA cannot be reached');
	is($node->safe_psql('postgres', "SELECT count(*) FROM ioffice.file WHERE document_id = $d"), '1',
		'TSA down: no signed version of the PDF is stored');
	is($node->safe_psql('postgres',
			"SELECT count(*) FROM ioffice.audit WHERE entity = 'signature' AND action = 'signing_failed' AND detail::text LIKE '%time-stamp authority%'"),
		'5', 'each failure is in the audit chain with its reason');
}

# --- without a TSA: B-B ----------------------------------------------------------------
$node->safe_psql('postgres', "ALTER SYSTEM RESET ioffice.tsa_url; SELECT pg_reload_conf()");
ok($node->poll_query_until('postgres', "SELECT current_setting('ioffice.tsa_url') = ''"), 'ioffice.tsa_url is reset');
my $plain_doc = new_doc_to_sign($node, 'postgres', 'Không dấu thời gian');
as_actor($node, 'postgres', 'dai', "SELECT ioffice.act($plain_doc, 'sign', NULL, NULL, '{\"mode\": \"auto\"}')");
ok(wait_signatures($node, $plain_doc), 'without a TSA: the signature is made');
my $plain_file = $node->safe_psql('postgres', "SELECT file_id FROM ioffice.signature WHERE document_id = $plain_doc");
is(as_actor($node, 'postgres', 'dai',
		"SELECT concat_ws(':', valid, coalesce(reason, '-'), level, timestamped_at IS NULL) FROM ioffice.verify($plain_file)"),
	't:-:B-B:t', 'without a TSA: verify() says B-B, no timestamp');

# --- after the certificates' expiry (2049-12-31): valid at signing time ---------------
# in 2050 the certificates have expired, and so have the revocation lists
# (which OpenSSL checks first)
my $out_of_date = 'revocation unknown: the registered revocation list is out of date';
$node->stop;
{
	my $target = 2524608000;	# 2050-01-01 00:00:00Z
	my $offset = $target + 86400 * 30 - time();
	local $ENV{LD_PRELOAD} = $libfaketime;
	local $ENV{FAKETIME} = "+$offset";
	local $ENV{FAKETIME_DONT_FAKE_MONOTONIC} = 1;
	$node->start;
	is($node->safe_psql('postgres', "SELECT extract(year FROM now())::int"), '2050',
		'the server believes it is 2050, after the certificates expired');
	is(as_actor($node, 'postgres', 'dai',
			"SELECT string_agg(concat_ws(':', kind, valid, level, coalesce(reason, '-')), ',' ORDER BY revision) FROM ioffice.verify($file)"),
		'personal:t:B-LT:valid at signing time (timestamp); now: ' . $out_of_date . ','
		. 'organisation:t:B-LT:valid at signing time (timestamp); now: ' . $out_of_date,
		'verify() after expiry: the timestamped signatures were valid at signing time');
	is(as_actor($node, 'postgres', 'dai',
			"SELECT concat_ws(':', valid, coalesce(level, '-'), reason) FROM ioffice.verify($plain_file)"),
		"f:-:$out_of_date",
		'verify() after expiry: the signature without a timestamp is no longer valid');
	$node->stop;
}

kill 'TERM', $tsa_pid;
waitpid($tsa_pid, 0);
done_testing();
