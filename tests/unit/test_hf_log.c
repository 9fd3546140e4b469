/* test_hf_log.c - masking of personal data and the shape of log lines.
 *
 * Logs leave the machine (journald, support tickets), so the masking helpers are the last line between a
 * beneficiary's phone number, ID or name and anyone reading them. These tests check that a mask never
 * shows the whole value, keeps only the documented hints, and stays valid UTF-8 for names in any script;
 * and that a log line is one key=value line carrying the level, place and request id.
 */
#include "hf_base.h"
#include "hf_json.h"
#include "hf_log.h"

#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "hf_test.h"

static bool all_stars(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != '*')
			return false;
	return true;
}

static void test_mask_phone(void)
{
	char out[64];
	HF_CHECK(strcmp(hf_mask_phone("+254712345678", out, sizeof(out)), "+254******678") == 0);
	HF_CHECK(out == hf_mask_phone("+254712345678", out, sizeof(out)));
	HF_CHECK(strcmp(hf_mask_phone("0712345678", out, sizeof(out)), "0712***678") == 0);
	/* Too short to show any hint safely: all masked. */
	HF_CHECK(strcmp(hf_mask_phone("1234567", out, sizeof(out)), "*******") == 0);
	HF_CHECK(strcmp(hf_mask_phone("", out, sizeof(out)), "") == 0);
	HF_CHECK(strcmp(hf_mask_phone(NULL, out, sizeof(out)), "") == 0);
}

static void test_mask_id(void)
{
	char out[64];
	HF_CHECK(strcmp(hf_mask_id("12345678", out, sizeof(out)), "******78") == 0);
	HF_CHECK(strcmp(hf_mask_id("A1234567B", out, sizeof(out)), "*******7B") == 0);
	HF_CHECK(strcmp(hf_mask_id("12", out, sizeof(out)), "**") == 0);
	HF_CHECK(strcmp(hf_mask_id("1", out, sizeof(out)), "*") == 0);
}

static void test_mask_name(void)
{
	char out[64];
	HF_CHECK(strcmp(hf_mask_name("Wanjiru", out, sizeof(out)), "W******") == 0);
	HF_CHECK(strcmp(hf_mask_name("Wanjiru Kamau", out, sizeof(out)), "W************") == 0);
	HF_CHECK(strcmp(hf_mask_name("A", out, sizeof(out)), "*") == 0);
	/* A one-letter name is masked whole, however many bytes that letter takes. */
	HF_CHECK_MSG(strcmp(hf_mask_name("\xc3\x89", out, sizeof(out)), "*") == 0, "one-letter name shown");
	/* A name in another script: one '*' per masked character, never half a character. */
	HF_CHECK_MSG(strcmp(hf_mask_name("Ze\xcc\x81na\xc3\xaf" "da", out, sizeof(out)), "Z*******") == 0, "got %s", out);
}

/* The property every mask promises, over many lengths: the full value never appears in the output. */
static void test_masks_never_show_the_value(void)
{
	typedef const char *(*mask_fn)(const char *, char *, size_t);
	static const mask_fn masks[] = {hf_mask_phone, hf_mask_id, hf_mask_name};
	static const char digits[] = "25471234567890123456";
	char in[32], out[64];
	unsigned shown = 0;
	for (size_t m = 0; m < HF_ARRAY_LEN(masks); m++) {
		for (size_t n = 1; n < sizeof(digits); n++) {
			memcpy(in, digits, n);
			in[n] = '\0';
			masks[m](in, out, sizeof(out));
			if (strstr(out, in) != NULL || strlen(out) != n)
				shown++;
		}
	}
	HF_CHECK_MSG(shown == 0, "%u masks showed the whole value or changed its length", shown);
}

static void test_mask_truncates(void)
{
	char out[6];
	memset(out, 'Z', sizeof(out));
	hf_mask_phone("+254712345678", out, sizeof(out));
	HF_CHECK(strlen(out) == 5 && strncmp(out, "+254*", 5) == 0);
	hf_mask_id("12345678", out, 1);
	HF_CHECK(out[0] == '\0');
	out[0] = 'Q';
	hf_mask_name("Wanjiru", out, 0);
	HF_CHECK(out[0] == 'Q');
}

/* Names whose first letter is one, two, three or four bytes of UTF-8, and ones with combining marks. */
static const char *const utf8_names[] = {
	"\xc3\x89lodie",                                     /* Élodie */
	"\xc3\x91\x61mbi",                                   /* Ñambi */
	"\xe1\x8a\xa0\xe1\x89\xa0\xe1\x89\xa0",             /* አበበ (Amharic) */
	"\xd8\xb9\xd8\xa7\xd8\xa6\xd8\xb4\xd8\xa9",         /* عائشة (Arabic) */
	"\xe0\xa4\x85\xe0\xa4\xae\xe0\xa4\xbf\xe0\xa4\xa4", /* अमित (Devanagari) */
	"\xf0\x9d\x90\x80nna",                               /* 𝐀nna: a four-byte first letter */
	"Ze\xcc\x81na\xc3\xaf" "da",                            /* Zénaïda, with a combining accent */
	"N\xe2\x80\x99" "Dour",                                 /* N'Dour with a typographic apostrophe */
};

/* Bytes in the UTF-8 sequence that starts with lead. */
static size_t utf8_seq_len(unsigned char lead)
{
	return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}

static void test_masked_names_are_utf8(void)
{
	char out[64];
	for (size_t i = 0; i < HF_ARRAY_LEN(utf8_names); i++) {
		hf_mask_name(utf8_names[i], out, sizeof(out));
		HF_CHECK_MSG(hf_utf8_valid_text(out, strlen(out)), "mask of name %zu is not valid UTF-8", i);
		/* The documented shape: the first character whole, then only stars. */
		size_t k = utf8_seq_len((unsigned char)utf8_names[i][0]);
		HF_CHECK_MSG(strlen(out) > k && memcmp(out, utf8_names[i], k) == 0 && all_stars(out + k, strlen(out) - k),
			     "mask of name %zu is not first letter + stars", i);
	}
}

/* Runs fn with stderr redirected into a temporary file and returns what was written (static storage). */
static const char *capture_stderr(void (*fn)(void))
{
	static char text[8192];
	char path[] = "/tmp/hf_test_log_XXXXXX";
	int fd = mkstemp(path);
	HF_ASSERT(fd >= 0);
	unlink(path);
	fflush(stderr);
	int saved = dup(STDERR_FILENO);
	HF_ASSERT(saved >= 0 && dup2(fd, STDERR_FILENO) >= 0);
	fn();
	fflush(stderr);
	HF_ASSERT(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
	close(fd);
	text[n > 0 ? n : 0] = '\0';
	return text;
}

static void log_basic(void)
{
	hf_log_set_level(HF_LOG_INFO);
	hf_log_set_filter(NULL);
	hf_log_set_request_id("req-123");
	hf_log(HF_LOG_WARN, "core.db", "msg=\"query failed\" code=%d", 1213);
	hf_log(HF_LOG_DEBUG, "core.db", "msg=\"hidden\"");
	hf_log_set_request_id(NULL);
	hf_log(HF_LOG_ERROR, "gw.kannel", "msg=\"no rid\"");
}

static void log_filtered(void)
{
	hf_log_set_level(HF_LOG_DEBUG);
	hf_log_set_filter("gw.");
	hf_log(HF_LOG_ERROR, "core.db", "msg=\"filtered out\"");
	hf_log(HF_LOG_DEBUG, "gw.kannel", "msg=\"kept\"");
	hf_log_set_filter("");
	hf_log_set_level(HF_LOG_INFO);
}

static void log_long(void)
{
	static char big[5000];
	memset(big, 'x', sizeof(big) - 1);
	hf_log(HF_LOG_INFO, "core.test", "msg=%s", big);
}

static void test_log_lines(void)
{
	const char *out = capture_stderr(log_basic);
	const char *nl = strchr(out, '\n');
	HF_CHECK_MSG(strncmp(out, "ts=", 3) == 0 && nl != NULL, "got: %s", out);
	HF_CHECK(strstr(out, " level=warn place=core.db rid=req-123 msg=\"query failed\" code=1213\n") != NULL);
	HF_CHECK(strstr(out, "hidden") == NULL);
	HF_CHECK(strstr(out, " level=error place=gw.kannel msg=\"no rid\"\n") != NULL);
	HF_CHECK(nl && strchr(nl + 1, '\n') && strchr(strchr(nl + 1, '\n') + 1, '\n') == NULL); /* two lines */

	out = capture_stderr(log_filtered);
	HF_CHECK_MSG(strstr(out, "filtered out") == NULL && strstr(out, "level=debug place=gw.kannel msg=\"kept\"\n"),
		     "got: %s", out);

	/* An overlong line is cut, still one line ending in a newline. */
	out = capture_stderr(log_long);
	size_t len = strlen(out);
	HF_CHECK_MSG(len > 1000 && len <= 2048 && out[len - 1] == '\n' && strchr(out, '\n') == out + len - 1,
		     "len=%zu", len);
}

static void *other_thread(void *arg)
{
	(void)arg;
	return (void *)hf_log_request_id();
}

static void test_request_id(void)
{
	HF_CHECK(strcmp(hf_log_request_id(), "") == 0);
	hf_log_set_request_id("abc");
	HF_CHECK(strcmp(hf_log_request_id(), "abc") == 0);
	/* Copied, and cut to fit. */
	char rid[80];
	memset(rid, 'r', sizeof(rid) - 1);
	rid[sizeof(rid) - 1] = '\0';
	hf_log_set_request_id(rid);
	size_t n = strlen(hf_log_request_id());
	HF_CHECK(n > 0 && n < sizeof(rid) - 1 && strncmp(hf_log_request_id(), rid, n) == 0);
	/* Per thread: another thread has none. */
	pthread_t t;
	void *got = NULL;
	HF_CHECK(pthread_create(&t, NULL, other_thread, NULL) == 0 && pthread_join(t, &got) == 0);
	HF_CHECK(got != NULL && strcmp(got, "") == 0);
	hf_log_set_request_id(NULL);
	HF_CHECK(strcmp(hf_log_request_id(), "") == 0);
}

static void test_level_parse(void)
{
	enum hf_log_level l = HF_LOG_ERROR;
	HF_CHECK(hf_log_level_parse("debug", &l) && l == HF_LOG_DEBUG);
	HF_CHECK(hf_log_level_parse("info", &l) && l == HF_LOG_INFO);
	HF_CHECK(hf_log_level_parse("warn", &l) && l == HF_LOG_WARN);
	HF_CHECK(hf_log_level_parse("error", &l) && l == HF_LOG_ERROR);
	l = HF_LOG_INFO;
	HF_CHECK(!hf_log_level_parse("warning", &l) && l == HF_LOG_INFO);
	HF_CHECK(!hf_log_level_parse("DEBUG", &l) && l == HF_LOG_INFO);
	HF_CHECK(!hf_log_level_parse("", &l) && l == HF_LOG_INFO);
}

int main(void)
{
	HF_TEST(test_mask_phone);
	HF_TEST(test_mask_id);
	HF_TEST(test_mask_name);
	HF_TEST(test_masks_never_show_the_value);
	HF_TEST(test_mask_truncates);
	HF_TEST(test_masked_names_are_utf8);
	HF_TEST(test_log_lines);
	HF_TEST(test_request_id);
	HF_TEST(test_level_parse);
	return hf_test_summary();
}
