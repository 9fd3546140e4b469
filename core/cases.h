/* cases.h - applications, grievances, change requests and feedback as tracked cases.
 *
 * Every case follows the workflow of its type (core/workflow.h; the files in deploy/workflows): states with SLAs,
 * transitions that only some roles may take, fields a transition requires, maker-checker approval, and
 * automatic actions (an SMS to the beneficiary through the outbox, assignment to a team, applying an approved
 * change to the registry, running the programme's eligibility rules). Open cases carry a due time; the sweeper
 * (cases_sweep) escalates the overdue ones. Confidential categories are shown in full only to the workflow's
 * confidential role. A grievance repeating an open one (same person, category and payment within the
 * workflow's window) is linked to it instead of opening another.
 *
 * Every change is audited in its transaction; free text and requested changes are sealed like personal data.
 */
#ifndef HF_CORE_CASES_H
#define HF_CORE_CASES_H

#include <jansson.h>
#include <stdio.h>

#include "hf_base.h"
#include "hf_config.h"
#include "hf_err.h"
#include "hf_json.h"
#include "auth.h"
#include "db.h"
#include "svc.h"

/* Loads the workflows (workflow.dir) and eligibility rules (eligibility.dir); err gets "file:line: reason". */
HF_MUST_CHECK hf_err cases_init(const struct hf_config *cfg, struct hf_buf *err);
void cases_shutdown(void);

/* POST /cases {type, category, ben_no | hh_no, channel, summary, data, payment_ref, programme} */
HF_MUST_CHECK hf_err cases_create(struct svc_call *c, json_t *body, json_t **out);
/* GET /cases/{ref}; owner_ben_no: for the gateway and kiosks, the beneficiary asking (only their cases). */
HF_MUST_CHECK hf_err cases_get(struct svc_call *c, const char *ref, const char *owner_ben_no, json_t **out);
/* POST /cases/{ref}/transitions {transition, note, category, decision, reason, assignee, version} */
HF_MUST_CHECK hf_err cases_transition(struct svc_call *c, const char *ref, json_t *body, json_t **out);
/* POST /cases/{ref}/approval {approve: bool, note} (the checker of a maker-checker transition) */
HF_MUST_CHECK hf_err cases_approve(struct svc_call *c, const char *ref, json_t *body, json_t **out);
/* POST /cases/{ref}/notes {text} */
HF_MUST_CHECK hf_err cases_note(struct svc_call *c, const char *ref, json_t *body, json_t **out);

/* POST /cases/{ref}/attachments {filename, content_type, content_base64} (at most CASES_ATTACHMENT_MAX bytes);
 * GET /cases/{ref}/attachments/{id} answers it with the content in base64. */
#define CASES_ATTACHMENT_MAX (512 * 1024)
HF_MUST_CHECK hf_err cases_attach(struct svc_call *c, const char *ref, json_t *body, json_t **out);
HF_MUST_CHECK hf_err cases_attachment_get(struct svc_call *c, const char *ref, const char *id, json_t **out);

struct cases_query {
	const char *queue; /* "mine", "team" or "all" (default all) */
	const char *type, *state, *sla, *location, *after;
	int older_than_days; /* 0 = any */
	int limit;
};
/* GET /cases: a page of cases and the counts per SLA state of the whole selection. */
HF_MUST_CHECK hf_err cases_list(struct svc_call *c, const struct cases_query *q, json_t **out);

/* CSV of cases for reports (CLI `cases export`): one row per case, open ones only unless all. Confidential
 * cases are always masked (category "confidential", no text): an export leaves the confidential role's view.
 * with_text adds the (decrypted) summary of the others. */
HF_MUST_CHECK hf_err cases_export(struct db *db, FILE *out, const char *type, bool all, bool with_text,
				  uint64_t *rows_out);

/* GET /cases/dashboard[?type=T&location=PATH]: open cases by SLA state, state, category (confidential ones
 * named only to their designated role), district and age; opened/closed and time to close over 7/30 days. */
HF_MUST_CHECK hf_err cases_dashboard(struct svc_call *c, const char *type, const char *location, json_t **out);

struct cases_sweep_result {
	uint64_t escalated, checked;
	int staff_notified; /* SMS digests queued for staff of the roles that received escalations */
	double seconds;
};
/* Escalates every open case whose SLA ran out by now_ms: flags it breached, reassigns it to its state's
 * escalation role, records the event. In batches, each its own transaction, so API traffic is not blocked.
 * Then tells the staff of each role that received cases, one SMS digest per person (template
 * staff_cases_escalated: how many, which role), to those with a phone on file. */
HF_MUST_CHECK hf_err cases_sweep(struct db *db, int64_t now_ms, struct cases_sweep_result *res);

#endif
