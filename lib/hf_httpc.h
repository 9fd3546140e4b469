/* hf_httpc.h - a small HTTP client for talking to payment providers and delivering their callbacks.
 *
 * The core posts payment requests to providers and the provider simulator posts callbacks back; both need
 * the same few things and nothing more: a POST with a hard timeout, a cap on the answer, keep-alive
 * connections (a payment run makes thousands of requests to one host) and an answer that separates
 * "the other side said something" (HF_OK, whatever the status) from "we do not know whether it got the
 * request" (timeout, connection failure). The second case matters for money: a payment whose request
 * timed out may or may not have been made, so the caller must ask the provider rather than resend blindly.
 * libcurl stays inside hf_httpc.c.
 *
 * Threads: one client per thread (it is not locked); hf_httpc_global_init must run once in main before
 * any thread is started. Only http and https URLs are allowed, redirects are never followed, and no body
 * (request or answer) is ever logged.
 */
#ifndef HF_HTTPC_H
#define HF_HTTPC_H

#include "hf_base.h"
#include "hf_buf.h"
#include "hf_err.h"

/* One per thread; keeps connections alive (one CURL easy handle reused). */
struct hf_httpc;

/* NULL on OOM (or when libcurl cannot make a handle). Free with hf_httpc_free (NULL is a no-op). */
struct hf_httpc *hf_httpc_new(void);
void hf_httpc_free(struct hf_httpc *c);

struct hf_httpc_resp {
	long status;          /* HTTP status of the answer */
	struct hf_buf body;   /* the answer's body, capped at max_resp */
	/* The request went out (in whole or in part). On HF_ETIMEOUT or HF_EUPSTREAM: false means the server
	 * never got it (no connection) and sending again is safe; true means it may have acted on it. */
	bool request_sent;
};

/* POSTs len bytes of body to url with the given Content-Type (NULL: none) and extra headers (a
 * NULL-terminated array of "Name: value" strings, may be NULL; a header with CR or LF is refused).
 * out->body is initialised by the call with cap max_resp on EVERY return, success or not, so the caller
 * always releases it with hf_buf_release; out->status is 0 unless an answer came back.
 * Returns:
 *	HF_OK        any HTTP answer came back (out->status filled, whatever the status code)
 *	HF_ETIMEOUT  timeout_ms passed (connecting or in total); the request may or may not have arrived
 *	HF_EUPSTREAM the connection failed, was refused or reset, or the answer was not HTTP
 *	HF_ETOOBIG   the answer's body exceeded max_resp
 *	HF_EINVAL    the URL is malformed, not http/https, or a header is malformed (nothing was sent)
 * Failures are logged once here (place "lib.httpc", libcurl's reason, never a body or header value). */
HF_MUST_CHECK hf_err hf_httpc_post(struct hf_httpc *c, const char *url, const char *content_type, const char *body,
				   size_t len, const char *const *headers, long timeout_ms, size_t max_resp,
				   struct hf_httpc_resp *out);

/* curl_global_init, once (later calls do nothing); call from main before threads. */
/* GET, with the same rules and results as hf_httpc_post. */
HF_MUST_CHECK hf_err hf_httpc_get(struct hf_httpc *c, const char *url, const char *const *headers, long timeout_ms,
				  size_t max_resp, struct hf_httpc_resp *out);

void hf_httpc_global_init(void);

#endif
