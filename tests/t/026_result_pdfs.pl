# What a citizen and another agency receive, judged by poppler and qpdf:
# the signed result of a dossier (a Word draft from the Decree 30 template,
# converted by the worker, signed by the leader, numbered and sealed at
# issue) and an Excel file signed as a PDF.
use strict;
use warnings;
use File::Basename qw(dirname);
use PostgreSQL::Test::Utils;
use Test::More;
use IofficeTest;
use PdfSigning;

my $soffice = '/usr/lib/libreoffice/program/soffice';
plan skip_all => 'LibreOffice is not installed' unless -x $soffice;

my ($node) = pdf_signing_node('result_pdfs');
$node->safe_psql('postgres', q{
SELECT ioffice.add_person('regress_tam', 'Nguyễn Đình Tâm', 'Cán bộ một cửa', 1, '{one_stop}');
});
my $dir = PostgreSQL::Test::Utils::tempdir;

# soffice FILTER FILE: the file LibreOffice makes from FILE, in $dir
sub soffice
{
	my ($filter, $file, @options) = @_;
	system_or_bail($soffice, '--headless', '--norestore', @options,
		"-env:UserInstallation=file://$dir/profile", '--convert-to', $filter,
		'--outdir', $dir, $file);
}

# the tools' verdicts on a PDF
sub pdfsig_valid
{
	my ($path) = @_;
	my $out = `pdfsig '$path' 2>&1`;
	my @signers = $out =~ /Signer Certificate Common Name: (.*)/g;
	my $valid = () = $out =~ /Signature Validation: Signature is Valid\./g;
	return (join(',', @signers), $valid);
}

sub qpdf_sound
{
	my ($path) = @_;
	system("qpdf --check '$path' >/dev/null 2>&1");
	return $? == 0;
}

# --- a dossier's result: the director's draft is the seed's decision template
my $tpl = dirname(__FILE__) . '/../docs_src/nd30_quyet_dinh_sct.fodt';
write_bytes("$dir/quyet_dinh.fodt", slurp_file($tpl));
soffice('docx:MS Word 2007 XML', "$dir/quyet_dinh.fodt");
ok(-s "$dir/quyet_dinh.docx", 'the draft decision is a Word file');

my $code = as_actor($node, 'postgres', 'regress_tam', q{
SELECT ioffice.receive_dossier('2.002166.000.00.00.H41', 'Điều chỉnh tăng diện tích cơ sở bán lẻ',
       '{"name": "ĐẶNG NGỌC VIỆT", "phone": "0913383345"}', 5)});
as_actor($node, 'postgres', 'regress_tam', "SELECT ioffice.dossier_act('$code', 'transfer', 'dai')");
as_actor($node, 'postgres', 'dai', "SELECT ioffice.dossier_act('$code', 'assign', 'regress_luan')");
my $draft = as_actor($node, 'postgres', 'regress_luan',
	"SELECT ioffice.dossier_attach('$code', 'quyet_dinh.docx', decode('" . file_hex("$dir/quyet_dinh.docx") . "', 'hex'))");
as_actor($node, 'postgres', 'regress_luan', qq{SELECT ioffice.dossier_act('$code', 'propose', 'dai', NULL,
	'{"abstract": "V/v điều chỉnh tăng diện tích cơ sở bán lẻ cho Hộ kinh doanh Đặng Ngọc Việt"}')});
as_actor($node, 'postgres', 'dai', qq{SELECT ioffice.dossier_act('$code', 'sign', 'regress_thuy', NULL,
	'{"result_file": $draft, "doc_type": "QĐ"}')});
my $result = $node->safe_psql('postgres', "SELECT result_document_id FROM ioffice.dossier WHERE code = '$code'");
ok(wait_signatures($node, $result), "the director's signature of the result is made");
is($node->safe_psql('postgres', qq{
	SELECT f.kind || ':' || (f.converted_from IS NOT NULL) || ':' || s.status || ':' || coalesce(s.reason, '-')
	FROM ioffice.signature s JOIN ioffice.file f ON f.id = s.file_id WHERE s.document_id = $result}),
	'pdf:true:done:-', 'the Word draft was converted to PDF, and the PDF signed');
as_actor($node, 'postgres', 'regress_thuy', "SELECT ioffice.dossier_act('$code', 'issue')");
ok(wait_signatures($node, $result), "the organisation's signatures of the result are made");
is($node->safe_psql('postgres', qq{
	SELECT string_agg(kind || ':' || status, ',' ORDER BY id) FROM ioffice.signature
	WHERE document_id = $result AND status <> 'done'}), '', 'no signature of the result failed');
my $symbol = $node->safe_psql('postgres', "SELECT symbol FROM ioffice.document WHERE id = $result");
like($symbol, qr{^01/QĐ-UBND}, 'the result has the first number of the outgoing register');

# the PDF the citizen receives: the leader's and the organisation's signatures inside
my $pdf_id = $node->safe_psql('postgres', qq{
	SELECT f.id FROM ioffice.file f JOIN ioffice.signature s ON s.signed_file_id = f.id
	WHERE f.document_id = $result AND s.kind = 'organisation' AND f.kind = 'pdf'
	  AND f.superseded_at IS NULL AND f.removed_at IS NULL AND f.name LIKE 'quyet_dinh%'});
ok($pdf_id ne '', 'the current PDF of the result carries the organisation signature');
my $pdf = bytea_to_file($node, 'postgres', 'dai', "(SELECT content FROM ioffice.file WHERE id = $pdf_id)", 'result.pdf');
my ($signers, $valid) = pdfsig_valid($pdf);
is($signers, 'Trần Văn Đại,UBND huyện Sốp Cộp', 'pdfsig: the leader signed first, then the organisation');
is($valid, 2, 'pdfsig: both signatures are valid');
ok(qpdf_sound($pdf), 'qpdf --check: the result PDF is sound');
my $text = `pdftotext -layout '$pdf' - 2>/dev/null`;
like($text, qr/QUYẾT ĐỊNH/, 'pdftotext: the decision text is in the PDF');
like($text, qr/Nguyễn Văn Giám/, "pdftotext: the signature block is the template's");
is(as_actor($node, 'postgres', 'regress_thuy', qq{
	SELECT string_agg(kind || ':' || valid || ':' || after_signing, ',' ORDER BY revision)
	FROM ioffice.verify($pdf_id)}),
	'personal:true:signatures,organisation:true:none',
	"verify(): the leader's signature is valid and what came after it is only the organisation's");

# the processing trail handed to the TTHC system with it is sealed too
my $trail_id = $node->safe_psql('postgres', qq{
	SELECT f.id FROM ioffice.file f JOIN ioffice.signature s ON s.signed_file_id = f.id
	WHERE f.document_id = $result AND s.kind = 'organisation' AND f.name LIKE 'QTXL%'});
my $trail = bytea_to_file($node, 'postgres', 'dai', "(SELECT content FROM ioffice.file WHERE id = $trail_id)", 'trail.pdf');
is(join(':', pdfsig_valid($trail)), 'UBND huyện Sốp Cộp:1', "pdfsig: the trail carries the organisation's valid signature");

# one byte changed in the signed part: poppler and verify() both refuse it
my $bytes = slurp_file($pdf);
my $at = index($bytes, 'stream') + 10;    # inside the first page's content
substr($bytes, $at, 1) = chr(ord(substr($bytes, $at, 1)) ^ 0x01);
write_bytes("$dir/tampered.pdf", $bytes);
my (undef, $t_valid) = pdfsig_valid("$dir/tampered.pdf");
is($t_valid, 0, 'pdfsig: a byte changed in the result invalidates both signatures');

# --- an Excel file: converted by the worker and signed as a PDF
write_bytes("$dir/bang_ke.csv", "STT,Tên cơ sở,Diện tích (m2)\n1,Cửa hàng tiện lợi Vinh,250\n2,Siêu thị mini Cửa Lò,480\n");
# (the CSV is read as UTF-8: comma, double quote, charset 76)
soffice('xlsx:Calc MS Excel 2007 XML', "$dir/bang_ke.csv", '--infilter=CSV:44,34,76');
ok(-s "$dir/bang_ke.xlsx", 'the table is an Excel workbook');
my $doc = as_actor($node, 'postgres', 'regress_luan', "SELECT ioffice.create_outgoing('CV', 'Bảng kê cơ sở bán lẻ')");
as_actor($node, 'postgres', 'regress_luan',
	"SELECT ioffice.attach($doc, 'bang_ke.xlsx', decode('" . file_hex("$dir/bang_ke.xlsx") . "', 'hex'))");
as_actor($node, 'postgres', 'regress_luan', "SELECT ioffice.act($doc, 'submit', 'dai', NULL, '{\"request_signature\": true}')");
as_actor($node, 'postgres', 'dai', "SELECT ioffice.act($doc, 'sign', NULL, NULL, '{\"mode\": \"auto\"}')");
ok(wait_signatures($node, $doc), "the leader's signature of the workbook is made");
is($node->safe_psql('postgres', qq{
	SELECT s.status || ':' || coalesce(s.reason, '-') || ':' || f.kind || ':' || (f.converted_from IS NOT NULL)
	       || ':' || (sf.kind = 'pdf')
	FROM ioffice.signature s JOIN ioffice.file f ON f.id = s.file_id
	LEFT JOIN ioffice.file sf ON sf.id = s.signed_file_id WHERE s.document_id = $doc}),
	'done:-:pdf:true:true', 'the workbook was converted to PDF and signed inside it');
my $xl_id = current_file($node, $doc);
my $xl_pdf = bytea_to_file($node, 'postgres', 'dai', "(SELECT content FROM ioffice.file WHERE id = $xl_id)", 'bang_ke.pdf');
my ($x_signers, $x_valid) = pdfsig_valid($xl_pdf);
is("$x_signers:$x_valid", 'Trần Văn Đại:1', "pdfsig: the workbook's PDF carries the leader's valid signature");
like(`pdftotext -layout '$xl_pdf' - 2>/dev/null`, qr/Siêu thị mini Cửa Lò\s+480/, "pdftotext: the workbook's cells are in the PDF");
is($node->safe_psql('postgres', qq{
	SELECT f.kind FROM ioffice.file f WHERE f.id = (SELECT converted_from FROM ioffice.file WHERE id =
	  (SELECT file_id FROM ioffice.signature WHERE document_id = $doc))}),
	'xlsx', 'the Excel file it came from is kept');

$node->stop;
done_testing();
