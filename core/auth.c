/* auth.c - staff login with password + TOTP, sessions, lockout, account administration. */
#include "hf_base.h"
#include "auth.h"
#include "app.h"
#include "hf_crypto.h"
#include "hf_log.h"
#include "hf_password.h"
#include "hf_qr.h"
#include "hf_totp.h"
#include "outbox.h"
#include "ratelimit.h"
#include "validate.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TS_FMT "'%Y-%m-%dT%H:%i:%s.%fZ'"
#define TOKEN_BYTES 32
#define TOKEN_B64_MAX 64
#define TOTP_SECRET_BYTES 20
#define RECOVERY_CODES 10
#define PASSWORD_MAX_BYTES 512 /* 128 code points of up to 4 bytes */

const char *const auth_role_names[ROLE_COUNT_ + 1] = {"admin",   "registrar", "case_worker", "payment_officer",
						       "auditor", "support",   NULL};

int auth_role_parse(const char *s)
{
	for (int i = 0; i < ROLE_COUNT_; i++)
		if (s && strcmp(s, auth_role_names[i]) == 0)
			return i;
	return -1;
}

static struct {
	int idle_s, absolute_s, max_failures, lockout_s;
	char issuer[64];
	bool have_service_key;
	uint8_t service_key_hash[32];
	struct ratelimit *by_address, *by_account;
	struct ratelimit *refusals; /* audit entries for requests without a valid credential, per address */
	char dummy_hash[crypto_pwhash_STRBYTES]; /* verified against for unknown users: same cost, same time */
} A;

void auth_principal_finish(struct principal *p, const char *type)
{
	p->audit = (struct audit_actor){type, p->name, p->source[0] ? p->source : "local",
					p->request_id ? p->request_id : ""};
}

hf_err auth_init(const struct hf_config *cfg)
{
	A.idle_s = (int)hf_config_int(cfg, "auth.idle_timeout_s");
	A.absolute_s = (int)hf_config_int(cfg, "auth.absolute_timeout_s");
	A.max_failures = (int)hf_config_int(cfg, "auth.max_failures");
	A.lockout_s = (int)hf_config_int(cfg, "auth.lockout_s");
	hf_strlcpy(A.issuer, hf_config_str(cfg, "auth.mfa_issuer"), sizeof(A.issuer));
	A.by_address = ratelimit_new((int)hf_config_int(cfg, "auth.rate_address_burst"),
				     (int)hf_config_int(cfg, "auth.rate_address_per_min"));
	A.by_account = ratelimit_new((int)hf_config_int(cfg, "auth.rate_account_burst"),
				     (int)hf_config_int(cfg, "auth.rate_account_per_min"));
	A.refusals = ratelimit_new(60, 600);
	uint8_t rnd[24];
	char pw[49];
	hf_random_bytes(rnd, sizeof(rnd));
	hf_hex(rnd, sizeof(rnd), pw);
	hf_err err = hf_password_hash(pw, A.dummy_hash);
	if (err)
		return err;
	const char *path = hf_config_str(cfg, "auth.gateway_secret_file");
	A.have_service_key = false;
	if (path && path[0]) {
		struct hf_buf b;
		hf_buf_init(&b, 4096);
		err = hf_file_read(path, 4096, true, &b);
		if (!err) {
			size_t n = b.len;
			while (n && (b.data[n - 1] == '\n' || b.data[n - 1] == '\r' || b.data[n - 1] == ' '))
				n--;
			if (n < 32) {
				hf_log(HF_LOG_ERROR, "core.auth", "msg=\"gateway secret too short (need 32+ chars)\" file=%s",
				       path);
				err = HF_EINVAL;
			} else {
				hf_sha256(b.data, n, A.service_key_hash);
				A.have_service_key = true;
			}
			sodium_memzero(b.data, b.cap);
		} else {
			hf_log(HF_LOG_ERROR, "core.auth", "msg=\"cannot read gateway secret\" file=%s", path);
		}
		hf_buf_release(&b);
	}
	return err;
}

void auth_shutdown(void)
{
	ratelimit_free(A.by_address);
	ratelimit_free(A.by_account);
	ratelimit_free(A.refusals);
	A.by_address = A.by_account = A.refusals = NULL;
}

static void say(char *msg, size_t cap, const char *fmt, ...) HF_PRINTF(3, 4);
static void say(char *msg, size_t cap, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, cap, fmt, ap);
	va_end(ap);
}

static bool username_ok(const char *s)
{
	size_t n = strlen(s);
	if (n < 3 || n > 48)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* A string field taken as typed (passwords and codes are never trimmed). */
static const char *raw_str(json_t *body, const char *key, bool required, size_t max_bytes, struct hf_ferrs *fe)
{
	json_t *v = json_object_get(body, key);
	if (!v || json_is_null(v)) {
		if (required)
			hf_ferrs_add(fe, key, "required", "required");
		return NULL;
	}
	if (!json_is_string(v)) {
		hf_ferrs_add(fe, key, "type", "must be a string");
		return NULL;
	}
	if (json_string_length(v) > max_bytes || json_string_length(v) == 0) {
		hf_ferrs_add(fe, key, "length", "must be 1 to %zu bytes", max_bytes);
		return NULL;
	}
	return json_string_value(v);
}

static void token_hash(const char *token, uint8_t out[32])
{
	hf_sha256(token, strlen(token), out);
}

static void new_token(char out[TOKEN_B64_MAX], uint8_t hash[32])
{
	uint8_t raw[TOKEN_BYTES];
	hf_random_bytes(raw, sizeof(raw));
	sodium_bin2base64(out, TOKEN_B64_MAX, raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, sizeof(raw));
	token_hash(out, hash);
}

/* Recovery codes: 10 base32 characters shown as "abcde-fghij"; compared by blind index. */
static void recovery_normalise(const char *in, char out[16])
{
	size_t n = 0;
	for (const char *p = in; *p && n < 15; p++) {
		char c = *p;
		if (c == '-' || c == ' ')
			continue;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		out[n++] = c;
	}
	out[n] = '\0';
}

static void recovery_hash(const char *normalised, uint8_t out[HF_BIDX_LEN])
{
	hf_blind_index(g_app.keys, "recovery", (struct hf_str){normalised, strlen(normalised)}, out);
}

/* ------------------------------------------------------------------ audit helpers */

static json_t *reason(const char *why)
{
	return json_pack("{s:s}", "reason", why);
}

/* A refusal, audited in its own transaction. The answer to the client does not depend on whether the audit
 * write worked, but a failure is logged. */
static void audit_refusal(struct db *db, const struct audit_actor *who, const char *action, const char *record,
			  const char *why)
{
	json_t *d = reason(why);
	struct audit_event ev = {action, "staff_user", record, "denied", NULL, NULL, d};
	hf_err err = audit_record(db, who, &ev);
	if (err)
		hf_log(HF_LOG_ERROR, "core.auth", "msg=\"cannot audit a refusal\" action=%s err=%s", action, hf_err_name(err));
	json_decref(d);
}

/* ------------------------------------------------------------------ login */

struct user_row {
	int64_t id;
	int role;
	char pw_hash[crypto_pwhash_STRBYTES];
	bool mfa_active, disabled, locked;
	int64_t mfa_last_step, locked_until_s;
	unsigned failed;
	uint8_t mfa_sealed[128];
	size_t mfa_sealed_len;
	char locked_until[40];
};

#define USER_COLS                                                                                              \
	"id, role, pw_hash, mfa_state, mfa_secret_enc, mfa_last_step, failed_logins, "                        \
	"COALESCE(locked_until > UTC_TIMESTAMP(3), 0), disabled, COALESCE(DATE_FORMAT(locked_until, '%H:%i'), '')"

static hf_err user_load(struct db *db, const char *username, bool for_update, struct user_row *u)
{
	struct db_val v[] = {db_str(username)};
	struct db_rows *r = NULL;
	hf_err err = db_query(db,
			      for_update ? "SELECT " USER_COLS " FROM staff_users WHERE username = ? FOR UPDATE"
					 : "SELECT " USER_COLS " FROM staff_users WHERE username = ?",
			      v, 1, &r);
	if (err)
		return err;
	if (!db_rows_next(r)) {
		db_rows_free(r);
		return HF_ENOTFOUND;
	}
	memset(u, 0, sizeof(*u));
	u->id = db_rows_i64(r, 0);
	u->role = auth_role_parse(db_rows_str(r, 1));
	hf_strlcpy(u->pw_hash, db_rows_str(r, 2), sizeof(u->pw_hash));
	u->mfa_active = strcmp(db_rows_str(r, 3), "active") == 0;
	size_t n = 0;
	const void *blob = db_rows_null(r, 4) ? NULL : db_rows_blob(r, 4, &n);
	if (blob && n <= sizeof(u->mfa_sealed)) {
		memcpy(u->mfa_sealed, blob, n);
		u->mfa_sealed_len = n;
	}
	u->mfa_last_step = db_rows_i64(r, 5);
	u->failed = (unsigned)db_rows_i64(r, 6);
	u->locked = db_rows_i64(r, 7) != 0;
	u->disabled = db_rows_i64(r, 8) != 0;
	hf_strlcpy(u->locked_until, db_rows_str(r, 9), sizeof(u->locked_until));
	db_rows_free(r);
	return u->role < 0 ? HF_EINTERNAL : HF_OK;
}

static hf_err mfa_secret_open(int64_t user_id, const uint8_t *sealed, size_t len, uint8_t key[TOTP_SECRET_BYTES])
{
	char ad[64];
	int n = snprintf(ad, sizeof(ad), "staff_users.mfa_secret:%lld", (long long)user_id);
	struct hf_buf plain;
	hf_buf_init(&plain, 256);
	hf_err err = hf_field_open(g_app.keys, (struct hf_str){ad, (size_t)n}, sealed, len, &plain);
	if (!err && plain.len != TOTP_SECRET_BYTES)
		err = HF_EINTERNAL;
	if (!err)
		memcpy(key, plain.data, TOTP_SECRET_BYTES);
	if (plain.data)
		sodium_memzero(plain.data, plain.cap);
	hf_buf_release(&plain);
	return err;
}

static hf_err mfa_secret_seal(int64_t user_id, const uint8_t key[TOTP_SECRET_BYTES], struct hf_buf *out)
{
	char ad[64];
	int n = snprintf(ad, sizeof(ad), "staff_users.mfa_secret:%lld", (long long)user_id);
	return hf_field_seal(g_app.keys, (struct hf_str){ad, (size_t)n}, key, TOTP_SECRET_BYTES, out);
}

static hf_err session_create(struct db *db, int64_t user_id, bool full, const char *source, char token[TOKEN_B64_MAX],
			     int64_t *session_id)
{
	uint8_t hash[32];
	new_token(token, hash);
	int64_t id = db_new_id();
	/* An enrolment-only session lives 15 minutes at most. */
	int64_t life = full ? A.absolute_s : (A.absolute_s < 900 ? A.absolute_s : 900);
	struct db_val v[] = {DB_I64(id), DB_BLOB(hash, 32), DB_I64(user_id), db_str(full ? "full" : "enrol"),
			     DB_I64(life), db_str(source)};
	*session_id = id;
	return db_exec(db,
		       "INSERT INTO staff_sessions (id, token_hash, user_id, stage, created_at, last_seen_at, expires_at, source)"
		       " VALUES (?, ?, ?, ?, UTC_TIMESTAMP(3), UTC_TIMESTAMP(3), UTC_TIMESTAMP(3) + INTERVAL ? SECOND, ?)",
		       v, HF_ARRAY_LEN(v), NULL);
}

static hf_err sessions_end_all(struct db *db, int64_t user_id, const char *why)
{
	struct db_val v[] = {db_str(why), DB_I64(user_id)};
	return db_exec(db,
		       "UPDATE staff_sessions SET ended_at = UTC_TIMESTAMP(3), end_reason = ? WHERE user_id = ? AND ended_at IS NULL",
		       v, 2, NULL);
}

struct login_tx {
	const char *username, *totp, *recovery, *source;
	const struct audit_actor *who;
	bool password_ok;
	/* results */
	hf_err verdict;
	char msg[200];
	char token[TOKEN_B64_MAX];
	int64_t session_id;
	bool full;
	int role;
	int recovery_left;
};

static hf_err login_fail(struct db *db, struct login_tx *t, const struct user_row *u, const char *why, const char *msg)
{
	unsigned failed = u->failed + 1;
	bool lock = (int)failed >= A.max_failures;
	struct db_val v[] = {DB_I64(lock ? 0 : failed), DB_I64(lock ? 1 : 0), DB_I64(A.lockout_s), DB_I64(u->id)};
	hf_err err = db_exec(db,
			     "UPDATE staff_users SET failed_logins = ?, locked_until = IF(?, UTC_TIMESTAMP(3) + INTERVAL ? SECOND,"
			     " locked_until) WHERE id = ?",
			     v, HF_ARRAY_LEN(v), NULL);
	if (err)
		return err;
	json_t *d = json_pack("{s:s, s:i, s:b}", "reason", why, "failures", (int)failed, "locked", lock);
	struct audit_event ev = {"auth.login", "staff_user", t->username, "denied", NULL, NULL, d};
	err = audit_append(db, t->who, &ev);
	json_decref(d);
	if (err)
		return err;
	t->verdict = HF_EAUTH;
	if (lock)
		say(t->msg, sizeof(t->msg),
		    "%s Too many failed attempts: this account is now locked for %d minutes.", msg, A.lockout_s / 60);
	else
		say(t->msg, sizeof(t->msg), "%s", msg);
	return HF_OK;
}

static hf_err login_body(struct db *db, void *ctx)
{
	struct login_tx *t = ctx;
	t->verdict = HF_OK;
	t->msg[0] = '\0';
	struct user_row u;
	hf_err err = user_load(db, t->username, true, &u);
	if (err)
		return err;
	if (u.locked) { /* locked by a concurrent attempt since our first look */
		t->verdict = HF_EAUTH;
		say(t->msg, sizeof(t->msg), "Too many failed attempts: this account is locked until %s UTC.", u.locked_until);
		json_t *d = reason("locked");
		struct audit_event ev = {"auth.login", "staff_user", t->username, "denied", NULL, NULL, d};
		err = audit_append(db, t->who, &ev);
		json_decref(d);
		return err;
	}
	if (!t->password_ok)
		return login_fail(db, t, &u, "bad_password", "Wrong username, password or code.");
	if (u.disabled) {
		t->verdict = HF_EAUTH;
		say(t->msg, sizeof(t->msg), "This account is disabled; ask an administrator.");
		json_t *d = reason("disabled");
		struct audit_event ev = {"auth.login", "staff_user", t->username, "denied", NULL, NULL, d};
		err = audit_append(db, t->who, &ev);
		json_decref(d);
		return err;
	}
	int64_t step = u.mfa_last_step;
	t->recovery_left = -1;
	if (u.mfa_active) {
		if (t->recovery && !t->totp) {
			char norm[16];
			uint8_t h[HF_BIDX_LEN];
			recovery_normalise(t->recovery, norm);
			recovery_hash(norm, h);
			struct db_val v[] = {DB_I64(u.id), DB_BLOB(h, sizeof(h))};
			uint64_t changed = 0;
			err = db_exec(db,
				      "UPDATE staff_recovery_codes SET used_at = UTC_TIMESTAMP(3) WHERE user_id = ? AND code_hash = ?"
				      " AND used_at IS NULL",
				      v, 2, &changed);
			if (err)
				return err;
			if (changed != 1)
				return login_fail(db, t, &u, "bad_recovery_code", "Wrong or already used recovery code.");
			struct db_val w[] = {DB_I64(u.id)};
			struct db_rows *r = NULL;
			err = db_query(db, "SELECT COUNT(*) FROM staff_recovery_codes WHERE user_id = ? AND used_at IS NULL", w,
				       1, &r);
			if (err)
				return err;
			t->recovery_left = db_rows_next(r) ? (int)db_rows_i64(r, 0) : 0;
			db_rows_free(r);
		} else {
			uint8_t key[TOTP_SECRET_BYTES];
			err = mfa_secret_open(u.id, u.mfa_sealed, u.mfa_sealed_len, key);
			if (err)
				return err;
			int64_t got = 0;
			bool ok = hf_totp_match(key, sizeof(key), t->totp, hf_now_ms() / 1000, u.mfa_last_step, &got);
			sodium_memzero(key, sizeof(key));
			if (!ok)
				return login_fail(db, t, &u, "bad_totp", "Wrong or already used code.");
			step = got;
		}
	}
	t->full = u.mfa_active;
	t->role = u.role;
	struct db_val v[] = {DB_I64(step), DB_I64(u.id)};
	err = db_exec(db, "UPDATE staff_users SET failed_logins = 0, locked_until = NULL, mfa_last_step = ? WHERE id = ?", v,
		      2, NULL);
	if (!err)
		err = session_create(db, u.id, t->full, t->source, t->token, &t->session_id);
	if (err)
		return err;
	json_t *d = json_pack("{s:s, s:s}", "stage", t->full ? "full" : "enrol", "factor",
			      !u.mfa_active ? "password" : (t->recovery_left >= 0 ? "recovery_code" : "totp"));
	struct audit_event ev = {"auth.login", "staff_user", t->username, "ok", NULL, NULL, d};
	struct audit_actor staff = *t->who; /* proven now: the entry names a member of staff */
	staff.type = "staff";
	err = audit_append(db, &staff, &ev);
	json_decref(d);
	return err;
}

static bool totp_shape_ok(const char *s)
{
	if (strlen(s) != 6)
		return false;
	for (int i = 0; i < 6; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

hf_err auth_login(struct db *db, const char *source, const char *request_id, json_t *body, struct hf_ferrs *fe,
		  char *msg, size_t msg_cap, int *retry_after_s, json_t **out)
{
	static const char *const allowed[] = {"username", "password", "totp_code", "recovery_code", NULL};
	hf_json_only_fields(body, allowed, "", fe);
	const char *username = raw_str(body, "username", true, 64, fe);
	const char *password = raw_str(body, "password", true, PASSWORD_MAX_BYTES, fe);
	const char *totp = raw_str(body, "totp_code", false, 16, fe);
	const char *recovery = raw_str(body, "recovery_code", false, 32, fe);
	if (totp && !totp_shape_ok(totp))
		hf_ferrs_add(fe, "totp_code", "format", "6 digits from the authenticator app");
	if (hf_ferrs_any(fe))
		return HF_EINVAL;

	/* The audit trail names an account only once it is known to exist: a password typed into the username
	 * field by mistake must not end up in the trail. */
	struct audit_actor who = {"anonymous", "(unverified)", source, request_id};
	/* 1. Rate limits, before anything costs a hash or a database row. */
	char key[96];
	bool first = false;
	int wait = 0;
	snprintf(key, sizeof(key), "a:%s", source);
	bool ok = ratelimit_take(A.by_address, key, hf_mono_us() / 1000, &first, &wait);
	const char *limited = ok ? NULL : "rate_limited_address";
	if (ok) {
		snprintf(key, sizeof(key), "u:%s", username);
		ok = ratelimit_take(A.by_account, key, hf_mono_us() / 1000, &first, &wait);
		limited = ok ? NULL : "rate_limited_account";
	}
	if (!ok) {
		if (first) /* a flood is audited once per burst, not per request */
			audit_refusal(db, &who, "auth.login", "", limited);
		*retry_after_s = wait;
		say(msg, msg_cap, "Too many login attempts; try again in %d seconds.", wait);
		return HF_ERATELIMIT;
	}
	/* 2. The account: unknown and locked accounts are refused before hashing, too. */
	struct user_row u;
	hf_err err = username_ok(username) ? user_load(db, username, false, &u) : HF_ENOTFOUND;
	if (err == HF_ENOTFOUND) {
		(void)hf_password_verify(A.dummy_hash, password); /* same time as a wrong password */
		audit_refusal(db, &who, "auth.login", "", "unknown_user");
		say(msg, msg_cap, "Wrong username, password or code.");
		return HF_EAUTH;
	}
	if (err)
		return err;
	who.name = username;
	if (u.locked) {
		audit_refusal(db, &who, "auth.login", username, "locked");
		say(msg, msg_cap, "Too many failed attempts: this account is locked until %s UTC.", u.locked_until);
		return HF_EAUTH;
	}
	if (u.mfa_active && !totp && !recovery) {
		hf_ferrs_add(fe, "totp_code", "required", "enter the 6-digit code from the authenticator app (or a recovery code)");
		return HF_EINVAL;
	}
	/* 3. The password (Argon2id), outside any transaction: no row lock is held for 20 ms. */
	struct login_tx t = {.username = username, .totp = totp, .recovery = recovery, .source = source, .who = &who};
	t.password_ok = hf_password_verify(u.pw_hash, password);
	/* 4. Second factor, failure counting, session and audit: one transaction on the locked user row. */
	err = db_tx(db, login_body, &t);
	if (err)
		return err;
	if (t.verdict) {
		say(msg, msg_cap, "%s", t.msg);
		return t.verdict;
	}
	*out = json_pack("{s:s, s:s, s:i, s:i, s:{s:s, s:s}}", "token", t.token, "stage", t.full ? "full" : "enrol",
			 "idle_timeout_s", A.idle_s, "absolute_timeout_s", t.full ? A.absolute_s : 900, "user", "username",
			 username, "role", auth_role_names[t.role]);
	if (!t.full)
		json_object_set_new(*out, "next", json_string("enrol an authenticator: POST /api/v1/auth/mfa/enrol"));
	if (t.recovery_left >= 0)
		json_object_set_new(*out, "recovery_codes_left", json_integer(t.recovery_left));
	sodium_memzero(t.token, sizeof(t.token));
	return HF_OK;
}

/* ------------------------------------------------------------------ a credential typed at a kiosk */

struct staffcheck_tx {
	const char *username, *totp;
	const struct audit_actor *who;
	bool password_ok;
	const char *denied; /* why it was refused (audit detail), NULL when it was not */
	bool locked_now;
	int role;
};

/* Like login_body without a session: the second factor, and the failure counted on the locked user row so
 * that an override at a kiosk and a login at the office share one lockout. Refusals commit (HF_OK with
 * t->denied set). */
static hf_err staffcheck_body(struct db *db, void *ctx)
{
	struct staffcheck_tx *t = ctx;
	t->denied = NULL;
	t->locked_now = false;
	struct user_row u;
	hf_err err = user_load(db, t->username, true, &u);
	if (err)
		return err;
	int64_t step = u.mfa_last_step;
	if (u.locked) {
		t->denied = "locked";
	} else if (!t->password_ok) {
		t->denied = "bad_password";
	} else if (u.disabled) {
		t->denied = "disabled";
	} else if (!u.mfa_active) {
		t->denied = "mfa_not_enrolled"; /* such an account may only enrol an authenticator */
	} else if (!t->totp) {
		t->denied = "totp_missing";
	} else {
		uint8_t key[TOTP_SECRET_BYTES];
		err = mfa_secret_open(u.id, u.mfa_sealed, u.mfa_sealed_len, key);
		if (err)
			return err;
		int64_t got = 0;
		/* A code that is not 6 digits cannot match: it counts as a wrong one. */
		bool ok = totp_shape_ok(t->totp) &&
			  hf_totp_match(key, sizeof(key), t->totp, hf_now_ms() / 1000, u.mfa_last_step, &got);
		sodium_memzero(key, sizeof(key));
		if (ok)
			step = got;
		else
			t->denied = "bad_totp";
	}
	bool counts = t->denied && (strcmp(t->denied, "bad_password") == 0 || strcmp(t->denied, "bad_totp") == 0);
	if (counts) {
		unsigned failed = u.failed + 1;
		t->locked_now = (int)failed >= A.max_failures;
		struct db_val v[] = {DB_I64(t->locked_now ? 0 : failed), DB_I64(t->locked_now ? 1 : 0), DB_I64(A.lockout_s),
				     DB_I64(u.id)};
		err = db_exec(db,
			      "UPDATE staff_users SET failed_logins = ?, locked_until = IF(?, UTC_TIMESTAMP(3) + INTERVAL ?"
			      " SECOND, locked_until) WHERE id = ?",
			      v, HF_ARRAY_LEN(v), NULL);
	} else if (!t->denied) {
		struct db_val v[] = {DB_I64(step), DB_I64(u.id)};
		err = db_exec(db, "UPDATE staff_users SET failed_logins = 0, mfa_last_step = ? WHERE id = ?", v, 2, NULL);
		t->role = u.role;
	}
	if (err)
		return err;
	json_t *d = t->denied ? json_pack("{s:s, s:b}", "reason", t->denied, "locked", t->locked_now)
			      : json_pack("{s:s}", "factor", "totp");
	struct audit_event ev = {"auth.staff_check", "staff_user", t->username, t->denied ? "denied" : "ok", NULL, NULL,
				 d};
	err = audit_append(db, t->who, &ev);
	json_decref(d);
	return err;
}

hf_err auth_check_staff(struct db *db, const struct audit_actor *who, const char *username, const char *password,
			const char *totp, int *role_out, int *retry_after_s)
{
	/* Rate limits first, as for a login: each refused attempt below costs an Argon2id. */
	char key[96];
	bool first = false;
	int wait = 0;
	snprintf(key, sizeof(key), "u:%s", username);
	if (!ratelimit_take(A.by_account, key, hf_mono_us() / 1000, &first, &wait)) {
		if (first)
			audit_refusal(db, who, "auth.staff_check", "", "rate_limited_account");
		*retry_after_s = wait;
		return HF_ERATELIMIT;
	}
	struct user_row u;
	hf_err err = username_ok(username) ? user_load(db, username, false, &u) : HF_ENOTFOUND;
	if (err == HF_ENOTFOUND) {
		(void)hf_password_verify(A.dummy_hash, password); /* same time as a wrong password */
		audit_refusal(db, who, "auth.staff_check", "", "unknown_user");
		return HF_EAUTH;
	}
	if (err)
		return err;
	if (u.locked) {
		audit_refusal(db, who, "auth.staff_check", username, "locked");
		*retry_after_s = A.lockout_s;
		return HF_ERATELIMIT;
	}
	struct staffcheck_tx t = {.username = username, .totp = totp, .who = who};
	t.password_ok = hf_password_verify(u.pw_hash, password);
	err = db_tx(db, staffcheck_body, &t);
	if (err)
		return err;
	if (t.denied && strcmp(t.denied, "locked") == 0) {
		*retry_after_s = A.lockout_s;
		return HF_ERATELIMIT;
	}
	if (t.denied)
		return HF_EAUTH;
	*role_out = t.role;
	return HF_OK;
}

hf_err auth_throttle_address(const char *source, int *retry_after_s, bool *first_refusal)
{
	char key[96];
	snprintf(key, sizeof(key), "a:%s", source);
	return ratelimit_take(A.by_address, key, hf_mono_us() / 1000, first_refusal, retry_after_s) ? HF_OK
													: HF_ERATELIMIT;
}

bool auth_refusal_audit_budget(const char *source, bool *first_over)
{
	char key[96];
	snprintf(key, sizeof(key), "r:%s", source);
	return ratelimit_take(A.refusals, key, hf_mono_us() / 1000, first_over, NULL);
}

/* ------------------------------------------------------------------ sessions */

hf_err auth_session(struct db *db, const char *token, struct principal *p, char *msg, size_t msg_cap)
{
	size_t n = strlen(token);
	if (n < 40 || n >= TOKEN_B64_MAX) {
		say(msg, msg_cap, "The session token is not valid; log in again.");
		return HF_EAUTH;
	}
	uint8_t h[32];
	token_hash(token, h);
	struct db_val v[] = {DB_I64(A.idle_s), DB_BLOB(h, 32)};
	struct db_rows *r = NULL;
	hf_err err = db_query(db,
			      "SELECT s.id, s.user_id, s.stage, s.ended_at IS NOT NULL, s.expires_at <= UTC_TIMESTAMP(3),"
			      " s.last_seen_at <= UTC_TIMESTAMP(3) - INTERVAL ? SECOND,"
			      " TIMESTAMPDIFF(SECOND, s.last_seen_at, UTC_TIMESTAMP(3)), u.username, u.role, u.disabled,"
			      " COALESCE(s.end_reason, '')"
			      " FROM staff_sessions s JOIN staff_users u ON u.id = s.user_id WHERE s.token_hash = ?",
			      v, 2, &r);
	if (err)
		return err;
	if (!db_rows_next(r)) {
		db_rows_free(r);
		say(msg, msg_cap, "The session token is not valid; log in again.");
		return HF_EAUTH;
	}
	int64_t sid = db_rows_i64(r, 0);
	bool ended = db_rows_i64(r, 3) != 0, expired = db_rows_i64(r, 4) != 0, idle = db_rows_i64(r, 5) != 0;
	int64_t since = db_rows_i64(r, 6);
	bool disabled = db_rows_i64(r, 9) != 0;
	p->kind = PRINCIPAL_STAFF;
	p->session_id = sid;
	p->user_id = db_rows_i64(r, 1);
	p->enrol_only = strcmp(db_rows_str(r, 2), "enrol") == 0;
	p->role = auth_role_parse(db_rows_str(r, 8));
	hf_strlcpy(p->name, db_rows_str(r, 7), sizeof(p->name));
	hf_strlcpy(p->actor, p->name, sizeof(p->actor));
	char why[24];
	hf_strlcpy(why, db_rows_str(r, 10), sizeof(why));
	db_rows_free(r);
	if (ended || expired || idle || disabled || p->role < 0) {
		/* Tell the person what happened, the same on every later try. */
		const char *reason = ended ? why : disabled ? "disabled" : expired ? "expired" : "idle";
		if (!ended) {
			struct db_val w[] = {db_str(reason), DB_I64(sid)};
			err = db_exec(db, "UPDATE staff_sessions SET ended_at = UTC_TIMESTAMP(3), end_reason = ? WHERE id = ? AND ended_at IS NULL",
				      w, 2, NULL);
			if (err)
				return err;
		}
		if (disabled || strcmp(reason, "disabled") == 0)
			say(msg, msg_cap, "This account is disabled; ask an administrator.");
		else if (strcmp(reason, "expired") == 0)
			say(msg, msg_cap, "This session reached its time limit (%d minutes after login); log in again.",
			    A.absolute_s / 60 ? A.absolute_s / 60 : 1);
		else if (strcmp(reason, "idle") == 0)
			say(msg, msg_cap, "This session expired after inactivity; log in again.");
		else if (strncmp(reason, "logout", 6) == 0)
			say(msg, msg_cap, "This session has ended: you logged out; log in again.");
		else if (strncmp(reason, "password", 8) == 0)
			say(msg, msg_cap, "This session has ended: the password was changed; log in with the new one.");
		else
			say(msg, msg_cap, "This session has ended (%s); log in again.",
			    strcmp(reason, "mfa_reset") == 0      ? "the authenticator was reset"
			    : strcmp(reason, "role_changed") == 0 ? "your role changed"
								  : "ended by the system");
		p->kind = PRINCIPAL_NONE;
		return HF_EAUTH;
	}
	/* Idle tracking costs one write per session per touch interval, not per request. */
	int64_t touch = A.idle_s / 4 < 60 ? A.idle_s / 4 : 60;
	if (since >= touch) {
		struct db_val w[] = {DB_I64(sid)};
		err = db_exec(db, "UPDATE staff_sessions SET last_seen_at = UTC_TIMESTAMP(3) WHERE id = ?", w, 1, NULL);
		if (err)
			return err;
	}
	return HF_OK;
}

hf_err auth_service(const char *key, struct principal *p, char *msg, size_t msg_cap)
{
	uint8_t h[32];
	hf_sha256(key, strlen(key), h);
	if (!A.have_service_key || !hf_ct_equal(h, A.service_key_hash, 32)) {
		say(msg, msg_cap, "The service credential is not valid.");
		return HF_EAUTH;
	}
	p->kind = PRINCIPAL_SERVICE;
	hf_strlcpy(p->name, "gateway", sizeof(p->name));
	hf_strlcpy(p->actor, "svc:gateway", sizeof(p->actor));
	return HF_OK;
}

struct logout_tx {
	const struct principal *p;
	bool all;
	uint64_t ended;
};

static hf_err logout_body(struct db *db, void *ctx)
{
	struct logout_tx *t = ctx;
	hf_err err;
	if (t->all) {
		struct db_val v[] = {DB_I64(t->p->user_id)};
		err = db_exec(db,
			      "UPDATE staff_sessions SET ended_at = UTC_TIMESTAMP(3), end_reason = 'logout_all' WHERE user_id = ?"
			      " AND ended_at IS NULL",
			      v, 1, &t->ended);
	} else {
		struct db_val v[] = {DB_I64(t->p->session_id)};
		err = db_exec(db, "UPDATE staff_sessions SET ended_at = UTC_TIMESTAMP(3), end_reason = 'logout' WHERE id = ?"
				  " AND ended_at IS NULL",
			      v, 1, &t->ended);
	}
	if (err)
		return err;
	json_t *d = json_pack("{s:I}", "sessions_ended", (json_int_t)t->ended);
	struct audit_event ev = {t->all ? "auth.logout_all" : "auth.logout", "staff_user", t->p->name, "ok", NULL, NULL, d};
	err = audit_append(db, &t->p->audit, &ev);
	json_decref(d);
	return err;
}

hf_err auth_logout(struct db *db, const struct principal *p, bool all, json_t **out)
{
	struct logout_tx t = {p, all, 0};
	hf_err err = db_tx(db, logout_body, &t);
	if (!err)
		*out = json_pack("{s:I}", "sessions_ended", (json_int_t)t.ended);
	return err;
}

hf_err auth_me(struct db *db, const struct principal *p, json_t **out)
{
	struct db_val v[] = {DB_I64(p->user_id), DB_I64(p->session_id)};
	struct db_rows *r = NULL;
	hf_err err = db_query(db,
			      "SELECT u.mfa_state, DATE_FORMAT(s.expires_at, " TS_FMT "),"
			      " (SELECT COUNT(*) FROM staff_recovery_codes c WHERE c.user_id = u.id AND c.used_at IS NULL)"
			      " FROM staff_users u JOIN staff_sessions s ON s.user_id = u.id WHERE u.id = ? AND s.id = ?",
			      v, 2, &r);
	if (err)
		return err;
	if (!db_rows_next(r)) {
		db_rows_free(r);
		return HF_ENOTFOUND;
	}
	*out = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "username", p->name, "role", auth_role_names[p->role],
			 "session_stage", p->enrol_only ? "enrol" : "full", "mfa", db_rows_str(r, 0), "session_expires_at",
			 db_rows_str(r, 1), "recovery_codes_left", (json_int_t)db_rows_i64(r, 2));
	db_rows_free(r);
	return HF_OK;
}

/* ------------------------------------------------------------------ passwords */

static bool new_password_ok(const char *pw, const char *username, const char *field, struct hf_ferrs *fe)
{
	char why[200];
	if (!hf_password_acceptable(pw, username, why, sizeof(why))) {
		hf_ferrs_add(fe, field, "weak", "%s", why);
		return false;
	}
	return true;
}

struct pwchange_tx {
	const struct principal *p;
	const char *hash;
	int64_t user_id;
	const char *username;
	const struct audit_actor *who;
	const char *action;
};

static hf_err pwchange_body(struct db *db, void *ctx)
{
	struct pwchange_tx *t = ctx;
	struct db_val v[] = {db_str(t->hash), db_str(t->who->name), DB_I64(t->user_id)};
	hf_err err = db_exec(db,
			     "UPDATE staff_users SET pw_hash = ?, password_changed_at = UTC_TIMESTAMP(3), failed_logins = 0,"
			     " locked_until = NULL, version = version + 1, updated_at = UTC_TIMESTAMP(3), updated_by = ? WHERE id = ?",
			     v, 3, NULL);
	if (!err)
		err = sessions_end_all(db, t->user_id, "password_changed");
	if (err)
		return err;
	struct audit_event ev = {t->action, "staff_user", t->username, "ok", NULL, NULL, NULL};
	return audit_append(db, t->who, &ev);
}

hf_err auth_password_change(struct db *db, const struct principal *p, json_t *body, struct hf_ferrs *fe, char *msg,
			    size_t msg_cap, json_t **out)
{
	static const char *const allowed[] = {"current_password", "new_password", NULL};
	hf_json_only_fields(body, allowed, "", fe);
	const char *cur = raw_str(body, "current_password", true, PASSWORD_MAX_BYTES, fe);
	const char *neu = raw_str(body, "new_password", true, PASSWORD_MAX_BYTES, fe);
	if (neu)
		(void)new_password_ok(neu, p->name, "new_password", fe);
	if (hf_ferrs_any(fe))
		return HF_EINVAL;
	struct user_row u;
	hf_err err = user_load(db, p->name, false, &u);
	if (err)
		return err;
	if (!hf_password_verify(u.pw_hash, cur)) {
		audit_refusal(db, &p->audit, "auth.password_change", p->name, "bad_password");
		say(msg, msg_cap, "The current password is wrong.");
		return HF_EAUTH;
	}
	char hash[crypto_pwhash_STRBYTES];
	err = hf_password_hash(neu, hash);
	if (err)
		return err;
	struct pwchange_tx t = {p, hash, u.id, p->name, &p->audit, "auth.password_change"};
	err = db_tx(db, pwchange_body, &t);
	if (!err)
		*out = json_pack("{s:b, s:s}", "changed", 1, "next", "every session was ended; log in with the new password");
	return err;
}

/* ------------------------------------------------------------------ TOTP enrolment */

static hf_err recovery_codes_new(struct db *db, int64_t user_id, json_t **codes_out)
{
	struct db_val v[] = {DB_I64(user_id)};
	hf_err err = db_exec(db, "DELETE FROM staff_recovery_codes WHERE user_id = ?", v, 1, NULL);
	if (err)
		return err;
	json_t *codes = json_array();
	for (int i = 0; i < RECOVERY_CODES && !err; i++) {
		uint8_t rnd[7];
		char b32[16], shown[16], norm[16];
		hf_random_bytes(rnd, sizeof(rnd));
		size_t n = hf_base32_encode(rnd, sizeof(rnd), b32, sizeof(b32));
		HF_ASSERT(n >= 10);
		b32[10] = '\0';
		recovery_normalise(b32, norm);
		snprintf(shown, sizeof(shown), "%.5s-%.5s", norm, norm + 5);
		uint8_t h[HF_BIDX_LEN];
		recovery_hash(norm, h);
		struct db_val w[] = {DB_I64(db_new_id()), DB_I64(user_id), DB_BLOB(h, sizeof(h))};
		err = db_exec(db, "INSERT INTO staff_recovery_codes (id, user_id, code_hash) VALUES (?, ?, ?)", w, 3, NULL);
		json_array_append_new(codes, json_string(shown));
	}
	if (err) {
		json_decref(codes);
		return err;
	}
	*codes_out = codes;
	return HF_OK;
}

/* Secret, otpauth URI and QR code of a new TOTP secret for username. */
static hf_err mfa_material(const char *username, const uint8_t key[TOTP_SECRET_BYTES], json_t **out)
{
	char b32[64];
	size_t n = hf_base32_encode(key, TOTP_SECRET_BYTES, b32, sizeof(b32));
	HF_ASSERT(n > 0);
	struct hf_buf uri, svg;
	hf_buf_init(&uri, 1024);
	hf_buf_init(&svg, 256 * 1024);
	hf_err err = hf_totp_uri(A.issuer, username, b32, &uri);
	if (!err)
		err = hf_qr_svg(hf_buf_cstr(&uri), &svg);
	if (!err)
		*out = json_pack("{s:s, s:s, s:s, s:s}", "secret", b32, "otpauth_uri", hf_buf_cstr(&uri), "qr_svg",
				 hf_buf_cstr(&svg), "next", "scan the QR code, then POST /api/v1/auth/mfa/confirm {\"totp_code\"}");
	sodium_memzero(b32, sizeof(b32));
	hf_buf_release(&uri);
	hf_buf_release(&svg);
	return err;
}

struct enrol_tx {
	const struct principal *p;
	struct hf_buf sealed;
};

static hf_err enrol_body(struct db *db, void *ctx)
{
	struct enrol_tx *t = ctx;
	struct db_val v[] = {DB_BLOB(t->sealed.data, t->sealed.len), DB_I64(t->p->user_id)};
	uint64_t changed = 0;
	hf_err err = db_exec(db, "UPDATE staff_users SET mfa_secret_enc = ? WHERE id = ? AND mfa_state = 'pending'", v, 2,
			     &changed);
	if (err)
		return err;
	if (changed != 1)
		return HF_ECONFLICT;
	struct audit_event ev = {"auth.mfa_enrol", "staff_user", t->p->name, "ok", NULL, NULL, NULL};
	return audit_append(db, &t->p->audit, &ev);
}

hf_err auth_mfa_enrol(struct db *db, const struct principal *p, char *msg, size_t msg_cap, json_t **out)
{
	uint8_t key[TOTP_SECRET_BYTES];
	hf_random_bytes(key, sizeof(key));
	struct enrol_tx t = {.p = p};
	hf_buf_init(&t.sealed, 1024);
	hf_err err = mfa_secret_seal(p->user_id, key, &t.sealed);
	if (!err)
		err = db_tx(db, enrol_body, &t);
	if (err == HF_ECONFLICT)
		say(msg, msg_cap, "An authenticator is already active for this account; an administrator can reset it.");
	if (!err)
		err = mfa_material(p->name, key, out);
	sodium_memzero(key, sizeof(key));
	hf_buf_release(&t.sealed);
	return err;
}

struct confirm_tx {
	const struct principal *p;
	const char *code;
	bool matched;
	json_t *codes;
};

static hf_err confirm_body(struct db *db, void *ctx)
{
	struct confirm_tx *t = ctx;
	t->matched = false;
	json_decref(t->codes);
	t->codes = NULL;
	struct user_row u;
	hf_err err = user_load(db, t->p->name, true, &u);
	if (err)
		return err;
	if (u.mfa_active || u.mfa_sealed_len == 0)
		return HF_ECONFLICT;
	uint8_t key[TOTP_SECRET_BYTES];
	err = mfa_secret_open(u.id, u.mfa_sealed, u.mfa_sealed_len, key);
	if (err)
		return err;
	int64_t step = 0;
	t->matched = hf_totp_match(key, sizeof(key), t->code, hf_now_ms() / 1000, u.mfa_last_step, &step);
	sodium_memzero(key, sizeof(key));
	if (!t->matched)
		return HF_OK;
	struct db_val v[] = {DB_I64(step), DB_I64(u.id)};
	err = db_exec(db,
		      "UPDATE staff_users SET mfa_state = 'active', mfa_last_step = ?, version = version + 1,"
		      " updated_at = UTC_TIMESTAMP(3) WHERE id = ?",
		      v, 2, NULL);
	if (!err)
		err = recovery_codes_new(db, u.id, &t->codes);
	if (!err) {
		/* The enrolment session proved password + TOTP now: it becomes a full session. */
		struct db_val w[] = {DB_I64(A.absolute_s), DB_I64(t->p->session_id)};
		err = db_exec(db,
			      "UPDATE staff_sessions SET stage = 'full', expires_at = created_at + INTERVAL ? SECOND WHERE id = ?",
			      w, 2, NULL);
	}
	if (err)
		return err;
	struct audit_event ev = {"auth.mfa_confirm", "staff_user", t->p->name, "ok", NULL, NULL, NULL};
	return audit_append(db, &t->p->audit, &ev);
}

hf_err auth_mfa_confirm(struct db *db, const struct principal *p, json_t *body, struct hf_ferrs *fe, char *msg,
			size_t msg_cap, json_t **out)
{
	static const char *const allowed[] = {"totp_code", NULL};
	hf_json_only_fields(body, allowed, "", fe);
	const char *code = raw_str(body, "totp_code", true, 16, fe);
	if (code && !totp_shape_ok(code))
		hf_ferrs_add(fe, "totp_code", "format", "6 digits from the authenticator app");
	if (hf_ferrs_any(fe))
		return HF_EINVAL;
	struct confirm_tx t = {p, code, false, NULL};
	hf_err err = db_tx(db, confirm_body, &t);
	if (err == HF_ECONFLICT)
		say(msg, msg_cap, "Start with POST /api/v1/auth/mfa/enrol (or the authenticator is already active).");
	if (!err && !t.matched) {
		audit_refusal(db, &p->audit, "auth.mfa_confirm", p->name, "bad_totp");
		say(msg, msg_cap, "Wrong or already used code; check the phone's clock and try the next code.");
		return HF_EAUTH;
	}
	if (!err)
		*out = json_pack("{s:s, s:o, s:s}", "mfa", "active", "recovery_codes", t.codes, "note",
				 "keep these one-time recovery codes somewhere safe; they are shown only now");
	else
		json_decref(t.codes);
	return err;
}

/* ------------------------------------------------------------------ account administration */

static json_t *user_json(struct db_rows *r)
{
	return json_pack("{s:s, s:s, s:s, s:b, s:b, s:I, s:s, s:s, s:s, s:b, s:s}", "username", db_rows_str(r, 0), "role",
			 db_rows_str(r, 1), "mfa", db_rows_str(r, 2), "disabled", db_rows_i64(r, 3) != 0, "locked",
			 db_rows_i64(r, 4) != 0, "version", (json_int_t)db_rows_i64(r, 5), "created_at", db_rows_str(r, 6),
			 "created_by", db_rows_str(r, 7), "password_changed_at", db_rows_str(r, 8), "phone_on_file",
			 db_rows_i64(r, 9) != 0, "language", db_rows_str(r, 10));
}

#define USER_PUBLIC_COLS                                                                                       \
	"username, role, mfa_state, disabled, COALESCE(locked_until > UTC_TIMESTAMP(3), 0), version,"           \
	" DATE_FORMAT(created_at, " TS_FMT "), created_by, DATE_FORMAT(password_changed_at, " TS_FMT "),"      \
	" phone_enc IS NOT NULL, language"

static hf_err user_public(struct db *db, const char *username, json_t **out)
{
	struct db_val v[] = {db_str(username)};
	struct db_rows *r = NULL;
	hf_err err = db_query(db, "SELECT " USER_PUBLIC_COLS " FROM staff_users WHERE username = ?", v, 1, &r);
	if (err)
		return err;
	err = db_rows_next(r) ? HF_OK : HF_ENOTFOUND;
	if (!err)
		*out = user_json(r);
	db_rows_free(r);
	return err;
}

hf_err auth_user_list(struct db *db, json_t **out)
{
	struct db_rows *r = NULL;
	hf_err err = db_query(db, "SELECT " USER_PUBLIC_COLS " FROM staff_users ORDER BY username LIMIT 10000", NULL, 0, &r);
	if (err)
		return err;
	json_t *items = json_array();
	while (db_rows_next(r))
		json_array_append_new(items, user_json(r));
	db_rows_free(r);
	*out = json_pack("{s:o}", "items", items);
	return HF_OK;
}

/* Optional "phone" and "language" of a staff account (for SMS about their work). phone null clears it. */
struct staff_contact {
	bool phone_given, lang_given;
	char phone[PHONE_MAX + 1]; /* "" = none */
	const char *lang;
};

static void contact_parse(json_t *body, struct hf_ferrs *fe, struct staff_contact *c)
{
	memset(c, 0, sizeof(*c));
	json_t *p = json_object_get(body, "phone");
	if (p) {
		c->phone_given = true;
		const char *s = json_is_null(p) ? NULL : raw_str(body, "phone", false, 32, fe);
		struct vfail why = {0};
		if (s && !validate_phone(s, c->phone, &why))
			hf_ferrs_add(fe, "phone", why.code, "%s", why.message);
	}
	if (json_object_get(body, "language")) {
		c->lang_given = true;
		c->lang = raw_str(body, "language", false, 8, fe);
		if (c->lang && !validate_language(c->lang))
			hf_ferrs_add(fe, "language", "not_allowed", "this language is not offered (registry.languages)");
	}
}

/* Writes the contact fields given to the account's row. */
static hf_err contact_store(struct db *db, int64_t id, const struct staff_contact *c)
{
	hf_err err = HF_OK;
	if (c->phone_given) {
		struct hf_buf sealed;
		hf_buf_init(&sealed, 512);
		if (c->phone[0])
			err = outbox_seal_staff_phone(id, c->phone, &sealed);
		struct db_val v[] = {db_blob_or_null(sealed.data, sealed.len), DB_I64(id)};
		if (!err)
			err = db_exec(db, "UPDATE staff_users SET phone_enc = ? WHERE id = ?", v, 2, NULL);
		hf_buf_release(&sealed);
	}
	if (!err && c->lang_given && c->lang) {
		struct db_val v[] = {db_str(c->lang), DB_I64(id)};
		err = db_exec(db, "UPDATE staff_users SET language = ? WHERE id = ?", v, 2, NULL);
	}
	return err;
}

struct create_tx {
	const struct audit_actor *who;
	const char *username, *role, *hash;
	bool with_mfa;
	struct staff_contact contact;
	uint8_t key[TOTP_SECRET_BYTES];
	json_t *codes;
};

static hf_err create_body(struct db *db, void *ctx)
{
	struct create_tx *t = ctx;
	json_decref(t->codes);
	t->codes = NULL;
	int64_t id = db_new_id();
	struct hf_buf sealed;
	hf_buf_init(&sealed, 1024);
	hf_err err = HF_OK;
	if (t->with_mfa)
		err = mfa_secret_seal(id, t->key, &sealed);
	if (err)
		goto out;
	struct db_val v[] = {DB_I64(id),
			     db_str(t->username),
			     db_str(t->role),
			     db_str(t->hash),
			     db_str(t->with_mfa ? "active" : "pending"),
			     db_blob_or_null(sealed.data, sealed.len),
			     DB_I64(0),
			     db_str(t->who->name),
			     db_str(t->who->name)};
	err = db_exec(db,
		      "INSERT INTO staff_users (id, username, role, pw_hash, mfa_state, mfa_secret_enc, mfa_last_step,"
		      " password_changed_at, created_at, created_by, updated_at, updated_by) VALUES (?, ?, ?, ?, ?, ?, ?,"
		      " UTC_TIMESTAMP(3), UTC_TIMESTAMP(3), ?, UTC_TIMESTAMP(3), ?)",
		      v, HF_ARRAY_LEN(v), NULL);
	if (!err)
		err = contact_store(db, id, &t->contact);
	if (!err && t->with_mfa)
		err = recovery_codes_new(db, id, &t->codes);
	if (err)
		goto out;
	json_t *after = json_pack("{s:s, s:s, s:s}", "username", t->username, "role", t->role, "mfa",
				  t->with_mfa ? "active" : "pending");
	json_t *d = json_pack("{s:s}", "role", t->role);
	struct audit_event ev = {"staff_user.create", "staff_user", t->username, "ok", NULL, after, d};
	err = audit_append(db, t->who, &ev);
	json_decref(after);
	json_decref(d);
out:
	hf_buf_release(&sealed);
	return err;
}

hf_err auth_user_create(struct db *db, const struct audit_actor *who, json_t *body, bool with_mfa, struct hf_ferrs *fe,
			char *msg, size_t msg_cap, json_t **out)
{
	static const char *const allowed[] = {"username", "role", "password", "phone", "language", NULL};
	hf_json_only_fields(body, allowed, "", fe);
	struct staff_contact contact;
	contact_parse(body, fe, &contact);
	const char *username = raw_str(body, "username", true, 64, fe);
	const char *role = NULL;
	(void)hf_json_get_enum(body, "", "role", true, auth_role_names, fe, &role);
	const char *pw = raw_str(body, "password", true, PASSWORD_MAX_BYTES, fe);
	if (username && !username_ok(username))
		hf_ferrs_add(fe, "username", "format", "3 to 48 characters: lower-case letters, digits, '.', '_' and '-'");
	if (pw && username)
		(void)new_password_ok(pw, username, "password", fe);
	if (hf_ferrs_any(fe))
		return HF_EINVAL;
	char hash[crypto_pwhash_STRBYTES];
	hf_err err = hf_password_hash(pw, hash);
	if (err)
		return err;
	struct create_tx t = {.who = who, .username = username, .role = role, .hash = hash, .with_mfa = with_mfa,
			      .contact = contact};
	if (with_mfa)
		hf_random_bytes(t.key, sizeof(t.key));
	err = db_tx(db, create_body, &t);
	if (err == HF_ECONFLICT)
		say(msg, msg_cap, "The username %s is taken.", username);
	if (!err)
		err = user_public(db, username, out);
	if (!err && with_mfa) {
		json_t *m = NULL;
		err = mfa_material(username, t.key, &m);
		if (!err) {
			json_object_update(*out, m);
			json_decref(m);
			json_object_set(*out, "recovery_codes", t.codes);
			json_object_del(*out, "next");
		}
	}
	sodium_memzero(t.key, sizeof(t.key));
	json_decref(t.codes);
	return err;
}

struct update_tx {
	const struct audit_actor *who;
	const char *username, *role, *hash;
	int disabled; /* -1 unchanged */
	struct staff_contact contact;
	bool ended_sessions;
};

static hf_err update_body(struct db *db, void *ctx)
{
	struct update_tx *t = ctx;
	struct user_row u;
	hf_err err = user_load(db, t->username, true, &u);
	if (err)
		return err;
	json_t *before = json_pack("{s:s, s:b}", "role", auth_role_names[u.role], "disabled", u.disabled);
	const char *role = t->role ? t->role : auth_role_names[u.role];
	int disabled = t->disabled >= 0 ? t->disabled : u.disabled;
	struct db_val v[] = {db_str(role), DB_I64(disabled), db_str(t->hash), db_str(t->hash), db_str(t->who->name),
			     DB_I64(u.id)};
	err = db_exec(db,
		      "UPDATE staff_users SET role = ?, disabled = ?, pw_hash = COALESCE(?, pw_hash),"
		      " password_changed_at = IF(? IS NULL, password_changed_at, UTC_TIMESTAMP(3)), version = version + 1,"
		      " updated_at = UTC_TIMESTAMP(3), updated_by = ? WHERE id = ?",
		      v, HF_ARRAY_LEN(v), NULL);
	if (!err)
		err = contact_store(db, u.id, &t->contact);
	t->ended_sessions = disabled || t->hash || strcmp(role, auth_role_names[u.role]) != 0;
	if (!err && t->ended_sessions)
		err = sessions_end_all(db, u.id, disabled ? "disabled" : t->hash ? "password_reset" : "role_changed");
	if (!err && t->hash) {
		struct db_val w[] = {DB_I64(u.id)};
		err = db_exec(db, "UPDATE staff_users SET failed_logins = 0, locked_until = NULL WHERE id = ?", w, 1, NULL);
	}
	json_t *after = json_pack("{s:s, s:b}", "role", role, "disabled", disabled != 0);
	json_t *d = json_pack("{s:s, s:b, s:b, s:b}", "role", role, "disabled", disabled != 0, "password_reset",
			      t->hash != NULL, "contact_changed", t->contact.phone_given || t->contact.lang_given);
	if (!err) {
		struct audit_event ev = {"staff_user.update", "staff_user", t->username, "ok", before, after, d};
		err = audit_append(db, t->who, &ev);
	}
	json_decref(before);
	json_decref(after);
	json_decref(d);
	return err;
}

hf_err auth_user_update(struct db *db, const struct audit_actor *who, const char *username, json_t *body,
			struct hf_ferrs *fe, char *msg, size_t msg_cap, json_t **out)
{
	static const char *const allowed[] = {"role", "disabled", "password", "phone", "language", NULL};
	hf_json_only_fields(body, allowed, "", fe);
	struct update_tx t = {.who = who, .username = username, .disabled = -1};
	contact_parse(body, fe, &t.contact);
	(void)hf_json_get_enum(body, "", "role", false, auth_role_names, fe, &t.role);
	bool dis = false;
	if (hf_json_get_bool(body, "", "disabled", false, fe, &dis))
		t.disabled = dis;
	const char *pw = raw_str(body, "password", false, PASSWORD_MAX_BYTES, fe);
	if (pw)
		(void)new_password_ok(pw, username, "password", fe);
	if (hf_ferrs_any(fe))
		return HF_EINVAL;
	if (!username_ok(username))
		return HF_ENOTFOUND;
	if (strcmp(username, who->name) == 0 && (t.disabled == 1 || t.role)) {
		say(msg, msg_cap, "Administrators cannot disable themselves or change their own role.");
		return HF_EFORBIDDEN;
	}
	char hash[crypto_pwhash_STRBYTES];
	if (pw) {
		hf_err err = hf_password_hash(pw, hash);
		if (err)
			return err;
		t.hash = hash;
	}
	hf_err err = db_tx(db, update_body, &t);
	if (err == HF_ENOTFOUND)
		say(msg, msg_cap, "No staff account named %s.", username);
	if (!err)
		err = user_public(db, username, out);
	if (!err)
		json_object_set_new(*out, "sessions_ended", json_boolean(t.ended_sessions));
	return err;
}

struct resetmfa_tx {
	const struct audit_actor *who;
	const char *username;
};

static hf_err resetmfa_body(struct db *db, void *ctx)
{
	struct resetmfa_tx *t = ctx;
	struct user_row u;
	hf_err err = user_load(db, t->username, true, &u);
	if (err)
		return err;
	struct db_val v[] = {db_str(t->who->name), DB_I64(u.id)};
	err = db_exec(db,
		      "UPDATE staff_users SET mfa_state = 'pending', mfa_secret_enc = NULL, version = version + 1,"
		      " updated_at = UTC_TIMESTAMP(3), updated_by = ? WHERE id = ?",
		      v, 2, NULL);
	struct db_val w[] = {DB_I64(u.id)};
	if (!err)
		err = db_exec(db, "DELETE FROM staff_recovery_codes WHERE user_id = ?", w, 1, NULL);
	if (!err)
		err = sessions_end_all(db, u.id, "mfa_reset");
	if (err)
		return err;
	struct audit_event ev = {"staff_user.reset_mfa", "staff_user", t->username, "ok", NULL, NULL, NULL};
	return audit_append(db, t->who, &ev);
}

hf_err auth_user_reset_mfa(struct db *db, const struct audit_actor *who, const char *username, char *msg,
			   size_t msg_cap, json_t **out)
{
	if (!username_ok(username))
		return HF_ENOTFOUND;
	struct resetmfa_tx t = {who, username};
	hf_err err = db_tx(db, resetmfa_body, &t);
	if (err == HF_ENOTFOUND)
		say(msg, msg_cap, "No staff account named %s.", username);
	if (!err)
		err = user_public(db, username, out);
	if (!err)
		json_object_set_new(*out, "next",
				    json_string("the user logs in with the password and enrols a new authenticator"));
	return err;
}
