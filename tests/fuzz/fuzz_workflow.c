/* fuzz_workflow.c - libFuzzer target: case workflow files (core/workflow.c) loaded and validated.
 *
 * A workflow file is edited by programme staff and read at startup; a mistake in it must stop the service
 * with "file:line: reason", never crash it or load a workflow that strands cases. The input is written as
 * the only file of a private folder and loaded the way core loads deploy/workflows. Checked as well:
 * - a refusal names the file and a line ("DIR/w.ini:N: ...");
 * - an accepted workflow has an initial state; every transition goes to a known state and may start
 *   somewhere; every state's SLA figures are in range; from every non-terminal state some transition
 *   leads on (validated: no dead ends); the SLA functions agree with the state's hours.
 */
#include "hf_base.h"

#include "../../core/workflow.c"

#include "hf_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(expr) HF_ASSERT(expr)

static const char *const roles[] = {"admin", "registrar", "case_worker", "payment_officer", "auditor", "support", NULL};
static char g_dir[64];
static char g_file[96];

static void cleanup(void)
{
	unlink(g_file);
	rmdir(g_dir);
}

static void setup(void)
{
	if (g_dir[0])
		return;
	hf_log_set_filter("fuzz.silent");
	snprintf(g_dir, sizeof(g_dir), "/tmp/hf_fuzz_workflow_XXXXXX");
	HF_ASSERT(mkdtemp(g_dir) != NULL);
	snprintf(g_file, sizeof(g_file), "%s/w.ini", g_dir);
	atexit(cleanup);
}

static void check_def(const struct wf_def *d)
{
	const struct wf_state *init = wf_initial(d);
	FUZZ_CHECK(init != NULL && !init->terminal);
	for (size_t i = 0; wf_state_at(d, i); i++) {
		const struct wf_state *st = wf_state_at(d, i);
		FUZZ_CHECK(st->sla_hours >= 0 && st->sla_hours <= 8760);
		FUZZ_CHECK(st->at_risk_percent >= 1 && st->at_risk_percent <= 99);
		FUZZ_CHECK(wf_state_find(d, st->name) == st);
		if (st->sla_hours) {
			FUZZ_CHECK(wf_sla_due_s(st, 1000) == 1000 + (int64_t)st->sla_hours * 3600);
			FUZZ_CHECK(wf_sla_status(st, 1000, 1000) == WF_SLA_ON_TRACK);
			FUZZ_CHECK(wf_sla_status(st, 1000, wf_sla_due_s(st, 1000)) == WF_SLA_BREACHED);
		} else {
			FUZZ_CHECK(wf_sla_status(st, 1000, 5000000) == WF_SLA_NONE);
		}
		bool leads_on = false;
		for (size_t k = 0; wf_transition_at(d, k); k++)
			leads_on = leads_on || wf_transition_starts_at(wf_transition_at(d, k), st);
		FUZZ_CHECK(st->terminal ? !leads_on : leads_on);
	}
	for (size_t k = 0; wf_transition_at(d, k); k++) {
		const struct wf_transition *t = wf_transition_at(d, k);
		FUZZ_CHECK(t->to != NULL && wf_state_find(d, t->to->name) == t->to);
		FUZZ_CHECK(t->from != 0 && t->actions.n <= WF_MAX_ACTIONS);
		FUZZ_CHECK(wf_transition_find(d, t->name) == t);
	}
	for (size_t c = 0; wf_category_at(d, c); c++)
		FUZZ_CHECK(wf_category_allowed(d, wf_category_at(d, c)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup();
	FILE *f = fopen(g_file, "wb");
	HF_ASSERT(f != NULL);
	HF_ASSERT(size == 0 || fwrite(data, 1, size, f) == size);
	HF_ASSERT(fclose(f) == 0);
	struct hf_buf err;
	hf_buf_init(&err, 2048);
	struct wf_set *set = NULL;
	hf_err e = wf_load_dir(g_dir, roles, &set, &err);
	if (e) {
		/* "DIR/w.ini:N: reason" (or "DIR: reason" for a folder without a workflow) */
		const char *msg = hf_buf_cstr(&err);
		FUZZ_CHECK(set == NULL && (e == HF_EINVAL || e == HF_EIO));
		FUZZ_CHECK(strncmp(msg, g_dir, strlen(g_dir)) == 0 && strlen(msg) > strlen(g_dir) + 2);
	} else {
		FUZZ_CHECK(set != NULL);
		for (size_t i = 0; wf_at(set, i); i++)
			check_def(wf_at(set, i));
	}
	wf_free(set);
	hf_buf_release(&err);
	return 0;
}
