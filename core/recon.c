/* recon.c - reconciliation of a provider statement (CSV) against the ledger of one payment cycle.
 *
 * A statement can have a million lines and a cycle a million payments, so nothing per line is kept in
 * memory and nothing is done per line in a round trip:
 * - The CSV is read by recon_parse.c (libcsv, strict RFC 4180; every line validated) and streamed into
 *   recon_lines in multi-row INSERTs of 1,000 rows, each its own short transaction. A line that cannot
 *   be read is stored with the reason and no status; it never stops the run. A file that is not CSV at
 *   all (an unclosed quote, a stray quote, no header, too many lines) is refused whole: in memory (the
 *   API) and from a regular file (the CLI) a first pass checks the structure before anything is
 *   written; from a pipe the run is marked failed.
 * - One transaction then classifies every line and every paid payment set-wise, INSERT ... SELECT into
 *   recon_items, in chunks of 50,000 so that no statement comes near db.rw_timeout_s, counts the items,
 *   closes the run, raises at most one alert and appends one audit entry. It runs in READ COMMITTED: its
 *   reads of payments and the ledger are then plain snapshot reads that lock nothing, so the disbursement
 *   workers are not held up for the minute a national statement may take.
 * - Items are numbered from one fresh id (base): base + line for a line's item, base + last line + n for
 *   the n-th paid payment missing from the statement, so item ids follow the statement and the paging of
 *   GET /reconciliations/{id} reads in that order. Two runs drawing bases within a few milliseconds could
 *   overlap; the PRIMARY key refuses it and the transaction is run again with a new base.
 * The matching rules are in docs/reconciliation.md; the SQL below is them.
 */
#include "hf_base.h"
#include "recon.h"
#include "alerts.h"
#include "hf_buf.h"
#include "hf_crypto.h"
#include "hf_log.h"
#include "recon_parse.h"

#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define BATCH 1000                /* lines per INSERT; the tail goes in INSERTs of 100, 10 and 1 */
#define LINE_NPARAMS 10
#define READ_CHUNK (256 * 1024)
#define CLASSIFY_CHUNK 50000      /* lines or payments per classifying statement */
#define CLASSIFY_CHUNK_STR "49999" /* CLASSIFY_CHUNK - 1, the OFFSET of a chunk's last payment */
#define LIST_MAX_STR "500"        /* runs listed per cycle, newest first */
#define FINAL_ATTEMPTS 3
#define MSG(c, ...) snprintf((c)->msg, (c)->msg_cap, __VA_ARGS__)

static const char *const KINDS[] = {"matched",		 "amount_mismatch",	 "duplicated",
				    "missing_in_ledger", "missing_in_statement", "broken_line"};
enum { K_MATCHED, K_AMOUNT, K_DUP, K_MISS_LEDGER, K_MISS_STATEMENT, K_BROKEN, K_COUNT };

struct cycle {
	int64_t id;
	char code[41], currency[4], provider[33];
};

/* Where the messages of a refusal go: the API's c->msg, or a buffer the CLI logs. */
struct say {
	char *msg;
	size_t msg_cap;
};

struct rctx {
	struct db *db;
	bool scan; /* the structure pass: only the header is looked at and nothing is written */
	const struct cycle *cy;
	const char *actor;
	struct say *say;
	int64_t run_id; /* 0 until the header was read and the run recorded */

	/* lines read (by recon_parse.c) and not yet written; a broken line is written with its reasons */
	struct recon_parse_line *batch;
	size_t nbatch;
	uint64_t lines, broken, max_line;
	struct hf_buf sql;
	struct db_val *vals;
	crypto_hash_sha256_state sha;
};

/* ------------------------------------------------------------------ the cycle */

static bool code_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	return n >= 1 && n <= 40 && hf_utf8_valid_text(s, n);
}

/* The cycle by code; HF_ENOTFOUND / HF_ECONFLICT with a message for the caller. */
static hf_err cycle_load(struct db *db, const char *code, bool to_reconcile, struct say *say, struct cycle *cy)
{
	if (!code_ok(code)) {
		snprintf(say->msg, say->msg_cap, "No payment cycle has this code.");
		return HF_ENOTFOUND;
	}
	struct db_val v[] = {db_str(code)};
	struct db_rows *r = NULL;
	hf_err err = db_query(db, "SELECT id, code, currency, COALESCE(provider, ''), status FROM payment_cycles"
				  " WHERE code = ?",
			      v, 1, &r);
	if (err)
		return err;
	if (!db_rows_next(r)) {
		db_rows_free(r);
		snprintf(say->msg, say->msg_cap, "No payment cycle has the code %s.", code);
		return HF_ENOTFOUND;
	}
	memset(cy, 0, sizeof(*cy));
	cy->id = db_rows_i64(r, 0);
	hf_strlcpy(cy->code, db_rows_str(r, 1), sizeof(cy->code));
	hf_strlcpy(cy->currency, db_rows_str(r, 2), sizeof(cy->currency));
	hf_strlcpy(cy->provider, db_rows_str(r, 3), sizeof(cy->provider));
	char status[24];
	hf_strlcpy(status, db_rows_str(r, 4), sizeof(status));
	db_rows_free(r);
	if (!to_reconcile)
		return HF_OK;
	if (strcmp(status, "approved") != 0 && strcmp(status, "closed") != 0) {
		snprintf(say->msg, say->msg_cap, "Reconcile an approved cycle: cycle %s is %s.", cy->code, status);
		return HF_ECONFLICT;
	}
	if (!cy->provider[0]) {
		snprintf(say->msg, say->msg_cap,
			 "Cycle %s pays at kiosks: there is no provider statement to reconcile.", cy->code);
		return HF_ECONFLICT;
	}
	return HF_OK;
}

static bool digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return n > 0;
}

/* ------------------------------------------------------------------ writing lines */

#define LINE_INSERT                                                                                         \
	"INSERT INTO recon_lines (run_id, line_no, provider_ref, reference_id, payment_id, amount, currency,"  \
	" line_status, completed_at, error) VALUES "
#define LINE_ROW "(?,?,?,?,?,?,?,?,?,?)"

static struct db_val opt_str(const char *s)
{
	return s[0] ? db_str(s) : DB_NULLV;
}

/* Writes the batch in INSERTs of 1,000, 100, 10 and 1 rows: a handful of statements, each prepared once
 * per connection. Every INSERT is its own transaction (autocommit): short, whatever the statement's size. */
static hf_err lines_flush(struct rctx *c)
{
	for (size_t at = 0; at < c->nbatch;) {
		size_t k = BATCH;
		while (k > c->nbatch - at)
			k /= 10;
		hf_buf_reset(&c->sql);
		hf_err err = hf_buf_append_str(&c->sql, LINE_INSERT);
		for (size_t i = 0; !err && i < k; i++)
			err = hf_buf_append_str(&c->sql, i ? "," LINE_ROW : LINE_ROW);
		HF_ASSERT(err == HF_OK);
		for (size_t i = 0; i < k; i++) {
			const struct recon_parse_line *r = &c->batch[at + i];
			struct db_val *v = c->vals + i * LINE_NPARAMS;
			v[0] = DB_I64(c->run_id);
			v[1] = DB_I64(r->line_no);
			v[2] = opt_str(r->provider_ref);
			v[3] = opt_str(r->reference_id);
			v[4] = r->payment_id ? DB_I64(r->payment_id) : DB_NULLV;
			v[5] = r->has_amount ? DB_I64(r->amount) : DB_NULLV;
			v[6] = opt_str(r->currency);
			v[7] = opt_str(r->status);
			v[8] = opt_str(r->completed_at);
			v[9] = opt_str(r->error);
		}
		err = db_exec(c->db, hf_buf_cstr(&c->sql), c->vals, k * LINE_NPARAMS, NULL);
		if (err)
			return err;
		at += k;
	}
	c->nbatch = 0;
	return HF_OK;
}

static hf_err run_create(struct rctx *c)
{
	c->run_id = db_new_id();
	struct db_val v[] = {DB_I64(c->run_id), DB_I64(c->cy->id), db_str(c->cy->provider), db_str(c->actor)};
	hf_err err = db_exec(c->db,
			     "INSERT INTO recon_runs (id, cycle_id, provider, file_sha256, status, started_at, actor)"
			     " VALUES (?, ?, ?, '', 'running', UTC_TIMESTAMP(3), ?)",
			     v, HF_ARRAY_LEN(v), NULL);
	if (err) {
		c->run_id = 0;
		return err;
	}
	hf_log(HF_LOG_INFO, "core.recon", "msg=\"reconciliation started\" run=%lld cycle=%lld", (long long)c->run_id,
	       (long long)c->cy->id);
	return HF_OK;
}

/* ------------------------------------------------------------------ reading the statement */

/* The header is right: the run is recorded (not in the structure pass, which writes nothing). */
static hf_err on_header(void *arg)
{
	struct rctx *c = arg;
	return c->scan ? HF_OK : run_create(c);
}

/* One line read, well-formed or broken: into the batch, written every BATCH lines. */
static hf_err on_line(void *arg, const struct recon_parse_line *line)
{
	struct rctx *c = arg;
	c->batch[c->nbatch++] = *line;
	c->lines++;
	if (line->error[0])
		c->broken++;
	if (line->line_no > c->max_line)
		c->max_line = line->line_no;
	return c->nbatch == BATCH ? lines_flush(c) : HF_OK;
}

static const struct recon_parse_cb READ_CB = {on_header, on_line};

static void ctx_init(struct rctx *c, struct db *db, bool scan, const struct cycle *cy, const char *actor,
		     struct say *say)
{
	memset(c, 0, sizeof(*c));
	c->db = db;
	c->scan = scan;
	c->cy = cy;
	c->actor = actor;
	c->say = say;
	if (!scan) {
		c->batch = hf_xcalloc(BATCH, sizeof(*c->batch));
		c->vals = hf_xcalloc(BATCH * LINE_NPARAMS, sizeof(*c->vals));
		hf_buf_init(&c->sql, 64 * 1024);
		crypto_hash_sha256_init(&c->sha);
	}
}

static void ctx_release(struct rctx *c)
{
	free(c->batch);
	free(c->vals);
	hf_buf_release(&c->sql);
}

/* The file's digest covers every byte (a BOM included); the reader gets them as they come. */
static hf_err feed(struct rctx *c, struct recon_parse *rd, const char *data, size_t len)
{
	if (!c->scan)
		crypto_hash_sha256_update(&c->sha, (const unsigned char *)data, len);
	return recon_parse_feed(rd, data, len);
}

/* A whole pass over a statement in memory (or over a stream: in == NULL means mem). */
static hf_err pass_run(struct rctx *c, struct hf_str mem, FILE *in)
{
	struct recon_parse *rd = recon_parse_new(c->scan, &READ_CB, c, c->say->msg, c->say->msg_cap);
	hf_err err = HF_OK;
	if (!in) {
		for (size_t at = 0; at < mem.len && !err; at += READ_CHUNK) {
			size_t k = mem.len - at < READ_CHUNK ? mem.len - at : READ_CHUNK;
			err = feed(c, rd, mem.ptr + at, k);
		}
	} else {
		char *buf = hf_xmalloc(READ_CHUNK);
		while (!err) {
			size_t k = fread(buf, 1, READ_CHUNK, in);
			if (k)
				err = feed(c, rd, buf, k);
			if (k < READ_CHUNK) {
				if (!err && ferror(in)) {
					hf_log(HF_LOG_ERROR, "core.recon", "msg=\"cannot read the statement\" errno=%d", errno);
					snprintf(c->say->msg, c->say->msg_cap, "The statement could not be read.");
					err = HF_EIO;
				}
				break;
			}
		}
		free(buf);
	}
	if (!err)
		err = recon_parse_end(rd);
	if (!err && !c->scan && c->nbatch)
		err = lines_flush(c);
	recon_parse_free(rd);
	return err;
}

/* ------------------------------------------------------------------ classifying (one transaction) */

/* Plans are pinned (join order, indexes) in every statement evaluated once per line or payment: with the
 * statistics of tables just loaded (a run's lines, a ledger migrated in) the optimizer takes a table of a
 * million rows for an empty one and picks a scan, once per line: a 30-second job becomes a day's. */

/* What our ledger says reached the beneficiary of payment p: the entries of its postings on 'paid'
 * accounts. Probed by payment (postings) then posting (entries): a few index lookups per payment. */
#define LEDGER_PAID                                                                                          \
	"(SELECT COALESCE(SUM(e.amount), 0) FROM ledger_postings lp FORCE INDEX (ix_ledger_postings_payment)"   \
	" STRAIGHT_JOIN ledger_entries e FORCE INDEX (ix_ledger_entries_posting) ON e.posting_id = lp.id"     \
	" STRAIGHT_JOIN ledger_accounts a ON a.id = e.account_id WHERE lp.payment_id = p.id AND a.kind = 'paid')"

/* A well-formed line is the one that speaks for its reference when it is the reference's first PAID line,
 * or its first FAILED line when it has no PAID line; every other line of the reference is duplicated.
 * Probes ix_recon_lines_ref. */
#define LINES_BY_REF "recon_lines o FORCE INDEX (ix_recon_lines_ref)"
#define NOT_FIRST                                                                                             \
	"EXISTS (SELECT 1 FROM " LINES_BY_REF " WHERE o.run_id = l.run_id AND o.reference_id = l.reference_id" \
	" AND o.line_no <> l.line_no AND (o.line_status = 'PAID' AND (l.line_status = 'FAILED'"               \
	" OR o.line_no < l.line_no) OR o.line_status = 'FAILED' AND l.line_status = 'FAILED'"                 \
	" AND o.line_no < l.line_no))"
#define FIRST_LINE                                                                                            \
	"COALESCE((SELECT MIN(o.line_no) FROM " LINES_BY_REF " WHERE o.run_id = l.run_id"                     \
	" AND o.reference_id = l.reference_id AND o.line_status = 'PAID'), (SELECT MIN(o.line_no)"            \
	" FROM " LINES_BY_REF " WHERE o.run_id = l.run_id AND o.reference_id = l.reference_id"                \
	" AND o.line_status = 'FAILED'))"

/* One item per line. Parameters: item id base, currency, cycle x4, currency, cycle, run, first line, last
 * line. A PAID line found 'matched' here is checked for its amount by SQL_AMOUNTS; a duplicated line gets
 * its detail from SQL_DUP_DETAIL (so that NOT_FIRST is probed once per line, not twice). */
#define SQL_LINES                                                                                             \
	"INSERT INTO recon_items (id, run_id, kind, payment_id, line_no, ledger_amount, statement_amount, detail)" \
	" SELECT ? + l.line_no, l.run_id,"                                                                    \
	" CASE WHEN l.line_status IS NULL THEN 'broken_line'"                                                 \
	" WHEN " NOT_FIRST " THEN 'duplicated'"                                                               \
	" WHEN l.currency <> ? THEN 'amount_mismatch'"                                                        \
	" WHEN l.line_status = 'PAID' THEN IF(p.cycle_id = ? AND p.status = 'paid', 'matched', 'missing_in_ledger')" \
	" WHEN p.cycle_id = ? AND p.status = 'failed' THEN 'matched'"                                         \
	" WHEN p.cycle_id = ? AND p.status = 'paid' THEN 'missing_in_statement'"                              \
	" ELSE 'missing_in_ledger' END,"                                                                      \
	" p.id, l.line_no, IF(p.cycle_id = ?, " LEDGER_PAID ", NULL), l.amount,"                              \
	" CASE WHEN l.line_status IS NULL THEN l.error"                                                       \
	" WHEN l.currency <> ? THEN 'currency'"                                                               \
	" WHEN p.id IS NULL THEN IF(l.line_status = 'PAID', 'not one of our references',"                     \
	" 'statement says failed; not one of our references')"                                               \
	" WHEN p.cycle_id <> ? THEN IF(l.line_status = 'PAID', 'a payment of another cycle',"                 \
	" 'statement says failed; a payment of another cycle')"                                               \
	" WHEN l.line_status = 'PAID' THEN IF(p.status = 'paid', NULL, CONCAT('our books say ', p.status))"   \
	" WHEN p.status = 'failed' THEN 'both say failed'"                                                    \
	" WHEN p.status = 'paid' THEN 'statement says failed'"                                                \
	" ELSE CONCAT('statement says failed; our books say ', p.status) END"                                 \
	" FROM recon_lines l FORCE INDEX (PRIMARY) LEFT JOIN payments p ON p.id = l.payment_id"               \
	" WHERE l.run_id = ? AND l.line_no BETWEEN ? AND ?"

/* A PAID line whose amount is not what our ledger paid. Parameters: run, first item id, last item id. */
#define SQL_AMOUNTS                                                                                           \
	"UPDATE recon_items FORCE INDEX (ix_recon_items_run) SET kind = 'amount_mismatch', detail = 'amount'"   \
	" WHERE run_id = ? AND kind = 'matched'"                                                              \
	" AND id BETWEEN ? AND ? AND detail IS NULL AND ledger_amount <> statement_amount"

/* Names the line a duplicated one repeats. Parameters: run, first item id, last item id. */
#define SQL_DUP_DETAIL                                                                                        \
	"UPDATE recon_items i FORCE INDEX (ix_recon_items_run) JOIN recon_lines l FORCE INDEX (PRIMARY)"      \
	" ON l.run_id = i.run_id AND l.line_no = i.line_no SET i.detail = CONCAT('same reference as line ', "  \
	FIRST_LINE ") WHERE i.run_id = ? AND i.kind = 'duplicated' AND i.id BETWEEN ? AND ?"

/* The last paid payment of the next chunk (by id). Parameters: cycle, after id. */
#define SQL_PAID_CHUNK_END                                                                                    \
	"SELECT id FROM payments FORCE INDEX (ix_payments_cycle) WHERE cycle_id = ? AND status = 'paid'"       \
	" AND id > ? ORDER BY id"                                                                             \
	" LIMIT 1 OFFSET " CLASSIFY_CHUNK_STR

/* Paid provider payments that no well-formed line names (broken lines name no payment). An anti-join,
 * one probe of ix_recon_lines_payment per payment: NOT EXISTS is planned as a materialisation of all the
 * run's lines, once per chunk. Parameters: item id base, run, run, cycle, after id, last id. */
#define SQL_MISSING                                                                                           \
	"INSERT INTO recon_items (id, run_id, kind, payment_id, line_no, ledger_amount, statement_amount, detail)" \
	" SELECT ? + ROW_NUMBER() OVER (ORDER BY p.id), ?, 'missing_in_statement', p.id, NULL, " LEDGER_PAID ","  \
	" NULL, 'not in the statement' FROM payments p FORCE INDEX (ix_payments_cycle)"                       \
	" LEFT JOIN recon_lines l FORCE INDEX (ix_recon_lines_payment)"                                       \
	" ON l.run_id = ?"                                                                                    \
	" AND l.payment_id = p.id WHERE p.cycle_id = ? AND p.status = 'paid'"                                 \
	" AND p.channel IN ('mobile_money', 'g2p') AND p.id > ? AND p.id <= ? AND l.run_id IS NULL"

struct final_args {
	struct rctx *c;
	const struct audit_actor *who;
	int64_t base;
	char sha_hex[65];
	int64_t counts[K_COUNT];
	bool raised;
};

static hf_err classify_lines(struct db *db, struct final_args *a)
{
	const struct rctx *c = a->c;
	for (uint64_t from = 1; from <= c->max_line; from += CLASSIFY_CHUNK) {
		uint64_t to = from + CLASSIFY_CHUNK - 1;
		struct db_val v[] = {DB_I64(a->base),	      db_str(c->cy->currency), DB_I64(c->cy->id),
				     DB_I64(c->cy->id),	      DB_I64(c->cy->id),       DB_I64(c->cy->id),
				     db_str(c->cy->currency), DB_I64(c->cy->id),       DB_I64(c->run_id),
				     DB_I64(from),	      DB_I64(to)};
		hf_err err = db_exec(db, SQL_LINES, v, HF_ARRAY_LEN(v), NULL);
		struct db_val w[] = {DB_I64(c->run_id), DB_I64(a->base + (int64_t)from), DB_I64(a->base + (int64_t)to)};
		if (!err)
			err = db_exec(db, SQL_AMOUNTS, w, HF_ARRAY_LEN(w), NULL);
		if (!err)
			err = db_exec(db, SQL_DUP_DETAIL, w, HF_ARRAY_LEN(w), NULL);
		if (err)
			return err;
	}
	return HF_OK;
}

static hf_err classify_missing(struct db *db, struct final_args *a)
{
	const struct rctx *c = a->c;
	int64_t after = 0, added = 0;
	for (;;) {
		struct db_val b[] = {DB_I64(c->cy->id), DB_I64(after)};
		struct db_rows *r = NULL;
		hf_err err = db_query(db, SQL_PAID_CHUNK_END, b, HF_ARRAY_LEN(b), &r);
		if (err)
			return err;
		bool more = db_rows_next(r);
		int64_t last = more ? db_rows_i64(r, 0) : INT64_MAX;
		db_rows_free(r);
		int64_t base = a->base + (int64_t)c->max_line + added;
		struct db_val v[] = {DB_I64(base),	DB_I64(c->run_id), DB_I64(c->run_id),
				     DB_I64(c->cy->id), DB_I64(after),	   DB_I64(last)};
		uint64_t n = 0;
		err = db_exec(db, SQL_MISSING, v, HF_ARRAY_LEN(v), &n);
		if (err)
			return err;
		added += (int64_t)n;
		if (!more)
			return HF_OK;
		after = last;
	}
}

static json_t *counts_json(const int64_t *k)
{
	json_t *o = json_object();
	for (int i = 0; i < K_COUNT; i++)
		json_object_set_new(o, KINDS[i], json_integer(k[i]));
	return o;
}

static hf_err final_body(struct db *db, void *vargs)
{
	struct final_args *a = vargs;
	struct rctx *c = a->c;
	memset(a->counts, 0, sizeof(a->counts));
	a->raised = false;
	/* Snapshot reads of payments and the ledger, without locking them (see the file's header). */
	hf_err err = db_exec_plain(db, "SET TRANSACTION ISOLATION LEVEL READ COMMITTED");
	if (!err)
		err = classify_lines(db, a);
	if (!err)
		err = classify_missing(db, a);
	if (err)
		return err;

	struct db_val run[] = {DB_I64(c->run_id)};
	struct db_rows *r = NULL;
	err = db_query(db, "SELECT kind, COUNT(*) FROM recon_items WHERE run_id = ? GROUP BY kind", run, 1, &r);
	if (err)
		return err;
	while (db_rows_next(r))
		for (int i = 0; i < K_COUNT; i++)
			if (strcmp(db_rows_str(r, 0), KINDS[i]) == 0)
				a->counts[i] = db_rows_i64(r, 1);
	db_rows_free(r);
	const int64_t *k = a->counts;
	struct db_val u[] = {db_str(a->sha_hex),	 DB_I64(c->lines),	      DB_I64(k[K_BROKEN]),
			     DB_I64(k[K_MATCHED]),	 DB_I64(k[K_AMOUNT]),	      DB_I64(k[K_DUP]),
			     DB_I64(k[K_MISS_LEDGER]), DB_I64(k[K_MISS_STATEMENT]), DB_I64(c->run_id)};
	err = db_exec(db,
		      "UPDATE recon_runs SET file_sha256 = ?, lines_total = ?, lines_broken = ?, matched = ?,"
		      " amount_mismatch = ?, duplicated = ?, missing_in_ledger = ?, missing_in_statement = ?,"
		      " status = 'done', finished_at = UTC_TIMESTAMP(3) WHERE id = ? AND status = 'running'",
		      u, HF_ARRAY_LEN(u), NULL);
	if (err)
		return err;

	char run_s[24];
	snprintf(run_s, sizeof(run_s), "%lld", (long long)c->run_id);
	bool money = k[K_AMOUNT] || k[K_DUP] || k[K_MISS_LEDGER] || k[K_MISS_STATEMENT];
	if (money || k[K_BROKEN]) {
		json_t *d = json_pack("{s:s, s:s, s:s, s:I, s:o}", "run", run_s, "cycle", c->cy->code, "provider",
				      c->cy->provider, "lines_total", (json_int_t)c->lines, "counts", counts_json(k));
		err = alerts_raise(db, ALERT_STATEMENT_MISMATCH, money ? "critical" : "warning", run_s, c->cy->id, 0, d,
				   &a->raised);
		json_decref(d);
		if (err)
			return err;
	}
	/* Counts and the file's digest: nothing of the statement's contents. */
	json_t *d = json_pack("{s:s, s:s, s:I, s:o, s:s, s:b}", "run", run_s, "provider", c->cy->provider, "lines_total",
			      (json_int_t)c->lines, "counts", counts_json(k), "file_sha256", a->sha_hex, "alert",
			      a->raised);
	struct audit_event ev = {"recon.run", "cycle", c->cy->code, "ok", NULL, NULL, d};
	err = audit_append(db, a->who, &ev);
	json_decref(d);
	return err;
}

static void run_fail(struct db *db, int64_t run_id)
{
	struct db_val v[] = {DB_I64(run_id)};
	hf_err err = db_exec(db,
			     "UPDATE recon_runs SET status = 'failed', finished_at = UTC_TIMESTAMP(3) WHERE id = ?"
			     " AND status = 'running'",
			     v, 1, NULL);
	if (err)
		hf_log(HF_LOG_WARN, "core.recon", "msg=\"cannot mark the run failed\" run=%lld err=%s", (long long)run_id,
		       hf_err_name(err));
}

/* ------------------------------------------------------------------ reports */

#define RUN_COLS                                                                                              \
	"r.id, c.code, r.provider, r.status, r.lines_total, r.lines_broken, r.matched, r.amount_mismatch,"     \
	" r.duplicated, r.missing_in_ledger, r.missing_in_statement, DATE_FORMAT(r.started_at, " DB_TS_FMT "),"  \
	" IF(r.finished_at IS NULL, NULL, DATE_FORMAT(r.finished_at, " DB_TS_FMT ")), r.file_sha256, r.actor"
#define RUN_FROM " FROM recon_runs r JOIN payment_cycles c ON c.id = r.cycle_id"

static json_t *run_json(struct db_rows *r)
{
	int64_t k[K_COUNT] = {db_rows_i64(r, 6), db_rows_i64(r, 7), db_rows_i64(r, 8),
			      db_rows_i64(r, 9), db_rows_i64(r, 10), db_rows_i64(r, 5)};
	const char *sha = db_rows_str(r, 13);
	return json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:o, s:s, s:s?, s:s?, s:s}", "id", db_rows_str(r, 0), "cycle",
			 db_rows_str(r, 1), "provider", db_rows_str(r, 2), "status", db_rows_str(r, 3), "lines_total",
			 (json_int_t)db_rows_i64(r, 4), "lines_broken", (json_int_t)db_rows_i64(r, 5), "counts",
			 counts_json(k), "started_at", db_rows_str(r, 11), "finished_at",
			 db_rows_null(r, 12) ? NULL : db_rows_str(r, 12), "file_sha256", sha[0] ? sha : NULL, "by",
			 db_rows_str(r, 14));
}

static hf_err run_load(struct db *db, int64_t run_id, json_t **out)
{
	struct db_val v[] = {DB_I64(run_id)};
	struct db_rows *r = NULL;
	hf_err err = db_query(db, "SELECT " RUN_COLS RUN_FROM " WHERE r.id = ?", v, 1, &r);
	if (err)
		return err;
	if (!db_rows_next(r)) {
		db_rows_free(r);
		return HF_ENOTFOUND;
	}
	*out = run_json(r);
	db_rows_free(r);
	return HF_OK;
}

/* ------------------------------------------------------------------ a run */

static hf_err recon_run(struct db *db, const struct audit_actor *who, const char *actor, const char *cycle_code,
			struct hf_str mem, FILE *in, struct say *say, json_t **out)
{
	struct cycle cy;
	hf_err err = cycle_load(db, cycle_code, true, say, &cy);
	if (err)
		return err;
	int64_t t0 = hf_mono_ms();

	/* The structure pass, when the statement can be read twice: a file that is not CSV is refused before
	 * anything is written. From a pipe the one pass finds it, and the run is marked failed. */
	bool seekable = false;
	if (in) {
		struct stat sb;
		seekable = fstat(fileno(in), &sb) == 0 && S_ISREG(sb.st_mode) && ftello(in) >= 0;
	}
	off_t start = seekable ? ftello(in) : 0;
	if (!in || seekable) {
		struct rctx s;
		ctx_init(&s, db, true, &cy, actor, say);
		err = pass_run(&s, mem, in);
		ctx_release(&s);
		if (!err && seekable && fseeko(in, start, SEEK_SET) != 0) {
			hf_log(HF_LOG_ERROR, "core.recon", "msg=\"cannot rewind the statement\" errno=%d", errno);
			err = HF_EIO;
		}
		if (err)
			return err;
	}

	struct rctx *c = hf_xmalloc(sizeof(*c));
	ctx_init(c, db, false, &cy, actor, say);
	err = pass_run(c, mem, in);
	if (!err && c->run_id == 0)
		err = HF_EINTERNAL; /* the header was read, so the run was recorded */
	struct final_args fa = {.c = c, .who = who};
	int64_t t_loaded = hf_mono_ms();
	if (!err) {
		uint8_t sha[32];
		crypto_hash_sha256_final(&c->sha, sha);
		hf_hex(sha, sizeof(sha), fa.sha_hex);
		for (int attempt = 1;; attempt++) {
			fa.base = db_new_id();
			err = db_tx(db, final_body, &fa);
			if (err != HF_ECONFLICT || attempt >= FINAL_ATTEMPTS || strcmp(db_conflict_key(db), "PRIMARY") != 0)
				break;
			hf_log(HF_LOG_INFO, "core.recon", "msg=\"item ids drawn twice; classifying again\" run=%lld",
			       (long long)c->run_id);
		}
	}
	int64_t ms = hf_mono_ms() - t0;
	if (err) {
		if (c->run_id)
			run_fail(db, c->run_id);
		hf_log(HF_LOG_WARN, "core.recon", "msg=\"reconciliation stopped\" run=%lld cycle=%lld lines=%" PRIu64
		       " err=%s ms=%lld", (long long)c->run_id, (long long)cy.id, c->lines, hf_err_name(err), (long long)ms);
		if (!say->msg[0] && (err == HF_EINVAL || err == HF_ETOOBIG))
			snprintf(say->msg, say->msg_cap, "The statement was refused.");
	} else {
		const int64_t *k = fa.counts;
		hf_log(HF_LOG_INFO, "core.recon",
		       "msg=\"reconciliation done\" run=%lld cycle=%lld lines=%" PRIu64 " broken=%lld matched=%lld"
		       " amount_mismatch=%lld duplicated=%lld missing_in_ledger=%lld missing_in_statement=%lld"
		       " alert=%s load_ms=%lld classify_ms=%lld",
		       (long long)c->run_id, (long long)cy.id, c->lines, (long long)k[K_BROKEN], (long long)k[K_MATCHED],
		       (long long)k[K_AMOUNT], (long long)k[K_DUP], (long long)k[K_MISS_LEDGER],
		       (long long)k[K_MISS_STATEMENT], fa.raised ? "raised" : "none", (long long)(t_loaded - t0),
		       (long long)(t0 + ms - t_loaded));
		err = run_load(db, c->run_id, out);
	}
	ctx_release(c);
	free(c);
	return err;
}

hf_err recon_run_file(struct db *db, const struct audit_actor *who, const char *cycle_code, FILE *in, json_t **report)
{
	char actor[72], msg[400] = "";
	snprintf(actor, sizeof(actor), "cli:%s", who->name ? who->name : "unknown");
	struct say say = {msg, sizeof(msg)};
	hf_err err = recon_run(db, who, actor, cycle_code, (struct hf_str){NULL, 0}, in, &say, report);
	/* The CLI has no other place for the reason; it names lines and columns, never their contents. */
	if (err && msg[0])
		hf_log(HF_LOG_ERROR, "core.recon", "msg=\"reconciliation refused\" reason=\"%s\"", msg);
	return err;
}

hf_err recon_run_api(struct svc_call *c, const char *cycle_code, struct hf_str csv, json_t **out)
{
	struct say say = {c->msg, c->msg_cap};
	if (c->msg_cap)
		c->msg[0] = '\0';
	if (!csv.ptr)
		csv = (struct hf_str){"", 0};
	return recon_run(c->db, &c->p->audit, c->p->actor, cycle_code, csv, NULL, &say, out);
}

hf_err recon_list(struct svc_call *c, const char *cycle_code, json_t **out)
{
	struct say say = {c->msg, c->msg_cap};
	struct cycle cy;
	hf_err err = cycle_load(c->db, cycle_code, false, &say, &cy);
	if (err)
		return err;
	struct db_val v[] = {DB_I64(cy.id)};
	struct db_rows *r = NULL;
	err = db_query(c->db,
		       "SELECT " RUN_COLS RUN_FROM " WHERE r.cycle_id = ? ORDER BY r.started_at DESC, r.id DESC"
		       " LIMIT " LIST_MAX_STR,
		       v, 1, &r);
	if (err)
		return err;
	json_t *items = json_array();
	while (db_rows_next(r))
		json_array_append_new(items, run_json(r));
	db_rows_free(r);
	*out = json_pack("{s:s, s:o}", "cycle", cy.code, "items", items);
	return HF_OK;
}

static bool id_parse(const char *s, int64_t *out)
{
	size_t n = s ? strlen(s) : 0;
	if (n < 1 || n > 19 || !digits(s, n))
		return false;
	return hf_parse_i64(s, 1, INT64_MAX, out) == HF_OK;
}

hf_err recon_get(struct svc_call *c, const char *run_id, const char *kind, int limit, const char *after, json_t **out)
{
	int64_t id = 0, after_id = 0;
	if (!id_parse(run_id, &id)) {
		MSG(c, "No reconciliation run has this id.");
		return HF_ENOTFOUND;
	}
	if (kind && kind[0]) {
		bool known = false;
		for (int i = 0; i < K_COUNT && !known; i++)
			known = strcmp(kind, KINDS[i]) == 0;
		if (!known)
			hf_ferrs_add(c->fe, "kind", "bad_value",
				     "one of matched, amount_mismatch, duplicated, missing_in_ledger, missing_in_statement,"
				     " broken_line");
	} else {
		kind = NULL;
	}
	if (after && after[0] && !id_parse(after, &after_id))
		hf_ferrs_add(c->fe, "after", "bad_value", "the \"next\" of the previous page");
	if (limit < 1)
		hf_ferrs_add(c->fe, "limit", "out_of_range", "must be at least 1");
	if (hf_ferrs_any(c->fe))
		return HF_EINVAL;

	json_t *run = NULL;
	hf_err err = run_load(c->db, id, &run);
	if (err == HF_ENOTFOUND)
		MSG(c, "No reconciliation run has the id %lld.", (long long)id);
	if (err)
		return err;
	/* One more than asked for tells whether there is a next page. Each form has its own index, named
	 * because a run's million items may be newer than the table's statistics: (run_id, kind[, id]) and
	 * (run_id, id). */
	struct db_rows *r = NULL;
	if (kind) {
		struct db_val v[] = {DB_I64(id), db_str(kind), DB_I64(after_id), DB_I64(limit + 1)};
		err = db_query(c->db,
			       "SELECT id, kind, payment_id, line_no, ledger_amount, statement_amount, detail FROM recon_items"
			       " FORCE INDEX (ix_recon_items_run) WHERE run_id = ? AND kind = ? AND id > ? ORDER BY id LIMIT ?",
			       v, HF_ARRAY_LEN(v), &r);
	} else {
		struct db_val v[] = {DB_I64(id), DB_I64(after_id), DB_I64(limit + 1)};
		err = db_query(c->db,
			       "SELECT id, kind, payment_id, line_no, ledger_amount, statement_amount, detail FROM recon_items"
			       " FORCE INDEX (ix_recon_items_page) WHERE run_id = ? AND id > ? ORDER BY id LIMIT ?",
			       v, HF_ARRAY_LEN(v), &r);
	}
	if (err) {
		json_decref(run);
		return err;
	}
	json_t *items = json_array();
	const char *next = NULL;
	int n = 0;
	char last[24] = "";
	while (db_rows_next(r)) {
		if (n == limit) {
			next = last;
			break;
		}
		n++;
		hf_strlcpy(last, db_rows_str(r, 0), sizeof(last));
		json_t *it = json_pack("{s:s, s:s}", "id", db_rows_str(r, 0), "kind", db_rows_str(r, 1));
		json_object_set_new(it, "payment", db_rows_null(r, 2) ? json_null() : json_string(db_rows_str(r, 2)));
		json_object_set_new(it, "line", db_rows_null(r, 3) ? json_null() : json_integer(db_rows_i64(r, 3)));
		json_object_set_new(it, "ledger_amount", db_rows_null(r, 4) ? json_null() : json_integer(db_rows_i64(r, 4)));
		json_object_set_new(it, "statement_amount",
				    db_rows_null(r, 5) ? json_null() : json_integer(db_rows_i64(r, 5)));
		json_object_set_new(it, "detail", db_rows_null(r, 6) ? json_null() : json_string(db_rows_str(r, 6)));
		json_array_append_new(items, it);
	}
	json_object_set_new(run, "items", items);
	json_object_set_new(run, "limit", json_integer(limit));
	if (next)
		json_object_set_new(run, "next", json_string(next));
	db_rows_free(r);
	*out = run;
	return HF_OK;
}
