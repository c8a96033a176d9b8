# Every SQL example of README.md and docs/*.md runs as written.
#
# For each file, a fresh database with CREATE EXTENSION ioffice CASCADE, then
# the file's ```sql blocks in order, in ONE psql session with ON_ERROR_STOP,
# as a reader would paste them: psql variables set by one block (\set, \gset)
# are there for the next.  One test per block, named by file and line, that
# fails with psql's error.  A block whose first line is
#     -- fails: SQLSTATE
# shows a refusal on purpose: it must raise exactly one error, with that
# SQLSTATE, and the session goes on.  Blocks fenced with another language
# (sh, ini, plain) are not run.
#
# The examples create cluster-wide roles (an application role, a DBA's
# login); they are dropped after each file, so that every file starts from
# the same cluster and none depends on another.
#
# The repository is $ENV{IOFFICE_SRC} (scripts/test sets it), else the
# folder two levels above this file.
use strict;
use warnings;

use File::Basename qw(dirname);
use File::Spec;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $src = $ENV{IOFFICE_SRC}
  // File::Spec->rel2abs(File::Spec->catdir(dirname(__FILE__), '..', '..'));
my @files = ('README.md', map { File::Spec->abs2rel($_, $src) } sort glob("$src/docs/*.md"));
ok(-f "$src/README.md", "README.md found in $src");

# The ```sql blocks of a Markdown file: [{line, sqlstate, lines}], line being
# the fence's line number.  A fence must start its line: an indented one is
# reported, since it would silently not run.
sub sql_blocks
{
	my ($path) = @_;
	open my $fh, '<', $path or die "cannot read $path: $!";
	my (@blocks, $cur, @misplaced);
	my $fence = undef;    # the fence that opened a block of another language
	while (my $line = <$fh>)
	{
		chomp $line;
		my $n = $.;
		if ($cur)
		{
			if ($line =~ /^```\s*$/)
			{
				push @blocks, $cur;
				$cur = undef;
			}
			else
			{
				push @{ $cur->{lines} }, $line;
			}
		}
		elsif (defined $fence)
		{
			$fence = undef if $line =~ /^```\s*$/;
		}
		elsif ($line =~ /^```sql\s*$/)
		{
			$cur = { line => $n, lines => [] };
		}
		elsif ($line =~ /^```/)
		{
			$fence = $line;
		}
		elsif ($line =~ /^\s+```sql/)
		{
			push @misplaced, $n;
		}
	}
	close $fh;
	die "$path: the sql block of line $cur->{line} is not closed\n" if $cur;
	for my $b (@blocks)
	{
		$b->{sqlstate} = $1
		  if @{ $b->{lines} } && $b->{lines}[0] =~ /^--\s*fails:\s*([0-9A-Z]{5})\b/;
	}
	return (\@blocks, \@misplaced);
}

# A block must end its last statement: else the statement would only run
# with the next block's text, and a reader's paste would hang on it.
sub unterminated
{
	my ($block) = @_;
	my @code = grep { !/^\s*(--.*)?$/ } @{ $block->{lines} };
	return 0 unless @code;
	my $last = $code[-1];
	# a statement's end, maybe followed by a comment; a psql meta-command
	# (\set, \gset, \g FILE)
	return !($last =~ /;\s*(--.*)?$/ || $last =~ /^\s*\\/ || $last =~ /\\g\w*(\s+\S+)?\s*(--.*)?$/);
}

my $node = PostgreSQL::Test::Cluster->new('doc_examples');
$node->init(extra => [ '--encoding=UTF8', '--no-locale' ]);
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'ioffice'\n");
$node->start;

my $roles_before = $node->safe_psql('postgres',
	'SELECT string_agg(quote_ident(rolname), \',\' ORDER BY rolname) FROM pg_roles');
my %initial_role = map { $_ => 1 } split /,/, $roles_before;

my $dbno = 0;
for my $file (@files)
{
	my ($blocks, $misplaced) = sql_blocks("$src/$file");
	fail("$file:$_: a ```sql fence must start its line") for @$misplaced;
	if (!@$blocks)
	{
		note("$file: no sql blocks");
		next;
	}

	# one script: each block between markers on stderr, where psql's errors
	# go too; its script lines are remembered to name the file's line of an
	# error
	my @script = ('\set VERBOSITY verbose', '\set SHOW_CONTEXT errors');
	for my $i (0 .. $#$blocks)
	{
		my $b = $blocks->[$i];
		push @script, '\set ON_ERROR_STOP off' if $b->{sqlstate};
		push @script, "\\warn \@\@block $i\@\@";
		$b->{script_line} = @script + 1;
		push @script, @{ $b->{lines} };
		push @script, "\\warn \@\@end $i\@\@";
		push @script, '\set ON_ERROR_STOP on' if $b->{sqlstate};
	}
	my $script = join("\n", @script) . "\n";

	my $db = 'doc_' . ++$dbno;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, 'CREATE EXTENSION ioffice CASCADE');
	my ($stdout, $stderr) = ('', '');
	my $rc = $node->psql(
		$db, $script,
		stdout        => \$stdout,
		stderr        => \$stderr,
		on_error_stop => 1);

	# stderr cut at the markers
	my (%section, %ended, $open);
	for my $line (split /\n/, $stderr)
	{
		if ($line =~ /^\@\@block (\d+)\@\@$/)
		{
			$open = $1;
			$section{$open} = [];
			next;
		}
		if ($line =~ /^\@\@end (\d+)\@\@$/)
		{
			$ended{$1} = 1;
			$open = undef;
			next;
		}
		push @{ $section{$open} }, $line if defined $open;
	}

	my ($stopped_at, $failed);
	for my $i (0 .. $#$blocks)
	{
		my $b = $blocks->[$i];
		my $name = "$file:$b->{line}";
		$name .= " (fails with $b->{sqlstate})" if $b->{sqlstate};
		if (!exists $section{$i})
		{
			$failed = 1;
			fail($name);
			diag("not run: the session stopped at $stopped_at") if $stopped_at;
			next;
		}
		my @out = @{ $section{$i} };
		# psql:<stdin>:LINE: ERROR:  SQLSTATE: message (VERBOSITY verbose),
		# or a psql error of its own (a \gset without a row: "error:")
		my @errors;
		for my $k (0 .. $#out)
		{
			next unless $out[$k] =~ /^psql:[^:]*:(\d+): (ERROR|FATAL|PANIC|error|fatal):\s+(.*)$/;
			my ($at, $msg) = ($1, $3);
			my $state = $msg =~ /^([0-9A-Z]{5}): / ? $1 : '';
			my $line = $b->{line} + 1 + $at - $b->{script_line};
			my $text = join("\n", @out[ $k .. $#out ]);
			$text =~ s/^psql:[^:]*:\d+: //;    # the script's line: the file's is given
			push @errors, { line => $line, state => $state, text => $text };
		}
		my @why;
		push @why, 'the block does not end its last statement with ";"' if unterminated($b);
		if ($b->{sqlstate})
		{
			if (!@errors)
			{
				push @why, "no error, $b->{sqlstate} expected";
			}
			elsif (@errors > 1 || $errors[0]{state} ne $b->{sqlstate})
			{
				push @why, "expected one error $b->{sqlstate}, got:\n"
				  . join("\n", map { "$file:$_->{line}: $_->{text}" } @errors);
			}
		}
		elsif (@errors)
		{
			push @why, "$file:$errors[0]{line}: $errors[0]{text}";
		}
		if (!$ended{$i})
		{
			$stopped_at //= $name;
			push @why, 'the session stopped in this block' unless @why;
		}
		ok(!@why, $name) or ($failed = 1, diag(join("\n", @why)));
	}
	# an error outside every block (the script's own lines) shows here
	is($rc, 0, "$file: the psql session ends without error")
	  or $failed
	  or diag("stderr:\n$stderr");

	# the next file starts from the same cluster
	$node->safe_psql('postgres', "DROP DATABASE $db");
	my $roles = $node->safe_psql('postgres', 'SELECT quote_ident(rolname) FROM pg_roles');
	for my $role (grep { !$initial_role{$_} } split /\n/, $roles)
	{
		$node->safe_psql('postgres', "DROP ROLE $role");
	}
}

$node->stop;
done_testing();
