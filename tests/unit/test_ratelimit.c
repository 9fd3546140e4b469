/* test_ratelimit.c - the token buckets that guard logins before any password is hashed. */
#include "hf_test.h"

#include "../../core/ratelimit.c"

#include <stdio.h>

static void test_burst_then_rate(void)
{
	struct ratelimit *rl = ratelimit_new(5, 60); /* 5 at once, then one a second */
	bool first = false;
	int wait = 0;
	for (int i = 0; i < 5; i++)
		HF_CHECK(ratelimit_take(rl, "a:10.0.0.1", 1000, &first, &wait));
	HF_CHECK(!ratelimit_take(rl, "a:10.0.0.1", 1000, &first, &wait));
	HF_CHECK(first);     /* the first refusal is flagged, for one audit entry per flood */
	HF_CHECK(wait == 1); /* one token a second */
	HF_CHECK(!ratelimit_take(rl, "a:10.0.0.1", 1100, &first, &wait));
	HF_CHECK(!first); /* later refusals of the same flood are not */
	HF_CHECK(ratelimit_take(rl, "a:10.0.0.1", 2100, &first, &wait)); /* a second later: one more */
	HF_CHECK(!ratelimit_take(rl, "a:10.0.0.1", 2100, &first, &wait));
	HF_CHECK(first); /* a new flood after an allowed attempt is flagged again */
	/* Other keys are not affected. */
	HF_CHECK(ratelimit_take(rl, "a:10.0.0.2", 2100, NULL, NULL));
	/* Refill stops at the burst. */
	for (int i = 0; i < 5; i++)
		HF_CHECK(ratelimit_take(rl, "a:10.0.0.1", 1000000, NULL, NULL));
	HF_CHECK(!ratelimit_take(rl, "a:10.0.0.1", 1000000, NULL, NULL));
	ratelimit_free(rl);
}

static void test_many_keys_bounded(void)
{
	/* A flood of distinct keys reuses slots instead of growing; a key that is hammered right now keeps
	 * its (empty) bucket because eviction takes the least recently used one of its window. */
	struct ratelimit *rl = ratelimit_new(3, 3);
	for (int i = 0; i < 3; i++)
		HF_CHECK(ratelimit_take(rl, "u:victim", 5000, NULL, NULL));
	HF_CHECK(!ratelimit_take(rl, "u:victim", 5000, NULL, NULL));
	char key[32];
	for (int i = 0; i < 100000; i++) {
		snprintf(key, sizeof(key), "a:%d", i);
		(void)ratelimit_take(rl, key, 4000, NULL, NULL); /* older than the victim's last use */
	}
	HF_CHECK(!ratelimit_take(rl, "u:victim", 5000, NULL, NULL));
	ratelimit_free(rl);
}

int main(void)
{
	HF_TEST(test_burst_then_rate);
	HF_TEST(test_many_keys_bounded);
	return hf_test_summary();
}
