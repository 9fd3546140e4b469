/* paysim.c - hifadhi-paysim: a payment provider simulator speaking mobile-money B2C and G2P Connect over HTTP.
 *
 * The core pays beneficiaries through providers we cannot run here (a mobile operator's B2C API, a bank
 * or switch speaking G2P Connect), so the integration tests and benchmarks need a double that speaks the
 * real protocols over a real socket and can be told to misbehave the ways real providers do: answer late
 * or never, lose the answer but make the payment, reject, fail later, lose or repeat callbacks, pay a
 * different amount, send unsigned or badly signed callbacks, or die mid-request. Everything a test needs
 * to steer or observe lives under /_sim/ on the same port (loopback clients only). docs/providers.md is
 * the manual; this comment only explains the shape.
 *
 * Shape: a libmicrohttpd daemon with one thread per connection (a "hang" switch blocks a request for
 * seconds, and in a thread pool that would stall every other connection sharing the thread); one mutex
 * over the in-memory state (a hash table of transactions by reference id, the completion order for the
 * statement, the behaviour config and the counters); a min-heap of callback jobs ordered by due time,
 * served by a few worker threads with one keep-alive HTTP client each. A job completes its payments when
 * it comes due (so status queries say "pending" until the callback would be sent) and then delivers one
 * signed callback, retried on connection failure or 5xx. Every size that comes from outside is capped.
 *
 * This is a test tool, not part of the service: it uses libmicrohttpd, jansson and libsodium directly
 * rather than through lib/'s server wrapper, whose fixed thread pool cannot serve blocking requests
 * without stalling others.
 */
#include "hf_base.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hf_buf.h"
#include "hf_config.h"
#include "hf_crypto.h"
#include "hf_err.h"
#include "hf_httpc.h"
#include "hf_json.h"
#include "hf_log.h"
#include "hf_paysig.h"

#define PLACE "paysim"

/* Caps on everything that comes from outside. */
#define MAX_BODY ((size_t)4 << 20)
#define MAX_TXNS 5000000u
#define MAX_ITEMS 1000           /* disbursements per envelope, ids per status query */
#define REF_MAX 64               /* reference ids: 1..64 of [A-Za-z0-9_-] */
#define URL_MAX 1024
#define TEXT_MAX 255             /* free text fields (Remarks, note, ...) */
#define FA_MAX 128               /* payee_fa, payer_fa */
#define ID_MAX 64                /* message_id, transaction_id, sender_id, ... */
#define REASON_MAX 200           /* reject / fail descriptions */
#define REASON_CODE_MAX 64
#define MAX_BYREF 100000
#define DELAY_MAX_MS 3600000
#define DUP_MAX 10
#define HANG_TIMES_MAX 1000000
#define DELTA_MAX 1000000000000LL
#define AMOUNT_MAX 1000000000000LL /* minor units */
#define RESP_MAX ((size_t)64 << 20)
#define STATEMENT_MAX ((size_t)1 << 30)
#define RECEIVER_RESP_MAX ((size_t)64 << 10)
#define INJECT_ECHO_MAX 4096

#define CB_TIMEOUT_MS 5000L
#define CB_TRIES 3
#define DCI_EXPIRES_S 300
#define WORKERS_DEFAULT 4
#define MAX_CONNS 1024

#define B2C_OK_DESC "Accept the service request successfully."
#define B2C_RESULT_OK_DESC "The service request is processed successfully."

/* ---- behaviour switches -------------------------------------------------------------------------------- */

/* Which keys a config object set: by_ref entries override the default key by key. */
enum {
	K_ACCEPT_DELAY = 1u << 0,
	K_HANG_MS = 1u << 1,
	K_HANG_PROCESS = 1u << 2,
	K_HANG_TIMES = 1u << 3,
	K_REJECT = 1u << 4,
	K_FAIL = 1u << 5,
	K_CB_DELAY = 1u << 6,
	K_DROP = 1u << 7,
	K_DUP = 1u << 8,
	K_DELTA = 1u << 9,
	K_UNSIGNED = 1u << 10,
	K_BAD_SIG = 1u << 11,
	K_CRASH = 1u << 12,
	K_NACK = 1u << 13,
	K_RESULT_CODE = 1u << 14,
	K_REASON_CODE = 1u << 15,
};

struct behav {
	unsigned set;
	int accept_delay_ms;
	int hang_ms;
	bool hang_process;
	int hang_times;
	char reject[REASON_MAX + 1]; /* "" = no */
	char fail[REASON_MAX + 1];   /* "" = no */
	int callback_delay_ms;
	bool drop_callback;
	int duplicate_callbacks;
	int64_t amount_delta;
	bool unsigned_callback;
	bool bad_signature;
	bool crash;
	bool nack;
	int result_code;                      /* B2C ResultCode of a failure */
	char reason_code[REASON_CODE_MAX + 1]; /* G2P reason_code of a rejection */
};

static const struct behav behav_defaults = {
	.hang_times = 1,
	.callback_delay_ms = 5,
	.duplicate_callbacks = 1,
	.result_code = 2001,
	.reason_code = "rjct.payee_fa.invalid",
};

struct byref {
	char *ref; /* owned */
	struct behav b;
};

struct sim_config {
	struct behav def;
	struct byref *items; /* sorted by ref */
	size_t n;
	json_t *src; /* what was posted, for GET /_sim/config */
};

/* ---- transactions --------------------------------------------------------------------------------------- */

enum proto { P_B2C = 1, P_G2P = 2 };
/* NONE: a reference seen but not registered (a request that hung without processing, a B2C sync reject):
 * the entry only carries counters. */
enum state { ST_NONE, ST_PENDING, ST_PAID, ST_FAILED };

struct txn {
	struct txn *next;
	char ref[REF_MAX + 1];
	uint8_t proto;
	uint8_t state;
	bool will_fail;
	char currency[4];
	char receipt[11];
	char conv_id[40]; /* B2C ConversationID */
	int result_code;
	int64_t amount;   /* requested, minor units */
	int64_t delta;    /* amount_delta at acceptance */
	int64_t paid;     /* once PAID */
	int64_t received_ms, completed_ms;
	char *party;      /* PartyB or payee_fa, owned; never logged */
	char *reason;     /* failure text, owned */
	char *reason_code;/* G2P, owned */
	uint32_t requests, hangs, callbacks_sent, callbacks_failed;
};

struct stats {
	uint64_t requests, duplicate_requests, paid, failed, callbacks_sent, callbacks_failed, callbacks_rejected,
		status_queries;
};

/* ---- callback jobs -------------------------------------------------------------------------------------- */

struct job {
	int64_t due_ms; /* monotonic */
	uint64_t gen;
	enum proto proto;
	char *url;        /* owned */
	size_t nrefs;
	char (*refs)[REF_MAX + 1];
	bool *complete;   /* complete this ref when the job comes due */
	char *txn_id, *corr_id, *receiver_id; /* G2P envelope, owned */
	bool drop, unsigned_cb, bad_sig;
	int dup_left;
	int tries;
	bool rendered;
	struct hf_buf body;
};

/* ---- global state --------------------------------------------------------------------------------------- */

static struct {
	pthread_mutex_t mu; /* everything below up to the queue */
	struct txn **buckets;
	size_t nbuckets, ntxn;
	struct txn **done; /* completion order */
	size_t ndone, done_cap;
	struct sim_config *cfg;
	struct stats st;
	uint64_t gen;
	uint64_t seq;

	pthread_mutex_t qmu; /* lock order: mu before qmu, never the other way */
	pthread_cond_t qcond;
	struct job **heap;
	size_t nheap, heap_cap;
	bool stopping;

	pthread_mutex_t stop_mu;
	pthread_cond_t stop_cond;
	bool stop;

	/* Read-only after start. */
	uint8_t *secret; /* sodium_malloc */
	size_t secret_len;
	uint8_t *sk;     /* sodium_malloc: the G2P signing key, then a wrong one for bad_signature */
	uint8_t *bad_sk;
	uint8_t *bad_secret;
	char sender_id[HF_PAYSIG_DCI_ID_MAX + 1];
	char key_id[HF_PAYSIG_DCI_ID_MAX + 1];
	char *token; /* NULL = no auth */
	size_t token_len;
	char id_prefix[9];
} g = {
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.qmu = PTHREAD_MUTEX_INITIALIZER,
	.stop_mu = PTHREAD_MUTEX_INITIALIZER,
};

/* ---- small helpers -------------------------------------------------------------------------------------- */

static void iso_utc(int64_t ms, char out[21])
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&s, &tm);
	strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static bool digits_at(const char *s, size_t n, int *out)
{
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

/* "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM:SSZ" (UTC) to milliseconds. */
static bool iso_parse(const char *s, int64_t *out_ms)
{
	size_t n = strnlen(s, 32);
	int y, mo, d, h = 0, mi = 0, se = 0;
	if (n != 10 && n != 20)
		return false;
	if (!digits_at(s, 4, &y) || s[4] != '-' || !digits_at(s + 5, 2, &mo) || s[7] != '-' || !digits_at(s + 8, 2, &d))
		return false;
	if (n == 20 && (s[10] != 'T' || !digits_at(s + 11, 2, &h) || s[13] != ':' || !digits_at(s + 14, 2, &mi) ||
			s[16] != ':' || !digits_at(s + 17, 2, &se) || s[19] != 'Z'))
		return false;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
		return false;
	struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = se};
	*out_ms = (int64_t)timegm(&tm) * 1000;
	return true;
}

static bool ref_valid(const char *s)
{
	if (!s)
		return false;
	size_t n = 0;
	for (; s[n]; n++) {
		char c = s[n];
		if (n == REF_MAX ||
		    !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return false;
	}
	return n > 0;
}

/* Printable ASCII without spaces, http:// or https://, at most URL_MAX. */
static bool url_valid(const char *s)
{
	if (!s || (strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0))
		return false;
	size_t n = strnlen(s, URL_MAX + 1);
	if (n > URL_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= 0x20 || s[i] >= 0x7f)
			return false;
	return true;
}

/* A string of at most max bytes without control characters (jansson already checked UTF-8). */
static bool text_valid(const char *s, size_t min, size_t max)
{
	if (!s)
		return false;
	size_t n = strnlen(s, max + 1);
	if (n < min || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

static bool currency_valid(const char *s)
{
	return s && strlen(s) == 3 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z' && s[2] >= 'A' &&
	       s[2] <= 'Z';
}

static bool msisdn_valid(const char *s)
{
	if (!s)
		return false;
	size_t n = 0;
	for (; s[n]; n++)
		if (n == 15 || s[n] < '0' || s[n] > '9')
			return false;
	return n >= 8;
}

/* "4000.00", "4000.5", "4000" to minor units (two decimals), 1..AMOUNT_MAX. */
static bool decimal_parse(const char *s, int64_t *out)
{
	if (!s)
		return false;
	int64_t whole = 0, frac = 0;
	size_t i = 0, nd = 0;
	for (; s[i] >= '0' && s[i] <= '9'; i++) {
		if (++nd > 12)
			return false;
		whole = whole * 10 + (s[i] - '0');
	}
	if (nd == 0)
		return false;
	if (s[i] == '.') {
		i++;
		size_t nf = 0;
		for (; s[i] >= '0' && s[i] <= '9'; i++) {
			if (++nf > 2)
				return false;
			frac = frac * 10 + (s[i] - '0');
		}
		if (nf == 0)
			return false;
		if (nf == 1)
			frac *= 10;
	}
	if (s[i])
		return false;
	int64_t v = whole * 100 + frac;
	if (v < 1 || v > AMOUNT_MAX)
		return false;
	*out = v;
	return true;
}

static void decimal_fmt(int64_t minor, char out[32])
{
	snprintf(out, 32, "%s%lld.%02lld", minor < 0 ? "-" : "", (long long)(llabs(minor) / 100),
		 (long long)(llabs(minor) % 100));
}

static void make_receipt(char out[11])
{
	static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	/* M-Pesa receipts start with a letter. */
	out[0] = alnum[hf_random_uniform(26)];
	for (int i = 1; i < 10; i++)
		out[i] = alnum[hf_random_uniform(sizeof(alnum) - 1)];
	out[10] = '\0';
}

/* A fresh id "<prefix><process tag><counter>" (under g.mu or not: the counter is atomic). */
static void make_id(const char *prefix, char *out, size_t n)
{
	uint64_t seq = __atomic_add_fetch(&g.seq, 1, __ATOMIC_RELAXED);
	snprintf(out, n, "%s%s%012llx", prefix, g.id_prefix, (unsigned long long)seq);
}

static void make_conv_id(char out[40])
{
	char day[21], tag[24];
	iso_utc(hf_now_ms(), day);
	make_id("", tag, sizeof(tag));
	/* AG_YYYYMMDD_<20 hex> */
	snprintf(out, 40, "AG_%.4s%.2s%.2s_%s", day, day + 5, day + 8, tag);
}

static const char *jstr(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Sleeps up to ms, waking early when the simulator stops. */
static void sim_sleep_ms(int64_t ms)
{
	if (ms <= 0)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int64_t ns = (int64_t)ts.tv_nsec + (ms % 1000) * 1000000;
	ts.tv_sec += (time_t)(ms / 1000 + ns / 1000000000);
	ts.tv_nsec = (long)(ns % 1000000000);
	pthread_mutex_lock(&g.stop_mu);
	while (!g.stop && pthread_cond_timedwait(&g.stop_cond, &g.stop_mu, &ts) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&g.stop_mu);
}

/* ---- the transaction table (under g.mu) ----------------------------------------------------------------- */

static uint64_t hash_ref(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ULL;
	return h;
}

static struct txn *txn_find(const char *ref)
{
	if (!g.buckets)
		return NULL;
	for (struct txn *t = g.buckets[hash_ref(ref) & (g.nbuckets - 1)]; t; t = t->next)
		if (strcmp(t->ref, ref) == 0)
			return t;
	return NULL;
}

static void table_grow(void)
{
	size_t nb = g.nbuckets ? g.nbuckets * 2 : (size_t)1 << 16;
	struct txn **b = hf_xcalloc(nb, sizeof(*b));
	for (size_t i = 0; i < g.nbuckets; i++) {
		struct txn *t = g.buckets[i];
		while (t) {
			struct txn *next = t->next;
			size_t k = hash_ref(t->ref) & (nb - 1);
			t->next = b[k];
			b[k] = t;
			t = next;
		}
	}
	free(g.buckets);
	g.buckets = b;
	g.nbuckets = nb;
}

/* The entry for ref, made (as ST_NONE) when new; NULL when the table is full. */
static struct txn *txn_get(const char *ref)
{
	struct txn *t = txn_find(ref);
	if (t)
		return t;
	if (g.ntxn >= MAX_TXNS)
		return NULL;
	if (g.ntxn >= g.nbuckets)
		table_grow();
	t = hf_xcalloc(1, sizeof(*t));
	HF_ASSERT(hf_strlcpy(t->ref, ref, sizeof(t->ref)));
	size_t k = hash_ref(ref) & (g.nbuckets - 1);
	t->next = g.buckets[k];
	g.buckets[k] = t;
	g.ntxn++;
	return t;
}

static void txn_free(struct txn *t)
{
	free(t->party);
	free(t->reason);
	free(t->reason_code);
	free(t);
}

static void table_clear(void)
{
	for (size_t i = 0; i < g.nbuckets; i++) {
		struct txn *t = g.buckets[i];
		while (t) {
			struct txn *next = t->next;
			txn_free(t);
			t = next;
		}
	}
	free(g.buckets);
	g.buckets = NULL;
	g.nbuckets = g.ntxn = 0;
	free(g.done);
	g.done = NULL;
	g.ndone = g.done_cap = 0;
}

/* Records the final state of a pending transaction, in completion order. */
static void txn_finish(struct txn *t, bool failed, int64_t now_ms)
{
	HF_ASSERT(t->state == ST_PENDING);
	if (failed) {
		t->state = ST_FAILED;
		t->paid = 0;
		g.st.failed++;
	} else {
		t->state = ST_PAID;
		t->paid = t->amount + t->delta < 0 ? 0 : t->amount + t->delta;
		make_receipt(t->receipt);
		g.st.paid++;
	}
	t->completed_ms = now_ms;
	if (g.ndone == g.done_cap) {
		g.done_cap = g.done_cap ? g.done_cap * 2 : 4096;
		g.done = hf_xrealloc(g.done, g.done_cap * sizeof(*g.done));
	}
	g.done[g.ndone++] = t;
}

/* ---- config --------------------------------------------------------------------------------------------- */

static void config_free(struct sim_config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++)
		free(c->items[i].ref);
	free(c->items);
	json_decref(c->src);
	free(c);
}

static int byref_cmp(const void *a, const void *b)
{
	return strcmp(((const struct byref *)a)->ref, ((const struct byref *)b)->ref);
}

static bool int_field(json_t *v, int64_t min, int64_t max, int64_t *out)
{
	if (!json_is_integer(v))
		return false;
	json_int_t x = json_integer_value(v);
	if (x < min || x > max)
		return false;
	*out = x;
	return true;
}

/* An outsider's key, fit to quote in an error: at most 64 printable ASCII characters, others as '?'. */
static void key_quote(const char *k, char out[65])
{
	size_t i = 0;
	for (; k[i] && i < 64; i++)
		out[i] = k[i] >= 0x20 && k[i] < 0x7f && k[i] != '"' && k[i] != '\\' ? k[i] : '?';
	out[i] = '\0';
}

/* Parses one behaviour object; on error writes what is wrong into err. */
static bool behav_parse(json_t *o, const char *where, struct behav *b, struct hf_buf *err)
{
	*b = (struct behav){0};
	if (!json_is_object(o)) {
		hf_buf_note(err, "%s: must be an object", where);
		return false;
	}
	const char *k;
	json_t *v;
	json_object_foreach(o, k, v) {
		int64_t x = 0;
		bool ok = true;
		if (strcmp(k, "accept_delay_ms") == 0) {
			ok = int_field(v, 0, DELAY_MAX_MS, &x);
			b->accept_delay_ms = (int)x;
			b->set |= K_ACCEPT_DELAY;
		} else if (strcmp(k, "hang_ms") == 0) {
			ok = int_field(v, 0, DELAY_MAX_MS, &x);
			b->hang_ms = (int)x;
			b->set |= K_HANG_MS;
		} else if (strcmp(k, "hang_process") == 0) {
			ok = json_is_boolean(v);
			b->hang_process = json_is_true(v);
			b->set |= K_HANG_PROCESS;
		} else if (strcmp(k, "hang_times") == 0) {
			ok = int_field(v, 0, HANG_TIMES_MAX, &x);
			b->hang_times = (int)x;
			b->set |= K_HANG_TIMES;
		} else if (strcmp(k, "reject") == 0 || strcmp(k, "fail") == 0) {
			bool rej = k[0] == 'r';
			const char *s = json_string_value(v);
			ok = json_is_string(v) && text_valid(s, 1, REASON_MAX);
			if (ok)
				hf_strlcpy(rej ? b->reject : b->fail, s, REASON_MAX + 1);
			b->set |= rej ? K_REJECT : K_FAIL;
		} else if (strcmp(k, "callback_delay_ms") == 0) {
			ok = int_field(v, 0, DELAY_MAX_MS, &x);
			b->callback_delay_ms = (int)x;
			b->set |= K_CB_DELAY;
		} else if (strcmp(k, "drop_callback") == 0) {
			ok = json_is_boolean(v);
			b->drop_callback = json_is_true(v);
			b->set |= K_DROP;
		} else if (strcmp(k, "duplicate_callbacks") == 0) {
			ok = int_field(v, 1, DUP_MAX, &x);
			b->duplicate_callbacks = (int)x;
			b->set |= K_DUP;
		} else if (strcmp(k, "amount_delta") == 0) {
			ok = int_field(v, -DELTA_MAX, DELTA_MAX, &x);
			b->amount_delta = x;
			b->set |= K_DELTA;
		} else if (strcmp(k, "unsigned_callback") == 0) {
			ok = json_is_boolean(v);
			b->unsigned_callback = json_is_true(v);
			b->set |= K_UNSIGNED;
		} else if (strcmp(k, "bad_signature") == 0) {
			ok = json_is_boolean(v);
			b->bad_signature = json_is_true(v);
			b->set |= K_BAD_SIG;
		} else if (strcmp(k, "crash") == 0) {
			ok = json_is_boolean(v);
			b->crash = json_is_true(v);
			b->set |= K_CRASH;
		} else if (strcmp(k, "nack") == 0) {
			ok = json_is_boolean(v);
			b->nack = json_is_true(v);
			b->set |= K_NACK;
		} else if (strcmp(k, "result_code") == 0) {
			ok = int_field(v, 1, 999999, &x);
			b->result_code = (int)x;
			b->set |= K_RESULT_CODE;
		} else if (strcmp(k, "reason_code") == 0) {
			const char *s = json_string_value(v);
			ok = json_is_string(v) && text_valid(s, 1, REASON_CODE_MAX);
			if (ok)
				hf_strlcpy(b->reason_code, s, sizeof(b->reason_code));
			b->set |= K_REASON_CODE;
		} else {
			char q[65];
			key_quote(k, q);
			hf_buf_note(err, "%s: unknown key \"%s\"", where, q);
			return false;
		}
		if (!ok) {
			hf_buf_note(err, "%s.%s: wrong type or out of range", where, k);
			return false;
		}
	}
	return true;
}

/* Applies the keys src set on top of dst. */
static void behav_merge(struct behav *dst, const struct behav *src)
{
	unsigned s = src->set;
	if (s & K_ACCEPT_DELAY)
		dst->accept_delay_ms = src->accept_delay_ms;
	if (s & K_HANG_MS)
		dst->hang_ms = src->hang_ms;
	if (s & K_HANG_PROCESS)
		dst->hang_process = src->hang_process;
	if (s & K_HANG_TIMES)
		dst->hang_times = src->hang_times;
	if (s & K_REJECT)
		memcpy(dst->reject, src->reject, sizeof(dst->reject));
	if (s & K_FAIL)
		memcpy(dst->fail, src->fail, sizeof(dst->fail));
	if (s & K_CB_DELAY)
		dst->callback_delay_ms = src->callback_delay_ms;
	if (s & K_DROP)
		dst->drop_callback = src->drop_callback;
	if (s & K_DUP)
		dst->duplicate_callbacks = src->duplicate_callbacks;
	if (s & K_DELTA)
		dst->amount_delta = src->amount_delta;
	if (s & K_UNSIGNED)
		dst->unsigned_callback = src->unsigned_callback;
	if (s & K_BAD_SIG)
		dst->bad_signature = src->bad_signature;
	if (s & K_CRASH)
		dst->crash = src->crash;
	if (s & K_NACK)
		dst->nack = src->nack;
	if (s & K_RESULT_CODE)
		dst->result_code = src->result_code;
	if (s & K_REASON_CODE)
		memcpy(dst->reason_code, src->reason_code, sizeof(dst->reason_code));
	dst->set |= s;
}

/* Builds a config from {"default": B, "by_ref": {ref: B}}; NULL (and err) when invalid. src is kept. */
static struct sim_config *config_parse(json_t *src, struct hf_buf *err)
{
	struct sim_config *c = hf_xcalloc(1, sizeof(*c));
	const char *k;
	json_t *v;
	json_object_foreach(src, k, v) {
		if (strcmp(k, "default") != 0 && strcmp(k, "by_ref") != 0) {
			char q[65];
			key_quote(k, q);
			hf_buf_note(err, "unknown key \"%s\" (expected default, by_ref)", q);
			goto fail;
		}
	}
	json_t *def = json_object_get(src, "default");
	if (def && !behav_parse(def, "default", &c->def, err))
		goto fail;
	json_t *by = json_object_get(src, "by_ref");
	if (by) {
		if (!json_is_object(by)) {
			hf_buf_note(err, "by_ref: must be an object");
			goto fail;
		}
		if (json_object_size(by) > MAX_BYREF) {
			hf_buf_note(err, "by_ref: more than %d entries", MAX_BYREF);
			goto fail;
		}
		c->items = hf_xcalloc(json_object_size(by) + 1, sizeof(*c->items));
		json_object_foreach(by, k, v) {
			if (!ref_valid(k)) {
				char q[65];
				key_quote(k, q);
				hf_buf_note(err, "by_ref: \"%s\" is not a reference id (1-64 of A-Za-z0-9_-)", q);
				goto fail;
			}
			char where[REF_MAX + 16];
			snprintf(where, sizeof(where), "by_ref.%s", k);
			if (!behav_parse(v, where, &c->items[c->n].b, err))
				goto fail;
			c->items[c->n].ref = hf_xstrdup(k);
			c->n++;
		}
		qsort(c->items, c->n, sizeof(*c->items), byref_cmp);
	}
	json_incref(src);
	c->src = src;
	return c;
fail:
	config_free(c);
	return NULL;
}

/* The behaviour for ref (under g.mu): defaults, then the config's default, then its by_ref entry. */
static struct behav behav_for(const char *ref)
{
	struct behav b = behav_defaults;
	if (!g.cfg)
		return b;
	behav_merge(&b, &g.cfg->def);
	if (g.cfg->n) {
		struct byref key = {.ref = (char *)ref};
		const struct byref *e = bsearch(&key, g.cfg->items, g.cfg->n, sizeof(*g.cfg->items), byref_cmp);
		if (e)
			behav_merge(&b, &e->b);
	}
	return b;
}

/* ---- callback queue ------------------------------------------------------------------------------------- */

static void job_free(struct job *j)
{
	if (!j)
		return;
	free(j->url);
	free(j->refs);
	free(j->complete);
	free(j->txn_id);
	free(j->corr_id);
	free(j->receiver_id);
	hf_buf_release(&j->body);
	free(j);
}

static struct job *job_new(enum proto p, const char *url, size_t nrefs, const struct behav *b)
{
	struct job *j = hf_xcalloc(1, sizeof(*j));
	j->proto = p;
	j->url = hf_xstrdup(url);
	j->refs = hf_xcalloc(nrefs ? nrefs : 1, sizeof(*j->refs));
	j->complete = hf_xcalloc(nrefs ? nrefs : 1, sizeof(*j->complete));
	j->drop = b->drop_callback;
	j->unsigned_cb = b->unsigned_callback;
	j->bad_sig = b->bad_signature;
	j->dup_left = b->duplicate_callbacks;
	j->due_ms = hf_mono_ms() + b->callback_delay_ms;
	hf_buf_init(&j->body, RESP_MAX);
	return j;
}

static void heap_swap(size_t a, size_t b)
{
	struct job *t = g.heap[a];
	g.heap[a] = g.heap[b];
	g.heap[b] = t;
}

/* Queues a job (takes ownership). */
static void queue_push(struct job *j)
{
	pthread_mutex_lock(&g.qmu);
	if (g.nheap == g.heap_cap) {
		g.heap_cap = g.heap_cap ? g.heap_cap * 2 : 1024;
		g.heap = hf_xrealloc(g.heap, g.heap_cap * sizeof(*g.heap));
	}
	size_t i = g.nheap++;
	g.heap[i] = j;
	while (i && g.heap[(i - 1) / 2]->due_ms > g.heap[i]->due_ms) {
		heap_swap(i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
	/* Waiters sleep until the old earliest job; a new earlier one must wake one of them. */
	pthread_cond_signal(&g.qcond);
	pthread_mutex_unlock(&g.qmu);
}

static struct job *heap_pop_locked(void)
{
	struct job *top = g.heap[0];
	g.heap[0] = g.heap[--g.nheap];
	size_t i = 0;
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < g.nheap && g.heap[l]->due_ms < g.heap[m]->due_ms)
			m = l;
		if (r < g.nheap && g.heap[r]->due_ms < g.heap[m]->due_ms)
			m = r;
		if (m == i)
			break;
		heap_swap(i, m);
		i = m;
	}
	return top;
}

/* The next due job, or NULL when stopping. */
static struct job *queue_pop(void)
{
	pthread_mutex_lock(&g.qmu);
	struct job *j = NULL;
	while (!g.stopping) {
		if (g.nheap == 0) {
			pthread_cond_wait(&g.qcond, &g.qmu);
			continue;
		}
		int64_t wait = g.heap[0]->due_ms - hf_mono_ms();
		if (wait <= 0) {
			j = heap_pop_locked();
			break;
		}
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		int64_t ns = (int64_t)ts.tv_nsec + (wait % 1000) * 1000000;
		ts.tv_sec += (time_t)(wait / 1000 + ns / 1000000000);
		ts.tv_nsec = (long)(ns % 1000000000);
		pthread_cond_timedwait(&g.qcond, &g.qmu, &ts);
	}
	/* Pass the wake-up on: another worker may have an earlier job to wait for now. */
	if (j && g.nheap)
		pthread_cond_signal(&g.qcond);
	pthread_mutex_unlock(&g.qmu);
	return j;
}

/* Drops queued jobs of generations before the current one (after a reset). */
static void queue_purge(uint64_t gen)
{
	pthread_mutex_lock(&g.qmu);
	size_t keep = 0;
	for (size_t i = 0; i < g.nheap; i++) {
		if (g.heap[i]->gen == gen)
			g.heap[keep++] = g.heap[i];
		else
			job_free(g.heap[i]);
	}
	g.nheap = keep;
	/* Re-heapify what is left (bottom-up). */
	for (size_t s = g.nheap / 2; s-- > 0;) {
		size_t i = s;
		for (;;) {
			size_t l = 2 * i + 1, r = l + 1, m = i;
			if (l < g.nheap && g.heap[l]->due_ms < g.heap[m]->due_ms)
				m = l;
			if (r < g.nheap && g.heap[r]->due_ms < g.heap[m]->due_ms)
				m = r;
			if (m == i)
				break;
			heap_swap(i, m);
			i = m;
		}
	}
	pthread_mutex_unlock(&g.qmu);
}

/* ---- JSON views of a transaction (under g.mu) ----------------------------------------------------------- */

/* The B2C Result object, as in the callback and the status answer (final states only). */
static json_t *b2c_result_json(const struct txn *t)
{
	char when[21];
	iso_utc(t->completed_ms, when);
	if (t->state == ST_PAID)
		return json_pack("{s:i, s:i, s:s, s:s, s:s, s:s, s:I, s:s, s:s}", "ResultType", 0, "ResultCode", 0,
				 "ResultDesc", B2C_RESULT_OK_DESC, "OriginatorConversationID", t->ref, "ConversationID",
				 t->conv_id, "TransactionID", t->receipt, "Amount", (json_int_t)t->paid, "Currency",
				 t->currency, "CompletedTime", when);
	return json_pack("{s:i, s:i, s:s, s:s, s:s, s:I, s:s, s:s}", "ResultType", 0, "ResultCode", t->result_code,
			 "ResultDesc", t->reason ? t->reason : "The initiator information is invalid.",
			 "OriginatorConversationID", t->ref, "ConversationID", t->conv_id, "Amount", (json_int_t)0,
			 "Currency", t->currency, "CompletedTime", when);
}

static const char *g2p_status_of(const struct txn *t)
{
	switch (t->state) {
	case ST_PAID:
		return "SUCC";
	case ST_FAILED:
		return "RJCT";
	case ST_PENDING:
		return "PDNG";
	default:
		return "UNKNOWN";
	}
}

/* One G2P item status (callback and status query alike). */
static json_t *g2p_item_json(const struct txn *t)
{
	char when[21], amount[32];
	iso_utc(t->state == ST_PENDING ? t->received_ms : t->completed_ms, when);
	decimal_fmt(t->state == ST_PENDING ? t->amount : t->paid, amount);
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "reference_id", t->ref, "status", g2p_status_of(t), "amount",
			      amount, "currency_code", t->currency, "timestamp", when);
	if (t->state == ST_PAID)
		json_object_set_new(o, "instruction_id", json_string(t->receipt));
	if (t->state == ST_FAILED) {
		json_object_set_new(o, "reason_code", json_string(t->reason_code ? t->reason_code : "rjct.payee_fa.invalid"));
		json_object_set_new(o, "reason_message", json_string(t->reason ? t->reason : "rejected"));
	}
	return o;
}

/* ---- callback delivery (worker threads) ----------------------------------------------------------------- */

/* Completes what the job completes and renders its body; false when there is nothing to send. */
static bool job_render(struct job *j)
{
	bool ok = true;
	json_t *doc = NULL;
	pthread_mutex_lock(&g.mu);
	if (j->gen != g.gen) {
		ok = false;
		goto out_unlock;
	}
	int64_t now = hf_now_ms();
	for (size_t i = 0; i < j->nrefs; i++) {
		struct txn *t = txn_find(j->refs[i]);
		if (t && j->complete[i] && t->state == ST_PENDING)
			txn_finish(t, t->will_fail, now);
	}
	if (j->drop) {
		ok = false;
		goto out_unlock;
	}
	if (j->proto == P_B2C) {
		struct txn *t = txn_find(j->refs[0]);
		if (!t || (t->state != ST_PAID && t->state != ST_FAILED)) {
			ok = false;
			goto out_unlock;
		}
		doc = json_pack("{s:o}", "Result", b2c_result_json(t));
	} else {
		json_t *items = json_array();
		size_t completed = 0;
		for (size_t i = 0; i < j->nrefs; i++) {
			struct txn *t = txn_find(j->refs[i]);
			if (!t)
				continue;
			completed += t->state == ST_PAID || t->state == ST_FAILED;
			json_array_append_new(items, g2p_item_json(t));
		}
		char when[21], msg_id[40];
		iso_utc(now, when);
		make_id("msg-", msg_id, sizeof(msg_id));
		doc = json_pack("{s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:b}, s:{s:s, s:s, s:o}}", "header",
				"version", "1.0.0", "message_id", msg_id, "message_ts", when, "action", "on-disburse",
				"status", "succ", "sender_id", g.sender_id, "receiver_id", j->receiver_id, "total_count",
				(json_int_t)json_array_size(items), "completed_count", (json_int_t)completed,
				"is_msg_encrypted", 0, "message", "transaction_id", j->txn_id, "correlation_id", j->corr_id,
				"disbursements_status", items);
	}
out_unlock:
	pthread_mutex_unlock(&g.mu);
	if (doc) {
		HF_ASSERT(hf_json_dump(doc, &j->body) == HF_OK);
		json_decref(doc);
	}
	j->rendered = true;
	return ok;
}

/* Signs body the way the protocol does (or not, or wrongly) into hdr ("Name: value"). */
static void sign_header(enum proto p, bool bad, const char *body, size_t len, char *hdr, size_t hdr_size)
{
	int64_t now = hf_now_ms() / 1000;
	if (p == P_B2C) {
		char v[HF_PAYSIG_HDR_MAX];
		hf_paysig_hmac_header(bad ? g.bad_secret : g.secret, bad ? 32 : g.secret_len, now, body, len, v);
		snprintf(hdr, hdr_size, "%s: %s", HF_PAYSIG_HMAC_HEADER, v);
	} else {
		char v[HF_PAYSIG_DCI_MAX];
		hf_paysig_dci_header(bad ? g.bad_sk : g.sk, g.sender_id, g.key_id, now, now + DCI_EXPIRES_S, body, len, v);
		snprintf(hdr, hdr_size, "%s: %s", HF_PAYSIG_DCI_HEADER, v);
	}
}

/* Per-reference and global counts of one callback's fate (under g.mu). */
static void count_callback(const struct job *j, bool answered, bool rejected)
{
	if (j->gen != g.gen)
		return;
	if (answered)
		g.st.callbacks_sent++;
	else
		g.st.callbacks_failed++;
	if (rejected)
		g.st.callbacks_rejected++;
	for (size_t i = 0; i < j->nrefs; i++) {
		struct txn *t = txn_find(j->refs[i]);
		if (!t)
			continue;
		if (answered)
			t->callbacks_sent++;
		else
			t->callbacks_failed++;
	}
}

static void job_run(struct hf_httpc *hc, struct job *j)
{
	/* A job of before a reset (one being retried, or a duplicate) is dropped, not sent. */
	pthread_mutex_lock(&g.mu);
	bool stale = j->gen != g.gen;
	pthread_mutex_unlock(&g.mu);
	if (stale || (!j->rendered && !job_render(j))) {
		job_free(j);
		return;
	}
	char hdr[HF_PAYSIG_DCI_MAX + 32];
	const char *headers[2] = {NULL, NULL};
	if (!j->unsigned_cb) {
		sign_header(j->proto, j->bad_sig, j->body.data, j->body.len, hdr, sizeof(hdr));
		headers[0] = hdr;
	}
	struct hf_httpc_resp r;
	hf_err err = hf_httpc_post(hc, j->url, "application/json", j->body.data, j->body.len, headers, CB_TIMEOUT_MS,
				   RECEIVER_RESP_MAX, &r);
	hf_buf_release(&r.body);
	bool server_error = err == HF_OK && r.status >= 500;
	j->tries++;
	if ((err || server_error) && j->tries < CB_TRIES) {
		/* Backoff: 250 ms, then 1 s. */
		j->due_ms = hf_mono_ms() + (j->tries == 1 ? 250 : 1000);
		queue_push(j);
		return;
	}
	bool answered = err == HF_OK && !server_error;
	pthread_mutex_lock(&g.mu);
	count_callback(j, answered, answered && (r.status < 200 || r.status > 299));
	pthread_mutex_unlock(&g.mu);
	if (!answered)
		hf_log(HF_LOG_WARN, PLACE,
		       "msg=\"callback not delivered; giving up\" proto=%s ref=%s refs=%zu tries=%d err=%s status=%ld",
		       j->proto == P_B2C ? "b2c" : "g2p", j->refs[0], j->nrefs, j->tries, hf_err_name(err), r.status);
	else if (r.status < 200 || r.status > 299)
		hf_log(HF_LOG_INFO, PLACE, "msg=\"callback refused by the receiver\" proto=%s ref=%s refs=%zu status=%ld",
		       j->proto == P_B2C ? "b2c" : "g2p", j->refs[0], j->nrefs, r.status);
	if (--j->dup_left > 0) {
		j->tries = 0;
		j->due_ms = hf_mono_ms();
		queue_push(j);
		return;
	}
	job_free(j);
}

static void *worker_main(void *arg)
{
	(void)arg;
	struct hf_httpc *hc = hf_httpc_new();
	HF_ASSERT(hc != NULL);
	struct job *j;
	while ((j = queue_pop()) != NULL)
		job_run(hc, j);
	hf_httpc_free(hc);
	return NULL;
}

/* ---- HTTP plumbing -------------------------------------------------------------------------------------- */

struct out {
	int status; /* 0: close the connection without answering */
	const char *ctype;
	struct hf_buf body;
};

struct conn_state {
	struct hf_buf body;
	bool too_big;
	uint64_t discarded; /* bytes of an oversize body read and dropped */
};

/* Answers v (taken). A NULL v (json_pack refused a value) answers 500 rather than abort on outside input. */
static void out_json(struct out *o, int status, json_t *v)
{
	o->status = status;
	o->ctype = "application/json";
	hf_buf_reset(&o->body);
	if (!v || hf_json_dump(v, &o->body)) {
		hf_log(HF_LOG_ERROR, PLACE, "msg=\"cannot render an answer\" status=%d", status);
		o->status = 500;
		hf_buf_reset(&o->body);
		HF_ASSERT(hf_buf_append_str(&o->body, "{\"error\":\"internal\"}") == HF_OK);
	}
	json_decref(v);
}

static void out_simple_error(struct out *o, int status, const char *message)
{
	out_json(o, status, json_pack("{s:s}", "error", message));
}

static bool client_is_loopback(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (!ci || !ci->client_addr || ci->client_addr->sa_family != AF_INET)
		return false;
	const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)ci->client_addr;
	return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
}

static bool authorised(struct MHD_Connection *conn)
{
	if (!g.token)
		return true;
	const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
	if (!h || strncmp(h, "Bearer ", 7) != 0)
		return false;
	h += 7;
	size_t n = strnlen(h, g.token_len + 1);
	return n == g.token_len && hf_ct_equal(h, g.token, n);
}

static json_t *parse_body(const char *body, size_t len)
{
	json_t *v = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
	if (v && !json_is_object(v)) {
		json_decref(v);
		v = NULL;
	}
	return v;
}

/* ---- protocol A: mobile-money B2C ----------------------------------------------------------------------- */

static void b2c_bad(struct out *o, const char *field)
{
	char d[96];
	snprintf(d, sizeof(d), "Bad Request - Invalid %s", field);
	out_json(o, 400, json_pack("{s:s, s:s}", "ResponseCode", "400.002.02", "ResponseDescription", d));
}

/* The first invalid field of a payment request, or NULL. */
static const char *b2c_invalid_field(json_t *req, int64_t *amount)
{
	static const char *const commands[] = {"BusinessPayment", "SalaryPayment", "PromotionPayment"};
	if (!ref_valid(jstr(req, "OriginatorConversationID")))
		return "OriginatorConversationID";
	const char *cmd = jstr(req, "CommandID");
	bool cmd_ok = false;
	for (size_t i = 0; cmd && i < HF_ARRAY_LEN(commands); i++)
		cmd_ok |= strcmp(cmd, commands[i]) == 0;
	if (!cmd_ok)
		return "CommandID";
	if (!msisdn_valid(jstr(req, "PartyB")))
		return "PartyB";
	if (!int_field(json_object_get(req, "Amount"), 1, AMOUNT_MAX, amount))
		return "Amount";
	if (!currency_valid(jstr(req, "Currency")))
		return "Currency";
	if (!text_valid(jstr(req, "Remarks"), 0, TEXT_MAX))
		return "Remarks";
	if (!url_valid(jstr(req, "ResultURL")))
		return "ResultURL";
	if (!url_valid(jstr(req, "QueueTimeOutURL")))
		return "QueueTimeOutURL";
	return NULL;
}

static void b2c_payment(const char *body, size_t len, struct out *o)
{
	json_t *req = parse_body(body, len);
	int64_t amount = 0;
	const char *bad = req ? b2c_invalid_field(req, &amount) : "JSON body";
	if (bad) {
		b2c_bad(o, bad);
		goto out_req;
	}
	const char *ref = jstr(req, "OriginatorConversationID");
	const char *party = jstr(req, "PartyB");
	const char *currency = jstr(req, "Currency");
	int64_t sleep_ms = 0;
	bool answer = true;

	pthread_mutex_lock(&g.mu);
	struct behav b = behav_for(ref);
	if (b.crash) {
		hf_log(HF_LOG_WARN, PLACE, "msg=\"crash switch: exiting\" ref=%s", ref);
		_exit(3);
	}
	g.st.requests++;
	struct txn *t = txn_get(ref);
	if (!t) {
		pthread_mutex_unlock(&g.mu);
		out_json(o, 503, json_pack("{s:s, s:s}", "ResponseCode", "503", "ResponseDescription",
					   "Simulator transaction table full"));
		goto out_req;
	}
	t->requests++;
	bool hang = b.hang_ms > 0 && t->hangs < (uint32_t)b.hang_times;
	if (hang) {
		t->hangs++;
		sleep_ms = b.hang_ms;
		if (!b.hang_process) {
			/* As if the request never arrived: nothing registered, no answer. */
			pthread_mutex_unlock(&g.mu);
			hf_log(HF_LOG_INFO, PLACE, "msg=\"hang switch: no processing, closing without an answer\" ref=%s ms=%d", ref,
			       b.hang_ms);
			answer = false;
			goto out_sleep;
		}
	} else {
		sleep_ms = b.accept_delay_ms;
	}
	if (t->state != ST_NONE) {
		if (t->proto != P_B2C || t->amount != amount || strcmp(t->party, party) != 0) {
			pthread_mutex_unlock(&g.mu);
			out_json(o, 409, json_pack("{s:s, s:s}", "ResponseCode", "409", "ResponseDescription",
						   "Duplicate OriginatorConversationID with different details"));
			goto out_sleep;
		}
		/* Idempotent repeat: the same ConversationID, no second payment, no second callback. */
		g.st.duplicate_requests++;
		out_json(o, 200, json_pack("{s:s, s:s, s:s, s:s}", "ConversationID", t->conv_id, "OriginatorConversationID",
					   ref, "ResponseCode", "0", "ResponseDescription", B2C_OK_DESC));
		pthread_mutex_unlock(&g.mu);
		goto out_sleep;
	}
	if (b.reject[0]) {
		/* A switch refusing at once: nothing registered, so a later request may succeed. */
		pthread_mutex_unlock(&g.mu);
		char conv[40];
		make_conv_id(conv);
		out_json(o, 200, json_pack("{s:s, s:s, s:s, s:s}", "ConversationID", conv, "OriginatorConversationID", ref,
					   "ResponseCode", "1", "ResponseDescription", b.reject));
		goto out_sleep;
	}
	t->proto = P_B2C;
	t->state = ST_PENDING;
	t->amount = amount;
	t->delta = b.amount_delta;
	t->will_fail = b.fail[0] != '\0';
	t->result_code = b.result_code;
	if (t->will_fail)
		t->reason = hf_xstrdup(b.fail);
	t->party = hf_xstrdup(party);
	hf_strlcpy(t->currency, currency, sizeof(t->currency));
	make_conv_id(t->conv_id);
	t->received_ms = hf_now_ms();
	struct job *j = job_new(P_B2C, jstr(req, "ResultURL"), 1, &b);
	j->gen = g.gen;
	memcpy(j->refs[0], t->ref, sizeof(j->refs[0]));
	j->complete[0] = true;
	j->nrefs = 1;
	out_json(o, 200, json_pack("{s:s, s:s, s:s, s:s}", "ConversationID", t->conv_id, "OriginatorConversationID", ref,
				   "ResponseCode", "0", "ResponseDescription", B2C_OK_DESC));
	queue_push(j);
	pthread_mutex_unlock(&g.mu);
out_sleep:
	sim_sleep_ms(sleep_ms);
	if (!answer)
		o->status = 0;
out_req:
	json_decref(req);
}

static void b2c_status(const char *body, size_t len, struct out *o)
{
	json_t *req = parse_body(body, len);
	const char *ref = req ? jstr(req, "OriginatorConversationID") : NULL;
	if (!ref_valid(ref)) {
		b2c_bad(o, req ? "OriginatorConversationID" : "JSON body");
		goto out_req;
	}
	pthread_mutex_lock(&g.mu);
	g.st.status_queries++;
	const struct txn *t = txn_find(ref);
	if (!t || t->state == ST_NONE || t->proto != P_B2C) {
		pthread_mutex_unlock(&g.mu);
		out_json(o, 404, json_pack("{s:b}", "found", 0));
		goto out_req;
	}
	json_t *r = json_pack("{s:b, s:s, s:s, s:s}", "found", 1, "status",
			      t->state == ST_PENDING ? "pending" : t->state == ST_PAID ? "completed" : "failed",
			      "OriginatorConversationID", t->ref, "ConversationID", t->conv_id);
	if (t->state != ST_PENDING)
		json_object_set_new(r, "Result", b2c_result_json(t));
	pthread_mutex_unlock(&g.mu);
	out_json(o, 200, r);
out_req:
	json_decref(req);
}

/* ---- protocol B: G2P Connect disbursement --------------------------------------------------------------- */

static void g2p_err(struct out *o, int status, const char *code, const char *message)
{
	char when[21];
	iso_utc(hf_now_ms(), when);
	out_json(o, status, json_pack("{s:{s:s, s:s, s:{s:s, s:s}}}", "message", "ack_status", "ERR", "timestamp", when,
				      "error", "code", code, "message", message));
}

struct item {
	const char *ref, *payee, *currency;
	int64_t amount;
	struct behav b;
	struct txn *t;
	bool complete; /* newly accepted: completes when its callback comes due */
	bool grouped;
};

/* Validates an envelope into items (borrowed from req); an error message into err otherwise. */
static bool g2p_parse(json_t *req, struct item *items, size_t *n, struct hf_buf *err)
{
	json_t *h = json_object_get(req, "header");
	json_t *m = json_object_get(req, "message");
	if (!json_is_object(h) || !json_is_object(m)) {
		hf_buf_note(err, "header and message objects are required");
		return false;
	}
	const char *action = jstr(h, "action");
	int64_t total = 0;
	if (!text_valid(jstr(h, "version"), 1, 16) || !text_valid(jstr(h, "message_id"), 1, ID_MAX) ||
	    !text_valid(jstr(h, "message_ts"), 1, 40) || !action || strcmp(action, "disburse") != 0 ||
	    !hf_paysig_dci_id_valid(jstr(h, "sender_id")) || !url_valid(jstr(h, "sender_uri")) ||
	    !text_valid(jstr(h, "receiver_id"), 1, ID_MAX) ||
	    !int_field(json_object_get(h, "total_count"), 1, MAX_ITEMS, &total)) {
		hf_buf_note(err, "invalid header (version, message_id, message_ts, action \"disburse\", sender_id, "
				 "sender_uri, receiver_id, total_count are required)");
		return false;
	}
	json_t *enc = json_object_get(h, "is_msg_encrypted");
	if (enc && !json_is_false(enc)) {
		hf_buf_note(err, "encrypted messages are not supported (is_msg_encrypted must be false)");
		return false;
	}
	if (!text_valid(jstr(m, "transaction_id"), 1, ID_MAX)) {
		hf_buf_note(err, "invalid message.transaction_id");
		return false;
	}
	json_t *ds = json_object_get(m, "disbursements");
	if (!json_is_array(ds) || json_array_size(ds) == 0 || json_array_size(ds) > MAX_ITEMS) {
		hf_buf_note(err, "message.disbursements must hold 1 to %d items", MAX_ITEMS);
		return false;
	}
	if ((size_t)total != json_array_size(ds)) {
		hf_buf_note(err, "header.total_count does not match the number of disbursements");
		return false;
	}
	size_t i;
	json_t *d;
	json_array_foreach(ds, i, d) {
		struct item *it = &items[i];
		*it = (struct item){0};
		const char *bad = NULL;
		if (!json_is_object(d))
			bad = "";
		else if (!ref_valid(it->ref = jstr(d, "reference_id")))
			bad = "reference_id";
		else if (!text_valid(it->payee = jstr(d, "payee_fa"), 3, FA_MAX) || !strchr(it->payee, '@'))
			bad = "payee_fa";
		else if (json_object_get(d, "payer_fa") && !text_valid(jstr(d, "payer_fa"), 1, FA_MAX))
			bad = "payer_fa";
		else if (!decimal_parse(jstr(d, "amount"), &it->amount))
			bad = "amount";
		else if (!currency_valid(it->currency = jstr(d, "currency_code")))
			bad = "currency_code";
		else if ((json_object_get(d, "note") && !text_valid(jstr(d, "note"), 0, TEXT_MAX)) ||
			 (json_object_get(d, "purpose") && !text_valid(jstr(d, "purpose"), 0, TEXT_MAX)) ||
			 (json_object_get(d, "locale") && !text_valid(jstr(d, "locale"), 0, 16)) ||
			 (json_object_get(d, "scheduled_timestamp") && !text_valid(jstr(d, "scheduled_timestamp"), 0, 40)))
			bad = "note, purpose, locale or scheduled_timestamp";
		if (bad) {
			hf_buf_note(err, "invalid message.disbursements[%zu]%s%s", i, *bad ? "." : "", bad);
			return false;
		}
		for (size_t k = 0; k < i; k++) {
			if (strcmp(items[k].ref, it->ref) == 0) {
				hf_buf_note(err, "reference_id %s appears twice in one envelope", it->ref);
				return false;
			}
		}
	}
	*n = json_array_size(ds);
	return true;
}

static bool same_cb_behaviour(const struct behav *a, const struct behav *b)
{
	return a->callback_delay_ms == b->callback_delay_ms && a->drop_callback == b->drop_callback &&
	       a->duplicate_callbacks == b->duplicate_callbacks && a->unsigned_callback == b->unsigned_callback &&
	       a->bad_signature == b->bad_signature;
}

static void g2p_disburse(const char *body, size_t len, struct out *o)
{
	struct hf_buf err;
	hf_buf_init(&err, 512);
	struct item *items = hf_xcalloc(MAX_ITEMS, sizeof(*items));
	size_t n = 0;
	json_t *req = parse_body(body, len);
	if (!req) {
		g2p_err(o, 400, "err.request.bad", "the body is not a JSON object");
		goto out_free;
	}
	if (!g2p_parse(req, items, &n, &err)) {
		g2p_err(o, 400, "err.request.bad", hf_buf_cstr(&err));
		goto out_free;
	}
	json_t *h = json_object_get(req, "header");
	json_t *m = json_object_get(req, "message");
	char corr[40];
	make_id("corr-", corr, sizeof(corr));
	int64_t sleep_ms = 0;
	bool answer = true;

	pthread_mutex_lock(&g.mu);
	bool hang = false, process = true, nack = false;
	for (size_t i = 0; i < n; i++) {
		items[i].b = behav_for(items[i].ref);
		if (items[i].b.crash) {
			hf_log(HF_LOG_WARN, PLACE, "msg=\"crash switch: exiting\" ref=%s", items[i].ref);
			_exit(3);
		}
	}
	if (g.ntxn + n > MAX_TXNS) {
		pthread_mutex_unlock(&g.mu);
		g2p_err(o, 503, "err.service.unavailable", "simulator transaction table full");
		goto out_free;
	}
	g.st.requests += n;
	for (size_t i = 0; i < n; i++) {
		struct item *it = &items[i];
		it->t = txn_get(it->ref);
		HF_ASSERT(it->t != NULL); /* capacity checked above */
		it->t->requests++;
		if (it->b.hang_ms > 0 && it->t->hangs < (uint32_t)it->b.hang_times) {
			it->t->hangs++;
			hang = true;
			process &= it->b.hang_process;
			if (it->b.hang_ms > sleep_ms)
				sleep_ms = it->b.hang_ms;
		}
		nack |= it->b.nack;
	}
	if (hang && !process) {
		pthread_mutex_unlock(&g.mu);
		hf_log(HF_LOG_INFO, PLACE, "msg=\"hang switch: no processing, closing without an answer\" ref=%s refs=%zu ms=%lld",
		       items[0].ref, n, (long long)sleep_ms);
		answer = false;
		goto out_sleep;
	}
	if (!hang)
		for (size_t i = 0; i < n; i++)
			if (items[i].b.accept_delay_ms > sleep_ms)
				sleep_ms = items[i].b.accept_delay_ms;
	char when[21];
	iso_utc(hf_now_ms(), when);
	if (nack) {
		pthread_mutex_unlock(&g.mu);
		out_json(o, 200, json_pack("{s:{s:s, s:s, s:s}}", "message", "ack_status", "NACK", "timestamp", when,
					   "correlation_id", corr));
		goto out_sleep;
	}
	for (size_t i = 0; i < n; i++) {
		const struct txn *t = items[i].t;
		if (t->state != ST_NONE &&
		    (t->proto != P_G2P || t->amount != items[i].amount || strcmp(t->party, items[i].payee) != 0)) {
			pthread_mutex_unlock(&g.mu);
			char msg[160];
			snprintf(msg, sizeof(msg), "duplicate reference_id %s with different details", t->ref);
			g2p_err(o, 409, "err.reference_id.duplicate", msg);
			goto out_sleep;
		}
	}
	int64_t now = hf_now_ms();
	for (size_t i = 0; i < n; i++) {
		struct item *it = &items[i];
		struct txn *t = it->t;
		if (t->state != ST_NONE) {
			g.st.duplicate_requests++; /* reported again with its current status */
			continue;
		}
		t->proto = P_G2P;
		t->state = ST_PENDING;
		t->amount = it->amount;
		t->delta = it->b.amount_delta;
		t->party = hf_xstrdup(it->payee);
		hf_strlcpy(t->currency, it->currency, sizeof(t->currency));
		t->received_ms = now;
		t->reason_code = hf_xstrdup(it->b.reason_code);
		if (it->b.reject[0]) {
			t->reason = hf_xstrdup(it->b.reject);
			txn_finish(t, true, now); /* rejected at once, reported in the callback */
		} else {
			t->will_fail = it->b.fail[0] != '\0';
			if (t->will_fail)
				t->reason = hf_xstrdup(it->b.fail);
			it->complete = true;
		}
	}
	/* One callback per group of items that share callback behaviour (usually the whole envelope). */
	char url[URL_MAX + 16];
	const char *base = jstr(h, "sender_uri");
	size_t bl = strlen(base);
	while (bl && base[bl - 1] == '/')
		bl--;
	snprintf(url, sizeof(url), "%.*s/on-disburse", (int)bl, base);
	for (size_t i = 0; i < n; i++) {
		if (items[i].grouped)
			continue;
		struct job *j = job_new(P_G2P, url, n, &items[i].b);
		j->gen = g.gen;
		j->txn_id = hf_xstrdup(jstr(m, "transaction_id"));
		j->corr_id = hf_xstrdup(corr);
		j->receiver_id = hf_xstrdup(jstr(h, "sender_id"));
		for (size_t k = i; k < n; k++) {
			if (items[k].grouped || !same_cb_behaviour(&items[i].b, &items[k].b))
				continue;
			items[k].grouped = true;
			memcpy(j->refs[j->nrefs], items[k].t->ref, sizeof(j->refs[0]));
			j->complete[j->nrefs] = items[k].complete;
			j->nrefs++;
		}
		queue_push(j);
	}
	pthread_mutex_unlock(&g.mu);
	out_json(o, 200, json_pack("{s:{s:s, s:s, s:s}}", "message", "ack_status", "ACK", "timestamp", when,
				   "correlation_id", corr));
out_sleep:
	sim_sleep_ms(sleep_ms);
	if (!answer)
		o->status = 0;
out_free:
	json_decref(req);
	free(items);
	hf_buf_release(&err);
}

static void g2p_status(const char *body, size_t len, struct out *o)
{
	json_t *req = parse_body(body, len);
	json_t *m = req ? json_object_get(req, "message") : NULL;
	json_t *tr = json_is_object(m) ? json_object_get(m, "txnstatus_request") : NULL;
	json_t *ids = json_is_object(tr) ? json_object_get(tr, "attribute_value") : NULL;
	const char *type = json_is_object(tr) ? jstr(tr, "txn_type") : NULL;
	const char *attr = json_is_object(tr) ? jstr(tr, "attribute_type") : NULL;
	if (!json_is_object(m) || !json_is_object(tr) || !type || strcmp(type, "disburse") != 0 || !attr ||
	    strcmp(attr, "reference_id_list") != 0 || !json_is_array(ids) || json_array_size(ids) == 0 ||
	    json_array_size(ids) > MAX_ITEMS) {
		g2p_err(o, 400, "err.request.bad",
			"message.txnstatus_request needs txn_type \"disburse\", attribute_type \"reference_id_list\" and "
			"1 to 1000 ids in attribute_value");
		goto out_req;
	}
	size_t i;
	json_t *v;
	json_array_foreach(ids, i, v) {
		if (!json_is_string(v) || !text_valid(json_string_value(v), 1, ID_MAX)) {
			g2p_err(o, 400, "err.request.bad", "attribute_value must hold reference ids (strings of 1 to 64 characters)");
			goto out_req;
		}
	}
	json_t *list = json_array();
	pthread_mutex_lock(&g.mu);
	g.st.status_queries++;
	json_array_foreach(ids, i, v) {
		const char *ref = json_string_value(v);
		const struct txn *t = txn_find(ref);
		if (t && t->state != ST_NONE && t->proto == P_G2P)
			json_array_append_new(list, g2p_item_json(t));
		else
			json_array_append_new(list, json_pack("{s:s, s:s}", "reference_id", ref, "status", "UNKNOWN"));
	}
	pthread_mutex_unlock(&g.mu);
	json_t *r = json_pack("{s:{s:{s:s, s:o}}}", "message", "txnstatus_response", "txn_type", "disburse", "txn_status",
			      list);
	const char *tid = jstr(m, "transaction_id");
	if (tid && text_valid(tid, 1, ID_MAX))
		json_object_set_new(json_object_get(r, "message"), "transaction_id", json_string(tid));
	out_json(o, 200, r);
out_req:
	json_decref(req);
}

/* ---- control API ---------------------------------------------------------------------------------------- */

/* Installs a config parsed from src (NULL = none); on error writes why into err. */
static hf_err config_apply(json_t *src, struct hf_buf *err)
{
	struct sim_config *c = NULL;
	if (src) {
		c = config_parse(src, err);
		if (!c)
			return HF_EINVAL;
	}
	pthread_mutex_lock(&g.mu);
	struct sim_config *old = g.cfg;
	g.cfg = c;
	pthread_mutex_unlock(&g.mu);
	config_free(old);
	hf_log(HF_LOG_INFO, PLACE, "msg=\"config applied\" default_keys=%s by_ref=%zu", c && c->def.set ? "yes" : "no",
	       c ? c->n : 0);
	return HF_OK;
}

static void ctl_config(const char *method, const char *body, size_t len, struct out *o)
{
	if (strcmp(method, "GET") == 0) {
		pthread_mutex_lock(&g.mu);
		json_t *v = g.cfg ? json_deep_copy(g.cfg->src) : json_object();
		pthread_mutex_unlock(&g.mu);
		out_json(o, 200, v);
		return;
	}
	json_t *src = parse_body(body, len);
	if (!src) {
		out_simple_error(o, 400, "the body must be a JSON object");
		return;
	}
	struct hf_buf err;
	hf_buf_init(&err, 512);
	if (config_apply(src, &err))
		out_simple_error(o, 400, hf_buf_cstr(&err));
	else
		out_json(o, 200, json_pack("{s:b}", "ok", 1));
	hf_buf_release(&err);
	json_decref(src);
}

static void ctl_reset(struct out *o)
{
	pthread_mutex_lock(&g.mu);
	table_clear();
	struct sim_config *old = g.cfg;
	g.cfg = NULL;
	g.st = (struct stats){0};
	uint64_t gen = ++g.gen;
	pthread_mutex_unlock(&g.mu);
	config_free(old);
	queue_purge(gen);
	hf_log(HF_LOG_INFO, PLACE, "msg=\"reset: transactions, config and counters forgotten\"");
	out_json(o, 200, json_pack("{s:b}", "ok", 1));
}

static void ctl_stats(struct MHD_Connection *conn, struct out *o)
{
	const char *ref = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "ref");
	pthread_mutex_lock(&g.mu);
	json_t *r = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "requests", (json_int_t)g.st.requests,
			      "duplicate_requests", (json_int_t)g.st.duplicate_requests, "paid", (json_int_t)g.st.paid,
			      "failed", (json_int_t)g.st.failed, "callbacks_sent", (json_int_t)g.st.callbacks_sent,
			      "callbacks_failed", (json_int_t)g.st.callbacks_failed, "callbacks_rejected",
			      (json_int_t)g.st.callbacks_rejected, "status_queries", (json_int_t)g.st.status_queries,
			      "transactions", (json_int_t)g.ntxn);
	if (ref) {
		const struct txn *t = ref_valid(ref) ? txn_find(ref) : NULL;
		const char *st = !t || t->state == ST_NONE ? "unknown"
				 : t->state == ST_PENDING    ? "pending"
				 : t->state == ST_PAID	     ? "completed"
							     : "failed";
		json_object_set_new(r, "by_ref",
				    json_pack("{s:I, s:s, s:I, s:I}", "requests", (json_int_t)(t ? t->requests : 0), "status",
					      st, "callbacks_sent", (json_int_t)(t ? t->callbacks_sent : 0),
					      "callbacks_failed", (json_int_t)(t ? t->callbacks_failed : 0)));
	}
	pthread_mutex_unlock(&g.mu);
	out_json(o, 200, r);
}

static void ctl_inject(const char *body, size_t len, struct out *o)
{
	json_t *req = parse_body(body, len);
	struct hf_httpc *hc = NULL;
	const char *proto = req ? jstr(req, "protocol") : NULL;
	const char *url = req ? jstr(req, "url") : NULL;
	const char *ref = req ? jstr(req, "reference_id") : NULL;
	const char *currency = req ? jstr(req, "currency") : NULL;
	const char *status = req ? jstr(req, "status") : NULL;
	const char *receipt = req ? jstr(req, "receipt") : NULL;
	json_t *sign = req ? json_object_get(req, "sign") : NULL;
	int64_t amount = 0;
	if (!req || !proto || (strcmp(proto, "b2c") != 0 && strcmp(proto, "g2p") != 0) || !url_valid(url) ||
	    !text_valid(ref, 1, ID_MAX) || !int_field(json_object_get(req, "amount"), 0, AMOUNT_MAX, &amount) ||
	    !currency_valid(currency) || !status || (strcmp(status, "SUCC") != 0 && strcmp(status, "RJCT") != 0) ||
	    (receipt && !text_valid(receipt, 1, 32)) || (json_object_get(req, "receipt") && !receipt) ||
	    (sign && !json_is_boolean(sign))) {
		out_simple_error(o, 400,
				 "needs protocol (b2c|g2p), url, reference_id, amount (minor units), currency, status "
				 "(SUCC|RJCT); optional receipt, sign (default true)");
		goto out_req;
	}
	bool succ = status[0] == 'S';
	char rcpt[11], when[21], conv[40], amt[32];
	make_receipt(rcpt);
	iso_utc(hf_now_ms(), when);
	json_t *doc;
	enum proto p = proto[0] == 'b' ? P_B2C : P_G2P;
	if (p == P_B2C) {
		pthread_mutex_lock(&g.mu);
		const struct txn *t = ref_valid(ref) ? txn_find(ref) : NULL;
		if (t && t->proto == P_B2C && t->state != ST_NONE)
			memcpy(conv, t->conv_id, sizeof(conv));
		else
			make_conv_id(conv);
		pthread_mutex_unlock(&g.mu);
		doc = json_pack("{s:{s:i, s:i, s:s, s:s, s:s, s:I, s:s, s:s}}", "Result", "ResultType", 0, "ResultCode",
				succ ? 0 : 2001, "ResultDesc", succ ? B2C_RESULT_OK_DESC : "The initiator information is invalid.",
				"OriginatorConversationID", ref, "ConversationID", conv, "Amount", (json_int_t)amount,
				"Currency", currency, "CompletedTime", when);
		if (succ)
			json_object_set_new(json_object_get(doc, "Result"), "TransactionID", json_string(receipt ? receipt : rcpt));
	} else {
		char msg_id[40], corr[40], tid[40];
		make_id("msg-", msg_id, sizeof(msg_id));
		make_id("corr-", corr, sizeof(corr));
		make_id("inject-", tid, sizeof(tid));
		decimal_fmt(amount, amt);
		json_t *item = json_pack("{s:s, s:s, s:s, s:s, s:s}", "reference_id", ref, "status", status, "amount", amt,
					 "currency_code", currency, "timestamp", when);
		if (succ)
			json_object_set_new(item, "instruction_id", json_string(receipt ? receipt : rcpt));
		else {
			json_object_set_new(item, "reason_code", json_string("rjct.payee_fa.invalid"));
			json_object_set_new(item, "reason_message", json_string("rejected"));
		}
		doc = json_pack("{s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:b}, s:{s:s, s:s, s:[o]}}", "header",
				"version", "1.0.0", "message_id", msg_id, "message_ts", when, "action", "on-disburse",
				"status", "succ", "sender_id", g.sender_id, "receiver_id", "hifadhi", "total_count", 1,
				"completed_count", 1, "is_msg_encrypted", 0, "message", "transaction_id", tid,
				"correlation_id", corr, "disbursements_status", item);
	}
	struct hf_buf cb;
	hf_buf_init(&cb, RESP_MAX);
	HF_ASSERT(hf_json_dump(doc, &cb) == HF_OK);
	json_decref(doc);
	char hdr[HF_PAYSIG_DCI_MAX + 32];
	const char *headers[2] = {NULL, NULL};
	if (!sign || json_is_true(sign)) {
		sign_header(p, false, cb.data, cb.len, hdr, sizeof(hdr));
		headers[0] = hdr;
	}
	hc = hf_httpc_new();
	HF_ASSERT(hc != NULL);
	struct hf_httpc_resp r;
	hf_err err = hf_httpc_post(hc, url, "application/json", cb.data, cb.len, headers, 10000, RECEIVER_RESP_MAX, &r);
	hf_buf_release(&cb);
	if (err) {
		out_json(o, err == HF_ETIMEOUT ? 504 : 502, json_pack("{s:i, s:s}", "status", 0, "error", hf_err_name(err)));
	} else {
		/* The receiver's status is ours, so a test reads it straight off the response. */
		size_t echo = r.body.len < INJECT_ECHO_MAX ? r.body.len : INJECT_ECHO_MAX;
		json_t *e = json_pack("{s:i, s:s%}", "status", (int)r.status, "body", r.body.data ? r.body.data : "", echo);
		if (!e) /* not UTF-8 */
			e = json_pack("{s:i}", "status", (int)r.status);
		out_json(o, r.status >= 100 && r.status <= 599 ? (int)r.status : 502, e);
	}
	hf_buf_release(&r.body);
	hf_httpc_free(hc);
out_req:
	json_decref(req);
}

static void ctl_statement(struct MHD_Connection *conn, struct out *o)
{
	const char *from_s = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "from");
	const char *to_s = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "to");
	int64_t from = INT64_MIN, to = INT64_MAX;
	if ((from_s && !iso_parse(from_s, &from)) || (to_s && !iso_parse(to_s, &to))) {
		out_simple_error(o, 400, "from and to are YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC)");
		return;
	}
	hf_buf_release(&o->body);
	hf_buf_init(&o->body, STATEMENT_MAX);
	o->status = 200;
	o->ctype = "text/csv; charset=utf-8";
	hf_err err = hf_buf_append_str(&o->body, "provider_ref,reference_id,amount_minor,currency,status,completed_at\n");
	pthread_mutex_lock(&g.mu);
	for (size_t i = 0; i < g.ndone && !err; i++) {
		const struct txn *t = g.done[i];
		if (t->completed_ms < from || t->completed_ms >= to)
			continue;
		char when[21];
		iso_utc(t->completed_ms, when);
		bool paid = t->state == ST_PAID;
		err = hf_buf_appendf(&o->body, "%s,%s,%lld,%s,%s,%s\n", paid ? t->receipt : "", t->ref,
				     (long long)(paid ? t->paid : 0), t->currency, paid ? "PAID" : "FAILED", when);
	}
	pthread_mutex_unlock(&g.mu);
	if (err)
		out_simple_error(o, 413, "statement larger than the cap; narrow it with from/to");
}

/* ---- routing -------------------------------------------------------------------------------------------- */

static void route(struct MHD_Connection *conn, const char *method, const char *url, const char *body, size_t len,
		  struct out *o)
{
	bool post = strcmp(method, "POST") == 0, get = strcmp(method, "GET") == 0;
	if (strncmp(url, "/_sim/", 6) == 0) {
		if (!client_is_loopback(conn)) {
			out_simple_error(o, 403, "the control API answers loopback clients only");
			return;
		}
		const char *p = url + 6;
		if (strcmp(p, "config") == 0 && (post || get))
			ctl_config(method, body, len, o);
		else if (strcmp(p, "reset") == 0 && post)
			ctl_reset(o);
		else if (strcmp(p, "stats") == 0 && get)
			ctl_stats(conn, o);
		else if (strcmp(p, "inject") == 0 && post)
			ctl_inject(body, len, o);
		else if (strcmp(p, "statement.csv") == 0 && get)
			ctl_statement(conn, o);
		else if ((strcmp(p, "sink") == 0 || strncmp(p, "sink/", 5) == 0) && post)
			out_json(o, 200, json_object());
		else if (strcmp(p, "health") == 0 && get)
			out_json(o, 200, json_pack("{s:b}", "ok", 1));
		else
			out_simple_error(o, 404, "no such control endpoint");
		return;
	}
	bool b2c = strncmp(url, "/mm/", 4) == 0;
	bool known = strcmp(url, "/mm/b2c/v1/paymentrequest") == 0 || strcmp(url, "/mm/b2c/v1/status") == 0 ||
		     strcmp(url, "/g2p/disburse") == 0 || strcmp(url, "/g2p/disburse/sync/txn/status") == 0;
	if (!known) {
		out_simple_error(o, 404, "not found");
		return;
	}
	if (!post) {
		out_simple_error(o, 405, "POST only");
		return;
	}
	if (!authorised(conn)) {
		if (b2c)
			out_json(o, 401, json_pack("{s:s, s:s}", "errorCode", "404.001.04", "errorMessage", "Invalid Access Token"));
		else
			g2p_err(o, 401, "err.sender.unauthorized", "missing or wrong bearer token");
		return;
	}
	if (strcmp(url, "/mm/b2c/v1/paymentrequest") == 0)
		b2c_payment(body, len, o);
	else if (strcmp(url, "/mm/b2c/v1/status") == 0)
		b2c_status(body, len, o);
	else if (strcmp(url, "/g2p/disburse") == 0)
		g2p_disburse(body, len, o);
	else
		g2p_status(body, len, o);
}

/* What the log names instead of the raw path, which may hold anything a client typed. */
static const char *route_name(const char *url)
{
	static const char *const routes[] = {"/mm/b2c/v1/paymentrequest", "/mm/b2c/v1/status", "/g2p/disburse",
					     "/g2p/disburse/sync/txn/status", "/_sim/config", "/_sim/reset", "/_sim/stats",
					     "/_sim/inject", "/_sim/statement.csv", "/_sim/sink", "/_sim/health"};
	for (size_t i = 0; i < HF_ARRAY_LEN(routes); i++)
		if (strcmp(url, routes[i]) == 0)
			return routes[i];
	return strncmp(url, "/_sim/sink/", 11) == 0 ? "/_sim/sink/*" : "-";
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	(void)cls;
	(void)version;
	struct conn_state *st = *con_cls;
	if (!st) {
		st = hf_xcalloc(1, sizeof(*st));
		hf_buf_init(&st->body, MAX_BODY);
		*con_cls = st;
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
		int64_t n = 0;
		if (cl && (hf_parse_i64(cl, 0, INT64_MAX, &n) || (uint64_t)n > MAX_BODY))
			st->too_big = true;
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (!st->too_big && hf_buf_append(&st->body, upload_data, *upload_data_size))
			st->too_big = true;
		/* An oversize body is read and dropped so the client sees the 413, up to a point. */
		if (st->too_big) {
			st->discarded += *upload_data_size;
			if (st->discarded > 16 * (uint64_t)MAX_BODY)
				return MHD_NO;
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	struct out o = {.status = 500, .ctype = "application/json"};
	hf_buf_init(&o.body, RESP_MAX);
	if (st->too_big)
		out_simple_error(&o, 413, "request body larger than 4 MiB");
	else
		route(conn, method, url, st->body.data ? st->body.data : "", st->body.len, &o);
	hf_log(HF_LOG_DEBUG, PLACE, "msg=\"request\" route=%s status=%d", route_name(url), o.status);
	if (o.status == 0) {
		hf_buf_release(&o.body);
		return MHD_NO; /* the "hang without processing" switch: close without an answer */
	}
	size_t blen = o.body.len;
	char *data = hf_buf_steal(&o.body);
	struct MHD_Response *r = MHD_create_response_from_buffer(blen, data ? data : (void *)"",
								 data ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	MHD_add_response_header(r, "Content-Type", o.ctype);
	enum MHD_Result ret = MHD_queue_response(conn, (unsigned)o.status, r);
	MHD_destroy_response(r);
	return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)conn;
	(void)toe;
	struct conn_state *st = *con_cls;
	if (!st)
		return;
	hf_buf_release(&st->body);
	free(st);
	*con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) HF_PRINTF(2, 0);
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	size_t n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (msg[i] == '"')
			msg[i] = '\'';
	hf_log(HF_LOG_WARN, PLACE, "msg=\"microhttpd: %s\"", msg);
}

/* ---- key files and start-up ----------------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: hifadhi-paysim --port N [--bind 127.0.0.1] --secret-file F --g2p-key-file F\n"
		"                      [--token-file F] [--sender-id paysim] [--config FILE] [--workers 4]\n"
		"                      [--log-level debug|info|warn|error]\n"
		"       hifadhi-paysim keygen [--g2p-key-file F --public-out P] [--secret-file F]\n"
		"\n"
		"A payment provider simulator for tests: mobile-money B2C on /mm/b2c/v1/, G2P Connect on /g2p/,\n"
		"the control API on /_sim/ (see docs/providers.md). --port 0 picks a free port; the line\n"
		"\"paysim listening on ADDR:PORT\" on stderr says which, once it is ready.\n"
		"keygen writes an Ed25519 seed (64 hex, mode 0600) and its public key (64 hex), and/or a shared\n"
		"secret (32 random bytes as 64 hex, mode 0600); it never overwrites a key file.\n");
}

/* Writes text to path, refusing to overwrite when exclusive. */
static hf_err write_file(const char *path, const char *text, mode_t mode, bool exclusive)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (exclusive ? O_EXCL : O_TRUNC), mode);
	if (fd < 0) {
		fprintf(stderr, "hifadhi-paysim: cannot create %s: %s\n", path, strerror(errno));
		return HF_EIO;
	}
	size_t n = strlen(text);
	ssize_t w = write(fd, text, n);
	if (close(fd) != 0 || w != (ssize_t)n) {
		fprintf(stderr, "hifadhi-paysim: cannot write %s\n", path);
		return HF_EIO;
	}
	return HF_OK;
}

static int cmd_keygen(int argc, char **argv)
{
	const char *seed_file = NULL, *pub_file = NULL, *secret_file = NULL;
	for (int i = 2; i < argc; i++) {
		if (i + 1 < argc && strcmp(argv[i], "--g2p-key-file") == 0)
			seed_file = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--public-out") == 0)
			pub_file = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--secret-file") == 0)
			secret_file = argv[++i];
		else {
			usage(stderr);
			return 2;
		}
	}
	if ((!seed_file && !secret_file) || (seed_file && !pub_file) || (pub_file && !seed_file)) {
		usage(stderr);
		return 2;
	}
	if (seed_file) {
		uint8_t seed[32], pk[32], sk[64];
		char hex[65], text[66];
		hf_random_bytes(seed, sizeof(seed));
		HF_ASSERT(crypto_sign_seed_keypair(pk, sk, seed) == 0);
		hf_hex(seed, sizeof(seed), hex);
		snprintf(text, sizeof(text), "%s\n", hex);
		hf_err err = write_file(seed_file, text, 0600, true);
		sodium_memzero(seed, sizeof(seed));
		sodium_memzero(sk, sizeof(sk));
		sodium_memzero(hex, sizeof(hex));
		sodium_memzero(text, sizeof(text));
		if (err)
			return 1;
		hf_hex(pk, sizeof(pk), hex);
		snprintf(text, sizeof(text), "%s\n", hex);
		if (write_file(pub_file, text, 0644, false))
			return 1;
	}
	if (secret_file) {
		uint8_t s[32];
		char hex[65], text[66];
		hf_random_bytes(s, sizeof(s));
		hf_hex(s, sizeof(s), hex);
		snprintf(text, sizeof(text), "%s\n", hex);
		hf_err err = write_file(secret_file, text, 0600, true);
		sodium_memzero(s, sizeof(s));
		sodium_memzero(hex, sizeof(hex));
		sodium_memzero(text, sizeof(text));
		if (err)
			return 1;
	}
	return 0;
}

static hf_err load_secret(const char *path)
{
	struct hf_buf b;
	hf_err err = hf_file_read(path, 4096, true, &b);
	if (err || b.len == 0) {
		fprintf(stderr, "hifadhi-paysim: cannot read the secret file %s (%s)\n", path, err ? hf_err_name(err) : "empty");
		hf_buf_release(&b);
		return err ? err : HF_EINVAL;
	}
	g.secret = sodium_malloc(b.len);
	HF_ASSERT(g.secret != NULL);
	memcpy(g.secret, b.data, b.len);
	g.secret_len = b.len;
	sodium_memzero(b.data, b.len);
	hf_buf_release(&b);
	return HF_OK;
}

static hf_err load_g2p_key(const char *path, char pk_hex[65])
{
	struct hf_buf b;
	uint8_t seed[32], pk[32];
	hf_err err = hf_file_read(path, 256, true, &b);
	if (!err && (b.len != 64 || !hf_unhex(b.data, 64, seed, sizeof(seed))))
		err = HF_EINVAL;
	if (b.data)
		sodium_memzero(b.data, b.len);
	hf_buf_release(&b);
	if (err) {
		fprintf(stderr, "hifadhi-paysim: %s must hold an Ed25519 seed as 64 hex characters (%s)\n", path,
			hf_err_name(err));
		return err;
	}
	g.sk = sodium_malloc(64);
	HF_ASSERT(g.sk != NULL);
	HF_ASSERT(crypto_sign_seed_keypair(pk, g.sk, seed) == 0);
	sodium_memzero(seed, sizeof(seed));
	hf_hex(pk, sizeof(pk), pk_hex);
	/* The key id names the key: the first 16 hex digits of the public key. */
	memcpy(g.key_id, pk_hex, 16);
	g.key_id[16] = '\0';
	return HF_OK;
}

static hf_err load_token(const char *path)
{
	struct hf_buf b;
	hf_err err = hf_file_read(path, 4096, true, &b);
	if (err || b.len == 0 || !text_valid(b.data, 1, 4096)) {
		fprintf(stderr, "hifadhi-paysim: cannot read a token from %s\n", path);
		hf_buf_release(&b);
		return err ? err : HF_EINVAL;
	}
	g.token_len = b.len;
	g.token = hf_buf_steal(&b);
	return HF_OK;
}

static hf_err load_config_file(const char *path)
{
	struct hf_buf b, err;
	hf_buf_init(&err, 512);
	hf_err e = hf_file_read(path, MAX_BODY, false, &b);
	json_t *src = e ? NULL : parse_body(b.data ? b.data : "", b.len);
	if (!e && !src)
		e = HF_EINVAL;
	if (!e)
		e = config_apply(src, &err);
	if (e)
		fprintf(stderr, "hifadhi-paysim: config %s: %s\n", path,
			err.len ? hf_buf_cstr(&err) : "unreadable, or not one JSON object");
	json_decref(src);
	hf_buf_release(&b);
	hf_buf_release(&err);
	return e;
}

int main(int argc, char **argv)
{
	if (hf_crypto_init()) {
		fprintf(stderr, "hifadhi-paysim: cannot initialise libsodium\n");
		return 1;
	}
	if (argc >= 2 && strcmp(argv[1], "keygen") == 0)
		return cmd_keygen(argc, argv);

	const char *bind = "127.0.0.1", *secret_file = NULL, *key_file = NULL, *token_file = NULL, *config_file = NULL;
	const char *sender = "paysim", *level = "info";
	int64_t port = -1, workers = WORKERS_DEFAULT;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 0;
		}
		if (i + 1 >= argc) {
			usage(stderr);
			return 2;
		}
		const char *v = argv[++i];
		if (strcmp(a, "--port") == 0) {
			if (hf_parse_i64(v, 0, 65535, &port)) {
				fprintf(stderr, "hifadhi-paysim: --port must be 0..65535\n");
				return 2;
			}
		} else if (strcmp(a, "--workers") == 0) {
			if (hf_parse_i64(v, 1, 64, &workers)) {
				fprintf(stderr, "hifadhi-paysim: --workers must be 1..64\n");
				return 2;
			}
		} else if (strcmp(a, "--bind") == 0) {
			bind = v;
		} else if (strcmp(a, "--secret-file") == 0) {
			secret_file = v;
		} else if (strcmp(a, "--g2p-key-file") == 0) {
			key_file = v;
		} else if (strcmp(a, "--token-file") == 0) {
			token_file = v;
		} else if (strcmp(a, "--sender-id") == 0) {
			sender = v;
		} else if (strcmp(a, "--config") == 0) {
			config_file = v;
		} else if (strcmp(a, "--log-level") == 0) {
			level = v;
		} else {
			usage(stderr);
			return 2;
		}
	}
	enum hf_log_level lv;
	if (port < 0 || !secret_file || !key_file || !hf_log_level_parse(level, &lv)) {
		usage(stderr);
		return 2;
	}
	hf_log_set_level(lv);
	if (!hf_paysig_dci_id_valid(sender)) {
		fprintf(stderr, "hifadhi-paysim: --sender-id must be 1-64 of [A-Za-z0-9._:-]\n");
		return 2;
	}
	hf_strlcpy(g.sender_id, sender, sizeof(g.sender_id));
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, bind, &sa.sin_addr) != 1) {
		fprintf(stderr, "hifadhi-paysim: --bind must be a numeric IPv4 address\n");
		return 2;
	}
	char pk_hex[65];
	if (load_secret(secret_file) || load_g2p_key(key_file, pk_hex) || (token_file && load_token(token_file)))
		return 1;
	/* Keys that are deliberately wrong, for the bad_signature switch. */
	g.bad_secret = sodium_malloc(32);
	g.bad_sk = sodium_malloc(64);
	uint8_t bad_pk[32];
	HF_ASSERT(g.bad_secret && g.bad_sk && crypto_sign_keypair(bad_pk, g.bad_sk) == 0);
	hf_random_bytes(g.bad_secret, 32);
	uint8_t tag[4];
	hf_random_bytes(tag, sizeof(tag));
	hf_hex(tag, sizeof(tag), g.id_prefix);
	if (config_file && load_config_file(config_file))
		return 1;

	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&g.qcond, &ca);
	pthread_cond_init(&g.stop_cond, &ca);
	pthread_condattr_destroy(&ca);

	/* Signals are taken by this thread with sigwait; every thread started below inherits the mask. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	hf_httpc_global_init();

	pthread_t *threads = hf_xcalloc((size_t)workers, sizeof(*threads));
	for (int64_t i = 0; i < workers; i++)
		HF_ASSERT(pthread_create(&threads[i], NULL, worker_main, NULL) == 0);

	struct MHD_Daemon *d = MHD_start_daemon(
		MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG |
			MHD_USE_ITC,
		(uint16_t)port, NULL, NULL, on_request, NULL, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_TIMEOUT, 120u,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)MAX_CONNS, MHD_OPTION_THREAD_STACK_SIZE, (size_t)(512 * 1024),
		MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
	int rc = 0;
	if (!d) {
		fprintf(stderr, "hifadhi-paysim: cannot listen on %s:%lld\n", bind, (long long)port);
		rc = 1;
	} else {
		const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
		unsigned real_port = di ? di->port : (unsigned)port;
		hf_log(HF_LOG_INFO, PLACE, "msg=\"started\" sender_id=%s key_id=%s g2p_public_key=%s auth=%s workers=%lld",
		       g.sender_id, g.key_id, pk_hex, g.token ? "bearer" : "none", (long long)workers);
		fprintf(stderr, "paysim listening on %s:%u\n", bind, real_port);
		int sig = 0;
		sigwait(&set, &sig);
		hf_log(HF_LOG_INFO, PLACE, "msg=\"stopping\" signal=%d", sig);
	}

	pthread_mutex_lock(&g.stop_mu);
	g.stop = true;
	pthread_cond_broadcast(&g.stop_cond);
	pthread_mutex_unlock(&g.stop_mu);
	if (d)
		MHD_stop_daemon(d);
	pthread_mutex_lock(&g.qmu);
	g.stopping = true;
	pthread_cond_broadcast(&g.qcond);
	pthread_mutex_unlock(&g.qmu);
	for (int64_t i = 0; i < workers; i++)
		pthread_join(threads[i], NULL);
	free(threads);
	for (size_t i = 0; i < g.nheap; i++)
		job_free(g.heap[i]);
	free(g.heap);
	table_clear();
	config_free(g.cfg);
	sodium_free(g.secret);
	sodium_free(g.sk);
	sodium_free(g.bad_sk);
	sodium_free(g.bad_secret);
	if (g.token) {
		sodium_memzero(g.token, g.token_len);
		free(g.token);
	}
	if (d)
		hf_log(HF_LOG_INFO, PLACE, "msg=\"stopped\"");
	return rc;
}
