/* test_workflow.c - case workflows loaded from INI files: the shipped ones, every validation error with its
 * file:line, SLA states, and the lookups the case module relies on.
 *
 * A broken workflow must stop startup with a message an operator can act on, so each rule is tested with a
 * small broken file written into a private temporary directory, checking the exact line the error names.
 * core/auth.c needs the database, so the role names are this file's own copy of auth_role_names.
 */
#include "hf_test.h"

#include "../../core/workflow.c"

#include <stdio.h>
#include <string.h>

static const char *const roles[] = {"admin", "registrar", "case_worker", "payment_officer", "auditor", "support", NULL};
enum { R_ADMIN, R_REGISTRAR, R_CASE_WORKER, R_PAYMENT_OFFICER, R_AUDITOR, R_SUPPORT };

/* The first four lines of most test files: a valid [workflow] section. */
#define HEAD "[workflow]\ncase_type = feedback\ninitial = a\ncategories = general\n"
/* Lines 5-13: a valid pair of states and a transition. */
#define BODY                                                                                                           \
	"[state a]\nsla_hours = 10\n[state b]\nterminal = true\n[transition go]\nfrom = a\nto = b\nroles = support\n"  \
	"actions = close\n"

struct loaded {
	char dir[64];
	struct wf_set *set;
	hf_err rc;
	char msg[1024];
};

/* Writes the files (name, text pairs, NULL-terminated) into a new directory and loads it. */
static void load(struct loaded *l, const char *const *files)
{
	hf_test_tmpdir(l->dir, sizeof(l->dir));
	for (size_t i = 0; files[i]; i += 2) {
		char path[256];
		hf_test_write_file(l->dir, files[i], files[i + 1], 0600, path, sizeof(path));
	}
	struct hf_buf err;
	hf_buf_init(&err, sizeof(l->msg) - 1);
	l->set = NULL;
	l->rc = wf_load_dir(l->dir, roles, &l->set, &err);
	HF_ASSERT(hf_strlcpy(l->msg, hf_buf_cstr(&err), sizeof(l->msg)));
	hf_buf_release(&err);
}

static void unload(struct loaded *l)
{
	wf_free(l->set);
	hf_test_rmtree(l->dir);
}

/* Loads text as w.ini and expects "DIR/w.ini:LINE: ...needle...". */
#define FAILS(text, line, needle) fails_((text), (line), (needle), __LINE__)
static void fails_(const char *text, int line, const char *needle, int at)
{
	struct loaded l;
	load(&l, (const char *const[]){"w.ini", text, NULL});
	char want[256];
	snprintf(want, sizeof(want), "%s/w.ini:%d: ", l.dir, line);
	hf_test_check_(l.rc == HF_EINVAL && l.set == NULL, __FILE__, at, "load fails with HF_EINVAL", "rc %d: %s",
		       (int)l.rc, l.msg);
	hf_test_check_(strncmp(l.msg, want, strlen(want)) == 0 && strstr(l.msg, needle) != NULL, __FILE__, at,
		       "error names the line and reason", "want '%s...%s', got '%s'", want, needle, l.msg);
	unload(&l);
}

#define LOADS(text) loads_((text), __LINE__)
static void loads_(const char *text, int at)
{
	struct loaded l;
	load(&l, (const char *const[]){"w.ini", text, NULL});
	hf_test_check_(l.rc == HF_OK && l.set != NULL, __FILE__, at, "loads", "rc %d: %s", (int)l.rc, l.msg);
	unload(&l);
}

static void test_shipped(void)
{
	struct hf_buf err;
	hf_buf_init(&err, 1024);
	struct wf_set *s = NULL;
	hf_err rc = wf_load_dir("deploy/workflows", roles, &s, &err);
	HF_CHECK_MSG(rc == HF_OK, "%s", hf_buf_cstr(&err));
	hf_buf_release(&err);
	if (rc)
		return;
	/* All four case types, in a fixed order. */
	static const char *const types[] = {"application", "grievance", "change_request", "feedback"};
	for (size_t i = 0; i < HF_ARRAY_LEN(types); i++) {
		HF_CHECK(wf_at(s, i) == wf_find(s, types[i]));
		HF_CHECK(wf_at(s, i) && strcmp(wf_case_type(wf_at(s, i)), types[i]) == 0);
	}
	HF_CHECK(wf_at(s, 4) == NULL);
	HF_CHECK(wf_find(s, "complaint") == NULL);
	HF_CHECK(wf_find(s, NULL) == NULL);

	const struct wf_def *app = wf_find(s, "application");
	const struct wf_def *gr = wf_find(s, "grievance");
	const struct wf_def *cr = wf_find(s, "change_request");
	const struct wf_def *fb = wf_find(s, "feedback");
	if (!app || !gr || !cr || !fb) {
		wf_free(s);
		return;
	}
	HF_CHECK(strstr(wf_source(gr), "deploy/workflows/grievance.ini") != NULL);

	/* Application: eligibility on the way to the decision, two people decide, SMS on receipt and decision. */
	HF_CHECK(strcmp(wf_initial(app)->name, "submitted") == 0);
	HF_CHECK(wf_category_count(app) == 0 && !wf_category_allowed(app, "general"));
	const struct wf_actions *ia = wf_initial_actions(app);
	HF_CHECK(ia->n == 2 && ia->a[0].kind == WF_ACT_SMS && strcmp(ia->a[0].name, "application_received") == 0 &&
		 ia->a[1].kind == WF_ACT_ASSIGN_TEAM);
	const struct wf_transition *verify = wf_transition_find(app, "verify");
	HF_CHECK(verify && strcmp(verify->to->name, "eligibility_check") == 0 && verify->actions.n == 1 &&
		 verify->actions.a[0].kind == WF_ACT_ELIGIBILITY);
	const struct wf_transition *approve = wf_transition_find(app, "approve");
	const struct wf_transition *reject = wf_transition_find(app, "reject");
	HF_CHECK(approve && approve->maker_checker && approve->to->terminal);
	HF_CHECK(reject && reject->maker_checker && wf_transition_requires(reject, WF_FIELD_REASON));
	HF_CHECK(approve && approve->actions.n == 2 && approve->actions.a[0].kind == WF_ACT_SMS &&
		 approve->actions.a[1].kind == WF_ACT_CLOSE);

	/* Grievance: confidential staff misconduct, duplicate window, 72 hours to acknowledge. */
	HF_CHECK(strcmp(wf_initial(gr)->name, "lodged") == 0);
	HF_CHECK(wf_category_count(gr) == 7 && strcmp(wf_category_at(gr, 0), "payment_not_received") == 0);
	HF_CHECK(wf_category_at(gr, 7) == NULL);
	HF_CHECK(wf_category_allowed(gr, "agent_demanded_money") && !wf_category_allowed(gr, "phone"));
	HF_CHECK(!wf_category_allowed(gr, NULL));
	HF_CHECK(wf_category_confidential(gr, "staff_misconduct") && !wf_category_confidential(gr, "amount_short"));
	HF_CHECK(wf_confidential_role(gr) == R_AUDITOR);
	HF_CHECK(wf_category_visible_to(gr, "staff_misconduct", R_AUDITOR));
	HF_CHECK(!wf_category_visible_to(gr, "staff_misconduct", R_CASE_WORKER));
	HF_CHECK(wf_category_visible_to(gr, "staff_misconduct", WF_ROLE_SYSTEM));
	HF_CHECK(wf_category_visible_to(gr, "amount_short", R_CASE_WORKER));
	HF_CHECK(wf_duplicate_window_hours(gr) == 72 && wf_duplicate_window_hours(fb) == 0);
	const struct wf_state *lodged = wf_state_find(gr, "lodged");
	HF_CHECK(lodged && lodged->sla_hours == 72 && lodged->escalate_to == R_CASE_WORKER && !lodged->terminal);
	const struct wf_state *closed = wf_state_find(gr, "closed");
	HF_CHECK(closed && closed->terminal && closed->sla_hours == 0);

	/* Change request: apply_change only after a maker-checker approval. */
	const struct wf_transition *apply = wf_transition_find(cr, "approve");
	HF_CHECK(apply && apply->maker_checker && apply->actions.n == 3 &&
		 apply->actions.a[0].kind == WF_ACT_APPLY_CHANGE);
	HF_CHECK(wf_category_allowed(cr, "death") && wf_category_allowed(cr, "head_of_household"));

	/* Feedback: closes by itself a week after review. */
	const struct wf_state *reviewed = wf_state_find(fb, "reviewed");
	const struct wf_transition *fclose = reviewed ? wf_breach_transition(fb, reviewed) : NULL;
	HF_CHECK(fclose && strcmp(fclose->name, "close") == 0 && fclose->to->terminal);
	HF_CHECK(wf_initial_actions(fb)->n == 2 && wf_initial_actions(fb)->a[1].kind == WF_ACT_ASSIGN_ROLE &&
		 wf_initial_actions(fb)->a[1].role == R_SUPPORT);
	wf_free(s);
	wf_free(NULL);
}

static void test_lookups(void)
{
	struct wf_set *s = NULL;
	struct hf_buf err;
	hf_buf_init(&err, 1024);
	hf_err rc = wf_load_dir("deploy/workflows", roles, &s, &err);
	hf_buf_release(&err);
	const struct wf_def *gr = rc ? NULL : wf_find(s, "grievance");
	if (!HF_CHECK(gr != NULL)) {
		wf_free(s);
		return;
	}
	const struct wf_state *lodged = wf_state_find(gr, "lodged");
	const struct wf_state *ack = wf_state_find(gr, "acknowledged");
	const struct wf_state *inv = wf_state_find(gr, "investigating");
	HF_CHECK(lodged && ack && inv && wf_state_find(gr, "nowhere") == NULL && wf_state_find(gr, NULL) == NULL);
	HF_CHECK(wf_state_at(gr, 0) == lodged && lodged->index == 0);
	HF_CHECK(wf_state_at(gr, 7) == NULL);

	const struct wf_transition *t = wf_transition_find(gr, "acknowledge");
	if (!HF_CHECK(t != NULL)) {
		wf_free(s);
		return;
	}
	HF_CHECK(wf_transition_at(gr, 0) == t);
	HF_CHECK(wf_transition_find(gr, "teleport") == NULL);
	HF_CHECK(t->to == ack);
	HF_CHECK(wf_transition_starts_at(t, lodged) && !wf_transition_starts_at(t, inv) &&
		 !wf_transition_starts_at(t, NULL));
	HF_CHECK(wf_transition_allows(t, R_CASE_WORKER) && wf_transition_allows(t, R_AUDITOR));
	HF_CHECK(!wf_transition_allows(t, R_SUPPORT) && !wf_transition_allows(t, R_ADMIN));
	HF_CHECK(!wf_transition_allows(t, WF_ROLE_SYSTEM) && !wf_transition_allows(t, WF_ROLE_NONE) &&
		 !wf_transition_allows(t, 40));
	HF_CHECK(wf_transition_requires(t, WF_FIELD_NOTE) && !wf_transition_requires(t, WF_FIELD_REASON));
	HF_CHECK(!t->maker_checker && t->actions.n == 0);

	/* Maker-checker and the actions of a rejection. */
	const struct wf_transition *rej = wf_transition_find(gr, "reject");
	HF_CHECK(rej && rej->maker_checker && rej->actions.n == 2 && rej->actions.a[0].kind == WF_ACT_SMS &&
		 strcmp(rej->actions.a[0].name, "grievance_rejected") == 0 && rej->actions.a[1].kind == WF_ACT_CLOSE &&
		 rej->actions.a[0].role == WF_ROLE_NONE);

	/* What each role may do from "lodged", in file order. */
	const struct wf_transition *n = wf_transition_next(gr, lodged, R_CASE_WORKER, NULL);
	HF_CHECK(n && strcmp(n->name, "acknowledge") == 0);
	n = n ? wf_transition_next(gr, lodged, R_CASE_WORKER, n) : NULL;
	HF_CHECK(n && strcmp(n->name, "reject") == 0);
	HF_CHECK(!n || wf_transition_next(gr, lodged, R_CASE_WORKER, n) == NULL);
	HF_CHECK(wf_transition_next(gr, lodged, R_SUPPORT, NULL) == NULL);
	HF_CHECK(wf_transition_next(gr, lodged, R_PAYMENT_OFFICER, NULL) == NULL);

	/* The engine's transitions: escalation on a breach while acknowledged or investigating; none while
	 * lodged (that state reassigns to case_worker instead). */
	const struct wf_transition *esc = wf_breach_transition(gr, ack);
	HF_CHECK(esc && strcmp(esc->name, "escalate") == 0 && esc->system && wf_transition_allows(esc, WF_ROLE_SYSTEM));
	HF_CHECK(esc && esc->actions.n == 1 && esc->actions.a[0].kind == WF_ACT_ASSIGN_ROLE &&
		 esc->actions.a[0].role == R_REGISTRAR);
	HF_CHECK(wf_breach_transition(gr, inv) == esc);
	HF_CHECK(wf_breach_transition(gr, lodged) == NULL);

	HF_CHECK(strcmp(wf_field_name(WF_FIELD_ASSIGNEE), "assignee") == 0);
	HF_CHECK(strcmp(wf_action_kind_name(WF_ACT_ASSIGN_ROLE), "assign") == 0);
	HF_CHECK(strcmp(wf_action_kind_name(WF_ACT_APPLY_CHANGE), "apply_change") == 0);
	wf_free(s);
}

static void test_sla(void)
{
	struct wf_state st = {.name = "x", .sla_hours = 10, .at_risk_percent = 75, .escalate_to = WF_ROLE_NONE};
	const int64_t t0 = 1700000000;
	HF_CHECK(wf_sla_status(&st, t0, t0) == WF_SLA_ON_TRACK);
	HF_CHECK(wf_sla_status(&st, t0, t0 + 27000 - 1) == WF_SLA_ON_TRACK); /* 7.5 h = 75 % of 10 h */
	HF_CHECK(wf_sla_status(&st, t0, t0 + 27000) == WF_SLA_AT_RISK);
	HF_CHECK(wf_sla_status(&st, t0, t0 + 36000 - 1) == WF_SLA_AT_RISK);
	HF_CHECK(wf_sla_status(&st, t0, t0 + 36000) == WF_SLA_BREACHED);
	HF_CHECK(wf_sla_status(&st, t0, t0 + 10 * 36000) == WF_SLA_BREACHED);
	HF_CHECK(wf_sla_status(&st, t0, t0 - 5000) == WF_SLA_ON_TRACK); /* the clock went backwards */
	HF_CHECK(wf_sla_status(&st, INT64_MIN, INT64_MAX) == WF_SLA_BREACHED);
	HF_CHECK(wf_sla_status(&st, INT64_MAX, INT64_MIN) == WF_SLA_ON_TRACK);
	HF_CHECK(wf_sla_at_risk_s(&st, t0) == t0 + 27000);
	HF_CHECK(wf_sla_due_s(&st, t0) == t0 + 36000);
	HF_CHECK(wf_sla_due_s(&st, INT64_MAX - 10) == INT64_MAX);
	/* The moments agree with the status. */
	HF_CHECK(wf_sla_status(&st, t0, wf_sla_at_risk_s(&st, t0)) == WF_SLA_AT_RISK);
	HF_CHECK(wf_sla_status(&st, t0, wf_sla_due_s(&st, t0)) == WF_SLA_BREACHED);

	st.at_risk_percent = 1;
	HF_CHECK(wf_sla_status(&st, t0, t0 + 359) == WF_SLA_ON_TRACK);
	HF_CHECK(wf_sla_status(&st, t0, t0 + 360) == WF_SLA_AT_RISK);
	st.sla_hours = 8760;
	st.at_risk_percent = 99;
	HF_CHECK(wf_sla_status(&st, t0, t0 + 8760LL * 3600 - 1) == WF_SLA_AT_RISK);
	HF_CHECK(wf_sla_status(&st, t0, t0 + 8760LL * 3600) == WF_SLA_BREACHED);

	st.sla_hours = 0; /* terminal states and states without a time limit */
	HF_CHECK(wf_sla_status(&st, t0, t0 + 1000000) == WF_SLA_NONE);
	HF_CHECK(wf_sla_due_s(&st, t0) == 0 && wf_sla_at_risk_s(&st, t0) == 0);

	HF_CHECK(strcmp(wf_sla_name(WF_SLA_NONE), "none") == 0 &&
		 strcmp(wf_sla_name(WF_SLA_ON_TRACK), "on_track") == 0 &&
		 strcmp(wf_sla_name(WF_SLA_AT_RISK), "at_risk") == 0 &&
		 strcmp(wf_sla_name(WF_SLA_BREACHED), "breached") == 0);
}

static void test_minimal_and_syntax_accepted(void)
{
	LOADS(HEAD BODY);
	/* Comments, blank lines, inline comments, a BOM, an empty terminal section at the end, CRLF lines. */
	LOADS("\xEF\xBB\xBF; a workflow\n\n[workflow] ; the header\ncase_type = feedback ; why\r\n"
	      "initial = a\ncategories = general, other\n  ; an indented comment\n[state a]\nsla_hours = 0\n"
	      "[transition go]\nfrom = a\nto = b\nroles = support,case_worker\nactions = sms:thanks , close\n"
	      "[state b]\nterminal = true\n");
	/* A self-loop is a transition like any other. */
	LOADS(HEAD BODY "[transition note]\nfrom = a\nto = a\nroles = support\nrequires = note\n");
}

static void test_file_errors(void)
{
	/* Lines inih cannot read, and lines it would misread. */
	FAILS(HEAD "[state a]\nthis line has no equals sign\n", 6, "cannot read this line");
	FAILS(HEAD "[state a\nsla_hours = 1\n", 5, "cannot read this line");
	FAILS(HEAD "[state a]\nsla_hours = 1\n  terminal = false\n", 7, "indented");
	FAILS(HEAD "[state a] extra\n", 5, "text after the section header");
	char longline[400];
	snprintf(longline, sizeof(longline), HEAD "; %0300d\n", 0);
	FAILS(longline, 5, "too long");

	/* Sections and keys. */
	FAILS(HEAD "[workflw]\n", 5, "unknown section [workflw]");
	FAILS(HEAD "[state]\n", 5, "unknown section");
	FAILS(HEAD "[state Lodged]\n", 5, "bad state name 'Lodged'");
	FAILS(HEAD "[transition a-b]\n", 5, "bad transition name 'a-b'");
	FAILS(HEAD "[state a]\nsla_hour = 10\n", 6, "unknown key 'sla_hour' in [state a]");
	FAILS(HEAD "[state a]\nsla_hours = 10\nsla_hours = 20\n", 7, "set twice in [state a] (first at line 6)");
	FAILS("case_type = feedback\n[workflow]\n", 1, "before any section");
	FAILS(HEAD BODY "[workflow]\n", 14, "[workflow] appears twice (first at line 1)");
	FAILS(HEAD BODY "[state a]\n", 14, "state 'a' is defined twice (first at line 5)");
	FAILS(HEAD BODY "[transition go]\nfrom = a\nto = b\nroles = support\nactions = close\n", 14,
	      "transition 'go' is defined twice (first at line 9)");

	/* The [workflow] section. */
	FAILS(BODY, 1, "no [workflow] section");
	FAILS("[workflow]\ncase_type = feedback\ncategories = none\n" BODY, 1, "[workflow] needs 'initial'");
	FAILS("[workflow]\ninitial = a\ncategories = none\n" BODY, 1, "[workflow] needs 'case_type'");
	FAILS("[workflow]\ncase_type = feedback\ninitial = a\n" BODY, 1, "[workflow] needs 'categories'");
	FAILS("[workflow]\ncase_type = complaint\n", 2, "unknown case_type 'complaint'");
	FAILS("[workflow]\ncase_type = feedback\ninitial = z\ncategories = none\n" BODY, 3,
	      "initial state 'z' is not defined");
	FAILS("[workflow]\ncase_type = feedback\ninitial = b\ncategories = none\n" BODY, 3,
	      "initial state 'b' is terminal");
	FAILS("[workflow]\ncase_type = feedback\ninitial = a\ncategories = general, Payment\n" BODY, 4,
	      "bad category name 'Payment'");
	FAILS("[workflow]\ncase_type = feedback\ninitial = a\ncategories = general, "
	      "a_category_name_of_thirty_three_c\n" BODY,
	      4, "bad category name 'a_category_name_of_thirty_three_c'");
	FAILS("[workflow]\ncase_type = feedback\ninitial = a\ncategories = general,,other\n" BODY, 4, "empty item");
	FAILS("[workflow]\ncase_type = feedback\ninitial = a\ncategories = general, general\n" BODY, 4,
	      "lists 'general' twice");
	FAILS("[workflow]\ncase_type = feedback\ninitial = a\ncategories =\n" BODY, 4, "'categories' is empty");
	FAILS("[workflow]\ncase_type = feedback\ninitial = a\ncategories = none, general\n" BODY, 4,
	      "none cannot be combined");
	LOADS("[workflow]\ncase_type = feedback\ninitial = a\ncategories = a_category_name_of_thirty_two_ch\n" BODY);
}

static void test_grievance_keys(void)
{
#define GHEAD "[workflow]\ncase_type = grievance\ninitial = a\ncategories = other, staff_misconduct\n"
	LOADS(GHEAD "duplicate_window_hours = 720\nconfidential_categories = staff_misconduct\n"
		    "confidential_role = auditor\n[state a]\nsla_hours = 10\n[state b]\nterminal = true\n"
		    "[transition go]\nfrom = a\nto = b\nroles = auditor\nactions = close\n");
	FAILS(GHEAD "duplicate_window_hours = 721\n" BODY, 5, "from 0 to 720");
	FAILS(HEAD "duplicate_window_hours = 24\n" BODY, 5, "applies to grievances only");
	FAILS(GHEAD "confidential_categories = payments\nconfidential_role = auditor\n" BODY, 5,
	      "confidential category 'payments' is not one of the categories");
	FAILS(GHEAD "confidential_categories = staff_misconduct\n" BODY, 5, "needs a confidential_role");
	FAILS(GHEAD "confidential_role = auditor\n" BODY, 5, "confidential_role without confidential_categories");
	FAILS(GHEAD "confidential_categories = staff_misconduct\nconfidential_role = system\n" BODY, 6,
	      "unknown role 'system'");
	FAILS(GHEAD "confidential_categories = staff_misconduct\nconfidential_role = chief\n" BODY, 6,
	      "unknown role 'chief' (admin, registrar, case_worker, payment_officer, auditor, support, or none)");
	/* BODY's only transition is for support: the auditor could never finish a confidential case. */
	FAILS(GHEAD "confidential_categories = staff_misconduct\nconfidential_role = auditor\n" BODY, 6,
	      "confidential_role 'auditor' cannot take a confidential case from state 'a'");
#undef GHEAD
}

static void test_teams(void)
{
#define GHEAD "[workflow]\ncase_type = grievance\ninitial = a\ncategories = other, amount_short\n"
	struct loaded l;
	load(&l, (const char *const[]){"w.ini", GHEAD "[teams]\namount_short = payments\ndefault = grievances\n" BODY,
				       NULL});
	const struct wf_def *d = l.set ? wf_find(l.set, "grievance") : NULL;
	HF_CHECK(d && strcmp(wf_team(d, "amount_short"), "payments") == 0);
	HF_CHECK(d && strcmp(wf_team(d, "other"), "grievances") == 0); /* not listed: the default */
	unload(&l);
	load(&l, (const char *const[]){"w.ini", GHEAD BODY, NULL});
	d = l.set ? wf_find(l.set, "grievance") : NULL;
	HF_CHECK(d && wf_team(d, "amount_short") == NULL); /* no [teams]: the case module uses the case type */
	unload(&l);
	FAILS(GHEAD "[teams]\nweather = payments\n" BODY, 6, "'weather' is not one of the categories");
	FAILS(GHEAD "[teams]\nother = a\nother = b\n" BODY, 7, "team of 'other' given twice (first at line 6)");
	FAILS(GHEAD "[teams]\nother = Payments Desk\n" BODY, 6, "a team line is CATEGORY = TEAM");
	FAILS(GHEAD "[teams]\n[teams]\n" BODY, 6, "[teams] appears twice");
#undef GHEAD
}

static void test_state_errors(void)
{
	FAILS(HEAD "[state a]\nsla_hours = 8761\n", 6, "'sla_hours' must be a whole number from 0 to 8760");
	FAILS(HEAD "[state a]\nsla_hours = -1\n", 6, "from 0 to 8760");
	FAILS(HEAD "[state a]\nsla_hours = 1.5\n", 6, "from 0 to 8760");
	FAILS(HEAD "[state a]\nat_risk_percent = 0\n", 6, "'at_risk_percent' must be a whole number from 1 to 99");
	FAILS(HEAD "[state a]\nat_risk_percent = 100\n", 6, "from 1 to 99");
	FAILS(HEAD "[state a]\nterminal = yes\n", 6, "'terminal' must be true or false");
	FAILS(HEAD "[state a]\nescalate_to = boss\n", 6, "unknown role 'boss'");
	FAILS(HEAD "[state a]\nescalate_to = system\n", 6, "unknown role 'system'");
	FAILS(HEAD "[state a]\nescalate_to = registrar\n[state b]\nterminal = true\n", 6, "escalate_to but no SLA");
	FAILS(HEAD "[state a]\nsla_hours = 1\n[state b]\nterminal = true\nsla_hours = 24\n", 9,
	      "terminal state 'b' must have sla_hours = 0");
	FAILS(HEAD "[state a]\nsla_hours = 1\n[state b]\nterminal = true\nsla_hours = 0\nescalate_to = auditor\n", 10,
	      "terminal state 'b' cannot escalate");
	FAILS(HEAD, 1, "no [state NAME] sections");
}

static void test_transition_errors(void)
{
	/* Missing keys, unknown states and roles. */
	FAILS(HEAD "[state a]\n[state b]\nterminal = true\n[transition go]\nto = b\nroles = support\n", 8,
	      "[transition go] needs 'from'");
	FAILS(HEAD "[state a]\n[state b]\nterminal = true\n[transition go]\nfrom = a\nroles = support\n", 8,
	      "[transition go] needs 'to'");
	FAILS(HEAD "[state a]\n[state b]\nterminal = true\n[transition go]\nfrom = a\nto = b\nactions = close\n", 8,
	      "[transition go] needs 'roles'");
	FAILS(HEAD "[state a]\n[state b]\nterminal = true\n[transition go]\nfrom = a, x\nto = b\nroles = support\n"
		   "actions = close\n",
	      9, "unknown state 'x' in 'from'");
	FAILS(HEAD "[state a]\n[state b]\nterminal = true\n[transition go]\nfrom = a\nto = y\nroles = support\n", 10,
	      "unknown state 'y' in 'to'");
	FAILS(HEAD "[state a]\n[state b]\nterminal = true\n[transition go]\nfrom = a\nto = b\nroles = support, clerk\n",
	      11,
	      "'roles': unknown role 'clerk' (admin, registrar, case_worker, payment_officer, auditor, support, or "
	      "system)");
	FAILS(HEAD "[state a]\n[state b]\nterminal = true\n[transition go]\nfrom = a\nto = b\nroles = support\n"
		   "requires = note, signature\n",
	      12, "unknown field 'signature'");
	FAILS(HEAD "[state a]\n[state b]\nterminal = true\n[transition go]\nfrom = a\nto = b\nroles = support\n"
		   "maker_checker = 1\n",
	      12, "'maker_checker' must be true or false");
	FAILS("[workflow]\ncase_type = feedback\ninitial = a\ncategories = none\n" BODY "requires = category\n", 14,
	      "requires a category but the workflow has none");

	/* Terminal states have no way out. */
	FAILS(HEAD BODY "[transition back]\nfrom = b\nto = a\nroles = support\n", 15,
	      "transition 'back' leaves terminal state 'b'");

	/* Actions. */
	FAILS(HEAD "[state a]\n[state b]\nterminal = true\n[transition go]\nfrom = a\nto = b\nroles = support\n"
		   "actions = email:thanks, close\n",
	      12, "unknown action 'email:thanks'");
	FAILS(HEAD "[state a]\n[state b]\nterminal = true\n[transition go]\nfrom = a\nto = b\nroles = support\n"
		   "actions = sms:Thanks, close\n",
	      12, "SMS template name 'Thanks'");
	FAILS(HEAD "[state a]\n[state b]\nterminal = true\n[transition go]\nfrom = a\nto = b\nroles = support\n"
		   "actions = sms:, close\n",
	      12, "SMS template name ''");
	FAILS(HEAD "[state a]\n[state b]\nterminal = true\n[transition go]\nfrom = a\nto = b\nroles = support\n"
		   "actions = assign:boss, close\n",
	      12, "unknown role 'boss' in 'assign:boss'");
	FAILS(HEAD "[state a]\n[state b]\nterminal = true\n[transition go]\nfrom = a\nto = b\nroles = support\n"
		   "actions = assign:team, assign:auditor, close\n",
	      12, "more than one assign action");
	FAILS(HEAD "[state a]\n[state b]\nterminal = true\n[transition go]\nfrom = a\nto = b\nroles = support\n"
		   "actions = apply_change, close\n",
	      12, "apply_change is for change_request workflows only");
	FAILS(HEAD "[state a]\n[state b]\nterminal = true\n[transition go]\nfrom = a\nto = b\nroles = support\n"
		   "actions = eligibility, close\n",
	      12, "eligibility is for application workflows only");
	FAILS("[workflow]\ncase_type = feedback\ninitial = a\ncategories = none\ninitial_actions = eligibility\n" BODY,
	      5, "initial_actions: eligibility is for application workflows only");
	FAILS("[workflow]\ncase_type = feedback\ninitial = a\ncategories = none\ninitial_actions = close\n" BODY, 5,
	      "close belongs only on a transition into a terminal state");
	FAILS(HEAD "[state a]\n[state b]\nterminal = true\n[transition go]\nfrom = a\nto = b\nroles = support\n", 8,
	      "must list the close action");
	FAILS(HEAD BODY "[transition note]\nfrom = a\nto = a\nroles = support\nactions = close\n", 18,
	      "close belongs only on a transition into a terminal state");
	LOADS("[workflow]\ncase_type = change_request\ninitial = a\ncategories = phone\n[state a]\n[state b]\n"
	      "terminal = true\n[transition go]\nfrom = a\nto = b\nroles = registrar\nmaker_checker = true\n"
	      "actions = apply_change, sms:change_request_applied, assign:registrar, close\n");
	LOADS("[workflow]\ncase_type = application\ninitial = a\ncategories = none\ninitial_actions = eligibility\n"
	      "[state a]\n[state b]\nterminal = true\n[transition go]\nfrom = a\nto = b\nroles = registrar\n"
	      "actions = eligibility, close\n");
}

static void test_system_transitions(void)
{
	/* The engine's transition fires on a breach: its states need an SLA, one per state, no escalate_to. */
	LOADS(HEAD BODY "[transition expire]\nfrom = a\nto = b\nroles = system\nrequires = note, reason\n"
			"actions = sms:expired, close\n");
	FAILS(HEAD "[state a]\n[state b]\nterminal = true\n[transition go]\nfrom = a\nto = b\nroles = system\n"
		   "actions = close\n",
	      11, "state 'a' has no SLA");
	FAILS(HEAD BODY "[transition expire]\nfrom = a\nto = b\nroles = system\nactions = close\n"
			"[transition expire2]\nfrom = a\nto = b\nroles = support, system\nactions = close\n",
	      22, "state 'a' already has the breach transition 'expire'");
	FAILS(HEAD "[state a]\nsla_hours = 1\nescalate_to = registrar\n[state b]\nterminal = true\n"
		   "[transition go]\nfrom = a\nto = b\nroles = system\nactions = close\n",
	      7, "state 'a' has both escalate_to and the breach transition 'go'");
	FAILS(HEAD BODY "[transition expire]\nfrom = a\nto = b\nroles = case_worker, system\nmaker_checker = true\n"
			"actions = close\n",
	      18, "maker_checker cannot apply");
	FAILS(HEAD BODY "[transition expire]\nfrom = a\nto = b\nroles = system\nrequires = assignee\nactions = close\n",
	      18, "may require only note and reason");
}

static void test_graph_errors(void)
{
	/* c is never entered. */
	FAILS(HEAD BODY "[state c]\nsla_hours = 5\n[transition c_done]\nfrom = c\nto = b\nroles = support\n"
			"actions = close\n",
	      14, "state 'c' is unreachable from the initial state 'a'");
	/* c is entered but never left; an empty section is still a state. */
	FAILS(HEAD BODY "[transition to_c]\nfrom = a\nto = c\nroles = support\n[state c]\n", 18,
	      "state 'c' is a dead end");
	/* c and d lead to each other only. */
	FAILS(HEAD BODY "[transition to_c]\nfrom = a\nto = c\nroles = support\n[state c]\n[state d]\n"
			"[transition c_d]\nfrom = c\nto = d\nroles = support\n[transition d_c]\nfrom = d\nto = c\n"
			"roles = support\n",
	      18, "state 'c' cannot reach a terminal state (a cycle without exit)");
	/* ...a self-loop is no exit either. */
	FAILS(HEAD BODY "[transition to_c]\nfrom = a\nto = c\nroles = support\n[state c]\n[transition stay]\nfrom = c\n"
			"to = c\nroles = support\n",
	      18, "state 'c' cannot reach a terminal state");
	/* No terminal state at all. */
	FAILS(HEAD "[state a]\n[transition stay]\nfrom = a\nto = a\nroles = support\n", 5,
	      "state 'a' cannot reach a terminal state");
}

static void test_folder(void)
{
	/* Two files for one case type: the second one is named, with the first. */
	struct loaded l;
	load(&l, (const char *const[]){"a.ini", HEAD BODY, "b.ini", HEAD BODY, NULL});
	char want[256];
	snprintf(want, sizeof(want), "%s/b.ini:2: case type 'feedback' is already defined by %s/a.ini", l.dir, l.dir);
	HF_CHECK(l.rc == HF_EINVAL && l.set == NULL);
	HF_CHECK_MSG(strcmp(l.msg, want) == 0, "got: %s", l.msg);
	unload(&l);

	/* Other files are ignored; the grievance file alone offers grievances only. */
	load(&l,
	     (const char *const[]){"README", "not a workflow", ".hidden.ini", "junk", "w.ini~", "junk", "w.ini",
				   "[workflow]\ncase_type = grievance\ninitial = a\ncategories = other\n" BODY, NULL});
	HF_CHECK_MSG(l.rc == HF_OK, "%s", l.msg);
	HF_CHECK(l.set && wf_find(l.set, "grievance") && !wf_find(l.set, "feedback"));
	HF_CHECK(l.set && wf_at(l.set, 0) == wf_find(l.set, "grievance") && wf_at(l.set, 1) == NULL);
	unload(&l);

	/* A folder without workflows, and no folder at all. */
	load(&l, (const char *const[]){"README", "x", NULL});
	HF_CHECK(l.rc == HF_EINVAL && strstr(l.msg, "no workflow files") != NULL);
	unload(&l);
	struct hf_buf err;
	hf_buf_init(&err, 1024);
	struct wf_set *s = NULL;
	HF_CHECK(wf_load_dir("/nonexistent/workflows", roles, &s, &err) == HF_EIO && s == NULL);
	HF_CHECK(strncmp(hf_buf_cstr(&err), "/nonexistent/workflows: cannot open", 35) == 0);
	hf_buf_release(&err);
}

int main(void)
{
	HF_TEST(test_shipped);
	HF_TEST(test_lookups);
	HF_TEST(test_sla);
	HF_TEST(test_minimal_and_syntax_accepted);
	HF_TEST(test_file_errors);
	HF_TEST(test_grievance_keys);
	HF_TEST(test_teams);
	HF_TEST(test_state_errors);
	HF_TEST(test_transition_errors);
	HF_TEST(test_system_transitions);
	HF_TEST(test_graph_errors);
	HF_TEST(test_folder);
	return hf_test_summary();
}
