#!/usr/bin/perl
# make_pdf.pl PAGES OUT.pdf [TITLE]: a plain PDF 1.4 of PAGES A4 pages of
# text (Helvetica), with a classic xref table -- the simplest real input
# for the PDF signing tests and the benchmark (qpdf turns it into one with
# object and xref streams).
use strict;
use warnings;

my ($pages, $out, $title) = @ARGV;
die "usage: make_pdf.pl PAGES OUT.pdf [TITLE]\n" unless $pages && $out;
$title //= 'Cong van so';
my @obj;
my $font = 3;
my $first_page = 4;
$obj[1] = "<< /Type /Catalog /Pages 2 0 R >>";
my @kids = map { ($first_page + 2 * $_) . " 0 R" } 0 .. $pages - 1;
$obj[2] = "<< /Type /Pages /Kids [@kids] /Count $pages >>";
$obj[$font] = "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>";
for my $p (0 .. $pages - 1)
{
	my ($page, $content) = ($first_page + 2 * $p, $first_page + 2 * $p + 1);
	my $text = "BT /F1 14 Tf 72 770 Td ($title - trang " . ($p + 1) . ") Tj ET\n";
	$text .= "BT /F1 11 Tf 72 " . (740 - 14 * $_) . " Td (Dong $_ cua trang " . ($p + 1) . ".) Tj ET\n" for 1 .. 40;
	$obj[$page] = "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
	  . "/Resources << /Font << /F1 $font 0 R >> >> /Contents $content 0 R >>";
	$obj[$content] = "<< /Length " . length($text) . " >>\nstream\n${text}endstream";
}
my $pdf = "%PDF-1.4\n%\xe2\xe3\xcf\xd3\n";
my @offset;
for my $i (1 .. $#obj)
{
	$offset[$i] = length $pdf;
	$pdf .= "$i 0 obj\n$obj[$i]\nendobj\n";
}
my $xref = length $pdf;
$pdf .= "xref\n0 " . (@obj) . "\n0000000000 65535 f \n";
$pdf .= sprintf("%010d 00000 n \n", $offset[$_]) for 1 .. $#obj;
$pdf .= "trailer\n<< /Size " . (@obj) . " /Root 1 0 R >>\nstartxref\n$xref\n%%EOF\n";
open my $fh, '>:raw', $out or die "$out: $!";
print $fh $pdf;
close $fh;
