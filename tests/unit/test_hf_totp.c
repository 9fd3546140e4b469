/* test_hf_totp.c - one-time codes against the RFC vectors, the accept-once window and the provisioning URI.
 *
 * A wrong code here locks officers out of the system (or lets a replayed code in), so the codes are
 * checked against the published RFC 4226 and RFC 6238 vectors, which are what every authenticator app
 * computes, and the window rules are checked step by step.
 */
#include "hf_base.h"
#include "hf_totp.h"

#include <string.h>

#include "hf_test.h"

static const uint8_t rfc_key[] = "12345678901234567890";
#define RFC_KEY_LEN 20

static void test_base32_vectors(void)
{
	/* RFC 4648 section 10, without the padding. */
	static const struct {
		const char *bin, *b32;
	} v[] = {
		{"", ""},	       {"f", "MY"},	    {"fo", "MZXQ"},	     {"foo", "MZXW6"},
		{"foob", "MZXW6YQ"}, {"fooba", "MZXW6YTB"}, {"foobar", "MZXW6YTBOI"},
	};
	for (size_t i = 0; i < HF_ARRAY_LEN(v); i++) {
		char enc[32];
		size_t n = strlen(v[i].bin);
		size_t got = hf_base32_encode(v[i].bin, n, enc, sizeof(enc));
		HF_CHECK_MSG(got == strlen(v[i].b32) && strcmp(enc, v[i].b32) == 0, "encode %s: %s", v[i].bin, enc);
		HF_CHECK(HF_BASE32_LEN(n) == strlen(v[i].b32));

		uint8_t dec[16];
		size_t dlen = 99;
		HF_CHECK_MSG(hf_base32_decode(v[i].b32, dec, sizeof(dec), &dlen) && dlen == n &&
				     memcmp(dec, v[i].bin, n) == 0,
			     "decode %s", v[i].b32);
	}
	/* The padded forms, lower case and spaces (as apps display secrets in groups) are accepted. */
	static const char *const same[] = {"MZXW6YTBOI======", "mzxw6ytboi", "mzxw 6ytb oi", "MZXW6YTBOI=="};
	for (size_t i = 0; i < HF_ARRAY_LEN(same); i++) {
		uint8_t dec[16];
		size_t dlen = 0;
		bool ok = hf_base32_decode(same[i], dec, sizeof(dec), &dlen);
		HF_CHECK_MSG(ok && dlen == 6 && memcmp(dec, "foobar", 6) == 0, "decode %s", same[i]);
	}
}

static void test_base32_limits(void)
{
	uint8_t dec[16];
	size_t dlen = 1234;
	/* Characters outside the alphabet: 0, 1, 8, 9 (easily confused with O, I, B), punctuation, tabs. */
	static const char *const bad[] = {"MZXW6YTB0I", "MZXW1", "MZXW8YTB", "MZXW9YTB", "MZXW-6YTB", "MZXW\t6YTB",
					  "MZ+W6YTB", "MZXW6YTBOÉ"};
	for (size_t i = 0; i < HF_ARRAY_LEN(bad); i++)
		HF_CHECK_MSG(!hf_base32_decode(bad[i], dec, sizeof(dec), &dlen), "accepted %s", bad[i]);
	/* Lengths no encoder produces, and non-zero unused bits ("MZ" is "f", "M3" is not canonical). */
	HF_CHECK(!hf_base32_decode("M", dec, sizeof(dec), &dlen));
	HF_CHECK(!hf_base32_decode("MZX", dec, sizeof(dec), &dlen));
	HF_CHECK(!hf_base32_decode("MZXW6Y", dec, sizeof(dec), &dlen));
	HF_CHECK(!hf_base32_decode("M3", dec, sizeof(dec), &dlen));
	HF_CHECK(dlen == 1234);
	/* Output that does not fit is refused, and nothing is left behind in it. */
	memset(dec, 0, sizeof(dec));
	HF_CHECK(!hf_base32_decode("MZXW6YTBOI", dec, 5, &dlen));
	static const uint8_t zero[16];
	HF_CHECK(memcmp(dec, zero, sizeof(dec)) == 0);
	HF_CHECK(hf_base32_decode("MZXW6YTBOI", dec, 6, &dlen) && dlen == 6);

	/* Encoding needs room for the text and its NUL. */
	char enc[11];
	HF_CHECK(hf_base32_encode("foobar", 6, enc, 10) == 0);
	HF_CHECK(hf_base32_encode("foobar", 6, enc, 11) == 10 && strcmp(enc, "MZXW6YTBOI") == 0);

	/* A 20-byte secret round-trips through its 32-character form. */
	char b32[HF_BASE32_LEN(20) + 1];
	HF_CHECK(hf_base32_encode(rfc_key, RFC_KEY_LEN, b32, sizeof(b32)) == 32);
	HF_CHECK(strcmp(b32, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ") == 0);
	uint8_t back[20];
	HF_CHECK(hf_base32_decode(b32, back, sizeof(back), &dlen) && dlen == 20 && memcmp(back, rfc_key, 20) == 0);
}

static void test_hotp_rfc4226(void)
{
	/* RFC 4226 appendix D. */
	static const uint32_t want[] = {755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489};
	for (uint64_t c = 0; c < HF_ARRAY_LEN(want); c++) {
		uint32_t got = hf_hotp(rfc_key, RFC_KEY_LEN, c, 6);
		HF_CHECK_MSG(got == want[c], "counter %llu: %06u", (unsigned long long)c, (unsigned)got);
	}
}

static void test_totp_rfc6238(void)
{
	/* RFC 6238 appendix B, SHA-1 column (8 digits). */
	static const struct {
		int64_t t;
		uint32_t code;
	} v[] = {
		{59, 94287082},		{1111111109, 7081804}, {1111111111, 14050471},
		{1234567890, 89005924}, {2000000000, 69279037}, {20000000000, 65353130},
	};
	for (size_t i = 0; i < HF_ARRAY_LEN(v); i++) {
		int64_t step = hf_totp_step(v[i].t);
		uint32_t got = hf_hotp(rfc_key, RFC_KEY_LEN, (uint64_t)step, 8);
		HF_CHECK_MSG(got == v[i].code, "t=%lld: %08u", (long long)v[i].t, (unsigned)got);
	}
	HF_CHECK(hf_totp_step(0) == 0);
	HF_CHECK(hf_totp_step(29) == 0);
	HF_CHECK(hf_totp_step(30) == 1);
	HF_CHECK(hf_totp_step(-1) == -1);
	HF_CHECK(hf_totp_step(-30) == -1);
	HF_CHECK(hf_totp_step(-31) == -2);
}

/* The 6-digit code the app shows at step. */
static void code_at(int64_t step, char out[7])
{
	uint32_t v = hf_hotp(rfc_key, RFC_KEY_LEN, (uint64_t)step, 6);
	int n = snprintf(out, 7, "%06u", (unsigned)v);
	HF_ASSERT(n == 6);
}

static void test_match_window(void)
{
	const int64_t now = 1700000015; /* inside a step, 15 s after it began */
	const int64_t s = hf_totp_step(now);
	char code[7];
	int64_t got = -5;

	for (int d = -1; d <= 1; d++) {
		code_at(s + d, code);
		got = -5;
		HF_CHECK_MSG(hf_totp_match(rfc_key, RFC_KEY_LEN, code, now, -1, &got) && got == s + d, "offset %d", d);
	}
	/* Two steps away (a minute old, or from a phone whose clock runs a minute fast) is refused. */
	for (int d = -2; d <= 2; d += 4) {
		code_at(s + d, code);
		got = -5;
		HF_CHECK_MSG(!hf_totp_match(rfc_key, RFC_KEY_LEN, code, now, -1, &got) && got == -5, "offset %d", d);
	}
	/* The right code under another key is refused. */
	code_at(s, code);
	static const uint8_t other[] = "12345678901234567891";
	HF_CHECK(!hf_totp_match(other, 20, code, now, -1, &got));
	HF_CHECK(!hf_totp_match(rfc_key, 0, code, now, -1, &got));
}

static void test_match_replay(void)
{
	const int64_t now = 1700000015;
	const int64_t s = hf_totp_step(now);
	char code[7];
	int64_t got = -5, last = -1;

	/* A code is accepted once: after it matched, the same code is refused for the rest of its window. */
	code_at(s, code);
	HF_CHECK(hf_totp_match(rfc_key, RFC_KEY_LEN, code, now, last, &got) && got == s);
	last = got;
	got = -5;
	HF_CHECK(!hf_totp_match(rfc_key, RFC_KEY_LEN, code, now, last, &got) && got == -5);
	HF_CHECK(!hf_totp_match(rfc_key, RFC_KEY_LEN, code, now + 30, last, &got) && got == -5);
	/* An older code than the last one used is refused too, even inside the window. */
	code_at(s - 1, code);
	HF_CHECK(!hf_totp_match(rfc_key, RFC_KEY_LEN, code, now, last, &got) && got == -5);
	/* The next code is accepted. */
	code_at(s + 1, code);
	HF_CHECK(hf_totp_match(rfc_key, RFC_KEY_LEN, code, now, last, &got) && got == s + 1);
}

static void test_match_format(void)
{
	const int64_t now = 1700000015;
	char code[7], buf[16];
	code_at(hf_totp_step(now), code);
	int64_t got = -5;
	/* Five or seven digits, spaces, signs and letters are refused without looking further. */
	memcpy(buf, code, 5);
	buf[5] = '\0';
	HF_CHECK(!hf_totp_match(rfc_key, RFC_KEY_LEN, buf, now, -1, &got));
	memcpy(buf, code, 6);
	buf[6] = '0';
	buf[7] = '\0';
	HF_CHECK(!hf_totp_match(rfc_key, RFC_KEY_LEN, buf, now, -1, &got));
	buf[0] = ' ';
	memcpy(buf + 1, code, 7);
	HF_CHECK(!hf_totp_match(rfc_key, RFC_KEY_LEN, buf, now, -1, &got));
	memcpy(buf, code, 7);
	buf[6] = ' ';
	buf[7] = '\0';
	HF_CHECK(!hf_totp_match(rfc_key, RFC_KEY_LEN, buf, now, -1, &got));
	static const char *const bad[] = {"", "12345a", "+12345", "-12345", "12 345", "abcdef", "１２３４５６"};
	for (size_t i = 0; i < HF_ARRAY_LEN(bad); i++)
		HF_CHECK_MSG(!hf_totp_match(rfc_key, RFC_KEY_LEN, bad[i], now, -1, &got), "accepted \"%s\"", bad[i]);
	HF_CHECK(!hf_totp_match(rfc_key, RFC_KEY_LEN, NULL, now, -1, &got));
	HF_CHECK(got == -5);
	/* The untouched code still works. */
	HF_CHECK(hf_totp_match(rfc_key, RFC_KEY_LEN, code, now, -1, &got));
}

static void test_uri(void)
{
	struct hf_buf b;
	hf_buf_init(&b, 1024);
	HF_CHECK(hf_totp_uri("Hifadhi", "wanjiru.k", "GEZDGNBVGY3TQOJQ", &b) == HF_OK);
	HF_CHECK(strcmp(hf_buf_cstr(&b), "otpauth://totp/Hifadhi:wanjiru.k?secret=GEZDGNBVGY3TQOJQ&issuer=Hifadhi"
					 "&algorithm=SHA1&digits=6&period=30") == 0);
	hf_buf_reset(&b);

	/* A space and ':' in the account are percent-encoded (in the issuer too); -._~ are kept. */
	static const char want[] = "otpauth://totp/Hifadhi%20Kenya:Wanjiru%20K%3Aops~a_b-c.d?secret=MZXW6YTBOI"
				   "&issuer=Hifadhi%20Kenya&algorithm=SHA1&digits=6&period=30";
	HF_CHECK(hf_totp_uri("Hifadhi Kenya", "Wanjiru K:ops~a_b-c.d", "MZXW6YTBOI", &b) == HF_OK);
	HF_CHECK_MSG(strcmp(hf_buf_cstr(&b), want) == 0, "%s", hf_buf_cstr(&b));
	hf_buf_reset(&b);
	/* Reserved characters and UTF-8 in the account are encoded byte by byte. */
	HF_CHECK(hf_totp_uri("Ofisi ya Ustawi", "ana&b=c?d/é", "MY", &b) == HF_OK);
	HF_CHECK_MSG(strcmp(hf_buf_cstr(&b), "otpauth://totp/Ofisi%20ya%20Ustawi:ana%26b%3Dc%3Fd%2F%C3%A9?secret=MY"
					     "&issuer=Ofisi%20ya%20Ustawi&algorithm=SHA1&digits=6&period=30") == 0,
		     "%s", hf_buf_cstr(&b));

	/* Bad arguments, and a cap that is hit, leave what was in the buffer untouched. */
	hf_buf_reset(&b);
	HF_CHECK(hf_buf_append_str(&b, "keep") == HF_OK);
	HF_CHECK(hf_totp_uri("", "a", "MY", &b) == HF_EINVAL);
	HF_CHECK(hf_totp_uri("I", "", "MY", &b) == HF_EINVAL);
	HF_CHECK(hf_totp_uri("I", "a", "", &b) == HF_EINVAL);
	HF_CHECK(hf_totp_uri("I", "a", "my", &b) == HF_EINVAL);
	HF_CHECK(hf_totp_uri("I", "a", "MY==", &b) == HF_EINVAL);
	HF_CHECK(hf_totp_uri(NULL, "a", "MY", &b) == HF_EINVAL);
	HF_CHECK(strcmp(hf_buf_cstr(&b), "keep") == 0);
	hf_buf_release(&b);
	hf_buf_init(&b, 64); /* room for the part up to the secret, not for the rest */
	HF_CHECK(hf_buf_append_str(&b, "keep") == HF_OK);
	HF_CHECK(hf_totp_uri("Hifadhi", "wanjiru.k", "GEZDGNBVGY3TQOJQ", &b) == HF_ETOOBIG);
	HF_CHECK(b.len == 4 && strcmp(hf_buf_cstr(&b), "keep") == 0);
	HF_CHECK(memmem(b.data, b.cap, "GEZD", 4) == NULL);
	hf_buf_release(&b);
}

int main(void)
{
	HF_TEST(test_base32_vectors);
	HF_TEST(test_base32_limits);
	HF_TEST(test_hotp_rfc4226);
	HF_TEST(test_totp_rfc6238);
	HF_TEST(test_match_window);
	HF_TEST(test_match_replay);
	HF_TEST(test_match_format);
	HF_TEST(test_uri);
	return hf_test_summary();
}
