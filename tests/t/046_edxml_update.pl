# Replace and update between two agencies on two clusters, each with its
# own worker, joined by the stand-in VXP axis (axis_standin.py; the setup is
# 040's): A issues a document to B; A drafts its replacement, names what it
# replaces (replace_issued) and issues it: B's worker files the new document
# (01), supersedes its copy of the old one (kept, read-only) and answers 15;
# A's old document is frozen as replaced, and A sees 01 and 15 on the new
# one.  A then updates the new document (due date; update_issued) while the
# axis lists every package twice: B applies it once, keeps the previous
# value, and answers 15; A's clerk sees the answer in update_status.
use strict;
use warnings;
use File::Basename qw(dirname);
use File::Copy qw(copy);
use lib dirname(__FILE__);
use HTTP::Tiny;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

use IofficeTest;

plan skip_all => 'python3 is not installed' if system('command -v python3 >/dev/null 2>&1') != 0;

my $pki = PostgreSQL::Test::Utils::tempdir;
my $keystore = PostgreSQL::Test::Utils::tempdir;
my $dir = PostgreSQL::Test::Utils::tempdir;
system_or_bail('bash', dirname(__FILE__) . '/../pki/make_pki', $pki);
copy("$pki/seal.key", "$keystore/seal.key") or die "copy: $!";
chmod 0600, "$keystore/seal.key";
my $chain = slurp_file("$pki/intermediate.pem");

# --- the stand-in axis --------------------------------------------------------------
my %secret = ('000.00.32.H41' => 'secret-of-sop-cop-0123456789', '000.00.00.G22' => 'secret-of-vpcp-0123456789');
{
	open my $fh, '>', "$dir/axis.json" or die;
	print $fh JSON::PP->new->encode({ systems => \%secret, endpoint_secret => 'endpoint-secret-0123456789' });
	close $fh;
}
my $standin_pid = fork // die "fork: $!";
if ($standin_pid == 0)
{
	exec('python3', dirname(__FILE__) . '/axis_standin.py', "$dir/axis.json", "$dir/axis.port") or die "exec: $!";
}
# the stand-in goes with the test, even one that dies half-way
END { kill 'TERM', $standin_pid if $standin_pid; }
for (1 .. 1200)
{
	last if -s "$dir/axis.port";
	usleep(50_000);
}
die 'the stand-in axis did not start' unless -s "$dir/axis.port";
my $port = slurp_file("$dir/axis.port");
my $http = HTTP::Tiny->new(timeout => 10);

sub mode
{
	my ($m) = @_;
	my $r = $http->post("http://127.0.0.1:$port/control/mode",
		{ content => encode_json({ mode => $m }), headers => { 'Content-Type' => 'application/json' } });
	die "mode $m: $r->{status}" unless $r->{success};
	return;
}

sub stats
{
	my $r = $http->get("http://127.0.0.1:$port/control/stats");
	return decode_json($r->{content});
}

# --- the two agencies -----------------------------------------------------------------
sub agency_node
{
	my ($name, $sql) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'ioffice'
ioffice.worker_databases = 'postgres'
ioffice.keystore = '$keystore'
ioffice.worker_naptime = 1
});
	$node->start;
	$node->safe_psql('postgres', $sql);
	return $node;
}

my $seal = sql_literal(slurp_file("$pki/seal.pem") . $chain);
my $root = sql_literal(slurp_file("$pki/root.pem"));
my $a = agency_node('agency_a', qq{
CREATE EXTENSION ioffice;
SELECT ioffice.add_agency('UBND huyện Sốp Cộp', 'UBND', '000.00.32.H41');
SELECT ioffice.add_department(1, 'Văn phòng HĐND-UBND', 'VP');
SELECT ioffice.add_person('regress_luan', 'Tòng Văn Luân', 'Chuyên viên', 2, '{specialist}');
SELECT ioffice.add_person('dai', 'Trần Văn Đại', 'Chánh Văn phòng', 2, '{leader}');
SELECT ioffice.add_person('regress_thuy', 'Tòng Văn Thủy', 'Văn thư', 1, '{clerk}');
SELECT ioffice.add_trust_anchor($root);
SELECT ioffice.register_certificate('organisation', '000.00.32.H41', $seal, 'seal.key');
SELECT ioffice.add_exchange_seal('000.00.00.G22', $seal);
INSERT INTO ioffice.exchange_axis (agency_id, transport, url, system_id, secret, poll_seconds, timeout_ms)
VALUES (1, 'vxp', 'http://127.0.0.1:$port/', '000.00.32.H41', '$secret{'000.00.32.H41'}', 1, 2000);
});
my $b = agency_node('agency_b', qq{
CREATE EXTENSION ioffice;
SELECT ioffice.add_agency('Văn phòng Chính phủ', 'VPCP', '000.00.00.G22');
SELECT ioffice.add_department(1, 'Vụ Hành chính', 'HC');
SELECT ioffice.add_person('regress_vt', 'Nguyễn Thị Văn Thư', 'Văn thư', 1, '{clerk}');
SELECT ioffice.add_person('regress_ld', 'Lê Văn Lãnh', 'Vụ trưởng', 2, '{leader}');
SELECT ioffice.add_person('regress_cv', 'Phạm Văn Chuyên', 'Chuyên viên', 2, '{specialist}');
SELECT ioffice.add_trust_anchor($root);
SELECT ioffice.register_certificate('organisation', '000.00.00.G22', $seal, 'seal.key');
SELECT ioffice.add_exchange_seal('000.00.32.H41', $seal);
INSERT INTO ioffice.exchange_axis (agency_id, transport, url, system_id, secret, poll_seconds, timeout_ms)
VALUES (1, 'vxp', 'http://127.0.0.1:$port', '000.00.00.G22', '$secret{'000.00.00.G22'}', 1, 2000);
});

sub issue
{
	my ($subject, $replaces) = @_;
	my $doc = as_actor($a, 'postgres', 'regress_luan',
		"SELECT ioffice.create_outgoing('CV', '$subject', "
		  . q{'{"signer": "dai", "urgency": "urgent", "recipients": ["000.00.00.G22", "Lưu: VT"]}')});
	as_actor($a, 'postgres', 'regress_luan',
		"SELECT ioffice.attach($doc, 'bao_cao.pdf', " . pdf_literal('Bao cao lien thong') . ")");
	as_actor($a, 'postgres', 'regress_luan', "SELECT ioffice.act($doc, 'submit', 'dai')");
	as_actor($a, 'postgres', 'regress_thuy', "SELECT ioffice.replace_issued($replaces, $doc, 'Sai số liệu, thay thế')")
	  if $replaces;
	as_actor($a, 'postgres', 'dai', "SELECT ioffice.act($doc, 'quick_approve')");
	as_actor($a, 'postgres', 'regress_thuy', "SELECT ioffice.act($doc, 'issue')");
	return $doc;
}

sub wait_for
{
	my ($node, $sql, $want, $seconds) = @_;
	my $got;
	my $until = time + ($seconds // 60);
	while (time < $until)
	{
		$got = $node->safe_psql('postgres', $sql);
		return $got if $got eq $want;
		usleep(100_000);
	}
	return $got;
}


# --- A issues a document to B; B receives it ----------------------------------------------
my $doc1 = issue('Kế hoạch có sai sót số liệu');
is(wait_for($b, 'SELECT count(*) FROM ioffice.edxml_received', '1'), '1', 'B filed the first document');
my $bdoc1 = $b->safe_psql('postgres', 'SELECT document_id FROM ioffice.edxml_received ORDER BY id LIMIT 1');
is(wait_for($a, "SELECT count(*) FROM ioffice.edxml_status WHERE document_id = $doc1 AND direction = 'received' AND code = '01'", '1'),
	'1', 'A received its 01');
as_actor($b, 'postgres', 'regress_vt', "SELECT ioffice.act($bdoc1, 'register')");

# --- A replaces it -----------------------------------------------------------------------------
my $doc2 = issue('Kế hoạch (thay thế)', $doc1);
is($a->safe_psql('postgres', "SELECT replaced_at IS NOT NULL FROM ioffice.document WHERE id = $doc1"), 't',
	'A\'s old document is marked replaced at the issue of its replacement');
is(wait_for($b, 'SELECT count(*) FROM ioffice.edxml_received', '2'), '2', 'B filed the replacement');
my $bdoc2 = $b->safe_psql('postgres', 'SELECT document_id FROM ioffice.edxml_received ORDER BY id OFFSET 1 LIMIT 1');
is(as_actor($b, 'postgres', 'regress_vt',
		"SELECT direction || ' ' || (replaced = $bdoc1) || ' ' || party || ' ' || reason || ' ' || answer FROM ioffice.replacement_status WHERE document = $bdoc2"),
	'received true 000.00.32.H41 Sai số liệu, thay thế accepted', 'B\'s clerk sees the copy it superseded');
is($b->safe_psql('postgres', "SELECT string_agg((replaced_at IS NOT NULL)::text || ' ' || state, ',' ORDER BY id) FROM ioffice.document WHERE id IN ($bdoc1, $bdoc2)"),
	'true registered,false received', 'B: the old copy superseded (kept), the new one received');
is($b->safe_psql('postgres', "SELECT count(*) FROM ioffice.file WHERE document_id = $bdoc1 AND octet_length(content) > 0"),
	'1', 'B keeps the superseded copy\'s file');
my ($rc, $out, $err) = try_as_actor($b, 'postgres', 'regress_vt', "SELECT ioffice.act($bdoc1, 'submit', 'regress_ld')");
like($err, qr/was replaced: it can no longer change/, 'B\'s superseded copy is read-only');
is($b->safe_psql('postgres', "SELECT string_agg(action, ',' ORDER BY id) FROM ioffice.audit WHERE entity = 'document' AND entity_id IN ($bdoc1, $bdoc2) AND action IN ('superseded', 'supersedes')"),
	'superseded,supersedes', 'B\'s trail: superseded, supersedes');
is(wait_for($a, "SELECT string_agg(code, ',' ORDER BY code) FROM ioffice.edxml_status WHERE document_id = $doc2 AND direction = 'received'", '01,15'),
	'01,15', 'A sees 01 and 15 on the replacement');
is(as_actor($a, 'postgres', 'regress_thuy', "SELECT party || ' ' || answer FROM ioffice.replacement_status WHERE document = $doc2"),
	'000.00.00.G22 accepted', 'A\'s clerk sees B accepted the replacement');
is(as_actor($a, 'postgres', 'regress_thuy', "SELECT package || ' ' || delivery FROM ioffice.exchange_status WHERE document = $doc2 AND code IS NULL"),
	'replace sent', 'A\'s clerk sees the replacement package sent');
is($a->safe_psql('postgres', "SELECT string_agg(action, ',' ORDER BY id) FROM ioffice.audit WHERE entity = 'document' AND entity_id = $doc1 AND action = 'replaced'"),
	'replaced', 'A\'s trail: the old document replaced');

# --- A updates the replacement (the axis lists it twice) --------------------------------------
mode('duplicate');
my $upd = as_actor($a, 'postgres', 'dai',
	q{SELECT ioffice.update_issued(} . $doc2 . q{, '{"due_date": "2030-06-30"}', 'Gia hạn báo cáo')});
is(wait_for($a, "SELECT state FROM ioffice.edxml_outgoing WHERE update_id = $upd", 'sent'), 'sent',
	'A\'s worker sealed and sent the update package');
is(wait_for($b, "SELECT count(*) FROM ioffice.document_update WHERE document_id = $bdoc2", '1'), '1',
	'B applied the update');
sleep 2;
mode('normal');
is($b->safe_psql('postgres', "SELECT count(*) FROM ioffice.document_update WHERE document_id = $bdoc2")
	  . ' ' . $b->safe_psql('postgres', "SELECT count(*) FROM ioffice.edxml_status WHERE document_id = $bdoc2 AND code = '15' AND description = 'Đã cập nhật'"),
	'1 1', 'listed twice: handled once');
is(as_actor($b, 'postgres', 'regress_vt',
		"SELECT (changes->'due_date'->>'new') || ' ' || (changes->'due_date' ? 'old') || ' ' || answer FROM ioffice.update_status WHERE document = $bdoc2"),
	'2030-06-30 true accepted', 'B keeps the previous value with the new one');
is($b->safe_psql('postgres', "SELECT due_date FROM ioffice.document WHERE id = $bdoc2"), '2030-06-30',
	'B\'s copy has the new due date');
is(wait_for($a, "SELECT string_agg(code, ',' ORDER BY code) FROM ioffice.edxml_status WHERE document_id = $doc2 AND direction = 'received'", '01,15,15'),
	'01,15,15', 'A sees 15 on the update');
is(as_actor($a, 'postgres', 'regress_thuy', "SELECT party || ' ' || answer || ' ' || answer_reason FROM ioffice.update_status WHERE document = $doc2"),
	'000.00.00.G22 accepted Đã cập nhật', 'A\'s clerk sees B accepted the update');
is($a->safe_psql('postgres', "SELECT string_agg(action, ',' ORDER BY id) FROM ioffice.audit WHERE entity = 'document' AND entity_id = $doc2 AND action ~ '^(update|replace)'"),
	'replaces,replace_accepted,update,update_accepted', 'A\'s trail: replaces, accepted, update, accepted');

kill 'TERM', $standin_pid;
waitpid($standin_pid, 0);
$a->stop;
$b->stop;
done_testing();
