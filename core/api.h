/* api.h - the HTTP API of hifadhi-core: routing, errors, health and metrics.
 *
 * api_handle is the hf_http handler: it matches the route (404 / 405), acquires the thread's database
 * connection (503 + Retry-After when the database is down), parses and checks the body, calls the
 * registry and writes JSON. Thread-safe.
 */
#ifndef HF_CORE_API_H
#define HF_CORE_API_H

#include "hf_http.h"

void api_init(void);
void api_handle(void *ctx, const struct hf_http_req *req, struct hf_http_resp *resp);

#endif
