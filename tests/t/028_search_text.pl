# search() over the text of files: the signing worker extracts each current
# PDF's text with pdftotext (outside the server, under the PDF helper's
# limits), and each docx's and xlsx's (workers/ioffice_text.py), cut at
# ioffice.search_text_max; a file it cannot read, or larger
# than ioffice.search_file_max, fails its own job and the others go on; a
# file replaced or removed leaves search; a person finds a file's text only
# when they may see its document.  A scanned PDF is read by OCR.
use strict;
use warnings;
use File::Basename qw(dirname);
use lib dirname(__FILE__);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IO::Compress::Zip qw($ZipError :zip_method);

use IofficeTest;

my $node = PostgreSQL::Test::Cluster->new('search_text');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'ioffice'
ioffice.worker_databases = 'postgres'
ioffice.worker_naptime = 1
ioffice.search_text_max = '16kB'
ioffice.search_file_max = '1MB'
ioffice.pdf_helper_timeout = 10
});
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION ioffice;
SELECT ioffice.add_agency('UBND huyện Sốp Cộp', 'UBND', '000.00.32.H41');
SELECT ioffice.add_department(1, 'Văn phòng HĐND-UBND', 'VP');
SELECT ioffice.add_department(1, 'Phòng Tài nguyên và Môi trường', 'TNMT');
SELECT ioffice.add_person('regress_luan', 'Tòng Văn Luân', 'Chuyên viên', 2, '{specialist}');
SELECT ioffice.add_person('regress_tuan', 'Dương Văn Tuấn', 'Chuyên viên', 3, '{specialist}');
SELECT ioffice.add_person('regress_thuy', 'Tòng Văn Thủy', 'Văn thư', 1, '{clerk}');
});
my $started = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');

# A PDF of one page whose lines are in Helvetica with WinAnsiEncoding (Latin-1:
# á, à, ã are there; ạ, ả, đ are not), as a hex string
sub pdf_hex
{
	my (@lines) = @_;
	my $content = "BT /F1 10 Tf 12 TL 40 800 Td\n"
	  . join('', map { my $l = $_; $l =~ s/([()\\])/\\$1/g; "($l) Tj T*\n" } @lines) . "ET";
	utf8::downgrade($content);
	my @objs = (
		'<< /Type /Catalog /Pages 2 0 R >>',
		'<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
		'<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>',
		'<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>',
		"<< /Length " . length($content) . " >>\nstream\n$content\nendstream");
	my $out = "%PDF-1.4\n";
	my @offsets;
	for my $i (0 .. $#objs)
	{
		push @offsets, length($out);
		$out .= ($i + 1) . " 0 obj\n$objs[$i]\nendobj\n";
	}
	my $xref = length($out);
	$out .= "xref\n0 " . (@objs + 1) . "\n0000000000 65535 f \n";
	$out .= sprintf("%010d 00000 n \n", $_) for @offsets;
	$out .= "trailer\n<< /Size " . (@objs + 1) . " /Root 1 0 R >>\nstartxref\n$xref\n%%EOF\n";
	return unpack('H*', $out);
}

# Latin-1 bytes for the PDF's string (WinAnsi), from Perl characters
sub latin1 { my ($s) = @_; utf8::decode($s); return join('', map { chr(ord($_)) } split //, $s); }

# A zip of the named parts (a docx or an xlsx when the parts say so), as hex
sub zip_hex
{
	my (%parts) = @_;
	my ($buf, $z) = ('', undef);
	for my $name (sort keys %parts)
	{
		if ($z) { $z->newStream(Name => $name, Method => ZIP_CM_STORE); }
		else { $z = IO::Compress::Zip->new(\$buf, Name => $name, Method => ZIP_CM_STORE) or die $ZipError; }
		$z->print($parts{$name});
	}
	$z->close;
	# a corrupted part: its bytes are not those its CRC-32 names
	$buf =~ s/BROKENBROKEN/CORRUPTED!!!/;
	return unpack('H*', $buf);
}

sub new_doc
{
	my ($abstract, $hex, $name) = @_;
	$name //= 'tep.pdf';
	my $doc = as_actor($node, 'postgres', 'regress_luan', "SELECT ioffice.create_outgoing('CV', '$abstract')");
	my $file = as_actor($node, 'postgres', 'regress_luan',
		"SELECT ioffice.attach($doc, '$name', decode('$hex', 'hex'))");
	return ($doc, $file);
}

my ($d_text, $f_text) = new_doc('Biên bản kiểm tra',
	pdf_hex('Bien ban kiem tra mo khoang san', latin1('Gia dinh bà má Lò Thi Hoa')));
my ($d_long, $f_long) = new_doc('Báo cáo dài',
	pdf_hex((map { "Dong so $_ noi dung bao cao tong hop" } 1 .. 1200), 'tutanhcuoicung'));
my ($d_bad, $f_bad) = new_doc('Tệp hỏng', unpack('H*', "%PDF-1.4\n" . ('garbage ' x 100)));
my ($d_big, $f_big) = new_doc('Tệp lớn',
	unpack('H*', pack('H*', pdf_hex('Thuy loi lon')) . ("%" . ('x' x 99) . "\n") x 11000));
my ($d_after, $f_after) = new_doc('Tờ trình', pdf_hex('To trinh du an thuy dien Nam Ma'));
my ($d_docx, $f_docx) = new_doc('Dự thảo quyết định', zip_hex(
	'[Content_Types].xml' => '<Types/>',
	'word/document.xml' => '<w:document><w:body><w:p><w:r><w:t>Quyết định phê duyệt</w:t></w:r>'
	  . '<w:r><w:t xml:space="preserve"> đề án &amp; chuyển đổi số</w:t></w:r></w:p>'
	  . '<w:p><w:r><w:t>Đoạn hai</w:t></w:r></w:p></w:body></w:document>'), 'du_thao.docx');
my ($d_xlsx, $f_xlsx) = new_doc('Danh sách', zip_hex(
	'[Content_Types].xml' => '<Types/>',
	'xl/workbook.xml' => '<workbook/>',
	'xl/sharedStrings.xml' => '<sst><si><t>Danh sách hộ nghèo</t></si><si><t>Xã Mường Lạn</t></si></sst>'),
	'danh_sach.xlsx');
# a docx whose document part is corrupted
my ($d_baddocx, $f_baddocx) = new_doc('Tệp Word hỏng', zip_hex(
	'[Content_Types].xml' => '<Types/>', 'word/document.xml' => '<w:t>BROKENBROKEN</w:t>'), 'hong.docx');

ok($node->poll_query_until('postgres',
	'SELECT count(*) = 8 FROM ioffice.search_extraction WHERE done_at IS NOT NULL'),
	'the worker has done every extraction job');
is($node->safe_psql('postgres',
	"SELECT string_agg(file_id || ':' || coalesce(error, 'ok'), ' ' ORDER BY file_id) FROM ioffice.search_extraction"),
	"$f_text:ok $f_long:ok $f_bad:pdftotext could not read the pdf file (exit status 1) "
	  . "$f_big:the file is larger than ioffice.search_file_max (1 MB) $f_after:ok $f_docx:ok $f_xlsx:ok "
	  . "$f_baddocx:the text helper could not read the docx file (exit status 1)",
	'the unreadable and the too large files fail their own jobs; the ones after them are done');
is(as_actor($node, 'postgres', 'regress_luan', "SELECT string_agg(document::text, ',') FROM ioffice.search('chuyen doi so')"),
	$d_docx, 'a docx is found by its text');
is(as_actor($node, 'postgres', 'regress_luan', "SELECT string_agg(document::text, ',') FROM ioffice.search('muong lan ho ngheo')"),
	$d_xlsx, 'an xlsx is found by its text');
is($node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()'), $started,
	'the server never restarted');

# found by the text of their files, accents or not
is(as_actor($node, 'postgres', 'regress_luan', "SELECT string_agg(document::text, ',') FROM ioffice.search('khoáng sản')"),
	$d_text, 'an accented query finds the unaccented text of a PDF');
like(as_actor($node, 'postgres', 'regress_luan', "SELECT snippet FROM ioffice.search('ba ma')"),
	qr/^Bien ban kiem tra mo khoang san\s+Gia dinh «bà» «má» Lò Thi Hoa\s*$/,
	'an unaccented query finds the accented text; the snippet is the file\'s');
is(as_actor($node, 'postgres', 'regress_luan', "SELECT string_agg(document::text, ',') FROM ioffice.search('thuy dien')"),
	$d_after, 'the file after the failed ones is found');
# cut at search_text_max: the beginning is searched, the end is not
is(as_actor($node, 'postgres', 'regress_luan', "SELECT string_agg(document::text, ',') FROM ioffice.search('dong so 7')"),
	$d_long, 'the beginning of a long text is found');
is(as_actor($node, 'postgres', 'regress_luan', "SELECT count(*) FROM ioffice.search('tutanhcuoicung')"),
	'0', 'what is past ioffice.search_text_max is not');
is($node->safe_psql('postgres', "SELECT octet_length(body) <= 16384 FROM ioffice.search_text WHERE file_id = $f_long"),
	't', 'the text kept is at most search_text_max');

# only the documents one may see
is(as_actor($node, 'postgres', 'regress_tuan', "SELECT count(*) FROM ioffice.search('khoang san')"),
	'0', 'another department\'s specialist does not find it by its file');
is(as_actor($node, 'postgres', 'regress_thuy', "SELECT string_agg(document::text, ',') FROM ioffice.search('khoang san')"),
	$d_text, 'the agency\'s clerk does');

# the results as a workbook (search_export), read back by openpyxl: the
# title, the headings, the row of the document found by its file's text
SKIP:
{
	my $python = python_with_openpyxl();
	skip 'python3 with openpyxl is not installed', 3 unless defined $python;
	my $reader = <<'PY';
import json, sys
import openpyxl
ws = openpyxl.load_workbook(sys.argv[1]).worksheets[0]
print(json.dumps({"title": ws.title,
                  "rows": [[("" if c is None else str(c)) for c in r] for r in ws.iter_rows(values_only=True)]}))
PY
	my $wb = python_json($python, $reader,
		bytea_to_file($node, 'postgres', 'regress_thuy', "ioffice.search_export('khoang san')", 'found.xlsx'));
	# (this file's literals are UTF-8 bytes; the JSON gives characters)
	my $bytes = sub { my ($x) = @_; utf8::encode($x); return $x; };
	my @rows = map { [ map { $bytes->($_) } @$_ ] } @{ $wb->{rows} };
	is($bytes->($wb->{title}), 'Kết quả tìm kiếm', 'the workbook\'s sheet');
	my ($head) = grep { $_->[0] eq 'STT' } @rows;
	is(join('|', @{ $head // [] }),
		'STT|Số, ký hiệu|Ngày văn bản|Loại văn bản|Trích yếu|Cơ quan ban hành|Văn bản|Trạng thái|Đoạn trích',
		'its headings');
	my @hits = grep { $_->[0] =~ /^\d+$/ } @rows;
	is(join(';', map { "$_->[0]|$_->[6]|" . ($_->[8] =~ /«khoang» «san»/ ? 'snippet' : $_->[8]) } @hits),
		'1|Đi|snippet', 'one row: the document found by the text of its file, with the snippet');
}

# a file removed, or replaced, leaves search; the new version is extracted
as_actor($node, 'postgres', 'regress_luan', "SELECT ioffice.remove_file($f_after)");
is(as_actor($node, 'postgres', 'regress_luan', "SELECT count(*) FROM ioffice.search('thuy dien')"),
	'0', 'a removed file is no longer found');
my $f_new = as_actor($node, 'postgres', 'regress_luan',
	"SELECT ioffice.replace_file($f_text, 'tep2.pdf', decode('" . pdf_hex('Bien ban kiem tra rung phong ho') . "', 'hex'))");
is(as_actor($node, 'postgres', 'regress_luan', "SELECT count(*) FROM ioffice.search('khoang san')"),
	'0', 'a replaced file is no longer found');
ok($node->poll_query_until('postgres',
	"SELECT done_at IS NOT NULL FROM ioffice.search_extraction WHERE file_id = $f_new"),
	'the new version is extracted');
is(as_actor($node, 'postgres', 'regress_luan', "SELECT string_agg(document::text, ',') FROM ioffice.search('rung phong ho')"),
	$d_text, 'and found');

# A scanned PDF (its page an image, no text layer): pdftotext finds nothing,
# the worker's text helper reads it by OCR (pdftoppm's page images,
# Tesseract in Vietnamese), its job is marked ocr, and search() finds its
# Vietnamese words, accented or not.  The page is drawn here (Pillow, in
# Liberation Serif) and made an image-only PDF by img2pdf.
SKIP:
{
	my $font = '/usr/share/fonts/truetype/liberation2/LiberationSerif-Regular.ttf';
	my ($python) = grep { -x $_ } ('/usr/bin/python3', '/usr/local/bin/python3');
	my $langs = `tesseract --list-langs 2>&1` // '';
	skip 'Tesseract with its Vietnamese data (tesseract-ocr-vie) is not installed', 6
	  unless $langs =~ /^vie$/m;
	skip 'img2pdf is not installed', 6 unless system('sh', '-c', 'command -v img2pdf >/dev/null') == 0;
	skip 'python3 with Pillow is not installed', 6
	  unless defined $python && system($python, '-c', 'import PIL') == 0;
	skip "the font $font is not installed (fonts-liberation2)", 6 unless -r $font;

	my $dir = PostgreSQL::Test::Utils::tempdir();
	my $draw = <<'PY';
import sys
from PIL import Image, ImageDraw, ImageFont
font = ImageFont.truetype(sys.argv[1], 64)
img = Image.new('L', (2480, 1000), 255)
d = ImageDraw.Draw(img)
for i, line in enumerate(sys.argv[3:]):
    d.text((150, 150 + i * 130), line, font=font, fill=0)
img.save(sys.argv[2], 'PNG', dpi=(300, 300))
PY
	system($python, '-c', $draw, $font, "$dir/page.png",
		'Biên bản nghiệm thu công trình', 'Kênh mương nội đồng xã Chiềng Khoong',
		'Ủy ban nhân dân huyện Sốp Cộp') == 0 or die 'could not draw the page';
	system('img2pdf', '-o', "$dir/scan.pdf", "$dir/page.png") == 0 or die 'img2pdf failed';
	my $scan = slurp_file("$dir/scan.pdf");
	is(`pdftotext -q "$dir/scan.pdf" - | tr -d '[:space:]'`, '', 'the scanned PDF has no text layer');

	# one page by OCR takes seconds: more than the 10 s set above, on a busy machine
	$node->safe_psql('postgres', 'ALTER SYSTEM SET ioffice.pdf_helper_timeout = 120');
	$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
	my ($d_scan, $f_scan) = new_doc('Biên bản quét', unpack('H*', $scan), 'quet.pdf');
	ok($node->poll_query_until('postgres',
		"SELECT done_at IS NOT NULL FROM ioffice.search_extraction WHERE file_id = $f_scan"),
		'the scanned PDF is extracted');
	is($node->safe_psql('postgres',
		"SELECT coalesce(error, 'ok') || ' ' || ocr FROM ioffice.search_extraction WHERE file_id = $f_scan"),
		'ok true', 'by OCR, and its job says so');
	is($node->safe_psql('postgres',
		"SELECT bool_or(ocr) FROM ioffice.search_extraction WHERE file_id <> $f_scan"),
		'f', 'the files with a text layer were not read by OCR');
	is(as_actor($node, 'postgres', 'regress_luan',
		"SELECT string_agg(document::text, ',') FROM ioffice.search('nghiệm thu công trình')"),
		$d_scan, 'an accented query finds the scanned PDF by its words');
	is(as_actor($node, 'postgres', 'regress_luan',
		"SELECT string_agg(document::text, ',') FROM ioffice.search('kenh muong noi dong')"),
		$d_scan, 'an unaccented one too');
}

done_testing();
