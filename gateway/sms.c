/* sms.c - keywords by SMS (see sms.h). */
#include "hf_base.h"
#include "sms.h"
#include "actions.h"
#include "core_client.h"

#include "hf_log.h"

#include <stdio.h>
#include <string.h>

static const struct menu *g_m;

void sms_init(const struct menu *m)
{
	g_m = m;
}

static void say(const char *lang, const char *key, const struct menu_kv *p, size_t n, struct hf_buf *reply)
{
	hf_buf_reset(reply);
	if (menu_render_message(g_m, lang, key, p, n, reply) != HF_OK) {
		hf_buf_reset(reply);
		if (menu_render_message(g_m, lang, "sms.error", NULL, 0, reply) != HF_OK)
			hf_buf_reset(reply);
	}
}

/* POST to a subscriber route; false when core could not be reached or refused. */
static bool post(const char *phone, const char *what, json_t *body, const char *route)
{
	char path[96];
	snprintf(path, sizeof(path), "subscribers/%s%s", phone, what);
	long st = 0;
	json_t *ans = NULL;
	hf_err err = core_call("POST", path, body, route, &st, &ans);
	json_decref(ans);
	return !err && st == 200;
}

void sms_handle(const char *phone, const char *text, struct hf_buf *reply)
{
	struct subscriber sub = {0};
	if (actions_lookup(phone, &sub) != HF_OK) {
		say(NULL, "sms.busy", NULL, 0, reply);
		return;
	}
	enum menu_kw kw = MENU_KW_NONE;
	const char *rest = "", *kw_lang = NULL;
	bool is_kw = menu_keyword(g_m, text, &kw, &rest, &kw_lang);
	/* Reply in the subscriber's language; for a stranger, in the language of the keyword they used. */
	const char *lang = sub.registered && sub.language[0] ? sub.language : kw_lang;
	if (!is_kw) {
		say(lang, "sms.unknown", NULL, 0, reply);
		return;
	}
	switch (kw) {
	case MENU_KW_HELP:
		say(lang, "sms.help", NULL, 0, reply);
		return;
	case MENU_KW_STOP:
	case MENU_KW_START: {
		bool stop = kw == MENU_KW_STOP;
		json_t *body = json_pack("{s:s}", "channel", "sms");
		bool ok = post(phone, stop ? "/opt-out" : "/opt-in", body, stop ? "subscribers/{phone}/opt-out"
										   : "subscribers/{phone}/opt-in");
		json_decref(body);
		say(lang, ok ? (stop ? "sms.stop" : "sms.start") : "sms.busy", NULL, 0, reply);
		return;
	}
	case MENU_KW_LANG: {
		const char *code = menu_language_find(g_m, rest);
		if (!code) {
			struct menu_kv p[] = {{"languages", "SW, EN, FR"}};
			say(lang, "sms.lang_unknown", p, 1, reply);
			return;
		}
		if (sub.registered) {
			json_t *body = json_pack("{s:s}", "language", code);
			bool ok = post(phone, "/language", body, "subscribers/{phone}/language");
			json_decref(body);
			if (!ok) {
				say(lang, "sms.busy", NULL, 0, reply);
				return;
			}
		}
		/* The language by its own name ("Kiswahili"), as the reply is written in it. */
		struct hf_buf name;
		hf_buf_init(&name, 128);
		if (menu_render_message(g_m, code, "language.name", NULL, 0, &name) != HF_OK || !name.len) {
			hf_buf_reset(&name);
			HF_ASSERT(hf_buf_append_str(&name, code) == HF_OK);
		}
		struct menu_kv p[] = {{"language", hf_buf_cstr(&name)}};
		say(code, "sms.lang", p, 1, reply);
		hf_buf_release(&name);
		return;
	}
	case MENU_KW_STATUS: {
		if (!sub.registered) {
			say(lang, "sms.status_unknown", NULL, 0, reply);
			return;
		}
		struct menu_out out = {.kind = MENU_OUT_ACTION, .action = "enrolment_status"};
		struct action_result res;
		actions_run(&out, &sub, lang, "sms", &res);
		char key[48];
		if (strcmp(res.outcome, "busy") == 0 || strcmp(res.outcome, "error") == 0)
			snprintf(key, sizeof(key), "sms.%s", res.outcome);
		else if (strcmp(res.outcome, "not_found") == 0)
			snprintf(key, sizeof(key), "sms.status_unknown");
		else
			snprintf(key, sizeof(key), "sms.status_%s", res.outcome);
		say(lang, key, res.params, res.n, reply);
		return;
	}
	case MENU_KW_GRIEVANCE: {
		if (!rest[0]) {
			say(lang, "sms.grievance_empty", NULL, 0, reply);
			return;
		}
		struct menu_kv p[] = {{"category", "other"}, {"description", rest}};
		struct menu_out out = {.kind = MENU_OUT_ACTION, .action = "lodge_grievance", .n_params = 2};
		out.params[0] = p[0];
		out.params[1] = p[1];
		struct action_result res;
		actions_run(&out, &sub, lang, "sms", &res);
		if (strcmp(res.outcome, "ok") == 0 || strcmp(res.outcome, "duplicate") == 0)
			say(lang, "sms.grievance", res.params, res.n, reply);
		else
			say(lang, strcmp(res.outcome, "busy") == 0 ? "sms.busy" : "sms.error", NULL, 0, reply);
		return;
	}
	case MENU_KW_NONE:
		break;
	}
	say(lang, "sms.unknown", NULL, 0, reply);
}
