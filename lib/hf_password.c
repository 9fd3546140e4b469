/* hf_password.c - staff password policy and Argon2id hashes; the cracklib adapter.
 *
 * The policy checks run on the bytes of the password in place, without copying it (so no copy is left
 * to wipe), in the order of the header's list: the cheap structural checks first, cracklib last. It
 * includes sodium.h for crypto_pwhash only; everything else of libsodium stays in hf_crypto.c.
 */
#include "hf_base.h"
#include "hf_password.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <crack.h>
#include <sodium.h>

#include "hf_buf.h"
#include "hf_log.h"

_Static_assert(HF_PW_HASH_MAX == crypto_pwhash_STRBYTES, "HF_PW_HASH_MAX must match libsodium");

/* OWASP Password Storage Cheat Sheet, minimum for Argon2id: m = 19 MiB, t = 2, p = 1 (libsodium's p). */
#define PW_OPSLIMIT 2ULL
#define PW_MEMLIMIT ((size_t)19 * 1024 * 1024)
/* No valid password is longer than this many bytes (4 bytes per code point at most). */
#define PW_MAX_BYTES (4 * HF_PW_MAX_CHARS)
/* User names longer than this are not ours; they are not handed to cracklib's fixed-size buffers. */
#define USER_MAX_BYTES 64

/* Passwords of 12 characters or more that lead every leaked-password list; compared case-insensitively.
 * Lower case here. The pattern checks below catch the repeated ones too; listing them keeps the message
 * specific. */
static const char *const common_passwords[] = {
	"123456789012", "1234567890123", "12345678901234", "1234567890qwerty", "0987654321qwerty",
	"qwertyuiopasdfgh", "qwertyuiopasdfghjkl", "qwertyuiop1234", "qwertyuiop123", "qwerty123456",
	"qwerty1234567", "qwertyqwerty", "qwertyuiop[]", "1q2w3e4r5t6y", "1q2w3e4r5t6y7u",
	"1qaz2wsx3edc", "1qaz2wsx3edc4rfv", "zaq12wsxcde3", "zaq1zaq1zaq1", "zxcvbnm123456",
	"asdfghjkl123", "asdfasdfasdf", "passwordpassword", "password1234", "password12345",
	"password123456", "password123!", "p@ssw0rd1234", "p@ssword1234", "passw0rd1234",
	"mypassword123", "iloveyouiloveyou", "iloveyou1234", "iloveyou123!", "administrator",
	"administrator1", "admin1234567", "adminadmin123", "welcome12345", "welcome123456",
	"letmein12345", "changeme1234", "changeme123!", "trustno1trustno1", "football1234",
	"baseball1234", "superman1234", "princess1234", "sunshine1234", "starwars1234",
	"monkey123456", "dragon123456", "abc123456789", "abcd12345678", "abcdefg12345",
	"1234567890abc", "michael12345", "whatever1234", "aaaaaaaaaaaa", "111111111111",
	"000000000000", "123123123123", "121212121212", "987654321098", "hifadhi12345",
	"hifadhi123456", "nairobi12345", "kenya1234567",
};

static pthread_mutex_t cracklib_lock = PTHREAD_MUTEX_INITIALIZER;

hf_err hf_password_hash(const char *pw, char out[HF_PW_HASH_MAX])
{
	if (!pw)
		return HF_EINVAL;
	size_t len = strnlen(pw, PW_MAX_BYTES + 1);
	if (len > PW_MAX_BYTES)
		return HF_ETOOBIG;
	char tmp[HF_PW_HASH_MAX];
	if (crypto_pwhash_str_alg(tmp, pw, len, PW_OPSLIMIT, PW_MEMLIMIT, crypto_pwhash_ALG_ARGON2ID13) != 0) {
		hf_log(HF_LOG_ERROR, "lib.password", "msg=\"argon2id hashing failed (out of memory?)\" memlimit=%zu",
		       PW_MEMLIMIT);
		return HF_EINTERNAL;
	}
	memcpy(out, tmp, sizeof(tmp));
	sodium_memzero(tmp, sizeof(tmp));
	return HF_OK;
}

/* A hash string from the database: present and NUL-terminated within the size libsodium reads. */
static bool hash_terminated(const char *hash)
{
	return hash && strnlen(hash, HF_PW_HASH_MAX) < HF_PW_HASH_MAX;
}

bool hf_password_verify(const char *hash, const char *pw)
{
	if (!hash_terminated(hash) || !pw)
		return false;
	size_t len = strnlen(pw, PW_MAX_BYTES + 1);
	if (len > PW_MAX_BYTES)
		return false;
	return crypto_pwhash_str_verify(hash, pw, len) == 0;
}

bool hf_password_needs_rehash(const char *hash)
{
	if (!hash_terminated(hash))
		return true;
	/* 0 = current; 1 = other parameters or Argon2i; -1 = not a hash libsodium can parse. */
	return crypto_pwhash_str_needs_rehash(hash, PW_OPSLIMIT, PW_MEMLIMIT) != 0;
}

/* ---- policy ------------------------------------------------------------------------------------------ */

static bool refuse(char *why, size_t why_cap, const char *msg)
{
	if (why && why_cap)
		hf_strlcpy(why, msg, why_cap);
	return false;
}

/* Length of the UTF-8 sequence at p (strictly: no overlong forms, surrogates or values past U+10FFFF),
 * with its code point in *cp; 0 if invalid. p is NUL-terminated, so reading on stops at the NUL. */
static size_t utf8_next(const unsigned char *p, uint32_t *cp)
{
	unsigned char c = p[0];
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	size_t n;
	uint32_t v, min;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2, v = c & 0x1f, min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3, v = c & 0x0f, min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4, v = c & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (p[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return n;
}

static bool is_control(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

static unsigned char fold(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

/* ASCII case-insensitive: does hay (hay_len bytes) contain needle (needle_len bytes)? */
static bool contains_fold(const char *hay, size_t hay_len, const char *needle, size_t needle_len)
{
	if (needle_len == 0 || needle_len > hay_len)
		return false;
	for (size_t i = 0; i + needle_len <= hay_len; i++) {
		size_t j = 0;
		while (j < needle_len && fold((unsigned char)hay[i + j]) == fold((unsigned char)needle[j]))
			j++;
		if (j == needle_len)
			return true;
	}
	return false;
}

static bool is_common(const char *pw, size_t len)
{
	for (size_t i = 0; i < HF_ARRAY_LEN(common_passwords); i++) {
		const char *c = common_passwords[i];
		if (strlen(c) == len && contains_fold(pw, len, c, len))
			return true;
	}
	return false;
}

/* The smallest p < len with len % p == 0 and pw == (its first p bytes) repeated, compared case-insensitively;
 * 0 if there is none. The repeated unit of a valid UTF-8 string is valid UTF-8 too: position p holds the
 * same byte as position 0, a lead byte. */
static size_t repeat_period(const char *pw, size_t len)
{
	for (size_t p = 1; p <= len / 2; p++) {
		if (len % p)
			continue;
		size_t i = p;
		while (i < len && fold((unsigned char)pw[i]) == fold((unsigned char)pw[i - p]))
			i++;
		if (i == len)
			return p;
	}
	return 0;
}

/* The position of c in its cycle (digits 0..9, letters a..z) and the cycle's length; false for others. */
static bool seq_pos(unsigned char c, int *pos, int *cycle)
{
	c = fold(c);
	if (c >= '0' && c <= '9') {
		*pos = c - '0', *cycle = 10;
		return true;
	}
	if (c >= 'a' && c <= 'z') {
		*pos = c - 'a', *cycle = 26;
		return true;
	}
	return false;
}

/* One run of consecutive digits or letters, up or down, wrapping (9 then 0, z then a): "123456789012",
 * "zyxwvutsrqpo". */
static bool is_run(const char *pw, size_t len)
{
	int prev, cycle, step = 0;
	if (len < 2 || !seq_pos((unsigned char)pw[0], &prev, &cycle))
		return false;
	for (size_t i = 1; i < len; i++) {
		int pos, cyc;
		if (!seq_pos((unsigned char)pw[i], &pos, &cyc) || cyc != cycle)
			return false;
		int d = (pos - prev + cycle) % cycle;
		if (d != 1 && d != cycle - 1)
			return false;
		if (step == 0)
			step = d;
		else if (d != step)
			return false;
		prev = pos;
	}
	return true;
}

/* cracklib's verdict: NULL when it has no objection, else its reason ("it is based on a dictionary word").
 * *dict_missing is set when the dictionary cannot be read (FascistCheck would print to stderr and fail). */
static const char *cracklib_check(const char *pw, const char *username, bool *dict_missing)
{
	const char *reason = NULL;
	char path[4096];
	pthread_mutex_lock(&cracklib_lock);
	const char *dict = GetDefaultCracklibDict();
	*dict_missing = !dict || snprintf(path, sizeof(path), "%s.pwd", dict) >= (int)sizeof(path) ||
			access(path, R_OK) != 0;
	if (!*dict_missing) {
		/* FascistCheckUser compares with the given user rather than the Unix account this process runs
		 * as (FascistCheck would refuse "hifadhi..." on a server running as user hifadhi, which confuses
		 * staff), and it does not call getpwuid, which is not thread-safe either. */
		const char *user = username && strlen(username) <= USER_MAX_BYTES ? username : "";
		reason = FascistCheckUser(pw, dict, user, "");
	}
	pthread_mutex_unlock(&cracklib_lock);
	if (*dict_missing)
		hf_log(HF_LOG_ERROR, "lib.password", "msg=\"cracklib dictionary missing, passwords cannot be set\" "
		       "dict=%s.pwd (install cracklib-runtime)", dict ? dict : "(none)");
	return reason;
}

bool hf_password_acceptable(const char *pw, const char *username, char *why, size_t why_cap)
{
	if (why && why_cap)
		why[0] = '\0';
	if (!pw)
		return refuse(why, why_cap, "Please enter a password.");
	/* Bounded before any work: more bytes than 128 four-byte characters cannot be acceptable. */
	size_t len = strnlen(pw, PW_MAX_BYTES + 1);
	size_t chars = 0;
	for (size_t i = 0; i < len;) {
		uint32_t cp;
		size_t n = utf8_next((const unsigned char *)pw + i, &cp);
		if (n == 0)
			return refuse(why, why_cap,
				      "The password contains characters that are not valid text; type it again on the "
				      "keyboard instead of pasting it.");
		if (is_control(cp))
			return refuse(why, why_cap,
				      "The password contains a control character such as a tab or a line break; use "
				      "only letters, digits, punctuation and spaces.");
		chars++;
		i += n;
	}
	if (chars < HF_PW_MIN_CHARS)
		return refuse(why, why_cap,
			      "The password is too short: use at least 12 characters. A few unrelated words make a "
			      "password that is long and easy to remember.");
	if (chars > HF_PW_MAX_CHARS || len > PW_MAX_BYTES)
		return refuse(why, why_cap, "The password is too long: use at most 128 characters.");

	if (username) {
		size_t ulen = strlen(username), uchars = 0;
		for (size_t i = 0; i < ulen; i++)
			uchars += ((unsigned char)username[i] & 0xc0) != 0x80;
		if (uchars >= 3 && contains_fold(pw, len, username, ulen))
			return refuse(why, why_cap, "The password contains your user name; choose one that does not.");
	}
	if (is_common(pw, len))
		return refuse(why, why_cap,
			      "This password is one of the most common passwords, which attackers try first; choose "
			      "something less predictable.");
	size_t period = repeat_period(pw, len);
	if (period) {
		uint32_t cp;
		if (period == utf8_next((const unsigned char *)pw, &cp))
			return refuse(why, why_cap,
				      "The password is one character repeated; choose something less predictable, such "
				      "as a few unrelated words.");
		/* A unit of 12 characters or more, repeated, is at least as strong as the unit alone. */
		if (chars / (len / period) < HF_PW_MIN_CHARS)
			return refuse(why, why_cap,
				      "The password repeats a short sequence; choose something less predictable, such "
				      "as a few unrelated words.");
	}
	if (is_run(pw, len))
		return refuse(why, why_cap,
			      "The password is a simple sequence of consecutive letters or digits; choose something "
			      "less predictable.");

	/* cracklib judges short passwords well but long passphrases badly (see the header), so it only sees
	 * passwords under HF_PW_CRACKLIB_BELOW characters. */
	if (chars < HF_PW_CRACKLIB_BELOW) {
		bool dict_missing = false;
		const char *reason = cracklib_check(pw, username, &dict_missing);
		if (dict_missing)
			return refuse(why, why_cap,
				      "The password cannot be checked right now because the password dictionary is "
				      "missing; please tell the system administrator.");
		if (reason) {
			if (why && why_cap)
				snprintf(why, why_cap,
					 "The password is too easy to guess: %.100s. Choose something less "
					 "predictable, such as a few unrelated words.",
					 reason);
			return false;
		}
	}
	return true;
}
