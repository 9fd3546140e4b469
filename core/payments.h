/* payments.h - payment cycles and payrolls, the payments' lifecycle, kiosk collection and the beneficiary
 * channels' view (docs/payments.md).
 *
 * A cycle: draft -> generated (payroll rows, status scheduled) -> approval_requested (the maker) ->
 * approved (a different payment officer; the payroll total moves fund -> clearing in one posting, refused
 * when the fund cannot cover it) -> closed. A payment: scheduled -> approved (provider channels) or
 * available (kiosk) -> sending -> pending -> paid | failed; available -> collected | expired; paid ->
 * reversed. Statuses change only forwards, each change with its ledger posting in one transaction. */
#ifndef HF_CORE_PAYMENTS_H
#define HF_CORE_PAYMENTS_H

#include "hf_config.h"
#include "svc.h"
#include <jansson.h>

/* POST /cycles {code, programme, rule, cutoff_date, pay_from, pay_until, channel, provider?, pay_points?} */
HF_MUST_CHECK hf_err cycles_create(struct svc_call *c, json_t *body, json_t **out);
HF_MUST_CHECK hf_err cycles_get(struct svc_call *c, const char *code, json_t **out);
HF_MUST_CHECK hf_err cycles_list(struct svc_call *c, const char *programme, const char *status, json_t **out);
/* POST /cycles/{code}/preview: what the payroll would be (count, total, per district, exclusions), nothing
 * written. POST /cycles/{code}/payroll: generates it (draft or generated cycles; regenerating replaces). */
HF_MUST_CHECK hf_err cycles_preview(struct svc_call *c, const char *code, json_t **out);
HF_MUST_CHECK hf_err cycles_generate(struct svc_call *c, const char *code, json_t **out);
/* POST /cycles/{code}/submit (the maker), /approve (a different user), /close. */
HF_MUST_CHECK hf_err cycles_submit(struct svc_call *c, const char *code, json_t **out);
HF_MUST_CHECK hf_err cycles_approve(struct svc_call *c, const char *code, json_t **out);
HF_MUST_CHECK hf_err cycles_close(struct svc_call *c, const char *code, json_t **out);
/* GET /cycles/{code}/payments?status=&pay_point=&limit=&after= ; GET /payments/{id} with its history. */
HF_MUST_CHECK hf_err payments_list(struct svc_call *c, const char *code, const char *status, const char *pay_point,
				   int limit, const char *after, json_t **out);
HF_MUST_CHECK hf_err payments_get(struct svc_call *c, const char *id, json_t **out);
/* GET /beneficiaries/{ben_no}/payments (gateway, kiosk): the next payment (amount, date, where) and the
 * last ones, without staff details. */
HF_MUST_CHECK hf_err payments_for_beneficiary(struct svc_call *c, const char *ben_no, json_t **out);
/* GET /kiosk/beneficiaries/{ben_no}/payments: payments the beneficiary can collect at this kiosk's pay point.
 * POST /kiosk/collections {payment, ben_no, verification, request_id}: collects one, exactly once, with a
 * verification token of biometric.h for this beneficiary at this kiosk. request_id (a UUID of the kiosk)
 * makes it idempotent across retries, core instances and crashes: a request already recorded gets the
 * recorded answer again and changes nothing. The beneficiary's SMS receipt (template kiosk_receipt) is
 * queued in the same transaction. A refusal the kiosk acts on writes its reason to *reason (static, for
 * the error body): already_collected, not_collectable, on_hold, outside_pay_dates, other_pay_point,
 * verification_not_valid, request_id_reused. GET /kiosk/collections/{request_id}: that answer, or HF_ENOTFOUND when the
 * request was not recorded (the kiosk asks after a timeout, before telling the person anything). */
HF_MUST_CHECK hf_err payments_kiosk_available(struct svc_call *c, const char *ben_no, json_t **out);
HF_MUST_CHECK hf_err payments_collect(struct svc_call *c, json_t *body, json_t **out, const char **reason);
HF_MUST_CHECK hf_err payments_collection_get(struct svc_call *c, const char *request_id, json_t **out);
/* GET /r/{receipt}?c={check} (public): whether a kiosk receipt is real. The check code (biometric.h) is
 * verified before the database is read. Writes an HTML page, or JSON when as_json, into body and its
 * content type (a static string) into *content_type: {"valid": true, receipt, amount, currency,
 * collected_at, pay_point, kiosk} or {"valid": false}; no personal data. */
HF_MUST_CHECK hf_err payments_receipt_page(struct db *db, const char *receipt, const char *check, bool as_json,
					   struct hf_buf *body, const char **content_type);
/* POST /ledger/funding {programme, amount, currency, reference}: money into a programme's fund. */
HF_MUST_CHECK hf_err payments_fund(struct svc_call *c, json_t *body, json_t **out);
/* Expires kiosk payments past their cycle's pay_until (returned to the programme). */
HF_MUST_CHECK hf_err payments_expire(struct db *db, int64_t now_ms, int *expired);

#endif
