/* test_dispatch_journal.c - how the dispatcher settles the journal of a run that crashed.
 *
 * The journal is why a message is never sent twice by the gateway: after kill -9, every message it names is
 * settled by its last line before anything new is claimed. These tests write journals as a crashed run
 * leaves them -- interleaved, with a torn last line and damage -- and check the reports queued for core,
 * message by message and in order: S without an outcome is "sent" in doubt (never resent), S with a
 * delivery report was taken, C and U are given back, D and F are reported again, delivery reports follow
 * in the order they came. core is never called here.
 */
#include "hf_test.h"

#include "../../gateway/dispatch.c"

#include <stdio.h>
#include <string.h>

/* dispatch.c talks to core only through these; journal recovery must not call them. */
static int g_core_calls;
hf_err core_call(const char *method, const char *path, json_t *body, const char *route, long *status, json_t **out)
{
	(void)method;
	(void)path;
	(void)body;
	(void)route;
	g_core_calls++;
	*status = 0;
	*out = NULL;
	return HF_EUPSTREAM;
}

const char *core_error_message(const json_t *answer)
{
	(void)answer;
	return "";
}

static char g_dir[256];

static void reset_reports(void)
{
	while (D.rhead) {
		struct rep *r = D.rhead;
		D.rhead = r->next;
		free(r);
	}
	D.rtail = NULL;
	D.rqueued = D.recovering = D.dlr_pending = 0;
	atomic_store(&D.in_doubt, 0);
	if (D.jfd >= 0)
		close(D.jfd);
	D.jfd = -1;
}

/* Writes text as the journal and settles it. */
static void recover_from(const char *name, const char *text)
{
	reset_reports();
	snprintf(D.journal, sizeof(D.journal), "%s/%s", g_dir, name);
	if (text) {
		FILE *f = fopen(D.journal, "w");
		HF_ASSERT(f);
		fputs(text, f);
		fclose(f);
	}
	journal_recover();
}

/* The queued reports as "id status[:doubt]" lines. */
static void reports(char *out, size_t cap)
{
	size_t used = 0;
	out[0] = '\0';
	for (const struct rep *r = D.rhead; r; r = r->next) {
		int n = snprintf(out + used, cap - used, "%s %s%s%s\n", r->id, r->status, r->detail ? ":" : "",
				 r->detail ? "doubt" : "");
		HF_ASSERT(n > 0 && (size_t)n < cap - used);
		used += (size_t)n;
		HF_ASSERT(r->kind == REP_RECOVERY);
	}
}

static void test_each_last_line_settles_its_message(void)
{
	/* Eight messages, their lines interleaved as several senders and callbacks wrote them. */
	recover_from("j1",
		     "C 1\nC 2\nC 3\nC 4\nC 5\nC 6\nC 7\n"
		     "S 1\nS 3\nS 4\nD 1\nS 5\nS 7\nA 4\nF 5\nU 6\nD 7\nA 7\nY 7\nN 8\n");
	char got[1024];
	reports(got, sizeof(got));
	const char *want = "1 sent\n"             /* C S D: taken; reported again, harmless */
			   "2 released\n"         /* C: claimed, never handed over */
			   "3 sent:doubt\n"       /* S, no outcome: may be at Kannel; never resent */
			   "4 sent\n4 accepted\n" /* S + a delivery report: Kannel had it */
			   "5 failed\n"           /* refused by Kannel */
			   "6 released\n"         /* given back */
			   "7 sent\n7 accepted\n7 delivered\n"
			   "8 failed\n";          /* only its delivery report was left: it goes to core */
	HF_CHECK_MSG(strcmp(got, want) == 0, "reports:\n%s", got);
	HF_CHECK(atomic_load(&D.in_doubt) == 1);
	HF_CHECK(D.recovering == 11);
	HF_CHECK(D.jfd >= 0); /* reopened for this run's lines */
	HF_CHECK(g_core_calls == 0);
}

static void test_damaged_lines_are_skipped(void)
{
	/* A torn last line (the crash came mid-write), unknown letters, ids that are not outbox ids. */
	recover_from("j2",
		     "C 10\nS 10\nX 11\nS abc\nS -5\nS 0\nS 123456789012345678901234567890\nS\n\nC  12\nD 10\nS 1");
	char got[512];
	reports(got, sizeof(got));
	/* "S 1" without its newline is a whole id; a torn line cut inside the id would be a different id, but
	 * then its message's C line, which was complete, still settles it (released or in doubt). */
	HF_CHECK_MSG(strcmp(got, "1 sent:doubt\n10 sent\n") == 0, "reports:\n%s", got);
}

static void test_no_journal_and_an_empty_one(void)
{
	recover_from("absent", NULL);
	HF_CHECK(D.rhead == NULL && D.recovering == 0 && D.jfd >= 0);
	recover_from("empty", "");
	HF_CHECK(D.rhead == NULL && D.recovering == 0 && D.jfd >= 0);
}

static void test_many_messages(void)
{
	/* 20,000 messages, each ending one of five ways: every one settled once, in id order. */
	char path[320];
	snprintf(path, sizeof(path), "%s/j3", g_dir);
	FILE *f = fopen(path, "w");
	HF_ASSERT(f);
	for (int i = 1; i <= 20000; i++)
		fprintf(f, "C %d\n", i);
	for (int i = 1; i <= 20000; i++) {
		switch (i % 5) {
		case 0: fprintf(f, "S %d\nD %d\n", i, i); break;
		case 1: fprintf(f, "S %d\n", i); break;
		case 2: fprintf(f, "U %d\n", i); break;
		case 3: fprintf(f, "S %d\nF %d\n", i, i); break;
		default: break; /* C only */
		}
	}
	fclose(f);
	reset_reports();
	hf_strlcpy(D.journal, path, sizeof(D.journal));
	journal_recover();
	int n = 0, bad = 0, last = 0, doubt = 0;
	for (const struct rep *r = D.rhead; r; r = r->next, n++) {
		int64_t v = 0;
		HF_ASSERT(hf_parse_i64(r->id, 1, 20000, &v) == HF_OK);
		const char *want = v % 5 == 0 ? "sent" : v % 5 == 1 ? "sent" : v % 5 == 3 ? "failed" : "released";
		if ((int)v <= last || strcmp(r->status, want) != 0)
			bad++;
		doubt += r->detail != NULL;
		last = (int)v;
	}
	HF_CHECK_MSG(n == 20000 && bad == 0 && doubt == 4000, "%d reports, %d out of order or wrong, %d in doubt", n,
		     bad, doubt);
	HF_CHECK(atomic_load(&D.in_doubt) == 4000);
}

int main(void)
{
	hf_log_set_level(HF_LOG_ERROR);
	hf_test_tmpdir(g_dir, sizeof(g_dir));
	HF_TEST(test_each_last_line_settles_its_message);
	HF_TEST(test_damaged_lines_are_skipped);
	HF_TEST(test_no_journal_and_an_empty_one);
	HF_TEST(test_many_messages);
	reset_reports();
	hf_test_rmtree(g_dir);
	return hf_test_summary();
}
