/* api.c - routes, error bodies, /healthz and /metrics of hifadhi-core. */
#include "hf_base.h"
#include "api.h"
#include "app.h"
#include "db.h"
#include "hf_json.h"
#include "hf_log.h"
#include "quality.h"
#include "registry.h"

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
};

typedef hf_err (*route_fn)(struct call *c, json_t **out);

struct route {
	const char *method;
	const char *pattern; /* segments after /api/v1/, "*" = one variable segment */
	route_fn fn;
	int ok_status;
};

static void write_error(struct call *c, hf_err e, const char *detail)
{
	struct hf_http_resp *resp = c->resp;
	resp->status = hf_err_http_status(e);
	json_t *err = json_pack("{s:s, s:s, s:s}", "code", hf_err_name(e), "message",
				detail && detail[0] ? detail : hf_err_message(e), "request_id", c->req->request_id);
	if (e == HF_EINVAL && c->fe.list && hf_ferrs_any(&c->fe))
		json_object_set(err, "fields", c->fe.list);
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

static const struct route routes[] = {
	{"GET", "programmes", r_prog_list, 200},
	{"POST", "programmes", r_prog_create, 201},
	{"GET", "programmes/*", r_prog_get, 200},
	{"PATCH", "programmes/*", r_prog_update, 200},
	{"GET", "programmes/*/history", r_prog_history, 200},
	{"GET", "households", r_hh_search, 200},
	{"POST", "households", r_hh_create, 201},
	{"GET", "households/*", r_hh_get, 200},
	{"PATCH", "households/*", r_hh_update, 200},
	{"POST", "households/*/members", r_hh_member, 201},
	{"GET", "households/*/history", r_hh_history, 200},
	{"GET", "individuals", r_ind_search, 200},
	{"GET", "individuals/*", r_ind_get, 200},
	{"PATCH", "individuals/*", r_ind_update, 200},
	{"GET", "individuals/*/history", r_ind_history, 200},
	{"GET", "enrolments", r_enr_search, 200},
	{"POST", "enrolments", r_enr_create, 201},
	{"PATCH", "enrolments/*", r_enr_update, 200},
	{"GET", "enrolments/*/history", r_enr_history, 200},
	{"GET", "quality", r_quality, 200},
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

static bool actor_ok(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++) {
		char ch = s[n];
		if (n >= 64 || !((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
				 ch == '.' || ch == '_' || ch == '-' || ch == '@' || ch == ':'))
			return false;
	}
	return n > 0;
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
	const char *actor = hf_http_header(req, "X-Hifadhi-Actor");
	if (actor && !actor_ok(actor)) {
		hf_ferrs_add(&c->fe, "X-Hifadhi-Actor", "bad_value", "1-64 characters of letters, digits and .-_@:");
		write_error(c, HF_EINVAL, NULL);
		return;
	}
	c->rq.actor = actor ? actor : "anonymous";
	if (strcmp(req->method, "POST") == 0 || strcmp(req->method, "PATCH") == 0) {
		const char *ct = hf_http_header(req, "Content-Type");
		if (!ct || strncmp(ct, "application/json", 16) != 0) {
			hf_ferrs_add(&c->fe, "Content-Type", "unsupported", "send application/json");
			write_error(c, HF_EINVAL, "the body must be JSON (Content-Type: application/json)");
			return;
		}
		if (hf_json_parse_object(req->body, &c->fe, &c->body)) {
			write_error(c, HF_EINVAL, NULL);
			return;
		}
	}
	hf_err err = db_acquire(&c->rq.db);
	if (err) {
		write_error(c, err, NULL);
		return;
	}
	json_t *out = NULL;
	err = hit->fn(c, &out);
	if (err) {
		if (err != HF_EINVAL && err != HF_ENOTFOUND && err != HF_ECONFLICT)
			hf_log(HF_LOG_WARN, "core.api", "msg=\"request failed\" method=%s route=%s err=%s", req->method,
			       hit->pattern, hf_err_name(err));
		write_error(c, err, c->rq.msg);
		return;
	}
	send_json(c->resp, hit->ok_status, out);
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
