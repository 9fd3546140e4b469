/* outbox.h - SMS waiting to be sent: to beneficiaries (case and payment notices) and to staff (escalations,
 * payment alerts). Rows are written inside the caller's transaction, so a notice exists exactly when the
 * change it reports was committed; the gateway drains them. The phone number is sealed per row (AD
 * "outbox.phone:<id>"); params hold template parameters only, never personal data. */
#ifndef HF_OUTBOX_H
#define HF_OUTBOX_H

#include "db.h"
#include "hf_base.h"
#include "hf_buf.h"
#include "hf_err.h"
#include <jansson.h>

/* Queues a template for an individual in their language. No phone on file: nothing is queued, *queued false. */
HF_MUST_CHECK hf_err outbox_to_person(struct db *db, int64_t case_id, int64_t individual_id, const char *tmpl,
				      json_t *params, bool *queued);
/* Queues a template for every enabled staff account of the role that has a phone on file; *n says how many. */
HF_MUST_CHECK hf_err outbox_to_role(struct db *db, const char *role, const char *tmpl, json_t *params, int *n);
/* Seals a clear phone number (NUL-terminated) for outbox.phone_enc of row outbox_id (AD
 * "outbox.phone:<id>"), for writers that insert outbox rows in bulk (payment notices). */
HF_MUST_CHECK hf_err outbox_seal_phone(int64_t outbox_id, const char *phone, struct hf_buf *out);
/* Opens outbox.phone_enc of row outbox_id into out, NUL-terminated. out holds a phone number: the caller
 * wipes it (sodium_memzero over out->cap) before releasing it. */
HF_MUST_CHECK hf_err outbox_open_phone(int64_t outbox_id, const void *sealed, size_t n, struct hf_buf *out);
/* Seals a staff phone number for staff_users.phone_enc (AD "staff_users.phone:<id>"). */
HF_MUST_CHECK hf_err outbox_seal_staff_phone(int64_t user_id, const char *phone, struct hf_buf *out);

struct svc_call;
#define OUTBOX_REPORT_MAX 500
/* POST /outbox/status (the gateway): body {"items": [{"id", "status": sent|accepted|delivered|failed|released,
 * "detail"?}, ...]}, 1 to OUTBOX_REPORT_MAX reports applied in their order, in one transaction, by the rules of
 * POST /outbox/{id}/status. *out: {"items": [{"id", "result": changed|unchanged|conflict|not_found, "status"}]}
 * in the same order ("status": the row's status once that report was applied; absent when not found).
 * HF_EINVAL (field errors in c->fe) when any report is malformed: then none is applied. */
HF_MUST_CHECK hf_err outbox_report_batch(struct svc_call *c, json_t *body, json_t **out);
/* POST /outbox/{id}/status (the gateway): body {status, detail?}, a batch of one. *out: {"id", "status", "changed"}
 * ("status": the report when it changed the row, else the row's status). HF_ENOTFOUND for an unknown id,
 * HF_ECONFLICT for a step back (c->msg says from what), HF_EINVAL for a malformed body. */
HF_MUST_CHECK hf_err outbox_report_one(struct svc_call *c, const char *id, json_t *body, json_t **out);

#endif
