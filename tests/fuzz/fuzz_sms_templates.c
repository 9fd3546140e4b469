/* fuzz_sms_templates.c - libFuzzer target: SMS template files (core/sms_templates.c) loaded, looked up,
 * measured and rendered.
 *
 * Translators and operators edit menus/sms/<language>.ini; a mistake must stop the service with
 * "file:line: reason", never crash it, and never let a text through that does not say what the file says or
 * does not fit the one SMS the loader promises. The input is split at 0xFF bytes into en.ini, sw.ini and
 * so.ini (the third gets the rest, 0xFF included; a file is written only when its part exists), written to
 * a private folder and loaded the way core loads menus/sms. Checked:
 * - a refusal names a file of the folder and a line in it ("DIR/xx.ini:N: reason", 1 <= N <= its lines);
 * - an accepted set has every template the service sends in en.ini, and each file's templates are exactly
 *   its "name = text" lines, with exactly that text (nothing dropped, cut or added);
 * - every template, rendered with the longest values the loader assumes, has no placeholder left and fits
 *   one SMS in the coding smst_measure picks (160 GSM-7 septets or 70 UCS-2 units);
 * - rendering with arbitrary values (taken from the input), with none, and lookups with fallback for a
 *   language without a file, never crash; a missing value renders as "-".
 */
#include "hf_base.h"

#include "../../core/sms_templates.c"

#include "hf_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(expr) HF_ASSERT(expr)
#define NFILES 3

static const char *const FILES[NFILES] = {"en.ini", "sw.ini", "so.ini"};
static char g_dir[64];
static char g_path[NFILES][96];

static void cleanup(void)
{
	for (size_t i = 0; i < NFILES; i++)
		unlink(g_path[i]);
	rmdir(g_dir);
}

static void setup(void)
{
	if (g_dir[0])
		return;
	hf_log_set_filter("fuzz.silent");
	snprintf(g_dir, sizeof(g_dir), "/tmp/hf_fuzz_sms_XXXXXX");
	HF_ASSERT(mkdtemp(g_dir) != NULL);
	for (size_t i = 0; i < NFILES; i++)
		snprintf(g_path[i], sizeof(g_path[i]), "%s/%s", g_dir, FILES[i]);
	atexit(cleanup);
}

struct part {
	const char *p;
	size_t n;
	bool present;
};

/* Lines as an editor counts them: a last line without '\n' counts. */
static size_t line_count(struct part f)
{
	size_t lines = 0;
	for (size_t i = 0; i < f.n; i++)
		lines += f.p[i] == '\n';
	return lines + (f.n && f.p[f.n - 1] != '\n');
}

/* "DIR/xx.ini:N: reason" with xx.ini one of the files written and N within it. */
static void check_refusal(const char *msg, const struct part *parts)
{
	size_t dl = strlen(g_dir);
	FUZZ_CHECK(strncmp(msg, g_dir, dl) == 0 && msg[dl] == '/');
	const char *file = msg + dl + 1;
	size_t which = NFILES;
	for (size_t i = 0; i < NFILES; i++)
		if (parts[i].present && strncmp(file, FILES[i], 6) == 0 && file[6] == ':')
			which = i;
	FUZZ_CHECK(which < NFILES);
	const char *num = file + 7;
	char *end = NULL;
	long line = strtol(num, &end, 10);
	FUZZ_CHECK(end != num && end[0] == ':' && end[1] == ' ' && end[2] != '\0');
	size_t lines = line_count(parts[which]);
	FUZZ_CHECK(line >= 1 && (size_t)line <= (lines ? lines : 1));
}

static bool sp(char c)
{
	return c == ' ' || c == '\t';
}

/* Re-reads an accepted file the simple way: every line that is not blank, a comment or [templates] is
 * "name = text", and the set holds exactly those, with exactly those texts. */
static void check_file_as_loaded(const struct smst *set, size_t lang, struct part f)
{
	size_t lineno = 0, templates = 0;
	for (size_t at = 0; at < f.n;) {
		const char *nl = memchr(f.p + at, '\n', f.n - at);
		size_t end = nl ? (size_t)(nl - f.p) : f.n;
		const char *s = f.p + at;
		size_t n = end - at;
		at = nl ? end + 1 : f.n;
		lineno++;
		if (lineno == 1 && n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
			s += 3;
			n -= 3;
		}
		while (n && (s[n - 1] == '\r' || s[n - 1] == '\n'))
			n--;
		FUZZ_CHECK(!memchr(s, '\0', n));
		size_t k = 0;
		while (k < n && sp(s[k]))
			k++;
		if (k == n || s[k] == ';' || s[k] == '#' || s[0] == '[')
			continue;
		const char *eq = memchr(s, '=', n);
		FUZZ_CHECK(eq != NULL);
		size_t nlen = (size_t)(eq - s);
		while (nlen && sp(s[nlen - 1]))
			nlen--;
		const char *v = eq + 1, *ve = s + n;
		while (v < ve && sp(*v))
			v++;
		while (ve > v && sp(ve[-1]))
			ve--;
		struct smst_entry e;
		bool found = false;
		for (size_t t = 0; smst_entry_at(set, lang, t, &e); t++) {
			if (strlen(e.name) == nlen && memcmp(e.name, s, nlen) == 0) {
				FUZZ_CHECK(!found);
				found = true;
				FUZZ_CHECK(e.line == (int)lineno);
				FUZZ_CHECK(strlen(e.text) == (size_t)(ve - v) && memcmp(e.text, v, (size_t)(ve - v)) == 0);
			}
		}
		FUZZ_CHECK(found);
		templates++;
	}
	struct smst_entry e;
	FUZZ_CHECK(!smst_entry_at(set, lang, templates, &e));
}

/* The longest values of the loader's one-SMS check, for the parameters the template is given. */
static json_t *longest_params(const char *name)
{
	json_t *o = json_object();
	const char *const *ps = smst_params(name);
	for (size_t i = 0; ps[i]; i++) {
		const char *v = smst_longest(ps[i]);
		FUZZ_CHECK(v != NULL);
		json_object_set_new(o, ps[i], json_string(v));
	}
	return o;
}

/* Values from the input: each parameter gets a slice of it (a string when it is UTF-8, else an integer). */
static json_t *arbitrary_params(const char *name, const uint8_t *data, size_t size)
{
	json_t *o = json_object();
	const char *const *ps = smst_params(name);
	size_t at = 0;
	for (size_t i = 0; ps[i]; i++) {
		size_t n = size - at < 97 ? size - at : 97;
		json_t *v = json_stringn((const char *)data + at, n);
		if (!v) {
			int64_t x = 0;
			memcpy(&x, data + at, n < sizeof(x) ? n : sizeof(x));
			v = json_integer(x);
		}
		json_object_set_new(o, ps[i], v);
		at += n / 2;
	}
	json_object_set_new(o, "ref", json_integer(-9223372036854775807LL - 1)); /* extra or overriding: fine */
	return o;
}

static void check_entry(const struct smst_entry *e, const uint8_t *data, size_t size)
{
	FUZZ_CHECK(strlen(e->name) >= 1 && strlen(e->name) <= SMST_NAME_MAX && e->line >= 1);
	FUZZ_CHECK(strlen(e->text) >= 1 && hf_utf8_valid_text(e->text, strlen(e->text)));

	struct hf_buf out;
	hf_buf_init(&out, SMST_RENDER_MAX);
	/* The promise of the loader: with the longest values, one SMS. */
	json_t *params = longest_params(e->name);
	FUZZ_CHECK(smst_render(e->text, params, &out) == HF_OK);
	json_decref(params);
	const char *text = hf_buf_cstr(&out);
	FUZZ_CHECK(!strchr(text, '{') && !strchr(text, '}'));
	struct smst_size m;
	smst_measure(text, &m);
	FUZZ_CHECK(m.units <= m.limit);
	FUZZ_CHECK(m.gsm7 ? (m.limit == SMST_GSM7_LIMIT && m.non_gsm == 0)
			  : (m.limit == SMST_UCS2_LIMIT && m.non_gsm != 0));

	/* Without values: every placeholder becomes "-". */
	hf_buf_reset(&out);
	FUZZ_CHECK(smst_render(e->text, NULL, &out) == HF_OK);
	FUZZ_CHECK(!strchr(hf_buf_cstr(&out), '{') && !strchr(hf_buf_cstr(&out), '}'));

	/* Arbitrary values: no crash; too long for the buffer is an error, never an overrun. */
	hf_buf_reset(&out);
	params = arbitrary_params(e->name, data, size);
	hf_err err = smst_render(e->text, params, &out);
	FUZZ_CHECK(err == HF_OK || err == HF_ETOOBIG);
	FUZZ_CHECK(out.len <= SMST_RENDER_MAX);
	if (out.data) {
		smst_measure(hf_buf_cstr(&out), &m);
		FUZZ_CHECK(m.limit == (m.gsm7 ? SMST_GSM7_LIMIT : SMST_UCS2_LIMIT));
	}
	json_decref(params);
	hf_buf_release(&out);
}

static void check_set(const struct smst *set, const struct part *parts, const uint8_t *data, size_t size)
{
	FUZZ_CHECK(smst_nlangs(set) >= 1 && strcmp(smst_lang_at(set, 0), "en") == 0);
	for (size_t i = 0; smst_required_at(i); i++) {
		const char *used = NULL;
		FUZZ_CHECK(smst_lookup(set, "en", smst_required_at(i), &used) != NULL && strcmp(used, "en") == 0);
	}
	size_t files = 0;
	for (size_t i = 0; i < NFILES; i++)
		files += parts[i].present;
	FUZZ_CHECK(smst_nlangs(set) == files);
	for (size_t l = 0; l < smst_nlangs(set); l++) {
		const char *code = smst_lang_at(set, l);
		size_t which = NFILES;
		for (size_t i = 0; i < NFILES; i++)
			if (strncmp(FILES[i], code, 2) == 0 && FILES[i][2] == '.')
				which = i;
		FUZZ_CHECK(which < NFILES && parts[which].present);
		check_file_as_loaded(set, l, parts[which]);
		struct smst_entry e;
		for (size_t k = 0; smst_entry_at(set, l, k, &e); k++) {
			FUZZ_CHECK(strcmp(e.lang, code) == 0);
			check_entry(&e, data, size);
			/* Every language has exactly en.ini's templates. */
			FUZZ_CHECK(smst_lookup(set, "en", e.name, NULL) != NULL);
			const char *used = NULL;
			FUZZ_CHECK(smst_lookup(set, code, e.name, &used) == e.text && strcmp(used, code) == 0);
			/* A language without a file: Swahili, else English. */
			const char *t = smst_lookup(set, "luo", e.name, &used);
			const char *sw = smst_lookup(set, "sw", e.name, NULL);
			FUZZ_CHECK(t != NULL && strcmp(used, parts[1].present ? "sw" : "en") == 0);
			FUZZ_CHECK(!parts[1].present || t == sw);
		}
	}
	FUZZ_CHECK(smst_lookup(set, "en", "no_such_template_anywhere", NULL) == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup();
	struct part parts[NFILES] = {{(const char *)data, size, true}, {NULL, 0, false}, {NULL, 0, false}};
	for (size_t i = 0; i + 1 < NFILES; i++) {
		const char *sep = memchr(parts[i].p, 0xFF, parts[i].n);
		if (!sep)
			break;
		size_t head = (size_t)(sep - parts[i].p);
		parts[i + 1] = (struct part){sep + 1, parts[i].n - head - 1, true};
		parts[i].n = head;
	}
	for (size_t i = 0; i < NFILES; i++) {
		unlink(g_path[i]);
		if (!parts[i].present)
			continue;
		FILE *f = fopen(g_path[i], "wb");
		HF_ASSERT(f != NULL);
		HF_ASSERT(parts[i].n == 0 || fwrite(parts[i].p, 1, parts[i].n, f) == parts[i].n);
		HF_ASSERT(fclose(f) == 0);
	}

	/* smst_measure takes any bytes: never a read past the terminator. */
	char *raw = hf_xstrndup((const char *)data, size);
	struct smst_size m;
	smst_measure(raw, &m);
	FUZZ_CHECK(m.limit == (m.gsm7 ? SMST_GSM7_LIMIT : SMST_UCS2_LIMIT));
	free(raw);

	struct hf_buf err;
	hf_buf_init(&err, 2048);
	struct smst *set = NULL;
	hf_err e = smst_load(g_dir, &set, &err);
	if (e) {
		FUZZ_CHECK(set == NULL && e == HF_EINVAL);
		check_refusal(hf_buf_cstr(&err), parts);
	} else {
		FUZZ_CHECK(set != NULL);
		check_set(set, parts, data, size);
	}
	smst_free(set);
	hf_buf_release(&err);
	return 0;
}
