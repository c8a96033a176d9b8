# Helpers of the TAP tests of PDF signatures (020, 023): a node whose
# worker signs PDFs with the test PKI, and the whole flow of an issued PDF
# (attached, signed by the leader, approved, issued and sealed).
package PdfSigning;
use strict;
use warnings;
use Exporter 'import';
use File::Basename qw(dirname);
use File::Copy qw(copy);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IofficeTest;

our @EXPORT = qw(pdf_signing_node file_hex write_bytes wait_signatures current_file issue_pdf);

# A started node whose worker signs with the test PKI's leader key
# (person_rsa, for dai) and seal; the agency of the seeds with a specialist
# (regress_luan), a leader (dai) and a clerk (regress_thuy).  Returns the
# node and the PKI's folder.
sub pdf_signing_node
{
	my ($name) = @_;
	my $pki = PostgreSQL::Test::Utils::tempdir;
	my $keystore = PostgreSQL::Test::Utils::tempdir;
	system_or_bail('bash', dirname(__FILE__) . '/../pki/make_pki', $pki);
	for my $k (qw(person_rsa seal))
	{
		copy("$pki/$k.key", "$keystore/$k.key") or die "copy $k: $!";
		chmod 0600, "$keystore/$k.key";
	}

	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'ioffice'
ioffice.worker_databases = 'postgres'
ioffice.keystore = '$keystore'
ioffice.keystore_personal = on
ioffice.worker_naptime = 1
});
	$node->start;

	my $chain = slurp_file("$pki/intermediate.pem");
	$node->safe_psql('postgres', qq{
CREATE EXTENSION ioffice;
SELECT ioffice.add_agency('UBND huyện Sốp Cộp', 'UBND', '000.00.32.H41');
SELECT ioffice.add_department(1, 'Văn phòng HĐND-UBND', 'VP');
SELECT ioffice.add_person('regress_luan', 'Tòng Văn Luân', 'Chuyên viên', 2, '{specialist}');
SELECT ioffice.add_person('dai', 'Trần Văn Đại', 'Chánh Văn phòng', 2, '{leader}');
SELECT ioffice.add_person('regress_thuy', 'Tòng Văn Thủy', 'Văn thư', 1, '{clerk}');
SELECT ioffice.add_trust_anchor(@{[ sql_literal(slurp_file("$pki/root.pem")) ]});
SELECT ioffice.register_certificate('personal', 'dai', @{[ sql_literal(slurp_file("$pki/person_rsa.pem") . $chain) ]}, 'person_rsa.key');
SELECT ioffice.register_certificate('organisation', '000.00.32.H41', @{[ sql_literal(slurp_file("$pki/seal.pem") . $chain) ]}, 'seal.key');
});
	return ($node, $pki);
}

sub file_hex
{
	my ($path) = @_;
	open my $fh, '<:raw', $path or die "$path: $!";
	local $/;
	my $bytes = <$fh>;
	close $fh;
	return unpack('H*', $bytes);
}

sub write_bytes
{
	my ($path, $bytes) = @_;
	open my $fh, '>:raw', $path or die "$path: $!";
	print $fh $bytes;
	close $fh;
	return $path;
}

sub wait_signatures
{
	my ($node, $doc) = @_;
	return $node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM ioffice.signature WHERE document_id = $doc AND status = 'pending'");
}

sub current_file
{
	my ($node, $doc) = @_;
	return $node->safe_psql('postgres',
		"SELECT id FROM ioffice.file WHERE document_id = $doc AND superseded_at IS NULL AND removed_at IS NULL");
}

# the whole flow: attach PATH, the leader signs and approves, the clerk
# issues (the seal); returns (doc, issued file id, its path on disk)
sub issue_pdf
{
	my ($node, $label, $path) = @_;
	my $doc = as_actor($node, 'postgres', 'regress_luan', "SELECT ioffice.create_outgoing('CV', 'Công văn $label')");
	as_actor($node, 'postgres', 'regress_luan',
		"SELECT ioffice.attach($doc, 'cong_van.pdf', decode('" . file_hex($path) . "', 'hex'))");
	as_actor($node, 'postgres', 'regress_luan', "SELECT ioffice.act($doc, 'submit', 'dai', NULL, '{\"request_signature\": true}')");
	as_actor($node, 'postgres', 'dai', "SELECT ioffice.act($doc, 'sign', NULL, NULL, '{\"mode\": \"auto\"}')");
	ok(wait_signatures($node, $doc), "$label: the leader's signature is made");
	is($node->safe_psql('postgres', "SELECT status || ':' || coalesce(reason, '-') || ':' || (signed_file_id IS NOT NULL) FROM ioffice.signature WHERE document_id = $doc"),
		'done:-:true', "$label: the leader's signature made a new version of the file");
	is(as_actor($node, 'postgres', 'dai', "SELECT ioffice.act($doc, 'approve', 'regress_thuy')"), 'awaiting_issue',
		"$label: approve sees the leader's signature in the signed PDF");
	is(as_actor($node, 'postgres', 'regress_thuy', "SELECT ioffice.act($doc, 'issue')"), 'issued',
		"$label: issue sees the approving leader's signature (approver_signature)");
	ok(wait_signatures($node, $doc), "$label: the organisation's signature is made");
	is($node->safe_psql('postgres', "SELECT string_agg(kind || ':' || status || ':' || coalesce(reason, '-'), ',' ORDER BY id) FROM ioffice.signature WHERE document_id = $doc"),
		'personal:done:-,organisation:done:-', "$label: both signatures are done");
	my $file = current_file($node, $doc);
	is($node->safe_psql('postgres', "SELECT count(*) FROM ioffice.file WHERE document_id = $doc"), '3',
		"$label: the draft, the leader's signed version, the sealed version");
	my $out = bytea_to_file($node, 'postgres', 'dai', "(SELECT content FROM ioffice.file WHERE id = $file)", "$label-issued.pdf");
	return ($doc, $file, $out);
}

1;
