/* subscriber.c - a phone as the USSD and SMS channels see it (see subscriber.h). */
#include "hf_base.h"
#include "subscriber.h"
#include "app.h"
#include "audit.h"
#include "hf_crypto.h"
#include "hf_log.h"
#include "outbox.h"
#include "person.h"
#include "validate.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

struct who {
	int64_t id;
	char ben_no[BENNO_LEN + 1], language[9];
	uint8_t bidx[HF_BIDX_LEN];
	bool registered, opted_out;
	/* The PIN row as read with the person, without a lock: enough to answer the common cases (a right PIN
	 * with no failures to forget; the PIN state shown by a lookup) in the same statement. Anything that
	 * writes reads the row again under its lock (pin_load). */
	bool pin_exists, pin_locked;
	int64_t pin_failures;
	uint8_t pin_hash[HF_BIDX_LEN];
};

/* The phone's blind index and the person it belongs to (registered false when nobody). A number that
 * cannot be a phone is "not found": the path came from outside. */
static hf_err who_is(struct svc_call *c, const char *phone, struct who *w)
{
	memset(w, 0, sizeof(*w));
	char norm[PHONE_MAX + 1], plus[PHONE_MAX + 2];
	struct vfail why = {0};
	/* Aggregators send "254712345678" as often as "+254712345678". */
	if (phone && phone[0] >= '1' && phone[0] <= '9' && strlen(phone) < sizeof(plus) - 1) {
		snprintf(plus, sizeof(plus), "+%s", phone);
		phone = plus;
	}
	if (!phone || strlen(phone) > 32 || !validate_phone(phone, norm, &why)) {
		snprintf(c->msg, c->msg_cap, "That is not a phone number.");
		return HF_ENOTFOUND;
	}
	person_phone_bidx(g_app.keys, norm, w->bidx);
	/* One statement, one row even for a phone nobody has: every USSD session and SMS starts here. */
	struct db_val v[] = {DB_BLOB(w->bidx, HF_BIDX_LEN), DB_BLOB(w->bidx, HF_BIDX_LEN)};
	struct db_rows *r = NULL;
	hf_err err = db_query(c->db,
			      "SELECT EXISTS (SELECT 1 FROM phone_optouts WHERE phone_bidx = ?), i.id, i.ben_no, i.language,"
			      " p.pin_hash, p.failures, p.locked_at IS NOT NULL FROM (SELECT 1) one LEFT JOIN individuals i"
			      " ON i.phone_bidx = ? LEFT JOIN subscriber_pins p ON p.individual_id = i.id ORDER BY"
			      " i.head_marker IS NULL, i.id LIMIT 1",
			      v, 2, &r);
	if (err)
		return err;
	if (db_rows_next(r)) {
		w->opted_out = db_rows_i64(r, 0) != 0;
		if (!db_rows_null(r, 1)) {
			w->registered = true;
			w->id = db_rows_i64(r, 1);
			hf_strlcpy(w->ben_no, db_rows_str(r, 2), sizeof(w->ben_no));
			hf_strlcpy(w->language, db_rows_str(r, 3), sizeof(w->language));
		}
		size_t n = 0;
		const void *h = db_rows_null(r, 4) ? NULL : db_rows_blob(r, 4, &n);
		if (h && n == HF_BIDX_LEN) {
			w->pin_exists = true;
			memcpy(w->pin_hash, h, HF_BIDX_LEN);
			w->pin_failures = db_rows_i64(r, 5);
			w->pin_locked = db_rows_i64(r, 6) != 0;
		}
	}
	db_rows_free(r);
	return HF_OK;
}

static hf_err need_registered(struct svc_call *c, const struct who *w)
{
	if (w->registered)
		return HF_OK;
	snprintf(c->msg, c->msg_cap, "This phone is not registered with the programme.");
	return HF_ENOTFOUND;
}

/* Keyed hash of a PIN or a reset code, bound to the person and to its purpose. */
static void secret_hash(const char *purpose, int64_t id, const char *secret, uint8_t out[HF_BIDX_LEN])
{
	char buf[80];
	int n = snprintf(buf, sizeof(buf), "%s:%lld:%s", purpose, (long long)id, secret);
	hf_blind_index(g_app.keys, "pin", (struct hf_str){buf, (size_t)n}, out);
	sodium_memzero(buf, sizeof(buf));
}

static bool pin_ok(const char *s)
{
	if (!s || strlen(s) != 4)
		return false;
	for (int i = 0; i < 4; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	/* The PINs everybody tries first. */
	static const char *const weak[] = {"0000", "1111", "2222", "3333", "4444", "5555", "6666", "7777", "8888",
					   "9999", "1234", "4321", "0123", "1212", NULL};
	for (size_t i = 0; weak[i]; i++)
		if (strcmp(s, weak[i]) == 0)
			return false;
	return true;
}

/* Reads a PIN field: 4 digits, not a guessable one (checked for new PINs only). */
static const char *pin_field(struct svc_call *c, json_t *body, const char *key, bool is_new)
{
	json_t *v = json_object_get(body, key);
	const char *s = json_string_value(v);
	if (!v) {
		hf_ferrs_add(c->fe, key, "required", "4 digits");
		return NULL;
	}
	if (!s || strlen(s) != 4 || strspn(s, "0123456789") != 4) {
		hf_ferrs_add(c->fe, key, "format", "4 digits");
		return NULL;
	}
	if (is_new && !pin_ok(s)) {
		hf_ferrs_add(c->fe, key, "weak", "too easy to guess: not four equal digits or a run like 1234");
		return NULL;
	}
	return s;
}

static hf_err audit_sub(struct svc_call *c, const char *action, const struct who *w, const char *outcome,
			json_t *detail)
{
	struct audit_event ev = {action, "individual", w->ben_no, outcome, NULL, NULL, detail};
	return audit_append(c->db, &c->p->audit, &ev);
}

struct pin_row {
	bool exists;
	uint8_t hash[HF_BIDX_LEN];
	int failures, reset_failures;
	bool locked, reset_live, reset_recent;
	uint8_t reset_hash[HF_BIDX_LEN];
};

static hf_err pin_load(struct db *db, int64_t id, struct pin_row *p)
{
	memset(p, 0, sizeof(*p));
	struct db_val v[] = {DB_I64(id)};
	struct db_rows *r = NULL;
	hf_err err = db_query(db,
			      "SELECT pin_hash, failures, locked_at IS NOT NULL, reset_hash, reset_expires_at >"
			      " UTC_TIMESTAMP(3), reset_failures, COALESCE(reset_expires_at > UTC_TIMESTAMP(3) + INTERVAL ?"
			      " SECOND, 0) FROM subscriber_pins WHERE individual_id = ? FOR UPDATE",
			      (struct db_val[]){DB_I64(SUBSCRIBER_RESET_TTL_S - 60), v[0]}, 2, &r);
	if (err)
		return err;
	if (db_rows_next(r)) {
		size_t n = 0;
		const void *h = db_rows_blob(r, 0, &n);
		p->exists = n == HF_BIDX_LEN;
		if (p->exists)
			memcpy(p->hash, h, HF_BIDX_LEN);
		p->failures = (int)db_rows_i64(r, 1);
		p->locked = db_rows_i64(r, 2) != 0;
		if (!db_rows_null(r, 3)) {
			h = db_rows_blob(r, 3, &n);
			if (n == HF_BIDX_LEN) {
				memcpy(p->reset_hash, h, HF_BIDX_LEN);
				p->reset_live = db_rows_i64(r, 4) != 0;
			}
		}
		p->reset_failures = (int)db_rows_i64(r, 5);
		p->reset_recent = db_rows_i64(r, 6) != 0;
	}
	db_rows_free(r);
	return HF_OK;
}

hf_err subscriber_get(struct svc_call *c, const char *phone, json_t **out)
{
	struct who w;
	hf_err err = who_is(c, phone, &w);
	if (err)
		return err;
	bool opted = w.opted_out;
	if (!w.registered) {
		*out = json_pack("{s:b, s:b}", "registered", 0, "opted_out", opted);
		return HF_OK;
	}
	struct db_val v[] = {DB_I64(w.id)};
	struct db_rows *r = NULL;
	const char *pin = !w.pin_exists ? "none" : w.pin_locked ? "locked" : "set";
	/* The programmes, the person's own and their household's: what "am I enrolled" is answered from. */
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
	if (err) {
		json_decref(enr);
		return err;
	}
	*out = json_pack("{s:b, s:s, s:s, s:s, s:b, s:o}", "registered", 1, "ben_no", w.ben_no, "language", w.language,
			 "pin", pin, "opted_out", opted, "enrolments", enr);
	return HF_OK;
}

struct pin_tx {
	struct svc_call *c;
	struct who w;
	const char *pin, *new_pin, *code;
	int op; /* 0 set, 1 verify, 2 change, 3 reset-code, 4 reset, 5 unlock */
	int left;
	bool wrong, locked;
	char code_out[8];
};

static hf_err pin_body(struct db *db, void *vctx)
{
	struct pin_tx *t = vctx;
	t->wrong = t->locked = false;
	struct pin_row p;
	hf_err err = pin_load(db, t->w.id, &p);
	if (err)
		return err;
	uint8_t h[HF_BIDX_LEN];
	struct db_val id[] = {DB_I64(t->w.id)};
	switch (t->op) {
	case 0: /* set */
		if (p.exists) {
			snprintf(t->c->msg, t->c->msg_cap, "A PIN is set already: change it, or reset it with a code.");
			return HF_ECONFLICT;
		}
		secret_hash("pin", t->w.id, t->pin, h);
		err = db_exec(db,
			      "INSERT INTO subscriber_pins (individual_id, pin_hash, created_at, updated_at) VALUES (?, ?,"
			      " UTC_TIMESTAMP(3), UTC_TIMESTAMP(3))",
			      (struct db_val[]){id[0], DB_BLOB(h, HF_BIDX_LEN)}, 2, NULL);
		return err ? err : audit_sub(t->c, "subscriber.pin_set", &t->w, "ok", NULL);
	case 1: /* verify */
	case 2: /* change */
		if (!p.exists) {
			snprintf(t->c->msg, t->c->msg_cap, "No PIN is set for this phone.");
			return HF_ENOTFOUND;
		}
		if (p.locked) {
			t->locked = true;
			snprintf(t->c->msg, t->c->msg_cap, "The PIN is locked: ask for a reset code or visit the office.");
			return HF_ECONFLICT;
		}
		secret_hash("pin", t->w.id, t->pin, h);
		if (!hf_ct_equal(h, p.hash, HF_BIDX_LEN)) {
			t->wrong = true;
			t->left = SUBSCRIBER_PIN_MAX_FAILURES - (p.failures + 1);
			err = db_exec(db,
				      /* MariaDB assigns left to right: locked_at sees the failures already counted. */
				      "UPDATE subscriber_pins SET failures = failures + 1, locked_at = IF(failures >= ?,"
				      " UTC_TIMESTAMP(3), NULL), version = version + 1, updated_at = UTC_TIMESTAMP(3) WHERE"
				      " individual_id = ?",
				      (struct db_val[]){DB_I64(SUBSCRIBER_PIN_MAX_FAILURES), id[0]}, 2, NULL);
			t->locked = t->left <= 0;
			json_t *d = json_pack("{s:b}", "locked", t->locked);
			if (!err)
				err = audit_sub(t->c, "subscriber.pin_verify", &t->w, "denied", d);
			json_decref(d);
			return err; /* committed: the failure counts */
		}
		if (t->op == 1 && p.failures == 0)
			return HF_OK; /* right, and nothing to reset: no write */
		if (t->op == 2)
			secret_hash("pin", t->w.id, t->new_pin, h);
		err = db_exec(db,
			      "UPDATE subscriber_pins SET pin_hash = ?, failures = 0, version = version + 1, updated_at ="
			      " UTC_TIMESTAMP(3) WHERE individual_id = ?",
			      (struct db_val[]){DB_BLOB(t->op == 2 ? h : p.hash, HF_BIDX_LEN), id[0]}, 2, NULL);
		if (!err && t->op == 2)
			err = audit_sub(t->c, "subscriber.pin_change", &t->w, "ok", NULL);
		return err;
	case 3: { /* reset code: 6 random digits, by SMS to the registered phone */
		if (!p.exists) {
			snprintf(t->c->msg, t->c->msg_cap, "No PIN is set for this phone: set one.");
			return HF_ENOTFOUND;
		}
		/* Wrong codes add up across codes (a new code does not give new tries), and one code a minute:
		 * guessing cannot be spread over many codes. */
		if (p.reset_failures >= SUBSCRIBER_RESET_MAX_FAILURES) {
			snprintf(t->c->msg, t->c->msg_cap, "Too many wrong codes: visit the office to unlock the PIN.");
			return HF_ECONFLICT;
		}
		if (p.reset_recent) {
			snprintf(t->c->msg, t->c->msg_cap, "A code was sent less than a minute ago: wait for it.");
			return HF_ERATELIMIT;
		}
		snprintf(t->code_out, sizeof(t->code_out), "%06u", (unsigned)hf_random_uniform(1000000));
		secret_hash("reset", t->w.id, t->code_out, h);
		err = db_exec(db,
			      "UPDATE subscriber_pins SET reset_hash = ?, reset_expires_at = UTC_TIMESTAMP(3) + INTERVAL ?"
			      " SECOND, version = version + 1, updated_at = UTC_TIMESTAMP(3) WHERE individual_id = ?",
			      (struct db_val[]){DB_BLOB(h, HF_BIDX_LEN), DB_I64(SUBSCRIBER_RESET_TTL_S), id[0]}, 3, NULL);
		bool queued = false;
		json_t *params = json_pack("{s:s, s:i}", "code", t->code_out, "minutes", SUBSCRIBER_RESET_TTL_S / 60);
		if (!err)
			err = outbox_to_person(db, 0, t->w.id, "pin_reset_code", params, &queued);
		json_decref(params);
		sodium_memzero(t->code_out, sizeof(t->code_out));
		return err ? err : audit_sub(t->c, "subscriber.pin_reset_code", &t->w, "ok", NULL);
	}
	case 4: /* reset with the code */
		if (!p.exists || !p.reset_live || p.reset_failures >= SUBSCRIBER_RESET_MAX_FAILURES) {
			snprintf(t->c->msg, t->c->msg_cap, "No valid reset code: ask for a new one.");
			return HF_ECONFLICT;
		}
		secret_hash("reset", t->w.id, t->code, h);
		if (!hf_ct_equal(h, p.reset_hash, HF_BIDX_LEN)) {
			t->wrong = true;
			t->left = SUBSCRIBER_RESET_MAX_FAILURES - (p.reset_failures + 1);
			err = db_exec(db,
				      "UPDATE subscriber_pins SET reset_failures = reset_failures + 1, updated_at ="
				      " UTC_TIMESTAMP(3) WHERE individual_id = ?",
				      id, 1, NULL);
			return err ? err : audit_sub(t->c, "subscriber.pin_reset", &t->w, "denied", NULL);
		}
		secret_hash("pin", t->w.id, t->new_pin, h);
		err = db_exec(db,
			      "UPDATE subscriber_pins SET pin_hash = ?, failures = 0, locked_at = NULL, reset_hash = NULL,"
			      " reset_expires_at = NULL, reset_failures = 0, version = version + 1, updated_at ="
			      " UTC_TIMESTAMP(3) WHERE individual_id = ?",
			      (struct db_val[]){DB_BLOB(h, HF_BIDX_LEN), id[0]}, 2, NULL);
		return err ? err : audit_sub(t->c, "subscriber.pin_reset", &t->w, "ok", NULL);
	case 5: /* staff unlock */
		if (!p.exists) {
			snprintf(t->c->msg, t->c->msg_cap, "This beneficiary has no PIN.");
			return HF_ENOTFOUND;
		}
		err = db_exec(db,
			      "UPDATE subscriber_pins SET failures = 0, locked_at = NULL, reset_failures = 0, version ="
			      " version + 1, updated_at = UTC_TIMESTAMP(3) WHERE individual_id = ?",
			      id, 1, NULL);
		return err ? err : audit_sub(t->c, "subscriber.pin_unlock", &t->w, "ok", NULL);
	}
	return HF_EINTERNAL;
}

static hf_err pin_run(struct svc_call *c, struct pin_tx *t, json_t **out)
{
	t->c = c;
	hf_err err = db_tx(c->db, pin_body, t);
	if (err)
		return err;
	if (t->wrong) {
		if (t->locked)
			snprintf(c->msg, c->msg_cap, "Wrong PIN. The PIN is now locked.");
		else
			snprintf(c->msg, c->msg_cap, "Wrong %s. %d %s left.", t->op == 4 ? "code" : "PIN", t->left,
				 t->left == 1 ? "try" : "tries");
		/* The failure is committed (above); the answer says how many tries are left. */
		*out = NULL;
		return HF_EAUTH;
	}
	*out = json_pack("{s:b}", "ok", 1);
	return HF_OK;
}

static hf_err with_registered(struct svc_call *c, const char *phone, struct pin_tx *t)
{
	hf_err err = who_is(c, phone, &t->w);
	return err ? err : need_registered(c, &t->w);
}

hf_err subscriber_pin_set(struct svc_call *c, const char *phone, json_t *body, json_t **out)
{
	static const char *const allowed[] = {"pin", NULL};
	hf_json_only_fields(body, allowed, "", c->fe);
	struct pin_tx t = {.op = 0, .pin = pin_field(c, body, "pin", true)};
	if (hf_ferrs_any(c->fe))
		return HF_EINVAL;
	hf_err err = with_registered(c, phone, &t);
	return err ? err : pin_run(c, &t, out);
}

hf_err subscriber_pin_verify(struct svc_call *c, const char *phone, json_t *body, json_t **out)
{
	static const char *const allowed[] = {"pin", NULL};
	hf_json_only_fields(body, allowed, "", c->fe);
	struct pin_tx t = {.op = 1, .pin = pin_field(c, body, "pin", false)};
	if (hf_ferrs_any(c->fe))
		return HF_EINVAL;
	hf_err err = with_registered(c, phone, &t);
	if (err)
		return err;
	/* The common case -- the right PIN, not locked, no failures to forget -- changes nothing: answered from
	 * the row read with the person. Anything else (wrong, locked, failures to reset, no PIN) is decided
	 * again under the row's lock, where a failure is counted. */
	if (t.w.pin_exists && !t.w.pin_locked && t.w.pin_failures == 0) {
		uint8_t h[HF_BIDX_LEN];
		secret_hash("pin", t.w.id, t.pin, h);
		bool right = hf_ct_equal(h, t.w.pin_hash, HF_BIDX_LEN);
		sodium_memzero(h, sizeof(h));
		if (right) {
			*out = json_pack("{s:b}", "ok", 1);
			return HF_OK;
		}
	}
	return pin_run(c, &t, out);
}

hf_err subscriber_pin_change(struct svc_call *c, const char *phone, json_t *body, json_t **out)
{
	static const char *const allowed[] = {"pin", "new_pin", NULL};
	hf_json_only_fields(body, allowed, "", c->fe);
	struct pin_tx t = {.op = 2, .pin = pin_field(c, body, "pin", false), .new_pin = pin_field(c, body, "new_pin", true)};
	if (hf_ferrs_any(c->fe))
		return HF_EINVAL;
	hf_err err = with_registered(c, phone, &t);
	return err ? err : pin_run(c, &t, out);
}

hf_err subscriber_pin_reset_code(struct svc_call *c, const char *phone, json_t **out)
{
	struct pin_tx t = {.op = 3};
	hf_err err = with_registered(c, phone, &t);
	if (!err)
		err = pin_run(c, &t, out);
	if (!err)
		json_object_set_new(*out, "sent_by_sms", json_true());
	return err;
}

hf_err subscriber_pin_reset(struct svc_call *c, const char *phone, json_t *body, json_t **out)
{
	static const char *const allowed[] = {"code", "new_pin", NULL};
	hf_json_only_fields(body, allowed, "", c->fe);
	const char *code = json_string_value(json_object_get(body, "code"));
	if (!code || strlen(code) != 6 || strspn(code, "0123456789") != 6)
		hf_ferrs_add(c->fe, "code", "format", "the 6 digits of the SMS");
	struct pin_tx t = {.op = 4, .code = code, .new_pin = pin_field(c, body, "new_pin", true)};
	if (hf_ferrs_any(c->fe))
		return HF_EINVAL;
	hf_err err = with_registered(c, phone, &t);
	return err ? err : pin_run(c, &t, out);
}

hf_err subscriber_pin_unlock(struct svc_call *c, const char *ben_no, json_t **out)
{
	struct pin_tx t = {.op = 5};
	hf_err err = svc_individual(c, ben_no, &t.w.id);
	if (err)
		return err;
	hf_strlcpy(t.w.ben_no, ben_no, sizeof(t.w.ben_no));
	t.w.registered = true;
	return pin_run(c, &t, out);
}

hf_err subscriber_pin_check(struct svc_call *c, int64_t individual_id, const char *ben_no, const char *pin)
{
	struct pin_tx t = {.op = 1, .pin = pin};
	t.w.id = individual_id;
	hf_strlcpy(t.w.ben_no, ben_no, sizeof(t.w.ben_no));
	t.w.registered = true;
	json_t *ok = NULL;
	hf_err err = pin_run(c, &t, &ok);
	json_decref(ok);
	return err;
}

struct lang_tx {
	struct svc_call *c;
	struct who w;
	const char *lang;
};

static hf_err lang_body(struct db *db, void *vctx)
{
	struct lang_tx *t = vctx;
	struct db_val v[] = {db_str(t->lang), db_str(t->c->p->actor), DB_I64(t->w.id)};
	hf_err err = db_exec(db,
			     "UPDATE individuals SET language = ?, version = version + 1, updated_at = UTC_TIMESTAMP(3),"
			     " updated_by = ? WHERE id = ?",
			     v, 3, NULL);
	json_t *d = json_pack("{s:s, s:s}", "from", t->w.language, "to", t->lang);
	if (!err)
		err = audit_sub(t->c, "subscriber.language", &t->w, "ok", d);
	json_decref(d);
	return err;
}

hf_err subscriber_language(struct svc_call *c, const char *phone, json_t *body, json_t **out)
{
	static const char *const allowed[] = {"language", NULL};
	hf_json_only_fields(body, allowed, "", c->fe);
	struct lang_tx t = {.c = c};
	if (hf_json_get_str(body, "", "language", true, 2, 8, c->fe, &t.lang) && !validate_language(t.lang))
		hf_ferrs_add(c->fe, "language", "not_allowed", "this language is not offered (registry.languages)");
	if (hf_ferrs_any(c->fe))
		return HF_EINVAL;
	hf_err err = who_is(c, phone, &t.w);
	if (!err)
		err = need_registered(c, &t.w);
	if (!err)
		err = db_tx(c->db, lang_body, &t);
	if (!err)
		*out = json_pack("{s:s}", "language", t.lang);
	return err;
}

struct opt_tx {
	struct svc_call *c;
	struct who w;
	bool out_of;
	const char *channel;
};

static hf_err opt_body(struct db *db, void *vctx)
{
	struct opt_tx *t = vctx;
	struct db_val v[] = {DB_BLOB(t->w.bidx, HF_BIDX_LEN), db_str(t->channel)};
	hf_err err = t->out_of ? db_exec(db,
					 "INSERT INTO phone_optouts (phone_bidx, opted_out_at, channel) VALUES (?,"
					 " UTC_TIMESTAMP(3), ?) ON DUPLICATE KEY UPDATE channel = VALUES(channel)",
					 v, 2, NULL)
			       : db_exec(db, "DELETE FROM phone_optouts WHERE phone_bidx = ?", v, 1, NULL);
	if (err)
		return err;
	/* Messages waiting for this number are not sent after a STOP. */
	if (t->out_of)
		err = db_exec(db,
			      "UPDATE outbox SET status = 'failed', updated_at = UTC_TIMESTAMP(3) WHERE phone_bidx = ? AND"
			      " status = 'queued'",
			      v, 1, NULL);
	/* The confirmation is the gateway's own reply to the STOP or START it received (menus/ussd [sms]). */
	char rec[40];
	hf_strlcpy(rec, t->w.registered ? t->w.ben_no : "unregistered", sizeof(rec));
	struct audit_event ev = {t->out_of ? "subscriber.opt_out" : "subscriber.opt_in", "phone", rec, "ok", NULL, NULL,
				 NULL};
	return err ? err : audit_append(db, &t->c->p->audit, &ev);
}

hf_err subscriber_opt(struct svc_call *c, const char *phone, bool out_of, json_t *body, json_t **out)
{
	static const char *const allowed[] = {"channel", NULL};
	static const char *const channels[] = {"sms", "ussd", NULL};
	hf_json_only_fields(body, allowed, "", c->fe);
	struct opt_tx t = {.c = c, .out_of = out_of, .channel = "sms"};
	(void)hf_json_get_enum(body, "", "channel", false, channels, c->fe, &t.channel);
	if (hf_ferrs_any(c->fe))
		return HF_EINVAL;
	hf_err err = who_is(c, phone, &t.w);
	if (!err)
		err = db_tx(c->db, opt_body, &t);
	if (!err)
		*out = json_pack("{s:b}", "opted_out", out_of);
	return err;
}
