/* hf_http.c - libmicrohttpd adapter: the only file that includes microhttpd.h. */
#include "hf_base.h"
#include "hf_http.h"
#include "hf_crypto.h"
#include "hf_log.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct hf_http_server {
	struct MHD_Daemon *d;
	struct hf_http_opts opts;
	hf_http_handler handler;
	void *ctx;
};

/* Per-request state kept between libmicrohttpd's calls for one request. */
struct conn_state {
	struct hf_buf body;
	bool too_big;
	uint64_t discarded; /* bytes of an oversize body read and dropped */
	int64_t start_ms;
};

const char *hf_http_header(const struct hf_http_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->impl_, MHD_HEADER_KIND, name);
}

const char *hf_http_query(const struct hf_http_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->impl_, MHD_GET_ARGUMENT_KIND, name);
}

bool hf_http_has_query(const struct hf_http_req *req)
{
	return MHD_get_connection_values(req->impl_, MHD_GET_ARGUMENT_KIND, NULL, NULL) > 0;
}

void hf_http_resp_header(struct hf_http_resp *resp, const char *name, const char *value)
{
	HF_ASSERT(resp->nheaders < HF_HTTP_MAX_HEADERS);
	resp->headers[resp->nheaders][0] = hf_xstrdup(name);
	resp->headers[resp->nheaders][1] = hf_xstrdup(value);
	resp->nheaders++;
}

static bool request_id_ok(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++) {
		char c = s[n];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'))
			return false;
		if (n >= 36)
			return false;
	}
	return n > 0;
}

static enum MHD_Result send_simple(struct MHD_Connection *conn, int status, const char *body, const char *rid)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
	MHD_add_response_header(r, "Content-Type", "application/json");
	if (rid)
		MHD_add_response_header(r, "X-Request-Id", rid);
	enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

static void remote_addr(struct MHD_Connection *conn, char *out, size_t n)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	out[0] = '\0';
	if (!ci || !ci->client_addr)
		return;
	const struct sockaddr *sa = ci->client_addr;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out, (socklen_t)n);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out, (socklen_t)n);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	(void)version;
	struct hf_http_server *srv = cls;
	struct conn_state *st = *con_cls;
	if (!st) {
		st = hf_xcalloc(1, sizeof(*st));
		hf_buf_init(&st->body, srv->opts.max_body);
		st->start_ms = hf_mono_ms();
		*con_cls = st;
		/* Refuse an announced oversize body before reading a byte of it. */
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
		int64_t len = 0;
		if (cl && (hf_parse_i64(cl, 0, INT64_MAX, &len) || (uint64_t)len > srv->opts.max_body))
			st->too_big = true;
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (!st->too_big && hf_buf_append(&st->body, upload_data, *upload_data_size))
			st->too_big = true;
		/* An oversize body is read and dropped so the client sees the 413 (closing mid-upload makes most
		 * clients report a broken connection instead); past 16 times the cap the sender is not a client
		 * that will read an answer, and the connection is closed. */
		if (st->too_big) {
			st->discarded += *upload_data_size;
			if (st->discarded > 16 * (uint64_t)srv->opts.max_body)
				return MHD_NO;
		}
		*upload_data_size = 0;
		return MHD_YES;
	}

	char rid[40];
	const char *given = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
	if (given && request_id_ok(given)) {
		hf_strlcpy(rid, given, sizeof(rid));
	} else {
		uint8_t r[8];
		hf_random_bytes(r, sizeof(r));
		hf_hex(r, sizeof(r), rid);
	}
	hf_log_set_request_id(rid);

	if (st->too_big) {
		hf_log(HF_LOG_WARN, srv->opts.log_place, "msg=\"request body over cap\" method=%s max=%zu", method,
		       srv->opts.max_body);
		char body[256];
		snprintf(body, sizeof(body),
			 "{\"error\":{\"code\":\"too_big\",\"message\":\"The request body is larger than %zu bytes.\","
			 "\"request_id\":\"%s\"}}",
			 srv->opts.max_body, rid);
		hf_log_set_request_id(NULL);
		return send_simple(conn, 413, body, rid);
	}

	char addr[INET6_ADDRSTRLEN] = "";
	remote_addr(conn, addr, sizeof(addr));
	/* The path without the query string; MHD already split it off. */
	struct hf_http_req req = {
		.method = method,
		.path = url,
		.body = {st->body.data ? st->body.data : "", st->body.len},
		.request_id = rid,
		.remote_addr = addr,
		.impl_ = conn,
	};
	struct hf_http_resp resp = {.status = 200, .content_type = "application/json"};
	hf_buf_init(&resp.body, srv->opts.max_resp);
	srv->handler(srv->ctx, &req, &resp);

	struct MHD_Response *r = MHD_create_response_from_buffer(resp.body.len, resp.body.data ? resp.body.data : (void *)"",
								 resp.body.data ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	resp.body.data = NULL; /* now owned by MHD */
	MHD_add_response_header(r, "Content-Type", resp.content_type);
	MHD_add_response_header(r, "X-Request-Id", rid);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	for (size_t i = 0; i < resp.nheaders; i++) {
		MHD_add_response_header(r, resp.headers[i][0], resp.headers[i][1]);
		free(resp.headers[i][0]);
		free(resp.headers[i][1]);
	}
	enum MHD_Result ret = MHD_queue_response(conn, (unsigned)resp.status, r);
	MHD_destroy_response(r);
	if (srv->opts.access_log)
		hf_log(HF_LOG_INFO, srv->opts.log_place, "msg=\"request\" method=%s route=%s status=%d ms=%lld",
		       request_id_ok(method) ? method : "-", resp.log_route ? resp.log_route : "-", resp.status, (long long)(hf_mono_ms() - st->start_ms));
	hf_log_set_request_id(NULL);
	return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)conn;
	(void)toe;
	struct conn_state *st = *con_cls;
	if (!st)
		return;
	hf_buf_release(&st->body);
	free(st);
	*con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) HF_PRINTF(2, 0);
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct hf_http_server *srv = cls;
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	size_t n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (msg[i] == '"')
			msg[i] = '\'';
	hf_log(HF_LOG_WARN, srv->opts.log_place, "msg=\"microhttpd: %s\"", msg);
}

hf_err hf_http_start(const struct hf_http_opts *opts, hf_http_handler handler, void *ctx, struct hf_http_server **out)
{
	struct hf_http_server *srv = hf_xcalloc(1, sizeof(*srv));
	srv->opts = *opts;
	srv->handler = handler;
	srv->ctx = ctx;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opts->port)};
	if (inet_pton(AF_INET, opts->bind, &sa.sin_addr) != 1) {
		free(srv);
		return HF_EINVAL;
	}
	unsigned flags = opts->thread_per_connection
				 ? MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_USE_ITC
				 : MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_USE_TURBO | MHD_USE_ITC;
	/* The pool size only for a pool: with one thread per connection MHD warns about any pool size given. */
	struct MHD_OptionItem pool[] = {{MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)opts->threads, NULL},
					{MHD_OPTION_END, 0, NULL}};
	struct MHD_OptionItem no_pool[] = {{MHD_OPTION_END, 0, NULL}};
	srv->d = MHD_start_daemon(flags,
				  (uint16_t)opts->port, NULL, NULL, on_request, srv,
				  MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv,
				  MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
				  MHD_OPTION_ARRAY, opts->thread_per_connection ? no_pool : pool,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)opts->conn_timeout_s,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)opts->max_conns,
				  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
				  MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
				  MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
				  MHD_OPTION_END);
	if (!srv->d) {
		free(srv);
		return HF_EIO;
	}
	*out = srv;
	return HF_OK;
}

void hf_http_stop(struct hf_http_server *srv)
{
	if (!srv)
		return;
	MHD_quiesce_daemon(srv->d);
	MHD_stop_daemon(srv->d);
	free(srv);
}
