/* hf_buf.c - bounded growable buffers and string views. */
#include "hf_base.h"
#include "hf_buf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hf_str hf_str_from(const char *s)
{
	return (struct hf_str){s, s ? strlen(s) : 0};
}

bool hf_str_eq(struct hf_str a, struct hf_str b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

bool hf_str_eq_cstr(struct hf_str a, const char *b)
{
	return hf_str_eq(a, hf_str_from(b));
}

void hf_buf_init(struct hf_buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

void hf_buf_release(struct hf_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

void hf_buf_reset(struct hf_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

static hf_err reserve(struct hf_buf *b, size_t extra)
{
	if (extra > b->max || b->len > b->max - extra)
		return HF_ETOOBIG;
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return HF_OK;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	if (cap > b->max + 1)
		cap = b->max + 1;
	b->data = hf_xrealloc(b->data, cap);
	b->cap = cap;
	return HF_OK;
}

hf_err hf_buf_append(struct hf_buf *b, const void *p, size_t n)
{
	hf_err err = reserve(b, n);
	if (err)
		return err;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return HF_OK;
}

hf_err hf_buf_append_str(struct hf_buf *b, const char *s)
{
	return hf_buf_append(b, s, strlen(s));
}

hf_err hf_buf_vappendf(struct hf_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return HF_EINTERNAL;
	hf_err err = reserve(b, (size_t)n);
	if (err)
		return err;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return HF_OK;
}

hf_err hf_buf_appendf(struct hf_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	hf_err err = hf_buf_vappendf(b, fmt, ap);
	va_end(ap);
	return err;
}

void hf_buf_note(struct hf_buf *b, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	/* Text that did not fit in tmp is already lost: that is a cut too, and must be marked like one. */
	bool cut = (size_t)n >= sizeof(tmp);
	size_t len = cut ? sizeof(tmp) - 1 : (size_t)n;
	size_t room = b->max > b->len ? b->max - b->len : 0;
	if (!cut && len <= room) {
		if (hf_buf_append(b, tmp, len))
			return;
		return;
	}
	if (len > room)
		len = room;
	if (len > 3 && !hf_buf_append(b, tmp, len - 3) && !hf_buf_append(b, "...", 3))
		return;
}

const char *hf_buf_cstr(const struct hf_buf *b)
{
	return b->data ? b->data : "";
}

char *hf_buf_steal(struct hf_buf *b)
{
	char *p = b->data ? b->data : hf_xstrdup("");
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}

bool hf_strlcpy(char *dst, const char *src, size_t dst_size)
{
	size_t n = strlen(src);
	if (dst_size == 0)
		return false;
	bool fits = n < dst_size;
	if (!fits)
		n = dst_size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
	return fits;
}

hf_err hf_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	/* strtoll skips leading whitespace; a whole number has none at either end. */
	if (!s || !((*s >= '0' && *s <= '9') || *s == '-' || *s == '+'))
		return HF_EINVAL;
	char *end = NULL;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || *end || end == s || v < min || v > max)
		return HF_EINVAL;
	*out = v;
	return HF_OK;
}

hf_err hf_buf_csv_cell(struct hf_buf *b, const char *s, size_t n, bool first)
{
	hf_err err = first ? HF_OK : hf_buf_append(b, ",", 1);
	if (err)
		return err;
	bool quote = n && (s[0] == ' ' || s[0] == '\t' || s[n - 1] == ' ' || s[n - 1] == '\t');
	for (size_t i = 0; i < n && !quote; i++)
		quote = s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n';
	if (!quote)
		return hf_buf_append(b, s, n);
	err = hf_buf_append(b, "\"", 1);
	for (size_t i = 0; i < n && !err; i++)
		err = s[i] == '"' ? hf_buf_append(b, "\"\"", 2) : hf_buf_append(b, s + i, 1);
	return err ? err : hf_buf_append(b, "\"", 1);
}
