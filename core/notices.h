/* notices.h - SMS payment notices to a cycle's beneficiaries: a payment officer filters the payees (pay
 * point, location, payment status), previews how many get which text in which language (templates in
 * menus/sms/), and sends or schedules them into the outbox; the gateway reports each message's delivery. */
#ifndef HF_CORE_NOTICES_H
#define HF_CORE_NOTICES_H

#include "hf_config.h"
#include "svc.h"
#include <jansson.h>

/* Loads the SMS templates (menus.dir, default "menus"); err gets "file:line: reason". */
HF_MUST_CHECK hf_err notices_init(const struct hf_config *cfg, struct hf_buf *err);
void notices_shutdown(void);
/* POST /cycles/{code}/notices/preview {template, pay_point?, location?, status?} */
HF_MUST_CHECK hf_err notices_preview(struct svc_call *c, const char *cycle_code, json_t *body, json_t **out);
/* POST /cycles/{code}/notices {template, pay_point?, location?, status?, send_at?} -> 201 */
HF_MUST_CHECK hf_err notices_send(struct svc_call *c, const char *cycle_code, json_t *body, json_t **out);
/* GET /cycles/{code}/notices: each notice with its delivery counts (queued, sending, sent, delivered, failed). */
HF_MUST_CHECK hf_err notices_list(struct svc_call *c, const char *cycle_code, json_t **out);
/* POST /outbox/claim?limit=N (the gateway, N 1-500): claims up to N queued messages due now, with phone and rendered
 * text (the reports on them: outbox.h). urgent: only messages a person is waiting for now (PIN reset codes),
 * for a gateway in its quiet hours. */
HF_MUST_CHECK hf_err notices_outbox_claim(struct svc_call *c, int limit, bool urgent, json_t **out);

#endif
