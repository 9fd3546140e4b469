/* sms_templates.c - the SMS texts (menus/sms/<language>.ini): loading, checking, lookup, rendering.
 *
 * One file per language holds "name = text" lines with {param} placeholders; en.ini is the reference:
 * every other file must have each of its templates, and may use only the placeholders that template is
 * given. Each text must fit ONE SMS with the longest realistic values filled in (160 GSM-7 characters, or
 * 70 when a character outside the GSM-7 alphabet forces UCS-2), because a text that splits costs twice and
 * some handsets show the parts out of order. A broken file stops startup with file:line.
 * The files are read with our own line reader rather than inih: Debian's inih cuts lines at 200 bytes and
 * treats " ;" inside a value as a comment, and either would silently shorten a message to beneficiaries.
 * For the same reason a NUL byte is refused rather than read as the end of the line.
 * A language without a file is rendered in Swahili, then English (docs/sms-templates.md).
 *
 * Kept apart from notices.c (the database side) so that the loader, the files' only reader of outside
 * text, can be fuzzed on its own (tests/fuzz/fuzz_sms_templates.c).
 */
#include "hf_base.h"
#include "sms_templates.h"

#include "hf_gsm.h"

#include "hf_json.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- what the code gives each template ------------------------------------------------------------------ */

struct tmpl_spec {
	const char *name;
	const char *params[6]; /* NULL-terminated */
	bool payment;          /* a notice template (payment officers send these) */
};

/* Case templates get {ref}; the cases code also passes state and type, which are internal names not fit
 * for beneficiaries. A template en.ini adds for a workflow of its own (sms:NAME) is treated as a case one. */
static const struct tmpl_spec SPECS[] = {
	{"application_received", {"ref"}, false},
	{"application_approved", {"ref"}, false},
	{"application_rejected", {"ref"}, false},
	{"grievance_lodged", {"ref"}, false},
	{"grievance_resolved", {"ref"}, false},
	{"grievance_rejected", {"ref"}, false},
	{"grievance_duplicate", {"ref"}, false},
	{"change_request_received", {"ref"}, false},
	{"change_request_applied", {"ref"}, false},
	{"change_request_rejected", {"ref"}, false},
	{"feedback_received", {"ref"}, false},
	{"payment_ready", {"amount", "currency", "pay_point", "date"}, true},
	{"payment_sent", {"amount", "currency", "date"}, true},
	{"payment_reminder", {"amount", "currency", "pay_point", "until"}, true},
	{"staff_cases_escalated", {"count", "role"}, false},
	{"staff_payment_alert", {"rule", "severity", "cycle"}, false},
	{"pin_reset_code", {"code", "minutes"}, false},
	{"kiosk_receipt", {"amount", "currency", "receipt", "pay_point", "time"}, false},
	{"sms_stopped", {NULL}, false},
	{"sms_started", {NULL}, false},
};
static const struct tmpl_spec CASE_SPEC = {"", {"ref"}, false};

/* The longest value each parameter realistically takes, for the one-SMS check at load. */
static const struct {
	const char *param;
	const char *longest;
} LONGEST[] = {
	{"ref", "123456789"},
	{"amount", "1,000,000.00"},
	{"currency", "KES"},
	{"pay_point", "XXXXXXXXXXXXXXXXXXXX"}, /* 20 characters */
	{"date", "2026-12-31"},
	{"until", "2026-12-31"},
	{"count", "99999"},
	{"role", "payment_officer"},
	{"rule", "shared_national_id"},
	{"severity", "critical"},
	{"cycle", "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"}, /* payment_cycles.code: 40 */
	{"code", "123456"},
	{"minutes", "15"},
	{"receipt", "K-XXXXXXXXXXXX-999999"}, /* R + 12 digits online; K-<kiosk>-<n> offline */
	{"time", "2026-12-31 23:59 UTC"},
};

static const struct tmpl_spec *spec_find(const char *name)
{
	for (size_t i = 0; i < HF_ARRAY_LEN(SPECS); i++)
		if (strcmp(SPECS[i].name, name) == 0)
			return &SPECS[i];
	return NULL;
}

static bool spec_has_param(const struct tmpl_spec *s, const char *p, size_t n)
{
	for (size_t i = 0; s->params[i]; i++)
		if (strlen(s->params[i]) == n && memcmp(s->params[i], p, n) == 0)
			return true;
	return false;
}

static const char *longest_of(const char *p, size_t n)
{
	for (size_t i = 0; i < HF_ARRAY_LEN(LONGEST); i++)
		if (strlen(LONGEST[i].param) == n && memcmp(LONGEST[i].param, p, n) == 0)
			return LONGEST[i].longest;
	return NULL;
}

const char *const *smst_params(const char *name)
{
	const struct tmpl_spec *s = spec_find(name);
	return (s ? s : &CASE_SPEC)->params;
}

const char *smst_longest(const char *param)
{
	return longest_of(param, strlen(param));
}

bool smst_is_payment(const char *name)
{
	const struct tmpl_spec *s = spec_find(name);
	return s && s->payment;
}

const char *smst_required_at(size_t i)
{
	return i < HF_ARRAY_LEN(SPECS) ? SPECS[i].name : NULL;
}

/* ---- GSM-7 (lib/hf_gsm) ---------------------------------------------------------------------------------- */

void smst_measure(const char *s, struct smst_size *m)
{
	size_t septets = 0, ucs2 = 0, n = strlen(s);
	uint32_t non_gsm = 0;
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		size_t len = hf_utf8_decode(s + i, n - i, &cp);
		if (len == 0) { /* not UTF-8: counted as U+FFFD, one byte at a time (checked at load anyway) */
			cp = 0xFFFD;
			len = 1;
		}
		i += len;
		ucs2 += cp > 0xFFFF ? 2 : 1;
		int k = hf_gsm_septets(cp);
		if (!k && !non_gsm)
			non_gsm = cp;
		septets += (size_t)k;
	}
	m->gsm7 = non_gsm == 0;
	m->units = m->gsm7 ? septets : ucs2;
	m->limit = m->gsm7 ? SMST_GSM7_LIMIT : SMST_UCS2_LIMIT;
	m->non_gsm = non_gsm;
}

/* ---- the template files --------------------------------------------------------------------------------- */

struct sms_template {
	char name[SMST_NAME_MAX + 1];
	char *text; /* owned */
	int line;
};

struct sms_lang {
	char code[9];
	char file[32]; /* "sw.ini", for messages */
	size_t n;
	struct sms_template t[SMST_MAX_TEMPLATES];
};

struct smst {
	size_t n;
	struct sms_lang *langs[SMST_MAX_FILES]; /* en first */
};

struct file_parse {
	const char *path;
	struct sms_lang *l;
	const struct sms_lang *en; /* NULL while reading en.ini itself */
	int line;
	int section_line;
	bool failed;
	int err_line;
	char msg[400];
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

static bool name_ok(const char *s, size_t n)
{
	if (n < 1 || n > SMST_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

static const struct sms_template *lang_template(const struct sms_lang *l, const char *name)
{
	for (size_t i = 0; l && i < l->n; i++)
		if (strcmp(l->t[i].name, name) == 0)
			return &l->t[i];
	return NULL;
}

/* Checks the placeholders of one text against what its template is given, and that the text with the
 * longest values fits one SMS. */
static bool text_check(struct file_parse *p, const char *name, const char *text)
{
	const struct tmpl_spec *spec = spec_find(name);
	if (!spec)
		spec = &CASE_SPEC;
	struct hf_buf given, filled;
	hf_buf_init(&given, 200);
	hf_buf_init(&filled, SMST_RENDER_MAX);
	for (size_t i = 0; spec->params[i]; i++)
		hf_buf_note(&given, "%s{%s}", i ? ", " : "", spec->params[i]);
	bool ok = true, too_big = false;
	for (const char *s = text; *s && ok;) {
		if (*s == '}') {
			ok = fail(p, p->line, "'%s': a '}' without its '{' (placeholders look like {ref})", name);
			break;
		}
		if (*s != '{') {
			const char *e = s;
			while (*e && *e != '{' && *e != '}')
				e++;
			too_big = hf_buf_append(&filled, s, (size_t)(e - s)) != HF_OK;
			ok = !too_big;
			s = e;
			continue;
		}
		const char *close = strchr(s + 1, '}');
		const char *open = strchr(s + 1, '{');
		if (!close || (open && open < close)) {
			ok = fail(p, p->line, "'%s': a '{' without its '}' (placeholders look like {ref})", name);
			break;
		}
		size_t n = (size_t)(close - s - 1);
		if (!spec_has_param(spec, s + 1, n)) {
			ok = fail(p, p->line, "'%s': unknown placeholder {%.*s} (this template is given %s)", name,
				  (int)(n > 40 ? 40 : n), s + 1, hf_buf_cstr(&given));
			break;
		}
		const char *v = longest_of(s + 1, n);
		HF_ASSERT(v); /* every parameter of SPECS has its longest value */
		too_big = hf_buf_append_str(&filled, v) != HF_OK;
		ok = !too_big;
		s = close + 1;
	}
	/* More than SMST_RENDER_MAX bytes filled in is far more than one SMS (each character is at most 4 bytes):
	 * refused as too long, never dropped without a word. */
	if (too_big)
		ok = fail(p, p->line, "'%s' is more than %d bytes with the longest values filled in; one SMS holds %d GSM-7 "
			  "characters", name, SMST_RENDER_MAX, SMST_GSM7_LIMIT);
	if (ok) {
		struct smst_size m;
		smst_measure(hf_buf_cstr(&filled), &m);
		if (m.units > m.limit) {
			if (m.gsm7)
				ok = fail(p, p->line,
					  "'%s' is %zu GSM-7 characters with the longest values filled in; one SMS holds %d",
					  name, m.units, SMST_GSM7_LIMIT);
			else
				ok = fail(p, p->line,
					  "'%s' is %zu characters with the longest values filled in; U+%04X is not in the "
					  "GSM-7 alphabet, so the text goes as UCS-2 and one SMS holds %d (write it without "
					  "such characters to get %d)",
					  name, m.units, (unsigned)m.non_gsm, SMST_UCS2_LIMIT, SMST_GSM7_LIMIT);
		}
	}
	hf_buf_release(&given);
	hf_buf_release(&filled);
	return ok;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* One line of n bytes (without its '\n'; s[n] is NUL). */
static bool on_line(struct file_parse *p, char *s, size_t n)
{
	if (memchr(s, '\0', n))
		return fail(p, p->line, "the line holds a NUL byte (template files are UTF-8 text)");
	if (p->line == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0) {
		s += 3;
		n -= 3;
	}
	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = '\0';
	const char *t = s;
	while (is_space(*t))
		t++;
	if (!*t || *t == ';' || *t == '#')
		return true;
	if (t != s)
		return fail(p, p->line, "line is indented: start sections and templates at the beginning of the line");
	if (*s == '[') {
		while (n && is_space(s[n - 1]))
			s[--n] = '\0';
		if (strcmp(s, "[templates]") != 0)
			return fail(p, p->line, "unknown section %.60s (the only section is [templates])", s);
		if (p->section_line)
			return fail(p, p->line, "[templates] appears twice (first at line %d)", p->section_line);
		p->section_line = p->line;
		return true;
	}
	if (!p->section_line)
		return fail(p, p->line, "a template before [templates] (start the file with [templates])");
	char *eq = strchr(s, '=');
	if (!eq)
		return fail(p, p->line, "expected name = text");
	char *ne = eq;
	while (ne > s && is_space(ne[-1]))
		ne--;
	size_t nlen = (size_t)(ne - s);
	if (!name_ok(s, nlen))
		return fail(p, p->line, "bad template name '%.*s' (1-%d characters of a-z, 0-9 and _)",
			    (int)(nlen > 60 ? 60 : nlen), s, SMST_NAME_MAX);
	char name[SMST_NAME_MAX + 1];
	memcpy(name, s, nlen);
	name[nlen] = '\0';
	char *v = eq + 1;
	while (is_space(*v))
		v++;
	size_t vlen = strlen(v);
	while (vlen && is_space(v[vlen - 1]))
		v[--vlen] = '\0';
	if (!vlen)
		return fail(p, p->line, "'%s' has no text", name);
	if (!hf_utf8_valid_text(v, vlen))
		return fail(p, p->line, "'%s': the text is not valid UTF-8 or holds control characters", name);
	const struct sms_template *dup = lang_template(p->l, name);
	if (dup)
		return fail(p, p->line, "'%s' is defined twice (first at line %d)", name, dup->line);
	if (p->en && !lang_template(p->en, name))
		return fail(p, p->line, "'%s' is not a template of en.ini (a typo? every language has the templates of en.ini)",
			    name);
	if (p->l->n == SMST_MAX_TEMPLATES)
		return fail(p, p->line, "more than %d templates", SMST_MAX_TEMPLATES);
	if (!text_check(p, name, v))
		return false;
	struct sms_template *tp = &p->l->t[p->l->n++];
	memcpy(tp->name, name, nlen + 1);
	tp->text = hf_xstrdup(v);
	tp->line = p->line;
	return true;
}

enum line_got { LINE_EOF, LINE_OK, LINE_LONG };

/* Reads one line into buf (SMST_LINE_MAX + 1 bytes) without its '\n', NUL bytes included, and NUL-terminates
 * it. LINE_LONG when it goes on past SMST_LINE_MAX bytes (the rest is not read). */
static enum line_got line_read(FILE *f, char *buf, size_t *len)
{
	size_t n = 0;
	int ch;
	while ((ch = getc(f)) != EOF && ch != '\n') {
		if (n == SMST_LINE_MAX)
			return LINE_LONG;
		buf[n++] = (char)ch;
	}
	buf[n] = '\0';
	*len = n;
	return ch == EOF && n == 0 ? LINE_EOF : LINE_OK;
}

static void lang_free(struct sms_lang *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		free(l->t[i].text);
	free(l);
}

static hf_err load_file(const char *dir, const char *file, const struct sms_lang *en, struct sms_lang **out,
			struct hf_buf *err)
{
	hf_err rc = HF_OK;
	struct hf_buf path;
	hf_buf_init(&path, 4096);
	struct sms_lang *l = hf_xcalloc(1, sizeof(*l));
	struct file_parse p = {.l = l, .en = en};
	char *line = hf_xmalloc(SMST_LINE_MAX + 1);
	FILE *f = NULL;
	size_t stem = strlen(file) - 4;
	memcpy(l->code, file, stem);
	l->code[stem] = '\0';
	hf_strlcpy(l->file, file, sizeof(l->file));
	if (hf_buf_appendf(&path, "%s/%s", dir, file)) {
		hf_buf_note(err, "%s: path of %s is too long", dir, file);
		rc = HF_EINVAL;
		goto out;
	}
	p.path = hf_buf_cstr(&path);
	f = fopen(p.path, "r");
	if (!f) {
		hf_buf_note(err, "%s: cannot open: %s", p.path, strerror(errno));
		rc = HF_EIO;
		goto out;
	}
	size_t len = 0;
	for (enum line_got got; !p.failed && (got = line_read(f, line, &len)) != LINE_EOF;) {
		p.line++;
		if (got == LINE_LONG) {
			fail(&p, p.line, "line is longer than %d bytes", SMST_LINE_MAX);
			break;
		}
		on_line(&p, line, len);
	}
	if (!p.failed && ferror(f)) {
		hf_buf_note(err, "%s: cannot read: %s", p.path, strerror(errno));
		rc = HF_EIO;
		goto out;
	}
	if (!p.failed && !p.section_line)
		fail(&p, 1, "no [templates] section");
	/* English is the reference and the last fallback: it has every template the code sends. */
	for (size_t i = 0; !p.failed && !en && i < HF_ARRAY_LEN(SPECS); i++)
		if (!lang_template(l, SPECS[i].name))
			fail(&p, p.section_line, "template '%s' is missing (the service sends it)", SPECS[i].name);
	for (size_t i = 0; !p.failed && en && i < en->n; i++)
		if (!lang_template(l, en->t[i].name))
			fail(&p, p.section_line, "template '%s' is missing (en.ini has it at line %d)", en->t[i].name,
			     en->t[i].line);
	if (p.failed) {
		hf_buf_note(err, "%s:%d: %s", p.path, p.err_line, p.msg);
		rc = HF_EINVAL;
		goto out;
	}
	*out = l;
	l = NULL;
out:
	if (f)
		fclose(f);
	free(line);
	hf_buf_release(&path);
	lang_free(l);
	return rc;
}

/* "xx.ini" .. "xxxxxxxx.ini" with a lowercase language code; other names are not template files. */
static bool lang_file(const char *name, bool *bad)
{
	size_t n = strlen(name);
	*bad = false;
	if (name[0] == '.' || n < 5 || strcmp(name + n - 4, ".ini") != 0)
		return false;
	size_t stem = n - 4;
	*bad = stem < 2 || stem > 8;
	for (size_t i = 0; i < stem && !*bad; i++)
		*bad = name[i] < 'a' || name[i] > 'z';
	return !*bad;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

hf_err smst_load(const char *dir, struct smst **out, struct hf_buf *err)
{
	hf_err rc = HF_OK;
	struct smst *set = hf_xcalloc(1, sizeof(*set));
	char *names[SMST_MAX_FILES];
	size_t n_names = 0;
	DIR *dh = opendir(dir);
	if (!dh) {
		hf_buf_note(err, "%s: cannot open the SMS template folder: %s", dir, strerror(errno));
		rc = HF_EIO;
		goto out;
	}
	struct dirent *e;
	errno = 0;
	bool has_en = false;
	while ((e = readdir(dh)) != NULL) {
		bool bad = false;
		if (!lang_file(e->d_name, &bad)) {
			if (bad) {
				hf_buf_note(err, "%s/%s: a template file is named after its language code (2-8 of a-z), "
						 "e.g. sw.ini", dir, e->d_name);
				rc = HF_EINVAL;
				goto out;
			}
			continue;
		}
		if (n_names == SMST_MAX_FILES) {
			hf_buf_note(err, "%s: more than %d template files", dir, SMST_MAX_FILES);
			rc = HF_EINVAL;
			goto out;
		}
		has_en |= strcmp(e->d_name, "en.ini") == 0;
		names[n_names++] = hf_xstrdup(e->d_name);
		errno = 0;
	}
	if (errno) {
		hf_buf_note(err, "%s: cannot list the SMS template folder: %s", dir, strerror(errno));
		rc = HF_EIO;
		goto out;
	}
	if (!has_en) {
		hf_buf_note(err, "%s: no en.ini (English is the reference for the other languages and the last fallback)",
			    dir);
		rc = HF_EINVAL;
		goto out;
	}
	qsort(names, n_names, sizeof(names[0]), name_cmp);
	/* en.ini first: the others are checked against it. */
	struct sms_lang *en = NULL;
	rc = load_file(dir, "en.ini", NULL, &en, err);
	if (rc)
		goto out;
	set->langs[set->n++] = en;
	for (size_t i = 0; i < n_names; i++) {
		if (strcmp(names[i], "en.ini") == 0)
			continue;
		struct sms_lang *l = NULL;
		rc = load_file(dir, names[i], en, &l, err);
		if (rc)
			goto out;
		set->langs[set->n++] = l;
	}
	*out = set;
	set = NULL;
out:
	if (dh)
		closedir(dh);
	for (size_t i = 0; i < n_names; i++)
		free(names[i]);
	smst_free(set);
	return rc;
}

void smst_free(struct smst *set)
{
	if (!set)
		return;
	for (size_t i = 0; i < set->n; i++)
		lang_free(set->langs[i]);
	free(set);
}

/* ---- reading a set -------------------------------------------------------------------------------------- */

static const struct sms_lang *lang_find(const struct smst *set, const char *code)
{
	for (size_t i = 0; set && code && i < set->n; i++)
		if (strcmp(set->langs[i]->code, code) == 0)
			return set->langs[i];
	return NULL;
}

const char *smst_lookup(const struct smst *set, const char *lang, const char *name, const char **used)
{
	const char *chain[] = {lang, "sw", "en"};
	for (size_t i = 0; i < HF_ARRAY_LEN(chain); i++) {
		const struct sms_lang *l = lang_find(set, chain[i]);
		const struct sms_template *t = l ? lang_template(l, name) : NULL;
		if (t) {
			if (used)
				*used = l->code;
			return t->text;
		}
	}
	return NULL;
}

size_t smst_nlangs(const struct smst *set)
{
	return set ? set->n : 0;
}

const char *smst_lang_at(const struct smst *set, size_t i)
{
	return set && i < set->n ? set->langs[i]->code : NULL;
}

bool smst_entry_at(const struct smst *set, size_t lang, size_t k, struct smst_entry *out)
{
	if (!set || lang >= set->n || k >= set->langs[lang]->n)
		return false;
	const struct sms_lang *l = set->langs[lang];
	*out = (struct smst_entry){l->code, l->t[k].name, l->t[k].text, l->t[k].line};
	return true;
}

hf_err smst_render(const char *text, const json_t *params, struct hf_buf *out)
{
	hf_err err = HF_OK;
	for (const char *s = text; *s && !err;) {
		const char *close = *s == '{' ? strchr(s, '}') : NULL;
		if (!close) {
			const char *e = strchr(s + 1, '{');
			size_t n = e ? (size_t)(e - s) : strlen(s);
			err = hf_buf_append(out, s, n);
			s += n;
			continue;
		}
		char key[SMST_NAME_MAX + 1];
		size_t n = (size_t)(close - s - 1);
		json_t *v = NULL;
		if (n < sizeof(key)) {
			memcpy(key, s + 1, n);
			key[n] = '\0';
			v = json_object_get(params, key);
		}
		if (json_is_string(v))
			err = hf_buf_append(out, json_string_value(v), json_string_length(v));
		else if (json_is_integer(v))
			err = hf_buf_appendf(out, "%lld", (long long)json_integer_value(v));
		else
			err = hf_buf_append_str(out, "-");
		s = close + 1;
	}
	return err;
}
