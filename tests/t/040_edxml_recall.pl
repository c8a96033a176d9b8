# Recall between two agencies on two clusters, each with its own worker,
# joined by the stand-in VXP axis (axis_standin.py; the setup is 036's):
# A issues two documents to B, B receives both and handles the first (A
# sees 03, 04, 05, 06); A recalls the second (a recall package, the same
# DocumentId), B's clerk sees the request (13) and accepts it: B's copy's
# bytes are gone (in the table, from file_content(), from search), the
# recall is recorded on both sides and A sees 15.  A third document,
# recalled while the axis lists every package twice (the recall handled
# once), is refused by B's clerk with a reason: A sees 16 with it.
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
	my ($subject) = @_;
	my $doc = as_actor($a, 'postgres', 'regress_luan',
		"SELECT ioffice.create_outgoing('CV', '$subject', "
		  . q{'{"signer": "dai", "urgency": "urgent", "recipients": ["000.00.00.G22", "Lưu: VT"]}')});
	as_actor($a, 'postgres', 'regress_luan',
		"SELECT ioffice.attach($doc, 'bao_cao.pdf', " . pdf_literal('Bao cao lien thong') . ")");
	as_actor($a, 'postgres', 'regress_luan', "SELECT ioffice.act($doc, 'submit', 'dai')");
	as_actor($a, 'postgres', 'dai', "SELECT ioffice.act($doc, 'quick_approve')");
	as_actor($a, 'postgres', 'regress_thuy', "SELECT ioffice.act($doc, 'issue')");
	return $doc;
}

sub a_statuses
{
	my ($doc) = @_;
	return as_actor($a, 'postgres', 'regress_thuy',
		"SELECT coalesce(string_agg(code, ',' ORDER BY code), '') FROM ioffice.exchange_status "
		  . "WHERE document = $doc AND direction = 'received' AND party = '000.00.00.G22'");
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


# --- A issues two documents to B; B receives both ---------------------------------------------
my $doc1 = issue('Văn bản thứ nhất, được xử lý');
my $doc2 = issue('Văn bản thứ hai, sẽ bị thu hồi');
is(wait_for($b, 'SELECT count(*) FROM ioffice.edxml_received', '2'), '2', 'B filed both');
# B's copy of A's document by its subject: the two travel at once, and the
# one whose seal is made first is sent, and filed, first
sub copy_of
{
	my ($subject) = @_;
	return $b->safe_psql('postgres',
		"SELECT r.document_id FROM ioffice.edxml_received r JOIN ioffice.document d ON d.id = r.document_id "
		  . "WHERE d.abstract = '$subject'");
}
my $bdoc1 = copy_of('Văn bản thứ nhất, được xử lý');
my $bdoc2 = copy_of('Văn bản thứ hai, sẽ bị thu hồi');
is(wait_for($a, "SELECT count(*) FROM ioffice.edxml_status WHERE document_id IN ($doc1, $doc2) AND direction = 'received' AND code = '01'", '2'),
	'2', 'A received 01 for both');

# --- the first handled: 05 reaches A -------------------------------------------------------
as_actor($b, 'postgres', 'regress_vt', "SELECT ioffice.act($bdoc1, 'register')");
as_actor($b, 'postgres', 'regress_vt', "SELECT ioffice.act($bdoc1, 'submit', 'regress_ld')");
as_actor($b, 'postgres', 'regress_ld', "SELECT ioffice.act($bdoc1, 'assign', 'regress_cv')");
as_actor($b, 'postgres', 'regress_cv', "SELECT ioffice.act($bdoc1, 'complete')");
is(wait_for($a, "SELECT string_agg(code, ',' ORDER BY code) FROM ioffice.edxml_status WHERE document_id = $doc1 AND direction = 'received'",
		'01,03,04,05,06'), '01,03,04,05,06', 'A sees 03, 04, 05 in progress (once) and 06');

# --- A recalls the second; B's clerk accepts ---------------------------------------------------
as_actor($b, 'postgres', 'regress_vt', "SELECT ioffice.act($bdoc2, 'register')");
as_actor($a, 'postgres', 'regress_thuy', "SELECT ioffice.recall($doc2, 'Văn bản có sai sót, thu hồi để thay thế')");
is(wait_for($a, "SELECT state FROM ioffice.edxml_outgoing WHERE document_id = $doc2 AND kind = 'recall'", 'sent'),
	'sent', 'A\'s worker sealed and sent the recall package');
is(as_actor($a, 'postgres', 'regress_thuy',
		"SELECT code || ' ' || package || ' ' || description FROM ioffice.exchange_status WHERE document = $doc2 AND package = 'recall'"),
	'13 recall Văn bản có sai sót, thu hồi để thay thế', 'A\'s clerk sees the recall sent');
is(wait_for($b, "SELECT count(*) FROM ioffice.document_recall WHERE document_id = $bdoc2", '1'), '1',
	'B\'s worker filed the recall against its copy');
is(as_actor($b, 'postgres', 'regress_vt',
		"SELECT direction || ' ' || reason || ' ' || coalesce(answer, 'pending') FROM ioffice.recall_status WHERE document = $bdoc2"),
	'received Văn bản có sai sót, thu hồi để thay thế pending', 'B\'s clerk sees it pending');
is($b->safe_psql('postgres', "SELECT string_agg(code, ',') FROM ioffice.edxml_status WHERE document_id = $bdoc2 AND direction = 'received'"),
	'13', 'status 13 recorded for B\'s copy');
my $fid = $b->safe_psql('postgres', "SELECT id FROM ioffice.file WHERE document_id = $bdoc2");
is(wait_for($b, "SELECT count(*) FROM ioffice.search_text WHERE file_id = $fid", '1'), '1',
	'B\'s worker read the PDF\'s text for search');
as_actor($b, 'postgres', 'regress_vt', "SELECT ioffice.answer_recall($bdoc2, true)");
is($b->safe_psql('postgres', "SELECT count(*) FILTER (WHERE octet_length(content) > 0) || ' ' || bool_and(erased_at IS NOT NULL) FROM ioffice.file WHERE document_id = $bdoc2"),
	'0 true', 'B\'s copy: the file bytes are gone');
{
	my ($rc, $out, $err) = try_as_actor($b, 'postgres', 'regress_vt', "SELECT ioffice.file_content($fid)");
	like($err, qr/destroyed by the recall of its document.*DETAIL:  Its sender, 000\.00\.32\.H41, recalled it/s,
		'file_content refuses them, naming the recall');
}
is($b->safe_psql('postgres', "SELECT count(*) FROM ioffice.search_text WHERE file_id = $fid"), '0', 'nor search');
is($b->safe_psql('postgres', "SELECT (recalled_at IS NOT NULL) || ' ' || (sender_symbol IS NOT NULL) || ' ' || (sender_name IS NOT NULL) FROM ioffice.document WHERE id = $bdoc2"),
	'true true true', 'B keeps the record: marked recalled, its number and sender');
is($b->safe_psql('postgres', "SELECT string_agg(action, ',' ORDER BY id) FROM ioffice.audit WHERE entity = 'document' AND entity_id = $bdoc2 AND action LIKE 'recall%'"),
	'recall_received,recall_accept', 'B\'s trail: recall received, accepted');
is(wait_for($a, "SELECT string_agg(code, ',' ORDER BY code) FROM ioffice.edxml_status WHERE document_id = $doc2 AND direction = 'received'", '01,03,15'),
	'01,03,15', 'A sees 15');
is(as_actor($a, 'postgres', 'regress_thuy', "SELECT party || ' ' || answer FROM ioffice.recall_status WHERE document = $doc2"),
	'000.00.00.G22 accepted', 'A\'s clerk sees B accepted');
is($a->safe_psql('postgres', "SELECT string_agg(action, ',' ORDER BY id) FROM ioffice.audit WHERE entity = 'document' AND entity_id = $doc2 AND action LIKE 'recall%'"),
	'recall,recall_accepted', 'A\'s trail: recalled, accepted by B');
is($a->safe_psql('postgres', "SELECT recalled_at IS NOT NULL FROM ioffice.document WHERE id = $doc2"), 't', 'A\'s document frozen as recalled');

# --- a third, recalled with the axis listing twice; refused ------------------------------------------
my $doc3 = issue('Văn bản thứ ba, thu hồi bị từ chối');
is(wait_for($b, 'SELECT count(*) FROM ioffice.edxml_received', '3'), '3', 'B filed the third');
my $bdoc3 = copy_of('Văn bản thứ ba, thu hồi bị từ chối');
is(wait_for($a, "SELECT count(*) FROM ioffice.edxml_status WHERE document_id = $doc3 AND direction = 'received' AND code = '01'", '1'),
	'1', 'A received its 01');
mode('duplicate');
as_actor($a, 'postgres', 'dai', "SELECT ioffice.recall($doc3, 'Ký nhầm')");
is(wait_for($b, "SELECT count(*) FROM ioffice.document_recall WHERE document_id = $bdoc3", '1'), '1', 'B filed the recall');
sleep 2;
mode('normal');
is($b->safe_psql('postgres', "SELECT count(*) FROM ioffice.document_recall WHERE document_id = $bdoc3")
	  . ' ' . $b->safe_psql('postgres', "SELECT count(*) FROM ioffice.edxml_status WHERE document_id = $bdoc3 AND code = '13'"),
	'1 1', 'listed twice: handled once');
as_actor($b, 'postgres', 'regress_vt', "SELECT ioffice.answer_recall($bdoc3, false, 'Văn bản đã được thực hiện, không thu hồi')");
is(wait_for($a, "SELECT code || ' ' || description FROM ioffice.edxml_status WHERE document_id = $doc3 AND direction = 'received' AND code = '16'",
		'16 Văn bản đã được thực hiện, không thu hồi'), '16 Văn bản đã được thực hiện, không thu hồi', 'A sees 16 with the reason');
is(as_actor($a, 'postgres', 'regress_thuy', "SELECT answer || ' ' || answer_reason FROM ioffice.recall_status WHERE document = $doc3"),
	'refused Văn bản đã được thực hiện, không thu hồi', 'A\'s clerk sees B refused, and why');
is($b->safe_psql('postgres', "SELECT count(*) FROM ioffice.file WHERE document_id = $bdoc3 AND octet_length(content) > 0 AND erased_at IS NULL"),
	'1', 'B\'s refused copy keeps its file');

kill 'TERM', $standin_pid;
waitpid($standin_pid, 0);
$a->stop;
$b->stop;
done_testing();
