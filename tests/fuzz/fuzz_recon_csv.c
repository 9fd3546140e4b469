/* fuzz_recon_csv.c - libFuzzer target: provider statements (core/recon_parse.c) read as recon.c reads them.
 *
 * A statement is a file from outside (docs/reconciliation.md); everything its bytes go through before the
 * database runs here, with the callbacks recon.c gives, minus the writing: the structure pass (a reader with
 * scan set, over the whole input), then the full pass (every line handed over), then the full pass again
 * with the input fed in two pieces split at a point the input picks (a file is read in 256 KiB chunks, so
 * a line may span two feeds; the split stays after a BOM, which real chunks never cut). Checked:
 * - the structure pass and the full pass agree: both accept, or both refuse with the same message; a
 *   refusal always says why; the split pass gives the very same lines and outcome;
 * - the header callback runs once, before any line; line numbers are physical lines (an LF, a CRLF or a
 *   lone CR ends one, as libcsv ends a record at either), increasing (recon_lines' key), after the
 *   header's and within the file;
 * - a well-formed line has sane values: status PAID or FAILED, a reference of 1-64 characters of text
 *   whose payment id is set exactly when it reads "HF<id>" as we write it, an amount within 0 to
 *   999999999999999, 3 capital letters, a valid UTC time, a provider_ref when PAID;
 * - a broken line carries a reason (valid text of at most 200 bytes), no status and no payment, and what
 *   it kept of its fields is as sane as on a good line.
 */
#include "hf_base.h"

#include "../../core/recon_parse.c"

#include "hf_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(expr) HF_ASSERT(expr)

struct run {
	uint64_t phys_lines; /* of the input */
	int headers;
	uint64_t lines;
	uint32_t last_line;
	uint64_t digest; /* FNV-1a over every line handed over */
};

static void digest_add(uint64_t *h, const void *p, size_t n)
{
	const unsigned char *u = p;
	for (size_t i = 0; i < n; i++) {
		*h ^= u[i];
		*h *= 0x100000001b3ULL;
	}
}

static bool text_ok(const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);
	return n < cap && hf_utf8_valid_text(s, n);
}

static bool caps3(const char *s)
{
	return strlen(s) == 3 && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == 3;
}

static bool two(const char *s, int lo, int hi)
{
	if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
		return false;
	int v = (s[0] - '0') * 10 + (s[1] - '0');
	return v >= lo && v <= hi;
}

/* "YYYY-MM-DD HH:MM:SS", 1970 or later, a real day. */
static bool when_ok(const char *s)
{
	if (strlen(s) != 19 || s[4] != '-' || s[7] != '-' || s[10] != ' ' || s[13] != ':' || s[16] != ':')
		return false;
	if (strspn(s, "0123456789") != 4 || !two(s + 5, 1, 12) || !two(s + 8, 1, 31) || !two(s + 11, 0, 23) ||
	    !two(s + 14, 0, 59) || !two(s + 17, 0, 59))
		return false;
	int y = atoi(s), mo = atoi(s + 5), d = atoi(s + 8);
	static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return y >= 1970 && d <= mdays[mo - 1] + (mo == 2 && leap);
}

static void check_ref_field(const char *s)
{
	FUZZ_CHECK(text_ok(s, RECON_PARSE_FIELD_MAX + 1));
	FUZZ_CHECK(hf_utf8_len(s) <= RECON_PARSE_REF_MAX);
}

/* "HF", then 1 to 19 digits without a leading zero, at most INT64_MAX: one of our references. */
static bool ours(const char *ref)
{
	const char *d = ref + 2;
	size_t n = strlen(ref) >= 2 ? strlen(d) : 0;
	if (strncmp(ref, "HF", 2) != 0 || n < 1 || n > 19 || d[0] == '0' || strspn(d, "0123456789") != n)
		return false;
	return n < 19 || strcmp(d, "9223372036854775807") <= 0;
}

static void check_line(const struct recon_parse_line *l)
{
	if (l->provider_ref[0])
		check_ref_field(l->provider_ref);
	if (l->reference_id[0])
		check_ref_field(l->reference_id);
	if (l->has_amount)
		FUZZ_CHECK(l->amount >= 0 && l->amount <= RECON_PARSE_AMOUNT_MAX);
	else
		FUZZ_CHECK(l->amount == 0);
	if (l->currency[0])
		FUZZ_CHECK(caps3(l->currency));
	if (l->completed_at[0])
		FUZZ_CHECK(when_ok(l->completed_at));
	if (l->error[0]) {
		FUZZ_CHECK(text_ok(l->error, sizeof(l->error)) && strlen(l->error) <= RECON_PARSE_ERROR_MAX);
		FUZZ_CHECK(l->status[0] == '\0' && l->payment_id == 0);
		return;
	}
	bool paid = strcmp(l->status, "PAID") == 0;
	FUZZ_CHECK(paid || strcmp(l->status, "FAILED") == 0);
	FUZZ_CHECK(l->reference_id[0] && l->has_amount && l->currency[0] && l->completed_at[0]);
	FUZZ_CHECK(!paid || l->provider_ref[0]);
	FUZZ_CHECK(l->payment_id >= 0);
	FUZZ_CHECK((l->payment_id > 0) == ours(l->reference_id));
	if (l->payment_id > 0) {
		char back[24];
		snprintf(back, sizeof(back), "HF%lld", (long long)l->payment_id);
		FUZZ_CHECK(strcmp(back, l->reference_id) == 0);
	}
}

static hf_err on_header(void *arg)
{
	struct run *r = arg;
	FUZZ_CHECK(r->headers == 0 && r->lines == 0);
	r->headers++;
	return HF_OK;
}

static hf_err on_line(void *arg, const struct recon_parse_line *l)
{
	struct run *r = arg;
	FUZZ_CHECK(r->headers == 1);
	FUZZ_CHECK(l->line_no >= 2 && l->line_no > r->last_line && l->line_no <= r->phys_lines);
	check_line(l);
	r->last_line = l->line_no;
	r->lines++;
	digest_add(&r->digest, l, sizeof(*l));
	return HF_OK;
}

static const struct recon_parse_cb CB = {on_header, on_line};

/* One pass; the input fed in one piece (split == 0) or two. */
static hf_err pass(bool scan, const char *text, size_t len, size_t split, struct run *r, char *msg, size_t cap)
{
	msg[0] = '\0';
	struct recon_parse *rd = recon_parse_new(scan, &CB, r, msg, cap);
	hf_err err = HF_OK;
	if (split && split < len) {
		err = recon_parse_feed(rd, text, split);
		if (!err)
			err = recon_parse_feed(rd, text + split, len - split);
	} else if (len) {
		err = recon_parse_feed(rd, text, len);
	}
	if (!err)
		err = recon_parse_end(rd);
	recon_parse_free(rd);
	if (err)
		FUZZ_CHECK((err == HF_EINVAL || err == HF_ETOOBIG) && msg[0] != '\0');
	else
		FUZZ_CHECK(r->headers == 1);
	return err;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	hf_log_set_filter("fuzz.silent");
	const char *text = (const char *)data;
	/* Lines as an editor counts them: an LF, a CRLF or a CR alone ends one. */
	uint64_t phys = 1;
	for (size_t i = 0; i < size; i++)
		phys += text[i] == '\n' || (text[i] == '\r' && (i + 1 == size || text[i + 1] != '\n'));

	char msg_scan[400], msg_full[400], msg_split[400];
	struct run scan = {.phys_lines = phys}, full = {.phys_lines = phys}, split = {.phys_lines = phys};
	hf_err e_scan = pass(true, text, size, 0, &scan, msg_scan, sizeof(msg_scan));
	FUZZ_CHECK(scan.lines == 0);
	hf_err e_full = pass(false, text, size, 0, &full, msg_full, sizeof(msg_full));
	FUZZ_CHECK(e_scan == e_full && strcmp(msg_scan, msg_full) == 0);

	/* A split point the input picks, after where a BOM would be. */
	size_t at = 0;
	if (size > 4) {
		uint32_t h = 2166136261u;
		for (size_t i = 0; i < size; i++)
			h = (h ^ data[i]) * 16777619u;
		at = 3 + h % (size - 3);
	}
	hf_err e_split = pass(false, text, size, at, &split, msg_split, sizeof(msg_split));
	FUZZ_CHECK(e_split == e_full && strcmp(msg_split, msg_full) == 0);
	FUZZ_CHECK(split.lines == full.lines && split.digest == full.digest);
	return 0;
}
