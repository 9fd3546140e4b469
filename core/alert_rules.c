/* alert_rules.c - whole-picture discrepancy rules over the approved cycles (see alert_rules.h).
 *
 * Each rule is one set-wise SELECT that finds what is wrong now, read in keyset pages of ALERT_RULES_BATCH
 * findings; each page is raised in one short transaction through alerts_raise, whose dedupe key ("<rule>:
 * <subject>") makes a rerun raise nothing new. The SELECTs already leave out findings whose alert exists,
 * so a rerun over a quiet system reads little and writes nothing. Times are compared with the caller's
 * now_ms, never the database clock, so tests and drills can scan "as if" at a later moment.
 *
 * Subjects: "payment:<id>" for a payment's own problem; "cycle:<id>:phone:<hex>" and "cycle:<id>:nid:<hex>"
 * for payees sharing a phone or national ID in a cycle. The hex is the blind index (a keyed hash, not the
 * number); it names the subject only and is kept out of the details, which list payment ids and a count.
 */
#include "hf_base.h"
#include "alert_rules.h"

#include "alerts.h"
#include "hf_log.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALERT_RULES_BATCH 200 /* findings per page and transaction: the LIMIT of every rule's SQL */
#define SHARED_IDS_MAX 50 /* payment ids listed in a shared_* alert's details (count has them all) */

static struct {
	int pending_alert_s;
	int uncollected_days;
} R = {3600, 7};

void alert_rules_configure(int pending_alert_s, int uncollected_days)
{
	HF_ASSERT(pending_alert_s > 0 && uncollected_days > 0);
	R.pending_alert_s = pending_alert_s;
	R.uncollected_days = uncollected_days;
}

struct finding {
	int64_t cycle_id, payment_id;
	char subject[100];
	json_t *details; /* owned */
};

struct page {
	struct finding f[ALERT_RULES_BATCH];
	size_t n;
	/* keyset: the last payment id, or the last (cycle, hex) group */
	int64_t after_id;
	char after_hex[40];
};

static void page_clear(struct page *pg)
{
	for (size_t i = 0; i < pg->n; i++)
		json_decref(pg->f[i].details);
	pg->n = 0;
}

static struct finding *page_add(struct page *pg, int64_t cycle_id, int64_t payment_id)
{
	HF_ASSERT(pg->n < ALERT_RULES_BATCH);
	struct finding *f = &pg->f[pg->n++];
	f->cycle_id = cycle_id;
	f->payment_id = payment_id;
	snprintf(f->subject, sizeof(f->subject), "payment:%lld", (long long)payment_id);
	return f;
}

static json_t *id_str(int64_t id)
{
	char s[24];
	snprintf(s, sizeof(s), "%lld", (long long)id);
	return json_string(s);
}

/* ---- the rules: each fills one page after the keyset ------------------------------------------------ */

/* Not yet raised for this payment: the alert's dedupe key is "<rule>:payment:<id>". */
#define NOT_RAISED(rule) " AND NOT EXISTS (SELECT 1 FROM payment_alerts a WHERE a.dedupe_key = CONCAT('" rule ":payment:', p.id))"
#define APPROVED_CYCLES " FROM payments p JOIN payment_cycles c ON c.id = p.cycle_id WHERE c.status = 'approved'"

static hf_err find_pending(struct db *db, int64_t now_ms, struct page *pg)
{
	struct db_val v[] = {DB_I64(now_ms), DB_I64(now_ms), DB_I64(R.pending_alert_s), DB_I64(pg->after_id)};
	struct db_rows *r = NULL;
	hf_err err = db_query(db,
			      "SELECT p.id, p.cycle_id, p.status, TIMESTAMPDIFF(SECOND, p.sent_at, FROM_UNIXTIME(? / 1000)),"
			      " COALESCE(p.provider, ''), p.amount, p.currency" APPROVED_CYCLES
			      " AND p.status IN ('sending', 'pending') AND p.sent_at < FROM_UNIXTIME(? / 1000) - INTERVAL ?"
			      " SECOND AND p.id > ?" NOT_RAISED(ALERT_PENDING_TOO_LONG) " ORDER BY p.id LIMIT 200",
			      v, HF_ARRAY_LEN(v), &r);
	while (!err && db_rows_next(r)) {
		struct finding *f = page_add(pg, db_rows_i64(r, 1), db_rows_i64(r, 0));
		f->details = json_pack("{s:o, s:s, s:I, s:s, s:I, s:s}", "payment", id_str(f->payment_id), "status",
				       db_rows_str(r, 2), "pending_s", (json_int_t)db_rows_i64(r, 3), "provider",
				       db_rows_str(r, 4), "amount", (json_int_t)db_rows_i64(r, 5), "currency",
				       db_rows_str(r, 6));
		pg->after_id = f->payment_id;
	}
	db_rows_free(r);
	return err;
}

static hf_err find_uncollected(struct db *db, int64_t now_ms, struct page *pg)
{
	struct db_val v[] = {DB_I64(now_ms), DB_I64(R.uncollected_days), DB_I64(now_ms), DB_I64(pg->after_id)};
	struct db_rows *r = NULL;
	hf_err err = db_query(db,
			      "SELECT p.id, p.cycle_id, COALESCE(p.pay_point, ''), DATEDIFF(FROM_UNIXTIME(? / 1000), c.pay_from),"
			      " p.amount, p.currency" APPROVED_CYCLES
			      " AND p.status = 'available' AND c.pay_from + INTERVAL ? DAY < FROM_UNIXTIME(? / 1000) AND p.id > ?"
			      NOT_RAISED(ALERT_UNCOLLECTED) " ORDER BY p.id LIMIT 200",
			      v, HF_ARRAY_LEN(v), &r);
	while (!err && db_rows_next(r)) {
		struct finding *f = page_add(pg, db_rows_i64(r, 1), db_rows_i64(r, 0));
		f->details = json_pack("{s:o, s:s, s:I, s:I, s:s}", "payment", id_str(f->payment_id), "pay_point",
				       db_rows_str(r, 2), "days_since_pay_from", (json_int_t)db_rows_i64(r, 3), "amount",
				       (json_int_t)db_rows_i64(r, 4), "currency", db_rows_str(r, 5));
		pg->after_id = f->payment_id;
	}
	db_rows_free(r);
	return err;
}

static hf_err find_ineligible(struct db *db, int64_t now_ms, struct page *pg)
{
	(void)now_ms; /* the enrolment's status now is what counts */
	struct db_val v[] = {DB_I64(pg->after_id)};
	struct db_rows *r = NULL;
	hf_err err = db_query(db,
			      "SELECT p.id, p.cycle_id, p.status, e.status FROM payments p JOIN payment_cycles c ON c.id ="
			      " p.cycle_id JOIN enrolments e ON e.id = p.enrolment_id WHERE c.status = 'approved' AND"
			      " p.status IN ('approved', 'available', 'sending', 'pending') AND e.status IN ('suspended',"
			      " 'exited', 'deceased', 'duplicate') AND p.id > ?" NOT_RAISED(ALERT_PAYEE_INELIGIBLE)
			      " ORDER BY p.id LIMIT 200",
			      v, HF_ARRAY_LEN(v), &r);
	while (!err && db_rows_next(r)) {
		struct finding *f = page_add(pg, db_rows_i64(r, 1), db_rows_i64(r, 0));
		f->details = json_pack("{s:o, s:s, s:s}", "payment", id_str(f->payment_id), "payment_status",
				       db_rows_str(r, 2), "enrolment_status", db_rows_str(r, 3));
		pg->after_id = f->payment_id;
	}
	db_rows_free(r);
	return err;
}

/* Payees of one approved cycle sharing a blind index (phone or national ID), two or more payments (not
 * cancelled) per group, groups in (cycle, hex) order after the keyset, not raised yet. */
#define SHARED_SQL(col, rule, tag)                                                                            \
	"SELECT g.cycle_id, g.hex, g.n, g.ids FROM (SELECT p.cycle_id, LOWER(HEX(i." col ")) AS hex, COUNT(*) AS" \
	" n, GROUP_CONCAT(p.id ORDER BY p.id) AS ids FROM payments p JOIN payment_cycles c ON c.id = p.cycle_id"   \
	" JOIN individuals i ON i.id = p.individual_id WHERE c.status = 'approved' AND i." col " IS NOT NULL AND"  \
	" p.status <> 'cancelled' GROUP BY p.cycle_id, i." col " HAVING COUNT(*) > 1) g WHERE (g.cycle_id > ? OR" \
	" (g.cycle_id = ? AND g.hex > ?)) AND NOT EXISTS (SELECT 1 FROM payment_alerts a WHERE a.dedupe_key ="    \
	" CONCAT('" rule ":cycle:', g.cycle_id, ':" tag ":', g.hex)) ORDER BY g.cycle_id, g.hex LIMIT 200"

static hf_err find_shared(struct db *db, bool nid, struct page *pg)
{
	struct db_val v[] = {DB_I64(pg->after_id), DB_I64(pg->after_id), db_str(pg->after_hex)};
	struct db_rows *r = NULL;
	hf_err err = db_query(db,
			      nid ? SHARED_SQL("nid_bidx", ALERT_SHARED_NATIONAL_ID, "nid")
				  : SHARED_SQL("phone_bidx", ALERT_SHARED_PHONE, "phone"),
			      v, HF_ARRAY_LEN(v), &r);
	while (!err && db_rows_next(r)) {
		HF_ASSERT(pg->n < ALERT_RULES_BATCH);
		struct finding *f = &pg->f[pg->n++];
		f->cycle_id = db_rows_i64(r, 0);
		f->payment_id = 0;
		snprintf(f->subject, sizeof(f->subject), "cycle:%lld:%s:%.32s", (long long)f->cycle_id,
			 nid ? "nid" : "phone", db_rows_str(r, 1));
		json_t *ids = json_array();
		const char *s = db_rows_str(r, 3);
		while (*s && json_array_size(ids) < SHARED_IDS_MAX) {
			size_t n = strcspn(s, ",");
			json_array_append_new(ids, json_stringn(s, n));
			s += n + (s[n] == ',');
		}
		f->details = json_pack("{s:o, s:I}", "payments", ids, "count", (json_int_t)db_rows_i64(r, 2));
		pg->after_id = f->cycle_id;
		hf_strlcpy(pg->after_hex, db_rows_str(r, 1), sizeof(pg->after_hex));
	}
	db_rows_free(r);
	return err;
}

static hf_err find_shared_phone(struct db *db, int64_t now_ms, struct page *pg)
{
	(void)now_ms;
	return find_shared(db, false, pg);
}

static hf_err find_shared_nid(struct db *db, int64_t now_ms, struct page *pg)
{
	(void)now_ms;
	return find_shared(db, true, pg);
}

static const struct rule {
	const char *name;
	const char *severity;
	hf_err (*find)(struct db *db, int64_t now_ms, struct page *pg);
} RULES[] = {
	{ALERT_PENDING_TOO_LONG, "warning", find_pending},
	{ALERT_UNCOLLECTED, "info", find_uncollected},
	{ALERT_PAYEE_INELIGIBLE, "critical", find_ineligible},
	{ALERT_SHARED_PHONE, "warning", find_shared_phone},
	{ALERT_SHARED_NATIONAL_ID, "critical", find_shared_nid},
};

/* ---- raising -------------------------------------------------------------------------------------------- */

struct raise_tx {
	const struct rule *rule;
	const struct page *pg;
	int raised;
};

static hf_err raise_body(struct db *db, void *vctx)
{
	struct raise_tx *t = vctx;
	t->raised = 0;
	for (size_t i = 0; i < t->pg->n; i++) {
		const struct finding *f = &t->pg->f[i];
		bool raised = false;
		hf_err err = alerts_raise(db, t->rule->name, t->rule->severity, f->subject, f->cycle_id, f->payment_id,
					  f->details, &raised);
		if (err)
			return err;
		t->raised += raised;
	}
	return HF_OK;
}

static hf_err rule_run(struct db *db, const struct rule *rule, int64_t now_ms, int *raised)
{
	struct page *pg = hf_xcalloc(1, sizeof(*pg));
	hf_err err = HF_OK;
	for (;;) {
		page_clear(pg);
		err = rule->find(db, now_ms, pg);
		if (err || !pg->n)
			break;
		struct raise_tx t = {rule, pg, 0};
		err = db_tx(db, raise_body, &t);
		if (err)
			break;
		*raised += t.raised;
		if (pg->n < ALERT_RULES_BATCH)
			break;
	}
	page_clear(pg);
	free(pg);
	return err;
}

hf_err alert_rules_scan(struct db *db, int64_t now_ms, struct alert_scan_result *res)
{
	memset(res, 0, sizeof(*res));
	int64_t t0 = hf_mono_us();
	hf_err first = HF_OK;
	for (size_t i = 0; i < HF_ARRAY_LEN(RULES); i++) {
		int raised = 0;
		hf_err err = rule_run(db, &RULES[i], now_ms, &raised);
		res->raised += raised;
		if (err) {
			hf_log(HF_LOG_WARN, "core.alerts", "msg=\"alert rule failed; the others still run\" rule=%s err=%s",
			       RULES[i].name, hf_err_name(err));
			if (!first)
				first = err;
		}
	}
	res->seconds = (double)(hf_mono_us() - t0) / 1e6;
	return first;
}
