# The workers of a database that has nothing for them sleep: a database
# without the extension (state "no extension") and a hot standby (state
# "standby").  The signer once computed a zero wait there (the axis step
# had never run) and spun on a core in every such database; the CPU time
# each worker process uses over a few seconds of wall clock says whether it
# sleeps.  An idle worker wakes about once per ioffice.worker_naptime.
use strict;
use warnings;
use Time::HiRes qw(usleep time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $conf = qq{
shared_preload_libraries = 'ioffice'
ioffice.worker_databases = 'postgres, other'
ioffice.worker_naptime = 1
};

my $primary = PostgreSQL::Test::Cluster->new('idle_primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', $conf);
$primary->start;
# "postgres" has no extension; "other" has it
$primary->safe_psql('postgres', 'CREATE DATABASE other');
$primary->safe_psql('other', 'CREATE EXTENSION ioffice');

# the clock ticks of user and system time a process has used
sub cpu_ticks
{
	my ($pid) = @_;
	open(my $fh, '<', "/proc/$pid/stat") or return undef;
	my $stat = <$fh>;
	close $fh;
	# the command name, in parentheses, may hold spaces: fields after it
	my @f = split / /, substr($stat, rindex($stat, ')') + 2);
	return $f[11] + $f[12];
}

# pid => "backend_type datname" of the ioffice workers of a node
sub workers
{
	my ($node) = @_;
	my %w;
	for my $row (split /\n/, $node->safe_psql('postgres', q{
		SELECT pid || ' ' || backend_type || ' ' || coalesce(datname, '-')
		  FROM pg_stat_activity WHERE backend_type LIKE 'ioffice worker%'}))
	{
		my ($pid, $rest) = split / /, $row, 2;
		$w{$pid} = $rest;
	}
	return %w;
}

sub wait_for_workers
{
	my ($node, $n) = @_;
	my $until = time + 60;
	my %w;
	while (time < $until)
	{
		%w = workers($node);
		return %w if keys %w >= $n;
		usleep(200_000);
	}
	return %w;
}

# each worker uses under a third of a second of CPU in 5 s (a spinning one
# uses seconds, even on a loaded machine); the clock ticks are 1/100 s
sub check_idle
{
	my ($label, %w) = @_;
	my %before = map { $_ => cpu_ticks($_) } keys %w;
	sleep 5;
	for my $pid (sort keys %w)
	{
		my $after = cpu_ticks($pid);
		ok(defined $after && defined $before{$pid}, "$label: $w{$pid} still running");
		next unless defined $after && defined $before{$pid};
		cmp_ok($after - $before{$pid}, '<', 33, "$label: $w{$pid} sleeps (CPU ticks in 5 s)");
	}
}

my %w = wait_for_workers($primary, 4);
is(scalar(keys %w), 4, 'a signer and a deliverer for each database');
# the workers of both databases settle (first connection, first look)
sleep 2;
check_idle('primary', %w);

my $standby = PostgreSQL::Test::Cluster->new('idle_standby');
$primary->backup('b');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->start;
%w = wait_for_workers($standby, 4);
is(scalar(keys %w), 4, 'the standby runs the workers too');
sleep 2;
check_idle('standby', %w);

$standby->stop;
$primary->stop;
done_testing();
