/* disburse.h - paying approved payments through the providers, and hearing back from them.
 *
 * The disburser (threads inside serve) claims approved payments in batches (FOR UPDATE SKIP LOCKED, so
 * several core instances share the work), marks them sending and posts clearing -> settlement in the same
 * transaction, then calls the provider with the payment's idempotency id ("HF<id>"). A synchronous accept
 * makes it pending; a rejection fails it (settlement -> returned); a timeout leaves it sending. Results
 * arrive by signed callback (idempotent: a repeat changes nothing; a different second result raises
 * paid_twice) or, when none came by next_check_at, by a status query. A payment the provider says it never
 * received is sent again with the same id; an answered one is never re-sent. A payment whose payee is no
 * longer enrolled (died, suspended, exited since the approval) is held: not sent, left approved, and the
 * payee_ineligible alert tells the payment officers (closing the cycle returns its money). */
#ifndef HF_CORE_DISBURSE_H
#define HF_CORE_DISBURSE_H

#include "hf_config.h"
#include "svc.h"
#include <jansson.h>

HF_MUST_CHECK hf_err disburse_init(const struct hf_config *cfg, struct hf_buf *err);
/* Starts/stops the disbursement and query threads of serve. */
HF_MUST_CHECK hf_err disburse_start(void);
void disburse_stop(void);
void disburse_shutdown(void);
/* One pass by hand (CLI `payments disburse`): sends what is approved, queries what is due. */
HF_MUST_CHECK hf_err disburse_pass(struct db *db, int *sent, int *queried);
/* Provider callbacks: POST /providers/b2c/result (and /timeout), POST /providers/g2p/on-disburse. Raw body
 * and headers, because the signature covers the exact bytes. */
HF_MUST_CHECK hf_err disburse_callback_b2c(struct svc_call *c, struct hf_str body, const char *sig, json_t **out);
/* POST /providers/b2c/timeout (QueueTimeOutURL): the payment is queried now; the notice settles nothing. */
HF_MUST_CHECK hf_err disburse_timeout_b2c(struct svc_call *c, struct hf_str body, const char *sig, json_t **out);
HF_MUST_CHECK hf_err disburse_callback_g2p(struct svc_call *c, struct hf_str body, const char *sig, json_t **out);

#endif
