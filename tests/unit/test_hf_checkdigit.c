/* test_hf_checkdigit.c - check digits against published vectors and the errors they must catch.
 *
 * A wrong check digit lets a mistyped beneficiary number reach someone else's record, so beyond the
 * published vectors this proves the property the header promises for Damm: every single-digit
 * substitution and every adjacent transposition of a valid number is rejected.
 */
#include "hf_base.h"
#include "hf_checkdigit.h"

#include <string.h>

#include "hf_test.h"

static const enum hf_check_algo all_algos[] = {HF_CHECK_NONE, HF_CHECK_LUHN, HF_CHECK_DAMM, HF_CHECK_VERHOEFF,
					       HF_CHECK_MOD11_2};

static bool valid_cstr(enum hf_check_algo algo, const char *s)
{
	return hf_check_valid(algo, s, strlen(s));
}

static int compute_cstr(enum hf_check_algo algo, const char *s)
{
	return hf_check_compute(algo, s, strlen(s));
}

static void test_parse(void)
{
	static const struct {
		const char *name;
		enum hf_check_algo algo;
	} names[] = {{"none", HF_CHECK_NONE},
		     {"luhn", HF_CHECK_LUHN},
		     {"damm", HF_CHECK_DAMM},
		     {"verhoeff", HF_CHECK_VERHOEFF},
		     {"mod11-2", HF_CHECK_MOD11_2}};
	for (size_t i = 0; i < HF_ARRAY_LEN(names); i++) {
		enum hf_check_algo got = HF_CHECK_NONE;
		HF_CHECK_MSG(hf_check_algo_parse(names[i].name, &got) && got == names[i].algo, "name=%s",
			     names[i].name);
	}
	static const char *const bad[] = {"", "Luhn", "DAMM", "mod11", "mod11-2 ", "mod 11-2", "iso7064"};
	for (size_t i = 0; i < HF_ARRAY_LEN(bad); i++) {
		enum hf_check_algo got = HF_CHECK_DAMM;
		HF_CHECK_MSG(!hf_check_algo_parse(bad[i], &got), "name='%s'", bad[i]);
		HF_CHECK_MSG(got == HF_CHECK_DAMM, "out written on failure for '%s'", bad[i]);
	}
}

static void test_published_vectors(void)
{
	static const struct {
		enum hf_check_algo algo;
		const char *payload;
		char check;
	} vectors[] = {
		/* Luhn: the Wikipedia example and a well-known card test number. */
		{HF_CHECK_LUHN, "7992739871", '3'},
		{HF_CHECK_LUHN, "411111111111111", '1'},
		{HF_CHECK_LUHN, "0", '0'},
		/* Damm: the Wikipedia example; 5724 is the valid number. */
		{HF_CHECK_DAMM, "572", '4'},
		{HF_CHECK_DAMM, "0", '0'},
		/* Verhoeff: Wikipedia's 236 -> 2363 and the classic 12345 -> 123451, 142857 -> 1428570. */
		{HF_CHECK_VERHOEFF, "236", '3'},
		{HF_CHECK_VERHOEFF, "12345", '1'},
		{HF_CHECK_VERHOEFF, "142857", '0'},
		/* ISO/IEC 7064 MOD 11-2: the standard's 0794 -> 07940 and 079 -> 079X; ORCID's published iDs
		 * 0000-0002-1825-0097 and 0000-0002-1694-233X. */
		{HF_CHECK_MOD11_2, "0794", '0'},
		{HF_CHECK_MOD11_2, "079", 'X'},
		{HF_CHECK_MOD11_2, "000000021825009", '7'},
		{HF_CHECK_MOD11_2, "000000021694233", 'X'},
	};
	for (size_t i = 0; i < HF_ARRAY_LEN(vectors); i++) {
		int got = compute_cstr(vectors[i].algo, vectors[i].payload);
		HF_CHECK_MSG(got == vectors[i].check, "algo=%d payload=%s want=%c got=%d", (int)vectors[i].algo,
			     vectors[i].payload, vectors[i].check, got);
		char full[32];
		size_t n = strlen(vectors[i].payload);
		memcpy(full, vectors[i].payload, n);
		full[n] = vectors[i].check;
		full[n + 1] = '\0';
		HF_CHECK_MSG(valid_cstr(vectors[i].algo, full), "algo=%d %s should be valid", (int)vectors[i].algo, full);
	}
	HF_CHECK(!valid_cstr(HF_CHECK_LUHN, "79927398710"));
	HF_CHECK(!valid_cstr(HF_CHECK_DAMM, "5727"));
	HF_CHECK(!valid_cstr(HF_CHECK_VERHOEFF, "2364"));
	HF_CHECK(!valid_cstr(HF_CHECK_MOD11_2, "0790"));
	HF_CHECK(!valid_cstr(HF_CHECK_MOD11_2, "07941"));
	/* 'X' means 10 only in the check position and only as the standard writes it. */
	HF_CHECK(!valid_cstr(HF_CHECK_MOD11_2, "079x"));
	HF_CHECK(!valid_cstr(HF_CHECK_MOD11_2, "07X4"));
	HF_CHECK(!valid_cstr(HF_CHECK_LUHN, "7992739871X"));
}

static void test_reads_only_len_bytes(void)
{
	/* Payloads are pointer + length: whatever follows must not be read. */
	HF_CHECK(hf_check_compute(HF_CHECK_DAMM, "572xyz", 3) == '4');
	HF_CHECK(hf_check_valid(HF_CHECK_DAMM, "5724abc", 4));
	HF_CHECK(hf_check_valid(HF_CHECK_NONE, "12a", 2));
	HF_CHECK(hf_check_valid(HF_CHECK_MOD11_2, "079X\n", 4));
}

static void test_non_digits(void)
{
	static const char *const bad[] = {"12a4", " 1234", "1234 ", "-1234", "+1234", "12.34", "\xef\xbc\x91\xef\xbc\x92",
					  "\xd9\xa1\xd9\xa2\xd9\xa3", "12/4", "12:4"};
	for (size_t a = 0; a < HF_ARRAY_LEN(all_algos); a++) {
		for (size_t i = 0; i < HF_ARRAY_LEN(bad); i++) {
			HF_CHECK_MSG(compute_cstr(all_algos[a], bad[i]) == -1, "algo=%d payload='%s'", (int)all_algos[a],
				     bad[i]);
			HF_CHECK_MSG(!valid_cstr(all_algos[a], bad[i]), "algo=%d s='%s'", (int)all_algos[a], bad[i]);
		}
		/* An embedded NUL is not a digit either. */
		HF_CHECK(hf_check_compute(all_algos[a], "12\0004", 4) == -1);
		HF_CHECK(!hf_check_valid(all_algos[a], "12\0004", 4));
		/* Nothing typed is never a valid number. */
		HF_CHECK(!hf_check_valid(all_algos[a], "", 0));
	}
}

static void test_none(void)
{
	HF_CHECK(valid_cstr(HF_CHECK_NONE, "0"));
	HF_CHECK(valid_cstr(HF_CHECK_NONE, "0123456789"));
	HF_CHECK(!valid_cstr(HF_CHECK_NONE, "079X"));
	/* No check character exists to append. */
	HF_CHECK(compute_cstr(HF_CHECK_NONE, "1234") == -1);
}

/* A fixed-seed generator, so a failure names a payload that reproduces on every run. */
static uint32_t rng_state = 0x9E3779B9u;

static uint32_t rng_next(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

/* Builds a random payload of len digits, appends its check character and returns the total length. */
static size_t make_valid(enum hf_check_algo algo, size_t len, char *s)
{
	for (size_t i = 0; i < len; i++)
		s[i] = (char)('0' + rng_next() % 10);
	int check = hf_check_compute(algo, s, len);
	HF_ASSERT(check >= 0);
	s[len] = (char)check;
	s[len + 1] = '\0';
	return len + 1;
}

/* Counts the single-character substitutions (digits, plus 'X' in MOD 11-2's check position) that still
 * validate; the detection property says there are none. */
static unsigned undetected_substitutions(enum hf_check_algo algo, char *s, size_t n)
{
	unsigned missed = 0;
	for (size_t i = 0; i < n; i++) {
		char orig = s[i];
		for (char c = '0'; c <= '9'; c++) {
			if (c == orig)
				continue;
			s[i] = c;
			if (hf_check_valid(algo, s, n))
				missed++;
		}
		if (algo == HF_CHECK_MOD11_2 && i == n - 1 && orig != 'X') {
			s[i] = 'X';
			if (hf_check_valid(algo, s, n))
				missed++;
		}
		s[i] = orig;
	}
	return missed;
}

static unsigned undetected_transpositions(enum hf_check_algo algo, char *s, size_t n)
{
	unsigned missed = 0;
	for (size_t i = 0; i + 1 < n; i++) {
		if (s[i] == s[i + 1])
			continue;
		char t = s[i];
		s[i] = s[i + 1];
		s[i + 1] = t;
		if (hf_check_valid(algo, s, n))
			missed++;
		s[i + 1] = s[i];
		s[i] = t;
	}
	return missed;
}

static void test_damm_catches_keypad_errors(void)
{
	char s[32];
	for (int round = 0; round < 200; round++) {
		size_t n = make_valid(HF_CHECK_DAMM, 1 + rng_next() % 20, s);
		HF_CHECK_MSG(hf_check_valid(HF_CHECK_DAMM, s, n), "%s", s);
		HF_CHECK_MSG(undetected_substitutions(HF_CHECK_DAMM, s, n) == 0, "substitution missed in %s", s);
		HF_CHECK_MSG(undetected_transpositions(HF_CHECK_DAMM, s, n) == 0, "transposition missed in %s", s);
	}
	/* The payload digits of the published vector, each substitution and transposition spelled out. */
	char v[] = "5724";
	HF_CHECK(undetected_substitutions(HF_CHECK_DAMM, v, 4) == 0);
	HF_CHECK(undetected_transpositions(HF_CHECK_DAMM, v, 4) == 0);
	HF_CHECK(strcmp(v, "5724") == 0);
}

static void test_others_catch_single_errors(void)
{
	char s[32];
	for (int round = 0; round < 200; round++) {
		size_t len = 1 + rng_next() % 20;
		size_t n = make_valid(HF_CHECK_VERHOEFF, len, s);
		HF_CHECK_MSG(hf_check_valid(HF_CHECK_VERHOEFF, s, n), "%s", s);
		HF_CHECK_MSG(undetected_substitutions(HF_CHECK_VERHOEFF, s, n) == 0, "verhoeff substitution in %s", s);
		HF_CHECK_MSG(undetected_transpositions(HF_CHECK_VERHOEFF, s, n) == 0, "verhoeff transposition in %s", s);

		n = make_valid(HF_CHECK_MOD11_2, len, s);
		HF_CHECK_MSG(hf_check_valid(HF_CHECK_MOD11_2, s, n), "%s", s);
		HF_CHECK_MSG(undetected_substitutions(HF_CHECK_MOD11_2, s, n) == 0, "mod11-2 substitution in %s", s);
		HF_CHECK_MSG(undetected_transpositions(HF_CHECK_MOD11_2, s, n) == 0, "mod11-2 transposition in %s", s);

		/* Luhn catches every single substitution (but not 09 <-> 90, which is why we use Damm). */
		n = make_valid(HF_CHECK_LUHN, len, s);
		HF_CHECK_MSG(hf_check_valid(HF_CHECK_LUHN, s, n), "%s", s);
		HF_CHECK_MSG(undetected_substitutions(HF_CHECK_LUHN, s, n) == 0, "luhn substitution in %s", s);
	}
}

int main(void)
{
	HF_TEST(test_parse);
	HF_TEST(test_published_vectors);
	HF_TEST(test_reads_only_len_bytes);
	HF_TEST(test_non_digits);
	HF_TEST(test_none);
	HF_TEST(test_damm_catches_keypad_errors);
	HF_TEST(test_others_catch_single_errors);
	return hf_test_summary();
}
