/* workflow.c - loads deploy/workflows/<case_type>.ini into immutable workflow definitions and validates them.
 *
 * Parsing is inih's (ini_parse_stream) with our own line reader, for two reasons. Debian builds libinih
 * without INI_HANDLER_LINENO, so the handler is not told the line: the reader counts the lines it hands
 * out, so the handler knows the current one, and every key's line is kept for the checks made after the
 * whole file is read (an unknown state in "from" is only known at the end). And the handler is never
 * called for a section without keys, so the reader notices "[section]" lines itself: an empty
 * "[state closed]" is still a state, and a section's line is known even before its first key.
 *
 * The reader also refuses indented lines: inih reads an indented line as the continuation of the previous
 * value ("multi-line values"), which would silently swallow a mis-indented key.
 *
 * Errors stop at the first one, as "file:line: reason": a broken file stops startup, and the first
 * problem is the one the operator fixes first (later ones are often its consequences).
 */
#include "hf_base.h"
#include "workflow.h"

#include <dirent.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WF_MAX_FILES 16 /* "*.ini" files in the folder: four case types, and room for mistakes to be named */
#define WF_VALUE_MAX 512
#define WF_ITEM_MAX 64 /* one item of a comma-separated list */

static const char *const case_types[] = {"application", "grievance", "change_request", "feedback"};
enum { CT_APPLICATION, CT_GRIEVANCE, CT_CHANGE_REQUEST, CT_FEEDBACK, CT_COUNT_ };

struct wf_def {
	int case_type; /* CT_* */
	char *source;  /* owned */
	const struct wf_state *initial;
	struct wf_actions initial_actions;
	size_t n_categories;
	char categories[WF_MAX_CATEGORIES][WF_NAME_MAX + 1];
	uint32_t confidential; /* bit i: categories[i] is confidential */
	int confidential_role;
	int duplicate_window_hours;
	char team_default[WF_NAME_MAX + 1];		     /* [teams] default; "" = none */
	char teams[WF_MAX_CATEGORIES][WF_NAME_MAX + 1]; /* [teams] by category index; "" = the default */
	size_t n_states;
	struct wf_state states[WF_MAX_STATES];
	size_t n_transitions;
	struct wf_transition transitions[WF_MAX_TRANSITIONS];
};

struct wf_set {
	struct wf_def *defs[CT_COUNT_]; /* by case type; NULL = not offered */
};

/* ---- keys ---------------------------------------------------------------------------------------------- */

enum {
	WK_CASE_TYPE,
	WK_INITIAL,
	WK_INITIAL_ACTIONS,
	WK_CATEGORIES,
	WK_CONF_CATEGORIES,
	WK_CONF_ROLE,
	WK_DUP_WINDOW,
	WK_COUNT_
};
static const char *const workflow_keys[WK_COUNT_] = {"case_type",
						     "initial",
						     "initial_actions",
						     "categories",
						     "confidential_categories",
						     "confidential_role",
						     "duplicate_window_hours"};
enum { SK_SLA, SK_AT_RISK, SK_ESCALATE, SK_TERMINAL, SK_COUNT_ };
static const char *const state_keys[SK_COUNT_] = {"sla_hours", "at_risk_percent", "escalate_to", "terminal"};
enum { TK_FROM, TK_TO, TK_ROLES, TK_REQUIRES, TK_MAKER_CHECKER, TK_ACTIONS, TK_COUNT_ };
static const char *const transition_keys[TK_COUNT_] = {"from", "to", "roles", "requires", "maker_checker", "actions"};

static const char *const field_names[] = {"note", "category", "decision", "reason", "assignee"};

/* Where a section and each of its keys are in the file (0 = not given). */
struct lines {
	int section;
	int key[8];
};

enum section_kind { SEC_NONE, SEC_WORKFLOW, SEC_STATE, SEC_TRANSITION, SEC_TEAMS };

/* One file being read: the definition being built and what the checks after parsing need. */
struct file_parse {
	const char *path;
	FILE *f;
	int line; /* lines handed to inih so far = the line the handler is looking at */
	const char *const *roles;
	size_t n_roles;
	struct hf_buf role_list; /* "admin, registrar, ..." for messages */
	struct wf_def *d;

	enum section_kind kind;
	size_t idx;   /* current state or transition */
	char cur[64]; /* current section's text, as inih passes it to the handler */

	struct lines wf;
	struct lines st[WF_MAX_STATES];
	struct lines tr[WF_MAX_TRANSITIONS];
	char initial[WF_NAME_MAX + 1];
	char conf_categories[WF_VALUE_MAX];		/* raw, checked against categories at the end */
	char tr_from[WF_MAX_TRANSITIONS][WF_VALUE_MAX]; /* raw lists of state names */
	char tr_to[WF_MAX_TRANSITIONS][WF_NAME_MAX + 1];
	/* [teams]: category (or "default") = team, checked against the categories at the end */
	int teams_section;
	size_t n_team_keys;
	char team_key[WF_MAX_CATEGORIES + 1][WF_NAME_MAX + 1];
	char team_val[WF_MAX_CATEGORIES + 1][WF_NAME_MAX + 1];
	int team_line[WF_MAX_CATEGORIES + 1];

	bool failed;
	int err_line;
	char msg[512];
};

HF_PRINTF(3, 4) static bool fail(struct file_parse *p, int line, const char *fmt, ...)
{
	if (p->failed)
		return false;
	p->failed = true;
	p->err_line = line;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->msg, sizeof(p->msg), fmt, ap);
	va_end(ap);
	return false;
}

static bool name_ok(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++)
		if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') || s[n] == '_'))
			return false;
	return n >= 1 && n <= WF_NAME_MAX;
}

static int find_name(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], s) == 0)
			return (int)i;
	return -1;
}

static int role_find(const struct file_parse *p, const char *s)
{
	return find_name(p->roles, p->n_roles, s);
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* ---- values -------------------------------------------------------------------------------------------- */

struct list {
	size_t n;
	char item[WF_MAX_ROLES + 2][WF_ITEM_MAX];
};

/* Splits "a, b, c" into trimmed items. none_ok: the single word "none" is the empty list. Refuses empty
 * values and items, more than max items, and an item listed twice. */
static bool list_split(struct file_parse *p, const char *key, const char *v, size_t max, bool none_ok, struct list *out)
{
	HF_ASSERT(max <= HF_ARRAY_LEN(out->item));
	out->n = 0;
	if (none_ok && strcmp(v, "none") == 0)
		return true;
	if (!*v)
		return fail(p, p->line, "'%s' is empty%s", key, none_ok ? " (write none for an empty list)" : "");
	const char *s = v;
	for (;;) {
		const char *comma = strchr(s, ',');
		const char *end = comma ? comma : s + strlen(s);
		while (s < end && is_blank(*s))
			s++;
		while (end > s && is_blank(end[-1]))
			end--;
		size_t len = (size_t)(end - s);
		if (len == 0)
			return fail(p, p->line, "'%s' has an empty item (two commas, or one at an end)", key);
		if (len >= WF_ITEM_MAX)
			return fail(p, p->line, "'%s' has an item longer than %d characters", key, WF_ITEM_MAX - 1);
		if (out->n == max)
			return fail(p, p->line, "'%s' lists more than %zu items", key, max);
		char *item = out->item[out->n];
		memcpy(item, s, len);
		item[len] = '\0';
		if (none_ok && strcmp(item, "none") == 0)
			return fail(p, p->line, "'%s': none cannot be combined with other items", key);
		for (size_t j = 0; j < out->n; j++)
			if (strcmp(out->item[j], item) == 0)
				return fail(p, p->line, "'%s' lists '%s' twice", key, item);
		out->n++;
		if (!comma)
			return true;
		s = comma + 1;
	}
}

static bool int_value(struct file_parse *p, const char *key, const char *v, int min, int max, int *out)
{
	int64_t x;
	if (hf_parse_i64(v, min, max, &x))
		return fail(p, p->line, "'%s' must be a whole number from %d to %d", key, min, max);
	*out = (int)x;
	return true;
}

static bool bool_value(struct file_parse *p, const char *key, const char *v, bool *out)
{
	if (strcmp(v, "true") == 0)
		*out = true;
	else if (strcmp(v, "false") == 0)
		*out = false;
	else
		return fail(p, p->line, "'%s' must be true or false", key);
	return true;
}

/* A staff role name, or none when none_ok ("system" is never a staff role). */
static bool role_value(struct file_parse *p, const char *key, const char *v, bool none_ok, int *out)
{
	if (none_ok && strcmp(v, "none") == 0) {
		*out = WF_ROLE_NONE;
		return true;
	}
	int r = role_find(p, v);
	if (r < 0)
		return fail(p, p->line, "'%s': unknown role '%s' (%s%s)", key, v, hf_buf_cstr(&p->role_list),
			    none_ok ? ", or none" : "");
	*out = r;
	return true;
}

static bool actions_value(struct file_parse *p, const char *key, const char *v, struct wf_actions *out)
{
	struct list l;
	if (!list_split(p, key, v, WF_MAX_ACTIONS, true, &l))
		return false;
	bool assign = false;
	out->n = 0;
	for (size_t i = 0; i < l.n; i++) {
		const char *s = l.item[i];
		struct wf_action a = {.role = WF_ROLE_NONE};
		if (strncmp(s, "sms:", 4) == 0) {
			if (!name_ok(s + 4))
				return fail(p, p->line,
					    "'%s': SMS template name '%s' must be 1-%d characters of a-z, 0-9 and _",
					    key, s + 4, WF_NAME_MAX);
			a.kind = WF_ACT_SMS;
			memcpy(a.name, s + 4, strlen(s + 4) + 1);
		} else if (strncmp(s, "assign:", 7) == 0) {
			if (assign)
				return fail(p, p->line, "'%s' has more than one assign action", key);
			assign = true;
			if (strcmp(s + 7, "team") == 0) {
				a.kind = WF_ACT_ASSIGN_TEAM;
			} else {
				a.kind = WF_ACT_ASSIGN_ROLE;
				a.role = role_find(p, s + 7);
				if (a.role < 0)
					return fail(p, p->line, "'%s': unknown role '%s' in '%s' (team, %s)", key,
						    s + 7, s, hf_buf_cstr(&p->role_list));
			}
		} else if (strcmp(s, "apply_change") == 0) {
			a.kind = WF_ACT_APPLY_CHANGE;
		} else if (strcmp(s, "eligibility") == 0) {
			a.kind = WF_ACT_ELIGIBILITY;
		} else if (strcmp(s, "close") == 0) {
			a.kind = WF_ACT_CLOSE;
		} else {
			return fail(p, p->line,
				    "'%s': unknown action '%s' (sms:TEMPLATE, assign:team, assign:ROLE, apply_change, "
				    "eligibility or close)",
				    key, s);
		}
		out->a[out->n++] = a;
	}
	return true;
}

/* A list of names ([a-z0-9_]{1,32}); what says which kind, for the message. */
static bool names_value(struct file_parse *p, const char *key, const char *v, const char *what, size_t max,
			bool none_ok, struct list *l)
{
	if (!list_split(p, key, v, max, none_ok, l))
		return false;
	for (size_t i = 0; i < l->n; i++)
		if (!name_ok(l->item[i]))
			return fail(p, p->line, "'%s': bad %s name '%s' (1-%d characters of a-z, 0-9 and _)", key, what,
				    l->item[i], WF_NAME_MAX);
	return true;
}

static bool raw_copy(struct file_parse *p, const char *key, const char *v, char *out, size_t out_size)
{
	if (!hf_strlcpy(out, v, out_size))
		return fail(p, p->line, "'%s' is too long", key);
	return true;
}

/* ---- sections and keys as they are read ---------------------------------------------------------------- */

/* Finds name in keys and records its line; refuses unknown and repeated keys. */
static int key_take(struct file_parse *p, const char *const *keys, size_t n, struct lines *ln, const char *name)
{
	int k = find_name(keys, n, name);
	if (k < 0) {
		struct hf_buf known;
		hf_buf_init(&known, 256);
		for (size_t i = 0; i < n; i++)
			hf_buf_note(&known, "%s%s", i ? ", " : "", keys[i]);
		fail(p, p->line, "unknown key '%s' in [%s] (known: %s)", name, p->cur, hf_buf_cstr(&known));
		hf_buf_release(&known);
		return -1;
	}
	if (ln->key[k]) {
		fail(p, p->line, "'%s' is set twice in [%s] (first at line %d)", name, p->cur, ln->key[k]);
		return -1;
	}
	ln->key[k] = p->line;
	return k;
}

static bool workflow_key(struct file_parse *p, const char *name, const char *v)
{
	struct wf_def *d = p->d;
	struct list l;
	int k = key_take(p, workflow_keys, WK_COUNT_, &p->wf, name);
	switch (k) {
	case WK_CASE_TYPE:
		d->case_type = find_name(case_types, CT_COUNT_, v);
		if (d->case_type < 0)
			return fail(p, p->line,
				    "unknown case_type '%s' (application, grievance, change_request or feedback)", v);
		return true;
	case WK_INITIAL:
		if (!name_ok(v))
			return fail(p, p->line, "'initial': bad state name '%s' (1-%d characters of a-z, 0-9 and _)", v,
				    WF_NAME_MAX);
		return raw_copy(p, name, v, p->initial, sizeof(p->initial));
	case WK_INITIAL_ACTIONS:
		return actions_value(p, name, v, &d->initial_actions);
	case WK_CATEGORIES:
		if (!names_value(p, name, v, "category", WF_MAX_CATEGORIES, true, &l))
			return false;
		for (size_t i = 0; i < l.n; i++)
			memcpy(d->categories[i], l.item[i], strlen(l.item[i]) + 1);
		d->n_categories = l.n;
		return true;
	case WK_CONF_CATEGORIES:
		if (!names_value(p, name, v, "category", WF_MAX_CATEGORIES, true, &l))
			return false;
		return raw_copy(p, name, v, p->conf_categories, sizeof(p->conf_categories));
	case WK_CONF_ROLE:
		return role_value(p, name, v, true, &d->confidential_role);
	case WK_DUP_WINDOW:
		return int_value(p, name, v, 0, 720, &d->duplicate_window_hours);
	default:
		return false;
	}
}

static bool state_key(struct file_parse *p, const char *name, const char *v)
{
	struct wf_state *st = &p->d->states[p->idx];
	int k = key_take(p, state_keys, SK_COUNT_, &p->st[p->idx], name);
	switch (k) {
	case SK_SLA:
		return int_value(p, name, v, 0, 8760, &st->sla_hours);
	case SK_AT_RISK:
		return int_value(p, name, v, 1, 99, &st->at_risk_percent);
	case SK_ESCALATE:
		return role_value(p, name, v, true, &st->escalate_to);
	case SK_TERMINAL:
		return bool_value(p, name, v, &st->terminal);
	default:
		return false;
	}
}

static bool transition_key(struct file_parse *p, const char *name, const char *v)
{
	struct wf_transition *t = &p->d->transitions[p->idx];
	struct list l;
	int k = key_take(p, transition_keys, TK_COUNT_, &p->tr[p->idx], name);
	switch (k) {
	case TK_FROM:
		if (!names_value(p, name, v, "state", WF_MAX_STATES, false, &l))
			return false;
		return raw_copy(p, name, v, p->tr_from[p->idx], sizeof(p->tr_from[p->idx]));
	case TK_TO:
		if (!name_ok(v))
			return fail(p, p->line, "'to': bad state name '%s' (1-%d characters of a-z, 0-9 and _)", v,
				    WF_NAME_MAX);
		return raw_copy(p, name, v, p->tr_to[p->idx], sizeof(p->tr_to[p->idx]));
	case TK_ROLES:
		if (!list_split(p, name, v, WF_MAX_ROLES + 1, false, &l))
			return false;
		for (size_t i = 0; i < l.n; i++) {
			if (strcmp(l.item[i], "system") == 0) {
				t->system = true;
				continue;
			}
			int r = role_find(p, l.item[i]);
			if (r < 0)
				return fail(p, p->line, "'roles': unknown role '%s' (%s, or system)", l.item[i],
					    hf_buf_cstr(&p->role_list));
			t->roles |= 1u << r;
		}
		return true;
	case TK_REQUIRES:
		if (!list_split(p, name, v, HF_ARRAY_LEN(field_names), true, &l))
			return false;
		for (size_t i = 0; i < l.n; i++) {
			int f = find_name(field_names, HF_ARRAY_LEN(field_names), l.item[i]);
			if (f < 0)
				return fail(p, p->line, "'requires': unknown field '%s' (%s, or none)", l.item[i],
					    "note, category, decision, reason, assignee");
			t->requires |= 1u << f;
		}
		return true;
	case TK_MAKER_CHECKER:
		return bool_value(p, name, v, &t->maker_checker);
	case TK_ACTIONS:
		return actions_value(p, name, v, &t->actions);
	default:
		return false;
	}
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct file_parse *p = user;
	if (p->failed)
		return 0;
	if (p->kind == SEC_NONE)
		return fail(p, p->line, "'%s' comes before any section (start with [workflow])", name);
	/* The reader and inih each follow the sections; they agree unless a line fooled one of them. */
	if (strcmp(section, p->cur) != 0)
		return fail(p, p->line, "cannot tell which section this line belongs to");
	bool ok = false;
	switch (p->kind) {
	case SEC_WORKFLOW:
		ok = workflow_key(p, name, value);
		break;
	case SEC_STATE:
		ok = state_key(p, name, value);
		break;
	case SEC_TRANSITION:
		ok = transition_key(p, name, value);
		break;
	case SEC_TEAMS:
		if (!name_ok(name) || !name_ok(value)) {
			ok = fail(p, p->line, "a team line is CATEGORY = TEAM (each 1-%d of a-z, 0-9 and _)", WF_NAME_MAX);
			break;
		}
		for (size_t i = 0; i < p->n_team_keys; i++)
			if (strcmp(p->team_key[i], name) == 0)
				return fail(p, p->line, "team of '%s' given twice (first at line %d)", name,
					    p->team_line[i]) ? 1 : 0;
		if (p->n_team_keys == WF_MAX_CATEGORIES + 1) {
			ok = fail(p, p->line, "more teams than categories");
			break;
		}
		memcpy(p->team_key[p->n_team_keys], name, strlen(name) + 1);
		memcpy(p->team_val[p->n_team_keys], value, strlen(value) + 1);
		p->team_line[p->n_team_keys++] = p->line;
		ok = true;
		break;
	case SEC_NONE:
		break;
	}
	return ok ? 1 : 0;
}

/* A "[...]" line: text is what stands between the brackets. */
static bool section_open(struct file_parse *p, const char *text, size_t len)
{
	struct wf_def *d = p->d;
	char s[64];
	if (len >= sizeof(s))
		return fail(p, p->line, "unknown section (expected [workflow], [teams], [state NAME] or [transition NAME])");
	memcpy(s, text, len);
	s[len] = '\0';
	memcpy(p->cur, s, len + 1);
	if (strcmp(s, "workflow") == 0) {
		if (p->wf.section)
			return fail(p, p->line, "[workflow] appears twice (first at line %d)", p->wf.section);
		p->kind = SEC_WORKFLOW;
		p->wf.section = p->line;
		return true;
	}
	if (strcmp(s, "teams") == 0) {
		if (p->teams_section)
			return fail(p, p->line, "[teams] appears twice (first at line %d)", p->teams_section);
		p->kind = SEC_TEAMS;
		p->teams_section = p->line;
		return true;
	}
	if (strncmp(s, "state ", 6) == 0) {
		const char *name = s + 6;
		if (!name_ok(name))
			return fail(p, p->line, "bad state name '%s' (1-%d characters of a-z, 0-9 and _)", name,
				    WF_NAME_MAX);
		for (size_t i = 0; i < d->n_states; i++)
			if (strcmp(d->states[i].name, name) == 0)
				return fail(p, p->line, "state '%s' is defined twice (first at line %d)", name,
					    p->st[i].section);
		if (d->n_states == WF_MAX_STATES)
			return fail(p, p->line, "more than %d states", WF_MAX_STATES);
		p->kind = SEC_STATE;
		p->idx = d->n_states++;
		struct wf_state *st = &d->states[p->idx];
		memcpy(st->name, name, strlen(name) + 1);
		st->index = (unsigned)p->idx;
		st->at_risk_percent = 75;
		st->escalate_to = WF_ROLE_NONE;
		p->st[p->idx].section = p->line;
		return true;
	}
	if (strncmp(s, "transition ", 11) == 0) {
		const char *name = s + 11;
		if (!name_ok(name))
			return fail(p, p->line, "bad transition name '%s' (1-%d characters of a-z, 0-9 and _)", name,
				    WF_NAME_MAX);
		for (size_t i = 0; i < d->n_transitions; i++)
			if (strcmp(d->transitions[i].name, name) == 0)
				return fail(p, p->line, "transition '%s' is defined twice (first at line %d)", name,
					    p->tr[i].section);
		if (d->n_transitions == WF_MAX_TRANSITIONS)
			return fail(p, p->line, "more than %d transitions", WF_MAX_TRANSITIONS);
		p->kind = SEC_TRANSITION;
		p->idx = d->n_transitions++;
		memcpy(d->transitions[p->idx].name, name, strlen(name) + 1);
		p->tr[p->idx].section = p->line;
		return true;
	}
	return fail(p, p->line, "unknown section [%s] (expected [workflow], [teams], [state NAME] or [transition NAME])", s);
}

/* Looks at a line before inih does: sections, indentation. */
static void line_inspect(struct file_parse *p, const char *line)
{
	const char *s = line;
	if (p->line == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0) /* inih skips a UTF-8 BOM */
		s += 3;
	const char *start = s;
	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n' || *s == '\f' || *s == '\v')
		s++;
	if (!*s || *s == ';' || *s == '#')
		return; /* blank or comment: inih skips these wherever they start */
	if (s != start) {
		fail(p, p->line,
		     "line is indented (inih would read it as part of the previous value): start keys and "
		     "sections at the beginning of the line");
		return;
	}
	if (*s != '[')
		return;
	/* Where inih finds the end of a section name: ']', or an inline comment (';' after whitespace). */
	const char *e = s + 1;
	bool was_space = false;
	while (*e && *e != ']' && !(was_space && *e == ';')) {
		was_space = is_blank(*e) || *e == '\r' || *e == '\n';
		e++;
	}
	if (*e != ']')
		return; /* inih reports the syntax error */
	const char *rest = e + 1;
	while (*rest == ' ' || *rest == '\t' || *rest == '\r' || *rest == '\n')
		rest++;
	if (*rest && *rest != ';' && *rest != '#') {
		fail(p, p->line, "text after the section header");
		return;
	}
	section_open(p, s + 1, (size_t)(e - s - 1));
}

/* inih's reader: fgets that counts lines and refuses lines that do not fit (inih would split them). */
static char *read_line(char *str, int num, void *stream)
{
	struct file_parse *p = stream;
	if (p->failed)
		return NULL; /* stop at the first error */
	if (!fgets(str, num, p->f))
		return NULL;
	p->line++;
	if (!strchr(str, '\n') && !feof(p->f)) {
		fail(p, p->line, "line is too long (at most %d characters)", num - 3);
		return NULL;
	}
	line_inspect(p, str);
	return p->failed ? NULL : str;
}

/* ---- checks of the whole file -------------------------------------------------------------------------- */

static const struct wf_state *state_by_name(const struct wf_def *d, const char *name)
{
	for (size_t i = 0; i < d->n_states; i++)
		if (strcmp(d->states[i].name, name) == 0)
			return &d->states[i];
	return NULL;
}

static bool check_workflow(struct file_parse *p, const struct wf_set *set)
{
	struct wf_def *d = p->d;
	if (!p->wf.section)
		return fail(p, 1, "no [workflow] section");
	static const int required[] = {WK_CASE_TYPE, WK_INITIAL, WK_CATEGORIES};
	for (size_t i = 0; i < HF_ARRAY_LEN(required); i++)
		if (!p->wf.key[required[i]])
			return fail(p, p->wf.section, "[workflow] needs '%s'", workflow_keys[required[i]]);
	if (set->defs[d->case_type])
		return fail(p, p->wf.key[WK_CASE_TYPE], "case type '%s' is already defined by %s",
			    case_types[d->case_type], set->defs[d->case_type]->source);
	if (d->duplicate_window_hours && d->case_type != CT_GRIEVANCE)
		return fail(p, p->wf.key[WK_DUP_WINDOW], "duplicate_window_hours applies to grievances only");

	/* Already checked when read: the split cannot fail again. */
	struct list l;
	bool ok = list_split(p, "confidential_categories", p->conf_categories[0] ? p->conf_categories : "none",
			     WF_MAX_CATEGORIES, true, &l);
	HF_ASSERT(ok);
	for (size_t i = 0; i < l.n; i++) {
		size_t c = 0;
		while (c < d->n_categories && strcmp(d->categories[c], l.item[i]) != 0)
			c++;
		if (c == d->n_categories)
			return fail(p, p->wf.key[WK_CONF_CATEGORIES],
				    "confidential category '%s' is not one of the categories", l.item[i]);
		d->confidential |= 1u << c;
	}
	if (l.n && d->confidential_role == WF_ROLE_NONE)
		return fail(p, p->wf.key[WK_CONF_CATEGORIES], "confidential_categories needs a confidential_role");
	if (!l.n && d->confidential_role != WF_ROLE_NONE)
		return fail(p, p->wf.key[WK_CONF_ROLE], "confidential_role without confidential_categories");
	for (size_t i = 0; i < p->n_team_keys; i++) {
		if (strcmp(p->team_key[i], "default") == 0) {
			memcpy(d->team_default, p->team_val[i], strlen(p->team_val[i]) + 1);
			continue;
		}
		size_t c = 0;
		while (c < d->n_categories && strcmp(d->categories[c], p->team_key[i]) != 0)
			c++;
		if (c == d->n_categories)
			return fail(p, p->team_line[i], "'%s' is not one of the categories (or 'default')", p->team_key[i]);
		memcpy(d->teams[c], p->team_val[i], strlen(p->team_val[i]) + 1);
	}
	return true;
}

const char *wf_team(const struct wf_def *d, const char *category)
{
	for (size_t c = 0; category && c < d->n_categories; c++)
		if (strcmp(d->categories[c], category) == 0 && d->teams[c][0])
			return d->teams[c];
	return d->team_default[0] ? d->team_default : NULL;
}

static bool check_states(struct file_parse *p)
{
	struct wf_def *d = p->d;
	if (!d->n_states)
		return fail(p, p->wf.section, "no [state NAME] sections");
	for (size_t i = 0; i < d->n_states; i++) {
		const struct wf_state *st = &d->states[i];
		const struct lines *ln = &p->st[i];
		if (st->terminal && st->sla_hours)
			return fail(p, ln->key[SK_SLA], "terminal state '%s' must have sla_hours = 0", st->name);
		if (st->terminal && st->escalate_to != WF_ROLE_NONE)
			return fail(p, ln->key[SK_ESCALATE], "terminal state '%s' cannot escalate", st->name);
		if (!st->sla_hours && st->escalate_to != WF_ROLE_NONE)
			return fail(p, ln->key[SK_ESCALATE], "state '%s' has escalate_to but no SLA (sla_hours = 0)",
				    st->name);
	}
	d->initial = state_by_name(d, p->initial);
	if (!d->initial)
		return fail(p, p->wf.key[WK_INITIAL], "initial state '%s' is not defined", p->initial);
	if (d->initial->terminal)
		return fail(p, p->wf.key[WK_INITIAL], "initial state '%s' is terminal", p->initial);
	return true;
}

/* Actions that only some case types or transitions may carry. to: NULL for the creation actions. */
static bool check_actions(struct file_parse *p, const struct wf_actions *acts, const struct wf_state *to, int line,
			  const char *what)
{
	const struct wf_def *d = p->d;
	bool close = false;
	for (size_t i = 0; i < acts->n; i++) {
		switch (acts->a[i].kind) {
		case WF_ACT_APPLY_CHANGE:
			if (d->case_type != CT_CHANGE_REQUEST)
				return fail(p, line, "%s: apply_change is for change_request workflows only", what);
			break;
		case WF_ACT_ELIGIBILITY:
			if (d->case_type != CT_APPLICATION)
				return fail(p, line, "%s: eligibility is for application workflows only", what);
			break;
		case WF_ACT_CLOSE:
			if (!to || !to->terminal)
				return fail(p, line, "%s: close belongs only on a transition into a terminal state",
					    what);
			close = true;
			break;
		case WF_ACT_SMS:
		case WF_ACT_ASSIGN_TEAM:
		case WF_ACT_ASSIGN_ROLE:
			break;
		}
	}
	if (to && to->terminal && !close)
		return fail(p, line, "%s ends the case (state '%s' is terminal) and must list the close action", what,
			    to->name);
	return true;
}

static bool check_transitions(struct file_parse *p)
{
	struct wf_def *d = p->d;
	char what[WF_NAME_MAX + 32];
	if (!check_actions(p, &d->initial_actions, NULL, p->wf.key[WK_INITIAL_ACTIONS], "initial_actions"))
		return false;
	for (size_t i = 0; i < d->n_transitions; i++) {
		struct wf_transition *t = &d->transitions[i];
		const struct lines *ln = &p->tr[i];
		snprintf(what, sizeof(what), "transition '%s'", t->name);
		static const int required[] = {TK_FROM, TK_TO, TK_ROLES};
		for (size_t k = 0; k < HF_ARRAY_LEN(required); k++)
			if (!ln->key[required[k]])
				return fail(p, ln->section, "[transition %s] needs '%s'", t->name,
					    transition_keys[required[k]]);
		struct list l;
		bool ok = list_split(p, "from", p->tr_from[i], WF_MAX_STATES, false, &l);
		HF_ASSERT(ok);
		for (size_t k = 0; k < l.n; k++) {
			const struct wf_state *st = state_by_name(d, l.item[k]);
			if (!st)
				return fail(p, ln->key[TK_FROM], "%s: unknown state '%s' in 'from'", what, l.item[k]);
			if (st->terminal)
				return fail(p, ln->key[TK_FROM], "%s leaves terminal state '%s' (it has no way out)",
					    what, st->name);
			t->from |= 1u << st->index;
		}
		t->to = state_by_name(d, p->tr_to[i]);
		if (!t->to)
			return fail(p, ln->key[TK_TO], "%s: unknown state '%s' in 'to'", what, p->tr_to[i]);
		if ((t->requires & WF_FIELD_CATEGORY) && !d->n_categories)
			return fail(p, ln->key[TK_REQUIRES], "%s requires a category but the workflow has none", what);
		if (!check_actions(p, &t->actions, t->to, ln->key[TK_ACTIONS] ? ln->key[TK_ACTIONS] : ln->section,
				   what))
			return false;
		if (!t->system)
			continue;
		/* The engine takes a transition only on an SLA breach of a state it starts at. */
		if (t->maker_checker)
			return fail(p, ln->key[TK_MAKER_CHECKER],
				    "%s: maker_checker cannot apply to a transition 'system' takes",
				    what);
		if (t->requires & ~(unsigned)(WF_FIELD_NOTE | WF_FIELD_REASON))
			return fail(p, ln->key[TK_REQUIRES],
				    "%s: 'system' takes it, so it may require only note and reason (the engine fills "
				    "them in)",
				    what);
		for (size_t s = 0; s < d->n_states; s++) {
			const struct wf_state *st = &d->states[s];
			if (!(t->from & (1u << s)))
				continue;
			if (!st->sla_hours)
				return fail(p, ln->key[TK_ROLES],
					    "%s: 'system' takes a transition when the SLA of its state is breached, "
					    "and state '%s' has no SLA",
					    what, st->name);
			if (st->escalate_to != WF_ROLE_NONE)
				return fail(p, p->st[s].key[SK_ESCALATE],
					    "state '%s' has both escalate_to and the breach transition '%s' "
					    "(use an assign action on the transition)",
					    st->name, t->name);
			for (size_t j = 0; j < i; j++)
				if (d->transitions[j].system && (d->transitions[j].from & (1u << s)))
					return fail(p, ln->key[TK_ROLES],
						    "%s: state '%s' already has the breach transition '%s' "
						    "('system' may take one per state)",
						    what, st->name, d->transitions[j].name);
		}
	}
	return true;
}

/* States reachable from the initial one through the transitions a role may take (any role for
 * WF_ROLE_NONE), and the states from which a terminal one can be reached through them. */
static uint32_t reachable(const struct wf_def *d, int role)
{
	uint32_t reach = 1u << d->initial->index;
	bool changed;
	do {
		changed = false;
		for (size_t i = 0; i < d->n_transitions; i++) {
			const struct wf_transition *t = &d->transitions[i];
			uint32_t to = 1u << t->to->index;
			if (role != WF_ROLE_NONE && !wf_transition_allows(t, role) && !t->system)
				continue;
			if ((t->from & reach) && !(reach & to)) {
				reach |= to;
				changed = true;
			}
		}
	} while (changed);
	return reach;
}

static uint32_t can_finish(const struct wf_def *d, int role)
{
	uint32_t fin = 0;
	for (size_t i = 0; i < d->n_states; i++)
		if (d->states[i].terminal)
			fin |= 1u << i;
	bool changed;
	do {
		changed = false;
		for (size_t i = 0; i < d->n_transitions; i++) {
			const struct wf_transition *t = &d->transitions[i];
			if (role != WF_ROLE_NONE && !wf_transition_allows(t, role) && !t->system)
				continue;
			if ((fin & (1u << t->to->index)) && (t->from & ~fin)) {
				fin |= t->from;
				changed = true;
			}
		}
	} while (changed);
	return fin;
}

static bool check_graph(struct file_parse *p)
{
	const struct wf_def *d = p->d;
	uint32_t reach = reachable(d, WF_ROLE_NONE);
	uint32_t out = 0;
	for (size_t i = 0; i < d->n_transitions; i++)
		out |= d->transitions[i].from;
	for (size_t i = 0; i < d->n_states; i++)
		if (!(reach & (1u << i)))
			return fail(p, p->st[i].section, "state '%s' is unreachable from the initial state '%s'",
				    d->states[i].name, d->initial->name);
	for (size_t i = 0; i < d->n_states; i++)
		if (!d->states[i].terminal && !(out & (1u << i)))
			return fail(p, p->st[i].section,
				    "state '%s' is a dead end: not terminal, and no transition leaves it",
				    d->states[i].name);
	uint32_t fin = can_finish(d, WF_ROLE_NONE);
	for (size_t i = 0; i < d->n_states; i++)
		if (!(fin & (1u << i)))
			return fail(p, p->st[i].section,
				    "state '%s' cannot reach a terminal state (a cycle without exit)",
				    d->states[i].name);
	/* A confidential case is moved by the confidential role alone (and the engine): it must be able to
	 * finish every case it can be handed. */
	if (d->confidential) {
		int r = d->confidential_role;
		reach = reachable(d, r);
		fin = can_finish(d, r);
		for (size_t i = 0; i < d->n_states; i++)
			if ((reach & (1u << i)) && !(fin & (1u << i)))
				return fail(p, p->wf.key[WK_CONF_ROLE],
					    "confidential_role '%s' cannot take a confidential case from state '%s' to "
					    "a terminal state (add it to the roles of the transitions on the way)",
					    p->roles[r], d->states[i].name);
	}
	return true;
}

/* ---- loading ------------------------------------------------------------------------------------------- */

static void def_free(struct wf_def *d)
{
	if (!d)
		return;
	free(d->source);
	free(d);
}

static hf_err load_file(const char *path, const char *const *roles, size_t n_roles, const struct wf_set *set,
			struct wf_def **out, struct hf_buf *err)
{
	hf_err rc = HF_OK;
	struct file_parse *p = hf_xcalloc(1, sizeof(*p));
	struct wf_def *d = hf_xcalloc(1, sizeof(*d));
	d->source = hf_xstrdup(path);
	d->confidential_role = WF_ROLE_NONE;
	p->path = path;
	p->roles = roles;
	p->n_roles = n_roles;
	p->d = d;
	hf_buf_init(&p->role_list, 512);
	for (size_t i = 0; i < n_roles; i++)
		hf_buf_note(&p->role_list, "%s%s", i ? ", " : "", roles[i]);

	p->f = fopen(path, "r");
	if (!p->f) {
		hf_buf_note(err, "%s: cannot open: %s", path, strerror(errno));
		rc = HF_EIO;
		goto out_free;
	}
	int line = ini_parse_stream(read_line, p, on_key, p);
	if (ferror(p->f)) {
		hf_buf_note(err, "%s: cannot read: %s", path, strerror(errno));
		rc = HF_EIO;
		goto out_free;
	}
	if (line < 0) {
		hf_buf_note(err, "%s: cannot parse (inih error %d)", path, line);
		rc = HF_EINTERNAL;
		goto out_free;
	}
	/* inih reports the first line it could not read or whose handler failed; ours is the first reason. */
	if (line > 0 && (!p->failed || line < p->err_line)) {
		hf_buf_note(err, "%s:%d: cannot read this line (expected [section], key = value, or a comment)", path,
			    line);
		rc = HF_EINVAL;
		goto out_free;
	}
	if (p->failed || !check_workflow(p, set) || !check_states(p) || !check_transitions(p) || !check_graph(p)) {
		hf_buf_note(err, "%s:%d: %s", path, p->err_line, p->msg);
		rc = HF_EINVAL;
		goto out_free;
	}
	*out = d;
	d = NULL;
out_free:
	if (p->f)
		fclose(p->f);
	hf_buf_release(&p->role_list);
	free(p);
	def_free(d);
	return rc;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_workflow_file(const char *name)
{
	size_t n = strlen(name);
	return name[0] != '.' && n > 4 && strcmp(name + n - 4, ".ini") == 0;
}

hf_err wf_load_dir(const char *dir, const char *const *role_names, struct wf_set **out, struct hf_buf *err)
{
	hf_err rc = HF_OK;
	size_t n_roles = 0;
	while (role_names[n_roles])
		n_roles++;
	HF_ASSERT(n_roles <= WF_MAX_ROLES);
	for (size_t i = 0; i < n_roles; i++)
		HF_ASSERT(name_ok(role_names[i]) && strcmp(role_names[i], "system") && strcmp(role_names[i], "none") &&
			  strcmp(role_names[i], "team"));

	struct wf_set *set = hf_xcalloc(1, sizeof(*set));
	char *names[WF_MAX_FILES];
	size_t n_names = 0;
	struct hf_buf path;
	hf_buf_init(&path, 4096);

	DIR *dh = opendir(dir);
	if (!dh) {
		hf_buf_note(err, "%s: cannot open the workflow folder: %s", dir, strerror(errno));
		rc = HF_EIO;
		goto out_free;
	}
	struct dirent *e;
	errno = 0;
	while ((e = readdir(dh)) != NULL) {
		if (!is_workflow_file(e->d_name))
			continue;
		if (n_names == WF_MAX_FILES) {
			hf_buf_note(err, "%s: more than %d workflow files (*.ini)", dir, WF_MAX_FILES);
			rc = HF_EINVAL;
			goto out_close;
		}
		names[n_names++] = hf_xstrdup(e->d_name);
		errno = 0;
	}
	if (errno) {
		hf_buf_note(err, "%s: cannot list the workflow folder: %s", dir, strerror(errno));
		rc = HF_EIO;
		goto out_close;
	}
	if (!n_names) {
		hf_buf_note(err, "%s: no workflow files (*.ini)", dir);
		rc = HF_EINVAL;
		goto out_close;
	}
	qsort(names, n_names, sizeof(names[0]), name_cmp);
	for (size_t i = 0; i < n_names; i++) {
		hf_buf_reset(&path);
		if (hf_buf_appendf(&path, "%s/%s", dir, names[i])) {
			hf_buf_note(err, "%s: path of %s is too long", dir, names[i]);
			rc = HF_EINVAL;
			goto out_close;
		}
		struct wf_def *d = NULL;
		rc = load_file(hf_buf_cstr(&path), role_names, n_roles, set, &d, err);
		if (rc)
			goto out_close;
		set->defs[d->case_type] = d;
	}
	*out = set;
	set = NULL;
out_close:
	closedir(dh);
out_free:
	for (size_t i = 0; i < n_names; i++)
		free(names[i]);
	hf_buf_release(&path);
	wf_free(set);
	return rc;
}

void wf_free(struct wf_set *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < CT_COUNT_; i++)
		def_free(s->defs[i]);
	free(s);
}

/* ---- lookups ------------------------------------------------------------------------------------------- */

const struct wf_def *wf_find(const struct wf_set *s, const char *case_type)
{
	int ct = case_type ? find_name(case_types, CT_COUNT_, case_type) : -1;
	return ct < 0 ? NULL : s->defs[ct];
}

const struct wf_def *wf_at(const struct wf_set *s, size_t i)
{
	for (size_t ct = 0; ct < CT_COUNT_; ct++)
		if (s->defs[ct] && i-- == 0)
			return s->defs[ct];
	return NULL;
}

const char *wf_case_type(const struct wf_def *d)
{
	return case_types[d->case_type];
}

const char *wf_source(const struct wf_def *d)
{
	return d->source;
}

const struct wf_state *wf_initial(const struct wf_def *d)
{
	return d->initial;
}

const struct wf_actions *wf_initial_actions(const struct wf_def *d)
{
	return &d->initial_actions;
}

size_t wf_category_count(const struct wf_def *d)
{
	return d->n_categories;
}

const char *wf_category_at(const struct wf_def *d, size_t i)
{
	return i < d->n_categories ? d->categories[i] : NULL;
}

static int category_index(const struct wf_def *d, const char *category)
{
	for (size_t i = 0; category && i < d->n_categories; i++)
		if (strcmp(d->categories[i], category) == 0)
			return (int)i;
	return -1;
}

bool wf_category_allowed(const struct wf_def *d, const char *category)
{
	return category_index(d, category) >= 0;
}

bool wf_category_confidential(const struct wf_def *d, const char *category)
{
	int i = category_index(d, category);
	return i >= 0 && (d->confidential & (1u << i));
}

int wf_confidential_role(const struct wf_def *d)
{
	return d->confidential_role;
}

bool wf_category_visible_to(const struct wf_def *d, const char *category, int role)
{
	return role == WF_ROLE_SYSTEM || !wf_category_confidential(d, category) || role == d->confidential_role;
}

int wf_duplicate_window_hours(const struct wf_def *d)
{
	return d->duplicate_window_hours;
}

const struct wf_state *wf_state_find(const struct wf_def *d, const char *name)
{
	return name ? state_by_name(d, name) : NULL;
}

const struct wf_state *wf_state_at(const struct wf_def *d, size_t i)
{
	return i < d->n_states ? &d->states[i] : NULL;
}

const struct wf_transition *wf_transition_find(const struct wf_def *d, const char *name)
{
	for (size_t i = 0; name && i < d->n_transitions; i++)
		if (strcmp(d->transitions[i].name, name) == 0)
			return &d->transitions[i];
	return NULL;
}

const struct wf_transition *wf_transition_at(const struct wf_def *d, size_t i)
{
	return i < d->n_transitions ? &d->transitions[i] : NULL;
}

bool wf_transition_starts_at(const struct wf_transition *t, const struct wf_state *st)
{
	return st && st->index < WF_MAX_STATES && (t->from & (1u << st->index));
}

bool wf_transition_allows(const struct wf_transition *t, int role)
{
	if (role == WF_ROLE_SYSTEM)
		return t->system;
	return role >= 0 && role < WF_MAX_ROLES && (t->roles & (1u << role));
}

bool wf_transition_requires(const struct wf_transition *t, enum wf_field f)
{
	return (t->requires & (unsigned)f) != 0;
}

const struct wf_transition *wf_transition_next(const struct wf_def *d, const struct wf_state *st, int role,
					       const struct wf_transition *prev)
{
	size_t i = prev ? (size_t)(prev - d->transitions) + 1 : 0;
	HF_ASSERT(i <= d->n_transitions);
	for (; i < d->n_transitions; i++)
		if (wf_transition_starts_at(&d->transitions[i], st) && wf_transition_allows(&d->transitions[i], role))
			return &d->transitions[i];
	return NULL;
}

const struct wf_transition *wf_breach_transition(const struct wf_def *d, const struct wf_state *st)
{
	return wf_transition_next(d, st, WF_ROLE_SYSTEM, NULL);
}

/* ---- SLA ----------------------------------------------------------------------------------------------- */

enum wf_sla wf_sla_status(const struct wf_state *st, int64_t entered_s, int64_t now_s)
{
	if (!st->sla_hours)
		return WF_SLA_NONE;
	int64_t elapsed = 0;
	if (now_s > entered_s && __builtin_sub_overflow(now_s, entered_s, &elapsed))
		return WF_SLA_BREACHED; /* further apart than any SLA */
	int64_t allowed = (int64_t)st->sla_hours * 3600;
	if (elapsed >= allowed)
		return WF_SLA_BREACHED;
	/* elapsed < allowed <= 8760 h, so the products stay far from overflow. */
	if (elapsed * 100 >= allowed * st->at_risk_percent)
		return WF_SLA_AT_RISK;
	return WF_SLA_ON_TRACK;
}

static int64_t add_saturated(int64_t a, int64_t b)
{
	int64_t r;
	return __builtin_add_overflow(a, b, &r) ? INT64_MAX : r;
}

int64_t wf_sla_at_risk_s(const struct wf_state *st, int64_t entered_s)
{
	/* 3600 s * hours * percent / 100 is exact: 3600 is a multiple of 100. */
	return st->sla_hours ? add_saturated(entered_s, (int64_t)st->sla_hours * 36 * st->at_risk_percent) : 0;
}

int64_t wf_sla_due_s(const struct wf_state *st, int64_t entered_s)
{
	return st->sla_hours ? add_saturated(entered_s, (int64_t)st->sla_hours * 3600) : 0;
}

const char *wf_sla_name(enum wf_sla s)
{
	switch (s) {
	case WF_SLA_NONE:
		return "none";
	case WF_SLA_ON_TRACK:
		return "on_track";
	case WF_SLA_AT_RISK:
		return "at_risk";
	case WF_SLA_BREACHED:
		return "breached";
	}
	return "none";
}

const char *wf_field_name(enum wf_field f)
{
	for (size_t i = 0; i < HF_ARRAY_LEN(field_names); i++)
		if ((unsigned)f == 1u << i)
			return field_names[i];
	return "";
}

const char *wf_action_kind_name(enum wf_action_kind k)
{
	switch (k) {
	case WF_ACT_SMS:
		return "sms";
	case WF_ACT_ASSIGN_TEAM:
	case WF_ACT_ASSIGN_ROLE:
		return "assign";
	case WF_ACT_APPLY_CHANGE:
		return "apply_change";
	case WF_ACT_ELIGIBILITY:
		return "eligibility";
	case WF_ACT_CLOSE:
		return "close";
	}
	return "";
}
