/* hf_httpc.c - libcurl adapter: the only file that includes curl/curl.h (see hf_httpc.h).
 *
 * One easy handle per client, reset and reconfigured for every request: curl_easy_reset keeps the
 * handle's connection cache, so consecutive posts to one provider reuse a kept-alive connection while no
 * option of one request can leak into the next.
 */
#include "hf_base.h"
#include "hf_httpc.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "hf_log.h"

#define PLACE "lib.httpc"

struct hf_httpc {
	CURL *h;
};

/* What the write callback needs: the buffer and whether the cap was hit (libcurl only sees a short write). */
struct sink {
	struct hf_buf *body;
	bool too_big;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void global_init_once(void)
{
	CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
	/* Without it no request can work; this is start-up, so stopping here is the clear failure. */
	HF_ASSERT(rc == CURLE_OK);
}

void hf_httpc_global_init(void)
{
	pthread_once(&global_once, global_init_once);
}

struct hf_httpc *hf_httpc_new(void)
{
	hf_httpc_global_init();
	struct hf_httpc *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->h = curl_easy_init();
	if (!c->h) {
		free(c);
		return NULL;
	}
	return c;
}

void hf_httpc_free(struct hf_httpc *c)
{
	if (!c)
		return;
	curl_easy_cleanup(c->h);
	free(c);
}

static size_t on_write(char *p, size_t size, size_t nmemb, void *userdata)
{
	struct sink *s = userdata;
	size_t n = size * nmemb;
	if (hf_buf_append(s->body, p, n)) {
		s->too_big = true;
		return 0; /* a short write makes libcurl stop with CURLE_WRITE_ERROR */
	}
	return n;
}

static bool header_ok(const char *h)
{
	return h && *h && strchr(h, ':') && !strpbrk(h, "\r\n");
}

static hf_err map_curl(CURLcode rc, bool too_big)
{
	if (too_big)
		return HF_ETOOBIG;
	switch (rc) {
	case CURLE_OK:
		return HF_OK;
	case CURLE_OPERATION_TIMEDOUT:
		return HF_ETIMEOUT;
	case CURLE_FILESIZE_EXCEEDED:
		return HF_ETOOBIG;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
		return HF_EINVAL;
	default:
		/* Refused, reset, resolve failures, TLS failures, an answer that is not HTTP, ... */
		return HF_EUPSTREAM;
	}
}

static hf_err request(struct hf_httpc *c, bool post, const char *url, const char *content_type, const char *body,
		      size_t len, const char *const *headers, long timeout_ms, size_t max_resp, struct hf_httpc_resp *out);

hf_err hf_httpc_post(struct hf_httpc *c, const char *url, const char *content_type, const char *body, size_t len,
		     const char *const *headers, long timeout_ms, size_t max_resp, struct hf_httpc_resp *out)
{
	return request(c, true, url, content_type, body, len, headers, timeout_ms, max_resp, out);
}

hf_err hf_httpc_get(struct hf_httpc *c, const char *url, const char *const *headers, long timeout_ms, size_t max_resp,
		    struct hf_httpc_resp *out)
{
	return request(c, false, url, NULL, NULL, 0, headers, timeout_ms, max_resp, out);
}

static hf_err request(struct hf_httpc *c, bool post, const char *url, const char *content_type, const char *body,
		      size_t len, const char *const *headers, long timeout_ms, size_t max_resp, struct hf_httpc_resp *out)
{
	hf_err err = HF_OK;
	struct curl_slist *hl = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	struct sink sink = {&out->body, false};

	out->status = 0;
	out->request_sent = false;
	hf_buf_init(&out->body, max_resp);
	HF_ASSERT(c && url && timeout_ms > 0 && (body || len == 0));

	if (content_type) {
		struct hf_buf ct;
		hf_buf_init(&ct, 256);
		if (strpbrk(content_type, "\r\n") || hf_buf_appendf(&ct, "Content-Type: %s", content_type)) {
			hf_buf_release(&ct);
			hf_log(HF_LOG_ERROR, PLACE, "msg=\"refusing a malformed content type\"");
			err = HF_EINVAL;
			goto out_headers;
		}
		struct curl_slist *n = curl_slist_append(hl, hf_buf_cstr(&ct));
		hf_buf_release(&ct);
		HF_ASSERT(n != NULL); /* out of memory */
		hl = n;
	} else if (post) {
		/* Otherwise libcurl would announce a form. */
		struct curl_slist *n = curl_slist_append(hl, "Content-Type:");
		HF_ASSERT(n != NULL);
		hl = n;
	}
	for (size_t i = 0; headers && headers[i]; i++) {
		if (!header_ok(headers[i])) {
			hf_log(HF_LOG_ERROR, PLACE, "msg=\"refusing a malformed request header\" index=%zu", i);
			err = HF_EINVAL;
			goto out_headers;
		}
		struct curl_slist *n = curl_slist_append(hl, headers[i]);
		HF_ASSERT(n != NULL);
		hl = n;
	}
	/* No "Expect: 100-continue" round trip for bodies over 1 KiB: the receivers answer at once anyway. */
	struct curl_slist *n = curl_slist_append(hl, "Expect:");
	HF_ASSERT(n != NULL);
	hl = n;

	CURL *h = c->h;
	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	/* Only http and https, and never a redirect: a provider (or anyone in between) must not be able to
	 * send our request, with its credentials, somewhere else. */
	HF_ASSERT(curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK);
	HF_ASSERT(curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") == CURLE_OK);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	/* Threads: no SIGALRM-based DNS timeouts. */
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "hifadhi/1");
	if (post) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	} else {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	/* An announced oversize answer is refused before a byte of it is read; the write callback catches the
	 * rest (chunked answers). */
	curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max_resp);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);

	CURLcode rc = curl_easy_perform(h);
	err = map_curl(rc, sink.too_big);
	long sent_bytes = 0;
	out->request_sent = curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &sent_bytes) != CURLE_OK || sent_bytes > 0;
	if (err == HF_OK) {
		long status = 0;
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
		out->status = status;
	} else {
		for (char *q = errbuf; *q; q++)
			if (*q == '"' || *q == '\n')
				*q = '\'';
		hf_log(err == HF_EINVAL ? HF_LOG_ERROR : HF_LOG_WARN, PLACE,
		       "msg=\"http request failed\" err=%s curl=%d detail=\"%s\" timeout_ms=%ld max_resp=%zu", hf_err_name(err),
		       (int)rc, errbuf[0] ? errbuf : curl_easy_strerror(rc), timeout_ms, max_resp);
		hf_buf_reset(&out->body);
	}
	/* The handle must not keep pointers to this call's stack (error buffer, sink) or header list. */
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, NULL);
out_headers:
	curl_slist_free_all(hl);
	return err;
}
