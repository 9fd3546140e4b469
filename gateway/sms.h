/* sms.h - SMS that beneficiaries send (through Kannel's sms-service): keywords in any shipped language,
 * any case (HELP, STATUS, COMPLAINT <text>, STOP, START, LANG <code>), answered in the sender's language;
 * anything else gets a short help reply, never silence. The reply goes back as the body of Kannel's
 * callback (Kannel sends it to the sender). STATUS answers only the number that asks, and says nothing
 * a stranger holding the phone should not know beyond enrolled/paused. */
#ifndef HF_GATEWAY_SMS_H
#define HF_GATEWAY_SMS_H

#include "hf_buf.h"
#include "menu.h"

void sms_init(const struct menu *m);
/* Answers one MO message from phone (E.164). reply is the text to send back ("" = nothing). */
void sms_handle(const char *phone, const char *text, struct hf_buf *reply);

#endif
