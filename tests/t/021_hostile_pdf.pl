# Crash containment: every PDF is parsed by the helper process
# (helpers/ioffice_pdf), which the worker and verify() exec with limits; a
# hostile PDF costs one job or one verify() row, and the server never
# restarts.  The corpus: truncated, a looping xref (/Prev to itself), huge
# object numbers, deep nesting, a huge /Length, garbage after the header;
# and, with IOFFICE_PDF_HELPER_TESTING=1 in the server's environment, files
# that make the real helper abort, loop forever, or eat memory without end.
use strict;
use warnings;
use File::Basename qw(dirname);
use File::Copy qw(copy);
use lib dirname(__FILE__);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use IPC::Run;

use IofficeTest;

my $pki = PostgreSQL::Test::Utils::tempdir;
my $keystore = PostgreSQL::Test::Utils::tempdir;
my $dir = PostgreSQL::Test::Utils::tempdir;
system_or_bail('bash', dirname(__FILE__) . '/../pki/make_pki', $pki);
copy("$pki/person_rsa.key", "$keystore/person_rsa.key") or die "copy: $!";
chmod 0600, "$keystore/person_rsa.key";

my $node = PostgreSQL::Test::Cluster->new('hostile_pdf');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'ioffice'
ioffice.worker_databases = 'postgres'
ioffice.keystore = '$keystore'
ioffice.keystore_personal = on
ioffice.worker_naptime = 1
ioffice.pdf_helper_timeout = 4
ioffice.pdf_helper_cpu = 2
ioffice.pdf_helper_memory = 256
restart_after_crash = on
});
# the helper's test hooks (abort, loop, eat memory) for files that ask
$ENV{IOFFICE_PDF_HELPER_TESTING} = '1';
$node->start;
delete $ENV{IOFFICE_PDF_HELPER_TESTING};

my $chain = slurp_file("$pki/intermediate.pem");
$node->safe_psql('postgres', qq{
CREATE EXTENSION ioffice;
SELECT ioffice.add_agency('UBND huyện Sốp Cộp', 'UBND', '000.00.32.H41');
SELECT ioffice.add_department(1, 'Văn phòng HĐND-UBND', 'VP');
SELECT ioffice.add_person('regress_luan', 'Tòng Văn Luân', 'Chuyên viên', 2, '{specialist}');
SELECT ioffice.add_person('dai', 'Trần Văn Đại', 'Chánh Văn phòng', 2, '{leader}');
SELECT ioffice.add_trust_anchor(@{[ sql_literal(slurp_file("$pki/root.pem")) ]});
SELECT ioffice.register_certificate('personal', 'dai', @{[ sql_literal(slurp_file("$pki/person_rsa.pem") . $chain) ]}, 'person_rsa.key');
});

my $started = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');
my $worker_pid = $node->safe_psql('postgres', 'SELECT pid FROM ioffice.worker_status');
ok($worker_pid =~ /^\d+$/, 'the signing worker runs');
# a session that lives through the whole corpus: any backend crash would end it
my $session = $node->background_psql('postgres');
my $session_pid = $session->query_safe('SELECT pg_backend_pid()');

system_or_bail('perl', dirname(__FILE__) . '/../pdf/make_pdf.pl', 1, "$dir/good.pdf");
my $good = slurp_file("$dir/good.pdf");

# --- the corpus -------------------------------------------------------------------
my %corpus;
$corpus{truncated} = substr($good, 0, int(length($good) / 2));
{
	# the xref's /Prev points at itself
	my $x = "%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n";
	my $at = length $x;
	$x .= "xref\n0 3\n0000000000 65535 f \n0000000009 00000 n \n0000000058 00000 n \ntrailer\n<< /Size 3 /Root 1 0 R /Prev $at >>\nstartxref\n$at\n%%EOF\n";
	$corpus{looping_xref} = $x;
}
{
	my $x = "%PDF-1.4\n99999999999 0 obj\n<< /Type /Catalog /Pages 99999999998 0 R >>\nendobj\n";
	my $at = length $x;
	$x .= "xref\n0 1\n0000000000 65535 f \n99999999999 1\n0000000009 00000 n \n"
	  . "trailer\n<< /Size 99999999999999 /Root 99999999999 0 R >>\nstartxref\n$at\n%%EOF\n";
	$corpus{huge_object_numbers} = $x;
}
{
	my $deep = ('[' x 200000) . (']' x 200000);
	my $x = "%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R /Deep $deep >>\nendobj\n"
	  . "2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n";
	my $at = length $x;
	$x .= "xref\n0 3\n0000000000 65535 f \n0000000009 00000 n \n" . sprintf("%010d 00000 n \n", index($x, "2 0 obj"))
	  . "trailer\n<< /Size 3 /Root 1 0 R >>\nstartxref\n$at\n%%EOF\n";
	$corpus{deep_nesting} = $x;
}
{
	(my $x = $good) =~ s{/Length \d+}{/Length 99999999999};
	$corpus{huge_length} = $x;
}
$corpus{garbage} = "%PDF-1.7\n" . join('', map { chr(($_ * 7919 + 13) % 256) } 1 .. 20000);
$corpus{crash} = $good . "%ioffice-test-crash\n";
$corpus{hang} = $good . "%ioffice-test-hang\n";
$corpus{eat} = $good . "%ioffice-test-eat\n";

# what the contained failures must say (the rest: anything, as long as the
# server lives and the job ends)
my %expect = (
	crash => qr/killed by signal 6/,
	hang => qr/did not finish within 4 s|more than 2 s of CPU/,
	eat => qr/out of memory|killed by signal/,
);

sub attach
{
	my ($name, $bytes) = @_;
	my $doc = as_actor($node, 'postgres', 'regress_luan', "SELECT ioffice.create_outgoing('CV', 'Tệp độc hại $name')");
	my $file = as_actor($node, 'postgres', 'regress_luan',
		"SELECT ioffice.attach($doc, 'x.pdf', decode('" . unpack('H*', $bytes) . "', 'hex'))");
	return ($doc, $file);
}

my @docs;
for my $name (sort keys %corpus)
{
	my ($doc, $file) = attach($name, $corpus{$name});
	is($node->safe_psql('postgres', "SELECT kind FROM ioffice.file WHERE id = $file"), 'pdf', "$name: stored as a PDF");

	# verify() in a backend: the helper runs, the backend answers
	my ($rc, $out, $err) = $node->psql('postgres',
		"SET ioffice.actor = 'regress_luan'; SELECT count(*) || ':' || coalesce(string_agg(reason, ','), '-') FROM ioffice.verify($file)");
	is($rc, 0, "$name: verify() returns") or diag($err);
	like($out, $expect{$name}, "$name: verify() says why the PDF cannot be checked") if $expect{$name};

	as_actor($node, 'postgres', 'regress_luan', "SELECT ioffice.act($doc, 'submit', 'dai', NULL, '{\"request_signature\": true}')");
	as_actor($node, 'postgres', 'dai', "SELECT ioffice.act($doc, 'sign', NULL, NULL, '{\"mode\": \"auto\"}')");
	push @docs, [ $name, $doc ];
}

for my $d (@docs)
{
	my ($name, $doc) = @$d;
	ok($node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM ioffice.signature WHERE document_id = $doc AND status = 'pending'"),
		"$name: the signing job ends");
	my $outcome = $node->safe_psql('postgres',
		"SELECT status || ':' || coalesce(reason, '-') FROM ioffice.signature WHERE document_id = $doc");
	note("$name: $outcome");
	if ($expect{$name})
	{
		like($outcome, qr/^failed:/, "$name: the job failed");
		like($outcome, $expect{$name}, "$name: the job's reason says what happened");
	}
	else
	{
		like($outcome, qr/^(done|failed):/, "$name: the job is done or failed with its reason");
	}
}

# --- the server never restarted --------------------------------------------------------
is($node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()'), $started, 'the postmaster never restarted');
is($node->safe_psql('postgres', 'SELECT pid FROM ioffice.worker_status'), $worker_pid, 'the signing worker is the same process');
is($session->query_safe('SELECT pg_backend_pid()'), $session_pid, 'a session open throughout lives on');
$session->quit;
my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal|was terminated|all server processes terminated/,
	'the server log shows no crashed server process');

# and the next good PDF is signed inside, as usual
{
	my ($doc, $file) = attach('good', $good);
	as_actor($node, 'postgres', 'regress_luan', "SELECT ioffice.act($doc, 'submit', 'dai', NULL, '{\"request_signature\": true}')");
	as_actor($node, 'postgres', 'dai', "SELECT ioffice.act($doc, 'sign', NULL, NULL, '{\"mode\": \"auto\"}')");
	ok($node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM ioffice.signature WHERE document_id = $doc AND status = 'pending'"), 'a good PDF after the corpus is signed');
	is($node->safe_psql('postgres', "SELECT status || ':' || (signed_file_id IS NOT NULL) FROM ioffice.signature WHERE document_id = $doc"),
		'done:true', 'inside the PDF');
}

# --- the postmaster dies while a helper hangs --------------------------------------------
# A postmaster child waiting on a helper must go at once, not at the helper's
# deadline: until it does, the next postmaster cannot start.
{
	my ($doc, $file) = attach('hang again', $corpus{hang});
	# (the hanging helper spins: its CPU limit must not end it either)
	$node->safe_psql('postgres', 'ALTER SYSTEM SET ioffice.pdf_helper_timeout = 300; '
		  . 'ALTER SYSTEM SET ioffice.pdf_helper_cpu = 300; SELECT pg_reload_conf()');
	my ($out, $err) = ('', '');
	my $run = IPC::Run::start(
		[ 'psql', '-X', '-h', $node->host, '-p', $node->port, '-d', 'postgres', '-c',
		  "SET ioffice.actor = 'regress_luan'; SELECT count(*) FROM ioffice.verify($file)" ],
		'<', \undef, '>', \$out, '2>', \$err);
	ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE query LIKE '%ioffice.verify($file)%' AND state = 'active' AND pid <> pg_backend_pid()"),
		'a backend waits on a hanging helper');
	my $backend = $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE query LIKE '%ioffice.verify($file)%' AND pid <> pg_backend_pid()");
	sleep 1;
	$node->kill9;
	my $gone = 0;
	for (1 .. 150)
	{
		if (!kill(0, $backend)) { $gone = 1; last; }
		usleep(100_000);
	}
	ok($gone, 'the backend leaves within 15 s of the postmaster\'s death, not at the helper\'s deadline');
	$run->finish;
	$node->start;
	$node->safe_psql('postgres', 'ALTER SYSTEM RESET ioffice.pdf_helper_timeout; '
		  . 'ALTER SYSTEM RESET ioffice.pdf_helper_cpu; SELECT pg_reload_conf()');
}

$node->stop;
done_testing();
