# register_export(register, year, 'xlsx') read back by a real xlsx reader
# (openpyxl): the title, Decree 30's headings in order, the print setup of a
# bound book (A4 landscape, headings repeated on every page, borders, wrapped
# text), and every cell equal to what the view outgoing_register holds, in
# the order of the register's numbers (past 99, where text order would
# differ).
use strict;
use warnings;

use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use IofficeTest;

my $python = python_with_openpyxl();
plan skip_all => 'python3 with openpyxl is not installed' unless defined $python;

my $node = PostgreSQL::Test::Cluster->new('register_export');
$node->init(extra => [ '--encoding=UTF8', '--no-locale' ]);
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'ioffice'\n");
$node->start;

my $pdf_sql = q{convert_to('%PDF-1.4 Sốp Cộp', 'UTF8')};

$node->safe_psql('postgres', 'CREATE EXTENSION ioffice');
my $agency_name = 'UBND huyện Sốp Cộp';
my $ubnd = $node->safe_psql('postgres',
	qq{SELECT ioffice.add_agency('$agency_name', 'UBND', '000.00.32.H41')});
$node->safe_psql('postgres',
	q{SELECT ioffice.add_agency('UBND xã Mường Lạn', 'UBND', '001.32.32.H41')});
my $vp = $node->safe_psql('postgres',
	qq{SELECT ioffice.add_department($ubnd, 'Văn phòng HĐND-UBND', 'VP')});
$node->safe_psql(
	'postgres', qq{
	SELECT ioffice.add_person('regress_luan', 'Tòng Văn Luân', 'Chuyên viên', $vp, '{specialist}');
	SELECT ioffice.add_person('dai', 'Trần Văn Đại', 'Chánh Văn phòng', $vp, '{leader}');
	SELECT ioffice.add_person('regress_thuy', 'Tòng Văn Thủy', 'Văn thư', $ubnd, '{clerk}');
});
my $year = $node->safe_psql('postgres',
	q{SELECT extract(year FROM now() AT TIME ZONE ioffice.timezone())});
my ($reg, $secret) = split /\|/, $node->safe_psql(
	'postgres', qq{
	SELECT (SELECT id FROM ioffice.register WHERE agency_id = $ubnd AND code = 'outgoing'),
	       (SELECT id FROM ioffice.register WHERE agency_id = $ubnd AND code = 'outgoing_secret')});

# create, attach, submit, approve, issue
sub issue
{
	my ($type, $abstract, $details) = @_;
	my $doc = as_actor($node, 'postgres', 'regress_luan',
		"SELECT ioffice.create_outgoing('$type', \$a\$$abstract\$a\$, \$d\$$details\$d\$)");
	as_actor($node, 'postgres', 'regress_luan', qq{SELECT ioffice.attach($doc, 'van_ban.pdf', $pdf_sql)});
	as_actor($node, 'postgres', 'regress_luan', qq{SELECT ioffice.act($doc, 'submit', 'dai')});
	as_actor($node, 'postgres', 'dai', qq{SELECT ioffice.act($doc, 'approve', 'regress_thuy')});
	is(as_actor($node, 'postgres', 'regress_thuy', qq{SELECT ioffice.act($doc, 'issue')}), 'issued', "$type issued");
	return $doc;
}

my $long = 'V/v triển khai ' . join(', ', map { "nhiệm vụ số $_ về chuyển đổi số" } 1 .. 13);
issue('CV', "V/v in sổ \"đăng ký\", đóng quyển\nvà lưu trữ",
	'{"signer": "dai", "copies": 3, "comment": "Gửi kèm \"phụ lục\"\nbản chính",'
	  . ' "recipients": ["001.32.32.H41", "Sở Nội vụ tỉnh Sơn La, phòng Văn thư"]}');
issue('QĐ', $long, '{"signer": "dai", "copies": 12}');
# numbers taken by another system, past 99: the book must follow the numbers,
# not the text of the symbols
as_actor($node, 'postgres', 'regress_thuy',
	"DO \$\$ BEGIN FOR i IN 1..110 LOOP PERFORM ioffice.take_number($reg, 'TB'); END LOOP; END \$\$");
issue('KH', 'Kế hoạch sau các số lấy ngoài', '{}');
issue('CV', 'Văn bản mật về sổ', '{"confidentiality": "confidential", "copies": 2}');

# the export as bytes in a file, then the workbook as openpyxl sees it
sub export_xlsx
{
	my ($login, $id, $name, $yr) = @_;
	$yr //= $year;
	return bytea_to_file($node, 'postgres', $login,
		"ioffice.register_export($id, $yr, 'xlsx')", "$name.xlsx");
}

my $reader = <<'PY';
import json, sys
import openpyxl
from openpyxl.utils import get_column_letter
wb = openpyxl.load_workbook(sys.argv[1])
ws = wb.worksheets[0]
rows = []
for row in ws.iter_rows():
    cells = []
    for c in row:
        v = c.value
        if hasattr(v, 'strftime'):
            v = {'date': v.strftime('%Y-%m-%d %H:%M:%S'), 'format': c.number_format}
        cells.append(v)
    rows.append(cells)
# every cell of the table, headings included, bordered and wrapped
heading = next(i for i, r in enumerate(rows) if r and r[0] == 'Số, ký hiệu văn bản') + 1
bare = []
for row in ws.iter_rows(min_row=heading, max_row=ws.max_row, max_col=10):
    for c in row:
        b = c.border
        if not (b.left.style == b.right.style == b.top.style == b.bottom.style == 'thin'
                and c.alignment.wrap_text):
            bare.append(c.coordinate)
ps = ws.page_setup
out = {'sheets': wb.sheetnames, 'title': wb.properties.title,
       'merged': sorted(str(r) for r in ws.merged_cells.ranges),
       'freeze': ws.freeze_panes, 'rows': rows, 'bare': bare,
       'widths': [ws.column_dimensions[get_column_letter(i)].width for i in range(1, 11)],
       'print': {'titles': ws.print_title_rows, 'orientation': ps.orientation,
                 'paper': int(ps.paperSize) if ps.paperSize is not None else None,
                 'fit': bool(ws.sheet_properties.pageSetUpPr and ws.sheet_properties.pageSetUpPr.fitToPage),
                 'fit_width': int(ps.fitToWidth) if ps.fitToWidth is not None else 1,
                 'fit_height': int(ps.fitToHeight) if ps.fitToHeight is not None else 1,
                 'footer': ws.oddFooter.center.text}}
sys.stdout.buffer.write(json.dumps(out, ensure_ascii=False).encode('utf-8'))
PY

sub read_xlsx
{
	my ($path) = @_;
	return python_json($python, $reader, $path);
}

# the view's rows of a register and year, as the workbook should hold them
sub view_rows
{
	my ($code) = @_;
	my $json = as_actor($node, 'postgres', 
		'regress_thuy', qq{SELECT coalesce(json_agg(json_build_array(symbol,
		    to_char(issued_on, 'YYYY-MM-DD') || ' 00:00:00', type_and_abstract, signer,
		    recipients, archive_unit, copies, to_char(sent_on, 'YYYY-MM-DD') || ' 00:00:00',
		    receipt, note) ORDER BY number), '[]')
		  FROM ioffice.outgoing_register
		  WHERE agency_id = $ubnd AND register_code = '$code' AND year = $year});
	return JSON::PP->new->decode($json);
}

my @headings = (
	'Số, ký hiệu văn bản', 'Ngày tháng văn bản',
	'Tên loại và trích yếu nội dung văn bản', 'Người ký',
	'Nơi nhận văn bản', 'Đơn vị, người nhận bản lưu',
	'Số lượng bản', 'Ngày chuyển',
	'Ký nhận', 'Ghi chú');
my %date_col = (1 => 1, 7 => 1);

# every cell of the table against the view; returns the headings row's index
sub check_book
{
	my ($book, $want, $what) = @_;
	my @rows = @{ $book->{rows} };
	my ($h) = grep { defined $rows[$_][0] && $rows[$_][0] eq $headings[0] } 0 .. $#rows;
	ok(defined $h, "$what: a headings row");
	is_deeply($rows[$h], \@headings, "$what: Decree 30's headings, in order");
	is(scalar(@rows) - $h - 1, scalar(@$want), "$what: " . scalar(@$want) . ' rows, one per entry');
	my $bad = 0;
	for my $i (0 .. $#$want)
	{
		my $got = $rows[ $h + 1 + $i ];
		for my $col (0 .. 9)
		{
			my $w = $want->[$i][$col];
			my $g = $got->[$col];
			if ($date_col{$col})
			{
				$w = undef if defined $w && $w eq '';
				if (ref $g eq 'HASH')
				{
					$bad++ unless $g->{format} eq 'dd/mm/yyyy';
					$g = $g->{date};
				}
			}
			next if (!defined $w && !defined $g) || (defined $w && defined $g && $w eq $g);
			$bad++;
			diag("$what: row " . ($i + 1) . " column $col: got " . ($g // 'empty')
				  . ', want ' . ($w // 'empty'));
		}
	}
	is($bad, 0, "$what: every cell equals the view (" . 10 * @$want . ' cells, dates as dd/mm/yyyy)');
	is_deeply($book->{bare}, [], "$what: every table cell bordered and wrapped");
	return $h;
}

my $book = read_xlsx(export_xlsx('regress_thuy', $reg, 'register'));
my $want = view_rows('outgoing');
my @rows = @{ $book->{rows} };

is_deeply($book->{sheets}, ['Sổ đăng ký văn bản đi'], 'one sheet, named in Vietnamese');
is($book->{title}, 'Sổ đăng ký văn bản đi', 'workbook title');
is($rows[0][0], 'SỔ ĐĂNG KÝ VĂN BẢN ĐI', 'title row');
is($rows[1][0], "Cơ quan: $agency_name", 'the agency');
is($rows[2][0], 'Sổ văn bản: Sổ văn bản đi', 'the register');
is($rows[3][0], "Năm: $year", 'the year');
is_deeply($book->{merged}, [ 'A1:J1', 'A2:J2', 'A3:J3', 'A4:J4' ],
	'title rows merged across the table');

my $h = check_book($book, $want, 'outgoing register');
is($book->{freeze}, 'A' . ($h + 2), 'panes frozen below the headings');
my $print = $book->{print};
is($print->{titles}, '$' . ($h + 1) . ':$' . ($h + 1), 'the headings row repeated on every printed page');
is($print->{orientation}, 'landscape', 'landscape');
is($print->{paper}, 9, 'A4');
ok($print->{fit} && $print->{fit_width} == 1 && $print->{fit_height} == 0,
	'fitted to the page width, as many pages down as needed');
like($print->{footer} // '', qr/&P/, 'pages numbered in the footer');
my @w = @{ $book->{widths} };
ok(!(grep { !defined $_ || $_ < 8 } @w), 'every column has a width: ' . join(', ', map { int } @w));
my ($widest) = sort { $w[$b] <=> $w[$a] } 0 .. 9;
is($widest, 2, 'the abstract column is the widest');

# the checks above compare with the view; these pin what the view must hold,
# so that an empty or shifted register cannot pass
my @numbers = map { (split m{/}, $_->[0])[0] + 0 } @rows[ $h + 1 .. $#rows ];
is_deeply(\@numbers, [ 1 .. 113 ], 'numbers 1 to 113 in order, gapless, 100 after 99');
my ($first) = grep { $_->[0] =~ m{^01/} } @rows[ $h + 1 .. $#rows ];
is($first->[2], "Công văn V/v in sổ \"đăng ký\", đóng quyển\nvà lưu trữ",
	'type and abstract, quotes and line break kept');
is($first->[4], 'UBND xã Mường Lạn; Sở Nội vụ tỉnh Sơn La, phòng Văn thư', 'recipients');
is($first->[3], 'Trần Văn Đại', 'signer');
is($first->[6], 3, 'copies, a number cell');
is($first->[8], undef, 'Ký nhận left empty for the pen');
is($first->[9], "Gửi kèm \"phụ lục\"\nbản chính", 'note');
is($rows[ $h + 2 ][2], "Quyết định $long", 'a long abstract kept whole');
is($rows[ $h + 3 ][9], 'số lấy từ hệ thống khác', 'a number taken by another system');
is($rows[-1][0], '113/KH-UBND', 'the plan issued after the taken numbers closes the book');

# the confidential series, exported by its clerk
my $sbook = read_xlsx(export_xlsx('regress_thuy', $secret, 'secret'));
is($sbook->{rows}[2][0], 'Sổ văn bản: Sổ văn bản đi mật', 'the confidential register');
my $sh = check_book($sbook, view_rows('outgoing_secret'), 'confidential register');
is($sbook->{rows}[ $sh + 1 ][0], '01/UBND-VP-M', 'its one document, in its own series');

# a year the register was not used: title and headings only
my $ebook = read_xlsx(export_xlsx('regress_thuy', $reg, 'empty', $year - 1));
is($ebook->{rows}[3][0], 'Năm: ' . ($year - 1), 'last year\'s book');
check_book($ebook, [], 'a year without entries');
is(scalar @{ $ebook->{rows} }, $h + 1, 'nothing below the headings');

$node->stop;
done_testing();
