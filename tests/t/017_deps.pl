# scripts/deps installs what is missing and touches nothing else: above all
# no PostgreSQL cluster it did not create (it used to stop Debian's own
# cluster, "pg_ctlcluster 15 main stop", whenever a package was missing).
# The package and service tools are stand-ins on PATH that record their
# calls, so the test runs anywhere, as any user, and installs nothing.
use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use PostgreSQL::Test::Utils;
use Test::More;

my $src = $ENV{IOFFICE_SRC} // abs_path(dirname(__FILE__) . '/../..');
my $dir = PostgreSQL::Test::Utils::tempdir;
my $log = "$dir/calls.log";

# every tool the script might call to install packages or to start and stop
# services or clusters; dpkg-query says installed for all but $MISSING
my %stub = (
	'dpkg-query' => q{for a; do p=$a; done
case " $MISSING " in *" $p "*) echo "deinstall ok not-installed";; *) echo "install ok installed";; esac},
	'sudo' => q{echo "sudo $*" >> "$CALLS"; exec "$@"},
	map { $_ => q{echo "$(basename "$0") $*" >> "$CALLS"} }
	  qw(apt-get pg_ctlcluster pg_ctl pg_dropcluster systemctl service invoke-rc.d killall pkill));
mkdir "$dir/bin";
for my $name (keys %stub)
{
	open my $f, '>', "$dir/bin/$name" or die $!;
	print $f "#!/bin/bash\n$stub{$name}\n";
	close $f;
	chmod 0755, "$dir/bin/$name";
}

sub run_deps
{
	my ($missing) = @_;
	unlink $log;
	local $ENV{PATH} = "$dir/bin:$ENV{PATH}";
	local $ENV{MISSING} = $missing;
	local $ENV{CALLS} = $log;
	my $rc = system('bash', "$src/scripts/deps");
	my $calls = -f $log ? slurp_file($log) : '';
	return ($rc, $calls);
}

my ($rc, $calls) = run_deps('');
is($rc, 0, 'nothing missing: success');
is($calls, '', 'nothing missing: no tool called');

($rc, $calls) = run_deps('postgresql-15 pgbouncer');
is($rc, 0, 'PostgreSQL missing: success');
like($calls, qr/^apt-get install .*postgresql-15 pgbouncer$/m, 'the missing packages are installed');
unlike($calls, qr/^(pg_ctlcluster|pg_ctl|pg_dropcluster|killall|pkill) /m,
	'no cluster is stopped, started or dropped');
unlike($calls, qr/^(systemctl|service|invoke-rc\.d) .*postgres/m, 'the postgresql service is left alone');

($rc, $calls) = run_deps('nginx');
is($rc, 0, 'nginx missing: success');
like($calls, qr/^(systemctl disable --now nginx\.service|service nginx stop)$/m,
	'the nginx this run installed is stopped (the benchmark runs its own)');
unlike($calls, qr/postgres|pg_ctl/, 'and nothing of PostgreSQL is touched');

done_testing();
