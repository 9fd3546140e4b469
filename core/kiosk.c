/* kiosk.c - kiosk terminals: registration, enrolment of their Ed25519 keys, signed requests, revocation.
 *
 * A terminal at a pay point pays out beneficiaries' money, so the core must know for certain which
 * terminal is asking and that the request is fresh. Staff register a terminal and get a one-time code;
 * the terminal proves it holds the code once, by enrolling its public key, and from then on signs every
 * request (lib/hf_reqsign.h). Only the code's hash and the public key are stored: a copy of the database lets
 * nobody enrol a terminal or sign as one. The failure counter, the code's expiry and the status all live
 * in the kiosks row and are read under FOR UPDATE, so two core instances cannot both accept one code.
 * Replays are caught by the nonce table, which every core instance shares.
 */
#include "hf_base.h"
#include "kiosk.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "hf_crypto.h"
#include "hf_log.h"
#include "hf_reqsign.h"
#include "kiosk_ops.h"

#define TS_FMT "'%Y-%m-%dT%H:%i:%s.%fZ'"
#define STR_(x) #x
#define STR(x) STR_(x)
#define ONLINE_S STR(KIOSK_OPS_ONLINE_S)
#define LIST_MAX 1000
#define GENERATED_TRIES 5

/* Defaults of kiosk.enrol_ttl_s and kiosk.enrol_max_failures (see kiosk_configure). */
static int enrol_ttl_s = KIOSK_ENROL_TTL_S_DEFAULT;
static int enrol_max_failures = KIOSK_ENROL_MAX_FAILURES_DEFAULT;

/* One message for every refused enrolment: which of the reasons applied (and whether the terminal number
 * exists at all) is for the audit trail, not for whoever is trying codes. */
static const char ENROL_REFUSED[] = "enrolment refused: wrong, used or expired enrolment code for this terminal"
				    " number; ask staff for a new code";

void kiosk_configure(int ttl_s, int max_failures)
{
	HF_ASSERT(ttl_s > 0 && max_failures > 0);
	enrol_ttl_s = ttl_s;
	enrol_max_failures = max_failures;
}

/* ------------------------------------------------------------------ helpers */

static void say(char *msg, size_t cap, const char *fmt, ...) HF_PRINTF(3, 4);
static void say(char *msg, size_t cap, const char *fmt, ...)
{
	if (!msg || cap == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, cap, fmt, ap);
	va_end(ap);
}

/* What staff may name a terminal: 3-32 capital letters, digits and '-'. */
static bool kiosk_no_ok(const char *s)
{
	size_t n = strlen(s);
	if (n < 3 || n > 32)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}


bool kiosk_pay_point_ok(const char *s)
{
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
		      strchr(" ._/-", *s)))
			return false;
	return true;
}

/* First 8 bytes of SHA-256 of the key, hex: enough for staff to compare with the terminal's screen. */
static void key_fingerprint(const void *pk, char out[17])
{
	uint8_t d[32];
	hf_sha256(pk, HF_REQSIGN_PK_LEN, d);
	hf_hex(d, 8, out);
}

/* Columns 8-17: what the terminal is for, its last heartbeat (online = seen in the last
 * KIOSK_OPS_ONLINE_S), its lock and its offline allowance settings (sql/0007, sql/0008). */
#define KIOSK_COLS                                                                                          \
	"id, kiosk_no, pay_point, status, public_key, DATE_FORMAT(created_at, " TS_FMT "), DATE_FORMAT(enrolled_at, " \
	TS_FMT "), DATE_FORMAT(revoked_at, " TS_FMT "), mode, DATE_FORMAT(last_seen_at, " TS_FMT "),"              \
	" COALESCE(last_seen_at > UTC_TIMESTAMP(3) - INTERVAL " ONLINE_S " SECOND, 0), health, DATE_FORMAT(locked_at, "       \
	TS_FMT "), lock_reason, offline_cap, offline_currency, offline_max_collections, offline_hours"

static const char *opt_str(const struct db_rows *r, size_t col)
{
	return db_rows_null(r, col) ? NULL : db_rows_str(r, col);
}

/* A row of KIOSK_COLS as the API shows it: never the key itself, nor anything about the enrolment code. */
static json_t *kiosk_json(const struct db_rows *r)
{
	size_t pk_len = 0;
	const void *pk = db_rows_blob(r, 4, &pk_len);
	char fp[17];
	bool has_fp = pk && pk_len == HF_REQSIGN_PK_LEN;
	if (has_fp)
		key_fingerprint(pk, fp);
	/* The health is what the terminal sent, validated on the way in (kiosk_ops_heartbeat); a row that does
	 * not parse is shown as no health rather than failing the whole list. */
	json_t *health = db_rows_null(r, 11) ? NULL : json_loads(db_rows_str(r, 11), JSON_REJECT_DUPLICATES, NULL);
	if (health && !json_is_object(health)) {
		json_decref(health);
		health = NULL;
	}
	json_t *offline = NULL;
	if (!db_rows_null(r, 14))
		offline = json_pack("{s:{s:I, s:s}, s:I, s:I}", "cap", "amount", (json_int_t)db_rows_i64(r, 14), "currency",
				    db_rows_str(r, 15), "max_collections", (json_int_t)db_rows_i64(r, 16), "hours",
				    (json_int_t)db_rows_i64(r, 17));
	return json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:b, s:o, s:b, s:s?, s:s?, s:o}", "kiosk_no",
			 db_rows_str(r, 1), "pay_point", db_rows_str(r, 2), "status", db_rows_str(r, 3), "mode",
			 db_rows_str(r, 8), "created_at", opt_str(r, 5), "enrolled_at", opt_str(r, 6), "revoked_at",
			 opt_str(r, 7), "public_key_fingerprint", has_fp ? fp : NULL, "last_seen_at", opt_str(r, 9),
			 "online", db_rows_i64(r, 10) != 0, "health", health ? health : json_null(), "locked",
			 !db_rows_null(r, 12), "locked_at", opt_str(r, 12), "lock_reason", opt_str(r, 13), "offline",
			 offline ? offline : json_null());
}

/* Loads one terminal by number; HF_ENOTFOUND when there is none. On success *out is on its row. */
static hf_err kiosk_load(struct db *db, const char *kiosk_no, bool for_update, struct db_rows **out)
{
	struct db_rows *r = NULL;
	struct db_val p[] = {db_str(kiosk_no)};
	hf_err err = db_query(db,
			      for_update ? "SELECT " KIOSK_COLS " FROM kiosks WHERE kiosk_no = ? FOR UPDATE"
					 : "SELECT " KIOSK_COLS " FROM kiosks WHERE kiosk_no = ?",
			      p, 1, &r);
	if (err)
		return err;
	if (!db_rows_next(r)) {
		db_rows_free(r);
		return HF_ENOTFOUND;
	}
	*out = r;
	return HF_OK;
}

/* ------------------------------------------------------------------ register */

struct register_tx {
	const struct audit_actor *who;
	const char *pay_point;
	const char *kiosk_no; /* as asked by staff, or NULL to generate one */
	const uint8_t *code_hash;
	char *msg;
	size_t msg_cap;
	json_t *result; /* without the code: the caller adds it */
};

static hf_err register_tx_fn(struct db *db, void *vctx)
{
	struct register_tx *t = vctx;
	char generated[16];
	const char *no = t->kiosk_no;
	hf_err err = HF_OK;
	json_decref(t->result); /* a retried transaction starts over */
	t->result = NULL;
	for (int attempt = 0; attempt < GENERATED_TRIES; attempt++) {
		if (!t->kiosk_no) {
			snprintf(generated, sizeof(generated), "K%08u", (unsigned)hf_random_uniform(100000000u));
			no = generated;
		}
		struct db_val v[] = {DB_I64(db_new_id()), db_str(no), db_str(t->pay_point),
				     DB_BLOB(t->code_hash, HF_REQSIGN_CODE_HASH_LEN), DB_I64(enrol_ttl_s),
				     db_str(t->who->name)};
		err = db_exec(db,
			      "INSERT INTO kiosks (id, kiosk_no, pay_point, status, enrol_code_hash, enrol_expires_at,"
			      " enrol_failures, version, created_at, created_by)"
			      " VALUES (?, ?, ?, 'pending', ?, UTC_TIMESTAMP(3) + INTERVAL ? SECOND, 0, 1,"
			      " UTC_TIMESTAMP(3), ?)",
			      v, HF_ARRAY_LEN(v), NULL);
		/* A taken number staff chose is their conflict; a taken generated number or row id is drawn again
		 * (a failed INSERT leaves the transaction usable in InnoDB). */
		if (err == HF_ECONFLICT && t->kiosk_no && strcmp(db_conflict_key(db), "uq_kiosks_no") == 0) {
			say(t->msg, t->msg_cap, "a terminal with number %s is already registered", t->kiosk_no);
			return HF_ECONFLICT;
		}
		if (err != HF_ECONFLICT)
			break;
	}
	if (err == HF_ECONFLICT)
		say(t->msg, t->msg_cap, "no free terminal number was found; try again");
	if (err)
		return err;

	struct db_rows *r = NULL;
	struct db_val p[] = {db_str(no)};
	err = db_query(db,
		       "SELECT kiosk_no, pay_point, status, DATE_FORMAT(enrol_expires_at, " TS_FMT
		       ") FROM kiosks WHERE kiosk_no = ?",
		       p, 1, &r);
	if (err)
		return err;
	HF_ASSERT(db_rows_next(r)); /* inserted just above, in this transaction */
	json_t *res = json_pack("{s:s, s:s, s:s, s:s}", "kiosk_no", db_rows_str(r, 0), "pay_point", db_rows_str(r, 1),
				"status", db_rows_str(r, 2), "enrolment_expires_at", db_rows_str(r, 3));
	db_rows_free(r);
	HF_ASSERT(res != NULL);

	json_t *detail = json_pack("{s:s, s:b, s:i}", "pay_point", t->pay_point, "number_generated",
				   t->kiosk_no == NULL, "enrol_ttl_s", enrol_ttl_s);
	struct audit_event ev = {.action = "kiosk.register", .entity = "kiosk", .record = no, .outcome = "ok",
				 .after = res, .detail = detail};
	err = audit_append(db, t->who, &ev);
	json_decref(detail);
	if (err) {
		json_decref(res);
		return err;
	}
	t->result = res;
	return HF_OK;
}

hf_err kiosk_register(struct db *db, const struct audit_actor *who, json_t *body, struct hf_ferrs *fe, char *msg,
		      size_t msg_cap, json_t **out)
{
	static const char *const allowed[] = {"pay_point", "kiosk_no", NULL};
	const char *pay_point = NULL, *kiosk_no = NULL;
	char code[HF_REQSIGN_CODE_SHOWN_LEN + 1];
	uint8_t code_hash[HF_REQSIGN_CODE_HASH_LEN];
	hf_json_only_fields(body, allowed, "", fe);
	if (hf_json_get_str(body, "", "pay_point", true, 2, 64, fe, &pay_point) && !kiosk_pay_point_ok(pay_point))
		hf_ferrs_add(fe, "pay_point", "bad_format", "letters, digits, spaces and . _ / - only");
	if (hf_json_get_str(body, "", "kiosk_no", false, 3, 32, fe, &kiosk_no) && !kiosk_no_ok(kiosk_no))
		hf_ferrs_add(fe, "kiosk_no", "bad_format", "3-32 capital letters, digits or '-'");
	if (hf_ferrs_any(fe))
		return HF_EINVAL;

	/* Drawn once, outside the transaction, so a retried transaction stores the code that is shown. */
	hf_reqsign_code_new(code);
	hf_err err = hf_reqsign_code_hash(code, code_hash);
	HF_ASSERT(err == HF_OK);
	struct register_tx t = {.who = who, .pay_point = pay_point, .kiosk_no = kiosk_no, .code_hash = code_hash,
				.msg = msg, .msg_cap = msg_cap};
	err = db_tx(db, register_tx_fn, &t);
	if (err)
		goto out_wipe;
	HF_ASSERT(json_object_set_new(t.result, "enrolment_code", json_string(code)) == 0);
	*out = t.result;
	t.result = NULL;
	hf_log(HF_LOG_INFO, "core.kiosk", "msg=\"terminal registered\" kiosk_no=%s",
	       json_string_value(json_object_get(*out, "kiosk_no")));
out_wipe:
	json_decref(t.result);
	explicit_bzero(code, sizeof(code));
	explicit_bzero(code_hash, sizeof(code_hash));
	return err;
}

/* ------------------------------------------------------------------ enrol */

struct enrol_tx {
	const struct audit_actor *who;
	const char *kiosk_no;
	const uint8_t *code_hash;
	const uint8_t *pk;
	const char *denied; /* why the enrolment was refused (audit detail), NULL when it was not */
	json_t *result;
};

/* Refusals return HF_OK with t->denied set, so that the failure counter update commits. */
static hf_err enrol_tx_fn(struct db *db, void *vctx)
{
	struct enrol_tx *t = vctx;
	struct db_rows *r = NULL;
	json_decref(t->result);
	t->result = NULL;
	t->denied = NULL;
	struct db_val p[] = {db_str(t->kiosk_no)};
	hf_err err = db_query(db,
			      "SELECT id, pay_point, status, enrol_code_hash, enrol_failures,"
			      " enrol_expires_at IS NULL OR enrol_expires_at < UTC_TIMESTAMP(3)"
			      " FROM kiosks WHERE kiosk_no = ? FOR UPDATE",
			      p, 1, &r);
	if (err)
		return err;
	if (!db_rows_next(r)) {
		t->denied = "unknown_terminal";
		goto out_rows;
	}
	int64_t id = db_rows_i64(r, 0);
	int64_t failures = db_rows_i64(r, 4);
	size_t hash_len = 0;
	const void *hash = db_rows_blob(r, 3, &hash_len);
	if (strcmp(db_rows_str(r, 2), "pending") != 0) {
		t->denied = "not_pending";
	} else if (!hash || hash_len != HF_REQSIGN_CODE_HASH_LEN || failures >= enrol_max_failures) {
		t->denied = "code_burned";
	} else if (db_rows_i64(r, 5) != 0) {
		t->denied = "code_expired";
	} else if (!hf_ct_equal(hash, t->code_hash, HF_REQSIGN_CODE_HASH_LEN)) {
		/* The row is locked: failures + 1 is exact. The last allowed failure burns the code. */
		bool burn = failures + 1 >= enrol_max_failures;
		struct db_val v[] = {DB_I64(failures + 1), DB_I64(id)};
		err = db_exec(db,
			      burn ? "UPDATE kiosks SET enrol_failures = ?, enrol_code_hash = NULL WHERE id = ?"
				   : "UPDATE kiosks SET enrol_failures = ? WHERE id = ?",
			      v, HF_ARRAY_LEN(v), NULL);
		t->denied = burn ? "wrong_code_now_burned" : "wrong_code";
	} else {
		struct db_val v[] = {DB_BLOB(t->pk, HF_REQSIGN_PK_LEN), DB_I64(id)};
		err = db_exec(db,
			      "UPDATE kiosks SET status = 'active', public_key = ?, enrolled_at = UTC_TIMESTAMP(3),"
			      " enrol_code_hash = NULL, version = version + 1 WHERE id = ?",
			      v, HF_ARRAY_LEN(v), NULL);
		if (err)
			goto out_rows;
		char fp[17];
		key_fingerprint(t->pk, fp);
		json_t *res = json_pack("{s:s, s:s, s:s}", "kiosk_no", t->kiosk_no, "pay_point", db_rows_str(r, 1),
					"status", "active");
		json_t *detail = json_pack("{s:s}", "public_key_fingerprint", fp);
		struct audit_event ev = {.action = "kiosk.enrol", .entity = "kiosk", .record = t->kiosk_no,
					 .outcome = "ok", .after = res, .detail = detail};
		err = audit_append(db, t->who, &ev);
		json_decref(detail);
		if (err)
			json_decref(res);
		else
			t->result = res;
	}
out_rows:
	db_rows_free(r);
	return err;
}

hf_err kiosk_enrol(struct db *db, const struct audit_actor *who, json_t *body, struct hf_ferrs *fe, char *msg,
		   size_t msg_cap, json_t **out)
{
	static const char *const allowed[] = {"kiosk_no", "enrolment_code", "public_key", NULL};
	const char *kiosk_no = NULL, *code = NULL, *pk_b64 = NULL;
	uint8_t code_hash[HF_REQSIGN_CODE_HASH_LEN], pk[HF_REQSIGN_PK_LEN];
	hf_json_only_fields(body, allowed, "", fe);
	if (hf_json_get_str(body, "", "kiosk_no", true, 3, 32, fe, &kiosk_no) && !kiosk_no_ok(kiosk_no))
		hf_ferrs_add(fe, "kiosk_no", "bad_format", "3-32 capital letters, digits or '-'");
	/* A code that cannot be one is a typing mistake, said as such; it never matches, so saying it tells
	 * nothing about the terminal. */
	if (hf_json_get_str(body, "", "enrolment_code", true, 1, 64, fe, &code) &&
	    hf_reqsign_code_hash(code, code_hash))
		hf_ferrs_add(fe, "enrolment_code", "bad_format",
			     "12 letters and digits as shown to staff, XXXX-XXXX-XXXX (no 0, 1, I, L or O)");
	if (hf_json_get_str(body, "", "public_key", true, 1, 64, fe, &pk_b64) && hf_reqsign_pubkey_decode(pk_b64, pk))
		hf_ferrs_add(fe, "public_key", "bad_format",
			     "standard base64 (44 characters) of a 32-byte Ed25519 public key");
	if (hf_ferrs_any(fe)) {
		explicit_bzero(code_hash, sizeof(code_hash));
		return HF_EINVAL;
	}

	struct enrol_tx t = {.who = who, .kiosk_no = kiosk_no, .code_hash = code_hash, .pk = pk};
	hf_err err = db_tx(db, enrol_tx_fn, &t);
	explicit_bzero(code_hash, sizeof(code_hash));
	if (err)
		goto out_result;
	if (t.denied) {
		json_t *detail = json_pack("{s:s}", "reason", t.denied);
		struct audit_event ev = {.action = "kiosk.enrol", .entity = "kiosk", .record = kiosk_no,
					 .outcome = "denied", .detail = detail};
		err = audit_record(db, who, &ev);
		json_decref(detail);
		hf_log(HF_LOG_WARN, "core.kiosk", "msg=\"enrolment refused\" kiosk_no=%s reason=%s", kiosk_no,
		       t.denied);
		say(msg, msg_cap, "%s", ENROL_REFUSED);
		/* A refusal that could not be audited is answered as the database failure it is. */
		if (!err)
			err = HF_EAUTH;
		goto out_result;
	}
	*out = t.result;
	t.result = NULL;
	hf_log(HF_LOG_INFO, "core.kiosk", "msg=\"terminal enrolled\" kiosk_no=%s", kiosk_no);
out_result:
	json_decref(t.result);
	return err;
}

/* ------------------------------------------------------------------ revoke, list */

/* A change staff make to one terminal with a reason (revoke, unlock): who, which, why, and the terminal as it
 * is after the change. */
struct reasoned_tx {
	const struct audit_actor *who;
	const char *kiosk_no;
	const char *reason;
	json_t *result;
};

/* The end of a reasoned change, inside its transaction: the terminal read again, the change audited (before,
 * after, detail; detail is consumed), the result kept. */
static hf_err reasoned_finish(struct db *db, struct reasoned_tx *t, const char *action, json_t *before, json_t *detail)
{
	struct db_rows *r = NULL;
	json_t *after = NULL;
	hf_err err = kiosk_load(db, t->kiosk_no, false, &r);
	if (err)
		goto out_json;
	after = kiosk_json(r);
	db_rows_free(r);
	struct audit_event ev = {.action = action, .entity = "kiosk", .record = t->kiosk_no, .outcome = "ok",
				 .before = before, .after = after, .detail = detail};
	err = audit_append(db, t->who, &ev);
	if (!err) {
		t->result = after;
		after = NULL;
	}
out_json:
	json_decref(after);
	json_decref(detail);
	return err;
}

/* The API side of a reasoned change: {"reason"} checked, the transaction run, the terminal returned. */
static hf_err reasoned_change(struct db *db, const struct audit_actor *who, const char *kiosk_no, json_t *body,
			      struct hf_ferrs *fe, char *msg, size_t msg_cap, hf_err (*fn)(struct db *, void *),
			      const char *done, json_t **out)
{
	static const char *const allowed[] = {"reason", NULL};
	const char *reason = NULL;
	hf_json_only_fields(body, allowed, "", fe);
	hf_json_get_str(body, "", "reason", true, 3, 500, fe, &reason);
	if (hf_ferrs_any(fe))
		return HF_EINVAL;
	if (!kiosk_no || !kiosk_no_ok(kiosk_no)) {
		say(msg, msg_cap, "no terminal with this number");
		return HF_ENOTFOUND;
	}
	struct reasoned_tx t = {.who = who, .kiosk_no = kiosk_no, .reason = reason};
	hf_err err = db_tx(db, fn, &t);
	if (err == HF_ENOTFOUND)
		say(msg, msg_cap, "no terminal with this number");
	if (err) {
		json_decref(t.result);
		return err;
	}
	hf_log(HF_LOG_INFO, "core.kiosk", "msg=\"terminal %s\" kiosk_no=%s", done, kiosk_no);
	*out = t.result;
	return HF_OK;
}

static hf_err revoke_tx_fn(struct db *db, void *vctx)
{
	struct reasoned_tx *t = vctx;
	struct db_rows *r = NULL;
	json_t *before = NULL;
	char was[16];
	json_decref(t->result);
	t->result = NULL;
	hf_err err = kiosk_load(db, t->kiosk_no, true, &r);
	if (err)
		return err;
	int64_t id = db_rows_i64(r, 0);
	hf_strlcpy(was, db_rows_str(r, 3), sizeof(was)); /* an ENUM: 'pending', 'active' or 'revoked' */
	before = kiosk_json(r);
	db_rows_free(r);
	r = NULL;
	/* Revoking twice is not an error: the terminal is revoked, which is what staff asked for. The first
	 * revocation's time, author and reason stay, and nothing new is audited. */
	if (strcmp(was, "revoked") == 0) {
		t->result = before;
		return HF_OK;
	}
	struct db_val v[] = {db_str(t->who->name), db_str(t->reason), DB_I64(id)};
	err = db_exec(db,
		      "UPDATE kiosks SET status = 'revoked', revoked_at = UTC_TIMESTAMP(3), revoked_by = ?,"
		      " revoke_reason = ?, enrol_code_hash = NULL, version = version + 1 WHERE id = ?",
		      v, HF_ARRAY_LEN(v), NULL);
	/* The reason is staff's text: it is kept in kiosks.revoke_reason, never in the audit trail. */
	if (!err)
		err = reasoned_finish(db, t, "kiosk.revoke", before,
				      json_pack("{s:b, s:s}", "reason_given", true, "previous_status", was));
	json_decref(before);
	return err;
}

hf_err kiosk_revoke(struct db *db, const struct audit_actor *who, const char *kiosk_no, json_t *body,
		    struct hf_ferrs *fe, char *msg, size_t msg_cap, json_t **out)
{
	return reasoned_change(db, who, kiosk_no, body, fe, msg, msg_cap, revoke_tx_fn, "revoked", out);
}

/* ------------------------------------------------------------------ settings, unlock */

static const char *const MODES[] = {"pay_point", "enrolment", NULL};

struct update_tx {
	const struct audit_actor *who;
	const char *kiosk_no;
	const char *mode;   /* NULL: unchanged */
	bool set_offline;   /* "offline" was given: its values below, or cap NULL to switch it off */
	bool offline_on;
	int64_t cap, max_collections, hours;
	const char *currency;
	json_t *fields; /* names of the fields given (audit detail) */
	json_t *result;
};

static hf_err update_tx_fn(struct db *db, void *vctx)
{
	struct update_tx *t = vctx;
	struct db_rows *r = NULL;
	json_t *before = NULL, *after = NULL;
	json_decref(t->result);
	t->result = NULL;
	hf_err err = kiosk_load(db, t->kiosk_no, true, &r);
	if (err)
		return err;
	int64_t id = db_rows_i64(r, 0);
	before = kiosk_json(r);
	db_rows_free(r);
	r = NULL;
	struct db_val m[] = {db_str(t->mode), DB_I64(id)};
	err = db_exec(db, "UPDATE kiosks SET mode = COALESCE(?, mode), version = version + 1 WHERE id = ?", m,
		      HF_ARRAY_LEN(m), NULL);
	struct db_val o[] = {t->offline_on ? DB_I64(t->cap) : DB_NULLV, t->offline_on ? db_str(t->currency) : DB_NULLV,
			     t->offline_on ? DB_I64(t->max_collections) : DB_NULLV,
			     DB_I64(t->offline_on ? t->hours : KIOSK_OPS_ALLOWANCE_DEFAULT_S / 3600), DB_I64(id)};
	if (!err && t->set_offline)
		err = db_exec(db,
			      "UPDATE kiosks SET offline_cap = ?, offline_currency = ?, offline_max_collections = ?,"
			      " offline_hours = ? WHERE id = ?",
			      o, HF_ARRAY_LEN(o), NULL);
	if (!err)
		err = kiosk_load(db, t->kiosk_no, false, &r);
	if (err)
		goto out_json;
	after = kiosk_json(r);
	db_rows_free(r);
	json_t *detail = json_pack("{s:O}", "fields", t->fields);
	struct audit_event ev = {.action = "kiosk.update", .entity = "kiosk", .record = t->kiosk_no, .outcome = "ok",
				 .before = before, .after = after, .detail = detail};
	err = audit_append(db, t->who, &ev);
	json_decref(detail);
	if (!err) {
		t->result = after;
		after = NULL;
	}
out_json:
	json_decref(before);
	json_decref(after);
	return err;
}

/* "offline": null switches offline collection off; an object sets the cap of every allowance. */
static void offline_parse(json_t *o, struct update_tx *t, struct hf_ferrs *fe)
{
	t->set_offline = true;
	if (json_is_null(o))
		return;
	if (!json_is_object(o)) {
		hf_ferrs_add(fe, "offline", "wrong_type",
			     "null, or {\"cap\": {\"amount\", \"currency\"}, \"max_collections\", \"hours\"}");
		return;
	}
	static const char *const allowed[] = {"cap", "max_collections", "hours", NULL};
	static const char *const cap_allowed[] = {"amount", "currency", NULL};
	hf_json_only_fields(o, allowed, "offline", fe);
	json_t *cap = json_object_get(o, "cap");
	if (!json_is_object(cap)) {
		hf_ferrs_add(fe, "offline.cap", "required", "{\"amount\": minor units, \"currency\": \"KES\"}");
	} else {
		hf_json_only_fields(cap, cap_allowed, "offline.cap", fe);
		(void)hf_json_get_int(cap, "offline.cap", "amount", true, 1, 100000000000LL, fe, &t->cap);
		if (hf_json_get_str(cap, "offline.cap", "currency", true, 3, 3, fe, &t->currency) &&
		    strspn(t->currency, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != 3)
			hf_ferrs_add(fe, "offline.cap.currency", "format", "an ISO 4217 code such as KES");
	}
	(void)hf_json_get_int(o, "offline", "max_collections", true, 1, 10000, fe, &t->max_collections);
	t->hours = KIOSK_OPS_ALLOWANCE_DEFAULT_S / 3600;
	(void)hf_json_get_int(o, "offline", "hours", false, 1, KIOSK_OPS_ALLOWANCE_MAX_S / 3600, fe, &t->hours);
	t->offline_on = true;
}

hf_err kiosk_update(struct db *db, const struct audit_actor *who, const char *kiosk_no, json_t *body,
		    struct hf_ferrs *fe, char *msg, size_t msg_cap, json_t **out)
{
	static const char *const allowed[] = {"mode", "offline", NULL};
	struct update_tx t = {.who = who, .kiosk_no = kiosk_no};
	hf_json_only_fields(body, allowed, "", fe);
	(void)hf_json_get_enum(body, "", "mode", false, MODES, fe, &t.mode);
	json_t *off = json_object_get(body, "offline");
	if (off)
		offline_parse(off, &t, fe);
	if (!json_object_get(body, "mode") && !off)
		hf_ferrs_add(fe, "", "required", "send \"mode\" and/or \"offline\"");
	if (hf_ferrs_any(fe))
		return HF_EINVAL;
	if (!kiosk_no || !kiosk_no_ok(kiosk_no)) {
		say(msg, msg_cap, "no terminal with this number");
		return HF_ENOTFOUND;
	}
	t.fields = json_array();
	if (t.mode)
		json_array_append_new(t.fields, json_string("mode"));
	if (off)
		json_array_append_new(t.fields, json_string("offline"));
	hf_err err = db_tx(db, update_tx_fn, &t);
	json_decref(t.fields);
	if (err == HF_ENOTFOUND)
		say(msg, msg_cap, "no terminal with this number");
	if (err) {
		json_decref(t.result);
		return err;
	}
	hf_log(HF_LOG_INFO, "core.kiosk", "msg=\"terminal settings changed\" kiosk_no=%s", kiosk_no);
	*out = t.result;
	return HF_OK;
}

static hf_err unlock_tx_fn(struct db *db, void *vctx)
{
	struct reasoned_tx *t = vctx;
	struct db_rows *r = NULL;
	json_t *before = NULL;
	char why[17], since[40];
	json_decref(t->result);
	t->result = NULL;
	hf_err err = kiosk_load(db, t->kiosk_no, true, &r);
	if (err)
		return err;
	int64_t id = db_rows_i64(r, 0);
	bool locked = !db_rows_null(r, 12);
	hf_strlcpy(why, db_rows_str(r, 13), sizeof(why));
	hf_strlcpy(since, db_rows_str(r, 12), sizeof(since));
	before = kiosk_json(r);
	db_rows_free(r);
	r = NULL;
	/* Like revoking: unlocking an unlocked terminal is what staff asked for already; nothing is audited. */
	if (!locked) {
		t->result = before;
		return HF_OK;
	}
	struct db_val v[] = {db_str(t->who->name), db_str(t->reason), DB_I64(id)};
	err = db_exec(db,
		      "UPDATE kiosks SET locked_at = NULL, lock_reason = NULL, lock_event_id = NULL, unlocked_at ="
		      " UTC_TIMESTAMP(3), unlocked_by = ?, unlock_reason = ? WHERE id = ?",
		      v, HF_ARRAY_LEN(v), NULL);
	/* Staff's reason stays in kiosks.unlock_reason, never in the audit trail. */
	if (!err)
		err = reasoned_finish(db, t, "kiosk.unlock", before,
				      json_pack("{s:b, s:s, s:s}", "reason_given", true, "lock_reason", why, "locked_at", since));
	json_decref(before);
	return err;
}

hf_err kiosk_unlock(struct db *db, const struct audit_actor *who, const char *kiosk_no, json_t *body,
		    struct hf_ferrs *fe, char *msg, size_t msg_cap, json_t **out)
{
	return reasoned_change(db, who, kiosk_no, body, fe, msg, msg_cap, unlock_tx_fn, "unlocked", out);
}

hf_err kiosk_list(struct db *db, json_t **out)
{
	struct db_rows *r = NULL;
	struct db_val p[] = {DB_I64(LIST_MAX)};
	hf_err err = db_query(db, "SELECT " KIOSK_COLS " FROM kiosks ORDER BY kiosk_no LIMIT ?", p, 1, &r);
	if (err)
		return err;
	json_t *items = json_array();
	while (db_rows_next(r))
		json_array_append_new(items, kiosk_json(r));
	db_rows_free(r);
	*out = json_pack("{s:o}", "items", items);
	return HF_OK;
}

/* ------------------------------------------------------------------ signed requests */

/* The header that is missing or malformed (NULL when all four are usable), named the way the terminal's
 * operator sees it. The signature's own format is judged by hf_reqsign_verify. */
static const char *header_problem(const struct kiosk_signed *rq, bool *missing, const char **rule)
{
	const struct {
		const char *name;
		const char *value;
		bool (*valid)(const char *);
		const char *rule;
	} hdrs[] = {
		{HF_REQSIGN_H_KIOSK, rq->kiosk_no, hf_reqsign_kiosk_no_valid, "1-32 letters, digits or '-'"},
		{HF_REQSIGN_H_TIMESTAMP, rq->timestamp, hf_reqsign_timestamp_valid, "unix seconds, 1-12 digits"},
		{HF_REQSIGN_H_NONCE, rq->nonce, hf_reqsign_nonce_valid, "22-64 letters, digits, '_' or '-'"},
		{HF_REQSIGN_H_SIGNATURE, rq->signature, NULL, NULL},
	};
	for (size_t i = 0; i < HF_ARRAY_LEN(hdrs); i++) {
		if (!hdrs[i].value || !hdrs[i].value[0]) {
			*missing = true;
			return hdrs[i].name;
		}
	}
	for (size_t i = 0; i < HF_ARRAY_LEN(hdrs); i++) {
		if (hdrs[i].valid && !hdrs[i].valid(hdrs[i].value)) {
			*missing = false;
			*rule = hdrs[i].rule;
			return hdrs[i].name;
		}
	}
	return NULL;
}

static void say_window(char *msg, size_t cap, int window_s)
{
	if (window_s % 60 == 0)
		say(msg, cap, "timestamp outside the %d-minute window; check the terminal clock", window_s / 60);
	else
		say(msg, cap, "timestamp outside the %d-second window; check the terminal clock", window_s);
}

/* Each pool thread remembers the keys of the terminals it has seen (no locks, nothing shared between
 * threads or instances). Safe because a terminal's key never changes: enrolment happens once, from pending,
 * and revocation is final. Whether the terminal is still active is NOT remembered: the statement that
 * spends the nonce checks it on every request, so a revocation takes effect at once on every instance. */
#define KEY_CACHE_SLOTS 64
struct key_slot {
	char kiosk_no[33];
	int64_t id;
	char pay_point[65];
	uint8_t pk[HF_REQSIGN_PK_LEN];
};
static _Thread_local struct key_slot key_cache[KEY_CACHE_SLOTS];

static struct key_slot *key_slot_for(const char *kiosk_no)
{
	uint32_t h = 2166136261u;
	for (const char *p = kiosk_no; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	return &key_cache[h % KEY_CACHE_SLOTS];
}

/* Spends the nonce of an already verified request, in the same statement checking that the terminal is
 * still active. HF_OK; HF_ECONFLICT on a replay; HF_ENOTFOUND when the terminal is no longer active. */
static hf_err nonce_spend(struct db *db, int64_t id, const char *nonce)
{
	uint8_t digest[32];
	hf_sha256(nonce, strlen(nonce), digest);
	struct db_val nv[] = {DB_BLOB(digest, 16), DB_I64(id)};
	uint64_t n = 0;
	hf_err err = db_exec(db,
			     "INSERT INTO kiosk_nonces (kiosk_id, nonce, seen_at) SELECT id, ?, UTC_TIMESTAMP(3) FROM kiosks"
			     " WHERE id = ? AND status = 'active'",
			     nv, HF_ARRAY_LEN(nv), &n);
	if (!err && n != 1)
		err = HF_ENOTFOUND;
	return err;
}

static void say_replay(char *msg, size_t cap)
{
	say(msg, cap, "replayed request: this nonce was already used; send a fresh nonce with every request");
}

hf_err kiosk_authenticate(struct db *db, const struct kiosk_signed *rq, int64_t now_s, int window_s,
			  struct kiosk_identity *out, char *msg, size_t msg_cap)
{
	HF_ASSERT(window_s > 0);
	bool missing = false;
	const char *rule = NULL;
	const char *bad = header_problem(rq, &missing, &rule);
	if (bad && missing) {
		say(msg, msg_cap, "sign the request: %s missing", bad);
		return HF_EAUTH;
	}
	if (bad) {
		say(msg, msg_cap, "malformed %s header: %s", bad, rule);
		return HF_EAUTH;
	}
	if (rq->has_query) {
		say(msg, msg_cap, "kiosk requests carry no query string");
		return HF_EAUTH;
	}
	int64_t ts = 0;
	if (hf_parse_i64(rq->timestamp, 0, INT64_MAX, &ts) || ts < now_s - window_s || ts > now_s + window_s) {
		say_window(msg, msg_cap, window_s);
		return HF_EAUTH;
	}

	/* Fast path: a key this thread has seen, verified, then one statement spends the nonce and checks the
	 * terminal is active. Anything unexpected falls through to the full path, which explains it. */
	struct key_slot *slot = key_slot_for(rq->kiosk_no);
	if (slot->id && strcmp(slot->kiosk_no, rq->kiosk_no) == 0 &&
	    hf_reqsign_verify(slot->pk, rq->signature, rq->method, rq->path, rq->timestamp, rq->nonce, rq->kiosk_no,
			      rq->body, rq->body_len) == HF_OK) {
		hf_err e = nonce_spend(db, slot->id, rq->nonce);
		if (e == HF_ECONFLICT) {
			say_replay(msg, msg_cap);
			return HF_EAUTH;
		}
		if (e != HF_ENOTFOUND) {
			if (!e) {
				*out = (struct kiosk_identity){.id = slot->id};
				memcpy(out->kiosk_no, slot->kiosk_no, sizeof(out->kiosk_no));
				memcpy(out->pay_point, slot->pay_point, sizeof(out->pay_point));
			}
			return e;
		}
		slot->id = 0; /* no longer active: the full path says why */
	}

	struct db_rows *r = NULL;
	struct db_val p[] = {db_str(rq->kiosk_no)};
	hf_err err = db_query(db, "SELECT id, pay_point, status, public_key FROM kiosks WHERE kiosk_no = ?", p, 1, &r);
	if (err)
		return err;
	if (!db_rows_next(r)) {
		say(msg, msg_cap, "unknown terminal: no kiosk with this number is registered");
		err = HF_EAUTH;
		goto out_rows;
	}
	int64_t id = db_rows_i64(r, 0);
	const char *status = db_rows_str(r, 2);
	if (strcmp(status, "pending") == 0) {
		say(msg, msg_cap, "terminal not enrolled");
		err = HF_EFORBIDDEN;
		goto out_rows;
	}
	if (strcmp(status, "active") != 0) {
		say(msg, msg_cap, "terminal revoked");
		err = HF_EFORBIDDEN;
		goto out_rows;
	}
	size_t pk_len = 0;
	const void *pk = db_rows_blob(r, 3, &pk_len);
	if (!pk || pk_len != HF_REQSIGN_PK_LEN) {
		hf_log(HF_LOG_ERROR, "core.kiosk", "msg=\"active terminal without a valid public key\" kiosk_no=%s",
		       rq->kiosk_no);
		err = HF_EINTERNAL;
		goto out_rows;
	}
	err = hf_reqsign_verify(pk, rq->signature, rq->method, rq->path, rq->timestamp, rq->nonce, rq->kiosk_no,
				rq->body, rq->body_len);
	if (err == HF_EINVAL) {
		say(msg, msg_cap, "request cannot be signed: the path must be printable ASCII without a query string");
		err = HF_EAUTH;
		goto out_rows;
	}
	if (err) {
		say(msg, msg_cap, "bad signature");
		err = HF_EAUTH;
		goto out_rows;
	}

	/* Only now, with the request proven to come from the terminal, is its nonce spent: a stranger cannot
	 * fill the table or burn a terminal's nonces. The INSERT commits on its own (autocommit), so a request
	 * refused later still used its nonce. */
	err = nonce_spend(db, id, rq->nonce);
	if (err == HF_ECONFLICT) {
		say_replay(msg, msg_cap);
		err = HF_EAUTH;
		goto out_rows;
	}
	if (err == HF_ENOTFOUND) { /* revoked between our read and the nonce */
		say(msg, msg_cap, "terminal revoked");
		err = HF_EFORBIDDEN;
		goto out_rows;
	}
	if (err)
		goto out_rows;
	struct kiosk_identity who = {.id = id};
	HF_ASSERT(hf_strlcpy(who.kiosk_no, rq->kiosk_no, sizeof(who.kiosk_no))); /* the header check capped it */
	/* A row read back is not trusted: register writes ASCII only, but the column holds 64 characters of
	 * any width. */
	if (!hf_strlcpy(who.pay_point, db_rows_str(r, 1), sizeof(who.pay_point))) {
		hf_log(HF_LOG_ERROR, "core.kiosk", "msg=\"pay point too long for the identity\" kiosk_no=%s",
		       rq->kiosk_no);
		err = HF_EINTERNAL;
		goto out_rows;
	}
	*out = who;
	*slot = (struct key_slot){.id = id};
	memcpy(slot->kiosk_no, who.kiosk_no, sizeof(slot->kiosk_no));
	memcpy(slot->pay_point, who.pay_point, sizeof(slot->pay_point));
	memcpy(slot->pk, pk, HF_REQSIGN_PK_LEN);
out_rows:
	db_rows_free(r);
	return err;
}

hf_err kiosk_prune_nonces(struct db *db, int window_s)
{
	HF_ASSERT(window_s > 0);
	/* A request stamped window_s ahead of our clock is accepted until 2 * window_s after it was first
	 * seen, so its nonce must be kept that long; the minute on top covers the core's clock (which judges
	 * timestamps) running apart from the database's (which stamps seen_at). */
	struct db_val p[] = {DB_I64((int64_t)window_s * 2 + 60)};
	/* In slices, so no statement holds the table long; as many as it takes (bounded) to keep up with the
	 * busiest minute. */
	for (int i = 0; i < 200; i++) {
		uint64_t n = 0;
		hf_err err = db_exec(db, "DELETE FROM kiosk_nonces WHERE seen_at < UTC_TIMESTAMP(3) - INTERVAL ? SECOND LIMIT 50000",
				     p, HF_ARRAY_LEN(p), &n);
		if (err || n < 50000)
			return err;
	}
	return HF_OK;
}
