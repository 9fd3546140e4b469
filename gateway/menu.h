/* menu.h - the USSD menu engine: menus loaded from data (menus/ussd/), one user input at a time.
 *
 * Every beneficiary-facing USSD screen and SMS keyword reply is data: menus/ussd/menu.ini holds the
 * structure (screens, options, inputs and their validation rules, actions and where their outcomes lead),
 * and one file per language (en.ini, sw.ini, fr.ini) holds every text. menu_load checks the whole folder
 * before the gateway serves anything: every screen fits a USSD screen in every language (182 GSM-7
 * septets or 80 UCS-2 units, measured with lib/hf_gsm, with the longest values filled in), every text is
 * translated, nothing is unreachable or a dead end. docs/menus.md is the manual of the format.
 *
 * A session (struct menu_session) is a small fixed-size value the gateway keeps per USSD session; the
 * engine never allocates for it. The gateway splits the aggregator's `*`-joined text into inputs and
 * feeds them one by one:
 *
 *	menu_start(m, &s, "sw", registered);
 *	menu_step(m, &s, NULL, &out);              // the first screen
 *	menu_step(m, &s, "1", &out);               // each later input
 *	while (out.kind == MENU_OUT_ACTION) {      // the engine asks the gateway to call core
 *		... call core with out.action and out.params ...
 *		menu_action_result(m, &s, "ok", result, n, &out);
 *	}
 *	reply "CON " or "END " + out.text
 *
 * Navigation is the engine's: 0 goes back (or to the previous page), 00 goes home, on every screen but
 * the start screens; 98 shows the next page of a screen too long for one (never a cut text). A screen
 * marked `pin = required` is preceded, once per session, by the PIN check (the verify_pin action).
 *
 * Secrets: a PIN or one-time code the user types is kept in the session only until the action that needs
 * it has answered (then wiped), is never rendered, and is passed to the gateway with secret = true in
 * menu_out: the gateway must not log those values. menu_session_release wipes a session.
 *
 * Threads: a loaded struct menu is immutable and may be shared by any number of threads; a session is
 * used by one thread at a time. A session belongs to the struct menu it was started with: after a reload,
 * menu_step refuses a session of the previous one (HF_ECONFLICT, an END screen) instead of misreading it.
 */
#ifndef HF_GATEWAY_MENU_H
#define HF_GATEWAY_MENU_H

#include "hf_base.h"
#include "hf_buf.h"
#include "hf_err.h"

#define MENU_NAME_MAX 32    /* screen ids, field and parameter names, text keys (without the screen's) */
#define MENU_LANG_MAX 8	    /* a language code: 2 to 8 lowercase letters */
#define MENU_STACK_MAX 12   /* screens remembered for "0 back" (the oldest is forgotten past it) */
#define MENU_FIELDS_MAX 8   /* distinct input fields in a structure (each has a slot in a session) */
#define MENU_INPUT_MAX 320  /* bytes of one user input; longer is refused like any invalid input */
#define MENU_PARAMS_MAX 6   /* result parameters one action returns */
#define MENU_PARAM_MAX 160  /* bytes of one result parameter value */
#define MENU_TEXT_MAX 400   /* bytes of one rendered page (182 septets of 2-byte characters at most) */
#define MENU_NONE 0xFFFF

struct menu; /* a loaded, checked menu folder; immutable */

/* A borrowed name = value pair: action parameters in and out, message parameters. */
struct menu_kv {
	const char *name;
	const char *value;
};

enum menu_out_kind {
	MENU_OUT_CON,	/* show text and wait for an input ("CON ") */
	MENU_OUT_END,	/* show text and close the session ("END ") */
	MENU_OUT_ACTION /* call core: action with params, then menu_action_result */
};

struct menu_out {
	enum menu_out_kind kind;
	char text[MENU_TEXT_MAX + 1]; /* CON/END: the page, UTF-8, fits one USSD screen; "" for ACTION */
	const char *screen;	      /* id of the screen shown or of the action screen (borrowed: menu) */
	const char *action;	      /* ACTION: the action's name (borrowed: menu); NULL otherwise */
	size_t n_params;
	struct menu_kv params[MENU_FIELDS_MAX]; /* ACTION: exactly the fields the action needs (borrowed:
						   session, valid until the next call on it) */
	bool secret[MENU_FIELDS_MAX];		/* params[i] is a PIN or a code: never log its value */
};

/* One session's state; the gateway keeps it between the turns of a USSD session. The fields are the
 * engine's: read them for logs (screen ids through menu_session_screen), never write them. */
struct menu_session {
	uint32_t serial;     /* of the struct menu it was started with */
	uint16_t screen;     /* shown now */
	uint16_t entry;	     /* the start screen (registered or not) */
	uint16_t pending;    /* action screen waiting for menu_action_result, or MENU_NONE */
	uint16_t resume;     /* the screen that asked for the PIN, or MENU_NONE */
	uint16_t stack[MENU_STACK_MAX];
	uint8_t depth;
	uint8_t resume_depth;
	uint8_t page;
	uint8_t failures;    /* invalid inputs on this screen */
	bool registered;
	bool pin_ok;	     /* the PIN was verified in this session */
	bool ended;
	bool show_invalid;   /* render "not a choice" above the current menu */
	bool show_retry;     /* render the input screen's retry text */
	char lang[MENU_LANG_MAX + 1];
	uint8_t have;	     /* bit f: fields[f] holds a value */
	char fields[MENU_FIELDS_MAX][MENU_INPUT_MAX + 1];
	uint8_t n_params;
	uint8_t param_id[MENU_PARAMS_MAX]; /* the last action's result parameters */
	char params[MENU_PARAMS_MAX][MENU_PARAM_MAX + 1];
};

/* Loads dir/menu.ini and dir/<lang>.ini for every language it lists, and checks them all. On failure
 * err gets "path:line: reason" (or "path: reason" when no line applies) and the result is HF_EINVAL
 * (a broken menu), HF_EIO (a file cannot be read) or HF_ETOOBIG (a file or a count past its cap).
 * *out is owned by the caller (menu_free). */
HF_MUST_CHECK hf_err menu_load(const char *dir, struct menu **out, struct hf_buf *err);
void menu_free(struct menu *m);

/* The structure's default language and whether lang is one of the shipped ones. */
const char *menu_default_language(const struct menu *m);
bool menu_has_language(const struct menu *m, const char *lang);
/* A shipped language named by text: its code or a name from its file ([language] name, aliases), any
 * case, surrounding spaces ignored ("SW", "kiswahili", "Français"). Borrowed code, or NULL. */
const char *menu_language_find(const struct menu *m, const char *text);

/* Starts a session at the start screen for a registered phone or an unknown one, in lang (NULL or a
 * language that is not shipped: the default). Overwrites all of *s. */
void menu_start(const struct menu *m, struct menu_session *s, const char *lang, bool registered);
/* Wipes the session (typed PINs included). Call it when a session ends or is dropped. */
void menu_session_release(struct menu_session *s);
/* The session's current language code and screen id (borrowed: menu or session). */
const char *menu_session_lang(const struct menu_session *s);
const char *menu_session_screen(const struct menu *m, const struct menu_session *s);
/* Whether the screen shown now is a list of options, which an input of a dialled shortcut (*384*2#) may
 * choose from. What is typed into input screens -- a PIN, a code, a text, a reference -- never comes from a
 * dial string (the phone keeps it in its call log, and a replayed one must not lodge anything). */
bool menu_session_takes_shortcut(const struct menu *m, const struct menu_session *s);

/* Applies one user input (NULL: show the current screen again, e.g. the first screen of a session) and
 * writes what to do into *out. An invalid input is not an error: it gives the retry screen, or END after
 * too many. HF_ECONFLICT when the session has ended, is waiting for an action's result or belongs to
 * another struct menu; *out is then an END screen with the "ussd.error" text. */
HF_MUST_CHECK hf_err menu_step(const struct menu *m, struct menu_session *s, const char *input,
			       struct menu_out *out);

/* Feeds back the outcome of the action menu_step (or a previous menu_action_result) asked for, with its
 * result parameters (may be NULL when n_params is 0), and writes the next thing to do into *out: the
 * outcome's screen, or another action. The outcomes and parameters of each action are listed in
 * docs/menus.md. HF_EINVAL for an outcome the action does not have or a parameter that is unknown, too
 * long (MENU_PARAM_MAX) or not valid text: *out is then the action's "error" screen. HF_ECONFLICT when no
 * action is pending (*out: END with "ussd.error"). */
HF_MUST_CHECK hf_err menu_action_result(const struct menu *m, struct menu_session *s, const char *outcome,
					const struct menu_kv *params, size_t n_params, struct menu_out *out);

/* Appends the text key (a "section.name" of the language files, e.g. "ussd.busy", "sms.help") in lang
 * (default language when lang is NULL or not shipped), placeholders filled from params and the [values]
 * of menu.ini; a placeholder without a value shows as "-". HF_ENOTFOUND for an unknown key, HF_EINVAL for
 * a parameter that is not valid text, HF_ETOOBIG when out is full. */
HF_MUST_CHECK hf_err menu_render_message(const struct menu *m, const char *lang, const char *key,
					 const struct menu_kv *params, size_t n_params, struct hf_buf *out);

enum menu_kw {
	MENU_KW_NONE,
	MENU_KW_HELP,
	MENU_KW_STATUS,
	MENU_KW_STOP,
	MENU_KW_START,
	MENU_KW_LANG,
	MENU_KW_GRIEVANCE,
};

/* Recognises the SMS keyword that starts text (its first word, any case, accents ignored, trailing
 * punctuation ignored) in any shipped language. On a match: *kw, *rest (the text after the keyword and
 * its spaces, pointing into text) and *lang (the code of the first language in menu.ini's list that has
 * the keyword: a hint for an unknown subscriber; reply in the subscriber's own language when known), and
 * true. False (outputs untouched) when the first word is no keyword. */
bool menu_keyword(const struct menu *m, const char *text, enum menu_kw *kw, const char **rest,
		  const char **lang);

#endif
