/* hf_buf.h - string views and bounded, always NUL-terminated growable buffers.
 *
 * A buffer's maximum is fixed at init: appends past it return HF_ETOOBIG and leave the contents as they
 * were, so a writer fed by outside input can never grow without bound.
 */
#ifndef HF_BUF_H
#define HF_BUF_H

#include <stdarg.h>

#include "hf_base.h"
#include "hf_err.h"

/* A borrowed run of bytes; not necessarily NUL-terminated. */
struct hf_str {
	const char *ptr;
	size_t len;
};

#define HF_STR_LIT(s) ((struct hf_str){(s), sizeof(s) - 1})
struct hf_str hf_str_from(const char *s); /* s may be NULL: gives {NULL, 0} */
bool hf_str_eq(struct hf_str a, struct hf_str b);
bool hf_str_eq_cstr(struct hf_str a, const char *b);

struct hf_buf {
	char *data; /* owned; always NUL-terminated once anything was appended */
	size_t len;
	size_t cap;
	size_t max; /* maximum len, excluding the NUL */
};

void hf_buf_init(struct hf_buf *b, size_t max);
void hf_buf_release(struct hf_buf *b);
void hf_buf_reset(struct hf_buf *b); /* keeps the memory */
HF_MUST_CHECK hf_err hf_buf_append(struct hf_buf *b, const void *p, size_t n);
HF_MUST_CHECK hf_err hf_buf_append_str(struct hf_buf *b, const char *s);
HF_MUST_CHECK hf_err hf_buf_appendf(struct hf_buf *b, const char *fmt, ...) HF_PRINTF(2, 3);
HF_MUST_CHECK hf_err hf_buf_vappendf(struct hf_buf *b, const char *fmt, va_list ap) HF_PRINTF(2, 0);
/* For diagnostic text only (error messages): appends as much as fits, marking a cut with "...". */
void hf_buf_note(struct hf_buf *b, const char *fmt, ...) HF_PRINTF(2, 3);
/* Contents as a C string ("" when empty). Borrowed; valid until the next append or release. */
const char *hf_buf_cstr(const struct hf_buf *b);
/* Hands the data over to the caller (owned, free()) and resets the buffer. */
char *hf_buf_steal(struct hf_buf *b);

/* Copies at most dst_size-1 bytes and always terminates; returns false if src did not fit. */
bool hf_strlcpy(char *dst, const char *src, size_t dst_size);
/* Parses a whole string as a decimal int64 in [min, max]. */
HF_MUST_CHECK hf_err hf_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);

/* Appends one CSV cell (a comma before it unless first), quoted per RFC 4180 where needed, and also when
 * the value has surrounding spaces, which CSV readers such as libcsv would otherwise trim. */
HF_MUST_CHECK hf_err hf_buf_csv_cell(struct hf_buf *b, const char *s, size_t n, bool first);

#endif
