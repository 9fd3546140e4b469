/* ui.h - the touch UI's server: a local web page on 127.0.0.1:8082 that Chromium shows in kiosk mode.
 *
 * The page (kiosk/ui/index.html, app.js, style.css, icons) is static and holds no logic of its own beyond
 * drawing the screen the daemon says is current; every decision is the daemon's (kiosk/flow.c). It talks
 * to the daemon with two calls, both JSON, both loopback only:
 *
 *   GET  /api/state[?after=SEQ]   the current screen. With after=SEQ the answer waits (up to 20 s) until
 *                                 the screen's seq is greater than SEQ, so the page long-polls and a lamp
 *                                 or reader event on the daemon's side shows at once.
 *   POST /api/action              {"action": NAME, "value": TEXT?, "seq": SEQ} -> the new state. SEQ is
 *                                 the seq of the screen the press was made on: a press on a stale screen
 *                                 (double tap, a screen that changed meanwhile) is ignored and the current
 *                                 state returned, so nothing happens twice.
 *
 * A state: {"seq": n, "screen": NAME, "lang": "en"|"sw"|"fr", "texts": {KEY: TEXT, ...} (every text of the
 * person's language, from menus/kiosk/LANG.ini; docs/kiosk-ui.md lists the keys), "data": {...} (per screen,
 * below), "status": {"online": bool, "reader": "ok"|"absent"|"failed", "locked": bool, "queue": n,
 * "enrolment": bool (an enrolment station), "finger_needed": bool (the reader waits for a finger now),
 * "finger_requests": n}, "languages": [{"code","name"}] (what the language screen offers), "idle_ms": n (the
 * screen returns to start after this much inactivity; the daemon enforces it)}.
 *
 * Screens (NAME: data; actions accepted):
 *   start:            {"enrolment": bool}; "collect" (a pay point) or "enrol" (an enrolment station), "status",
 *                     "grievance", "language", "help"
 *   language:         {} (the choices are the state's "languages"); "choose" value=code, "back"
 *   enter_ben:        {"purpose": "collect"|"status"|"grievance"|"enrol", "typed": "digits so far", "max": n};
 *                     "digit" value="0".."9", "erase", "ok" (with no digits for a grievance: anonymous), "back"
 *   enrol_scan:       {"stage": done so far, "stages": n, "phase": "place"|"again"}; "cancel"
 *   enrol_done:       {"replaced": bool}; "finish"
 *   scan:             {"attempt": 1-3, "attempts": 3, "phase": "place"|"reading"|"retry"|"no_match"};
 *                     "cancel" (the finger itself advances the flow)
 *   fallback_offer:   {"why": "no_match"|"no_template"|"reader_fault"}; "fallback" (PIN + staff), "cancel"
 *   fallback_pin:     {"typed": n (count of digits, never the digits)}; "digit", "erase", "ok", "cancel"
 *   fallback_staff:   {"field": "user"|"password"|"totp", "typed_user": text}; "text" value=TEXT (the
 *                     staff member types on the on-screen keyboard; the page sends the whole field), "ok",
 *                     "cancel"
 *   payments:         {"items": [{"payment","amount_text","programme","pay_until"}], "offline": bool};
 *                     "choose" value=payment, "cancel"
 *   confirm:          {"amount_text", "programme"}; "confirm", "cancel"
 *   working:          {"what": "verifying"|"collecting"|"checking"|"enrolling"|"sending"}; no actions
 *   done:             {"amount_text", "receipt", "printed": bool, "sms": bool, "offline": bool}; "finish"
 *   status:           {"enrolments": [{"programme","status"}], "next": {"amount_text","date","place"}|null,
 *                     "offline": bool}; "finish"
 *   grievance_category: {} (one choice per category text cat_CODE); "choose" value=code, "back"
 *   grievance_done:   {"reference" ("" when queued offline), "queued": bool}; "finish"
 *   message:          {"kind": "error"|"info", "code": "unknown_ben"|"no_payments"|"no_match"|"reader_absent"|
 *                     "core_down"|"offline_limit"|"locked_out"|..., "text" is in texts}; "finish"
 *   locked:           {"why": "tamper"|"door"|"staff"}; no actions (staff unlock it from the console)
 *
 * Sounds and lamps are the daemon's: every accepted action beeps; success lights green, a refusal red.
 */
#ifndef KIOSK_UI_H
#define KIOSK_UI_H

#include "hf_base.h"
#include "hf_err.h"

struct flow;
struct ui;

/* Serves the page from static_dir and the API over flow on addr:port (loopback in tests and production). */
HF_MUST_CHECK hf_err ui_start(const char *addr, int port, const char *static_dir, struct flow *flow, struct ui **out);
void ui_stop(struct ui *u);

#endif
