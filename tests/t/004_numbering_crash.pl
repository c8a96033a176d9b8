# Numbering survives crashes: clients take numbers from one register with
# take_number() and issue documents with act(), a third of their
# transactions rolling back, while the whole server is killed with SIGKILL.
# After each crash recovery every register holds exactly the numbers
# 1..next_number-1, each once, as an issued document or a taken number;
# nothing committed before the crash is lost or renumbered; and the audit
# trail verifies clean.  Twice, so numbering is also shown to go on after a
# recovery.
use strict;
use warnings;

use File::Basename qw(dirname);
use IPC::Run;
use lib dirname(__FILE__);
use ServerProcesses;
use Time::HiRes qw(usleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $take_clients = 6;
my $issue_clients = 2;    # one clerk each, so they never race for a document
my $docs_per_issuer = 400;
my $load_seconds = 5;     # before the kill
my $rollback_pct = 30;

my $node = PostgreSQL::Test::Cluster->new('numbering_crash');
$node->init(extra => [ '--encoding=UTF8', '--no-locale' ]);
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'ioffice'
max_connections = 40
});
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION ioffice;
-- counts rolled-back transactions: nextval() is not undone by ROLLBACK
CREATE SEQUENCE public.rolled_back;
});
my $agency = $node->safe_psql('postgres',
	q{SELECT ioffice.add_agency('UBND huyện Thử', 'UBND', '000.00.32.H41')});
my $dept = $node->safe_psql('postgres',
	qq{SELECT ioffice.add_department($agency, 'Văn phòng', 'VP')});
$node->safe_psql('postgres', qq{
SELECT ioffice.add_person('cv', 'Chuyên viên', NULL, $dept, '{specialist}');
SELECT ioffice.add_person('ld', 'Lãnh đạo', NULL, $dept, '{leader}');
SELECT ioffice.add_person('t' || i, 'Văn thư lấy số ' || i, NULL, $agency, '{clerk}')
  FROM generate_series(1, $take_clients) i;
SELECT ioffice.add_person('i' || i, 'Văn thư phát hành ' || i, NULL, $agency, '{clerk}')
  FROM generate_series(0, $issue_clients - 1) i;
});
my $reg = $node->safe_psql('postgres', qq{
SELECT id FROM ioffice.register
 WHERE agency_id = $agency AND direction = 'outgoing' AND NOT confidential});
like($reg, qr/^\d+$/, "the agency's outgoing register is $reg");

# documents waiting in awaiting_issue, each with the issuing clerk i<n>
# (pgbench client n) who will issue it
sub prepare_documents
{
	my ($round) = @_;
	$node->safe_psql('postgres', qq{
DO \$\$
DECLARE
    v_doc bigint;
BEGIN
    FOR i IN 1 .. $docs_per_issuer * $issue_clients LOOP
        PERFORM set_config('ioffice.actor', 'cv', true);
        v_doc := ioffice.create_outgoing('CV', 'Công văn ' || i || ' đợt $round');
        PERFORM ioffice.attach(v_doc, 'a.pdf', convert_to('%PDF-1.4 x', 'UTF8'));
        PERFORM ioffice.act(v_doc, 'submit', 'ld');
        PERFORM set_config('ioffice.actor', 'ld', true);
        PERFORM ioffice.act(v_doc, 'approve', 'i' || (i % $issue_clients));
    END LOOP;
END
\$\$});
	return;
}

my $dir = PostgreSQL::Test::Utils::tempdir;
# -M simple: pgbench puts :variables into the text, even inside quotes
open my $fh, '>', "$dir/take.pgbench" or die $!;
print $fh <<"EOF";
\\set clerk random(1, $take_clients)
\\set r random(1, 100)
BEGIN;
SET LOCAL ioffice.actor = 't:clerk';
SELECT * FROM ioffice.take_number($reg, 'CV', $dept);
\\if :r <= $rollback_pct
SELECT nextval('public.rolled_back');
ROLLBACK;
\\else
COMMIT;
\\endif
EOF
close $fh;
open $fh, '>', "$dir/issue.pgbench" or die $!;
print $fh <<"EOF";
\\set r random(1, 100)
BEGIN;
SET LOCAL ioffice.actor = 'i:client_id';
SELECT coalesce(min(t.document_id), 0) AS doc
  FROM ioffice.task t JOIN ioffice.person p ON p.id = t.receiver_id
 WHERE p.login = 'i:client_id' AND t.status = 'open' \\gset
\\if :doc > 0
SELECT ioffice.act(:doc, 'issue');
\\endif
\\if :r <= $rollback_pct
SELECT nextval('public.rolled_back');
ROLLBACK;
\\else
COMMIT;
\\endif
EOF
close $fh;

sub start_pgbench
{
	my ($script, $clients, $tag) = @_;
	my %h = (out => '', err => '');
	$h{run} = IPC::Run::start(
		[
			'pgbench', '-n', '-M', 'simple', '-c', $clients, '-j', 1,
			'-T', 10 * $PostgreSQL::Test::Utils::timeout_default,
			'-h', $node->host, '-p', $node->port, '-f', "$dir/$script", 'postgres'
		],
		'<', \undef, '>', \$h{out}, '2>', \$h{err});
	$h{tag} = $tag;
	return \%h;
}

# every register row: "id:N:count:distinct:min:max" over issued documents
# and taken numbers, N = next_number - 1
my $register_sql = q{
SELECT string_agg(format('%s:%s:%s:%s:%s:%s', id, n, cnt, dist, lo, hi), ' ' ORDER BY id)
FROM (SELECT r.id, r.next_number - 1 AS n, count(x.number) AS cnt,
             count(DISTINCT x.number) AS dist, coalesce(min(x.number), 0) AS lo,
             coalesce(max(x.number), 0) AS hi
        FROM ioffice.register r
        LEFT JOIN (SELECT register_id, number FROM ioffice.document WHERE number IS NOT NULL
                   UNION ALL
                   SELECT register_id, number FROM ioffice.number_taken) x
          ON x.register_id = r.id
       GROUP BY r.id) s};

# committed (number, symbol) pairs of the register, as text
sub committed
{
	return $node->safe_psql('postgres', qq{
SELECT number || ' ' || symbol || ' ' || kind FROM (
  SELECT number, symbol, 'doc ' || id AS kind FROM ioffice.document
   WHERE register_id = $reg AND number IS NOT NULL
  UNION ALL
  SELECT number, symbol, 'taken' FROM ioffice.number_taken WHERE register_id = $reg) x
ORDER BY number});
}

my $crash_no = 0;
my $before = '';    # committed numbers after the previous recovery
my $prev_n = 0;
for my $round (1, 2)
{
	prepare_documents($round);
	my $rb0 = $node->safe_psql('postgres',
		'SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM public.rolled_back');
	my @load = (
		start_pgbench('take.pgbench', $take_clients, 'take_number'),
		start_pgbench('issue.pgbench', $issue_clients, 'issue'));

	# let the load run, then crash while it is in full swing
	my $t0 = time;
	usleep(200_000) while time - $t0 < $load_seconds;
	$_->{run}->pump_nb for @load;
	for my $l (@load)
	{
		ok($l->{run}->pumpable, "round $round: $l->{tag} clients still running at the crash")
		  or diag("$l->{out}\n$l->{err}");
	}
	my ($n_seen, $rb, $in_xact) = split /\|/, $node->safe_psql('postgres', qq{
SELECT (SELECT next_number - 1 FROM ioffice.register WHERE id = $reg),
       (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM public.rolled_back),
       (SELECT count(*) FROM pg_stat_activity
         WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
           AND backend_xid IS NOT NULL)});

	my ($pm) = slurp_file($node->data_dir . '/postmaster.pid') =~ /^(\d+)/;
	my @server = ($pm, children_of($pm));
	if ($round == 1)
	{
		# power cut: every server process dies at once.  Backends lead their
		# own process groups, so each is named; the postmaster is frozen
		# first so that it forks no new one meanwhile.
		kill 'STOP', $pm;
		my @kids = children_of($pm);
		kill 'KILL', @kids;
		push @server, @kids;
		$node->kill9;
	}
	else
	{
		# the postmaster alone: backends run on until they notice, and may
		# still commit what they were doing
		$node->kill9;
	}
	wait_gone(@server);
	$crash_no++;

	for my $l (@load)
	{
		$l->{run}->finish;    # pgbench fails: its server is gone
		unlike($l->{out} . $l->{err}, qr/ERROR:/,
			"round $round: no $l->{tag} statement failed before the crash")
		  or diag($l->{err});
	}
	cmp_ok($rb - $rb0, '>', 0,
		"round $round: transactions rolled back during the load (" . ($rb - $rb0) . ")");

	$node->start;
	my $crashes = () = slurp_file($node->logfile) =~ /automatic recovery in progress/g;
	is($crashes, $crash_no, "round $round: crash recovery number $crash_no ran");

	# the register: 1..N, each number once
	my $state = $node->safe_psql('postgres', $register_sql);
	note("registers after crash $round (id:N:count:distinct:min:max): $state");
	for my $r (split / /, $state)
	{
		my ($id, $n, $cnt, $dist, $lo, $hi) = split /:/, $r;
		is("$cnt $dist $lo $hi", $n == 0 ? '0 0 0 0' : "$n $n 1 $n",
			"round $round: register $id holds exactly 1..$n, each once");
	}
	my $n = $node->safe_psql('postgres',
		"SELECT next_number - 1 FROM ioffice.register WHERE id = $reg");
	cmp_ok($n, '>=', $n_seen,
		"round $round: $n numbers after recovery, at least the $n_seen committed before the crash");
	cmp_ok($n, '>', $prev_n, "round $round: numbering went on from $prev_n to $n");
	my $gaps = $node->safe_psql('postgres', qq{
SELECT string_agg(g::text, ',') FROM generate_series(1, $n) g
 WHERE NOT EXISTS (SELECT 1 FROM ioffice.document d WHERE d.register_id = $reg AND d.number = g)
   AND NOT EXISTS (SELECT 1 FROM ioffice.number_taken t WHERE t.register_id = $reg AND t.number = g)});
	is($gaps, '', "round $round: no missing number in 1..$n");

	my ($docs, $taken) = split /\|/, $node->safe_psql('postgres', qq{
SELECT (SELECT count(*) FROM ioffice.document WHERE register_id = $reg AND number IS NOT NULL),
       (SELECT count(*) FROM ioffice.number_taken WHERE register_id = $reg)});
	note("round $round: $docs documents issued, $taken numbers taken in all; "
		  . ($rb - $rb0) . " transactions rolled back during the load, "
		  . "$in_xact had written when the server was killed");
	cmp_ok($docs, '>', 0, "round $round: documents were issued by act()");
	cmp_ok($taken, '>', 0, "round $round: numbers were taken by take_number()");
	is($node->safe_psql('postgres', qq{
SELECT count(DISTINCT p.login) FROM ioffice.number_taken t JOIN ioffice.person p ON p.id = t.taken_by
 WHERE t.register_id = $reg AND p.login ~ '^t[0-9]+\$'}),
		$take_clients, "round $round: each of the $take_clients clerks took numbers");

	# what was committed before stays as it was
	my $now = committed();
	my %now = map { $_ => 1 } split /\n/, $now;
	if ($round > 1)
	{
		my @lost = grep { !$now{$_} } split /\n/, $before;
		is(scalar(@lost), 0,
			"round $round: the $prev_n numbers found after crash 1 are still there, same symbols")
		  or diag(join("\n", @lost[ 0 .. ($#lost < 9 ? $#lost : 9) ]));
	}
	$before = $now;
	$prev_n = $n;

	# the rows written with a number agree with each other
	is($node->safe_psql('postgres', qq{
SELECT count(*) FROM ioffice.document
 WHERE direction = 'outgoing'
   AND ((state = 'issued') <> (number IS NOT NULL)
        OR (number IS NOT NULL AND (symbol <> ioffice.format_number(number) || '/UBND-VP'
                                     OR identifier IS NULL OR issued_on IS NULL)))}),
		'0', "round $round: issued documents and only they have a number, symbol and identifier");
	is($node->safe_psql('postgres', qq{
SELECT count(*) FROM ioffice.number_taken
 WHERE register_id = $reg AND symbol <> ioffice.format_number(number) || '/UBND-VP'}),
		'0', "round $round: every taken number has its symbol");
	is($node->safe_psql('postgres', qq{
SELECT (SELECT count(*) FROM ioffice.audit
         WHERE entity = 'register' AND entity_id = $reg AND action = 'take_number')
     - (SELECT count(*) FROM ioffice.number_taken WHERE register_id = $reg)}),
		'0', "round $round: one take_number audit record per taken number");
	is($node->safe_psql('postgres', qq{
SELECT count(*) FROM ioffice.document d
 WHERE d.number IS NOT NULL
   AND (SELECT count(*) FROM ioffice.audit a
         WHERE a.entity = 'document' AND a.entity_id = d.id AND a.action = 'issue'
           AND (a.detail->>'number')::int = d.number) <> 1}),
		'0', "round $round: one issue audit record, with its number, per issued document");

	my $problems = $node->safe_psql('postgres',
		q{SELECT count(*) || coalesce(': ' || string_agg(audit_id || ' ' || problem, '; '), '')
		    FROM ioffice.audit_verify()});
	is($problems, '0', "round $round: audit_verify() finds no problem after the crash");
}

$node->stop;
done_testing();
