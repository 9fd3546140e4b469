/* ui.c - the touch UI's local web server (see ui.h): the static page and the two JSON calls. */
#include "ui.h"

#include "flow.h"

#include "hf_buf.h"
#include "hf_config.h"
#include "hf_http.h"
#include "hf_json.h"
#include "hf_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATIC_MAX (2 * 1024 * 1024)
#define POLL_WAIT_MS 20000

struct ui {
	struct hf_http_server *srv;
	struct flow *flow;
	char dir[512];
};

static const char CSP[] = "default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'; "
			  "base-uri 'none'; form-action 'none'";

static const char *content_type(const char *path)
{
	const char *dot = strrchr(path, '.');
	if (!dot)
		return "application/octet-stream";
	if (strcmp(dot, ".html") == 0)
		return "text/html; charset=utf-8";
	if (strcmp(dot, ".js") == 0 || strcmp(dot, ".mjs") == 0)
		return "text/javascript; charset=utf-8";
	if (strcmp(dot, ".css") == 0)
		return "text/css; charset=utf-8";
	if (strcmp(dot, ".svg") == 0)
		return "image/svg+xml";
	if (strcmp(dot, ".png") == 0)
		return "image/png";
	if (strcmp(dot, ".json") == 0)
		return "application/json";
	return "application/octet-stream";
}

/* Only plain names under the folder: letters, digits, '-', '_', '.', '/'; no "..", no hidden files. */
static bool static_path_ok(const char *p)
{
	size_t n = strlen(p);
	if (n < 2 || n > 128 || p[0] != '/' || strstr(p, "..") || strstr(p, "/."))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("-_./", c)))
			return false;
	}
	return true;
}

static void answer_text(struct hf_http_resp *resp, int status, char *text)
{
	resp->status = status;
	if (!text || hf_buf_append_str(&resp->body, text) != HF_OK) {
		resp->status = 500;
		hf_buf_reset(&resp->body);
		HF_ASSERT(hf_buf_append_str(&resp->body, "{\"error\":{\"reason\":\"internal\"}}") == HF_OK);
	}
	free(text);
}

static void handle(void *ctx, const struct hf_http_req *req, struct hf_http_resp *resp)
{
	struct ui *u = ctx;
	hf_http_resp_header(resp, "Cache-Control", "no-store");
	hf_http_resp_header(resp, "X-Content-Type-Options", "nosniff");
	if (strcmp(req->path, "/api/state") == 0 && strcmp(req->method, "GET") == 0) {
		resp->log_route = "api/state";
		long long after = -1;
		int64_t v;
		const char *a = hf_http_query(req, "after");
		if (a && hf_parse_i64(a, 0, INT64_MAX, &v) == HF_OK)
			after = (long long)v;
		answer_text(resp, 200, flow_state_json(u->flow, after, POLL_WAIT_MS));
		return;
	}
	if (strcmp(req->path, "/api/action") == 0) {
		resp->log_route = "api/action";
		if (strcmp(req->method, "POST") != 0) {
			resp->status = 405;
			return;
		}
		struct hf_ferrs fe;
		hf_ferrs_init(&fe);
		json_t *body = NULL;
		hf_err perr = hf_json_parse_object(req->body, &fe, &body);
		hf_ferrs_release(&fe);
		if (perr != HF_OK) {
			resp->status = 400;
			HF_ASSERT(hf_buf_append_str(&resp->body, "{\"error\":{\"reason\":\"invalid\",\"message\":\"a JSON object\"}}") == HF_OK);
			return;
		}
		const char *action = json_string_value(json_object_get(body, "action"));
		const char *value = json_string_value(json_object_get(body, "value"));
		json_t *seq = json_object_get(body, "seq");
		if (!action || !json_is_integer(seq)) {
			json_decref(body);
			resp->status = 400;
			HF_ASSERT(hf_buf_append_str(&resp->body, "{\"error\":{\"reason\":\"invalid\",\"message\":\"action and seq are required\"}}") == HF_OK);
			return;
		}
		answer_text(resp, 200, flow_action(u->flow, action, value, (long long)json_integer_value(seq)));
		json_decref(body);
		return;
	}
	if (strcmp(req->path, "/healthz") == 0) {
		resp->log_route = "healthz";
		bool ready = flow_ready(u->flow);
		resp->status = ready ? 200 : 503;
		HF_ASSERT(hf_buf_appendf(&resp->body, "{\"ready\":%s,\"online\":%s}", ready ? "true" : "false",
					 flow_online(u->flow) ? "true" : "false") == HF_OK);
		return;
	}
	if (strcmp(req->method, "GET") != 0) {
		resp->status = 405;
		return;
	}
	const char *path = strcmp(req->path, "/") == 0 ? "/index.html" : req->path;
	resp->log_route = "static";
	if (!static_path_ok(path)) {
		resp->status = 404;
		return;
	}
	char file[700];
	snprintf(file, sizeof(file), "%s%s", u->dir, path);
	struct hf_buf b;
	if (hf_file_read(file, STATIC_MAX, false, &b) != HF_OK) {
		hf_buf_release(&b);
		resp->status = 404;
		return;
	}
	resp->status = 200;
	resp->content_type = content_type(path);
	hf_http_resp_header(resp, "Content-Security-Policy", CSP);
	if (hf_buf_append(&resp->body, b.data ? b.data : "", b.len) != HF_OK)
		resp->status = 500;
	hf_buf_release(&b);
}

hf_err ui_start(const char *addr, int port, const char *static_dir, struct flow *flow, struct ui **out)
{
	struct ui *u = hf_xcalloc(1, sizeof(*u));
	u->flow = flow;
	hf_strlcpy(u->dir, static_dir, sizeof(u->dir));
	struct hf_http_opts o = {.bind = addr,
				 .port = port,
				 .threads = 8,
				 .max_body = 4096,
				 .max_resp = 4 * 1024 * 1024,
				 .conn_timeout_s = 60,
				 .max_conns = 64,
				 .log_place = "kiosk.ui",
				 .access_log = false,
				 /* The page long-polls /api/state: in a pool, a waiting poll would hold up the presses of
				  * other connections served by the same thread (Chromium reuses them). */
				 .thread_per_connection = true};
	hf_err err = hf_http_start(&o, handle, u, &u->srv);
	if (err != HF_OK) {
		free(u);
		return err;
	}
	*out = u;
	return HF_OK;
}

void ui_stop(struct ui *u)
{
	if (!u)
		return;
	hf_http_stop(u->srv);
	free(u);
}
