/* ratelimit.h - token buckets for login and enrolment attempts, checked BEFORE any password hashing.
 *
 * In-process and per instance on purpose: its job is to keep one instance's CPU from being burnt on
 * Argon2id by a flood, so it must cost nothing and never touch the database. The limit that must hold
 * across instances (10 failures lock an account for 30 minutes) lives in the database (staff_users).
 * Memory is fixed: a table of RL_SLOTS buckets; when it is full the least recently used bucket of a probe
 * window is reused, so a flood of distinct keys cannot grow it.
 */
#ifndef HF_CORE_RATELIMIT_H
#define HF_CORE_RATELIMIT_H

#include "hf_base.h"

struct ratelimit;

/* burst: attempts allowed at once; per_minute: sustained rate. */
HF_MUST_CHECK struct ratelimit *ratelimit_new(int burst, int per_minute);
void ratelimit_free(struct ratelimit *rl);

/* Takes one token for key at now_ms. False when the bucket is empty; *first_refusal (may be NULL) is then
 * true for the first refusal after an allowed attempt, so callers can audit a flood once, not per request.
 * *retry_after_s gets the seconds until the next token (>= 1) when refused. */
bool ratelimit_take(struct ratelimit *rl, const char *key, int64_t now_ms, bool *first_refusal, int *retry_after_s);

#endif
