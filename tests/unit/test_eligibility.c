/* test_eligibility.c - the eligibility rule language: grammar, load-time errors, evaluation, explanations.
 *
 * A rule file decides whether a household gets a transfer. These tests pin what a rule author writes
 * and sees (every refusal with its file:line and column), what a reviewer reads (the explanation JSON)
 * and the promises the case module relies on: a missing variable or a division by zero sends the case to
 * review instead of deciding it, and the shipped example rules load and decide as documented.
 */
#include "hf_base.h"

#include "../../core/eligibility.c"

#include "hf_crypto.h"
#include "hf_test.h"

#include <string.h>

#define HEAD "[programme]\ncode = TEST\n"

static char tmpdir[64];

/* Compiles text as the rule file TEST.ini; on failure returns NULL with the message in msg. */
static struct prog *compile(const char *text, char *msg, size_t msg_size)
{
	struct hf_buf err;
	hf_buf_init(&err, 1024);
	struct prog *g = NULL;
	hf_err e = prog_parse("TEST.ini", "TEST", text, strlen(text), &g, &err);
	if (msg)
		hf_strlcpy(msg, hf_buf_cstr(&err), msg_size);
	HF_CHECK_MSG((e == HF_OK) == (g != NULL) && (e == HF_OK) == (err.len == 0), "e=%d err=%s", (int)e,
		     hf_buf_cstr(&err));
	hf_buf_release(&err);
	return g;
}

/* Expects text to be refused with "TEST.ini:<line>: " (line 0: "TEST.ini: ") and a message containing
 * needle. */
static bool refused_at(const char *text, int line, const char *needle)
{
	char msg[1024], want[64];
	struct prog *g = compile(text, msg, sizeof(msg));
	if (g) {
		prog_free(g);
		return HF_CHECK_MSG(false, "accepted, expected an error at line %d: %s", line, text);
	}
	if (line > 0)
		snprintf(want, sizeof(want), "TEST.ini:%d: ", line);
	else
		snprintf(want, sizeof(want), "TEST.ini: ");
	return HF_CHECK_MSG(strncmp(msg, want, strlen(want)) == 0 && strstr(msg, needle) != NULL,
			    "got '%s', expected '%s...%s'", msg, want, needle);
}

/* One condition with expr on line 4: expects "TEST.ini:4: expr column <col>: ...needle...". */
static bool expr_refused(const char *expr, unsigned col, const char *needle)
{
	char text[4096], want[64];
	snprintf(text, sizeof(text), HEAD "[condition c]\nexpr = %s\nexplain = x\n", expr);
	snprintf(want, sizeof(want), "expr column %u: ", col);
	char msg[1024];
	struct prog *g = compile(text, msg, sizeof(msg));
	if (g) {
		prog_free(g);
		return HF_CHECK_MSG(false, "accepted: %s", expr);
	}
	return HF_CHECK_MSG(strncmp(msg, "TEST.ini:4: ", 12) == 0 && strncmp(msg + 12, want, strlen(want)) == 0 &&
				    strstr(msg, needle) != NULL,
			    "expr %s: got '%s', expected column %u and '%s'", expr, msg, col, needle);
}

/* Evaluates the compiled file text on vars (may be NULL: none); returns the explanation (owned) or NULL. */
static json_t *evaluate_text(const char *text, const struct elig_vars *vars, enum elig_outcome *outcome)
{
	char msg[1024];
	struct prog *g = compile(text, msg, sizeof(msg));
	if (!HF_CHECK_MSG(g != NULL, "%s", msg))
		return NULL;
	struct prog *arr[1] = {g};
	struct elig_set s = {arr, 1};
	json_t *out = NULL;
	hf_err e = elig_evaluate(&s, "TEST", vars, outcome, &out);
	HF_CHECK(e == HF_OK && out != NULL);
	prog_free(g);
	return out;
}

/* Evaluates a one-condition file with expr; returns the condition's explanation object's JSON (owned). */
static json_t *evaluate_expr(const char *expr, const struct elig_vars *vars, enum elig_outcome *outcome)
{
	char text[4096];
	snprintf(text, sizeof(text), HEAD "[condition c]\nexpr = %s\nexplain = the test condition\n", expr);
	return evaluate_text(text, vars, outcome);
}

static const struct elig_vars *g_vars; /* the variables holds() and value_of() evaluate with */

/* 1 when the condition holds, 0 when not, -1 when undecided, -2 when it did not compile. */
static int holds(const char *expr)
{
	enum elig_outcome o;
	json_t *r = evaluate_expr(expr, g_vars, &o);
	if (!r)
		return -2;
	int res = o == ELIG_ELIGIBLE ? 1 : o == ELIG_NOT_ELIGIBLE ? 0 : -1;
	json_decref(r);
	return res;
}

/* The value of arithmetic (through "(arith) == 0"); NAN when undecided or refused. */
static double value_of(const char *arith)
{
	char expr[2048];
	snprintf(expr, sizeof(expr), "(%s) == 0", arith);
	enum elig_outcome o;
	json_t *r = evaluate_expr(expr, g_vars, &o);
	if (!r)
		return NAN;
	json_t *v = json_object_get(json_array_get(json_object_get(r, "conditions"), 0), "value");
	double d = json_is_number(v) ? json_number_value(v) : NAN;
	json_decref(r);
	return d;
}

static struct elig_vars *vars_household(void)
{
	struct elig_vars *v = elig_vars_new();
	HF_CHECK(elig_vars_num(v, "age_of_head", 72) == HF_OK);
	HF_CHECK(elig_vars_num(v, "household_size", 5) == HF_OK);
	HF_CHECK(elig_vars_num(v, "zero", 0) == HF_OK);
	HF_CHECK(elig_vars_str(v, "sex_of_head", "female") == HF_OK);
	HF_CHECK(elig_vars_str(v, "district", "Kibra") == HF_OK);
	HF_CHECK(elig_vars_num(v, "huge", 1e300) == HF_OK);
	return v;
}

static void test_arithmetic(void)
{
	struct elig_vars *v = vars_household();
	g_vars = v;
	HF_CHECK(value_of("1 + 2 * 3") == 7);
	HF_CHECK(value_of("(1 + 2) * 3") == 9);
	HF_CHECK(value_of("10 - 4 - 3") == 3);   /* left to right */
	HF_CHECK(value_of("12 / 3 / 2") == 2);
	HF_CHECK(value_of("2 * 3 - 8 / 4 + 1") == 5);
	HF_CHECK(value_of("-2 * 3") == -6);
	HF_CHECK(value_of("- -2") == 2);
	HF_CHECK(value_of("2 * -3") == -6);
	HF_CHECK(value_of("-(1 + 2) * 2") == -6);
	HF_CHECK(value_of("1 - -1") == 2);
	HF_CHECK(value_of("0.5 + 0.25") == 0.75);
	HF_CHECK(value_of("2.1 * household_size") == 2.1 * 5);
	HF_CHECK(value_of("age_of_head - household_size * 2") == 62);
	HF_CHECK(value_of("((((household_size))))") == 5);
	HF_CHECK(value_of("007") == 7);
	HF_CHECK(value_of("123456789012345") == 123456789012345.0);
	/* booleans are 1/0 numbers */
	HF_CHECK(value_of("2 * (3 > 1) + (1 > 3)") == 2);
	HF_CHECK(value_of("1.5 * (sex_of_head in [\"female\"])") == 1.5);
	/* functions */
	HF_CHECK(value_of("min(3, 1, 2)") == 1);
	HF_CHECK(value_of("max(3, 1, 2)") == 3);
	HF_CHECK(value_of("abs(-4)") == 4);
	HF_CHECK(value_of("abs(4 - 10) + min(household_size, 2) * max(1, 2)") == 10);
	HF_CHECK(value_of("min(abs(-5), 2 * 3)") == 5);
	HF_CHECK(value_of("max(age_of_head >= 70, 0)") == 1);
	g_vars = NULL;
	elig_vars_free(v);
}

static void test_logic(void)
{
	struct elig_vars *v = vars_household();
	g_vars = v;
	HF_CHECK(holds("age_of_head >= 70") == 1);
	HF_CHECK(holds("age_of_head > 72") == 0);
	HF_CHECK(holds("age_of_head <= 72") == 1);
	HF_CHECK(holds("age_of_head < 72") == 0);
	HF_CHECK(holds("age_of_head == 72") == 1);
	HF_CHECK(holds("age_of_head != 72") == 0);
	HF_CHECK(holds("1 < 2 and 3 < 4") == 1);
	HF_CHECK(holds("1 < 2 and 3 > 4") == 0);
	HF_CHECK(holds("1 > 2 or 3 < 4") == 1);
	/* and binds tighter than or: true or (false and false) */
	HF_CHECK(holds("1 > 0 or 1 > 2 and 1 > 2") == 1);
	HF_CHECK(holds("(1 > 0 or 1 > 2) and 1 > 2") == 0);
	/* not binds tighter than and/or, looser than comparisons */
	HF_CHECK(holds("not 1 > 2") == 1);
	HF_CHECK(holds("not 1 < 2 or 1 < 2") == 1);
	HF_CHECK(holds("not (1 < 2 or 1 < 2)") == 0);
	HF_CHECK(holds("not not age_of_head >= 70") == 1);
	HF_CHECK(holds("age_of_head >= 70 and household_size >= 3 and not sex_of_head == \"male\"") == 1);
	/* texts */
	HF_CHECK(holds("sex_of_head == \"female\"") == 1);
	HF_CHECK(holds("sex_of_head != \"female\"") == 0);
	HF_CHECK(holds("sex_of_head == \"Female\"") == 0); /* exact, byte for byte */
	HF_CHECK(holds("sex_of_head in [\"female\", \"male\"]") == 1);
	HF_CHECK(holds("district in [\"Kisumu\", \"Mathare\"]") == 0);
	HF_CHECK(holds("not district in [\"Kisumu\"]") == 1);
	HF_CHECK(holds("district in [\"Kibra\"] and age_of_head >= 70") == 1);
	HF_CHECK(holds("\"a\" in [\"b\", \"a\"]") == 1);
	HF_CHECK(holds("district in [\"Kibra\"\t,\"x\"]") == 1);
	/* exact double comparison, as documented */
	HF_CHECK(holds("0.1 + 0.2 == 0.3") == 0);
	HF_CHECK(holds("0.5 + 0.25 == 0.75") == 1);
	g_vars = NULL;
	elig_vars_free(v);
}

static void test_expression_errors(void)
{
	HF_CHECK(expr_refused("age_of_head >=", 15, "expected a number, a name"));
	HF_CHECK(expr_refused("(age_of_head >= 70", 19, "expected ')' but found the end"));
	HF_CHECK(expr_refused("age_of_head >= 70)", 18, "expected an operator"));
	HF_CHECK(expr_refused("age_of_head >= 70 70", 19, "found '70'"));
	HF_CHECK(expr_refused("age_of_head = 70", 13, "compare with =="));
	HF_CHECK(expr_refused("age_of_head ! 70", 13, "write != or not"));
	HF_CHECK(expr_refused("a > 1 && b > 1", 7, "write and"));
	HF_CHECK(expr_refused("a > 1 || b > 1", 7, "write or"));
	HF_CHECK(expr_refused("Age >= 70", 1, "lower case"));
	HF_CHECK(expr_refused("ageOf >= 70", 1, "lower case"));
	HF_CHECK(expr_refused("a_name_that_is_much_longer_than_32 >= 1", 1, "at most 32 characters"));
	HF_CHECK(expr_refused("sqrt(x) > 1", 1, "unknown function 'sqrt'"));
	HF_CHECK(expr_refused("min > 1", 1, "'min' is a function"));
	HF_CHECK(expr_refused("abs(1, 2) > 1", 1, "abs takes exactly 1 argument"));
	HF_CHECK(expr_refused("min(1) > 1", 1, "min takes 2 or more"));
	HF_CHECK(expr_refused("max(1 2) > 1", 7, "expected ',' or ')'"));
	HF_CHECK(expr_refused("1 < x < 3", 7, "do not chain"));
	HF_CHECK(expr_refused("x == 1 in [\"a\"]", 8, "do not chain"));
	HF_CHECK(expr_refused("household_size * 2", 1, "a condition must be a comparison"));
	HF_CHECK(expr_refused("has_electricity", 1, "a condition must be a comparison"));
	HF_CHECK(expr_refused("x > 1 and has_electricity", 11, "'and' combines conditions"));
	HF_CHECK(expr_refused("has_electricity or x > 1", 1, "'or' combines conditions"));
	HF_CHECK(expr_refused("not has_electricity", 5, "'not' combines conditions"));
	HF_CHECK(expr_refused("\"female\" + 1 > 2", 1, "cannot be used as a number"));
	HF_CHECK(expr_refused("x > \"a\"", 5, "cannot be used as a number"));
	HF_CHECK(expr_refused("x == 1 + \"a\"", 10, "cannot be used as a number"));
	HF_CHECK(expr_refused("\"a\" == 1", 5, "compares text with a number"));
	HF_CHECK(expr_refused("1 + 1 in [\"a\"]", 1, "'in' needs text on its left"));
	HF_CHECK(expr_refused("x in []", 7, "the list after 'in' is empty"));
	HF_CHECK(expr_refused("x in [1, 2]", 7, "texts"));
	HF_CHECK(expr_refused("x in \"a\"", 6, "expected '[' after in"));
	HF_CHECK(expr_refused("x in [\"a\" \"b\"]", 11, "expected ',' or ']'"));
	HF_CHECK(expr_refused("x in [\"a\",]", 11, "a text in double quotes"));
	HF_CHECK(expr_refused("x not in [\"a\"]", 3, "to negate, write not (x in"));
	HF_CHECK(expr_refused("x == \"open", 6, "not closed"));
	HF_CHECK(expr_refused("x == \"a\tb\"", 6, "without control characters"));
	HF_CHECK(expr_refused("x > 1234567890123456", 5, "at most 15 digits"));
	HF_CHECK(expr_refused("x > 1.", 7, "digit after the decimal point"));
	HF_CHECK(expr_refused("x > 1.2.3", 8, "one decimal point"));
	HF_CHECK(expr_refused("x > .5", 5, "write 0.5"));
	HF_CHECK(expr_refused("x > 2x", 6, "write 2*x"));
	HF_CHECK(expr_refused("x > 1;comment", 6, "comments go on a line of their own"));
	HF_CHECK(expr_refused("x > 1 % 2", 7, "unexpected character '%'"));
	HF_CHECK(expr_refused("x > \xc3\xa9", 5, "unexpected byte 0xc3"));
	HF_CHECK(expr_refused("x > (", 6, "found the end of the expression"));
	HF_CHECK(expr_refused("x > ()", 6, "found ')'"));
	HF_CHECK(expr_refused("and > 1", 1, "expected a number, a name"));
	/* Text inside quotes may hold any printable UTF-8, including what would be a syntax error outside. */
	char msg[256];
	struct prog *g = compile(HEAD "[condition c]\nexpr = x in [\"Mathare (north) + 2\", \"Kisum\xc3\xba\"]\n"
				      "explain = y\n",
				 msg, sizeof(msg));
	HF_CHECK_MSG(g != NULL, "%s", msg);
	prog_free(g);
}

static void test_file_errors(void)
{
	HF_CHECK(refused_at("", 0, "no [programme] section"));
	HF_CHECK(refused_at("; only a comment\n", 0, "no [programme] section"));
	HF_CHECK(refused_at(HEAD, 0, "no [condition NAME] section"));
	HF_CHECK(refused_at("code = TEST\n", 1, "outside a section"));
	HF_CHECK(refused_at("[programme]\n", 1, "[programme] has no code"));
	HF_CHECK(refused_at("[programme]\ncode = OTHER\n[condition a]\nexpr = x > 1\nexplain = y\n", 2,
			    "code OTHER does not match the file name TEST.ini"));
	HF_CHECK(refused_at("[programme]\ncode = te st\n", 2, "is not a programme code"));
	HF_CHECK(refused_at(HEAD "[programme]\n", 3, "a second [programme] section"));
	HF_CHECK(refused_at(HEAD "name = Test\n", 3, "unknown key 'name' in [programme]: expected code"));
	HF_CHECK(refused_at(HEAD "code = TEST\n", 3, "code is set twice (first on line 2)"));
	HF_CHECK(refused_at(HEAD "[rules]\n", 3, "unknown section [rules]"));
	HF_CHECK(refused_at(HEAD "[condition]\n", 3, "a condition needs a name"));
	HF_CHECK(refused_at(HEAD "[condition Age]\n", 3, "condition name 'Age' must be"));
	HF_CHECK(refused_at(HEAD "[condition a b]\n", 3, "condition name 'a b' must be"));
	HF_CHECK(refused_at(HEAD "[condition a\nexpr = x > 1\n", 3, "without ']'"));
	HF_CHECK(refused_at(HEAD "[condition a]\n", 3, "condition 'a' has no expr"));
	HF_CHECK(refused_at(HEAD "[condition a]\nexpr = x > 1\n", 3, "condition 'a' has no explain"));
	HF_CHECK(refused_at(HEAD "[condition a]\nexpr = x > 1\n[condition b]\nexpr = x > 2\nexplain = z\n", 3,
			    "condition 'a' has no explain"));
	HF_CHECK(refused_at(HEAD "[condition a]\nexpr = x > 1\nexplain = y\n[condition a]\n", 6,
			    "a second condition named 'a'"));
	HF_CHECK(refused_at(HEAD "[condition a]\nexpr = x > 1\nexpr = x > 2\n", 5,
			    "expr is set twice (first on line 4)"));
	HF_CHECK(refused_at(HEAD "[condition a]\nexpr = x > 1\nexplain = y\nweight = 2\n", 6,
			    "unknown key 'weight' in [condition ...]: expected expr and explain"));
	HF_CHECK(refused_at(HEAD "[condition a]\nexpr = x > 1\nexplain =\n", 5, "explain must be non-empty"));
	HF_CHECK(refused_at(HEAD "[condition a]\nexpr = x > 1\nexplain = y\nthis line has no equals sign\n", 6,
			    "syntax error"));
	HF_CHECK(refused_at(HEAD "[condition a]\nexpr =\nexplain = y\n", 4, "expr column 1: the expression is empty"));
	HF_CHECK(refused_at(HEAD "[condition a]\n  [condition b]\n", 4, "must start at the beginning of the line"));
	HF_CHECK(refused_at(HEAD "  more\n", 3, "code must be on one line"));
	HF_CHECK(refused_at(HEAD "[condition a]\nexpr = x > 1\nexplain = y\n  [condition b]\nexpr = x > 2\n"
				 "explain = z\n",
			    6,
			    "this line is indented, so it continues explain"));
	HF_CHECK(refused_at(HEAD "[condition a]\nexplain = y\nexpr = x > 1\n  [condition b]\nexpr = x > 2\n"
				 "explain = z\n",
			    6,
			    "this line is indented, so it continues expr"));
	HF_CHECK(refused_at(HEAD "[condition a]\nexpr = x > 1\n  explain = y\n", 5, "this line is indented"));
	HF_CHECK(refused_at(HEAD "[condition a]\nexpr = x > 1\nexplain = y\n\x01\n", 6, "syntax error"));
	/* the first error in the file is the one reported */
	HF_CHECK(refused_at(HEAD "[condition a]\nexpr = x >\nexplain = y\nbad line\n", 4, "expr column 4"));
	HF_CHECK(refused_at(HEAD "bad line\n[condition a]\nexpr = x >\nexplain = y\n", 3, "syntax error"));
	/* a NUL byte cuts nothing silently */
	static const char nul[] = HEAD "[condition a]\nexpr = x > 1\0 or y > 1\nexplain = y\n";
	char msg[512];
	struct hf_buf err;
	hf_buf_init(&err, 512);
	struct prog *g = NULL;
	HF_CHECK(prog_parse("TEST.ini", "TEST", nul, sizeof(nul) - 1, &g, &err) == HF_EINVAL && g == NULL);
	hf_strlcpy(msg, hf_buf_cstr(&err), sizeof(msg));
	HF_CHECK_MSG(strcmp(msg, "TEST.ini:4: the line contains a NUL byte") == 0, "%s", msg);
	hf_buf_release(&err);
	/* CRLF line ends, a BOM, comments and blank lines are fine */
	g = compile("\xEF\xBB\xBF; rules\r\n[programme]\r\ncode = TEST\r\n\r\n# hash comment\r\n[condition a]\r\n"
		    "expr = x > 1 ; inline comment after a space\r\nexplain = y\r\n",
		    msg, sizeof(msg));
	HF_CHECK_MSG(g != NULL && g->nconds == 1 && strcmp(g->conds[0].expr, "x > 1") == 0, "%s", msg);
	prog_free(g);
}

/* A file whose one expression is continued over lines: errors name the line and the column on it. */
static void test_continuation_lines(void)
{
	char msg[512];
	struct prog *g = compile(HEAD "[condition pmt]\nexpr = 2.1*household_size\n"
				      "\t- 3.5*owns_livestock\n"
				      "  ; a comment line inside is skipped\n"
				      "\t- 4.0*has_iron_roof >= 5\n"
				      "explain = a score\n",
				 msg, sizeof(msg));
	HF_CHECK_MSG(g != NULL, "%s", msg);
	if (g) {
		HF_CHECK(strcmp(g->conds[0].expr,
				"2.1*household_size - 3.5*owns_livestock - 4.0*has_iron_roof >= 5") == 0);
		HF_CHECK(g->nvars == 3 && strcmp(g->vars[2], "has_iron_roof") == 0);
	}
	prog_free(g);
	HF_CHECK(refused_at(HEAD "[condition pmt]\nexpr = 2.1*household_size\n\t- 3.5*owns livestock\n"
				 "\t- 4.0 >= 5\nexplain = x\n",
			    5, "expr column 12: expected an operator"));
	HF_CHECK(refused_at(HEAD "[condition pmt]\nexpr = 2.1*household_size\n\t- 3.5*owns_livestock\n\t- 4.0 >=\n"
				 "explain = x\n",
			    6, "expr column 9: expected a number"));
	/* an empty first line, the expression below it; a list on a line of its own */
	g = compile(HEAD "[condition c]\nexpr =\n    sex_of_head in\n    [\"female\",\n     \"male\"]\n"
			 "explain = x\n",
		    msg, sizeof(msg));
	HF_CHECK_MSG(g != NULL && strcmp(g->conds[0].expr, "sex_of_head in [\"female\", \"male\"]") == 0, "%s", msg);
	prog_free(g);
	HF_CHECK(refused_at(HEAD "[condition c]\nexpr =\n    sex_of_head in\n    [\"female\" x]\nexplain = x\n", 6,
			    "expr column 11: expected ',' or ']'"));
	/* explain may continue too */
	g = compile(HEAD "[condition c]\nexpr = x > 1\nexplain = a long\n  sentence\n", msg, sizeof(msg));
	HF_CHECK_MSG(g != NULL && strcmp(g->conds[0].explain, "a long sentence") == 0, "%s", msg);
	prog_free(g);
}

static void test_limits(void)
{
	char msg[512];
	/* expression length: exactly 1000 characters over continuation lines is fine, 1001 is not. The joined
	 * text is "0", then per line " +<spaces>0", then " == 0". */
	for (int total = 1000; total <= 1001; total++) {
		struct hf_buf t;
		hf_buf_init(&t, 8192);
		HF_CHECK(hf_buf_append_str(&t, HEAD "[condition long]\nexpr = 0") == HF_OK);
		int remaining = total - 1 - 5;
		while (remaining > 0) {
			int chunk = remaining > 153 ? 150 : remaining; /* at least 3: " +0" */
			HF_CHECK(hf_buf_appendf(&t, "\n\t+%*s0", chunk - 3, "") == HF_OK);
			remaining -= chunk;
		}
		HF_CHECK(hf_buf_append_str(&t, "\n\t== 0\nexplain = x\n") == HF_OK);
		struct prog *g = compile(hf_buf_cstr(&t), msg, sizeof(msg));
		if (total == 1000)
			HF_CHECK_MSG(g != NULL && strlen(g->conds[0].expr) == 1000, "%s", msg);
		else
			HF_CHECK_MSG(g == NULL && strstr(msg, "expr is longer than 1000 characters"), "%s", msg);
		prog_free(g);
		hf_buf_release(&t);
	}
	/* nesting: 32 levels of parentheses are fine, 33 are not; not and unary minus count too */
	for (int depth = 32; depth <= 33; depth++) {
		char expr[256] = "";
		size_t o = 0;
		for (int i = 0; i < depth; i++)
			expr[o++] = '(';
		expr[o++] = '1';
		for (int i = 0; i < depth; i++)
			expr[o++] = ')';
		memcpy(expr + o, " > 0", 5);
		if (depth == 32)
			HF_CHECK(holds(expr) == 1);
		else
			HF_CHECK(expr_refused(expr, 33, "nested more than 32 levels deep"));
	}
	char deep[256] = "";
	for (int i = 0; i < 33; i++)
		memcpy(deep + 4 * i, "not ", 4);
	memcpy(deep + 4 * 33, "1 > 0", 6);
	HF_CHECK(expr_refused(deep, 129, "nested more than 32"));
	memset(deep, 0, sizeof(deep));
	memcpy(deep, "1 > ", 4);
	memset(deep + 4, '-', 33);
	memcpy(deep + 37, "1", 2);
	HF_CHECK(expr_refused(deep, 37, "nested more than 32"));
	/* function calls nest too: 33 calls of min over three lines, the 33rd is the 11th on line 7 */
	struct hf_buf t;
	hf_buf_init(&t, 8192);
	HF_CHECK(hf_buf_append_str(&t, HEAD "[condition c]\nexpr =") == HF_OK);
	for (int i = 0; i < 33; i++)
		HF_CHECK(hf_buf_append_str(&t, i % 11 == 0 ? "\n  min(1," : " min(1,") == HF_OK);
	HF_CHECK(hf_buf_append_str(&t, "\n  2))))))))))))))))))))))))))))))))) > 0\nexplain = x\n") == HF_OK);
	HF_CHECK(refused_at(hf_buf_cstr(&t), 7, "expr column 71: nested more than 32"));
	hf_buf_release(&t);
	/* a long flat sum is not nesting: 300 terms evaluate with a shallow tree */
	hf_buf_init(&t, 8192);
	HF_CHECK(hf_buf_append_str(&t, HEAD "[condition flat]\nexpr = 1") == HF_OK);
	for (int i = 1; i < 300; i++)
		HF_CHECK(hf_buf_append_str(&t, i % 40 ? "+1" : "\n +1") == HF_OK);
	HF_CHECK(hf_buf_append_str(&t, " == 300\nexplain = x\n") == HF_OK);
	enum elig_outcome o;
	json_t *r = evaluate_text(hf_buf_cstr(&t), NULL, &o);
	HF_CHECK(r && o == ELIG_ELIGIBLE);
	json_decref(r);
	hf_buf_release(&t);
	/* conditions: 64 are fine, the 65th is refused at its header */
	for (int n = 64; n <= 65; n++) {
		hf_buf_init(&t, 16384);
		HF_CHECK(hf_buf_append_str(&t, HEAD) == HF_OK);
		for (int i = 0; i < n; i++)
			HF_CHECK(hf_buf_appendf(&t, "[condition c%d]\nexpr = x > %d\nexplain = x\n", i, i) == HF_OK);
		struct prog *g = compile(hf_buf_cstr(&t), msg, sizeof(msg));
		if (n == 64)
			HF_CHECK_MSG(g != NULL && g->nconds == 64, "%s", msg);
		else
			HF_CHECK_MSG(g == NULL && strcmp(msg, "TEST.ini:195: more than 64 conditions") == 0, "%s", msg);
		prog_free(g);
		hf_buf_release(&t);
	}
	/* lines: inih's buffer holds 198 characters; a longer line is refused, never split */
	char line[400];
	memset(line, ' ', sizeof(line));
	memcpy(line, "expr = x > 1", 12);
	line[198] = '\0';
	char text[2048];
	snprintf(text, sizeof(text), HEAD "[condition c]\n%s\nexplain = x\n", line);
	struct prog *g = compile(text, msg, sizeof(msg));
	HF_CHECK_MSG(g != NULL, "%s", msg);
	prog_free(g);
	line[198] = ' ';
	line[199] = '\0';
	snprintf(text, sizeof(text), HEAD "[condition c]\n%s\nexplain = x\n", line);
	HF_CHECK(refused_at(text, 4, "line longer than 198 characters"));
	/* explain and text literals */
	memset(line, 'a', sizeof(line));
	line[150] = '\0';
	snprintf(text, sizeof(text), HEAD "[condition c]\nexpr = x > 1\nexplain = %s\n  %s\n  %s\n  %s\n", line, line,
		 line, line);
	HF_CHECK(refused_at(text, 8, "explain is longer than 500 characters"));
	line[120] = '\0';
	snprintf(text, sizeof(text), HEAD "[condition c]\nexpr = x == \"%s\n  %s\"\nexplain = x\n", line, line);
	HF_CHECK(refused_at(text, 4, "expr column 6: a text in double quotes is at most 200 bytes"));
}

/* The explanation a reviewer reads for the three outcomes. */
static void test_explanation(void)
{
	static const char rules[] = HEAD "[condition age]\nexpr = age_of_head >= 70\n"
					 "explain = the head is 70 or older\n"
					 "[condition pmt]\nexpr = 2.1*household_size - 4.0*has_iron_roof >= 5\n"
					 "explain = proxy means test score of at least 5\n";
	struct elig_vars *v = elig_vars_new();
	HF_CHECK(elig_vars_num(v, "age_of_head", 72) == HF_OK);
	HF_CHECK(elig_vars_num(v, "household_size", 3) == HF_OK);
	HF_CHECK(elig_vars_num(v, "has_iron_roof", 0) == HF_OK);
	HF_CHECK(elig_vars_str(v, "unused", "anything") == HF_OK);
	enum elig_outcome o = ELIG_NEEDS_REVIEW;
	json_t *r = evaluate_text(rules, v, &o);
	struct hf_buf dump;
	hf_buf_init(&dump, 8192);
	HF_CHECK(r && hf_json_dump(r, &dump) == HF_OK);
	uint8_t digest[32];
	char version[17];
	hf_sha256(rules, strlen(rules), digest);
	hf_hex(digest, 8, version);
	char want[2048];
	snprintf(want, sizeof(want),
		 "{\"programme\":\"TEST\",\"outcome\":\"eligible\",\"conditions\":["
		 "{\"name\":\"age\",\"expr\":\"age_of_head >= 70\",\"explain\":\"the head is 70 or older\","
		 "\"passed\":true,\"value\":72,\"error\":null},"
		 "{\"name\":\"pmt\",\"expr\":\"2.1*household_size - 4.0*has_iron_roof >= 5\","
		 "\"explain\":\"proxy means test score of at least 5\",\"passed\":true,\"value\":6.3,\"error\":null}],"
		 "\"missing\":[],\"rules_version\":\"%s\"}",
		 version);
	HF_CHECK_MSG(o == ELIG_ELIGIBLE && strcmp(hf_buf_cstr(&dump), want) == 0, "%s", hf_buf_cstr(&dump));
	json_decref(r);
	elig_vars_free(v);

	/* not eligible: one condition failed, the other passed; all are shown */
	v = elig_vars_new();
	HF_CHECK(elig_vars_num(v, "age_of_head", 65) == HF_OK);
	HF_CHECK(elig_vars_num(v, "household_size", 3) == HF_OK);
	HF_CHECK(elig_vars_num(v, "has_iron_roof", 0) == HF_OK);
	r = evaluate_text(rules, v, &o);
	json_t *c0 = json_array_get(json_object_get(r, "conditions"), 0);
	json_t *c1 = json_array_get(json_object_get(r, "conditions"), 1);
	HF_CHECK(o == ELIG_NOT_ELIGIBLE);
	HF_CHECK(strcmp(json_string_value(json_object_get(r, "outcome")), "not_eligible") == 0);
	HF_CHECK(json_is_false(json_object_get(c0, "passed")));
	HF_CHECK(json_integer_value(json_object_get(c0, "value")) == 65);
	HF_CHECK(json_is_true(json_object_get(c1, "passed")));
	HF_CHECK(json_array_size(json_object_get(r, "missing")) == 0);
	json_decref(r);
	elig_vars_free(v);

	/* needs review: a variable missing, even though another condition already fails */
	v = elig_vars_new();
	HF_CHECK(elig_vars_num(v, "age_of_head", 65) == HF_OK);
	HF_CHECK(elig_vars_num(v, "household_size", 3) == HF_OK);
	r = evaluate_text(rules, v, &o);
	c0 = json_array_get(json_object_get(r, "conditions"), 0);
	c1 = json_array_get(json_object_get(r, "conditions"), 1);
	hf_buf_reset(&dump);
	HF_CHECK(r && hf_json_dump(json_object_get(r, "missing"), &dump) == HF_OK);
	HF_CHECK(o == ELIG_NEEDS_REVIEW);
	HF_CHECK(strcmp(json_string_value(json_object_get(r, "outcome")), "needs_review") == 0);
	HF_CHECK(strcmp(hf_buf_cstr(&dump), "[\"has_iron_roof\"]") == 0);
	HF_CHECK(json_is_false(json_object_get(c0, "passed")));
	HF_CHECK(json_is_null(json_object_get(c1, "passed")) && json_is_null(json_object_get(c1, "value")));
	const char *why = json_string_value(json_object_get(c1, "error"));
	HF_CHECK_MSG(why && strcmp(why, "missing variable has_iron_roof") == 0, "%s", why ? why : "(null)");
	json_decref(r);
	elig_vars_free(v);
	hf_buf_release(&dump);

	HF_CHECK(strcmp(elig_outcome_name(ELIG_ELIGIBLE), "eligible") == 0);
	HF_CHECK(strcmp(elig_outcome_name(ELIG_NOT_ELIGIBLE), "not_eligible") == 0);
	HF_CHECK(strcmp(elig_outcome_name(ELIG_NEEDS_REVIEW), "needs_review") == 0);
}

/* The condition's error text (static storage) and outcome of expr under g_vars. */
static const char *error_of(const char *expr, enum elig_outcome *o, json_t **missing_out)
{
	static char err[512];
	err[0] = '\0';
	json_t *r = evaluate_expr(expr, g_vars, o);
	if (!r)
		return "(not compiled)";
	json_t *e = json_object_get(json_array_get(json_object_get(r, "conditions"), 0), "error");
	if (json_is_string(e))
		hf_strlcpy(err, json_string_value(e), sizeof(err));
	if (missing_out)
		*missing_out = json_incref(json_object_get(r, "missing"));
	json_decref(r);
	return err;
}

static void test_missing_variables(void)
{
	struct elig_vars *v = vars_household();
	g_vars = v;
	enum elig_outcome o;
	json_t *m = NULL;
	/* every missing variable of a score is named, each once */
	const char *e = error_of("2*a + b - a*3 + household_size >= 1", &o, &m);
	struct hf_buf d;
	hf_buf_init(&d, 1024);
	HF_CHECK(o == ELIG_NEEDS_REVIEW && strcmp(e, "missing variables a, b") == 0);
	HF_CHECK(hf_json_dump(m, &d) == HF_OK && strcmp(hf_buf_cstr(&d), "[\"a\",\"b\"]") == 0);
	json_decref(m);
	/* a variable whose value did not matter is not needed */
	HF_CHECK(holds("age_of_head > 70 or nothing > 1") == 1);
	HF_CHECK(holds("nothing > 1 or age_of_head > 70") == 1);
	HF_CHECK(holds("age_of_head < 70 and nothing > 1") == 0);
	HF_CHECK(holds("nothing > 1 and age_of_head < 70") == 0);
	HF_CHECK(holds("nothing > 1 or age_of_head < 70") == -1);
	HF_CHECK(holds("nothing > 1 and age_of_head > 70") == -1);
	HF_CHECK(holds("not nothing > 1") == -1);
	HF_CHECK(holds("(nothing > 1 or age_of_head > 70) and household_size == 5") == 1);
	e = error_of("(nothing > 1 or age_of_head > 70) and other > 1", &o, &m);
	hf_buf_reset(&d);
	HF_CHECK(o == ELIG_NEEDS_REVIEW && strcmp(e, "missing variable other") == 0);
	HF_CHECK(hf_json_dump(m, &d) == HF_OK && strcmp(hf_buf_cstr(&d), "[\"other\"]") == 0);
	json_decref(m);
	/* missing across conditions: each named once, in order of first use */
	enum elig_outcome oo;
	json_t *r = evaluate_text(HEAD "[condition a]\nexpr = b > 1 and c > 1\nexplain = x\n"
				       "[condition b]\nexpr = c + d > 1\nexplain = y\n",
				  v, &oo);
	hf_buf_reset(&d);
	HF_CHECK(r && hf_json_dump(json_object_get(r, "missing"), &d) == HF_OK);
	HF_CHECK_MSG(oo == ELIG_NEEDS_REVIEW && strcmp(hf_buf_cstr(&d), "[\"b\",\"c\",\"d\"]") == 0, "%s",
		     hf_buf_cstr(&d));
	json_decref(r);
	hf_buf_release(&d);
	g_vars = NULL;
	elig_vars_free(v);
}

static void test_evaluation_errors(void)
{
	struct elig_vars *v = vars_household();
	g_vars = v;
	enum elig_outcome o;
	const char *e = error_of("household_size / zero > 1", &o, NULL);
	HF_CHECK_MSG(o == ELIG_NEEDS_REVIEW && strcmp(e, "division by zero: 'zero' is 0") == 0, "%s", e);
	e = error_of("1 / (household_size - 5) > 1", &o, NULL);
	HF_CHECK_MSG(o == ELIG_NEEDS_REVIEW && strcmp(e, "division by zero: 'household_size - 5' is 0") == 0, "%s", e);
	e = error_of("0 / 0 == 0", &o, NULL);
	HF_CHECK(o == ELIG_NEEDS_REVIEW && strstr(e, "division by zero"));
	/* an error that did not matter does not count */
	HF_CHECK(holds("age_of_head > 70 or 1 / zero > 1") == 1);
	/* an error and a missing variable: the error is the reason, the variable is listed as missing */
	json_t *m = NULL;
	e = error_of("1 / zero + nothing > 1", &o, &m);
	HF_CHECK(o == ELIG_NEEDS_REVIEW && strstr(e, "division by zero") && json_array_size(m) == 1);
	json_decref(m);
	/* a value of the wrong type */
	e = error_of("sex_of_head * 2 > 1", &o, NULL);
	HF_CHECK_MSG(o == ELIG_NEEDS_REVIEW && strcmp(e, "'sex_of_head' is text where a number is needed") == 0, "%s",
		     e);
	e = error_of("age_of_head in [\"old\"]", &o, NULL);
	HF_CHECK_MSG(o == ELIG_NEEDS_REVIEW && strcmp(e, "'age_of_head' is a number: 'in' needs text") == 0, "%s", e);
	e = error_of("sex_of_head == 1", &o, NULL);
	HF_CHECK_MSG(o == ELIG_NEEDS_REVIEW && strstr(e, "'sex_of_head' is text and '1' is a number"), "%s", e);
	e = error_of("sex_of_head < district", &o, NULL);
	HF_CHECK_MSG(o == ELIG_NEEDS_REVIEW && strstr(e, "only == and != compare texts"), "%s", e);
	HF_CHECK(holds("sex_of_head == district") == 0);
	/* overflow */
	e = error_of("huge * huge > 1", &o, NULL);
	HF_CHECK_MSG(o == ELIG_NEEDS_REVIEW && strcmp(e, "'huge * huge' is too large a number") == 0, "%s", e);
	HF_CHECK(holds("huge - huge * 2 < 0") == 1);
	/* the value of the left side is shown even when the right side failed */
	json_t *r = evaluate_expr("age_of_head > 1 / zero", v, &o);
	json_t *c = json_array_get(json_object_get(r, "conditions"), 0);
	HF_CHECK(json_integer_value(json_object_get(c, "value")) == 72 && json_is_null(json_object_get(c, "passed")));
	json_decref(r);
	/* texts as values */
	r = evaluate_expr("sex_of_head in [\"female\"]", v, &o);
	c = json_array_get(json_object_get(r, "conditions"), 0);
	HF_CHECK(o == ELIG_ELIGIBLE && json_is_string(json_object_get(c, "value")) &&
		 strcmp(json_string_value(json_object_get(c, "value")), "female") == 0);
	json_decref(r);
	/* and/or at the top: no single left side */
	r = evaluate_expr("age_of_head > 1 and household_size > 1", v, &o);
	c = json_array_get(json_object_get(r, "conditions"), 0);
	HF_CHECK(o == ELIG_ELIGIBLE && json_is_null(json_object_get(c, "value")));
	json_decref(r);
	g_vars = NULL;
	elig_vars_free(v);
}

static void test_vars(void)
{
	struct elig_vars *v = elig_vars_new();
	HF_CHECK(elig_vars_num(v, "household_size", 4) == HF_OK);
	HF_CHECK(elig_vars_num(v, "household_size", 5) == HF_ECONFLICT);
	HF_CHECK(elig_vars_str(v, "household_size", "5") == HF_ECONFLICT);
	HF_CHECK(elig_vars_num(v, "Household", 1) == HF_EINVAL);
	HF_CHECK(elig_vars_num(v, "2x", 1) == HF_EINVAL);
	HF_CHECK(elig_vars_num(v, "", 1) == HF_EINVAL);
	HF_CHECK(elig_vars_num(v, NULL, 1) == HF_EINVAL);
	HF_CHECK(elig_vars_num(v, "a_name_that_is_much_longer_than_32", 1) == HF_EINVAL);
	HF_CHECK(elig_vars_num(v, "_private", 1) == HF_OK);
	HF_CHECK(elig_vars_num(v, "nan", NAN) == HF_EINVAL);
	HF_CHECK(elig_vars_num(v, "inf", INFINITY) == HF_EINVAL);
	HF_CHECK(elig_vars_str(v, "bad_utf8", "\xc3") == HF_EINVAL);
	HF_CHECK(elig_vars_str(v, "control", "a\nb") == HF_EINVAL);
	HF_CHECK(elig_vars_str(v, "null", NULL) == HF_EINVAL);
	char big[ELIG_STR_MAX + 2];
	memset(big, 'a', sizeof(big));
	big[ELIG_STR_MAX + 1] = '\0';
	HF_CHECK(elig_vars_str(v, "big", big) == HF_ETOOBIG);
	big[ELIG_STR_MAX] = '\0';
	HF_CHECK(elig_vars_str(v, "big", big) == HF_OK);
	HF_CHECK(elig_vars_str(v, "place", "Kisum\xc3\xba") == HF_OK);
	for (int i = 0; v->n < ELIG_VARS_MAX; i++) {
		char name[16];
		snprintf(name, sizeof(name), "v%d", i);
		HF_CHECK(elig_vars_num(v, name, i) == HF_OK);
	}
	HF_CHECK(elig_vars_num(v, "one_more", 1) == HF_ETOOBIG);
	elig_vars_free(v);
	elig_vars_free(NULL);
	elig_free(NULL);
}

static void write_rule(const char *name, const char *text)
{
	char path[256];
	hf_test_write_file(tmpdir, name, text, 0600, path, sizeof(path));
}

static void test_load_dir(void)
{
	struct hf_buf err;
	hf_buf_init(&err, 1024);
	struct elig_set *s = NULL;
	hf_test_tmpdir(tmpdir, sizeof(tmpdir));
	/* an empty folder: no programme has rules */
	HF_CHECK(elig_load_dir(tmpdir, &s, &err) == HF_OK && elig_count(s) == 0 && !elig_has(s, "OPCT"));
	enum elig_outcome o;
	json_t *r = NULL;
	HF_CHECK(elig_evaluate(s, "OPCT", NULL, &o, &r) == HF_ENOTFOUND && r == NULL);
	elig_free(s);
	s = NULL;

	write_rule("OPCT.ini", "[programme]\ncode = OPCT\n[condition age]\nexpr = age_of_head >= 70\nexplain = old\n");
	write_rule("CT-OVC.ini", "[programme]\ncode = CT-OVC\n[condition o]\nexpr = orphans >= 1\nexplain = o\n");
	write_rule(".OPCT.ini.swp", "garbage");
	write_rule(".hidden.ini", "garbage");
	write_rule("README.txt", "garbage");
	write_rule("OPCT.ini~", "garbage");
	HF_CHECK_MSG(elig_load_dir(tmpdir, &s, &err) == HF_OK, "%s", hf_buf_cstr(&err));
	HF_CHECK(elig_count(s) == 2 && elig_has(s, "OPCT") && elig_has(s, "CT-OVC") && !elig_has(s, "opct") &&
		 !elig_has(s, NULL));
	struct elig_vars *v = elig_vars_new();
	HF_CHECK(elig_vars_num(v, "age_of_head", 70) == HF_OK);
	HF_CHECK(elig_evaluate(s, "OPCT", v, &o, &r) == HF_OK && o == ELIG_ELIGIBLE);
	json_decref(r);
	HF_CHECK(elig_evaluate(s, "CT-OVC", v, &o, &r) == HF_OK && o == ELIG_NEEDS_REVIEW);
	json_decref(r);
	r = NULL;
	HF_CHECK(elig_evaluate(s, "PWSD-CT", v, &o, &r) == HF_ENOTFOUND && r == NULL);
	elig_vars_free(v);
	elig_free(s);
	s = NULL;

	/* a file name that is not a programme code */
	char path[256];
	write_rule("opct.ini", "[programme]\ncode = opct\n");
	HF_CHECK(elig_load_dir(tmpdir, &s, &err) == HF_EINVAL && s == NULL);
	snprintf(path, sizeof(path), "%s/opct.ini: the file name must be <PROGRAMME_CODE>.ini", tmpdir);
	HF_CHECK_MSG(strstr(hf_buf_cstr(&err), path) != NULL, "%s", hf_buf_cstr(&err));
	snprintf(path, sizeof(path), "%s/opct.ini", tmpdir);
	unlink(path);

	/* one bad file refuses the whole folder, naming the file and the line */
	hf_buf_reset(&err);
	write_rule("PWSD-CT.ini",
		   "[programme]\ncode = PWSD-CT\n[condition d]\nexpr = severe_disability = 1\nexplain = d\n");
	HF_CHECK(elig_load_dir(tmpdir, &s, &err) == HF_EINVAL && s == NULL);
	snprintf(path, sizeof(path), "%s/PWSD-CT.ini:4: expr column 19: '=' alone: compare with ==", tmpdir);
	HF_CHECK_MSG(strcmp(hf_buf_cstr(&err), path) == 0, "%s", hf_buf_cstr(&err));
	snprintf(path, sizeof(path), "%s/PWSD-CT.ini", tmpdir);
	unlink(path);

	/* a file too large */
	hf_buf_reset(&err);
	char *huge = hf_xmalloc(ELIG_FILE_MAX + 2);
	memset(huge, ';', ELIG_FILE_MAX + 1);
	huge[ELIG_FILE_MAX + 1] = '\0';
	write_rule("BIG.ini", huge);
	free(huge);
	HF_CHECK(elig_load_dir(tmpdir, &s, &err) == HF_EINVAL);
	HF_CHECK(strstr(hf_buf_cstr(&err), "BIG.ini: larger than 65536") != NULL);
	snprintf(path, sizeof(path), "%s/BIG.ini", tmpdir);
	unlink(path);

	hf_test_rmtree(tmpdir);
	/* no folder at all */
	hf_buf_reset(&err);
	HF_CHECK(elig_load_dir(tmpdir, &s, &err) == HF_EIO && s == NULL &&
		 strstr(hf_buf_cstr(&err), "cannot read the rules folder"));
	hf_buf_release(&err);
}

/* The shipped example rules (deploy/eligibility, tests run from the repository root) load and decide as
 * docs/eligibility.md says. */
static void test_shipped_rules(void)
{
	struct hf_buf err;
	hf_buf_init(&err, 1024);
	struct elig_set *s = NULL;
	HF_CHECK_MSG(elig_load_dir("deploy/eligibility", &s, &err) == HF_OK, "%s", hf_buf_cstr(&err));
	hf_buf_release(&err);
	if (!s)
		return;
	HF_CHECK(elig_count(s) == 3 && elig_has(s, "OPCT") && elig_has(s, "PWSD-CT") && elig_has(s, "CT-OVC"));
	enum elig_outcome o;
	json_t *r;

	struct elig_vars *v = elig_vars_new();
	HF_CHECK(elig_vars_num(v, "age_of_head", 74) == HF_OK);
	HF_CHECK(elig_evaluate(s, "OPCT", v, &o, &r) == HF_OK && o == ELIG_ELIGIBLE);
	json_decref(r);
	elig_vars_free(v);
	v = elig_vars_new();
	HF_CHECK(elig_vars_num(v, "age_of_head", 69) == HF_OK);
	HF_CHECK(elig_evaluate(s, "OPCT", v, &o, &r) == HF_OK && o == ELIG_NOT_ELIGIBLE);
	json_decref(r);
	elig_vars_free(v);

	/* docs/eligibility.md's worked example: 4 people, one with a severe disability, thatched roof, no
	 * livestock, no electricity: 2.1*4 + 1.5*1 = 9.9 */
	v = elig_vars_new();
	HF_CHECK(elig_vars_num(v, "severe_disability", 1) == HF_OK);
	HF_CHECK(elig_vars_num(v, "household_size", 4) == HF_OK);
	HF_CHECK(elig_vars_num(v, "disabled_members", 1) == HF_OK);
	HF_CHECK(elig_vars_num(v, "owns_livestock", 0) == HF_OK);
	HF_CHECK(elig_vars_num(v, "has_iron_roof", 0) == HF_OK);
	HF_CHECK(elig_vars_num(v, "has_electricity", 0) == HF_OK);
	HF_CHECK(elig_evaluate(s, "PWSD-CT", v, &o, &r) == HF_OK && o == ELIG_ELIGIBLE);
	json_t *pmt = json_array_get(json_object_get(r, "conditions"), 1);
	HF_CHECK(fabs(json_number_value(json_object_get(pmt, "value")) - 9.9) < 1e-9);
	json_decref(r);
	/* the same household for CT-OVC: no orphans recorded -> needs review, orphans named */
	HF_CHECK(elig_evaluate(s, "CT-OVC", v, &o, &r) == HF_OK && o == ELIG_NEEDS_REVIEW);
	HF_CHECK(json_array_size(json_object_get(r, "missing")) == 1 &&
		 strcmp(json_string_value(json_array_get(json_object_get(r, "missing"), 0)), "orphans") == 0);
	json_decref(r);
	HF_CHECK(elig_vars_num(v, "orphans", 2) == HF_OK);
	HF_CHECK(elig_evaluate(s, "CT-OVC", v, &o, &r) == HF_OK && o == ELIG_ELIGIBLE);
	json_decref(r);
	elig_vars_free(v);
	/* better off: iron roof, livestock and electricity */
	v = elig_vars_new();
	HF_CHECK(elig_vars_num(v, "severe_disability", 1) == HF_OK);
	HF_CHECK(elig_vars_num(v, "household_size", 4) == HF_OK);
	HF_CHECK(elig_vars_num(v, "disabled_members", 1) == HF_OK);
	HF_CHECK(elig_vars_num(v, "owns_livestock", 1) == HF_OK);
	HF_CHECK(elig_vars_num(v, "has_iron_roof", 1) == HF_OK);
	HF_CHECK(elig_vars_num(v, "has_electricity", 1) == HF_OK);
	HF_CHECK(elig_evaluate(s, "PWSD-CT", v, &o, &r) == HF_OK && o == ELIG_NOT_ELIGIBLE);
	json_decref(r);
	elig_vars_free(v);
	elig_free(s);
}

int main(void)
{
	HF_ASSERT(hf_crypto_init() == HF_OK);
	hf_log_set_filter("test.silent");
	HF_TEST(test_arithmetic);
	HF_TEST(test_logic);
	HF_TEST(test_expression_errors);
	HF_TEST(test_file_errors);
	HF_TEST(test_continuation_lines);
	HF_TEST(test_limits);
	HF_TEST(test_explanation);
	HF_TEST(test_missing_variables);
	HF_TEST(test_evaluation_errors);
	HF_TEST(test_vars);
	HF_TEST(test_load_dir);
	HF_TEST(test_shipped_rules);
	return hf_test_summary();
}
