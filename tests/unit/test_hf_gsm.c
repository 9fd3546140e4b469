/* test_hf_gsm.c - GSM-7 / UCS-2 measurement, USSD and SMS limits, and cutting text at a word boundary.
 *
 * A screen that is one character too long is cut off by the network, and one "ā" more than halves what
 * a screen holds: these cases are the ones a translator trips on (€ [ ^ cost two septets, é is GSM-7,
 * ŋ ā and emoji force UCS-2, a non-BMP character is two UTF-16 units), plus the exact boundaries.
 */
#include "hf_base.h"
#include "hf_gsm.h"

#include <string.h>

#include "hf_test.h"

static struct hf_gsm_count count(const char *s)
{
	struct hf_gsm_count c = {0};
	HF_CHECK_MSG(hf_gsm_count(s, strlen(s), &c) == HF_OK, "'%s' is valid UTF-8", s);
	return c;
}

/* s repeated n times into buf (at least n * strlen(s) + 1 bytes). */
static const char *rep(char *buf, const char *s, size_t n)
{
	size_t k = strlen(s);
	for (size_t i = 0; i < n; i++)
		memcpy(buf + i * k, s, k);
	buf[n * k] = '\0';
	return buf;
}

static void test_known_characters(void)
{
	static const struct {
		const char *s;
		bool gsm7;
		size_t units;
	} cases[] = {
		{"", true, 0},
		{"Hello", true, 5},
		{"€", true, 2},
		{"[", true, 2},
		{"^", true, 2},
		{"{}\\|~]", true, 12},
		{"\f", true, 2},
		{"é", true, 1},
		{"è à ù ì ò É Ç ñ ü ß Å æ Ø", true, 25},
		{"£$¥@_¡¿§¤", true, 9},
		{"ΔΦΓΛΩΠΨΣΘΞ", true, 10},
		{"line\r\nbreak", true, 11},
		{"KES 4,000.00", true, 12},
		{"a€b", true, 4},
		{"ŋ", false, 1},
		{"ā", false, 1},
		{"ç", false, 1},
		{"ê", false, 1},
		{"`", false, 1},
		{"\t", false, 1},
		{"😀", false, 2},
		{"Malipo ā€", false, 9},
		{"a😀b", false, 4},
	};
	for (size_t i = 0; i < HF_ARRAY_LEN(cases); i++) {
		struct hf_gsm_count c = count(cases[i].s);
		HF_CHECK_MSG(c.gsm7 == cases[i].gsm7 && c.units == cases[i].units, "'%s': gsm7=%d units=%zu",
			     cases[i].s, c.gsm7, c.units);
	}
	struct hf_gsm_count c = count("ab😀ŋ");
	HF_CHECK(c.chars == 4 && c.first_non_gsm == 0x1F600);
	c = count("é€");
	HF_CHECK(c.chars == 2 && c.first_non_gsm == 0);
	HF_CHECK(hf_gsm_septets('A') == 1 && hf_gsm_septets('^') == 2 && hf_gsm_septets(0x20AC) == 2);
	HF_CHECK(hf_gsm_septets(0x14B) == 0 && hf_gsm_septets(0x101) == 0 && hf_gsm_septets(0x1B) == 0);
}

static void test_invalid_utf8(void)
{
	static const char *const bad[] = {
		"\xC3",		    /* truncated */
		"\xC0\xAF",	    /* overlong '/' */
		"\xE0\x80\xAF",	    /* overlong */
		"\xED\xA0\x80",	    /* a surrogate */
		"\xF4\x90\x80\x80", /* past U+10FFFF */
		"\x80",		    /* a lone continuation */
		"ok\xFF",
	};
	for (size_t i = 0; i < HF_ARRAY_LEN(bad); i++) {
		struct hf_gsm_count c = {.units = 77};
		HF_CHECK_MSG(hf_gsm_count(bad[i], strlen(bad[i]), &c) == HF_EINVAL && c.units == 77, "case %zu", i);
		size_t len = 5, next = 5, seg = 5;
		HF_CHECK(hf_gsm_cut(bad[i], strlen(bad[i]), true, 100, &len, &next) == HF_EINVAL && len == 5);
		HF_CHECK(hf_gsm_sms_segments(bad[i], strlen(bad[i]), &seg) == HF_EINVAL && seg == 5);
		HF_CHECK(!hf_gsm_fits_ussd(bad[i], strlen(bad[i])));
	}
	/* Invalid bytes after the part that fits are refused too: the whole text is checked. */
	size_t len, next;
	HF_CHECK(hf_gsm_cut("hello world\xC3", 12, true, 5, &len, &next) == HF_EINVAL);
}

/* Whether s repeated n times fits a USSD screen. */
static bool fits_rep(const char *s, size_t n)
{
	char buf[1024];
	rep(buf, s, n);
	return hf_gsm_fits_ussd(buf, strlen(buf));
}

static void test_ussd_limits(void)
{
	char buf[1024];
	HF_CHECK(HF_GSM_USSD_GSM7_MAX == 182 && HF_GSM_USSD_UCS2_MAX == 80);
	HF_CHECK(hf_gsm_fits_ussd(rep(buf, "a", 182), 182));
	HF_CHECK(!hf_gsm_fits_ussd(rep(buf, "a", 183), 183));
	HF_CHECK(fits_rep("€", 91));
	HF_CHECK(!fits_rep("€", 92));
	HF_CHECK(fits_rep("é", 182));
	HF_CHECK(fits_rep("ā", 80));
	HF_CHECK(!fits_rep("ā", 81));
	HF_CHECK(fits_rep("😀", 40));
	HF_CHECK(!fits_rep("😀", 41));
	/* One ŋ among 100 GSM characters: the whole screen is UCS-2 and no longer fits. */
	rep(buf, "a", 100);
	memcpy(buf + 100, "ŋ", sizeof("ŋ"));
	HF_CHECK(!hf_gsm_fits_ussd(buf, strlen(buf)));
	struct hf_gsm_count c = count(buf);
	HF_CHECK(!c.gsm7 && c.units == 101 && hf_gsm_fits(&c, 182, 101) && !hf_gsm_fits(&c, 182, 100));
}

static size_t segments(const char *s)
{
	size_t n = 0;
	HF_CHECK(hf_gsm_sms_segments(s, strlen(s), &n) == HF_OK);
	return n;
}

static void test_sms_segments(void)
{
	char buf[2048];
	HF_CHECK(segments("") == 1);
	HF_CHECK(segments(rep(buf, "a", 160)) == 1);
	HF_CHECK(segments(rep(buf, "a", 161)) == 2);
	HF_CHECK(segments(rep(buf, "a", 306)) == 2);
	HF_CHECK(segments(rep(buf, "a", 307)) == 3);
	HF_CHECK(segments(rep(buf, "€", 80)) == 1);
	HF_CHECK(segments(rep(buf, "€", 81)) == 2);
	/* 152 + € + 152 = 306 septets, but the € cannot be split: 152 | € + 151 | 1. */
	rep(buf, "a", 152);
	rep(buf + 152, "€", 1);
	rep(buf + strlen(buf), "a", 152);
	HF_CHECK(segments(buf) == 3);
	HF_CHECK(segments(rep(buf, "ā", 70)) == 1);
	HF_CHECK(segments(rep(buf, "ā", 71)) == 2);
	HF_CHECK(segments(rep(buf, "ā", 134)) == 2);
	HF_CHECK(segments(rep(buf, "ā", 135)) == 3);
	/* 66 + emoji + 66 = 134 units, the surrogate pair is not split: 66 | emoji + 65 | 1. */
	rep(buf, "ā", 66);
	rep(buf + strlen(buf), "😀", 1);
	rep(buf + strlen(buf), "ā", 66);
	HF_CHECK(segments(buf) == 3);
}

#define CUT(s, gsm7, max, want_len, want_next) cut_((s), (gsm7), (max), (want_len), (want_next), __LINE__)
static void cut_(const char *s, bool gsm7, size_t max, size_t want_len, size_t want_next, int at)
{
	size_t len = 999, next = 999;
	hf_err e = hf_gsm_cut(s, strlen(s), gsm7, max, &len, &next);
	hf_test_check_(e == HF_OK && len == want_len && next == want_next, __FILE__, at, "cut", "'%s' max %zu: len %zu next %zu",
		       s, max, len, next);
}

static void test_cut(void)
{
	CUT("abc", true, 3, 3, 3);			/* everything fits */
	CUT("", true, 0, 0, 0);
	CUT("Hello world foo", true, 8, 5, 6);		/* at the space before "wo" */
	CUT("Hello world foo", true, 11, 11, 12);	/* the boundary right after the fitting prefix */
	CUT("Hello world foo", true, 12, 11, 12);
	CUT("abcdefghij", true, 4, 4, 4);		/* one long word: a hard cut */
	CUT("ab  cd", true, 3, 2, 4);			/* trailing spaces dropped, leading ones skipped */
	CUT("line one\nline two", true, 12, 8, 9);	/* a line break is a boundary */
	CUT("€€€", true, 3, 3, 3);			/* an escape pair is never split */
	CUT("a€", true, 2, 1, 1);
	CUT("éééé", true, 2, 4, 4);			/* never inside a UTF-8 sequence */
	CUT("ā😀", false, 2, 2, 2);			/* nor a surrogate pair */
	CUT("ā😀", false, 3, 6, 6);
	CUT("abc ŋx", true, 10, 3, 4);			/* GSM-7: a character it cannot carry ends the part */
	CUT("abc ŋx", false, 10, 7, 7);
	CUT("abc", true, 0, 0, 0);			/* nothing fits */
	CUT(" abc", true, 2, 2, 2);			/* a leading space is not a word boundary */
	char buf[512];
	/* 190 septets of words: the first part is the longest run of whole words within 182. */
	rep(buf, "word ", 38);
	size_t len, next;
	HF_CHECK(hf_gsm_cut(buf, strlen(buf), true, 182, &len, &next) == HF_OK);
	HF_CHECK_MSG(len == 179 && next == 180 && buf[len] == ' ', "len %zu next %zu", len, next);
	HF_CHECK(hf_gsm_fits_ussd(buf, len));
}

int main(void)
{
	HF_TEST(test_known_characters);
	HF_TEST(test_invalid_utf8);
	HF_TEST(test_ussd_limits);
	HF_TEST(test_sms_segments);
	HF_TEST(test_cut);
	return hf_test_summary();
}
