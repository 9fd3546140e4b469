/* ussd.h - USSD sessions: the aggregator's convention over HTTP (sessionId, serviceCode, phoneNumber,
 * networkCode, text = every input so far joined by '*') and USSD over SMPP through Kannel (one input per
 * message). Each session's menu state is kept in memory for ussd.session_ttl_s; an input is the text
 * after the previous one, so a '*' the subscriber types stays in their input. A repeated request (the
 * same text again) gets the same screen again; a request that does not follow the session (unknown
 * session with inputs, a text that is not the previous one plus one input) ends it politely. */
#ifndef HF_GATEWAY_USSD_H
#define HF_GATEWAY_USSD_H

#include "hf_buf.h"
#include "menu.h"

#define USSD_SESSION_ID_MAX 64
#define USSD_TEXT_MAX 1024
#define USSD_SHORTCUT_MAX 8 /* inputs of a dial string (*384*2*1#) applied at most */

HF_MUST_CHECK hf_err ussd_init(const struct menu *m, int session_ttl_s, int max_sessions);
void ussd_shutdown(void);

struct ussd_req {
	const char *session_id; /* as the aggregator (or "smpp:<from>:<session>") names it */
	const char *phone;      /* E.164 */
	const char *text;       /* HTTP: the whole path; SMPP: this input only (see one_input) */
	bool one_input;         /* SMPP: text is one input, NULL/"" the first request */
	const char *shortcut;   /* SMPP, first request: the inputs of the dial string ("2*1" of *384*2*1#), or NULL */
	const char *channel;    /* "ussd" */
};

/* Answers one request: *end says whether the session ends (END) or continues (CON); reply gets the
 * screen's text (without "CON "/"END "). Always answers: core trouble gives the "busy" screen. */
void ussd_handle(const struct ussd_req *req, struct hf_buf *reply, bool *end);
/* The aggregator says the session ended (or timed out): forget it. */
void ussd_end(const char *session_id);
/* Sessions kept now (metrics). */
size_t ussd_sessions(void);

#endif
