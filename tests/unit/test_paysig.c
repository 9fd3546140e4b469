/* test_paysig.c - payment-provider callback signatures (HMAC webhook header and DCI Ed25519 header).
 *
 * A forged callback could mark money as paid that never left, so these tests check what a forger would
 * try: change the body, sign with another key, replay an old header, point a header at another sender,
 * and feed garbage to the parsers (which must refuse it, never crash). The known-answer vectors were
 * computed once, independently, with Python's hmac/hashlib and the cryptography package's Ed25519:
 * if the format changes they fail, and the core, the simulator and docs/providers.md change together.
 */
#include "hf_base.h"
#include "hf_paysig.h"

#include <sodium.h>
#include <string.h>

#include "hf_crypto.h"
#include "hf_test.h"

/* python3: hmac.new(secret, b"1718000000." + body, hashlib.sha256).hexdigest() */
#define KAT_SECRET "hifadhi-test-secret-0123456789"
#define KAT_T 1718000000
#define KAT_BODY "{\"Result\":{\"ResultCode\":0,\"OriginatorConversationID\":\"PAY-0001\"}}"
#define KAT_HMAC "t=1718000000,v1=e5535a26f3395bda024c0ed9272119b23ca8f6293ad1b4c13558377b748bfb55"
/* The same with a 100-byte key 0x00..0x63 (longer than SHA-256's block: hashed first). */
#define KAT_HMAC_LONG "t=1718000000,v1=9a1ebdf5f8461157308b2103826fcf62f27706d155a269d961521d07860731ed"

/* python3: Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33))), signed string as in hf_paysig.h. */
#define KAT_PK_HEX "79b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664"
#define KAT_GBODY "{\"message\":{\"transaction_id\":\"T-1\",\"disbursements_status\":[]}}"
#define KAT_CREATED 1718000000
#define KAT_EXPIRES 1718000300
#define KAT_DCI                                                                                                \
	"namespace=\"spdci\", kidId=\"paysim|k1|ed25519\", algorithm=\"ed25519\", created=\"1718000000\", "     \
	"expires=\"1718000300\", headers=\"(created) (expires) digest\", "                                       \
	"signature=\"HDBqMhAKr+TVYU2lXcRrbVGFICLk431/GblGyQA6CeUgm0y5F1GBMrJxpr2qrY2pPFRXM5RCR5frR9HuMGcFBg==\""

static const uint8_t *secret = (const uint8_t *)KAT_SECRET;
static const size_t secret_len = sizeof(KAT_SECRET) - 1;
static uint8_t pk[32], sk[64], other_pk[32], other_sk[64];

static void hmac_sign(int64_t t, const char *body, char out[HF_PAYSIG_HDR_MAX])
{
	hf_paysig_hmac_header(secret, secret_len, t, body, strlen(body), out);
}

static hf_err hmac_check(const char *hdr, int64_t now, const char *body)
{
	return hf_paysig_hmac_verify(secret, secret_len, hdr, now, 300, body, strlen(body));
}

static void test_hmac_known_answer(void)
{
	char h[HF_PAYSIG_HDR_MAX];
	hmac_sign(KAT_T, KAT_BODY, h);
	HF_CHECK_MSG(strcmp(h, KAT_HMAC) == 0, "got %s", h);
	HF_CHECK(hmac_check(KAT_HMAC, KAT_T, KAT_BODY) == HF_OK);

	uint8_t longkey[100];
	for (size_t i = 0; i < sizeof(longkey); i++)
		longkey[i] = (uint8_t)i;
	hf_paysig_hmac_header(longkey, sizeof(longkey), KAT_T, KAT_BODY, strlen(KAT_BODY), h);
	HF_CHECK_MSG(strcmp(h, KAT_HMAC_LONG) == 0, "got %s", h);
	HF_CHECK(hf_paysig_hmac_verify(longkey, sizeof(longkey), KAT_HMAC_LONG, KAT_T, 60, KAT_BODY, strlen(KAT_BODY)) ==
		 HF_OK);
}

static void test_hmac_round_trip(void)
{
	char h[HF_PAYSIG_HDR_MAX];
	const char *body = "{\"a\":1}";
	hmac_sign(1700000000, body, h);
	HF_CHECK(hmac_check(h, 1700000000, body) == HF_OK);
	HF_CHECK(hmac_check(h, 1700000300, body) == HF_OK); /* the window's edges are inside */
	HF_CHECK(hmac_check(h, 1699999700, body) == HF_OK);
	/* The empty body signs too (NULL and "" alike). */
	hmac_sign(5, "", h);
	HF_CHECK(hf_paysig_hmac_verify(secret, secret_len, h, 5, 0, NULL, 0) == HF_OK);
	/* Items in another order, with spaces, an unknown key and a second (old-secret) v1. */
	char reordered[400];
	hmac_sign(1700000000, body, h);
	const char *v1 = strstr(h, "v1=");
	snprintf(reordered, sizeof(reordered), "v0=abc, v1=%064d, %s, t=1700000000", 0, v1);
	HF_CHECK_MSG(hmac_check(reordered, 1700000000, body) == HF_OK, "%s", reordered);
}

static void test_hmac_refuses(void)
{
	char h[HF_PAYSIG_HDR_MAX];
	char body[] = "{\"Amount\":400000}";
	hmac_sign(1700000000, body, h);
	/* A flipped body byte. */
	body[11] ^= 1;
	HF_CHECK(hmac_check(h, 1700000000, body) == HF_EAUTH);
	body[11] ^= 1;
	/* Another secret. */
	HF_CHECK(hf_paysig_hmac_verify((const uint8_t *)"other", 5, h, 1700000000, 300, body, strlen(body)) == HF_EAUTH);
	/* Outside the window, either side. */
	HF_CHECK(hmac_check(h, 1700000301, body) == HF_EAUTH);
	HF_CHECK(hmac_check(h, 1699999699, body) == HF_EAUTH);
	/* A changed t (the MAC covers it). */
	char moved[HF_PAYSIG_HDR_MAX];
	memcpy(moved, h, sizeof(moved));
	moved[11] = moved[11] == '9' ? '8' : '9';
	HF_CHECK(hmac_check(moved, 1700000000, body) == HF_EAUTH);
	/* A flipped MAC digit. */
	memcpy(moved, h, sizeof(moved));
	moved[strlen(moved) - 1] = moved[strlen(moved) - 1] == '0' ? '1' : '0';
	HF_CHECK(hmac_check(moved, 1700000000, body) == HF_EAUTH);
}

static void test_hmac_malformed(void)
{
	static const char *const bad[] = {
		"",
		"t=1700000000",
		"v1=e5535a26f3395bda024c0ed9272119b23ca8f6293ad1b4c13558377b748bfb55",
		"t=,v1=e5535a26f3395bda024c0ed9272119b23ca8f6293ad1b4c13558377b748bfb55",
		"t=-5,v1=e5535a26f3395bda024c0ed9272119b23ca8f6293ad1b4c13558377b748bfb55",
		"t=17000000000000,v1=e5535a26f3395bda024c0ed9272119b23ca8f6293ad1b4c13558377b748bfb55",
		"t=1,t=2,v1=e5535a26f3395bda024c0ed9272119b23ca8f6293ad1b4c13558377b748bfb55",
		"t=1,v1=E5535A26F3395BDA024C0ED9272119B23CA8F6293AD1B4C13558377B748BFB55",
		"t=1,v1=e5535a26",
		"t=1,v1=e5535a26f3395bda024c0ed9272119b23ca8f6293ad1b4c13558377b748bfb55,",
		"t=1,,v1=e5535a26f3395bda024c0ed9272119b23ca8f6293ad1b4c13558377b748bfb55",
		"=1,v1=e5535a26f3395bda024c0ed9272119b23ca8f6293ad1b4c13558377b748bfb55",
		"garbage",
	};
	for (size_t i = 0; i < HF_ARRAY_LEN(bad); i++)
		HF_CHECK_MSG(hmac_check(bad[i], 1, "x") == HF_EINVAL, "case %zu: %s", i, bad[i]);
	HF_CHECK(hf_paysig_hmac_verify(secret, secret_len, NULL, 1, 300, "", 0) == HF_EINVAL);
	char longv[700];
	memset(longv, 'a', sizeof(longv) - 1);
	longv[sizeof(longv) - 1] = '\0';
	HF_CHECK(hmac_check(longv, 1, "x") == HF_EINVAL);
}

static void dci_sign(const uint8_t *key, int64_t created, int64_t expires, const char *body, char out[HF_PAYSIG_DCI_MAX])
{
	hf_paysig_dci_header(key, "paysim", "k1", created, expires, body, strlen(body), out);
}

static hf_err dci_check(const uint8_t *key, const char *sender, const char *hdr, int64_t now, const char *body)
{
	return hf_paysig_dci_verify(key, sender, hdr, now, body, strlen(body));
}

static void test_dci_known_answer(void)
{
	uint8_t seed[32], kat_pk[32], want_pk[32];
	for (size_t i = 0; i < sizeof(seed); i++)
		seed[i] = (uint8_t)(i + 1);
	uint8_t kat_sk[64];
	HF_CHECK(crypto_sign_seed_keypair(kat_pk, kat_sk, seed) == 0);
	HF_CHECK(hf_unhex(KAT_PK_HEX, 64, want_pk, sizeof(want_pk)));
	HF_CHECK(memcmp(kat_pk, want_pk, 32) == 0);
	char h[HF_PAYSIG_DCI_MAX];
	dci_sign(kat_sk, KAT_CREATED, KAT_EXPIRES, KAT_GBODY, h);
	HF_CHECK_MSG(strcmp(h, KAT_DCI) == 0, "got %s", h);
	HF_CHECK(dci_check(want_pk, "paysim", KAT_DCI, KAT_CREATED + 10, KAT_GBODY) == HF_OK);
	sodium_memzero(kat_sk, sizeof(kat_sk));
}

static void test_dci_round_trip(void)
{
	char h[HF_PAYSIG_DCI_MAX];
	const char *body = "{\"header\":{},\"message\":{}}";
	dci_sign(sk, 1700000000, 1700000300, body, h);
	HF_CHECK(dci_check(pk, "paysim", h, 1700000000, body) == HF_OK);
	HF_CHECK(dci_check(pk, NULL, h, 1700000300, body) == HF_OK);
	/* Up to 60 s of clock skew before "created". */
	HF_CHECK(dci_check(pk, "paysim", h, 1699999940, body) == HF_OK);
	/* The longest ids still fit. */
	char id[HF_PAYSIG_DCI_ID_MAX + 1];
	memset(id, 'x', HF_PAYSIG_DCI_ID_MAX);
	id[HF_PAYSIG_DCI_ID_MAX] = '\0';
	HF_CHECK(hf_paysig_dci_id_valid(id));
	hf_paysig_dci_header(sk, id, id, 999999999999, 999999999999, body, strlen(body), h);
	HF_CHECK(dci_check(pk, id, h, 999999999999, body) == HF_OK);
	/* Fields in another order, without namespace, with an unknown one. */
	dci_sign(sk, 1700000000, 1700000300, body, h);
	const char *sig = strstr(h, "signature=");
	char re[HF_PAYSIG_DCI_MAX + 64];
	snprintf(re, sizeof(re),
		 "%s, expires=\"1700000300\",created=\"1700000000\" , x-extra=\"1\", headers=\"(created) (expires) "
		 "digest\", algorithm=\"ed25519\", kidId=\"paysim|k1|ed25519\"",
		 sig);
	HF_CHECK_MSG(dci_check(pk, "paysim", re, 1700000000, body) == HF_OK, "%s", re);
}

static void test_dci_refuses(void)
{
	char h[HF_PAYSIG_DCI_MAX];
	char body[] = "{\"amount\":\"4000.00\"}";
	dci_sign(sk, 1700000000, 1700000300, body, h);
	body[12] ^= 1;
	HF_CHECK(dci_check(pk, "paysim", h, 1700000000, body) == HF_EAUTH);
	body[12] ^= 1;
	HF_CHECK(dci_check(other_pk, "paysim", h, 1700000000, body) == HF_EAUTH);
	/* Expired, and too early. */
	HF_CHECK(dci_check(pk, "paysim", h, 1700000301, body) == HF_EAUTH);
	HF_CHECK(dci_check(pk, "paysim", h, 1699999939, body) == HF_EAUTH);
	/* Another sender than expected. */
	HF_CHECK(dci_check(pk, "bank", h, 1700000000, body) == HF_EAUTH);
	HF_CHECK(dci_check(pk, "paysi", h, 1700000000, body) == HF_EAUTH);
	/* Signed by another key under the same name. */
	dci_sign(other_sk, 1700000000, 1700000300, body, h);
	HF_CHECK(dci_check(pk, "paysim", h, 1700000000, body) == HF_EAUTH);

	/* A header whose times were moved (the signature covers them). */
	dci_sign(sk, 1700000000, 1700000300, body, h);
	char *e = strstr(h, "expires=\"1700000300\"");
	HF_CHECK(e != NULL);
	if (e) {
		e[17] = '9';
		HF_CHECK(dci_check(pk, "paysim", h, 1700000000, body) == HF_EAUTH);
	}
	/* A signature character replaced by byte 0xFF, which libsodium 1.0.18's decoder reads as '/'. */
	dci_sign(sk, 1700000000, 1700000300, body, h);
	char *slash = strchr(strstr(h, "signature=\""), '/');
	if (!slash) {
		/* This key's signature has no '/': put one in, which verifies as a wrong signature either way. */
		slash = strstr(h, "signature=\"") + 11;
		*slash = '/';
	}
	char mangled[HF_PAYSIG_DCI_MAX];
	memcpy(mangled, h, sizeof(mangled));
	mangled[slash - h] = (char)0xff;
	HF_CHECK(dci_check(pk, "paysim", mangled, 1700000000, body) == HF_EINVAL);
	/* Another namespace. */
	dci_sign(sk, 1700000000, 1700000300, body, h);
	h[15] = 'x';
	HF_CHECK(dci_check(pk, "paysim", h, 1700000000, body) == HF_EAUTH);
	/* Another algorithm, another header list. */
	dci_sign(sk, 1700000000, 1700000300, body, h);
	char *a = strstr(h, "algorithm=\"ed25519\"");
	HF_CHECK(a != NULL);
	if (a) {
		memcpy(a + 11, "ed25518", 7);
		HF_CHECK(dci_check(pk, "paysim", h, 1700000000, body) == HF_EAUTH);
	}
	dci_sign(sk, 1700000000, 1700000300, body, h);
	char *d = strstr(h, "(expires) digest");
	HF_CHECK(d != NULL);
	if (d) {
		memcpy(d + 10, "DIGEST", 6);
		HF_CHECK(dci_check(pk, "paysim", h, 1700000000, body) == HF_EAUTH);
	}
}

static void test_dci_malformed(void)
{
	static const char *const bad[] = {
		"",
		"garbage",
		"kidId=\"paysim|k1|ed25519\"",
		/* no signature */
		"kidId=\"paysim|k1|ed25519\", algorithm=\"ed25519\", created=\"1\", expires=\"2\", headers=\"(created) "
		"(expires) digest\"",
		/* unterminated quote */
		"kidId=\"paysim|k1|ed25519\", algorithm=\"ed25519\", created=\"1\", expires=\"2\", headers=\"(created) "
		"(expires) digest\", signature=\"AAAA",
		/* kidId of two parts */
		"kidId=\"paysim|ed25519\", algorithm=\"ed25519\", created=\"1\", expires=\"2\", headers=\"(created) "
		"(expires) digest\", signature=\"" "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\"",
		/* kidId with another algorithm */
		"kidId=\"paysim|k1|rsa\", algorithm=\"ed25519\", created=\"1\", expires=\"2\", headers=\"(created) "
		"(expires) digest\", signature=\"" "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\"",
		/* non-numeric created */
		"kidId=\"paysim|k1|ed25519\", algorithm=\"ed25519\", created=\"1e9\", expires=\"2\", headers=\"(created) "
		"(expires) digest\", signature=\"" "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\"",
		/* short signature */
		"kidId=\"paysim|k1|ed25519\", algorithm=\"ed25519\", created=\"1\", expires=\"2\", headers=\"(created) "
		"(expires) digest\", signature=\"AAAA\"",
		/* repeated field */
		"kidId=\"paysim|k1|ed25519\", kidId=\"bank|k1|ed25519\", algorithm=\"ed25519\", created=\"1\", "
		"expires=\"2\", headers=\"(created) (expires) digest\", signature=\""
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\"",
		/* no comma between fields */
		"kidId=\"paysim|k1|ed25519\" algorithm=\"ed25519\"",
		/* unquoted value */
		"kidId=paysim",
	};
	for (size_t i = 0; i < HF_ARRAY_LEN(bad); i++)
		HF_CHECK_MSG(dci_check(pk, NULL, bad[i], 1, "x") == HF_EINVAL, "case %zu: %s", i, bad[i]);
	HF_CHECK(hf_paysig_dci_verify(pk, NULL, NULL, 1, "", 0) == HF_EINVAL);
	HF_CHECK(!hf_paysig_dci_id_valid(""));
	HF_CHECK(!hf_paysig_dci_id_valid("a|b"));
	HF_CHECK(!hf_paysig_dci_id_valid("a\"b"));
	HF_CHECK(!hf_paysig_dci_id_valid(NULL));
}

/* The key_id is not signed (the verifier chose pk by it), so a header differing from good only there
 * still verifies; any other difference must not. */
static bool only_key_id_differs(const char *mangled, const char *good)
{
	const char *kid = strstr(good, "|k1|");
	if (!kid || strlen(mangled) != strlen(good))
		return false;
	size_t from = (size_t)(kid + 1 - good);
	for (size_t i = 0; good[i]; i++)
		if (mangled[i] != good[i] && (i < from || i >= from + 2))
			return false;
	return true;
}

/* Random garbage, and valid headers with random bytes overwritten: never a crash, never HF_OK. */
static void test_fuzzish(void)
{
	char good_h[HF_PAYSIG_HDR_MAX], good_d[HF_PAYSIG_DCI_MAX];
	const char *body = "{\"x\":1}";
	hmac_sign(1700000000, body, good_h);
	dci_sign(sk, 1700000000, 1700000300, body, good_d);
	static const char alphabet[] = "t=v1,\"| abcdef0123456789kidIdsignaturecreatedexpires()=/+\x01\xff";
	unsigned long ok = 0, tried = 0;
	char buf[900];
	for (int i = 0; i < 20000; i++) {
		size_t n = hf_random_uniform(sizeof(buf) - 1);
		int mode = (int)hf_random_uniform(3);
		if (mode == 0) {
			for (size_t j = 0; j < n; j++)
				buf[j] = alphabet[hf_random_uniform(sizeof(alphabet) - 1)];
			buf[n] = '\0';
		} else {
			const char *src = mode == 1 ? good_h : good_d;
			hf_strlcpy(buf, src, sizeof(buf));
			size_t len = strlen(buf);
			/* The DCI header's leading namespace item is not signed: renaming its key leaves a valid
			 * header with an ignored unknown field, so mangling starts after it. */
			size_t from = mode == 1 ? 0 : strlen("namespace=\"spdci\", ");
			unsigned flips = 1 + hf_random_uniform(3);
			for (unsigned k = 0; k < flips; k++) {
				char c = alphabet[hf_random_uniform(sizeof(alphabet) - 1)];
				size_t at = from + hf_random_uniform((uint32_t)(len - from));
				if (buf[at] == c)
					c = c == '0' ? '1' : '0';
				buf[at] = c;
			}
			if (hf_random_uniform(4) == 0)
				buf[from + hf_random_uniform((uint32_t)(len - from))] = '\0'; /* truncated */
			if (strcmp(buf, src) == 0)
				continue; /* two flips at one place restored it */
		}
		ok += hmac_check(buf, 1700000000, body) == HF_OK;
		if (dci_check(pk, "paysim", buf, 1700000000, body) == HF_OK && !only_key_id_differs(buf, good_d))
			ok++;
		tried++;
	}
	HF_CHECK_MSG(ok == 0, "%lu mangled headers verified", ok);
	HF_CHECK(tried > 19000);
}

int main(void)
{
	HF_ASSERT(hf_crypto_init() == HF_OK);
	HF_ASSERT(crypto_sign_keypair(pk, sk) == 0);
	HF_ASSERT(crypto_sign_keypair(other_pk, other_sk) == 0);
	HF_TEST(test_hmac_known_answer);
	HF_TEST(test_hmac_round_trip);
	HF_TEST(test_hmac_refuses);
	HF_TEST(test_hmac_malformed);
	HF_TEST(test_dci_known_answer);
	HF_TEST(test_dci_round_trip);
	HF_TEST(test_dci_refuses);
	HF_TEST(test_dci_malformed);
	HF_TEST(test_fuzzish);
	sodium_memzero(sk, sizeof(sk));
	sodium_memzero(other_sk, sizeof(other_sk));
	return hf_test_summary();
}
