# What a signature looks like (Decree 30, Appendix I, II.3, 4, 7d, 8), judged
# by real tools on a seed-shaped letter made here with LibreOffice (the ND30
# header of seed 000: "Số:      /UBND-VP", "Sốp Cộp, ngày    tháng    năm",
# the signature block ending with the leader's title and full name):
#   - issue writes the register's number and the issue date into the
#     blanks, in the organisation's signature's own update: pdftotext reads
#     "Số: <nn>/UBND-VP" and "ngày DD tháng M năm YYYY" (a leading zero for
#     days under 10 and months 1 and 2 only); pdfsig lists both signatures
#     valid, qpdf --check finds it sound, verify() calls what came after the
#     leader's signature "signatures" (annotations and a field), and one
#     changed byte makes both say invalid;
#   - the leader's signature image (blue) sits between the title and the
#     name (pdftotext -bbox), the seal (red) over its left third;
#   - a draft without a "Số:" line is issued all the same, nothing written,
#     and the audit record of the seal says so.
use strict;
use warnings;
use File::Basename qw(dirname);
use File::Copy qw(copy);
use lib dirname(__FILE__);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use IofficeTest;
use PdfSigning;

my $soffice = '/usr/lib/libreoffice/program/soffice';
plan skip_all => 'LibreOffice (libreoffice-writer-nogui) is not installed' unless -x $soffice;
for my $tool (qw(pdfsig qpdf pdftotext pdftoppm python3))
{
	plan skip_all => "$tool is not installed" if system("command -v $tool >/dev/null 2>&1") != 0;
}

my ($node, $pki) = pdf_signing_node('issue_stamp');
my $dir = PostgreSQL::Test::Utils::tempdir;

# --- the draft: the committed ND30 letter, with blanks and the leader's name ---
my $fodt = slurp_file(dirname(__FILE__) . '/../docs_src/nd30_cong_van.fodt');
ok($fodt =~ /ngày<text:s text:c="8"\/>tháng<text:s text:c="8"\/>năm</,
	'the letter\'s date line is "ngày … tháng … năm" with blanks');
ok($fodt =~ /Trần Văn Đại/, 'the signature block names the leader who signs');
ok($fodt =~ /Số:<text:s text:c="6"\/>\/UBND-VP/, 'the number line is "Số:      /UBND-VP"');
write_bytes("$dir/cong_van.fodt", $fodt);
system_or_bail($soffice, '--headless', '--norestore', "-env:UserInstallation=file://$dir/profile",
	'--convert-to', 'pdf', '--outdir', $dir, "$dir/cong_van.fodt");
{
	my ($text) = run_command([ 'pdftotext', "$dir/cong_van.pdf", '-' ]);
	like($text, qr/Số: \/UBND-VP/, 'the draft: pdftotext reads the blank number');
}

# the images: the leader's signature (blue) and the seal (red, 35 mm)
my $make_png = dirname(__FILE__) . '/../pdf/make_png.py';
system_or_bail('python3', $make_png, 'signature', "$dir/sig.png");
system_or_bail('python3', $make_png, 'seal', "$dir/seal.png");
$node->safe_psql('postgres',
	"SELECT ioffice.set_signature_image('dai', decode('" . file_hex("$dir/sig.png") . "', 'hex'));"
	. "SELECT ioffice.set_seal_image(1, decode('" . file_hex("$dir/seal.png") . "', 'hex'), 35)");

my ($doc, $file, $issued) = issue_pdf($node, 'stamp', "$dir/cong_van.pdf");

# --- the number and the date ----------------------------------------------------
my ($number, $issued_on) = split /\|/, $node->safe_psql('postgres',
	"SELECT ioffice.format_number(number) || '|' || issued_on FROM ioffice.document WHERE id = $doc");
my ($y, $m, $d) = split /-/, $issued_on;
my $month = $m < 3 ? $m : $m + 0;    # Decree 30: a leading zero for January and February only
my ($text) = run_command([ 'pdftotext', $issued, '-' ]);
like($text, qr/Số: \Q$number\E\/UBND-VP/, "pdftotext: the register's number is written (Số: $number/UBND-VP)");
like($text, qr/ngày $d tháng $month năm $y/, "pdftotext: the issue date is written as Decree 30 writes it (ngày $d tháng $month năm $y)");
is($node->safe_psql('postgres',
	"SELECT string_agg(a.detail->>'kind' || ':' || coalesce(a.detail->>'stamp', '-'), ',' ORDER BY a.id) FROM ioffice.audit a "
	. "WHERE a.entity = 'signature' AND a.action = 'signed' AND a.entity_id IN (SELECT id FROM ioffice.signature WHERE document_id = $doc)"),
	'personal:-,organisation:the number and the date written',
	'the audit record of the seal says the number and the date were written');

# the months: the leading zero for 1 and 2 only (the helper's own --date)
{
	my $helper = $node->config_data('--pkglibdir') . '/ioffice_pdf';
	for my $case ([ '2026-02-05', 'ngày 05 tháng 02 năm 2026' ], [ '2026-03-09', 'ngày 09 tháng 3 năm 2026' ],
		[ '2026-12-25', 'ngày 25 tháng 12 năm 2026' ])
	{
		my ($date, $want) = @$case;
		my ($out) = run_command([ 'sh', '-c', "'$helper' prepare --number 7 --date $date < '$dir/cong_van.pdf'" ]);
		$out =~ s/\A[^\n]*\n//;
		write_bytes("$dir/dated.pdf", $out);
		my ($t) = run_command([ 'pdftotext', "$dir/dated.pdf", '-' ]);
		like($t, qr/\Q$want\E/, "the date $date is written \"$want\"");
	}
}

# --- the signatures under it ------------------------------------------------------
{
	my ($out, $err) = run_command([ 'pdfsig', $issued ]);
	my @valid = $out =~ /Signature Validation: Signature is Valid/g;
	is(scalar @valid, 2, 'pdfsig lists both signatures valid: the stamp did not break the leader\'s') or diag($out . $err);
	like($out, qr/Signature #2:.*?\n\s*- Total document signed/s, 'pdfsig: the seal covers the whole document, the stamp with it');
	($out, $err) = run_command([ 'qpdf', '--check', $issued ]);
	like($out, qr/No syntax or stream encoding errors found/, 'qpdf --check finds the stamped PDF sound') or diag($out . $err);
	is(as_actor($node, 'postgres', 'dai',
		"SELECT string_agg(concat_ws(':', kind, revision, after_signing, valid, coalesce(reason, '-')), ',' ORDER BY revision) FROM ioffice.verify($file)"),
		'personal:2:signatures:t:-,organisation:3:none:t:-',
		'verify(): the leader\'s signature is valid and the stamp after it is no change of content');
	my $draft = slurp_file("$dir/cong_van.pdf");
	ok(substr(slurp_file($issued), 0, length $draft) eq $draft, 'the issued PDF begins with the exact bytes of the draft');
}

# --- where the images are: the signature between title and name, the seal on its left third ---
{
	my ($bbox) = run_command([ 'pdftotext', '-bbox', '-l', '1', $issued, '-' ]);
	my (@name, @title);
	while ($bbox =~ /<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)<\/word>/g)
	{
		@name = ($1, $2, $3, $4) if $5 eq 'Trần' && !@name;
		$name[2] = $3 if $5 eq 'Đại' && @name;
		# the title's last line: TL. CHỦ TỊCH / CHÁNH VĂN PHÒNG
		@title = ($1, $2, $3, $4) if $5 eq 'PHÒNG';
	}
	ok(@name && @title, 'pdftotext -bbox finds the title (… CHÁNH VĂN PHÒNG) and the name');
	system_or_bail('pdftoppm', '-r', '72', '-f', '1', '-l', '1', $issued, "$dir/page");
	my ($ppm) = glob("$dir/page*.ppm");
	my ($w, $h, $data) = slurp_file($ppm) =~ /\AP6\s+(\d+)\s+(\d+)\s+255\s(.*)\z/s or die 'not a PPM';
	my (%blue, %red);
	for my $py (0 .. $h - 1)
	{
		for my $px (0 .. $w - 1)
		{
			my ($r, $g, $b) = unpack('C3', substr($data, ($py * $w + $px) * 3, 3));
			my $box = ($b > 150 && $r < 100 && $g < 120) ? \%blue : ($r > 150 && $g < 100 && $b < 100) ? \%red : undef;
			next unless $box;
			$box->{x0} = $px if !defined $box->{x0} || $px < $box->{x0};
			$box->{x1} = $px if !defined $box->{x1} || $px > $box->{x1};
			$box->{y0} = $py if !defined $box->{y0} || $py < $box->{y0};
			$box->{y1} = $py if !defined $box->{y1} || $py > $box->{y1};
		}
	}
	ok(defined $blue{x0} && defined $red{x0}, 'the signature (blue) and the seal (red) are on the page');
	ok($blue{y1} <= $name[1] + 1, "the signature image is above the signer's name ($blue{y1} <= $name[1])");
	ok($blue{y0} >= $title[3] - 1, "the signature image is below the title line ($blue{y0} >= $title[3])");
	my $mid = ($blue{x0} + $blue{x1}) / 2;
	ok(abs($mid - ($name[0] + $name[2]) / 2) < 3, "the signature image is centred on the name ($mid)");
	my $gap_mid = ($title[3] + $name[1]) / 2;
	ok(abs(($blue{y0} + $blue{y1}) / 2 - $gap_mid) < 3, 'the signature image is centred between the title and the name');
	my $covered = ($red{x1} - $blue{x0} + 1) / ($blue{x1} - $blue{x0} + 1);
	ok($red{x0} < $blue{x0} && $covered > 0.2 && $covered < 0.45,
		sprintf('the seal covers about a third of the signature image, on its left (%.2f)', $covered));
}

# --- one changed byte of the draft's revision ------------------------------------------
{
	my $bytes = slurp_file($issued);
	my $at = index($bytes, '/Producer<FEFF004C');    # "LibreOffice", in UTF-16
	ok($at > 0 && $at < length(slurp_file("$dir/cong_van.pdf")), 'the draft names its producer');
	substr($bytes, $at + 17, 1) = 'D';               # "L" becomes "M"
	write_bytes("$dir/changed.pdf", $bytes);
	my ($out) = run_command([ 'pdfsig', "$dir/changed.pdf" ]);
	my @valid = $out =~ /Signature Validation: Signature is Valid/g;
	is(scalar @valid, 0, 'pdfsig: one changed byte invalidates both signatures') or diag($out);
	$node->safe_psql('postgres', "SET session_replication_role = replica; "
		. "UPDATE ioffice.file SET content = decode('" . unpack('H*', $bytes) . "', 'hex') WHERE id = $file");
	is(as_actor($node, 'postgres', 'dai', "SELECT string_agg(valid || ':' || reason, ',' ORDER BY revision) FROM ioffice.verify($file)"),
		'false:content changed,false:content changed', 'verify(): one changed byte, both signatures invalid');
}

# --- the font: Times' metric twin, embedded (a subset) ----------------------------------
{
	my ($fonts) = run_command([ 'pdffonts', $issued ]);
	like($fonts, qr/^[A-Z]{6}\+LiberationSerif\s+CID TrueType\s+Identity-H\s+yes\s+yes\s+yes/m,
		'pdffonts: the stamp\'s font is Liberation Serif, embedded as a subset, with a Unicode map');
}

# the words of page 1 at the top right (above 20 mm, right of the middle)
sub top_right_words
{
	my ($path) = @_;
	my ($bbox) = run_command([ 'pdftotext', '-bbox', '-f', '1', '-l', '1', $path, '-' ]);
	my ($width) = $bbox =~ /<page width="([\d.]+)"/;
	my @words;
	while ($bbox =~ /<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)<\/word>/g)
	{
		push @words, $5 if $4 < 20 * 72 / 25.4 && $1 > $width / 2 && $3 < $width - 30;
	}
	return join(' ', @words);
}

# the page's red pixels (the seal image)
sub red_pixels
{
	my ($path, $page) = @_;
	unlink glob("$dir/red*.ppm");
	system_or_bail('pdftoppm', '-r', '36', '-f', $page, '-l', $page, $path, "$dir/red");
	my ($ppm) = glob("$dir/red*.ppm");
	my ($w, $h, $data) = slurp_file($ppm) =~ /\AP6\s+(\d+)\s+(\d+)\s+255\s(.*)\z/s or die 'not a PPM';
	my $n = 0;
	for my $i (0 .. $w * $h - 1)
	{
		my ($r, $g, $b) = unpack('C3', substr($data, $i * 3, 3));
		$n++ if $r > 150 && $g < 100 && $b < 100;
	}
	return $n;
}

# --- an attachment in a file of its own: the seal without image, its text at the top right ---
{
	system_or_bail('perl', dirname(__FILE__) . '/../pdf/make_pdf.pl', 2, "$dir/phu_luc.pdf", 'Phu luc');
	my $adoc = as_actor($node, 'postgres', 'regress_luan', "SELECT ioffice.create_outgoing('CV', 'Công văn có phụ lục')");
	as_actor($node, 'postgres', 'regress_luan',
		"SELECT ioffice.attach($adoc, 'cong_van.pdf', decode('" . file_hex("$dir/cong_van.pdf") . "', 'hex'))");
	as_actor($node, 'postgres', 'regress_luan',
		"SELECT ioffice.attach($adoc, 'phu_luc.pdf', decode('" . file_hex("$dir/phu_luc.pdf") . "', 'hex'))");
	as_actor($node, 'postgres', 'regress_luan', "SELECT ioffice.act($adoc, 'submit', 'dai', NULL, '{\"request_signature\": true}')");
	as_actor($node, 'postgres', 'dai', "SELECT ioffice.act($adoc, 'sign', NULL, NULL, '{\"mode\": \"auto\"}')");
	ok(wait_signatures($node, $adoc), 'two files: the leader\'s signatures are made');
	as_actor($node, 'postgres', 'dai', "SELECT ioffice.act($adoc, 'approve', 'regress_thuy')");
	is(as_actor($node, 'postgres', 'regress_thuy', "SELECT ioffice.act($adoc, 'issue')"), 'issued', 'two files: issued');
	ok(wait_signatures($node, $adoc), 'two files: the organisation\'s signatures are made');
	my ($symbol) = $node->safe_psql('postgres', "SELECT symbol FROM ioffice.document WHERE id = $adoc");
	my @files = split /\n/, $node->safe_psql('postgres',
		"SELECT id FROM ioffice.file WHERE document_id = $adoc AND superseded_at IS NULL AND removed_at IS NULL ORDER BY name");
	my $main = bytea_to_file($node, 'postgres', 'dai', "(SELECT content FROM ioffice.file WHERE id = $files[0])", 'att-main.pdf');
	my $annex = bytea_to_file($node, 'postgres', 'dai', "(SELECT content FROM ioffice.file WHERE id = $files[1])", 'att-annex.pdf');
	my ($t) = run_command([ 'pdftotext', $main, '-' ]);
	like($t, qr/Số: \Q$symbol\E/, "the main file carries the number ($symbol)");
	ok(red_pixels($main, 1) > 100, 'the main file carries the seal image');
	like(top_right_words($annex), qr/^\Q$symbol\E \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+07:00$/,
		'the attachment: its number and symbol and the signing time (ISO 8601, +07:00) at the top right of page 1');
	is(red_pixels($annex, 1) + red_pixels($annex, 2), 0, 'the attachment\'s organisation signature shows no seal image');
	my ($out) = run_command([ 'pdfsig', $annex ]);
	my @valid = $out =~ /Signature Validation: Signature is Valid/g;
	is(scalar @valid, 2, 'the attachment: pdfsig lists both signatures valid') or diag($out);
	is(as_actor($node, 'postgres', 'dai',
		"SELECT string_agg(concat_ws(':', kind, after_signing, valid), ',' ORDER BY revision) FROM ioffice.verify($files[1])"),
		'personal:signatures:t,organisation:none:t', 'the attachment: verify() calls the text after the leader\'s signature no change of content');
	is($node->safe_psql('postgres',
		"SELECT string_agg(a.detail->>'stamp', ',' ORDER BY f.name) FROM ioffice.audit a JOIN ioffice.signature s ON s.id = a.entity_id "
		. "JOIN ioffice.file f ON f.id = s.file_id "
		. "WHERE a.entity = 'signature' AND a.action = 'signed' AND s.document_id = $adoc AND s.kind = 'organisation'"),
		'the number and the date written,the text at the top right of page 1 written',
		'the audit records of the seals say what each wrote');

	# a copy: the kind of copy, the copying agency and the time, at the top right
	my $copy = as_actor($node, 'postgres', 'regress_thuy', "SELECT ioffice.copy_document($adoc, 'SY')");
	ok(wait_signatures($node, $copy), 'the copy\'s signatures are made');
	my ($cfile) = $node->safe_psql('postgres',
		"SELECT min(id) FROM ioffice.file WHERE document_id = $copy AND superseded_at IS NULL AND removed_at IS NULL");
	my $cpdf = bytea_to_file($node, 'postgres', 'dai', "(SELECT content FROM ioffice.file WHERE id = $cfile)", 'copy.pdf');
	like(top_right_words($cpdf), qr/^Sao y UBND huyện Sốp Cộp \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+07:00$/,
		'the copy: "Sao y", the copying agency and the signing time at the top right of page 1');
	($out) = run_command([ 'pdfsig', $cpdf ]);
	@valid = $out =~ /Signature Validation: Signature is Valid/g;
	is(scalar @valid, 3, 'the copy: pdfsig lists its three signatures valid') or diag($out);
}

# --- a draft without a "Số:" line is issued all the same ---------------------------------
{
	system_or_bail('perl', dirname(__FILE__) . '/../pdf/make_pdf.pl', 1, "$dir/plain.pdf", 'Cong van khong so');
	my ($pdoc, $pfile, $pissued) = issue_pdf($node, 'plain', "$dir/plain.pdf");
	my ($out) = run_command([ 'pdfsig', $pissued ]);
	my @valid = $out =~ /Signature Validation: Signature is Valid/g;
	is(scalar @valid, 2, 'without a "Số:" line: issued, both signatures valid') or diag($out);
	like($node->safe_psql('postgres',
		"SELECT a.detail->>'stamp' FROM ioffice.audit a JOIN ioffice.signature s ON s.id = a.entity_id "
		. "WHERE a.entity = 'signature' AND a.action = 'signed' AND s.document_id = $pdoc AND s.kind = 'organisation'"),
		qr/^nothing written: no blank "Số:   \/…" on page 1; no "ngày … tháng … năm" on page 1$/,
		'the audit record of the seal says nothing was written, and why');
}

$node->stop;
done_testing();
