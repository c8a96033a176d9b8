# Helpers shared by the TAP tests of ioffice ("use IofficeTest;", the test
# runner passes -I tests/t): acting as a person, comparing tables, quoting
# SQL, reading back the files the exports build; for the worker's tests
# (011, 012) a node with the test PKI and a signer, documents that request a
# signature, and a tiny HTTP listener that either answers 200 at once or
# accepts and never answers.
package IofficeTest;
use strict;
use warnings;
use Exporter 'import';
use File::Basename qw(dirname);
use File::Copy qw(copy);
use IO::Socket::INET;
use IPC::Run;
use JSON::PP;
use Time::HiRes qw(usleep);
use PostgreSQL::Test::Utils;

our @EXPORT = qw(as_actor try_as_actor table_digest sql_literal python_with_openpyxl
  bytea_to_file python_json make_keystore signing_setup new_doc_to_sign
  listener_start listener_stop listener_accepted free_port_block pdf_literal);

# One transaction of $sql in database $db of $node, as the person $login:
# the superuser running the test is a member of ioffice_app, so SET LOCAL
# ioffice.actor is honoured.  Returns what safe_psql returns (dies on error).
sub as_actor
{
	my ($node, $db, $login, $sql) = @_;
	return $node->safe_psql($db,
		"BEGIN;\nSET LOCAL ioffice.actor = '$login';\n$sql;\nCOMMIT;");
}

# The same for $sql that may be refused: returns ($ret, $stdout, $stderr) of
# $node->psql, to which %params go (extra_params => [...]).
sub try_as_actor
{
	my ($node, $db, $login, $sql, %params) = @_;
	return $node->psql($db,
		"BEGIN;\nSET LOCAL ioffice.actor = '$login';\n$sql;\nCOMMIT;", %params);
}

# The count and a digest of every row's text of table ioffice.$table, in a
# fixed order: equal digests, equal rows.  Run as the superuser, which row-
# level security does not filter.
sub table_digest
{
	my ($node, $db, $table) = @_;
	return $node->safe_psql($db,
		    "SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '-') "
		  . "FROM ioffice.$table t");
}

# $text as a SQL string literal (PEM files, paths)
sub sql_literal
{
	my ($text) = @_;
	$text =~ s/'/''/g;
	return "'$text'";
}

# The system's python3 when it has openpyxl (Debian's python3-openpyxl is
# installed for the system interpreter), else undef: a test then skips.
sub python_with_openpyxl
{
	my ($python) = grep { -x $_ } ('/usr/bin/python3', '/usr/local/bin/python3');
	$python //= 'python3';
	return system($python, '-c', 'import openpyxl') == 0 ? $python : undef;
}

# The bytea the SQL expression $bytea_sql gives, computed as $login, written
# to the file $name in the test's scratch directory; returns its path.
sub bytea_to_file
{
	my ($node, $db, $login, $bytea_sql, $name) = @_;
	my $hex = as_actor($node, $db, $login, "SELECT encode($bytea_sql, 'hex')");
	my $path = "$PostgreSQL::Test::Utils::tmp_check/$name";
	open(my $fh, '>:raw', $path) or die "cannot write $path: $!";
	print $fh pack('H*', $hex);
	close($fh);
	return $path;
}

# Runs the Python $script with @args and decodes the JSON it prints.
sub python_json
{
	my ($python, $script, @args) = @_;
	my ($out, $err);
	IPC::Run::run([ $python, '-c', $script, @args ], '>', \$out, '2>', \$err)
	  or die "python could not read @args: $err";
	return JSON::PP->new->decode($out);
}

# the test PKI and a keystore holding dai's key: returns ($pki, $keystore)
sub make_keystore
{
	my $pki = PostgreSQL::Test::Utils::tempdir;
	my $keystore = PostgreSQL::Test::Utils::tempdir;
	system_or_bail('bash', dirname(__FILE__) . '/../pki/make_pki', $pki);
	copy("$pki/person_rsa.key", "$keystore/person_rsa.key") or die "copy person_rsa.key: $!";
	chmod 0600, "$keystore/person_rsa.key";
	return ($pki, $keystore);
}

# the extension in $db with an agency, a specialist (regress_luan) and a leader
# (dai) whose certificate the worker signs with
sub signing_setup
{
	my ($node, $db, $pki) = @_;
	my $chain = slurp_file("$pki/intermediate.pem");
	$node->safe_psql($db, qq{
CREATE EXTENSION ioffice;
SELECT ioffice.add_agency('UBND huyện Sốp Cộp', 'UBND', '000.00.32.H41');
SELECT ioffice.add_department(1, 'Văn phòng HĐND-UBND', 'VP');
SELECT ioffice.add_person('regress_luan', 'Tòng Văn Luân', 'Chuyên viên', 2, '{specialist}');
SELECT ioffice.add_person('dai', 'Trần Văn Đại', 'Chánh Văn phòng', 2, '{leader}');
SELECT ioffice.add_trust_anchor(@{[ sql_literal(slurp_file("$pki/root.pem")) ]});
SELECT ioffice.register_certificate('personal', 'dai', @{[ sql_literal(slurp_file("$pki/person_rsa.pem") . $chain) ]}, 'person_rsa.key');
});
	return;
}

# a draft with one file, submitted to dai: ready for his 'sign'
sub new_doc_to_sign
{
	my ($node, $db, $abstract) = @_;
	my $doc = as_actor($node, $db, 'regress_luan', "SELECT ioffice.create_outgoing('CV', '$abstract')");
	as_actor($node, $db, 'regress_luan', "SELECT ioffice.attach($doc, 'du_thao.pdf', convert_to('%PDF-1.4 $abstract', 'UTF8'))");
	as_actor($node, $db, 'regress_luan', "SELECT ioffice.act($doc, 'submit', 'dai', NULL, '{\"request_signature\": true}')");
	return $doc;
}

# A listener on 127.0.0.1 in a process of its own: 'hang' accepts, reads
# and never answers (each accepted connection is noted in $dir/accepted);
# 'ok' answers every request 200 at once.  Returns (pid, port).
my $listener_code = <<'EOF';
use strict; use warnings; use IO::Socket::INET; use IO::Select; use IO::Handle;
my ($mode, $dir) = @ARGV;
my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 64, ReuseAddr => 1)
  or die "listen: $!";
open my $log, '>>', "$dir/accepted" or die; $log->autoflush(1);
open my $pf, '>', "$dir/port.tmp" or die; print $pf $l->sockport; close $pf;
rename "$dir/port.tmp", "$dir/port";
my $sel = IO::Select->new($l);
my %buf;
while (1) {
	for my $s ($sel->can_read(1)) {
		if ($s == $l) { my $c = $l->accept or next; $sel->add($c); $buf{$c} = ''; print $log "accepted\n"; next; }
		my $n = sysread($s, my $chunk, 65536);
		if (!$n) { $sel->remove($s); delete $buf{$s}; close $s; next; }
		next if $mode eq 'hang';
		$buf{$s} .= $chunk;
		if ($buf{$s} =~ /\r\n\r\n/ && $buf{$s} =~ /Content-Length:\s*(\d+)/i) {
			my $len = $1;
			my $head = index($buf{$s}, "\r\n\r\n") + 4;
			if (length($buf{$s}) - $head >= $len) {
				syswrite($s, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
				$sel->remove($s); delete $buf{$s}; close $s;
			}
		}
	}
}
EOF

sub listener_start
{
	my ($mode) = @_;
	my $dir = PostgreSQL::Test::Utils::tempdir;
	open my $fh, '>', "$dir/listener.pl" or die; print $fh $listener_code; close $fh;
	my $pid = fork // die "fork: $!";
	if ($pid == 0)
	{
		exec($^X, "$dir/listener.pl", $mode, $dir) or die "exec: $!";
	}
	for (1 .. 100)
	{
		last if -s "$dir/port";
		usleep(50_000);
	}
	die "the listener did not start" unless -s "$dir/port";
	my $port = slurp_file("$dir/port");
	return { pid => $pid, port => $port, dir => $dir };
}

sub listener_accepted
{
	my ($l) = @_;
	return 0 unless -e "$l->{dir}/accepted";
	my @lines = split /\n/, slurp_file("$l->{dir}/accepted");
	return scalar @lines;
}

sub listener_stop
{
	my ($l) = @_;
	kill 'TERM', $l->{pid};
	waitpid($l->{pid}, 0);
	return;
}


# free_port_block(LOW, HIGH, SIZE): a base in [LOW, HIGH] whose SIZE ports all
# take a listening socket on 127.0.0.1 now, tried from a start that depends on
# the process (two runs at once seldom meet).  For clusters that listen on
# fixed ports (scripts/ha): choose LOW above the kernel's ephemeral range
# (32768-60999 on Linux): there, an outgoing connection of anything on the
# machine (a replica's pg_basebackup, curl) can hold one of the ports when a
# server needs it, and the node does not come up.
sub free_port_block
{
	my ($low, $high, $size) = @_;
	my $blocks = int(($high - $low + 1) / $size);
	my $start = $$ % $blocks;
	for my $i (0 .. $blocks - 1)
	{
		my $base = $low + (($start + $i) % $blocks) * $size;
		my $free = 1;
		for my $port ($base .. $base + $size - 1)
		{
			my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
				Proto => 'tcp', Listen => 1, ReuseAddr => 1);
			if (!$s)
			{
				$free = 0;
				last;
			}
			close $s;
		}
		return $base if $free;
	}
	die "no block of $size free ports between $low and $high";
}

# pdf_literal(TITLE [, PAGES]): an SQL bytea literal of a real PDF (PAGES A4
# pages of text, tests/pdf/make_pdf.pl), which the worker can sign inside:
# an issued document that travels through the axis must carry a valid
# signature in its PDF, or the receiver refuses it (Decree 30 art. 21.2)
sub pdf_literal
{
	my ($title, $pages) = @_;
	my $dir = PostgreSQL::Test::Utils::tempdir;
	system_or_bail('perl', dirname(__FILE__) . '/../pdf/make_pdf.pl', $pages // 1, "$dir/doc.pdf", $title);
	open(my $fh, '<:raw', "$dir/doc.pdf") or die "$dir/doc.pdf: $!";
	local $/;
	my $bytes = <$fh>;
	close($fh);
	return "'\\x" . unpack('H*', $bytes) . "'::bytea";
}

1;

