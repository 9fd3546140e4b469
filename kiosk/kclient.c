/* kclient.c - signed calls from the kiosk to core (see kclient.h). */
#include "kclient.h"

#include "hf_buf.h"
#include "hf_httpc.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct kclient {
	struct kclient_id id;
	struct hf_httpc *http;
};

struct kclient *kclient_new(const struct kclient_id *id)
{
	struct kclient *k = calloc(1, sizeof(*k));
	if (!k)
		return NULL;
	k->id = *id;
	k->http = hf_httpc_new();
	if (!k->http) {
		free(k);
		return NULL;
	}
	return k;
}

void kclient_free(struct kclient *k)
{
	if (!k)
		return;
	hf_httpc_free(k->http);
	sodium_memzero(k->id.sk, sizeof(k->id.sk));
	free(k);
}

const char *kclient_reason(const json_t *resp)
{
	json_t *e = json_object_get(resp, "error");
	const char *r = json_string_value(json_object_get(e, "reason")); /* what a terminal acts on */
	if (!r)
		r = json_string_value(json_object_get(e, "code"));
	return r ? r : "";
}

static hf_err call(struct kclient *k, const char *method, const char *path, json_t *body, bool sign, long *status,
		   json_t **out, char **raw)
{
	*status = 0;
	*out = NULL;
	if (raw)
		*raw = NULL;
	char full[600], url[900];
	if ((size_t)snprintf(full, sizeof(full), "/api/v1/%s", path) >= sizeof(full) ||
	    (size_t)snprintf(url, sizeof(url), "%s%s", k->id.base, full) >= sizeof(url))
		return HF_EINVAL;
	bool get = strcmp(method, "GET") == 0;
	char *text = NULL;
	if (!get) {
		text = body ? json_dumps(body, JSON_COMPACT) : strdup("{}");
		if (!text)
			return HF_EINTERNAL;
	}
	size_t len = text ? strlen(text) : 0;

	char h_kiosk[80], h_ts[64], h_nonce[64], h_sig[140];
	const char *hdrs[8] = {"Accept: application/json", NULL};
	size_t nh = 1;
	if (sign) {
		char ts[24], nonce[HF_REQSIGN_NONCE_LEN + 1], sig[HF_REQSIGN_SIG_B64_LEN + 1];
		snprintf(ts, sizeof(ts), "%lld", (long long)time(NULL));
		hf_reqsign_nonce(nonce);
		hf_err e = hf_reqsign_sign(k->id.sk, method, full, ts, nonce, k->id.kiosk_no, text, len, sig);
		if (e != HF_OK) {
			free(text);
			return e;
		}
		snprintf(h_kiosk, sizeof(h_kiosk), "%s: %s", HF_REQSIGN_H_KIOSK, k->id.kiosk_no);
		snprintf(h_ts, sizeof(h_ts), "%s: %s", HF_REQSIGN_H_TIMESTAMP, ts);
		snprintf(h_nonce, sizeof(h_nonce), "%s: %s", HF_REQSIGN_H_NONCE, nonce);
		snprintf(h_sig, sizeof(h_sig), "%s: %s", HF_REQSIGN_H_SIGNATURE, sig);
		hdrs[nh++] = h_kiosk;
		hdrs[nh++] = h_ts;
		hdrs[nh++] = h_nonce;
		hdrs[nh++] = h_sig;
	}
	hdrs[nh] = NULL;

	struct hf_httpc_resp resp;
	hf_err err = get ? hf_httpc_get(k->http, url, hdrs, k->id.timeout_ms, KCLIENT_RESP_MAX, &resp)
			 : hf_httpc_post(k->http, url, "application/json", text, len, hdrs, k->id.timeout_ms,
					 KCLIENT_RESP_MAX, &resp);
	free(text);
	if (err == HF_OK) {
		*status = resp.status;
		json_error_t je;
		if (resp.body.len > 0)
			*out = json_loadb(hf_buf_cstr(&resp.body), resp.body.len, JSON_REJECT_DUPLICATES, &je);
		if (raw && resp.body.len > 0)
			*raw = hf_buf_steal(&resp.body);
	}
	hf_buf_release(&resp.body);
	return err;
}

void kclient_fields(const json_t *resp, char *out, size_t cap)
{
	size_t used = 0;
	size_t i;
	json_t *fe;
	out[0] = '\0';
	json_array_foreach(json_object_get(json_object_get(resp, "error"), "fields"), i, fe)
	{
		const char *name = json_string_value(json_object_get(fe, "field"));
		if (!name)
			continue;
		int n = snprintf(out + used, cap - used, "%s%s", used ? "," : "", name);
		if (n < 0 || (size_t)n >= cap - used)
			break;
		used += (size_t)n;
	}
}

hf_err kclient_call(struct kclient *k, const char *method, const char *path, json_t *body, long *status, json_t **out,
		    char **raw)
{
	return call(k, method, path, body, true, status, out, raw);
}

hf_err kclient_post_unsigned(struct kclient *k, const char *path, json_t *body, long *status, json_t **out)
{
	return call(k, "POST", path, body, false, status, out, NULL);
}
