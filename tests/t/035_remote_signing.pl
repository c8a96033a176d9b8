# Remote signing services (issue 13, item 2), against a stand-in service on
# loopback (csc_standin.py, CSC-API shaped, signing with the test PKI's keys):
# the leader's certificate is registered without a key file and he has a
# credential with the service, so the signer prepares the revision, sends
# the hash, polls, and embeds what the service returns.  Each outcome:
# confirmed (pdfsig verifies it, by the leader's certificate), refused,
# expired, garbage, a key that is not the signer's, the service down (then
# the leader signs again once it is back); 50 pending confirmations while
# the signer signs another document and the deliverer delivers promptly;
# kill -9 of the signer while transactions are pending: they resume, nothing
# is embedded twice.
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
use PdfSigning;

for my $tool (qw(pdfsig openssl python3))
{
	plan skip_all => "$tool is not installed" if system("command -v $tool >/dev/null 2>&1") != 0;
}
plan skip_all => 'python3 has no cryptography module'
  if system('python3 -c "import cryptography" 2>/dev/null') != 0;

my $pki = PostgreSQL::Test::Utils::tempdir;
my $keystore = PostgreSQL::Test::Utils::tempdir;
my $dir = PostgreSQL::Test::Utils::tempdir;
system_or_bail('bash', dirname(__FILE__) . '/../pki/make_pki', $pki);
# on the server: the seal's key, and kha's (a leader the worker signs for)
for my $k (qw(seal person_ec))
{
	copy("$pki/$k.key", "$keystore/$k.key") or die "copy $k: $!";
	chmod 0600, "$keystore/$k.key";
}

# --- the stand-in service ------------------------------------------------------------
my $secret = 'standin-client-secret-0123456789';
my $config = "$dir/standin.json";
{
	open my $fh, '>', $config or die;
	print $fh JSON::PP->new->encode({
		client_id => 'ioffice-test',
		client_secret => $secret,
		credentials => {
			'cred-dai' => { key => "$pki/person_rsa.key" },
			# lan's credential signs with dai's key: not lan's
			'cred-lan' => { key => "$pki/person_rsa.key" },
		} });
	close $fh;
}
my ($standin_pid, $port);

sub standin_start
{
	my $portfile = "$dir/standin.port";
	unlink $portfile;
	$standin_pid = fork // die "fork: $!";
	if ($standin_pid == 0)
	{
		$ENV{CSC_PORT} = $port // 0;
		exec('python3', dirname(__FILE__) . '/csc_standin.py', $config, $portfile) or die "exec: $!";
	}
	# (python's cryptography module takes seconds to load on a busy machine)
	for (1 .. 1200)
	{
		last if -s $portfile;
		usleep(50_000);
	}
	die 'the stand-in service did not start' unless -s $portfile;
	$port = slurp_file($portfile);
	return;
}

sub standin_stop
{
	kill 'TERM', $standin_pid;
	waitpid($standin_pid, 0);
	return;
}

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

standin_start();

# --- the server ---------------------------------------------------------------------
my $node = PostgreSQL::Test::Cluster->new('remote_signing');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'ioffice'
ioffice.worker_databases = 'postgres'
ioffice.keystore = '$keystore'
ioffice.keystore_personal = on
ioffice.worker_naptime = 1
ioffice.remote_signing_poll = '200ms'
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
SELECT ioffice.add_person('regress_kha', 'Lò Văn Kha', 'Phó Chánh Văn phòng', 2, '{leader}');
SELECT ioffice.add_person('regress_lan', 'Hà Thị Lan', 'Phó Chánh Văn phòng', 2, '{leader}');
SELECT ioffice.add_trust_anchor(@{[ sql_literal(slurp_file("$pki/root.pem")) ]});
SELECT ioffice.register_certificate('personal', 'dai', @{[ sql_literal(slurp_file("$pki/person_rsa.pem") . $chain) ]});
SELECT ioffice.register_certificate('personal', 'regress_lan', @{[ sql_literal(slurp_file("$pki/clientauth.pem") . $chain) ]});
SELECT ioffice.register_certificate('personal', 'regress_kha', @{[ sql_literal(slurp_file("$pki/person_ec.pem") . $chain) ]}, 'person_ec.key');
SELECT ioffice.register_certificate('organisation', '000.00.32.H41', @{[ sql_literal(slurp_file("$pki/seal.pem") . $chain) ]}, 'seal.key');
SELECT ioffice.register_signing_provider('standin', 'http://127.0.0.1:$port', 'ioffice-test', '$secret');
SELECT ioffice.register_signing_credential('dai', 'standin', 'dai-user', 'cred-dai');
SELECT ioffice.register_signing_credential('regress_lan', 'standin', 'lan-user', 'cred-lan');
});
system_or_bail('perl', dirname(__FILE__) . '/../pdf/make_pdf.pl', 2, "$dir/draft.pdf", 'Cong van ky tu xa');
my $draft_hex = file_hex("$dir/draft.pdf");
my $dai = $node->safe_psql('postgres', "SELECT id FROM ioffice.person WHERE login = 'dai'");

# $n drafts submitted to $leader, who signs each: the documents' ids
sub pending_documents
{
	my ($label, $n, $leader) = @_;
	$leader //= 'dai';
	my $script = '';
	for my $i (1 .. $n)
	{
		$script .= "BEGIN;\nSET LOCAL ioffice.actor = 'regress_luan';\n"
		  . "SELECT ioffice.create_outgoing('CV', 'Công văn $label $i') AS doc \\gset\n"
		  . "SELECT ioffice.attach(:doc, 'cong_van.pdf', decode('$draft_hex', 'hex')) \\g /dev/null\n"
		  . "SELECT ioffice.act(:doc, 'submit', '$leader', NULL, '{\"request_signature\": true}') \\g /dev/null\n"
		  . "COMMIT;\nBEGIN;\nSET LOCAL ioffice.actor = '$leader';\n"
		  . "SELECT ioffice.act(:doc, 'sign', NULL, NULL, '{\"mode\": \"auto\"}') \\g /dev/null\n"
		  . "COMMIT;\n\\echo DOC :doc\n";
	}
	my $out = $node->safe_psql('postgres', $script);
	return ($out =~ /^DOC (\d+)$/mg);
}

sub pending_document
{
	my ($label, $leader) = @_;
	my ($doc) = pending_documents($label, 1, $leader);
	return $doc;
}

# the document's newest signature: "status:reason"
sub latest
{
	my ($doc) = @_;
	return $node->safe_psql('postgres',
		"SELECT status || ':' || coalesce(reason, '-') FROM ioffice.signature WHERE document_id = $doc ORDER BY id DESC LIMIT 1");
}

sub wait_latest_not_pending
{
	my ($doc) = @_;
	return $node->poll_query_until('postgres',
		"SELECT status <> 'pending' FROM ioffice.signature WHERE document_id = $doc ORDER BY id DESC LIMIT 1");
}

# the signature's audit records: action:actor (- for the system)
sub audit_of
{
	my ($doc) = @_;
	return $node->safe_psql('postgres',
		"SELECT string_agg(action || ':' || coalesce(actor_id::text, '-'), ',' ORDER BY seq) FROM ioffice.audit "
		. "WHERE chain = 'document:$doc' AND entity = 'signature'");
}

sub pdfsig_of_current
{
	my ($doc, $name) = @_;
	my $file = current_file($node, $doc);
	my $path = bytea_to_file($node, 'postgres', 'dai', "(SELECT content FROM ioffice.file WHERE id = $file)", "$name.pdf");
	my ($out, $err) = run_command([ 'pdfsig', $path ]);
	return $out . $err;
}

# --- confirmed --------------------------------------------------------------------------
mode('dai-user', 'confirm:2');
my $doc1 = pending_document('xác nhận');
ok(wait_latest_not_pending($doc1), 'confirmed: the signature is made');
is(latest($doc1), 'done:-', 'confirmed: done');
is($node->safe_psql('postgres',
	"SELECT state || ':' || (polls >= 2) || ':' || (response_id IS NOT NULL) || ':' || (prepared IS NULL) "
	. "FROM ioffice.signing_transaction t JOIN ioffice.signature s ON s.id = t.signature_id WHERE s.document_id = $doc1"),
	'confirmed:true:true:true', 'confirmed: the transaction was polled until confirmed, its prepared bytes dropped');
{
	my $out = pdfsig_of_current($doc1, 'confirmed');
	like($out, qr/Signature is Valid/, 'confirmed: pdfsig verifies the signature') or diag($out);
	like($out, qr/Common Name: Trần Văn Đại/, "confirmed: it is by the leader's certificate");
}
is(audit_of($doc1), "signing_requested:-,signed:$dai", 'confirmed: the request and the confirmation (by the leader) are in the chain');
is($node->safe_psql('postgres',
	"SELECT detail->>'via' || ':' || (detail->>'provider') || ':' || (detail->>'transaction' = t.transaction_id) "
	. "FROM ioffice.audit a JOIN ioffice.signing_transaction t ON t.signature_id = a.entity_id "
	. "WHERE a.chain = 'document:$doc1' AND a.action = 'signed'"),
	'remote:standin:true', 'confirmed: the record names the service and the transaction');
# the rest of the flow: the clerk's seal after it
is(as_actor($node, 'postgres', 'dai', "SELECT ioffice.act($doc1, 'approve', 'regress_thuy')"), 'awaiting_issue',
	'confirmed: approve sees the remote signature');
is(as_actor($node, 'postgres', 'regress_thuy', "SELECT ioffice.act($doc1, 'issue')"), 'issued', 'confirmed: issued');
ok(wait_signatures($node, $doc1), 'confirmed: the seal is made');
{
	my $out = pdfsig_of_current($doc1, 'issued');
	my @valid = $out =~ /Signature Validation: Signature is Valid/g;
	is(scalar @valid, 2, "confirmed: pdfsig lists the leader's and the seal's signatures, both valid") or diag($out);
	my $file = current_file($node, $doc1);
	is(as_actor($node, 'postgres', 'dai',
		"SELECT string_agg(concat_ws(':', kind, valid), ',' ORDER BY revision) FROM ioffice.verify($file)"),
		'personal:t,organisation:t', 'confirmed: verify() accepts both');
}

# --- refused, then signed again ---------------------------------------------------------
mode('dai-user', 'refuse');
my $doc2 = pending_document('từ chối');
ok(wait_latest_not_pending($doc2), 'refused: the signature ends');
like(latest($doc2), qr/^failed:the signer refused on the signing service "standin"$/, 'refused: failed, with the reason');
is($node->safe_psql('postgres',
	"SELECT string_agg(t.state, ',') FROM ioffice.signing_transaction t JOIN ioffice.signature s ON s.id = t.signature_id WHERE s.document_id = $doc2"),
	'refused', 'refused: the transaction is refused');
is(audit_of($doc2), "signing_requested:-,signing_declined:$dai", 'refused: the refusal is in the chain, by the leader');
# the leader sees it (row-level security) and signs again: a new transaction
is(as_actor($node, 'postgres', 'dai', "SELECT status || ':' || reason FROM ioffice.signature WHERE document_id = $doc2"),
	'failed:the signer refused on the signing service "standin"', 'refused: the leader sees the failed signature and why');
mode('dai-user', 'confirm:0');
as_actor($node, 'postgres', 'dai', "SELECT ioffice.act($doc2, 'sign', NULL, NULL, '{\"mode\": \"auto\"}')");
ok(wait_latest_not_pending($doc2), 'refused, signed again: the new signature ends');
is(latest($doc2), 'done:-', 'refused, signed again: done');
is($node->safe_psql('postgres',
	"SELECT string_agg(t.state, ',' ORDER BY t.id) FROM ioffice.signing_transaction t JOIN ioffice.signature s ON s.id = t.signature_id WHERE s.document_id = $doc2"),
	'refused,confirmed', 'refused, signed again: a second transaction, confirmed');

# --- expired (a short expiry) -----------------------------------------------------------
$node->safe_psql('postgres', "ALTER SYSTEM SET ioffice.remote_signing_expiry = 2; SELECT pg_reload_conf();");
sleep 1;
mode('dai-user', 'never');
my $doc3 = pending_document('hết hạn');
ok(wait_latest_not_pending($doc3), 'expired: the signature ends');
is(latest($doc3), 'failed:the signer did not confirm within 2 s on the signing service "standin"', 'expired: failed, with the reason');
is(audit_of($doc3), 'signing_requested:-,signing_expired:-', 'expired: the expiry is in the chain');
cmp_ok(standin_stats()->{status}, '>', 0, 'expired: the status was polled meanwhile');
$node->safe_psql('postgres', "ALTER SYSTEM RESET ioffice.remote_signing_expiry; SELECT pg_reload_conf();");
sleep 1;

# --- garbage ------------------------------------------------------------------------------
mode('dai-user', 'garbage');
my $doc4 = pending_document('rác');
ok(wait_latest_not_pending($doc4), 'garbage: the signature ends');
is(latest($doc4), 'failed:the signing service "standin" answered garbage: <html>Service Unavailable</html>',
	'garbage: failed, with the reason');
is(audit_of($doc4), 'signing_requested:-,signing_failed:-', 'garbage: the failure is in the chain');

# --- a signature by another person's key -------------------------------------------------
mode('lan-user', 'confirm:0');
my $doc5 = pending_document('khóa người khác', 'regress_lan');
ok(wait_latest_not_pending($doc5), "another's key: the signature ends");
like(latest($doc5), qr/^failed:the signature from the signing service "standin" is not accepted: /,
	"another's key: a signature lan's certificate does not verify is refused");
is($node->safe_psql('postgres', "SELECT count(*) FROM ioffice.file WHERE document_id = $doc5"), '1',
	"another's key: nothing embedded");
# a person cannot be given another person's credential
{
	my ($rc, $out, $err) = $node->psql('postgres',
		"\\set VERBOSITY verbose\nSELECT ioffice.register_signing_credential('regress_kha', 'standin', 'kha-user', 'cred-dai')");
	like($err, qr/23505: this credential is another person's/, "another's credential cannot be registered to a second person");
}

# --- the application roles do not read the client secret --------------------------------
$node->safe_psql('postgres', "CREATE ROLE regress_rs_app LOGIN IN ROLE ioffice_app; CREATE ROLE regress_rs_dba LOGIN IN ROLE ioffice_admin;");
for my $role (qw(regress_rs_app regress_rs_dba))
{
	my ($rc, $out, $err) = $node->psql('postgres', 'SELECT client_secret FROM ioffice.signing_provider',
		extra_params => [ '-U', $role ]);
	like($err, qr/permission denied for table signing_provider/, "$role cannot read the client secret");
}
is($node->safe_psql('postgres', "SELECT count(*) FROM ioffice.audit WHERE detail::text LIKE '%$secret%'"), '0',
	'the secret is in no audit record');

# --- the service down, then back -----------------------------------------------------------
standin_stop();
my $doc6 = pending_document('dịch vụ ngừng');
ok(wait_latest_not_pending($doc6), 'down: the signature ends');
like(latest($doc6), qr/^failed:the signing service "standin" did not answer: /, 'down: failed, with the reason');
is(audit_of($doc6), 'signing_requested:-,signing_failed:-', 'down: the failure is in the chain');
standin_start();
mode('dai-user', 'confirm:1');
as_actor($node, 'postgres', 'dai', "SELECT ioffice.act($doc6, 'sign', NULL, NULL, '{\"mode\": \"auto\"}')");
ok(wait_latest_not_pending($doc6), 'back: the new signature ends');
is(latest($doc6), 'done:-', 'back: signed once the service is back');
like(pdfsig_of_current($doc6, 'back'), qr/Signature is Valid/, 'back: pdfsig verifies it');

# --- 50 pending confirmations do not hold the worker ---------------------------------------
mode('dai-user', 'never');
my @many = pending_documents('chờ xác nhận', 50);
is(scalar @many, 50, '50 documents wait for the leader');
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 50 FROM ioffice.signing_transaction WHERE state = 'pending' AND response_id IS NOT NULL"),
	'50 hashes are with the service, pending');
{
	# the signer signs kha's document (his key is on the server) meanwhile
	my $t0 = time;
	my $doc = pending_document('ký ngay', 'regress_kha');
	ok(wait_latest_not_pending($doc), 'meanwhile: kha\'s signature is made');
	my $took = time - $t0;
	is(latest($doc), 'done:-', 'meanwhile: done');
	cmp_ok($took, '<', 10, "meanwhile: signed promptly (${\ sprintf('%.1f', $took)} s) while 50 confirmations are pending");

	# and the deliverer delivers
	my $l = listener_start('ok');
	$node->safe_psql('postgres', "INSERT INTO ioffice.endpoint (name, url, secret, events) "
		. "VALUES ('receiver', 'http://127.0.0.1:$l->{port}/hook', 'receiver-secret-0123456789', '{test.*}')");
	$t0 = time;
	as_actor($node, 'postgres', 'dai', "SELECT ioffice.emit('test.ping', '{}')");
	ok($node->poll_query_until('postgres', "SELECT count(*) = 1 FROM ioffice.outbox WHERE status = 'delivered'"),
		'meanwhile: an outbox event is delivered');
	cmp_ok(time - $t0, '<', 10, 'meanwhile: delivered promptly');
	listener_stop($l);
}
is($node->safe_psql('postgres', "SELECT count(*) FROM ioffice.signing_transaction WHERE state = 'pending'"), '50',
	'the 50 are still pending');
{
	# each of them, again and again (every 200 ms here)
	my $least = "SELECT min(polls) FROM ioffice.signing_transaction WHERE state = 'pending'";
	my $before = $node->safe_psql('postgres', $least);
	my $calls = standin_stats()->{status};
	sleep 3;
	cmp_ok($node->safe_psql('postgres', $least), '>', $before, 'each of the 50 is polled meanwhile');
	note('status polls in 3 s: ' . (standin_stats()->{status} - $calls));
}
mode('dai-user', 'confirm:0');
my $many_list = join(',', @many);
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 50 FROM ioffice.signature WHERE document_id IN ($many_list) AND status = 'done'"),
	'the 50 are signed once the leader confirms');

# --- kill -9 of the signer while transactions are pending ------------------------------------
mode('dai-user', 'never');
my @crash = pending_documents('sự cố', 10);
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 10 FROM ioffice.signing_transaction t JOIN ioffice.signature s ON s.id = t.signature_id "
	. "WHERE t.state = 'pending' AND s.document_id IN (" . join(',', @crash) . ")"),
	'crash: 10 transactions pending');
my $signer_pid = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'ioffice worker (signer)'");
like($signer_pid, qr/^\d+$/, 'crash: the signer is found in pg_stat_activity');
kill 'KILL', $signer_pid;
# the postmaster restarts every process; the signer comes back
$node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'ioffice worker (signer)' AND pid <> $signer_pid")
  or die 'the signer did not come back';
pass('crash: the server and the signer are back');
mode('dai-user', 'confirm:0');
my $crash_list = join(',', @crash);
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 10 FROM ioffice.signature WHERE document_id IN ($crash_list) AND status = 'done'"),
	'crash: the pending transactions resumed and are signed');

# nothing twice, anywhere
my $all = join(',', $doc1, $doc2, $doc6, @many, @crash);
is($node->safe_psql('postgres',
	"SELECT count(*) FROM (SELECT entity_id FROM ioffice.audit WHERE action = 'signed' AND detail->>'via' = 'remote' "
	. "GROUP BY entity_id HAVING count(*) > 1) x"),
	'0', 'no signature is recorded signed twice');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM ioffice.signing_transaction WHERE state = 'confirmed'"),
	$node->safe_psql('postgres', "SELECT count(*) FROM ioffice.audit WHERE action = 'signed' AND detail->>'via' = 'remote'"),
	'one confirmed transaction per remote signature');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM (SELECT s.id FROM ioffice.signature s JOIN ioffice.signing_transaction t ON t.signature_id = s.id "
	. "WHERE t.state = 'confirmed' GROUP BY s.id HAVING count(*) > 1) x"),
	'0', 'no signature has two confirmed transactions');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM ioffice.document d WHERE d.id IN ($crash_list) "
	. "AND (SELECT count(*) FROM ioffice.file f WHERE f.document_id = d.id) <> 2"),
	'0', 'crash: each document has its draft and one signed version, no more');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM ioffice.signature s WHERE s.document_id IN ($crash_list) AND s.signed_file_id IS NOT NULL "
	. "AND EXISTS (SELECT 1 FROM ioffice.file f WHERE f.id = s.signed_file_id AND f.superseded_at IS NULL)"),
	'10', 'crash: each signature is embedded in the current file');
{
	my $stats = standin_stats();
	my @twice = grep { $stats->{by_transaction}{$_} > 1 } keys %{ $stats->{by_transaction} };
	is(scalar @twice, 0, 'the service signed no transaction twice');
}
like(pdfsig_of_current($crash[0], 'crash'), qr/Signature is Valid/, 'crash: pdfsig verifies a resumed signature');
is($node->safe_psql('postgres', "SELECT count(*) FROM ioffice.audit_verify()"), '0', 'the audit trail verifies');

$node->stop;
standin_stop();
done_testing();
