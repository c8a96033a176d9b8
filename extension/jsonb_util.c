/*-------------------------------------------------------------------------
 * jsonb_util.c
 *	  Small readers and builders over PostgreSQL's jsonb.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "nodes/pg_list.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/numeric.h"
#include "utils/jsonb.h"

#include "ioffice.h"

struct JsonbBuild
{
	JsonbParseState *state;
};

/* The value of a key of a jsonb object, or NULL (also when not an object). */
JsonbValue *
ioffice_jsonb_get(Jsonb *jb, const char *key)
{
	if (jb == NULL || !JB_ROOT_IS_OBJECT(jb))
		return NULL;
	return getKeyJsonValueFromContainer(&jb->root, key, strlen(key), NULL);
}

/* The keys of a jsonb object, as a List of C strings. */
List *
ioffice_jsonb_keys(Jsonb *jb)
{
	List	   *keys = NIL;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			depth = 0;

	if (jb == NULL || !JB_ROOT_IS_OBJECT(jb))
		return NIL;
	it = JsonbIteratorInit(&jb->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_BEGIN_OBJECT || tok == WJB_BEGIN_ARRAY)
			depth++;
		else if (tok == WJB_END_OBJECT || tok == WJB_END_ARRAY)
			depth--;
		else if (tok == WJB_KEY && depth == 1)
			keys = lappend(keys, pnstrdup(v.val.string.val, v.val.string.len));
	}
	return keys;
}

JsonbBuild *
ioffice_jsonb_begin(void)
{
	JsonbBuild *b = palloc0(sizeof(JsonbBuild));

	pushJsonbValue(&b->state, WJB_BEGIN_OBJECT, NULL);
	return b;
}

static void
push_key(JsonbBuild *b, const char *key)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	pushJsonbValue(&b->state, WJB_KEY, &k);
}

void
ioffice_jsonb_add_text(JsonbBuild *b, const char *key, const char *value)
{
	JsonbValue	v;

	push_key(b, key);
	if (value == NULL)
		v.type = jbvNull;
	else
	{
		v.type = jbvString;
		v.val.string.val = (char *) value;
		v.val.string.len = strlen(value);
	}
	pushJsonbValue(&b->state, WJB_VALUE, &v);
}

void
ioffice_jsonb_add_int(JsonbBuild *b, const char *key, int64 value)
{
	JsonbValue	v;

	push_key(b, key);
	v.type = jbvNumeric;
	v.val.numeric = int64_to_numeric(value);
	pushJsonbValue(&b->state, WJB_VALUE, &v);
}

void
ioffice_jsonb_add_jsonb(JsonbBuild *b, const char *key, Jsonb *value)
{
	JsonbValue	v;

	push_key(b, key);
	if (value == NULL)
	{
		v.type = jbvNull;
		pushJsonbValue(&b->state, WJB_VALUE, &v);
		return;
	}
	if (JB_ROOT_IS_SCALAR(value))
	{
		JsonbExtractScalar(&value->root, &v);
		pushJsonbValue(&b->state, WJB_VALUE, &v);
		return;
	}
	v.type = jbvBinary;
	v.val.binary.data = &value->root;
	v.val.binary.len = VARSIZE(value) - VARHDRSZ;
	pushJsonbValue(&b->state, WJB_VALUE, &v);
}

Jsonb *
ioffice_jsonb_end(JsonbBuild *b)
{
	JsonbValue *res = pushJsonbValue(&b->state, WJB_END_OBJECT, NULL);

	return JsonbValueToJsonb(res);
}

/* A JSON number as a whole int64; false when it has a fraction or is out of range. */
bool
ioffice_numeric_to_int64(Numeric n, int64 *out)
{
	Datum		num = NumericGetDatum(n);
	Datum		whole = DirectFunctionCall2(numeric_trunc, num, Int32GetDatum(0));

	if (!DatumGetBool(DirectFunctionCall2(numeric_eq, num, whole)))
		return false;
	if (DatumGetBool(DirectFunctionCall2(numeric_gt, num,
										 NumericGetDatum(int64_to_numeric(PG_INT64_MAX)))) ||
		DatumGetBool(DirectFunctionCall2(numeric_lt, num,
										 NumericGetDatum(int64_to_numeric(PG_INT64_MIN)))))
		return false;
	*out = DatumGetInt64(DirectFunctionCall1(numeric_int8, num));
	return true;
}
