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
use File::Copy qw(copy);
use IPC::Run;
use JSON::PP;
use MIME::Base64 qw(decode_base64);
use lib dirname(__FILE__);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use IofficeTest;

my $verifier = dirname(__FILE__) . '/audit_proof_verify.py';
my $dir = PostgreSQL::Test::Utils::tempdir;
my $json = JSON::PP->new->utf8->canonical;

# checkpoints signed by the worker with the organisation's key, as in 024
my ($pki, $keystore) = make_keystore();
copy("$pki/seal.key", "$keystore/seal.key") or die "copy seal.key: $!";
chmod 0600, "$keystore/seal.key";
my $node = PostgreSQL::Test::Cluster->new('proofs');
$node->init(extra => [ '--encoding=UTF8', '--no-locale' ]);
# no worker sealing: the test seals when it wants, with audit_seal(); the
# worker signs
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'ioffice'
ioffice.worker_databases = 'postgres'
ioffice.keystore = '$keystore'
ioffice.keystore_personal = on
ioffice.worker_naptime = 1
ioffice.audit_seal_interval = 0
});
$node->start;
signing_setup($node, 'postgres', $pki);
$node->safe_psql('postgres', qq{
SELECT ioffice.register_certificate('organisation', '000.00.32.H41',
       @{[ sql_literal(slurp_file("$pki/seal.pem") . slurp_file("$pki/intermediate.pem")) ]}, 'seal.key');
});
my $seal_fp = $node->safe_psql('postgres',
	"SELECT encode(fingerprint, 'hex') FROM ioffice.certificate WHERE kind = 'organisation'");
$node->safe_psql('postgres', "ALTER SYSTEM SET ioffice.audit_certificate = '$seal_fp'; SELECT pg_reload_conf();");

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
	$node->poll_query_until('postgres', "SELECT signature IS NOT NULL FROM ioffice.audit_checkpoint WHERE id = $seq")
	  or die "checkpoint $seq was not signed";
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

# the checkpoint's signature, checked by openssl over the canonical form the
# verifier rebuilt from the proof (not over anything the database gave)
sub signature_holds
{
	my ($signature_b64, $content_hex, $name) = @_;
	open my $fh, '>:raw', "$dir/$name.der" or die; print $fh decode_base64($signature_b64); close $fh;
	open $fh, '>:raw', "$dir/$name.bin" or die; print $fh pack('H*', $content_hex); close $fh;
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run([ 'openssl', 'cms', '-verify', '-binary', '-inform', 'DER', '-in', "$dir/$name.der",
		'-content', "$dir/$name.bin", '-CAfile', "$pki/root.pem", '-certfile', "$pki/intermediate.pem",
		'-purpose', 'any', '-out', '/dev/null' ], '>', \$out, '2>', \$err);
	return $ok;
}
{
	my ($ok, $answer) = verify_record('r_sig', $p0, $witness[1]);
	ok($ok && signature_holds($p0->{checkpoint}{signature}, $answer->{content}, 'sig1'),
		'the proven checkpoint\'s signature holds over the canonical form the verifier rebuilt');
	my $flipped = $answer->{content};
	substr($flipped, -1, 1) = substr($flipped, -1, 1) eq '0' ? '1' : '0';
	ok(!signature_holds($p0->{checkpoint}{signature}, $flipped, 'sig1x'), 'and not over other bytes');
}

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
ok($ok15 && signature_holds($p15->{checkpoints}[-1]{signature}, $ans15->{content}, 'sig5'),
	'the signature of checkpoint to holds over the canonical form the verifier rebuilt');
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
# a forger who removes checkpoint 3 and recomputes the links and hashes of
# those after it (with the verifier's own functions): the links then hold,
# but not the trees' sizes, and not the signature of checkpoint 5
{
	my $forge = q{
import json, sys
sys.path.insert(0, sys.argv[1])
import audit_proof_verify as v
p = json.load(open(sys.argv[2]))
cps = p["checkpoints"]
del cps[2]
h = None
for c in cps:
    prev = None if h is None else h
    if prev is not None:
        c["previous"] = prev.hex()
    content = v.checkpoint_content(c, None if c["previous"] is None else bytes.fromhex(c["previous"]))
    h = v.sha256(content)
    c["hash"] = h.hex()
json.dump(p, open(sys.argv[3], "w"))
print(content.hex())
};
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'python3', '-c', $forge, dirname($verifier), write_json('c15', $p15), "$dir/forged.json" ],
		'>', \$out, '2>', \$err) or die "forging failed: $err";
	chomp $out;
	my ($ok, $answer) = verify('consistency', "$dir/forged.json", '--held', $witness[1], '--held-list', write_json('held1', [ $witness[1] ]));
	ok(!$ok, "a checkpoint removed, the later ones recomputed: fails ($answer->{error})");
	ok(!signature_holds($p15->{checkpoints}[-1]{signature}, $out, 'forged'),
		'and the signature of checkpoint 5 does not hold over the recomputed one');
}
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
