/* flow.c - the kiosk's screens and what each press does (see flow.h). */
#include "flow.h"

#include "gpio.h"
#include "queue.h"
#include "reader.h"
#include "receipt.h"

#include "hf_buf.h"
#include "hf_checkdigit.h"
#include "hf_config.h"
#include "hf_crypto.h"
#include "hf_log.h"
#include "hf_money.h"

#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PLACE "kiosk.flow"
#define MAX_LANGS 8
#define BEN_LEN 9
#define PIN_MAX 8
#define STAFF_FIELD_MAX 128
#define TEMPLATE_SEALED_MAX (96 * 1024)
#define REPLAY_BATCH 100
#define CHECK_DEADLINE_MS 30000 /* how long a collection's outcome is asked for before staff are called */
#define ALLOWANCE_MAX (4 * 1024 * 1024)
#define AMOUNT_MAX (HF_MONEY_STR_MAX + 8) /* "KES 4,000.00" */
#define ALLOWANCE_REFRESH_MS (10 * 60 * 1000)

static const char *const CATEGORIES[] = {"payment_not_received", "amount_short", "agent_demanded_money",
					 "fingerprint_not_recognised", "exclusion_error", "staff_misconduct", "other",
					 NULL};

enum job {
	JOB_NONE,
	JOB_LOOKUP,    /* templates (collect) or status, after the number was typed */
	JOB_SCAN,      /* one fingerprint attempt */
	JOB_OVERRIDE,  /* PIN + staff credential */
	JOB_PAYMENTS,  /* the payments collectable here */
	JOB_COLLECT,   /* record a collection, open the drawer, print */
	JOB_GRIEVANCE, /* lodge */
	JOB_ENROL,     /* enrolment station: capture and upload a template */
};

struct lang {
	char code[8];
	char name[32];
	json_t *texts; /* key -> text */
};

struct flow {
	struct flow_config cfg;
	struct flow_deps deps;
	uint8_t box_pk[crypto_box_PUBLICKEYBYTES], box_sk[crypto_box_SECRETKEYBYTES]; /* templates sealed to us */
	struct lang langs[MAX_LANGS];
	size_t nlangs;

	pthread_mutex_t mu;
	pthread_cond_t changed; /* the state changed (long polls) */
	pthread_cond_t work;	/* a job was posted, or stop */
	bool stop;
	pthread_t worker, bg;
	bool threads;

	/* ---- the screen */
	long long seq;
	char screen[32];
	json_t *data;
	size_t lang; /* index into langs */
	int64_t touched_ms;
	bool ready;

	/* ---- the person in front of the kiosk (forgotten by session_reset) */
	unsigned long session; /* bumped by every reset: a job of an older session drops its result */
	char purpose[16];      /* collect, status, grievance, enrol */
	char typed[BEN_LEN + 1];
	char ben[BEN_LEN + 1];
	json_t *templates; /* [{"finger","driver","device","sealed"}] */
	int attempt;
	char token[160];
	bool offline_session; /* this person is served from the allowance */
	json_t *payments;     /* the list shown */
	json_t *chosen;	      /* the payment confirmed */
	char pin[PIN_MAX + 1];
	char staff_user[STAFF_FIELD_MAX], staff_pass[STAFF_FIELD_MAX], staff_totp[12];
	char category[40];
	char fallback_why[16]; /* no_template, no_match, reader_fault */
	bool printer_failed;	 /* the last receipt could not be printed */
	bool help_pending;	 /* the help button was pressed: core is told by the background thread */
	bool collecting;	 /* job_collect owns the collection journal now */
	enum job job;

	/* ---- the terminal */
	bool online;
	bool locked;
	char lock_why[16];
	bool tamper_active, door_active;
	char reader_txt[12];
	size_t queue_depth;
	uint8_t core_seal_pk[32], core_sign_pk[32];
	bool have_core_keys;
	json_t *allowance; /* verified, parsed; NULL when none or expired */
	char allowance_id[64];
	int64_t offline_spent;
	int offline_count;
	json_t *offline_done; /* payment ids collected offline under the current allowance */
	int64_t allowance_fetched_ms;
};

/* ------------------------------------------------------------------ small helpers */

static void say(char *msg, size_t cap, const char *fmt, ...) HF_PRINTF(3, 4);
static void say(char *msg, size_t cap, const char *fmt, ...)
{
	if (!msg || cap == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, cap, fmt, ap);
	va_end(ap);
}

static void wipe(void *p, size_t n)
{
	sodium_memzero(p, n);
}

static void lamp(struct flow *f, enum gpio_out o, bool on)
{
	if (f->deps.gpio && gpio_set(f->deps.gpio, o, on) != HF_OK)
		hf_log(HF_LOG_WARN, PLACE, "lamp %s could not be set", gpio_out_name(o));
}

static void beep(struct flow *f, int ms)
{
	if (f->deps.gpio && gpio_pulse(f->deps.gpio, GPIO_BUZZER, ms) != HF_OK)
		hf_log(HF_LOG_WARN, PLACE, "buzzer could not be pulsed");
}

static const char *str_or(const char *s, const char *dflt)
{
	return s ? s : dflt;
}

static void amount_text(const json_t *p, char out[AMOUNT_MAX])
{
	const char *cur = json_string_value(json_object_get(p, "currency"));
	json_int_t amt = json_integer_value(json_object_get(p, "amount"));
	char num[HF_MONEY_STR_MAX];
	hf_money_display((int64_t)amt, cur ? cur : "KES", num);
	snprintf(out, AMOUNT_MAX, "%s %s", cur ? cur : "", num); /* "KES 4,000.00": the currency said */
}

/* Writes text to path atomically and durably: temporary file, fsync, rename, fsync of the folder. */
static hf_err file_put(const char *dir, const char *name, const char *text, size_t len)
{
	char path[600], tmp[620];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return HF_EIO;
	bool ok = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
	ok = close(fd) == 0 && ok;
	if (!ok || rename(tmp, path) != 0) {
		unlink(tmp);
		return HF_EIO;
	}
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	return HF_OK;
}

static hf_err file_get(const char *dir, const char *name, size_t max, struct hf_buf *out)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	hf_buf_release(out);
	return hf_file_read(path, max, false, out);
}

static void file_del(const char *dir, const char *name)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (unlink(path) == 0) {
		int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			(void)fsync(dfd);
			close(dfd);
		}
	}
}

static void uuid_new(char out[37])
{
	uint8_t b[16];
	hf_random_bytes(b, sizeof(b));
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
		 b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

/* Now, UTC, to the millisecond: an offline collection made in the second its allowance arrived must still
 * read as after it (core compares with the allowance's issued_at, which has milliseconds). */
static void now_rfc3339(char out[32])
{
	int64_t ms = hf_now_ms();
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	char sec[24];
	strftime(sec, sizeof(sec), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, 32, "%s.%03dZ", sec, (int)(ms % 1000));
}

/* ------------------------------------------------------------------ texts */

static int ini_text(void *user, const char *section, const char *name, const char *value)
{
	struct lang *l = user;
	if (strcmp(section, "meta") == 0 && strcmp(name, "name") == 0)
		hf_strlcpy(l->name, value, sizeof(l->name));
	else if (strcmp(section, "kiosk") == 0 && strlen(value) <= 400)
		json_object_set_new(l->texts, name, json_string(value));
	return 1;
}

static hf_err texts_load(struct flow *f, char *msg, size_t cap)
{
	char list[64];
	hf_strlcpy(list, f->cfg.languages, sizeof(list));
	for (char *p = list; *p && f->nlangs < MAX_LANGS;) {
		char *comma = strchr(p, ',');
		if (comma)
			*comma = '\0';
		struct lang *l = &f->langs[f->nlangs];
		if (strlen(p) < 2 || strlen(p) >= sizeof(l->code)) {
			say(msg, cap, "ui.languages: bad language code");
			return HF_EINVAL;
		}
		hf_strlcpy(l->code, p, sizeof(l->code));
		hf_strlcpy(l->name, p, sizeof(l->name));
		l->texts = json_object();
		char path[400];
		snprintf(path, sizeof(path), "%s/%s.ini", f->cfg.menus_dir, l->code);
		int rc = ini_parse(path, ini_text, l);
		if (rc != 0 || json_object_size(l->texts) == 0) {
			say(msg, cap, "%s: %s", path, rc < 0 ? "cannot be read" : "not valid (see its line)");
			json_decref(l->texts);
			l->texts = NULL;
			return HF_EINVAL;
		}
		f->nlangs++;
		if (!comma)
			break;
		p = comma + 1;
	}
	if (f->nlangs == 0) {
		say(msg, cap, "ui.languages: no language");
		return HF_EINVAL;
	}
	return HF_OK;
}

/* ------------------------------------------------------------------ the state (mu held) */

static void set_screen(struct flow *f, const char *screen, json_t *data)
{
	hf_strlcpy(f->screen, screen, sizeof(f->screen));
	json_decref(f->data);
	f->data = data ? data : json_object();
	f->seq++;
	pthread_cond_broadcast(&f->changed);
}

static void message(struct flow *f, const char *kind, const char *code)
{
	set_screen(f, "message", json_pack("{s:s, s:s}", "kind", kind, "code", code));
	bool err = strcmp(kind, "error") == 0;
	lamp(f, GPIO_LAMP_RED, err);
	lamp(f, GPIO_LAMP_GREEN, !err);
}

/* Forgets the person: typed digits, the PIN, staff credentials, templates, tokens. */
static void session_reset(struct flow *f)
{
	f->session++;
	f->purpose[0] = '\0';
	wipe(f->typed, sizeof(f->typed));
	wipe(f->ben, sizeof(f->ben));
	wipe(f->pin, sizeof(f->pin));
	wipe(f->staff_user, sizeof(f->staff_user));
	wipe(f->staff_pass, sizeof(f->staff_pass));
	wipe(f->staff_totp, sizeof(f->staff_totp));
	wipe(f->token, sizeof(f->token));
	json_decref(f->templates);
	json_decref(f->payments);
	json_decref(f->chosen);
	f->templates = f->payments = f->chosen = NULL;
	f->attempt = 0;
	f->offline_session = false;
	f->category[0] = '\0';
	f->fallback_why[0] = '\0';
	f->job = JOB_NONE;
	if (f->deps.reader)
		reader_cancel(f->deps.reader);
	f->lang = 0;
}

static void go_start(struct flow *f)
{
	session_reset(f);
	lamp(f, GPIO_LAMP_GREEN, false);
	lamp(f, GPIO_LAMP_RED, false);
	if (f->locked)
		set_screen(f, "locked", json_pack("{s:s}", "why", f->lock_why));
	else
		set_screen(f, "start", json_pack("{s:b}", "enrolment", f->cfg.enrolment));
}

/* The PIN + staff route, and why it is offered: core wants the same reason with the override. */
static void offer_fallback(struct flow *f, const char *why)
{
	hf_strlcpy(f->fallback_why, why, sizeof(f->fallback_why));
	set_screen(f, "fallback_offer", json_pack("{s:s}", "why", why));
}

static void post_job(struct flow *f, enum job j, const char *what)
{
	f->job = j;
	set_screen(f, "working", json_pack("{s:s}", "what", what));
	pthread_cond_broadcast(&f->work); /* the worker and the background thread both wait on it */
}

static char *state_text(struct flow *f)
{
	const struct lang *l = &f->langs[f->lang];
	json_t *choices = json_array();
	for (size_t i = 0; i < f->nlangs; i++)
		json_array_append_new(choices, json_pack("{s:s, s:s}", "code", f->langs[i].code, "name", f->langs[i].name));
	/* Whether the reader is waiting for a finger now (and how many times it asked): the page's "place your
	 * finger" cue, and what a demo or test feeder of the virtual reader waits for. */
	uint64_t asked = 0;
	bool needed = f->deps.reader && reader_finger_needed(f->deps.reader, &asked);
	json_t *st = json_pack("{s:I, s:s, s:s, s:O, s:O, s:{s:b, s:s, s:b, s:I, s:b, s:b, s:I}, s:i, s:o}", "seq",
			       (json_int_t)f->seq, "screen", f->screen, "lang", l->code, "texts", l->texts, "data",
			       f->data, "status", "online", f->online, "reader", f->reader_txt, "locked", f->locked,
			       "queue", (json_int_t)f->queue_depth, "enrolment", f->cfg.enrolment, "finger_needed", needed,
			       "finger_requests", (json_int_t)asked, "idle_ms", f->cfg.idle_ms, "languages", choices);
	char *text = st ? json_dumps(st, JSON_COMPACT) : NULL;
	json_decref(st);
	return text;
}

char *flow_state_json(struct flow *f, long long after, int wait_ms)
{
	pthread_mutex_lock(&f->mu);
	if (after >= 0 && f->seq <= after && wait_ms > 0) {
		struct timespec ts = hf_timespec_in(CLOCK_REALTIME, wait_ms);
		while (f->seq <= after && !f->stop)
			if (pthread_cond_timedwait(&f->changed, &f->mu, &ts) == ETIMEDOUT)
				break;
	}
	char *text = state_text(f);
	pthread_mutex_unlock(&f->mu);
	return text;
}

bool flow_online(struct flow *f)
{
	pthread_mutex_lock(&f->mu);
	bool on = f->online;
	pthread_mutex_unlock(&f->mu);
	return on;
}

bool flow_ready(struct flow *f)
{
	pthread_mutex_lock(&f->mu);
	bool r = f->ready;
	pthread_mutex_unlock(&f->mu);
	return r;
}

/* ------------------------------------------------------------------ presses (mu held) */

static bool digit_ok(const char *v)
{
	return v && v[0] >= '0' && v[0] <= '9' && v[1] == '\0';
}

static void show_enter_ben(struct flow *f)
{
	set_screen(f, "enter_ben",
		   json_pack("{s:s, s:s, s:i}", "purpose", f->purpose, "typed", f->typed, "max", BEN_LEN));
}

/* A payment's number as text: "payment" in allowance items, "id" in core's lists; a string or a number. */
static void payment_id_text(const json_t *p, char out[32])
{
	json_t *v = json_object_get(p, "payment");
	if (!v)
		v = json_object_get(p, "id");
	if (json_is_integer(v))
		snprintf(out, 32, "%lld", (long long)json_integer_value(v));
	else
		hf_strlcpy(out, json_string_value(v) ? json_string_value(v) : "", 32);
}

static void show_payments(struct flow *f)
{
	json_t *items = json_array();
	size_t i;
	json_t *p;
	json_array_foreach(f->payments, i, p)
	{
		char amt[AMOUNT_MAX];
		amount_text(p, amt);
		const char *prog = json_string_value(json_object_get(p, "programme"));
		const char *until = json_string_value(json_object_get(p, "pay_until"));
		char idtxt[32];
		payment_id_text(p, idtxt);
		json_array_append_new(items, json_pack("{s:s, s:s, s:s, s:s}", "payment", idtxt, "amount_text", amt,
						       "programme", prog ? prog : "", "pay_until", until ? until : ""));
	}
	set_screen(f, "payments", json_pack("{s:o, s:b}", "items", items, "offline", f->offline_session));
}

static void show_scan(struct flow *f, const char *phase)
{
	set_screen(f, "scan", json_pack("{s:i, s:i, s:s}", "attempt", f->attempt + 1, "attempts", f->cfg.attempts,
					"phase", phase));
}

static void show_staff(struct flow *f, const char *field)
{
	set_screen(f, "fallback_staff", json_pack("{s:s, s:s}", "field", field, "typed_user", f->staff_user));
}

static json_t *payment_by_id(json_t *list, const char *id)
{
	size_t i;
	json_t *p;
	json_array_foreach(list, i, p)
	{
		char txt[32];
		payment_id_text(p, txt);
		if (strcmp(txt, id) == 0)
			return p;
	}
	return NULL;
}

/* Returns whether the press was accepted (a beep); mu held. */
static bool press(struct flow *f, const char *a, const char *v)
{
	const char *s = f->screen;
	bool is = false;
#define ON(scr, act) (strcmp(s, scr) == 0 && strcmp(a, act) == 0)
	if (strcmp(s, "locked") == 0 || strcmp(s, "working") == 0)
		return false;
	if (strcmp(a, "finish") == 0 || (strcmp(a, "cancel") == 0 && strcmp(s, "scan") != 0) ||
	    (strcmp(a, "back") == 0 && (strcmp(s, "language") == 0 || strcmp(s, "enter_ben") == 0))) {
		go_start(f);
		return true;
	}
	if (ON("start", "collect") || ON("start", "status") || ON("start", "grievance") || ON("start", "enrol")) {
		if (strcmp(a, "enrol") == 0 && !f->cfg.enrolment)
			return false;
		if (strcmp(a, "collect") == 0 && f->cfg.enrolment)
			return false;
		hf_strlcpy(f->purpose, a, sizeof(f->purpose));
		f->typed[0] = '\0';
		show_enter_ben(f); /* for a grievance the number may be skipped (ok with none: anonymous) */
		return true;
	}
	if (ON("start", "language")) {
		set_screen(f, "language", json_object());
		return true;
	}
	if (ON("start", "help")) {
		f->help_pending = true; /* staff see it in core; the background thread sends it */
		pthread_cond_broadcast(&f->work);
		message(f, "info", "help");
		return true;
	}
	if (ON("language", "choose")) {
		for (size_t i = 0; v && i < f->nlangs; i++)
			if (strcmp(f->langs[i].code, v) == 0) {
				f->lang = i;
				set_screen(f, "start", json_pack("{s:b}", "enrolment", f->cfg.enrolment));
				return true;
			}
		return false;
	}
	if (strcmp(s, "enter_ben") == 0) {
		size_t n = strlen(f->typed);
		if (strcmp(a, "digit") == 0 && digit_ok(v) && n < BEN_LEN) {
			f->typed[n] = v[0];
			f->typed[n + 1] = '\0';
			show_enter_ben(f);
			return true;
		}
		if (strcmp(a, "erase") == 0 && n > 0) {
			f->typed[n - 1] = '\0';
			show_enter_ben(f);
			return true;
		}
		if (strcmp(a, "ok") == 0) {
			if (n == 0 && strcmp(f->purpose, "grievance") == 0) {
				f->ben[0] = '\0'; /* anonymous */
				set_screen(f, "grievance_category", json_object());
				return true;
			}
			if (n != BEN_LEN || !hf_check_valid(HF_CHECK_DAMM, f->typed, n)) {
				/* Caught here, before anything is asked of core: a mistyped digit is the usual case. */
				wipe(f->typed, sizeof(f->typed));
				message(f, "error", "bad_ben");
				return true;
			}
			hf_strlcpy(f->ben, f->typed, sizeof(f->ben));
			wipe(f->typed, sizeof(f->typed));
			if (strcmp(f->purpose, "grievance") == 0) {
				set_screen(f, "grievance_category", json_object());
				return true;
			}
			if (strcmp(f->purpose, "enrol") == 0) {
				post_job(f, JOB_ENROL, "enrolling");
				return true;
			}
			post_job(f, JOB_LOOKUP, "checking");
			return true;
		}
		return false;
	}
	if (ON("scan", "cancel")) {
		if (f->deps.reader)
			reader_cancel(f->deps.reader);
		go_start(f);
		return true;
	}
	if (ON("fallback_offer", "fallback")) {
		wipe(f->pin, sizeof(f->pin));
		set_screen(f, "fallback_pin", json_pack("{s:i}", "typed", 0));
		return true;
	}
	if (strcmp(s, "fallback_pin") == 0) {
		size_t n = strlen(f->pin);
		if (strcmp(a, "digit") == 0 && digit_ok(v) && n < PIN_MAX) {
			f->pin[n] = v[0];
			f->pin[n + 1] = '\0';
			is = true;
		} else if (strcmp(a, "erase") == 0 && n > 0) {
			f->pin[n - 1] = '\0';
			is = true;
		} else if (strcmp(a, "ok") == 0 && n >= 4) {
			show_staff(f, "user");
			return true;
		}
		if (is)
			set_screen(f, "fallback_pin", json_pack("{s:i}", "typed", (int)strlen(f->pin)));
		return is;
	}
	if (strcmp(s, "fallback_staff") == 0) {
		const char *field = json_string_value(json_object_get(f->data, "field"));
		if (!field)
			return false;
		if (strcmp(a, "text") == 0 && v && strlen(v) < STAFF_FIELD_MAX) {
			if (strcmp(field, "user") == 0)
				hf_strlcpy(f->staff_user, v, sizeof(f->staff_user));
			else if (strcmp(field, "password") == 0)
				hf_strlcpy(f->staff_pass, v, sizeof(f->staff_pass));
			else if (strlen(v) < sizeof(f->staff_totp))
				hf_strlcpy(f->staff_totp, v, sizeof(f->staff_totp));
			return true;
		}
		if (strcmp(a, "ok") == 0) {
			if (strcmp(field, "user") == 0 && f->staff_user[0]) {
				show_staff(f, "password");
				return true;
			}
			if (strcmp(field, "password") == 0 && f->staff_pass[0]) {
				show_staff(f, "totp");
				return true;
			}
			if (strcmp(field, "totp") == 0) {
				post_job(f, JOB_OVERRIDE, "verifying");
				return true;
			}
		}
		return false;
	}
	if (ON("payments", "choose") && v) {
		json_t *p = payment_by_id(f->payments, v);
		if (!p)
			return false;
		json_decref(f->chosen);
		f->chosen = json_incref(p);
		char amt[AMOUNT_MAX];
		amount_text(p, amt);
		const char *prog = json_string_value(json_object_get(p, "programme"));
		set_screen(f, "confirm", json_pack("{s:s, s:s}", "amount_text", amt, "programme", prog ? prog : ""));
		return true;
	}
	if (ON("confirm", "confirm")) {
		post_job(f, JOB_COLLECT, "collecting");
		return true;
	}
	if (ON("grievance_category", "choose") && v) {
		for (size_t i = 0; CATEGORIES[i]; i++)
			if (strcmp(CATEGORIES[i], v) == 0) {
				hf_strlcpy(f->category, v, sizeof(f->category));
				post_job(f, JOB_GRIEVANCE, "sending");
				return true;
			}
		return false;
	}
	if (ON("grievance_category", "back")) {
		go_start(f);
		return true;
	}
#undef ON
	return false;
}

char *flow_action(struct flow *f, const char *action, const char *value, long long seq)
{
	pthread_mutex_lock(&f->mu);
	bool accepted = false;
	if (action && seq == f->seq && strlen(action) < 32 && (!value || strlen(value) < STAFF_FIELD_MAX)) {
		f->touched_ms = hf_mono_ms();
		accepted = press(f, action, value);
	}
	char *text = state_text(f);
	pthread_mutex_unlock(&f->mu);
	if (accepted)
		beep(f, 40);
	return text;
}

/* ------------------------------------------------------------------ tamper, door, help */

static hf_err report_event(struct flow *f, struct kclient *k, const char *type);

void flow_gpio_event(struct flow *f, const struct gpio_event *ev)
{
	const char *type = NULL;
	pthread_mutex_lock(&f->mu);
	if (ev->line == GPIO_TAMPER || ev->line == GPIO_DOOR) {
		if (ev->line == GPIO_TAMPER)
			f->tamper_active = ev->active;
		else
			f->door_active = ev->active;
		if (ev->active) {
			/* Whoever opened the box may be after the cash: stop serving, forget the person, tell core. */
			f->locked = true;
			hf_strlcpy(f->lock_why, ev->line == GPIO_TAMPER ? "tamper" : "door", sizeof(f->lock_why));
			go_start(f);
			lamp(f, GPIO_LAMP_RED, true);
			type = ev->line == GPIO_TAMPER ? "tamper" : "door_open";
		} else if (ev->line == GPIO_DOOR) {
			type = "door_closed";
		}
	} else if (ev->line == GPIO_HELP && ev->active) {
		type = "help";
	}
	pthread_mutex_unlock(&f->mu);
	if (type) {
		hf_log(HF_LOG_WARN, PLACE, "input event: %s", type);
		struct kclient *k = kclient_new(&f->deps.id);
		if (k) {
			(void)report_event(f, k, type);
			kclient_free(k);
		}
	}
}

/* ------------------------------------------------------------------ core keys, allowance */

static bool b64_decode(const char *in, uint8_t *out, size_t cap, size_t *len)
{
	return in && sodium_base642bin(out, cap, in, strlen(in), NULL, len, NULL, sodium_base64_VARIANT_ORIGINAL) == 0;
}

/* Opens a template sealed to this kiosk; HF_EINVAL when it does not open. */
static hf_err template_open(struct flow *f, const char *sealed_b64, struct hf_buf *out)
{
	size_t cap = TEMPLATE_SEALED_MAX, len = 0;
	uint8_t *sealed = malloc(cap);
	if (!sealed)
		return HF_EINTERNAL;
	hf_err err = HF_EINVAL;
	if (!b64_decode(sealed_b64, sealed, cap, &len) || len <= crypto_box_SEALBYTES)
		goto cleanup;
	size_t plen = len - crypto_box_SEALBYTES;
	if (plen > READER_TEMPLATE_MAX)
		goto cleanup;
	uint8_t *plain = malloc(plen);
	if (!plain) {
		err = HF_EINTERNAL;
		goto cleanup;
	}
	if (crypto_box_seal_open(plain, sealed, len, f->box_pk, f->box_sk) == 0)
		err = hf_buf_append(out, plain, plen);
	sodium_memzero(plain, plen);
	free(plain);
cleanup:
	free(sealed);
	return err;
}

static void core_keys_load(struct flow *f)
{
	struct hf_buf b;
	hf_buf_init(&b, 4096);
	if (file_get(f->cfg.state_dir, "core-keys.json", 4096, &b) == HF_OK) {
		json_error_t je;
		json_t *j = json_loads(hf_buf_cstr(&b), 0, &je);
		size_t l1 = 0, l2 = 0;
		if (j && b64_decode(json_string_value(json_object_get(j, "seal_pk")), f->core_seal_pk, 32, &l1) &&
		    b64_decode(json_string_value(json_object_get(j, "sign_pk")), f->core_sign_pk, 32, &l2) && l1 == 32 &&
		    l2 == 32)
			f->have_core_keys = true;
		json_decref(j);
	}
	hf_buf_release(&b);
}

/* Verifies and installs an allowance (the text core signed, and its signature). mu held. */
static hf_err allowance_install(struct flow *f, const char *text, const char *sig_b64, bool from_disk)
{
	uint8_t sig[crypto_sign_BYTES];
	size_t sl = 0;
	if (!f->have_core_keys || !b64_decode(sig_b64, sig, sizeof(sig), &sl) || sl != sizeof(sig) ||
	    crypto_sign_verify_detached(sig, (const uint8_t *)text, strlen(text), f->core_sign_pk) != 0)
		return HF_EAUTH;
	json_error_t je;
	json_t *a = json_loads(text, JSON_REJECT_DUPLICATES, &je);
	const char *kno = json_string_value(json_object_get(a, "kiosk_no"));
	const char *id = json_string_value(json_object_get(a, "id"));
	if (!a || !kno || strcmp(kno, f->deps.id.kiosk_no) != 0 || !id || strlen(id) >= sizeof(f->allowance_id)) {
		json_decref(a);
		return HF_EINVAL;
	}
	bool same = strcmp(id, f->allowance_id) == 0;
	json_decref(f->allowance);
	f->allowance = a;
	if (!same) {
		hf_strlcpy(f->allowance_id, id, sizeof(f->allowance_id));
		if (!from_disk) {
			/* A new allowance lists only what core knows to be collectable: what was collected offline under
			 * the old one has been replayed (the queue is empty when we fetch). */
			json_array_clear(f->offline_done);
			f->offline_spent = 0;
			f->offline_count = 0;
			file_del(f->cfg.state_dir, "offline-done.json");
		}
	}
	return HF_OK;
}

static bool allowance_valid_now(struct flow *f)
{
	if (!f->allowance)
		return false;
	const char *until = json_string_value(json_object_get(f->allowance, "valid_until"));
	char now[32];
	now_rfc3339(now);
	/* RFC 3339 UTC texts of one format compare as dates. */
	return until && strncmp(now, until, 19) < 0;
}

static void offline_done_save(struct flow *f)
{
	json_t *j = json_pack("{s:s, s:I, s:i, s:O}", "allowance", f->allowance_id, "spent", (json_int_t)f->offline_spent,
			      "count", f->offline_count, "payments", f->offline_done);
	char *text = json_dumps(j, JSON_COMPACT);
	if (!text || file_put(f->cfg.state_dir, "offline-done.json", text, strlen(text)) != HF_OK)
		hf_log(HF_LOG_ERROR, PLACE, "could not save the offline collections list");
	free(text);
	json_decref(j);
}

static void offline_state_load(struct flow *f)
{
	struct hf_buf b;
	hf_buf_init(&b, ALLOWANCE_MAX + 1024);
	if (file_get(f->cfg.state_dir, "allowance.json", ALLOWANCE_MAX + 1024, &b) == HF_OK) {
		json_error_t je;
		json_t *j = json_loads(hf_buf_cstr(&b), 0, &je);
		const char *text = json_string_value(json_object_get(j, "allowance_text"));
		const char *sig = json_string_value(json_object_get(j, "signature"));
		hf_err err = text && sig ? allowance_install(f, text, sig, true) : HF_EINVAL;
		if (err != HF_OK)
			hf_log(HF_LOG_WARN, PLACE, "the stored offline allowance is not usable (%s%s); ignored", hf_err_name(err),
			       f->have_core_keys ? "" : ", core's keys unknown");
		json_decref(j);
	}
	hf_buf_reset(&b);
	if (file_get(f->cfg.state_dir, "offline-done.json", 1024 * 1024, &b) == HF_OK) {
		json_error_t je;
		json_t *j = json_loads(hf_buf_cstr(&b), 0, &je);
		const char *id = json_string_value(json_object_get(j, "allowance"));
		if (j && id && strcmp(id, f->allowance_id) == 0 && json_is_array(json_object_get(j, "payments"))) {
			json_decref(f->offline_done);
			f->offline_done = json_incref(json_object_get(j, "payments"));
			f->offline_spent = (int64_t)json_integer_value(json_object_get(j, "spent"));
			f->offline_count = (int)json_integer_value(json_object_get(j, "count"));
		}
		json_decref(j);
	}
	hf_buf_release(&b);
}

static json_t *allowance_items_for(struct flow *f, const char *ben)
{
	json_t *out = json_array();
	size_t i;
	json_t *it;
	json_array_foreach(json_object_get(f->allowance, "items"), i, it)
	{
		const char *b = json_string_value(json_object_get(it, "ben_no"));
		if (!b || strcmp(b, ben) != 0)
			continue;
		bool done = false;
		size_t k;
		json_t *d;
		json_array_foreach(f->offline_done, k, d) if (json_equal(d, json_object_get(it, "payment"))) done = true;
		if (!done)
			json_array_append(out, it);
	}
	return out;
}

/* ------------------------------------------------------------------ calls to core (worker / bg threads) */

static void mark_online(struct flow *f, hf_err err)
{
	pthread_mutex_lock(&f->mu);
	bool was = f->online;
	f->online = err == HF_OK;
	if (was != f->online)
		hf_log(HF_LOG_INFO, PLACE, "core %s", f->online ? "reachable" : "unreachable: working offline");
	pthread_mutex_unlock(&f->mu);
}

static hf_err core_call(struct flow *f, struct kclient *k, const char *method, const char *path, json_t *body,
			long *status, json_t **out)
{
	hf_err err = kclient_call(k, method, path, body, status, out, NULL);
	mark_online(f, err == HF_OK && *status < 500 ? HF_OK : HF_EUPSTREAM);
	return err;
}

static hf_err report_event(struct flow *f, struct kclient *k, const char *type)
{
	char at[32];
	now_rfc3339(at);
	json_t *body = json_pack("{s:s, s:s}", "type", type, "at", at);
	long st;
	json_t *out = NULL;
	hf_err err = core_call(f, k, "POST", "kiosk/events", body, &st, &out);
	json_decref(out);
	if (err == HF_OK && st >= 400 && st < 500) {
		/* Refused, not lost on the way: queueing it would not help. The caller keeps what it was reporting. */
		hf_log(HF_LOG_ERROR, PLACE, "core refused a %s event: %ld", type, st);
		err = HF_EINVAL;
	} else if (err != HF_OK || st >= 500) {
		/* Offline: the event waits in the queue and is replayed when the link returns. */
		char id[37];
		uuid_new(id);
		json_t *ev = json_pack("{s:s, s:s, s:s, s:s}", "id", id, "type", "event", "event", type, "at", at);
		char *text = json_dumps(ev, JSON_COMPACT);
		uint64_t seq;
		pthread_mutex_lock(&f->mu);
		err = text ? queue_append(f->deps.queue, text, strlen(text), &seq) : HF_EINTERNAL;
		f->queue_depth = queue_depth(f->deps.queue);
		pthread_mutex_unlock(&f->mu);
		free(text);
		json_decref(ev);
	}
	json_decref(body);
	return err;
}

/* ------------------------------------------------------------------ the worker's jobs */

/* Sets a screen from the worker if the person is still the same one; false when they are gone. */
static bool still(struct flow *f, unsigned long session)
{
	return f->session == session && !f->stop;
}

static void job_lookup(struct flow *f, struct kclient *k, unsigned long session)
{
	char ben[BEN_LEN + 1], purpose[16], path[128];
	pthread_mutex_lock(&f->mu);
	hf_strlcpy(ben, f->ben, sizeof(ben));
	hf_strlcpy(purpose, f->purpose, sizeof(purpose));
	pthread_mutex_unlock(&f->mu);
	bool status = strcmp(purpose, "status") == 0;
	snprintf(path, sizeof(path), status ? "kiosk/beneficiaries/%s/status" : "kiosk/beneficiaries/%s/templates", ben);
	long st = 0;
	json_t *out = NULL;
	hf_err err = core_call(f, k, "GET", path, NULL, &st, &out);

	pthread_mutex_lock(&f->mu);
	if (!still(f, session))
		goto cleanup;
	if (err != HF_OK || st >= 500) {
		/* Offline: what the allowance knows. */
		json_t *items = allowance_valid_now(f) ? allowance_items_for(f, ben) : json_array();
		if (json_array_size(items) == 0) {
			json_decref(items);
			message(f, "error", status ? "offline_no_status" : "offline_limit");
			goto cleanup;
		}
		if (status) {
			json_t *first = json_array_get(items, 0);
			char amt[AMOUNT_MAX];
			amount_text(first, amt);
			const char *until = json_string_value(json_object_get(first, "pay_until"));
			set_screen(f, "status",
				   json_pack("{s:[], s:{s:s, s:s, s:s}, s:b}", "enrolments", "next", "amount_text", amt,
					     "date", until ? until : "", "place",
					     str_or(json_string_value(json_object_get(f->allowance, "pay_point")), ""),
					     "offline", true));
			json_decref(items);
			goto cleanup;
		}
		f->offline_session = true;
		json_decref(f->templates);
		f->templates = json_incref(json_object_get(json_array_get(items, 0), "templates"));
		json_decref(f->payments);
		f->payments = items;
		f->attempt = 0;
		if (json_array_size(f->templates) == 0 || !f->deps.reader) {
			/* Offline there is no fallback: the PIN and the staff credential are checked by core. */
			message(f, "error", "offline_no_finger");
		} else {
			show_scan(f, "place");
			f->job = JOB_SCAN;
			pthread_cond_broadcast(&f->work); /* the worker and the background thread both wait on it */
		}
		goto cleanup;
	}
	if (st == 404 || st == 400) {
		message(f, "error", "unknown_ben");
		goto cleanup;
	}
	if (st == 423) {
		f->locked = true;
		hf_strlcpy(f->lock_why, "staff", sizeof(f->lock_why));
		go_start(f);
		goto cleanup;
	}
	if (st != 200) {
		hf_log(HF_LOG_WARN, PLACE, "core refused a lookup: %ld %s", st, kclient_reason(out));
		message(f, "error", "core_error");
		goto cleanup;
	}
	if (status) {
		json_t *enr = json_array(), *next = json_null();
		size_t i;
		json_t *e;
		json_array_foreach(json_object_get(out, "enrolments"), i, e)
		{
			const char *prog = json_string_value(json_object_get(e, "programme"));
			const char *stt = json_string_value(json_object_get(e, "status"));
			json_array_append_new(enr, json_pack("{s:s, s:s}", "programme", prog ? prog : "", "status",
							     stt ? stt : ""));
		}
		json_t *np = json_object_get(out, "next_payment");
		if (json_is_object(np)) {
			char amt[AMOUNT_MAX];
			amount_text(np, amt);
			const char *date = json_string_value(json_object_get(np, "pay_from"));
			if (!date)
				date = json_string_value(json_object_get(np, "date"));
			const char *place = json_string_value(json_object_get(np, "pay_point"));
			next = json_pack("{s:s, s:s, s:s}", "amount_text", amt, "date", date ? date : "", "place",
					 place ? place : "");
		}
		const char *lang = json_string_value(json_object_get(out, "language"));
		for (size_t l = 0; lang && l < f->nlangs; l++)
			if (strcmp(f->langs[l].code, lang) == 0)
				f->lang = l;
		set_screen(f, "status", json_pack("{s:o, s:o, s:b}", "enrolments", enr, "next", next, "offline", false));
		goto cleanup;
	}
	json_decref(f->templates);
	f->templates = json_incref(json_object_get(out, "templates"));
	const char *lang = json_string_value(json_object_get(out, "language"));
	for (size_t l = 0; lang && l < f->nlangs; l++)
		if (strcmp(f->langs[l].code, lang) == 0)
			f->lang = l;
	f->attempt = 0;
	if (json_array_size(f->templates) == 0) {
		/* Never enrolled a finger (or it was removed): only the PIN + staff route is left. */
		offer_fallback(f, "no_template");
		goto cleanup;
	}
	if (!f->deps.reader) {
		offer_fallback(f, "reader_fault");
		goto cleanup;
	}
	show_scan(f, "place");
	f->job = JOB_SCAN;
	pthread_cond_broadcast(&f->work); /* the worker and the background thread both wait on it */
cleanup:
	pthread_mutex_unlock(&f->mu);
	json_decref(out);
}

static void job_payments(struct flow *f, struct kclient *k, unsigned long session)
{
	char ben[BEN_LEN + 1], path[128];
	pthread_mutex_lock(&f->mu);
	hf_strlcpy(ben, f->ben, sizeof(ben));
	bool offline = f->offline_session;
	pthread_mutex_unlock(&f->mu);
	long st = 0;
	json_t *out = NULL;
	hf_err err = HF_OK;
	if (!offline) {
		snprintf(path, sizeof(path), "kiosk/beneficiaries/%s/payments", ben);
		err = core_call(f, k, "GET", path, NULL, &st, &out);
	}
	pthread_mutex_lock(&f->mu);
	if (!still(f, session))
		goto cleanup;
	if (!offline) {
		if (err != HF_OK || st != 200) {
			message(f, "error", err != HF_OK || st >= 500 ? "core_down" : "core_error");
			goto cleanup;
		}
		json_decref(f->payments);
		f->payments = json_incref(json_object_get(out, "items"));
	}
	if (json_array_size(f->payments) == 0) {
		message(f, "info", "no_payments");
		goto cleanup;
	}
	show_payments(f);
cleanup:
	pthread_mutex_unlock(&f->mu);
	json_decref(out);
}

static void verified(struct flow *f)
{
	lamp(f, GPIO_LAMP_GREEN, true);
	lamp(f, GPIO_LAMP_RED, false);
	f->job = JOB_PAYMENTS;
	set_screen(f, "working", json_pack("{s:s}", "what", "checking"));
	pthread_cond_broadcast(&f->work); /* the worker and the background thread both wait on it */
}

static void job_scan(struct flow *f, struct kclient *k, unsigned long session)
{
	struct hf_buf tpl;
	hf_buf_init(&tpl, READER_TEMPLATE_MAX);
	pthread_mutex_lock(&f->mu);
	const char *sealed = json_string_value(json_object_get(json_array_get(f->templates, 0), "sealed"));
	hf_err err = sealed ? template_open(f, sealed, &tpl) : HF_EINVAL;
	char ben[BEN_LEN + 1];
	hf_strlcpy(ben, f->ben, sizeof(ben));
	int attempt = f->attempt + 1;
	bool offline = f->offline_session;
	pthread_mutex_unlock(&f->mu);

	enum reader_match res = READER_NO_MATCH;
	char msg[160] = "";
	if (err == HF_OK)
		err = reader_verify(f->deps.reader, tpl.data, tpl.len, f->cfg.scan_timeout_ms, &res, msg, sizeof(msg));
	hf_buf_release(&tpl);

	if (err == HF_OK && res == READER_RETRY) {
		pthread_mutex_lock(&f->mu);
		if (still(f, session)) {
			show_scan(f, "retry");
			f->job = JOB_SCAN;
			pthread_cond_broadcast(&f->work); /* the worker and the background thread both wait on it */
		}
		pthread_mutex_unlock(&f->mu);
		return;
	}
	const char *result = err == HF_OK ? (res == READER_MATCH ? "match" : "no_match") : "unreadable";
	long st = 0;
	json_t *out = NULL;
	hf_err cerr = HF_OK;
	if (!offline && (err == HF_OK || err == HF_EINVAL)) {
		/* The result is proved to core in a signed request; a match gets the token a collection needs. */
		json_t *body = json_pack("{s:s, s:s, s:i, s:s}", "ben_no", ben, "result", result, "attempt", attempt,
					 "driver", "fprint");
		cerr = core_call(f, k, "POST", "kiosk/verifications", body, &st, &out);
		json_decref(body);
	}
	pthread_mutex_lock(&f->mu);
	if (!still(f, session))
		goto cleanup;
	if (err == HF_ETIMEOUT) {
		message(f, "info", "scan_timeout");
		goto cleanup;
	}
	if (err == HF_EDEVICE || err == HF_ECONFLICT) {
		hf_log(HF_LOG_WARN, PLACE, "reader failed during a scan: %s", msg);
		offer_fallback(f, "reader_fault");
		goto cleanup;
	}
	if (err == HF_EINVAL)
		hf_log(HF_LOG_WARN, PLACE, "the enrolled template cannot be used on this reader");
	if (!offline && (cerr != HF_OK || st >= 500)) {
		message(f, "error", "core_down");
		goto cleanup;
	}
	f->attempt = attempt;
	if (res == READER_MATCH && err == HF_OK) {
		if (!offline) {
			const char *tok = json_string_value(json_object_get(out, "verification"));
			if (st != 201 || !tok || strlen(tok) >= sizeof(f->token)) {
				message(f, "error", st == 423 ? "locked" : "core_error");
				goto cleanup;
			}
			hf_strlcpy(f->token, tok, sizeof(f->token));
		}
		verified(f);
		goto cleanup;
	}
	lamp(f, GPIO_LAMP_RED, true);
	if (err == HF_EINVAL || attempt >= f->cfg.attempts) {
		if (offline)
			message(f, "error", "no_match_offline");
		else
			offer_fallback(f, err == HF_EINVAL ? "no_template" : "no_match");
		goto cleanup;
	}
	show_scan(f, "no_match");
	f->job = JOB_SCAN;
	pthread_cond_broadcast(&f->work); /* the worker and the background thread both wait on it */
cleanup:
	pthread_mutex_unlock(&f->mu);
	json_decref(out);
}

static void job_override(struct flow *f, struct kclient *k, unsigned long session)
{
	pthread_mutex_lock(&f->mu);
	json_t *body = json_pack("{s:s, s:s, s:s, s:s, s:s}", "ben_no", f->ben, "pin", f->pin, "staff_user", f->staff_user,
				 "staff_password", f->staff_pass, "reason",
				 strcmp(f->fallback_why, "no_template") == 0	 ? "no_template"
				 : strcmp(f->fallback_why, "reader_fault") == 0 ? "reader_fault"
										 : "fingerprint_unreadable");
	if (f->staff_totp[0])
		json_object_set_new(body, "staff_totp", json_string(f->staff_totp));
	bool offline = f->offline_session;
	wipe(f->pin, sizeof(f->pin));
	wipe(f->staff_pass, sizeof(f->staff_pass));
	wipe(f->staff_totp, sizeof(f->staff_totp));
	pthread_mutex_unlock(&f->mu);
	long st = 0;
	json_t *out = NULL;
	hf_err err = offline ? HF_EUPSTREAM : core_call(f, k, "POST", "kiosk/overrides", body, &st, &out);
	json_t *pw = json_object_get(body, "staff_password");
	if (pw)
		wipe((void *)json_string_value(pw), strlen(json_string_value(pw)));
	json_decref(body);
	pthread_mutex_lock(&f->mu);
	if (!still(f, session))
		goto cleanup;
	if (err != HF_OK || st >= 500) {
		/* The override needs core: the staff credential and the PIN are checked there, never here. */
		message(f, "error", "override_offline");
		goto cleanup;
	}
	const char *tok = json_string_value(json_object_get(out, "verification"));
	if (st == 201 && tok && strlen(tok) < sizeof(f->token)) {
		hf_strlcpy(f->token, tok, sizeof(f->token));
		verified(f);
		goto cleanup;
	}
	message(f, "error", st == 429 ? "locked_out" : "override_refused");
cleanup:
	pthread_mutex_unlock(&f->mu);
	json_decref(out);
}

/* The receipt: printed, and its absence said on screen (the SMS receipt still comes). */
static bool print_receipt(struct flow *f, const char *receipt_no, const char *check, const char *ben,
			  const char *amount, const char *programme)
{
	if (!f->cfg.printer[0])
		return false;
	char url[512], when[32], title[] = "HIFADHI - PAYMENT RECEIPT";
	if (check && check[0])
		snprintf(url, sizeof(url), "%s/r/%s?c=%s", f->cfg.receipt_url, receipt_no, check);
	else
		snprintf(url, sizeof(url), "%s/r/%s", f->cfg.receipt_url, receipt_no);
	time_t t = time(NULL);
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm);
	struct receipt r = {.title = title,
			    .receipt_no = receipt_no,
			    .ben_no = ben,
			    .amount = amount,
			    .programme = programme && programme[0] ? programme : NULL,
			    .pay_point = f->allowance ? json_string_value(json_object_get(f->allowance, "pay_point")) : NULL,
			    .kiosk_no = f->deps.id.kiosk_no,
			    .when = when,
			    .verify_url = url,
			    .footer = "Keep this receipt. Questions: dial *384#"};
	if (!r.pay_point)
		r.pay_point = "-";
	struct hf_buf bytes;
	hf_buf_init(&bytes, 64 * 1024);
	char msg[160] = "";
	hf_err err = receipt_escpos(&r, &bytes);
	if (err == HF_OK)
		err = receipt_print(f->cfg.printer, &bytes, msg, sizeof(msg));
	hf_buf_release(&bytes);
	if (err != HF_OK)
		hf_log(HF_LOG_WARN, PLACE, "receipt not printed: %s", msg[0] ? msg : hf_err_name(err));
	pthread_mutex_lock(&f->mu);
	f->printer_failed = err != HF_OK;
	pthread_mutex_unlock(&f->mu);
	return err == HF_OK;
}

/* The cash drawer / dispenser: opened once, only after the collection is recorded. */
static void dispense(struct flow *f)
{
	if (f->deps.gpio && gpio_pulse(f->deps.gpio, GPIO_DRAWER, 200) != HF_OK)
		hf_log(HF_LOG_ERROR, PLACE, "the cash drawer line could not be pulsed");
}

/* The journal of the collection in progress (state_dir/collection.json): written before the request leaves,
 * updated when core has recorded it and when the drawer has opened, removed after. At start a leftover is
 * settled with core (see collection_recover). */
static hf_err journal_put(struct flow *f, const char *request_id, const char *payment, const char *stage)
{
	json_t *j = json_pack("{s:s, s:s, s:s}", "request_id", request_id, "payment", payment, "stage", stage);
	char *text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	hf_err err = text ? file_put(f->cfg.state_dir, "collection.json", text, strlen(text)) : HF_EINTERNAL;
	free(text);
	return err;
}

static void job_collect_offline(struct flow *f, unsigned long session)
{
	pthread_mutex_lock(&f->mu);
	if (!still(f, session) || !f->chosen)
		goto unlock;
	json_int_t amount = json_integer_value(json_object_get(f->chosen, "amount"));
	json_int_t cap = json_integer_value(json_object_get(json_object_get(f->allowance, "cap"), "amount"));
	json_int_t maxn = json_integer_value(json_object_get(f->allowance, "max_collections"));
	if (!allowance_valid_now(f) || f->offline_spent + amount > cap || (maxn > 0 && f->offline_count + 1 > maxn)) {
		message(f, "error", "offline_limit");
		goto unlock;
	}
	char id[37], at[32], receipt_no[64];
	uuid_new(id);
	now_rfc3339(at);
	snprintf(receipt_no, sizeof(receipt_no), "K-%s-%lld", f->deps.id.kiosk_no, (long long)hf_now_ms());
	json_t *ev = json_pack("{s:s, s:s, s:s, s:s, s:O, s:s, s:s, s:s, s:I}", "id", id, "type", "collection", "at", at,
			       "allowance", f->allowance_id, "payment", json_object_get(f->chosen, "payment"), "ben_no",
			       f->ben, "method", "fingerprint", "receipt", receipt_no, "amount", amount);
	char *text = json_dumps(ev, JSON_COMPACT);
	json_decref(ev);
	uint64_t seq = 0;
	/* Recorded (fsync'd) before the drawer opens: what was paid out offline is never forgotten. */
	hf_err err = text ? queue_append(f->deps.queue, text, strlen(text), &seq) : HF_EINTERNAL;
	free(text);
	if (err != HF_OK) {
		hf_log(HF_LOG_ERROR, PLACE, "offline collection not recorded (%s): nothing paid", hf_err_name(err));
		message(f, "error", err == HF_ETOOBIG ? "queue_full" : "offline_limit");
		goto unlock;
	}
	f->queue_depth = queue_depth(f->deps.queue);
	/* Between the record and the drawer a crash must be reported, as online (collection_recover). */
	char pidtxt[32];
	payment_id_text(f->chosen, pidtxt);
	(void)journal_put(f, id, pidtxt, "recorded");
	json_array_append(f->offline_done, json_object_get(f->chosen, "payment"));
	f->offline_spent += amount;
	f->offline_count++;
	offline_done_save(f);
	char amt[AMOUNT_MAX], ben[BEN_LEN + 1], prog[80];
	amount_text(f->chosen, amt);
	hf_strlcpy(ben, f->ben, sizeof(ben));
	hf_strlcpy(prog, str_or(json_string_value(json_object_get(f->chosen, "programme")), ""), sizeof(prog));
	pthread_mutex_unlock(&f->mu);

	pthread_mutex_lock(&f->mu);
	bool locked = f->locked;
	pthread_mutex_unlock(&f->mu);
	if (locked) {
		/* As online: no drawer during an alarm; the journal stays at "recorded" and is reported. */
		hf_log(HF_LOG_ERROR, PLACE, "an offline collection was recorded while the kiosk locked: drawer kept shut");
		return;
	}
	dispense(f);
	(void)journal_put(f, id, pidtxt, "dispensed");
	bool printed = print_receipt(f, receipt_no, NULL, ben, amt, prog);
	file_del(f->cfg.state_dir, "collection.json");
	hf_log(HF_LOG_INFO, PLACE, "offline collection recorded in the queue (seq %llu)", (unsigned long long)seq);

	pthread_mutex_lock(&f->mu);
	if (still(f, session)) {
		lamp(f, GPIO_LAMP_GREEN, true);
		set_screen(f, "done", json_pack("{s:s, s:s, s:b, s:b, s:b}", "amount_text", amt, "receipt", receipt_no,
						 "printed", printed, "sms", false, "offline", true));
	}
unlock:
	pthread_mutex_unlock(&f->mu);
}

/* Asks core for the outcome of a collection request until it answers or the deadline passes:
 * 1 recorded (*out is the answer), 0 not recorded, -1 unknown (core unreachable). */
static int collection_outcome(struct flow *f, struct kclient *k, const char *request_id, int deadline_ms, json_t **out)
{
	char path[128];
	snprintf(path, sizeof(path), "kiosk/collections/%s", request_id);
	int64_t end = hf_mono_ms() + deadline_ms;
	do {
		long st = 0;
		json_t *o = NULL;
		hf_err err = core_call(f, k, "GET", path, NULL, &st, &o);
		if (err == HF_OK && (st == 200 || st == 201)) {
			*out = o;
			return 1;
		}
		json_decref(o);
		if (err == HF_OK && st == 404)
			return 0;
		struct timespec ts = {0, 500 * 1000000L};
		nanosleep(&ts, NULL); /* a pause between questions to a core that is not answering */
	} while (hf_mono_ms() < end && !f->stop);
	return -1;
}

static void job_collect(struct flow *f, struct kclient *k, unsigned long session)
{
	pthread_mutex_lock(&f->mu);
	if (f->offline_session) {
		f->collecting = true;
		pthread_mutex_unlock(&f->mu);
		job_collect_offline(f, session);
		pthread_mutex_lock(&f->mu);
		f->collecting = false;
		pthread_mutex_unlock(&f->mu);
		return;
	}
	char payment[32], request_id[37], ben[BEN_LEN + 1];
	payment_id_text(f->chosen, payment);
	f->collecting = true; /* the background thread leaves the journal alone meanwhile */
	uuid_new(request_id);
	hf_strlcpy(ben, f->ben, sizeof(ben));
	json_t *body = json_pack("{s:s, s:s, s:s, s:s}", "payment", payment, "ben_no", ben, "verification", f->token,
				 "request_id", request_id);
	pthread_mutex_unlock(&f->mu);

	json_t *out = NULL;
	long st = 0;
	int recorded = -1;
	if (journal_put(f, request_id, payment, "sent") != HF_OK) {
		hf_log(HF_LOG_ERROR, PLACE, "collection journal cannot be written: nothing sent");
		json_decref(body);
		pthread_mutex_lock(&f->mu);
		f->collecting = false;
		if (still(f, session))
			message(f, "error", "kiosk_fault");
		pthread_mutex_unlock(&f->mu);
		return;
	}
	hf_err err = core_call(f, k, "POST", "kiosk/collections", body, &st, &out);
	if (err == HF_OK && st == 201) {
		recorded = 1;
	} else if (err == HF_OK && st < 500) {
		recorded = 0;
	} else {
		/* No answer: core may or may not have recorded it. Ask before saying anything; a request id core
		 * never saw is sent again (the same id: core records it at most once). */
		json_decref(out);
		out = NULL;
		pthread_mutex_lock(&f->mu);
		if (still(f, session))
			set_screen(f, "working", json_pack("{s:s}", "what", "checking"));
		pthread_mutex_unlock(&f->mu);
		int64_t end = hf_mono_ms() + CHECK_DEADLINE_MS;
		while (recorded < 0 && hf_mono_ms() < end && !f->stop) {
			recorded = collection_outcome(f, k, request_id, (int)(end - hf_mono_ms()), &out);
			if (recorded == 0) {
				err = core_call(f, k, "POST", "kiosk/collections", body, &st, &out);
				recorded = err == HF_OK && st == 201 ? 1 : err == HF_OK && st < 500 ? 0 : -1;
				if (recorded < 0) {
					json_decref(out);
					out = NULL;
				}
			}
		}
	}
	json_decref(body);

	pthread_mutex_lock(&f->mu);
	bool locked = f->locked;
	pthread_mutex_unlock(&f->mu);
	if (recorded == 1 && locked) {
		/* The casing or door opened while core recorded it: no drawer during an alarm. The journal stays at
		 * "recorded", so the background thread reports it (dispense_unknown) for staff to settle. */
		(void)journal_put(f, request_id, payment, "recorded");
		hf_log(HF_LOG_ERROR, PLACE, "a collection was recorded while the kiosk locked: drawer kept shut, reported");
	} else if (recorded == 1) {
		(void)journal_put(f, request_id, payment, "recorded");
		dispense(f);
		(void)journal_put(f, request_id, payment, "dispensed");
		const char *receipt_no = json_string_value(json_object_get(out, "receipt"));
		const char *check = json_string_value(json_object_get(out, "receipt_check"));
		const char *prog = json_string_value(json_object_get(out, "programme"));
		char amt[AMOUNT_MAX];
		amount_text(out, amt);
		bool printed = print_receipt(f, receipt_no ? receipt_no : "-", check, ben, amt, prog);
		file_del(f->cfg.state_dir, "collection.json");
		pthread_mutex_lock(&f->mu);
		if (still(f, session)) {
			lamp(f, GPIO_LAMP_GREEN, true);
			set_screen(f, "done", json_pack("{s:s, s:s, s:b, s:b, s:b}", "amount_text", amt, "receipt",
							 receipt_no ? receipt_no : "", "printed", printed, "sms", true,
							 "offline", false));
		}
		pthread_mutex_unlock(&f->mu);
	} else {
		if (recorded == 0)
			file_del(f->cfg.state_dir, "collection.json");
		/* recorded < 0: the journal stays; collection_recover settles it when core answers again, and
		 * nothing was paid out. */
		const char *reason = kclient_reason(out);
		pthread_mutex_lock(&f->mu);
		if (still(f, session))
			message(f, "error",
				recorded < 0				 ? "collect_unknown"
				: strcmp(reason, "already_collected") == 0 ? "already_collected"
				: st == 423				 ? "locked"
									 : "collect_refused");
		pthread_mutex_unlock(&f->mu);
		if (recorded == 0) {
			char fields[160];
			kclient_fields(out, fields, sizeof(fields));
			hf_log(HF_LOG_WARN, PLACE, "core refused a collection: %ld %s%s%s", st, reason, fields[0] ? " in " : "",
			       fields);
		}
	}
	json_decref(out);
	pthread_mutex_lock(&f->mu);
	f->collecting = false;
	pthread_mutex_unlock(&f->mu);
}

/* A collection left in the journal by a crash or a lost link: settled with core, never paid out twice.
 * "sent": core is asked; not recorded -> forgotten (nothing was paid); recorded -> as "recorded".
 * "recorded": core has it but the drawer may not have opened: reported to core for staff to settle with
 * the person (the kiosk cannot know whether the cash left), never opened again automatically.
 * "dispensed": all done but the receipt; nothing to do. */
static void collection_recover(struct flow *f, struct kclient *k)
{
	struct hf_buf b;
	hf_buf_init(&b, 4096);
	if (file_get(f->cfg.state_dir, "collection.json", 4096, &b) != HF_OK) {
		hf_buf_release(&b);
		return;
	}
	json_error_t je;
	json_t *j = json_loads(hf_buf_cstr(&b), 0, &je);
	hf_buf_release(&b);
	const char *rid = json_string_value(json_object_get(j, "request_id"));
	const char *stage = json_string_value(json_object_get(j, "stage"));
	if (!rid || !stage) {
		hf_log(HF_LOG_ERROR, PLACE, "collection journal unreadable; left for an operator");
		json_decref(j);
		return;
	}
	if (strcmp(stage, "dispensed") == 0) {
		file_del(f->cfg.state_dir, "collection.json");
		json_decref(j);
		return;
	}
	json_t *out = NULL;
	int rec = strcmp(stage, "recorded") == 0 ? 1 : collection_outcome(f, k, rid, 2000, &out);
	json_decref(out);
	if (rec == 0) {
		hf_log(HF_LOG_INFO, PLACE, "an interrupted collection was never recorded: nothing was paid");
		file_del(f->cfg.state_dir, "collection.json");
	} else if (rec == 1) {
		hf_log(HF_LOG_ERROR, PLACE, "an interrupted collection was recorded but the cash may not have left: reported");
		if (report_event(f, k, "dispense_unknown") == HF_OK)
			file_del(f->cfg.state_dir, "collection.json");
	}
	json_decref(j);
}

static void job_grievance(struct flow *f, struct kclient *k, unsigned long session)
{
	pthread_mutex_lock(&f->mu);
	json_t *body = json_pack("{s:s, s:s}", "category", f->category, "language", f->langs[f->lang].code);
	if (f->ben[0])
		json_object_set_new(body, "ben_no", json_string(f->ben));
	pthread_mutex_unlock(&f->mu);
	long st = 0;
	json_t *out = NULL;
	hf_err err = core_call(f, k, "POST", "kiosk/grievances", body, &st, &out);
	bool queued = false;
	if (err != HF_OK || st >= 500) {
		char id[37], at[32];
		uuid_new(id);
		now_rfc3339(at);
		json_t *ev = json_deep_copy(body);
		json_object_set_new(ev, "id", json_string(id));
		json_object_set_new(ev, "type", json_string("grievance"));
		json_object_set_new(ev, "at", json_string(at));
		char *text = json_dumps(ev, JSON_COMPACT);
		uint64_t seq;
		pthread_mutex_lock(&f->mu);
		queued = text && queue_append(f->deps.queue, text, strlen(text), &seq) == HF_OK;
		f->queue_depth = queue_depth(f->deps.queue);
		pthread_mutex_unlock(&f->mu);
		free(text);
		json_decref(ev);
	}
	json_decref(body);
	pthread_mutex_lock(&f->mu);
	if (still(f, session)) {
		const char *ref = json_string_value(json_object_get(out, "reference"));
		if (err == HF_OK && st == 201 && ref)
			set_screen(f, "grievance_done", json_pack("{s:s, s:b}", "reference", ref, "queued", false));
		else if (queued)
			set_screen(f, "grievance_done", json_pack("{s:s, s:b}", "reference", "", "queued", true));
		else
			message(f, "error", "core_error");
	}
	pthread_mutex_unlock(&f->mu);
	json_decref(out);
}

struct enrol_ctx {
	struct flow *f;
	unsigned long session;
};

static void enrol_progress(void *ud, int stage_done, int stages, bool retry)
{
	struct enrol_ctx *c = ud;
	pthread_mutex_lock(&c->f->mu);
	if (still(c->f, c->session))
		set_screen(c->f, "enrol_scan", json_pack("{s:i, s:i, s:s}", "stage", stage_done, "stages", stages, "phase",
							 retry ? "again" : "place"));
	pthread_mutex_unlock(&c->f->mu);
	if (!retry)
		beep(c->f, 40);
}

static void job_enrol(struct flow *f, struct kclient *k, unsigned long session)
{
	char ben[BEN_LEN + 1];
	pthread_mutex_lock(&f->mu);
	hf_strlcpy(ben, f->ben, sizeof(ben));
	bool keys = f->have_core_keys;
	if (still(f, session))
		set_screen(f, "enrol_scan", json_pack("{s:i, s:i, s:s}", "stage", 0, "stages", 5, "phase", "place"));
	pthread_mutex_unlock(&f->mu);
	struct hf_buf tpl;
	hf_buf_init(&tpl, READER_TEMPLATE_MAX);
	char msg[160] = "", driver[READER_DRIVER_MAX] = "", device[READER_DRIVER_MAX] = "";
	struct enrol_ctx ctx = {f, session};
	hf_err err = !keys ? HF_EUPSTREAM
		     : f->deps.reader ? reader_enrol(f->deps.reader, f->cfg.scan_timeout_ms * 5, enrol_progress, &ctx, &tpl,
						    msg, sizeof(msg))
				      : HF_EDEVICE;
	long st = 0;
	json_t *out = NULL;
	if (err == HF_OK) {
		reader_identity(f->deps.reader, driver, device);
		size_t slen = tpl.len + crypto_box_SEALBYTES;
		uint8_t *sealed = malloc(slen);
		size_t b64cap = sodium_base64_ENCODED_LEN(slen, sodium_base64_VARIANT_ORIGINAL);
		char *b64 = malloc(b64cap);
		if (sealed && b64 && crypto_box_seal(sealed, (const uint8_t *)tpl.data, tpl.len, f->core_seal_pk) == 0) {
			sodium_bin2base64(b64, b64cap, sealed, slen, sodium_base64_VARIANT_ORIGINAL);
			json_t *body = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "ben_no", ben, "finger", "right_index",
						 "driver", driver, "device", device, "format", "fprint3", "sealed", b64);
			err = core_call(f, k, "POST", "kiosk/templates", body, &st, &out);
			json_decref(body);
		} else {
			err = HF_EINTERNAL;
		}
		free(sealed);
		free(b64);
	}
	if (tpl.data)
		sodium_memzero(tpl.data, tpl.len);
	hf_buf_release(&tpl);
	pthread_mutex_lock(&f->mu);
	if (still(f, session)) {
		if (err == HF_OK && st == 201)
			set_screen(f, "enrol_done", json_pack("{s:b}", "replaced", json_is_true(json_object_get(out, "replaced"))));
		else if (err == HF_ETIMEOUT)
			message(f, "info", "scan_timeout");
		else if (err == HF_EDEVICE)
			message(f, "error", "reader_absent");
		else if (err == HF_OK && (st == 404 || st == 400))
			message(f, "error", "unknown_ben");
		else
			message(f, "error", err == HF_OK ? "core_error" : "core_down");
	}
	pthread_mutex_unlock(&f->mu);
	json_decref(out);
}

static void *worker_main(void *arg)
{
	struct flow *f = arg;
	struct kclient *k = kclient_new(&f->deps.id);
	HF_ASSERT(k);
	pthread_mutex_lock(&f->mu);
	while (!f->stop) {
		if (f->job == JOB_NONE) {
			pthread_cond_wait(&f->work, &f->mu);
			continue;
		}
		enum job j = f->job;
		f->job = JOB_NONE;
		unsigned long session = f->session;
		pthread_mutex_unlock(&f->mu);
		switch (j) {
		case JOB_LOOKUP: job_lookup(f, k, session); break;
		case JOB_SCAN: job_scan(f, k, session); break;
		case JOB_OVERRIDE: job_override(f, k, session); break;
		case JOB_PAYMENTS: job_payments(f, k, session); break;
		case JOB_COLLECT: job_collect(f, k, session); break;
		case JOB_GRIEVANCE: job_grievance(f, k, session); break;
		case JOB_ENROL: job_enrol(f, k, session); break;
		case JOB_NONE: break;
		}
		pthread_mutex_lock(&f->mu);
	}
	pthread_mutex_unlock(&f->mu);
	kclient_free(k);
	return NULL;
}

/* ------------------------------------------------------------------ background: health, allowance, replay */

struct replay_ctx {
	json_t *events;
	uint64_t last;
};

static void replay_visit(void *ud, uint64_t seq, const char *json, size_t len)
{
	struct replay_ctx *c = ud;
	json_error_t je;
	json_t *ev = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
	if (ev)
		json_array_append_new(c->events, ev);
	else
		hf_log(HF_LOG_ERROR, PLACE, "queued event %llu does not parse; skipped", (unsigned long long)seq);
	c->last = seq;
}

/* Sends queued events, oldest first, until the queue is empty or core stops answering. Each batch is
 * acknowledged only after core answered for every event in it (core is idempotent per event id). */
static void replay(struct flow *f, struct kclient *k)
{
	for (;;) {
		struct replay_ctx c = {json_array(), 0};
		pthread_mutex_lock(&f->mu);
		size_t n = queue_peek(f->deps.queue, REPLAY_BATCH, replay_visit, &c);
		pthread_mutex_unlock(&f->mu);
		if (n == 0) {
			json_decref(c.events);
			return;
		}
		json_t *body = json_pack("{s:o}", "events", c.events);
		long st = 0;
		json_t *out = NULL;
		hf_err err = core_call(f, k, "POST", "kiosk/offline-events", body, &st, &out);
		json_decref(body);
		size_t answered = json_array_size(json_object_get(out, "results"));
		size_t conflicts = 0;
		size_t i;
		json_t *r;
		json_array_foreach(json_object_get(out, "results"), i, r)
		{
			const char *s = json_string_value(json_object_get(r, "status"));
			if (s && (strcmp(s, "conflict") == 0 || strcmp(s, "rejected") == 0))
				conflicts++;
		}
		json_decref(out);
		if (err != HF_OK || st != 200 || answered == 0) {
			if (err == HF_OK && st != 200)
				hf_log(HF_LOG_WARN, PLACE, "core refused a replay batch: %ld; kept for later", st);
			return;
		}
		if (conflicts)
			hf_log(HF_LOG_WARN, PLACE, "%zu replayed events were conflicts or refused (alerted in core)", conflicts);
		pthread_mutex_lock(&f->mu);
		if (queue_ack(f->deps.queue, c.last) != HF_OK)
			hf_log(HF_LOG_ERROR, PLACE, "queue acknowledgement not written");
		f->queue_depth = queue_depth(f->deps.queue);
		pthread_mutex_unlock(&f->mu);
		hf_log(HF_LOG_INFO, PLACE, "replayed %zu queued events", n);
	}
}

static void fetch_core_keys(struct flow *f, struct kclient *k)
{
	long st = 0;
	json_t *out = NULL;
	if (core_call(f, k, "GET", "kiosk/me", NULL, &st, &out) == HF_OK && st == 200) {
		const char *seal = json_string_value(json_object_get(out, "seal_pk"));
		const char *sign = json_string_value(json_object_get(out, "sign_pk"));
		if (seal && sign) {
			json_t *keys = json_pack("{s:s, s:s}", "seal_pk", seal, "sign_pk", sign);
			char *text = json_dumps(keys, JSON_COMPACT);
			if (text && file_put(f->cfg.state_dir, "core-keys.json", text, strlen(text)) == HF_OK) {
				pthread_mutex_lock(&f->mu);
				core_keys_load(f);
				pthread_mutex_unlock(&f->mu);
			}
			free(text);
			json_decref(keys);
		}
	}
	json_decref(out);
}

static void fetch_allowance(struct flow *f, struct kclient *k)
{
	long st = 0;
	json_t *out = NULL;
	char *raw = NULL;
	hf_err err = kclient_call(k, "GET", "kiosk/allowance", NULL, &st, &out, &raw);
	if (err == HF_OK && st == 200) {
		const char *text = json_string_value(json_object_get(out, "allowance_text"));
		const char *sig = json_string_value(json_object_get(out, "signature"));
		pthread_mutex_lock(&f->mu);
		hf_err e = text && sig ? allowance_install(f, text, sig, false) : HF_EINVAL;
		pthread_mutex_unlock(&f->mu);
		if (e == HF_OK && raw)
			(void)file_put(f->cfg.state_dir, "allowance.json", raw, strlen(raw));
		else
			hf_log(HF_LOG_ERROR, PLACE, "core's offline allowance does not verify (%s); not used", hf_err_name(e));
	}
	free(raw);
	json_decref(out);
}

static void heartbeat(struct flow *f, struct kclient *k)
{
	pthread_mutex_lock(&f->mu);
	const char *reader = f->reader_txt;
	json_t *body = json_pack("{s:s, s:s, s:s, s:b, s:b, s:b, s:I, s:I}", "version", f->cfg.version, "reader", reader,
				 "printer", !f->cfg.printer[0] ? "absent" : f->printer_failed ? "failed" : "ok", "tamper", f->tamper_active, "door_open",
				 f->door_active, "locked", f->locked, "queue_depth", (json_int_t)queue_depth(f->deps.queue),
				 "queue_oldest_s", (json_int_t)queue_oldest_age_s(f->deps.queue));
	pthread_mutex_unlock(&f->mu);
	long st = 0;
	json_t *out = NULL;
	hf_err err = core_call(f, k, "POST", "kiosk/heartbeat", body, &st, &out);
	json_decref(body);
	if (err == HF_OK && st == 200) {
		json_t *lk = json_object_get(out, "locked");
		pthread_mutex_lock(&f->mu);
		/* Core says the allowance changed (a new cap, payments approved at this pay point): fetch it now. */
		if (json_is_true(json_object_get(out, "allowance_refresh")))
			f->allowance_fetched_ms = 0;
		/* Staff unlock in core; the kiosk opens again only when its own switches are quiet too, and when
		 * nothing is waiting in the queue (a tamper alarm raised offline must reach core before core's "not
		 * locked" can mean anything). */
		if (json_is_boolean(lk) && !json_is_true(lk) && f->locked && !f->tamper_active && !f->door_active &&
		    queue_depth(f->deps.queue) == 0) {
			f->locked = false;
			go_start(f);
		} else if (json_is_true(lk) && !f->locked) {
			f->locked = true;
			hf_strlcpy(f->lock_why, "staff", sizeof(f->lock_why));
			go_start(f);
		}
		pthread_mutex_unlock(&f->mu);
	}
	json_decref(out);
}

static void reader_watch(struct flow *f)
{
	char why[80] = "";
	const char *txt = "absent";
	if (f->deps.reader) {
		enum reader_state s = reader_state(f->deps.reader, why, sizeof(why));
		txt = s == READER_READY || s == READER_BUSY ? "ok" : s == READER_FAILED ? "failed" : "absent";
	}
	pthread_mutex_lock(&f->mu);
	if (strcmp(txt, f->reader_txt) != 0) {
		bool fault = strcmp(txt, "ok") != 0;
		hf_log(fault ? HF_LOG_WARN : HF_LOG_INFO, PLACE, "reader %s%s%s", txt, why[0] ? ": " : "", why);
		hf_strlcpy(f->reader_txt, txt, sizeof(f->reader_txt));
		lamp(f, GPIO_LAMP_FAULT, fault && f->deps.reader);
		f->seq++; /* the status bar changes */
		pthread_cond_broadcast(&f->changed);
	}
	pthread_mutex_unlock(&f->mu);
}

static void *bg_main(void *arg)
{
	struct flow *f = arg;
	struct kclient *k = kclient_new(&f->deps.id);
	HF_ASSERT(k);
	int64_t next_beat = 0;
	int misses = 0;
	bool keys = false;
	char last_reader[12] = "";
	reader_watch(f);
	pthread_mutex_lock(&f->mu);
	/* Ready means the start screen is served: it is, whether or not core answers (offline is a mode, not a
	 * fault), so the first round with core (keys, heartbeat, replay) does not delay it. */
	f->ready = true;
	pthread_mutex_unlock(&f->mu);
	hf_log(HF_LOG_INFO, PLACE, "ready");
	while (!f->stop) {
		reader_watch(f);
		pthread_mutex_lock(&f->mu);
		bool reader_changed = strcmp(last_reader, f->reader_txt) != 0;
		hf_strlcpy(last_reader, f->reader_txt, sizeof(last_reader));
		/* Idle timeout: back to the start screen, the person forgotten. */
		bool idle_screen = strcmp(f->screen, "start") != 0 && strcmp(f->screen, "locked") != 0 &&
				   strcmp(f->screen, "working") != 0;
		if (idle_screen && hf_mono_ms() - f->touched_ms > f->cfg.idle_ms)
			go_start(f);
		bool help = f->help_pending;
		f->help_pending = false;
		pthread_mutex_unlock(&f->mu);
		if (help)
			(void)report_event(f, k, "help");
		if (reader_changed && next_beat != 0)
			next_beat = 0; /* tell core about a reader change at once */
		if (hf_mono_ms() >= next_beat) {
			if (!keys) {
				fetch_core_keys(f, k);
				pthread_mutex_lock(&f->mu);
				keys = f->have_core_keys && f->online;
				pthread_mutex_unlock(&f->mu);
			}
			pthread_mutex_lock(&f->mu);
			bool collecting = f->collecting;
			pthread_mutex_unlock(&f->mu);
			if (!collecting)
				collection_recover(f, k);
			heartbeat(f, k);
			if (flow_online(f)) {
				replay(f, k);
				pthread_mutex_lock(&f->mu);
				bool empty = queue_depth(f->deps.queue) == 0;
				/* Refreshed every ALLOWANCE_REFRESH_MS (payments become collectable, others are paid
				 * elsewhere) and at once when it expired; only with an empty queue, so that what was
				 * collected offline is already known to core when it writes the next one. */
				bool due = !allowance_valid_now(f) || hf_mono_ms() - f->allowance_fetched_ms > ALLOWANCE_REFRESH_MS ||
					   f->allowance_fetched_ms == 0;
				pthread_mutex_unlock(&f->mu);
				if (empty && due && !f->cfg.enrolment) {
					fetch_allowance(f, k);
					pthread_mutex_lock(&f->mu);
					f->allowance_fetched_ms = hf_mono_ms();
					pthread_mutex_unlock(&f->mu);
				}
			}
			/* Offline, core is tried less often (up to 4 periods apart): each failed try is a log line. */
			int64_t period = (int64_t)f->cfg.heartbeat_s * 1000;
			misses = flow_online(f) ? 0 : misses < 2 ? misses + 1 : 2;
			next_beat = hf_mono_ms() + (period << misses);
		}
		pthread_mutex_lock(&f->mu);
		if (!f->stop) {
			struct timespec ts = hf_timespec_in(CLOCK_REALTIME, 250);
			(void)pthread_cond_timedwait(&f->work, &f->mu, &ts);
		}
		pthread_mutex_unlock(&f->mu);
	}
	kclient_free(k);
	return NULL;
}

/* ------------------------------------------------------------------ life cycle */

hf_err flow_new(const struct flow_config *cfg, const struct flow_deps *deps, struct flow **out, char *msg, size_t cap)
{
	struct flow *f = hf_xcalloc(1, sizeof(*f));
	f->cfg = *cfg;
	f->deps = *deps;
	if (f->cfg.attempts <= 0)
		f->cfg.attempts = 3;
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->changed, NULL);
	pthread_cond_init(&f->work, NULL);
	f->offline_done = json_array();
	hf_strlcpy(f->reader_txt, "absent", sizeof(f->reader_txt));
	if (crypto_sign_ed25519_pk_to_curve25519(f->box_pk, deps->id.sk + 32) != 0 ||
	    crypto_sign_ed25519_sk_to_curve25519(f->box_sk, deps->id.sk) != 0) {
		say(msg, cap, "the kiosk key cannot be converted for opening templates");
		flow_free(f);
		return HF_EINVAL;
	}
	hf_err err = texts_load(f, msg, cap);
	if (err != HF_OK) {
		flow_free(f);
		return err;
	}
	core_keys_load(f);
	offline_state_load(f);
	f->queue_depth = queue_depth(deps->queue);
	f->touched_ms = hf_mono_ms();
	go_start(f);
	*out = f;
	return HF_OK;
}

hf_err flow_start(struct flow *f)
{
	if (pthread_create(&f->worker, NULL, worker_main, f) != 0)
		return HF_EINTERNAL;
	if (pthread_create(&f->bg, NULL, bg_main, f) != 0) {
		pthread_mutex_lock(&f->mu);
		f->stop = true;
		pthread_cond_broadcast(&f->work);
		pthread_mutex_unlock(&f->mu);
		pthread_join(f->worker, NULL);
		return HF_EINTERNAL;
	}
	f->threads = true;
	return HF_OK;
}

void flow_shutdown(struct flow *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->mu);
	f->stop = true;
	pthread_cond_broadcast(&f->changed);
	pthread_cond_broadcast(&f->work);
	pthread_mutex_unlock(&f->mu);
}

void flow_free(struct flow *f)
{
	if (!f)
		return;
	if (f->threads) {
		pthread_mutex_lock(&f->mu);
		f->stop = true;
		pthread_cond_broadcast(&f->work);
		pthread_cond_broadcast(&f->changed);
		pthread_mutex_unlock(&f->mu);
		if (f->deps.reader)
			reader_cancel(f->deps.reader);
		pthread_join(f->worker, NULL);
		pthread_join(f->bg, NULL);
	}
	session_reset(f);
	json_decref(f->data);
	json_decref(f->allowance);
	json_decref(f->offline_done);
	for (size_t i = 0; i < f->nlangs; i++)
		json_decref(f->langs[i].texts);
	sodium_memzero(f->box_sk, sizeof(f->box_sk));
	sodium_memzero(f->deps.id.sk, sizeof(f->deps.id.sk));
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->changed);
	pthread_cond_destroy(&f->work);
	free(f);
}
