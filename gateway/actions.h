/* actions.h - what the menus' actions do: each is one or two calls to hifadhi-core's API, turned into an
 * outcome name and result parameters for the menu engine (menus/ussd/menu.ini names them; docs/menus.md
 * lists them). Core slow or down gives the outcome "busy", anything unexpected "error": the subscriber
 * always gets a screen. */
#ifndef HF_GATEWAY_ACTIONS_H
#define HF_GATEWAY_ACTIONS_H

#include "menu.h"

/* Who is on the phone, as core knows them (GET /subscribers/{phone}). */
struct subscriber {
	bool known;	 /* core answered */
	bool registered;
	char phone[20];	 /* E.164, as the channel gave it, normalised */
	char ben_no[16];
	char language[MENU_LANG_MAX + 1];
};

/* Looks the phone up in core. HF_OK with sub->known; HF_ETIMEOUT/HF_EUPSTREAM when core is unreachable. */
HF_MUST_CHECK hf_err actions_lookup(const char *phone, struct subscriber *sub);

struct action_result {
	char outcome[MENU_NAME_MAX + 1];
	size_t n;
	struct menu_kv params[MENU_PARAMS_MAX];
	char values[MENU_PARAMS_MAX][MENU_PARAM_MAX + 1];
	char names[MENU_PARAMS_MAX][MENU_NAME_MAX + 1];
};

/* Runs the action the engine asked for (out->action with out->params) for sub, in lang. */
void actions_run(const struct menu_out *out, struct subscriber *sub, const char *lang, const char *channel,
		 struct action_result *res);

/* Adds a result parameter (copied). */
void action_param(struct action_result *res, const char *name, const char *value);

#endif
