/* registry.h - programmes, households, individuals and enrolments: the rules of the registry.
 *
 * Each function takes a parsed JSON body (already checked to be an object), runs in one transaction and
 * either commits everything or nothing. Results are JSON objects owned by the caller. On HF_EINVAL the
 * per-field problems are in req->fe; on HF_ECONFLICT / HF_ENOTFOUND req->msg says what, in words a
 * registrar understands. Every change keeps the previous version (record_versions) with who, when and why.
 */
#ifndef HF_CORE_REGISTRY_H
#define HF_CORE_REGISTRY_H

#include <jansson.h>

#include "hf_base.h"
#include "hf_err.h"
#include "hf_json.h"
#include "audit.h"
#include "db.h"

struct reg_req {
	struct db *db;
	const char *actor;              /* what record histories name as the author */
	const struct audit_actor *who;  /* who the audit trail names */
	const char *action, *entity;    /* the audit action of this request ("household.create", ...) */
	json_t *audit_before;           /* set by the update paths: the record before the change */
	struct hf_ferrs *fe;
	char msg[256];
};

struct reg_query {
	const char *ben_no, *national_id, *phone, *name, *location, *programme, *status, *after;
	int limit;
};

HF_MUST_CHECK hf_err registry_programme_create(struct reg_req *rq, json_t *body, json_t **out);
HF_MUST_CHECK hf_err registry_programme_list(struct reg_req *rq, json_t **out);
HF_MUST_CHECK hf_err registry_programme_get(struct reg_req *rq, const char *code, json_t **out);
HF_MUST_CHECK hf_err registry_programme_update(struct reg_req *rq, const char *code, json_t *body, json_t **out);

HF_MUST_CHECK hf_err registry_household_create(struct reg_req *rq, json_t *body, json_t **out);
HF_MUST_CHECK hf_err registry_household_get(struct reg_req *rq, const char *hh_no, json_t **out);
HF_MUST_CHECK hf_err registry_household_update(struct reg_req *rq, const char *hh_no, json_t *body, json_t **out);
HF_MUST_CHECK hf_err registry_household_add_member(struct reg_req *rq, const char *hh_no, json_t *body, json_t **out);
HF_MUST_CHECK hf_err registry_household_search(struct reg_req *rq, const struct reg_query *q, json_t **out);

HF_MUST_CHECK hf_err registry_individual_get(struct reg_req *rq, const char *ben_no, json_t **out);
HF_MUST_CHECK hf_err registry_individual_update(struct reg_req *rq, const char *ben_no, json_t *body, json_t **out);
/* The same update inside the caller's open transaction (an approved change request applied together with
 * the case's transition); rq->action/entity name the audit entry as usual. */
HF_MUST_CHECK hf_err registry_individual_update_in_tx(struct reg_req *rq, const char *ben_no, json_t *body,
						      json_t **out);
HF_MUST_CHECK hf_err registry_household_update_in_tx(struct reg_req *rq, const char *hh_no, json_t *body,
						     json_t **out);
/* Members, inside an approved change request's transaction: add ({member fields, reason}), remove
 * ({ben_no, reason}: the person leaves the household and stays in the registry; not the head) and change
 * of head ({ben_no of the new head, reason, previous_head_relationship}: default other_relative). */
HF_MUST_CHECK hf_err registry_household_add_member_in_tx(struct reg_req *rq, const char *hh_no, json_t *body,
							 json_t **out);
HF_MUST_CHECK hf_err registry_household_remove_member_in_tx(struct reg_req *rq, const char *hh_no, json_t *body,
							    json_t **out);
HF_MUST_CHECK hf_err registry_household_change_head_in_tx(struct reg_req *rq, const char *hh_no, json_t *body,
							  json_t **out);
HF_MUST_CHECK hf_err registry_enrolment_update_in_tx(struct reg_req *rq, const char *id, json_t *body, json_t **out);
HF_MUST_CHECK hf_err registry_individual_search(struct reg_req *rq, const struct reg_query *q, json_t **out);

/* entity: "individual" (number = ben_no), "household" (hh_no), "programme" (code), "enrolment" (id). */
HF_MUST_CHECK hf_err registry_history(struct reg_req *rq, const char *entity, const char *number, json_t **out);

HF_MUST_CHECK hf_err registry_enrolment_create(struct reg_req *rq, json_t *body, json_t **out);
HF_MUST_CHECK hf_err registry_enrolment_update(struct reg_req *rq, const char *id, json_t *body, json_t **out);
HF_MUST_CHECK hf_err registry_enrolment_search(struct reg_req *rq, const struct reg_query *q, json_t **out);

/* Whether an enrolment may move from one status to another (the lifecycle in docs/registry.md). */
bool registry_status_transition_ok(const char *from, const char *to);

#endif
