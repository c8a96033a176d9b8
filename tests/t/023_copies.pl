# Electronic copies (issue 12 item 4): the clerk's sao y of an issued PDF
# is a document of its own whose file is the original's signed PDF plus the
# organisation's signature, made by the worker without image, its /Reason
# the kind of copy, the copying agency and the copy's symbol.  pdfsig lists
# the leader's, the original seal and the copy's signatures all valid;
# verify() reports the three.
use strict;
use warnings;
use File::Basename qw(dirname);
use Encode qw(decode encode);
use lib dirname(__FILE__);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use IofficeTest;
use PdfSigning;

for my $tool (qw(pdfsig qpdf openssl))
{
	plan skip_all => "$tool is not installed" if system("command -v $tool >/dev/null 2>&1") != 0;
}

my ($node, $pki) = pdf_signing_node('copies');
my $dir = PostgreSQL::Test::Utils::tempdir;
my $make_pdf = dirname(__FILE__) . '/../pdf/make_pdf.pl';


# the agency has a seal image: the original's seal shows it, the copy's must not
system_or_bail('python3', dirname(__FILE__) . '/../pdf/make_png.py', 'seal', "$dir/seal.png");
$node->safe_psql('postgres',
	"SELECT ioffice.set_seal_image(1, decode('" . file_hex("$dir/seal.png") . "', 'hex'), 35)");
system_or_bail('perl', $make_pdf, 2, "$dir/two.pdf", 'Cong van hai trang');
my ($doc, $file, $issued) = issue_pdf($node, 'original', "$dir/two.pdf");
my $images = () = slurp_file($issued) =~ /\/Subtype\s*\/Image/g;
ok($images > 0, "the original's seal shows the seal image");

my $copy = as_actor($node, 'postgres', 'regress_thuy', "SELECT ioffice.copy_document($doc, 'SY')");
ok(wait_signatures($node, $copy), "the copy's organisation signature is made");
is($node->safe_psql('postgres', "SELECT string_agg(kind || ':' || status || ':' || coalesce(reason, '-'), ',') FROM ioffice.signature WHERE document_id = $copy"),
	'organisation:done:-', "the copy's signature is done");
is($node->safe_psql('postgres', "SELECT symbol || ':' || copy_kind || ':' || state FROM ioffice.document WHERE id = $copy"),
	'01/SY-UBND:SY:issued', 'the copy is issued with its own number');
my $cfile = current_file($node, $copy);
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
	'personal:2:t,organisation:3:t,organisation:4:t',
	'verify() reports the three embedded signatures valid, each of its kind (the two made for the original by their certificates, registered here)');
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
