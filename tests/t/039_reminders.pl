# Reminders of tasks due and overdue (Decree 30 art. 24; appendix VI
# III.1l-m), sent by the worker on its own loop, with the server's clock
# moved by libfaketime.  A leader assigns an incoming document to a
# specialist with a deadline on a Wednesday.  On the Monday before, nothing
# is sent; on the Wednesday, one notify.email "due" to the specialist and
# one digest to the leader; after a restart of the server the same day,
# nothing more; on the Thursday, one "overdue" and the leader's digest of
# that day; a restart then sends nothing more.  And the follow-up register's
# workbook, read back by openpyxl.
use strict;
use warnings;
use File::Basename qw(dirname);
use lib dirname(__FILE__);
use IofficeTest;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $libfaketime = (grep { -f } map { "/usr/lib/$_/faketime/libfaketime.so.1" }
	  ('x86_64-linux-gnu', 'aarch64-linux-gnu', ''))[0];
BAIL_OUT('libfaketime is missing (Debian package faketime)') unless $libfaketime;

my $node = PostgreSQL::Test::Cluster->new('reminders');
$node->init(extra => [ '--encoding=UTF8', '--no-locale' ]);
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'ioffice'
ioffice.worker_databases = 'postgres'
ioffice.worker_naptime = 1
ioffice.timezone = 'Asia/Ho_Chi_Minh'
timezone = 'America/Los_Angeles'
});
$node->start;

$node->safe_psql('postgres', 'CREATE EXTENSION ioffice');
$node->safe_psql(
	'postgres', q{
	SELECT ioffice.add_agency('UBND xã Nhắc Việc', 'UBND', '000.00.55.H41') AS a \gset
	SELECT ioffice.add_department(:a, 'Văn phòng', 'VP') AS vp \gset
	SELECT ioffice.add_person('vt', 'Văn Thư', 'Văn thư', :a, '{clerk}');
	SELECT ioffice.add_person('ld', 'Lãnh Đạo', 'Chủ tịch', :a, '{leader}');
	SELECT ioffice.add_person('cv', 'Chuyên Viên', 'Chuyên viên', :vp, '{specialist}');
	UPDATE ioffice.person SET email = login || '@nhacviec.example.vn' WHERE login IN ('ld', 'cv');
	INSERT INTO ioffice.endpoint (name, url, secret, events)
	VALUES ('gateway', 'http://127.0.0.1:9/notify', 'a-secret-of-the-gateway', '{notify.*}');
});

# the deadline: a Wednesday at least a week ahead, in Hà Nội (no holidays
# in the calendar: Monday to Friday are working days)
my $deadline = $node->safe_psql('postgres', q{
	SELECT d FROM generate_series((now() AT TIME ZONE 'Asia/Ho_Chi_Minh')::date + 7,
	                              (now() AT TIME ZONE 'Asia/Ho_Chi_Minh')::date + 13, interval '1 day') d
	 WHERE extract(isodow FROM d) = 3});
$deadline = substr($deadline, 0, 10);
like($deadline, qr/^\d{4}-\d{2}-\d{2}$/, 'a deadline on a Wednesday');
my $doc = as_actor($node, 'postgres', 'vt', q{
	SELECT ioffice.register_incoming('CV', 'V/v báo cáo tình hình', 'Sở Nội vụ', '7/SNV-VP',
	                                 (now() AT TIME ZONE ioffice.timezone())::date)});
as_actor($node, 'postgres', 'vt', "SELECT ioffice.act($doc, 'submit', 'ld')");
as_actor($node, 'postgres', 'ld',
	"SELECT ioffice.act($doc, 'assign', 'cv', 'Báo cáo', '{\"deadline\": \"$deadline\"}')");

sub count_of
{
	my ($kind) = @_;
	return $node->safe_psql('postgres',
		qq{SELECT count(*) FROM ioffice.outbox
		    WHERE event LIKE 'notify.%' AND body->'data'->'about'->>'kind' = '$kind'});
}

sub notices
{
	return join(' ', map { count_of($_) } qw(task_due task_overdue digest));
}

# the server (and its clients) restarted at noon in Hà Nội on a given day,
# waiting for the worker's first pass, which looks at the reminders
# (as in 033_case_file_archive.pl)
sub restart_at
{
	my ($day) = @_;
	my $target = $node->safe_psql('postgres',
		qq{SELECT extract(epoch FROM (date '$day' + time '12:00') AT TIME ZONE 'Asia/Ho_Chi_Minh')::bigint});
	$node->stop;
	my $offset = $target - time();
	$ENV{LD_PRELOAD} = $libfaketime;
	$ENV{FAKETIME} = ($offset >= 0 ? '+' : '') . $offset;
	$ENV{FAKETIME_DONT_FAKE_MONOTONIC} = 1;
	$node->start;
	is($node->safe_psql('postgres',
			q{SELECT (now() AT TIME ZONE 'Asia/Ho_Chi_Minh')::date}),
		$day, "the server believes it is $day in Hà Nội");
	# libfaketime does not reach the processes the postmaster starts at
	# start-up: stop the signer once, and wait for the new one to make its
	# first pass
	my $pid = $node->safe_psql('postgres', 'SELECT signer_pid FROM ioffice.worker_status');
	$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
	ok($node->poll_query_until('postgres',
			qq{SELECT signer_pid <> $pid AND signer_state = 'idle'
			     AND (started_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date = '$day'
			   FROM ioffice.worker_status}),
		'a new signer on the server\'s clock made its first pass');
	return;
}

sub day_from
{
	my ($days) = @_;
	return $node->safe_psql('postgres', "SELECT date '$deadline' + $days");
}

# the Monday before: nothing
restart_at(day_from(-2));
is(notices(), '0 0 0', 'two days before the deadline, nothing is sent');

# the Wednesday: one reminder, one digest
restart_at($deadline);
ok($node->poll_query_until('postgres',
		q{SELECT count(*) = 2 FROM ioffice.outbox WHERE event LIKE 'notify.%'}),
	'the worker sent the reminder and the digest');
is(notices(), '1 0 1', 'on the deadline: one "due" reminder and one digest');
is($node->safe_psql('postgres', q{
	SELECT string_agg(body->'data'->>'to' || ':' || (body->'data'->'about'->>'kind'), ','
	                  ORDER BY body->'data'->>'to')
	  FROM ioffice.outbox WHERE event = 'notify.email'}),
	'cv@nhacviec.example.vn:task_due,ld@nhacviec.example.vn:digest',
	'the reminder to the specialist, the digest to the leader, by e-mail');

# the same day after a restart: nothing more
restart_at($deadline);
is(notices(), '1 0 1', 'a restart on the same day sends nothing again');

# the Thursday: overdue, and that day's digest
restart_at(day_from(1));
ok($node->poll_query_until('postgres',
		q{SELECT count(*) = 4 FROM ioffice.outbox WHERE event LIKE 'notify.%'}),
	'the worker sent the overdue reminder and the day\'s digest');
is(notices(), '1 1 2', 'the day after: one "overdue" reminder and the leader\'s second digest');
is($node->safe_psql('postgres', q{
	SELECT count(*) || ' ' || count(DISTINCT day) FROM ioffice.reminder_digest}),
	'2 2', 'one digest per leader per day');

# a restart, and a direct call: nothing more
restart_at(day_from(1));
is($node->safe_psql('postgres', 'SELECT ioffice.send_reminders()'), '0',
	'a direct call sends nothing more');
is(notices(), '1 1 2', 'nor does the worker after a restart');
is($node->safe_psql('postgres', q{
	SELECT string_agg(level, ',' ORDER BY level) FROM ioffice.reminder_sent}),
	'due,overdue', 'one reminder per task and level');

# the follow-up register's workbook, read back by openpyxl: the heading
# row, and the document with its handler, deadline and progress
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
	my ($agency, $year) = split /\|/, $node->safe_psql('postgres',
		"SELECT agency_id, register_year FROM ioffice.document WHERE id = $doc");
	my $wb = python_json($python, $reader,
		bytea_to_file($node, 'postgres', 'vt', "ioffice.followup_export($agency, $year)", 'followup.xlsx'));
	my $bytes = sub { my ($x) = @_; utf8::encode($x); return $x; };
	my @rows = map { [ map { $bytes->($_) } @$_ ] } @{ $wb->{rows} };
	is($bytes->($wb->{title}), 'Sổ theo dõi giải quyết', 'the workbook\'s sheet');
	my ($head) = grep { $_->[0] eq 'Số đến' } @rows;
	is(join('|', @{ $head // [] }),
		'Số đến|Tên loại, số, ký hiệu, ngày, tháng và tên cơ quan, tổ chức ban hành văn bản|'
		  . 'Đơn vị hoặc người nhận|Thời hạn giải quyết|Tiến độ giải quyết|Số, ký hiệu văn bản trả lời|Ghi chú',
		'its headings: Appendix IV\'s columns');
	my @entries = grep { $_->[0] =~ /^\d+$/ } @rows;
	is(join(';', map { "$_->[0]|" . ($_->[1] =~ /^Công văn số 7\/SNV-VP ngày .* của Sở Nội vụ — V\/v báo cáo/ ? 'described' : $_->[1])
				  . "|$_->[2]|$_->[3]|" . ($_->[4] =~ /^Quá hạn \d+ ngày$/ ? 'overdue' : $_->[4]) } @entries),
		"1|described|Chuyên Viên (chủ trì)|$deadline 00:00:00|overdue",
		'one entry: the document, its handler, its deadline (a date cell) and progress');
}

$node->stop;
delete $ENV{LD_PRELOAD};
delete $ENV{FAKETIME};
done_testing();
