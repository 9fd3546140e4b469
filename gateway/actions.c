/* actions.c - the menus' actions as calls to hifadhi-core (see actions.h). */
#include "hf_base.h"
#include "actions.h"
#include "core_client.h"

#include "hf_log.h"
#include "hf_money.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void action_param(struct action_result *res, const char *name, const char *value)
{
	if (res->n >= MENU_PARAMS_MAX || !value)
		return;
	size_t i = res->n++;
	hf_strlcpy(res->names[i], name, sizeof(res->names[i]));
	/* Cut on a character boundary: a value never breaks a UTF-8 sequence. */
	size_t n = strlen(value);
	if (n > MENU_PARAM_MAX) {
		n = MENU_PARAM_MAX;
		while (n > 0 && ((unsigned char)value[n] & 0xC0) == 0x80)
			n--;
	}
	memcpy(res->values[i], value, n);
	res->values[i][n] = '\0';
	res->params[i] = (struct menu_kv){res->names[i], res->values[i]};
}

static void outcome(struct action_result *res, const char *name)
{
	hf_strlcpy(res->outcome, name, sizeof(res->outcome));
}

static const char *param(const struct menu_out *out, const char *name)
{
	for (size_t i = 0; i < out->n_params; i++)
		if (strcmp(out->params[i].name, name) == 0)
			return out->params[i].value;
	return NULL;
}

/* One core call; on no answer the outcome is busy and false is returned. */
static bool call(struct action_result *res, const char *method, const char *path, json_t *body, const char *route,
		 long *status, json_t **ans)
{
	hf_err err = core_call(method, path, body, route, status, ans);
	if (err) {
		outcome(res, "busy");
		return false;
	}
	if (*status >= 500) {
		outcome(res, "error");
		json_decref(*ans);
		*ans = NULL;
		return false;
	}
	return true;
}

/* "Wrong PIN. 3 tries left." -> "3" */
static void tries_left(struct action_result *res, const json_t *ans)
{
	const char *m = core_error_message(ans);
	char n[8] = "";
	for (const char *p = m; *p; p++)
		if (*p >= '0' && *p <= '9') {
			size_t k = 0;
			while (p[k] >= '0' && p[k] <= '9' && k < sizeof(n) - 1) {
				n[k] = p[k];
				k++;
			}
			n[k] = '\0';
			break;
		}
	action_param(res, "tries_left", n[0] ? n : "0");
}

hf_err actions_lookup(const char *phone, struct subscriber *sub)
{
	char path[80];
	hf_strlcpy(sub->phone, phone, sizeof(sub->phone));
	snprintf(path, sizeof(path), "subscribers/%s", phone);
	long st = 0;
	json_t *ans = NULL;
	hf_err err = core_call("GET", path, NULL, "subscribers/{phone}", &st, &ans);
	if (err)
		return err;
	sub->known = st == 200 && json_is_object(ans);
	sub->registered = sub->known && json_is_true(json_object_get(ans, "registered"));
	const char *b = json_string_value(json_object_get(ans, "ben_no"));
	const char *l = json_string_value(json_object_get(ans, "language"));
	hf_strlcpy(sub->ben_no, b ? b : "", sizeof(sub->ben_no));
	hf_strlcpy(sub->language, l ? l : "", sizeof(sub->language));
	json_decref(ans);
	return sub->known ? HF_OK : HF_EUPSTREAM;
}

static void enrolment_status(struct subscriber *sub, struct action_result *res)
{
	char path[80];
	snprintf(path, sizeof(path), "subscribers/%s", sub->phone);
	long st = 0;
	json_t *ans = NULL;
	if (!call(res, "GET", path, NULL, "subscribers/{phone}", &st, &ans))
		return;
	json_t *list = json_object_get(ans, "enrolments");
	/* The most favourable status speaks: enrolled in one programme is "enrolled". */
	static const char *const order[] = {"enrolled", "pending", "suspended", "exited", "deceased", "duplicate"};
	const json_t *best = NULL;
	size_t best_rank = HF_ARRAY_LEN(order);
	size_t i;
	json_t *e;
	json_array_foreach(list, i, e) {
		const char *stt = json_string_value(json_object_get(e, "status"));
		for (size_t k = 0; stt && k < best_rank; k++)
			if (strcmp(stt, order[k]) == 0) {
				best = e;
				best_rank = k;
			}
	}
	if (!best || best_rank >= 4) {
		outcome(res, best ? "exited" : "not_found");
	} else {
		outcome(res, best_rank == 0 ? "ok" : best_rank == 1 ? "pending" : best_rank == 2 ? "suspended" : "exited");
		if (best_rank == 0) { /* only "ok" shows the programme and the date (docs/menus.md) */
			action_param(res, "programme", json_string_value(json_object_get(best, "programme")));
			action_param(res, "since", json_string_value(json_object_get(best, "since")));
		}
	}
	json_decref(ans);
}

static void money(const json_t *p, char out[HF_MONEY_STR_MAX])
{
	const char *cur = json_string_value(json_object_get(p, "currency"));
	hf_money_display(json_integer_value(json_object_get(p, "amount")), cur ? cur : "KES", out);
}

static void payments(struct subscriber *sub, bool next, struct action_result *res)
{
	char path[80];
	snprintf(path, sizeof(path), "beneficiaries/%s/payments", sub->ben_no);
	long st = 0;
	json_t *ans = NULL;
	if (!call(res, "GET", path, NULL, "beneficiaries/{ben_no}/payments", &st, &ans))
		return;
	if (st != 200) {
		outcome(res, "error");
		json_decref(ans);
		return;
	}
	char amount[HF_MONEY_STR_MAX];
	if (next) {
		const json_t *p = json_object_get(ans, "next");
		if (!json_is_object(p)) {
			outcome(res, "none");
		} else if (json_is_true(json_object_get(p, "on_hold"))) {
			outcome(res, "on_hold");
		} else {
			outcome(res, "ok");
			money(p, amount);
			action_param(res, "amount", amount);
			action_param(res, "currency", json_string_value(json_object_get(p, "currency")));
			action_param(res, "date", json_string_value(json_object_get(p, "pay_from")));
			const char *pp = json_string_value(json_object_get(p, "pay_point"));
			const char *ch = json_string_value(json_object_get(p, "channel"));
			action_param(res, "pay_point", pp ? pp : ch && strcmp(ch, "kiosk") ? "M-Pesa" : "-");
		}
	} else {
		const json_t *list = json_object_get(ans, "last");
		if (!json_array_size(list)) {
			outcome(res, "none");
		} else {
			char text[MENU_PARAM_MAX + 1] = "", line[80];
			size_t used = 0, i;
			json_t *p;
			json_array_foreach(list, i, p) {
				if (i == 3)
					break;
				const char *at = json_string_value(json_object_get(p, "settled_at"));
				money(p, amount);
				snprintf(line, sizeof(line), "%s%.10s %s %s", i ? "\n" : "", at ? at : "",
					 amount, json_string_value(json_object_get(p, "status")));
				size_t n = strlen(line);
				if (used + n < sizeof(text)) {
					memcpy(text + used, line, n + 1);
					used += n;
				}
			}
			outcome(res, "ok");
			action_param(res, "currency", json_string_value(json_object_get(json_array_get(list, 0), "currency")));
			action_param(res, "list", text);
		}
	}
	json_decref(ans);
}

static void lodge(const struct menu_out *out, struct subscriber *sub, const char *channel, bool phone_change,
		  struct action_result *res)
{
	json_t *body = json_pack("{s:s, s:s}", "type", phone_change ? "change_request" : "grievance", "channel", channel);
	if (sub->registered)
		json_object_set_new(body, "ben_no", json_string(sub->ben_no));
	if (phone_change) {
		const char *ph = param(out, "phone");
		if (ph && strcmp(ph, sub->phone) == 0) {
			json_decref(body);
			outcome(res, "same");
			return;
		}
		json_object_set_new(body, "category", json_string("phone"));
		json_object_set_new(body, "data", json_pack("{s:{s:s}}", "change", "phone", ph ? ph : ""));
	} else {
		const char *cat = param(out, "category"), *text = param(out, "description");
		json_object_set_new(body, "category", json_string(cat ? cat : "other"));
		if (text && text[0])
			json_object_set_new(body, "summary", json_string(text));
	}
	long st = 0;
	json_t *ans = NULL;
	bool ok = call(res, "POST", "cases", body, "cases", &st, &ans);
	json_decref(body);
	if (!ok)
		return;
	const char *ref = json_string_value(json_object_get(ans, "ref"));
	if ((st == 201 || st == 200) && ref) {
		outcome(res, st == 200 && !phone_change ? "duplicate" : "ok");
		action_param(res, "ref", ref);
	} else {
		hf_log(HF_LOG_WARN, "gateway.actions", "msg=\"core refused a case\" status=%ld", st);
		outcome(res, "error");
	}
	json_decref(ans);
}

static void grievance_status(const struct menu_out *out, struct subscriber *sub, struct action_result *res)
{
	const char *ref = param(out, "case_ref");
	char path[96];
	snprintf(path, sizeof(path), "beneficiaries/%s/cases/%s", sub->ben_no, ref ? ref : "0");
	long st = 0;
	json_t *ans = NULL;
	if (!call(res, "GET", path, NULL, "beneficiaries/{ben_no}/cases/{ref}", &st, &ans))
		return;
	if (st == 404 || !sub->registered) {
		outcome(res, "not_found"); /* the screen shows the typed {case_ref} itself */
	} else if (st == 200) {
		const char *state = json_string_value(json_object_get(ans, "state"));
		bool open = json_is_true(json_object_get(ans, "open"));
		outcome(res, open ? "open" : state && strcmp(state, "resolved") == 0 ? "resolved" : "closed");
		action_param(res, "ref", ref);
		const char *at = json_string_value(json_object_get(ans, "updated_at"));
		if (!at)
			at = json_string_value(json_object_get(ans, "created_at"));
		char day[11] = "-";
		if (at)
			hf_strlcpy(day, at, sizeof(day));
		action_param(res, "date", day);
	} else {
		outcome(res, "error");
	}
	json_decref(ans);
}

/* The PIN actions: one POST each; core's status says the outcome. */
static void pin_call(const char *what, const char *route, json_t *body, struct subscriber *sub,
		     struct action_result *res, const char *on401, const char *on409, const char *on404, bool with_tries)
{
	char path[96];
	snprintf(path, sizeof(path), "subscribers/%s%s", sub->phone, what);
	long st = 0;
	json_t *ans = NULL;
	bool ok = call(res, "POST", path, body, route, &st, &ans);
	if (body) {
		/* The PIN and codes were in this body only: wiped. */
		const char *k;
		json_t *v;
		json_object_foreach(body, k, v)
			if (json_is_string(v))
				memset((char *)json_string_value(v), 0, json_string_length(v));
		json_decref(body);
	}
	if (!ok)
		return;
	if (st == 200 || st == 201)
		outcome(res, "ok");
	else if (st == 401 && on401 && with_tries && strstr(core_error_message(ans), "locked"))
		outcome(res, "locked"); /* that wrong PIN was the last try */
	else if (st == 401 && on401) {
		outcome(res, on401);
		if (with_tries)
			tries_left(res, ans);
	} else if (st == 409 && on409)
		outcome(res, on409);
	else if (st == 404 && on404)
		outcome(res, on404);
	else if (st == 400)
		outcome(res, "weak");
	else if (st == 429) {
		outcome(res, "too_soon");
		action_param(res, "minutes", "1");
	} else
		outcome(res, "error");
	json_decref(ans);
}

static void set_language(const struct menu_out *out, struct subscriber *sub, struct action_result *res)
{
	const char *lang = param(out, "lang");
	if (!lang) {
		outcome(res, "error");
		return;
	}
	if (sub->registered) {
		char path[96];
		snprintf(path, sizeof(path), "subscribers/%s/language", sub->phone);
		long st = 0;
		json_t *ans = NULL;
		json_t *body = json_pack("{s:s}", "language", lang);
		bool ok = call(res, "POST", path, body, "subscribers/{phone}/language", &st, &ans);
		json_decref(body);
		json_decref(ans);
		if (!ok)
			return;
		if (st != 200) {
			outcome(res, "error");
			return;
		}
	}
	hf_strlcpy(sub->language, lang, sizeof(sub->language));
	outcome(res, "ok");
}

void actions_run(const struct menu_out *out, struct subscriber *sub, const char *lang, const char *channel,
		 struct action_result *res)
{
	(void)lang;
	memset(res, 0, sizeof(*res));
	const char *a = out->action ? out->action : "";
	if (strcmp(a, "set_language") == 0) {
		set_language(out, sub, res);
		return;
	}
	if (strcmp(a, "lodge_grievance") == 0) {
		lodge(out, sub, channel, false, res);
		return;
	}
	if (!sub->registered) {
		/* The menus offer nothing else to an unknown phone; a stale session might still ask. */
		outcome(res, "error");
		return;
	}
	if (strcmp(a, "enrolment_status") == 0)
		enrolment_status(sub, res);
	else if (strcmp(a, "next_payment") == 0)
		payments(sub, true, res);
	else if (strcmp(a, "last_payments") == 0)
		payments(sub, false, res);
	else if (strcmp(a, "grievance_status") == 0)
		grievance_status(out, sub, res);
	else if (strcmp(a, "report_phone_change") == 0)
		lodge(out, sub, channel, true, res);
	else if (strcmp(a, "verify_pin") == 0)
		pin_call("/pin/verify", "subscribers/{phone}/pin/verify", json_pack("{s:s?}", "pin", param(out, "pin")), sub,
			 res, "wrong", "locked", "not_set", true);
	else if (strcmp(a, "set_pin") == 0)
		pin_call("/pin", "subscribers/{phone}/pin", json_pack("{s:s?}", "pin", param(out, "new_pin")), sub, res,
			 NULL, "already_set", NULL, false);
	else if (strcmp(a, "change_pin") == 0)
		pin_call("/pin/change", "subscribers/{phone}/pin/change",
			 json_pack("{s:s?, s:s?}", "pin", param(out, "pin"), "new_pin", param(out, "new_pin")), sub, res,
			 "wrong", "locked", NULL, true);
	else if (strcmp(a, "reset_pin_request") == 0)
		pin_call("/pin/reset-code", "subscribers/{phone}/pin/reset-code", NULL, sub, res, NULL, "not_found",
			 "not_found", false);
	else if (strcmp(a, "reset_pin_confirm") == 0)
		pin_call("/pin/reset", "subscribers/{phone}/pin/reset",
			 json_pack("{s:s?, s:s?}", "code", param(out, "code"), "new_pin", param(out, "new_pin")), sub, res,
			 "wrong", "expired", NULL, false);
	else {
		hf_log(HF_LOG_ERROR, "gateway.actions", "msg=\"menu asks for an unknown action\" action=%s", a);
		outcome(res, "error");
	}
}
