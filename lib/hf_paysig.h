/* hf_paysig.h - signatures on payment-provider callbacks, made by the provider simulator and checked by the core.
 *
 * A provider's callback says "this payment was made" (or not): whoever can forge one can make the core
 * record money as paid that never left, or mark a paid beneficiary as failed and pay twice. So every
 * callback carries a signature the core checks before it believes a word of the body, and a timestamp that
 * bounds how long a captured callback can be replayed (the core's own idempotency on the reference id
 * covers replays inside the window). Two formats, one per protocol family:
 *
 * (a) Mobile-money B2C callbacks, a shared secret (HMAC-SHA256), in the header HF_PAYSIG_HMAC_HEADER:
 *	X-Hifadhi-Signature: t=<unix seconds>,v1=<64 lower-case hex of HMAC-SHA256(secret, "<t>." BODY)>
 *    The secret is any number of bytes (the simulator uses a key file's raw bytes, trailing newline
 *    trimmed). Verification reads comma-separated key=value items in any order: exactly one t (1-12
 *    digits), one to four v1 (any may match, which allows rotating the secret); other keys are ignored.
 *
 * (b) G2P Connect / DCI callbacks, Ed25519 (Beckn-style), in the header HF_PAYSIG_DCI_HEADER ("Signature"):
 *	namespace="spdci", kidId="<sender_id>|<key_id>|ed25519", algorithm="ed25519", created="<unix>",
 *	expires="<unix>", headers="(created) (expires) digest", signature="<standard padded base64>"
 *    The signed string, byte for byte, no trailing newline ("\n" is one LF):
 *	"(created): " CREATED "\n(expires): " EXPIRES "\ndigest: BLAKE-512=" BASE64(BLAKE2b-512(BODY))
 *    sender_id and key_id are 1..HF_PAYSIG_DCI_ID_MAX characters of [A-Za-z0-9._:-].
 *
 * Thread-safe once libsodium is initialised (hf_crypto_init). Nothing here logs; secrets are wiped from
 * the stack before returning.
 */
#ifndef HF_PAYSIG_H
#define HF_PAYSIG_H

#include "hf_base.h"
#include "hf_err.h"

#define HF_PAYSIG_HMAC_HEADER "X-Hifadhi-Signature"
#define HF_PAYSIG_DCI_HEADER "Signature"

/* Room for the header value and its NUL. */
#define HF_PAYSIG_HDR_MAX 160
#define HF_PAYSIG_DCI_MAX 512

#define HF_PAYSIG_DCI_ID_MAX 64
/* A DCI signature is accepted from this many seconds before its "created" (clock skew) until "expires". */
#define HF_PAYSIG_DCI_SKEW_S 60

/* (a) Writes the X-Hifadhi-Signature header VALUE for body signed at time t (unix seconds, >= 0). */
void hf_paysig_hmac_header(const uint8_t *secret, size_t secret_len, int64_t t, const char *body, size_t len,
			   char out[HF_PAYSIG_HDR_MAX]);

/* HF_OK if header_value parses, a v1 MAC matches (constant time) and |now - t| <= window_s; HF_EAUTH
 * otherwise; HF_EINVAL if header_value is malformed (or NULL, or longer than 512 characters). */
HF_MUST_CHECK hf_err hf_paysig_hmac_verify(const uint8_t *secret, size_t secret_len, const char *header_value,
					   int64_t now, int window_s, const char *body, size_t len);

/* (b) Writes the Signature header VALUE, signed with sk (libsodium layout: seed || public key). The ids
 * must be valid (hf_paysig_dci_id_valid) and 0 <= created <= expires: these are the caller's own values,
 * so a violation aborts. */
void hf_paysig_dci_header(const uint8_t sk[64], const char *sender_id, const char *key_id, int64_t created,
			  int64_t expires, const char *body, size_t len, char out[HF_PAYSIG_DCI_MAX]);

/* Verifies with the public key pk: parses the fields in any order (namespace optional, unknown ones
 * ignored), checks that algorithm is "ed25519", headers is "(created) (expires) digest", namespace (when
 * present) is "spdci", the signature
 * verifies over body, now is within [created - HF_PAYSIG_DCI_SKEW_S, expires], and that kidId's sender_id
 * equals expected_sender (if non-NULL). HF_OK, HF_EAUTH (a check failed), or HF_EINVAL (malformed: a
 * missing or repeated field, bad quoting, a non-numeric time, a kidId not of three parts ending in
 * "ed25519", a signature that is not base64 of 64 bytes, or a value over 2048 characters).
 * Neither id in kidId is covered by the signature (no Beckn-style signature covers it): the sender_id is
 * compared with expected_sender, and the key_id only says which key the signer meant - a caller holding
 * several keys of one sender tries the one it names, a caller with one key ignores it. */
HF_MUST_CHECK hf_err hf_paysig_dci_verify(const uint8_t pk[32], const char *expected_sender, const char *header_value,
					  int64_t now, const char *body, size_t len);

/* Whether id is usable as a DCI sender_id or key_id (1..HF_PAYSIG_DCI_ID_MAX of [A-Za-z0-9._:-]). */
bool hf_paysig_dci_id_valid(const char *id);

#endif
