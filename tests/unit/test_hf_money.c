/* test_hf_money.c - money written for providers and for people, and read back from providers.
 *
 * A provider's "4000.00" must become exactly 400000 minor units, never 399999 or 4000000: a parse error here
 * is an amount_mismatch alert at best and a wrong payment at worst. So besides the table, every amount of a
 * random sample round-trips through the decimal form, and anything that is not a plain decimal is refused.
 */
#include "hf_base.h"
#include "hf_money.h"

#include <stdlib.h>
#include <string.h>

#include "hf_test.h"

static void test_decimals(void)
{
	HF_CHECK(hf_money_decimals("KES") == 2);
	HF_CHECK(hf_money_decimals("UGX") == 0);
	HF_CHECK(hf_money_decimals("RWF") == 0);
	HF_CHECK(hf_money_decimals("KWD") == 3);
	HF_CHECK(hf_money_decimals("ZZZ") == 2);
}

static void test_write(void)
{
	static const struct {
		int64_t minor;
		const char *cur, *decimal, *display;
	} T[] = {
		{400000, "KES", "4000.00", "4,000.00"},      {5, "KES", "0.05", "0.05"},
		{0, "KES", "0.00", "0.00"},                  {-250050, "KES", "-2500.50", "-2,500.50"},
		{123456789, "KES", "1234567.89", "1,234,567.89"}, {5000, "UGX", "5000", "5,000"},
		{1234, "KWD", "1.234", "1.234"},             {100000000000LL, "TZS", "1000000000.00", "1,000,000,000.00"},
	};
	for (size_t i = 0; i < HF_ARRAY_LEN(T); i++) {
		char d[HF_MONEY_STR_MAX], p[HF_MONEY_STR_MAX];
		hf_money_decimal(T[i].minor, T[i].cur, d);
		hf_money_display(T[i].minor, T[i].cur, p);
		HF_CHECK_MSG(strcmp(d, T[i].decimal) == 0, "%lld %s -> %s", (long long)T[i].minor, T[i].cur, d);
		HF_CHECK_MSG(strcmp(p, T[i].display) == 0, "%lld %s -> %s", (long long)T[i].minor, T[i].cur, p);
	}
	char out[HF_MONEY_STR_MAX];
	hf_money_display(INT64_MIN, "KES", out); /* must not overflow */
	HF_CHECK(strcmp(out, "-92,233,720,368,547,758.08") == 0);
}

static void test_parse(void)
{
	static const struct {
		const char *s, *cur;
		bool ok;
		int64_t want;
	} T[] = {
		{"4000.00", "KES", true, 400000}, {"4000", "KES", true, 400000},   {"4000.5", "KES", true, 400050},
		{"0.01", "KES", true, 1},         {"5000", "UGX", true, 5000},     {"1.234", "KWD", true, 1234},
		{"4000.001", "KES", false, 0},    {"5000.5", "UGX", false, 0},     {"-5.00", "KES", false, 0},
		{"+5.00", "KES", false, 0},       {"4,000.00", "KES", false, 0},   {" 4000", "KES", false, 0},
		{"4000.", "KES", false, 0},       {".50", "KES", false, 0},        {"1e3", "KES", false, 0},
		{"", "KES", false, 0},            {"4000.00.00", "KES", false, 0}, {"1234567890123456", "KES", false, 0},
		{"0x10", "KES", false, 0},        {"４０００", "KES", false, 0},
	};
	for (size_t i = 0; i < HF_ARRAY_LEN(T); i++) {
		int64_t got = -1;
		bool ok = hf_money_parse(T[i].s, T[i].cur, &got);
		HF_CHECK_MSG(ok == T[i].ok && (!ok || got == T[i].want), "'%s' %s -> %d %lld", T[i].s, T[i].cur, ok,
			     (long long)got);
	}
	HF_CHECK(!hf_money_parse(NULL, "KES", &(int64_t){0}));
}

static void test_round_trip(void)
{
	static const char *const curs[] = {"KES", "UGX", "KWD"};
	srand(20261128);
	for (int i = 0; i < 20000; i++) {
		int64_t m = ((int64_t)rand() << 20 ^ rand()) % 100000000000000LL;
		const char *cur = curs[i % 3];
		char d[HF_MONEY_STR_MAX];
		hf_money_decimal(m, cur, d);
		int64_t back = -1;
		HF_CHECK_MSG(hf_money_parse(d, cur, &back) && back == m, "%lld %s -> %s -> %lld", (long long)m, cur, d,
			     (long long)back);
	}
}

int main(void)
{
	HF_TEST(test_decimals);
	HF_TEST(test_write);
	HF_TEST(test_parse);
	HF_TEST(test_round_trip);
	return hf_test_summary();
}
