# Electronic copies (issue 12 item 4): the clerk's sao y of an issued PDF
# is a document of its own whose file is the original's signed PDF plus the
# organisation's signature, made by the worker without image, its /Reason
# the kind of copy, the copying agency and the copy's symbol.  pdfsig lists
# the leader's, the original seal and the copy's signatures all valid;
# verify() reports the three.
use strict;
use warnings;
use File::Basename qw(dirname);
use File::Copy qw(copy);
use Encode qw(decode encode);
use lib dirname(__FILE__);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use IofficeTest;

for my $tool (qw(pdfsig qpdf openssl))
{
	plan skip_all => "$tool is not installed" if system("command -v $tool >/dev/null 2>&1") != 0;
}

my $pki = PostgreSQL::Test::Utils::tempdir;
my $keystore = PostgreSQL::Test::Utils::tempdir;
my $dir = PostgreSQL::Test::Utils::tempdir;
my $make_pdf = dirname(__FILE__) . '/../pdf/make_pdf.pl';
system_or_bail('bash', dirname(__FILE__) . '/../pki/make_pki', $pki);
for my $k (qw(person_rsa seal))
{
	copy("$pki/$k.key", "$keystore/$k.key") or die "copy $k: $!";
	chmod 0600, "$keystore/$k.key";
}

my $node = PostgreSQL::Test::Cluster->new('copies');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'ioffice'
ioffice.worker_databases = 'postgres'
ioffice.keystore = '$keystore'
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
SELECT ioffice.add_trust_anchor(@{[ sql_literal(slurp_file("$pki/root.pem")) ]});
SELECT ioffice.register_certificate('personal', 'dai', @{[ sql_literal(slurp_file("$pki/person_rsa.pem") . $chain) ]}, 'person_rsa.key');
SELECT ioffice.register_certificate('organisation', '000.00.32.H41', @{[ sql_literal(slurp_file("$pki/seal.pem") . $chain) ]}, 'seal.key');
});

sub file_hex
{
	my ($path) = @_;
	open my $fh, '<:raw', $path or die "$path: $!";
	local $/;
	my $bytes = <$fh>;
	close $fh;
	return unpack('H*', $bytes);
}

sub write_bytes
{
	my ($path, $bytes) = @_;
	open my $fh, '>:raw', $path or die "$path: $!";
	print $fh $bytes;
	close $fh;
	return $path;
}

sub wait_signatures
{
	my ($doc) = @_;
	return $node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM ioffice.signature WHERE document_id = $doc AND status = 'pending'");
}

sub current_file
{
	my ($doc) = @_;
	return $node->safe_psql('postgres',
		"SELECT id FROM ioffice.file WHERE document_id = $doc AND superseded_at IS NULL AND removed_at IS NULL");
}

# the whole flow: attach PATH, the leader signs and approves, the clerk
# issues (the seal); returns (doc, issued file id, its path on disk)
sub issue_pdf
{
	my ($label, $path) = @_;
	my $doc = as_actor($node, 'postgres', 'regress_luan', "SELECT ioffice.create_outgoing('CV', 'Công văn $label')");
	as_actor($node, 'postgres', 'regress_luan',
		"SELECT ioffice.attach($doc, 'cong_van.pdf', decode('" . file_hex($path) . "', 'hex'))");
	as_actor($node, 'postgres', 'regress_luan', "SELECT ioffice.act($doc, 'submit', 'dai', NULL, '{\"request_signature\": true}')");
	as_actor($node, 'postgres', 'dai', "SELECT ioffice.act($doc, 'sign', NULL, NULL, '{\"mode\": \"auto\"}')");
	ok(wait_signatures($doc), "$label: the leader's signature is made");
	is($node->safe_psql('postgres', "SELECT status || ':' || coalesce(reason, '-') || ':' || (signed_file_id IS NOT NULL) FROM ioffice.signature WHERE document_id = $doc"),
		'done:-:true', "$label: the leader's signature made a new version of the file");
	is(as_actor($node, 'postgres', 'dai', "SELECT ioffice.act($doc, 'approve', 'regress_thuy')"), 'awaiting_issue',
		"$label: approve sees the leader's signature in the signed PDF");
	is(as_actor($node, 'postgres', 'regress_thuy', "SELECT ioffice.act($doc, 'issue')"), 'issued',
		"$label: issue sees the approving leader's signature (approver_signature)");
	ok(wait_signatures($doc), "$label: the organisation's signature is made");
	is($node->safe_psql('postgres', "SELECT string_agg(kind || ':' || status || ':' || coalesce(reason, '-'), ',' ORDER BY id) FROM ioffice.signature WHERE document_id = $doc"),
		'personal:done:-,organisation:done:-', "$label: both signatures are done");
	my $file = current_file($doc);
	is($node->safe_psql('postgres', "SELECT count(*) FROM ioffice.file WHERE document_id = $doc"), '3',
		"$label: the draft, the leader's signed version, the sealed version");
	my $out = bytea_to_file($node, 'postgres', 'dai', "(SELECT content FROM ioffice.file WHERE id = $file)", "$label-issued.pdf");
	return ($doc, $file, $out);
}


# the agency has a seal image: the original's seal shows it, the copy's must not
system_or_bail('python3', dirname(__FILE__) . '/../pdf/make_png.py', 'seal', "$dir/seal.png");
$node->safe_psql('postgres',
	"SELECT ioffice.set_seal_image(1, decode('" . file_hex("$dir/seal.png") . "', 'hex'), 35)");
system_or_bail('perl', $make_pdf, 2, "$dir/two.pdf", 'Cong van hai trang');
my ($doc, $file, $issued) = issue_pdf('original', "$dir/two.pdf");
my $images = () = slurp_file($issued) =~ /\/Subtype\s*\/Image/g;
ok($images > 0, "the original's seal shows the seal image");

my $copy = as_actor($node, 'postgres', 'regress_thuy', "SELECT ioffice.copy_document($doc, 'SY')");
ok(wait_signatures($copy), "the copy's organisation signature is made");
is($node->safe_psql('postgres', "SELECT string_agg(kind || ':' || status || ':' || coalesce(reason, '-'), ',') FROM ioffice.signature WHERE document_id = $copy"),
	'organisation:done:-', "the copy's signature is done");
is($node->safe_psql('postgres', "SELECT symbol || ':' || copy_kind || ':' || state FROM ioffice.document WHERE id = $copy"),
	'01/SY-UBND:SY:issued', 'the copy is issued with its own number');
my $cfile = current_file($copy);
my $out = bytea_to_file($node, 'postgres', 'dai', "(SELECT content FROM ioffice.file WHERE id = $cfile)", "copy.pdf");
ok(substr(slurp_file($out), 0, length slurp_file($issued)) eq slurp_file($issued),
	"the copy's PDF begins with the exact bytes of the issued original");
{
	my ($sig, $err) = run_command([ 'pdfsig', $out ]);
	my @valid = $sig =~ /Signature Validation: Signature is Valid/g;
	is(scalar @valid, 3, "pdfsig lists three valid signatures on the copy") or diag($sig . $err);
	like($sig, qr/Signature #3:.*?\n\s*- Total document signed/s, "pdfsig: the copy's signature covers the whole document");
	($sig, $err) = run_command([ 'qpdf', '--check', $out ]);
	like($sig, qr/No syntax or stream encoding errors found/, 'qpdf --check finds the copy sound') or diag($sig . $err);
}
is(as_actor($node, 'postgres', 'regress_thuy',
	"SELECT string_agg(concat_ws(':', kind, revision, valid), ',' ORDER BY revision) FROM ioffice.verify($cfile)"),
	'2:t,3:t,organisation:4:t',
	'verify() reports the three embedded signatures valid (the kind of the two made for the original is not named on the copy)');
{
	# the copy's signature dictionary (the last): /Reason in UTF-16BE
	my @reasons = slurp_file($out) =~ /\/Reason\((\xfe\xff(?:\\.|[^\\)])*)\)/sg;
	is(scalar @reasons, 2, "the seal's and the copy's signature dictionaries have a /Reason");
	is(encode('UTF-8', decode('UTF-16BE', substr($reasons[-1], 2))),
		'SAO Y - UBND huyện Sốp Cộp - Số: 01/SY-UBND',
		"the copy's signature's /Reason: the kind of copy, the copying agency, the copy's symbol");
	my $copy_images = () = slurp_file($out) =~ /\/Subtype\s*\/Image/g;
	is($copy_images, $images, "the copy's signature adds no image (appendix I part II.3b)");
}

$node->stop;
done_testing();
