/* kiosk_ops.c - a kiosk terminal in operation: health and the tamper lock, self-service (status, grievances),
 * offline allowances and the replay of offline events (see kiosk_ops.h and docs/kiosk-api.md).
 *
 * Why offline collection is safe: core signs, in advance, which payments a kiosk may pay out without the
 * link and how much in all (the allowance); the kiosk verifies the beneficiary's fingerprint locally against
 * templates sealed to it. When the link returns, each collection is replayed under the payment's row lock,
 * exactly like an online one, in one transaction with the row that remembers the event id: a replay after
 * a lost answer is a "duplicate", and a payment that was collected elsewhere meanwhile is not paid twice in
 * the books but raised to staff as an offline_conflict alert (the money went out twice physically; that is
 * a question for people, not for this code).
 */
#include "hf_base.h"
#include "kiosk_ops.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alerts.h"
#include "audit.h"
#include "biometric.h"
#include "cases.h"
#include "hf_crypto.h"
#include "hf_log.h"
#include "hf_money.h"
#include "ledger.h"
#include "outbox.h"
#include "payments.h"
#include "validate.h"

#define SKEW_MS (5 * 60 * 1000LL)             /* a kiosk clock may run this far from ours */
#define EVENT_MAX_AGE_MS (30 * 86400 * 1000LL) /* an alarm older than this is not news */
#define ALLOWANCE_TEXT_MAX (3 * 1024 * 1024)  /* fits the kiosk's 4 MiB answer cap with room to spare */
#define GRIEVANCE_TEXT_MAX 1000               /* characters typed at a kiosk */
#define CLAIM_STALE_S 60                      /* a grievance claim older than this was left by a crash */
#define MONEY_MAX 100000000000LL
#define TS_LEN 40 /* an API timestamp and its NUL, with room */
#define MS_COL(col) "CAST(ROUND(UNIX_TIMESTAMP(" col ") * 1000) AS SIGNED)"

static const char *const EVENT_TYPES[] = {"tamper",	  "door_open",	   "door_closed",      "help",
					  "reader_fault", "reader_ok",	   "printer_fault",    "dispense_unknown",
					  NULL};
static const char *const DEVICE_STATES[] = {"ok", "absent", "failed", NULL};
static const char *const OFFLINE_TYPES[] = {"collection", "grievance", "event", NULL};

/* ------------------------------------------------------------------ time */

static int digits(const char *s, int n)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* RFC 3339: YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM) into ms since the epoch (UTC). */
static bool ts_parse(const char *s, int64_t *out_ms)
{
	size_t n = strlen(s);
	if (n < 20 || n > 40 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':')
		return false;
	int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2), h = digits(s + 11, 2),
	    mi = digits(s + 14, 2), sec = digits(s + 17, 2);
	if (y < 2000 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 ||
	    sec > 59)
		return false;
	const char *p = s + 19;
	int ms = 0;
	if (*p == '.') {
		int k = 0;
		for (p++; *p >= '0' && *p <= '9'; p++, k++)
			if (k < 3)
				ms = ms * 10 + (*p - '0');
		if (k == 0 || k > 9)
			return false;
		for (; k < 3; k++)
			ms *= 10;
	}
	int64_t off_s = 0;
	if (*p == 'Z' && p[1] == '\0') {
		off_s = 0;
	} else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
		int oh = digits(p + 1, 2), om = digits(p + 4, 2);
		if (oh < 0 || oh > 23 || om < 0 || om > 59)
			return false;
		off_s = (int64_t)(oh * 3600 + om * 60) * (*p == '+' ? 1 : -1);
	} else {
		return false;
	}
	struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = sec};
	time_t t = timegm(&tm);
	struct tm back;
	/* timegm normalises 2026-02-30 to March 2: refuse instead. */
	if (t == (time_t)-1 || !gmtime_r(&t, &back) || back.tm_mday != d || back.tm_mon != mo - 1)
		return false;
	*out_ms = ((int64_t)t - off_s) * 1000 + ms;
	return true;
}

/* The API's timestamp form (DB_TS_FMT): 2026-11-28T19:30:00.123000Z. */
static void ts_format(int64_t ms, char out[TS_LEN])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	HF_ASSERT(gmtime_r(&t, &tm) != NULL);
	char day[20];
	HF_ASSERT(strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm) == 19);
	snprintf(out, TS_LEN, "%s.%03d000Z", day, (int)(ms % 1000));
}

/* ------------------------------------------------------------------ small helpers */

/* "field: message" of the first field error, for a per-event answer. */
static void first_error(const struct hf_ferrs *fe, char *out, size_t cap)
{
	json_t *e = json_array_get(fe->list, 0);
	const char *f = json_string_value(json_object_get(e, "field"));
	const char *m = json_string_value(json_object_get(e, "message"));
	snprintf(out, cap, "%s%s%s", f && f[0] ? f : "", f && f[0] ? ": " : "", m ? m : "invalid");
}

/* An id a kiosk chose for an event: 8-64 letters, digits, '-' or '_' (a UUID fits). */
static bool event_id_ok(const char *s)
{
	size_t n = strlen(s);
	return n >= 8 && n <= 64 && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == n;
}

static bool version_ok(const char *s)
{
	size_t n = strlen(s);
	return n >= 1 && n <= 32 && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.+-_~") == n;
}

static bool is_one_of(const char *s, const char *const *set)
{
	for (size_t i = 0; set[i]; i++)
		if (strcmp(s, set[i]) == 0)
			return true;
	return false;
}

/* ------------------------------------------------------------------ the lock */

hf_err kiosk_ops_locked(struct db *db, uint64_t kiosk_id, bool *locked)
{
	struct db_val v[] = {DB_I64((int64_t)kiosk_id)};
	struct db_rows *r = NULL;
	hf_err err = db_query(db, "SELECT locked_at IS NOT NULL FROM kiosks WHERE id = ?", v, 1, &r);
	if (err)
		return err;
	bool l = db_rows_next(r) && db_rows_i64(r, 0) != 0;
	db_rows_free(r);
	*locked = l;
	return HF_OK;
}

hf_err kiosk_ops_refuse_locked(struct svc_call *c)
{
	if (c->p->kind != PRINCIPAL_KIOSK)
		return HF_OK;
	bool locked = false;
	hf_err err = kiosk_ops_locked(c->db, (uint64_t)c->p->kiosk_id, &locked);
	if (err || !locked)
		return err;
	svc_say(c, "This terminal is locked after a tamper or door alarm; staff must check it and unlock it.");
	json_t *d = json_pack("{s:s}", "reason", "locked");
	struct audit_event ev = {"kiosk.refused_locked", "kiosk", c->p->name, "denied", NULL, NULL, d};
	if (audit_record(c->db, &c->p->audit, &ev) != HF_OK)
		hf_log(HF_LOG_WARN, "core.kiosk", "msg=\"cannot audit a refusal of a locked kiosk\" kiosk_no=%s", c->p->name);
	json_decref(d);
	return HF_ELOCKED;
}

/* Records a kiosk event inside the caller's transaction and, for an alarm (tamper, door open) that is newer
 * than the last unlock, locks the kiosk and raises a kiosk_tamper alert. An alarm from before staff last
 * unlocked the terminal was dealt with by the people who unlocked it: recorded, not locking again. */
static hf_err event_record(struct db *db, struct svc_call *c, const char *type, int64_t at_ms, bool offline,
			   const char *source, bool *locked_now)
{
	struct db_val k[] = {DB_I64(c->p->kiosk_id)};
	struct db_rows *r = NULL;
	hf_err err = db_query(db,
			      "SELECT locked_at IS NOT NULL, COALESCE(" MS_COL("unlocked_at") ", 0) FROM kiosks WHERE id = ?"
			      " FOR UPDATE",
			      k, 1, &r);
	if (err)
		return err;
	if (!db_rows_next(r)) {
		db_rows_free(r);
		return HF_ENOTFOUND;
	}
	bool was_locked = db_rows_i64(r, 0) != 0;
	int64_t unlocked_ms = db_rows_i64(r, 1);
	db_rows_free(r);
	bool alarm = strcmp(type, "tamper") == 0 || strcmp(type, "door_open") == 0;
	bool lock = alarm && !was_locked && at_ms > unlocked_ms;
	int64_t id = db_new_id();
	struct db_val v[] = {DB_I64(id), DB_I64(c->p->kiosk_id), db_str(type), DB_I64(at_ms), DB_I64(offline),
			     DB_I64(lock)};
	err = db_exec(db,
		      "INSERT INTO kiosk_events (id, kiosk_id, type, occurred_at, received_at, offline, locked) VALUES"
		      " (?, ?, ?, FROM_UNIXTIME(? / 1000), UTC_TIMESTAMP(3), ?, ?)",
		      v, HF_ARRAY_LEN(v), NULL);
	if (err)
		return err;
	char at[TS_LEN], ids[24];
	ts_format(at_ms, at);
	snprintf(ids, sizeof(ids), "%lld", (long long)id);
	if (lock) {
		struct db_val w[] = {db_str(type), DB_I64(id), DB_I64(c->p->kiosk_id)};
		err = db_exec(db,
			      "UPDATE kiosks SET locked_at = UTC_TIMESTAMP(3), lock_reason = ?, lock_event_id = ? WHERE id = ?",
			      w, HF_ARRAY_LEN(w), NULL);
		/* One alert per lock: its subject is the event that locked the terminal. */
		char subject[100];
		snprintf(subject, sizeof(subject), "%s:%s", c->p->name, ids);
		json_t *d = json_pack("{s:s, s:s, s:s, s:s, s:b, s:s}", "kiosk", c->p->name, "pay_point", c->p->pay_point,
				      "event", type, "at", at, "offline", offline, "source", source);
		bool raised = false;
		if (!err)
			err = alerts_raise(db, ALERT_KIOSK_TAMPER, "critical", subject, 0, 0, d, &raised);
		json_decref(d);
		if (err)
			return err;
		hf_log(HF_LOG_WARN, "core.kiosk", "msg=\"kiosk locked\" kiosk_no=%s reason=%s event=%s", c->p->name, type,
		       ids);
	}
	if (strcmp(type, "dispense_unknown") == 0) {
		/* The kiosk crashed after core recorded a collection and before it knew the drawer had opened: whether
		 * the person got the cash is for staff to settle with them; the kiosk never opens the drawer again. */
		char subject[100];
		snprintf(subject, sizeof(subject), "%s:%s", c->p->name, ids);
		json_t *ad = json_pack("{s:s, s:s, s:s, s:b}", "kiosk", c->p->name, "pay_point", c->p->pay_point, "at", at,
				       "offline", offline);
		bool raised = false;
		err = alerts_raise(db, ALERT_KIOSK_DISPENSE, "critical", subject, 0, 0, ad, &raised);
		json_decref(ad);
		if (err)
			return err;
	}
	json_t *d = json_pack("{s:s, s:s, s:s, s:b, s:b, s:s}", "event", ids, "type", type, "at", at, "offline", offline,
			      "locked", lock, "source", source);
	struct audit_event ev = {"kiosk.event", "kiosk", c->p->name, "ok", NULL, NULL, d};
	err = audit_append(db, &c->p->audit, &ev);
	json_decref(d);
	if (!err)
		*locked_now = was_locked || lock;
	return err;
}

/* ------------------------------------------------------------------ heartbeat */

struct beat_tx {
	struct svc_call *c;
	const char *health;
	const char *alarm; /* "tamper" or "door_open" when the heartbeat reports one, else NULL */
	int64_t now_ms;
	bool locked, refresh;
};

/* Whether the kiosk should fetch a new allowance: it has none live, half of it has run, the offline
 * settings changed since, or a cycle with payments at its pay point was approved after it was issued. */
static hf_err refresh_needed(struct db *db, const struct svc_call *c, int64_t now_ms, bool *out)
{
	struct db_val k[] = {DB_I64(c->p->kiosk_id)};
	struct db_rows *r = NULL;
	hf_err err = db_query(db,
			      "SELECT " MS_COL("a.issued_at") ", " MS_COL("a.valid_until") ", a.cap_amount, a.max_collections,"
			      " a.items, k.offline_cap IS NULL, COALESCE(k.offline_cap, 0), COALESCE(k.offline_max_collections, 0)"
			      " FROM kiosks k LEFT JOIN kiosk_allowances a ON a.kiosk_id = k.id AND a.superseded_at IS NULL"
			      " WHERE k.id = ? ORDER BY a.issued_at DESC LIMIT 1",
			      k, 1, &r);
	if (err)
		return err;
	if (!db_rows_next(r)) {
		db_rows_free(r);
		*out = false;
		return HF_OK;
	}
	bool none = db_rows_null(r, 0);
	int64_t issued = db_rows_i64(r, 0), until = db_rows_i64(r, 1);
	bool off = db_rows_i64(r, 5) != 0;
	bool changed = !none && (db_rows_i64(r, 2) != db_rows_i64(r, 6) || db_rows_i64(r, 3) != db_rows_i64(r, 7));
	bool live = !none && until > now_ms;
	bool has_items = !none && (db_rows_i64(r, 4) > 0 || db_rows_i64(r, 2) > 0);
	db_rows_free(r);
	r = NULL;
	if (off) {
		/* Offline collection switched off: only a live allowance that still promises something is news. */
		*out = live && has_items;
		return HF_OK;
	}
	if (!live || changed || now_ms > issued + (until - issued) / 2) {
		*out = true;
		return HF_OK;
	}
	struct db_val v[] = {DB_I64(issued), db_str(c->p->pay_point)};
	err = db_query(db,
		       "SELECT 1 FROM payment_cycles c WHERE c.status = 'approved' AND c.approved_at > FROM_UNIXTIME(? / 1000)"
		       " AND EXISTS (SELECT 1 FROM payments p WHERE p.cycle_id = c.id AND p.status = 'available' AND"
		       " p.pay_point = ?) LIMIT 1",
		       v, HF_ARRAY_LEN(v), &r);
	if (err)
		return err;
	*out = db_rows_next(r);
	db_rows_free(r);
	return HF_OK;
}

static hf_err beat_tx_fn(struct db *db, void *vctx)
{
	struct beat_tx *t = vctx;
	struct db_val v[] = {db_str(t->health), DB_I64(t->c->p->kiosk_id)};
	hf_err err = db_exec(db, "UPDATE kiosks SET last_seen_at = UTC_TIMESTAMP(3), health = ? WHERE id = ?", v,
			     HF_ARRAY_LEN(v), NULL);
	if (err)
		return err;
	bool locked = false;
	err = kiosk_ops_locked(db, (uint64_t)t->c->p->kiosk_id, &locked);
	/* A heartbeat reporting an alarm locks like the event would (the event itself may be stuck in the
	 * kiosk's queue); while the kiosk is locked, the same alarm every minute is not news. */
	if (!err && t->alarm && !locked)
		err = event_record(db, t->c, t->alarm, t->now_ms, false, "heartbeat", &locked);
	if (!err)
		err = refresh_needed(db, t->c, t->now_ms, &t->refresh);
	if (!err)
		t->locked = locked;
	return err;
}

hf_err kiosk_ops_heartbeat(struct svc_call *c, json_t *body, json_t **out)
{
	static const char *const allowed[] = {"version", "reader", "printer", "tamper", "door_open", "locked",
					      "queue_depth", "queue_oldest_s", NULL};
	const char *version = NULL, *reader = NULL, *printer = NULL;
	bool tamper = false, door = false, locked = false;
	int64_t depth = 0, oldest = 0;
	hf_json_only_fields(body, allowed, "", c->fe);
	if (hf_json_get_str(body, "", "version", true, 1, 32, c->fe, &version) && !version_ok(version))
		hf_ferrs_add(c->fe, "version", "format", "1-32 letters, digits and . + - _ ~");
	(void)hf_json_get_enum(body, "", "reader", true, DEVICE_STATES, c->fe, &reader);
	(void)hf_json_get_enum(body, "", "printer", true, DEVICE_STATES, c->fe, &printer);
	(void)hf_json_get_bool(body, "", "tamper", true, c->fe, &tamper);
	(void)hf_json_get_bool(body, "", "door_open", true, c->fe, &door);
	(void)hf_json_get_bool(body, "", "locked", true, c->fe, &locked);
	(void)hf_json_get_int(body, "", "queue_depth", true, 0, 100000000, c->fe, &depth);
	bool has_oldest = hf_json_get_int(body, "", "queue_oldest_s", false, 0, 1000000000, c->fe, &oldest);
	if (hf_ferrs_any(c->fe))
		return HF_EINVAL;
	int64_t now = hf_now_ms();
	char at[TS_LEN];
	ts_format(now, at);
	/* Stored as validated, field by field: nothing the kiosk sends beyond these reaches staff screens. */
	json_t *h = json_pack("{s:s, s:s, s:s, s:b, s:b, s:b, s:I, s:s}", "version", version, "reader", reader,
			      "printer", printer, "tamper", tamper, "door_open", door, "locked", locked, "queue_depth",
			      (json_int_t)depth, "reported_at", at);
	if (has_oldest)
		json_object_set_new(h, "queue_oldest_s", json_integer((json_int_t)oldest));
	char *text = json_dumps(h, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(h);
	HF_ASSERT(text != NULL);
	struct beat_tx t = {.c = c, .health = text, .alarm = tamper ? "tamper" : door ? "door_open" : NULL,
			    .now_ms = now};
	hf_err err = db_tx(c->db, beat_tx_fn, &t);
	free(text);
	if (err)
		return err;
	*out = json_pack("{s:s, s:b, s:b}", "server_time", at, "allowance_refresh", t.refresh, "locked", t.locked);
	return HF_OK;
}

/* ------------------------------------------------------------------ events */

struct event_tx {
	struct svc_call *c;
	const char *type;
	int64_t at_ms;
	bool locked;
};

static hf_err event_tx_fn(struct db *db, void *vctx)
{
	struct event_tx *t = vctx;
	return event_record(db, t->c, t->type, t->at_ms, false, "event", &t->locked);
}

/* Reads "at": RFC 3339, not older than EVENT_MAX_AGE_MS, not ahead of our clock by more than SKEW_MS. */
static bool at_get(json_t *o, const char *prefix, struct hf_ferrs *fe, int64_t now, int64_t *ms)
{
	const char *at = NULL;
	if (!hf_json_get_str(o, prefix, "at", true, 20, 40, fe, &at))
		return false;
	char f[64];
	snprintf(f, sizeof(f), "%s%sat", prefix, prefix[0] ? "." : "");
	if (!ts_parse(at, ms)) {
		hf_ferrs_add(fe, f, "format", "RFC 3339, e.g. 2026-11-28T09:30:00Z");
		return false;
	}
	if (*ms > now + SKEW_MS || *ms < now - EVENT_MAX_AGE_MS) {
		hf_ferrs_add(fe, f, "out_of_range", "not in the future and at most 30 days ago; check the terminal clock");
		return false;
	}
	return true;
}

hf_err kiosk_ops_event(struct svc_call *c, json_t *body, json_t **out)
{
	static const char *const allowed[] = {"type", "at", NULL};
	struct event_tx t = {.c = c};
	hf_json_only_fields(body, allowed, "", c->fe);
	(void)hf_json_get_enum(body, "", "type", true, EVENT_TYPES, c->fe, &t.type);
	(void)at_get(body, "", c->fe, hf_now_ms(), &t.at_ms);
	if (hf_ferrs_any(c->fe))
		return HF_EINVAL;
	hf_err err = db_tx(c->db, event_tx_fn, &t);
	if (err)
		return err;
	*out = json_pack("{s:s, s:b}", "type", t.type, "locked", t.locked);
	return HF_OK;
}

/* ------------------------------------------------------------------ self-service */

hf_err kiosk_ops_status(struct svc_call *c, const char *ben_no, json_t **out)
{
	int64_t id = 0;
	hf_err err = svc_individual(c, ben_no, &id);
	if (err)
		return err;
	struct db_val v[] = {DB_I64(id)};
	struct db_rows *r = NULL;
	err = db_query(c->db, "SELECT language FROM individuals WHERE id = ?", v, 1, &r);
	if (err)
		return err;
	char lang[9] = "";
	if (db_rows_next(r))
		hf_strlcpy(lang, db_rows_str(r, 0), sizeof(lang));
	db_rows_free(r);
	r = NULL;
	/* The person's own programmes and their household's, as the STATUS SMS and USSD answer them. */
	json_t *enr = json_array();
	err = db_query(c->db,
		       "SELECT e.programme_code, e.status, DATE_FORMAT(e.created_at, '%Y-%m-%d') FROM enrolments e JOIN"
		       " individuals i ON i.id = ? WHERE e.individual_id = i.id OR (e.household_id IS NOT NULL AND"
		       " e.household_id = i.household_id) ORDER BY e.created_at LIMIT 20",
		       v, 1, &r);
	while (!err && db_rows_next(r))
		json_array_append_new(enr, json_pack("{s:s, s:s, s:s}", "programme", db_rows_str(r, 0), "status",
						     db_rows_str(r, 1), "since", db_rows_str(r, 2)));
	db_rows_free(r);
	json_t *pay = NULL;
	if (!err)
		err = payments_for_beneficiary(c, ben_no, &pay);
	if (err) {
		json_decref(enr);
		return err;
	}
	*out = json_pack("{s:s, s:o, s:O, s:O, s:s}", "ben_no", ben_no, "enrolments", enr, "next_payment",
			 json_object_get(pay, "next"), "last_payments", json_object_get(pay, "last"), "language", lang);
	json_decref(pay);
	return HF_OK;
}

/* Lodges a grievance through the cases module, as the gateway does for USSD and SMS; the channel is
 * "kiosk" because the caller is a kiosk. ref gets the reference; *linked: it repeated an open one. */
static hf_err grievance_lodge(struct svc_call *c, const char *ben_no, const char *category, const char *text,
			      const char *lang, char ref[BENNO_LEN + 1], bool *linked)
{
	json_t *b = json_pack("{s:s, s:s, s:{s:s}}", "type", "grievance", "category", category, "data", "language", lang);
	if (ben_no)
		json_object_set_new(b, "ben_no", json_string(ben_no));
	if (text && text[0])
		json_object_set_new(b, "summary", json_string(text));
	json_t *res = NULL;
	c->status = 0;
	hf_err err = cases_create(c, b, &res);
	json_decref(b);
	if (err)
		return err;
	const char *r = json_string_value(json_object_get(res, "ref"));
	HF_ASSERT(r && hf_strlcpy(ref, r, BENNO_LEN + 1)); /* cases_create answers with its reference */
	*linked = json_is_true(json_object_get(res, "linked"));
	json_decref(res);
	return HF_OK;
}

struct grievance_in {
	const char *ben_no, *category, *text, *lang;
};

static bool grievance_parse(json_t *o, const char *prefix, const char *const *allowed, struct hf_ferrs *fe,
			    struct grievance_in *g)
{
	memset(g, 0, sizeof(*g));
	hf_json_only_fields(o, allowed, prefix, fe);
	(void)hf_json_get_str(o, prefix, "ben_no", false, BENNO_LEN, BENNO_LEN, fe, &g->ben_no);
	(void)hf_json_get_str(o, prefix, "category", true, 1, 32, fe, &g->category);
	if (hf_json_get_str(o, prefix, "description", false, 0, GRIEVANCE_TEXT_MAX, fe, &g->text) &&
	    !hf_utf8_valid_text(g->text, strlen(g->text)))
		hf_ferrs_add(fe, "description", "format", "text without control characters");
	if (hf_json_get_str(o, prefix, "language", true, 2, 8, fe, &g->lang) && !validate_language(g->lang))
		hf_ferrs_add(fe, "language", "not_allowed", "a language this deployment offers (registry.languages)");
	return !hf_ferrs_any(fe);
}

hf_err kiosk_ops_grievance(struct svc_call *c, json_t *body, json_t **out)
{
	static const char *const allowed[] = {"ben_no", "category", "description", "language", NULL};
	struct grievance_in g;
	if (!grievance_parse(body, "", allowed, c->fe, &g))
		return HF_EINVAL;
	char ref[BENNO_LEN + 1];
	bool linked = false;
	hf_err err = grievance_lodge(c, g.ben_no, g.category, g.text, g.lang, ref, &linked);
	if (err)
		return err;
	c->status = linked ? 200 : 0;
	*out = json_pack("{s:s, s:b}", "reference", ref, "linked", linked);
	return HF_OK;
}

/* ------------------------------------------------------------------ allowance */

struct allow_item {
	int64_t payment_id, amount;
};

struct allow_tx {
	struct svc_call *c;
	int64_t id, issued_ms, until_ms, cap, max_collections;
	const char *currency;
	const struct allow_item *items;
	size_t n;
	bool complete;
	uint8_t sha[32];
};

static hf_err allow_tx_fn(struct db *db, void *vctx)
{
	struct allow_tx *t = vctx;
	struct db_val k[] = {DB_I64(t->c->p->kiosk_id)};
	hf_err err = db_exec(db,
			     "UPDATE kiosk_allowances SET superseded_at = UTC_TIMESTAMP(3) WHERE kiosk_id = ? AND"
			     " superseded_at IS NULL",
			     k, 1, NULL);
	struct db_val v[] = {DB_I64(t->id),   DB_I64(t->c->p->kiosk_id),   DB_I64(t->issued_ms),
			     DB_I64(t->until_ms), DB_I64(t->cap),	     db_str(t->currency),
			     DB_I64(t->max_collections), DB_I64((int64_t)t->n), DB_BLOB(t->sha, sizeof(t->sha))};
	if (!err)
		err = db_exec(db,
			      "INSERT INTO kiosk_allowances (id, kiosk_id, issued_at, valid_until, cap_amount, currency,"
			      " max_collections, items, text_sha256) VALUES (?, ?, FROM_UNIXTIME(? / 1000),"
			      " FROM_UNIXTIME(? / 1000), ?, ?, ?, ?, ?)",
			      v, HF_ARRAY_LEN(v), NULL);
	for (size_t i = 0; !err && i < t->n; i++) {
		struct db_val w[] = {DB_I64(t->id), DB_I64(t->items[i].payment_id), DB_I64(t->items[i].amount)};
		err = db_exec(db, "INSERT INTO kiosk_allowance_items (allowance_id, payment_id, amount) VALUES (?, ?, ?)", w,
			      HF_ARRAY_LEN(w), NULL);
	}
	if (err)
		return err;
	char ids[24], until[TS_LEN];
	snprintf(ids, sizeof(ids), "%lld", (long long)t->id);
	ts_format(t->until_ms, until);
	json_t *d = json_pack("{s:s, s:I, s:I, s:s, s:I, s:s, s:b}", "allowance", ids, "items", (json_int_t)t->n, "cap",
			      (json_int_t)t->cap, "currency", t->currency, "max_collections",
			      (json_int_t)t->max_collections, "valid_until", until, "complete", t->complete);
	struct audit_event ev = {"kiosk.allowance", "kiosk", t->c->p->name, "ok", NULL, NULL, d};
	err = audit_append(db, &t->c->p->audit, &ev);
	json_decref(d);
	return err;
}

hf_err kiosk_ops_allowance(struct svc_call *c, json_t **out)
{
	struct db_val k[] = {DB_I64(c->p->kiosk_id)};
	struct db_rows *r = NULL;
	hf_err err = db_query(c->db,
			      "SELECT mode, locked_at IS NOT NULL, offline_cap IS NOT NULL, COALESCE(offline_cap, 0),"
			      " COALESCE(offline_currency, 'XXX'), COALESCE(offline_max_collections, 0), offline_hours FROM"
			      " kiosks WHERE id = ?",
			      k, 1, &r);
	if (err)
		return err;
	if (!db_rows_next(r)) {
		db_rows_free(r);
		return HF_EINTERNAL; /* the kiosk authenticated this very request */
	}
	bool enrolment = strcmp(db_rows_str(r, 0), "enrolment") == 0, locked = db_rows_i64(r, 1) != 0;
	bool on = db_rows_i64(r, 2) != 0;
	int64_t cap = db_rows_i64(r, 3), maxc = db_rows_i64(r, 5), hours = db_rows_i64(r, 6);
	char currency[4];
	hf_strlcpy(currency, db_rows_str(r, 4), sizeof(currency));
	db_rows_free(r);
	r = NULL;
	if (locked) {
		err = kiosk_ops_refuse_locked(c);
		return err ? err : HF_ELOCKED;
	}
	if (enrolment) {
		svc_say(c, "An enrolment station pays nothing out: it gets no offline allowance.");
		return HF_EFORBIDDEN;
	}
	if (hours < 1 || hours * 3600 > KIOSK_OPS_ALLOWANCE_MAX_S)
		hours = KIOSK_OPS_ALLOWANCE_MAX_S / 3600;
	int64_t now = hf_now_ms();
	struct allow_tx t = {.c = c, .id = db_new_id(), .issued_ms = now, .until_ms = now + hours * 3600 * 1000,
			     .cap = on ? cap : 0, .max_collections = on ? maxc : 0, .currency = currency, .complete = true};
	char issued[TS_LEN], until[TS_LEN], ids[24];
	ts_format(t.issued_ms, issued);
	ts_format(t.until_ms, until);
	snprintf(ids, sizeof(ids), "%lld", (long long)t.id);
	json_t *items = json_array();
	struct allow_item *list = NULL;
	size_t total = 0;
	if (on) {
		/* The payments of this pay point that can be collected at some moment of the window, in the cap's
		 * currency, for people still enrolled; the soonest to expire first, so a cut list keeps them. */
		struct db_val v[] = {db_str(c->p->pay_point), DB_I64(t.until_ms), db_str(currency),
				     DB_I64(KIOSK_OPS_ALLOWANCE_MAX_ITEMS + 1)};
		err = db_query(c->db,
			       "SELECT p.id, i.ben_no, p.individual_id, p.amount, p.currency, c.pay_from, c.pay_until FROM"
			       " payment_cycles c JOIN payments p ON p.cycle_id = c.id AND p.status = 'available' JOIN"
			       " individuals i ON i.id = p.individual_id WHERE c.status = 'approved' AND p.pay_point = ? AND"
			       " c.pay_from <= DATE(FROM_UNIXTIME(? / 1000)) AND c.pay_until >= UTC_DATE() AND p.currency = ?"
			       " AND EXISTS (SELECT 1 FROM enrolments e WHERE e.id = p.enrolment_id AND e.status = 'enrolled')"
			       " ORDER BY c.pay_until, p.id LIMIT ?",
			       v, HF_ARRAY_LEN(v), &r);
		if (err)
			goto out_items;
		list = hf_xcalloc(db_rows_count(r) + 1, sizeof(*list));
		while (db_rows_next(r)) {
			if (t.n == KIOSK_OPS_ALLOWANCE_MAX_ITEMS) {
				t.complete = false;
				break;
			}
			json_t *tpl = NULL;
			err = biometric_templates_for_kiosk(c, (uint64_t)db_rows_i64(r, 2), &tpl);
			if (err)
				goto out_items;
			json_t *it = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:o, s:b}", "payment", db_rows_str(r, 0),
					       "ben_no", db_rows_str(r, 1), "amount", (json_int_t)db_rows_i64(r, 3),
					       "currency", db_rows_str(r, 4), "pay_from", db_rows_str(r, 5), "pay_until",
					       db_rows_str(r, 6), "templates", tpl, "pin_fallback", false);
			char *one = json_dumps(it, JSON_COMPACT);
			size_t len = one ? strlen(one) : 0;
			free(one);
			if (total + len > ALLOWANCE_TEXT_MAX) {
				json_decref(it);
				t.complete = false;
				break;
			}
			total += len + 1;
			json_array_append_new(items, it);
			list[t.n].payment_id = db_rows_i64(r, 0);
			list[t.n].amount = db_rows_i64(r, 3);
			t.n++;
		}
		db_rows_free(r);
		r = NULL;
		if (!t.complete)
			hf_log(HF_LOG_WARN, "core.kiosk", "msg=\"offline allowance cut short\" kiosk_no=%s items=%zu",
			       c->p->name, t.n);
	}
	json_t *a = json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:I, s:s}, s:I, s:O, s:b}", "id", ids, "kiosk_no", c->p->name,
			      "pay_point", c->p->pay_point, "issued_at", issued, "valid_until", until, "cap", "amount",
			      (json_int_t)t.cap, "currency", currency, "max_collections", (json_int_t)t.max_collections,
			      "items", items, "complete", t.complete);
	/* Built once and signed as these exact bytes; the kiosk verifies the bytes before parsing them. */
	char *text = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	HF_ASSERT(text != NULL);
	char sig[BIOMETRIC_SIG_B64_LEN + 1];
	err = biometric_sign(text, strlen(text), sig);
	hf_sha256(text, strlen(text), t.sha);
	t.items = list;
	if (!err)
		err = db_tx(c->db, allow_tx_fn, &t);
	if (!err) {
		*out = json_pack("{s:s, s:s}", "allowance_text", text, "signature", sig);
		hf_log(HF_LOG_INFO, "core.kiosk", "msg=\"offline allowance issued\" kiosk_no=%s allowance=%s items=%zu",
		       c->p->name, ids, t.n);
	}
	free(text);
out_items:
	db_rows_free(r);
	free(list);
	json_decref(items);
	return err;
}

/* ------------------------------------------------------------------ offline events */

struct result {
	const char *status; /* applied, duplicate, conflict, rejected */
	char message[200];
	char receipt[65];
	char reference[BENNO_LEN + 1];
};

struct collect_in {
	const char *event_id, *allowance, *payment, *ben_no, *receipt;
	int64_t allowance_id, payment_id, amount, at_ms;
};

struct offline_tx {
	struct svc_call *c;
	const struct collect_in *in;   /* collections */
	const char *event_type;        /* "event" events */
	int64_t now_ms;
	bool dup;
	struct result res;
	int64_t alert_cycle, alert_payment;
};

/* Claims the event id inside the transaction; *dup when this kiosk sent it before. */
static hf_err claim(struct db *db, const struct svc_call *c, const char *event_id, const char *type, int64_t at_ms,
		    bool *dup)
{
	struct db_val v[] = {DB_I64(c->p->kiosk_id), db_str(event_id), db_str(type), DB_I64(at_ms)};
	hf_err err = db_exec(db,
			     "INSERT INTO kiosk_offline_events (kiosk_id, event_id, type, status, occurred_at, received_at)"
			     " VALUES (?, ?, ?, 'pending', FROM_UNIXTIME(? / 1000), UTC_TIMESTAMP(3))",
			     v, HF_ARRAY_LEN(v), NULL);
	*dup = err == HF_ECONFLICT && strcmp(db_conflict_key(db), "PRIMARY") == 0;
	return *dup ? HF_OK : err;
}

static hf_err settle(struct db *db, const struct svc_call *c, const char *event_id, const char *type,
		     const struct result *res, int64_t allowance_id, int64_t payment_id)
{
	const char *status = strcmp(res->status, "duplicate") == 0 ? "applied" : res->status;
	struct db_val v[] = {db_str(status),
			     allowance_id ? DB_I64(allowance_id) : DB_NULLV,
			     payment_id ? DB_I64(payment_id) : DB_NULLV,
			     res->receipt[0] ? db_str(res->receipt) : DB_NULLV,
			     res->reference[0] ? db_str(res->reference) : DB_NULLV,
			     res->message[0] ? db_str(res->message) : DB_NULLV,
			     DB_I64(c->p->kiosk_id),
			     db_str(event_id)};
	hf_err err = db_exec(db,
			     "UPDATE kiosk_offline_events SET status = ?, allowance_id = ?, payment_id = ?, receipt = ?,"
			     " reference = ?, message = ? WHERE kiosk_id = ? AND event_id = ?",
			     v, HF_ARRAY_LEN(v), NULL);
	if (err)
		return err;
	json_t *d = json_pack("{s:s, s:s, s:s}", "event", event_id, "type", type, "status", res->status);
	if (res->message[0])
		json_object_set_new(d, "reason", json_string(res->message));
	if (payment_id)
		json_object_set_new(d, "payment", json_integer((json_int_t)payment_id));
	struct audit_event ev = {"kiosk.offline_event", "kiosk", c->p->name,
				 strcmp(res->status, "applied") == 0 ? "ok" : "denied", NULL, NULL, d};
	err = audit_append(db, &c->p->audit, &ev);
	json_decref(d);
	return err;
}

static void outcome(struct result *res, const char *status, const char *fmt, ...) HF_PRINTF(3, 4);
static void outcome(struct result *res, const char *status, const char *fmt, ...)
{
	res->status = status;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(res->message, sizeof(res->message), fmt, ap);
	va_end(ap);
}

/* A collection the books cannot take, though the kiosk says the money went out: staff must look. */
static hf_err conflict_alert(struct db *db, const struct offline_tx *t)
{
	const struct collect_in *in = t->in;
	char subject[100];
	snprintf(subject, sizeof(subject), "%s:%s", t->c->p->name, in->event_id);
	json_t *d = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:s}", "kiosk", t->c->p->name, "event", in->event_id,
			      "status", t->res.status, "reason", t->res.message, "receipt", in->receipt, "amount",
			      (json_int_t)in->amount, "payment", in->payment);
	bool raised = false;
	hf_err err = alerts_raise(db, ALERT_OFFLINE_CONFLICT, strcmp(t->res.status, "conflict") == 0 ? "critical" : "warning",
				  subject, t->alert_cycle, t->alert_payment, d, &raised);
	json_decref(d);
	return err;
}

/* The beneficiary's SMS receipt of an offline collection, queued in the transaction that applies it: as
 * online, any deduction by an agent shows against what the person was told (the time is the kiosk's). */
static hf_err offline_receipt_sms(struct db *db, struct svc_call *c, const struct collect_in *in, const char *currency)
{
	struct db_val k[] = {DB_I64(in->payment_id)};
	int64_t person = 0;
	hf_err err = db_query_i64(db, "SELECT individual_id FROM payments WHERE id = ?", k, 1, &person);
	if (err)
		return err;
	if (person == 0)
		return HF_EINTERNAL;
	char money[HF_MONEY_STR_MAX], when[32];
	time_t at = (time_t)(in->at_ms / 1000);
	struct tm tm;
	HF_ASSERT(gmtime_r(&at, &tm) != NULL);
	HF_ASSERT(strftime(when, sizeof(when), "%Y-%m-%d %H:%M UTC", &tm) > 0);
	hf_money_display(in->amount, currency, money);
	json_t *params = json_pack("{s:s, s:s, s:s, s:s, s:s}", "amount", money, "currency", currency, "receipt",
				   in->receipt, "pay_point", c->p->pay_point, "time", when);
	bool queued = false;
	err = outbox_to_person(db, 0, person, "kiosk_receipt", params, &queued);
	json_decref(params);
	return err;
}

/* Applies the collection under the payment's row lock, the same rules as payments_collect: a payment is
 * collected once, from 'available', with its ledger posting, its event and its audit entry. */
static hf_err collection_apply(struct db *db, struct offline_tx *t, int64_t cycle_id, const char *cycle,
			       const char *programme, const char *currency)
{
	const struct collect_in *in = t->in;
	struct svc_call *c = t->c;
	struct db_val w[] = {db_str(in->receipt), DB_I64(in->amount), db_str(c->p->name), DB_I64(in->at_ms),
			     DB_I64(in->payment_id)};
	uint64_t n = 0;
	hf_err err = db_exec(db,
			     "UPDATE payments SET status = 'collected', receipt = ?, paid_amount = ?, collected_kiosk = ?,"
			     " verification = 'fingerprint', settled_at = FROM_UNIXTIME(? / 1000), version = version + 1,"
			     " updated_at = UTC_TIMESTAMP(3) WHERE id = ? AND status = 'available'",
			     w, HF_ARRAY_LEN(w), &n);
	if (!err && n != 1)
		return HF_EINTERNAL; /* the row is locked and was 'available' a statement ago */
	char clearing[LEDGER_CODE_MAX + 1], paid[LEDGER_CODE_MAX + 1], key[64];
	snprintf(clearing, sizeof(clearing), "clearing:%s", cycle);
	snprintf(paid, sizeof(paid), "paid:%s", programme);
	snprintf(key, sizeof(key), "collect:%lld", (long long)in->payment_id);
	struct ledger_leg legs[] = {{clearing, -in->amount}, {paid, in->amount}};
	struct ledger_posting p = {key, "collect", currency, cycle_id, in->payment_id, "collected at a kiosk, offline",
				   c->p->actor, legs, 2};
	bool posted = false;
	if (!err)
		err = ledger_post(db, &p, &posted);
	if (!err && !posted)
		return HF_EINTERNAL; /* a payment that was 'available' has no collect posting */
	char at[TS_LEN], detail[200];
	ts_format(in->at_ms, at);
	snprintf(detail, sizeof(detail), "kiosk %s, offline at %s, fingerprint, receipt %s", c->p->name, at, in->receipt);
	struct db_val e[] = {DB_I64(db_new_id()), DB_I64(in->payment_id), db_str(c->p->actor), db_str(detail)};
	if (!err)
		err = db_exec(db,
			      "INSERT INTO payment_events (id, payment_id, from_status, to_status, at, actor, detail) VALUES"
			      " (?, ?, 'available', 'collected', UTC_TIMESTAMP(3), ?, ?)",
			      e, HF_ARRAY_LEN(e), NULL);
	char rec[24];
	snprintf(rec, sizeof(rec), "%lld", (long long)in->payment_id);
	json_t *d = json_pack("{s:s, s:s, s:I, s:b, s:s, s:s}", "verification", "fingerprint", "receipt", in->receipt,
			      "amount", (json_int_t)in->amount, "offline", true, "at", at, "event", in->event_id);
	struct audit_event ev = {"payment.collect", "payment", rec, "ok", NULL, NULL, d};
	if (!err)
		err = audit_append(db, &c->p->audit, &ev);
	json_decref(d);
	struct db_val u[] = {DB_I64(in->amount), DB_I64(in->allowance_id)};
	if (!err)
		err = db_exec(db,
			      "UPDATE kiosk_allowances SET used_amount = used_amount + ?, used_count = used_count + 1 WHERE"
			      " id = ?",
			      u, HF_ARRAY_LEN(u), NULL);
	if (!err)
		err = offline_receipt_sms(db, c, in, currency);
	if (!err) {
		t->res.status = "applied";
		hf_strlcpy(t->res.receipt, in->receipt, sizeof(t->res.receipt));
	}
	return err;
}

/* Decides a collection event; the checks in the order a payment officer would ask them. */
static hf_err collection_decide(struct db *db, struct offline_tx *t, bool *booked_twice_ok)
{
	const struct collect_in *in = t->in;
	struct svc_call *c = t->c;
	struct db_val a[] = {DB_I64(in->allowance_id)};
	struct db_rows *r = NULL;
	hf_err err = db_query(db,
			      "SELECT kiosk_id, " MS_COL("issued_at") ", " MS_COL("valid_until") ", COALESCE("
			      MS_COL("superseded_at") ", 0), cap_amount, max_collections, used_amount, used_count FROM"
			      " kiosk_allowances WHERE id = ? FOR UPDATE",
			      a, 1, &r);
	if (err)
		return err;
	if (!db_rows_next(r) || db_rows_i64(r, 0) != c->p->kiosk_id) {
		db_rows_free(r);
		outcome(&t->res, "rejected", "unknown allowance");
		return HF_OK;
	}
	int64_t issued = db_rows_i64(r, 1), until = db_rows_i64(r, 2), superseded = db_rows_i64(r, 3);
	int64_t cap = db_rows_i64(r, 4), maxc = db_rows_i64(r, 5), used = db_rows_i64(r, 6), count = db_rows_i64(r, 7);
	db_rows_free(r);
	r = NULL;
	if (in->at_ms < issued - SKEW_MS) {
		outcome(&t->res, "rejected", "the event is older than its allowance");
		return HF_OK;
	}
	if (in->at_ms > until) {
		outcome(&t->res, "rejected", "the allowance had expired at the time of the event");
		return HF_OK;
	}
	if (superseded && superseded < in->at_ms) {
		outcome(&t->res, "rejected", "the allowance was superseded before the time of the event");
		return HF_OK;
	}
	struct db_val iv[] = {DB_I64(in->allowance_id), DB_I64(in->payment_id)};
	err = db_query(db, "SELECT amount FROM kiosk_allowance_items WHERE allowance_id = ? AND payment_id = ?", iv,
		       HF_ARRAY_LEN(iv), &r);
	if (err)
		return err;
	bool listed = db_rows_next(r);
	int64_t promised = listed ? db_rows_i64(r, 0) : 0;
	db_rows_free(r);
	r = NULL;
	if (!listed) {
		outcome(&t->res, "rejected", "the payment is not in this allowance");
		return HF_OK;
	}
	t->alert_payment = in->payment_id;
	if (promised != in->amount) {
		outcome(&t->res, "rejected", "the amount differs from the allowance (%lld)", (long long)promised);
		return HF_OK;
	}
	if (used + in->amount > cap) {
		outcome(&t->res, "rejected", "over the allowance's cap (%lld of %lld used)", (long long)used, (long long)cap);
		return HF_OK;
	}
	if (count + 1 > maxc) {
		outcome(&t->res, "rejected", "over the allowance's number of collections (%lld)", (long long)maxc);
		return HF_OK;
	}
	/* The row lock is the whole story of "exactly once", as online: a kiosk collecting the same payment
	 * online at this moment waits here, then one of the two sees it collected. */
	struct db_val pv[] = {DB_I64(in->at_ms), DB_I64(in->at_ms), DB_I64(in->payment_id)};
	err = db_query(db,
		       "SELECT p.status, i.ben_no, COALESCE(p.pay_point, ''), COALESCE(p.collected_kiosk, ''),"
		       " COALESCE(p.receipt, ''), c.id, c.code, c.programme_code, p.currency, c.pay_from <="
		       " DATE(FROM_UNIXTIME(? / 1000)) AND c.pay_until >= DATE(FROM_UNIXTIME(? / 1000)) FROM payments p"
		       " JOIN payment_cycles c ON c.id = p.cycle_id JOIN individuals i ON i.id = p.individual_id WHERE"
		       " p.id = ? FOR UPDATE",
		       pv, HF_ARRAY_LEN(pv), &r);
	if (err)
		return err;
	if (!db_rows_next(r)) {
		db_rows_free(r);
		outcome(&t->res, "rejected", "no such payment");
		return HF_OK;
	}
	char status[16], where[40], receipt[65], cycle[41], programme[33], currency[4];
	hf_strlcpy(status, db_rows_str(r, 0), sizeof(status));
	bool same_person = strcmp(db_rows_str(r, 1), in->ben_no) == 0;
	bool here = strcmp(db_rows_str(r, 2), c->p->pay_point) == 0;
	hf_strlcpy(where, db_rows_str(r, 3), sizeof(where));
	hf_strlcpy(receipt, db_rows_str(r, 4), sizeof(receipt));
	int64_t cycle_id = db_rows_i64(r, 5);
	hf_strlcpy(cycle, db_rows_str(r, 6), sizeof(cycle));
	hf_strlcpy(programme, db_rows_str(r, 7), sizeof(programme));
	hf_strlcpy(currency, db_rows_str(r, 8), sizeof(currency));
	bool in_window = db_rows_i64(r, 9) != 0;
	db_rows_free(r);
	t->alert_cycle = cycle_id;
	if (!same_person) {
		outcome(&t->res, "rejected", "the payment is not this beneficiary's");
		return HF_OK;
	}
	if (!here) {
		outcome(&t->res, "rejected", "the payment is paid at another pay point");
		return HF_OK;
	}
	if (!in_window) {
		outcome(&t->res, "rejected", "the event is outside the payment's pay dates");
		return HF_OK;
	}
	if (strcmp(status, "collected") == 0) {
		/* The same payout reported under a second event id is the same money, not a conflict. */
		if (strcmp(where, c->p->name) == 0 && strcmp(receipt, in->receipt) == 0) {
			*booked_twice_ok = true;
			t->res.status = "duplicate";
			hf_strlcpy(t->res.receipt, receipt, sizeof(t->res.receipt));
			snprintf(t->res.message, sizeof(t->res.message), "already recorded under this receipt");
			return HF_OK;
		}
		outcome(&t->res, "conflict", "collected elsewhere (kiosk %s, receipt %s)", where, receipt);
		return HF_OK;
	}
	if (strcmp(status, "available") != 0) {
		outcome(&t->res, "conflict", "the payment is %s", status);
		return HF_OK;
	}
	return collection_apply(db, t, cycle_id, cycle, programme, currency);
}

static hf_err collection_tx_fn(struct db *db, void *vctx)
{
	struct offline_tx *t = vctx;
	memset(&t->res, 0, sizeof(t->res));
	t->alert_cycle = t->alert_payment = 0;
	hf_err err = claim(db, t->c, t->in->event_id, "collection", t->in->at_ms, &t->dup);
	if (err || t->dup)
		return err;
	bool same_money = false;
	err = collection_decide(db, t, &same_money);
	if (err)
		return err;
	if (strcmp(t->res.status, "conflict") == 0 || strcmp(t->res.status, "rejected") == 0) {
		err = conflict_alert(db, t);
		if (err)
			return err;
	}
	return settle(db, t->c, t->in->event_id, "collection", &t->res, t->in->allowance_id,
		      t->alert_payment ? t->in->payment_id : 0);
}

static hf_err event_offline_tx_fn(struct db *db, void *vctx)
{
	struct offline_tx *t = vctx;
	memset(&t->res, 0, sizeof(t->res));
	hf_err err = claim(db, t->c, t->in->event_id, "event", t->in->at_ms, &t->dup);
	if (err || t->dup)
		return err;
	bool locked = false;
	err = event_record(db, t->c, t->event_type, t->in->at_ms, true, "offline", &locked);
	if (err)
		return err;
	t->res.status = "applied";
	return settle(db, t->c, t->in->event_id, "event", &t->res, 0, 0);
}

/* What a repeated event id got the first time. *pending: a grievance still being lodged (or left so). */
static hf_err stored_result(struct db *db, const struct svc_call *c, const char *event_id, struct result *res,
			    bool *pending, bool *stale)
{
	struct db_val v[] = {DB_I64(CLAIM_STALE_S), DB_I64(c->p->kiosk_id), db_str(event_id)};
	struct db_rows *r = NULL;
	hf_err err = db_query(db,
			      "SELECT status, COALESCE(receipt, ''), COALESCE(reference, ''), received_at < UTC_TIMESTAMP(3)"
			      " - INTERVAL ? SECOND FROM kiosk_offline_events WHERE kiosk_id = ? AND event_id = ?",
			      v, HF_ARRAY_LEN(v), &r);
	if (err)
		return err;
	if (!db_rows_next(r)) {
		db_rows_free(r);
		return HF_EINTERNAL; /* the key conflicted a moment ago, and rows are never deleted but claims */
	}
	memset(res, 0, sizeof(*res));
	res->status = "duplicate";
	*pending = strcmp(db_rows_str(r, 0), "pending") == 0;
	*stale = db_rows_i64(r, 3) != 0;
	snprintf(res->message, sizeof(res->message), "already received: %s", db_rows_str(r, 0));
	hf_strlcpy(res->receipt, db_rows_str(r, 1), sizeof(res->receipt));
	hf_strlcpy(res->reference, db_rows_str(r, 2), sizeof(res->reference));
	db_rows_free(r);
	return HF_OK;
}

struct settle_tx {
	const struct svc_call *c;
	const char *event_id;
	const struct result *res;
};

static hf_err settle_tx_fn(struct db *db, void *vctx)
{
	struct settle_tx *t = vctx;
	return settle(db, t->c, t->event_id, "grievance", t->res, 0, 0);
}

/* A grievance goes through cases_create, which runs its own transaction: the event id is claimed first
 * (committed), the case lodged, then the claim settled with the reference. A claim left by a crash between
 * the two is taken over after CLAIM_STALE_S; then the grievance may be lodged twice, and the workflow's
 * duplicate window links the second to the first. A claim younger than that belongs to a replay running
 * right now: the whole request is answered 409 so that the kiosk sends it again later. */
static hf_err grievance_offline(struct svc_call *c, const char *event_id, json_t *ev, int64_t at_ms,
				struct result *res)
{
	bool dup = false, pending = false, stale = false;
	hf_err err = claim(c->db, c, event_id, "grievance", at_ms, &dup);
	if (!err && dup)
		err = stored_result(c->db, c, event_id, res, &pending, &stale);
	if (err)
		return err;
	if (dup && !pending)
		return HF_OK;
	if (dup) {
		uint64_t n = 0;
		struct db_val v[] = {DB_I64(c->p->kiosk_id), db_str(event_id), DB_I64(CLAIM_STALE_S)};
		if (stale)
			err = db_exec(c->db,
				      "UPDATE kiosk_offline_events SET received_at = UTC_TIMESTAMP(3) WHERE kiosk_id = ? AND"
				      " event_id = ? AND status = 'pending' AND received_at < UTC_TIMESTAMP(3) - INTERVAL ?"
				      " SECOND",
				      v, HF_ARRAY_LEN(v), &n);
		if (err)
			return err;
		if (n != 1) {
			svc_say(c, "Another request is replaying these events right now; send them again in a minute.");
			return HF_ECONFLICT;
		}
	}
	memset(res, 0, sizeof(*res));
	static const char *const allowed[] = {"id", "type", "at", "ben_no", "category", "description", "language", NULL};
	struct hf_ferrs fe;
	hf_ferrs_init(&fe);
	char msg[256] = "";
	struct svc_call sub = {c->db, c->p, &fe, msg, sizeof(msg), 0};
	struct grievance_in g;
	if (grievance_parse(ev, "", allowed, &fe, &g)) {
		bool linked = false;
		err = grievance_lodge(&sub, g.ben_no, g.category, g.text, g.lang, res->reference, &linked);
		if (!err)
			res->status = "applied";
	} else {
		err = HF_EINVAL;
	}
	if (err == HF_EINVAL || err == HF_ENOTFOUND) {
		res->status = "rejected";
		if (hf_ferrs_any(&fe))
			first_error(&fe, res->message, sizeof(res->message));
		else
			hf_strlcpy(res->message, msg[0] ? msg : "invalid grievance", sizeof(res->message));
		err = HF_OK;
	}
	hf_ferrs_release(&fe);
	if (err) {
		/* Lodging failed for a reason of ours (the database): let the claim go, so the replay retries it. */
		struct db_val v[] = {DB_I64(c->p->kiosk_id), db_str(event_id)};
		if (db_exec(c->db, "DELETE FROM kiosk_offline_events WHERE kiosk_id = ? AND event_id = ? AND status = 'pending'",
			    v, HF_ARRAY_LEN(v), NULL) != HF_OK)
			hf_log(HF_LOG_WARN, "core.kiosk", "msg=\"cannot release an offline grievance claim\" kiosk_no=%s",
			       c->p->name);
		return err;
	}
	struct settle_tx st = {c, event_id, res};
	return db_tx(c->db, settle_tx_fn, &st);
}

/* Reads a collection event's fields; false with res rejected when they are not usable. */
static bool collection_parse(json_t *ev, struct collect_in *in, struct result *res)
{
	static const char *const allowed[] = {"id", "type", "at", "allowance", "payment", "ben_no", "method", "receipt",
					      "amount", NULL};
	struct hf_ferrs fe;
	hf_ferrs_init(&fe);
	const char *method = NULL;
	static const char *const methods[] = {"fingerprint", NULL};
	hf_json_only_fields(ev, allowed, "", &fe);
	if (hf_json_get_str(ev, "", "allowance", true, 1, 20, &fe, &in->allowance) &&
	    hf_parse_i64(in->allowance, 1, INT64_MAX, &in->allowance_id))
		hf_ferrs_add(&fe, "allowance", "format", "the id of an allowance");
	if (hf_json_get_str(ev, "", "payment", true, 1, 20, &fe, &in->payment) &&
	    hf_parse_i64(in->payment, 1, INT64_MAX, &in->payment_id))
		hf_ferrs_add(&fe, "payment", "format", "a payment number");
	(void)hf_json_get_str(ev, "", "ben_no", true, BENNO_LEN, BENNO_LEN, &fe, &in->ben_no);
	(void)hf_json_get_enum(ev, "", "method", true, methods, &fe, &method);
	(void)hf_json_get_int(ev, "", "amount", true, 1, MONEY_MAX, &fe, &in->amount);
	/* The kiosk's own receipt number, K-<kiosk>-<n>: it is what the beneficiary holds on paper. */
	if (hf_json_get_str(ev, "", "receipt", true, 5, 64, &fe, &in->receipt) &&
	    strspn(in->receipt, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != strlen(in->receipt))
		hf_ferrs_add(&fe, "receipt", "format", "K-<kiosk>-<n>: capital letters, digits and '-'");
	bool ok = !hf_ferrs_any(&fe);
	if (!ok) {
		res->status = "rejected";
		first_error(&fe, res->message, sizeof(res->message));
	}
	hf_ferrs_release(&fe);
	return ok;
}

/* Records an event whose own fields are unusable: rejected once, so that a replay answers "duplicate" and
 * the kiosk's queue moves on instead of sending the same broken event for ever. */
struct reject_tx {
	const struct svc_call *c;
	const char *event_id, *type;
	int64_t at_ms;
	struct result *res;
	bool dup;
};

static hf_err reject_tx_fn(struct db *db, void *vctx)
{
	struct reject_tx *t = vctx;
	hf_err err = claim(db, t->c, t->event_id, t->type, t->at_ms, &t->dup);
	if (err || t->dup)
		return err;
	return settle(db, t->c, t->event_id, t->type, t->res, 0, 0);
}

static hf_err offline_one(struct svc_call *c, json_t *ev, const char *event_id, int64_t now, struct result *res)
{
	memset(res, 0, sizeof(*res));
	const char *type = json_string_value(json_object_get(ev, "type"));
	if (!type || !is_one_of(type, OFFLINE_TYPES)) {
		outcome(res, "rejected", "type: one of collection, grievance, event");
		type = "event";
	}
	struct hf_ferrs fe;
	hf_ferrs_init(&fe);
	int64_t at_ms = now;
	if (!res->status && !at_get(ev, "", &fe, now, &at_ms)) {
		res->status = "rejected";
		first_error(&fe, res->message, sizeof(res->message));
		at_ms = now;
	}
	hf_ferrs_release(&fe);
	struct collect_in in = {.event_id = event_id, .at_ms = at_ms};
	struct offline_tx t = {.c = c, .in = &in, .now_ms = now};
	hf_err err = HF_OK;
	if (!res->status && strcmp(type, "collection") == 0 && collection_parse(ev, &in, res)) {
		err = db_tx(c->db, collection_tx_fn, &t);
	} else if (!res->status && strcmp(type, "event") == 0) {
		static const char *const allowed[] = {"id", "type", "at", "event", NULL};
		hf_ferrs_init(&fe);
		hf_json_only_fields(ev, allowed, "", &fe);
		(void)hf_json_get_enum(ev, "", "event", true, EVENT_TYPES, &fe, &t.event_type);
		if (hf_ferrs_any(&fe)) {
			res->status = "rejected";
			first_error(&fe, res->message, sizeof(res->message));
		} else {
			err = db_tx(c->db, event_offline_tx_fn, &t);
		}
		hf_ferrs_release(&fe);
	} else if (!res->status && strcmp(type, "grievance") == 0) {
		return grievance_offline(c, event_id, ev, at_ms, res);
	}
	if (err)
		return err;
	if (res->status) { /* unusable fields: recorded as rejected, once */
		struct reject_tx rt = {c, event_id, type, at_ms, res, false};
		err = db_tx(c->db, reject_tx_fn, &rt);
		t.dup = rt.dup;
	} else {
		*res = t.res;
	}
	if (!err && t.dup) {
		bool pending = false, stale = false;
		err = stored_result(c->db, c, event_id, res, &pending, &stale);
	}
	return err;
}

hf_err kiosk_ops_offline_events(struct svc_call *c, json_t *body, json_t **out)
{
	static const char *const allowed[] = {"events", NULL};
	hf_json_only_fields(body, allowed, "", c->fe);
	json_t *events = json_object_get(body, "events");
	if (!json_is_array(events) || json_array_size(events) == 0)
		hf_ferrs_add(c->fe, "events", "required", "an array of 1 to %d events", KIOSK_OPS_OFFLINE_MAX_EVENTS);
	else if (json_array_size(events) > KIOSK_OPS_OFFLINE_MAX_EVENTS)
		hf_ferrs_add(c->fe, "events", "too_many", "at most %d events per request; send the rest in another",
			     KIOSK_OPS_OFFLINE_MAX_EVENTS);
	/* Only what a result needs is checked for the whole request: every event has an id to answer by. */
	size_t i;
	json_t *ev;
	json_array_foreach(events, i, ev) {
		if (i >= KIOSK_OPS_OFFLINE_MAX_EVENTS)
			break;
		const char *id = json_string_value(json_object_get(ev, "id"));
		if (!json_is_object(ev) || !id || !event_id_ok(id))
			hf_ferrs_add(c->fe, "events", "bad_id", "event %zu: an object with \"id\": 8-64 letters, digits, '-' or '_'",
				     i);
	}
	if (hf_ferrs_any(c->fe))
		return HF_EINVAL;
	hf_err err = kiosk_ops_refuse_locked(c);
	if (err)
		return err;
	int64_t now = hf_now_ms();
	json_t *results = json_array();
	int counts[4] = {0};
	json_array_foreach(events, i, ev) {
		const char *id = json_string_value(json_object_get(ev, "id"));
		struct result res;
		/* Each event is its own transaction: a failure of the database stops here, and the kiosk sends
		 * the batch again; what was done answers "duplicate" then. */
		err = offline_one(c, ev, id, now, &res);
		if (err)
			break;
		json_t *o = json_pack("{s:s, s:s}", "id", id, "status", res.status);
		if (res.message[0])
			json_object_set_new(o, "message", json_string(res.message));
		if (res.receipt[0])
			json_object_set_new(o, "receipt", json_string(res.receipt));
		if (res.reference[0])
			json_object_set_new(o, "reference", json_string(res.reference));
		json_array_append_new(results, o);
		counts[strcmp(res.status, "applied") == 0	 ? 0
		       : strcmp(res.status, "duplicate") == 0 ? 1
		       : strcmp(res.status, "conflict") == 0  ? 2
							      : 3]++;
	}
	if (err) {
		json_decref(results);
		return err;
	}
	hf_log(HF_LOG_INFO, "core.kiosk",
	       "msg=\"offline events replayed\" kiosk_no=%s applied=%d duplicate=%d conflict=%d rejected=%d", c->p->name,
	       counts[0], counts[1], counts[2], counts[3]);
	*out = json_pack("{s:o}", "results", results);
	return HF_OK;
}
