# Proofs of the audit trail (issue 16, item 4), checked by an independent
# verifier (audit_proof_verify.py beside this file: Python's hashlib, json
# and base64 only, written from the encodings the functions' comments give).
# A trail of several documents sealed over several checkpoints, as a witness
# would see it: the hash of every checkpoint kept when it was sealed.  Every
# sealed record's inclusion proof verifies against the witness's hash of its
# checkpoint; every consistency proof between two checkpoints verifies from
# the hash the witness held for the older one (and from its list of hashes,
# for the RFC 6962 part).  Then tampered proofs, which must fail: a flipped
# byte in an audit path node, a wrong leaf index, a record swapped for
# another or edited, a step removed, a checkpoint removed between from and
# to, a flipped consistency node.
use strict;
use warnings;
use File::Basename qw(dirname);
use IPC::Run;
use JSON::PP;
use lib dirname(__FILE__);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use IofficeTest;

my $verifier = dirname(__FILE__) . '/audit_proof_verify.py';
my $dir = PostgreSQL::Test::Utils::tempdir;
my $json = JSON::PP->new->utf8->canonical;

my $node = PostgreSQL::Test::Cluster->new('proofs');
$node->init(extra => [ '--encoding=UTF8', '--no-locale' ]);
# no worker sealing: the test seals when it wants, with audit_seal()
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'ioffice'\nioffice.audit_seal_interval = 0\n");
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION ioffice;
SELECT ioffice.add_agency('UBND huyện Sốp Cộp', 'UBND', '000.00.32.H41');
SELECT ioffice.add_department(1, 'Văn phòng HĐND-UBND', 'VP');
SELECT ioffice.add_person('regress_luan', 'Tòng Văn Luân', 'Chuyên viên', 2, '{specialist}');
SELECT ioffice.add_person('dai', 'Trần Văn Đại', 'Chánh Văn phòng', 2, '{leader}');
});

sub new_doc
{
	my ($abstract) = @_;
	my $doc = as_actor($node, 'postgres', 'regress_luan', "SELECT ioffice.create_outgoing('CV', '$abstract')");
	as_actor($node, 'postgres', 'regress_luan', "SELECT ioffice.attach($doc, 'a.pdf', convert_to('%PDF-1.4 $abstract', 'UTF8'))");
	return $doc;
}

sub more
{
	my ($doc, $n) = @_;
	for my $i (1 .. $n)
	{
		as_actor($node, 'postgres', 'regress_luan',
			"SELECT ioffice.attach($doc, 'p$i.pdf', convert_to('%PDF-1.4 phụ lục $doc $i', 'UTF8'))");
	}
	return;
}

# What a witness keeps: the hash of every checkpoint, as it was sealed.
my @witness;    # $witness[seq] = hex hash

sub seal
{
	my $seq = $node->safe_psql('postgres', 'SELECT ioffice.audit_seal()');
	$witness[$seq] = $node->safe_psql('postgres', "SELECT encode(hash, 'hex') FROM ioffice.audit_checkpoint WHERE id = $seq");
	return $seq;
}

# --- the trail: five checkpoints over several documents -------------------------
my @docs = map { new_doc("Công văn số $_") } 1 .. 4;
my $cp1 = seal();
more($docs[0], 3);
more($docs[1], 1);
push @docs, new_doc('Công văn số 5');
my $cp2 = seal();
more($docs[2], 2);
my $cp3 = seal();
as_actor($node, 'postgres', 'regress_luan', "SELECT ioffice.act($docs[0], 'submit', 'dai')");
more($docs[4], 1);
my $cp4 = seal();
more($docs[3], 1);
my $cp5 = seal();
is("$cp1 $cp2 $cp3 $cp4 $cp5", '1 2 3 4 5', 'five checkpoints');
is($node->safe_psql('postgres', 'SELECT count(*) FROM ioffice.audit_verify()'), '0', 'the trail is intact');
ok($node->safe_psql('postgres', 'SELECT chains FROM ioffice.audit_checkpoint WHERE id = 1') >= 6,
	'the first checkpoint seals several chains (documents, people, units): its tree has depth');

# a record written after the last checkpoint
as_actor($node, 'postgres', 'regress_luan', "SELECT ioffice.attach($docs[1], 'muộn.pdf', convert_to('%PDF-1.4 muộn', 'UTF8'))");
my $unsealed = $node->safe_psql('postgres', "SELECT max(id) FROM ioffice.audit WHERE chain = 'document:$docs[1]'");

sub write_json
{
	my ($name, $value) = @_;
	my $path = "$dir/$name.json";
	open my $fh, '>:raw', $path or die "$path: $!";
	print $fh (ref $value ? $json->encode($value) : $value);
	close $fh;
	return $path;
}

# runs the verifier: (exit code == 0, its answer)
sub verify
{
	my (@args) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'python3', $verifier, @args ], '>', \$out, '2>', \$err);
	my $ok = $? == 0;
	my $answer = eval { JSON::PP->new->decode($out) } // { ok => JSON::PP::false, error => "no answer: $out $err" };
	return ($ok && $answer->{ok}, $answer);
}

sub record_proof
{
	my ($id) = @_;
	return $json->decode($node->safe_psql('postgres', "SELECT ioffice.audit_proof_record($id)"));
}

sub verify_record
{
	my ($name, $proof, $held) = @_;
	return verify('record', write_json($name, $proof), defined $held ? ('--checkpoint', $held) : ());
}

# --- every sealed record of the documents' chains: its proof verifies -----------
my @sealed = split /\n/, $node->safe_psql('postgres', q{
SELECT a.id FROM ioffice.audit a
 WHERE a.chain LIKE 'document:%'
   AND a.seq <= (SELECT max(h.seq) FROM ioffice.audit_checkpoint_head h WHERE h.chain = a.chain)
 ORDER BY a.id});
ok(@sealed >= 15, 'fifteen and more sealed records of documents (' . scalar(@sealed) . ')');
my ($good, $with_steps, $with_path, %first_cp) = (0, 0, 0);
my %proofs;
for my $id (@sealed)
{
	my $proof = record_proof($id);
	$proofs{$id} = $proof;
	my $seq = $proof->{checkpoint}{sequence};
	my ($ok, $answer) = verify_record("r$id", $proof, $witness[$seq]);
	$good++ if $ok;
	diag("record $id: $answer->{error}") unless $ok;
	$with_steps++ if @{ $proof->{steps} } > 0;
	$with_path++ if @{ $proof->{path} } >= 2;
	$first_cp{$seq}++;
}
is($good, scalar(@sealed), 'every sealed record\'s proof verifies against the witness\'s hash of its checkpoint');
ok($with_steps > 5 && $with_path > 5, 'proofs with chain steps and with audit paths of several nodes');
is(join(',', sort keys %first_cp), '1,2,3,4,5', 'each record is proven by the first checkpoint that covers it, all five used');

# the first record of the first document: sealed by checkpoint 1, its chain
# having moved on since (the steps stop at checkpoint 1's head)
my ($first_of_doc0) = $node->safe_psql('postgres', "SELECT id FROM ioffice.audit WHERE chain = 'document:$docs[0]' AND seq = 1");
my $p0 = $proofs{$first_of_doc0};
is($p0->{checkpoint}{sequence}, 1, 'an early record is proven by checkpoint 1');
is($p0->{head}{seq}, $node->safe_psql('postgres', "SELECT seq FROM ioffice.audit_checkpoint_head WHERE checkpoint_id = 1 AND chain = 'document:$docs[0]'"),
	'its steps end at the head checkpoint 1 sealed');
is(scalar(@{ $p0->{steps} }), $p0->{head}{seq} - 1, 'one step per later record up to that head');

# a witness holding another checkpoint's hash does not accept it
my ($ok, $answer) = verify_record('r_other', $p0, $witness[2]);
ok(!$ok, "the proof does not verify against another checkpoint's hash ($answer->{error})");

# --- tampered inclusion proofs ----------------------------------------------------
# a proof with an audit path of at least two nodes and steps
my ($rich) = grep { @{ $proofs{$_}{path} } >= 2 && @{ $proofs{$_}{steps} } >= 1 } @sealed;
ok(defined $rich, 'a proof with steps and a path');
my $held = $witness[ $proofs{$rich}{checkpoint}{sequence} ];
sub tampered
{
	my ($label, $change) = @_;
	my $copy = $json->decode($json->encode($proofs{$rich}));
	$change->($copy);
	my ($ok, $answer) = verify_record('t', $copy, $held);
	ok(!$ok, "tampered ($label): fails ($answer->{error})");
	return;
}
sub flip
{
	my ($hex, $at) = @_;
	substr($hex, $at, 1) = substr($hex, $at, 1) eq '0' ? '1' : '0';
	return $hex;
}
tampered('a flipped byte in a path node', sub { $_[0]{path}[1] = flip($_[0]{path}[1], 10) });
tampered('a flipped byte in the first path node', sub { $_[0]{path}[0] = flip($_[0]{path}[0], 0) });
tampered('a wrong leaf index', sub { $_[0]{leaf_index} = $_[0]{leaf_index} ^ 1 });
tampered('a leaf index past the tree', sub { $_[0]{leaf_index} = $_[0]{tree_size} });
tampered('a wrong tree size', sub { $_[0]{tree_size} += 1 });
tampered('a path node removed', sub { pop @{ $_[0]{path} } });
tampered('the record edited (its action)', sub { $_[0]{record}{action} = 'remove' });
tampered('the record edited (its time, one microsecond)', sub {
	$_[0]{record}{at} =~ s/(\d)Z$/($1 + 1) % 10 . 'Z'/e });
tampered('a step removed', sub { splice @{ $_[0]{steps} }, 0, 1 });
tampered('a step edited', sub { $_[0]{steps}[-1]{detail} = '{}' });
tampered('the checkpoint root replaced', sub { $_[0]{checkpoint}{root} = flip($_[0]{checkpoint}{root}, 5) });
tampered('the checkpoint time changed', sub { $_[0]{checkpoint}{at} =~ s/^(\d{4})/$1 + 1/e });

# a swapped record: another chain's record put in its place (with its hash)
my ($other) = grep { $proofs{$_}{record}{chain} ne $proofs{$rich}{record}{chain} } @sealed;
tampered('the record swapped for another chain\'s', sub { $_[0]{record} = $proofs{$other}{record} });
# and the record swapped with the step after it
tampered('the record swapped with the next record', sub {
	($_[0]{record}, $_[0]{steps}[0]) = ($_[0]{steps}[0], $_[0]{record}) });

# --- consistency proofs -------------------------------------------------------------
sub consistency
{
	my ($from, $to, $proof) = @_;
	$proof //= $json->decode($node->safe_psql('postgres', "SELECT ioffice.audit_proof($from, $to)"));
	my $list = write_json("held$from", [ @witness[ 1 .. $from ] ]);
	return (verify('consistency', write_json("c$from-$to", $proof), '--held', $witness[$from], '--held-list', $list), $proof);
}
my $all = 0;
my $pairs = 0;
for my $from (1 .. 5)
{
	for my $to ($from .. 5)
	{
		my ($ok, $answer) = consistency($from, $to);
		$pairs++;
		$all++ if $ok;
		diag("audit_proof($from, $to): $answer->{error}") unless $ok;
	}
}
is($all, $pairs, "every consistency proof between two of the five checkpoints verifies ($pairs pairs)");

my ($ok15, $ans15, $p15) = consistency(1, 5);
is(scalar(@{ $p15->{checkpoints} }), 5, 'audit_proof(1, 5) lists checkpoints 1 to 5');
ok(@{ $p15->{merkle}{consistency} } >= 1, 'with an RFC 6962 consistency proof');

my ($p35) = (consistency(3, 5))[2];
sub bad_consistency
{
	my ($label, $from, $to, $base, $change) = @_;
	my $copy = $json->decode($json->encode($base));
	$change->($copy);
	my ($ok, $answer) = consistency($from, $to, $copy);
	ok(!$ok, "tampered consistency proof ($label): fails ($answer->{error})");
	return;
}
bad_consistency('a checkpoint removed between from and to', 1, 5, $p15, sub { splice @{ $_[0]{checkpoints} }, 2, 1 });
bad_consistency('a checkpoint removed and the next one re-linked', 1, 5, $p15, sub {
	splice @{ $_[0]{checkpoints} }, 2, 1;
	$_[0]{checkpoints}[2]{previous} = $_[0]{checkpoints}[1]{hash} });
bad_consistency('a checkpoint\'s root changed', 1, 5, $p15, sub { $_[0]{checkpoints}[3]{root} = flip($_[0]{checkpoints}[3]{root}, 7) });
bad_consistency('a flipped byte in a consistency node', 3, 5, $p35, sub {
	$_[0]{merkle}{consistency}[0] = flip($_[0]{merkle}{consistency}[0], 3) });
bad_consistency('the newer root changed', 3, 5, $p35, sub { $_[0]{merkle}{root_to} = flip($_[0]{merkle}{root_to}, 3) });
bad_consistency('the older root changed', 3, 5, $p35, sub { $_[0]{merkle}{root_from} = flip($_[0]{merkle}{root_from}, 3) });
bad_consistency('an inclusion node flipped', 3, 5, $p35, sub {
	$_[0]{merkle}{inclusion_to}[0] = flip($_[0]{merkle}{inclusion_to}[0], 3) });
# a witness holding another hash for checkpoint 3 than the database gives
{
	my $list = write_json('held3', [ @witness[ 1 .. 3 ] ]);
	my ($ok, $answer) = verify('consistency', write_json('c35', $p35), '--held', $witness[2], '--held-list', $list);
	ok(!$ok, "a witness holding another hash for the older checkpoint does not accept it ($answer->{error})");
}

# --- what the database says about records not sealed or unknown --------------------
my ($ret, $out, $err) = $node->psql('postgres', "SELECT ioffice.audit_proof_record($unsealed)",
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/55000.*newer than the last checkpoint/, 'a record newer than the last checkpoint: 55000');
my $cp6 = seal();
my ($ok6) = verify_record('r_late', record_proof($unsealed), $witness[$cp6]);
ok($ok6, 'sealed by the next checkpoint, its proof verifies');
($ok6) = consistency(5, $cp6);
ok($ok6, 'and the new checkpoint extends the one the witness held before');

# --- a rewrite the proofs expose -------------------------------------------------
# A superuser edits a sealed record (triggers off): a proof fetched after that
# carries the edited content, and no longer verifies against the witness.
$node->safe_psql('postgres', qq{
SET session_replication_role = replica;
UPDATE ioffice.audit SET action = 'forged' WHERE id = $first_of_doc0});
($ok, $answer) = verify_record('r_forged', record_proof($first_of_doc0), $witness[1]);
ok(!$ok, "a record edited in the database after its seal: its proof fails ($answer->{error})");

# the size of a proof: one step per later record of the chain up to the head
my $steps = $node->safe_psql('postgres', qq{
SELECT jsonb_array_length(ioffice.audit_proof_record(id)->'steps')
       = (SELECT seq FROM ioffice.audit_checkpoint_head WHERE chain = 'document:$docs[3]'
           ORDER BY checkpoint_id LIMIT 1) - 1
  FROM ioffice.audit WHERE chain = 'document:$docs[3]' AND seq = 1});
is($steps, 't', 'a chain\'s first record has one step per later record up to the first head sealed');

done_testing();
