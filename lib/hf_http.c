/* hf_http.c - libmicrohttpd adapter: the only file that includes microhttpd.h. */
#include "hf_base.h"
#include "hf_http.h"
#include "hf_crypto.h"
#include "hf_log.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

/* Per-request state kept between libmicrohttpd's calls for one request. */
struct conn_state {
	struct hf_buf body;
	bool too_big;
	uint64_t discarded; /* bytes of an oversize body read and dropped */
	int64_t start_ms;
	/* A request handed to the workers: the connection is suspended from the moment it is queued until
	 * its worker has built the answer (resp) and resumed it; then libmicrohttpd's thread sends resp. */
	struct conn_state *next;
	struct MHD_Connection *conn;
	const char *method, *url;
	char rid[40];
	struct MHD_Response *resp;
	int status;
	const char *log_route;
	bool dispatched; /* counted in the server's pending until libmicrohttpd is done with it */
};

struct hf_http_server {
	struct MHD_Daemon *d;
	struct hf_http_opts opts;
	hf_http_handler handler;
	void *ctx;
	/* Pool mode: opts.threads workers take finished requests in arrival order from one queue, whichever
	 * connection they came on; libmicrohttpd's own thread only reads and writes. */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct conn_state *head, *tail;
	bool stopping;
	int pending; /* requests handed to the workers and not yet sent (or dropped) */
	pthread_t *workers;
	int nworkers;
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

/* Runs the handler on a finished request; leaves the answer in st->resp (status, log_route). */
static void run_handler(struct hf_http_server *srv, struct MHD_Connection *conn, struct conn_state *st,
			const char *method, const char *url, const char *rid)
{
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
	st->resp = r;
	st->status = resp.status;
	st->log_route = resp.log_route;
}

/* Sends st->resp (on libmicrohttpd's thread). */
static enum MHD_Result answer(struct hf_http_server *srv, struct MHD_Connection *conn, struct conn_state *st,
			      const char *method)
{
	enum MHD_Result ret = MHD_queue_response(conn, (unsigned)st->status, st->resp);
	MHD_destroy_response(st->resp);
	st->resp = NULL;
	if (srv->opts.access_log)
		hf_log(HF_LOG_INFO, srv->opts.log_place, "msg=\"request\" method=%s route=%s status=%d ms=%lld",
		       request_id_ok(method) ? method : "-", st->log_route ? st->log_route : "-", st->status,
		       (long long)(hf_mono_ms() - st->start_ms));
	return ret;
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
	if (st->resp) /* a worker answered, and resumed the connection */
		return answer(srv, conn, st, method);
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

	if (srv->nworkers) {
		/* Answered by a worker: the connection waits, suspended, and holds up no other connection. */
		st->conn = conn;
		st->method = method;
		st->url = url;
		hf_strlcpy(st->rid, rid, sizeof(st->rid));
		hf_log_set_request_id(NULL);
		pthread_mutex_lock(&srv->mu);
		if (srv->stopping) {
			pthread_mutex_unlock(&srv->mu);
			return send_simple(conn, 503, "{\"error\":{\"code\":\"unavailable\",\"message\":\"The service is stopping.\"}}",
					   rid);
		}
		MHD_suspend_connection(conn);
		st->dispatched = true;
		srv->pending++;
		st->next = NULL;
		if (srv->tail)
			srv->tail->next = st;
		else
			srv->head = st;
		srv->tail = st;
		pthread_cond_signal(&srv->cv);
		pthread_mutex_unlock(&srv->mu);
		return MHD_YES;
	}
	run_handler(srv, conn, st, method, url, rid);
	hf_log_set_request_id(NULL);
	return answer(srv, conn, st, method);
}

static void *worker_main(void *arg)
{
	struct hf_http_server *srv = arg;
	for (;;) {
		pthread_mutex_lock(&srv->mu);
		while (!srv->head && !srv->stopping)
			pthread_cond_wait(&srv->cv, &srv->mu);
		struct conn_state *st = srv->head;
		if (st) {
			srv->head = st->next;
			if (!srv->head)
				srv->tail = NULL;
		}
		pthread_mutex_unlock(&srv->mu);
		if (!st)
			return NULL; /* stopping, and nothing left to answer */
		hf_log_set_request_id(st->rid);
		run_handler(srv, st->conn, st, st->method, st->url, st->rid);
		hf_log_set_request_id(NULL);
		/* From here on st belongs to libmicrohttpd's thread again (it may even be freed). */
		MHD_resume_connection(st->conn);
	}
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	struct hf_http_server *srv = cls;
	(void)conn;
	(void)toe;
	struct conn_state *st = *con_cls;
	if (!st)
		return;
	if (st->dispatched) {
		pthread_mutex_lock(&srv->mu);
		srv->pending--;
		if (srv->stopping) /* hf_http_stop waits for the last ones; otherwise no one is to be woken */
			pthread_cond_broadcast(&srv->cv);
		pthread_mutex_unlock(&srv->mu);
	}
	if (st->resp) /* answered by a worker, but the connection went away before it was sent */
		MHD_destroy_response(st->resp);
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

/* The workers answer what is queued, then end; a request that arrives meanwhile gets 503. */
static void stop_workers(struct hf_http_server *srv)
{
	pthread_mutex_lock(&srv->mu);
	srv->stopping = true;
	pthread_cond_broadcast(&srv->cv);
	pthread_mutex_unlock(&srv->mu);
	for (int i = 0; i < srv->nworkers; i++)
		pthread_join(srv->workers[i], NULL);
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
	/* Pool mode: one libmicrohttpd thread reads and writes every connection; opts->threads workers run the
	 * handlers, which may block (on the database, on core) without holding up any other connection. The
	 * workers (and what they share) are ready before the first request can arrive. */
	pthread_mutex_init(&srv->mu, NULL);
	pthread_cond_init(&srv->cv, NULL);
	if (!opts->thread_per_connection) {
		int n = opts->threads > 0 ? opts->threads : 1;
		srv->workers = hf_xcalloc((size_t)n, sizeof(*srv->workers));
		for (; srv->nworkers < n; srv->nworkers++)
			if (pthread_create(&srv->workers[srv->nworkers], NULL, worker_main, srv) != 0)
				break;
		if (srv->nworkers == 0)
			hf_log(HF_LOG_ERROR, opts->log_place, "msg=\"cannot start request threads\"");
	}
	unsigned flags = opts->thread_per_connection
				 ? MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_USE_ITC
				 : MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_USE_TURBO | MHD_USE_ITC |
					   MHD_ALLOW_SUSPEND_RESUME;
	if (opts->thread_per_connection || srv->nworkers > 0)
		srv->d = MHD_start_daemon(flags,
					  (uint16_t)opts->port, NULL, NULL, on_request, srv,
					  MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv,
					  MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
					  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)opts->conn_timeout_s,
					  MHD_OPTION_CONNECTION_LIMIT, (unsigned)opts->max_conns,
					  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
					  MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
					  MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
					  MHD_OPTION_END);
	if (!srv->d) {
		stop_workers(srv);
		pthread_cond_destroy(&srv->cv);
		pthread_mutex_destroy(&srv->mu);
		free(srv->workers);
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
	stop_workers(srv);
	/* The answers the workers made are sent by libmicrohttpd's thread: a few seconds at most for them. */
	pthread_mutex_lock(&srv->mu);
	int64_t until = hf_now_ms() + 5000;
	while (srv->pending > 0 && hf_now_ms() < until) {
		struct timespec ts = hf_timespec_in(CLOCK_REALTIME, 50);
		pthread_cond_timedwait(&srv->cv, &srv->mu, &ts);
	}
	pthread_mutex_unlock(&srv->mu);
	MHD_stop_daemon(srv->d);
	pthread_cond_destroy(&srv->cv);
	pthread_mutex_destroy(&srv->mu);
	free(srv->workers);
	free(srv);
}
