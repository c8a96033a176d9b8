# Backups and a point-in-time restore drill on scripts/ha's cluster:
# pgBackRest takes a full backup from the leader with WAL archived
# continuously; clerks take numbers; a DBA's mistaken bulk UPDATE rewrites
# every person's name (and is itself audited); an incremental backup follows.
# The restore to the moment before the mistake, into a folder of its own on a
# server of its own: the names as they were, every number taken before the
# mistake there and none after, the register gapless, audit_verify() clean.
use strict;
use warnings;
use File::Basename qw(dirname);
use IPC::Run qw(run);
use Time::HiRes qw(usleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib dirname(__FILE__);
use IofficeTest;

for my $tool (qw(patroni etcd haproxy pgbouncer pgbackrest))
{
	plan skip_all => "$tool is not installed" unless grep { -x "$_/$tool" } split /:/, "$ENV{PATH}:/usr/sbin";
}

my $src = $ENV{IOFFICE_SRC} // dirname(__FILE__) . '/../..';
my $dir = PostgreSQL::Test::Utils::tempdir;
my $ha = "$dir/ha";
my $base = $ENV{IOFFICE_HA_PORT} // free_port_block(63000, 64999, 50);
my $write = $base + 30;
$ENV{PGPASSWORD} = 'ha-postgres';
$ENV{IOFFICE_HA_PORT} = $base;
$ENV{IOFFICE_HA_NO_BUILD} = 1;

sub ha { my @a = @_; my ($out, $err); run([ 'bash', "$src/scripts/ha", @a ], '>', \$out, '2>', \$err); return ($? == 0, $out // '', $err // ''); }

sub psql
{
	my ($port, $sql, $host) = @_;
	my ($out, $err);
	run([ 'psql', '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-h', $host // '127.0.0.1', '-p', $port,
		  '-U', 'postgres', '-d', 'ioffice', '-c', $sql ], '>', \$out, '2>', \$err);
	return $out =~ s/\s+$//r if $? == 0;
	note("psql on $port: $err");
	return undef;
}

my $restored;
END
{
	$restored->stop('immediate') if $restored && $restored->{_pid};
	ha('stop', $ha) if -d $ha;
}

my ($ok, $out, $err) = ha('start', $ha);
ok($ok, 'scripts/ha start, with the pgBackRest stanza created and checked') or diag("$out\n$err");
BAIL_OUT('no cluster') unless $ok;

defined psql($write, q{
SELECT ioffice.add_agency('UBND huyện Sốp Cộp', 'UBND', '000.00.32.H41');
SELECT ioffice.add_department(1, 'Văn phòng HĐND-UBND', 'VP');
SELECT ioffice.add_person('ld', 'Trần Văn Đại', 'Chánh Văn phòng', 2, '{leader}');
SELECT ioffice.add_person('vt', 'Tòng Văn Thủy', 'Văn thư', 1, '{clerk}');
}) or BAIL_OUT('set-up');
my $reg = psql($write, q{SELECT id FROM ioffice.register WHERE direction = 'outgoing' ORDER BY id LIMIT 1});
sub take { my $n = shift; psql($write, "BEGIN; SET LOCAL ioffice.actor = 'vt'; SELECT count(*) FROM (SELECT ioffice.take_number($reg, 'CV') FROM generate_series(1, $n)) x; COMMIT;"); }

($ok, $out, $err) = ha('backup', $ha, 'full');
ok($ok, 'a full backup of the leader') or diag("$out\n$err");
sleep 2;    # (pgBackRest restores to a time after a backup set's stop time, to the second)
take(20);

# the moment to go back to: every number so far, the names as they are
my ($target, $numbers, $names, $audit) = split /\|/, psql($write, q{
SELECT now(), (SELECT count(*) FROM ioffice.number_taken),
       (SELECT string_agg(full_name, ',' ORDER BY id) FROM ioffice.person),
       (SELECT count(*) FROM ioffice.audit)});
is($numbers, 20, 'twenty numbers taken before the moment');
sleep 1;

# the mistake, and work after it
ok(defined psql($write, q{UPDATE ioffice.person SET full_name = 'NHẦM'}), 'a DBA rewrites every name by mistake');
take(5);
($ok, $out, $err) = ha('backup', $ha, 'incr');
ok($ok, 'an incremental backup after it') or diag("$out\n$err");
ok(defined psql($write, 'SELECT pg_switch_wal()'), 'the WAL of the mistake goes to the archive');

# the restore drill: a server of its own on the restored folder, recovering
# to the moment before the mistake
$restored = PostgreSQL::Test::Cluster->new('restored');
my $pgdata = $restored->data_dir;
mkdir $restored->basedir;
mkdir $pgdata, 0700 or die "mkdir $pgdata: $!";
($ok, $out, $err) = (0, '', '');
run([ 'pgbackrest', "--config=$ha/pgbackrest.conf", '--stanza=ioffice', "--pg1-path=$pgdata",
	  '--type=time', "--target=$target", '--target-action=promote', 'restore' ], '>', \$out, '2>', \$err);
ok($? == 0, 'pgbackrest restore to the moment before the mistake') or diag("$out\n$err");
# its own port and socket, no archiving, no worker, nothing of the cluster's
$restored->append_conf('postgresql.auto.conf', qq{
port = @{[ $restored->port ]}
listen_addresses = ''
unix_socket_directories = '@{[ $restored->host ]}'
archive_mode = off
ioffice.worker_databases = ''
});
$restored->start;
ok($restored->poll_query_until('ioffice', 'SELECT NOT pg_is_in_recovery()'), 'the restored server recovered and is promoted');
is($restored->safe_psql('ioffice', q{SELECT string_agg(full_name, ',' ORDER BY id) FROM ioffice.person}),
	$names, 'the names are as they were before the mistake');
is($restored->safe_psql('ioffice', q{SELECT count(*) FROM ioffice.number_taken}), $numbers,
	'every number taken before the moment, none after');
is($restored->safe_psql('ioffice', "SELECT count(*) = max(number) FROM ioffice.number_taken WHERE register_id = $reg"),
	't', 'the register is gapless');
is($restored->safe_psql('ioffice', 'SELECT count(*) FROM ioffice.audit'), $audit, 'the audit trail as it was at the moment');
is($restored->safe_psql('ioffice', 'SELECT count(*) FROM ioffice.audit_verify()'), '0', 'audit_verify() clean');
$restored->stop;

done_testing();
