/* test_audit_canon.c - the audit trail's bytes: canonical entries, hash chains, MACs, checkpoints, key files.
 *
 * An auditor relies on audit verify to notice any edit of an entry by someone with database access. That
 * holds only if every stored field reaches the hash (a field left out could be changed unnoticed), if
 * neighbouring fields cannot trade bytes (length prefixes), if the MAC fails under any other key, and if a
 * checkpoint signature breaks with any flipped bit. No database is needed: core/audit_chain.c is pure.
 */
#include "hf_base.h"

#include "../../core/audit_chain.c"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "hf_test.h"

static char g_dir[64];
static struct audit_chain_keys *g_keys;

static const uint8_t BEFORE[AUDIT_HASH_LEN] = {1, 2, 3};
static const uint8_t AFTER[AUDIT_HASH_LEN] = {4, 5, 6};

static struct audit_entry sample(void)
{
	return (struct audit_entry){
		.id = 123456789012345ULL,
		.stripe = 3,
		.seq = 12,
		.occurred_at = HF_STR_LIT("2025-03-04 05:06:07.123456"),
		.actor_type = HF_STR_LIT("staff"),
		.actor = HF_STR_LIT("wanjiku.k"),
		.action = HF_STR_LIT("individual.update"),
		.entity = HF_STR_LIT("individual"),
		.record = HF_STR_LIT("100000017"),
		.outcome = HF_STR_LIT("ok"),
		.source = HF_STR_LIT("10.0.0.7"),
		.request_id = HF_STR_LIT("6f1c2a9e-1b2c-4d5e-8f90-a1b2c3d4e5f6"),
		.before_digest = BEFORE,
		.after_digest = AFTER,
		.detail = HF_STR_LIT("{\"fields\":[\"phone\"]}"),
	};
}

static void canon(const struct audit_entry *e, struct hf_buf *out)
{
	hf_buf_init(out, 1 << 16);
	HF_ASSERT(audit_chain_canonical(e, out) == HF_OK);
}

static bool same_bytes(const struct hf_buf *a, const struct hf_buf *b)
{
	return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

/* Every field, changed alone, changes the canonical bytes (and so the hash). */
static void test_every_field_counts(void)
{
	struct hf_buf base, other;
	struct audit_entry e0 = sample();
	canon(&e0, &base);
	static const uint8_t OTHER_DIGEST[AUDIT_HASH_LEN] = {9};
	for (int f = 0; f < 15; f++) {
		struct audit_entry e = sample();
		const char *name = "";
		switch (f) {
		case 0: e.id++; name = "id"; break;
		case 1: e.stripe++; name = "stripe"; break;
		case 2: e.seq++; name = "seq"; break;
		case 3: e.occurred_at = HF_STR_LIT("2025-03-04 05:06:07.123457"); name = "occurred_at"; break;
		case 4: e.actor_type = HF_STR_LIT("kiosk"); name = "actor_type"; break;
		case 5: e.actor = HF_STR_LIT("wanjiku.m"); name = "actor"; break;
		case 6: e.action = HF_STR_LIT("individual.read"); name = "action"; break;
		case 7: e.entity = HF_STR_LIT("household"); name = "entity"; break;
		case 8: e.record = HF_STR_LIT("100000025"); name = "record"; break;
		case 9: e.outcome = HF_STR_LIT("denied"); name = "outcome"; break;
		case 10: e.source = HF_STR_LIT("10.0.0.8"); name = "source"; break;
		case 11: e.request_id = HF_STR_LIT(""); name = "request_id"; break;
		case 12: e.before_digest = OTHER_DIGEST; name = "before_digest"; break;
		case 13: e.after_digest = NULL; name = "after_digest"; break;
		case 14: e.detail = HF_STR_LIT("{\"fields\":[\"name\"]}"); name = "detail"; break;
		}
		canon(&e, &other);
		HF_CHECK_MSG(!same_bytes(&base, &other), "changing %s left the canonical bytes unchanged", name);
		hf_buf_release(&other);
	}
	/* Deterministic: the same entry, the same bytes. */
	canon(&e0, &other);
	HF_CHECK(same_bytes(&base, &other));
	hf_buf_release(&other);
	hf_buf_release(&base);
}

/* Length prefixes: moving bytes from one field to its neighbour changes the encoding. */
static void test_fields_do_not_run_together(void)
{
	struct hf_buf a, b;
	struct audit_entry e1 = sample(), e2 = sample();
	e1.entity = HF_STR_LIT("individual");
	e1.record = HF_STR_LIT("1");
	e2.entity = HF_STR_LIT("individual1");
	e2.record = HF_STR_LIT("");
	canon(&e1, &a);
	canon(&e2, &b);
	HF_CHECK(!same_bytes(&a, &b));
	hf_buf_release(&a);
	hf_buf_release(&b);
	/* No digest and an empty digest field are one thing; a digest and no digest are not. */
	struct audit_entry e3 = sample(), e4 = sample();
	e3.before_digest = NULL;
	e4.after_digest = NULL;
	e4.before_digest = AFTER;
	e3.after_digest = AFTER;
	canon(&e3, &a);
	canon(&e4, &b);
	HF_CHECK_MSG(!same_bytes(&a, &b), "a digest moved from after to before went unnoticed");
	hf_buf_release(&a);
	hf_buf_release(&b);
}

/* The format is pinned: a change to it would fail every entry already stored. */
static void test_canonical_layout(void)
{
	struct hf_buf b;
	struct audit_entry e = sample();
	canon(&e, &b);
	const uint8_t *p = (const uint8_t *)b.data;
	HF_CHECK(b.len > 40 && memcmp(p, "hifadhi-audit-entry-v1", 22) == 0);
	static const uint8_t fixed[] = {0x00, 0x00, 0x70, 0x48, 0x86, 0x0d, 0xdf, 0x79, /* id */
					0x00, 0x03,					/* stripe */
					0, 0, 0, 0, 0, 0, 0, 12,			/* seq */
					0, 0, 0, 26};					/* len(occurred_at) */
	HF_CHECK(memcmp(p + 22, fixed, sizeof(fixed)) == 0);
	HF_CHECK(memcmp(p + 22 + sizeof(fixed), "2025-03-04 05:06:07.123456", 26) == 0);
	size_t want = 22 + 18 + 12 * 4 + 26 + 5 + 9 + 17 + 10 + 9 + 2 + 8 + 36 + 32 + 32 + 20;
	HF_CHECK_MSG(b.len == want, "length %zu, expected %zu", b.len, want);
	/* The hash is SHA-256 over prev || canonical. */
	uint8_t prev[AUDIT_HASH_LEN] = {0}, h[AUDIT_HASH_LEN], want_h[AUDIT_HASH_LEN];
	struct hf_buf scratch, all;
	hf_buf_init(&scratch, 1 << 16);
	hf_buf_init(&all, 1 << 16);
	HF_ASSERT(hf_buf_append(&all, prev, sizeof(prev)) == HF_OK && hf_buf_append(&all, b.data, b.len) == HF_OK);
	crypto_hash_sha256(want_h, (const uint8_t *)all.data, all.len);
	HF_CHECK(audit_chain_hash(prev, &e, &scratch, h) == HF_OK && memcmp(h, want_h, sizeof(h)) == 0);
	hf_buf_release(&scratch);
	hf_buf_release(&all);
	hf_buf_release(&b);
}

/* Each hash depends on the one before: changing entry 1 changes every later hash. */
static void test_chain(void)
{
	uint8_t zero[AUDIT_HASH_LEN] = {0}, h[3][AUDIT_HASH_LEN], h2[3][AUDIT_HASH_LEN];
	struct hf_buf scratch;
	hf_buf_init(&scratch, 1 << 16);
	struct audit_entry e[3];
	for (int i = 0; i < 3; i++) {
		e[i] = sample();
		e[i].seq = (uint64_t)i + 1;
		e[i].id += (uint64_t)i;
	}
	for (int i = 0; i < 3; i++)
		HF_ASSERT(audit_chain_hash(i ? h[i - 1] : zero, &e[i], &scratch, h[i]) == HF_OK);
	HF_CHECK(memcmp(h[0], h[1], AUDIT_HASH_LEN) != 0 && memcmp(h[1], h[2], AUDIT_HASH_LEN) != 0);
	e[0].record = HF_STR_LIT("100000033");
	for (int i = 0; i < 3; i++)
		HF_ASSERT(audit_chain_hash(i ? h2[i - 1] : zero, &e[i], &scratch, h2[i]) == HF_OK);
	for (int i = 0; i < 3; i++)
		HF_CHECK_MSG(memcmp(h[i], h2[i], AUDIT_HASH_LEN) != 0, "hash %d did not change", i);
	/* Same entry, other predecessor: other hash. */
	uint8_t x[AUDIT_HASH_LEN];
	HF_ASSERT(audit_chain_hash(h[0], &e[2], &scratch, x) == HF_OK);
	HF_CHECK(memcmp(x, h2[2], AUDIT_HASH_LEN) != 0);
	hf_buf_release(&scratch);
}

static void test_keygen_files(void)
{
	char path[160];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", g_dir, AUDIT_MAC_KEY_FILE);
	HF_CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0600);
	snprintf(path, sizeof(path), "%s/%s", g_dir, AUDIT_SIGN_KEY_FILE);
	HF_CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0600);
	snprintf(path, sizeof(path), "%s/%s", g_dir, AUDIT_SIGN_PUB_FILE);
	HF_CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0644);
	HF_CHECK(stat(g_dir, &st) == 0 && (st.st_mode & 07777) == 0700);
	/* Never overwritten: a second keygen keeps the same keys. */
	HF_CHECK(audit_chain_keygen(g_dir) == HF_OK);
	struct audit_chain_keys *again = NULL;
	HF_CHECK(audit_chain_keys_load(g_dir, &again) == HF_OK);
	if (again) {
		HF_CHECK(memcmp(audit_chain_public_key(again), audit_chain_public_key(g_keys), AUDIT_PUBKEY_LEN) == 0);
		uint8_t h[AUDIT_HASH_LEN] = {7}, m1[AUDIT_HASH_LEN], m2[AUDIT_HASH_LEN];
		audit_chain_mac(again, h, m1);
		audit_chain_mac(g_keys, h, m2);
		HF_CHECK(memcmp(m1, m2, sizeof(m1)) == 0);
		HF_CHECK(strlen(audit_chain_key_id(again)) == AUDIT_KEY_ID_LEN);
		audit_chain_keys_free(again);
	}
	/* A .pub that does not belong to the key is refused at load. */
	char dir2[64], p2[160];
	hf_test_tmpdir(dir2, sizeof(dir2));
	HF_CHECK(audit_chain_keygen(dir2) == HF_OK);
	snprintf(p2, sizeof(p2), "%s/%s", dir2, AUDIT_SIGN_PUB_FILE);
	unlink(p2);
	hf_test_write_file(dir2, AUDIT_SIGN_PUB_FILE,
			   "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a\n", 0644, p2, sizeof(p2));
	struct audit_chain_keys *bad = NULL;
	HF_CHECK(audit_chain_keys_load(dir2, &bad) == HF_EINVAL && bad == NULL);
	/* A .pub without its key: keygen refuses to make a key that would not match it. */
	snprintf(p2, sizeof(p2), "%s/%s", dir2, AUDIT_SIGN_KEY_FILE);
	unlink(p2);
	HF_CHECK(audit_chain_keygen(dir2) == HF_EINVAL);
	/* A key without its .pub: keygen derives the .pub. */
	hf_test_rmtree(dir2);
	hf_test_tmpdir(dir2, sizeof(dir2));
	HF_CHECK(audit_chain_keygen(dir2) == HF_OK);
	snprintf(p2, sizeof(p2), "%s/%s", dir2, AUDIT_SIGN_PUB_FILE);
	unlink(p2);
	HF_CHECK(audit_chain_keygen(dir2) == HF_OK);
	HF_CHECK(audit_chain_keys_load(dir2, &bad) == HF_OK);
	audit_chain_keys_free(bad);
	/* A missing folder is an I/O error, a malformed key a bad value. */
	HF_CHECK(audit_chain_keys_load("/nonexistent/hf-audit", &bad) == HF_EIO);
	snprintf(p2, sizeof(p2), "%s/%s", dir2, AUDIT_MAC_KEY_FILE);
	unlink(p2);
	hf_test_write_file(dir2, AUDIT_MAC_KEY_FILE, "not hex\n", 0600, p2, sizeof(p2));
	HF_CHECK(audit_chain_keys_load(dir2, &bad) == HF_EINVAL);
	hf_test_rmtree(dir2);
}

/* The MAC verifies under its key only, and only for its hash. */
static void test_mac(void)
{
	uint8_t h[AUDIT_HASH_LEN], mac[AUDIT_HASH_LEN];
	for (size_t i = 0; i < sizeof(h); i++)
		h[i] = (uint8_t)i;
	audit_chain_mac(g_keys, h, mac);
	HF_CHECK(audit_chain_mac_ok(g_keys, h, mac));
	char dir2[64];
	hf_test_tmpdir(dir2, sizeof(dir2));
	struct audit_chain_keys *other = NULL;
	HF_ASSERT(audit_chain_keygen(dir2) == HF_OK && audit_chain_keys_load(dir2, &other) == HF_OK);
	HF_CHECK_MSG(!audit_chain_mac_ok(other, h, mac), "a MAC verified under another deployment's key");
	audit_chain_keys_free(other);
	hf_test_rmtree(dir2);
	h[31] ^= 1;
	HF_CHECK(!audit_chain_mac_ok(g_keys, h, mac));
	h[31] ^= 1;
	mac[0] ^= 0x80;
	HF_CHECK(!audit_chain_mac_ok(g_keys, h, mac));
}

/* Digests are keyed and domain-separated: before and after of the same JSON differ. */
static void test_digest(void)
{
	static const char json[] = "{\"ben_no\":\"100000017\",\"phone\":\"+254712345678\"}";
	uint8_t b[AUDIT_HASH_LEN], a[AUDIT_HASH_LEN], b2[AUDIT_HASH_LEN], plain[AUDIT_HASH_LEN];
	audit_chain_digest(g_keys, "audit.before", json, strlen(json), b);
	audit_chain_digest(g_keys, "audit.after", json, strlen(json), a);
	audit_chain_digest(g_keys, "audit.before", json, strlen(json), b2);
	crypto_generichash(plain, sizeof(plain), (const uint8_t *)json, strlen(json), NULL, 0);
	HF_CHECK(memcmp(b, b2, sizeof(b)) == 0);
	HF_CHECK(memcmp(a, b, sizeof(a)) != 0);
	HF_CHECK_MSG(memcmp(plain, b, sizeof(b)) != 0, "the digest is guessable without the key");
}

/* A checkpoint verifies under the public key, and fails after any single flipped bit. */
static void test_checkpoint(void)
{
	uint8_t h[AUDIT_HASH_LEN], sig[AUDIT_SIG_LEN];
	const uint8_t *pk = audit_chain_public_key(g_keys);
	for (size_t i = 0; i < sizeof(h); i++)
		h[i] = (uint8_t)(i * 7);
	audit_chain_checkpoint_sign(g_keys, 5, 4000, h, sig);
	HF_CHECK(audit_chain_checkpoint_ok(pk, 5, 4000, h, sig));
	HF_CHECK(!audit_chain_checkpoint_ok(pk, 6, 4000, h, sig));
	HF_CHECK(!audit_chain_checkpoint_ok(pk, 5, 4001, h, sig));
	int survived = 0;
	for (size_t bit = 0; bit < 8 * sizeof(sig); bit++) {
		sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		survived += audit_chain_checkpoint_ok(pk, 5, 4000, h, sig);
		sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	HF_CHECK_MSG(survived == 0, "%d signature bit flips went unnoticed", survived);
	for (size_t bit = 0; bit < 8 * sizeof(h); bit++) {
		h[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		survived += audit_chain_checkpoint_ok(pk, 5, 4000, h, sig);
		h[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	HF_CHECK_MSG(survived == 0, "%d hash bit flips went unnoticed", survived);
	HF_CHECK(audit_chain_checkpoint_ok(pk, 5, 4000, h, sig));
	/* The key id is the public key's first 8 bytes in hex. */
	char hex[AUDIT_KEY_ID_LEN + 1];
	sodium_bin2hex(hex, sizeof(hex), pk, AUDIT_KEY_ID_LEN / 2);
	HF_CHECK(strcmp(hex, audit_chain_key_id(g_keys)) == 0);
}

static void test_now(void)
{
	char ts[AUDIT_TS_LEN + 1];
	audit_chain_now(ts);
	HF_CHECK(strlen(ts) == AUDIT_TS_LEN && ts[4] == '-' && ts[10] == ' ' && ts[19] == '.');
}

int main(void)
{
	HF_ASSERT(sodium_init() >= 0);
	hf_test_tmpdir(g_dir, sizeof(g_dir));
	rmdir(g_dir); /* keygen creates it, with its own mode */
	HF_ASSERT(audit_chain_keygen(g_dir) == HF_OK);
	HF_ASSERT(audit_chain_keys_load(g_dir, &g_keys) == HF_OK);
	HF_TEST(test_every_field_counts);
	HF_TEST(test_fields_do_not_run_together);
	HF_TEST(test_canonical_layout);
	HF_TEST(test_chain);
	HF_TEST(test_keygen_files);
	HF_TEST(test_mac);
	HF_TEST(test_digest);
	HF_TEST(test_checkpoint);
	HF_TEST(test_now);
	audit_chain_keys_free(g_keys);
	hf_test_rmtree(g_dir);
	return hf_test_summary();
}
