/* hf_base.h - the project's base header: feature macros, attributes and the assert that stays on.
 *
 * Every .c file in Hifadhi includes this first, so that feature-test macros are set before any system
 * header and every module sees the same attributes. The assert is on in production on purpose: a broken
 * invariant of our own is a bug, and a process that aborts (and is restarted by systemd) is safer for
 * beneficiaries' money than one that goes on with corrupt state.
 */
#ifndef HF_BASE_H
#define HF_BASE_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define HF_MUST_CHECK __attribute__((warn_unused_result))
#define HF_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#define HF_NORETURN __attribute__((noreturn))
#define HF_UNUSED __attribute__((unused))
#define HF_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

HF_NORETURN void hf_assert_fail(const char *expr, const char *file, int line);

/* Checks one of OUR invariants; never use it on outside input (validate that and return an error). */
#define HF_ASSERT(expr) ((expr) ? (void)0 : hf_assert_fail(#expr, __FILE__, __LINE__))

/* Allocation that aborts on failure: acceptable only because every size an outsider controls is capped
 * before anything is allocated. */
void *hf_xmalloc(size_t n);
void *hf_xcalloc(size_t count, size_t n);
void *hf_xrealloc(void *p, size_t n);
char *hf_xstrdup(const char *s);
char *hf_xstrndup(const char *s, size_t n);

/* Wall clock in milliseconds since the epoch (UTC) and a monotonic clock in milliseconds. */
int64_t hf_now_ms(void);
int64_t hf_mono_ms(void);
int64_t hf_mono_us(void);
/* The time ms milliseconds from now on clock, as the absolute deadline pthread_cond_timedwait (CLOCK_REALTIME,
 * unless the condition variable was set to another clock) and clock_nanosleep (TIMER_ABSTIME) take. */
struct timespec hf_timespec_in(clockid_t clock, int64_t ms);

#endif
