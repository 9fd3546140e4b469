/* kiosk_ops.h - a kiosk terminal in operation: its health and lock, the self-service it offers a
 * beneficiary (status, grievances), and offline collection against a signed allowance (docs/kiosk-api.md,
 * sections Health, Self-service and Offline).
 *
 * Health: every heartbeat is stored on the kiosk's row (kiosk_health) and shown to staff with GET /kiosks.
 * A tamper or door-open event locks the terminal: every verification and collection route of a locked
 * kiosk answers HF_ELOCKED (423) until staff unlock it. The lock lives in the database, so every core
 * instance sees it at once.
 *
 * Offline: core issues an allowance per kiosk (the collectable payments of its pay point in a window, a
 * cap in money and count), signed with core's kiosk key (Ed25519, sign_pk of GET kiosk/me). The kiosk
 * collects against it while the link is down and replays its events later; each event is applied once
 * per (kiosk, event id), whatever happens to the link, and a payment collected elsewhere meanwhile is a
 * conflict for staff (an offline_conflict payment alert), never a second payout in the ledger.
 *
 * All functions: called on an HTTP pool thread with its connection; svc_call's principal is the kiosk
 * (PRINCIPAL_KIOSK) except for the staff functions. Results go to *out (owned by the caller) on success.
 */
#ifndef HF_CORE_KIOSK_OPS_H
#define HF_CORE_KIOSK_OPS_H

#include <jansson.h>

#include "hf_base.h"
#include "hf_err.h"
#include "db.h"
#include "svc.h"

#define KIOSK_OPS_ONLINE_S 180                  /* "online" = a heartbeat in the last 3 minutes */
#define KIOSK_OPS_ALLOWANCE_MAX_S (72 * 3600)   /* an allowance is valid at most 72 hours */
#define KIOSK_OPS_ALLOWANCE_DEFAULT_S (24 * 3600)
#define KIOSK_OPS_ALLOWANCE_MAX_ITEMS 2000      /* payments in one allowance */
#define KIOSK_OPS_OFFLINE_MAX_EVENTS 100        /* events in one POST kiosk/offline-events */
#define KIOSK_OPS_OFFLINE_MAX_BODY (1024 * 1024)

/* Whether the kiosk is locked (after a tamper or door-open event, until staff unlock it). *locked is
 * written on HF_OK only. For the verification and collection routes: when locked, answer HF_ELOCKED
 * (423, code "locked"); kiosk_ops_refuse_locked does both. HF_EDB / HF_EDB_RETRY from the database. */
HF_MUST_CHECK hf_err kiosk_ops_locked(struct db *db, uint64_t kiosk_id, bool *locked);
/* HF_ELOCKED with a message in c->msg when c's kiosk is locked (the refusal is audited,
 * kiosk.refused_locked, in a transaction of its own: call it outside the caller's transaction); HF_OK
 * when not locked or when c is not a kiosk. */
HF_MUST_CHECK hf_err kiosk_ops_refuse_locked(struct svc_call *c);

/* POST kiosk/heartbeat: stores last_seen_at and the health JSON; 200 {server_time, allowance_refresh}. */
HF_MUST_CHECK hf_err kiosk_ops_heartbeat(struct svc_call *c, json_t *body, json_t **out);
/* POST kiosk/events {type, at}: audited; tamper and door_open lock the kiosk and raise kiosk_tamper. */
HF_MUST_CHECK hf_err kiosk_ops_event(struct svc_call *c, json_t *body, json_t **out);
/* Staff lift the lock with POST kiosks/{kiosk_no}/unlock (kiosk_unlock in core/kiosk.h). */

/* GET kiosk/beneficiaries/{ben_no}/status: enrolments, the next payment, the last ones, the language. */
HF_MUST_CHECK hf_err kiosk_ops_status(struct svc_call *c, const char *ben_no, json_t **out);
/* POST kiosk/grievances {ben_no?, category, description?, language}: 201 {reference} (channel kiosk). */
HF_MUST_CHECK hf_err kiosk_ops_grievance(struct svc_call *c, json_t *body, json_t **out);

/* GET kiosk/allowance: {"allowance_text": "<JSON text>", "signature": "<base64 Ed25519 over those bytes>"}.
 * The allowance is JSON text built once and signed as those exact bytes; it travels as a JSON string, so
 * the kiosk gets it back byte for byte, verifies it, then parses it. Supersedes the kiosk's previous
 * allowance; audited (kiosk.allowance). HF_ELOCKED for a locked kiosk, HF_EFORBIDDEN for an enrolment
 * station. */
HF_MUST_CHECK hf_err kiosk_ops_allowance(struct svc_call *c, json_t **out);
/* POST kiosk/offline-events {events: [...]}: 200 {results: [{id, status, message?, receipt?}]}. */
HF_MUST_CHECK hf_err kiosk_ops_offline_events(struct svc_call *c, json_t *body, json_t **out);

#endif
