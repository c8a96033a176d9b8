# A case file as one PDF (issue 19 item 1, Decree 30 appendix VI III.4g),
# the search results as docx and pdf (III.6h), and the text of legacy Word
# (.doc) and Excel (.xls) files found by search (III.6d), with real tools:
# a case file of three documents (one of them, signed and sealed, also in
# a second case file; one with no PDF), made by the worker; qpdf --check;
# pdfinfo's page count is the contents' pages plus the documents'; pdftotext
# reads the contents' Vietnamese subjects, in the order the documents
# arose; the copy carries no signature (pdfsig); python-docx reads the
# search results; a .doc and an .xls made here by LibreOffice are found by
# a word inside them.
use strict;
use warnings;
use File::Basename qw(dirname);
use lib dirname(__FILE__);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use IofficeTest;
use PdfSigning;

for my $tool (qw(pdfsig qpdf pdftotext pdfinfo))
{
	plan skip_all => "$tool is not installed" if system("command -v $tool >/dev/null 2>&1") != 0;
}
my $soffice = '/usr/lib/libreoffice/program/soffice.bin';
plan skip_all => 'LibreOffice is not installed' unless -x $soffice;
plan skip_all => 'the font Liberation Serif (fonts-liberation2) is not installed'
  unless -r '/usr/share/fonts/truetype/liberation2/LiberationSerif-Regular.ttf';
my $python = '/usr/bin/python3';
plan skip_all => 'python3-docx is not installed' if system($python, '-c', 'import docx') != 0;

my ($node, $pki) = pdf_signing_node('case_file_pdf');
# LibreOffice reads a .doc in seconds, more on a loaded machine
$node->append_conf('postgresql.conf', qq{
ioffice.pdf_helper_timeout = 300
ioffice.pdf_helper_cpu = 200
ioffice.pdf_helper_memory = 2048
});
$node->reload;
my $dir = PostgreSQL::Test::Utils::tempdir;
my $make_pdf = dirname(__FILE__) . '/../pdf/make_pdf.pl';

# LibreOffice makes the legacy files from text, as an agency's old files
sub soffice_convert
{
	my ($src, $filter, $infilter) = @_;
	for my $attempt (1, 2)
	{
		my $rc = system($soffice, '--headless', '--invisible', '--norestore', '--nologo', '--nodefault',
			'--nolockcheck', '--nofirststartwizard', "-env:UserInstallation=file://$dir/profile",
			"--infilter=$infilter", '--convert-to', $filter, '--outdir', $dir, $src) >> 8;
		last if $rc != 81;    # a new profile: soffice asks to be started again
	}
}
write_bytes("$dir/to_trinh.txt", "Tờ trình phương án phòng chống thiên tai xã Mường Lạn\nNội dung chi tiết.\n");
soffice_convert("$dir/to_trinh.txt", 'doc', 'Text (encoded):UTF8');
write_bytes("$dir/bang_ke.csv", "Nội dung,Số tiền\nKinh phí sửa chữa trụ sở Pá Khôm,120000000\n");
soffice_convert("$dir/bang_ke.csv", 'xls', 'CSV:44,34,76');
ok(-s "$dir/to_trinh.doc" && -s "$dir/bang_ke.xls", 'LibreOffice made a .doc and an .xls')
  or BAIL_OUT('no legacy files to test with');

# A: signed by the leader and sealed at issue, two pages
system_or_bail('perl', $make_pdf, 2, "$dir/two.pdf", 'Cong van hai trang');
my ($doc_a, $file_a, $issued_a) = issue_pdf($node, 'Quyết định lưu trữ', "$dir/two.pdf");
like((run_command([ 'pdfsig', $issued_a ]))[0], qr/Signature #2/, 'the issued file carries two signatures');

# B: a draft of three pages, older; C: a .doc only (no PDF); D: an .xls
system_or_bail('perl', $make_pdf, 3, "$dir/three.pdf", 'Bao cao ba trang');
my $doc_b = as_actor($node, 'postgres', 'regress_luan',
	"SELECT ioffice.create_outgoing('BC', 'Báo cáo tổng kết công tác văn thư')");
as_actor($node, 'postgres', 'regress_luan',
	"SELECT ioffice.attach($doc_b, 'bao_cao.pdf', decode('" . file_hex("$dir/three.pdf") . "', 'hex'))");
$node->safe_psql('postgres', "UPDATE ioffice.document SET created_at = now() - interval '10 days' WHERE id = $doc_b");
my $doc_c = as_actor($node, 'postgres', 'regress_luan',
	"SELECT ioffice.create_outgoing('TTr', 'Tờ trình về việc lập hồ sơ điện tử')");
my $file_c = as_actor($node, 'postgres', 'regress_luan',
	"SELECT ioffice.attach($doc_c, 'to_trinh.doc', decode('" . file_hex("$dir/to_trinh.doc") . "', 'hex'))");
my $doc_d = as_actor($node, 'postgres', 'regress_luan',
	"SELECT ioffice.create_outgoing('BC', 'Bảng kê kinh phí năm')");
my $file_d = as_actor($node, 'postgres', 'regress_luan',
	"SELECT ioffice.attach($doc_d, 'bang_ke.xls', decode('" . file_hex("$dir/bang_ke.xls") . "', 'hex'))");
is($node->safe_psql('postgres', "SELECT string_agg(kind, ',' ORDER BY id) FROM ioffice.file WHERE id IN ($file_c, $file_d)"),
	'doc,xls', 'the legacy files are known as doc and xls');

# two case files; A is in both; filed in an order other than the one they arose in
my $y = $node->safe_psql('postgres', 'SELECT extract(year FROM now() AT TIME ZONE ioffice.timezone())::int');
my $cf1 = as_actor($node, 'postgres', 'regress_thuy',
	"SELECT ioffice.add_case_file(1, $y, '01.VP', 'Hồ sơ công tác văn thư', '10', 'regress_luan')");
my $cf2 = as_actor($node, 'postgres', 'regress_thuy',
	"SELECT ioffice.add_case_file(1, $y, '02.VP', 'Hồ sơ quyết định', 'permanent', 'regress_luan')");
as_actor($node, 'postgres', 'regress_thuy',
	"SELECT ioffice.file_into($cf1, $doc_c), ioffice.file_into($cf1, $doc_a), ioffice.file_into($cf1, $doc_b), ioffice.file_into($cf2, $doc_a)");

# the case file as one PDF, by the worker
my $job = as_actor($node, 'postgres', 'regress_thuy', "SELECT ioffice.case_file_pdf($cf1)");
ok($node->poll_query_until('postgres', "SELECT done_at IS NOT NULL FROM ioffice.case_file_pdf_job WHERE id = $job"),
	'the worker made the case file\'s PDF');
is($node->safe_psql('postgres', "SELECT coalesce(error, 'none') FROM ioffice.case_file_pdf_job WHERE id = $job"),
	'none', 'without an error');
my $toc = $node->safe_psql('postgres', "SELECT toc_pages FROM ioffice.case_file_pdf_job WHERE id = $job");
my $book = bytea_to_file($node, 'postgres', 'regress_thuy', "ioffice.case_file_pdf_result($job)", 'case_file.pdf');
{
	my ($out) = run_command([ 'qpdf', '--check', $book ]);
	like($out, qr/No syntax or stream encoding errors found/, 'qpdf --check finds the case file\'s PDF sound');
	my ($info) = run_command([ 'pdfinfo', $book ]);
	my ($pages) = $info =~ /^Pages:\s+(\d+)/m;
	ok($toc >= 1, 'a contents page at least');
	is($pages, $toc + 2 + 3, 'pdfinfo: the contents\' pages, then A\'s two and B\'s three (C has no PDF)');
	is($node->safe_psql('postgres', "SELECT page_count FROM ioffice.case_file_pdf_job WHERE id = $job"),
		$pages, 'the job records the same count');

	my ($text) = run_command([ 'pdftotext', '-f', 1, '-l', $toc, $book, '-' ]);
	utf8::decode($text);
	(my $flat = $text) =~ s/\s+/ /g;
	# the subjects' column alone (A4 portrait, 15 mm margins, the columns'
	# widths of _case_file_pdf_spec: 5 14 11 17 35 9), its words top to
	# bottom and left to right, by their boxes
	my ($left, $right) = (42 + 511 * 47 / 91, 42 + 511 * 82 / 91);
	my ($boxes) = run_command([ 'pdftotext', '-bbox', '-f', 1, '-l', $toc, $book, '-' ]);
	utf8::decode($boxes);
	my ($page, @words) = (0);
	for my $line (split /\n/, $boxes)
	{
		$page++ if $line =~ /<page /;
		push @words, [ $page, $2, $1, $4 ]
		  if $line =~ /<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="[\d.]+">([^<]*)</
		  && $1 >= $left && $3 <= $right;
	}
	my $subjects = join(' ', map { $_->[3] } sort { $a->[0] <=> $b->[0] || $a->[1] <=> $b->[1] || $a->[2] <=> $b->[2] } @words);
	my $want_b = 'Báo cáo tổng kết công tác văn thư';
	my $want_a = 'Công văn Quyết định lưu trữ';    # issue_pdf's abstract begins with the type's name
	my $want_c = 'Tờ trình về việc lập hồ sơ điện tử';
	utf8::decode($_) for ($want_a, $want_b, $want_c);
	my @at = map { index($subjects, $_) } ($want_b, $want_a, $want_c);
	ok((!grep { $_ < 0 } @at), 'the contents name the three subjects with their diacritics') or diag($subjects);
	ok($at[0] < $at[1] && $at[1] < $at[2], 'in the order the documents arose (B, A, C), not the order filed');
	my $title = 'MỤC LỤC VĂN BẢN TRONG HỒ SƠ';
	my $copy = 'BẢN SAO';
	my $nopdf = 'Không có bản PDF';
	utf8::decode($_) for ($title, $copy, $nopdf);
	ok(index($flat, $title) >= 0 && index($flat, $copy) >= 0, 'titled, and said to be a copy');
	ok(index($flat, $nopdf) >= 0, 'C is listed as having no PDF copy');
	my ($b1, $b2, $a1, $a2) = ($toc + 1, $toc + 3, $toc + 4, $toc + 5);
	like($flat, qr/\Q$b1\E\x{2013}\Q$b2\E/, "B on pages $b1-$b2");
	like($flat, qr/\Q$a1\E\x{2013}\Q$a2\E/, "A on pages $a1-$a2");

	my ($pages_text) = run_command([ 'pdftotext', '-f', $toc + 1, $book, '-' ]);
	like($pages_text, qr/Bao cao ba trang.*Cong van hai trang/s, 'the documents\' own pages follow, B then A');

	# the copy: A's signature fields are there, unsigned (their values dropped)
	my ($sig, $sig_err) = run_command([ 'pdfsig', $book ]);
	my @fields = ($sig =~ /^Signature #\d+:/mg);
	my @unsigned = ($sig =~ /The signature form field is not signed/g);
	ok(@fields == @unsigned && $sig !~ /Signature Validation|Signer Certificate/,
		'the copy claims no signature: pdfsig finds no signed field') or diag($sig . $sig_err);
}
# the other case file, the same document
my $job2 = as_actor($node, 'postgres', 'regress_thuy', "SELECT ioffice.case_file_pdf($cf2)");
ok($node->poll_query_until('postgres', "SELECT done_at IS NOT NULL FROM ioffice.case_file_pdf_job WHERE id = $job2"),
	'the second case file\'s PDF is made');
is($node->safe_psql('postgres', "SELECT coalesce(error, 'none') || ':' || (page_count - toc_pages) FROM ioffice.case_file_pdf_job WHERE id = $job2"),
	'none:2', 'with A\'s two pages');
is($node->safe_psql('postgres', "SELECT count(*) FROM ioffice.access_log WHERE action = 'export' AND case_file_id = $cf1 AND detail = 'pdf'"),
	'1', 'the export is in the access log');

# the legacy files' text, by LibreOffice in the worker's text helper
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 2 FROM ioffice.search_extraction WHERE file_id IN ($file_c, $file_d) AND done_at IS NOT NULL"),
	'the worker extracted the .doc and the .xls');
is($node->safe_psql('postgres',
	"SELECT string_agg(coalesce(error, 'ok'), ',' ORDER BY file_id) FROM ioffice.search_extraction WHERE file_id IN ($file_c, $file_d)"),
	'ok,ok', 'both without an error');
is(as_actor($node, 'postgres', 'regress_luan', "SELECT string_agg(document::text, ',') FROM ioffice.search('thiên tai Mường Lạn')"),
	$doc_c, 'a word inside the .doc finds its document');
is(as_actor($node, 'postgres', 'regress_luan', "SELECT string_agg(document::text, ',') FROM ioffice.search('sua chua tru so Pa Khom')"),
	$doc_d, 'a word inside the .xls finds its document, unaccented');

# the search results as docx and pdf, the xlsx's columns
my $docx = bytea_to_file($node, 'postgres', 'regress_luan', "ioffice.search_export('thiên tai Mường Lạn', '{}', 'docx')", 'search.docx');
{
	my $rows = python_json($python, q{
import docx, json, sys
d = docx.Document(sys.argv[1])
print(json.dumps({'paras': [p.text for p in d.paragraphs],
                  'rows': [[c.text for c in r.cells] for r in d.tables[0].rows]}))
}, $docx);
	my @head = ('STT', 'Số, ký hiệu', 'Ngày văn bản', 'Loại văn bản', 'Trích yếu', 'Cơ quan ban hành', 'Văn bản', 'Trạng thái', 'Đoạn trích');
	utf8::decode($_) for @head;
	is_deeply($rows->{rows}[0], \@head, 'the docx has the xlsx\'s columns');
	is(scalar @{ $rows->{rows} }, 2, 'and one row, the document found');
	my $want = 'Tờ trình về việc lập hồ sơ điện tử';
	utf8::decode($want);
	is($rows->{rows}[1][4], $want, 'its abstract, with its diacritics');
}
my $spdf = bytea_to_file($node, 'postgres', 'regress_luan', "ioffice.search_export('thiên tai Mường Lạn', '{}', 'pdf')", 'search.pdf');
{
	my ($out) = run_command([ 'qpdf', '--check', $spdf ]);
	like($out, qr/No syntax or stream encoding errors found/, 'qpdf --check finds the search PDF sound');
	my ($text) = run_command([ 'pdftotext', $spdf, '-' ]);
	utf8::decode($text);
	(my $flat = $text) =~ s/\s+/ /g;
	my @want = ('KẾT QUẢ TÌM KIẾM VĂN BẢN', 'Trích yếu', 'Đoạn trích', 'Tờ trình về việc lập hồ sơ điện tử');
	utf8::decode($_) for @want;
	ok((!grep { index($flat, $_) < 0 } @want), 'pdftotext reads the title, the columns and the abstract') or diag($flat);
}
is($node->safe_psql('postgres',
	"SELECT string_agg(DISTINCT detail, ',' ORDER BY detail) FROM ioffice.access_log WHERE action = 'export' AND document_id = $doc_c"),
	'search:docx,search:pdf', 'each export of the search results is in the access log');

$node->stop;
done_testing();
