/* fuzz_provider_msg.c - libFuzzer target: what payment providers send back (core/provider_msg.c).
 *
 * A callback's signature is checked before its body is read, but a provider's bugs (or a stolen key) can
 * put anything in a body, and status answers are not signed at all. Whatever a body holds, reading it must
 * not crash, and a result it yields must be one the books can take. The first byte selects the reader
 * (low 3 bits) and the HTTP status the answer came with (bits 3-4: 200, 404, 500, 200); the rest is the body:
 *   0 B2C result callback   1 B2C timeout notice   2 G2P on-disburse callback   3 B2C status answer
 *   4 G2P status answer     5 B2C payment request answer   6 G2P disburse answer   7 a reference alone
 * Checked for every result: payment id >= 1; paid => an amount >= 0 in 3 capital letters and a receipt of
 * 1-64 visible ASCII characters; failed => no amount, no receipt, a reason that is valid UTF-8 text (it goes
 * into a strict utf8mb4 column); an envelope has at most 1,000 items; a reference is accepted only in the
 * exact form we write ("HF" and the id, no sign, no leading zero).
 */
#include "hf_base.h"

#include "../../core/provider_msg.c"

#include "hf_json.h"
#include "hf_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(expr) HF_ASSERT(expr)

static bool text_ok(const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);
	return n < cap && hf_utf8_valid_text(s, n);
}

static void check_result(const struct provider_msg_result *r)
{
	FUZZ_CHECK(r->payment_id >= 1);
	FUZZ_CHECK(r->source == NULL);
	/* The reference it came from, written back, reads as the same payment. */
	char ref[24];
	snprintf(ref, sizeof(ref), "HF%lld", (long long)r->payment_id);
	int64_t again = 0;
	FUZZ_CHECK(provider_msg_ref_parse(ref, &again) && again == r->payment_id);
	if (r->have_amount) {
		FUZZ_CHECK(r->amount >= 0);
		FUZZ_CHECK(strlen(r->currency) == 3 && strspn(r->currency, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == 3);
	} else {
		FUZZ_CHECK(r->amount == 0 && r->currency[0] == '\0');
	}
	size_t rl = strnlen(r->receipt, sizeof(r->receipt));
	FUZZ_CHECK(rl < sizeof(r->receipt));
	if (r->ok) {
		FUZZ_CHECK(r->have_amount);
		FUZZ_CHECK(rl >= 1 && rl <= PROVIDER_MSG_RECEIPT_MAX);
		for (size_t i = 0; i < rl; i++)
			FUZZ_CHECK(r->receipt[i] > 0x20 && r->receipt[i] < 0x7F);
		FUZZ_CHECK(r->reason[0] == '\0');
	} else {
		FUZZ_CHECK(!r->have_amount && rl == 0);
		FUZZ_CHECK(text_ok(r->reason, sizeof(r->reason)));
	}
}

static void check_ref(const char *body, size_t len)
{
	char *s = hf_xstrndup(body, len);
	int64_t id = 0;
	if (provider_msg_ref_parse(s, &id)) {
		char back[24];
		snprintf(back, sizeof(back), "HF%lld", (long long)id);
		FUZZ_CHECK(id >= 1 && strcmp(back, s) == 0);
	}
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const long STATUS[4] = {200, 404, 500, 200};
	hf_log_set_filter("fuzz.silent");
	if (size == 0)
		return 0;
	unsigned sel = data[0] & 7;
	long http = STATUS[(data[0] >> 3) & 3];
	const char *body = (const char *)data + 1;
	size_t len = size - 1;
	struct provider_msg_result r;
	memset(&r, 0xA5, sizeof(r)); /* written only on success: a check below would see garbage otherwise */
	switch (sel) {
	case 0:
		if (provider_msg_b2c_callback(body, len, &r) == HF_OK)
			check_result(&r);
		break;
	case 1: {
		int64_t id = -7;
		if (provider_msg_b2c_timeout(body, len, &id) == HF_OK)
			FUZZ_CHECK(id >= 1);
		else
			FUZZ_CHECK(id == -7);
		break;
	}
	case 2: {
		struct provider_msg_batch *b = NULL;
		if (provider_msg_g2p_callback(body, len, &b) == HF_OK) {
			FUZZ_CHECK(b != NULL && b->n <= PROVIDER_MSG_MAX_ITEMS);
			for (size_t i = 0; i < b->n; i++) {
				FUZZ_CHECK(b->kind[i] == PROVIDER_MSG_ITEM_RESULT || b->kind[i] == PROVIDER_MSG_ITEM_PENDING ||
					   b->kind[i] == PROVIDER_MSG_ITEM_UNREADABLE);
				if (b->kind[i] == PROVIDER_MSG_ITEM_RESULT)
					check_result(&b->res[i]);
			}
		} else {
			FUZZ_CHECK(b == NULL);
		}
		provider_msg_batch_free(b);
		break;
	}
	case 3:
	case 4: {
		enum provider_msg_answer a = sel == 3 ? provider_msg_b2c_status(http, body, len, &r)
						      : provider_msg_g2p_status(body, len, &r);
		FUZZ_CHECK(a == PROVIDER_MSG_ANSWER_UNREADABLE || a == PROVIDER_MSG_ANSWER_RESULT ||
			   a == PROVIDER_MSG_ANSWER_PENDING || a == PROVIDER_MSG_ANSWER_NEVER);
		if (a == PROVIDER_MSG_ANSWER_RESULT)
			check_result(&r);
		/* B2C: "never received" only from a 404, anything else read only from a 200. */
		if (sel == 3 && a != PROVIDER_MSG_ANSWER_UNREADABLE)
			FUZZ_CHECK(http == (a == PROVIDER_MSG_ANSWER_NEVER ? 404 : 200));
		break;
	}
	case 5: {
		char why[PROVIDER_MSG_REASON_SIZE] = "untouched";
		enum provider_msg_ack a = provider_msg_b2c_ack(http, body, len, why);
		if (a == PROVIDER_MSG_ACK_REFUSED)
			FUZZ_CHECK(text_ok(why, sizeof(why)) && strncmp(why, "refused: ", 9) == 0);
		else
			FUZZ_CHECK(strcmp(why, "untouched") == 0);
		FUZZ_CHECK(a == PROVIDER_MSG_ACK_UNREADABLE || http == 200);
		break;
	}
	case 6: {
		enum provider_msg_ack a = provider_msg_g2p_ack(http, body, len);
		FUZZ_CHECK(a == PROVIDER_MSG_ACK_UNREADABLE || http == 200);
		break;
	}
	default:
		check_ref(body, len);
		break;
	}
	return 0;
}
