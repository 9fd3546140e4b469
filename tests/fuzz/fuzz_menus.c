/* fuzz_menus.c - libFuzzer target: a USSD menu folder (gateway/menu.c) loaded, checked, then driven.
 *
 * A menu folder is edited by programme staff and translators and read when the gateway starts; a mistake
 * in it must stop the gateway with "file:line: reason", never crash it, and a folder that is accepted must
 * keep every promise the checker makes while sessions run through it. The input is one blob holding the
 * folder's files: what comes before the first marker line is menu.ini, and each line "%% NAME" (NAME a
 * file name such as en.ini) starts the next file. The files are written into a private folder and loaded
 * the way the gateway does. Checked:
 * - a refusal names the folder ("DIR/...: reason") and is HF_EINVAL, HF_EIO or HF_ETOOBIG;
 * - in an accepted folder, sessions from both start screens in every language, explored breadth-first
 *   (every option, a valid input per rule, every outcome of every action, 98 on every page), only ever
 *   produce pages that fit one USSD screen, action requests within bounds, and no typed PIN or code left
 *   in the session once its action answered;
 * - every text key renders as a message, and keyword recognition on the input's own bytes never crashes.
 */
#include "hf_base.h"

#include "../../gateway/menu.c"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(expr) HF_ASSERT(expr)
#define FUZZ_FILES_MAX 6
#define FUZZ_WAYS_MAX 400 /* session states explored per start screen and language */

static char g_dir[64];
static char g_names[FUZZ_FILES_MAX][32];
static size_t g_n_names;

static void remove_files(void)
{
	for (size_t i = 0; i < g_n_names; i++) {
		char path[320];
		snprintf(path, sizeof(path), "%s/%s", g_dir, g_names[i]);
		unlink(path);
	}
	g_n_names = 0;
}

static void cleanup(void)
{
	remove_files();
	rmdir(g_dir);
}

static void setup(void)
{
	if (g_dir[0])
		return;
	snprintf(g_dir, sizeof(g_dir), "/tmp/hf_fuzz_menus_XXXXXX");
	HF_ASSERT(mkdtemp(g_dir) != NULL);
	atexit(cleanup);
}

static bool file_name_ok(const char *s, size_t n)
{
	if (n < 5 || n > 20 || memcmp(s + n - 4, ".ini", 4) != 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '.'))
			return false;
	return true;
}

static void write_file(const char *name, size_t name_len, const uint8_t *p, size_t n)
{
	if (g_n_names == FUZZ_FILES_MAX)
		return;
	for (size_t i = 0; i < g_n_names; i++)
		if (strlen(g_names[i]) == name_len && memcmp(g_names[i], name, name_len) == 0)
			return; /* the first of two files with one name wins */
	memcpy(g_names[g_n_names], name, name_len);
	g_names[g_n_names][name_len] = '\0';
	char path[320];
	snprintf(path, sizeof(path), "%s/%s", g_dir, g_names[g_n_names]);
	g_n_names++;
	FILE *f = fopen(path, "wb");
	HF_ASSERT(f != NULL);
	HF_ASSERT(n == 0 || fwrite(p, 1, n, f) == n);
	HF_ASSERT(fclose(f) == 0);
}

/* Splits the blob at "%% NAME" lines into files. */
static void write_folder(const uint8_t *data, size_t size)
{
	remove_files();
	const char *name = "menu.ini";
	size_t name_len = 8, start = 0;
	for (size_t i = 0; i <= size;) {
		bool at_line = i == 0 || data[i - 1] == '\n';
		if (i == size || (at_line && size - i > 3 && data[i] == '%' && data[i + 1] == '%' && data[i + 2] == ' ')) {
			write_file(name, name_len, data + start, i - start);
			if (i == size)
				break;
			size_t e = i + 3;
			while (e < size && data[e] != '\n')
				e++;
			name = (const char *)data + i + 3;
			name_len = e - (i + 3);
			if (!file_name_ok(name, name_len))
				name = "junk.txt", name_len = 8;
			start = i = e < size ? e + 1 : e;
			continue;
		}
		i++;
	}
}

/* A valid input for the input screen shown in s (the same values the unit tests use). */
static const char *sample_input(const struct menu *m, const struct menu_session *s)
{
	static char ref[10], digits[24], text[MENU_TEXTRULE_MAX * 2];
	const struct screen *sc = &m->screens[s->screen];
	switch (sc->rule) {
	case R_PIN:
		return "4821";
	case R_DIGITS:
		memset(digits, '7', sc->rmax);
		digits[sc->rmax] = '\0';
		return digits;
	case R_REF:
		memcpy(ref, "20451873", 8);
		ref[8] = (char)hf_check_compute(HF_CHECK_DAMM, ref, 8);
		ref[9] = '\0';
		return ref;
	case R_PHONE:
		return "0722000111";
	case R_TEXT:
		memset(text, 'w', sc->rmax);
		text[sc->rmax] = '\0';
		return text;
	case R_SAME:
		return s->fields[sc->same_field];
	}
	return "";
}

struct way {
	struct menu_session s;
	struct menu_out out;
};

static void check_out(const struct menu *m, const struct way *w)
{
	if (w->out.kind == MENU_OUT_ACTION) {
		FUZZ_CHECK(w->out.action != NULL && w->out.n_params <= MENU_FIELDS_MAX && w->out.text[0] == '\0');
		FUZZ_CHECK(w->s.pending < m->n_screens && m->screens[w->s.pending].kind == K_ACTION);
		return;
	}
	size_t n = strnlen(w->out.text, sizeof(w->out.text));
	FUZZ_CHECK(n < sizeof(w->out.text) && n > 0);
	FUZZ_CHECK(hf_gsm_fits_ussd(w->out.text, n));
	FUZZ_CHECK(w->out.screen != NULL);
}

/* Breadth-first through real sessions from one start screen in one language. */
static void drive(const struct menu *m, const char *lang, bool registered)
{
	struct way *q = hf_xcalloc(FUZZ_WAYS_MAX, sizeof(*q));
	size_t head = 0, tail = 1;
	uint8_t secrets = secret_fields(m);
	menu_start(m, &q[0].s, lang, registered);
	FUZZ_CHECK(menu_step(m, &q[0].s, NULL, &q[0].out) == HF_OK);
	check_out(m, &q[0]);
	while (head < tail) {
		struct way w = q[head++];
		if (w.out.kind == MENU_OUT_END)
			continue;
		bool action = w.out.kind == MENU_OUT_ACTION;
		const struct screen *sc = &m->screens[action ? w.s.pending : w.s.screen];
		size_t n_next = 0;
		if (action)
			while (actions[sc->action].outcomes[n_next].name)
				n_next++;
		else
			n_next = (sc->kind == K_MENU ? sc->n_options : sc->kind == K_INPUT) + 3; /* + 98, 0, 00 */
		for (size_t i = 0; i < n_next && tail < FUZZ_WAYS_MAX; i++) {
			struct way *nx = &q[tail];
			*nx = w;
			hf_err rc;
			if (action) {
				const struct outcome_spec *o = &actions[sc->action].outcomes[i];
				/* values at their longest, as the checker measured them */
				static char values[P_COUNT_][MENU_PARAM_MAX + 1];
				struct menu_kv params[MENU_PARAMS_MAX];
				size_t np = 0;
				for (int p = 0; p < P_COUNT_; p++)
					if (o->params & PB(p)) {
						memset(values[p], 'x', param_specs[p].max_chars);
						values[p][param_specs[p].max_chars] = '\0';
						params[np++] = (struct menu_kv){param_specs[p].name, values[p]};
					}
				rc = menu_action_result(m, &nx->s, o->name, params, np, &nx->out);
				FUZZ_CHECK(rc == HF_OK);
				FUZZ_CHECK(nx->out.kind == MENU_OUT_ACTION || !(nx->s.have & secrets));
			} else {
				char num[8];
				const char *in;
				size_t extra = n_next - 3;
				if (i == extra)
					in = "98";
				else if (i == extra + 1)
					in = "0";
				else if (i == extra + 2)
					in = "00";
				else if (sc->kind == K_MENU)
					snprintf(num, sizeof(num), "%u", sc->options[i].number), in = num;
				else
					in = sample_input(m, &w.s);
				rc = menu_step(m, &nx->s, in, &nx->out);
				FUZZ_CHECK(rc == HF_OK);
			}
			check_out(m, nx);
			tail++;
		}
	}
	free(q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup();
	write_folder(data, size);
	struct hf_buf err;
	hf_buf_init(&err, 2048);
	struct menu *m = NULL;
	hf_err e = menu_load(g_dir, &m, &err);
	if (e) {
		const char *msg = hf_buf_cstr(&err);
		FUZZ_CHECK(m == NULL && (e == HF_EINVAL || e == HF_EIO || e == HF_ETOOBIG));
		FUZZ_CHECK(strncmp(msg, g_dir, strlen(g_dir)) == 0 && strlen(msg) > strlen(g_dir) + 2);
	} else {
		FUZZ_CHECK(m != NULL && m->n_langs >= 1 && m->n_screens >= 1);
		for (size_t li = 0; li < m->n_langs; li++) {
			drive(m, m->langs[li].code, true);
			drive(m, m->langs[li].code, false);
			struct hf_buf out;
			hf_buf_init(&out, 4096);
			for (size_t k = 0; k < m->n_keys; k++) {
				hf_buf_reset(&out);
				FUZZ_CHECK(menu_render_message(m, m->langs[li].code, m->keys[k].full, NULL, 0, &out) == HF_OK);
			}
			hf_buf_release(&out);
		}
		/* keywords and language names on the input's own bytes */
		char text[256];
		size_t n = size < sizeof(text) - 1 ? size : sizeof(text) - 1;
		memcpy(text, data, n);
		text[n] = '\0';
		enum menu_kw kw;
		const char *rest, *lang;
		if (menu_keyword(m, text, &kw, &rest, &lang))
			FUZZ_CHECK(kw != MENU_KW_NONE && rest >= text && rest <= text + n && menu_has_language(m, lang));
		const char *code = menu_language_find(m, text);
		FUZZ_CHECK(code == NULL || menu_has_language(m, code));
	}
	menu_free(m);
	hf_buf_release(&err);
	return 0;
}
