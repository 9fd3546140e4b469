/* bench_hist.h - the latency histogram of the load tools of `make bench` (ussd_load.c, kiosk_load.c):
 * 1 us steps below 1024 us, then 128 steps per power of two (< 1% error), merged across threads. */
#ifndef BENCH_HIST_H
#define BENCH_HIST_H

#include <stddef.h>
#include <stdint.h>

#define HIST_LINEAR 1024
#define HIST_SUB 128
#define HIST_N (HIST_LINEAR + 30 * HIST_SUB)

struct hist {
	uint64_t n, max;
	uint64_t b[HIST_N];
};

static inline size_t hist_index(uint64_t us)
{
	if (us < HIST_LINEAR)
		return (size_t)us;
	int e = 63 - __builtin_clzll(us); /* >= 10 */
	size_t i = HIST_LINEAR + (size_t)(e - 10) * HIST_SUB + (size_t)((us >> (e - 7)) & (HIST_SUB - 1));
	return i < HIST_N ? i : HIST_N - 1;
}

/* The middle of bucket i, in microseconds. */
static inline uint64_t hist_value(size_t i)
{
	if (i < HIST_LINEAR)
		return i;
	size_t e = (i - HIST_LINEAR) / HIST_SUB + 10, sub = (i - HIST_LINEAR) % HIST_SUB;
	uint64_t lo = ((uint64_t)1 << e) + ((uint64_t)sub << (e - 7));
	return lo + ((uint64_t)1 << (e - 8));
}

static inline void hist_add(struct hist *h, uint64_t us)
{
	h->b[hist_index(us)]++;
	h->n++;
	if (us > h->max)
		h->max = us;
}

static inline void hist_merge(struct hist *into, const struct hist *from)
{
	for (size_t i = 0; i < HIST_N; i++)
		into->b[i] += from->b[i];
	into->n += from->n;
	if (from->max > into->max)
		into->max = from->max;
}

static inline uint64_t hist_pct(const struct hist *h, double pct)
{
	if (!h->n)
		return 0;
	uint64_t want = (uint64_t)((double)h->n * pct / 100.0 + 0.5), seen = 0;
	if (want < 1)
		want = 1;
	for (size_t i = 0; i < HIST_N; i++) {
		seen += h->b[i];
		if (seen >= want) {
			uint64_t v = hist_value(i);
			return v < h->max ? v : h->max;
		}
	}
	return h->max;
}

#endif
