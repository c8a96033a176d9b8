# Without shared_preload_libraries, ioffice cannot register its worker or its
# server-wide settings.  CREATE EXTENSION and any call of its functions must
# then fail with an ERROR that says what to do, and the session must live on
# (it used to end with FATAL: cannot create PGC_POSTMASTER variables after
# startup).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('without_preload');
$node->init(extra => [ '--encoding=UTF8', '--no-locale' ]);
$node->start;

my ($rc, $out, $err) = $node->psql('postgres',
	"CREATE EXTENSION ioffice;\nSELECT 'alive';",
	on_error_stop => 0, extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/ERROR:  55000: ioffice must be loaded via shared_preload_libraries/,
	'CREATE EXTENSION: ERROR 55000 naming shared_preload_libraries');
like($err, qr/HINT:  Add ioffice to shared_preload_libraries in postgresql\.conf/,
	'with a hint saying where to add it');
unlike($err, qr/FATAL/, 'no FATAL');
is($out, 'alive', 'the session goes on after the error');

# LOAD, and again in the same session: the same ERROR each time
($rc, $out, $err) = $node->psql('postgres',
	"LOAD 'ioffice';\nLOAD 'ioffice';\nSELECT 'still alive';", on_error_stop => 0);
is(scalar(() = $err =~ /ERROR:  ioffice must be loaded via shared_preload_libraries/g),
	2, 'LOAD twice: the error twice');
is($out, 'still alive', 'the session goes on after LOAD');

# with the library preloaded, the same database takes the extension
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'ioffice'\n");
$node->restart;
is($node->safe_psql('postgres', "CREATE EXTENSION ioffice; SELECT extversion FROM pg_extension WHERE extname = 'ioffice'"),
	$node->safe_psql('postgres', "SELECT default_version FROM pg_available_extensions WHERE name = 'ioffice'"),
	'preloaded: CREATE EXTENSION works');

$node->stop;
done_testing();
