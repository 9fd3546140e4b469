/* validate.c - point-of-entry validation and normalisation of registry values. */
#include "hf_base.h"
#include "validate.h"
#include "app.h"
#include "hf_checkdigit.h"
#include "hf_crypto.h"
#include "hf_json.h"

#include <string.h>
#include <time.h>

const char *const VALID_SEX[] = {"female", "male", "other", NULL};
const char *const VALID_RELATIONSHIP[] = {"head",	     "spouse",	       "child",	       "grandchild", "parent",
					  "sibling", "other_relative", "non_relative", NULL};
const char *const VALID_DISABILITY[] = {"none",	       "visual",       "hearing",  "physical",
					"intellectual", "psychosocial", "multiple", NULL};
const char *const VALID_ENROLMENT_STATUS[] = {"pending", "enrolled", "suspended", "exited", "duplicate", "deceased",
					      NULL};
const char *const VALID_TARGET[] = {"individual", "household", NULL};

static bool fail(struct vfail *why, const char *code, const char *message)
{
	why->code = code;
	why->message = message;
	return false;
}

bool validate_national_id(const char *in, char *out, struct vfail *why)
{
	size_t n = 0;
	for (const char *p = in; *p; p++) {
		char c = *p;
		if (c == ' ' || c == '-')
			continue;
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		bool digit = c >= '0' && c <= '9';
		bool letter = c >= 'A' && c <= 'Z';
		if (!digit && !(letter && g_app.nid.alnum))
			return fail(why, "bad_characters",
				    g_app.nid.alnum ? "a national ID has only letters and digits"
						    : "a national ID has only digits");
		if (n >= NID_MAX)
			return fail(why, "length", "the national ID is too long");
		out[n++] = c;
	}
	out[n] = '\0';
	if ((int)n < g_app.nid.min_len || (int)n > g_app.nid.max_len)
		return fail(why, "length", "the national ID has the wrong number of characters");
	if (g_app.nid.check != HF_CHECK_NONE && !hf_check_valid(g_app.nid.check, out, n))
		return fail(why, "check_digit", "the national ID's check digit is wrong; please re-read the card");
	return true;
}

bool validate_phone(const char *in, char *out, struct vfail *why)
{
	char digits[PHONE_MAX + 1];
	size_t n = 0;
	const char *p = in;
	bool plus = false;
	while (*p == ' ')
		p++;
	if (*p == '+') {
		plus = true;
		p++;
	}
	for (; *p; p++) {
		if (*p == ' ' || *p == '-')
			continue;
		if (*p < '0' || *p > '9')
			return fail(why, "bad_characters", "a phone number has only digits, after an optional +");
		if (n >= PHONE_MAX - 1)
			return fail(why, "length", "the phone number is too long");
		digits[n++] = *p;
	}
	digits[n] = '\0';
	if (!plus) {
		/* A local number "0712345678": replace the trunk 0 by the configured country code. */
		if (!g_app.phone_cc[0] || n < 2 || digits[0] != '0' || digits[1] == '0')
			return fail(why, "not_e164", "write the number as +<country code><number>, e.g. +254712345678");
		size_t cc = strlen(g_app.phone_cc);
		if (cc + n - 1 > PHONE_MAX - 1)
			return fail(why, "length", "the phone number is too long");
		memmove(digits + cc, digits + 1, n); /* includes the NUL */
		memcpy(digits, g_app.phone_cc, cc);
		n = cc + n - 1;
	}
	if (n == 0 || digits[0] == '0')
		return fail(why, "not_e164", "an international number does not start with 0 after the +");
	if ((int)n < g_app.phone_min_digits || (int)n > g_app.phone_max_digits)
		return fail(why, "length", "the phone number has the wrong number of digits");
	out[0] = '+';
	memcpy(out + 1, digits, n + 1);
	return true;
}

static bool leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static bool two_digits(const char *s, int *out)
{
	if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
		return false;
	*out = (s[0] - '0') * 10 + (s[1] - '0');
	return true;
}

bool validate_date_format(const char *in, int *y, int *m, int *d)
{
	int a, b;
	if (strlen(in) != 10 || in[4] != '-' || in[7] != '-')
		return false;
	if (!two_digits(in, &a) || !two_digits(in + 2, &b) || !two_digits(in + 5, m) || !two_digits(in + 8, d))
		return false;
	*y = a * 100 + b;
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (*m < 1 || *m > 12 || *d < 1)
		return false;
	int max = mdays[*m - 1] + (*m == 2 && leap(*y) ? 1 : 0);
	return *d <= max;
}

bool validate_birth_date(const char *in, int *year_out, struct vfail *why)
{
	int y, m, d;
	if (!validate_date_format(in, &y, &m, &d))
		return fail(why, "bad_date", "write the date as YYYY-MM-DD, a real calendar day");
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	int today = (tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday;
	if (y * 10000 + m * 100 + d > today)
		return fail(why, "in_future", "the date of birth is in the future");
	if (y < g_app.min_birth_year)
		return fail(why, "too_old", "the date of birth is too far in the past");
	*year_out = y;
	return true;
}

/* Accepts letters of any script by accepting every multi-byte UTF-8 character that is not punctuation
 * we know of; ASCII is held to letters, space, apostrophe, hyphen and dot. */
bool validate_person_name(const char *in, struct vfail *why)
{
	size_t len = strlen(in);
	if (!hf_utf8_valid_text(in, len))
		return fail(why, "bad_characters", "the name contains characters that are not text");
	size_t chars = hf_utf8_len(in);
	if (chars < 1)
		return fail(why, "required", "a name is required");
	if (chars > 100)
		return fail(why, "length", "a name has at most 100 characters");
	bool letter = false;
	for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
		unsigned char c = *p;
		if (c >= 0x80) {
			letter = true;
			continue;
		}
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
			letter = true;
			continue;
		}
		if (c == ' ' || c == '\'' || c == '-' || c == '.')
			continue;
		return fail(why, "bad_characters", "a name has only letters, spaces, apostrophes, hyphens and dots");
	}
	if (!letter)
		return fail(why, "bad_characters", "a name needs at least one letter");
	return true;
}

bool validate_language(const char *code)
{
	for (size_t i = 0; i < g_app.nlanguages; i++)
		if (strcmp(code, g_app.languages[i]) == 0)
			return true;
	return false;
}

bool validate_place_name(const char *in, struct vfail *why)
{
	size_t len = strlen(in);
	if (!hf_utf8_valid_text(in, len))
		return fail(why, "bad_characters", "the place name contains characters that are not text");
	size_t chars = hf_utf8_len(in);
	if (chars < 1 || chars > 100)
		return fail(why, "length", "a place name has 1 to 100 characters");
	if (strchr(in, '/'))
		return fail(why, "bad_characters", "a place name cannot contain '/'");
	return true;
}

void validate_name_norm(const char *s, struct hf_buf *out)
{
	bool space = true; /* drops leading spaces */
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		unsigned char c = *p;
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		if (c == ' ' || c == '-' || c == '.' || c == '\'') {
			if (!space && hf_buf_append(out, " ", 1) == HF_OK)
				space = true;
			continue;
		}
		if (hf_buf_append(out, &c, 1))
			return;
		space = false;
	}
	if (out->len && out->data[out->len - 1] == ' ')
		out->data[--out->len] = '\0';
}

/* American Soundex of the first word-ish run of ASCII letters; non-ASCII letters are skipped. */
static void soundex(const char *s, char code[5])
{
	static const char map[26] = {'0', '1', '2', '3', '0', '1', '2', '0', '0', '2', '2', '4', '5',
				     '5', '0', '1', '2', '6', '2', '3', '0', '1', '0', '2', '0', '2'};
	size_t n = 0;
	char last = 0;
	for (const char *p = s; *p && n < 4; p++) {
		char c = *p;
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		if (c < 'A' || c > 'Z')
			continue;
		char d = map[c - 'A'];
		if (n == 0) {
			code[n++] = c;
			last = d;
			continue;
		}
		if (d != '0' && d != last)
			code[n++] = d;
		if (c != 'H' && c != 'W')
			last = d;
	}
	if (n == 0)
		code[n++] = '?';
	while (n < 4)
		code[n++] = '0';
	code[4] = '\0';
}

void validate_phonetic_key(const char *given, const char *family, struct hf_buf *out)
{
	char a[5], b[5];
	soundex(given, a);
	soundex(family, b);
	if (strcmp(a, b) > 0) {
		if (hf_buf_append(out, b, 4) || hf_buf_append(out, a, 4))
			return;
	} else {
		if (hf_buf_append(out, a, 4) || hf_buf_append(out, b, 4))
			return;
	}
}

void numbers_new(char out[BENNO_LEN + 1])
{
	/* One call for all the randomness (each call is a system call); the modulo bias of 2^32 mod 10 is
	 * 6 in 4 billion per digit, far below anything that matters for unguessability. */
	uint32_t r[BENNO_LEN - 1];
	hf_random_bytes(r, sizeof(r));
	out[0] = (char)('1' + r[0] % 9);
	for (int i = 1; i < BENNO_LEN - 1; i++)
		out[i] = (char)('0' + r[i] % 10);
	int c = hf_check_compute(HF_CHECK_DAMM, out, BENNO_LEN - 1);
	HF_ASSERT(c >= '0' && c <= '9');
	out[BENNO_LEN - 1] = (char)c;
	out[BENNO_LEN] = '\0';
}

bool numbers_valid(const char *s)
{
	return strlen(s) == BENNO_LEN && s[0] != '0' && hf_check_valid(HF_CHECK_DAMM, s, BENNO_LEN);
}
