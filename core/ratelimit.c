/* ratelimit.c - fixed-size table of token buckets, striped locks. */
#include "hf_base.h"
#include "ratelimit.h"

#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define RL_SLOTS 8192 /* power of two */
#define RL_LOCKS 64
#define RL_PROBE 8

struct bucket {
	uint64_t key; /* 0 = free */
	double tokens;
	int64_t last_ms;
	bool refused; /* the last take was refused */
};

struct ratelimit {
	double burst, per_ms;
	uint8_t hash_key[crypto_shorthash_KEYBYTES];
	pthread_mutex_t locks[RL_LOCKS];
	struct bucket slots[RL_SLOTS];
};

struct ratelimit *ratelimit_new(int burst, int per_minute)
{
	HF_ASSERT(burst >= 1 && per_minute >= 1);
	struct ratelimit *rl = hf_xcalloc(1, sizeof(*rl));
	rl->burst = burst;
	rl->per_ms = per_minute / 60000.0;
	/* Keyed so nobody can aim many keys at one probe window. */
	randombytes_buf(rl->hash_key, sizeof(rl->hash_key));
	for (size_t i = 0; i < RL_LOCKS; i++)
		HF_ASSERT(pthread_mutex_init(&rl->locks[i], NULL) == 0);
	return rl;
}

void ratelimit_free(struct ratelimit *rl)
{
	if (!rl)
		return;
	for (size_t i = 0; i < RL_LOCKS; i++)
		pthread_mutex_destroy(&rl->locks[i]);
	free(rl);
}

bool ratelimit_take(struct ratelimit *rl, const char *key, int64_t now_ms, bool *first_refusal, int *retry_after_s)
{
	uint8_t h[8];
	crypto_shorthash(h, (const unsigned char *)key, strlen(key), rl->hash_key);
	uint64_t k;
	memcpy(&k, h, sizeof(k));
	if (k == 0)
		k = 1;
	/* A probe window never crosses a lock stripe: windows are aligned to RL_PROBE slots. */
	size_t base = (size_t)(k % (RL_SLOTS / RL_PROBE)) * RL_PROBE;
	pthread_mutex_t *lock = &rl->locks[(base / RL_PROBE) % RL_LOCKS];
	HF_ASSERT(pthread_mutex_lock(lock) == 0);
	struct bucket *b = NULL, *victim = &rl->slots[base];
	for (size_t i = 0; i < RL_PROBE; i++) {
		struct bucket *s = &rl->slots[base + i];
		if (s->key == k) {
			b = s;
			break;
		}
		if (s->key == 0 || s->last_ms < victim->last_ms)
			victim = s;
		if (s->key == 0)
			break;
	}
	if (!b) {
		b = victim;
		*b = (struct bucket){.key = k, .tokens = rl->burst, .last_ms = now_ms};
	}
	double t = b->tokens + (double)(now_ms - b->last_ms) * rl->per_ms;
	b->tokens = t > rl->burst ? rl->burst : t;
	b->last_ms = now_ms;
	bool ok = b->tokens >= 1.0;
	bool first = false;
	int wait = 0;
	if (ok) {
		b->tokens -= 1.0;
		b->refused = false;
	} else {
		first = !b->refused;
		b->refused = true;
		wait = (int)ceil((1.0 - b->tokens) / rl->per_ms / 1000.0);
		if (wait < 1)
			wait = 1;
	}
	pthread_mutex_unlock(lock);
	if (first_refusal)
		*first_refusal = first;
	if (retry_after_s)
		*retry_after_s = wait;
	return ok;
}
