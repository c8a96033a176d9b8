# Clerks issue across midnight of 31 December in Hà Nội, with the server's
# clock set by libfaketime and the server's own TimeZone in Los Angeles
# (where it is still the morning of 31 December) while one clerk's session
# reads time in UTC (still 31 December too).  The register year must turn at
# midnight in Hà Nội: what was issued before it takes the old year's last
# numbers, what was issued after it number 01 of the new year; each year's
# numbers are 1..N without a gap; issue dates, identifiers and dossier codes
# are Hà Nội dates, and the dossier codes' day sequence starts again.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $libfaketime = (grep { -f } map { "/usr/lib/$_/faketime/libfaketime.so.1" }
	  ('x86_64-linux-gnu', 'aarch64-linux-gnu', ''))[0];
BAIL_OUT('libfaketime is missing (Debian package faketime)') unless $libfaketime;

my $node = PostgreSQL::Test::Cluster->new('year_boundary');
$node->init(extra => [ '--encoding=UTF8', '--no-locale' ]);
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'ioffice'
timezone = 'America/Los_Angeles'
ioffice.worker_databases = ''
});

# the server and every client started from here on share one clock: the real
# one moved to 23:59:20 on 31 December 2026 in Hà Nội (16:59:20 UTC)
my $midnight = 1798736400;    # 2027-01-01 00:00:00 +07
my $offset = ($midnight - 40) - time();
$ENV{LD_PRELOAD} = $libfaketime;
$ENV{FAKETIME} = ($offset >= 0 ? '+' : '') . $offset;
$ENV{FAKETIME_DONT_FAKE_MONOTONIC} = 1;
$node->start;

is($node->safe_psql('postgres',
		q{SELECT to_char(now() AT TIME ZONE 'Asia/Ho_Chi_Minh', 'YYYY-MM-DD HH24')}),
	'2026-12-31 23', 'the server believes it is the last hour of 2026 in Hà Nội');

$node->safe_psql('postgres', 'CREATE EXTENSION ioffice');
$node->safe_psql(
	'postgres', q{
	SELECT ioffice.add_agency('UBND huyện Giao Thừa', 'UBND', '000.00.32.H41') AS a \gset
	SELECT ioffice.add_department(:a, 'Văn phòng', 'VP') AS vp \gset
	SELECT ioffice.add_person('cv', 'Chuyên Viên', 'Chuyên viên', :vp, '{specialist}');
	SELECT ioffice.add_person('ld', 'Lãnh Đạo', 'Chủ tịch', :a, '{leader}');
	SELECT ioffice.add_person('vt1', 'Văn Thư Một', 'Văn thư', :a, '{clerk}');
	SELECT ioffice.add_person('vt2', 'Văn Thư Hai', 'Văn thư', :a, '{clerk}');
	SELECT ioffice.add_person('mc', 'Một Cửa', 'Một cửa', :a, '{one_stop}');
});

# 300 documents approved, waiting for the clerks; half for each clerk
$node->safe_psql(
	'postgres', q{
	DO $$
	DECLARE d bigint;
	BEGIN
	    FOR i IN 1..300 LOOP
	        PERFORM set_config('ioffice.actor', 'cv', true);
	        d := ioffice.create_outgoing('CV', 'V/v giao thừa số ' || i);
	        PERFORM ioffice.attach(d, 'gt.pdf', convert_to('%PDF-1.4 giao thừa', 'UTF8'));
	        PERFORM ioffice.act(d, 'submit', 'ld');
	        PERFORM set_config('ioffice.actor', 'ld', true);
	        PERFORM ioffice.act(d, 'approve', CASE WHEN i % 2 = 0 THEN 'vt1' ELSE 'vt2' END);
	    END LOOP;
	END $$;});

# wait, if need be, until 23:59:52 in Hà Nội
my $left = $node->safe_psql('postgres',
	qq{SELECT $midnight - extract(epoch FROM now())::int});
BAIL_OUT("the set-up took too long: $left s left before midnight") if $left < 4;
sleep($left - 8) if $left > 8;

# two clerks issue one document per transaction, about 12 a second each, for
# 16 seconds across midnight, each in its own session (one reading time in
# UTC, one in Los Angeles); the one-stop desk receives a dossier in each
$node->safe_psql(
	'postgres', q{
	CREATE PROCEDURE issue_for(clerk text, zone text, seconds int)
	LANGUAGE plpgsql AS $$
	DECLARE
	    stop timestamptz := clock_timestamp() + make_interval(secs => seconds);
	    d bigint;
	BEGIN
	    WHILE clock_timestamp() < stop LOOP
	        PERFORM set_config('TimeZone', zone, true);
	        PERFORM set_config('ioffice.actor', clerk, true);
	        SELECT document INTO d FROM ioffice.outgoing_list('awaiting_issue')
	        ORDER BY document LIMIT 1;
	        EXIT WHEN d IS NULL;
	        PERFORM ioffice.act(d, 'issue');
	        PERFORM set_config('ioffice.actor', 'mc', true);
	        PERFORM ioffice.receive_dossier('1.000001.000.00.00.H41', 'Thủ tục giao thừa',
	                                        '{"name": "Dân"}', 5);
	        COMMIT;
	        PERFORM pg_sleep(0.08);
	    END LOOP;
	END $$;});
my @runs;
for my $clerk (qw(vt1 vt2))
{
	my $zone = $clerk eq 'vt1' ? 'UTC' : 'America/Los_Angeles';
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[
			'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'),
			'-c', "CALL issue_for('$clerk', '$zone', 16)"
		],
		'>', \$out, '2>', \$err,
		IPC::Run::timeout(90));
	push @runs, [ $clerk, $h, \$err ];
}
for my $r (@runs)
{
	my ($clerk, $h, $err) = @$r;
	eval { $h->finish; };
	if ($@)
	{
		diag($node->safe_psql('postgres', q{
			SELECT pid, state, wait_event_type, wait_event, now() - xact_start, left(query, 120)
			FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()}));
		$_->[1]->kill_kill for @runs;
		BAIL_OUT("$clerk: still issuing 90 s later");
	}
	is($h->result(0), 0, "$clerk: issued without an error") or diag($$err);
}

# what was issued, by Hà Nội year
my $by_year = $node->safe_psql(
	'postgres', q{
	SELECT register_year, count(*), min(number), max(number), count(DISTINCT number),
	       bool_and(register_year = extract(year FROM issued_at AT TIME ZONE 'Asia/Ho_Chi_Minh')),
	       bool_and(issued_on = (issued_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date),
	       bool_and(split_part(identifier, ',', 2) = to_char(issued_at AT TIME ZONE 'Asia/Ho_Chi_Minh', 'YYYY/MM/DD'))
	FROM ioffice.document WHERE state = 'issued'
	GROUP BY register_year ORDER BY register_year});
my @years = map { [ split /\|/ ] } split /\n/, $by_year;
is(scalar(@years), 2, 'documents were issued in both years') or diag($by_year);
for my $y (@years)
{
	my ($year, $n, $min, $max, $distinct, $year_ok, $day_ok, $id_ok) = @$y;
	ok($n > 10, "$year: $n documents issued");
	is("$min $max $distinct", "1 $n $n", "$year: numbers 1..$n without a gap or a repeat");
	is("$year_ok $day_ok $id_ok", 't t t',
		"$year: register year, issue date and identifier are Hà Nội's");
}
is_deeply([ map { $_->[0] } @years ], [ 2026, 2027 ], 'the years are 2026 and 2027');
is( $node->safe_psql(
		'postgres', q{
	SELECT max(issued_at) FILTER (WHERE register_year = 2026)
	     < min(issued_at) FILTER (WHERE register_year = 2027)
	   AND max(issued_at) FILTER (WHERE register_year = 2026) < '2027-01-01 00:00:00+07'
	   AND min(issued_at) FILTER (WHERE register_year = 2027) >= '2027-01-01 00:00:00+07'
	FROM ioffice.document WHERE state = 'issued'}),
	't',
	'the year turned at midnight in Hà Nội, not in UTC or Los Angeles');

# dossier codes: the day of the code is the Hà Nội day of reception, and the
# sequence starts at 0001 on 1 January
is( $node->safe_psql(
		'postgres', q{
	SELECT bool_and(split_part(code, '-', 2) = to_char(received_at AT TIME ZONE 'Asia/Ho_Chi_Minh', 'YYMMDD'))
	   AND count(DISTINCT split_part(code, '-', 2)) = 2
	   AND min(split_part(code, '-', 3)) FILTER (WHERE split_part(code, '-', 2) = '270101') = '0001'
	FROM ioffice.dossier}),
	't',
	'dossier codes carry the Hà Nội day; 1 January starts at 0001');
is($node->safe_psql('postgres', 'SELECT count(*) FROM ioffice.audit_verify()'),
	'0', 'audit_verify() clean');

$node->stop;
done_testing();
