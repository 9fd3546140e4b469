/* test_hf_password.c - staff passwords: Argon2id hashes and the policy a staff member meets when setting one.
 *
 * Checks what an officer would notice (which passwords are refused and that the reason says what to
 * change) and what an attacker with a copy of the database would face (Argon2id at the documented cost,
 * salted, a wrong password never verifies). Failure messages name cases by index, never by password.
 */
#include "hf_base.h"
#include "hf_password.h"

#include <pthread.h>
#include <string.h>

#include "hf_crypto.h"
#include "hf_test.h"

static const char strong16[] = "Zk9#mQ2v-L7pR4w!";

static void test_hash_verify(void)
{
	char h1[HF_PW_HASH_MAX], h2[HF_PW_HASH_MAX];
	if (!HF_CHECK(hf_password_hash(strong16, h1) == HF_OK))
		return;
	HF_CHECK(strncmp(h1, "$argon2id$", 10) == 0);
	/* OWASP's minimum: 19 MiB, 2 passes, 1 lane. */
	HF_CHECK_MSG(strstr(h1, "$m=19456,t=2,p=1$") != NULL, "%s", h1);
	HF_CHECK(strstr(h1, strong16) == NULL);
	HF_CHECK(hf_password_verify(h1, strong16));
	HF_CHECK(!hf_password_verify(h1, "Zk9#mQ2v-L7pR4w"));
	HF_CHECK(!hf_password_verify(h1, "Zk9#mQ2v-L7pR4w!!"));
	HF_CHECK(!hf_password_verify(h1, "zk9#mQ2v-L7pR4w!"));
	HF_CHECK(!hf_password_verify(h1, ""));
	HF_CHECK(!hf_password_verify(h1, NULL));
	HF_CHECK(!hf_password_needs_rehash(h1));

	/* Salted: the same password hashes differently each time, and both verify. */
	if (HF_CHECK(hf_password_hash(strong16, h2) == HF_OK)) {
		HF_CHECK(strcmp(h1, h2) != 0);
		HF_CHECK(hf_password_verify(h2, strong16));
	}

	/* Non-ASCII passwords hash and verify byte for byte. */
	static const char greek[] = "Ωμέγα-Δέλτα7";
	if (HF_CHECK(hf_password_hash(greek, h2) == HF_OK)) {
		HF_CHECK(hf_password_verify(h2, greek));
		HF_CHECK(!hf_password_verify(h2, "Ωμέγα-Δέλτα8"));
	}
}

static void test_hash_edges(void)
{
	char h[HF_PW_HASH_MAX], tampered[HF_PW_HASH_MAX];
	if (!HF_CHECK(hf_password_hash(strong16, h) == HF_OK))
		return;
	/* Other parameters (a hash from before a cost change) need a rehash, and no longer verify once altered. */
	memcpy(tampered, h, sizeof(h));
	char *t = strstr(tampered, ",t=2,");
	if (HF_CHECK(t != NULL)) {
		t[3] = '3';
		HF_CHECK(hf_password_needs_rehash(tampered));
		HF_CHECK(!hf_password_verify(tampered, strong16));
	}
	/* Malformed, empty, NULL or unterminated hashes never verify and always "need a rehash". */
	char unterminated[HF_PW_HASH_MAX];
	memset(unterminated, 'a', sizeof(unterminated));
	static const char *const bad[] = {"", "$argon2id$", "$2y$10$abcdefghijklmnopqrstuv", "plain"};
	for (size_t i = 0; i < HF_ARRAY_LEN(bad); i++) {
		HF_CHECK_MSG(!hf_password_verify(bad[i], strong16), "bad hash %zu verified", i);
		HF_CHECK_MSG(hf_password_needs_rehash(bad[i]), "bad hash %zu", i);
	}
	HF_CHECK(!hf_password_verify(NULL, strong16));
	HF_CHECK(hf_password_needs_rehash(NULL));
	HF_CHECK(!hf_password_verify(unterminated, strong16));
	HF_CHECK(hf_password_needs_rehash(unterminated));

	/* Inputs no policy allows are refused before any hashing work. */
	char big[4 * HF_PW_MAX_CHARS + 2];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(tampered, h, sizeof(h));
	HF_CHECK(hf_password_hash(big, tampered) == HF_ETOOBIG);
	HF_CHECK(memcmp(tampered, h, sizeof(h)) == 0);
	HF_CHECK(hf_password_hash(NULL, tampered) == HF_EINVAL);
	HF_CHECK(!hf_password_verify(h, big));
}

/* Checks a verdict; on refusal also that the reason is a sentence and does not repeat the password. */
static bool verdict(const char *pw, const char *user, bool want, const char *why_has, size_t idx, int line)
{
	char why[256];
	memset(why, 'Q', sizeof(why));
	bool got = hf_password_acceptable(pw, user, why, sizeof(why));
	bool ok = got == want;
	if (ok && !got) {
		size_t n = strnlen(why, sizeof(why));
		ok = n > 20 && n < sizeof(why) && why[n - 1] == '.' && why[0] >= 'A' && why[0] <= 'Z' &&
		     (!pw || strlen(pw) < 4 || strstr(why, pw) == NULL) && (!why_has || strstr(why, why_has) != NULL);
	}
	if (ok && got)
		ok = why[0] == '\0';
	return HF_CHECK_MSG(ok, "line %d case %zu: want %s, got %s (%s)", line, idx, want ? "accepted" : "refused",
			    got ? "accepted" : "refused", got ? "" : why);
}

#define EXPECT(list, user, want, why_has)                                                                       \
	do {                                                                                                  \
		for (size_t i_ = 0; i_ < HF_ARRAY_LEN(list); i_++)                                            \
			verdict((list)[i_], (user), (want), (why_has), i_, __LINE__);                         \
	} while (0)

static void test_length(void)
{
	static const char *const too_short[] = {"Zk9#mQ2v-L7", "", "Ωμέγα-Δέλτα" /* 11 characters, 21 bytes */};
	EXPECT(too_short, NULL, false, "at least 12");

	static const char *const fine[] = {
		"Zk9#mQ2v-L7p",
		"Ωμέγα-Δέλτα7", /* 12 code points of 2-byte UTF-8 */
		"Jüß€ñ-Ωκ7ǅ汉字",
		strong16,
	};
	EXPECT(fine, NULL, true, NULL);

	/* 128 characters is the maximum, counted in code points: 128 four-byte emoji are accepted too. */
	char pw[4 * HF_PW_MAX_CHARS + 8];
	uint32_t x = 12345;
	for (size_t i = 0; i < HF_PW_MAX_CHARS; i++) {
		x = x * 1103515245u + 12345u;
		pw[i] = (char)('!' + (x >> 16) % 94);
	}
	pw[HF_PW_MAX_CHARS] = '\0';
	verdict(pw, NULL, true, NULL, 0, __LINE__);
	pw[HF_PW_MAX_CHARS] = 'x';
	pw[HF_PW_MAX_CHARS + 1] = '\0';
	verdict(pw, NULL, false, "at most 128", 1, __LINE__);

	size_t o = 0;
	for (uint32_t i = 0; i < HF_PW_MAX_CHARS; i++) {
		uint32_t cp = 0x1f600 + (i * 7) % 80;
		pw[o++] = (char)(0xf0 | (cp >> 18));
		pw[o++] = (char)(0x80 | ((cp >> 12) & 0x3f));
		pw[o++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		pw[o++] = (char)(0x80 | (cp & 0x3f));
	}
	pw[o] = '\0';
	verdict(pw, NULL, true, NULL, 2, __LINE__);
	pw[o++] = '!';
	pw[o] = '\0';
	verdict(pw, NULL, false, "at most 128", 3, __LINE__);
}

static void test_text(void)
{
	static const char *const invalid[] = {
		"Zk9#mQ2v-L7p\xff",	       /* not UTF-8 at all */
		"Zk9#mQ2v-L7p\xc3",	       /* cut in the middle of a character */
		"Zk9#mQ2v-L7p\xc0\xaf",	       /* overlong '/' */
		"Zk9#mQ2v-L7p\xe0\x80\xaf",    /* overlong, 3 bytes */
		"Zk9#mQ2v-L7p\xed\xa0\x80",    /* UTF-16 surrogate */
		"Zk9#mQ2v-L7p\xf4\x90\x80\x80", /* past U+10FFFF */
		"Zk9#mQ2v-L7p\x80",	       /* stray continuation byte */
	};
	EXPECT(invalid, NULL, false, "not valid text");
	static const char *const control[] = {
		"Zk9#mQ2v\tL7pR4w",
		"Zk9#mQ2v-L7pR4w\n",
		"Zk9#mQ2v\x7fL7pR4w",
		"Zk9#mQ2v\xc2\x85L7pR4w", /* U+0085, a C1 control */
		"\x1bZk9#mQ2v-L7pR4w",
	};
	EXPECT(control, NULL, false, "control character");
	verdict(NULL, NULL, false, NULL, 0, __LINE__);
}

static void test_username(void)
{
	static const char *const with_name[] = {"xWanjiru9#mQ2v", "WANJIRU-kz93#Lq", "Lq93#kz-wanjiru"};
	EXPECT(with_name, "wanjiru", false, "user name");
	/* Short names are not checked (they would refuse too much), nor is a missing one. */
	static const char *const fine[] = {"xWanjiru9#mQ2v", "Jo9#mQ2v-L7pR4w"};
	EXPECT(fine, "jo", true, NULL);
	EXPECT(fine, NULL, true, NULL);
	EXPECT(fine, "", true, NULL);
}

static void test_predictable(void)
{
	static const char *const common[] = {"passwordpassword", "Password1234", "QWERTY123456", "administrator",
					     "iloveyouiloveyou", "qwertyuiopasdfgh", "1q2w3e4r5t6y"};
	EXPECT(common, NULL, false, "most common");

	static const char *const one_char[] = {"aaaaaaaaaaaaaaa", "AAAAAaaaaaaaaaaa", "############",
					       "éééééééééééé", "111111111111111111111111"};
	EXPECT(one_char, NULL, false, "one character repeated");

	static const char *const runs[] = {"123456789012345", "abcdefghijklmn", "ZYXWVUTSRQPO", "9876543210987",
					   "xyzabcdefghij", "AbCdEfGhIjKlM"};
	EXPECT(runs, NULL, false, "consecutive");

	static const char *const repeats[] = {"abcabcabcabc", "Kamba2Kamba2Kamba2", "qwe!qwe!qwe!qwe!",
					      "ÄÖÜäöüÄÖÜäöü", "heyhoheyhoheyhoheyhoheyhoheyho"};
	EXPECT(repeats, NULL, false, "repeats a short sequence");
	/* A strong 12-character unit typed twice is at least as strong as the unit: accepted. */
	verdict("Zk9#mQ2v-L7pZk9#mQ2v-L7p", NULL, true, NULL, 0, __LINE__);
	/* Neither a run nor a repetition, though it has pieces of both. */
	verdict("abcdefgh-Zk9#mQ2v-L7pR", NULL, true, NULL, 1, __LINE__);
}

static void test_cracklib(void)
{
	/* Short passwords go through cracklib, whose reason is passed on. */
	verdict("Butterflies1", NULL, false, "dictionary word", 0, __LINE__);
	verdict("Photographer7", NULL, false, "dictionary word", 1, __LINE__);
	verdict("monkey12345678", NULL, false, "simplistic", 2, __LINE__);
	verdict("rootrootroot1", NULL, false, "DIFFERENT characters", 3, __LINE__);

	/* Passphrases are accepted. "first snow on the hill fed us" has five neighbouring pairs adjacent in
	 * ASCII ("rs", "st", "no", "on", "fe", "ed"), which is all it takes for cracklib to call it
	 * "systematic": it is why passwords of 20 characters or more skip cracklib. */
	static const char *const passphrases[] = {
		"correct horse battery staple",
		"first snow on the hill fed us",
		"kuku wa mama anakula mchele mbichi",
		"bring 12345678 cakes to the office",
	};
	EXPECT(passphrases, NULL, true, NULL);
	verdict(strong16, NULL, true, NULL, 0, __LINE__);
}

static void test_why_buffer(void)
{
	/* why is always terminated, even when the sentence does not fit, and may be absent. */
	char why[16];
	memset(why, 'Q', sizeof(why));
	HF_CHECK(!hf_password_acceptable("short", NULL, why, sizeof(why)));
	HF_CHECK(strnlen(why, sizeof(why)) == sizeof(why) - 1);
	memset(why, 'Q', sizeof(why));
	HF_CHECK(!hf_password_acceptable("Butterflies1", NULL, why, sizeof(why)));
	HF_CHECK(strnlen(why, sizeof(why)) == sizeof(why) - 1);
	HF_CHECK(!hf_password_acceptable("short", NULL, NULL, 0));
	HF_CHECK(!hf_password_acceptable("Butterflies1", NULL, NULL, 0));
	HF_CHECK(hf_password_acceptable(strong16, NULL, NULL, 0));
	why[0] = 'Q';
	HF_CHECK(!hf_password_acceptable("short", NULL, why, 1) && why[0] == '\0');
}

/* cracklib is not thread-safe: verdicts must stay right when staff set passwords at the same time. */
static void *policy_worker(void *arg)
{
	unsigned *wrong = arg;
	for (int i = 0; i < 40; i++) {
		char why[256];
		if (hf_password_acceptable("Butterflies1", "wanjiru", why, sizeof(why)) ||
		    !strstr(why, "dictionary word"))
			(*wrong)++;
		if (!hf_password_acceptable("Zk9#mQ2v-L7pR4w!", "wanjiru", why, sizeof(why)))
			(*wrong)++;
		if (hf_password_acceptable("Photographer7", "wanjiru", why, sizeof(why)))
			(*wrong)++;
	}
	return NULL;
}

static void test_threads(void)
{
	pthread_t th[4];
	unsigned wrong[4] = {0};
	for (size_t i = 0; i < HF_ARRAY_LEN(th); i++)
		HF_ASSERT(pthread_create(&th[i], NULL, policy_worker, &wrong[i]) == 0);
	for (size_t i = 0; i < HF_ARRAY_LEN(th); i++) {
		pthread_join(th[i], NULL);
		HF_CHECK_MSG(wrong[i] == 0, "thread %zu: %u wrong verdicts", i, wrong[i]);
	}
}

int main(void)
{
	if (hf_crypto_init() != HF_OK) {
		HF_CHECK(!"hf_crypto_init failed");
		return hf_test_summary();
	}
	HF_TEST(test_hash_verify);
	HF_TEST(test_hash_edges);
	HF_TEST(test_length);
	HF_TEST(test_text);
	HF_TEST(test_username);
	HF_TEST(test_predictable);
	HF_TEST(test_cracklib);
	HF_TEST(test_why_buffer);
	HF_TEST(test_threads);
	return hf_test_summary();
}
