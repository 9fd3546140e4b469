/* hf_password.h - staff password policy and Argon2id password hashing.
 *
 * Staff passwords guard payrolls and the personal data of every beneficiary, so the policy follows NIST
 * SP 800-63B rather than composition rules: length (12 to 128 characters, counted as Unicode code points
 * so that a Swahili or French passphrase counts what the person typed), no user name inside, not one of
 * the passwords every attacker tries first, no single repeated character or simple sequence, and
 * cracklib's checks for dictionary words and systematic patterns. Any printable character and spaces are
 * allowed, so long passphrases are easy. Hashes are Argon2id at OWASP's minimum (2 passes, 19 MiB).
 *
 * No function here logs or returns the password, or any part of it, in any form.
 */
#ifndef HF_PASSWORD_H
#define HF_PASSWORD_H

#include "hf_base.h"
#include "hf_err.h"

/* Size of a hash string with its NUL (libsodium's crypto_pwhash_STRBYTES; checked at compile time). */
#define HF_PW_HASH_MAX 128
#define HF_PW_MIN_CHARS 12
#define HF_PW_MAX_CHARS 128
/* Passwords this long or longer are not given to cracklib (see hf_password_acceptable). */
#define HF_PW_CRACKLIB_BELOW 20

/* Hashes pw (NUL-terminated, at most 4 x HF_PW_MAX_CHARS bytes) into out as a "$argon2id$..." string.
 * Needs hf_crypto_init() first. Takes about 20 MiB of memory and some tens of milliseconds: call it
 * outside any lock. HF_EINVAL for NULL, HF_ETOOBIG for a longer pw, HF_EINTERNAL when libsodium fails
 * (out of memory). out is written only on success. Thread-safe. */
HF_MUST_CHECK hf_err hf_password_hash(const char *pw, char out[HF_PW_HASH_MAX]);

/* True when pw matches hash (Argon2id or Argon2i, any parameters). False for a wrong password and for a
 * malformed, NULL or unterminated (no NUL within HF_PW_HASH_MAX bytes) hash. Constant time in pw.
 * Thread-safe. */
bool hf_password_verify(const char *hash, const char *pw);

/* True when hash was not made with the current algorithm and parameters (also for a malformed hash): after
 * a successful verify, hash the password again and store the new hash. Thread-safe. */
bool hf_password_needs_rehash(const char *hash);

/* Policy check for a new staff password, in this order:
 *  - valid UTF-8 (no overlong forms or surrogates) without control characters (C0, DEL, C1);
 *  - 12..128 code points;
 *  - does not contain username, compared case-insensitively (ASCII), when username has 3 or more
 *    characters (NULL = no user name check);
 *  - not one of a built-in list of very common long passwords (case-insensitive);
 *  - not one character repeated, not one run of consecutive digits or letters (up or down, 9 wrapping to
 *    0: "123456789012"), and not a shorter sequence repeated ("abcabcabcabc", "passwordpassword");
 *  - for passwords under HF_PW_CRACKLIB_BELOW code points, cracklib's FascistCheckUser (dictionary
 *    words, reversed words, too few different characters, systematic sequences, the user name). Longer
 *    ones skip cracklib: it rejects good passphrases for any run of 5 consecutive characters anywhere
 *    ("bring 12345678 cakes to the office") or for repeating short words, and a passphrase that long
 *    withstands guessing without it.
 * On rejection returns false and writes one English sentence saying what to change into why (always
 * NUL-terminated, cut to why_cap; why may be NULL when why_cap is 0). The sentence never contains the
 * password. Thread-safe (cracklib is not, and runs under a lock). If cracklib's dictionary is missing the
 * password is rejected with a sentence asking to tell the administrator, and the error is logged. */
bool hf_password_acceptable(const char *pw, const char *username, char *why, size_t why_cap);

#endif
