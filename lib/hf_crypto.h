/* hf_crypto.h - field encryption, blind indexes and key files, on libsodium.
 *
 * Personal data is sealed per field with XChaCha20-Poly1305 under a key with a one-byte key id, so keys
 * can be rotated: old rows keep decrypting under their id while new writes use the active one. The
 * associated data binds a ciphertext to its table, column and row, so a value copied into another row or
 * column by someone with database access fails to decrypt instead of being silently accepted.
 * Blind indexes are keyed BLAKE2b over a domain ("nid", "phone", ...) and the normalised value; they allow
 * exact lookups without storing the value, and the domain keeps one column's index useless for another.
 * Keys live in sodium_malloc memory and are wiped on free. All functions are thread-safe after load.
 */
#ifndef HF_CRYPTO_H
#define HF_CRYPTO_H

#include "hf_base.h"
#include "hf_buf.h"
#include "hf_err.h"

#define HF_BIDX_LEN 16
/* Sealed field layout: version(1) kid(1) nonce(24) ciphertext(n) tag(16). */
#define HF_SEAL_OVERHEAD (2 + 24 + 16)

struct hf_keyring;

/* Must be called once before any other hf_crypto function (wraps sodium_init). */
HF_MUST_CHECK hf_err hf_crypto_init(void);

/* Creates dir (0700) and, where missing, field-01.key and bidx.key (32 random bytes, hex, mode 0600).
 * Existing keys are never overwritten. */
HF_MUST_CHECK hf_err hf_keyring_generate(const char *dir);
/* Loads every field-NN.key (NN = key id 1..255, hex) and bidx.key from dir; active_kid must be present. */
HF_MUST_CHECK hf_err hf_keyring_load(const char *dir, int active_kid, struct hf_keyring **out);
void hf_keyring_free(struct hf_keyring *kr);

/* Seals plain under the active key, appending the sealed bytes to out (binary). */
HF_MUST_CHECK hf_err hf_field_seal(const struct hf_keyring *kr, struct hf_str ad, const void *plain, size_t len,
				   struct hf_buf *out);
/* Opens a sealed value; appends the plaintext to out. HF_EINVAL if it was tampered with, bound to other
 * associated data or sealed under an unknown key id. */
HF_MUST_CHECK hf_err hf_field_open(const struct hf_keyring *kr, struct hf_str ad, const void *sealed, size_t len,
				   struct hf_buf *out);
/* Key id a sealed value was made with (0 if malformed): lets a re-encryption job find old rows. */
int hf_field_kid(const void *sealed, size_t len);

/* Keyed BLAKE2b blind index of value in domain. */
void hf_blind_index(const struct hf_keyring *kr, const char *domain, struct hf_str value, uint8_t out[HF_BIDX_LEN]);

void hf_random_bytes(void *p, size_t n);
/* Uniform in [0, upper). */
uint32_t hf_random_uniform(uint32_t upper);
/* Lower-case hex of bin into out, which must hold 2*len+1 bytes. */
void hf_hex(const void *bin, size_t len, char *out);
/* Decodes exactly out_len bytes of hex; false on bad input. */
bool hf_unhex(const char *hex, size_t hex_len, void *out, size_t out_len);
/* Constant-time equality of two equally long byte strings. */
bool hf_ct_equal(const void *a, const void *b, size_t n);
/* SHA-256 (for digests in logs and audit; not for passwords). */
void hf_sha256(const void *p, size_t n, uint8_t out[32]);

#endif
