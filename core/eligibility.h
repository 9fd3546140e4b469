/* eligibility.h - declarative eligibility rules per programme, evaluated on an application's data.
 *
 * Each programme has one rule file, <CODE>.ini, in a folder (config key eligibility.dir): a list of named
 * conditions, each an expression in a small fixed language (numbers, variables, + - * /, comparisons,
 * and/or/not, `in ["a", "b"]`, min/max/abs). A household is eligible when every condition holds. The
 * language is parsed by our own recursive-descent parser at load and evaluated from its tree: there is no
 * eval, no scripting engine and no way for a rule file to run code, read files or loop. docs/eligibility.md
 * is the manual for the people who write the rules.
 *
 * The result is a JSON explanation, meant to be stored on the case as it is, so that a reviewer (and an
 * appeal, years later) sees which condition decided, with which value, under which version of the rules:
 *
 *   {"programme": "OPCT",
 *    "outcome": "eligible" | "not_eligible" | "needs_review",
 *    "conditions": [{"name": "age", "expr": "age_of_head >= 70", "explain": "the head of household is 70 or older",
 *                    "passed": true | false | null, "value": 72 | 7.3 | "female" | null, "error": "..." | null}, ...],
 *    "missing": ["owns_livestock", ...],
 *    "rules_version": "3f0c9a1b2c4d5e6f"}
 *
 *  - conditions: every condition of the file, in file order, all evaluated (not only up to the first
 *    failure), so the explanation is complete.
 *  - passed: null when the condition could not be decided (a variable missing, a division by zero, text
 *    where a number is needed); error then says why in words, quoting the part of the expression.
 *  - value: the value of the left side of the condition's top comparison or `in` (the age, the proxy means
 *    test score), when it could be computed; null otherwise or for and/or/not at the top.
 *  - missing: the input variables that were needed but not given, each named once, in order of first use.
 *    A variable whose value did not matter (`a > 1 or b > 1` with a = 2) is not needed.
 *  - outcome: "needs_review" when any condition is undecided — incomplete data never decides a case
 *    automatically, even when another condition already fails: the reviewer sees both; otherwise
 *    "eligible" when every condition passed, "not_eligible" when at least one failed.
 *  - rules_version: the first 16 hex digits of the SHA-256 of the rule file's bytes.
 *
 * Threads: an elig_set is immutable after elig_load_dir; elig_evaluate may be called on one set from any
 * number of threads at once. An elig_vars belongs to one thread at a time.
 */
#ifndef HF_CORE_ELIGIBILITY_H
#define HF_CORE_ELIGIBILITY_H

#include <jansson.h>

#include "hf_base.h"
#include "hf_buf.h"
#include "hf_err.h"

/* Limits of rule files (each refused at load with file:line) and of the input. */
#define ELIG_EXPR_MAX 1000       /* characters of one expression, continuation lines joined */
#define ELIG_DEPTH_MAX 32        /* nesting of parentheses, function calls, not and unary minus */
#define ELIG_CONDITIONS_MAX 64   /* conditions of one programme */
#define ELIG_NAME_MAX 32         /* a variable or condition name */
#define ELIG_CODE_MAX 32         /* a programme code: 2-32 of A-Z 0-9 - _, as in the registry */
#define ELIG_EXPLAIN_MAX 500     /* bytes of one explain text */
#define ELIG_FILE_MAX 65536      /* bytes of one rule file */
#define ELIG_PROGRAMMES_MAX 256  /* rule files in the folder */
#define ELIG_VARS_MAX 128        /* variables of one elig_vars */
#define ELIG_STR_MAX 200         /* bytes of a text value (input or "literal" in a rule) */

/* All programmes' rules. */
struct elig_set;

/* Loads every <CODE>.ini of dir (names starting with "." and other extensions are ignored; each file's
 * [programme] code must equal its name). All or nothing: on the first problem *out is untouched and err
 * gets one line "path:line: reason" (for an expression also "expr column N:" where N counts characters of
 * the expression on that line), or "path: reason" for a whole-file problem such as a missing
 * [programme] section. Returns HF_EINVAL for a bad rule file, HF_EIO when dir or a file cannot be read.
 * An existing dir without rule files gives an empty set. Logs one info line per programme loaded (code,
 * conditions, rules_version). hf_crypto_init must have been called (the SHA-256 is libsodium's).
 * *out is owned by the caller: elig_free. */
HF_MUST_CHECK hf_err elig_load_dir(const char *dir, struct elig_set **out, struct hf_buf *err);
void elig_free(struct elig_set *s); /* NULL is a no-op */

/* Number of programmes in s, and whether programme (a code such as "OPCT") has rules in it. */
size_t elig_count(const struct elig_set *s);
bool elig_has(const struct elig_set *s, const char *programme);

/* The input of one evaluation: typed name/value pairs taken from the household and the application form.
 * Names are variable names as rules use them: [a-z_][a-z0-9_]*, at most ELIG_NAME_MAX characters. A yes/no
 * answer is a number 1 or 0. Names and texts are copied. */
struct elig_vars;

struct elig_vars *elig_vars_new(void);
void elig_vars_free(struct elig_vars *v); /* NULL is a no-op */
/* Each returns HF_EINVAL for a bad name, a value that is not finite (num) or not valid UTF-8 text without
 * control characters (str); HF_ECONFLICT when name is already set (a second value for one variable is a
 * bug in the caller, not something to guess about); HF_ETOOBIG past ELIG_VARS_MAX variables or a text
 * longer than ELIG_STR_MAX bytes. On error v is unchanged. */
HF_MUST_CHECK hf_err elig_vars_num(struct elig_vars *v, const char *name, double value);
HF_MUST_CHECK hf_err elig_vars_str(struct elig_vars *v, const char *name, const char *value);

enum elig_outcome { ELIG_ELIGIBLE, ELIG_NOT_ELIGIBLE, ELIG_NEEDS_REVIEW };

/* "eligible", "not_eligible", "needs_review": the same words as the explanation's "outcome". */
const char *elig_outcome_name(enum elig_outcome o);

/* Evaluates programme's rules on v (NULL: no variables at all). On HF_OK writes the outcome and the
 * explanation described at the top of this file (*out_explain owned by the caller: json_decref). An
 * undecidable condition (missing variable, division by zero, wrong type of value) is not an error of this
 * call: the outcome is then ELIG_NEEDS_REVIEW. HF_ENOTFOUND when programme has no rule file; nothing is
 * written then. Allocation only (no I/O, no locks): cheap enough to call inside a transaction. */
HF_MUST_CHECK hf_err elig_evaluate(const struct elig_set *s, const char *programme, const struct elig_vars *v,
				   enum elig_outcome *out_outcome, json_t **out_explain);

#endif
