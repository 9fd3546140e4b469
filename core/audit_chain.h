/* audit_chain.h - the audit trail's cryptography, without the database: keys, canonical entry bytes,
 * chain hashes, MACs, record digests and checkpoint signatures.
 *
 * Kept apart from audit.c so that the exact bytes that are hashed and signed can be unit-tested without a
 * server, and so that one file (audit_chain.c) holds every libsodium call of the audit trail.
 *
 * Canonical entry (version 1), all integers big-endian, every text field length-prefixed, so no two
 * different entries encode to the same bytes:
 *     "hifadhi-audit-entry-v1"                22 bytes, no NUL
 *     id                                      u64
 *     stripe                                  u16
 *     seq                                     u64
 *     occurred_at, actor_type, actor, action, entity, record, outcome, source, request_id,
 *     before_digest, after_digest, detail     each u32 length + bytes (a digest is 0 or 32 bytes)
 * occurred_at is the text MariaDB gives back, "YYYY-MM-DD HH:MM:SS.ffffff" (UTC).
 *     hash = SHA-256(prev_hash || canonical)      mac = BLAKE2b-256(key = audit-mac.key, hash)
 * A record digest is BLAKE2b-256(key = audit-mac.key, domain || 0x00 || json); one domain, "audit.record",
 * for before and after alike, so an auditor can follow a record: one change's after-digest is the next
 * change's before-digest. A checkpoint signature is Ed25519 (audit-sign.key) over
 *     "hifadhi-audit-checkpoint-v1" || stripe (u16) || seq (u64) || hash.
 *
 * Thread-safe once the keys are loaded (they are only read).
 */
#ifndef HF_CORE_AUDIT_CHAIN_H
#define HF_CORE_AUDIT_CHAIN_H

#include "hf_base.h"
#include "hf_buf.h"
#include "hf_err.h"

#define AUDIT_HASH_LEN 32
#define AUDIT_SIG_LEN 64
#define AUDIT_PUBKEY_LEN 32
#define AUDIT_KEY_ID_LEN 16 /* hex of the public key's first 8 bytes */
/* "YYYY-MM-DD HH:MM:SS.ffffff" */
#define AUDIT_TS_LEN 26

/* Key files in the key folder. */
#define AUDIT_MAC_KEY_FILE "audit-mac.key"
#define AUDIT_SIGN_KEY_FILE "audit-sign.key"
#define AUDIT_SIGN_PUB_FILE "audit-sign.pub"

/* One entry as it is hashed. Every text field is borrowed and need not be NUL-terminated; a digest is
 * NULL or AUDIT_HASH_LEN bytes. */
struct audit_entry {
	uint64_t id;
	unsigned stripe; /* 0..65535 */
	uint64_t seq;
	struct hf_str occurred_at, actor_type, actor, action, entity, record, outcome, source, request_id;
	const uint8_t *before_digest;
	const uint8_t *after_digest;
	struct hf_str detail;
};

/* The MAC key and the checkpoint signing key pair (secrets in sodium_malloc memory). */
struct audit_chain_keys;

/* Creates dir (0700) and, where missing, audit-mac.key (32 random bytes, hex, 0600), audit-sign.key (an
 * Ed25519 seed, hex, 0600) and audit-sign.pub (the public key, hex, 0644). Never overwrites: an existing
 * key is kept, and audit-sign.pub is derived from an existing audit-sign.key. HF_EINVAL when
 * audit-sign.pub exists without audit-sign.key (a new key would not match it), HF_EIO on a file error. */
HF_MUST_CHECK hf_err audit_chain_keygen(const char *dir);
/* Loads the three files of dir; audit-sign.pub must match audit-sign.key. *out is owned:
 * audit_chain_keys_free. HF_EIO if a file is missing or unreadable, HF_EINVAL if one is malformed. */
HF_MUST_CHECK hf_err audit_chain_keys_load(const char *dir, struct audit_chain_keys **out);
void audit_chain_keys_free(struct audit_chain_keys *k);
/* The signing key's id as stored with checkpoints (16 hex characters, NUL-terminated; borrowed). */
const char *audit_chain_key_id(const struct audit_chain_keys *k);
const uint8_t *audit_chain_public_key(const struct audit_chain_keys *k);

/* Appends the canonical bytes of e to out. HF_ETOOBIG when out's cap is hit. */
HF_MUST_CHECK hf_err audit_chain_canonical(const struct audit_entry *e, struct hf_buf *out);
/* SHA-256(prev || canonical). scratch is reset and reused (no allocation once it is large enough). */
HF_MUST_CHECK hf_err audit_chain_hash(const uint8_t prev[AUDIT_HASH_LEN], const struct audit_entry *e,
				      struct hf_buf *scratch, uint8_t out[AUDIT_HASH_LEN]);
void audit_chain_mac(const struct audit_chain_keys *k, const uint8_t hash[AUDIT_HASH_LEN], uint8_t out[AUDIT_HASH_LEN]);
/* Constant-time check of a stored MAC. */
bool audit_chain_mac_ok(const struct audit_chain_keys *k, const uint8_t hash[AUDIT_HASH_LEN],
			const uint8_t mac[AUDIT_HASH_LEN]);
/* Keyed digest of a record's JSON text under domain ("audit.before", "audit.after"). */
void audit_chain_digest(const struct audit_chain_keys *k, const char *domain, const void *p, size_t n,
			uint8_t out[AUDIT_HASH_LEN]);

void audit_chain_checkpoint_sign(const struct audit_chain_keys *k, unsigned stripe, uint64_t seq,
				 const uint8_t hash[AUDIT_HASH_LEN], uint8_t sig[AUDIT_SIG_LEN]);
/* Whether sig is a valid checkpoint signature under public key pk. */
bool audit_chain_checkpoint_ok(const uint8_t pk[AUDIT_PUBKEY_LEN], unsigned stripe, uint64_t seq,
			       const uint8_t hash[AUDIT_HASH_LEN], const uint8_t sig[AUDIT_SIG_LEN]);

/* "YYYY-MM-DD HH:MM:SS.ffffff" of the UTC wall clock into out (AUDIT_TS_LEN + 1 bytes). */
void audit_chain_now(char out[AUDIT_TS_LEN + 1]);

#endif
