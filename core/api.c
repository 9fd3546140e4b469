/* api.c - routes, error bodies, /healthz and /metrics of hifadhi-core. */
#include "hf_base.h"
#include "api.h"
#include "app.h"
#include "audit.h"
#include "auth.h"
#include "alerts.h"
#include "biometric.h"
#include "cases.h"
#include "disburse.h"
#include "notices.h"
#include "outbox.h"
#include "payments.h"
#include "recon.h"
#include "db.h"
#include "hf_crypto.h"
#include "kiosk.h"
#include "kiosk_ops.h"
#include "ledger.h"
#include "hf_json.h"
#include "hf_log.h"
#include "quality.h"
#include "registry.h"
#include "subscriber.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define MAX_SEGS 8
#define SEG_MAX 128

/* ---- metrics: plain atomics, exported in Prometheus text format ---- */
static const double lat_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
#define NLAT (sizeof(lat_bounds) / sizeof(lat_bounds[0]))
static _Atomic uint64_t m_requests[6]; /* by status class 1xx..5xx, [0] unused */
static _Atomic uint64_t m_lat[NLAT + 1];
static _Atomic uint64_t m_lat_sum_us;
static _Atomic uint64_t m_db_unavailable;
static _Atomic uint64_t m_inflight;
static int64_t m_started_ms;

void api_init(void)
{
	m_started_ms = hf_now_ms();
}

struct call {
	const struct hf_http_req *req;
	struct hf_http_resp *resp;
	const char *seg[MAX_SEGS];
	size_t nseg;
	json_t *body; /* parsed body for POST/PATCH */
	struct reg_req rq;
	struct hf_ferrs fe;
	struct principal p;
	int retry_after_s;
	const struct route *route;
	int status_override; /* a success other than the route's usual status (202 pending, 200 linked) */
	const char *reason;  /* a refusal's machine-readable reason for the error body (kiosk routes), NULL: none */
};

typedef hf_err (*route_fn)(struct call *c, json_t **out);
static void audit_denied(struct call *c, hf_err err, const char *why);

struct route {
	const char *method;
	const char *pattern; /* segments after /api/v1/, "*" = one variable segment */
	route_fn fn;
	int ok_status;
	unsigned allow;     /* A_* bits below */
	const char *action; /* audit action */
	const char *entity;
	bool pii;
	/* The body is handed over as bytes (c->req->body), not parsed: signed provider callbacks (the
	 * signature covers the exact bytes) and CSV uploads (text/csv). */
	bool raw;
};

static void write_error(struct call *c, hf_err e, const char *detail)
{
	struct hf_http_resp *resp = c->resp;
	resp->status = hf_err_http_status(e);
	json_t *err = json_pack("{s:s, s:s, s:s}", "code", hf_err_name(e), "message",
				detail && detail[0] ? detail : hf_err_message(e), "request_id", c->req->request_id);
	if (e == HF_EINVAL && c->fe.list && hf_ferrs_any(&c->fe))
		json_object_set(err, "fields", c->fe.list);
	if (c->reason)
		json_object_set_new(err, "reason", json_string(c->reason));
	json_t *root = json_pack("{s:o}", "error", err);
	hf_buf_reset(&resp->body);
	if (hf_json_dump(root, &resp->body))
		resp->status = 500;
	json_decref(root);
	if (e == HF_EDB_RETRY) {
		hf_http_resp_header(resp, "Retry-After", "5");
		atomic_fetch_add(&m_db_unavailable, 1);
	}
}

/* ---- route handlers ---- */

static const char *arg(struct call *c, const char *name)
{
	return hf_http_query(c->req, name);
}

static hf_err read_query(struct call *c, struct reg_query *q)
{
	memset(q, 0, sizeof(*q));
	q->ben_no = arg(c, "ben_no");
	q->national_id = arg(c, "national_id");
	q->phone = arg(c, "phone");
	q->name = arg(c, "name");
	q->location = arg(c, "location");
	q->programme = arg(c, "programme");
	q->status = arg(c, "status");
	q->after = arg(c, "after");
	q->limit = 20;
	const char *const *vals[] = {&q->ben_no, &q->national_id, &q->phone, &q->name, &q->location, &q->programme,
				     &q->status, &q->after};
	static const char *const names[] = {"ben_no", "national_id", "phone", "name", "location", "programme", "status",
					    "after"};
	for (size_t i = 0; i < HF_ARRAY_LEN(vals); i++) {
		const char *v = *vals[i];
		if (v && (strlen(v) > 320 || !hf_utf8_valid_text(v, strlen(v))))
			hf_ferrs_add(&c->fe, names[i], "bad_value", "too long or not text");
	}
	const char *lim = arg(c, "limit");
	int64_t l = 0;
	if (lim) {
		if (hf_parse_i64(lim, 1, g_app.max_page, &l))
			hf_ferrs_add(&c->fe, "limit", "out_of_range", "must be 1 to %d", g_app.max_page);
		else
			q->limit = (int)l;
	}
	return hf_ferrs_any(&c->fe) ? HF_EINVAL : HF_OK;
}

static hf_err r_prog_list(struct call *c, json_t **out)
{
	return registry_programme_list(&c->rq, out);
}
static hf_err r_prog_create(struct call *c, json_t **out)
{
	return registry_programme_create(&c->rq, c->body, out);
}
static hf_err r_prog_get(struct call *c, json_t **out)
{
	return registry_programme_get(&c->rq, c->seg[1], out);
}
static hf_err r_prog_update(struct call *c, json_t **out)
{
	return registry_programme_update(&c->rq, c->seg[1], c->body, out);
}
static hf_err r_prog_history(struct call *c, json_t **out)
{
	return registry_history(&c->rq, "programme", c->seg[1], out);
}
static hf_err r_hh_create(struct call *c, json_t **out)
{
	return registry_household_create(&c->rq, c->body, out);
}
static hf_err r_hh_search(struct call *c, json_t **out)
{
	struct reg_query q;
	hf_err err = read_query(c, &q);
	return err ? err : registry_household_search(&c->rq, &q, out);
}
static hf_err r_hh_get(struct call *c, json_t **out)
{
	return registry_household_get(&c->rq, c->seg[1], out);
}
static hf_err r_hh_update(struct call *c, json_t **out)
{
	return registry_household_update(&c->rq, c->seg[1], c->body, out);
}
static hf_err r_hh_member(struct call *c, json_t **out)
{
	return registry_household_add_member(&c->rq, c->seg[1], c->body, out);
}
static hf_err r_hh_history(struct call *c, json_t **out)
{
	return registry_history(&c->rq, "household", c->seg[1], out);
}
static hf_err r_ind_search(struct call *c, json_t **out)
{
	struct reg_query q;
	hf_err err = read_query(c, &q);
	return err ? err : registry_individual_search(&c->rq, &q, out);
}
static hf_err r_ind_get(struct call *c, json_t **out)
{
	return registry_individual_get(&c->rq, c->seg[1], out);
}
static hf_err r_ind_update(struct call *c, json_t **out)
{
	return registry_individual_update(&c->rq, c->seg[1], c->body, out);
}
static hf_err r_ind_history(struct call *c, json_t **out)
{
	return registry_history(&c->rq, "individual", c->seg[1], out);
}
static hf_err r_enr_create(struct call *c, json_t **out)
{
	return registry_enrolment_create(&c->rq, c->body, out);
}
static hf_err r_enr_search(struct call *c, json_t **out)
{
	struct reg_query q;
	hf_err err = read_query(c, &q);
	return err ? err : registry_enrolment_search(&c->rq, &q, out);
}
static hf_err r_enr_update(struct call *c, json_t **out)
{
	return registry_enrolment_update(&c->rq, c->seg[1], c->body, out);
}
static hf_err r_enr_history(struct call *c, json_t **out)
{
	return registry_history(&c->rq, "enrolment", c->seg[1], out);
}
static hf_err r_quality(struct call *c, json_t **out)
{
	int64_t days = g_app.stale_days;
	const char *d = arg(c, "stale_days");
	if (d && hf_parse_i64(d, 1, 3650, &days)) {
		hf_ferrs_add(&c->fe, "stale_days", "out_of_range", "must be 1 to 3650");
		return HF_EINVAL;
	}
	return quality_report(c->rq.db, (int)days, out);
}

static hf_err r_login(struct call *c, json_t **out)
{
	return auth_login(c->rq.db, c->p.source, c->req->request_id, c->body, &c->fe, c->rq.msg, sizeof(c->rq.msg),
			  &c->retry_after_s, out);
}
static hf_err r_logout(struct call *c, json_t **out)
{
	return auth_logout(c->rq.db, &c->p, false, out);
}
static hf_err r_logout_all(struct call *c, json_t **out)
{
	return auth_logout(c->rq.db, &c->p, true, out);
}
static hf_err r_me(struct call *c, json_t **out)
{
	return auth_me(c->rq.db, &c->p, out);
}
static hf_err r_password(struct call *c, json_t **out)
{
	return auth_password_change(c->rq.db, &c->p, c->body, &c->fe, c->rq.msg, sizeof(c->rq.msg), out);
}
static hf_err r_mfa_enrol(struct call *c, json_t **out)
{
	return auth_mfa_enrol(c->rq.db, &c->p, c->rq.msg, sizeof(c->rq.msg), out);
}
static hf_err r_mfa_confirm(struct call *c, json_t **out)
{
	return auth_mfa_confirm(c->rq.db, &c->p, c->body, &c->fe, c->rq.msg, sizeof(c->rq.msg), out);
}
static hf_err r_user_list(struct call *c, json_t **out)
{
	return auth_user_list(c->rq.db, out);
}
static hf_err r_user_create(struct call *c, json_t **out)
{
	return auth_user_create(c->rq.db, &c->p.audit, c->body, false, &c->fe, c->rq.msg, sizeof(c->rq.msg), out);
}
static hf_err r_user_update(struct call *c, json_t **out)
{
	return auth_user_update(c->rq.db, &c->p.audit, c->seg[1], c->body, &c->fe, c->rq.msg, sizeof(c->rq.msg), out);
}
static hf_err r_user_reset_mfa(struct call *c, json_t **out)
{
	return auth_user_reset_mfa(c->rq.db, &c->p.audit, c->seg[1], c->rq.msg, sizeof(c->rq.msg), out);
}
static hf_err r_kiosk_list(struct call *c, json_t **out)
{
	return kiosk_list(c->rq.db, out);
}
static hf_err r_kiosk_register(struct call *c, json_t **out)
{
	return kiosk_register(c->rq.db, &c->p.audit, c->body, &c->fe, c->rq.msg, sizeof(c->rq.msg), out);
}
static hf_err r_kiosk_enrol(struct call *c, json_t **out)
{
	bool first = false;
	if (auth_throttle_address(c->p.source, &c->retry_after_s, &first)) {
		if (first)
			audit_denied(c, HF_ERATELIMIT, "rate_limited_address");
		snprintf(c->rq.msg, sizeof(c->rq.msg), "Too many enrolment attempts; try again in %d seconds.", c->retry_after_s);
		return HF_ERATELIMIT;
	}
	return kiosk_enrol(c->rq.db, &c->p.audit, c->body, &c->fe, c->rq.msg, sizeof(c->rq.msg), out);
}
static hf_err r_kiosk_revoke(struct call *c, json_t **out)
{
	return kiosk_revoke(c->rq.db, &c->p.audit, c->seg[1], c->body, &c->fe, c->rq.msg, sizeof(c->rq.msg), out);
}
static hf_err r_audit(struct call *c, json_t **out)
{
	struct audit_query q = {.actor = arg(c, "actor"), .entity = arg(c, "entity"), .record = arg(c, "record"),
				.action = arg(c, "action"), .from = arg(c, "from"), .to = arg(c, "to"),
				.after = arg(c, "after"), .limit = 50};
	const char *lim = arg(c, "limit");
	int64_t l = 0;
	if (lim) {
		if (hf_parse_i64(lim, 1, g_app.max_page, &l))
			hf_ferrs_add(&c->fe, "limit", "out_of_range", "must be 1 to %d", g_app.max_page);
		q.limit = (int)l;
	}
	if (hf_ferrs_any(&c->fe))
		return HF_EINVAL;
	return audit_search(c->rq.db, &q, &c->fe, out);
}

static struct svc_call svc_call_of(struct call *c)
{
	return (struct svc_call){c->rq.db, &c->p, &c->fe, c->rq.msg, sizeof(c->rq.msg), 0};
}
static hf_err svc_done(struct call *c, struct svc_call *cc, hf_err err)
{
	if (!err && cc->status)
		c->status_override = cc->status;
	return err;
}
static hf_err r_case_create(struct call *c, json_t **out)
{
	struct svc_call cc = svc_call_of(c);
	return svc_done(c, &cc, cases_create(&cc, c->body, out));
}
static hf_err r_case_get(struct call *c, json_t **out)
{
	struct svc_call cc = svc_call_of(c);
	return cases_get(&cc, c->seg[1], NULL, out);
}
static hf_err r_case_owner_get(struct call *c, json_t **out)
{
	struct svc_call cc = svc_call_of(c);
	return cases_get(&cc, c->seg[3], c->seg[1], out);
}
static hf_err r_case_move(struct call *c, json_t **out)
{
	struct svc_call cc = svc_call_of(c);
	return svc_done(c, &cc, cases_transition(&cc, c->seg[1], c->body, out));
}
static hf_err r_case_approve(struct call *c, json_t **out)
{
	struct svc_call cc = svc_call_of(c);
	return cases_approve(&cc, c->seg[1], c->body, out);
}
static hf_err r_case_note(struct call *c, json_t **out)
{
	struct svc_call cc = svc_call_of(c);
	return cases_note(&cc, c->seg[1], c->body, out);
}
static hf_err r_case_attach(struct call *c, json_t **out)
{
	struct svc_call cc = svc_call_of(c);
	return cases_attach(&cc, c->seg[1], c->body, out);
}
static hf_err r_case_attachment(struct call *c, json_t **out)
{
	struct svc_call cc = svc_call_of(c);
	return cases_attachment_get(&cc, c->seg[1], c->seg[3], out);
}
static hf_err r_case_list(struct call *c, json_t **out)
{
	struct cases_query q = {.queue = arg(c, "queue"), .type = arg(c, "type"), .state = arg(c, "state"),
				.sla = arg(c, "sla"), .location = arg(c, "location"), .after = arg(c, "after"),
				.limit = 20};
	static const char *const names[] = {"queue", "type", "state", "sla", "location", "after"};
	const char *vals[] = {q.queue, q.type, q.state, q.sla, q.location, q.after};
	for (size_t i = 0; i < HF_ARRAY_LEN(names); i++)
		if (vals[i] && (strlen(vals[i]) > 320 || !hf_utf8_valid_text(vals[i], strlen(vals[i]))))
			hf_ferrs_add(&c->fe, names[i], "bad_value", "too long or not text");
	int64_t l = 0;
	const char *lim = arg(c, "limit"), *age = arg(c, "older_than_days");
	if (lim && hf_parse_i64(lim, 1, g_app.max_page, &l))
		hf_ferrs_add(&c->fe, "limit", "out_of_range", "must be 1 to %d", g_app.max_page);
	else if (lim)
		q.limit = (int)l;
	if (age && hf_parse_i64(age, 1, 3650, &l))
		hf_ferrs_add(&c->fe, "older_than_days", "out_of_range", "must be 1 to 3650");
	else if (age)
		q.older_than_days = (int)l;
	if (hf_ferrs_any(&c->fe))
		return HF_EINVAL;
	struct svc_call cc = svc_call_of(c);
	return cases_list(&cc, &q, out);
}

static hf_err r_case_dashboard(struct call *c, json_t **out)
{
	const char *type = arg(c, "type"), *loc = arg(c, "location");
	if (loc && (strlen(loc) > 320 || !hf_utf8_valid_text(loc, strlen(loc))))
		hf_ferrs_add(&c->fe, "location", "bad_value", "too long or not text");
	if (type && strlen(type) > 32)
		hf_ferrs_add(&c->fe, "type", "bad_value", "too long");
	if (hf_ferrs_any(&c->fe))
		return HF_EINVAL;
	struct svc_call cc = svc_call_of(c);
	return cases_dashboard(&cc, type, loc, out);
}

/* ---- payments ---- */
static int limit_arg(struct call *c, int dflt)
{
	int64_t l = dflt;
	const char *lim = arg(c, "limit");
	if (lim && hf_parse_i64(lim, 1, g_app.max_page, &l)) {
		hf_ferrs_add(&c->fe, "limit", "out_of_range", "must be 1 to %d", g_app.max_page);
		return 0;
	}
	return (int)l;
}
/* Query arguments that are plain text of a bounded length. */
static bool args_ok(struct call *c, const char *const *names, size_t n, size_t max)
{
	for (size_t i = 0; i < n; i++) {
		const char *v = arg(c, names[i]);
		if (v && (strlen(v) > max || !hf_utf8_valid_text(v, strlen(v))))
			hf_ferrs_add(&c->fe, names[i], "bad_value", "too long or not text");
	}
	return !hf_ferrs_any(&c->fe);
}
#define SVC(c) (&(struct svc_call){(c)->rq.db, &(c)->p, &(c)->fe, (c)->rq.msg, sizeof((c)->rq.msg), 0})
static hf_err r_cycle_create(struct call *c, json_t **out) { return cycles_create(SVC(c), c->body, out); }
static hf_err r_cycle_get(struct call *c, json_t **out) { return cycles_get(SVC(c), c->seg[1], out); }
static hf_err r_cycle_list(struct call *c, json_t **out)
{
	static const char *const names[] = {"programme", "status"};
	if (!args_ok(c, names, 2, 40))
		return HF_EINVAL;
	return cycles_list(SVC(c), arg(c, "programme"), arg(c, "status"), out);
}
static hf_err r_cycle_preview(struct call *c, json_t **out) { return cycles_preview(SVC(c), c->seg[1], out); }
static hf_err r_cycle_payroll(struct call *c, json_t **out) { return cycles_generate(SVC(c), c->seg[1], out); }
static hf_err r_cycle_submit(struct call *c, json_t **out) { return cycles_submit(SVC(c), c->seg[1], out); }
static hf_err r_cycle_approve(struct call *c, json_t **out) { return cycles_approve(SVC(c), c->seg[1], out); }
static hf_err r_cycle_close(struct call *c, json_t **out) { return cycles_close(SVC(c), c->seg[1], out); }
static hf_err r_cycle_payments(struct call *c, json_t **out)
{
	static const char *const names[] = {"status", "pay_point", "after"};
	int limit = limit_arg(c, 50);
	if (!args_ok(c, names, 3, 64) || !limit)
		return HF_EINVAL;
	return payments_list(SVC(c), c->seg[1], arg(c, "status"), arg(c, "pay_point"), limit, arg(c, "after"), out);
}
static hf_err r_payment_get(struct call *c, json_t **out) { return payments_get(SVC(c), c->seg[1], out); }
static hf_err r_ben_payments(struct call *c, json_t **out) { return payments_for_beneficiary(SVC(c), c->seg[1], out); }
static hf_err r_kiosk_payments(struct call *c, json_t **out)
{
	return payments_kiosk_available(SVC(c), c->seg[2], out);
}
static hf_err r_kiosk_collect(struct call *c, json_t **out)
{
	return payments_collect(SVC(c), c->body, out, &c->reason);
}
/* ---- kiosk keys, fingerprint templates, verification (core/biometric.h) ---- */
static hf_err r_kiosk_me(struct call *c, json_t **out) { return biometric_kiosk_me(SVC(c), out); }
static hf_err r_kiosk_collection_get(struct call *c, json_t **out)
{
	return payments_collection_get(SVC(c), c->seg[2], out);
}
static hf_err r_bio_enrol(struct call *c, json_t **out) { return biometric_enrol(SVC(c), c->body, out); }
static hf_err r_bio_templates(struct call *c, json_t **out) { return biometric_templates_get(SVC(c), c->seg[2], out); }
static hf_err r_bio_verify(struct call *c, json_t **out)
{
	struct svc_call sc = svc_call_of(c);
	return svc_done(c, &sc, biometric_verify(&sc, c->body, out, &c->reason));
}
static hf_err r_bio_override(struct call *c, json_t **out)
{
	return biometric_override(SVC(c), c->body, out, &c->reason);
}
/* ---- kiosks in operation: health and lock, self-service, offline (core/kiosk_ops.h) ---- */
static hf_err r_kiosk_update(struct call *c, json_t **out)
{
	return kiosk_update(c->rq.db, &c->p.audit, c->seg[1], c->body, &c->fe, c->rq.msg, sizeof(c->rq.msg), out);
}
static hf_err r_kiosk_unlock(struct call *c, json_t **out)
{
	return kiosk_unlock(c->rq.db, &c->p.audit, c->seg[1], c->body, &c->fe, c->rq.msg, sizeof(c->rq.msg), out);
}
static hf_err r_kiosk_heartbeat(struct call *c, json_t **out) { return kiosk_ops_heartbeat(SVC(c), c->body, out); }
static hf_err r_kiosk_event(struct call *c, json_t **out) { return kiosk_ops_event(SVC(c), c->body, out); }
static hf_err r_kiosk_status(struct call *c, json_t **out) { return kiosk_ops_status(SVC(c), c->seg[2], out); }
static hf_err r_kiosk_grievance(struct call *c, json_t **out)
{
	struct svc_call sc = svc_call_of(c);
	return svc_done(c, &sc, kiosk_ops_grievance(&sc, c->body, out));
}
static hf_err r_kiosk_allowance(struct call *c, json_t **out) { return kiosk_ops_allowance(SVC(c), out); }
static hf_err r_kiosk_offline(struct call *c, json_t **out)
{
	if (c->req->body.len > KIOSK_OPS_OFFLINE_MAX_BODY) {
		snprintf(c->rq.msg, sizeof(c->rq.msg), "At most %d bytes of offline events per request; send fewer.",
			 KIOSK_OPS_OFFLINE_MAX_BODY);
		return HF_ETOOBIG;
	}
	return kiosk_ops_offline_events(SVC(c), c->body, out);
}
static hf_err r_funding(struct call *c, json_t **out)
{
	struct svc_call sc = svc_call_of(c);
	return svc_done(c, &sc, payments_fund(&sc, c->body, out));
}
static hf_err r_ledger_accounts(struct call *c, json_t **out) { return ledger_accounts(c->rq.db, out); }
static hf_err r_ledger_check(struct call *c, json_t **out)
{
	bool ok = false;
	json_t *report = NULL;
	hf_err err = ledger_check(c->rq.db, &ok, &report);
	if (!err)
		*out = report;
	return err;
}
static hf_err r_cb_b2c(struct call *c, json_t **out)
{
	return disburse_callback_b2c(SVC(c), c->req->body, hf_http_header(c->req, "X-Hifadhi-Signature"), out);
}
static hf_err r_cb_b2c_timeout(struct call *c, json_t **out)
{
	return disburse_timeout_b2c(SVC(c), c->req->body, hf_http_header(c->req, "X-Hifadhi-Signature"), out);
}
static hf_err r_cb_g2p(struct call *c, json_t **out)
{
	return disburse_callback_g2p(SVC(c), c->req->body, hf_http_header(c->req, "Signature"), out);
}
static hf_err r_alert_list(struct call *c, json_t **out)
{
	static const char *const names[] = {"status", "rule", "cycle", "after"};
	int limit = limit_arg(c, 50);
	if (!args_ok(c, names, 4, 64) || !limit)
		return HF_EINVAL;
	return alerts_list(SVC(c), arg(c, "status"), arg(c, "rule"), arg(c, "cycle"), limit, arg(c, "after"), out);
}
static hf_err r_alert_ack(struct call *c, json_t **out) { return alerts_acknowledge(SVC(c), c->seg[1], c->body, out); }
static hf_err r_alert_resolve(struct call *c, json_t **out) { return alerts_resolve(SVC(c), c->seg[1], c->body, out); }
static hf_err r_recon_run(struct call *c, json_t **out) { return recon_run_api(SVC(c), c->seg[1], c->req->body, out); }
static hf_err r_recon_list(struct call *c, json_t **out) { return recon_list(SVC(c), c->seg[1], out); }
static hf_err r_recon_get(struct call *c, json_t **out)
{
	static const char *const names[] = {"kind", "after"};
	int limit = limit_arg(c, 100);
	if (!args_ok(c, names, 2, 32) || !limit)
		return HF_EINVAL;
	return recon_get(SVC(c), c->seg[1], arg(c, "kind"), limit, arg(c, "after"), out);
}
static hf_err r_notice_preview(struct call *c, json_t **out) { return notices_preview(SVC(c), c->seg[1], c->body, out); }
static hf_err r_notice_send(struct call *c, json_t **out) { return notices_send(SVC(c), c->seg[1], c->body, out); }
static hf_err r_notice_list(struct call *c, json_t **out) { return notices_list(SVC(c), c->seg[1], out); }
static hf_err r_outbox_claim(struct call *c, json_t **out)
{
	/* The gateway drains in larger steps than a person pages: up to 500 messages a call. */
	int64_t limit = 50;
	const char *lim = arg(c, "limit");
	if (lim && hf_parse_i64(lim, 1, 500, &limit)) {
		hf_ferrs_add(&c->fe, "limit", "out_of_range", "must be 1 to 500");
		return HF_EINVAL;
	}
	const char *urgent = arg(c, "urgent");
	if (urgent && strcmp(urgent, "0") != 0 && strcmp(urgent, "1") != 0) {
		hf_ferrs_add(&c->fe, "urgent", "bad_value", "0 or 1");
		return HF_EINVAL;
	}
	return notices_outbox_claim(SVC(c), (int)limit, urgent && urgent[0] == '1', out);
}
static hf_err r_outbox_status(struct call *c, json_t **out)
{
	return outbox_report_one(SVC(c), c->seg[1], c->body, out);
}
static hf_err r_outbox_status_batch(struct call *c, json_t **out) { return outbox_report_batch(SVC(c), c->body, out); }

/* ---- the channels' view of a phone (the gateway) ---- */
static hf_err r_sub_get(struct call *c, json_t **out) { return subscriber_get(SVC(c), c->seg[1], out); }
static hf_err r_sub_pin(struct call *c, json_t **out) { return subscriber_pin_set(SVC(c), c->seg[1], c->body, out); }
static hf_err r_sub_pin_verify(struct call *c, json_t **out)
{
	return subscriber_pin_verify(SVC(c), c->seg[1], c->body, out);
}
static hf_err r_sub_pin_change(struct call *c, json_t **out)
{
	return subscriber_pin_change(SVC(c), c->seg[1], c->body, out);
}
static hf_err r_sub_pin_code(struct call *c, json_t **out) { return subscriber_pin_reset_code(SVC(c), c->seg[1], out); }
static hf_err r_sub_pin_reset(struct call *c, json_t **out)
{
	return subscriber_pin_reset(SVC(c), c->seg[1], c->body, out);
}
static hf_err r_sub_lang(struct call *c, json_t **out) { return subscriber_language(SVC(c), c->seg[1], c->body, out); }
static hf_err r_sub_optout(struct call *c, json_t **out) { return subscriber_opt(SVC(c), c->seg[1], true, c->body, out); }
static hf_err r_sub_optin(struct call *c, json_t **out) { return subscriber_opt(SVC(c), c->seg[1], false, c->body, out); }
static hf_err r_pin_unlock(struct call *c, json_t **out) { return subscriber_pin_unlock(SVC(c), c->seg[1], out); }

/* ---- the role matrix: who may call what. docs/roles.md is this table in words; tests/integration/
 * test_roles.py calls every route as every role and as nobody and checks it against docs/roles.md. ---- */
#define A_ADM (1u << ROLE_ADMIN)
#define A_REG (1u << ROLE_REGISTRAR)
#define A_CW (1u << ROLE_CASE_WORKER)
#define A_PAY (1u << ROLE_PAYMENT_OFFICER)
#define A_AUD (1u << ROLE_AUDITOR)
#define A_SUP (1u << ROLE_SUPPORT)
#define A_GW (1u << 6)     /* the gateway's service credential */
#define A_KIOSK (1u << 7)  /* a signed kiosk request */
#define A_PUBLIC (1u << 8) /* no credential needed */
#define A_ENROL (1u << 9)  /* also for a password-only session that must enrol TOTP */
#define A_STAFF (A_ADM | A_REG | A_CW | A_PAY | A_AUD | A_SUP)
#define A_READERS (A_REG | A_CW | A_PAY | A_AUD | A_SUP) /* staff who read beneficiaries' records */

/* pii: a staff read of personal data, audited (one entry per request, naming the records shown). */
static const struct route routes[] = {
	{"POST", "auth/login", r_login, 200, A_PUBLIC, "auth.login", "staff_user", false, false},
	{"POST", "auth/logout", r_logout, 200, A_STAFF | A_ENROL, "auth.logout", "staff_user", false, false},
	{"POST", "auth/logout-all", r_logout_all, 200, A_STAFF | A_ENROL, "auth.logout_all", "staff_user", false, false},
	{"GET", "auth/me", r_me, 200, A_STAFF | A_ENROL, "auth.me", "staff_user", false, false},
	{"POST", "auth/password", r_password, 200, A_STAFF, "auth.password_change", "staff_user", false, false},
	{"POST", "auth/mfa/enrol", r_mfa_enrol, 200, A_STAFF | A_ENROL, "auth.mfa_enrol", "staff_user", false, false},
	{"POST", "auth/mfa/confirm", r_mfa_confirm, 200, A_STAFF | A_ENROL, "auth.mfa_confirm", "staff_user", false, false},
	{"GET", "users", r_user_list, 200, A_ADM, "staff_user.list", "staff_user", false, false},
	{"POST", "users", r_user_create, 201, A_ADM, "staff_user.create", "staff_user", false, false},
	{"PATCH", "users/*", r_user_update, 200, A_ADM, "staff_user.update", "staff_user", false, false},
	{"POST", "users/*/reset-mfa", r_user_reset_mfa, 200, A_ADM, "staff_user.reset_mfa", "staff_user", false, false},
	{"GET", "kiosks", r_kiosk_list, 200, A_ADM | A_PAY | A_AUD, "kiosk.list", "kiosk", false, false},
	{"POST", "kiosks", r_kiosk_register, 201, A_ADM | A_PAY, "kiosk.register", "kiosk", false, false},
	{"POST", "kiosks/enrol", r_kiosk_enrol, 200, A_PUBLIC, "kiosk.enrol", "kiosk", false, false},
	{"POST", "kiosks/*/revoke", r_kiosk_revoke, 200, A_ADM | A_PAY, "kiosk.revoke", "kiosk", false, false},
	{"GET", "kiosk/me", r_kiosk_me, 200, A_KIOSK, "kiosk.me", "kiosk", false, false},
	{"PATCH", "kiosks/*", r_kiosk_update, 200, A_ADM | A_PAY, "kiosk.update", "kiosk", false, false},
	{"POST", "kiosks/*/unlock", r_kiosk_unlock, 200, A_ADM | A_PAY, "kiosk.unlock", "kiosk", false, false},
	{"POST", "kiosk/heartbeat", r_kiosk_heartbeat, 200, A_KIOSK, "kiosk.heartbeat", "kiosk", false, false},
	{"POST", "kiosk/events", r_kiosk_event, 201, A_KIOSK, "kiosk.event", "kiosk", false, false},
	{"GET", "kiosk/beneficiaries/*/status", r_kiosk_status, 200, A_KIOSK, "kiosk.status", "individual", false, false},
	{"POST", "kiosk/grievances", r_kiosk_grievance, 201, A_KIOSK, "case.create", "case", false, false},
	{"GET", "kiosk/allowance", r_kiosk_allowance, 200, A_KIOSK, "kiosk.allowance", "kiosk", false, false},
	{"POST", "kiosk/offline-events", r_kiosk_offline, 200, A_KIOSK, "kiosk.offline_events", "kiosk", false, false},
	{"GET", "audit", r_audit, 200, A_AUD, "audit.search", "audit", false, false},
	{"GET", "programmes", r_prog_list, 200, A_STAFF | A_GW | A_KIOSK, "programme.list", "programme", false, false},
	{"POST", "programmes", r_prog_create, 201, A_ADM, "programme.create", "programme", false, false},
	{"GET", "programmes/*", r_prog_get, 200, A_STAFF | A_GW | A_KIOSK, "programme.read", "programme", false, false},
	{"PATCH", "programmes/*", r_prog_update, 200, A_ADM, "programme.update", "programme", false, false},
	{"GET", "programmes/*/history", r_prog_history, 200, A_ADM | A_AUD, "programme.history", "programme", false, false},
	{"GET", "households", r_hh_search, 200, A_READERS, "household.search", "household", true, false},
	{"POST", "households", r_hh_create, 201, A_REG, "household.create", "household", false, false},
	{"GET", "households/*", r_hh_get, 200, A_READERS, "household.read", "household", true, false},
	{"PATCH", "households/*", r_hh_update, 200, A_REG, "household.update", "household", false, false},
	{"POST", "households/*/members", r_hh_member, 201, A_REG, "household.add_member", "household", false, false},
	{"GET", "households/*/history", r_hh_history, 200, A_REG | A_AUD, "household.history", "household", true, false},
	{"GET", "individuals", r_ind_search, 200, A_READERS | A_GW, "individual.search", "individual", true, false},
	{"GET", "individuals/*", r_ind_get, 200, A_READERS | A_GW | A_KIOSK, "individual.read", "individual", true, false},
	{"PATCH", "individuals/*", r_ind_update, 200, A_REG | A_CW, "individual.update", "individual", false, false},
	{"GET", "individuals/*/history", r_ind_history, 200, A_REG | A_AUD, "individual.history", "individual", true, false},
	{"GET", "enrolments", r_enr_search, 200, A_READERS, "enrolment.search", "enrolment", true, false},
	{"POST", "enrolments", r_enr_create, 201, A_REG, "enrolment.create", "enrolment", false, false},
	{"PATCH", "enrolments/*", r_enr_update, 200, A_REG | A_CW, "enrolment.update", "enrolment", false, false},
	{"GET", "enrolments/*/history", r_enr_history, 200, A_REG | A_CW | A_AUD, "enrolment.history", "enrolment", false, false},
	{"GET", "quality", r_quality, 200, A_REG | A_AUD, "registry.quality", "registry", true, false},
	{"GET", "cases", r_case_list, 200, A_READERS, "case.list", "case", true, false},
	{"POST", "cases", r_case_create, 201, A_READERS | A_GW | A_KIOSK, "case.create", "case", false, false},
	{"GET", "cases/dashboard", r_case_dashboard, 200, A_READERS | A_ADM, "case.dashboard", "case", false, false},
	{"GET", "cases/*", r_case_get, 200, A_READERS, "case.read", "case", true, false},
	{"POST", "cases/*/transitions", r_case_move, 200, A_READERS, "case.transition", "case", false, false},
	{"POST", "cases/*/approval", r_case_approve, 200, A_READERS, "case.approve", "case", false, false},
	{"POST", "cases/*/notes", r_case_note, 201, A_READERS, "case.note", "case", false, false},
	{"POST", "cases/*/attachments", r_case_attach, 201, A_READERS, "case.attach", "case", false, false},
	{"GET", "cases/*/attachments/*", r_case_attachment, 200, A_READERS, "case.attachment_read", "case", true, false},
	{"GET", "beneficiaries/*/cases/*", r_case_owner_get, 200, A_GW | A_KIOSK, "case.status", "case", false, false},
	{"POST", "cycles", r_cycle_create, 201, A_PAY, "cycle.create", "cycle", false, false},
	{"GET", "cycles", r_cycle_list, 200, A_PAY | A_AUD, "cycle.list", "cycle", false, false},
	{"GET", "cycles/*", r_cycle_get, 200, A_PAY | A_AUD, "cycle.read", "cycle", false, false},
	{"POST", "cycles/*/preview", r_cycle_preview, 200, A_PAY, "cycle.preview", "cycle", false, false},
	{"POST", "cycles/*/payroll", r_cycle_payroll, 200, A_PAY, "cycle.generate", "cycle", false, false},
	{"POST", "cycles/*/submit", r_cycle_submit, 200, A_PAY, "cycle.submit", "cycle", false, false},
	{"POST", "cycles/*/approve", r_cycle_approve, 200, A_PAY, "cycle.approve", "cycle", false, false},
	{"POST", "cycles/*/close", r_cycle_close, 200, A_PAY, "cycle.close", "cycle", false, false},
	{"GET", "cycles/*/payments", r_cycle_payments, 200, A_PAY | A_AUD, "payment.list", "payment", true, false},
	{"POST", "cycles/*/reconciliations", r_recon_run, 201, A_PAY, "recon.run", "cycle", false, true},
	{"GET", "cycles/*/reconciliations", r_recon_list, 200, A_PAY | A_AUD, "recon.list", "cycle", false, false},
	{"POST", "cycles/*/notices/preview", r_notice_preview, 200, A_PAY, "notice.preview", "cycle", false, false},
	{"POST", "cycles/*/notices", r_notice_send, 201, A_PAY, "notice.send", "cycle", false, false},
	{"GET", "cycles/*/notices", r_notice_list, 200, A_PAY | A_AUD, "notice.list", "cycle", false, false},
	{"GET", "reconciliations/*", r_recon_get, 200, A_PAY | A_AUD, "recon.read", "recon", false, false},
	{"GET", "payments/*", r_payment_get, 200, A_PAY | A_AUD | A_SUP, "payment.read", "payment", true, false},
	{"POST", "ledger/funding", r_funding, 201, A_PAY, "ledger.funding", "ledger", false, false},
	{"GET", "ledger/accounts", r_ledger_accounts, 200, A_PAY | A_AUD, "ledger.accounts", "ledger", false, false},
	{"GET", "ledger/check", r_ledger_check, 200, A_PAY | A_AUD, "ledger.check", "ledger", false, false},
	{"GET", "alerts", r_alert_list, 200, A_PAY | A_AUD, "payment_alert.list", "payment_alert", false, false},
	{"POST", "alerts/*/acknowledge", r_alert_ack, 200, A_PAY, "payment_alert.acknowledge", "payment_alert", false, false},
	{"POST", "alerts/*/resolve", r_alert_resolve, 200, A_PAY, "payment_alert.resolve", "payment_alert", false, false},
	{"POST", "providers/b2c/result", r_cb_b2c, 200, A_PUBLIC, "provider.callback", "payment", false, true},
	{"POST", "providers/b2c/timeout", r_cb_b2c_timeout, 200, A_PUBLIC, "provider.callback", "payment", false, true},
	{"POST", "providers/g2p/on-disburse", r_cb_g2p, 200, A_PUBLIC, "provider.callback", "payment", false, true},
	{"GET", "beneficiaries/*/payments", r_ben_payments, 200, A_GW | A_KIOSK, "payment.status", "payment", false, false},
	{"GET", "kiosk/beneficiaries/*/payments", r_kiosk_payments, 200, A_KIOSK, "payment.kiosk_list", "payment", false, false},
	{"POST", "kiosk/collections", r_kiosk_collect, 201, A_KIOSK, "payment.collect", "payment", false, false},
	{"GET", "kiosk/collections/*", r_kiosk_collection_get, 200, A_KIOSK, "payment.collect_status", "payment", false, false},
	{"POST", "kiosk/templates", r_bio_enrol, 201, A_KIOSK, "biometric.enrol", "individual", false, false},
	{"GET", "kiosk/beneficiaries/*/templates", r_bio_templates, 200, A_KIOSK, "biometric.read", "individual", false, false},
	{"POST", "kiosk/verifications", r_bio_verify, 200, A_KIOSK, "kiosk.verify", "individual", false, false},
	{"POST", "kiosk/overrides", r_bio_override, 201, A_KIOSK, "kiosk.override", "individual", false, false},
	{"GET", "subscribers/*", r_sub_get, 200, A_GW, "subscriber.read", "phone", false, false},
	{"POST", "subscribers/*/pin", r_sub_pin, 201, A_GW, "subscriber.pin_set", "phone", false, false},
	{"POST", "subscribers/*/pin/verify", r_sub_pin_verify, 200, A_GW, "subscriber.pin_verify", "phone", false, false},
	{"POST", "subscribers/*/pin/change", r_sub_pin_change, 200, A_GW, "subscriber.pin_change", "phone", false, false},
	{"POST", "subscribers/*/pin/reset-code", r_sub_pin_code, 200, A_GW, "subscriber.pin_reset_code", "phone", false, false},
	{"POST", "subscribers/*/pin/reset", r_sub_pin_reset, 200, A_GW, "subscriber.pin_reset", "phone", false, false},
	{"POST", "subscribers/*/language", r_sub_lang, 200, A_GW, "subscriber.language", "phone", false, false},
	{"POST", "subscribers/*/opt-out", r_sub_optout, 200, A_GW, "subscriber.opt_out", "phone", false, false},
	{"POST", "subscribers/*/opt-in", r_sub_optin, 200, A_GW, "subscriber.opt_in", "phone", false, false},
	{"POST", "individuals/*/pin/unlock", r_pin_unlock, 200, A_REG | A_CW | A_SUP, "subscriber.pin_unlock", "individual", false, false},
	{"POST", "outbox/claim", r_outbox_claim, 200, A_GW, "outbox.claim", "outbox", false, false},
	{"POST", "outbox/*/status", r_outbox_status, 200, A_GW, "outbox.status", "outbox", false, false},
	{"POST", "outbox/status", r_outbox_status_batch, 200, A_GW, "outbox.status", "outbox", false, false},
};

/* Splits "/api/v1/a/b" into segments after the prefix; false when a segment is empty or too long. */
static bool split(const char *path, char buf[MAX_SEGS][SEG_MAX], const char **seg, size_t *nseg)
{
	*nseg = 0;
	const char *p = path;
	while (*p) {
		if (*p != '/')
			return false;
		p++;
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (n == 0 || n >= SEG_MAX || *nseg == MAX_SEGS)
			return false;
		memcpy(buf[*nseg], p, n);
		buf[*nseg][n] = '\0';
		seg[*nseg] = buf[*nseg];
		(*nseg)++;
		p += n;
	}
	return true;
}

static bool pattern_match(const char *pattern, const char *const *seg, size_t nseg)
{
	size_t i = 0;
	const char *p = pattern;
	while (*p) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (i >= nseg)
			return false;
		if (!(n == 1 && p[0] == '*') && (strlen(seg[i]) != n || memcmp(seg[i], p, n) != 0))
			return false;
		i++;
		p += n + (e ? 1 : 0);
	}
	return i == nseg;
}

static void send_json(struct hf_http_resp *resp, int status, json_t *v)
{
	resp->status = status;
	if (hf_json_dump(v, &resp->body)) {
		resp->status = 500;
		hf_buf_reset(&resp->body);
		HF_ASSERT(hf_buf_append_str(&resp->body, "{\"error\":{\"code\":\"too_big\",\"message\":\"response too large\"}}") == HF_OK);
	}
}

/* ---- who is calling ---- */

static bool addr_ok(const char *s, size_t n)
{
	if (n < 2 || n > 45)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!strchr("0123456789abcdefABCDEF.:", s[i]))
			return false;
	return true;
}

/* The client's address: the peer, or the last X-Forwarded-For hop when the peer is the trusted proxy. */
static void client_address(struct call *c)
{
	const char *src = c->req->remote_addr ? c->req->remote_addr : "unknown";
	hf_strlcpy(c->p.source, src, sizeof(c->p.source));
	const char *tp = g_app.trusted_proxy;
	const char *xff = hf_http_header(c->req, "X-Forwarded-For");
	if (!tp[0] || !xff || strcmp(src, tp) != 0)
		return;
	const char *last = strrchr(xff, ',');
	last = last ? last + 1 : xff;
	while (*last == ' ')
		last++;
	size_t n = strlen(last);
	while (n && last[n - 1] == ' ')
		n--;
	if (addr_ok(last, n) && n < sizeof(c->p.source)) {
		memcpy(c->p.source, last, n);
		c->p.source[n] = '\0';
	}
}

/* A refused request, audited in its own transaction; a failure to audit is logged, the refusal stands. */
static void audit_denied(struct call *c, hf_err err, const char *why)
{
	if (c->p.kind == PRINCIPAL_NONE) {
		hf_strlcpy(c->p.name, "-", sizeof(c->p.name));
		auth_principal_finish(&c->p, "anonymous");
		bool first_over = false;
		if (!auth_refusal_audit_budget(c->p.source, &first_over)) {
			if (!first_over)
				return;
			why = "flood: further refusals from this address are not recorded one by one for a while";
		}
	}
	json_t *d = json_pack("{s:s, s:s, s:i}", "reason", why, "route", c->route->pattern, "status",
			      hf_err_http_status(err));
	struct audit_event ev = {c->route->action, c->route->entity, c->nseg >= 2 ? c->seg[1] : "", "denied",
				 NULL, NULL, d};
	hf_err e = audit_record(c->rq.db, &c->p.audit, &ev);
	if (e)
		hf_log(HF_LOG_ERROR, "core.api", "msg=\"cannot audit a refused request\" route=%s err=%s",
		       c->route->pattern, hf_err_name(e));
	json_decref(d);
}

static hf_err authenticate(struct call *c)
{
	const struct hf_http_req *req = c->req;
	struct principal *p = &c->p;
	const char *authz = hf_http_header(req, "Authorization");
	const char *svc = hf_http_header(req, "X-Hifadhi-Service-Key");
	const char *kno = hf_http_header(req, "X-Hifadhi-Kiosk");
	unsigned allow = c->route->allow;
	const char *why = "no_credential";
	hf_err err = HF_OK;
	if (allow & A_PUBLIC) {
		/* Logging in or enrolling a terminal needs no credential; one sent along is not even looked at. */
		p->kind = PRINCIPAL_NONE;
		hf_strlcpy(p->name, "-", sizeof(p->name));
		hf_strlcpy(p->actor, "anonymous", sizeof(p->actor));
		auth_principal_finish(p, "anonymous");
		return HF_OK;
	}
	if (!!authz + !!svc + !!kno > 1) {
		err = HF_EAUTH;
		why = "several_credentials";
		snprintf(c->rq.msg, sizeof(c->rq.msg), "Send one credential: a session token, a service key or a kiosk signature.");
	} else if (kno) {
		why = "kiosk_signature";
		struct kiosk_signed ks = {.method = req->method,
					  .path = req->path,
					  .kiosk_no = kno,
					  .timestamp = hf_http_header(req, "X-Hifadhi-Timestamp"),
					  .nonce = hf_http_header(req, "X-Hifadhi-Nonce"),
					  .signature = hf_http_header(req, "X-Hifadhi-Signature"),
					  .body = req->body.ptr,
					  .body_len = req->body.len,
					  .has_query = hf_http_has_query(req)};
		struct kiosk_identity ki;
		err = kiosk_authenticate(c->rq.db, &ks, hf_now_ms() / 1000, g_app.kiosk_window_s, &ki,
					 c->rq.msg, sizeof(c->rq.msg));
		if (!err) {
			p->kind = PRINCIPAL_KIOSK;
			p->kiosk_id = ki.id;
			hf_strlcpy(p->name, ki.kiosk_no, sizeof(p->name));
			hf_strlcpy(p->pay_point, ki.pay_point, sizeof(p->pay_point));
			snprintf(p->actor, sizeof(p->actor), "kiosk:%s", ki.kiosk_no);
			auth_principal_finish(p, "kiosk");
		}
	} else if (svc) {
		why = "service_key";
		err = auth_service(svc, p, c->rq.msg, sizeof(c->rq.msg));
		if (!err)
			auth_principal_finish(p, "service");
	} else if (authz) {
		why = "session";
		if (strncmp(authz, "Bearer ", 7) != 0) {
			err = HF_EAUTH;
			snprintf(c->rq.msg, sizeof(c->rq.msg), "Use Authorization: Bearer <token> (POST /api/v1/auth/login gives one).");
		} else {
			err = auth_session(c->rq.db, authz + 7, p, c->rq.msg, sizeof(c->rq.msg));
		}
		if (!err)
			auth_principal_finish(p, "staff");
	}
	if (err && err != HF_EAUTH && err != HF_EFORBIDDEN)
		return err; /* the database, not the caller */
	if (err) {
		p->kind = PRINCIPAL_NONE;
		audit_denied(c, err, why);
		return err;
	}
	if (p->kind == PRINCIPAL_NONE) {
		snprintf(c->rq.msg, sizeof(c->rq.msg),
			 "Log in first: POST /api/v1/auth/login, then send Authorization: Bearer <token>.");
		audit_denied(c, HF_EAUTH, why);
		return HF_EAUTH;
	}
	unsigned bit = p->kind == PRINCIPAL_STAFF ? 1u << p->role : p->kind == PRINCIPAL_SERVICE ? A_GW : A_KIOSK;
	if (!(allow & bit)) {
		snprintf(c->rq.msg, sizeof(c->rq.msg), "The %s %s may not do this (see docs/roles.md).",
			 p->kind == PRINCIPAL_STAFF ? "role" : "caller",
			 p->kind == PRINCIPAL_STAFF ? auth_role_names[p->role] : p->actor);
		audit_denied(c, HF_EFORBIDDEN, "role");
		return HF_EFORBIDDEN;
	}
	if (p->kind == PRINCIPAL_STAFF && p->enrol_only && !(allow & A_ENROL)) {
		snprintf(c->rq.msg, sizeof(c->rq.msg),
			 "Enrol an authenticator first: POST /api/v1/auth/mfa/enrol, then /api/v1/auth/mfa/confirm.");
		audit_denied(c, HF_EFORBIDDEN, "mfa_not_enrolled");
		return HF_EFORBIDDEN;
	}
	return HF_OK;
}

/* A staff read of personal data: one audit entry naming what was shown (numbers, never contents). */
static hf_err audit_read(struct call *c, const json_t *out)
{
	json_t *d = json_object();
	const char *record = c->nseg >= 2 ? c->seg[1] : "search";
	if (c->nseg < 2) {
		json_t *recs = json_array(), *filters = json_array();
		const json_t *items = json_object_get(out, "items");
		size_t i;
		const json_t *it;
		json_array_foreach(items, i, it) {
			const char *num = json_string_value(json_object_get(it, "ref"));
			if (!num)
				num = json_string_value(json_object_get(it, "ben_no"));
			if (!num)
				num = json_string_value(json_object_get(it, "hh_no"));
			if (num)
				json_array_append_new(recs, json_string(num));
		}
		static const char *const names[] = {"ben_no", "national_id", "phone", "name", "location", "programme",
						    "status", "after"};
		for (size_t k = 0; k < HF_ARRAY_LEN(names); k++)
			if (arg(c, names[k]))
				json_array_append_new(filters, json_string(names[k]));
		json_object_set_new(d, "count", json_integer((json_int_t)json_array_size(items)));
		json_object_set_new(d, "records", recs);
		json_object_set_new(d, "filters", filters);
	}
	struct audit_event ev = {c->route->action, c->route->entity, record, "ok", NULL, NULL, d};
	hf_err err = audit_record(c->rq.db, &c->p.audit, &ev);
	json_decref(d);
	return err;
}

static void handle_health(struct hf_http_resp *resp)
{
	bool up = db_alive();
	json_t *v = json_pack("{s:s, s:s}", "status", up ? "ok" : "degraded", "db", up ? "up" : "down");
	send_json(resp, up ? 200 : 503, v);
	if (!up)
		hf_http_resp_header(resp, "Retry-After", "5");
	json_decref(v);
}

/* Metrics text is bounded by this file's own lines; failing to fit is our bug. */
static void put(struct hf_buf *b, const char *fmt, ...) HF_PRINTF(2, 3);
static void put(struct hf_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	hf_err err = hf_buf_vappendf(b, fmt, ap);
	va_end(ap);
	HF_ASSERT(err == HF_OK);
}

static void handle_metrics(struct hf_http_resp *resp)
{
	struct hf_buf *b = &resp->body;
	resp->content_type = "text/plain; version=0.0.4";
	put(b, "# HELP hifadhi_http_requests_total HTTP requests answered, by status class.\n"
		       "# TYPE hifadhi_http_requests_total counter\n");
	for (int k = 1; k <= 5; k++)
		put(b, "hifadhi_http_requests_total{class=\"%dxx\"} %llu\n", k,
			    (unsigned long long)atomic_load(&m_requests[k]));
	put(b, "# HELP hifadhi_http_request_duration_seconds Time to answer API requests.\n"
		       "# TYPE hifadhi_http_request_duration_seconds histogram\n");
	uint64_t cum = 0;
	for (size_t k = 0; k < NLAT; k++) {
		cum += atomic_load(&m_lat[k]);
		put(b, "hifadhi_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n", lat_bounds[k],
			    (unsigned long long)cum);
	}
	cum += atomic_load(&m_lat[NLAT]);
	put(b, "hifadhi_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)cum);
	put(b, "hifadhi_http_request_duration_seconds_sum %.6f\n", (double)atomic_load(&m_lat_sum_us) / 1e6);
	put(b, "hifadhi_http_request_duration_seconds_count %llu\n", (unsigned long long)cum);
	put(b, "# HELP hifadhi_db_unavailable_total Requests answered 503 because the database was unavailable.\n"
		       "# TYPE hifadhi_db_unavailable_total counter\nhifadhi_db_unavailable_total %llu\n",
		    (unsigned long long)atomic_load(&m_db_unavailable));
	put(b, "# HELP hifadhi_http_requests_in_flight Requests being handled now.\n"
		       "# TYPE hifadhi_http_requests_in_flight gauge\nhifadhi_http_requests_in_flight %llu\n",
		    (unsigned long long)atomic_load(&m_inflight));
	put(b, "# HELP hifadhi_uptime_seconds Seconds since the service started.\n"
		       "# TYPE hifadhi_uptime_seconds gauge\nhifadhi_uptime_seconds %lld\n",
		    (long long)((hf_now_ms() - m_started_ms) / 1000));
}

/* GET /r/{receipt}?c={check}: the public check a kiosk receipt's QR code points at (payments.h). No
 * credential; the check code keeps receipts from being enumerated. */
static void handle_receipt(struct call *c)
{
	const struct hf_http_req *req = c->req;
	c->resp->log_route = "/r/{receipt}";
	if (strcmp(req->method, "GET") != 0) {
		hf_http_resp_header(c->resp, "Allow", "GET");
		write_error(c, HF_EMETHOD, "use GET");
		return;
	}
	const char *receipt = req->path + 3;
	if (!receipt[0] || strchr(receipt, '/') || strlen(receipt) > 64) {
		write_error(c, HF_ENOTFOUND, "no such resource");
		return;
	}
	const char *accept = hf_http_header(req, "Accept");
	hf_err err = db_acquire(&c->rq.db);
	if (!err)
		err = payments_receipt_page(c->rq.db, receipt, hf_http_query(req, "c"),
					    accept && strstr(accept, "application/json"), &c->resp->body,
					    &c->resp->content_type);
	if (err) {
		hf_buf_reset(&c->resp->body);
		c->resp->content_type = "application/json";
		write_error(c, err, NULL);
		return;
	}
	c->resp->status = 200;
}

static void dispatch(struct call *c)
{
	const struct hf_http_req *req = c->req;
	char buf[MAX_SEGS][SEG_MAX];
	const char *all[MAX_SEGS];
	size_t n;
	if (strcmp(req->path, "/healthz") == 0 || strcmp(req->path, "/metrics") == 0) {
		if (strcmp(req->method, "GET") != 0) {
			hf_http_resp_header(c->resp, "Allow", "GET");
			write_error(c, HF_EMETHOD, "use GET");
			return;
		}
		c->resp->log_route = req->path[1] == 'h' ? "/healthz" : "/metrics";
		if (req->path[1] == 'h')
			handle_health(c->resp);
		else
			handle_metrics(c->resp);
		return;
	}
	if (strncmp(req->path, "/r/", 3) == 0) {
		handle_receipt(c);
		return;
	}
	if (!split(req->path, buf, all, &n) || n < 3 || strcmp(all[0], "api") || strcmp(all[1], "v1")) {
		write_error(c, HF_ENOTFOUND, "no such resource");
		return;
	}
	c->nseg = n - 2;
	for (size_t i = 0; i < c->nseg; i++)
		c->seg[i] = all[i + 2];

	const struct route *hit = NULL;
	bool path_known = false;
	for (size_t i = 0; i < HF_ARRAY_LEN(routes); i++) {
		if (!pattern_match(routes[i].pattern, c->seg, c->nseg))
			continue;
		path_known = true;
		if (strcmp(routes[i].method, req->method) == 0) {
			hit = &routes[i];
			break;
		}
	}
	if (hit)
		c->resp->log_route = hit->pattern;
	if (!hit && path_known) {
		struct hf_buf allow;
		hf_buf_init(&allow, 64);
		for (size_t i = 0; i < HF_ARRAY_LEN(routes); i++)
			if (pattern_match(routes[i].pattern, c->seg, c->nseg))
				put(&allow, "%s%s", allow.len ? ", " : "", routes[i].method);
		hf_http_resp_header(c->resp, "Allow", hf_buf_cstr(&allow));
		hf_buf_release(&allow);
	}
	if (!hit) {
		write_error(c, path_known ? HF_EMETHOD : HF_ENOTFOUND, path_known ? "this method is not allowed here" : "no such resource");
		return;
	}
	c->route = hit;
	client_address(c);
	c->p.request_id = req->request_id;
	if ((strcmp(req->method, "POST") == 0 || strcmp(req->method, "PATCH") == 0) && !hit->raw) {
		const char *ct = hf_http_header(req, "Content-Type");
		if (!ct || strncmp(ct, "application/json", 16) != 0) {
			hf_ferrs_add(&c->fe, "Content-Type", "unsupported", "send application/json");
			write_error(c, HF_EINVAL, "the body must be JSON (Content-Type: application/json)");
			return;
		}
	}
	hf_err err = db_acquire(&c->rq.db);
	if (err) {
		write_error(c, err, NULL);
		return;
	}
	err = authenticate(c);
	if (err) {
		if (err == HF_EAUTH)
			hf_http_resp_header(c->resp, "WWW-Authenticate", "Bearer realm=\"hifadhi\"");
		write_error(c, err, c->rq.msg);
		return;
	}
	if ((strcmp(req->method, "POST") == 0 || strcmp(req->method, "PATCH") == 0) && !hit->raw) {
		if (hf_json_parse_object(req->body, &c->fe, &c->body)) {
			write_error(c, HF_EINVAL, NULL);
			return;
		}
	}
	c->rq.actor = c->p.actor;
	c->rq.who = &c->p.audit;
	c->rq.action = hit->action;
	c->rq.entity = hit->entity;
	json_t *out = NULL;
	err = hit->fn(c, &out);
	if (!err && hit->pii && c->p.kind == PRINCIPAL_STAFF)
		err = audit_read(c, out);
	if (err) {
		json_decref(out);
		if (err != HF_EINVAL && err != HF_ENOTFOUND && err != HF_ECONFLICT && err != HF_EAUTH &&
		    err != HF_EFORBIDDEN && err != HF_ERATELIMIT && err != HF_ELOCKED)
			hf_log(HF_LOG_WARN, "core.api", "msg=\"request failed\" method=%s route=%s err=%s", req->method,
			       hit->pattern, hf_err_name(err));
		if (err == HF_ERATELIMIT) {
			char ra[16];
			snprintf(ra, sizeof(ra), "%d", c->retry_after_s > 0 ? c->retry_after_s : 60);
			hf_http_resp_header(c->resp, "Retry-After", ra);
		}
		write_error(c, err, c->rq.msg);
		return;
	}
	send_json(c->resp, c->status_override ? c->status_override : hit->ok_status, out);
	json_decref(out);
}

void api_handle(void *ctx, const struct hf_http_req *req, struct hf_http_resp *resp)
{
	(void)ctx;
	int64_t t0 = hf_mono_us();
	atomic_fetch_add(&m_inflight, 1);
	struct call c = {.req = req, .resp = resp};
	hf_ferrs_init(&c.fe);
	c.rq.fe = &c.fe;
	dispatch(&c);
	json_decref(c.body);
	json_decref(c.rq.audit_before);
	hf_ferrs_release(&c.fe);
	int cls = resp->status / 100;
	if (cls >= 1 && cls <= 5)
		atomic_fetch_add(&m_requests[cls], 1);
	int64_t us = hf_mono_us() - t0;
	size_t k = 0;
	while (k < NLAT && (double)us / 1e6 > lat_bounds[k])
		k++;
	atomic_fetch_add(&m_lat[k], 1);
	atomic_fetch_add(&m_lat_sum_us, (uint64_t)us);
	atomic_fetch_sub(&m_inflight, 1);
}
