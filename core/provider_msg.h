/* provider_msg.h - what the payment providers tell us, read and validated: B2C Result callbacks and timeout
 * notices, G2P on-disburse envelopes, and the answers of both protocols' status queries (docs/providers.md).
 *
 * Pure: no database, no HTTP. disburse.c verifies a callback's signature, hands the raw body here, and
 * applies what comes back; tests/fuzz/fuzz_provider_msg.c feeds it arbitrary bytes. Every function is
 * thread-safe (no state). A message this file cannot read is refused whole (a callback) or reported as
 * unreadable (a status answer, an on-disburse item); a result it returns always satisfies the promises of
 * struct provider_msg_result.
 */
#ifndef HF_CORE_PROVIDER_MSG_H
#define HF_CORE_PROVIDER_MSG_H

#include "hf_base.h"
#include "hf_err.h"

#define PROVIDER_MSG_MAX_ITEMS 1000 /* items of one on-disburse envelope (a G2P envelope's maximum) */
#define PROVIDER_MSG_RECEIPT_MAX 64 /* payments.receipt */
#define PROVIDER_MSG_REASON_SIZE 120 /* bytes of a reason with its NUL */

/* One payment's outcome as a provider reports it. */
struct provider_msg_result {
	int64_t payment_id; /* >= 1: our reference "HF<id>", exactly as we send it */
	bool ok;            /* paid (else failed) */
	bool have_amount;   /* set whenever ok */
	int64_t amount;     /* what the provider says it paid, minor units, >= 0 (0 without have_amount) */
	char currency[4];   /* with have_amount: 3 capital letters (ISO 4217); else "" */
	char receipt[PROVIDER_MSG_RECEIPT_MAX + 1]; /* with ok: 1-64 visible ASCII characters; else "" */
	char reason[PROVIDER_MSG_REASON_SIZE]; /* without ok: why, valid UTF-8 without control characters (may be cut short) */
	const char *source; /* NULL here; the caller says where it came from ("callback", "status query") */
};

/* What one item of an on-disburse envelope says. */
enum provider_msg_item {
	PROVIDER_MSG_ITEM_RESULT,     /* paid or failed: res holds it */
	PROVIDER_MSG_ITEM_PENDING,    /* RCVD / PDNG: nothing to apply yet */
	PROVIDER_MSG_ITEM_UNREADABLE, /* not an item this service can read */
};

/* An on-disburse envelope's items, in order (owned: provider_msg_batch_free). */
struct provider_msg_batch {
	size_t n;
	enum provider_msg_item *kind;
	struct provider_msg_result *res; /* res[i] is meaningful when kind[i] == PROVIDER_MSG_ITEM_RESULT */
};

/* What a status query's answer says about the one payment asked about. */
enum provider_msg_answer {
	PROVIDER_MSG_ANSWER_UNREADABLE, /* nothing usable: ask again later */
	PROVIDER_MSG_ANSWER_RESULT,     /* paid or failed: *out holds it */
	PROVIDER_MSG_ANSWER_PENDING,    /* received, not finished */
	PROVIDER_MSG_ANSWER_NEVER,      /* the provider never received it (it may be sent again, same id) */
};

/* What a provider answered to a payment request (B2C) or an envelope (G2P). */
enum provider_msg_ack {
	PROVIDER_MSG_ACK_ACCEPTED,   /* taken: the result comes later */
	PROVIDER_MSG_ACK_REFUSED,    /* refused as it stands: the payment failed */
	PROVIDER_MSG_ACK_UNREADABLE, /* another status or body: not taken as it stands; ask before anything else */
};

/* "HF123" -> 123: "HF" and the id in decimal without a sign or leading zeros, as disburse.c writes it. */
bool provider_msg_ref_parse(const char *s, int64_t *out_id);

/* A B2C result callback body ({"Result": {...}}). HF_EINVAL when it is not a Result this service can read. */
HF_MUST_CHECK hf_err provider_msg_b2c_callback(const char *body, size_t len, struct provider_msg_result *out);
/* A B2C QueueTimeOutURL notice: the payment it names (OriginatorConversationID in Result, or at the top).
 * HF_EINVAL when it names none this service can read. */
HF_MUST_CHECK hf_err provider_msg_b2c_timeout(const char *body, size_t len, int64_t *out_id);
/* A G2P on-disburse body: message.disbursements_status, at most PROVIDER_MSG_MAX_ITEMS items. HF_EINVAL when
 * it is not such an envelope; an unreadable item does not refuse the envelope. */
HF_MUST_CHECK hf_err provider_msg_g2p_callback(const char *body, size_t len, struct provider_msg_batch **out);
void provider_msg_batch_free(struct provider_msg_batch *b); /* NULL: nothing */

/* The answer to POST /mm/b2c/v1/paymentrequest; a refusal's reason (valid UTF-8, "refused: ...") goes to
 * why, which is written only then. */
enum provider_msg_ack provider_msg_b2c_ack(long http_status, const char *body, size_t len,
					   char why[PROVIDER_MSG_REASON_SIZE]);
/* The answer to POST /g2p/disburse (ACK or NACK). */
enum provider_msg_ack provider_msg_g2p_ack(long http_status, const char *body, size_t len);

/* The answer to POST /mm/b2c/v1/status (its HTTP status and body; body may be NULL when len is 0). */
enum provider_msg_answer provider_msg_b2c_status(long http_status, const char *body, size_t len,
						 struct provider_msg_result *out);
/* The answer to POST /g2p/disburse/sync/txn/status asking about one reference: its first txn_status item. */
enum provider_msg_answer provider_msg_g2p_status(const char *body, size_t len, struct provider_msg_result *out);

#endif
