/* notices.c - SMS texts (menus/sms/<language>.ini), payment notices to a cycle's payees, and the outbox as
 * the SMS gateway drains it (claim, delivery reports).
 *
 * Templates. One file per language holds "name = text" lines with {param} placeholders; en.ini is the
 * reference: every other file must have each of its templates, and may use only the placeholders that
 * template is given. Each text must fit ONE SMS with the longest realistic values filled in (160 GSM-7
 * characters, or 70 when a character outside the GSM-7 alphabet forces UCS-2), because a text that splits
 * costs twice and some handsets show the parts out of order. A broken file stops startup with file:line.
 * The files are read with our own line reader rather than inih: Debian's inih cuts lines at 200 bytes and
 * treats " ;" inside a value as a comment, and either would silently shorten a message to beneficiaries.
 * A language without a file is rendered in Swahili, then English (docs/sms-templates.md).
 *
 * Notices. A payment officer filters a cycle's payments (pay point, location, status), previews who gets
 * which text, and sends or schedules it. Sending writes one outbox row per payee in batches of
 * NOTICE_BATCH payments, each batch its own transaction, so that 100,000 payees never hold one huge
 * transaction; the notice's recipient count grows with each batch, so it always equals its outbox rows, even
 * after a crash. A payee who got (or will get) the same template within 24 hours of this notice is skipped.
 *
 * The outbox. The gateway claims due rows (FOR UPDATE SKIP LOCKED, so several gateways never send one row
 * twice), gets the phone opened and the text rendered in the row's language, and reports each message's
 * fate. A row left in 'sending' for OUTBOX_STALE_MIN minutes (a gateway that crashed) is claimable again,
 * at most OUTBOX_MAX_ATTEMPTS times; then it is failed so that a message that crashes the gateway does not
 * come back forever.
 */
#include "hf_base.h"
#include "notices.h"

#include "app.h"
#include "audit.h"
#include "hf_log.h"
#include "hf_money.h"
#include "outbox.h"
#include "person.h"

#include <dirent.h>
#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SMS_MAX_FILES 32
#define SMS_MAX_TEMPLATES 64
#define SMS_NAME_MAX 48   /* outbox.template */
#define SMS_LINE_MAX 1024 /* bytes of one line of a template file */
#define SMS_RENDER_MAX 2048
#define SMS_GSM7_LIMIT 160
#define SMS_UCS2_LIMIT 70

#define NOTICE_BATCH 1000          /* payments per transaction when sending */
#define NOTICE_INSERT_ROWS 100     /* outbox rows per INSERT statement */
#define NOTICE_RANGE_ROWS 4000     /* payments read per batch's id range (a batch plans 1000): in its SQL */
#define NOTICE_MAX_RECIPIENTS 1000000
#define NOTICE_MAX_AHEAD_S (30 * 86400)
#define NOTICE_LIST_MAX 200 /* newest notices listed (in the SQL below) */
#define PREVIEW_MAX_LANGS 32
#define OUTBOX_CLAIM_MAX 500
#define OUTBOX_STALE_MIN 10 /* minutes; in the SQL of claim_select */
#define OUTBOX_MAX_ATTEMPTS 5

/* ---- what the code gives each template ------------------------------------------------------------------ */

struct tmpl_spec {
	const char *name;
	const char *params[5]; /* NULL-terminated */
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
};
static const struct tmpl_spec CASE_SPEC = {"", {"ref"}, false};

static const char *const PAYMENT_TEMPLATES[] = {"payment_ready", "payment_sent", "payment_reminder", NULL};

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

/* ---- GSM-7 ---------------------------------------------------------------------------------------------- */

/* 3GPP TS 23.038 default alphabet (one septet each; 0x1B is the escape, not a character). */
static const uint16_t GSM7_BASIC[128] = {
	0x0040, 0x00A3, 0x0024, 0x00A5, 0x00E8, 0x00E9, 0x00F9, 0x00EC, 0x00F2, 0x00C7, 0x000A, 0x00D8, 0x00F8,
	0x000D, 0x00C5, 0x00E5, 0x0394, 0x005F, 0x03A6, 0x0393, 0x039B, 0x03A9, 0x03A0, 0x03A8, 0x03A3, 0x0398,
	0x039E, 0xFFFF, 0x00C6, 0x00E6, 0x00DF, 0x00C9, 0x0020, 0x0021, 0x0022, 0x0023, 0x00A4, 0x0025, 0x0026,
	0x0027, 0x0028, 0x0029, 0x002A, 0x002B, 0x002C, 0x002D, 0x002E, 0x002F, 0x0030, 0x0031, 0x0032, 0x0033,
	0x0034, 0x0035, 0x0036, 0x0037, 0x0038, 0x0039, 0x003A, 0x003B, 0x003C, 0x003D, 0x003E, 0x003F, 0x00A1,
	0x0041, 0x0042, 0x0043, 0x0044, 0x0045, 0x0046, 0x0047, 0x0048, 0x0049, 0x004A, 0x004B, 0x004C, 0x004D,
	0x004E, 0x004F, 0x0050, 0x0051, 0x0052, 0x0053, 0x0054, 0x0055, 0x0056, 0x0057, 0x0058, 0x0059, 0x005A,
	0x00C4, 0x00D6, 0x00D1, 0x00DC, 0x00A7, 0x00BF, 0x0061, 0x0062, 0x0063, 0x0064, 0x0065, 0x0066, 0x0067,
	0x0068, 0x0069, 0x006A, 0x006B, 0x006C, 0x006D, 0x006E, 0x006F, 0x0070, 0x0071, 0x0072, 0x0073, 0x0074,
	0x0075, 0x0076, 0x0077, 0x0078, 0x0079, 0x007A, 0x00E4, 0x00F6, 0x00F1, 0x00FC, 0x00E0,
};
/* The extension table: an escape and a septet, so two each. */
static const uint16_t GSM7_EXT[] = {0x000C, 0x005E, 0x007B, 0x007D, 0x005C, 0x005B, 0x007E, 0x005D, 0x007C, 0x20AC};

/* Decodes one code point of valid UTF-8 (checked before); returns its length in bytes. */
static size_t utf8_next(const char *s, uint32_t *cp)
{
	const unsigned char *u = (const unsigned char *)s;
	if (u[0] < 0x80) {
		*cp = u[0];
		return 1;
	}
	if ((u[0] & 0xE0) == 0xC0) {
		*cp = ((uint32_t)(u[0] & 0x1F) << 6) | (u[1] & 0x3F);
		return 2;
	}
	if ((u[0] & 0xF0) == 0xE0) {
		*cp = ((uint32_t)(u[0] & 0x0F) << 12) | ((uint32_t)(u[1] & 0x3F) << 6) | (u[2] & 0x3F);
		return 3;
	}
	*cp = ((uint32_t)(u[0] & 0x07) << 18) | ((uint32_t)(u[1] & 0x3F) << 12) | ((uint32_t)(u[2] & 0x3F) << 6) |
	      (u[3] & 0x3F);
	return 4;
}

/* septets of cp in GSM-7 (1 or 2), or 0 when GSM-7 cannot carry it. */
static int gsm7_septets(uint32_t cp)
{
	for (size_t i = 0; i < 128; i++)
		if (GSM7_BASIC[i] == cp && i != 0x1B)
			return 1;
	for (size_t i = 0; i < HF_ARRAY_LEN(GSM7_EXT); i++)
		if (GSM7_EXT[i] == cp)
			return 2;
	return 0;
}

struct sms_size {
	bool gsm7;
	size_t units;      /* septets (GSM-7) or UTF-16 code units (UCS-2) */
	size_t limit;      /* of one SMS in that coding */
	uint32_t non_gsm;  /* the first character that forced UCS-2 */
};

static void sms_measure(const char *s, struct sms_size *m)
{
	size_t septets = 0, ucs2 = 0;
	uint32_t non_gsm = 0;
	for (const char *p = s; *p;) {
		uint32_t cp;
		p += utf8_next(p, &cp);
		ucs2 += cp > 0xFFFF ? 2 : 1;
		int k = gsm7_septets(cp);
		if (!k && !non_gsm)
			non_gsm = cp;
		septets += (size_t)k;
	}
	m->gsm7 = non_gsm == 0;
	m->units = m->gsm7 ? septets : ucs2;
	m->limit = m->gsm7 ? SMS_GSM7_LIMIT : SMS_UCS2_LIMIT;
	m->non_gsm = non_gsm;
}

/* ---- the template files --------------------------------------------------------------------------------- */

struct sms_template {
	char name[SMS_NAME_MAX + 1];
	char *text; /* owned */
	int line;
};

struct sms_lang {
	char code[9];
	char file[32]; /* "sw.ini", for messages */
	size_t n;
	struct sms_template t[SMS_MAX_TEMPLATES];
};

/* Loaded once by notices_init, read-only afterwards: every pool thread reads it without locks. */
static struct {
	bool loaded;
	size_t n;
	struct sms_lang *langs[SMS_MAX_FILES];
} S;

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
	if (n < 1 || n > SMS_NAME_MAX)
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

static const char *longest_of(const char *p, size_t n)
{
	for (size_t i = 0; i < HF_ARRAY_LEN(LONGEST); i++)
		if (strlen(LONGEST[i].param) == n && memcmp(LONGEST[i].param, p, n) == 0)
			return LONGEST[i].longest;
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
	hf_buf_init(&filled, SMS_RENDER_MAX);
	for (size_t i = 0; spec->params[i]; i++)
		hf_buf_note(&given, "%s{%s}", i ? ", " : "", spec->params[i]);
	bool ok = true;
	for (const char *s = text; *s && ok;) {
		if (*s == '}') {
			ok = fail(p, p->line, "'%s': a '}' without its '{' (placeholders look like {ref})", name);
			break;
		}
		if (*s != '{') {
			const char *e = s;
			while (*e && *e != '{' && *e != '}')
				e++;
			ok = hf_buf_append(&filled, s, (size_t)(e - s)) == HF_OK;
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
		ok = hf_buf_append_str(&filled, v) == HF_OK;
		s = close + 1;
	}
	if (ok) {
		struct sms_size m;
		sms_measure(hf_buf_cstr(&filled), &m);
		if (m.units > m.limit) {
			if (m.gsm7)
				ok = fail(p, p->line,
					  "'%s' is %zu GSM-7 characters with the longest values filled in; one SMS holds %d",
					  name, m.units, SMS_GSM7_LIMIT);
			else
				ok = fail(p, p->line,
					  "'%s' is %zu characters with the longest values filled in; U+%04X is not in the "
					  "GSM-7 alphabet, so the text goes as UCS-2 and one SMS holds %d (write it without "
					  "such characters to get %d)",
					  name, m.units, (unsigned)m.non_gsm, SMS_UCS2_LIMIT, SMS_GSM7_LIMIT);
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

static bool on_line(struct file_parse *p, char *s)
{
	if (p->line == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
		s += 3;
	size_t n = strlen(s);
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
			    (int)(nlen > 60 ? 60 : nlen), s, SMS_NAME_MAX);
	char name[SMS_NAME_MAX + 1];
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
	if (p->l->n == SMS_MAX_TEMPLATES)
		return fail(p, p->line, "more than %d templates", SMS_MAX_TEMPLATES);
	if (!text_check(p, name, v))
		return false;
	struct sms_template *tp = &p->l->t[p->l->n++];
	memcpy(tp->name, name, nlen + 1);
	tp->text = hf_xstrdup(v);
	tp->line = p->line;
	return true;
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
	char *line = hf_xmalloc(SMS_LINE_MAX + 2);
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
	while (!p.failed && fgets(line, SMS_LINE_MAX + 2, f)) {
		p.line++;
		if (!strchr(line, '\n') && !feof(f)) {
			fail(&p, p.line, "line is longer than %d bytes", SMS_LINE_MAX);
			break;
		}
		on_line(&p, line);
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

/* menus.dir (core_config.c); "menus" without a configuration (unit tests, benchmarks). */
static const char *menus_dir(const struct hf_config *cfg)
{
	return cfg ? hf_config_str(cfg, "menus.dir") : "menus";
}

hf_err notices_init(const struct hf_config *cfg, struct hf_buf *err)
{
	notices_shutdown();
	hf_err rc = HF_OK;
	struct hf_buf dir;
	hf_buf_init(&dir, 4096);
	char *names[SMS_MAX_FILES];
	size_t n_names = 0;
	DIR *dh = NULL;
	if (hf_buf_appendf(&dir, "%s/sms", menus_dir(cfg))) {
		hf_buf_note(err, "menus.dir is too long");
		rc = HF_EINVAL;
		goto out;
	}
	dh = opendir(hf_buf_cstr(&dir));
	if (!dh) {
		hf_buf_note(err, "%s: cannot open the SMS template folder: %s", hf_buf_cstr(&dir), strerror(errno));
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
						 "e.g. sw.ini", hf_buf_cstr(&dir), e->d_name);
				rc = HF_EINVAL;
				goto out;
			}
			continue;
		}
		if (n_names == SMS_MAX_FILES) {
			hf_buf_note(err, "%s: more than %d template files", hf_buf_cstr(&dir), SMS_MAX_FILES);
			rc = HF_EINVAL;
			goto out;
		}
		has_en |= strcmp(e->d_name, "en.ini") == 0;
		names[n_names++] = hf_xstrdup(e->d_name);
		errno = 0;
	}
	if (errno) {
		hf_buf_note(err, "%s: cannot list the SMS template folder: %s", hf_buf_cstr(&dir), strerror(errno));
		rc = HF_EIO;
		goto out;
	}
	if (!has_en) {
		hf_buf_note(err, "%s: no en.ini (English is the reference for the other languages and the last fallback)",
			    hf_buf_cstr(&dir));
		rc = HF_EINVAL;
		goto out;
	}
	qsort(names, n_names, sizeof(names[0]), name_cmp);
	/* en.ini first: the others are checked against it. */
	struct sms_lang *en = NULL;
	rc = load_file(hf_buf_cstr(&dir), "en.ini", NULL, &en, err);
	if (rc)
		goto out;
	S.langs[S.n++] = en;
	for (size_t i = 0; i < n_names; i++) {
		if (strcmp(names[i], "en.ini") == 0)
			continue;
		struct sms_lang *l = NULL;
		rc = load_file(hf_buf_cstr(&dir), names[i], en, &l, err);
		if (rc)
			goto out;
		S.langs[S.n++] = l;
	}
	S.loaded = true;
out:
	if (dh)
		closedir(dh);
	for (size_t i = 0; i < n_names; i++)
		free(names[i]);
	hf_buf_release(&dir);
	if (rc)
		notices_shutdown();
	return rc;
}

void notices_shutdown(void)
{
	for (size_t i = 0; i < S.n; i++)
		lang_free(S.langs[i]);
	memset(&S, 0, sizeof(S));
}

static const struct sms_lang *lang_find(const char *code)
{
	for (size_t i = 0; i < S.n; i++)
		if (strcmp(S.langs[i]->code, code) == 0)
			return S.langs[i];
	return NULL;
}

/* The template in the language, else Swahili, else English; *used names the language taken. NULL when
 * even en.ini lacks it (a workflow names a template nobody wrote). */
static const struct sms_template *template_for(const char *lang, const char *name, const char **used)
{
	const char *chain[] = {lang, "sw", "en"};
	for (size_t i = 0; i < HF_ARRAY_LEN(chain); i++) {
		const struct sms_lang *l = lang_find(chain[i]);
		const struct sms_template *t = l ? lang_template(l, name) : NULL;
		if (t) {
			*used = l->code;
			return t;
		}
	}
	return NULL;
}

/* Fills the placeholders from params (strings or integers); a missing parameter becomes "-". */
static hf_err render(const char *text, const json_t *params, struct hf_buf *out)
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
		char key[SMS_NAME_MAX + 1];
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

/* ---- helpers -------------------------------------------------------------------------------------------- */

static void say(struct svc_call *c, const char *fmt, ...) HF_PRINTF(2, 3);
static void say(struct svc_call *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->msg, c->msg_cap, fmt, ap);
	va_end(ap);
}

static void iso_utc(int64_t ms, char *out, size_t cap)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static hf_err placeholders(struct hf_buf *b, size_t n, const char *one)
{
	hf_err err = HF_OK;
	for (size_t i = 0; i < n && !err; i++)
		err = hf_buf_appendf(b, "%s%s", i ? ", " : "", one);
	return err;
}

static void wipe(struct hf_buf *b)
{
	if (b->data)
		sodium_memzero(b->data, b->cap);
	hf_buf_release(b);
}

struct cycle {
	int64_t id;
	char code[41];
	char status[24];
	char currency[4];
	char pay_from[11], pay_until[11];
	char provider[33];
};

/* The cycle by code: HF_ENOTFOUND when there is none; with need_approved, HF_ECONFLICT unless approved. */
static hf_err cycle_find(struct svc_call *c, const char *code, bool need_approved, struct cycle *out)
{
	if (!code || strlen(code) > 40) {
		say(c, "No such payment cycle.");
		return HF_ENOTFOUND;
	}
	struct db_val v[] = {db_str(code)};
	struct db_rows *r = NULL;
	hf_err err = db_query(c->db,
			      "SELECT id, code, status, currency, DATE_FORMAT(pay_from, '%Y-%m-%d'), DATE_FORMAT(pay_until,"
			      " '%Y-%m-%d'), COALESCE(provider, '') FROM payment_cycles WHERE code = ?",
			      v, 1, &r);
	if (err)
		return err;
	if (!db_rows_next(r)) {
		db_rows_free(r);
		say(c, "No such payment cycle.");
		return HF_ENOTFOUND;
	}
	memset(out, 0, sizeof(*out));
	out->id = db_rows_i64(r, 0);
	hf_strlcpy(out->code, db_rows_str(r, 1), sizeof(out->code));
	hf_strlcpy(out->status, db_rows_str(r, 2), sizeof(out->status));
	hf_strlcpy(out->currency, db_rows_str(r, 3), sizeof(out->currency));
	hf_strlcpy(out->pay_from, db_rows_str(r, 4), sizeof(out->pay_from));
	hf_strlcpy(out->pay_until, db_rows_str(r, 5), sizeof(out->pay_until));
	hf_strlcpy(out->provider, db_rows_str(r, 6), sizeof(out->provider));
	db_rows_free(r);
	if (need_approved && strcmp(out->status, "approved") != 0) {
		say(c, "The cycle is %s: notices go to the payees of an approved cycle.", out->status);
		return HF_ECONFLICT;
	}
	return HF_OK;
}

/* ---- the filter ----------------------------------------------------------------------------------------- */

static const char *const PAYMENT_STATUSES[] = {"scheduled", "approved",	 "sending", "pending",
					       "paid",	    "failed",	 "reversed", "available",
					       "collected", "expired",	 "cancelled", NULL};

struct filter {
	const char *tmpl;
	const char *pay_point, *location, *status; /* NULL = any (status: the payable ones) */
	char like[700];                            /* location + "/%", LIKE-escaped with '!' */
};

/* FROM and WHERE of the payees a filter selects; FILTER_NPARAMS values from filter_vals. */
#define FILTER_FROM                                                                                            \
	" FROM payments p JOIN individuals i ON i.id = p.individual_id LEFT JOIN locations l ON l.id ="          \
	" p.location_id WHERE p.cycle_id = ? AND ((? IS NULL AND p.status IN ('approved', 'available', 'sending',"  \
	" 'pending')) OR p.status = ?) AND (? IS NULL OR p.pay_point = ?) AND (? IS NULL OR l.path = ? OR l.path"  \
	" LIKE ? ESCAPE '!') AND EXISTS (SELECT 1 FROM enrolments e WHERE e.id = p.enrolment_id AND e.status ="    \
	" 'enrolled')" /* a held payee (died, suspended since the approval) is not told to collect */
#define FILTER_NPARAMS 8

static void filter_vals(const struct filter *f, int64_t cycle_id, struct db_val *v)
{
	v[0] = DB_I64(cycle_id);
	v[1] = db_str(f->status);
	v[2] = db_str(f->status);
	v[3] = db_str(f->pay_point);
	v[4] = db_str(f->pay_point);
	v[5] = db_str(f->location);
	v[6] = db_str(f->location);
	v[7] = db_str(f->location ? f->like : NULL);
}

static void filter_read(struct svc_call *c, json_t *body, bool with_send_at, struct filter *f, const char **send_at)
{
	static const char *const allowed[] = {"template", "pay_point", "location", "status", NULL};
	static const char *const allowed_send[] = {"template", "pay_point", "location", "status", "send_at", NULL};
	hf_json_only_fields(body, with_send_at ? allowed_send : allowed, "", c->fe);
	memset(f, 0, sizeof(*f));
	(void)hf_json_get_enum(body, "", "template", true, PAYMENT_TEMPLATES, c->fe, &f->tmpl);
	(void)hf_json_get_str(body, "", "pay_point", false, 1, 64, c->fe, &f->pay_point);
	(void)hf_json_get_str(body, "", "location", false, 1, 320, c->fe, &f->location);
	(void)hf_json_get_enum(body, "", "status", false, PAYMENT_STATUSES, c->fe, &f->status);
	if (with_send_at)
		(void)hf_json_get_str(body, "", "send_at", false, 1, 32, c->fe, send_at);
	if (f->location && (f->location[0] == '/' || f->location[strlen(f->location) - 1] == '/' ||
			    strstr(f->location, "//"))) {
		hf_ferrs_add(c->fe, "location", "format", "a path of names: Region, Region/District or Region/District/Village");
		f->location = NULL;
	}
	if (f->location) {
		/* "Region/District" also matches its villages, never "Region/Districtville". */
		size_t k = 0;
		for (const char *s = f->location; *s && k + 4 < sizeof(f->like); s++) {
			if (*s == '!' || *s == '%' || *s == '_')
				f->like[k++] = '!';
			f->like[k++] = *s;
		}
		memcpy(f->like + k, "/%", 3);
	}
}

/* The filter as given (absent keys left out): stored with the notice and audited; no personal data. */
static json_t *filter_json(const struct filter *f)
{
	json_t *o = json_object();
	if (f->pay_point)
		json_object_set_new(o, "pay_point", json_string(f->pay_point));
	if (f->location)
		json_object_set_new(o, "location", json_string(f->location));
	if (f->status)
		json_object_set_new(o, "status", json_string(f->status));
	return o;
}

/* The params of a payment template: the payee's amount and pay point, the cycle's dates. No personal data. */
static json_t *payment_params(const char *tmpl, const struct cycle *cy, int64_t amount, const char *currency,
			      const char *pay_point)
{
	const struct tmpl_spec *spec = spec_find(tmpl);
	HF_ASSERT(spec && spec->payment);
	char money[HF_MONEY_STR_MAX];
	hf_money_display(amount, currency, money);
	const char *where = pay_point && *pay_point ? pay_point : cy->provider;
	json_t *o = json_object();
	for (size_t i = 0; spec->params[i]; i++) {
		const char *k = spec->params[i];
		const char *v = !strcmp(k, "amount")	 ? money
				: !strcmp(k, "currency") ? currency
				: !strcmp(k, "pay_point") ? where
				: !strcmp(k, "date")	 ? cy->pay_from
				: !strcmp(k, "until")	 ? cy->pay_until
							 : "";
		json_object_set_new(o, k, json_string(v));
	}
	return o;
}

/* ---- preview -------------------------------------------------------------------------------------------- */

hf_err notices_preview(struct svc_call *c, const char *cycle_code, json_t *body, json_t **out)
{
	struct filter f;
	filter_read(c, body, false, &f, NULL);
	if (hf_ferrs_any(c->fe))
		return HF_EINVAL;
	if (!S.loaded) {
		hf_log(HF_LOG_ERROR, "core.notices", "msg=\"sms templates not loaded (notices_init not called)\"");
		return HF_EINTERNAL;
	}
	struct cycle cy;
	hf_err err = cycle_find(c, cycle_code, true, &cy);
	if (err)
		return err;
	struct db_val v[FILTER_NPARAMS];
	filter_vals(&f, cy.id, v);
	struct db_rows *r = NULL;
	err = db_query(c->db,
		       "SELECT i.language AS lang, (i.phone_enc IS NOT NULL) AS has_phone, COUNT(*), MIN(p.id)" FILTER_FROM
		       " GROUP BY lang, has_phone ORDER BY lang LIMIT 200",
		       v, FILTER_NPARAMS, &r);
	if (err)
		return err;
	struct {
		char lang[9];
		int64_t count, first;
	} g[PREVIEW_MAX_LANGS];
	size_t ng = 0;
	int64_t recipients = 0, without = 0;
	while (db_rows_next(r)) {
		int64_t n = db_rows_i64(r, 2);
		if (!db_rows_i64(r, 1)) {
			without += n;
			continue;
		}
		recipients += n;
		if (ng < PREVIEW_MAX_LANGS) {
			hf_strlcpy(g[ng].lang, db_rows_str(r, 0), sizeof(g[ng].lang));
			g[ng].count = n;
			g[ng].first = db_rows_i64(r, 3);
			ng++;
		}
	}
	db_rows_free(r);
	json_t *by = json_object();
	for (size_t i = 0; i < ng && !err; i++) {
		/* The example is the language's first payee's real values. */
		struct db_val w[] = {DB_I64(g[i].first)};
		err = db_query(c->db, "SELECT amount, currency, COALESCE(pay_point, '') FROM payments WHERE id = ?", w, 1,
			       &r);
		if (err)
			break;
		json_t *params = NULL;
		if (db_rows_next(r))
			params = payment_params(f.tmpl, &cy, db_rows_i64(r, 0), db_rows_str(r, 1), db_rows_str(r, 2));
		db_rows_free(r);
		if (!params)
			continue; /* removed meanwhile */
		const char *used = "en";
		const struct sms_template *t = template_for(g[i].lang, f.tmpl, &used);
		HF_ASSERT(t); /* en.ini has every payment template: checked at load */
		struct hf_buf text;
		hf_buf_init(&text, SMS_RENDER_MAX);
		err = render(t->text, params, &text);
		struct sms_size m;
		sms_measure(hf_buf_cstr(&text), &m);
		if (!err)
			json_object_set_new(by, g[i].lang,
					    json_pack("{s:I, s:s, s:s, s:s, s:I}", "count", (json_int_t)g[i].count, "text",
						      hf_buf_cstr(&text), "text_language", used, "coding",
						      m.gsm7 ? "gsm7" : "ucs2", "length", (json_int_t)m.units));
		hf_buf_release(&text);
		json_decref(params);
	}
	if (err) {
		json_decref(by);
		return err;
	}
	*out = json_pack("{s:s, s:s, s:I, s:I, s:o, s:o}", "cycle", cy.code, "template", f.tmpl, "recipients",
			 (json_int_t)recipients, "without_phone", (json_int_t)without, "by_language", by, "filter",
			 filter_json(&f));
	return HF_OK;
}

/* ---- send ----------------------------------------------------------------------------------------------- */

struct send_ctx {
	struct svc_call *c;
	const struct cycle *cy;
	const struct filter *f;
	int64_t notice_id;
	int64_t send_after_ms;
	/* the plan: payees with a phone, sorted by payment id; each batch takes a range of them */
	const int64_t *ids;
	size_t n_ids;
	/* the batch being written */
	size_t lo, hi; /* ids[lo..hi] */
	int inserted, skipped;
};

static bool id_in(const int64_t *a, size_t n, int64_t x)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (a[mid] == x)
			return true;
		if (a[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

struct id_list {
	int64_t *a;
	size_t n, cap, max;
};

static hf_err id_collect(void *vctx, struct db_rows *row)
{
	struct id_list *l = vctx;
	if (l->n == l->max)
		return HF_ETOOBIG;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 1024;
		l->a = hf_xrealloc(l->a, l->cap * sizeof(*l->a));
	}
	l->a[l->n++] = db_rows_i64(row, 0);
	return HF_OK;
}

/* Payments in [lo, hi] of this cycle that have this template coming or gone within 24 h of send_after (not
 * failed): a beneficiary does not get the same text twice in a day. Written to start from outbox.payment_id
 * (an index on outbox (payment_id, template) makes it a range read); without one, the join goes through
 * the cycle's notices of this template. */
#define RECENT_SQL                                                                                             \
	"SELECT DISTINCT o.payment_id FROM outbox o JOIN payment_notices n ON n.id = o.notice_id WHERE"          \
	" o.payment_id BETWEEN ? AND ? AND o.template = ? AND o.status <> 'failed' AND o.send_after >"             \
	" FROM_UNIXTIME(? / 1000) - INTERVAL 24 HOUR AND o.send_after < FROM_UNIXTIME(? / 1000) + INTERVAL 24 HOUR" \
	" AND n.cycle_id = ? AND n.template = ? AND n.id <> ? ORDER BY o.payment_id"

static hf_err recent_query(struct db *db, const struct send_ctx *s, int64_t lo, int64_t hi, struct id_list *out)
{
	struct db_val v[] = {DB_I64(lo),	       DB_I64(hi),	   db_str(s->f->tmpl),	   DB_I64(s->send_after_ms),
			     DB_I64(s->send_after_ms), DB_I64(s->cy->id), db_str(s->f->tmpl), DB_I64(s->notice_id)};
	return db_stream(db, RECENT_SQL, v, HF_ARRAY_LEN(v), id_collect, out);
}

#define OUTBOX_ROW                                                                                              \
	"(?, ?, ?, 'beneficiary', ?, ?, ?, ?, FROM_UNIXTIME(? / 1000), 'queued', 0, UTC_TIMESTAMP(3),"          \
	" UTC_TIMESTAMP(3))"
#define OUTBOX_ROW_NPARAMS 8

struct pending_row {
	int64_t id, payment_id;
	char lang[9];
	struct hf_buf sealed;
	char *params; /* owned */
};

static hf_err rows_insert(struct db *db, const struct send_ctx *s, struct pending_row *rows, size_t n)
{
	if (!n)
		return HF_OK;
	struct hf_buf sql;
	hf_buf_init(&sql, 64 * 1024);
	struct db_val *v = hf_xcalloc(n * OUTBOX_ROW_NPARAMS, sizeof(*v));
	hf_err err = hf_buf_append_str(&sql,
				       "INSERT INTO outbox (id, payment_id, notice_id, audience, phone_enc, language, template,"
				       " params, send_after, status, attempts, created_at, updated_at) VALUES ");
	if (!err)
		err = placeholders(&sql, n, OUTBOX_ROW);
	for (size_t i = 0; i < n; i++) {
		struct db_val *w = v + i * OUTBOX_ROW_NPARAMS;
		w[0] = DB_I64(rows[i].id);
		w[1] = DB_I64(rows[i].payment_id);
		w[2] = DB_I64(s->notice_id);
		w[3] = DB_BLOB(rows[i].sealed.data, rows[i].sealed.len);
		w[4] = db_str(rows[i].lang);
		w[5] = db_str(s->f->tmpl);
		w[6] = db_str(rows[i].params);
		w[7] = DB_I64(s->send_after_ms);
	}
	if (!err)
		err = db_exec(db, hf_buf_cstr(&sql), v, n * OUTBOX_ROW_NPARAMS, NULL);
	free(v);
	hf_buf_release(&sql);
	return err;
}

static void rows_release(struct pending_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		hf_buf_release(&rows[i].sealed);
		free(rows[i].params);
	}
}

/* A fresh id not yet used by this batch: db_new_id draws 20 random bits per millisecond, and a batch draws
 * a thousand in a few milliseconds. */
static int64_t fresh_id(const struct pending_row *rows, size_t n, const int64_t *used, size_t n_used)
{
	for (;;) {
		int64_t id = db_new_id();
		bool taken = false;
		for (size_t i = 0; i < n && !taken; i++)
			taken = rows[i].id == id;
		for (size_t i = 0; i < n_used && !taken; i++)
			taken = used[i] == id;
		if (!taken)
			return id;
	}
}

/* One batch of payees in one transaction; repeatable (db_tx may run it again after a deadlock). */
static hf_err batch_body(struct db *db, void *vctx)
{
	struct send_ctx *s = vctx;
	s->inserted = 0;
	s->skipped = 0;
	int64_t lo = s->lo ? s->ids[s->lo - 1] + 1 : 0, hi = s->ids[s->hi];
	/* The cycle's row serialises concurrent sends to it, so the 24-hour check below sees the other's rows. */
	struct db_val cv[] = {DB_I64(s->cy->id)};
	struct db_rows *r = NULL;
	hf_err err = db_query(db, "SELECT status FROM payment_cycles WHERE id = ? FOR UPDATE", cv, 1, &r);
	if (err)
		return err;
	bool approved = db_rows_next(r) && strcmp(db_rows_str(r, 0), "approved") == 0;
	db_rows_free(r);
	if (!approved)
		return HF_ECONFLICT; /* closed or cancelled meanwhile: the caller says so */
	struct id_list recent = {.max = NOTICE_BATCH * 4};
	err = recent_query(db, s, lo, hi, &recent);
	struct db_val v[FILTER_NPARAMS + 2];
	filter_vals(s->f, s->cy->id, v);
	v[FILTER_NPARAMS] = DB_I64(lo);
	v[FILTER_NPARAMS + 1] = DB_I64(hi);
	if (!err)
		err = db_query(db,
			       "SELECT p.id, p.amount, p.currency, COALESCE(p.pay_point, ''), i.id, i.language, i.phone_enc"
			       FILTER_FROM " AND p.id BETWEEN ? AND ? AND i.phone_enc IS NOT NULL ORDER BY p.id LIMIT 4000",
			       /* NOTICE_RANGE_ROWS */
			       v, HF_ARRAY_LEN(v), &r);
	if (err) {
		free(recent.a);
		return err;
	}
	struct pending_row rows[NOTICE_INSERT_ROWS];
	size_t nrows = 0;
	int64_t *used = hf_xcalloc(NOTICE_RANGE_ROWS, sizeof(*used));
	size_t n_used = 0;
	struct hf_buf phone;
	hf_buf_init(&phone, 256);
	while (!err && db_rows_next(r)) {
		int64_t pid = db_rows_i64(r, 0);
		if (id_in(recent.a, recent.n, pid)) {
			s->skipped++;
			continue;
		}
		struct pending_row *row = &rows[nrows];
		memset(row, 0, sizeof(*row));
		row->id = fresh_id(rows, nrows, used, n_used);
		row->payment_id = pid;
		hf_strlcpy(row->lang, db_rows_str(r, 5), sizeof(row->lang));
		hf_buf_init(&row->sealed, 512);
		nrows++;
		json_t *params = payment_params(s->f->tmpl, s->cy, db_rows_i64(r, 1), db_rows_str(r, 2),
						db_rows_str(r, 3));
		row->params = json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS);
		json_decref(params);
		size_t len = 0;
		const void *sealed = db_rows_blob(r, 6, &len);
		hf_buf_reset(&phone);
		err = person_open_field(g_app.keys, db_rows_i64(r, 4), "phone", sealed, len, &phone);
		if (!err)
			err = hf_buf_append(&phone, "", 1);
		if (!err)
			err = outbox_seal_phone(row->id, phone.data, &row->sealed);
		if (err)
			hf_log(HF_LOG_ERROR, "core.notices", "msg=\"cannot reseal a payee's phone\" payment=%lld err=%s",
			       (long long)pid, hf_err_name(err));
		if (!err && nrows == NOTICE_INSERT_ROWS) {
			err = rows_insert(db, s, rows, nrows);
			for (size_t i = 0; i < nrows; i++)
				used[n_used++] = rows[i].id;
			s->inserted += (int)nrows;
			rows_release(rows, nrows);
			nrows = 0;
		}
	}
	db_rows_free(r);
	wipe(&phone);
	if (!err) {
		err = rows_insert(db, s, rows, nrows);
		s->inserted += (int)nrows;
	}
	rows_release(rows, nrows);
	free(used);
	free(recent.a);
	if (!err && s->inserted) {
		struct db_val w[] = {DB_I64(s->inserted), DB_I64(s->notice_id)};
		err = db_exec(db, "UPDATE payment_notices SET recipients = recipients + ? WHERE id = ?", w, 2, NULL);
	}
	return err;
}

struct start_tx {
	struct send_ctx *s;
	int planned, planned_skip;
};

/* The notice row and its audit entry, before any message is queued: the entry covers what follows. */
static hf_err start_body(struct db *db, void *vctx)
{
	struct start_tx *t = vctx;
	struct send_ctx *s = t->s;
	json_t *filter = filter_json(s->f);
	char *ftext = json_dumps(filter, JSON_COMPACT | JSON_SORT_KEYS);
	struct db_val v[] = {DB_I64(s->notice_id), DB_I64(s->cy->id), db_str(s->f->tmpl), db_str(ftext),
			     DB_I64(s->send_after_ms), db_str(s->c->p->actor)};
	hf_err err = db_exec(db,
			     "INSERT INTO payment_notices (id, cycle_id, template, filter, recipients, send_after, created_at,"
			     " created_by) VALUES (?, ?, ?, ?, 0, FROM_UNIXTIME(? / 1000), UTC_TIMESTAMP(3), ?)",
			     v, HF_ARRAY_LEN(v), NULL);
	free(ftext);
	if (!err) {
		char sa[24], nid[24];
		iso_utc(s->send_after_ms, sa, sizeof(sa));
		snprintf(nid, sizeof(nid), "%lld", (long long)s->notice_id);
		json_t *d = json_pack("{s:s, s:s, s:i, s:i, s:s, s:O}", "notice", nid, "template", s->f->tmpl,
				      "recipients", t->planned, "skipped_recent", t->planned_skip, "send_after", sa,
				      "filter", filter);
		struct audit_event ev = {"notice.send", "cycle", s->cy->code, "ok", NULL, NULL, d};
		err = audit_append(db, &s->c->p->audit, &ev);
		json_decref(d);
	}
	json_decref(filter);
	return err;
}

static hf_err send_at_parse(struct svc_call *c, const char *text, int64_t now_ms, int64_t *out)
{
	*out = now_ms;
	if (!text)
		return HF_OK;
	struct tm tm = {0};
	const char *end = strptime(text, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (!end || *end) {
		hf_ferrs_add(c->fe, "send_at", "format", "YYYY-MM-DDTHH:MM:SSZ (UTC)");
		return HF_EINVAL;
	}
	int64_t ms = (int64_t)timegm(&tm) * 1000;
	if (ms <= now_ms)
		hf_ferrs_add(c->fe, "send_at", "past", "must be in the future (leave it out to send now)");
	else if (ms > now_ms + (int64_t)NOTICE_MAX_AHEAD_S * 1000)
		hf_ferrs_add(c->fe, "send_at", "too_far", "at most 30 days ahead");
	if (hf_ferrs_any(c->fe))
		return HF_EINVAL;
	*out = ms;
	return HF_OK;
}

hf_err notices_send(struct svc_call *c, const char *cycle_code, json_t *body, json_t **out)
{
	struct filter f;
	const char *send_at = NULL;
	filter_read(c, body, true, &f, &send_at);
	int64_t now_ms = hf_now_ms(), send_after_ms = now_ms;
	if (!hf_ferrs_any(c->fe))
		(void)send_at_parse(c, send_at, now_ms, &send_after_ms);
	if (hf_ferrs_any(c->fe))
		return HF_EINVAL;
	if (!S.loaded) {
		hf_log(HF_LOG_ERROR, "core.notices", "msg=\"sms templates not loaded (notices_init not called)\"");
		return HF_EINTERNAL;
	}
	struct cycle cy;
	hf_err err = cycle_find(c, cycle_code, true, &cy);
	if (err)
		return err;
	struct send_ctx s = {.c = c, .cy = &cy, .f = &f, .notice_id = db_new_id(), .send_after_ms = send_after_ms};

	/* The plan: every payee with a phone, and who of them had this text within 24 h. */
	struct db_val v[FILTER_NPARAMS];
	filter_vals(&f, cy.id, v);
	struct id_list ids = {.max = NOTICE_MAX_RECIPIENTS};
	err = db_stream(c->db, "SELECT p.id" FILTER_FROM " AND i.phone_enc IS NOT NULL ORDER BY p.id", v, FILTER_NPARAMS,
			id_collect, &ids);
	struct id_list recent = {.max = NOTICE_MAX_RECIPIENTS};
	if (!err && ids.n)
		err = recent_query(c->db, &s, ids.a[0], ids.a[ids.n - 1], &recent);
	if (err == HF_ETOOBIG)
		say(c, "More than %d payees match: send to one location or pay point at a time.", NOTICE_MAX_RECIPIENTS);
	if (err)
		goto out;
	s.ids = ids.a;
	s.n_ids = ids.n;
	struct start_tx st = {&s, 0, 0};
	for (size_t i = 0; i < ids.n; i++) {
		if (id_in(recent.a, recent.n, ids.a[i]))
			st.planned_skip++;
		else
			st.planned++;
	}
	err = db_tx(c->db, start_body, &st);
	if (err)
		goto out;

	int recipients = 0, skipped = 0;
	for (size_t lo = 0; lo < ids.n && !err; lo += NOTICE_BATCH) {
		s.lo = lo;
		s.hi = lo + NOTICE_BATCH < ids.n ? lo + NOTICE_BATCH - 1 : ids.n - 1;
		err = db_tx(c->db, batch_body, &s);
		/* An id drawn twice (another writer in the same millisecond): the batch is drawn again. */
		for (int k = 0; k < 3 && err == HF_ECONFLICT && strcmp(db_conflict_key(c->db), "PRIMARY") == 0; k++)
			err = db_tx(c->db, batch_body, &s);
		if (!err) {
			recipients += s.inserted;
			skipped += s.skipped;
		}
	}
	if (err) {
		hf_log(HF_LOG_ERROR, "core.notices", "msg=\"notice stopped part way\" notice=%lld queued=%d err=%s",
		       (long long)s.notice_id, recipients, hf_err_name(err));
		if (err == HF_ECONFLICT)
			say(c, "The cycle is no longer approved: the notice stopped after %d recipients.", recipients);
		goto out;
	}
	char id[24], sa[24];
	snprintf(id, sizeof(id), "%lld", (long long)s.notice_id);
	iso_utc(send_after_ms, sa, sizeof(sa));
	*out = json_pack("{s:s, s:s, s:s, s:i, s:i, s:s, s:b}", "id", id, "cycle", cy.code, "template", f.tmpl,
			 "recipients", recipients, "skipped_recent", skipped, "send_after", sa, "scheduled",
			 send_at != NULL);
out:
	free(ids.a);
	free(recent.a);
	return err;
}

/* ---- list ----------------------------------------------------------------------------------------------- */

hf_err notices_list(struct svc_call *c, const char *cycle_code, json_t **out)
{
	struct cycle cy;
	hf_err err = cycle_find(c, cycle_code, false, &cy);
	if (err)
		return err;
	struct db_val v[] = {DB_I64(cy.id)};
	struct db_rows *r = NULL;
	err = db_query(c->db,
		       "SELECT id, template, filter, recipients, DATE_FORMAT(send_after, " DB_TS_FMT "),"
		       " DATE_FORMAT(created_at, " DB_TS_FMT "), created_by FROM payment_notices WHERE cycle_id = ?"
		       " ORDER BY id DESC LIMIT 200", /* NOTICE_LIST_MAX */
		       v, 1, &r);
	if (err)
		return err;
	json_t *items = json_array();
	while (db_rows_next(r)) {
		json_t *filter = json_loads(db_rows_str(r, 2), 0, NULL);
		json_array_append_new(
			items, json_pack("{s:s, s:s, s:o, s:I, s:s, s:s, s:s, s:{s:i, s:i, s:i, s:i, s:i}}", "id",
					 db_rows_str(r, 0), "template", db_rows_str(r, 1), "filter",
					 filter ? filter : json_object(), "recipients", (json_int_t)db_rows_i64(r, 3),
					 "send_after", db_rows_str(r, 4), "created_at", db_rows_str(r, 5), "created_by",
					 db_rows_str(r, 6), "delivery", "queued", 0, "sending", 0, "sent", 0, "delivered", 0,
					 "failed", 0));
	}
	db_rows_free(r);
	err = db_query(c->db,
		       "SELECT o.notice_id, o.status, COUNT(*) FROM payment_notices n JOIN outbox o ON o.notice_id = n.id"
		       " WHERE n.cycle_id = ? GROUP BY o.notice_id, o.status",
		       v, 1, &r);
	if (err) {
		json_decref(items);
		return err;
	}
	while (db_rows_next(r)) {
		size_t i;
		json_t *it;
		json_array_foreach(items, i, it) {
			if (strcmp(json_string_value(json_object_get(it, "id")), db_rows_str(r, 0)) == 0)
				json_object_set_new(json_object_get(it, "delivery"), db_rows_str(r, 1),
						    json_integer(db_rows_i64(r, 2)));
		}
	}
	db_rows_free(r);
	*out = json_pack("{s:s, s:o}", "cycle", cy.code, "items", items);
	return HF_OK;
}

/* ---- the outbox, for the gateway ------------------------------------------------------------------------ */

struct claim_tx {
	int limit;
	json_t *items;
	int failed;
};

/* Rows claimed again (stale 'sending') first, then the due 'queued' ones, oldest first. */
static hf_err claim_select(struct db *db, bool stale, int limit, struct db_rows **r)
{
	struct db_val v[] = {DB_I64(limit)};
	return db_query(db,
			stale ? "SELECT id, phone_enc, language, template, params, attempts FROM outbox WHERE status ="
				" 'sending' AND updated_at < UTC_TIMESTAMP(3) - INTERVAL 10 MINUTE"
				" ORDER BY created_at LIMIT ? FOR UPDATE SKIP LOCKED"
			      : "SELECT id, phone_enc, language, template, params, attempts FROM outbox WHERE status ="
				" 'queued' AND (send_after IS NULL OR send_after <= UTC_TIMESTAMP(3)) ORDER BY created_at"
				" LIMIT ? FOR UPDATE SKIP LOCKED",
			v, 1, r);
}

static hf_err ids_update(struct db *db, const char *head, const int64_t *ids, size_t n)
{
	if (!n)
		return HF_OK;
	struct hf_buf sql;
	hf_buf_init(&sql, 8192);
	struct db_val *v = hf_xcalloc(n, sizeof(*v));
	for (size_t i = 0; i < n; i++)
		v[i] = DB_I64(ids[i]);
	hf_err err = hf_buf_append_str(&sql, head);
	if (!err)
		err = placeholders(&sql, n, "?");
	if (!err)
		err = hf_buf_append_str(&sql, ")");
	if (!err)
		err = db_exec(db, hf_buf_cstr(&sql), v, n, NULL);
	free(v);
	hf_buf_release(&sql);
	return err;
}

/* One claimed row into the answer; false when it cannot be sent (no text, phone not readable). */
static bool claim_row(struct db_rows *r, json_t *items)
{
	int64_t id = db_rows_i64(r, 0);
	const char *lang = db_rows_str(r, 2), *tmpl = db_rows_str(r, 3);
	const char *used = "en";
	const struct sms_template *t = template_for(lang, tmpl, &used);
	if (!t) {
		hf_log(HF_LOG_ERROR, "core.notices", "msg=\"no text for an outbox template; message failed\" outbox=%lld"
		       " template=%s", (long long)id, tmpl);
		return false;
	}
	json_t *params = json_loads(db_rows_str(r, 4), 0, NULL);
	if (!json_is_object(params)) {
		json_decref(params);
		params = json_object();
	}
	struct hf_buf text, phone;
	hf_buf_init(&text, SMS_RENDER_MAX);
	hf_buf_init(&phone, 256);
	size_t len = 0;
	const void *sealed = db_rows_blob(r, 1, &len);
	hf_err err = outbox_open_phone(id, sealed, len, &phone);
	if (err)
		hf_log(HF_LOG_ERROR, "core.notices", "msg=\"cannot open the phone of an outbox row; message failed\""
		       " outbox=%lld err=%s", (long long)id, hf_err_name(err));
	if (!err)
		err = render(t->text, params, &text);
	if (!err) {
		struct sms_size m;
		sms_measure(hf_buf_cstr(&text), &m);
		char sid[24];
		snprintf(sid, sizeof(sid), "%lld", (long long)id);
		json_array_append_new(items, json_pack("{s:s, s:s, s:s, s:s, s:s, s:O, s:s, s:s, s:I}", "id", sid,
						       "phone", phone.data, "language", lang, "text_language", used,
						       "template", tmpl, "params", params, "text", hf_buf_cstr(&text),
						       "coding", m.gsm7 ? "gsm7" : "ucs2", "attempt",
						       (json_int_t)db_rows_i64(r, 5) + 1));
	}
	json_decref(params);
	hf_buf_release(&text);
	wipe(&phone);
	return err == HF_OK;
}

static hf_err claim_body(struct db *db, void *vctx)
{
	struct claim_tx *t = vctx;
	json_array_clear(t->items);
	t->failed = 0;
	int64_t *take = hf_xcalloc((size_t)t->limit, sizeof(*take));
	int64_t *drop = hf_xcalloc((size_t)t->limit, sizeof(*drop));
	size_t ntake = 0, ndrop = 0;
	hf_err err = HF_OK;
	for (int pass = 0; pass < 2 && !err && (int)(ntake + ndrop) < t->limit; pass++) {
		struct db_rows *r = NULL;
		err = claim_select(db, pass == 0, t->limit - (int)(ntake + ndrop), &r);
		while (!err && db_rows_next(r)) {
			int64_t id = db_rows_i64(r, 0);
			/* A message that keeps its gateway from reporting (it crashes on it) stops coming back. */
			if (db_rows_i64(r, 5) >= OUTBOX_MAX_ATTEMPTS) {
				hf_log(HF_LOG_WARN, "core.notices", "msg=\"outbox row claimed too often without a report;"
				       " failed\" outbox=%lld attempts=%lld", (long long)id, (long long)db_rows_i64(r, 5));
				drop[ndrop++] = id;
			} else if (claim_row(r, t->items)) {
				take[ntake++] = id;
			} else {
				drop[ndrop++] = id;
			}
		}
		db_rows_free(r);
	}
	if (!err)
		err = ids_update(db,
				 "UPDATE outbox SET status = 'sending', attempts = attempts + 1, updated_at = UTC_TIMESTAMP(3)"
				 " WHERE id IN (",
				 take, ntake);
	if (!err)
		err = ids_update(db, "UPDATE outbox SET status = 'failed', updated_at = UTC_TIMESTAMP(3) WHERE id IN (",
				 drop, ndrop);
	t->failed = (int)ndrop;
	free(take);
	free(drop);
	return err;
}

hf_err notices_outbox_claim(struct svc_call *c, int limit, json_t **out)
{
	if (limit < 1 || limit > OUTBOX_CLAIM_MAX) {
		hf_ferrs_add(c->fe, "limit", "out_of_range", "must be 1 to %d", OUTBOX_CLAIM_MAX);
		return HF_EINVAL;
	}
	if (!S.loaded) {
		hf_log(HF_LOG_ERROR, "core.notices", "msg=\"sms templates not loaded (notices_init not called)\"");
		return HF_EINTERNAL;
	}
	struct claim_tx t = {.limit = limit, .items = json_array()};
	hf_err err = db_tx(c->db, claim_body, &t);
	if (err) {
		json_decref(t.items);
		return err;
	}
	*out = json_pack("{s:o, s:i}", "items", t.items, "failed", t.failed);
	return HF_OK;
}

/* Forward only: queued/sending -> sent -> delivered; any of those -> failed. */
static int status_rank(const char *s)
{
	static const char *const order[] = {"queued", "sending", "sent", "delivered"};
	for (size_t i = 0; i < HF_ARRAY_LEN(order); i++)
		if (strcmp(order[i], s) == 0)
			return (int)i;
	return -1;
}

struct report_tx {
	struct svc_call *c;
	int64_t id;
	const char *status;
	char before[16];
	bool changed;
};

static hf_err report_body(struct db *db, void *vctx)
{
	struct report_tx *t = vctx;
	t->changed = false;
	struct db_val v[] = {DB_I64(t->id)};
	struct db_rows *r = NULL;
	hf_err err = db_query(db, "SELECT status FROM outbox WHERE id = ? FOR UPDATE", v, 1, &r);
	if (err)
		return err;
	if (!db_rows_next(r)) {
		db_rows_free(r);
		say(t->c, "No such outbox message.");
		return HF_ENOTFOUND;
	}
	hf_strlcpy(t->before, db_rows_str(r, 0), sizeof(t->before));
	db_rows_free(r);
	if (strcmp(t->before, t->status) == 0)
		return HF_OK; /* a repeated report (the gateway retried): nothing changes */
	bool is_final = strcmp(t->before, "failed") == 0 || strcmp(t->before, "delivered") == 0;
	bool forward = strcmp(t->status, "failed") == 0 ? !is_final
						       : status_rank(t->status) > status_rank(t->before) && !is_final;
	if (!forward) {
		say(t->c, "The message is already %s: it cannot become %s.", t->before, t->status);
		return HF_ECONFLICT;
	}
	struct db_val w[] = {db_str(t->status), db_str(t->status), DB_I64(t->id)};
	err = db_exec(db,
		      "UPDATE outbox SET status = ?, updated_at = UTC_TIMESTAMP(3), delivered_at = IF(? = 'delivered',"
		      " UTC_TIMESTAMP(3), delivered_at) WHERE id = ?",
		      w, 3, NULL);
	t->changed = err == HF_OK;
	return err;
}

hf_err notices_outbox_report(struct svc_call *c, const char *id, json_t *body, json_t **out)
{
	static const char *const allowed[] = {"status", "detail", NULL};
	static const char *const reports[] = {"sent", "delivered", "failed", NULL};
	hf_json_only_fields(body, allowed, "", c->fe);
	struct report_tx t = {.c = c};
	const char *detail = NULL;
	(void)hf_json_get_enum(body, "", "status", true, reports, c->fe, &t.status);
	(void)hf_json_get_str(body, "", "detail", false, 0, 200, c->fe, &detail);
	if (hf_ferrs_any(c->fe))
		return HF_EINVAL;
	if (hf_parse_i64(id, 1, INT64_MAX, &t.id)) {
		say(c, "No such outbox message.");
		return HF_ENOTFOUND;
	}
	hf_err err = db_tx(c->db, report_body, &t);
	if (err)
		return err;
	/* detail is the gateway's or operator's words (it may quote a number): never logged. */
	if (t.changed && strcmp(t.status, "failed") == 0)
		hf_log(HF_LOG_INFO, "core.notices", "msg=\"sms failed\" outbox=%lld was=%s", (long long)t.id, t.before);
	*out = json_pack("{s:s, s:s, s:b}", "id", id, "status", t.changed ? t.status : t.before, "changed", t.changed);
	return HF_OK;
}
