/* auth.h - staff accounts, passwords + TOTP, sessions, lockout, and the principals of a request.
 *
 * Staff log in with username + password + a TOTP code (or a one-time recovery code). Before any password
 * is hashed, attempts are rate limited per source address and per account (ratelimit.h), and an account
 * locked by auth.max_failures failures is refused for auth.lockout_s. A session is a random 256-bit
 * bearer token of which only the SHA-256 is stored; it ends after auth.idle_timeout_s without use, after
 * auth.absolute_timeout_s in any case, at logout, at logout of all sessions, and when the password changes
 * or the account is disabled. An account created with a password only (by an administrator, or after
 * `user reset-mfa`) logs in to an enrolment-only session that may just enrol an authenticator.
 * Every login, failed login and account change is audited; nothing here logs a password, code or token.
 */
#ifndef HF_CORE_AUTH_H
#define HF_CORE_AUTH_H

#include <jansson.h>

#include "hf_base.h"
#include "hf_config.h"
#include "hf_err.h"
#include "hf_json.h"
#include "audit.h"
#include "db.h"

enum staff_role {
	ROLE_ADMIN,
	ROLE_REGISTRAR,
	ROLE_CASE_WORKER,
	ROLE_PAYMENT_OFFICER,
	ROLE_AUDITOR,
	ROLE_SUPPORT,
	ROLE_COUNT_
};
extern const char *const auth_role_names[ROLE_COUNT_ + 1]; /* NULL-terminated */
int auth_role_parse(const char *s);                          /* -1 when unknown */

enum principal_kind { PRINCIPAL_NONE, PRINCIPAL_STAFF, PRINCIPAL_SERVICE, PRINCIPAL_KIOSK };

/* Who is calling. The api fills it; handlers read it. */
struct principal {
	enum principal_kind kind;
	int role;        /* staff only */
	bool enrol_only; /* staff session that may only enrol TOTP */
	int64_t user_id, session_id, kiosk_id;
	char name[65];      /* username, service name or kiosk number */
	char actor[72];     /* what record histories name: "alice", "svc:gateway", "kiosk:K12345678" */
	char pay_point[65]; /* kiosk only */
	char source[46];    /* client address */
	const char *request_id;
	struct audit_actor audit; /* points into this struct */
};
/* Fills p->audit from the other fields. */
void auth_principal_finish(struct principal *p, const char *type);

HF_MUST_CHECK hf_err auth_init(const struct hf_config *cfg);
void auth_shutdown(void);

/* Takes one attempt from the per-address budget (kiosk enrolment and other unauthenticated endpoints that
 * must not become a free oracle). HF_ERATELIMIT with *retry_after_s when exhausted; *first_refusal as in
 * ratelimit_take. */
HF_MUST_CHECK hf_err auth_throttle_address(const char *source, int *retry_after_s, bool *first_refusal);

/* Whether a refused request without a valid credential from source gets its own audit entry: up to 60 at
 * once and 600 a minute per address; past that a flood is recorded once per burst (*first_over), so
 * unauthenticated junk cannot turn into a database write each. */
bool auth_refusal_audit_budget(const char *source, bool *first_over);

/* POST /auth/login. On HF_ERATELIMIT *retry_after_s is set. */
HF_MUST_CHECK hf_err auth_login(struct db *db, const char *source, const char *request_id, json_t *body,
				struct hf_ferrs *fe, char *msg, size_t msg_cap, int *retry_after_s, json_t **out);
/* A staff credential typed at a kiosk to authorise a fallback (docs/kiosk-api.md, POST kiosk/overrides):
 * username, password and, for an account with an authenticator, its current code (accounts still without
 * one are refused). No session is made. The same per-account rate limit, failure counting and lockout as a
 * login, on the same row: guesses at a kiosk and at the office add up. Every attempt is audited
 * (auth.staff_check, with who = the kiosk). HF_OK with *role_out; HF_EAUTH for an unknown account, a
 * wrong password or code, a missing code or a disabled account (which one is in the audit trail only);
 * HF_ERATELIMIT with *retry_after_s when the account is locked or rate-limited. Costs one Argon2id. */
HF_MUST_CHECK hf_err auth_check_staff(struct db *db, const struct audit_actor *who, const char *username,
				      const char *password, const char *totp, int *role_out, int *retry_after_s);
/* Resolves "Authorization: Bearer <token>" into p (HF_EAUTH with msg when expired, ended or unknown). */
HF_MUST_CHECK hf_err auth_session(struct db *db, const char *token, struct principal *p, char *msg, size_t msg_cap);
/* The gateway's service credential (X-Hifadhi-Service-Key), compared in constant time. */
HF_MUST_CHECK hf_err auth_service(const char *key, struct principal *p, char *msg, size_t msg_cap);

HF_MUST_CHECK hf_err auth_logout(struct db *db, const struct principal *p, bool all, json_t **out);
HF_MUST_CHECK hf_err auth_me(struct db *db, const struct principal *p, json_t **out);
HF_MUST_CHECK hf_err auth_password_change(struct db *db, const struct principal *p, json_t *body, struct hf_ferrs *fe,
					  char *msg, size_t msg_cap, json_t **out);
HF_MUST_CHECK hf_err auth_mfa_enrol(struct db *db, const struct principal *p, char *msg, size_t msg_cap, json_t **out);
HF_MUST_CHECK hf_err auth_mfa_confirm(struct db *db, const struct principal *p, json_t *body, struct hf_ferrs *fe,
				      char *msg, size_t msg_cap, json_t **out);

/* Account administration (API for admins, and the CLI). actor: the name stored in created_by/updated_by.
 * with_mfa: enrol TOTP now and return secret, otpauth URI and recovery codes (CLI bootstrap); else the
 * user enrols at first login. */
HF_MUST_CHECK hf_err auth_user_create(struct db *db, const struct audit_actor *who, json_t *body, bool with_mfa,
				      struct hf_ferrs *fe, char *msg, size_t msg_cap, json_t **out);
HF_MUST_CHECK hf_err auth_user_list(struct db *db, json_t **out);
/* PATCH {role?, disabled?, password?}: disabling or a new password ends every session of the user. */
HF_MUST_CHECK hf_err auth_user_update(struct db *db, const struct audit_actor *who, const char *username, json_t *body,
				      struct hf_ferrs *fe, char *msg, size_t msg_cap, json_t **out);
HF_MUST_CHECK hf_err auth_user_reset_mfa(struct db *db, const struct audit_actor *who, const char *username, char *msg,
					 size_t msg_cap, json_t **out);

#endif
