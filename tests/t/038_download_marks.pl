# The download mark (Decree 30, Appendix VI, III.6k: "đánh dấu vào văn bản,
# tài liệu ... được in ra từ Hệ thống"), judged by real tools on an issued
# PDF that carries the leader's signature and the organisation's seal:
#   - file_copy(file) gives a copy whose every page ends with one line
#     naming who took it and when, in Vietnamese (pdftotext reads it);
#   - the copy begins with the stored file byte for byte (an incremental
#     update), qpdf --check finds it sound, and pdfsig still finds both
#     signatures valid, as revisions before the mark (not the whole file);
#   - the stored file is unchanged (its sha256, its row), and
#     file_content(file) gives it as stored;
#   - each download is one row of the access log (copy, download);
#   - a transaction that wrote nothing but its access log row commits
#     without waiting for its WAL (the log's cost on a download), one that
#     wrote anything else, before or after, waits as before (pg_stat_wal);
#   - the worker digests the log into checkpoints, access_log_verify()
#     finds it intact, and names the range of a row changed.
use strict;
use warnings;
use File::Basename qw(dirname);
use lib dirname(__FILE__);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use IofficeTest;
use PdfSigning;

for my $tool (qw(pdfsig qpdf pdftotext))
{
	plan skip_all => "$tool is not installed" if system("command -v $tool >/dev/null 2>&1") != 0;
}
plan skip_all => 'the font Liberation Serif (fonts-liberation2) is not installed'
  unless -r '/usr/share/fonts/truetype/liberation2/LiberationSerif-Italic.ttf';

my ($node, $pki) = pdf_signing_node('download_marks');
my $dir = PostgreSQL::Test::Utils::tempdir;
my $make_pdf = dirname(__FILE__) . '/../pdf/make_pdf.pl';

system_or_bail('perl', $make_pdf, 2, "$dir/two.pdf", 'Cong van hai trang');
my ($doc, $file, $issued) = issue_pdf($node, 'marks', "$dir/two.pdf");
my $stored_sha = $node->safe_psql('postgres', "SELECT encode(sha256(content), 'hex') FROM ioffice.file WHERE id = $file");
my $files_before = table_digest($node, 'postgres', 'file');

# --- the marked copy ------------------------------------------------------------
my $copy = bytea_to_file($node, 'postgres', 'dai', "ioffice.file_copy($file)", 'marked.pdf');
{
	my ($text) = run_command([ 'pdftotext', $copy, '-' ]);
	my @marks = $text =~ /Bản tải về từ hệ thống bởi Trần Văn Đại \(dai\) lúc \d\d:\d\d ngày \d\d\/\d\d\/\d{4}/g;
	is(scalar @marks, 2, 'pdftotext reads the mark, in Vietnamese, on each of the two pages') or diag($text);
	like($text, qr/Cong van hai trang - trang 2/, 'the pages\' own text is still there');
	my ($orig) = run_command([ 'pdftotext', $issued, '-' ]);
	unlike($orig, qr/Bản tải về/, 'the stored file carries no mark');
}
{
	my $stored = slurp_file($issued);
	my $marked = slurp_file($copy);
	ok(length $marked > length $stored && substr($marked, 0, length $stored) eq $stored,
		'the copy begins with the stored file byte for byte (an incremental update)');
}
{
	my ($out, $err) = run_command([ 'qpdf', '--check', $copy ]);
	like($out, qr/No syntax or stream encoding errors found/, 'qpdf --check finds the marked copy sound')
	  or diag($out . $err);
	($out, $err) = run_command([ 'pdfsig', $copy ]);
	my @valid = $out =~ /Signature Validation: Signature is Valid/g;
	is(scalar @valid, 2, 'pdfsig: both signatures of the original still verify in the copy') or diag($out . $err);
	my @partial = $out =~ /- Not total document signed/g;
	is(scalar @partial, 2, 'pdfsig: both are revisions before the mark') or diag($out);
}

# --- the stored file ------------------------------------------------------------
is($node->safe_psql('postgres', "SELECT encode(sha256(content), 'hex') FROM ioffice.file WHERE id = $file"),
	$stored_sha, 'the stored file\'s sha256 is unchanged');
is(table_digest($node, 'postgres', 'file'), $files_before, 'no file row was added or changed');
is(as_actor($node, 'postgres', 'regress_thuy', "SELECT encode(sha256(ioffice.file_content($file)), 'hex')"),
	$stored_sha, 'file_content() gives the stored bytes');

# --- the unsigned draft, and a second copy by another person ----------------------
my $draft = $node->safe_psql('postgres', "SELECT min(id) FROM ioffice.file WHERE document_id = $doc");
my $draft_copy = bytea_to_file($node, 'postgres', 'regress_luan', "ioffice.file_copy($draft)", 'draft_marked.pdf');
{
	my ($text) = run_command([ 'pdftotext', $draft_copy, '-' ]);
	like($text, qr/Bản tải về từ hệ thống bởi Tòng Văn Luân \(regress_luan\) lúc/, 'the draft\'s copy names its taker');
	my ($out, $err) = run_command([ 'qpdf', '--check', $draft_copy ]);
	like($out, qr/No syntax or stream encoding errors found/, 'qpdf --check finds the draft\'s copy sound');
}

# --- the access log -------------------------------------------------------------
is($node->safe_psql('postgres',
	"SELECT string_agg(p.login || ':' || a.action || ':' || (a.file_id = CASE a.action WHEN 'copy' THEN "
	. "  CASE p.login WHEN 'dai' THEN $file ELSE $draft END ELSE $file END) || ':' || (a.document_id = $doc), ',' "
	. "ORDER BY a.ctid) FROM ioffice.access_log a JOIN ioffice.person p ON p.id = a.person_id "
	. "WHERE a.document_id = $doc AND a.action IN ('copy', 'download')"),
	'dai:copy:true:true,regress_thuy:download:true:true,regress_luan:copy:true:true',
	'each download is one row of the access log, the marked copies as copies');

# an encrypted or broken PDF is refused, and leaves no row
{
	my $bad = as_actor($node, 'postgres', 'regress_luan',
		"SELECT ioffice.create_outgoing('CV', 'Tệp hỏng')");
	my $bad_file = as_actor($node, 'postgres', 'regress_luan',
		"SELECT ioffice.attach($bad, 'hong.pdf', convert_to('%PDF-1.4 hỏng', 'UTF8'))");
	my ($ret, $out, $err) = try_as_actor($node, 'postgres', 'regress_luan', "SELECT ioffice.file_copy($bad_file)");
	like($err, qr/the marked copy of file \d+ could not be made/, 'a broken PDF: no copy, a clear error');
	is($node->safe_psql('postgres', "SELECT count(*) FROM ioffice.access_log WHERE document_id = $bad"), '0',
		'the refused copy left no row');
}

# --- the commit of a download -------------------------------------------------
# WAL writes by backends and the WAL writer (pg_stat_wal.wal_write; the test
# cluster runs with fsync off, so wal_sync stays 0): a commit that waits
# for its WAL writes it itself, one write each; async commits are written
# by the WAL writer in batches.  40 transactions in one session, quickly.
{
	$node->safe_psql('postgres', 'CREATE TABLE public.side_effect (n int)');
	my $writes = sub {
		my ($body) = @_;
		my $before = $node->safe_psql('postgres', 'SELECT wal_write FROM pg_stat_wal');
		$node->safe_psql('postgres', join("\n", map {
			"BEGIN; SET LOCAL ioffice.actor = 'dai'; $body; COMMIT;" } 1 .. 40)
			. "\nSELECT pg_stat_force_next_flush();");
		# the WAL writer reports its own writes in its loop
		sleep 1;
		$node->safe_psql('postgres', 'SELECT pg_stat_force_next_flush()');
		return $node->safe_psql('postgres', 'SELECT wal_write FROM pg_stat_wal') - $before;
	};
	my $only_log = $writes->("SELECT length(ioffice.file_content($file))");
	my $log_then_write = $writes->("SELECT length(ioffice.file_content($file)); INSERT INTO public.side_effect VALUES (1)");
	my $write_then_log = $writes->("INSERT INTO public.side_effect VALUES (1); SELECT length(ioffice.file_content($file))");
	cmp_ok($only_log, '<', 20, "40 downloads alone do not wait for their WAL ($only_log writes)");
	cmp_ok($log_then_write, '>=', 40, "40 downloads followed by a write wait as before ($log_then_write writes)");
	cmp_ok($write_then_log, '>=', 40, "40 writes followed by a download wait as before ($write_then_log writes)");
	is($node->safe_psql('postgres', "SELECT count(*) FROM ioffice.access_log WHERE file_id = $file AND action = 'download'"),
		'121', 'every one of them is in the access log');
}

# --- the worker digests the log (tamper evidence) ----------------------------
# about once a minute, the rows older than 10 seconds into chained
# checkpoints, each hash also in the audit trail; access_log_verify() finds
# it intact, then names the range of a row changed behind the trigger's back
ok($node->poll_query_until('postgres',
	"SELECT (SELECT sum(rows) FROM ioffice.access_log_checkpoint) = (SELECT count(*) FROM ioffice.access_log)"),
	'the worker has digested every row of the access log');
is($node->safe_psql('postgres',
	"SELECT count(*) = (SELECT count(*) FROM ioffice.access_log_checkpoint) FROM ioffice.audit WHERE chain = 'access_log'"),
	't', 'each checkpoint is in the audit trail');
is($node->safe_psql('postgres', 'SELECT count(*) FROM ioffice.access_log_verify()'), '0',
	'the access log verifies');
my $cp = $node->safe_psql('postgres', qq{
BEGIN;
SET LOCAL session_replication_role = replica;
UPDATE ioffice.access_log SET action = 'download' WHERE ctid = (SELECT min(ctid) FROM ioffice.access_log WHERE action = 'copy');
SELECT checkpoint_id || ': ' || problem FROM ioffice.access_log_verify();
ROLLBACK;});
like($cp, qr/^\d+: the range's rows were altered \(\d+ rows, as recorded\)$/,
	'a copy rewritten as a download is found, in its range');
is($node->safe_psql('postgres', 'SELECT count(*) FROM ioffice.access_log_verify()'), '0',
	'and the log verifies again once undone');

$node->stop;
done_testing();
