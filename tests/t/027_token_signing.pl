# Signing on the signer's own device (issue 13, item 1), the tool played by
# the openssl command: the leader's certificate is registered without a key
# file, so the worker leaves his signature pending; signing_request() hands
# out the prepared PDF and the digests, and submit_signature() takes
# (i) the bare RSA value over the signed attributes' digest (openssl
# pkeyutl), (ii) a CMS over the /ByteRange (openssl cms -sign), (iii) the
# signed PDF.  Each is embedded as the worker's own signatures are: pdfsig
# and verify() accept it, the clerk's seal goes on after it.  Refused, with
# nothing changed: another person's certificate, a changed earlier byte, an
# expired request, a second submission, garbage.
use strict;
use warnings;
use File::Basename qw(dirname);
use File::Copy qw(copy);
use lib dirname(__FILE__);
use JSON::PP;
use MIME::Base64 qw(decode_base64);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use IofficeTest;
use PdfSigning;

for my $tool (qw(pdfsig openssl))
{
	plan skip_all => "$tool is not installed" if system("command -v $tool >/dev/null 2>&1") != 0;
}

my $pki = PostgreSQL::Test::Utils::tempdir;
my $keystore = PostgreSQL::Test::Utils::tempdir;
my $dir = PostgreSQL::Test::Utils::tempdir;
system_or_bail('bash', dirname(__FILE__) . '/../pki/make_pki', $pki);
# only the seal's key is on the server
copy("$pki/seal.key", "$keystore/seal.key") or die "copy seal: $!";
chmod 0600, "$keystore/seal.key";

my $node = PostgreSQL::Test::Cluster->new('token_signing');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'ioffice'
ioffice.worker_databases = 'postgres'
ioffice.keystore = '$keystore'
ioffice.keystore_personal = on
ioffice.worker_naptime = 1
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
SELECT ioffice.add_trust_anchor(@{[ sql_literal(slurp_file("$pki/root.pem")) ]});
SELECT ioffice.register_certificate('personal', 'dai', @{[ sql_literal(slurp_file("$pki/person_rsa.pem") . $chain) ]});
SELECT ioffice.register_certificate('personal', 'regress_luan', @{[ sql_literal(slurp_file("$pki/clientauth.pem") . $chain) ]});
SELECT ioffice.register_certificate('personal', 'regress_kha', @{[ sql_literal(slurp_file("$pki/person_ec.pem") . $chain) ]});
SELECT ioffice.register_certificate('organisation', '000.00.32.H41', @{[ sql_literal(slurp_file("$pki/seal.pem") . $chain) ]}, 'seal.key');
});
system_or_bail('perl', dirname(__FILE__) . '/../pdf/make_pdf.pl', 2, "$dir/draft.pdf", 'Cong van ky bang token');

# a draft PDF submitted to dai, who asks to sign it: the signature's id
sub pending_signature
{
	my ($label, $leader) = @_;
	$leader //= 'dai';
	my $doc = as_actor($node, 'postgres', 'regress_luan', "SELECT ioffice.create_outgoing('CV', 'Công văn $label')");
	as_actor($node, 'postgres', 'regress_luan',
		"SELECT ioffice.attach($doc, 'cong_van.pdf', decode('" . file_hex("$dir/draft.pdf") . "', 'hex'))");
	as_actor($node, 'postgres', 'regress_luan', "SELECT ioffice.act($doc, 'submit', '$leader', NULL, '{\"request_signature\": true}')");
	as_actor($node, 'postgres', $leader, "SELECT ioffice.act($doc, 'sign', NULL, NULL, '{\"mode\": \"auto\"}')");
	my $sig = $node->safe_psql('postgres', "SELECT id FROM ioffice.signature WHERE document_id = $doc");
	return ($doc, $sig);
}

sub request
{
	my ($sig, $prefix, $leader) = @_;
	my $json = as_actor($node, 'postgres', $leader // 'dai', ($prefix // '') . "SELECT ioffice.signing_request($sig)");
	my $r = JSON::PP->new->decode($json);
	$r->{pdf_bytes} = decode_base64($r->{pdf}) if $r->{pdf};
	return $r;
}

# the SQLSTATE of a refused statement as $login
sub sqlstate_of
{
	my ($login, $sql) = @_;
	my ($rc, $out, $err) = $node->psql('postgres',
		"\\set VERBOSITY verbose\nBEGIN;\nSET LOCAL ioffice.actor = '$login';\n$sql;\nCOMMIT;");
	return $err =~ /ERROR:\s+([0-9A-Z]{5}):/ ? $1 : "accepted ($out$err)";
}

sub submit_sql
{
	my ($sig, $bytes) = @_;
	return "SELECT ioffice.submit_signature($sig, decode('" . unpack('H*', $bytes) . "', 'hex'))";
}

# what a refusal must leave as it was (the worker adds the refusal's own
# audit record, "signing_refused", a moment later)
sub state_digest
{
	return join(' / ', (map { table_digest($node, 'postgres', $_) } qw(signature file token_request)),
		$node->safe_psql('postgres', "SELECT count(*) || ' ' || md5(string_agg(a::text, '|' ORDER BY a.id)) "
			. "FROM ioffice.audit a WHERE action <> 'signing_refused'"));
}

sub refusals_recorded
{
	return $node->safe_psql('postgres', "SELECT count(*) FROM ioffice.audit WHERE action = 'signing_refused'");
}

# refused as $login with $state, nothing changed, and the refusal in the
# document's audit chain, by $login, with the SQLSTATE
sub refused
{
	my ($label, $login, $sql, $state) = @_;
	my $before = state_digest();
	my $recorded = refusals_recorded();
	is(sqlstate_of($login, $sql), $state, "$label: refused with $state");
	is(state_digest(), $before, "$label: nothing changed");
	ok($node->poll_query_until('postgres',
		"SELECT count(*) = " . ($recorded + 1) . " FROM ioffice.audit WHERE action = 'signing_refused'"),
		"$label: the worker recorded the refusal in the audit trail");
	is($node->safe_psql('postgres',
		"SELECT p.login || ':' || (a.detail->>'sqlstate') || ':' || (a.chain = 'document:' || s.document_id) "
		. "FROM ioffice.audit a JOIN ioffice.person p ON p.id = a.actor_id JOIN ioffice.signature s ON s.id = a.entity_id "
		. "WHERE a.action = 'signing_refused' ORDER BY a.id DESC LIMIT 1"),
		"$login:$state:true", "$label: the refusal's record names the person and the SQLSTATE, in the document's chain");
	return;
}

# the bytes of the /ByteRange of a prepared PDF
sub range_bytes
{
	my ($r) = @_;
	my ($a, $b, $c, $d) = @{ $r->{byte_range} };
	return substr($r->{pdf_bytes}, $a, $b) . substr($r->{pdf_bytes}, $c, $d);
}

# a detached CMS over $bytes by openssl cms -sign with the test PKI's $who
sub openssl_cms
{
	my ($bytes, $who, $name) = @_;
	write_bytes("$dir/$name.bin", $bytes);
	system_or_bail('openssl', 'cms', '-sign', '-binary', '-outform', 'DER', '-in', "$dir/$name.bin",
		'-signer', "$pki/$who.pem", '-inkey', "$pki/$who.key", '-certfile', "$pki/intermediate.pem",
		'-md', 'sha256', '-out', "$dir/$name.der");
	return slurp_file("$dir/$name.der");
}

# the prepared PDF with $cms's hex in its /Contents
sub signed_pdf
{
	my ($r, $cms) = @_;
	my $pdf = $r->{pdf_bytes};
	my ($a, $b, $c, $d) = @{ $r->{byte_range} };
	my $room = $c - $b - 2;
	my $hex = unpack('H*', $cms);
	substr($pdf, $b + 1, $room) = $hex . ('0' x ($room - length $hex));
	return $pdf;
}

# the leader approves, the clerk issues, the worker seals; the issued PDF
sub issue_and_check
{
	my ($label, $doc) = @_;
	is(as_actor($node, 'postgres', 'dai', "SELECT ioffice.act($doc, 'approve', 'regress_thuy')"), 'awaiting_issue',
		"$label: approve sees the leader's token signature");
	is(as_actor($node, 'postgres', 'regress_thuy', "SELECT ioffice.act($doc, 'issue')"), 'issued', "$label: issued");
	ok(wait_signatures($node, $doc), "$label: the seal is made");
	is($node->safe_psql('postgres', "SELECT string_agg(kind || ':' || status || ':' || coalesce(reason, '-'), ',' ORDER BY id) FROM ioffice.signature WHERE document_id = $doc"),
		'personal:done:-,organisation:done:-', "$label: both signatures are done");
	my $file = current_file($node, $doc);
	my $path = bytea_to_file($node, 'postgres', 'dai', "(SELECT content FROM ioffice.file WHERE id = $file)", "$label-issued.pdf");
	my ($out, $err) = run_command([ 'pdfsig', $path ]);
	my @valid = $out =~ /Signature Validation: Signature is Valid/g;
	is(scalar @valid, 2, "$label: pdfsig lists the leader's and the seal's signatures, both valid") or diag($out . $err);
	is(as_actor($node, 'postgres', 'dai',
		"SELECT string_agg(concat_ws(':', kind, revision, after_signing, valid, coalesce(reason, '-')), ',' ORDER BY revision) FROM ioffice.verify($file)"),
		'personal:2:signatures:t:-,organisation:3:none:t:-', "$label: verify() accepts both");
	return;
}

# --- the worker leaves it to the signer ----------------------------------------------
my ($doc1, $sig1) = pending_signature('giá trị chữ ký');
sleep 3;
is($node->safe_psql('postgres', "SELECT status || ':' || coalesce(reason, '-') FROM ioffice.signature WHERE id = $sig1"),
	'pending:-', 'the worker does not sign (nor fail) a signature whose certificate has no key file');

# --- (i) the bare value over the signed attributes' digest -----------------------------
{
	my $r = request($sig1);
	is($r->{algorithm}, 'sha256WithRSAEncryption', '(i) the algorithm');
	like($r->{digest}, qr/^[0-9a-f]{64}$/, '(i) the digest is a SHA-256 in hex');
	ok(substr($r->{pdf_bytes}, 0, length slurp_file("$dir/draft.pdf")) eq slurp_file("$dir/draft.pdf"),
		'(i) the prepared PDF begins with the draft');
	use Digest::SHA qw(sha256_hex);
	is(sha256_hex(range_bytes($r)), $r->{content_digest}, '(i) content_digest is the SHA-256 of the /ByteRange');

	# refused before the right answer
	refused('wrong person asks', 'regress_luan', "SELECT ioffice.signing_request($sig1)", '42501');
	# (regress_kha, a leader with nothing to do with it, may not see the
	# document: told nothing, and nothing goes into its chain — the list of
	# refusals below has no 42704)
	{
		my $recorded = refusals_recorded();
		my $before = state_digest();
		is(sqlstate_of('regress_kha', "SELECT ioffice.signing_request($sig1)"), '42704',
			'someone who may not see the document is told the signature is unknown');
		is(state_digest(), $before, 'someone who may not see it: nothing changed');
		sleep 2;
		is(refusals_recorded(), $recorded, 'someone who may not see it: nothing written into its chain');
	}
	refused('garbage bytes', 'dai', submit_sql($sig1, "not a signature at all"), '22023');
	my $ec_cms = openssl_cms(range_bytes($r), 'clientauth', 'other');
	refused("another person's certificate", 'dai', submit_sql($sig1, $ec_cms), '42501');
	{
		my $pdf = signed_pdf($r, openssl_cms(range_bytes($r), 'person_rsa', 'changed'));
		my $at = index($pdf, 'Dong 3 cua trang 1');
		substr($pdf, $at + 5, 1) = '8';
		refused('a changed earlier byte', 'dai', submit_sql($sig1, $pdf), '22023');
	}
	{
		# the right key over the right bytes, but SHA-1: broken for signatures
		write_bytes("$dir/sha1.bin", range_bytes($r));
		system_or_bail('openssl', 'cms', '-sign', '-binary', '-outform', 'DER', '-in', "$dir/sha1.bin",
			'-signer', "$pki/person_rsa.pem", '-inkey', "$pki/person_rsa.key", '-certfile', "$pki/intermediate.pem",
			'-md', 'sha1', '-out', "$dir/sha1.der");
		refused('a CMS with SHA-1', 'dai', submit_sql($sig1, slurp_file("$dir/sha1.der")), '22023');
	}

	write_bytes("$dir/digest1.bin", pack('H*', $r->{digest}));
	system_or_bail('openssl', 'pkeyutl', '-sign', '-inkey', "$pki/person_rsa.key", '-pkeyopt', 'digest:sha256',
		'-in', "$dir/digest1.bin", '-out', "$dir/value1.bin");
	my $value = slurp_file("$dir/value1.bin");
	is(length $value, 256, '(i) openssl pkeyutl made a 2048-bit RSA value');
	refused('a value by the wrong person', 'regress_luan', submit_sql($sig1, $value), '42501');
	is(as_actor($node, 'postgres', 'dai', submit_sql($sig1, $value)), 'done', '(i) the bare value is accepted');
	refused('a second submission', 'dai', submit_sql($sig1, $value), '55000');
	is($node->safe_psql('postgres', "SELECT count(*) FROM ioffice.token_request"), '0', '(i) the request is gone');
	is($node->safe_psql('postgres',
		"SELECT string_agg(action || ':' || coalesce(actor_id::text, '-') || ':' || coalesce(detail->>'form', '-'), ',' ORDER BY seq) "
		. "FROM ioffice.audit WHERE entity = 'signature' AND entity_id = $sig1 AND action <> 'signing_refused'"),
		'signing_requested:' . $node->safe_psql('postgres', "SELECT id FROM ioffice.person WHERE login = 'dai'") . ':-,signed:'
		. $node->safe_psql('postgres', "SELECT id FROM ioffice.person WHERE login = 'dai'") . ':value',
		'(i) the audit chain has the request and the signature, by the signer');
	is($node->safe_psql('postgres', "SELECT string_agg(detail->>'call' || ':' || (detail->>'sqlstate'), ',' ORDER BY seq) FROM ioffice.audit WHERE entity = 'signature' AND entity_id = $sig1 AND action = 'signing_refused'"),
		'signing_request:42501,submit_signature:22023,submit_signature:42501,submit_signature:22023,submit_signature:22023,submit_signature:42501,submit_signature:55000',
		'(i) every refusal is in the chain, in order');
	is($node->safe_psql('postgres', "SELECT count(*) FROM ioffice.audit_verify()"), '0', '(i) the audit trail verifies');
	issue_and_check('(i)', $doc1);
}

# --- (ii) a CMS over the /ByteRange ----------------------------------------------------
{
	my ($doc, $sig) = pending_signature('CMS');
	my $r = request($sig);
	my $cms = openssl_cms(range_bytes($r), 'person_rsa', 'cms2');
	is(as_actor($node, 'postgres', 'dai', submit_sql($sig, $cms)), 'done', '(ii) the CMS is accepted');
	issue_and_check('(ii)', $doc);
}

# --- (iii) the signed PDF ----------------------------------------------------------------
{
	my ($doc, $sig) = pending_signature('PDF');
	my $r = request($sig);
	my $pdf = signed_pdf($r, openssl_cms(range_bytes($r), 'person_rsa', 'pdf3'));
	write_bytes("$dir/tool-signed.pdf", $pdf);
	my ($out) = run_command([ 'pdfsig', "$dir/tool-signed.pdf" ]);
	like($out, qr/Signature is Valid/, '(iii) pdfsig accepts what the tool made');
	is(as_actor($node, 'postgres', 'dai', submit_sql($sig, $pdf)), 'done', '(iii) the signed PDF is accepted');
	issue_and_check('(iii)', $doc);
}

# --- (i) with ECDSA: the DER ECDSA-Sig-Value over the digest ------------------------------
{
	my ($doc, $sig) = pending_signature('ECDSA', 'regress_kha');
	my $r = request($sig, undef, 'regress_kha');
	is($r->{algorithm}, 'ecdsa-with-SHA256', 'ECDSA: the algorithm');
	write_bytes("$dir/digest-ec.bin", pack('H*', $r->{digest}));
	system_or_bail('openssl', 'pkeyutl', '-sign', '-inkey', "$pki/person_ec.key", '-pkeyopt', 'digest:sha256',
		'-in', "$dir/digest-ec.bin", '-out', "$dir/value-ec.bin");
	is(as_actor($node, 'postgres', 'regress_kha', submit_sql($sig, slurp_file("$dir/value-ec.bin"))), 'done',
		'ECDSA: the bare DER value is accepted');
	my $file = current_file($node, $doc);
	is(as_actor($node, 'postgres', 'regress_kha',
		"SELECT string_agg(concat_ws(':', kind, valid, coalesce(reason, '-')), ',') FROM ioffice.verify($file)"),
		'personal:t:-', 'ECDSA: verify() accepts it');
	my $path = bytea_to_file($node, 'postgres', 'regress_kha', "(SELECT content FROM ioffice.file WHERE id = $file)", "ec-signed.pdf");
	my ($out) = run_command([ 'pdfsig', $path ]);
	like($out, qr/Signature is Valid/, 'ECDSA: pdfsig accepts it');
}

# --- an expired request ---------------------------------------------------------------------
{
	my ($doc, $sig) = pending_signature('hết hạn');
	my $r = request($sig, "SET LOCAL ioffice.signing_request_ttl = 1;\n");
	write_bytes("$dir/digest4.bin", pack('H*', $r->{digest}));
	system_or_bail('openssl', 'pkeyutl', '-sign', '-inkey', "$pki/person_rsa.key", '-pkeyopt', 'digest:sha256',
		'-in', "$dir/digest4.bin", '-out', "$dir/value4.bin");
	sleep 2;
	refused('an expired request', 'dai', submit_sql($sig, slurp_file("$dir/value4.bin")), '55000');
	# a new request, answered in time
	$r = request($sig);
	write_bytes("$dir/digest5.bin", pack('H*', $r->{digest}));
	system_or_bail('openssl', 'pkeyutl', '-sign', '-inkey', "$pki/person_rsa.key", '-pkeyopt', 'digest:sha256',
		'-in', "$dir/digest5.bin", '-out', "$dir/value5.bin");
	refused('the answer to the old request', 'dai', submit_sql($sig, slurp_file("$dir/value4.bin")), '22023');
	is(as_actor($node, 'postgres', 'dai', submit_sql($sig, slurp_file("$dir/value5.bin"))), 'done',
		'a new request after the expired one is answered');
}

$node->stop;
done_testing();
