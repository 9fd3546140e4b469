/* biometric.c - core's kiosk key, fingerprint templates and verification tokens (see biometric.h).
 *
 * A fingerprint template identifies a person for life and cannot be changed like a PIN, so it is handled as
 * the most sensitive thing the core stores: it arrives sealed to a key only the core holds, is stored
 * field-encrypted and bound to its person and finger, leaves only sealed to the one kiosk that asks for it,
 * and exists in clear only inside this file, in buffers wiped before they are freed. Nothing here logs a
 * template, a PIN, a token or a staff password; the audit trail gets what happened, never the values.
 */
#include "hf_base.h"
#include "biometric.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alerts.h"
#include "app.h"
#include "audit.h"
#include "auth.h"
#include "hf_buf.h"
#include "hf_config.h"
#include "hf_crypto.h"
#include "hf_log.h"
#include "hf_reqsign.h"
#include "kiosk_ops.h"
#include "ratelimit.h"
#include "subscriber.h"
#include "validate.h"

#define TEMPLATE_PLAIN_MAX (BIOMETRIC_SEALED_MAX - crypto_box_SEALBYTES)
#define SEALED_B64_MAX (4 * ((BIOMETRIC_SEALED_MAX + 2) / 3)) /* padded base64 of the largest sealed capture */
#define TOKEN_BYTES 16
#define TOKEN_B64_LEN 22 /* base64url of 16 bytes, no padding */
#define FP3_MAGIC "FP3"  /* what libfprint's fp_print_serialize puts first */
#define KDF_CONTEXT "hfkiosk1"
#define TPL_READ_BURST 30
#define TPL_READ_PER_MIN 120

static const char *const FINGERS[] = {"right_thumb", "right_index", "right_middle", "right_ring", "right_little",
				      "left_thumb",  "left_index",  "left_middle",  "left_ring",  "left_little", NULL};
static const char *const RESULTS[] = {"match", "no_match", "unreadable", NULL};
static const char *const REASONS[] = {"fingerprint_unreadable", "no_template", "reader_fault", NULL};
static const char *const FORMATS[] = {"fprint3", NULL};

/* One message for every person a kiosk may not serve: which of the reasons applied is nobody's business at
 * the counter. */
static const char NOT_SERVED[] = "No enrolled beneficiary with that number.";
static const char WRONG_CREDENTIALS[] = "Wrong PIN or staff credential.";

/* Derived from kiosk-core.key; sodium_malloc memory, read-only once loaded. */
struct kiosk_keys {
	uint8_t seal_pk[crypto_box_PUBLICKEYBYTES], seal_sk[crypto_box_SECRETKEYBYTES];
	uint8_t sign_pk[crypto_sign_PUBLICKEYBYTES], sign_sk[crypto_sign_SECRETKEYBYTES];
	uint8_t receipt_key[crypto_generichash_KEYBYTES];
};
static struct kiosk_keys *K;
static struct ratelimit *tpl_reads; /* template reads per kiosk */

/* ------------------------------------------------------------------ keys */

hf_err biometric_keys_load(const char *key_dir)
{
	char path[1100];
	uint8_t seed[32], sub[32];
	struct hf_buf b;
	hf_buf_init(&b, 256);
	hf_err err = HF_OK;
	if (snprintf(path, sizeof(path), "%s/%s", key_dir, BIOMETRIC_KEY_FILE) >= (int)sizeof(path)) {
		err = HF_EINVAL;
		goto out_wipe;
	}
	err = hf_file_read(path, 256, true, &b);
	if (err) {
		hf_log(HF_LOG_ERROR, "core.biometric", "msg=\"cannot read the kiosk key (run keygen)\" file=%s", path);
		err = HF_EIO;
		goto out_wipe;
	}
	if (b.len != 64 || !hf_unhex(b.data, b.len, seed, sizeof(seed))) {
		hf_log(HF_LOG_ERROR, "core.biometric", "msg=\"kiosk key is not 64 hex digits\" file=%s", path);
		err = HF_EINVAL;
		goto out_wipe;
	}
	biometric_keys_free();
	tpl_reads = ratelimit_new(TPL_READ_BURST, TPL_READ_PER_MIN);
	K = sodium_malloc(sizeof(*K));
	HF_ASSERT(K != NULL);
	/* Three independent keys from one seed: one file to back up, no key used for two jobs. */
	HF_ASSERT(crypto_kdf_derive_from_key(sub, sizeof(sub), 1, KDF_CONTEXT, seed) == 0);
	HF_ASSERT(crypto_box_seed_keypair(K->seal_pk, K->seal_sk, sub) == 0);
	HF_ASSERT(crypto_kdf_derive_from_key(sub, sizeof(sub), 2, KDF_CONTEXT, seed) == 0);
	HF_ASSERT(crypto_sign_seed_keypair(K->sign_pk, K->sign_sk, sub) == 0);
	HF_ASSERT(crypto_kdf_derive_from_key(K->receipt_key, sizeof(K->receipt_key), 3, KDF_CONTEXT, seed) == 0);
	HF_ASSERT(sodium_mprotect_readonly(K) == 0);
out_wipe:
	sodium_memzero(seed, sizeof(seed));
	sodium_memzero(sub, sizeof(sub));
	if (b.data)
		sodium_memzero(b.data, b.cap);
	hf_buf_release(&b);
	return err;
}

void biometric_keys_free(void)
{
	if (K)
		sodium_free(K); /* wipes */
	K = NULL;
	ratelimit_free(tpl_reads);
	tpl_reads = NULL;
}

static void b64(const void *bin, size_t n, char *out, size_t cap)
{
	HF_ASSERT(cap >= sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL));
	sodium_bin2base64(out, cap, bin, n, sodium_base64_VARIANT_ORIGINAL);
}

hf_err biometric_sign(const void *msg, size_t len, char sig_b64[BIOMETRIC_SIG_B64_LEN + 1])
{
	HF_ASSERT(K != NULL);
	uint8_t sig[crypto_sign_BYTES];
	if (crypto_sign_detached(sig, NULL, msg, len, K->sign_sk) != 0)
		return HF_EINTERNAL;
	b64(sig, sizeof(sig), sig_b64, BIOMETRIC_SIG_B64_LEN + 1);
	return HF_OK;
}

void biometric_public_keys(char seal_pk[BIOMETRIC_PK_B64_LEN + 1], char sign_pk[BIOMETRIC_PK_B64_LEN + 1])
{
	HF_ASSERT(K != NULL);
	b64(K->seal_pk, sizeof(K->seal_pk), seal_pk, BIOMETRIC_PK_B64_LEN + 1);
	b64(K->sign_pk, sizeof(K->sign_pk), sign_pk, BIOMETRIC_PK_B64_LEN + 1);
}

void biometric_receipt_check(const char *receipt, char out[BIOMETRIC_RECEIPT_CHECK_LEN + 1])
{
	HF_ASSERT(K != NULL);
	uint8_t mac[16];
	char text[32];
	crypto_generichash_state st;
	crypto_generichash_init(&st, K->receipt_key, sizeof(K->receipt_key), sizeof(mac));
	crypto_generichash_update(&st, (const unsigned char *)"hifadhi-receipt-v1:", 19);
	crypto_generichash_update(&st, (const unsigned char *)receipt, strlen(receipt));
	crypto_generichash_final(&st, mac, sizeof(mac));
	sodium_bin2base64(text, sizeof(text), mac, sizeof(mac), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	memcpy(out, text, BIOMETRIC_RECEIPT_CHECK_LEN);
	out[BIOMETRIC_RECEIPT_CHECK_LEN] = '\0';
}

bool biometric_receipt_check_ok(const char *receipt, const char *check)
{
	if (!receipt || !check || strlen(check) != BIOMETRIC_RECEIPT_CHECK_LEN || strlen(receipt) > 64)
		return false;
	char want[BIOMETRIC_RECEIPT_CHECK_LEN + 1];
	biometric_receipt_check(receipt, want);
	return hf_ct_equal(want, check, BIOMETRIC_RECEIPT_CHECK_LEN);
}

/* ------------------------------------------------------------------ helpers */

static void wipe(struct hf_buf *b)
{
	if (b->data)
		sodium_memzero(b->data, b->cap);
	hf_buf_release(b);
}

static void utc_now(char out[32])
{
	time_t t = time(NULL);
	struct tm tm;
	HF_ASSERT(gmtime_r(&t, &tm) != NULL);
	HF_ASSERT(strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 20);
}

/* Where a template lives: bound to the person, the finger and the row. */
static int template_ad(char *out, size_t cap, int64_t individual_id, const char *finger, int64_t row)
{
	int n = snprintf(out, cap, "biometric_templates.template:%lld:%s:%lld", (long long)individual_id, finger,
			 (long long)row);
	HF_ASSERT(n > 0 && (size_t)n < cap);
	return n;
}

/* Text a kiosk reports about its reader (driver, device id): printable, no control characters. */
static bool label_ok(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static hf_err kiosk_mode(struct svc_call *c, char mode[16])
{
	HF_ASSERT(c->p->kind == PRINCIPAL_KIOSK);
	struct db_val v[] = {DB_I64(c->p->kiosk_id)};
	struct db_rows *r = NULL;
	hf_err err = db_query(c->db, "SELECT mode FROM kiosks WHERE id = ?", v, 1, &r);
	if (err)
		return err;
	if (!db_rows_next(r)) { /* removed since its request was authenticated */
		svc_say(c, "Unknown terminal.");
		err = HF_EFORBIDDEN;
	} else
		hf_strlcpy(mode, db_rows_str(r, 0), 16);
	db_rows_free(r);
	return err;
}

/* Refuses a locked kiosk (423) and one of the other mode (403); HF_OK when it may go on. */
static hf_err kiosk_may(struct svc_call *c, const char *want)
{
	hf_err err = kiosk_ops_refuse_locked(c);
	char mode[16];
	if (!err)
		err = kiosk_mode(c, mode);
	if (err)
		return err;
	if (strcmp(mode, want) != 0) {
		svc_say(c, strcmp(want, "enrolment") == 0
				   ? "This terminal is a pay point: fingerprints are enrolled at an enrolment station."
				   : "This terminal is an enrolment station: it does not verify or pay out.");
		return HF_EFORBIDDEN;
	}
	return HF_OK;
}

hf_err biometric_pay_point_only(struct svc_call *c)
{
	return kiosk_may(c, "pay_point");
}

struct person {
	int64_t id;
	char language[9];
	bool enrolled;
};

/* A person a pay point may serve: known, and enrolled in a programme (themselves or their household). */
static hf_err person_load(struct svc_call *c, const char *ben_no, struct person *p)
{
	memset(p, 0, sizeof(*p));
	if (!ben_no || strlen(ben_no) != BENNO_LEN) {
		svc_say(c, "%s", NOT_SERVED);
		return HF_ENOTFOUND;
	}
	struct db_val v[] = {db_str(ben_no)};
	struct db_rows *r = NULL;
	hf_err err = db_query(c->db,
			      "SELECT i.id, i.language, EXISTS (SELECT 1 FROM enrolments e WHERE e.status = 'enrolled' AND"
			      " (e.individual_id = i.id OR (i.household_id IS NOT NULL AND e.household_id = i.household_id)))"
			      " FROM individuals i WHERE i.ben_no = ?",
			      v, 1, &r);
	if (err)
		return err;
	if (db_rows_next(r)) {
		p->id = db_rows_i64(r, 0);
		hf_strlcpy(p->language, db_rows_str(r, 1), sizeof(p->language));
		p->enrolled = db_rows_i64(r, 2) != 0;
	}
	db_rows_free(r);
	if (!p->id) {
		svc_say(c, "%s", NOT_SERVED);
		return HF_ENOTFOUND;
	}
	return HF_OK;
}

static hf_err person_served(struct svc_call *c, const char *ben_no, struct person *p)
{
	hf_err err = person_load(c, ben_no, p);
	if (!err && !p->enrolled) {
		svc_say(c, "%s", NOT_SERVED);
		err = HF_ENOTFOUND;
	}
	return err;
}

static hf_err templates_count(struct db *db, int64_t individual_id, int64_t *n)
{
	struct db_val v[] = {DB_I64(individual_id)};
	return db_query_i64(db, "SELECT COUNT(*) FROM biometric_templates WHERE individual_id = ?", v, 1, n);
}

/* Failed fingerprint attempts of this person at this kiosk in the window, since their last success. */
static hf_err failures_recent(struct db *db, int64_t kiosk_id, int64_t individual_id, int64_t *n)
{
	struct db_val v[] = {DB_I64(kiosk_id), DB_I64(individual_id), DB_I64(BIOMETRIC_ATTEMPT_WINDOW_S),
			     DB_I64(kiosk_id), DB_I64(individual_id)};
	return db_query_i64(db,
			  "SELECT COUNT(*) FROM kiosk_verifications WHERE kiosk_id = ? AND individual_id = ? AND result IN"
			  " ('no_match', 'unreadable') AND created_at > UTC_TIMESTAMP(3) - INTERVAL ? SECOND AND created_at >"
			  " COALESCE((SELECT MAX(created_at) FROM kiosk_verifications WHERE kiosk_id = ? AND individual_id = ?"
			  " AND token_hash IS NOT NULL), '1970-01-01')",
			  v, HF_ARRAY_LEN(v), n);
}

static hf_err audit_kiosk(struct svc_call *c, bool in_tx, const char *action, const char *record, const char *outcome,
			  json_t *detail)
{
	struct audit_event ev = {action, "individual", record, outcome, NULL, NULL, detail};
	return in_tx ? audit_append(c->db, &c->p->audit, &ev) : audit_record(c->db, &c->p->audit, &ev);
}

/* A refusal before anything was stored (unknown person, wrong mode), in a transaction of its own: every
 * attempt leaves a trace. A locked kiosk's refusal is audited where the lock is checked (kiosk_ops.c). */
static hf_err refused(struct svc_call *c, const char *action, const char *ben_no, hf_err err)
{
	if (err != HF_ENOTFOUND && err != HF_EFORBIDDEN)
		return err;
	json_t *d = json_pack("{s:s, s:s}", "reason", hf_err_name(err), "kiosk", c->p->name);
	if (audit_kiosk(c, false, action, ben_no, "denied", d) != HF_OK)
		hf_log(HF_LOG_WARN, "core.biometric", "msg=\"cannot audit a refusal\" action=%s kiosk_no=%s", action,
		       c->p->name);
	json_decref(d);
	return err;
}

/* ------------------------------------------------------------------ kiosk/me */

hf_err biometric_kiosk_me(struct svc_call *c, json_t **out)
{
	char mode[16], seal[BIOMETRIC_PK_B64_LEN + 1], sign[BIOMETRIC_PK_B64_LEN + 1], now[32];
	hf_err err = kiosk_mode(c, mode);
	if (err)
		return err;
	biometric_public_keys(seal, sign);
	utc_now(now);
	*out = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "kiosk_no", c->p->name, "pay_point", c->p->pay_point, "mode",
			 mode, "seal_pk", seal, "sign_pk", sign, "server_time", now);
	return HF_OK;
}

/* ------------------------------------------------------------------ enrolment station */

struct enrol_tx {
	struct svc_call *c;
	const char *ben_no, *finger, *driver, *device, *format;
	int64_t individual_id;
	const struct hf_buf *plain;
	bool replaced;
};

static hf_err enrol_body(struct db *db, void *vctx)
{
	struct enrol_tx *t = vctx;
	struct db_val k[] = {DB_I64(t->individual_id), db_str(t->finger)};
	struct db_rows *r = NULL;
	hf_err err = db_query(db, "SELECT id FROM biometric_templates WHERE individual_id = ? AND finger = ? FOR UPDATE", k,
			      2, &r);
	if (err)
		return err;
	t->replaced = db_rows_next(r);
	int64_t id = t->replaced ? db_rows_i64(r, 0) : db_new_id();
	db_rows_free(r);
	char ad[120];
	int adn = template_ad(ad, sizeof(ad), t->individual_id, t->finger, id);
	struct hf_buf sealed;
	hf_buf_init(&sealed, TEMPLATE_PLAIN_MAX + HF_SEAL_OVERHEAD);
	err = hf_field_seal(g_app.keys, (struct hf_str){ad, (size_t)adn}, t->plain->data, t->plain->len, &sealed);
	if (!err && t->replaced) {
		struct db_val w[] = {db_str(t->driver), db_str(t->device),   db_str(t->format),
				     DB_BLOB(sealed.data, sealed.len), db_str(t->c->p->name), DB_I64(id)};
		err = db_exec(db,
			      "UPDATE biometric_templates SET driver = ?, device = ?, format = ?, template_enc = ?,"
			      " enrolled_kiosk = ?, version = version + 1, updated_at = UTC_TIMESTAMP(3) WHERE id = ?",
			      w, HF_ARRAY_LEN(w), NULL);
	} else if (!err) {
		struct db_val w[] = {DB_I64(id),	  DB_I64(t->individual_id),	      db_str(t->finger),
				     db_str(t->driver),	  db_str(t->device),		      db_str(t->format),
				     DB_BLOB(sealed.data, sealed.len), db_str(t->c->p->name)};
		err = db_exec(db,
			      "INSERT INTO biometric_templates (id, individual_id, finger, driver, device, format, template_enc,"
			      " enrolled_kiosk, version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1,"
			      " UTC_TIMESTAMP(3), UTC_TIMESTAMP(3))",
			      w, HF_ARRAY_LEN(w), NULL);
	}
	hf_buf_release(&sealed); /* ciphertext: nothing to wipe */
	json_t *d = json_pack("{s:s, s:b, s:s, s:s, s:I}", "finger", t->finger, "replaced", t->replaced, "driver",
			      t->driver, "kiosk", t->c->p->name, "bytes", (json_int_t)t->plain->len);
	if (!err)
		err = audit_kiosk(t->c, true, "biometric.enrol", t->ben_no, "ok", d);
	json_decref(d);
	return err;
}

/* Opens what a kiosk sealed to seal_pk into plain (wiped by the caller). HF_EINVAL (with the field error)
 * when it is not base64, not sealed to us, or not a libfprint print. */
static hf_err capture_open(struct svc_call *c, const char *b64text, struct hf_buf *plain)
{
	size_t n = strlen(b64text), sealed_len = 0;
	const char *end = NULL;
	uint8_t *sealed = NULL;
	hf_err err = HF_EINVAL;
	if (n > SEALED_B64_MAX) {
		hf_ferrs_add(c->fe, "sealed", "too_long", "at most %d bytes sealed", BIOMETRIC_SEALED_MAX);
		return HF_EINVAL;
	}
	sealed = hf_xmalloc(n / 4 * 3 + 3);
	if (sodium_base642bin(sealed, n / 4 * 3 + 3, b64text, n, NULL, &sealed_len, &end,
			      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    end != b64text + n) {
		hf_ferrs_add(c->fe, "sealed", "format", "standard base64 of crypto_box_seal(template, seal_pk)");
		goto out_free;
	}
	if (sealed_len <= crypto_box_SEALBYTES + 3 || sealed_len > BIOMETRIC_SEALED_MAX) {
		hf_ferrs_add(c->fe, "sealed", "length", "a sealed template of 52 to %d bytes", BIOMETRIC_SEALED_MAX);
		goto out_free;
	}
	size_t plain_len = sealed_len - crypto_box_SEALBYTES;
	uint8_t *p = hf_xmalloc(plain_len);
	if (crypto_box_seal_open(p, sealed, sealed_len, K->seal_pk, K->seal_sk) != 0) {
		hf_ferrs_add(c->fe, "sealed", "not_sealed", "not sealed to this core's seal_pk (GET kiosk/me)");
	} else if (memcmp(p, FP3_MAGIC, 3) != 0) {
		hf_ferrs_add(c->fe, "sealed", "not_a_template", "the opened capture is not a libfprint print (FP3)");
	} else {
		err = hf_buf_append(plain, p, plain_len);
	}
	sodium_memzero(p, plain_len);
	free(p);
out_free:
	free(sealed);
	return err;
}

hf_err biometric_enrol(struct svc_call *c, json_t *body, json_t **out)
{
	static const char *const allowed[] = {"ben_no", "finger", "driver", "device", "format", "sealed", NULL};
	struct enrol_tx t = {.c = c};
	const char *sealed_b64 = NULL;
	hf_json_only_fields(body, allowed, "", c->fe);
	(void)hf_json_get_str(body, "", "ben_no", true, BENNO_LEN, BENNO_LEN, c->fe, &t.ben_no);
	(void)hf_json_get_enum(body, "", "finger", true, FINGERS, c->fe, &t.finger);
	if (hf_json_get_str(body, "", "driver", true, 1, 64, c->fe, &t.driver) && !label_ok(t.driver))
		hf_ferrs_add(c->fe, "driver", "format", "printable text");
	if (hf_json_get_str(body, "", "device", true, 1, 128, c->fe, &t.device) && !label_ok(t.device))
		hf_ferrs_add(c->fe, "device", "format", "printable text");
	(void)hf_json_get_enum(body, "", "format", true, FORMATS, c->fe, &t.format);
	(void)hf_json_get_str(body, "", "sealed", true, 1, SEALED_B64_MAX, c->fe, &sealed_b64);
	if (hf_ferrs_any(c->fe))
		return HF_EINVAL;
	hf_err err = kiosk_may(c, "enrolment");
	struct person p;
	if (!err)
		err = person_load(c, t.ben_no, &p);
	if (err)
		return refused(c, "biometric.enrol", t.ben_no, err);
	t.individual_id = p.id;
	struct hf_buf plain;
	hf_buf_init(&plain, TEMPLATE_PLAIN_MAX);
	err = capture_open(c, sealed_b64, &plain);
	if (!err) {
		t.plain = &plain;
		err = db_tx(c->db, enrol_body, &t);
	}
	wipe(&plain);
	if (err)
		return err;
	hf_log(HF_LOG_INFO, "core.biometric", "msg=\"template enrolled\" kiosk_no=%s finger=%s replaced=%d", c->p->name,
	       t.finger, (int)t.replaced);
	*out = json_pack("{s:s, s:s, s:b}", "ben_no", t.ben_no, "finger", t.finger, "replaced", t.replaced);
	return HF_OK;
}

/* ------------------------------------------------------------------ templates for a pay point */

/* The calling kiosk's X25519 public key, from the Ed25519 key it enrolled with. */
static hf_err kiosk_box_pk(struct svc_call *c, uint8_t x_pk[crypto_box_PUBLICKEYBYTES])
{
	struct db_val v[] = {DB_I64(c->p->kiosk_id)};
	struct db_rows *r = NULL;
	hf_err err = db_query(c->db, "SELECT public_key FROM kiosks WHERE id = ? AND status = 'active'", v, 1, &r);
	if (err)
		return err;
	size_t n = 0;
	const void *pk = db_rows_next(r) ? db_rows_blob(r, 0, &n) : NULL;
	if (!pk) {
		err = HF_EFORBIDDEN; /* revoked since its request was authenticated */
		svc_say(c, "terminal revoked");
	} else if (n != crypto_sign_PUBLICKEYBYTES || crypto_sign_ed25519_pk_to_curve25519(x_pk, pk) != 0) {
		hf_log(HF_LOG_ERROR, "core.biometric", "msg=\"terminal key has no X25519 form\" kiosk_no=%s", c->p->name);
		err = HF_EINTERNAL;
	}
	db_rows_free(r);
	return err;
}

hf_err biometric_templates_for_kiosk(struct svc_call *c, uint64_t individual_id, json_t **arr_out)
{
	HF_ASSERT(K != NULL && c->p->kind == PRINCIPAL_KIOSK);
	uint8_t x_pk[crypto_box_PUBLICKEYBYTES];
	hf_err err = kiosk_box_pk(c, x_pk);
	if (err)
		return err;
	struct db_val v[] = {DB_I64((int64_t)individual_id), DB_I64(BIOMETRIC_TEMPLATES_MAX)};
	struct db_rows *r = NULL;
	err = db_query(c->db,
		       "SELECT id, finger, driver, device, template_enc FROM biometric_templates WHERE individual_id = ?"
		       " ORDER BY finger LIMIT ?",
		       v, 2, &r);
	if (err)
		return err;
	json_t *arr = json_array();
	struct hf_buf plain;
	hf_buf_init(&plain, TEMPLATE_PLAIN_MAX);
	uint8_t *sealed = hf_xmalloc(TEMPLATE_PLAIN_MAX + crypto_box_SEALBYTES);
	char *text = hf_xmalloc(SEALED_B64_MAX + 1);
	while (!err && db_rows_next(r)) {
		int64_t id = db_rows_i64(r, 0);
		const char *finger = db_rows_str(r, 1);
		size_t n = 0;
		const void *enc = db_rows_blob(r, 4, &n);
		char ad[120];
		int adn = template_ad(ad, sizeof(ad), (int64_t)individual_id, finger, id);
		hf_buf_reset(&plain);
		err = hf_field_open(g_app.keys, (struct hf_str){ad, (size_t)adn}, enc, n, &plain);
		if (err || plain.len > TEMPLATE_PLAIN_MAX) {
			/* A row moved or edited by someone with database access, or a key that is gone. */
			hf_log(HF_LOG_ERROR, "core.biometric", "msg=\"stored template does not open\" template=%lld",
			       (long long)id);
			err = HF_EINTERNAL;
			break;
		}
		HF_ASSERT(crypto_box_seal(sealed, (const uint8_t *)plain.data, plain.len, x_pk) == 0);
		b64(sealed, plain.len + crypto_box_SEALBYTES, text, SEALED_B64_MAX + 1);
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s}", "finger", finger, "driver", db_rows_str(r, 2),
						     "device", db_rows_str(r, 3), "sealed", text));
	}
	db_rows_free(r);
	wipe(&plain);
	free(sealed);
	free(text);
	if (err) {
		json_decref(arr);
		return err;
	}
	*arr_out = arr;
	return HF_OK;
}

hf_err biometric_templates_get(struct svc_call *c, const char *ben_no, json_t **out)
{
	bool first = false;
	int wait = 0;
	if (!ratelimit_take(tpl_reads, c->p->name, hf_mono_ms(), &first, &wait)) {
		if (first)
			(void)audit_kiosk(c, false, "biometric.read", "", "denied", NULL);
		svc_say(c, "Too many template reads from this terminal; try again in %d seconds.", wait);
		return HF_ERATELIMIT;
	}
	hf_err err = kiosk_may(c, "pay_point");
	struct person p;
	if (!err)
		err = person_served(c, ben_no, &p);
	if (err)
		return refused(c, "biometric.read", ben_no, err);
	json_t *tpl = NULL;
	int64_t pin = 0;
	struct db_val v[] = {DB_I64(p.id)};
	err = biometric_templates_for_kiosk(c, (uint64_t)p.id, &tpl);
	if (!err)
		err = db_query_i64(c->db, "SELECT COUNT(*) FROM subscriber_pins WHERE individual_id = ?", v, 1, &pin);
	json_t *fingers = json_array();
	size_t i;
	json_t *x;
	json_array_foreach(tpl, i, x)
		json_array_append(fingers, json_object_get(x, "finger"));
	json_t *d = json_pack("{s:o, s:s}", "fingers", fingers, "kiosk", c->p->name);
	/* Every hand-over of biometric data is in the trail, before it leaves. */
	if (!err)
		err = audit_kiosk(c, false, "biometric.read", ben_no, "ok", d);
	json_decref(d);
	if (err) {
		json_decref(tpl);
		return err;
	}
	*out = json_pack("{s:s, s:o, s:{s:b}, s:s}", "ben_no", ben_no, "templates", tpl, "fallback", "pin_set", pin > 0,
			 "language", p.language);
	return HF_OK;
}

/* ------------------------------------------------------------------ verification tokens */

struct token {
	char text[TOKEN_B64_LEN + 1];
	uint8_t hash[32];
};

static void token_new(struct token *t)
{
	uint8_t raw[TOKEN_BYTES];
	hf_random_bytes(raw, sizeof(raw));
	sodium_bin2base64(t->text, sizeof(t->text), raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, sizeof(raw));
	hf_sha256(t->text, strlen(t->text), t->hash);
}

hf_err biometric_token_check(struct db *db, int64_t kiosk_id, int64_t individual_id, const char *token,
			     int64_t *verification_id, char method[BIOMETRIC_METHOD_MAX])
{
	if (!token || strlen(token) != TOKEN_B64_LEN)
		return HF_EAUTH;
	uint8_t h[32];
	hf_sha256(token, TOKEN_B64_LEN, h);
	struct db_val v[] = {DB_BLOB(h, sizeof(h)), DB_I64(kiosk_id), DB_I64(individual_id)};
	struct db_rows *r = NULL;
	hf_err err = db_query(db,
			      "SELECT id, method FROM kiosk_verifications WHERE token_hash = ? AND kiosk_id = ? AND"
			      " individual_id = ? AND valid_until > UTC_TIMESTAMP(3) AND method IS NOT NULL",
			      v, HF_ARRAY_LEN(v), &r);
	if (err)
		return err;
	if (db_rows_next(r)) {
		*verification_id = db_rows_i64(r, 0);
		hf_strlcpy(method, db_rows_str(r, 1), BIOMETRIC_METHOD_MAX);
	} else {
		err = HF_EAUTH;
	}
	db_rows_free(r);
	return err;
}

/* Stores one verification row; with tok, a token of method valid BIOMETRIC_TOKEN_TTL_S, whose expiry is
 * written (RFC 3339, from the database's clock that judges it) to valid_until. */
struct attempt {
	int64_t kiosk_id, individual_id;
	const char *result, *driver, *method, *reason, *staff_user;
	int64_t number;
	const struct token *tok;
	int64_t id;
	char valid_until[40];
};

static hf_err attempt_store(struct db *db, struct attempt *a)
{
	a->id = db_new_id();
	struct db_val v[] = {DB_I64(a->id),
			     DB_I64(a->kiosk_id),
			     DB_I64(a->individual_id),
			     db_str(a->result),
			     a->number ? DB_I64(a->number) : DB_NULLV,
			     db_str(a->driver),
			     db_str(a->tok ? a->method : NULL),
			     a->tok ? DB_BLOB(a->tok->hash, 32) : DB_NULLV,
			     DB_I64(a->tok ? BIOMETRIC_TOKEN_TTL_S : 0),
			     DB_I64(a->tok ? 1 : 0),
			     db_str(a->reason),
			     db_str(a->staff_user)};
	hf_err err = db_exec(db,
			     "INSERT INTO kiosk_verifications (id, kiosk_id, individual_id, result, attempt, driver, method,"
			     " token_hash, valid_until, override_reason, staff_user, created_at) VALUES (?, ?, ?, ?, ?, ?, ?,"
			     " ?, IF(? > 0 AND ?, UTC_TIMESTAMP(3) + INTERVAL ? SECOND, NULL), ?, ?, UTC_TIMESTAMP(3))",
			     (struct db_val[]){v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[8], v[10], v[11]},
			     13, NULL);
	if (err || !a->tok)
		return err;
	struct db_rows *r = NULL;
	err = db_query(db, "SELECT DATE_FORMAT(valid_until, " DB_TS_FMT ") FROM kiosk_verifications WHERE id = ?",
		       (struct db_val[]){v[0]}, 1, &r);
	if (err)
		return err;
	HF_ASSERT(db_rows_next(r)); /* inserted just above, in this transaction */
	hf_strlcpy(a->valid_until, db_rows_str(r, 0), sizeof(a->valid_until));
	db_rows_free(r);
	return HF_OK;
}

struct verify_tx {
	struct svc_call *c;
	const char *ben_no;
	struct attempt a;
	struct token tok;
	int64_t failures;
	const char *refused; /* a match refused: why (audit), the message is set */
};

static hf_err verify_body(struct db *db, void *vctx)
{
	struct verify_tx *t = vctx;
	t->refused = NULL;
	t->a.tok = NULL;
	hf_err err = failures_recent(db, t->a.kiosk_id, t->a.individual_id, &t->failures);
	if (err)
		return err;
	bool match = strcmp(t->a.result, "match") == 0;
	if (match) {
		int64_t n = 0;
		err = templates_count(db, t->a.individual_id, &n);
		if (err)
			return err;
		/* A match against nothing cannot have happened; after the third failure only the fallback
		 * remains (the kiosk stops offering the reader, a terminal that does not is refused here). */
		if (n == 0) {
			t->refused = "no_template";
			svc_say(t->c, "No fingerprint is enrolled for this beneficiary: use the PIN and staff override"
				      " (reason no_template).");
		} else if (t->failures >= BIOMETRIC_MAX_ATTEMPTS) {
			t->refused = "attempts_exhausted";
			svc_say(t->c, "Three fingerprint attempts failed: use the PIN and staff override.");
		} else {
			t->a.tok = &t->tok;
		}
	} else {
		t->failures++;
	}
	err = attempt_store(db, &t->a);
	json_t *d = json_pack("{s:s, s:I, s:s, s:I, s:s, s:s?}", "result", t->a.result, "attempt",
			      (json_int_t)t->a.number, "driver", t->a.driver, "failures", (json_int_t)t->failures, "kiosk",
			      t->c->p->name, "refused", t->refused);
	if (!err)
		err = audit_kiosk(t->c, true, "kiosk.verify", t->ben_no, t->a.tok ? "ok" : "denied", d);
	json_decref(d);
	return err;
}

hf_err biometric_verify(struct svc_call *c, json_t *body, json_t **out, const char **reason)
{
	static const char *const allowed[] = {"ben_no", "result", "attempt", "driver", NULL};
	struct verify_tx t = {.c = c};
	hf_json_only_fields(body, allowed, "", c->fe);
	(void)hf_json_get_str(body, "", "ben_no", true, BENNO_LEN, BENNO_LEN, c->fe, &t.ben_no);
	(void)hf_json_get_enum(body, "", "result", true, RESULTS, c->fe, &t.a.result);
	(void)hf_json_get_int(body, "", "attempt", true, 1, BIOMETRIC_MAX_ATTEMPTS, c->fe, &t.a.number);
	if (hf_json_get_str(body, "", "driver", true, 1, 64, c->fe, &t.a.driver) && !label_ok(t.a.driver))
		hf_ferrs_add(c->fe, "driver", "format", "printable text");
	if (hf_ferrs_any(c->fe))
		return HF_EINVAL;
	hf_err err = kiosk_may(c, "pay_point");
	struct person p;
	if (!err)
		err = person_served(c, t.ben_no, &p);
	if (err)
		return refused(c, "kiosk.verify", t.ben_no, err);
	t.a.kiosk_id = c->p->kiosk_id;
	t.a.individual_id = p.id;
	t.a.method = "fingerprint";
	token_new(&t.tok);
	err = db_tx(c->db, verify_body, &t);
	if (err)
		goto out_wipe;
	if (t.refused) {
		*reason = t.refused;
		err = HF_ECONFLICT; /* the attempt and its refusal are stored and audited */
		goto out_wipe;
	}
	if (t.a.tok) {
		*out = json_pack("{s:s, s:s, s:s}", "verification", t.tok.text, "method", "fingerprint", "valid_until",
				 t.a.valid_until);
		c->status = 201;
	} else {
		int64_t left = BIOMETRIC_MAX_ATTEMPTS - t.failures;
		*out = json_pack("{s:n, s:I, s:b}", "verification", "attempts_left", (json_int_t)(left > 0 ? left : 0),
				 "fallback_allowed", t.failures >= BIOMETRIC_MAX_ATTEMPTS);
	}
out_wipe:
	sodium_memzero(&t.tok, sizeof(t.tok));
	return err;
}

/* ------------------------------------------------------------------ the fallback: PIN plus staff */

struct override_tx {
	struct svc_call *c;
	const char *ben_no;
	struct attempt a;
	struct token tok;
};

static hf_err override_body(struct db *db, void *vctx)
{
	struct override_tx *t = vctx;
	t->a.tok = &t->tok;
	hf_err err = attempt_store(db, &t->a);
	char vid[24];
	snprintf(vid, sizeof(vid), "%lld", (long long)t->a.id);
	json_t *d = json_pack("{s:s, s:s, s:s, s:s}", "reason", t->a.reason, "staff_user", t->a.staff_user, "kiosk",
			      t->c->p->name, "verification", vid);
	if (!err)
		err = audit_kiosk(t->c, true, "kiosk.override", t->ben_no, "ok", d);
	/* Every override is flagged for a payment officer's review: one alert each (its own subject). */
	bool raised = false;
	json_object_set_new(d, "ben_no", json_string(t->ben_no));
	json_object_set_new(d, "pay_point", json_string(t->c->p->pay_point));
	if (!err)
		err = alerts_raise(db, "kiosk_override", "warning", vid, 0, 0, d, &raised);
	json_decref(d);
	return err;
}

/* Whether the fallback's reason applies now; HF_ECONFLICT with the message when it does not. */
static hf_err override_allowed(struct svc_call *c, const char *reason, int64_t individual_id)
{
	int64_t n = 0;
	hf_err err = HF_OK;
	if (strcmp(reason, "no_template") == 0) {
		err = templates_count(c->db, individual_id, &n);
		if (!err && n > 0) {
			svc_say(c, "A fingerprint is enrolled for this beneficiary: verify it first (after three failed"
				   " attempts the reason is fingerprint_unreadable).");
			err = HF_ECONFLICT;
		}
	} else if (strcmp(reason, "fingerprint_unreadable") == 0) {
		err = failures_recent(c->db, c->p->kiosk_id, individual_id, &n);
		if (!err && n < BIOMETRIC_MAX_ATTEMPTS) {
			svc_say(c, "The fallback needs %d failed fingerprint attempts at this terminal first (%lld so far).",
				BIOMETRIC_MAX_ATTEMPTS, (long long)n);
			err = HF_ECONFLICT;
		}
	}
	/* reader_fault: the reader itself failed; allowed, and the alert tells staff to look at the terminal. */
	return err;
}

/* The fields of a credential are taken as typed (never trimmed) and capped. */
static const char *raw_field(struct svc_call *c, json_t *body, const char *key, bool required, size_t max)
{
	json_t *v = json_object_get(body, key);
	if (!v || json_is_null(v)) {
		if (required)
			hf_ferrs_add(c->fe, key, "required", "required");
		return NULL;
	}
	if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max) {
		hf_ferrs_add(c->fe, key, "format", "a string of 1 to %zu bytes", max);
		return NULL;
	}
	return json_string_value(v);
}

hf_err biometric_override(struct svc_call *c, json_t *body, json_t **out, const char **reason)
{
	static const char *const allowed[] = {"ben_no", "pin", "staff_user", "staff_password", "staff_totp", "reason",
					      NULL};
	struct override_tx t = {.c = c};
	hf_json_only_fields(body, allowed, "", c->fe);
	(void)hf_json_get_str(body, "", "ben_no", true, BENNO_LEN, BENNO_LEN, c->fe, &t.ben_no);
	const char *pin = raw_field(c, body, "pin", true, 4);
	if (pin && (strlen(pin) != 4 || strspn(pin, "0123456789") != 4))
		hf_ferrs_add(c->fe, "pin", "format", "4 digits");
	const char *user = raw_field(c, body, "staff_user", true, 64);
	const char *password = raw_field(c, body, "staff_password", true, 512);
	const char *totp = raw_field(c, body, "staff_totp", false, 16);
	(void)hf_json_get_enum(body, "", "reason", true, REASONS, c->fe, &t.a.reason);
	if (hf_ferrs_any(c->fe))
		return HF_EINVAL;
	hf_err err = kiosk_may(c, "pay_point");
	struct person p;
	if (!err)
		err = person_served(c, t.ben_no, &p);
	if (!err)
		err = override_allowed(c, t.a.reason, p.id);
	if (err == HF_ECONFLICT) {
		*reason = "not_allowed_now";
		json_t *d = json_pack("{s:s, s:s}", "reason", t.a.reason, "refused", "not_allowed_now");
		if (audit_kiosk(c, false, "kiosk.override", t.ben_no, "denied", d) != HF_OK)
			hf_log(HF_LOG_WARN, "core.biometric", "msg=\"cannot audit a refused override\" kiosk_no=%s",
			       c->p->name);
		json_decref(d);
	}
	if (err)
		return refused(c, "kiosk.override", t.ben_no, err);

	/* The PIN first: a locked or missing PIN ends it before a staff password is tried. Then the staff
	 * credential, whatever the PIN said, so the answer does not tell which of the two was wrong and both
	 * failure counters move. */
	const char *pin_says = "ok", *staff_says = "ok";
	hf_err pin_err = subscriber_pin_check(c, p.id, t.ben_no, pin);
	if (pin_err == HF_ECONFLICT) {
		pin_says = "locked";
		*reason = "pin_locked";
		svc_say(c, "The beneficiary's PIN is locked: staff can unlock it at the office.");
		err = HF_ERATELIMIT;
	} else if (pin_err == HF_ENOTFOUND) {
		pin_says = "none";
		*reason = "no_pin";
		svc_say(c, "The beneficiary has no PIN: the fallback needs one (set it by USSD).");
		err = HF_ECONFLICT;
	} else if (pin_err && pin_err != HF_EAUTH) {
		return pin_err;
	}
	if (!err) {
		int role = -1, wait = 0;
		if (pin_err == HF_EAUTH)
			pin_says = "wrong";
		hf_err staff_err = auth_check_staff(c->db, &c->p->audit, user, password, totp, &role, &wait);
		if (staff_err == HF_ERATELIMIT) {
			staff_says = "locked";
			*reason = "staff_locked";
			svc_say(c, "Too many attempts for this staff account; try again in %d seconds.", wait);
			err = HF_ERATELIMIT;
		} else if (staff_err == HF_EAUTH) {
			staff_says = "wrong";
		} else if (staff_err) {
			return staff_err;
		} else if (role != ROLE_PAYMENT_OFFICER && role != ROLE_REGISTRAR) {
			staff_says = "role";
		}
		if (!err && (pin_err || strcmp(staff_says, "ok") != 0)) {
			svc_say(c, "%s",
				strcmp(staff_says, "role") == 0 && !pin_err
					? "This staff account may not authorise a fallback (payment officers and registrars may)."
					: WRONG_CREDENTIALS);
			err = strcmp(staff_says, "role") == 0 && !pin_err ? HF_EFORBIDDEN : HF_EAUTH;
			*reason = err == HF_EFORBIDDEN ? "staff_role" : "wrong_credentials";
		}
	}
	if (err) {
		json_t *d = json_pack("{s:s, s:s, s:s, s:s}", "reason", t.a.reason, "pin", pin_says, "staff", staff_says,
				      "staff_user", strcmp(staff_says, "ok") == 0 || strcmp(staff_says, "role") == 0 ? user
														       : "-");
		if (audit_kiosk(c, false, "kiosk.override", t.ben_no, "denied", d) != HF_OK)
			hf_log(HF_LOG_WARN, "core.biometric", "msg=\"cannot audit a refused override\" kiosk_no=%s",
			       c->p->name);
		json_decref(d);
		return err;
	}

	t.a.kiosk_id = c->p->kiosk_id;
	t.a.individual_id = p.id;
	t.a.result = "override";
	t.a.method = "pin_staff_override";
	t.a.staff_user = user;
	token_new(&t.tok);
	err = db_tx(c->db, override_body, &t);
	if (!err) {
		hf_log(HF_LOG_WARN, "core.biometric", "msg=\"fallback authorised\" kiosk_no=%s reason=%s verification=%lld",
		       c->p->name, t.a.reason, (long long)t.a.id);
		*out = json_pack("{s:s, s:s, s:s}", "verification", t.tok.text, "method", "pin_staff_override",
				 "valid_until", t.a.valid_until);
	}
	sodium_memzero(&t.tok, sizeof(t.tok));
	return err;
}
