# PAdES signatures inside PDFs, judged by real tools: the leader's signature
# then the organisation's, each an incremental update made by the PDF helper
# (PoDoFo) and signed by the worker; pdfsig lists both valid (the leader's
# still valid after the clerk's), qpdf --check finds the PDF sound, openssl
# cms -verify accepts each CMS over its /ByteRange bytes; verify() reports
# both with their revisions; one changed byte makes verify() and pdfsig say
# invalid.  Also a PDF that already had an incremental update, and one with
# object and xref streams (qpdf --object-streams=generate).
use strict;
use warnings;
use File::Basename qw(dirname);
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

my ($node, $pki) = pdf_signing_node('pdf_signatures');
my $dir = PostgreSQL::Test::Utils::tempdir;
my $make_pdf = dirname(__FILE__) . '/../pdf/make_pdf.pl';

# the /ByteRange and /Contents of every signature in the file, in order
sub signatures_in
{
	my ($bytes) = @_;
	my @sigs;
	while ($bytes =~ /\/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]/g)
	{
		push @sigs, [ $1, $2, $3, $4 ];
	}
	return @sigs;
}

sub check_issued
{
	my ($label, $file, $path) = @_;
	my ($out, $err) = run_command([ 'pdfsig', $path ]);
	my @valid = $out =~ /Signature Validation: Signature is Valid/g;
	is(scalar @valid, 2, "$label: pdfsig lists two valid signatures") or diag($out . $err);
	like($out, qr/Signature #1:(?:(?!Signature #2).)*Not total document signed/s, "$label: pdfsig: the leader's signature covers its revision");
	like($out, qr/Signature #2:.*?\n\s*- Total document signed/s, "$label: pdfsig: the seal covers the whole document");
	like($out, qr/ETSI\.CAdES\.detached/, "$label: pdfsig reads PAdES (ETSI.CAdES.detached)");
	($out, $err) = run_command([ 'qpdf', '--check', $path ]);
	like($out, qr/No syntax or stream encoding errors found/, "$label: qpdf --check finds the PDF sound") or diag($out . $err);

	my $bytes = slurp_file($path);
	my @sigs = signatures_in($bytes);
	is(scalar @sigs, 2, "$label: two /ByteRange in the file");
	my $i = 0;
	for my $br (@sigs)
	{
		$i++;
		my ($a, $b, $c, $d) = @$br;
		my $content = substr($bytes, $a, $b) . substr($bytes, $c, $d);
		my $hex = substr($bytes, $b + 1, $c - $b - 2);
		# the CMS is as long as its DER header says: the zeros after it pad
		# /Contents (stripping trailing zeros would cut a CMS ending in 0x00)
		my $der = pack('H*', $hex);
		my $l = ord(substr($der, 1, 1));
		my ($head, $len) = (2, $l);
		if ($l >= 0x80)
		{
			$head = 2 + ($l & 0x7f);
			$len = 0;
			$len = $len * 256 + ord(substr($der, 2 + $_, 1)) for 0 .. ($l & 0x7f) - 1;
		}
		write_bytes("$dir/$label-range$i.bin", $content);
		write_bytes("$dir/$label-sig$i.der", substr($der, 0, $head + $len));
		($out, $err) = run_command([ 'openssl', 'cms', '-verify', '-inform', 'DER', '-in', "$dir/$label-sig$i.der",
			'-content', "$dir/$label-range$i.bin", '-binary', '-CAfile', "$pki/root.pem", '-purpose', 'any', '-out', '/dev/null' ]);
		like($err, qr/Verification successful/, "$label: openssl cms -verify accepts signature $i over its /ByteRange");
		($out, $err) = run_command([ 'openssl', 'cms', '-cmsout', '-print', '-inform', 'DER', '-in', "$dir/$label-sig$i.der" ]);
		like($out, qr/id-smime-aa-signingCertificateV2/, "$label: signature $i carries signing-certificate-v2");
		unlike($out, qr/signingTime/, "$label: signature $i has no signing-time attribute (PAdES B-B: /M gives the time)");
	}
	is(as_actor($node, 'postgres', 'dai',
		"SELECT string_agg(concat_ws(':', kind, revision, after_signing, valid, coalesce(reason, '-')), ',' ORDER BY revision) FROM ioffice.verify($file)"),
		'personal:2:signatures:t:-,organisation:3:none:t:-',
		"$label: verify() reports both embedded signatures, their revisions, and that only a signature came after the leader's");
	like(as_actor($node, 'postgres', 'dai', "SELECT string_agg(signer || '/' || subject, ' | ' ORDER BY revision) FROM ioffice.verify($file)"),
		qr/^Trần Văn Đại\/CN=Trần Văn Đại.* \| Tòng Văn Thủy\/CN=UBND huyện Sốp Cộp/,
		"$label: verify() names the signers (the seal: the clerk who issued) and their certificates");
	return;
}

# --- a plain two-page PDF -----------------------------------------------------
system_or_bail('perl', $make_pdf, 2, "$dir/two.pdf", 'Cong van hai trang');
my ($doc, $file, $issued) = issue_pdf($node, 'plain', "$dir/two.pdf");
check_issued('plain', $file, $issued);
{
	my $draft = slurp_file("$dir/two.pdf");
	ok(substr(slurp_file($issued), 0, length $draft) eq $draft, 'the issued PDF begins with the exact bytes of the draft');
}

# the files are frozen: the signed versions were the only new ones
{
	my ($rc, $out, $err) = $node->psql('postgres',
		"INSERT INTO ioffice.file (document_id, name, kind, size, sha256, content, replaces_id, uploaded_by) "
		. "SELECT document_id, name, kind, size, sha256, content || 'x'::bytea, id, uploaded_by FROM ioffice.file WHERE id = $file");
	like($err, qr/its files can no longer change/, 'nobody else adds a version to the issued document, not even a superuser');
}

# --- one changed byte -----------------------------------------------------------
{
	my $bytes = slurp_file($issued);
	my $at = index($bytes, 'Dong 3 cua trang 1');
	substr($bytes, $at + 5, 1) = '8';
	write_bytes("$dir/changed.pdf", $bytes);
	my ($out, $err) = run_command([ 'pdfsig', "$dir/changed.pdf" ]);
	my @valid = $out =~ /Signature Validation: Signature is Valid/g;
	is(scalar @valid, 0, 'pdfsig: one changed byte of the first revision invalidates both signatures') or diag($out);
	$node->safe_psql('postgres', "SET session_replication_role = replica; "
		. "UPDATE ioffice.file SET content = decode('" . unpack('H*', $bytes) . "', 'hex') WHERE id = $file");
	is(as_actor($node, 'postgres', 'dai', "SELECT string_agg(valid || ':' || reason, ',' ORDER BY revision) FROM ioffice.verify($file)"),
		'false:content changed,false:content changed', 'verify(): one changed byte, both signatures invalid');
}

# --- a PDF that already has an incremental update ---------------------------------
{
	my $bytes = slurp_file("$dir/two.pdf");
	my ($prev) = $bytes =~ /startxref\s+(\d+)\s+%%EOF\s*\z/;
	my $at = length $bytes;
	my $obj = "3 0 obj\n<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Name /F1 >>\nendobj\n";
	my $xref = $at + length $obj;
	$bytes .= $obj . "xref\n0 1\n0000000000 65535 f \n3 1\n" . sprintf("%010d 00000 n \n", $at)
	  . "trailer\n<< /Size 8 /Root 1 0 R /Prev $prev >>\nstartxref\n$xref\n%%EOF\n";
	write_bytes("$dir/updated.pdf", $bytes);
	my ($out) = run_command([ 'qpdf', '--check', "$dir/updated.pdf" ]);
	like($out, qr/No syntax or stream encoding errors/, 'the hand-made incremental update is sound');
	my ($udoc, $ufile, $uissued) = issue_pdf($node, 'updated', "$dir/updated.pdf");
	my ($sigout) = run_command([ 'pdfsig', $uissued ]);
	my @valid = $sigout =~ /Signature Validation: Signature is Valid/g;
	is(scalar @valid, 2, 'a PDF with an earlier incremental update: pdfsig lists two valid signatures') or diag($sigout);
	is(as_actor($node, 'postgres', 'dai',
		"SELECT string_agg(concat_ws(':', kind, revision, after_signing, valid), ',' ORDER BY revision) FROM ioffice.verify($ufile)"),
		'personal:3:signatures:t,organisation:4:none:t', 'verify(): the revisions count the earlier update');
}

# --- object and xref streams -------------------------------------------------------
{
	system_or_bail('qpdf', '--object-streams=generate', "$dir/two.pdf", "$dir/objstm.pdf");
	like(slurp_file("$dir/objstm.pdf"), qr/\/Type\s*\/ObjStm/, 'qpdf made a PDF with object streams');
	my ($odoc, $ofile, $oissued) = issue_pdf($node, 'objstm', "$dir/objstm.pdf");
	check_issued('objstm', $ofile, $oissued);
}

# --- a content change after the leader's signature is reported -------------------------
{
	# the leader's revision, then a revision that rewrites page 1's text
	my $leader = bytea_to_file($node, 'postgres', 'dai',
		"(SELECT f.content FROM ioffice.file f JOIN ioffice.signature s ON s.signed_file_id = f.id WHERE s.document_id = $doc AND s.kind = 'personal')",
		'leader.pdf');
	my $bytes = slurp_file($leader);
	my ($prev) = $bytes =~ /startxref\s+(\d+)\s+%%EOF\s*\z/;
	my $text = "BT /F1 14 Tf 72 770 Td (Noi dung khac) Tj ET\n";
	my $at = length $bytes;
	my $obj = "5 0 obj\n<< /Length " . length($text) . " >>\nstream\n${text}endstream\nendobj\n";
	my $xref = $at + length $obj;
	$bytes .= $obj . "xref\n0 1\n0000000000 65535 f \n5 1\n" . sprintf("%010d 00000 n \n", $at)
	  . "trailer\n<< /Size 12 /Root 1 0 R /Prev $prev >>\nstartxref\n$xref\n%%EOF\n";
	my $hdoc = as_actor($node, 'postgres', 'regress_luan', "SELECT ioffice.create_outgoing('CV', 'Sửa sau khi ký')");
	my $hfile = as_actor($node, 'postgres', 'regress_luan',
		"SELECT ioffice.attach($hdoc, 'sua.pdf', decode('" . unpack('H*', $bytes) . "', 'hex'))");
	is(as_actor($node, 'postgres', 'regress_luan',
		"SELECT string_agg(concat_ws(':', revision, valid, after_signing, reason), ',') FROM ioffice.verify($hfile)"),
		'2:f:content: object 5 changed:the document was changed after this signature',
		'verify(): a page changed after the signature is a change of content, not a signature');
}

# --- the images: the leader's signature, the seal at real size over its left third ---
SKIP:
{
	skip 'pdftoppm or python3 is not installed', 9
	  if system('command -v pdftoppm >/dev/null && command -v python3 >/dev/null') != 0;
	my $make_png = dirname(__FILE__) . '/../pdf/make_png.py';
	system_or_bail('python3', $make_png, 'signature', "$dir/sig.png");
	system_or_bail('python3', $make_png, 'seal', "$dir/seal.png");
	my ($rc, $out, $err) = $node->psql('postgres',
		"SELECT ioffice.set_seal_image(1, convert_to('not a png', 'UTF8'), 35)");
	like($err, qr/a seal image must be a PNG/, 'set_seal_image refuses what is not a PNG');
	$node->safe_psql('postgres',
		"SELECT ioffice.set_signature_image('dai', decode('" . file_hex("$dir/sig.png") . "', 'hex'));"
		. "SELECT ioffice.set_seal_image(1, decode('" . file_hex("$dir/seal.png") . "', 'hex'), 35)");
	my ($idoc, $ifile, $iissued) = issue_pdf($node, 'images', "$dir/two.pdf");
	my ($sigout) = run_command([ 'pdfsig', $iissued ]);
	my @valid = $sigout =~ /Signature Validation: Signature is Valid/g;
	is(scalar @valid, 2, 'images: pdfsig lists two valid signatures') or diag($sigout);

	# page 2 at 72 dpi: one pixel a point
	system_or_bail('pdftoppm', '-r', '72', '-f', '2', '-l', '2', $iissued, "$dir/page");
	my ($ppm) = glob("$dir/page*.ppm");
	my $img = slurp_file($ppm);
	my ($w, $h, $data) = $img =~ /\AP6\s+(\d+)\s+(\d+)\s+255\s(.*)\z/s or die 'not a PPM';
	my (%blue, %red);
	for my $y (0 .. $h - 1)
	{
		for my $x (0 .. $w - 1)
		{
			my ($r, $g, $b) = unpack('C3', substr($data, ($y * $w + $x) * 3, 3));
			my $box = ($b > 150 && $r < 100 && $g < 120) ? \%blue : ($r > 150 && $g < 100 && $b < 100) ? \%red : undef;
			next unless $box;
			$box->{x0} = $x if !defined $box->{x0} || $x < $box->{x0};
			$box->{x1} = $x if !defined $box->{x1} || $x > $box->{x1};
			$box->{y0} = $y if !defined $box->{y0} || $y < $box->{y0};
			$box->{y1} = $y if !defined $box->{y1} || $y > $box->{y1};
		}
	}
	ok(defined $blue{x0}, 'the leader\'s signature image is on the last page, in blue');
	ok(defined $red{x0}, 'the seal is on the last page, in red');
	my $d = 35 * 72 / 25.4;
	my $seal_w = $red{x1} - $red{x0} + 1;
	ok(abs($seal_w - $d) < 0.05 * $d, "the seal is at its real size, 35 mm ($seal_w px, expected about @{[ int $d ]})");
	my $blue_w = $blue{x1} - $blue{x0} + 1;
	my $covered = ($red{x1} - $blue{x0} + 1) / $blue_w;
	ok($red{x0} < $blue{x0}, 'the seal stands out on the left of the signature');
	ok($covered > 0.2 && $covered < 0.45, sprintf('the seal covers about a third of the signature image (%.2f)', $covered));
	my $dy = abs(($red{y0} + $red{y1}) / 2 - ($blue{y0} + $blue{y1}) / 2);
	ok($dy < 15, "the seal is centred on the signature's height ($dy px apart)");
	ok($blue{y0} > $h / 2, 'the signature is in the lower half of the page (the signature block\'s usual place)');
}

$node->stop;
done_testing();
