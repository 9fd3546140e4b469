/* alerts.h - payment discrepancy alerts: raised by rules inside the transaction that found the problem,
 * shown to payment officers (API, and an SMS to every payment officer with a phone on file, at most one per
 * rule and cycle an hour), acknowledged and resolved, every step audited. */
#ifndef HF_CORE_ALERTS_H
#define HF_CORE_ALERTS_H

#include "db.h"
#include "svc.h"
#include <jansson.h>

/* Rule names. */
#define ALERT_AMOUNT_MISMATCH "amount_mismatch"       /* paid amount differs from the entitlement */
#define ALERT_UNKNOWN_CALLBACK "unknown_callback"     /* a provider reports a payment we never sent */
#define ALERT_PAID_TWICE "paid_twice"                 /* a second, different payment confirmation */
#define ALERT_PENDING_TOO_LONG "pending_too_long"     /* no result from the provider for too long */
#define ALERT_UNCOLLECTED "uncollected"               /* kiosk payment not collected after N days */
#define ALERT_PAYEE_INELIGIBLE "payee_ineligible"     /* payee deceased/suspended/exited after approval */
#define ALERT_SHARED_PHONE "shared_phone"             /* one phone receives several payments in a cycle */
#define ALERT_SHARED_NATIONAL_ID "shared_national_id" /* one national ID receives several payments */
#define ALERT_FUND_LOW "fund_low"                     /* the fund cannot cover a payroll up for approval */
#define ALERT_STATEMENT_MISMATCH "statement_mismatch" /* reconciliation found differences */
#define ALERT_BAD_CALLBACK "bad_callback"             /* a callback failed its signature or was malformed */
#define ALERT_CONFLICTING_RESULT "conflicting_result" /* a result contradicting a settled payment */
#define ALERT_KIOSK_TAMPER "kiosk_tamper"             /* a kiosk reported tamper or its door open: locked */
#define ALERT_OFFLINE_CONFLICT "offline_conflict"     /* an offline collection replayed that cannot be booked */
#define ALERT_KIOSK_DISPENSE "kiosk_dispense_unknown" /* a collection recorded, the cash drawer maybe not opened */
#define ALERT_KIOSK_OVERRIDE "kiosk_override"         /* a PIN + staff override replaced a fingerprint */

/* Raises an alert inside the caller's transaction unless one with the same rule and subject exists
 * (dedupe key "<rule>:<subject>"); *raised says which. severity: info, warning, critical. details: JSON
 * without personal data (references, amounts, counts); borrowed. */
HF_MUST_CHECK hf_err alerts_raise(struct db *db, const char *rule, const char *severity, const char *subject,
				  int64_t cycle_id, int64_t payment_id, json_t *details, bool *raised);

/* GET /alerts?status=&rule=&cycle=&limit=&after= */
HF_MUST_CHECK hf_err alerts_list(struct svc_call *c, const char *status, const char *rule, const char *cycle,
				 int limit, const char *after, json_t **out);
/* POST /alerts/{id}/acknowledge {note?} and /alerts/{id}/resolve {resolution} */
HF_MUST_CHECK hf_err alerts_acknowledge(struct svc_call *c, const char *id, json_t *body, json_t **out);
HF_MUST_CHECK hf_err alerts_resolve(struct svc_call *c, const char *id, json_t *body, json_t **out);

#endif
