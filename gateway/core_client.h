/* core_client.h - the gateway's only way to hifadhi-core: its HTTP API, with the gateway's service
 * credential (X-Hifadhi-Service-Key). One client per thread (it keeps a connection alive). Bodies and
 * answers are JSON; nothing personal is logged (paths hold phone numbers: only the route is). */
#ifndef HF_GATEWAY_CORE_CLIENT_H
#define HF_GATEWAY_CORE_CLIENT_H

#include "hf_base.h"
#include "hf_err.h"
#include <jansson.h>

/* base: "http://127.0.0.1:8080"; secret: the service credential; timeout_ms per call. */
HF_MUST_CHECK hf_err core_client_configure(const char *base, const char *secret, long timeout_ms);
void core_client_shutdown(void);

/* One call. path after /api/v1/ (e.g. "subscribers/+2547.../pin/verify"); body NULL for GET. On an HTTP
 * answer: HF_OK, *status and *out (the parsed JSON, or NULL when the body was not JSON); HF_ETIMEOUT or
 * HF_EUPSTREAM when core did not answer in time or at all. route names the call in logs. */
HF_MUST_CHECK hf_err core_call(const char *method, const char *path, json_t *body, const char *route, long *status,
			       json_t **out);
/* The error message of a core answer ("" when none). */
const char *core_error_message(const json_t *answer);

#endif
