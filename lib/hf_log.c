/* hf_log.c - structured logging and masking of personal data. */
#include "hf_base.h"
#include "hf_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum hf_log_level min_level = HF_LOG_INFO;
static char filter[64];
static _Thread_local char request_id[40];

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void hf_log_set_level(enum hf_log_level level)
{
	min_level = level;
}

bool hf_log_level_parse(const char *s, enum hf_log_level *out)
{
	for (size_t i = 0; i < HF_ARRAY_LEN(level_names); i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum hf_log_level)i;
			return true;
		}
	}
	return false;
}

void hf_log_set_filter(const char *prefix)
{
	size_t n = prefix ? strlen(prefix) : 0;
	if (n >= sizeof(filter))
		n = sizeof(filter) - 1;
	if (n)
		memcpy(filter, prefix, n);
	filter[n] = '\0';
}

void hf_log_set_request_id(const char *rid)
{
	size_t n = rid ? strlen(rid) : 0;
	if (n >= sizeof(request_id))
		n = sizeof(request_id) - 1;
	if (n)
		memcpy(request_id, rid, n);
	request_id[n] = '\0';
}

const char *hf_log_request_id(void)
{
	return request_id;
}

void hf_log(enum hf_log_level level, const char *place, const char *fmt, ...)
{
	if (level < min_level)
		return;
	if (filter[0] && strncmp(place, filter, strlen(filter)) != 0)
		return;
	char line[2048];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof(line), "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s place=%s ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, level_names[level],
			 place);
	if (n < 0)
		return;
	if (request_id[0] && (size_t)n < sizeof(line)) {
		int m = snprintf(line + n, sizeof(line) - (size_t)n, "rid=%s ", request_id);
		if (m > 0)
			n += m;
	}
	if ((size_t)n < sizeof(line)) {
		va_list ap;
		va_start(ap, fmt);
		int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
		va_end(ap);
		if (m > 0)
			n += m;
	}
	/* A line that did not fit is cut, never overrun; it still ends in a newline. */
	if ((size_t)n >= sizeof(line) - 1)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, (size_t)n);
	(void)w;
}

/* Bytes of the character that starts at s[i]: that byte and the UTF-8 continuation bytes after it. */
static size_t char_len(const char *s, size_t i, size_t n)
{
	size_t len = 1;
	while (i + len < n && ((unsigned char)s[i + len] & 0xC0) == 0x80)
		len++;
	return len;
}

/* Heads and tails count characters, not bytes: a character is shown whole or masked as one '*', so a
 * masked name is never half a character, and a one-letter name in any script is masked whole. */
static const char *mask_keep(const char *s, size_t keep_head, size_t keep_tail, char *out, size_t out_size)
{
	if (out_size == 0)
		return out;
	size_t n = s ? strlen(s) : 0;
	size_t chars = 0;
	for (size_t i = 0; i < n; i += char_len(s, i, n))
		chars++;
	if (chars <= keep_head + keep_tail) {
		/* Too short to show anything safely. */
		keep_head = 0;
		keep_tail = 0;
	}
	size_t o = 0;
	for (size_t i = 0, c = 0; i < n; c++) {
		size_t len = char_len(s, i, n);
		bool show = c < keep_head || c >= chars - keep_tail;
		size_t w = show ? len : 1;
		if (o + w >= out_size)
			break;
		if (show)
			memcpy(out + o, s + i, len);
		else
			out[o] = '*';
		o += w;
		i += len;
	}
	out[o] = '\0';
	return out;
}

const char *hf_mask_phone(const char *phone, char *out, size_t out_size)
{
	return mask_keep(phone, 4, 3, out, out_size);
}

const char *hf_mask_id(const char *id, char *out, size_t out_size)
{
	return mask_keep(id, 0, 2, out, out_size);
}

const char *hf_mask_name(const char *name, char *out, size_t out_size)
{
	return mask_keep(name, 1, 0, out, out_size);
}
