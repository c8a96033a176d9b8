# The background worker signs: detached CMS (CAdES-BES) made in-process with
# OpenSSL, verified by verify() and by the openssl command; failures (expired,
# revoked, a key file others can read) are recorded on the job; a rolled-back
# request is never signed; killing the worker, or the whole server, loses no job
# and signs none twice.
use strict;
use warnings;
use File::Basename qw(dirname);
use File::Copy qw(copy);
use lib dirname(__FILE__);
use ServerProcesses;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use IofficeTest;

my $pki = PostgreSQL::Test::Utils::tempdir;
my $keystore = PostgreSQL::Test::Utils::tempdir;
my $make_pki = dirname(__FILE__) . '/../pki/make_pki';
system_or_bail('bash', $make_pki, $pki);
for my $k (qw(person_rsa seal expired revoked person_ec))
{
	copy("$pki/$k.key", "$keystore/$k.key") or die "copy $k: $!";
	chmod 0600, "$keystore/$k.key";
}
copy("$pki/person_ec.key", "$keystore/loose.key") or die "copy: $!";
chmod 0644, "$keystore/loose.key";

my $node = PostgreSQL::Test::Cluster->new('signing');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'ioffice'
ioffice.worker_databases = 'postgres'
ioffice.keystore = '$keystore'
ioffice.keystore_personal = on
ioffice.worker_naptime = 1
restart_after_crash = on
});
$node->start;

my $chain = slurp_file("$pki/intermediate.pem");
$node->safe_psql('postgres', qq{
CREATE EXTENSION ioffice;
SELECT ioffice.add_agency('UBND huyện Sốp Cộp', 'UBND', '000.00.32.H41');
SELECT ioffice.add_department(1, 'Văn phòng HĐND-UBND', 'VP');
SELECT ioffice.add_person('regress_luan', 'Tòng Văn Luân', 'Chuyên viên', 2, '{specialist}');
SELECT ioffice.add_person('dai', 'Trần Văn Đại', 'Chánh Văn phòng', 2, '{leader}');
SELECT ioffice.add_person('regress_thuy', 'Tòng Văn Thủy', 'Văn thư', 1, '{clerk}');
SELECT ioffice.add_person('hoa', 'Nguyễn Thị Hoa', 'Phó Chánh Văn phòng', 2, '{leader}');
SELECT ioffice.add_person('mai', 'Quàng Thị Mai', 'Phó Chủ tịch', 1, '{leader}');
SELECT ioffice.add_person('lan', 'Hà Thị Lan', 'Phó Chủ tịch', 1, '{leader}');
SELECT ioffice.add_trust_anchor(@{[ sql_literal(slurp_file("$pki/root.pem")) ]});
SELECT ioffice.add_crl(@{[ sql_literal(slurp_file("$pki/intermediate.crl.pem")) ]});
SELECT ioffice.register_certificate('personal', 'dai', @{[ sql_literal(slurp_file("$pki/person_rsa.pem") . $chain) ]}, 'person_rsa.key');
SELECT ioffice.register_certificate('organisation', '000.00.32.H41', @{[ sql_literal(slurp_file("$pki/seal.pem") . $chain) ]}, 'seal.key');
SELECT ioffice.register_certificate('personal', 'hoa', @{[ sql_literal(slurp_file("$pki/expired.pem") . $chain) ]}, 'expired.key');
SELECT ioffice.register_certificate('personal', 'mai', @{[ sql_literal(slurp_file("$pki/revoked.pem") . $chain) ]}, 'revoked.key');
SELECT ioffice.register_certificate('personal', 'lan', @{[ sql_literal(slurp_file("$pki/person_ec.pem") . $chain) ]}, 'loose.key');
});
is($node->safe_psql('postgres',
	"SELECT revoked_at IS NOT NULL FROM ioffice.certificate c JOIN ioffice.person p ON p.id = c.person_id WHERE p.login = 'mai'"),
	't', 'the CRL marks the revoked certificate');

sub new_doc
{
	my ($abstract, $leader) = @_;
	my $doc = as_actor($node, 'postgres', 'regress_luan', "SELECT ioffice.create_outgoing('CV', '$abstract')");
	as_actor($node, 'postgres', 'regress_luan', "SELECT ioffice.attach($doc, 'du_thao.pdf', convert_to('%PDF-1.4 $abstract', 'UTF8'))");
	as_actor($node, 'postgres', 'regress_luan', "SELECT ioffice.act($doc, 'submit', '$leader', NULL, '{\"request_signature\": true}')");
	return $doc;
}

sub wait_signatures
{
	my ($doc) = @_;
	return $node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM ioffice.signature WHERE document_id = $doc AND status = 'pending'");
}

# --- the leader signs, the worker does it, approve then works -------------------
my $doc = new_doc('Công văn ký số', 'dai');
as_actor($node, 'postgres', 'dai', "SELECT ioffice.act($doc, 'sign', NULL, NULL, '{\"mode\": \"vgca\"}')");
ok(wait_signatures($doc), 'the worker took the job');
is($node->safe_psql('postgres', "SELECT status, coalesce(reason, '-'), length(cms) > 500 FROM ioffice.signature WHERE document_id = $doc"),
	'done|-|t', 'the signature is done, with a CMS');
is(as_actor($node, 'postgres', 'dai', "SELECT ioffice.act($doc, 'approve', 'regress_thuy')"), 'awaiting_issue',
	'approve goes through once the requested signature is done');
{
	my ($swap_rc, $swap_out, $swap_err) = try_as_actor($node, 'postgres', 'regress_thuy',
		"SELECT ioffice.replace_file((SELECT id FROM ioffice.file WHERE document_id = $doc), "
		. "'khac.pdf', convert_to('%PDF-1.4 nội dung khác', 'UTF8'))");
	like($swap_err, qr/its files were approved and can no longer change/,
		'the clerk cannot swap the approved, signed file before issuing it');
}
is(as_actor($node, 'postgres', 'regress_thuy', "SELECT ioffice.act($doc, 'issue')"), 'issued', 'the clerk issues');
ok(wait_signatures($doc), 'the organisation signature is made');
my $file = $node->safe_psql('postgres', "SELECT id FROM ioffice.file WHERE document_id = $doc");
is(as_actor($node, 'postgres', 'dai', "SELECT string_agg(kind || ':' || valid || ':' || coalesce(reason, '-'), ',' ORDER BY signed_at) FROM ioffice.verify($file)"),
	'personal:true:-,organisation:true:-', 'verify(): the leader\'s and the organisation\'s signatures are valid');
like(as_actor($node, 'postgres', 'dai', "SELECT string_agg(subject, ' | ') FROM ioffice.verify($file)"),
	qr/Trần Văn Đại.*UBND huyện Sốp Cộp/, 'verify() names the signers from their certificates');
# the issue's deltas of the home page's counters (sql/parts/95_dashboard_counts.sql)
# are folded by the worker into the counter rows, and change nothing
ok($node->poll_query_until('postgres', "SELECT count(*) = 0 FROM ioffice.dashboard_count_delta"),
	'the worker folds the home page\'s counter deltas');
is($node->safe_psql('postgres', "SELECT n FROM ioffice.dashboard_count c JOIN ioffice.person p ON p.id = c.person_id "
		. "WHERE p.login = 'regress_thuy' AND c.counter = 'outgoing_issued'"), '1',
	'the clerk\'s folded counter has the issued document');
is($node->safe_psql('postgres', "SELECT count(*) FROM ioffice.dashboard_counts_check()"), '0',
	'no counter drifts after folding');
my $status = $node->safe_psql('postgres', "SELECT state, jobs_done >= 2, signatures_pending FROM ioffice.worker_status");
like($status, qr/^(idle|signing)\|t\|0$/, "worker_status shows the work done ($status)");

# --- the openssl command accepts the signatures --------------------------------
my $dir = PostgreSQL::Test::Utils::tempdir;
my $content = $node->safe_psql('postgres', "SELECT encode(content, 'hex') FROM ioffice.file WHERE id = $file");
open my $fh, '>:raw', "$dir/doc.pdf" or die; print $fh pack('H*', $content); close $fh;
for my $kind (qw(personal organisation))
{
	my $cms = $node->safe_psql('postgres', "SELECT encode(cms, 'hex') FROM ioffice.signature WHERE file_id = $file AND kind = '$kind'");
	open my $sfh, '>:raw', "$dir/$kind.der" or die; print $sfh pack('H*', $cms); close $sfh;
	my ($out, $err) = run_command(['openssl', 'cms', '-verify', '-inform', 'DER', '-in', "$dir/$kind.der",
		'-content', "$dir/doc.pdf", '-binary', '-CAfile', "$pki/root.pem", '-purpose', 'any', '-out', '/dev/null']);
	like($err, qr/Verification successful/, "openssl cms -verify accepts the $kind signature");
	($out, $err) = run_command(['openssl', 'cms', '-cmsout', '-print', '-inform', 'DER', '-in', "$dir/$kind.der"]);
	like($out, qr/signingTime/, "the $kind signature carries the signing time");
	like($out, qr/id-smime-aa-signingCertificateV2/, "the $kind signature is CAdES-BES (signingCertificateV2)");
	like($out, qr/sha256/, "the $kind signature uses SHA-256");
}

# --- signature_p7s: both signatures in one CMS, accepted by openssl ----------------
my $p7s = as_actor($node, 'postgres', 'dai', "SELECT encode(ioffice.signature_p7s($file), 'hex')");
open my $pfh, '>:raw', "$dir/all.p7s" or die; print $pfh pack('H*', $p7s); close $pfh;
{
	my ($out, $err) = run_command(['openssl', 'cms', '-verify', '-inform', 'DER', '-in', "$dir/all.p7s",
		'-content', "$dir/doc.pdf", '-binary', '-CAfile', "$pki/root.pem", '-purpose', 'any', '-out', '/dev/null']);
	like($err, qr/Verification successful/, 'openssl cms -verify accepts the exported .p7s with all signers');
	($out, $err) = run_command(['openssl', 'cms', '-cmsout', '-print', '-inform', 'DER', '-in', "$dir/all.p7s"]);
	my $signers = () = $out =~ /signatureAlgorithm:/g;
	is($signers, 2, 'the .p7s holds the leader\'s and the organisation\'s signatures');
}
my ($p7ret, $p7out, $p7err) = try_as_actor($node, 'postgres', 'dai',
	"SELECT ioffice.signature_p7s(999999)");
like($p7err, qr/unknown file 999999/, 'signature_p7s of an unknown file is refused');

# --- changed content is found ----------------------------------------------------
# (the trigger on file refuses new bytes under a file id: a superuser switches it off)
$node->safe_psql('postgres', "SET session_replication_role = replica; "
	. "UPDATE ioffice.file SET content = convert_to('%PDF-1.4 đã sửa', 'UTF8') WHERE id = $file");
is(as_actor($node, 'postgres', 'dai', "SELECT string_agg(valid || ':' || reason, ',') FROM ioffice.verify($file)"),
	'false:content changed,false:content changed', 'verify() reports changed content');

# a "done" signature whose CMS was removed by hand is reported, not a crash
$node->safe_psql('postgres', "UPDATE ioffice.signature SET cms = NULL WHERE file_id = $file AND kind = 'organisation'");
is(as_actor($node, 'postgres', 'dai', "SELECT string_agg(valid || ':' || reason, ',' ORDER BY kind DESC) FROM ioffice.verify($file)"),
	'false:content changed,false:no signature data is recorded', 'verify() reports a signature without its data');
ok(length(as_actor($node, 'postgres', 'dai', "SELECT encode(ioffice.signature_p7s($file), 'hex')")) > 100,
	'signature_p7s() exports the signatures that have data');

# --- failures are recorded on the job and block nobody ----------------------------
my %expect = (hoa => qr/expired/, mai => qr/revoked/, lan => qr/read by others/);
for my $who (sort keys %expect)
{
	my $d = new_doc("Văn bản của $who", $who);
	as_actor($node, 'postgres', $who, "SELECT ioffice.act($d, 'sign')");
	ok(wait_signatures($d), "$who: the job was taken");
	my ($st, $reason) = split /\|/, $node->safe_psql('postgres', "SELECT status, reason FROM ioffice.signature WHERE document_id = $d");
	is($st, 'failed', "$who: the job failed");
	like($reason, $expect{$who}, "$who: with the reason ($reason)");
	my ($ret, $out, $err) = try_as_actor($node, 'postgres', $who, "SELECT ioffice.act($d, 'approve', 'regress_thuy')");
	like($err, qr/is not signed/, "$who: approve stays refused");
}

# --- a request in a transaction that rolled back is never signed ------------------
my $rb = new_doc('Hủy ký', 'dai');
$node->safe_psql('postgres', "BEGIN; SET LOCAL ioffice.actor = 'dai'; SELECT ioffice.act($rb, 'sign'); ROLLBACK;");
# a request committed after it: once the worker has taken that one, it has
# looked at the queue since the rollback
my $after = new_doc('Ký sau khi hủy', 'dai');
as_actor($node, 'postgres', 'dai', "SELECT ioffice.act($after, 'sign')");
ok(wait_signatures($after), 'a later request was taken');
is($node->safe_psql('postgres', "SELECT count(*) FROM ioffice.signature WHERE document_id = $after AND status <> 'pending'"),
	'1', 'the worker went through the queue after the rollback');
is($node->safe_psql('postgres', "SELECT count(*) FROM ioffice.signature WHERE document_id = $rb"), '0',
	'a rolled-back sign leaves no job');
is($node->safe_psql('postgres', "SELECT count(*) FROM ioffice.audit WHERE chain = 'document:$rb' AND action = 'signed'"), '0',
	'and nothing was signed');

# --- kill -9 of the worker in the middle: nothing lost, nothing signed twice -------
my $many = as_actor($node, 'postgres', 'regress_luan', "SELECT ioffice.create_outgoing('CV', 'Nhiều tệp')");
for my $i (1 .. 40)
{
	as_actor($node, 'postgres', 'regress_luan', "SELECT ioffice.attach($many, 'tep_$i.pdf', convert_to('%PDF-1.4 tệp $i', 'UTF8'))");
}
as_actor($node, 'postgres', 'regress_luan', "SELECT ioffice.act($many, 'submit', 'dai')");
$node->safe_psql('postgres', "ALTER SYSTEM SET ioffice.worker_batch = 5; SELECT pg_reload_conf();");
as_actor($node, 'postgres', 'dai', "SELECT ioffice.act($many, 'sign')");
my $pid = $node->safe_psql('postgres', "SELECT pid FROM ioffice.worker_status");
kill 'KILL', $pid if $pid;
ok($node->poll_query_until('postgres', "SELECT pid IS NOT NULL AND pid <> $pid FROM ioffice.worker_status"),
	'the worker is started again after kill -9');
ok(wait_signatures($many), 'the queue drains after the crash');
is($node->safe_psql('postgres', "SELECT count(*), count(*) FILTER (WHERE status = 'done') FROM ioffice.signature WHERE document_id = $many"),
	'40|40', 'every job signed once');
is($node->safe_psql('postgres', "SELECT count(*) FROM ioffice.audit WHERE chain = 'document:$many' AND action = 'signed'"),
	'40', 'one signed record per job: none signed twice');
is($node->safe_psql('postgres', "SELECT count(*) FROM ioffice.audit_verify()"), '0', 'the audit trail is intact');

# --- kill -9 of the whole server in the middle: the same ----------------------------
# A power cut: every server process dies at once, right after the signing
# request committed, while the worker works through batches of 5.
my $cut = as_actor($node, 'postgres', 'regress_luan', "SELECT ioffice.create_outgoing('CV', 'Mất điện')");
$node->safe_psql('postgres', qq{
SET ioffice.actor = 'regress_luan';
SELECT ioffice.attach($cut, 'cut_' || i || '.pdf',
                      convert_to('%PDF-1.4 ', 'UTF8') || decode(repeat('00', 65536), 'hex'))
FROM generate_series(1, 300) i;
SELECT ioffice.act($cut, 'submit', 'dai');
});
as_actor($node, 'postgres', 'dai', "SELECT ioffice.act($cut, 'sign')");
my $pm = postmaster_pid($node);
kill 'STOP', $pm;
my @server = ($pm, children_of($pm));
kill 'KILL', @server;
$node->kill9;
wait_gone(@server);
$node->start;
my $before = $node->safe_psql('postgres',
	"SELECT count(*) FILTER (WHERE status = 'done') FROM ioffice.signature WHERE document_id = $cut");
note("signatures done when the power went: $before of 300");
ok(wait_signatures($cut), 'the queue drains after the server came back');
is($node->safe_psql('postgres', "SELECT count(*), count(*) FILTER (WHERE status = 'done') FROM ioffice.signature WHERE document_id = $cut"),
	'300|300', 'every job signed once after the power cut');
is($node->safe_psql('postgres', "SELECT count(*) FROM ioffice.audit WHERE chain = 'document:$cut' AND action = 'signed'"),
	'300', 'one signed record per job after the power cut: none signed twice');
is($node->safe_psql('postgres', "SELECT count(*) FROM ioffice.audit_verify()"), '0',
	'the audit trail is intact after the power cut');

# the RSA keys of the test PKI sign from the CMS template made once per
# certificate (docs/benchmarks.md): a silent fall back to OpenSSL's CMS
# functions would pass every other test, only slower
unlike(slurp_file($node->logfile), qr/no fast signing template/,
	'every RSA certificate signed through its fast template');

$node->stop;
done_testing();
