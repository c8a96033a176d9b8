# edXML packages (QCVN 102:2016) between two agencies that live in two
# databases: A builds the package of an issued document (edxml_build), the
# helper signs it with the seal's key as the worker will (helpers/ioffice_edxml
# sign), `xmlsec1 --verify` and our helper accept the signature, and B files
# it (edxml_receive) into its incoming queue once, however often it arrives.
# The public sample's structure parses; tampered packages, packages addressed
# to nobody here, hostile ones (entity expansion, external entities, deep
# nesting, huge base64) are refused, with no memory blow-up, the server up.
use strict;
use warnings;
use File::Basename qw(dirname);
use File::Copy qw(copy);
use MIME::Base64 qw(encode_base64);
use lib dirname(__FILE__);
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use IofficeTest;

my $pki = PostgreSQL::Test::Utils::tempdir;
my $dir = PostgreSQL::Test::Utils::tempdir;
system_or_bail('bash', dirname(__FILE__) . '/../pki/make_pki', $pki);
my $data = dirname(__FILE__) . '/../data/edxml';

# A's worker seals its issued PDFs inside (the organisation's key file):
# B files a document only when a PDF in it carries a valid signature
# (Decree 30 art. 21.2)
my $keystore = PostgreSQL::Test::Utils::tempdir;
copy("$pki/seal.key", "$keystore/seal.key") or die "copy seal.key: $!";
chmod 0600, "$keystore/seal.key";
my $node = PostgreSQL::Test::Cluster->new('edxml');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'ioffice'
ioffice.pdf_helper_memory = 256
ioffice.pdf_helper_timeout = 20
ioffice.worker_databases = 'a'
ioffice.worker_naptime = 1
ioffice.keystore = '$keystore'
});
$node->start;
my $helper = $node->config_data('--pkglibdir') . '/ioffice_edxml';
ok(-x $helper, 'the edXML helper is installed beside the library');

# A: UBND huyện Sốp Cộp (000.00.32.H41) issues to Văn phòng Chính phủ
# (000.00.00.G22), which is not in its database
$node->safe_psql('postgres', 'CREATE DATABASE a');
$node->safe_psql('postgres', 'CREATE DATABASE b');
$node->safe_psql('a', qq{
CREATE EXTENSION ioffice;
SELECT ioffice.add_agency('UBND huyện Sốp Cộp', 'UBND', '000.00.32.H41');
SELECT ioffice.add_department(1, 'Văn phòng HĐND-UBND', 'VP');
SELECT ioffice.add_person('regress_luan', 'Tòng Văn Luân', 'Chuyên viên', 2, '{specialist}');
SELECT ioffice.add_person('dai', 'Trần Văn Đại', 'Chánh Văn phòng', 2, '{leader}');
SELECT ioffice.add_person('regress_thuy', 'Tòng Văn Thủy', 'Văn thư', 1, '{clerk}');
SELECT ioffice.add_trust_anchor(@{[ sql_literal(slurp_file("$pki/root.pem")) ]});
SELECT ioffice.register_certificate('organisation', '000.00.32.H41',
    @{[ sql_literal(slurp_file("$pki/seal.pem") . slurp_file("$pki/intermediate.pem")) ]}, 'seal.key');
});
my $subject = 'V/v báo cáo liên thông văn bản điện tử (thử nghiệm)';
my $doc = as_actor($node, 'a', 'regress_luan',
	"SELECT ioffice.create_outgoing('CV', '$subject', "
	  . q{'{"signer": "dai", "urgency": "very_urgent", "recipients": ["000.00.00.G22"]}')});
as_actor($node, 'a', 'regress_luan',
	"SELECT ioffice.attach($doc, 'bao_cao.pdf', " . pdf_literal('Bao cao Sop Cop') . ")");
as_actor($node, 'a', 'regress_luan', "SELECT ioffice.act($doc, 'submit', 'dai')");
as_actor($node, 'a', 'dai', "SELECT ioffice.act($doc, 'quick_approve')");
as_actor($node, 'a', 'regress_thuy', "SELECT ioffice.act($doc, 'issue')");
ok($node->poll_query_until('a',
		"SELECT status = 'done' FROM ioffice.signature WHERE document_id = $doc AND kind = 'organisation'"),
	'A\'s worker sealed the issued PDF');
# the PDF A sends: its current file, sealed inside
my $sent_pdf_sha = $node->safe_psql('a',
	"SELECT encode(sha256(content), 'hex') || ' ' || octet_length(content) FROM ioffice.file "
	  . "WHERE document_id = $doc AND superseded_at IS NULL AND removed_at IS NULL");
my ($sent_sha, $sent_size) = split / /, $sent_pdf_sha;
my $package = as_actor($node, 'a', 'regress_thuy',
	"SELECT ioffice.edxml_build($doc, '000.00.00.G22')");
like($package, qr/<edXML xmlns="http:\/\/www.mic.gov.vn\/TBT\/QCVN_102_2016">/, 'A built the package');
like($package, qr/\Q$subject\E/, 'the Vietnamese subject is intact in the package');

# B: Văn phòng Chính phủ, trusting the test PKI
$node->safe_psql('b', qq{
CREATE EXTENSION ioffice;
SELECT ioffice.add_agency('Văn phòng Chính phủ', 'VPCP', '000.00.00.G22');
SELECT ioffice.add_person('regress_vt', 'Nguyễn Thị Văn Thư', 'Văn thư', 1, '{clerk}');
SELECT ioffice.add_agency('Bộ Nội vụ', 'BNV', '000.00.00.G09');
SELECT ioffice.add_person('regress_bnv', 'Lê Văn Bộ', 'Văn thư', 2, '{clerk}');
SELECT ioffice.add_trust_anchor(@{[ sql_literal(slurp_file("$pki/root.pem")) ]});
});

# the helper run as the worker will: the seal's key file, its certificate
sub run_helper
{
	my ($args, $pem, $input) = @_;
	my ($out, $err) = ('', '');
	my $in = length($pem) . "\n" . $pem . $input;
	IPC::Run::run([ $helper, @$args ], '<', \$in, '>', \$out, '2>', \$err);
	return ($? >> 8, $out, $err);
}

sub write_file
{
	my ($name, $content) = @_;
	my $path = "$dir/$name";
	open(my $fh, '>:raw', $path) or die "$path: $!";
	print $fh $content;
	close($fh);
	return $path;
}

# the seal's certificate and its chain, as the certificate table holds them;
# B trusts the root only
my $seal = slurp_file("$pki/seal.pem") . slurp_file("$pki/intermediate.pem");
my $trust = slurp_file("$pki/root.pem");
my ($rc, $signed) = run_helper([ 'sign', "$pki/seal.key" ], $seal, $package);
is($rc, 0, 'the helper signs the package with the seal key');
like($signed, qr/<ds:Signature|<Signature xmlns="http:\/\/www.w3.org\/2000\/09\/xmldsig#"/,
	'an XML-DSig signature');
like($signed, qr/rsa-sha256/, 'RSA-SHA256');
like($signed, qr/X509Certificate/, 'the seal certificate in KeyInfo/X509Data');
my $signed_path = write_file('signed.edxml', $signed);

# xmlsec1, an independent verifier, accepts it
my ($xout, $xerr) = ('', '');
my $xok = IPC::Run::run(
	[ 'xmlsec1', '--verify', '--trusted-pem', "$pki/root.pem", $signed_path ],
	'>', \$xout, '2>', \$xerr);
ok($xok, 'xmlsec1 --verify accepts the signed package') or diag($xerr);

# and so does our helper, with the fields the standard names
my $out;
($rc, $out) = run_helper([ 'read', 10_000_000 ], $trust, $signed);
is($rc, 0, 'the helper reads the signed package');
my $f = JSON::PP->new->decode($out);
is($f->{signature}{status}, 'valid', 'the helper finds the signature valid');
like($f->{signature}{subject}, qr/UBND huyện Sốp Cộp/, 'signed by the seal of A');
is($f->{subject}, $subject, 'Subject round-trips, Vietnamese intact');
is($f->{priority}, '2', 'Priority 2 (very urgent)');
is($f->{from}{organ_id}, '000.00.32.H41', 'From/OrganId');
is($f->{to}[0]{organ_id}, '000.00.00.G22', 'To/OrganId');
is(scalar @{ $f->{attachments} }, 1, 'one attachment');
is($f->{attachments}[0]{size}, $sent_size, 'the attachment decodes to its bytes');

# the same helper without our trust anchors: not trusted
($rc, $out) = run_helper([ 'read', 10_000_000 ], '', $signed);
like($out, qr/"status":"invalid","reason":"[^"]*not trusted[^"]*unable to get local issuer certificate/,
	'without the trust anchors the signature is not valid, and the reason says why');

# nor through OpenSSL's default locations (the system's public CAs; here the
# test root named by the variables OpenSSL reads them from): only the
# database's trust anchors count
{
	my $certs = "$dir/default_certs";
	mkdir($certs) or die "$certs: $!";
	write_file('default_certs/root.pem', slurp_file("$pki/root.pem"));
	system_or_bail('openssl', 'rehash', $certs);
	for my $where ([ 'SSL_CERT_FILE', "$pki/root.pem" ], [ 'SSL_CERT_DIR', $certs ])
	{
		local $ENV{ $where->[0] } = $where->[1];
		($rc, $out) = run_helper([ 'read', 10_000_000 ], '', $signed);
		like($out, qr/"status":"invalid"/,
			"a root in OpenSSL's default locations ($where->[0]) does not make the package valid");
	}
}

# tampered: an attachment byte, a header field
(my $bad_attachment = $signed) =~ s/(<ContentTransferEncoded>)(.)/$1 . ($2 eq 'A' ? 'B' : 'A')/e;
(my $bad_header = $signed) =~ s/\Q$subject\E/V\/v nội dung đã bị sửa/;
for my $case ([ 'attachment', $bad_attachment ], [ 'header', $bad_header ])
{
	($rc, $out) = run_helper([ 'read', 10_000_000 ], $trust, $case->[1]);
	like($out, qr/"status":"invalid"/, "a tampered $case->[0]: the signature is invalid");
	my ($ret, $stdout, $stderr) = try_as_actor($node, 'b', 'regress_vt',
		'SELECT ioffice.edxml_receive(' . sql_literal($case->[1]) . '::xml)');
	like($stderr, qr/signature is invalid/, "a tampered $case->[0] is refused by edxml_receive");
}
is($node->safe_psql('b', 'SELECT count(*) FROM ioffice.document'), '0', 'nothing was filed');

# a valid signature, but B has no seal registered for the sender: refused
($rc, $out) = run_helper([ 'read', 10_000_000 ], $trust, $signed);
my $seal_fp = $node->safe_psql('b',
	'SELECT encode((ioffice._x509_info(' . sql_literal($seal) . ')).fingerprint, \'hex\')');
like($seal_fp, qr/^[0-9a-f]{64}$/, "the seal's fingerprint as the certificate tables hold it");
is(JSON::PP->new->decode($out)->{signature}{fingerprint}, $seal_fp,
	"the helper reports the signer's fingerprint, the same");
my ($ret, $stdout, $stderr) = try_as_actor($node, 'b', 'regress_vt',
	'SELECT ioffice.edxml_receive(' . sql_literal($signed) . '::xml)');
like($stderr, qr/signature is invalid.*is not a seal registered for agency 000\.00\.32\.H41/s,
	'a package whose signer is no seal registered for its From/OrganId is refused');
$node->safe_psql('b', 'SELECT ioffice.add_exchange_seal(\'000.00.32.H41\', ' . sql_literal($seal) . ')');
# the seal of 000.00.32.H41 signing a package that says it is From another
# agency (000.00.15.H53): refused, naming the agency
(my $other_from = $package) =~ s/<From><OrganId>000\.00\.32\.H41</<From><OrganId>000.00.15.H53</;
isnt($other_from, $package, 'a package From 000.00.15.H53');
($rc, my $signed_other) = run_helper([ 'sign', "$pki/seal.key" ], $seal, $other_from);
($ret, $stdout, $stderr) = try_as_actor($node, 'b', 'regress_vt',
	'SELECT ioffice.edxml_receive(' . sql_literal($signed_other) . '::xml)');
like($stderr, qr/signature is invalid.*CN=UBND huyện Sốp Cộp.*is not a seal registered for agency 000\.00\.15\.H53/s,
	"signed by another agency's seal: refused, naming the signer and the agency");
is($node->safe_psql('b', 'SELECT count(*) FROM ioffice.document'), '0', 'nothing was filed');

# the wrong clerk, then the right one; twice gives one document, the same id
($ret, $stdout, $stderr) = try_as_actor($node, 'b', 'regress_bnv',
	'SELECT ioffice.edxml_receive(' . sql_literal($signed) . '::xml)');
like($stderr, qr/only a clerk of the agency it is addressed to/, 'a clerk of another agency may not receive it');
my $id1 = as_actor($node, 'b', 'regress_vt', 'SELECT ioffice.edxml_receive(' . sql_literal($signed) . '::xml)');
my $id2 = as_actor($node, 'b', 'regress_vt', 'SELECT ioffice.edxml_receive(' . sql_literal($signed) . '::xml)');
ok($id1 =~ /^\d+$/, 'B received the package');
is($id2, $id1, 'the same package twice gives the same id');
is($node->safe_psql('b', q{SELECT count(*) FROM ioffice.document}), '1', 'filed once');
is($node->safe_psql('b', qq{
SELECT state || '|' || direction || '|' || abstract || '|' || urgency || '|' || sender_name
       || '|' || sender_symbol || '|' || (drafter_id IS NULL)
FROM ioffice.document WHERE id = $id1}),
	"received|incoming|$subject|very_urgent|UBND huyện Sốp Cộp|"
	  . $node->safe_psql('a', "SELECT symbol FROM ioffice.document WHERE id = $doc")
	  . '|true',
	'in B\'s incoming queue: received, with sender, number and symbol, urgency');
is($node->safe_psql('b', qq{SELECT sender_date FROM ioffice.document WHERE id = $id1}),
	$node->safe_psql('a', qq{SELECT issued_on FROM ioffice.document WHERE id = $doc}), 'with its date');
is($node->safe_psql('b', qq{SELECT encode(sha256(f.content), 'hex') = '$sent_sha' AND f.kind = 'pdf'
                            FROM ioffice.file f WHERE f.document_id = $id1}),
	't', 'with its file, byte for byte');
is(as_actor($node, 'b', 'regress_vt',
		"SELECT string_agg(party || ' ' || direction || ' ' || code || ' ' || (sent_at IS NULL), ',') FROM ioffice.exchange_status WHERE document = $id1"),
	'000.00.32.H41 sent 01 true', 'the status 01 (arrived) waits to be sent back, once');
is(as_actor($node, 'b', 'regress_vt', "SELECT count(*) FROM ioffice.incoming_list('unprocessed') WHERE document = $id1"),
	1, 'the clerk sees it among the unprocessed documents');
is(as_actor($node, 'b', 'regress_vt', "SELECT ioffice.act($id1, 'register')"), 'registered',
	'and registers it (vào sổ): it gets an arrival number');

# B checks the document's own signatures too (Decree 30 art. 21.2): the
# PDF B filed verifies there, against B's trust anchors, and the seal is
# told an organisation's (B registered it for A: add_exchange_seal)
is(as_actor($node, 'b', 'regress_vt',
		"SELECT count(*) || ' ' || bool_and(v.valid) || ' ' || string_agg(coalesce(v.kind, 'unknown'), ',') FROM ioffice.file f, ioffice.verify(f.id) v WHERE f.document_id = $id1"),
	'1 true organisation', 'verify() on B: the PDF B filed carries A\'s seal, valid, an organisation\'s');
# a package validly sealed by A whose PDF no one signed: refused
my $plain_dir = PostgreSQL::Test::Utils::tempdir;
system_or_bail('perl', dirname(__FILE__) . '/../pdf/make_pdf.pl', 1, "$plain_dir/plain.pdf", 'Bao cao chua ky');
my $plain_b64 = encode_base64(slurp_file("$plain_dir/plain.pdf"), '');
(my $pkg_plain = $package) =~ s/(ContentTransferEncoded[^>]*>)[^<]*</$1$plain_b64</;
$pkg_plain =~ s/(<DocumentId>[^<]*)</$1-5</g;
$pkg_plain =~ s/<CodeNumber>/<CodeNumber>5/;
($rc, my $signed_plain) = run_helper([ 'sign', "$pki/seal.key" ], $seal, $pkg_plain);
my ($plain_ret, $plain_out, $plain_err) = $node->psql('b',
	"SET ioffice.actor = 'regress_vt'; SELECT ioffice.edxml_receive(" . sql_literal($signed_plain) . '::xml)',
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($plain_err, qr/42501.*no attachment is a PDF carrying a valid digital signature/s,
	'a sealed package whose PDF is signed by no one is refused (42501)');
# a package validly sealed by A whose signed PDF was changed after A's
# worker signed it (one letter of its first revision): refused, naming it
my $changed = $node->safe_psql('a',
	"SELECT encode(content, 'base64') FROM ioffice.file WHERE document_id = $doc "
	  . "AND superseded_at IS NULL AND removed_at IS NULL");
$changed =~ s/\s+//g;
my $changed_bytes = MIME::Base64::decode_base64($changed);
ok($changed_bytes =~ s/Bao cao Sop Cop/Bao cao Sop Cap/, 'one letter of the signed PDF changed');
my $changed_b64 = encode_base64($changed_bytes, '');
(my $pkg_changed = $package) =~ s/(ContentTransferEncoded[^>]*>)[^<]*</$1$changed_b64</;
$pkg_changed =~ s/(<DocumentId>[^<]*)</$1-6</g;
$pkg_changed =~ s/<CodeNumber>/<CodeNumber>6/;
($rc, my $signed_changed) = run_helper([ 'sign', "$pki/seal.key" ], $seal, $pkg_changed);
my ($changed_ret, $changed_out, $changed_err) = $node->psql('b',
	"SET ioffice.actor = 'regress_vt'; SELECT ioffice.edxml_receive(" . sql_literal($signed_changed) . '::xml)',
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($changed_err, qr/42501.*a signature in bao_cao\.pdf is not valid/s,
	'a sealed package whose PDF was changed after signing is refused (42501), naming the file');
is($node->safe_psql('b', q{SELECT count(*) FROM ioffice.edxml_received WHERE edxml_document_id ~ '-[56]$'}),
	'0', 'neither was filed');

# concurrently: two sessions, the same package, one document
my $pkg2 = $package;
(my $same_document = $pkg2) =~ s/(<DocumentId>[^<]*)</$1-3</g;    # (refused below)
$pkg2 =~ s/(<DocumentId>[^<]*)</$1-2</g;    # a second package: its own DocumentId
$pkg2 =~ s/<CodeNumber>/<CodeNumber>9/;         # and its own number
($rc, my $signed2) = run_helper([ 'sign', "$pki/seal.key" ], $seal, $pkg2);
my @sessions = map { $node->background_psql('b') } 1 .. 2;
$_->query_safe("BEGIN; SET LOCAL ioffice.actor = 'regress_vt'") for @sessions;
my $first = $sessions[0]->query_safe('SELECT ioffice.edxml_receive(' . sql_literal($signed2) . '::xml)');
$sessions[1]->query_until(qr/started/, "\\echo started\nSELECT ioffice.edxml_receive(" . sql_literal($signed2) . "::xml);\n");
$sessions[0]->query_safe('COMMIT');
$sessions[1]->query_safe('COMMIT');
$_->quit for @sessions;
is($node->safe_psql('b', q{SELECT count(*) FROM ioffice.edxml_received WHERE edxml_document_id LIKE '%-2'}),
	'1', 'two concurrent receptions of one package file it once');
is($node->safe_psql('b', q{SELECT count(*) FROM ioffice.document}), '2', 'two documents in all');

# the same document (sender, number and symbol) under another DocumentId
($rc, my $signed_same) = run_helper([ 'sign', "$pki/seal.key" ], $seal, $same_document);
($ret, $stdout, $stderr) = try_as_actor($node, 'b', 'regress_vt',
	'SELECT ioffice.edxml_receive(' . sql_literal($signed_same) . '::xml)', extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($stderr, qr/23505.*was received already/s, 'the same document under another DocumentId is a duplicate (23505)');

# addressed to nobody here
(my $elsewhere = $package) =~ s/<To><OrganId>000.00.00.G22</<To><OrganId>000.00.00.G99</;
($rc, my $signed3) = run_helper([ 'sign', "$pki/seal.key" ], $seal, $elsewhere);
($ret, $stdout, $stderr) = try_as_actor($node, 'b', 'regress_vt',
	'SELECT ioffice.edxml_receive(' . sql_literal($signed3) . '::xml)');
like($stderr, qr/22023.*addressed to no agency of this database|addressed to no agency of this database/,
	'a package addressed to no agency here is refused');

# the public sample's structure parses; its "Signature" is not an XML-DSig one
my $sample = slurp_file("$data/edoc_sample.edxml");
($rc, $out) = run_helper([ 'read', 10_000_000 ], $trust, $sample);
is($rc, 0, 'the sample package parses');
$f = JSON::PP->new->decode($out);
is($f->{document_id}, '000.00.32.H41,2026/01/15,12/UBND-VP', 'its DocumentId');
is($f->{signer_competence}, 'TL. CHỦ TỊCH', 'its SignerInfo/Competence');
is($f->{bussiness_doc_type}, '0', 'its Bussiness');
is($f->{signature}{status}, 'missing', 'it carries no XML-DSig signature');
($ret, $stdout, $stderr) = try_as_actor($node, 'b', 'regress_vt',
	'SELECT ioffice.edxml_receive(' . sql_literal($sample) . '::xml)', extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($stderr, qr/42501.*signature is missing/s, 'an unsigned package is refused (42501)');

# a field beyond its limit is refused with the field named
(my $long = $sample) =~ s/<edXML:CodeNotation>UBND-VP</<edXML:CodeNotation>@{[ 'X' x 31 ]}</;
($rc, $out) = run_helper([ 'read', 10_000_000 ], $trust, $long);
is($rc, 2, 'a CodeNotation of 31 characters is refused');
like($out, qr/"field":"Code\/CodeNotation"/, 'naming the field');
($ret, $stdout, $stderr) = try_as_actor($node, 'b', 'regress_vt',
	'SELECT ioffice.edxml_receive(' . sql_literal($long) . '::xml)', extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($stderr, qr/22023.*CodeNotation has 31 characters.*Field Code\/CodeNotation/s, 'edxml_receive names it too');
(my $nosubject = $sample) =~ s/<edXML:Subject>[^<]*<\/edXML:Subject>//;
($rc, $out) = run_helper([ 'read', 10_000_000 ], $trust, $nosubject);
like($out, qr/"error":"Subject is missing","field":"Subject"/, 'a missing Subject is named');
(my $badb64 = $sample) =~ s/(ContentTransferEncoded[^>]*>)[^<]*</$1!!!!</;
($rc, $out) = run_helper([ 'read', 10_000_000 ], $trust, $badb64);
like($out, qr/"field":"Attachment\/ContentTransferEncoded"/, 'an attachment that is not base64 is refused');
(my $nomanifest = $sample) =~ s/<edXML:Reference>.*?<\/edXML:Reference>//s;
($rc, $out) = run_helper([ 'read', 10_000_000 ], $trust, $nomanifest);
like($out, qr/not in the manifest/, 'an attachment missing from the manifest is refused');

# hostile packages: refused, no memory blow-up, the server stays up
my $started = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');
my $laughs = qq{<?xml version="1.0"?>\n<!DOCTYPE edXML [\n<!ENTITY lol "lol">\n}
  . join('', map { my $p = $_ - 1; my $prev = $p ? "lol$p" : 'lol'; qq{<!ENTITY lol$_ "} . ("&$prev;" x 10) . qq{">\n} } 1 .. 9)
  . qq{]>\n<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016"><edXMLEnvelope><edXMLHeader><MessageHeader><Subject>&lol9;</Subject></MessageHeader></edXMLHeader></edXMLEnvelope></edXML>\n};
my $xxe = qq{<?xml version="1.0"?>\n<!DOCTYPE edXML [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n}
  . qq{<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016"><edXMLEnvelope><edXMLHeader><MessageHeader><Subject>&x;</Subject></MessageHeader></edXMLHeader></edXMLEnvelope></edXML>\n};
my $deep = qq{<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">} . ('<a>' x 100_000) . ('</a>' x 100_000) . '</edXML>';
for my $case ([ 'billion laughs', $laughs ], [ 'an external entity', $xxe ], [ '100,000-deep nesting', $deep ])
{
	($rc, $out) = run_helper([ 'read', 10_000_000 ], $trust, $case->[1]);
	is($rc, 2, "the helper refuses $case->[0]");
	($ret, $stdout, $stderr) = try_as_actor($node, 'b', 'regress_vt',
		'SELECT ioffice.edxml_receive(' . sql_literal($case->[1]) . '::xml)');
	isnt($ret, 0, "edxml_receive refuses $case->[0]");
	# the text path (the worker's: the backend does not parse): the helper refuses
	($ret, $stdout, $stderr) = try_as_actor($node, 'b', 'regress_vt',
		'SELECT ioffice._edxml_receive(' . sql_literal($case->[1]) . ')');
	like($stderr, qr/edXML package refused: the package (has a document type declaration|is not well-formed)/,
		"_edxml_receive (text) has the helper refuse $case->[0]");
	unlike($stderr . $stdout, qr/root:x:0:0/, "nothing of /etc/passwd comes back ($case->[0])");
}
# a package over ioffice.edxml_max_size is refused before it is parsed
my $big_b64 = 'QUFB' x (600 * 1024);    # 2.4 MB of base64
(my $big = $sample) =~ s/(ContentTransferEncoded[^>]*>)[^<]*</$1$big_b64</;
($ret, $stdout, $stderr) = try_as_actor($node, 'b', 'regress_vt',
	"SET ioffice.edxml_max_size = '1MB'; SELECT ioffice.edxml_receive(" . sql_literal($big) . '::xml)',
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($stderr, qr/22023.*larger than ioffice.edxml_max_size/s, 'a package over ioffice.edxml_max_size is refused');
# 200 MB of base64 streamed at the helper under a 256 MB address space: it
# stops reading at its limit
my $feeder = "$dir/feed.pl";
write_file('feed.pl', q{
binmode STDOUT; print "0\n<edXML xmlns=\"http://www.mic.gov.vn/TBT/QCVN_102_2016\"><AttachmentEncoded><Attachment><ContentTransferEncoded>";
my $chunk = 'QUFB' x 262144; print $chunk for 1 .. 200; print "</ContentTransferEncoded></Attachment></AttachmentEncoded></edXML>";
});
my ($bout, $berr) = ('', '');
IPC::Run::run([ 'bash', '-c', "ulimit -v 262144; perl $feeder 2>/dev/null | $helper read 67108864" ],
	'>', \$bout, '2>', \$berr);
like($bout, qr/"error":"the package is larger than 67108864 bytes"/, 'a 200 MB package is refused at the size limit, within 256 MB');

is($node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()'), $started, 'the server never restarted');
is($node->safe_psql('b', q{SELECT count(*) FROM ioffice.document}), '2', 'and nothing more was filed');

# revocation: B registers the revocation lists (those verify() checks PDF
# signatures against) and, as a seal of 000.00.32.H41, a certificate its
# CA has revoked; a package signed with it is refused ("revoked"), the
# same package sealed with the good seal is filed
my $revoked = slurp_file("$pki/revoked.pem") . slurp_file("$pki/intermediate.pem");
$node->safe_psql('b', qq{
SELECT ioffice.add_exchange_seal('000.00.32.H41', @{[ sql_literal($revoked) ]});
SELECT ioffice.add_crl(@{[ sql_literal(slurp_file("$pki/intermediate.crl.pem")) ]});
SELECT ioffice.add_crl(@{[ sql_literal(slurp_file("$pki/root.crl.pem")) ]});
});
(my $pkg4 = $package) =~ s/(<DocumentId>[^<]*)</$1-4</g;
$pkg4 =~ s/<CodeNumber>/<CodeNumber>4/;
($rc, my $signed_revoked) = run_helper([ 'sign', "$pki/revoked.key" ], $revoked, $pkg4);
is($rc, 0, 'a package signed with the revoked certificate');
($rc, $out) = run_helper([ 'read', 10_000_000 ], $trust, $signed_revoked);
like($out, qr/"status":"valid"/, 'without the revocation lists the helper finds it valid');
my $trust_crl = $trust . slurp_file("$pki/intermediate.crl.pem") . slurp_file("$pki/root.crl.pem");
($rc, $out) = run_helper([ 'read', 10_000_000 ], $trust_crl, $signed_revoked);
like($out, qr/"status":"invalid","reason":"revoked: /, 'with them, it is revoked');
($ret, $stdout, $stderr) = try_as_actor($node, 'b', 'regress_vt',
	'SELECT ioffice.edxml_receive(' . sql_literal($signed_revoked) . '::xml)');
like($stderr, qr/signature is invalid.*revoked: the signer's certificate is on its issuer's revocation list/s,
	'a package signed by a revoked certificate is refused by edxml_receive');
($rc, my $signed4) = run_helper([ 'sign', "$pki/seal.key" ], $seal, $pkg4);
my $id4 = as_actor($node, 'b', 'regress_vt', 'SELECT ioffice.edxml_receive(' . sql_literal($signed4) . '::xml)');
ok($id4 =~ /^\d+$/, 'the same package sealed with a certificate not revoked is filed');
is($node->safe_psql('b', q{SELECT count(*) FROM ioffice.document}), '3', 'once');

# revocation unknown through the axis: B's list of the seal's issuer is
# dropped (the root's stays, so lists are in use); a package from the axis
# sealed by it is neither filed nor refused with 02 (B's missing list is not
# the sender's fault): an error, so the worker leaves it on the axis
# unacknowledged; once the list is registered again it is filed
$node->safe_psql('b', q{
INSERT INTO ioffice.exchange_axis (agency_id, transport, url, system_id, secret, enabled)
SELECT id, 'vxp', 'http://127.0.0.1:9/', '000.00.00.G22', 'secret-of-b-0123456789', false
FROM ioffice.unit WHERE code = '000.00.00.G22';
DELETE FROM ioffice.crl WHERE issuer = (SELECT issuer FROM ioffice.crl ORDER BY id LIMIT 1);
});
(my $pkg5 = $package) =~ s/(<DocumentId>[^<]*)</$1-5</g;
$pkg5 =~ s/<CodeNumber>/<CodeNumber>5/;
($rc, my $signed5) = run_helper([ 'sign', "$pki/seal.key" ], $seal, $pkg5);
my $axis_file = 'SELECT ioffice._edxml_axis_file(' . sql_literal($signed5)
  . ', (SELECT id FROM ioffice.exchange_axis))';
($ret, $stdout, $stderr) = $node->psql('b', $axis_file, extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($stderr, qr/55000.*left on the axis.*revocation unknown: no revocation list registered for the issuer/s,
	'revocation unknown: the package is left on the axis (55000), not refused');
is($node->safe_psql('b', q{SELECT (SELECT count(*) FROM ioffice.edxml_refused)
  || ' ' || (SELECT count(*) FROM ioffice.edxml_outgoing WHERE code = '02')
  || ' ' || (SELECT count(*) FROM ioffice.document)}), '0 0 3', 'no refusal recorded, no 02 queued, nothing filed');
$node->safe_psql('b', 'SELECT ioffice.add_crl(' . sql_literal(slurp_file("$pki/intermediate.crl.pem")) . ')');
like($node->safe_psql('b', $axis_file), qr/"result": "filed"/, 'with the list registered again it is filed');

$node->stop;
done_testing();
