/* hf_totp.h - one-time codes for staff sign-in: RFC 6238 TOTP, RFC 4226 HOTP and RFC 4648 base32.
 *
 * Staff accounts that can change payrolls or beneficiary records need a second factor that works without
 * a phone signal: an authenticator app on the officer's phone showing a 6-digit code that changes every
 * 30 seconds. The shared secret is shown once as an otpauth:// URI (as a QR code, see hf_qr.h) and kept
 * sealed in the database. Codes are HMAC-SHA-1 as every authenticator app expects; SHA-1's collision
 * weakness does not matter for HMAC. A code is accepted once: the caller stores the step that matched and
 * passes it back as last_step next time, so a code read over someone's shoulder cannot be replayed.
 * All functions are pure computations and thread-safe.
 */
#ifndef HF_TOTP_H
#define HF_TOTP_H

#include "hf_base.h"
#include "hf_buf.h"
#include "hf_err.h"

#define HF_TOTP_PERIOD 30
#define HF_TOTP_DIGITS 6
/* Characters of unpadded base32 for n bytes (without the NUL). */
#define HF_BASE32_LEN(n) (((n) * 8 + 4) / 5)

/* Upper-case RFC 4648 base32 of bin, without '=' padding, NUL-terminated in out. Returns the length
 * written (excluding the NUL), or 0 when out cannot hold HF_BASE32_LEN(len) + 1 bytes. Empty input
 * writes "" and returns 0. */
size_t hf_base32_encode(const void *bin, size_t len, char *out, size_t cap);
/* Decodes base32 text from a person or a file: lower case is accepted, spaces and '=' are ignored. False
 * for any other character, for a length no encoder produces (1, 3 or 6 characters in the last group),
 * for non-zero unused trailing bits, or when the result does not fit in cap bytes. *len_out is written
 * only on success; on failure out is wiped. */
bool hf_base32_decode(const char *s, void *out, size_t cap, size_t *len_out);

/* RFC 4226 HOTP value of counter under key: HMAC-SHA-1 with dynamic truncation, modulo 10^digits
 * (digits 1..9; a caller's constant, asserted). Format it with leading zeros to `digits` places. */
uint32_t hf_hotp(const uint8_t *key, size_t key_len, uint64_t counter, int digits);

/* The RFC 6238 time step of a Unix time: floor(unix_s / 30). */
int64_t hf_totp_step(int64_t unix_s);

/* Checks a 6-digit code typed by a person at time unix_s. The code must be exactly six ASCII digits
 * (no spaces). The steps now-1, now and now+1 are tried, in that order, to allow for clock drift and a
 * slow typist, but only steps strictly greater than last_step: pass the step returned by the previous
 * successful match (or -1 when there was none) so that each code is accepted only once. Comparison is in
 * constant time. On a match *step_out is the step that matched; store it as the new last_step.
 * False for an empty key. */
bool hf_totp_match(const uint8_t *key, size_t key_len, const char *code, int64_t unix_s, int64_t last_step,
		   int64_t *step_out);

/* Appends the provisioning URI
 *   otpauth://totp/ISSUER:ACCOUNT?secret=SECRET&issuer=ISSUER&algorithm=SHA1&digits=6&period=30
 * to out, with issuer and account percent-encoded (RFC 3986 unreserved characters are kept, a space is
 * %20). HF_EINVAL when issuer or account is empty or secret_b32 is not upper-case unpadded base32;
 * HF_ETOOBIG when out's cap is hit. On error out is left as it was. */
HF_MUST_CHECK hf_err hf_totp_uri(const char *issuer, const char *account, const char *secret_b32,
				 struct hf_buf *out);

#endif
