/* test_hf_buf.c - bounded buffers, string views, hf_strlcpy and hf_parse_i64.
 *
 * Every writer fed by outside input goes through hf_buf, so its cap is a security boundary: these tests
 * pin down that an append past the maximum is refused whole and leaves the buffer exactly as it was, and
 * that the integer parser accepts a whole decimal number in range and nothing else.
 */
#include "hf_base.h"
#include "hf_buf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hf_test.h"

static bool buf_is(const struct hf_buf *b, const char *want)
{
	size_t n = strlen(want);
	return b->len == n && strcmp(hf_buf_cstr(b), want) == 0 && (n == 0 || b->data[n] == '\0');
}

static void test_str_views(void)
{
	struct hf_str s = hf_str_from(NULL);
	HF_CHECK(s.ptr == NULL && s.len == 0);
	HF_CHECK(hf_str_eq(s, HF_STR_LIT("")));
	s = hf_str_from("abc");
	HF_CHECK(s.len == 3);
	HF_CHECK(hf_str_eq_cstr(s, "abc"));
	HF_CHECK(!hf_str_eq_cstr(s, "abcd"));
	HF_CHECK(!hf_str_eq_cstr(s, "ab"));
	HF_CHECK(!hf_str_eq_cstr(s, "abd"));
	/* A view is pointer + length: bytes past len are not part of it. */
	struct hf_str pre = {"abcdef", 3};
	HF_CHECK(hf_str_eq(pre, s));
}

static void test_empty_buffer(void)
{
	struct hf_buf b;
	hf_buf_init(&b, 16);
	HF_CHECK(strcmp(hf_buf_cstr(&b), "") == 0);
	HF_CHECK(b.len == 0);
	HF_CHECK(hf_buf_append(&b, "", 0) == HF_OK);
	HF_CHECK(b.data != NULL && b.data[0] == '\0');
	hf_buf_release(&b);
	HF_CHECK(b.data == NULL && b.len == 0);
	/* Releasing twice is harmless: cleanup labels may reach a released buffer. */
	hf_buf_release(&b);
	HF_CHECK(b.data == NULL);
}

static void test_append_cap(void)
{
	struct hf_buf b;
	hf_buf_init(&b, 8);
	HF_CHECK(hf_buf_append_str(&b, "hello") == HF_OK);
	HF_CHECK(buf_is(&b, "hello"));
	/* 5 + 4 > 8: refused whole, nothing of it written. */
	HF_CHECK(hf_buf_append_str(&b, "1234") == HF_ETOOBIG);
	HF_CHECK(buf_is(&b, "hello"));
	HF_CHECK(hf_buf_append(&b, "abc", 3) == HF_OK);
	HF_CHECK(buf_is(&b, "helloabc"));
	HF_CHECK(hf_buf_append(&b, "d", 1) == HF_ETOOBIG);
	HF_CHECK(buf_is(&b, "helloabc"));
	HF_CHECK(hf_buf_append(&b, "", 0) == HF_OK);
	HF_CHECK(buf_is(&b, "helloabc"));
	/* A length near SIZE_MAX must not wrap around the checks. */
	HF_CHECK(hf_buf_append(&b, "x", SIZE_MAX) == HF_ETOOBIG);
	HF_CHECK(hf_buf_append(&b, "x", SIZE_MAX - 8) == HF_ETOOBIG);
	HF_CHECK(buf_is(&b, "helloabc"));
	hf_buf_release(&b);

	hf_buf_init(&b, 0);
	HF_CHECK(hf_buf_append(&b, "a", 1) == HF_ETOOBIG);
	HF_CHECK(hf_buf_append(&b, "", 0) == HF_OK);
	HF_CHECK(buf_is(&b, ""));
	hf_buf_release(&b);
}

static void test_append_grows(void)
{
	/* Many small appends across several reallocations keep every byte and the terminator. */
	struct hf_buf b;
	hf_buf_init(&b, 10000);
	char want[10001];
	size_t refused = 0;
	for (size_t i = 0; i < 10000; i++) {
		char c = (char)('a' + i % 26);
		want[i] = c;
		if (hf_buf_append(&b, &c, 1) != HF_OK)
			refused++;
	}
	want[10000] = '\0';
	HF_CHECK(refused == 0);
	HF_CHECK(buf_is(&b, want));
	HF_CHECK(hf_buf_append(&b, "z", 1) == HF_ETOOBIG);
	HF_CHECK(b.cap <= b.max + 1);
	hf_buf_release(&b);
}

static void test_binary_and_nul(void)
{
	struct hf_buf b;
	hf_buf_init(&b, 32);
	HF_CHECK(hf_buf_append(&b, "a\0b", 3) == HF_OK);
	HF_CHECK(b.len == 3);
	HF_CHECK(memcmp(b.data, "a\0b", 4) == 0);
	hf_buf_release(&b);
}

static void test_appendf(void)
{
	struct hf_buf b;
	hf_buf_init(&b, 16);
	HF_CHECK(hf_buf_appendf(&b, "id=%d", 42) == HF_OK);
	HF_CHECK(hf_buf_appendf(&b, " %s", "ok") == HF_OK);
	HF_CHECK(buf_is(&b, "id=42 ok"));
	/* 8 + 9 > 16: refused, nothing written, still terminated where it was. */
	HF_CHECK(hf_buf_appendf(&b, " n=%07d", 1234567) == HF_ETOOBIG);
	HF_CHECK(buf_is(&b, "id=42 ok"));
	HF_CHECK(hf_buf_appendf(&b, "%08d", 7) == HF_OK);
	HF_CHECK(buf_is(&b, "id=42 ok00000007"));
	HF_CHECK(b.len == b.max);
	HF_CHECK(hf_buf_appendf(&b, "%s", "") == HF_OK);
	HF_CHECK(hf_buf_appendf(&b, "%c", 'x') == HF_ETOOBIG);
	HF_CHECK(buf_is(&b, "id=42 ok00000007"));
	hf_buf_release(&b);

	/* On a fresh buffer an empty format still leaves a terminated, empty string. */
	hf_buf_init(&b, 4);
	HF_CHECK(hf_buf_appendf(&b, "%s", "") == HF_OK);
	HF_CHECK(b.data != NULL && buf_is(&b, ""));
	hf_buf_release(&b);
}

static void test_reset(void)
{
	struct hf_buf b;
	hf_buf_init(&b, 16);
	HF_CHECK(hf_buf_append_str(&b, "secret") == HF_OK);
	char *mem = b.data;
	hf_buf_reset(&b);
	HF_CHECK(buf_is(&b, ""));
	HF_CHECK(b.data == mem);
	HF_CHECK(hf_buf_append_str(&b, "again") == HF_OK);
	HF_CHECK(buf_is(&b, "again"));
	hf_buf_release(&b);
}

static void test_steal(void)
{
	struct hf_buf b;
	hf_buf_init(&b, 16);
	HF_CHECK(hf_buf_append_str(&b, "owned") == HF_OK);
	char *p = hf_buf_steal(&b);
	HF_CHECK(p != NULL && strcmp(p, "owned") == 0);
	HF_CHECK(b.data == NULL && b.len == 0 && b.cap == 0);
	HF_CHECK(strcmp(hf_buf_cstr(&b), "") == 0);
	/* The buffer is reusable with the same cap, and does not touch the stolen memory. */
	HF_CHECK(hf_buf_append_str(&b, "0123456789abcdef") == HF_OK);
	HF_CHECK(hf_buf_append_str(&b, "!") == HF_ETOOBIG);
	HF_CHECK(strcmp(p, "owned") == 0);
	free(p);
	hf_buf_release(&b);

	/* Stealing from an empty buffer still gives a freeable "". */
	hf_buf_init(&b, 16);
	p = hf_buf_steal(&b);
	HF_CHECK(p != NULL && p[0] == '\0');
	free(p);
}

static void test_note(void)
{
	struct hf_buf b;
	hf_buf_init(&b, 20);
	hf_buf_note(&b, "%s", "short");
	HF_CHECK(buf_is(&b, "short"));
	/* 5 + 26 > 20: as much as fits, and the cut is marked. */
	hf_buf_note(&b, "%s", "abcdefghijklmnopqrstuvwxyz");
	HF_CHECK(b.len == 20);
	HF_CHECK_MSG(buf_is(&b, "shortabcdefghijkl..."), "got '%s'", hf_buf_cstr(&b));
	/* Full: further notes change nothing. */
	hf_buf_note(&b, "%d", 1);
	HF_CHECK(buf_is(&b, "shortabcdefghijkl..."));
	hf_buf_release(&b);

	/* A note that fits exactly is not marked as cut. */
	hf_buf_init(&b, 6);
	hf_buf_note(&b, "k=%d", 42);
	HF_CHECK(buf_is(&b, "k=42"));
	hf_buf_note(&b, "%s", "ab");
	HF_CHECK(buf_is(&b, "k=42ab"));
	hf_buf_release(&b);

	/* A note longer than any internal scratch space is still either whole or marked as cut. */
	static char big[2001];
	memset(big, 'a', sizeof(big) - 1);
	hf_buf_init(&b, 4096);
	hf_buf_note(&b, "%s", big);
	HF_CHECK_MSG(b.len == 2000 || (b.len > 3 && memcmp(b.data + b.len - 3, "...", 3) == 0),
		     "2000-byte note became %zu bytes with no cut mark", b.len);
	hf_buf_release(&b);

	/* Never past the maximum, whatever is left. */
	for (size_t max = 0; max < 12; max++) {
		hf_buf_init(&b, max);
		hf_buf_note(&b, "%s", "0123456789abcdef");
		hf_buf_note(&b, "%s", "more");
		HF_CHECK_MSG(b.len <= max, "max=%zu len=%zu", max, b.len);
		HF_CHECK(b.data == NULL || b.data[b.len] == '\0');
		hf_buf_release(&b);
	}
}

static void test_strlcpy(void)
{
	char dst[8];
	HF_CHECK(hf_strlcpy(dst, "abc", sizeof(dst)));
	HF_CHECK(strcmp(dst, "abc") == 0);
	HF_CHECK(hf_strlcpy(dst, "1234567", sizeof(dst)));
	HF_CHECK(strcmp(dst, "1234567") == 0);
	HF_CHECK(!hf_strlcpy(dst, "12345678", sizeof(dst)));
	HF_CHECK(strcmp(dst, "1234567") == 0);
	HF_CHECK(!hf_strlcpy(dst, "a much longer string", sizeof(dst)));
	HF_CHECK(strcmp(dst, "a much ") == 0);
	HF_CHECK(hf_strlcpy(dst, "", sizeof(dst)));
	HF_CHECK(dst[0] == '\0');
	HF_CHECK(!hf_strlcpy(dst, "x", 1));
	HF_CHECK(dst[0] == '\0');
	/* Size 0: nothing is written at all. */
	dst[0] = 'q';
	HF_CHECK(!hf_strlcpy(dst, "x", 0));
	HF_CHECK(dst[0] == 'q');
}

static void test_parse_i64(void)
{
	int64_t v = 0;
	HF_CHECK(hf_parse_i64("0", 0, 10, &v) == HF_OK && v == 0);
	HF_CHECK(hf_parse_i64("10", 0, 10, &v) == HF_OK && v == 10);
	HF_CHECK(hf_parse_i64("-5", -5, 5, &v) == HF_OK && v == -5);
	HF_CHECK(hf_parse_i64("007", 0, 10, &v) == HF_OK && v == 7);
	HF_CHECK(hf_parse_i64("9223372036854775807", INT64_MIN, INT64_MAX, &v) == HF_OK && v == INT64_MAX);
	HF_CHECK(hf_parse_i64("-9223372036854775808", INT64_MIN, INT64_MAX, &v) == HF_OK && v == INT64_MIN);

	static const struct {
		const char *s;
		int64_t min, max;
	} bad[] = {
		{"11", 0, 10},
		{"-1", 0, 10},
		{"-6", -5, 5},
		{"9223372036854775808", INT64_MIN, INT64_MAX},
		{"-9223372036854775809", INT64_MIN, INT64_MAX},
		{"99999999999999999999999", INT64_MIN, INT64_MAX},
		{"", INT64_MIN, INT64_MAX},
		{"-", INT64_MIN, INT64_MAX},
		{"abc", INT64_MIN, INT64_MAX},
		{"12a", INT64_MIN, INT64_MAX},
		{"a12", INT64_MIN, INT64_MAX},
		{"1 2", INT64_MIN, INT64_MAX},
		{"12 ", INT64_MIN, INT64_MAX},
		{"12\n", INT64_MIN, INT64_MAX},
		{"0x10", INT64_MIN, INT64_MAX},
		{"1e3", INT64_MIN, INT64_MAX},
		{"1.0", INT64_MIN, INT64_MAX},
		{"--1", INT64_MIN, INT64_MAX},
		/* Whitespace is junk at either end, not only at the end. */
		{" 12", INT64_MIN, INT64_MAX},
		{"\t12", INT64_MIN, INT64_MAX},
		{"\n12", INT64_MIN, INT64_MAX},
	};
	for (size_t i = 0; i < HF_ARRAY_LEN(bad); i++) {
		v = 12345;
		HF_CHECK_MSG(hf_parse_i64(bad[i].s, bad[i].min, bad[i].max, &v) == HF_EINVAL, "'%s' accepted", bad[i].s);
		HF_CHECK_MSG(v == 12345, "out written for '%s'", bad[i].s);
	}
	v = 12345;
	HF_CHECK(hf_parse_i64(NULL, 0, 10, &v) == HF_EINVAL && v == 12345);
}

int main(void)
{
	HF_TEST(test_str_views);
	HF_TEST(test_empty_buffer);
	HF_TEST(test_append_cap);
	HF_TEST(test_append_grows);
	HF_TEST(test_binary_and_nul);
	HF_TEST(test_appendf);
	HF_TEST(test_reset);
	HF_TEST(test_steal);
	HF_TEST(test_note);
	HF_TEST(test_strlcpy);
	HF_TEST(test_parse_i64);
	return hf_test_summary();
}
