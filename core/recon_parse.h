/* recon_parse.h - reading a provider statement (CSV, docs/reconciliation.md): libcsv, line numbers, the
 * header, and every line's fields validated, before anything goes to the database.
 *
 * Pure: no database. recon.c feeds a statement through a reader in chunks and writes what the line callback
 * hands it; tests/fuzz/fuzz_recon_csv.c feeds arbitrary bytes the same way. A reader belongs to one thread.
 *
 * A statement is refused whole (the reader stops, the reason in the caller's message buffer) when it is not
 * CSV (an unclosed quote, a stray quote, a field over 64 KiB), has no header or a wrong one, is empty, or has
 * more than RECON_PARSE_LINES_MAX lines. Every other line is handed over, well-formed or broken: a broken
 * line carries its reasons in error and takes no part in matching.
 */
#ifndef HF_CORE_RECON_PARSE_H
#define HF_CORE_RECON_PARSE_H

#include "hf_base.h"
#include "hf_err.h"

#define RECON_PARSE_LINES_MAX 2000000 /* lines after the header; more is refused (split the statement) */
#define RECON_PARSE_NCOLS 6
#define RECON_PARSE_FIELD_MAX 256 /* bytes of a field kept; a longer one makes its line broken */
#define RECON_PARSE_REF_MAX 64    /* characters of provider_ref and reference_id (the columns' size) */
#define RECON_PARSE_AMOUNT_MAX INT64_C(999999999999999) /* minor units */
#define RECON_PARSE_ERROR_MAX 200 /* recon_lines.error, recon_items.detail */
#define RECON_PARSE_HEADER "provider_ref,reference_id,amount_minor,currency,status,completed_at"

/* One statement line as read; "" = absent (NULL in the database). A well-formed line has status "PAID" or
 * "FAILED", a reference_id (1-64 characters of text; payment_id >= 1 when it is "HF<id>" exactly as we send
 * it, else 0), an amount (0 to RECON_PARSE_AMOUNT_MAX), a currency of 3 capital letters, completed_at as
 * "YYYY-MM-DD HH:MM:SS" (UTC) and, when PAID, a provider_ref (1-64 characters of text). A broken line has
 * error set (reasons naming columns and rules, never the values), no status and no payment_id; the fields
 * that were good are kept. */
struct recon_parse_line {
	uint32_t line_no; /* the physical line where the record began: what an editor shows (header = 1) */
	bool has_amount;
	int64_t amount;
	int64_t payment_id;
	char provider_ref[RECON_PARSE_FIELD_MAX + 1], reference_id[RECON_PARSE_FIELD_MAX + 1];
	char currency[4], status[7], completed_at[20];
	char error[RECON_PARSE_ERROR_MAX + 1];
};

/* What a reader calls; either may be NULL. An error returned stops the reader with that error (no message:
 * the callback logs its own). */
struct recon_parse_cb {
	hf_err (*header)(void *arg);                                      /* the header was read and is right */
	hf_err (*line)(void *arg, const struct recon_parse_line *line); /* each line after it (not when scan) */
};

struct recon_parse;

/* A reader. scan: the structure pass, which only checks that the statement can be read (CSV, header, size)
 * and hands over no line. A refusal's reason is written to msg (msg_cap bytes, borrowed until free). */
struct recon_parse *recon_parse_new(bool scan, const struct recon_parse_cb *cb, void *arg, char *msg,
				    size_t msg_cap);
void recon_parse_free(struct recon_parse *r); /* NULL: nothing */
/* Feeds the next len bytes of the statement (any split: a line may span feeds). HF_OK, or the error that
 * stopped the reader: HF_EINVAL / HF_ETOOBIG with a reason in msg, or a callback's error. Once stopped,
 * it stays stopped and returns that error. */
HF_MUST_CHECK hf_err recon_parse_feed(struct recon_parse *r, const char *data, size_t len);
/* The end of the statement: its last line, and the refusals only the end can tell (an unclosed quote, no
 * header at all). Same returns as recon_parse_feed. */
HF_MUST_CHECK hf_err recon_parse_end(struct recon_parse *r);

#endif
