/* hf_json.c - jansson adapter: strict parsing and typed reads with field errors. */
#include "hf_base.h"
#include "hf_json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 16

void hf_ferrs_init(struct hf_ferrs *fe)
{
	fe->list = json_array();
}

void hf_ferrs_release(struct hf_ferrs *fe)
{
	json_decref(fe->list);
	fe->list = NULL;
}

/* Drops a UTF-8 character left incomplete at the end of s by a byte-counted cut (snprintf). */
static void utf8_drop_partial_tail(char *s)
{
	size_t n = strlen(s);
	size_t i = n;
	while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
		i--;
	if (i == 0)
		return;
	unsigned char lead = (unsigned char)s[i - 1];
	size_t want = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
	if (n - (i - 1) < want)
		s[i - 1] = '\0';
}

void hf_ferrs_add(struct hf_ferrs *fe, const char *field, const char *code, const char *fmt, ...)
{
	char msg[512];
	char path[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Caps the list: a hostile body with thousands of bad fields must not produce a huge reply. */
	if (json_array_size(fe->list) >= 100)
		return;
	/* A long field name from the client is cut by bytes, possibly inside a character; jansson refuses such
	 * a string and the error would vanish, letting the field through. Cut back to whole characters, and if
	 * the text is still refused, report the error without it rather than not at all. */
	snprintf(path, sizeof(path), "%s", field);
	utf8_drop_partial_tail(path);
	utf8_drop_partial_tail(msg);
	json_t *e = json_pack("{s:s, s:s, s:s}", "field", path, "code", code, "message", msg);
	if (!e)
		e = json_pack("{s:s, s:s, s:s}", "field", "", "code", code, "message", "this field is not valid text");
	json_array_append_new(fe->list, e);
}

bool hf_ferrs_any(const struct hf_ferrs *fe)
{
	return json_array_size(fe->list) > 0;
}

size_t hf_ferrs_count(const struct hf_ferrs *fe)
{
	return json_array_size(fe->list);
}

static size_t depth_of(const json_t *v)
{
	size_t max = 0;
	if (json_is_object(v)) {
		const char *k;
		json_t *c;
		json_object_foreach((json_t *)v, k, c) {
			size_t d = depth_of(c);
			if (d > max)
				max = d;
			if (max > JSON_MAX_DEPTH)
				break;
		}
		return max + 1;
	}
	if (json_is_array(v)) {
		size_t i;
		json_t *c;
		json_array_foreach(v, i, c) {
			size_t d = depth_of(c);
			if (d > max)
				max = d;
			if (max > JSON_MAX_DEPTH)
				break;
		}
		return max + 1;
	}
	return 0;
}

hf_err hf_json_parse_object(struct hf_str body, struct hf_ferrs *fe, json_t **out)
{
	json_error_t je;
	if (body.len == 0) {
		hf_ferrs_add(fe, "", "empty_body", "a JSON object is required");
		return HF_EINVAL;
	}
	/* jansson rejects invalid UTF-8 and (with this flag) duplicate keys. Its parser is recursive, so the
	 * nesting depth is bounded by the body cap; we reject deep documents after parsing. */
	json_t *root = json_loadb(body.ptr, body.len, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		hf_ferrs_add(fe, "", "malformed_json", "line %d column %d: %s", je.line, je.column, je.text);
		return HF_EINVAL;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		hf_ferrs_add(fe, "", "not_an_object", "the body must be a JSON object");
		return HF_EINVAL;
	}
	if (depth_of(root) > JSON_MAX_DEPTH) {
		json_decref(root);
		hf_ferrs_add(fe, "", "too_deep", "the body nests deeper than %d levels", JSON_MAX_DEPTH);
		return HF_EINVAL;
	}
	*out = root;
	return HF_OK;
}

static void path_of(const char *prefix, const char *key, char *out, size_t n)
{
	if (prefix && *prefix)
		snprintf(out, n, "%s.%s", prefix, key);
	else
		snprintf(out, n, "%s", key);
}

void hf_json_only_fields(const json_t *obj, const char *const *allowed, const char *prefix, struct hf_ferrs *fe)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)obj, k, v) {
		bool ok = false;
		for (size_t i = 0; allowed[i]; i++)
			if (strcmp(k, allowed[i]) == 0)
				ok = true;
		if (!ok) {
			char path[256];
			path_of(prefix, k, path, sizeof(path));
			hf_ferrs_add(fe, path, "unknown_field", "this field is not accepted here");
		}
	}
}

size_t hf_utf8_len(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			n++;
	return n;
}

bool hf_utf8_valid_text(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		size_t len;
		uint32_t cp;
		if (c < 0x80) {
			if (c < 0x20 || c == 0x7F)
				return false;
			i++;
			continue;
		} else if ((c & 0xE0) == 0xC0) {
			len = 2;
			cp = c & 0x1F;
		} else if ((c & 0xF0) == 0xE0) {
			len = 3;
			cp = c & 0x0F;
		} else if ((c & 0xF8) == 0xF0) {
			len = 4;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (i + len > n)
			return false;
		for (size_t j = 1; j < len; j++) {
			unsigned char cc = (unsigned char)s[i + j];
			if ((cc & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (cc & 0x3F);
		}
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
		    (cp >= 0xD800 && cp <= 0xDFFF) || (cp >= 0x80 && cp < 0xA0))
			return false;
		i += len;
	}
	return true;
}

static json_t *lookup(const json_t *obj, const char *prefix, const char *key, bool required, struct hf_ferrs *fe,
		      char *path, size_t pathn)
{
	path_of(prefix, key, path, pathn);
	json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v)) {
		if (required)
			hf_ferrs_add(fe, path, "required", "this field is required");
		return NULL;
	}
	return v;
}

bool hf_json_get_str(const json_t *obj, const char *prefix, const char *key, bool required, size_t min_len,
		     size_t max_len, struct hf_ferrs *fe, const char **out)
{
	char path[256];
	json_t *v = lookup(obj, prefix, key, required, fe, path, sizeof(path));
	if (!v)
		return false;
	if (!json_is_string(v)) {
		hf_ferrs_add(fe, path, "wrong_type", "must be a string");
		return false;
	}
	const char *s = json_string_value(v);
	size_t bytes = json_string_length(v);
	if (strlen(s) != bytes || !hf_utf8_valid_text(s, bytes)) {
		hf_ferrs_add(fe, path, "bad_characters", "contains control characters or invalid text");
		return false;
	}
	/* Trim surrounding spaces in place in jansson's copy: the value is ours to normalise. */
	size_t start = 0, end = bytes;
	while (start < end && s[start] == ' ')
		start++;
	while (end > start && s[end - 1] == ' ')
		end--;
	if (start > 0 || end < bytes) {
		char *t = hf_xstrndup(s + start, end - start);
		json_string_set((json_t *)v, t);
		free(t);
		s = json_string_value(v);
	}
	size_t chars = hf_utf8_len(s);
	if (chars < min_len || chars > max_len) {
		if (chars == 0 && required)
			hf_ferrs_add(fe, path, "required", "this field is required");
		else
			hf_ferrs_add(fe, path, "length", "must be %zu to %zu characters long", min_len, max_len);
		return false;
	}
	*out = s;
	return true;
}

bool hf_json_get_int(const json_t *obj, const char *prefix, const char *key, bool required, int64_t min, int64_t max,
		     struct hf_ferrs *fe, int64_t *out)
{
	char path[256];
	json_t *v = lookup(obj, prefix, key, required, fe, path, sizeof(path));
	if (!v)
		return false;
	if (!json_is_integer(v)) {
		hf_ferrs_add(fe, path, "wrong_type", "must be an integer");
		return false;
	}
	json_int_t x = json_integer_value(v);
	if (x < min || x > max) {
		hf_ferrs_add(fe, path, "out_of_range", "must be between %lld and %lld", (long long)min, (long long)max);
		return false;
	}
	*out = x;
	return true;
}

bool hf_json_get_bool(const json_t *obj, const char *prefix, const char *key, bool required, struct hf_ferrs *fe,
		      bool *out)
{
	char path[256];
	json_t *v = lookup(obj, prefix, key, required, fe, path, sizeof(path));
	if (!v)
		return false;
	if (!json_is_boolean(v)) {
		hf_ferrs_add(fe, path, "wrong_type", "must be true or false");
		return false;
	}
	*out = json_is_true(v);
	return true;
}

bool hf_json_get_enum(const json_t *obj, const char *prefix, const char *key, bool required,
		      const char *const *values, struct hf_ferrs *fe, const char **out)
{
	char path[256];
	json_t *v = lookup(obj, prefix, key, required, fe, path, sizeof(path));
	if (!v)
		return false;
	if (!json_is_string(v)) {
		hf_ferrs_add(fe, path, "wrong_type", "must be a string");
		return false;
	}
	const char *s = json_string_value(v);
	for (size_t i = 0; values[i]; i++) {
		if (strcmp(s, values[i]) == 0) {
			*out = values[i];
			return true;
		}
	}
	char allowed[512] = "";
	size_t used = 0;
	for (size_t i = 0; values[i] && used < sizeof(allowed) - 1; i++) {
		int n = snprintf(allowed + used, sizeof(allowed) - used, "%s%s", i ? ", " : "", values[i]);
		if (n < 0)
			break;
		used += (size_t)n;
	}
	hf_ferrs_add(fe, path, "not_allowed", "must be one of: %s", allowed);
	return false;
}

hf_err hf_json_dump(const json_t *v, struct hf_buf *out)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(15));
	if (!s)
		return HF_EINTERNAL;
	hf_err err = hf_buf_append_str(out, s);
	free(s);
	return err;
}
