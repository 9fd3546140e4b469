/* core_client.c - the gateway's calls to hifadhi-core (see core_client.h). */
#include "core_client.h"

#include "hf_buf.h"
#include "hf_httpc.h"
#include "hf_log.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CORE_RESP_MAX (1024 * 1024)

static char g_base[256];
static char g_key_header[200];
static long g_timeout_ms;
static pthread_key_t g_client_key;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void client_free(void *p)
{
	hf_httpc_free(p);
}

static void make_key(void)
{
	HF_ASSERT(pthread_key_create(&g_client_key, client_free) == 0);
}

hf_err core_client_configure(const char *base, const char *secret, long timeout_ms)
{
	pthread_once(&g_once, make_key);
	if (!base || !secret || strlen(base) >= sizeof(g_base) || strlen(secret) < 32 || strlen(secret) > 128 ||
	    strpbrk(secret, "\r\n"))
		return HF_EINVAL;
	hf_strlcpy(g_base, base, sizeof(g_base));
	snprintf(g_key_header, sizeof(g_key_header), "X-Hifadhi-Service-Key: %s", secret);
	g_timeout_ms = timeout_ms;
	return HF_OK;
}

void core_client_shutdown(void)
{
	sodium_memzero(g_key_header, sizeof(g_key_header));
}

static struct hf_httpc *client(void)
{
	struct hf_httpc *c = pthread_getspecific(g_client_key);
	if (!c) {
		c = hf_httpc_new();
		if (c)
			pthread_setspecific(g_client_key, c);
	}
	return c;
}

hf_err core_call(const char *method, const char *path, json_t *body, const char *route, long *status, json_t **out)
{
	*status = 0;
	*out = NULL;
	struct hf_httpc *c = client();
	if (!c)
		return HF_EINTERNAL;
	char url[600];
	if ((size_t)snprintf(url, sizeof(url), "%s/api/v1/%s", g_base, path) >= sizeof(url))
		return HF_EINVAL;
	const char *hdrs[] = {g_key_header, "Accept: application/json", NULL};
	struct hf_httpc_resp resp;
	hf_err err;
	if (strcmp(method, "GET") == 0) {
		err = hf_httpc_get(c, url, hdrs, g_timeout_ms, CORE_RESP_MAX, &resp);
	} else {
		char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
		const char *send = text ? text : "{}";
		err = hf_httpc_post(c, url, "application/json", send, strlen(send), hdrs, g_timeout_ms, CORE_RESP_MAX,
				    &resp);
		free(text);
	}
	if (err) {
		hf_log(HF_LOG_WARN, "gateway.core", "msg=\"core did not answer\" route=%s err=%s", route, hf_err_name(err));
		hf_buf_release(&resp.body);
		return err;
	}
	*status = resp.status;
	*out = resp.body.len ? json_loadb(resp.body.data, resp.body.len, 0, NULL) : NULL;
	hf_buf_release(&resp.body);
	if (resp.status >= 500)
		hf_log(HF_LOG_WARN, "gateway.core", "msg=\"core failed\" route=%s status=%ld", route, resp.status);
	return HF_OK;
}

const char *core_error_message(const json_t *answer)
{
	const char *m = json_string_value(json_object_get(json_object_get(answer, "error"), "message"));
	return m ? m : "";
}
