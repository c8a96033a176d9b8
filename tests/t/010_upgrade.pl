# ALTER EXTENSION ioffice UPDATE from 0.1, as a DBA upgrades: version 0.1 is
# built from its git tag and installed, with the server's own files, into a
# private installation; a database is filled through 0.1's API (the seed
# cases, a dossier, signature requests, outbox rows); the library and scripts
# of the version under test replace 0.1's, the server restarts, and
# ALTER EXTENSION ioffice UPDATE brings the database to the new version.  Then:
# its schema equals a fresh install's, object by object; the data is intact;
# audit_verify() is clean; and work goes on (the register's numbers continue).
use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Copy qw(copy);
use File::Path qw(make_path);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $src = $ENV{IOFFICE_SRC} // abs_path(dirname(__FILE__) . '/../..');
# the system's pg_config (headers); the one on PATH is the installation under test
my $sys_pg_config = $ENV{PG_CONFIG} // 'pg_config';
my $tmp = PostgreSQL::Test::Utils::tempdir;

sub pg_config_of
{
	my ($pg_config, $key) = @_;
	my $v = `$pg_config --$key`;
	chomp $v;
	die "$pg_config --$key failed" if $? != 0 || $v eq '';
	return $v;
}

sub run_logged
{
	my ($what, @cmd) = @_;
	my $log = "$tmp/$what.log";
	my $rc = system("@cmd >'$log' 2>&1");
	if ($rc != 0)
	{
		diag(slurp_file($log));
		BAIL_OUT("$what failed: @cmd");
	}
}

# ---------------------------------------------------------------------------
# 0.1, built from its tag into a private copy of the server's installation
# ---------------------------------------------------------------------------
my $root = "$tmp/root";
for my $key (qw(bindir pkglibdir sharedir))
{
	my $d = pg_config_of($sys_pg_config, $key);
	make_path(dirname("$root$d"));
	run_logged("copy_$key", 'cp', '-a', $d, "$root$d");
}
my $bindir = pg_config_of($sys_pg_config, 'bindir');
my $install_path = dirname("$root$bindir");

my $git = "git -c safe.directory='*' -C '$src'";
my $rev = `$git rev-parse -q --verify 'v0.1^{commit}' 2>/dev/null`;
chomp $rev;
$rev = '844811b820de2bc15132d47f66b5968959c58b25' if $rev eq '';
make_path("$tmp/src01");
run_logged('archive', "$git archive --format=tar $rev | tar -x -C '$tmp/src01'");
run_logged('build01', 'make', '-C', "$tmp/src01", '-j2', '-s', "PG_CONFIG=$sys_pg_config");
run_logged('install01', 'make', '-C', "$tmp/src01", '-s', "PG_CONFIG=$sys_pg_config",
	"DESTDIR=$root", 'install');
ok(-f "$root" . pg_config_of($sys_pg_config, 'sharedir') . '/extension/ioffice--0.1.sql',
	'0.1 built from its tag and installed');

my $node = PostgreSQL::Test::Cluster->new('upgrade', install_path => $install_path);
$node->init(extra => [ '--encoding=UTF8', '--no-locale' ]);
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'ioffice'\n");
$node->start;

# ---------------------------------------------------------------------------
# a database filled through 0.1's own API: its regress scripts for the seeds
# (whose people have 0.1's logins: luan, dai, thuy)
# (setup, case A, case B, the dossier of seed 003), run as a client would;
# the statements they expect to be refused are refused as in 0.1
# ---------------------------------------------------------------------------
$node->safe_psql('postgres', 'CREATE DATABASE old');
$node->safe_psql('old', q{CREATE EXTENSION ioffice VERSION '0.1'});
for my $script (qw(setup case_a case_b dossier))
{
	$node->psql('old', slurp_file("$tmp/src01/tests/sql/$script.sql"),
		on_error_stop => 0);
}
# the dossier script empties the outbox at its end; numbers for an external
# system (take_number) and events waiting for delivery, through the API too
$node->safe_psql(
	'old', q{
	INSERT INTO ioffice.endpoint (name, url, secret, events)
	VALUES ('upgrade', 'http://127.0.0.1:9/hook', 'upgrade-test-secret-01', '{*}');
	SELECT ioffice.emit('test.before_upgrade', '{"n": 1}');
	BEGIN;
	SET LOCAL ioffice.actor = 'thuy';
	SELECT ioffice.take_number(r.id, 'QĐ') FROM ioffice.register r JOIN ioffice.unit a ON a.id = r.agency_id
	WHERE a.code = '000.00.32.H41' AND r.direction = 'outgoing' AND NOT r.confidential
	  AND r.year = extract(year FROM now() AT TIME ZONE 'Asia/Ho_Chi_Minh') ORDER BY r.id LIMIT 1;
	COMMIT;});
is( $node->safe_psql(
		'old', q{
	SELECT concat_ws(' ', what) FROM (VALUES
	    ('issued documents', (SELECT count(*) FROM ioffice.document WHERE state = 'issued') > 1),
	    ('dossiers', (SELECT count(*) FROM ioffice.dossier) > 1),
	    ('signatures', (SELECT count(*) FROM ioffice.signature) > 0),
	    ('outbox rows', (SELECT count(*) FROM ioffice.outbox) > 0),
	    ('numbers', (SELECT count(*) FROM ioffice.number_taken) > 0),
	    ('audit records', (SELECT count(*) FROM ioffice.audit) > 50)) AS t(what, present)
	WHERE NOT present}),
	'',
	'0.1 database holds issued documents, dossiers, signatures, outbox rows, numbers, audit');
# 0.1 numbered checkpoints from a sequence: a rolled-back audit_seal()
# leaves a number unused, which 0.2 must not take for a removed checkpoint
$node->safe_psql('old', q{
BEGIN; SELECT ioffice.audit_seal(); ROLLBACK;
SELECT ioffice.audit_seal();
INSERT INTO ioffice.holiday (day, name) VALUES ('2031-01-01', 'Tết Dương lịch');
BEGIN; SELECT ioffice.audit_seal(); ROLLBACK;
SELECT ioffice.audit_seal();});
is($node->safe_psql('old', q{SELECT count(*) || ' ' || max(id) FROM ioffice.audit_checkpoint}),
	'2 4', '0.1: two checkpoints, numbered with gaps (1 and 3 rolled back)');
is($node->safe_psql('old', 'SELECT count(*) FROM ioffice.audit_verify()'),
	'0', '0.1: audit_verify() clean before the upgrade');
# records written after 0.1's last checkpoint: 0.1's checkpoints say nothing
# of where a seal reads from, so the first seal after the upgrade must read
# the whole trail
$node->safe_psql('old', q{
INSERT INTO ioffice.holiday (day, name) VALUES ('2031-04-30', 'Ngày Giải phóng miền Nam');
UPDATE ioffice.holiday SET name = 'Tết Dương lịch (nghỉ bù)' WHERE day = '2031-01-01';});
my $unsealed_sql = q{
	SELECT count(*) FROM (SELECT DISTINCT ON (chain) chain, seq, hash FROM ioffice.audit
	                       WHERE chain IS NOT NULL ORDER BY chain, seq DESC) h
	 WHERE NOT EXISTS (SELECT 1 FROM ioffice.audit_checkpoint_head s
	                    WHERE s.chain = h.chain AND s.seq = h.seq AND s.hash = h.hash)};
cmp_ok($node->safe_psql('old', $unsealed_sql), '>', 0, '0.1: chains moved since its last checkpoint');

# every table's rows, as 0.1 has them (columns of 0.1 only, in a fixed order)
my $tables_sql = q{
	SELECT c.relname, string_agg(quote_ident(a.attname), ',' ORDER BY a.attname)
	FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
	WHERE n.nspname = 'ioffice' AND c.relkind IN ('r', 'p')
	GROUP BY c.relname ORDER BY c.relname};
my @tables = map { [ split /\|/ ] } split /\n/, $node->safe_psql('old', $tables_sql);

# (rows the install script makes, marked builtin, are the version's own: an
# upgrade may change them, and they are compared with a fresh install's)
sub table_digests
{
	my ($db, $builtin) = @_;
	my $sql = join("\nUNION ALL ",
		map {
			my $where = $_->[1] =~ /\bbuiltin\b/ ? ($builtin ? 'WHERE builtin' : 'WHERE NOT builtin') : '';
			"SELECT '$_->[0]', count(*), md5(coalesce(string_agg(r::text, E'\\n' ORDER BY r::text), '')) "
			  . "FROM (SELECT $_->[1] FROM ioffice.$_->[0] $where) AS r"
		} grep { !$builtin || $_->[1] =~ /\bbuiltin\b/ } @tables);
	return $node->safe_psql($db, $sql);
}
my $before = table_digests('old');
# the outgoing register's names (Người ký, bản lưu), kept by the upgrade
my $names_sql = q{SELECT coalesce(string_agg(concat_ws('|', register_id, number, signer, archive_unit),
	E'\n' ORDER BY register_id, number), '') FROM ioffice.outgoing_register};
my $names_before = $node->safe_psql('old', $names_sql);
# the register the seeds issued into, and the number it will give next
my ($register, $next_number) = split /\|/, $node->safe_psql(
	'old', q{
	SELECT r.id, r.next_number FROM ioffice.register r JOIN ioffice.unit a ON a.id = r.agency_id
	WHERE a.code = '000.00.32.H41' AND r.direction = 'outgoing' AND NOT r.confidential
	  AND r.year = extract(year FROM now() AT TIME ZONE 'Asia/Ho_Chi_Minh') ORDER BY r.id LIMIT 1});
ok($next_number > 2, "0.1 register has numbers given ($next_number next)");

# ---------------------------------------------------------------------------
# the new version's files replace 0.1's (as a package upgrade does); restart
# ---------------------------------------------------------------------------
$node->stop;
my $new_lib = pg_config_of('pg_config', 'pkglibdir');
my $new_ext = pg_config_of('pg_config', 'sharedir') . '/extension';
my $root_lib = $root . pg_config_of($sys_pg_config, 'pkglibdir');
my $root_ext = $root . pg_config_of($sys_pg_config, 'sharedir') . '/extension';
copy("$new_lib/ioffice.so", "$root_lib/ioffice.so") or die "copy ioffice.so: $!";
for my $f (glob "$new_ext/ioffice*")
{
	copy($f, "$root_ext/" . (split m{/}, $f)[-1]) or die "copy $f: $!";
}
$node->start;

my $target = $node->safe_psql('old',
	q{SELECT default_version FROM pg_available_extensions WHERE name = 'ioffice'});
isnt($target, '0.1', "the new version ($target) is installed");
$node->safe_psql('old', 'ALTER EXTENSION ioffice UPDATE');
is($node->safe_psql('old', q{SELECT extversion FROM pg_extension WHERE extname = 'ioffice'}),
	$target, "ALTER EXTENSION ioffice UPDATE reached $target");

# ---------------------------------------------------------------------------
# the schema equals a fresh install of the new version, object by object
# (pg_dump prints an extension's members as one CREATE EXTENSION line, so the
# objects are described from the catalogs)
# ---------------------------------------------------------------------------
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION ioffice');
my $schema_sql = slurp_file(dirname(__FILE__) . '/schema_objects.sql');
my $upgraded = $node->safe_psql('old', $schema_sql);
my $fresh = $node->safe_psql('fresh', $schema_sql);
my %in_fresh = map { $_ => 1 } split /\n/, $fresh;
my %in_upgraded = map { $_ => 1 } split /\n/, $upgraded;
my @only_upgraded = grep { !$in_fresh{$_} } split /\n/, $upgraded;
my @only_fresh = grep { !$in_upgraded{$_} } split /\n/, $fresh;
ok(length($fresh) > 10000, 'the schema description is not empty');
is(scalar(@only_upgraded) + scalar(@only_fresh), 0, 'upgraded schema equals a fresh install')
  or diag(join("\n", (map { "only after upgrade: $_" } @only_upgraded),
		(map { "only in a fresh install: $_" } @only_fresh)));

# ---------------------------------------------------------------------------
# the data is intact, the audit trail too, and work goes on
# ---------------------------------------------------------------------------
{
	my %was = map { (split /\|/)[0] => $_ } split /\n/, $before;
	my @changed = grep { ($was{ (split /\|/)[0] } // '') ne $_ } split /\n/, table_digests('old');
	is(join(' ', map { (split /\|/)[0] } @changed), '', 'every row of every 0.1 table is unchanged');
}
# the builtin rows (of the new version's columns) are a fresh install's
@tables = map { [ split /\|/ ] } split /\n/, $node->safe_psql('fresh', $tables_sql);
is(table_digests('old', 1), table_digests('fresh', 1),
	'the builtin rule rows are those of a fresh install');
is($node->safe_psql('old', 'SELECT count(*) FROM ioffice.audit_verify()'),
	'0', 'audit_verify() clean after the upgrade');
$node->safe_psql('old', 'SELECT ioffice.audit_seal()');
is($node->safe_psql('old', q{SELECT horizon IS NOT NULL FROM ioffice.audit_checkpoint ORDER BY id DESC LIMIT 1})
	  . ' ' . $node->safe_psql('old', $unsealed_sql),
	't 0', 'the first seal after the upgrade covers every chain, and keeps where the next reads from');
# the home page's kept counters were counted from the documents already there
is($node->safe_psql('old',
		q{SELECT (SELECT count(*) FROM ioffice.dashboard_counts_check()) || ' '
		  || (SELECT count(*) > 0 FROM ioffice.dashboard_count WHERE n > 0)}),
	'0 true', 'dashboard counters filled by the upgrade, as the tabs count');
# the numbered entries were given the names they showed; the register reads
# them, not the directory's names of today
is($node->safe_psql(
		'old', qq{
	BEGIN;
	UPDATE ioffice.person SET full_name = full_name || ' (sửa)';
	UPDATE ioffice.unit SET name = name || ' (sửa)';
	$names_sql;
	ROLLBACK;}),
	$names_before, 'the upgraded register keeps its signers and units when the directory changes');

my $doc = $node->safe_psql(
	'old', q{
	BEGIN;
	SET LOCAL ioffice.actor = 'luan';
	SELECT ioffice.create_outgoing('CV', 'V/v sau khi nâng cấp');
	COMMIT;});
$node->safe_psql(
	'old', qq{
	BEGIN;
	SET LOCAL ioffice.actor = 'luan';
	SELECT ioffice.attach($doc, 'nang_cap.pdf', convert_to('%PDF-1.4 nâng cấp', 'UTF8'));
	SELECT ioffice.act($doc, 'submit', 'dai');
	SET LOCAL ioffice.actor = 'dai';
	SELECT ioffice.act($doc, 'quick_approve');
	SET LOCAL ioffice.actor = 'thuy';
	SELECT ioffice.act($doc, 'issue', NULL, NULL, '{"register": $register}');
	COMMIT;});
is($node->safe_psql('old', "SELECT number FROM ioffice.document WHERE id = $doc"),
	$next_number, 'the register goes on from its last number');
$node->safe_psql('old', 'SELECT ioffice.audit_seal()');
is($node->safe_psql('old', $unsealed_sql), '0', 'the next seal reads from there and covers the work');
is($node->safe_psql('old', 'SELECT count(*) FROM ioffice.audit_verify()'),
	'0', 'audit_verify() clean after work on the upgraded database');
is($node->safe_psql('old', 'SELECT count(*) FROM ioffice.dashboard_counts_check()'),
	'0', 'dashboard counters kept after work on the upgraded database');

$node->stop;
done_testing();
