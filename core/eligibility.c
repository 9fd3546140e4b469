/* eligibility.c - programme eligibility rules: INI rule files, a small expression parser and its evaluator.
 *
 * Eligibility criteria change with policy (a new threshold, a new proxy means test) far more often than
 * the service is rebuilt, and they must stay readable by the people who decide them. So each programme's
 * criteria live in a rule file in a deliberately tiny language, with no loops, no assignments and no way
 * to reach anything but the values handed in: a rule file can be wrong, never dangerous. Every file is
 * parsed once at startup into a tree (struct node, operands chained by index) that is evaluated many
 * times; every problem a rule author can make is refused at load with file:line and the column, because
 * a typo found by the first applicant is a wrong decision on a real household.
 *
 * Evaluation is three-valued: a value is a number, a text, or undecided (a variable missing, a division
 * by zero, text where a number is needed). Undecided spreads through arithmetic and comparisons, but
 * `and`/`or` are decided by any operand that settles them (false and ? = false), so the list of missing
 * variables names only those that would have changed the result.
 *
 * inih is used here as well as in lib/hf_config.c, through ini_parse_stream only: Debian builds it
 * without INI_HANDLER_LINENO, so the reader below hands out one line per call and counts them, and also
 * sees the section headers that inih would not report (a [condition] with no keys at all).
 */
#include "hf_base.h"
#include "eligibility.h"

#include <dirent.h>
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hf_config.h"
#include "hf_crypto.h"
#include "hf_json.h"
#include "hf_log.h"

#define NIL UINT32_MAX
/* Continuation lines of one value; an expression of 1000 characters fits in far fewer. */
#define SEGS_MAX 64

/* ---- the compiled form ------------------------------------------------------------------------------- */

enum op {
	OP_NUM, OP_STR, OP_VAR,
	OP_NEG, OP_ABS, OP_MIN, OP_MAX,
	OP_SUM, OP_PROD,           /* operands chained; each operand's kop says how it joins */
	OP_ADD, OP_SUB, OP_MUL, OP_DIV, /* only as kop */
	OP_LT, OP_LE, OP_GT, OP_GE, OP_EQ, OP_NE,
	OP_IN,                     /* first = left side, then the list's OP_STR items */
	OP_NOT, OP_AND, OP_OR,
};

/* What the parser knows of a node's value: conditions (comparisons, in, and/or/not) are numbers 1/0 that
 * and/or/not accept; a variable's type is known only at evaluation. */
enum stype { ST_NUM, ST_COND, ST_STR, ST_ANY };

struct node {
	uint8_t op;
	uint8_t type;      /* enum stype */
	uint8_t kop;       /* as an operand of OP_SUM / OP_PROD */
	uint16_t start, len; /* the node's text in the expression, quoted in evaluation errors */
	uint32_t first;    /* first operand; OP_VAR: index into the programme's variables */
	uint32_t next;     /* the next operand of the same parent, or NIL */
	double num;        /* OP_NUM */
};

struct cond {
	char name[ELIG_NAME_MAX + 1];
	char *expr;    /* owned; continuation lines joined with one space */
	char *explain; /* owned */
	struct node *nodes; /* owned */
	uint32_t nnodes, cap, root;
};

struct prog {
	char code[ELIG_CODE_MAX + 1];
	char version[17];
	struct cond *conds; /* owned, file order */
	size_t nconds;
	char (*vars)[ELIG_NAME_MAX + 1]; /* owned: every variable the conditions read, in order of first use */
	size_t nvars;
};

struct elig_set {
	struct prog **progs; /* owned, sorted by code (the file names) */
	size_t n;
};

static void prog_free(struct prog *g)
{
	if (!g)
		return;
	for (size_t i = 0; i < g->nconds; i++) {
		free(g->conds[i].expr);
		free(g->conds[i].explain);
		free(g->conds[i].nodes);
	}
	free(g->conds);
	free(g->vars);
	free(g);
}

void elig_free(struct elig_set *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		prog_free(s->progs[i]);
	free(s->progs);
	free(s);
}

size_t elig_count(const struct elig_set *s)
{
	return s ? s->n : 0;
}

static const struct prog *prog_find(const struct elig_set *s, const char *code)
{
	for (size_t i = 0; s && code && i < s->n; i++)
		if (strcmp(s->progs[i]->code, code) == 0)
			return s->progs[i];
	return NULL;
}

bool elig_has(const struct elig_set *s, const char *programme)
{
	return prog_find(s, programme) != NULL;
}

static bool is_lower(char c)
{
	return c >= 'a' && c <= 'z';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_name_char(char c)
{
	return is_lower(c) || is_digit(c) || c == '_';
}

/* A variable name: [a-z_][a-z0-9_]*, 1..ELIG_NAME_MAX. */
static bool var_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > ELIG_NAME_MAX || !(is_lower(s[0]) || s[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!is_name_char(s[i]))
			return false;
	return true;
}

/* A condition name: 1..ELIG_NAME_MAX of a-z 0-9 _ -. */
static bool cond_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > ELIG_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_name_char(s[i]) && s[i] != '-')
			return false;
	return true;
}

/* A programme code, as the registry accepts it: 2..32 of A-Z 0-9 - _. */
static bool code_ok(const char *s, size_t n)
{
	if (n < 2 || n > ELIG_CODE_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || is_digit(s[i]) || s[i] == '-' || s[i] == '_'))
			return false;
	return true;
}

/* Copies text from a rule file into out for an error message: printable ASCII only, cut with "...". */
static const char *snippet(const char *s, size_t n, char *out, size_t out_size)
{
	HF_ASSERT(out_size >= 8);
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (o + 4 >= out_size) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		out[o++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	}
	out[o] = '\0';
	return out;
}

/* ---- expression parser -------------------------------------------------------------------------------
 *
 *   or      := and { "or" and }
 *   and     := not { "and" not }
 *   not     := "not" not | cmp
 *   cmp     := sum [ ("<" | "<=" | ">" | ">=" | "==" | "!=") sum | "in" "[" TEXT { "," TEXT } "]" ]
 *   sum     := prod { ("+" | "-") prod }
 *   prod    := unary { ("*" | "/") unary }
 *   unary   := "-" unary | primary
 *   primary := NUMBER | TEXT | NAME | ("min" | "max" | "abs") "(" or { "," or } ")" | "(" or ")"
 *
 * Comparisons do not chain (a < b < c is refused, not read as (a < b) < c). Nesting (parentheses,
 * calls, not, unary minus) is capped, and +, -, *, /, and, or build one node with a chain of operands,
 * so the tree's depth - and the evaluator's recursion - stays bounded whatever the expression's length.
 */

enum tk {
	TK_END, TK_NUM, TK_STR, TK_NAME, TK_LPAREN, TK_RPAREN, TK_LBRACK, TK_RBRACK, TK_COMMA,
	TK_PLUS, TK_MINUS, TK_STAR, TK_SLASH, TK_LT, TK_LE, TK_GT, TK_GE, TK_EQ, TK_NE,
	TK_AND, TK_OR, TK_NOT, TK_IN,
};

struct tok {
	enum tk kind;
	uint32_t start, len;
	double num;
};

struct parser {
	const char *s;
	uint32_t len, pos;
	struct tok t;
	int depth;
	struct cond *c;
	struct prog *g;
	bool failed;
	uint32_t err_at; /* offset in s of the first error */
	char why[256];
};

HF_PRINTF(3, 4) static void pfail(struct parser *p, uint32_t at, const char *fmt, ...)
{
	if (p->failed)
		return;
	p->failed = true;
	p->err_at = at;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->why, sizeof(p->why), fmt, ap);
	va_end(ap);
}

/* The current token for a message: 'text' or "the end of the expression". */
static const char *tok_desc(const struct parser *p, char *out, size_t out_size)
{
	if (p->t.kind == TK_END) {
		hf_strlcpy(out, "the end of the expression", out_size);
		return out;
	}
	char text[32];
	snprintf(out, out_size, "'%s'", snippet(p->s + p->t.start, p->t.len, text, sizeof(text)));
	return out;
}

static const double POW10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};

/* digits [ "." digits ], at most 15 digits in all: the mantissa is an exact integer and 10^k an exact
 * double, so one division gives the correctly rounded value, whatever the process's locale. */
static bool lex_number(struct parser *p)
{
	const char *s = p->s;
	uint32_t at = p->pos, i = at;
	uint64_t mant = 0;
	int digits = 0, frac = 0;
	bool dot = false;
	for (;;) {
		if (i < p->len && is_digit(s[i])) {
			if (++digits > 15) {
				pfail(p, at, "a number has at most 15 digits");
				return false;
			}
			mant = mant * 10 + (uint64_t)(s[i] - '0');
			frac += dot;
			i++;
		} else if (i < p->len && s[i] == '.' && !dot) {
			dot = true;
			i++;
			if (i >= p->len || !is_digit(s[i])) {
				pfail(p, i, "expected a digit after the decimal point");
				return false;
			}
		} else {
			break;
		}
	}
	if (i < p->len && s[i] == '.') {
		pfail(p, i, "a number has at most one decimal point");
		return false;
	}
	if (i < p->len && (is_name_char(s[i]) || (s[i] >= 'A' && s[i] <= 'Z'))) {
		pfail(p, i, "a number must not be followed by '%c' (write 2*x for a product)", s[i]);
		return false;
	}
	p->t = (struct tok){TK_NUM, at, i - at, (double)mant / POW10[frac]};
	p->pos = i;
	return true;
}

static bool lex_name(struct parser *p)
{
	static const struct {
		const char *word;
		enum tk kind;
	} words[] = {{"and", TK_AND}, {"or", TK_OR}, {"not", TK_NOT}, {"in", TK_IN}};
	uint32_t at = p->pos, i = at;
	while (i < p->len && is_name_char(p->s[i]))
		i++;
	if (i - at > ELIG_NAME_MAX) {
		pfail(p, at, "a name is at most %d characters", ELIG_NAME_MAX);
		return false;
	}
	if (i < p->len && p->s[i] >= 'A' && p->s[i] <= 'Z') {
		pfail(p, at, "names are written in lower case (a-z, 0-9 and _)");
		return false;
	}
	p->t = (struct tok){TK_NAME, at, i - at, 0};
	for (size_t w = 0; w < HF_ARRAY_LEN(words); w++)
		if (strlen(words[w].word) == i - at && memcmp(words[w].word, p->s + at, i - at) == 0)
			p->t.kind = words[w].kind;
	p->pos = i;
	return true;
}

static bool lex_text(struct parser *p)
{
	uint32_t at = p->pos;
	const char *close = memchr(p->s + at + 1, '"', p->len - at - 1);
	if (!close) {
		pfail(p, at, "text is not closed with '\"'");
		return false;
	}
	uint32_t n = (uint32_t)(close - (p->s + at + 1));
	if (n > ELIG_STR_MAX) {
		pfail(p, at, "a text in double quotes is at most %d bytes", ELIG_STR_MAX);
		return false;
	}
	if (!hf_utf8_valid_text(p->s + at + 1, n)) {
		pfail(p, at, "a text in double quotes must be valid UTF-8 without control characters");
		return false;
	}
	p->t = (struct tok){TK_STR, at, n + 2, 0};
	p->pos = at + n + 2;
	return true;
}

/* Reads the next token into p->t. */
static bool lex(struct parser *p)
{
	const char *s = p->s;
	while (p->pos < p->len && (s[p->pos] == ' ' || s[p->pos] == '\t'))
		p->pos++;
	uint32_t at = p->pos;
	p->t = (struct tok){TK_END, at, 0, 0};
	if (at >= p->len)
		return true;
	char c = s[at];
	char c2 = at + 1 < p->len ? s[at + 1] : '\0';
	if (is_digit(c))
		return lex_number(p);
	if (is_lower(c) || c == '_')
		return lex_name(p);
	if (c == '"')
		return lex_text(p);
	enum tk kind;
	uint32_t n = 1;
	switch (c) {
	case '(': kind = TK_LPAREN; break;
	case ')': kind = TK_RPAREN; break;
	case '[': kind = TK_LBRACK; break;
	case ']': kind = TK_RBRACK; break;
	case ',': kind = TK_COMMA; break;
	case '+': kind = TK_PLUS; break;
	case '-': kind = TK_MINUS; break;
	case '*': kind = TK_STAR; break;
	case '/': kind = TK_SLASH; break;
	case '<': kind = c2 == '=' ? TK_LE : TK_LT; n = c2 == '=' ? 2 : 1; break;
	case '>': kind = c2 == '=' ? TK_GE : TK_GT; n = c2 == '=' ? 2 : 1; break;
	case '=':
		if (c2 != '=') {
			pfail(p, at, "'=' alone: compare with ==");
			return false;
		}
		kind = TK_EQ;
		n = 2;
		break;
	case '!':
		if (c2 != '=') {
			pfail(p, at, "'!' alone: write != or not");
			return false;
		}
		kind = TK_NE;
		n = 2;
		break;
	case '&':
		pfail(p, at, "unexpected '&': write and");
		return false;
	case '|':
		pfail(p, at, "unexpected '|': write or");
		return false;
	case ';':
	case '#':
		pfail(p, at, "unexpected '%c': comments go on a line of their own", c);
		return false;
	case '.':
		pfail(p, at, "a number starts with a digit: write 0.5, not .5");
		return false;
	default:
		if (c >= 'A' && c <= 'Z')
			pfail(p, at, "names are written in lower case (a-z, 0-9 and _)");
		else if (c > 0x20 && c < 0x7f)
			pfail(p, at, "unexpected character '%c'", c);
		else
			pfail(p, at, "unexpected byte 0x%02x (only ASCII outside double quotes)",
			      (unsigned)(unsigned char)c);
		return false;
	}
	p->t = (struct tok){kind, at, n, 0};
	p->pos = at + n;
	return true;
}

static uint32_t node_end(const struct parser *p, uint32_t i)
{
	return (uint32_t)p->c->nodes[i].start + p->c->nodes[i].len;
}

static uint32_t node_add(struct parser *p, enum op op, enum stype type, uint32_t start, uint32_t end)
{
	struct cond *c = p->c;
	/* Every node consumes a token, so a capped expression bounds the tree. */
	HF_ASSERT(c->nnodes < 4 * ELIG_EXPR_MAX && end >= start && end <= ELIG_EXPR_MAX);
	if (c->nnodes == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 16;
		c->nodes = hf_xrealloc(c->nodes, c->cap * sizeof(*c->nodes));
	}
	c->nodes[c->nnodes] = (struct node){(uint8_t)op, (uint8_t)type, 0, (uint16_t)start, (uint16_t)(end - start),
					    NIL, NIL, 0};
	return c->nnodes++;
}

static bool enter(struct parser *p, uint32_t at)
{
	if (++p->depth > ELIG_DEPTH_MAX) {
		pfail(p, at, "nested more than %d levels deep", ELIG_DEPTH_MAX);
		return false;
	}
	return true;
}

static bool expect_failed(struct parser *p, const char *expected)
{
	char d[64];
	if (p->t.kind == TK_NOT)
		pfail(p, p->t.start, "expected %s but found 'not' (to negate, write not (x in [\"a\"]))", expected);
	else
		pfail(p, p->t.start, "expected %s but found %s", expected, tok_desc(p, d, sizeof(d)));
	return false;
}

static bool need_number(struct parser *p, uint32_t i)
{
	if (p->c->nodes[i].type != ST_STR)
		return true;
	pfail(p, p->c->nodes[i].start, "text in double quotes cannot be used as a number");
	return false;
}

static bool need_condition(struct parser *p, uint32_t i, const char *what)
{
	if (p->c->nodes[i].type == ST_COND)
		return true;
	pfail(p, p->c->nodes[i].start, "%s combines conditions: write a comparison such as x == 1, not a bare value",
	      what);
	return false;
}

static uint32_t prog_var(struct prog *g, const char *name, size_t n)
{
	for (size_t i = 0; i < g->nvars; i++)
		if (strlen(g->vars[i]) == n && memcmp(g->vars[i], name, n) == 0)
			return (uint32_t)i;
	g->vars = hf_xrealloc(g->vars, (g->nvars + 1) * sizeof(*g->vars));
	memcpy(g->vars[g->nvars], name, n);
	g->vars[g->nvars][n] = '\0';
	return (uint32_t)g->nvars++;
}

static bool parse_or(struct parser *p, uint32_t *out);

/* min/max/abs "(" args ")"; the name was just read. */
static bool parse_call(struct parser *p, enum op op, uint32_t at, uint32_t *out)
{
	if (!enter(p, at) || !lex(p))
		return false;
	uint32_t first = NIL, last = NIL, nargs = 0;
	for (;;) {
		uint32_t a;
		if (!parse_or(p, &a) || !need_number(p, a))
			return false;
		if (first == NIL)
			first = a;
		else
			p->c->nodes[last].next = a;
		last = a;
		nargs++;
		if (p->t.kind != TK_COMMA)
			break;
		if (!lex(p))
			return false;
	}
	if (p->t.kind != TK_RPAREN)
		return expect_failed(p, "',' or ')'");
	if (op == OP_ABS && nargs != 1) {
		pfail(p, at, "abs takes exactly 1 argument");
		return false;
	}
	if (op != OP_ABS && nargs < 2) {
		pfail(p, at, "%s takes 2 or more arguments", op == OP_MIN ? "min" : "max");
		return false;
	}
	uint32_t n = node_add(p, op, ST_NUM, at, p->t.start + 1);
	p->c->nodes[n].first = first;
	p->depth--;
	*out = n;
	return lex(p);
}

static bool parse_primary(struct parser *p, uint32_t *out)
{
	struct tok t = p->t;
	switch (t.kind) {
	case TK_NUM:
		*out = node_add(p, OP_NUM, ST_NUM, t.start, t.start + t.len);
		p->c->nodes[*out].num = t.num;
		return lex(p);
	case TK_STR:
		*out = node_add(p, OP_STR, ST_STR, t.start, t.start + t.len);
		return lex(p);
	case TK_NAME: {
		static const struct {
			const char *name;
			enum op op;
		} fns[] = {{"min", OP_MIN}, {"max", OP_MAX}, {"abs", OP_ABS}};
		const char *name = p->s + t.start;
		if (!lex(p))
			return false;
		for (size_t f = 0; f < HF_ARRAY_LEN(fns); f++) {
			if (t.len != strlen(fns[f].name) || memcmp(name, fns[f].name, t.len) != 0)
				continue;
			if (p->t.kind != TK_LPAREN) {
				pfail(p, t.start, "'%s' is a function: write %s(...)", fns[f].name, fns[f].name);
				return false;
			}
			return parse_call(p, fns[f].op, t.start, out);
		}
		if (p->t.kind == TK_LPAREN) {
			char d[48];
			pfail(p, t.start, "unknown function '%s': only min, max and abs",
			      snippet(name, t.len, d, sizeof(d)));
			return false;
		}
		*out = node_add(p, OP_VAR, ST_ANY, t.start, t.start + t.len);
		p->c->nodes[*out].first = prog_var(p->g, name, t.len);
		return true;
	}
	case TK_LPAREN:
		if (!enter(p, t.start) || !lex(p) || !parse_or(p, out))
			return false;
		if (p->t.kind != TK_RPAREN)
			return expect_failed(p, "')'");
		p->depth--;
		return lex(p);
	default:
		return expect_failed(p, "a number, a name, a text in double quotes or '('");
	}
}

static bool parse_unary(struct parser *p, uint32_t *out)
{
	if (p->t.kind != TK_MINUS)
		return parse_primary(p, out);
	uint32_t at = p->t.start, k;
	if (!enter(p, at) || !lex(p) || !parse_unary(p, &k) || !need_number(p, k))
		return false;
	p->depth--;
	*out = node_add(p, OP_NEG, ST_NUM, at, node_end(p, k));
	p->c->nodes[*out].first = k;
	return true;
}

/* sum and prod: a chain of operands joined by two operators of one precedence. */
static bool parse_chain(struct parser *p, bool sum, uint32_t *out)
{
	enum tk t1 = sum ? TK_PLUS : TK_STAR, t2 = sum ? TK_MINUS : TK_SLASH;
	uint32_t first, last;
	if (!(sum ? parse_chain(p, false, &first) : parse_unary(p, &first)))
		return false;
	if (p->t.kind != t1 && p->t.kind != t2) {
		*out = first;
		return true;
	}
	if (!need_number(p, first))
		return false;
	p->c->nodes[first].kop = sum ? OP_ADD : OP_MUL;
	last = first;
	while (p->t.kind == t1 || p->t.kind == t2) {
		bool first_op = p->t.kind == t1;
		uint8_t kop = (uint8_t)(sum ? (first_op ? OP_ADD : OP_SUB) : (first_op ? OP_MUL : OP_DIV));
		uint32_t k;
		if (!lex(p) || !(sum ? parse_chain(p, false, &k) : parse_unary(p, &k)) || !need_number(p, k))
			return false;
		p->c->nodes[k].kop = kop;
		p->c->nodes[last].next = k;
		last = k;
	}
	*out = node_add(p, sum ? OP_SUM : OP_PROD, ST_NUM, p->c->nodes[first].start, node_end(p, last));
	p->c->nodes[*out].first = first;
	return true;
}

static bool is_comparison(enum tk k)
{
	return k == TK_LT || k == TK_LE || k == TK_GT || k == TK_GE || k == TK_EQ || k == TK_NE;
}

/* "in" "[" TEXT { "," TEXT } "]" after left. */
static bool parse_in(struct parser *p, uint32_t left, uint32_t *out)
{
	enum stype lt = (enum stype)p->c->nodes[left].type;
	if (lt == ST_NUM || lt == ST_COND) {
		pfail(p, p->c->nodes[left].start, "'in' needs text on its left, such as sex_of_head in [\"female\"]");
		return false;
	}
	if (!lex(p))
		return false;
	if (p->t.kind != TK_LBRACK)
		return expect_failed(p, "'[' after in");
	if (!lex(p))
		return false;
	if (p->t.kind == TK_RBRACK) {
		pfail(p, p->t.start, "the list after 'in' is empty");
		return false;
	}
	uint32_t last = left;
	for (;;) {
		if (p->t.kind != TK_STR)
			return expect_failed(p, "a text in double quotes (the list after 'in' holds texts)");
		uint32_t item = node_add(p, OP_STR, ST_STR, p->t.start, p->t.start + p->t.len);
		p->c->nodes[last].next = item;
		last = item;
		if (!lex(p))
			return false;
		if (p->t.kind == TK_RBRACK)
			break;
		if (p->t.kind != TK_COMMA)
			return expect_failed(p, "',' or ']'");
		if (!lex(p))
			return false;
	}
	*out = node_add(p, OP_IN, ST_COND, p->c->nodes[left].start, p->t.start + 1);
	p->c->nodes[*out].first = left;
	return lex(p);
}

static bool parse_cmp(struct parser *p, uint32_t *out)
{
	static const enum op ops[] = {[TK_LT] = OP_LT, [TK_LE] = OP_LE, [TK_GT] = OP_GT,
				      [TK_GE] = OP_GE, [TK_EQ] = OP_EQ, [TK_NE] = OP_NE};
	uint32_t l, r;
	if (!parse_chain(p, true, &l))
		return false;
	if (p->t.kind == TK_IN) {
		if (!parse_in(p, l, out))
			return false;
	} else if (is_comparison(p->t.kind)) {
		struct tok t = p->t;
		if (!lex(p) || !parse_chain(p, true, &r))
			return false;
		enum stype lt = (enum stype)p->c->nodes[l].type, rt = (enum stype)p->c->nodes[r].type;
		if (t.kind != TK_EQ && t.kind != TK_NE) {
			if (!need_number(p, l) || !need_number(p, r))
				return false;
		} else if ((lt == ST_STR && (rt == ST_NUM || rt == ST_COND)) ||
			   (rt == ST_STR && (lt == ST_NUM || lt == ST_COND))) {
			pfail(p, t.start, "compares text with a number");
			return false;
		}
		*out = node_add(p, ops[t.kind], ST_COND, p->c->nodes[l].start, node_end(p, r));
		p->c->nodes[*out].first = l;
		p->c->nodes[l].next = r;
	} else {
		*out = l;
		return true;
	}
	if (is_comparison(p->t.kind) || p->t.kind == TK_IN) {
		pfail(p, p->t.start, "comparisons do not chain: write a < b and b < c");
		return false;
	}
	return true;
}

static bool parse_not(struct parser *p, uint32_t *out)
{
	if (p->t.kind != TK_NOT)
		return parse_cmp(p, out);
	uint32_t at = p->t.start, k;
	if (!enter(p, at) || !lex(p) || !parse_not(p, &k) || !need_condition(p, k, "'not'"))
		return false;
	p->depth--;
	*out = node_add(p, OP_NOT, ST_COND, at, node_end(p, k));
	p->c->nodes[*out].first = k;
	return true;
}

/* or and and: a chain of conditions. */
static bool parse_logic(struct parser *p, bool is_or, uint32_t *out)
{
	enum tk word = is_or ? TK_OR : TK_AND;
	const char *what = is_or ? "'or'" : "'and'";
	uint32_t first, last;
	if (!(is_or ? parse_logic(p, false, &first) : parse_not(p, &first)))
		return false;
	if (p->t.kind != word) {
		*out = first;
		return true;
	}
	if (!need_condition(p, first, what))
		return false;
	last = first;
	while (p->t.kind == word) {
		uint32_t k;
		if (!lex(p) || !(is_or ? parse_logic(p, false, &k) : parse_not(p, &k)) || !need_condition(p, k, what))
			return false;
		p->c->nodes[last].next = k;
		last = k;
	}
	*out = node_add(p, is_or ? OP_OR : OP_AND, ST_COND, p->c->nodes[first].start, node_end(p, last));
	p->c->nodes[*out].first = first;
	return true;
}

static bool parse_or(struct parser *p, uint32_t *out)
{
	return parse_logic(p, true, out);
}

/* Compiles c->expr into c->nodes; on failure p->why and p->err_at say what and where. */
static bool parse_condition(struct parser *p)
{
	uint32_t root;
	if (!lex(p))
		return false;
	if (p->t.kind == TK_END) {
		pfail(p, 0, "the expression is empty");
		return false;
	}
	if (!parse_or(p, &root))
		return false;
	if (p->t.kind != TK_END)
		return expect_failed(p, "an operator, and, or or the end of the expression");
	if (p->c->nodes[root].type != ST_COND) {
		pfail(p, 0, "a condition must be a comparison (such as age_of_head >= 70), an 'in' test, or several "
			    "joined with and, or, not");
		return false;
	}
	p->c->root = root;
	return true;
}

/* ---- rule files --------------------------------------------------------------------------------------- */

enum sec { SEC_NONE, SEC_PROGRAMME, SEC_CONDITION };

struct seg {
	uint32_t off; /* where this line's text starts in the joined value */
	int line;
};

struct load {
	const char *path;
	const char *want_code;
	struct prog *g;
	/* the reader */
	const char *data;
	size_t len, pos;
	int line;      /* lines handed to inih so far: the one it is working on */
	bool indented; /* that line starts with white space */
	/* the section being read */
	enum sec sec;
	int sec_line;
	char sec_name[64]; /* as inih names it */
	char prev_key[16]; /* last key of the section, which an indented line continues (inih's prev_name) */
	bool seen_programme;
	char cond_name[ELIG_NAME_MAX + 1];
	struct hf_buf code, expr, explain;
	int code_line, expr_line, explain_line;
	struct seg segs[SEGS_MAX];
	size_t nsegs;
	/* the first error */
	bool failed;
	int err_line; /* 0: the whole file */
	char why[512];
};

HF_PRINTF(3, 4) static void lfail(struct load *ld, int line, const char *fmt, ...)
{
	if (ld->failed)
		return;
	ld->failed = true;
	ld->err_line = line;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ld->why, sizeof(ld->why), fmt, ap);
	va_end(ap);
}

static void expr_position(const struct load *ld, uint32_t off, int *line, uint32_t *col)
{
	size_t k = 0;
	for (size_t i = 0; i < ld->nsegs; i++)
		if (ld->segs[i].off <= off)
			k = i;
	*line = ld->segs[k].line;
	*col = off - ld->segs[k].off + 1;
}

static void finish_condition(struct load *ld)
{
	char name[ELIG_NAME_MAX + 1];
	hf_strlcpy(name, ld->cond_name, sizeof(name));
	if (!ld->expr_line) {
		lfail(ld, ld->sec_line, "condition '%s' has no expr", name);
		return;
	}
	if (!ld->explain_line) {
		lfail(ld, ld->sec_line, "condition '%s' has no explain (the sentence a reviewer reads)", name);
		return;
	}
	if (ld->explain.len == 0 || !hf_utf8_valid_text(hf_buf_cstr(&ld->explain), ld->explain.len)) {
		lfail(ld, ld->explain_line, "explain must be non-empty UTF-8 text without control characters");
		return;
	}
	struct cond c = {.root = NIL};
	hf_strlcpy(c.name, name, sizeof(c.name));
	c.expr = hf_xstrndup(hf_buf_cstr(&ld->expr), ld->expr.len);
	struct parser p = {.s = c.expr, .len = (uint32_t)ld->expr.len, .c = &c, .g = ld->g};
	if (!parse_condition(&p)) {
		int line;
		uint32_t col;
		expr_position(ld, p.err_at, &line, &col);
		lfail(ld, line, "expr column %u: %s", col, p.why);
		free(c.expr);
		free(c.nodes);
		return;
	}
	c.explain = hf_xstrndup(hf_buf_cstr(&ld->explain), ld->explain.len);
	struct prog *g = ld->g;
	g->conds = hf_xrealloc(g->conds, (g->nconds + 1) * sizeof(*g->conds));
	g->conds[g->nconds++] = c;
}

static void finish_section(struct load *ld)
{
	if (ld->failed)
		return;
	if (ld->sec == SEC_PROGRAMME) {
		const char *code = hf_buf_cstr(&ld->code);
		char d[48];
		if (!ld->code_line)
			lfail(ld, ld->sec_line, "[programme] has no code");
		else if (!code_ok(code, ld->code.len))
			lfail(ld, ld->code_line, "code '%s' is not a programme code (2-32 of A-Z, 0-9, - and _)",
			      snippet(code, ld->code.len, d, sizeof(d)));
		else if (strcmp(code, ld->want_code) != 0)
			lfail(ld, ld->code_line, "code %s does not match the file name %s.ini", code, ld->want_code);
		else
			hf_strlcpy(ld->g->code, code, sizeof(ld->g->code));
	} else if (ld->sec == SEC_CONDITION) {
		finish_condition(ld);
	}
	ld->sec = SEC_NONE;
}

/* A "[...]" line at the start of a line; t is what follows the '['. */
static void section_begin(struct load *ld, const char *t, size_t n)
{
	finish_section(ld);
	if (ld->failed)
		return;
	char d[48];
	const char *close = memchr(t, ']', n);
	if (!close) {
		lfail(ld, ld->line, "section header without ']'");
		return;
	}
	size_t nl = (size_t)(close - t);
	snprintf(ld->sec_name, sizeof(ld->sec_name), "%.*s", (int)(nl < 49 ? nl : 49), t);
	ld->sec_line = ld->line;
	ld->prev_key[0] = '\0';
	ld->code_line = ld->expr_line = ld->explain_line = 0;
	ld->nsegs = 0;
	hf_buf_reset(&ld->code);
	hf_buf_reset(&ld->expr);
	hf_buf_reset(&ld->explain);
	if (nl == 9 && memcmp(t, "programme", 9) == 0) {
		if (ld->seen_programme)
			lfail(ld, ld->line, "a second [programme] section");
		ld->seen_programme = true;
		ld->sec = SEC_PROGRAMME;
		return;
	}
	if (nl == 9 && memcmp(t, "condition", 9) == 0) {
		lfail(ld, ld->line, "a condition needs a name: [condition NAME]");
		return;
	}
	if (nl > 10 && memcmp(t, "condition ", 10) == 0) {
		const char *name = t + 10;
		size_t nn = nl - 10;
		if (!cond_name_ok(name, nn)) {
			lfail(ld, ld->line, "condition name '%s' must be 1-%d of a-z, 0-9, _ and -",
			      snippet(name, nn, d, sizeof(d)), ELIG_NAME_MAX);
			return;
		}
		for (size_t i = 0; i < ld->g->nconds; i++) {
			if (strlen(ld->g->conds[i].name) == nn && memcmp(ld->g->conds[i].name, name, nn) == 0) {
				lfail(ld, ld->line, "a second condition named '%s'", ld->g->conds[i].name);
				return;
			}
		}
		if (ld->g->nconds >= ELIG_CONDITIONS_MAX) {
			lfail(ld, ld->line, "more than %d conditions", ELIG_CONDITIONS_MAX);
			return;
		}
		memcpy(ld->cond_name, name, nn);
		ld->cond_name[nn] = '\0';
		ld->sec = SEC_CONDITION;
		return;
	}
	lfail(ld, ld->line, "unknown section [%s]: expected [programme] or [condition NAME]",
	      snippet(t, nl, d, sizeof(d)));
}

static bool ini_space(char c)
{
	return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r' || c == '\n';
}

/* What the reader sees of a line before inih does: section headers and indentation. */
static void look_at_line(struct load *ld, const char *s, size_t n)
{
	size_t i = 0;
	if (ld->line == 1 && n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
		i = 3; /* inih skips a UTF-8 byte order mark */
	ld->indented = i < n && ini_space(s[i]);
	size_t j = i;
	while (j < n && ini_space(s[j]))
		j++;
	if (j == n || s[j] != '[')
		return; /* blank, a comment or a key */
	if (ld->indented && ld->prev_key[0])
		return; /* inih continues the previous value with it, e.g. a list on its own line */
	if (ld->indented) {
		lfail(ld, ld->line, "a [section] header must start at the beginning of the line");
		return;
	}
	section_begin(ld, s + i + 1, n - i - 1);
}

/* inih's reader: exactly one line per call, so that ld->line is the line inih is on. */
static char *ini_read(char *str, int num, void *stream)
{
	struct load *ld = stream;
	if (ld->failed || ld->pos >= ld->len)
		return NULL;
	const char *s = ld->data + ld->pos;
	size_t rest = ld->len - ld->pos;
	const char *nl = memchr(s, '\n', rest);
	size_t n = nl ? (size_t)(nl - s) : rest;
	ld->pos += nl ? n + 1 : n;
	ld->line++;
	if (n && s[n - 1] == '\r')
		n--;
	if (memchr(s, '\0', n)) {
		lfail(ld, ld->line, "the line contains a NUL byte");
		return NULL;
	}
	/* inih's buffer holds the line, its newline and a NUL; it would split a longer line silently. */
	if (num < 3 || n > (size_t)num - 2) {
		lfail(ld, ld->line, "line longer than %d characters: continue a long expression on indented lines",
		      num < 3 ? 0 : num - 2);
		return NULL;
	}
	memcpy(str, s, n);
	str[n] = '\n';
	str[n + 1] = '\0';
	look_at_line(ld, s, n);
	return ld->failed ? NULL : str;
}

/* The value a key of the current section goes into, or NULL if the key is not one of the section's. */
static struct hf_buf *key_target(struct load *ld, const char *name, int **line, size_t *max)
{
	if (ld->sec == SEC_PROGRAMME && strcmp(name, "code") == 0) {
		*line = &ld->code_line;
		*max = ELIG_CODE_MAX;
		return &ld->code;
	}
	if (ld->sec == SEC_CONDITION && strcmp(name, "expr") == 0) {
		*line = &ld->expr_line;
		*max = ELIG_EXPR_MAX;
		return &ld->expr;
	}
	if (ld->sec == SEC_CONDITION && strcmp(name, "explain") == 0) {
		*line = &ld->explain_line;
		*max = ELIG_EXPLAIN_MAX;
		return &ld->explain;
	}
	return NULL;
}

/* An indented line that reads "name = ..." was most likely meant as a key of its own. */
static bool looks_like_key(const char *v)
{
	size_t i = 0;
	while (is_name_char(v[i]))
		i++;
	if (i == 0)
		return false;
	while (v[i] == ' ' || v[i] == '\t')
		i++;
	return v[i] == '=' && v[i + 1] != '=';
}

/* The expression so far ends with the word "in": a list may follow on the next line. */
static bool ends_with_in(const struct hf_buf *b)
{
	size_t n = b->len;
	return n >= 2 && memcmp(b->data + n - 2, "in", 2) == 0 && (n == 2 || !is_name_char(b->data[n - 3]));
}

static int ini_on_value(void *user, const char *section, const char *name, const char *value)
{
	struct load *ld = user;
	char d[48];
	if (ld->failed)
		return 0;
	if (ld->sec == SEC_NONE) {
		lfail(ld, ld->line, "'%s' is outside a section: a rule file starts with [programme]",
		      snippet(name, strlen(name), d, sizeof(d)));
		return 0;
	}
	if (strcmp(section, ld->sec_name) != 0) {
		lfail(ld, ld->line, "cannot tell which section this line belongs to");
		return 0;
	}
	bool cont = ld->indented && ld->prev_key[0] && strcmp(name, ld->prev_key) == 0;
	if (!cont)
		hf_strlcpy(ld->prev_key, name, sizeof(ld->prev_key));
	int *line;
	size_t max;
	struct hf_buf *dst = key_target(ld, name, &line, &max);
	if (!dst) {
		lfail(ld, ld->line, "unknown key '%s' in [%s]: expected %s", snippet(name, strlen(name), d, sizeof(d)),
		      ld->sec == SEC_PROGRAMME ? "programme" : "condition ...",
		      ld->sec == SEC_PROGRAMME ? "code" : "expr and explain");
		return 0;
	}
	if (cont) {
		/* An indented "[condition x]" would swallow a whole condition: only a list after "in" may start
		 * a continuation line with '['. */
		if (looks_like_key(value) || (value[0] == '[' && !(dst == &ld->expr && ends_with_in(dst)))) {
			lfail(ld, ld->line, "this line is indented, so it continues %s; remove the indentation", name);
			return 0;
		}
		if (dst == &ld->code) {
			lfail(ld, ld->line, "code must be on one line");
			return 0;
		}
		if (dst == &ld->expr) {
			if (ld->nsegs == SEGS_MAX) {
				lfail(ld, ld->line, "expr continues on more than %d lines", SEGS_MAX);
				return 0;
			}
			ld->segs[ld->nsegs++] = (struct seg){(uint32_t)(dst->len + (dst->len > 0)), ld->line};
		}
		if ((dst->len > 0 && hf_buf_append(dst, " ", 1)) || hf_buf_append_str(dst, value)) {
			lfail(ld, ld->line, "%s is longer than %zu characters", name, max);
			return 0;
		}
		return 1;
	}
	if (*line) {
		lfail(ld, ld->line, "%s is set twice (first on line %d)", name, *line);
		return 0;
	}
	*line = ld->line;
	if (dst == &ld->expr) {
		ld->segs[0] = (struct seg){0, ld->line};
		ld->nsegs = 1;
	}
	if (hf_buf_append_str(dst, value)) {
		lfail(ld, ld->line, "%s is longer than %zu characters", name, max);
		return 0;
	}
	return 1;
}

/* Compiles one rule file's text. path names it in messages; code is what its [programme] must say.
 * On error writes "path:line: reason" (or "path: reason") into err and returns HF_EINVAL. */
static hf_err prog_parse(const char *path, const char *code, const char *data, size_t len, struct prog **out,
			 struct hf_buf *err)
{
	struct load ld = {.path = path, .want_code = code, .data = data, .len = len};
	ld.g = hf_xcalloc(1, sizeof(*ld.g));
	hf_buf_init(&ld.code, ELIG_CODE_MAX + 8);
	hf_buf_init(&ld.expr, ELIG_EXPR_MAX);
	hf_buf_init(&ld.explain, ELIG_EXPLAIN_MAX);
	hf_err e = HF_OK;
	if (len > ELIG_FILE_MAX)
		lfail(&ld, 0, "larger than %d bytes", ELIG_FILE_MAX);
	int ret = ld.failed ? 0 : ini_parse_stream(ini_read, &ld, ini_on_value, &ld);
	finish_section(&ld); /* before comparing with inih's error: the last section's lines come first */
	if (ret < 0) {
		lfail(&ld, 0, "cannot be parsed (inih error %d)", ret);
	} else if (ret > 0 && (!ld.failed || ret < ld.err_line)) {
		/* inih found a line that is neither a section, a key = value nor a comment before our first error. */
		ld.failed = false;
		lfail(&ld, ret, "syntax error: expected [section], key = value or a comment");
	}
	if (!ld.seen_programme)
		lfail(&ld, 0, "no [programme] section");
	if (ld.g->nconds == 0)
		lfail(&ld, 0, "no [condition NAME] section: a programme needs at least one condition");
	if (ld.failed) {
		if (ld.err_line > 0)
			hf_buf_note(err, "%s:%d: %s", path, ld.err_line, ld.why);
		else
			hf_buf_note(err, "%s: %s", path, ld.why);
		e = HF_EINVAL;
		goto out_release;
	}
	uint8_t digest[32];
	hf_sha256(data, len, digest);
	hf_hex(digest, 8, ld.g->version);
	*out = ld.g;
	ld.g = NULL;
out_release:
	prog_free(ld.g);
	hf_buf_release(&ld.code);
	hf_buf_release(&ld.expr);
	hf_buf_release(&ld.explain);
	return e;
}

static int ini_name_filter(const struct dirent *d)
{
	size_t n = strlen(d->d_name);
	return d->d_name[0] != '.' && n > 4 && strcmp(d->d_name + n - 4, ".ini") == 0;
}

static int name_order(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

hf_err elig_load_dir(const char *dir, struct elig_set **out, struct hf_buf *err)
{
	hf_err e = HF_OK;
	struct dirent **names = NULL;
	struct hf_buf path, text;
	hf_buf_init(&path, 4096);
	hf_buf_init(&text, ELIG_FILE_MAX);
	struct elig_set *s = hf_xcalloc(1, sizeof(*s));
	int n = scandir(dir, &names, ini_name_filter, name_order);
	if (n < 0) {
		hf_buf_note(err, "%s: cannot read the rules folder: %s", dir, strerror(errno));
		e = HF_EIO;
		goto out_free;
	}
	if (n > ELIG_PROGRAMMES_MAX) {
		hf_buf_note(err, "%s: more than %d rule files", dir, ELIG_PROGRAMMES_MAX);
		e = HF_EINVAL;
		goto out_free;
	}
	s->progs = hf_xcalloc((size_t)n + 1, sizeof(*s->progs));
	for (int i = 0; i < n; i++) {
		const char *name = names[i]->d_name;
		size_t stem = strlen(name) - 4;
		char code[ELIG_CODE_MAX + 1];
		hf_buf_reset(&path);
		if (hf_buf_appendf(&path, "%s/%s", dir, name)) {
			hf_buf_note(err, "%s: path too long", dir);
			e = HF_EINVAL;
			goto out_free;
		}
		if (!code_ok(name, stem)) {
			hf_buf_note(err, "%s: the file name must be <PROGRAMME_CODE>.ini (2-32 of A-Z, 0-9, - and _)",
				    hf_buf_cstr(&path));
			e = HF_EINVAL;
			goto out_free;
		}
		memcpy(code, name, stem);
		code[stem] = '\0';
		hf_buf_release(&text);
		e = hf_file_read(hf_buf_cstr(&path), ELIG_FILE_MAX, false, &text);
		if (e == HF_ETOOBIG) {
			hf_buf_note(err, "%s: larger than %d bytes", hf_buf_cstr(&path), ELIG_FILE_MAX);
			e = HF_EINVAL;
			goto out_free;
		}
		if (e) {
			hf_buf_note(err, "%s: cannot read: %s", hf_buf_cstr(&path), strerror(errno));
			e = HF_EIO;
			goto out_free;
		}
		e = prog_parse(hf_buf_cstr(&path), code, text.data ? text.data : "", text.len, &s->progs[s->n], err);
		if (e)
			goto out_free;
		s->n++;
	}
	for (size_t i = 0; i < s->n; i++)
		hf_log(HF_LOG_INFO, "core.elig", "msg=\"eligibility rules loaded\" programme=%s conditions=%zu "
		       "rules_version=%s", s->progs[i]->code, s->progs[i]->nconds, s->progs[i]->version);
	*out = s;
	s = NULL;
out_free:
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	elig_free(s);
	hf_buf_release(&path);
	hf_buf_release(&text);
	return e;
}

/* ---- input variables ---------------------------------------------------------------------------------- */

struct elig_var {
	char name[ELIG_NAME_MAX + 1];
	bool is_str;
	double num;
	char *str; /* owned */
};

struct elig_vars {
	struct elig_var *v; /* owned */
	size_t n;
};

struct elig_vars *elig_vars_new(void)
{
	return hf_xcalloc(1, sizeof(struct elig_vars));
}

void elig_vars_free(struct elig_vars *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n; i++)
		free(v->v[i].str);
	free(v->v);
	free(v);
}

static const struct elig_var *vars_find(const struct elig_vars *v, const char *name)
{
	for (size_t i = 0; v && i < v->n; i++)
		if (strcmp(v->v[i].name, name) == 0)
			return &v->v[i];
	return NULL;
}

static hf_err vars_add(struct elig_vars *v, const char *name, struct elig_var **out)
{
	if (!name || !var_name_ok(name, strlen(name)))
		return HF_EINVAL;
	if (vars_find(v, name))
		return HF_ECONFLICT;
	if (v->n >= ELIG_VARS_MAX)
		return HF_ETOOBIG;
	v->v = hf_xrealloc(v->v, (v->n + 1) * sizeof(*v->v));
	struct elig_var *x = &v->v[v->n];
	*x = (struct elig_var){0};
	hf_strlcpy(x->name, name, sizeof(x->name));
	*out = x;
	return HF_OK;
}

hf_err elig_vars_num(struct elig_vars *v, const char *name, double value)
{
	struct elig_var *x;
	if (!isfinite(value))
		return HF_EINVAL;
	hf_err e = vars_add(v, name, &x);
	if (e)
		return e;
	x->num = value;
	v->n++;
	return HF_OK;
}

hf_err elig_vars_str(struct elig_vars *v, const char *name, const char *value)
{
	struct elig_var *x;
	if (!value)
		return HF_EINVAL;
	size_t n = strlen(value);
	if (n > ELIG_STR_MAX)
		return HF_ETOOBIG;
	if (!hf_utf8_valid_text(value, n))
		return HF_EINVAL;
	hf_err e = vars_add(v, name, &x);
	if (e)
		return e;
	x->is_str = true;
	x->str = hf_xstrndup(value, n);
	v->n++;
	return HF_OK;
}

/* ---- evaluation --------------------------------------------------------------------------------------- */

enum vk { VK_NUM, VK_STR, VK_UNDECIDED };

struct val {
	enum vk k;
	double num;
	struct hf_str str;
};

static const struct val UNDECIDED = {VK_UNDECIDED, 0, {NULL, 0}};

struct ectx {
	const struct prog *g;
	const struct cond *c;
	const struct elig_var **slots; /* per programme variable: the input, or NULL when missing */
	uint32_t *missing;             /* programme variables found missing, possibly repeated */
	size_t nmissing, capmissing;
	bool has_err;
	char err[300]; /* the first evaluation error of the condition */
};

static struct val v_num(double d)
{
	return (struct val){VK_NUM, d, {NULL, 0}};
}

HF_PRINTF(2, 3) static void efail(struct ectx *x, const char *fmt, ...)
{
	if (x->has_err)
		return;
	x->has_err = true;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(x->err, sizeof(x->err), fmt, ap);
	va_end(ap);
}

/* The text of node i, for an error message (cut at 60 characters). */
static const char *node_text(const struct ectx *x, uint32_t i, char *out, size_t out_size)
{
	const struct node *n = &x->c->nodes[i];
	return snippet(x->c->expr + n->start, n->len, out, out_size);
}

static struct val eval_node(struct ectx *x, uint32_t i, struct val *left_out);

/* Evaluates node i. When the result is decided, whatever its operands lacked did not matter (an and with
 * one false operand): the missing variables and the error they recorded are dropped again. */
static struct val eval(struct ectx *x, uint32_t i)
{
	size_t mark = x->nmissing;
	bool had_err = x->has_err;
	struct val v = eval_node(x, i, NULL);
	if (v.k != VK_UNDECIDED) {
		x->nmissing = mark;
		if (!had_err)
			x->has_err = false;
	}
	return v;
}

static struct val eval_number(struct ectx *x, uint32_t i)
{
	struct val v = eval(x, i);
	if (v.k == VK_STR) {
		char d[64];
		efail(x, "'%s' is text where a number is needed", node_text(x, i, d, sizeof(d)));
		return UNDECIDED;
	}
	return v;
}

static struct val number_result(struct ectx *x, uint32_t i, double d)
{
	if (isfinite(d))
		return v_num(d);
	char t[64];
	efail(x, "'%s' is too large a number", node_text(x, i, t, sizeof(t)));
	return UNDECIDED;
}

static struct val eval_arith(struct ectx *x, uint32_t i)
{
	const struct node *n = &x->c->nodes[i];
	const struct node *nodes = x->c->nodes;
	double acc = n->op == OP_PROD ? 1 : 0;
	bool undecided = false;
	/* Every operand is evaluated, so that all missing variables of a score are named at once. */
	for (uint32_t k = n->first; k != NIL; k = nodes[k].next) {
		struct val v = eval_number(x, k);
		if (v.k == VK_UNDECIDED) {
			undecided = true;
			continue;
		}
		switch (nodes[k].kop) {
		case OP_ADD: acc += v.num; break;
		case OP_SUB: acc -= v.num; break;
		case OP_MUL: acc *= v.num; break;
		default:
			HF_ASSERT(nodes[k].kop == OP_DIV);
			if (v.num == 0) {
				char t[64];
				efail(x, "division by zero: '%s' is 0", node_text(x, k, t, sizeof(t)));
				undecided = true;
				continue;
			}
			acc /= v.num;
		}
	}
	return undecided ? UNDECIDED : number_result(x, i, acc);
}

static struct val eval_function(struct ectx *x, uint32_t i)
{
	const struct node *n = &x->c->nodes[i];
	bool undecided = false, any = false;
	double acc = 0;
	for (uint32_t k = n->first; k != NIL; k = x->c->nodes[k].next) {
		struct val v = eval_number(x, k);
		if (v.k == VK_UNDECIDED) {
			undecided = true;
			continue;
		}
		if (!any || (n->op == OP_MIN && v.num < acc) || (n->op == OP_MAX && v.num > acc))
			acc = v.num;
		any = true;
	}
	if (undecided)
		return UNDECIDED;
	return v_num(n->op == OP_ABS ? fabs(acc) : acc);
}

static struct val eval_compare(struct ectx *x, uint32_t i, struct val *left_out)
{
	const struct node *n = &x->c->nodes[i];
	uint32_t li = n->first, ri = x->c->nodes[li].next;
	struct val a = eval(x, li), b = eval(x, ri);
	if (left_out)
		*left_out = a;
	if (a.k == VK_UNDECIDED || b.k == VK_UNDECIDED)
		return UNDECIDED;
	char t1[64], t2[64];
	if (a.k != b.k) {
		efail(x, "'%s' is %s and '%s' is %s: they cannot be compared", node_text(x, li, t1, sizeof(t1)),
		      a.k == VK_STR ? "text" : "a number", node_text(x, ri, t2, sizeof(t2)),
		      b.k == VK_STR ? "text" : "a number");
		return UNDECIDED;
	}
	bool r;
	if (a.k == VK_STR) {
		if (n->op != OP_EQ && n->op != OP_NE) {
			efail(x, "'%s' and '%s' are text: only == and != compare texts",
			      node_text(x, li, t1, sizeof(t1)), node_text(x, ri, t2, sizeof(t2)));
			return UNDECIDED;
		}
		r = hf_str_eq(a.str, b.str) == (n->op == OP_EQ);
		return v_num(r);
	}
	switch (n->op) {
	case OP_LT: r = a.num < b.num; break;
	case OP_LE: r = a.num <= b.num; break;
	case OP_GT: r = a.num > b.num; break;
	case OP_GE: r = a.num >= b.num; break;
	case OP_EQ: r = a.num == b.num; break;
	default: HF_ASSERT(n->op == OP_NE); r = a.num != b.num; break;
	}
	return v_num(r);
}

static struct val eval_in(struct ectx *x, uint32_t i, struct val *left_out)
{
	const struct node *nodes = x->c->nodes;
	uint32_t li = nodes[i].first;
	struct val a = eval(x, li);
	if (left_out)
		*left_out = a;
	if (a.k == VK_UNDECIDED)
		return a;
	if (a.k != VK_STR) {
		char t[64];
		efail(x, "'%s' is a number: 'in' needs text", node_text(x, li, t, sizeof(t)));
		return UNDECIDED;
	}
	for (uint32_t k = nodes[li].next; k != NIL; k = nodes[k].next) {
		struct hf_str item = {x->c->expr + nodes[k].start + 1, (size_t)nodes[k].len - 2};
		if (hf_str_eq(a.str, item))
			return v_num(1);
	}
	return v_num(0);
}

/* Kleene's and/or: an operand that settles the result decides even when another is undecided. */
static struct val eval_logic(struct ectx *x, uint32_t i)
{
	const struct node *n = &x->c->nodes[i];
	bool is_and = n->op == OP_AND, undecided = false;
	for (uint32_t k = n->first; k != NIL; k = x->c->nodes[k].next) {
		struct val v = eval(x, k);
		if (v.k == VK_UNDECIDED) {
			undecided = true;
			continue;
		}
		HF_ASSERT(v.k == VK_NUM);
		if ((v.num != 0) != is_and)
			return v_num(!is_and);
	}
	return undecided ? UNDECIDED : v_num(is_and);
}

/* left_out (may be NULL) receives the left side's value of a comparison or 'in'. */
static struct val eval_node(struct ectx *x, uint32_t i, struct val *left_out)
{
	const struct node *n = &x->c->nodes[i];
	switch ((enum op)n->op) {
	case OP_NUM:
		return v_num(n->num);
	case OP_STR:
		return (struct val){VK_STR, 0, {x->c->expr + n->start + 1, (size_t)n->len - 2}};
	case OP_VAR: {
		const struct elig_var *in = x->slots[n->first];
		if (!in) {
			if (x->nmissing == x->capmissing) {
				x->capmissing = x->capmissing ? 2 * x->capmissing : 8;
				x->missing = hf_xrealloc(x->missing, x->capmissing * sizeof(*x->missing));
			}
			x->missing[x->nmissing++] = n->first;
			return UNDECIDED;
		}
		if (in->is_str)
			return (struct val){VK_STR, 0, hf_str_from(in->str)};
		return v_num(in->num);
	}
	case OP_NEG: {
		struct val v = eval_number(x, n->first);
		return v.k == VK_UNDECIDED ? v : v_num(-v.num);
	}
	case OP_ABS:
	case OP_MIN:
	case OP_MAX:
		return eval_function(x, i);
	case OP_SUM:
	case OP_PROD:
		return eval_arith(x, i);
	case OP_LT:
	case OP_LE:
	case OP_GT:
	case OP_GE:
	case OP_EQ:
	case OP_NE:
		return eval_compare(x, i, left_out);
	case OP_IN:
		return eval_in(x, i, left_out);
	case OP_NOT: {
		struct val v = eval(x, n->first);
		return v.k == VK_UNDECIDED ? v : v_num(v.num == 0);
	}
	case OP_AND:
	case OP_OR:
		return eval_logic(x, i);
	case OP_ADD:
	case OP_SUB:
	case OP_MUL:
	case OP_DIV:
		break;
	}
	HF_ASSERT(!"node with an operand-only op");
	return UNDECIDED;
}

const char *elig_outcome_name(enum elig_outcome o)
{
	switch (o) {
	case ELIG_ELIGIBLE: return "eligible";
	case ELIG_NOT_ELIGIBLE: return "not_eligible";
	case ELIG_NEEDS_REVIEW: return "needs_review";
	}
	return "needs_review";
}

/* Our own strings are valid UTF-8 (checked at load and by elig_vars_str): jansson cannot refuse them. */
static void set_new(json_t *obj, const char *key, json_t *v)
{
	HF_ASSERT(v != NULL && json_object_set_new(obj, key, v) == 0);
}

static json_t *number_json(double d)
{
	if (d == floor(d) && fabs(d) < 9007199254740992.0)
		return json_integer((json_int_t)d);
	return json_real(d);
}

/* Evaluates one condition into its explanation object; returns whether it was decided, and how. */
static json_t *eval_condition(struct ectx *x, const struct cond *c, bool *decided, bool *passed, json_t *missing,
			      bool *reported)
{
	x->c = c;
	x->nmissing = 0;
	x->has_err = false;
	struct val left = UNDECIDED;
	uint8_t op = c->nodes[c->root].op;
	bool has_left = (op >= OP_LT && op <= OP_NE) || op == OP_IN;
	struct val v = eval_node(x, c->root, has_left ? &left : NULL);
	json_t *o = json_object();
	set_new(o, "name", json_string(c->name));
	set_new(o, "expr", json_string(c->expr));
	set_new(o, "explain", json_string(c->explain));
	*decided = v.k != VK_UNDECIDED;
	*passed = *decided && v.num != 0;
	set_new(o, "passed", *decided ? json_boolean(*passed) : json_null());
	if (left.k == VK_NUM)
		set_new(o, "value", number_json(left.num));
	else if (left.k == VK_STR)
		set_new(o, "value", json_stringn(left.str.ptr, left.str.len));
	else
		set_new(o, "value", json_null());
	if (*decided) {
		set_new(o, "error", json_null());
		return o;
	}
	/* Undecided always has a reason: a missing variable or an error recorded on the way. */
	HF_ASSERT(x->has_err || x->nmissing > 0);
	struct hf_buf msg;
	hf_buf_init(&msg, 1024);
	if (x->has_err)
		hf_buf_note(&msg, "%s", x->err);
	/* Each missing variable once: first drop the repeats, then name them. */
	size_t distinct = 0;
	for (size_t i = 0; i < x->nmissing; i++) {
		bool seen = false;
		for (size_t j = 0; j < distinct && !seen; j++)
			seen = x->missing[j] == x->missing[i];
		if (!seen)
			x->missing[distinct++] = x->missing[i];
	}
	for (size_t i = 0; i < distinct; i++) {
		uint32_t vi = x->missing[i];
		if (!x->has_err)
			hf_buf_note(&msg, "%s%s", i ? ", " : distinct > 1 ? "missing variables " : "missing variable ",
				    x->g->vars[vi]);
		if (!reported[vi]) {
			reported[vi] = true;
			HF_ASSERT(json_array_append_new(missing, json_string(x->g->vars[vi])) == 0);
		}
	}
	set_new(o, "error", json_string(hf_buf_cstr(&msg)));
	hf_buf_release(&msg);
	return o;
}

hf_err elig_evaluate(const struct elig_set *s, const char *programme, const struct elig_vars *v,
		     enum elig_outcome *out_outcome, json_t **out_explain)
{
	const struct prog *g = prog_find(s, programme);
	if (!g)
		return HF_ENOTFOUND;
	struct ectx x = {.g = g};
	x.slots = hf_xcalloc(g->nvars ? g->nvars : 1, sizeof(*x.slots));
	bool *reported = hf_xcalloc(g->nvars ? g->nvars : 1, sizeof(*reported));
	for (size_t i = 0; i < g->nvars; i++)
		x.slots[i] = vars_find(v, g->vars[i]);
	json_t *conds = json_array(), *missing = json_array();
	bool all_passed = true, all_decided = true;
	for (size_t i = 0; i < g->nconds; i++) {
		bool decided, passed;
		json_t *o = eval_condition(&x, &g->conds[i], &decided, &passed, missing, reported);
		HF_ASSERT(json_array_append_new(conds, o) == 0);
		all_decided = all_decided && decided;
		all_passed = all_passed && passed;
	}
	enum elig_outcome outcome = !all_decided ? ELIG_NEEDS_REVIEW : all_passed ? ELIG_ELIGIBLE : ELIG_NOT_ELIGIBLE;
	json_t *r = json_object();
	set_new(r, "programme", json_string(g->code));
	set_new(r, "outcome", json_string(elig_outcome_name(outcome)));
	set_new(r, "conditions", conds);
	set_new(r, "missing", missing);
	set_new(r, "rules_version", json_string(g->version));
	free(x.slots);
	free(x.missing);
	free(reported);
	*out_outcome = outcome;
	*out_explain = r;
	return HF_OK;
}
