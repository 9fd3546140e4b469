/* audit_chain.c - the audit trail's cryptography on libsodium: key files, canonical bytes, hashes, MACs,
 * digests and checkpoint signatures.
 *
 * The only file of the audit trail that includes sodium.h (the adapter rule). Nothing here touches the
 * database, so the exact bytes that go into a hash or a signature are unit-tested without one
 * (tests/unit/test_audit_canon.c). The format is described in audit_chain.h; changing a single byte of it
 * makes every stored entry fail verification, so it is versioned by its magic prefixes.
 */
#include "hf_base.h"
#include "audit_chain.h"
#include "hf_log.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAC_KEY_LEN 32
#define SEED_LEN crypto_sign_SEEDBYTES

static const char ENTRY_MAGIC[] = "hifadhi-audit-entry-v1";
static const char CHECKPOINT_MAGIC[] = "hifadhi-audit-checkpoint-v1";

struct audit_chain_keys {
	uint8_t *mac; /* sodium_malloc'd, MAC_KEY_LEN */
	uint8_t *sk;  /* sodium_malloc'd, crypto_sign_SECRETKEYBYTES */
	uint8_t pk[AUDIT_PUBKEY_LEN];
	char key_id[AUDIT_KEY_ID_LEN + 1];
};

_Static_assert(AUDIT_PUBKEY_LEN == crypto_sign_PUBLICKEYBYTES, "Ed25519 public key size");
_Static_assert(AUDIT_SIG_LEN == crypto_sign_BYTES, "Ed25519 signature size");
_Static_assert(AUDIT_HASH_LEN == crypto_hash_sha256_BYTES, "SHA-256 size");

/* ------------------------------------------------------------------ key files */

static hf_err path_in(const char *dir, const char *name, char *out, size_t out_size)
{
	int n = snprintf(out, out_size, "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= out_size) {
		hf_log(HF_LOG_ERROR, "core.audit", "msg=\"key folder path too long\"");
		return HF_EINVAL;
	}
	return HF_OK;
}

static bool file_exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

/* Writes text to a NEW file with exactly this mode (whatever the umask). *existed is set, and nothing
 * written, when the file is already there: keys are never overwritten. */
static hf_err write_new_file(const char *path, const char *text, size_t len, mode_t mode, bool *existed)
{
	*existed = false;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		if (errno == EEXIST) {
			*existed = true;
			return HF_OK;
		}
		hf_log(HF_LOG_ERROR, "core.audit", "msg=\"cannot create key file\" path=%s errno=%d", path, errno);
		return HF_EIO;
	}
	bool ok = fchmod(fd, mode) == 0;
	size_t done = 0;
	while (ok && done < len) {
		ssize_t w = write(fd, text + done, len - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			ok = false;
		else
			done += (size_t)w;
	}
	ok = fsync(fd) == 0 && ok;
	ok = close(fd) == 0 && ok;
	if (!ok) {
		hf_log(HF_LOG_ERROR, "core.audit", "msg=\"cannot write key file\" path=%s errno=%d", path, errno);
		unlink(path);
		return HF_EIO;
	}
	return HF_OK;
}

/* Writes bin as one line of lower-case hex into a new file. */
static hf_err write_hex_file(const char *path, const uint8_t *bin, size_t n, mode_t mode, bool *existed)
{
	char hex[2 * 64 + 2];
	HF_ASSERT(2 * n + 2 <= sizeof(hex));
	sodium_bin2hex(hex, sizeof(hex), bin, n);
	hex[2 * n] = '\n';
	hf_err err = write_new_file(path, hex, 2 * n + 1, mode, existed);
	sodium_memzero(hex, sizeof(hex));
	return err;
}

/* Reads exactly n bytes written as hex (surrounding whitespace ignored) into out. The text passes only
 * through a stack buffer that is wiped. */
static hf_err read_hex_file(const char *path, uint8_t *out, size_t n, bool secret)
{
	char hex[2 * 64 + 16];
	HF_ASSERT(2 * n + 16 <= sizeof(hex));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		hf_log(HF_LOG_ERROR, "core.audit", "msg=\"cannot open key file (run keygen?)\" path=%s errno=%d", path,
		       errno);
		return HF_EIO;
	}
	struct stat st;
	if (secret && fstat(fd, &st) == 0 && (st.st_mode & 077))
		hf_log(HF_LOG_WARN, "core.audit", "msg=\"secret key file is readable by other users: chmod 0600\" path=%s",
		       path);
	size_t len = 0;
	hf_err err = HF_OK;
	while (len < sizeof(hex)) {
		ssize_t r = read(fd, hex + len, sizeof(hex) - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err = HF_EIO;
			break;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	size_t start = 0;
	while (len && (hex[len - 1] == '\n' || hex[len - 1] == '\r' || hex[len - 1] == ' '))
		len--;
	while (start < len && (hex[start] == ' ' || hex[start] == '\n'))
		start++;
	size_t got = 0;
	if (!err && (len - start != 2 * n || sodium_hex2bin(out, n, hex + start, len - start, NULL, &got, NULL) != 0 ||
		     got != n))
		err = HF_EINVAL;
	if (err)
		hf_log(HF_LOG_ERROR, "core.audit", "msg=\"key file is not %zu bytes of hex\" path=%s", n, path);
	sodium_memzero(hex, sizeof(hex));
	return err;
}

hf_err audit_chain_keygen(const char *dir)
{
	char mac_path[4096], key_path[4096], pub_path[4096];
	uint8_t secret[MAC_KEY_LEN], sk[crypto_sign_SECRETKEYBYTES], pk[AUDIT_PUBKEY_LEN];
	bool existed = false;
	_Static_assert(SEED_LEN == MAC_KEY_LEN, "one buffer for both secrets");
	if (sodium_init() < 0)
		return HF_EINTERNAL;
	hf_err err = path_in(dir, AUDIT_MAC_KEY_FILE, mac_path, sizeof(mac_path));
	if (!err)
		err = path_in(dir, AUDIT_SIGN_KEY_FILE, key_path, sizeof(key_path));
	if (!err)
		err = path_in(dir, AUDIT_SIGN_PUB_FILE, pub_path, sizeof(pub_path));
	if (err)
		return err;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		hf_log(HF_LOG_ERROR, "core.audit", "msg=\"cannot create key folder\" path=%s errno=%d", dir, errno);
		return HF_EIO;
	}

	randombytes_buf(secret, sizeof(secret));
	err = write_hex_file(mac_path, secret, sizeof(secret), 0600, &existed);
	if (err)
		goto out_wipe;

	bool key_there = file_exists(key_path), pub_there = file_exists(pub_path);
	if (!key_there && pub_there) {
		hf_log(HF_LOG_ERROR, "core.audit",
		       "msg=\"audit-sign.pub exists without audit-sign.key: restore the key or move the .pub away\" dir=%s",
		       dir);
		err = HF_EINVAL;
		goto out_wipe;
	}
	if (!key_there) {
		randombytes_buf(secret, sizeof(secret));
		err = write_hex_file(key_path, secret, sizeof(secret), 0600, &existed);
		if (err)
			goto out_wipe;
	}
	if (!pub_there) {
		/* From the file, not from memory: another keygen may have won the race to create it. */
		err = read_hex_file(key_path, secret, SEED_LEN, true);
		if (err)
			goto out_wipe;
		crypto_sign_seed_keypair(pk, sk, secret);
		err = write_hex_file(pub_path, pk, sizeof(pk), 0644, &existed);
	}
out_wipe:
	sodium_memzero(secret, sizeof(secret));
	sodium_memzero(sk, sizeof(sk));
	return err;
}

hf_err audit_chain_keys_load(const char *dir, struct audit_chain_keys **out)
{
	char path[4096];
	uint8_t seed[SEED_LEN], pub[AUDIT_PUBKEY_LEN];
	if (sodium_init() < 0)
		return HF_EINTERNAL;
	struct audit_chain_keys *k = hf_xcalloc(1, sizeof(*k));
	k->mac = sodium_malloc(MAC_KEY_LEN);
	k->sk = sodium_malloc(crypto_sign_SECRETKEYBYTES);
	HF_ASSERT(k->mac != NULL && k->sk != NULL);
	hf_err err = path_in(dir, AUDIT_MAC_KEY_FILE, path, sizeof(path));
	if (!err)
		err = read_hex_file(path, k->mac, MAC_KEY_LEN, true);
	if (!err)
		err = path_in(dir, AUDIT_SIGN_KEY_FILE, path, sizeof(path));
	if (!err)
		err = read_hex_file(path, seed, sizeof(seed), true);
	if (!err)
		err = path_in(dir, AUDIT_SIGN_PUB_FILE, path, sizeof(path));
	if (!err)
		err = read_hex_file(path, pub, sizeof(pub), false);
	if (err)
		goto out_fail;
	crypto_sign_seed_keypair(k->pk, k->sk, seed);
	if (sodium_memcmp(k->pk, pub, sizeof(pub)) != 0) {
		hf_log(HF_LOG_ERROR, "core.audit", "msg=\"audit-sign.pub does not belong to audit-sign.key\" dir=%s", dir);
		err = HF_EINVAL;
		goto out_fail;
	}
	sodium_bin2hex(k->key_id, sizeof(k->key_id), k->pk, AUDIT_KEY_ID_LEN / 2);
	sodium_memzero(seed, sizeof(seed));
	*out = k;
	return HF_OK;
out_fail:
	sodium_memzero(seed, sizeof(seed));
	audit_chain_keys_free(k);
	return err;
}

void audit_chain_keys_free(struct audit_chain_keys *k)
{
	if (!k)
		return;
	sodium_free(k->mac); /* wipes before freeing; NULL is a no-op */
	sodium_free(k->sk);
	sodium_memzero(k, sizeof(*k));
	free(k);
}

const char *audit_chain_key_id(const struct audit_chain_keys *k)
{
	return k->key_id;
}

const uint8_t *audit_chain_public_key(const struct audit_chain_keys *k)
{
	return k->pk;
}

/* ------------------------------------------------------------------ canonical bytes and hashes */

static void put_be(uint8_t *p, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

static hf_err put_field(struct hf_buf *out, const void *p, size_t n)
{
	uint8_t len[4];
	if (n > UINT32_MAX)
		return HF_ETOOBIG;
	put_be(len, n, sizeof(len));
	hf_err err = hf_buf_append(out, len, sizeof(len));
	if (!err && n)
		err = hf_buf_append(out, p, n);
	return err;
}

hf_err audit_chain_canonical(const struct audit_entry *e, struct hf_buf *out)
{
	uint8_t fixed[8 + 2 + 8];
	HF_ASSERT(e->stripe <= 0xFFFF);
	put_be(fixed, e->id, 8);
	put_be(fixed + 8, e->stripe, 2);
	put_be(fixed + 10, e->seq, 8);
	hf_err err = hf_buf_append(out, ENTRY_MAGIC, sizeof(ENTRY_MAGIC) - 1);
	if (!err)
		err = hf_buf_append(out, fixed, sizeof(fixed));
	const struct hf_str *text[] = {&e->occurred_at, &e->actor_type, &e->actor,  &e->action,	   &e->entity,
				       &e->record,	&e->outcome,	&e->source, &e->request_id};
	for (size_t i = 0; !err && i < HF_ARRAY_LEN(text); i++)
		err = put_field(out, text[i]->ptr, text[i]->len);
	if (!err)
		err = put_field(out, e->before_digest, e->before_digest ? AUDIT_HASH_LEN : 0);
	if (!err)
		err = put_field(out, e->after_digest, e->after_digest ? AUDIT_HASH_LEN : 0);
	if (!err)
		err = put_field(out, e->detail.ptr, e->detail.len);
	return err;
}

hf_err audit_chain_hash(const uint8_t prev[AUDIT_HASH_LEN], const struct audit_entry *e, struct hf_buf *scratch,
			uint8_t out[AUDIT_HASH_LEN])
{
	hf_buf_reset(scratch);
	hf_err err = audit_chain_canonical(e, scratch);
	if (err)
		return err;
	crypto_hash_sha256_state st;
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, prev, AUDIT_HASH_LEN);
	crypto_hash_sha256_update(&st, (const uint8_t *)scratch->data, scratch->len);
	crypto_hash_sha256_final(&st, out);
	return HF_OK;
}

void audit_chain_mac(const struct audit_chain_keys *k, const uint8_t hash[AUDIT_HASH_LEN], uint8_t out[AUDIT_HASH_LEN])
{
	crypto_generichash(out, AUDIT_HASH_LEN, hash, AUDIT_HASH_LEN, k->mac, MAC_KEY_LEN);
}

bool audit_chain_mac_ok(const struct audit_chain_keys *k, const uint8_t hash[AUDIT_HASH_LEN],
			const uint8_t mac[AUDIT_HASH_LEN])
{
	uint8_t want[AUDIT_HASH_LEN];
	audit_chain_mac(k, hash, want);
	return sodium_memcmp(want, mac, AUDIT_HASH_LEN) == 0;
}

void audit_chain_digest(const struct audit_chain_keys *k, const char *domain, const void *p, size_t n,
			uint8_t out[AUDIT_HASH_LEN])
{
	crypto_generichash_state st;
	crypto_generichash_init(&st, k->mac, MAC_KEY_LEN, AUDIT_HASH_LEN);
	crypto_generichash_update(&st, (const uint8_t *)domain, strlen(domain) + 1); /* with its NUL: a separator */
	crypto_generichash_update(&st, p, n);
	crypto_generichash_final(&st, out, AUDIT_HASH_LEN);
}

/* ------------------------------------------------------------------ checkpoints */

#define CHECKPOINT_MSG_LEN (sizeof(CHECKPOINT_MAGIC) - 1 + 2 + 8 + AUDIT_HASH_LEN)

static void checkpoint_msg(unsigned stripe, uint64_t seq, const uint8_t hash[AUDIT_HASH_LEN],
			   uint8_t msg[CHECKPOINT_MSG_LEN])
{
	size_t m = sizeof(CHECKPOINT_MAGIC) - 1;
	HF_ASSERT(stripe <= 0xFFFF);
	memcpy(msg, CHECKPOINT_MAGIC, m);
	put_be(msg + m, stripe, 2);
	put_be(msg + m + 2, seq, 8);
	memcpy(msg + m + 10, hash, AUDIT_HASH_LEN);
}

void audit_chain_checkpoint_sign(const struct audit_chain_keys *k, unsigned stripe, uint64_t seq,
				 const uint8_t hash[AUDIT_HASH_LEN], uint8_t sig[AUDIT_SIG_LEN])
{
	uint8_t msg[CHECKPOINT_MSG_LEN];
	checkpoint_msg(stripe, seq, hash, msg);
	crypto_sign_detached(sig, NULL, msg, sizeof(msg), k->sk);
}

bool audit_chain_checkpoint_ok(const uint8_t pk[AUDIT_PUBKEY_LEN], unsigned stripe, uint64_t seq,
			       const uint8_t hash[AUDIT_HASH_LEN], const uint8_t sig[AUDIT_SIG_LEN])
{
	uint8_t msg[CHECKPOINT_MSG_LEN];
	checkpoint_msg(stripe, seq, hash, msg);
	return crypto_sign_verify_detached(sig, msg, sizeof(msg), pk) == 0;
}

/* ------------------------------------------------------------------ time */

void audit_chain_now(char out[AUDIT_TS_LEN + 1])
{
	struct timespec ts;
	struct tm tm;
	HF_ASSERT(clock_gettime(CLOCK_REALTIME, &ts) == 0);
	HF_ASSERT(gmtime_r(&ts.tv_sec, &tm) != NULL);
	int n = snprintf(out, AUDIT_TS_LEN + 1, "%04d-%02d-%02d %02d:%02d:%02d.%06ld", tm.tm_year + 1900, tm.tm_mon + 1,
			 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000);
	HF_ASSERT(n == AUDIT_TS_LEN);
}
