/*-------------------------------------------------------------------------
 * workflow.h
 *	  The workflow engine: cached rules, guards, effects and act().
 *-------------------------------------------------------------------------
 */
#ifndef IOFFICE_WORKFLOW_H
#define IOFFICE_WORKFLOW_H

#include "postgres.h"

#include "nodes/pg_list.h"
#include "utils/jsonb.h"

#include "ioffice.h"

typedef struct WfState
{
	char	   *name;
	bool		initial;
	bool		final;
	/* approved: files, signer, type and abstract no longer change (act.c) */
	bool		files_frozen;
} WfState;

/*
 * Who may take a transition: workflow_transition.taken_by, read once when
 * the rules are loaded (ioffice_parse_taken_by) rather than compared as
 * text on every act.
 */
typedef enum WfTakenBy
{
	WF_TAKEN_BY_HOLDER,			/* "holder": of the open main task, or a delegate */
	WF_TAKEN_BY_DRAFTER,		/* "drafter" of the document */
	WF_TAKEN_BY_CLERK,			/* "clerk" of the subject's agency */
	WF_TAKEN_BY_COOPERATOR,		/* "cooperator": asked to cooperate on the document */
	WF_TAKEN_BY_ONE_STOP		/* "one_stop": an officer of the subject's agency's one-stop desk */
} WfTakenBy;

/* Whom a transition goes to: workflow_transition.receiver, read as taken_by is. */
typedef enum WfReceiver
{
	WF_RECEIVER_NONE,			/* "none": nobody; to_login must be NULL */
	WF_RECEIVER_GIVEN,			/* "given": to_login, holding receiver_role */
	WF_RECEIVER_DRAFTER,		/* "drafter" of the document */
	WF_RECEIVER_DEFAULT_CLERK,	/* "default_clerk" of the subject's agency */

	/*
	 * A name _rule_check_names refuses, in a row written past it (with
	 * session_replication_role = replica): nobody receives and to_login is
	 * ignored, as act() always did with such a row.
	 */
	WF_RECEIVER_UNKNOWN
} WfReceiver;

typedef struct WfTransition
{
	char	   *action;
	char	   *from_state;
	char	   *to_state;
	char	   *label;
	WfTakenBy	taken_by;
	WfReceiver	receiver;
	char	   *receiver_role;	/* for receiver = given */
	List	   *guards;			/* of char * */
	List	   *effects;		/* of char * */
	List	   *options;		/* of char *: keys act() accepts */
	bool		delegable;
} WfTransition;

typedef struct Workflow
{
	char		name[NAMEDATALEN];	/* hash key */
	int			nstates;
	WfState    *states;
	int			ntransitions;
	WfTransition *transitions;
	/* in the cache: the first problem of its shape (rows a restore loaded), or NULL */
	char	   *problem;
} Workflow;

/* a problem of a workflow's shape, as its check reports it */
typedef struct WfProblem
{
	int			sqlerrcode;
	char	   *message;
	char	   *detail;			/* or NULL */
	char	   *hint;
} WfProblem;

struct ActContext;

/*
 * What the engine acts on: a document (act) or a dossier (dossier_act).  The
 * engine is the same; what differs is how the subject is found and locked,
 * which table holds its tasks, how it is named in messages and in the audit
 * trail, and what follows a change of state.
 */
typedef struct WfSubject
{
	const char *entity;			/* "document", "dossier": audit entity and chain */
	const char *function;		/* "act()", "dossier_act()": for messages */
	/* lock the subject by its key, fill ctx (doc, name, state_before...), return its workflow */
	char	   *(*lock) (struct ActContext *ctx, Datum key);
	IofficePlan *open_task;		/* $1 id: last step, open main task, its holder */
	IofficePlan *move;			/* $1 id, $2 state */
	IofficePlan *task_close;	/* $1 task, $2 note, $3 actor, $4 action */
	IofficePlan *task_open;		/* same parameters as task for documents */
	/* the message of an sms/email notification to the receiver */
	char	   *(*notice) (struct ActContext *ctx, const char *channel);
	/* after the effects, before the audit record; may be NULL */
	void		(*after) (struct ActContext *ctx);
} WfSubject;

/* What one act() call knows; guards and effects read and fill it. */
typedef struct ActContext
{
	const WfSubject *subject;
	char	   *name;			/* "document 42", "dossier 000.00.32.H41-231030-0068" */
	int64		doc;			/* the document's id, or the dossier's */
	int64		actor;			/* the person calling */
	int64		on_behalf_of;	/* the holder they act for under delegation, or 0 */
	const Workflow *workflow;
	const WfTransition *tr;
	char	   *state_before;
	int64		drafter;
	int64		agency;
	int64		drafting_unit;
	char	   *doc_type;
	char	   *confidentiality;
	bool		signature_requested;
	bool		outgoing;		/* a document of direction outgoing */
	int64		task_id;		/* the open task, or 0 */
	int64		holder;			/* its receiver, or 0 */
	int64		sender;			/* who handed it to the holder, or 0 */
	int32		last_step;
	int64		receiver;		/* who gets the next task, or 0 */
	Jsonb	   *options;
	char	   *note;
	JsonbBuild *detail;			/* audit detail, effects add to it */
} ActContext;

typedef void (*WfStep) (ActContext *ctx);

typedef struct WfNamedStep
{
	const char *name;
	WfStep		fn;
	const char *description;
	const char *subject;		/* "document", "dossier": the only one it applies to; NULL: any */
} WfNamedStep;

/* guards.c, effects.c: the registries */
extern const WfNamedStep ioffice_guards[];
extern const WfNamedStep ioffice_effects[];
extern const WfNamedStep *ioffice_find_step(const WfNamedStep *registry, const char *name);

/* workflow_rules.c */
typedef enum WfOptionType
{
	WF_OPT_BOOL,
	WF_OPT_STRING,
	WF_OPT_NUMBER,
	WF_OPT_DATE,
	WF_OPT_ARRAY,
	WF_OPT_TEXT					/* a string of up to 500 characters (an abstract) */
} WfOptionType;

extern bool ioffice_option_type(const char *key, WfOptionType *type);
extern bool ioffice_parse_taken_by(const char *name, WfTakenBy *out);
extern bool ioffice_parse_receiver(const char *name, WfReceiver *out);
extern const char *ioffice_receiver_name(WfReceiver receiver);
extern const Workflow *ioffice_workflow_get(const char *name);
extern const WfState *ioffice_workflow_state(const Workflow *wf, const char *state);
extern Workflow *ioffice_workflow_load(const char *name);
extern List *ioffice_workflow_problems(const Workflow *wf);
extern void ioffice_workflow_check_graph(const Workflow *wf);
extern void ioffice_workflow_invalidate(void);

/* act.c: the engine shared by act() and dossier_act() */
extern Datum ioffice_act_run(const WfSubject *subject, Datum key, FunctionCallInfo fcinfo);
extern void ioffice_task_params(const ActContext *ctx, int32 step, int64 receiver,
								JsonbValue *deadline, Datum *values, char *nulls);
extern const WfSubject ioffice_document_subject;

/* registers.c */
typedef struct IssueRequest
{
	int64		doc;
	int64		actor;			/* the clerk */
	int64		agency;			/* the issuing agency: the document's, whose clerk acts */
	const char *doc_type;
	const char *confidentiality;
	int64		drafting_unit;
	int64		given_register; /* 0: the agency's default */
	const char *issued_on;		/* "YYYY-MM-DD" of this year, or NULL: today */
	JsonbBuild *detail;			/* audit detail to add to, or NULL */
	/* out */
	int32		number;
	char	   *symbol;
	char	   *identifier;
} IssueRequest;
extern void ioffice_issue_number(IssueRequest *req);
extern void ioffice_issue_taken_number(IssueRequest *req, int32 taken);
extern int64 ioffice_register_option(Jsonb *options);
extern void ioffice_number_and_issue(ActContext *ctx);
extern void ioffice_register_arrival(ActContext *ctx);
extern int32 ioffice_take_arrival_number(int64 doc, const char *doc_type, int64 agency,
										 int64 given_register, int64 clerk);

/* delivery.c */
extern void ioffice_deliver_internal(ActContext *ctx);

/* effects.c: the seal of every current file of a document; returns how many */
extern int64 ioffice_queue_seal(int64 doc, int64 actor);

/* dossier.c: guards and effects of the dossier workflow */
extern void ioffice_guard_has_opinion_file(ActContext *ctx);
extern void ioffice_guard_result_signed(ActContext *ctx);
extern void ioffice_effect_make_result(ActContext *ctx);
extern void ioffice_effect_issue_result(ActContext *ctx);
extern void ioffice_effect_pause_clock(ActContext *ctx);
extern void ioffice_effect_keep_abstract(ActContext *ctx);
extern void ioffice_effect_drop_result(ActContext *ctx);
extern void ioffice_effect_resume_clock(ActContext *ctx);
extern void ioffice_effect_start_clock(ActContext *ctx);

#endif							/* IOFFICE_WORKFLOW_H */
