/* payments.c - payment cycles, payrolls, the payments' lifecycle, kiosk collection (see payments.h). */
#include "hf_base.h"
#include "payments.h"
#include "alerts.h"
#include "app.h"
#include "audit.h"
#include "biometric.h"
#include "hf_crypto.h"
#include "hf_log.h"
#include "hf_money.h"
#include "kiosk.h"
#include "ledger.h"
#include "outbox.h"
#include "validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_TOPUPS 8
#define MAX_PAY_POINTS 200
#define MONEY_MAX 100000000000LL /* 10^11 minor units per payment: far above any transfer */
#define PAYROLL_BATCH 25000

static const char *const CHANNELS[] = {"mobile_money", "g2p", "kiosk", NULL};
static const char *const CYCLE_STATUSES[] = {"draft", "generated", "approval_requested", "approved", "closed",
					     "cancelled", NULL};
static const char *const PAY_STATUSES[] = {"scheduled", "approved", "sending", "pending", "paid", "failed",
					   "reversed", "available", "collected", "expired", "cancelled", NULL};

/* ------------------------------------------------------------------ entitlement rules */

enum rule_kind { RULE_FLAT, RULE_PER_MEMBER };
enum topup_cat { TOP_DISABILITY, TOP_AGE_70, TOP_AGE_80, TOP_CHILD_UNDER_5, TOP_COUNT_ };
static const char *const TOPUP_NAMES[] = {"disability", "age_70_plus", "age_80_plus", "child_under_5", NULL};

struct rule {
	enum rule_kind kind;
	int64_t amount, cap;
	int64_t topup[TOP_COUNT_]; /* 0 = none */
};

/* {"kind": "flat"|"per_member", "amount": N, "cap": N (per_member), "top_ups": [{"category", "amount"}]} */
static void rule_parse(json_t *j, struct hf_ferrs *fe, struct rule *r)
{
	memset(r, 0, sizeof(*r));
	if (!json_is_object(j)) {
		hf_ferrs_add(fe, "rule", "required", "an object: {\"kind\": \"flat\", \"amount\": 400000}");
		return;
	}
	static const char *const allowed[] = {"kind", "amount", "cap", "top_ups", NULL};
	hf_json_only_fields(j, allowed, "rule", fe);
	static const char *const kinds[] = {"flat", "per_member", NULL};
	const char *kind = NULL;
	if (hf_json_get_enum(j, "rule", "kind", true, kinds, fe, &kind))
		r->kind = strcmp(kind, "flat") == 0 ? RULE_FLAT : RULE_PER_MEMBER;
	(void)hf_json_get_int(j, "rule", "amount", true, 1, MONEY_MAX, fe, &r->amount);
	if (kind && r->kind == RULE_PER_MEMBER) {
		if (hf_json_get_int(j, "rule", "cap", true, 1, MONEY_MAX, fe, &r->cap) && r->amount && r->cap < r->amount)
			hf_ferrs_add(fe, "rule.cap", "out_of_range", "at least one member's amount");
	} else if (json_object_get(j, "cap")) {
		hf_ferrs_add(fe, "rule.cap", "not_allowed", "only a per_member rule has a cap");
	}
	json_t *t = json_object_get(j, "top_ups");
	if (!t)
		return;
	if (!json_is_array(t) || json_array_size(t) > MAX_TOPUPS) {
		hf_ferrs_add(fe, "rule.top_ups", "type", "a list of at most %d {category, amount}", MAX_TOPUPS);
		return;
	}
	size_t i;
	json_t *x;
	json_array_foreach(t, i, x) {
		char pre[48];
		snprintf(pre, sizeof(pre), "rule.top_ups[%zu]", i);
		const char *cat = NULL;
		int64_t amt = 0;
		if (!json_is_object(x)) {
			hf_ferrs_add(fe, "rule.top_ups", "type", "each top-up is {category, amount}");
			continue;
		}
		if (!hf_json_get_enum(x, pre, "category", true, TOPUP_NAMES, fe, &cat) |
		    !hf_json_get_int(x, pre, "amount", true, 1, MONEY_MAX, fe, &amt))
			continue;
		for (int c = 0; c < TOP_COUNT_; c++)
			if (strcmp(cat, TOPUP_NAMES[c]) == 0) {
				if (r->topup[c])
					hf_ferrs_add(fe, "rule.top_ups", "duplicate", "%s is listed twice", cat);
				r->topup[c] = amt;
			}
	}
}

/* ------------------------------------------------------------------ cycles */

struct cycle {
	int64_t id, programme_id, payroll_count, payroll_total;
	char code[41], programme[33], currency[4], status[24], channel[16], provider[33];
	char cutoff[11], pay_from[11], pay_until[11];
	char generated_by[73], requested_by[73], approved_by[73];
	bool household; /* the programme pays households (the head) */
	json_t *rule, *pay_points;
};

#define CYCLE_COLS                                                                                             \
	"c.id, c.code, c.programme_id, c.programme_code, c.currency, c.rule, c.cutoff_date, c.pay_from,"        \
	" c.pay_until, c.channel, COALESCE(c.provider, ''), c.pay_points, c.status, c.payroll_count,"           \
	" c.payroll_total, COALESCE(c.generated_by, ''), COALESCE(c.approval_requested_by, ''),"                \
	" COALESCE(c.approved_by, ''), p.target = 'household', DATE_FORMAT(c.created_at, " DB_TS_FMT "),"       \
	" c.created_by, IF(c.approved_at IS NULL, NULL, DATE_FORMAT(c.approved_at, " DB_TS_FMT ")), c.version"
#define CYCLE_FROM " FROM payment_cycles c JOIN programmes p ON p.id = c.programme_id"

static void cycle_read(struct db_rows *r, struct cycle *k)
{
	memset(k, 0, sizeof(*k));
	k->id = db_rows_i64(r, 0);
	hf_strlcpy(k->code, db_rows_str(r, 1), sizeof(k->code));
	k->programme_id = db_rows_i64(r, 2);
	hf_strlcpy(k->programme, db_rows_str(r, 3), sizeof(k->programme));
	hf_strlcpy(k->currency, db_rows_str(r, 4), sizeof(k->currency));
	k->rule = json_loads(db_rows_str(r, 5), 0, NULL);
	hf_strlcpy(k->cutoff, db_rows_str(r, 6), sizeof(k->cutoff));
	hf_strlcpy(k->pay_from, db_rows_str(r, 7), sizeof(k->pay_from));
	hf_strlcpy(k->pay_until, db_rows_str(r, 8), sizeof(k->pay_until));
	hf_strlcpy(k->channel, db_rows_str(r, 9), sizeof(k->channel));
	hf_strlcpy(k->provider, db_rows_str(r, 10), sizeof(k->provider));
	k->pay_points = db_rows_null(r, 11) ? NULL : json_loads(db_rows_str(r, 11), 0, NULL);
	hf_strlcpy(k->status, db_rows_str(r, 12), sizeof(k->status));
	k->payroll_count = db_rows_i64(r, 13);
	k->payroll_total = db_rows_i64(r, 14);
	hf_strlcpy(k->generated_by, db_rows_str(r, 15), sizeof(k->generated_by));
	hf_strlcpy(k->requested_by, db_rows_str(r, 16), sizeof(k->requested_by));
	hf_strlcpy(k->approved_by, db_rows_str(r, 17), sizeof(k->approved_by));
	k->household = db_rows_i64(r, 18) != 0;
}

static void cycle_release(struct cycle *k)
{
	json_decref(k->rule);
	json_decref(k->pay_points);
	k->rule = k->pay_points = NULL;
}

static json_t *cycle_json(struct db_rows *r, const struct cycle *k)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:O, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:s, s:I}", "code", k->code,
			      "programme", k->programme, "currency", k->currency, "rule", k->rule ? k->rule : json_null(),
			      "cutoff_date", k->cutoff, "pay_from", k->pay_from, "pay_until", k->pay_until, "channel",
			      k->channel, "status", k->status, "payroll_count", (json_int_t)k->payroll_count,
			      "payroll_total", (json_int_t)k->payroll_total, "created_at", db_rows_str(r, 19),
			      "created_by", db_rows_str(r, 20), "version", (json_int_t)db_rows_i64(r, 22));
	if (k->provider[0])
		json_object_set_new(o, "provider", json_string(k->provider));
	if (k->pay_points)
		json_object_set(o, "pay_points", k->pay_points);
	if (k->generated_by[0])
		json_object_set_new(o, "generated_by", json_string(k->generated_by));
	if (k->requested_by[0])
		json_object_set_new(o, "approval_requested_by", json_string(k->requested_by));
	if (k->approved_by[0])
		json_object_set_new(o, "approved", json_pack("{s:s, s:s}", "by", k->approved_by, "at", db_rows_str(r, 21)));
	return o;
}

static bool code_ok(const char *s)
{
	size_t n = strlen(s);
	if (n < 3 || n > 40)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

/* Loads a cycle by code; lock takes its row lock (every state change of a cycle holds it). */
static hf_err cycle_load(struct svc_call *c, const char *code, bool lock, struct cycle *k, json_t **as_json)
{
	if (!code_ok(code)) {
		snprintf(c->msg, c->msg_cap, "No payment cycle %s.", code_ok(code) ? code : "with that code");
		return HF_ENOTFOUND;
	}
	struct db_val v[] = {db_str(code)};
	struct db_rows *r = NULL;
	hf_err err = db_query(c->db,
			      lock ? "SELECT " CYCLE_COLS CYCLE_FROM " WHERE c.code = ? FOR UPDATE"
				   : "SELECT " CYCLE_COLS CYCLE_FROM " WHERE c.code = ?",
			      v, 1, &r);
	if (err)
		return err;
	if (!db_rows_next(r)) {
		db_rows_free(r);
		snprintf(c->msg, c->msg_cap, "No payment cycle %s.", code);
		return HF_ENOTFOUND;
	}
	cycle_read(r, k);
	if (as_json)
		*as_json = cycle_json(r, k);
	db_rows_free(r);
	return HF_OK;
}

static bool date_ok(const char *s)
{
	int y, m, d;
	return s && strlen(s) == 10 && validate_date_format(s, &y, &m, &d);
}

static hf_err cycle_audit(struct svc_call *c, const char *action, const struct cycle *k, const char *before,
			  const char *after, json_t *detail)
{
	json_t *b = before ? json_pack("{s:s}", "status", before) : NULL;
	json_t *a = after ? json_pack("{s:s}", "status", after) : NULL;
	struct audit_event ev = {action, "cycle", k->code, "ok", b, a, detail};
	hf_err err = audit_append(c->db, &c->p->audit, &ev);
	json_decref(b);
	json_decref(a);
	return err;
}

struct create_tx {
	struct svc_call *c;
	json_t *body;
	const char *code, *programme, *channel, *provider, *cutoff, *from, *until;
	char *rule, *pay_points;
};

static hf_err create_body(struct db *db, void *vctx)
{
	struct create_tx *t = vctx;
	struct db_val pv[] = {db_str(t->programme)};
	struct db_rows *r = NULL;
	hf_err err = db_query(db, "SELECT id, currency, active FROM programmes WHERE code = ?", pv, 1, &r);
	if (err)
		return err;
	if (!db_rows_next(r) || !db_rows_i64(r, 2)) {
		db_rows_free(r);
		hf_ferrs_add(t->c->fe, "programme", "unknown", "no active programme with this code");
		return HF_EINVAL;
	}
	int64_t pid = db_rows_i64(r, 0);
	char cur[4];
	hf_strlcpy(cur, db_rows_str(r, 1), sizeof(cur));
	db_rows_free(r);
	const char *want = json_string_value(json_object_get(t->body, "currency"));
	if (want && strcmp(want, cur) != 0) {
		hf_ferrs_add(t->c->fe, "currency", "mismatch", "the programme pays in %s", cur);
		return HF_EINVAL;
	}
	struct db_val v[] = {DB_I64(db_new_id()), db_str(t->code),	 DB_I64(pid),	     db_str(t->programme),
			     db_str(cur),	  db_str(t->rule),	 db_str(t->cutoff),  db_str(t->from),
			     db_str(t->until),	  db_str(t->channel),	 db_str(t->provider), db_str(t->pay_points),
			     db_str(t->c->p->actor), db_str(t->c->p->actor)};
	err = db_exec(db,
		      "INSERT INTO payment_cycles (id, code, programme_id, programme_code, currency, rule, cutoff_date,"
		      " pay_from, pay_until, channel, provider, pay_points, status, created_at, created_by, updated_at,"
		      " updated_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'draft', UTC_TIMESTAMP(3), ?,"
		      " UTC_TIMESTAMP(3), ?)",
		      v, HF_ARRAY_LEN(v), NULL);
	if (err == HF_ECONFLICT && strcmp(db_conflict_key(db), "uq_cycles_code") == 0) {
		snprintf(t->c->msg, t->c->msg_cap, "A cycle %s exists already.", t->code);
		return HF_ECONFLICT;
	}
	if (err)
		return err;
	struct cycle k = {0};
	hf_strlcpy(k.code, t->code, sizeof(k.code));
	json_t *d = json_pack("{s:s, s:s}", "programme", t->programme, "channel", t->channel);
	err = cycle_audit(t->c, "cycle.create", &k, NULL, "draft", d);
	json_decref(d);
	return err;
}

hf_err cycles_create(struct svc_call *c, json_t *body, json_t **out)
{
	static const char *const allowed[] = {"code", "programme", "currency", "rule", "cutoff_date", "pay_from",
					      "pay_until", "channel", "provider", "pay_points", NULL};
	hf_json_only_fields(body, allowed, "", c->fe);
	struct create_tx t = {.c = c, .body = body};
	if (hf_json_get_str(body, "", "code", true, 3, 40, c->fe, &t.code) && !code_ok(t.code))
		hf_ferrs_add(c->fe, "code", "format", "3-40 capital letters, digits and '-', e.g. OPCT-2026-11");
	(void)hf_json_get_str(body, "", "programme", true, 1, 32, c->fe, &t.programme);
	const char *cur = NULL;
	if (hf_json_get_str(body, "", "currency", false, 3, 3, c->fe, &cur))
		(void)cur;
	struct rule rule;
	rule_parse(json_object_get(body, "rule"), c->fe, &rule);
	static const char *const dates[] = {"cutoff_date", "pay_from", "pay_until"};
	const char **dv[] = {&t.cutoff, &t.from, &t.until};
	for (size_t i = 0; i < 3; i++)
		if (hf_json_get_str(body, "", dates[i], true, 10, 10, c->fe, dv[i]) && !date_ok(*dv[i]))
			hf_ferrs_add(c->fe, dates[i], "format", "a date YYYY-MM-DD");
	if (t.from && t.until && date_ok(t.from) && date_ok(t.until) && strcmp(t.from, t.until) > 0)
		hf_ferrs_add(c->fe, "pay_until", "out_of_range", "on or after pay_from");
	if (t.cutoff && t.from && date_ok(t.cutoff) && date_ok(t.from) && strcmp(t.cutoff, t.from) > 0)
		hf_ferrs_add(c->fe, "cutoff_date", "out_of_range", "on or before pay_from");
	(void)hf_json_get_enum(body, "", "channel", true, CHANNELS, c->fe, &t.channel);
	(void)hf_json_get_str(body, "", "provider", false, 1, 32, c->fe, &t.provider);
	if (t.channel && strcmp(t.channel, "kiosk") != 0) {
		const char *want = hf_config_str(g_app.cfg, strcmp(t.channel, "g2p") == 0 ? "providers.g2p_name"
											    : "providers.b2c_name");
		if (!t.provider)
			t.provider = want && want[0] ? want : NULL;
		if (!t.provider || !want || strcmp(t.provider, want) != 0)
			hf_ferrs_add(c->fe, "provider", "unknown", "the %s provider configured here is %s", t.channel,
				     want && want[0] ? want : "none (providers.* in the config)");
	} else if (t.channel && t.provider) {
		hf_ferrs_add(c->fe, "provider", "not_allowed", "kiosk payments need no provider");
	}
	json_t *pp = json_object_get(body, "pay_points");
	if (pp && (!json_is_object(pp) || json_object_size(pp) == 0 || json_object_size(pp) > MAX_PAY_POINTS)) {
		hf_ferrs_add(c->fe, "pay_points", "type", "an object {\"Region/District\": \"PAY-POINT\"}, 1 to %d entries",
			     MAX_PAY_POINTS);
	} else if (pp) {
		const char *loc;
		json_t *x;
		json_object_foreach(pp, loc, x) {
			const char *s = json_string_value(x);
			if (strlen(loc) < 1 || strlen(loc) > 320 || !hf_utf8_valid_text(loc, strlen(loc)) || !s ||
			    strlen(s) < 2 || strlen(s) > 64 || !kiosk_pay_point_ok(s))
				hf_ferrs_add(c->fe, "pay_points", "format",
					     "location paths to pay point names (2-64 letters, digits, spaces, . _ / -)");
		}
	}
	if (t.channel && strcmp(t.channel, "kiosk") == 0 && !pp)
		hf_ferrs_add(c->fe, "pay_points", "required", "kiosk payments need the pay point of each location");
	if (hf_ferrs_any(c->fe))
		return HF_EINVAL;
	t.rule = json_dumps(json_object_get(body, "rule"), JSON_COMPACT | JSON_SORT_KEYS);
	t.pay_points = pp ? json_dumps(pp, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	hf_err err = db_tx(c->db, create_body, &t);
	free(t.rule);
	free(t.pay_points);
	return err ? err : cycles_get(c, t.code, out);
}

hf_err cycles_get(struct svc_call *c, const char *code, json_t **out)
{
	struct cycle k;
	hf_err err = cycle_load(c, code, false, &k, out);
	if (err)
		return err;
	/* Where the payments stand. */
	struct db_val v[] = {DB_I64(k.id)};
	struct db_rows *r = NULL;
	err = db_query(c->db, "SELECT status, COUNT(*), SUM(amount) FROM payments WHERE cycle_id = ? GROUP BY status", v,
		       1, &r);
	json_t *by = json_object();
	while (!err && db_rows_next(r))
		json_object_set_new(by, db_rows_str(r, 0), json_pack("{s:I, s:I}", "count", (json_int_t)db_rows_i64(r, 1),
								      "amount", (json_int_t)db_rows_i64(r, 2)));
	db_rows_free(r);
	cycle_release(&k);
	if (err) {
		json_decref(by);
		json_decref(*out);
		return err;
	}
	json_object_set_new(*out, "payments", by);
	return HF_OK;
}

hf_err cycles_list(struct svc_call *c, const char *programme, const char *status, json_t **out)
{
	bool ok = !status;
	for (size_t i = 0; CYCLE_STATUSES[i] && !ok; i++)
		ok = strcmp(status, CYCLE_STATUSES[i]) == 0;
	if (!ok) {
		hf_ferrs_add(c->fe, "status", "not_allowed", "a cycle status");
		return HF_EINVAL;
	}
	struct db_val v[] = {db_str(programme), db_str(programme), db_str(status), db_str(status)};
	struct db_rows *r = NULL;
	hf_err err = db_query(c->db,
			      "SELECT " CYCLE_COLS CYCLE_FROM " WHERE (? IS NULL OR c.programme_code = ?) AND (? IS NULL OR"
			      " c.status = ?) ORDER BY c.pay_from DESC, c.code LIMIT 500",
			      v, 4, &r);
	if (err)
		return err;
	json_t *items = json_array();
	while (db_rows_next(r)) {
		struct cycle k;
		cycle_read(r, &k);
		json_array_append_new(items, cycle_json(r, &k));
		cycle_release(&k);
	}
	db_rows_free(r);
	*out = json_pack("{s:o}", "items", items);
	return HF_OK;
}

/* ------------------------------------------------------------------ payroll: the SQL of who is paid what */

/* The payroll's SELECT for a cycle, with its parameters: columns enrolment_id, payee, household_id,
 * location_id, amount, pay_point, district; plus the exclusion reason (NULL when paid). Every value is a
 * bound parameter; the text comes from constants. */
struct payroll_sql {
	struct hf_buf sql;
	struct db_val v[16 + 3 * MAX_PAY_POINTS];
	size_t nv;
	char y70[16], y80[16], y5[16];
};

static hf_err payroll_sql(const struct cycle *k, struct payroll_sql *q)
{
	struct rule rule;
	struct hf_ferrs fe;
	hf_ferrs_init(&fe);
	rule_parse(k->rule, &fe, &rule);
	bool bad = hf_ferrs_any(&fe);
	hf_ferrs_release(&fe);
	if (bad)
		return HF_EINTERNAL; /* validated when the cycle was created */
	int year = 0, mon = 0, day = 0;
	if (!validate_date_format(k->cutoff, &year, &mon, &day))
		return HF_EINTERNAL; /* a DATE column: always YYYY-MM-DD */
	snprintf(q->y70, sizeof(q->y70), "%d", year - 70);
	snprintf(q->y80, sizeof(q->y80), "%d", year - 80);
	snprintf(q->y5, sizeof(q->y5), "%d", year - 5);
	hf_buf_init(&q->sql, 64 * 1024);
	q->nv = 0;
	struct hf_buf *s = &q->sql;
	hf_err err = HF_OK;
#define ADD(text) (err = err ? err : hf_buf_append_str(s, (text)))
	/* Who is covered: the individual, or every member of the household. */
	const char *members = k->household ? "(SELECT COUNT(*) FROM individuals x WHERE x.household_id = e.household_id"
					   : "(SELECT COUNT(*) FROM individuals x WHERE x.id = e.individual_id";
	ADD("SELECT e.id AS enr, i.id AS payee, i.household_id AS hh, h.location_id AS loc, ");
	if (rule.kind == RULE_FLAT) {
		ADD("?");
		q->v[q->nv++] = DB_I64(rule.amount);
	} else {
		ADD("LEAST(?, ? * ");
		q->v[q->nv++] = DB_I64(rule.cap);
		q->v[q->nv++] = DB_I64(rule.amount);
		ADD(members);
		ADD("))");
	}
	static const char *const cond[TOP_COUNT_] = {" AND x.disability <> 'none')", " AND x.birth_year <= ?)",
						     " AND x.birth_year <= ?)", " AND x.birth_year >= ?)"};
	for (int t = 0; t < TOP_COUNT_; t++) {
		if (!rule.topup[t])
			continue;
		ADD(" + ? * ");
		q->v[q->nv++] = DB_I64(rule.topup[t]);
		ADD(members);
		ADD(cond[t]);
		if (t == TOP_AGE_70)
			q->v[q->nv++] = db_str(q->y70);
		else if (t == TOP_AGE_80)
			q->v[q->nv++] = db_str(q->y80);
		else if (t == TOP_CHILD_UNDER_5)
			q->v[q->nv++] = db_str(q->y5);
	}
	/* Pay point: the longest location prefix of the cycle's map that covers the household's village. */
	ADD(" AS amount, ");
	size_t npp = k->pay_points ? json_object_size(k->pay_points) : 0;
	if (npp) {
		const char *keys[MAX_PAY_POINTS];
		size_t n = 0;
		const char *loc;
		json_t *x;
		json_object_foreach(k->pay_points, loc, x)
			if (n < MAX_PAY_POINTS)
				keys[n++] = loc;
		/* Longest first, so a village entry wins over its district's. */
		for (size_t a = 0; a < n; a++)
			for (size_t b = a + 1; b < n; b++)
				if (strlen(keys[b]) > strlen(keys[a])) {
					const char *tmp = keys[a];
					keys[a] = keys[b];
					keys[b] = tmp;
				}
		ADD("CASE");
		for (size_t a = 0; a < n; a++) {
			ADD(" WHEN l.path = ? OR l.path LIKE CONCAT(?, '/%') THEN ?");
			q->v[q->nv++] = db_str(keys[a]);
			q->v[q->nv++] = db_str(keys[a]);
			q->v[q->nv++] = db_str(json_string_value(json_object_get(k->pay_points, keys[a])));
		}
		ADD(" END AS pp");
	} else {
		ADD("NULL AS pp");
	}
	ADD(", SUBSTRING_INDEX(l.path, '/', 2) AS district");
	/* Why someone on the programme is left out (NULL: paid). */
	ADD(", CASE WHEN e.status <> 'enrolled' THEN e.status WHEN e.created_at >= ? + INTERVAL 1 DAY THEN"
	    " 'enrolled_after_cutoff' WHEN i.id IS NULL THEN 'no_head_of_household'");
	q->v[q->nv++] = db_str(k->cutoff);
	bool kiosk = strcmp(k->channel, "kiosk") == 0;
	if (!kiosk)
		ADD(" WHEN i.phone_enc IS NULL THEN 'no_phone'");
	ADD(" WHEN EXISTS (SELECT 1 FROM payments p2 JOIN payment_cycles c2 ON c2.id = p2.cycle_id WHERE"
	    " p2.enrolment_id = e.id AND c2.id <> ? AND c2.status <> 'cancelled' AND p2.status <> 'cancelled' AND"
	    " c2.pay_from <= ? AND c2.pay_until >= ?) THEN 'already_in_overlapping_cycle' ELSE NULL END AS excl");
	q->v[q->nv++] = DB_I64(k->id);
	q->v[q->nv++] = db_str(k->pay_until);
	q->v[q->nv++] = db_str(k->pay_from);
	ADD(" FROM enrolments e");
	ADD(k->household ? " LEFT JOIN individuals i ON i.household_id = e.household_id AND i.head_marker = 1"
			 : " LEFT JOIN individuals i ON i.id = e.individual_id");
	ADD(" LEFT JOIN households h ON h.id = COALESCE(e.household_id, i.household_id)"
	    " LEFT JOIN locations l ON l.id = h.location_id WHERE e.programme_id = ?");
	q->v[q->nv++] = DB_I64(k->programme_id);
#undef ADD
	return err;
}

/* The exclusion and pay point columns, by position in payroll_sql's SELECT. */
enum { PC_ENROLMENT, PC_PAYEE, PC_HOUSEHOLD, PC_LOCATION, PC_AMOUNT, PC_PAY_POINT, PC_DISTRICT, PC_EXCLUDED };

hf_err cycles_preview(struct svc_call *c, const char *code, json_t **out)
{
	struct cycle k;
	hf_err err = cycle_load(c, code, false, &k, NULL);
	if (err)
		return err;
	struct payroll_sql q;
	err = payroll_sql(&k, &q);
	struct hf_buf outer;
	hf_buf_init(&outer, 80 * 1024);
	/* Grouped on the server: district x (paid | why not), with counts and totals. */
	if (!err)
		err = hf_buf_append_str(&outer, "SELECT IF(w.excl IS NULL AND (w.pp IS NOT NULL OR ? = 0), '', COALESCE("
						"w.excl, 'no_pay_point')), COALESCE(w.district, '(none)'), COUNT(*),"
						" SUM(w.amount) FROM (");
	struct db_val v[HF_ARRAY_LEN(q.v) + 1];
	size_t nv = 0;
	v[nv++] = DB_I64(strcmp(k.channel, "kiosk") == 0);
	for (size_t i = 0; i < q.nv; i++)
		v[nv++] = q.v[i];
	if (!err)
		err = hf_buf_append_str(&outer, hf_buf_cstr(&q.sql));
	if (!err)
		err = hf_buf_append_str(&outer, ") w GROUP BY 1, 2 ORDER BY 2");
	struct db_rows *r = NULL;
	if (!err)
		err = db_query(c->db, hf_buf_cstr(&outer), v, nv, &r);
	hf_buf_release(&outer);
	hf_buf_release(&q.sql);
	json_t *districts = json_object(), *excluded = json_object();
	json_int_t count = 0, total = 0;
	while (!err && db_rows_next(r)) {
		const char *why = db_rows_str(r, 0);
		json_int_t n = db_rows_i64(r, 2), amt = db_rows_i64(r, 3);
		if (why[0]) {
			json_t *old = json_object_get(excluded, why);
			json_object_set_new(excluded, why, json_integer((old ? json_integer_value(old) : 0) + n));
			continue;
		}
		json_object_set_new(districts, db_rows_str(r, 1), json_pack("{s:I, s:I}", "count", n, "total", amt));
		count += n;
		total += amt;
	}
	db_rows_free(r);
	if (!err) {
		int64_t fund = 0;
		char acc[LEDGER_CODE_MAX + 1];
		snprintf(acc, sizeof(acc), "fund:%s", k.programme);
		err = ledger_balance(c->db, acc, false, &fund);
		*out = json_pack("{s:s, s:s, s:s, s:I, s:I, s:o, s:o, s:I, s:b}", "cycle", k.code, "currency", k.currency,
				 "cutoff_date", k.cutoff, "count", count, "total", total, "by_district", districts,
				 "excluded", excluded, "fund_balance", (json_int_t)fund, "fund_covers", fund >= total);
		if (err)
			json_decref(*out);
	} else {
		json_decref(districts);
		json_decref(excluded);
	}
	cycle_release(&k);
	return err;
}

struct gen_tx {
	struct svc_call *c;
	const char *code;
	struct cycle k;
	int64_t after;  /* enrolment id the next batch starts after */
	uint64_t added; /* rows of this batch */
	int phase;      /* 0 = start (clear), 1 = a batch, 2 = finish */
	json_int_t count, total;
};

static hf_err gen_body(struct db *db, void *vctx)
{
	struct gen_tx *t = vctx;
	cycle_release(&t->k);
	hf_err err = cycle_load(t->c, t->code, true, &t->k, NULL);
	if (err)
		return err;
	if (strcmp(t->k.status, "draft") != 0 && strcmp(t->k.status, "generated") != 0) {
		snprintf(t->c->msg, t->c->msg_cap, "The cycle is %s: its payroll can no longer change.", t->k.status);
		return HF_ECONFLICT;
	}
	struct db_val cv[] = {DB_I64(t->k.id)};
	if (t->phase == 0) {
		/* Regenerating replaces the payroll: nothing of it was approved or paid. */
		return db_exec(db, "DELETE FROM payments WHERE cycle_id = ? AND status = 'scheduled'", cv, 1, NULL);
	}
	if (t->phase == 2) {
		struct db_rows *r = NULL;
		err = db_query(db, "SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM payments WHERE cycle_id = ?", cv, 1, &r);
		if (!err && db_rows_next(r)) {
			t->count = db_rows_i64(r, 0);
			t->total = db_rows_i64(r, 1);
		}
		db_rows_free(r);
		if (err)
			return err;
		struct db_val v[] = {DB_I64(t->count), DB_I64(t->total), db_str(t->c->p->actor), db_str(t->c->p->actor),
				     DB_I64(t->k.id)};
		err = db_exec(db,
			      "UPDATE payment_cycles SET status = 'generated', payroll_count = ?, payroll_total = ?,"
			      " generated_at = UTC_TIMESTAMP(3), generated_by = ?, version = version + 1, updated_at ="
			      " UTC_TIMESTAMP(3), updated_by = ? WHERE id = ?",
			      v, HF_ARRAY_LEN(v), NULL);
		json_t *d = json_pack("{s:I, s:I}", "count", t->count, "total", t->total);
		if (!err)
			err = cycle_audit(t->c, "cycle.generate", &t->k, t->k.status, "generated", d);
		json_decref(d);
		return err;
	}
	struct payroll_sql q;
	err = payroll_sql(&t->k, &q);
	struct hf_buf ins;
	hf_buf_init(&ins, 80 * 1024);
	/* Row ids: one base per batch (low 20 bits clear) plus a counter; a batch is far below 2^20 rows. */
	int64_t base = db_new_id() & ~(int64_t)0xFFFFF;
	if (!err)
		err = db_exec_plain(db, "SET @hf_rn = 0");
	if (!err)
		err = hf_buf_append_str(&ins, "INSERT INTO payments (id, cycle_id, enrolment_id, individual_id, household_id,"
					      " location_id, amount, currency, channel, provider, pay_point, status, created_at,"
					      " updated_at) SELECT ? + (@hf_rn := @hf_rn + 1), ?, w.enr, w.payee, w.hh, w.loc,"
					      " w.amount, ?, ?, ?, w.pp, 'scheduled', UTC_TIMESTAMP(3), UTC_TIMESTAMP(3) FROM"
					      " (");
	struct db_val v[HF_ARRAY_LEN(q.v) + 8];
	size_t nv = 0;
	v[nv++] = DB_I64(base);
	v[nv++] = DB_I64(t->k.id);
	v[nv++] = db_str(t->k.currency);
	v[nv++] = db_str(t->k.channel);
	v[nv++] = db_str(t->k.provider[0] ? t->k.provider : NULL);
	for (size_t i = 0; i < q.nv; i++)
		v[nv++] = q.v[i];
	if (!err)
		err = hf_buf_append_str(&ins, hf_buf_cstr(&q.sql));
	if (!err)
		err = hf_buf_appendf(&ins, " AND e.id > ? ORDER BY e.id LIMIT %d) w WHERE w.excl IS NULL", PAYROLL_BATCH);
	v[nv++] = DB_I64(t->after);
	if (!err && strcmp(t->k.channel, "kiosk") == 0)
		err = hf_buf_append_str(&ins, " AND w.pp IS NOT NULL");
	if (!err)
		err = db_exec(db, hf_buf_cstr(&ins), v, nv, NULL);
	hf_buf_release(&ins);
	/* Where the next batch starts: after the last enrolment this batch looked at (paid or not). */
	hf_buf_reset(&q.sql);
	hf_buf_release(&q.sql);
	if (err)
		return err;
	struct db_val w[] = {DB_I64(t->k.programme_id), DB_I64(t->after)};
	struct db_rows *r = NULL;
	err = db_query(db,
		       "SELECT COUNT(*), MAX(id) FROM (SELECT id FROM enrolments WHERE programme_id = ? AND id > ? ORDER BY"
		       " id LIMIT ?) b",
		       (struct db_val[]){w[0], w[1], DB_I64(PAYROLL_BATCH)}, 3, &r);
	if (!err && db_rows_next(r)) {
		t->added = (uint64_t)db_rows_i64(r, 0);
		if (t->added)
			t->after = db_rows_i64(r, 1);
	}
	db_rows_free(r);
	return err;
}

hf_err cycles_generate(struct svc_call *c, const char *code, json_t **out)
{
	struct gen_tx t = {.c = c, .code = code};
	hf_err err = db_tx(c->db, gen_body, &t);
	/* Batch after batch, each its own transaction (a national payroll is millions of rows). */
	for (t.phase = 1; !err;) {
		int64_t before = t.after;
		err = db_tx(c->db, gen_body, &t);
		for (int i = 0; i < 3 && err == HF_ECONFLICT && strcmp(db_conflict_key(c->db), "PRIMARY") == 0; i++) {
			t.after = before;
			err = db_tx(c->db, gen_body, &t); /* ids drawn twice: the batch again */
		}
		if (err || t.added < PAYROLL_BATCH)
			break;
	}
	if (!err) {
		t.phase = 2;
		err = db_tx(c->db, gen_body, &t);
	}
	cycle_release(&t.k);
	return err ? err : cycles_get(c, code, out);
}

/* ------------------------------------------------------------------ approval */

struct step_tx {
	struct svc_call *c;
	const char *code;
	struct cycle k;
	bool fund_low;
	int64_t fund;
};

static hf_err submit_body(struct db *db, void *vctx)
{
	struct step_tx *t = vctx;
	cycle_release(&t->k);
	hf_err err = cycle_load(t->c, t->code, true, &t->k, NULL);
	if (err)
		return err;
	if (strcmp(t->k.status, "generated") != 0) {
		snprintf(t->c->msg, t->c->msg_cap, "Only a generated payroll goes for approval; this cycle is %s.",
			 t->k.status);
		return HF_ECONFLICT;
	}
	if (t->k.payroll_count == 0) {
		snprintf(t->c->msg, t->c->msg_cap, "The payroll is empty: nothing to approve.");
		return HF_ECONFLICT;
	}
	struct db_val v[] = {db_str(t->c->p->actor), db_str(t->c->p->actor), DB_I64(t->k.id)};
	err = db_exec(db,
		      "UPDATE payment_cycles SET status = 'approval_requested', approval_requested_by = ?, version ="
		      " version + 1, updated_at = UTC_TIMESTAMP(3), updated_by = ? WHERE id = ?",
		      v, 3, NULL);
	if (!err)
		err = cycle_audit(t->c, "cycle.submit", &t->k, "generated", "approval_requested", NULL);
	/* Tell the payment officers now if the fund cannot cover it, not at approval. */
	char acc[LEDGER_CODE_MAX + 1];
	snprintf(acc, sizeof(acc), "fund:%s", t->k.programme);
	if (!err)
		err = ledger_balance(db, acc, false, &t->fund);
	if (!err && t->fund < t->k.payroll_total) {
		bool raised = false;
		json_t *d = json_pack("{s:s, s:I, s:I}", "cycle", t->k.code, "fund_balance", (json_int_t)t->fund, "payroll_total",
				      (json_int_t)t->k.payroll_total);
		err = alerts_raise(db, ALERT_FUND_LOW, "critical", t->k.code, t->k.id, 0, d, &raised);
		json_decref(d);
		t->fund_low = true;
	}
	return err;
}

hf_err cycles_submit(struct svc_call *c, const char *code, json_t **out)
{
	struct step_tx t = {.c = c, .code = code};
	hf_err err = db_tx(c->db, submit_body, &t);
	cycle_release(&t.k);
	if (!err)
		err = cycles_get(c, code, out);
	if (!err && t.fund_low)
		json_object_set_new(*out, "warning", json_string("the fund does not cover this payroll: fund it before approval"));
	return err;
}

static hf_err approve_body(struct db *db, void *vctx)
{
	struct step_tx *t = vctx;
	cycle_release(&t->k);
	t->fund_low = false;
	hf_err err = cycle_load(t->c, t->code, true, &t->k, NULL);
	if (err)
		return err;
	if (strcmp(t->k.status, "approval_requested") != 0) {
		snprintf(t->c->msg, t->c->msg_cap, "Only a payroll submitted for approval can be approved; this cycle is %s.",
			 t->k.status);
		return HF_ECONFLICT;
	}
	if (strcmp(t->k.requested_by, t->c->p->actor) == 0 || strcmp(t->k.generated_by, t->c->p->actor) == 0) {
		snprintf(t->c->msg, t->c->msg_cap,
			 "A different payment officer must approve: you generated or submitted this payroll.");
		return HF_EFORBIDDEN;
	}
	/* The fund is locked while we look at it: two approvals cannot both spend the same money. */
	char fund[LEDGER_CODE_MAX + 1], clearing[LEDGER_CODE_MAX + 1], key[64];
	snprintf(fund, sizeof(fund), "fund:%s", t->k.programme);
	snprintf(clearing, sizeof(clearing), "clearing:%s", t->k.code);
	err = ledger_balance(db, fund, true, &t->fund);
	if (err)
		return err;
	if (t->fund < t->k.payroll_total) {
		t->fund_low = true;
		snprintf(t->c->msg, t->c->msg_cap,
			 "The fund holds %lld %s, the payroll needs %lld: fund the programme before approving.",
			 (long long)t->fund, t->k.currency, (long long)t->k.payroll_total);
		return HF_ECONFLICT;
	}
	struct db_val cv[] = {DB_I64(t->k.id)};
	uint64_t n = 0;
	err = db_exec(db,
		      "UPDATE payments SET status = IF(channel = 'kiosk', 'available', 'approved'), next_check_at = NULL,"
		      " updated_at = UTC_TIMESTAMP(3) WHERE cycle_id = ? AND status = 'scheduled'",
		      cv, 1, &n);
	if (err)
		return err;
	if ((int64_t)n != t->k.payroll_count) {
		snprintf(t->c->msg, t->c->msg_cap, "The payroll changed since it was generated: generate it again.");
		return HF_ECONFLICT;
	}
	snprintf(key, sizeof(key), "payroll:%lld", (long long)t->k.id);
	struct ledger_leg legs[] = {{fund, -t->k.payroll_total}, {clearing, t->k.payroll_total}};
	struct ledger_posting p = {key, "payroll", t->k.currency, t->k.id, 0, "payroll approved", t->c->p->actor, legs, 2};
	bool posted = false;
	err = ledger_post(db, &p, &posted);
	if (!err && !posted)
		err = HF_ECONFLICT;
	struct db_val v[] = {db_str(t->c->p->actor), db_str(t->c->p->actor), DB_I64(t->k.id)};
	if (!err)
		err = db_exec(db,
			      "UPDATE payment_cycles SET status = 'approved', approved_at = UTC_TIMESTAMP(3), approved_by = ?,"
			      " version = version + 1, updated_at = UTC_TIMESTAMP(3), updated_by = ? WHERE id = ?",
			      v, 3, NULL);
	json_t *d = json_pack("{s:I, s:I}", "count", (json_int_t)t->k.payroll_count, "total", (json_int_t)t->k.payroll_total);
	if (!err)
		err = cycle_audit(t->c, "cycle.approve", &t->k, "approval_requested", "approved", d);
	json_decref(d);
	return err;
}

static hf_err fund_low_alert(struct db *db, void *vctx)
{
	struct step_tx *t = vctx;
	bool raised = false;
	json_t *d = json_pack("{s:s, s:I, s:I}", "cycle", t->k.code, "fund_balance", (json_int_t)t->fund, "payroll_total",
			      (json_int_t)t->k.payroll_total);
	hf_err err = alerts_raise(db, ALERT_FUND_LOW, "critical", t->k.code, t->k.id, 0, d, &raised);
	json_decref(d);
	return err;
}

hf_err cycles_approve(struct svc_call *c, const char *code, json_t **out)
{
	struct step_tx t = {.c = c, .code = code};
	hf_err err = db_tx(c->db, approve_body, &t);
	if (err == HF_ECONFLICT && t.fund_low && db_tx(c->db, fund_low_alert, &t) != HF_OK)
		hf_log(HF_LOG_ERROR, "core.payments", "msg=\"could not raise the fund_low alert\"");
	cycle_release(&t.k);
	return err ? err : cycles_get(c, code, out);
}

static hf_err close_body(struct db *db, void *vctx)
{
	struct step_tx *t = vctx;
	cycle_release(&t->k);
	hf_err err = cycle_load(t->c, t->code, true, &t->k, NULL);
	if (err)
		return err;
	bool approved = strcmp(t->k.status, "approved") == 0;
	if (!approved && strcmp(t->k.status, "closed") != 0 && strcmp(t->k.status, "cancelled") != 0) {
		/* Not approved yet: the cycle is cancelled, its payroll with it. */
		struct db_val cv[] = {DB_I64(t->k.id)};
		err = db_exec(db, "UPDATE payments SET status = 'cancelled', updated_at = UTC_TIMESTAMP(3) WHERE cycle_id = ?",
			      cv, 1, NULL);
		struct db_val v[] = {db_str(t->c->p->actor), DB_I64(t->k.id)};
		if (!err)
			err = db_exec(db,
				      "UPDATE payment_cycles SET status = 'cancelled', version = version + 1, updated_at ="
				      " UTC_TIMESTAMP(3), updated_by = ? WHERE id = ?",
				      v, 2, NULL);
		return err ? err : cycle_audit(t->c, "cycle.cancel", &t->k, t->k.status, "cancelled", NULL);
	}
	if (!approved) {
		snprintf(t->c->msg, t->c->msg_cap, "The cycle is %s already.", t->k.status);
		return HF_ECONFLICT;
	}
	struct db_val cv[] = {DB_I64(t->k.id)};
	struct db_rows *r = NULL;
	err = db_query(db,
		       "SELECT SUM(status IN ('sending', 'pending')), COALESCE(SUM(IF(status IN ('approved', 'available'),"
		       " amount, 0)), 0), COALESCE(SUM(IF(status IN ('failed', 'expired'), amount, 0)), 0) FROM payments"
		       " WHERE cycle_id = ?",
		       cv, 1, &r);
	int64_t in_flight = 0, unsent = 0, returned = 0;
	if (!err && db_rows_next(r)) {
		in_flight = db_rows_i64(r, 0);
		unsent = db_rows_i64(r, 1);
		returned = db_rows_i64(r, 2);
	}
	db_rows_free(r);
	if (err)
		return err;
	if (in_flight) {
		snprintf(t->c->msg, t->c->msg_cap,
			 "%lld payments are still with the provider: close the cycle when they are settled.",
			 (long long)in_flight);
		return HF_ECONFLICT;
	}
	err = db_exec(db,
		      "UPDATE payments SET status = 'cancelled', settled_at = UTC_TIMESTAMP(3), updated_at = UTC_TIMESTAMP(3)"
		      " WHERE cycle_id = ? AND status IN ('approved', 'available')",
		      cv, 1, NULL);
	char fund[LEDGER_CODE_MAX + 1], clearing[LEDGER_CODE_MAX + 1], ret[LEDGER_CODE_MAX + 1], key[64];
	snprintf(fund, sizeof(fund), "fund:%s", t->k.programme);
	snprintf(clearing, sizeof(clearing), "clearing:%s", t->k.code);
	snprintf(ret, sizeof(ret), "returned:%s", t->k.programme);
	bool posted = false;
	if (!err && unsent) {
		snprintf(key, sizeof(key), "close-unsent:%lld", (long long)t->k.id);
		struct ledger_leg legs[] = {{clearing, -unsent}, {fund, unsent}};
		struct ledger_posting p = {key, "return", t->k.currency, t->k.id, 0, "cycle closed: unpaid back to the fund",
					   t->c->p->actor, legs, 2};
		err = ledger_post(db, &p, &posted);
	}
	if (!err && returned) {
		snprintf(key, sizeof(key), "close-returned:%lld", (long long)t->k.id);
		struct ledger_leg legs[] = {{ret, -returned}, {fund, returned}};
		struct ledger_posting p = {key, "return", t->k.currency, t->k.id, 0, "cycle closed: failed and expired back to the fund",
					   t->c->p->actor, legs, 2};
		err = ledger_post(db, &p, &posted);
	}
	struct db_val v[] = {db_str(t->c->p->actor), DB_I64(t->k.id)};
	if (!err)
		err = db_exec(db,
			      "UPDATE payment_cycles SET status = 'closed', version = version + 1, updated_at ="
			      " UTC_TIMESTAMP(3), updated_by = ? WHERE id = ?",
			      v, 2, NULL);
	json_t *d = json_pack("{s:I, s:I}", "returned_unsent", (json_int_t)unsent, "returned_failed", (json_int_t)returned);
	if (!err)
		err = cycle_audit(t->c, "cycle.close", &t->k, "approved", "closed", d);
	json_decref(d);
	return err;
}

hf_err cycles_close(struct svc_call *c, const char *code, json_t **out)
{
	struct step_tx t = {.c = c, .code = code};
	hf_err err = db_tx(c->db, close_body, &t);
	cycle_release(&t.k);
	return err ? err : cycles_get(c, code, out);
}

/* ------------------------------------------------------------------ funding */

struct fund_tx {
	struct svc_call *c;
	const char *programme, *reference;
	int64_t amount;
	char currency[4];
	bool posted;
};

static hf_err fund_body(struct db *db, void *vctx)
{
	struct fund_tx *t = vctx;
	struct db_val pv[] = {db_str(t->programme)};
	struct db_rows *r = NULL;
	hf_err err = db_query(db, "SELECT currency FROM programmes WHERE code = ?", pv, 1, &r);
	if (err)
		return err;
	if (!db_rows_next(r)) {
		db_rows_free(r);
		hf_ferrs_add(t->c->fe, "programme", "unknown", "no programme with this code");
		return HF_EINVAL;
	}
	bool same = strcmp(db_rows_str(r, 0), t->currency) == 0;
	char cur[4];
	hf_strlcpy(cur, db_rows_str(r, 0), sizeof(cur));
	db_rows_free(r);
	if (!same) {
		hf_ferrs_add(t->c->fe, "currency", "mismatch", "the programme's fund is in %s", cur);
		return HF_EINVAL;
	}
	char ext[16], fund[LEDGER_CODE_MAX + 1], key[100];
	snprintf(ext, sizeof(ext), "external:%s", t->currency);
	snprintf(fund, sizeof(fund), "fund:%s", t->programme);
	snprintf(key, sizeof(key), "funding:%s:%s", t->programme, t->reference);
	struct ledger_leg legs[] = {{ext, -t->amount}, {fund, t->amount}};
	struct ledger_posting p = {key, "funding", t->currency, 0, 0, t->reference, t->c->p->actor, legs, 2};
	err = ledger_post(db, &p, &t->posted);
	if (!err && !t->posted) {
		/* The reference was used before: the same funding again is fine, another amount is a mistake. */
		struct db_val kv[] = {db_str(key)};
		err = db_query(db,
			       "SELECT e.amount FROM ledger_postings l JOIN ledger_entries e ON e.posting_id = l.id WHERE"
			       " l.idem_key = ? AND e.amount > 0",
			       kv, 1, &r);
		int64_t before = 0;
		if (!err && db_rows_next(r))
			before = db_rows_i64(r, 0);
		db_rows_free(r);
		if (!err && before != t->amount) {
			snprintf(t->c->msg, t->c->msg_cap,
				 "The reference %s was used for a funding of %lld %s: a new funding needs a new reference.",
				 t->reference, (long long)before, t->currency);
			err = HF_ECONFLICT;
		}
	}
	if (err || !t->posted)
		return err;
	json_t *d = json_pack("{s:s, s:I, s:s, s:s}", "programme", t->programme, "amount", (json_int_t)t->amount, "currency",
			      t->currency, "reference", t->reference);
	struct audit_event ev = {"ledger.funding", "ledger", t->programme, "ok", NULL, NULL, d};
	err = audit_append(db, &t->c->p->audit, &ev);
	json_decref(d);
	return err;
}

hf_err payments_fund(struct svc_call *c, json_t *body, json_t **out)
{
	static const char *const allowed[] = {"programme", "amount", "currency", "reference", NULL};
	hf_json_only_fields(body, allowed, "", c->fe);
	struct fund_tx t = {.c = c};
	const char *cur = NULL;
	(void)hf_json_get_str(body, "", "programme", true, 1, 32, c->fe, &t.programme);
	(void)hf_json_get_int(body, "", "amount", true, 1, MONEY_MAX * 1000, c->fe, &t.amount);
	if (hf_json_get_str(body, "", "currency", true, 3, 3, c->fe, &cur))
		hf_strlcpy(t.currency, cur, sizeof(t.currency));
	if (hf_json_get_str(body, "", "reference", true, 1, 60, c->fe, &t.reference) &&
	    !hf_utf8_valid_text(t.reference, strlen(t.reference)))
		hf_ferrs_add(c->fe, "reference", "format", "text");
	if (hf_ferrs_any(c->fe))
		return HF_EINVAL;
	hf_err err = db_tx(c->db, fund_body, &t);
	if (err)
		return err;
	char fund[LEDGER_CODE_MAX + 1];
	snprintf(fund, sizeof(fund), "fund:%s", t.programme);
	int64_t bal = 0;
	err = ledger_balance(c->db, fund, false, &bal);
	if (err)
		return err;
	if (!t.posted)
		c->status = 200; /* the same funding reference again: recorded once */
	*out = json_pack("{s:s, s:s, s:I, s:b, s:I}", "programme", t.programme, "reference", t.reference, "amount",
			 (json_int_t)t.amount, "new", t.posted, "fund_balance", (json_int_t)bal);
	return HF_OK;
}

/* ------------------------------------------------------------------ payments */

#define PAY_COLS                                                                                               \
	"p.id, c.code, p.amount, p.currency, p.channel, COALESCE(p.provider, ''), COALESCE(p.pay_point, ''),"   \
	" p.status, p.attempts, COALESCE(p.receipt, ''), p.paid_amount, COALESCE(p.collected_kiosk, ''),"       \
	" COALESCE(p.verification, ''), COALESCE(p.failure_reason, ''), DATE_FORMAT(p.created_at, " DB_TS_FMT   \
	"), IF(p.settled_at IS NULL, NULL, DATE_FORMAT(p.settled_at, " DB_TS_FMT ")), i.ben_no, c.pay_from,"     \
	" c.pay_until, c.programme_code, IF(p.sent_at IS NULL, NULL, DATE_FORMAT(p.sent_at, " DB_TS_FMT "))"
#define PAY_FROM " FROM payments p JOIN payment_cycles c ON c.id = p.cycle_id JOIN individuals i ON i.id = p.individual_id"

static json_t *payment_json(struct db_rows *r, bool staff)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:s}", "id", db_rows_str(r, 0), "cycle",
			      db_rows_str(r, 1), "programme", db_rows_str(r, 19), "amount", (json_int_t)db_rows_i64(r, 2),
			      "currency", db_rows_str(r, 3), "channel", db_rows_str(r, 4), "status", db_rows_str(r, 7),
			      "pay_from", db_rows_str(r, 17), "pay_until", db_rows_str(r, 18));
	if (db_rows_str(r, 6)[0])
		json_object_set_new(o, "pay_point", json_string(db_rows_str(r, 6)));
	if (!db_rows_null(r, 15))
		json_object_set_new(o, "settled_at", json_string(db_rows_str(r, 15)));
	if (db_rows_str(r, 9)[0])
		json_object_set_new(o, "receipt", json_string(db_rows_str(r, 9)));
	if (!staff)
		return o;
	json_object_set_new(o, "ben_no", json_string(db_rows_str(r, 16)));
	json_object_set_new(o, "attempts", json_integer(db_rows_i64(r, 8)));
	json_object_set_new(o, "created_at", json_string(db_rows_str(r, 14)));
	if (db_rows_str(r, 5)[0])
		json_object_set_new(o, "provider", json_string(db_rows_str(r, 5)));
	if (!db_rows_null(r, 10))
		json_object_set_new(o, "paid_amount", json_integer(db_rows_i64(r, 10)));
	if (db_rows_str(r, 11)[0])
		json_object_set_new(o, "collected", json_pack("{s:s, s:s}", "kiosk", db_rows_str(r, 11), "verification",
							       db_rows_str(r, 12)));
	if (db_rows_str(r, 13)[0])
		json_object_set_new(o, "failure_reason", json_string(db_rows_str(r, 13)));
	if (!db_rows_null(r, 20))
		json_object_set_new(o, "sent_at", json_string(db_rows_str(r, 20)));
	return o;
}

static bool status_ok(const char *s)
{
	for (size_t i = 0; PAY_STATUSES[i]; i++)
		if (strcmp(s, PAY_STATUSES[i]) == 0)
			return true;
	return false;
}

hf_err payments_list(struct svc_call *c, const char *code, const char *status, const char *pay_point, int limit,
		     const char *after, json_t **out)
{
	int64_t after_id = 0;
	if (status && !status_ok(status))
		hf_ferrs_add(c->fe, "status", "not_allowed", "a payment status");
	if (after && hf_parse_i64(after, 1, INT64_MAX, &after_id))
		hf_ferrs_add(c->fe, "after", "format", "the next value of the previous page");
	if (hf_ferrs_any(c->fe))
		return HF_EINVAL;
	struct cycle k;
	hf_err err = cycle_load(c, code, false, &k, NULL);
	if (err)
		return err;
	cycle_release(&k);
	struct db_val v[] = {DB_I64(k.id), db_str(status), db_str(status), db_str(pay_point), db_str(pay_point),
			     DB_I64(after_id), DB_I64(limit)};
	struct db_rows *r = NULL;
	err = db_query(c->db,
		       "SELECT " PAY_COLS PAY_FROM " WHERE p.cycle_id = ? AND (? IS NULL OR p.status = ?) AND (? IS NULL OR"
		       " p.pay_point = ?) AND p.id > ? ORDER BY p.id LIMIT ?",
		       v, HF_ARRAY_LEN(v), &r);
	if (err)
		return err;
	json_t *items = json_array();
	char next[24] = "";
	while (db_rows_next(r)) {
		json_array_append_new(items, payment_json(r, true));
		hf_strlcpy(next, db_rows_str(r, 0), sizeof(next));
	}
	db_rows_free(r);
	*out = json_pack("{s:o, s:s?}", "items", items, "next", json_array_size(items) >= (size_t)limit ? next : NULL);
	return HF_OK;
}

hf_err payments_get(struct svc_call *c, const char *id, json_t **out)
{
	int64_t pid = 0;
	if (hf_parse_i64(id, 1, INT64_MAX, &pid)) {
		snprintf(c->msg, c->msg_cap, "No such payment.");
		return HF_ENOTFOUND;
	}
	struct db_val v[] = {DB_I64(pid)};
	struct db_rows *r = NULL;
	hf_err err = db_query(c->db, "SELECT " PAY_COLS PAY_FROM " WHERE p.id = ?", v, 1, &r);
	if (err)
		return err;
	if (!db_rows_next(r)) {
		db_rows_free(r);
		snprintf(c->msg, c->msg_cap, "No such payment.");
		return HF_ENOTFOUND;
	}
	*out = payment_json(r, true);
	db_rows_free(r);
	/* History: the payroll's steps, then the payment's own events, then its money. */
	json_t *hist = json_array();
	err = db_query(c->db,
		       "SELECT 'scheduled', NULL, DATE_FORMAT(c.generated_at, " DB_TS_FMT "), c.generated_by, NULL FROM payments"
		       " p JOIN payment_cycles c ON c.id = p.cycle_id WHERE p.id = ? AND c.generated_at IS NOT NULL UNION ALL"
		       " SELECT IF(p.channel = 'kiosk', 'available', 'approved'), 'scheduled', DATE_FORMAT(c.approved_at, "
		       DB_TS_FMT "), c.approved_by, NULL FROM payments p JOIN payment_cycles c ON c.id = p.cycle_id WHERE p.id"
		       " = ? AND c.approved_at IS NOT NULL",
		       (struct db_val[]){v[0], v[0]}, 2, &r);
	while (!err && db_rows_next(r))
		json_array_append_new(hist, json_pack("{s:s, s:s?, s:s, s:s}", "status", db_rows_str(r, 0), "from",
						      db_rows_null(r, 1) ? NULL : db_rows_str(r, 1), "at", db_rows_str(r, 2),
						      "by", db_rows_str(r, 3)));
	db_rows_free(r);
	r = NULL;
	if (!err)
		err = db_query(c->db,
			       "SELECT to_status, from_status, DATE_FORMAT(at, " DB_TS_FMT "), actor, detail FROM payment_events"
			       " WHERE payment_id = ? ORDER BY at, id LIMIT 200",
			       v, 1, &r);
	while (!err && db_rows_next(r))
		json_array_append_new(hist, json_pack("{s:s, s:s?, s:s, s:s, s:s?}", "status", db_rows_str(r, 0), "from",
						      db_rows_null(r, 1) ? NULL : db_rows_str(r, 1), "at", db_rows_str(r, 2),
						      "by", db_rows_str(r, 3), "detail",
						      db_rows_null(r, 4) ? NULL : db_rows_str(r, 4)));
	db_rows_free(r);
	r = NULL;
	json_t *money = json_array();
	if (!err)
		err = db_query(c->db,
			       "SELECT l.kind, a.code, e.amount, DATE_FORMAT(l.posted_at, " DB_TS_FMT ") FROM ledger_postings l"
			       " JOIN ledger_entries e ON e.posting_id = l.id JOIN ledger_accounts a ON a.id = e.account_id"
			       " WHERE l.payment_id = ? AND e.amount > 0 ORDER BY l.posted_at, l.id LIMIT 50",
			       v, 1, &r);
	while (!err && db_rows_next(r))
		json_array_append_new(money, json_pack("{s:s, s:s, s:I, s:s}", "posting", db_rows_str(r, 0), "to",
						       db_rows_str(r, 1), "amount", (json_int_t)db_rows_i64(r, 2), "at",
						       db_rows_str(r, 3)));
	db_rows_free(r);
	json_object_set_new(*out, "history", hist);
	json_object_set_new(*out, "ledger", money);
	if (err) {
		json_decref(*out);
		*out = NULL;
	}
	return err;
}

hf_err payments_for_beneficiary(struct svc_call *c, const char *ben_no, json_t **out)
{
	if (!ben_no || strlen(ben_no) != BENNO_LEN) {
		svc_say(c, "No beneficiary with that number.");
		return HF_ENOTFOUND;
	}
	/* One statement (a USSD "next payment" screen waits for it): the next -- approved, not yet paid -- and
	 * the last five settled, newest first, told apart by the column "part". */
	struct db_val v[] = {db_str(ben_no), db_str(ben_no)};
	struct db_rows *r = NULL;
	hf_err err = db_query(c->db,
			      "(SELECT " PAY_COLS ", (SELECT e.status FROM enrolments e WHERE e.id = p.enrolment_id) <>"
			      " 'enrolled' AS hold, 0 AS part, p.settled_at AS settled" PAY_FROM " WHERE i.ben_no = ? AND"
			      " p.status IN ('approved', 'available', 'sending', 'pending') ORDER BY c.pay_from LIMIT 1)"
			      " UNION ALL (SELECT " PAY_COLS ", 0, 1, p.settled_at" PAY_FROM " WHERE i.ben_no = ? AND p.status"
			      " IN ('paid', 'collected', 'failed', 'expired', 'reversed') ORDER BY p.settled_at DESC LIMIT 5)"
			      " ORDER BY part, settled DESC",
			      v, 2, &r);
	if (err)
		return err;
	json_t *next = NULL, *last = json_array();
	while (db_rows_next(r)) {
		if (db_rows_i64(r, 22) == 0) {
			next = payment_json(r, false);
			/* Held for a payment officer (the enrolment changed since the approval): say so, not when. */
			if (db_rows_i64(r, 21))
				json_object_set_new(next, "on_hold", json_true());
		} else {
			json_array_append_new(last, payment_json(r, false));
		}
	}
	db_rows_free(r);
	/* No payment at all: a beneficiary without payments, or no such beneficiary. */
	int64_t id = 0;
	if (!next && !json_array_size(last))
		err = svc_individual(c, ben_no, &id);
	if (err) {
		json_decref(last);
		return err;
	}
	*out = json_pack("{s:s, s:o, s:o}", "ben_no", ben_no, "next", next ? next : json_null(), "last", last);
	return HF_OK;
}

hf_err payments_kiosk_available(struct svc_call *c, const char *ben_no, json_t **out)
{
	int64_t id = 0;
	hf_err err = svc_individual(c, ben_no, &id);
	if (err)
		return err;
	struct db_val v[] = {DB_I64(id), db_str(c->p->pay_point)};
	struct db_rows *r = NULL;
	err = db_query(c->db,
		       "SELECT " PAY_COLS PAY_FROM " WHERE p.individual_id = ? AND p.status = 'available' AND p.pay_point = ?"
		       " AND c.status = 'approved' AND c.pay_from <= UTC_DATE() AND c.pay_until >= UTC_DATE() AND EXISTS"
		       " (SELECT 1 FROM enrolments e WHERE e.id = p.enrolment_id AND e.status = 'enrolled') ORDER BY"
		       " c.pay_from LIMIT 20",
		       v, 2, &r);
	if (err)
		return err;
	json_t *items = json_array();
	while (db_rows_next(r))
		json_array_append_new(items, payment_json(r, false));
	db_rows_free(r);
	*out = json_pack("{s:s, s:s, s:o}", "ben_no", ben_no, "pay_point", c->p->pay_point, "items", items);
	return HF_OK;
}

struct collect_tx {
	struct svc_call *c;
	int64_t payment_id, individual_id;
	const char *token;
	char request_id[37];
	char method[BIOMETRIC_METHOD_MAX];
	int64_t verification_id;
	int64_t replay_of; /* the payment an already recorded request_id collected (0: none) */
	bool bad_token;
	const char *reason; /* of a refusal, for the kiosk (docs/kiosk-api.md) */
	char receipt[24], status[16], where[40], when[40], cycle[41];
	int64_t amount;
	char currency[4];
};

/* A receipt number a beneficiary can read out: R and 12 random digits. Unguessable; unique because
 * kiosk_collection_requests.receipt is a unique key (a clash, likely after a million collections, is drawn
 * again). */
static void receipt_new(char out[24])
{
	uint8_t b[8];
	hf_random_bytes(b, sizeof(b));
	uint64_t x = 0;
	memcpy(&x, b, sizeof(x));
	snprintf(out, 24, "R%012llu", (unsigned long long)(x % 1000000000000ULL));
}

/* A request id as a kiosk sends it: a UUID (8-4-4-4-12 hex digits), kept in lower case. */
static bool request_id_norm(const char *in, char out[37])
{
	if (!in || strlen(in) != 36)
		return false;
	for (size_t i = 0; i < 36; i++) {
		char ch = in[i];
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? ch != '-' : !strchr("0123456789abcdefABCDEF", ch))
			return false;
		out[i] = (char)(ch >= 'A' && ch <= 'F' ? ch - 'A' + 'a' : ch);
	}
	out[36] = '\0';
	return true;
}

/* The payment a request of this kiosk recorded (*payment_id 0 when none). */
static hf_err request_find(struct db *db, int64_t kiosk_id, const char *request_id, int64_t *payment_id)
{
	struct db_val v[] = {DB_I64(kiosk_id), db_str(request_id)};
	struct db_rows *r = NULL;
	*payment_id = 0;
	hf_err err = db_query(db, "SELECT payment_id FROM kiosk_collection_requests WHERE kiosk_id = ? AND request_id = ?",
			      v, 2, &r);
	if (!err && db_rows_next(r))
		*payment_id = db_rows_i64(r, 0);
	db_rows_free(r);
	return err;
}

/* Records the request first thing under the payment's lock, so that its key decides: HF_OK with *recorded
 * when this transaction holds the (kiosk, request_id) row now; HF_OK with t->replay_of when the same request
 * committed before (a retry, another instance, or the first copy that held the lock we waited for: a
 * duplicate key waits for the other transaction's outcome, so nothing slips between); HF_OK with neither
 * when the payment already has its collection (another request: the state checks say collected). A receipt
 * number that is taken is drawn again. */
static hf_err request_record(struct db *db, struct collect_tx *t, bool *recorded)
{
	*recorded = false;
	for (int attempt = 0; attempt < 5; attempt++) {
		receipt_new(t->receipt);
		struct db_val q[] = {DB_I64(t->c->p->kiosk_id), db_str(t->request_id), DB_I64(t->payment_id),
				     db_str(t->receipt)};
		hf_err err = db_exec(db,
				     "INSERT INTO kiosk_collection_requests (kiosk_id, request_id, payment_id, verification_id,"
				     " receipt, created_at) VALUES (?, ?, ?, 0, ?, UTC_TIMESTAMP(3))",
				     q, HF_ARRAY_LEN(q), NULL);
		if (!err) {
			*recorded = true;
			return HF_OK;
		}
		if (err != HF_ECONFLICT)
			return err;
		const char *key = db_conflict_key(db);
		if (strcmp(key, "PRIMARY") == 0)
			return request_find(db, t->c->p->kiosk_id, t->request_id, &t->replay_of);
		if (strcmp(key, "uq_kiosk_collection_requests_payment") == 0)
			return HF_OK;
		if (strcmp(key, "uq_kiosk_collection_requests_receipt") != 0)
			return HF_EDB;
	}
	hf_log(HF_LOG_ERROR, "core.payments", "msg=\"no free receipt number in 5 draws\"");
	return HF_EINTERNAL;
}

/* The answer to a recorded collection, the same every time it is asked for (POST replay, GET). */
static hf_err collection_answer(struct svc_call *c, const char *request_id, json_t **out)
{
	struct db_val v[] = {DB_I64(c->p->kiosk_id), db_str(request_id)};
	struct db_rows *r = NULL;
	hf_err err = db_query(c->db,
			      "SELECT p.id, i.ben_no, p.status, COALESCE(p.paid_amount, p.amount), p.currency, r.receipt,"
			      " COALESCE(p.collected_kiosk, ''), DATE_FORMAT(p.settled_at, " DB_TS_FMT "), c.programme_code"
			      " FROM kiosk_collection_requests r JOIN payments p ON p.id = r.payment_id JOIN payment_cycles c"
			      " ON c.id = p.cycle_id JOIN individuals i ON i.id = p.individual_id WHERE r.kiosk_id = ? AND"
			      " r.request_id = ?",
			      v, 2, &r);
	if (err)
		return err;
	if (!db_rows_next(r)) {
		db_rows_free(r);
		svc_say(c, "No collection was recorded for this request.");
		return HF_ENOTFOUND;
	}
	char check[BIOMETRIC_RECEIPT_CHECK_LEN + 1];
	biometric_receipt_check(db_rows_str(r, 5), check);
	*out = json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:s, s:s}", "payment", db_rows_str(r, 0), "ben_no",
			 db_rows_str(r, 1), "status", db_rows_str(r, 2), "amount", (json_int_t)db_rows_i64(r, 3),
			 "currency", db_rows_str(r, 4), "receipt", db_rows_str(r, 5), "receipt_check", check, "kiosk",
			 db_rows_str(r, 6), "collected_at", db_rows_str(r, 7), "programme", db_rows_str(r, 8));
	db_rows_free(r);
	return HF_OK;
}

/* The beneficiary's SMS receipt, queued in the collection's transaction: sent exactly when it committed. */
static hf_err collect_sms(struct db *db, struct collect_tx *t)
{
	char money[HF_MONEY_STR_MAX], when[32];
	time_t now = time(NULL);
	struct tm tm;
	HF_ASSERT(gmtime_r(&now, &tm) != NULL);
	HF_ASSERT(strftime(when, sizeof(when), "%Y-%m-%d %H:%M UTC", &tm) > 0);
	hf_money_display(t->amount, t->currency, money);
	json_t *params = json_pack("{s:s, s:s, s:s, s:s, s:s}", "amount", money, "currency", t->currency, "receipt",
				   t->receipt, "pay_point", t->c->p->pay_point, "time", when);
	bool queued = false;
	hf_err err = outbox_to_person(db, 0, t->individual_id, "kiosk_receipt", params, &queued);
	json_decref(params);
	return err;
}

static hf_err collect_body(struct db *db, void *vctx)
{
	struct collect_tx *t = vctx;
	t->replay_of = 0;
	t->bad_token = false;
	t->reason = NULL;
	struct db_val v[] = {DB_I64(t->payment_id)};
	struct db_rows *r = NULL;
	/* The row lock is the whole story of "exactly once": a second kiosk waits here, then sees collected. */
	hf_err err = db_query(db,
			      "SELECT p.status, p.individual_id, COALESCE(p.pay_point, ''), p.amount, p.currency,"
			      " COALESCE(p.collected_kiosk, ''), IF(p.settled_at IS NULL, '', DATE_FORMAT(p.settled_at, "
			      DB_TS_FMT ")), c.status, c.pay_from <= UTC_DATE() AND c.pay_until >= UTC_DATE(), c.code,"
			      " c.id, c.programme_code, (SELECT e.status FROM enrolments e WHERE e.id = p.enrolment_id) FROM"
			      " payments p JOIN payment_cycles c ON c.id = p.cycle_id WHERE p.id = ? FOR UPDATE",
			      v, 1, &r);
	if (err)
		return err;
	if (!db_rows_next(r) || db_rows_i64(r, 1) != t->individual_id) {
		db_rows_free(r);
		snprintf(t->c->msg, t->c->msg_cap, "No such payment for this beneficiary.");
		return HF_ENOTFOUND;
	}
	/* The same request sent again (a timeout, another core instance) while the first was in flight is
	 * answered, not checked again: the request's key decides, before anything else. */
	bool recorded = false;
	err = request_record(db, t, &recorded);
	if (err || t->replay_of) {
		db_rows_free(r);
		return err;
	}
	hf_strlcpy(t->status, db_rows_str(r, 0), sizeof(t->status));
	hf_strlcpy(t->where, db_rows_str(r, 5), sizeof(t->where));
	hf_strlcpy(t->when, db_rows_str(r, 6), sizeof(t->when));
	bool here = strcmp(db_rows_str(r, 2), t->c->p->pay_point) == 0;
	bool open_cycle = strcmp(db_rows_str(r, 7), "approved") == 0, in_window = db_rows_i64(r, 8) != 0;
	t->amount = db_rows_i64(r, 3);
	hf_strlcpy(t->currency, db_rows_str(r, 4), sizeof(t->currency));
	hf_strlcpy(t->cycle, db_rows_str(r, 9), sizeof(t->cycle));
	int64_t cycle_id = db_rows_i64(r, 10);
	char programme[33], enrolment[16];
	hf_strlcpy(programme, db_rows_str(r, 11), sizeof(programme));
	hf_strlcpy(enrolment, db_rows_str(r, 12), sizeof(enrolment));
	db_rows_free(r);
	if (!here) {
		snprintf(t->c->msg, t->c->msg_cap, "This payment is paid at another pay point.");
		t->reason = "other_pay_point";
		return HF_EFORBIDDEN;
	}
	/* Who is standing there is proven by a token this kiosk got for this person (biometric.c). */
	err = biometric_token_check(db, t->c->p->kiosk_id, t->individual_id, t->token, &t->verification_id, t->method);
	if (err == HF_EAUTH) {
		t->bad_token = true;
		t->reason = "verification_not_valid";
		hf_ferrs_add(t->c->fe, "verification", "not_valid",
			     "not a verification of this beneficiary at this terminal, or expired: verify again");
		snprintf(t->c->msg, t->c->msg_cap, "The verification is not valid for this beneficiary here: verify again.");
		return HF_EINVAL;
	}
	if (err)
		return err;
	if (strcmp(t->status, "collected") == 0) {
		snprintf(t->c->msg, t->c->msg_cap, "This payment was collected already, at kiosk %s on %s.", t->where,
			 t->when);
		t->reason = "already_collected";
		return HF_ECONFLICT;
	}
	if (strcmp(t->status, "available") != 0 || !open_cycle) {
		snprintf(t->c->msg, t->c->msg_cap, "This payment cannot be collected: it is %s.", t->status);
		t->reason = "not_collectable";
		return HF_ECONFLICT;
	}
	if (strcmp(enrolment, "enrolled") != 0) {
		/* Died, suspended or exited since the payroll was approved: held for a payment officer. */
		snprintf(t->c->msg, t->c->msg_cap, "This payment is on hold: the beneficiary's enrolment is %s.", enrolment);
		t->reason = "on_hold";
		return HF_ECONFLICT;
	}
	if (!in_window) {
		snprintf(t->c->msg, t->c->msg_cap, "This payment can be collected only between its pay dates.");
		t->reason = "outside_pay_dates";
		return HF_ECONFLICT;
	}
	if (!recorded) { /* the payment has a collection of another request, yet is not collected: our bug */
		hf_log(HF_LOG_ERROR, "core.payments", "msg=\"collection request without a collected payment\" payment=%lld",
		       (long long)t->payment_id);
		return HF_EINTERNAL;
	}
	struct db_val q[] = {DB_I64(t->verification_id), DB_I64(t->c->p->kiosk_id), db_str(t->request_id)};
	err = db_exec(db, "UPDATE kiosk_collection_requests SET verification_id = ? WHERE kiosk_id = ? AND request_id = ?",
		      q, HF_ARRAY_LEN(q), NULL);
	if (err)
		return err;
	struct db_val w[] = {db_str(t->receipt), DB_I64(t->amount), db_str(t->c->p->name), db_str(t->method),
			     DB_I64(t->payment_id)};
	uint64_t n = 0;
	err = db_exec(db,
		      "UPDATE payments SET status = 'collected', receipt = ?, paid_amount = ?, collected_kiosk = ?,"
		      " verification = ?, settled_at = UTC_TIMESTAMP(3), version = version + 1, updated_at ="
		      " UTC_TIMESTAMP(3) WHERE id = ? AND status = 'available'",
		      w, HF_ARRAY_LEN(w), &n);
	if (!err && n != 1)
		err = HF_ECONFLICT;
	char clearing[LEDGER_CODE_MAX + 1], paid[LEDGER_CODE_MAX + 1], key[64];
	snprintf(clearing, sizeof(clearing), "clearing:%s", t->cycle);
	snprintf(paid, sizeof(paid), "paid:%s", programme);
	snprintf(key, sizeof(key), "collect:%lld", (long long)t->payment_id);
	struct ledger_leg legs[] = {{clearing, -t->amount}, {paid, t->amount}};
	struct ledger_posting p = {key, "collect", t->currency, cycle_id, t->payment_id, "collected at a kiosk",
				   t->c->p->actor, legs, 2};
	bool posted = false;
	if (!err)
		err = ledger_post(db, &p, &posted);
	if (!err && !posted)
		err = HF_ECONFLICT;
	char detail[160];
	snprintf(detail, sizeof(detail), "kiosk %s, %s, receipt %s", t->c->p->name, t->method, t->receipt);
	struct db_val e[] = {DB_I64(db_new_id()), DB_I64(t->payment_id), db_str(t->c->p->actor), db_str(detail)};
	if (!err)
		err = db_exec(db,
			      "INSERT INTO payment_events (id, payment_id, from_status, to_status, at, actor, detail) VALUES"
			      " (?, ?, 'available', 'collected', UTC_TIMESTAMP(3), ?, ?)",
			      e, 4, NULL);
	char rec[24], vid[24];
	snprintf(rec, sizeof(rec), "%lld", (long long)t->payment_id);
	snprintf(vid, sizeof(vid), "%lld", (long long)t->verification_id);
	json_t *d = json_pack("{s:s, s:s, s:I, s:s, s:s}", "verification", t->method, "receipt", t->receipt, "amount",
			      (json_int_t)t->amount, "verification_id", vid, "request_id", t->request_id);
	struct audit_event ev = {"payment.collect", "payment", rec, "ok", NULL, NULL, d};
	if (!err)
		err = audit_append(db, &t->c->p->audit, &ev);
	json_decref(d);
	if (!err)
		err = collect_sms(db, t);
	return err;
}

hf_err payments_collect(struct svc_call *c, json_t *body, json_t **out, const char **reason)
{
	static const char *const allowed[] = {"payment", "ben_no", "verification", "request_id", NULL};
	hf_json_only_fields(body, allowed, "", c->fe);
	struct collect_tx t = {.c = c};
	const char *pid = NULL, *ben = NULL, *rid = NULL;
	if (hf_json_get_str(body, "", "payment", true, 1, 20, c->fe, &pid) && hf_parse_i64(pid, 1, INT64_MAX, &t.payment_id))
		hf_ferrs_add(c->fe, "payment", "format", "a payment number");
	(void)hf_json_get_str(body, "", "ben_no", true, BENNO_LEN, BENNO_LEN, c->fe, &ben);
	(void)hf_json_get_str(body, "", "verification", true, 1, 64, c->fe, &t.token);
	if (hf_json_get_str(body, "", "request_id", true, 36, 36, c->fe, &rid) && !request_id_norm(rid, t.request_id))
		hf_ferrs_add(c->fe, "request_id", "format", "a UUID (8-4-4-4-12 hexadecimal digits)");
	if (hf_ferrs_any(c->fe))
		return HF_EINVAL;
	hf_err err = biometric_pay_point_only(c);
	if (err)
		return err;
	err = svc_individual(c, ben, &t.individual_id);
	/* Asked before: the recorded answer, whatever happened since (nothing is done twice). */
	int64_t done = 0;
	if (!err)
		err = request_find(c->db, c->p->kiosk_id, t.request_id, &done);
	if (!err && !done)
		err = db_tx(c->db, collect_body, &t);
	if (!err && t.replay_of)
		done = t.replay_of;
	if (!err && done && done != t.payment_id) {
		svc_say(c, "This request_id was used already, for another payment.");
		t.reason = "request_id_reused";
		err = HF_ECONFLICT;
	}
	if (err && t.reason)
		*reason = t.reason;
	if (err == HF_ECONFLICT || err == HF_EFORBIDDEN || err == HF_ENOTFOUND || (err == HF_EINVAL && t.bad_token)) {
		/* A refused payout is worth a trace: who tried, where, and why (no personal data). */
		json_t *d = json_pack("{s:s, s:s}", "reason", t.bad_token ? "verification" : hf_err_name(err), "message",
				      c->msg);
		struct audit_event ev = {"payment.collect", "payment", pid, "denied", NULL, NULL, d};
		if (audit_record(c->db, &c->p->audit, &ev) != HF_OK)
			hf_log(HF_LOG_WARN, "core.payments", "msg=\"cannot audit a refused collection\"");
		json_decref(d);
	}
	if (err)
		return err;
	return collection_answer(c, t.request_id, out);
}

hf_err payments_collection_get(struct svc_call *c, const char *request_id, json_t **out)
{
	char rid[37];
	hf_err err = biometric_pay_point_only(c);
	if (err)
		return err;
	if (!request_id_norm(request_id, rid)) {
		svc_say(c, "No collection was recorded for this request.");
		return HF_ENOTFOUND;
	}
	return collection_answer(c, rid, out);
}

/* ------------------------------------------------------------------ the public receipt check */

static hf_err html_text(struct hf_buf *b, const char *s)
{
	hf_err err = HF_OK;
	for (; *s && !err; s++) {
		switch (*s) {
		case '<': err = hf_buf_append_str(b, "&lt;"); break;
		case '>': err = hf_buf_append_str(b, "&gt;"); break;
		case '&': err = hf_buf_append_str(b, "&amp;"); break;
		case '"': err = hf_buf_append_str(b, "&quot;"); break;
		case '\'': err = hf_buf_append_str(b, "&#39;"); break;
		default: err = hf_buf_append(b, s, 1);
		}
	}
	return err;
}

static hf_err receipt_html(const json_t *v, struct hf_buf *b)
{
	bool valid = json_is_true(json_object_get(v, "valid"));
	hf_err err = hf_buf_append_str(b, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
					  "<meta name=\"viewport\" content=\"width=device-width\"><title>Hifadhi receipt"
					  "</title></head><body>\n");
	if (!err && !valid)
		err = hf_buf_append_str(b, "<h1>Not a valid receipt</h1>\n<p>This receipt is not known to Hifadhi, or"
					   " its check code does not match. Do not accept it as proof of payment.</p>\n");
	if (!err && valid) {
		static const char *const rows[][2] = {{"receipt", "Receipt"},	   {"amount_display", "Amount"},
						      {"collected_at", "Collected"}, {"pay_point", "Pay point"},
						      {"kiosk", "Kiosk"}};
		err = hf_buf_append_str(b, "<h1>Valid receipt</h1>\n<p>Hifadhi recorded this payment.</p>\n<table>\n");
		for (size_t i = 0; !err && i < HF_ARRAY_LEN(rows); i++) {
			const char *val = json_string_value(json_object_get(v, rows[i][0]));
			err = hf_buf_appendf(b, "<tr><th>%s</th><td>", rows[i][1]);
			if (!err)
				err = html_text(b, val ? val : "-");
			if (!err)
				err = hf_buf_append_str(b, "</td></tr>\n");
		}
		if (!err)
			err = hf_buf_append_str(b, "</table>\n");
	}
	if (!err)
		err = hf_buf_append_str(b, "</body></html>\n");
	return err;
}

/* What may be a receipt number: our R + 12 digits, or an offline kiosk's K-<kiosk>-<n>. */
static bool receipt_shape_ok(const char *s)
{
	size_t n = strlen(s);
	if (n < 2 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

hf_err payments_receipt_page(struct db *db, const char *receipt, const char *check, bool as_json, struct hf_buf *body,
			     const char **content_type)
{
	json_t *v = NULL;
	hf_err err = HF_OK;
	/* The check code is verified before the database is asked anything: guessing receipts costs nothing
	 * but a MAC computation and learns nothing. */
	if (receipt && check && receipt_shape_ok(receipt) && biometric_receipt_check_ok(receipt, check)) {
		struct db_val q[] = {db_str(receipt)};
		struct db_rows *r = NULL;
		err = db_query(db,
			       "SELECT COALESCE(p.paid_amount, p.amount), p.currency, DATE_FORMAT(p.settled_at, " DB_TS_FMT
			       "), COALESCE(p.pay_point, ''), COALESCE(p.collected_kiosk, '') FROM payments p WHERE"
			       " p.receipt = ? AND p.channel = 'kiosk' AND p.status = 'collected' LIMIT 2",
			       q, 1, &r);
		if (err)
			return err;
		if (db_rows_next(r) && db_rows_count(r) == 1) {
			char money[HF_MONEY_STR_MAX], shown[HF_MONEY_STR_MAX + 8];
			hf_money_display(db_rows_i64(r, 0), db_rows_str(r, 1), money);
			snprintf(shown, sizeof(shown), "%s %s", db_rows_str(r, 1), money);
			v = json_pack("{s:b, s:s, s:I, s:s, s:s, s:s, s:s, s:s}", "valid", 1, "receipt", receipt, "amount",
				      (json_int_t)db_rows_i64(r, 0), "currency", db_rows_str(r, 1), "collected_at",
				      db_rows_str(r, 2), "pay_point", db_rows_str(r, 3), "kiosk", db_rows_str(r, 4),
				      "amount_display", shown);
		}
		db_rows_free(r);
	}
	if (!v)
		v = json_pack("{s:b}", "valid", 0);
	if (as_json) {
		json_object_del(v, "amount_display");
		*content_type = "application/json";
		err = hf_json_dump(v, body);
	} else {
		*content_type = "text/html; charset=utf-8";
		err = receipt_html(v, body);
	}
	json_decref(v);
	return err;
}

/* ------------------------------------------------------------------ expiry */

struct expire_tx {
	int64_t now_s;
	int n;
};

static hf_err expire_body(struct db *db, void *vctx)
{
	struct expire_tx *t = vctx;
	t->n = 0;
	struct db_val v[] = {DB_I64(t->now_s)};
	struct db_rows *r = NULL;
	hf_err err = db_query(db,
			      "SELECT p.id, p.amount, p.currency, c.code, c.id, c.programme_code FROM payments p JOIN"
			      " payment_cycles c ON c.id = p.cycle_id WHERE p.status = 'available' AND c.status = 'approved'"
			      " AND c.pay_until < DATE(FROM_UNIXTIME(?)) ORDER BY p.id LIMIT 500 FOR UPDATE SKIP LOCKED",
			      v, 1, &r);
	if (err)
		return err;
	static const struct audit_actor SYSTEM = {"system", "payment-expiry", "local", ""};
	while (!err && db_rows_next(r)) {
		int64_t id = db_rows_i64(r, 0), amount = db_rows_i64(r, 1);
		char clearing[LEDGER_CODE_MAX + 1], ret[LEDGER_CODE_MAX + 1], key[64];
		snprintf(clearing, sizeof(clearing), "clearing:%s", db_rows_str(r, 3));
		snprintf(ret, sizeof(ret), "returned:%s", db_rows_str(r, 5));
		snprintf(key, sizeof(key), "expire:%lld", (long long)id);
		struct ledger_leg legs[] = {{clearing, -amount}, {ret, amount}};
		struct ledger_posting p = {key, "expire", db_rows_str(r, 2), db_rows_i64(r, 4), id, "not collected in time",
					   "system", legs, 2};
		bool posted = false;
		struct db_val w[] = {DB_I64(id)};
		err = db_exec(db,
			      "UPDATE payments SET status = 'expired', settled_at = UTC_TIMESTAMP(3), version = version + 1,"
			      " updated_at = UTC_TIMESTAMP(3) WHERE id = ?",
			      w, 1, NULL);
		if (!err)
			err = ledger_post(db, &p, &posted);
		struct db_val e[] = {DB_I64(db_new_id()), DB_I64(id)};
		if (!err)
			err = db_exec(db,
				      "INSERT INTO payment_events (id, payment_id, from_status, to_status, at, actor, detail)"
				      " VALUES (?, ?, 'available', 'expired', UTC_TIMESTAMP(3), 'system', 'not collected by"
				      " pay_until')",
				      e, 2, NULL);
		t->n++;
	}
	db_rows_free(r);
	if (!err && t->n) {
		json_t *d = json_pack("{s:i}", "expired", t->n);
		struct audit_event ev = {"payment.expire", "payment", "", "ok", NULL, NULL, d};
		err = audit_append(db, &SYSTEM, &ev);
		json_decref(d);
	}
	return err;
}

hf_err payments_expire(struct db *db, int64_t now_ms, int *expired)
{
	*expired = 0;
	struct expire_tx t = {.now_s = now_ms / 1000};
	hf_err err = HF_OK;
	for (int i = 0; i < 10000; i++) {
		err = db_tx(db, expire_body, &t);
		if (err || t.n == 0)
			break;
		*expired += t.n;
	}
	return err;
}
