/*-------------------------------------------------------------------------
 * ioffice.c
 *	  Module entry point: settings of the ioffice extension.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "pgtime.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "ioffice.h"
#include "worker.h"

PG_MODULE_MAGIC;

char	   *ioffice_actor_setting = NULL;
char	   *ioffice_timezone_setting = NULL;
int			ioffice_max_file_name_length = 30;
char	   *ioffice_allowed_file_types = NULL;
bool		ioffice_audit_chaining = true;
int			ioffice_due_soon_days = 3;
int			ioffice_dossier_backdating_days = 30;
/* read by send_reminders() through current_setting() only */
static int	ioffice_reminder_lead_days = 0;
/* read by search() with current_setting() */
static int	ioffice_search_walk = 2000;

void		_PG_init(void);

static bool
check_timezone_setting(char **newval, void **extra, GucSource source)
{
	/*
	 * Only the name is kept (it is used with AT TIME ZONE), but it is looked
	 * up in the server's time zone database now, as the TimeZone setting's
	 * own check does, so that a typo is refused where it is written (SET,
	 * ALTER SYSTEM, postgresql.conf) rather than at the next issue.
	 */
	if (*newval == NULL || (*newval)[0] == '\0' || strlen(*newval) > TZ_STRLEN_MAX ||
		pg_tzset(*newval) == NULL)
	{
		GUC_check_errdetail("ioffice.timezone must be a time zone name such as Asia/Ho_Chi_Minh.");
		return false;
	}
	return true;
}

void
_PG_init(void)
{
	/*
	 * The worker's settings are PGC_POSTMASTER and its processes are
	 * registered with the postmaster: both are possible only while the
	 * server starts.  Loaded later (CREATE EXTENSION, a function call), say
	 * so with an ERROR that leaves the session usable; defining the settings
	 * anyway would end the session with FATAL.
	 */
	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("ioffice must be loaded via shared_preload_libraries"),
				 errhint("Add ioffice to shared_preload_libraries in postgresql.conf "
						 "and restart the server.")));

	DefineCustomStringVariable("ioffice.actor",
							   "Login of the person an ioffice_app session acts for.",
							   "Honoured only when the session's role is a member of ioffice_app; "
							   "use SET LOCAL so that it ends with the transaction.",
							   &ioffice_actor_setting,
							   "",
							   PGC_USERSET,
							   0,
							   NULL, NULL, NULL);

	/*
	 * Issue dates, register years, dossier codes and deadlines are recorded
	 * in this zone, so a session may not choose it: only a superuser (a
	 * DBA, in postgresql.conf or ALTER DATABASE ... SET).  How times are
	 * shown follows the session's own TimeZone.
	 */
	DefineCustomStringVariable("ioffice.timezone",
							   "Time zone of calendar dates and register years.",
							   "Set by the DBA only: issue dates, register years, dossier codes "
							   "and deadlines are recorded in it.",
							   &ioffice_timezone_setting,
							   "Asia/Ho_Chi_Minh",
							   PGC_SUSET,
							   0,
							   check_timezone_setting, NULL, NULL);

	DefineCustomIntVariable("ioffice.max_file_name_length",
							"Longest file name, in characters, that attach() accepts.",
							NULL,
							&ioffice_max_file_name_length,
							30, 1, 255,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomStringVariable("ioffice.allowed_file_types",
							   "Comma-separated file types that may be attached.",
							   "Types are recognised from the content: pdf, docx, xlsx, doc, xls.",
							   &ioffice_allowed_file_types,
							   "pdf,docx,xlsx,doc,xls",
							   PGC_SUSET,
							   0,
							   NULL, NULL, NULL);

	DefineCustomBoolVariable("ioffice.audit_chaining",
							 "Chain and hash audit records (tamper evidence).",
							 "Only for measuring what the chaining costs: records written "
							 "while it is off are reported by audit_verify().",
							 &ioffice_audit_chaining,
							 true,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("ioffice.due_soon_days",
							"Days before its deadline that a task counts as due (Đến hạn).",
							NULL,
							&ioffice_due_soon_days,
							3, 1, 365,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("ioffice.reminder_lead_days",
							"Working days before a task's deadline that its person is reminded.",
							"0: on the last working day up to the deadline. The worker's "
							"send_reminders() reminds once more, and once only, when it is overdue.",
							&ioffice_reminder_lead_days,
							0, 0, 60,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	/*
	 * How far back receive_dossier() accepts a reception time: the
	 * reception starts a dossier's statutory time, so only a DBA widens it.
	 */
	DefineCustomIntVariable("ioffice.dossier_backdating_days",
							"Days before now that a dossier's reception time may be given.",
							"receive_dossier(details.received_at): a dossier received on paper or "
							"online outside office hours is entered with its time, at most this late.",
							&ioffice_dossier_backdating_days,
							30, 0, 36500,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	/*
	 * search() (sql/parts/97_search.sql) reads the documents its caller may
	 * see newest first, testing each one's words, rather than asking the
	 * text index for every row with the words, when it expects to find its
	 * window within this many documents; 0: always the text index.
	 */
	DefineCustomIntVariable("ioffice.search_walk",
							"Documents search() reads newest first before it asks the text index instead.",
							"0: always the text index. The walk suits words in many documents, and "
							"callers who may see few; the text index rare words.",
							&ioffice_search_walk,
							2000, 0, 1000000,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);

	/* the audit checkpoints' and the worker's settings too, before the prefix is reserved */
	ioffice_audit_sign_init();
	ioffice_pdf_helper_init();
	ioffice_edxml_init();
	ioffice_token_signing_init();
	ioffice_text_jobs_init();
	ioffice_worker_init();
	MarkGUCPrefixReserved("ioffice");
	ioffice_engine_scope_init();
}

PG_FUNCTION_INFO_V1(ioffice_timezone);
Datum
ioffice_timezone(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(ioffice_timezone_setting));
}
