/* biometric.h - fingerprint templates and who-is-standing-at-the-kiosk: core's kiosk key, templates enrolled
 * at an enrolment station, templates handed to pay-point kiosks, verification tokens (fingerprint match, or
 * the beneficiary's PIN plus a staff override) and the public receipt check (docs/kiosk-api.md).
 *
 * Core's kiosk key: one 32-byte seed in crypto.key_dir/kiosk-core.key (hex, made by `hifadhi-core keygen`
 * with the other keys, never overwritten). Three keys are derived from it with libsodium's KDF, so none is
 * used for two purposes: an X25519 key pair that kiosks seal captured templates to (seal_pk), an Ed25519
 * key pair that signs offline allowances (sign_pk), and the MAC key of receipt checks.
 *
 * Templates: a kiosk seals a capture to seal_pk (crypto_box_seal); core opens it, checks it is a libfprint
 * print, and stores it field-encrypted (hf_field_seal, associated data "biometric_templates.template:
 * <individual>:<finger>:<row>"). A pay-point kiosk gets them sealed to its own X25519 key, derived from the
 * Ed25519 key it enrolled with: nobody on the path and no other kiosk can read them. The plaintext lives
 * only in wiped buffers for the length of one call and is never logged.
 *
 * Verification tokens: 16 random bytes (22 characters of base64url), only their SHA-256 stored
 * (kiosk_verifications), valid BIOMETRIC_TOKEN_TTL_S for the one kiosk and the one person they were issued
 * for. POST kiosk/collections needs one (payments.c checks it with biometric_token_check, in the collection's
 * own transaction).
 *
 * Keys are loaded once at startup (before the HTTP threads start) and read-only afterwards: every function
 * is thread-safe after biometric_keys_load.
 */
#ifndef HF_CORE_BIOMETRIC_H
#define HF_CORE_BIOMETRIC_H

#include <jansson.h>

#include "hf_base.h"
#include "hf_err.h"
#include "db.h"
#include "svc.h"

#define BIOMETRIC_KEY_FILE "kiosk-core.key"
#define BIOMETRIC_TOKEN_TTL_S 300         /* a verification token is valid 5 minutes */
#define BIOMETRIC_MAX_ATTEMPTS 3          /* failed fingerprint attempts before the fallback */
#define BIOMETRIC_ATTEMPT_WINDOW_S 600    /* ... counted over the last 10 minutes */
#define BIOMETRIC_SEALED_MAX (96 * 1024)  /* bytes of a sealed template a kiosk sends */
#define BIOMETRIC_TEMPLATES_MAX 10        /* one per finger */
#define BIOMETRIC_PK_B64_LEN 44           /* standard padded base64 of 32 bytes */
#define BIOMETRIC_SIG_B64_LEN 88          /* standard padded base64 of a 64-byte Ed25519 signature */
#define BIOMETRIC_METHOD_MAX 24           /* "fingerprint", "pin_staff_override" and the NUL */
#define BIOMETRIC_RECEIPT_CHECK_LEN 10    /* characters of a receipt check */

/* Reads crypto.key_dir/kiosk-core.key and derives the keys (into sodium_malloc memory, read-only), and sets
 * up the per-kiosk rate limit of template reads. Call once at core start, after hf_crypto_init. HF_EIO when
 * the file is missing or unreadable (run keygen), HF_EINVAL when it is not 64 hex digits. Logs which, never
 * the key. */
HF_MUST_CHECK hf_err biometric_keys_load(const char *key_dir);
/* Wipes and frees the keys and the rate limit (biometric_keys_load may be called again). */
void biometric_keys_free(void);

/* Ed25519 signature with core's kiosk key over msg: standard padded base64, NUL-terminated (allowances). */
HF_MUST_CHECK hf_err biometric_sign(const void *msg, size_t len, char sig_b64[BIOMETRIC_SIG_B64_LEN + 1]);
/* The public keys as GET kiosk/me shows them (standard padded base64). */
void biometric_public_keys(char seal_pk[BIOMETRIC_PK_B64_LEN + 1], char sign_pk[BIOMETRIC_PK_B64_LEN + 1]);

/* The templates of an individual sealed to the calling kiosk (c->p is PRINCIPAL_KIOSK): *arr_out (owned) is
 * [{"finger", "driver", "device", "sealed"}], empty when none is enrolled. Nothing audited here: the caller
 * audits what it hands out. HF_EINTERNAL when a stored template does not open (logged with its row id). */
HF_MUST_CHECK hf_err biometric_templates_for_kiosk(struct svc_call *c, uint64_t individual_id, json_t **arr_out);

/* GET kiosk/me: {kiosk_no, pay_point, mode, seal_pk, sign_pk, server_time}. */
HF_MUST_CHECK hf_err biometric_kiosk_me(struct svc_call *c, json_t **out);
/* POST kiosk/templates (enrolment stations): 201 {ben_no, finger, replaced}. */
HF_MUST_CHECK hf_err biometric_enrol(struct svc_call *c, json_t *body, json_t **out);
/* GET kiosk/beneficiaries/{ben_no}/templates (pay points): {ben_no, templates, fallback: {pin_set}, language}. */
HF_MUST_CHECK hf_err biometric_templates_get(struct svc_call *c, const char *ben_no, json_t **out);
/* POST kiosk/verifications {ben_no, result, attempt, driver}: 201 (c->status) with a token for a match, else
 * 200. A refused match is HF_ECONFLICT with *reason "no_template" or "attempts_exhausted". */
HF_MUST_CHECK hf_err biometric_verify(struct svc_call *c, json_t *body, json_t **out, const char **reason);
/* POST kiosk/overrides {ben_no, pin, staff_user, staff_password, staff_totp?, reason}: 201 with a token. A
 * refusal the kiosk acts on writes *reason (static): wrong_credentials (401), staff_role (403), no_pin and
 * not_allowed_now (409), pin_locked and staff_locked (429). */
HF_MUST_CHECK hf_err biometric_override(struct svc_call *c, json_t *body, json_t **out, const char **reason);

/* For the collection routes: HF_ELOCKED (423) for a locked kiosk, HF_EFORBIDDEN for an enrolment station,
 * HF_OK for a pay point (c->msg says why not). */
HF_MUST_CHECK hf_err biometric_pay_point_only(struct svc_call *c);

/* Checks a verification token inside the caller's transaction: issued to kiosk_id for individual_id and
 * not expired. HF_OK with *verification_id and method ("fingerprint" or "pin_staff_override"); HF_EAUTH
 * when it is not such a token (the caller says so); errors of the database. */
HF_MUST_CHECK hf_err biometric_token_check(struct db *db, int64_t kiosk_id, int64_t individual_id, const char *token,
					   int64_t *verification_id, char method[BIOMETRIC_METHOD_MAX]);

/* The receipt check of a receipt number: a MAC under core's kiosk key, BIOMETRIC_RECEIPT_CHECK_LEN
 * characters of base64url (60 bits) and the NUL. */
void biometric_receipt_check(const char *receipt, char out[BIOMETRIC_RECEIPT_CHECK_LEN + 1]);
/* Whether check is the receipt check of receipt (constant time; false for anything malformed). */
bool biometric_receipt_check_ok(const char *receipt, const char *check);

#endif
