# Helpers for TAP tests that kill a server: find its processes, wait until
# they are gone (and reaped), so that a new postmaster does not take the old
# lock file for a live one.
package ServerProcesses;
use strict;
use warnings;
use Exporter 'import';
use Time::HiRes qw(usleep);
use PostgreSQL::Test::Utils;

our @EXPORT = qw(children_of wait_gone postmaster_pid);

# the server processes forked by the postmaster
sub children_of
{
	my ($parent) = @_;
	my @kids;
	for my $stat (glob '/proc/[0-9]*/stat')
	{
		open my $f, '<', $stat or next;    # may have exited meanwhile
		my $line = <$f> // '';
		close $f;
		push @kids, $1 if $line =~ /^(\d+) \(.*\) \S+ (\d+) / && $2 == $parent;
	}
	return @kids;
}

sub wait_gone
{
	my @pids = @_;
	for (1 .. 100 * $PostgreSQL::Test::Utils::timeout_default)
	{
		@pids = grep { kill 0, $_ } @pids;
		return if !@pids;
		usleep(10_000);
	}
	die "server processes @pids did not exit";
}

sub postmaster_pid
{
	my ($node) = @_;
	my ($pm) = slurp_file($node->data_dir . '/postmaster.pid') =~ /^(\d+)/;
	return $pm;
}

1;
