/* workflow.h - case workflows as data: one INI file per case type, loaded and validated at startup.
 *
 * Programme staff change how a case moves (its states, who may move it, the time allowed in each state,
 * the SMS the beneficiary gets) by editing deploy/workflows/<case_type>.ini and restarting core: no
 * rebuild. Because a wrong workflow strands beneficiaries' cases, wf_load_dir checks every file completely
 * (unknown keys, unknown states and roles, unreachable states, dead ends, cycles without exit, ...) and a
 * broken file stops startup with "file:line: reason". docs/workflows.md describes the file format.
 *
 * This module only DESCRIBES workflows. The case module stores cases, checks each request against the
 * workflow (the transition starts at the case's state, the caller's role may take it, the required fields
 * are present, maker-checker), runs the listed actions in order, and sweeps SLAs. Rules it must follow:
 *   - A new case starts in wf_initial() and runs wf_initial_actions(). If the case type has categories
 *     (wf_category_count() > 0) a new case must carry one that wf_category_allowed(); otherwise none.
 *   - A case in a confidential category (wf_category_confidential) is visible to, and may be moved by,
 *     wf_confidential_role() only (and the engine). Its assign actions assign to that role instead.
 *   - A transition to the case's current state (a self-loop, e.g. "reassign") keeps the SLA clock; any
 *     other transition restarts it in the new state.
 *   - SLA sweep, once per entry into a state, when wf_sla_status() becomes WF_SLA_BREACHED: if the state
 *     has a breach transition (wf_breach_transition), the engine takes it (as WF_ROLE_SYSTEM, filling a
 *     required note/reason with a fixed text); otherwise, if the state's escalate_to is a role, the case is
 *     reassigned to that role and stays where it is. A state never has both (validated).
 *   - maker_checker: the request is held as pending; a second, different user who may also take the
 *     transition approves it, and only then the case moves and the actions run.
 *   - Entering a terminal state ends the case; every transition into one lists the close action.
 *
 * Roles are small integers: the index of the role's name in the role_names array given to wf_load_dir
 * (core passes auth_role_names, so a role is an enum staff_role), or WF_ROLE_SYSTEM for the engine itself.
 *
 * Threads: a wf_set is immutable once wf_load_dir returns it; any number of threads may read it at once
 * without locks. Every pointer the accessors return is borrowed from the set and valid until wf_free.
 */
#ifndef HF_CORE_WORKFLOW_H
#define HF_CORE_WORKFLOW_H

#include "hf_base.h"
#include "hf_buf.h"
#include "hf_err.h"

#define WF_NAME_MAX 32	      /* names of states, transitions, categories and SMS templates: [a-z0-9_]{1,32} */
#define WF_MAX_STATES 32      /* per workflow */
#define WF_MAX_TRANSITIONS 64 /* per workflow */
#define WF_MAX_CATEGORIES 32  /* per workflow */
#define WF_MAX_ACTIONS 8      /* per transition, and on creation */
#define WF_MAX_ROLES 32	      /* entries of role_names */

/* Role values besides the indexes of role_names. */
#define WF_ROLE_NONE (-1)   /* escalate_to = none, no confidential role, an action without a role */
#define WF_ROLE_SYSTEM (-2) /* the engine (SLA sweep); never a staff member */

/* Fields a transition request must carry (bits of wf_transition.requires). */
enum wf_field {
	WF_FIELD_NOTE = 1u << 0,     /* free text for the case history */
	WF_FIELD_CATEGORY = 1u << 1, /* a (new) category, one wf_category_allowed() */
	WF_FIELD_DECISION = 1u << 2, /* the outcome, e.g. upheld / not upheld */
	WF_FIELD_REASON = 1u << 3,   /* why (rejections, returns, escalations): shown to the beneficiary */
	WF_FIELD_ASSIGNEE = 1u << 4, /* the staff member the case goes to */
};

enum wf_action_kind {
	WF_ACT_SMS,	     /* send SMS template `name` to the beneficiary (with the case reference) */
	WF_ACT_ASSIGN_TEAM,  /* assign to the team responsible for the beneficiary's area */
	WF_ACT_ASSIGN_ROLE,  /* assign to the pool of staff holding `role` */
	WF_ACT_APPLY_CHANGE, /* change_request only: apply the requested change to the registry */
	WF_ACT_ELIGIBILITY,  /* application only: run the eligibility check and store its result */
	WF_ACT_CLOSE,	     /* the case is over (closed_at); exactly on transitions into terminal states */
};

struct wf_action {
	enum wf_action_kind kind;
	char name[WF_NAME_MAX + 1]; /* WF_ACT_SMS: the template name; "" for the others */
	int role;		    /* WF_ACT_ASSIGN_ROLE: the role; WF_ROLE_NONE for the others */
};

/* Automatic actions, to be run in this order. */
struct wf_actions {
	size_t n;
	struct wf_action a[WF_MAX_ACTIONS];
};

struct wf_state {
	char name[WF_NAME_MAX + 1];
	unsigned index;	     /* position among the workflow's states, 0-based (wf_state_at) */
	int sla_hours;	     /* time allowed in this state, 1..8760; 0 = no SLA */
	int at_risk_percent; /* 1..99: on track until this share of the SLA has passed, then at risk */
	int escalate_to;     /* role the case is reassigned to on breach, or WF_ROLE_NONE */
	bool terminal;	     /* the case is over here: no SLA, no transition out */
};

struct wf_transition {
	char name[WF_NAME_MAX + 1];
	uint32_t from;		   /* bit i: may start at the state of index i (see wf_transition_starts_at) */
	const struct wf_state *to; /* never NULL */
	uint32_t roles;		   /* bit r: role r may take it (see wf_transition_allows) */
	bool system;		   /* the engine takes it when the SLA of its from state is breached */
	unsigned requires;	   /* enum wf_field bits the request must carry */
	bool maker_checker;	   /* a second, different user must approve before it takes effect */
	struct wf_actions actions;
};

enum wf_sla { WF_SLA_NONE, WF_SLA_ON_TRACK, WF_SLA_AT_RISK, WF_SLA_BREACHED };

struct wf_set; /* every workflow of the deployment */
struct wf_def; /* the workflow of one case type */

/* Loads every "*.ini" file of dir (files starting with '.' and other names are ignored), in name order.
 * role_names: the NULL-terminated staff role names (at most WF_MAX_ROLES); must outlive the set.
 * On success *out is owned by the caller (wf_free). On failure nothing is returned and err gets one line,
 * "file:line: reason" (or "dir: reason" when the folder cannot be read or holds no workflow):
 * HF_EIO when the folder or a file cannot be read, HF_EINVAL for anything wrong in a file. Each case
 * type may be defined by one file only; a case type without a file is not offered (wf_find gives NULL). */
HF_MUST_CHECK hf_err wf_load_dir(const char *dir, const char *const *role_names, struct wf_set **out,
				 struct hf_buf *err);
void wf_free(struct wf_set *s); /* NULL is a no-op */

/* The workflow of case_type ("application", "grievance", "change_request", "feedback"), or NULL. */
const struct wf_def *wf_find(const struct wf_set *s, const char *case_type);
/* The i-th loaded workflow in the order above (for listings), or NULL past the end. */
const struct wf_def *wf_at(const struct wf_set *s, size_t i);

const char *wf_case_type(const struct wf_def *d);
const char *wf_source(const struct wf_def *d); /* the file it was loaded from, for logs */
const struct wf_state *wf_initial(const struct wf_def *d);
const struct wf_actions *wf_initial_actions(const struct wf_def *d); /* run when a case is created */

/* Categories: in file order; wf_category_at gives NULL past the end. */
size_t wf_category_count(const struct wf_def *d);
const char *wf_category_at(const struct wf_def *d, size_t i);
bool wf_category_allowed(const struct wf_def *d, const char *category);
bool wf_category_confidential(const struct wf_def *d, const char *category);
int wf_confidential_role(const struct wf_def *d); /* WF_ROLE_NONE when nothing is confidential */
/* Whether role may see (and act on) a case of this category: false only for a confidential category and
 * a role other than the confidential one (WF_ROLE_SYSTEM always may). */
bool wf_category_visible_to(const struct wf_def *d, const char *category, int role);
/* The team a case of this category goes to within its area ([teams] section: category = team, default =
 * team), or NULL when the file names none (the case type is the team then). */
const char *wf_team(const struct wf_def *d, const char *category);
/* Grievances: a new grievance of the same beneficiary, category and payment within this many hours of an
 * open one is linked to it instead of opening another. 0 = off (always 0 for other case types). */
int wf_duplicate_window_hours(const struct wf_def *d);

/* States and transitions, by name (NULL when unknown) or by index (NULL past the end). */
const struct wf_state *wf_state_find(const struct wf_def *d, const char *name);
const struct wf_state *wf_state_at(const struct wf_def *d, size_t i);
const struct wf_transition *wf_transition_find(const struct wf_def *d, const char *name);
const struct wf_transition *wf_transition_at(const struct wf_def *d, size_t i);

bool wf_transition_starts_at(const struct wf_transition *t, const struct wf_state *st);
/* role: a role index or WF_ROLE_SYSTEM. Says nothing about confidentiality (wf_category_visible_to). */
bool wf_transition_allows(const struct wf_transition *t, int role);
bool wf_transition_requires(const struct wf_transition *t, enum wf_field f);
/* Iterates the transitions that start at st and that role may take, in file order:
 *	for (t = wf_transition_next(d, st, role, NULL); t; t = wf_transition_next(d, st, role, t)) ... */
const struct wf_transition *wf_transition_next(const struct wf_def *d, const struct wf_state *st, int role,
					       const struct wf_transition *prev);
/* The transition the engine takes when the SLA of st is breached, or NULL (at most one per state). */
const struct wf_transition *wf_breach_transition(const struct wf_def *d, const struct wf_state *st);

/* SLA of a case that entered st at entered_s and is still there at now_s (seconds since the epoch):
 * WF_SLA_NONE when st has no SLA; WF_SLA_BREACHED once sla_hours have passed; WF_SLA_AT_RISK once
 * at_risk_percent of them have passed; else WF_SLA_ON_TRACK. A clock that went backwards counts as 0. */
enum wf_sla wf_sla_status(const struct wf_state *st, int64_t entered_s, int64_t now_s);
/* The moments the status turns at risk and breached (for storing and sorting); 0 when st has no SLA. */
int64_t wf_sla_at_risk_s(const struct wf_state *st, int64_t entered_s);
int64_t wf_sla_due_s(const struct wf_state *st, int64_t entered_s);

/* Stable names for JSON and logs: "none", "on_track", "at_risk", "breached"; "note", "category", ...;
 * "sms", "assign", "apply_change", "eligibility", "close" (both assign kinds are "assign"). */
const char *wf_sla_name(enum wf_sla s);
const char *wf_field_name(enum wf_field f);
const char *wf_action_kind_name(enum wf_action_kind k);

#endif
