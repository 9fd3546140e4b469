/* hf_http.h - HTTP server wrapper over libmicrohttpd (one epoll thread + a pool of request threads).
 *
 * The wrapper owns everything protocol-level: reading the body under a hard cap (413 past it, before the
 * handler runs), request ids (taken from X-Request-Id when well-formed, else generated), one access-log
 * line per request, and answering. The handler sees a finished request and fills a response. It runs on
 * one of `threads` request threads, which take finished requests in arrival order whatever connection
 * they came on (the connection is suspended meanwhile), so a handler may block (on the database, on
 * another service) without holding up any other connection.
 */
#ifndef HF_HTTP_H
#define HF_HTTP_H

#include "hf_base.h"
#include "hf_buf.h"
#include "hf_err.h"

#define HF_HTTP_MAX_HEADERS 8

struct hf_http_req {
	const char *method;
	const char *path;        /* without the query string */
	struct hf_str body;      /* borrowed; NUL-terminated as well */
	const char *request_id;  /* 1..36 chars of [A-Za-z0-9-] */
	const char *remote_addr; /* numeric address */
	void *impl_;             /* the MHD connection; use the accessors */
};

struct hf_http_resp {
	int status;
	const char *content_type; /* static string; default application/json */
	/* What the access log names instead of the raw path (which may hold anything a client typed, personal
	 * data included): a static route pattern such as "individuals/{ben_no}"; NULL logs "-". */
	const char *log_route;
	struct hf_buf body;
	size_t nheaders;
	char *headers[HF_HTTP_MAX_HEADERS][2]; /* owned copies */
};

/* A request header or query argument; NULL when absent. Borrowed until the handler returns. */
const char *hf_http_header(const struct hf_http_req *req, const char *name);
const char *hf_http_query(const struct hf_http_req *req, const char *name);
/* Whether the request carried any query argument. */
bool hf_http_has_query(const struct hf_http_req *req);
/* Adds a response header (copied). Aborts past HF_HTTP_MAX_HEADERS: our own code sets them. */
void hf_http_resp_header(struct hf_http_resp *resp, const char *name, const char *value);

typedef void (*hf_http_handler)(void *ctx, const struct hf_http_req *req, struct hf_http_resp *resp);

struct hf_http_opts {
	const char *bind;   /* numeric IPv4 address, e.g. "127.0.0.1" */
	int port;
	int threads;        /* request threads (handlers running at once) */
	size_t max_body;    /* bytes; larger bodies get 413 */
	size_t max_resp;    /* bytes; cap of response bodies */
	int conn_timeout_s; /* idle connection timeout */
	int max_conns;
	const char *log_place; /* e.g. "core.http" */
	bool access_log;
	/* One thread per connection instead of the pool (threads is then ignored; max_conns bounds the threads):
	 * for a server whose handlers wait long on purpose (long polls), which in the pool would hold up every
	 * other connection served by the same pool thread. */
	bool thread_per_connection;
};

struct hf_http_server;

HF_MUST_CHECK hf_err hf_http_start(const struct hf_http_opts *opts, hf_http_handler handler, void *ctx,
				   struct hf_http_server **out);
/* Stops accepting, lets requests in progress finish, then frees. NULL is a no-op. */
void hf_http_stop(struct hf_http_server *srv);


#endif
