/* fuzz_eligibility.c - libFuzzer target: eligibility rule files (core/eligibility.c) compiled and evaluated.
 *
 * A rule file is written by hand by programme staff and read by the service at startup; its expressions
 * then run on every application. Neither the INI layer (our line-counting reader around inih), nor the
 * expression parser, nor the evaluator may crash, loop or overflow the stack on any input: a file is
 * refused with "file:line: reason" or compiled, and a compiled file evaluates to a well-formed
 * explanation under any values. Checked as well:
 * - a refusal names the file; an accepted file has 1..64 conditions of at most 1000 characters, and each
 *   tree is shallow (its depth bounded by the nesting cap, whatever the expression's length);
 * - the explanation has one entry per condition; "passed" is null exactly when "error" is set; the
 *   outcome agrees with the conditions; "missing" names only the programme's own variables, each once,
 *   and only when the outcome is needs_review; the JSON serialises (every string in it is valid UTF-8).
 *
 * Input: a whole rule file (for programme FUZZ) when it starts with '[' or ';'; otherwise the input is
 * one expression, placed in a minimal file after "expr = " (so the fuzzer spends its time in the
 * expression grammar). Each compiled file is evaluated four times: with no variables (all missing), with
 * numbers (including 0 and 1e300, for division by zero and overflow), with texts, and with both.
 */
#include "hf_base.h"

#include "../../core/eligibility.c"

#include "hf_crypto.h"
#include "hf_json.h"
#include "hf_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A failed property is a finding, reported as a crash with file:line. */
#define FUZZ_CHECK(expr) HF_ASSERT(expr)

static void setup(void)
{
	static bool done;
	if (done)
		return;
	done = true;
	HF_ASSERT(hf_crypto_init() == HF_OK);
	hf_log_set_filter("fuzz.silent");
}

static unsigned tree_depth(const struct cond *c, uint32_t i)
{
	const struct node *n = &c->nodes[i];
	if (n->op == OP_NUM || n->op == OP_STR || n->op == OP_VAR)
		return 1;
	unsigned deepest = 0;
	for (uint32_t k = n->first; k != NIL; k = c->nodes[k].next) {
		unsigned d = tree_depth(c, k);
		if (d > deepest)
			deepest = d;
	}
	return deepest + 1;
}

/* Values for the programme's own variables, chosen by position so that a finding reproduces from the
 * input alone. variant 0: none; 1: numbers; 2: texts; 3: both, alternating. */
static struct elig_vars *vars_for(const struct prog *g, unsigned variant)
{
	static const double nums[] = {0, 1, 70, -2.5, 1e300, 5};
	static const char *const texts[] = {"female", "male", "", "Kisum\xc3\xba"};
	struct elig_vars *v = elig_vars_new();
	for (size_t i = 0; variant > 0 && i < g->nvars && i < ELIG_VARS_MAX; i++) {
		bool text = variant == 2 || (variant == 3 && i % 2 == 1);
		hf_err e = text ? elig_vars_str(v, g->vars[i], texts[i % HF_ARRAY_LEN(texts)])
				: elig_vars_num(v, g->vars[i], nums[i % HF_ARRAY_LEN(nums)]);
		FUZZ_CHECK(e == HF_OK);
	}
	return v;
}

static bool is_programme_var(const struct prog *g, const char *name)
{
	for (size_t i = 0; i < g->nvars; i++)
		if (strcmp(g->vars[i], name) == 0)
			return true;
	return false;
}

static void check_explanation(const struct prog *g, enum elig_outcome o, json_t *r)
{
	FUZZ_CHECK(json_is_object(r));
	json_t *conds = json_object_get(r, "conditions"), *missing = json_object_get(r, "missing");
	FUZZ_CHECK(json_is_array(conds) && json_array_size(conds) == g->nconds);
	FUZZ_CHECK(json_is_array(missing) && json_array_size(missing) <= g->nvars);
	bool any_undecided = false, all_passed = true;
	for (size_t i = 0; i < g->nconds; i++) {
		json_t *c = json_array_get(conds, i);
		json_t *passed = json_object_get(c, "passed"), *error = json_object_get(c, "error");
		FUZZ_CHECK(json_is_string(json_object_get(c, "name")) && json_is_string(json_object_get(c, "expr")));
		FUZZ_CHECK(json_is_boolean(passed) || json_is_null(passed));
		if (json_is_null(passed)) {
			FUZZ_CHECK(json_is_string(error) && json_string_length(error) > 0);
			any_undecided = true;
		} else {
			FUZZ_CHECK(json_is_null(error));
			all_passed = all_passed && json_is_true(passed);
		}
		json_t *value = json_object_get(c, "value");
		FUZZ_CHECK(json_is_null(value) || json_is_number(value) || json_is_string(value));
	}
	for (size_t i = 0; i < json_array_size(missing); i++) {
		const char *name = json_string_value(json_array_get(missing, i));
		FUZZ_CHECK(name && is_programme_var(g, name));
		for (size_t j = 0; j < i; j++)
			FUZZ_CHECK(strcmp(name, json_string_value(json_array_get(missing, j))) != 0);
	}
	enum elig_outcome want = any_undecided ? ELIG_NEEDS_REVIEW : all_passed ? ELIG_ELIGIBLE : ELIG_NOT_ELIGIBLE;
	FUZZ_CHECK(o == want);
	FUZZ_CHECK(json_array_size(missing) == 0 || o == ELIG_NEEDS_REVIEW);
	FUZZ_CHECK(strcmp(json_string_value(json_object_get(r, "outcome")), elig_outcome_name(o)) == 0);
	FUZZ_CHECK(strlen(json_string_value(json_object_get(r, "rules_version"))) == 16);
	struct hf_buf d;
	hf_buf_init(&d, 1u << 22);
	FUZZ_CHECK(hf_json_dump(r, &d) == HF_OK);
	hf_buf_release(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup();
	struct hf_buf text;
	hf_buf_init(&text, size + 256);
	if (size > 0 && (data[0] == '[' || data[0] == ';')) {
		FUZZ_CHECK(hf_buf_append(&text, data, size) == HF_OK);
	} else {
		FUZZ_CHECK(hf_buf_append_str(&text, "[programme]\ncode = FUZZ\n[condition c]\nexpr = ") == HF_OK);
		FUZZ_CHECK(hf_buf_append(&text, data, size) == HF_OK);
		FUZZ_CHECK(hf_buf_append_str(&text, "\nexplain = the fuzzed condition\n") == HF_OK);
	}
	struct hf_buf err;
	hf_buf_init(&err, 2048);
	struct prog *g = NULL;
	hf_err e = prog_parse("FUZZ.ini", "FUZZ", text.data, text.len, &g, &err);
	if (e) {
		FUZZ_CHECK(e == HF_EINVAL && g == NULL && strncmp(hf_buf_cstr(&err), "FUZZ.ini", 8) == 0);
	} else {
		FUZZ_CHECK(g != NULL && err.len == 0 && g->nconds >= 1 && g->nconds <= ELIG_CONDITIONS_MAX);
		FUZZ_CHECK(strcmp(g->code, "FUZZ") == 0);
		for (size_t i = 0; i < g->nconds; i++) {
			FUZZ_CHECK(strlen(g->conds[i].expr) <= ELIG_EXPR_MAX);
			FUZZ_CHECK(tree_depth(&g->conds[i], g->conds[i].root) <= 7 * (ELIG_DEPTH_MAX + 1));
		}
		struct prog *arr[1] = {g};
		struct elig_set set = {arr, 1};
		for (unsigned variant = 0; variant < 4; variant++) {
			struct elig_vars *v = vars_for(g, variant);
			enum elig_outcome o;
			json_t *r = NULL;
			FUZZ_CHECK(elig_evaluate(&set, "FUZZ", v, &o, &r) == HF_OK && r != NULL);
			check_explanation(g, o, r);
			json_decref(r);
			elig_vars_free(v);
		}
		prog_free(g);
	}
	hf_buf_release(&err);
	hf_buf_release(&text);
	return 0;
}
