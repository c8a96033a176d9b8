# The audit trail sealed by the worker (issue 16): every
# ioffice.audit_seal_interval seconds a checkpoint of the chains that moved,
# signed with the organisation's key (the certificate ioffice.audit_certificate
# names) and published as an audit.checkpoint event to a witness (the test
# receiver).  Then what a superuser with the triggers off can and cannot hide:
# the newest record of a document and a whole chain, removed after a seal, are
# found; a removal before any seal is not (the window, said so below); a
# rewrite of records and of every checkpoint, hashes recomputed but without
# the key, fails the signatures; a checkpoint re-signed with another key is
# named; the witness's copies name the first checkpoint that diverges.  A
# streaming standby never seals; promoted, it continues the sequence.
use strict;
use warnings;
use File::Basename qw(dirname);
use File::Copy qw(copy);
use JSON::PP;
use Time::HiRes qw(usleep);
use lib dirname(__FILE__);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use IofficeTest;

my $secret = 'witness-test-secret-0123456789';
my $receiver_py = dirname(__FILE__) . '/../receiver/http_receiver.py';
my $dir = PostgreSQL::Test::Utils::tempdir;
my $json = JSON::PP->new->utf8->canonical;

my ($pki, $keystore) = make_keystore();
copy("$pki/seal.key", "$keystore/seal.key") or die "copy seal.key: $!";
chmod 0600, "$keystore/seal.key";

# the witness
system_or_bail("python3 $receiver_py --port 0 --port-file $dir/port --pid-file $dir/pid "
	  . "--secret $secret --log $dir/requests.jsonl >>$dir/receiver.out 2>&1 &");
for (1 .. 100)
{
	last if -s "$dir/port";
	usleep(100_000);
}
die "the receiver did not start" unless -s "$dir/port";
my $port = slurp_file("$dir/port");
chomp $port;

my $conf = qq{
shared_preload_libraries = 'ioffice'
ioffice.worker_databases = 'postgres'
ioffice.keystore = '$keystore'
ioffice.keystore_personal = on
ioffice.worker_naptime = 1
ioffice.audit_seal_interval = 1
};
my $node = PostgreSQL::Test::Cluster->new('sealing');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', $conf);
$node->start;

signing_setup($node, 'postgres', $pki);
my $chain = slurp_file("$pki/intermediate.pem");
$node->safe_psql('postgres', qq{
SELECT ioffice.register_certificate('organisation', '000.00.32.H41', @{[ sql_literal(slurp_file("$pki/seal.pem") . $chain) ]}, 'seal.key');
INSERT INTO ioffice.endpoint (name, url, secret, events)
VALUES ('witness', 'http://127.0.0.1:$port/witness', '$secret', '{audit.checkpoint}');
});
my $seal_fp = $node->safe_psql('postgres',
	"SELECT encode(fingerprint, 'hex') FROM ioffice.certificate WHERE kind = 'organisation'");
my $dai_fp = $node->safe_psql('postgres',
	"SELECT encode(fingerprint, 'hex') FROM ioffice.certificate WHERE kind = 'personal'");

sub set_certificate
{
	my ($n, $value) = @_;
	$n->safe_psql('postgres', "ALTER SYSTEM SET ioffice.audit_certificate = '$value'; SELECT pg_reload_conf();");
	return;
}
set_certificate($node, $seal_fp);

# the last checkpoint covers the chain at its current end, and it is signed
sub sealed_and_signed
{
	my ($n, $chain_name, $seconds) = @_;
	return $n->poll_query_until('postgres', qq{
SELECT EXISTS (SELECT 1 FROM ioffice.audit_checkpoint_head h
                WHERE h.chain = '$chain_name'
                  AND h.seq = (SELECT max(seq) FROM ioffice.audit WHERE chain = '$chain_name'))
   AND NOT EXISTS (SELECT 1 FROM ioffice.audit_checkpoint WHERE signature IS NULL)});
}

sub problems
{
	my ($n, $like) = @_;
	return $n->safe_psql('postgres',
		"SELECT coalesce(string_agg(problem, E'\\n' ORDER BY problem), '') FROM ioffice.audit_verify() WHERE problem LIKE '$like'");
}

sub new_doc
{
	my ($n, $abstract) = @_;
	my $doc = as_actor($n, 'postgres', 'regress_luan', "SELECT ioffice.create_outgoing('CV', '$abstract')");
	as_actor($n, 'postgres', 'regress_luan', "SELECT ioffice.attach($doc, 'a.pdf', convert_to('%PDF-1.4 $abstract', 'UTF8'))");
	as_actor($n, 'postgres', 'regress_luan', "SELECT ioffice.act($doc, 'submit', 'dai')");
	return $doc;
}

# --- sealing, signing, publishing -----------------------------------------------
my $d1 = new_doc($node, 'Xóa bản ghi cuối');
ok(sealed_and_signed($node, "document:$d1"), 'the worker sealed the new chain and signed the checkpoint');
is($node->safe_psql('postgres', q{
SELECT bool_and(id = n) AND bool_and(signature IS NOT NULL) AND bool_and(length(signature) > 500)
  FROM (SELECT id, row_number() OVER (ORDER BY id) AS n, signature FROM ioffice.audit_checkpoint) c}),
	't', 'checkpoints are numbered 1, 2, 3... and each carries a CMS');
is($node->safe_psql('postgres', 'SELECT count(*) FROM ioffice.audit_verify()'), '0', 'audit_verify: intact, every signature good');
ok($node->poll_query_until('postgres', q{
SELECT count(*) = (SELECT count(*) FROM ioffice.audit_checkpoint)
  FROM ioffice.outbox WHERE event = 'audit.checkpoint' AND status = 'delivered'}),
	'every signed checkpoint was delivered to the witness');
is($node->safe_psql('postgres', q{
SELECT bool_and(receipt::jsonb = '{"ok": true}') FROM ioffice.outbox WHERE event = 'audit.checkpoint'}),
	't', 'the witness\'s answers are kept as receipts');
is($node->safe_psql('postgres', q{SELECT count(*) FROM ioffice.outbox WHERE event <> 'audit.checkpoint' AND receipt IS NOT NULL}),
	'0', 'no other event keeps its answer');

# the signature is a CMS the openssl command verifies against the checkpoint's
# canonical form, whose SHA-256 is the checkpoint's hash
my ($cp_id, $cms_hex, $content_hex) = split /\|/, $node->safe_psql('postgres', q{
SELECT id, encode(signature, 'hex'),
       encode(convert_to('ioffice-checkpoint-1;' || id || ';' ||
                         ((extract(epoch FROM at) - 946684800) * 1000000)::bigint || ';' ||
                         chains || ';' || records || ';', 'UTF8') || root || coalesce(prev_hash, ''), 'hex')
  FROM ioffice.audit_checkpoint ORDER BY id DESC LIMIT 1});
open my $fh, '>:raw', "$dir/cp.der" or die; print $fh pack('H*', $cms_hex); close $fh;
open $fh, '>:raw', "$dir/cp.bin" or die; print $fh pack('H*', $content_hex); close $fh;
my ($ok_out, $ok_err) = ('', '');
my $verified = IPC::Run::run([ 'openssl', 'cms', '-verify', '-binary', '-inform', 'DER', '-in', "$dir/cp.der",
	'-content', "$dir/cp.bin", '-CAfile', "$pki/root.pem", '-certfile', "$pki/intermediate.pem",
	'-purpose', 'any', '-out', '/dev/null' ], '>', \$ok_out, '2>', \$ok_err);
chomp $ok_err;
ok($verified, "openssl cms -verify: the signature of checkpoint $cp_id holds ($ok_err)");

# --- the newest record of a document, removed 2 s after it was written ---------
sleep 2;
$node->safe_psql('postgres', qq{
SET session_replication_role = replica;
DELETE FROM ioffice.audit WHERE chain = 'document:$d1'
   AND seq = (SELECT max(seq) FROM ioffice.audit WHERE chain = 'document:$d1');
});
like(problems($node, "chain document:$d1 %"), qr/^chain document:$d1 ends at position \d+ but position \d+ was sealed in checkpoint \d+: its last records were removed$/,
	'the removed newest record is found against the checkpoint');

# --- a whole chain created 2 s ago, removed ------------------------------------
my $d2 = new_doc($node, 'Xóa cả chuỗi');
ok(sealed_and_signed($node, "document:$d2"), 'the second document is sealed');
sleep 2;
$node->safe_psql('postgres', "SET session_replication_role = replica; DELETE FROM ioffice.audit WHERE chain = 'document:$d2'");
like(problems($node, "chain document:$d2,%"), qr/^chain document:$d2, sealed at position \d+ in checkpoint \d+, has no records left$/,
	'the removed chain is found');

# --- within the window: removed before any checkpoint saw it --------------------
# The record is written and removed before the worker's next checkpoint (here
# in one transaction, so that no seal can come between).  No checkpoint ever
# held it: audit_verify() cannot know it existed.  The window is at most
# ioffice.audit_seal_interval plus the time until the witness has the
# checkpoint; a superuser fast enough inside it is not caught.
my $d3 = new_doc($node, 'Trong cửa sổ');
ok(sealed_and_signed($node, "document:$d3"), 'the third document is sealed');
$node->safe_psql('postgres', qq{
BEGIN;
UPDATE ioffice.document SET comment = 'Ghi chú sẽ bị xóa' WHERE id = $d3;
SET LOCAL session_replication_role = replica;
DELETE FROM ioffice.audit WHERE chain = 'document:$d3'
   AND seq = (SELECT max(seq) FROM ioffice.audit WHERE chain = 'document:$d3');
COMMIT;
});
sleep 2;
is(problems($node, "%document:$d3%"), '',
	'a record removed inside the window (before any checkpoint) is NOT found: the documented limit');

# the problems so far, to set apart from those of the rewrite below
my $before = $node->safe_psql('postgres', "SELECT count(*) FROM ioffice.audit_verify()");
is($before, '2', 'exactly the two removals are reported');

# --- a superuser rewrites a record and every checkpoint after it ----------------
# Triggers off, hashes recomputed in SQL exactly as the extension computes
# them (records, Merkle roots, checkpoint links), but without the key: the
# old signatures stay, and no longer match.
my $d4 = new_doc($node, 'Bản ghi bị viết lại');
ok(sealed_and_signed($node, "document:$d4"), 'the fourth document is sealed');
# a few more checkpoints after it
for my $i (1 .. 2)
{
	my $d = new_doc($node, "Sau khi niêm phong $i");
	ok(sealed_and_signed($node, "document:$d"), "later document $i is sealed");
}
my $last_before_rewrite = $node->safe_psql('postgres', 'SELECT max(id) FROM ioffice.audit_checkpoint');
# the worker must not seal while the forger works: no more writes meanwhile,
# and his transaction holds the sealer's lock
my $rewritten = $node->safe_psql('postgres', <<"EOSQL");
BEGIN;
SELECT pg_advisory_xact_lock(1634, 1);
SET LOCAL session_replication_role = replica;
CREATE FUNCTION pg_temp.f(s text) RETURNS bytea LANGUAGE sql AS
\$\$ SELECT CASE WHEN s IS NULL THEN '-;'::bytea
          ELSE convert_to(octet_length(convert_to(s, 'UTF8')) || ':', 'UTF8') || convert_to(s, 'UTF8') || ';'::bytea END \$\$;
CREATE FUNCTION pg_temp.fb(b bytea) RETURNS bytea LANGUAGE sql AS
\$\$ SELECT CASE WHEN b IS NULL THEN '-;'::bytea ELSE convert_to(length(b) || ':', 'UTF8') || b || ';'::bytea END \$\$;
CREATE FUNCTION pg_temp.us(t timestamptz) RETURNS text LANGUAGE sql AS
\$\$ SELECT ((extract(epoch FROM t) - 946684800) * 1000000)::bigint::text \$\$;
CREATE FUNCTION pg_temp.merkle(leaves bytea[]) RETURNS bytea LANGUAGE plpgsql AS \$\$
DECLARE
    lvl bytea[] := leaves;
    nxt bytea[];
    i int;
BEGIN
    IF cardinality(lvl) = 0 THEN RETURN sha256(''::bytea); END IF;
    WHILE cardinality(lvl) > 1 LOOP
        nxt := '{}';
        i := 1;
        WHILE i + 1 <= cardinality(lvl) LOOP
            nxt := nxt || sha256('\\x01'::bytea || lvl[i] || lvl[i + 1]);
            i := i + 2;
        END LOOP;
        IF i = cardinality(lvl) THEN nxt := nxt || lvl[i]; END IF;
        lvl := nxt;
    END LOOP;
    RETURN lvl[1];
END \$\$;
-- the record: the newest one of document $d4, its detail changed
UPDATE ioffice.audit a SET detail = detail || '{"note": "viết lại"}'
 WHERE chain = 'document:$d4' AND seq = (SELECT max(seq) FROM ioffice.audit WHERE chain = 'document:$d4');
UPDATE ioffice.audit a
   SET hash = sha256('ioffice-audit-1;'::bytea || pg_temp.f(chain) || pg_temp.f(seq::text) || pg_temp.fb(prev_hash)
                     || pg_temp.f(pg_temp.us(at)) || pg_temp.f(actor_id::text) || pg_temp.f(on_behalf_of::text)
                     || pg_temp.f(db_role) || pg_temp.f(entity) || pg_temp.f(entity_id::text) || pg_temp.f(action)
                     || pg_temp.f(state_before) || pg_temp.f(state_after) || pg_temp.f(detail::text))
 WHERE chain = 'document:$d4' AND seq = (SELECT max(seq) FROM ioffice.audit WHERE chain = 'document:$d4');
UPDATE ioffice.audit_checkpoint_head h SET hash = a.hash FROM ioffice.audit a
 WHERE a.chain = h.chain AND a.seq = h.seq AND h.chain = 'document:$d4';
-- every checkpoint from the one that sealed that record: root, link, hash
DO \$\$
DECLARE
    c record;
    prev bytea;
    first_id bigint := (SELECT min(checkpoint_id) FROM ioffice.audit_checkpoint_head
                         WHERE chain = 'document:$d4' AND seq = (SELECT max(seq) FROM ioffice.audit WHERE chain = 'document:$d4'));
BEGIN
    SELECT hash INTO prev FROM ioffice.audit_checkpoint WHERE id = first_id - 1;
    FOR c IN SELECT * FROM ioffice.audit_checkpoint WHERE id >= first_id ORDER BY id LOOP
        c.root := pg_temp.merkle(ARRAY(
            SELECT sha256('\\x00'::bytea || convert_to(octet_length(convert_to(h.chain, 'UTF8')) || ':' || h.chain || ';' || h.seq || ';', 'UTF8') || h.hash)
              FROM ioffice.audit_checkpoint_head h WHERE h.checkpoint_id = c.id ORDER BY h.chain COLLATE "C"));
        c.prev_hash := prev;
        c.hash := sha256(convert_to('ioffice-checkpoint-1;' || c.id || ';' || pg_temp.us(c.at) || ';' || c.chains || ';' || c.records || ';', 'UTF8')
                         || c.root || coalesce(c.prev_hash, ''::bytea));
        UPDATE ioffice.audit_checkpoint SET root = c.root, prev_hash = c.prev_hash, hash = c.hash WHERE id = c.id;
        prev := c.hash;
    END LOOP;
END \$\$;
SELECT min(checkpoint_id) FROM ioffice.audit_checkpoint_head
 WHERE chain = 'document:$d4' AND seq = (SELECT max(seq) FROM ioffice.audit WHERE chain = 'document:$d4');
COMMIT;
EOSQL
$rewritten = (split /\n/, $rewritten)[-1];
ok($rewritten > 0 && $rewritten <= $last_before_rewrite, "the forger rewrote checkpoints $rewritten to $last_before_rewrite");
my $sig_problems = $node->safe_psql('postgres', q{
SELECT string_agg(problem, E'\n' ORDER BY problem) FROM ioffice.audit_verify()
 WHERE problem NOT LIKE 'chain document:%'});
my $expected = join("\n", sort map { "checkpoint $_ does not match its signature: it was changed after it was signed" }
	  ($rewritten .. $last_before_rewrite));
is($sig_problems, $expected,
	'the recomputed records and checkpoints pass every hash, and fail every signature they kept');

# --- the witness's copies ------------------------------------------------------
sub witness_copies
{
	my @copies;
	open my $log, '<', "$dir/requests.jsonl" or die "no receiver log: $!";
	while (my $line = <$log>)
	{
		my $rec = $json->decode($line);
		push @copies, $rec->{body}
		  if ($rec->{event} // '') eq 'audit.checkpoint' && ($rec->{status} // '') eq '200';
	}
	close $log;
	return $json->encode(\@copies);
}
my $copies = witness_copies();
my $first = $node->safe_psql('postgres',
	"SELECT sequence || ':' || problem FROM ioffice.audit_verify_witness(" . sql_literal($copies) . ") WHERE first_divergence");
is($first, "$rewritten:checkpoint $rewritten differs from the witness's copy: root, hash",
	'audit_verify_witness names the first diverging checkpoint (the rewritten one)');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM ioffice.audit_verify_witness(" . sql_literal($copies) . ")"),
	$last_before_rewrite - $rewritten + 1, 'and one row for each checkpoint rewritten');

# --- a forger who also removes the signatures: the worker would sign his -------
# checkpoints (it checks only that they are consistent); the witness still
# holds the originals.  Shown with the key of another certificate: the
# checkpoints signed with it are named by audit_verify().
set_certificate($node, $dai_fp);
$node->safe_psql('postgres', "SET session_replication_role = replica; UPDATE ioffice.audit_checkpoint SET signature = NULL WHERE id >= $rewritten");
ok($node->poll_query_until('postgres', "SELECT count(*) = 0 FROM ioffice.audit_checkpoint WHERE signature IS NULL"),
	'checkpoints without signature are signed again by the worker');
set_certificate($node, $seal_fp);
my $other = $node->safe_psql('postgres', qq{
SELECT count(*) FROM ioffice.audit_verify()
 WHERE problem ~ '^checkpoint [0-9]+ was signed with another key \\(certificate ".*Trần Văn Đại.*", which ioffice.audit_certificate does not name\\)\$'});
ok($other >= $last_before_rewrite - $rewritten + 1, "the checkpoints re-signed with another key are named ($other)");
$first = $node->safe_psql('postgres',
	"SELECT sequence || ':' || problem FROM ioffice.audit_verify_witness(" . sql_literal($copies) . ") WHERE first_divergence");
is($first, "$rewritten:checkpoint $rewritten differs from the witness's copy: root, hash, signature",
	'the witness still names the first rewritten checkpoint');
# accepting both keys (a key rotation) silences the key problem, not the witness
set_certificate($node, "$seal_fp,$dai_fp");
is($node->safe_psql('postgres', "SELECT count(*) FROM ioffice.audit_verify() WHERE problem LIKE '%another key%'"),
	'0', 'with both certificates named, both keys are accepted');
set_certificate($node, $seal_fp);

# --- audit_seal() by an admin (no key in a backend): the worker signs it -------
$node->safe_psql('postgres', "ALTER SYSTEM SET ioffice.audit_seal_interval = 0; SELECT pg_reload_conf();");
sleep 1;
my $d8 = new_doc($node, 'Niêm phong bằng tay');
my ($by_hand, $unsigned) = split /\n/, $node->safe_psql('postgres', q{
BEGIN;
SELECT ioffice.audit_seal();
SELECT signature IS NULL FROM ioffice.audit_checkpoint ORDER BY id DESC LIMIT 1;
COMMIT;});
is($unsigned, 't', "audit_seal() in a backend wrote checkpoint $by_hand, unsigned");
ok($node->poll_query_until('postgres', qq{
SELECT signature IS NOT NULL AND EXISTS (SELECT 1 FROM ioffice.outbox WHERE event = 'audit.checkpoint'
                                          AND (body->'data'->>'sequence')::bigint = $by_hand)
  FROM ioffice.audit_checkpoint WHERE id = $by_hand}),
	'the worker signed and published it');
$node->safe_psql('postgres', "ALTER SYSTEM SET ioffice.audit_seal_interval = 1; SELECT pg_reload_conf();");

# --- the newest checkpoint removed with the records it covered ----------------
# The tail of the log: nothing after it to contradict it, so audit_verify()
# cannot see it; the witness, which received it, can.
my $d7 = new_doc($node, 'Xóa cả điểm niêm phong cuối');
ok(sealed_and_signed($node, "document:$d7"), 'the seventh document is sealed');
ok($node->poll_query_until('postgres', q{
SELECT count(*) = 0 FROM ioffice.outbox WHERE event = 'audit.checkpoint' AND status <> 'delivered'}),
	'and its checkpoint reached the witness');
my $problems_before = $node->safe_psql('postgres', 'SELECT count(*) FROM ioffice.audit_verify()');
my $tail = $node->safe_psql('postgres', q{
BEGIN;
SELECT pg_advisory_xact_lock(1634, 1);
SET LOCAL session_replication_role = replica;
CREATE TEMP TABLE tail AS SELECT max(id) AS k FROM ioffice.audit_checkpoint;
DELETE FROM ioffice.audit a USING ioffice.audit_checkpoint_head h, tail
 WHERE h.checkpoint_id = tail.k AND a.chain = h.chain
   AND a.seq > coalesce((SELECT max(p.seq) FROM ioffice.audit_checkpoint_head p
                          WHERE p.chain = h.chain AND p.checkpoint_id < tail.k), 0);
DELETE FROM ioffice.audit_checkpoint_head USING tail WHERE checkpoint_id = tail.k;
DELETE FROM ioffice.audit_checkpoint USING tail WHERE id = tail.k;
SELECT k FROM tail;
COMMIT;
});
$tail = (split /
/, $tail)[-1];
sleep 2;
is($node->safe_psql('postgres', 'SELECT count(*) FROM ioffice.audit_verify()'), $problems_before,
	"the newest checkpoint ($tail) removed with its records: audit_verify() alone sees nothing new");
is($node->safe_psql('postgres', "SELECT problem FROM ioffice.audit_verify_witness(" . sql_literal(witness_copies()) . ") WHERE sequence = $tail"),
	"checkpoint $tail, which the witness holds, is missing here", 'the witness names it');

# --- a streaming standby never seals; promoted, it continues the sequence ------
$node->backup('backup');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($node, 'backup', has_streaming => 1);
$standby->start;
my $d5 = new_doc($node, 'Trước khi chuyển đổi');
ok(sealed_and_signed($node, "document:$d5"), 'the primary sealed the last document');
# the primary stops sealing (no worker), so that what the standby holds is all
$node->append_conf('postgresql.conf', "ioffice.worker_databases = ''");
$node->restart;
my $d6 = new_doc($node, 'Chưa niêm phong');
$node->wait_for_catchup($standby);
my $last = $node->safe_psql('postgres', 'SELECT max(id) FROM ioffice.audit_checkpoint');
ok($standby->poll_query_until('postgres', "SELECT state = 'standby' FROM ioffice.worker_status"),
	'the standby\'s worker waits');
sleep 3;
is($standby->safe_psql('postgres', 'SELECT max(id) FROM ioffice.audit_checkpoint'), $last,
	'the standby seals nothing (the new document stays unsealed there)');
is($standby->safe_psql('postgres', "SELECT batches FROM ioffice.worker_status"), '0', 'and its worker did no work');
$node->stop;
$standby->promote;
ok(sealed_and_signed($standby, "document:$d6"), 'promoted, it seals the unsealed document');
is($standby->safe_psql('postgres', qq{
SELECT c.id = $last + 1 AND c.prev_hash = p.hash AND c.signature IS NOT NULL
  FROM ioffice.audit_checkpoint c JOIN ioffice.audit_checkpoint p ON p.id = c.id - 1
 WHERE c.id = (SELECT min(id) FROM ioffice.audit_checkpoint WHERE id > $last)}),
	't', 'its first checkpoint continues the sequence and links to the last replicated one');
is($standby->safe_psql('postgres', "SELECT count(*) FROM ioffice.audit_verify() WHERE problem LIKE 'checkpoint ' || ($last + 1) || ' %'"),
	'0', 'and it verifies');

my $pid = slurp_file("$dir/pid");
chomp $pid;
kill 'TERM', $pid;
done_testing();
