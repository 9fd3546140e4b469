/* notices.c - SMS texts (menus/sms/<language>.ini), payment notices to a cycle's payees, and the outbox as
 * the SMS gateway drains it (claim, delivery reports).
 *
 * Templates. The files of menus/sms/ are loaded, checked, looked up (a language without a file is rendered
 * in Swahili, then English) and rendered by sms_templates.c; this file holds the one set loaded at startup.
 *
 * Notices. A payment officer filters a cycle's payments (pay point, location, status), previews who gets
 * which text, and sends or schedules it. Sending writes one outbox row per payee in batches of
 * NOTICE_BATCH payments, each batch its own transaction, so that 100,000 payees never hold one huge
 * transaction; the notice's recipient count grows with each batch, so it always equals its outbox rows, even
 * after a crash. A payee who got (or will get) the same template within 24 hours of this notice is skipped.
 *
 * The outbox. The gateway claims due rows (FOR UPDATE SKIP LOCKED, so several gateways never send one row
 * twice), gets the phone opened and the text rendered in the row's language, and reports each message's
 * fate. A row left in 'sending' for OUTBOX_STALE_MIN minutes (a gateway that crashed) is claimable again,
 * at most OUTBOX_MAX_ATTEMPTS times; then it is failed so that a message that crashes the gateway does not
 * come back forever.
 */
#include "hf_base.h"
#include "notices.h"

#include "app.h"
#include "audit.h"
#include "hf_log.h"
#include "hf_money.h"
#include "outbox.h"
#include "person.h"
#include "sms_templates.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NOTICE_BATCH 1000          /* payments per transaction when sending */
#define NOTICE_INSERT_ROWS 100     /* outbox rows per INSERT statement */
#define NOTICE_RANGE_ROWS 4000     /* payments read per batch's id range (a batch plans 1000): in its SQL */
#define NOTICE_MAX_RECIPIENTS 1000000
#define NOTICE_MAX_AHEAD_S (30 * 86400)
#define NOTICE_LIST_MAX 200 /* newest notices listed (in the SQL below) */
#define PREVIEW_MAX_LANGS 32
#define OUTBOX_CLAIM_MAX 500
#define OUTBOX_STALE_MIN 10 /* minutes; in the SQL of claim_select */
#define OUTBOX_MAX_ATTEMPTS 5

/* ---- the templates ------------------------------------------------------------------------------------ */

static const char *const PAYMENT_TEMPLATES[] = {"payment_ready", "payment_sent", "payment_reminder", NULL};

/* Loaded once by notices_init, read-only afterwards: every pool thread reads it without locks. */
static struct smst *S;

/* menus.dir (core_config.c); "menus" without a configuration (unit tests, benchmarks). */
static const char *menus_dir(const struct hf_config *cfg)
{
	return cfg ? hf_config_str(cfg, "menus.dir") : "menus";
}

hf_err notices_init(const struct hf_config *cfg, struct hf_buf *err)
{
	notices_shutdown();
	struct hf_buf dir;
	hf_buf_init(&dir, 4096);
	hf_err rc = HF_OK;
	if (hf_buf_appendf(&dir, "%s/sms", menus_dir(cfg))) {
		hf_buf_note(err, "menus.dir is too long");
		rc = HF_EINVAL;
		goto out;
	}
	rc = smst_load(hf_buf_cstr(&dir), &S, err);
out:
	hf_buf_release(&dir);
	return rc;
}

void notices_shutdown(void)
{
	smst_free(S);
	S = NULL;
}

/* ---- helpers -------------------------------------------------------------------------------------------- */


static void iso_utc(int64_t ms, char *out, size_t cap)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static hf_err placeholders(struct hf_buf *b, size_t n, const char *one)
{
	hf_err err = HF_OK;
	for (size_t i = 0; i < n && !err; i++)
		err = hf_buf_appendf(b, "%s%s", i ? ", " : "", one);
	return err;
}

static void wipe(struct hf_buf *b)
{
	if (b->data)
		sodium_memzero(b->data, b->cap);
	hf_buf_release(b);
}

struct cycle {
	int64_t id;
	char code[41];
	char status[24];
	char currency[4];
	char pay_from[11], pay_until[11];
	char provider[33];
};

/* The cycle by code: HF_ENOTFOUND when there is none; with need_approved, HF_ECONFLICT unless approved. */
static hf_err cycle_find(struct svc_call *c, const char *code, bool need_approved, struct cycle *out)
{
	if (!code || strlen(code) > 40) {
		svc_say(c, "No such payment cycle.");
		return HF_ENOTFOUND;
	}
	struct db_val v[] = {db_str(code)};
	struct db_rows *r = NULL;
	hf_err err = db_query(c->db,
			      "SELECT id, code, status, currency, DATE_FORMAT(pay_from, '%Y-%m-%d'), DATE_FORMAT(pay_until,"
			      " '%Y-%m-%d'), COALESCE(provider, '') FROM payment_cycles WHERE code = ?",
			      v, 1, &r);
	if (err)
		return err;
	if (!db_rows_next(r)) {
		db_rows_free(r);
		svc_say(c, "No such payment cycle.");
		return HF_ENOTFOUND;
	}
	memset(out, 0, sizeof(*out));
	out->id = db_rows_i64(r, 0);
	hf_strlcpy(out->code, db_rows_str(r, 1), sizeof(out->code));
	hf_strlcpy(out->status, db_rows_str(r, 2), sizeof(out->status));
	hf_strlcpy(out->currency, db_rows_str(r, 3), sizeof(out->currency));
	hf_strlcpy(out->pay_from, db_rows_str(r, 4), sizeof(out->pay_from));
	hf_strlcpy(out->pay_until, db_rows_str(r, 5), sizeof(out->pay_until));
	hf_strlcpy(out->provider, db_rows_str(r, 6), sizeof(out->provider));
	db_rows_free(r);
	if (need_approved && strcmp(out->status, "approved") != 0) {
		svc_say(c, "The cycle is %s: notices go to the payees of an approved cycle.", out->status);
		return HF_ECONFLICT;
	}
	return HF_OK;
}

/* ---- the filter ----------------------------------------------------------------------------------------- */

static const char *const PAYMENT_STATUSES[] = {"scheduled", "approved",	 "sending", "pending",
					       "paid",	    "failed",	 "reversed", "available",
					       "collected", "expired",	 "cancelled", NULL};

struct filter {
	const char *tmpl;
	const char *pay_point, *location, *status; /* NULL = any (status: the payable ones) */
	char like[700];                            /* location + "/%", LIKE-escaped with '!' */
};

/* FROM and WHERE of the payees a filter selects; FILTER_NPARAMS values from filter_vals. */
#define FILTER_FROM                                                                                            \
	" FROM payments p JOIN individuals i ON i.id = p.individual_id LEFT JOIN locations l ON l.id ="          \
	" p.location_id WHERE p.cycle_id = ? AND ((? IS NULL AND p.status IN ('approved', 'available', 'sending',"  \
	" 'pending')) OR p.status = ?) AND (? IS NULL OR p.pay_point = ?) AND (? IS NULL OR l.path = ? OR l.path"  \
	" LIKE ? ESCAPE '!') AND EXISTS (SELECT 1 FROM enrolments e WHERE e.id = p.enrolment_id AND e.status ="    \
	" 'enrolled') AND NOT EXISTS (SELECT 1 FROM phone_optouts x WHERE x.phone_bidx = i.phone_bidx)"           \
	/* a held payee (died, suspended since the approval) is not told to collect; STOP is honoured */
#define FILTER_NPARAMS 8

static void filter_vals(const struct filter *f, int64_t cycle_id, struct db_val *v)
{
	v[0] = DB_I64(cycle_id);
	v[1] = db_str(f->status);
	v[2] = db_str(f->status);
	v[3] = db_str(f->pay_point);
	v[4] = db_str(f->pay_point);
	v[5] = db_str(f->location);
	v[6] = db_str(f->location);
	v[7] = db_str(f->location ? f->like : NULL);
}

static void filter_read(struct svc_call *c, json_t *body, bool with_send_at, struct filter *f, const char **send_at)
{
	static const char *const allowed[] = {"template", "pay_point", "location", "status", NULL};
	static const char *const allowed_send[] = {"template", "pay_point", "location", "status", "send_at", NULL};
	hf_json_only_fields(body, with_send_at ? allowed_send : allowed, "", c->fe);
	memset(f, 0, sizeof(*f));
	(void)hf_json_get_enum(body, "", "template", true, PAYMENT_TEMPLATES, c->fe, &f->tmpl);
	(void)hf_json_get_str(body, "", "pay_point", false, 1, 64, c->fe, &f->pay_point);
	(void)hf_json_get_str(body, "", "location", false, 1, 320, c->fe, &f->location);
	(void)hf_json_get_enum(body, "", "status", false, PAYMENT_STATUSES, c->fe, &f->status);
	if (with_send_at)
		(void)hf_json_get_str(body, "", "send_at", false, 1, 32, c->fe, send_at);
	if (f->location && (f->location[0] == '/' || f->location[strlen(f->location) - 1] == '/' ||
			    strstr(f->location, "//"))) {
		hf_ferrs_add(c->fe, "location", "format", "a path of names: Region, Region/District or Region/District/Village");
		f->location = NULL;
	}
	if (f->location) {
		/* "Region/District" also matches its villages, never "Region/Districtville". */
		size_t k = 0;
		for (const char *s = f->location; *s && k + 4 < sizeof(f->like); s++) {
			if (*s == '!' || *s == '%' || *s == '_')
				f->like[k++] = '!';
			f->like[k++] = *s;
		}
		memcpy(f->like + k, "/%", 3);
	}
}

/* The filter as given (absent keys left out): stored with the notice and audited; no personal data. */
static json_t *filter_json(const struct filter *f)
{
	json_t *o = json_object();
	if (f->pay_point)
		json_object_set_new(o, "pay_point", json_string(f->pay_point));
	if (f->location)
		json_object_set_new(o, "location", json_string(f->location));
	if (f->status)
		json_object_set_new(o, "status", json_string(f->status));
	return o;
}

/* The params of a payment template: the payee's amount and pay point, the cycle's dates. No personal data. */
static json_t *payment_params(const char *tmpl, const struct cycle *cy, int64_t amount, const char *currency,
			      const char *pay_point)
{
	HF_ASSERT(smst_is_payment(tmpl));
	const char *const *params = smst_params(tmpl);
	char money[HF_MONEY_STR_MAX];
	hf_money_display(amount, currency, money);
	const char *where = pay_point && *pay_point ? pay_point : cy->provider;
	json_t *o = json_object();
	for (size_t i = 0; params[i]; i++) {
		const char *k = params[i];
		const char *v = !strcmp(k, "amount")	 ? money
				: !strcmp(k, "currency") ? currency
				: !strcmp(k, "pay_point") ? where
				: !strcmp(k, "date")	 ? cy->pay_from
				: !strcmp(k, "until")	 ? cy->pay_until
							 : "";
		json_object_set_new(o, k, json_string(v));
	}
	return o;
}

/* ---- preview -------------------------------------------------------------------------------------------- */

hf_err notices_preview(struct svc_call *c, const char *cycle_code, json_t *body, json_t **out)
{
	struct filter f;
	filter_read(c, body, false, &f, NULL);
	if (hf_ferrs_any(c->fe))
		return HF_EINVAL;
	if (!S) {
		hf_log(HF_LOG_ERROR, "core.notices", "msg=\"sms templates not loaded (notices_init not called)\"");
		return HF_EINTERNAL;
	}
	struct cycle cy;
	hf_err err = cycle_find(c, cycle_code, true, &cy);
	if (err)
		return err;
	struct db_val v[FILTER_NPARAMS];
	filter_vals(&f, cy.id, v);
	struct db_rows *r = NULL;
	err = db_query(c->db,
		       "SELECT i.language AS lang, (i.phone_enc IS NOT NULL) AS has_phone, COUNT(*), MIN(p.id)" FILTER_FROM
		       " GROUP BY lang, has_phone ORDER BY lang LIMIT 200",
		       v, FILTER_NPARAMS, &r);
	if (err)
		return err;
	struct {
		char lang[9];
		int64_t count, first;
	} g[PREVIEW_MAX_LANGS];
	size_t ng = 0;
	int64_t recipients = 0, without = 0;
	while (db_rows_next(r)) {
		int64_t n = db_rows_i64(r, 2);
		if (!db_rows_i64(r, 1)) {
			without += n;
			continue;
		}
		recipients += n;
		if (ng < PREVIEW_MAX_LANGS) {
			hf_strlcpy(g[ng].lang, db_rows_str(r, 0), sizeof(g[ng].lang));
			g[ng].count = n;
			g[ng].first = db_rows_i64(r, 3);
			ng++;
		}
	}
	db_rows_free(r);
	json_t *by = json_object();
	for (size_t i = 0; i < ng && !err; i++) {
		/* The example is the language's first payee's real values. */
		struct db_val w[] = {DB_I64(g[i].first)};
		err = db_query(c->db, "SELECT amount, currency, COALESCE(pay_point, '') FROM payments WHERE id = ?", w, 1,
			       &r);
		if (err)
			break;
		json_t *params = NULL;
		if (db_rows_next(r))
			params = payment_params(f.tmpl, &cy, db_rows_i64(r, 0), db_rows_str(r, 1), db_rows_str(r, 2));
		db_rows_free(r);
		if (!params)
			continue; /* removed meanwhile */
		const char *used = "en";
		const char *t = smst_lookup(S, g[i].lang, f.tmpl, &used);
		HF_ASSERT(t); /* en.ini has every payment template: checked at load */
		struct hf_buf text;
		hf_buf_init(&text, SMST_RENDER_MAX);
		err = smst_render(t, params, &text);
		struct smst_size m;
		smst_measure(hf_buf_cstr(&text), &m);
		if (!err)
			json_object_set_new(by, g[i].lang,
					    json_pack("{s:I, s:s, s:s, s:s, s:I}", "count", (json_int_t)g[i].count, "text",
						      hf_buf_cstr(&text), "text_language", used, "coding",
						      m.gsm7 ? "gsm7" : "ucs2", "length", (json_int_t)m.units));
		hf_buf_release(&text);
		json_decref(params);
	}
	if (err) {
		json_decref(by);
		return err;
	}
	*out = json_pack("{s:s, s:s, s:I, s:I, s:o, s:o}", "cycle", cy.code, "template", f.tmpl, "recipients",
			 (json_int_t)recipients, "without_phone", (json_int_t)without, "by_language", by, "filter",
			 filter_json(&f));
	return HF_OK;
}

/* ---- send ----------------------------------------------------------------------------------------------- */

struct send_ctx {
	struct svc_call *c;
	const struct cycle *cy;
	const struct filter *f;
	int64_t notice_id;
	int64_t send_after_ms;
	/* the plan: payees with a phone, sorted by payment id; each batch takes a range of them */
	const int64_t *ids;
	size_t n_ids;
	/* the batch being written */
	size_t lo, hi; /* ids[lo..hi] */
	int inserted, skipped;
};

static bool id_in(const int64_t *a, size_t n, int64_t x)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (a[mid] == x)
			return true;
		if (a[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

struct id_list {
	int64_t *a;
	size_t n, cap, max;
};

static hf_err id_collect(void *vctx, struct db_rows *row)
{
	struct id_list *l = vctx;
	if (l->n == l->max)
		return HF_ETOOBIG;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 1024;
		l->a = hf_xrealloc(l->a, l->cap * sizeof(*l->a));
	}
	l->a[l->n++] = db_rows_i64(row, 0);
	return HF_OK;
}

/* Payments in [lo, hi] of this cycle that have this template coming or gone within 24 h of send_after (not
 * failed): a beneficiary does not get the same text twice in a day. Written to start from outbox.payment_id
 * (an index on outbox (payment_id, template) makes it a range read); without one, the join goes through
 * the cycle's notices of this template. */
#define RECENT_SQL                                                                                             \
	"SELECT DISTINCT o.payment_id FROM outbox o JOIN payment_notices n ON n.id = o.notice_id WHERE"          \
	" o.payment_id BETWEEN ? AND ? AND o.template = ? AND o.status <> 'failed' AND o.send_after >"             \
	" FROM_UNIXTIME(? / 1000) - INTERVAL 24 HOUR AND o.send_after < FROM_UNIXTIME(? / 1000) + INTERVAL 24 HOUR" \
	" AND n.cycle_id = ? AND n.template = ? AND n.id <> ? ORDER BY o.payment_id"

static hf_err recent_query(struct db *db, const struct send_ctx *s, int64_t lo, int64_t hi, struct id_list *out)
{
	struct db_val v[] = {DB_I64(lo),	       DB_I64(hi),	   db_str(s->f->tmpl),	   DB_I64(s->send_after_ms),
			     DB_I64(s->send_after_ms), DB_I64(s->cy->id), db_str(s->f->tmpl), DB_I64(s->notice_id)};
	return db_stream(db, RECENT_SQL, v, HF_ARRAY_LEN(v), id_collect, out);
}

#define OUTBOX_ROW                                                                                              \
	"(?, ?, ?, 'beneficiary', ?, (SELECT i.phone_bidx FROM payments p JOIN individuals i ON i.id ="         \
	" p.individual_id WHERE p.id = ?), ?, ?, ?, FROM_UNIXTIME(? / 1000), 'queued', 0, UTC_TIMESTAMP(3),"     \
	" UTC_TIMESTAMP(3))"
#define OUTBOX_ROW_NPARAMS 9

struct pending_row {
	int64_t id, payment_id;
	char lang[9];
	struct hf_buf sealed;
	char *params; /* owned */
};

static hf_err rows_insert(struct db *db, const struct send_ctx *s, struct pending_row *rows, size_t n)
{
	if (!n)
		return HF_OK;
	struct hf_buf sql;
	hf_buf_init(&sql, 64 * 1024);
	struct db_val *v = hf_xcalloc(n * OUTBOX_ROW_NPARAMS, sizeof(*v));
	hf_err err = hf_buf_append_str(&sql,
				       "INSERT INTO outbox (id, payment_id, notice_id, audience, phone_enc, phone_bidx, language,"
				       " template, params, send_after, status, attempts, created_at, updated_at) VALUES ");
	if (!err)
		err = placeholders(&sql, n, OUTBOX_ROW);
	for (size_t i = 0; i < n; i++) {
		struct db_val *w = v + i * OUTBOX_ROW_NPARAMS;
		w[0] = DB_I64(rows[i].id);
		w[1] = DB_I64(rows[i].payment_id);
		w[2] = DB_I64(s->notice_id);
		w[3] = DB_BLOB(rows[i].sealed.data, rows[i].sealed.len);
		w[4] = DB_I64(rows[i].payment_id);
		w[5] = db_str(rows[i].lang);
		w[6] = db_str(s->f->tmpl);
		w[7] = db_str(rows[i].params);
		w[8] = DB_I64(s->send_after_ms);
	}
	if (!err)
		err = db_exec(db, hf_buf_cstr(&sql), v, n * OUTBOX_ROW_NPARAMS, NULL);
	free(v);
	hf_buf_release(&sql);
	return err;
}

static void rows_release(struct pending_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		hf_buf_release(&rows[i].sealed);
		free(rows[i].params);
	}
}

/* A fresh id not yet used by this batch: db_new_id draws 20 random bits per millisecond, and a batch draws
 * a thousand in a few milliseconds. */
static int64_t fresh_id(const struct pending_row *rows, size_t n, const int64_t *used, size_t n_used)
{
	for (;;) {
		int64_t id = db_new_id();
		bool taken = false;
		for (size_t i = 0; i < n && !taken; i++)
			taken = rows[i].id == id;
		for (size_t i = 0; i < n_used && !taken; i++)
			taken = used[i] == id;
		if (!taken)
			return id;
	}
}

/* One batch of payees in one transaction; repeatable (db_tx may run it again after a deadlock). */
static hf_err batch_body(struct db *db, void *vctx)
{
	struct send_ctx *s = vctx;
	s->inserted = 0;
	s->skipped = 0;
	int64_t lo = s->lo ? s->ids[s->lo - 1] + 1 : 0, hi = s->ids[s->hi];
	/* The cycle's row serialises concurrent sends to it, so the 24-hour check below sees the other's rows. */
	struct db_val cv[] = {DB_I64(s->cy->id)};
	struct db_rows *r = NULL;
	hf_err err = db_query(db, "SELECT status FROM payment_cycles WHERE id = ? FOR UPDATE", cv, 1, &r);
	if (err)
		return err;
	bool approved = db_rows_next(r) && strcmp(db_rows_str(r, 0), "approved") == 0;
	db_rows_free(r);
	if (!approved)
		return HF_ECONFLICT; /* closed or cancelled meanwhile: the caller says so */
	struct id_list recent = {.max = NOTICE_BATCH * 4};
	err = recent_query(db, s, lo, hi, &recent);
	struct db_val v[FILTER_NPARAMS + 2];
	filter_vals(s->f, s->cy->id, v);
	v[FILTER_NPARAMS] = DB_I64(lo);
	v[FILTER_NPARAMS + 1] = DB_I64(hi);
	if (!err)
		err = db_query(db,
			       "SELECT p.id, p.amount, p.currency, COALESCE(p.pay_point, ''), i.id, i.language, i.phone_enc"
			       FILTER_FROM " AND p.id BETWEEN ? AND ? AND i.phone_enc IS NOT NULL ORDER BY p.id LIMIT 4000",
			       /* NOTICE_RANGE_ROWS */
			       v, HF_ARRAY_LEN(v), &r);
	if (err) {
		free(recent.a);
		return err;
	}
	struct pending_row rows[NOTICE_INSERT_ROWS];
	size_t nrows = 0;
	int64_t *used = hf_xcalloc(NOTICE_RANGE_ROWS, sizeof(*used));
	size_t n_used = 0;
	struct hf_buf phone;
	hf_buf_init(&phone, 256);
	while (!err && db_rows_next(r)) {
		int64_t pid = db_rows_i64(r, 0);
		if (id_in(recent.a, recent.n, pid)) {
			s->skipped++;
			continue;
		}
		struct pending_row *row = &rows[nrows];
		memset(row, 0, sizeof(*row));
		row->id = fresh_id(rows, nrows, used, n_used);
		row->payment_id = pid;
		hf_strlcpy(row->lang, db_rows_str(r, 5), sizeof(row->lang));
		hf_buf_init(&row->sealed, 512);
		nrows++;
		json_t *params = payment_params(s->f->tmpl, s->cy, db_rows_i64(r, 1), db_rows_str(r, 2),
						db_rows_str(r, 3));
		row->params = json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS);
		json_decref(params);
		size_t len = 0;
		const void *sealed = db_rows_blob(r, 6, &len);
		hf_buf_reset(&phone);
		err = person_open_field(g_app.keys, db_rows_i64(r, 4), "phone", sealed, len, &phone);
		if (!err)
			err = hf_buf_append(&phone, "", 1);
		if (!err)
			err = outbox_seal_phone(row->id, phone.data, &row->sealed);
		if (err)
			hf_log(HF_LOG_ERROR, "core.notices", "msg=\"cannot reseal a payee's phone\" payment=%lld err=%s",
			       (long long)pid, hf_err_name(err));
		if (!err && nrows == NOTICE_INSERT_ROWS) {
			err = rows_insert(db, s, rows, nrows);
			for (size_t i = 0; i < nrows; i++)
				used[n_used++] = rows[i].id;
			s->inserted += (int)nrows;
			rows_release(rows, nrows);
			nrows = 0;
		}
	}
	db_rows_free(r);
	wipe(&phone);
	if (!err) {
		err = rows_insert(db, s, rows, nrows);
		s->inserted += (int)nrows;
	}
	rows_release(rows, nrows);
	free(used);
	free(recent.a);
	if (!err && s->inserted) {
		struct db_val w[] = {DB_I64(s->inserted), DB_I64(s->notice_id)};
		err = db_exec(db, "UPDATE payment_notices SET recipients = recipients + ? WHERE id = ?", w, 2, NULL);
	}
	return err;
}

struct start_tx {
	struct send_ctx *s;
	int planned, planned_skip;
};

/* The notice row and its audit entry, before any message is queued: the entry covers what follows. */
static hf_err start_body(struct db *db, void *vctx)
{
	struct start_tx *t = vctx;
	struct send_ctx *s = t->s;
	json_t *filter = filter_json(s->f);
	char *ftext = json_dumps(filter, JSON_COMPACT | JSON_SORT_KEYS);
	struct db_val v[] = {DB_I64(s->notice_id), DB_I64(s->cy->id), db_str(s->f->tmpl), db_str(ftext),
			     DB_I64(s->send_after_ms), db_str(s->c->p->actor)};
	hf_err err = db_exec(db,
			     "INSERT INTO payment_notices (id, cycle_id, template, filter, recipients, send_after, created_at,"
			     " created_by) VALUES (?, ?, ?, ?, 0, FROM_UNIXTIME(? / 1000), UTC_TIMESTAMP(3), ?)",
			     v, HF_ARRAY_LEN(v), NULL);
	free(ftext);
	if (!err) {
		char sa[24], nid[24];
		iso_utc(s->send_after_ms, sa, sizeof(sa));
		snprintf(nid, sizeof(nid), "%lld", (long long)s->notice_id);
		json_t *d = json_pack("{s:s, s:s, s:i, s:i, s:s, s:O}", "notice", nid, "template", s->f->tmpl,
				      "recipients", t->planned, "skipped_recent", t->planned_skip, "send_after", sa,
				      "filter", filter);
		struct audit_event ev = {"notice.send", "cycle", s->cy->code, "ok", NULL, NULL, d};
		err = audit_append(db, &s->c->p->audit, &ev);
		json_decref(d);
	}
	json_decref(filter);
	return err;
}

static hf_err send_at_parse(struct svc_call *c, const char *text, int64_t now_ms, int64_t *out)
{
	*out = now_ms;
	if (!text)
		return HF_OK;
	struct tm tm = {0};
	const char *end = strptime(text, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (!end || *end) {
		hf_ferrs_add(c->fe, "send_at", "format", "YYYY-MM-DDTHH:MM:SSZ (UTC)");
		return HF_EINVAL;
	}
	int64_t ms = (int64_t)timegm(&tm) * 1000;
	if (ms <= now_ms)
		hf_ferrs_add(c->fe, "send_at", "past", "must be in the future (leave it out to send now)");
	else if (ms > now_ms + (int64_t)NOTICE_MAX_AHEAD_S * 1000)
		hf_ferrs_add(c->fe, "send_at", "too_far", "at most 30 days ahead");
	if (hf_ferrs_any(c->fe))
		return HF_EINVAL;
	*out = ms;
	return HF_OK;
}

hf_err notices_send(struct svc_call *c, const char *cycle_code, json_t *body, json_t **out)
{
	struct filter f;
	const char *send_at = NULL;
	filter_read(c, body, true, &f, &send_at);
	int64_t now_ms = hf_now_ms(), send_after_ms = now_ms;
	if (!hf_ferrs_any(c->fe))
		(void)send_at_parse(c, send_at, now_ms, &send_after_ms);
	if (hf_ferrs_any(c->fe))
		return HF_EINVAL;
	if (!S) {
		hf_log(HF_LOG_ERROR, "core.notices", "msg=\"sms templates not loaded (notices_init not called)\"");
		return HF_EINTERNAL;
	}
	struct cycle cy;
	hf_err err = cycle_find(c, cycle_code, true, &cy);
	if (err)
		return err;
	struct send_ctx s = {.c = c, .cy = &cy, .f = &f, .notice_id = db_new_id(), .send_after_ms = send_after_ms};

	/* The plan: every payee with a phone, and who of them had this text within 24 h. */
	struct db_val v[FILTER_NPARAMS];
	filter_vals(&f, cy.id, v);
	struct id_list ids = {.max = NOTICE_MAX_RECIPIENTS};
	err = db_stream(c->db, "SELECT p.id" FILTER_FROM " AND i.phone_enc IS NOT NULL ORDER BY p.id", v, FILTER_NPARAMS,
			id_collect, &ids);
	struct id_list recent = {.max = NOTICE_MAX_RECIPIENTS};
	if (!err && ids.n)
		err = recent_query(c->db, &s, ids.a[0], ids.a[ids.n - 1], &recent);
	if (err == HF_ETOOBIG)
		svc_say(c, "More than %d payees match: send to one location or pay point at a time.", NOTICE_MAX_RECIPIENTS);
	if (err)
		goto out;
	s.ids = ids.a;
	s.n_ids = ids.n;
	struct start_tx st = {&s, 0, 0};
	for (size_t i = 0; i < ids.n; i++) {
		if (id_in(recent.a, recent.n, ids.a[i]))
			st.planned_skip++;
		else
			st.planned++;
	}
	err = db_tx(c->db, start_body, &st);
	if (err)
		goto out;

	int recipients = 0, skipped = 0;
	for (size_t lo = 0; lo < ids.n && !err; lo += NOTICE_BATCH) {
		s.lo = lo;
		s.hi = lo + NOTICE_BATCH < ids.n ? lo + NOTICE_BATCH - 1 : ids.n - 1;
		err = db_tx(c->db, batch_body, &s);
		/* An id drawn twice (another writer in the same millisecond): the batch is drawn again. */
		for (int k = 0; k < 3 && err == HF_ECONFLICT && strcmp(db_conflict_key(c->db), "PRIMARY") == 0; k++)
			err = db_tx(c->db, batch_body, &s);
		if (!err) {
			recipients += s.inserted;
			skipped += s.skipped;
		}
	}
	if (err) {
		hf_log(HF_LOG_ERROR, "core.notices", "msg=\"notice stopped part way\" notice=%lld queued=%d err=%s",
		       (long long)s.notice_id, recipients, hf_err_name(err));
		if (err == HF_ECONFLICT)
			svc_say(c, "The cycle is no longer approved: the notice stopped after %d recipients.", recipients);
		goto out;
	}
	char id[24], sa[24];
	snprintf(id, sizeof(id), "%lld", (long long)s.notice_id);
	iso_utc(send_after_ms, sa, sizeof(sa));
	*out = json_pack("{s:s, s:s, s:s, s:i, s:i, s:s, s:b}", "id", id, "cycle", cy.code, "template", f.tmpl,
			 "recipients", recipients, "skipped_recent", skipped, "send_after", sa, "scheduled",
			 send_at != NULL);
out:
	free(ids.a);
	free(recent.a);
	return err;
}

/* ---- list ----------------------------------------------------------------------------------------------- */

hf_err notices_list(struct svc_call *c, const char *cycle_code, json_t **out)
{
	struct cycle cy;
	hf_err err = cycle_find(c, cycle_code, false, &cy);
	if (err)
		return err;
	struct db_val v[] = {DB_I64(cy.id)};
	struct db_rows *r = NULL;
	err = db_query(c->db,
		       "SELECT id, template, filter, recipients, DATE_FORMAT(send_after, " DB_TS_FMT "),"
		       " DATE_FORMAT(created_at, " DB_TS_FMT "), created_by FROM payment_notices WHERE cycle_id = ?"
		       " ORDER BY id DESC LIMIT 200", /* NOTICE_LIST_MAX */
		       v, 1, &r);
	if (err)
		return err;
	json_t *items = json_array();
	while (db_rows_next(r)) {
		json_t *filter = json_loads(db_rows_str(r, 2), 0, NULL);
		json_array_append_new(
			items, json_pack("{s:s, s:s, s:o, s:I, s:s, s:s, s:s, s:{s:i, s:i, s:i, s:i, s:i}}", "id",
					 db_rows_str(r, 0), "template", db_rows_str(r, 1), "filter",
					 filter ? filter : json_object(), "recipients", (json_int_t)db_rows_i64(r, 3),
					 "send_after", db_rows_str(r, 4), "created_at", db_rows_str(r, 5), "created_by",
					 db_rows_str(r, 6), "delivery", "queued", 0, "sending", 0, "sent", 0, "delivered", 0,
					 "failed", 0));
	}
	db_rows_free(r);
	err = db_query(c->db,
		       "SELECT o.notice_id, o.status, COUNT(*) FROM payment_notices n JOIN outbox o ON o.notice_id = n.id"
		       " WHERE n.cycle_id = ? GROUP BY o.notice_id, o.status",
		       v, 1, &r);
	if (err) {
		json_decref(items);
		return err;
	}
	while (db_rows_next(r)) {
		size_t i;
		json_t *it;
		json_array_foreach(items, i, it) {
			if (strcmp(json_string_value(json_object_get(it, "id")), db_rows_str(r, 0)) == 0)
				json_object_set_new(json_object_get(it, "delivery"), db_rows_str(r, 1),
						    json_integer(db_rows_i64(r, 2)));
		}
	}
	db_rows_free(r);
	*out = json_pack("{s:s, s:o}", "cycle", cy.code, "items", items);
	return HF_OK;
}

/* ---- the outbox, for the gateway ------------------------------------------------------------------------ */

struct claim_tx {
	int limit;
	bool urgent;
	json_t *items;
	int failed;
};

/* Rows claimed again (stale 'sending') first, then the due 'queued' ones, oldest first. */
static hf_err claim_select(struct db *db, bool stale, bool urgent, int limit, struct db_rows **r)
{
	struct db_val v[] = {DB_I64(urgent), DB_I64(limit)};
	/* Stale: claimed by a gateway that never reported (crashed), or handed to Kannel but not acknowledged by
	 * the SMSC within a minute (lost in a Kannel crash): offered again, the latter once. Urgent: only what a
	 * person is waiting for right now (a PIN reset code), for a gateway in its quiet hours. */
	return db_query(db,
			stale ? "SELECT id, phone_enc, language, template, params, attempts FROM outbox WHERE ((status ="
				" 'sending' AND updated_at < UTC_TIMESTAMP(3) - INTERVAL 10 MINUTE) OR (status = 'sent' AND"
				" accepted_at IS NULL AND delivered_at IS NULL AND resends = 0 AND updated_at <"
				" UTC_TIMESTAMP(3) - INTERVAL 60 SECOND)) AND (? = 0 OR template = 'pin_reset_code') ORDER BY"
				" created_at LIMIT ? FOR UPDATE SKIP LOCKED"
			      : "SELECT id, phone_enc, language, template, params, attempts FROM outbox WHERE status ="
				" 'queued' AND (send_after IS NULL OR send_after <= UTC_TIMESTAMP(3)) AND (template ="
				" 'sms_stopped' OR phone_bidx IS NULL OR NOT EXISTS (SELECT 1 FROM phone_optouts x WHERE"
				" x.phone_bidx = outbox.phone_bidx)) AND (? = 0 OR template = 'pin_reset_code') ORDER BY"
				" created_at LIMIT ? FOR UPDATE SKIP LOCKED",
			v, 2, r);
}

static hf_err ids_update(struct db *db, const char *head, const int64_t *ids, size_t n)
{
	if (!n)
		return HF_OK;
	struct hf_buf sql;
	hf_buf_init(&sql, 8192);
	struct db_val *v = hf_xcalloc(n, sizeof(*v));
	for (size_t i = 0; i < n; i++)
		v[i] = DB_I64(ids[i]);
	hf_err err = hf_buf_append_str(&sql, head);
	if (!err)
		err = placeholders(&sql, n, "?");
	if (!err)
		err = hf_buf_append_str(&sql, ")");
	if (!err)
		err = db_exec(db, hf_buf_cstr(&sql), v, n, NULL);
	free(v);
	hf_buf_release(&sql);
	return err;
}

/* One claimed row into the answer; false when it cannot be sent (no text, phone not readable). */
static bool claim_row(struct db_rows *r, json_t *items)
{
	int64_t id = db_rows_i64(r, 0);
	const char *lang = db_rows_str(r, 2), *tmpl = db_rows_str(r, 3);
	const char *used = "en";
	const char *t = smst_lookup(S, lang, tmpl, &used);
	if (!t) {
		hf_log(HF_LOG_ERROR, "core.notices", "msg=\"no text for an outbox template; message failed\" outbox=%lld"
		       " template=%s", (long long)id, tmpl);
		return false;
	}
	json_t *params = json_loads(db_rows_str(r, 4), 0, NULL);
	if (!json_is_object(params)) {
		json_decref(params);
		params = json_object();
	}
	struct hf_buf text, phone;
	hf_buf_init(&text, SMST_RENDER_MAX);
	hf_buf_init(&phone, 256);
	size_t len = 0;
	const void *sealed = db_rows_blob(r, 1, &len);
	hf_err err = outbox_open_phone(id, sealed, len, &phone);
	if (err)
		hf_log(HF_LOG_ERROR, "core.notices", "msg=\"cannot open the phone of an outbox row; message failed\""
		       " outbox=%lld err=%s", (long long)id, hf_err_name(err));
	if (!err)
		err = smst_render(t, params, &text);
	if (!err) {
		struct smst_size m;
		smst_measure(hf_buf_cstr(&text), &m);
		char sid[24];
		snprintf(sid, sizeof(sid), "%lld", (long long)id);
		json_array_append_new(items, json_pack("{s:s, s:s, s:s, s:s, s:s, s:O, s:s, s:s, s:I}", "id", sid,
						       "phone", phone.data, "language", lang, "text_language", used,
						       "template", tmpl, "params", params, "text", hf_buf_cstr(&text),
						       "coding", m.gsm7 ? "gsm7" : "ucs2", "attempt",
						       (json_int_t)db_rows_i64(r, 5) + 1));
	}
	json_decref(params);
	hf_buf_release(&text);
	wipe(&phone);
	return err == HF_OK;
}

static hf_err claim_body(struct db *db, void *vctx)
{
	struct claim_tx *t = vctx;
	json_array_clear(t->items);
	t->failed = 0;
	int64_t *take = hf_xcalloc((size_t)t->limit, sizeof(*take));
	int64_t *drop = hf_xcalloc((size_t)t->limit, sizeof(*drop));
	size_t ntake = 0, ndrop = 0;
	hf_err err = HF_OK;
	for (int pass = 0; pass < 2 && !err && (int)(ntake + ndrop) < t->limit; pass++) {
		struct db_rows *r = NULL;
		err = claim_select(db, pass == 0, t->urgent, t->limit - (int)(ntake + ndrop), &r);
		while (!err && db_rows_next(r)) {
			int64_t id = db_rows_i64(r, 0);
			/* A message that keeps its gateway from reporting (it crashes on it) stops coming back. */
			if (db_rows_i64(r, 5) >= OUTBOX_MAX_ATTEMPTS) {
				hf_log(HF_LOG_WARN, "core.notices", "msg=\"outbox row claimed too often without a report;"
				       " failed\" outbox=%lld attempts=%lld", (long long)id, (long long)db_rows_i64(r, 5));
				drop[ndrop++] = id;
			} else if (claim_row(r, t->items)) {
				take[ntake++] = id;
			} else {
				drop[ndrop++] = id;
			}
		}
		db_rows_free(r);
	}
	if (!err)
		err = ids_update(db,
				 /* left to right: resends counts from the status before */
				 "UPDATE outbox SET resends = resends + (status = 'sent'), status = 'sending', attempts ="
				 " attempts + 1, updated_at = UTC_TIMESTAMP(3) WHERE id IN (",
				 take, ntake);
	if (!err)
		err = ids_update(db, "UPDATE outbox SET status = 'failed', updated_at = UTC_TIMESTAMP(3) WHERE id IN (",
				 drop, ndrop);
	t->failed = (int)ndrop;
	free(take);
	free(drop);
	return err;
}

hf_err notices_outbox_claim(struct svc_call *c, int limit, bool urgent, json_t **out)
{
	if (limit < 1 || limit > OUTBOX_CLAIM_MAX) {
		hf_ferrs_add(c->fe, "limit", "out_of_range", "must be 1 to %d", OUTBOX_CLAIM_MAX);
		return HF_EINVAL;
	}
	if (!S) {
		hf_log(HF_LOG_ERROR, "core.notices", "msg=\"sms templates not loaded (notices_init not called)\"");
		return HF_EINTERNAL;
	}
	struct claim_tx t = {.limit = limit, .urgent = urgent, .items = json_array()};
	hf_err err = db_tx(c->db, claim_body, &t);
	if (err) {
		json_decref(t.items);
		return err;
	}
	*out = json_pack("{s:o, s:i}", "items", t.items, "failed", t.failed);
	return HF_OK;
}
