# The organisation's seal key in a hardware security module (SoftHSM2),
# used through PKCS#11 by the signing worker (OpenSSL's pkcs11 engine):
# the seal certificate is registered with a key URI, an issued PDF is sealed
# and pdfsig accepts the seal as the seal certificate's; an audit checkpoint
# signed with the HSM key passes audit_verify(); the key's bytes are in no
# table (pg_dump) and no file under the data directory.  A wrong PIN, a
# missing token and a missing module fail the seal's job with a reason that
# names the URI (never the PIN) and leave the server running; the PIN fixed
# and the configuration reloaded, the next seal is made.
use strict;
use warnings;
use File::Basename qw(dirname);
use File::Copy qw(copy);
use File::Find;
use lib dirname(__FILE__);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Digest::SHA qw(hmac_sha256);
use HTTP::Tiny;
use JSON::PP;
use MIME::Base64 qw(encode_base64 decode_base64);
use Time::HiRes qw(time usleep);

use IofficeTest;
use PdfSigning qw(file_hex wait_signatures current_file);

my $module = '/usr/lib/softhsm/libsofthsm2.so';
for my $tool (qw(pdfsig openssl softhsm2-util pg_dump))
{
	plan skip_all => "$tool is not installed" if system("command -v $tool >/dev/null 2>&1") != 0;
}
plan skip_all => "SoftHSM2's module $module is not installed" unless -f $module;
plan skip_all => "OpenSSL's pkcs11 engine is not installed"
  if system('openssl engine pkcs11 >/dev/null 2>&1') != 0;

my $dir = PostgreSQL::Test::Utils::tempdir;
my $pki = PostgreSQL::Test::Utils::tempdir;
my $keystore = PostgreSQL::Test::Utils::tempdir;
system_or_bail('bash', dirname(__FILE__) . '/../pki/make_pki', $pki);
# only the leader's key is a file; the seal's is not in the keystore
copy("$pki/person_rsa.key", "$keystore/person_rsa.key") or die "copy: $!";
chmod 0600, "$keystore/person_rsa.key";

# --- the token ---------------------------------------------------------------
my $pin = '246810';
my $tokens = "$dir/tokens";
mkdir $tokens or die "mkdir: $!";
open my $cf, '>', "$dir/softhsm2.conf" or die $!;
print $cf "directories.tokendir = $tokens\nobjectstore.backend = file\nlog.level = ERROR\n";
close $cf;
# the server inherits it: the worker's SoftHSM finds the token there
$ENV{SOFTHSM2_CONF} = "$dir/softhsm2.conf";
system_or_bail('softhsm2-util', '--init-token', '--free', '--label', 'seal-token',
	'--pin', $pin, '--so-pin', '13579024');
system_or_bail('softhsm2-util', '--import', "$pki/seal.key", '--token', 'seal-token',
	'--label', 'seal-key', '--id', 'a1', '--pin', $pin);
my $uri = 'pkcs11:token=seal-token;object=seal-key;type=private';

# what must appear nowhere: the key's DER (PKCS#8), its primes in binary and
# in hex (pg_dump writes bytea as hex), and its PEM's base64 lines
system_or_bail('openssl', 'pkcs8', '-topk8', '-nocrypt', '-in', "$pki/seal.key",
	'-outform', 'DER', '-out', "$dir/seal.der");
my $der = slurp_file("$dir/seal.der");
my ($text) = run_command([ 'openssl', 'rsa', '-in', "$pki/seal.key", '-noout', '-text' ]);
my @primes;
while ($text =~ /^prime[12]:\n((?:\s+[0-9a-f:]+\n)+)/mg)
{
	(my $hex = $1) =~ s/[\s:]//g;
	$hex =~ s/^00//;
	push @primes, pack('H*', $hex);
}
is(scalar @primes, 2, 'the seal key\'s two primes are read');
my @pem_lines = grep { length($_) == 64 } split /\n/, slurp_file("$pki/seal.key");
my @needles = ($der, @primes, (map { unpack('H*', $_) } @primes), @pem_lines[ 1 .. 3 ]);

sub holds_key
{
	my ($bytes) = @_;
	for my $n (@needles)
	{
		return 1 if index($bytes, $n) >= 0;
		return 1 if $n =~ /^[0-9a-f]+$/ && index(lc $bytes, $n) >= 0;
	}
	return 0;
}
ok(holds_key("x" . $primes[0] . "y"), 'the key detector finds a prime in binary');
ok(holds_key("\\x" . unpack('H*', $der)), 'the key detector finds the DER in hex');

# the PIN file, outside the data directory, readable by the server's user only
sub write_pin
{
	my ($value) = @_;
	open my $f, '>', "$dir/pin" or die $!;
	print $f "$value\n";
	close $f;
	chmod 0600, "$dir/pin";
	return;
}
write_pin($pin);

# --- the node ------------------------------------------------------------------
my $node = PostgreSQL::Test::Cluster->new('hsm_seal');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'ioffice'
ioffice.worker_databases = 'postgres'
ioffice.keystore = '$keystore'
ioffice.keystore_personal = on
ioffice.pkcs11_module = '$module'
ioffice.pkcs11_pin_file = '$dir/pin'
ioffice.worker_naptime = 1
ioffice.audit_seal_interval = 1
});
$node->start;

my $chain = slurp_file("$pki/intermediate.pem");
my $seal_pem = sql_literal(slurp_file("$pki/seal.pem") . $chain);
$node->safe_psql('postgres', qq{
CREATE EXTENSION ioffice;
SELECT ioffice.add_agency('UBND huyện Sốp Cộp', 'UBND', '000.00.32.H41');
SELECT ioffice.add_department(1, 'Văn phòng HĐND-UBND', 'VP');
SELECT ioffice.add_person('regress_luan', 'Tòng Văn Luân', 'Chuyên viên', 2, '{specialist}');
SELECT ioffice.add_person('dai', 'Trần Văn Đại', 'Chánh Văn phòng', 2, '{leader}');
SELECT ioffice.add_person('regress_thuy', 'Tòng Văn Thủy', 'Văn thư', 1, '{clerk}');
SELECT ioffice.add_trust_anchor(@{[ sql_literal(slurp_file("$pki/root.pem")) ]});
SELECT ioffice.register_certificate('personal', 'dai', @{[ sql_literal(slurp_file("$pki/person_rsa.pem") . $chain) ]}, 'person_rsa.key');
});

# --- registering by URI ----------------------------------------------------------
my ($ret, $out, $err) = $node->psql('postgres',
	"SELECT ioffice.register_certificate('organisation', '000.00.32.H41', $seal_pem, 'seal.key', '$uri')");
like($err, qr/either a key file or a PKCS#11 URI/, 'a key file and a URI together are refused');
($ret, $out, $err) = $node->psql('postgres',
	"SELECT ioffice.register_certificate('organisation', '000.00.32.H41', $seal_pem, NULL, '$uri;pin-value=$pin')");
like($err, qr/must not carry the PIN/, 'a URI carrying the PIN is refused');
($ret, $out, $err) = $node->psql('postgres',
	"SELECT ioffice.register_certificate('organisation', '000.00.32.H41', $seal_pem, NULL, 'file:/etc/passwd')");
like($err, qr/is not a PKCS#11 URI/, 'a URI of another scheme is refused');
($ret, $out, $err) = $node->psql('postgres',
	"INSERT INTO ioffice.certificate (kind, person_id, pem, subject, issuer, serial, not_before, not_after, fingerprint, key_uri) "
	  . "VALUES ('personal', (SELECT min(id) FROM ioffice.person), 'x', 's', 'i', '1', now(), now(), '\\x01', '$uri')");
like($err, qr/certificate_one_key/, 'the table refuses a personal certificate with a key URI');
$node->safe_psql('postgres',
	"SELECT ioffice.register_certificate('organisation', '000.00.32.H41', $seal_pem, NULL, '$uri')");
is($node->safe_psql('postgres',
		"SELECT key_file IS NULL AND key_uri = '$uri' FROM ioffice.certificate WHERE kind = 'organisation'"),
	't', 'the seal certificate names its key by the URI');

# --- an issued document sealed through the HSM ------------------------------------
system_or_bail('perl', dirname(__FILE__) . '/../pdf/make_pdf.pl', 1, "$dir/cv.pdf", 'Cong van HSM');
my $pdf_hex = file_hex("$dir/cv.pdf");

# the leader signs (key file), approves; the clerk issues: the seal's job is
# queued.  Returns the document once no signature is pending.
sub issue
{
	my ($label, $options) = @_;
	$options //= '{}';
	my $doc = as_actor($node, 'postgres', 'regress_luan', "SELECT ioffice.create_outgoing('CV', 'Công văn $label', '$options')");
	as_actor($node, 'postgres', 'regress_luan', "SELECT ioffice.attach($doc, 'cong_van.pdf', decode('$pdf_hex', 'hex'))");
	as_actor($node, 'postgres', 'regress_luan', "SELECT ioffice.act($doc, 'submit', 'dai', NULL, '{\"request_signature\": true}')");
	as_actor($node, 'postgres', 'dai', "SELECT ioffice.act($doc, 'sign', NULL, NULL, '{\"mode\": \"auto\"}')");
	wait_signatures($node, $doc) or die "$label: the leader's signature is not made";
	as_actor($node, 'postgres', 'dai', "SELECT ioffice.act($doc, 'approve', 'regress_thuy')");
	as_actor($node, 'postgres', 'regress_thuy', "SELECT ioffice.act($doc, 'issue')");
	ok(wait_signatures($node, $doc), "$label: the seal's job is done or failed");
	return $doc;
}

sub seal_outcome
{
	my ($doc) = @_;
	return $node->safe_psql('postgres',
		"SELECT status || '|' || coalesce(reason, '') FROM ioffice.signature WHERE document_id = $doc AND kind = 'organisation'");
}

my $doc = issue('one');
is(seal_outcome($doc), 'done|', 'the seal is made with the key in the HSM');
my $file = current_file($node, $doc);
my $issued = bytea_to_file($node, 'postgres', 'dai', "(SELECT content FROM ioffice.file WHERE id = $file)", 'issued.pdf');
($out, $err) = run_command([ 'pdfsig', $issued ]);
my @valid = $out =~ /Signature Validation: Signature is Valid/g;
is(scalar @valid, 2, 'pdfsig: the leader\'s signature and the seal are valid') or diag($out . $err);
like($out, qr/Signature #2:\n(?:\s*- (?!Signer)[^\n]*\n)*\s*- Signer Certificate Common Name: UBND huyện Sốp Cộp\n/,
	'pdfsig: the seal is by the seal certificate');
like($out, qr/Signature #2:.*?\n\s*- Total document signed/s, 'pdfsig: the seal covers the whole document');
is(as_actor($node, 'postgres', 'dai', "SELECT string_agg(kind || ':' || valid, ',' ORDER BY kind) FROM ioffice.verify($file)"),
	'organisation:true,personal:true', 'verify(): both signatures valid');

# --- an audit checkpoint signed with the HSM key ------------------------------------
my $seal_fp = $node->safe_psql('postgres',
	"SELECT encode(fingerprint, 'hex') FROM ioffice.certificate WHERE kind = 'organisation'");
$node->safe_psql('postgres', "ALTER SYSTEM SET ioffice.audit_certificate = '$seal_fp'; SELECT pg_reload_conf();");
ok($node->poll_query_until('postgres', qq{
SELECT EXISTS (SELECT 1 FROM ioffice.audit_checkpoint WHERE signature IS NOT NULL)
   AND NOT EXISTS (SELECT 1 FROM ioffice.audit_checkpoint WHERE signature IS NULL)}),
	'the worker signs the audit checkpoints with the HSM key');
is($node->safe_psql('postgres', 'SELECT count(*) FROM ioffice.audit_verify()'), '0',
	'audit_verify(): the checkpoints\' signatures hold');

# --- the key is nowhere in the cluster -----------------------------------------------
my $dump = "$dir/dump.sql";
system_or_bail('pg_dump', '-d', $node->connstr('postgres'), '-f', $dump);
ok(!holds_key(slurp_file($dump)), 'pg_dump: no table holds the seal\'s private key');
my @holding;
find(
	{
		no_chdir => 1,
		wanted => sub {
			return unless -f $_ && -r $_;
			open my $fh, '<:raw', $_ or return;
			local $/;
			my $bytes = <$fh>;
			close $fh;
			push @holding, $_ if defined $bytes && holds_key($bytes);
		}
	},
	$node->data_dir);
is(join(',', @holding), '', 'no file under the data directory holds the seal\'s private key');

sub reload
{
	$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
	# the worker takes the reload at its next wake-up
	sleep 2;
	return;
}

# --- personal key files: development only -------------------------------------------
# ioffice.keystore_personal off: the leader's key file is not used, his
# signature waits for his own tool (the token path); a reload that does not
# touch the HSM keeps the signer process and its loaded key
my $signer_pid = $node->safe_psql('postgres', 'SELECT signer_pid FROM ioffice._worker_slots()');
$node->safe_psql('postgres', 'ALTER SYSTEM SET ioffice.keystore_personal = off');
reload();
my $pdoc = as_actor($node, 'postgres', 'regress_luan', "SELECT ioffice.create_outgoing('CV', 'Công văn token')");
as_actor($node, 'postgres', 'regress_luan', "SELECT ioffice.attach($pdoc, 'cong_van.pdf', decode('$pdf_hex', 'hex'))");
as_actor($node, 'postgres', 'regress_luan', "SELECT ioffice.act($pdoc, 'submit', 'dai', NULL, '{\"request_signature\": true}')");
as_actor($node, 'postgres', 'dai', "SELECT ioffice.act($pdoc, 'sign', NULL, NULL, '{\"mode\": \"auto\"}')");
my $psig = $node->safe_psql('postgres', "SELECT id FROM ioffice.signature WHERE document_id = $pdoc");
sleep 3;
is($node->safe_psql('postgres', "SELECT status FROM ioffice.signature WHERE id = $psig"), 'pending',
	'keystore_personal off: the worker does not sign with the leader\'s key file');
is(as_actor($node, 'postgres', 'dai', "SELECT ioffice.signing_request($psig) IS NOT NULL"), 't',
	'keystore_personal off: the leader\'s signature is on the token path');
$node->safe_psql('postgres', 'ALTER SYSTEM RESET ioffice.keystore_personal');
reload();
ok(wait_signatures($node, $pdoc), 'keystore_personal on again: the worker signs');
is($node->safe_psql('postgres', "SELECT status FROM ioffice.signature WHERE id = $psig"), 'done',
	'keystore_personal on again: the leader\'s signature is made with his key file');
is($node->safe_psql('postgres', 'SELECT signer_pid FROM ioffice._worker_slots()'), $signer_pid,
	'reloads that do not touch the HSM keep the signer process');

# --- failures: the job's reason, never a crash ---------------------------------------

write_pin('999999');
reload();
$doc = issue('wrong PIN');
my $outcome = seal_outcome($doc);
like($outcome, qr/^failed\|PKCS#11 key "\Q$uri\E": .*PIN incorrect/, 'a wrong PIN fails the seal, the reason names the URI')
  or diag($outcome);
unlike($outcome, qr/999999|$pin/, 'the reason does not hold the PIN');
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server keeps running');
is($node->safe_psql('postgres', "SELECT signer_pid IS NOT NULL FROM ioffice._worker_slots()"), 't',
	'the signing worker keeps running');

write_pin($pin);
rename $tokens, "$dir/tokens.away" or die "rename: $!";
mkdir $tokens or die "mkdir: $!";
reload();
$doc = issue('missing token');
$outcome = seal_outcome($doc);
like($outcome, qr/^failed\|PKCS#11 key "\Q$uri\E": /, 'a missing token fails the seal, the reason names the URI')
  or diag($outcome);
rmdir $tokens;
rename "$dir/tokens.away", $tokens or die "rename: $!";

$node->safe_psql('postgres', "ALTER SYSTEM SET ioffice.pkcs11_module = '$dir/no_such_module.so'");
reload();
$doc = issue('missing module');
$outcome = seal_outcome($doc);
like($outcome, qr/^failed\|PKCS#11 key "\Q$uri\E": the PKCS#11 module ".*no_such_module\.so" cannot be read/,
	'a missing module fails the seal, the reason names the URI and the module')
  or diag($outcome);
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server keeps running');

# token back, PIN right, module back: reloaded, the next seal is made
$node->safe_psql('postgres', 'ALTER SYSTEM RESET ioffice.pkcs11_module');
reload();
$doc = issue('fixed');
is(seal_outcome($doc), 'done|', 'the PIN fixed and the configuration reloaded, the seal is made again');
$file = current_file($node, $doc);
$issued = bytea_to_file($node, 'postgres', 'dai', "(SELECT content FROM ioffice.file WHERE id = $file)", 'fixed.pdf');
($out, $err) = run_command([ 'pdfsig', $issued ]);
@valid = $out =~ /Signature Validation: Signature is Valid/g;
is(scalar @valid, 2, 'pdfsig: the new seal is valid') or diag($out . $err);

# --- an edXML package signed with the key in the HSM --------------------------------
# A document issued to Văn phòng Chính phủ (000.00.00.G22, another system):
# the edXML helper signs its package with the seal's key in the token
# (helpers/edxml_hsm.c); fetched from the stand-in axis as G22 fetches it,
# xmlsec1 verifies it against the root, its KeyInfo carries the seal's
# certificate, and its attachment is the sealed PDF.
SKIP:
{
	skip 'python3 or xmlsec1 is not installed', 6
	  if system('command -v python3 >/dev/null 2>&1 && command -v xmlsec1 >/dev/null 2>&1') != 0;
	my %secret = ('000.00.32.H41' => 'secret-of-sop-cop-0123456789', '000.00.00.G22' => 'secret-of-vpcp-0123456789');
	open my $fh, '>', "$dir/axis.json" or die;
	print $fh JSON::PP->new->encode({ systems => \%secret, endpoint_secret => 'endpoint-secret-0123456789' });
	close $fh;
	my $standin = fork // die "fork: $!";
	if ($standin == 0)
	{
		exec('python3', dirname(__FILE__) . '/axis_standin.py', "$dir/axis.json", "$dir/axis.port") or die "exec: $!";
	}
	for (1 .. 1200)
	{
		last if -s "$dir/axis.port";
		usleep(50_000);
	}
	die 'the stand-in axis did not start' unless -s "$dir/axis.port";
	my $port = slurp_file("$dir/axis.port");
	$node->safe_psql('postgres', qq{
INSERT INTO ioffice.exchange_axis (agency_id, transport, url, system_id, secret, poll_seconds, timeout_ms)
VALUES (1, 'vxp', 'http://127.0.0.1:$port/', '000.00.32.H41', '$secret{'000.00.32.H41'}', 1, 2000);
});
	$doc = issue('edxml', '{"recipients": ["000.00.00.G22"]}');
	is(seal_outcome($doc), 'done|', 'edXML: the document is sealed with the key in the HSM');
	ok($node->poll_query_until('postgres',
		"SELECT state = 'sent' FROM ioffice.edxml_outgoing WHERE document_id = $doc AND kind = 'document'"),
		'edXML: the package is signed and sent')
	  or diag($node->safe_psql('postgres', 'SELECT state, last_error FROM ioffice.edxml_outgoing'));

	# what G22 fetches from the axis (VXP: HMAC-SHA256 of "systemid:timestamp")
	my $http = HTTP::Tiny->new(timeout => 10);
	my $as_g22 = sub {
		my ($path, $extra) = @_;
		my $ts = int(time() * 1000);
		my $sig = encode_base64(hmac_sha256("000.00.00.G22:$ts", $secret{'000.00.00.G22'}), '');
		return $http->post("http://127.0.0.1:$port/$path",
			{ headers => { systemid => '000.00.00.G22', timestamp => $ts, signature => $sig, %{ $extra // {} } } });
	};
	my $list = decode_json($as_g22->('getReceivedEdocList')->{content});
	is(scalar @{ $list->{data} }, 1, 'edXML: one package waits for G22 on the axis');
	my $package = $as_g22->('getEdoc', { docid => $list->{data}[0]{docId} })->{content};
	open my $pf, '>', "$dir/hsm.edxml" or die;
	print $pf $package;
	close $pf;
	my ($xout, $xerr) = run_command([ 'xmlsec1', '--verify', '--trusted-pem', "$pki/root.pem", "$dir/hsm.edxml" ]);
	like($xout . $xerr, qr/^OK/m, 'xmlsec1 --verify: the package\'s signature made in the HSM holds') or diag($xerr);
	(my $seal_b64 = slurp_file("$pki/seal.pem")) =~ s/-----[^-]+-----|\s//g;
	my ($in_package) = $package =~ /<(?:\w+:)?X509Certificate>([^<]+)</;
	$in_package //= '';
	$in_package =~ s/\s//g;
	is($in_package, $seal_b64, 'its KeyInfo carries the seal certificate');
	my ($attachment) = $package =~ /<(?:\w+:)?ContentTransferEncoded>([^<]+)</;
	my $sealed = $node->safe_psql('postgres',
		"SELECT encode(content, 'hex') FROM ioffice.file WHERE id = " . current_file($node, $doc));
	is(unpack('H*', decode_base64($attachment // '')), $sealed, 'its attachment is the sealed PDF');
	kill 'TERM', $standin;
	waitpid($standin, 0);
}

$node->stop;
done_testing();
