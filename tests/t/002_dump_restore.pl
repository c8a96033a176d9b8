# pg_dump / pg_restore of a database that uses ioffice: the restored copy
# holds the same directory, documents, files, trails, registers, audit rows
# and DBA rule rows, and keeps working (sequences and register numbers go on).
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use IofficeTest;

my $node = PostgreSQL::Test::Cluster->new('dump_restore');
$node->init(extra => [ '--encoding=UTF8', '--no-locale' ]);
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'ioffice'\n");
$node->start;

# a small PDF whose bytes also hold NUL and high bytes, so that any mangling
# of bytea on the way through the dump shows
my $pdf_sql = q{convert_to(E'%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n', 'UTF8')
  || '\x00ff80fe0d0a'::bytea || convert_to(E'%%EOF\n', 'UTF8')};

$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql('src', 'CREATE EXTENSION ioffice');

my $agency = $node->safe_psql('src',
	q{SELECT ioffice.add_agency('Ủy ban nhân dân tỉnh Thử', 'UBND', '000.00.32.H41')});
my $dept = $node->safe_psql('src',
	qq{SELECT ioffice.add_department($agency, 'Văn phòng', 'VP')});
$node->safe_psql(
	'src', qq{
	SELECT ioffice.add_person('chuyenvien', 'Nguyễn Văn Chuyên', 'Chuyên viên', $dept, '{specialist}');
	SELECT ioffice.add_person('lanhdao', 'Trần Thị Lãnh', 'Chủ tịch', $agency, '{leader}');
	SELECT ioffice.add_person('vanthu', 'Lê Văn Thư', 'Văn thư', $dept, '{clerk}');
});

# a DBA rule row that is not builtin: it must come back from the dump, while
# the builtin rows come back from CREATE EXTENSION (once, not twice)
$node->safe_psql('src',
	q{INSERT INTO ioffice.doc_type (code, name, abbr) VALUES ('CVx', 'Công văn thử', NULL)});

# the calendar is user data too: a day off and a make-up working day
$node->safe_psql('src',
	q{INSERT INTO ioffice.holiday (day, name, working) VALUES
	  ('2024-04-29', 'Nghỉ hoán đổi', false), ('2024-05-04', 'Làm bù cho 29/4', true)});

# document 1: the whole outgoing flow up to issue
my $doc1 = as_actor($node, 'src', 'chuyenvien',
	q{SELECT ioffice.create_outgoing('CV', 'Về việc thử sao lưu và phục hồi',
	   '{"urgency": "urgent", "signer": "lanhdao", "page_count": 2, "recipients": ["Bộ Nội vụ"]}')});
like($doc1, qr/^\d+$/, 'document 1 created');
as_actor($node, 'src', 'chuyenvien', qq{SELECT ioffice.attach($doc1, 'du_thao.pdf', $pdf_sql)});
is(as_actor($node, 'src', 'chuyenvien',
		qq{SELECT ioffice.act($doc1, 'submit', 'lanhdao', 'Kính trình lãnh đạo')}),
	'reviewing', 'document 1 submitted');
is(as_actor($node, 'src', 'lanhdao',
		qq{SELECT ioffice.act($doc1, 'approve', 'vanthu', 'Đồng ý, phát hành')}),
	'awaiting_issue', 'document 1 approved');
is(as_actor($node, 'src', 'vanthu', qq{SELECT ioffice.act($doc1, 'issue')}),
	'issued', 'document 1 issued');
my $symbol1 = $node->safe_psql('src', "SELECT symbol FROM ioffice.document WHERE id = $doc1");
like($symbol1, qr{^01/}, "document 1 took number 01 ($symbol1)");

# a number taken by an external system: the register's numbers chain, whose
# end the register row keeps, must survive the round trip and go on
my $reg = $node->safe_psql('src', "SELECT register_id FROM ioffice.document WHERE id = $doc1");
is(as_actor($node, 'src', 'vanthu', qq{SELECT number FROM ioffice.take_number($reg, 'CV')}),
	'2', 'number 02 taken by take_number()');

# document 2, of the DBA's own type, stopped half-way
my $doc2 = as_actor($node, 'src', 'chuyenvien',
	q{SELECT ioffice.create_outgoing('CVx', 'Văn bản dừng giữa chừng')});
as_actor($node, 'src', 'chuyenvien', qq{SELECT ioffice.attach($doc2, 'b.pdf', $pdf_sql)});
is(as_actor($node, 'src', 'chuyenvien', qq{SELECT ioffice.act($doc2, 'submit', 'lanhdao')}),
	'reviewing', 'document 2 submitted');

# --- dump and restore ------------------------------------------------------

my $dump = "$PostgreSQL::Test::Utils::tmp_check/src.dump";
my @conn = ('-h', $node->host, '-p', $node->port);
my ($out, $err);

my $ok = IPC::Run::run([ 'pg_dump', @conn, '-Fc', '-f', $dump, 'src' ],
	'>', \$out, '2>', \$err);
ok($ok, 'pg_dump exits with 0');
# no warning either: a backup job may rightly treat any stderr as failure
# (self-referencing foreign keys of dumped tables made pg_dump warn)
is($err, '', 'pg_dump writes nothing on stderr');

$node->safe_psql('postgres', 'CREATE DATABASE dst');
$ok = IPC::Run::run([ 'pg_restore', @conn, '-d', 'dst', $dump ],
	'>', \$out, '2>', \$err);
ok($ok, 'pg_restore exits with 0');
is($err, '', 'pg_restore writes nothing on stderr');

# --- same data ---------------------------------------------------------------

for my $table (
	qw(unit person person_role document file task register audit doc_type
	workflow workflow_state workflow_transition document_link delegation signature holiday
	permission_change))
{
	my $src = table_digest($node, 'src', $table);
	my $dst = table_digest($node, 'dst', $table);
	is($dst, $src, "table $table restored identically ($src)");
	if ($src ne $dst)
	{
		diag("src $table:\n"
			  . $node->safe_psql('src', "SELECT t::text FROM ioffice.$table t ORDER BY 1"));
		diag("dst $table:\n"
			  . $node->safe_psql('dst', "SELECT t::text FROM ioffice.$table t ORDER BY 1"));
	}
}

# the comparison above is only worth something if the tables were not empty
my $src_counts = $node->safe_psql('src',
	q{SELECT (SELECT count(*) FROM ioffice.document) || ' ' || (SELECT count(*) FROM ioffice.file)
	  || ' ' || (SELECT count(*) FROM ioffice.task) || ' ' || (SELECT count(*) FROM ioffice.audit)});
like($src_counts, qr/^2 2 [1-9]\d* [1-9]\d*$/, "source has documents, files, tasks, audit rows ($src_counts)");

is($node->safe_psql('dst',
		q{SELECT count(*) FILTER (WHERE builtin) > 0 AND count(*) FILTER (WHERE code = 'CVx' AND NOT builtin) = 1
		  FROM ioffice.doc_type}),
	't', 'builtin document types and the DBA-added one are all in dst');

is($node->safe_psql('dst',
		q{SELECT bool_and(sha256 = sha256(content) AND substr(content, 1, 8) = '%PDF-1.4'::bytea)
		  FROM ioffice.file}),
	't', 'restored files still match their SHA-256 and start with %PDF-1.4');

is($node->safe_psql('dst',
		q{SELECT ioffice.working_days_between('2024-04-27 08:00+07', '2024-05-06 08:00+07')}),
	'5', 'the restored calendar counts: 29/4 off, Saturday 4/5 worked');

# the home page's kept counters came with the dump, and the restore's
# loading of documents and tasks did not count them a second time
is($node->safe_psql('dst',
		q{SELECT (SELECT count(*) FROM ioffice.dashboard_counts_check()) || ' '
		  || (SELECT count(*) > 0 FROM ioffice.person p
		       WHERE ioffice._count_kept(p.id, 'outgoing_issued') > 0)}),
	'0 true', 'restored dashboard counters agree with the tabs');

# the sequences behind the tables were dumped with their positions
for my $seq (
	qw(unit_id_seq person_id_seq delegation_id_seq register_id_seq document_id_seq
	file_id_seq task_id_seq signature_id_seq audit_id_seq))
{
	my $q = "SELECT last_value || ' ' || is_called FROM ioffice.$seq";
	is($node->safe_psql('dst', $q), $node->safe_psql('src', $q), "sequence $seq restored");
}

my $trail_sql = "SELECT t::text FROM ioffice.trail($doc1) t";
my $trail_src = as_actor($node, 'src', 'vanthu', $trail_sql);
isnt($trail_src, '', 'trail of document 1 is not empty');
is(as_actor($node, 'dst', 'vanthu', $trail_sql), $trail_src, 'trail of document 1 restored identically');
is($node->safe_psql('src', 'SELECT count(*) FROM ioffice.audit_verify()'), '0',
	'the audit trail of the source is intact');
is($node->safe_psql('dst', 'SELECT count(*) FROM ioffice.audit_verify()'), '0',
	'the restored audit trail is intact (hash chains survive dump and restore)');

# --- the restored database keeps working -----------------------------------

my $max_src = $node->safe_psql('src', 'SELECT max(id) FROM ioffice.document');
my $max_audit = $node->safe_psql('src', 'SELECT max(id) FROM ioffice.audit');

my $doc3 = as_actor($node, 'dst', 'chuyenvien',
	q{SELECT ioffice.create_outgoing('CV', 'Văn bản sau phục hồi')});
ok($doc3 > $max_src, "new document id $doc3 follows the restored ones (max $max_src)");
as_actor($node, 'dst', 'chuyenvien', qq{SELECT ioffice.attach($doc3, 'c.pdf', $pdf_sql)});
is(as_actor($node, 'dst', 'chuyenvien', qq{SELECT ioffice.act($doc3, 'submit', 'lanhdao')}),
	'reviewing', 'new document submitted in dst');
is(as_actor($node, 'dst', 'lanhdao', qq{SELECT ioffice.act($doc3, 'approve', 'vanthu')}),
	'awaiting_issue', 'new document approved in dst');
is(as_actor($node, 'dst', 'vanthu', qq{SELECT ioffice.act($doc3, 'issue')}),
	'issued', 'new document issued in dst');

my ($number3, $symbol3) = split /\|/,
  $node->safe_psql('dst', "SELECT number, symbol FROM ioffice.document WHERE id = $doc3");
is($number3, 3, 'register number continues after the restored ones');
like($symbol3, qr{^03/}, "symbol of the new document starts with 03/ ($symbol3)");
is(as_actor($node, 'dst', 'vanthu', qq{SELECT number FROM ioffice.take_number($reg, 'CV')}),
	'4', 'take_number() goes on in dst');
is($node->safe_psql('dst',
		"SELECT string_agg(seq || ':' || (detail->>'number'), ',' ORDER BY seq) FROM ioffice.audit WHERE chain = 'numbers:$reg'"),
	'1:2,2:4', 'the numbers chain goes on from the restored end');
is($node->safe_psql('dst', 'SELECT count(*) FROM ioffice.audit_verify()'), '0',
	'the audit trail of dst is intact after the new numbers');

is($node->safe_psql('dst',
		"SELECT count(*) > 0 AND min(id) > $max_audit FROM ioffice.audit WHERE entity = 'document' AND entity_id = $doc3"),
	't', 'the new document is audited with ids after the restored audit rows');
is(as_actor($node, 'dst', 'lanhdao',
		"SELECT count(*) FILTER (WHERE status = 'Đang xử lý') FROM ioffice.trail($doc2)"),
	'1', 'the half-way document is still held by someone in dst');
is(as_actor($node, 'dst', 'lanhdao', qq{SELECT ioffice.act($doc2, 'approve', 'vanthu')}),
	'awaiting_issue', 'the half-way document can go on in dst');

# the source is untouched by all this
is($node->safe_psql('src', 'SELECT max(id) FROM ioffice.document'),
	$max_src, 'source database unchanged');

$node->stop;
done_testing();
