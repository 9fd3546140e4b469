/* recon_parse.c - reading a provider statement: libcsv, line numbers, the header, each line validated
 * (see recon_parse.h; the format is docs/reconciliation.md).
 *
 * The CSV is parsed with libcsv (strict RFC 4180) one physical line at a time, which is how a record knows
 * the line of the file it began on, and a line that cannot be read never stops the run: it is handed over
 * with its reasons. Kept apart from recon.c (the database side) so that everything a statement's bytes go
 * through before the database can be fuzzed on its own (tests/fuzz/fuzz_recon_csv.c); libcsv lives here.
 */
#include "hf_base.h"
#include "recon_parse.h"

#include "hf_buf.h"
#include "hf_json.h"

#include <csv.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NCOLS RECON_PARSE_NCOLS
#define FIELD_MAX RECON_PARSE_FIELD_MAX
#define ERROR_MAX RECON_PARSE_ERROR_MAX
#define REF_MAX RECON_PARSE_REF_MAX
#define HEADER_TEXT RECON_PARSE_HEADER
#define CSV_ENTRY_MAX (64 * 1024) /* libcsv's field buffer; past it the statement is refused */
#define AMOUNT_DIGITS_MAX 15      /* amounts up to 999,999,999,999,999 minor units */

static const char *const COLS[NCOLS] = {"provider_ref", "reference_id", "amount_minor",
					"currency",	"status",	"completed_at"};

struct recon_parse {
	bool scan; /* the structure pass: only the header is looked at and no line is handed over */
	struct recon_parse_cb cb;
	void *arg;
	char *msg;
	size_t msg_cap;
	struct csv_parser csv;

	/* the record being read */
	char f[NCOLS][FIELD_MAX + 1];
	size_t nfields;
	unsigned long_mask, nul_mask; /* fields over FIELD_MAX / holding a NUL byte */

	/* position: physical lines, so that a line number is what an editor shows */
	uint64_t records;  /* records completed, the header included */
	uint64_t phys;     /* the physical line of the next byte fed */
	uint64_t rec_line; /* the physical line where the current record began */
	bool rec_open, bol, first;
	bool cr_pending; /* the last feed ended with a CR: a line end, unless the next byte is its LF */

	hf_err fatal; /* the statement is refused (or a callback failed): stop */
	struct recon_parse_line line;
};

static void refuse(struct recon_parse *c, hf_err err, const char *fmt, ...) HF_PRINTF(3, 4);
static void refuse(struct recon_parse *c, hf_err err, const char *fmt, ...)
{
	if (c->fatal)
		return;
	c->fatal = err;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->msg, c->msg_cap, fmt, ap);
	va_end(ap);
}

static void cb_failed(struct recon_parse *c, hf_err err)
{
	if (!c->fatal)
		c->fatal = err;
}

/* ------------------------------------------------------------------ reading one line */

static void problem(struct recon_parse_line *r, const char *fmt, ...) HF_PRINTF(2, 3);
/* Adds a reason to a line's error; reasons that no longer fit in 200 bytes are left out whole. */
static void problem(struct recon_parse_line *r, const char *fmt, ...)
{
	char one[ERROR_MAX + 1];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(one, sizeof(one), fmt, ap);
	va_end(ap);
	size_t used = strlen(r->error), n = strlen(one), sep = used ? 2 : 0;
	if (used + sep + n > ERROR_MAX)
		return;
	if (sep)
		memcpy(r->error + used, "; ", 2);
	memcpy(r->error + used + sep, one, n + 1);
}

/* "HF" + the payment's id in decimal, exactly as we send it; 0 when it is not one of ours. */
static int64_t ref_payment_id(const char *s)
{
	if (s[0] != 'H' || s[1] != 'F' || s[2] < '1' || s[2] > '9')
		return 0;
	int64_t v = 0;
	for (const char *p = s + 2; *p; p++) {
		if (*p < '0' || *p > '9')
			return 0;
		int d = *p - '0';
		if (v > (INT64_MAX - d) / 10)
			return 0;
		v = v * 10 + d;
	}
	return v;
}

static bool digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return n > 0;
}

static int num(const char *s, size_t n)
{
	int v = 0;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

/* "YYYY-MM-DDTHH:MM:SS[.fraction]Z" (UTC) into "YYYY-MM-DD HH:MM:SS" (the fraction is dropped). */
static bool time_parse(const char *s, char out[20])
{
	size_t n = strlen(s);
	if (n < 20 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' || !digits(s + 8, 2) ||
	    s[10] != 'T' || !digits(s + 11, 2) || s[13] != ':' || !digits(s + 14, 2) || s[16] != ':' ||
	    !digits(s + 17, 2))
		return false;
	size_t at = 19;
	if (s[at] == '.') {
		size_t k = 0;
		while (k < 9 && s[at + 1 + k] >= '0' && s[at + 1 + k] <= '9')
			k++;
		if (k == 0)
			return false;
		at += 1 + k;
	}
	if (s[at] != 'Z' || at + 1 != n)
		return false;
	int y = num(s, 4), mo = num(s + 5, 2), d = num(s + 8, 2), h = num(s + 11, 2), mi = num(s + 14, 2),
	    se = num(s + 17, 2);
	static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (y < 1970 || mo < 1 || mo > 12 || h > 23 || mi > 59 || se > 59)
		return false;
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	int dim = mdays[mo - 1] + (mo == 2 && leap);
	if (d < 1 || d > dim)
		return false;
	memcpy(out, s, 10);
	out[10] = ' ';
	memcpy(out + 11, s + 11, 8);
	out[19] = '\0';
	return true;
}

/* A field that is present, text and at most REF_MAX characters. */
static bool ref_field(struct recon_parse_line *r, const char *name, const char *v)
{
	size_t n = strlen(v);
	if (!hf_utf8_valid_text(v, n)) {
		problem(r, "%s contains characters that are not text", name);
		return false;
	}
	if (hf_utf8_len(v) > REF_MAX) {
		problem(r, "%s is longer than %d characters", name, REF_MAX);
		return false;
	}
	return true;
}

/* Validates the current record into r. Messages name columns and rules, never the values. */
static void line_parse(const struct recon_parse *c, struct recon_parse_line *r)
{
	memset(r, 0, sizeof(*r));
	r->line_no = (uint32_t)c->rec_line;
	if (c->nfields != NCOLS) {
		problem(r, "the line has %zu fields; a statement line has %d (" HEADER_TEXT ")", c->nfields, NCOLS);
		return;
	}
	bool bad[NCOLS] = {false};
	for (int i = 0; i < NCOLS; i++) {
		if (c->long_mask & (1u << i)) {
			problem(r, "%s is longer than %d bytes", COLS[i], FIELD_MAX);
			bad[i] = true;
		} else if (c->nul_mask & (1u << i)) {
			problem(r, "%s contains a NUL byte", COLS[i]);
			bad[i] = true;
		}
	}
	const char *pref = c->f[0], *ref = c->f[1], *amount = c->f[2], *cur = c->f[3], *st = c->f[4], *at = c->f[5];

	if (!bad[0] && pref[0] && ref_field(r, "provider_ref", pref))
		hf_strlcpy(r->provider_ref, pref, sizeof(r->provider_ref));
	if (!bad[1]) {
		if (!ref[0])
			problem(r, "reference_id is required");
		else if (ref_field(r, "reference_id", ref)) {
			hf_strlcpy(r->reference_id, ref, sizeof(r->reference_id));
			r->payment_id = ref_payment_id(ref);
		}
	}
	if (!bad[2]) {
		size_t n = strlen(amount);
		if (n == 0)
			problem(r, "amount_minor is required");
		else if (amount[0] == '-')
			problem(r, "amount_minor is negative");
		else if (!digits(amount, n))
			problem(r, "amount_minor is not a whole number of minor units (150000 for 1,500.00)");
		else if (n - strspn(amount, "0") > AMOUNT_DIGITS_MAX)
			problem(r, "amount_minor is larger than 999999999999999");
		else {
			int64_t v = 0;
			for (size_t i = 0; i < n; i++)
				v = v * 10 + (amount[i] - '0');
			r->amount = v;
			r->has_amount = true;
		}
	}
	if (!bad[3]) {
		if (!cur[0])
			problem(r, "currency is required");
		else if (strlen(cur) != 3 || strspn(cur, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != 3)
			problem(r, "currency must be 3 capital letters (ISO 4217, e.g. KES)");
		else
			memcpy(r->currency, cur, 4);
	}
	const char *status = NULL;
	if (!bad[4]) {
		if (!st[0])
			problem(r, "status is required");
		else if (strcasecmp(st, "PAID") == 0)
			status = "PAID";
		else if (strcasecmp(st, "FAILED") == 0)
			status = "FAILED";
		else
			problem(r, "status must be PAID or FAILED");
	}
	if (!bad[5]) {
		if (!at[0])
			problem(r, "completed_at is required");
		else if (!time_parse(at, r->completed_at))
			problem(r, "completed_at must be a UTC time like 2026-11-28T10:00:00Z");
	}
	if (status && strcmp(status, "PAID") == 0 && !bad[0] && !pref[0])
		problem(r, "provider_ref is required on a PAID line");
	if (r->error[0]) {
		r->payment_id = 0; /* a broken line matches nothing */
		return;
	}
	hf_strlcpy(r->status, status, sizeof(r->status));
}

/* ------------------------------------------------------------------ libcsv callbacks */

static void header_check(struct recon_parse *c)
{
	bool ok = c->nfields == NCOLS && !c->long_mask && !c->nul_mask;
	for (int i = 0; ok && i < NCOLS; i++)
		ok = strcasecmp(c->f[i], COLS[i]) == 0;
	/* The header is not echoed: when it is missing, the "header" is a line of the statement. */
	if (!ok) {
		refuse(c, HF_EINVAL, "The first line of a statement must be the header " HEADER_TEXT
				     " (these columns, in this order).");
		return;
	}
	if (c->cb.header) {
		hf_err err = c->cb.header(c->arg);
		if (err)
			cb_failed(c, err);
	}
}

static void on_field(void *s, size_t len, void *data)
{
	struct recon_parse *c = data;
	if (!c->rec_open) { /* a record whose first line was blank-looking up to here */
		c->rec_line = c->phys;
		c->rec_open = true;
	}
	size_t i = c->nfields++;
	if (i >= NCOLS || (c->scan && c->records > 0))
		return; /* the structure pass keeps only the header */
	if (len > FIELD_MAX) {
		c->long_mask |= 1u << i;
		c->f[i][0] = '\0';
		return;
	}
	if (len)
		memcpy(c->f[i], s, len);
	c->f[i][len] = '\0';
	if (len && memchr(s, '\0', len))
		c->nul_mask |= 1u << i;
}

static void on_record(int term, void *data)
{
	(void)term;
	struct recon_parse *c = data;
	if (!c->fatal) {
		if (c->records == 0) {
			header_check(c);
		} else if (!c->scan) {
			line_parse(c, &c->line);
			if (c->cb.line) {
				hf_err err = c->cb.line(c->arg, &c->line);
				if (err)
					cb_failed(c, err);
			}
		}
	}
	c->records++;
	c->nfields = 0;
	c->long_mask = c->nul_mask = 0;
	c->rec_open = false;
}

/* libcsv grows its field buffer without limit; refusing past CSV_ENTRY_MAX makes csv_parse stop with
 * CSV_ENOMEM, so a quote that is never closed costs 64 KiB, not the size of the statement. */
static void *capped_realloc(void *p, size_t n)
{
	return n > CSV_ENTRY_MAX ? NULL : realloc(p, n);
}

static bool blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			return false;
	return true;
}

static uint64_t where(const struct recon_parse *c)
{
	return c->rec_open ? c->rec_line : c->phys;
}

static void csv_refused(struct recon_parse *c)
{
	if (csv_error(&c->csv) == CSV_ENOMEM)
		refuse(c, HF_EINVAL, "Line %" PRIu64 " has a field longer than 64 KiB: is a quote never closed?", where(c));
	else
		refuse(c, HF_EINVAL,
		       "Line %" PRIu64 " is not valid CSV: a quote inside a field that does not start with one, or text"
		       " after a closing quote (inside a quoted field, write a quote twice).",
		       where(c));
}

struct recon_parse *recon_parse_new(bool scan, const struct recon_parse_cb *cb, void *arg, char *msg,
				    size_t msg_cap)
{
	HF_ASSERT(msg && msg_cap > 0);
	struct recon_parse *c = hf_xcalloc(1, sizeof(*c));
	c->scan = scan;
	if (cb)
		c->cb = *cb;
	c->arg = arg;
	c->msg = msg;
	c->msg_cap = msg_cap;
	c->phys = 1;
	c->bol = true;
	c->first = true;
	HF_ASSERT(csv_init(&c->csv, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) == 0); /* fails only out of memory */
	csv_set_realloc_func(&c->csv, capped_realloc);
	return c;
}

void recon_parse_free(struct recon_parse *c)
{
	if (!c)
		return;
	csv_free(&c->csv);
	free(c);
}

/* Where the physical line that starts at data[at] ends: after its LF, CRLF or lone CR (*eol), or at len.
 * A lone CR ends a line as it ends a record for libcsv (and an editor shows one there): counted as an LF,
 * two records would share a line number. A CR that ends the feed may be the first half of a CRLF: the
 * next feed tells (*cr_last). */
static size_t line_end(const char *data, size_t at, size_t len, bool *eol, bool *cr_last)
{
	const char *nl = memchr(data + at, '\n', len - at);
	const char *stop = nl ? nl : data + len;
	const char *cr = memchr(data + at, '\r', (size_t)(stop - (data + at)));
	*eol = true;
	*cr_last = false;
	if (cr && cr + 1 != nl) {
		if (cr + 1 == data + len) {
			*eol = false;
			*cr_last = true;
		}
		return (size_t)(cr - data) + 1;
	}
	if (nl)
		return (size_t)(nl - data) + 1;
	*eol = false;
	return len;
}

/* Feeds bytes to the parser one physical line at a time, which is how a record knows its line number.
 * Stops at the first refusal. */
hf_err recon_parse_feed(struct recon_parse *c, const char *data, size_t len)
{
	if (c->first && len > 0) {
		c->first = false;
		if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) { /* a BOM, as spreadsheets write */
			data += 3;
			len -= 3;
		}
	}
	for (size_t at = 0; at < len && !c->fatal;) {
		if (c->cr_pending) {
			c->cr_pending = false;
			if (data[at] != '\n') { /* a lone CR ended the last feed; an LF here is its CRLF's, counted below */
				c->phys++;
				c->bol = true;
			}
		}
		bool eol, cr_last;
		size_t end = line_end(data, at, len, &eol, &cr_last);
		if (c->bol && c->phys > (uint64_t)RECON_PARSE_LINES_MAX + 1) {
			refuse(c, HF_ETOOBIG,
			       "The statement has more than %d lines: split it (by date) and reconcile each part.",
			       RECON_PARSE_LINES_MAX);
			break;
		}
		if (!c->rec_open && !blank(data + at, end - at)) {
			c->rec_line = c->phys;
			c->rec_open = true;
		}
		if (csv_parse(&c->csv, data + at, end - at, on_field, on_record, c) != end - at) {
			csv_refused(c);
			break;
		}
		c->bol = eol;
		if (eol)
			c->phys++;
		c->cr_pending = cr_last;
		at = end;
	}
	return c->fatal;
}

hf_err recon_parse_end(struct recon_parse *c)
{
	if (!c->fatal && csv_fini(&c->csv, on_field, on_record, c) != 0)
		refuse(c, HF_EINVAL, "The statement ends inside a quoted field: the quote opened on line %" PRIu64
				     " is never closed.",
		       where(c));
	if (!c->fatal && c->records == 0)
		refuse(c, HF_EINVAL, "The statement is empty: its first line must be the header " HEADER_TEXT ".");
	return c->fatal;
}
