/*-------------------------------------------------------------------------
 * actor.c
 *	  Who is acting: the person behind the session or behind ioffice.actor.
 *
 * A trusted application (a member of role ioffice_app) authenticates its own
 * users and names the one it acts for with SET LOCAL ioffice.actor; anybody
 * else acts as the person whose login is the session user.  Membership is
 * checked on the outer role (the one SET ROLE chose, not the owner of a
 * SECURITY DEFINER function we may be running in), so the setting cannot be
 * used to impersonate by a role that is not trusted.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"

#include "ioffice.h"

static IofficePlan person_by_login = {
	NULL, "SELECT id FROM ioffice.person WHERE login = $1 AND active", 1, {TEXTOID}
};

/*
 * A delegation in force now (a revoked one ended when it was revoked), to a
 * person who leads the delegator's own unit: one made before delegate()
 * checked that (version 0.1) no longer lets a specialist or a leader of
 * another unit act in the delegator's name.
 */
static IofficePlan delegation_valid = {
	NULL,
	"SELECT 1 FROM ioffice.delegation g JOIN ioffice.person f ON f.id = g.from_person "
	" WHERE g.from_person = $1 AND g.to_person = $2 "
	"   AND now() >= g.valid_from AND now() < g.valid_until "
	"   AND EXISTS (SELECT 1 FROM ioffice.person_role r WHERE r.person_id = g.to_person "
	"                  AND r.role IN ('leader', 'deputy') AND r.unit_id = f.unit_id) LIMIT 1",
	2, {INT8OID, INT8OID}
};

static IofficePlan person_leads = {
	NULL, "SELECT ioffice._leads($1, $2)", 2, {INT8OID, INT8OID}
};

static IofficePlan role_held = {
	NULL, "SELECT 1 FROM ioffice.person_role WHERE person_id = $1 AND role = $2 LIMIT 1",
	2, {INT8OID, TEXTOID}
};

static IofficePlan clerk_of = {
	NULL,
	"SELECT 1 FROM ioffice.person_role WHERE person_id = $1 AND role = 'clerk' AND unit_id = $2",
	2, {INT8OID, INT8OID}
};

static IofficePlan one_stop_of = {
	NULL,
	"SELECT 1 FROM ioffice.person_role WHERE person_id = $1 AND role = 'one_stop' AND unit_id = $2",
	2, {INT8OID, INT8OID}
};

/* a person of an agency: of one of its units, or holding a role in one */
static IofficePlan person_of_agency = {
	NULL,
	"SELECT 1 FROM ioffice.person p JOIN ioffice.unit u ON u.id = p.unit_id "
	" WHERE p.id = $1 AND u.agency_id = $2 "
	"UNION ALL "
	"SELECT 1 FROM ioffice.person_role r JOIN ioffice.unit u ON u.id = r.unit_id "
	" WHERE r.person_id = $1 AND u.agency_id = $2 "
	"LIMIT 1",
	2, {INT8OID, INT8OID}
};

static IofficePlan document_visible = {
	NULL, "SELECT ioffice.can_see($1)", 1, {INT8OID}
};

static IofficePlan file_visible = {
	NULL, "SELECT document_id, ioffice.can_see(document_id) FROM ioffice.file WHERE id = $1",
	1, {INT8OID}
};

/* a delegate of the holder acts on a dossier the rules may not let them see */
static IofficePlan dossier_visible = {
	NULL,
	"SELECT d.id, ioffice.can_see_dossier(d.id) "
	"       OR ($2 AND EXISTS (SELECT 1 FROM ioffice.dossier_task t "
	"                            JOIN ioffice.delegation g ON g.from_person = t.receiver_id "
	"                           WHERE t.dossier_id = d.id AND t.status = 'open' "
	"                             AND g.to_person = ioffice.current_person() "
	"                             AND now() >= g.valid_from AND now() < g.valid_until)) "
	"  FROM ioffice.dossier d WHERE d.code = $1",
	2, {TEXTOID, BOOLOID}
};

/* The active person with this login: false when there is none. */
bool
ioffice_lookup_person(const char *login, int64 *id)
{
	Datum		values[1];

	values[0] = CStringGetTextDatum(login);
	ioffice_exec(&person_by_login, values, NULL, 1);
	return ioffice_get_int64(0, 1, id);
}

/* The same, for a login a caller named: 42704 when there is none. */
int64
ioffice_person_id(const char *login)
{
	int64		id = 0;

	if (!ioffice_lookup_person(login, &id))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("unknown person \"%s\"", login)));
	return id;
}

/*
 * The acting person's id.  With missing_ok, 0 when nobody can be determined
 * (used by row-level security, where that simply means "sees nothing").
 * The caller must be connected to SPI.
 */
int64
ioffice_resolve_actor(bool missing_ok)
{
	int64		id;
	const char *setting = ioffice_actor_setting;

	if (setting != NULL && setting[0] != '\0')
	{
		Oid			app_role = get_role_oid("ioffice_app", true);

		if (!OidIsValid(app_role) || !is_member_of_role(GetOuterUserId(), app_role))
		{
			if (missing_ok)
				return 0;
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("role \"%s\" may not act for another person",
							GetUserNameFromId(GetOuterUserId(), false)),
					 errdetail("ioffice.actor is honoured only for members of ioffice_app."),
					 errhint("RESET ioffice.actor, or GRANT ioffice_app to the application's role.")));
		}
		if (!ioffice_lookup_person(setting, &id))
		{
			if (missing_ok)
				return 0;
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("unknown person \"%s\"", setting),
					 errdetail("ioffice.actor names no active person.")));
		}
		return id;
	}

	{
		char	   *login = GetUserNameFromId(GetSessionUserId(), false);

		if (!ioffice_lookup_person(login, &id))
		{
			if (missing_ok)
				return 0;
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
					 errmsg("no person acts in this session"),
					 errdetail("Session user \"%s\" is no active person and ioffice.actor is not set.",
							   login),
					 errhint("Log in as a person, or SET LOCAL ioffice.actor from a member of ioffice_app.")));
		}
		return id;
	}
}

bool
ioffice_has_delegation(int64 from_person, int64 to_person)
{
	Datum		values[2];

	values[0] = Int64GetDatum(from_person);
	values[1] = Int64GetDatum(to_person);
	ioffice_exec(&delegation_valid, values, NULL, 1);
	return SPI_processed > 0;
}

bool
ioffice_person_has_role(int64 person, const char *role)
{
	Datum		values[2];

	values[0] = Int64GetDatum(person);
	values[1] = CStringGetTextDatum(role);
	ioffice_exec(&role_held, values, NULL, 1);
	return SPI_processed > 0;
}

/*
 * Does person lead unit: a leader (or deputy) of it or of a unit above it
 * (the agency's chairman leads its departments)?  What an approval, and so a
 * signature in the register, needs (ioffice._leads).
 */
bool
ioffice_person_leads(int64 person, int64 unit)
{
	Datum		values[2];
	bool		leads = false;

	values[0] = Int64GetDatum(person);
	values[1] = Int64GetDatum(unit);
	ioffice_exec(&person_leads, values, NULL, 1);
	ioffice_get_bool(0, 1, &leads);
	return leads;
}

bool
ioffice_person_is_clerk_of(int64 person, int64 agency)
{
	Datum		values[2];

	values[0] = Int64GetDatum(person);
	values[1] = Int64GetDatum(agency);
	ioffice_exec(&clerk_of, values, NULL, 1);
	return SPI_processed > 0;
}

/* Is the person an officer of the agency's one-stop desk (bộ phận một cửa)? */
bool
ioffice_person_is_one_stop_of(int64 person, int64 agency)
{
	Datum		values[2];

	values[0] = Int64GetDatum(person);
	values[1] = Int64GetDatum(agency);
	ioffice_exec(&one_stop_of, values, NULL, 1);
	return SPI_processed > 0;
}

/*
 * Does the person work for the agency: belong to one of its units, or hold a
 * role scoped to one (a clerk serving it)?  What a document or dossier is
 * handed to, or shared with, must be: its files and trail are the agency's.
 */
bool
ioffice_person_of_agency(int64 person, int64 agency)
{
	Datum		values[2];

	values[0] = Int64GetDatum(person);
	values[1] = Int64GetDatum(agency);
	ioffice_exec(&person_of_agency, values, NULL, 1);
	return SPI_processed > 0;
}

/* Whether the current person may see a document (no error either way). */
bool
ioffice_document_visible(int64 doc)
{
	Datum		values[1];
	bool		visible = false;

	values[0] = Int64GetDatum(doc);
	ioffice_exec(&document_visible, values, NULL, 1);
	return ioffice_get_bool(0, 1, &visible) && visible;
}

/*
 * A document the acting person may not see is answered exactly as one that
 * does not exist: the same SQLSTATE (42704) and the same message.  Telling
 * the two apart (42501 for a hidden one) would let anyone enumerate the ids
 * of other agencies' and confidential documents.  Every function that takes
 * a document id goes through here (the SQL ones through _require_document());
 * the caller is connected to SPI.
 */
void
ioffice_require_document(int64 doc)
{
	if (!ioffice_document_visible(doc))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("unknown document %lld", (long long) doc)));
}

/* The same for a file id (a file is seen with its document); returns its document. */
int64
ioffice_require_file(int64 file)
{
	Datum		values[1];
	int64		doc = 0;
	bool		visible = false;

	values[0] = Int64GetDatum(file);
	ioffice_exec(&file_visible, values, NULL, 1);
	if (!ioffice_get_int64(0, 1, &doc) || !ioffice_get_bool(0, 2, &visible) || !visible)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("unknown file %lld", (long long) file)));
	return doc;
}

/*
 * The same for a dossier's code, which is even easier to guess (agency, day,
 * sequence); returns the dossier's id.  With delegate_of_holder, a person
 * who holds a delegation from the dossier's holder counts as seeing it: they
 * may act in the holder's name (dossier_act()).
 */
int64
ioffice_require_dossier(const char *code, bool delegate_of_holder)
{
	Datum		values[2];
	int64		id = 0;
	bool		visible = false;

	values[0] = CStringGetTextDatum(code);
	values[1] = BoolGetDatum(delegate_of_holder);
	ioffice_exec(&dossier_visible, values, NULL, 1);
	if (!ioffice_get_int64(0, 1, &id) || !ioffice_get_bool(0, 2, &visible) || !visible)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("unknown dossier \"%.*s\"", pg_mbcliplen(code, strlen(code), 60), code)));
	return id;
}

/* _require_document(doc): the same check for the extension's SQL functions */
PG_FUNCTION_INFO_V1(ioffice_require_document_sql);
Datum
ioffice_require_document_sql(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a document id is needed")));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	ioffice_require_document(PG_GETARG_INT64(0));
	SPI_finish();
	PG_RETURN_VOID();
}

static Datum
actor_common(bool missing_ok, bool *isnull)
{
	int64		id;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	id = ioffice_resolve_actor(missing_ok);
	SPI_finish();
	*isnull = (id == 0);
	return Int64GetDatum(id);
}

PG_FUNCTION_INFO_V1(ioffice_actor);
Datum
ioffice_actor(PG_FUNCTION_ARGS)
{
	bool		isnull;
	Datum		d = actor_common(false, &isnull);

	PG_RETURN_DATUM(d);
}

PG_FUNCTION_INFO_V1(ioffice_current_person);
Datum
ioffice_current_person(PG_FUNCTION_ARGS)
{
	bool		isnull;
	Datum		d = actor_common(true, &isnull);

	if (isnull)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(d);
}

/* _require_dossier(code) → id: the same for the extension's SQL functions */
PG_FUNCTION_INFO_V1(ioffice_require_dossier_sql);
Datum
ioffice_require_dossier_sql(PG_FUNCTION_ARGS)
{
	int64		id;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a dossier code is needed")));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "ioffice: SPI_connect failed");
	id = ioffice_require_dossier(text_to_cstring(PG_GETARG_TEXT_PP(0)), false);
	SPI_finish();
	PG_RETURN_INT64(id);
}
