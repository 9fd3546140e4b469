/* ussd.c - USSD sessions over the menu engine (see ussd.h). */
#include "hf_base.h"
#include "ussd.h"
#include "actions.h"

#include "hf_log.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define BUCKETS 4096
#define MAX_ACTIONS_PER_TURN 4

struct sess {
	struct sess *next;
	char id[USSD_SESSION_ID_MAX + 1];
	char phone[20];
	int64_t expires_ms;
	bool busy;			 /* a request of this session is being answered */
	char last_text[USSD_TEXT_MAX + 1]; /* the path answered last */
	char last_reply[MENU_TEXT_MAX + 1];
	bool last_end;
	struct subscriber sub;
	struct menu_session ms;
};

static struct {
	const struct menu *m;
	int ttl_s, max;
	pthread_mutex_t lock;
	struct sess *b[BUCKETS];
	size_t n;
} U = {.lock = PTHREAD_MUTEX_INITIALIZER};

static size_t bucket(const char *id)
{
	uint64_t h = 1469598103934665603ULL;
	for (const char *p = id; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return (size_t)(h % BUCKETS);
}

hf_err ussd_init(const struct menu *m, int session_ttl_s, int max_sessions)
{
	U.m = m;
	U.ttl_s = session_ttl_s;
	U.max = max_sessions;
	return HF_OK;
}

static void sess_free(struct sess *s)
{
	menu_session_release(&s->ms);
	sodium_memzero(s, sizeof(*s));
	free(s);
}

void ussd_shutdown(void)
{
	pthread_mutex_lock(&U.lock);
	for (size_t i = 0; i < BUCKETS; i++)
		while (U.b[i]) {
			struct sess *s = U.b[i];
			U.b[i] = s->next;
			sess_free(s);
		}
	U.n = 0;
	pthread_mutex_unlock(&U.lock);
}

size_t ussd_sessions(void)
{
	pthread_mutex_lock(&U.lock);
	size_t n = U.n;
	pthread_mutex_unlock(&U.lock);
	return n;
}

/* Drops expired sessions of one bucket (called under the lock, on the way). */
static void sweep_bucket(size_t i, int64_t now)
{
	struct sess **pp = &U.b[i];
	while (*pp) {
		struct sess *s = *pp;
		if (s->expires_ms < now && !s->busy) {
			*pp = s->next;
			sess_free(s);
			U.n--;
		} else {
			pp = &s->next;
		}
	}
}

/* Takes the session for this request (marks it busy), creating it when create. NULL: none, or busy with
 * another request of the same session (the aggregator does not send two at once: a duplicate). */
static struct sess *take(const char *id, bool create, bool *full)
{
	*full = false;
	int64_t now = hf_now_ms();
	size_t i = bucket(id);
	pthread_mutex_lock(&U.lock);
	sweep_bucket(i, now);
	struct sess *s = U.b[i];
	while (s && strcmp(s->id, id) != 0)
		s = s->next;
	if (!s && create) {
		if (U.n >= (size_t)U.max) {
			*full = true;
		} else {
			s = calloc(1, sizeof(*s));
			if (s) {
				hf_strlcpy(s->id, id, sizeof(s->id));
				s->next = U.b[i];
				U.b[i] = s;
				U.n++;
			}
		}
	}
	if (s && s->busy)
		s = NULL;
	if (s) {
		s->busy = true;
		s->expires_ms = now + (int64_t)U.ttl_s * 1000;
	}
	pthread_mutex_unlock(&U.lock);
	return s;
}

static void give_back(struct sess *s, bool drop)
{
	pthread_mutex_lock(&U.lock);
	s->busy = false;
	if (drop) {
		struct sess **pp = &U.b[bucket(s->id)];
		while (*pp && *pp != s)
			pp = &(*pp)->next;
		if (*pp) {
			*pp = s->next;
			U.n--;
			sess_free(s);
		}
	}
	pthread_mutex_unlock(&U.lock);
}

void ussd_end(const char *session_id)
{
	bool full;
	struct sess *s = take(session_id, false, &full);
	if (s)
		give_back(s, true);
}

static void message(const char *lang, const char *key, struct hf_buf *reply)
{
	hf_buf_reset(reply);
	if (menu_render_message(U.m, lang, key, NULL, 0, reply) != HF_OK) {
		hf_buf_reset(reply);
		HF_ASSERT(hf_buf_append_str(reply, "Service unavailable.") == HF_OK);
	}
}

/* Runs the engine's output to a screen: actions are performed (a few at most per turn). */
static void drive(struct sess *s, struct menu_out *out, const char *channel)
{
	for (int i = 0; i < MAX_ACTIONS_PER_TURN && out->kind == MENU_OUT_ACTION; i++) {
		struct action_result res;
		char action[MENU_NAME_MAX + 1];
		hf_strlcpy(action, out->action ? out->action : "-", sizeof(action));
		actions_run(out, &s->sub, menu_session_lang(&s->ms), channel, &res);
		hf_err err = menu_action_result(U.m, &s->ms, res.outcome, res.params, res.n, out);
		if (err == HF_EINVAL) {
			/* An outcome or parameter this menu does not know: its error screen is in *out. */
			hf_log(HF_LOG_WARN, "gateway.ussd", "msg=\"action result not in the menu\" action=%s outcome=%s",
			       action, res.outcome);
		}
		/* The language may have changed (set_language). */
		if (s->sub.language[0] && strcmp(s->sub.language, menu_session_lang(&s->ms)) != 0 &&
		    menu_has_language(U.m, s->sub.language))
			hf_strlcpy(s->ms.lang, s->sub.language, sizeof(s->ms.lang));
		sodium_memzero(&res, sizeof(res));
	}
}

static void finish(struct sess *s, const struct menu_out *out, const char *text, struct hf_buf *reply, bool *end)
{
	hf_buf_reset(reply);
	HF_ASSERT(hf_buf_append_str(reply, out->text) == HF_OK); /* a page fits the buffer */
	*end = out->kind != MENU_OUT_CON;
	hf_strlcpy(s->last_text, text ? text : "", sizeof(s->last_text));
	hf_strlcpy(s->last_reply, out->text, sizeof(s->last_reply));
	s->last_end = *end;
}

/* The inputs of a dialled shortcut (2*1 of *384*2*1#), applied while the screen shown is a list of options:
 * they choose from menus only, at most USSD_SHORTCUT_MAX of them. Anything typed into an input screen --
 * a PIN above all -- is left for the person to type (menu_session_takes_shortcut). */
static void shortcut(struct sess *s, const char *inputs, struct menu_out *out, const char *channel)
{
	if (!inputs || !inputs[0])
		return;
	char buf[USSD_TEXT_MAX + 1];
	if (!hf_strlcpy(buf, inputs, sizeof(buf)))
		return;
	char *p = buf;
	for (int i = 0; i < USSD_SHORTCUT_MAX && p; i++) {
		char *next = strchr(p, '*');
		if (next)
			*next++ = '\0';
		if (out->kind != MENU_OUT_CON || !menu_session_takes_shortcut(U.m, &s->ms))
			break;
		if (menu_step(U.m, &s->ms, p, out) != HF_OK)
			break;
		drive(s, out, channel);
		p = next;
	}
	sodium_memzero(buf, sizeof(buf));
}

void ussd_handle(const struct ussd_req *req, struct hf_buf *reply, bool *end)
{
	*end = true;
	const char *text = req->text ? req->text : "";
	/* A session opens with an empty text, or -- a dialled shortcut such as *384*2# -- with the inputs of the
	 * dial string: HTTP sends them as the first text, SMPP in the dial string (req->shortcut). */
	bool first_http = !req->one_input;
	bool first_smpp = req->one_input && !text[0];
	bool full = false;
	struct sess *s = take(req->session_id, first_http || first_smpp, &full);
	if (!s) {
		message(NULL, full ? "ussd.busy" : "ussd.error", reply);
		return;
	}
	/* A session is one phone's. */
	if (s->phone[0] && strcmp(s->phone, req->phone) != 0) {
		give_back(s, false);
		message(NULL, "ussd.error", reply);
		return;
	}
	struct menu_out out;
	bool is_new = !s->phone[0];
	if (is_new) {
		if (!first_http && !first_smpp) {
			/* Inputs for a session we do not know (expired, or before a restart): start again. */
			give_back(s, true);
			message(NULL, "ussd.error", reply);
			return;
		}
		hf_strlcpy(s->phone, req->phone, sizeof(s->phone));
		if (actions_lookup(req->phone, &s->sub) != HF_OK) {
			give_back(s, true);
			message(NULL, "ussd.busy", reply);
			return;
		}
		menu_start(U.m, &s->ms, s->sub.language[0] ? s->sub.language : NULL, s->sub.registered);
		if (menu_step(U.m, &s->ms, NULL, &out) != HF_OK) {
			finish(s, &out, "", reply, end);
			give_back(s, true);
			return;
		}
		drive(s, &out, req->channel);
		shortcut(s, req->one_input ? req->shortcut : text, &out, req->channel);
		finish(s, &out, req->one_input ? "" : text, reply, end);
		give_back(s, *end);
		return;
	}
	/* The input of this turn: HTTP gives the whole path, so it is what follows the previous path and a
	 * '*'; a repeat of the previous path is answered the same again. */
	const char *input = text;
	if (!req->one_input) {
		size_t pl = strlen(s->last_text);
		if (strcmp(text, s->last_text) == 0) {
			hf_buf_reset(reply);
			HF_ASSERT(hf_buf_append_str(reply, s->last_reply) == HF_OK);
			*end = s->last_end;
			give_back(s, *end);
			return;
		}
		if (pl == 0)
			input = text;
		else if (strncmp(text, s->last_text, pl) == 0 && text[pl] == '*')
			input = text + pl + 1;
		else {
			char lang[MENU_LANG_MAX + 1];
			hf_strlcpy(lang, menu_session_lang(&s->ms), sizeof(lang)); /* the session is freed next */
			give_back(s, true);
			message(lang, "ussd.error", reply);
			return;
		}
	}
	hf_err err = menu_step(U.m, &s->ms, input, &out);
	if (!err)
		drive(s, &out, req->channel);
	finish(s, &out, text, reply, end);
	give_back(s, *end);
}
