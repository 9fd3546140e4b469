/* flow.h - the kiosk's screens as a state machine: what a person sees, what each press does, and every call
 * to the reader, the lamps, the printer, the offline queue and core that follows from it.
 *
 * The UI (ui.h) only draws the current state and forwards presses; every rule lives here:
 *  - one person at a time; an idle timeout returns to the start screen and forgets everything typed or read;
 *  - a press made on a stale screen (double tap) is ignored: actions carry the seq of their screen;
 *  - blocking work (a scan, a call to core) runs on the flow's worker thread while the screen says "working";
 *  - money: a collection is recorded by core exactly once (request id, asked again after a timeout before
 *    anything is said), the drawer opens only after core (or, offline, the fsync'd queue) has recorded it,
 *    and a crash between the two is reported, never repeated (see docs/kiosk.md, "Collections and crashes").
 * Offline (core unreachable): status from the signed allowance; collections only of payments in the allowance,
 * verified against its templates, under its cap; each one queued and replayed once when the link returns.
 */
#ifndef KIOSK_FLOW_H
#define KIOSK_FLOW_H

#include "hf_base.h"
#include "hf_err.h"
#include "kclient.h"

struct reader;
struct gpio;
struct gpio_event;
struct queue;

struct flow_config {
	char menus_dir[256];	 /* menus/kiosk: LANG.ini texts */
	char languages[64];	 /* "en,sw,fr": offered, first = default */
	char state_dir[256];	 /* allowance, core keys, pending collection journal */
	char printer[256];	 /* receipt printer device or file; "" = none */
	char receipt_url[256];	 /* public base URL receipts' QR codes point at (core's /r/) */
	char version[32];
	int idle_ms;		 /* back to start after this long without a press */
	int scan_timeout_ms;	 /* one fingerprint scan */
	int heartbeat_s;	 /* heartbeat, allowance refresh and queue replay period */
	int attempts;		 /* fingerprint attempts before the fallback is offered (3) */
	bool enrolment;		 /* enrolment station mode (registration), not a pay point */
};

struct flow_deps {
	struct reader *reader; /* NULL: no reader configured */
	struct gpio *gpio;     /* NULL: no GPIO */
	struct queue *queue;
	struct kclient_id id;  /* core URL, terminal number, signing key */
};

struct flow;

HF_MUST_CHECK hf_err flow_new(const struct flow_config *cfg, const struct flow_deps *deps, struct flow **out,
			      char *msg, size_t msg_cap);
/* Starts the worker and the background thread (heartbeat, allowance, replay, idle timeout). */
HF_MUST_CHECK hf_err flow_start(struct flow *f);
void flow_free(struct flow *f); /* stops the threads first */
/* Ends every waiting long poll at once (before the UI server is stopped, so it does not wait for them). */
void flow_shutdown(struct flow *f);

/* The state as JSON text (ui.h), malloc'd. after >= 0: waits up to wait_ms for a seq greater than after. */
char *flow_state_json(struct flow *f, long long after, int wait_ms);
/* A press on the screen whose seq is given; returns the new state like flow_state_json. */
char *flow_action(struct flow *f, const char *action, const char *value, long long seq);
/* An input line changed (tamper, door, help). */
void flow_gpio_event(struct flow *f, const struct gpio_event *ev);

/* For /healthz and tests: whether the last call to core got an answer, the queue depth, ready screen shown. */
bool flow_online(struct flow *f);
bool flow_ready(struct flow *f);

#endif
