#include "hf_base.h"
#include "hf_checkdigit.h"

/* hf_checkdigit.c - Luhn, Damm, Verhoeff and ISO/IEC 7064 MOD 11-2 check characters.
 *
 * Numbers that people read aloud or type on a keypad (beneficiary numbers, national IDs) are checked
 * before anything is looked up, so a mistyped digit is answered with "check the number" instead of
 * reaching the wrong record. Everything here is table-driven integer arithmetic on ASCII digits: no
 * locale, no allocation, safe on any thread.
 */

#include <string.h>

static const struct {
	const char *name;
	enum hf_check_algo algo;
} algo_names[] = {
	{"none", HF_CHECK_NONE},
	{"luhn", HF_CHECK_LUHN},
	{"damm", HF_CHECK_DAMM},
	{"verhoeff", HF_CHECK_VERHOEFF},
	{"mod11-2", HF_CHECK_MOD11_2},
};

/* Damm's totally anti-symmetric quasigroup of order 10 (Damm 2004, the table in common use). */
static const uint8_t damm_table[10][10] = {
	{0, 3, 1, 7, 5, 9, 8, 6, 4, 2}, {7, 0, 9, 2, 1, 5, 4, 8, 6, 3}, {4, 2, 0, 6, 8, 7, 1, 3, 5, 9},
	{1, 7, 5, 0, 9, 8, 3, 4, 2, 6}, {6, 1, 2, 3, 0, 4, 5, 9, 7, 8}, {3, 6, 7, 4, 2, 0, 9, 5, 8, 1},
	{5, 8, 6, 9, 7, 2, 0, 1, 3, 4}, {8, 9, 4, 5, 3, 6, 2, 0, 1, 7}, {9, 4, 3, 8, 6, 1, 7, 2, 0, 5},
	{2, 5, 8, 1, 4, 3, 6, 7, 9, 0},
};

/* Verhoeff: multiplication in the dihedral group D5, the position permutation and the inverses. */
static const uint8_t verhoeff_d[10][10] = {
	{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 2, 3, 4, 0, 6, 7, 8, 9, 5}, {2, 3, 4, 0, 1, 7, 8, 9, 5, 6},
	{3, 4, 0, 1, 2, 8, 9, 5, 6, 7}, {4, 0, 1, 2, 3, 9, 5, 6, 7, 8}, {5, 9, 8, 7, 6, 0, 4, 3, 2, 1},
	{6, 5, 9, 8, 7, 1, 0, 4, 3, 2}, {7, 6, 5, 9, 8, 2, 1, 0, 4, 3}, {8, 7, 6, 5, 9, 3, 2, 1, 0, 4},
	{9, 8, 7, 6, 5, 4, 3, 2, 1, 0},
};
static const uint8_t verhoeff_p[8][10] = {
	{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 5, 7, 6, 2, 8, 3, 0, 9, 4}, {5, 8, 0, 3, 7, 9, 6, 1, 4, 2},
	{8, 9, 1, 6, 0, 4, 3, 5, 2, 7}, {9, 4, 5, 3, 1, 2, 6, 8, 7, 0}, {4, 2, 8, 6, 5, 7, 3, 9, 0, 1},
	{2, 7, 9, 3, 8, 0, 6, 4, 1, 5}, {7, 0, 4, 6, 9, 1, 3, 2, 5, 8},
};
static const uint8_t verhoeff_inv[10] = {0, 4, 3, 2, 1, 5, 6, 7, 8, 9};

static bool all_digits(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

bool hf_check_algo_parse(const char *name, enum hf_check_algo *out)
{
	if (!name)
		return false;
	for (size_t i = 0; i < HF_ARRAY_LEN(algo_names); i++) {
		if (strcmp(name, algo_names[i].name) == 0) {
			*out = algo_names[i].algo;
			return true;
		}
	}
	return false;
}

/* Luhn: from the right, double every second digit starting with the one next to the check digit. */
static int luhn_compute(const char *p, size_t len)
{
	unsigned sum = 0;
	bool dbl = true;
	for (size_t i = len; i-- > 0; dbl = !dbl) {
		unsigned d = (unsigned)(p[i] - '0');
		if (dbl) {
			d *= 2;
			if (d > 9)
				d -= 9;
		}
		sum += d;
	}
	return (int)((10 - sum % 10) % 10);
}

static int damm_compute(const char *p, size_t len)
{
	unsigned interim = 0;
	for (size_t i = 0; i < len; i++)
		interim = damm_table[interim][p[i] - '0'];
	return (int)interim;
}

/* Verhoeff: positions count from the right, and position 0 belongs to the check digit still to come. */
static int verhoeff_compute(const char *p, size_t len)
{
	unsigned c = 0;
	size_t pos = 1;
	for (size_t i = len; i-- > 0; pos++)
		c = verhoeff_d[c][verhoeff_p[pos % 8][p[i] - '0']];
	return verhoeff_inv[c];
}

/* ISO/IEC 7064 MOD 11-2, pure system: the check value 10 is written as 'X'. */
static int mod11_2_compute(const char *p, size_t len)
{
	unsigned acc = 0;
	for (size_t i = 0; i < len; i++)
		acc = ((acc + (unsigned)(p[i] - '0')) * 2) % 11;
	unsigned check = (12 - acc) % 11;
	return check == 10 ? 'X' : (int)('0' + check);
}

int hf_check_compute(enum hf_check_algo algo, const char *payload, size_t len)
{
	if (len > 0 && (!payload || !all_digits(payload, len)))
		return -1;
	switch (algo) {
	case HF_CHECK_NONE:
		/* There is no check character to append. */
		return -1;
	case HF_CHECK_LUHN:
		return '0' + luhn_compute(payload, len);
	case HF_CHECK_DAMM:
		return '0' + damm_compute(payload, len);
	case HF_CHECK_VERHOEFF:
		return '0' + verhoeff_compute(payload, len);
	case HF_CHECK_MOD11_2:
		return mod11_2_compute(payload, len);
	}
	HF_ASSERT(!"unknown check-digit algorithm");
	return -1;
}

bool hf_check_valid(enum hf_check_algo algo, const char *s, size_t len)
{
	if (!s || len == 0)
		return false;
	if (algo == HF_CHECK_NONE)
		return all_digits(s, len);
	/* Only MOD 11-2 has a non-digit check character, and only upper-case 'X' as the standard writes it. */
	if (!all_digits(s, len - 1))
		return false;
	int check = hf_check_compute(algo, s, len - 1);
	return check >= 0 && s[len - 1] == (char)check;
}
