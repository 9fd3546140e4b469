/* hf_reqsign.h - signed requests of kiosk terminals (Ed25519), shared by the core and the kiosk program.
 *
 * A kiosk has no session and no password: it proves who it is on every request with an Ed25519 signature
 * made by a key that never leaves the terminal (the core keeps only the public key, registered at
 * enrolment). The signature covers everything that decides what a request does, so a captured request
 * cannot be pointed at another path, replayed by another terminal or given another body; the timestamp
 * and nonce let the core refuse a stale or repeated one. This file knows only the format; who the
 * terminals are and which nonces were seen is the core's business (core/kiosk.c).
 *
 * Headers of a signed request:
 *	X-Hifadhi-Kiosk: <kiosk_no>             1-32 of [A-Za-z0-9-]
 *	X-Hifadhi-Timestamp: <unix seconds>     decimal, 1-12 digits
 *	X-Hifadhi-Nonce: <nonce>                22-64 of [A-Za-z0-9_-] (base64url of 16+ random bytes)
 *	X-Hifadhi-Signature: <signature>        standard padded base64 of the 64-byte Ed25519 signature
 *
 * The signed message, byte for byte (no trailing newline; "\n" is one LF byte):
 *	"hifadhi-kiosk-v1\n" METHOD "\n" PATH "\n" TIMESTAMP "\n" NONCE "\n" KIOSK_NO "\n" BODY_SHA256
 * METHOD: 1-10 of [A-Z] ("POST"); PATH: the request path exactly as sent, starting with '/', at most 1024
 * printable ASCII characters (0x21-0x7e), never a query string (kiosk requests carry none); TIMESTAMP,
 * NONCE, KIOSK_NO: the header values; BODY_SHA256: 64 lower-case hex digits of SHA-256 of the body bytes
 * (of the empty string when there is no body). The "v1" changes whenever this format does.
 *
 * Enrolment codes (the one-time code staff give a terminal) are normalised and hashed here too, so the
 * kiosk program and the core agree on what "the same code" is: 12 characters of HF_REQSIGN_CODE_ALPHABET,
 * shown as XXXX-XXXX-XXXX; entered in any case, with or without dashes and spaces.
 *
 * Thread-safe once libsodium is initialised (hf_crypto_init). Nothing here logs.
 */
#ifndef HF_REQSIGN_H
#define HF_REQSIGN_H

#include "hf_base.h"
#include "hf_buf.h"
#include "hf_err.h"

#define HF_REQSIGN_H_KIOSK "X-Hifadhi-Kiosk"
#define HF_REQSIGN_H_TIMESTAMP "X-Hifadhi-Timestamp"
#define HF_REQSIGN_H_NONCE "X-Hifadhi-Nonce"
#define HF_REQSIGN_H_SIGNATURE "X-Hifadhi-Signature"

#define HF_REQSIGN_PK_LEN 32
#define HF_REQSIGN_SK_LEN 64 /* libsodium's layout: seed (32) || public key (32) */
#define HF_REQSIGN_SEED_LEN 32
#define HF_REQSIGN_SIG_B64_LEN 88 /* base64 of 64 bytes, padded; buffers hold one more for the NUL */
#define HF_REQSIGN_PK_B64_LEN 44  /* base64 of 32 bytes, padded */
#define HF_REQSIGN_NONCE_LEN 22   /* what hf_reqsign_nonce makes: base64url of 16 bytes, no padding */
#define HF_REQSIGN_KIOSK_NO_MAX 32

/* Enrolment codes: no 0/O, 1/I (nor L, which reads like 1 on some screens). */
#define HF_REQSIGN_CODE_ALPHABET "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
#define HF_REQSIGN_CODE_LEN 12
#define HF_REQSIGN_CODE_SHOWN_LEN 14 /* XXXX-XXXX-XXXX */
#define HF_REQSIGN_CODE_HASH_LEN 32

/* Appends the message to sign (the format above) to out, after checking every part; HF_EINVAL when one
 * is malformed (nothing appended), HF_ETOOBIG when out's maximum is too small (at least 1300 fits any
 * message). body may be NULL when body_len is 0. */
HF_MUST_CHECK hf_err hf_reqsign_message(const char *method, const char *path, const char *ts, const char *nonce,
					const char *kiosk_no, const void *body, size_t body_len, struct hf_buf *out);

/* Signs a request with the terminal's secret key (libsodium layout) and writes the X-Hifadhi-Signature
 * value, NUL-terminated, into sig_b64. HF_EINVAL when a part is malformed (sig_b64 untouched). */
HF_MUST_CHECK hf_err hf_reqsign_sign(const uint8_t sk[HF_REQSIGN_SK_LEN], const char *method, const char *path,
				     const char *ts, const char *nonce, const char *kiosk_no, const void *body,
				     size_t body_len, char sig_b64[HF_REQSIGN_SIG_B64_LEN + 1]);

/* Checks a signature made by pk over the request. HF_OK when it verifies; HF_EAUTH when it does not, or
 * when sig_b64 is not exactly 88 characters of canonical padded base64 of 64 bytes; HF_EINVAL when a part
 * of the message is malformed. */
HF_MUST_CHECK hf_err hf_reqsign_verify(const uint8_t pk[HF_REQSIGN_PK_LEN], const char *sig_b64, const char *method,
				       const char *path, const char *ts, const char *nonce, const char *kiosk_no,
				       const void *body, size_t body_len);

/* A fresh nonce: base64url without padding of 16 random bytes (22 characters and the NUL). */
void hf_reqsign_nonce(char out[HF_REQSIGN_NONCE_LEN + 1]);

/* Validators of the header values (the same rules hf_reqsign_message applies). */
bool hf_reqsign_kiosk_no_valid(const char *kiosk_no);
bool hf_reqsign_nonce_valid(const char *nonce);
bool hf_reqsign_timestamp_valid(const char *ts);

/* A terminal's key pair: random, or derived from a 32-byte seed (tests, known-answer vectors). The caller
 * wipes sk (sodium_memzero) when done with it. */
HF_MUST_CHECK hf_err hf_reqsign_keypair(uint8_t pk[HF_REQSIGN_PK_LEN], uint8_t sk[HF_REQSIGN_SK_LEN]);
HF_MUST_CHECK hf_err hf_reqsign_keypair_from_seed(const uint8_t seed[HF_REQSIGN_SEED_LEN],
						  uint8_t pk[HF_REQSIGN_PK_LEN], uint8_t sk[HF_REQSIGN_SK_LEN]);

/* Public keys travel as standard padded base64 (44 characters). decode: HF_EINVAL unless b64 is exactly
 * that, of 32 bytes that are a valid Ed25519 point of the main subgroup (no all-zero or small-order key
 * that would verify forged signatures); pk is written only on success. */
void hf_reqsign_pubkey_encode(const uint8_t pk[HF_REQSIGN_PK_LEN], char out[HF_REQSIGN_PK_B64_LEN + 1]);
HF_MUST_CHECK hf_err hf_reqsign_pubkey_decode(const char *b64, uint8_t pk[HF_REQSIGN_PK_LEN]);

/* A fresh enrolment code as shown to staff, "XXXX-XXXX-XXXX" (14 characters and the NUL). */
void hf_reqsign_code_new(char out[HF_REQSIGN_CODE_SHOWN_LEN + 1]);
/* Normalises a code as typed (upper-cases it, drops dashes and spaces) into out (12 characters and the NUL);
 * false unless the result is 12 characters of HF_REQSIGN_CODE_ALPHABET. */
bool hf_reqsign_code_normalise(const char *in, char out[HF_REQSIGN_CODE_LEN + 1]);
/* What the core stores instead of the code: BLAKE2b-256 of the normalised code, keyed with the fixed domain
 * "hifadhi-kiosk-enrol-v1" (domain separation; the code's 60 random bits are the secret). HF_EINVAL when
 * code does not normalise. */
HF_MUST_CHECK hf_err hf_reqsign_code_hash(const char *code, uint8_t out[HF_REQSIGN_CODE_HASH_LEN]);

#endif
