# The outgoing register view answers the reporting tools' usual queries from
# the indexes of ioffice.document, never by reading the whole table: a year
# of one agency's register in number order, a month, one type over a period.
# A province-sized register is generated directly (30,000 entries over 3
# years, 5 agencies, 10 types: about 29,100 issued documents, 2% of them
# confidential, and 900 numbers taken by other systems; plus 3,000
# documents not yet numbered), analysed, and the queries are planned and
# run as a login role in ioffice_reader, under its row-level security.  The
# plans are printed for the README.
use strict;
use warnings;

use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $agencies = 5;
my $issued = 30_000;    # register entries
my @years = (2023, 2024, 2025);

my $node = PostgreSQL::Test::Cluster->new('register_plans');
$node->init(extra => [ '--encoding=UTF8', '--no-locale' ]);
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'ioffice'\n");
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION ioffice;
CREATE ROLE regress_report LOGIN IN ROLE ioffice_reader;
});

# The directory through the API; the documents written directly as they
# would be after years of issuing (the audit triggers are skipped: this is
# about plans, not about the trail).  Numbers follow the issue dates within
# each register and year, symbols and identifiers are built as the engine
# builds them, so the unique indexes hold.
my $first = $years[0];
my $last = $years[-1];
my $per = int($issued / ($agencies * @years));
$node->safe_psql('postgres', qq{
SELECT setseed(0.42);
SELECT ioffice.add_agency('UBND huyện ' || i, 'UBND', format('000.00.%s.H41', 30 + i))
  FROM generate_series(1, $agencies) i;
SELECT ioffice.add_department(a.id, 'Văn phòng HĐND-UBND', 'VP')
  FROM ioffice.unit a WHERE a.parent_id IS NULL ORDER BY a.id;
SELECT ioffice.add_person('cv' || a.id, 'Chuyên viên ' || a.id, NULL, d.id, '{specialist}'),
       ioffice.add_person('ld' || a.id, 'Chủ tịch ' || a.id, NULL, a.id, '{leader}')
  FROM ioffice.unit a JOIN ioffice.unit d ON d.agency_id = a.id AND d.id <> a.id
 ORDER BY a.id;

SET session_replication_role = replica;
INSERT INTO ioffice.register (agency_id, direction, code, name, doc_types, confidential,
                              symbol_suffix, year)
SELECT agency_id, direction, code, name, doc_types, confidential, symbol_suffix, y
  FROM ioffice.register, generate_series($first, $last) y
 WHERE y <> year;

CREATE TEMP TABLE gen AS
SELECT a.id AS agency, d.id AS unit, a.code, y AS year,
       (ARRAY['CV', 'CV', 'CV', 'QĐ', 'QĐ', 'KH', 'TB', 'BC', 'TTr', 'GM'])[1 + floor(random() * 10)::int]
         AS doc_type,
       make_date(y, 1, 1) + floor(random() * 365)::int AS issued_on,
       random() < 0.02 AS confidential,
       random() < 0.03 AS taken
  FROM ioffice.unit a JOIN ioffice.unit d ON d.agency_id = a.id AND d.id <> a.id,
       generate_series($first, $last) y, generate_series(1, $per) g;
CREATE TEMP TABLE numbered AS
SELECT g.*, r.id AS register_id,
       row_number() OVER (PARTITION BY r.id ORDER BY g.issued_on, random())::int AS number
  FROM gen g JOIN ioffice.register r
    ON r.agency_id = g.agency AND r.year = g.year AND r.direction = 'outgoing'
   AND r.confidential = g.confidential AND r.doc_types IS NULL;
ALTER TABLE numbered ADD symbol text;
UPDATE numbered n
   SET symbol = ioffice.format_number(n.number) || '/'
                || CASE WHEN t.abbr IS NULL THEN 'UBND-VP' ELSE t.abbr || '-UBND' END
                || CASE WHEN n.confidential THEN '-M' ELSE '' END
  FROM ioffice.doc_type t WHERE t.code = n.doc_type;

INSERT INTO ioffice.document (doc_type, abstract, state, confidentiality, agency_id,
       drafting_unit_id, drafter_id, signer_id, copies, recipients, register_id,
       register_year, number, symbol, issued_on, issued_at, identifier, created_at, updated_at)
SELECT doc_type, 'V/v báo cáo số ' || number || ' năm ' || year, 'issued',
       CASE WHEN confidential THEN 'confidential' ELSE 'normal' END, agency, unit,
       (SELECT id FROM ioffice.person WHERE login = 'cv' || agency),
       (SELECT id FROM ioffice.person WHERE login = 'ld' || agency),
       3, '[{"place": "Như trên"}, {"place": "Lưu: VT"}]', register_id, year, number, symbol,
       issued_on, issued_on + time '09:00' - interval '7 hours',
       CASE WHEN NOT confidential
            THEN code || ',' || to_char(issued_on, 'YYYY/MM/DD') || ',' || symbol END,
       issued_on - 3, issued_on
  FROM numbered WHERE NOT taken;
INSERT INTO ioffice.number_taken (register_id, number, symbol, doc_type, drafting_unit_id,
                                  taken_by, taken_at, taken_on)
SELECT register_id, number, symbol, doc_type, unit,
       (SELECT id FROM ioffice.person WHERE login = 'ld' || agency),
       issued_on + time '09:00' - interval '7 hours', issued_on
  FROM numbered WHERE taken;
UPDATE ioffice.register r
   SET next_number = 1 + coalesce((SELECT max(n.number) FROM numbered n
                                    WHERE n.register_id = r.id), 0);

-- documents still on their way: in the table, not in the register
INSERT INTO ioffice.document (doc_type, abstract, state, agency_id, drafting_unit_id, drafter_id)
SELECT 'CV', 'Dự thảo ' || g, (ARRAY['draft', 'reviewing', 'awaiting_issue'])[1 + g % 3],
       d.agency_id, d.id, (SELECT id FROM ioffice.person WHERE login = 'cv' || d.agency_id)
  FROM ioffice.unit d, generate_series(1, $issued / 10 / $agencies) g
 WHERE d.parent_id IS NOT NULL;
RESET session_replication_role;
ANALYZE;
});

my ($n_issued, $n_drafts, $n_taken) = split /\|/, $node->safe_psql('postgres', q{
SELECT count(*) FILTER (WHERE number IS NOT NULL), count(*) FILTER (WHERE number IS NULL),
       (SELECT count(*) FROM ioffice.number_taken)
  FROM ioffice.document});
note("register: $n_issued issued documents, $n_taken numbers taken, $n_drafts not numbered");
cmp_ok($n_issued + $n_taken, '==', $agencies * @years * $per,
	'every generated entry is in the register');

# the same register, read back: 1..N per register row, as the engine keeps it
is($node->safe_psql('postgres', q{
SELECT count(*) FROM ioffice.register r
 WHERE r.next_number - 1 <> (SELECT count(DISTINCT x.number) FROM (
         SELECT number FROM ioffice.document d WHERE d.register_id = r.id AND d.number IS NOT NULL
         UNION ALL SELECT number FROM ioffice.number_taken t WHERE t.register_id = r.id) x
        WHERE x.number BETWEEN 1 AND r.next_number - 1)}),
	'0', 'every generated register holds 1..N without gaps');

my $agency = $node->safe_psql('postgres',
	q{SELECT min(id) FROM ioffice.unit WHERE parent_id IS NULL});
my $year = $years[1];

# what the reporting tools ask, with what the reader must get back
# (counted as superuser from the tables: readers see every document
# that is not confidential, and the numbers taken in ordinary registers)
my @queries = (
	{
		name => "(a) one year of one agency's register, by number",
		sql => "SELECT * FROM ioffice.outgoing_register
		         WHERE agency_id = $agency AND year = $year ORDER BY number",
		expect => "SELECT (SELECT count(*) FROM ioffice.document
		                    WHERE agency_id = $agency AND register_year = $year
		                      AND number IS NOT NULL AND confidentiality = 'normal')
		                + (SELECT count(*) FROM ioffice.number_taken t
		                     JOIN ioffice.register r ON r.id = t.register_id
		                    WHERE r.agency_id = $agency AND r.year = $year AND NOT r.confidential)",
	},
	{
		name => '(b) a month, every agency',
		sql => "SELECT * FROM ioffice.outgoing_register
		         WHERE issued_on BETWEEN '$year-03-01' AND '$year-03-31'
		         ORDER BY agency_id, issued_on, number",
	},
	{
		name => "(b') a month of one agency's register",
		sql => "SELECT * FROM ioffice.outgoing_register
		         WHERE agency_id = $agency AND issued_on BETWEEN '$year-03-01' AND '$year-03-31'
		         ORDER BY issued_on, number",
	},
	{
		name => '(c) one type within a date range, every agency',
		sql => "SELECT * FROM ioffice.outgoing_register
		         WHERE doc_type = 'QĐ' AND issued_on BETWEEN '$year-01-01' AND '$year-06-30'
		         ORDER BY agency_id, issued_on, number",
	},
	{
		name => "(c') one type within a date range, one agency",
		sql => "SELECT * FROM ioffice.outgoing_register
		         WHERE agency_id = $agency AND doc_type = 'QĐ'
		           AND issued_on BETWEEN '$year-01-01' AND '$year-06-30'
		         ORDER BY issued_on, number",
	},
);

# every scan of ioffice.document in a JSON plan: "node type [index names]"
sub document_scans
{
	my ($node, $out) = @_;
	if (($node->{'Relation Name'} // '') eq 'document')
	{
		my @indexes;
		my $collect;
		$collect = sub {
			my ($n) = @_;
			push @indexes, $n->{'Index Name'} if defined $n->{'Index Name'};
			$collect->($_) for @{ $n->{Plans} // [] };
		};
		$collect->($node);
		push @$out,
		  { type => $node->{'Node Type'}, indexes => \@indexes,
			rows => $node->{'Actual Rows'} // 0, removed => $node->{'Rows Removed by Filter'} // 0 };
	}
	document_scans($_, $out) for @{ $node->{Plans} // [] };
	return $out;
}

sub as_reader
{
	my ($sql) = @_;
	return $node->safe_psql('postgres', $sql, extra_params => [ '-U', 'regress_report' ]);
}

is(as_reader('SELECT session_user'), 'regress_report', 'the queries run as login role regress_report');

for my $q (@queries)
{
	my $json = as_reader("EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) $q->{sql}");
	my $plan = decode_json($json)->[0]{Plan};
	my $scans = document_scans($plan, []);
	ok(@$scans > 0, "$q->{name}: the plan reads ioffice.document");
	for my $s (@$scans)
	{
		isnt($s->{type}, 'Seq Scan', "$q->{name}: no Seq Scan on document");
		like($s->{type}, qr/^(?:Index Scan|Index Only Scan|Bitmap Heap Scan)$/,
			"$q->{name}: document is reached by $s->{type}");
		ok(@{ $s->{indexes} } && !grep({ !/^document_/ } @{ $s->{indexes} }),
			"$q->{name}: through " . (join(', ', @{ $s->{indexes} }) || 'no index'));
	}

	# what the reader gets is what it may see, whatever the plan
	my $got = as_reader("SELECT count(*) FROM ($q->{sql}) s");
	my $want = $node->safe_psql('postgres', $q->{expect}
		  // "SELECT count(*) FROM ($q->{sql}) s WHERE NOT confidential");
	is($got, $want, "$q->{name}: the reader gets the $want entries it may see");

	my $text = as_reader("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) $q->{sql}");
	my $read = 0;
	$read += $_->{rows} + $_->{removed} for @$scans;
	note("$q->{name}: $got rows; $read rows of document read\n$q->{sql}\n$text");
}

$node->safe_psql('postgres', 'DROP ROLE regress_report');
$node->stop;
done_testing();
