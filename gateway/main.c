/* main.c - hifadhi-gateway: USSD and SMS for beneficiaries, in front of Kannel, talking to hifadhi-core.
 *
 *   hifadhi-gateway [-c CONFIG] [-o section.key=value]... serve | check-menus [DIR]
 *
 * HTTP (libmicrohttpd, 127.0.0.1:8081 by default):
 *   POST /ussd                 the aggregator convention (form fields sessionId, serviceCode, phoneNumber,
 *                              networkCode, text); answers text/plain "CON ..." or "END ..."
 *   POST /ussd/end             the aggregator's end-of-session notification
 *   GET  /kannel/mo            Kannel sms-service: an SMS, or USSD over SMPP (ussd_service_op in meta)
 *   GET  /kannel/dlr           Kannel delivery reports (ref = our outbox id)
 *   GET  /healthz, /metrics
 * and the outbound dispatcher (dispatch.h). docs/gateway.md is the operator's guide.
 */
#include "hf_base.h"
#include "actions.h"
#include "core_client.h"
#include "dispatch.h"
#include "menu.h"
#include "sms.h"
#include "ussd.h"

#include "hf_buf.h"
#include "hf_config.h"
#include "hf_gsm.h"
#include "hf_http.h"
#include "hf_httpc.h"
#include "hf_log.h"

#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_OVERRIDES 32
#define SEEN_MO 4096

static const struct hf_cfg_decl DECLS[] = {
	{"http.bind", HF_CFG_STR, "127.0.0.1", 7, 15, false, "numeric IPv4 address to listen on"},
	{"http.port", HF_CFG_INT, "8081", 1, 65535, false, "port of the USSD and Kannel callbacks"},
	{"http.threads", HF_CFG_INT, "8", 1, 256, false,
	 "requests handled at once, each thread with its own connection to core; the others wait in arrival order"},
	{"http.max_body", HF_CFG_INT, "16384", 256, 1048576, false, "largest request body"},
	{"http.access_log", HF_CFG_BOOL, "false", 0, 0, false, "one line per request (no personal data)"},
	{"core.url", HF_CFG_STR, "http://127.0.0.1:8080", 8, 200, false, "hifadhi-core's base URL"},
	{"core.secret_file", HF_CFG_STR, NULL, 1, 1024, true, "the gateway's service credential (core keygen)"},
	{"core.timeout_ms", HF_CFG_INT, "3000", 100, 15000, false,
	 "a core call slower than this gets the subscriber the 'busy' screen (aggregators allow 10-15 s a screen)"},
	{"menus.dir", HF_CFG_STR, "menus/ussd", 1, 1024, false, "folder of the USSD menus and SMS replies"},
	{"ussd.session_ttl_s", HF_CFG_INT, "180", 30, 900, false, "a USSD session is forgotten this long after its last input"},
	{"ussd.max_sessions", HF_CFG_INT, "100000", 100, 10000000, false, "sessions kept at once; more get 'busy'"},
	{"kannel.sendsms_url", HF_CFG_STR, "", 0, 300, false, "smsbox's sendsms URL; empty = no outbound SMS"},
	{"kannel.user", HF_CFG_STR, "", 0, 63, false, "sendsms user"},
	{"kannel.password_file", HF_CFG_STR, "", 0, 1024, false, "file holding the sendsms password"},
	{"kannel.sender", HF_CFG_STR, "384", 1, 20, false, "the short code SMS come from"},
	{"kannel.smsc", HF_CFG_STR, "", 0, 20, false, "the Kannel link (smsc-id) outbound SMS go through; empty = Kannel's routing"},
	{"kannel.timeout_ms", HF_CFG_INT, "10000", 500, 60000, false,
	 "a sendsms without an answer this long is in doubt: reported sent, never sent again by us"},
	{"kannel.dlr_base", HF_CFG_STR, "http://127.0.0.1:8081", 8, 200, false, "this gateway as Kannel reaches it"},
	{"dispatch.journal", HF_CFG_STR, "var/gateway/dispatch.journal", 1, 1024, false, "the dispatcher's journal"},
	{"dispatch.batch", HF_CFG_INT, "100", 1, 500, false, "messages claimed from core at a time"},
	{"dispatch.senders", HF_CFG_INT, "4", 1, 32, false, "sendsms requests in flight at once"},
	{"dispatch.rate_per_s", HF_CFG_INT, "0", 0, 100000, false, "SMS per second on the link; 0 = no limit"},
	{"dispatch.quiet_from", HF_CFG_INT, "0", 0, 23, false, "first hour (UTC) without SMS; equal to quiet_to = none"},
	{"dispatch.quiet_to", HF_CFG_INT, "0", 0, 23, false, "first hour (UTC) when SMS go again"},
	{"log.level", HF_CFG_STR, "info", 4, 5, false, "debug, info, warn or error"},
};

static struct menu *g_menu;
static _Atomic unsigned long long m_ussd, m_mo, m_dlr, m_bad;

/* Kannel retries a callback until it gets 200: the same MO id twice is answered with nothing. */
static struct {
	pthread_mutex_t lock;
	char ids[SEEN_MO][40];
	size_t next;
} g_seen = {.lock = PTHREAD_MUTEX_INITIALIZER};

static bool mo_seen(const char *id)
{
	if (!id || !id[0])
		return false;
	bool seen = false;
	pthread_mutex_lock(&g_seen.lock);
	for (size_t i = 0; i < SEEN_MO && !seen; i++)
		seen = strcmp(g_seen.ids[i], id) == 0;
	if (!seen) {
		hf_strlcpy(g_seen.ids[g_seen.next], id, sizeof(g_seen.ids[0]));
		g_seen.next = (g_seen.next + 1) % SEEN_MO;
	}
	pthread_mutex_unlock(&g_seen.lock);
	return seen;
}

/* ---- x-www-form-urlencoded (the aggregator's POST) */

/* Finds name in body and decodes its value into out (cap bytes with the NUL): 1 found, 0 absent, -1 present
 * but too long or not decodable. */
static int form_field(const struct hf_str body, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);
	const char *p = body.ptr, *end = body.ptr + body.len;
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *stop = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(stop - p));
		if (eq && (size_t)(eq - p) == nl && memcmp(p, name, nl) == 0) {
			size_t vl = (size_t)(stop - eq - 1);
			char raw[3 * 1100];
			if (vl >= 3 * cap || vl >= sizeof(raw))
				return -1;
			memcpy(raw, eq + 1, vl);
			raw[vl] = '\0';
			for (size_t i = 0; i < vl; i++)
				if (raw[i] == '+')
					raw[i] = ' ';
			int outlen = 0;
			char *dec = curl_easy_unescape(NULL, raw, (int)vl, &outlen);
			bool ok = dec && (size_t)outlen < cap && memchr(dec, '\0', (size_t)outlen) == NULL;
			if (ok)
				memcpy(out, dec, (size_t)outlen + 1);
			curl_free(dec);
			return ok ? 1 : -1;
		}
		p = stop + 1;
	}
	return 0;
}

static bool form_get(const struct hf_str body, const char *name, char *out, size_t cap)
{
	return form_field(body, name, out, cap) == 1;
}

/* ---- phone numbers: whatever the channel writes, E.164 out */

static bool phone_norm(const char *in, char out[20])
{
	char d[20];
	size_t n = 0;
	if (!in)
		return false;
	for (const char *p = in; *p; p++) {
		if (*p == ' ' || *p == '-' || (*p == '+' && p == in))
			continue;
		if (*p < '0' || *p > '9' || n >= 15)
			return false;
		d[n++] = *p;
	}
	d[n] = '\0';
	if (n < 8)
		return false;
	/* 00<cc>...: the international prefix */
	const char *s = d;
	if (s[0] == '0' && s[1] == '0')
		s += 2;
	else if (s[0] == '0')
		return hf_strlcpy(out, d, 20); /* local: core applies the country code */
	out[0] = '+';
	return hf_strlcpy(out + 1, s, 19);
}

static void text_reply(struct hf_http_resp *resp, int status, const char *text)
{
	resp->status = status;
	resp->content_type = "text/plain; charset=utf-8";
	hf_buf_reset(&resp->body);
	HF_ASSERT(hf_buf_append_str(&resp->body, text) == HF_OK); /* short texts only */
}

static void on_ussd(const struct hf_http_req *req, struct hf_http_resp *resp)
{
	atomic_fetch_add(&m_ussd, 1);
	char sid[USSD_SESSION_ID_MAX + 1], phone_in[40], phone[20], text[USSD_TEXT_MAX + 1], code[40];
	bool ok = form_get(req->body, "sessionId", sid, sizeof(sid)) && sid[0] &&
		  strspn(sid, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.:") == strlen(sid) &&
		  form_get(req->body, "phoneNumber", phone_in, sizeof(phone_in)) && phone_norm(phone_in, phone);
	int has_text = form_field(req->body, "text", text, sizeof(text));
	if (has_text == 0)
		text[0] = '\0'; /* the first request of a session */
	ok = ok && has_text >= 0;
	(void)form_get(req->body, "serviceCode", code, sizeof(code));
	if (!ok) {
		atomic_fetch_add(&m_bad, 1);
		struct hf_buf b;
		hf_buf_init(&b, 1024);
		if (menu_render_message(g_menu, NULL, "ussd.error", NULL, 0, &b) != HF_OK)
			hf_buf_reset(&b);
		char line[1100];
		snprintf(line, sizeof(line), "END %s", hf_buf_cstr(&b));
		hf_buf_release(&b);
		text_reply(resp, 200, line);
		return;
	}
	struct ussd_req r = {.session_id = sid, .phone = phone, .text = text, .one_input = false, .channel = "ussd"};
	struct hf_buf reply;
	hf_buf_init(&reply, 2048);
	bool end = true;
	ussd_handle(&r, &reply, &end);
	char line[MENU_TEXT_MAX + 8];
	snprintf(line, sizeof(line), "%s %s", end ? "END" : "CON", hf_buf_cstr(&reply));
	hf_buf_release(&reply);
	text_reply(resp, 200, line);
}

static _Atomic unsigned long long m_ussd_end;

static void on_ussd_end(const struct hf_http_req *req, struct hf_http_resp *resp)
{
	atomic_fetch_add(&m_ussd_end, 1);
	char sid[USSD_SESSION_ID_MAX + 1];
	if (form_get(req->body, "sessionId", sid, sizeof(sid)))
		ussd_end(sid);
	text_reply(resp, 200, "OK");
}

/* The inputs of a dial string: "*384*2*1#" -> "2*1" (the first part is the service code); "" for a plain
 * "*384#" or anything that is not a dial string of digits. */
static void dial_inputs(const char *dial, char *out, size_t cap)
{
	out[0] = '\0';
	size_t n = dial ? strlen(dial) : 0;
	if (n < 3 || n >= cap || dial[0] != '*' || dial[n - 1] != '#' || strspn(dial, "*#0123456789") != n)
		return;
	const char *rest = strchr(dial + 1, '*');
	if (!rest || rest > dial + n - 1 || strchr(dial, '#') != dial + n - 1)
		return;
	size_t k = (size_t)(dial + n - 1 - (rest + 1));
	memcpy(out, rest + 1, k);
	out[k] = '\0';
}

/* meta=?smpp?ussd_service_op=%01&its_session_info=%12%34& : the raw byte of a TLV (Kannel escapes it). */
static int meta_byte(const char *meta, const char *name, int *second)
{
	if (!meta)
		return -1;
	const char *p = strstr(meta, name);
	if (!p || p[strlen(name)] != '=')
		return -1;
	p += strlen(name) + 1;
	int v[2] = {-1, -1};
	for (int k = 0; k < 2 && *p && *p != '&'; k++) {
		if (*p == '%' && p[1] && p[2]) {
			char h[3] = {p[1], p[2], 0};
			v[k] = (int)strtol(h, NULL, 16);
			p += 3;
		} else {
			v[k] = (unsigned char)*p++;
		}
	}
	if (second)
		*second = v[1];
	return v[0];
}

static void on_kannel_mo(const struct hf_http_req *req, struct hf_http_resp *resp)
{
	atomic_fetch_add(&m_mo, 1);
	const char *from = hf_http_query(req, "from"), *text = hf_http_query(req, "text");
	const char *id = hf_http_query(req, "id"), *meta = hf_http_query(req, "meta");
	char phone[20];
	if (!from || !phone_norm(from, phone) || (text && strlen(text) > 2000)) {
		atomic_fetch_add(&m_bad, 1);
		text_reply(resp, 200, ""); /* 200: Kannel must not retry what will never be readable */
		return;
	}
	if (mo_seen(id)) {
		text_reply(resp, 200, "");
		return;
	}
	struct hf_buf reply;
	hf_buf_init(&reply, 2048);
	int s1 = -1, s2 = -1;
	int op = meta_byte(meta, "ussd_service_op", NULL);
	if (op >= 0) {
		/* USSD over SMPP: 1 begins a session (PSSR indication), 2 (or 18) carries the next input. */
		/* its_session_info: the first byte names the session; the second counts the turns (and carries
		 * the end bit), so it is not part of the session's name, and it is echoed back. */
		s1 = meta_byte(meta, "its_session_info", &s2);
		char sid[USSD_SESSION_ID_MAX + 1];
		snprintf(sid, sizeof(sid), "smpp:%s:%d", phone, s1);
		char dial[USSD_TEXT_MAX + 1] = "";
		if (op == 1) {
			/* A dial always opens a new session: one left open under the same name (its_session_info
			 * numbers come round again) is forgotten, not fed the dial as an input. */
			ussd_end(sid);
			dial_inputs(text, dial, sizeof(dial));
		}
		struct ussd_req r = {.session_id = sid, .phone = phone, .text = op == 1 ? "" : (text ? text : ""),
				     .one_input = true, .channel = "ussd", .shortcut = dial[0] ? dial : NULL};
		bool end = true;
		ussd_handle(&r, &reply, &end);
		char hdr[96];
		if (s1 >= 0 && s2 >= 0)
			snprintf(hdr, sizeof(hdr), "?smpp?ussd_service_op=%d&its_session_info=%%%02X%%%02X", end ? 17 : 2, s1,
				 s2);
		else
			snprintf(hdr, sizeof(hdr), "?smpp?ussd_service_op=%d", end ? 17 : 2);
		hf_http_resp_header(resp, "X-Kannel-Meta-Data", hdr);
	} else {
		sms_handle(phone, text ? text : "", &reply);
	}
	/* A reply outside GSM-7 goes as UCS-2. */
	struct hf_gsm_count c = {.gsm7 = true};
	if (reply.len && hf_gsm_count(reply.data, reply.len, &c) == HF_OK && !c.gsm7)
		hf_http_resp_header(resp, "X-Kannel-Coding", "2");
	text_reply(resp, 200, hf_buf_cstr(&reply));
	hf_buf_release(&reply);
}

static void on_kannel_dlr(const struct hf_http_req *req, struct hf_http_resp *resp)
{
	atomic_fetch_add(&m_dlr, 1);
	const char *ref = hf_http_query(req, "ref"), *status = hf_http_query(req, "status");
	int64_t st = 0;
	if (!status || hf_parse_i64(status, 0, 255, &st)) {
		atomic_fetch_add(&m_bad, 1);
		text_reply(resp, 200, "bad");
		return;
	}
	/* The report is written to the dispatcher's journal and handed to core by its reporter thread, so Kannel
	 * gets 200 at once; 503 (Kannel retries, http-request-retry) only when the journal cannot be written or
	 * too many reports wait for core. An id we never sent is counted and answered 200 (Kannel would retry
	 * it forever). */
	hf_err err = dispatch_dlr(ref, (int)st);
	text_reply(resp, err == HF_EDB_RETRY ? 503 : 200, err == HF_ENOTFOUND ? "unknown" : err ? "retry" : "ok");
}

static void on_metrics(struct hf_http_resp *resp)
{
	struct dispatch_stats d;
	dispatch_stats(&d);
	resp->status = 200;
	resp->content_type = "text/plain; version=0.0.4";
	hf_buf_reset(&resp->body);
	hf_err e = hf_buf_appendf(&resp->body,
			     "hifadhi_gateway_ussd_requests_total %llu\nhifadhi_gateway_ussd_end_total %llu\n"
			     "hifadhi_gateway_mo_total %llu\n"
			     "hifadhi_gateway_dlr_total %llu\nhifadhi_gateway_bad_requests_total %llu\n"
			     "hifadhi_gateway_ussd_sessions %zu\nhifadhi_gateway_sms_claimed_total %llu\n"
			     "hifadhi_gateway_sms_sent_total %llu\nhifadhi_gateway_sms_failed_total %llu\n"
			     "hifadhi_gateway_sms_retries_total %llu\nhifadhi_gateway_sms_in_doubt_total %llu\n"
			     "hifadhi_gateway_dlr_delivered_total %llu\nhifadhi_gateway_dlr_failed_total %llu\n"
			     "hifadhi_gateway_dlr_duplicates_total %llu\nhifadhi_gateway_dlr_unknown_total %llu\n",
			     (unsigned long long)m_ussd, (unsigned long long)m_ussd_end, (unsigned long long)m_mo, (unsigned long long)m_dlr,
			     (unsigned long long)m_bad, ussd_sessions(), d.claimed, d.sent, d.failed, d.retried, d.in_doubt,
			     d.dlr_delivered, d.dlr_failed, d.dlr_duplicates, d.dlr_unknown);
	if (e)
		resp->status = 500;
}

static void handle(void *ctx, const struct hf_http_req *req, struct hf_http_resp *resp)
{
	(void)ctx;
	const char *m = req->method, *p = req->path;
	resp->log_route = p[0] == '/' && (strcmp(p, "/ussd") == 0 || strcmp(p, "/ussd/end") == 0 ||
					  strcmp(p, "/kannel/mo") == 0 || strcmp(p, "/kannel/dlr") == 0 ||
					  strcmp(p, "/healthz") == 0 || strcmp(p, "/metrics") == 0)
				  ? p
				  : "-";
	if (strcmp(p, "/ussd") == 0 && strcmp(m, "POST") == 0)
		on_ussd(req, resp);
	else if (strcmp(p, "/ussd/end") == 0 && strcmp(m, "POST") == 0)
		on_ussd_end(req, resp);
	else if (strcmp(p, "/kannel/mo") == 0 && (strcmp(m, "GET") == 0 || strcmp(m, "POST") == 0))
		on_kannel_mo(req, resp);
	else if (strcmp(p, "/kannel/dlr") == 0 && (strcmp(m, "GET") == 0 || strcmp(m, "POST") == 0))
		on_kannel_dlr(req, resp);
	else if (strcmp(p, "/healthz") == 0)
		text_reply(resp, 200, "ok");
	else if (strcmp(p, "/metrics") == 0)
		on_metrics(resp);
	else
		text_reply(resp, 404, "no such resource");
}

static void usage(FILE *f)
{
	fprintf(f, "usage: hifadhi-gateway [-c CONFIG] [-o section.key=value]... COMMAND\n"
		   "  serve              answer USSD and SMS, send the outbox through Kannel, until SIGTERM/SIGINT\n"
		   "  check-menus [DIR]  check the menus (default: menus.dir) and exit: 0 fine, 2 with file:line\n");
}

static int check_menus(const char *dir)
{
	struct hf_buf err;
	hf_buf_init(&err, 4096);
	struct menu *m = NULL;
	hf_err e = menu_load(dir, &m, &err);
	if (e)
		fprintf(stderr, "hifadhi-gateway: %s\n", hf_buf_cstr(&err));
	else
		fprintf(stderr, "hifadhi-gateway: menus in %s are fine\n", dir);
	menu_free(m);
	hf_buf_release(&err);
	return e ? 2 : 0;
}

static hf_err read_secret(const char *path, char *out, size_t cap)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return HF_EIO;
	size_t n = fread(out, 1, cap - 1, f);
	fclose(f);
	while (n && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' '))
		n--;
	out[n] = '\0';
	return n ? HF_OK : HF_EINVAL;
}

static int serve(const struct hf_config *cfg)
{
	char secret[200], kpw[128] = "";
	if (read_secret(hf_config_str(cfg, "core.secret_file"), secret, sizeof(secret)) ||
	    core_client_configure(hf_config_str(cfg, "core.url"), secret, hf_config_int(cfg, "core.timeout_ms"))) {
		fprintf(stderr, "hifadhi-gateway: cannot read the service credential (core.secret_file)\n");
		return 1;
	}
	sodium_memzero(secret, sizeof(secret));
	struct hf_buf err;
	hf_buf_init(&err, 4096);
	if (menu_load(hf_config_str(cfg, "menus.dir"), &g_menu, &err)) {
		fprintf(stderr, "hifadhi-gateway: %s\n", hf_buf_cstr(&err));
		hf_buf_release(&err);
		return 2;
	}
	hf_buf_release(&err);
	HF_ASSERT(ussd_init(g_menu, (int)hf_config_int(cfg, "ussd.session_ttl_s"),
			    (int)hf_config_int(cfg, "ussd.max_sessions")) == HF_OK);
	sms_init(g_menu);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	bool outbound = hf_config_str(cfg, "kannel.sendsms_url")[0] != '\0';
	if (outbound) {
		const char *pwf = hf_config_str(cfg, "kannel.password_file");
		if (!pwf[0] || read_secret(pwf, kpw, sizeof(kpw))) {
			fprintf(stderr, "hifadhi-gateway: kannel.password_file cannot be read\n");
			return 1;
		}
		struct dispatch_conf dc = {
			.sendsms_url = hf_config_str(cfg, "kannel.sendsms_url"),
			.user = hf_config_str(cfg, "kannel.user"),
			.password = kpw,
			.sender = hf_config_str(cfg, "kannel.sender"),
			.smsc = hf_config_str(cfg, "kannel.smsc"),
			.dlr_base = hf_config_str(cfg, "kannel.dlr_base"),
			.timeout_ms = hf_config_int(cfg, "kannel.timeout_ms"),
			.journal = hf_config_str(cfg, "dispatch.journal"),
			.batch = (int)hf_config_int(cfg, "dispatch.batch"),
			.senders = (int)hf_config_int(cfg, "dispatch.senders"),
			.rate_per_s = (double)hf_config_int(cfg, "dispatch.rate_per_s"),
			.quiet_from = (int)hf_config_int(cfg, "dispatch.quiet_from"),
			.quiet_to = (int)hf_config_int(cfg, "dispatch.quiet_to"),
			.idle_ms = 500,
		};
		if (dispatch_start(&dc) != HF_OK) {
			fprintf(stderr, "hifadhi-gateway: cannot start the dispatcher\n");
			return 1;
		}
	}
	struct hf_http_opts o = {
		.bind = hf_config_str(cfg, "http.bind"),
		.port = (int)hf_config_int(cfg, "http.port"),
		.threads = (int)hf_config_int(cfg, "http.threads"),
		.max_body = (size_t)hf_config_int(cfg, "http.max_body"),
		.max_resp = 64 * 1024,
		.conn_timeout_s = 30,
		.max_conns = 4096,
		.log_place = "gateway.http",
		.access_log = hf_config_bool(cfg, "http.access_log"),
	};
	struct hf_http_server *srv = NULL;
	int rc = 1;
	if (hf_http_start(&o, handle, NULL, &srv) != HF_OK) {
		hf_log(HF_LOG_ERROR, "gateway.main", "msg=\"cannot listen\" bind=%s port=%d", o.bind, o.port);
		goto out;
	}
	hf_log(HF_LOG_INFO, "gateway.main", "msg=\"serving\" bind=%s port=%d outbound=%s", o.bind, o.port,
	       outbound ? "kannel" : "off");
	int sig = 0;
	sigwait(&set, &sig);
	hf_log(HF_LOG_INFO, "gateway.main", "msg=\"stopping\" signal=%d", sig);
	hf_http_stop(srv);
	rc = 0;
out:
	dispatch_stop();
	sodium_memzero(kpw, sizeof(kpw));
	ussd_shutdown();
	core_client_shutdown();
	menu_free(g_menu);
	return rc;
}

int main(int argc, char **argv)
{
	hf_httpc_global_init();
	if (sodium_init() < 0)
		return 1;
	const char *config_path = NULL;
	const char *overrides[MAX_OVERRIDES];
	size_t nov = 0;
	int i = 1;
	for (; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			config_path = argv[++i];
		else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc && nov < MAX_OVERRIDES)
			overrides[nov++] = argv[++i];
		else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else
			break;
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[i];
	if (strcmp(cmd, "check-menus") == 0 && i + 1 < argc)
		return check_menus(argv[i + 1]);
	struct hf_config *cfg = NULL;
	struct hf_buf err;
	hf_buf_init(&err, 2048);
	if (hf_config_load(DECLS, HF_ARRAY_LEN(DECLS), config_path, overrides, nov, &cfg, &err)) {
		fprintf(stderr, "hifadhi-gateway: config: %s\n", hf_buf_cstr(&err));
		hf_buf_release(&err);
		return 2;
	}
	hf_buf_release(&err);
	enum hf_log_level lvl;
	if (hf_log_level_parse(hf_config_str(cfg, "log.level"), &lvl))
		hf_log_set_level(lvl);
	int rc;
	if (strcmp(cmd, "serve") == 0)
		rc = serve(cfg);
	else if (strcmp(cmd, "check-menus") == 0)
		rc = check_menus(hf_config_str(cfg, "menus.dir"));
	else {
		usage(stderr);
		rc = 2;
	}
	hf_config_free(cfg);
	return rc;
}
