/* hf_json.h - JSON helpers on jansson: strict parsing, typed field reads with per-field errors.
 *
 * Every API body goes through hf_json_parse_object (rejects bad syntax, bad UTF-8, duplicate keys, depth
 * over a cap, a non-object root) then hf_json_only_fields (rejects unknown fields), then typed getters that
 * record each problem in a field-error list instead of stopping at the first, so a registrar sees every
 * mistake of a form at once. The error list is what the API returns under "fields".
 */
#ifndef HF_JSON_H
#define HF_JSON_H

#include <jansson.h>

#include "hf_base.h"
#include "hf_buf.h"
#include "hf_err.h"

/* Field errors: a JSON array of {"field","code","message"}. */
struct hf_ferrs {
	json_t *list; /* owned */
};

void hf_ferrs_init(struct hf_ferrs *fe);
void hf_ferrs_release(struct hf_ferrs *fe);
void hf_ferrs_add(struct hf_ferrs *fe, const char *field, const char *code, const char *fmt, ...) HF_PRINTF(4, 5);
bool hf_ferrs_any(const struct hf_ferrs *fe);
size_t hf_ferrs_count(const struct hf_ferrs *fe);

/* Parses body as one JSON object. On failure adds a field error (field "" or the path) and returns
 * HF_EINVAL. *out is owned by the caller (json_decref). */
HF_MUST_CHECK hf_err hf_json_parse_object(struct hf_str body, struct hf_ferrs *fe, json_t **out);
/* Adds an "unknown_field" error for every key of obj not in allowed (NULL-terminated). prefix names the
 * object in error paths ("" at top level, e.g. "members[2]" inside). */
void hf_json_only_fields(const json_t *obj, const char *const *allowed, const char *prefix, struct hf_ferrs *fe);

/* Typed getters. Each returns true when the value is present and valid (writing *out), false otherwise;
 * a missing required field or a wrong type is recorded in fe. A string is trimmed of surrounding
 * spaces; its length (in characters) must be in [min_len, max_len]; *out is borrowed from obj. */
bool hf_json_get_str(const json_t *obj, const char *prefix, const char *key, bool required, size_t min_len,
		     size_t max_len, struct hf_ferrs *fe, const char **out);
bool hf_json_get_int(const json_t *obj, const char *prefix, const char *key, bool required, int64_t min, int64_t max,
		     struct hf_ferrs *fe, int64_t *out);
bool hf_json_get_bool(const json_t *obj, const char *prefix, const char *key, bool required, struct hf_ferrs *fe,
		      bool *out);
/* A string that must be one of values (NULL-terminated). */
bool hf_json_get_enum(const json_t *obj, const char *prefix, const char *key, bool required,
		      const char *const *values, struct hf_ferrs *fe, const char **out);

/* Serialises v compactly into out. */
HF_MUST_CHECK hf_err hf_json_dump(const json_t *v, struct hf_buf *out);
/* Number of UTF-8 characters in s (s is valid UTF-8: jansson checked it). */
size_t hf_utf8_len(const char *s);
/* True when s is valid UTF-8 without control characters (except none allowed at all). */
bool hf_utf8_valid_text(const char *s, size_t n);

#endif
