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
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"

#include "ioffice.h"

static IofficePlan person_by_login = {
	NULL, "SELECT id FROM ioffice.person WHERE login = $1 AND active", 1, {TEXTOID}
};

static IofficePlan delegation_valid = {
	NULL,
	"SELECT 1 FROM ioffice.delegation WHERE from_person = $1 AND to_person = $2 "
	"AND now() >= valid_from AND now() < valid_until LIMIT 1",
	2, {INT8OID, INT8OID}
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

bool
ioffice_person_is_clerk_of(int64 person, int64 agency)
{
	Datum		values[2];

	values[0] = Int64GetDatum(person);
	values[1] = Int64GetDatum(agency);
	ioffice_exec(&clerk_of, values, NULL, 1);
	return SPI_processed > 0;
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
