# The axis misbehaving, case by case (issue 14 item 6; the fixes of the
# branch edxml_fixes): two agencies on two clusters joined by the stand-in
# axis (axis_standin.py), as in 036.  For each fault, what the worker does,
# and that a good package sent after the bad one is filed (nothing held up):
#   - a listed docId that is no VXP id (CR LF and a header after it):
#     skipped, never put in a request, noted in worker_status;
#   - a package whose bytes are not UTF-8: refused on the axis (fail, with
#     the reason), fetched once, nothing filed;
#   - a package larger than ioffice.edxml_max_size: refused on the axis, with
#     the reason, fetched once (not again at every poll);
#   - a package whose attachment was changed on the way (a package problem
#     with a sender to answer): refused with status 02 and the reason, which
#     the sender records; nothing filed;
#   - every id listed twice, and one package delivered again under a new id:
#     filed once, 01 once;
#   - answers slower than the axis's timeout, HTTP 500, the axis down
#     (connections refused): transport problems, the package stays queued
#     with the error and is sent when the axis is back, once.
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
my $A = '000.00.32.H41';    # UBND huyện Sốp Cộp
my $B = '000.00.00.G22';    # Văn phòng Chính phủ
my %secret = ($A => 'secret-of-sop-cop-0123456789', $B => 'secret-of-vpcp-0123456789');
{
	open my $fh, '>', "$dir/axis.json" or die;
	print $fh JSON::PP->new->encode({ systems => \%secret, endpoint_secret => 'endpoint-secret-0123456789' });
	close $fh;
}
my $standin_pid;
my $port;

sub standin_start
{
	unlink "$dir/axis.port";
	$standin_pid = fork // die "fork: $!";
	if ($standin_pid == 0)
	{
		exec('python3', dirname(__FILE__) . '/axis_standin.py', "$dir/axis.json", "$dir/axis.port",
			defined $port ? ($port) : ()) or die "exec: $!";
	}
	for (1 .. 1200)
	{
		last if -s "$dir/axis.port";
		usleep(50_000);
	}
	die 'the stand-in axis did not start' unless -s "$dir/axis.port";
	$port = slurp_file("$dir/axis.port");
	return;
}

# the stand-in goes with the test, even one that dies half-way
END { kill 'TERM', $standin_pid if $standin_pid; }

sub standin_stop
{
	kill 'TERM', $standin_pid;
	waitpid($standin_pid, 0);
	return;
}
standin_start();
my $http = HTTP::Tiny->new(timeout => 10);

sub control
{
	my ($what, $req) = @_;
	my $r = $http->post("http://127.0.0.1:$port/control/$what",
		{ content => encode_json($req), headers => { 'Content-Type' => 'application/json' } });
	die "control $what: $r->{status} $r->{content}" unless $r->{success};
	return decode_json($r->{content});
}
sub mode { return control('mode', { mode => $_[0], %{ $_[1] // {} } }); }

sub stats
{
	my $r = $http->get("http://127.0.0.1:$port/control/stats");
	return decode_json($r->{content});
}

# --- the two agencies -----------------------------------------------------------------
sub agency_node
{
	my ($name, $conf, $sql) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'ioffice'
ioffice.worker_databases = 'postgres'
ioffice.keystore = '$keystore'
ioffice.worker_naptime = 1
$conf
});
	$node->start;
	$node->safe_psql('postgres', $sql);
	return $node;
}

my $seal = sql_literal(slurp_file("$pki/seal.pem") . $chain);
my $root = sql_literal(slurp_file("$pki/root.pem"));
my $a = agency_node('agency_a', '', qq{
CREATE EXTENSION ioffice;
SELECT ioffice.add_agency('UBND huyện Sốp Cộp', 'UBND', '$A');
SELECT ioffice.add_department(1, 'Văn phòng HĐND-UBND', 'VP');
SELECT ioffice.add_person('regress_luan', 'Tòng Văn Luân', 'Chuyên viên', 2, '{specialist}');
SELECT ioffice.add_person('dai', 'Trần Văn Đại', 'Chánh Văn phòng', 2, '{leader}');
SELECT ioffice.add_person('regress_thuy', 'Tòng Văn Thủy', 'Văn thư', 1, '{clerk}');
SELECT ioffice.add_trust_anchor($root);
SELECT ioffice.register_certificate('organisation', '$A', $seal, 'seal.key');
SELECT ioffice.add_exchange_seal('$B', $seal);
INSERT INTO ioffice.exchange_axis (agency_id, transport, url, system_id, secret, poll_seconds, timeout_ms)
VALUES (1, 'vxp', 'http://127.0.0.1:$port/', '$A', '$secret{$A}', 1, 2000);
});
# B reads packages of at most 1 MB
my $b = agency_node('agency_b', 'ioffice.edxml_max_size = 1', qq{
CREATE EXTENSION ioffice;
SELECT ioffice.add_agency('Văn phòng Chính phủ', 'VPCP', '$B');
SELECT ioffice.add_department(1, 'Vụ Hành chính', 'HC');
SELECT ioffice.add_person('regress_vt', 'Nguyễn Thị Văn Thư', 'Văn thư', 1, '{clerk}');
SELECT ioffice.add_trust_anchor($root);
SELECT ioffice.register_certificate('organisation', '$B', $seal, 'seal.key');
SELECT ioffice.add_exchange_seal('$A', $seal);
INSERT INTO ioffice.exchange_axis (agency_id, transport, url, system_id, secret, poll_seconds, timeout_ms)
VALUES (1, 'vxp', 'http://127.0.0.1:$port', '$B', '$secret{$B}', 1, 2000);
});

sub issue
{
	my ($subject) = @_;
	my $doc = as_actor($a, 'postgres', 'regress_luan',
		"SELECT ioffice.create_outgoing('CV', '$subject', "
		  . qq{'{"signer": "dai", "urgency": "urgent", "recipients": ["$B", "Lưu: VT"]}')});
	as_actor($a, 'postgres', 'regress_luan',
		"SELECT ioffice.attach($doc, 'bao_cao.pdf', " . pdf_literal('Bao cao lien thong') . ")");
	as_actor($a, 'postgres', 'regress_luan', "SELECT ioffice.act($doc, 'submit', 'dai')");
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

sub wait_stats
{
	my ($check, $seconds) = @_;
	my $until = time + ($seconds // 30);
	while (time < $until)
	{
		my $s = stats();
		return $s if $check->($s);
		usleep(100_000);
	}
	return stats();
}

# the documents B filed: the subjects, in order
sub b_filed
{
	return $b->safe_psql('postgres',
		"SELECT string_agg(d.abstract, ' | ' ORDER BY d.id) FROM ioffice.edxml_received r "
		  . "JOIN ioffice.document d ON d.id = r.document_id");
}

# a good package from A is filed by B, once; returns A's document
my @filed;

sub good_one
{
	my ($subject, $what) = @_;
	my $doc = issue($subject);
	push @filed, $subject;
	is(wait_for($b, 'SELECT count(*) FROM ioffice.edxml_received', scalar(@filed), 60), scalar(@filed),
		"$what: a good package sent after it is filed");
	is(b_filed(), join(' | ', @filed), "$what: B's incoming documents are the good ones, each once");
	return $doc;
}

sub acks_of
{
	my ($s, $id) = @_;
	return grep { $_->{docId} eq $id } @{ $s->{acks} };
}

sub fetches_of
{
	my ($s, $id) = @_;
	return scalar(grep { defined $_ && $_ eq $id } @{ $s->{fetched_ids} });
}

good_one('Văn bản đầu tiên', 'to begin');

# --- a docId that is no VXP id ----------------------------------------------------------
my $bad = control('inject', { to => $B, fault => 'baddocid' })->{docId};
is(wait_for($b, q{SELECT coalesce(bool_or(last_error ~ 'listed a package id of [0-9]+ bytes that is not 1 to 200 of'), false) FROM ioffice.worker_status}, 't'),
	't', 'a listed docId with CR LF: skipped, noted in worker_status (its length, not its bytes)');
good_one('Văn bản sau mã gói hỏng', 'a bad docId');
my $s = stats();
is(fetches_of($s, $bad) + scalar(acks_of($s, $bad)), 0, 'the bad docId never went into a request');
is($s->{injected_headers}, 0, 'no request carried the header hidden in it');
control('drop', { to => $B, docId => $bad });

# --- bytes that are not UTF-8 -------------------------------------------------------------
my $notutf8 = control('inject', { to => $B, fault => 'notutf8' })->{docId};
$s = wait_stats(sub { acks_of($_[0], $notutf8) > 0 });
my @acks = acks_of($s, $notutf8);
is(join(' ', map { "$_->{status}: $_->{description}" } @acks),
	'fail: the edXML package is not valid text: an invalid byte sequence or a NUL byte',
	'a package not UTF-8: refused on the axis once, with the reason');
good_one('Văn bản sau gói không phải UTF-8', 'not UTF-8');
is(fetches_of(stats(), $notutf8), 1, 'and fetched once');

# --- larger than ioffice.edxml_max_size ---------------------------------------------------
my $huge = control('inject', { to => $B, fault => 'huge', size => 3 * 1024 * 1024 })->{docId};
$s = wait_stats(sub { acks_of($_[0], $huge) > 0 });
@acks = acks_of($s, $huge);
is(join(' ', map { "$_->{status}: $_->{description}" } @acks),
	'fail: the edXML package is larger than ioffice.edxml_max_size (1 MB)',
	'a package of 3 MB (edxml_max_size 1 MB): refused on the axis once, with the reason');
good_one('Văn bản sau gói quá lớn', 'too large');
sleep 2;    # two more polls
is(fetches_of(stats(), $huge), 1, 'and fetched once, not again at every poll');

# --- changed on the way: a package problem, answered with 02 ----------------------------------
control('tamper', { on => JSON::PP::true });
my $tampered = issue('Văn bản bị sửa trên đường truyền');
is(wait_for($a, "SELECT string_agg(code, ',') FROM ioffice.edxml_status WHERE document_id = $tampered AND direction = 'received'", '02'),
	'02', 'an attachment changed on the way: B answers 02, A records it');
like($a->safe_psql('postgres', "SELECT description FROM ioffice.edxml_status WHERE document_id = $tampered AND code = '02'"),
	qr/signature/, 'with the reason (its signature)');
like(as_actor($a, 'postgres', 'regress_thuy',
		"SELECT code || ' ' || description FROM ioffice.exchange_status WHERE document = $tampered AND code IS NOT NULL"),
	qr/^02 edXML package refused: its signature is/, 'which A\'s clerk sees');
is(wait_for($b, "SELECT state FROM ioffice.edxml_outgoing WHERE code = '02'", 'sent'), 'sent', 'B sent the 02');
good_one('Văn bản sau gói bị sửa', 'a changed package');

# --- listed twice; delivered again under a new id ----------------------------------------------
mode('duplicate');
good_one('Văn bản liệt kê hai lần', 'every id listed twice');
my $again = control('inject', { to => $B, fault => 'again' })->{docId};
$s = wait_stats(sub { acks_of($_[0], $again) > 0 });
is(join(' ', map { $_->{status} } acks_of($s, $again)), 'done',
	'the same package again under a new id: acknowledged done');
mode('normal');
is(b_filed(), join(' | ', @filed), 'and filed once');
is($b->safe_psql('postgres', "SELECT count(*) FROM ioffice.edxml_status WHERE code = '01'"), scalar(@filed),
	'01 answered once for each package filed');
good_one('Văn bản sau gói trùng', 'duplicates');

# --- transport problems: the package waits and is sent once when the axis is back ------------
sub transport_fault
{
	my ($what, $error, $fault, $restore) = @_;
	my $since = $b->safe_psql('postgres', 'SELECT clock_timestamp()');
	$fault->();
	my $doc = issue("Văn bản khi $what");
	is(wait_for($a, "SELECT state = 'queued' AND attempts > 0 AND last_error ~ '$error' FROM ioffice.edxml_outgoing WHERE document_id = $doc", 't', 30),
		't', "$what: the package stays queued with the error, to be retried");
	like(wait_for($b, qq{SELECT coalesce(bool_or(last_error ~ '^the axis''s list' AND last_error_at > '$since'), false) FROM ioffice.worker_status}, 't', 30),
		qr/^t$/, "$what: B's list failed, noted");
	# B waits until A recorded the package sent (a status arriving before
	# that is recorded too: the case below)
	$b->safe_psql('postgres', 'UPDATE ioffice.exchange_axis SET enabled = false');
	$restore->();
	$a->safe_psql('postgres', "UPDATE ioffice.edxml_outgoing SET next_attempt_at = now() WHERE document_id = $doc");
	is(wait_for($a, "SELECT state FROM ioffice.edxml_outgoing WHERE document_id = $doc", 'sent'), 'sent',
		"$what: A sends it again and marks it sent");
	$b->safe_psql('postgres', 'UPDATE ioffice.exchange_axis SET enabled = true');
	push @filed, "Văn bản khi $what";
	is(wait_for($b, 'SELECT count(*) FROM ioffice.edxml_received', scalar(@filed), 60), scalar(@filed),
		"$what: once the axis is back, sent and filed");
	is(b_filed(), join(' | ', @filed), "$what: filed once");
	# the 01s reach A before the next fault (a restarted axis forgets its boxes)
	is(wait_for($a, "SELECT count(*) FROM ioffice.edxml_status WHERE direction = 'received' AND code = '01'", scalar(@filed)),
		scalar(@filed), "$what: its 01 reached A");
	return;
}

# slower than the 2 s timeout: the axis stores the package after A gave up;
# A's next attempt carries the same idempotency key, so it is stored once
transport_fault('trục trả lời chậm', 'Timeout|timed out', sub { mode('slow', { delay => 3 }) },
	sub { mode('normal') });
transport_fault('trục lỗi 500', '^HTTP 500', sub { mode('error500') }, sub { mode('normal') });
transport_fault('trục ngừng hẳn', 'onnect', \&standin_stop, \&standin_start);
is(scalar(grep { $_->{kind} eq 'edoc' } @{ stats()->{sent} }), 1, 'the axis (started again) stored the last package once');

# --- the axis took a package, A missed the answer ------------------------------------------------
# sendEdoc alone slower than A's timeout: the axis stores the package after
# A gave up; A keeps it queued (retrying, timing out); B files it and
# answers 01, which reaches A while A's row is still queued
mode('slow', { delay => 3, paths => ['/sendEdoc'] });
my $missed = issue('Văn bản trục đã nhận khi bên gửi hết thời gian chờ');
push @filed, 'Văn bản trục đã nhận khi bên gửi hết thời gian chờ';
is(wait_for($b, 'SELECT count(*) FROM ioffice.edxml_received', scalar(@filed), 60), scalar(@filed),
	'a package the axis took after A gave up: B files it');
is($a->safe_psql('postgres', "SELECT state FROM ioffice.edxml_outgoing WHERE document_id = $missed"), 'queued',
	'while A retries it');
# its 01 reaches A while A's row is still queued: A records it (it was
# once refused, "the document was not sent to its sender", and lost)
is(wait_for($a, "SELECT count(*) FROM ioffice.edxml_status WHERE document_id = $missed AND direction = 'received' AND code = '01'",
		'1', 20), '1', 'its 01, arriving while A still retries, is recorded');
is(scalar(grep { $_->{by} eq $A && $_->{status} eq 'fail' && ($_->{description} // '') =~ /not sent to its sender/ }
		  @{ stats()->{acks} }), 0,
	'A refused no status as "not sent to its sender"');
mode('normal');
$a->safe_psql('postgres', "UPDATE ioffice.edxml_outgoing SET next_attempt_at = now() WHERE document_id = $missed");
is(wait_for($a, "SELECT state FROM ioffice.edxml_outgoing WHERE document_id = $missed", 'sent'), 'sent',
	'A sends it again (the same idempotency key) and marks it sent');
sleep 2;
is(b_filed(), join(' | ', @filed), 'B filed it once');
good_one('Văn bản cuối cùng', 'after the transport problems');

is(wait_for($a, "SELECT count(*) FROM ioffice.edxml_status WHERE direction = 'received' AND code = '01'",
		scalar(@filed)), scalar(@filed), 'A received 01 for each document filed');
is($a->safe_psql('postgres', q{SELECT count(*) FROM ioffice.edxml_outgoing WHERE state <> 'sent'}), '0',
	'nothing left queued or dead at A');

standin_stop();
$a->stop;
$b->stop;
done_testing();
