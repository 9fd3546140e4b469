/* menu.c - the USSD menu engine: loads and checks menus/ussd/, renders screens, runs sessions.
 *
 * Why menus are data: the texts a 70-year-old reads on a basic phone are fixed by programme staff and
 * translators, in three or more languages, more often than the code changes, and a screen one character
 * too long is cut off by the network without anyone noticing. So the texts live in INI files and
 * menu_load refuses a folder in which any screen could overflow, any text is missing in a language, or
 * any screen is unreachable or a dead end; the gateway does not start with a broken folder. The rules are
 * in docs/menus.md; this file is the one place they are enforced.
 *
 * How it is built:
 * - Files are read whole (capped at MENU_FILE_MAX) into buffers the loaded menu owns; a small INI reader
 *   (no inline comments in texts, no indented lines, file:line on every refusal) cuts them into sections
 *   and entries in place, so texts point into those buffers and nothing is copied.
 * - The structure becomes screens with resolved indices; each text has a key ("screens.home.1") and every
 *   language holds one text per key.
 * - The checks that need the whole picture walk the screen graph the way the engine moves through it,
 *   with the state that decides what a screen may show (fields typed so far, the last action's outcome,
 *   whether the PIN was checked and which screen waits behind it): a placeholder must have a value on
 *   every way to its screen, an action must have its inputs, and every screen must be reached.
 * - Every screen of every language is rendered by the same paginator the sessions use, with the longest
 *   value of each placeholder: if it needs to cut a text, the folder is refused.
 * Sessions are fixed-size structs: the engine never allocates per session or per turn.
 */
#include "hf_base.h"
#include "menu.h"

#include "hf_checkdigit.h"
#include "hf_gsm.h"
#include "hf_json.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MENU_FILE_MAX (256u * 1024) /* one INI file */
#define MENU_LINE_MAX 1024	    /* one line of it */
#define MENU_SECTIONS_MAX 200	    /* sections in one file */
#define MENU_ENTRIES_MAX 64	    /* keys in one section of menu.ini */
#define MENU_TEXTS_MAX 4096	    /* keys in one section of a language file */
#define MENU_SCREENS_MAX 128
#define MENU_OPTIONS_MAX 20	    /* options of one menu screen */
#define MENU_OPTION_SETS_MAX 2	    /* name=value pairs one option sets */
#define MENU_LANGS_MAX 8
#define MENU_CONSTANTS_MAX 16
#define MENU_WORDS_MAX 4	    /* keywords per meaning and language; aliases per language */
#define MENU_WORD_MAX 20	    /* bytes of one keyword or alias */
#define MENU_CONSTANT_MAX 64	    /* characters of one [values] value */
#define MENU_LABEL_MAX 40	    /* characters of one option label or navigation label */
#define MENU_TEXTRULE_MAX 160	    /* the largest text:N rule */
#define MENU_PAGES_MAX 40	    /* pages of one screen (every option alone on one, and a long text) */
#define MENU_STATES_MAX 50000	    /* states the checker's walk may visit */
#define MENU_ERRMSG_MAX 400

#define TARGET_RESUME 0xFFFE /* "@resume": the screen that asked for the PIN */

/* ---- what the engine knows: actions, their outcomes and results ----------------------------------- */

/* Result parameters actions return, with the longest value the checker fills in to measure screens. A
 * longer value at run time is still shown whole: the screen is split over more pages. */
enum {
	P_TRIES_LEFT,
	P_MINUTES,
	P_PROGRAMME,
	P_SINCE,
	P_AMOUNT,
	P_CURRENCY,
	P_DATE,
	P_PAY_POINT,
	P_LIST,
	P_REF,
	P_LANGUAGE,
	P_LANGUAGES,
	P_COUNT_
};
static const struct {
	const char *name;
	size_t max_chars;
} param_specs[P_COUNT_] = {
	{"tries_left", 1}, {"minutes", 3},	 {"programme", 32}, {"since", 10},	{"amount", 14},
	{"currency", 3},   {"date", 10},	 {"pay_point", 24}, {"list", 66},	{"ref", 9},
	{"language", 20},  {"languages", 40},
};
#define PB(p) (1u << (p))

#define ACTION_NEEDS_MAX 2
#define ACTION_OUTCOMES_MAX 8
struct outcome_spec {
	const char *name;
	uint32_t params; /* PB() bits */
};
struct action_spec {
	const char *name;
	const char *needs[ACTION_NEEDS_MAX + 1]; /* fields passed to the gateway, NULL-terminated */
	struct outcome_spec outcomes[ACTION_OUTCOMES_MAX + 1];
};
#define ERROR_BUSY {"error", 0}, {"busy", 0}

/* The contract with the gateway (docs/menus.md has the same table for people). Every action can answer
 * error (core failed) and busy (core or the network is overloaded). */
static const struct action_spec actions[] = {
	{"verify_pin", {"pin"}, {{"ok", 0}, {"wrong", PB(P_TRIES_LEFT)}, {"locked", 0}, {"not_set", 0}, ERROR_BUSY}},
	{"set_pin", {"new_pin"}, {{"ok", 0}, {"already_set", 0}, {"weak", 0}, ERROR_BUSY}},
	{"change_pin",
	 {"pin", "new_pin"},
	 {{"ok", 0}, {"wrong", PB(P_TRIES_LEFT)}, {"locked", 0}, {"weak", 0}, ERROR_BUSY}},
	{"reset_pin_request", {NULL}, {{"ok", 0}, {"too_soon", PB(P_MINUTES)}, {"not_found", 0}, ERROR_BUSY}},
	{"reset_pin_confirm", {"code", "new_pin"}, {{"ok", 0}, {"wrong", 0}, {"expired", 0}, {"weak", 0}, ERROR_BUSY}},
	{"enrolment_status",
	 {NULL},
	 {{"ok", PB(P_PROGRAMME) | PB(P_SINCE)},
	  {"pending", 0},
	  {"suspended", 0},
	  {"exited", 0},
	  {"not_found", 0},
	  ERROR_BUSY}},
	{"next_payment",
	 {NULL},
	 {{"ok", PB(P_AMOUNT) | PB(P_CURRENCY) | PB(P_DATE) | PB(P_PAY_POINT)}, {"none", 0}, {"on_hold", 0}, ERROR_BUSY}},
	{"last_payments", {NULL}, {{"ok", PB(P_LIST) | PB(P_CURRENCY)}, {"none", 0}, ERROR_BUSY}},
	{"lodge_grievance", {"category", "description"}, {{"ok", PB(P_REF)}, {"duplicate", PB(P_REF)}, ERROR_BUSY}},
	{"grievance_status",
	 {"case_ref"},
	 {{"open", PB(P_REF) | PB(P_DATE)},
	  {"resolved", PB(P_REF) | PB(P_DATE)},
	  {"closed", PB(P_REF) | PB(P_DATE)},
	  {"not_found", 0},
	  ERROR_BUSY}},
	{"set_language", {"lang"}, {{"ok", 0}, ERROR_BUSY}},
	{"report_phone_change", {"phone"}, {{"ok", PB(P_REF)}, {"same", 0}, ERROR_BUSY}},
};
enum { A_VERIFY_PIN = 0, A_SET_LANGUAGE = 10 };

static int action_outcome(const struct action_spec *a, const char *name)
{
	for (size_t i = 0; a->outcomes[i].name; i++)
		if (strcmp(a->outcomes[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* ---- text keys that are not screens' ----------------------------------------------------------------- */

enum text_use {
	USE_SCREEN,  /* a screen's text (menu title, input prompt, info text) */
	USE_RETRY,   /* an input screen's text after an invalid input */
	USE_OPTION,  /* an option label: one line */
	USE_LABEL,   /* a navigation label: one line, no placeholders */
	USE_PREFIX,  /* "not a choice", shown above a menu */
	USE_USSD,    /* a whole USSD screen the gateway shows */
	USE_SMS,     /* one SMS */
	USE_NAME,    /* the language's own name: one line */
	USE_ALIASES, /* other names of the language: a comma list, may be empty */
	USE_KEYWORDS /* SMS keywords of one meaning: a comma list of A-Z words */
};

static const struct fixed_key {
	const char *key;
	enum text_use use;
	uint32_t params;
	enum menu_kw kw;
} fixed_keys[] = {
	{"language.name", USE_NAME, 0, MENU_KW_NONE},
	{"language.aliases", USE_ALIASES, 0, MENU_KW_NONE},
	{"ussd.more", USE_LABEL, 0, MENU_KW_NONE},
	{"ussd.back", USE_LABEL, 0, MENU_KW_NONE},
	{"ussd.home", USE_LABEL, 0, MENU_KW_NONE},
	{"ussd.invalid_choice", USE_PREFIX, 0, MENU_KW_NONE},
	{"ussd.too_many_tries", USE_USSD, 0, MENU_KW_NONE},
	{"ussd.busy", USE_USSD, 0, MENU_KW_NONE},
	{"ussd.error", USE_USSD, 0, MENU_KW_NONE},
	{"sms.kw_help", USE_KEYWORDS, 0, MENU_KW_HELP},
	{"sms.kw_status", USE_KEYWORDS, 0, MENU_KW_STATUS},
	{"sms.kw_stop", USE_KEYWORDS, 0, MENU_KW_STOP},
	{"sms.kw_start", USE_KEYWORDS, 0, MENU_KW_START},
	{"sms.kw_lang", USE_KEYWORDS, 0, MENU_KW_LANG},
	{"sms.kw_grievance", USE_KEYWORDS, 0, MENU_KW_GRIEVANCE},
	{"sms.help", USE_SMS, 0, MENU_KW_NONE},
	{"sms.status_ok", USE_SMS, PB(P_PROGRAMME) | PB(P_SINCE), MENU_KW_NONE},
	{"sms.status_pending", USE_SMS, 0, MENU_KW_NONE},
	{"sms.status_suspended", USE_SMS, 0, MENU_KW_NONE},
	{"sms.status_exited", USE_SMS, 0, MENU_KW_NONE},
	{"sms.status_unknown", USE_SMS, 0, MENU_KW_NONE},
	{"sms.stop", USE_SMS, 0, MENU_KW_NONE},
	{"sms.start", USE_SMS, 0, MENU_KW_NONE},
	{"sms.lang", USE_SMS, PB(P_LANGUAGE), MENU_KW_NONE},
	{"sms.lang_unknown", USE_SMS, PB(P_LANGUAGES), MENU_KW_NONE},
	{"sms.grievance", USE_SMS, PB(P_REF), MENU_KW_NONE},
	{"sms.grievance_empty", USE_SMS, 0, MENU_KW_NONE},
	{"sms.unknown", USE_SMS, 0, MENU_KW_NONE},
	{"sms.busy", USE_SMS, 0, MENU_KW_NONE},
	{"sms.error", USE_SMS, 0, MENU_KW_NONE},
};
enum { FK_NAME, FK_ALIASES, FK_MORE, FK_BACK, FK_HOME, FK_INVALID, FK_TOO_MANY, FK_BUSY, FK_ERROR, FK_KW_FIRST };

static const char *const lang_sections[] = {"language", "ussd", "screens", "sms"};

/* ---- the loaded menu --------------------------------------------------------------------------------- */

enum kind { K_MENU, K_INPUT, K_INFO, K_ACTION };
static const char *const kind_names[] = {"menu", "input", "info", "action"};
enum rule { R_DIGITS, R_PIN, R_REF, R_PHONE, R_TEXT, R_SAME };

struct option {
	uint8_t number;
	uint16_t target;
	int line;
	uint8_t n_sets;
	uint8_t set_field[MENU_OPTION_SETS_MAX];
	const char *set_value[MENU_OPTION_SETS_MAX]; /* borrowed: structure file buffer */
	size_t key;
};

struct screen {
	const char *id; /* borrowed: structure file buffer */
	int line;
	enum kind kind;
	bool pin_required;
	bool end;    /* info: END after the text */
	bool secret; /* input: the value is a PIN or a code */
	size_t n_options;
	struct option options[MENU_OPTIONS_MAX];
	enum rule rule;
	unsigned rmin, rmax; /* digits: length; text: max characters */
	int same_field;	     /* same: the field to repeat */
	int field;	     /* input: where the value goes (-1: nowhere, for same:) */
	uint16_t next;
	int action; /* index in actions[] */
	int action_line;
	uint16_t outcome[ACTION_OUTCOMES_MAX];
	size_t key_text, key_retry;
};

struct field {
	const char *name; /* borrowed */
	bool secret;
	bool is_lang; /* "lang": values must be shipped languages */
	size_t max_chars;
	int line;
};

struct constant {
	const char *name, *value; /* borrowed */
	int line;
};

struct key {
	char *full; /* owned: "screens.home.1" */
	enum text_use use;
	uint32_t params; /* fixed keys: allowed result parameters */
	uint16_t screen; /* screen keys: the screen, else MENU_NONE */
	int sline;	 /* the line of menu.ini that makes this key needed (0 for fixed keys) */
};

struct kw_word {
	char word[MENU_WORD_MAX + 1]; /* folded to upper case */
	enum menu_kw kw;
	uint8_t lang;
};

struct lang {
	char code[MENU_LANG_MAX + 1];
	char *path; /* owned */
	char *buf;  /* owned: the file, cut into texts in place */
	const char **text; /* by key; borrowed from buf */
	int *line;	   /* by key */
	size_t n_aliases;
	char aliases[MENU_WORDS_MAX + 1][MENU_WORD_MAX * 2 + 1]; /* folded; [0] is the name's */
};

struct menu {
	uint32_t serial;
	char *path;	  /* owned: DIR/menu.ini */
	char *buf;	  /* owned: menu.ini */
	size_t n_langs;
	struct lang langs[MENU_LANGS_MAX];
	size_t default_lang;
	uint16_t start[2]; /* [0] unregistered, [1] registered */
	uint16_t pin_screen;
	uint16_t on_error, on_busy;
	unsigned max_retries;
	size_t n_screens;
	struct screen *screens; /* owned */
	size_t n_fields;
	struct field fields[MENU_FIELDS_MAX];
	size_t n_constants;
	struct constant constants[MENU_CONSTANTS_MAX];
	size_t n_keys;
	struct key *keys;  /* owned */
	size_t *key_order; /* owned: keys sorted by full name */
	size_t n_words;
	struct kw_word *words; /* owned */
};

/* ---- small helpers ------------------------------------------------------------------------------------ */

static bool name_ok(const char *s, size_t max)
{
	size_t n = 0;
	for (; s[n]; n++)
		if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') || s[n] == '_'))
			return false;
	return n >= 1 && n <= max;
}

static bool lang_code_ok(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++)
		if (s[n] < 'a' || s[n] > 'z')
			return false;
	return n >= 2 && n <= MENU_LANG_MAX;
}

static bool all_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static size_t utf8_chars(const char *s, size_t n)
{
	size_t c = 0;
	for (size_t i = 0; i < n; i++)
		c += ((unsigned char)s[i] & 0xC0) != 0x80;
	return c;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

static char *trim(char *s)
{
	while (is_space(*s))
		s++;
	size_t n = strlen(s);
	while (n > 0 && is_space(s[n - 1]))
		s[--n] = '\0';
	return s;
}

/* Wipes memory that held a PIN or a code; the compiler may not drop it (glibc's explicit_bzero). */
static void wipe(void *p, size_t n)
{
	explicit_bzero(p, n);
}

/* Folds one code point for matching words typed by people: ASCII to upper case, the accented Latin
 * letters of the shipped languages to their base letter (É, é, è, ê -> E; ç -> C). 0 when the code
 * point has no place in a word. */
static char fold_cp(uint32_t cp)
{
	if (cp >= 'a' && cp <= 'z')
		return (char)(cp - 'a' + 'A');
	if ((cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9'))
		return (char)cp;
	if (cp == '-' || cp == '_' || cp == '\'')
		return (char)cp;
	static const struct {
		uint16_t lo, hi;
		char base;
	} latin[] = {
		{0xC0, 0xC5, 'A'}, {0xE0, 0xE5, 'A'}, {0xC7, 0xC7, 'C'}, {0xE7, 0xE7, 'C'}, {0xC8, 0xCB, 'E'},
		{0xE8, 0xEB, 'E'}, {0xCC, 0xCF, 'I'}, {0xEC, 0xEF, 'I'}, {0xD1, 0xD1, 'N'}, {0xF1, 0xF1, 'N'},
		{0xD2, 0xD6, 'O'}, {0xF2, 0xF6, 'O'}, {0xD9, 0xDC, 'U'}, {0xF9, 0xFC, 'U'}, {0x101, 0x101, 'A'},
		{0x100, 0x100, 'A'}, {0x14B, 0x14B, 'N'}, {0x14A, 0x14A, 'N'},
	};
	for (size_t i = 0; i < HF_ARRAY_LEN(latin); i++)
		if (cp >= latin[i].lo && cp <= latin[i].hi)
			return latin[i].base;
	return 0;
}

/* Folds s[0..n) into out (out_size bytes); false when a character cannot be folded or it is too long. */
static bool fold_word(const char *s, size_t n, char *out, size_t out_size)
{
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		size_t k = hf_utf8_decode(s + i, n - i, &cp);
		if (!k)
			return false;
		i += k;
		char c = fold_cp(cp);
		if (!c || o + 1 >= out_size)
			return false;
		out[o++] = c;
	}
	out[o] = '\0';
	return o > 0;
}

/* ---- error reporting --------------------------------------------------------------------------------- */

/* The first error of a load: "path:line: message". Later ones are dropped (they are often consequences). */
struct load_err {
	bool failed;
	hf_err code;
	char msg[MENU_ERRMSG_MAX + 200];
};

HF_PRINTF(4, 5) static bool fail(struct load_err *e, const char *path, int line, const char *fmt, ...)
{
	if (e->failed)
		return false;
	e->failed = true;
	e->code = HF_EINVAL;
	char m[MENU_ERRMSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(m, sizeof(m), fmt, ap);
	va_end(ap);
	if (line > 0)
		snprintf(e->msg, sizeof(e->msg), "%s:%d: %s", path, line, m);
	else
		snprintf(e->msg, sizeof(e->msg), "%s: %s", path, m);
	return false;
}

/* The file name without its folder, for messages that point from one file to another. */
static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

/* ---- reading INI files -------------------------------------------------------------------------------- */

struct ini_entry {
	char *key, *value; /* borrowed: the file buffer, cut in place */
	int line;
};

struct ini_section {
	char *name;
	int line;
	size_t first, n; /* entries[first .. first + n) */
};

struct ini {
	size_t n_sections, n_entries;
	struct ini_section *sections; /* owned */
	struct ini_entry *entries;    /* owned */
};

static void ini_release(struct ini *ini)
{
	free(ini->sections);
	free(ini->entries);
	memset(ini, 0, sizeof(*ini));
}

/* Reads path whole into *out (owned, NUL-terminated); refuses a file over MENU_FILE_MAX or with a NUL. */
static hf_err read_file(const char *path, char **out, struct load_err *e)
{
	hf_err rc = HF_OK;
	char *buf = NULL;
	FILE *f = fopen(path, "rb");
	if (!f) {
		fail(e, path, 0, "cannot open: %s", strerror(errno));
		e->code = HF_EIO;
		return HF_EIO;
	}
	buf = hf_xmalloc(MENU_FILE_MAX + 2);
	size_t n = fread(buf, 1, MENU_FILE_MAX + 1, f);
	if (ferror(f)) {
		fail(e, path, 0, "cannot read: %s", strerror(errno));
		e->code = rc = HF_EIO;
		goto out_close;
	}
	if (n > MENU_FILE_MAX) {
		fail(e, path, 0, "larger than %u KiB", MENU_FILE_MAX / 1024);
		e->code = rc = HF_ETOOBIG;
		goto out_close;
	}
	if (memchr(buf, '\0', n)) {
		int line = 1;
		for (const char *p = buf; *p; p++)
			line += *p == '\n';
		fail(e, path, line, "contains a NUL byte (not a text file)");
		rc = HF_EINVAL;
		goto out_close;
	}
	buf[n] = '\0';
	*out = buf;
	buf = NULL;
out_close:
	fclose(f);
	free(buf);
	return rc;
}

/* Cuts buf into sections and entries, in place. Comments are lines starting with ';' or '#'; with
 * inline_comments (menu.ini, whose values are names and numbers) " ;" also starts one. An indented line is
 * refused: other INI readers take it as the continuation of the line before. */
static bool ini_parse(char *buf, const char *path, bool inline_comments, size_t max_entries, struct ini *ini,
		      struct load_err *e)
{
	size_t cap_s = 0, cap_e = 0;
	int line = 0;
	char *p = buf;
	if ((unsigned char)p[0] == 0xEF && (unsigned char)p[1] == 0xBB && (unsigned char)p[2] == 0xBF)
		p += 3; /* a UTF-8 byte order mark, as some editors write */
	while (*p) {
		line++;
		char *s = p;
		char *nl = strchr(p, '\n');
		if (nl) {
			*nl = '\0';
			p = nl + 1;
		} else {
			p += strlen(p);
		}
		size_t n = strlen(s);
		if (n > MENU_LINE_MAX)
			return fail(e, path, line, "line longer than %d bytes", MENU_LINE_MAX);
		if (n > 0 && s[n - 1] == '\r')
			s[--n] = '\0';
		if (n == 0 || s[0] == ';' || s[0] == '#')
			continue;
		if (is_space(s[0])) {
			if (*trim(s) == '\0')
				continue;
			return fail(e, path, line, "indented line (keys and sections start at the beginning of a line)");
		}
		if (s[0] == '[') {
			char *close = strrchr(s, ']');
			if (!close || *trim(close + 1) != '\0')
				return fail(e, path, line, "a section line is [name]");
			*close = '\0';
			char *name = trim(s + 1);
			if (!*name)
				return fail(e, path, line, "empty section name");
			for (size_t i = 0; i < ini->n_sections; i++)
				if (strcmp(ini->sections[i].name, name) == 0)
					return fail(e, path, line, "section [%s] again (first at line %d)", name,
						    ini->sections[i].line);
			if (ini->n_sections == MENU_SECTIONS_MAX)
				return fail(e, path, line, "more than %d sections", MENU_SECTIONS_MAX);
			if (ini->n_sections == cap_s) {
				cap_s = cap_s ? cap_s * 2 : 16;
				ini->sections = hf_xrealloc(ini->sections, cap_s * sizeof(*ini->sections));
			}
			ini->sections[ini->n_sections++] = (struct ini_section){name, line, ini->n_entries, 0};
			continue;
		}
		char *eq = strchr(s, '=');
		if (!eq)
			return fail(e, path, line, "expected [section], key = value, or a comment");
		*eq = '\0';
		char *key = trim(s);
		char *value = eq + 1;
		if (inline_comments) {
			for (char *c = value; *c; c++)
				if ((*c == ';' || *c == '#') && (c == value || is_space(c[-1]))) {
					*c = '\0';
					break;
				}
		}
		value = trim(value);
		if (!*key)
			return fail(e, path, line, "a key is missing before '='");
		if (ini->n_sections == 0)
			return fail(e, path, line, "key '%s' before any [section]", key);
		struct ini_section *sec = &ini->sections[ini->n_sections - 1];
		/* Quadratic, so only for the short sections of menu.ini; a language file's duplicates are found
		 * when its texts are put in place (every key there must be a known one). */
		for (size_t i = 0; max_entries <= MENU_ENTRIES_MAX && i < sec->n; i++)
			if (strcmp(ini->entries[sec->first + i].key, key) == 0)
				return fail(e, path, line, "key '%s' again in [%s] (first at line %d)", key, sec->name,
					    ini->entries[sec->first + i].line);
		if (sec->n == max_entries)
			return fail(e, path, line, "more than %zu keys in [%s]", max_entries, sec->name);
		if (ini->n_entries == cap_e) {
			cap_e = cap_e ? cap_e * 2 : 64;
			ini->entries = hf_xrealloc(ini->entries, cap_e * sizeof(*ini->entries));
		}
		ini->entries[ini->n_entries++] = (struct ini_entry){key, value, line};
		sec->n++;
	}
	return true;
}

/* Splits a comma-separated list in place into at most max trimmed items; false on an empty item or too
 * many (the items are still usable up to *n). */
static bool split_list(char *s, char **items, size_t max, size_t *n)
{
	*n = 0;
	if (!*trim(s))
		return true;
	for (;;) {
		char *comma = strchr(s, ',');
		if (comma)
			*comma = '\0';
		char *item = trim(s);
		if (!*item || *n == max)
			return false;
		items[(*n)++] = item;
		if (!comma)
			return true;
		s = comma + 1;
	}
}

/* ---- the structure file (menu.ini) ------------------------------------------------------------------- */

/* Names read from menu.ini that can only be resolved once every screen is known. */
struct screen_refs {
	const char *next;
	int next_line;
	const char *opt_target[MENU_OPTIONS_MAX];
	const char *outcome[ACTION_OUTCOMES_MAX];
	int outcome_line[ACTION_OUTCOMES_MAX];
	const char *same;
	int rule_line;
};

struct load {
	struct menu *m;
	struct load_err *e;
	const char *path; /* menu.ini */
	struct ini ini;
	struct screen_refs *refs; /* by screen */
	const char *start_name[2], *pin_name, *on_error_name, *on_busy_name;
	int start_line[2], pin_line, on_error_line, on_busy_line, languages_line, menu_line;
	/* the walk's findings */
	bool reached[MENU_SCREENS_MAX];
};

static int find_screen(const struct menu *m, const char *id)
{
	for (size_t i = 0; i < m->n_screens; i++)
		if (strcmp(m->screens[i].id, id) == 0)
			return (int)i;
	return -1;
}

static int find_field(const struct menu *m, const char *name)
{
	for (size_t i = 0; i < m->n_fields; i++)
		if (strcmp(m->fields[i].name, name) == 0)
			return (int)i;
	return -1;
}

static int find_lang(const struct menu *m, const char *code)
{
	for (size_t i = 0; i < m->n_langs; i++)
		if (strcmp(m->langs[i].code, code) == 0)
			return (int)i;
	return -1;
}

static int find_param(const char *name)
{
	for (size_t i = 0; i < P_COUNT_; i++)
		if (strcmp(param_specs[i].name, name) == 0)
			return (int)i;
	return -1;
}

static int find_constant(const struct menu *m, const char *name)
{
	for (size_t i = 0; i < m->n_constants; i++)
		if (strcmp(m->constants[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* The field called name, added on first use; -1 (and an error) past MENU_FIELDS_MAX. */
static int use_field(struct load *l, const char *name, int line)
{
	int f = find_field(l->m, name);
	if (f >= 0)
		return f;
	if (!name_ok(name, MENU_NAME_MAX)) {
		fail(l->e, l->path, line, "'%s' is not a field name (a-z, 0-9 and _, at most %d)", name, MENU_NAME_MAX);
		return -1;
	}
	if (find_param(name) >= 0 || find_constant(l->m, name) >= 0) {
		fail(l->e, l->path, line, "field '%s' has the name of a %s", name,
		     find_param(name) >= 0 ? "result parameter" : "[values] entry");
		return -1;
	}
	if (l->m->n_fields == MENU_FIELDS_MAX) {
		fail(l->e, l->path, line, "more than %d different fields", MENU_FIELDS_MAX);
		return -1;
	}
	struct field *fl = &l->m->fields[l->m->n_fields];
	*fl = (struct field){.name = name, .is_lang = strcmp(name, "lang") == 0, .line = line};
	return (int)l->m->n_fields++;
}

static bool parse_bool(const char *v, bool *out)
{
	if (strcmp(v, "yes") == 0 || strcmp(v, "true") == 0) {
		*out = true;
		return true;
	}
	if (strcmp(v, "no") == 0 || strcmp(v, "false") == 0) {
		*out = false;
		return true;
	}
	return false;
}

static bool parse_uint(const char *v, unsigned lo, unsigned hi, unsigned *out)
{
	int64_t x;
	if (!*v || !all_digits(v, strlen(v)) || strlen(v) > 6 || hf_parse_i64(v, lo, hi, &x) != HF_OK)
		return false;
	*out = (unsigned)x;
	return true;
}

static bool parse_menu_section(struct load *l, const struct ini_section *sec)
{
	struct menu *m = l->m;
	bool have_langs = false, have_default = false;
	const char *default_name = NULL;
	int default_line = 0;
	l->menu_line = sec->line;
	for (size_t i = 0; i < sec->n; i++) {
		struct ini_entry *en = &l->ini.entries[sec->first + i];
		const char *k = en->key;
		if (strcmp(k, "languages") == 0) {
			char *items[MENU_LANGS_MAX];
			size_t n;
			if (!split_list(en->value, items, MENU_LANGS_MAX, &n) || n == 0)
				return fail(l->e, l->path, en->line, "languages: 1 to %d codes separated by commas",
					    MENU_LANGS_MAX);
			for (size_t j = 0; j < n; j++) {
				if (!lang_code_ok(items[j]))
					return fail(l->e, l->path, en->line,
						    "'%s' is not a language code (2 to 8 lowercase letters, e.g. sw)",
						    items[j]);
				if (find_lang(m, items[j]) >= 0)
					return fail(l->e, l->path, en->line, "language '%s' twice", items[j]);
				hf_strlcpy(m->langs[m->n_langs++].code, items[j], MENU_LANG_MAX + 1);
			}
			have_langs = true;
			l->languages_line = en->line;
		} else if (strcmp(k, "default_language") == 0) {
			default_name = en->value;
			default_line = en->line;
			have_default = true;
		} else if (strcmp(k, "start_registered") == 0 || strcmp(k, "start_unregistered") == 0) {
			int r = strcmp(k, "start_registered") == 0;
			l->start_name[r] = en->value;
			l->start_line[r] = en->line;
		} else if (strcmp(k, "pin_screen") == 0) {
			l->pin_name = en->value;
			l->pin_line = en->line;
		} else if (strcmp(k, "on_error") == 0) {
			l->on_error_name = en->value;
			l->on_error_line = en->line;
		} else if (strcmp(k, "on_busy") == 0) {
			l->on_busy_name = en->value;
			l->on_busy_line = en->line;
		} else if (strcmp(k, "max_retries") == 0) {
			if (!parse_uint(en->value, 1, 5, &m->max_retries))
				return fail(l->e, l->path, en->line, "max_retries: a number from 1 to 5");
		} else {
			return fail(l->e, l->path, en->line,
				    "unknown key '%s' in [menu] (languages, default_language, start_registered, "
				    "start_unregistered, pin_screen, max_retries, on_error, on_busy)",
				    k);
		}
	}
	if (!have_langs)
		return fail(l->e, l->path, sec->line, "[menu] needs languages = (e.g. sw, en, fr)");
	if (!have_default)
		return fail(l->e, l->path, sec->line, "[menu] needs default_language =");
	int d = find_lang(m, default_name);
	if (d < 0)
		return fail(l->e, l->path, default_line, "default_language '%s' is not in languages", default_name);
	m->default_lang = (size_t)d;
	for (int r = 0; r < 2; r++)
		if (!l->start_name[r])
			return fail(l->e, l->path, sec->line, "[menu] needs %s =",
				    r ? "start_registered" : "start_unregistered");
	return true;
}

static bool parse_values_section(struct load *l, const struct ini_section *sec)
{
	struct menu *m = l->m;
	for (size_t i = 0; i < sec->n; i++) {
		struct ini_entry *en = &l->ini.entries[sec->first + i];
		if (!name_ok(en->key, MENU_NAME_MAX))
			return fail(l->e, l->path, en->line, "'%s' is not a value name (a-z, 0-9 and _)", en->key);
		if (find_param(en->key) >= 0)
			return fail(l->e, l->path, en->line, "'%s' is the name of a result parameter", en->key);
		size_t n = strlen(en->value);
		if (n == 0 || !hf_utf8_valid_text(en->value, n) || utf8_chars(en->value, n) > MENU_CONSTANT_MAX)
			return fail(l->e, l->path, en->line, "'%s': a value is 1 to %d characters of text on one line",
				    en->key, MENU_CONSTANT_MAX);
		if (strchr(en->value, '{') || strchr(en->value, '}'))
			return fail(l->e, l->path, en->line, "'%s': a value may not contain { or }", en->key);
		if (m->n_constants == MENU_CONSTANTS_MAX)
			return fail(l->e, l->path, en->line, "more than %d values", MENU_CONSTANTS_MAX);
		m->constants[m->n_constants++] = (struct constant){en->key, en->value, en->line};
	}
	return true;
}

/* "digits:MIN-MAX", "pin", "ref", "phone", "text:MAX", "same:FIELD". */
static bool parse_rule(struct load *l, struct screen *sc, struct screen_refs *rf, const char *v, int line)
{
	sc->same_field = -1;
	rf->rule_line = line;
	if (strcmp(v, "pin") == 0) {
		sc->rule = R_PIN, sc->rmin = sc->rmax = 4, sc->secret = true;
		return true;
	}
	if (strcmp(v, "ref") == 0) {
		sc->rule = R_REF, sc->rmin = sc->rmax = 9;
		return true;
	}
	if (strcmp(v, "phone") == 0) {
		sc->rule = R_PHONE, sc->rmin = 9, sc->rmax = 16;
		return true;
	}
	if (strncmp(v, "digits:", 7) == 0) {
		char buf[32];
		const char *dash = strchr(v + 7, '-');
		if (!dash || !hf_strlcpy(buf, v + 7, sizeof(buf)))
			return fail(l->e, l->path, line, "rule digits:MIN-MAX (e.g. digits:6-6)");
		buf[dash - (v + 7)] = '\0';
		if (!parse_uint(buf, 0, 99, &sc->rmin) || !parse_uint(dash + 1, 0, 99, &sc->rmax))
			return fail(l->e, l->path, line, "rule digits:MIN-MAX (e.g. digits:6-6)");
		if (sc->rmin < 3 || sc->rmax > 20 || sc->rmin > sc->rmax)
			return fail(l->e, l->path, line,
				    "digits:%u-%u: lengths from 3 to 20 (0, 00 and 98 are navigation)", sc->rmin,
				    sc->rmax);
		sc->rule = R_DIGITS;
		return true;
	}
	if (strncmp(v, "text:", 5) == 0) {
		if (!parse_uint(v + 5, 1, MENU_TEXTRULE_MAX, &sc->rmax))
			return fail(l->e, l->path, line, "rule text:MAX with MAX from 1 to %d characters",
				    MENU_TEXTRULE_MAX);
		sc->rule = R_TEXT, sc->rmin = 1;
		return true;
	}
	if (strncmp(v, "same:", 5) == 0) {
		sc->rule = R_SAME;
		rf->same = v + 5;
		return true;
	}
	return fail(l->e, l->path, line, "unknown rule '%s' (digits:MIN-MAX, pin, ref, phone, text:MAX, same:FIELD)", v);
}

/* "target [name=value ...]" */
static bool parse_option(struct load *l, struct screen *sc, struct screen_refs *rf, struct ini_entry *en)
{
	const char *k = en->key;
	size_t kn = strlen(k);
	if (strcmp(k, "0") == 0 || strcmp(k, "00") == 0 || strcmp(k, "98") == 0)
		return fail(l->e, l->path, en->line, "option %s clashes with navigation (0 back, 00 home, 98 more)", k);
	if (kn > 2 || k[0] == '0')
		return fail(l->e, l->path, en->line, "option numbers are 1 to 99 without a leading zero, not '%s'", k);
	unsigned number = kn == 1 ? (unsigned)(k[0] - '0') : (unsigned)(k[0] - '0') * 10 + (unsigned)(k[1] - '0');
	for (size_t i = 0; i < sc->n_options; i++)
		if (sc->options[i].number == number)
			return fail(l->e, l->path, en->line, "option %u twice", number);
	if (sc->n_options == MENU_OPTIONS_MAX)
		return fail(l->e, l->path, en->line, "more than %d options", MENU_OPTIONS_MAX);
	struct option *o = &sc->options[sc->n_options];
	*o = (struct option){.number = (uint8_t)number, .line = en->line};
	char *tok[1 + MENU_OPTION_SETS_MAX];
	size_t nt = 0;
	for (char *p = en->value; *p;) {
		while (is_space(*p))
			p++;
		if (!*p)
			break;
		if (nt == HF_ARRAY_LEN(tok))
			return fail(l->e, l->path, en->line, "an option is a screen and at most %d name=value",
				    MENU_OPTION_SETS_MAX);
		tok[nt++] = p;
		while (*p && !is_space(*p))
			p++;
		if (*p)
			*p++ = '\0';
	}
	if (nt == 0)
		return fail(l->e, l->path, en->line, "option %u leads nowhere (write the screen it opens)", number);
	rf->opt_target[sc->n_options] = tok[0];
	for (size_t i = 1; i < nt; i++) {
		char *eq = strchr(tok[i], '=');
		if (!eq)
			return fail(l->e, l->path, en->line, "'%s': after the screen, only name=value", tok[i]);
		*eq = '\0';
		const char *val = eq + 1;
		size_t vn = strlen(val);
		bool val_ok = vn >= 1 && vn <= MENU_NAME_MAX;
		for (size_t j = 0; j < vn; j++)
			val_ok = val_ok && ((val[j] >= 'a' && val[j] <= 'z') || (val[j] >= 'A' && val[j] <= 'Z') ||
					    (val[j] >= '0' && val[j] <= '9') || val[j] == '_' || val[j] == '-');
		if (!val_ok)
			return fail(l->e, l->path, en->line, "'%s=%s': a value is 1 to %d letters, digits, _ or -",
				    tok[i], val, MENU_NAME_MAX);
		int f = use_field(l, tok[i], en->line);
		if (f < 0)
			return false;
		for (size_t j = 0; j < o->n_sets; j++)
			if (o->set_field[j] == f)
				return fail(l->e, l->path, en->line, "'%s' set twice", tok[i]);
		o->set_field[o->n_sets] = (uint8_t)f;
		o->set_value[o->n_sets++] = val;
		struct field *fl = &l->m->fields[f];
		if (vn > fl->max_chars)
			fl->max_chars = vn;
	}
	sc->n_options++;
	return true;
}

static bool parse_screen_section(struct load *l, const struct ini_section *sec, const char *id)
{
	struct menu *m = l->m;
	if (!name_ok(id, MENU_NAME_MAX))
		return fail(l->e, l->path, sec->line, "'%s' is not a screen id (a-z, 0-9 and _, at most %d)", id,
			    MENU_NAME_MAX);
	int dup = find_screen(m, id);
	if (dup >= 0)
		return fail(l->e, l->path, sec->line, "screen '%s' again (first at line %d)", id, m->screens[dup].line);
	if (m->n_screens == MENU_SCREENS_MAX)
		return fail(l->e, l->path, sec->line, "more than %d screens", MENU_SCREENS_MAX);
	size_t idx = m->n_screens++;
	struct screen *sc = &m->screens[idx];
	struct screen_refs *rf = &l->refs[idx];
	*sc = (struct screen){.id = id, .line = sec->line, .field = -1, .same_field = -1, .action = -1,
			      .next = MENU_NONE, .key_text = SIZE_MAX, .key_retry = SIZE_MAX};
	for (size_t i = 0; i < ACTION_OUTCOMES_MAX; i++)
		sc->outcome[i] = MENU_NONE;
	const struct ini_entry *kind = NULL;
	for (size_t i = 0; i < sec->n; i++)
		if (strcmp(l->ini.entries[sec->first + i].key, "kind") == 0)
			kind = &l->ini.entries[sec->first + i];
	if (!kind)
		return fail(l->e, l->path, sec->line, "screen '%s' has no kind (menu, input, info or action)", id);
	size_t k = 0;
	while (k < HF_ARRAY_LEN(kind_names) && strcmp(kind_names[k], kind->value) != 0)
		k++;
	if (k == HF_ARRAY_LEN(kind_names))
		return fail(l->e, l->path, kind->line, "unknown kind '%s' (menu, input, info or action)", kind->value);
	sc->kind = (enum kind)k;
	sc->end = sc->kind == K_INFO; /* an info screen ends the session unless it says end = no */
	bool have_rule = false, have_field = false, have_secret = false;
	int field_line = 0;
	const char *field_name = NULL;
	for (size_t i = 0; i < sec->n; i++) {
		struct ini_entry *en = &l->ini.entries[sec->first + i];
		const char *key = en->key, *v = en->value;
		if (strcmp(key, "kind") == 0)
			continue;
		if (strcmp(key, "pin") == 0) {
			if (strcmp(v, "required") == 0)
				sc->pin_required = true;
			else if (strcmp(v, "no") != 0)
				return fail(l->e, l->path, en->line, "pin = required or pin = no");
			continue;
		}
		bool is_number = all_digits(key, strlen(key));
		switch (sc->kind) {
		case K_MENU:
			if (is_number) {
				if (!parse_option(l, sc, rf, en))
					return false;
				continue;
			}
			break;
		case K_INPUT:
			if (strcmp(key, "rule") == 0) {
				if (!parse_rule(l, sc, rf, v, en->line))
					return false;
				have_rule = true;
				continue;
			}
			if (strcmp(key, "field") == 0) {
				field_name = v;
				field_line = en->line;
				have_field = true;
				continue;
			}
			if (strcmp(key, "next") == 0) {
				rf->next = v;
				rf->next_line = en->line;
				continue;
			}
			if (strcmp(key, "secret") == 0) {
				if (!parse_bool(v, &have_secret))
					return fail(l->e, l->path, en->line, "secret = yes or no");
				continue;
			}
			break;
		case K_INFO:
			if (strcmp(key, "end") == 0) {
				if (!parse_bool(v, &sc->end))
					return fail(l->e, l->path, en->line, "end = yes or no");
				continue;
			}
			break;
		case K_ACTION:
			if (strcmp(key, "action") == 0) {
				size_t a = 0;
				while (a < HF_ARRAY_LEN(actions) && strcmp(actions[a].name, v) != 0)
					a++;
				if (a == HF_ARRAY_LEN(actions))
					return fail(l->e, l->path, en->line, "unknown action '%s'", v);
				sc->action = (int)a;
				sc->action_line = en->line;
				continue;
			}
			continue; /* an outcome: checked once the action is known */
		}
		if (is_number)
			return fail(l->e, l->path, en->line, "option '%s' in a %s screen (options belong to menu screens)",
				    key, kind_names[sc->kind]);
		return fail(l->e, l->path, en->line, "key '%s' does not belong to a %s screen", key,
			    kind_names[sc->kind]);
	}
	switch (sc->kind) {
	case K_MENU:
		break;
	case K_INPUT:
		if (!have_rule)
			return fail(l->e, l->path, sec->line, "input screen '%s' has no rule", id);
		if (!rf->next)
			return fail(l->e, l->path, sec->line, "input screen '%s' has no next (where a valid input leads)",
				    id);
		if (sc->rule == R_SAME) {
			if (have_field)
				return fail(l->e, l->path, field_line,
					    "a same: input only compares; it stores nothing (remove field)");
		} else {
			if (!have_field)
				return fail(l->e, l->path, sec->line, "input screen '%s' has no field (where the value goes)",
					    id);
			sc->secret = sc->secret || have_secret;
			int f = use_field(l, field_name, field_line);
			if (f < 0)
				return false;
			sc->field = f;
			struct field *fl = &m->fields[f];
			fl->secret = fl->secret || sc->secret;
			if (sc->rmax > fl->max_chars)
				fl->max_chars = sc->rmax;
		}
		break;
	case K_INFO:
		break;
	case K_ACTION:
		if (sc->action < 0)
			return fail(l->e, l->path, sec->line, "action screen '%s' has no action", id);
		for (size_t i = 0; i < sec->n; i++) {
			struct ini_entry *en = &l->ini.entries[sec->first + i];
			if (strcmp(en->key, "kind") == 0 || strcmp(en->key, "pin") == 0 || strcmp(en->key, "action") == 0)
				continue;
			const struct action_spec *a = &actions[sc->action];
			int o = action_outcome(a, en->key);
			if (o < 0) {
				char list[200] = "";
				size_t used = 0;
				for (size_t j = 0; a->outcomes[j].name; j++) {
					int w = snprintf(list + used, sizeof(list) - used, "%s%s", j ? ", " : "",
							 a->outcomes[j].name);
					if (w > 0 && (size_t)w < sizeof(list) - used)
						used += (size_t)w;
				}
				return fail(l->e, l->path, en->line, "action %s has no outcome '%s' (it has: %s)", a->name,
					    en->key, list);
			}
			rf->outcome[o] = en->value;
			rf->outcome_line[o] = en->line;
		}
		break;
	}
	return true;
}

static bool parse_structure(struct load *l)
{
	struct menu *m = l->m;
	const struct ini_section *menu_sec = NULL;
	m->max_retries = 2;
	/* [values] first: field names must not shadow them, wherever the sections are in the file. */
	for (size_t i = 0; i < l->ini.n_sections; i++)
		if (strcmp(l->ini.sections[i].name, "values") == 0 && !parse_values_section(l, &l->ini.sections[i]))
			return false;
	for (size_t i = 0; i < l->ini.n_sections; i++) {
		const struct ini_section *sec = &l->ini.sections[i];
		if (strcmp(sec->name, "menu") == 0) {
			if (!parse_menu_section(l, sec))
				return false;
			menu_sec = sec;
		} else if (strcmp(sec->name, "values") == 0) {
			continue;
		} else if (strncmp(sec->name, "screen", 6) == 0 && is_space(sec->name[6])) {
			if (!parse_screen_section(l, sec, trim(sec->name + 7)))
				return false;
		} else {
			return fail(l->e, l->path, sec->line, "unknown section [%s] ([menu], [values] or [screen ID])",
				    sec->name);
		}
	}
	if (!menu_sec)
		return fail(l->e, l->path, 1, "no [menu] section");
	if (m->n_screens == 0)
		return fail(l->e, l->path, menu_sec->line, "no [screen ID] sections");
	return true;
}

/* Resolves a screen name; "@resume" only where allow_resume. */
static bool resolve(struct load *l, const char *name, int line, bool allow_resume, uint16_t *out)
{
	if (allow_resume && strcmp(name, "@resume") == 0) {
		*out = TARGET_RESUME;
		return true;
	}
	int s = find_screen(l->m, name);
	if (s < 0) {
		if (strcmp(name, "@resume") == 0)
			return fail(l->e, l->path, line, "@resume is only where verify_pin's ok leads");
		return fail(l->e, l->path, line, "unknown screen '%s'", name);
	}
	*out = (uint16_t)s;
	return true;
}

static bool resolve_structure(struct load *l)
{
	struct menu *m = l->m;
	for (int r = 0; r < 2; r++) {
		if (!resolve(l, l->start_name[r], l->start_line[r], false, &m->start[r]))
			return false;
		if (m->screens[m->start[r]].kind != K_MENU)
			return fail(l->e, l->path, l->start_line[r], "a start screen is a menu ('%s' is %s)",
				    l->start_name[r], kind_names[m->screens[m->start[r]].kind]);
		if (m->screens[m->start[r]].pin_required)
			return fail(l->e, l->path, l->start_line[r], "a start screen cannot require the PIN");
	}
	m->pin_screen = m->on_error = m->on_busy = MENU_NONE;
	if (l->pin_name) {
		if (!resolve(l, l->pin_name, l->pin_line, false, &m->pin_screen))
			return false;
		const struct screen *p = &m->screens[m->pin_screen];
		if (p->kind != K_INPUT || p->rule != R_PIN || p->pin_required)
			return fail(l->e, l->path, l->pin_line,
				    "pin_screen '%s' must be an input screen with rule = pin (and no pin = required)",
				    l->pin_name);
	}
	if (l->on_error_name && !resolve(l, l->on_error_name, l->on_error_line, false, &m->on_error))
		return false;
	if (l->on_busy_name && !resolve(l, l->on_busy_name, l->on_busy_line, false, &m->on_busy))
		return false;
	for (size_t i = 0; i < m->n_screens; i++) {
		struct screen *sc = &m->screens[i];
		struct screen_refs *rf = &l->refs[i];
		if (sc->pin_required && m->pin_screen == MENU_NONE)
			return fail(l->e, l->path, sc->line, "screen '%s' requires the PIN but [menu] has no pin_screen",
				    sc->id);
		for (size_t o = 0; o < sc->n_options; o++)
			if (!resolve(l, rf->opt_target[o], sc->options[o].line, false, &sc->options[o].target))
				return false;
		if (sc->kind == K_INPUT) {
			if (!resolve(l, rf->next, rf->next_line, false, &sc->next))
				return false;
			if (sc->rule == R_SAME) {
				int f = find_field(m, rf->same);
				if (f < 0)
					return fail(l->e, l->path, rf->rule_line, "same:%s: no input screen has field %s",
						    rf->same, rf->same);
				sc->same_field = f;
				sc->secret = m->fields[f].secret;
			}
		}
		if (sc->kind == K_ACTION) {
			const struct action_spec *a = &actions[sc->action];
			for (size_t o = 0; a->outcomes[o].name; o++) {
				const char *on = a->outcomes[o].name;
				if (rf->outcome[o]) {
					bool resume_ok = sc->action == A_VERIFY_PIN && strcmp(on, "ok") == 0;
					if (!resolve(l, rf->outcome[o], rf->outcome_line[o], resume_ok, &sc->outcome[o]))
						return false;
				} else if (strcmp(on, "error") == 0 && m->on_error != MENU_NONE) {
					sc->outcome[o] = m->on_error;
				} else if (strcmp(on, "busy") == 0 && m->on_busy != MENU_NONE) {
					sc->outcome[o] = m->on_busy;
				} else {
					return fail(l->e, l->path, sc->line,
						    "action screen '%s' does not say where outcome '%s' of %s leads "
						    "(a dead end)",
						    sc->id, on, a->name);
				}
			}
		}
		if (sc->kind == K_MENU && sc->n_options == 0)
			return fail(l->e, l->path, sc->line, "menu screen '%s' has no options (a dead end)", sc->id);
		for (size_t o = 0; o < sc->n_options; o++)
			for (size_t j = 0; j < sc->options[o].n_sets; j++) {
				const struct field *fl = &m->fields[sc->options[o].set_field[j]];
				if (fl->is_lang && find_lang(m, sc->options[o].set_value[j]) < 0)
					return fail(l->e, l->path, sc->options[o].line,
						    "lang=%s: not one of the languages in [menu]",
						    sc->options[o].set_value[j]);
			}
	}
	/* Secret fields: every input that fills one makes it secret, whichever comes first in the file. */
	for (size_t i = 0; i < m->n_screens; i++) {
		struct screen *sc = &m->screens[i];
		if (sc->kind == K_INPUT && sc->field >= 0 && m->fields[sc->field].secret)
			sc->secret = true;
	}
	return true;
}

/* ---- text keys and the language files ---------------------------------------------------------------- */

/* Placeholder names as bits of a 64-bit set: [values] entries, then fields, then result parameters. */
#define PH_CONST(i) ((uint64_t)1 << (i))
#define PH_FIELD(f) ((uint64_t)1 << (MENU_CONSTANTS_MAX + (f)))
#define PH_PARAM(p) ((uint64_t)1 << (MENU_CONSTANTS_MAX + MENU_FIELDS_MAX + (p)))
#define PH_ALL_CONSTS (PH_CONST(MENU_CONSTANTS_MAX) - 1)

static uint64_t params_to_ph(uint32_t params)
{
	uint64_t ph = 0;
	for (int p = 0; p < P_COUNT_; p++)
		if (params & PB(p))
			ph |= PH_PARAM(p);
	return ph;
}

static void add_key(struct menu *m, size_t *cap, const char *full, enum text_use use, uint32_t params, uint16_t screen,
		    int sline)
{
	if (m->n_keys == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		m->keys = hf_xrealloc(m->keys, *cap * sizeof(*m->keys));
	}
	m->keys[m->n_keys++] = (struct key){hf_xstrdup(full), use, params, screen, sline};
}

static int key_order_cmp(const void *a, const void *b, void *ctx)
{
	const struct menu *m = ctx;
	return strcmp(m->keys[*(const size_t *)a].full, m->keys[*(const size_t *)b].full);
}

static void build_keys(struct menu *m)
{
	size_t cap = 0;
	char full[MENU_NAME_MAX * 2 + 16];
	for (size_t i = 0; i < HF_ARRAY_LEN(fixed_keys); i++)
		add_key(m, &cap, fixed_keys[i].key, fixed_keys[i].use, fixed_keys[i].params, MENU_NONE, 0);
	for (size_t i = 0; i < m->n_screens; i++) {
		struct screen *sc = &m->screens[i];
		if (sc->kind == K_ACTION)
			continue;
		snprintf(full, sizeof(full), "screens.%s", sc->id);
		sc->key_text = m->n_keys;
		add_key(m, &cap, full, USE_SCREEN, 0, (uint16_t)i, sc->line);
		if (sc->kind == K_INPUT) {
			snprintf(full, sizeof(full), "screens.%s.retry", sc->id);
			sc->key_retry = m->n_keys;
			add_key(m, &cap, full, USE_RETRY, 0, (uint16_t)i, sc->line);
		}
		for (size_t o = 0; o < sc->n_options; o++) {
			snprintf(full, sizeof(full), "screens.%s.%u", sc->id, sc->options[o].number);
			sc->options[o].key = m->n_keys;
			add_key(m, &cap, full, USE_OPTION, 0, (uint16_t)i, sc->options[o].line);
		}
	}
	m->key_order = hf_xmalloc(m->n_keys * sizeof(*m->key_order));
	for (size_t i = 0; i < m->n_keys; i++)
		m->key_order[i] = i;
	qsort_r(m->key_order, m->n_keys, sizeof(*m->key_order), key_order_cmp, m);
}

static size_t find_key(const struct menu *m, const char *full)
{
	size_t lo = 0, hi = m->n_keys;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(m->keys[m->key_order[mid]].full, full);
		if (c == 0)
			return m->key_order[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return SIZE_MAX;
}

/* The placeholder set of one known name, or 0 when no such name exists. */
static uint64_t placeholder_bit(const struct menu *m, const char *name, size_t n)
{
	char buf[MENU_NAME_MAX + 1];
	if (n == 0 || n > MENU_NAME_MAX)
		return 0;
	memcpy(buf, name, n);
	buf[n] = '\0';
	int i = find_constant(m, buf);
	if (i >= 0)
		return PH_CONST(i);
	i = find_field(m, buf);
	if (i >= 0)
		return PH_FIELD(i);
	i = find_param(buf);
	if (i >= 0)
		return PH_PARAM(i);
	return 0;
}

/* Checks the placeholders of text: well-formed, known, and (for fixed keys) among allowed. Writes the set
 * of names used into *used. */
static bool check_placeholders(struct load *l, const char *path, int line, const char *keyname, const char *text,
			       const struct key *k, uint64_t *used)
{
	const struct menu *m = l->m;
	*used = 0;
	for (const char *p = text; *p; p++) {
		if (*p == '}')
			return fail(l->e, path, line, "'%s': a '}' without its '{'", keyname);
		if (*p != '{')
			continue;
		const char *close = strchr(p + 1, '}');
		const char *open = strchr(p + 1, '{');
		if (!close || (open && open < close))
			return fail(l->e, path, line, "'%s': a '{' without its '}'", keyname);
		size_t n = (size_t)(close - p - 1);
		char name[MENU_NAME_MAX + 1];
		if (n == 0 || n > MENU_NAME_MAX)
			return fail(l->e, path, line, "'%s': a placeholder is {name}", keyname);
		memcpy(name, p + 1, n);
		name[n] = '\0';
		uint64_t bit = placeholder_bit(m, p + 1, n);
		if (!bit || !name_ok(name, MENU_NAME_MAX))
			return fail(l->e, path, line, "'%s': unknown placeholder {%s}", keyname, name);
		int f = find_field(m, name);
		if (f >= 0 && m->fields[f].secret)
			return fail(l->e, path, line, "'%s': {%s} is a PIN or a code: it is never shown", keyname, name);
		if (k->use == USE_LABEL)
			return fail(l->e, path, line, "'%s': a navigation label has no placeholders", keyname);
		if (k->screen == MENU_NONE && !(bit & (PH_ALL_CONSTS | params_to_ph(k->params))))
			return fail(l->e, path, line, "'%s': {%s} is not given for this text", keyname, name);
		*used |= bit;
		p = close;
	}
	return true;
}

/* A list of words (keywords: ASCII letters and digits; aliases: any foldable letters). */
static bool check_words(struct load *l, struct lang *L, const char *path, int line, const char *keyname, char *value,
			const struct fixed_key *fk, size_t lang_idx, size_t *cap_words)
{
	struct menu *m = l->m;
	char *items[MENU_WORDS_MAX];
	size_t n;
	char copy[MENU_LINE_MAX + 1];
	hf_strlcpy(copy, value, sizeof(copy)); /* the text stays whole for menu_render_message */
	if (!split_list(copy, items, MENU_WORDS_MAX, &n))
		return fail(l->e, path, line, "'%s': at most %d words separated by commas", keyname, MENU_WORDS_MAX);
	if (fk->use == USE_KEYWORDS && n == 0)
		return fail(l->e, path, line, "'%s': at least one keyword", keyname);
	for (size_t i = 0; i < n; i++) {
		char folded[MENU_WORD_MAX * 2 + 1];
		size_t wn = strlen(items[i]);
		if (fk->use == USE_KEYWORDS) {
			bool ok = wn >= 2 && wn <= MENU_WORD_MAX;
			for (size_t j = 0; j < wn; j++)
				ok = ok && ((items[i][j] >= 'A' && items[i][j] <= 'Z') ||
					    (items[i][j] >= 'a' && items[i][j] <= 'z') ||
					    (items[i][j] >= '0' && items[i][j] <= '9'));
			if (!ok)
				return fail(l->e, path, line,
					    "'%s': keyword '%s' is 2 to %d letters A-Z or digits (people's accents are "
					    "ignored when matching)",
					    keyname, items[i], MENU_WORD_MAX);
			fold_word(items[i], wn, folded, sizeof(folded));
			for (size_t w = 0; w < m->n_words; w++) {
				const struct kw_word *o = &m->words[w];
				if (strcmp(o->word, folded) != 0)
					continue;
				if (o->kw != fk->kw || o->lang == lang_idx)
					return fail(l->e, path, line, "'%s': keyword %s is already %s in %s.ini", keyname,
						    items[i], o->kw == fk->kw ? "listed" : "another keyword",
						    m->langs[o->lang].code);
			}
			if (m->n_words == *cap_words) {
				*cap_words = *cap_words ? *cap_words * 2 : 32;
				m->words = hf_xrealloc(m->words, *cap_words * sizeof(*m->words));
			}
			struct kw_word *w = &m->words[m->n_words++];
			hf_strlcpy(w->word, folded, sizeof(w->word));
			w->kw = fk->kw;
			w->lang = (uint8_t)lang_idx;
		} else {
			if (!fold_word(items[i], wn, folded, sizeof(folded)))
				return fail(l->e, path, line, "'%s': '%s' is not a word of letters", keyname, items[i]);
			hf_strlcpy(L->aliases[1 + L->n_aliases++], folded, sizeof(L->aliases[0]));
		}
	}
	return true;
}

/* Turns \n into a line break and \\ into a backslash, in place; false on any other escape. */
static bool unescape(char *s)
{
	char *o = s;
	for (char *p = s; *p; p++) {
		if (*p != '\\') {
			*o++ = *p;
			continue;
		}
		if (p[1] == 'n')
			*o++ = '\n';
		else if (p[1] == '\\')
			*o++ = '\\';
		else
			return false;
		p++;
	}
	*o = '\0';
	return true;
}

static bool load_language(struct load *l, const char *dir, size_t li, size_t *cap_words, uint64_t *screen_ph)
{
	struct menu *m = l->m;
	struct lang *L = &m->langs[li];
	struct ini ini = {0};
	bool ok = false;
	size_t plen = strlen(dir) + strlen(L->code) + 6;
	L->path = hf_xmalloc(plen);
	snprintf(L->path, plen, "%s/%s.ini", dir, L->code);
	L->text = hf_xcalloc(m->n_keys, sizeof(*L->text));
	L->line = hf_xcalloc(m->n_keys, sizeof(*L->line));
	if (read_file(L->path, &L->buf, l->e) != HF_OK)
		goto out;
	if (!ini_parse(L->buf, L->path, false, MENU_TEXTS_MAX, &ini, l->e))
		goto out;
	int sec_line[HF_ARRAY_LEN(lang_sections)] = {0};
	for (size_t s = 0; s < ini.n_sections; s++) {
		const struct ini_section *sec = &ini.sections[s];
		size_t si = 0;
		while (si < HF_ARRAY_LEN(lang_sections) && strcmp(lang_sections[si], sec->name) != 0)
			si++;
		if (si == HF_ARRAY_LEN(lang_sections)) {
			fail(l->e, L->path, sec->line, "unknown section [%s] ([language], [ussd], [screens] or [sms])",
			     sec->name);
			goto out;
		}
		sec_line[si] = sec->line;
		for (size_t i = 0; i < sec->n; i++) {
			struct ini_entry *en = &ini.entries[sec->first + i];
			char full[MENU_LINE_MAX + 16];
			snprintf(full, sizeof(full), "%s.%s", sec->name, en->key);
			size_t k = find_key(m, full);
			if (k == SIZE_MAX) {
				if (si == 2)
					fail(l->e, L->path, en->line,
					     "unknown text '%s' (%s has no such screen, option or input)", en->key,
					     base_name(l->path));
				else
					fail(l->e, L->path, en->line, "unknown key '%s' in [%s]", en->key, sec->name);
				goto out;
			}
			const struct key *key = &m->keys[k];
			if (L->text[k]) {
				fail(l->e, L->path, en->line, "'%s' again in [%s] (first at line %d)", en->key, sec->name,
				     L->line[k]);
				goto out;
			}
			size_t raw = strlen(en->value);
			if (!hf_utf8_valid_text(en->value, raw)) {
				fail(l->e, L->path, en->line, "'%s': not valid UTF-8 text (or a control character)",
				     en->key);
				goto out;
			}
			if (!unescape(en->value)) {
				fail(l->e, L->path, en->line, "'%s': the only escapes are \\n (a new line) and \\\\", en->key);
				goto out;
			}
			size_t n = strlen(en->value);
			bool one_line = key->use == USE_OPTION || key->use == USE_LABEL || key->use == USE_NAME;
			if (n == 0 && key->use != USE_ALIASES) {
				fail(l->e, L->path, en->line, "'%s' is empty", en->key);
				goto out;
			}
			if (one_line && (strchr(en->value, '\n') || utf8_chars(en->value, n) > MENU_LABEL_MAX)) {
				fail(l->e, L->path, en->line, "'%s': a label is one line of at most %d characters", en->key,
				     MENU_LABEL_MAX);
				goto out;
			}
			uint64_t used = 0;
			if (!check_placeholders(l, L->path, en->line, en->key, en->value, key, &used))
				goto out;
			if (key->screen != MENU_NONE)
				screen_ph[key->screen] |= used;
			if (key->use == USE_ALIASES || key->use == USE_KEYWORDS) {
				const struct fixed_key *fk = &fixed_keys[k];
				if (!check_words(l, L, L->path, en->line, en->key, en->value, fk, li, cap_words))
					goto out;
			}
			if (key->use == USE_NAME && !fold_word(en->value, n, L->aliases[0], sizeof(L->aliases[0]))) {
				/* a name with spaces or signs is shown, but matched only through its aliases */
				L->aliases[0][0] = '\0';
			}
			L->text[k] = en->value;
			L->line[k] = en->line;
		}
	}
	for (size_t k = 0; k < m->n_keys; k++) {
		if (L->text[k])
			continue;
		const struct key *key = &m->keys[k];
		const char *dot = strchr(key->full, '.');
		size_t si = 0;
		while (si < HF_ARRAY_LEN(lang_sections) &&
		       (strncmp(lang_sections[si], key->full, (size_t)(dot - key->full)) != 0 ||
			lang_sections[si][dot - key->full] != '\0'))
			si++;
		HF_ASSERT(si < HF_ARRAY_LEN(lang_sections));
		int line = sec_line[si] ? sec_line[si] : 1;
		if (key->sline)
			fail(l->e, L->path, line, "missing text '%s' in [%s] (%s:%d needs it)", dot + 1, lang_sections[si],
			     base_name(l->path), key->sline);
		else
			fail(l->e, L->path, line, "missing '%s' in [%s]", dot + 1, lang_sections[si]);
		goto out;
	}
	ok = true;
out:
	ini_release(&ini);
	return ok;
}

/* Every *.ini in dir besides menu.ini must be a listed language: a file nobody reads is a mistake. */
static bool check_stray_files(struct load *l, const char *dir)
{
	DIR *d = opendir(dir);
	if (!d) {
		fail(l->e, dir, 0, "cannot open the folder: %s", strerror(errno));
		l->e->code = HF_EIO;
		return false;
	}
	bool ok = true;
	struct dirent *de;
	while (ok && (de = readdir(d)) != NULL) {
		const char *name = de->d_name;
		size_t n = strlen(name);
		if (name[0] == '.' || n < 5 || strcmp(name + n - 4, ".ini") != 0 || strcmp(name, "menu.ini") == 0)
			continue;
		char code[MENU_LANG_MAX + 2];
		bool listed = n - 4 <= MENU_LANG_MAX;
		if (listed) {
			memcpy(code, name, n - 4);
			code[n - 4] = '\0';
			listed = find_lang(l->m, code) >= 0;
		}
		if (!listed)
			ok = fail(l->e, l->path, l->languages_line,
				  "%s is in the folder but not in languages (add it, or remove the file)", name);
	}
	closedir(d);
	return ok;
}

/* ---- filling placeholders ----------------------------------------------------------------------------- */

/* Gives the value of placeholder name[0..n) (NULL: none). scratch may be used to build it. */
typedef const char *(*lookup_fn)(const void *ctx, const char *name, size_t n, char *scratch, size_t scratch_size);

static hf_err fill(const char *tmpl, lookup_fn lookup, const void *ctx, struct hf_buf *out)
{
	hf_err err = HF_OK;
	char scratch[MENU_PARAM_MAX + 1];
	const char *p = tmpl;
	while (*p && !err) {
		const char *open = strchr(p, '{');
		const char *close = open ? strchr(open, '}') : NULL;
		if (!open || !close) {
			err = hf_buf_append_str(out, p);
			break;
		}
		err = hf_buf_append(out, p, (size_t)(open - p));
		if (err)
			break;
		const char *v = lookup(ctx, open + 1, (size_t)(close - open - 1), scratch, sizeof(scratch));
		err = hf_buf_append_str(out, v ? v : "-");
		p = close + 1;
	}
	return err;
}

static const char *constant_value(const struct menu *m, const char *name, size_t n)
{
	for (size_t i = 0; i < m->n_constants; i++)
		if (strlen(m->constants[i].name) == n && memcmp(m->constants[i].name, name, n) == 0)
			return m->constants[i].value;
	return NULL;
}

/* The checker's values: every placeholder at its longest ('x' is one septet, like digits and letters). */
static const char *lookup_longest(const void *ctx, const char *name, size_t n, char *scratch, size_t scratch_size)
{
	const struct menu *m = ctx;
	const char *c = constant_value(m, name, n);
	if (c)
		return c;
	size_t len = 1;
	for (size_t i = 0; i < m->n_fields; i++)
		if (strlen(m->fields[i].name) == n && memcmp(m->fields[i].name, name, n) == 0 &&
		    m->fields[i].max_chars > len)
			len = m->fields[i].max_chars;
	for (size_t i = 0; i < P_COUNT_; i++)
		if (strlen(param_specs[i].name) == n && memcmp(param_specs[i].name, name, n) == 0 &&
		    param_specs[i].max_chars > len)
			len = param_specs[i].max_chars;
	if (len >= scratch_size)
		len = scratch_size - 1;
	memset(scratch, 'x', len);
	scratch[len] = '\0';
	return scratch;
}

/* ---- pages -------------------------------------------------------------------------------------------- */

/* What a piece of text costs in either coding, so that pages can be measured without being built. */
struct cost {
	bool gsm7;
	size_t septets, utf16;
};

static struct cost cost_of(const char *s, size_t n)
{
	struct cost c = {true, 0, 0};
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		size_t k = hf_utf8_decode(s + i, n - i, &cp);
		if (!k) { /* never for our texts (checked at load and at input); counted as a wide character */
			c.gsm7 = false;
			c.utf16 += 2;
			i++;
			continue;
		}
		i += k;
		int sep = hf_gsm_septets(cp);
		c.gsm7 = c.gsm7 && sep > 0;
		c.septets += (size_t)sep;
		c.utf16 += cp > 0xFFFF ? 2 : 1;
	}
	return c;
}

static struct cost cost_add(struct cost a, struct cost b)
{
	return (struct cost){a.gsm7 && b.gsm7, a.septets + b.septets, a.utf16 + b.utf16};
}

static const struct cost COST_NL = {true, 1, 1};

static bool cost_fits(struct cost c)
{
	return c.gsm7 ? c.septets <= HF_GSM_USSD_GSM7_MAX : c.utf16 <= HF_GSM_USSD_UCS2_MAX;
}

static size_t cost_units(struct cost c)
{
	return c.gsm7 ? c.septets : c.utf16;
}

/* A screen to split into pages: items[0] is its text (cut at word boundaries over pages when too long),
 * the others are option lines (never cut). Every page ends with "98. More" when another follows, then the
 * navigation line of that page, if any. */
struct page_in {
	size_t n;
	const char *item[1 + MENU_OPTIONS_MAX];
	size_t len[1 + MENU_OPTIONS_MAX];
	const char *more;      /* "98. More" */
	const char *nav_first; /* on the first page (NULL: none) */
	const char *nav_rest;  /* on the others */
};

struct page_fail {
	size_t item;  /* the item that does not fit a page of its own */
	size_t units; /* what it costs with the page's last lines */
	bool gsm7;
};

struct page_seg {
	const char *s;
	size_t n;
};

/* Splits in into pages; writes page want (clamped to the last) into out (MENU_TEXT_MAX + 1 bytes, may be
 * NULL) and the number of pages into *npages. strict (the checker): any item that needs cutting fails.
 * HF_ETOOBIG when an item cannot be placed (pf says which) or more than MENU_PAGES_MAX pages are needed. */
static hf_err paginate(const struct page_in *in, bool strict, size_t want, char *out, size_t *npages,
		       struct page_fail *pf)
{
	struct cost more = cost_add(COST_NL, cost_of(in->more, strlen(in->more)));
	size_t i = 0, off = 0, page = 0;
	struct page_seg segs[1 + MENU_OPTIONS_MAX];
	if (out)
		out[0] = '\0';
	for (;;) {
		const char *nav = page == 0 ? in->nav_first : in->nav_rest;
		struct cost tail_end = nav ? cost_add(COST_NL, cost_of(nav, strlen(nav))) : (struct cost){true, 0, 0};
		struct cost tail_more = cost_add(more, tail_end);
		struct cost content = {true, 0, 0};
		size_t nseg = 0;
		bool cut = false;
		while (i < in->n) {
			const char *rest = in->item[i] + off;
			size_t rn = in->len[i] - off;
			struct cost cand = cost_add(content, cost_of(rest, rn));
			if (nseg)
				cand = cost_add(cand, COST_NL);
			bool last = i + 1 == in->n;
			if (cost_fits(cost_add(cand, last ? tail_end : tail_more))) {
				content = cand;
				segs[nseg++] = (struct page_seg){rest, rn};
				i++;
				off = 0;
				continue;
			}
			if (nseg)
				break;
			/* Alone on a page and still too long. */
			if (strict || i > 0) {
				if (pf) {
					struct cost c = cost_add(cand, last ? tail_end : tail_more);
					*pf = (struct page_fail){i, cost_units(c), c.gsm7};
				}
				return HF_ETOOBIG;
			}
			size_t lg = 0, ng = 0, lu = 0, nu = 0;
			if (tail_more.gsm7 && tail_more.septets < HF_GSM_USSD_GSM7_MAX &&
			    hf_gsm_cut(rest, rn, true, HF_GSM_USSD_GSM7_MAX - tail_more.septets, &lg, &ng) != HF_OK)
				lg = 0;
			if (tail_more.utf16 < HF_GSM_USSD_UCS2_MAX &&
			    hf_gsm_cut(rest, rn, false, HF_GSM_USSD_UCS2_MAX - tail_more.utf16, &lu, &nu) != HF_OK)
				lu = 0;
			if (lu > lg)
				lg = lu, ng = nu;
			if (lg == 0 || ng >= rn) {
				if (pf)
					*pf = (struct page_fail){i, cost_units(cost_add(cand, tail_more)), cand.gsm7};
				return HF_ETOOBIG;
			}
			segs[nseg++] = (struct page_seg){rest, lg};
			off += ng;
			cut = true;
			break;
		}
		bool has_more = cut || i < in->n;
		if (out && page == want) {
			size_t o = 0;
			for (size_t k = 0; k < nseg; k++) {
				HF_ASSERT(o + segs[k].n + 1 <= MENU_TEXT_MAX);
				if (k)
					out[o++] = '\n';
				memcpy(out + o, segs[k].s, segs[k].n);
				o += segs[k].n;
			}
			const char *tails[2] = {has_more ? in->more : NULL, nav};
			for (size_t k = 0; k < 2; k++) {
				if (!tails[k])
					continue;
				size_t tn = strlen(tails[k]);
				HF_ASSERT(o + tn + 1 <= MENU_TEXT_MAX);
				if (o)
					out[o++] = '\n';
				memcpy(out + o, tails[k], tn);
				o += tn;
			}
			out[o] = '\0';
		}
		page++;
		if (!has_more)
			break;
		if (page == MENU_PAGES_MAX) {
			if (pf)
				*pf = (struct page_fail){0, 0, true};
			return HF_ETOOBIG;
		}
	}
	if (out && want >= page)
		return paginate(in, strict, page - 1, out, npages, pf);
	*npages = page;
	return HF_OK;
}

/* ---- the checker's walk through the screens -------------------------------------------------------- */

/* What decides, at a screen, which placeholders have values and whether an action has its inputs: the
 * fields typed so far, the last action's outcome, whether the PIN was checked, and the screen waiting
 * behind the PIN. Packed into 64 bits for the visited set. */
struct wstate {
	uint16_t screen, resume;
	uint8_t have; /* field bits */
	uint8_t last; /* 0: no action yet; else 1 + action * ACTION_OUTCOMES_MAX + outcome */
	bool pin_ok;
};

static uint64_t wstate_key(const struct wstate *w)
{
	return (uint64_t)w->screen | (uint64_t)w->resume << 16 | (uint64_t)w->have << 32 | (uint64_t)w->last << 40 |
	       (uint64_t)w->pin_ok << 48;
}

struct walk {
	struct load *l;
	int registered;
	uint64_t *set; /* open addressing; key + 1 so that 0 is empty */
	size_t set_cap, set_n;
	struct wstate *queue;
	size_t q_cap, q_head, q_tail;
	uint64_t *screen_ph; /* by screen: placeholders its texts use in any language */
};

static bool walk_seen(struct walk *w, uint64_t key)
{
	if (w->set_n * 2 >= w->set_cap) {
		size_t cap = w->set_cap ? w->set_cap * 2 : 1024;
		uint64_t *set = hf_xcalloc(cap, sizeof(*set));
		for (size_t i = 0; i < w->set_cap; i++) {
			if (!w->set[i])
				continue;
			size_t h = (size_t)((w->set[i] * 0x9E3779B97F4A7C15u) >> 20) & (cap - 1);
			while (set[h])
				h = (h + 1) & (cap - 1);
			set[h] = w->set[i];
		}
		free(w->set);
		w->set = set;
		w->set_cap = cap;
	}
	uint64_t k = key + 1;
	size_t h = (size_t)((k * 0x9E3779B97F4A7C15u) >> 20) & (w->set_cap - 1);
	while (w->set[h]) {
		if (w->set[h] == k)
			return true;
		h = (h + 1) & (w->set_cap - 1);
	}
	w->set[h] = k;
	w->set_n++;
	return false;
}

/* Moves to screen t the way the engine does: the start screen clears fields and results, and a screen
 * that requires the PIN is preceded by the PIN screen. */
static bool walk_enter(struct walk *w, uint16_t t, struct wstate st)
{
	struct load *l = w->l;
	const struct menu *m = l->m;
	if (t == m->start[w->registered]) {
		st.have = 0;
		st.last = 0;
		st.resume = MENU_NONE;
	}
	const struct screen *sc = &m->screens[t];
	if (sc->pin_required && !st.pin_ok) {
		if (!w->registered)
			return fail(l->e, l->path, sc->line,
				    "screen '%s' requires the PIN but can be reached from start_unregistered (an "
				    "unknown phone has no PIN)",
				    sc->id);
		st.resume = t;
		t = m->pin_screen;
	}
	st.screen = t;
	if (walk_seen(w, wstate_key(&st)))
		return true;
	if (w->set_n > MENU_STATES_MAX)
		return fail(l->e, l->path, l->menu_line,
			    "the screens have too many ways through them to check (more than %d states)",
			    MENU_STATES_MAX);
	if (w->q_tail == w->q_cap) {
		w->q_cap = w->q_cap ? w->q_cap * 2 : 256;
		w->queue = hf_xrealloc(w->queue, w->q_cap * sizeof(*w->queue));
	}
	w->queue[w->q_tail++] = st;
	return true;
}

static uint8_t secret_fields(const struct menu *m)
{
	uint8_t mask = 0;
	for (size_t f = 0; f < m->n_fields; f++)
		if (m->fields[f].secret)
			mask |= (uint8_t)(1u << f);
	return mask;
}

/* The first text of screen s (any language) that uses one of the placeholders in missing: for the
 * message, which must point at a line someone can fix. */
static bool fail_placeholder(struct load *l, const struct screen *sc, uint64_t missing, const char *why)
{
	const struct menu *m = l->m;
	for (size_t li = 0; li < m->n_langs; li++) {
		const struct lang *L = &m->langs[li];
		for (size_t k = 0; k < m->n_keys; k++) {
			if (m->keys[k].screen != (uint16_t)(sc - m->screens) || !L->text[k])
				continue;
			for (const char *p = strchr(L->text[k], '{'); p; p = strchr(p + 1, '{')) {
				const char *close = strchr(p, '}');
				if (!close)
					break;
				uint64_t bit = placeholder_bit(m, p + 1, (size_t)(close - p - 1));
				if (bit & missing)
					return fail(l->e, L->path, L->line[k], "'%s': {%.*s} %s", m->keys[k].full + 8,
						    (int)(close - p - 1), p + 1, why);
			}
		}
	}
	return fail(l->e, l->path, sc->line, "screen '%s': a placeholder %s", sc->id, why);
}

static bool walk_from(struct walk *w)
{
	struct load *l = w->l;
	const struct menu *m = l->m;
	uint8_t secrets = secret_fields(m);
	struct wstate st0 = {.resume = MENU_NONE};
	if (!walk_enter(w, m->start[w->registered], st0))
		return false;
	while (w->q_head < w->q_tail) {
		struct wstate st = w->queue[w->q_head++];
		const struct screen *sc = &m->screens[st.screen];
		l->reached[st.screen] = true;
		if (sc->kind == K_ACTION) {
			const struct action_spec *a = &actions[sc->action];
			for (size_t n = 0; n < ACTION_NEEDS_MAX && a->needs[n]; n++) {
				int f = find_field(m, a->needs[n]);
				if (f < 0)
					return fail(l->e, l->path, sc->action_line,
						    "action %s needs the field '%s', which no input or option fills", a->name,
						    a->needs[n]);
				if (!(st.have & (1u << f)))
					return fail(l->e, l->path, sc->action_line,
						    "action %s needs the field '%s', and on some way to screen '%s' it is "
						    "not filled",
						    a->name, a->needs[n], sc->id);
			}
			for (size_t o = 0; a->outcomes[o].name; o++) {
				struct wstate nx = st;
				nx.have &= (uint8_t)~secrets;
				nx.last = (uint8_t)(1 + sc->action * ACTION_OUTCOMES_MAX + (int)o);
				nx.pin_ok = st.pin_ok || (sc->action == A_VERIFY_PIN && strcmp(a->outcomes[o].name, "ok") == 0);
				uint16_t t = sc->outcome[o];
				if (t == TARGET_RESUME) {
					t = st.resume != MENU_NONE ? st.resume : m->start[w->registered];
					nx.resume = MENU_NONE;
				}
				if (!walk_enter(w, t, nx))
					return false;
			}
			continue;
		}
		/* What has a value here: [values], the fields typed (not secrets), the last outcome's results. */
		uint64_t avail = PH_ALL_CONSTS;
		for (size_t f = 0; f < m->n_fields; f++)
			if ((st.have & (1u << f)) && !m->fields[f].secret)
				avail |= PH_FIELD(f);
		if (st.last) {
			size_t a = (size_t)(st.last - 1) / ACTION_OUTCOMES_MAX, o = (size_t)(st.last - 1) % ACTION_OUTCOMES_MAX;
			avail |= params_to_ph(actions[a].outcomes[o].params);
		}
		uint64_t missing = w->screen_ph[st.screen] & ~avail;
		if (missing)
			return fail_placeholder(l, sc, missing, "has no value on some way to this screen");
		for (size_t o = 0; o < sc->n_options; o++) {
			struct wstate nx = st;
			for (size_t j = 0; j < sc->options[o].n_sets; j++)
				nx.have |= (uint8_t)(1u << sc->options[o].set_field[j]);
			if (!walk_enter(w, sc->options[o].target, nx))
				return false;
		}
		if (sc->kind == K_INPUT) {
			struct wstate nx = st;
			if (sc->field >= 0)
				nx.have |= (uint8_t)(1u << sc->field);
			if (!walk_enter(w, sc->next, nx))
				return false;
		}
	}
	return true;
}

static bool check_walk(struct load *l, uint64_t *screen_ph)
{
	const struct menu *m = l->m;
	bool ok = true;
	for (int r = 0; r < 2 && ok; r++) {
		struct walk w = {.l = l, .registered = r, .screen_ph = screen_ph};
		ok = walk_from(&w);
		free(w.set);
		free(w.queue);
	}
	for (size_t i = 0; ok && i < m->n_screens; i++)
		if (!l->reached[i])
			ok = fail(l->e, l->path, m->screens[i].line,
				  "screen '%s' cannot be reached from either start screen", m->screens[i].id);
	return ok;
}

/* ---- building a screen's lines ---------------------------------------------------------------------- */

#define MENU_BUILD_MAX 8192 /* a screen's text with values, before it is split into pages */

struct built {
	struct hf_buf buf; /* the text, then each option line, one after another */
	size_t n, off[1 + MENU_OPTIONS_MAX], len[1 + MENU_OPTIONS_MAX];
	char more[MENU_LABEL_MAX * 4 + 8];
	char nav_full[MENU_LABEL_MAX * 8 + 16];
	char nav_back[MENU_LABEL_MAX * 4 + 8];
};

static const char *lang_text(const struct lang *L, size_t key)
{
	HF_ASSERT(key < SIZE_MAX && L->text[key] != NULL);
	return L->text[key];
}

/* Fills sc's texts in L (retry: the input's retry text; invalid: "not a choice" above a menu). */
static hf_err build_screen(const struct lang *L, const struct screen *sc, bool retry, bool invalid, lookup_fn lk,
			   const void *ctx, struct built *b)
{
	hf_err err = HF_OK;
	hf_buf_init(&b->buf, MENU_BUILD_MAX);
	b->n = 0;
	snprintf(b->more, sizeof(b->more), "98. %s", lang_text(L, FK_MORE));
	snprintf(b->nav_full, sizeof(b->nav_full), "0. %s  00. %s", lang_text(L, FK_BACK), lang_text(L, FK_HOME));
	snprintf(b->nav_back, sizeof(b->nav_back), "0. %s", lang_text(L, FK_BACK));
	b->off[0] = 0;
	if (invalid) {
		err = fill(lang_text(L, FK_INVALID), lk, ctx, &b->buf);
		if (!err)
			err = hf_buf_append(&b->buf, "\n", 1);
	}
	if (!err)
		err = fill(lang_text(L, retry ? sc->key_retry : sc->key_text), lk, ctx, &b->buf);
	if (err)
		return err;
	b->len[0] = b->buf.len;
	b->n = 1;
	for (size_t o = 0; o < sc->n_options; o++) {
		b->off[b->n] = b->buf.len;
		err = hf_buf_appendf(&b->buf, "%u. ", sc->options[o].number);
		if (!err)
			err = fill(lang_text(L, sc->options[o].key), lk, ctx, &b->buf);
		if (err)
			return err;
		b->len[b->n] = b->buf.len - b->off[b->n];
		b->n++;
	}
	return HF_OK;
}

static void built_pages(const struct built *b, const char *nav_first, const char *nav_rest, struct page_in *in)
{
	const char *base = hf_buf_cstr(&b->buf);
	in->n = b->n;
	for (size_t i = 0; i < b->n; i++) {
		in->item[i] = base + b->off[i];
		in->len[i] = b->len[i];
	}
	in->more = b->more;
	in->nav_first = nav_first;
	in->nav_rest = nav_rest;
}

/* ---- the checker's measurements ----------------------------------------------------------------------- */

/* The first character of s that GSM-7 cannot carry (0: none), to name it in a message. */
static uint32_t first_non_gsm(const char *s, size_t n)
{
	struct hf_gsm_count c;
	return hf_gsm_count(s, n, &c) == HF_OK ? c.first_non_gsm : 0;
}

static bool fail_size(struct load *l, const char *path, int line, const char *what, size_t units, bool gsm7,
		      uint32_t culprit)
{
	if (gsm7)
		return fail(l->e, path, line, "%s: with the longest values it takes %zu GSM-7 characters; a screen "
			    "holds 182", what, units);
	return fail(l->e, path, line,
		    "%s: with the longest values it takes %zu UCS-2 characters; a screen holds 80 (U+%04X is not in "
		    "the GSM-7 alphabet, so the whole screen is UCS-2; without it, 182)",
		    what, units, (unsigned)culprit);
}

static bool measure_screen(struct load *l, const struct lang *L, const struct screen *sc, bool retry, bool invalid)
{
	const struct menu *m = l->m;
	struct built b;
	struct page_in in;
	struct page_fail pf = {0};
	size_t npages = 0;
	bool end = sc->kind == K_INFO && sc->end;
	hf_err err = build_screen(L, sc, retry, invalid, lookup_longest, m, &b);
	if (err) {
		hf_buf_release(&b.buf);
		return fail(l->e, L->path, L->line[sc->key_text], "'%s': longer than %d bytes with its values", sc->id,
			    MENU_BUILD_MAX);
	}
	built_pages(&b, end ? NULL : b.nav_full, end ? NULL : b.nav_full, &in);
	err = paginate(&in, true, 0, NULL, &npages, &pf);
	char what[MENU_NAME_MAX + 120];
	if (err && pf.item > 0) {
		const struct option *o = &sc->options[pf.item - 1];
		snprintf(what, sizeof(what), "option %u of '%s' does not fit a page of its own with 98 and 0/00",
			 o->number, sc->id);
		uint32_t cp = first_non_gsm(in.item[pf.item], in.len[pf.item]);
		if (!cp)
			cp = first_non_gsm(hf_buf_cstr(&b.buf), b.buf.len);
		bool ok = fail_size(l, L->path, L->line[o->key], what, pf.units, pf.gsm7, cp);
		hf_buf_release(&b.buf);
		return ok;
	}
	size_t key = retry ? sc->key_retry : sc->key_text;
	if (err) {
		snprintf(what, sizeof(what), "'%s%s' does not fit one screen%s%s", sc->id, retry ? ".retry" : "",
			 end ? "" : " with the lines the engine adds (98 More, 0 Back 00 Home)",
			 invalid ? " below the 'not a choice' line" : "");
		uint32_t cp = first_non_gsm(in.item[0], in.len[0]);
		if (!cp)
			cp = first_non_gsm(hf_buf_cstr(&b.buf), b.buf.len);
		hf_buf_release(&b.buf);
		return fail_size(l, L->path, L->line[key], what, pf.units, pf.gsm7, cp);
	}
	hf_buf_release(&b.buf);
	if (end && npages > 1)
		return fail(l->e, L->path, L->line[key], "'%s' ends the session, so it must fit one screen (it takes %zu)",
			    sc->id, npages);
	return true;
}

static bool measure_fixed(struct load *l, const struct lang *L, size_t k)
{
	const struct menu *m = l->m;
	const struct key *key = &m->keys[k];
	if (key->use != USE_USSD && key->use != USE_SMS)
		return true;
	struct hf_buf b;
	hf_buf_init(&b, MENU_BUILD_MAX);
	bool ok = true;
	struct hf_gsm_count c = {0};
	if (fill(L->text[k], lookup_longest, m, &b) != HF_OK || hf_gsm_count(b.data, b.len, &c) != HF_OK) {
		ok = fail(l->e, L->path, L->line[k], "'%s' is too long", key->full);
		goto out;
	}
	if (key->use == USE_USSD && !hf_gsm_fits(&c, HF_GSM_USSD_GSM7_MAX, HF_GSM_USSD_UCS2_MAX))
		ok = fail_size(l, L->path, L->line[k], key->full, c.units, c.gsm7, c.first_non_gsm);
	if (key->use == USE_SMS && !hf_gsm_fits(&c, HF_GSM_SMS_GSM7_MAX, HF_GSM_SMS_UCS2_MAX)) {
		if (c.gsm7)
			ok = fail(l->e, L->path, L->line[k],
				  "%s: with the longest values it takes %zu GSM-7 characters; one SMS holds 160", key->full,
				  c.units);
		else
			ok = fail(l->e, L->path, L->line[k],
				  "%s: with the longest values it takes %zu UCS-2 characters (U+%04X is not in the "
				  "GSM-7 alphabet); one SMS holds 70",
				  key->full, c.units, (unsigned)c.first_non_gsm);
	}
out:
	hf_buf_release(&b);
	return ok;
}

static bool check_sizes(struct load *l)
{
	const struct menu *m = l->m;
	for (size_t li = 0; li < m->n_langs; li++) {
		const struct lang *L = &m->langs[li];
		for (size_t k = 0; k < m->n_keys; k++)
			if (!measure_fixed(l, L, k))
				return false;
		for (size_t i = 0; i < m->n_screens; i++) {
			const struct screen *sc = &m->screens[i];
			if (sc->kind == K_ACTION)
				continue;
			if (!measure_screen(l, L, sc, false, false))
				return false;
			if (sc->kind == K_MENU && !measure_screen(l, L, sc, false, true))
				return false;
			if (sc->kind == K_INPUT && !measure_screen(l, L, sc, true, false))
				return false;
		}
	}
	return true;
}

/* ---- loading ------------------------------------------------------------------------------------------ */

void menu_free(struct menu *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n_langs; i++) {
		free(m->langs[i].path);
		free(m->langs[i].buf);
		free(m->langs[i].text);
		free(m->langs[i].line);
	}
	for (size_t k = 0; k < m->n_keys; k++)
		free(m->keys[k].full);
	free(m->keys);
	free(m->key_order);
	free(m->words);
	free(m->screens);
	free(m->buf);
	free(m->path);
	free(m);
}

hf_err menu_load(const char *dir, struct menu **out, struct hf_buf *err)
{
	static uint32_t serial; /* a session remembers which load it belongs to */
	struct load_err e = {0};
	struct load l = {.e = &e};
	struct menu *m = hf_xcalloc(1, sizeof(*m));
	uint64_t *screen_ph = NULL;
	size_t cap_words = 0;
	l.m = m;
	m->serial = __atomic_add_fetch(&serial, 1, __ATOMIC_RELAXED);
	size_t plen = strlen(dir) + sizeof("/menu.ini");
	m->path = hf_xmalloc(plen);
	snprintf(m->path, plen, "%s/menu.ini", dir);
	l.path = m->path;
	if (read_file(m->path, &m->buf, &e) != HF_OK || !ini_parse(m->buf, m->path, true, MENU_ENTRIES_MAX, &l.ini, &e))
		goto out;
	m->screens = hf_xcalloc(MENU_SCREENS_MAX, sizeof(*m->screens));
	l.refs = hf_xcalloc(MENU_SCREENS_MAX, sizeof(*l.refs));
	if (!parse_structure(&l) || !resolve_structure(&l) || !check_stray_files(&l, dir))
		goto out;
	build_keys(m);
	screen_ph = hf_xcalloc(m->n_screens, sizeof(*screen_ph));
	for (size_t i = 0; i < m->n_langs; i++)
		if (!load_language(&l, dir, i, &cap_words, screen_ph))
			goto out;
	if (!check_walk(&l, screen_ph) || !check_sizes(&l))
		goto out;
out:
	free(screen_ph);
	free(l.refs);
	ini_release(&l.ini);
	if (e.failed) {
		hf_buf_note(err, "%s", e.msg);
		menu_free(m);
		return e.code;
	}
	*out = m;
	return HF_OK;
}

const char *menu_default_language(const struct menu *m)
{
	return m->langs[m->default_lang].code;
}

bool menu_has_language(const struct menu *m, const char *lang)
{
	return lang && find_lang(m, lang) >= 0;
}

const char *menu_language_find(const struct menu *m, const char *text)
{
	char word[MENU_WORD_MAX * 2 + 1];
	if (!text)
		return NULL;
	while (is_space(*text))
		text++;
	size_t n = strlen(text);
	while (n > 0 && is_space(text[n - 1]))
		n--;
	if (n == 0 || n > MENU_WORD_MAX * 2 || !fold_word(text, n, word, sizeof(word)))
		return NULL;
	for (size_t i = 0; i < m->n_langs; i++) {
		const struct lang *L = &m->langs[i];
		bool hit = strcasecmp(L->code, word) == 0;
		for (size_t a = 0; !hit && a <= L->n_aliases; a++)
			hit = L->aliases[a][0] && strcmp(L->aliases[a], word) == 0;
		if (hit)
			return L->code;
	}
	return NULL;
}

/* ---- sessions ----------------------------------------------------------------------------------------- */

static const struct lang *session_lang(const struct menu *m, const struct menu_session *s)
{
	int li = find_lang(m, s->lang);
	return &m->langs[li >= 0 ? (size_t)li : m->default_lang];
}

struct session_ctx {
	const struct menu *m;
	const struct menu_session *s;
};

/* A session's values: the last action's results, then the fields typed (never a secret), then [values]. */
static const char *lookup_session(const void *ctx, const char *name, size_t n, char *scratch, size_t scratch_size)
{
	(void)scratch;
	(void)scratch_size;
	const struct session_ctx *c = ctx;
	for (size_t i = 0; i < c->s->n_params; i++) {
		const char *pn = param_specs[c->s->param_id[i]].name;
		if (strlen(pn) == n && memcmp(pn, name, n) == 0)
			return c->s->params[i];
	}
	for (size_t f = 0; f < c->m->n_fields; f++) {
		const struct field *fl = &c->m->fields[f];
		if (strlen(fl->name) == n && memcmp(fl->name, name, n) == 0)
			return (c->s->have & (1u << f)) && !fl->secret ? c->s->fields[f] : NULL;
	}
	return constant_value(c->m, name, n);
}

static void out_reset(struct menu_out *out)
{
	out->kind = MENU_OUT_END;
	out->text[0] = '\0';
	out->screen = NULL;
	out->action = NULL;
	out->n_params = 0;
}

static void clear_fields(struct menu_session *s, uint8_t mask)
{
	for (size_t f = 0; f < MENU_FIELDS_MAX; f++)
		if (mask & (1u << f)) {
			wipe(s->fields[f], sizeof(s->fields[f]));
			s->have &= (uint8_t)~(1u << f);
		}
}

static void clear_params(struct menu_session *s)
{
	s->n_params = 0;
	memset(s->params, 0, sizeof(s->params));
}

/* Ends the session with a fixed text ("ussd.error", "ussd.too_many_tries"). */
static void end_with(const struct menu *m, struct menu_session *s, size_t key, struct menu_out *out)
{
	struct hf_buf b;
	hf_buf_init(&b, MENU_TEXT_MAX);
	struct session_ctx ctx = {m, s};
	if (fill(lang_text(session_lang(m, s), key), lookup_session, &ctx, &b) == HF_OK && hf_gsm_fits_ussd(b.data, b.len))
		hf_strlcpy(out->text, hf_buf_cstr(&b), sizeof(out->text));
	else
		hf_strlcpy(out->text, "Error.", sizeof(out->text)); /* the checked texts fit: not reached */
	hf_buf_release(&b);
	out->kind = MENU_OUT_END;
	out->action = NULL;
	out->n_params = 0;
	s->ended = true;
	s->pending = MENU_NONE;
	clear_fields(s, 0xFF);
}

/* Lays out the current screen of s: the number of pages, and the current page's text when text is not NULL
 * (MENU_TEXT_MAX + 1 bytes). */
static hf_err layout(const struct menu *m, const struct menu_session *s, char *text, size_t *npages)
{
	const struct screen *sc = &m->screens[s->screen];
	const struct lang *L = session_lang(m, s);
	struct session_ctx ctx = {m, s};
	struct built b;
	struct page_in in;
	bool end = sc->kind == K_INFO && sc->end;
	bool root = s->screen == s->entry;
	hf_err err = build_screen(L, sc, s->show_retry && sc->kind == K_INPUT, s->show_invalid && sc->kind == K_MENU,
				  lookup_session, &ctx, &b);
	if (!err) {
		const char *first = end || root ? NULL : b.nav_full;
		const char *rest = end ? NULL : root ? b.nav_back : b.nav_full;
		built_pages(&b, first, rest, &in);
		err = paginate(&in, false, s->page, text, npages, NULL);
	}
	hf_buf_release(&b.buf);
	return err;
}

/* Renders the current page of the current screen into out. */
static hf_err render(const struct menu *m, struct menu_session *s, struct menu_out *out)
{
	const struct screen *sc = &m->screens[s->screen];
	size_t npages = 0;
	hf_err err = layout(m, s, out->text, &npages);
	out->screen = sc->id;
	if (err) {
		/* Only a value far past every cap could get here; the user gets a clear end, not a broken screen. */
		end_with(m, s, FK_ERROR, out);
		return err;
	}
	if (s->page >= npages)
		s->page = (uint8_t)(npages - 1);
	bool last_page = (size_t)s->page + 1 == npages;
	out->kind = sc->kind == K_INFO && sc->end && last_page ? MENU_OUT_END : MENU_OUT_CON;
	if (out->kind == MENU_OUT_END) {
		s->ended = true;
		clear_fields(s, 0xFF);
	}
	return HF_OK;
}

static size_t page_count(const struct menu *m, const struct menu_session *s)
{
	size_t npages = 1;
	if (layout(m, s, NULL, &npages) != HF_OK)
		return 1;
	return npages;
}

static void go_home(struct menu_session *s)
{
	s->depth = 0;
	s->resume = MENU_NONE;
	s->screen = s->entry;
	clear_fields(s, 0xFF);
	clear_params(s);
}

static void stack_push(struct menu_session *s, uint16_t screen)
{
	if (s->depth == MENU_STACK_MAX) {
		/* Forget the oldest screen: "back" that far is rarer than a long way forward. */
		memmove(s->stack, s->stack + 1, (MENU_STACK_MAX - 1) * sizeof(s->stack[0]));
		s->depth--;
		if (s->resume_depth)
			s->resume_depth--;
	}
	s->stack[s->depth++] = screen;
}

static void show_screen(struct menu_session *s, uint16_t t)
{
	s->screen = t;
	s->page = 0;
	s->failures = 0;
	s->show_invalid = s->show_retry = false;
}

/* Moves to screen t (pushing the current one when push), through the PIN screen when t requires it, and
 * writes what to do: the screen, or the action it stands for. */
static hf_err enter(const struct menu *m, struct menu_session *s, uint16_t t, bool push, struct menu_out *out)
{
	if (t == s->entry) {
		go_home(s);
		show_screen(s, t);
		return render(m, s, out);
	}
	if (push)
		stack_push(s, s->screen);
	const struct screen *sc = &m->screens[t];
	if (sc->pin_required && !s->pin_ok && m->pin_screen != MENU_NONE) {
		s->resume = t;
		s->resume_depth = s->depth;
		t = m->pin_screen;
		sc = &m->screens[t];
	}
	if (sc->kind == K_ACTION) {
		const struct action_spec *a = &actions[sc->action];
		s->pending = t;
		out_reset(out);
		out->kind = MENU_OUT_ACTION;
		out->screen = sc->id;
		out->action = a->name;
		for (size_t n = 0; n < ACTION_NEEDS_MAX && a->needs[n]; n++) {
			int f = find_field(m, a->needs[n]);
			HF_ASSERT(f >= 0); /* the checker made sure */
			out->params[out->n_params] = (struct menu_kv){a->needs[n], (s->have & (1u << f)) ? s->fields[f] : ""};
			out->secret[out->n_params] = m->fields[f].secret;
			out->n_params++;
		}
		return HF_OK;
	}
	show_screen(s, t);
	return render(m, s, out);
}

void menu_start(const struct menu *m, struct menu_session *s, const char *lang, bool registered)
{
	wipe(s, sizeof(*s));
	s->serial = m->serial;
	s->entry = s->screen = m->start[registered ? 1 : 0];
	s->pending = s->resume = MENU_NONE;
	s->registered = registered;
	hf_strlcpy(s->lang, menu_has_language(m, lang) ? lang : menu_default_language(m), sizeof(s->lang));
}

void menu_session_release(struct menu_session *s)
{
	wipe(s, sizeof(*s));
	s->pending = s->resume = MENU_NONE;
	s->ended = true;
}

const char *menu_session_lang(const struct menu_session *s)
{
	return s->lang;
}

const char *menu_session_screen(const struct menu *m, const struct menu_session *s)
{
	if (s->serial != m->serial || s->screen >= m->n_screens)
		return "-";
	return m->screens[s->screen].id;
}

bool menu_session_takes_shortcut(const struct menu *m, const struct menu_session *s)
{
	if (s->serial != m->serial || s->screen >= m->n_screens || s->pending != MENU_NONE)
		return false;
	return m->screens[s->screen].kind == K_MENU;
}

static bool input_valid(const struct menu_session *s, const struct screen *sc, const char *in, size_t n)
{
	switch (sc->rule) {
	case R_PIN:
		return n == 4 && all_digits(in, n);
	case R_DIGITS:
		return n >= sc->rmin && n <= sc->rmax && all_digits(in, n);
	case R_REF:
		return n == 9 && in[0] != '0' && hf_check_valid(HF_CHECK_DAMM, in, n);
	case R_PHONE:
		/* national (0 and 9 digits), or international with or without '+' (8 to 15 digits) */
		if (n >= 1 && in[0] == '+')
			return n - 1 >= 8 && n - 1 <= 15 && all_digits(in + 1, n - 1) && in[1] != '0';
		if (n == 10 && in[0] == '0')
			return all_digits(in, n);
		return n >= 11 && n <= 15 && in[0] != '0' && all_digits(in, n);
	case R_TEXT: {
		size_t chars = utf8_chars(in, n);
		return chars >= 1 && chars <= sc->rmax && hf_utf8_valid_text(in, n);
	}
	case R_SAME: {
		if (!(s->have & (1u << sc->same_field)))
			return false;
		const char *want = s->fields[sc->same_field];
		size_t wn = strlen(want);
		/* constant time over the typed value: this compares a PIN */
		unsigned char diff = (unsigned char)(wn != n);
		for (size_t i = 0; i < n; i++)
			diff |= (unsigned char)(in[i] ^ (i < wn ? want[i] : 0));
		return diff == 0;
	}
	}
	return false;
}

static hf_err conflict(const struct menu *m, struct menu_session *s, struct menu_out *out)
{
	out_reset(out);
	if (s->serial != m->serial) {
		/* A session of another load: its indices mean nothing here. Answer in the default language. */
		menu_start(m, s, NULL, false);
	}
	end_with(m, s, FK_ERROR, out);
	return HF_ECONFLICT;
}

/* An input that is not valid here: the screen again (with "not a choice" or the retry text), or END after
 * max_retries of them. */
static hf_err invalid(const struct menu *m, struct menu_session *s, struct menu_out *out)
{
	const struct screen *sc = &m->screens[s->screen];
	if (++s->failures > m->max_retries) {
		end_with(m, s, FK_TOO_MANY, out);
		out->screen = sc->id;
		return HF_OK;
	}
	s->page = 0;
	s->show_invalid = sc->kind == K_MENU;
	s->show_retry = sc->kind == K_INPUT;
	return render(m, s, out);
}

hf_err menu_step(const struct menu *m, struct menu_session *s, const char *input, struct menu_out *out)
{
	out_reset(out);
	if (s->serial != m->serial || s->ended || s->pending != MENU_NONE)
		return conflict(m, s, out);
	if (!input)
		return render(m, s, out);
	const struct screen *sc = &m->screens[s->screen];
	bool root = s->screen == s->entry;
	/* A trimmed copy (phones and aggregators add spaces); an input past the cap is simply invalid. */
	char in[MENU_INPUT_MAX + 1] = "";
	size_t n = strnlen(input, MENU_INPUT_MAX + 1);
	bool too_long = n > MENU_INPUT_MAX;
	if (!too_long) {
		size_t a = 0;
		while (a < n && input[a] == ' ')
			a++;
		while (n > a && input[n - 1] == ' ')
			n--;
		n -= a;
		memcpy(in, input + a, n);
		in[n] = '\0';
	} else {
		n = 0;
	}
	hf_err err;
	bool was_invalid = s->show_invalid || s->show_retry;
	s->show_invalid = s->show_retry = false;

	if (n == 2 && strcmp(in, "00") == 0 && !root) {
		err = enter(m, s, s->entry, false, out);
		goto out_wipe;
	}
	if (n == 1 && in[0] == '0' && (s->page > 0 || !root)) {
		if (s->page > 0) {
			s->page--;
			s->show_invalid = was_invalid && sc->kind == K_MENU;
			s->show_retry = was_invalid && sc->kind == K_INPUT;
			err = render(m, s, out);
		} else if (s->depth > 0 && s->stack[s->depth - 1] != s->entry) {
			show_screen(s, s->stack[--s->depth]);
			if (s->depth < s->resume_depth || s->resume == s->screen)
				s->resume = MENU_NONE;
			err = render(m, s, out);
		} else { /* back to the start screen: the same as 00 (fields and results forgotten) */
			err = enter(m, s, s->entry, false, out);
		}
		goto out_wipe;
	}
	if (n == 2 && strcmp(in, "98") == 0) {
		s->show_invalid = was_invalid && sc->kind == K_MENU;
		s->show_retry = was_invalid && sc->kind == K_INPUT;
		if ((size_t)s->page + 1 < page_count(m, s)) {
			s->page++;
			err = render(m, s, out);
			goto out_wipe;
		}
		s->show_invalid = s->show_retry = false;
	}
	switch (sc->kind) {
	case K_MENU: {
		const struct option *o = NULL;
		if (n >= 1 && n <= 2 && all_digits(in, n) && in[0] != '0') {
			unsigned num = (unsigned)(in[0] - '0');
			if (n == 2)
				num = num * 10 + (unsigned)(in[1] - '0');
			for (size_t i = 0; i < sc->n_options && !o; i++)
				if (sc->options[i].number == num)
					o = &sc->options[i];
		}
		if (!o) {
			err = invalid(m, s, out);
			break;
		}
		for (size_t j = 0; j < o->n_sets; j++) {
			hf_strlcpy(s->fields[o->set_field[j]], o->set_value[j], sizeof(s->fields[0]));
			s->have |= (uint8_t)(1u << o->set_field[j]);
		}
		err = enter(m, s, o->target, true, out);
		break;
	}
	case K_INPUT:
		if (too_long || !input_valid(s, sc, in, n)) {
			err = invalid(m, s, out);
			break;
		}
		if (sc->field >= 0) {
			wipe(s->fields[sc->field], sizeof(s->fields[0]));
			memcpy(s->fields[sc->field], in, n + 1);
			s->have |= (uint8_t)(1u << sc->field);
		}
		err = enter(m, s, sc->next, true, out);
		break;
	default: /* an info screen waits for 0 or 00 only */
		err = invalid(m, s, out);
		break;
	}
out_wipe:
	wipe(in, sizeof(in));
	return err;
}

/* A result parameter's value: text (line breaks allowed, for lists), at most MENU_PARAM_MAX bytes. */
static bool param_value_ok(const char *v)
{
	size_t n = strnlen(v, MENU_PARAM_MAX + 1);
	if (n > MENU_PARAM_MAX)
		return false;
	size_t start = 0;
	for (size_t i = 0; i <= n; i++)
		if (i == n || v[i] == '\n') {
			if (i > start && !hf_utf8_valid_text(v + start, i - start))
				return false;
			start = i + 1;
		}
	return true;
}

hf_err menu_action_result(const struct menu *m, struct menu_session *s, const char *outcome,
			  const struct menu_kv *params, size_t n_params, struct menu_out *out)
{
	out_reset(out);
	if (s->serial != m->serial || s->ended || s->pending == MENU_NONE || s->pending >= m->n_screens)
		return conflict(m, s, out);
	const struct screen *sc = &m->screens[s->pending];
	const struct action_spec *a = &actions[sc->action];
	hf_err rc = HF_OK;
	int o = outcome ? action_outcome(a, outcome) : -1;
	if (o < 0) {
		rc = HF_EINVAL;
		o = action_outcome(a, "error");
	}
	clear_params(s);
	if (n_params > MENU_PARAMS_MAX)
		rc = HF_EINVAL;
	for (size_t i = 0; !rc && i < n_params; i++) {
		int p = params[i].name ? find_param(params[i].name) : -1;
		if (p < 0 || !(a->outcomes[o].params & PB(p)) || !params[i].value || !param_value_ok(params[i].value)) {
			rc = HF_EINVAL;
			break;
		}
		s->param_id[s->n_params] = (uint8_t)p;
		hf_strlcpy(s->params[s->n_params], params[i].value, sizeof(s->params[0]));
		s->n_params++;
	}
	if (rc) {
		clear_params(s);
		o = action_outcome(a, "error");
	}
	const char *oname = a->outcomes[o].name;
	if (sc->action == A_VERIFY_PIN && strcmp(oname, "ok") == 0)
		s->pin_ok = true;
	if (sc->action == A_SET_LANGUAGE && strcmp(oname, "ok") == 0) {
		int f = find_field(m, "lang");
		if (f >= 0 && (s->have & (1u << f)) && menu_has_language(m, s->fields[f]))
			hf_strlcpy(s->lang, s->fields[f], sizeof(s->lang));
	}
	clear_fields(s, secret_fields(m)); /* a typed PIN or code lives only until its action answered */
	s->pending = MENU_NONE;
	uint16_t t = sc->outcome[o];
	if (t == TARGET_RESUME) {
		if (s->resume != MENU_NONE) {
			t = s->resume;
			s->depth = s->resume_depth < s->depth ? s->resume_depth : s->depth;
		} else {
			t = s->entry;
		}
		s->resume = MENU_NONE;
	} else {
		/* "Back" from a result goes to the menu the user chose from, not to the inputs typed on the way. */
		while (s->depth > 0 && m->screens[s->stack[s->depth - 1]].kind == K_INPUT)
			s->depth--;
	}
	hf_err err = enter(m, s, t, false, out);
	return rc ? rc : err;
}

/* ---- messages and SMS keywords -------------------------------------------------------------------------- */

struct kv_ctx {
	const struct menu *m;
	const struct menu_kv *kv;
	size_t n;
};

static const char *lookup_kv(const void *ctx, const char *name, size_t n, char *scratch, size_t scratch_size)
{
	(void)scratch;
	(void)scratch_size;
	const struct kv_ctx *c = ctx;
	for (size_t i = 0; i < c->n; i++)
		if (c->kv[i].name && strlen(c->kv[i].name) == n && memcmp(c->kv[i].name, name, n) == 0)
			return c->kv[i].value;
	return constant_value(c->m, name, n);
}

hf_err menu_render_message(const struct menu *m, const char *lang, const char *key, const struct menu_kv *params,
			   size_t n_params, struct hf_buf *out)
{
	size_t k = key ? find_key(m, key) : SIZE_MAX;
	if (k == SIZE_MAX)
		return HF_ENOTFOUND;
	for (size_t i = 0; i < n_params; i++)
		if (!params[i].value || !param_value_ok(params[i].value))
			return HF_EINVAL;
	int li = lang ? find_lang(m, lang) : -1;
	const struct lang *L = &m->langs[li >= 0 ? (size_t)li : m->default_lang];
	struct kv_ctx ctx = {m, params, n_params};
	size_t before = out->len;
	hf_err err = fill(L->text[k], lookup_kv, &ctx, out);
	if (err && out->data) { /* leave out as it was */
		out->len = before;
		out->data[before] = '\0';
	}
	return err;
}

bool menu_keyword(const struct menu *m, const char *text, enum menu_kw *kw, const char **rest, const char **lang)
{
	if (!text)
		return false;
	const char *p = text;
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	const char *w = p;
	while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r' && p - w <= MENU_WORD_MAX * 4)
		p++;
	size_t n = (size_t)(p - w);
	while (n > 0 && strchr(".!?,:;", w[n - 1]))
		n--; /* "STOP." "Help!" */
	char folded[MENU_WORD_MAX * 2 + 1];
	if (n == 0 || n > MENU_WORD_MAX * 4 || !fold_word(w, n, folded, sizeof(folded)))
		return false;
	for (size_t li = 0; li < m->n_langs; li++)
		for (size_t i = 0; i < m->n_words; i++) {
			const struct kw_word *k = &m->words[i];
			if (k->lang != li || strcmp(k->word, folded) != 0)
				continue;
			while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
				p++;
			*kw = k->kw;
			*rest = p;
			*lang = m->langs[li].code;
			return true;
		}
	return false;
}
