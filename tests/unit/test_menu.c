/* test_menu.c - the USSD menu engine (gateway/menu.c): the shipped menus, the checker's refusals with
 * their file:line, every screen of every language measured, a scripted session per service, navigation,
 * retries, the PIN once per session, SMS keywords, and golden files of every screen.
 *
 * What a beneficiary sees is the contract here: the exact screen ids and action requests of each service,
 * that no page ever exceeds a USSD screen, and that a PIN never appears in a rendered text. A broken menu
 * folder must stop the gateway with a line someone can fix, so each checker rule is tested with a small
 * folder written into a private temporary directory.
 *
 * Golden files: tests/unit/golden/menus/<lang>.txt hold the first page of every screen, reached by its
 * shortest way from a start screen, in each shipped language. After an intended change of a text,
 * regenerate them with HF_GOLDEN_UPDATE=1 build/release/tests/test_menu and review the diff.
 */
#include "hf_test.h"

#include "../../gateway/menu.c"

#include "hf_gsm.h"

#include <stdio.h>
#include <string.h>

#define SHIPPED "menus/ussd"
#define GOLDEN_DIR "tests/unit/golden/menus"

static struct menu *g_m; /* the shipped menus, loaded once */

/* ---- helpers ---------------------------------------------------------------------------------------- */

/* s with the first occurrence of old replaced by new (owned by the caller). Aborts when old is absent:
 * a test edit that no longer applies is a broken test. */
static char *repl(const char *s, const char *old, const char *new_)
{
	const char *at = strstr(s, old);
	if (!at) {
		printf("FAIL test setup: '%s' not found\n", old);
		abort();
	}
	size_t n = strlen(s) - strlen(old) + strlen(new_);
	char *out = hf_xmalloc(n + 1);
	size_t pre = (size_t)(at - s);
	memcpy(out, s, pre);
	memcpy(out + pre, new_, strlen(new_));
	memcpy(out + pre + strlen(new_), at + strlen(old), strlen(at + strlen(old)) + 1);
	return out;
}

static char *cat(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b);
	char *out = hf_xmalloc(na + nb + 1);
	memcpy(out, a, na);
	memcpy(out + na, b, nb + 1);
	return out;
}

static bool fits_ussd(const char *s)
{
	return hf_gsm_fits_ussd(s, strlen(s));
}

/* ---- a small menu folder for the checker's rules ------------------------------------------------------ */

/* Line numbers matter: the tests below name them. */
static const char BASE_MENU[] = "[menu]\n"			 /* 1 */
				"languages = en, sw\n"		 /* 2 */
				"default_language = en\n"	 /* 3 */
				"start_registered = home\n"	 /* 4 */
				"start_unregistered = guest\n"	 /* 5 */
				"pin_screen = pin\n"		 /* 6 */
				"on_error = oops\n"		 /* 7 */
				"on_busy = oops\n"		 /* 8 */
				"[screen home]\n"		 /* 9 */
				"kind = menu\n"			 /* 10 */
				"1 = status\n"			 /* 11 */
				"2 = info\n"			 /* 12 */
				"[screen guest]\n"		 /* 13 */
				"kind = menu\n"			 /* 14 */
				"1 = info\n"			 /* 15 */
				"[screen info]\n"		 /* 16 */
				"kind = info\n"			 /* 17 */
				"[screen pin]\n"		 /* 18 */
				"kind = input\n"		 /* 19 */
				"rule = pin\n"			 /* 20 */
				"field = pin\n"			 /* 21 */
				"next = pin_check\n"		 /* 22 */
				"[screen pin_check]\n"		 /* 23 */
				"kind = action\n"		 /* 24 */
				"action = verify_pin\n"		 /* 25 */
				"ok = @resume\n"		 /* 26 */
				"wrong = pin\n"			 /* 27 */
				"locked = oops\n"		 /* 28 */
				"not_set = oops\n"		 /* 29 */
				"[screen status]\n"		 /* 30 */
				"kind = action\n"		 /* 31 */
				"action = enrolment_status\n"	 /* 32 */
				"pin = required\n"		 /* 33 */
				"ok = done\n"			 /* 34 */
				"pending = done\n"		 /* 35 */
				"suspended = done\n"		 /* 36 */
				"exited = done\n"		 /* 37 */
				"not_found = done\n"		 /* 38 */
				"[screen done]\n"		 /* 39 */
				"kind = info\n"			 /* 40 */
				"[screen oops]\n"		 /* 41 */
				"kind = info\n";		 /* 42 */

static const char BASE_SCREENS[] = "[screens]\n"		/* 1 */
				   "home = Home menu\n"		/* 2 */
				   "home.1 = Status\n"		/* 3 */
				   "home.2 = Info\n"		/* 4 */
				   "guest = Guest menu\n"	/* 5 */
				   "guest.1 = Info\n"		/* 6 */
				   "info = Some information.\n" /* 7 */
				   "pin = Enter PIN:\n"		/* 8 */
				   "pin.retry = 4 digits:\n"	/* 9 */
				   "done = Done.\n"		/* 10 */
				   "oops = Sorry.\n";		/* 11 */

#define FIXED_TAIL                                                                                                     \
	"[ussd]\nmore = More\nback = Back\nhome = Home\ninvalid_choice = Not a choice.\ntoo_many_tries = Too many.\n" \
	"busy = Busy.\nerror = Error.\n[sms]\nhelp = Help.\nstatus_ok = {programme} {since}\nstatus_pending = P\n"   \
	"status_suspended = S\nstatus_exited = E\nstatus_unknown = U\nstop = Stopped.\nstart = Started.\n"          \
	"lang = {language}\nlang_unknown = {languages}\ngrievance = {ref}\ngrievance_empty = Empty.\n"             \
	"unknown = Unknown.\nbusy = Busy.\nerror = Error.\n"
static const char FIXED_EN[] = "[language]\nname = English\naliases =\n" FIXED_TAIL
			       "kw_help = HELP\nkw_status = STATUS\nkw_stop = STOP\nkw_start = START\nkw_lang = LANG\n"
			       "kw_grievance = COMPLAINT\n";
static const char FIXED_SW[] = "[language]\nname = Kiswahili\naliases = Swahili\n" FIXED_TAIL
			       "kw_help = MSAADA\nkw_status = HALI\nkw_stop = SIMAMISHA\nkw_start = ANZA\n"
			       "kw_lang = LUGHA\nkw_grievance = MALALAMIKO\n";

struct folder {
	char dir[64];
	struct menu *m;
	hf_err rc;
	char msg[1024];
};

/* Writes files (name, text pairs, NULL-terminated; a NULL text skips the file) and loads the folder. */
static void load_folder(struct folder *f, const char *const *files)
{
	hf_test_tmpdir(f->dir, sizeof(f->dir));
	for (size_t i = 0; files[i]; i += 2) {
		if (!files[i + 1])
			continue;
		char path[256];
		hf_test_write_file(f->dir, files[i], files[i + 1], 0600, path, sizeof(path));
	}
	struct hf_buf err;
	hf_buf_init(&err, sizeof(f->msg) - 1);
	f->m = NULL;
	f->rc = menu_load(f->dir, &f->m, &err);
	HF_ASSERT(hf_strlcpy(f->msg, hf_buf_cstr(&err), sizeof(f->msg)));
	hf_buf_release(&err);
}

static void unload_folder(struct folder *f)
{
	menu_free(f->m);
	hf_test_rmtree(f->dir);
}

/* Loads menu.ini, en.ini = en_screens + FIXED_EN, sw.ini = sw_screens + FIXED_SW (a NULL screens text:
 * BASE_SCREENS) and expects "DIR/file:line: ...needle...". */
#define FAILS(menu, en, sw, file, line, needle) fails_((menu), (en), (sw), (file), (line), (needle), HF_EINVAL, __LINE__)
static void fails_(const char *menu, const char *en, const char *sw, const char *file, int line, const char *needle,
		   hf_err want_rc, int at)
{
	char *en_all = cat(en ? en : BASE_SCREENS, FIXED_EN);
	char *sw_all = cat(sw ? sw : BASE_SCREENS, FIXED_SW);
	struct folder f;
	load_folder(&f, (const char *const[]){"menu.ini", menu, "en.ini", en_all, "sw.ini", sw_all, NULL});
	char want[256];
	if (line > 0)
		snprintf(want, sizeof(want), "%s/%s:%d: ", f.dir, file, line);
	else
		snprintf(want, sizeof(want), "%s/%s: ", f.dir, file);
	hf_test_check_(f.rc == want_rc && f.m == NULL, __FILE__, at, "load fails", "rc %d: %s", (int)f.rc, f.msg);
	hf_test_check_(strncmp(f.msg, want, strlen(want)) == 0 && strstr(f.msg, needle) != NULL, __FILE__, at,
		       "error names the file, line and reason", "want '%s...%s', got '%s'", want, needle, f.msg);
	unload_folder(&f);
	free(en_all);
	free(sw_all);
}

#define LOADS(menu, en, sw) loads_((menu), (en), (sw), __LINE__)
static void loads_(const char *menu, const char *en, const char *sw, int at)
{
	char *en_all = cat(en ? en : BASE_SCREENS, FIXED_EN);
	char *sw_all = cat(sw ? sw : BASE_SCREENS, FIXED_SW);
	struct folder f;
	load_folder(&f, (const char *const[]){"menu.ini", menu, "en.ini", en_all, "sw.ini", sw_all, NULL});
	hf_test_check_(f.rc == HF_OK && f.m != NULL, __FILE__, at, "loads", "rc %d: %s", (int)f.rc, f.msg);
	unload_folder(&f);
	free(en_all);
	free(sw_all);
}

/* A menu edit (old -> new) must fail at menu.ini:line. */
#define MENU_FAILS(old, new_, line, needle)                                                                            \
	do {                                                                                                           \
		char *m_ = repl(BASE_MENU, (old), (new_));                                                             \
		fails_(m_, NULL, NULL, "menu.ini", (line), (needle), HF_EINVAL, __LINE__);                             \
		free(m_);                                                                                              \
	} while (0)

/* An edit of both language files' screens (old -> new) must fail at en.ini:line. */
#define TEXT_FAILS(old, new_, line, needle)                                                                            \
	do {                                                                                                           \
		char *s_ = repl(BASE_SCREENS, (old), (new_));                                                          \
		fails_(BASE_MENU, s_, s_, "en.ini", (line), (needle), HF_EINVAL, __LINE__);                            \
		free(s_);                                                                                              \
	} while (0)

static void test_base_loads(void)
{
	LOADS(BASE_MENU, NULL, NULL);
}

static void test_structure_errors(void)
{
	/* option numbers that clash with navigation, or are not plain numbers */
	MENU_FAILS("1 = status", "0 = status", 11, "option 0 clashes with navigation");
	MENU_FAILS("1 = status", "00 = status", 11, "option 00 clashes");
	MENU_FAILS("2 = info", "98 = info", 12, "option 98 clashes");
	MENU_FAILS("2 = info", "02 = info", 12, "without a leading zero");
	MENU_FAILS("2 = info", "100 = info", 12, "1 to 99");
	MENU_FAILS("2 = info", "1 = info", 12, "key '1' again");
	/* duplicate ids, unknown names */
	MENU_FAILS("[screen oops]", "[screen done]", 41, "section [screen done] again (first at line 39)");
	MENU_FAILS("[screen oops]\nkind = info", "[screen oops]\nkind = info\n[screen  done]\nkind = info", 43,
		   "screen 'done' again");
	MENU_FAILS("kind = info\n[screen pin]", "kind = page\n[screen pin]", 17, "unknown kind 'page'");
	MENU_FAILS("action = enrolment_status", "action = enrolment", 32, "unknown action 'enrolment'");
	MENU_FAILS("rule = pin", "rule = password", 20, "unknown rule 'password'");
	MENU_FAILS("rule = pin", "rule = digits:1-4", 20, "0, 00 and 98 are navigation");
	MENU_FAILS("rule = pin", "rule = text:500", 20, "text:MAX");
	MENU_FAILS("2 = info", "2 = infos", 12, "unknown screen 'infos'");
	MENU_FAILS("next = pin_check", "next = pin_chek", 22, "unknown screen 'pin_chek'");
	MENU_FAILS("ok = done", "ok = finished", 34, "unknown screen 'finished'");
	MENU_FAILS("ok = done", "ok = @resume", 34, "@resume is only where verify_pin's ok leads");
	MENU_FAILS("ok = done", "okay = done", 34, "action enrolment_status has no outcome 'okay'");
	MENU_FAILS("field = pin", "field = pin\nsame = 1", 22, "key 'same' does not belong to a input screen");
	MENU_FAILS("2 = info", "2 = info\nrule = pin", 13, "key 'rule' does not belong to a menu screen");
	MENU_FAILS("kind = info\n[screen pin]", "kind = info\n1 = home\n[screen pin]", 18, "options belong to menu");
	MENU_FAILS("[screen info]\nkind = info", "[screen info]\nkind = info\npin = maybe", 18, "pin = required or pin = no");
	MENU_FAILS("[screen info]\nkind = info", "[screen info]\nend = yes", 16, "has no kind");
	MENU_FAILS("[screen done]", "[page done]", 39, "unknown section [page done]");
	MENU_FAILS("field = pin", "field = amount", 21, "has the name of a result parameter");
	MENU_FAILS("default_language = en", "default_language = fr", 3, "default_language 'fr' is not in languages");
	MENU_FAILS("languages = en, sw", "languages = en, Swahili", 2, "'Swahili' is not a language code");
	MENU_FAILS("on_busy = oops", "on_busy = oops\nmax_retries = 9", 9, "max_retries: a number from 1 to 5");
	MENU_FAILS("on_busy = oops", "on_busy = oops\ncolour = red", 9, "unknown key 'colour' in [menu]");
	MENU_FAILS("start_registered = home", "start_registered = info", 4, "a start screen is a menu");
	MENU_FAILS("pin_screen = pin", "pin_screen = info", 6, "must be an input screen with rule = pin");
	/* dead ends: a menu with no options, an outcome that leads nowhere */
	MENU_FAILS("1 = info\n[screen info]", "[screen info]", 13, "has no options (a dead end)");
	MENU_FAILS("not_found = done\n", "", 30, "outcome 'not_found' of enrolment_status leads (a dead end)");
	MENU_FAILS("on_error = oops\n", "", 22, "outcome 'error' of verify_pin");
	/* the PIN: a screen that needs it without a PIN screen, or from an unknown phone */
	MENU_FAILS("pin_screen = pin\n", "", 29, "requires the PIN but [menu] has no pin_screen");
	MENU_FAILS("1 = info\n[screen info]", "1 = status\n[screen info]", 30, "reached from start_unregistered");
	/* syntax */
	MENU_FAILS("kind = menu\n1 = status", "kind = menu\n  1 = status", 11, "indented line");
	MENU_FAILS("2 = info", "2 info", 12, "expected [section], key = value");
	fails_("kind = menu\n[menu]\n", NULL, NULL, "menu.ini", 1, "before any [section]", HF_EINVAL, __LINE__);
	fails_("[menu]\nlanguages = en\n", NULL, NULL, "menu.ini", 1, "needs default_language", HF_EINVAL, __LINE__);
}

static void test_reachability_and_needs(void)
{
	/* An unreachable screen (its texts present, so that only the walk can object). */
	char *menu = cat(BASE_MENU, "[screen lonely]\nkind = info\n");
	char *texts = cat(BASE_SCREENS, "lonely = Nobody comes here.\n");
	fails_(menu, texts, texts, "menu.ini", 43, "screen 'lonely' cannot be reached", HF_EINVAL, __LINE__);
	free(menu);
	free(texts);
	/* An action whose input is never asked on the way. */
	char *m2 = repl(BASE_MENU, "2 = info", "2 = send");
	char *m3 = cat(m2, "[screen send]\nkind = action\naction = lodge_grievance\nok = done\nduplicate = done\n"
			   "[screen ask]\nkind = input\nrule = text:100\nfield = description\nnext = send\n");
	char *t3 = repl(BASE_SCREENS, "home.2 = Info", "home.2 = Complain\nask = Tell us:\nask.retry = Again:");
	fails_(m3, t3, t3, "menu.ini", 45, "needs the field 'category', which no input or option fills", HF_EINVAL,
	       __LINE__);
	/* ... filled on one way but not on another */
	char *m4 = repl(m3, "2 = send", "2 = ask\n3 = send category=other");
	char *t4 = repl(t3, "home.2 = Complain", "home.2 = Complain\nhome.3 = Quick");
	fails_(m4, t4, t4, "menu.ini", 46, "on some way to screen 'send' it is not filled", HF_EINVAL, __LINE__);
	char *m5 = repl(m4, "2 = ask\n", "2 = ask category=other\n");
	char *m6 = repl(m5, "3 = send category=other", "3 = ask category=payment");
	LOADS(m6, t4, t4);
	/* same: must name a field */
	char *m7 = repl(m6, "rule = text:100\nfield = description", "rule = same:nothing");
	fails_(m7, t4, t4, "menu.ini", 51, "same:nothing: no input screen has field nothing", HF_EINVAL, __LINE__);
	free(m2);
	free(m3);
	free(t3);
	free(m4);
	free(t4);
	free(m5);
	free(m6);
	free(m7);
}

static void test_language_errors(void)
{
	/* a missing text, named with the line of menu.ini that needs it */
	char *s = repl(BASE_SCREENS, "home.2 = Info\n", "");
	fails_(BASE_MENU, BASE_SCREENS, s, "sw.ini", 1, "missing text 'home.2' in [screens] (menu.ini:12 needs it)",
	       HF_EINVAL, __LINE__);
	free(s);
	char *fixed = repl(FIXED_SW, "busy = Busy.\nerror", "error");
	char *sw = cat(BASE_SCREENS, fixed);
	struct folder f;
	char *en_all = cat(BASE_SCREENS, FIXED_EN);
	load_folder(&f, (const char *const[]){"menu.ini", BASE_MENU, "en.ini", en_all, "sw.ini", sw, NULL});
	HF_CHECK_MSG(f.rc == HF_EINVAL && strstr(f.msg, "sw.ini:15: missing 'busy' in [ussd]"), "%s", f.msg);
	unload_folder(&f);
	free(fixed);
	free(sw);
	free(en_all);
	/* unknown texts and sections, duplicates */
	TEXT_FAILS("done = Done.\n", "done = Done.\ndone.1 = Extra\n", 11, "unknown text 'done.1'");
	TEXT_FAILS("done = Done.\n", "done = Done.\nhome.3 = Extra\n", 11, "unknown text 'home.3'");
	TEXT_FAILS("done = Done.\n", "done = Done.\ndone = Again.\n", 11, "'done' again in [screens] (first at line 10)");
	TEXT_FAILS("[screens]\n", "[screen]\n", 1, "unknown section [screen]");
	/* texts: placeholders, escapes, labels, sizes */
	TEXT_FAILS("info = Some information.", "info = Call {helpdesk}.", 7, "unknown placeholder {helpdesk}");
	TEXT_FAILS("info = Some information.", "info = Call {helpline.", 7, "a '{' without its '}'");
	TEXT_FAILS("info = Some information.", "info = Call } now.", 7, "a '}' without its '{'");
	TEXT_FAILS("info = Some information.", "info = You are in {programme}.", 7,
		   "{programme} has no value on some way to this screen");
	TEXT_FAILS("done = Done.", "done = Done, {programme}.", 10, "{programme} has no value on some way");
	TEXT_FAILS("info = Some information.", "info = Your PIN is {pin}.", 7, "{pin} is a PIN or a code");
	TEXT_FAILS("info = Some information.", "info = Tab\\there.", 7, "the only escapes are \\n");
	TEXT_FAILS("home.1 = Status", "home.1 = Status\\nsecond line", 3, "a label is one line");
	TEXT_FAILS("home.1 = Status", "home.1 =", 3, "'home.1' is empty");
	char long_text[400];
	memset(long_text, 'a', 190);
	long_text[190] = '\0';
	char line[600];
	snprintf(line, sizeof(line), "info = %s", long_text);
	TEXT_FAILS("info = Some information.", line, 7,
		   "'info' does not fit one screen: with the longest values it takes 190 GSM-7 characters; a screen "
		   "holds 182");
	/* the same length fits as a non-END screen only if there is room for 0 Back 00 Home */
	char shorter[600];
	memset(long_text, 'a', 170);
	long_text[170] = '\0';
	snprintf(shorter, sizeof(shorter), "home = %s", long_text);
	TEXT_FAILS("home = Home menu", shorter, 2, "'home' does not fit one screen with the lines the engine adds");
	/* one character outside GSM-7 makes the screen UCS-2: 80 */
	snprintf(line, sizeof(line), "info = %s", "Maelezo ya ŋombe: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	TEXT_FAILS("info = Some information.", line, 7, "U+014B is not in the GSM-7 alphabet");
	/* {programme} in a text after the action that gives it is fine */
	char *ok = repl(BASE_SCREENS, "done = Done.", "done = Done.");
	char *m = repl(BASE_MENU, "pending = done\nsuspended = done\nexited = done\nnot_found = done\n",
		       "pending = oops\nsuspended = oops\nexited = oops\nnot_found = oops\n");
	char *t = repl(ok, "done = Done.", "done = You are in {programme} since {since}.");
	LOADS(m, t, t);
	free(ok);
	free(m);
	free(t);
	/* SMS: one SMS with the longest values */
	char sms[600];
	memset(long_text, 'b', 151);
	long_text[151] = '\0';
	snprintf(sms, sizeof(sms), "grievance = %s {ref}", long_text);
	char *fixed_en = repl(FIXED_EN, "grievance = {ref}", sms);
	char *en2 = cat(BASE_SCREENS, fixed_en);
	char *sw2 = cat(BASE_SCREENS, FIXED_SW);
	load_folder(&f, (const char *const[]){"menu.ini", BASE_MENU, "en.ini", en2, "sw.ini", sw2, NULL});
	HF_CHECK_MSG(f.rc == HF_EINVAL && strstr(f.msg, "en.ini:34: sms.grievance: with the longest values it takes 161 GSM-7 characters; one SMS "
					  "holds 160"),
		     "%s", f.msg);
	unload_folder(&f);
	free(fixed_en);
	free(en2);
	/* keywords: one meaning per word across languages */
	char *fixed_sw = repl(FIXED_SW, "kw_stop = SIMAMISHA", "kw_stop = SIMAMISHA, HELP");
	char *sw3 = cat(BASE_SCREENS, fixed_sw);
	char *en3 = cat(BASE_SCREENS, FIXED_EN);
	load_folder(&f, (const char *const[]){"menu.ini", BASE_MENU, "en.ini", en3, "sw.ini", sw3, NULL});
	HF_CHECK_MSG(f.rc == HF_EINVAL && strstr(f.msg, "sw.ini:") && strstr(f.msg, "keyword HELP is already another "
										    "keyword in en.ini"),
		     "%s", f.msg);
	unload_folder(&f);
	free(fixed_sw);
	free(sw3);
	fixed_sw = repl(FIXED_SW, "kw_stop = SIMAMISHA", "kw_stop = SIMA MISHA");
	sw3 = cat(BASE_SCREENS, fixed_sw);
	load_folder(&f, (const char *const[]){"menu.ini", BASE_MENU, "en.ini", en3, "sw.ini", sw3, NULL});
	HF_CHECK_MSG(f.rc == HF_EINVAL && strstr(f.msg, "keyword 'SIMA MISHA' is 2 to 20 letters"), "%s", f.msg);
	unload_folder(&f);
	free(fixed_sw);
	free(sw3);
	free(en3);
	free(sw2);
}

static void test_folder_errors(void)
{
	struct folder f;
	char *en = cat(BASE_SCREENS, FIXED_EN);
	char *sw = cat(BASE_SCREENS, FIXED_SW);
	/* a language listed without its file */
	load_folder(&f, (const char *const[]){"menu.ini", BASE_MENU, "en.ini", en, NULL});
	HF_CHECK_MSG(f.rc == HF_EIO && strstr(f.msg, "/sw.ini: cannot open"), "%s", f.msg);
	unload_folder(&f);
	/* a language file nobody reads */
	load_folder(&f, (const char *const[]){"menu.ini", BASE_MENU, "en.ini", en, "sw.ini", sw, "de.ini", en, NULL});
	char want[128];
	snprintf(want, sizeof(want), "%s/menu.ini:2: de.ini is in the folder but not in languages", f.dir);
	HF_CHECK_MSG(f.rc == HF_EINVAL && strstr(f.msg, want), "%s", f.msg);
	unload_folder(&f);
	/* no menu.ini at all */
	load_folder(&f, (const char *const[]){"en.ini", en, NULL});
	HF_CHECK_MSG(f.rc == HF_EIO && strstr(f.msg, "/menu.ini: cannot open"), "%s", f.msg);
	unload_folder(&f);
	/* a file past the cap is refused before it is parsed */
	char *big = hf_xcalloc(1, MENU_FILE_MAX + 10);
	memset(big, ';', MENU_FILE_MAX + 5);
	load_folder(&f, (const char *const[]){"menu.ini", big, "en.ini", en, "sw.ini", sw, NULL});
	HF_CHECK_MSG(f.rc == HF_ETOOBIG && strstr(f.msg, "larger than 256 KiB"), "%s", f.msg);
	unload_folder(&f);
	free(big);
	/* a long line */
	char *longline = hf_xcalloc(1, 2000);
	memset(longline, 'x', 1500);
	char *m = cat(BASE_MENU, longline);
	load_folder(&f, (const char *const[]){"menu.ini", m, "en.ini", en, "sw.ini", sw, NULL});
	HF_CHECK_MSG(f.rc == HF_EINVAL && strstr(f.msg, "menu.ini:43: line longer than 1024 bytes"), "%s", f.msg);
	unload_folder(&f);
	free(longline);
	free(m);
	free(en);
	free(sw);
}

/* ---- the shipped menus ------------------------------------------------------------------------------------ */

static bool lang_is(const char *text, const char *code)
{
	const char *got = menu_language_find(g_m, text);
	return got && strcmp(got, code) == 0;
}

static void test_shipped(void)
{
	struct hf_buf err;
	hf_buf_init(&err, 1024);
	hf_err rc = menu_load(SHIPPED, &g_m, &err);
	HF_CHECK_MSG(rc == HF_OK, "%s", hf_buf_cstr(&err));
	hf_buf_release(&err);
	if (rc)
		return;
	HF_CHECK(strcmp(menu_default_language(g_m), "sw") == 0);
	HF_CHECK(menu_has_language(g_m, "en") && menu_has_language(g_m, "sw") && menu_has_language(g_m, "fr"));
	HF_CHECK(!menu_has_language(g_m, "so") && !menu_has_language(g_m, NULL));
	HF_CHECK(g_m->n_langs == 3 && g_m->n_screens > 60);
	/* every action the gateway implements is used by the shipped menus */
	for (size_t a = 0; a < HF_ARRAY_LEN(actions); a++) {
		bool used = false;
		for (size_t i = 0; i < g_m->n_screens; i++)
			used = used || (g_m->screens[i].kind == K_ACTION && g_m->screens[i].action == (int)a);
		HF_CHECK_MSG(used, "action %s", actions[a].name);
	}
	/* language names */
	HF_CHECK(lang_is("SW", "sw"));
	HF_CHECK(lang_is(" kiswahili ", "sw"));
	HF_CHECK(lang_is("Français", "fr"));
	HF_CHECK(lang_is("francais", "fr"));
	HF_CHECK(lang_is("ENGLISH", "en"));
	HF_CHECK(lang_is("Kiingereza", "en"));
	HF_CHECK(menu_language_find(g_m, "Deutsch") == NULL && menu_language_find(g_m, "") == NULL);
}

/* ---- sessions: helpers ------------------------------------------------------------------------------------ */

struct sess {
	struct menu_session s;
	struct menu_out out;
	hf_err rc;
};

static void start(struct sess *x, const char *lang, bool registered)
{
	menu_start(g_m, &x->s, lang, registered);
	x->rc = menu_step(g_m, &x->s, NULL, &x->out);
}

static bool out_is(const struct sess *x, enum menu_out_kind kind, const char *screen)
{
	return x->rc == HF_OK && x->out.kind == kind && x->out.screen && strcmp(x->out.screen, screen) == 0 &&
	       (kind == MENU_OUT_ACTION || fits_ussd(x->out.text));
}

static const char *kind_name(enum menu_out_kind k)
{
	return k == MENU_OUT_CON ? "CON" : k == MENU_OUT_END ? "END" : "ACTION";
}

#define STEP(x, in, kind, screen) step_((x), (in), MENU_OUT_##kind, (screen), __LINE__)
static void step_(struct sess *x, const char *in, enum menu_out_kind kind, const char *screen, int at)
{
	x->rc = menu_step(g_m, &x->s, in, &x->out);
	hf_test_check_(out_is(x, kind, screen), __FILE__, at, "step", "input '%s': want %s %s, got rc %d %s %s: %s", in,
		       kind_name(kind), screen, (int)x->rc, kind_name(x->out.kind), x->out.screen ? x->out.screen : "-",
		       x->out.text);
}

/* Feeds an outcome with name, value pairs. */
#define RESULT(x, outcome, kind, screen, ...)                                                                          \
	result_((x), (outcome), (const char *const[]){__VA_ARGS__, NULL}, MENU_OUT_##kind, (screen), __LINE__)
#define RESULT0(x, outcome, kind, screen) result_((x), (outcome), NULL, MENU_OUT_##kind, (screen), __LINE__)
static void result_(struct sess *x, const char *outcome, const char *const *kv, enum menu_out_kind kind,
		    const char *screen, int at)
{
	struct menu_kv params[MENU_PARAMS_MAX + 2];
	size_t n = 0;
	for (size_t i = 0; kv && kv[i] && n < HF_ARRAY_LEN(params); i += 2)
		params[n++] = (struct menu_kv){kv[i], kv[i + 1]};
	x->rc = menu_action_result(g_m, &x->s, outcome, params, n, &x->out);
	hf_test_check_(out_is(x, kind, screen), __FILE__, at, "result", "outcome '%s': want %s %s, got rc %d %s %s: %s",
		       outcome, kind_name(kind), screen, (int)x->rc, kind_name(x->out.kind),
		       x->out.screen ? x->out.screen : "-", x->out.text);
}

/* The pending action request: its name and exactly these params (name, value pairs). */
#define ACTION(x, name, ...) action_((x), (name), (const char *const[]){__VA_ARGS__, NULL}, __LINE__)
#define ACTION0(x, name) action_((x), (name), (const char *const[]){NULL}, __LINE__)
static void action_(const struct sess *x, const char *name, const char *const *kv, int at)
{
	bool ok = x->out.kind == MENU_OUT_ACTION && x->out.action && strcmp(x->out.action, name) == 0;
	size_t n = 0;
	for (; kv[n * 2]; n++) {
		bool found = false;
		for (size_t i = 0; i < x->out.n_params; i++)
			found = found || (strcmp(x->out.params[i].name, kv[n * 2]) == 0 &&
					  strcmp(x->out.params[i].value, kv[n * 2 + 1]) == 0);
		ok = ok && found;
	}
	ok = ok && n == x->out.n_params;
	hf_test_check_(ok, __FILE__, at, "action request", "want %s with %zu params, got %s %s with %zu", name, n,
		       kind_name(x->out.kind), x->out.action ? x->out.action : "-", x->out.n_params);
}

#define SHOWS(x, needle) hf_test_check_(strstr((x)->out.text, (needle)) != NULL, __FILE__, __LINE__, "shows", "'%s' not in '%s'", (needle), (x)->out.text)
#define HIDES(x, needle) hf_test_check_(strstr((x)->out.text, (needle)) == NULL, __FILE__, __LINE__, "hides", "'%s' in '%s'", (needle), (x)->out.text)

/* A valid complaint number (9 digits, Damm check digit). */
static const char *sample_ref(void)
{
	static char ref[10];
	if (!ref[0]) {
		memcpy(ref, "20451873", 8);
		ref[8] = (char)hf_check_compute(HF_CHECK_DAMM, ref, 8);
	}
	return ref;
}

/* Through the PIN check with 4821. */
static void pin_ok(struct sess *x)
{
	STEP(x, "4821", ACTION, "pin_check");
	ACTION(x, "verify_pin", "pin", "4821");
	HF_CHECK(x->out.n_params == 1 && x->out.secret[0]);
}

/* ---- sessions: one per service ------------------------------------------------------------------------ */

/* A dialled shortcut may choose from lists of options only: never type into a PIN, text or reference screen. */
static void test_shortcut_screens(void)
{
	struct sess x;
	start(&x, "sw", true);
	HF_CHECK(menu_session_takes_shortcut(g_m, &x.s)); /* home */
	STEP(&x, "4", CON, "grievance_category");
	HF_CHECK(menu_session_takes_shortcut(g_m, &x.s));
	STEP(&x, "3", CON, "grievance_text");
	HF_CHECK(!menu_session_takes_shortcut(g_m, &x.s)); /* the complaint's words */
	start(&x, "en", true);
	STEP(&x, "2", CON, "pin_login");
	HF_CHECK(!menu_session_takes_shortcut(g_m, &x.s)); /* the PIN */
	STEP(&x, "4821", ACTION, "pin_check");
	HF_CHECK(!menu_session_takes_shortcut(g_m, &x.s)); /* waiting for core */
	start(&x, "en", false);
	HF_CHECK(menu_session_takes_shortcut(g_m, &x.s)); /* the guest menu */
	menu_session_release(&x.s);
}

static void test_enrolment(void)
{
	struct sess x;
	start(&x, "en", true);
	HF_CHECK(out_is(&x, MENU_OUT_CON, "home"));
	SHOWS(&x, "Hifadhi. Please choose:\n1. My enrolment\n2. Next payment");
	HIDES(&x, "0. Back"); /* the start screen has nowhere to go back to */
	STEP(&x, "1", CON, "pin_login");
	SHOWS(&x, "Please enter your 4-digit PIN:\n0. Back  00. Home");
	pin_ok(&x);
	RESULT0(&x, "ok", ACTION, "enrolment");
	ACTION0(&x, "enrolment_status");
	RESULT(&x, "ok", CON, "enrolment_ok", "programme", "Inua Jamii 70+", "since", "2023-01-15");
	HF_CHECK(strcmp(x.out.text, "You are enrolled in Inua Jamii 70+ since 2023-01-15.\n0. Back  00. Home") == 0);
	HIDES(&x, "4821");
	STEP(&x, "0", CON, "home"); /* back goes to the menu, not to the PIN screen */
	/* the other outcomes */
	const char *const outcomes[][2] = {{"pending", "enrolment_pending"}, {"suspended", "enrolment_suspended"},
					   {"exited", "enrolment_exited"},   {"not_found", "enrolment_none"},
					   {"error", "service_error"},	     {"busy", "service_busy"}};
	for (size_t i = 0; i < HF_ARRAY_LEN(outcomes); i++) {
		start(&x, "sw", true);
		STEP(&x, "1", CON, "pin_login");
		pin_ok(&x);
		RESULT0(&x, "ok", ACTION, "enrolment");
		x.rc = menu_action_result(g_m, &x.s, outcomes[i][0], NULL, 0, &x.out);
		HF_CHECK_MSG(x.rc == HF_OK && strcmp(x.out.screen, outcomes[i][1]) == 0, "%s -> %s", outcomes[i][0],
			     x.out.screen);
	}
	/* a result parameter the outcome does not give, or an outcome the action does not have: the error
	 * screen, and HF_EINVAL for the gateway's log */
	start(&x, "en", true);
	STEP(&x, "1", CON, "pin_login");
	pin_ok(&x);
	RESULT0(&x, "ok", ACTION, "enrolment");
	struct menu_kv bad = {"amount", "10"};
	x.rc = menu_action_result(g_m, &x.s, "pending", &bad, 1, &x.out);
	HF_CHECK(x.rc == HF_EINVAL && x.out.kind == MENU_OUT_END && strcmp(x.out.screen, "service_error") == 0);
	start(&x, "en", true);
	STEP(&x, "1", CON, "pin_login");
	pin_ok(&x);
	x.rc = menu_action_result(g_m, &x.s, "maybe", NULL, 0, &x.out);
	HF_CHECK(x.rc == HF_EINVAL && strcmp(x.out.screen, "service_error") == 0);
}

static void test_payments(void)
{
	struct sess x;
	start(&x, "en", true);
	STEP(&x, "2", CON, "pin_login");
	pin_ok(&x);
	RESULT0(&x, "ok", ACTION, "payment_next");
	ACTION0(&x, "next_payment");
	RESULT(&x, "ok", CON, "payment_next_ok", "amount", "4,000.00", "currency", "KES", "date", "2026-03-01",
	       "pay_point", "Kibera-3 kiosk");
	SHOWS(&x, "Your next payment: KES 4,000.00 from 2026-03-01 at Kibera-3 kiosk.");
	/* the PIN is asked once per session: last payments goes straight to the action */
	STEP(&x, "00", CON, "home");
	STEP(&x, "3", ACTION, "payments_last");
	ACTION0(&x, "last_payments");
	RESULT(&x, "ok", CON, "payments_last_ok", "currency", "KES", "list",
	       "2026-02-01 4,000.00\n2026-01-02 4,000.00\n2025-12-01 4,000.00");
	SHOWS(&x, "Your last payments (KES):\n2026-02-01 4,000.00\n2026-01-02 4,000.00\n2025-12-01 4,000.00\n0. Back");
	STEP(&x, "00", CON, "home");
	STEP(&x, "2", ACTION, "payment_next");
	RESULT0(&x, "none", CON, "payment_next_none");
	STEP(&x, "00", CON, "home");
	STEP(&x, "2", ACTION, "payment_next");
	RESULT0(&x, "on_hold", CON, "payment_next_hold");
	SHOWS(&x, "0800 000 000"); /* [values] helpline */
	STEP(&x, "00", CON, "home");
	STEP(&x, "3", ACTION, "payments_last");
	RESULT0(&x, "none", CON, "payments_last_none");
	STEP(&x, "00", CON, "home");
	STEP(&x, "3", ACTION, "payments_last");
	RESULT0(&x, "busy", END, "service_busy");
	HF_CHECK(x.s.ended);
	/* after END, a stray input is refused with an END, never a crash */
	x.rc = menu_step(g_m, &x.s, "1", &x.out);
	HF_CHECK(x.rc == HF_ECONFLICT && x.out.kind == MENU_OUT_END);
}

static void test_grievance(void)
{
	struct sess x;
	start(&x, "sw", true);
	STEP(&x, "4", CON, "grievance_category");
	SHOWS(&x, "Malalamiko kuhusu:\n1. Sikupokea malipo");
	STEP(&x, "3", CON, "grievance_text");
	STEP(&x, "   ", CON, "grievance_text"); /* nothing typed: the retry text */
	SHOWS(&x, "herufi 140");
	STEP(&x, "Wakala aliniomba shilingi 500", CON, "grievance_confirm");
	STEP(&x, "1", ACTION, "grievance_send");
	ACTION(&x, "lodge_grievance", "category", "agent_demanded_money", "description", "Wakala aliniomba shilingi 500");
	HF_CHECK(!x.out.secret[0] && !x.out.secret[1]);
	RESULT(&x, "ok", END, "grievance_done", "ref", sample_ref());
	SHOWS(&x, sample_ref());
	/* the same from an unknown phone (anonymous), and cancelled */
	start(&x, "en", false);
	HF_CHECK(out_is(&x, MENU_OUT_CON, "guest"));
	STEP(&x, "3", CON, "grievance_category");
	STEP(&x, "5", CON, "grievance_text");
	STEP(&x, "I was left out", CON, "grievance_confirm");
	STEP(&x, "2", END, "grievance_cancelled");
	start(&x, "en", false);
	STEP(&x, "3", CON, "grievance_category");
	STEP(&x, "7", CON, "grievance_text");
	STEP(&x, "Again the same", CON, "grievance_confirm");
	STEP(&x, "1", ACTION, "grievance_send");
	ACTION(&x, "lodge_grievance", "category", "other", "description", "Again the same");
	RESULT(&x, "duplicate", END, "grievance_dup", "ref", sample_ref());
	/* a text longer than text:140 is refused */
	char long_in[200];
	memset(long_in, 'a', 141);
	long_in[141] = '\0';
	start(&x, "en", true);
	STEP(&x, "4", CON, "grievance_category");
	STEP(&x, "1", CON, "grievance_text");
	STEP(&x, long_in, CON, "grievance_text");
	SHOWS(&x, "at most 140 letters");
	/* complaint status: PIN, a checked number, each outcome */
	start(&x, "fr", true);
	STEP(&x, "5", CON, "pin_login");
	pin_ok(&x);
	RESULT0(&x, "ok", CON, "grievance_ref"); /* resumed: the screen that asked for the PIN */
	STEP(&x, "204518730", CON, "grievance_ref"); /* a wrong check digit */
	SHOWS(&x, "Ce numéro n'est pas bon");
	STEP(&x, sample_ref(), ACTION, "grievance_check");
	ACTION(&x, "grievance_status", "case_ref", sample_ref());
	RESULT(&x, "open", CON, "grievance_open", "ref", sample_ref(), "date", "2026-03-02");
	SHOWS(&x, "en cours de traitement. Dernière mise à jour le 2026-03-02.");
	STEP(&x, "0", CON, "home"); /* back to the menu, not to the number typed */
	STEP(&x, "5", CON, "grievance_ref");
	STEP(&x, sample_ref(), ACTION, "grievance_check");
	RESULT0(&x, "not_found", CON, "grievance_unknown");
	SHOWS(&x, sample_ref()); /* the number typed is shown back */
}

static void test_pin_services(void)
{
	struct sess x;
	/* create a PIN: typed twice, a mismatch retried */
	start(&x, "en", true);
	STEP(&x, "6", CON, "pin_menu");
	STEP(&x, "1", CON, "pin_new");
	STEP(&x, "12345", CON, "pin_new");
	SHOWS(&x, "A PIN has 4 digits");
	STEP(&x, "7391", CON, "pin_new_again");
	HIDES(&x, "7391");
	STEP(&x, "7392", CON, "pin_new_again");
	SHOWS(&x, "The two PINs are not the same");
	STEP(&x, "7391", ACTION, "pin_set");
	ACTION(&x, "set_pin", "new_pin", "7391");
	HF_CHECK(x.out.secret[0]);
	RESULT0(&x, "ok", END, "pin_set_done");
	HF_CHECK(!(x.s.have & 0xFF));
	for (size_t f = 0; f < MENU_FIELDS_MAX; f++)
		HF_CHECK(strstr(x.s.fields[f], "7391") == NULL); /* wiped */
	start(&x, "en", true);
	STEP(&x, "6", CON, "pin_menu");
	STEP(&x, "1", CON, "pin_new");
	STEP(&x, "1111", CON, "pin_new_again");
	STEP(&x, "1111", ACTION, "pin_set");
	RESULT0(&x, "weak", CON, "pin_weak");
	STEP(&x, "0", CON, "pin_menu");
	STEP(&x, "1", CON, "pin_new");
	STEP(&x, "2580", CON, "pin_new_again");
	STEP(&x, "2580", ACTION, "pin_set");
	RESULT0(&x, "already_set", CON, "pin_already");
	/* change: old, new, new again */
	start(&x, "sw", true);
	STEP(&x, "6", CON, "pin_menu");
	STEP(&x, "2", CON, "pin_old");
	STEP(&x, "4821", CON, "pin_change_new");
	STEP(&x, "9034", CON, "pin_change_again");
	STEP(&x, "9034", ACTION, "pin_change");
	ACTION(&x, "change_pin", "pin", "4821", "new_pin", "9034");
	HF_CHECK(x.out.secret[0] && x.out.secret[1]);
	RESULT(&x, "wrong", CON, "pin_change_wrong", "tries_left", "2");
	SHOWS(&x, "Umebakiza majaribio 2.");
	STEP(&x, "0", CON, "pin_menu");
	STEP(&x, "2", CON, "pin_old");
	STEP(&x, "4822", CON, "pin_change_new");
	STEP(&x, "9034", CON, "pin_change_again");
	STEP(&x, "9034", ACTION, "pin_change");
	RESULT0(&x, "ok", END, "pin_changed");
	start(&x, "sw", true);
	STEP(&x, "6", CON, "pin_menu");
	STEP(&x, "2", CON, "pin_old");
	STEP(&x, "4822", CON, "pin_change_new");
	STEP(&x, "9034", CON, "pin_change_again");
	STEP(&x, "9034", ACTION, "pin_change");
	RESULT0(&x, "locked", END, "pin_locked");
	/* forgotten: a code by SMS, then a new PIN */
	start(&x, "fr", true);
	STEP(&x, "6", CON, "pin_menu");
	STEP(&x, "3", ACTION, "pin_reset");
	ACTION0(&x, "reset_pin_request");
	RESULT0(&x, "ok", CON, "pin_reset_code");
	STEP(&x, "12345", CON, "pin_reset_code");
	STEP(&x, "583920", CON, "pin_reset_new");
	STEP(&x, "6614", CON, "pin_reset_again");
	STEP(&x, "6614", ACTION, "pin_reset_done");
	ACTION(&x, "reset_pin_confirm", "code", "583920", "new_pin", "6614");
	HF_CHECK(x.out.secret[0] && x.out.secret[1]);
	RESULT0(&x, "ok", END, "pin_set_done");
	const char *const reset_outcomes[][2] = {{"wrong", "pin_reset_bad"}, {"expired", "pin_reset_expired"},
						 {"weak", "pin_weak"}};
	for (size_t i = 0; i < HF_ARRAY_LEN(reset_outcomes); i++) {
		start(&x, "fr", true);
		STEP(&x, "6", CON, "pin_menu");
		STEP(&x, "3", ACTION, "pin_reset");
		RESULT0(&x, "ok", CON, "pin_reset_code");
		STEP(&x, "583920", CON, "pin_reset_new");
		STEP(&x, "6614", CON, "pin_reset_again");
		STEP(&x, "6614", ACTION, "pin_reset_done");
		x.rc = menu_action_result(g_m, &x.s, reset_outcomes[i][0], NULL, 0, &x.out);
		HF_CHECK_MSG(x.rc == HF_OK && strcmp(x.out.screen, reset_outcomes[i][1]) == 0, "%s", x.out.screen);
	}
	start(&x, "fr", true);
	STEP(&x, "6", CON, "pin_menu");
	STEP(&x, "3", ACTION, "pin_reset");
	RESULT(&x, "too_soon", END, "pin_reset_wait", "minutes", "10");
	SHOWS(&x, "Attendez 10 minutes");
	start(&x, "fr", true);
	STEP(&x, "6", CON, "pin_menu");
	STEP(&x, "3", ACTION, "pin_reset");
	RESULT0(&x, "not_found", END, "pin_reset_none");
}

static void test_pin_check(void)
{
	struct sess x;
	/* a wrong PIN: the count left, then right */
	start(&x, "en", true);
	STEP(&x, "1", CON, "pin_login");
	pin_ok(&x);
	RESULT(&x, "wrong", CON, "pin_wrong", "tries_left", "2");
	SHOWS(&x, "Wrong PIN. You have 2 tries left.");
	HIDES(&x, "4821");
	STEP(&x, "4822", ACTION, "pin_check");
	ACTION(&x, "verify_pin", "pin", "4822");
	RESULT0(&x, "ok", ACTION, "enrolment");
	RESULT(&x, "ok", CON, "enrolment_ok", "programme", "OPCT", "since", "2020-07-01");
	HF_CHECK(x.s.pin_ok);
	/* locked, and no PIN yet */
	start(&x, "en", true);
	STEP(&x, "7", CON, "pin_login");
	pin_ok(&x);
	RESULT0(&x, "locked", END, "pin_locked");
	SHOWS(&x, "*384#");
	start(&x, "en", true);
	STEP(&x, "7", CON, "pin_login");
	pin_ok(&x);
	RESULT0(&x, "not_set", CON, "pin_not_set");
	STEP(&x, "1", CON, "pin_new");
	/* back from the PIN screen forgets the screen that asked for it */
	start(&x, "en", true);
	STEP(&x, "2", CON, "pin_login");
	STEP(&x, "0", CON, "home");
	HF_CHECK(x.s.resume == MENU_NONE);
	/* never in a rendered text, and wiped once verify_pin answered */
	start(&x, "en", true);
	STEP(&x, "1", CON, "pin_login");
	STEP(&x, "4821", ACTION, "pin_check");
	RESULT0(&x, "error", END, "service_error");
	for (size_t f = 0; f < MENU_FIELDS_MAX; f++)
		HF_CHECK(strstr(x.s.fields[f], "4821") == NULL);
}

static void test_phone_and_language(void)
{
	struct sess x;
	start(&x, "en", true);
	STEP(&x, "7", CON, "pin_login");
	pin_ok(&x);
	RESULT0(&x, "ok", CON, "phone_new");
	STEP(&x, "12345", CON, "phone_new");
	SHOWS(&x, "This is not a phone number");
	STEP(&x, "0722000111", CON, "phone_confirm");
	SHOWS(&x, "New number: 0722000111. Is it right?");
	STEP(&x, "2", CON, "phone_new");
	STEP(&x, "+254722000112", CON, "phone_confirm");
	STEP(&x, "1", ACTION, "phone_send");
	ACTION(&x, "report_phone_change", "phone", "+254722000112");
	HF_CHECK(!x.out.secret[0]);
	RESULT(&x, "ok", END, "phone_done", "ref", sample_ref());
	start(&x, "en", true);
	STEP(&x, "7", CON, "pin_login");
	pin_ok(&x);
	RESULT0(&x, "ok", CON, "phone_new");
	STEP(&x, "0722000111", CON, "phone_confirm");
	STEP(&x, "1", ACTION, "phone_send");
	RESULT0(&x, "same", CON, "phone_same");
	/* language: the result screen is already in the new language */
	start(&x, "en", true);
	STEP(&x, "8", CON, "language");
	SHOWS(&x, "3. Français");
	STEP(&x, "3", ACTION, "lang_set");
	ACTION(&x, "set_language", "lang", "fr");
	RESULT0(&x, "ok", CON, "lang_done");
	HF_CHECK(strcmp(x.out.text, "Votre langue est maintenant le français.\n0. Retour  00. Accueil") == 0);
	HF_CHECK(strcmp(menu_session_lang(&x.s), "fr") == 0);
	STEP(&x, "00", CON, "home");
	SHOWS(&x, "Hifadhi. Choisissez :");
	/* a failed change keeps the language */
	start(&x, "en", false);
	STEP(&x, "4", CON, "language");
	STEP(&x, "1", ACTION, "lang_set");
	RESULT0(&x, "error", END, "service_error");
	HF_CHECK(strcmp(menu_session_lang(&x.s), "en") == 0);
	/* help and the unknown phone's information */
	start(&x, "sw", true);
	STEP(&x, "9", CON, "help");
	SHOWS(&x, "Msaada bure: 0800 000 000");
	start(&x, "sw", false);
	STEP(&x, "1", CON, "register_info");
	STEP(&x, "0", CON, "guest");
	STEP(&x, "2", CON, "office_info");
	/* language fallback: not shipped, or none, gives the default */
	start(&x, "so", true);
	HF_CHECK(strcmp(menu_session_lang(&x.s), "sw") == 0);
	SHOWS(&x, "Hifadhi. Chagua:");
	start(&x, NULL, false);
	HF_CHECK(strcmp(menu_session_lang(&x.s), "sw") == 0);
}

/* ---- navigation, pages, retries ---------------------------------------------------------------------- */

static void test_navigation(void)
{
	struct sess x;
	start(&x, "en", true);
	STEP(&x, "0", CON, "home"); /* nothing to go back to: not a choice */
	SHOWS(&x, "Sorry, that is not one of the choices.");
	STEP(&x, "00", CON, "home");
	SHOWS(&x, "Sorry, that is not one of the choices.");
	STEP(&x, "6", CON, "pin_menu");
	STEP(&x, "2", CON, "pin_old");
	STEP(&x, "0", CON, "pin_menu");
	STEP(&x, "1", CON, "pin_new");
	STEP(&x, "00", CON, "home");
	HF_CHECK(x.s.depth == 0);
	/* back, step by step, to the start screen forgets what was typed on the way */
	STEP(&x, "4", CON, "grievance_category");
	STEP(&x, "2", CON, "grievance_text");
	STEP(&x, "Too little", CON, "grievance_confirm");
	HF_CHECK(x.s.have != 0);
	STEP(&x, "0", CON, "grievance_text");
	STEP(&x, "0", CON, "grievance_category");
	STEP(&x, "0", CON, "home");
	HF_CHECK(x.s.have == 0 && x.s.depth == 0);
	STEP(&x, " 9 ", CON, "help"); /* spaces around an input are ignored */
	STEP(&x, "5", CON, "help"); /* an info screen only goes back */
	STEP(&x, "0", CON, "home");
	/* NULL shows the current screen again, unchanged */
	char before[MENU_TEXT_MAX + 1];
	hf_strlcpy(before, x.out.text, sizeof(before));
	x.rc = menu_step(g_m, &x.s, NULL, &x.out);
	HF_CHECK(x.rc == HF_OK && strcmp(before, x.out.text) == 0);
	/* an input past the cap is just an invalid one */
	char huge[MENU_INPUT_MAX + 50];
	memset(huge, '1', sizeof(huge) - 1);
	huge[sizeof(huge) - 1] = '\0';
	STEP(&x, huge, CON, "home");
	SHOWS(&x, "not one of the choices");
	/* an action pending: a step is refused until its result */
	start(&x, "en", true);
	STEP(&x, "1", CON, "pin_login");
	STEP(&x, "4821", ACTION, "pin_check");
	x.rc = menu_step(g_m, &x.s, "1", &x.out);
	HF_CHECK(x.rc == HF_ECONFLICT && x.out.kind == MENU_OUT_END);
	/* a result with nothing pending */
	start(&x, "en", true);
	x.rc = menu_action_result(g_m, &x.s, "ok", NULL, 0, &x.out);
	HF_CHECK(x.rc == HF_ECONFLICT && x.out.kind == MENU_OUT_END);
}

static void test_pages(void)
{
	struct sess x;
	/* "not a choice" above the home menu in Swahili needs two pages: 98 shows the rest */
	start(&x, "sw", true);
	STEP(&x, "x", CON, "home");
	SHOWS(&x, "Samahani");
	SHOWS(&x, "98. Zaidi");
	HIDES(&x, "9. Msaada");
	STEP(&x, "98", CON, "home");
	SHOWS(&x, "9. Msaada");
	HIDES(&x, "98. Zaidi");
	SHOWS(&x, "0. Rudi"); /* on the start screen, 0 goes to the previous page */
	HIDES(&x, "00.");
	STEP(&x, "98", CON, "home"); /* past the last page: not a choice, as any other input */
	STEP(&x, "9", CON, "help"); /* an option of any page is accepted */
	/* a result longer than a screen is split at word boundaries, never cut */
	start(&x, "en", true);
	STEP(&x, "3", CON, "pin_login");
	pin_ok(&x);
	RESULT0(&x, "ok", ACTION, "payments_last");
	char list[MENU_PARAM_MAX + 1] = "";
	size_t used = 0;
	for (int i = 1; i <= 7; i++)
		used += (size_t)snprintf(list + used, sizeof(list) - used, "%s2026-0%d-01 4,000.00", i > 1 ? "\n" : "", i);
	RESULT(&x, "ok", CON, "payments_last_ok", "currency", "KES", "list", list);
	char all[1024] = "";
	size_t all_len = 0;
	int pages = 1;
	SHOWS(&x, "98. More\n0. Back  00. Home");
	for (;;) {
		HF_CHECK(fits_ussd(x.out.text));
		const char *more = strstr(x.out.text, "\n98. More");
		const char *nav = strstr(x.out.text, "\n0. Back");
		size_t n = (size_t)((more ? more : nav) - x.out.text);
		all_len += (size_t)snprintf(all + all_len, sizeof(all) - all_len, "%.*s%s", (int)n, x.out.text, more ? "\n" : "");
		if (!more)
			break;
		STEP(&x, "98", CON, "payments_last_ok");
		pages++;
	}
	HF_CHECK_MSG(pages == 2, "%d pages", pages);
	char want[400];
	snprintf(want, sizeof(want), "Your last payments (KES):\n%s", list);
	HF_CHECK_MSG(strcmp(all, want) == 0, "pages joined: '%s'", all);
	STEP(&x, "0", CON, "payments_last_ok"); /* back a page */
	SHOWS(&x, "Your last payments");
	STEP(&x, "0", CON, "home");
}

static void test_retries(void)
{
	struct sess x;
	/* max_retries = 2: two retry screens, the third wrong input ends the session */
	start(&x, "en", true);
	STEP(&x, "1", CON, "pin_login");
	STEP(&x, "12", CON, "pin_login");
	SHOWS(&x, "A PIN has 4 digits. Please enter your PIN:");
	STEP(&x, "abcd", CON, "pin_login");
	SHOWS(&x, "A PIN has 4 digits");
	STEP(&x, "123", END, "pin_login");
	HF_CHECK(strcmp(x.out.text, "Too many wrong entries. Please dial *384# again when you are ready.") == 0);
	HF_CHECK(x.s.ended);
	/* the count is per screen: a good input resets it */
	start(&x, "en", true);
	STEP(&x, "42", CON, "home");
	STEP(&x, "43", CON, "home");
	STEP(&x, "6", CON, "pin_menu");
	STEP(&x, "9", CON, "pin_menu");
	STEP(&x, "9", CON, "pin_menu");
	STEP(&x, "9", END, "pin_menu");
	SHOWS(&x, "Too many wrong entries");
}

/* ---- every screen, every language ---------------------------------------------------------------------- */

/* Sample values for every result parameter: what the golden files show. */
static const char *sample_param(const char *name)
{
	static const char *const v[][2] = {
		{"tries_left", "2"},	    {"minutes", "10"},		 {"programme", "Inua Jamii 70+"},
		{"since", "2023-01-15"},    {"amount", "4,000.00"},	 {"currency", "KES"},
		{"date", "2026-03-01"},	    {"pay_point", "Kibera-3 kiosk"}, {"language", "English"},
		{"languages", "SW, EN, FR"}, {"list", "2026-02-01 4,000.00\n2026-01-02 4,000.00\n2025-12-01 4,000.00"},
	};
	if (strcmp(name, "ref") == 0)
		return sample_ref();
	for (size_t i = 0; i < HF_ARRAY_LEN(v); i++)
		if (strcmp(v[i][0], name) == 0)
			return v[i][1];
	return "?";
}

/* A valid input for the input screen shown in s. */
static const char *sample_input(const struct menu_session *s)
{
	const struct screen *sc = &g_m->screens[s->screen];
	switch (sc->rule) {
	case R_PIN:
		return "4821";
	case R_DIGITS:
		return "583920";
	case R_REF:
		return sample_ref();
	case R_PHONE:
		return "0722000111";
	case R_TEXT:
		return "I was not paid in March";
	case R_SAME:
		return s->fields[sc->same_field];
	}
	return "";
}

/* One way through the menus: a session after some steps, and the steps that led there. */
struct way {
	struct menu_session s;
	struct menu_out out;
	char path[512];
};

/* Appends one step ("a" or "a:b") to the way. */
static void way_note(struct way *w, const char *a, const char *b)
{
	size_t n = strlen(w->path);
	snprintf(w->path + n, sizeof(w->path) - n, "%s%s%s%s", n ? " > " : "", a, b ? ":" : "", b ? b : "");
}

/* Every page of the screen in w fits one USSD screen (98 pressed on copies). */
static void check_all_pages(const struct way *w)
{
	struct way p = *w;
	for (int i = 0; i < MENU_PAGES_MAX && p.out.kind == MENU_OUT_CON; i++) {
		HF_CHECK_MSG(fits_ussd(p.out.text), "%s (%s) page %d: '%s'", p.out.screen, p.s.lang, i, p.out.text);
		if (!strstr(p.out.text, "\n98. ") && strncmp(p.out.text, "98. ", 4) != 0)
			break;
		if (menu_step(g_m, &p.s, "98", &p.out) != HF_OK)
			break;
	}
	if (p.out.kind == MENU_OUT_END)
		HF_CHECK_MSG(fits_ussd(p.out.text), "%s: '%s'", p.out.screen, p.out.text);
}

/* Breadth-first over real sessions from one start screen: every option, a valid input on every input
 * screen, every outcome of every action (with sample results). Each screen is recorded the first time it is
 * shown, with its way; *golden gets "== id ==", the way and the first page. Returns the screens seen. */
static void walk_sessions(const char *lang, bool registered, bool *seen, struct hf_buf *golden)
{
	size_t cap = 4096, head = 0, tail = 0;
	struct way *q = hf_xcalloc(cap, sizeof(*q));
	menu_start(g_m, &q[0].s, lang, registered);
	HF_CHECK(menu_step(g_m, &q[0].s, NULL, &q[0].out) == HF_OK);
	snprintf(q[0].path, sizeof(q[0].path), "%s", registered ? "(registered)" : "(unknown phone)");
	tail = 1;
	/* a screen is expanded once per screen waiting behind the PIN and PIN state: after the PIN, where the
	 * engine goes depends on them */
	bool *expanded = hf_xcalloc((size_t)MENU_SCREENS_MAX * (MENU_SCREENS_MAX + 1) * 2, sizeof(bool));
	while (head < tail) {
		struct way w = q[head++];
		if (w.out.kind != MENU_OUT_ACTION) {
			size_t id = (size_t)find_screen(g_m, w.out.screen);
			if (!seen[id]) {
				seen[id] = true;
				check_all_pages(&w);
				HF_CHECK(hf_buf_appendf(golden, "== %s ==\nway: %s\n%s %s\n\n", w.out.screen, w.path,
							w.out.kind == MENU_OUT_CON ? "CON" : "END", w.out.text) == HF_OK);
			}
			size_t resume = w.s.resume == MENU_NONE ? MENU_SCREENS_MAX : w.s.resume;
			size_t key = (id * (MENU_SCREENS_MAX + 1) + resume) * 2 + w.s.pin_ok;
			if (w.out.kind == MENU_OUT_END || expanded[key])
				continue;
			expanded[key] = true;
		}
		const struct screen *sc = &g_m->screens[w.out.kind == MENU_OUT_ACTION ? w.s.pending : w.s.screen];
		size_t n_next = sc->kind == K_ACTION ? 0 : sc->kind == K_MENU ? sc->n_options : sc->kind == K_INPUT;
		if (sc->kind == K_ACTION)
			while (actions[sc->action].outcomes[n_next].name)
				n_next++;
		for (size_t k = 0; k < n_next && tail < cap; k++) {
			/* A menu that sets lang tries the session's own language first: the golden file of a
			 * language then shows "language changed" in that language. */
			size_t i = k;
			if (sc->kind == K_MENU) {
				size_t own = n_next;
				for (size_t j = 0; j < n_next && own == n_next; j++)
					for (size_t z = 0; z < sc->options[j].n_sets; z++)
						if (g_m->fields[sc->options[j].set_field[z]].is_lang &&
						    strcmp(sc->options[j].set_value[z], w.s.lang) == 0)
							own = j;
				if (own < n_next)
					i = k == 0 ? own : k <= own ? k - 1 : k;
			}
			struct way *nx = &q[tail];
			*nx = w;
			hf_err rc;
			if (sc->kind == K_ACTION) {
				const struct outcome_spec *o = &actions[sc->action].outcomes[i];
				struct menu_kv params[MENU_PARAMS_MAX];
				size_t np = 0;
				for (int p = 0; p < P_COUNT_; p++)
					if (o->params & PB(p))
						params[np++] = (struct menu_kv){param_specs[p].name, sample_param(param_specs[p].name)};
				way_note(nx, actions[sc->action].name, o->name);
				rc = menu_action_result(g_m, &nx->s, o->name, params, np, &nx->out);
			} else if (sc->kind == K_MENU) {
				char num[8];
				snprintf(num, sizeof(num), "%u", sc->options[i].number);
				way_note(nx, num, NULL);
				rc = menu_step(g_m, &nx->s, num, &nx->out);
			} else {
				const char *in = sample_input(&w.s);
				way_note(nx, sc->secret ? "****" : in, NULL);
				rc = menu_step(g_m, &nx->s, in, &nx->out);
			}
			HF_CHECK_MSG(rc == HF_OK, "%s: rc %d", nx->path, (int)rc);
			if (rc == HF_OK)
				tail++;
		}
	}
	HF_CHECK(tail < cap);
	free(expanded);
	free(q);
}

/* Compares text with the golden file (or writes it with HF_GOLDEN_UPDATE=1). */
static void golden_compare(const char *name, const char *text)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", GOLDEN_DIR, name);
	const char *update = getenv("HF_GOLDEN_UPDATE");
	if (update && strcmp(update, "1") == 0) {
		mkdir("tests/unit/golden", 0755);
		mkdir(GOLDEN_DIR, 0755);
		FILE *f = fopen(path, "w");
		HF_CHECK_MSG(f && fputs(text, f) >= 0 && fclose(f) == 0, "cannot write %s", path);
		printf("golden: wrote %s\n", path);
		return;
	}
	char *want = NULL;
	struct load_err e = {0};
	if (read_file(path, &want, &e) != HF_OK) {
		HF_CHECK_MSG(false, "%s (regenerate with HF_GOLDEN_UPDATE=1)", e.msg);
		return;
	}
	if (strcmp(want, text) != 0) {
		/* the first differing line, so that the failure says what changed */
		const char *a = want, *b = text;
		int line = 1;
		while (*a && *a == *b) {
			line += *a == '\n';
			a++, b++;
		}
		HF_CHECK_MSG(false, "%s:%d differs from the rendered screens (regenerate with HF_GOLDEN_UPDATE=1 if "
			     "the change is intended): want '%.60s', got '%.60s'",
			     path, line, a, b);
	} else {
		HF_CHECK(true);
	}
	free(want);
}

static void test_every_screen(void)
{
	for (size_t li = 0; li < g_m->n_langs; li++) {
		const char *lang = g_m->langs[li].code;
		bool seen[MENU_SCREENS_MAX] = {0};
		struct hf_buf golden;
		hf_buf_init(&golden, 1 << 20);
		HF_CHECK(hf_buf_appendf(&golden,
					"# Every screen of menus/ussd in '%s', first page, reached by its shortest way.\n"
					"# Generated by tests/unit/test_menu.c (HF_GOLDEN_UPDATE=1); do not edit.\n\n",
					lang) == HF_OK);
		walk_sessions(lang, true, seen, &golden);
		walk_sessions(lang, false, seen, &golden);
		for (size_t i = 0; i < g_m->n_screens; i++)
			if (g_m->screens[i].kind != K_ACTION)
				HF_CHECK_MSG(seen[i], "%s: screen %s never shown", lang, g_m->screens[i].id);
		char name[32];
		snprintf(name, sizeof(name), "%s.txt", lang);
		golden_compare(name, hf_buf_cstr(&golden));
		hf_buf_release(&golden);
	}
	/* and with the longest values, every variant of every screen fits (what the checker promised) */
	for (size_t li = 0; li < g_m->n_langs; li++)
		for (size_t i = 0; i < g_m->n_screens; i++) {
			const struct screen *sc = &g_m->screens[i];
			if (sc->kind == K_ACTION)
				continue;
			for (int v = 0; v < 2; v++) {
				struct built b;
				struct page_in in;
				size_t np = 0;
				HF_CHECK(build_screen(&g_m->langs[li], sc, v && sc->kind == K_INPUT, v && sc->kind == K_MENU,
						      lookup_longest, g_m, &b) == HF_OK);
				built_pages(&b, b.nav_full, b.nav_full, &in);
				for (size_t p = 0; p < MENU_PAGES_MAX; p++) {
					char text[MENU_TEXT_MAX + 1];
					if (paginate(&in, false, p, text, &np, NULL) != HF_OK || p >= np)
						break;
					HF_CHECK_MSG(fits_ussd(text), "%s %s page %zu", g_m->langs[li].code, sc->id, p);
				}
				hf_buf_release(&b.buf);
			}
		}
}

/* ---- messages and keywords ------------------------------------------------------------------------------- */

static void test_messages(void)
{
	struct hf_buf out;
	hf_buf_init(&out, 1024);
	HF_CHECK(menu_render_message(g_m, "en", "ussd.busy", NULL, 0, &out) == HF_OK);
	HF_CHECK(strcmp(hf_buf_cstr(&out), "The service is busy. Please try again in a few minutes.") == 0);
	hf_buf_reset(&out);
	struct menu_kv ref = {"ref", "204518736"};
	HF_CHECK(menu_render_message(g_m, "sw", "sms.grievance", &ref, 1, &out) == HF_OK);
	HF_CHECK(strstr(hf_buf_cstr(&out), "kwa namba 204518736.") != NULL);
	hf_buf_reset(&out);
	HF_CHECK(menu_render_message(g_m, "fr", "sms.help", NULL, 0, &out) == HF_OK);
	HF_CHECK(strstr(hf_buf_cstr(&out), "composez *384#") && strstr(hf_buf_cstr(&out), "0800 000 000"));
	size_t seg = 0;
	HF_CHECK(hf_gsm_sms_segments(out.data, out.len, &seg) == HF_OK && seg == 1);
	hf_buf_reset(&out);
	/* an unknown language: the default (Swahili); a missing value: "-" */
	HF_CHECK(menu_render_message(g_m, "de", "sms.lang", NULL, 0, &out) == HF_OK);
	HF_CHECK(strcmp(hf_buf_cstr(&out), "Hifadhi: lugha yako sasa ni -.") == 0);
	hf_buf_reset(&out);
	HF_CHECK(menu_render_message(g_m, "en", "sms.nothing", NULL, 0, &out) == HF_ENOTFOUND);
	HF_CHECK(menu_render_message(g_m, "en", NULL, NULL, 0, &out) == HF_ENOTFOUND);
	struct menu_kv bad = {"ref", "\x01"};
	HF_CHECK(menu_render_message(g_m, "en", "sms.grievance", &bad, 1, &out) == HF_EINVAL);
	struct hf_buf tiny;
	hf_buf_init(&tiny, 10);
	HF_CHECK(menu_render_message(g_m, "en", "sms.help", NULL, 0, &tiny) == HF_ETOOBIG && tiny.len == 0);
	hf_buf_release(&tiny);
	/* every SMS reply fits one SMS in every language, with sample values */
	for (size_t li = 0; li < g_m->n_langs; li++)
		for (size_t k = 0; k < HF_ARRAY_LEN(fixed_keys); k++) {
			if (fixed_keys[k].use != USE_SMS)
				continue;
			struct menu_kv kv[P_COUNT_];
			size_t n = 0;
			for (int p = 0; p < P_COUNT_; p++)
				if (fixed_keys[k].params & PB(p))
					kv[n++] = (struct menu_kv){param_specs[p].name, sample_param(param_specs[p].name)};
			hf_buf_reset(&out);
			HF_CHECK(menu_render_message(g_m, g_m->langs[li].code, fixed_keys[k].key, kv, n, &out) == HF_OK);
			HF_CHECK_MSG(hf_gsm_sms_segments(out.data, out.len, &seg) == HF_OK && seg == 1, "%s %s",
				     g_m->langs[li].code, fixed_keys[k].key);
			HF_CHECK_MSG(strchr(hf_buf_cstr(&out), '{') == NULL, "%s", hf_buf_cstr(&out));
		}
	hf_buf_release(&out);
}

#define KW(text, want_kw, want_rest, want_lang) kw_((text), (want_kw), (want_rest), (want_lang), __LINE__)
static void kw_(const char *text, enum menu_kw want_kw, const char *want_rest, const char *want_lang, int at)
{
	enum menu_kw kw = MENU_KW_NONE;
	const char *rest = NULL, *lang = NULL;
	bool ok = menu_keyword(g_m, text, &kw, &rest, &lang);
	if (want_kw == MENU_KW_NONE) {
		hf_test_check_(!ok && kw == MENU_KW_NONE && rest == NULL, __FILE__, at, "no keyword", "'%s'", text);
		return;
	}
	hf_test_check_(ok && kw == want_kw && rest && strcmp(rest, want_rest) == 0 && lang && strcmp(lang, want_lang) == 0,
		       __FILE__, at, "keyword", "'%s': ok %d kw %d rest '%s' lang %s", text, ok, (int)kw, rest ? rest : "-",
		       lang ? lang : "-");
}

static void test_keywords(void)
{
	/* English */
	KW("HELP", MENU_KW_HELP, "", "en");
	KW("help", MENU_KW_HELP, "", "en");
	KW("  Status  ", MENU_KW_STATUS, "", "en");
	KW("STOP.", MENU_KW_STOP, "", "en");
	KW("start", MENU_KW_START, "", "en");
	KW("LANG sw", MENU_KW_LANG, "sw", "en");
	KW("language English", MENU_KW_LANG, "English", "en");
	KW("COMPLAINT the agent took 500", MENU_KW_GRIEVANCE, "the agent took 500", "en");
	KW("grievance  no money\nsince March", MENU_KW_GRIEVANCE, "no money\nsince March", "en");
	/* Swahili */
	KW("MSAADA", MENU_KW_HELP, "", "sw");
	KW("hali", MENU_KW_STATUS, "", "sw");
	KW("Simamisha!", MENU_KW_STOP, "", "sw");
	KW("ANZA", MENU_KW_START, "", "sw");
	KW("lugha en", MENU_KW_LANG, "en", "sw");
	KW("Malalamiko sikulipwa", MENU_KW_GRIEVANCE, "sikulipwa", "sw");
	KW("lalamiko x", MENU_KW_GRIEVANCE, "x", "sw");
	/* French: accents typed or not */
	KW("aide", MENU_KW_HELP, "", "fr");
	KW("ÉTAT", MENU_KW_STATUS, "", "fr");
	KW("état", MENU_KW_STATUS, "", "fr");
	KW("Arrêt", MENU_KW_STOP, "", "fr");
	KW("ARRET", MENU_KW_STOP, "", "fr");
	KW("début", MENU_KW_START, "", "fr");
	KW("LANGUE fr", MENU_KW_LANG, "fr", "fr");
	KW("plainte Je n'ai pas été payé", MENU_KW_GRIEVANCE, "Je n'ai pas été payé", "fr");
	/* not keywords */
	KW("HELPME", MENU_KW_NONE, "", "");
	KW("", MENU_KW_NONE, "", "");
	KW("   ", MENU_KW_NONE, "", "");
	KW("1234", MENU_KW_NONE, "", "");
	KW("bonjour aide", MENU_KW_NONE, "", "");
	KW("\xC3", MENU_KW_NONE, "", "");
	enum menu_kw kw = MENU_KW_NONE;
	const char *rest = NULL, *lang = NULL;
	HF_CHECK(!menu_keyword(g_m, NULL, &kw, &rest, &lang));
}

/* ---- odd callers ------------------------------------------------------------------------------------------ */

static void test_stale_session(void)
{
	/* a session of another load is refused, never misread */
	struct menu *other = NULL;
	struct hf_buf err;
	hf_buf_init(&err, 1024);
	HF_CHECK(menu_load(SHIPPED, &other, &err) == HF_OK);
	hf_buf_release(&err);
	if (!other)
		return;
	struct sess x;
	start(&x, "en", true);
	struct menu_out out;
	HF_CHECK(menu_step(other, &x.s, "1", &out) == HF_ECONFLICT && out.kind == MENU_OUT_END);
	menu_free(other);
	/* release wipes a session mid-way through a PIN change */
	start(&x, "en", true);
	STEP(&x, "6", CON, "pin_menu");
	STEP(&x, "2", CON, "pin_old");
	STEP(&x, "4821", CON, "pin_change_new");
	menu_session_release(&x.s);
	const unsigned char *p = (const unsigned char *)x.s.fields;
	bool zero = true;
	for (size_t i = 0; i < sizeof(x.s.fields); i++)
		zero = zero && p[i] == 0;
	HF_CHECK(zero && x.s.ended);
	HF_CHECK(menu_step(g_m, &x.s, "1", &out) == HF_ECONFLICT);
	menu_free(NULL);
}

int main(void)
{
	HF_TEST(test_base_loads);
	HF_TEST(test_structure_errors);
	HF_TEST(test_reachability_and_needs);
	HF_TEST(test_language_errors);
	HF_TEST(test_folder_errors);
	HF_TEST(test_shipped);
	if (g_m) {
		HF_TEST(test_enrolment);
		HF_TEST(test_payments);
		HF_TEST(test_grievance);
		HF_TEST(test_shortcut_screens);
		HF_TEST(test_pin_services);
		HF_TEST(test_pin_check);
		HF_TEST(test_phone_and_language);
		HF_TEST(test_navigation);
		HF_TEST(test_pages);
		HF_TEST(test_retries);
		HF_TEST(test_every_screen);
		HF_TEST(test_messages);
		HF_TEST(test_keywords);
		HF_TEST(test_stale_session);
	}
	menu_free(g_m);
	return hf_test_summary();
}
