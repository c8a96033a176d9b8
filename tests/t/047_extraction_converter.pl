# The text of a legacy Word file (.doc) for search is read by the
# converter's LibreOffice, which the signer never waits for (issue 19,
# Appendix VI III.6d): while a slow .doc extraction is under way (the
# converter's test hook IOFFICE_CONVERT_TEST_SLOW makes a file whose name
# holds "__cham__" take 25 s more), a signature requested after it is made
# within seconds, long before the extraction ends; the .doc's text then
# becomes searchable all the same.  Before, the signer ran LibreOffice
# itself for each .doc (workers/ioffice_text.py) and every signature queued
# behind it waited for it.  Then the access log's retention: an old row is
# kept until ioffice.access_log_retention is set, then pruned by the worker;
# and the search results as a PDF carry page numbers.  A scanned PDF's OCR
# does not hold a signature either.
use strict;
use warnings;
use File::Basename qw(dirname);
use lib dirname(__FILE__);
use IofficeTest;
use Time::HiRes qw(time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $soffice = '/usr/lib/libreoffice/program/soffice.bin';
plan skip_all => 'LibreOffice is not installed' unless -x $soffice;
plan skip_all => 'python3-uno is not installed'
  unless system('/usr/bin/python3', '-c', 'import uno') == 0;

my $dir = PostgreSQL::Test::Utils::tempdir;

# a .doc made here by LibreOffice from text, as an agency's old file
{
	open(my $fh, '>:raw', "$dir/to_trinh__cham__.txt") or die "cannot write: $!";
	print $fh "Tờ trình phương án phòng chống thiên tai xã Mường Lạn\n";
	close($fh);
}
for my $attempt (1, 2)
{
	my $rc = system($soffice, '--headless', '--invisible', '--norestore', '--nologo', '--nodefault',
		'--nolockcheck', '--nofirststartwizard', "-env:UserInstallation=file://$dir/profile",
		'--infilter=Text (encoded):UTF8', '--convert-to', 'doc', '--outdir', $dir,
		"$dir/to_trinh__cham__.txt") >> 8;
	last if $rc != 81;    # a new profile: soffice asks to be started again
}
ok(-s "$dir/to_trinh__cham__.doc", 'LibreOffice made a .doc') or BAIL_OUT('no .doc to test with');
my $doc_hex = unpack('H*', slurp_file("$dir/to_trinh__cham__.doc"));

my ($pki, $keystore) = make_keystore();
$ENV{IOFFICE_CONVERT_TEST_SLOW} = '__cham__:25';
my $node = PostgreSQL::Test::Cluster->new('extraction_converter');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'ioffice'
ioffice.worker_databases = 'postgres'
ioffice.keystore = '$keystore'
ioffice.keystore_personal = on
ioffice.worker_naptime = 1
ioffice.convert_timeout = 120
ioffice.pdf_helper_timeout = 300
});
$node->start;
delete $ENV{IOFFICE_CONVERT_TEST_SLOW};
signing_setup($node, 'postgres', $pki);

sub sql1 { return $node->safe_psql('postgres', $_[0]) }

# the .doc, attached to a draft: its text is queued for search
my $doc = as_actor($node, 'postgres', 'regress_luan', "SELECT ioffice.create_outgoing('CV', 'Tờ trình cũ')");
my $file = as_actor($node, 'postgres', 'regress_luan',
	"SELECT ioffice.attach($doc, 'to_trinh__cham__.doc', decode('$doc_hex', 'hex'))");

# its extraction under way: LibreOffice reading it (the signer's converter
# now; before, the signer itself, its activity saying so)
ok($node->poll_query_until('postgres', q{
SELECT (SELECT signer_state = 'converting' FROM ioffice.worker_status)
    OR EXISTS (SELECT 1 FROM pg_stat_activity
                WHERE state = 'active' AND query LIKE 'ioffice worker: extracting%')}),
	'the .doc\'s extraction is under way');

# a signature requested now is made within seconds, before the text is
my $t0 = time;
my $signed = new_doc_to_sign($node, 'postgres', 'Công văn ký trong khi đọc tệp .doc');
as_actor($node, 'postgres', 'dai', "SELECT ioffice.act($signed, 'sign')");
ok($node->poll_query_until('postgres',
	"SELECT status <> 'pending' FROM ioffice.signature WHERE document_id = $signed"),
	'the signature is settled');
my $took = time - $t0;
my $extraction_pending = sql1("SELECT done_at IS NULL FROM ioffice.search_extraction WHERE file_id = $file");
is(sql1("SELECT status FROM ioffice.signature WHERE document_id = $signed"), 'done', 'it is signed');
cmp_ok($took, '<', 10, 'the signature took less than 10 s while LibreOffice read the .doc')
  or diag("it took $took s");
is($extraction_pending, 't', 'the signature was made before the .doc\'s text was read');

# the .doc's text arrives all the same, through the converter
ok($node->poll_query_until('postgres',
	"SELECT done_at IS NOT NULL FROM ioffice.search_extraction WHERE file_id = $file"),
	'the .doc\'s text is extracted');
is(sql1("SELECT coalesce(error, 'ok') FROM ioffice.search_extraction WHERE file_id = $file"),
	'ok', 'without an error');
is(as_actor($node, 'postgres', 'regress_luan', "SELECT string_agg(document::text, ',') FROM ioffice.search('thien tai Muong Lan')"),
	$doc, 'a word inside the .doc finds its document, unaccented');

# A scanned PDF's OCR runs beside the signer's loop too: five full pages
# read by Tesseract take tens of seconds, and a signature requested while it
# runs is made within seconds, before the scan's text arrives.  Before, the
# signer ran the OCR helper to its end in its loop.
SKIP:
{
	my $font = '/usr/share/fonts/truetype/liberation2/LiberationSerif-Regular.ttf';
	my $langs = `tesseract --list-langs 2>&1` // '';
	skip 'Tesseract with its Vietnamese data (tesseract-ocr-vie) is not installed', 6
	  unless $langs =~ /^vie$/m;
	skip 'img2pdf is not installed', 6 unless system('sh', '-c', 'command -v img2pdf >/dev/null') == 0;
	skip 'python3 with Pillow is not installed', 6
	  unless system('/usr/bin/python3', '-c', 'import PIL') == 0;
	skip "the font $font is not installed (fonts-liberation2)", 6 unless -r $font;

	# an A4 page at 300 dpi, fifty lines of text, scanned five times
	system('/usr/bin/python3', '-c', <<'PY', $font, "$dir/page.png") == 0 or die 'could not draw the page';
import sys
from PIL import Image, ImageDraw, ImageFont
font = ImageFont.truetype(sys.argv[1], 48)
img = Image.new('L', (2480, 3508), 255)
d = ImageDraw.Draw(img)
lines = ['Biên bản kiểm tra đê điều trước mùa mưa lũ năm nay',
         'Kè chống sạt lở bờ suối Nậm Lạn, bản Huổi Hẩu',
         'Ủy ban nhân dân xã Mường Lạn, huyện Sốp Cộp']
for i in range(50):
    d.text((150, 150 + i * 64), lines[i % 3], font=font, fill=0)
img.save(sys.argv[2], 'PNG', dpi=(300, 300))
PY
	system('img2pdf', '-o', "$dir/scan.pdf", ("$dir/page.png") x 5) == 0 or die 'img2pdf failed';
	my $scan_hex = unpack('H*', slurp_file("$dir/scan.pdf"));
	my $scan_doc = as_actor($node, 'postgres', 'regress_luan', "SELECT ioffice.create_outgoing('BB', 'Biên bản quét')");
	my $scan = as_actor($node, 'postgres', 'regress_luan',
		"SELECT ioffice.attach($scan_doc, 'bien_ban_quet.pdf', decode('$scan_hex', 'hex'))");
	ok($node->poll_query_until('postgres',
		"SELECT signer_state = 'reading a scan (OCR)' FROM ioffice.worker_status"),
		'the scan is being read by OCR, worker_status says');

	$t0 = time;
	my $signed2 = new_doc_to_sign($node, 'postgres', 'Công văn ký trong khi đọc bản quét');
	as_actor($node, 'postgres', 'dai', "SELECT ioffice.act($signed2, 'sign')");
	ok($node->poll_query_until('postgres',
		"SELECT status <> 'pending' FROM ioffice.signature WHERE document_id = $signed2"),
		'the signature is settled');
	$took = time - $t0;
	my $ocr_pending = sql1("SELECT done_at IS NULL FROM ioffice.search_extraction WHERE file_id = $scan");
	is(sql1("SELECT status FROM ioffice.signature WHERE document_id = $signed2"), 'done', 'it is signed');
	cmp_ok($took, '<', 10, 'the signature took less than 10 s while the scan was read by OCR')
	  or diag("it took $took s");
	is($ocr_pending, 't', 'the signature was made before the scan\'s text was read');
	ok($node->poll_query_until('postgres',
		"SELECT done_at IS NOT NULL AND error IS NULL AND ocr FROM ioffice.search_extraction WHERE file_id = $scan"),
		'the scan\'s text then arrives, read by OCR');
}

# the search results as a PDF number their pages, "Trang n/N" at each foot
SKIP:
{
	skip 'pdftotext is not installed', 1 unless -x '/usr/bin/pdftotext';
	my $pdf = bytea_to_file($node, 'postgres', 'regress_luan',
		"ioffice.search_export('thien tai Muong Lan', '{}', 'pdf')", 'search.pdf');
	my ($text) = run_command([ 'pdftotext', $pdf, '-' ]);
	like($text, qr{Trang 1/1}, 'the search results as a PDF carry their page numbers');
}

# the access log's retention (issue 19, Appendix VI): kept for ever by
# default; once a DBA sets one, the signer prunes the older rows
sql1(qq{INSERT INTO ioffice.access_log (at, person_id, action, document_id, detail)
SELECT now() - interval '12 years', p.id, 'view', $doc, 'regress_old' FROM ioffice.person p WHERE p.login = 'dai'
UNION ALL
SELECT now() - interval '1 year', p.id, 'view', $doc, 'regress_young' FROM ioffice.person p WHERE p.login = 'dai'});
is(sql1("SELECT count(*) FROM ioffice.access_log WHERE detail = 'regress_old'"), '1',
	'an old row of the access log is kept while no retention is set');
$node->append_conf('postgresql.conf', "ioffice.access_log_retention = '3650d'\n");
$node->reload;
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM ioffice.access_log WHERE detail = 'regress_old'"),
	'the worker pruned it once ioffice.access_log_retention was set');
is(sql1("SELECT count(*) FROM ioffice.access_log WHERE detail = 'regress_young'"), '1',
	'a younger row stays');

$node->stop;
done_testing();
