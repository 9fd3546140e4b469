/* disburse.c - paying approved payments through the providers, and hearing back (see disburse.h).
 *
 * Two adapters behind one shape: "b2c" (mobile-money B2C, one request per payment, HMAC-signed callbacks)
 * and "g2p" (G2P Connect /disburse, one envelope per batch, Ed25519-signed callbacks). Both: our
 * idempotency id is "HF<payment id>"; a payment is marked sending, with its money moved clearing ->
 * settlement, in a committed transaction BEFORE the request leaves, so a crash at any moment leaves either
 * nothing sent or a sending payment that the checker asks the provider about. */
#include "hf_base.h"
#include "disburse.h"
#include "alerts.h"
#include "app.h"
#include "audit.h"
#include "hf_crypto.h"
#include "hf_httpc.h"
#include "hf_log.h"
#include "hf_money.h"
#include "hf_paysig.h"
#include "ledger.h"
#include "person.h"
#include "provider_msg.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROVIDER_RESP_MAX (4 * 1024 * 1024)
#define SIG_WINDOW_S 300
#define MAX_SENDERS 64

enum adapter { AD_B2C, AD_G2P, AD_COUNT_ };

struct provider {
	bool on;
	char name[33], url[301], token[256];
	uint8_t secret[256]; /* b2c: callback HMAC key */
	size_t secret_len;
	uint8_t pk[32];      /* g2p: the provider's callback signing key */
	char sender_id[65];
};

static struct {
	struct provider p[AD_COUNT_];
	char callback_base[201], our_id[65];
	int threads, batch, query_after_s;
	long timeout_ms;
	atomic_bool stop;
	pthread_t senders[MAX_SENDERS], checker;
	int nsenders;
	bool checker_on;
} D;

static const struct audit_actor DISBURSER = {"system", "disburser", "local", ""};

/* ------------------------------------------------------------------ configuration */

static hf_err read_file_trim(const char *path, char *out, size_t cap, size_t *len)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return HF_EIO;
	size_t n = fread(out, 1, cap - 1, f);
	bool more = fgetc(f) != EOF;
	fclose(f);
	if (more)
		return HF_ETOOBIG;
	while (n && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' '))
		n--;
	out[n] = '\0';
	if (len)
		*len = n;
	return n ? HF_OK : HF_EINVAL;
}

hf_err disburse_init(const struct hf_config *cfg, struct hf_buf *err)
{
	memset(&D.p, 0, sizeof(D.p));
	hf_strlcpy(D.callback_base, hf_config_str(cfg, "payments.callback_base"), sizeof(D.callback_base));
	hf_strlcpy(D.our_id, hf_config_str(cfg, "providers.our_id"), sizeof(D.our_id));
	D.threads = (int)hf_config_int(cfg, "payments.send_threads");
	D.batch = (int)hf_config_int(cfg, "payments.batch");
	D.query_after_s = (int)hf_config_int(cfg, "payments.query_after_s");
	D.timeout_ms = hf_config_int(cfg, "payments.provider_timeout_ms");
	if (!hf_paysig_dci_id_valid(D.our_id)) {
		hf_buf_note(err, "providers.our_id: 1-64 of letters, digits and . _ : -");
		return HF_EINVAL;
	}
	const char *name = hf_config_str(cfg, "providers.b2c_name");
	if (name[0]) {
		struct provider *p = &D.p[AD_B2C];
		p->on = true;
		hf_strlcpy(p->name, name, sizeof(p->name));
		hf_strlcpy(p->url, hf_config_str(cfg, "providers.b2c_url"), sizeof(p->url));
		char sec[513];
		size_t n = 0;
		if (!p->url[0] || read_file_trim(hf_config_str(cfg, "providers.b2c_secret_file"), sec, sizeof(sec), &n) ||
		    n < 16 || n > sizeof(p->secret)) {
			hf_buf_note(err, "providers.b2c_url and providers.b2c_secret_file (16-256 bytes) are needed for %s",
				    name);
			return HF_EINVAL;
		}
		memcpy(p->secret, sec, n);
		p->secret_len = n;
		sodium_memzero(sec, sizeof(sec));
		const char *tok = hf_config_str(cfg, "providers.b2c_token_file");
		if (tok[0] && read_file_trim(tok, p->token, sizeof(p->token), NULL)) {
			hf_buf_note(err, "providers.b2c_token_file: cannot read it");
			return HF_EINVAL;
		}
	}
	name = hf_config_str(cfg, "providers.g2p_name");
	if (name[0]) {
		struct provider *p = &D.p[AD_G2P];
		p->on = true;
		hf_strlcpy(p->name, name, sizeof(p->name));
		hf_strlcpy(p->url, hf_config_str(cfg, "providers.g2p_url"), sizeof(p->url));
		hf_strlcpy(p->sender_id, hf_config_str(cfg, "providers.g2p_sender_id"), sizeof(p->sender_id));
		char hex[80];
		if (!p->url[0] || !p->sender_id[0] ||
		    read_file_trim(hf_config_str(cfg, "providers.g2p_public_key_file"), hex, sizeof(hex), NULL) ||
		    !hf_unhex(hex, strlen(hex), p->pk, sizeof(p->pk))) {
			hf_buf_note(err, "providers.g2p_url, g2p_sender_id and g2p_public_key_file (64 hex) are needed for %s",
				    name);
			return HF_EINVAL;
		}
		const char *tok = hf_config_str(cfg, "providers.g2p_token_file");
		if (tok[0] && read_file_trim(tok, p->token, sizeof(p->token), NULL)) {
			hf_buf_note(err, "providers.g2p_token_file: cannot read it");
			return HF_EINVAL;
		}
	}
	if (D.p[AD_B2C].on && D.p[AD_G2P].on && strcmp(D.p[AD_B2C].name, D.p[AD_G2P].name) == 0) {
		hf_buf_note(err, "providers.b2c_name and providers.g2p_name must differ");
		return HF_EINVAL;
	}
	return HF_OK;
}

void disburse_shutdown(void)
{
	sodium_memzero(&D.p, sizeof(D.p));
}

static struct provider *provider_named(const char *name, enum adapter *ad)
{
	for (int i = 0; i < AD_COUNT_; i++)
		if (D.p[i].on && strcmp(D.p[i].name, name) == 0) {
			*ad = (enum adapter)i;
			return &D.p[i];
		}
	return NULL;
}

static void iso_now(char out[32])
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ------------------------------------------------------------------ results: callbacks and status queries */

/* A result (struct provider_msg_result, read by provider_msg.c) is applied with its source set: "callback",
 * "status query" or "request refused". */

struct apply_tx {
	const struct provider_msg_result *res;
	const char *provider; /* who reported it */
	const char *outcome;  /* for the caller: applied, duplicate, conflict, unknown */
	bool unknown;
};

static hf_err event(struct db *db, int64_t pid, const char *from, const char *to, const char *detail)
{
	struct db_val e[] = {DB_I64(db_new_id()), DB_I64(pid), db_str(from), db_str(to), db_str(detail)};
	return db_exec(db,
		       "INSERT INTO payment_events (id, payment_id, from_status, to_status, at, actor, detail) VALUES (?, ?, ?,"
		       " ?, UTC_TIMESTAMP(3), 'system', ?)",
		       e, 5, NULL);
}

static hf_err apply_body(struct db *db, void *vctx)
{
	struct apply_tx *t = vctx;
	const struct provider_msg_result *res = t->res;
	t->outcome = "applied";
	t->unknown = false;
	struct db_val v[] = {DB_I64(res->payment_id)};
	struct db_rows *r = NULL;
	/* The payment's row lock serialises every report about it (repeats, callback racing a status query). */
	hf_err err = db_query(db,
			      "SELECT status, amount, currency, COALESCE(receipt, ''), cycle_id, COALESCE(provider, '')"
			      " FROM payments WHERE id = ? FOR UPDATE",
			      v, 1, &r);
	if (err)
		return err;
	if (!db_rows_next(r) || strcmp(db_rows_str(r, 5), t->provider) != 0) {
		db_rows_free(r);
		t->unknown = true;
		t->outcome = "unknown";
		return HF_OK;
	}
	char status[16], currency[4], receipt[65];
	hf_strlcpy(status, db_rows_str(r, 0), sizeof(status));
	int64_t amount = db_rows_i64(r, 1), cycle_id = db_rows_i64(r, 4);
	hf_strlcpy(currency, db_rows_str(r, 2), sizeof(currency));
	hf_strlcpy(receipt, db_rows_str(r, 3), sizeof(receipt));
	db_rows_free(r);
	struct db_val cv[] = {DB_I64(cycle_id)};
	err = db_query(db, "SELECT code, programme_code FROM payment_cycles WHERE id = ?", cv, 1, &r);
	if (err)
		return err;
	char cycle[41] = "", programme[33] = "";
	if (db_rows_next(r)) {
		hf_strlcpy(cycle, db_rows_str(r, 0), sizeof(cycle));
		hf_strlcpy(programme, db_rows_str(r, 1), sizeof(programme));
	}
	db_rows_free(r);
	char subject[96], rec[24];
	snprintf(rec, sizeof(rec), "%lld", (long long)res->payment_id);
	bool raised = false;
	bool in_flight = strcmp(status, "sending") == 0 || strcmp(status, "pending") == 0;
	if (!in_flight) {
		/* Said before: the same again is a duplicate; anything else contradicts what we hold. */
		bool same = (res->ok && strcmp(status, "paid") == 0 && strcmp(receipt, res->receipt) == 0) ||
			    (!res->ok && strcmp(status, "failed") == 0);
		if (same) {
			t->outcome = "duplicate";
			return HF_OK;
		}
		t->outcome = "conflict";
		const char *rule = res->ok && strcmp(status, "paid") == 0 ? ALERT_PAID_TWICE : ALERT_CONFLICTING_RESULT;
		snprintf(subject, sizeof(subject), "payment:%lld:%s", (long long)res->payment_id,
			 res->ok ? res->receipt : "failed");
		json_t *d = json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s}", "payment", rec, "our_status", status, "reported",
				      res->ok ? "paid" : "failed", "source", res->source, "receipt",
				      res->ok ? res->receipt : NULL, "earlier_receipt", receipt);
		err = alerts_raise(db, rule, "critical", subject, cycle_id, res->payment_id, d, &raised);
		json_decref(d);
		return err;
	}
	if (res->ok && res->have_amount && res->amount <= 0) {
		/* "Paid" with nothing paid is not a result: it stays pending for a person to look at. */
		snprintf(subject, sizeof(subject), "payment:%lld:zero", (long long)res->payment_id);
		json_t *d = json_pack("{s:s, s:I, s:I}", "payment", rec, "entitlement", (json_int_t)amount, "paid",
				      (json_int_t)res->amount);
		err = alerts_raise(db, ALERT_AMOUNT_MISMATCH, "critical", subject, cycle_id, res->payment_id, d, &raised);
		json_decref(d);
		t->outcome = "conflict";
		return err;
	}
	if (res->ok && res->have_amount && strcmp(res->currency, currency) != 0) {
		/* Another currency cannot go into these books: the payment stays pending for a person to look at. */
		snprintf(subject, sizeof(subject), "payment:%lld:currency", (long long)res->payment_id);
		json_t *d = json_pack("{s:s, s:s, s:s}", "payment", rec, "expected_currency", currency, "reported_currency",
				      res->currency);
		err = alerts_raise(db, ALERT_AMOUNT_MISMATCH, "critical", subject, cycle_id, res->payment_id, d, &raised);
		json_decref(d);
		t->outcome = "conflict";
		return err;
	}
	char settlement[LEDGER_CODE_MAX + 1], dest[LEDGER_CODE_MAX + 1], key[64], detail[200];
	snprintf(settlement, sizeof(settlement), "settlement:%s", t->provider);
	struct ledger_leg legs[2];
	struct ledger_posting p = {key, NULL, currency, cycle_id, res->payment_id, NULL, "system", legs, 2};
	bool posted = false;
	if (res->ok) {
		int64_t paid = res->have_amount ? res->amount : amount;
		struct db_val w[] = {db_str(res->receipt), DB_I64(paid), DB_I64(res->payment_id)};
		err = db_exec(db,
			      "UPDATE payments SET status = 'paid', receipt = ?, paid_amount = ?, settled_at = UTC_TIMESTAMP(3),"
			      " next_check_at = NULL, version = version + 1, updated_at = UTC_TIMESTAMP(3) WHERE id = ?",
			      w, 3, NULL);
		snprintf(dest, sizeof(dest), "paid:%s", programme);
		snprintf(key, sizeof(key), "paid:%lld", (long long)res->payment_id);
		legs[0] = (struct ledger_leg){settlement, -paid};
		legs[1] = (struct ledger_leg){dest, paid};
		p.kind = "paid";
		p.memo = "paid by the provider";
		if (!err)
			err = ledger_post(db, &p, &posted);
		snprintf(detail, sizeof(detail), "%s: paid %lld, receipt %s", res->source, (long long)paid, res->receipt);
		if (!err)
			err = event(db, res->payment_id, status, "paid", detail);
		if (!err && paid != amount) {
			snprintf(subject, sizeof(subject), "payment:%lld", (long long)res->payment_id);
			json_t *d = json_pack("{s:s, s:I, s:I, s:s}", "payment", rec, "entitlement", (json_int_t)amount, "paid",
					      (json_int_t)paid, "receipt", res->receipt);
			err = alerts_raise(db, ALERT_AMOUNT_MISMATCH, "critical", subject, cycle_id, res->payment_id, d,
					   &raised);
			json_decref(d);
		}
	} else {
		struct db_val w[] = {db_str(res->reason), DB_I64(res->payment_id)};
		err = db_exec(db,
			      "UPDATE payments SET status = 'failed', failure_reason = ?, settled_at = UTC_TIMESTAMP(3),"
			      " next_check_at = NULL, version = version + 1, updated_at = UTC_TIMESTAMP(3) WHERE id = ?",
			      w, 2, NULL);
		snprintf(dest, sizeof(dest), "returned:%s", programme);
		snprintf(key, sizeof(key), "failed:%lld", (long long)res->payment_id);
		legs[0] = (struct ledger_leg){settlement, -amount};
		legs[1] = (struct ledger_leg){dest, amount};
		p.kind = "failed";
		p.memo = "failed at the provider";
		if (!err)
			err = ledger_post(db, &p, &posted);
		snprintf(detail, sizeof(detail), "%s: failed: %s", res->source, res->reason);
		if (!err)
			err = event(db, res->payment_id, status, "failed", detail);
	}
	if (err)
		return err;
	json_t *d = json_pack("{s:s, s:s, s:s}", "result", res->ok ? "paid" : "failed", "source", res->source, "provider",
			      t->provider);
	struct audit_event ev = {"payment.result", "payment", rec, "ok", NULL, NULL, d};
	err = audit_append(db, &DISBURSER, &ev);
	json_decref(d);
	return err;
}

static hf_err unknown_body(struct db *db, void *vctx)
{
	struct apply_tx *t = vctx;
	char subject[96], rec[24];
	snprintf(rec, sizeof(rec), "HF%lld", (long long)t->res->payment_id);
	snprintf(subject, sizeof(subject), "%s:%s:%s", t->provider, rec, t->res->receipt);
	json_t *d = json_pack("{s:s, s:s, s:s, s:b}", "provider", t->provider, "reference", rec, "receipt",
			      t->res->receipt, "reported_paid", t->res->ok);
	bool raised = false;
	hf_err err = alerts_raise(db, ALERT_UNKNOWN_CALLBACK, "critical", subject, 0, 0, d, &raised);
	json_decref(d);
	return err;
}

/* Applies one result in its own transaction; *outcome says what it did. */
static hf_err apply_result(struct db *db, const char *provider, const struct provider_msg_result *res,
			   const char **outcome)
{
	struct apply_tx t = {res, provider, "applied", false};
	hf_err err = db_tx(db, apply_body, &t);
	if (!err && t.unknown)
		err = db_tx(db, unknown_body, &t);
	*outcome = t.outcome;
	return err;
}

/* A rejected or malformed callback is an alert too (someone may be forging results), at most one a minute. */
static hf_err bad_callback_body(struct db *db, void *vctx)
{
	const char *why = vctx;
	char subject[64];
	snprintf(subject, sizeof(subject), "%lld", (long long)(time(NULL) / 60));
	json_t *d = json_pack("{s:s}", "why", why);
	bool raised = false;
	hf_err err = alerts_raise(db, ALERT_BAD_CALLBACK, "warning", subject, 0, 0, d, &raised);
	json_decref(d);
	return err;
}

static hf_err refuse_callback(struct svc_call *c, hf_err code, const char *why)
{
	if (db_tx(c->db, bad_callback_body, (void *)why) != HF_OK)
		hf_log(HF_LOG_WARN, "core.disburse", "msg=\"cannot raise the bad_callback alert\"");
	snprintf(c->msg, c->msg_cap, "%s", why);
	return code;
}

hf_err disburse_callback_b2c(struct svc_call *c, struct hf_str body, const char *sig, json_t **out)
{
	const struct provider *p = &D.p[AD_B2C];
	if (!p->on)
		return HF_ENOTFOUND;
	if (!sig || hf_paysig_hmac_verify(p->secret, p->secret_len, sig, time(NULL), SIG_WINDOW_S, body.ptr, body.len))
		return refuse_callback(c, HF_EAUTH, "the callback's X-Hifadhi-Signature does not verify");
	struct provider_msg_result res;
	if (provider_msg_b2c_callback(body.ptr, body.len, &res) != HF_OK)
		return refuse_callback(c, HF_EINVAL, "the callback is not a B2C Result this service can read");
	res.source = "callback";
	const char *outcome = NULL;
	hf_err err = apply_result(c->db, p->name, &res, &outcome);
	if (err)
		return err;
	if (strcmp(outcome, "unknown") == 0) {
		snprintf(c->msg, c->msg_cap, "No payment HF%lld was sent to this provider.", (long long)res.payment_id);
		return HF_ENOTFOUND;
	}
	*out = json_pack("{s:s, s:s}", "ResultCode", "0", "outcome", outcome);
	return HF_OK;
}

/* QueueTimeOutURL: the provider gave up on the request before processing it. Nothing is settled by it: the
 * payment is queried at once, and what the provider then says (never received: sent again with the same id;
 * failed; paid) is what counts. */
hf_err disburse_timeout_b2c(struct svc_call *c, struct hf_str body, const char *sig, json_t **out)
{
	const struct provider *p = &D.p[AD_B2C];
	if (!p->on)
		return HF_ENOTFOUND;
	if (!sig || hf_paysig_hmac_verify(p->secret, p->secret_len, sig, time(NULL), SIG_WINDOW_S, body.ptr, body.len))
		return refuse_callback(c, HF_EAUTH, "the callback's X-Hifadhi-Signature does not verify");
	int64_t id = 0;
	if (provider_msg_b2c_timeout(body.ptr, body.len, &id) != HF_OK)
		return refuse_callback(c, HF_EINVAL, "the timeout notice names no payment this service can read");
	struct db_val v[] = {DB_I64(id), db_str(p->name)};
	uint64_t n = 0;
	hf_err err = db_exec(c->db,
			     "UPDATE payments SET next_check_at = UTC_TIMESTAMP(3), updated_at = UTC_TIMESTAMP(3) WHERE id = ?"
			     " AND provider = ? AND status IN ('sending', 'pending')",
			     v, 2, &n);
	if (err)
		return err;
	*out = json_pack("{s:s, s:s}", "ResultCode", "0", "outcome", n ? "status query scheduled" : "nothing in flight");
	return HF_OK;
}

hf_err disburse_callback_g2p(struct svc_call *c, struct hf_str body, const char *sig, json_t **out)
{
	const struct provider *p = &D.p[AD_G2P];
	if (!p->on)
		return HF_ENOTFOUND;
	if (!sig || hf_paysig_dci_verify(p->pk, p->sender_id, sig, time(NULL), body.ptr, body.len))
		return refuse_callback(c, HF_EAUTH, "the callback's Signature does not verify");
	struct provider_msg_batch *batch = NULL;
	if (provider_msg_g2p_callback(body.ptr, body.len, &batch) != HF_OK)
		return refuse_callback(c, HF_EINVAL, "the callback is not an on-disburse envelope this service can read");
	int applied = 0, duplicate = 0, unknown = 0, conflict = 0, pending = 0, bad = 0;
	hf_err err = HF_OK;
	for (size_t i = 0; i < batch->n; i++) {
		if (batch->kind[i] != PROVIDER_MSG_ITEM_RESULT) {
			pending += batch->kind[i] == PROVIDER_MSG_ITEM_PENDING;
			bad += batch->kind[i] == PROVIDER_MSG_ITEM_UNREADABLE;
			continue;
		}
		struct provider_msg_result *res = &batch->res[i];
		res->source = "callback";
		const char *outcome = NULL;
		err = apply_result(c->db, p->name, res, &outcome);
		if (err)
			break;
		applied += strcmp(outcome, "applied") == 0;
		duplicate += strcmp(outcome, "duplicate") == 0;
		unknown += strcmp(outcome, "unknown") == 0;
		conflict += strcmp(outcome, "conflict") == 0;
	}
	provider_msg_batch_free(batch);
	if (err)
		return err;
	if (bad && db_tx(c->db, bad_callback_body, (void *)"on-disburse items that cannot be read") != HF_OK)
		hf_log(HF_LOG_WARN, "core.disburse", "msg=\"cannot raise the bad_callback alert\"");
	char ts[32];
	iso_now(ts);
	*out = json_pack("{s:{s:s, s:s, s:{s:i, s:i, s:i, s:i, s:i, s:i}}}", "message", "ack_status", "ACK", "timestamp", ts,
			 "counts", "applied", applied, "duplicate", duplicate, "unknown", unknown, "conflict", conflict,
			 "pending", pending, "unreadable", bad);
	return HF_OK;
}

/* ------------------------------------------------------------------ sending */

struct claimed {
	int64_t id, individual_id, amount;
	char msisdn[20];
	bool have_phone;
};

struct claim_tx {
	int64_t cycle_id;
	char cycle[41], programme[33], currency[4], provider[33];
	struct claimed *items;
	size_t n, cap;
	int query_after_s;
};

/* An approved cycle with payments waiting, and its provider; the caller rotates through them. */
static hf_err next_cycle(struct db *db, int64_t after, struct claim_tx *t)
{
	struct db_val v[] = {DB_I64(after)};
	struct db_rows *r = NULL;
	hf_err err = db_query(db,
			      "SELECT c.id, c.code, c.programme_code, c.currency, COALESCE(c.provider, '') FROM payment_cycles c"
			      " WHERE c.status = 'approved' AND c.channel <> 'kiosk' AND c.id > ? AND EXISTS (SELECT 1 FROM"
			      " payments p JOIN enrolments e ON e.id = p.enrolment_id WHERE p.cycle_id = c.id AND p.status ="
			      " 'approved' AND e.status = 'enrolled') ORDER BY c.id LIMIT 1",
			      v, 1, &r);
	if (err)
		return err;
	t->cycle_id = 0;
	if (db_rows_next(r)) {
		t->cycle_id = db_rows_i64(r, 0);
		hf_strlcpy(t->cycle, db_rows_str(r, 1), sizeof(t->cycle));
		hf_strlcpy(t->programme, db_rows_str(r, 2), sizeof(t->programme));
		hf_strlcpy(t->currency, db_rows_str(r, 3), sizeof(t->currency));
		hf_strlcpy(t->provider, db_rows_str(r, 4), sizeof(t->provider));
	}
	db_rows_free(r);
	return HF_OK;
}

static hf_err claim_body(struct db *db, void *vctx)
{
	struct claim_tx *t = vctx;
	t->n = 0;
	struct db_val v[] = {DB_I64(t->cycle_id), DB_I64((int64_t)t->cap)};
	struct db_rows *r = NULL;
	/* SKIP LOCKED: several senders (and core instances) take disjoint batches. */
	hf_err err = db_query(db,
			      "SELECT p.id, p.individual_id, p.amount FROM payments p WHERE p.cycle_id = ? AND p.status ="
			      " 'approved' AND EXISTS (SELECT 1 FROM enrolments e WHERE e.id = p.enrolment_id AND e.status ="
			      " 'enrolled') ORDER BY p.id LIMIT ? FOR UPDATE SKIP LOCKED",
			      v, 2, &r);
	if (err)
		return err;
	while (db_rows_next(r) && t->n < t->cap) {
		struct claimed *k = &t->items[t->n++];
		memset(k, 0, sizeof(*k));
		k->id = db_rows_i64(r, 0);
		k->individual_id = db_rows_i64(r, 1);
		k->amount = db_rows_i64(r, 2);
	}
	db_rows_free(r);
	if (t->n == 0)
		return HF_OK;
	struct hf_buf sql;
	hf_buf_init(&sql, 256 * 1024);
	struct db_val *w = hf_xcalloc(t->n * 4 + 2, sizeof(*w));
	size_t nw = 0;
	w[nw++] = DB_I64(t->query_after_s);
	err = hf_buf_append_str(&sql, "UPDATE payments SET status = 'sending', attempts = attempts + 1, sent_at ="
				      " UTC_TIMESTAMP(3), next_check_at = UTC_TIMESTAMP(3) + INTERVAL ? SECOND, version ="
				      " version + 1, updated_at = UTC_TIMESTAMP(3) WHERE id IN (");
	for (size_t i = 0; i < t->n && !err; i++) {
		err = hf_buf_append_str(&sql, i ? ", ?" : "?");
		w[nw++] = DB_I64(t->items[i].id);
	}
	err = err ? err : hf_buf_append_str(&sql, ")");
	if (!err)
		err = db_exec(db, hf_buf_cstr(&sql), w, nw, NULL);
	/* The money leaves the cycle's clearing account for the provider's settlement account, per payment. */
	struct ledger_posting *ps = hf_xcalloc(t->n, sizeof(*ps));
	struct ledger_leg *legs = hf_xcalloc(t->n * 2, sizeof(*legs));
	char(*keys)[32] = hf_xcalloc(t->n, sizeof(*keys));
	char clearing[LEDGER_CODE_MAX + 1], settlement[LEDGER_CODE_MAX + 1];
	snprintf(clearing, sizeof(clearing), "clearing:%s", t->cycle);
	snprintf(settlement, sizeof(settlement), "settlement:%s", t->provider);
	for (size_t i = 0; i < t->n; i++) {
		snprintf(keys[i], sizeof(keys[i]), "send:%lld", (long long)t->items[i].id);
		legs[2 * i] = (struct ledger_leg){clearing, -t->items[i].amount};
		legs[2 * i + 1] = (struct ledger_leg){settlement, t->items[i].amount};
		ps[i] = (struct ledger_posting){keys[i], "send", t->currency, t->cycle_id, t->items[i].id, NULL, "system",
						&legs[2 * i], 2};
	}
	size_t posted = 0;
	if (!err)
		err = ledger_post_many(db, ps, t->n, &posted);
	free(ps);
	free(legs);
	free(keys);
	/* One event per payment, in one statement. */
	if (!err) {
		hf_buf_reset(&sql);
		nw = 0;
		int64_t base = db_new_id();
		err = hf_buf_append_str(&sql, "INSERT INTO payment_events (id, payment_id, from_status, to_status, at, actor,"
					      " detail) VALUES ");
		for (size_t i = 0; i < t->n && !err; i++) {
			err = hf_buf_append_str(&sql, i ? ", (?, ?, 'approved', 'sending', UTC_TIMESTAMP(3), 'system', ?)"
							: "(?, ?, 'approved', 'sending', UTC_TIMESTAMP(3), 'system', ?)");
			w[nw++] = DB_I64(base + (int64_t)i);
			w[nw++] = DB_I64(t->items[i].id);
			w[nw++] = db_str(t->provider);
		}
		if (!err)
			err = db_exec(db, hf_buf_cstr(&sql), w, nw, NULL);
	}
	hf_buf_release(&sql);
	free(w);
	if (err)
		return err;
	char first[24], last[24];
	snprintf(first, sizeof(first), "%lld", (long long)t->items[0].id);
	snprintf(last, sizeof(last), "%lld", (long long)t->items[t->n - 1].id);
	json_t *d = json_pack("{s:i, s:s, s:s, s:s}", "payments", (int)t->n, "provider", t->provider, "first", first,
			      "last", last);
	struct audit_event ev = {"payment.send", "cycle", t->cycle, "ok", NULL, NULL, d};
	err = audit_append(db, &DISBURSER, &ev);
	json_decref(d);
	return err;
}

/* The payees' phone numbers, as MSISDN digits (no '+'). */
static hf_err load_phones(struct db *db, struct claimed *items, size_t n)
{
	struct hf_buf sql, phone;
	hf_buf_init(&sql, 64 * 1024);
	hf_buf_init(&phone, 256);
	struct db_val *v = hf_xcalloc(n, sizeof(*v));
	hf_err err = hf_buf_append_str(&sql, "SELECT id, phone_enc FROM individuals WHERE id IN (");
	for (size_t i = 0; i < n && !err; i++) {
		err = hf_buf_append_str(&sql, i ? ", ?" : "?");
		v[i] = DB_I64(items[i].individual_id);
	}
	err = err ? err : hf_buf_append_str(&sql, ")");
	struct db_rows *r = NULL;
	if (!err)
		err = db_query(db, hf_buf_cstr(&sql), v, n, &r);
	while (!err && db_rows_next(r)) {
		int64_t id = db_rows_i64(r, 0);
		if (db_rows_null(r, 1))
			continue;
		size_t len = 0;
		const void *sealed = db_rows_blob(r, 1, &len);
		hf_buf_reset(&phone);
		if (person_open_field(g_app.keys, id, "phone", sealed, len, &phone) != HF_OK ||
		    hf_buf_append(&phone, "", 1) != HF_OK)
			continue;
		const char *digits = phone.data[0] == '+' ? phone.data + 1 : phone.data;
		for (size_t i = 0; i < n; i++)
			if (items[i].individual_id == id) {
				hf_strlcpy(items[i].msisdn, digits, sizeof(items[i].msisdn));
				items[i].have_phone = true;
			}
	}
	db_rows_free(r);
	if (phone.data)
		sodium_memzero(phone.data, phone.cap);
	hf_buf_release(&phone);
	hf_buf_release(&sql);
	free(v);
	return err;
}

/* Marks payments pending (the provider accepted them) where they are still sending. */
struct mark_tx {
	const int64_t *ids;
	size_t n;
	const char *provider;
};

static hf_err mark_pending_body(struct db *db, void *vctx)
{
	struct mark_tx *t = vctx;
	struct hf_buf sql;
	hf_buf_init(&sql, 128 * 1024);
	struct db_val *v = hf_xcalloc(t->n * 2 + 1, sizeof(*v));
	/* Those still sending (a fast callback may have settled some already), locked, then moved. */
	hf_err err = hf_buf_append_str(&sql, "SELECT id FROM payments WHERE status = 'sending' AND id IN (");
	for (size_t i = 0; i < t->n && !err; i++) {
		err = hf_buf_append_str(&sql, i ? ", ?" : "?");
		v[i] = DB_I64(t->ids[i]);
	}
	err = err ? err : hf_buf_append_str(&sql, ") FOR UPDATE");
	struct db_rows *r = NULL;
	if (!err)
		err = db_query(db, hf_buf_cstr(&sql), v, t->n, &r);
	size_t n = 0;
	while (!err && db_rows_next(r))
		v[n++] = DB_I64(db_rows_i64(r, 0));
	db_rows_free(r);
	if (err || n == 0)
		goto out;
	hf_buf_reset(&sql);
	err = hf_buf_append_str(&sql, "UPDATE payments SET status = 'pending', version = version + 1, updated_at ="
				      " UTC_TIMESTAMP(3) WHERE id IN (");
	for (size_t i = 0; i < n && !err; i++)
		err = hf_buf_append_str(&sql, i ? ", ?" : "?");
	err = err ? err : hf_buf_append_str(&sql, ")");
	if (!err)
		err = db_exec(db, hf_buf_cstr(&sql), v, n, NULL);
	if (err)
		goto out;
	/* One event per payment, in one statement. */
	struct db_val *e = hf_xcalloc(n * 3, sizeof(*e));
	size_t ne = 0;
	int64_t base = db_new_id();
	hf_buf_reset(&sql);
	err = hf_buf_append_str(&sql, "INSERT INTO payment_events (id, payment_id, from_status, to_status, at, actor, detail)"
				      " VALUES ");
	for (size_t i = 0; i < n && !err; i++) {
		err = hf_buf_append_str(&sql, i ? ", (?, ?, 'sending', 'pending', UTC_TIMESTAMP(3), 'system', ?)"
						: "(?, ?, 'sending', 'pending', UTC_TIMESTAMP(3), 'system', ?)");
		e[ne++] = DB_I64(base + (int64_t)i);
		e[ne++] = v[i];
		e[ne++] = db_str("accepted by the provider");
	}
	if (!err)
		err = db_exec(db, hf_buf_cstr(&sql), e, ne, NULL);
	free(e);
out:
	hf_buf_release(&sql);
	free(v);
	return err;
}

static void mark_pending(struct db *db, const int64_t *ids, size_t n, const char *provider)
{
	if (n == 0)
		return;
	struct mark_tx t = {ids, n, provider};
	if (db_tx(db, mark_pending_body, &t) != HF_OK)
		hf_log(HF_LOG_WARN, "core.disburse", "msg=\"cannot mark accepted payments pending; the checker will\"");
}

/* A synchronous refusal: the payment failed, its money returns. */
static void fail_now(struct db *db, const char *provider, int64_t id, const char *reason)
{
	struct provider_msg_result res = {.payment_id = id, .ok = false, .source = "request refused"};
	hf_strlcpy(res.reason, reason, sizeof(res.reason));
	const char *outcome = NULL;
	if (apply_result(db, provider, &res, &outcome) != HF_OK)
		hf_log(HF_LOG_WARN, "core.disburse", "msg=\"cannot record a refused payment; the checker will\" payment=%lld",
		       (long long)id);
}

static void auth_header(const struct provider *p, char *out, size_t cap)
{
	if (p->token[0])
		snprintf(out, cap, "Authorization: Bearer %s", p->token);
	else
		out[0] = '\0';
}

/* B2C: one request per payment. Returns whether the provider accepted it (false: refused, or unanswered). */
static void b2c_send(struct hf_httpc *hc, struct db *db, const struct provider *p, const struct claim_tx *t,
		     const struct claimed *k, int64_t *accepted, size_t *nacc)
{
	char amount[24], url[400], result_url[300], timeout_url[300], oid[24], authz[300];
	snprintf(oid, sizeof(oid), "HF%lld", (long long)k->id);
	snprintf(amount, sizeof(amount), "%lld", (long long)k->amount);
	snprintf(url, sizeof(url), "%s/mm/b2c/v1/paymentrequest", p->url);
	snprintf(result_url, sizeof(result_url), "%s/api/v1/providers/b2c/result", D.callback_base);
	snprintf(timeout_url, sizeof(timeout_url), "%s/api/v1/providers/b2c/timeout", D.callback_base);
	json_t *req = json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:s, s:s}", "OriginatorConversationID", oid, "CommandID",
				"BusinessPayment", "PartyB", k->msisdn, "Amount", (json_int_t)k->amount, "Currency",
				t->currency, "Remarks", t->cycle, "ResultURL", result_url, "QueueTimeOutURL", timeout_url);
	char *body = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	auth_header(p, authz, sizeof(authz));
	const char *hdrs[] = {authz[0] ? authz : NULL, NULL};
	struct hf_httpc_resp resp;
	hf_err err = hf_httpc_post(hc, url, "application/json", body, strlen(body), authz[0] ? hdrs : NULL, D.timeout_ms,
				   PROVIDER_RESP_MAX, &resp);
	sodium_memzero(body, strlen(body));
	free(body);
	if (err) {
		/* No answer: it may or may not have arrived. The checker asks; nothing is re-sent blindly. */
		hf_log(HF_LOG_WARN, "core.disburse", "msg=\"provider did not answer\" provider=%s payment=%lld err=%s",
		       p->name, (long long)k->id, hf_err_name(err));
		return;
	}
	char why[PROVIDER_MSG_REASON_SIZE];
	enum provider_msg_ack ack = provider_msg_b2c_ack(resp.status, resp.body.data, resp.body.len, why);
	if (ack == PROVIDER_MSG_ACK_ACCEPTED) {
		accepted[(*nacc)++] = k->id;
	} else if (ack == PROVIDER_MSG_ACK_REFUSED) {
		fail_now(db, p->name, k->id, why);
	} else {
		/* 4xx/5xx: the request was not taken as it stands; the checker asks before anything else. */
		hf_log(HF_LOG_WARN, "core.disburse", "msg=\"provider refused the request\" provider=%s payment=%lld status=%ld",
		       p->name, (long long)k->id, resp.status);
	}
	hf_buf_release(&resp.body);
}

/* G2P: one envelope for the batch. */
static void g2p_send(struct hf_httpc *hc, struct db *db, const struct provider *p, const struct claim_tx *t,
		     const struct claimed *items, size_t n, int64_t *accepted, size_t *nacc)
{
	char ts[32], url[400], msg_id[40], tx_id[40], authz[300];
	iso_now(ts);
	snprintf(url, sizeof(url), "%s/g2p/disburse", p->url);
	snprintf(msg_id, sizeof(msg_id), "M%lld", (long long)db_new_id());
	snprintf(tx_id, sizeof(tx_id), "T%lld", (long long)items[0].id);
	json_t *list = json_array();
	size_t sent = 0;
	const struct claimed **in = hf_xcalloc(n, sizeof(*in));
	for (size_t i = 0; i < n; i++) {
		if (!items[i].have_phone)
			continue;
		char ref[24], amount[HF_MONEY_STR_MAX], fa[64];
		snprintf(ref, sizeof(ref), "HF%lld", (long long)items[i].id);
		hf_money_decimal(items[i].amount, t->currency, amount);
		snprintf(fa, sizeof(fa), "%s@%s", items[i].msisdn, p->name);
		json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "reference_id",
						      ref, "payer_fa", D.our_id, "payee_fa", fa, "amount", amount,
						      "currency_code", t->currency, "note", t->cycle, "purpose",
						      "social protection transfer", "locale", "en", "scheduled_timestamp", ts,
						      "payer_name", D.our_id));
		in[sent++] = &items[i];
	}
	char sender_uri[300];
	snprintf(sender_uri, sizeof(sender_uri), "%s/api/v1/providers/g2p", D.callback_base);
	json_t *env = json_pack("{s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:b}, s:{s:s, s:o}}", "header", "version",
				"1.0.0", "message_id", msg_id, "message_ts", ts, "action", "disburse", "sender_id", D.our_id,
				"sender_uri", sender_uri, "receiver_id", p->name, "total_count", (int)sent,
				"is_msg_encrypted", 0, "message", "transaction_id", tx_id, "disbursements", list);
	char *body = json_dumps(env, JSON_COMPACT);
	json_decref(env);
	auth_header(p, authz, sizeof(authz));
	const char *hdrs[] = {authz[0] ? authz : NULL, NULL};
	struct hf_httpc_resp resp;
	hf_err err = sent ? hf_httpc_post(hc, url, "application/json", body, strlen(body), authz[0] ? hdrs : NULL,
					  D.timeout_ms, PROVIDER_RESP_MAX, &resp)
			  : HF_EINVAL;
	sodium_memzero(body, strlen(body));
	free(body);
	if (err) {
		if (sent)
			hf_log(HF_LOG_WARN, "core.disburse", "msg=\"provider did not answer\" provider=%s batch=%zu err=%s",
			       p->name, sent, hf_err_name(err));
		free(in);
		return;
	}
	enum provider_msg_ack ack = provider_msg_g2p_ack(resp.status, resp.body.data, resp.body.len);
	if (ack == PROVIDER_MSG_ACK_ACCEPTED) {
		for (size_t i = 0; i < sent; i++)
			accepted[(*nacc)++] = in[i]->id;
	} else if (ack == PROVIDER_MSG_ACK_REFUSED) {
		for (size_t i = 0; i < sent; i++)
			fail_now(db, p->name, in[i]->id, "refused: the provider did not accept the envelope (NACK)");
	} else {
		hf_log(HF_LOG_WARN, "core.disburse", "msg=\"provider refused the envelope\" provider=%s status=%ld", p->name,
		       resp.status);
	}
	hf_buf_release(&resp.body);
	free(in);
}

/* One batch: claim, send, mark. Returns how many were claimed (0: nothing to do in this cycle). */
static hf_err send_batch(struct hf_httpc *hc, struct db *db, struct claim_tx *t, int *claimed)
{
	*claimed = 0;
	enum adapter ad;
	const struct provider *p = provider_named(t->provider, &ad);
	if (!p)
		return HF_OK; /* a cycle for a provider this instance does not know: left for one that does */
	hf_err err = db_tx(db, claim_body, t);
	for (int i = 0; i < 3 && err == HF_ECONFLICT && strcmp(db_conflict_key(db), "PRIMARY") == 0; i++)
		err = db_tx(db, claim_body, t);
	if (err || t->n == 0)
		return err;
	*claimed = (int)t->n;
	err = load_phones(db, t->items, t->n);
	if (err)
		return err; /* they stay sending; the checker takes them */
	int64_t *accepted = hf_xcalloc(t->n, sizeof(*accepted));
	size_t nacc = 0;
	for (size_t i = 0; i < t->n; i++)
		if (!t->items[i].have_phone)
			fail_now(db, p->name, t->items[i].id, "no phone on file for the payee");
	if (ad == AD_B2C) {
		for (size_t i = 0; i < t->n && !atomic_load(&D.stop); i++)
			if (t->items[i].have_phone)
				b2c_send(hc, db, p, t, &t->items[i], accepted, &nacc);
	} else {
		g2p_send(hc, db, p, t, t->items, t->n, accepted, &nacc);
	}
	mark_pending(db, accepted, nacc, p->name);
	free(accepted);
	for (size_t i = 0; i < t->n; i++)
		sodium_memzero(t->items[i].msisdn, sizeof(t->items[i].msisdn));
	return HF_OK;
}

/* ------------------------------------------------------------------ asking about unanswered payments */

struct due {
	int64_t id, individual_id, amount;
	char status[16], provider[33], currency[4], cycle[41];
	int checks;
};

/* The next status query: query_after_s, then twice as long after each query, at most 64 times as long. */
static hf_err bump_check(struct db *db, int64_t id, int checks, int base_s)
{
	int shift = checks + 1 < 6 ? checks + 1 : 6;
	struct db_val v[] = {DB_I64((int64_t)base_s << shift), DB_I64(id)};
	return db_exec(db,
		       "UPDATE payments SET checks = checks + 1, next_check_at = UTC_TIMESTAMP(3) + INTERVAL ? SECOND,"
		       " updated_at = UTC_TIMESTAMP(3) WHERE id = ? AND status IN ('sending', 'pending')",
		       v, 2, NULL);
}

/* Never received: send again, with the same idempotency id (the provider's duplicate check covers a request
 * that was in fact received between our query and this). */
static void resend(struct hf_httpc *hc, struct db *db, const struct provider *p, enum adapter ad, const struct due *d)
{
	struct claim_tx t = {0};
	hf_strlcpy(t.cycle, d->cycle, sizeof(t.cycle));
	hf_strlcpy(t.currency, d->currency, sizeof(t.currency));
	hf_strlcpy(t.provider, d->provider, sizeof(t.provider));
	struct claimed k = {.id = d->id, .individual_id = d->individual_id, .amount = d->amount};
	if (load_phones(db, &k, 1) || !k.have_phone)
		return;
	int64_t acc[1];
	size_t nacc = 0;
	if (ad == AD_B2C)
		b2c_send(hc, db, p, &t, &k, acc, &nacc);
	else
		g2p_send(hc, db, p, &t, &k, 1, acc, &nacc);
	mark_pending(db, acc, nacc, p->name);
	struct db_val v[] = {DB_I64(d->id)};
	if (db_exec(db, "UPDATE payments SET attempts = attempts + 1 WHERE id = ?", v, 1, NULL) != HF_OK)
		hf_log(HF_LOG_WARN, "core.disburse", "msg=\"cannot count a resend\"");
	sodium_memzero(k.msisdn, sizeof(k.msisdn));
}

static void check_one(struct hf_httpc *hc, struct db *db, const struct due *d)
{
	enum adapter ad;
	const struct provider *p = provider_named(d->provider, &ad);
	if (!p)
		return;
	char url[400], authz[300], ref[24];
	snprintf(ref, sizeof(ref), "HF%lld", (long long)d->id);
	json_t *req;
	if (ad == AD_B2C) {
		snprintf(url, sizeof(url), "%s/mm/b2c/v1/status", p->url);
		req = json_pack("{s:s}", "OriginatorConversationID", ref);
	} else {
		snprintf(url, sizeof(url), "%s/g2p/disburse/sync/txn/status", p->url);
		req = json_pack("{s:{s:s, s:{s:s, s:s, s:[s]}}}", "message", "transaction_id", ref, "txnstatus_request",
				"txn_type", "disburse", "attribute_type", "reference_id_list", "attribute_value", ref);
	}
	char *body = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	auth_header(p, authz, sizeof(authz));
	const char *hdrs[] = {authz[0] ? authz : NULL, NULL};
	struct hf_httpc_resp resp;
	hf_err err = hf_httpc_post(hc, url, "application/json", body, strlen(body), authz[0] ? hdrs : NULL, D.timeout_ms,
				   PROVIDER_RESP_MAX, &resp);
	free(body);
	if (err) {
		(void)bump_check(db, d->id, d->checks, D.query_after_s);
		return;
	}
	struct provider_msg_result res;
	enum provider_msg_answer a = ad == AD_B2C
					     ? provider_msg_b2c_status(resp.status, resp.body.data, resp.body.len, &res)
					     : provider_msg_g2p_status(resp.body.data, resp.body.len, &res);
	hf_buf_release(&resp.body);
	bool have = a == PROVIDER_MSG_ANSWER_RESULT, never = a == PROVIDER_MSG_ANSWER_NEVER,
	     still = a == PROVIDER_MSG_ANSWER_PENDING;
	if (have && res.payment_id == d->id) {
		res.source = "status query";
		const char *outcome = NULL;
		if (apply_result(db, p->name, &res, &outcome) != HF_OK)
			hf_log(HF_LOG_WARN, "core.disburse", "msg=\"cannot apply a queried result\" payment=%lld",
			       (long long)d->id);
		return;
	}
	if (still && strcmp(d->status, "sending") == 0)
		mark_pending(db, &d->id, 1, p->name);
	if (never && strcmp(d->status, "sending") == 0)
		resend(hc, db, p, ad, d);
	(void)bump_check(db, d->id, d->checks, D.query_after_s);
}

/* Payments whose answer is overdue; each is asked about once per pass. */
static hf_err check_pass(struct hf_httpc *hc, struct db *db, int *queried)
{
	*queried = 0;
	struct db_rows *r = NULL;
	hf_err err = db_query(db,
			      "SELECT p.id, p.individual_id, p.amount, p.status, COALESCE(p.provider, ''), p.currency, c.code,"
			      " p.checks FROM payments p JOIN payment_cycles c ON c.id = p.cycle_id WHERE p.status IN"
			      " ('sending', 'pending') AND p.next_check_at <= UTC_TIMESTAMP(3) ORDER BY p.next_check_at LIMIT"
			      " 200",
			      NULL, 0, &r);
	if (err)
		return err;
	struct due *list = hf_xcalloc(200, sizeof(*list));
	size_t n = 0;
	while (db_rows_next(r) && n < 200) {
		struct due *d = &list[n++];
		d->id = db_rows_i64(r, 0);
		d->individual_id = db_rows_i64(r, 1);
		d->amount = db_rows_i64(r, 2);
		hf_strlcpy(d->status, db_rows_str(r, 3), sizeof(d->status));
		hf_strlcpy(d->provider, db_rows_str(r, 4), sizeof(d->provider));
		hf_strlcpy(d->currency, db_rows_str(r, 5), sizeof(d->currency));
		hf_strlcpy(d->cycle, db_rows_str(r, 6), sizeof(d->cycle));
		d->checks = (int)db_rows_i64(r, 7);
	}
	db_rows_free(r);
	for (size_t i = 0; i < n && !atomic_load(&D.stop); i++) {
		check_one(hc, db, &list[i]);
		(*queried)++;
	}
	free(list);
	return HF_OK;
}

/* ------------------------------------------------------------------ threads */

static int send_round(struct hf_httpc *hc, struct db *db, struct claim_tx *t)
{
	int total = 0;
	int64_t after = 0;
	for (;;) {
		if (next_cycle(db, after, t) != HF_OK || t->cycle_id == 0)
			break;
		after = t->cycle_id;
		int claimed = 0;
		do {
			if (send_batch(hc, db, t, &claimed) != HF_OK)
				break;
			total += claimed;
		} while (claimed && !atomic_load(&D.stop));
	}
	return total;
}

static void nap_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static void *sender_main(void *arg)
{
	(void)arg;
	struct hf_httpc *hc = hf_httpc_new();
	struct claim_tx t = {.query_after_s = D.query_after_s};
	t.cap = (size_t)D.batch;
	t.items = hf_xcalloc(t.cap, sizeof(*t.items));
	while (!atomic_load(&D.stop)) {
		struct db *db = NULL;
		int n = 0;
		if (hc && db_acquire(&db) == HF_OK)
			n = send_round(hc, db, &t);
		if (n == 0)
			nap_ms(500);
	}
	free(t.items);
	hf_httpc_free(hc);
	db_release_thread();
	return NULL;
}

static void *checker_main(void *arg)
{
	(void)arg;
	struct hf_httpc *hc = hf_httpc_new();
	while (!atomic_load(&D.stop)) {
		struct db *db = NULL;
		int q = 0;
		if (hc && db_acquire(&db) == HF_OK && check_pass(hc, db, &q) != HF_OK)
			hf_log(HF_LOG_WARN, "core.disburse", "msg=\"status queries failed; retried\"");
		if (q == 0)
			nap_ms(1000);
	}
	hf_httpc_free(hc);
	db_release_thread();
	return NULL;
}

hf_err disburse_start(void)
{
	atomic_store(&D.stop, false);
	D.nsenders = 0;
	D.checker_on = false;
	if (!D.p[AD_B2C].on && !D.p[AD_G2P].on)
		return HF_OK;
	int n = D.threads < MAX_SENDERS ? D.threads : MAX_SENDERS;
	for (int i = 0; i < n; i++) {
		if (pthread_create(&D.senders[i], NULL, sender_main, NULL))
			break;
		D.nsenders++;
	}
	D.checker_on = pthread_create(&D.checker, NULL, checker_main, NULL) == 0;
	if (!D.nsenders || !D.checker_on) {
		disburse_stop();
		return HF_EINTERNAL;
	}
	hf_log(HF_LOG_INFO, "core.disburse", "msg=\"disbursing\" senders=%d b2c=%s g2p=%s", D.nsenders,
	       D.p[AD_B2C].on ? D.p[AD_B2C].name : "-", D.p[AD_G2P].on ? D.p[AD_G2P].name : "-");
	return HF_OK;
}

void disburse_stop(void)
{
	atomic_store(&D.stop, true);
	for (int i = 0; i < D.nsenders; i++)
		pthread_join(D.senders[i], NULL);
	if (D.checker_on)
		pthread_join(D.checker, NULL);
	D.nsenders = 0;
	D.checker_on = false;
}

hf_err disburse_pass(struct db *db, int *sent, int *queried)
{
	*sent = *queried = 0;
	struct hf_httpc *hc = hf_httpc_new();
	if (!hc)
		return HF_EINTERNAL;
	struct claim_tx t = {.query_after_s = D.query_after_s};
	t.cap = (size_t)D.batch;
	t.items = hf_xcalloc(t.cap, sizeof(*t.items));
	*sent = send_round(hc, db, &t);
	hf_err err = check_pass(hc, db, queried);
	free(t.items);
	hf_httpc_free(hc);
	return err;
}
