# trail_export(doc, 'xlsx') read back by a real xlsx reader (openpyxl): the
# headings, and every cell equal to what trail() returns (names, requests,
# notes, real date cells in ioffice.timezone).  Then exports cancelled at
# random points of building the workbook: no file, directory or descriptor
# of an export stays behind, and the backend's memory does not grow.
use strict;
use warnings;

use JSON::PP;
use Time::HiRes qw(gettimeofday tv_interval);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use IofficeTest;

my $python = python_with_openpyxl();
plan skip_all => 'python3 with openpyxl is not installed' unless defined $python;

my $node = PostgreSQL::Test::Cluster->new('trail_export');
$node->init(extra => [ '--encoding=UTF8', '--no-locale' ]);
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'ioffice'\n");
$node->start;

my $pdf_sql = q{convert_to('%PDF-1.4 Sốp Cộp', 'UTF8')};

$node->safe_psql('postgres', 'CREATE EXTENSION ioffice');
my $ubnd = $node->safe_psql('postgres',
	q{SELECT ioffice.add_agency('UBND huyện Sốp Cộp', 'UBND', '000.00.32.H41')});
my $vp = $node->safe_psql('postgres',
	qq{SELECT ioffice.add_department($ubnd, 'Văn phòng HĐND-UBND', 'VP')});
$node->safe_psql(
	'postgres', qq{
	SELECT ioffice.add_person('regress_luan', 'Tòng Văn Luân', 'Chuyên viên', $vp, '{specialist}');
	SELECT ioffice.add_person('dai', 'Trần Văn Đại', 'Chánh Văn phòng', $vp, '{leader}');
	SELECT ioffice.add_person('loi', 'Lê Tiến Lợi', 'Chủ tịch', $ubnd, '{leader}');
	SELECT ioffice.add_person('kien', 'Tòng Thị Kiên', 'Phó Chủ tịch', $ubnd, '{leader}');
	SELECT ioffice.add_person('regress_thuy', 'Tòng Văn Thủy', 'Văn thư', $ubnd, '{clerk}');
});

# Case B's shape: submitted with a deadline and a note that needs care,
# forwarded, approved by a delegate ("thay"), issued.
my $abstract = 'Kế hoạch tuyên truyền chuyển đổi số năm 2026, "đợt 1"';
my $doc = as_actor($node, 'postgres', 'regress_luan', qq{SELECT ioffice.create_outgoing('KH', '$abstract')});
as_actor($node, 'postgres', 'regress_luan', qq{SELECT ioffice.attach($doc, 'ke_hoach.pdf', $pdf_sql)});
as_actor($node, 'postgres', 'regress_luan',
	qq{SELECT ioffice.act($doc, 'submit', 'dai', E'Kính trình anh Đại, xem "dự thảo"\\nrồi cho ý kiến', '{"deadline": "2030-12-31"}')}
);
as_actor($node, 'postgres', 'dai', qq{SELECT ioffice.act($doc, 'forward', 'loi', 'Kính chuyển Chủ tịch; đã thẩm định')});
as_actor($node, 'postgres', 'loi', q{SELECT ioffice.delegate('kien', now(), now() + interval '1 day')});
as_actor($node, 'postgres', 'kien', qq{SELECT ioffice.act($doc, 'approve', 'regress_thuy', 'Đồng ý phát hành')});
is(as_actor($node, 'postgres', 'regress_thuy', qq{SELECT ioffice.act($doc, 'issue')}), 'issued', 'document issued');
my $symbol = $node->safe_psql('postgres', "SELECT symbol FROM ioffice.document WHERE id = $doc");

my $draft = as_actor($node, 'postgres', 'regress_luan', q{SELECT ioffice.create_outgoing('CV', 'Dự thảo chưa phát hành')});
as_actor($node, 'postgres', 'regress_luan', qq{SELECT ioffice.attach($draft, 'du_thao.pdf', $pdf_sql)});
as_actor($node, 'postgres', 'regress_luan', qq{SELECT ioffice.act($draft, 'submit', 'dai')});

# the export as bytes in a file, then the workbook as openpyxl sees it
sub export_xlsx
{
	my ($login, $id) = @_;
	return bytea_to_file($node, 'postgres', $login, "ioffice.trail_export($id, 'xlsx')",
		"trail_$id.xlsx");
}

my $reader = <<'PY';
import json, sys
import openpyxl
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
out = {'sheets': wb.sheetnames, 'title': wb.properties.title,
       'merged': sorted(str(r) for r in ws.merged_cells.ranges),
       'freeze': ws.freeze_panes, 'rows': rows}
sys.stdout.buffer.write(json.dumps(out, ensure_ascii=False).encode('utf-8'))
PY

sub read_xlsx
{
	my ($path) = @_;
	return python_json($python, $reader, $path);
}

my $book = read_xlsx(export_xlsx('regress_thuy', $doc));
my @rows = @{ $book->{rows} };

is_deeply($book->{sheets}, ['Quá trình xử lý'], 'one sheet, named in Vietnamese');
is($rows[0][0], 'QUÁ TRÌNH XỬ LÝ VĂN BẢN', 'title row');
is($rows[1][0], "Số, ký hiệu: $symbol", "number and symbol of the issued document ($symbol)");
is($rows[2][0], "Trích yếu: $abstract", 'abstract row');
is_deeply($book->{merged}, [ 'A1:J1', 'A2:J2', 'A3:J3' ], 'title rows merged across the table');

# the headings row: found by its first cell, not by position
my ($h) = grep { defined $rows[$_][0] && $rows[$_][0] eq 'STT' } 0 .. $#rows;
ok(defined $h, 'a headings row');
is_deeply(
	$rows[$h],
	[
		'STT', 'Cán bộ gửi', 'Nội dung yêu cầu', 'Cán bộ nhận',
		'Ngày nhận', 'Nội dung xử lý', 'Hạn xử lý', 'Ngày xử lý',
		'Trạng thái hoàn thành', 'Tập tin đính kèm'
	],
	'the seed\'s headings, in order');
is($book->{freeze}, 'A' . ($h + 2), 'panes frozen below the headings');

# what trail() says, times in ioffice.timezone to the second
my $trail_json = as_actor($node, 'postgres', 
	'regress_thuy', qq{SELECT json_agg(json_build_array(step, sender, request, receiver,
	    to_char(received_at AT TIME ZONE ioffice.timezone(), 'YYYY-MM-DD HH24:MI:SS'),
	    processing_note, to_char(deadline, 'YYYY-MM-DD') || ' 00:00:00',
	    to_char(processed_at AT TIME ZONE ioffice.timezone(), 'YYYY-MM-DD HH24:MI:SS'),
	    status, attachments) ORDER BY step)
	  FROM ioffice.trail($doc)});
my $trail = JSON::PP->new->decode($trail_json);
is(scalar(@rows) - $h - 1, scalar(@$trail), scalar(@$trail) . ' trail steps, one row each');

my %date_format = (4 => 'dd/mm/yyyy hh:mm', 6 => 'dd/mm/yyyy', 7 => 'dd/mm/yyyy hh:mm');
for my $i (0 .. $#$trail)
{
	my $want = $trail->[$i];
	my $got = $rows[ $h + 1 + $i ];
	my $step = $want->[0];
	for my $col (0 .. 9)
	{
		my $w = $want->[$col];
		my $g = $got->[$col];
		if ($date_format{$col})
		{
			if (defined $w)
			{
				is(ref $g eq 'HASH' ? $g->{date} : $g, $w, "step $step column $col: date cell");
				is(ref $g eq 'HASH' ? $g->{format} : undef,
					$date_format{$col}, "step $step column $col: shown as $date_format{$col}");
			}
			else
			{
				is($g, undef, "step $step column $col: empty");
			}
		}
		else
		{
			is($g, $w, "step $step column $col: " . ($w // 'empty'));
		}
	}
}

# the checks above compare with trail(); these pin what trail() must hold,
# so that an empty or shifted trail cannot pass
my @senders = map { $_->[1] } @$trail;
is_deeply(\@senders,
	[ 'Tòng Văn Luân', 'Trần Văn Đại', 'Tòng Thị Kiên (thay Lê Tiến Lợi)' ],
	'senders, the delegate named "thay"');
is($rows[ $h + 1 ][2], "Kính trình anh Đại, xem \"dự thảo\"\nrồi cho ý kiến",
	'a request with quotes and a line break kept whole');
is($rows[ $h + 1 ][6]{date}, '2030-12-31 00:00:00', 'the deadline given at submit');

# a document not issued yet says so
my $dbook = read_xlsx(export_xlsx('regress_luan', $draft));
is($dbook->{rows}[1][0], 'Số, ký hiệu: (chưa phát hành)', 'a draft has no number yet');
is($dbook->{rows}[ $h + 1 ][8], 'Đang xử lý', 'its open step');
is(scalar @{ $dbook->{rows} }, $h + 2, 'one step');

# ---------------------------------------------------------------------------
# Exports cancelled part-way.  A long trail makes building the workbook take
# tens of milliseconds; statement timeouts spread over that time cancel it at
# different points.  Nothing of an export may stay: no directory under
# base/pgsql_tmp, no open descriptor, no memory of libxlsxwriter.

$node->safe_psql(
	'postgres', qq{
	DO \$\$
	BEGIN
	    FOR i IN 1..4000 LOOP
	        PERFORM set_config('ioffice.actor', CASE WHEN i % 2 = 1 THEN 'dai' ELSE 'loi' END, true);
	        PERFORM ioffice.act($draft, 'forward', CASE WHEN i % 2 = 1 THEN 'loi' ELSE 'dai' END,
	                            'Bước ' || i || ': xem lại, "gấp"');
	    END LOOP;
	END
	\$\$});

my $session = $node->background_psql('postgres', on_error_stop => 0);
my $pid = $session->query_safe('SELECT pg_backend_pid()');
$session->query_safe("SET ioffice.actor = 'dai'");

my $export = "SELECT octet_length(ioffice.trail_export($draft, 'xlsx'))";
my $full = $session->query_safe($export);
ok($full > 50000, "a 4001-step workbook: $full bytes");

sub export_fds
{
	my @links;
	opendir(my $dh, "/proc/$pid/fd") or return ();
	for my $fd (readdir $dh)
	{
		my $target = readlink("/proc/$pid/fd/$fd");
		push @links, $target if defined $target && $target =~ /pgsql_tmp/;
	}
	closedir($dh);
	return @links;
}

sub rss_anon_kb
{
	open(my $fh, '<', "/proc/$pid/status") or return undef;
	my ($kb) = map { /^RssAnon:\s+(\d+)/ ? $1 : () } <$fh>;
	close($fh);
	return $kb;
}

# RESET statement_timeout is a statement too: on a loaded machine the short
# timeout it resets can cancel it, so it is tried until it goes through
sub reset_timeout
{
	for (1 .. 20)
	{
		$session->{stderr} = '';
		$session->query('RESET statement_timeout');
		last if $session->{stderr} eq '';
	}
	die "RESET statement_timeout: $session->{stderr}" if $session->{stderr} ne '';
	$session->{stderr} = '';
}

# warm up both paths once, then measure
$session->query("SET statement_timeout = '5ms'; $export");
reset_timeout();
my $rss_before = rss_anon_kb();

# Interrupts are served in trail() and while the rows are written, not
# while libxlsxwriter compresses: spread the timeouts from about the end of
# trail() to past the whole export, as long as each takes on this machine.
sub median_ms
{
	my ($sql) = @_;
	my @t;
	for (1 .. 3)
	{
		my $start = [gettimeofday];
		$session->query_safe($sql);
		push @t, 1000 * tv_interval($start);
	}
	return (sort { $a <=> $b } @t)[1];
}
my $trail_ms = median_ms("SELECT count(*) FROM ioffice.trail($draft)");
my $export_ms = median_ms($export);
my ($from, $to) = (0.8 * $trail_ms, 1.2 * $export_ms);
note sprintf('trail() %.1f ms, export %.1f ms: timeouts from %.1f to %.1f ms',
	$trail_ms, $export_ms, $from, $to);

my ($done, $cancelled, $in_build, @other) = (0, 0, 0);
for my $round (1 .. 3)
{
	for my $k (0 .. 39)
	{
		my $ms = int($from + $k * ($to - $from) / 39 + 0.5) || 1;
		$session->{stderr} = '';    # query() keeps what earlier queries printed
		$session->query("SET statement_timeout = '${ms}ms'; $export");
		my $err = $session->{stderr};
		reset_timeout();
		if ($err eq '') { $done++ }
		elsif ($err =~ /canceling statement due to statement timeout/)
		{
			$cancelled++;
			$in_build++ if $err =~ /building the trail workbook/;
		}
		else { push @other, $err }
	}
}
my $rss_after = rss_anon_kb();
note "exports: $done finished, $cancelled cancelled, $in_build of them building the workbook";
ok($in_build > 0,
	"exports cancelled while building the workbook: $in_build of " . ($done + $cancelled));
is_deeply(\@other, [], 'no other error');
is($session->query_safe(q{SELECT count(*) FROM pg_ls_dir('base/pgsql_tmp', true, false)}),
	'0', 'nothing left under base/pgsql_tmp');
is_deeply([ export_fds() ], [], 'no descriptor of an export left open');
SKIP:
{
	skip 'no /proc status', 1 unless defined $rss_before && defined $rss_after;
	# a leaked workbook of 4001 rows would be megabytes each time
	cmp_ok($rss_after - $rss_before, '<', 16384,
		"backend private memory before/after: $rss_before kB / $rss_after kB");
}
# the size moves by a byte or two: the workbook holds its creation time, compressed
cmp_ok(abs($session->query_safe($export) - $full), '<', 64, 'and the next export is whole');
$session->quit;

$node->stop;
done_testing();
