/* subscriber.h - a phone as the USSD and SMS channels see it: who it belongs to, their language, their PIN,
 * and whether the number opted out of SMS. Called by the gateway (service credential) with the phone number
 * in the path, in E.164 or local form; staff unlock a locked PIN.
 *
 * A phone shared by several people (a household's one phone) belongs, for these channels, to the head of
 * household if the head has it, else to the person registered with it first.
 *
 * PINs: 4 digits, never stored or logged: a keyed hash (the key stays in the key folder). pin_max_failures
 * wrong PINs in a row lock it; a one-time code sent by SMS (valid 15 minutes, one a minute; 5 wrong codes in
 * all, however many codes were sent, and only staff can unlock) or a staff member unlocks it. The code goes through the outbox like any SMS (template pin_reset_code). */
#ifndef HF_CORE_SUBSCRIBER_H
#define HF_CORE_SUBSCRIBER_H

#include "svc.h"
#include <jansson.h>

#define SUBSCRIBER_PIN_MAX_FAILURES 5
#define SUBSCRIBER_RESET_TTL_S 900
#define SUBSCRIBER_RESET_MAX_FAILURES 5

/* GET /subscribers/{phone}: {registered, ben_no?, language?, pin: none|set|locked, opted_out} */
HF_MUST_CHECK hf_err subscriber_get(struct svc_call *c, const char *phone, json_t **out);
/* POST /subscribers/{phone}/pin {pin}: the first PIN (409 when one is set: change or reset it). */
HF_MUST_CHECK hf_err subscriber_pin_set(struct svc_call *c, const char *phone, json_t *body, json_t **out);
/* POST /subscribers/{phone}/pin/verify {pin}: {ok} or 401 with the tries left; 423-like 409 when locked. */
HF_MUST_CHECK hf_err subscriber_pin_verify(struct svc_call *c, const char *phone, json_t *body, json_t **out);
/* POST /subscribers/{phone}/pin/change {pin, new_pin} */
HF_MUST_CHECK hf_err subscriber_pin_change(struct svc_call *c, const char *phone, json_t *body, json_t **out);
/* POST /subscribers/{phone}/pin/reset-code: sends a one-time code by SMS to that phone. */
HF_MUST_CHECK hf_err subscriber_pin_reset_code(struct svc_call *c, const char *phone, json_t **out);
/* POST /subscribers/{phone}/pin/reset {code, new_pin} */
HF_MUST_CHECK hf_err subscriber_pin_reset(struct svc_call *c, const char *phone, json_t *body, json_t **out);
/* POST /subscribers/{phone}/language {language} */
HF_MUST_CHECK hf_err subscriber_language(struct svc_call *c, const char *phone, json_t *body, json_t **out);
/* POST /subscribers/{phone}/opt-out and /opt-in (STOP and START): {channel: sms|ussd} */
HF_MUST_CHECK hf_err subscriber_opt(struct svc_call *c, const char *phone, bool out_of, json_t *body, json_t **out);
/* POST /individuals/{ben_no}/pin/unlock (staff): clears a lock and the failures. */
HF_MUST_CHECK hf_err subscriber_pin_unlock(struct svc_call *c, const char *ben_no, json_t **out);
/* The PIN of the kiosk fallback (docs/kiosk-api.md, POST kiosk/overrides), for a person known by id: the same
 * keyed hash, failure count and lockout as POST /subscribers/{phone}/pin/verify, so guesses at a kiosk and
 * on USSD add up. pin: 4 digits (the caller checked the shape). HF_OK when right; HF_EAUTH when wrong (the
 * failure is committed and audited; c->msg says the tries left); HF_ECONFLICT when the PIN is locked;
 * HF_ENOTFOUND when the person has no PIN. */
HF_MUST_CHECK hf_err subscriber_pin_check(struct svc_call *c, int64_t individual_id, const char *ben_no, const char *pin);

#endif
