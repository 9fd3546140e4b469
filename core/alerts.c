/* alerts.c - payment discrepancy alerts (see alerts.h). */
#include "hf_base.h"
#include "alerts.h"
#include "audit.h"
#include "hf_log.h"
#include "outbox.h"

#include <stdio.h>
#include <string.h>

static const char *const STATUSES[] = {"open", "acknowledged", "resolved", NULL};

/* At most one SMS per rule and cycle an hour to the payment officers: a burst of alerts (a provider sending
 * a thousand unknown callbacks) must not become a thousand texts. */
static hf_err maybe_sms(struct db *db, int64_t id, const char *rule, const char *severity, int64_t cycle_id)
{
	struct db_val v[] = {db_str(rule), cycle_id ? DB_I64(cycle_id) : DB_NULLV};
	int64_t recent = 0;
	hf_err err = db_query_i64(db,
				  "SELECT COUNT(*) FROM payment_alerts WHERE rule = ? AND cycle_id <=> ? AND sms_queued = 1 AND"
				  " raised_at > UTC_TIMESTAMP(3) - INTERVAL 1 HOUR",
				  v, 2, &recent);
	if (err)
		return err;
	if (recent)
		return HF_OK;
	char cycle[24] = "";
	if (cycle_id)
		snprintf(cycle, sizeof(cycle), "%lld", (long long)cycle_id);
	json_t *params = json_pack("{s:s, s:s, s:s}", "rule", rule, "severity", severity, "cycle_id", cycle);
	if (cycle_id) {
		struct db_val w[] = {DB_I64(cycle_id)};
		struct db_rows *r = NULL;
		if (db_query(db, "SELECT code FROM payment_cycles WHERE id = ?", w, 1, &r) == HF_OK) {
			if (db_rows_next(r))
				json_object_set_new(params, "cycle", json_string(db_rows_str(r, 0)));
			db_rows_free(r);
		}
	}
	int n = 0;
	err = outbox_to_role(db, "payment_officer", "staff_payment_alert", params, &n);
	json_decref(params);
	if (!err && n > 0) {
		struct db_val w[] = {DB_I64(id)};
		err = db_exec(db, "UPDATE payment_alerts SET sms_queued = 1 WHERE id = ?", w, 1, NULL);
	}
	return err;
}

hf_err alerts_raise(struct db *db, const char *rule, const char *severity, const char *subject, int64_t cycle_id,
		    int64_t payment_id, json_t *details, bool *raised)
{
	*raised = false;
	char key[121];
	if ((size_t)snprintf(key, sizeof(key), "%s:%s", rule, subject) >= sizeof(key))
		return HF_EINTERNAL;
	int64_t id = db_new_id();
	char *d = json_dumps(details, JSON_COMPACT | JSON_SORT_KEYS);
	struct db_val v[] = {DB_I64(id),
			     db_str(rule),
			     db_str(severity),
			     db_str(key),
			     cycle_id ? DB_I64(cycle_id) : DB_NULLV,
			     payment_id ? DB_I64(payment_id) : DB_NULLV,
			     db_str(d ? d : "{}")};
	uint64_t n = 0;
	/* INSERT IGNORE would also swallow other errors; the dedupe key is the only unique one besides the id. */
	hf_err err = db_exec(db,
			     "INSERT INTO payment_alerts (id, rule, severity, dedupe_key, cycle_id, payment_id, details, status,"
			     " raised_at) SELECT ?, ?, ?, ?, ?, ?, ?, 'open', UTC_TIMESTAMP(3) FROM DUAL WHERE NOT EXISTS"
			     " (SELECT 1 FROM payment_alerts WHERE dedupe_key = ?)",
			     (struct db_val[]){v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[3]}, 8, &n);
	free(d);
	if (err == HF_ECONFLICT && strcmp(db_conflict_key(db), "uq_payment_alerts_dedupe") == 0)
		return HF_OK; /* raised meanwhile by another transaction */
	if (err || n == 0)
		return err;
	*raised = true;
	hf_log(HF_LOG_WARN, "core.alerts", "msg=\"payment alert\" rule=%s severity=%s alert=%lld", rule, severity,
	       (long long)id);
	static const struct audit_actor SYSTEM = {"system", "payment-alerts", "local", ""};
	char rec[24];
	snprintf(rec, sizeof(rec), "%lld", (long long)id);
	json_t *ad = json_pack("{s:s, s:s}", "rule", rule, "severity", severity);
	struct audit_event ev = {"payment_alert.raise", "payment_alert", rec, "ok", NULL, NULL, ad};
	err = audit_append(db, &SYSTEM, &ev);
	json_decref(ad);
	return err ? err : maybe_sms(db, id, rule, severity, cycle_id);
}

#define ALERT_COLS                                                                                             \
	"a.id, a.rule, a.severity, a.status, a.details, DATE_FORMAT(a.raised_at, " DB_TS_FMT "),"                \
	" IF(a.acknowledged_at IS NULL, NULL, DATE_FORMAT(a.acknowledged_at, " DB_TS_FMT ")), a.acknowledged_by," \
	" IF(a.resolved_at IS NULL, NULL, DATE_FORMAT(a.resolved_at, " DB_TS_FMT ")), a.resolved_by,"            \
	" a.resolution, COALESCE(c.code, ''), a.payment_id, a.version, a.sms_queued, a.ack_note"

static json_t *alert_json(struct db_rows *r)
{
	json_t *details = json_loads(db_rows_str(r, 4), 0, NULL);
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:I, s:b}", "id", db_rows_str(r, 0), "rule",
			      db_rows_str(r, 1), "severity", db_rows_str(r, 2), "status", db_rows_str(r, 3), "details",
			      details ? details : json_object(), "raised_at", db_rows_str(r, 5), "version",
			      (json_int_t)db_rows_i64(r, 13), "sms_sent", db_rows_i64(r, 14) != 0);
	if (!db_rows_null(r, 6))
		json_object_set_new(o, "acknowledged", json_pack("{s:s, s:s, s:s?}", "at", db_rows_str(r, 6), "by",
								  db_rows_str(r, 7), "note",
								  db_rows_null(r, 15) ? NULL : db_rows_str(r, 15)));
	if (!db_rows_null(r, 8))
		json_object_set_new(o, "resolved", json_pack("{s:s, s:s, s:s}", "at", db_rows_str(r, 8), "by",
							      db_rows_str(r, 9), "resolution", db_rows_str(r, 10)));
	if (db_rows_str(r, 11)[0])
		json_object_set_new(o, "cycle", json_string(db_rows_str(r, 11)));
	if (!db_rows_null(r, 12))
		json_object_set_new(o, "payment", json_string(db_rows_str(r, 12)));
	return o;
}

hf_err alerts_list(struct svc_call *c, const char *status, const char *rule, const char *cycle, int limit,
		   const char *after, json_t **out)
{
	bool ok = !status;
	for (size_t i = 0; STATUSES[i] && !ok; i++)
		ok = strcmp(status, STATUSES[i]) == 0;
	if (!ok)
		hf_ferrs_add(c->fe, "status", "not_allowed", "one of open, acknowledged, resolved");
	if (rule && strlen(rule) > 32)
		hf_ferrs_add(c->fe, "rule", "length", "at most 32 characters");
	if (cycle && strlen(cycle) > 40)
		hf_ferrs_add(c->fe, "cycle", "length", "at most 40 characters");
	int64_t after_id = 0;
	if (after && hf_parse_i64(after, 1, INT64_MAX, &after_id))
		hf_ferrs_add(c->fe, "after", "format", "the next value of the previous page");
	if (hf_ferrs_any(c->fe))
		return HF_EINVAL;
	/* Newest first; SQL text from constants only, every value bound. */
	struct db_val v[] = {db_str(status), db_str(status), db_str(rule), db_str(rule), db_str(cycle), db_str(cycle),
			     DB_I64(after_id), DB_I64(after_id), DB_I64(limit)};
	struct db_rows *r = NULL;
	hf_err err = db_query(c->db,
			      "SELECT " ALERT_COLS " FROM payment_alerts a LEFT JOIN payment_cycles c ON c.id = a.cycle_id"
			      " WHERE (? IS NULL OR a.status = ?) AND (? IS NULL OR a.rule = ?) AND (? IS NULL OR c.code = ?)"
			      " AND (? = 0 OR a.id < ?) ORDER BY a.id DESC LIMIT ?",
			      v, HF_ARRAY_LEN(v), &r);
	if (err)
		return err;
	json_t *items = json_array();
	const char *last = NULL;
	char next[24] = "";
	while (db_rows_next(r)) {
		json_array_append_new(items, alert_json(r));
		hf_strlcpy(next, db_rows_str(r, 0), sizeof(next));
		last = next;
	}
	db_rows_free(r);
	struct db_rows *cnt = NULL;
	json_t *counts = json_pack("{s:i, s:i, s:i}", "open", 0, "acknowledged", 0, "resolved", 0);
	err = db_query(c->db, "SELECT status, COUNT(*) FROM payment_alerts GROUP BY status", NULL, 0, &cnt);
	while (!err && db_rows_next(cnt))
		json_object_set_new(counts, db_rows_str(cnt, 0), json_integer(db_rows_i64(cnt, 1)));
	db_rows_free(cnt);
	if (err) {
		json_decref(items);
		json_decref(counts);
		return err;
	}
	*out = json_pack("{s:o, s:o, s:s?}", "items", items, "counts", counts, "next",
			 json_array_size(items) >= (size_t)limit ? last : NULL);
	return HF_OK;
}

struct step_tx {
	struct svc_call *c;
	int64_t id;
	bool resolve;
	const char *text;
};

static hf_err step_body(struct db *db, void *vctx)
{
	struct step_tx *t = vctx;
	struct db_val v[] = {DB_I64(t->id)};
	struct db_rows *r = NULL;
	hf_err err = db_query(db, "SELECT status FROM payment_alerts WHERE id = ? FOR UPDATE", v, 1, &r);
	if (err)
		return err;
	if (!db_rows_next(r)) {
		db_rows_free(r);
		return HF_ENOTFOUND;
	}
	char status[16];
	hf_strlcpy(status, db_rows_str(r, 0), sizeof(status));
	db_rows_free(r);
	if (strcmp(status, "resolved") == 0 || (!t->resolve && strcmp(status, "open") != 0)) {
		snprintf(t->c->msg, t->c->msg_cap, "The alert is already %s.", status);
		return HF_ECONFLICT;
	}
	struct db_val w[] = {db_str(t->c->p->actor), db_str(t->text), DB_I64(t->id)};
	err = db_exec(db,
		      t->resolve ? "UPDATE payment_alerts SET status = 'resolved', resolved_at = UTC_TIMESTAMP(3),"
				   " resolved_by = ?, resolution = ?, version = version + 1 WHERE id = ?"
				 : "UPDATE payment_alerts SET status = 'acknowledged', acknowledged_at = UTC_TIMESTAMP(3),"
				   " acknowledged_by = ?, ack_note = ?, version = version + 1 WHERE id = ?",
		      w, 3, NULL);
	if (err)
		return err;
	char rec[24];
	snprintf(rec, sizeof(rec), "%lld", (long long)t->id);
	json_t *before = json_pack("{s:s}", "status", status);
	json_t *after = json_pack("{s:s}", "status", t->resolve ? "resolved" : "acknowledged");
	struct audit_event ev = {t->resolve ? "payment_alert.resolve" : "payment_alert.acknowledge", "payment_alert",
				 rec, "ok", before, after, NULL};
	err = audit_append(db, &t->c->p->audit, &ev);
	json_decref(before);
	json_decref(after);
	return err;
}

static hf_err step(struct svc_call *c, const char *id, json_t *body, bool resolve, json_t **out)
{
	static const char *const ack_fields[] = {"note", NULL}, *const resolve_fields[] = {"resolution", NULL};
	hf_json_only_fields(body, resolve ? resolve_fields : ack_fields, "", c->fe);
	const char *key = resolve ? "resolution" : "note";
	const char *text = NULL;
	json_t *t = json_object_get(body, key);
	if (resolve && !t)
		hf_ferrs_add(c->fe, key, "required", "say how it was resolved");
	else if (t && (!json_is_string(t) || json_string_length(t) == 0 || json_string_length(t) > 500 ||
		       !hf_utf8_valid_text(json_string_value(t), json_string_length(t))))
		hf_ferrs_add(c->fe, key, "length", "1 to 500 bytes of text");
	else if (t)
		text = json_string_value(t);
	if (hf_ferrs_any(c->fe))
		return HF_EINVAL;
	int64_t n = 0;
	if (hf_parse_i64(id, 1, INT64_MAX, &n))
		return HF_ENOTFOUND;
	struct step_tx st = {c, n, resolve, text};
	hf_err err = db_tx(c->db, step_body, &st);
	if (err)
		return err;
	struct db_val v[] = {DB_I64(n)};
	struct db_rows *r = NULL;
	err = db_query(c->db,
		       "SELECT " ALERT_COLS " FROM payment_alerts a LEFT JOIN payment_cycles c ON c.id = a.cycle_id WHERE"
		       " a.id = ?",
		       v, 1, &r);
	if (!err)
		err = db_rows_next(r) ? HF_OK : HF_ENOTFOUND;
	if (!err)
		*out = alert_json(r);
	db_rows_free(r);
	return err;
}

hf_err alerts_acknowledge(struct svc_call *c, const char *id, json_t *body, json_t **out)
{
	return step(c, id, body, false, out);
}

hf_err alerts_resolve(struct svc_call *c, const char *id, json_t *body, json_t **out)
{
	return step(c, id, body, true, out);
}
