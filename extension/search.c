/*-------------------------------------------------------------------------
 * search.c
 *	  The text search dictionary of search() (sql/parts/97_search.sql): the
 *	  words of Vietnamese text folded to their letters without tones and
 *	  marks ("Nghị định" -> "nghi", "dinh"; "Đà" -> "da"), plus the word as
 *	  written (lower case, composed) when it differs, so that an unaccented
 *	  query finds every spelling and an accented one can rank its own
 *	  spelling first.  And the test search() makes of its caller's role.
 *
 * Our own dictionary rather than contrib's unaccent: the folding of the
 * Vietnamese alphabet is fixed (Unicode's canonical decomposition of each
 * letter, and đ), so the text search configuration built on it is truly
 * immutable and its vectors can be stored and indexed; unaccent's rules
 * file can be edited by a DBA under stored vectors and indexes, and an
 * extension that requires unaccent would need CASCADE in every CREATE
 * EXTENSION and before every upgrade from 0.1.
 *
 * Both forms are given as alternatives (two variants at one position): a
 * vector holds "ma" and "má" for the word "má"; a query parsed with the
 * folding configuration asks for ("ma" | "má"), which "ma", "mà" and "má"
 * all match; a query parsed with the exact configuration ("exact = true":
 * the written form only) asks for "má", which only "má" matches.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "common/unicode_norm.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "tsearch/ts_locale.h"
#include "tsearch/ts_public.h"
#include "tsearch/ts_type.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/hsearch.h"

#include "ioffice.h"

PG_FUNCTION_INFO_V1(ioffice_search_fold_init);
PG_FUNCTION_INFO_V1(ioffice_search_fold_lexize);
PG_FUNCTION_INFO_V1(ioffice_search_outer_is_reader);
PG_FUNCTION_INFO_V1(ioffice_search_score);

/*
 * The forms of the words already seen, by the word in lower case: folding
 * a word (two Unicode normalisations) costs some microseconds, and a
 * document's text is a few hundred words out of some thousands of
 * Vietnamese syllables, so that indexing a million documents spent hours
 * folding the same words again.  The cache is the dictionary's own (its
 * memory context lives as long as the dictionary in the backend's text
 * search cache) and holds at most FOLD_CACHE_MAX words of less than
 * FOLD_KEY_LEN bytes; other words are folded every time.  A word's forms
 * depend on nothing but the word: the cache changes no result.
 */
#define FOLD_KEY_LEN 48
#define FOLD_CACHE_MAX 50000

typedef struct FoldEntry
{
	char		word[FOLD_KEY_LEN]; /* hash key: the word in lower case */
	char	   *exact;
	char	   *folded;
} FoldEntry;

typedef struct SearchFold
{
	bool		exact;			/* the written form only, not the folded one */
	MemoryContext cxt;			/* the dictionary's: where the cache lives */
	HTAB	   *cache;			/* FoldEntry by word, made at first use */
} SearchFold;

/* The combining marks of Vietnamese (and the rest of the block). */
#define IS_COMBINING_MARK(c) ((c) >= 0x0300 && (c) <= 0x036F)
#define CAPITAL_D_STROKE 0x0110
#define SMALL_D_STROKE 0x0111

Datum
ioffice_search_fold_init(PG_FUNCTION_ARGS)
{
	List	   *options = (List *) PG_GETARG_POINTER(0);
	SearchFold *d = palloc0(sizeof(SearchFold));
	ListCell   *l;

	d->cxt = CurrentMemoryContext;

	foreach(l, options)
	{
		DefElem    *opt = (DefElem *) lfirst(l);

		if (strcmp(opt->defname, "exact") == 0)
			d->exact = defGetBoolean(opt);
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unrecognized ioffice search dictionary parameter: \"%s\"",
							opt->defname)));
	}
	PG_RETURN_POINTER(d);
}

/* A zero-terminated array of code points as UTF-8, palloc'd. */
static char *
wchars_to_utf8(const pg_wchar *w)
{
	int			n = 0;
	char	   *out,
			   *p;

	while (w[n] != 0)
		n++;
	out = p = palloc(n * 4 + 1);
	for (int i = 0; i < n; i++)
	{
		unicode_to_utf8(w[i], (unsigned char *) p);
		p += pg_utf_mblen((unsigned char *) p);
	}
	*p = '\0';
	return out;
}

/*
 * The word's two forms: *exact, lower case and composed (NFC); *folded, its
 * letters without their marks and đ as d.  Lower case for the letters of
 * the Vietnamese alphabet whatever the database's locale (the base letters
 * of the decomposition are ASCII, and Đ): "ĐÀ" is "đà" even in a C locale.
 */
static void
fold_word(const char *word, char **exact, char **folded)
{
	int			len = strlen(word);
	pg_wchar   *in = palloc((len + 1) * sizeof(pg_wchar));
	pg_wchar   *nfd,
			   *nfc,
			   *bare;
	int			n,
				k = 0;

	n = pg_encoding_mb2wchar_with_len(PG_UTF8, word, in, len);
	in[n] = 0;
	nfd = unicode_normalize(UNICODE_NFD, in);
	for (n = 0; nfd[n] != 0; n++)
		;
	bare = palloc((n + 1) * sizeof(pg_wchar));
	for (int i = 0; i < n; i++)
	{
		pg_wchar	c = nfd[i];

		if (c >= 'A' && c <= 'Z')
			c += 'a' - 'A';
		else if (c == CAPITAL_D_STROKE)
			c = SMALL_D_STROKE;
		nfd[i] = c;
		if (IS_COMBINING_MARK(c))
			continue;
		bare[k++] = (c == SMALL_D_STROKE) ? 'd' : c;
	}
	bare[k] = 0;
	nfc = unicode_normalize(UNICODE_NFC, nfd);
	*exact = wchars_to_utf8(nfc);
	*folded = wchars_to_utf8(bare);
}

/*
 * fold_word() through the dictionary's cache: the forms are palloc'd in the
 * current context (the caller frees them).
 */
static void
fold_word_cached(SearchFold *d, const char *word, char **exact, char **folded)
{
	char		key[FOLD_KEY_LEN];
	FoldEntry  *e;
	bool		found;

	if (strlen(word) >= FOLD_KEY_LEN)
	{
		fold_word(word, exact, folded);
		return;
	}
	if (d->cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = FOLD_KEY_LEN;
		ctl.entrysize = sizeof(FoldEntry);
		ctl.hcxt = d->cxt;
		d->cache = hash_create("ioffice search words", 1024, &ctl,
							   HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	memset(key, 0, sizeof(key));
	strcpy(key, word);
	e = hash_search(d->cache, key, HASH_FIND, NULL);
	if (e == NULL)
	{
		fold_word(word, exact, folded);
		if (hash_get_num_entries(d->cache) >= FOLD_CACHE_MAX)
			return;
		e = hash_search(d->cache, key, HASH_ENTER, &found);
		e->exact = MemoryContextStrdup(d->cxt, *exact);
		e->folded = MemoryContextStrdup(d->cxt, *folded);
		return;
	}
	*exact = pstrdup(e->exact);
	*folded = pstrdup(e->folded);
}

/* Only ASCII: a word in lower case is its own folded and exact form. */
static bool
is_ascii(const char *s)
{
	for (; *s; s++)
		if (IS_HIGHBIT_SET(*s))
			return false;
	return true;
}

Datum
ioffice_search_fold_lexize(PG_FUNCTION_ARGS)
{
	SearchFold *d = (SearchFold *) PG_GETARG_POINTER(0);
	char	   *token = (char *) PG_GETARG_POINTER(1);
	int32		len = PG_GETARG_INT32(2);
	TSLexeme   *res = palloc0(sizeof(TSLexeme) * 3);
	char	   *lower = lowerstr_with_len(token, len);
	char	   *exact,
			   *folded;

	if (GetDatabaseEncoding() != PG_UTF8)
	{
		/* no code points to fold: the word in lower case, as 'simple' */
		res[0].lexeme = lower;
		PG_RETURN_POINTER(res);
	}
	if (is_ascii(lower))
	{
		/* what fold_word() gives: no marks to take off, nothing to compose */
		exact = folded = lower;
	}
	else
		fold_word_cached(d, lower, &exact, &folded);
	if (d->exact)
		res[0].lexeme = exact;
	else
	{
		res[0].nvariant = 1;
		res[0].lexeme = folded;
		if (strcmp(exact, folded) != 0)
		{
			res[1].nvariant = 2;
			res[1].lexeme = exact;
		}
	}
	PG_RETURN_POINTER(res);
}

/*
 * Is the role that called search() (not the owner of that SECURITY DEFINER
 * function) a reader, which the policy visible_to_readers of document lets
 * read every ordinary document?  As register_export() decides it: a
 * superuser holds every role's privileges, so only a real grant counts.
 */
Datum
ioffice_search_outer_is_reader(PG_FUNCTION_ARGS)
{
	Oid			outer = GetOuterUserId();
	Oid			reader = get_role_oid("ioffice_reader", true);

	if (!OidIsValid(reader))
		PG_RETURN_BOOL(false);
	if (superuser_arg(outer))
		PG_RETURN_BOOL(is_member_of_role_nosuper(outer, reader));
	PG_RETURN_BOOL(has_privs_of_role(outer, reader));
}

/*
 * _search_score(words, any, exact): how search() ranks a row of search_text
 * by its word vector -- NULL when the vector does not have the query's
 * words in any spelling (words @@ any), otherwise ts_rank(words, any, 32),
 * plus 1 when it has them spelled as the query is (words @@ exact).  The
 * vector is read once: written in SQL, each of the three tests reads it
 * again from out of line and decompresses it (a value is detoasted at
 * every use), and the vectors of the rows ranked are most of what a search
 * for a common word costs.
 */
Datum
ioffice_search_score(PG_FUNCTION_ARGS)
{
	TSVector	words = PG_GETARG_TSVECTOR(0);
	Datum		any = PG_GETARG_DATUM(1);
	Datum		exact = PG_GETARG_DATUM(2);
	float4		score;

	if (!DatumGetBool(DirectFunctionCall2(ts_match_vq, PointerGetDatum(words), any)))
		PG_RETURN_NULL();
	score = DatumGetFloat4(DirectFunctionCall3(ts_rank_ttf, PointerGetDatum(words), any,
											   Int32GetDatum(32)));
	if (DatumGetBool(DirectFunctionCall2(ts_match_vq, PointerGetDatum(words), exact)))
		score += 1.0f;
	PG_RETURN_FLOAT4(score);
}

/* ------------------------------------------------------------------------
 * _search_window(body text, terms text[]) → text
 * ------------------------------------------------------------------------
 */

/* bytes of text around the first match given to ts_headline */
#define WINDOW_BEFORE 300
#define WINDOW_BYTES 1200

/*
 * A code point's folded letter (a-z, or 0 when it folds to no ASCII letter
 * or digit), for the letters a text of the Latin alphabet uses; cached:
 * each is decomposed once per process.
 */
#define FOLD_CACHE_SIZE 0x2000
static unsigned char fold_cache[FOLD_CACHE_SIZE];
static bool fold_cached[FOLD_CACHE_SIZE];

static unsigned char
fold_char(pg_wchar c)
{
	if (c < 128)
		return (c >= 'A' && c <= 'Z') ? (unsigned char) (c + ('a' - 'A')) : (unsigned char) c;
	if (c >= FOLD_CACHE_SIZE)
		return 0;
	if (!fold_cached[c])
	{
		pg_wchar	in[2] = {c, 0};
		pg_wchar   *nfd = unicode_normalize(UNICODE_NFD, in);
		unsigned char f = 0;

		if (c == CAPITAL_D_STROKE || c == SMALL_D_STROKE)
			f = 'd';
		else if (nfd != NULL && nfd[0] < 128 &&
				 ((nfd[0] | 0x20) >= 'a' && (nfd[0] | 0x20) <= 'z'))
			f = (unsigned char) (nfd[0] | 0x20);
		if (nfd != NULL)
			pfree(nfd);
		fold_cache[c] = f;
		fold_cached[c] = true;
	}
	return fold_cache[c];
}

/*
 * The part of a long text around the first place its folded form holds the
 * query's folded words one after the other (a phrase, or words typed side by
 * side), else its first word: what ts_headline is given for a result's
 * snippet.  ts_headline parses everything it is given with the search
 * configuration (each word through the dictionary), and it picks its
 * fragments around the matches: a window of some 1.2 kB around the first
 * one gives the same kind of snippet at a fraction of the cost of the
 * whole text (a twentieth for a letter of 20 kB; two fragments of 30 words
 * need some 500 bytes), and finds words past the
 * first 64 kB (up to 256 kB) that a snippet of the text's start missed.  A
 * text of up to WINDOW_BYTES, or one where neither is found, is given from
 * its start, as before (its first 64 kB).
 */
PG_FUNCTION_INFO_V1(ioffice_search_window);
Datum
ioffice_search_window(PG_FUNCTION_ARGS)
{
	text	   *body = PG_GETARG_TEXT_PP(0);
	ArrayType  *terms = PG_GETARG_ARRAYTYPE_P(1);
	const char *s = VARDATA_ANY(body);
	int			len = VARSIZE_ANY_EXHDR(body);
	Datum	   *elems;
	bool	   *nulls;
	int			nterms;
	StringInfoData phrase;
	char	   *folded;
	int		   *origin;
	int			nf = 0;
	const char *hit = NULL;
	int			start,
				end;
	int			head;

	/* the first 64 kB when no window is found; a window within 256 kB */
	head = len > 65536 ? pg_mbcliplen(s, len, 65536) : len;
	if (len > 262144)
		len = pg_mbcliplen(s, len, 262144);
	if (len <= WINDOW_BYTES || ARR_NDIM(terms) != 1)
		PG_RETURN_TEXT_P(cstring_to_text_with_len(s, head));
	deconstruct_array(terms, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &nterms);
	initStringInfo(&phrase);
	for (int i = 0; i < nterms; i++)
		if (!nulls[i])
			appendStringInfo(&phrase, "%s%s", phrase.len > 0 ? " " : "", TextDatumGetCString(elems[i]));
	if (phrase.len == 0)
		PG_RETURN_TEXT_P(cstring_to_text_with_len(s, head));

	/* the folded text, each byte with the offset of the character it came from */
	folded = palloc(len + 1);
	origin = palloc((len + 1) * sizeof(int));
	for (int i = 0; i < len;)
	{
		int			l = pg_utf_mblen((const unsigned char *) s + i);
		pg_wchar	c;
		unsigned char f;

		if (i + l > len)
			break;
		c = utf8_to_unicode((const unsigned char *) s + i);
		if (!IS_COMBINING_MARK(c))
		{
			f = fold_char(c);
			/* anything that is not a folded letter or digit separates words */
			folded[nf] = (f >= 'a' && f <= 'z') || (f >= '0' && f <= '9') ? (char) f : ' ';
			origin[nf++] = i;
		}
		i += l;
	}
	folded[nf] = '\0';
	origin[nf] = len;

	hit = strstr(folded, phrase.data);
	if (hit == NULL && !nulls[0])
		hit = strstr(folded, TextDatumGetCString(elems[0]));
	if (hit == NULL)
		PG_RETURN_TEXT_P(cstring_to_text_with_len(s, head));

	/*
	 * from a word's start some way before the match (never past it: a text
	 * without spaces starts at the match), WINDOW_BYTES long
	 */
	start = origin[hit - folded] - WINDOW_BEFORE;
	if (start <= 0)
		start = 0;
	else
	{
		while (start < len && ((unsigned char) s[start] & 0xC0) == 0x80)
			start++;
		while (start < len && s[start] != ' ' && s[start] != '\n')
			start++;
		if (start > origin[hit - folded])
			start = origin[hit - folded];
	}
	end = start + pg_mbcliplen(s + start, len - start, WINDOW_BYTES);
	PG_RETURN_TEXT_P(cstring_to_text_with_len(s + start, end - start));
}
