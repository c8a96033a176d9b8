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
} WfState;

typedef struct WfTransition
{
	char	   *action;
	char	   *from_state;
	char	   *to_state;
	char	   *label;
	char	   *taken_by;		/* drafter | holder | clerk | cooperator */
	char	   *receiver;		/* none | given | drafter | default_clerk */
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
} Workflow;

/* What one act() call knows; guards and effects read and fill it. */
typedef struct ActContext
{
	int64		doc;
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
	int64		task_id;		/* the open task, or 0 */
	int64		holder;			/* its receiver, or 0 */
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
	WF_OPT_ARRAY
} WfOptionType;

extern bool ioffice_option_type(const char *key, WfOptionType *type);
extern const Workflow *ioffice_workflow_get(const char *name);
extern const WfState *ioffice_workflow_state(const Workflow *wf, const char *state);
extern Workflow *ioffice_workflow_load(const char *name);
extern void ioffice_workflow_check_graph(const Workflow *wf);
extern void ioffice_workflow_invalidate(void);

/* registers.c */
extern void ioffice_number_and_issue(ActContext *ctx);
extern void ioffice_register_arrival(ActContext *ctx);
extern int32 ioffice_take_arrival_number(int64 doc, const char *doc_type, int64 agency,
										 int64 given_register, int64 clerk);

/* delivery.c */
extern void ioffice_deliver_internal(ActContext *ctx);

/* act.c: the task steps of a document, for effects that open tasks */
extern bool ioffice_valid_iso_date(const char *s, int len);

#endif							/* IOFFICE_WORKFLOW_H */
