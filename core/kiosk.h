/* kiosk.h - kiosk terminals: registration by staff, enrolment of the terminal's Ed25519 key, signed
 * requests, revocation.
 *
 * Life of a terminal: staff register it for a pay point (status pending) and get a one-time enrolment code
 * (shown once, valid kiosk.enrol_ttl_s, only its hash kept); the terminal generates its key pair and sends
 * the public key with the code (active); staff can revoke it at any moment (revoked: every later request is
 * refused). Every kiosk request carries the headers of lib/hf_reqsign.h, signed over method, path,
 * timestamp, nonce, kiosk number and body digest; it is refused when the timestamp is outside +-window_s,
 * when the nonce was already used (replay; nonces are kept in kiosk_nonces for the window, so any core
 * instance catches a replay), when the signature is bad, or when the terminal is not active.
 */
#ifndef HF_CORE_KIOSK_H
#define HF_CORE_KIOSK_H

#include <jansson.h>

#include "hf_base.h"
#include "hf_err.h"
#include "hf_json.h"
#include "audit.h"
#include "db.h"

#define KIOSK_ENROL_TTL_S_DEFAULT 86400   /* kiosk.enrol_ttl_s */
#define KIOSK_ENROL_MAX_FAILURES_DEFAULT 5 /* kiosk.enrol_max_failures */

/* Sets kiosk.enrol_ttl_s (how long an enrolment code is valid) and kiosk.enrol_max_failures (wrong codes
 * after which the code is burned and staff must register the terminal anew). Both > 0. Call once at
 * startup, before any thread uses this module; the defaults above apply until then. */
void kiosk_configure(int enrol_ttl_s, int enrol_max_failures);

struct kiosk_identity {
	int64_t id;
	char kiosk_no[33];
	char pay_point[65];
};

/* Staff: POST /kiosks {"pay_point": "...", "kiosk_no"?: "..."} -> 201 with the enrolment code (once). */
HF_MUST_CHECK hf_err kiosk_register(struct db *db, const struct audit_actor *who, json_t *body, struct hf_ferrs *fe,
				    char *msg, size_t msg_cap, json_t **out);
/* Terminal, no session: POST /kiosks/enrol {"kiosk_no", "enrolment_code", "public_key" (base64, 32 bytes)}.
 * HF_EAUTH with msg for a wrong, used or expired code (audited, counts towards kiosk.enrol_max_failures). */
HF_MUST_CHECK hf_err kiosk_enrol(struct db *db, const struct audit_actor *who, json_t *body, struct hf_ferrs *fe,
				 char *msg, size_t msg_cap, json_t **out);
/* Staff: POST /kiosks/{kiosk_no}/revoke {"reason"} -> 200. */
HF_MUST_CHECK hf_err kiosk_revoke(struct db *db, const struct audit_actor *who, const char *kiosk_no, json_t *body,
				  struct hf_ferrs *fe, char *msg, size_t msg_cap, json_t **out);
/* Staff: PATCH /kiosks/{kiosk_no} {"mode"?: "pay_point"|"enrolment", "offline"?: null | {"cap": {"amount",
 * "currency"}, "max_collections", "hours"?}} -> 200 with the terminal. "offline" sets what one offline
 * allowance may pay out (null: nothing; the default). Audited (kiosk.update). */
HF_MUST_CHECK hf_err kiosk_update(struct db *db, const struct audit_actor *who, const char *kiosk_no, json_t *body,
				  struct hf_ferrs *fe, char *msg, size_t msg_cap, json_t **out);
/* Staff: POST /kiosks/{kiosk_no}/unlock {"reason"} -> 200: lifts the lock a tamper or door-open event set
 * (core/kiosk_ops.h). Unlocking an unlocked terminal changes nothing. Audited (kiosk.unlock). */
HF_MUST_CHECK hf_err kiosk_unlock(struct db *db, const struct audit_actor *who, const char *kiosk_no, json_t *body,
				  struct hf_ferrs *fe, char *msg, size_t msg_cap, json_t **out);
/* Staff: GET /kiosks (no secrets in the answer): each terminal with its mode, last_seen_at, online (a
 * heartbeat in the last 3 minutes), health (the last heartbeat), locked and the offline settings. */
HF_MUST_CHECK hf_err kiosk_list(struct db *db, json_t **out);

/* Checks a signed request. headers: the three or four X-Hifadhi-* values of hf_reqsign.h (NULL when
 * absent); has_query: the request had a query string (refused: kiosk requests sign the path only).
 * HF_EAUTH (401) for missing/bad headers, unknown terminal, bad signature, stale timestamp or replay;
 * HF_EFORBIDDEN (403) for a revoked or not yet enrolled terminal. msg says which, in words an operator can act
 * on. The caller audits refusals. now_s: unix seconds (tests pass the real clock). */
struct kiosk_signed {
	const char *method, *path;
	const char *kiosk_no, *timestamp, *nonce, *signature;
	const void *body;
	size_t body_len;
	bool has_query;
};
HF_MUST_CHECK hf_err kiosk_authenticate(struct db *db, const struct kiosk_signed *rq, int64_t now_s, int window_s,
					struct kiosk_identity *out, char *msg, size_t msg_cap);

/* Deletes nonces that can no longer be replayed: older than twice the window plus a minute (a request stamped
 * window_s in the future stays acceptable for 2 * window_s), at most 10000 rows per call. Called now and
 * then by the server; cheap with ix_kiosk_nonces_seen. */
HF_MUST_CHECK hf_err kiosk_prune_nonces(struct db *db, int window_s);

/* A pay point name: 2-64 letters, digits, spaces and . _ / - (length checked by the caller). */
bool kiosk_pay_point_ok(const char *s);

#endif
