/* hf_base.c - the always-on assert, aborting allocators and clocks.
 *
 * Kept tiny and dependency-free so that every program and test links it.
 */
#include "hf_base.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void hf_assert_fail(const char *expr, const char *file, int line)
{
	fprintf(stderr, "level=fatal place=assert msg=\"assertion failed\" expr=\"%s\" at=%s:%d\n", expr, file, line);
	fflush(stderr);
	abort();
}

static void *oom(size_t n)
{
	fprintf(stderr, "level=fatal place=alloc msg=\"out of memory\" bytes=%zu\n", n);
	abort();
}

void *hf_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	return p ? p : oom(n);
}

void *hf_xcalloc(size_t count, size_t n)
{
	void *p = calloc(count ? count : 1, n ? n : 1);
	return p ? p : oom(count * n);
}

void *hf_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	return q ? q : oom(n);
}

char *hf_xstrdup(const char *s)
{
	return hf_xstrndup(s, strlen(s));
}

char *hf_xstrndup(const char *s, size_t n)
{
	char *p = hf_xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

int64_t hf_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t hf_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct timespec hf_timespec_in(clockid_t clock, int64_t ms)
{
	struct timespec t;
	clock_gettime(clock, &t);
	t.tv_sec += (time_t)(ms / 1000);
	t.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

int64_t hf_mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
