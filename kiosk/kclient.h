/* kclient.h - the kiosk's calls to hifadhi-core: every request signed with the terminal's Ed25519 key
 * (lib/hf_reqsign.h), JSON in and out, a hard deadline on each.
 *
 * The answer separates "core said something" (HF_OK, whatever the status) from "we do not know whether core
 * got it" (HF_ETIMEOUT, HF_EUPSTREAM: the link is down or core is slow). For a collection the second case
 * means: ask core what happened (by request id) before saying anything to the person.
 * One kclient per thread (it holds a libcurl handle); the key is shared read-only.
 */
#ifndef KIOSK_KCLIENT_H
#define KIOSK_KCLIENT_H

#include "hf_base.h"
#include "hf_err.h"
#include "hf_reqsign.h"

#include <jansson.h>

#define KCLIENT_RESP_MAX (4 * 1024 * 1024) /* an offline allowance with templates is the largest answer */

struct kclient;

struct kclient_id {
	char base[256];					/* core's base URL, no trailing slash */
	char kiosk_no[HF_REQSIGN_KIOSK_NO_MAX + 1];
	uint8_t sk[HF_REQSIGN_SK_LEN];			/* libsodium layout */
	long timeout_ms;
};

/* NULL on out of memory. id is copied. */
struct kclient *kclient_new(const struct kclient_id *id);
void kclient_free(struct kclient *k);

/* method "GET" or "POST"; path after /api/v1/ (e.g. "kiosk/me"); body may be NULL (POST sends "{}").
 * HF_OK with *status and *out (the parsed JSON answer, NULL when it was not JSON; caller decrefs);
 * HF_ETIMEOUT / HF_EUPSTREAM when no answer came; HF_EINVAL for a malformed path.
 * raw, when not NULL, receives the answer's body text as well (caller frees with free()). */
HF_MUST_CHECK hf_err kclient_call(struct kclient *k, const char *method, const char *path, json_t *body, long *status,
				  json_t **out, char **raw);

/* POST without a signature (kiosk enrolment: the terminal has no registered key yet). */
HF_MUST_CHECK hf_err kclient_post_unsigned(struct kclient *k, const char *path, json_t *body, long *status,
					   json_t **out);

/* What a core error body says went wrong: its "reason" when it has one (already_collected, ...), else its
 * "code" (invalid, locked, ...); "" when none. */
const char *kclient_reason(const json_t *resp);

/* The names of the fields a 400 answer complains about, comma-separated (never their values), for logs. */
void kclient_fields(const json_t *resp, char *out, size_t cap);

#endif
