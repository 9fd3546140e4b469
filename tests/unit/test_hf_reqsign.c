/* test_hf_reqsign.c - kiosk request signatures and enrolment codes.
 *
 * A kiosk request moves money at a pay point, so these tests check what an attacker on the network would
 * try: change any signed part (body, path, method, timestamp, nonce, terminal) or sign with another key,
 * and the core must refuse; a mangled signature header must be refused, never crash. The known-answer
 * vectors were computed once with Python's cryptography package (tests/integration/kiosk_client.py
 * builds the same message): if the message format changes, they fail, and the kiosk program, the test
 * client and the core have to change together (and "hifadhi-kiosk-v1" with them).
 */
#include "hf_base.h"
#include "hf_reqsign.h"

#include <sodium.h>
#include <string.h>

#include "hf_crypto.h"
#include "hf_test.h"

/* The known-answer inputs: seed 0x01..0x20, nonce = base64url of bytes 0..15. */
#define KAT_PK "ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ="
#define KAT_TS "1718000000"
#define KAT_NONCE "AAECAwQFBgcICQoLDA0ODw"
#define KAT_KIOSK "K12345678"
#define KAT_POST_PATH "/api/v1/kiosk/payments"
#define KAT_POST_BODY "{\"amount\":1500}"
#define KAT_POST_SIG "8QuQapJ2n6Be2Y+CyZfyGoZGEOhqozpxU5hjGjcGkMWSbPLCsWt5lVU5CKK0Dr7geo90QQfzl54ABUjoDOpcDQ=="
#define KAT_POST_MSG                                                                                        \
	"hifadhi-kiosk-v1\nPOST\n/api/v1/kiosk/payments\n1718000000\nAAECAwQFBgcICQoLDA0ODw\nK12345678\n"     \
	"d30bcd4f029738b3b07fa1fedd509dda26562cbf1d7233da401953f0fde666a5"
#define KAT_GET_PATH "/api/v1/kiosk/ping"
#define KAT_GET_SIG "/GBCQbhdaABap71NxDers6PLRspnbSp5U9Mo4CK5gjVRKNsyAodl1Rcrq/+1kvUUG4/5v5mjCPuKPrJJyANvCA=="

static uint8_t pk[HF_REQSIGN_PK_LEN], sk[HF_REQSIGN_SK_LEN];
static uint8_t other_pk[HF_REQSIGN_PK_LEN], other_sk[HF_REQSIGN_SK_LEN];

/* One request's parts, so a test can change one and keep the rest. */
struct parts {
	const char *method, *path, *ts, *nonce, *kiosk_no;
	const char *body;
	size_t body_len;
};

static struct parts sample(void)
{
	static const char body[] = "{\"ben_no\":\"100000017\",\"amount\":250000}";
	return (struct parts){"POST", "/api/v1/kiosk/payments", "1718000123", "q2o5Hc0xYb9Vt8rJk3Lw-_", "K-NAIROBI-01",
			      body, sizeof(body) - 1};
}

static hf_err sign_parts(const uint8_t *key, const struct parts *p, char sig[HF_REQSIGN_SIG_B64_LEN + 1])
{
	return hf_reqsign_sign(key, p->method, p->path, p->ts, p->nonce, p->kiosk_no, p->body, p->body_len, sig);
}

static hf_err verify_parts(const uint8_t *key, const char *sig, const struct parts *p)
{
	return hf_reqsign_verify(key, sig, p->method, p->path, p->ts, p->nonce, p->kiosk_no, p->body, p->body_len);
}

static void test_round_trip(void)
{
	struct parts p = sample();
	char sig[HF_REQSIGN_SIG_B64_LEN + 1];
	HF_CHECK(sign_parts(sk, &p, sig) == HF_OK);
	HF_CHECK(strlen(sig) == HF_REQSIGN_SIG_B64_LEN);
	HF_CHECK(verify_parts(pk, sig, &p) == HF_OK);

	/* No body: NULL and an empty buffer sign the same message. */
	p.method = "GET";
	p.body = NULL;
	p.body_len = 0;
	HF_CHECK(sign_parts(sk, &p, sig) == HF_OK);
	HF_CHECK(verify_parts(pk, sig, &p) == HF_OK);
	p.body = "";
	HF_CHECK(verify_parts(pk, sig, &p) == HF_OK);
}

/* Every signed part, changed by one byte, makes the signature fail. */
static void test_any_change_fails(void)
{
	struct parts p = sample();
	char sig[HF_REQSIGN_SIG_B64_LEN + 1];
	HF_ASSERT(sign_parts(sk, &p, sig) == HF_OK);

	char body[128];
	HF_ASSERT(p.body_len < sizeof(body));
	memcpy(body, p.body, p.body_len);
	for (size_t i = 0; i < p.body_len; i++) {
		struct parts q = p;
		body[i] ^= 0x01;
		q.body = body;
		HF_CHECK_MSG(verify_parts(pk, sig, &q) == HF_EAUTH, "body byte %zu", i);
		body[i] ^= 0x01;
	}
	struct parts q = p;
	q.body_len = p.body_len - 1;
	HF_CHECK(verify_parts(pk, sig, &q) == HF_EAUTH);
	q = p;
	q.body = NULL;
	q.body_len = 0;
	HF_CHECK(verify_parts(pk, sig, &q) == HF_EAUTH);

	q = p;
	q.path = "/api/v1/kiosk/paymentt";
	HF_CHECK(verify_parts(pk, sig, &q) == HF_EAUTH);
	q.path = "/api/v1/kiosk/payments/";
	HF_CHECK(verify_parts(pk, sig, &q) == HF_EAUTH);
	q = p;
	q.method = "PUT";
	HF_CHECK(verify_parts(pk, sig, &q) == HF_EAUTH);
	q.method = "POSU";
	HF_CHECK(verify_parts(pk, sig, &q) == HF_EAUTH);
	q = p;
	q.ts = "1718000124";
	HF_CHECK(verify_parts(pk, sig, &q) == HF_EAUTH);
	q = p;
	q.nonce = "q2o5Hc0xYb9Vt8rJk3Lw-A";
	HF_CHECK(verify_parts(pk, sig, &q) == HF_EAUTH);
	q = p;
	q.kiosk_no = "K-NAIROBI-02";
	HF_CHECK(verify_parts(pk, sig, &q) == HF_EAUTH);
	q.kiosk_no = "k-NAIROBI-01";
	HF_CHECK(verify_parts(pk, sig, &q) == HF_EAUTH);
}

static void test_other_key_fails(void)
{
	struct parts p = sample();
	char sig[HF_REQSIGN_SIG_B64_LEN + 1];
	HF_ASSERT(sign_parts(other_sk, &p, sig) == HF_OK);
	HF_CHECK(verify_parts(pk, sig, &p) == HF_EAUTH);
	HF_CHECK(verify_parts(other_pk, sig, &p) == HF_OK);
}

/* A signature header that is not exactly 88 characters of canonical base64 of 64 bytes is refused. */
static void test_malformed_signature(void)
{
	struct parts p = sample();
	char sig[HF_REQSIGN_SIG_B64_LEN + 1], bad[HF_REQSIGN_SIG_B64_LEN + 8];
	HF_ASSERT(sign_parts(sk, &p, sig) == HF_OK);

	HF_CHECK(verify_parts(pk, NULL, &p) == HF_EAUTH);
	HF_CHECK(verify_parts(pk, "", &p) == HF_EAUTH);
	HF_CHECK(verify_parts(pk, "not base64 at all!", &p) == HF_EAUTH);

	memcpy(bad, sig, sizeof(sig));
	bad[10] = '*';
	HF_CHECK(verify_parts(pk, bad, &p) == HF_EAUTH);

	memcpy(bad, sig, sizeof(sig));
	bad[HF_REQSIGN_SIG_B64_LEN - 2] = '\0'; /* padding dropped */
	HF_CHECK(verify_parts(pk, bad, &p) == HF_EAUTH);

	memcpy(bad, sig, HF_REQSIGN_SIG_B64_LEN);
	memcpy(bad + HF_REQSIGN_SIG_B64_LEN, "AAAA", 5); /* trailing garbage */
	HF_CHECK(verify_parts(pk, bad, &p) == HF_EAUTH);

	memcpy(bad, " ", 1); /* leading space, length kept */
	memcpy(bad + 1, sig, HF_REQSIGN_SIG_B64_LEN - 1);
	bad[HF_REQSIGN_SIG_B64_LEN] = '\0';
	HF_CHECK(verify_parts(pk, bad, &p) == HF_EAUTH);

	/* URL-safe alphabet is another variant: refused even where it only changes '+' or '/'. */
	char kat[] = KAT_POST_SIG;
	for (char *c = kat; *c; c++) {
		if (*c == '+')
			*c = '-';
		else if (*c == '/')
			*c = '_';
	}
	uint8_t kat_pk[HF_REQSIGN_PK_LEN];
	HF_ASSERT(hf_reqsign_pubkey_decode(KAT_PK, kat_pk) == HF_OK);
	HF_CHECK(hf_reqsign_verify(kat_pk, kat, "POST", KAT_POST_PATH, KAT_TS, KAT_NONCE, KAT_KIOSK, KAT_POST_BODY,
				   strlen(KAT_POST_BODY)) == HF_EAUTH);

	/* Non-zero bits after the last byte ("DQ==" -> "DR=="): same bytes, another spelling, refused. */
	char loose[] = KAT_POST_SIG;
	HF_ASSERT(loose[HF_REQSIGN_SIG_B64_LEN - 3] == 'Q');
	loose[HF_REQSIGN_SIG_B64_LEN - 3] = 'R';
	HF_CHECK(hf_reqsign_verify(kat_pk, loose, "POST", KAT_POST_PATH, KAT_TS, KAT_NONCE, KAT_KIOSK, KAT_POST_BODY,
				   strlen(KAT_POST_BODY)) == HF_EAUTH);

	/* A valid base64 signature with one bit flipped. */
	memcpy(bad, sig, sizeof(sig));
	bad[0] = bad[0] == 'A' ? 'B' : 'A';
	HF_CHECK(verify_parts(pk, bad, &p) == HF_EAUTH);
}

/* The format, fixed by vectors from an independent implementation. */
static void test_known_answer(void)
{
	static const uint8_t seed[HF_REQSIGN_SEED_LEN] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
							   12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
							   23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
	uint8_t kpk[HF_REQSIGN_PK_LEN], ksk[HF_REQSIGN_SK_LEN];
	char pk_b64[HF_REQSIGN_PK_B64_LEN + 1], sig[HF_REQSIGN_SIG_B64_LEN + 1];
	HF_ASSERT(hf_reqsign_keypair_from_seed(seed, kpk, ksk) == HF_OK);
	hf_reqsign_pubkey_encode(kpk, pk_b64);
	HF_CHECK_MSG(strcmp(pk_b64, KAT_PK) == 0, "public key %s", pk_b64);

	struct hf_buf msg;
	hf_buf_init(&msg, 2048);
	HF_CHECK(hf_reqsign_message("POST", KAT_POST_PATH, KAT_TS, KAT_NONCE, KAT_KIOSK, KAT_POST_BODY,
				    strlen(KAT_POST_BODY), &msg) == HF_OK);
	HF_CHECK_MSG(strcmp(hf_buf_cstr(&msg), KAT_POST_MSG) == 0, "message %s", hf_buf_cstr(&msg));
	hf_buf_release(&msg);

	HF_CHECK(hf_reqsign_sign(ksk, "POST", KAT_POST_PATH, KAT_TS, KAT_NONCE, KAT_KIOSK, KAT_POST_BODY,
				 strlen(KAT_POST_BODY), sig) == HF_OK);
	HF_CHECK_MSG(strcmp(sig, KAT_POST_SIG) == 0, "signature %s", sig);
	HF_CHECK(hf_reqsign_verify(kpk, KAT_POST_SIG, "POST", KAT_POST_PATH, KAT_TS, KAT_NONCE, KAT_KIOSK,
				   KAT_POST_BODY, strlen(KAT_POST_BODY)) == HF_OK);

	HF_CHECK(hf_reqsign_sign(ksk, "GET", KAT_GET_PATH, KAT_TS, KAT_NONCE, KAT_KIOSK, NULL, 0, sig) == HF_OK);
	HF_CHECK_MSG(strcmp(sig, KAT_GET_SIG) == 0, "signature %s", sig);
	HF_CHECK(hf_reqsign_verify(kpk, KAT_GET_SIG, "GET", KAT_GET_PATH, KAT_TS, KAT_NONCE, KAT_KIOSK, NULL, 0) ==
		 HF_OK);
	sodium_memzero(ksk, sizeof(ksk));
}

/* Each part is checked before anything is signed or verified. */
static void test_message_rules(void)
{
	struct hf_buf b;
	hf_buf_init(&b, 4096);
	char long_path[1100], long_nonce[80], long_kiosk[40];
	long_path[0] = '/';
	memset(long_path + 1, 'a', sizeof(long_path) - 1);
	memset(long_nonce, 'n', sizeof(long_nonce));
	memset(long_kiosk, 'K', sizeof(long_kiosk));

	struct {
		const char *method, *path, *ts, *nonce, *kiosk;
		hf_err want;
	} cases[] = {
		{"POST", "/a", "1", KAT_NONCE, "K", HF_OK},
		{"", "/a", "1", KAT_NONCE, "K", HF_EINVAL},
		{NULL, "/a", "1", KAT_NONCE, "K", HF_EINVAL},
		{"post", "/a", "1", KAT_NONCE, "K", HF_EINVAL},
		{"ABCDEFGHIJ", "/a", "1", KAT_NONCE, "K", HF_OK},
		{"ABCDEFGHIJK", "/a", "1", KAT_NONCE, "K", HF_EINVAL},
		{"POST", "a", "1", KAT_NONCE, "K", HF_EINVAL},
		{"POST", "", "1", KAT_NONCE, "K", HF_EINVAL},
		{"POST", NULL, "1", KAT_NONCE, "K", HF_EINVAL},
		{"POST", "/a?b=1", "1", KAT_NONCE, "K", HF_EINVAL},
		{"POST", "/a b", "1", KAT_NONCE, "K", HF_EINVAL},
		{"POST", "/a\nb", "1", KAT_NONCE, "K", HF_EINVAL},
		{"POST", "/caf\xc3\xa9", "1", KAT_NONCE, "K", HF_EINVAL},
		{"POST", "/a", "", KAT_NONCE, "K", HF_EINVAL},
		{"POST", "/a", "-1", KAT_NONCE, "K", HF_EINVAL},
		{"POST", "/a", "1718000000.5", KAT_NONCE, "K", HF_EINVAL},
		{"POST", "/a", "999999999999", KAT_NONCE, "K", HF_OK},
		{"POST", "/a", "1000000000000", KAT_NONCE, "K", HF_EINVAL},
		{"POST", "/a", "1", "AAECAwQFBgcICQoLDA0OD", "K", HF_EINVAL},
		{"POST", "/a", "1", "AAECAwQFBgcICQoLDA0OD=", "K", HF_EINVAL},
		{"POST", "/a", "1", "AAECAwQFBgcICQoLDA0O+w", "K", HF_EINVAL},
		{"POST", "/a", "1", "AAECAwQFBgcICQoLDA0O_-", "K", HF_OK},
		{"POST", "/a", "1", NULL, "K", HF_EINVAL},
		{"POST", "/a", "1", KAT_NONCE, "", HF_EINVAL},
		{"POST", "/a", "1", KAT_NONCE, NULL, HF_EINVAL},
		{"POST", "/a", "1", KAT_NONCE, "K_1", HF_EINVAL},
		{"POST", "/a", "1", KAT_NONCE, "K\n1", HF_EINVAL},
		{"POST", "/a", "1", KAT_NONCE, "kiosk-7", HF_OK},
	};
	for (size_t i = 0; i < HF_ARRAY_LEN(cases); i++) {
		hf_buf_reset(&b);
		hf_err got = hf_reqsign_message(cases[i].method, cases[i].path, cases[i].ts, cases[i].nonce,
						cases[i].kiosk, NULL, 0, &b);
		HF_CHECK_MSG(got == cases[i].want, "case %zu: got %s", i, hf_err_name(got));
		if (got)
			HF_CHECK_MSG(b.len == 0, "case %zu appended on failure", i);
	}

	/* Length limits at the boundary: path 1024, nonce 64, kiosk number 32. */
	long_path[1024] = '\0';
	hf_buf_reset(&b);
	HF_CHECK(hf_reqsign_message("GET", long_path, "1", KAT_NONCE, "K", NULL, 0, &b) == HF_OK);
	long_path[1024] = 'a';
	long_path[1025] = '\0';
	hf_buf_reset(&b);
	HF_CHECK(hf_reqsign_message("GET", long_path, "1", KAT_NONCE, "K", NULL, 0, &b) == HF_EINVAL);
	long_nonce[64] = '\0';
	hf_buf_reset(&b);
	HF_CHECK(hf_reqsign_message("GET", "/", "1", long_nonce, "K", NULL, 0, &b) == HF_OK);
	long_nonce[64] = 'n';
	long_nonce[65] = '\0';
	hf_buf_reset(&b);
	HF_CHECK(hf_reqsign_message("GET", "/", "1", long_nonce, "K", NULL, 0, &b) == HF_EINVAL);
	long_kiosk[32] = '\0';
	hf_buf_reset(&b);
	HF_CHECK(hf_reqsign_message("GET", "/", "1", KAT_NONCE, long_kiosk, NULL, 0, &b) == HF_OK);
	long_kiosk[32] = 'K';
	long_kiosk[33] = '\0';
	hf_buf_reset(&b);
	HF_CHECK(hf_reqsign_message("GET", "/", "1", KAT_NONCE, long_kiosk, NULL, 0, &b) == HF_EINVAL);

	/* A body pointer is required when there is a body. */
	hf_buf_reset(&b);
	HF_CHECK(hf_reqsign_message("POST", "/", "1", KAT_NONCE, "K", NULL, 3, &b) == HF_EINVAL);

	/* The message appends; a buffer too small says so and keeps what it had. */
	struct hf_buf small;
	hf_buf_init(&small, 40);
	HF_ASSERT(hf_buf_append_str(&small, "x") == HF_OK);
	HF_CHECK(hf_reqsign_message("GET", "/", "1", KAT_NONCE, "K", NULL, 0, &small) == HF_ETOOBIG);
	HF_CHECK(strcmp(hf_buf_cstr(&small), "x") == 0);
	hf_buf_release(&small);

	/* A malformed part makes sign and verify refuse too (not sign something else). */
	char sig[HF_REQSIGN_SIG_B64_LEN + 1] = "untouched";
	HF_CHECK(hf_reqsign_sign(sk, "POST", "/a?x", "1", KAT_NONCE, "K", NULL, 0, sig) == HF_EINVAL);
	HF_CHECK(strcmp(sig, "untouched") == 0);
	HF_CHECK(hf_reqsign_verify(pk, KAT_POST_SIG, "POST", "/a", "1", "short", "K", NULL, 0) == HF_EINVAL);
	hf_buf_release(&b);
}

static void test_nonce(void)
{
	char a[HF_REQSIGN_NONCE_LEN + 1], b[HF_REQSIGN_NONCE_LEN + 1];
	hf_reqsign_nonce(a);
	hf_reqsign_nonce(b);
	HF_CHECK(strlen(a) == HF_REQSIGN_NONCE_LEN);
	HF_CHECK(hf_reqsign_nonce_valid(a));
	HF_CHECK(hf_reqsign_nonce_valid(b));
	HF_CHECK(strcmp(a, b) != 0);
}

static void test_pubkey(void)
{
	char b64[HF_REQSIGN_PK_B64_LEN + 1];
	uint8_t back[HF_REQSIGN_PK_LEN];
	hf_reqsign_pubkey_encode(pk, b64);
	HF_CHECK(strlen(b64) == HF_REQSIGN_PK_B64_LEN);
	HF_CHECK(hf_reqsign_pubkey_decode(b64, back) == HF_OK);
	HF_CHECK(memcmp(back, pk, sizeof(pk)) == 0);

	memset(back, 0x5a, sizeof(back));
	HF_CHECK(hf_reqsign_pubkey_decode(NULL, back) == HF_EINVAL);
	HF_CHECK(hf_reqsign_pubkey_decode("", back) == HF_EINVAL);
	/* All zeros and the identity point are small-order keys: any signature would do. */
	HF_CHECK(hf_reqsign_pubkey_decode("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", back) == HF_EINVAL);
	HF_CHECK(hf_reqsign_pubkey_decode("AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", back) == HF_EINVAL);
	/* 31 and 33 bytes, missing padding, URL-safe alphabet. */
	HF_CHECK(hf_reqsign_pubkey_decode("ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60Elg==", back) == HF_EINVAL);
	HF_CHECK(hf_reqsign_pubkey_decode("ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQA", back) == HF_EINVAL);
	HF_CHECK(hf_reqsign_pubkey_decode("ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ", back) == HF_EINVAL);
	HF_CHECK(hf_reqsign_pubkey_decode("ebVWLo_mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ=", back) == HF_EINVAL);
	uint8_t untouched[HF_REQSIGN_PK_LEN];
	memset(untouched, 0x5a, sizeof(untouched));
	HF_CHECK(memcmp(back, untouched, sizeof(back)) == 0);
	HF_CHECK(hf_reqsign_pubkey_decode(KAT_PK, back) == HF_OK);
}

static void test_enrolment_code(void)
{
	char code[HF_REQSIGN_CODE_SHOWN_LEN + 1], other[HF_REQSIGN_CODE_SHOWN_LEN + 1];
	char norm[HF_REQSIGN_CODE_LEN + 1];
	uint8_t h1[HF_REQSIGN_CODE_HASH_LEN], h2[HF_REQSIGN_CODE_HASH_LEN];
	hf_reqsign_code_new(code);
	hf_reqsign_code_new(other);
	HF_CHECK(strlen(code) == HF_REQSIGN_CODE_SHOWN_LEN);
	HF_CHECK(code[4] == '-' && code[9] == '-');
	HF_CHECK(strcmp(code, other) != 0);
	HF_CHECK(strpbrk(code, "01OIL") == NULL);

	/* Typed in lower case, without dashes or with spaces: the same code. */
	HF_CHECK(hf_reqsign_code_normalise("abcd-efgh-jkmn", norm));
	HF_CHECK(strcmp(norm, "ABCDEFGHJKMN") == 0);
	HF_CHECK(hf_reqsign_code_hash("ABCD-EFGH-JKMN", h1) == HF_OK);
	HF_CHECK(hf_reqsign_code_hash("abcdefghjkmn", h2) == HF_OK);
	HF_CHECK(memcmp(h1, h2, sizeof(h1)) == 0);
	HF_CHECK(hf_reqsign_code_hash("abcd efgh jkmn", h2) == HF_OK);
	HF_CHECK(memcmp(h1, h2, sizeof(h1)) == 0);
	HF_CHECK(hf_reqsign_code_hash("ABCD-EFGH-JKMP", h2) == HF_OK);
	HF_CHECK(memcmp(h1, h2, sizeof(h1)) != 0);

	/* Wrong length or a character outside the alphabet. */
	HF_CHECK(!hf_reqsign_code_normalise("ABCD-EFGH-JKM", norm));
	HF_CHECK(!hf_reqsign_code_normalise("ABCD-EFGH-JKMNP", norm));
	HF_CHECK(!hf_reqsign_code_normalise("ABCD-EFGH-JKM0", norm));
	HF_CHECK(!hf_reqsign_code_normalise("ABCD-EFGH-JKMo", norm));
	HF_CHECK(!hf_reqsign_code_normalise("ABCD_EFGH_JKMN", norm));
	HF_CHECK(!hf_reqsign_code_normalise("", norm));
	HF_CHECK(!hf_reqsign_code_normalise(NULL, norm));
	HF_CHECK(!hf_reqsign_code_normalise("--------------------------------------------ABCDEFGHJKMN", norm));
	HF_CHECK(hf_reqsign_code_hash("ABCD-EFGH-JKM", h2) == HF_EINVAL);
	HF_CHECK(hf_reqsign_code_normalise(code, norm));
}

int main(void)
{
	HF_ASSERT(hf_crypto_init() == HF_OK);
	HF_ASSERT(hf_reqsign_keypair(pk, sk) == HF_OK);
	HF_ASSERT(hf_reqsign_keypair(other_pk, other_sk) == HF_OK);
	HF_TEST(test_round_trip);
	HF_TEST(test_any_change_fails);
	HF_TEST(test_other_key_fails);
	HF_TEST(test_malformed_signature);
	HF_TEST(test_known_answer);
	HF_TEST(test_message_rules);
	HF_TEST(test_nonce);
	HF_TEST(test_pubkey);
	HF_TEST(test_enrolment_code);
	sodium_memzero(sk, sizeof(sk));
	sodium_memzero(other_sk, sizeof(other_sk));
	return hf_test_summary();
}
