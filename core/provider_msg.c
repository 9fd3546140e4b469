/* provider_msg.c - reading what payment providers send back (see provider_msg.h, docs/providers.md).
 *
 * Kept apart from disburse.c (the database side) so that the parsing of bodies an outsider writes can be
 * fuzzed on its own (tests/fuzz/fuzz_provider_msg.c). What comes out goes into the books and into the
 * database as it stands, so text is checked or made safe here: a receipt is visible ASCII (it becomes part
 * of alert subjects, which are cut to size), a reason is cut on a character boundary and without control
 * characters (a cut inside a UTF-8 sequence is refused by the database's strict mode, and the callback
 * would then fail on every retry), and a currency is three capital letters.
 */
#include "hf_base.h"
#include "provider_msg.h"

#include "hf_buf.h"
#include "hf_money.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REASON_TEXT_MAX 100 /* bytes of the provider's words kept in a reason */

bool provider_msg_ref_parse(const char *s, int64_t *out_id)
{
	if (!s || s[0] != 'H' || s[1] != 'F' || s[2] < '1' || s[2] > '9')
		return false;
	int64_t v = 0;
	for (const char *p = s + 2; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		int d = *p - '0';
		if (v > (INT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out_id = v;
	return true;
}

static bool currency_ok(const char *s)
{
	return s && strlen(s) == 3 && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == 3;
}

static bool receipt_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n < 1 || n > PROVIDER_MSG_RECEIPT_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x21 || s[i] > 0x7E)
			return false;
	return true;
}

/* Appends at most max bytes of src (valid UTF-8: jansson checked it) to dst (cap bytes, NUL-terminated),
 * whole characters only, a control character (C0, DEL, C1) written as a space. */
static void reason_add(char *dst, size_t cap, const char *src, size_t max)
{
	size_t at = strlen(dst), took = 0;
	const unsigned char *u = (const unsigned char *)src;
	while (*u) {
		size_t len = *u < 0x80 ? 1 : (*u & 0xE0) == 0xC0 ? 2 : (*u & 0xF0) == 0xE0 ? 3 : 4;
		for (size_t i = 1; i < len; i++)
			if (u[i] == 0) /* not UTF-8 after all: stop rather than read on */
				len = 0;
		if (len == 0 || took + len > max || at + len >= cap)
			break;
		bool ctl = *u < 0x20 || *u == 0x7F || (len == 2 && u[0] == 0xC2 && u[1] < 0xA0);
		if (ctl) {
			dst[at++] = ' ';
		} else {
			memcpy(dst + at, u, len);
			at += len;
		}
		took += len;
		u += len;
	}
	dst[at] = '\0';
}

/* B2C Result object -> result; false when it cannot be read. */
static bool b2c_result(json_t *res, struct provider_msg_result *out)
{
	struct provider_msg_result r;
	memset(&r, 0, sizeof(r));
	json_t *code = json_object_get(res, "ResultCode");
	const char *oid = json_string_value(json_object_get(res, "OriginatorConversationID"));
	if (!json_is_integer(code) || !provider_msg_ref_parse(oid, &r.payment_id))
		return false;
	r.ok = json_integer_value(code) == 0;
	if (r.ok) {
		const char *tx = json_string_value(json_object_get(res, "TransactionID"));
		const char *cur = json_string_value(json_object_get(res, "Currency"));
		json_t *amt = json_object_get(res, "Amount");
		if (!receipt_ok(tx) || !json_is_integer(amt) || json_integer_value(amt) < 0 || !currency_ok(cur))
			return false;
		hf_strlcpy(r.receipt, tx, sizeof(r.receipt));
		r.have_amount = true;
		r.amount = json_integer_value(amt);
		hf_strlcpy(r.currency, cur, sizeof(r.currency));
	} else {
		const char *desc = json_string_value(json_object_get(res, "ResultDesc"));
		snprintf(r.reason, sizeof(r.reason), "%lld ", (long long)json_integer_value(code));
		reason_add(r.reason, sizeof(r.reason), desc ? desc : "", REASON_TEXT_MAX);
	}
	*out = r;
	return true;
}

/* One G2P disbursement status item -> result; false when it is not a final one this service can read. */
static bool g2p_item(json_t *it, struct provider_msg_result *out)
{
	struct provider_msg_result r;
	memset(&r, 0, sizeof(r));
	const char *ref = json_string_value(json_object_get(it, "reference_id"));
	const char *st = json_string_value(json_object_get(it, "status"));
	if (!provider_msg_ref_parse(ref, &r.payment_id) || !st)
		return false;
	if (strcmp(st, "SUCC") == 0) {
		const char *amt = json_string_value(json_object_get(it, "amount"));
		const char *cur = json_string_value(json_object_get(it, "currency_code"));
		const char *ins = json_string_value(json_object_get(it, "instruction_id"));
		if (!currency_ok(cur) || !receipt_ok(ins) || !hf_money_parse(amt, cur, &r.amount))
			return false;
		r.ok = r.have_amount = true;
		hf_strlcpy(r.currency, cur, sizeof(r.currency));
		hf_strlcpy(r.receipt, ins, sizeof(r.receipt));
		*out = r;
		return true;
	}
	if (strcmp(st, "RJCT") == 0) {
		const char *rc = json_string_value(json_object_get(it, "reason_code"));
		reason_add(r.reason, sizeof(r.reason), rc ? rc : "rejected", REASON_TEXT_MAX);
		*out = r;
		return true;
	}
	return false; /* RCVD / PDNG: nothing to apply yet */
}

static bool g2p_pending(json_t *it)
{
	const char *st = json_string_value(json_object_get(it, "status"));
	return st && (strcmp(st, "PDNG") == 0 || strcmp(st, "RCVD") == 0);
}

hf_err provider_msg_b2c_callback(const char *body, size_t len, struct provider_msg_result *out)
{
	json_t *root = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, NULL);
	struct provider_msg_result r;
	bool ok = root && b2c_result(json_object_get(root, "Result"), &r);
	json_decref(root);
	if (!ok)
		return HF_EINVAL;
	*out = r;
	return HF_OK;
}

hf_err provider_msg_b2c_timeout(const char *body, size_t len, int64_t *out_id)
{
	json_t *root = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, NULL);
	json_t *res = json_object_get(root, "Result");
	const char *oid = json_string_value(json_object_get(res ? res : root, "OriginatorConversationID"));
	int64_t id = 0;
	bool ok = provider_msg_ref_parse(oid, &id);
	json_decref(root);
	if (!ok)
		return HF_EINVAL;
	*out_id = id;
	return HF_OK;
}

hf_err provider_msg_g2p_callback(const char *body, size_t len, struct provider_msg_batch **out)
{
	json_t *root = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, NULL);
	json_t *items = json_object_get(json_object_get(root, "message"), "disbursements_status");
	if (!root || !json_is_array(items) || json_array_size(items) > PROVIDER_MSG_MAX_ITEMS) {
		json_decref(root);
		return HF_EINVAL;
	}
	struct provider_msg_batch *b = hf_xcalloc(1, sizeof(*b));
	size_t n = json_array_size(items);
	b->kind = hf_xcalloc(n ? n : 1, sizeof(*b->kind));
	b->res = hf_xcalloc(n ? n : 1, sizeof(*b->res));
	size_t i;
	json_t *it;
	json_array_foreach(items, i, it) {
		if (g2p_item(it, &b->res[i]))
			b->kind[i] = PROVIDER_MSG_ITEM_RESULT;
		else
			b->kind[i] = g2p_pending(it) ? PROVIDER_MSG_ITEM_PENDING : PROVIDER_MSG_ITEM_UNREADABLE;
	}
	b->n = n;
	json_decref(root);
	*out = b;
	return HF_OK;
}

void provider_msg_batch_free(struct provider_msg_batch *b)
{
	if (!b)
		return;
	free(b->kind);
	free(b->res);
	free(b);
}

enum provider_msg_answer provider_msg_b2c_status(long http_status, const char *body, size_t len,
						 struct provider_msg_result *out)
{
	json_t *ans = json_loadb(body ? body : "", len, 0, NULL);
	const char *st = json_string_value(json_object_get(ans, "status"));
	enum provider_msg_answer a = PROVIDER_MSG_ANSWER_UNREADABLE;
	if (http_status == 404 && json_is_false(json_object_get(ans, "found")))
		a = PROVIDER_MSG_ANSWER_NEVER;
	else if (http_status == 200 && st && (strcmp(st, "completed") == 0 || strcmp(st, "failed") == 0))
		a = b2c_result(json_object_get(ans, "Result"), out) ? PROVIDER_MSG_ANSWER_RESULT
								    : PROVIDER_MSG_ANSWER_UNREADABLE;
	else if (http_status == 200 && st && strcmp(st, "pending") == 0)
		a = PROVIDER_MSG_ANSWER_PENDING;
	json_decref(ans);
	return a;
}

enum provider_msg_answer provider_msg_g2p_status(const char *body, size_t len, struct provider_msg_result *out)
{
	json_t *ans = json_loadb(body ? body : "", len, 0, NULL);
	json_t *list = json_object_get(json_object_get(json_object_get(ans, "message"), "txnstatus_response"),
				       "txn_status");
	json_t *it = json_array_get(list, 0);
	const char *st = json_string_value(json_object_get(it, "status"));
	enum provider_msg_answer a = PROVIDER_MSG_ANSWER_UNREADABLE;
	if (st && strcmp(st, "UNKNOWN") == 0)
		a = PROVIDER_MSG_ANSWER_NEVER;
	else if (g2p_pending(it))
		a = PROVIDER_MSG_ANSWER_PENDING;
	else if (it && g2p_item(it, out))
		a = PROVIDER_MSG_ANSWER_RESULT;
	json_decref(ans);
	return a;
}

enum provider_msg_ack provider_msg_b2c_ack(long http_status, const char *body, size_t len,
					   char why[PROVIDER_MSG_REASON_SIZE])
{
	json_t *ans = json_loadb(body ? body : "", len, 0, NULL);
	const char *code = json_string_value(json_object_get(ans, "ResponseCode"));
	const char *desc = json_string_value(json_object_get(ans, "ResponseDescription"));
	enum provider_msg_ack a = PROVIDER_MSG_ACK_UNREADABLE;
	if (http_status == 200 && code && strcmp(code, "0") == 0) {
		a = PROVIDER_MSG_ACK_ACCEPTED;
	} else if (http_status == 200 && code) {
		a = PROVIDER_MSG_ACK_REFUSED;
		snprintf(why, PROVIDER_MSG_REASON_SIZE, "refused: ");
		reason_add(why, PROVIDER_MSG_REASON_SIZE, desc ? desc : code, REASON_TEXT_MAX);
	}
	json_decref(ans);
	return a;
}

enum provider_msg_ack provider_msg_g2p_ack(long http_status, const char *body, size_t len)
{
	json_t *ans = json_loadb(body ? body : "", len, 0, NULL);
	const char *ack = json_string_value(json_object_get(json_object_get(ans, "message"), "ack_status"));
	enum provider_msg_ack a = PROVIDER_MSG_ACK_UNREADABLE;
	if (http_status == 200 && ack && strcmp(ack, "ACK") == 0)
		a = PROVIDER_MSG_ACK_ACCEPTED;
	else if (http_status == 200 && ack && strcmp(ack, "NACK") == 0)
		a = PROVIDER_MSG_ACK_REFUSED;
	json_decref(ans);
	return a;
}
