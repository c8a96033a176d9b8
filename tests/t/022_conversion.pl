# Word to PDF before signing (issue 12, item 1): a real .docx with the Decree
# 30 header of seed 000 (made here with soffice from tests/docs_src) is
# attached, the leader signs, and the signing worker has LibreOffice, running
# in a helper process outside the server, convert it: the current file is a
# PDF whose text keeps the Vietnamese diacritics and whose fonts are Liberation
# Serif (Times New Roman's metric twin) embedded; the Word file is kept, the
# PDF names it (converted_from, replaces_id) and was made from its exact bytes
# (the audit record's SHA-256).  One soffice serves every conversion.  A
# corrupt .docx and a conversion that hangs past ioffice.convert_timeout fail
# their jobs with the reason while another document's signing goes through;
# soffice is started again after the hang.  The clerk's seal on a Word file
# of an issued (final) document converts it too: the worker's PDF is the one
# new version such a document accepts, and nobody else can add one.
use strict;
use warnings;
use File::Basename qw(dirname);
use File::Copy qw(copy);
use lib dirname(__FILE__);
use IofficeTest;
use Time::HiRes qw(usleep time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;


my $soffice = '/usr/lib/libreoffice/program/soffice';
plan skip_all => 'LibreOffice (libreoffice-writer-nogui) is not installed' unless -x $soffice;
plan skip_all => 'python3-uno is not installed'
  unless system('/usr/bin/python3', '-c', 'import uno') == 0;
plan skip_all => 'poppler-utils is not installed' unless -x '/usr/bin/pdftotext';

my ($pki, $keystore) = make_keystore();
copy("$pki/seal.key", "$keystore/seal.key") or die "copy seal.key: $!";
chmod 0600, "$keystore/seal.key";
my $dir = PostgreSQL::Test::Utils::tempdir;

# --- a real .docx from the committed flat ODT, with soffice ------------------
my $src = dirname(__FILE__) . '/../docs_src/nd30_cong_van.fodt';
copy($src, "$dir/nd30_cong_van.fodt") or die "copy $src: $!";
system_or_bail($soffice, '--headless', '--norestore', "-env:UserInstallation=file://$dir/profile",
	'--convert-to', 'docx:MS Word 2007 XML', '--outdir', $dir, "$dir/nd30_cong_van.fodt");
my $docx = slurp_file("$dir/nd30_cong_van.docx");
ok(length($docx) > 1000 && substr($docx, 0, 2) eq 'PK', 'soffice made a .docx of the ND30 letter');
my $docx_hex = unpack('H*', $docx);

# a corrupt one that still looks like a .docx (word/document.xml cut in half)
system_or_bail('/usr/bin/python3', '-c', q{
import sys, zipfile
src = zipfile.ZipFile(sys.argv[1]); out = zipfile.ZipFile(sys.argv[2], 'w', zipfile.ZIP_DEFLATED)
for i in src.infolist():
    data = src.read(i.filename)
    out.writestr(i, data[:len(data) // 2] if i.filename == 'word/document.xml' else data)
out.close()
}, "$dir/nd30_cong_van.docx", "$dir/corrupt.docx");
my $corrupt_hex = unpack('H*', slurp_file("$dir/corrupt.docx"));

# --- the server: the test hook makes a file named "…__treo__…" hang ----------------
$ENV{IOFFICE_CONVERT_TEST_HANG} = '__treo__';
my $node = PostgreSQL::Test::Cluster->new('conversion');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'ioffice'
ioffice.worker_databases = 'postgres'
ioffice.keystore = '$keystore'
ioffice.keystore_personal = on
ioffice.worker_naptime = 1
ioffice.convert_timeout = 8
});
$node->start;
delete $ENV{IOFFICE_CONVERT_TEST_HANG};
signing_setup($node, 'postgres', $pki);
my $chain = slurp_file("$pki/intermediate.pem");
$node->safe_psql('postgres', qq{
SELECT ioffice.add_person('regress_thuy', 'Tòng Văn Thủy', 'Văn thư', 1, '{clerk}');
SELECT ioffice.register_certificate('organisation', '000.00.32.H41', @{[ sql_literal(slurp_file("$pki/seal.pem") . $chain) ]}, 'seal.key');
});

# a draft with the file $name of the bytes $hex, submitted to dai
sub new_doc
{
	my ($name, $hex, $request) = @_;
	$request //= 'true';
	my $doc = as_actor($node, 'postgres', 'regress_luan', "SELECT ioffice.create_outgoing('CV', 'Hướng dẫn ký số $name')");
	as_actor($node, 'postgres', 'regress_luan', "SELECT ioffice.attach($doc, '$name', decode('$hex', 'hex'))");
	as_actor($node, 'postgres', 'regress_luan',
		"SELECT ioffice.act($doc, 'submit', 'dai', NULL, '{\"request_signature\": $request}')");
	return $doc;
}

sub sign
{
	my ($doc) = @_;
	as_actor($node, 'postgres', 'dai', "SELECT ioffice.act($doc, 'sign')");
}

sub settled
{
	my ($doc) = @_;
	return $node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM ioffice.signature WHERE document_id = $doc AND status = 'pending'");
}

sub sql1 { return $node->safe_psql('postgres', $_[0]) }

sub soffice_pid { return sql1("SELECT coalesce(soffice_pid, 0) FROM ioffice.worker_status") }

# is $pid a live soffice.bin with its private profile under the data directory?
sub soffice_alive
{
	my ($pid) = @_;
	return 0 unless $pid && -r "/proc/$pid/cmdline";
	my $cmd = slurp_file("/proc/$pid/cmdline");
	return $cmd =~ /soffice\.bin/ && $cmd =~ /pgsql_tmp_ioffice_convert/ ? 1 : 0;
}

# --- the leader signs the .docx: the worker converts, then signs the PDF -----
my $t0 = time;
my $doc = new_doc('du_thao.docx', $docx_hex);
my $word = sql1("SELECT id FROM ioffice.file WHERE document_id = $doc");
sign($doc);
ok(settled($doc), 'the signature was done');
note(sprintf('first conversion, soffice started: %.1f s', time - $t0));
# (the PDF's signature is inside it: the signed PDF is the next version of
# the converted one, and the document's current file)
is(sql1("SELECT s.status, f.kind, f.name, f.converted_from = $word, f.replaces_id = $word,
             g.replaces_id = f.id AND g.superseded_at IS NULL
        FROM ioffice.signature s JOIN ioffice.file f ON f.id = s.file_id
        JOIN ioffice.file g ON g.id = s.signed_file_id WHERE s.document_id = $doc"),
	"done|pdf|du_thao.pdf|t|t|t", 'the signature is of the PDF, which names the Word file it came from');
my $pdf = sql1("SELECT file_id FROM ioffice.signature WHERE document_id = $doc");
my $signed = sql1("SELECT signed_file_id FROM ioffice.signature WHERE document_id = $doc");
is(sql1("SELECT kind, superseded_at IS NOT NULL, removed_at IS NULL, content = decode('$docx_hex', 'hex')
        FROM ioffice.file WHERE id = $word"),
	'docx|t|t|t', 'the Word file is kept, byte for byte, superseded by the PDF');
is(sql1("SELECT detail->>'source_sha256' = encode(w.sha256, 'hex') AND detail->>'sha256' = encode(p.sha256, 'hex')
        FROM ioffice.audit a, ioffice.file w, ioffice.file p
       WHERE a.chain = 'document:$doc' AND a.action = 'convert' AND a.entity_id = $pdf
         AND w.id = $word AND p.id = $pdf"),
	't', 'the audit record ties the PDF to the SHA-256 of the Word bytes the leader asked to sign');
is(as_actor($node, 'postgres', 'dai', "SELECT string_agg(kind || ':' || valid, ',') FROM ioffice.verify($signed)"),
	'personal:true', 'verify(): the leader\'s signature of the PDF is valid');

my $pdf_path = bytea_to_file($node, 'postgres', 'dai', "(SELECT content FROM ioffice.file WHERE id = $signed)", 'du_thao.pdf');
my ($sigs) = run_command([ 'pdfsig', $pdf_path ]);
like($sigs, qr/Signature #1:.*?Signature Validation: Signature is Valid/s,
	'pdfsig: the letter made from the Word file carries the leader\'s valid signature inside it');
my ($text, $err) = run_command([ 'pdftotext', '-layout', $pdf_path, '-' ]);
like($text, qr/ỦY BAN NHÂN DÂN/, 'the PDF\'s text: ỦY BAN NHÂN DÂN');
like($text, qr/HUYỆN SỐP CỘP/, 'the PDF\'s text: HUYỆN SỐP CỘP');
like($text, qr/CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM/, 'the PDF\'s text: CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM');
like($text, qr/Độc lập - Tự do - Hạnh phúc/, 'the PDF\'s text: Độc lập - Tự do - Hạnh phúc');
like($text, qr/Trần Văn Đại/, 'the PDF\'s text: the signer\'s name');
my ($fonts) = run_command([ 'pdffonts', $pdf_path ]);
like($fonts, qr/^\S+\+LiberationSerif\s.*\byes\s+yes\s+yes\b/m,
	'pdffonts: Times New Roman is Liberation Serif, embedded (subset, with ToUnicode)');
like($fonts, qr/LiberationSerif-Bold\s/, 'pdffonts: the bold header in Liberation Serif Bold');
unlike($fonts, qr/DejaVu|Arial|Helvetica|Courier|Symbol|OpenSymbol/, 'pdffonts: no fallback font');
is(as_actor($node, 'postgres', 'dai', "SELECT ioffice.act($doc, 'approve', 'regress_thuy')"), 'awaiting_issue',
	'the leader approves: the signed PDF is the current file');

my $pid = soffice_pid();
ok(soffice_alive($pid), "soffice.bin ($pid) runs with its profile under the data directory");

# --- two more conversions, the same soffice ----------------------------------
my @docs = map { new_doc("van_ban_$_.docx", $docx_hex) } (1, 2);
$t0 = time;
sign($_) for @docs;
ok(settled($_), "document $_ signed") for @docs;
note(sprintf('two conversions and signatures through the running soffice: %.1f s', time - $t0));
is(sql1("SELECT count(*) FROM ioffice.signature s JOIN ioffice.file f ON f.id = s.file_id
       WHERE s.document_id IN (@{[ join(',', @docs) ]}) AND s.status = 'done' AND f.kind = 'pdf'"),
	'2', 'both signed as PDFs');
is(soffice_pid(), $pid, 'the same soffice converted them (not started per file)');
ok(soffice_alive($pid), 'and it still runs');
is(sql1("SELECT conversions_done, conversions_failed, conversions_pending FROM ioffice.worker_status"),
	'3|0|0', 'worker_status: three conversions, none failed, none waiting');

# --- an OpenDocument text (.odt), when the DBA allows the type --------------
system_or_bail('/usr/bin/python3', '-c', q{
import sys, zipfile
ns = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
      'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"')
z = zipfile.ZipFile(sys.argv[1], 'w')
z.writestr(zipfile.ZipInfo('mimetype'), 'application/vnd.oasis.opendocument.text')
z.writestr('META-INF/manifest.xml', '<?xml version="1.0" encoding="UTF-8"?>'
  '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.3">'
  '<manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.text"/>'
  '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>',
  zipfile.ZIP_DEFLATED)
z.writestr('content.xml', '<?xml version="1.0" encoding="UTF-8"?><office:document-content ' + ns +
  ' office:version="1.3"><office:body><office:text><text:p>Tờ trình về việc ký số văn bản điện tử</text:p>'
  '</office:text></office:body></office:document-content>', zipfile.ZIP_DEFLATED)
z.close()
}, "$dir/to_trinh.odt");
my $odt_hex = unpack('H*', slurp_file("$dir/to_trinh.odt"));
my $odt_doc = as_actor($node, 'postgres', 'regress_luan', "SELECT ioffice.create_outgoing('CV', 'Tờ trình ODT')");
my ($odt_rc, $odt_out, $odt_err) = try_as_actor($node, 'postgres', 'regress_luan',
	"SELECT ioffice.attach($odt_doc, 'to_trinh.odt', decode('$odt_hex', 'hex'))");
like($odt_err, qr/file type odt is not allowed/, 'attach() recognises an .odt, refused by default');
as_actor($node, 'postgres', 'regress_luan', "SET LOCAL ioffice.allowed_file_types = 'pdf,docx,odt';
	SELECT ioffice.attach($odt_doc, 'to_trinh.odt', decode('$odt_hex', 'hex'));
	SELECT ioffice.act($odt_doc, 'submit', 'dai', NULL, '{\"request_signature\": true}')");
sign($odt_doc);
ok(settled($odt_doc), 'the .odt document was signed');
is(sql1("SELECT s.status, f.name FROM ioffice.signature s JOIN ioffice.file f ON f.id = s.file_id WHERE s.document_id = $odt_doc"),
	'done|to_trinh.pdf', 'the .odt became a PDF, which was signed');
my $odt_pdf = bytea_to_file($node, 'postgres', 'dai',
	"(SELECT content FROM ioffice.file WHERE document_id = $odt_doc AND kind = 'pdf' AND superseded_at IS NULL)", 'to_trinh.pdf');
($text) = run_command([ 'pdftotext', $odt_pdf, '-' ]);
like($text, qr/Tờ trình về việc ký số văn bản điện tử/, 'its text is in the PDF');
is(soffice_pid(), $pid, 'by the same soffice');

# --- a corrupt .docx fails its job with the reason ---------------------------
my $bad = new_doc('hong.docx', $corrupt_hex);
sign($bad);
ok(settled($bad), 'the corrupt file\'s job was taken');
my ($st, $reason) = split /\|/, sql1("SELECT status, reason FROM ioffice.signature WHERE document_id = $bad");
is($st, 'failed', 'the corrupt .docx: its signature failed');
like($reason, qr/^conversion to PDF failed: .*could not open/, "with the reason ($reason)");
is(sql1("SELECT kind, superseded_at IS NULL FROM ioffice.file WHERE document_id = $bad"), 'docx|t',
	'its Word file stays the current file');
my ($rc, $out, $stderr) = try_as_actor($node, 'postgres', 'dai', "SELECT ioffice.act($bad, 'approve', 'regress_thuy')");
like($stderr, qr/is not signed/, 'approve stays refused');
is(soffice_pid(), $pid, 'soffice survived the corrupt file');

# --- a hung conversion: stopped at the time limit, other signing goes on -----
my $hung = new_doc('van_ban__treo__.docx', $docx_hex);
my $t_hang = time;
sign($hung);
ok($node->poll_query_until('postgres', "SELECT signer_state = 'converting' FROM ioffice.worker_status"),
	'the worker is converting the file that hangs');
my $other = new_doc_to_sign($node, 'postgres', 'Công văn PDF trong lúc treo');
sign($other);
ok(settled($other), 'another document is signed meanwhile');
my $waited = time - $t_hang;
is(sql1("SELECT s.status FROM ioffice.signature s WHERE s.document_id = $hung"), 'pending',
	sprintf('while the hung conversion is still under way (%.1f s after it began)', $waited));
is(sql1("SELECT status FROM ioffice.signature WHERE document_id = $other"), 'done', 'that signature is done');
ok(settled($hung), 'the hung conversion ended');
($st, $reason) = split /\|/, sql1("SELECT status, reason FROM ioffice.signature WHERE document_id = $hung");
is($st, 'failed', 'the hung conversion failed its job');
like($reason, qr/longer than 8 s \(ioffice\.convert_timeout\)/, "with the reason ($reason)");
ok(time - $t_hang >= 8, 'not before the time limit');
ok($node->poll_query_until('postgres', "SELECT soffice_pid IS NULL FROM ioffice.worker_status")
	  && !soffice_alive($pid), 'the hung soffice was killed');

# --- the next file starts a new soffice -------------------------------------
my $next = new_doc('sau_khi_dung.docx', $docx_hex);
sign($next);
ok(settled($next), 'the next conversion after the hang');
is(sql1("SELECT s.status, f.kind FROM ioffice.signature s JOIN ioffice.file f ON f.id = s.file_id WHERE s.document_id = $next"),
	'done|pdf', 'is converted and signed');
my $pid2 = soffice_pid();
ok($pid2 != $pid && soffice_alive($pid2), "by a new soffice ($pid2)");

# --- the seal on a Word file of an issued document ---------------------------
# (no signature requested: the leader approves the .docx as it is; issuing
# freezes the document for good, and the seal's job converts it)
my $issued = new_doc('phat_hanh.docx', $docx_hex, 'false');
my $issued_word = sql1("SELECT id FROM ioffice.file WHERE document_id = $issued");
as_actor($node, 'postgres', 'dai', "SELECT ioffice.act($issued, 'approve', 'regress_thuy')");
is(as_actor($node, 'postgres', 'regress_thuy', "SELECT ioffice.act($issued, 'issue')"), 'issued', 'the clerk issues the .docx');
ok(settled($issued), 'the seal\'s job was taken');
is(sql1("SELECT s.kind, s.status, f.kind, f.converted_from = $issued_word
        FROM ioffice.signature s JOIN ioffice.file f ON f.id = s.file_id WHERE s.document_id = $issued"),
	"organisation|done|pdf|t", 'the issued document\'s seal is on the PDF made from its Word file');
($rc, $out, $stderr) = $node->psql('postgres',
	"INSERT INTO ioffice.file (document_id, name, kind, size, sha256, content, replaces_id, converted_from, uploaded_by)
	 SELECT $issued, 'gia.pdf', 'pdf', 9, sha256('%PDF-1.4 '), '%PDF-1.4 ', $issued_word, $issued_word, uploaded_by
	   FROM ioffice.file WHERE id = $issued_word");
like($stderr, qr/is issued: its files can no longer change/,
	'nobody else may add a "converted" version to an issued document');

is(sql1("SELECT count(*) FROM ioffice.audit_verify()"), '0', 'the audit trail is intact');
ok(!$node->log_contains(qr/server process .* was terminated|terminated by signal/),
	'no server process crashed');

$node->stop;
ok(!soffice_alive($pid2), 'soffice is gone with the server');
done_testing();
